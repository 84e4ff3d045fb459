/* host_optimizer_bench.c — the optimizer step as the host runs it under
 * DeepSpeed-style CPU offload (offload_optimizer: the AdamW nodes of
 * opt_step run on the CPU through the CPU executor's code), timed with 1
 * thread and with every core, against the memory bandwidth the same
 * threads reach copying (the roofline: AdamW moves 28 bytes per f32
 * element, read p g m v, write p m v).
 *
 * usage: host_optimizer_bench [--elems N] [--reps R] [--kind adamw|sr|adamw8] [--check]
 *   --check: a small size, one repetition, and the results of every thread
 *   count compared bit for bit (what ctest runs). */
#include "ir/ir.h"
#include "runtime/cpu_kernels.h"
#include "runtime/exec.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct inputs {
    rt_buf lr, step, gs;
} inputs;

static const rt_buf *input_fn(void *ctx, const char *name) {
    inputs *in = ctx;
    if (!strcmp(name, "lr")) return &in->lr;
    if (!strcmp(name, "step")) return &in->step;
    if (!strcmp(name, "gscale")) return &in->gs;
    return NULL;
}

/* One opt_step with one optimizer node over [R, K]: "adamw" (f32), "sr"
 * (pure bf16, stochastic rounding) or "adamw8" (8-bit state). */
static char *program(const char *kind, int64_t R, int64_t K) {
    ax_buf b = {0};
    int bf = !strcmp(kind, "sr");
    const char *pt = bf ? "bf16" : "f32";
    ax_buf_printf(&b, "axo.ir 1\nmesh dp=1\n");
    ax_buf_printf(&b, "global @p : %s[%lld,%lld] param\nglobal @g : %s[%lld,%lld] grad\n", pt, (long long)R, (long long)K, pt,
                  (long long)R, (long long)K);
    if (!strcmp(kind, "adamw8")) {
        long long nb = (K + 255) / 256;
        ax_buf_printf(&b,
                      "global @m : u8[%lld,%lld] opt\nglobal @v : u8[%lld,%lld] opt\nglobal @am : f32[%lld,%lld] opt\n"
                      "global @av : f32[%lld,%lld] opt\n",
                      (long long)R, (long long)K, (long long)R, (long long)K, (long long)R, nb, (long long)R, nb);
    } else {
        ax_buf_printf(&b, "global @m : %s[%lld,%lld] opt\nglobal @v : %s[%lld,%lld] opt\n", pt, (long long)R, (long long)K, pt,
                      (long long)R, (long long)K);
    }
    ax_buf_printf(&b, "program opt_step {\n  %%lr = input() {name=\"lr\"} : f32[] input\n"
                      "  %%st = input() {name=\"step\"} : f32[] input\n  %%gs = input() {name=\"gscale\"} : f32[] input\n");
    if (!strcmp(kind, "adamw8"))
        ax_buf_printf(&b, "  adamw8(@p, @g, @m, @v, @am, @av, %%lr, %%st, %%gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
                          "weight_decay=0.01}\n}\n");
    else
        ax_buf_printf(&b, "  adamw(@p, @g, @m, @v, %%lr, %%st, %%gs) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01, "
                          "salt=1}\n}\n");
    return ax_buf_steal(&b);
}

/* Runs `reps` steps with `threads` threads from the same start; returns the
 * seconds per step and leaves p in *out (malloc'd) for the bit check. */
static double run(const char *kind, int64_t R, int64_t K, int threads, int reps, float **out) {
    char *txt = program(kind, R, K);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(txt, strlen(txt), "bench", &d);
    free(txt);
    rt_state st;
    rt_prog pr;
    memset(&st, 0, sizeof st);
    if (!m || ir_verify(m, &d) || rt_state_init(&st, m, &d) || rt_prog_init(&pr, m, ir_program_find(m, "opt_step"), &d)) {
        ax_diag_print(&d, stderr);
        exit(1);
    }
    int64_t n = R * K;
    uint32_t s = 12345;
    for (int gi = 0; gi < m->nglobals; gi++) { /* p, g random; the 8-bit state's codes and maxima plausible */
        rt_buf *b = &st.globals[gi];
        const char *name = m->globals[gi].name;
        for (int64_t i = 0; i < b->numel; i++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / 16777216.0f;
            float *f = (float *)b->data;
            f[i] = !strcmp(name, "m") || !strcmp(name, "v") ? (!strcmp(kind, "adamw8") ? (float)(s >> 24) : u * 1e-3f)
                   : !strcmp(name, "am") || !strcmp(name, "av") ? 1e-2f
                                                               : u - 0.5f;
            if (!strcmp(kind, "sr") || m->globals[gi].type.dtype == IR_BF16) f[i] = ax_round_bf16(f[i]);
        }
    }
    inputs in;
    rt_buf_alloc(&in.lr, ir_type_scalar(IR_F32));
    rt_buf_alloc(&in.step, ir_type_scalar(IR_F32));
    rt_buf_alloc(&in.gs, ir_type_scalar(IR_F32));
    rt_f(&in.lr)[0] = 1e-3f, rt_f(&in.gs)[0] = 1.0f;
    ck_set_threads(threads);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) { /* the first one warms the pages */
        rt_f(&in.step)[0] = (float)(r + 1);
        double t0 = now_s();
        if (rt_prog_run(&pr, &st, input_fn, &in, &d) != 0) {
            ax_diag_print(&d, stderr);
            exit(1);
        }
        double t = now_s() - t0;
        if (r > 0 || reps == 0) best = t < best ? t : best;
    }
    *out = malloc(sizeof(float) * (size_t)n);
    memcpy(*out, st.globals[ir_global_find(m, "p")].data, sizeof(float) * (size_t)n);
    rt_buf_free(&in.lr), rt_buf_free(&in.step), rt_buf_free(&in.gs);
    rt_prog_free(&pr);
    rt_state_free(&st);
    ir_module_destroy(m);
    ax_diag_free(&d);
    return best;
}

static double copy_gbs(int64_t n, int threads) { /* read + write bandwidth of a parallel copy */
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    memset(a, 1, sizeof(float) * (size_t)n);
    memset(b, 0, sizeof(float) * (size_t)n);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = now_s();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int t = 0; t < threads; t++) {
            int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
            memcpy(b + lo, a + lo, sizeof(float) * (size_t)(hi - lo));
        }
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    free(a), free(b);
    return 8.0 * (double)n / best / 1e9;
}

int main(int argc, char **argv) {
    int64_t elems = 32 << 20;
    int reps = 5, check = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--elems") && i + 1 < argc) elems = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--check")) check = 1;
        else if (!strcmp(argv[i], "--kind") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: host_optimizer_bench [--elems N] [--reps R] [--kind adamw|sr|adamw8] [--check]\n");
            return 2;
        }
    }
    if (check) elems = 3 * 4096 * 37, reps = 0; /* 7 chunks of the executor's split */
    const int64_t K = 4096, R = (elems + K - 1) / K;
    int maxt = omp_get_max_threads();
    int ts[3] = {1, maxt > 1 ? maxt : 2, 3};
    static const char *const kinds[] = {"adamw", "sr", "adamw8"};
    /* bytes per element moved: read p g m v, write p m v, 4 bytes each as the CPU executor holds every tensor
     * (bf16 values and 8-bit codes in floats) */
    static const double bytes[] = {28, 28, 28};
    int bad = 0;
    if (!check)
        printf("host optimizer step, %lld elements (%lld x %lld), best of %d; copy bandwidth: 1 thread %.1f GB/s, %d threads "
               "%.1f GB/s\n",
               (long long)(R * K), (long long)R, (long long)K, reps, copy_gbs(R * K, 1), maxt, copy_gbs(R * K, maxt));
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (only && strcmp(only, kinds[k])) continue;
        float *ref = NULL;
        double t1 = run(kinds[k], R, K, 1, reps, &ref);
        for (int j = 1; j < (check ? 3 : 2); j++) {
            float *got = NULL;
            double tn = run(kinds[k], R, K, ts[j], reps, &got);
            int same = memcmp(ref, got, sizeof(float) * (size_t)(R * K)) == 0;
            bad |= !same;
            if (check)
                printf("%s: %d threads %s 1 thread's result\n", kinds[k], ts[j], same ? "equals" : "DIFFERS FROM");
            else
                printf("%-7s 1 thread %8.1f ms (%5.1f GB/s) | %2d threads %8.1f ms (%5.1f GB/s), %.2fx | bits %s\n", kinds[k],
                       t1 * 1e3, bytes[k] * (double)(R * K) / t1 / 1e9, ts[j], tn * 1e3,
                       bytes[k] * (double)(R * K) / tn / 1e9, t1 / tn, same ? "equal" : "DIFFER");
            free(got);
        }
        free(ref);
    }
    return bad;
}
