// test_quant_emu.cc — the kernels whose arithmetic is ir/quant.h, run as
// host C++ on the SIMT emulator of tests/unit/emu/cuda_bf16.h and compared
// bit for bit with the CPU reference:
//  * NEFTune's noise (quant.cuh, axo_neftune_f32/_bf16) against
//    ck_neftune_f32, rounded to bf16 as the CPU executor rounds: rows whose
//    length is not a multiple of the vector width (a 16-byte vector spans
//    two rows' keys), 1-element rows, misaligned pointers, grids smaller and
//    larger than the work, in place, a large salt, mag 0.
//  * LoRA dropout and NF4 dequantization (codegen/kernels/quant.cuh) against
//    ck_dropout_f32 and ck_dequant_nf4_f32, rounded to bf16 as the CPU
//    executor rounds: f32 and bf16, odd sizes (the scalar tail of the
//    16-byte vector path), misaligned pointers (the scalar and byte paths),
//    grids smaller than the work (grid-stride), in-place dropout, rows of K
//    even but not a multiple of 64 or 8 (short last blocks, words that
//    straddle rows, a last partial word), p = 0 and large salts, the packed
//    codes written by the executor's own packer (rt_cuda_pack: the nibble
//    order both sides must agree on), steps over the whole byte and row
//    maxima of 0 and near the subnormal range. Every output element starts
//    as NaN, so one never written fails.
//  * pure-bf16 AdamW (codegen/kernels/adamw.cuh, axo_adamw_sr_bf16) against
//    ck_adamw_step_sr_bf16: p, m and v after the step, every element's bf16
//    bits; sizes around the block size and odd ones, blocks at a nonzero
//    offset `first` in the whole tensor (one crossing 2^32 too: the index
//    wraps alike), steps, salts (3 salt wrapping), grids of 1, a few and
//    full, lr and weight decay zero and not, grad scale 1 and not, beta1 on
//    both sides of 0.5 (the two lerp forms). The update is in place: an
//    element never visited keeps its m, which the step always moves.
//  * 8-bit AdamW state (adamw.cuh, axo_adamw8_f32/_bf16) against
//    ck_adamw8_step: p, the u8 codes of m and v and their f32 block maxima
//    after each of several steps, from the zero state and from one a few
//    CPU steps made; rows of one block (K 256), two and a short one (600),
//    short blocks only (64, 1), many (4099); f32 p with f32 or bf16
//    gradients, bf16 p stochastically rounded at an offset (one crossing
//    2^32); grids of 1, a few (grid-stride) and full; an all-zero gradient
//    block (maxima 0, codes 0); the codes go through the executor's packer.
// The .cuh files are in this one translation unit, as two sources could be
// in one NVRTC program: common.cuh's AXO_QFN/AXO_QCONST, ir/quant.h once.
// What this cannot check: the device's own float arithmetic (IEEE on both)
// and double pow (the bias corrections), the real launch, speed.
#include "emu/cuda_bf16.h"

#include "codegen/kernels/common.cuh"
#include "codegen/kernels/quant.cuh"
#include "codegen/kernels/adamw.cuh"

extern "C" {
#include "runtime/cpu_kernels.h"
#include "runtime/cuda_exec.h"
}

typedef __nv_bfloat16 bf;
static unsigned char no_smem[16];
static int g_fail, g_cases;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t urand32() {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 32);
}
static float urandf(float lo, float hi) { return lo + (hi - lo) * (float)(urand32() >> 8) / 16777216.0f; }

// got[i] and ref[i] as the same 32 bits (f32) or the same bf16 bits.
static bool same_bits(const char *what, const float *got, const float *ref, int64_t n) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ref[i], 4) != 0 && bad++ == 0) first = i;
    g_cases++;
    if (bad) {
        g_fail++;
        printf("  FAIL %s: %lld of %lld differ, first [%lld] kernel %.9g cpu %.9g\n", what, (long long)bad, (long long)n,
               (long long)first, got[first], ref[first]);
    }
    return bad == 0;
}

static float to_f(float v) { return v; }
static float to_f(bf v) { return __bfloat162float(v); }
static void from_f(float &d, float v) { d = v; }
static void from_f(bf &d, float v) { d = __float2bfloat16_rn(v); }
static float cpu_round(float v, bool is_bf16) { return is_bf16 ? ax_round_bf16(v) : v; }

// ---- dropout ------------------------------------------------------------------
template <typename T>
static void dropout_case(int64_t n, double p, uint32_t seed, uint32_t salt, int off, bool inplace, unsigned grid) {
    const bool b16 = sizeof(T) == 2;
    std::vector<T> xs((size_t)(n + off)), ys((size_t)(n + off)); // exact: ASan builds see an overrun
    std::vector<float> xf((size_t)n), ref((size_t)n), got((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        from_f(xs[(size_t)(i + off)], urandf(0.05f, 3.0f) * (urand32() & 1 ? 1 : -1));
        xf[(size_t)i] = to_f(xs[(size_t)(i + off)]);
    }
    T *x = xs.data() + off, *y = inplace ? x : ys.data() + off;
    if (!inplace)
        for (int64_t i = 0; i < n; i++) from_f(y[i], NAN);
    const int sd = (int)seed;
    const uint32_t thr = axo_dropout_threshold(p);
    const float k = axo_dropout_scale(p);
    emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
        if (b16) axo_dropout_bf16((const bf *)x, &sd, (bf *)y, n, salt, thr, k);
        else axo_dropout_f32((const float *)x, &sd, (float *)y, n, salt, thr, k);
    });
    ck_dropout_f32(xf.data(), ref.data(), n, seed, salt, p);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        ref[(size_t)i] = cpu_round(ref[(size_t)i], b16);
        got[(size_t)i] = to_f(y[i]);
        kept += ref[(size_t)i] != 0.0f;
    }
    char what[160];
    snprintf(what, sizeof what, "dropout %s n=%lld p=%g seed=%u salt=%u%s%s grid=%u", b16 ? "bf16" : "f32", (long long)n, p,
             seed, salt, off ? " misaligned" : "", inplace ? " in place" : "", grid);
    if (same_bits(what, got.data(), ref.data(), n))
        printf("  ok   %s (kept %.3f)\n", what, (double)kept / (double)n);
}

// ---- neftune ------------------------------------------------------------------
template <typename T>
// mag_in: the mag from a device scalar (the micro step's, as the runtime sets it), the attr argument a decoy
static void neftune_case(int64_t rows, int64_t H, uint32_t salt, float mag, int off, bool inplace, unsigned grid,
                         bool mag_in = false) {
    const bool b16 = sizeof(T) == 2;
    const int64_t n = rows * H;
    std::vector<T> xs((size_t)(n + off)), ys((size_t)(n + off));
    std::vector<float> xf((size_t)n), ref((size_t)n), got((size_t)n);
    std::vector<int> keys((size_t)rows);
    for (int64_t r = 0; r < rows; r++) keys[(size_t)r] = (int)urand32();
    for (int64_t i = 0; i < n; i++) {
        from_f(xs[(size_t)(i + off)], urandf(0.05f, 3.0f) * (urand32() & 1 ? 1 : -1));
        xf[(size_t)i] = to_f(xs[(size_t)(i + off)]);
    }
    T *x = xs.data() + off, *y = inplace ? x : ys.data() + off;
    if (!inplace)
        for (int64_t i = 0; i < n; i++) from_f(y[i], NAN);
    emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
        const float attr = mag_in ? 3.0f * mag : mag, *mp = mag_in ? &mag : nullptr;
        if (b16) axo_neftune_bf16((const bf *)x, keys.data(), (bf *)y, n, H, salt, attr, mp);
        else axo_neftune_f32((const float *)x, keys.data(), (float *)y, n, H, salt, attr, mp);
    });
    ck_neftune_f32(xf.data(), ref.data(), (const int32_t *)keys.data(), rows, H, salt, mag);
    for (int64_t i = 0; i < n; i++) {
        ref[(size_t)i] = cpu_round(ref[(size_t)i], b16);
        got[(size_t)i] = to_f(y[i]);
    }
    char what[160];
    snprintf(what, sizeof what, "neftune %s [%lld,%lld] salt=%u mag=%g%s%s%s grid=%u", b16 ? "bf16" : "f32",
             (long long)rows, (long long)H, salt, (double)mag, mag_in ? " (input)" : "", off ? " misaligned" : "",
             inplace ? " in place" : "", grid);
    if (same_bits(what, got.data(), ref.data(), n)) printf("  ok   %s\n", what);
}

// ---- dequant_nf4 -------------------------------------------------------------------
template <typename T>
static void dequant_case(int64_t N, int64_t K, int qoff, int woff, unsigned grid, int rowmax_kind) {
    const bool b16 = sizeof(T) == 2;
    const int64_t nb = (K + 63) / 64, n = N * K;
    std::vector<float> qf((size_t)n), sf((size_t)(N * nb)), rmax((size_t)N), ref((size_t)n), got((size_t)n);
    for (int64_t i = 0; i < n; i++) qf[(size_t)i] = (float)(urand32() % 16);
    for (int64_t i = 0; i < N * nb; i++) sf[(size_t)i] = (float)(urand32() % 256);
    if (N * nb >= 2) sf[0] = 0, sf[1] = 255;
    for (int64_t r = 0; r < N; r++) rmax[(size_t)r] = rowmax_kind == 0 ? urandf(0.01f, 4.0f) : rowmax_kind == 1 ? 0.0f : 3e-37f;
    // the device storage: codes packed by the executor's own packer, one byte per step
    std::vector<unsigned char> qs((size_t)(n / 2 + qoff)), st((size_t)(N * nb)); // exact sizes
    if (rt_cuda_pack(IR_NF4, qf.data(), n, qs.data() + qoff, nullptr) != 0) {
        printf("  FAIL rt_cuda_pack refused valid codes\n");
        g_fail++;
        return;
    }
    for (int64_t i = 0; i < N * nb; i++) st[(size_t)i] = (unsigned char)sf[(size_t)i];
    std::vector<T> ws((size_t)(n + woff));
    T *w = ws.data() + woff;
    for (int64_t i = 0; i < n; i++) from_f(w[i], NAN);
    const unsigned char *q = qs.data() + qoff;
    emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
        if (b16) axo_dequant_nf4_bf16(q, st.data(), rmax.data(), (bf *)w, N, K);
        else axo_dequant_nf4_f32(q, st.data(), rmax.data(), (float *)w, N, K);
    });
    ck_dequant_nf4_f32(qf.data(), sf.data(), rmax.data(), ref.data(), N, K);
    for (int64_t i = 0; i < n; i++) {
        ref[(size_t)i] = cpu_round(ref[(size_t)i], b16);
        got[(size_t)i] = to_f(w[i]);
    }
    char what[160];
    snprintf(what, sizeof what, "dequant_nf4 %s [%lld,%lld]%s%s grid=%u rowmax %s", b16 ? "bf16" : "f32", (long long)N,
             (long long)K, qoff ? " codes misaligned" : "", woff ? " result misaligned" : "", grid,
             rowmax_kind == 0 ? "random" : rowmax_kind == 1 ? "0" : "3e-37 (subnormal scales)");
    if (same_bits(what, got.data(), ref.data(), n)) printf("  ok   %s\n", what);
}

// ---- adamw_sr_bf16 --------------------------------------------------------------------
struct adamw_hp {
    float lr, step, gs;
    double beta1, wd;
    double lr_scale = 1.0; // the node's lr_scale (LoRA+): the kernels' last argument, the CPU's lr x lr_scale
    bool b1_in = false;    // beta1 from the three device floats one_cycle hands it; the attr argument a decoy
};

// The kernels' beta1 arguments for h: the three floats (used when h.b1_in), the attr value, and the beta1 the CPU
// reference takes (axo_beta1_join of the three under b1_in: what the kernel must reconstruct)
struct b1_args {
    float pair[3];
    double attr, ref;
};
static b1_args beta1_of(const adamw_hp &h) {
    b1_args b;
    axo_beta1_split(h.beta1, b.pair);
    b.attr = h.b1_in ? 0.5 : h.beta1;
    b.ref = h.b1_in ? axo_beta1_join(b.pair) : h.beta1;
    return b;
}

static float rand_bf16(float lo, float hi, bool pos) {
    return ax_round_bf16(urandf(lo, hi) * (pos || urand32() & 1 ? 1.0f : -1.0f));
}

static void adamw_sr_case(int64_t n, int64_t first, uint32_t salt, unsigned grid, const adamw_hp &h) {
    const double beta2 = 0.999, eps = 1e-8;
    std::vector<bf> P((size_t)n), G((size_t)n), M((size_t)n), V((size_t)n);
    std::vector<float> p((size_t)n), g((size_t)n), m((size_t)n), v((size_t)n), rne((size_t)n);
    for (int64_t i = 0; i < n; i++) { // bf16 values, as the CPU executor holds them (f32 arrays)
        const size_t k = (size_t)i;
        p[k] = rand_bf16(0.02f, 2.0f, false);
        g[k] = rand_bf16(1e-3f, 0.5f, false);
        m[k] = rand_bf16(1e-4f, 0.05f, false);
        v[k] = rand_bf16(1e-7f, 1e-3f, true); // v >= 0
        P[k] = __float2bfloat16_rn(p[k]), G[k] = __float2bfloat16_rn(g[k]);
        M[k] = __float2bfloat16_rn(m[k]), V[k] = __float2bfloat16_rn(v[k]);
    }
    const float lr = h.lr, step = h.step, gs = h.gs;
    const b1_args b1 = beta1_of(h);
    const float *b1p = h.b1_in ? b1.pair : nullptr;
    emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
        axo_adamw_sr_bf16(P.data(), G.data(), M.data(), V.data(), n, first, &lr, &step, &gs, b1p, b1.attr, beta2, eps,
                          h.wd, salt, h.lr_scale);
    });
    // the executor hands the CPU kernel the f32 scalars widened, and the step as an integer
    std::vector<float> p32(p), m32(m), v32(v);
    ck_adamw_step_f32(p32.data(), g.data(), m32.data(), v32.data(), n, (double)lr * h.lr_scale, b1.ref, beta2, eps,
                      h.wd, (int64_t)step, (double)gs);
    ck_adamw_step_sr_bf16(p.data(), g.data(), m.data(), v.data(), n, (double)lr * h.lr_scale, b1.ref, beta2, eps, h.wd,
                          (int64_t)step, (double)gs, salt, first);
    int64_t up = 0; // elements of p whose stochastic rounding is not round-to-nearest: the rounding is live
    for (int64_t i = 0; i < n; i++) up += ax_round_bf16(p32[(size_t)i]) != p[(size_t)i];
    char tag[160], what[200];
    snprintf(tag, sizeof tag, "n=%lld first=%lld step=%g salt=%u grid=%u lr=%g x %g wd=%g gs=%g beta1=%.17g%s",
             (long long)n, (long long)first, (double)step, salt, grid, (double)lr, h.lr_scale, h.wd, (double)gs, h.beta1,
             h.b1_in ? " (input)" : "");
    bool ok = true;
    const char *names[3] = {"p", "m", "v"};
    const std::vector<bf> *got[3] = {&P, &M, &V};
    const std::vector<float> *ref[3] = {&p, &m, &v};
    for (int j = 0; j < 3; j++) {
        std::vector<float> gf((size_t)n);
        for (int64_t i = 0; i < n; i++) gf[(size_t)i] = __bfloat162float((*got[j])[(size_t)i]);
        snprintf(what, sizeof what, "adamw_sr_bf16 %s %s", names[j], tag);
        ok &= same_bits(what, gf.data(), ref[j]->data(), n);
    }
    if (ok) printf("  ok   adamw_sr_bf16 %s (p, m, v; p not nearest %.3f)\n", tag, (double)up / (double)n);
}

// ---- adamw_f32 / adamw_bf16 ----------------------------------------------------------
// The f32-state kernels (g f32, or bf16 with f32 master state; p_bf16 NULL as the executor passes it) against
// ck_adamw_step_f32 on the same values with lr x lr_scale: p, m, v bit for bit.
static void adamw_f32_case(int64_t n, unsigned grid, bool g_bf16, const adamw_hp &h) {
    const double beta2 = 0.999, eps = 1e-8;
    std::vector<float> p((size_t)n), g((size_t)n), m((size_t)n), v((size_t)n);
    std::vector<bf> Gb((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const size_t k = (size_t)i;
        p[k] = urandf(0.02f, 2.0f) * (urand32() & 1 ? 1.0f : -1.0f);
        g[k] = g_bf16 ? rand_bf16(1e-3f, 0.5f, false) : urandf(1e-3f, 0.5f) * (urand32() & 1 ? 1.0f : -1.0f);
        m[k] = urandf(1e-4f, 0.05f) * (urand32() & 1 ? 1.0f : -1.0f);
        v[k] = urandf(1e-7f, 1e-3f);
        Gb[k] = __float2bfloat16_rn(g[k]);
    }
    std::vector<float> P(p), M(m), V(v);
    const float lr = h.lr, step = h.step, gs = h.gs;
    const b1_args b1 = beta1_of(h);
    const float *b1p = h.b1_in ? b1.pair : nullptr;
    emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
        if (g_bf16)
            axo_adamw_bf16(P.data(), Gb.data(), M.data(), V.data(), nullptr, n, &lr, &step, &gs, b1p, b1.attr, beta2, eps,
                           h.wd, h.lr_scale);
        else
            axo_adamw_f32(P.data(), g.data(), M.data(), V.data(), n, &lr, &step, &gs, b1p, b1.attr, beta2, eps, h.wd,
                          h.lr_scale);
    });
    ck_adamw_step_f32(p.data(), g.data(), m.data(), v.data(), n, (double)lr * h.lr_scale, b1.ref, beta2, eps, h.wd,
                      (int64_t)step, (double)gs);
    char tag[200], what[240];
    snprintf(tag, sizeof tag, "%s n=%lld grid=%u step=%g lr=%g x %g wd=%g gs=%g beta1=%.17g%s", g_bf16 ? "bf16" : "f32",
             (long long)n, grid, (double)step, (double)lr, h.lr_scale, h.wd, (double)gs, h.beta1,
             h.b1_in ? " (input)" : "");
    bool ok = true;
    const char *names[3] = {"p", "m", "v"};
    const std::vector<float> *got[3] = {&P, &M, &V}, *ref[3] = {&p, &m, &v};
    for (int j = 0; j < 3; j++) {
        snprintf(what, sizeof what, "adamw_%s %s", names[j], tag);
        ok &= same_bits(what, got[j]->data(), ref[j]->data(), n);
    }
    if (ok) printf("  ok   adamw %s (p, m, v)\n", tag);
}

// ---- adamw8 ---------------------------------------------------------------------------
// R rows of K: p f32 (g f32, or bf16 as mixed precision's master weights get it) or bf16 (g bf16, p
// stochastically rounded at offset `first`). `warm` CPU steps first build a nonzero state (codes, maxima) that
// both sides then start from (through the executor's packer, as an upload sends it); then `steps` steps, each
// with fresh random gradients, after each of which p, both codes and both maxima must be the CPU's bits. Row 0's
// first block gets an all-zero gradient: from the zero state its m, v and maxima stay 0 (codes 0).
template <typename P>
static void adamw8_case(int64_t R, int64_t K, int64_t first, bool g_bf16, int warm, int steps, unsigned grid,
                        const adamw_hp &h) {
    const bool b16 = sizeof(P) == 2;
    const double beta2 = 0.999, eps = 1e-8;
    const int64_t n = R * K, nb = (K + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK, zlen = K < AXO_Q8_BLOCK ? K : AXO_Q8_BLOCK;
    const bool gb = b16 || g_bf16;
    std::vector<float> p((size_t)n), g((size_t)n), qm((size_t)n, 0.0f), qv((size_t)n, 0.0f), am((size_t)(R * nb), 0.0f),
        av((size_t)(R * nb), 0.0f);
    auto signed_rand = [&](float lo, float hi, bool bf16_exact) {
        return bf16_exact ? rand_bf16(lo, hi, false) : urandf(lo, hi) * (urand32() & 1 ? 1.0f : -1.0f);
    };
    auto new_grads = [&] {
        for (int64_t i = 0; i < n; i++) g[(size_t)i] = i < zlen ? 0.0f : signed_rand(1e-3f, 0.5f, gb);
    };
    for (int64_t i = 0; i < n; i++) p[(size_t)i] = signed_rand(0.02f, 2.0f, b16);
    float lr = h.lr, step = h.step, gs = h.gs;
    const b1_args b1 = beta1_of(h);
    const float *b1p = h.b1_in ? b1.pair : nullptr;
    for (int w = 0; w < warm; w++, step += 1.0f) { // the CPU alone: a state to start from
        new_grads();
        ck_adamw8_step(p.data(), g.data(), qm.data(), qv.data(), am.data(), av.data(), R, K, (double)lr * h.lr_scale,
                       b1.ref, beta2, eps, h.wd, (int64_t)step, (double)gs, b16, 11, first);
    }
    // the device's storage: p and g in their dtypes, codes one byte each (the executor's packer), maxima f32
    std::vector<P> P_((size_t)n);
    std::vector<float> Gf((size_t)n);
    std::vector<bf> Gb((size_t)n);
    std::vector<unsigned char> QM((size_t)n), QV((size_t)n);
    std::vector<float> AM(am), AV(av);
    for (int64_t i = 0; i < n; i++) from_f(P_[(size_t)i], p[(size_t)i]);
    if (rt_cuda_pack(IR_U8, qm.data(), n, QM.data(), nullptr) != 0 ||
        rt_cuda_pack(IR_U8, qv.data(), n, QV.data(), nullptr) != 0) {
        printf("  FAIL rt_cuda_pack refused the CPU's codes\n");
        g_fail++;
        return;
    }
    char tag[200];
    snprintf(tag, sizeof tag, "%s g %s [%lld,%lld] first=%lld warm=%d grid=%u lr=%g x %g wd=%g gs=%g beta1=%g",
             b16 ? "bf16" : "f32", gb ? "bf16" : "f32", (long long)R, (long long)K, (long long)first, warm, grid,
             (double)lr, h.lr_scale, h.wd, (double)gs, h.beta1);
    bool ok = true;
    int64_t nz = 0; // nonzero codes after the last step: the state is live
    for (int s = 0; s < steps && ok; s++, step += 1.0f) {
        new_grads();
        for (int64_t i = 0; i < n; i++) Gf[(size_t)i] = g[(size_t)i], Gb[(size_t)i] = __float2bfloat16_rn(g[(size_t)i]);
        const void *gp = gb ? (const void *)Gb.data() : (const void *)Gf.data();
        emu_launch(emu_dim3{grid, 1, 1}, 256, no_smem, sizeof no_smem, [&] {
            if (b16)
                axo_adamw8_bf16((bf *)P_.data(), gp, QM.data(), QV.data(), AM.data(), AV.data(), R, K, first, &lr,
                                &step, &gs, b1p, b1.attr, beta2, eps, h.wd, 11, gb, h.lr_scale);
            else
                axo_adamw8_f32((float *)P_.data(), gp, QM.data(), QV.data(), AM.data(), AV.data(), R, K, first, &lr,
                               &step, &gs, b1p, b1.attr, beta2, eps, h.wd, 11, gb, h.lr_scale);
        });
        ck_adamw8_step(p.data(), g.data(), qm.data(), qv.data(), am.data(), av.data(), R, K, (double)lr * h.lr_scale,
                       b1.ref, beta2, eps, h.wd, (int64_t)step, (double)gs, b16, 11, first);
        std::vector<float> gp_((size_t)n), gm((size_t)n), gv((size_t)n);
        for (int64_t i = 0; i < n; i++) gp_[(size_t)i] = to_f(P_[(size_t)i]);
        rt_cuda_unpack(IR_U8, QM.data(), n, gm.data());
        rt_cuda_unpack(IR_U8, QV.data(), n, gv.data());
        char what[300];
        const char *names[5] = {"p", "m codes", "v codes", "m maxima", "v maxima"};
        const float *got[5] = {gp_.data(), gm.data(), gv.data(), AM.data(), AV.data()};
        const float *ref[5] = {p.data(), qm.data(), qv.data(), am.data(), av.data()};
        for (int j = 0; j < 5; j++) {
            snprintf(what, sizeof what, "adamw8 %s, step %d: %s", tag, s + 1, names[j]);
            ok &= same_bits(what, got[j], ref[j], j < 3 ? n : R * nb);
        }
        if (warm == 0 && s == 0) { // the zero-gradient block from the zero state
            bool z = am[0] == 0.0f && av[0] == 0.0f;
            for (int64_t i = 0; i < zlen; i++) z &= qm[(size_t)i] == 0.0f && qv[(size_t)i] == 0.0f;
            g_cases++;
            if (!z) {
                g_fail++, ok = false;
                printf("  FAIL adamw8 %s: a zero-gradient block from the zero state has nonzero codes or maxima\n", tag);
            }
        }
    }
    for (int64_t i = zlen; i < n; i++) nz += qm[(size_t)i] != 0.0f;
    if (ok)
        printf("  ok   adamw8 %s, %d steps (p, codes, maxima; nonzero m codes %.3f)\n", tag, steps,
               (double)nz / (double)(n - zlen > 0 ? n - zlen : 1));
}

int main() {
    // dropout: vector path + tail (n % 8 != 0), scalar path (misaligned), a grid far smaller than the work
    const double ps[] = {0.0, 0.1, 0.5, 0.9};
    for (double p : ps) {
        dropout_case<float>(100003, p, 1234, 7, 0, false, 8);
        dropout_case<bf>(100003, p, 1234, 7, 0, false, 8);
    }
    dropout_case<float>(1, 0.5, 1, 2, 0, false, 1);
    dropout_case<bf>(7, 0.5, 1, 2, 0, false, 1);
    dropout_case<float>(4099, 0.3, 0xdeadbeefu, 3000000000u, 1, false, 3);
    dropout_case<bf>(4099, 0.3, 0xdeadbeefu, 3000000000u, 1, false, 3);
    dropout_case<float>(20000, 0.2, 99, 5, 0, true, 4); // y aliases x (a recompute writes over its input)
    dropout_case<bf>(20000, 0.2, 99, 5, 0, true, 4);
    // neftune: rows of H not a multiple of the vector width (a vector spans two keys), the scalar tail and
    // misaligned paths, a grid smaller than the work, in place, a large salt, mag 0 (the identity)
    for (int b16 = 0; b16 < 2; b16++)
        for (int64_t H : {64, 37, 1, 531})
            for (int off = 0; off < 2; off++) {
                if (b16) neftune_case<bf>(45, H, 0, 0.0552427173f, off, false, 3);
                else neftune_case<float>(45, H, 0, 0.0552427173f, off, false, 3);
            }
    neftune_case<float>(128, 96, 3000000000u, 0.5f, 0, true, 5);
    neftune_case<bf>(128, 96, 3000000000u, 0.5f, 0, true, 5);
    neftune_case<float>(7, 13, 1, 0.0f, 0, false, 1);
    neftune_case<bf>(300, 256, 0, 0.01f, 0, false, 300); // a full grid: ceil(n / (256 V)) and more
    neftune_case<float>(45, 64, 7, 0.0311f, 0, false, 3, true); // the micro step's mag from the device, the attr a decoy
    neftune_case<bf>(45, 64, 7, 0.0311f, 1, true, 3, true);
    // dequant: word + vector path, byte loads, scalar stores, grid-stride; every K block count 1..5
    for (int b16 = 0; b16 < 2; b16++)
        for (int64_t K : {64, 192, 320})
            for (int qoff = 0; qoff < 2; qoff++)
                for (int woff = 0; woff < 2; woff++) {
                    if (b16) dequant_case<bf>(67, K, qoff, woff, 2, 0);
                    else dequant_case<float>(67, K, qoff, woff, 2, 0);
                }
    dequant_case<float>(1, 64, 0, 0, 1, 0);
    dequant_case<bf>(3, 128, 0, 0, 5, 1);
    dequant_case<float>(5, 256, 0, 0, 1, 2);
    dequant_case<bf>(5, 256, 0, 0, 1, 2);
    dequant_case<float>(200, 4096, 0, 0, 100, 0); // a full-size grid: ceil(N K / 8 / 256)
    // K even but not a multiple of 64: a shorter last block (K % 8 == 0: one scale per word), words that
    // straddle rows (K % 8 != 0: a scale per element), a last partial word (N K % 8 != 0)
    for (int b16 = 0; b16 < 2; b16++)
        for (int64_t K : {232, 70, 100, 2, 6})
            for (int64_t N : {1, 5, 33})
                for (int off = 0; off < 2; off++) {
                    if (b16) dequant_case<bf>(N, K, off, off, 2, 0);
                    else dequant_case<float>(N, K, off, off, 2, 0);
                }
    // pure-bf16 AdamW: sizes around one block and odd ones, every grid kind, blocks at an offset in the tensor
    const adamw_hp base = {1e-3f, 7.0f, 1.0f, 0.9, 0.01};
    for (int64_t n : {1, 255, 256, 257, 4099}) {
        const unsigned full = (unsigned)((n + 255) / 256);
        adamw_sr_case(n, 0, 3, 1, base);
        adamw_sr_case(n, 0, 3, 3, base); // n <= 512: idle blocks
        if (full != 1 && full != 3) adamw_sr_case(n, 0, 3, full, base);
    }
    adamw_sr_case(100003, 0, 0, 8, base);
    adamw_sr_case(100003, 0, 1, 391, base); // full grid
    adamw_sr_case(4099, 12345, 2, 3, base);              // this rank's block starts at element 12345
    adamw_sr_case(4099, 2 * 4099, 2, 17, base);          // rank 2 of blocks of 4099
    adamw_sr_case(4099, (1LL << 32) - 1000, 9, 5, base); // the index wraps past 2^32 within the block
    adamw_sr_case(1000, 3, 1500000000u, 2, base);        // 3 salt + j wraps
    // the first step (bias corrections 0.1, 0.001); a later one with scaled gradients (clipping); beta1 0.3
    // (w1 >= 0.5: the other lerp form); lr 0 (p stays: an exact bf16 stays exact); no weight decay
    adamw_sr_case(4099, 777, 4, 4, {1e-3f, 1.0f, 1.0f, 0.9, 0.01});
    adamw_sr_case(4099, 777, 4, 4, {3e-4f, 1000.0f, 0.37f, 0.9, 0.1});
    adamw_sr_case(4099, 777, 4, 4, {2e-2f, 13.0f, 2.5f, 0.3, 0.05});
    adamw_sr_case(4099, 777, 4, 4, {0.0f, 7.0f, 1.0f, 0.9, 0.0});
    adamw_sr_case(4099, 777, 4, 4, {1e-3f, 7.0f, 1.0f, 0.9, 0.0});
    // LoRA+'s lr_scale (a param group's lr x ratio): a power of two and another; the first step and a later one
    adamw_sr_case(4099, 777, 4, 4, {1e-3f, 1.0f, 1.0f, 0.9, 0.01, 16.0});
    adamw_sr_case(4099, 777, 4, 4, {3e-4f, 9.0f, 0.37f, 0.9, 0.1, 3.7});
    // the f32-state kernels (f32 params; bf16 gradients with f32 master state), with and without lr_scale
    for (int gb = 0; gb < 2; gb++) {
        adamw_f32_case(4099, 3, gb, {1e-3f, 7.0f, 1.0f, 0.9, 0.01});
        adamw_f32_case(4099, 17, gb, {1e-3f, 1.0f, 1.0f, 0.9, 0.01, 16.0});
        adamw_f32_case(1000, 2, gb, {3e-4f, 9.0f, 0.37f, 0.3, 0.1, 3.7});
    }
    // 8-bit AdamW state: one block per row (K 256), 2 full + a short one (600), short only (64, 1), many
    // blocks (4099: 16 + 3); grids of 1 and a few (grid-stride) and full; f32 p with f32 and bf16 (master
    // weights) gradients; bf16 p at an offset in the tensor (one crossing 2^32); from zero and from a state
    // of a few CPU steps; the first step, scaled gradients, beta1 0.3, no weight decay
    const adamw_hp h8 = {1e-3f, 1.0f, 1.0f, 0.9, 0.01};
    for (int warm = 0; warm <= 3; warm += 3) {
        adamw8_case<float>(3, 256, 0, false, warm, 3, 1, h8);
        adamw8_case<float>(4, 600, 0, true, warm, 3, 2, h8);
        adamw8_case<float>(5, 600, 0, false, warm, 3, 3, {3e-4f, 1.0f, 0.37f, 0.9, 0.1});
        adamw8_case<float>(7, 64, 0, false, warm, 3, 1, h8);
        adamw8_case<float>(37, 1, 0, true, warm, 2, 5, h8);
        adamw8_case<bf>(3, 256, 3 * 256, false, warm, 3, 1, h8);
        adamw8_case<bf>(4, 600, 12345, false, warm, 3, 2, {2e-2f, 1.0f, 2.5f, 0.3, 0.05});
        adamw8_case<bf>(7, 64, 7 * 64, false, warm, 3, 1, h8);
        adamw8_case<bf>(37, 1, 37, false, warm, 2, 5, h8);
        adamw8_case<bf>(5, 600, (1LL << 32) - 1000, false, warm, 2, 1, {1e-3f, 1.0f, 1.0f, 0.9, 0.0});
    }
    adamw8_case<float>(9, 4099, 0, false, 2, 2, 3, h8);   // 9 x 17 blocks on 3 CTAs of 8 warps
    adamw8_case<bf>(9, 4099, 9 * 4099, false, 2, 2, 20, h8); // the full grid: ceil(153 / 8)
    adamw8_case<float>(4, 600, 0, true, 3, 2, 2, {1e-3f, 1.0f, 1.0f, 0.9, 0.01, 16.0}); // LoRA+'s lr_scale
    adamw8_case<bf>(4, 600, 12345, false, 0, 2, 2, {3e-4f, 1.0f, 0.37f, 0.9, 0.1, 3.7});
    // the step's beta1 from the device pair (lr_scheduler: one_cycle), the attr a decoy: every kernel kind
    const double cb1 = 0.8762983410742561;
    adamw_sr_case(4099, 777, 4, 4, {1e-3f, 7.0f, 1.0f, cb1, 0.01, 1.0, true});
    adamw_sr_case(4099, 777, 4, 4, {3e-4f, 1.0f, 0.37f, 0.95, 0.1, 3.7, true});
    for (int gb = 0; gb < 2; gb++) adamw_f32_case(4099, 3, gb, {1e-3f, 7.0f, 1.0f, cb1, 0.01, 1.0, true});
    adamw8_case<float>(4, 600, 0, true, 3, 2, 2, {1e-3f, 1.0f, 1.0f, cb1, 0.01, 1.0, true});
    adamw8_case<bf>(4, 600, 12345, false, 0, 2, 2, {3e-4f, 1.0f, 0.37f, 0.85, 0.1, 1.0, true});
    printf("%d cases, %d failed\n", g_cases, g_fail);
    return g_fail ? 1 : 0;
}
