/* gpu_exec_check.c — the CUDA executor against the CPU reference executor,
 * on a GPU. Built with the project when CUDA is found; where no GPU is it
 * prints SKIP and exits 77 (ctest reports it skipped). Driven by
 * tests/gpu/run.sh.
 *
 * Two kinds of case, each printed as one "ok"/"FAIL" line:
 *  - op: a small IR program using one op (f32 and bf16 variants, odd shapes,
 *    random inputs that are never zero, index inputs in range) runs on both
 *    executors; every output global is compared element by element. The GPU
 *    runs with AXO_CUDA_POISON semantics (opts.poison): the arena is filled
 *    with NaN before the run, so a result element a kernel never writes
 *    stays NaN and fails; the executor also checks every pointer argument
 *    against the node's own buffers. Tolerance |gpu - cpu| <= rtol |cpu| +
 *    afrac max|cpu|, per case for f32, bf16-sized (rtol 1.6e-2, afrac 1e-2)
 *    for bf16 results; globals with check=2 must be bit for bit the CPU's
 *    (LoRA dropout: the same mask and values; NEFTune: the same noise; NF4 dequantization; packed
 *    nf4/u8 weights, which go up and come back down through the packing;
 *    pure-bf16 AdamW's stochastically rounded p, m, v, also as rank 1 of
 *    dp 2, whose block draws the bits of its elements' global indices;
 *    8-bit AdamW state, adamw8: p, the u8 codes and the f32 block maxima).
 *  - train: a tiny model (configs/models/tiny-llama, tiny-qwen2, tiny-qwen3,
 *    with the default fused linear cross entropy, one case without it,
 *    and head_dim 64/128 variants that take the FlashAttention-style
 *    kernels), f32 and bf16, some with gradient checkpointing, trained for a
 *    few steps on the same batches by both executors; also on 2-4 local
 *    ranks sharing the GPU (one thread per rank, each with a CPU and a CUDA
 *    session; host-staged collectives): sequence parallelism (sp 2, dp 2 x
 *    sp 2, ring attention) and CPU offload (ZeRO-3 + offload_all, ZeRO-1/2 +
 *    offload_optimizer: pinned memory and asynchronous copies as the
 *    executor's default, and ZeRO-3 + offload_all with pin_memory false),
 *    compared rank by rank; pure bf16 (bfloat16: true: bf16 AdamW state,
 *    stochastic rounding) on 1 rank, ZeRO-2, ZeRO-3 and ZeRO-2 +
 *    offload_optimizer; 8-bit AdamW state (adamw_bnb_8bit: u8 moments) on
 *    1 rank f32 and pure bf16, and ZeRO-2 bf16; eval_step (val_set_size:
 *    forward only, dropout off) after training on LoRA with dropout, dp 2 x
 *    sp 2 ZeRO-3 and ZeRO-3 + offload_all; NEFTune (neftune_noise_alpha:
 *    the noise op, keys from each session) on 1 rank bf16 with eval_step and
 *    on dp 2 x sp 2 ZeRO-3; rl: dpo (two fused lm-head passes around
 *    dpo_loss, the reference from eval_step) on 1 rank f32, bf16 + LoRA and
 *    ZeRO-3 x 2; per step the loss
 *    (bf16: within 1e-2 relative, f32: 1e-4), the global gradient norm (same
 *    bounds) and every parameter's gradient norm (f32 1e-3, bf16 5e-2) are
 *    compared.
 *
 * Without a GPU it runs a preflight instead, so that a broken case is found
 * here rather than in a GPU session's few minutes: every case's IR parses
 * and verifies, the CPU reference runs it, and the CUDA executor prepares
 * and runs it as a dry run (every launch, copy and GEMM validated, nothing
 * computed, nothing compared); then it prints SKIP and exits 77.
 *
 * With --emu (where the build has the emulator: tests/unit/emu) every case
 * runs compared, GPU or not, on the CUDA executor's emulated device: device
 * memory in host memory, each kernel's source compiled as host C++ and run
 * on a SIMT emulator, fused kernels compiled on first use, GEMMs on the
 * host (runtime/cuda_exec.h, "Emulated device"); the tolerances are the
 * GPU's. What it cannot show: concurrency, cuBLASLt, NVRTC's code, speed.
 *
 * The emulated device reports 2 multiprocessors (--sms N: N), so that grids
 * sized by the SM count stay small and grid-stride loops go round.
 *
 * usage: gpu_exec_check [--list] [--emu [--sms N]] [--from K] [--to K] [--only SUBSTR] [--skip SUBSTR] [--steps N]
 * Exit: 0 all passed; 1 some failed (also a failed preflight); 3 the CUDA
 * context was lost (a kernel fault): "RESUME K" names the next case, so
 * run.sh reruns from there and one fault does not hide the other checks;
 * 77 no GPU (preflight passed); 2 usage. */
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/nvrtc.h"
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/cpu_kernels.h"
#include "runtime/cuda_exec.h"
#include "runtime/launch.h"
#include "runtime/train.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifdef AXO_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef AXO_HAVE_EMU
#include "emu/emu_device.h"
#endif

#ifndef AXO_SOURCE_DIR
#define AXO_SOURCE_DIR "."
#endif

static int n_pass, n_fail;
static rt_cuda_dev *g_dev;
static rt_cuda_opts g_opts;
static int g_steps = 6;
static int g_dry; /* no GPU: preflight (dry run, no comparisons) */
static int g_emu_sms = 2; /* --sms N: the multiprocessors the emulated device reports */
static int g_emu; /* --emu: the emulated device (host memory, kernels on the host SIMT emulator), compared */

static void result(int ok, const char *name, const char *fmt, ...) AX_PRINTF(3, 4);
static void result(int ok, const char *name, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ok) n_pass++;
    else n_fail++;
    printf("%s %-46s %s\n", ok ? "ok  " : "FAIL", name, msg);
    fflush(stdout);
}


/* ---- random data (never zero) ------------------------------------------------- */
static _Thread_local uint64_t rng = 0x2545f4914f6cdd1dull; /* per thread: ranks run on threads */
static double urand(void) { /* (0, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float rnd(double scale, int positive) {
    double v = (0.05 + 0.95 * urand()) * scale;
    return (float)(positive || urand() < 0.5 ? v : -v);
}

/* Fills global g of host state st as its attributes say:
 *   gen="rand" (default for floats, attr scale), "pos" (positive), "value"
 *   (attr value), "nan" (results), "ids" (i32 in [0, hi)), "tgt" (ids with
 *   every 5th -100), "seg" (i32 [B,S]: 2-3 packed segments per row), "iota"
 *   (i32 [B,S]: off + the position in the row), "value" (i32: attr value). A float global with attr
 *   zero=i has element i set to 0 (a pair that dpo_loss's scale drops).
 *   nf4 globals get random codes 0..15 and u8 globals random steps in
 *   [0, hi), one float each as the CPU executor holds them. */
static void fill_global(const ir_module *m, rt_state *st, int g) {
    const ir_global *G = &m->globals[g];
    rt_buf *b = &st->globals[g];
    const char *gen = ir_attr_str(G->attrs, G->nattrs, "gen", G->type.dtype == IR_I32 ? "ids" : "rand");
    double scale = ir_attr_float(G->attrs, G->nattrs, "scale", 1.0);
    int64_t hi = ir_attr_int(G->attrs, G->nattrs, "hi", 16), zero = ir_attr_int(G->attrs, G->nattrs, "zero", -1);
    for (int64_t i = 0; i < b->numel; i++) {
        if (G->type.dtype == IR_I32) {
            int32_t v = (int32_t)(urand() * (double)hi);
            if (!strcmp(gen, "tgt") && i % 5 == 3) v = -100;
            if (!strcmp(gen, "seg")) {
                int64_t S = G->type.dims[G->type.rank - 1], s = i % S, row = i / S;
                v = s < S / 3 + row ? 0 : s < (2 * S) / 3 ? 1 : 2;
            }
            if (!strcmp(gen, "value")) v = (int32_t)ir_attr_int(G->attrs, G->nattrs, "value", 0);
            if (!strcmp(gen, "iota"))
                v = (int32_t)(i % G->type.dims[G->type.rank - 1] + ir_attr_int(G->attrs, G->nattrs, "off", 0));
            rt_i(b)[i] = v;
            continue;
        }
        if (G->type.dtype == IR_NF4 || G->type.dtype == IR_U8) {
            rt_f(b)[i] = (float)(int64_t)(urand() * (G->type.dtype == IR_NF4 ? 16.0 : (double)hi));
            continue;
        }
        float v;
        if (!strcmp(gen, "nan")) v = NAN;
        else if (!strcmp(gen, "value")) v = (float)ir_attr_float(G->attrs, G->nattrs, "value", 1.0);
        else v = rnd(scale, !strcmp(gen, "pos"));
        if (i == zero) v = 0.0f;
        rt_f(b)[i] = G->type.dtype == IR_BF16 && !isnan(v) ? ax_round_bf16(v) : v;
    }
}

/* ---- op cases ---------------------------------------------------------------------- */
typedef struct opcase {
    char name[128];
    char *ir;         /* module text with program "p"; globals with check=1 are compared (check=2: bit for bit) */
    double rtol, afrac; /* for f32 results */
    const char *attn; /* AXO_CUDA_ATTN for this case (NULL: default) */
    const char *moe;  /* AXO_CUDA_MOE for this case (NULL: default) */
    int dp_rank;      /* both executors run as this rank of the dp axis (its blocks' offsets) */
} opcase;

static opcase ops[320];
static int nops;

static void add_op(const char *name, double rtol, double afrac, const char *attn, const char *fmt, ...)
    AX_PRINTF(5, 6);
static void add_op(const char *name, double rtol, double afrac, const char *attn, const char *fmt, ...) {
    if (nops >= (int)AX_ARRAY_LEN(ops)) return;
    opcase *c = &ops[nops++];
    snprintf(c->name, sizeof c->name, "op %s", name);
    ax_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ax_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    c->ir = ax_buf_steal(&b);
    c->rtol = rtol;
    c->afrac = afrac;
    c->attn = attn;
}

#define HDR "axo.ir 1\nmesh dp=1\n"
/* The grad-norm sum as fuse makes it: one fused node over 20 f32[] values. */
static void add_fused_sum(void) {
    ax_buf b = {0}, e = {0};
    ax_buf_puts(&b, HDR);
    for (int k = 0; k < 20; k++) ax_buf_printf(&b, "global @s%d : f32[] act\n", k);
    ax_buf_puts(&b, "global @o : f32[] act {gen=\"nan\", check=1}\nprogram p {\n  %0 = fused(");
    ax_buf_puts(&e, "add(x0,x1):f32");
    for (int k = 0; k < 20; k++) ax_buf_printf(&b, "%s@s%d", k ? ", " : "", k);
    for (int k = 2; k < 20; k++) ax_buf_printf(&e, "; add(t%d,x%d):f32", k - 2, k);
    ax_buf_printf(&b, ") {expr=\"%s\"} : f32[] act\n  store(@o, %%0)\n}\n", e.data);
    add_op("fused sum of 20 scalars", 0, 0, NULL, "%s", b.data);
    ax_buf_free(&b);
    ax_buf_free(&e);
}

static void make_ops(void) {
    add_fused_sum();
    const char *dts[2] = {"f32", "bf16"};
    for (int k = 0; k < 2; k++) {
        const char *t = dts[k];
        char nm[200];
#define NM(s) (snprintf(nm, sizeof nm, "%s %s", s, t), nm)
        add_op(NM("add"), 0, 0, NULL,
               HDR "global @a : %s[37,53] act\nglobal @b : %s[37,53] act\nglobal @o : %s[37,53] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = add(@a, @b) : %s[37,53] act\n  store(@o, %%0)\n}\n",
               t, t, t, t);
        add_op(NM("mul"), 0, 0, NULL,
               HDR "global @a : %s[1001] act\nglobal @b : %s[1001] act\nglobal @o : %s[1001] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = mul(@a, @b) : %s[1001] act\n  store(@o, %%0)\n}\n",
               t, t, t, t);
        add_op(NM("scale"), 0, 0, NULL,
               HDR "global @a : %s[100003] act\nglobal @o : %s[100003] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = scale(@a) {alpha=-0.37} : %s[100003] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("reshape"), 0, 0, NULL,
               HDR "global @a : %s[6,35] act\nglobal @o : %s[3,70] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = reshape(@a) {shape=[3, 70]} : %s[3,70] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("bias_add"), 0, 0, NULL,
               HDR "global @x : %s[37,53] act\nglobal @b : %s[53] act\nglobal @o : %s[37,53] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = bias_add(@x, @b) : %s[37,53] act\n  store(@o, %%0)\n}\n",
               t, t, t, t);
        add_op(NM("bias_grad"), 1e-5, 1e-6, NULL,
               HDR "global @dy : %s[4,129,77] act\nglobal @o : %s[77] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = bias_grad(@dy) : %s[77] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        for (int a = 0; a < 2; a++) { /* SwiGLU, and Gemma's GeGLU (tanh GELU) */
            const char *op = a ? "geglu" : "swiglu";
            char n2[64];
            snprintf(n2, sizeof n2, "%s", op);
            add_op(NM(n2), 2e-7, 0, NULL,
                   HDR "global @g : %s[33,91] act {scale=4.0}\nglobal @u : %s[33,91] act\n"
                       "global @o : %s[33,91] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = %s(@g, @u) : %s[33,91] act\n  store(@o, %%0)\n}\n",
                   t, t, t, op, t);
            snprintf(n2, sizeof n2, "%s_bwd", op);
            add_op(NM(n2), 2e-7, 0, NULL,
                   HDR "global @g : %s[33,91] act {scale=4.0}\nglobal @u : %s[33,91] act\nglobal @dy : %s[33,91] act\n"
                       "global @o1 : %s[33,91] act {gen=\"nan\", check=1}\nglobal @o2 : %s[33,91] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = %s_bwd(@g, @u, @dy) : %s[33,91] act, %s[33,91] act\n"
                       "  store(@o1, %%0)\n  store(@o2, %%1)\n}\n",
                   t, t, t, t, t, op, t, t);
        }
        add_op(NM("fused geglu+convert"), 2e-7, 0, NULL,
               HDR "global @g : %s[33,96] act {scale=4.0}\nglobal @u : %s[33,96] act\n"
                   "global @o : f32[33,96] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = fused(@g, @u) {expr=\"geglu(x0,x1):%s; convert(t0):f32\"} : f32[33,96] act\n"
                   "  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("rmsnorm offset 1 (Gemma) + bwd"), 2e-5, 2e-6, NULL,
               HDR "global @x : %s[33,1024] act\nglobal @w : %s[1024] act\nglobal @dy : %s[33,1024] act\n"
                   "global @o : %s[33,1024] act {gen=\"nan\", check=1}\nglobal @dx : %s[33,1024] act {gen=\"nan\", check=1}\n"
                   "global @dw : %s[1024] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = rmsnorm(@x, @w) {eps=1e-06, offset=1.0} : %s[33,1024] act\n"
                   "  %%1, %%2 = rmsnorm_bwd(@x, @w, @dy) {eps=1e-06, offset=1.0} : %s[33,1024] act, %s[1024] act\n"
                   "  store(@o, %%0)\n  store(@dx, %%1)\n  store(@dw, %%2)\n}\n",
               t, t, t, t, t, t, t, t, t);
        /* fused chains (passes/fuse.c, codegen/fusegen.c): the vector path (53 columns: scalar; 64: vector),
         * a bias read by column, swiglu's double SiLU, and a wide scalar sum (the grad norm's shape) */
        for (int cols = 53; cols <= 64; cols += 11) {
            char n2[64];
            snprintf(n2, sizeof n2, "fused mul+bias_add+scale+add [37,%d]", cols);
            add_op(NM(n2), 0, 0, NULL,
                   HDR "global @a : %s[37,%d] act\nglobal @b : %s[37,%d] act\nglobal @c : %s[%d] act\n"
                       "global @o : %s[37,%d] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = fused(@a, @b, @c) {expr=\"mul(x0,x1):%s; bias_add(t0,x2):%s; "
                       "scale(t1,-0.37):%s; add(t2,x0):%s\"} : %s[37,%d] act\n  store(@o, %%0)\n}\n",
                   t, cols, t, cols, t, cols, t, cols, t, t, t, t, t, cols);
        }
        add_op(NM("fused swiglu+convert"), 2e-7, 0, NULL,
               HDR "global @g : %s[33,96] act {scale=4.0}\nglobal @u : %s[33,96] act\n"
                   "global @o : f32[33,96] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = fused(@g, @u) {expr=\"swiglu(x0,x1):%s; convert(t0):f32\"} : f32[33,96] act\n"
                   "  store(@o, %%0)\n}\n",
               t, t, t);
        int Hs[2] = {1024, 1000}; /* vector path; scalar path (bf16: 1000 % 8 != 0) */
        for (int h = 0; h < 2; h++) {
            char n2[64];
            snprintf(n2, sizeof n2, "rmsnorm H=%d", Hs[h]);
            add_op(NM(n2), 2e-6, 1e-7, NULL,
                   HDR "global @x : %s[3,22,%d] act\nglobal @w : %s[%d] act\nglobal @o : %s[3,22,%d] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = rmsnorm(@x, @w) {eps=1e-05} : %s[3,22,%d] act\n  store(@o, %%0)\n}\n",
                   t, Hs[h], t, Hs[h], t, Hs[h], t, Hs[h]);
            snprintf(n2, sizeof n2, "rmsnorm_bwd H=%d", Hs[h]);
            add_op(NM(n2), 2e-5, 2e-6, NULL,
                   HDR "global @x : %s[67,%d] act\nglobal @w : %s[%d] act\nglobal @dy : %s[67,%d] act\n"
                       "global @o1 : %s[67,%d] act {gen=\"nan\", check=1}\nglobal @o2 : %s[%d] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = rmsnorm_bwd(@x, @w, @dy) {eps=1e-06} : %s[67,%d] act, %s[%d] act\n"
                       "  store(@o1, %%0)\n  store(@o2, %%1)\n}\n",
                   t, Hs[h], t, Hs[h], t, Hs[h], t, Hs[h], t, Hs[h], t, Hs[h], t, Hs[h]);
        }
        for (int inv = 0; inv < 2; inv++) {
            char n2[64];
            snprintf(n2, sizeof n2, "rope llama3 hd16 inverse=%d", inv);
            add_op(NM(n2), 1e-6, 1e-7, NULL,
                   HDR "global @x : %s[2,37,3,16] act\nglobal @pos : i32[2,37] act {hi=2000}\n"
                       "global @o : %s[2,37,3,16] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = rope(@x, @pos) {theta=10000.0, inverse=%d, rope_type=\"llama3\", factor=8.0, "
                       "low_freq_factor=1.0, high_freq_factor=4.0, original_max=64} : %s[2,37,3,16] act\n"
                       "  store(@o, %%0)\n}\n",
                   t, t, inv, t);
        }
        for (int lng = 0; lng < 2; lng++) { /* Phi-4-mini's: 48 of 64 pairs, LongRoPE, the max position picks */
            ax_buf f = {0}, g = {0};
            for (int i = 0; i < 48; i++) ax_buf_printf(&f, "%s%.1f", i ? ", " : "", 1.0 + 0.1 * i);
            for (int i = 0; i < 48; i++) ax_buf_printf(&g, "%s%.1f", i ? ", " : "", 1.0 + 1.5 * i);
            char n2[64];
            snprintf(n2, sizeof n2, "rope longrope partial hd128, max position %d", 31 + lng);
            add_op(NM(n2), 1e-6, 1e-7, NULL,
                   HDR "global @x : %s[2,21,3,128] act\nglobal @pos : i32[2,21] act {hi=40}\n"
                       "global @mp : i32[] act {gen=\"value\", value=%d}\n"
                       "global @o : %s[2,21,3,128] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = rope(@x, @pos, @mp) {theta=10000.0, inverse=1, rope_type=\"longrope\", "
                       "original_max=32, rotary_dim=96, attention_factor=1.1902380714238083, short_factor=[%s], "
                       "long_factor=[%s]} : %s[2,21,3,128] act\n  store(@o, %%0)\n}\n",
                   t, 31 + lng, t, f.data, g.data, t);
            ax_buf_free(&f);
            ax_buf_free(&g);
        }
        for (int inv = 0; inv < 2; inv++) { /* GLM: the interleaved pairs of the first half of each head */
            char n2[64];
            snprintf(n2, sizeof n2, "rope glm interleaved partial hd16 inverse=%d", inv);
            add_op(NM(n2), 1e-6, 1e-7, NULL,
                   HDR "global @x : %s[2,23,3,16] act\nglobal @pos : i32[2,23] act {hi=3000}\n"
                       "global @o : %s[2,23,3,16] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = rope(@x, @pos) {theta=10000.0, inverse=%d, rotary_dim=8, interleave=1} : "
                       "%s[2,23,3,16] act\n  store(@o, %%0)\n}\n",
                   t, t, inv, t);
        }
        /* Qwen2-MoE's shared-expert gate and its gradient (inputs up to +-8: saturated gates too) */
        add_op(NM("sigmoid, sigmoid_bwd"), 1e-6, 1e-7, NULL,
               HDR "global @x : %s[5,37] act {scale=8.0}\nglobal @dy : %s[5,37] act\n"
                   "global @o1 : %s[5,37] act {gen=\"nan\", check=1}\nglobal @o2 : %s[5,37] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = sigmoid(@x) : %s[5,37] act\n  %%1 = sigmoid_bwd(%%0, @dy) : %s[5,37] act\n"
                   "  store(@o1, %%0)\n  store(@o2, %%1)\n}\n",
               t, t, t, t, t, t);
        add_op(NM("rope yarn hd64"), 1e-6, 1e-7, NULL,
               HDR "global @x : %s[1,19,2,64] act\nglobal @pos : i32[1,19] act {hi=4096}\n"
                   "global @o : %s[1,19,2,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = rope(@x, @pos) {theta=1000000.0, inverse=0, rope_type=\"yarn\", factor=4.0, "
                   "original_max=1024, attention_factor=1.1386294361119891, beta_fast=32.0, beta_slow=1.0, truncate=1} : "
                   "%s[1,19,2,64] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        for (int inv = 0; inv < 2; inv++) { /* Ministral 3's queries: yarn, then 1 + 0.1 ln(1 + floor(pos / 1024)) */
            char n2[64];
            snprintf(n2, sizeof n2, "rope yarn + query scale hd64 inverse=%d", inv);
            add_op(NM(n2), 1e-6, 1e-7, NULL,
                   HDR "global @x : %s[1,19,2,64] act\nglobal @pos : i32[1,19] act {hi=4096}\n"
                       "global @o : %s[1,19,2,64] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0 = rope(@x, @pos) {theta=1000000.0, inverse=%d, rope_type=\"yarn\", factor=16.0, "
                       "original_max=1024, beta_fast=32.0, beta_slow=1.0, qscale_beta=0.1, qscale_max=1024} : "
                       "%s[1,19,2,64] act\n  store(@o, %%0)\n}\n",
                   t, t, inv, t);
        }
        for (int norm = 0; norm < 2; norm++) { /* mixture of experts: 5 experts (one of them often idle), top 2 */
            char n2[96];
            snprintf(n2, sizeof n2, "moe_route, moe_ffn and their backwards, norm=%d", norm);
            add_op(NM(n2), 2e-5, 2e-6, NULL,
                   HDR "global @l : %s[3,37,5] act {scale=4.0}\nglobal @x : %s[3,37,72] act\nglobal @wgu : %s[5,80,72] act\n"
                       "global @wd : %s[5,72,40] act\nglobal @dy : %s[3,37,72] act\n"
                       "global @ow : %s[3,37,2] act {gen=\"nan\", check=1}\nglobal @oi : i32[3,37,2] act {check=2}\n"
                       "global @oy : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @ogu : %s[3,37,2,80] act {gen=\"nan\", check=1}\n"
                       "global @odx : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @odw : %s[3,37,2] act {gen=\"nan\", check=1}\n"
                       "global @odgu : %s[5,80,72] act {gen=\"nan\", check=1}\nglobal @odd : %s[5,72,40] act {gen=\"nan\", check=1}\n"
                       "global @odl : %s[3,37,5] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = moe_route(@l) {k=2, norm=%d} : %s[3,37,2] act, i32[3,37,2] act\n"
                       "  %%2, %%3 = moe_ffn(@x, %%1, %%0, @wgu, @wd) : %s[3,37,72] act, %s[3,37,2,80] act\n"
                       "  %%4, %%5, %%6, %%7 = moe_ffn_bwd(@x, %%1, %%0, @wgu, @wd, %%3, @dy) : %s[3,37,72] act, %s[3,37,2] act, "
                       "%s[5,80,72] act, %s[5,72,40] act\n"
                       "  %%8 = moe_route_bwd(@l, %%1, %%5) {k=2, norm=%d} : %s[3,37,5] act\n"
                       "  store(@ow, %%0)\n  store(@oi, %%1)\n  store(@oy, %%2)\n  store(@ogu, %%3)\n  store(@odx, %%4)\n"
                       "  store(@odw, %%5)\n  store(@odgu, %%6)\n  store(@odd, %%7)\n  store(@odl, %%8)\n}\n",
                   t, t, t, t, t, t, t, t, t, t, t, t, t, norm, t, t, t, t, t, t, t, norm, t);
        }
        /* gpt-oss's experts (moe_ffn_oss): transposed, biased, the clamped interleaved GLU; limit 0.3 with gate|up
         * around +-0.6 so that both clamps bite (and the router's top 2 of 5 leaves an expert idle now and then) */
        static const char *const oss_prog =
            HDR "global @l : %s[3,37,5] act {scale=4.0}\nglobal @x : %s[3,37,72] act\nglobal @wgu : %s[5,72,80] act {scale=0.15}\n"
                "global @bgu : %s[5,80] act {scale=0.2}\nglobal @wd : %s[5,40,72] act\nglobal @bd : %s[5,72] act\n"
                "global @dy : %s[3,37,72] act\n"
                "global @oy : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @ogu : %s[3,37,2,80] act {gen=\"nan\", check=1}\n"
                "global @odx : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @odw : %s[3,37,2] act {gen=\"nan\", check=1}\n"
                "global @odgu : %s[5,72,80] act {gen=\"nan\", check=1}\nglobal @odbgu : %s[5,80] act {gen=\"nan\", check=1}\n"
                "global @odd : %s[5,40,72] act {gen=\"nan\", check=1}\nglobal @odbd : %s[5,72] act {gen=\"nan\", check=1}\n"
                "program p {\n  %%0, %%1 = moe_route(@l) {k=2, norm=1} : %s[3,37,2] act, i32[3,37,2] act\n"
                "  %%2, %%3 = moe_ffn_oss(@x, %%1, %%0, @wgu, @bgu, @wd, @bd) {alpha=1.702, limit=0.3} : %s[3,37,72] act, "
                "%s[3,37,2,80] act\n"
                "  %%4, %%5, %%6, %%7, %%8, %%9 = moe_ffn_oss_bwd(@x, %%1, %%0, @wgu, @bgu, @wd, @bd, %%3, @dy) "
                "{alpha=1.702, limit=0.3} : %s[3,37,72] act, %s[3,37,2] act, %s[5,72,80] act, %s[5,80] act, "
                "%s[5,40,72] act, %s[5,72] act\n"
                "  store(@oy, %%2)\n  store(@ogu, %%3)\n  store(@odx, %%4)\n  store(@odw, %%5)\n  store(@odgu, %%6)\n"
                "  store(@odbgu, %%7)\n  store(@odd, %%8)\n  store(@odbd, %%9)\n}\n";
        add_op(NM("moe_route, moe_ffn_oss and its backward (gpt-oss experts, limit 0.3)"), 2e-5, 2e-6, NULL, oss_prog,
               t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
        if (!strcmp(t, "bf16")) {
            add_op(NM("moe_ffn_oss and its backward, tensor-core MoE GEMMs (AXO_CUDA_MOE=tc)"), 2e-2, 2e-3, NULL, oss_prog,
                   t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
            ops[nops - 1].moe = "tc";
        }
        /* attention sinks (gpt-oss) on their own, as seqpar's ring applies them: out f32 or the dtype */
        for (int of = 0; of < (strcmp(t, "bf16") ? 1 : 2); of++) {
            const char *ot = of ? "f32" : t;
            char n2[96];
            snprintf(n2, sizeof n2, "attn_sink + attn_sink_bwd (out %s)", ot);
            add_op(NM(n2), 1e-5, 1e-6, NULL,
                   HDR "global @o : %s[2,37,3,24] act\nglobal @lse : f32[2,3,37] act {scale=2.0}\nglobal @sk : %s[3] act {scale=2.0}\n"
                       "global @do : %s[2,37,3,24] act\n"
                       "global @oo : %s[2,37,3,24] act {gen=\"nan\", check=1}\nglobal @olse : f32[2,3,37] act {gen=\"nan\", check=1}\n"
                       "global @odsk : %s[3] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = attn_sink(@o, @lse, @sk) : %s[2,37,3,24] act, f32[2,3,37] act\n"
                       "  %%2 = attn_sink_bwd(@sk, %%0, %%1, @do) : %s[3] act\n"
                       "  store(@oo, %%0)\n  store(@olse, %%1)\n  store(@odsk, %%2)\n}\n",
                   ot, t, ot, ot, t, ot, t);
        }
        /* PEFT's ParamWrapper LoRA: 3 experts at r 18 (two chunks of the kernels' 16 rows), a router's [4, 72] */
        add_op(NM("lora_delta and its backward, experts and a router"), 1e-5, 1e-6, NULL,
               HDR "global @w : %s[3,40,24] act\nglobal @a : %s[54,24] act\nglobal @b : %s[40,54] act\n"
                   "global @dy : %s[3,40,24] act\nglobal @rw : %s[4,72] act\nglobal @ra : %s[18,72] act\n"
                   "global @rb : %s[4,18] act\nglobal @rdy : %s[4,72] act\n"
                   "global @o : %s[3,40,24] act {gen=\"nan\", check=1}\nglobal @oa : %s[54,24] act {gen=\"nan\", check=1}\n"
                   "global @ob : %s[40,54] act {gen=\"nan\", check=1}\nglobal @ro : %s[4,72] act {gen=\"nan\", check=1}\n"
                   "global @roa : %s[18,72] act {gen=\"nan\", check=1}\nglobal @rob : %s[4,18] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = lora_delta(@w, @a, @b) {scale=1.5} : %s[3,40,24] act\n"
                   "  %%1, %%2 = lora_delta_bwd(@a, @b, @dy) {scale=1.5} : %s[54,24] act, %s[40,54] act\n"
                   "  %%3 = lora_delta(@rw, @ra, @rb) {scale=0.25} : %s[4,72] act\n"
                   "  %%4, %%5 = lora_delta_bwd(@ra, @rb, @rdy) {scale=0.25} : %s[18,72] act, %s[4,18] act\n"
                   "  store(@o, %%0)\n  store(@oa, %%1)\n  store(@ob, %%2)\n  store(@ro, %%3)\n  store(@roa, %%4)\n"
                   "  store(@rob, %%5)\n}\n",
               t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
        /* gpt-oss's transposed experts (t=1: w [E, In, Out], w' = w + s (B_e A_e)^T) */
        add_op(NM("lora_delta t=1 and its backward, gpt-oss's transposed experts"), 1e-5, 1e-6, NULL,
               HDR "global @w : %s[3,24,40] act\nglobal @a : %s[54,24] act\nglobal @b : %s[40,54] act\n"
                   "global @dy : %s[3,24,40] act\n"
                   "global @o : %s[3,24,40] act {gen=\"nan\", check=1}\nglobal @oa : %s[54,24] act {gen=\"nan\", check=1}\n"
                   "global @ob : %s[40,54] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = lora_delta(@w, @a, @b) {scale=1.5, t=1} : %s[3,24,40] act\n"
                   "  %%1, %%2 = lora_delta_bwd(@a, @b, @dy) {scale=1.5, t=1} : %s[54,24] act, %s[40,54] act\n"
                   "  store(@o, %%0)\n  store(@oa, %%1)\n  store(@ob, %%2)\n}\n",
               t, t, t, t, t, t, t, t, t, t);
        if (!strcmp(t, "bf16")) { /* the experts' GEMMs on tensor cores (AXO_CUDA_MOE=tc): bf16 operands, fp32 sums */
            add_op(NM("moe_ffn and its backward, tensor-core MoE GEMMs (AXO_CUDA_MOE=tc)"), 2e-2, 2e-3, NULL,
                   HDR "global @l : %s[3,37,5] act {scale=4.0}\nglobal @x : %s[3,37,72] act\nglobal @wgu : %s[5,80,72] act\n"
                       "global @wd : %s[5,72,40] act\nglobal @dy : %s[3,37,72] act\n"
                       "global @oy : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @ogu : %s[3,37,2,80] act {gen=\"nan\", check=1}\n"
                       "global @odx : %s[3,37,72] act {gen=\"nan\", check=1}\nglobal @odw : %s[3,37,2] act {gen=\"nan\", check=1}\n"
                       "global @odgu : %s[5,80,72] act {gen=\"nan\", check=1}\nglobal @odd : %s[5,72,40] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = moe_route(@l) {k=2, norm=1} : %s[3,37,2] act, i32[3,37,2] act\n"
                       "  %%2, %%3 = moe_ffn(@x, %%1, %%0, @wgu, @wd) : %s[3,37,72] act, %s[3,37,2,80] act\n"
                       "  %%4, %%5, %%6, %%7 = moe_ffn_bwd(@x, %%1, %%0, @wgu, @wd, %%3, @dy) : %s[3,37,72] act, %s[3,37,2] act, "
                       "%s[5,80,72] act, %s[5,72,40] act\n"
                       "  store(@oy, %%2)\n  store(@ogu, %%3)\n  store(@odx, %%4)\n  store(@odw, %%5)\n  store(@odgu, %%6)\n"
                       "  store(@odd, %%7)\n}\n",
                   t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
            ops[nops - 1].moe = "tc";
        }
        add_op(NM("moe_lb_stats, moe_lb_loss and their backwards"), 1e-5, 1e-6, NULL,
               HDR "global @l : %s[3,37,5] act {scale=4.0}\nglobal @l2 : %s[3,37,5] act {scale=4.0}\n"
                   "global @mk : f32[3,37] act {hi=3}\nglobal @dy : f32[] act\n"
                   "global @oa : f32[] act {gen=\"nan\", check=1}\nglobal @od : %s[3,37,5] act {gen=\"nan\", check=1}\n"
                   "global @ost : f32[11] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0, %%1 = moe_route(@l) {k=2, norm=0} : %s[3,37,2] act, i32[3,37,2] act\n"
                   "  %%2, %%3 = moe_route(@l2) {k=2, norm=0} : %s[3,37,2] act, i32[3,37,2] act\n"
                   "  %%4 = moe_lb_stats(@l, %%1, @mk) : f32[11] act\n  %%5 = moe_lb_stats(@l2, %%3, @mk) : f32[11] act\n"
                   "  %%6 = add(%%4, %%5) : f32[11] act\n  %%7 = moe_lb_loss(%%6) : f32[] act\n"
                   "  %%8 = moe_lb_loss_bwd(%%6, @dy) : f32[11] act\n  %%9 = moe_lb_stats_bwd(@l, @mk, %%8) : %s[3,37,5] act\n"
                   "  store(@oa, %%7)\n  store(@od, %%9)\n  store(@ost, %%6)\n}\n",
               t, t, t, t, t, t);
        add_op(NM("rope default hd128"), 1e-6, 1e-7, NULL,
               HDR "global @x : %s[1,19,2,128] act\nglobal @pos : i32[1,19] act {hi=4096}\n"
                   "global @o : %s[1,19,2,128] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = rope(@x, @pos) {theta=500000.0, inverse=0} : %s[1,19,2,128] act\n"
                   "  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("embedding"), 0, 0, NULL,
               HDR "global @tab : %s[300,64] act\nglobal @ids : i32[4,37] act {hi=300}\n"
                   "global @o : %s[4,37,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = embedding(@tab, @ids) : %s[4,37,64] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        /* bf16: 300000 x 64 rows are 2 segments of the executor's 64 MiB fp32 scratch; ids on both sides of the cut */
        add_op(NM("embedding_bwd (vocab segments)"), 1e-6, 1e-7, NULL,
               HDR "global @ids : i32[2,61] act {hi=300000}\nglobal @dy : %s[2,61,64] act\n"
                   "global @o : %s[300000,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = embedding_bwd(@ids, @dy) {vocab=300000} : %s[300000,64] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("embedding_bwd (repeated ids)"), 1e-6, 1e-7, NULL,
               HDR "global @ids : i32[4,37] act {hi=20}\nglobal @dy : %s[4,37,64] act\n"
                   "global @o : %s[300,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = embedding_bwd(@ids, @dy) {vocab=300} : %s[300,64] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        add_op(NM("cross_entropy"), 1e-5, 0, NULL,
               HDR "global @l : %s[2,37,300] act {scale=6.0}\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=300}\n"
                   "global @o : f32[] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = cross_entropy(@l, @tg) {ignore_index=-100} : f32[] act\n  store(@o, %%0)\n}\n",
               t);
        add_op(NM("cross_entropy_bwd"), 1e-5, 1e-6, NULL,
               HDR "global @l : %s[2,37,4099] act {scale=6.0}\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=4099}\n"
                   "global @ds : f32[] act {gen=\"value\", value=0.015625}\n"
                   "global @o : %s[2,37,4099] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = cross_entropy_bwd(@l, @tg, @ds) {ignore_index=-100} : %s[2,37,4099] act\n"
                   "  store(@o, %%0)\n}\n",
               t, t, t);
        /* Gemma 2's final_logit_softcapping: logits of up to 6 capped at 2 (tanh bends them); V odd (scalar rows) for
         * the forward, V % 8 == 0 for the backward (the capped rows take the scalar path either way) */
        add_op(NM("cross_entropy softcap=2"), 1e-5, 0, NULL,
               HDR "global @l : %s[2,37,301] act {scale=6.0}\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=301}\n"
                   "global @o : f32[] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = cross_entropy(@l, @tg) {ignore_index=-100, softcap=2.0} : f32[] act\n"
                   "  store(@o, %%0)\n}\n",
               t);
        add_op(NM("cross_entropy_bwd softcap=2"), 1e-5, 1e-6, NULL,
               HDR "global @l : %s[2,37,4096] act {scale=6.0}\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=4096}\n"
                   "global @ds : f32[] act {gen=\"value\", value=0.015625}\n"
                   "global @o : %s[2,37,4096] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = cross_entropy_bwd(@l, @tg, @ds) {ignore_index=-100, softcap=2.0} : %s[2,37,4096] act\n"
                   "  store(@o, %%0)\n}\n",
               t, t, t);
        /* fused lm head + loss: 74 rows in chunks of 16 (a short last chunk); V odd (scalar rows) and V % 4 == 0 */
        /* and with Gemma 2's final_logit_softcapping (logits of about 3, capped at 2: tanh bends them) */
        int Vs[4] = {1003, 1024, 1003, 1024};
        for (int v = 0; v < 4; v++) {
            char n2[64];
            const int cap = v >= 2;
            snprintf(n2, sizeof n2, "linear_cross_entropy V=%d%s", Vs[v], cap ? " softcap=2" : "");
            add_op(NM(n2), 1e-4, 1e-5, NULL,
                   HDR "global @h : %s[2,37,64] act\nglobal @w : %s[%d,64] act\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=%d}\n"
                       "global @ds : f32[] act {gen=\"value\", value=0.015625}\n"
                       "global @ol : f32[] act {gen=\"nan\", check=1}\nglobal @oh : %s[2,37,64] act {gen=\"nan\", check=1}\n"
                       "global @ow : %s[%d,64] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @ds) {ignore_index=-100, chunk=16%s} : "
                       "f32[] act, %s[2,37,64] act, %s[%d,64] act\n"
                       "  store(@ol, %%0)\n  store(@oh, %%1)\n  store(@ow, %%2)\n}\n",
                   t, t, Vs[v], Vs[v], t, t, Vs[v], cap ? ", softcap=2.0" : "", t, t, Vs[v]);
        }
        /* per-sequence forms: 4 rows of 37 tokens in chunks of 16 (chunks straddle the rows), every 5th
         * target ignored; the loss per row {rows}, a gradient scale per row (f32[n], random and signed: dpo_loss's
         * coef), both with runs of different lengths (rows of 37, scales per 74) */
        struct {
            const char *what;
            int V, rows, nscale;
            int cap; /* with softcap=2 */
        } ps[] = {{"rows=4", 1003, 4, 0, 0},
                  {"dscale f32[4]", 1024, 0, 4, 0},
                  {"rows=4, dscale f32[2]", 1003, 4, 2, 0},
                  {"rows=4, dscale f32[2], softcap=2", 1024, 4, 2, 1}};
        for (size_t i = 0; i < AX_ARRAY_LEN(ps); i++) {
            char n2[96], ds[16] = "[]", lo[16] = "[]", ra[48] = "";
            int V = ps[i].V;
            snprintf(n2, sizeof n2, "linear_cross_entropy %s", ps[i].what);
            if (ps[i].nscale) snprintf(ds, sizeof ds, "[%d]", ps[i].nscale);
            if (ps[i].rows)
                snprintf(lo, sizeof lo, "[%d]", ps[i].rows), snprintf(ra, sizeof ra, ", rows=%d", ps[i].rows);
            if (ps[i].cap) strncat(ra, ", softcap=2.0", sizeof ra - strlen(ra) - 1);
            add_op(NM(n2), 1e-4, 1e-5, NULL,
                   HDR "global @h : %s[4,37,64] act\nglobal @w : %s[%d,64] act\nglobal @tg : i32[4,37] act {gen=\"tgt\", hi=%d}\n"
                       "global @ds : f32%s act {scale=0.03}\n"
                       "global @ol : f32%s act {gen=\"nan\", check=1}\nglobal @oh : %s[4,37,64] act {gen=\"nan\", check=1}\n"
                       "global @ow : %s[%d,64] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @ds) {ignore_index=-100, chunk=16%s} : "
                       "f32%s act, %s[4,37,64] act, %s[%d,64] act\n"
                       "  store(@ol, %%0)\n  store(@oh, %%1)\n  store(@ow, %%2)\n}\n",
                   t, t, V, V, ds, lo, t, t, V, ra, lo, t, t, V);
        }
        /* a frozen head (dw=0, LoRA): fewer GEMMs per chunk, a short last chunk */
        add_op(NM("linear_cross_entropy dw=0"), 1e-4, 1e-5, NULL,
               HDR "global @h : %s[2,37,64] act\nglobal @w : %s[1003,64] act\nglobal @tg : i32[2,37] act {gen=\"tgt\", hi=1003}\n"
                   "global @ds : f32[] act {gen=\"value\", value=0.015625}\n"
                   "global @ol : f32[] act {gen=\"nan\", check=1}\nglobal @oh : %s[2,37,64] act {gen=\"nan\", check=1}\n"
                   "global @ow : %s[] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @ds) {ignore_index=-100, chunk=16, dw=0} : "
                   "f32[] act, %s[2,37,64] act, %s[] act\n"
                   "  store(@ol, %%0)\n  store(@oh, %%1)\n  store(@ow, %%2)\n}\n",
               t, t, t, t, t, t);
        /* DPO as lowered: each row's summed loss (no gradients), the pair loss and its coef, then the pass whose
         * per-row dscale is that coef (3 pairs, the middle one's scale 0: its rows get no gradient) */
        add_op(NM("linear_cross_entropy rows + dpo_loss + dscale coef (DPO)"), 1e-4, 1e-5, NULL,
               HDR "global @h : %s[6,37,64] act\nglobal @w : %s[1003,64] act\nglobal @tg : i32[6,37] act {gen=\"tgt\", hi=1003}\n"
                   "global @one : f32[] act {gen=\"value\", value=1.0}\nglobal @sref : f32[6] act {scale=20.0}\n"
                   "global @ps : f32[3] act {gen=\"pos\", zero=1}\n"
                   "global @os : f32[6] act {gen=\"nan\", check=1}\nglobal @od : f32[3] act {gen=\"nan\", check=1}\n"
                   "global @oc : f32[6] act {gen=\"nan\", check=1}\nglobal @oh : %s[6,37,64] act {gen=\"nan\", check=1}\n"
                   "global @ow : %s[1003,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n"
                   "  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @one) {ignore_index=-100, chunk=16, rows=6, dh=0, dw=0} : "
                   "f32[6] act, %s[] act, %s[] act\n"
                   "  %%3, %%4 = dpo_loss(%%0, @sref, @ps) {beta=0.1} : f32[3] act, f32[6] act\n"
                   "  %%5, %%6, %%7 = linear_cross_entropy(@h, @w, @tg, %%4) {ignore_index=-100, chunk=16} : "
                   "f32[] act, %s[6,37,64] act, %s[1003,64] act\n"
                   "  store(@os, %%0)\n  store(@od, %%3)\n  store(@oc, %%4)\n  store(@oh, %%6)\n  store(@ow, %%7)\n}\n",
               t, t, t, t, t, t, t, t);
        /* rl: simpo as lowered: the rows' token counts, the simpo loss with its margin, the NLL weights added to the
         * coef before the gradient pass */
        add_op(NM("linear_cross_entropy rows + dpo_loss simpo + NLL weights (SimPO)"), 1e-4, 1e-5, NULL,
               HDR "global @h : %s[6,37,64] act\nglobal @w : %s[1003,64] act\nglobal @tg : i32[6,37] act {gen=\"tgt\", hi=1003}\n"
                   "global @one : f32[] act {gen=\"value\", value=1.0}\nglobal @sref : f32[6] act {gen=\"value\", value=0.0}\n"
                   "global @ps : f32[3] act {gen=\"pos\", zero=1}\nglobal @cnt : f32[6] act {gen=\"pos\", scale=30.0}\n"
                   "global @nl : f32[6] act {gen=\"pos\", scale=0.05}\n"
                   "global @os : f32[6] act {gen=\"nan\", check=1}\nglobal @od : f32[3] act {gen=\"nan\", check=1}\n"
                   "global @oh : %s[6,37,64] act {gen=\"nan\", check=1}\nglobal @ow : %s[1003,64] act {gen=\"nan\", check=1}\n"
                   "program p {\n"
                   "  %%0, %%1, %%2 = linear_cross_entropy(@h, @w, @tg, @one) {ignore_index=-100, chunk=16, rows=6, dh=0, dw=0} : "
                   "f32[6] act, %s[] act, %s[] act\n"
                   "  %%3, %%4 = dpo_loss(%%0, @sref, @ps, @cnt) {beta=2.0, loss_type=\"simpo\", gamma=0.5} : f32[3] act, f32[6] act\n"
                   "  %%8 = add(%%4, @nl) : f32[6] act\n"
                   "  %%5, %%6, %%7 = linear_cross_entropy(@h, @w, @tg, %%8) {ignore_index=-100, chunk=16} : "
                   "f32[] act, %s[6,37,64] act, %s[1003,64] act\n"
                   "  store(@os, %%0)\n  store(@od, %%3)\n  store(@oh, %%6)\n  store(@ow, %%7)\n}\n",
               t, t, t, t, t, t, t, t);
        /* dpo_loss alone (f32 only): z of both signs, a pair whose scale is 0 */
        if (k == 0)
            add_op("dpo_loss", 1e-6, 0, NULL,
                   HDR "global @s : f32[74] act {scale=30.0}\nglobal @sref : f32[74] act {scale=30.0}\n"
                       "global @ps : f32[37] act {gen=\"pos\", zero=3}\n"
                       "global @ol : f32[37] act {gen=\"nan\", check=1}\nglobal @oc : f32[74] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = dpo_loss(@s, @sref, @ps) {beta=0.1} : f32[37] act, f32[74] act\n"
                       "  store(@ol, %%0)\n  store(@oc, %%1)\n}\n");
        /* orpo's odds-ratio term (f32 only): no reference, positive row losses, both branches of log(1 - p) */
        if (k == 0)
            add_op("dpo_loss orpo", 1e-6, 0, NULL,
                   HDR "global @s : f32[74] act {gen=\"pos\", scale=8.0}\nglobal @sref : f32[74] act {gen=\"value\", value=0.0}\n"
                       "global @ps : f32[37] act {gen=\"pos\", zero=3}\nglobal @cnt : f32[74] act {gen=\"pos\", scale=9.0}\n"
                       "global @ol : f32[37] act {gen=\"nan\", check=1}\nglobal @oc : f32[74] act {gen=\"nan\", check=1}\n"
                       "program p {\n  %%0, %%1 = dpo_loss(@s, @sref, @ps, @cnt) {beta=0.1, loss_type=\"orpo\"} : f32[37] act, f32[74] act\n"
                       "  store(@ol, %%0)\n  store(@oc, %%1)\n}\n");
        /* matmul: the four transpose combinations, leading dims flattened, K large enough to show summation order */
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                char n2[64], as[32], bs[32], os[32];
                snprintf(n2, sizeof n2, "matmul ta=%d tb=%d", ta, tb);
                if (!ta) snprintf(as, sizeof as, "[3,37,301]"), snprintf(os, sizeof os, "[3,37,53]");
                else snprintf(as, sizeof as, "[3,301,37]"), snprintf(os, sizeof os, "[37,53]");
                int64_t K = ta ? 3 * 301 : 301;
                if (!tb) snprintf(bs, sizeof bs, "[%lld,53]", (long long)K);
                else snprintf(bs, sizeof bs, "[53,%lld]", (long long)K);
                add_op(NM(n2), 2e-5, 2e-6, NULL,
                       HDR "global @a : %s%s act\nglobal @b : %s%s act\nglobal @o : %s%s act {gen=\"nan\", check=1}\n"
                           "program p {\n  %%0 = matmul(@a, @b) {ta=%d, tb=%d} : %s%s act\n  store(@o, %%0)\n}\n",
                       t, as, t, bs, t, os, ta, tb, t, os);
            }
        /* attention forward + backward together (the backward needs the forward's out and lse) */
        struct {
            int B, S, nh, nkv, hd, causal, window;
            const char *attn;
            double softcap; /* Gemma 2's cap of the scores (0: none); capped cases take q, k of scale 3 */
        } at[] = {{2, 150, 4, 2, 16, 1, 0, NULL, 0}, {2, 150, 4, 2, 64, 1, 0, NULL, 0}, {1, 97, 2, 1, 128, 0, 0, NULL, 0},
                  {2, 70, 4, 2, 64, 1, 0, "any", 0},
                  /* the tensor-core kernels (attention_tc.cuh, bf16 only): causal, packed segments, GQA, S % 64 != 0 */
                  {2, 150, 4, 2, 64, 1, 0, "tc", 0}, {2, 150, 4, 2, 128, 1, 0, "tc", 0}, {1, 97, 2, 1, 128, 0, 0, "tc", 0},
                  /* sliding windows (Mistral, Gemma's local layers): every kernel family */
                  {2, 200, 4, 2, 16, 1, 50, NULL, 0}, {2, 200, 4, 2, 64, 1, 70, NULL, 0}, {2, 200, 4, 2, 64, 1, 70, "tc", 0},
                  /* Gemma 2's soft-capping (scores of a few units against a cap of 1.5 to 2): the head_dim 64/128
                   * kernels, attention_any at head_dim 24 and forced at 64, the tensor-core kernels, a window */
                  {2, 150, 4, 2, 64, 1, 0, NULL, 2.0}, {1, 97, 2, 1, 128, 0, 0, NULL, 1.5}, {2, 100, 4, 2, 24, 1, 0, NULL, 1.5},
                  {2, 70, 4, 2, 64, 1, 0, "any", 2.0}, {2, 200, 4, 2, 64, 1, 70, NULL, 2.0}, {2, 150, 4, 2, 64, 1, 0, "tc", 2.0},
                  {1, 97, 2, 1, 128, 0, 0, "tc", 1.5}};
        for (size_t i = 0; i < AX_ARRAY_LEN(at); i++) {
            const int tc = at[i].attn && !strcmp(at[i].attn, "tc");
            if (tc && strcmp(t, "bf16") != 0) continue;
            char n2[120], q[48], kv[48], sg[32], ls[32], cs[48] = "";
            if (at[i].softcap > 0) snprintf(cs, sizeof cs, ", softcap=%.6f", at[i].softcap); /* a float attr */
            snprintf(n2, sizeof n2, "attention+bwd hd%d causal=%d window=%d%s%s", at[i].hd, at[i].causal, at[i].window,
                     at[i].softcap > 0 ? " softcap" : "",
                     tc ? " (tensor-core kernels)" : at[i].attn ? " (generic kernels)" : "");
            snprintf(q, sizeof q, "[%d,%d,%d,%d]", at[i].B, at[i].S, at[i].nh, at[i].hd);
            snprintf(kv, sizeof kv, "[%d,%d,%d,%d]", at[i].B, at[i].S, at[i].nkv, at[i].hd);
            snprintf(sg, sizeof sg, "[%d,%d]", at[i].B, at[i].S);
            snprintf(ls, sizeof ls, "[%d,%d,%d]", at[i].B, at[i].nh, at[i].S);
            double sc = 1.0 / sqrt((double)at[i].hd);
            /* tc: lse (the one f32 result) from mma.sync sums and exp2/log2: a little looser */
            const double qk = at[i].softcap > 0 ? 3.0 : 1.5;
            add_op(NM(n2), tc ? 2e-4 : 1e-4, tc ? 5e-5 : 2e-5, at[i].attn,
                   HDR "global @q : %s%s act {scale=%g}\nglobal @k : %s%s act {scale=%g}\nglobal @v : %s%s act\n"
                       "global @seg : i32%s act {gen=\"seg\"}\nglobal @do : %s%s act\n"
                       "global @o : %s%s act {gen=\"nan\", check=1}\nglobal @lse : f32%s act {gen=\"nan\", check=1}\n"
                       "global @dq : %s%s act {gen=\"nan\", check=1}\nglobal @dk : %s%s act {gen=\"nan\", check=1}\n"
                       "global @dv : %s%s act {gen=\"nan\", check=1}\n"
                       "program p {\n"
                       "  %%0, %%1 = attention(@q, @k, @v, @seg) {scale=%.17g, causal=%d, window=%d%s} : %s%s act, f32%s act\n"
                       "  %%2, %%3, %%4 = attention_bwd(@q, @k, @v, @seg, %%0, %%1, @do) {scale=%.17g, causal=%d, window=%d%s} : "
                       "%s%s act, %s%s act, %s%s act\n"
                       "  store(@o, %%0)\n  store(@lse, %%1)\n  store(@dq, %%2)\n  store(@dk, %%3)\n  store(@dv, %%4)\n}\n",
                   t, q, qk, t, kv, qk, t, kv, sg, t, q, t, q, ls, t, q, t, kv, t, kv, sc, at[i].causal, at[i].window, cs, t, q,
                   ls, sc, at[i].causal, at[i].window, cs, t, q, t, kv, t, kv);
        }
        /* attention with gpt-oss's sinks (the 5th operand), its backward and the sinks' (attn_sink_bwd) */
        struct {
            int B, S, nh, nkv, hd, window;
            const char *attn;
        } as[] = {{2, 150, 4, 2, 64, 0, NULL}, {2, 200, 4, 2, 16, 50, NULL}, {2, 200, 4, 2, 64, 70, NULL},
                  {2, 150, 4, 2, 64, 70, "tc"}};
        for (size_t i = 0; i < AX_ARRAY_LEN(as); i++) {
            const int tc = as[i].attn && !strcmp(as[i].attn, "tc");
            if (tc && strcmp(t, "bf16") != 0) continue;
            char n2[120], q[48], kv[48], sg[32], ls[32], hs[16];
            snprintf(n2, sizeof n2, "attention with sinks+bwd+attn_sink_bwd hd%d causal=1 window=%d%s", as[i].hd,
                     as[i].window, tc ? " (tensor-core kernels)" : "");
            snprintf(q, sizeof q, "[%d,%d,%d,%d]", as[i].B, as[i].S, as[i].nh, as[i].hd);
            snprintf(kv, sizeof kv, "[%d,%d,%d,%d]", as[i].B, as[i].S, as[i].nkv, as[i].hd);
            snprintf(sg, sizeof sg, "[%d,%d]", as[i].B, as[i].S);
            snprintf(ls, sizeof ls, "[%d,%d,%d]", as[i].B, as[i].nh, as[i].S);
            snprintf(hs, sizeof hs, "[%d]", as[i].nh);
            double sc = 1.0 / sqrt((double)as[i].hd);
            add_op(NM(n2), tc ? 2e-4 : 1e-4, tc ? 5e-5 : 2e-5, as[i].attn,
                   HDR "global @q : %s%s act {scale=1.5}\nglobal @k : %s%s act {scale=1.5}\nglobal @v : %s%s act\n"
                       "global @seg : i32%s act {gen=\"seg\"}\nglobal @sk : %s%s act {scale=3.0}\nglobal @do : %s%s act\n"
                       "global @o : %s%s act {gen=\"nan\", check=1}\nglobal @lse : f32%s act {gen=\"nan\", check=1}\n"
                       "global @dq : %s%s act {gen=\"nan\", check=1}\nglobal @dk : %s%s act {gen=\"nan\", check=1}\n"
                       "global @dv : %s%s act {gen=\"nan\", check=1}\nglobal @dsk : %s%s act {gen=\"nan\", check=1}\n"
                       "program p {\n"
                       "  %%0, %%1 = attention(@q, @k, @v, @seg, @sk) {scale=%.17g, causal=1, window=%d} : %s%s act, f32%s act\n"
                       "  %%2, %%3, %%4 = attention_bwd(@q, @k, @v, @seg, %%0, %%1, @do) {scale=%.17g, causal=1, window=%d} : "
                       "%s%s act, %s%s act, %s%s act\n"
                       "  %%5 = attn_sink_bwd(@sk, %%0, %%1, @do) : %s%s act\n"
                       "  store(@o, %%0)\n  store(@lse, %%1)\n  store(@dq, %%2)\n  store(@dk, %%3)\n  store(@dv, %%4)\n"
                       "  store(@dsk, %%5)\n}\n",
                   t, q, t, kv, t, kv, sg, t, hs, t, q, t, q, ls, t, q, t, kv, t, kv, t, hs, sc, as[i].window, t, q, ls, sc,
                   as[i].window, t, q, t, kv, t, kv, t, hs);
        }
        add_op(NM("sumsq+clip_coef"), 1e-6, 0, NULL,
               HDR "global @x : %s[1000007] act {scale=0.01}\nglobal @o : f32[] act {gen=\"nan\", check=1}\n"
                   "global @c : f32[] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = sumsq(@x) : f32[] act\n  %%1 = clip_coef(%%0) {max_norm=1.0} : f32[] act\n"
                   "  store(@o, %%0)\n  store(@c, %%1)\n}\n",
               t);
        add_op(NM("adamw (gradient dtype)"), 2e-7, 0, NULL,
               HDR "global @p : f32[10007] act {check=1}\nglobal @g : %s[10007] act {scale=0.1}\n"
                   "global @m : f32[10007] act {scale=0.01, check=1}\nglobal @v : f32[10007] act {gen=\"pos\", scale=0.0001, check=1}\n"
                   "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
                   "global @gs : f32[] act {gen=\"value\", value=0.5}\n"
                   "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01}\n}\n",
               t);
        /* 8-bit state (adamw8): an f32 parameter (gradient f32, or bf16 as mixed precision's master gets
         * it), rows of 256 + 256 + 88; random codes and maxima; p, codes and maxima bit for bit */
        add_op(NM("adamw8 f32 parameter (gradient dtype)"), 0, 0, NULL,
               HDR "global @p : f32[67,600] act {check=2}\nglobal @g : %s[67,600] act {scale=0.1}\n"
                   "global @m : u8[67,600] act {hi=256, check=2}\nglobal @v : u8[67,600] act {hi=256, check=2}\n"
                   "global @am : f32[67,3] act {gen=\"pos\", scale=0.05, check=2}\n"
                   "global @av : f32[67,3] act {gen=\"pos\", scale=0.001, check=2}\n"
                   "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
                   "global @gs : f32[] act {gen=\"value\", value=0.5}\n"
                   "program p {\n  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
                   "weight_decay=0.01, salt=4}\n}\n",
               t);
        /* the step's beta1 as an input (lr_scheduler: one_cycle): three floats of 0.2875 sum to a beta1 near 0.8625, the
         * attr 0.9 a decoy both executors must ignore */
        add_op(NM("adamw, beta1 input (one_cycle)"), 2e-7, 0, NULL,
               HDR "global @p : f32[10007] act {check=1}\nglobal @g : %s[10007] act {scale=0.1}\n"
                   "global @m : f32[10007] act {scale=0.01, check=1}\nglobal @v : f32[10007] act {gen=\"pos\", scale=0.0001, check=1}\n"
                   "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
                   "global @gs : f32[] act {gen=\"value\", value=0.5}\nglobal @b1 : f32[3] act {gen=\"value\", value=0.2875}\n"
                   "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs, @b1) {beta1=0.9, beta2=0.999, eps=1e-08, "
                   "weight_decay=0.01}\n}\n",
               t);
        add_op(NM("adamw8, beta1 input (one_cycle)"), 0, 0, NULL,
               HDR "global @p : f32[67,600] act {check=2}\nglobal @g : %s[67,600] act {scale=0.1}\n"
                   "global @m : u8[67,600] act {hi=256, check=2}\nglobal @v : u8[67,600] act {hi=256, check=2}\n"
                   "global @am : f32[67,3] act {gen=\"pos\", scale=0.05, check=2}\n"
                   "global @av : f32[67,3] act {gen=\"pos\", scale=0.001, check=2}\n"
                   "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
                   "global @gs : f32[] act {gen=\"value\", value=0.5}\nglobal @b1 : f32[3] act {gen=\"value\", value=0.2875}\n"
                   "program p {\n  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs, @b1) {beta1=0.9, beta2=0.999, "
                   "eps=1e-08, weight_decay=0.01, salt=4}\n}\n",
               t);
        add_op(NM("acc same dtype"), 0, 0, NULL,
               HDR "global @y : %s[5003] act {check=1}\nglobal @x : %s[5003] act\nprogram p {\n  acc(@y, @x)\n}\n", t, t);
        add_op(NM("fill"), 0, 0, NULL,
               HDR "global @o : %s[7,9] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = fill() {value=-1.2345678} : %s[7,9] act\n  store(@o, %%0)\n}\n",
               t, t);
        add_op(NM("input"), 0, 0, NULL,
               HDR "global @o : %s[6,41] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = input() {name=\"x\"} : %s[6,41] input\n  store(@o, %%0)\n}\n",
               t, t);
        add_op(NM("zero"), 0, 0, NULL, HDR "global @y : %s[517] act {check=1}\nprogram p {\n  zero(@y)\n}\n", t);
        add_op(NM("all_reduce/all_gather/reduce_scatter (1 rank)"), 0, 0, NULL,
               HDR "global @a : %s[8,5] act\nglobal @s : %s[8,5]<dp:0> act\n"
                   "global @o1 : %s[8,5] act {gen=\"nan\", check=1}\nglobal @o2 : %s[8,5] act {gen=\"nan\", check=1}\n"
                   "global @o3 : %s[8,5]<dp:0> act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = all_reduce(@a) {axis=\"dp\"} : %s[8,5] act\n"
                   "  %%1 = all_gather(@s) {axis=\"dp\", dim=0} : %s[8,5] act\n"
                   "  %%2 = reduce_scatter(@a) {axis=\"dp\", dim=0} : %s[8,5]<dp:0> act\n"
                   "  store(@o1, %%0)\n  store(@o2, %%1)\n  store(@o3, %%2)\n}\n",
               t, t, t, t, t, t, t, t);
        add_op(NM("to_host, host nodes (CPU kernels), to_device"), 0, 0, NULL,
               HDR "global @a : %s[7,9] act\nglobal @h : %s[7,9] act {place=\"host\", check=1}\n"
                   "global @o : %s[7,9] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = to_host(@a) : %s[7,9] act\n"
                   "  %%1 = scale(%%0) {alpha=3.0, on=\"host\"} : %s[7,9] act\n"
                   "  %%2 = add(%%1, @h) {on=\"host\"} : %s[7,9] act\n  store(@h, %%2) {on=\"host\"}\n"
                   "  %%3 = to_device(%%2) : %s[7,9] act\n  store(@o, %%3)\n}\n",
               t, t, t, t, t, t, t);
        /* the same as the schedule pass would place it (attr schedule.streams): copies on stream 2 from
         * pinned memory, asynchronous; host nodes wait for the events of the copies they read (nodes 1, 9)
         * and for the copy that reads the global they write (9 after 5); @h goes up from its bf16 image;
         * then the same with pageable memory (offload.pin_memory_optimizer = 0: synchronous copies) */
        for (int pageable = 0; pageable <= 1; pageable++)
            add_op(NM(pageable ? "to_host/to_device scheduled, pageable (pin_memory false)"
                               : "to_host/to_device scheduled, pinned (async copies, events)"),
                   0, 0, NULL,
                   "axo.ir 1\nattr schedule.streams = 4\n%smesh dp=1\n"
                   "global @a : %s[7,9] act\nglobal @h : %s[7,9] act {place=\"host\", check=1}\n"
                   "global @o : %s[7,9] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = to_host(@a) {stream=2} : %s[7,9] temp\n"
                   "  %%1 = scale(%%0) {alpha=3.0, on=\"host\", stream=3, wait=[0]} : %s[7,9] act\n"
                   "  %%2 = add(%%1, @h) {on=\"host\", stream=3} : %s[7,9] act\n"
                   "  store(@h, %%2) {on=\"host\", stream=3}\n"
                   "  %%3 = to_device(%%2) {stream=2, wait=[2]} : %s[7,9] temp\n"
                   "  %%4 = to_device(@h) {stream=2, wait=[3]} : %s[7,9] temp\n"
                   "  %%5 = add(%%3, %%4) {stream=0, wait=[5]} : %s[7,9] act\n  store(@o, %%5) {stream=0}\n"
                   "  %%6 = to_host(%%5) {stream=2, wait=[6]} : %s[7,9] temp\n"
                   "  acc(@h, %%6) {on=\"host\", stream=3, wait=[8]}\n}\n",
                   pageable ? "attr offload.pin_memory_optimizer = 0\n" : "", t, t, t, t, t, t, t, t, t, t);
        add_op(NM("ring_shift (1 rank)"), 0, 0, NULL,
               HDR "global @a : %s[8,5] act\nglobal @o : %s[8,5] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = ring_shift(@a) {axis=\"dp\"} : %s[8,5] act\n  store(@o, %%0)\n}\n",
               t, t, t);
        /* ring-attention blocks: a diagonal block (causal by index) and an earlier block (queries at
         * indices S.. see every key of their segment), merged; both backwards against the merged row */
        struct {
            int B, S, nh, nkv, hd, causal;
            const char *attn;
            double softcap; /* Gemma 2's cap of the scores (0: none); capped cases take q, k of scale 3 */
        } rb[] = {{2, 150, 4, 2, 64, 1, NULL, 0}, {1, 97, 2, 1, 128, 1, NULL, 0}, {2, 70, 4, 2, 64, 0, NULL, 0},
                  /* the tensor-core block kernels (attention_tc.cuh, bf16 only): GQA, segments, S % 64 != 0 */
                  {2, 150, 4, 2, 64, 1, "tc", 0}, {1, 97, 4, 1, 128, 1, "tc", 0},
                  /* Gemma 2's soft-capping: CUDA-core and tensor-core blocks */
                  {2, 150, 4, 2, 64, 1, NULL, 2.0}, {1, 97, 2, 1, 128, 0, NULL, 1.5}, {2, 150, 4, 2, 64, 1, "tc", 2.0}};
        for (size_t i = 0; i < AX_ARRAY_LEN(rb); i++) {
            const int tc = rb[i].attn && !strcmp(rb[i].attn, "tc");
            if (tc && strcmp(t, "bf16") != 0) continue;
            char n2[140], q[48], kv[48], sg[32], ls[32], q32[48], kv32[48];
            snprintf(n2, sizeof n2, "attention_blk x2 + attn_merge + attention_blk_bwd x2 hd%d causal=%d%s%s", rb[i].hd,
                     rb[i].causal, rb[i].softcap > 0 ? " softcap" : "", tc ? " (tensor-core)" : "");
            snprintf(q, sizeof q, "%s[%d,%d,%d,%d]", t, rb[i].B, rb[i].S, rb[i].nh, rb[i].hd);
            snprintf(kv, sizeof kv, "%s[%d,%d,%d,%d]", t, rb[i].B, rb[i].S, rb[i].nkv, rb[i].hd);
            snprintf(q32, sizeof q32, "f32[%d,%d,%d,%d]", rb[i].B, rb[i].S, rb[i].nh, rb[i].hd);
            snprintf(kv32, sizeof kv32, "f32[%d,%d,%d,%d]", rb[i].B, rb[i].S, rb[i].nkv, rb[i].hd);
            snprintf(sg, sizeof sg, "[%d,%d]", rb[i].B, rb[i].S);
            snprintf(ls, sizeof ls, "f32[%d,%d,%d]", rb[i].B, rb[i].nh, rb[i].S);
            double sc = 1.0 / sqrt((double)rb[i].hd);
            char at[64];
            snprintf(at, sizeof at, "causal=%d", rb[i].causal);
            if (rb[i].softcap > 0) snprintf(at + strlen(at), sizeof at - strlen(at), ", softcap=%.6f", rb[i].softcap);
            const double qk = rb[i].softcap > 0 ? 3.0 : 1.5;
            char cv[160] = "";
            if (strcmp(t, "f32")) snprintf(cv, sizeof cv, "  %%6 = convert(%%4) {to=\"%s\"} : %s act\n", t, q);
            else snprintf(cv, sizeof cv, "  %%6 = scale(%%4) {alpha=1.0} : %s act\n", q);
            int lo = !strcmp(t, "f32"); /* bf16: the merged out is rounded before the backward (a flip moves D) */
            /* tc: P and dS rounded to bf16 before their second product (the bf16 attention cases' 1.6e-2) */
            add_op(NM(n2), lo ? 1e-4 : tc ? 1.6e-2 : 1e-2, lo ? 2e-5 : tc ? 1e-2 : 5e-3, rb[i].attn,
                   HDR "global @q : %s act {scale=%g}\nglobal @k : %s act {scale=%g}\nglobal @v : %s act\n"
                       "global @k2 : %s act {scale=%g}\nglobal @v2 : %s act\n"
                       "global @seg : i32%s act {gen=\"seg\"}\nglobal @i0 : i32%s act {gen=\"iota\"}\n"
                       "global @i1 : i32%s act {gen=\"iota\", off=%d}\nglobal @do : %s act\n"
                       "global @o : %s act {gen=\"nan\", check=1}\nglobal @lse : %s act {gen=\"nan\", check=1}\n"
                       "global @dq : %s act {gen=\"nan\", check=1}\nglobal @dk : %s act {gen=\"nan\", check=1}\n"
                       "global @dv : %s act {gen=\"nan\", check=1}\nglobal @dq2 : %s act {gen=\"nan\", check=1}\n"
                       "global @dk2 : %s act {gen=\"nan\", check=1}\nglobal @dv2 : %s act {gen=\"nan\", check=1}\n"
                       "program p {\n"
                       "  %%0, %%1 = attention_blk(@q, @k, @v, @seg, @seg, @i0, @i0) {scale=%.17g, %s} : %s act, %s act\n"
                       "  %%2, %%3 = attention_blk(@q, @k2, @v2, @seg, @seg, @i1, @i0) {scale=%.17g, %s} : %s act, %s act\n"
                       "  %%4, %%5 = attn_merge(%%0, %%1, %%2, %%3) : %s act, %s act\n"
                       "%s"
                       "  %%7, %%8, %%9 = attention_blk_bwd(@q, @k, @v, @seg, @seg, @i0, @i0, %%6, %%5, @do) {scale=%.17g, %s} : "
                       "%s act, %s act, %s act\n"
                       "  %%10, %%11, %%12 = attention_blk_bwd(@q, @k2, @v2, @seg, @seg, @i1, @i0, %%6, %%5, @do) "
                       "{scale=%.17g, %s} : %s act, %s act, %s act\n"
                       "  store(@o, %%4)\n  store(@lse, %%5)\n  store(@dq, %%7)\n  store(@dk, %%8)\n  store(@dv, %%9)\n"
                       "  store(@dq2, %%10)\n  store(@dk2, %%11)\n  store(@dv2, %%12)\n}\n",
                   q, qk, kv, qk, kv, kv, qk, kv, sg, sg, sg, rb[i].S, q, q32, ls, q32, kv32, kv32, q32, kv32, kv32, sc, at, q32, ls,
                   sc, at, q32, ls, q32, ls, cv, sc, at, q32, kv32, kv32, sc, at, q32, kv32, kv32);
        }
        /* LoRA dropout: the CPU's mask and values exactly (ir/quant.h on both sides); odd sizes (the
         * scalar tail), a large salt, p = 0.5; the seed is the runtime input as a session feeds it */
        add_op(NM("dropout p=0.1"), 0, 0, NULL,
               HDR "global @x : %s[37,531] act\nglobal @o : %s[37,531] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = input() {name=\"dropout_seed\"} : i32[] input\n"
                   "  %%1 = dropout(@x, %%0) {p=0.1, salt=7} : %s[37,531] act\n  store(@o, %%1)\n}\n",
               t, t, t);
        add_op(NM("dropout p=0.5, salt 3000000000"), 0, 0, NULL,
               HDR "global @x : %s[100003] act\nglobal @o : %s[100003] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = input() {name=\"dropout_seed\"} : i32[] input\n"
                   "  %%1 = dropout(@x, %%0) {p=0.5, salt=3000000000} : %s[100003] act\n  store(@o, %%1)\n}\n",
               t, t, t);
        /* NEFTune: the CPU's noise exactly (ir/quant.h on both sides); rows of 531 (a 16-byte vector
         * spans two rows' keys) and of 3, a large salt; the keys are the runtime input as a session feeds it */
        add_op(NM("neftune"), 0, 0, NULL,
               HDR "global @x : %s[3,37,531] act\nglobal @o : %s[3,37,531] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = input() {name=\"neftune_keys\"} : i32[3,37] input\n"
                   "  %%1 = neftune(@x, %%0) {mag=0.25, salt=0} : %s[3,37,531] act\n  store(@o, %%1)\n}\n",
               t, t, t);
        /* unfrozen_parameters' row ranges: a copy with the other rows' bytes zeroed (ranges at both
         * ends and in the middle; a 1-D tensor's elements), exactly */
        add_op(NM("mask_rows"), 0, 0, NULL,
               HDR "global @x : %s[37,531] act\nglobal @o : %s[37,531] act {gen=\"nan\", check=2}\n"
                   "global @v : %s[1001] act\nglobal @ov : %s[1001] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = mask_rows(@x) {rows=[0, 3, 10, 11, 30, 37]} : %s[37,531] act\n"
                   "  %%1 = mask_rows(@v) {rows=[5, 500]} : %s[1001] act\n  store(@o, %%0)\n  store(@ov, %%1)\n}\n",
               t, t, t, t, t, t);
        /* trainable tokens: the table with some rows from src (not sorted, first and last rows), and those rows
         * taken back; byte copies, exactly */
        add_op(NM("index_copy"), 0, 0, NULL,
               HDR "global @w : %s[61,133] act\nglobal @s : %s[3,133] act\n"
                   "global @o : %s[61,133] act {gen=\"nan\", check=2}\nglobal @ot : %s[3,133] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = index_copy(@w, @s) {rows=[60, 0, 17]} : %s[61,133] act\n"
                   "  %%1 = take_rows(%%0) {rows=[17, 60, 5]} : %s[3,133] act\n  store(@o, %%0)\n  store(@ot, %%1)\n}\n",
               t, t, t, t, t, t);
        /* a fused projection's parts (Phi-3's qkv_proj / gate_up_proj) and their adjoint back in place: strided
         * copies, exactly; odd widths, a part at each end and one inside */
        add_op(NM("slice, slice_bwd"), 0, 0, NULL,
               HDR "global @x : %s[3,37,131] act\nglobal @oa : %s[3,37,5] act {gen=\"nan\", check=2}\n"
                   "global @ob : %s[3,37,77] act {gen=\"nan\", check=2}\nglobal @oc : %s[3,37,131] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = slice(@x) {begin=0, len=5} : %s[3,37,5] act\n"
                   "  %%1 = slice(@x) {begin=54, len=77} : %s[3,37,77] act\n"
                   "  %%2 = slice_bwd(%%1) {begin=54, width=131} : %s[3,37,131] act\n"
                   "  %%3 = slice(@x) {begin=20, len=9} : %s[3,37,9] act\n"
                   "  %%4 = slice_bwd(%%3) {begin=20, width=131} : %s[3,37,131] act\n"
                   "  %%5 = add(%%2, %%4) : %s[3,37,131] act\n"
                   "  store(@oa, %%0)\n  store(@ob, %%1)\n  store(@oc, %%5)\n}\n",
               t, t, t, t, t, t, t, t, t, t);
        /* DoRA: the adapted weight's row norms (f32 sums in another order: rounding), the magnitude
         * scaling and its gradient (dm: column sums in another order); odd sizes, N not a multiple of 32 */
        add_op(NM("dora_norm, dora_scale, dora_scale_bwd"), 1e-5, 1e-6, NULL,
               HDR "global @w : %s[67,131] act\nglobal @bb : f32[67,5] act {scale=0.1}\nglobal @aa : f32[5,131] act {scale=0.1}\n"
                   "global @base : %s[3,41,67] act\nglobal @lora : %s[3,41,67] act\nglobal @m : f32[67] act {gen=\"pos\"}\n"
                   "global @dy : %s[3,41,67] act\nglobal @on : f32[67] act {gen=\"nan\", check=1}\n"
                   "global @oy : %s[3,41,67] act {gen=\"nan\", check=1}\nglobal @odb : %s[3,41,67] act {gen=\"nan\", check=1}\n"
                   "global @odl : %s[3,41,67] act {gen=\"nan\", check=1}\nglobal @odm : f32[67] act {gen=\"nan\", check=1}\n"
                   "program p {\n  %%0 = dora_norm(@w, @bb, @aa) {scaling=2.5} : f32[67] act\n"
                   "  %%1 = dora_scale(@base, @lora, @m, %%0) {scaling=2.5} : %s[3,41,67] act\n"
                   "  %%2, %%3, %%4 = dora_scale_bwd(@base, @lora, @m, %%0, @dy) {scaling=2.5} : %s[3,41,67] act, "
                   "%s[3,41,67] act, f32[67] act\n"
                   "  store(@on, %%0)\n  store(@oy, %%1)\n  store(@odb, %%2)\n  store(@odl, %%3)\n  store(@odm, %%4)\n}\n",
               t, t, t, t, t, t, t, t, t, t);
        add_op(NM("neftune rows of 3, salt 3000000000"), 0, 0, NULL,
               HDR "global @x : %s[33335,3] act\nglobal @o : %s[33335,3] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = input() {name=\"neftune_keys\"} : i32[33335] input\n"
                   "  %%1 = neftune(@x, %%0) {mag=0.055242717280199023, salt=3000000000} : %s[33335,3] act\n"
                   "  store(@o, %%1)\n}\n",
               t, t, t);
        add_op(NM("neftune, the micro step's mag as an input"), 0, 0, NULL,
               HDR "global @x : %s[999,64] act\nglobal @o : %s[999,64] act {gen=\"nan\", check=2}\n"
                   "global @mg : f32[] act {gen=\"value\", value=0.0311}\n"
                   "program p {\n  %%0 = input() {name=\"neftune_keys\"} : i32[999] input\n"
                   "  %%1 = neftune(@x, %%0, @mg) {mag=0.5, salt=7} : %s[999,64] act\n"
                   "  store(@o, %%1)\n}\n",
               t, t, t);
        /* QLoRA: packed codes and steps decoded to the CPU's bits; steps over the whole byte; K a multiple
         * of 64, of 8 with a short last block (one scale per 8 codes), and neither (rows straddle words) */
        int Ks[3] = {192, 232, 70};
        for (int kk = 0; kk < 3; kk++) {
            char n2[64];
            int K = Ks[kk], nb = (K + 63) / 64;
            snprintf(n2, sizeof n2, "dequant_nf4 K=%d", K);
            add_op(NM(n2), 0, 0, NULL,
                   HDR "global @q : nf4[67,%d] act\nglobal @a : u8[67,%d] act {hi=256}\n"
                       "global @r : f32[67] act {gen=\"pos\", scale=0.1}\nglobal @o : %s[67,%d] act {gen=\"nan\", check=2}\n"
                       "program p {\n  %%0 = dequant_nf4(@q, @a, @r) {to=\"%s\"} : %s[67,%d] act\n  store(@o, %%0)\n}\n",
                   K, nb, t, K, t, t, K);
        }
        /* row-split weights gathered (a copy on one rank), dequantized; the gathered codes and steps
         * stored and downloaded (pack, unpack) */
        add_op(NM("all_gather nf4/u8/f32 + dequant_nf4 + store nf4/u8 (1 rank)"), 0, 0, NULL,
               HDR "global @q : nf4[130,64]<dp:0> act\nglobal @a : u8[130,1]<dp:0> act {hi=256}\n"
                   "global @r : f32[130]<dp:0> act {gen=\"pos\", scale=3.0}\n"
                   "global @qo : nf4[130,64] act {check=2}\nglobal @ao : u8[130,1] act {check=2}\n"
                   "global @o : %s[130,64] act {gen=\"nan\", check=2}\n"
                   "program p {\n  %%0 = all_gather(@q) {axis=\"dp\", dim=0} : nf4[130,64] act\n"
                   "  %%1 = all_gather(@a) {axis=\"dp\", dim=0} : u8[130,1] act\n"
                   "  %%2 = all_gather(@r) {axis=\"dp\", dim=0} : f32[130] act\n"
                   "  %%3 = dequant_nf4(%%0, %%1, %%2) {to=\"%s\"} : %s[130,64] act\n"
                   "  store(@qo, %%0)\n  store(@ao, %%1)\n  store(@o, %%3)\n}\n",
               t, t, t);
#undef NM
    }
    /* dtype crossings */
    add_op("convert f32->bf16->f32", 0, 0, NULL,
           HDR "global @a : f32[100003] act {scale=3.0}\nglobal @o1 : bf16[100003] act {gen=\"nan\", check=1}\n"
               "global @o2 : f32[100003] act {gen=\"nan\", check=1}\n"
               "program p {\n  %%0 = convert(@a) {to=\"bf16\"} : bf16[100003] act\n"
               "  %%1 = convert(%%0) {to=\"f32\"} : f32[100003] act\n  store(@o1, %%0)\n  store(@o2, %%1)\n}\n");
    add_op("store f32->bf16 and bf16->f32", 0, 0, NULL,
           HDR "global @a : f32[999] act\nglobal @b : bf16[999] act\n"
               "global @o1 : bf16[999] act {gen=\"nan\", check=1}\nglobal @o2 : f32[999] act {gen=\"nan\", check=1}\n"
               "program p {\n  store(@o1, @a)\n  store(@o2, @b)\n}\n");
    add_op("acc f32 += bf16 and bf16 += f32", 0, 0, NULL,
           HDR "global @y1 : f32[999] act {check=1}\nglobal @x1 : bf16[999] act\n"
               "global @y2 : bf16[999] act {check=1}\nglobal @x2 : f32[999] act\n"
               "program p {\n  acc(@y1, @x1)\n  acc(@y2, @x2)\n}\n");
    add_op("fill i32 + store", 0, 0, NULL,
           HDR "global @o : i32[7,9] act {gen=\"ids\", check=1}\n"
               "program p {\n  %%0 = fill() {value=-7.0} : i32[7,9] act\n  store(@o, %%0)\n}\n");
    add_op("input i32 + store", 0, 0, NULL,
           HDR "global @o : i32[5,33] act {gen=\"ids\", check=1}\n"
               "program p {\n  %%0 = input() {name=\"ids\"} : i32[5,33] input\n  store(@o, %%0)\n}\n");
    /* pure bf16 (bfloat16: true): the stochastically rounded step, bit for bit (the same f32 step, then
     * the same bits of ir/quant.h); as rank 1 of dp 2 the block's elements draw the bits of their index in
     * the whole tensor (rank 1's block of [1001, 7] starts at element 501 * 7; its last row is padding) */
    add_op("adamw pure bf16 (stochastic rounding)", 0, 0, NULL,
           HDR "global @p : bf16[10007] act {check=2}\nglobal @g : bf16[10007] act {scale=0.1}\n"
               "global @m : bf16[10007] act {scale=0.01, check=2}\n"
               "global @v : bf16[10007] act {gen=\"pos\", scale=0.0001, check=2}\n"
               "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
               "global @gs : f32[] act {gen=\"value\", value=0.5}\n"
               "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
               "weight_decay=0.01, salt=3}\n}\n");
    add_op("adamw pure bf16, rank 1 of dp 2 (block offset)", 0, 0, NULL,
           "axo.ir 1\nmesh dp=2\n"
           "global @p : bf16[1001,7]<dp:0> act {check=2}\nglobal @g : bf16[1001,7]<dp:0> act {scale=0.1}\n"
           "global @m : bf16[1001,7]<dp:0> act {scale=0.01, check=2}\n"
           "global @v : bf16[1001,7]<dp:0> act {gen=\"pos\", scale=0.0001, check=2}\n"
           "global @lr : f32[] act {gen=\"value\", value=0.001}\nglobal @st : f32[] act {gen=\"value\", value=1.0}\n"
           "global @gs : f32[] act {gen=\"value\", value=1.0}\n"
           "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs) {beta1=0.9, beta2=0.95, eps=1e-08, "
           "weight_decay=0.1, salt=12}\n}\n");
    ops[nops - 1].dp_rank = 1;
    add_op("adamw pure bf16, beta1 input (one_cycle)", 0, 0, NULL,
           HDR "global @p : bf16[10007] act {check=2}\nglobal @g : bf16[10007] act {scale=0.1}\n"
               "global @m : bf16[10007] act {scale=0.01, check=2}\n"
               "global @v : bf16[10007] act {gen=\"pos\", scale=0.0001, check=2}\n"
               "global @lr : f32[] act {gen=\"value\", value=0.0003}\nglobal @st : f32[] act {gen=\"value\", value=7.0}\n"
               "global @gs : f32[] act {gen=\"value\", value=0.5}\nglobal @b1 : f32[3] act {gen=\"value\", value=0.2875}\n"
               "program p {\n  adamw(@p, @g, @m, @v, @lr, @st, @gs, @b1) {beta1=0.9, beta2=0.999, eps=1e-08, "
               "weight_decay=0.01, salt=3}\n}\n");
    /* 8-bit state on a pure-bf16 parameter: the step, then p stochastically rounded as adamw's p; one
     * block per row (K 256) and short ones (K 64); as rank 1 of dp 2 (rank 1's block of [201, 300] starts at
     * element 101 * 300, its last row padding) p draws the bits of its elements' indices in the tensor */
    add_op("adamw8 pure bf16 (stochastic rounding) K=256", 0, 0, NULL,
           HDR "global @p : bf16[41,256] act {check=2}\nglobal @g : bf16[41,256] act {scale=0.1}\n"
               "global @m : u8[41,256] act {hi=256, check=2}\nglobal @v : u8[41,256] act {hi=256, check=2}\n"
               "global @am : f32[41,1] act {gen=\"pos\", scale=0.05, check=2}\n"
               "global @av : f32[41,1] act {gen=\"pos\", scale=0.001, check=2}\n"
               "global @lr : f32[] act {gen=\"value\", value=0.001}\nglobal @st : f32[] act {gen=\"value\", value=3.0}\n"
               "global @gs : f32[] act {gen=\"value\", value=1.0}\n"
               "program p {\n  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
               "weight_decay=0.01, salt=6}\n}\n");
    add_op("adamw8 pure bf16 K=64", 0, 0, NULL,
           HDR "global @p : bf16[129,64] act {check=2}\nglobal @g : bf16[129,64] act {scale=0.1}\n"
               "global @m : u8[129,64] act {hi=256, check=2}\nglobal @v : u8[129,64] act {hi=256, check=2}\n"
               "global @am : f32[129,1] act {gen=\"pos\", scale=0.05, check=2}\n"
               "global @av : f32[129,1] act {gen=\"pos\", scale=0.001, check=2}\n"
               "global @lr : f32[] act {gen=\"value\", value=0.02}\nglobal @st : f32[] act {gen=\"value\", value=1.0}\n"
               "global @gs : f32[] act {gen=\"value\", value=0.37}\n"
               "program p {\n  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs) {beta1=0.3, beta2=0.95, eps=1e-08, "
               "weight_decay=0.1, salt=1}\n}\n");
    add_op("adamw8 pure bf16, rank 1 of dp 2 (block offset) K=300", 0, 0, NULL,
           "axo.ir 1\nmesh dp=2\n"
           "global @p : bf16[201,300]<dp:0> act {check=2}\nglobal @g : bf16[201,300]<dp:0> act {scale=0.1}\n"
           "global @m : u8[201,300]<dp:0> act {hi=256, check=2}\nglobal @v : u8[201,300]<dp:0> act {hi=256, check=2}\n"
           "global @am : f32[201,2]<dp:0> act {gen=\"pos\", scale=0.05, check=2}\n"
           "global @av : f32[201,2]<dp:0> act {gen=\"pos\", scale=0.001, check=2}\n"
           "global @lr : f32[] act {gen=\"value\", value=0.001}\nglobal @st : f32[] act {gen=\"value\", value=12.0}\n"
           "global @gs : f32[] act {gen=\"value\", value=1.0}\n"
           "program p {\n  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, "
           "weight_decay=0.01, salt=9}\n}\n");
    ops[nops - 1].dp_rank = 1;
}

/* Runtime inputs for op cases: one buffer per input node, same for both executors. */
typedef struct op_inputs {
    int n;
    const char *names[8];
    rt_buf bufs[8];
} op_inputs;
static const rt_buf *op_input_fn(void *ctx, const char *name) {
    op_inputs *in = ctx;
    for (int i = 0; i < in->n; i++)
        if (!strcmp(in->names[i], name)) return &in->bufs[i];
    return NULL;
}

/* Compares a global: 1 if every element is within tolerance. */
static int compare(const char *what, const float *got, const float *ref, int64_t n, ir_dtype t, double rtol,
                   double afrac, char *msg, size_t cap) {
    double mx = 0, maxerr = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(ref[i])) mx = fmax(mx, fabs((double)ref[i]));
    if (t == IR_BF16) rtol = fmax(rtol, 1.6e-2), afrac = fmax(afrac, 1e-2);
    int64_t bad = 0, nan = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], e = fabs(g - r);
        if (isnan(g) && !isnan(r)) nan++;
        int ok = (e <= rtol * fabs(r) + afrac * mx) || (isinf(r) && g == r) || (isnan(r) && isnan(g));
        if (!ok) {
            if (first < 0) first = i;
            bad++;
        }
        if (isfinite(e)) maxerr = fmax(maxerr, e);
    }
    size_t l = strlen(msg);
    if (bad)
        snprintf(msg + l, cap - l, "%s: %lld/%lld bad (%lld NaN: unwritten?), first [%lld] gpu %.9g cpu %.9g; ", what,
                 (long long)bad, (long long)n, (long long)nan, (long long)first, (double)got[first], (double)ref[first]);
    else
        snprintf(msg + l, cap - l, "%s maxerr %.2g; ", what, maxerr);
    return bad == 0;
}

/* Bit for bit (check=2): 1 if every element has the CPU's exact bits. A NaN
 * left by the poisoned arena (an element never written) differs too. */
static int compare_bits(const char *what, const float *got, const float *ref, int64_t n, char *msg, size_t cap) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
            if (first < 0) first = i;
            bad++;
        }
    size_t l = strlen(msg);
    if (bad)
        snprintf(msg + l, cap - l, "%s: %lld/%lld differ in their bits, first [%lld] gpu %.9g cpu %.9g; ", what,
                 (long long)bad, (long long)n, (long long)first, (double)got[first], (double)ref[first]);
    else
        snprintf(msg + l, cap - l, "%s bit for bit; ", what);
    return bad == 0;
}

#ifdef AXO_HAVE_CUDA
/* 0 if the CUDA context still works after a case (a kernel fault is sticky). */
static int context_ok(void) { return cudaDeviceSynchronize() == cudaSuccess; }
#else
static int context_ok(void) { return 1; }
#endif

static void run_op(const opcase *c) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(c->ir, strlen(c->ir), c->name, &d);
    if (!m || ir_verify(m, &d) != 0) {
        ax_diag_print(&d, stdout);
        result(0, c->name, "the case's IR does not parse/verify");
        ir_module_destroy(m);
        ax_diag_free(&d);
        return;
    }
    const ir_program *p = ir_program_find(m, "p");
    rt_state cpu;
    memset(&cpu, 0, sizeof cpu); /* fields rt_state_init does not set (e.g. a trace) stay off */
    rt_state_init(&cpu, m, &d);
    int dpax = ir_mesh_find(m, "dp");
    if (c->dp_rank && dpax >= 0) cpu.coord[dpax] = c->dp_rank;
    for (int g = 0; g < m->nglobals; g++) fill_global(m, &cpu, g);
    op_inputs in = {0};
    for (int i = 0; i < p->nnodes && in.n < 8; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op != IR_OP_input) continue;
        ir_type t = p->values[n->out[0]].type;
        in.names[in.n] = ir_attr_str(n->attrs, n->nattrs, "name", "");
        rt_buf_alloc(&in.bufs[in.n], t);
        for (int64_t e = 0; e < in.bufs[in.n].numel; e++) {
            if (t.dtype == IR_I32) rt_i(&in.bufs[in.n])[e] = (int32_t)(urand() * 1000) - 500;
            else rt_f(&in.bufs[in.n])[e] = t.dtype == IR_BF16 ? ax_round_bf16(rnd(1, 0)) : rnd(1, 0);
        }
        in.n++;
    }
    /* GPU first (its upload takes the initial values), then the CPU reference */
    rt_cuda_state st;
    rt_cuda_prog pr;
    memset(&pr, 0, sizeof pr);
    if (c->attn) setenv("AXO_CUDA_ATTN", c->attn, 1);
    if (c->moe) setenv("AXO_CUDA_MOE", c->moe, 1);
    int rc = rt_cuda_state_init(&st, g_dev, m, &d) || rt_cuda_prog_init(&pr, &st, p, &d);
    if (!rc && c->dp_rank && dpax >= 0) st.coord[dpax] = c->dp_rank;
    if (!rc) {
        rt_cuda_prog *pp = &pr;
        rc = rt_cuda_state_alloc(&st, &pp, 1, &d);
    }
    for (int g = 0; g < m->nglobals && !rc; g++) rc = rt_cuda_upload(&st, g, &cpu.globals[g], &d);
    if (!rc) rc = rt_cuda_prog_run(&pr, &st, op_input_fn, &in, &d);
    if (c->attn) unsetenv("AXO_CUDA_ATTN");
    if (c->moe) unsetenv("AXO_CUDA_MOE");
    rt_prog cp;
    int crc = rt_prog_init(&cp, m, p, &d) || rt_prog_run(&cp, &cpu, op_input_fn, &in, &d);
    char msg[2048] = "";
    int ok = !rc && !crc;
    if (rc || crc) {
        ax_diag_print(&d, stdout);
        snprintf(msg, sizeof msg, "%s failed", rc ? "the CUDA run" : "the CPU run");
    } else if (g_dry) {
        snprintf(msg, sizeof msg, "preflight: IR, CPU run and CUDA dry run ok");
    } else {
        for (int g = 0; g < m->nglobals; g++) {
            const ir_global *G = &m->globals[g];
            int64_t check = ir_attr_int(G->attrs, G->nattrs, "check", 0);
            if (!check) continue;
            rt_buf got;
            rt_buf_alloc_local(m, &got, G->type);
            if (rt_cuda_download(&st, g, &got, &d) != 0) {
                ok = 0;
                ax_diag_print(&d, stdout);
            } else if (G->type.dtype == IR_I32) {
                int same = !memcmp(got.data, cpu.globals[g].data, 4 * (size_t)got.numel);
                size_t l = strlen(msg);
                snprintf(msg + l, sizeof msg - l, "%s %s; ", G->name, same ? "equal" : "DIFFERS");
                ok &= same;
            } else if (check == 2) {
                ok &= compare_bits(G->name, rt_f(&got), rt_f(&cpu.globals[g]), got.numel, msg, sizeof msg);
            } else {
                ok &= compare(G->name, rt_f(&got), rt_f(&cpu.globals[g]), got.numel, G->type.dtype, c->rtol, c->afrac, msg,
                              sizeof msg);
            }
            rt_buf_free(&got);
        }
    }
    result(ok, c->name, "%s", msg);
    if (!crc) rt_prog_free(&cp);
    rt_cuda_prog_free(&pr);
    rt_cuda_state_free(&st);
    rt_state_free(&cpu);
    for (int i = 0; i < in.n; i++) rt_buf_free(&in.bufs[i]);
    ir_module_destroy(m);
    ax_diag_free(&d);
}

/* ---- training cases ------------------------------------------------------------------- */
typedef struct trcase {
    char name[160];
    const char *model; /* configs/models/<model> */
    int bf16, ckpt;
    int64_t hidden, heads, kv, hd; /* > 0: override the model's shape (head_dim 64/128: the fast kernels) */
    int64_t B, S;
    int world, sp;      /* > 1: that many local ranks on the one GPU (sp: sequence parallel degree) */
    pass_shard_cfg sh;  /* ZeRO stage, offload */
    int unfused;        /* liger_fused_linear_cross_entropy: false (matmul + cross_entropy) */
    int pageable;       /* offload: pin_memory false (synchronous copies; else pinned, asynchronous) */
    const char *attn;   /* AXO_CUDA_ATTN for this case (NULL: default) */
    const char *moe;    /* AXO_CUDA_MOE for this case (NULL: default) */
    pass_lora_cfg lora; /* adapter: lora / qlora (+ load_in_4bit); zero: full fine-tuning */
    int pure;           /* bfloat16: true (with bf16): bf16 AdamW state, stochastic rounding, no f32 master */
    int opt8;           /* optimizer: adamw_bnb_8bit: 8-bit AdamW state (adamw8) for the matrices that qualify */
    int eval;           /* val_set_size: after training, eval_step's loss on a held-out batch is compared too */
    double neftune;     /* neftune_noise_alpha (0: off): NEFTune noise on the input embeddings */
    const char *unfrozen; /* one unfrozen_parameters pattern (NULL: all train), e.g. with a row range */
    int bins;           /* sample_packing as Axolotl packs for flash attention: a micro-batch is one row of B x S
                         * tokens holding many sequences (frontend/lower.h fe_token_shape) */
    int one_cycle;      /* lr_scheduler: one_cycle: AdamW's beta1 is the plan's input "beta1", a new value each step */
    int dpo;            /* a preference objective (with_rl: RL_DPO, RL_DPO_IPO, RL_SIMPO, RL_ORPO): B/2 pairs */
    double aux;         /* > 0: output_router_logits with this router_aux_loss_coef (an MoE model) */
} trcase;

static trcase trs[96];
static int ntrs;

static void add_tr(const char *model, int bf16, int ckpt, int64_t hidden, int64_t heads, int64_t kv, int64_t hd, int64_t B,
                   int64_t S) {
    if (ntrs >= (int)AX_ARRAY_LEN(trs)) abort(); /* a case more than the table holds: make it larger */
    trcase *t = &trs[ntrs++];
    *t = (trcase){.model = model, .bf16 = bf16, .ckpt = ckpt, .hidden = hidden, .heads = heads, .kv = kv, .hd = hd,
                  .B = B, .S = S};
    snprintf(t->name, sizeof t->name, "train %s%s %s%s B=%lld S=%lld", model,
             hd > 0 ? (hd == 64 ? " hd64" : " hd128") : "", bf16 ? "bf16" : "f32", ckpt ? " checkpointing" : "",
             (long long)B, (long long)S);
}

/* A Gemma model's cases: f32 and bf16 with checkpointing at its head_dim 16 (the generic attention), bf16 at
 * head_dim 64 (the fast kernels, then the tensor-core ones) */
static void add_gemma_trs(const char *model) {
    add_tr(model, 0, 0, 0, 0, 0, 0, 2, 64);
    add_tr(model, 1, 1, 0, 0, 0, 0, 2, 64);
    add_tr(model, 1, 0, 256, 4, 2, 64, 2, 200);
    add_tr(model, 1, 0, 256, 4, 2, 64, 2, 200);
    trs[ntrs - 1].attn = "tc";
    strncat(trs[ntrs - 1].name, " (tensor-core attention)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
}

/* A multi-rank case: world local ranks (threads) on the one GPU, each with a
 * CPU and a CUDA session; the CUDA ranks' collectives are host-staged. */
static void add_trp(const char *what, int bf16, int ckpt, int64_t hd, int64_t B, int64_t S, int world, int sp,
                    pass_shard_cfg sh) {
    if (ntrs >= (int)AX_ARRAY_LEN(trs)) abort();
    trcase *t = &trs[ntrs++];
    *t = (trcase){.model = "tiny-llama", .bf16 = bf16, .ckpt = ckpt, .hidden = 256, .heads = 4, .kv = 2, .hd = hd,
                  .B = B, .S = S, .world = world, .sp = sp, .sh = sh};
    if (hd == 128) t->heads = 2, t->kv = 1;
    snprintf(t->name, sizeof t->name, "train tiny-llama hd%lld %s%s B=%lld S=%lld %d ranks: %s", (long long)hd,
             bf16 ? "bf16" : "f32", ckpt ? " checkpointing" : "", (long long)B, (long long)S, world, what);
}

/* The last case trains LoRA / QLoRA adapters on every linear layer of the
 * decoder (lora_target_linear: true, r 8, alpha 16, lora_dropout p): the
 * base frozen, dropout masks from the session's dropout_seed, QLoRA's base
 * weights NF4 (tiny-llama's down_proj has K = 176: a short last block),
 * the lm head frozen (dw=0). Only the adapters have gradients to compare. */
static void with_adapter(pass_adapter a, double p) {
    trcase *t = &trs[ntrs - 1];
    t->lora = (pass_lora_cfg){.adapter = a, .r = 8, .alpha = 16, .dropout = p, .target_linear = 1, .bf16 = t->bf16};
    size_t l = strlen(t->name);
    snprintf(t->name + l, sizeof t->name - l, " %s (r 8, all linear, dropout %g)",
             a == PASS_ADAPTER_QLORA ? "qlora + load_in_4bit" : "lora", p);
}

/* The last case (an MoE model) with LoRA on these targets (r 8, alpha 16): PEFT moves the experts' and the router's
 * names onto their weights (lora_delta before moe_ffn and the router's matmul) */
static const char *const moe_qwen_targets[] = {"q_proj", "gate_proj", "up_proj", "down_proj", "gate"};
static const char *const moe_mixtral_targets[] = {"v_proj", "w1", "w3", "w2", "gate"};
static void with_moe_adapter(const char *const *targets, size_t n) {
    trcase *t = &trs[ntrs - 1];
    t->lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 8, .alpha = 16, .targets = targets, .ntargets = (int)n,
                              .bf16 = t->bf16};
    strncat(t->name, " lora on the experts, router and attention (r 8)", sizeof t->name - strlen(t->name) - 1);
}

/* The last case (gpt-oss) with LoRA on q_proj and, by lora_target_parameters, on the router's weight and the
 * experts' transposed [E, In, Out] weights (lora_delta t=1 before moe_ffn_oss) */
static const char *const oss_targets[] = {"q_proj"};
static const char *const oss_params[] = {"mlp.router.weight", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"};
static void with_oss_adapter(void) {
    trcase *t = &trs[ntrs - 1];
    t->lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 8, .alpha = 16, .targets = oss_targets, .ntargets = 1,
                              .target_params = oss_params, .ntarget_params = 3, .bf16 = t->bf16};
    strncat(t->name, " lora on the experts, router and q_proj (r 8)", sizeof t->name - strlen(t->name) - 1);
}

/* The last case with DoRA (peft_use_dora) on its adapter: dora_norm,
 * dora_scale and its backward in every adapted layer, the magnitudes
 * trained (their gradient norms compared like the adapters'). */
static void with_dora(void) {
    trcase *t = &trs[ntrs - 1];
    t->lora.dora = 1;
    strncat(t->name, " + DoRA", sizeof t->name - strlen(t->name) - 1);
}

/* The last case in pure bf16 (`bfloat16: true`): bf16 moments beside the
 * bf16 parameters, every update stochastically rounded (axo_adamw_sr_bf16
 * on the device, the CPU kernel on the host under offload). */
static void pure_bf16(void) {
    trcase *t = &trs[ntrs - 1];
    t->pure = 1;
    strncat(t->name, " pure bf16 (bfloat16: true)", sizeof t->name - strlen(t->name) - 1);
}

/* The last case with 8-bit AdamW state (`optimizer: adamw_bnb_8bit`): the
 * 2-d parameters of >= 4096 elements keep u8 moments and f32 block maxima
 * (axo_adamw8_* on the device, the CPU kernel on the host under offload). */
static void opt_8bit(void) {
    trcase *t = &trs[ntrs - 1];
    t->opt8 = 1;
    strncat(t->name, " 8-bit AdamW state", sizeof t->name - strlen(t->name) - 1);
}

/* The last case with lr_scheduler: one_cycle (cycle_momentum): every AdamW reads the step's beta1 from input
 * "beta1", set to another value before each step on both executors. */
static void one_cycle(void) {
    trcase *t = &trs[ntrs - 1];
    t->one_cycle = 1;
    strncat(t->name, " one_cycle (beta1 input)", sizeof t->name - strlen(t->name) - 1);
}

/* The last case with val_set_size: its plan has eval_step (forward only,
 * dropout off, sharded like micro_step), run once after the training steps
 * on a batch neither executor trained on. */
static void with_eval(void) {
    trcase *t = &trs[ntrs - 1];
    t->eval = 1;
    strncat(t->name, " + eval_step", sizeof t->name - strlen(t->name) - 1);
}

/* The last case with unfrozen_parameters: one pattern (a row range gives
 * the gradient a mask_rows before it is accumulated). */
static void with_unfrozen(const char *pattern) {
    trcase *t = &trs[ntrs - 1];
    t->unfrozen = pattern;
    size_t l = strlen(t->name);
    snprintf(t->name + l, sizeof t->name - l, " unfrozen %s", pattern);
}

/* The last case with NEFTune (neftune_noise_alpha): the neftune node on
 * the embeddings, its keys from each session (the same on both executors). */
static void with_neftune(double alpha) {
    trcase *t = &trs[ntrs - 1];
    t->neftune = alpha;
    size_t l = strlen(t->name);
    snprintf(t->name + l, sizeof t->name - l, " + NEFTune alpha %g", alpha);
}

/* The last case with a preference objective (trcase.dpo, one of these): its B rows are B/2 pairs.
 *   RL_DPO: TRL's sigmoid DPO loss; each step the reference losses are the CPU eval_step's of the batch, shifted
 *     (so that no pair sits at z = 0), set on both sessions with the pair scales; the loss compared is
 *     sum_p scale_p loss_p (@stats/dpo_pair_loss), eval_step's per-row losses the reference both executors read.
 *   RL_DPO_IPO: with TRL's loss_type [sigmoid, ipo], weights [0.7, 0.3]: ipo reads the rows' completion token counts
 *     (each row's kept targets here).
 *   RL_SIMPO: TRL's CPOTrainer: no reference, the simpo loss over the rows' mean token log-probs, and the NLL weights
 *     of the chosen rows (alpha 1 over their targets) added to the coef; rows of S + 2 tokens.
 *   RL_ORPO: TRL's ORPOTrainer: the odds-ratio loss, the prompt rows' forward pass, the gradient pass over every
 *     target with a per-token scale (an outer product of the rows' coef, masked, plus the NLL weights). */
enum { RL_NONE, RL_DPO, RL_DPO_IPO, RL_SIMPO, RL_ORPO };
static void with_rl(int kind) {
    static const char *const suffix[] = {"", " rl: dpo", " rl: dpo sigmoid + ipo", " rl: simpo", " rl: orpo"};
    trcase *t = &trs[ntrs - 1];
    t->dpo = kind;
    strncat(t->name, suffix[kind], sizeof t->name - strlen(t->name) - 1);
}

/* The last case packed one bin a micro-batch: the plan's row is B x S tokens, the batches many sequences of
 * uneven length (the attention kernels skip the key tiles left of a query tile's first sequence). */
static void with_bins(void) {
    trcase *t = &trs[ntrs - 1];
    t->bins = 1;
    strncat(t->name, " one bin a micro-batch", sizeof t->name - strlen(t->name) - 1);
}

static void make_trains(void) {
    add_tr("tiny-llama", 0, 0, 0, 0, 0, 0, 4, 128);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    trs[ntrs - 1].unfused = 1;
    strncat(trs[ntrs - 1].name, " unfused lm head", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    add_tr("tiny-qwen2", 0, 0, 0, 0, 0, 0, 4, 96);
    add_tr("tiny-qwen2", 1, 1, 0, 0, 0, 0, 4, 96);
    add_tr("tiny-qwen3", 0, 1, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-llama", 1, 0, 256, 4, 2, 64, 2, 200);
    add_tr("tiny-llama", 0, 0, 256, 2, 1, 128, 2, 130);
    add_tr("tiny-llama", 1, 0, 256, 4, 2, 64, 2, 200);
    trs[ntrs - 1].attn = "tc";
    strncat(trs[ntrs - 1].name, " (tensor-core attention)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    /* sequence parallelism: ring attention (attention_blk, attn_merge, ring_shift) */
    add_trp("sp 2", 0, 0, 64, 2, 128, 2, 2, (pass_shard_cfg){0});
    add_trp("sp 2", 1, 1, 128, 1, 192, 2, 2, (pass_shard_cfg){0});
    add_trp("dp 2 x sp 2", 1, 0, 64, 2, 128, 4, 2, (pass_shard_cfg){0});
    add_trp("dp 2 x sp 2 ZeRO-3", 0, 0, 64, 1, 128, 4, 2, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_eval();
    add_trp("sp 2", 1, 0, 64, 2, 200, 2, 2, (pass_shard_cfg){0}); /* 100 tokens per rank, chunks of 50 */
    trs[ntrs - 1].attn = "tc";
    strncat(trs[ntrs - 1].name, " (tensor-core attention)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    /* CPU offload: host state, host optimizer nodes (CPU kernels), to_host/to_device copies */
    add_trp("dp 2 ZeRO-3 + offload_all", 1, 0, 64, 2, 128, 2, 1,
            (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1, .offload_params = 1, .offload_optimizer = 1});
    with_eval();
    add_trp("dp 2 ZeRO-1 + offload_optimizer", 0, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 1, .offload_optimizer = 1});
    add_trp("dp 2 ZeRO-2 + offload_optimizer", 1, 1, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 2, .offload_optimizer = 1});
    /* LoRA / QLoRA: dropout and dequant_nf4 in real steps; FSDP+QLoRA gathers the row-split NF4 codes,
     * steps and row maxima (host-staged over the local ranks) before each use */
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_adapter(PASS_ADAPTER_LORA, 0.1);
    with_eval();
    add_tr("tiny-llama", 0, 1, 0, 0, 0, 0, 2, 96);
    with_adapter(PASS_ADAPTER_QLORA, 0.05);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_adapter(PASS_ADAPTER_QLORA, 0.1);
    add_trp("dp 2 ZeRO-3", 1, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_adapter(PASS_ADAPTER_QLORA, 0.1);
    /* DoRA: 1 rank bf16 with dropout (x_d W^T taken again) and eval_step; QLoRA + FSDP (magnitudes of
     * the dequantized rows, row-split over the ranks) */
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_adapter(PASS_ADAPTER_LORA, 0.1);
    with_dora();
    with_eval();
    add_trp("dp 2 ZeRO-3", 1, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_adapter(PASS_ADAPTER_QLORA, 0);
    with_dora();
    add_trp("dp 2 ZeRO-3 + offload_all, pin_memory false", 1, 0, 64, 2, 128, 2, 1,
            (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1, .offload_params = 1, .offload_optimizer = 1});
    trs[ntrs - 1].pageable = 1;
    /* pure bf16: one rank; ZeRO-2 (a sharded bf16 copy updated at its block's offset, then gathered);
     * ZeRO-3 (the parameters' own blocks); ZeRO-2 + offload_optimizer (the host step, rank coordinates) */
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    pure_bf16();
    add_trp("dp 2 ZeRO-2", 1, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 2});
    pure_bf16();
    add_trp("dp 2 ZeRO-3", 1, 1, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    pure_bf16();
    add_trp("dp 2 ZeRO-2 + offload_optimizer", 1, 0, 64, 2, 128, 2, 1,
            (pass_shard_cfg){.stage = 2, .offload_optimizer = 1});
    pure_bf16();
    /* 8-bit AdamW state: one rank f32 (tiny-llama: rows of 64 and 176, one short block each) and pure bf16;
     * ZeRO-2 with bf16 and f32 master weights (hidden 256: rows of 256 and 576 = 256 + 256 + 64) */
    add_tr("tiny-llama", 0, 0, 0, 0, 0, 0, 4, 128);
    opt_8bit();
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    pure_bf16();
    opt_8bit();
    add_trp("dp 2 ZeRO-2", 1, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 2});
    opt_8bit();
    /* one_cycle: AdamW's beta1 a runtime input changed every step: one rank f32; 8-bit state under ZeRO-2; pure
     * bf16 under ZeRO-2 + offload_optimizer (the host step reads the input from host memory) */
    add_tr("tiny-llama", 0, 0, 0, 0, 0, 0, 4, 128);
    one_cycle();
    add_trp("dp 2 ZeRO-2", 1, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 2});
    opt_8bit();
    one_cycle();
    add_trp("dp 2 ZeRO-2 + offload_optimizer", 1, 0, 64, 2, 128, 2, 1,
            (pass_shard_cfg){.stage = 2, .offload_optimizer = 1});
    pure_bf16();
    one_cycle();
    /* NEFTune: noise on the embeddings in micro_step (none in eval_step), one rank bf16 and dp 2 x sp 2 */
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_neftune(5);
    with_eval();
    add_trp("dp 2 x sp 2 ZeRO-3", 0, 0, 64, 1, 128, 4, 2, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_neftune(5);
    /* rl: dpo: two fused lm-head passes around dpo_loss, eval_step's per-row losses: one rank f32 and bf16 + LoRA,
     * ZeRO-3 on 2 ranks */
    add_tr("tiny-llama", 0, 0, 0, 0, 0, 0, 4, 128);
    with_rl(RL_DPO);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_adapter(PASS_ADAPTER_LORA, 0);
    with_rl(RL_DPO);
    add_trp("dp 2 ZeRO-3", 0, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_rl(RL_DPO);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_rl(RL_DPO_IPO);
    add_tr("tiny-llama", 0, 0, 0, 0, 0, 0, 4, 128);
    with_rl(RL_SIMPO);
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_rl(RL_ORPO);
    /* unfrozen_parameters with row ranges: lm_head's gradient masked to some rows, one rank bf16 and ZeRO-3 x 2 */
    add_tr("tiny-llama", 1, 0, 0, 0, 0, 0, 4, 128);
    with_unfrozen("lm_head.weight[4:100]");
    add_trp("dp 2 ZeRO-3", 0, 0, 64, 2, 128, 2, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    with_unfrozen("model.embed_tokens.weight[:40]");
    /* one bin of 4 x 128 tokens a micro-batch: bf16 hd 64 (the tensor-core kernels) and f32 hd 128 on one rank;
     * its row split zigzag over 2 sequence-parallel ranks (ring attention over many sequences) */
    add_tr("tiny-llama", 1, 0, 256, 4, 2, 64, 4, 128);
    with_bins();
    add_tr("tiny-llama", 0, 0, 256, 2, 1, 128, 4, 128);
    with_bins();
    for (int hd = 64; hd <= 128; hd += 64) {
        add_tr("tiny-llama", 1, 0, 256, 256 / hd, 128 / hd, hd, 4, 128);
        trs[ntrs - 1].attn = "tc";
        strncat(trs[ntrs - 1].name, " (tensor-core attention)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
        with_bins();
    }
    add_trp("sp 2", 1, 0, 64, 4, 128, 2, 2, (pass_shard_cfg){0});
    with_bins();
    add_trp("sp 2", 1, 0, 64, 4, 128, 2, 2, (pass_shard_cfg){0});
    trs[ntrs - 1].attn = "tc";
    strncat(trs[ntrs - 1].name, " (tensor-core attention)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    with_bins();
    /* Gemma 3: the scaled embedding, (1 + w) norms before and after attention and MLP, GeGLU, a sliding window of 7
     * on layer 0 with its own RoPE base; f32 and bf16 with checkpointing at head_dim 16 (the generic attention),
     * bf16 at head_dim 64 (the fast kernels, and the tensor-core ones) */
    add_gemma_trs("tiny-gemma3");
    /* mixture of experts: Qwen3-MoE (a sparse and a dense layer), Mixtral (both sparse); Phi-4-mini's partial
     * LongRoPE over rows past its original 16 positions */
    add_tr("tiny-qwen3moe", 0, 0, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-qwen3moe", 1, 1, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-mixtral", 1, 0, 0, 0, 0, 0, 2, 64);
    /* LoRA on the experts and the router (PEFT's ParamWrapper: lora_delta), with an attention projection's */
    add_tr("tiny-qwen3moe", 1, 1, 0, 0, 0, 0, 2, 64);
    with_moe_adapter(moe_qwen_targets, AX_ARRAY_LEN(moe_qwen_targets));
    add_tr("tiny-mixtral", 0, 0, 0, 0, 0, 0, 2, 64);
    with_moe_adapter(moe_mixtral_targets, AX_ARRAY_LEN(moe_mixtral_targets));
    /* QLoRA with quantize_moe_experts: the stacked experts NF4 [E, O, I], dequantized under their adapters */
    add_tr("tiny-qwen3moe", 1, 0, 0, 0, 0, 0, 2, 64);
    with_moe_adapter(moe_qwen_targets, AX_ARRAY_LEN(moe_qwen_targets));
    trs[ntrs - 1].lora.adapter = PASS_ADAPTER_QLORA;
    trs[ntrs - 1].lora.quantize_moe = 1;
    strncat(trs[ntrs - 1].name, " qlora + quantize_moe_experts", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    /* the experts' GEMMs on tensor cores (AXO_CUDA_MOE=tc): bf16, full fine-tune and checkpointing + expert LoRA */
    add_tr("tiny-qwen3moe", 1, 0, 0, 0, 0, 0, 2, 64);
    trs[ntrs - 1].moe = "tc";
    strncat(trs[ntrs - 1].name, " (tc MoE GEMMs)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    add_tr("tiny-mixtral", 1, 1, 0, 0, 0, 0, 2, 64);
    with_moe_adapter(moe_mixtral_targets, AX_ARRAY_LEN(moe_mixtral_targets));
    trs[ntrs - 1].moe = "tc";
    strncat(trs[ntrs - 1].name, " (tc MoE GEMMs)", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    add_tr("tiny-phi4mini", 0, 0, 0, 0, 0, 0, 2, 64);
    /* output_router_logits: the routers' load-balancing loss added (coef 0.2), f32 and bf16 with checkpointing */
    add_tr("tiny-qwen3moe", 0, 0, 0, 0, 0, 0, 2, 64);
    trs[ntrs - 1].aux = 0.2;
    strncat(trs[ntrs - 1].name, " + load-balancing loss", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    add_tr("tiny-mixtral", 1, 1, 0, 0, 0, 0, 2, 64);
    trs[ntrs - 1].aux = 0.2;
    strncat(trs[ntrs - 1].name, " + load-balancing loss", sizeof trs[ntrs - 1].name - strlen(trs[ntrs - 1].name) - 1);
    /* gpt-oss: attention sinks, a sliding window of 8 on layer 0, the biased router, the transposed biased experts
     * with the clamped GLU (swiglu_limit 0.1: the clamps bite); f32, bf16 with checkpointing, and expert LoRA */
    add_tr("tiny-gptoss", 0, 0, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-gptoss", 1, 1, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-gptoss", 0, 0, 0, 0, 0, 0, 2, 64);
    with_oss_adapter();
    /* ... and on the sp ring (2 ranks): the sinks applied to the merged blocks (attn_sink, attn_sink_bwd), the
     * window across the ranks' chunks */
    add_trp("sp 2", 0, 0, 64, 2, 64, 2, 2, (pass_shard_cfg){0});
    {
        trcase *t = &trs[ntrs - 1];
        t->model = "tiny-gptoss", t->hidden = 64, t->heads = 4, t->kv = 2, t->hd = 64; /* the ring kernels: hd 64 / 128 */
        snprintf(t->name, sizeof t->name, "train tiny-gptoss hd64 f32 B=2 S=64 2 ranks: sp 2");
    }
    /* OLMoE: whole-projection q/k norms in a pre-norm layer, every MLP sparse */
    add_tr("tiny-olmoe", 1, 0, 0, 0, 0, 0, 2, 64);
    /* Ministral 3: yarn, and its queries scaled past 16 positions (rows of 64) */
    add_tr("tiny-ministral3", 1, 0, 0, 0, 0, 0, 2, 64);
    /* Gemma 2: soft-capped scores (cap 1) and logits (cap 0.2), a window on layer 0; f32 and bf16 with checkpointing at
     * head_dim 16 (the generic attention), bf16 at head_dim 64 (the fast and the tensor-core kernels) */
    add_gemma_trs("tiny-gemma2");
    /* Qwen2-MoE: the shared expert and its sigmoid gate; GLM-4: interleaved partial RoPE, fused gate_up, extra norms */
    add_tr("tiny-qwen2moe", 0, 0, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-qwen2moe", 1, 1, 0, 0, 0, 0, 2, 64);
    add_tr("tiny-glm4", 1, 0, 0, 0, 0, 0, 2, 64);
}

static ir_module *build(const trcase *t, ax_arena *ar, ax_diag *d) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/configs/models/%s", AXO_SOURCE_DIR, t->model);
    fe_model m;
    if (fe_model_load(dir, &m, ar, d) != 0) return NULL;
    if (t->aux > 0) m.output_router_logits = 1, m.router_aux_loss_coef = t->aux;
    if (t->hd > 0) {
        m.hidden_size = t->hidden;
        m.num_attention_heads = t->heads;
        m.num_key_value_heads = t->kv;
        m.head_dim = t->hd;
        m.intermediate_size = 2 * t->hidden + 64;
    }
    fe_config c;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = t->dpo ? t->B / 2 : t->B; /* DPO: B rows are B/2 pairs */
    if (t->dpo) c.rl = FE_RL_DPO, c.rl_beta = 0.1, c.dpo_loss_types = "sigmoid";
    if (t->dpo == RL_DPO_IPO) c.dpo_loss_types = "sigmoid,ipo", c.dpo_loss_weights = "0.7,0.3"; /* the token counts input too */
    if (t->dpo == RL_SIMPO) c.rl_kind = FE_RL_SIMPO, c.dpo_loss_types = "simpo", c.rl_beta = 2.0, c.simpo_gamma = 0.5, c.cpo_alpha = 1.0;
    if (t->dpo == RL_ORPO) c.rl_kind = FE_RL_ORPO, c.dpo_loss_types = "orpo", c.rl_beta = 0.2;
    c.sequence_len = t->S;
    c.sample_packing = t->bins; /* multipack_real_batches stays 0: one bin a micro-batch */
    c.gradient_accumulation_steps = 1;
    c.num_epochs = 1;
    c.learning_rate = 1e-3;
    c.lr_scheduler = t->one_cycle ? FE_SCHED_ONE_CYCLE : FE_SCHED_CONSTANT; /* the lr stays 1e-3 below */
    c.oc_pct_start = c.oc_div_factor = c.oc_final_div_factor = c.oc_base_momentum = c.oc_max_momentum = NAN;
    c.oc_cycle_momentum = t->one_cycle;
    c.adam_beta1 = 0.9, c.adam_beta2 = 0.999, c.adam_epsilon = 1e-8;
    c.max_grad_norm = 1.0;
    c.bf16 = t->bf16;
    c.bf16_pure = t->pure;
    c.optimizer_8bit = t->opt8;
    c.gradient_checkpointing = t->ckpt;
    c.sequence_parallel_degree = t->sp > 1 ? t->sp : 1;
    c.seed = 11;
    c.output_dir = "/tmp";
    c.liger_fused_linear_cross_entropy = t->unfused ? 0 : -1; /* -1: not written, axo's default (fused) */
    if (t->eval) c.val_set_size = 0.1;
    c.neftune_noise_alpha = t->neftune;
    const char *unfrozen = t->unfrozen; /* lives until fe_lower below */
    if (unfrozen) c.unfrozen = &unfrozen, c.nunfrozen = 1;
    if (t->lora.adapter != PASS_ADAPTER_NONE) { /* the YAML keys the pass config below stands for */
        c.adapter = t->lora.adapter == PASS_ADAPTER_QLORA ? FE_ADAPTER_QLORA : FE_ADAPTER_LORA;
        c.load_in_4bit = t->lora.adapter == PASS_ADAPTER_QLORA;
        c.lora_r = t->lora.r, c.lora_alpha = t->lora.alpha, c.lora_dropout = t->lora.dropout;
        c.lora_target_linear = t->lora.target_linear;
        c.peft_use_dora = t->lora.dora;
    }
    ir_module *mod = ir_module_create();
    int32_t loss;
    pass_ctx pc = {.checkpoint = t->ckpt,
                   .lora = t->lora,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 1.0,
                           .master_f32 = t->bf16 && !t->pure, .pure_bf16 = t->pure, .state_8bit = t->opt8},
                   .shard = t->sh};
    if (fe_lower(&c, &m, t->world > 1 ? t->world : 1, mod, &loss, d) != 0) goto fail;
    pc.m = mod, pc.loss = loss;
    if (pass_pipeline(&pc, d) != 0) goto fail;
    if (t->pageable) { /* as axoc records DeepSpeed's pin_memory: false (absent: pinned) */
        ir_module_set_attr(mod, ir_ai("offload.pin_memory_param", 0));
        ir_module_set_attr(mod, ir_ai("offload.pin_memory_optimizer", 0));
    }
    ax_buf txt = {0};
    ir_print(mod, &txt);
    ir_module_destroy(mod);
    mod = ir_parse(txt.data, txt.len, "plan", d);
    ax_buf_free(&txt);
    return mod;
fail:
    ir_module_destroy(mod);
    return NULL;
}

/* Step k's batch: random tokens, 2-3 packed sequences per row; many (a bin): sequences of 1 to 100 tokens, then a
 * few padding tokens, each its own sequence. */
static int64_t make_batch(int64_t B, int64_t S, int64_t V, int k, int many, int32_t *ids, int32_t *tgt, int32_t *pos,
                          int32_t *seg) {
    uint64_t save = rng;
    rng = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
    int64_t ntgt = 0;
    for (int64_t b = 0; b < B && many; b++) {
        const int64_t body = S - 1 - (int64_t)(urand() * 8.0); /* then 1 to 8 padding tokens */
        for (int64_t s = 0, sq = 0; s < S; sq++) {
            const int real = s < body;
            int64_t end = real ? s + 1 + (int64_t)(urand() * 100.0) : s + 1;
            if (real && end > body) end = body;
            for (int64_t j = s; j < end; j++) {
                const int64_t t = b * S + j;
                ids[t] = (int32_t)(urand() * (double)V);
                pos[t] = real ? (int32_t)(j - s) : 0;
                seg[t] = (int32_t)sq;
                tgt[t] = real && j + 1 < end ? (int32_t)(urand() * (double)V) : -100;
                ntgt += tgt[t] != -100;
            }
            s = end;
        }
    }
    for (int64_t b = 0; b < B && !many; b++) {
        int64_t cut1 = S / 3 + (int64_t)(urand() * (double)(S / 4)), cut2 = (2 * S) / 3 + (int64_t)(urand() * (double)(S / 8));
        for (int64_t s = 0; s < S; s++) {
            int64_t t = b * S + s, sq = s < cut1 ? 0 : s < cut2 ? 1 : 2, start = sq == 0 ? 0 : sq == 1 ? cut1 : cut2;
            int64_t end = sq == 0 ? cut1 : sq == 1 ? cut2 : S;
            ids[t] = (int32_t)(urand() * (double)V);
            pos[t] = (int32_t)(s - start);
            seg[t] = (int32_t)sq;
            tgt[t] = s + 1 < end ? (int32_t)(urand() * (double)V) : -100;
            ntgt += tgt[t] != -100;
        }
    }
    rng = save;
    return ntgt;
}

static double gnorm(const rt_buf *b) { return sqrt(ck_sumsq_f32(rt_f(b), b->numel)); }
static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

static int count_op(const ir_module *m, ir_op op) {
    int k = 0;
    for (int pi = 0; pi < m->nprograms; pi++)
        for (int i = 0; i < m->programs[pi]->nnodes; i++) k += m->programs[pi]->nodes[i].op == op;
    return k;
}

/* One rank of a training case (the only one when t->world <= 1). cc, gc:
 * this rank's world communicator for the CPU and for the CUDA session (NULL:
 * one rank). *ok: every step within tolerance; msg: what happened. Returns
 * -1 if a step failed to run (a multi-rank case then aborts its peers). */
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;
static int train_rank(const trcase *t, rt_comm *cc, rt_comm *gc, int *ok_out, char *msg, size_t cap, ax_diag *d) {
    ax_arena *ar = ax_arena_create();
    ir_module *m1 = build(t, ar, d), *m2 = build(t, ar, d);
    rt_session cpu, gpu;
    rt_rank_coll rcc, rcg;
    memset(&cpu, 0, sizeof cpu);
    memset(&gpu, 0, sizeof gpu);
    memset(&rcc, 0, sizeof rcc);
    memset(&rcg, 0, sizeof rcg);
    int multi = cc != NULL, rank = multi ? rt_comm_rank(cc) : 0, ret = 0;
    int rc = !m1 || !m2;
    if (!rc && t->opt8 && !count_op(m1, IR_OP_adamw8)) { /* the case must really take the 8-bit path */
        ax_error(d, t->name, "8-bit AdamW state asked for, but the plan has no adamw8");
        rc = 1;
    }
    if (!rc) rc = rt_session_from_module(m1, &cpu, d) || rt_session_from_module(m2, &gpu, d);
    else ir_module_destroy(m1), ir_module_destroy(m2);
    if (!rc && multi) rc = rt_attach_comm(&cpu, cc, &rcc, d) || rt_attach_comm(&gpu, gc, &rcg, d);
    if (!rc) rc = rt_session_init_weights(&cpu, NULL, d) || rt_session_init_weights(&gpu, NULL, d);
    rt_cuda_opts o = g_opts;
    char info[512] = "";
    o.poison = 1; /* also checks that no host memory is touched while a copy may still use it */
    o.info = info, o.info_cap = sizeof info;
    if (!rc) {
        pthread_mutex_lock(&attach_mu); /* one rank at a time loads (compiles) the kernels */
        rc = rt_cuda_attach(&gpu, &o, d);
        pthread_mutex_unlock(&attach_mu);
    }
    *ok_out = 0;
    if (rc) {
        snprintf(msg, cap, "setup failed");
        ret = -1;
        goto done;
    }
    /* offload: the copies are what the case says (rank 0 writes the info line) */
    const char *mode = t->pageable ? "pageable, synchronous copies" : "pinned, asynchronous copies";
    if ((t->sh.offload_params || t->sh.offload_optimizer) && info[0] && !strstr(info, mode)) {
        snprintf(msg, cap, "offload memory is not %s: %s", mode, info);
        ret = -1;
        goto done;
    }
    {
        int64_t n = cpu.B * cpu.S;
        int32_t *ids = malloc(4 * (size_t)n), *tgt = malloc(4 * (size_t)n), *pos = malloc(4 * (size_t)n),
                *seg = malloc(4 * (size_t)n);
        double lt = t->bf16 ? 1e-2 : 1e-4, pt = t->bf16 ? 5e-2 : 1e-3;
        const char *lsname = t->dpo ? "stats/dpo_pair_loss" : "stats/loss_sum";
        rt_buf *ls[2] = {rt_session_global(&cpu, lsname), rt_session_global(&gpu, lsname)};
        float dref[64], dsc[32], dcnt[64]; /* rl: dpo: the reference row losses, pair scales, row token counts */
        rt_buf *gs[2] = {rt_session_global(&cpu, "stats/grad_sumsq"), rt_session_global(&gpu, "stats/grad_sumsq")};
        int dpax = ir_mesh_find(cpu.m, "dp"), dpc = multi && dpax >= 0 ? cpu.st.coord[dpax] : 0;
        int ok = 1;
        msg[0] = 0;
        /* one rank stops at the first step out of tolerance; ranks of a group
         * run every step (a rank that stopped would leave its peers waiting) */
        for (int k = 1; k <= g_steps && (ok || multi); k++) {
            int64_t ntgt = make_batch(cpu.B, cpu.S, cpu.V, k + 1000 * dpc, t->bins, ids, tgt, pos, seg);
            float scale = (float)(1.0 / (double)(ntgt > 0 ? ntgt : 1));
            if (t->dpo) { /* the reference: the CPU's eval_step of this batch at these weights, shifted */
                const int64_t P = cpu.B / 2;
                rc = cpu.B > 64;
                for (int64_t j = 0; j < cpu.B && !rc; j++) dref[j] = 0;
                for (int64_t j = 0; j < P && !rc; j++) dsc[j] = (float)(1.0 / (double)P);
                for (int64_t j = 0; j < cpu.B && !rc; j++) { /* the row's targets (as many as its completion's tokens) */
                    dcnt[j] = 0;
                    for (int64_t q = 0; q < cpu.S; q++) dcnt[j] += tgt[j * cpu.S + q] != -100;
                }
                if (!rc && t->dpo == RL_ORPO) { /* orpo: no reference; its four [B,S] inputs on both sessions */
                    int32_t *scr = malloc(sizeof *scr * (size_t)(4 * cpu.B * cpu.S));
                    if (!scr) abort();
                    rt_session_set_dpo(&cpu, dref, dsc, dcnt), rt_session_set_dpo(&gpu, dref, dsc, dcnt);
                    rt_dpo_orpo_stage(&cpu, ids, tgt, seg, NULL, P, cpu.S, 1.0, scr, NULL);
                    rt_dpo_orpo_stage(&gpu, ids, tgt, seg, NULL, P, cpu.S, 1.0, scr, NULL);
                    free(scr);
                }
                if (!rc && t->dpo == RL_SIMPO) { /* simpo: no reference; the chosen rows' NLL weights */
                    float nll[64] = {0};
                    double nc = 0;
                    for (int64_t j = 0; j < P; j++) nc += dcnt[j];
                    for (int64_t j = 0; j < P; j++) nll[j] = nc > 0 ? (float)(1.0 / nc) : 0.0f;
                    rt_session_set_dpo(&cpu, dref, dsc, dcnt), rt_session_set_dpo(&gpu, dref, dsc, dcnt);
                    rt_session_set_dpo_nll(&cpu, nll), rt_session_set_dpo_nll(&gpu, nll);
                }
                if (!rc && t->dpo < RL_SIMPO) rt_session_set_dpo(&cpu, dref, dsc, dcnt);
                rc = rc || (t->dpo < RL_SIMPO && rt_session_eval_step(&cpu, ids, tgt, pos, seg, d));
                const rt_buf *er = rt_session_global(&cpu, "stats/dpo_rows");
                for (int64_t j = 0; j < cpu.B && !rc && t->dpo < RL_SIMPO; j++) dref[j] = rt_f(er)[j] + (j % 3 == 0 ? 0.4f : j % 3 == 1 ? -0.3f : 0.1f);
                if (!rc && t->dpo < RL_SIMPO) rt_session_set_dpo(&cpu, dref, dsc, dcnt), rt_session_set_dpo(&gpu, dref, dsc, dcnt);
                if (rc) {
                    ok = 0, ret = -1;
                    snprintf(msg, cap, "step %d: the DPO reference (eval_step) failed", k);
                    break;
                }
            }
            rt_f(ls[0])[0] = rt_f(ls[1])[0] = 0;
            if (cpu.aux) /* the load-balancing loss's share of the gradient: its coef over the loss scale */
                rt_f(&cpu.in_aux_scale)[0] = rt_f(&gpu.in_aux_scale)[0] = (float)(t->aux / (double)scale);
            rc = gpu.backend->upload(gpu.backend, &gpu.st, (int)(ls[1] - gpu.st.globals), d) ||
                 rt_session_micro_step(&cpu, ids, tgt, pos, seg, scale, d) ||
                 rt_session_micro_step(&gpu, ids, tgt, pos, seg, scale, d) ||
                 gpu.backend->download(gpu.backend, &gpu.st, -1, d); /* gradients and the loss */
            if (rc) {
                ok = 0, ret = -1;
                snprintf(msg, cap, "step %d: micro_step failed", k);
                break;
            }
            if (g_dry) { /* nothing computed on the device: only that both executors ran */
                if (t->one_cycle) rt_session_set_beta1(&cpu, 0.9), rt_session_set_beta1(&gpu, 0.9);
                rc = rt_session_opt_step(&cpu, 1e-3f, k, d) || rt_session_opt_step(&gpu, 1e-3f, k, d);
                ok = !rc, ret = rc ? -1 : 0;
                snprintf(msg, cap, "preflight: %d steps of the CPU run and the CUDA dry run ok", k);
                if (rc) break;
                continue;
            }
            double l0 = (double)rt_f(ls[0])[0] * scale, l1 = (double)rt_f(ls[1])[0] * scale;
            if (t->dpo) { /* sum_p scale_p loss_p */
                l0 = l1 = 0;
                for (int64_t j = 0; j < cpu.B / 2; j++)
                    l0 += (double)dsc[j] * (double)rt_f(ls[0])[j], l1 += (double)dsc[j] * (double)rt_f(ls[1])[j];
            }
            /* every parameter's gradient (this rank's block) */
            double worst = 0;
            const char *wname = "";
            for (int g = 0; g < cpu.m->nglobals; g++) {
                if (cpu.m->globals[g].role != IR_ROLE_GRAD) continue;
                double a = gnorm(&cpu.st.globals[g]), b = gnorm(&gpu.st.globals[g]);
                double r = isfinite(b) ? rel(b, a) : INFINITY;
                /* an MoE router's gradient in bf16 once the runs have drifted (from step 3): a token whose top-k
                 * flips between the two runs moves it by several percent (its terms cancel); a kernel's error shows
                 * at steps 1 and 2, where the bound is the others' */
                const char *gn = cpu.m->globals[g].name;
                if (t->bf16 && k > 2 && (strstr(gn, ".mlp.gate.") || strstr(gn, ".mlp.router.")) && r <= 4 * pt) continue;
                if (!(r <= worst)) worst = r, wname = gn;
            }
            if (t->one_cycle) { /* a beta1 of the cycle's range, another each step */
                rt_session_set_beta1(&cpu, 0.95 - 0.0237 * k);
                rt_session_set_beta1(&gpu, 0.95 - 0.0237 * k);
            }
            rc = rt_session_opt_step(&cpu, 1e-3f, k, d) || rt_session_opt_step(&gpu, 1e-3f, k, d) ||
                 gpu.backend->download(gpu.backend, &gpu.st, (int)(gs[1] - gpu.st.globals), d);
            if (rc) {
                ok = 0, ret = -1;
                snprintf(msg, cap, "step %d: opt_step failed", k);
                break;
            }
            double g0 = sqrt((double)rt_f(gs[0])[0]), g1 = sqrt((double)rt_f(gs[1])[0]);
            int sok = rel(l1, l0) <= lt && rel(g1, g0) <= lt && worst <= pt;
            char who[32] = "";
            if (multi) snprintf(who, sizeof who, "rank %d ", rank);
            printf("     %sstep %d: loss cpu %.7f gpu %.7f (rel %.1e) | grad norm cpu %.6f gpu %.6f (rel %.1e) | "
                   "worst param grad rel %.1e (%s)\n",
                   who, k, l0, l1, rel(l1, l0), g0, g1, rel(g1, g0), worst, wname);
            if (!sok && ok) {
                ok = 0;
                snprintf(msg, cap, "step %d outside tolerance (loss/grad norm %.0e, per-parameter %.0e)", k, lt, pt);
            }
        }
        if (t->eval && !rc && (ok || multi)) { /* the held-out loss after training */
            int64_t ntgt = make_batch(cpu.B, cpu.S, cpu.V, 999 + 1000 * dpc, t->bins, ids, tgt, pos, seg);
            rt_f(ls[0])[0] = rt_f(ls[1])[0] = 0;
            rc = !cpu.has_eval || !gpu.has_eval || gpu.backend->upload(gpu.backend, &gpu.st, (int)(ls[1] - gpu.st.globals), d) ||
                 rt_session_eval_step(&cpu, ids, tgt, pos, seg, d) || rt_session_eval_step(&gpu, ids, tgt, pos, seg, d) ||
                 gpu.backend->download(gpu.backend, &gpu.st, (int)(ls[1] - gpu.st.globals), d);
            if (rc) {
                ok = 0, ret = -1;
                snprintf(msg, cap, "eval_step failed (or the plan has none)");
            } else if (!g_dry) {
                double e0 = (double)rt_f(ls[0])[0] / (double)(ntgt > 0 ? ntgt : 1),
                       e1 = (double)rt_f(ls[1])[0] / (double)(ntgt > 0 ? ntgt : 1);
                char who[32] = "";
                if (multi) snprintf(who, sizeof who, "rank %d ", rank);
                printf("     %seval_step: loss cpu %.7f gpu %.7f (rel %.1e)\n", who, e0, e1, rel(e1, e0));
                if (!(rel(e1, e0) <= lt) && ok) {
                    ok = 0;
                    snprintf(msg, cap, "eval_step's loss outside tolerance (%.0e)", lt);
                }
            }
        }
        if (ok && !g_dry)
            snprintf(msg, cap, "%d steps%s within tolerance (loss/grad norm %.0e, per-parameter %.0e)", g_steps,
                     t->eval ? " and eval_step" : "", lt, pt);
        *ok_out = ok;
        free(ids), free(tgt), free(pos), free(seg);
    }
done:
    rt_session_close(&cpu);
    rt_session_close(&gpu);
    if (multi) rt_detach_comm(&rcc), rt_detach_comm(&rcg);
    ax_arena_destroy(ar);
    return ret;
}

#define MAXRANKS 8
typedef struct mjob {
    const trcase *t;
    rt_local_world *wg; /* the CUDA sessions' world (the CPU sessions use the running one) */
    int ok[MAXRANKS];
    char msg[MAXRANKS][512];
    ax_diag d[MAXRANKS];
} mjob;
static int mrank(rt_comm *c, void *arg) {
    mjob *j = arg;
    int r = rt_comm_rank(c);
    return train_rank(j->t, c, rt_local_comm(j->wg, r), &j->ok[r], j->msg[r], sizeof j->msg[r], &j->d[r]);
}

static void run_train(const trcase *t) {
    if (t->world <= 1) {
        ax_diag d;
        ax_diag_init(&d);
        char msg[1024] = "";
        int ok = 0;
        if (t->attn) setenv("AXO_CUDA_ATTN", t->attn, 1);
        if (t->moe) setenv("AXO_CUDA_MOE", t->moe, 1);
        train_rank(t, NULL, NULL, &ok, msg, sizeof msg, &d);
        if (t->attn) unsetenv("AXO_CUDA_ATTN");
        if (t->moe) unsetenv("AXO_CUDA_MOE");
        if (d.nerrors) ax_diag_print(&d, stdout);
        result(ok, t->name, "%s", msg);
        ax_diag_free(&d);
        return;
    }
    mjob *j = calloc(1, sizeof *j);
    rt_local_world *wc = rt_local_world_create(t->world, 120), *wg = rt_local_world_create(t->world, 120);
    if (!j || !wc || !wg || t->world > MAXRANKS) {
        result(0, t->name, "cannot create the local worlds");
    } else {
        j->t = t, j->wg = wg;
        for (int r = 0; r < t->world; r++) ax_diag_init(&j->d[r]);
        if (t->attn) setenv("AXO_CUDA_ATTN", t->attn, 1);
        if (t->moe) setenv("AXO_CUDA_MOE", t->moe, 1); /* read by every rank's CUDA session as it prepares */
        rt_local_world_run(wc, mrank, j);
        if (t->attn) unsetenv("AXO_CUDA_ATTN");
        if (t->moe) unsetenv("AXO_CUDA_MOE");
        int ok = 1, bad = -1;
        for (int r = 0; r < t->world; r++) {
            if (j->d[r].nerrors) {
                printf("     rank %d:\n", r);
                ax_diag_print(&j->d[r], stdout);
            }
            if (!j->ok[r] && bad < 0) bad = r;
            ok &= j->ok[r];
            ax_diag_free(&j->d[r]);
        }
        if (ok) result(1, t->name, "every rank: %s", j->msg[0]);
        else result(0, t->name, "rank %d: %s", bad, j->msg[bad][0] ? j->msg[bad] : "failed");
    }
    if (wc) rt_local_world_destroy(wc);
    if (wg) rt_local_world_destroy(wg);
    free(j);
}

/* A case named "... f32" whose "... bf16" twin exists: the same host code and kernel indexing in the other dtype */
static int is_f32_twin(const char *name, int ncases) {
    const size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 4, " f32")) return 0;
    for (int i = 0; i < ncases; i++) {
        const char *o = i < nops ? ops[i].name : trs[i - nops].name;
        if (strlen(o) == n + 1 && !strncmp(o, name, n - 3) && !strcmp(o + n - 3, "bf16")) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int from = 0, to = 1 << 30, list = 0, steps_given = 0, part = 0, nparts = 1, skip_twins = 0;
    const char *only = NULL, *skip = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--from") && i + 1 < argc) from = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--to") && i + 1 < argc) to = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--skip") && i + 1 < argc) skip = argv[++i]; /* leave out the cases naming it */
        else if (!strcmp(argv[i], "--part") && i + 1 < argc && sscanf(argv[i + 1], "%d/%d", &part, &nparts) == 2 &&
                 nparts >= 1 && part >= 1 && part <= nparts)
            i++, part--; /* K/N: every N-th of the selected cases from the K-th on (ctest runs the parts side by side) */
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) g_steps = atoi(argv[++i]), steps_given = 1;
        else if (!strcmp(argv[i], "--skip-f32-twins")) skip_twins = 1; /* (the sanitizer build: memory, not numbers) */
        else if (!strcmp(argv[i], "--emu")) g_emu = 1;
        else if (!strcmp(argv[i], "--sms") && i + 1 < argc) g_emu_sms = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--list] [--emu [--sms N]] [--from K] [--to K] [--only SUBSTR] [--skip SUBSTR] [--part K/N] "
                            "[--skip-f32-twins] [--steps N]\n",
                    argv[0]);
            return 2;
        }
    }
    make_ops();
    make_trains();
    int ncases = nops + ntrs;
    if (list) {
        for (int i = 0; i < ncases; i++) printf("%d %s\n", i, i < nops ? ops[i].name : trs[i - nops].name);
        return 0;
    }
    char why[256] = "";
    const rt_cuda_emu *emu = NULL;
    if (g_emu) {
#ifdef AXO_HAVE_EMU
        emu = axo_emu_device();
        if (axo_emu_registry_mismatches(stdout)) {
            printf("FAIL the emulator's kernel table and codegen/cuda_kernels.c disagree\n");
            return 1;
        }
        printf("emulated device: kernels on the host SIMT emulator (tests/unit/emu), compared with the CPU executor\n");
#else
        fprintf(stderr, "%s: built without the emulator (no C++ compiler at configure time)\n", argv[0]);
        return 2;
#endif
    }
    g_dry = !g_emu && rt_cuda_device_count(why, sizeof why) < 1;
    if (g_dry) printf("no CUDA device (%s): preflight only (IR, CPU reference, CUDA executor dry run)\n", why);
#ifdef AXO_PREFLIGHT_QUICK
    /* the sanitizer build checks memory, not numbers: the first step and a steady one cover each case's paths */
    if (g_dry && !steps_given) g_steps = 2;
#else
    (void)steps_given;
#endif
    g_opts = (rt_cuda_opts){.kernels = {.module_of = cg_cuda_kernel_module_of, .compile = cg_cuda_kernel_compile, .compile_fused = cg_fused_compile}, .poison = 1,
                            .dry_run = g_dry || g_emu, .emu = emu,
                            /* few SMs: capped grids are small (fast to emulate) and grid-stride loops go round */
                            .dry_sm_count = g_emu ? g_emu_sms : 0};
    ax_diag d;
    ax_diag_init(&d);
    if (rt_cuda_dev_open(&g_dev, &g_opts, &d) != 0) {
        ax_diag_print(&d, stdout);
        printf("FAIL cannot open the CUDA device\n");
        return 1;
    }
    char name[256];
    printf("device: %s\n", rt_cuda_dev_name(g_dev, name, sizeof name));
    ax_diag_free(&d);
    for (int i = from, sel = 0; i < ncases && i < to; i++) {
        const char *cname = i < nops ? ops[i].name : trs[i - nops].name;
        if (only && !strstr(cname, only)) continue;
        if (skip && strstr(cname, skip)) continue;
        if (skip_twins && is_f32_twin(cname, ncases)) continue;
        if (sel++ % nparts != part) continue;
        printf("[%d] %s\n", i, cname);
        fflush(stdout);
        if (i < nops) run_op(&ops[i]);
        else run_train(&trs[i - nops]);
        if (!g_dry && !g_emu && !context_ok()) {
            printf("FAIL %s: the CUDA context is lost (a kernel faulted); the remaining cases need a new process\n",
                   cname);
            printf("RESUME %d\n%d passed, %d failed\n", i + 1, n_pass, n_fail + 1);
            return 3;
        }
    }
    rt_cuda_dev_close(g_dev);
    for (int i = 0; i < nops; i++) free(ops[i].ir);
#ifdef AXO_HAVE_EMU
    if (g_emu) { /* what the run covered (a filtered run covers less) */
        long fused = 0;
        printf("emulated device: kernel entries never launched in this run: ");
        fflush(stdout);
        int nun = axo_emu_unlaunched(stdout, &fused);
        if (!nun) printf("none\n");
        printf("emulated device: %d of %d kernel entries launched, %ld fused kernel launches\n",
               axo_emu_entry_count() - nun, axo_emu_entry_count(), fused);
    }
#endif
    printf("%d passed, %d failed\n", n_pass, n_fail);
    if (g_dry && !n_fail) {
        printf("SKIP: no CUDA device; the preflight of %d cases passed (nothing was compared)\n", n_pass);
        return 77;
    }
    return n_fail ? 1 : 0;
}
