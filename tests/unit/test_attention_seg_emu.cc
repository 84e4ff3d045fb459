// test_attention_seg_emu.cc — segment skipping in the whole-row attention
// kernels on packed rows (codegen/kernels/common.cuh: every seg row is
// non-decreasing): the CUDA-core kernels (attention_fwd.cuh,
// attention_bwd.cuh; f32 and bf16 storage), the tensor-core ones
// (attention_tc.cuh, bf16) and attention_any.cuh, run as host C++ on the
// SIMT emulator (tests/unit/emu/cuda_bf16.h).
//
// Rows of up to 1024 tokens packed with many short segments of uneven
// lengths (1, 5, 37, 63, 64, 65, 100, ...), segments that start exactly on
// and one token off 64-token tile boundaries, ids with gaps, trailing
// padding where every token is its own segment, a row of one segment and
// one of all singletons; B > 1 with a different segmentation per row, GQA,
// head_dim 64 and 128 (attention_any: 32), causal and not, seg NULL, and
// Gemma 2's soft-capping (softcap 1 to 2 against scores of a few units; the
// reference without the cap must lie outside the tolerance of the one with
// it, so a kernel that ignored the cap would fail).
// For every kernel:
//  * skipping on (AXO_ATT_SEG_SKIP, a variable here) against skipping off,
//    every output element bit for bit: the skipped tiles change nothing;
//  * skipping on against the CPU reference (ck_attention_{fwd,bwd}_f32),
//    every element, with the tolerances of test_cuda_kernels.c (CUDA-core,
//    attention_any) and test_attention_tc_emu.cc (tensor cores);
//  * the tiles skipped, counted by the emulator's completed block barriers
//    (a fixed number per loop trip), against a brute-force count from the
//    mask: a forward / dQ CTA skips exactly the key tiles before the first
//    one holding a key any of its queries sees, a dK/dV CTA exactly the
//    query tiles after the last one holding a query that sees any of its
//    keys (per query head of its group). Structural, not timing.
#define AXO_ATT_SEG_SKIP g_seg_skip
static int g_seg_skip = 1;

#include "emu/cuda_bf16.h"
#include "emu/tolerance.h"

#include "codegen/kernels/common.cuh"
#include "codegen/kernels/attention_any.cuh"
#include "codegen/kernels/attention_bwd.cuh"
#include "codegen/kernels/attention_fwd.cuh"
#include "codegen/kernels/attention_tc.cuh"

extern "C" {
#include "runtime/cpu_kernels.h"
}

#include <string>

typedef __nv_bfloat16 bf;

static int g_fail, g_checks;
static double g_worst; // the largest |error| / tolerance of a family's reference comparisons
static uint64_t g_rng = 0x51ed270b27a4f1c3ull;
static double urand() {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

// ---- segmentations ----------------------------------------------------------
enum { SEG_UNEVEN, SEG_TILES, SEG_SINGLETONS, SEG_ONE, SEG_GAPS };
static const char *seg_name[] = {"uneven + padding", "on/off tile edges", "all singletons", "one segment",
                                 "id gaps + padding"};

// Row of S ids, non-decreasing. start: the first length's index (rows differ).
static void make_row(int *sg, int S, int kind, int start) {
    static const int uneven[] = {1, 5, 37, 63, 64, 65, 100, 2, 129, 17, 1, 1, 200, 31, 96, 3};
    // from index 0, segments start at 0, 64, 192, 255, 320, 384, 511, 640, 641, 704, 896, 960: on a tile edge or
    // one token off it
    static const int tiles[] = {64, 128, 63, 65, 64, 127, 129, 1, 63, 192, 64, 2};
    const int nu = (int)(sizeof uneven / sizeof uneven[0]), nt = (int)(sizeof tiles / sizeof tiles[0]);
    const int pad = kind == SEG_UNEVEN || kind == SEG_GAPS ? S / 10 + 3 : 0; // trailing padding: one id per token
    int id = kind == SEG_GAPS ? 7 : 0, i = 0, n = start;
    while (i < S - pad) {
        int len = S; // SEG_ONE
        if (kind == SEG_UNEVEN || kind == SEG_GAPS) len = uneven[n % nu];
        else if (kind == SEG_TILES) len = tiles[n % nt];
        else if (kind == SEG_SINGLETONS) len = 1;
        for (int e = 0; e < len && i < S - pad; e++) sg[i++] = id;
        n++;
        id += kind == SEG_GAPS ? 1 + (int)(urand() * 5) : 1;
    }
    for (; i < S; i++) sg[i] = id++;
}

// ---- comparisons ---------------------------------------------------------------
static bool compare(const char *what, const float *got, const float *ref, int64_t n, double rtol, double afrac) {
    const emu_tol t = emu_tol_scan(got, ref, n, rtol, afrac);
    g_checks++;
    g_worst = std::max(g_worst, t.worst);
    if (t.bad)
        printf("    %-5s FAIL vs reference: %lld of %lld outside tolerance (worst at %lld: got %.6g ref %.6g)\n", what,
               (long long)t.bad, (long long)n, (long long)t.wi, got[t.wi], ref[t.wi]);
    return t.bad == 0;
}
// Bitwise: skipping on (a) against off (b).
static bool same_bits(const char *what, const void *a, const void *b, int64_t n, int esize) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(x + i * esize, y + i * esize, (size_t)esize) != 0 && bad++ == 0) first = i;
    g_checks++;
    if (bad) printf("    %-5s FAIL: %lld of %lld elements differ from the unskipped kernel (first %lld)\n", what,
                    (long long)bad, (long long)n, (long long)first);
    return bad == 0;
}
static float to_f(float x) { return x; }
static float to_f(bf x) { return __bfloat162float(x); }
template <typename T> static std::vector<float> as_f(const std::vector<T> &x) {
    std::vector<float> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = to_f(x[i]);
    return r;
}
template <typename T> static T from_f(float x);
template <> float from_f<float>(float x) { return x; }
template <> bf from_f<bf>(float x) { return __float2bfloat16_rn(x); }
static void round_bf(std::vector<float> &x) {
    for (float &v : x) v = __bfloat162float(__float2bfloat16_rn(v));
}

// ---- the mask, brute force ----------------------------------------------------
struct geom {
    int B, S, nh, nkv, causal;
    const int *seg; // [B,S] or NULL
    int window;     // a sliding window (0: none)
    float softcap;  // Gemma 2's cap of the scores (0: none)
    int cw() const { return ax_att_causal_arg(causal, window); } // the kernels' causal argument
};
static bool vis(const geom &g, int b, int i, int j) {
    return (!g.causal || (j <= i && (g.window <= 0 || i - j < g.window))) &&
           (!g.seg || g.seg[(size_t)b * g.S + i] == g.seg[(size_t)b * g.S + j]);
}
// Key tiles a forward / dQ CTA (query tile qt of row b) may skip: those before the first tile holding a key
// that one of its queries sees (a query sees itself, so there is one).
static long skip_q(const geom &g, int b, int qt) {
    for (int j = 0; j < g.S; j++)
        for (int i = qt * 64; i < std::min(g.S, qt * 64 + 64); i++)
            if (vis(g, b, i, j)) return j / 64;
    return 0;
}
// Query tiles a dK/dV CTA (key tile kt) may skip per query head: those after the last tile holding a query that
// sees one of its keys.
static long skip_k(const geom &g, int b, int kt) {
    const int nt = (g.S + 63) / 64;
    for (int i = g.S - 1; i >= 0; i--)
        for (int j = kt * 64; j < std::min(g.S, kt * 64 + 64); j++)
            if (vis(g, b, i, j)) return nt - 1 - i / 64;
    return 0;
}
static long expected_skips(const geom &g, bool dkdv) {
    long n = 0;
    const int nt = (g.S + 63) / 64;
    for (int b = 0; b < g.B; b++)
        for (int t = 0; t < nt; t++) n += dkdv ? (long)g.nh * skip_k(g, b, t) : (long)g.nh * skip_q(g, b, t);
    return n; // dK/dV: nkv CTAs x (nh / nkv) heads each = nh per key tile
}
// Runs launch() with skipping off then on; the skipped loop trips (block barriers saved / per_trip) must be the
// brute-force count.
template <typename F> static bool run_both(const char *what, const geom &g, bool dkdv, int per_trip, F launch) {
    g_seg_skip = 0;
    long long s0 = EMU.block_syncs;
    launch(0);
    const long long off = EMU.block_syncs - s0;
    g_seg_skip = 1;
    s0 = EMU.block_syncs;
    launch(1);
    const long long on = EMU.block_syncs - s0;
    if (per_trip == 0) return true; // attention_any: per-thread loops, no barriers to count
    const long exp = expected_skips(g, dkdv);
    const bool ok = off - on == (long long)exp * per_trip;
    g_checks++;
    printf("    %-5s %ld of %lld tile visits skipped%s\n", what, (long)((off - on) / per_trip), off / per_trip,
           ok ? "" : " FAIL");
    if (!ok)
        printf("    %-5s FAIL: %lld block barriers saved, expected %ld skipped tiles x %d\n", what, off - on, exp,
               per_trip);
    return ok;
}

// ---- data ---------------------------------------------------------------------------
struct inputs {
    std::vector<float> q, k, v, go; // bf16-representable when bf16
};
static inputs make_inputs(const geom &g, int hd, bool bf16) {
    const size_t nq = (size_t)g.B * g.S * g.nh * hd, nk = (size_t)g.B * g.S * g.nkv * hd;
    inputs x{std::vector<float>(nq), std::vector<float>(nk), std::vector<float>(nk), std::vector<float>(nq)};
    auto fill = [&](std::vector<float> &a, double amp) {
        for (float &e : a) e = (float)((urand() * 2 - 1) * amp);
        if (bf16) round_bf(a);
    };
    fill(x.q, 1.5 * 1.7), fill(x.k, 1.5 * 1.7), fill(x.v, 1.7), fill(x.go, 1.7);
    return x;
}
template <typename T> static std::vector<T> store(const std::vector<float> &x) {
    std::vector<T> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = from_f<T>(x[i]);
    return r;
}
// D = dout . out per (b, h, i), as the preprocess kernel's inputs give it (fp32 FMA, d ascending)
static std::vector<float> make_D(const geom &g, int hd, const std::vector<float> &go, const std::vector<float> &o) {
    std::vector<float> D((size_t)g.B * g.nh * g.S);
    for (int b = 0; b < g.B; b++)
        for (int i = 0; i < g.S; i++)
            for (int h = 0; h < g.nh; h++) {
                float s = 0;
                const size_t r = (((size_t)b * g.S + i) * g.nh + h) * hd;
                for (int d = 0; d < hd; d++) s = fmaf(go[r + d], o[r + d], s);
                D[((size_t)b * g.nh + h) * g.S + i] = s;
            }
    return D;
}

// ---- the three kernel families --------------------------------------------------------
// Results of one family's forward + backward with skipping on [1] and off [0].
struct results {
    std::vector<float> o[2], lse[2], dq[2], dk[2], dv[2];
};
static bool check_family(const char *fam, const geom &g, int hd, const inputs &x, const results &r, bool bf16out,
                         double rt, double af, double rt_l, double af_l) {
    const size_t nq = x.q.size(), nk = x.k.size(), nl = (size_t)g.B * g.nh * g.S;
    bool ok = true;
    // bitwise on / off (floats hold the stored values exactly; compare their bits)
    ok &= same_bits("out", r.o[1].data(), r.o[0].data(), (int64_t)nq, 4);
    ok &= same_bits("lse", r.lse[1].data(), r.lse[0].data(), (int64_t)nl, 4);
    ok &= same_bits("dq", r.dq[1].data(), r.dq[0].data(), (int64_t)nq, 4);
    ok &= same_bits("dk", r.dk[1].data(), r.dk[0].data(), (int64_t)nk, 4);
    ok &= same_bits("dv", r.dv[1].data(), r.dv[0].data(), (int64_t)nk, 4);
    // against the reference (the backward from the kernel's own out and lse, as the executor runs it)
    const float scale = (float)(1.0 / sqrt((double)hd));
    std::vector<float> oref(nq), lref(nl), dqr(nq), dkr(nk), dvr(nk);
    g_worst = 0;
    ck_attention_fwd_f32(x.q.data(), x.k.data(), x.v.data(), g.seg, oref.data(), lref.data(), g.B, g.S, g.nh, g.nkv,
                         hd, scale, g.causal, g.window, g.softcap);
    ck_attention_bwd_f32(x.q.data(), x.k.data(), x.v.data(), g.seg, r.o[1].data(), r.lse[1].data(), x.go.data(),
                         dqr.data(), dkr.data(), dvr.data(), g.B, g.S, g.nh, g.nkv, hd, scale, g.causal,
                         g.window, g.softcap);
    if (bf16out) round_bf(oref), round_bf(dqr), round_bf(dkr), round_bf(dvr);
    ok &= compare("out", r.o[1].data(), oref.data(), (int64_t)nq, rt, af);
    ok &= compare("lse", r.lse[1].data(), lref.data(), (int64_t)nl, rt_l, af_l);
    ok &= compare("dq", r.dq[1].data(), dqr.data(), (int64_t)nq, rt, af);
    ok &= compare("dk", r.dk[1].data(), dkr.data(), (int64_t)nk, rt, af);
    ok &= compare("dv", r.dv[1].data(), dvr.data(), (int64_t)nk, rt, af);
    if (g.softcap > 0) { // the cap bends this case: the reference without it lies outside the tolerance
        const double w = g_worst;
        std::vector<float> o0(nq), l0(nl), q0(nq), k0(nk), v0(nk);
        ck_attention_fwd_f32(x.q.data(), x.k.data(), x.v.data(), g.seg, o0.data(), l0.data(), g.B, g.S, g.nh, g.nkv,
                             hd, scale, g.causal, g.window, 0.0);
        ck_attention_bwd_f32(x.q.data(), x.k.data(), x.v.data(), g.seg, r.o[1].data(), r.lse[1].data(), x.go.data(),
                             q0.data(), k0.data(), v0.data(), g.B, g.S, g.nh, g.nkv, hd, scale, g.causal, g.window,
                             0.0);
        if (bf16out) round_bf(o0), round_bf(q0), round_bf(k0);
        const struct {
            const char *what;
            const std::vector<float> &nocap, &ref;
            double rt, af;
        } cs[] = {{"out", o0, oref, rt, af}, {"lse", l0, lref, rt_l, af_l}, {"dq", q0, dqr, rt, af},
                  {"dk", k0, dkr, rt, af}};
        for (const auto &e : cs) {
            const emu_tol t = emu_tol_scan(e.nocap.data(), e.ref.data(), (int64_t)e.ref.size(), e.rt, e.af);
            g_checks++;
            if (!t.bad) printf("    %-5s FAIL: the reference without the cap is within the tolerance\n", e.what);
            ok &= t.bad > 0;
        }
        g_worst = w;
    }
    printf("  %s %s hd%d B=%d S=%d nh=%d nkv=%d causal=%d window=%d softcap=%g (worst error %.2f of the tolerance)\n",
           ok ? "ok  " : "FAIL", fam, hd, g.B, g.S, g.nh, g.nkv, g.causal, g.window, (double)g.softcap, g_worst);
    return ok;
}

// CUDA-core kernels (attention_fwd.cuh, attention_bwd.cuh), storage T.
template <typename T, int HD> static bool run_cuda_core(const geom &g, const inputs &x) {
    const bool bf16 = sizeof(T) == 2;
    const size_t nq = x.q.size(), nk = x.k.size(), nl = (size_t)g.B * g.nh * g.S;
    const float scale = (float)(1.0 / sqrt((double)HD));
    const std::vector<T> q = store<T>(x.q), k = store<T>(x.k), v = store<T>(x.v), go = store<T>(x.go);
    std::vector<T> o(nq), dq(nq), dk(nk), dv(nk);
    std::vector<float> lse(nl);
    results r;
    const unsigned nt = (unsigned)((g.S + 63) / 64);
    const emu_dim3 gq{nt, (unsigned)g.nh, (unsigned)g.B}, gk{nt, (unsigned)g.nkv, (unsigned)g.B};
    bool ok = run_both("fwd", g, false, 3, [&](int on) {
        emu_launch(gq, AXO_ATT_NT, emu_dyn_smem(), emu_smem_bytes, [&] {
            attn_fwd_body<T, HD>(q.data(), k.data(), v.data(), g.seg, o.data(), lse.data(), g.S, g.nh, g.nkv, scale,
                                 g.cw(), g.softcap);
        });
        r.o[on] = as_f(o), r.lse[on] = lse;
    });
    // both backwards from the skipping forward's out and lse
    const std::vector<float> D = make_D(g, HD, x.go, r.o[1]);
    ok &= run_both("dkdv", g, true, 5, [&](int on) {
        emu_launch(gk, AXO_ATT_NT, emu_dyn_smem(), emu_smem_bytes, [&] {
            attn_bwd_dkdv_body<T, HD>(q.data(), k.data(), v.data(), g.seg, go.data(), r.lse[1].data(), D.data(),
                                      dk.data(), dv.data(), g.S, g.nh, g.nkv, scale, g.cw(), g.softcap);
        });
        r.dk[on] = as_f(dk), r.dv[on] = as_f(dv);
    });
    ok &= run_both("dq", g, false, 3, [&](int on) {
        emu_launch(gq, AXO_ATT_NT, emu_dyn_smem(), emu_smem_bytes, [&] {
            attn_bwd_dq_body<T, HD>(q.data(), k.data(), v.data(), g.seg, go.data(), r.lse[1].data(), D.data(),
                                    dq.data(), g.S, g.nh, g.nkv, scale, g.cw(), g.softcap);
        });
        r.dq[on] = as_f(dq);
    });
    std::string fam = std::string("cuda-core ") + (bf16 ? "bf16" : "f32 ");
    return check_family(fam.c_str(), g, HD, x, r, bf16, bf16 ? 8e-3 : 1e-4, bf16 ? 2e-3 : 1e-5, 1e-5, 1e-6) && ok;
}

// Tensor-core kernels (attention_tc.cuh), bf16.
template <int HD> static bool run_tc(const geom &g, const inputs &x) {
    const size_t nq = x.q.size(), nk = x.k.size(), nl = (size_t)g.B * g.nh * g.S;
    const float scale = (float)(1.0 / sqrt((double)HD));
    const std::vector<bf> q = store<bf>(x.q), k = store<bf>(x.k), v = store<bf>(x.v), go = store<bf>(x.go);
    std::vector<bf> o(nq), dq(nq), dk(nk), dv(nk);
    std::vector<float> lse(nl);
    results r;
    const unsigned nt = (unsigned)((g.S + 63) / 64);
    const emu_dim3 gq{nt, (unsigned)g.nh, (unsigned)g.B}, gk{nt, (unsigned)g.nkv, (unsigned)g.B};
    bool ok = run_both("fwd", g, false, 2, [&](int on) {
        emu_launch(gq, 128, emu_dyn_smem(), emu_smem_bytes, [&] {
            tc_fwd_body<HD>(q.data(), k.data(), v.data(), g.seg, o.data(), lse.data(), g.S, g.nh, g.nkv, scale,
                            g.cw(), g.softcap);
        });
        r.o[on] = as_f(o), r.lse[on] = lse;
    });
    const std::vector<float> D = make_D(g, HD, x.go, r.o[1]);
    ok &= run_both("dkdv", g, true, 3, [&](int on) {
        emu_launch(gk, 256, emu_dyn_smem(), emu_smem_bytes, [&] {
            tc_dkdv_body<HD>(q.data(), k.data(), v.data(), g.seg, go.data(), r.lse[1].data(), D.data(), dk.data(),
                             dv.data(), g.S, g.nh, g.nkv, scale, g.cw(), g.softcap);
        });
        r.dk[on] = as_f(dk), r.dv[on] = as_f(dv);
    });
    ok &= run_both("dq", g, false, 2, [&](int on) {
        emu_launch(gq, 128, emu_dyn_smem(), emu_smem_bytes, [&] {
            tc_dq_body<HD>(q.data(), k.data(), v.data(), g.seg, go.data(), r.lse[1].data(), D.data(), dq.data(), g.S,
                           g.nh, g.nkv, scale, g.cw(), g.softcap);
        });
        r.dq[on] = as_f(dq);
    });
    return check_family("tensor-core bf16", g, HD, x, r, true, 1.6e-2, 1e-2, 1e-4, 2e-5) && ok;
}

// attention_any.cuh (one thread per row), storage T.
template <typename T> static bool run_any(const geom &g, int hd, const inputs &x) {
    const bool bf16 = sizeof(T) == 2;
    const size_t nq = x.q.size(), nk = x.k.size(), nl = (size_t)g.B * g.nh * g.S;
    const double scale = 1.0 / sqrt((double)hd);
    const std::vector<T> q = store<T>(x.q), k = store<T>(x.k), v = store<T>(x.v), go = store<T>(x.go);
    std::vector<T> o(nq), dq(nq), dk(nk), dv(nk), oi;
    std::vector<float> lse(nl);
    results r;
    const i64 B = g.B, rq = B * g.nh * g.S, rk = B * g.nkv * g.S;
    const emu_dim3 gq{(unsigned)((rq + 127) / 128), 1, 1}, gk{(unsigned)((rk + 127) / 128), 1, 1};
    bool ok = run_both("fwd", g, false, 0, [&](int on) {
        emu_launch(gq, 128, nullptr, 0, [&] {
            att_any_fwd_body<T>(q.data(), k.data(), v.data(), g.seg, o.data(), lse.data(), B, g.S, g.nh, g.nkv, hd,
                                scale, g.cw(), (double)g.softcap);
        });
        r.o[on] = as_f(o), r.lse[on] = lse;
    });
    oi = store<T>(r.o[1]);
    ok &= run_both("dkdv", g, true, 0, [&](int on) {
        emu_launch(gk, 128, nullptr, 0, [&] {
            att_any_dkdv_body<T>(q.data(), k.data(), v.data(), g.seg, oi.data(), r.lse[1].data(), go.data(),
                                 dk.data(), dv.data(), B, g.S, g.nh, g.nkv, hd, scale, g.cw(), (double)g.softcap);
        });
        r.dk[on] = as_f(dk), r.dv[on] = as_f(dv);
    });
    ok &= run_both("dq", g, false, 0, [&](int on) {
        emu_launch(gq, 128, nullptr, 0, [&] {
            att_any_dq_body<T>(q.data(), k.data(), v.data(), g.seg, oi.data(), r.lse[1].data(), go.data(), dq.data(),
                               B, g.S, g.nh, g.nkv, hd, scale, g.cw(), (double)g.softcap);
        });
        r.dq[on] = as_f(dq);
    });
    std::string fam = std::string("attention_any ") + (bf16 ? "bf16" : "f32 ");
    return check_family(fam.c_str(), g, hd, x, r, bf16, bf16 ? 8e-3 : 1e-5, bf16 ? 2e-3 : 1e-6, 1e-5, 1e-6) && ok;
}

// ---- cases --------------------------------------------------------------------------------
enum { FAM_CUDA_F32, FAM_CUDA_BF16, FAM_TC, FAM_ANY_F32, FAM_ANY_BF16 };
struct tcase {
    int fam, hd, B, S, nh, nkv, causal, use_seg;
    int kinds[4]; // segmentation of row b: kinds[b]
    int window = 0; // a sliding window (0: none)
    float softcap = 0; // Gemma 2's cap of the scores (0: none)
};

static void run_case(const tcase &c) {
    std::vector<int> seg((size_t)c.B * c.S);
    printf("case: rows");
    for (int b = 0; b < c.B; b++) {
        make_row(seg.data() + (size_t)b * c.S, c.S, c.kinds[b], 3 * b);
        int nseg = 1;
        for (int i = 1; i < c.S; i++) nseg += seg[(size_t)b * c.S + i] != seg[(size_t)b * c.S + i - 1];
        printf("%s %s (%d segments)", b ? "," : "", c.use_seg ? seg_name[c.kinds[b]] : "seg NULL",
               c.use_seg ? nseg : 1);
    }
    printf("\n");
    const geom g{c.B, c.S, c.nh, c.nkv, c.causal, c.use_seg ? seg.data() : nullptr, c.window, c.softcap};
    const bool bf16 = c.fam == FAM_CUDA_BF16 || c.fam == FAM_TC || c.fam == FAM_ANY_BF16;
    const inputs x = make_inputs(g, c.hd, bf16);
    bool ok = false;
    switch (c.fam) {
    case FAM_CUDA_F32: ok = c.hd == 64 ? run_cuda_core<float, 64>(g, x) : run_cuda_core<float, 128>(g, x); break;
    case FAM_CUDA_BF16: ok = c.hd == 64 ? run_cuda_core<bf, 64>(g, x) : run_cuda_core<bf, 128>(g, x); break;
    case FAM_TC: ok = c.hd == 64 ? run_tc<64>(g, x) : run_tc<128>(g, x); break;
    case FAM_ANY_F32: ok = run_any<float>(g, c.hd, x); break;
    default: ok = run_any<bf>(g, c.hd, x); break;
    }
    g_fail += !ok;
}

// ax_seg_search on its own: every bound of a few monotone rows against std::lower_bound / upper_bound.
static void test_search() {
    int bad = 0, n = 0;
    for (int S : {1, 2, 15, 16, 17, 33, 256, 1000, 8192}) {
        for (int kind = 0; kind < 5; kind++) {
            std::vector<int> sg((size_t)S);
            make_row(sg.data(), S, kind, kind);
            for (int i = 0; i < S; i += 1 + S / 97) {
                const int x = sg[(size_t)i];
                const int lo = (int)(std::lower_bound(sg.begin(), sg.end(), x) - sg.begin());
                const int hi = (int)(std::upper_bound(sg.begin(), sg.end(), x) - sg.begin());
                bad += ax_seg_search(sg.data(), 0, i, x, false) != lo;
                bad += ax_seg_search(sg.data(), i + 1, S, x, true) != hi;
                bad += ax_seg_search(sg.data(), 0, S, x - 1, true) != lo; // ids are ints: > x - 1 is >= x
                n += 3;
            }
        }
    }
    g_checks++;
    printf("%s ax_seg_search: %d bounds, %d wrong\n", bad ? "FAIL" : "ok  ", n, bad);
    g_fail += bad != 0;
}

int main() {
    test_search();
    // The unskipped kernels visit every tile up to the causal bound: the 1024-token rows cost the most.
    const tcase cases[] = {
        // CUDA-core: GQA, four different packed rows, S % 64 != 0 (f32 and bf16 storage, hd 64 / 128)
        {FAM_CUDA_F32, 64, 4, 420, 2, 1, 1, 1, {SEG_UNEVEN, SEG_TILES, SEG_GAPS, SEG_SINGLETONS}},
        {FAM_CUDA_BF16, 64, 2, 512, 4, 2, 1, 1, {SEG_TILES, SEG_UNEVEN}},
        {FAM_CUDA_BF16, 128, 2, 300, 2, 1, 1, 1, {SEG_GAPS, SEG_ONE}},
        {FAM_CUDA_F32, 128, 1, 1024, 1, 1, 1, 1, {SEG_UNEVEN}},
        {FAM_CUDA_F32, 64, 2, 200, 2, 2, 0, 1, {SEG_UNEVEN, SEG_TILES}}, // not causal: same starts / ends
        {FAM_CUDA_F32, 64, 1, 200, 2, 1, 1, 0, {SEG_ONE}},               // seg NULL: nothing to skip
        // tensor cores: long rows, GQA, hd 64 / 128
        {FAM_TC, 64, 2, 1024, 2, 1, 1, 1, {SEG_UNEVEN, SEG_TILES}},
        {FAM_TC, 128, 3, 448, 4, 2, 1, 1, {SEG_GAPS, SEG_SINGLETONS, SEG_UNEVEN}},
        {FAM_TC, 64, 2, 300, 2, 1, 0, 1, {SEG_TILES, SEG_UNEVEN}},
        {FAM_TC, 128, 1, 150, 2, 2, 1, 0, {SEG_ONE}},
        // attention_any (head_dim 32): per-thread segment ranges
        {FAM_ANY_F32, 32, 2, 300, 4, 2, 1, 1, {SEG_UNEVEN, SEG_TILES}},
        {FAM_ANY_BF16, 32, 2, 200, 2, 1, 0, 1, {SEG_GAPS, SEG_SINGLETONS}},
        // sliding windows: tiles before the window (fwd, dQ) and after it (dK/dV) skipped too, with and without seg
        {FAM_CUDA_F32, 64, 2, 420, 2, 1, 1, 1, {SEG_UNEVEN, SEG_ONE}, 100},
        {FAM_CUDA_BF16, 128, 1, 300, 2, 1, 1, 0, {SEG_ONE}, 64},
        {FAM_TC, 64, 2, 448, 2, 1, 1, 1, {SEG_TILES, SEG_ONE}, 130},
        {FAM_TC, 128, 1, 200, 2, 2, 1, 0, {SEG_ONE}, 2},
        {FAM_ANY_F32, 32, 2, 300, 4, 2, 1, 1, {SEG_UNEVEN, SEG_ONE}, 90},
        // Gemma 2's soft-capping: every family, packed rows, GQA, a window
        {FAM_CUDA_F32, 64, 2, 300, 4, 2, 1, 1, {SEG_UNEVEN, SEG_TILES}, 0, 1.5f},
        {FAM_CUDA_BF16, 128, 1, 200, 2, 1, 0, 1, {SEG_GAPS}, 0, 2.0f},
        {FAM_CUDA_F32, 128, 1, 260, 2, 1, 1, 0, {SEG_ONE}, 90, 1.0f},
        {FAM_TC, 64, 2, 300, 2, 1, 1, 1, {SEG_TILES, SEG_UNEVEN}, 0, 1.5f},
        {FAM_TC, 128, 1, 200, 4, 2, 1, 1, {SEG_UNEVEN}, 70, 2.0f},
        {FAM_ANY_F32, 32, 2, 200, 4, 2, 1, 1, {SEG_UNEVEN, SEG_TILES}, 0, 1.0f},
        {FAM_ANY_BF16, 32, 1, 150, 2, 1, 0, 1, {SEG_GAPS}, 0, 1.5f},
    };
    emu.policy = 1; // lowest thread first: warps run apart as far as the barriers let them
#ifdef AXO_EMU_QUICK
    /* sanitizer builds run ~30x slower: one short row per family, and a capped one */
    for (int i : {2, 8, 11, 15, 18}) run_case(cases[i]);
#else
    for (const tcase &c : cases) run_case(c);
    emu.policy = 2; // and the other way round, on the tensor-core pipeline
    {
        const tcase c = {FAM_TC, 64, 2, 400, 2, 1, 1, 1, {SEG_GAPS, SEG_TILES}};
        run_case(c);
    }
#endif
    printf("%s: %d case(s) failed (%d checks)\n", g_fail ? "FAIL" : "PASS", g_fail, g_checks);
    return g_fail ? 1 : 0;
}
