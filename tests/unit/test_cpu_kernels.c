/* test_cpu_kernels.c — the CPU reference kernels:
 *  - every backward against central finite differences of the _f64 forward
 *    (L = <y, w_rand>, checked on a random projection <dL/dx, r>);
 *  - forwards against naive references (matmul bit-exact vs the triple
 *    loop, attention vs an explicit masked softmax, fused vs unfused CE);
 *  - AdamW against a hand-written 2-step sequence, llama3 inv_freq against
 *    values derived by hand;
 *  - every _f32 kernel against its _f64 twin on the same inputs. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/base.h"
#include "runtime/cpu_kernels.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"
#include "tests/check.h"

/* test hook in cpu_kernels.c: the GEMM without its AVX2 path */
void ck_matmul_generic_f32(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                           int accumulate);

/* ---- helpers ------------------------------------------------------------ */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rnd(void) { /* uniform in (-1, 1), xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545f4914f6cdd1dull;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0 * 2.0 - 1.0;
}
static double *dvec(int64_t n, double amp) {
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = amp * rnd();
    return x;
}
static double *dzeros(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(double)); }
static float *fzeros(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }
static float *tof(const double *x, int64_t n) {
    float *y = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
/* the f64 inputs the f32 kernels see: x rounded to float and back */
static void round_to_f32(double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (double)(float)x[i];
}
static double dotd(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
/* max|a - b| / max|b| (normwise relative difference) */
static double rel_f32(const float *a, const double *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || e != e) d = e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}
static double rel_f64(const double *a, const double *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (e > d || e != e) d = e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}
#define CHECK_REL32(a, b, n, tol, what)                                                                     \
    do {                                                                                                    \
        double r_ = rel_f32((a), (b), (n));                                                                 \
        CHECK_MSG(r_ <= (tol), "%s: f32 vs f64 relative difference %.3g > %.3g", (what), r_, (double)(tol)); \
    } while (0)
#define CHECK_REL64(a, b, n, tol, what)                                                                 \
    do {                                                                                                \
        double r_ = rel_f64((a), (b), (n));                                                             \
        CHECK_MSG(r_ <= (tol), "%s: relative difference %.3g > %.3g", (what), r_, (double)(tol));       \
    } while (0)

/* Directional central difference of f along r at x (x restored after). */
static double fd_dir(double (*f)(void *), void *ctx, double *x, int64_t n, const double *r, double h) {
    double *x0 = malloc(sizeof(double) * (size_t)n);
    memcpy(x0, x, sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = x0[i] + h * r[i];
    double lp = f(ctx);
    for (int64_t i = 0; i < n; i++) x[i] = x0[i] - h * r[i];
    double lm = f(ctx);
    memcpy(x, x0, sizeof(double) * (size_t)n);
    free(x0);
    return (lp - lm) / (2 * h);
}
/* <grad, r> against the finite difference of f along r. The tolerance adds the difference's own rounding error,
 * about 4 ulp of f(x) over the step, so a large loss with a small directional derivative is not a false alarm. */
static void check_grad(const char *what, double (*f)(void *), void *ctx, double *x, int64_t n, const double *grad) {
    double *r = dvec(n, 1.0);
    double an = dotd(grad, r, n);
    const double h = 1e-6, f0 = f(ctx);
    double fd = fd_dir(f, ctx, x, n, r, h);
    CHECK_MSG(fabs(fd - an) <= 1e-6 * fabs(an) + 1e-9 + 4 * DBL_EPSILON * fabs(f0) / h,
              "%s: finite difference %.12g vs analytic %.12g (f = %.6g)", what, fd, an, f0);
    free(r);
}

/* ---- matmul ---------------------------------------------------------------- */
/* naive float: c = (acc ? c : 0) + a_i0 b_0j + ..., k ascending, no FMA */
static void naive_mm_f32(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                         int acc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float c = acc ? C[i * N + j] : 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * M + i] : A[i * K + k];
                float b = tb ? B[j * K + k] : B[k * N + j];
                float p = a * b;
                c = c + p;
            }
            C[i * N + j] = c;
        }
}
static void naive_mm_f64(const double *A, const double *B, double *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                         int acc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double c = acc ? C[i * N + j] : 0.0;
            for (int64_t k = 0; k < K; k++)
                c += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            C[i * N + j] = c;
        }
}

static void test_matmul_forward(void) {
    static const int64_t sizes[][3] = {{37, 19, 53}, {1, 1, 1}, {7, 33, 5}, {130, 2100, 300}, {6, 16, 256}, {5, 3, 0}};
    for (size_t si = 0; si < AX_ARRAY_LEN(sizes); si++) {
        int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
        double *A = dvec(M * K, 1.0), *B = dvec(K * N, 1.0), *C0 = dvec(M * N, 1.0);
        round_to_f32(A, M * K);
        round_to_f32(B, K * N);
        round_to_f32(C0, M * N);
        float *Af = tof(A, M * K), *Bf = tof(B, K * N);
        for (int combo = 0; combo < 8; combo++) {
            int ta = combo & 1, tb = (combo >> 1) & 1, acc = (combo >> 2) & 1;
            float *c1 = tof(C0, M * N), *c2 = tof(C0, M * N), *c3 = tof(C0, M * N);
            double *cd = malloc(sizeof(double) * (size_t)(M * N + 1)), *cr = malloc(sizeof(double) * (size_t)(M * N + 1));
            memcpy(cd, C0, sizeof(double) * (size_t)(M * N));
            memcpy(cr, C0, sizeof(double) * (size_t)(M * N));
            ck_matmul_f32(Af, Bf, c1, M, N, K, ta, tb, acc);
            ck_matmul_generic_f32(Af, Bf, c2, M, N, K, ta, tb, acc);
            naive_mm_f32(Af, Bf, c3, M, N, K, ta, tb, acc);
            ck_matmul_f64(A, B, cd, M, N, K, ta, tb, acc);
            naive_mm_f64(A, B, cr, M, N, K, ta, tb, acc);
            CHECK_MSG(memcmp(c1, c3, sizeof(float) * (size_t)(M * N)) == 0,
                      "matmul_f32 %lldx%lldx%lld ta=%d tb=%d acc=%d not bit-identical to the naive loop",
                      (long long)M, (long long)N, (long long)K, ta, tb, acc);
            CHECK_MSG(memcmp(c1, c2, sizeof(float) * (size_t)(M * N)) == 0,
                      "matmul_f32 %lldx%lldx%lld ta=%d tb=%d acc=%d: AVX2 and generic paths differ", (long long)M,
                      (long long)N, (long long)K, ta, tb, acc);
            CHECK_REL64(cd, cr, M * N, 1e-14, "matmul_f64 vs naive");
            CHECK_REL32(c1, cd, M * N, 1e-5, "matmul");
            free(c1), free(c2), free(c3), free(cd), free(cr);
        }
        free(A), free(B), free(C0), free(Af), free(Bf);
    }
}

typedef struct {
    double *A, *B, *w;
    int64_t M, N, K;
    int ta, tb;
} mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    double *C = dzeros(c->M * c->N);
    ck_matmul_f64(c->A, c->B, C, c->M, c->N, c->K, c->ta, c->tb, 0);
    double L = dotd(C, c->w, c->M * c->N);
    free(C);
    return L;
}
static void test_matmul_grad(void) {
    for (int combo = 0; combo < 4; combo++) {
        mm_ctx c = {.M = 9, .N = 7, .K = 11, .ta = combo & 1, .tb = combo >> 1};
        int64_t M = c.M, N = c.N, K = c.K;
        c.A = dvec(M * K, 1.0), c.B = dvec(K * N, 1.0), c.w = dvec(M * N, 1.0);
        double *dA = dzeros(M * K), *dB = dzeros(K * N);
        const double *dC = c.w;
        /* dop(A) = dC op(B)^T; dop(B) = op(A)^T dC, written in each storage layout */
        if (!c.ta) ck_matmul_f64(dC, c.B, dA, M, K, N, 0, !c.tb, 0);
        else ck_matmul_f64(c.B, dC, dA, K, M, N, c.tb, 1, 0);
        if (!c.tb) ck_matmul_f64(c.A, dC, dB, K, N, M, !c.ta, 0, 0);
        else ck_matmul_f64(dC, c.A, dB, N, K, M, 1, c.ta, 0);
        char what[64];
        snprintf(what, sizeof what, "matmul dA ta=%d tb=%d", c.ta, c.tb);
        check_grad(what, mm_loss, &c, c.A, M * K, dA);
        snprintf(what, sizeof what, "matmul dB ta=%d tb=%d", c.ta, c.tb);
        check_grad(what, mm_loss, &c, c.B, K * N, dB);
        free(c.A), free(c.B), free(c.w), free(dA), free(dB);
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static void time_matmul(void) {
    int64_t n = 256;
    double *A = dvec(n * n, 1.0), *B = dvec(n * n, 1.0);
    float *Af = tof(A, n * n), *Bf = tof(B, n * n), *C = fzeros(n * n);
    for (int pass = 0; pass < 2; pass++) {
        void (*mm)(const float *, const float *, float *, int64_t, int64_t, int64_t, int, int, int) =
            pass ? ck_matmul_generic_f32 : ck_matmul_f32;
        mm(Af, Bf, C, n, n, n, 0, 0, 0); /* warm up */
        int reps = 10;
        double t0 = now_ms();
        for (int r = 0; r < reps; r++) mm(Af, Bf, C, n, n, n, 0, 0, 0);
        double ms = (now_ms() - t0) / reps;
        printf("matmul_f32 256x256x256 (%s): %.3f ms, %.1f GFLOP/s\n", pass ? "generic path" : "default path", ms,
               2.0 * n * n * n / (ms * 1e6));
    }
    free(A), free(B), free(Af), free(Bf), free(C);
}

/* ---- rmsnorm --------------------------------------------------------------- */
typedef struct {
    double *x, *w, *wy;
    int64_t R, H;
    double eps, offset; /* offset 1: Gemma's (1 + w) */
} rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    double *y = dzeros(c->R * c->H);
    ck_rmsnorm_fwd_f64(c->x, c->w, y, c->R, c->H, c->eps, c->offset);
    double L = dotd(y, c->wy, c->R * c->H);
    free(y);
    return L;
}
static void test_rmsnorm(double offset) {
    rms_ctx c = {.R = 5, .H = 24, .eps = 1e-6, .offset = offset};
    int64_t n = c.R * c.H;
    c.x = dvec(n, 2.0), c.w = dvec(c.H, 1.0), c.wy = dvec(n, 1.0);
    double *dx = dzeros(n), *dw = dzeros(c.H);
    ck_rmsnorm_bwd_f64(c.x, c.w, c.wy, dx, dw, c.R, c.H, c.eps, c.offset);
    check_grad("rmsnorm dx", rms_loss, &c, c.x, n, dx);
    check_grad("rmsnorm dw", rms_loss, &c, c.w, c.H, dw);
    /* forward against the formula */
    double *y = dzeros(n);
    ck_rmsnorm_fwd_f64(c.x, c.w, y, c.R, c.H, c.eps, c.offset);
    double ss = 0;
    for (int64_t h = 0; h < c.H; h++) ss += c.x[h] * c.x[h];
    CHECK_NEAR(y[3], (offset + c.w[3]) * c.x[3] / sqrt(ss / c.H + c.eps), 1e-14, 0);
    /* f32 vs f64 */
    round_to_f32(c.x, n), round_to_f32(c.w, c.H), round_to_f32(c.wy, n);
    ck_rmsnorm_fwd_f64(c.x, c.w, y, c.R, c.H, c.eps, c.offset);
    memset(dw, 0, sizeof(double) * (size_t)c.H);
    ck_rmsnorm_bwd_f64(c.x, c.w, c.wy, dx, dw, c.R, c.H, c.eps, c.offset);
    float *xf = tof(c.x, n), *wf = tof(c.w, c.H), *dyf = tof(c.wy, n), *yf = fzeros(n), *dxf = fzeros(n),
          *dwf = fzeros(c.H);
    ck_rmsnorm_fwd_f32(xf, wf, yf, c.R, c.H, c.eps, c.offset);
    ck_rmsnorm_bwd_f32(xf, wf, dyf, dxf, dwf, c.R, c.H, c.eps, c.offset);
    CHECK_REL32(yf, y, n, 1e-5, "rmsnorm fwd");
    CHECK_REL32(dxf, dx, n, 1e-5, "rmsnorm dx");
    CHECK_REL32(dwf, dw, c.H, 1e-5, "rmsnorm dw");
    free(c.x), free(c.w), free(c.wy), free(dx), free(dw), free(y);
    free(xf), free(wf), free(dyf), free(yf), free(dxf), free(dwf);
}

/* ---- rope -------------------------------------------------------------------- */
typedef struct {
    double *x, *wy;
    int32_t *pos;
    float *inv;
    int64_t B, S, nh, hd, nrot;
    float mscale;
    int il; /* GLM's interleaved pairs */
} rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    int64_t n = c->B * c->S * c->nh * c->hd;
    double *y = dzeros(n);
    ck_rope_fwd_f64(c->x, c->pos, c->inv, y, c->B, c->S, c->nh, c->hd, c->nrot, c->mscale, 0, 0, 0, c->il);
    double L = dotd(y, c->wy, n);
    free(y);
    return L;
}
/* nrot 4 of hd 8: the whole head (mscale 1); nrot 3 of hd 8 with yarn's attention factor: a partial rotation
 * (Phi-4-mini's), the last 2 dims passed through; both again on GLM's interleaved pairs (2i, 2i + 1) */
static void test_rope_case(int64_t nrot, float mscale, int il) {
    rope_ctx c = {.B = 2, .S = 5, .nh = 3, .hd = 8, .nrot = nrot, .mscale = mscale, .il = il};
    int64_t n = c.B * c.S * c.nh * c.hd;
    float inv[4];
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_DEFAULT, .dim = 2 * nrot, .theta = 10000.0}, inv), 0);
    int32_t pos[10] = {0, 1, 2, 3, 4, 7, 8, 9, 30, 31};
    c.pos = pos, c.inv = inv;
    c.x = dvec(n, 1.0), c.wy = dvec(n, 1.0);
    double *dx = dzeros(n);
    ck_rope_fwd_f64(c.wy, c.pos, inv, dx, c.B, c.S, c.nh, c.hd, nrot, mscale, 1, 0, 0, il); /* backward = the transpose */
    check_grad("rope dx (inverse)", rope_loss, &c, c.x, n, dx);
    /* round trip, in place: the map is mscale times a rotation */
    double *y = dzeros(n);
    memcpy(y, c.x, sizeof(double) * (size_t)n);
    ck_rope_fwd_f64(y, c.pos, inv, y, c.B, c.S, c.nh, c.hd, nrot, mscale, 0, 0, 0, il);
    ck_rope_fwd_f64(y, c.pos, inv, y, c.B, c.S, c.nh, c.hd, nrot, mscale, 1, 0, 0, il);
    for (int64_t i = 0; i < n; i++)
        if (i % c.hd < 2 * nrot) y[i] /= (double)mscale * mscale;
    CHECK_REL64(y, c.x, n, 1e-14, "rope forward then inverse");
    /* one element by hand: b=1, s=3 (pos 30), head 2, i=1; the dims past 2 nrot unchanged */
    ck_rope_fwd_f64(c.x, c.pos, inv, y, c.B, c.S, c.nh, c.hd, nrot, mscale, 0, 0, 0, il);
    int64_t o = ((1 * c.S + 3) * c.nh + 2) * c.hd;
    float ang = inv[1] * 30.0f;
    double cm = cos(ang) * mscale, sm = sin(ang) * mscale;
    const int64_t d1 = il ? 2 : 1, d2 = il ? 3 : 1 + nrot; /* pair 1: (1, 1 + nrot), or interleaved (2, 3) */
    CHECK_NEAR(y[o + d1], c.x[o + d1] * cm - c.x[o + d2] * sm, 1e-15, 1e-15);
    CHECK_NEAR(y[o + d2], c.x[o + d2] * cm + c.x[o + d1] * sm, 1e-15, 1e-15);
    for (int64_t i = 2 * nrot; i < c.hd; i++) CHECK_EQ(y[o + i], c.x[o + i]);
    CHECK_NEAR(inv[1], pow(10000.0, -2.0 / (double)(2 * nrot)), 1e-7, 0);
    /* f32 vs f64 */
    round_to_f32(c.x, n);
    ck_rope_fwd_f64(c.x, c.pos, inv, y, c.B, c.S, c.nh, c.hd, nrot, mscale, 0, 0, 0, il);
    float *xf = tof(c.x, n), *yf = fzeros(n);
    ck_rope_fwd_f32(xf, c.pos, inv, yf, c.B, c.S, c.nh, c.hd, nrot, mscale, 0, 0, 0, il);
    CHECK_REL32(yf, y, n, 1e-5, "rope");
    free(c.x), free(c.wy), free(dx), free(y), free(xf), free(yf);
}
static void test_rope(void) {
    test_rope_case(4, 1.0f, 0);
    test_rope_case(3, 1.1386294f, 0);
    test_rope_case(4, 1.0f, 1);
    test_rope_case(3, 1.1386294f, 1);
}

static void test_rope_inv_freq(void) {
    /* Llama 3.x scaling, head_dim 8 so all three regimes appear:
     * theta 500000, factor 8, low 1, high 4, original 8192 ->
     * low_wavelen 8192, high_wavelen 2048. Derived by hand:
     *   inv_i = 500000^(-i/4): 1, 0.0376, 0.001414, 5.318e-5;
     *   wavelen_i = 2 pi / inv_i: 6.28, 167, 4443, 118147;
     *   i=0,1: wavelen < 2048 -> unchanged;
     *   i=3: wavelen > 8192 -> inv/8;
     *   i=2: medium: sf = (8192/wavelen - 1)/(4 - 1), inv' = (1-sf) inv/8 + sf inv. */
    float got[8];
    const ck_rope l3 = {.type = CK_ROPE_LLAMA3, .dim = 8, .theta = 500000.0, .factor = 8.0, .low_freq_factor = 1.0,
                        .high_freq_factor = 4.0, .original_max = 8192.0};
    CHECK_EQ(ck_rope_inv_freq(&l3, got), 0);
    double want[8];
    for (int i = 0; i < 4; i++) want[i] = pow(500000.0, -i / 4.0);
    double wl2 = 2 * M_PI / want[2];
    CHECK(wl2 > 2048 && wl2 < 8192);
    double sf = (8192.0 / wl2 - 1.0) / 3.0;
    want[2] = (1 - sf) * want[2] / 8 + sf * want[2];
    want[3] /= 8;
    CHECK_EQ(got[0], 1.0f);
    for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], want[i], 1e-6, 0);
    /* linear scaling divides by factor; default is 1/theta^(2i/hd) */
    float lin[4], def[4];
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_LINEAR, .dim = 8, .theta = 500000.0, .factor = 4.0}, lin), 0);
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_DEFAULT, .dim = 8, .theta = 500000.0}, def), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(lin[i], def[i] / 4.0f);
    /* float32 bit patterns HF gives for Qwen2 (theta 1e6, head_dim 64) at i = 1,
     * 16 and 31: inv_freq = 1/((float)1e6 ** ((float)2i/64)) in float32 */
    float q[32];
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_DEFAULT, .dim = 64, .theta = 1000000.0}, q), 0);
    CHECK_NEAR(q[16], 1e-3, 1e-7, 0);
    CHECK_NEAR(q[1], pow(1e6, -2.0 / 64), 1e-7, 0);
    /* yarn, dim 16, theta 1e4, factor 4 over 256 positions, beta 32 / 1: the correction dims are
     * 16 ln(256 / (32 2 pi)) / (2 ln 1e4) = 0.21 -> 0 and 16 ln(256 / (2 pi)) / (2 ln 1e4) = 3.22 -> 4, so the ramp
     * is i / 4 and the extrapolation share 1 - i/4 until i = 4: inv = (1 - ef) / (4 theta^e) + ef / theta^e */
    const ck_rope yarn = {.type = CK_ROPE_YARN, .dim = 16, .theta = 10000.0, .factor = 4.0, .original_max = 256.0,
                          .beta_fast = 32, .beta_slow = 1, .truncate = 1};
    CHECK_EQ(ck_rope_inv_freq(&yarn, got), 0);
    for (int i = 0; i < 8; i++) {
        double pw = pow(10000.0, i / 8.0), ef = i < 4 ? 1 - i / 4.0 : 0;
        CHECK_NEAR(got[i], (1 - ef) / (4 * pw) + ef / pw, 1e-6, 0);
    }
    /* not truncated: the range is [0.21, 3.22], the ramp (i - 0.21) / 3.01 */
    ck_rope yt = yarn;
    yt.truncate = 0;
    CHECK_EQ(ck_rope_inv_freq(&yt, got), 0);
    double lo = 16 * log(256 / (32 * 2 * M_PI)) / (2 * log(1e4)), hi = 16 * log(256 / (2 * M_PI)) / (2 * log(1e4));
    for (int i = 0; i < 8; i++) {
        double pw = pow(10000.0, i / 8.0), rp = fmin(fmax((i - lo) / (hi - lo), 0), 1), ef = 1 - rp;
        CHECK_NEAR(got[i], (1 - ef) / (4 * pw) + ef / pw, 1e-6, 0);
    }
    /* longrope: 1 / (ext_i theta^(2i/dim)), the regime's factors */
    const double ext[4] = {1, 2.5, 4, 8};
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_LONGROPE, .dim = 8, .theta = 10000.0, .n_ext = 4, .ext = ext},
                              got), 0);
    for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], 1 / (ext[i] * pow(1e4, i / 4.0)), 1e-6, 0);
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_LONGROPE, .dim = 8, .theta = 1e4, .n_ext = 3, .ext = ext}, got), -1);
    const double bad[4] = {1, 0, 1, 1};
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_LONGROPE, .dim = 8, .theta = 1e4, .n_ext = 4, .ext = bad}, got), -1);
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_DEFAULT, .dim = 7, .theta = 10000.0}, q), -1);
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = 99, .dim = 8, .theta = 10000.0}, q), -1);
    CHECK_EQ(ck_rope_inv_freq(&(ck_rope){.type = CK_ROPE_LLAMA3, .dim = 8, .theta = 1e4, .factor = 8, .low_freq_factor = 1,
                                         .high_freq_factor = 1, .original_max = 8192}, q), -1);
    CHECK_EQ(ck_rope_type_from_name("llama3"), CK_ROPE_LLAMA3);
    CHECK_EQ(ck_rope_type_from_name("linear"), CK_ROPE_LINEAR);
    CHECK_EQ(ck_rope_type_from_name("yarn"), CK_ROPE_YARN);
    CHECK_EQ(ck_rope_type_from_name("longrope"), CK_ROPE_LONGROPE);
    CHECK_EQ(ck_rope_type_from_name(NULL), CK_ROPE_DEFAULT);
    CHECK_EQ(ck_rope_type_from_name("dynamic"), -1);
}

/* ---- mixture of experts ---------------------------------------------------------- */
typedef struct {
    double *l, *x, *w, *wgu, *wd, *wy, *wyw;
    int32_t *idx;
    int64_t N, E, k, H, I;
    int norm;
} moe_ctx;
static double moe_route_loss(void *p) { /* sum w . wyw with the selection held (the experts well apart) */
    moe_ctx *c = p;
    double *w = dzeros(c->N * c->k);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(c->N * c->k));
    ck_moe_route_f64(c->l, w, idx, c->N, c->E, c->k, c->norm);
    for (int64_t i = 0; i < c->N * c->k; i++) CHECK_EQ(idx[i], c->idx[i]);
    double L = dotd(w, c->wyw, c->N * c->k);
    free(w), free(idx);
    return L;
}
static double moe_ffn_loss(void *p) {
    moe_ctx *c = p;
    double *y = dzeros(c->N * c->H), *gu = dzeros(c->N * c->k * 2 * c->I);
    ck_moe_ffn_fwd_f64(c->x, c->idx, c->w, c->wgu, c->wd, y, gu, c->N, c->H, c->I, c->E, c->k);
    double L = dotd(y, c->wy, c->N * c->H);
    free(y), free(gu);
    return L;
}
/* by hand, one token: y = sum_j w_j Wd[e_j] (silu(Wg[e_j] x) * (Wu[e_j] x)) */
static void moe_ref_token(const moe_ctx *c, int64_t t, double *y) {
    for (int64_t h = 0; h < c->H; h++) y[h] = 0;
    for (int64_t j = 0; j < c->k; j++) {
        const int64_t e = c->idx[t * c->k + j];
        for (int64_t i = 0; i < c->I; i++) {
            double g = 0, u = 0;
            for (int64_t h = 0; h < c->H; h++) {
                g += c->wgu[(e * 2 * c->I + i) * c->H + h] * c->x[t * c->H + h];
                u += c->wgu[(e * 2 * c->I + c->I + i) * c->H + h] * c->x[t * c->H + h];
            }
            const double a = g / (1 + exp(-g)) * u;
            for (int64_t h = 0; h < c->H; h++) y[h] += c->w[t * c->k + j] * c->wd[(e * c->H + h) * c->I + i] * a;
        }
    }
}
static void test_moe(void) {
    for (int norm = 0; norm < 2; norm++) {
        moe_ctx c = {.N = 7, .E = 5, .k = 2, .H = 6, .I = 4, .norm = norm};
        const int64_t N = c.N, E = c.E, k = c.k, H = c.H, I = c.I;
        c.l = dvec(N * E, 2.0), c.wyw = dvec(N * k, 1.0);
        c.idx = malloc(sizeof(int32_t) * (size_t)(N * k));
        double *w = dzeros(N * k), *dl = dzeros(N * E);
        ck_moe_route_f64(c.l, w, c.idx, N, E, k, norm);
        for (int64_t t = 0; t < N; t++) { /* the two largest softmax entries, in descending order */
            const double *l = c.l + t * E;
            int a = 0;
            for (int e = 1; e < E; e++) a = l[e] > l[a] ? e : a;
            int b = a ? 0 : 1;
            for (int e = 0; e < E; e++) b = e != a && l[e] > l[b] ? e : b;
            CHECK(c.idx[t * k] == a && c.idx[t * k + 1] == b && w[t * k] >= w[t * k + 1]);
            double z = 0;
            for (int e = 0; e < E; e++) z += exp(l[e]);
            const double pa = exp(l[a]) / z, pb = exp(l[b]) / z;
            CHECK_NEAR(w[t * k], norm ? pa / (pa + pb) : pa, 1e-14, 0);
        }
        ck_moe_route_bwd_f64(c.l, c.idx, c.wyw, dl, N, E, k, norm);
        check_grad(norm ? "moe_route dlogits (norm)" : "moe_route dlogits", moe_route_loss, &c, c.l, N * E, dl);
        /* the experts' MLPs */
        c.x = dvec(N * H, 1.0), c.w = w, c.wgu = dvec(E * 2 * I * H, 0.7), c.wd = dvec(E * H * I, 0.7), c.wy = dvec(N * H, 1.0);
        double *y = dzeros(N * H), *gu = dzeros(N * k * 2 * I), *ref = dzeros(H);
        ck_moe_ffn_fwd_f64(c.x, c.idx, c.w, c.wgu, c.wd, y, gu, N, H, I, E, k);
        for (int64_t t = 0; t < N; t++) {
            moe_ref_token(&c, t, ref);
            for (int64_t h = 0; h < H; h++) CHECK_NEAR(y[t * H + h], ref[h], 1e-12, 1e-14);
        }
        double *dx = dzeros(N * H), *dw = dzeros(N * k), *dwgu = dzeros(E * 2 * I * H), *dwd = dzeros(E * H * I);
        ck_moe_ffn_bwd_f64(c.x, c.idx, c.w, c.wgu, c.wd, gu, c.wy, dx, dw, dwgu, dwd, N, H, I, E, k);
        check_grad("moe_ffn dx", moe_ffn_loss, &c, c.x, N * H, dx);
        check_grad("moe_ffn dw", moe_ffn_loss, &c, c.w, N * k, dw);
        check_grad("moe_ffn dwgu", moe_ffn_loss, &c, c.wgu, E * 2 * I * H, dwgu);
        check_grad("moe_ffn dwd", moe_ffn_loss, &c, c.wd, E * H * I, dwd);
        /* f32 = f64 */
        float *xf = tof(c.x, N * H), *wf = tof(c.w, N * k), *guwf = tof(c.wgu, E * 2 * I * H), *wdf = tof(c.wd, E * H * I);
        float *yf = fzeros(N * H), *guf = fzeros(N * k * 2 * I);
        ck_moe_ffn_fwd_f32(xf, c.idx, wf, guwf, wdf, yf, guf, N, H, I, E, k);
        CHECK_REL32(yf, y, N * H, 1e-5, "moe_ffn f32");
        free(c.l), free(c.wyw), free(c.idx), free(w), free(dl), free(c.x), free(c.wgu), free(c.wd), free(c.wy), free(y);
        free(gu), free(ref), free(dx), free(dw), free(dwgu), free(dwd), free(xf), free(wf), free(guwf), free(wdf), free(yf),
            free(guf);
    }
}

/* ---- gpt-oss's experts (moe_ffn_oss) ------------------------------------------------ */
typedef struct {
    moe_ctx m;
    double *bgu, *bd, alpha, limit;
} oss_ctx;
static double moe_oss_loss(void *p) {
    oss_ctx *c = p;
    double *y = dzeros(c->m.N * c->m.H), *gu = dzeros(c->m.N * c->m.k * 2 * c->m.I);
    ck_moe_oss_fwd_f64(c->m.x, c->m.idx, c->m.w, c->m.wgu, c->bgu, c->m.wd, c->bd, y, gu, c->m.N, c->m.H, c->m.I, c->m.E,
                       c->m.k, c->alpha, c->limit);
    double L = dotd(y, c->m.wy, c->m.N * c->m.H);
    free(y), free(gu);
    return L;
}
static void test_moe_oss(void) {
    oss_ctx c = {.m = {.N = 7, .E = 5, .k = 2, .H = 6, .I = 4}, .alpha = 1.702, .limit = 0.9};
    const int64_t N = c.m.N, E = c.m.E, k = c.m.k, H = c.m.H, I = c.m.I;
    double *l = dvec(N * E, 2.0);
    c.m.idx = malloc(sizeof(int32_t) * (size_t)(N * k));
    c.m.w = dzeros(N * k);
    ck_moe_route_f64(l, c.m.w, c.m.idx, N, E, k, 1);
    c.m.x = dvec(N * H, 1.0), c.m.wgu = dvec(E * H * 2 * I, 0.8), c.m.wd = dvec(E * I * H, 0.7), c.m.wy = dvec(N * H, 1.0);
    c.bgu = dvec(E * 2 * I, 0.5), c.bd = dvec(E * H, 0.5);
    double *y = dzeros(N * H), *gu = dzeros(N * k * 2 * I);
    ck_moe_oss_fwd_f64(c.m.x, c.m.idx, c.m.w, c.m.wgu, c.bgu, c.m.wd, c.bd, y, gu, N, H, I, E, k, c.alpha, c.limit);
    /* by hand, every token; the clamps must bite somewhere (gate above the limit, up outside it both ways) */
    int above = 0, up_hi = 0, up_lo = 0;
    for (int64_t t = 0; t < N; t++) {
        double ref[8] = {0};
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = c.m.idx[t * k + j];
            double o[8];
            for (int64_t h = 0; h < H; h++) o[h] = c.bd[e * H + h];
            for (int64_t i = 0; i < I; i++) {
                double g = c.bgu[e * 2 * I + 2 * i], u = c.bgu[e * 2 * I + 2 * i + 1];
                for (int64_t h = 0; h < H; h++) {
                    g += c.m.x[t * H + h] * c.m.wgu[(e * H + h) * 2 * I + 2 * i];
                    u += c.m.x[t * H + h] * c.m.wgu[(e * H + h) * 2 * I + 2 * i + 1];
                }
                CHECK_NEAR(gu[(t * k + j) * 2 * I + 2 * i], g, 1e-13, 0);
                above += g > c.limit, up_hi += u > c.limit, up_lo += u < -c.limit;
                g = g > c.limit ? c.limit : g;
                u = u > c.limit ? c.limit : u < -c.limit ? -c.limit : u;
                const double a = (u + 1) * g / (1 + exp(-c.alpha * g));
                for (int64_t h = 0; h < H; h++) o[h] += a * c.m.wd[(e * I + i) * H + h];
            }
            for (int64_t h = 0; h < H; h++) ref[h] += c.m.w[t * k + j] * o[h];
        }
        for (int64_t h = 0; h < H; h++) CHECK_NEAR(y[t * H + h], ref[h], 1e-12, 1e-14);
    }
    CHECK(above > 0 && up_hi > 0 && up_lo > 0);
    double *dx = dzeros(N * H), *dw = dzeros(N * k), *dwgu = dzeros(E * H * 2 * I), *dbgu = dzeros(E * 2 * I);
    double *dwd = dzeros(E * I * H), *dbd = dzeros(E * H);
    ck_moe_oss_bwd_f64(c.m.x, c.m.idx, c.m.w, c.m.wgu, c.bgu, c.m.wd, c.bd, gu, c.m.wy, dx, dw, dwgu, dbgu, dwd, dbd, N, H,
                       I, E, k, c.alpha, c.limit);
    check_grad("moe_ffn_oss dx", moe_oss_loss, &c, c.m.x, N * H, dx);
    check_grad("moe_ffn_oss dw", moe_oss_loss, &c, c.m.w, N * k, dw);
    check_grad("moe_ffn_oss dwgu", moe_oss_loss, &c, c.m.wgu, E * H * 2 * I, dwgu);
    check_grad("moe_ffn_oss dbgu", moe_oss_loss, &c, c.bgu, E * 2 * I, dbgu);
    check_grad("moe_ffn_oss dwd", moe_oss_loss, &c, c.m.wd, E * I * H, dwd);
    check_grad("moe_ffn_oss dbd", moe_oss_loss, &c, c.bd, E * H, dbd);
    /* f32 = f64 */
    float *xf = tof(c.m.x, N * H), *wf = tof(c.m.w, N * k), *guwf = tof(c.m.wgu, E * H * 2 * I), *bguf = tof(c.bgu, E * 2 * I);
    float *wdf = tof(c.m.wd, E * I * H), *bdf = tof(c.bd, E * H), *yf = fzeros(N * H), *guf = fzeros(N * k * 2 * I);
    ck_moe_oss_fwd_f32(xf, c.m.idx, wf, guwf, bguf, wdf, bdf, yf, guf, N, H, I, E, k, c.alpha, c.limit);
    CHECK_REL32(yf, y, N * H, 1e-5, "moe_ffn_oss f32");
    free(l), free(c.m.idx), free(c.m.w), free(c.m.x), free(c.m.wgu), free(c.m.wd), free(c.m.wy), free(c.bgu), free(c.bd);
    free(y), free(gu), free(dx), free(dw), free(dwgu), free(dbgu), free(dwd), free(dbd);
    free(xf), free(wf), free(guwf), free(bguf), free(wdf), free(bdf), free(yf), free(guf);
}

/* ---- the router's load-balancing loss (moe_lb_*) ------------------------------------ */
typedef struct {
    double *l, *mask;
    int32_t *idx;
    int64_t N, E, k;
} lb_ctx;
static double lb_loss_of(void *p) { /* two layers' stats added, the top-k held */
    lb_ctx *c = p;
    double *s1 = dzeros(2 * c->E + 1), *s2 = dzeros(2 * c->E + 1);
    ck_moe_lb_stats_f64(c->l, c->idx, c->mask, s1, c->N / 2, c->E, c->k);
    ck_moe_lb_stats_f64(c->l + (c->N / 2) * c->E, c->idx + (c->N / 2) * c->k, c->mask, s2, c->N / 2, c->E, c->k);
    for (int64_t i = 0; i < 2 * c->E + 1; i++) s1[i] += s2[i];
    double L = ck_moe_lb_loss(s1, c->E);
    free(s1), free(s2);
    return L;
}
static void test_moe_lb(void) {
    lb_ctx c = {.N = 12, .E = 5, .k = 2};
    const int64_t N = c.N, E = c.E, k = c.k, h = N / 2;
    c.l = dvec(N * E, 2.0);
    c.idx = malloc(sizeof(int32_t) * (size_t)(N * k));
    double *w = dzeros(N * k);
    ck_moe_route_f64(c.l, w, c.idx, N, E, k, 0);
    c.mask = dzeros(h); /* Axolotl's packed attention_mask: segment numbers, padding 0 */
    for (int64_t t = 0; t < h; t++) c.mask[t] = t < 2 ? 1 : t < 5 ? 2 : 0;
    /* by hand, transformers' formula over the two layers' tokens */
    double cnt[5] = {0}, ps[5] = {0}, T = 0;
    for (int64_t t = 0; t < N; t++) {
        const double m = c.mask[t % h], *l = c.l + t * E;
        double z = 0;
        for (int64_t e = 0; e < E; e++) z += exp(l[e]);
        for (int64_t e = 0; e < E; e++) ps[e] += m * exp(l[e]) / z;
        for (int64_t j = 0; j < k; j++) cnt[c.idx[t * k + j]] += m;
        T += m;
    }
    double ref = 0;
    for (int64_t e = 0; e < E; e++) ref += (cnt[e] / T) * (ps[e] / T);
    CHECK_NEAR(lb_loss_of(&c), E * ref, 1e-13, 1e-13);
    /* the gradient: through both layers' probability sums */
    double *s1 = dzeros(2 * E + 1), *s2 = dzeros(2 * E + 1), *ds = dzeros(2 * E + 1), *dl = dzeros(N * E);
    ck_moe_lb_stats_f64(c.l, c.idx, c.mask, s1, h, E, k);
    ck_moe_lb_stats_f64(c.l + h * E, c.idx + h * k, c.mask, s2, h, E, k);
    for (int64_t i = 0; i < 2 * E + 1; i++) s1[i] += s2[i];
    ck_moe_lb_loss_bwd(s1, 1.0, ds, E);
    ck_moe_lb_stats_bwd_f64(c.l, c.mask, ds, dl, h, E);
    ck_moe_lb_stats_bwd_f64(c.l + h * E, c.mask, ds, dl + h * E, h, E);
    check_grad("moe_lb dlogits", lb_loss_of, &c, c.l, N * E, dl);
    for (int64_t e = 0; e < E; e++) CHECK(ds[e] == 0 && ds[2 * E] == 0); /* counts and weights: no gradient */
    double z0[11] = {0};
    CHECK(ck_moe_lb_loss(z0, 5) == 0); /* no weighted token: 0, not NaN */
    free(c.l), free(c.idx), free(w), free(c.mask), free(s1), free(s2), free(ds), free(dl);
}

/* ---- PEFT's ParamWrapper LoRA (lora_delta) --------------------------------------- */
typedef struct {
    double *w, *a, *b, *wy;
    int64_t E, O, I, r;
    double scale;
    int t; /* ck_lora_delta_t: w [E, I, O] */
} ld_ctx;
static double lora_delta_loss(void *p) {
    ld_ctx *c = p;
    double *y = dzeros(c->E * c->O * c->I);
    if (c->t) ck_lora_delta_t_f64(c->w, c->a, c->b, y, c->E, c->I, c->O, c->r, c->scale);
    else ck_lora_delta_f64(c->w, c->a, c->b, y, c->E, c->O, c->I, c->r, c->scale);
    double L = dotd(y, c->wy, c->E * c->O * c->I);
    free(y);
    return L;
}
static void test_lora_delta(void) {
    for (int E = 1; E <= 3; E += 2) { /* a router's [O, I] weight (E = 1) and stacked experts */
        ld_ctx c = {.E = E, .O = 5, .I = 4, .r = 2, .scale = 1.5};
        const int64_t n = c.E * c.O * c.I, R = c.E * c.r;
        c.w = dvec(n, 1.0), c.a = dvec(R * c.I, 1.0), c.b = dvec(c.O * R, 1.0), c.wy = dvec(n, 1.0);
        double *y = dzeros(n), *da = dzeros(R * c.I), *db = dzeros(c.O * R);
        ck_lora_delta_f64(c.w, c.a, c.b, y, c.E, c.O, c.I, c.r, c.scale);
        /* by hand, PEFT's einsum("o r e, e r i -> e o i", b.reshape(O, r, E), a.reshape(E, r, I)) */
        for (int64_t e = 0; e < c.E; e++)
            for (int64_t o = 0; o < c.O; o++)
                for (int64_t i = 0; i < c.I; i++) {
                    double s = 0;
                    for (int64_t j = 0; j < c.r; j++) s += c.b[o * R + j * c.E + e] * c.a[(e * c.r + j) * c.I + i];
                    const int64_t at = (e * c.O + o) * c.I + i;
                    CHECK_NEAR(y[at], c.w[at] + c.scale * s, 1e-14, 1e-14);
                }
        ck_lora_delta_bwd_f64(c.a, c.b, c.wy, da, db, c.E, c.O, c.I, c.r, c.scale);
        check_grad(E > 1 ? "lora_delta da (experts)" : "lora_delta da", lora_delta_loss, &c, c.a, R * c.I, da);
        check_grad(E > 1 ? "lora_delta db (experts)" : "lora_delta db", lora_delta_loss, &c, c.b, c.O * R, db);
        /* f32 = f64; out may be w */
        float *wf = tof(c.w, n), *af = tof(c.a, R * c.I), *bf = tof(c.b, c.O * R);
        ck_lora_delta_f32(wf, af, bf, wf, c.E, c.O, c.I, c.r, c.scale);
        CHECK_REL32(wf, y, n, 1e-6, "lora_delta f32 in place");
        free(c.w), free(c.a), free(c.b), free(c.wy), free(y), free(da), free(db), free(wf), free(af), free(bf);
    }
    { /* the transposed layout (gpt-oss): PEFT's einsum("o r e, e r i -> e i o", b.reshape(O, r, E), a.reshape(E, r, I)) */
        ld_ctx c = {.E = 3, .O = 5, .I = 4, .r = 2, .scale = 1.5, .t = 1};
        const int64_t n = c.E * c.O * c.I, R = c.E * c.r;
        c.w = dvec(n, 1.0), c.a = dvec(R * c.I, 1.0), c.b = dvec(c.O * R, 1.0), c.wy = dvec(n, 1.0);
        double *y = dzeros(n), *da = dzeros(R * c.I), *db = dzeros(c.O * R);
        ck_lora_delta_t_f64(c.w, c.a, c.b, y, c.E, c.I, c.O, c.r, c.scale);
        for (int64_t e = 0; e < c.E; e++)
            for (int64_t i = 0; i < c.I; i++)
                for (int64_t o = 0; o < c.O; o++) {
                    double s = 0;
                    for (int64_t j = 0; j < c.r; j++) s += c.b[o * R + j * c.E + e] * c.a[(e * c.r + j) * c.I + i];
                    const int64_t at = (e * c.I + i) * c.O + o;
                    CHECK_NEAR(y[at], c.w[at] + c.scale * s, 1e-14, 1e-14);
                }
        ck_lora_delta_t_bwd_f64(c.a, c.b, c.wy, da, db, c.E, c.I, c.O, c.r, c.scale);
        check_grad("lora_delta da (transposed experts)", lora_delta_loss, &c, c.a, R * c.I, da);
        check_grad("lora_delta db (transposed experts)", lora_delta_loss, &c, c.b, c.O * R, db);
        float *wf = tof(c.w, n), *af = tof(c.a, R * c.I), *bf = tof(c.b, c.O * R);
        ck_lora_delta_t_f32(wf, af, bf, wf, c.E, c.I, c.O, c.r, c.scale);
        CHECK_REL32(wf, y, n, 1e-6, "lora_delta t f32 in place");
        free(c.w), free(c.a), free(c.b), free(c.wy), free(y), free(da), free(db), free(wf), free(af), free(bf);
    }
}

/* ---- attention --------------------------------------------------------------- */
typedef struct {
    double *q, *k, *v, *wy;
    int32_t *seg;
    int64_t B, S, nh, nkv, hd;
    double scale;
    int causal;
    int64_t window; /* sliding window (0: none) */
    double *sinks;  /* gpt-oss's per-head sinks (NULL: none) */
    double softcap; /* Gemma 2's attn_logit_softcapping (0: none) */
} att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    int64_t n = c->B * c->S * c->nh * c->hd;
    double *o = dzeros(n), *lse = dzeros(c->B * c->nh * c->S);
    ck_attention_fwd_f64(c->q, c->k, c->v, c->seg, o, lse, c->B, c->S, c->nh, c->nkv, c->hd, c->scale, c->causal,
                         c->window, c->softcap);
    if (c->sinks) ck_attn_sink_fwd_f64(o, lse, c->sinks, c->B, c->S, c->nh, c->hd);
    double L = dotd(o, c->wy, n);
    free(o), free(lse);
    return L;
}
/* naive: full score row, explicit mask matrix, softmax, P V */
static void naive_attention(const att_ctx *c, double *out, double *lse) {
    int64_t S = c->S, hd = c->hd, grp = c->nh / c->nkv;
    char *mask = malloc((size_t)(S * S));
    double *s = malloc(sizeof(double) * (size_t)S);
    for (int64_t b = 0; b < c->B; b++) {
        for (int64_t i = 0; i < S; i++)
            for (int64_t j = 0; j < S; j++)
                mask[i * S + j] = (!c->causal || (j <= i && (c->window <= 0 || i - j < c->window))) &&
                                 (!c->seg || c->seg[b * S + i] == c->seg[b * S + j]);
        for (int64_t h = 0; h < c->nh; h++)
            for (int64_t i = 0; i < S; i++) {
                double mx = -INFINITY;
                for (int64_t j = 0; j < S; j++) {
                    double d = 0;
                    for (int64_t t = 0; t < hd; t++)
                        d += c->q[((b * S + i) * c->nh + h) * hd + t] * c->k[((b * S + j) * c->nkv + h / grp) * hd + t];
                    d *= c->scale;
                    if (c->softcap > 0) d = c->softcap * tanh(d / c->softcap); /* transformers' Gemma 2 */
                    s[j] = mask[i * S + j] ? d : -INFINITY;
                    if (s[j] > mx) mx = s[j];
                }
                double z = 0;
                for (int64_t j = 0; j < S; j++) z += mask[i * S + j] ? exp(s[j] - mx) : 0.0;
                for (int64_t t = 0; t < hd; t++) {
                    double o = 0;
                    for (int64_t j = 0; j < S; j++)
                        if (mask[i * S + j])
                            o += exp(s[j] - mx) / z * c->v[((b * S + j) * c->nkv + h / grp) * hd + t];
                    out[((b * S + i) * c->nh + h) * hd + t] = o;
                }
                lse[(b * c->nh + h) * S + i] = mx + log(z);
            }
    }
    free(mask), free(s);
}
static void att_setup(att_ctx *c, double amp) {
    int64_t nq = c->B * c->S * c->nh * c->hd, nk = c->B * c->S * c->nkv * c->hd;
    c->q = dvec(nq, amp), c->k = dvec(nk, amp), c->v = dvec(nk, 1.0), c->wy = dvec(nq, 1.0);
    c->seg = malloc(sizeof(int32_t) * (size_t)(c->B * c->S));
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t i = 0; i < c->S; i++) /* row 0: two packed sequences; others: one */
            c->seg[b * c->S + i] = b == 0 ? (i < c->S * 2 / 5 ? 7 : 9) : 1;
}
static void att_free(att_ctx *c) { free(c->q), free(c->k), free(c->v), free(c->wy), free(c->seg); }

/* gpt-oss's sinks: every gradient by finite differences (attention's backward against the sinks' out and lse),
 * the result against a softmax with the sink as one more logit of no value */
static void test_attention_sinks(void) {
    for (int mode = 0; mode < 2; mode++) { /* causal; a sliding window */
        att_ctx c = {.B = 2, .S = 10, .nh = 4, .nkv = 2, .hd = 8, .causal = 1, .window = mode ? 3 : 0};
        c.scale = 1.0 / sqrt((double)c.hd);
        att_setup(&c, 1.5);
        c.sinks = dvec(c.nh, 1.5);
        const int64_t nq = c.B * c.S * c.nh * c.hd, nk = c.B * c.S * c.nkv * c.hd, nl = c.B * c.nh * c.S;
        double *o = dzeros(nq), *lse = dzeros(nl), *dq = dzeros(nq), *dk = dzeros(nk), *dv = dzeros(nk), *ds = dzeros(c.nh);
        ck_attention_fwd_f64(c.q, c.k, c.v, c.seg, o, lse, c.B, c.S, c.nh, c.nkv, c.hd, c.scale, 1, c.window, 0.0);
        /* by hand: sum_j e^{s_j} v_j / (sum_j e^{s_j} + e^{sink}) from the sinkless out and lse */
        double *ref = dzeros(nq), *lref = dzeros(nl);
        for (int64_t b = 0; b < c.B; b++)
            for (int64_t h = 0; h < c.nh; h++)
                for (int64_t i = 0; i < c.S; i++) {
                    const double Z = exp(lse[(b * c.nh + h) * c.S + i]), Zs = Z + exp(c.sinks[h]);
                    for (int64_t d = 0; d < c.hd; d++)
                        ref[((b * c.S + i) * c.nh + h) * c.hd + d] = o[((b * c.S + i) * c.nh + h) * c.hd + d] * Z / Zs;
                    lref[(b * c.nh + h) * c.S + i] = log(Zs);
                }
        ck_attn_sink_fwd_f64(o, lse, c.sinks, c.B, c.S, c.nh, c.hd);
        CHECK_REL64(o, ref, nq, 1e-14, "attention sinks out");
        CHECK_REL64(lse, lref, nl, 1e-14, "attention sinks lse");
        ck_attention_bwd_f64(c.q, c.k, c.v, c.seg, o, lse, c.wy, dq, dk, dv, c.B, c.S, c.nh, c.nkv, c.hd, c.scale, 1,
                             c.window, 0.0);
        ck_attn_sink_bwd_f64(c.sinks, o, lse, c.wy, ds, c.B, c.S, c.nh, c.hd);
        check_grad("attention sinks dq", att_loss, &c, c.q, nq, dq);
        check_grad("attention sinks dk", att_loss, &c, c.k, nk, dk);
        check_grad("attention sinks dv", att_loss, &c, c.v, nk, dv);
        check_grad("attention sinks dsinks", att_loss, &c, c.sinks, c.nh, ds);
        /* f32 = f64 */
        float *of = tof(ref, nq), *lf = tof(lref, nl), *sf = tof(c.sinks, c.nh), *gf = tof(c.wy, nq), *dsf = fzeros(c.nh);
        ck_attn_sink_bwd_f32(sf, of, lf, gf, dsf, c.B, c.S, c.nh, c.hd);
        CHECK_REL32(dsf, ds, c.nh, 1e-5, "attention sinks dsinks f32");
        free(o), free(lse), free(dq), free(dk), free(dv), free(ds), free(ref), free(lref), free(c.sinks);
        free(of), free(lf), free(sf), free(gf), free(dsf);
        att_free(&c);
    }
}

static void test_attention(void) {
    /* causal, not causal, causal with a sliding window, and both with a soft cap (Gemma 2's tanh on the scores) */
    for (int mode = 0; mode < 5; mode++) {
        const int causal = mode != 1 && mode != 4;
        const double cap = mode >= 3 ? 0.6 : 0.0; /* scores of about +-2 here: well into tanh's curve */
        /* finite differences: B=2, S=12, GQA nh=4 nkv=2, two segments in row 0 */
        att_ctx c = {.B = 2, .S = 12, .nh = 4, .nkv = 2, .hd = 8, .causal = causal, .window = mode == 2 || mode == 3 ? 3 : 0,
                     .softcap = cap};
        c.scale = 1.0 / sqrt((double)c.hd);
        att_setup(&c, 1.5);
        int64_t nq = c.B * c.S * c.nh * c.hd, nk = c.B * c.S * c.nkv * c.hd;
        double *o = dzeros(nq), *lse = dzeros(c.B * c.nh * c.S);
        double *dq = dzeros(nq), *dk = dzeros(nk), *dv = dzeros(nk);
        ck_attention_fwd_f64(c.q, c.k, c.v, c.seg, o, lse, c.B, c.S, c.nh, c.nkv, c.hd, c.scale, c.causal, c.window, cap);
        ck_attention_bwd_f64(c.q, c.k, c.v, c.seg, o, lse, c.wy, dq, dk, dv, c.B, c.S, c.nh, c.nkv, c.hd, c.scale,
                             c.causal, c.window, cap);
        static const char *const tags[] = {"causal", "non-causal", "sliding window", "window + softcap", "non-causal softcap"};
        const char *tag = tags[mode];
        char what[64];
        snprintf(what, sizeof what, "attention dq (%s)", tag);
        check_grad(what, att_loss, &c, c.q, nq, dq);
        snprintf(what, sizeof what, "attention dk (%s)", tag);
        check_grad(what, att_loss, &c, c.k, nk, dk);
        snprintf(what, sizeof what, "attention dv (%s)", tag);
        check_grad(what, att_loss, &c, c.v, nk, dv);
        /* a perturbation of a key in the other segment must not move the query */
        if (mode == 0) {
            double o0 = o[((0 * c.S + 1) * c.nh + 0) * c.hd];
            c.k[((0 * c.S + 0) * c.nkv) * c.hd] += 0.0; /* same segment: key 0 */
            c.k[((0 * c.S + 8) * c.nkv) * c.hd] += 1.0; /* segment 9, after query 1 anyway */
            c.v[((0 * c.S + 6) * c.nkv) * c.hd] += 1.0; /* segment 9 */
            double *o2 = dzeros(nq), *l2 = dzeros(c.B * c.nh * c.S);
            ck_attention_fwd_f64(c.q, c.k, c.v, c.seg, o2, l2, c.B, c.S, c.nh, c.nkv, c.hd, c.scale, 1, 0, 0.0);
            CHECK(o2[((0 * c.S + 1) * c.nh + 0) * c.hd] == o0);
            free(o2), free(l2);
        }
        free(o), free(lse), free(dq), free(dk), free(dv);
        att_free(&c);

        /* forward vs naive, S = 150 > 2 key blocks (online rescaling), then f32 vs f64 */
        att_ctx d = {.B = 2, .S = 150, .nh = 4, .nkv = 2, .hd = 16, .causal = causal,
                     .window = mode == 2 || mode == 3 ? 70 : 0, .softcap = cap};
        d.scale = 1.0 / sqrt((double)d.hd);
        att_setup(&d, 2.0);
        for (int64_t i = 0; i < d.S; i++) /* make later keys dominate so the running max moves */
            for (int64_t t = 0; t < d.nkv * d.hd; t++) d.k[(1 * d.S + i) * d.nkv * d.hd + t] *= 1.0 + i / 40.0;
        nq = d.B * d.S * d.nh * d.hd, nk = d.B * d.S * d.nkv * d.hd;
        int64_t nl = d.B * d.nh * d.S;
        round_to_f32(d.q, nq), round_to_f32(d.k, nk), round_to_f32(d.v, nk), round_to_f32(d.wy, nq);
        double *on = dzeros(nq), *ln = dzeros(nl), *od = dzeros(nq), *ld = dzeros(nl);
        naive_attention(&d, on, ln);
        ck_attention_fwd_f64(d.q, d.k, d.v, d.seg, od, ld, d.B, d.S, d.nh, d.nkv, d.hd, d.scale, d.causal, d.window, cap);
        snprintf(what, sizeof what, "attention out vs naive (%s)", tag);
        CHECK_REL64(od, on, nq, 1e-13, what);
        snprintf(what, sizeof what, "attention lse vs naive (%s)", tag);
        CHECK_REL64(ld, ln, nl, 1e-13, what);
        float *qf = tof(d.q, nq), *kf = tof(d.k, nk), *vf = tof(d.v, nk), *dof = tof(d.wy, nq);
        float *of = fzeros(nq), *lf = fzeros(nl), *dqf = fzeros(nq), *dkf = fzeros(nk), *dvf = fzeros(nk);
        ck_attention_fwd_f32(qf, kf, vf, d.seg, of, lf, d.B, d.S, d.nh, d.nkv, d.hd, d.scale, d.causal, d.window, cap);
        double *dqd = dzeros(nq), *dkd = dzeros(nk), *dvd = dzeros(nk);
        ck_attention_bwd_f64(d.q, d.k, d.v, d.seg, od, ld, d.wy, dqd, dkd, dvd, d.B, d.S, d.nh, d.nkv, d.hd, d.scale,
                             d.causal, d.window, cap);
        ck_attention_bwd_f32(qf, kf, vf, d.seg, of, lf, dof, dqf, dkf, dvf, d.B, d.S, d.nh, d.nkv, d.hd, d.scale,
                             d.causal, d.window, cap);
        CHECK_REL32(of, od, nq, 1e-5, "attention out");
        CHECK_REL32(lf, ld, nl, 1e-5, "attention lse");
        CHECK_REL32(dqf, dqd, nq, 1e-5, "attention dq");
        CHECK_REL32(dkf, dkd, nk, 1e-5, "attention dk");
        CHECK_REL32(dvf, dvd, nk, 1e-5, "attention dv");
        free(on), free(ln), free(od), free(ld), free(qf), free(kf), free(vf), free(dof), free(of), free(lf);
        free(dqf), free(dkf), free(dvf), free(dqd), free(dkd), free(dvd);
        att_free(&d);
    }
}

/* A long packed row (one bin of several rows' worth of tokens): many sequences of uneven length, some starting on a
 * key block's edge, and trailing padding where each token is its own sequence. Its ids never decrease, so the
 * kernels start each query's key loop at its sequence's first token; the same partition labelled so that the ids
 * decrease takes the full loops. Both must agree to the bit (the skipped keys are masked ones), and with the naive
 * masked softmax. */
static void test_attention_packed_skip(int64_t window) {
    static const int lens[] = {1, 5, 37, 63, 64, 65, 100, 2, 64};
    att_ctx c = {.B = 2, .S = 480, .nh = 4, .nkv = 2, .hd = 8, .causal = 1, .window = window};
    c.scale = 1.0 / sqrt((double)c.hd);
    att_setup(&c, 2.0);
    int32_t *down = malloc(sizeof(int32_t) * (size_t)(c.B * c.S));
    for (int64_t b = 0; b < c.B; b++) {
        int64_t t = 0, id = 0;
        for (size_t q = 0; q < AX_ARRAY_LEN(lens) && t < c.S; q++, id++) /* row 1 from the other end of the list */
            for (int n = 0; n < lens[b ? AX_ARRAY_LEN(lens) - 1 - q : q] && t < c.S; n++) c.seg[b * c.S + t++] = (int32_t)id;
        while (t < c.S) c.seg[b * c.S + t++] = (int32_t)id++; /* padding */
        for (t = 0; t < c.S; t++) down[b * c.S + t] = 100000 - c.seg[b * c.S + t];
    }
    const int64_t nq = c.B * c.S * c.nh * c.hd, nk = c.B * c.S * c.nkv * c.hd, nl = c.B * c.nh * c.S;
    double *o[2], *l[2], *dq[2], *dk[2], *dv[2];
    float *qf = tof(c.q, nq), *kf = tof(c.k, nk), *vf = tof(c.v, nk), *dof = tof(c.wy, nq), *of[2], *lf[2], *dqf[2],
          *dkf[2], *dvf[2];
    for (int w = 0; w < 2; w++) {
        const int32_t *seg = w ? down : c.seg;
        o[w] = dzeros(nq), l[w] = dzeros(nl), dq[w] = dzeros(nq), dk[w] = dzeros(nk), dv[w] = dzeros(nk);
        of[w] = fzeros(nq), lf[w] = fzeros(nl), dqf[w] = fzeros(nq), dkf[w] = fzeros(nk), dvf[w] = fzeros(nk);
        ck_attention_fwd_f64(c.q, c.k, c.v, seg, o[w], l[w], c.B, c.S, c.nh, c.nkv, c.hd, c.scale, 1, window, 0.0);
        ck_attention_bwd_f64(c.q, c.k, c.v, seg, o[w], l[w], c.wy, dq[w], dk[w], dv[w], c.B, c.S, c.nh, c.nkv, c.hd,
                             c.scale, 1, window, 0.0);
        ck_attention_fwd_f32(qf, kf, vf, seg, of[w], lf[w], c.B, c.S, c.nh, c.nkv, c.hd, c.scale, 1, window, 0.0);
        ck_attention_bwd_f32(qf, kf, vf, seg, of[w], lf[w], dof, dqf[w], dkf[w], dvf[w], c.B, c.S, c.nh, c.nkv, c.hd,
                             c.scale, 1, window, 0.0);
    }
    CHECK(!memcmp(o[0], o[1], sizeof(double) * (size_t)nq) && !memcmp(l[0], l[1], sizeof(double) * (size_t)nl));
    CHECK(!memcmp(dq[0], dq[1], sizeof(double) * (size_t)nq) && !memcmp(dk[0], dk[1], sizeof(double) * (size_t)nk) &&
          !memcmp(dv[0], dv[1], sizeof(double) * (size_t)nk));
    CHECK(!memcmp(of[0], of[1], sizeof(float) * (size_t)nq) && !memcmp(lf[0], lf[1], sizeof(float) * (size_t)nl));
    CHECK(!memcmp(dqf[0], dqf[1], sizeof(float) * (size_t)nq) && !memcmp(dkf[0], dkf[1], sizeof(float) * (size_t)nk) &&
          !memcmp(dvf[0], dvf[1], sizeof(float) * (size_t)nk));
    double *on = dzeros(nq), *ln = dzeros(nl);
    naive_attention(&c, on, ln);
    CHECK_REL64(o[0], on, nq, 1e-13, "packed-row attention out vs naive");
    CHECK_REL64(l[0], ln, nl, 1e-13, "packed-row attention lse vs naive");
    for (int w = 0; w < 2; w++) {
        free(o[w]), free(l[w]), free(dq[w]), free(dk[w]), free(dv[w]);
        free(of[w]), free(lf[w]), free(dqf[w]), free(dkf[w]), free(dvf[w]);
    }
    free(on), free(ln), free(qf), free(kf), free(vf), free(dof), free(down);
    att_free(&c);
}

/* ---- swiglu ------------------------------------------------------------------ */
typedef struct {
    double *g, *u, *wy;
    int64_t n;
    void (*fwd)(const double *, const double *, double *, int64_t); /* ck_swiglu_fwd_f64 or ck_geglu_fwd_f64 */
} sw_ctx;
/* Ring attention's blocks: split each row zigzag over P ranks (rank r holds
 * chunks r and 2P-1-r), compute every (query rank, key rank) block, merge
 * the forward partials by online softmax and sum the backward partials:
 * the result equals whole-row attention (f64, to rounding). */
static void test_attention_blocks(int64_t window, double softcap) {
    att_ctx c = {.B = 2, .S = 12, .nh = 4, .nkv = 2, .hd = 8, .scale = 0.4, .causal = 1, .window = window};
    att_setup(&c, 1.5);
    const int64_t P = 3, Sl = c.S / P, ch = c.S / (2 * P), B = c.B, nh = c.nh, nkv = c.nkv, hd = c.hd, S = c.S;
    int64_t nq = B * S * nh * hd, nk = B * S * nkv * hd;
    double *o = dzeros(nq), *lse = dzeros(B * nh * S), *dq = dzeros(nq), *dk = dzeros(nk), *dv = dzeros(nk);
    ck_attention_fwd_f64(c.q, c.k, c.v, c.seg, o, lse, B, S, nh, nkv, hd, c.scale, 1, window, softcap);
    ck_attention_bwd_f64(c.q, c.k, c.v, c.seg, o, lse, c.wy, dq, dk, dv, B, S, nh, nkv, hd, c.scale, 1, window, softcap);
    /* per rank: local copies of q, k, v, seg, idx, out, lse, dout */
    double *lq[3], *lk[3], *lv[3], *lo[3], *ll[3], *ldo[3];
    int32_t *lseg[3], *lidx[3];
    for (int64_t r = 0; r < P; r++) {
        lq[r] = dzeros(B * Sl * nh * hd), lk[r] = dzeros(B * Sl * nkv * hd), lv[r] = dzeros(B * Sl * nkv * hd);
        lo[r] = dzeros(B * Sl * nh * hd), ll[r] = dzeros(B * nh * Sl), ldo[r] = dzeros(B * Sl * nh * hd);
        lseg[r] = malloc(sizeof(int32_t) * (size_t)(B * Sl)), lidx[r] = malloc(sizeof(int32_t) * (size_t)(B * Sl));
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < Sl; t++) {
                int64_t j = t < ch ? r * ch + t : (2 * P - 1 - r) * ch + (t - ch);
                lseg[r][b * Sl + t] = c.seg[b * S + j];
                lidx[r][b * Sl + t] = (int32_t)j;
                memcpy(lq[r] + (b * Sl + t) * nh * hd, c.q + (b * S + j) * nh * hd, sizeof(double) * (size_t)(nh * hd));
                memcpy(lo[r] + (b * Sl + t) * nh * hd, o + (b * S + j) * nh * hd, sizeof(double) * (size_t)(nh * hd));
                memcpy(ldo[r] + (b * Sl + t) * nh * hd, c.wy + (b * S + j) * nh * hd, sizeof(double) * (size_t)(nh * hd));
                memcpy(lk[r] + (b * Sl + t) * nkv * hd, c.k + (b * S + j) * nkv * hd, sizeof(double) * (size_t)(nkv * hd));
                memcpy(lv[r] + (b * Sl + t) * nkv * hd, c.v + (b * S + j) * nkv * hd, sizeof(double) * (size_t)(nkv * hd));
                for (int64_t h = 0; h < nh; h++) ll[r][(b * nh + h) * Sl + t] = lse[(b * nh + h) * S + j];
            }
    }
    int64_t nql = B * Sl * nh * hd, nkl = B * Sl * nkv * hd, nll = B * nh * Sl;
    double *bo = dzeros(nql), *bl = dzeros(nll), *mo = dzeros(nql), *ml = dzeros(nll), *t1 = dzeros(nql), *t2 = dzeros(nll);
    double *gq = dzeros(nql), *gk = dzeros(nkl), *gv = dzeros(nkl);
    double *sq[3], *sk[3], *sv[3];
    for (int64_t r = 0; r < P; r++) sq[r] = dzeros(nql), sk[r] = dzeros(nkl), sv[r] = dzeros(nkl);
    int empty_rows = 0;
    for (int64_t r = 0; r < P; r++) {
        for (int64_t st = 0; st < P; st++) { /* the ring's order: own block, then r-1, r-2, ... */
            int64_t s = (r - st + P) % P;
            ck_attention_blk_fwd_f64(lq[r], lk[s], lv[s], lseg[r], lseg[s], lidx[r], lidx[s], bo, bl, B, Sl, Sl, nh, nkv,
                                     hd, c.scale, 1, window, softcap);
            for (int64_t i = 0; i < nll; i++) empty_rows += bl[i] == -INFINITY;
            if (st == 0) {
                memcpy(mo, bo, sizeof(double) * (size_t)nql), memcpy(ml, bl, sizeof(double) * (size_t)nll);
            } else {
                ck_attn_merge_f64(mo, ml, bo, bl, t1, t2, B, Sl, nh, hd);
                memcpy(mo, t1, sizeof(double) * (size_t)nql), memcpy(ml, t2, sizeof(double) * (size_t)nll);
            }
            ck_attention_blk_bwd_f64(lq[r], lk[s], lv[s], lseg[r], lseg[s], lidx[r], lidx[s], lo[r], ll[r], ldo[r], gq, gk,
                                     gv, B, Sl, Sl, nh, nkv, hd, c.scale, 1, window, softcap);
            for (int64_t i = 0; i < nql; i++) sq[r][i] += gq[i];
            for (int64_t i = 0; i < nkl; i++) sk[s][i] += gk[i], sv[s][i] += gv[i];
        }
        char what[64];
        snprintf(what, sizeof what, "ring blocks, rank %lld: out", (long long)r);
        CHECK_REL64(mo, lo[r], nql, 1e-12, what);
        snprintf(what, sizeof what, "ring blocks, rank %lld: lse", (long long)r);
        CHECK_REL64(ml, ll[r], nll, 1e-12, what);
    }
    CHECK_MSG(empty_rows > 0, "no (query, block) pair was fully masked: the -inf path is untested");
    for (int64_t r = 0; r < P; r++) { /* gradients back in row order */
        double *eq = dzeros(nql), *ek = dzeros(nkl), *ev = dzeros(nkl);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < Sl; t++) {
                int64_t j = lidx[r][b * Sl + t];
                memcpy(eq + (b * Sl + t) * nh * hd, dq + (b * S + j) * nh * hd, sizeof(double) * (size_t)(nh * hd));
                memcpy(ek + (b * Sl + t) * nkv * hd, dk + (b * S + j) * nkv * hd, sizeof(double) * (size_t)(nkv * hd));
                memcpy(ev + (b * Sl + t) * nkv * hd, dv + (b * S + j) * nkv * hd, sizeof(double) * (size_t)(nkv * hd));
            }
        CHECK_REL64(sq[r], eq, nql, 1e-11, "ring blocks: dq");
        CHECK_REL64(sk[r], ek, nkl, 1e-11, "ring blocks: dk");
        CHECK_REL64(sv[r], ev, nkl, 1e-11, "ring blocks: dv");
        free(eq), free(ek), free(ev);
    }
    for (int64_t r = 0; r < P; r++) {
        free(lq[r]), free(lk[r]), free(lv[r]), free(lo[r]), free(ll[r]), free(ldo[r]), free(lseg[r]), free(lidx[r]);
        free(sq[r]), free(sk[r]), free(sv[r]);
    }
    free(bo), free(bl), free(mo), free(ml), free(t1), free(t2), free(gq), free(gk), free(gv);
    free(o), free(lse), free(dq), free(dk), free(dv);
    att_free(&c);
}

static double sw_loss(void *p) {
    sw_ctx *c = p;
    double *y = dzeros(c->n);
    c->fwd(c->g, c->u, y, c->n);
    double L = dotd(y, c->wy, c->n);
    free(y);
    return L;
}
/* A GLU's kernels: the backward = central differences of the forward (f64), f32 = f64 on f32-representable inputs;
 * c->g, c->u, c->wy are filled, y holds the f64 forward of the original inputs on return. */
static void glu_checks(const char *name, sw_ctx *c, double *y,
                       void (*bwd64)(const double *, const double *, const double *, double *, double *, int64_t),
                       void (*fwd32)(const float *, const float *, float *, int64_t),
                       void (*bwd32)(const float *, const float *, const float *, float *, float *, int64_t)) {
    char what[64];
    double *dg = dzeros(c->n), *du = dzeros(c->n);
    bwd64(c->g, c->u, c->wy, dg, du, c->n);
    snprintf(what, sizeof what, "%s dg", name);
    check_grad(what, sw_loss, c, c->g, c->n, dg);
    snprintf(what, sizeof what, "%s du", name);
    check_grad(what, sw_loss, c, c->u, c->n, du);
    c->fwd(c->g, c->u, y, c->n);
    double *g0 = malloc(sizeof(double) * (size_t)c->n), *u0 = malloc(sizeof(double) * (size_t)c->n), *y32 = dzeros(c->n);
    memcpy(g0, c->g, sizeof(double) * (size_t)c->n), memcpy(u0, c->u, sizeof(double) * (size_t)c->n);
    round_to_f32(c->g, c->n), round_to_f32(c->u, c->n), round_to_f32(c->wy, c->n);
    c->fwd(c->g, c->u, y32, c->n);
    bwd64(c->g, c->u, c->wy, dg, du, c->n);
    float *gf = tof(c->g, c->n), *uf = tof(c->u, c->n), *dyf = tof(c->wy, c->n), *yf = fzeros(c->n), *dgf = fzeros(c->n),
          *duf = fzeros(c->n);
    fwd32(gf, uf, yf, c->n);
    bwd32(gf, uf, dyf, dgf, duf, c->n);
    snprintf(what, sizeof what, "%s fwd", name);
    CHECK_REL32(yf, y32, c->n, 1e-6, what);
    snprintf(what, sizeof what, "%s dg", name);
    CHECK_REL32(dgf, dg, c->n, 1e-6, what);
    snprintf(what, sizeof what, "%s du", name);
    CHECK_REL32(duf, du, c->n, 1e-6, what);
    memcpy(c->g, g0, sizeof(double) * (size_t)c->n), memcpy(c->u, u0, sizeof(double) * (size_t)c->n);
    free(g0), free(u0), free(y32), free(dg), free(du), free(gf), free(uf), free(dyf), free(yf), free(dgf), free(duf);
}
static void test_swiglu(void) {
    sw_ctx c = {.n = 301, .fwd = ck_swiglu_fwd_f64};
    c.g = dvec(c.n, 6.0), c.u = dvec(c.n, 1.0), c.wy = dvec(c.n, 1.0);
    double *y = dzeros(c.n);
    glu_checks("swiglu", &c, y, ck_swiglu_bwd_f64, ck_swiglu_fwd_f32, ck_swiglu_bwd_f32);
    CHECK_NEAR(y[5], c.g[5] / (1 + exp(-c.g[5])) * c.u[5], 1e-15, 1e-15);
    free(c.g), free(c.u), free(c.wy), free(y);
}

/* ---- geglu (Gemma's tanh GELU) ---------------------------------------------- */
static void test_geglu(void) {
    sw_ctx c = {.n = 301, .fwd = ck_geglu_fwd_f64};
    c.g = dvec(c.n, 6.0), c.u = dvec(c.n, 1.0), c.wy = dvec(c.n, 1.0);
    double *y = dzeros(c.n);
    glu_checks("geglu", &c, y, ck_geglu_bwd_f64, ck_geglu_fwd_f32, ck_geglu_bwd_f32);
    /* torch.nn.functional.gelu(x, approximate="tanh") at a few points (computed in float64) */
    static const double xs[] = {-3.0, -0.5, 0.0, 0.7, 2.5}, gelu[] = {-0.0036373920817729943, -0.15428599017485606,
                                                                     0.0, 0.5305701347051167, 2.484915733910001};
    for (int i = 0; i < 5; i++) {
        double one = 1.0, out;
        ck_geglu_fwd_f64(&xs[i], &one, &out, 1);
        CHECK_NEAR(out, gelu[i], 1e-15, 1e-15);
    }
    free(c.g), free(c.u), free(c.wy), free(y);
}

/* ---- embedding ------------------------------------------------------------------ */
typedef struct {
    double *table, *wy;
    int32_t *ids;
    int64_t T, V, H;
} emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    double *y = dzeros(c->T * c->H);
    CHECK_EQ(ck_embedding_fwd_f64(c->table, c->ids, y, c->T, c->V, c->H), -1);
    double L = dotd(y, c->wy, c->T * c->H);
    free(y);
    return L;
}
static void test_embedding(void) {
    int32_t ids[9] = {3, 0, 6, 3, 3, 1, 6, 2, 0};
    emb_ctx c = {.T = 9, .V = 7, .H = 5, .ids = ids};
    c.table = dvec(c.V * c.H, 1.0), c.wy = dvec(c.T * c.H, 1.0);
    double *dt = dzeros(c.V * c.H);
    CHECK_EQ(ck_embedding_bwd_f64(ids, c.wy, dt, c.T, c.V, c.H), -1);
    check_grad("embedding dtable", emb_loss, &c, c.table, c.V * c.H, dt);
    /* accumulate: a second call doubles */
    CHECK_EQ(ck_embedding_bwd_f64(ids, c.wy, dt, c.T, c.V, c.H), -1);
    CHECK_NEAR(dt[3 * c.H + 1], 2 * (c.wy[0 * c.H + 1] + c.wy[3 * c.H + 1] + c.wy[4 * c.H + 1]), 1e-14, 1e-15);
    /* out of range ids: reported, nothing written */
    int32_t bad[4] = {0, 6, 7, -1};
    float *tf = tof(c.table, c.V * c.H), *of = fzeros(4 * c.H), *dtf = fzeros(c.V * c.H);
    CHECK_EQ(ck_embedding_fwd_f32(tf, bad, of, 4, c.V, c.H), 2);
    CHECK_EQ(ck_embedding_bwd_f32(bad, of, dtf, 4, c.V, c.H), 2);
    CHECK_EQ(ck_embedding_fwd_f32(tf, bad + 3, of, 1, c.V, c.H), 0);
    CHECK(ck_sumsq_f32(of, 4 * c.H) == 0 && ck_sumsq_f32(dtf, c.V * c.H) == 0);
    CHECK_EQ(ck_embedding_fwd_f32(tf, bad, of, 2, c.V, c.H), -1);
    CHECK(memcmp(of + c.H, tf + 6 * c.H, sizeof(float) * (size_t)c.H) == 0);
    free(c.table), free(c.wy), free(dt), free(tf), free(of), free(dtf);
}

/* ---- cross entropy ---------------------------------------------------------------- */
typedef struct {
    double *logits;
    int32_t *tg;
    int64_t T, V;
    double c;
    double cap; /* final_logit_softcapping (0: none) */
} ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    double s;
    int64_t n;
    CHECK_EQ(ck_cross_entropy_fwd_f64(c->logits, c->tg, c->T, c->V, -100, c->cap, &s, &n), -1);
    return c->c * s;
}
static void test_cross_entropy(void) {
    int32_t tg[6] = {2, -100, 0, 10, -100, 5};
    ce_ctx c = {.T = 6, .V = 11, .tg = tg, .c = 0.7};
    int64_t n = c.T * c.V;
    c.logits = dvec(n, 3.0);
    double *dl = dvec(n, 1.0); /* garbage: must be fully written */
    CHECK_EQ(ck_cross_entropy_bwd_f64(c.logits, tg, c.T, c.V, -100, 0.0, c.c, dl), -1);
    check_grad("cross_entropy dlogits", ce_loss, &c, c.logits, n, dl);
    for (int64_t v = 0; v < c.V; v++) CHECK(dl[1 * c.V + v] == 0 && dl[4 * c.V + v] == 0);
    double s;
    int64_t cnt;
    CHECK_EQ(ck_cross_entropy_fwd_f64(c.logits, tg, c.T, c.V, -100, 0.0, &s, &cnt), -1);
    CHECK_EQ(cnt, 4);
    CHECK_EQ(ck_count_targets(tg, c.T, -100), 4);
    double want = 0;
    for (int64_t t = 0; t < c.T; t++) {
        if (tg[t] == -100) continue;
        double z = 0;
        for (int64_t v = 0; v < c.V; v++) z += exp(c.logits[t * c.V + v]);
        want += log(z) - c.logits[t * c.V + tg[t]];
    }
    CHECK_NEAR(s, want, 1e-14, 0);
    /* f32 vs f64, and in place */
    round_to_f32(c.logits, n);
    CHECK_EQ(ck_cross_entropy_fwd_f64(c.logits, tg, c.T, c.V, -100, 0.0, &s, &cnt), -1);
    CHECK_EQ(ck_cross_entropy_bwd_f64(c.logits, tg, c.T, c.V, -100, 0.0, c.c, dl), -1);
    float *lf = tof(c.logits, n), *dlf = fzeros(n);
    double sf;
    int64_t cntf;
    CHECK_EQ(ck_cross_entropy_fwd_f32(lf, tg, c.T, c.V, -100, 0.0, &sf, &cntf), -1);
    CHECK_NEAR(sf, s, 1e-6, 0);
    CHECK_EQ(cntf, cnt);
    CHECK_EQ(ck_cross_entropy_bwd_f32(lf, tg, c.T, c.V, -100, 0.0, c.c, dlf), -1);
    CHECK_REL32(dlf, dl, n, 1e-6, "cross_entropy dlogits");
    CHECK_EQ(ck_cross_entropy_bwd_f32(lf, tg, c.T, c.V, -100, 0.0, c.c, lf), -1);
    CHECK(memcmp(lf, dlf, sizeof(float) * (size_t)n) == 0);
    /* bad targets */
    int32_t bad[3] = {1, -100, 11};
    CHECK_EQ(ck_cross_entropy_fwd_f32(dlf, bad, 3, c.V, -100, 0.0, &sf, &cntf), 2);
    CHECK_EQ(ck_cross_entropy_bwd_f32(dlf, bad, 3, c.V, -100, 0.0, 1.0, dlf), 2);
    free(c.logits), free(dl), free(lf), free(dlf);
}

/* Gemma 2's final_logit_softcapping: cross entropy of c tanh(x / c), its gradient through the tanh (finite
 * differences), f32 = f64, in place; and the fused head's loss and gradients with the same cap (finite
 * differences), per sequence too */
typedef struct {
    double *h, *W, *scales, cap;
    int32_t *tg;
    int64_t T, H, V, nscale;
} lcecap_ctx;
static double lcecap_loss(void *p) {
    lcecap_ctx *c = p;
    double tot = 0, s;
    int64_t n, per = c->T / c->nscale;
    for (int64_t k = 0; k < c->nscale; k++) { /* sum_k scales[k] x (run k's summed token losses) */
        CHECK_EQ(ck_linear_cross_entropy_rows_f64(c->h + k * per * c->H, c->W, c->tg + k * per, per, c->H, c->V, -100,
                                                  (double[]){0}, 1, 0, 0, NULL, 1, c->cap, &s, &n, NULL, NULL),
                 -1);
        tot += c->scales[k] * s;
    }
    return tot;
}
static void test_softcap_ce(void) {
    int32_t tg[6] = {2, -100, 0, 10, -100, 5};
    ce_ctx c = {.T = 6, .V = 11, .tg = tg, .c = 0.7, .cap = 1.3};
    const int64_t n = c.T * c.V;
    c.logits = dvec(n, 3.0); /* |x| up to 3 against a cap of 1.3: the tanh bends */
    double *dl = dvec(n, 1.0), s, want = 0;
    int64_t cnt;
    CHECK_EQ(ck_cross_entropy_bwd_f64(c.logits, tg, c.T, c.V, -100, c.cap, c.c, dl), -1);
    check_grad("cross_entropy dlogits (softcap)", ce_loss, &c, c.logits, n, dl);
    CHECK_EQ(ck_cross_entropy_fwd_f64(c.logits, tg, c.T, c.V, -100, c.cap, &s, &cnt), -1);
    for (int64_t t = 0; t < c.T; t++) { /* by hand */
        if (tg[t] == -100) continue;
        double z = 0;
        for (int64_t v = 0; v < c.V; v++) z += exp(c.cap * tanh(c.logits[t * c.V + v] / c.cap));
        want += log(z) - c.cap * tanh(c.logits[t * c.V + tg[t]] / c.cap);
    }
    CHECK_NEAR(s, want, 1e-13, 0);
    double s0;
    CHECK_EQ(ck_cross_entropy_fwd_f64(c.logits, tg, c.T, c.V, -100, 0.0, &s0, &cnt), -1);
    CHECK_MSG(fabs(s0 - s) > 0.1, "the cap moves the loss (%g vs %g)", s0, s);
    round_to_f32(c.logits, n);
    CHECK_EQ(ck_cross_entropy_bwd_f64(c.logits, tg, c.T, c.V, -100, c.cap, c.c, dl), -1);
    float *lf = tof(c.logits, n), *dlf = fzeros(n);
    double sf;
    CHECK_EQ(ck_cross_entropy_fwd_f64(c.logits, tg, c.T, c.V, -100, c.cap, &s, &cnt), -1);
    CHECK_EQ(ck_cross_entropy_fwd_f32(lf, tg, c.T, c.V, -100, c.cap, &sf, &cnt), -1);
    CHECK_NEAR(sf, s, 1e-5, 0);
    CHECK_EQ(ck_cross_entropy_bwd_f32(lf, tg, c.T, c.V, -100, c.cap, c.c, dlf), -1);
    CHECK_REL32(dlf, dl, n, 1e-5, "cross_entropy dlogits (softcap) f32");
    CHECK_EQ(ck_cross_entropy_bwd_f32(lf, tg, c.T, c.V, -100, c.cap, c.c, lf), -1);
    CHECK(memcmp(lf, dlf, sizeof(float) * (size_t)n) == 0);
    free(c.logits), free(dl), free(lf), free(dlf);

    int32_t tg2[8] = {3, -100, 1, 6, 0, 2, -100, 4};
    for (int64_t ns = 1; ns <= 2; ns++) { /* one scale, then one per run of 4 tokens */
        double sc[2] = {0.6, -0.45};
        lcecap_ctx l = {.T = 8, .H = 5, .V = 7, .tg = tg2, .cap = 0.9, .scales = sc, .nscale = ns};
        l.h = dvec(l.T * l.H, 1.5), l.W = dvec(l.V * l.H, 1.5);
        double *dh = dvec(l.T * l.H, 1.0), *dW = dzeros(l.V * l.H), tot, rows[2];
        CHECK_EQ(ck_linear_cross_entropy_rows_f64(l.h, l.W, tg2, l.T, l.H, l.V, -100, sc, ns, 3, 0, rows, 2, l.cap, &tot,
                                                  &cnt, dh, dW),
                 -1);
        check_grad(ns == 1 ? "linear_cross_entropy dh (softcap)" : "linear_cross_entropy dh (softcap, per row)",
                   lcecap_loss, &l, l.h, l.T * l.H, dh);
        check_grad(ns == 1 ? "linear_cross_entropy dW (softcap)" : "linear_cross_entropy dW (softcap, per row)",
                   lcecap_loss, &l, l.W, l.V * l.H, dW);
        double lg[8 * 7], r0, r1; /* the fused loss = matmul + cross_entropy with the cap, per row too */
        ck_matmul_f64(l.h, l.W, lg, l.T, l.V, l.H, 0, 1, 0);
        CHECK_EQ(ck_cross_entropy_fwd_f64(lg, tg2, 4, l.V, -100, l.cap, &r0, &cnt), -1);
        CHECK_EQ(ck_cross_entropy_fwd_f64(lg + 4 * l.V, tg2 + 4, 4, l.V, -100, l.cap, &r1, &cnt), -1);
        CHECK_NEAR(rows[0], r0, 1e-13, 1e-13);
        CHECK_NEAR(rows[1], r1, 1e-13, 1e-13);
        CHECK_NEAR(tot, r0 + r1, 1e-13, 1e-13);
        free(l.h), free(l.W), free(dh), free(dW);
    }
}

/* ---- fused linear + cross entropy ----------------------------------------------------- */
typedef struct {
    double *h, *W;
    int32_t *tg;
    int64_t T, H, V;
    double c;
} lce_ctx;
static double lce_loss(void *p) {
    lce_ctx *c = p;
    double s;
    int64_t n;
    CHECK_EQ(ck_linear_cross_entropy_f64(c->h, c->W, c->tg, c->T, c->H, c->V, -100, c->c, 3, 0, &s, &n, NULL, NULL), -1);
    return c->c * s;
}
/* ---- DPO: per-row sums, the pair loss, the per-row-scaled fused pass --------------------------- */
/* 2P rows of S tokens: rows [0, P) chosen, [P, 2P) rejected; the loss is
 * sum_p pscale_p * -log sigmoid(beta ((sref_c - s_c) - (sref_r - s_r))) with
 * s the rows' summed token losses, written out with the plain kernels */
typedef struct {
    double *h, *W, *sref, *ps;
    int32_t *tg;
    int64_t P, S, H, V;
    double beta;
} dpo_ctx;
static double dpo_ref_loss(void *p) {
    dpo_ctx *c = p;
    int64_t R = 2 * c->P, T = R * c->S;
    double *lg = dzeros(T * c->V), tot = 0;
    ck_matmul_f64(c->h, c->W, lg, T, c->V, c->H, 0, 1, 0);
    double *sr = dzeros(R);
    for (int64_t r = 0; r < R; r++) {
        int64_t n;
        CHECK_EQ(ck_cross_entropy_fwd_f64(lg + r * c->S * c->V, c->tg + r * c->S, c->S, c->V, -100, 0.0, &sr[r], &n), -1);
    }
    for (int64_t q = 0; q < c->P; q++) {
        double z = c->beta * ((c->sref[q] - sr[q]) - (c->sref[c->P + q] - sr[c->P + q]));
        tot += c->ps[q] * log1p(exp(-z));
    }
    free(lg), free(sr);
    return tot;
}
static void test_dpo(void) {
    enum { P = 3, S = 5, H = 6, V = 11 };
    int32_t tg[2 * P * S] = {-100, -100, 4, 7, -100, /* chosen 0: prompt, two completion targets, padding */
                             -100, 2, 2, 9, 10,      /* chosen 1 */
                             -100, -100, -100, 1, -100,
                             -100, -100, 3, -100, -100, /* rejected 0 */
                             -100, 0, 5, 6, 8,
                             -100, -100, -100, 10, 4};
    double sref[2 * P] = {3.1, 7.5, 2.2, 2.9, 9.0, 4.4}, ps[P] = {0.25, 0.25, 0}; /* pair 2 absent: scale 0 */
    dpo_ctx c = {.P = P, .S = S, .H = H, .V = V, .tg = tg, .sref = sref, .ps = ps, .beta = 0.7};
    int64_t T = 2 * P * S;
    c.h = dvec(T * H, 1.0), c.W = dvec(V * H, 1.0);
    double rows[2 * P], tot, loss[P], coef[2 * P];
    int64_t cnt;
    double zero = 0;
    CHECK_EQ(ck_linear_cross_entropy_rows_f64(c.h, c.W, tg, T, H, V, -100, &zero, 1, 4, 0, rows, 2 * P, 0.0, &tot, &cnt, NULL,
                                              NULL),
             -1);
    double chk = 0;
    for (int r = 0; r < 2 * P; r++) chk += rows[r];
    CHECK_NEAR(chk, tot, 1e-12, 0);
    CHECK_EQ(cnt, 14);
    ck_dpo_loss_f64(rows, sref, ps, NULL, P, (int[]){AXO_DPO_SIGMOID}, (double[]){1}, 1, c.beta, 0, 0.05, 0, loss, coef);
    double want = 0;
    for (int q = 0; q < P; q++) want += ps[q] * loss[q];
    CHECK_NEAR(want, dpo_ref_loss(&c), 1e-12, 0);
    CHECK(coef[2] == 0 && coef[P + 2] == 0); /* an absent pair contributes nothing */
    CHECK(loss[2] > 0);                       /* but its loss is still computed (the runtime ignores it) */
    double *dh = dzeros(T * H), *dW = dzeros(V * H), s2;
    CHECK_EQ(ck_linear_cross_entropy_rows_f64(c.h, c.W, tg, T, H, V, -100, coef, 2 * P, 3, 0, NULL, 1, 0.0, &s2, &cnt, dh, dW),
             -1);
    check_grad("dpo dhidden", dpo_ref_loss, &c, c.h, T * H, dh);
    check_grad("dpo dW", dpo_ref_loss, &c, c.W, V * H, dW);
    /* large |z| both ways: finite loss, coef in [0, pscale beta] */
    double sa[2] = {0, 800}, sb[2] = {800, 0}, r0[2] = {0, 0}, one = 1, l1, k1[2];
    ck_dpo_loss_f64(sa, r0, &one, NULL, 1, (int[]){AXO_DPO_SIGMOID}, (double[]){1}, 1, 1.0, 0, 0.05, 0, &l1, k1);
    CHECK_NEAR(l1, 0, 1e-300, 0);
    CHECK_NEAR(k1[0], 0, 1e-300, 0);
    ck_dpo_loss_f64(sb, r0, &one, NULL, 1, (int[]){AXO_DPO_SIGMOID}, (double[]){1}, 1, 1.0, 0, 0.05, 0, &l1, k1);
    CHECK_NEAR(l1, 800, 1e-12, 0);
    CHECK_NEAR(k1[0], 1, 1e-15, 0);
    CHECK_NEAR(k1[1], -1, 1e-15, 0);
    /* f32 agrees with f64 */
    float *hf = tof(c.h, T * H), *Wf = tof(c.W, V * H), rf[2 * P], sreff[2 * P], psf[P], lf[P], kf[2 * P];
    for (int r = 0; r < 2 * P; r++) sreff[r] = (float)sref[r];
    for (int q = 0; q < P; q++) psf[q] = (float)ps[q];
    double rowsf[2 * P];
    CHECK_EQ(ck_linear_cross_entropy_rows_f32(hf, Wf, tg, T, H, V, -100, &zero, 1, 0, 0, rowsf, 2 * P, 0.0, &tot, &cnt, NULL,
                                              NULL),
             -1);
    for (int r = 0; r < 2 * P; r++) rf[r] = (float)rowsf[r];
    ck_dpo_loss_f32(rf, sreff, psf, NULL, P, (int[]){AXO_DPO_SIGMOID}, (double[]){1}, 1, c.beta, 0, 0.05, 0, lf, kf);
    for (int q = 0; q < P; q++) CHECK_NEAR(lf[q], loss[q], 1e-5, 1e-5);
    for (int r = 0; r < 2 * P; r++) CHECK_NEAR(kf[r], coef[r], 1e-6, 1e-5);
    free(hf), free(Wf), free(dh), free(dW), free(c.h), free(c.W);
}

/* TRL 1.9's per_sequence_loss, transcribed from DPOTrainer.compute_loss as it is written there (logsigmoid,
 * sigmoid, relu, exp in its own order), for one pair: the reference for ir/dpo_loss.h's rewritten forms. */
static double lsig(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }
static double trl_pair_loss(int type, double c, double r, double nc, double nr, double beta, double eps, double tau,
                            double gamma) {
    double d = c - r;
    nc = nc < 1 ? 1 : nc, nr = nr < 1 ? 1 : nr;
    switch (type) {
    case AXO_DPO_SIGMOID: return -lsig(beta * d);
    case AXO_DPO_HINGE: return fmax(0, 1 - beta * d);
    case AXO_DPO_IPO: return pow(c / nc - r / nr - 1 / (2 * beta), 2);
    case AXO_DPO_EXO_PAIR:
        return sig(beta * d) * (lsig(beta * d) - log1p(-eps)) + sig(-beta * d) * (lsig(-beta * d) - log(eps));
    case AXO_DPO_NCA_PAIR: return -lsig(beta * c) - 0.5 * lsig(-beta * c) - 0.5 * lsig(-beta * r);
    case AXO_DPO_ROBUST: return (-(1 - eps) * lsig(beta * d) - (-eps * lsig(-beta * d))) / (1 - 2 * eps);
    case AXO_DPO_BCO_PAIR: return -lsig(beta * c) - lsig(-beta * r);
    case AXO_DPO_SPPO_HARD: return pow(c - 0.5 / beta, 2) + pow(r + 0.5 / beta, 2);
    case AXO_DPO_APO_ZERO: return 1 - sig(beta * c) + sig(beta * r);
    case AXO_DPO_APO_DOWN: return sig(beta * c) + 1 - sig(beta * d);
    case AXO_DPO_DISCOPOP: {
        double lg = d * beta, m = sig(lg / tau);
        return -lsig(lg) * (1 - m) + exp(-lg) * m;
    }
    case AXO_DPO_SIGMOID_NORM: return -lsig(beta * (c / nc - r / nr));
    case AXO_DPO_SIMPO: { /* CPOTrainer: logits = a - b - gamma / beta; -(1-eps) logsigmoid(beta l) - eps logsigmoid(-beta l) */
        double lg = c / nc - r / nr - gamma / beta;
        return -lsig(beta * lg) * (1 - eps) - lsig(-beta * lg) * eps;
    }
    case AXO_DPO_ORPO: { /* ORPOTrainer: -beta logsigmoid(log odds), log(1 - p) as log1p(-exp) */
        double a = c / nc, b = r / nr, lo = (a - b) - (log1p(-exp(a)) - log1p(-exp(b)));
        return -beta * lsig(lo);
    }
    }
    return NAN;
}

/* Every loss type of ir/dpo_loss.h: its value = TRL's expression; the rows' adjoints = central differences of the
 * weighted sum in s (with a pair scale); weights combine terms linearly; each name parses to its type. */
typedef struct {
    const int *t;
    const double *w;
    int n;
    double s[2], sref[2], cnt[2], beta, eps, tau, gamma;
} dpo1_ctx;
static double dpo1_loss(void *p) {
    dpo1_ctx *c = p;
    double ps = 0.5, loss, coef[2];
    ck_dpo_loss_f64(c->s, c->sref, &ps, c->cnt, 1, c->t, c->w, c->n, c->beta, c->eps, c->tau, c->gamma, &loss, coef);
    return ps * loss;
}
static void test_dpo_types(void) {
    static const char *const names[AXO_DPO_NTYPES] = {"sigmoid",  "hinge",    "ipo",      "exo_pair",
                                                      "nca_pair", "robust",   "bco_pair", "sppo_hard",
                                                      "apo_zero", "apo_down", "discopop", "sigmoid_norm",
                                                      "simpo",    "orpo"};
    uint64_t rng = 77;
    for (int t = 0; t < AXO_DPO_NTYPES; t++) {
        CHECK_EQ(axo_dpo_type_from_name(names[t], strlen(names[t])), t);
        for (int k = 0; k < 6; k++) {
            const double w1 = 1.0;
            dpo1_ctx c = {.t = &t, .w = &w1, .n = 1, .beta = k % 2 ? 0.1 : 0.7, .eps = 0.2, .tau = 0.05, .gamma = 0.3};
            for (int j = 0; j < 2; j++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                c.s[j] = 20.0 + (double)(rng >> 40) / (double)(1 << 24) * 30.0;
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                c.sref[j] = c.s[j] + ((double)(rng >> 40) / (double)(1 << 24) - 0.5) * (k < 3 ? 4.0 : 40.0);
                c.cnt[j] = (double)(3 + (rng >> 60));
                /* orpo (no reference): log-probabilities below 0 (mean token log-probs from -0.3 down) */
                if (t == AXO_DPO_ORPO) c.sref[j] = 0, c.s[j] = c.cnt[j] * (0.3 + (c.s[j] - 20.0) / 10.0);
            }
            double ps = 0.5, loss, coef[2];
            ck_dpo_loss_f64(c.s, c.sref, &ps, c.cnt, 1, &t, &w1, 1, c.beta, c.eps, c.tau, c.gamma, &loss, coef);
            double want = trl_pair_loss(t, c.sref[0] - c.s[0], c.sref[1] - c.s[1], c.cnt[0], c.cnt[1], c.beta, c.eps, c.tau,
                                        c.gamma);
            CHECK_MSG(fabs(loss - want) <= 1e-12 * fmax(1, fabs(want)), "%s: loss %.17g, TRL's expression %.17g", names[t],
                      loss, want);
            char what[64];
            snprintf(what, sizeof what, "dpo %s adjoints", names[t]);
            if (t != AXO_DPO_HINGE || fabs(1 - c.beta * ((c.sref[0] - c.s[0]) - (c.sref[1] - c.s[1]))) > 1e-3)
                check_grad(what, dpo1_loss, &c, c.s, 2, coef); /* (hinge: away from its kink) */
        }
    }
    { /* a pair the micro-batch does not hold (scale 0, zero rows): no adjoint, though orpo's terms are not finite */
        const int to = AXO_DPO_ORPO;
        double z2[2] = {0, 0}, c2[2] = {1, 1}, w1o = 1, zs = 0, lo, ko[2];
        ck_dpo_loss_f64(z2, z2, &zs, c2, 1, &to, &w1o, 1, 0.1, 0, 0.05, 0, &lo, ko);
        CHECK(ko[0] == 0 && ko[1] == 0);
    }
    /* a weighted sum of terms = the sum of the weighted terms; loss_type / loss_weights attrs parse */
    int tt[3], t1 = AXO_DPO_SIGMOID, t2 = AXO_DPO_BCO_PAIR;
    double ww[3], w1 = 1, s[2] = {30, 33}, sr[2] = {31, 30}, ps = 1, l, k[2], la, ka[2], lb, kb[2];
    CHECK_EQ(axo_dpo_parse("sigmoid,bco_pair", "0.8,0.2", tt, ww), 2);
    CHECK(tt[0] == AXO_DPO_SIGMOID && tt[1] == AXO_DPO_BCO_PAIR && ww[0] == 0.8 && ww[1] == 0.2);
    ck_dpo_loss_f64(s, sr, &ps, NULL, 1, tt, ww, 2, 0.1, 0, 0.05, 0, &l, k);
    ck_dpo_loss_f64(s, sr, &ps, NULL, 1, &t1, &w1, 1, 0.1, 0, 0.05, 0, &la, ka);
    ck_dpo_loss_f64(s, sr, &ps, NULL, 1, &t2, &w1, 1, 0.1, 0, 0.05, 0, &lb, kb);
    CHECK_NEAR(l, 0.8 * la + 0.2 * lb, 1e-15, 1e-15);
    CHECK_NEAR(k[0], 0.8 * ka[0] + 0.2 * kb[0], 1e-15, 1e-15);
    CHECK_EQ(axo_dpo_parse("ipo", NULL, tt, ww), 1);
    CHECK(ww[0] == 1);
    CHECK_EQ(axo_dpo_parse("sigmoid,aot", NULL, tt, ww), -1);      /* batch-coupled: not a per-pair loss */
    CHECK_EQ(axo_dpo_parse("sigmoid,ipo", "1", tt, ww), -1);       /* a weight per type */
    CHECK_EQ(axo_dpo_parse("sigmoid", "1,2", tt, ww), -1);
    CHECK_EQ(axo_dpo_parse("a,b,c,d,e", NULL, tt, ww), -1);
    CHECK_EQ(axo_dpo_parse("", NULL, tt, ww), -1);
}

static void test_linear_cross_entropy(void) {
    int32_t tg[10] = {4, -100, 0, 12, 7, 7, -100, 1, 3, 9};
    lce_ctx c = {.T = 10, .H = 6, .V = 13, .tg = tg};
    c.c = 1.0 / (double)ck_count_targets(tg, c.T, -100);
    c.h = dvec(c.T * c.H, 1.0), c.W = dvec(c.V * c.H, 1.0);
    round_to_f32(c.h, c.T * c.H), round_to_f32(c.W, c.V * c.H);
    double *dh = dvec(c.T * c.H, 1.0), *dW = dzeros(c.V * c.H), s;
    int64_t cnt;
    CHECK_EQ(ck_linear_cross_entropy_f64(c.h, c.W, tg, c.T, c.H, c.V, -100, c.c, 3, 0, &s, &cnt, dh, dW), -1);
    check_grad("linear_cross_entropy dhidden", lce_loss, &c, c.h, c.T * c.H, dh);
    check_grad("linear_cross_entropy dW", lce_loss, &c, c.W, c.V * c.H, dW);
    /* against the unfused composition: logits = h W^T, CE, dh = dl W, dW = dl^T h */
    double *lg = dzeros(c.T * c.V), *dl = dzeros(c.T * c.V), *dh2 = dzeros(c.T * c.H), *dW2 = dzeros(c.V * c.H), s2;
    int64_t cnt2;
    ck_matmul_f64(c.h, c.W, lg, c.T, c.V, c.H, 0, 1, 0);
    CHECK_EQ(ck_cross_entropy_fwd_f64(lg, tg, c.T, c.V, -100, 0.0, &s2, &cnt2), -1);
    CHECK_EQ(ck_cross_entropy_bwd_f64(lg, tg, c.T, c.V, -100, 0.0, c.c, dl), -1);
    ck_matmul_f64(dl, c.W, dh2, c.T, c.H, c.V, 0, 0, 0);
    ck_matmul_f64(dl, c.h, dW2, c.V, c.H, c.T, 1, 0, 0);
    CHECK_NEAR(s, s2, 1e-14, 0);
    CHECK_EQ(cnt, cnt2);
    CHECK_REL64(dh, dh2, c.T * c.H, 1e-13, "linear_cross_entropy dhidden vs unfused");
    CHECK_REL64(dW, dW2, c.V * c.H, 1e-13, "linear_cross_entropy dW vs unfused");
    /* f32: chunk sizes 1, 4, automatic vs the f64 unfused result; dW accumulates */
    float *hf = tof(c.h, c.T * c.H), *Wf = tof(c.W, c.V * c.H);
    int64_t chunks[3] = {1, 4, 0};
    for (int ci = 0; ci < 3; ci++) {
        float *dhf = fzeros(c.T * c.H), *dWf = fzeros(c.V * c.H);
        double sf;
        int64_t cntf;
        CHECK_EQ(ck_linear_cross_entropy_f32(hf, Wf, tg, c.T, c.H, c.V, -100, c.c, chunks[ci], 0, &sf, &cntf, dhf, dWf),
                 -1);
        CHECK_NEAR(sf, s2, 1e-6, 0);
        CHECK_EQ(cntf, cnt2);
        CHECK_REL32(dhf, dh2, c.T * c.H, 1e-5, "linear_cross_entropy dhidden");
        CHECK_REL32(dWf, dW2, c.V * c.H, 1e-5, "linear_cross_entropy dW");
        CHECK_EQ(ck_linear_cross_entropy_f32(hf, Wf, tg, c.T, c.H, c.V, -100, c.c, chunks[ci], 0, &sf, &cntf, NULL, dWf),
                 -1);
        for (int64_t i = 0; i < c.V * c.H; i++) dW2[i] *= 2;
        CHECK_REL32(dWf, dW2, c.V * c.H, 1e-5, "linear_cross_entropy dW accumulated twice");
        for (int64_t i = 0; i < c.V * c.H; i++) dW2[i] /= 2;
        free(dhf), free(dWf);
    }
    /* bf16 rounding points (the CUDA path's): dh and dW bf16-representable, close to f32 */
    {
        float *hb = tof(c.h, c.T * c.H), *Wb = tof(c.W, c.V * c.H), *dhb = fzeros(c.T * c.H), *dWb = fzeros(c.V * c.H);
        ck_round_bf16_inplace_f32(hb, c.T * c.H);
        ck_round_bf16_inplace_f32(Wb, c.V * c.H);
        float *dh32 = fzeros(c.T * c.H), *dW32 = fzeros(c.V * c.H);
        double sb, s32;
        int64_t nb, n32;
        CHECK_EQ(ck_linear_cross_entropy_f32(hb, Wb, tg, c.T, c.H, c.V, -100, c.c, 4, 1, &sb, &nb, dhb, dWb), -1);
        CHECK_EQ(ck_linear_cross_entropy_f32(hb, Wb, tg, c.T, c.H, c.V, -100, c.c, 4, 0, &s32, &n32, dh32, dW32), -1);
        CHECK(sb == s32); /* the logits themselves are not rounded */
        int rep = 1;
        for (int64_t i = 0; i < c.T * c.H; i++) rep &= ax_round_bf16(dhb[i]) == dhb[i];
        for (int64_t i = 0; i < c.V * c.H; i++) rep &= ax_round_bf16(dWb[i]) == dWb[i];
        CHECK(rep);
        double dmax = 0, ref = 0;
        for (int64_t i = 0; i < c.V * c.H; i++) dmax = fmax(dmax, fabs((double)dWb[i] - dW32[i])), ref = fmax(ref, fabs((double)dW32[i]));
        CHECK_MSG(dmax > 0 && dmax <= 2e-2 * ref, "bf16 dW differs by %.3g of %.3g", dmax, ref);
        free(hb), free(Wb), free(dhb), free(dWb), free(dh32), free(dW32);
    }
    int32_t bad[2] = {0, 13};
    CHECK_EQ(ck_linear_cross_entropy_f32(hf, Wf, bad, 2, c.H, c.V, -100, 1, 0, 0, &s, &cnt, NULL, NULL), 1);
    free(c.h), free(c.W), free(dh), free(dW), free(lg), free(dl), free(dh2), free(dW2), free(hf), free(Wf);
}

/* ---- bias ---------------------------------------------------------------------------- */
typedef struct {
    double *x, *b, *wy;
    int64_t R, N;
} bias_ctx;
static double bias_loss(void *p) {
    bias_ctx *c = p;
    double *y = dzeros(c->R * c->N);
    ck_bias_add_fwd_f64(c->x, c->b, y, c->R, c->N);
    double L = dotd(y, c->wy, c->R * c->N);
    free(y);
    return L;
}
static void test_bias(void) {
    bias_ctx c = {.R = 7, .N = 9};
    int64_t n = c.R * c.N;
    c.x = dvec(n, 1.0), c.b = dvec(c.N, 1.0), c.wy = dvec(n, 1.0);
    double *db = dzeros(c.N);
    ck_bias_add_bwd_f64(c.wy, db, c.R, c.N);
    check_grad("bias_add dx", bias_loss, &c, c.x, n, c.wy); /* dx = dy */
    check_grad("bias_add db", bias_loss, &c, c.b, c.N, db);
    round_to_f32(c.x, n), round_to_f32(c.b, c.N), round_to_f32(c.wy, n);
    double *y = dzeros(n);
    memset(db, 0, sizeof(double) * (size_t)c.N);
    ck_bias_add_fwd_f64(c.x, c.b, y, c.R, c.N);
    ck_bias_add_bwd_f64(c.wy, db, c.R, c.N);
    float *xf = tof(c.x, n), *bf = tof(c.b, c.N), *dyf = tof(c.wy, n), *dbf = fzeros(c.N);
    ck_bias_add_fwd_f32(xf, bf, xf, c.R, c.N); /* in place */
    ck_bias_add_bwd_f32(dyf, dbf, c.R, c.N);
    CHECK_REL32(xf, y, n, 1e-7, "bias_add fwd");
    CHECK_REL32(dbf, db, c.N, 1e-6, "bias_add db");
    free(c.x), free(c.b), free(c.wy), free(db), free(y), free(xf), free(bf), free(dyf), free(dbf);
}

/* ---- adamw ---------------------------------------------------------------------------- */
static void test_adamw(void) {
    enum { n = 33 };
    double lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, gsc = 0.5;
    double *p = dvec(n, 1.0), *g1 = dvec(n, 2.0), *g2 = dvec(n, 2.0);
    double *m = dzeros(n), *v = dzeros(n);
    round_to_f32(p, n), round_to_f32(g1, n), round_to_f32(g2, n);
    double p0[n];
    memcpy(p0, p, sizeof p0);
    /* hand-written two steps (textbook AdamW, torch's formulation) */
    double hp[n], hm[n], hv[n];
    for (int i = 0; i < n; i++) {
        double pp = p[i], mm = 0, vv = 0;
        for (int s = 1; s <= 2; s++) {
            double g = (s == 1 ? g1 : g2)[i] * gsc;
            pp *= 1 - lr * wd;
            mm = b1 * mm + (1 - b1) * g;
            vv = b2 * vv + (1 - b2) * g * g;
            double bc1 = 1 - pow(b1, s), bc2 = 1 - pow(b2, s);
            pp -= lr / bc1 * mm / (sqrt(vv) / sqrt(bc2) + eps);
        }
        hp[i] = pp, hm[i] = mm, hv[i] = vv;
    }
    float *pf = tof(p, n), *g1f = tof(g1, n), *g2f = tof(g2, n), *mf = fzeros(n), *vf = fzeros(n);
    ck_adamw_step_f64(p, g1, m, v, n, lr, b1, b2, eps, wd, 1, gsc);
    ck_adamw_step_f64(p, g2, m, v, n, lr, b1, b2, eps, wd, 2, gsc);
    ck_adamw_step_f32(pf, g1f, mf, vf, n, lr, b1, b2, eps, wd, 1, gsc);
    ck_adamw_step_f32(pf, g2f, mf, vf, n, lr, b1, b2, eps, wd, 2, gsc);
    CHECK_REL64(p, hp, n, 1e-14, "adamw_f64 p vs hand");
    CHECK_REL64(m, hm, n, 1e-14, "adamw_f64 m vs hand");
    CHECK_REL64(v, hv, n, 1e-14, "adamw_f64 v vs hand");
    CHECK_REL32(pf, hp, n, 1e-6, "adamw p");
    CHECK_REL32(mf, hm, n, 1e-6, "adamw m");
    CHECK_REL32(vf, hv, n, 1e-6, "adamw v");
    /* the update itself (p - p0) must be accurate too, not only p */
    double dh[n], df[n];
    for (int i = 0; i < n; i++) dh[i] = hp[i] - p0[i], df[i] = (double)pf[i] - p0[i];
    CHECK_REL64(df, dh, n, 1e-4, "adamw_f32 update p - p0");
    free(p), free(g1), free(g2), free(m), free(v), free(pf), free(g1f), free(g2f), free(mf), free(vf);
}

/* Stochastic rounding to bf16 (pure-bf16 AdamW): the result is one of the
 * two bf16 neighbours of x, bf16 values stay, r = 0 truncates and r = 0xffff
 * rounds every inexact value away from zero, the mean over many draws is x
 * (unbiased, within 5 sigma), and inf/NaN/overflow are handled. */
static void test_bf16_sr(void) {
    float xs[] = {1.0f, -1.0f, 1.0f + 0x1p-12f, -3.0f - 0x1p-9f - 0x1p-14f, 0.0123f, -7.3e-5f, 1e-39f, 3.0e38f};
    for (size_t k = 0; k < AX_ARRAY_LEN(xs); k++) {
        float x = xs[k];
        union { float f; uint32_t u; } c = {x}, lo = {0}, hi = {0};
        lo.u = c.u & 0xffff0000u;          /* toward zero */
        hi.u = lo.u + ((c.u & 0xffffu) != 0 ? 0x10000u : 0); /* away from zero (equal when x is a bf16) */
        CHECK_MSG(axo_bf16_sr(x, 0) == lo.f, "sr(%a, 0) truncates", (double)x);
        CHECK_MSG(axo_bf16_sr(x, 0xffffu) == hi.f, "sr(%a, 0xffff) rounds away from zero", (double)x);
        const int64_t n = 400000;
        double sum = 0;
        int64_t up = 0;
        int neighbours = 1;
        for (int64_t i = 0; i < n; i++) {
            float y = axo_bf16_sr(x, axo_rng_u32(17, 3, (uint32_t)i));
            neighbours &= y == lo.f || y == hi.f;
            up += y == hi.f && hi.f != lo.f;
            sum += (double)y;
        }
        CHECK_MSG(neighbours, "sr(%a) gave a value other than its two bf16 neighbours", (double)x);
        double pu = (double)(c.u & 0xffffu) / 65536.0, gap = fabs((double)hi.f - (double)lo.f);
        double sigma = gap * sqrt(pu * (1 - pu) / (double)n);
        CHECK_MSG(fabs(sum / (double)n - (double)x) <= 5 * sigma + 1e-12 * fabs((double)x),
                  "sr(%a): mean %.17g, expected %.17g (5 sigma %.3g)", (double)x, sum / (double)n, (double)x, 5 * sigma);
        if (pu > 0) CHECK_MSG(fabs((double)up / (double)n - pu) <= 5 * sqrt(pu * (1 - pu) / (double)n), "sr(%a): up rate", (double)x);
    }
    CHECK(isinf(axo_bf16_sr(INFINITY, 0xffffu)) && axo_bf16_sr(-INFINITY, 0) < 0);
    CHECK(isnan(axo_bf16_sr(NAN, 0x1234u)));
    union { float f; uint32_t u; } nanlow = {.u = 0x7f800001u}; /* a NaN whose payload sits in the dropped bits */
    CHECK(isnan(axo_bf16_sr(nanlow.f, 0)));
    float big = 0x1.fffffep127f; /* would round up to inf: cut toward zero instead */
    CHECK(isfinite(axo_bf16_sr(big, 0xffffu)) && axo_bf16_sr(big, 0xffffu) == ax_round_bf16(0x1.fep127f));
    CHECK(isfinite(axo_bf16_sr(-big, 0xffffu)));
}

/* AdamW's 8-lane path (AVX2 + FMA where the CPU has it) gives the bits of
 * the scalar loop: a call over n elements against n calls of one element
 * (which take the scalar loop), both lerp regimes (beta1 0.9: weight < 0.5;
 * beta1 0.3: weight >= 0.5), gradient scale and weight decay, values over
 * many magnitudes. */
static void test_adamw_lanes(void) {
    const int64_t n = 1003;
    for (int regime = 0; regime < 2; regime++) {
        double b1 = regime ? 0.3 : 0.9;
        float *p = malloc(4 * n), *g = malloc(4 * n), *m = malloc(4 * n), *v = malloc(4 * n);
        float *p1 = malloc(4 * n), *m1 = malloc(4 * n), *v1 = malloc(4 * n);
        for (int64_t i = 0; i < n; i++) {
            double sc = pow(10.0, (double)(i % 9) - 4);
            p[i] = p1[i] = (float)(rnd() * sc);
            g[i] = (float)(rnd() * sc);
            m[i] = m1[i] = (float)(rnd() * sc * 0.1);
            v[i] = v1[i] = (float)(fabs(rnd()) * sc * sc * 0.01);
        }
        for (int step = 1; step <= 3; step++) {
            ck_adamw_step_f32(p, g, m, v, n, 1e-3, b1, 0.999, 1e-8, 0.01, step, 0.7);
            for (int64_t i = 0; i < n; i++) ck_adamw_step_f32(p1 + i, g + i, m1 + i, v1 + i, 1, 1e-3, b1, 0.999, 1e-8, 0.01, step, 0.7);
        }
        CHECK_MSG(!memcmp(p, p1, 4 * n) && !memcmp(m, m1, 4 * n) && !memcmp(v, v1, 4 * n),
                  "adamw (beta1 %g): the vector path's bits differ from the scalar loop's", b1);
        free(p), free(g), free(m), free(v), free(p1), free(m1), free(v1);
    }
}

/* Stochastic rounding's 8-lane path gives the scalar loop's bits: values
 * over every magnitude, +-inf, NaNs, the largest finite floats (which must
 * not round up to inf), subnormals, zeros; offsets past 2^32 wrap alike. */
static void test_round_sr_lanes(void) {
    const int64_t n = 1003;
    float *a = malloc(4 * n), *b = malloc(4 * n);
    for (int64_t i = 0; i < n; i++) {
        double sc = pow(10.0, (double)(i % 80) - 40);
        a[i] = (float)(rnd() * sc);
    }
    a[3] = INFINITY, a[4] = -INFINITY, a[5] = NAN, a[6] = FLT_MAX, a[7] = -FLT_MAX, a[8] = 1e-45f, a[9] = 0.0f, a[10] = -0.0f;
    a[11] = 3.3895e38f;
    int64_t firsts[2] = {17, ((int64_t)1 << 32) - 5};
    for (int f = 0; f < 2; f++) {
        memcpy(b, a, 4 * n);
        float *c = malloc(4 * n);
        memcpy(c, a, 4 * n);
        ck_round_bf16_sr_f32(b, n, 9, 4, firsts[f]);
        for (int64_t i = 0; i < n; i++) ck_round_bf16_sr_f32(c + i, 1, 9, 4, firsts[f] + i);
        CHECK_MSG(!memcmp(b, c, 4 * n), "round_bf16_sr (first %lld): the vector path's bits differ from the scalar loop's",
                  (long long)firsts[f]);
        free(c);
    }
    free(a), free(b);
}

/* Pure-bf16 AdamW: the f32 step of ck_adamw_step_f32, then p, m, v each
 * stochastically rounded (within one bf16 step of the f32 result, bf16
 * values); the bits depend on the element's index in the whole tensor
 * (`first`), so a block updated at its offset equals the same elements of a
 * whole-tensor update, and they change with the step and the salt. */
static void test_adamw_sr(void) {
    enum { n = 1000, off = 400, nb = 300 };
    float p[n], g[n], m[n], v[n], p32[n], m32[n], v32[n];
    uint32_t sd = 99;
    for (int i = 0; i < n; i++) {
        sd = sd * 1664525u + 1013904223u;
        p[i] = ax_round_bf16(((float)(sd >> 8) / 16777216.0f - 0.5f) * 0.2f);
        g[i] = ax_round_bf16(((float)((sd * 7u) >> 8) / 16777216.0f - 0.5f) * 0.01f + 1e-4f);
        m[i] = ax_round_bf16(g[i] * 0.3f);
        v[i] = ax_round_bf16(g[i] * g[i] * 0.5f + 1e-9f);
    }
    memcpy(p32, p, sizeof p), memcpy(m32, m, sizeof m), memcpy(v32, v, sizeof v);
    float P[n], M[n], V[n];
    memcpy(P, p, sizeof p), memcpy(M, m, sizeof m), memcpy(V, v, sizeof v);
    ck_adamw_step_f32(p32, g, m32, v32, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 5, 0.7);
    ck_adamw_step_sr_bf16(P, g, M, V, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 5, 0.7, 11, 0);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        const float *got[3] = {P, M, V}, *f32[3] = {p32, m32, v32};
        for (int k = 0; k < 3; k++) {
            float y = got[k][i], x = f32[k][i];
            union { float f; uint32_t u; } c = {x}, lo = {0}, hi = {0};
            lo.u = c.u & 0xffff0000u;
            hi.u = lo.u + ((c.u & 0xffffu) ? 0x10000u : 0);
            float want = axo_bf16_sr(x, axo_rng_u32(5, 33u + (uint32_t)k, (uint32_t)i));
            ok &= (y == lo.f || y == hi.f) && y == want;
        }
    }
    CHECK_MSG(ok, "adamw_sr_bf16: not the f32 step stochastically rounded with bits (step, 3 salt + j, i)");
    /* the block [off, off + nb) updated on its own, at its offset */
    float Pb[nb], Mb[nb], Vb[nb];
    memcpy(Pb, p + off, sizeof Pb), memcpy(Mb, m + off, sizeof Mb), memcpy(Vb, v + off, sizeof Vb);
    ck_adamw_step_sr_bf16(Pb, g + off, Mb, Vb, nb, 1e-3, 0.9, 0.999, 1e-8, 0.1, 5, 0.7, 11, off);
    CHECK(!memcmp(Pb, P + off, sizeof Pb) && !memcmp(Mb, M + off, sizeof Mb) && !memcmp(Vb, V + off, sizeof Vb));
    /* another offset, step or salt draws other bits */
    int differ[3] = {0, 0, 0};
    float Q[nb], Mq[nb], Vq[nb];
    for (int t = 0; t < 3; t++) {
        memcpy(Q, p + off, sizeof Q), memcpy(Mq, m + off, sizeof Mq), memcpy(Vq, v + off, sizeof Vq);
        ck_adamw_step_sr_bf16(Q, g + off, Mq, Vq, nb, 1e-3, 0.9, 0.999, 1e-8, 0.1, t == 1 ? 5 : 6, 0.7, t == 2 ? 12 : 11,
                              t == 0 ? 0 : off);
        if (t == 1) { /* step 5 again but the offset: must be the block result */
            differ[t] = memcmp(Q, Pb, sizeof Q) != 0;
            continue;
        }
        for (int i = 0; i < nb; i++) differ[t] += Q[i] != Pb[i];
    }
    CHECK_MSG(differ[0] > nb / 20 && differ[1] == 0 && differ[2] > nb / 20, "adamw_sr_bf16: bits do not depend on "
                                                                           "index/step/salt as keyed (%d %d %d)",
              differ[0], differ[1], differ[2]);
}

/* 8-bit AdamW state: the code books are the formula of ir/quant.h (in
 * double, rounded to f32), strictly increasing from 0 to exactly 1, and
 * encoding picks the nearest code (checked against a full scan). */
static double q8_formula(int c, int bits) { /* bits 7 (|m|) or 8 (v) */
    if (c == 0) return 0.0;
    int top = 0;
    while ((c >> (top + 1)) != 0) top++;
    int E = bits - 1 - top;
    double n = (double)(1 << top), f = (double)c - n;
    return pow(10.0, -E) * (0.1 + 0.9 * (f + 1.0) / n);
}

static void test_q8_codes(void) {
    int ok = 1;
    for (int c = 0; c < 128; c++) ok &= axo_q8_signed[c] == (float)q8_formula(c, 7);
    for (int c = 0; c < 256; c++) ok &= axo_q8_unsigned[c] == (float)q8_formula(c, 8);
    CHECK_MSG(ok, "the 8-bit code books are not ir/quant.h's formula");
    for (int c = 1; c < 128; c++) ok &= axo_q8_signed[c] > axo_q8_signed[c - 1];
    for (int c = 1; c < 256; c++) ok &= axo_q8_unsigned[c] > axo_q8_unsigned[c - 1];
    CHECK_MSG(ok, "the 8-bit code books are not strictly increasing");
    CHECK(axo_q8_signed[127] == 1.0f && axo_q8_unsigned[255] == 1.0f);
    CHECK_NEAR(axo_q8_signed[1], 1e-6, 1e-12, 1e-6);
    CHECK_NEAR(axo_q8_unsigned[1], 1e-7, 1e-13, 1e-6);
    uint32_t sd = 5;
    int nearest = 1, sign = 1;
    for (int t = 0; t < 200000; t++) {
        sd = sd * 1664525u + 1013904223u;
        /* log-uniform magnitudes over 1e-9 .. 1, both signs, and exact codes */
        double e = -9.0 * (double)(sd >> 8) / 16777216.0;
        float x = (float)pow(10.0, e) * ((sd & 1) ? -1.0f : 1.0f);
        if (t % 7 == 0) x = axo_q8_signed[(sd >> 3) & 127] * ((sd & 1) ? -1.0f : 1.0f);
        uint32_t b = axo_q8_encode_signed(x * 3.0f, 3.0f); /* x * absmax / absmax */
        float a = fabsf(x * 3.0f / 3.0f), best = INFINITY;
        int bi = 0;
        for (int c = 0; c < 128; c++)
            if (fabsf(a - axo_q8_signed[c]) < best) best = fabsf(a - axo_q8_signed[c]), bi = c;
        nearest &= (int)(b & 127u) == bi;
        sign &= (b & 127u) == 0 || ((b & 128u) != 0) == (x < 0);
        float v = fabsf(x);
        uint32_t u = axo_q8_encode_unsigned(v, 1.0f);
        best = INFINITY;
        for (int c = 0; c < 256; c++)
            if (fabsf(v - axo_q8_unsigned[c]) < best) best = fabsf(v - axo_q8_unsigned[c]), bi = c;
        nearest &= (int)u == bi;
    }
    CHECK_MSG(nearest && sign, "8-bit encoding is not the nearest code (or loses the sign)");
    CHECK(axo_q8_encode_signed(0.5f, 0.0f) == 0 && axo_q8_encode_unsigned(0.5f, 0.0f) == 0);
    CHECK(axo_q8_decode_signed(axo_q8_encode_signed(-2.5f, 2.5f), 2.5f) == -2.5f);
    CHECK(axo_q8_decode_unsigned(axo_q8_encode_unsigned(7.0f, 7.0f), 7.0f) == 7.0f);
}

/* adamw8 against f32 AdamW: 40 steps of a noisy quadratic pull on 4 rows
 * of 600 weights (blocks of 256, 256 and 88 per row); the 8-bit run's total
 * update stays close to the f32 run's, its codes are bytes, its block
 * maxima are the exact max |m| and max v of the decoded block. Rows 1-2
 * updated on their own at their offset equal the same rows of a whole
 * update (bf16 weights: the rounding bits are keyed on the index in the
 * whole tensor). */
static void test_adamw8(void) {
    enum { R = 4, K = 600, n = R * K, nbr = 3, nb = R * nbr };
    static float p[n], p8[n], g[n], gp[n], m[n], v[n], qm[n], qv[n], am[nb], av[nb], p0[n];
    uint32_t sd = 77;
    for (int i = 0; i < n; i++) {
        sd = sd * 1664525u + 1013904223u;
        p[i] = p8[i] = p0[i] = ((float)(sd >> 8) / 16777216.0f - 0.5f) * (i < n / 2 ? 0.1f : 3.0f);
        m[i] = v[i] = qm[i] = qv[i] = 0;
    }
    memset(am, 0, sizeof am), memset(av, 0, sizeof av);
    for (int step = 1; step <= 40; step++) {
        for (int i = 0; i < n; i++) {
            sd = sd * 1664525u + 1013904223u;
            float noise = ((float)(sd >> 8) / 16777216.0f - 0.5f) * (float)(1 + (i % K) / AXO_Q8_BLOCK + i / K);
            g[i] = (p8[i] - 0.3f) * 0.1f + noise * 1e-2f;
            gp[i] = (p[i] - 0.3f) * 0.1f + noise * 1e-2f;
        }
        ck_adamw_step_f32(p, gp, m, v, n, 1e-2, 0.9, 0.999, 1e-8, 0.01, step, 1.0);
        ck_adamw8_step(p8, g, qm, qv, am, av, R, K, 1e-2, 0.9, 0.999, 1e-8, 0.01, step, 1.0, 0, 0, 0);
    }
    double num = 0, den = 0;
    int bytes = 1, maxima = 1;
    for (int i = 0; i < n; i++) {
        double d8 = (double)p8[i] - p0[i], d = (double)p[i] - p0[i];
        num += (d8 - d) * (d8 - d), den += d * d;
        bytes &= qm[i] == floorf(qm[i]) && qm[i] >= 0 && qm[i] <= 255 && qv[i] == floorf(qv[i]) && qv[i] >= 0 && qv[i] <= 255;
    }
    for (int b = 0; b < nb; b++) {
        int r = b / nbr, k0 = (b % nbr) * AXO_Q8_BLOCK, k1 = k0 + AXO_Q8_BLOCK < K ? k0 + AXO_Q8_BLOCK : K;
        float mx = 0, vx = 0;
        for (int i = r * K + k0; i < r * K + k1; i++) {
            mx = fmaxf(mx, fabsf(axo_q8_decode_signed((uint32_t)qm[i], am[b])));
            vx = fmaxf(vx, axo_q8_decode_unsigned((uint32_t)qv[i], av[b]));
        }
        maxima &= mx == am[b] && vx == av[b] && am[b] > 0 && av[b] > 0;
    }
    if (getenv("AXO_TEST_VERBOSE")) fprintf(stderr, "adamw8: total update vs f32 AdamW: %.3g relative\n", sqrt(num / den));
    CHECK_MSG(sqrt(num / den) < 0.05, "adamw8: 40 steps moved the weights %.3g (relative) away from f32 AdamW's", sqrt(num / den));
    CHECK(bytes && maxima);
    /* rows 1-2 at their offset, bf16 weights with stochastic rounding */
    static float P[n], Qm[n], Qv[n], Am[nb], Av[nb], B[2 * K], Bm[2 * K], Bv[2 * K], Ba[2 * nbr], Bb[2 * nbr];
    for (int i = 0; i < n; i++) P[i] = ax_round_bf16(p8[i]);
    memcpy(Qm, qm, sizeof Qm), memcpy(Qv, qv, sizeof Qv), memcpy(Am, am, sizeof Am), memcpy(Av, av, sizeof Av);
    memcpy(B, P + K, sizeof B), memcpy(Bm, Qm + K, sizeof Bm), memcpy(Bv, Qv + K, sizeof Bv);
    memcpy(Ba, Am + nbr, sizeof Ba), memcpy(Bb, Av + nbr, sizeof Bb);
    ck_adamw8_step(P, g, Qm, Qv, Am, Av, R, K, 1e-2, 0.9, 0.999, 1e-8, 0.01, 41, 1.0, 1, 9, 0);
    ck_adamw8_step(B, g + K, Bm, Bv, Ba, Bb, 2, K, 1e-2, 0.9, 0.999, 1e-8, 0.01, 41, 1.0, 1, 9, K);
    CHECK(!memcmp(B, P + K, sizeof B) && !memcmp(Bm, Qm + K, sizeof Bm) && !memcmp(Bv, Qv + K, sizeof Bv) &&
          !memcmp(Ba, Am + nbr, sizeof Ba) && !memcmp(Bb, Av + nbr, sizeof Bb));
    int all_bf16 = 1;
    for (int i = 0; i < n; i++) all_bf16 &= ax_round_bf16(P[i]) == P[i];
    CHECK(all_bf16);
}

/* ---- helpers --------------------------------------------------------------------------- */
/* LoRA dropout: the drop rate is p, kept values are scaled by exactly
 * 1/(1-p), the mask depends on (seed, salt) only, and p = 0 is the identity. */
static void test_dropout(void) {
    const int64_t n = 200000;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = 0.25f + (float)(i % 97) * 0.01f; /* never zero */
    double p = 0.1;
    ck_dropout_f32(x, y, n, 1234, 5, p);
    float k = (float)(1.0 / (1.0 - p));
    int64_t dropped = 0;
    int scaled = 1;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] == 0) dropped++;
        else scaled &= y[i] == x[i] * k;
    }
    CHECK(scaled);
    double rate = (double)dropped / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
    CHECK_MSG(fabs(rate - p) < 5 * sigma, "drop rate %g for p %g", rate, p);
    ck_dropout_f32(x, z, n, 1234, 5, p); /* the same mask again (recompute, backward) */
    CHECK(memcmp(y, z, sizeof(float) * n) == 0);
    int64_t same = 0;
    ck_dropout_f32(x, z, n, 1234, 6, p); /* another module's mask */
    for (int64_t i = 0; i < n; i++) same += (y[i] == 0) == (z[i] == 0);
    CHECK_MSG(same < n - n / 20, "masks of two salts agree on %lld of %lld", (long long)same, (long long)n);
    same = 0;
    ck_dropout_f32(x, z, n, 1235, 5, p); /* the next micro step's mask */
    for (int64_t i = 0; i < n; i++) same += (y[i] == 0) == (z[i] == 0);
    CHECK_MSG(same < n - n / 20, "masks of two seeds agree on %lld of %lld", (long long)same, (long long)n);
    ck_dropout_f32(x, z, n, 99, 1, 0.0);
    CHECK(memcmp(x, z, sizeof(float) * n) == 0);
    free(x), free(y), free(z);
}

/* NEFTune's noise (ck_neftune_f32, ir/quant.h): over a large tensor the
 * noise y - x lies in [-mag, mag] on the grid of 2^-23 mag, with mean ~0 and
 * variance ~mag^2 / 3 (uniform); y is x + noise in one f32 rounding; the
 * same keys and salt draw the same bits (a recompute), another key (the next
 * step, another token) or salt other noise, and so does every element of a
 * row; a row's noise depends on its key alone (where the row sits does not
 * matter: ranks and sequence splits draw alike); mag 0 is the identity. */
static void test_neftune(void) {
    const int64_t rows = 600, H = 384, n = rows * H;
    const float mag = 0.0625f; /* a power of 2: mag * u is exact, so the grid check is exact */
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * n);
    float *w = malloc(sizeof(float) * n), *zero = calloc((size_t)n, sizeof(float));
    int32_t *keys = malloc(sizeof(int32_t) * rows), *k2 = malloc(sizeof(int32_t) * rows);
    for (int64_t r = 0; r < rows; r++) keys[r] = (int32_t)(uint32_t)(r * 2654435761u + 12345u);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd();
    ck_neftune_f32(zero, z, keys, rows, H, 0, mag); /* the noise alone */
    double sum = 0, sum2 = 0, lo = 0, hi = 0;
    int in_range = 1, on_grid = 1;
    for (int64_t i = 0; i < n; i++) {
        double v = z[i];
        in_range &= v >= -mag && v <= mag;
        double q = v / mag * 8388608.0; /* 2^23 */
        on_grid &= q == floor(q);
        sum += v, sum2 += v * v;
        lo = fmin(lo, v), hi = fmax(hi, v);
    }
    CHECK_MSG(in_range, "noise outside [-mag, mag]");
    CHECK_MSG(on_grid, "noise not on the grid of 2^-23 mag");
    CHECK_MSG(lo < -0.999 * mag && hi > 0.999 * mag, "noise spans [%g, %g] of [-%g, %g]", lo, hi, (double)mag, (double)mag);
    double mean = sum / (double)n, m2 = sum2 / (double)n, m2ref = (double)mag * mag / 3;
    CHECK_MSG(fabs(mean) < 5 * mag / sqrt(3.0 * (double)n), "noise mean %g (mag %g)", mean, (double)mag);
    CHECK_MSG(fabs(m2 - m2ref) < 5 * m2ref * sqrt(0.8 / (double)n), "noise variance %g, expected %g", m2, m2ref);
    /* neighbours in a row and the same element of neighbouring rows: uncorrelated */
    double cr = 0, ch = 0;
    for (int64_t r = 0; r + 1 < rows; r++)
        for (int64_t h = 0; h + 1 < H; h++) cr += (double)z[r * H + h] * z[(r + 1) * H + h], ch += (double)z[r * H + h] * z[r * H + h + 1];
    double sig = 5 * m2ref / sqrt((double)(rows - 1) * (double)(H - 1));
    CHECK_MSG(fabs(cr) / ((double)(rows - 1) * (double)(H - 1)) < sig, "rows correlate: %g", cr);
    CHECK_MSG(fabs(ch) / ((double)(rows - 1) * (double)(H - 1)) < sig, "row elements correlate: %g", ch);
    ck_neftune_f32(x, y, keys, rows, H, 0, mag);
    int sum_ok = 1;
    for (int64_t i = 0; i < n; i++) sum_ok &= y[i] == x[i] + z[i];
    CHECK_MSG(sum_ok, "y is not x + noise in one f32 rounding");
    ck_neftune_f32(x, w, keys, rows, H, 0, mag); /* the same keys: the same bits */
    CHECK(!memcmp(y, w, sizeof(float) * (size_t)n));
    memcpy(w, x, sizeof(float) * (size_t)n);
    ck_neftune_f32(w, w, keys, rows, H, 0, mag); /* in place */
    CHECK(!memcmp(y, w, sizeof(float) * (size_t)n));
    for (int k = 0; k < 2; k++) { /* the next step's keys; another salt */
        for (int64_t r = 0; r < rows; r++) k2[r] = k ? keys[r] : keys[r] + 1;
        ck_neftune_f32(zero, w, k2, rows, H, (uint32_t)k, mag);
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++) same += w[i] == z[i];
        CHECK_MSG(same < n / 1000, "%s: %lld of %lld elements drew the same noise", k ? "salt 1" : "keys + 1", (long long)same,
                  (long long)n);
    }
    int64_t repeats = 0; /* a row's elements draw their own noise */
    for (int64_t i = 0; i + 1 < n; i++) repeats += (i + 1) % H && z[i] == z[i + 1];
    CHECK_MSG(repeats < n / 1000, "%lld neighbours in a row drew the same noise", (long long)repeats);
    for (int64_t r = 0; r < rows; r++) k2[r] = keys[rows - 1 - r]; /* rows moved: their noise moves with them */
    ck_neftune_f32(zero, w, k2, rows, H, 0, mag);
    int moved = 1;
    for (int64_t r = 0; r < rows; r++) moved &= !memcmp(w + r * H, z + (rows - 1 - r) * H, sizeof(float) * (size_t)H);
    CHECK_MSG(moved, "a row's noise depends on more than its key");
    ck_neftune_f32(x, w, keys, rows, H, 7, 0.0f);
    CHECK(!memcmp(x, w, sizeof(float) * (size_t)n));
    free(x), free(y), free(z), free(w), free(zero), free(keys), free(k2);
}

/* NF4: the scale of each block covers it, codes reproduce exact code values,
 * and the round trip error is at most half the widest gap of the code book
 * times the block scale. */
static void test_nf4(void) {
    const int64_t N = 5, K = 232, nb = (K + 63) / 64; /* the last block of a row has 40 weights */
    float *w = malloc(sizeof(float) * N * K), *q = malloc(sizeof(float) * N * K), *r = malloc(sizeof(float) * N * K);
    float steps[5 * 4], rowmax[5];
    uint64_t st = 7;
    for (int64_t i = 0; i < N * K; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        w[i] = ((float)(st >> 40) / (float)(1 << 24) - 0.5f) * 0.2f;
    }
    for (int64_t i = 64; i < 128; i++) w[i] *= 1e-3f;          /* a small block in row 0 */
    for (int64_t i = 0; i < K; i++) w[2 * K + i] = 0;          /* an all-zero row */
    for (int64_t i = 0; i < 64; i++) w[3 * K + i] = axo_nf4_code[i % 16] * 0.125f; /* exact codes, scale 0.125 */
    ck_nf4_quantize(w, N, K, q, steps, rowmax);
    ck_dequant_nf4_f32(q, steps, rowmax, r, N, K);
    for (int64_t row = 0; row < N; row++)
        for (int64_t b = 0; b < nb; b++) {
            float s = axo_nf4_scale(rowmax[row], (uint32_t)steps[row * nb + b]), amax = 0;
            int64_t bn = b * 64 + 64 <= K ? 64 : K - b * 64;
            CHECK(steps[row * nb + b] >= 0 && steps[row * nb + b] <= 255 && steps[row * nb + b] == floorf(steps[row * nb + b]));
            for (int64_t i = 0; i < bn; i++) amax = fmaxf(amax, fabsf(w[row * K + b * 64 + i]));
            CHECK_MSG(s >= amax, "row %lld block %lld: scale %g below absmax %g", (long long)row, (long long)b, s, amax);
            if (amax > 0) CHECK_MSG(s <= amax * 1.0443f, "scale %g not the tightest step above %g", s, amax);
            for (int64_t i = 0; i < bn; i++) {
                int64_t j = row * K + b * 64 + i;
                CHECK(q[j] >= 0 && q[j] <= 15 && q[j] == floorf(q[j]));
                CHECK_MSG(fabsf(r[j] - w[j]) <= 0.1521f * s + 1e-12f, "w %g -> %g (scale %g)", w[j], r[j], s);
            }
        }
    for (int64_t i = 0; i < K; i++) CHECK(r[2 * K + i] == 0);
    for (int64_t i = 0; i < 64; i++) CHECK_MSG(r[3 * K + i] == w[3 * K + i], "code %lld: %g -> %g", (long long)i, w[3 * K + i], r[3 * K + i]);
    CHECK(axo_nf4_scale(1.0f, 16) == 0.5f && axo_nf4_scale(3.0f, 0) == 3.0f);
    free(w), free(q), free(r);
}

static void test_helpers(void) {
    enum { n = 37 };
    double *a = dvec(n, 3.0), *b = dvec(n, 1.0);
    round_to_f32(a, n), round_to_f32(b, n);
    float *af = tof(a, n), *bf = tof(b, n), y[n];
    double want = 0;
    for (int i = 0; i < n; i++) want += a[i] * a[i];
    CHECK_NEAR(ck_sumsq_f32(af, n), want, 1e-14, 0);
    CHECK_NEAR(ck_sumsq_f64(a, n), want, 1e-14, 0);
    ck_add_f32(af, bf, y, n);
    CHECK(y[7] == af[7] + bf[7]);
    ck_mul_f32(af, bf, y, n);
    CHECK(y[8] == af[8] * bf[8]);
    ck_scale_f32(af, 0.25, y, n);
    CHECK(y[9] == af[9] * 0.25f);
    ck_acc_f32(y, bf, n);
    CHECK(y[9] == af[9] * 0.25f + bf[9]);
    y[0] = 1.00390625f; /* 1 + 2^-8: a tie, rounds to even (1.0) */
    y[1] = 1.01171875f; /* 1 + 3*2^-8: a tie, rounds to even (1 + 2^-6) */
    y[2] = NAN;
    ck_round_bf16_inplace_f32(y, n);
    CHECK(y[0] == 1.0f);
    CHECK(y[1] == 1.015625f);
    CHECK(isnan(y[2]));
    CHECK(y[10] == ax_round_bf16(y[10]));
    double d[2] = {1.00390625, 3.0};
    ck_round_bf16_inplace_f64(d, 2);
    CHECK(d[0] == 1.0 && d[1] == 3.0);
    free(a), free(b), free(af), free(bf);
}

int main(void) {
    test_adamw_lanes();
    test_round_sr_lanes();
    test_matmul_forward();
    test_matmul_grad();
    test_rmsnorm(0);
    test_rmsnorm(1); /* Gemma3RMSNorm: (1 + w) */
    test_rope();
    test_moe();
    test_moe_oss();
    test_lora_delta();
    test_moe_lb();
    test_rope_inv_freq();
    test_attention();
    test_attention_sinks();
    test_attention_packed_skip(0);
    test_attention_packed_skip(50); /* a sliding window: its own start of the key loop */
    test_attention_blocks(0, 0.0);
    test_attention_blocks(4, 0.0); /* a sliding window over the zigzag split */
    test_attention_blocks(4, 0.7); /* Gemma 2's soft-capped scores, block by block */
    test_dpo_types();
    test_softcap_ce();
    test_swiglu();
    test_geglu();
    test_embedding();
    test_cross_entropy();
    test_linear_cross_entropy();
    test_dpo();
    test_bias();
    test_adamw();
    test_bf16_sr();
    test_adamw_sr();
    test_q8_codes();
    test_adamw8();
    test_dropout();
    test_neftune();
    test_nf4();
    test_helpers();
    time_matmul();
    return check_done();
}
