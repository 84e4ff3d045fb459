// test_moe_tc_emu.cc — the MoE experts' tensor-core GEMMs (codegen/kernels/moe.cuh: axo_moe_gemm_tc_*,
// axo_moe_wgrad_tc_*, AXO_CUDA_MOE=tc) as host C++ on the SIMT emulator of tests/unit/emu/cuda_bf16.h, against a
// double reference of the same product with the operands rounded to bf16 (what the kernels stage): gathered rows of
// several 64-row tiles per expert with a partial last one, Nc not a multiple of 64 or 8 (8, 72, 130, 200), K below,
// at and not a multiple of the 32-wide K step (18, 34, 64, 136), idle experts (zero rows: their weight gradient
// written as 0), B [Nc, K] and [K, Nc], f32 and bf16 A, f32 and bf16 B of the weight gradient, token rows shared by
// k slots. Every output starts as NaN, so one never written fails. The GEMM agrees to a few fp32 ulps of the sum of
// |products|; the weight gradient to its bf16 rounding. What this cannot check: the hardware's own accumulation
// order inside mma.sync, speed.
#include "emu/cuda_bf16.h"
#include "codegen/kernels/common.cuh"
#include "codegen/kernels/moe.cuh"
#include <vector>
typedef __nv_bfloat16 bf;
static unsigned char no_smem[16];
static uint64_t g_rng = 0x1234567ull;
static uint32_t ur() { g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull; return (uint32_t)(g_rng >> 32); }
static float uf() { return ((float)(ur() >> 8) / 16777216.0f) * 2 - 1; }
static float rb(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
static int fails = 0;
// counts per expert given
static void groups(const std::vector<int> &idx, int E, std::vector<int> &order, std::vector<int> &off, std::vector<int> &poff) {
    off.assign(E + 1, 0); poff.assign(E + 1, 0); order.clear();
    for (int e = 0; e < E; e++) {
        int c = 0;
        for (size_t i = 0; i < idx.size(); i++) if (idx[i] == e) order.push_back((int)i), c++;
        off[e + 1] = off[e] + c; poff[e + 1] = poff[e] + (c + 63) / 64 * 64;
    }
}
static void gemm_case(int E, int N, int k, int Nc, int K, int bt, bool af32, const std::vector<int> &forced) {
    int n = N * k;
    std::vector<int> idx(n);
    for (int i = 0; i < n; i++) idx[i] = forced.empty() ? (int)(ur() % E) : forced[ur() % forced.size()];
    std::vector<int> order, off, poff; groups(idx, E, order, off, poff);
    int arows = af32 ? n : N, adiv = af32 ? 1 : k;
    std::vector<float> Af((size_t)arows * K); std::vector<bf> Ab((size_t)arows * K);
    for (size_t i = 0; i < Af.size(); i++) { Af[i] = uf(); Ab[i] = __float2bfloat16_rn(Af[i]); }
    std::vector<bf> B((size_t)E * Nc * K);
    for (auto &v : B) v = __float2bfloat16_rn(uf());
    std::vector<float> C((size_t)n * Nc, NAN);
    unsigned gx = (n + 63) / 64 + E, gy = (Nc + 63) / 64;
    emu_launch(emu_dim3{gx, gy, 1}, 128, no_smem, 0, [&] {
        if (af32) axo_moe_gemm_tc_af32_bf16(Af.data(), adiv, B.data(), bt, C.data(), order.data(), off.data(), poff.data(), E, Nc, K);
        else axo_moe_gemm_tc_bf16(Ab.data(), adiv, B.data(), bt, C.data(), order.data(), off.data(), poff.data(), E, Nc, K);
    });
    double maxrel = 0; long bad = 0;
    for (int p = 0; p < n; p++) {
        int e = idx[p];
        for (int c = 0; c < Nc; c++) {
            double s = 0, sa = 0;
            for (int kk = 0; kk < K; kk++) {
                double a = rb(af32 ? Af[(size_t)p * K + kk] : __bfloat162float(Ab[(size_t)(p / adiv) * K + kk]));
                double b = __bfloat162float(bt ? B[((size_t)e * Nc + c) * K + kk] : B[((size_t)e * K + kk) * Nc + c]);
                s += a * b; sa += fabs(a * b);
            }
            double g = C[(size_t)p * Nc + c];
            double r = fabs(g - s) / (sa + 1e-30);
            if (!(r < 1e-5)) bad++;
            if (r > maxrel || r != r) maxrel = r;
        }
    }
    printf("%s gemm E=%d N=%d k=%d Nc=%d K=%d bt=%d af32=%d maxrel=%.3g bad=%ld\n", bad ? "FAIL" : "ok  ", E, N, k, Nc, K, bt, af32, maxrel, bad);
    fails += bad != 0;
}
static void wgrad_case(int E, int N, int k, int Ma, int Nb, bool bf32, const std::vector<int> &forced) {
    int n = N * k;
    std::vector<int> idx(n);
    for (int i = 0; i < n; i++) idx[i] = forced.empty() ? (int)(ur() % E) : forced[ur() % forced.size()];
    std::vector<int> order, off, poff; groups(idx, E, order, off, poff);
    int bdiv = bf32 ? 1 : k, brows = bf32 ? n : N;
    std::vector<float> A((size_t)n * Ma); for (auto &v : A) v = uf();
    std::vector<float> Bf((size_t)brows * Nb); std::vector<bf> Bb((size_t)brows * Nb);
    for (size_t i = 0; i < Bf.size(); i++) { Bf[i] = uf(); Bb[i] = __float2bfloat16_rn(Bf[i]); }
    std::vector<bf> C((size_t)E * Ma * Nb); for (auto &v : C) v = __float2bfloat16_rn(NAN);
    emu_launch(emu_dim3{(unsigned)(Ma + 63) / 64, (unsigned)(Nb + 63) / 64, (unsigned)E}, 128, no_smem, 0, [&] {
        if (bf32) axo_moe_wgrad_tc_bf32_bf16(A.data(), Bf.data(), bdiv, C.data(), order.data(), off.data(), Ma, Nb);
        else axo_moe_wgrad_tc_bf16(A.data(), Bb.data(), bdiv, C.data(), order.data(), off.data(), Ma, Nb);
    });
    long bad = 0; double maxrel = 0;
    for (int e = 0; e < E; e++)
        for (int m = 0; m < Ma; m++)
            for (int c = 0; c < Nb; c++) {
                double s = 0, sa = 0;
                for (int r = off[e]; r < off[e + 1]; r++) {
                    int p = order[r];
                    double a = rb(A[(size_t)p * Ma + m]);
                    double b = bf32 ? rb(Bf[(size_t)p * Nb + c]) : __bfloat162float(Bb[(size_t)(p / bdiv) * Nb + c]);
                    s += a * b; sa += fabs(a * b);
                }
                double g = __bfloat162float(C[((size_t)e * Ma + m) * Nb + c]);
                double r = fabs(g - s) / (sa + 1e-30);
                if (!(r < 8e-3) || (sa == 0 && g != 0)) bad++;
                if (r > maxrel || r != r) maxrel = r;
            }
    printf("%s wgrad E=%d N=%d k=%d Ma=%d Nb=%d bf32=%d maxrel=%.3g bad=%ld\n", bad ? "FAIL" : "ok  ", E, N, k, Ma, Nb, bf32, maxrel, bad);
    fails += bad != 0;
}
int main() {
    std::vector<int> none, skip = {0, 2, 3}; // expert 1 and 4 idle
    for (int bt = 0; bt < 2; bt++)
        for (int af = 0; af < 2; af++) {
            gemm_case(5, 150, 2, 200, 136, bt, af, none);
            gemm_case(5, 90, 2, 72, 18, bt, af, skip);
            gemm_case(3, 70, 1, 8, 34, bt, af, none);
            gemm_case(2, 100, 2, 130, 64, bt, af, {1});
        }
    for (int bf = 0; bf < 2; bf++) {
        wgrad_case(5, 150, 2, 200, 136, bf, none);
        wgrad_case(5, 40, 2, 72, 18, bf, skip);
        wgrad_case(3, 5, 1, 66, 3, bf, none);
    }
    printf("%d failures\n", fails);
    return fails != 0;
}
