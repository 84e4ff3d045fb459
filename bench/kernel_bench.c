/* kernel_bench.c — the kernel table of the GPU issue, on the CUDA executor.
 *
 * Every case is a one-op IR program at the shapes of the benchmark model
 * (bench/models/llama-3.2-1b-shape: hidden 2048, intermediate 8192, 32
 * heads of 64, 8 kv heads, vocab 128256) at sequence 4096, batch 1, bf16.
 * The op's time is that of its IR node as `axorun --trace` measures it:
 * CUDA events around the node on its stream (runtime/cuda_exec.c), median
 * over the timed runs. Memory-bound ops report the bytes their operands and
 * results must move at least once and the achieved GB/s against the
 * device's copy bandwidth (a 1 GiB device-to-device cudaMemcpy: 2 GiB moved),
 * the target being >= 80%. Compute-bound ops (attention, the fused
 * lm head) report TFLOP/s; bench/torch_ref.py --kernels measures torch's
 * scaled_dot_product_attention at the same shapes for the side by side.
 *
 * usage: kernel_bench [--dry] [--iters N] [--only SUBSTR] [--json FILE]
 *   --dry  no GPU needed: every case is prepared and run as a dry run (the
 *          executor checks every launch); times are then meaningless and
 *          nothing is printed but the case list. ctest runs this.
 * Prints a markdown table; --json writes one JSON object per line.
 * Exit: 0, 1 if a case failed, 77 if there is no GPU and --dry was not given.
 */
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/nvrtc.h"
#include "ir/ir.h"
#include "ir/liveness.h"
#include "runtime/cuda_exec.h"
#include "runtime/exec.h"
#include "runtime/trace.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AXO_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif


/* ---- cases ------------------------------------------------------------------------- */
typedef struct kcase {
    char name[80];
    char *ir;       /* module text, program "p"; node 0 is the op timed */
    double flops;   /* > 0: a compute-bound op, reported in TFLOP/s */
    double bytes;   /* > 0: overrides the operand + result bytes of node 0 */
    const char *attn; /* AXO_CUDA_ATTN for the case (NULL: default) */
} kcase;

static kcase cases[64];
static int ncases;

static void add(const char *name, double flops, double bytes, const char *attn, const char *fmt, ...) AX_PRINTF(5, 6);
static void add(const char *name, double flops, double bytes, const char *attn, const char *fmt, ...) {
    kcase *c = &cases[ncases++];
    snprintf(c->name, sizeof c->name, "%s", name);
    ax_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ax_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    c->ir = ax_buf_steal(&b);
    c->flops = flops;
    c->bytes = bytes;
    c->attn = attn;
}

#define HDR "axo.ir 1\nmesh dp=1\n"
enum { H = 2048, I = 8192, NH = 32, NKV = 8, HD = 64 };
static int S = 4096, V = 128256; /* --dry: 256 and 1024 (the dry run checks launches, not speed) */

static void make_cases(void) {
    char t[32];
    snprintf(t, sizeof t, "[1,%d,%d]", S, H);
    add("add (residual)", 0, 0, NULL,
        HDR "global @a : bf16%s act\nglobal @b : bf16%s act\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = add(@a, @b) : bf16%s act\n  store(@o, %%0)\n}\n",
        t, t, t, t);
    add("fused add(add(a,b),c) (q/k/v input gradients)", 0, 0, NULL,
        HDR "global @a : bf16%s act\nglobal @b : bf16%s act\nglobal @c : bf16%s act\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = fused(@a, @b, @c) {expr=\"add(x0,x1):bf16; add(t0,x2):bf16\"} : bf16%s act\n"
            "  store(@o, %%0)\n}\n",
        t, t, t, t, t);
    add("rmsnorm", 0, 0, NULL,
        HDR "global @x : bf16%s act\nglobal @w : bf16[%d] act\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = rmsnorm(@x, @w) {eps=1e-05} : bf16%s act\n  store(@o, %%0)\n}\n",
        t, H, t, t);
    add("rmsnorm_bwd", 0, 0, NULL,
        HDR "global @x : bf16%s act\nglobal @w : bf16[%d] act\nglobal @dy : bf16%s act\n"
            "global @o1 : bf16%s act\nglobal @o2 : bf16[%d] act\n"
            "program p {\n  %%0, %%1 = rmsnorm_bwd(@x, @w, @dy) {eps=1e-05} : bf16%s act, bf16[%d] act\n"
            "  store(@o1, %%0)\n  store(@o2, %%1)\n}\n",
        t, H, t, t, H, t, H);
    char q[48];
    snprintf(q, sizeof q, "[1,%d,%d,%d]", S, NH, HD);
    add("rope (q)", 0, 0, NULL,
        HDR "global @x : bf16%s act\nglobal @pos : i32[1,%d] act {hi=4096}\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = rope(@x, @pos) {theta=500000.0, inverse=0, rope_type=\"llama3\", factor=32.0, "
            "low_freq_factor=1.0, high_freq_factor=4.0, original_max=8192} : bf16%s act\n  store(@o, %%0)\n}\n",
        q, S, q, q);
    char m[32];
    snprintf(m, sizeof m, "[1,%d,%d]", S, I);
    add("swiglu", 0, 0, NULL,
        HDR "global @g : bf16%s act\nglobal @u : bf16%s act\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = swiglu(@g, @u) : bf16%s act\n  store(@o, %%0)\n}\n",
        m, m, m, m);
    add("swiglu_bwd", 0, 0, NULL,
        HDR "global @g : bf16%s act\nglobal @u : bf16%s act\nglobal @dy : bf16%s act\n"
            "global @o1 : bf16%s act\nglobal @o2 : bf16%s act\n"
            "program p {\n  %%0, %%1 = swiglu_bwd(@g, @u, @dy) : bf16%s act, bf16%s act\n"
            "  store(@o1, %%0)\n  store(@o2, %%1)\n}\n",
        m, m, m, m, m, m, m);
    /* the embedding reads only the S rows it gathers */
    add("embedding", 0, (double)S * 4 + 2.0 * S * H * 2, NULL,
        HDR "global @tab : bf16[%d,%d] act\nglobal @ids : i32[1,%d] act {hi=%d}\nglobal @o : bf16%s act\n"
            "program p {\n  %%0 = embedding(@tab, @ids) : bf16%s act\n  store(@o, %%0)\n}\n",
        V, H, S, V, t, t);
    add("embedding_bwd (the whole table written)", 0, 0, NULL,
        HDR "global @ids : i32[1,%d] act {hi=%d}\nglobal @dy : bf16%s act\nglobal @o : bf16[%d,%d] act\n"
            "program p {\n  %%0 = embedding_bwd(@ids, @dy) {vocab=%d} : bf16[%d,%d] act\n  store(@o, %%0)\n}\n",
        S, V, t, V, H, V, V, H);
    /* AdamW over one 2048 x 8192 matrix: f32 master, bf16 gradient, f32 moments (reads all, writes p, m, v) */
    const double np = (double)H * I;
    add("adamw (f32 master, bf16 grad, f32 moments)", 0, np * (4 + 2 + 4 + 4) + np * (4 + 4 + 4), NULL,
        HDR "global @p : f32[%d,%d] act\nglobal @g : bf16[%d,%d] act\nglobal @m : f32[%d,%d] act\n"
            "global @v : f32[%d,%d] act {gen=\"pos\"}\nglobal @lr : f32[] act {gen=\"value\", value=0.001}\n"
            "global @st : f32[] act {gen=\"value\", value=3.0}\nglobal @gs : f32[] act {gen=\"value\", value=1.0}\n"
            "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
            "weight_decay=0.01}\n}\n",
        H, I, H, I, H, I, H, I);
    add("sumsq (grad norm of one matrix)", 0, 0, NULL,
        HDR "global @g : bf16[%d,%d] act\nglobal @o : f32[] act\n"
            "program p {\n  %%0 = sumsq(@g) : f32[] act\n  store(@o, %%0)\n}\n",
        H, I);
    /* compute-bound: causal attention (half the S x S scores), GQA; bwd = 2.5 x fwd (FlashAttention's count) */
    char kv[48];
    snprintf(kv, sizeof kv, "[1,%d,%d,%d]", S, NKV, HD);
    double fa = 4.0 * S * (double)S * NH * HD / 2;
    int chunk = 128 < S ? 128 : S;
    const char *attn_kinds[2] = {NULL, "tc"};
    for (int a = 0; a < 2; a++) {
        char nm[80];
        snprintf(nm, sizeof nm, "attention fwd causal hd64%s", a ? " (AXO_CUDA_ATTN=tc)" : "");
        add(nm, fa, 0, attn_kinds[a],
            HDR "global @q : bf16%s act\nglobal @k : bf16%s act\nglobal @v : bf16%s act\n"
                "global @seg : i32[1,%d] act {hi=1}\nglobal @o : bf16%s act\nglobal @l : f32[1,%d,%d] act\n"
                "program p {\n  %%0, %%1 = attention(@q, @k, @v, @seg) {scale=0.125, causal=1} : bf16%s act, f32[1,%d,%d] act\n"
                "  store(@o, %%0)\n  store(@l, %%1)\n}\n",
            q, kv, kv, S, q, NH, S, q, NH, S);
        snprintf(nm, sizeof nm, "attention bwd causal hd64%s", a ? " (AXO_CUDA_ATTN=tc)" : "");
        add(nm, 2.5 * fa, 0, attn_kinds[a],
            HDR "global @q : bf16%s act\nglobal @k : bf16%s act\nglobal @v : bf16%s act\n"
                "global @seg : i32[1,%d] act {hi=1}\nglobal @out : bf16%s act\nglobal @lse : f32[1,%d,%d] act {scale=3.0}\n"
                "global @do : bf16%s act\nglobal @dq : bf16%s act\nglobal @dk : bf16%s act\nglobal @dv : bf16%s act\n"
                "program p {\n  %%0, %%1, %%2 = attention_bwd(@q, @k, @v, @seg, @out, @lse, @do) {scale=0.125, causal=1} : "
                "bf16%s act, bf16%s act, bf16%s act\n  store(@dq, %%0)\n  store(@dk, %%1)\n  store(@dv, %%2)\n}\n",
            q, kv, kv, S, q, NH, S, q, q, kv, kv, q, kv, kv);
    }
    /* the fused lm head + loss: 3 GEMMs of 2 S H V flops each, in 128-row chunks */
    add("linear_cross_entropy (fused lm head + loss, 128-row chunks)", 6.0 * S * (double)H * V, 0, NULL,
        HDR "global @h : bf16%s act\nglobal @w : bf16[%d,%d] act {scale=0.02}\nglobal @tg : i32[1,%d] act {hi=%d}\n"
            "global @ds : f32[] act {gen=\"value\", value=0.000244140625}\nglobal @ol : f32[] act\n"
            "global @oh : bf16%s act\nglobal @ow : bf16[%d,%d] act\n"
            "program p {\n  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @ds) {ignore_index=-100, chunk=%d} : "
            "f32[] act, bf16%s act, bf16[%d,%d] act\n  store(@ol, %%0)\n  store(@oh, %%1)\n  store(@ow, %%2)\n}\n",
        t, V, H, S, V, t, V, H, chunk, t, V, H);
}

/* ---- running ------------------------------------------------------------------------ */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static void fill(const ir_module *m, rt_state *st, int g) {
    const ir_global *G = &m->globals[g];
    rt_buf *b = &st->globals[g];
    const char *gen = ir_attr_str(G->attrs, G->nattrs, "gen", "rand");
    double scale = ir_attr_float(G->attrs, G->nattrs, "scale", 1.0), value = ir_attr_float(G->attrs, G->nattrs, "value", 1.0);
    int64_t hi = ir_attr_int(G->attrs, G->nattrs, "hi", 16);
    for (int64_t i = 0; i < b->numel; i++) {
        if (G->type.dtype == IR_I32) {
            rt_i(b)[i] = (int32_t)(urand() * (double)hi);
            continue;
        }
        double r = !strcmp(gen, "value") ? value : scale * (2 * urand() - 1);
        if (!strcmp(gen, "pos")) r = fabs(r) + 1e-3;
        rt_f(b)[i] = G->type.dtype == IR_BF16 ? ax_round_bf16((float)r) : (float)r;
    }
}

/* Bytes node 0 of p must move at least once: its operands and results. */
static double node_bytes(const ir_module *m, const ir_program *p) {
    const ir_node *n = &p->nodes[0];
    double b = 0;
    for (int k = 0; k < n->nin; k++) b += (double)ir_local_bytes(m, ir_ref_type(m, p, n->in[k]));
    for (int k = 0; k < n->nout; k++) b += (double)ir_local_bytes(m, &p->values[n->out[k]].type);
    return b;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median time (us) of node 0 over iters runs; -1 on failure. */
static double time_case(rt_cuda_dev *dev, const kcase *c, int iters, int dry, double *bytes, ax_diag *d) {
    ir_module *m = ir_parse(c->ir, strlen(c->ir), c->name, d);
    if (!m || ir_verify(m, d) != 0) {
        ir_module_destroy(m);
        return -1;
    }
    const ir_program *p = ir_program_find(m, "p");
    *bytes = c->bytes > 0 ? c->bytes : node_bytes(m, p);
    rt_state host;
    memset(&host, 0, sizeof host);
    rt_cuda_state st;
    rt_cuda_prog pr;
    memset(&st, 0, sizeof st);
    memset(&pr, 0, sizeof pr);
    if (c->attn) setenv("AXO_CUDA_ATTN", c->attn, 1);
    double med = -1;
    int rc = rt_state_init(&host, m, d);
    if (!rc) {
        for (int g = 0; g < m->nglobals; g++) fill(m, &host, g);
        rc = rt_cuda_state_init(&st, dev, m, d) || rt_cuda_prog_init(&pr, &st, p, d);
    }
    rt_cuda_prog *pp = &pr;
    if (!rc) rc = rt_cuda_state_alloc(&st, &pp, 1, d);
    for (int g = 0; g < m->nglobals && !rc; g++) rc = rt_cuda_upload(&st, g, &host.globals[g], d);
    rt_trace *tr = rt_trace_create();
    double *ts = calloc((size_t)iters + 1, sizeof *ts);
    int nts = 0;
    for (int it = 0; it < 3 + iters && !rc; it++) { /* 3 warm-up runs (kernel loading, caches) */
        st.trace = it >= 3 ? tr : NULL;
        rt_trace_clear(tr);
        rc = rt_cuda_prog_run(&pr, &st, NULL, NULL, d);
        for (int64_t e = 0; st.trace && e < rt_trace_count(tr) && !rc; e++) {
            const char *nm;
            int node;
            double dur;
            if (rt_trace_get(tr, e, &nm, &node, &dur) == 0 && node == 0) ts[nts++] = dur;
        }
    }
    if (!rc && nts > 0) {
        qsort(ts, (size_t)nts, sizeof *ts, cmp_d);
        med = dry ? 0 : ts[nts / 2];
    }
    free(ts);
    rt_trace_destroy(tr);
    if (c->attn) unsetenv("AXO_CUDA_ATTN");
    rt_cuda_prog_free(&pr);
    rt_cuda_state_free(&st);
    rt_state_free(&host);
    ir_module_destroy(m);
    return rc ? -1 : med;
}

/* Device-to-device copy bandwidth (GB/s, bytes read + written), -1 without a GPU. */
static double copy_bandwidth(void) {
#ifdef AXO_HAVE_CUDA
    size_t n = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0, e1;
    if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) {
        cudaFree(a);
        cudaGetLastError();
        return -1;
    }
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    float best = 1e30f;
    for (int i = 0; i < 6; i++) {
        cudaEventRecord(e0, 0);
        cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, 0);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (i > 0 && ms < best) best = ms; /* the first is a warm-up */
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * (double)n / (best * 1e-3) / 1e9;
#else
    return -1;
#endif
}

int main(int argc, char **argv) {
    int dry = 0, iters = 20;
    const char *only = NULL, *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry")) dry = 1;
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, "kernel_bench: --iters: expected a positive integer, found \"%s\"\n", argv[i]);
                return 2;
            }
            iters = (int)v;
        }
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else {
            fprintf(stderr, "usage: kernel_bench [--dry] [--iters N] [--only SUBSTR] [--json FILE]\n");
            return 2;
        }
    }
    char why[256] = "";
    if (!dry && rt_cuda_device_count(why, sizeof why) < 1) {
        printf("SKIP: no CUDA device (%s); --dry checks the cases without one\n", why);
        return 77;
    }
    if (dry) S = 256, V = 1024;
    make_cases();
    rt_cuda_opts o = {.kernels = {.module_of = cg_cuda_kernel_module_of, .compile = cg_cuda_kernel_compile, .compile_fused = cg_fused_compile},
                      .dry_run = dry, .dry_mem_bytes = (int64_t)141 << 30};
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_dev *dev = NULL;
    if (rt_cuda_dev_open(&dev, &o, &d) != 0) {
        ax_diag_print(&d, stderr);
        return 1;
    }
    char name[256];
    double bw = dry ? -1 : copy_bandwidth();
    FILE *jf = json ? fopen(json, "w") : NULL;
    printf("device: %s; copy bandwidth %.0f GB/s (1 GiB device-to-device, read + write)\n\n",
           rt_cuda_dev_name(dev, name, sizeof name), bw);
    printf("| kernel (1B shape, seq 4096, bf16) | time (us) | bytes moved | GB/s | %% of copy | TFLOP/s |\n");
    printf("|---|---|---|---|---|---|\n");
    if (jf) fprintf(jf, "{\"copy_gbps\": %.1f}\n", bw);
    int failed = 0;
    for (int i = 0; i < ncases; i++) {
        const kcase *c = &cases[i];
        if (only && !strstr(c->name, only)) continue;
        double bytes = 0, us = time_case(dev, c, dry ? 1 : iters, dry, &bytes, &d);
        if (us < 0) {
            ax_diag_print(&d, stderr);
            ax_diag_free(&d);
            ax_diag_init(&d);
            printf("| %s | FAILED | | | | |\n", c->name);
            failed = 1;
            continue;
        }
        if (dry) {
            printf("| %s | (dry run) | %.0f MB | | | |\n", c->name, bytes / 1e6);
            continue;
        }
        double gbps = bytes / (us * 1e-6) / 1e9, tf = c->flops > 0 ? c->flops / (us * 1e-6) / 1e12 : 0;
        if (c->flops > 0)
            printf("| %s | %.1f | %.0f MB | | | %.1f |\n", c->name, us, bytes / 1e6, tf);
        else
            printf("| %s | %.1f | %.0f MB | %.0f | %.0f%% | |\n", c->name, us, bytes / 1e6, gbps, bw > 0 ? 100 * gbps / bw : 0);
        if (jf)
            fprintf(jf, "{\"kernel\": \"%s\", \"us\": %.2f, \"bytes\": %.0f, \"gbps\": %.1f, \"tflops\": %.2f}\n", c->name, us,
                    bytes, c->flops > 0 ? 0 : gbps, tf);
    }
    if (jf) fclose(jf);
    rt_cuda_dev_close(dev);
    ax_diag_free(&d);
    for (int i = 0; i < ncases; i++) free(cases[i].ir);
    return failed;
}
