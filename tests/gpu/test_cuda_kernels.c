/* test_cuda_kernels.c — GPU-only check of every hand-written CUDA kernel
 * (the .cuh files in codegen/kernels/) against the CPU reference kernels
 * (runtime/cpu_kernels.h). Not part of ctest: built and run by
 * tests/gpu/run.sh on a machine with an NVIDIA GPU.
 *
 * For each kernel and each storage type (f32, bf16): random inputs (never
 * zeros; bf16 inputs are rounded first so the CPU sees the same values), the
 * source compiled by NVRTC for this GPU (cg_nvrtc_compile_cached), loaded
 * with cuModuleLoadData and launched with cuLaunchKernel using the geometry
 * documented in its .cuh; outputs are prefilled with NaN, so an element a
 * kernel never writes fails the comparison. Every output element is compared:
 *   |gpu - ref| <= rtol |ref| + afrac max|ref|
 * with tight tolerances for f32 and bf16-rounding-sized ones for bf16. The
 * deterministic kernels (reductions, attention backward) are also run twice
 * and must give identical bits; pure-bf16 AdamW (stochastic rounding) must
 * give the CPU's bits. Exit status 0 only if everything passed.
 *
 * Built with AXO_KERNELS_EMU (ctest test_cuda_kernels_emu, no GPU) the same
 * cases run on the host SIMT emulator (tests/unit/emu/emu_device.h): device
 * memory is host memory, a launch runs the kernel's source compiled as host
 * C++, the device reports 2 SMs; everything else is as on the GPU.
 */
#include "codegen/cuda_kernels.h"
#include "codegen/nvrtc.h"
#include "runtime/cpu_kernels.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"

#ifdef AXO_KERNELS_EMU
#include "emu/emu_device.h"
#else
#include <cuda.h>
#endif
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_fail, n_pass;

#ifdef AXO_KERNELS_EMU
/* the driver API this file uses, over host memory and the emulator */
typedef unsigned long long CUdeviceptr;
typedef int CUresult;
#define CUDA_SUCCESS 0
static void cuGetErrorString(CUresult r, const char **s) { *s = r ? "emulated call failed" : "no error"; }
static CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
    void *q = aligned_alloc(256, (n + 255) / 256 * 256);
    *p = (CUdeviceptr)(uintptr_t)q;
    return q ? 0 : 1;
}
static CUresult cuMemFree(CUdeviceptr p) {
    free((void *)(uintptr_t)p);
    return 0;
}
static CUresult cuMemcpyHtoD(CUdeviceptr d, const void *h, size_t n) {
    memcpy((void *)(uintptr_t)d, h, n);
    return 0;
}
static CUresult cuMemcpyDtoH(void *h, CUdeviceptr d, size_t n) {
    memcpy(h, (const void *)(uintptr_t)d, n);
    return 0;
}
static CUresult cuMemsetD16(CUdeviceptr d, unsigned short v, size_t n) {
    for (size_t i = 0; i < n; i++) ((unsigned short *)(uintptr_t)d)[i] = v;
    return 0;
}
static CUresult cuMemsetD32(CUdeviceptr d, unsigned v, size_t n) {
    for (size_t i = 0; i < n; i++) ((unsigned *)(uintptr_t)d)[i] = v;
    return 0;
}
#endif

#define CU(x)                                                                                                     \
    do {                                                                                                          \
        CUresult r_ = (x);                                                                                        \
        if (r_ != CUDA_SUCCESS) {                                                                                 \
            const char *s_ = "?";                                                                                 \
            cuGetErrorString(r_, &s_);                                                                            \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, s_);                                \
            exit(2);                                                                                              \
        }                                                                                                         \
    } while (0)

/* ---- device, modules, launches --------------------------------------------------- */
static char arch[16];
static int n_sm;
#ifdef AXO_KERNELS_EMU
/* non-NULL if the emulator has the entry */
static const char *get_fn(const char *entry) { return axo_emu_has_kernel(entry) ? entry : NULL; }

static void launch(const char *entry, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned smem, void **args) {
    const rt_cuda_emu *e = axo_emu_device();
    unsigned g[3] = {gx, gy, gz}, b[2] = {bx, by};
    char err[512] = "";
    if (e->launch(e->ctx, entry, NULL, NULL, 0, g, b, smem, args, err, sizeof err) != 0) {
        fprintf(stderr, "%s: launch failed: %s\n", entry, err);
        exit(2);
    }
}
#else
static CUcontext ctx;

typedef struct {
    const cg_cuda_kernel *k;
    CUmodule mod;
} loaded;
static loaded mods[64];
static int nmods;

static CUfunction get_fn(const char *entry) {
    const cg_cuda_kernel *k = cg_cuda_kernel_for_entry(entry);
    if (!k) {
        fprintf(stderr, "no registered kernel source defines %s\n", entry);
        exit(2);
    }
    CUmodule mod = NULL;
    for (int i = 0; i < nmods; i++)
        if (mods[i].k == k) mod = mods[i].mod;
    if (!mod) {
        ax_buf cubin = {0}, log = {0};
        ax_diag d;
        ax_diag_init(&d);
        cg_kcache_status st;
        if (cg_nvrtc_compile_cached(NULL, k->name, k->source, arch, NULL, 0, &cubin, &log, &st, &d) != 0) {
            ax_diag_print(&d, stderr);
            exit(2);
        }
        CU(cuModuleLoadData(&mod, cubin.data));
        mods[nmods].k = k;
        mods[nmods++].mod = mod;
        ax_buf_free(&cubin);
        ax_buf_free(&log);
        ax_diag_free(&d);
    }
    CUfunction f;
    CU(cuModuleGetFunction(&f, mod, entry));
    return f;
}

static void launch(const char *entry, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned smem, void **args) {
    CUfunction f = get_fn(entry);
    if (smem > 48 * 1024) CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem));
    CU(cuLaunchKernel(f, gx, gy, gz, bx, by, 1, smem, NULL, args, NULL));
    CUresult r = cuCtxSynchronize();
    if (r != CUDA_SUCCESS) {
        const char *s = "?";
        cuGetErrorString(r, &s);
        fprintf(stderr, "%s: launch failed: %s\n", entry, s);
        exit(2);
    }
}

#endif

static const char *ename(const char *base, int bf) {
    static char b[8][128];
    static int k;
    char *o = b[k++ & 7];
    snprintf(o, 128, "%s_%s", base, bf ? "bf16" : "f32");
    return o;
}

/* ---- buffers ------------------------------------------------------------------------- */
typedef struct {
    CUdeviceptr p;
    size_t n;
    int bf;
} dev;

static size_t esz(int bf) { return bf ? 2 : 4; }

static dev d_from(const float *h, size_t n, int bf) {
    dev b = {0, n, bf};
    CU(cuMemAlloc(&b.p, n * esz(bf) + 16));
    if (bf) {
        uint16_t *t = malloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++) t[i] = ax_f32_to_bf16(h[i]);
        CU(cuMemcpyHtoD(b.p, t, n * 2));
        free(t);
    } else {
        CU(cuMemcpyHtoD(b.p, h, n * 4));
    }
    return b;
}
static dev d_raw(const void *h, size_t bytes) {
    dev b = {0, bytes, 0};
    CU(cuMemAlloc(&b.p, bytes + 16));
    CU(cuMemcpyHtoD(b.p, h, bytes));
    return b;
}
/* NaN-filled output */
static dev d_nan(size_t n, int bf) {
    dev b = {0, n, bf};
    CU(cuMemAlloc(&b.p, n * esz(bf) + 16));
    if (bf) CU(cuMemsetD16(b.p, 0x7fc0, n));
    else CU(cuMemsetD32(b.p, 0x7fc00000u, n));
    return b;
}
static void d_to(dev b, float *h) {
    if (b.bf) {
        uint16_t *t = malloc(b.n * 2 + 2);
        CU(cuMemcpyDtoH(t, b.p, b.n * 2));
        for (size_t i = 0; i < b.n; i++) h[i] = ax_bf16_to_f32(t[i]);
        free(t);
    } else {
        CU(cuMemcpyDtoH(h, b.p, b.n * 4));
    }
}
static float *d_get(dev b) {
    float *h = malloc(b.n * 4 + 4);
    d_to(b, h);
    return h;
}
static void d_free(dev *b) {
    if (b->p) cuMemFree(b->p);
    b->p = 0;
}

/* ---- random data (never zero) ------------------------------------------------------- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* (0, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
/* +-[0.05, 1] * scale, rounded to bf16 when bf */
static float *rnd(size_t n, double scale, int bf) {
    float *x = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++) {
        double v = (0.05 + 0.95 * urand()) * scale * (urand() < 0.5 ? -1 : 1);
        x[i] = bf ? ax_round_bf16((float)v) : (float)v;
    }
    return x;
}
static float *fdup(const float *x, size_t n) {
    float *y = malloc(n * 4 + 4);
    memcpy(y, x, n * 4);
    return y;
}

/* ---- comparison ---------------------------------------------------------------------- */
static void cmp(const char *what, const float *got, const float *ref, size_t n, double rtol, double afrac) {
    double mx = 0, num = 0, den = 0, maxerr = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(ref[i])) mx = fmax(mx, fabs((double)ref[i])); /* lse may hold -inf */
    size_t bad = 0, nan = 0, first = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], e = fabs(g - r);
        if (isnan(g) && !isnan(r)) nan++;
        if (isinf(r) ? g != r : !(e <= rtol * fabs(r) + afrac * mx)) { /* an infinite ref needs an exact match */
            if (first == (size_t)-1) first = i;
            bad++;
        }
        if (isfinite(e)) {
            maxerr = fmax(maxerr, e);
            num += e * e;
        }
        if (isfinite(r)) den += r * r;
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    if (bad) {
        n_fail++;
        printf("FAIL %-44s n=%zu bad=%zu unwritten(NaN)=%zu first@%zu got %.9g ref %.9g maxerr %.3g relnorm %.3g\n",
               what, n, bad, nan, first, (double)got[first], (double)ref[first], maxerr, rel);
    } else {
        n_pass++;
        printf("ok   %-44s n=%zu maxerr %.3g relnorm %.3g\n", what, n, maxerr, rel);
    }
}
static void cmp_bits(const char *what, const float *a, const float *b, size_t n) {
    if (memcmp(a, b, n * 4) != 0) {
        n_fail++;
        printf("FAIL %-44s two runs differ (non-deterministic)\n", what);
    } else {
        n_pass++;
        printf("ok   %-44s deterministic (bitwise equal reruns)\n", what);
    }
}
static void expect(const char *what, int cond) {
    if (cond) n_pass++;
    else n_fail++;
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
}

/* Gemma 2's soft-capping cases must not pass with the cap ignored: the reference computed without it (nocap) has
 * elements outside cmp's tolerance of the capped reference (ref). */
static void expect_bends(const char *what, const float *nocap, const float *ref, size_t n, double rtol, double afrac) {
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(ref[i])) mx = fmax(mx, fabs((double)ref[i]));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)nocap[i] - (double)ref[i]);
        bad += isinf(ref[i]) ? nocap[i] != ref[i] : !(e <= rtol * fabs((double)ref[i]) + afrac * mx);
    }
    char w[256];
    snprintf(w, sizeof w, "%s: the cap bends it (%zu of %zu elements outside the tolerance without it)", what, bad, n);
    expect(w, bad > 0);
}

#define RT(bf, r32) ((bf) ? 8e-3 : (r32))
#define AF(bf, a32) ((bf) ? 2e-3 : (a32))
static unsigned blocks(int64_t n, int per) {
    int64_t b = (n + per - 1) / per;
    if (b > 8 * n_sm) b = 8 * n_sm;
    return (unsigned)(b < 1 ? 1 : b);
}
static void label(char *buf, size_t cap, const char *fmt, const char *a, int bf) {
    snprintf(buf, cap, fmt, a, bf ? "bf16" : "f32");
}

/* ---- elementwise ----------------------------------------------------------------------- */
static void test_elementwise(int bf) {
    char what[128];
    int64_t n = 100003; /* odd: vector body + scalar tail */
    float *a = rnd((size_t)n, 2, bf), *b = rnd((size_t)n, 2, bf), *ref = malloc((size_t)n * 4);
    dev da = d_from(a, (size_t)n, bf), db = d_from(b, (size_t)n, bf);
    unsigned g = blocks(n, 256 * (bf ? 8 : 4));
    const char *names[] = {"axo_add", "axo_mul"};
    for (int op = 0; op < 2; op++) {
        dev dy = d_nan((size_t)n, bf);
        void *args[] = {&da.p, &db.p, &dy.p, &n};
        launch(ename(names[op], bf), g, 1, 1, 256, 1, 0, args);
        (op ? ck_mul_f32 : ck_add_f32)(a, b, ref, n);
        if (bf) ck_round_bf16_inplace_f32(ref, n);
        float *got = d_get(dy);
        label(what, sizeof what, "%s_%s", names[op], bf);
        cmp(what, got, ref, (size_t)n, 0, 0); /* one rounding each: exact */
        free(got);
        d_free(&dy);
    }
    { /* scale */
        float alpha = -0.37f;
        dev dy = d_nan((size_t)n, bf);
        void *args[] = {&da.p, &alpha, &dy.p, &n};
        launch(ename("axo_scale", bf), g, 1, 1, 256, 1, 0, args);
        ck_scale_f32(a, alpha, ref, n);
        if (bf) ck_round_bf16_inplace_f32(ref, n);
        float *got = d_get(dy);
        label(what, sizeof what, "%s_%s", "axo_scale", bf);
        cmp(what, got, ref, (size_t)n, 0, 0);
        free(got);
        d_free(&dy);
    }
    { /* acc: y += x in place */
        dev dy = d_from(a, (size_t)n, bf);
        void *args[] = {&dy.p, &db.p, &n};
        launch(ename("axo_acc", bf), g, 1, 1, 256, 1, 0, args);
        memcpy(ref, a, (size_t)n * 4);
        ck_acc_f32(ref, b, n);
        if (bf) ck_round_bf16_inplace_f32(ref, n);
        float *got = d_get(dy);
        label(what, sizeof what, "%s_%s", "axo_acc", bf);
        cmp(what, got, ref, (size_t)n, 0, 0);
        free(got);
        d_free(&dy);
    }
    if (!bf) { /* conversions, both directions, exact */
        float *x = rnd((size_t)n, 3, 0);
        dev dx = d_from(x, (size_t)n, 0), dy = d_nan((size_t)n, 1), dz = d_nan((size_t)n, 0);
        void *a1[] = {&dx.p, &dy.p, &n};
        launch("axo_convert_f32_bf16", g, 1, 1, 256, 1, 0, a1);
        void *a2[] = {&dy.p, &dz.p, &n};
        launch("axo_convert_bf16_f32", g, 1, 1, 256, 1, 0, a2);
        memcpy(ref, x, (size_t)n * 4);
        ck_round_bf16_inplace_f32(ref, n);
        float *got = d_get(dy), *got2 = d_get(dz);
        cmp("axo_convert_f32_bf16", got, ref, (size_t)n, 0, 0);
        cmp("axo_convert_bf16_f32", got2, ref, (size_t)n, 0, 0);
        free(got);
        free(got2);
        free(x);
        d_free(&dx);
        d_free(&dy);
        d_free(&dz);
    }
    d_free(&da);
    d_free(&db);
    free(a);
    free(b);
    free(ref);
}

static void test_glu(int bf, int gelu) {
    char what[128];
    int64_t n = 65541;
    float *g = rnd((size_t)n, 4, bf), *u = rnd((size_t)n, 2, bf), *dy = rnd((size_t)n, 1, bf);
    float *y = malloc((size_t)n * 4), *dg = malloc((size_t)n * 4), *du = malloc((size_t)n * 4);
    dev Dg = d_from(g, (size_t)n, bf), Du = d_from(u, (size_t)n, bf), Ddy = d_from(dy, (size_t)n, bf);
    dev Dy = d_nan((size_t)n, bf), Ddg = d_nan((size_t)n, bf), Ddu = d_nan((size_t)n, bf);
    unsigned gr = blocks(n, 256 * (bf ? 8 : 4));
    void *a1[] = {&Dg.p, &Du.p, &Dy.p, &n};
    launch(ename(gelu ? "axo_geglu_fwd" : "axo_swiglu_fwd", bf), gr, 1, 1, 256, 1, 0, a1);
    void *a2[] = {&Dg.p, &Du.p, &Ddy.p, &Ddg.p, &Ddu.p, &n};
    launch(ename(gelu ? "axo_geglu_bwd" : "axo_swiglu_bwd", bf), gr, 1, 1, 256, 1, 0, a2);
    if (gelu) ck_geglu_fwd_f32(g, u, y, n), ck_geglu_bwd_f32(g, u, dy, dg, du, n);
    else ck_swiglu_fwd_f32(g, u, y, n), ck_swiglu_bwd_f32(g, u, dy, dg, du, n);
    float *gy = d_get(Dy), *gdg = d_get(Ddg), *gdu = d_get(Ddu);
    label(what, sizeof what, "%s_%s y", gelu ? "axo_geglu_fwd" : "axo_swiglu_fwd", bf);
    cmp(what, gy, y, (size_t)n, RT(bf, 2e-7), AF(bf, 0));
    label(what, sizeof what, "%s_%s dgate", gelu ? "axo_geglu_bwd" : "axo_swiglu_bwd", bf);
    cmp(what, gdg, dg, (size_t)n, RT(bf, 2e-7), AF(bf, 0));
    label(what, sizeof what, "%s_%s dup", gelu ? "axo_geglu_bwd" : "axo_swiglu_bwd", bf);
    cmp(what, gdu, du, (size_t)n, RT(bf, 2e-7), AF(bf, 0));
    free(gy), free(gdg), free(gdu), free(g), free(u), free(dy), free(y), free(dg), free(du);
    d_free(&Dg), d_free(&Du), d_free(&Ddy), d_free(&Dy), d_free(&Ddg), d_free(&Ddu);
}

static void test_bias(int bf) {
    char what[128];
    int64_t shapes[2][2] = {{129, 768}, {77, 1001}}; /* vector path; scalar path (N % V != 0) */
    for (int s = 0; s < 2; s++) {
        int64_t R = shapes[s][0], N = shapes[s][1], n = R * N;
        float *x = rnd((size_t)n, 1, bf), *b = rnd((size_t)N, 1, bf), *y = malloc((size_t)n * 4);
        dev Dx = d_from(x, (size_t)n, bf), Db = d_from(b, (size_t)N, bf), Dy = d_nan((size_t)n, bf);
        void *a1[] = {&Dx.p, &Db.p, &Dy.p, &R, &N};
        launch(ename("axo_bias_add", bf), blocks(n, 256 * 4), 1, 1, 256, 1, 0, a1);
        ck_bias_add_fwd_f32(x, b, y, R, N);
        if (bf) ck_round_bf16_inplace_f32(y, n);
        float *got = d_get(Dy);
        snprintf(what, sizeof what, "axo_bias_add_%s [%lld,%lld]", bf ? "bf16" : "f32", (long long)R, (long long)N);
        cmp(what, got, y, (size_t)n, 0, 0);
        free(got);
        /* column sums, P = 5 row groups; then accumulate onto a non-zero db */
        int P = 5;
        unsigned gx = (unsigned)((N + 31) / 32);
        dev Dpart = d_nan((size_t)P * (size_t)N, 0), Ddb = d_nan((size_t)N, bf);
        void *a2[] = {&Dx.p, &Dpart.p, &R, &N};
        launch(ename("axo_bias_grad_partial", bf), gx, (unsigned)P, 1, 32, 8, 0, a2);
        int acc = 0;
        void *a3[] = {&Dpart.p, &P, &N, &Ddb.p, &acc};
        launch(ename("axo_bias_grad_reduce", bf), (unsigned)((N + 255) / 256), 1, 1, 256, 1, 0, a3);
        float *db = calloc((size_t)N, 4);
        ck_bias_add_bwd_f32(x, db, R, N);
        float *ref1 = fdup(db, (size_t)N);
        if (bf) ck_round_bf16_inplace_f32(ref1, N);
        got = d_get(Ddb);
        snprintf(what, sizeof what, "axo_bias_grad_%s [%lld,%lld]", bf ? "bf16" : "f32", (long long)R, (long long)N);
        cmp(what, got, ref1, (size_t)N, RT(bf, 1e-5), AF(bf, 1e-6));
        free(got);
        acc = 1;
        dev Db2 = d_from(b, (size_t)N, bf);
        void *a4[] = {&Dpart.p, &P, &N, &Db2.p, &acc};
        launch(ename("axo_bias_grad_reduce", bf), (unsigned)((N + 255) / 256), 1, 1, 256, 1, 0, a4);
        float *ref2 = fdup(b, (size_t)N);
        ck_bias_add_bwd_f32(x, ref2, R, N);
        if (bf) ck_round_bf16_inplace_f32(ref2, N);
        got = d_get(Db2);
        snprintf(what, sizeof what, "axo_bias_grad_%s accumulate", bf ? "bf16" : "f32");
        cmp(what, got, ref2, (size_t)N, RT(bf, 1e-5), AF(bf, 1e-6));
        free(got), free(db), free(ref1), free(ref2), free(x), free(b), free(y);
        d_free(&Dx), d_free(&Db), d_free(&Dy), d_free(&Dpart), d_free(&Ddb), d_free(&Db2);
    }
}

static void test_sumsq(int bf) {
    char what[128];
    int64_t n = 1000007;
    float *x = rnd((size_t)n, 1, bf);
    dev Dx = d_from(x, (size_t)n, bf), Dp = d_nan(2 * 37, 0), Do = d_nan(1, 0);
    int P = 37, acc = 0;
    void *a1[] = {&Dx.p, &n, &Dp.p};
    launch(ename("axo_sumsq_partial", bf), (unsigned)P, 1, 1, 256, 1, 0, a1);
    void *a2[] = {&Dp.p, &P, &Do.p, &acc};
    launch("axo_sumsq_final", 1, 1, 1, 256, 1, 0, a2);
    float got, got2, ref = (float)ck_sumsq_f32(x, n);
    CU(cuMemcpyDtoH(&got, Do.p, 4));
    launch("axo_sumsq_final", 1, 1, 1, 256, 1, 0, a2);
    CU(cuMemcpyDtoH(&got2, Do.p, 4));
    label(what, sizeof what, "%s_%s", "axo_sumsq", bf);
    cmp(what, &got, &ref, 1, 1e-6, 0);
    cmp_bits("axo_sumsq rerun", &got, &got2, 1);
    free(x);
    d_free(&Dx), d_free(&Dp), d_free(&Do);
}

static void test_rmsnorm(int bf) {
    char what[160];
    /* vector path; scalar path for bf16 (1000 % 8); each with Llama's weight and Gemma's 1 + w (offset 1) */
    int64_t shapes[4][3] = {{67, 1024, 0}, {33, 1000, 0}, {67, 1024, 1}, {33, 1000, 1}};
    for (int s = 0; s < 4; s++) {
        int64_t R = shapes[s][0], H = shapes[s][1], n = R * H;
        float eps = 1e-6f, off = (float)shapes[s][2];
        float *x = rnd((size_t)n, 1, bf), *w = rnd((size_t)H, 1, bf), *dy = rnd((size_t)n, 1, bf);
        float *y = malloc((size_t)n * 4), *dx = malloc((size_t)n * 4), *dw = calloc((size_t)H, 4);
        dev Dx = d_from(x, (size_t)n, bf), Dw = d_from(w, (size_t)H, bf), Ddy = d_from(dy, (size_t)n, bf);
        dev Dy = d_nan((size_t)n, bf), Drs = d_nan((size_t)R, 0), Ddx = d_nan((size_t)n, bf);
        void *a1[] = {&Dx.p, &Dw.p, &Dy.p, &Drs.p, &H, &eps, &off};
        launch(ename("axo_rmsnorm_fwd", bf), (unsigned)R, 1, 1, 256, 1, 0, a1);
        ck_rmsnorm_fwd_f32(x, w, y, R, H, eps, off);
        if (bf) ck_round_bf16_inplace_f32(y, n);
        float *got = d_get(Dy);
        snprintf(what, sizeof what, "axo_rmsnorm_fwd_%s [%lld,%lld] offset %g", bf ? "bf16" : "f32", (long long)R,
                 (long long)H, (double)off);
        cmp(what, got, y, (size_t)n, RT(bf, 2e-6), AF(bf, 1e-7));
        free(got);
        float *rs = d_get(Drs); /* all written, positive */
        int okrs = 1;
        for (int64_t r = 0; r < R; r++) okrs &= rs[r] > 0 && isfinite(rs[r]);
        expect("axo_rmsnorm_fwd rstd written", okrs);
        free(rs);

        int P = 13, acc = 0;
        unsigned smem = (unsigned)(H * 4);
        dev Dpart = d_nan((size_t)P * (size_t)H, 0), Ddw = d_nan((size_t)H, bf);
        void *a2[] = {&Dx.p, &Dw.p, &Ddy.p, &Ddx.p, &Dpart.p, &R, &H, &eps, &off};
        launch(ename("axo_rmsnorm_bwd", bf), (unsigned)P, 1, 1, 256, 1, smem, a2);
        void *a3[] = {&Dpart.p, &P, &H, &Ddw.p, &acc};
        launch(ename("axo_rmsnorm_dw_reduce", bf), (unsigned)((H + 255) / 256), 1, 1, 256, 1, 0, a3);
        ck_rmsnorm_bwd_f32(x, w, dy, dx, dw, R, H, eps, off);
        if (bf) ck_round_bf16_inplace_f32(dx, n), ck_round_bf16_inplace_f32(dw, H);
        float *gdx = d_get(Ddx), *gdw = d_get(Ddw);
        snprintf(what, sizeof what, "axo_rmsnorm_bwd_%s dx offset %g", bf ? "bf16" : "f32", (double)off);
        cmp(what, gdx, dx, (size_t)n, RT(bf, 2e-5), AF(bf, 2e-6));
        snprintf(what, sizeof what, "axo_rmsnorm_bwd_%s dw", bf ? "bf16" : "f32");
        cmp(what, gdw, dw, (size_t)H, RT(bf, 2e-5), AF(bf, 2e-6));
        launch(ename("axo_rmsnorm_bwd", bf), (unsigned)P, 1, 1, 256, 1, smem, a2);
        launch(ename("axo_rmsnorm_dw_reduce", bf), (unsigned)((H + 255) / 256), 1, 1, 256, 1, 0, a3);
        float *gdx2 = d_get(Ddx), *gdw2 = d_get(Ddw);
        cmp_bits("axo_rmsnorm_bwd dx rerun", gdx, gdx2, (size_t)n);
        cmp_bits("axo_rmsnorm_bwd dw rerun", gdw, gdw2, (size_t)H);
        free(gdx), free(gdw), free(gdx2), free(gdw2);
        free(x), free(w), free(dy), free(y), free(dx), free(dw);
        d_free(&Dx), d_free(&Dw), d_free(&Ddy), d_free(&Dy), d_free(&Drs), d_free(&Ddx), d_free(&Dpart),
            d_free(&Ddw);
    }
}

/* Llama 3's scaling over the whole head; then Phi-4-mini's shape: a partial rotation (48 of 64 pairs), LongRoPE's
 * short and long tables with the micro-batch's max position choosing one, and its attention factor; the short one
 * with Ministral 3's query scale too; then GLM's interleaved pairs (2i, 2i + 1) over the short table's 96 dims */
static void test_rope(int bf) {
    char what[160];
    int64_t B = 2, S = 37, BS = B * S;
    int nh = 3, hd = 128;
    int64_t n = BS * nh * hd;
    float inv[128];
    double sf[48], lf[48];
    for (int i = 0; i < 48; i++) sf[i] = 1 + 0.05 * i, lf[i] = 1 + 1.5 * i;
    int32_t *pos = malloc((size_t)BS * 4);
    for (int64_t i = 0; i < BS; i++) pos[i] = (int32_t)(urand() * 20000);
    float *x = rnd((size_t)n, 1, bf), *y = malloc((size_t)n * 4);
    dev Dx = d_from(x, (size_t)n, bf), Dpos = d_raw(pos, (size_t)BS * 4);
    for (int c = 0; c < 4; c++) {
        /* c 0: llama3, all 64 pairs; c 1, 2: longrope over 96 dims, max position 4095 (short) / 4096 (long); c 3: c 1's
         * table on interleaved pairs */
        int il = c == 3;
        int nrot = c ? 48 : 64, long_from = 4096, maxpos = c == 2 ? 4096 : 4095;
        float mscale = c ? 1.1902380714238083f : 1.0f;
        const ck_rope l3 = {.type = CK_ROPE_LLAMA3, .dim = hd, .theta = 500000.0, .factor = 8.0, .low_freq_factor = 1.0,
                            .high_freq_factor = 4.0, .original_max = 8192.0};
        const ck_rope lr_s = {.type = CK_ROPE_LONGROPE, .dim = 96, .theta = 10000.0, .n_ext = 48, .ext = sf};
        ck_rope lr_l = lr_s;
        lr_l.ext = lf;
        if (ck_rope_inv_freq(c ? &lr_s : &l3, inv) != 0 || (c && ck_rope_inv_freq(&lr_l, inv + 48) != 0)) {
            expect("ck_rope_inv_freq", 0);
            break;
        }
        dev Dinv = d_raw(inv, sizeof(float) * (size_t)(c ? 96 : 64)), Dmax = d_raw(&maxpos, 4);
        CUdeviceptr no = 0, *pmax = c ? &Dmax.p : &no;
        for (int inverse = 0; inverse < 2; inverse++) {
            dev Dy = d_nan((size_t)n, bf);
            /* c 1 also scales as Ministral 3's queries (beta 0.1 past every 4096 positions: factors up to 1 + 0.1 ln 5) */
            double qb = c == 1 ? 0.1 : 0.0;
            int64_t qm = c == 1 ? 4096 : 0;
            void *a[] = {&Dx.p, &Dpos.p, &Dinv.p, pmax, &Dy.p, &BS, &nh, &hd, &nrot, &long_from, &mscale, &inverse, &qb, &qm, &il};
            launch(ename("axo_rope", bf), blocks(BS * hd / 2, 256), 1, 1, 256, 1, 0, a);
            ck_rope_fwd_f32(x, pos, c == 2 ? inv + 48 : inv, y, B, S, nh, hd, nrot, mscale, inverse, qb, qm, il);
            if (bf) ck_round_bf16_inplace_f32(y, n);
            float *got = d_get(Dy);
            snprintf(what, sizeof what, "axo_rope_%s %s inverse=%d", bf ? "bf16" : "f32",
                     c == 0   ? "llama3"
                     : c == 1 ? "partial longrope short"
                     : c == 2 ? "partial longrope long"
                              : "partial interleaved (GLM)",
                     inverse);
            cmp(what, got, y, (size_t)n, RT(bf, 1e-6), AF(bf, 1e-7));
            free(got);
            d_free(&Dy);
        }
        d_free(&Dinv), d_free(&Dmax);
    }
    free(pos), free(x), free(y);
    d_free(&Dx), d_free(&Dpos);
}

static void test_embedding(int bf) {
    char what[128];
    int64_t T = 517, V = 1000, H = 256;
    int32_t *ids = malloc((size_t)T * 4);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)(urand() * (t % 3 ? V : 20)); /* many repeats */
    float *table = rnd((size_t)(V * H), 1, bf), *dy = rnd((size_t)(T * H), 1, bf);
    float *out = malloc((size_t)(T * H) * 4), *dt = calloc((size_t)(V * H), 4);
    int errv = INT_MAX;
    dev Dt = d_from(table, (size_t)(V * H), bf), Dids = d_raw(ids, (size_t)T * 4), Dout = d_nan((size_t)(T * H), bf);
    dev Derr = d_raw(&errv, 4), Ddy = d_from(dy, (size_t)(T * H), bf), Ddt = d_nan((size_t)(V * H), 0);
    void *a1[] = {&Dt.p, &Dids.p, &Dout.p, &T, &V, &H, &Derr.p};
    launch(ename("axo_embedding_fwd", bf), blocks(T, 1), 1, 1, 256, 1, 0, a1);
    ck_embedding_fwd_f32(table, ids, out, T, V, H);
    float *got = d_get(Dout);
    label(what, sizeof what, "%s_%s", "axo_embedding_fwd", bf);
    cmp(what, got, out, (size_t)(T * H), 0, 0);
    free(got);
    int acc = 0;
    int64_t vlo = 0, vhi = V;
    void *a2[] = {&Dids.p, &Ddy.p, &Ddt.p, &T, &vlo, &vhi, &V, &H, &acc, &Derr.p};
    launch(ename("axo_embedding_bwd", bf), (unsigned)((V + 63) / 64), 1, 1, 256, 1, 0, a2);
    ck_embedding_bwd_f32(ids, dy, dt, T, V, H);
    got = d_get(Ddt);
    label(what, sizeof what, "%s_%s (fp32 dtable)", "axo_embedding_bwd", bf);
    cmp(what, got, dt, (size_t)(V * H), 0, 0); /* same order of fp32 adds: exact */
    free(got);
    { /* the vocabulary in two segments, as the executor makes a bf16 gradient: rows [0, s) then [s, V),
       * each launch's dtable pointing at its first row */
        CU(cuMemsetD32(Ddt.p, 0x7fc00000u, (size_t)(V * H)));
        int64_t s = (V / 2 + 63) / 64 * 64 + 7;
        CUdeviceptr seg2 = Ddt.p + (CUdeviceptr)(s * H * 4);
        void *b1[] = {&Dids.p, &Ddy.p, &Ddt.p, &T, &vlo, &s, &V, &H, &acc, &Derr.p};
        void *b2[] = {&Dids.p, &Ddy.p, &seg2, &T, &s, &vhi, &V, &H, &acc, &Derr.p};
        launch(ename("axo_embedding_bwd", bf), (unsigned)((s + 63) / 64), 1, 1, 256, 1, 0, b1);
        launch(ename("axo_embedding_bwd", bf), (unsigned)((V - s + 63) / 64), 1, 1, 256, 1, 0, b2);
        got = d_get(Ddt);
        label(what, sizeof what, "%s_%s (two vocabulary segments)", "axo_embedding_bwd", bf);
        cmp(what, got, dt, (size_t)(V * H), 0, 0);
        free(got);
    }
    CU(cuMemcpyDtoH(&errv, Derr.p, 4));
    expect("embedding: valid ids report no error", errv == INT_MAX);
    /* an out-of-range id is reported (smallest t) and never dereferenced */
    ids[300] = (int32_t)V;
    ids[400] = -5;
    CU(cuMemcpyHtoD(Dids.p, ids, (size_t)T * 4));
    launch(ename("axo_embedding_fwd", bf), blocks(T, 1), 1, 1, 256, 1, 0, a1);
    CU(cuMemcpyDtoH(&errv, Derr.p, 4));
    expect("embedding_fwd: bad id reported at t=300", errv == 300);
    errv = INT_MAX;
    CU(cuMemcpyHtoD(Derr.p, &errv, 4));
    launch(ename("axo_embedding_bwd", bf), (unsigned)((V + 63) / 64), 1, 1, 256, 1, 0, a2);
    CU(cuMemcpyDtoH(&errv, Derr.p, 4));
    expect("embedding_bwd: bad id reported at t=300", errv == 300);
    free(ids), free(table), free(dy), free(out), free(dt);
    d_free(&Dt), d_free(&Dids), d_free(&Dout), d_free(&Derr), d_free(&Ddy), d_free(&Ddt);
}

/* softcap > 0: Gemma 2's final_logit_softcapping (logits of up to 6 against a cap of 2: tanh bends them) */
static void test_cross_entropy(int bf, float softcap) {
    char what[160], cs[32] = "";
    if (softcap > 0) snprintf(cs, sizeof cs, " softcap=%g", (double)softcap);
    int64_t shapes[2][2] = {{37, 4096}, {29, 5003}}; /* vector path; scalar path */
    for (int s = 0; s < 2; s++) {
        int64_t T = shapes[s][0], V = shapes[s][1], n = T * V;
        int ign = -100;
        int32_t *tg = malloc((size_t)T * 4);
        for (int64_t t = 0; t < T; t++) tg[t] = t % 5 == 3 ? ign : (int32_t)(urand() * V);
        float *x = rnd((size_t)n, 6, bf), *dref = malloc((size_t)n * 4);
        int errv = INT_MAX;
        dev Dx = d_from(x, (size_t)n, bf), Dtg = d_raw(tg, (size_t)T * 4), Dloss = d_nan((size_t)T, 0);
        dev Dlse = d_nan((size_t)T, 0), Derr = d_raw(&errv, 4), Dsum = d_nan(1, 0), Dcnt = d_nan(1, 0);
        void *a1[] = {&Dx.p, &Dtg.p, &Dloss.p, &Dlse.p, &T, &V, &ign, &softcap, &Derr.p};
        launch(ename("axo_cross_entropy_fwd", bf), (unsigned)T, 1, 1, 256, 1, 0, a1);
        void *a2[] = {&Dloss.p, &Dtg.p, &T, &T, &V, &ign, &Dsum.p, &Dcnt.p};
        launch("axo_cross_entropy_reduce", 1, 1, 1, 256, 1, 0, a2);
        double lsum = 0;
        int64_t cnt = 0;
        ck_cross_entropy_fwd_f32(x, tg, T, V, ign, softcap, &lsum, &cnt);
        float gsum;
        int gcnt;
        CU(cuMemcpyDtoH(&gsum, Dsum.p, 4));
        CU(cuMemcpyDtoH(&gcnt, Dcnt.p, 4));
        float rsum = (float)lsum;
        snprintf(what, sizeof what, "axo_cross_entropy_fwd_%s [%lld,%lld]%s loss", bf ? "bf16" : "f32", (long long)T,
                 (long long)V, cs);
        cmp(what, &gsum, &rsum, 1, 1e-5, 0);
        expect("cross_entropy count", gcnt == (int)cnt);
        /* per-row losses, one row at a time through the reference */
        float *gl = d_get(Dloss), *rl = malloc((size_t)T * 4), *rl0 = malloc((size_t)T * 4);
        for (int64_t t = 0; t < T; t++) {
            double l1 = 0;
            int64_t c1 = 0;
            ck_cross_entropy_fwd_f32(x + t * V, tg + t, 1, V, ign, softcap, &l1, &c1);
            rl[t] = (float)l1;
            ck_cross_entropy_fwd_f32(x + t * V, tg + t, 1, V, ign, 0.0, &l1, &c1);
            rl0[t] = (float)l1;
        }
        snprintf(what, sizeof what, "axo_cross_entropy_fwd_%s%s row losses", bf ? "bf16" : "f32", cs);
        cmp(what, gl, rl, (size_t)T, 1e-5, 1e-6);
        if (softcap > 0) expect_bends(what, rl0, rl, (size_t)T, 1e-5, 1e-6);
        free(rl0);
        { /* runs of one row (linear_cross_entropy {rows=T}), grid-stride over them: each run's sum is its
           * row's loss, its count 1 unless ignored */
            int64_t one = 1;
            dev Drs = d_nan((size_t)T, 0), Drc = d_nan((size_t)T, 0);
            void *a5[] = {&Dloss.p, &Dtg.p, &T, &one, &V, &ign, &Drs.p, &Drc.p};
            launch("axo_cross_entropy_reduce", blocks(T, 16), 1, 1, 256, 1, 0, a5);
            float *rs = d_get(Drs);
            int32_t *rc = malloc((size_t)T * 4);
            CU(cuMemcpyDtoH(rc, Drc.p, (size_t)T * 4));
            int cnt_ok = 1;
            for (int64_t t = 0; t < T; t++) cnt_ok &= rc[t] == (tg[t] != ign);
            snprintf(what, sizeof what, "axo_cross_entropy_reduce runs of 1 row (%s)", bf ? "bf16" : "f32");
            cmp(what, rs, gl, (size_t)T, 0, 0);
            expect("cross_entropy_reduce: a count per run", cnt_ok);
            free(rs), free(rc);
            d_free(&Drs), d_free(&Drc);
        }
        free(gl), free(rl);

        float dscale = 1.0f / (float)cnt;
        dev Dds = d_raw(&dscale, 4), Dd = d_nan((size_t)n, bf);
        void *a3[] = {&Dx.p, &Dtg.p, &Dds.p, &Dd.p, &T, &V, &ign, &softcap, &Derr.p};
        launch(ename("axo_cross_entropy_bwd", bf), (unsigned)T, 1, 1, 256, 1, 0, a3);
        ck_cross_entropy_bwd_f32(x, tg, T, V, ign, softcap, (double)dscale, dref);
        if (bf) ck_round_bf16_inplace_f32(dref, n);
        float *gd = d_get(Dd);
        snprintf(what, sizeof what, "axo_cross_entropy_bwd_%s%s dlogits", bf ? "bf16" : "f32", cs);
        cmp(what, gd, dref, (size_t)n, RT(bf, 1e-5), AF(bf, 1e-6));
        if (softcap > 0) {
            float *d0 = malloc((size_t)n * 4);
            ck_cross_entropy_bwd_f32(x, tg, T, V, ign, 0.0, (double)dscale, d0);
            if (bf) ck_round_bf16_inplace_f32(d0, n);
            expect_bends(what, d0, dref, (size_t)n, RT(bf, 1e-5), AF(bf, 1e-6));
            free(d0);
        }
        free(gd);
        /* in place: dlogits == logits */
        if (!bf) {
            void *a4[] = {&Dx.p, &Dtg.p, &Dds.p, &Dx.p, &T, &V, &ign, &softcap, &Derr.p};
            launch(ename("axo_cross_entropy_bwd", bf), (unsigned)T, 1, 1, 256, 1, 0, a4);
            gd = d_get(Dx);
            snprintf(what, sizeof what, "axo_cross_entropy_bwd_f32%s in place", cs);
            cmp(what, gd, dref, (size_t)n, 1e-5, 1e-6);
            free(gd);
        }
        CU(cuMemcpyDtoH(&errv, Derr.p, 4));
        expect("cross_entropy: no bad target reported", errv == INT_MAX);
        free(tg), free(x), free(dref);
        d_free(&Dx), d_free(&Dtg), d_free(&Dloss), d_free(&Dlse), d_free(&Derr), d_free(&Dsum), d_free(&Dcnt),
            d_free(&Dds), d_free(&Dd);
    }
}

/* axo_lce_chunk (the fused head's per-chunk loss and dlogits, fp32 logits from the GEMM) against the CPU's cross
 * entropy of the same rows: C rows of a chunk starting at row t0 of the op, a scale per run of per_scale rows (rows
 * straddle two), every 5th target ignored; V % 4 == 0 (vector path) and odd (scalar); dl in the GEMM operand dtype
 * (bf16: rounded once), f32 also in place (dl = logits). softcap > 0 as test_cross_entropy's. */
static void test_lce_chunk(int bf, float softcap) {
    char what[160], cs[32] = "";
    if (softcap > 0) snprintf(cs, sizeof cs, " softcap=%g", (double)softcap);
    int64_t shapes[2][2] = {{21, 2048}, {19, 1003}};
    for (int s = 0; s < 2; s++) {
        int64_t C = shapes[s][0], V = shapes[s][1], n = C * V, t0 = 5, per = 8;
        int ign = -100;
        int32_t *tg = malloc((size_t)C * 4);
        for (int64_t t = 0; t < C; t++) tg[t] = t % 5 == 3 ? ign : (int32_t)(urand() * V);
        float *x = rnd((size_t)n, 6, 0), *ds = rnd((size_t)((t0 + C) / per + 1), 0.05, 0);
        float *dref = malloc((size_t)n * 4), *d0 = malloc((size_t)n * 4), *lref = malloc((size_t)C * 4);
        float *l0 = malloc((size_t)C * 4);
        for (int64_t t = 0; t < C; t++) { /* row by row through the reference, each with its scale */
            double l1 = 0, sc = ds[(t0 + t) / per];
            int64_t c1 = 0;
            ck_cross_entropy_fwd_f32(x + t * V, tg + t, 1, V, ign, softcap, &l1, &c1);
            lref[t] = (float)l1;
            ck_cross_entropy_fwd_f32(x + t * V, tg + t, 1, V, ign, 0.0, &l1, &c1);
            l0[t] = (float)l1;
            ck_cross_entropy_bwd_f32(x + t * V, tg + t, 1, V, ign, softcap, sc, dref + t * V);
            ck_cross_entropy_bwd_f32(x + t * V, tg + t, 1, V, ign, 0.0, sc, d0 + t * V);
        }
        if (bf) ck_round_bf16_inplace_f32(dref, n), ck_round_bf16_inplace_f32(d0, n);
        int errv = INT_MAX;
        dev Dx = d_from(x, (size_t)n, 0), Dtg = d_raw(tg, (size_t)C * 4);
        dev Dds = d_raw(ds, (size_t)((t0 + C) / per + 1) * 4);
        dev Dd = d_nan((size_t)n, bf), Dloss = d_nan((size_t)C, 0), Derr = d_raw(&errv, 4);
        void *a[] = {&Dx.p, &Dtg.p, &Dds.p, &Dd.p, &Dloss.p, &C, &V, &t0, &per, &ign, &softcap, &Derr.p};
        launch(ename("axo_lce_chunk", bf), (unsigned)C, 1, 1, 512, 1, 0, a);
        float *gl = d_get(Dloss), *gd = d_get(Dd);
        snprintf(what, sizeof what, "axo_lce_chunk_%s [%lld,%lld]%s row losses", bf ? "bf16" : "f32", (long long)C,
                 (long long)V, cs);
        cmp(what, gl, lref, (size_t)C, 1e-5, 1e-6);
        if (softcap > 0) expect_bends(what, l0, lref, (size_t)C, 1e-5, 1e-6);
        snprintf(what, sizeof what, "axo_lce_chunk_%s [%lld,%lld]%s dlogits", bf ? "bf16" : "f32", (long long)C,
                 (long long)V, cs);
        cmp(what, gd, dref, (size_t)n, RT(bf, 1e-5), AF(bf, 1e-6));
        if (softcap > 0) expect_bends(what, d0, dref, (size_t)n, RT(bf, 1e-5), AF(bf, 1e-6));
        free(gl), free(gd);
        if (!bf) { /* in place: dl == logits */
            void *a2[] = {&Dx.p, &Dtg.p, &Dds.p, &Dx.p, &Dloss.p, &C, &V, &t0, &per, &ign, &softcap, &Derr.p};
            launch("axo_lce_chunk_f32", (unsigned)C, 1, 1, 512, 1, 0, a2);
            gl = d_get(Dloss), gd = d_get(Dx);
            snprintf(what, sizeof what, "axo_lce_chunk_f32%s in place losses", cs);
            cmp(what, gl, lref, (size_t)C, 1e-5, 1e-6);
            snprintf(what, sizeof what, "axo_lce_chunk_f32%s in place dlogits", cs);
            cmp(what, gd, dref, (size_t)n, 1e-5, 1e-6);
            free(gl), free(gd);
        }
        CU(cuMemcpyDtoH(&errv, Derr.p, 4));
        expect("lce_chunk: no bad target reported", errv == INT_MAX);
        free(tg), free(x), free(ds), free(dref), free(d0), free(lref), free(l0);
        d_free(&Dx), d_free(&Dtg), d_free(&Dds), d_free(&Dd), d_free(&Dloss), d_free(&Derr);
    }
}

/* DPO's pair losses (ir/dpo_loss.h) against ck_dpo_loss: every type alone (the count-reading ones with counts),
 * and a weighted sum of three; z of both signs (|z| up to ~12), a zero pair scale; more pairs than the grid's
 * threads (grid-stride). orpo (no reference) reads positive row losses and a zero reference: log-probabilities
 * below 0, as its log(1 - p) needs. */
static void test_dpo(void) {
    int64_t P = 700;
    double beta = 0.1, eps = 0.2, tau = 0.05, gamma = 0.3;
    float *s = rnd((size_t)(2 * P), 30, 0), *sref = rnd((size_t)(2 * P), 30, 0), *ps = rnd((size_t)P, 1, 0);
    float *spos = malloc((size_t)(2 * P) * 4), *zero = calloc((size_t)(2 * P), 4);
    float *cnt = malloc((size_t)(2 * P) * 4);
    for (int64_t i = 0; i < 2 * P; i++) cnt[i] = (float)(1 + i % 17), spos[i] = 0.05f + fabsf(s[i]);
    ps[5] = 0.0f;
    float *loss = malloc((size_t)P * 4), *coef = malloc((size_t)(2 * P) * 4);
    dev Ds = d_raw(s, (size_t)(2 * P) * 4), Dr = d_raw(sref, (size_t)(2 * P) * 4), Dp = d_raw(ps, (size_t)P * 4);
    dev Dn = d_raw(cnt, (size_t)(2 * P) * 4), Dsp = d_raw(spos, (size_t)(2 * P) * 4), Dz = d_raw(zero, (size_t)(2 * P) * 4);
    for (int t = 0; t <= AXO_DPO_NTYPES; t++) {
        int types[AXO_DPO_MAXTERMS] = {t, 0, 0, 0}, nt = 1, packed = t;
        double w[AXO_DPO_MAXTERMS] = {1, 0, 0, 0};
        if (t == AXO_DPO_NTYPES) { /* sigmoid 0.8 + bco_pair 0.15 + ipo 0.05 */
            types[0] = AXO_DPO_SIGMOID, types[1] = AXO_DPO_BCO_PAIR, types[2] = AXO_DPO_IPO, nt = 3;
            w[0] = 0.8, w[1] = 0.15, w[2] = 0.05;
            packed = types[0] | types[1] << 4 | types[2] << 8;
        }
        int counts = 0;
        for (int k = 0; k < nt; k++) counts |= axo_dpo_needs_counts(types[k]);
        const int orpo = t == AXO_DPO_ORPO;
        ck_dpo_loss_f32(orpo ? spos : s, orpo ? zero : sref, ps, counts ? cnt : NULL, P, types, w, nt, beta, eps, tau,
                        gamma, loss, coef);
        dev Dl = d_nan((size_t)P, 0), Dc = d_nan((size_t)(2 * P), 0);
        CUdeviceptr np = counts ? Dn.p : 0, sp = orpo ? Dsp.p : Ds.p, rp = orpo ? Dz.p : Dr.p;
        void *a[] = {&sp, &rp, &Dp.p, &np, &P, &beta, &eps, &tau, &gamma, &packed, &nt, &w[0], &w[1], &w[2], &w[3], &Dl.p, &Dc.p};
        launch("axo_dpo_loss", 1, 1, 1, 256, 1, 0, a);
        float *gl = d_get(Dl), *gc = d_get(Dc);
        char what[96];
        snprintf(what, sizeof what, "axo_dpo_loss type %d%s loss", t, t == AXO_DPO_NTYPES ? " (a sum of three)" : "");
        cmp(what, gl, loss, (size_t)P, 1e-6, 0);
        snprintf(what, sizeof what, "axo_dpo_loss type %d coef", t);
        cmp(what, gc, coef, (size_t)(2 * P), 1e-6, 1e-7);
        expect("dpo: a zero pair scale gives zero coefficients", gc[5] == 0.0f && gc[P + 5] == 0.0f);
        free(gl), free(gc);
        d_free(&Dl), d_free(&Dc);
    }
    free(s), free(sref), free(ps), free(cnt), free(loss), free(coef), free(spos), free(zero);
    d_free(&Ds), d_free(&Dr), d_free(&Dp), d_free(&Dn), d_free(&Dsp), d_free(&Dz);
}

/* cyc: the step's beta1 from three device floats (ir/quant.h axo_beta1_split), as lr_scheduler: one_cycle hands it; the attr's beta1 is then
 * a decoy that must go unused */
static void test_adamw(int bf, int cyc) {
    char what[128];
    int64_t n = 100019;
    float *p = rnd((size_t)n, 1, 0), *g = rnd((size_t)n, 0.1, bf), *m = rnd((size_t)n, 0.01, 0);
    float *v = rnd((size_t)n, 1e-4, 0);
    for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float lr = 3e-4f, step = 7.0f, gs = 0.5f;
    double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01, ls = 1.0; /* ls: lr_scale (LoRA+; 1 = the lr as is) */
    const double cb1 = 0.8762983410742561; /* a one-cycle beta1 between 0.85 and 0.95 */
    float b1pair[3];
    axo_beta1_split(cb1, b1pair);
    dev Dp = d_from(p, (size_t)n, 0), Dg = d_from(g, (size_t)n, bf), Dm = d_from(m, (size_t)n, 0),
        Dv = d_from(v, (size_t)n, 0), Dlr = d_raw(&lr, 4), Dst = d_raw(&step, 4), Dgs = d_raw(&gs, 4);
    dev Dpb = d_nan((size_t)n, 1), Db1 = d_raw(b1pair, 12);
    CUdeviceptr b1p = cyc ? Db1.p : 0;
    if (bf) {
        void *a[] = {&Dp.p, &Dg.p, &Dm.p, &Dv.p, &Dpb.p, &n, &Dlr.p, &Dst.p, &Dgs.p, &b1p, &b1, &b2, &eps, &wd, &ls};
        launch("axo_adamw_bf16", blocks(n, 256), 1, 1, 256, 1, 0, a);
    } else {
        void *a[] = {&Dp.p, &Dg.p, &Dm.p, &Dv.p, &n, &Dlr.p, &Dst.p, &Dgs.p, &b1p, &b1, &b2, &eps, &wd, &ls};
        launch("axo_adamw_f32", blocks(n, 256), 1, 1, 256, 1, 0, a);
    }
    ck_adamw_step_f32(p, g, m, v, n, lr, cyc ? axo_beta1_join(b1pair) : b1, b2, eps, wd, (int64_t)step, gs);
    float *gp = d_get(Dp), *gm = d_get(Dm), *gv = d_get(Dv);
    /* torch's fp32 update order with explicit roundings: expect ~bit-exact */
    label(what, sizeof what, cyc ? "%s_%s p (beta1 input)" : "%s_%s p", "axo_adamw", bf);
    cmp(what, gp, p, (size_t)n, 2e-7, 0);
    label(what, sizeof what, cyc ? "%s_%s m (beta1 input)" : "%s_%s m", "axo_adamw", bf);
    cmp(what, gm, m, (size_t)n, 2e-7, 0);
    label(what, sizeof what, cyc ? "%s_%s v (beta1 input)" : "%s_%s v", "axo_adamw", bf);
    cmp(what, gv, v, (size_t)n, 2e-7, 0);
    if (bf) {
        float *gpb = d_get(Dpb);
        ck_round_bf16_inplace_f32(p, n);
        cmp("axo_adamw_bf16 p_bf16", gpb, p, (size_t)n, 0, 0);
        free(gpb);
    }
    free(gp), free(gm), free(gv), free(p), free(g), free(m), free(v);
    d_free(&Dp), d_free(&Dg), d_free(&Dm), d_free(&Dv), d_free(&Dlr), d_free(&Dst), d_free(&Dgs), d_free(&Dpb);
    d_free(&Db1);
}

/* Pure bf16 (axo_adamw_sr_bf16): p, g, m, v bf16, the step's p, m, v stochastically rounded with the
 * bits of ir/quant.h, keyed on the element's index in the whole tensor (first + i): the CPU kernel's
 * bits exactly (ck_adamw_step_sr_bf16 on f32 arrays of the same bf16 values), with a full grid and a
 * grid far smaller than the work. */
static void test_adamw_sr(unsigned grid) {
    char what[160];
    int64_t n = 100019, first = 3 * 100019 + 5;
    unsigned salt = 11;
    float *p = rnd((size_t)n, 1, 1), *g = rnd((size_t)n, 0.1, 1), *m = rnd((size_t)n, 0.01, 1);
    float *v = rnd((size_t)n, 1e-4, 1);
    for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float lr = 3e-4f, step = 7.0f, gs = 0.5f;
    double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01, ls = 1.0; /* ls: lr_scale (LoRA+; 1 = the lr as is) */
    dev Dp = d_from(p, (size_t)n, 1), Dg = d_from(g, (size_t)n, 1), Dm = d_from(m, (size_t)n, 1),
        Dv = d_from(v, (size_t)n, 1), Dlr = d_raw(&lr, 4), Dst = d_raw(&step, 4), Dgs = d_raw(&gs, 4);
    CUdeviceptr b1p = 0; /* beta1 from the attr */
    void *a[] = {&Dp.p, &Dg.p, &Dm.p, &Dv.p, &n, &first, &Dlr.p, &Dst.p, &Dgs.p, &b1p, &b1, &b2, &eps, &wd, &salt, &ls};
    launch("axo_adamw_sr_bf16", grid ? grid : blocks(n, 256), 1, 1, 256, 1, 0, a);
    ck_adamw_step_sr_bf16(p, g, m, v, n, lr, b1, b2, eps, wd, (int64_t)step, gs, salt, first);
    float *gp = d_get(Dp), *gm = d_get(Dm), *gv = d_get(Dv);
    const char *nm[3] = {"p", "m", "v"};
    float *got[3] = {gp, gm, gv}, *ref[3] = {p, m, v};
    for (int j = 0; j < 3; j++) {
        size_t bad = 0, at = 0;
        for (size_t i = 0; i < (size_t)n; i++)
            if (memcmp(&got[j][i], &ref[j][i], 4) != 0 && bad++ == 0) at = i;
        snprintf(what, sizeof what, "axo_adamw_sr_bf16 %s (grid %s)", nm[j], grid ? "3" : "full");
        if (bad) printf("  %zu differ, first [%zu] gpu %.9g cpu %.9g\n", bad, at, got[j][at], ref[j][at]);
        expect(what, bad == 0);
    }
    free(gp), free(gm), free(gv), free(p), free(g), free(m), free(v);
    d_free(&Dp), d_free(&Dg), d_free(&Dm), d_free(&Dv), d_free(&Dlr), d_free(&Dst), d_free(&Dgs);
}

/* ---- attention ------------------------------------------------------------------------- */
static unsigned att_smem_fwd(int hd) { return (unsigned)((64 * (hd + 1) * 3 + 64 * 65) * 4 + 128 * 4); }
static unsigned att_smem_bwd(int hd) { return (unsigned)((4 * 64 * (hd + 1) + 64 * 65) * 4 + 256 * 4); }

/* A packed row (seg non-decreasing, as the runtime makes them and the kernels require): segments of uneven
 * lengths (some start on a 64-token tile boundary, some one token off), then S / 8 padding tokens, each its own
 * segment. start: the first length used (rows differ). */
static void packed_row(int32_t *sg, int S, int start) {
    static const int len[] = {1, 5, 37, 63, 64, 65, 100, 2, 129, 17, 1, 1, 200, 31, 96, 3};
    int id = 0, i = 0, n = start, pad = S / 8;
    for (; i < S - pad; n++, id++)
        for (int e = 0; e < len[n % 16] && i < S - pad; e++) sg[i++] = id;
    for (; i < S; i++) sg[i] = id++;
}

/* S = 150: row 0 three segments, row 1 two. packed (S = 512): every row packed_row, different cuts per row; the
 * kernels skip the key (query) tiles before (after) a tile's segments. */
/* window > 0: a sliding window (the kernels' causal argument carries it, common.cuh). softcap > 0: Gemma 2's cap of
 * the scores (a few units here: caps of 1 to 2 bend them). */
static void test_attention(int bf, int hd, int causal, int use_seg, int packed, int window, float softcap) {
    char what[192], tag[96];
    int B = 2, S = packed ? 512 : 150, nh = 4, nkv = 2;
    int cw = !causal ? 0 : window > 0 ? window : INT_MAX;
    int64_t nq = (int64_t)B * S * nh * hd, nk = (int64_t)B * S * nkv * hd, nl = (int64_t)B * nh * S;
    float scale = 1.0f / sqrtf((float)hd);
    snprintf(tag, sizeof tag, "hd%d_%s causal=%d window=%d seg=%d softcap=%g%s", hd, bf ? "bf16" : "f32", causal, window,
             use_seg, (double)softcap, packed ? " packed S=512" : "");
    float *q = rnd((size_t)nq, 1.5, bf), *k = rnd((size_t)nk, 1.5, bf), *v = rnd((size_t)nk, 1, bf);
    float *dout = rnd((size_t)nq, 1, bf);
    int32_t *seg = malloc((size_t)B * S * 4);
    for (int b = 0; b < B; b++) {
        if (packed) packed_row(seg + b * S, S, 5 * b);
        else
            for (int i = 0; i < S; i++) seg[b * S + i] = b == 0 ? (i < 60 ? 0 : i < 110 ? 1 : 2) : (i < 97 ? 5 : 9);
    }
    float *out = malloc((size_t)nq * 4), *lse = malloc((size_t)nl * 4);
    float *dq = malloc((size_t)nq * 4), *dk = malloc((size_t)nk * 4), *dv = malloc((size_t)nk * 4);
    ck_attention_fwd_f32(q, k, v, use_seg ? seg : NULL, out, lse, B, S, nh, nkv, hd, scale, causal, window, softcap);
    /* the backward's inputs: the reference out (rounded as it would be stored) and lse */
    float *out_in = fdup(out, (size_t)nq);
    if (bf) ck_round_bf16_inplace_f32(out_in, nq);
    ck_attention_bwd_f32(q, k, v, use_seg ? seg : NULL, out_in, lse, dout, dq, dk, dv, B, S, nh, nkv, hd, scale,
                         causal, window, softcap);
    if (softcap > 0) { /* the same references without the cap must fail the comparisons below */
        float *o0 = malloc((size_t)nq * 4), *l0 = malloc((size_t)nl * 4), *q0 = malloc((size_t)nq * 4),
              *k0 = malloc((size_t)nk * 4), *v0 = malloc((size_t)nk * 4);
        ck_attention_fwd_f32(q, k, v, use_seg ? seg : NULL, o0, l0, B, S, nh, nkv, hd, scale, causal, window, 0.0);
        ck_attention_bwd_f32(q, k, v, use_seg ? seg : NULL, out_in, lse, dout, q0, k0, v0, B, S, nh, nkv, hd, scale,
                             causal, window, 0.0);
        snprintf(what, sizeof what, "attn %s reference out", tag);
        expect_bends(what, o0, out, (size_t)nq, RT(bf, 1e-4), AF(bf, 1e-5));
        snprintf(what, sizeof what, "attn %s reference dq", tag);
        expect_bends(what, q0, dq, (size_t)nq, RT(bf, 1e-4), AF(bf, 2e-5));
        snprintf(what, sizeof what, "attn %s reference dk", tag);
        expect_bends(what, k0, dk, (size_t)nk, RT(bf, 1e-4), AF(bf, 2e-5));
        free(o0), free(l0), free(q0), free(k0), free(v0);
    }

    dev Dq = d_from(q, (size_t)nq, bf), Dk = d_from(k, (size_t)nk, bf), Dv = d_from(v, (size_t)nk, bf);
    dev Dseg = d_raw(seg, (size_t)B * S * 4), Do = d_nan((size_t)nq, bf), Dl = d_nan((size_t)nl, 0);
    CUdeviceptr segp = use_seg ? Dseg.p : 0;
    char fwd[64];
    snprintf(fwd, sizeof fwd, "axo_attn_fwd_hd%d", hd);
    CUdeviceptr nosinks = 0; /* gpt-oss's sinks: none here (gpu_exec_check's attention cases with sinks) */
    int sbf = 0;
    void *a1[] = {&Dq.p, &Dk.p, &Dv.p, &segp, &Do.p, &Dl.p, &S, &nh, &nkv, &scale, &cw, &softcap, &nosinks, &sbf};
    unsigned qt = (unsigned)((S + 63) / 64);
    launch(ename(fwd, bf), qt, (unsigned)nh, (unsigned)B, 256, 1, att_smem_fwd(hd), a1);
    float *go = d_get(Do), *gl = d_get(Dl), *oref = fdup(out, (size_t)nq);
    if (bf) ck_round_bf16_inplace_f32(oref, nq);
    snprintf(what, sizeof what, "attn_fwd %s out", tag);
    cmp(what, go, oref, (size_t)nq, RT(bf, 1e-4), AF(bf, 1e-5));
    snprintf(what, sizeof what, "attn_fwd %s lse", tag);
    cmp(what, gl, lse, (size_t)nl, 1e-5, 1e-6);
    free(go), free(gl), free(oref);

    dev Dout = d_from(out_in, (size_t)nq, bf), Ddo = d_from(dout, (size_t)nq, bf), Dlse = d_from(lse, (size_t)nl, 0);
    dev DD = d_nan((size_t)nl, 0), Ddq = d_nan((size_t)nq, bf), Ddk = d_nan((size_t)nk, bf),
        Ddv = d_nan((size_t)nk, bf);
    int64_t B64 = B;
    void *a2[] = {&Dout.p, &Ddo.p, &DD.p, &B64, &S, &nh, &hd};
    launch(ename("axo_attn_bwd_preprocess", bf), blocks((int64_t)B * S * nh * 32, 256), 1, 1, 256, 1, 0, a2);
    char kv[64], qn[64];
    snprintf(kv, sizeof kv, "axo_attn_bwd_dkdv_hd%d", hd);
    snprintf(qn, sizeof qn, "axo_attn_bwd_dq_hd%d", hd);
    void *a3[] = {&Dq.p,  &Dk.p, &Dv.p, &segp, &Ddo.p,  &Dlse.p, &DD.p,
                  &Ddk.p, &Ddv.p, &S,    &nh,   &nkv,    &scale,  &cw,  &softcap};
    void *a4[] = {&Dq.p, &Dk.p, &Dv.p, &segp, &Ddo.p, &Dlse.p, &DD.p, &Ddq.p, &S, &nh, &nkv, &scale, &cw, &softcap};
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        launch(ename(kv, bf), qt, (unsigned)nkv, (unsigned)B, 256, 1, att_smem_bwd(hd), a3);
        launch(ename(qn, bf), qt, (unsigned)nh, (unsigned)B, 256, 1, att_smem_bwd(hd), a4);
        res[run][0] = d_get(Ddq), res[run][1] = d_get(Ddk), res[run][2] = d_get(Ddv);
    }
    if (bf) ck_round_bf16_inplace_f32(dq, nq), ck_round_bf16_inplace_f32(dk, nk), ck_round_bf16_inplace_f32(dv, nk);
    const char *nm[3] = {"dq", "dk", "dv"};
    float *refs[3] = {dq, dk, dv};
    size_t ns[3] = {(size_t)nq, (size_t)nk, (size_t)nk};
    for (int t = 0; t < 3; t++) {
        snprintf(what, sizeof what, "attn_bwd %s %s", tag, nm[t]);
        cmp(what, res[0][t], refs[t], ns[t], RT(bf, 1e-4), AF(bf, 2e-5));
        snprintf(what, sizeof what, "attn_bwd %s %s rerun", tag, nm[t]);
        cmp_bits(what, res[0][t], res[1][t], ns[t]);
        free(res[0][t]), free(res[1][t]);
    }
    free(q), free(k), free(v), free(dout), free(seg), free(out), free(lse), free(dq), free(dk), free(dv), free(out_in);
    d_free(&Dq), d_free(&Dk), d_free(&Dv), d_free(&Dseg), d_free(&Do), d_free(&Dl), d_free(&Dout), d_free(&Ddo),
        d_free(&Dlse), d_free(&DD), d_free(&Ddq), d_free(&Ddk), d_free(&Ddv);
}

/* ---- ring attention blocks --------------------------------------------------------------- */
static unsigned blk_smem_fwd(int hd) { return (unsigned)((3 * 64 * (hd + 1) + 64 * 65) * 4 + 256 * 4); }
static unsigned blk_smem_bwd(int hd) { return (unsigned)((4 * 64 * (hd + 1) + 64 * 65) * 4 + 384 * 4); }

/* One attention_blk call: Sq local queries against a block of Sk keys. */
typedef struct {
    int B, Sq, Sk, nh, nkv, hd, causal;
    const int32_t *segq, *segk, *idxq, *idxk;
    float softcap; /* Gemma 2's cap of the scores (0: none) */
} blk_case;

typedef struct {
    dev q, k, v, segq, segk, idxq, idxk;
} blk_dev;

/* NULL stays NULL (seg: one segment, idx: index = position). */
static dev d_ints(const int32_t *h, size_t n) {
    dev z = {0, 0, 0};
    return h ? d_raw(h, n * 4) : z;
}
static blk_dev blk_upload(int bf, const blk_case *c, const float *q, const float *k, const float *v) {
    size_t nq = (size_t)c->B * c->Sq * c->nh * c->hd, nk = (size_t)c->B * c->Sk * c->nkv * c->hd;
    blk_dev d;
    d.q = d_from(q, nq, bf), d.k = d_from(k, nk, bf), d.v = d_from(v, nk, bf);
    d.segq = d_ints(c->segq, (size_t)c->B * c->Sq), d.segk = d_ints(c->segk, (size_t)c->B * c->Sk);
    d.idxq = d_ints(c->idxq, (size_t)c->B * c->Sq), d.idxk = d_ints(c->idxk, (size_t)c->B * c->Sk);
    return d;
}
static void blk_dev_free(blk_dev *d) {
    d_free(&d->q), d_free(&d->k), d_free(&d->v), d_free(&d->segq), d_free(&d->segk), d_free(&d->idxq),
        d_free(&d->idxk);
}

/* Rows of the reference lse that are -inf: queries that see no key of the block. */
static int64_t n_masked(const float *lse, int64_t n) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += isinf(lse[i]) && lse[i] < 0;
    return m;
}

/* axo_attn_blk_fwd vs ck_attention_blk_fwd_f32. Outputs are fp32 whatever the
 * storage type and the bf16 inputs are rounded before the CPU sees them, so
 * f32 and bf16 share the tolerances. Returns the reference out/lse. */
static void check_blk_fwd(int bf, const blk_case *c, const float *q, const float *k, const float *v,
                          const char *tag, float **out_ref, float **lse_ref) {
    char what[256], en[64];
    int Sq = c->Sq, Sk = c->Sk, nh = c->nh, nkv = c->nkv, hd = c->hd, causal = c->causal, cw = causal ? INT_MAX : 0;
    int64_t nq = (int64_t)c->B * Sq * nh * hd, nl = (int64_t)c->B * nh * Sq;
    float scale = 1.0f / sqrtf((float)hd);
    float *out = malloc((size_t)nq * 4), *lse = malloc((size_t)nl * 4);
    float softcap = c->softcap;
    ck_attention_blk_fwd_f32(q, k, v, c->segq, c->segk, c->idxq, c->idxk, out, lse, c->B, Sq, Sk, nh, nkv, hd, scale,
                             causal, 0, softcap);
    if (softcap > 0) {
        float *o0 = malloc((size_t)nq * 4), *l0 = malloc((size_t)nl * 4);
        ck_attention_blk_fwd_f32(q, k, v, c->segq, c->segk, c->idxq, c->idxk, o0, l0, c->B, Sq, Sk, nh, nkv, hd, scale,
                                 causal, 0, 0.0);
        snprintf(what, sizeof what, "attn_blk_fwd %s reference out", tag);
        expect_bends(what, o0, out, (size_t)nq, 1e-4, 1e-5);
        free(o0), free(l0);
    }
    blk_dev d = blk_upload(bf, c, q, k, v);
    dev Do = d_nan((size_t)nq, 0), Dl = d_nan((size_t)nl, 0);
    void *a[] = {&d.q.p, &d.k.p, &d.v.p, &d.segq.p, &d.segk.p, &d.idxq.p, &d.idxk.p, &Do.p,
                 &Dl.p,  &Sq,    &Sk,    &nh,       &nkv,      &scale,    &cw,       &softcap};
    snprintf(en, sizeof en, "axo_attn_blk_fwd_hd%d", hd);
    launch(ename(en, bf), (unsigned)((Sq + 63) / 64), (unsigned)nh, (unsigned)c->B, 256, 1, blk_smem_fwd(hd), a);
    float *go = d_get(Do), *gl = d_get(Dl);
    snprintf(what, sizeof what, "attn_blk_fwd %s out", tag);
    cmp(what, go, out, (size_t)nq, 1e-4, 1e-5);
    snprintf(what, sizeof what, "attn_blk_fwd %s lse (%lld rows -inf)", tag, (long long)n_masked(lse, nl));
    cmp(what, gl, lse, (size_t)nl, 1e-5, 1e-6);
    free(go), free(gl);
    d_free(&Do), d_free(&Dl);
    blk_dev_free(&d);
    *out_ref = out, *lse_ref = lse;
}

/* axo_attn_blk_bwd_{preprocess,dkdv,dq} vs ck_attention_blk_bwd_f32, given the
 * whole row's out (already bf16-rounded when bf) and lse; run twice, same bits. */
static void check_blk_bwd(int bf, const blk_case *c, const float *q, const float *k, const float *v,
                          const float *out_in, const float *lse, const float *dout, const char *tag) {
    char what[256], kv[64], qn[64];
    int Sq = c->Sq, Sk = c->Sk, nh = c->nh, nkv = c->nkv, hd = c->hd, causal = c->causal, cw = causal ? INT_MAX : 0;
    int64_t B64 = c->B, nq = B64 * Sq * nh * hd, nk = B64 * Sk * nkv * hd, nl = B64 * nh * Sq;
    float scale = 1.0f / sqrtf((float)hd);
    float *dq = malloc((size_t)nq * 4), *dk = malloc((size_t)nk * 4), *dv = malloc((size_t)nk * 4);
    float *Dref = malloc((size_t)nl * 4);
    float softcap = c->softcap;
    ck_attention_blk_bwd_f32(q, k, v, c->segq, c->segk, c->idxq, c->idxk, out_in, lse, dout, dq, dk, dv, B64, Sq, Sk,
                             nh, nkv, hd, scale, causal, 0, softcap);
    if (softcap > 0) {
        float *q0 = malloc((size_t)nq * 4), *k0 = malloc((size_t)nk * 4), *v0 = malloc((size_t)nk * 4);
        ck_attention_blk_bwd_f32(q, k, v, c->segq, c->segk, c->idxq, c->idxk, out_in, lse, dout, q0, k0, v0, B64, Sq,
                                 Sk, nh, nkv, hd, scale, causal, 0, 0.0);
        snprintf(what, sizeof what, "attn_blk_bwd %s reference dq", tag);
        expect_bends(what, q0, dq, (size_t)nq, 1e-4, 2e-5);
        snprintf(what, sizeof what, "attn_blk_bwd %s reference dk", tag);
        expect_bends(what, k0, dk, (size_t)nk, 1e-4, 2e-5);
        free(q0), free(k0), free(v0);
    }
    for (int64_t b = 0; b < B64; b++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < Sq; i++) {
                const float *o = out_in + ((b * Sq + i) * nh + h) * hd, *g = dout + ((b * Sq + i) * nh + h) * hd;
                double s = 0;
                for (int e = 0; e < hd; e++) s += (double)o[e] * (double)g[e];
                Dref[(b * nh + h) * Sq + i] = (float)s;
            }

    blk_dev d = blk_upload(bf, c, q, k, v);
    dev Dout = d_from(out_in, (size_t)nq, bf), Ddo = d_from(dout, (size_t)nq, bf), Dlse = d_from(lse, (size_t)nl, 0);
    dev DD = d_nan((size_t)nl, 0), Ddq = d_nan((size_t)nq, 0), Ddk = d_nan((size_t)nk, 0), Ddv = d_nan((size_t)nk, 0);
    void *a1[] = {&Dout.p, &Ddo.p, &DD.p, &B64, &Sq, &nh, &hd};
    launch(ename("axo_attn_blk_bwd_preprocess", bf), blocks(B64 * Sq * nh * 32, 256), 1, 1, 256, 1, 0, a1);
    float *gD = d_get(DD);
    snprintf(what, sizeof what, "attn_blk_bwd %s D", tag);
    cmp(what, gD, Dref, (size_t)nl, 1e-5, 1e-5);
    free(gD);
    snprintf(kv, sizeof kv, "axo_attn_blk_bwd_dkdv_hd%d", hd);
    snprintf(qn, sizeof qn, "axo_attn_blk_bwd_dq_hd%d", hd);
    void *a2[] = {&d.q.p, &d.k.p, &d.v.p, &d.segq.p, &d.segk.p, &d.idxq.p, &d.idxk.p, &Ddo.p, &Dlse.p, &DD.p,
                  &Ddk.p, &Ddv.p, &Sq,    &Sk,       &nh,       &nkv,      &scale,    &cw,    &softcap};
    void *a3[] = {&d.q.p, &d.k.p, &d.v.p, &d.segq.p, &d.segk.p, &d.idxq.p, &d.idxk.p, &Ddo.p, &Dlse.p,
                  &DD.p,  &Ddq.p, &Sq,    &Sk,       &nh,       &nkv,      &scale,    &cw,       &softcap};
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        launch(ename(kv, bf), (unsigned)((Sk + 63) / 64), (unsigned)nkv, (unsigned)c->B, 256, 1, blk_smem_bwd(hd), a2);
        launch(ename(qn, bf), (unsigned)((Sq + 63) / 64), (unsigned)nh, (unsigned)c->B, 256, 1, blk_smem_bwd(hd), a3);
        res[run][0] = d_get(Ddq), res[run][1] = d_get(Ddk), res[run][2] = d_get(Ddv);
    }
    const char *nm[3] = {"dq", "dk", "dv"};
    float *refs[3] = {dq, dk, dv};
    size_t ns[3] = {(size_t)nq, (size_t)nk, (size_t)nk};
    for (int t = 0; t < 3; t++) {
        snprintf(what, sizeof what, "attn_blk_bwd %s %s", tag, nm[t]);
        cmp(what, res[0][t], refs[t], ns[t], 1e-4, 2e-5);
        snprintf(what, sizeof what, "attn_blk_bwd %s %s rerun", tag, nm[t]);
        cmp_bits(what, res[0][t], res[1][t], ns[t]);
        free(res[0][t]), free(res[1][t]);
    }
    free(dq), free(dk), free(dv), free(Dref);
    blk_dev_free(&d);
    d_free(&Dout), d_free(&Ddo), d_free(&Dlse), d_free(&DD), d_free(&Ddq), d_free(&Ddk), d_free(&Ddv);
}

/* axo_attn_merge_f32 vs ck_attn_merge_f32, out of place and in place (o = o1,
 * l = l1). Double math in both, so ~1 ulp. Returns the reference o/l. */
static void check_merge(const float *o1, const float *l1, const float *o2, const float *l2, int64_t B, int S, int nh,
                        int hd, const char *tag, float **o_ref, float **l_ref) {
    char what[256];
    int64_t no = B * S * nh * hd, nl = B * nh * S;
    float *o = malloc((size_t)no * 4), *l = malloc((size_t)nl * 4);
    ck_attn_merge_f32(o1, l1, o2, l2, o, l, B, S, nh, hd);
    dev Do1 = d_from(o1, (size_t)no, 0), Dl1 = d_from(l1, (size_t)nl, 0), Do2 = d_from(o2, (size_t)no, 0),
        Dl2 = d_from(l2, (size_t)nl, 0), Do = d_nan((size_t)no, 0), Dl = d_nan((size_t)nl, 0);
    unsigned g = blocks(B * S * nh * 32, 256);
    void *a1[] = {&Do1.p, &Dl1.p, &Do2.p, &Dl2.p, &Do.p, &Dl.p, &B, &S, &nh, &hd};
    launch("axo_attn_merge_f32", g, 1, 1, 256, 1, 0, a1);
    void *a2[] = {&Do1.p, &Dl1.p, &Do2.p, &Dl2.p, &Do1.p, &Dl1.p, &B, &S, &nh, &hd};
    launch("axo_attn_merge_f32", g, 1, 1, 256, 1, 0, a2);
    float *go = d_get(Do), *gl = d_get(Dl), *go1 = d_get(Do1), *gl1 = d_get(Dl1);
    snprintf(what, sizeof what, "attn_merge %s o", tag);
    cmp(what, go, o, (size_t)no, 2e-7, 1e-9);
    snprintf(what, sizeof what, "attn_merge %s lse (%lld rows -inf)", tag, (long long)n_masked(l, nl));
    cmp(what, gl, l, (size_t)nl, 2e-7, 0);
    snprintf(what, sizeof what, "attn_merge %s o in place", tag);
    cmp(what, go1, o, (size_t)no, 2e-7, 1e-9);
    snprintf(what, sizeof what, "attn_merge %s lse in place", tag);
    cmp(what, gl1, l, (size_t)nl, 2e-7, 0);
    free(go), free(gl), free(go1), free(gl1);
    d_free(&Do1), d_free(&Dl1), d_free(&Do2), d_free(&Dl2), d_free(&Do), d_free(&Dl);
    *o_ref = o, *l_ref = l;
}

/* The ring as seqpar runs it: rows of S = 180 tokens split zigzag over P = 2
 * ranks (rank r holds chunks r and 3 - r of 45 tokens, so 64-row tiles
 * straddle the two chunks), causal, row 0 packed into three segments, GQA
 * 4:2. Each rank attends its own block and the other rank's, merges, and runs
 * the backward of both blocks against the merged out/lse. Rank 0's chunk 0
 * sees nothing of rank 1's block (rows with lse -inf); rank 1 skips whole
 * tiles of rank 0's block (its chunk 3 lies after every query). */
static void test_attention_blk_ring(int bf, int hd, float softcap) {
    enum { P = 2, C = 45, S = 2 * P * C, SL = S / P, B = 2 };
    const int nh = 4, nkv = 2;
    int32_t seg[P][B * SL], idx[P][B * SL];
    for (int r = 0; r < P; r++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < SL; i++) {
                int t = i < C ? r * C + i : (2 * P - 1 - r) * C + (i - C);
                idx[r][b * SL + i] = t;
                seg[r][b * SL + i] = b == 0 ? (t < 70 ? 3 : t < 131 ? 4 : 8) : 1;
            }
    size_t nq = (size_t)B * SL * nh * hd, nk = (size_t)B * SL * nkv * hd;
    float *q[P], *k[P], *v[P], *dout[P];
    for (int r = 0; r < P; r++)
        q[r] = rnd(nq, 1.5, bf), k[r] = rnd(nk, 1.5, bf), v[r] = rnd(nk, 1, bf), dout[r] = rnd(nq, 1, bf);
    for (int r = 0; r < P; r++) {
        char tag[128];
        blk_case c[P];
        float *ob[P], *lb[P];
        for (int s = 0; s < P; s++) {
            int src = (r - s + P) % P;
            c[s] = (blk_case){B, SL, SL, nh, nkv, hd, 1, seg[r], seg[src], idx[r], idx[src], softcap};
            snprintf(tag, sizeof tag, "hd%d_%s softcap=%g zigzag rank %d block %d", hd, bf ? "bf16" : "f32",
                     (double)softcap, r, src);
            check_blk_fwd(bf, &c[s], q[r], k[src], v[src], tag, &ob[s], &lb[s]);
        }
        float *o, *l;
        snprintf(tag, sizeof tag, "hd%d_%s softcap=%g zigzag rank %d", hd, bf ? "bf16" : "f32", (double)softcap, r);
        check_merge(ob[0], lb[0], ob[1], lb[1], B, SL, nh, hd, tag, &o, &l);
        if (bf) ck_round_bf16_inplace_f32(o, (int64_t)nq); /* out as stored in q's dtype */
        for (int s = 0; s < P; s++) {
            int src = (r - s + P) % P;
            snprintf(tag, sizeof tag, "hd%d_%s softcap=%g zigzag rank %d block %d", hd, bf ? "bf16" : "f32",
                     (double)softcap, r, src);
            check_blk_bwd(bf, &c[s], q[r], k[src], v[src], o, l, dout[r], tag);
            free(ob[s]), free(lb[s]);
        }
        free(o), free(l);
    }
    for (int r = 0; r < P; r++) free(q[r]), free(k[r]), free(v[r]), free(dout[r]);
}

/* A free-form block: Sq = 70 queries against Sk = 133 keys, index patterns
 * that interleave (idxq = 3i + b, idxk = 2j + 7), so some queries see no key
 * (causal: idxq < 7; row 1: queries in segment 99, which no key has, also
 * when not causal), and query/key tile pairs fully masked by index or by
 * segment are skipped. The block is the whole row: the backward takes this
 * block's own out/lse. */
static void test_attention_blk_free(int bf, int hd, int causal, float softcap) {
    enum { B = 2, SQ = 70, SK = 133 };
    const int nh = 4, nkv = 2;
    int32_t segq[B * SQ], segk[B * SK], idxq[B * SQ], idxk[B * SK];
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < SQ; i++) {
            idxq[b * SQ + i] = 3 * i + b;
            segq[b * SQ + i] = b == 0 ? (i < 40 ? 1 : 2) : (i % 7 == 3 ? 99 : 5);
        }
        for (int j = 0; j < SK; j++) {
            idxk[b * SK + j] = 2 * j + 7;
            segk[b * SK + j] = b == 0 ? (j < 90 ? 1 : 2) : 5;
        }
    }
    blk_case c = {B, SQ, SK, nh, nkv, hd, causal, segq, segk, idxq, idxk, softcap};
    size_t nq = (size_t)B * SQ * nh * hd, nk = (size_t)B * SK * nkv * hd;
    float *q = rnd(nq, 1.5, bf), *k = rnd(nk, 1.5, bf), *v = rnd(nk, 1, bf), *dout = rnd(nq, 1, bf);
    char tag[128];
    snprintf(tag, sizeof tag, "hd%d_%s Sq=%d Sk=%d causal=%d softcap=%g", hd, bf ? "bf16" : "f32", SQ, SK, causal,
             (double)softcap);
    float *o, *l;
    check_blk_fwd(bf, &c, q, k, v, tag, &o, &l);
    expect("attn_blk free-form case has queries that see no key", n_masked(l, (int64_t)B * nh * SQ) > 0);
    if (bf) ck_round_bf16_inplace_f32(o, (int64_t)nq);
    check_blk_bwd(bf, &c, q, k, v, o, l, dout, tag);
    free(q), free(k), free(v), free(dout), free(o), free(l);
}

/* NULL idx (index = position, Sq == Sk) and NULL or packed seg: the block
 * kernels as whole-row attention (the CPU's whole-row kernels are this case);
 * causal tiles above the diagonal are skipped by the visibility check. */
static void test_attention_blk_whole(int bf, int hd, int causal, int use_seg) {
    enum { B = 2, S = 150 };
    const int nh = 4, nkv = 2;
    int32_t seg[B * S];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < S; i++) seg[b * S + i] = b == 0 ? (i < 60 ? 0 : i < 110 ? 1 : 2) : (i < 97 ? 5 : 9);
    const int32_t *sp = use_seg ? seg : NULL;
    blk_case c = {B, S, S, nh, nkv, hd, causal, sp, sp, NULL, NULL, 0.0f};
    size_t nq = (size_t)B * S * nh * hd, nk = (size_t)B * S * nkv * hd;
    float *q = rnd(nq, 1.5, bf), *k = rnd(nk, 1.5, bf), *v = rnd(nk, 1, bf), *dout = rnd(nq, 1, bf);
    char tag[128];
    snprintf(tag, sizeof tag, "hd%d_%s whole row (idx NULL) causal=%d seg=%d", hd, bf ? "bf16" : "f32", causal,
             use_seg);
    float *o, *l;
    check_blk_fwd(bf, &c, q, k, v, tag, &o, &l);
    if (bf) ck_round_bf16_inplace_f32(o, (int64_t)nq);
    check_blk_bwd(bf, &c, q, k, v, o, l, dout, tag);
    free(q), free(k), free(v), free(dout), free(o), free(l);
}

/* attn_merge alone: head_dim 80 (lanes past hd idle on the last pass), lse
 * -inf in the first, the second or both inputs. */
static void test_attn_merge(void) {
    int64_t B = 2;
    int S = 77, nh = 3, hd = 80;
    int64_t no = B * S * nh * hd, nl = B * nh * S;
    float *o1 = rnd((size_t)no, 1, 0), *o2 = rnd((size_t)no, 1, 0), *l1 = rnd((size_t)nl, 5, 0),
          *l2 = rnd((size_t)nl, 5, 0);
    for (int64_t i = 0; i < nl; i++) {
        if (i % 5 == 1 || i % 5 == 3) l1[i] = -INFINITY;
        if (i % 5 == 2 || i % 5 == 3) l2[i] = -INFINITY;
    }
    float *o, *l;
    check_merge(o1, l1, o2, l2, B, S, nh, hd, "hd80 with -inf inputs", &o, &l);
    free(o1), free(o2), free(l1), free(l2), free(o), free(l);
}

/* Groups named on the command line run (all when none is named), so that
 * tests/gpu/run.sh can run each group in its own process: a failing launch
 * ends this program (exit 2) and must not hide the other groups. */
static int g_argc;
static char **g_argv;
static int want(const char *group) {
    if (g_argc < 2) return 1;
    for (int i = 1; i < g_argc; i++)
        if (!strcmp(g_argv[i], group)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    if (argc > 1 && !strcmp(argv[1], "--groups")) {
        puts("elementwise swiglu geglu bias sumsq rmsnorm rope embedding cross_entropy adamw attention attention_blk "
             "entries");
        return 0;
    }
#ifdef AXO_KERNELS_EMU
    n_sm = 2; /* capped grids stay small; grid-stride loops go round */
    snprintf(arch, sizeof arch, "emu");
    printf("device: the host SIMT emulator (tests/unit/emu), %d SMs\n", n_sm);
#else
    CU(cuInit(0));
    int ndev = 0;
    CU(cuDeviceGetCount(&ndev));
    if (ndev < 1) {
        fprintf(stderr, "no CUDA device\n");
        return 2;
    }
    CUdevice dev0;
    CU(cuDeviceGet(&dev0, 0));
    int ma = 0, mi = 0;
    CU(cuDeviceGetAttribute(&ma, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev0));
    CU(cuDeviceGetAttribute(&mi, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev0));
    CU(cuDeviceGetAttribute(&n_sm, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev0));
    const char *force = getenv("AXO_GPU_ARCH");
    if (force && force[0]) snprintf(arch, sizeof arch, "%s", force);
    else snprintf(arch, sizeof arch, "sm_%d%d%s", ma, mi, ma == 9 && mi == 0 ? "a" : "");
    char name[256] = "?";
    cuDeviceGetName(name, sizeof name, dev0);
    printf("device: %s (sm_%d%d, %d SMs); kernels compiled for %s\n", name, ma, mi, n_sm, arch);
    CU(cuDevicePrimaryCtxRetain(&ctx, dev0));
    CU(cuCtxSetCurrent(ctx));
#endif

    for (int bf = 0; bf < 2; bf++) {
        if (want("elementwise")) test_elementwise(bf);
        if (want("swiglu")) test_glu(bf, 0);
        if (want("geglu")) test_glu(bf, 1);
        if (want("bias")) test_bias(bf);
        if (want("sumsq")) test_sumsq(bf);
        if (want("rmsnorm")) test_rmsnorm(bf);
        if (want("rope")) test_rope(bf);
        if (want("embedding")) test_embedding(bf);
        if (want("cross_entropy")) { /* and with Gemma 2's final_logit_softcapping */
            test_cross_entropy(bf, 0.0f), test_cross_entropy(bf, 2.0f);
            test_lce_chunk(bf, 0.0f), test_lce_chunk(bf, 2.0f);
        }
        if (want("adamw")) test_adamw(bf, 0), test_adamw(bf, 1);
        for (int hd = 64; hd <= 128 && want("attention"); hd *= 2) {
            test_attention(bf, hd, 1, 1, 0, 0, 0.0f);
            test_attention(bf, hd, 0, 0, 0, 0, 0.0f);
            test_attention(bf, hd, 1, 1, 1, 0, 0.0f);
            test_attention(bf, hd, 1, 1, 1, 100, 0.0f); /* a sliding window over packed rows */
            test_attention(bf, hd, 1, 0, 0, 40, 0.0f);
            /* Gemma 2's soft-capping (scores of about one unit here) */
            test_attention(bf, hd, 1, 1, 0, 0, 1.0f);
            test_attention(bf, hd, 0, 0, 0, 0, 0.75f);
            test_attention(bf, hd, 1, 1, 1, 100, 1.0f);
        }
        for (int hd = 64; hd <= 128 && want("attention_blk"); hd *= 2) {
            test_attention_blk_ring(bf, hd, 0.0f);
            test_attention_blk_ring(bf, hd, 1.0f);
            test_attention_blk_free(bf, hd, 1, 0.0f);
            test_attention_blk_free(bf, hd, 0, 0.0f);
            test_attention_blk_free(bf, hd, 1, 0.75f);
            test_attention_blk_whole(bf, hd, 1, 1);
            test_attention_blk_whole(bf, hd, 0, 0);
        }
    }
    if (want("attention_blk")) test_attn_merge();
    if (want("cross_entropy")) test_dpo();
    if (want("adamw")) test_adamw_sr(0), test_adamw_sr(3);
    /* every registered entry point was loaded from its module */
    int nent = 0, nfound = 0;
    if (want("entries")) {
        for (int i = 0; i < cg_cuda_kernel_count(); i++) {
            const cg_cuda_kernel *k = cg_cuda_kernel_get(i);
            for (int e = 0; e < k->nentries; e++, nent++) nfound += get_fn(k->entries[e]) != NULL;
        }
        expect("every registered entry point loads", nfound == nent);
    }

#ifndef AXO_KERNELS_EMU
    for (int i = 0; i < nmods; i++) cuModuleUnload(mods[i].mod);
    cuDevicePrimaryCtxRelease(dev0);
#endif
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
