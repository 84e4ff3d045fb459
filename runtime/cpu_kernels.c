/* cpu_kernels.c — the float GEMM engine, then the kernel bodies of
 * cpu_kernels_impl.h instantiated for float (_f32) and double (_f64).
 * See cpu_kernels.h for what each kernel computes. */
#include "runtime/cpu_kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ir/base.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"

int ck_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }
void ck_set_threads(int n) { omp_set_num_threads(n > 0 ? n : 1); }

static void *ck_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static void *ck_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) abort();
    return p;
}

/* ==== float GEMM ============================================================
 * GotoBLAS-style blocking. For each NC-wide column block and KC-deep slice
 * of K, B is packed into NR-wide slabs Bp[slab][k][NR] (zero padded) that
 * stay in L1 while the micro-kernel streams over them; for each MC-tall row
 * block, A is packed into MR-tall slabs Ap[slab][k][MR]. The micro-kernel
 * holds an MR x NR tile of C in 12 8-float vector registers; for every k it
 * broadcasts a_ik and adds a_ik * b_k[0..NR) into row i. Each lane is one C
 * element whose sum runs strictly in k order starting from the stored C
 * value (loaded back for every KC slice), so the result does not depend on
 * the blocking, the vector width, or which ISA path ran — and it equals the
 * naive loop `c += a[i][k] * b[k][j]` for k ascending, bit for bit. */
enum { GEMM_MR = 6, GEMM_NR = 16, GEMM_KC = 256, GEMM_MC = 96, GEMM_NC = 2048 };

typedef float ck_v8f __attribute__((vector_size(32)));

static int64_t ck_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Bp[s][kk][c] = op(B)[k0+kk][j0 + s*NR + c], 0 beyond nc. */
static void gemm_pack_b(const float *B, int64_t N, int64_t K, int tb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                        float *Bp) {
    for (int64_t s = 0; s * GEMM_NR < nc; s++) {
        float *dst = Bp + s * kc * GEMM_NR;
        int64_t jb = j0 + s * GEMM_NR, w = ck_min64(GEMM_NR, nc - s * GEMM_NR);
        if (!tb) {
            for (int64_t kk = 0; kk < kc; kk++) {
                const float *src = B + (k0 + kk) * N + jb;
                float *d = dst + kk * GEMM_NR;
                int64_t c = 0;
                for (; c < w; c++) d[c] = src[c];
                for (; c < GEMM_NR; c++) d[c] = 0.0f;
            }
        } else {
            if (w < GEMM_NR) memset(dst, 0, sizeof(float) * (size_t)(kc * GEMM_NR));
            for (int64_t c = 0; c < w; c++) {
                const float *src = B + (jb + c) * K + k0;
                for (int64_t kk = 0; kk < kc; kk++) dst[kk * GEMM_NR + c] = src[kk];
            }
        }
    }
}

/* Ap[s][kk][r] = op(A)[i0 + s*MR + r][k0+kk], 0 beyond mc. */
static void gemm_pack_a(const float *A, int64_t M, int64_t K, int ta, int64_t k0, int64_t kc, int64_t i0, int64_t mc,
                        float *Ap) {
    for (int64_t s = 0; s * GEMM_MR < mc; s++) {
        float *dst = Ap + s * kc * GEMM_MR;
        int64_t ib = i0 + s * GEMM_MR, h = ck_min64(GEMM_MR, mc - s * GEMM_MR);
        if (h < GEMM_MR) memset(dst, 0, sizeof(float) * (size_t)(kc * GEMM_MR));
        if (!ta) {
            for (int64_t r = 0; r < h; r++) {
                const float *src = A + (ib + r) * K + k0;
                for (int64_t kk = 0; kk < kc; kk++) dst[kk * GEMM_MR + r] = src[kk];
            }
        } else {
            for (int64_t kk = 0; kk < kc; kk++) {
                const float *src = A + (k0 + kk) * M + ib;
                for (int64_t r = 0; r < h; r++) dst[kk * GEMM_MR + r] = src[r];
            }
        }
    }
}

/* C tile (ldc) = (load ? C : 0) + Ap-slab . Bp-slab over kc, full MR x NR. */
static inline __attribute__((always_inline)) void gemm_micro(int64_t kc, const float *Ap, const float *Bp, float *C,
                                                             int64_t ldc, int load) {
    ck_v8f c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (load) {
#define LD(r, v0, v1)                                   \
    memcpy(&v0, C + (r) * ldc, sizeof(ck_v8f));         \
    memcpy(&v1, C + (r) * ldc + 8, sizeof(ck_v8f));
        LD(0, c00, c01) LD(1, c10, c11) LD(2, c20, c21) LD(3, c30, c31) LD(4, c40, c41) LD(5, c50, c51)
#undef LD
    } else {
        ck_v8f z = {0};
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = z;
    }
    for (int64_t kk = 0; kk < kc; kk++) {
        ck_v8f b0, b1;
        memcpy(&b0, Bp, sizeof b0);
        memcpy(&b1, Bp + 8, sizeof b1);
        const float *a = Ap;
        c00 += a[0] * b0; c01 += a[0] * b1;
        c10 += a[1] * b0; c11 += a[1] * b1;
        c20 += a[2] * b0; c21 += a[2] * b1;
        c30 += a[3] * b0; c31 += a[3] * b1;
        c40 += a[4] * b0; c41 += a[4] * b1;
        c50 += a[5] * b0; c51 += a[5] * b1;
        Ap += GEMM_MR;
        Bp += GEMM_NR;
    }
#define ST(r, v0, v1)                                   \
    memcpy(C + (r) * ldc, &v0, sizeof(ck_v8f));         \
    memcpy(C + (r) * ldc + 8, &v1, sizeof(ck_v8f));
    ST(0, c00, c01) ST(1, c10, c11) ST(2, c20, c21) ST(3, c30, c31) ST(4, c40, c41) ST(5, c50, c51)
#undef ST
}

/* The same tile with 4-float vectors for targets without 256-bit registers
 * (SSE2 has 16): the 16 columns in two 8-wide halves, 12 accumulators each.
 * Every element sees the same sequence of operations as in gemm_micro. */
typedef float ck_v4f __attribute__((vector_size(16)));
static inline __attribute__((always_inline)) void gemm_micro_v4(int64_t kc, const float *Ap, const float *Bp, float *C,
                                                                int64_t ldc, int load) {
    for (int half = 0; half < 2; half++) {
        ck_v4f c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        float *c = C + half * 8;
        if (load) {
#define LD(r, v0, v1)                                   \
    memcpy(&v0, c + (r) * ldc, sizeof(ck_v4f));         \
    memcpy(&v1, c + (r) * ldc + 4, sizeof(ck_v4f));
            LD(0, c00, c01) LD(1, c10, c11) LD(2, c20, c21) LD(3, c30, c31) LD(4, c40, c41) LD(5, c50, c51)
#undef LD
        } else {
            ck_v4f z = {0};
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = z;
        }
        const float *a = Ap, *b = Bp + half * 8;
        for (int64_t kk = 0; kk < kc; kk++) {
            ck_v4f b0, b1;
            memcpy(&b0, b, sizeof b0);
            memcpy(&b1, b + 4, sizeof b1);
            c00 += a[0] * b0; c01 += a[0] * b1;
            c10 += a[1] * b0; c11 += a[1] * b1;
            c20 += a[2] * b0; c21 += a[2] * b1;
            c30 += a[3] * b0; c31 += a[3] * b1;
            c40 += a[4] * b0; c41 += a[4] * b1;
            c50 += a[5] * b0; c51 += a[5] * b1;
            a += GEMM_MR;
            b += GEMM_NR;
        }
#define ST(r, v0, v1)                                   \
    memcpy(c + (r) * ldc, &v0, sizeof(ck_v4f));         \
    memcpy(c + (r) * ldc + 4, &v1, sizeof(ck_v4f));
        ST(0, c00, c01) ST(1, c10, c11) ST(2, c20, c21) ST(3, c30, c31) ST(4, c40, c41) ST(5, c50, c51)
#undef ST
    }
}

/* One packed MC x NC block: every MR x NR tile; edge tiles go through a
 * local full-size tile so the micro-kernel never touches memory outside C. */
#define GEMM_BLOCK_BODY(MICRO)                                                                           \
    for (int64_t js = 0; js * GEMM_NR < nc; js++) {                                                \
        int64_t w = ck_min64(GEMM_NR, nc - js * GEMM_NR);                                          \
        const float *bp = Bp + js * kc * GEMM_NR;                                                  \
        for (int64_t is = 0; is * GEMM_MR < mc; is++) {                                            \
            int64_t h = ck_min64(GEMM_MR, mc - is * GEMM_MR);                                      \
            const float *ap = Ap + is * kc * GEMM_MR;                                              \
            float *c = C + (i0 + is * GEMM_MR) * N + j0 + js * GEMM_NR;                            \
            if (w == GEMM_NR && h == GEMM_MR) {                                                    \
                MICRO(kc, ap, bp, c, N, load);                                                \
            } else {                                                                               \
                float t[GEMM_MR * GEMM_NR];                                                        \
                if (load)                                                                          \
                    for (int64_t r = 0; r < h; r++) memcpy(t + r * GEMM_NR, c + r * N, sizeof(float) * (size_t)w); \
                MICRO(kc, ap, bp, t, GEMM_NR, load);                                          \
                for (int64_t r = 0; r < h; r++) memcpy(c + r * N, t + r * GEMM_NR, sizeof(float) * (size_t)w); \
            }                                                                                      \
        }                                                                                          \
    }

static void gemm_block_generic(const float *Ap, const float *Bp, float *C, int64_t N, int64_t i0, int64_t mc,
                               int64_t j0, int64_t nc, int64_t kc, int load) {
    GEMM_BLOCK_BODY(gemm_micro_v4)
}

#if defined(__x86_64__) && defined(__GNUC__)
#define CK_HAVE_AVX2_PATH 1
/* Same code with 256-bit registers; AVX2 implies no FMA here (products and
 * sums stay separately rounded, as on the generic path). */
__attribute__((target("avx2"))) static void gemm_block_avx2(const float *Ap, const float *Bp, float *C, int64_t N,
                                                             int64_t i0, int64_t mc, int64_t j0, int64_t nc,
                                                             int64_t kc, int load) {
    GEMM_BLOCK_BODY(gemm_micro)
}
#endif

/* C[ilo:ihi, jlo:jhi] of the product, with its own packing buffers. Every
 * element of C is the same sequence of products and sums whatever range
 * computes it (k ascending in GEMM_KC blocks, lanes independent), so a
 * split over threads changes no bit. */
static void sgemm_part(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                       int accumulate, int use_avx2, int64_t ilo, int64_t ihi, int64_t jlo, int64_t jhi) {
    if (ihi <= ilo || jhi <= jlo) return;
    int64_t kcmax = ck_min64(K, GEMM_KC);
    int64_t ncmax = ck_min64(jhi - jlo, GEMM_NC), mcmax = ck_min64(ihi - ilo, GEMM_MC);
    int64_t ncpad = (ncmax + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    int64_t mcpad = (mcmax + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    float *Bp = ck_xmalloc(sizeof(float) * (size_t)(kcmax * ncpad));
    float *Ap = ck_xmalloc(sizeof(float) * (size_t)(kcmax * mcpad));
    for (int64_t j0 = jlo; j0 < jhi; j0 += GEMM_NC) {
        int64_t nc = ck_min64(GEMM_NC, jhi - j0);
        for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
            int64_t kc = ck_min64(GEMM_KC, K - k0);
            int load = accumulate || k0 > 0;
            gemm_pack_b(B, N, K, tb, k0, kc, j0, nc, Bp);
            for (int64_t i0 = ilo; i0 < ihi; i0 += GEMM_MC) {
                int64_t mc = ck_min64(GEMM_MC, ihi - i0);
                gemm_pack_a(A, M, K, ta, k0, kc, i0, mc, Ap);
#ifdef CK_HAVE_AVX2_PATH
                if (use_avx2) {
                    gemm_block_avx2(Ap, Bp, C, N, i0, mc, j0, nc, kc, load);
                    continue;
                }
#endif
                gemm_block_generic(Ap, Bp, C, N, i0, mc, j0, nc, kc, load);
            }
        }
    }
    free(Ap);
    free(Bp);
}

/* Products of at least this many multiply-adds are split over threads. */
enum { GEMM_PAR_MIN = 1 << 24 }; /* ~4 ms of one core: smaller ones gain less than the threads cost */

static void sgemm(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                  int accumulate, int allow_simd) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) memset(C, 0, sizeof(float) * (size_t)(M * N));
        return;
    }
    int use_avx2 = 0;
#ifdef CK_HAVE_AVX2_PATH
    use_avx2 = allow_simd && __builtin_cpu_supports("avx2");
#endif
    /* threads take equal slices of the longer side of C, whole tiles each */
    int rows = M >= N;
    int64_t len = rows ? M : N, unit = rows ? GEMM_MR : GEMM_NR, units = (len + unit - 1) / unit;
    int64_t T = M * N * K >= GEMM_PAR_MIN ? ck_threads() : 1;
    if (T > units) T = units;
    if (T <= 1) {
        sgemm_part(A, B, C, M, N, K, ta, tb, accumulate, use_avx2, 0, M, 0, N);
        return;
    }
#pragma omp parallel for num_threads((int)T) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        int64_t lo = ck_min64(len, units * t / T * unit), hi = ck_min64(len, units * (t + 1) / T * unit);
        if (rows) sgemm_part(A, B, C, M, N, K, ta, tb, accumulate, use_avx2, lo, hi, 0, N);
        else sgemm_part(A, B, C, M, N, K, ta, tb, accumulate, use_avx2, 0, M, lo, hi);
    }
}

/* ==== AdamW's elementwise step, 8 lanes at a time ==========================
 * ck_adamw_step_f32's loop (cpu_kernels_impl.h) with AVX2 + FMA: the same
 * IEEE operations in the same order (mul, sub, fma, sqrt, div, add: each
 * correctly rounded, in a vector lane as in a scalar register), so the
 * same bits; the scalar loop's fmaf is a slow library call on a baseline
 * x86-64 build. Returns how many leading elements it did (0 without AVX2
 * and FMA). Under CPU offload this loop is the host's optimizer step. */
static int64_t ck_adamw_simd_f32_(float *p, const float *g, float *m, float *v, int64_t n, float gs, float decay, float w1,
                                  float w1m1, int small, float b2, float w2, float nss, float bc2s, float eps);
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static int64_t adamw_avx2(float *p, const float *g, float *m, float *v, int64_t n,
                                                               float gs, float decay, float w1, float w1m1, int small,
                                                               float b2, float w2, float nss, float bc2s, float eps) {
    const __m256 vgs = _mm256_set1_ps(gs), vdec = _mm256_set1_ps(decay), vw = _mm256_set1_ps(small ? w1 : w1m1),
                 vb2 = _mm256_set1_ps(b2), vw2 = _mm256_set1_ps(w2), vnss = _mm256_set1_ps(nss),
                 vbc = _mm256_set1_ps(bc2s), veps = _mm256_set1_ps(eps);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), vgs);
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdec);
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        __m256 d = _mm256_sub_ps(gi, mi);
        mi = _mm256_fmadd_ps(vw, d, small ? mi : gi); /* lerp: fma(w, g-m, m), or fma(w-1, g-m, g) */
        vi = _mm256_mul_ps(vi, vb2);
        vi = _mm256_fmadd_ps(_mm256_mul_ps(vw2, gi), gi, vi);
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc), veps);
        pi = _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(vnss, mi), den));
        _mm256_storeu_ps(p + i, pi);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
    return i;
}
#endif
static int64_t ck_adamw_simd_f32_(float *p, const float *g, float *m, float *v, int64_t n, float gs, float decay, float w1,
                                  float w1m1, int small, float b2, float w2, float nss, float bc2s, float eps) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return adamw_avx2(p, g, m, v, n, gs, decay, w1, w1m1, small, b2, w2, nss, bc2s, eps);
#endif
    (void)p, (void)g, (void)m, (void)v, (void)n, (void)gs, (void)decay, (void)w1, (void)w1m1, (void)small, (void)b2;
    (void)w2, (void)nss, (void)bc2s, (void)eps;
    return 0;
}

/* Test hook (declared in the test): the same GEMM without the AVX2 path. */
void ck_matmul_generic_f32(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                           int accumulate);
void ck_matmul_generic_f32(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                           int accumulate) {
    sgemm(A, B, C, M, N, K, ta, tb, accumulate, 0);
}

/* ==== instantiations ======================================================= */
#define CK_CAT_(a, b) a##b
#define CK_CAT(a, b) CK_CAT_(a, b)

#define REAL float
#define SFX _f32
#define CK_IS_F32 1
#define CK_EXP expf
#define CK_SQRT sqrtf
#define CK_FMA fmaf
#include "runtime/cpu_kernels_impl.h"
#undef REAL
#undef SFX
#undef CK_IS_F32
#undef CK_EXP
#undef CK_SQRT
#undef CK_FMA

#define REAL double
#define SFX _f64
#define CK_IS_F32 0
#define CK_EXP exp
#define CK_SQRT sqrt
#define CK_FMA fma
#include "runtime/cpu_kernels_impl.h"
#undef REAL
#undef SFX
#undef CK_IS_F32
#undef CK_EXP
#undef CK_SQRT
#undef CK_FMA

/* ==== type-independent ===================================================== */
int ck_rope_type_from_name(const char *name) {
    if (!name || !*name || !strcmp(name, "default") || !strcmp(name, "none")) return CK_ROPE_DEFAULT;
    if (!strcmp(name, "linear")) return CK_ROPE_LINEAR;
    if (!strcmp(name, "llama3")) return CK_ROPE_LLAMA3;
    if (!strcmp(name, "yarn")) return CK_ROPE_YARN;
    if (!strcmp(name, "longrope")) return CK_ROPE_LONGROPE;
    return -1;
}

/* HF's find_correction_dim: the dim whose wavelength makes `rotations` turns over max_pos positions (double). */
static double yarn_correction_dim(double rotations, double dim, double base, double max_pos) {
    return (dim * log(max_pos / (rotations * 2 * M_PI))) / (2 * log(base));
}

int ck_rope_inv_freq(const ck_rope *r, float *out) {
    const int64_t dim = r->dim, n = dim / 2;
    const int type = r->type;
    if (dim <= 0 || dim % 2 || !(r->theta > 0)) return -1;
    if (type < CK_ROPE_DEFAULT || type > CK_ROPE_LONGROPE) return -1;
    if ((type == CK_ROPE_LINEAR || type == CK_ROPE_LLAMA3 || type == CK_ROPE_YARN) && !(r->factor > 0)) return -1;
    if (type == CK_ROPE_LLAMA3 && (!(r->low_freq_factor > 0) || !(r->high_freq_factor > 0) ||
                                   r->high_freq_factor == r->low_freq_factor || !(r->original_max > 0)))
        return -1;
    if (type == CK_ROPE_YARN && (!(r->original_max > 0) || !(r->beta_fast > 0) || !(r->beta_slow > 0)))
        return -1;
    if (type == CK_ROPE_LONGROPE) {
        if (r->n_ext != n || !r->ext) return -1;
        for (int64_t i = 0; i < n; i++)
            if (!((float)r->ext[i] > 0) || isinf((float)r->ext[i])) return -1;
    }
    /* torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)); `1.0 / t` is
     * t.reciprocal() * 1.0 and `base ** t` is pow((float)base, t). */
    float base = (float)r->theta;
    for (int64_t i = 0; i < n; i++) {
        float e = (float)(2 * i) / (float)dim;
        float pw = (float)pow((double)base, (double)e);
        if (type == CK_ROPE_LONGROPE) /* 1.0 / (ext_factors * base ** e) */
            out[i] = 1.0f / ((float)r->ext[i] * pw);
        else if (type == CK_ROPE_YARN) /* pos_freqs for now; the blend below */
            out[i] = pw;
        else
            out[i] = 1.0f / pw;
    }
    if (type == CK_ROPE_LINEAR) {
        float f = (float)r->factor;
        for (int64_t i = 0; i < n; i++) out[i] = out[i] / f;
    } else if (type == CK_ROPE_LLAMA3) {
        /* Python scalars (double) meet float32 tensors: each is rounded to
         * float at the op that uses it; `s / t` is t.reciprocal() * s. */
        float f = (float)r->factor, lo = (float)r->low_freq_factor;
        float two_pi = (float)(2.0 * M_PI), orig = (float)r->original_max;
        float low_wl = (float)(r->original_max / r->low_freq_factor);
        float high_wl = (float)(r->original_max / r->high_freq_factor);
        float den = (float)(r->high_freq_factor - r->low_freq_factor);
        for (int64_t i = 0; i < n; i++) {
            float inv = out[i];
            float wavelen = (1.0f / inv) * two_pi;
            float il = wavelen > low_wl ? inv / f : inv;
            if (!(wavelen < high_wl) && !(wavelen > low_wl)) {
                float sf = ((1.0f / wavelen) * orig - lo) / den;
                il = ((1.0f - sf) * il) / f + sf * il;
            }
            out[i] = il;
        }
    } else if (type == CK_ROPE_YARN) {
        /* the correction range in Python floats, then the ramp over arange(dim // 2) in float32 */
        double lo = yarn_correction_dim(r->beta_fast, (double)dim, r->theta, r->original_max);
        double hi = yarn_correction_dim(r->beta_slow, (double)dim, r->theta, r->original_max);
        if (r->truncate) lo = floor(lo), hi = ceil(hi);
        lo = lo > 0 ? lo : 0;
        hi = hi < (double)(dim - 1) ? hi : (double)(dim - 1);
        if (lo == hi) hi += 0.001;
        const float f = (float)r->factor, flo = (float)lo, span = (float)(hi - lo);
        for (int64_t i = 0; i < n; i++) {
            float pw = out[i];
            float ramp = ((float)i - flo) / span;
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float ef = 1.0f - ramp;
            float extrap = 1.0f / pw, interp = 1.0f / (f * pw);
            out[i] = interp * (1.0f - ef) + extrap * ef;
        }
    }
    return 0;
}

int64_t ck_count_targets(const int32_t *targets, int64_t T, int32_t ignore_index) {
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++) n += targets[t] != ignore_index;
    return n;
}

/* ---- pure-bf16 AdamW ------------------------------------------------------- */
#if defined(__x86_64__) && defined(__GNUC__)
/* axo_fmix32 on 8 lanes */
__attribute__((target("avx2"))) static inline __m256i fmix32_x8(__m256i h) {
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

/* ck_round_bf16_sr_f32 8 lanes at a time: axo_rng_u32 and axo_bf16_sr in
 * 32-bit integer lanes (the same bits); returns how many it did. */
__attribute__((target("avx2"))) static int64_t round_sr_avx2(float *x, int64_t n, uint32_t seed, uint32_t salt,
                                                             int64_t first) {
    const uint32_t k = axo_fmix32(seed * 0x9e3779b1u + axo_fmix32(salt + 0x632be5abu));
    const __m256i vk = _mm256_set1_epi32((int)k), step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i expm = _mm256_set1_epi32(0x7f800000), mant = _mm256_set1_epi32(0x007fffff),
                  qnan = _mm256_set1_epi32(0x7fc00000), low = _mm256_set1_epi32(0xffff),
                  high = _mm256_set1_epi32((int)0xffff0000u);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(first + i)), step);
        __m256i r = fmix32_x8(_mm256_add_epi32(fmix32_x8(_mm256_xor_si256(idx, vk)), vk));
        __m256i c = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i nonfin = _mm256_cmpeq_epi32(_mm256_and_si256(c, expm), expm);
        __m256i isnan = _mm256_andnot_si256(_mm256_cmpeq_epi32(_mm256_and_si256(c, mant), _mm256_setzero_si256()), nonfin);
        __m256i o = _mm256_and_si256(_mm256_add_epi32(c, _mm256_and_si256(r, low)), high);
        __m256i over = _mm256_cmpeq_epi32(_mm256_and_si256(o, expm), expm); /* rounded up to inf: cut instead */
        o = _mm256_blendv_epi8(o, _mm256_and_si256(c, high), over);
        o = _mm256_blendv_epi8(o, c, nonfin);          /* inf stays */
        o = _mm256_blendv_epi8(o, qnan, isnan);         /* NaN: the canonical quiet NaN */
        _mm256_storeu_si256((__m256i *)(x + i), o);
    }
    return i;
}
#endif

void ck_round_bf16_sr_f32(float *x, int64_t n, uint32_t seed, uint32_t salt, int64_t first) {
    int64_t i0 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) i0 = round_sr_avx2(x, n, seed, salt, first);
#endif
    for (int64_t i = i0; i < n; i++) x[i] = axo_bf16_sr(x[i], axo_rng_u32(seed, salt, (uint32_t)(first + i)));
}

void ck_adamw_step_sr_bf16(float *p, const float *g, float *m, float *v, int64_t n, double lr, double beta1,
                           double beta2, double eps, double weight_decay, int64_t step, double grad_scale,
                           uint32_t salt, int64_t first) {
    ck_adamw_step_f32(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
    ck_round_bf16_sr_f32(p, n, (uint32_t)step, 3u * salt, first);
    ck_round_bf16_sr_f32(m, n, (uint32_t)step, 3u * salt + 1u, first);
    ck_round_bf16_sr_f32(v, n, (uint32_t)step, 3u * salt + 2u, first);
}

void ck_adamw8_step(float *p, const float *g, float *qm, float *qv, float *am, float *av, int64_t rows, int64_t K, double lr,
                    double beta1, double beta2, double eps, double weight_decay, int64_t step, double grad_scale,
                    int bf16_sr, uint32_t salt, int64_t first) {
    float m[AXO_Q8_BLOCK], v[AXO_Q8_BLOCK];
    int64_t nb = (K + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK, blk = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k0 = 0; k0 < K; k0 += AXO_Q8_BLOCK, blk++) {
            int64_t b0 = r * K + k0;
            int len = (int)(K - k0 < AXO_Q8_BLOCK ? K - k0 : AXO_Q8_BLOCK);
            for (int i = 0; i < len; i++) {
                m[i] = axo_q8_decode_signed((uint32_t)qm[b0 + i], am[blk]);
                v[i] = axo_q8_decode_unsigned((uint32_t)qv[b0 + i], av[blk]);
            }
            ck_adamw_step_f32(p + b0, g + b0, m, v, len, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
            float mx = 0.0f, vx = 0.0f;
            for (int i = 0; i < len; i++) {
                float a = fabsf(m[i]);
                mx = a > mx ? a : mx;
                vx = v[i] > vx ? v[i] : vx;
            }
            am[blk] = mx;
            av[blk] = vx;
            for (int i = 0; i < len; i++) {
                qm[b0 + i] = (float)axo_q8_encode_signed(m[i], mx);
                qv[b0 + i] = (float)axo_q8_encode_unsigned(v[i], vx);
            }
            if (bf16_sr) ck_round_bf16_sr_f32(p + b0, len, (uint32_t)step, 3u * salt, first + b0);
        }
    (void)nb;
}

/* ---- LoRA dropout, NF4 ------------------------------------------------------ */
void ck_dropout_f32(const float *x, float *y, int64_t n, uint32_t seed, uint32_t salt, double p) {
    uint32_t thr = axo_dropout_threshold(p);
    float k = axo_dropout_scale(p);
    for (int64_t i = 0; i < n; i++) y[i] = axo_rng_u32(seed, salt, (uint32_t)i) >= thr ? x[i] * k : 0.0f;
}

void ck_neftune_f32(const float *x, float *y, const int32_t *keys, int64_t rows, int64_t H, uint32_t salt, float mag) {
    for (int64_t r = 0; r < rows; r++) {
        const uint32_t k = (uint32_t)keys[r];
        for (int64_t h = 0; h < H; h++) {
            float noise = mag * axo_neftune_unit(k, salt, (uint32_t)h);
            y[r * H + h] = x[r * H + h] + noise;
        }
    }
}

void ck_dora_norm_f32(const float *w, const float *b, const float *a, float *norm, int64_t N, int64_t K, int64_t r,
                      float s) {
    for (int64_t i = 0; i < N; i++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
            float l = 0.0f;
            for (int64_t j = 0; j < r; j++) {
                l += b[i * r + j] * a[j * K + k]; /* ISO C: no FMA contraction, two roundings as on CUDA */
            }
            float v = w[i * K + k] + s * l;
            acc += (double)v * (double)v;
        }
        norm[i] = (float)sqrt(acc);
    }
}

void ck_dora_scale_f32(const float *base, const float *lora, const float *m, const float *norm, float *y, int64_t R,
                       int64_t N, float s) {
    for (int64_t c = 0; c < N; c++) {
        const float g = m[c] / norm[c], gm1 = g - 1.0f, gs = g * s;
        for (int64_t r = 0; r < R; r++) {
            const int64_t i = r * N + c;
            y[i] = gm1 * base[i] + gs * lora[i];
        }
    }
}

void ck_dora_scale_bwd_f32(const float *base, const float *lora, const float *m, const float *norm, const float *dy,
                           float *dbase, float *dlora, float *dm, int64_t R, int64_t N, float s) {
    for (int64_t c = 0; c < N; c++) {
        const float g = m[c] / norm[c], gm1 = g - 1.0f, gs = g * s;
        double acc = 0;
        for (int64_t r = 0; r < R; r++) {
            const int64_t i = r * N + c;
            const float d = dy[i];
            const float t = base[i] + s * lora[i];
            dbase[i] = gm1 * d;
            dlora[i] = gs * d;
            acc += (double)d * (double)t;
        }
        dm[c] = (float)(acc / (double)norm[c]);
    }
}

static uint32_t nf4_nearest(float v) {
    /* the code book is sorted: the nearest value by midpoints */
    uint32_t q = 0;
    for (uint32_t j = 1; j < 16; j++)
        if (v > 0.5f * (axo_nf4_code[j - 1] + axo_nf4_code[j])) q = j;
    return q;
}

void ck_nf4_quantize(const float *w, int64_t N, int64_t K, float *q, float *steps, float *rowmax) {
    int64_t nb = (K + AXO_NF4_BLOCK - 1) / AXO_NF4_BLOCK;
    for (int64_t r = 0; r < N; r++) {
        const float *wr = w + r * K;
        float rmax = 0;
        for (int64_t i = 0; i < K; i++) rmax = fmaxf(rmax, fabsf(wr[i]));
        rowmax[r] = rmax;
        for (int64_t b = 0; b < nb; b++) {
            int64_t c0 = b * AXO_NF4_BLOCK, c1 = c0 + AXO_NF4_BLOCK < K ? c0 + AXO_NF4_BLOCK : K;
            float amax = 0;
            for (int64_t c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(wr[c]));
            /* the largest step whose scale still covers the block */
            uint32_t k = 255;
            if (amax > 0) {
                double e = -16.0 * log2((double)amax / (double)rmax);
                k = e <= 0 ? 0 : e >= 255 ? 255 : (uint32_t)floor(e);
                while (k < 255 && axo_nf4_scale(rmax, k + 1) >= amax) k++;
                while (k > 0 && axo_nf4_scale(rmax, k) < amax) k--;
            }
            steps[r * nb + b] = (float)k;
            float s = axo_nf4_scale(rmax, k);
            for (int64_t c = c0; c < c1; c++) {
                float v = s > 0 ? wr[c] / s : 0.0f;
                v = v > 1 ? 1 : v < -1 ? -1 : v;
                q[r * K + c] = (float)nf4_nearest(v);
            }
        }
    }
}

void ck_dequant_nf4_f32(const float *q, const float *steps, const float *rowmax, float *w, int64_t N, int64_t K) {
    int64_t nb = (K + AXO_NF4_BLOCK - 1) / AXO_NF4_BLOCK;
    for (int64_t r = 0; r < N; r++)
        for (int64_t b = 0; b < nb; b++) { /* one scale per block, not per weight */
            float s = axo_nf4_scale(rowmax[r], (uint32_t)steps[r * nb + b]);
            int64_t c1 = (b + 1) * AXO_NF4_BLOCK < K ? (b + 1) * AXO_NF4_BLOCK : K;
            for (int64_t c = b * AXO_NF4_BLOCK; c < c1; c++) w[r * K + c] = axo_nf4_value((uint32_t)q[r * K + c], s);
        }
}

/* ---- the router's load-balancing loss (cpu_kernels.h) ---- */
double ck_moe_lb_loss(const double *stats, int64_t E) {
    const double T = stats[2 * E];
    if (T == 0) return 0;
    double s = 0;
    for (int64_t e = 0; e < E; e++) s += (stats[e] / T) * (stats[E + e] / T);
    return (double)E * s;
}

void ck_moe_lb_loss_bwd(const double *stats, double dy, double *dstats, int64_t E) {
    const double T = stats[2 * E];
    for (int64_t i = 0; i < 2 * E + 1; i++) dstats[i] = 0;
    for (int64_t e = 0; T != 0 && e < E; e++) dstats[E + e] = dy * (double)E * stats[e] / (T * T);
}
