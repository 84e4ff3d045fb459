/* test_cuda_exec.c — the CUDA executor's host side, no GPU needed:
 *  - every kernel argument list the executor passes (its signature table)
 *    equals the parameter list NVRTC compiles from codegen/kernels/ (read
 *    from the PTX of every registered source: sizes and declared C types);
 *    entry points the executor does not launch are listed, not required;
 *  - dry runs (runtime/cuda_exec.h) of whole training steps of real plans —
 *    Llama/Qwen2/Qwen3 shapes, f32 and bf16, head_dim 16 (generic attention)
 *    64 and 128 (FlashAttention-style kernels), gradient checkpointing, DDP
 *    and ZeRO-3 over 2 ranks, sequence parallelism (ring attention: sp 2,
 *    dp 2 x sp 2), CPU offload (ZeRO-3 + offload_all, ZeRO-1/2 +
 *    offload_optimizer: host nodes run the CPU kernels for real), pure bf16
 *    and 8-bit AdamW state (adamw8: u8 moments at 1 byte an element) — prepare
 *    and run with every launch, copy and
 *    GEMM validated (argument kinds, pointer extents inside one allocation,
 *    grid limits), one GEMM per matmul node, and the arena the plan reports;
 *  - AdamW by hand (pure bf16's adamw, adamw8): on the host as rank 1 of 2
 *    (the CPU kernel's bits at the rank's offset), on the device (launches
 *    checked), refusals;
 *  - LoRA/QLoRA ops (dropout, dequant_nf4) in hand-built modules, with the
 *    frozen nf4/u8 weights packed on the device (sizes, uploads, the
 *    all_gather of row-split weights over 2 ranks), and the host pack/unpack
 *    helpers of that storage (nibble order, odd counts, bad codes);
 *  - CPU offload's memory and ordering: which host blocks are pinned (per
 *    the plan's pin_memory attrs, a refused pin, AXO_CUDA_SYNC_COPIES, one
 *    stream), copies asynchronous exactly from pinned memory, every host
 *    node's reads of copies known complete (the dry run's vector clocks),
 *    the same host state in every mode, and a plan missing a wait caught;
 *  - refusals with useful messages: a plan that does not fit, an op/dtype no
 *    kernel covers (naming the node), no device.
 * What the kernels compute is checked on a GPU by tests/gpu/. */
#include "codegen/cuda_kernels.h"
#include "codegen/nvrtc.h"
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/cpu_kernels.h"
#include "runtime/cuda_exec.h"
#include "runtime/trace.h"
#include "runtime/train.h"
#include "tests/check.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALIGN_UP(b) (((b) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN)

/* exported by runtime/cuda_exec.c for this test */
int rt_cuda_kernel_sig_count(void);
const char *rt_cuda_kernel_sig(int i, const char **entry);

/* ---- signatures vs PTX ---------------------------------------------------------- */
/* The parameter kinds of `.entry name(...)` in ptx: '8' a 64-bit integer
 * (pointer or int64), '4' a 32-bit integer, 'f' f32, 'd' f64, '?' other.
 * Returns the count, or -1 if the entry is not in the PTX. */
static int ptx_params(const char *ptx, const char *name, char *out, int cap) {
    size_t nl = strlen(name);
    const char *p = ptx;
    while ((p = strstr(p, ".entry ")) != NULL) {
        p += 7;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, name, nl) == 0 && (p[nl] == '(' || isspace((unsigned char)p[nl]))) break;
    }
    if (!p) return -1;
    p += nl;
    while (*p && *p != '(') p++;
    if (!*p) return -1;
    const char *end = strchr(p, ')');
    if (!end) return -1;
    int n = 0;
    for (const char *q = strstr(p, ".param"); q && q < end; q = strstr(q + 6, ".param")) {
        /* the first type token after .param (skipping .align N, .ptr, state spaces) */
        char c = '?';
        for (const char *t = q + 6; t < end && *t != ',' && *t != '\n' && *t != ')'; t++) {
            if (*t != '.') continue;
            if (!strncmp(t, ".u64", 4) || !strncmp(t, ".s64", 4) || !strncmp(t, ".b64", 4)) c = '8';
            else if (!strncmp(t, ".u32", 4) || !strncmp(t, ".s32", 4) || !strncmp(t, ".b32", 4)) c = '4';
            else if (!strncmp(t, ".f32", 4)) c = 'f';
            else if (!strncmp(t, ".f64", 4)) c = 'd';
            else continue;
            break;
        }
        if (n < cap - 1) out[n] = c;
        n++;
    }
    out[n < cap ? n : cap - 1] = 0;
    return n;
}

/* The C type of every parameter, compiled into the PTX: appended to a kernel
 * source, this makes NVRTC emit `axsig_<entry>[] = {kinds}` with one
 * character per parameter (p pointer, l long long, i int/unsigned, f float,
 * d double, ? other) for each entry, so the executor's table is checked
 * against the declared types themselves, not only their sizes. */
static const char *sig_probe =
    "\ntemplate <typename T> struct axk_ { static constexpr char c = '?'; };\n"
    "template <typename T> struct axk_<T *> { static constexpr char c = 'p'; };\n"
    "template <> struct axk_<long long> { static constexpr char c = 'l'; };\n"
    "template <> struct axk_<int> { static constexpr char c = 'i'; };\n"
    "template <> struct axk_<unsigned> { static constexpr char c = 'i'; };\n"
    "template <> struct axk_<float> { static constexpr char c = 'f'; };\n"
    "template <> struct axk_<double> { static constexpr char c = 'd'; };\n"
    "template <int N> struct axstr_ { char s[N]; };\n"
    "template <typename... A> constexpr axstr_<sizeof...(A) + 1> axsig_(void (*)(A...)) {\n"
    "    return axstr_<sizeof...(A) + 1>{{axk_<A>::c..., 0}};\n"
    "}\n";

/* The kinds NVRTC wrote for `axsig_<entry>` into out; -1 if absent. */
static int ptx_sig(const char *ptx, const char *entry, char *out, int cap) {
    char key[160];
    snprintf(key, sizeof key, "axsig_%s[", entry);
    const char *p = strstr(ptx, key);
    if (!p || !(p = strchr(p, '{'))) return -1;
    int n = 0;
    for (p++; *p && *p != '}';) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (v && n < cap - 1) out[n++] = (char)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    out[n] = 0;
    return n;
}

static int kind_ok(char sig, char ptx) {
    switch (sig) {
    case 'p':
    case 'l': return ptx == '8';
    case 'i': return ptx == '4';
    case 'f': return ptx == 'f';
    case 'd': return ptx == 'd';
    default: return 0;
    }
}

static void test_signatures(void) {
    int nsig = rt_cuda_kernel_sig_count();
    CHECK(nsig > 60);
    /* the table names only registered entries, and every registered entry once */
    for (int i = 0; i < nsig; i++) {
        const char *e;
        rt_cuda_kernel_sig(i, &e);
        CHECK_MSG(cg_cuda_kernel_for_entry(e) != NULL, "%s is in the executor's table but no source defines it", e);
        for (int j = 0; j < i; j++) {
            const char *e2;
            rt_cuda_kernel_sig(j, &e2);
            CHECK_MSG(strcmp(e, e2) != 0, "%s twice in the table", e);
        }
    }
    int nentries = 0, nused = 0;
    for (int k = 0; k < cg_cuda_kernel_count(); k++) {
        const cg_cuda_kernel *ks = cg_cuda_kernel_get(k);
        ax_buf ptx = {0}, src = {0};
        ax_diag d;
        ax_diag_init(&d);
        ax_buf_puts(&src, ks->source);
        ax_buf_puts(&src, sig_probe);
        for (int j = 0; j < ks->nentries; j++)
            ax_buf_printf(&src, "extern \"C\" __device__ const auto axsig_%s = axsig_((decltype(&%s))0);\n",
                          ks->entries[j], ks->entries[j]);
        int have_ptx = cg_nvrtc_available() && cg_nvrtc_ptx(ks->name, src.data, "compute_90a", &ptx, &d) == 0;
        ax_buf_free(&src);
        if (cg_nvrtc_available()) CHECK_MSG(have_ptx, "%s: no PTX", ks->name);
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        for (int j = 0; j < ks->nentries; j++, nentries++) {
            const char *entry = ks->entries[j], *sig = NULL;
            for (int i = 0; i < nsig && !sig; i++) {
                const char *e;
                const char *s = rt_cuda_kernel_sig(i, &e);
                if (!strcmp(e, entry)) sig = s;
            }
            if (!sig) { /* the executor never launches it (a launch of it would be refused) */
                printf("  not launched by the CUDA executor: %s\n", entry);
                continue;
            }
            nused++;
            if (!have_ptx) continue;
            char kinds[64];
            int np = ptx_params(ptx.data, entry, kinds, sizeof kinds);
            CHECK_MSG(np == (int)strlen(sig), "%s: the kernel has %d parameters (%s), the executor passes %d (%s)", entry,
                      np, kinds, (int)strlen(sig), sig);
            if (np != (int)strlen(sig)) continue;
            for (int i = 0; i < np; i++)
                CHECK_MSG(kind_ok(sig[i], kinds[i]), "%s parameter %d: PTX kind '%c', the executor passes '%c'", entry, i,
                          kinds[i], sig[i]);
            char ctypes[64];
            CHECK_MSG(ptx_sig(ptx.data, entry, ctypes, sizeof ctypes) == np && !strcmp(ctypes, sig),
                      "%s: declared parameter types (%s), the executor passes (%s)", entry, ctypes, sig);
        }
        ax_buf_free(&ptx);
    }
    CHECK_EQ(nused, nsig); /* every table row is a registered entry point (checked above), each once */
    CHECK(nentries >= nsig);
    if (!cg_nvrtc_available()) printf("  (NVRTC not available: PTX comparison skipped)\n");
}

/* ---- dry runs of training steps ------------------------------------------------- */
static fe_model llama(int64_t hidden, int64_t heads, int64_t kv, int64_t hd) {
    fe_model m;
    memset(&m, 0, sizeof m);
    m.arch = FE_ARCH_LLAMA;
    m.arch_name = "LlamaForCausalLM";
    m.dir = "/nonexistent-model-dir";
    m.hidden_size = hidden;
    m.intermediate_size = 2 * hidden + 48;
    m.num_hidden_layers = 2;
    m.num_attention_heads = heads;
    m.num_key_value_heads = kv;
    m.head_dim = hd;
    m.vocab_size = 300;
    m.rope_theta = 10000;
    m.rope_type = FE_ROPE_LLAMA3;
    m.rope_factor = 8;
    m.rope_low_freq_factor = 1;
    m.rope_high_freq_factor = 4;
    m.rope_original_max_position_embeddings = 64;
    m.rms_norm_eps = 1e-5;
    m.max_position_embeddings = 4096;
    m.pad_token_id = 0;
    return m;
}

static fe_config config(int64_t B, int64_t S, int bf16, int ckpt) {
    fe_config c;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = B;
    c.sequence_len = S;
    c.gradient_accumulation_steps = 1;
    c.num_epochs = 1;
    c.learning_rate = 1e-3;
    c.lr_scheduler = FE_SCHED_CONSTANT;
    c.adam_beta1 = 0.9;
    c.adam_beta2 = 0.999;
    c.adam_epsilon = 1e-8;
    c.max_grad_norm = 1.0;
    c.bf16 = bf16;
    c.gradient_checkpointing = ckpt;
    c.sequence_parallel_degree = 1;
    c.seed = 5;
    c.output_dir = "/tmp";
    c.liger_fused_linear_cross_entropy = -1; /* not written: axo's default, the fused lm head + loss */
    return c;
}

static fe_config unfused(fe_config c) { /* liger_fused_linear_cross_entropy: false */
    c.liger_fused_linear_cross_entropy = 0;
    return c;
}

static fe_config pure_bf16(fe_config c) { /* bfloat16: true: bf16 params and AdamW state, no f32 master */
    c.bf16 = c.bf16_pure = 1;
    return c;
}

static fe_config opt8(fe_config c) { /* optimizer: adamw_bnb_8bit: 8-bit AdamW state (adamw8) */
    c.optimizer_8bit = 1;
    return c;
}

static int g_no_fuse; /* build() without elementwise fusion */

static ir_module *build(const fe_config *c, const fe_model *m, int world, pass_shard_cfg sh) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    int rc = fe_lower(c, m, world, mod, &loss, &d);
    pass_ctx pc = {.m = mod, .loss = loss, .checkpoint = c->gradient_checkpointing,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 1.0,
                           .master_f32 = c->bf16 && !c->bf16_pure, .pure_bf16 = c->bf16_pure,
                           .state_8bit = c->optimizer_8bit},
                   .shard = sh, .fuse = {.off = g_no_fuse}};
    if (!rc) rc = pass_pipeline(&pc, &d);
    CHECK(rc == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    if (rc) {
        ir_module_destroy(mod);
        return NULL;
    }
    /* the runtime reads the printed IR: go through the text, as axorun does */
    ax_buf t = {0};
    ir_print(mod, &t);
    ir_module_destroy(mod);
    ax_diag_init(&d);
    ir_module *back = ir_parse(t.data, t.len, "plan", &d);
    ax_buf_free(&t);
    CHECK(back != NULL);
    ax_diag_free(&d);
    return back;
}

/* Host collectives of a pretend peer group (dry runs move no data). */
static int fake_all_reduce(void *ctx, int axis, float *buf, int64_t n) { return 0; }
static int fake_all_gather(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    int64_t world = ((const int64_t *)ctx)[axis]; /* ctx: the mesh sizes */
    for (int64_t r = 0; r < world; r++) memcpy(recv + r * n, send, sizeof(float) * (size_t)n);
    return 0;
}
static int fake_reduce_scatter(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    memcpy(recv, send, sizeof(float) * (size_t)n);
    return 0;
}

static int fake_ring_shift(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    memcpy(recv, send, sizeof(float) * (size_t)n);
    return 0;
}

static int count_matmuls(const ir_program *p) {
    int n = 0;
    for (int i = 0; p && i < p->nnodes; i++) n += p->nodes[i].op == IR_OP_matmul;
    return n;
}

static void batch(int64_t B, int64_t S, int64_t V, int32_t *ids, int32_t *tgt, int32_t *pos, int32_t *seg) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t t = b * S + s, half = S / 2 + 3 * b; /* two packed sequences per row */
            ids[t] = (int32_t)((t * 7 + 3) % V);
            tgt[t] = s + 1 == half || s + 1 == S ? -100 : (int32_t)((t * 5 + 1) % V);
            pos[t] = (int32_t)(s < half ? s : s - half);
            seg[t] = s < half ? 0 : 1;
        }
}

typedef struct dry_case {
    const char *name;
    fe_model m;
    fe_config c;
    int world;
    pass_shard_cfg sh;
} dry_case;

/* A pure-bf16 plan (`bfloat16: true`): every adamw of a bf16 parameter
 * updates it with bf16 gradient and moments (no f32 master copy anywhere),
 * the CUDA executor accepts the plan (rt_cuda_plan_check: each launch of
 * axo_adamw_sr_bf16 checked against its buffers) and sizes those moments at
 * 2 bytes per element on the device (host-placed ones are held as the CPU
 * executor holds them). */
static void check_pure_bf16_plan(const ir_module *mod, const char *name) {
    const ir_program *po = ir_program_find(mod, "opt_step");
    int nsr = 0;
    for (int i = 0; po && i < po->nnodes; i++) {
        const ir_node *n = &po->nodes[i];
        if (n->op != IR_OP_adamw || ir_ref_type(mod, po, n->in[0])->dtype != IR_BF16) continue;
        nsr++;
        for (int k = 1; k < 4; k++)
            CHECK_MSG(ir_ref_type(mod, po, n->in[k])->dtype == IR_BF16, "%s: adamw node %d operand %d is %s", name, i, k,
                      ir_dtype_name(ir_ref_type(mod, po, n->in[k])->dtype));
    }
    CHECK_MSG(nsr > 0, "%s: no pure-bf16 adamw in opt_step", name);
    for (int g = 0; g < mod->nglobals; g++)
        CHECK_MSG(strncmp(mod->globals[g].name, "master/", 7) != 0 || mod->globals[g].type.dtype == IR_BF16,
                  "%s: an f32 master copy %s", name, mod->globals[g].name);
    ax_diag d;
    ax_diag_init(&d);
    CHECK_MSG(rt_cuda_plan_check(mod, &d) == 0, "%s: plan check", name);
    rt_cuda_opts o = {.dry_run = 1};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    int nmom = 0;
    if (rt_cuda_dev_open(&dev, &o, &d) == 0 && rt_cuda_state_init(&st, dev, mod, &d) == 0) {
        for (int g = 0; g < mod->nglobals; g++) {
            const ir_global *G = &mod->globals[g];
            if (strncmp(G->name, "adam_m/", 7) && strncmp(G->name, "adam_v/", 7)) continue;
            int64_t n = rt_local_numel(mod, &G->type);
            if (ir_global_on_host(G)) {
                CHECK_EQ(st.gbytes[g], 0);
                continue;
            }
            if (G->type.dtype != IR_BF16) continue; /* the moments of an f32 parameter */
            nmom++;
            CHECK_MSG(st.gbytes[g] == 2 * n, "%s: %s takes %lld bytes for %lld bf16 elements", name, G->name,
                      (long long)st.gbytes[g], (long long)n);
        }
        rt_cuda_state_free(&st);
    }
    if (dev) rt_cuda_dev_close(dev);
    int any_host = 0;
    for (int g = 0; g < mod->nglobals; g++)
        any_host |= ir_global_on_host(&mod->globals[g]) && mod->globals[g].role == IR_ROLE_OPT;
    CHECK_MSG(nmom > 0 || any_host, "%s: no bf16 moments on the device", name);
    ax_diag_print(&d, stderr);
    CHECK_MSG(d.nerrors == 0, "%s: errors", name);
    ax_diag_free(&d);
}

/* An 8-bit-state plan (`optimizer: adamw_bnb_8bit`): the 2-d parameters of
 * >= 4096 elements are updated by adamw8 over u8 moments and f32 block
 * maxima (the parameter f32, its f32 master under mixed precision, or bf16
 * under pure bf16); the CUDA executor accepts the plan (rt_cuda_plan_check:
 * each launch of axo_adamw8_* checked against its buffers) and keeps the
 * moments at 1 byte per element on the device, the maxima at 4 (host-placed
 * ones live in the host block, as the CPU executor holds them). */
static void check_8bit_plan(const ir_module *mod, const dry_case *k) {
    const char *name = k->name;
    const ir_program *po = ir_program_find(mod, "opt_step");
    int n8 = 0, host8 = 0;
    for (int i = 0; po && i < po->nnodes; i++) {
        const ir_node *n = &po->nodes[i];
        if (n->op != IR_OP_adamw8) continue;
        n8++;
        host8 += ir_node_on_host(n);
        ir_dtype want[6] = {k->c.bf16_pure ? IR_BF16 : IR_F32, k->c.bf16 ? IR_BF16 : IR_F32, IR_U8, IR_U8, IR_F32,
                            IR_F32}; /* p (its f32 master under mixed precision), g, m, v, their maxima */
        for (int j = 0; j < 6; j++)
            CHECK_MSG(ir_ref_type(mod, po, n->in[j])->dtype == want[j], "%s: adamw8 node %d operand %d is %s, want %s",
                      name, i, j, ir_dtype_name(ir_ref_type(mod, po, n->in[j])->dtype), ir_dtype_name(want[j]));
    }
    CHECK_MSG(n8 > 0, "%s: no adamw8 in opt_step", name);
    CHECK_MSG(!k->sh.offload_optimizer || host8 == n8, "%s: %d of %d adamw8 on the host under offload_optimizer", name,
              host8, n8);
    ax_diag d;
    ax_diag_init(&d);
    CHECK_MSG(rt_cuda_plan_check(mod, &d) == 0, "%s: plan check", name);
    rt_cuda_opts o = {.dry_run = 1};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    int nq = 0, nmax = 0;
    if (rt_cuda_dev_open(&dev, &o, &d) == 0 && rt_cuda_state_init(&st, dev, mod, &d) == 0) {
        for (int g = 0; g < mod->nglobals; g++) {
            const ir_global *G = &mod->globals[g];
            int64_t n = rt_local_numel(mod, &G->type);
            int mx = !strncmp(G->name, "adam_m_absmax/", 14) || !strncmp(G->name, "adam_v_absmax/", 14);
            if (G->type.dtype != IR_U8 && !mx) continue;
            CHECK_MSG(G->type.dtype == (mx ? IR_F32 : IR_U8), "%s: %s is %s", name, G->name,
                      ir_dtype_name(G->type.dtype));
            if (ir_global_on_host(G)) {
                CHECK_EQ(st.gbytes[g], 0);
                continue;
            }
            mx ? nmax++ : nq++;
            CHECK_MSG(st.gbytes[g] == (mx ? 4 : 1) * n, "%s: %s takes %lld bytes for %lld elements", name, G->name,
                      (long long)st.gbytes[g], (long long)n);
        }
        rt_cuda_state_free(&st);
    }
    if (dev) rt_cuda_dev_close(dev);
    CHECK_MSG(k->sh.offload_optimizer ? nq == 0 && nmax == 0 : nq == 2 * n8 && nmax == 2 * n8,
              "%s: %d u8 moments and %d maxima on the device for %d adamw8", name, nq, nmax, n8);
    ax_diag_print(&d, stderr);
    CHECK_MSG(d.nerrors == 0, "%s: errors", name);
    ax_diag_free(&d);
}

static void dry_run(const dry_case *k) {
    ir_module *mod = build(&k->c, &k->m, k->world, k->sh);
    if (!mod) return;
    ax_diag d;
    ax_diag_init(&d);
    rt_session s;
    int rc = rt_session_from_module(mod, &s, &d);
    CHECK_MSG(rc == 0, "%s: session", k->name);
    rt_collectives fake = {0};
    int64_t sizes[IR_MAX_MESH];
    for (int a = 0; a < IR_MAX_MESH; a++) sizes[a] = a < mod->nmesh ? mod->mesh_sizes[a] : 1;
    if (!rc && k->world > 1) { /* this rank is rank 0 of a pretend group */
        fake = (rt_collectives){.ctx = sizes, .all_reduce = fake_all_reduce, .all_gather = fake_all_gather,
                                .reduce_scatter = fake_reduce_scatter, .ring_shift = fake_ring_shift};
        s.st.coll = &fake;
    }
    if (!rc) rc = rt_session_init_weights(&s, NULL, &d);
    /* CUDA graphs: not for a program that talks to other ranks or to the host */
    if (k->world > 1 || k->sh.offload_optimizer || k->sh.offload_params)
        CHECK_MSG(!rt_cuda_graph_eligible(mod, ir_program_find(mod, "micro_step")) ||
                      !rt_cuda_graph_eligible(mod, ir_program_find(mod, "opt_step")),
                  "%s: both programs graph-eligible", k->name);
    else
        CHECK_MSG(rt_cuda_graph_eligible(mod, ir_program_find(mod, "micro_step")), "%s: micro_step not graph-eligible",
                  k->name);
    if (k->c.sequence_parallel_degree > 1) { /* ring attention: the block ops and the ring are really there */
        int ops[IR_NOPS] = {0};
        for (int pi = 0; pi < mod->nprograms; pi++)
            for (int i = 0; i < mod->programs[pi]->nnodes; i++) ops[mod->programs[pi]->nodes[i].op]++;
        CHECK_MSG(ops[IR_OP_attention_blk] && ops[IR_OP_attention_blk_bwd] && ops[IR_OP_attn_merge] &&
                      ops[IR_OP_ring_shift],
                  "%s: no ring-attention ops", k->name);
        CHECK_MSG(rt_cuda_plan_check(mod, &d) == 0, "%s: plan check", k->name);
    }
    if (k->sh.offload_optimizer || k->sh.offload_params) { /* CPU offload: copies and host nodes are there */
        int copies = 0, host_nodes = 0, host_globals = 0;
        for (int pi = 0; pi < mod->nprograms; pi++)
            for (int i = 0; i < mod->programs[pi]->nnodes; i++) {
                const ir_node *nd = &mod->programs[pi]->nodes[i];
                copies += nd->op == IR_OP_to_host || nd->op == IR_OP_to_device;
                host_nodes += ir_node_on_host(nd);
            }
        for (int g = 0; g < mod->nglobals; g++) host_globals += ir_global_on_host(&mod->globals[g]);
        CHECK_MSG(copies && host_nodes && host_globals, "%s: no offload in the plan", k->name);
        CHECK_MSG(rt_cuda_plan_check(mod, &d) == 0, "%s: plan check", k->name);
    }
    if (k->c.bf16_pure) check_pure_bf16_plan(mod, k->name);
    if (k->c.optimizer_8bit) check_8bit_plan(mod, k);
    char info[512] = "";
    rt_cuda_opts o = {.dry_run = 1, .info = info, .info_cap = sizeof info};
    if (!rc) rc = rt_cuda_attach(&s, &o, &d);
    CHECK_MSG(rc == 0 && s.backend, "%s: dry attach", k->name);
    ax_diag_print(&d, stderr);
    if (rc) {
        ax_diag_free(&d);
        rt_session_close(&s);
        return;
    }
    CHECK_MSG(strstr(info, "CUDA executor on dry run") != NULL, "info: %s", info);
    if (k->sh.offload_optimizer || k->sh.offload_params)
        CHECK_MSG(strstr(info, "offloaded state in host memory") != NULL, "info: %s", info);
    int64_t n = s.B * s.S;
    int32_t *ids = malloc(4 * (size_t)n), *tgt = malloc(4 * (size_t)n), *pos = malloc(4 * (size_t)n),
            *seg = malloc(4 * (size_t)n);
    batch(s.B, s.S, s.V, ids, tgt, pos, seg);
    for (int step = 1; step <= 2; step++) {
        CHECK_MSG(rt_session_micro_step(&s, ids, tgt, pos, seg, 1.0f / (float)n, &d) == 0, "%s: micro_step", k->name);
        CHECK_MSG(rt_session_opt_step(&s, 1e-3f, step, &d) == 0, "%s: opt_step", k->name);
    }
    /* the parameters come back (a dry run reads zeros) */
    rt_buf *w = rt_session_global(&s, "model.norm.weight");
    CHECK(w && s.backend->download(s.backend, &s.st, (int)(w - s.st.globals), &d) == 0);
    if (w && ir_global_on_host(&mod->globals[w - s.st.globals])) /* offloaded: really computed on the host */
        CHECK_MSG(isfinite(rt_f(w)[0]), "%s: host parameter", k->name);
    else
        CHECK(w && rt_f(w)[0] == 0.0f);
    ax_diag_print(&d, stderr);
    CHECK_MSG(d.nerrors == 0, "%s: errors", k->name);
    ax_diag_free(&d);
    rt_session_close(&s);
    free(ids), free(tgt), free(pos), free(seg);
}

/* micro_step of a plan for `world` ranks (as rank 0 of a pretend group) as a
 * dry run on a bare state with AXO_CUDA_ATTN = attn (NULL: unset); the
 * executor's counts after it (0 on failure). */
static rt_cuda_counts dry_micro(const fe_model *m, const fe_config *c, int world, const char *attn);
static const char *g_dry_arch; /* dry_micro's device arch (NULL: the dry run's sm_90a) */

/* Runtime inputs by name, for running programs without a session. */
typedef struct inputs_ctx {
    rt_buf *in;
    const char **names;
    int n;
} inputs_ctx;
static const rt_buf *test_inputs(void *ctx, const char *name) {
    inputs_ctx *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name)) return &c->in[i];
    return NULL;
}

static rt_cuda_counts dry_micro(const fe_model *m, const fe_config *c, int world, const char *attn) {
    rt_cuda_counts r = {0};
    ir_module *mod = build(c, m, world, (pass_shard_cfg){0});
    if (!mod) return r;
    if (attn) setenv("AXO_CUDA_ATTN", attn, 1);
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_opts o = {.dry_run = 1, .arch = g_dry_arch};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    rt_cuda_prog pm;
    memset(&pm, 0, sizeof pm);
    const ir_program *micro = ir_program_find(mod, "micro_step");
    /* sp > 1: this rank's S / sp tokens (zigzag, rank 0) and their indices in the row (token_idx) */
    int64_t B = c->micro_batch_size, S = c->sequence_len;
    int64_t sp = c->sequence_parallel_degree > 1 ? c->sequence_parallel_degree : 1, Sl = S / sp;
    rt_buf in[8];
    const char *names[8] = {"input_ids", "targets", "position_ids", "seq_ids", "loss_scale", "lr", "step", "token_idx"};
    for (int i = 0; i < 8; i++)
        rt_buf_alloc(&in[i], i >= 4 && i < 7 ? ir_type_scalar(IR_F32) : IR_TYPE(IR_I32, B, Sl));
    batch(B, Sl, m->vocab_size, rt_i(&in[0]), rt_i(&in[1]), rt_i(&in[2]), rt_i(&in[3]));
    rt_f(&in[4])[0] = 1.0f / (float)(B * S), rt_f(&in[5])[0] = 1e-3f, rt_f(&in[6])[0] = 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < Sl; t++)
            rt_i(&in[7])[b * Sl + t] = (int32_t)rt_sp_token_index(RT_SP_ZIGZAG, S, sp, 0, t);
    inputs_ctx ctx = {in, names, 8};
    int64_t sizes[IR_MAX_MESH];
    for (int a = 0; a < IR_MAX_MESH; a++) sizes[a] = a < mod->nmesh ? mod->mesh_sizes[a] : 1;
    rt_collectives fake = {.ctx = sizes, .all_reduce = fake_all_reduce, .all_gather = fake_all_gather,
                           .reduce_scatter = fake_reduce_scatter, .ring_shift = fake_ring_shift};
    rt_cuda_host_coll hc;
    int ok = rt_cuda_dev_open(&dev, &o, &d) == 0;
    ok = ok && rt_cuda_state_init(&st, dev, mod, &d) == 0;
    if (ok && world > 1) {
        rt_cuda_host_coll_init(&hc, dev, &fake, mod);
        st.coll = &hc.dc;
    }
    if (ok) {
        rt_cuda_prog *pp = &pm;
        ok = rt_cuda_prog_init(&pm, &st, micro, &d) == 0 && rt_cuda_state_alloc(&st, &pp, 1, &d) == 0 &&
             rt_cuda_prog_run(&pm, &st, test_inputs, &ctx, &d) == 0;
        CHECK_MSG(ok, "dry run of micro_step with AXO_CUDA_ATTN=%s", attn ? attn : "(unset)");
        if (ok) r = rt_cuda_dev_counts(dev);
        rt_cuda_prog_free(&pm);
        rt_cuda_state_free(&st);
    }
    if (dev) rt_cuda_dev_close(dev);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    if (attn) unsetenv("AXO_CUDA_ATTN");
    for (int i = 0; i < 8; i++) rt_buf_free(&in[i]);
    ir_module_destroy(mod);
    return r;
}

/* AXO_CUDA_ATTN=tc: bf16 head_dim 64/128 attention takes the tensor-core
 * kernels of attention_tc.cuh (every launch's pointers checked against the
 * node's buffers by the dry run); f32 stays on the CUDA-core kernels. The
 * attention backward's dK/dV kernel has the largest shared memory of the
 * step, so the counts' max_smem tells which kernels ran: attention_tc.cuh's
 * 75264 (hd 64) / 124416 (hd 128) bytes, attention_bwd.cuh's 84224 / 149760. */
static void dry_attn_tc(void) {
    fe_model hd64 = llama(256, 4, 2, 64), hd128 = llama(256, 2, 1, 128);
    fe_config b64 = config(2, 150, 1, 0), b128 = config(1, 150, 1, 1), f128 = config(1, 70, 0, 0);
    rt_cuda_counts c;
    c = dry_micro(&hd64, &b64, 1, NULL);
    CHECK_EQ(c.max_smem, 84224);
    c = dry_micro(&hd64, &b64, 1, "tc");
    CHECK_EQ(c.max_smem, 75264);
    CHECK(c.launches > 0);
    c = dry_micro(&hd128, &b128, 1, NULL);
    CHECK_EQ(c.max_smem, 149760);
    c = dry_micro(&hd128, &b128, 1, "tc");
    CHECK_EQ(c.max_smem, 124416);
    CHECK(c.launches > 0);
    c = dry_micro(&hd128, &f128, 1, "tc"); /* f32: the CUDA-core kernels */
    CHECK_EQ(c.max_smem, 149760);
    g_dry_arch = "sm_75"; /* a GPU before Ampere has no bf16 mma.sync / cp.async: the CUDA-core kernels */
    c = dry_micro(&hd64, &b64, 1, "tc");
    CHECK_EQ(c.max_smem, 84224);
    g_dry_arch = NULL;
    /* sequence parallelism (sp 2, ring attention): the block kernels, attention_blk.cuh's dK/dV 84736 bytes
     * (the largest of that step) or attention_tc.cuh's 75264 */
    fe_config sp2 = config(2, 148, 1, 0); /* 74 tokens per rank, chunks of 37 */
    sp2.sequence_parallel_degree = 2;
    c = dry_micro(&hd64, &sp2, 2, NULL);
    CHECK_EQ(c.max_smem, 84736);
    c = dry_micro(&hd64, &sp2, 2, "tc");
    CHECK_EQ(c.max_smem, 75264);
    CHECK(c.launches > 0);
    printf("  AXO_CUDA_ATTN=tc dry runs: bf16 hd64 (S 150, GQA 4/2), hd128 (checkpointing) and hd64 sp 2 (S 148, ring "
           "attention blocks) take attention_tc.cuh; f32 does not\n");
}

/* The executor's own counts and arena, on a bare state (not through a session). */
static void dry_counts(void) {
    fe_model m = llama(64, 4, 2, 16);
    fe_config c = unfused(config(2, 40, 1, 0));
    ir_module *mod = build(&c, &m, 1, (pass_shard_cfg){0});
    if (!mod) return;
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_opts o = {.dry_run = 1};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    rt_cuda_prog pm, po;
    CHECK(rt_cuda_dev_open(&dev, &o, &d) == 0);
    CHECK(rt_cuda_state_init(&st, dev, mod, &d) == 0);
    const ir_program *micro = ir_program_find(mod, "micro_step"), *opt = ir_program_find(mod, "opt_step");
    CHECK(rt_cuda_prog_init(&pm, &st, micro, &d) == 0);
    CHECK(rt_cuda_prog_init(&po, &st, opt, &d) == 0);
    /* a plan the executor covers passes the static check */
    CHECK(rt_cuda_plan_check(mod, &d) == 0);
    /* the arena the executor plans is the plan's figure */
    CHECK_EQ(pm.arena_bytes, ir_module_attr(mod, "memplan.micro_step.peak_bytes")->i);
    CHECK_EQ(po.arena_bytes, ir_module_attr(mod, "memplan.opt_step.peak_bytes")->i);
    CHECK(pm.scratch_bytes > 0);
    CHECK_EQ(pm.nflags, 4); /* embedding, cross_entropy, cross_entropy_bwd, embedding_bwd validate indices */
    rt_cuda_prog *pp[2] = {&pm, &po};
    CHECK(rt_cuda_state_alloc(&st, pp, 2, &d) == 0);
    CHECK(st.total_bytes > st.arena_bytes);
    /* globals: the host values go up and come back (a dry run moves nothing, so only the checks run) */
    rt_state hs;
    memset(&hs, 0, sizeof hs);
    CHECK(rt_state_init(&hs, mod, &d) == 0);
    for (int g = 0; g < mod->nglobals; g++) CHECK(rt_cuda_upload(&st, g, &hs.globals[g], &d) == 0);
    rt_buf wrong = hs.globals[0];
    wrong.numel += 1;
    CHECK(rt_cuda_upload(&st, 0, &wrong, &d) == -1);
    CHECK(ax_diag_contains(&d, "host buffer of"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    int64_t n = 2 * 40;
    rt_buf in[7];
    const char *names[7] = {"input_ids", "targets", "position_ids", "seq_ids", "loss_scale", "lr", "step"};
    for (int i = 0; i < 7; i++) {
        int scalar = i >= 4;
        rt_buf_alloc(&in[i], scalar ? ir_type_scalar(IR_F32) : IR_TYPE(IR_I32, 2, 40));
    }
    batch(2, 40, 300, rt_i(&in[0]), rt_i(&in[1]), rt_i(&in[2]), rt_i(&in[3]));
    rt_f(&in[4])[0] = 1.0f / (float)n, rt_f(&in[5])[0] = 1e-3f, rt_f(&in[6])[0] = 1;
    inputs_ctx ctx = {in, names, 7};
    rt_cuda_counts c0 = rt_cuda_dev_counts(dev);
    CHECK(rt_cuda_prog_run(&pm, &st, test_inputs, &ctx, &d) == 0);
    rt_cuda_counts c1 = rt_cuda_dev_counts(dev);
    CHECK_EQ(c1.gemms - c0.gemms, count_matmuls(micro));
    CHECK(c1.launches - c0.launches > 40);
    CHECK(c1.copies - c0.copies >= 5); /* the 5 runtime inputs at least (reshapes are copies too) */
    CHECK(c1.syncs - c0.syncs >= 1);   /* a run ends synchronised */
    /* distinct entry points: bf16 rmsnorm fwd/bwd/dw_reduce, rope, attn_any fwd/dq/dkdv, embedding fwd/bwd,
     * cross entropy fwd/reduce/bwd, swiglu fwd/bwd, add, convert, fill? ... at least these 16 */
    CHECK_MSG(c1.kernels >= 16, "%lld distinct kernels", (long long)c1.kernels);
    printf("  dry run of micro_step: %lld distinct kernels, %lld launches, %lld GEMMs\n", (long long)c1.kernels,
           (long long)(c1.launches - c0.launches), (long long)(c1.gemms - c0.gemms));
    CHECK(rt_cuda_prog_run(&po, &st, test_inputs, &ctx, &d) == 0);
    rt_cuda_counts c2 = rt_cuda_dev_counts(dev);
    CHECK_EQ(c2.gemms - c1.gemms, 0);
    CHECK(c2.launches - c1.launches > 3 * (mod->nglobals / 5));
    /* a missing runtime input is an error naming it */
    inputs_ctx none = {in, names, 7};
    const char *saved = names[1];
    names[1] = "nothing";
    CHECK(rt_cuda_prog_run(&pm, &st, test_inputs, &none, &d) == -1);
    CHECK(ax_diag_contains(&d, "no input named \"targets\"") && ax_diag_contains(&d, "micro_step node"));
    names[1] = saved;
    ax_diag_free(&d);
    for (int i = 0; i < 7; i++) rt_buf_free(&in[i]);
    rt_state_free(&hs);
    rt_cuda_prog_free(&pm);
    rt_cuda_prog_free(&po);
    rt_cuda_state_free(&st);
    rt_cuda_dev_close(dev);
    ir_module_destroy(mod);
}

/* A device (dry run), the module's state, both programs prepared and the
 * arena allocated, and a B x S batch of runtime inputs: what a dry step needs. */
typedef struct dry_step {
    rt_cuda_dev *dev;
    rt_cuda_state st;
    rt_cuda_prog pm, po;
    rt_buf in[7];
    const char *names[7];
    inputs_ctx ctx;
} dry_step;

static void dry_open(dry_step *s, const ir_module *mod, const rt_cuda_opts *o, int64_t B, int64_t S, int64_t V, ax_diag *d) {
    static const char *names[7] = {"input_ids", "targets", "position_ids", "seq_ids", "loss_scale", "lr", "step"};
    memset(s, 0, sizeof *s);
    CHECK(rt_cuda_dev_open(&s->dev, o, d) == 0);
    CHECK(rt_cuda_state_init(&s->st, s->dev, mod, d) == 0);
    CHECK(rt_cuda_prog_init(&s->pm, &s->st, ir_program_find(mod, "micro_step"), d) == 0);
    CHECK(rt_cuda_prog_init(&s->po, &s->st, ir_program_find(mod, "opt_step"), d) == 0);
    rt_cuda_prog *pp[2] = {&s->pm, &s->po};
    CHECK(rt_cuda_state_alloc(&s->st, pp, 2, d) == 0);
    for (int i = 0; i < 7; i++) {
        s->names[i] = names[i];
        rt_buf_alloc(&s->in[i], i >= 4 ? ir_type_scalar(IR_F32) : IR_TYPE(IR_I32, B, S));
    }
    batch(B, S, V, rt_i(&s->in[0]), rt_i(&s->in[1]), rt_i(&s->in[2]), rt_i(&s->in[3]));
    rt_f(&s->in[4])[0] = 1.0f / (float)(B * S), rt_f(&s->in[5])[0] = 1e-3f, rt_f(&s->in[6])[0] = 1;
    s->ctx = (inputs_ctx){s->in, s->names, 7};
}

static void dry_close(dry_step *s) {
    for (int i = 0; i < 7; i++) rt_buf_free(&s->in[i]);
    rt_cuda_prog_free(&s->pm);
    rt_cuda_prog_free(&s->po);
    rt_cuda_state_free(&s->st);
    rt_cuda_dev_close(s->dev);
}

/* Streams: the schedule's (compute, communication, copies) with events for
 * its waits, or one stream in program order; the same work either way. */
static rt_cuda_counts run_streams(const ir_module *mod, int one_stream, int64_t *scratch, rt_trace *trace) {
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_opts o = {.dry_run = 1, .one_stream = one_stream};
    dry_step s;
    dry_open(&s, mod, &o, 2, 32, 64, &d);
    *scratch = s.pm.scratch_bytes;
    s.st.trace = trace; /* --trace: one event per device node of the micro-step */
    s.st.trace_pid = 3;
    CHECK(rt_cuda_prog_run(&s.pm, &s.st, test_inputs, &s.ctx, &d) == 0);
    s.st.trace = NULL;
    CHECK(rt_cuda_prog_run(&s.po, &s.st, test_inputs, &s.ctx, &d) == 0);
    rt_cuda_counts c = rt_cuda_dev_counts(s.dev);
    ax_diag_print(&d, stderr);
    dry_close(&s);
    ax_diag_free(&d);
    return c;
}

static void dry_streams(void) {
    fe_model m = llama(64, 4, 2, 16);
    fe_config c = config(2, 32, 1, 0);
    ir_module *mod = build(&c, &m, 1, (pass_shard_cfg){.stage = 3, .reshard_after_forward = 1});
    if (!mod) return;
    int waits = 0;
    const ir_program *p = ir_program_find(mod, "micro_step");
    for (int i = 0; i < p->nnodes; i++) waits += ir_attr_find(p->nodes[i].attrs, p->nodes[i].nattrs, "wait") != NULL;
    CHECK(waits > 0);
    /* CUDA graphs: a one-rank plan's programs qualify (its collectives are over axes of one rank); a
     * dry run never captures */
    CHECK(rt_cuda_graph_eligible(mod, p) && rt_cuda_graph_eligible(mod, ir_program_find(mod, "opt_step")));
    int64_t scr_multi = 0, scr_one = 0, traced = 0;
    for (int i = 0; i < p->nnodes; i++) traced += p->nodes[i].op != IR_OP_input && !ir_node_on_host(&p->nodes[i]);
    rt_trace *tr = rt_trace_create();
    rt_cuda_counts a = run_streams(mod, 0, &scr_multi, tr), b = run_streams(mod, 1, &scr_one, NULL);
    CHECK_EQ(rt_trace_count(tr), traced);
    ax_diag d;
    ax_diag_init(&d);
    char path[] = "/tmp/axo_cuda_trace_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(rt_trace_write(tr, path, &d) == 0);
    size_t len = 0;
    char *txt = ax_read_file(path, &len, &d);
    CHECK_MSG(txt && strstr(txt, "communication") && strstr(txt, "compute") && strstr(txt, "all_gather"),
              "the CUDA executor's trace lacks stream tracks: %.300s", txt ? txt : "(none)");
    free(txt);
    unlink(path);
    ax_diag_free(&d);
    rt_trace_destroy(tr);
    CHECK_MSG(a.event_records > 0 && a.event_waits >= a.event_records / 2, "streams: %lld events recorded, %lld waits",
              (long long)a.event_records, (long long)a.event_waits);
    CHECK_EQ(b.event_records, 0);
    CHECK_EQ(a.graph_captures + a.graph_launches + b.graph_captures + b.graph_launches, 0);
    CHECK_EQ(b.event_waits, 0);
    CHECK_EQ(a.launches, b.launches);
    CHECK_EQ(a.gemms, b.gemms);
    CHECK_EQ(a.copies, b.copies);
    CHECK(scr_multi >= scr_one); /* the communication stream's scratch is its own */
    printf("  dry run of a ZeRO-3 step on 3 streams: %lld events recorded, %lld cross-stream waits\n",
           (long long)a.event_records, (long long)a.event_waits);
    ir_module_destroy(mod);
}

/* The benchmark's plan (bench/: Llama-3.2-1B shape, bf16, sequence 4096):
 * prepared and run dry on an H200-sized device, so that its launches (grid
 * limits, shared memory, 64-bit sizes) are checked before a GPU session. */
static rt_cuda_counts dry_bench_plan(int flce, double *gib_out) {
    rt_cuda_counts cn = {0};
    double gib = 0;
    ax_arena *ar = ax_arena_create();
    ax_diag d;
    ax_diag_init(&d);
    fe_model m;
    CHECK(fe_model_load(AXO_SOURCE_DIR "/bench/models/llama-3.2-1b-shape", &m, ar, &d) == 0);
    fe_config c = config(1, 4096, 1, 0);
    if (!flce) c = unfused(c);
    ir_module *mod = build(&c, &m, 1, (pass_shard_cfg){0});
    if (!mod) {
        ax_arena_destroy(ar);
        ax_diag_free(&d);
        return cn;
    }
    int fused = 0;
    for (int i = 0; i < mod->nprograms; i++)
        for (int j = 0; j < mod->programs[i]->nnodes; j++) fused += mod->programs[i]->nodes[j].op == IR_OP_fused;
    CHECK(g_no_fuse ? fused == 0 : fused > 10);
    rt_cuda_opts o = {.dry_run = 1, .dry_mem_bytes = (int64_t)141 << 30};
    dry_step ds;
    dry_open(&ds, mod, &o, 1, 4096, 128256, &d);
    rt_cuda_state *st = &ds.st;
    CHECK(rt_cuda_prog_run(&ds.pm, st, test_inputs, &ds.ctx, &d) == 0);
    CHECK(rt_cuda_prog_run(&ds.po, st, test_inputs, &ds.ctx, &d) == 0);
    cn = rt_cuda_dev_counts(ds.dev);
    gib = (double)st->total_bytes / (1024.0 * 1024.0 * 1024.0);
    printf("  dry run of the 1B-shape bf16 step (seq 4096, %s lm head + loss%s): %.2f GiB on the device (activation arena "
           "%.2f GiB, scratch %.0f MiB), %lld launches, %lld GEMMs, largest shared memory %lld bytes\n",
           flce ? "fused" : "unfused", g_no_fuse ? ", --no-fuse" : "", gib, (double)st->arena_bytes / (1024.0 * 1024.0 * 1024.0),
           (double)st->scratch_bytes / (1024.0 * 1024.0), (long long)cn.launches, (long long)cn.gemms,
           (long long)cn.max_smem);
    /* what axoc printed before anything ran is what the executor takes, to
     * 1% (+ the 32 MiB cuBLASLt workspace): no hidden [V,H] fp32 scratch */
    const ir_attr *ps = ir_module_attr(mod, "memplan.state_bytes"), *pk = ir_module_attr(mod, "memplan.micro_step.peak_bytes");
    CHECK(ps && pk);
    if (ps && pk) {
        double planned = (double)(ps->i + pk->i) / (1024.0 * 1024.0 * 1024.0);
        CHECK_MSG(gib >= planned && gib <= 1.01 * planned + 32.0 / 1024, "executor %.3f GiB vs axoc's %.3f GiB", gib, planned);
    }
    if (flce) { /* 3 GEMMs per chunk of 128 rows (Liger's rule for V/H = 63) instead of the 3 of the lm head */
        int64_t chunk = fe_lce_chunk_rows(4096, 2048, 128256);
        CHECK_EQ(chunk, 128);
        CHECK_EQ(cn.gemms, count_matmuls(ir_program_find(mod, "micro_step")) + 3 * (4096 / chunk));
    }
    CHECK(cn.max_smem == (4 * 64 * 65 + 64 * 65) * 4 + 256 * 4); /* head_dim 64: the fast attention backward */
    ax_diag_print(&d, stderr);
    dry_close(&ds);
    ir_module_destroy(mod);
    ax_arena_destroy(ar);
    ax_diag_free(&d);
    *gib_out = gib;
    return cn;
}

/* Fusion launches fewer kernels for the same step (the dry run checks every
 * pointer a fused kernel touches against its node's operands and result). */
static void dry_bench_fused_vs_not(void) {
    double gf = 0, gu = 0, gl = 0;
    rt_cuda_counts f = dry_bench_plan(1, &gf);
    g_no_fuse = 1;
    rt_cuda_counts u = dry_bench_plan(1, &gu);
    g_no_fuse = 0;
    CHECK_MSG(f.launches > 0 && f.launches < u.launches - 150, "%lld launches fused, %lld unfused", (long long)f.launches,
              (long long)u.launches);
    CHECK_EQ(f.gemms, u.gemms);
    /* the fused lm head + loss: the [4096, 128256] bf16 logits and their
     * gradient (1 GiB each) never exist; the peak moves elsewhere, 1.3 GiB lower */
    dry_bench_plan(0, &gl);
    CHECK_MSG(gf < gl - 1.0, "fused lm head: %.2f GiB vs %.2f GiB unfused", gf, gl);
}


/* ---- LoRA / QLoRA: dropout, dequant_nf4, packed nf4/u8 storage ------------------------ */
/* The packing the device storage uses (cuda_exec.h): nf4 element 2i in the
 * low nibble of byte i, u8 one byte each; host floats round trip exactly. */
static void test_pack(void) {
    float c[5] = {1, 2, 3, 15, 0}, back[5];
    uint8_t b[3] = {0xaa, 0xaa, 0xaa};
    CHECK_EQ(rt_cuda_packed_bytes(IR_NF4, 5), 3);
    CHECK_EQ(rt_cuda_packed_bytes(IR_NF4, 6), 3);
    CHECK_EQ(rt_cuda_packed_bytes(IR_U8, 5), 5);
    CHECK_EQ(rt_cuda_packed_bytes(IR_BF16, 5), 10);
    CHECK_EQ(rt_cuda_packed_bytes(IR_NF4, 0), 0);
    CHECK(rt_cuda_is_packed(IR_NF4) && rt_cuda_is_packed(IR_U8) && !rt_cuda_is_packed(IR_I32) && !rt_cuda_is_packed(IR_BF16));
    CHECK_EQ(rt_cuda_pack(IR_NF4, c, 5, b, NULL), 0);
    CHECK_MSG(b[0] == 0x21 && b[1] == 0xf3 && b[2] == 0x00, "nf4 bytes %02x %02x %02x", b[0], b[1], b[2]);
    rt_cuda_unpack(IR_NF4, b, 5, back);
    CHECK(!memcmp(c, back, sizeof c));
    /* round trips: odd and even counts, every code / step */
    static const int64_t ns[] = {1, 2, 7, 64, 129, 1000};
    uint64_t r = 12345;
    for (size_t k = 0; k < AX_ARRAY_LEN(ns); k++)
        for (int u8 = 0; u8 < 2; u8++) {
            ir_dtype t = u8 ? IR_U8 : IR_NF4;
            int64_t n = ns[k], nb = rt_cuda_packed_bytes(t, n);
            float *src = malloc(sizeof(float) * (size_t)n), *dst = malloc(sizeof(float) * (size_t)n);
            uint8_t *pk = malloc((size_t)nb + 1);
            pk[nb] = 0x5a; /* the byte past the end stays untouched */
            for (int64_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                src[i] = (float)((r >> 33) % (u8 ? 256 : 16));
            }
            if (n == 1000) src[0] = u8 ? 255 : 15, src[1] = 0;
            CHECK_EQ(rt_cuda_pack(t, src, n, pk, NULL), 0);
            rt_cuda_unpack(t, pk, n, dst);
            CHECK_MSG(!memcmp(src, dst, sizeof(float) * (size_t)n), "%s round trip of %lld", ir_dtype_name(t), (long long)n);
            CHECK_EQ(pk[nb], 0x5a);
            if (t == IR_NF4 && n % 2) CHECK_EQ(pk[nb - 1] >> 4, 0); /* an odd count: the last high nibble is 0 */
            free(src), free(dst), free(pk);
        }
    /* what is not a code or a step is refused, naming the element */
    float bad[4][3] = {{1, 16, 2}, {1, 2.5f, 2}, {1, -1, 2}, {1, NAN, 2}};
    for (int i = 0; i < 4; i++) {
        int64_t at = -1;
        CHECK_EQ(rt_cuda_pack(IR_NF4, bad[i], 3, b, &at), -1);
        CHECK_EQ(at, 1);
    }
    float big[2] = {255, 256};
    int64_t at = -1;
    CHECK_EQ(rt_cuda_pack(IR_U8, big, 2, b, &at), -1);
    CHECK_EQ(at, 1);
}

/* A QLoRA-shaped module built by hand: a frozen nf4 base weight w[N,K]
 * (K even) with its u8 steps [N,ceil(K/64)] and f32 row maxima [N] — split
 * by rows over dp when world > 1, as ZeRO-3/FSDP shard parameters, and
 * gathered before use — dequantized to the compute dtype t; y = x w^T; LoRA
 * dropout of y; stored. Also the local rows dequantized without a gather
 * (operands split alike) into a row-split global. */
typedef struct qlora_ids {
    int q, a, r, x, y, wl;
} qlora_ids;

static ir_module *qlora_module(int world, ir_dtype t, int64_t N, int64_t K, int64_t T, qlora_ids *g) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    ir_mesh_add(m, "dp", world);
    ir_type qt = IR_TYPE(IR_NF4, N, K), at = IR_TYPE(IR_U8, N, (K + 63) / 64), rt = IR_TYPE(IR_F32, N), wt = IR_TYPE(t, N, K);
    if (world > 1) qt.shard = at.shard = rt.shard = wt.shard = (ir_shard){0, 0};
    const ir_attr frozen[1] = {ir_ai("trainable", 0)};
    g->q = ir_global_add(m, "w.q", qt, IR_ROLE_PARAM, frozen, 1);
    g->a = ir_global_add(m, "w.absmax", at, IR_ROLE_PARAM, frozen, 1);
    g->r = ir_global_add(m, "w.rowmax", rt, IR_ROLE_PARAM, frozen, 1);
    g->x = ir_global_add(m, "x", IR_TYPE(t, T, K), IR_ROLE_ACT, NULL, 0);
    g->y = ir_global_add(m, "y", IR_TYPE(t, T, N), IR_ROLE_ACT, NULL, 0);
    g->wl = ir_global_add(m, "w.local", wt, IR_ROLE_ACT, NULL, 0);
    ir_program *p = ir_program_add(m, "micro_step");
    ir_builder b;
    ir_builder_init(&b, m, p, &d);
    int32_t q = IR_GLOBAL_REF(g->q), a = IR_GLOBAL_REF(g->a), r = IR_GLOBAL_REF(g->r);
    const char *to = ir_dtype_name(t);
    int32_t wl = ir_b(&b, IR_OP_dequant_nf4, IR_IN(q, a, r), IR_AT(ir_as("to", to)));
    ir_b(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(g->wl), wl), IR_NOAT);
    if (world > 1) {
        q = ir_b(&b, IR_OP_all_gather, IR_IN(q), IR_AT(ir_as("axis", "dp"), ir_ai("dim", 0)));
        a = ir_b(&b, IR_OP_all_gather, IR_IN(a), IR_AT(ir_as("axis", "dp"), ir_ai("dim", 0)));
        r = ir_b(&b, IR_OP_all_gather, IR_IN(r), IR_AT(ir_as("axis", "dp"), ir_ai("dim", 0)));
    }
    int32_t w = ir_b(&b, IR_OP_dequant_nf4, IR_IN(q, a, r), IR_AT(ir_as("to", to)));
    int32_t y = ir_b(&b, IR_OP_matmul, IR_IN(IR_GLOBAL_REF(g->x), w), IR_AT(ir_ai("tb", 1)));
    int32_t seed = ir_b_input(&b, "dropout_seed", ir_type_scalar(IR_I32));
    int32_t yd = ir_b(&b, IR_OP_dropout, IR_IN(y, seed), IR_AT(ir_af("p", 0.1), ir_ai("salt", 3)));
    ir_b(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(g->y), yd), IR_NOAT);
    CHECK(!b.failed && ir_verify(m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    return m;
}

/* Dry runs of the QLoRA module: f32 and bf16, one rank and rank 0 of 2
 * (host-staged all_gather of the packed weights), K a multiple of 64 or not.
 * The dry run checks every pointer a kernel, copy or GEMM touches against
 * the node's own buffers, at their packed sizes. */
static void dry_qlora(int world, ir_dtype t, int64_t K) {
    const int64_t N = 96, T = 24, Nl = N / world, nb = (K + 63) / 64;
    qlora_ids g;
    ir_module *mod = qlora_module(world, t, N, K, T, &g);
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_opts o = {.dry_run = 1};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    rt_cuda_prog pm;
    memset(&pm, 0, sizeof pm);
    int64_t sizes[IR_MAX_MESH] = {world, 1, 1, 1};
    rt_collectives fake = {.ctx = sizes, .all_reduce = fake_all_reduce, .all_gather = fake_all_gather,
                           .reduce_scatter = fake_reduce_scatter, .ring_shift = fake_ring_shift};
    rt_cuda_host_coll hc;
    CHECK(rt_cuda_dev_open(&dev, &o, &d) == 0);
    CHECK(rt_cuda_state_init(&st, dev, mod, &d) == 0);
    /* the globals at their packed sizes: 4 bits per code, a byte per step */
    CHECK_EQ(st.gbytes[g.q], Nl * K / 2);
    CHECK_EQ(st.gbytes[g.a], Nl * nb);
    CHECK_EQ(st.gbytes[g.r], Nl * 4);
    if (world > 1) {
        rt_cuda_host_coll_init(&hc, dev, &fake, mod);
        st.coll = &hc.dc;
    }
    const ir_program *micro = ir_program_find(mod, "micro_step");
    rt_cuda_prog *pp = &pm;
    int ok = rt_cuda_prog_init(&pm, &st, micro, &d) == 0 && rt_cuda_state_alloc(&st, &pp, 1, &d) == 0;
    CHECK_MSG(ok, "QLoRA dry run (%d ranks, %s): prepare", world, ir_dtype_name(t));
    /* the arena holds the gathered codes (2 ranks) packed too: every value's slot is its packed size */
    int64_t packed = 0, unpacked = 0;
    for (int v = 0; v < micro->nvalues; v++) {
        packed += ALIGN_UP(ir_local_bytes(mod, &micro->values[v].type));
        unpacked += ALIGN_UP(4 * rt_local_numel(mod, &micro->values[v].type));
    }
    CHECK(pm.arena_bytes > 0 && pm.arena_bytes <= packed && (world == 1 || packed < unpacked));
    /* weights go up as the CPU executor holds them (a float per code / step) */
    rt_state hs;
    memset(&hs, 0, sizeof hs);
    CHECK(rt_state_init(&hs, mod, &d) == 0);
    for (int64_t i = 0; i < hs.globals[g.q].numel; i++) rt_f(&hs.globals[g.q])[i] = (float)(i % 16);
    for (int64_t i = 0; i < hs.globals[g.a].numel; i++) rt_f(&hs.globals[g.a])[i] = (float)(i % 256);
    for (int i = 0; ok && i < mod->nglobals; i++) CHECK(rt_cuda_upload(&st, i, &hs.globals[i], &d) == 0);
    rt_f(&hs.globals[g.q])[5] = 16; /* not a code */
    CHECK(!ok || rt_cuda_upload(&st, g.q, &hs.globals[g.q], &d) == -1);
    CHECK(!ok || (ax_diag_contains(&d, "w.q") && ax_diag_contains(&d, "element 5 is 16") &&
                  ax_diag_contains(&d, "nf4 code")));
    ax_diag_free(&d);
    ax_diag_init(&d);
    rt_buf seed;
    rt_buf_alloc(&seed, ir_type_scalar(IR_I32));
    rt_i(&seed)[0] = 1234;
    const char *names[1] = {"dropout_seed"};
    inputs_ctx ctx = {&seed, names, 1};
    rt_cuda_counts c0 = rt_cuda_dev_counts(dev);
    if (ok) CHECK_MSG(rt_cuda_prog_run(&pm, &st, test_inputs, &ctx, &d) == 0, "QLoRA dry run (%d ranks, %s)", world,
                      ir_dtype_name(t));
    rt_cuda_counts c1 = rt_cuda_dev_counts(dev);
    CHECK_EQ(c1.launches - c0.launches, 3); /* dequant x2, dropout */
    CHECK_EQ(c1.gemms - c0.gemms, 1);
    CHECK_EQ(c1.kernels, 2); /* axo_dequant_nf4_<t>, axo_dropout_<t> */
    /* and come back down unpacked (a dry run reads zero bytes: code 0) */
    CHECK(!ok || (rt_cuda_download(&st, g.q, &hs.globals[g.q], &d) == 0 && rt_f(&hs.globals[g.q])[5] == 0.0f));
    ax_diag_print(&d, stderr);
    CHECK_EQ(d.nerrors, 0);
    rt_buf_free(&seed);
    rt_state_free(&hs);
    rt_cuda_prog_free(&pm);
    rt_cuda_state_free(&st);
    rt_cuda_dev_close(dev);
    ir_module_destroy(mod);
    ax_diag_free(&d);
}

/* ---- refusals ------------------------------------------------------------------------ */
static void refusals(void) {
    ax_diag d;
    ax_diag_init(&d);
    /* too big for the device: refused before anything is allocated, with the figures and advice */
    {
        fe_model m = llama(64, 4, 2, 16);
        fe_config c = config(4, 64, 0, 0);
        ir_module *mod = build(&c, &m, 1, (pass_shard_cfg){0});
        rt_session s;
        CHECK(mod && rt_session_from_module(mod, &s, &d) == 0);
        CHECK(rt_session_init_weights(&s, NULL, &d) == 0);
        rt_cuda_opts o = {.dry_run = 1, .dry_mem_bytes = ((int64_t)32 << 20) + (512 << 10)}; /* the workspace + 512 KiB */
        CHECK(rt_cuda_attach(&s, &o, &d) == -1);
        CHECK(s.backend == NULL);
        CHECK(ax_diag_contains(&d, "does not fit") && ax_diag_contains(&d, "axoc's per-rank figure") &&
              ax_diag_contains(&d, "gradient_checkpointing") && ax_diag_contains(&d, "are free"));
        ax_diag_print(&d, stdout);
        rt_session_close(&s);
        ax_diag_free(&d);
        ax_diag_init(&d);
    }
    /* an op/dtype no kernel covers: refused at prepare, naming the node */
    {
        const char *text = "axo.ir 1\n"
                           "global @out : f16[4,8] act\n"
                           "program p {\n"
                           "  %x = input() {name=\"x\"} : f32[4,8] input\n"
                           "  %y = scale(%x) {alpha=2.0} : f32[4,8] act\n"
                           "  %z = convert(%y) {to=\"f16\"} : f16[4,8] act\n"
                           "}\n";
        ir_module *mod = ir_parse(text, strlen(text), "t.ir", &d);
        CHECK(mod != NULL);
        rt_cuda_opts o = {.dry_run = 1};
        rt_cuda_dev *dev = NULL;
        rt_cuda_state st;
        CHECK(rt_cuda_dev_open(&dev, &o, &d) == 0);
        CHECK(rt_cuda_state_init(&st, dev, mod, &d) == -1); /* the f16 global */
        CHECK(ax_diag_contains(&d, "@out") || ax_diag_contains(&d, "out"));
        CHECK(ax_diag_contains(&d, "f16"));
        rt_cuda_state_free(&st);
        ax_diag_free(&d);
        ax_diag_init(&d);
        /* the same program without the global: the node is refused */
        const char *text2 = "axo.ir 1\n"
                            "program p {\n"
                            "  %x = input() {name=\"x\"} : f32[4,8] input\n"
                            "  %y = scale(%x) {alpha=2.0} : f32[4,8] act\n"
                            "  %z = convert(%y) {to=\"f16\"} : f16[4,8] act\n"
                            "}\n";
        ir_module *mod2 = ir_parse(text2, strlen(text2), "t2.ir", &d);
        rt_cuda_prog pr;
        CHECK(mod2 && rt_cuda_state_init(&st, dev, mod2, &d) == 0);
        CHECK(rt_cuda_prog_init(&pr, &st, ir_program_find(mod2, "p"), &d) == -1);
        CHECK(ax_diag_contains(&d, "p node 2 (convert)") && ax_diag_contains(&d, "not supported by the CUDA executor"));
        /* the static check axorun uses to pick its default executor says the same */
        ax_diag pc;
        ax_diag_init(&pc);
        CHECK(rt_cuda_plan_check(mod2, &pc) == -1 && ax_diag_contains(&pc, "p node 2 (convert)"));
        ax_diag_free(&pc);
        rt_cuda_prog_free(&pr);
        rt_cuda_state_free(&st);
        ax_diag_free(&d);
        ax_diag_init(&d);
        /* attention with a head_dim no kernel covers */
        const char *text3 = "axo.ir 1\n"
                            "program p {\n"
                            "  %q = input() {name=\"q\"} : f32[1,8,2,300] input\n"
                            "  %s = input() {name=\"s\"} : i32[1,8] input\n"
                            "  %o, %l = attention(%q, %q, %q, %s) {scale=0.1, causal=1} : f32[1,8,2,300] act, f32[1,2,8] act\n"
                            "}\n";
        ir_module *mod3 = ir_parse(text3, strlen(text3), "t3.ir", &d);
        CHECK(mod3 && rt_cuda_state_init(&st, dev, mod3, &d) == 0);
        CHECK(rt_cuda_prog_init(&pr, &st, ir_program_find(mod3, "p"), &d) == -1);
        CHECK(ax_diag_contains(&d, "node 2 (attention)") && ax_diag_contains(&d, "head_dim 300"));
        rt_cuda_prog_free(&pr);
        rt_cuda_state_free(&st);
        /* a ring-attention block with a head_dim the block kernels do not cover */
        const char *text4 = "axo.ir 1\n"
                            "program p {\n"
                            "  %q = input() {name=\"q\"} : bf16[1,8,2,32] input\n"
                            "  %s = input() {name=\"s\"} : i32[1,8] input\n"
                            "  %o, %l = attention_blk(%q, %q, %q, %s, %s, %s, %s) {scale=0.1, causal=1} : "
                            "f32[1,8,2,32] act, f32[1,2,8] act\n"
                            "}\n";
        ir_module *mod4 = ir_parse(text4, strlen(text4), "t4.ir", &d);
        CHECK(mod4 && rt_cuda_state_init(&st, dev, mod4, &d) == 0);
        CHECK(rt_cuda_prog_init(&pr, &st, ir_program_find(mod4, "p"), &d) == -1);
        CHECK(ax_diag_contains(&d, "node 2 (attention_blk)") && ax_diag_contains(&d, "head_dim 32"));
        rt_cuda_prog_free(&pr);
        rt_cuda_state_free(&st);
        ir_module_destroy(mod4);
        /* all_gather of nf4 codes whose per-rank block is not whole bytes (NCCL moves bytes) */
        const char *text5 = "axo.ir 1\n"
                            "mesh dp=2\n"
                            "global @q : nf4[2,3]<dp:0> act\n"
                            "program p {\n"
                            "  %g = all_gather(@q) {axis=\"dp\", dim=0} : nf4[2,3] act\n"
                            "}\n";
        ir_module *mod5 = ir_parse(text5, strlen(text5), "t5.ir", &d);
        CHECK(mod5 && rt_cuda_state_init(&st, dev, mod5, &d) == 0);
        CHECK(rt_cuda_prog_init(&pr, &st, ir_program_find(mod5, "p"), &d) == -1);
        CHECK(ax_diag_contains(&d, "node 0 (all_gather)") && ax_diag_contains(&d, "odd number of codes (3)"));
        rt_cuda_prog_free(&pr);
        rt_cuda_state_free(&st);
        ir_module_destroy(mod5);
        rt_cuda_dev_close(dev);
        ir_module_destroy(mod);
        ir_module_destroy(mod2);
        ir_module_destroy(mod3);
        ax_diag_free(&d);
        ax_diag_init(&d);
    }
    /* no GPU here (or a build without CUDA): a real device cannot be opened, and says why */
    char why[256] = "";
    if (rt_cuda_device_count(why, sizeof why) == 0) {
        CHECK(why[0] != 0);
        rt_cuda_opts o = {0};
        rt_cuda_dev *dev = NULL;
        CHECK(rt_cuda_dev_open(&dev, &o, &d) == -1 && dev == NULL);
        CHECK(ax_diag_contains(&d, "no CUDA device") || ax_diag_contains(&d, "without the CUDA toolkit"));
        printf("  no CUDA device here: %s\n", why);
    }
    ax_diag_free(&d);
}

/* ---- CPU offload: pinned memory, asynchronous copies, host-node ordering ------------------ */
void rt_cuda_prog_planned_waits_only(rt_cuda_prog *pr);

/* How a dry offload run is set up: the plan's pin attrs (-1: absent, i.e.
 * pinned), the dry run's pin limit, AXO_CUDA_SYNC_COPIES, one stream. */
typedef struct off_mode {
    const char *name;
    int pin_param, pin_opt;
    int64_t pin_limit;
    int sync_copies, one_stream;
} off_mode;

static void set_pin_attrs(ir_module *mod, int pin_param, int pin_opt) {
    if (pin_param >= 0) ir_module_set_attr(mod, ir_ai("offload.pin_memory_param", pin_param));
    if (pin_opt >= 0) ir_module_set_attr(mod, ir_ai("offload.pin_memory_optimizer", pin_opt));
}

/* Every host global's block, bf16 image and the copy arena: pinned as the
 * class's flag says (param: role param; opt: the rest; the copy arena
 * follows the optimizer when it is offloaded). */
static void check_pinning(const rt_cuda_state *st, int want_param, int want_opt, const char *what) {
    const ir_module *m = st->m;
    int opt_host = 0;
    for (int g = 0; g < m->nglobals; g++) {
        if (!ir_global_on_host(&m->globals[g])) continue;
        int want = m->globals[g].role == IR_ROLE_PARAM ? want_param : want_opt;
        opt_host |= m->globals[g].role == IR_ROLE_OPT;
        CHECK_MSG(rt_cuda_host_pinned(st->dev, st->host.globals[g].data) == want, "%s: %s pinned %d, want %d", what,
                  m->globals[g].name, rt_cuda_host_pinned(st->dev, st->host.globals[g].data), want);
        if (st->img && st->img[g])
            CHECK_MSG(rt_cuda_host_pinned(st->dev, st->img[g]) == want, "%s: image of %s", what, m->globals[g].name);
    }
    if (st->copy_arena)
        CHECK_MSG(rt_cuda_host_pinned(st->dev, st->copy_arena) == (opt_host ? want_opt : want_param), "%s: copy arena",
                  what);
    CHECK_EQ(rt_cuda_host_pinned(st->dev, &st), -1); /* not offload memory */
}

/* Two optimizer steps of an offload plan as rank 0 of a pretend 2-rank
 * group on a bare dry-run state, the host globals starting from fixed
 * values; leaves the host globals in *out (fp32, as the CPU stores them)
 * and returns the executor's counts. */
static rt_cuda_counts offload_steps(const dry_case *k, const off_mode *md, rt_state *out) {
    rt_cuda_counts r = {0};
    memset(out, 0, sizeof *out);
    ir_module *mod = build(&k->c, &k->m, k->world, k->sh);
    if (!mod) return r;
    set_pin_attrs(mod, md->pin_param, md->pin_opt);
    char what[200];
    snprintf(what, sizeof what, "%s, %s", k->name, md->name);
    ax_diag d;
    ax_diag_init(&d);
    rt_cuda_opts o = {.dry_run = 1, .dry_pin_limit = md->pin_limit, .sync_copies = md->sync_copies,
                      .one_stream = md->one_stream};
    int64_t sizes[IR_MAX_MESH];
    for (int a = 0; a < IR_MAX_MESH; a++) sizes[a] = a < mod->nmesh ? mod->mesh_sizes[a] : 1;
    rt_collectives fake = {.ctx = sizes, .all_reduce = fake_all_reduce, .all_gather = fake_all_gather,
                           .reduce_scatter = fake_reduce_scatter, .ring_shift = fake_ring_shift};
    rt_cuda_host_coll hc;
    dry_step s;
    static const char *names[7] = {"input_ids", "targets", "position_ids", "seq_ids", "loss_scale", "lr", "step"};
    memset(&s, 0, sizeof s);
    int64_t B = k->c.micro_batch_size, S = k->c.sequence_len;
    int ok = rt_cuda_dev_open(&s.dev, &o, &d) == 0 && rt_cuda_state_init(&s.st, s.dev, mod, &d) == 0;
    if (ok) {
        rt_cuda_host_coll_init(&hc, s.dev, &fake, mod);
        s.st.coll = &hc.dc;
    }
    ok = ok && rt_cuda_prog_init(&s.pm, &s.st, ir_program_find(mod, "micro_step"), &d) == 0 &&
         rt_cuda_prog_init(&s.po, &s.st, ir_program_find(mod, "opt_step"), &d) == 0;
    rt_cuda_prog *pp[2] = {&s.pm, &s.po};
    ok = ok && rt_cuda_state_alloc(&s.st, pp, 2, &d) == 0;
    CHECK_MSG(ok, "%s: setup", what);
    for (int i = 0; i < 7; i++) {
        s.names[i] = names[i];
        rt_buf_alloc(&s.in[i], i >= 4 ? ir_type_scalar(IR_F32) : IR_TYPE(IR_I32, B, S));
    }
    batch(B, S, k->m.vocab_size, rt_i(&s.in[0]), rt_i(&s.in[1]), rt_i(&s.in[2]), rt_i(&s.in[3]));
    rt_f(&s.in[4])[0] = 1.0f / (float)(B * S), rt_f(&s.in[5])[0] = 1e-3f;
    s.ctx = (inputs_ctx){s.in, s.names, 7};
    CHECK(rt_state_init(out, mod, &d) == 0); /* out->m = mod: the caller destroys it */
    for (int g = 0; ok && g < mod->nglobals; g++) { /* the same start in every mode: bf16-exact values */
        rt_buf *b = &out->globals[g];
        if (b->type.dtype == IR_I32) continue;
        int absmax = strstr(mod->globals[g].name, "_absmax/") != NULL; /* 8-bit state: codes 0..255, maxima >= 0 */
        for (int64_t i = 0; i < b->numel; i++) {
            float v = ax_bf16_to_f32(ax_f32_to_bf16((float)((i * 37 + g * 11) % 23 - 11) / 16.0f));
            rt_f(b)[i] = b->type.dtype == IR_U8 ? (float)((i * 37 + g * 11) % 256) : absmax ? fabsf(v) : v;
        }
        CHECK(rt_cuda_upload(&s.st, g, b, &d) == 0);
    }
    for (int step = 1; ok && step <= 2; step++) {
        rt_f(&s.in[6])[0] = (float)step;
        ok = rt_cuda_prog_run(&s.pm, &s.st, test_inputs, &s.ctx, &d) == 0;
        CHECK_MSG(ok, "%s: micro_step", what);
        CHECK_EQ(rt_cuda_dev_counts(s.dev).copies_in_flight, 0); /* a run ends with every copy complete */
        /* offloaded bf16 parameters: their images were made, and stay valid until the optimizer writes them */
        for (int g = 0; ok && s.st.img && g < mod->nglobals; g++)
            if (s.st.img[g] && mod->globals[g].role == IR_ROLE_PARAM)
                CHECK_MSG(s.st.img_ok[g], "%s: the image of %s is stale after micro_step", what, mod->globals[g].name);
        ok = ok && rt_cuda_prog_run(&s.po, &s.st, test_inputs, &s.ctx, &d) == 0;
        CHECK_MSG(ok, "%s: opt_step", what);
        CHECK_EQ(rt_cuda_dev_counts(s.dev).copies_in_flight, 0);
        /* bf16 optimizer state that goes up (pure bf16 under ZeRO-1/2: the sharded bf16 copy the host
         * updates, then gathered into the parameter): its image is made after the host wrote it */
        for (int g = 0; ok && s.st.img && g < mod->nglobals; g++)
            if (s.st.img[g] && mod->globals[g].role == IR_ROLE_OPT)
                CHECK_MSG(s.st.img_ok[g], "%s: the image of %s is stale after opt_step", what, mod->globals[g].name);
    }
    int img_written = 0; /* opt_step stores the new parameters into their host blocks: the images are stale */
    for (int g = 0; ok && s.st.img && g < mod->nglobals; g++) img_written += s.st.img[g] && !s.st.img_ok[g];
    if (ok && s.st.img && k->sh.offload_params)
        CHECK_MSG(img_written > 0, "%s: no image invalidated by opt_step", what);
    int want_p = md->pin_limit < 0 ? 0 : md->pin_param != 0, want_o = md->pin_limit < 0 ? 0 : md->pin_opt != 0;
    if (ok) check_pinning(&s.st, want_p, want_o, what);
    for (int g = 0; ok && g < mod->nglobals; g++)
        if (ir_global_on_host(&mod->globals[g])) CHECK(rt_cuda_download(&s.st, g, &out->globals[g], &d) == 0);
    if (ok) r = rt_cuda_dev_counts(s.dev);
    ax_diag_print(&d, stderr);
    CHECK_MSG(d.nerrors == 0, "%s: errors", what);
    ax_diag_free(&d);
    dry_close(&s);
    return r;
}

/* Every offload plan in every mode: the ordering checks of the dry run
 * pass, copies are asynchronous exactly where the host side is pinned,
 * the schedule's waits alone order each host node after its copies, and
 * the host state after two steps is the same bits in every mode. */
static void dry_offload_modes(const dry_case *k) {
    const off_mode modes[] = {
        {"pinned (the plan does not say)", -1, -1, 0, 0, 0},
        {"pin_memory true", 1, 1, 0, 0, 0},
        {"pin_memory false", 0, 0, 0, 0, 0},
        {"parameters pinned, optimizer not", 1, 0, 0, 0, 0},
        {"pinning refused (RLIMIT_MEMLOCK)", 1, 1, -1, 0, 0},
        {"AXO_CUDA_SYNC_COPIES=1", 1, 1, 0, 1, 0},
        {"one stream", 1, 1, 0, 0, 1},
    };
    rt_state ref;
    memset(&ref, 0, sizeof ref);
    for (size_t i = 0; i < AX_ARRAY_LEN(modes); i++) {
        const off_mode *md = &modes[i];
        rt_state got;
        rt_cuda_counts c = offload_steps(k, md, &got);
        int pinned_all = md->pin_limit >= 0 && md->pin_param != 0 && md->pin_opt != 0 && !md->sync_copies;
        int none = md->pin_limit < 0 || (md->pin_param == 0 && md->pin_opt == 0) || md->sync_copies ||
                   (md->pin_opt == 0 && !k->sh.offload_params); /* the optimizer's buffers are all there are */
        CHECK_MSG(c.async_copies + c.sync_copies > 0, "%s, %s: no offload copies", k->name, md->name);
        if (pinned_all)
            CHECK_MSG(c.async_copies > 0 && c.sync_copies == 0, "%s, %s: %lld async, %lld sync copies", k->name, md->name,
                      (long long)c.async_copies, (long long)c.sync_copies);
        if (none)
            CHECK_MSG(c.async_copies == 0 && c.sync_copies > 0, "%s, %s: %lld async, %lld sync copies", k->name, md->name,
                      (long long)c.async_copies, (long long)c.sync_copies);
        if (!pinned_all && !none) /* parameters pinned, optimizer not: both kinds (offload_all) */
            CHECK_MSG(c.async_copies > 0 && c.sync_copies > 0, "%s, %s: %lld async, %lld sync copies", k->name, md->name,
                      (long long)c.async_copies, (long long)c.sync_copies);
        CHECK_EQ(c.pin_fallbacks > 0, md->pin_limit < 0);
        CHECK_MSG(c.host_waits > 0 && c.host_waits_unplanned == 0, "%s, %s: %lld host waits, %lld not in the schedule",
                  k->name, md->name, (long long)c.host_waits, (long long)c.host_waits_unplanned);
        if (!got.m) continue;
        if (!ref.m) {
            ref = got;
            printf("  offload dry run, %s: %lld asynchronous copies, %lld host-node waits per 2 steps\n", k->name,
                   (long long)c.async_copies, (long long)c.host_waits);
            continue;
        }
        for (int g = 0; g < ref.m->nglobals; g++)
            if (ir_global_on_host(&ref.m->globals[g]))
                CHECK_MSG(!memcmp(ref.globals[g].data, got.globals[g].data, 4 * (size_t)ref.globals[g].numel),
                          "%s, %s: host global %s differs from the pinned run", k->name, md->name,
                          ref.m->globals[g].name);
        const ir_module *gm = got.m;
        rt_state_free(&got);
        ir_module_destroy((ir_module *)gm);
    }
    if (ref.m) {
        const ir_module *rm = ref.m;
        rt_state_free(&ref);
        ir_module_destroy((ir_module *)rm);
    }
}

/* A scheduled program by hand: to_host -> host nodes -> to_device of the
 * host value and of the host global's bf16 image -> device add -> to_host
 * -> host acc into the global. With `bad`, the first host node lacks its
 * wait: the executor waits anyway (counted as unplanned), and with only
 * the schedule's waits the dry run refuses the read of an incomplete copy. */
static const char *hand_ir(int bad) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "axo.ir 1\nattr schedule.streams = 4\nmesh dp=1\n"
             "global @a : bf16[7,9] act\nglobal @h : bf16[7,9] act {place=\"host\"}\nglobal @o : bf16[7,9] act\n"
             "program p {\n"
             "  %%0 = to_host(@a) {stream=2} : bf16[7,9] temp\n"
             "  %%1 = scale(%%0) {alpha=3.0, on=\"host\", stream=3%s} : bf16[7,9] act\n"
             "  %%2 = add(%%1, @h) {on=\"host\", stream=3} : bf16[7,9] act\n"
             "  store(@h, %%2) {on=\"host\", stream=3}\n"
             "  %%3 = to_device(%%2) {stream=2, wait=[2]} : bf16[7,9] temp\n"
             "  %%4 = to_device(@h) {stream=2, wait=[3]} : bf16[7,9] temp\n"
             "  %%5 = add(%%3, %%4) {stream=0, wait=[5]} : bf16[7,9] act\n"
             "  store(@o, %%5) {stream=0}\n"
             "  %%6 = to_host(%%5) {stream=2, wait=[6]} : bf16[7,9] temp\n"
             "  acc(@h, %%6) {on=\"host\", stream=3, wait=[8]}\n"
             "}\n",
             bad ? "" : ", wait=[0]");
    return buf;
}

/* The hand-written IR text parsed and verified (a failed check otherwise),
 * or NULL after printing why. */
static ir_module *parse_verified(const char *txt, const char *name, ax_diag *d) {
    ir_module *m = ir_parse(txt, strlen(txt), name, d);
    int ok = m && ir_verify(m, d) == 0;
    CHECK(ok);
    if (ok && !d->nerrors) return m;
    ax_diag_print(d, stderr);
    ir_module_destroy(m);
    return NULL;
}

static void dry_offload_hand(void) {
    for (int bad = 0; bad <= 1; bad++)
        for (int planned_only = 0; planned_only <= bad; planned_only++) {
            ax_diag d;
            ax_diag_init(&d);
            ir_module *m = parse_verified(hand_ir(bad), "hand", &d);
            if (!m) {
                ax_diag_free(&d);
                continue;
            }
            rt_cuda_opts o = {.dry_run = 1};
            rt_cuda_dev *dev = NULL;
            rt_cuda_state st;
            rt_cuda_prog pr;
            memset(&pr, 0, sizeof pr);
            CHECK(rt_cuda_dev_open(&dev, &o, &d) == 0 && rt_cuda_state_init(&st, dev, m, &d) == 0 &&
                  rt_cuda_prog_init(&pr, &st, m->programs[0], &d) == 0);
            rt_cuda_prog *pp = &pr;
            CHECK(rt_cuda_state_alloc(&st, &pp, 1, &d) == 0);
            CHECK(!rt_cuda_graph_eligible(m, m->programs[0])); /* host nodes stay out of CUDA graphs */
            /* to_host results and the to_device operand %2 have slots; the global goes from its image */
            CHECK(pr.copy_off[0] >= 0 && pr.copy_off[2] >= 0 && pr.copy_off[6] >= 0 && pr.copy_off[1] < 0);
            int gh = ir_global_find(m, "h");
            rt_buf hv;
            rt_buf_alloc(&hv, IR_TYPE(IR_BF16, 7, 9));
            for (int64_t i = 0; i < hv.numel; i++) rt_f(&hv)[i] = (float)(i % 9) - 4.0f;
            CHECK(rt_cuda_upload(&st, gh, &hv, &d) == 0);
            if (planned_only) rt_cuda_prog_planned_waits_only(&pr);
            rt_cuda_counts c0 = rt_cuda_dev_counts(dev);
            int rc = rt_cuda_prog_run(&pr, &st, NULL, NULL, &d);
            rt_cuda_counts c1 = rt_cuda_dev_counts(dev);
            if (planned_only) { /* the ordering rule, broken by the plan, is caught */
                CHECK(rc == -1);
                CHECK(ax_diag_contains(&d, "p node 1 (scale, on the host)") &&
                      ax_diag_contains(&d, "result of node 0 (to_host)") && ax_diag_contains(&d, "not known to be complete"));
            } else {
                ax_diag_print(&d, stderr);
                CHECK(rc == 0 && d.nerrors == 0);
                CHECK_EQ(c1.async_copies - c0.async_copies, 4);
                CHECK_EQ(c1.sync_copies - c0.sync_copies, 0);
                CHECK_EQ(c1.host_waits - c0.host_waits, 2); /* node 1 on node 0, node 9 on node 8 */
                CHECK_EQ(c1.host_waits_unplanned - c0.host_waits_unplanned, bad);
                CHECK_EQ(c1.copies_in_flight, 0);
                CHECK(st.img[gh] && !st.img_ok[gh]); /* made for node 5, stale after node 9 wrote @h */
                /* the dry run's copies to the host bring zeros: @h = 3 * 0 + h, then += 0 */
                CHECK(memcmp(st.host.globals[gh].data, hv.data, 4 * (size_t)hv.numel) == 0);
                CHECK_EQ(rt_cuda_host_pinned(dev, st.host.globals[gh].data), 1);
            }
            rt_buf_free(&hv);
            rt_cuda_prog_free(&pr);
            rt_cuda_state_free(&st);
            rt_cuda_dev_close(dev);
            ir_module_destroy(m);
            ax_diag_free(&d);
        }
    printf("  offload by hand: 4 asynchronous copies, 2 host-node waits; a host node without its wait is caught\n");
}


/* Copies of k host globals' starting values, twice: for the reference
 * step at this rank's offset (ref) and at rank 0's (ref0). */
static void copy_state(const rt_state *init, const int *gs, int k, float **ref, float **ref0) {
    for (int j = 0; j < k; j++) {
        size_t b = 4 * (size_t)init->globals[gs[j]].numel;
        ref[j] = malloc(b), ref0[j] = malloc(b);
        memcpy(ref[j], init->globals[gs[j]].data, b);
        memcpy(ref0[j], init->globals[gs[j]].data, b);
    }
}

/* After a host-placed optimizer step as rank 1: every global holds the CPU
 * kernel's bits at rank 1's offset (ref), and some differ from rank 0's
 * (ref0), or the block's offset was lost. Frees the references. */
static void check_host_state(rt_cuda_state *st, const ir_module *m, const int *gs, int k, float **ref, float **ref0,
                             const char *what, ax_diag *d) {
    int differ0 = 0;
    for (int j = 0; j < k; j++) {
        rt_buf got;
        rt_buf_alloc_local(m, &got, m->globals[gs[j]].type);
        CHECK(rt_cuda_download(st, gs[j], &got, d) == 0);
        CHECK_MSG(!memcmp(got.data, ref[j], 4 * (size_t)got.numel), "%s: %s differs from the CPU kernel's", what,
                  m->globals[gs[j]].name);
        differ0 |= memcmp(got.data, ref0[j], 4 * (size_t)got.numel) != 0;
        rt_buf_free(&got);
        free(ref[j]), free(ref0[j]);
    }
    CHECK_MSG(differ0, "%s: rank 1 rounded as rank 0 (the block's offset is lost)", what);
}

/* Pure-bf16 adamw by hand, as rank 1 of dp 2 on a [37, 9] parameter split
 * on dim 0 (blocks of 19 rows: rank 1's starts at element 171). On the host
 * (every operand place="host", the node on="host": the path of
 * offload_optimizer) the CUDA executor runs the CPU kernel on the host
 * state with its own mesh coordinates: p, m, v must come back with the bits
 * of ck_adamw_step_sr_bf16 with first = 171, which differ from first = 0's.
 * On the device the dry run checks axo_adamw_sr_bf16's arguments against
 * the bf16 buffers; a bf16 parameter with an f32 gradient is refused. */
static const char *adamw_sr_ir(int host, const char *gdt) {
    static char buf[2048];
    const char *pl = host ? " {place=\"host\"}" : "";
    snprintf(buf, sizeof buf,
             "axo.ir 1\nmesh dp=2\n"
             "global @p : bf16[37,9]<dp:0> act%s\nglobal @g : %s[37,9]<dp:0> act%s\n"
             "global @m : bf16[37,9]<dp:0> act%s\nglobal @v : bf16[37,9]<dp:0> act%s\n"
             "global @lr : f32[] act%s\nglobal @st : f32[] act%s\nglobal @gs : f32[] act%s\n"
             "program p {\n"
             "  adamw(@p, @g, @m, @v, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01, salt=5%s}\n"
             "}\n",
             pl, gdt, pl, pl, pl, pl, pl, pl, host ? ", on=\"host\"" : "");
    return buf;
}

static void dry_adamw_sr_hand(void) {
    for (int host = 1; host >= 0; host--)
        for (int f32g = 0; f32g <= !host; f32g++) {
            ax_diag d;
            ax_diag_init(&d);
            ir_module *m = parse_verified(adamw_sr_ir(host, f32g ? "f32" : "bf16"), "adamw_sr", &d);
            if (!m) {
                ax_diag_free(&d);
                continue;
            }
            /* the starting values: bf16-exact, v >= 0; lr, step, grad scale */
            rt_state init;
            memset(&init, 0, sizeof init);
            CHECK(rt_state_init(&init, m, &d) == 0);
            int gp = ir_global_find(m, "p"), gg = ir_global_find(m, "g"), gm = ir_global_find(m, "m"),
                gv = ir_global_find(m, "v");
            int64_t n = init.globals[gp].numel;
            CHECK_EQ(n, 19 * 9);
            for (int64_t i = 0; i < n; i++) {
                rt_f(&init.globals[gp])[i] = ax_round_bf16((float)((i * 37) % 23 - 11) / 16.0f + 0.03f);
                rt_f(&init.globals[gg])[i] = ax_round_bf16((float)((i * 13) % 17 - 8) / 64.0f + 0.01f);
                rt_f(&init.globals[gm])[i] = ax_round_bf16((float)((i * 7) % 11 - 5) / 512.0f + 0.001f);
                rt_f(&init.globals[gv])[i] = ax_round_bf16((float)((i * 5) % 13 + 1) / 65536.0f);
            }
            rt_f(&init.globals[ir_global_find(m, "lr")])[0] = 1e-3f;
            rt_f(&init.globals[ir_global_find(m, "st")])[0] = 3.0f;
            rt_f(&init.globals[ir_global_find(m, "gs")])[0] = 0.5f;
            rt_cuda_opts o = {.dry_run = 1};
            rt_cuda_dev *dev = NULL;
            rt_cuda_state st;
            rt_cuda_prog pr;
            memset(&pr, 0, sizeof pr);
            memset(&st, 0, sizeof st);
            int rc = rt_cuda_dev_open(&dev, &o, &d) || rt_cuda_state_init(&st, dev, m, &d) ||
                     rt_cuda_prog_init(&pr, &st, m->programs[0], &d);
            if (f32g) { /* refused while the program is prepared, naming what it needs */
                CHECK(rc != 0 && ax_diag_contains(&d, "adamw of a bf16 parameter with gradient f32") &&
                      ax_diag_contains(&d, "pure bf16: all bf16"));
            } else {
                CHECK(rc == 0);
                st.coord[0] = 1; /* rank 1 of dp 2 */
                rt_cuda_prog *pp = &pr;
                if (!rc) rc = rt_cuda_state_alloc(&st, &pp, 1, &d);
                for (int g = 0; !rc && g < m->nglobals; g++) rc = rt_cuda_upload(&st, g, &init.globals[g], &d);
                if (!host && !rc) CHECK_EQ(st.gbytes[gm], 2 * n); /* bf16 moments: 2 bytes an element */
                rt_cuda_counts c0 = rt_cuda_dev_counts(dev);
                if (!rc) rc = rt_cuda_prog_run(&pr, &st, NULL, NULL, &d);
                rt_cuda_counts c1 = rt_cuda_dev_counts(dev);
                CHECK(rc == 0);
                CHECK_EQ(c1.launches - c0.launches, host ? 0 : 1); /* axo_adamw_sr_bf16 (dry: validated only) */
                if (host && !rc) {
                    /* the reference, on copies of the starting values: rank 1's block, and rank 0's bits */
                    float *ref[3], *ref0[3];
                    int gs3[3] = {gp, gm, gv};
                    copy_state(&init, gs3, 3, ref, ref0);
                    ck_adamw_step_sr_bf16(ref[0], rt_f(&init.globals[gg]), ref[1], ref[2], n, (double)1e-3f, 0.9, 0.999,
                                          1e-8, 0.01, 3, 0.5, 5, 19 * 9);
                    ck_adamw_step_sr_bf16(ref0[0], rt_f(&init.globals[gg]), ref0[1], ref0[2], n, (double)1e-3f, 0.9,
                                          0.999, 1e-8, 0.01, 3, 0.5, 5, 0);
                    check_host_state(&st, m, gs3, 3, ref, ref0, "host adamw_sr", &d);
                }
            }
            ax_diag_print(&d, stderr);
            CHECK(d.nerrors == (f32g ? d.nerrors : 0));
            rt_cuda_prog_free(&pr);
            rt_cuda_state_free(&st);
            if (dev) rt_cuda_dev_close(dev);
            rt_state_free(&init);
            ir_module_destroy(m);
            ax_diag_free(&d);
        }
    printf("  pure-bf16 adamw by hand: on the host as rank 1, ck_adamw_step_sr_bf16's bits at offset 171; on the "
           "device, launch checked; an f32 gradient refused\n");
}

/* adamw8 by hand, as rank 1 of dp 2 on a [37, 300] parameter split on dim
 * 0 (blocks of 19 rows: rank 1's starts at element 19 * 300; rows of two
 * quantization blocks, 256 + 44). On the host (every operand
 * place="host", the node on="host": offload_optimizer's path) the CUDA
 * executor runs x_adamw8 on the host state with its own mesh coordinates:
 * p, the codes and the maxima must come back with ck_adamw8_step's bits
 * for first = 5700, whose stochastic rounding of p differs from first = 0's.
 * On the device the dry run checks axo_adamw8_bf16's / _f32's arguments
 * against the buffers (codes one byte an element); a split along the rows'
 * blocks (dim 1) is refused. */
static const char *adamw8_ir(int host, const char *pdt, int dim) {
    static char buf[2048];
    const char *pl = host ? " {place=\"host\"}" : "";
    snprintf(buf, sizeof buf,
             "axo.ir 1\nmesh dp=2\n"
             "global @p : %s[37,300]<dp:%d> act%s\nglobal @g : bf16[37,300]<dp:%d> act%s\n"
             "global @m : u8[37,300]<dp:%d> act%s\nglobal @v : u8[37,300]<dp:%d> act%s\n"
             "global @am : f32[37,2]<dp:%d> act%s\nglobal @av : f32[37,2]<dp:%d> act%s\n"
             "global @lr : f32[] act%s\nglobal @st : f32[] act%s\nglobal @gs : f32[] act%s\n"
             "program p {\n"
             "  adamw8(@p, @g, @m, @v, @am, @av, @lr, @st, @gs) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01, "
             "salt=5%s}\n"
             "}\n",
             pdt, dim, pl, dim, pl, dim, pl, dim, pl, dim, pl, dim, pl, pl, pl, pl, host ? ", on=\"host\"" : "");
    return buf;
}

static void dry_adamw8_hand(void) {
    struct {
        int host;
        const char *pdt;
        int dim;
    } cs[] = {{1, "bf16", 0}, {0, "bf16", 0}, {0, "f32", 0}, {0, "bf16", 1}};
    for (size_t c = 0; c < AX_ARRAY_LEN(cs); c++) {
        int host = cs[c].host, refuse = cs[c].dim != 0;
        ax_diag d;
        ax_diag_init(&d);
        ir_module *m = parse_verified(adamw8_ir(host, cs[c].pdt, cs[c].dim), "adamw8", &d);
        if (!m) {
            ax_diag_free(&d);
            continue;
        }
        /* the starting state: bf16-exact p and g, any codes, maxima > 0 */
        rt_state init;
        memset(&init, 0, sizeof init);
        CHECK(rt_state_init(&init, m, &d) == 0);
        int gp = ir_global_find(m, "p"), gg = ir_global_find(m, "g"), gq[4] = {ir_global_find(m, "m"),
                ir_global_find(m, "v"), ir_global_find(m, "am"), ir_global_find(m, "av")};
        int64_t n = init.globals[gp].numel, nmx = init.globals[gq[2]].numel;
        if (!refuse) CHECK_EQ(n, 19 * 300);
        for (int64_t i = 0; i < n; i++) {
            rt_f(&init.globals[gp])[i] = ax_round_bf16((float)((i * 37) % 23 - 11) / 16.0f + 0.03f);
            rt_f(&init.globals[gg])[i] = ax_round_bf16((float)((i * 13) % 17 - 8) / 64.0f + 0.01f);
            rt_f(&init.globals[gq[0]])[i] = (float)((i * 7) % 256);
            rt_f(&init.globals[gq[1]])[i] = (float)((i * 5) % 256);
        }
        for (int64_t i = 0; i < nmx; i++) {
            rt_f(&init.globals[gq[2]])[i] = (float)(i % 3 + 1) / 128.0f;
            rt_f(&init.globals[gq[3]])[i] = (float)(i % 5 + 1) / 65536.0f;
        }
        rt_f(&init.globals[ir_global_find(m, "lr")])[0] = 1e-3f;
        rt_f(&init.globals[ir_global_find(m, "st")])[0] = 3.0f;
        rt_f(&init.globals[ir_global_find(m, "gs")])[0] = 0.5f;
        rt_cuda_opts o = {.dry_run = 1};
        rt_cuda_dev *dev = NULL;
        rt_cuda_state st;
        rt_cuda_prog pr;
        memset(&pr, 0, sizeof pr);
        memset(&st, 0, sizeof st);
        int rc = rt_cuda_dev_open(&dev, &o, &d) || rt_cuda_state_init(&st, dev, m, &d) ||
                 rt_cuda_prog_init(&pr, &st, m->programs[0], &d);
        if (refuse) { /* refused while the program is prepared, naming what it needs */
            CHECK(rc != 0 && ax_diag_contains(&d, "p node 0 (adamw8)") && ax_diag_contains(&d, "split on dim 1"));
        } else {
            CHECK(rc == 0);
            st.coord[0] = 1; /* rank 1 of dp 2 */
            rt_cuda_prog *pp = &pr;
            if (!rc) rc = rt_cuda_state_alloc(&st, &pp, 1, &d);
            for (int g = 0; !rc && g < m->nglobals; g++) rc = rt_cuda_upload(&st, g, &init.globals[g], &d);
            if (!host && !rc) { /* codes: 1 byte an element; maxima f32 */
                CHECK_EQ(st.gbytes[gq[0]], n);
                CHECK_EQ(st.gbytes[gq[1]], n);
                CHECK_EQ(st.gbytes[gq[2]], 4 * nmx);
            }
            rt_cuda_counts c0 = rt_cuda_dev_counts(dev);
            if (!rc) rc = rt_cuda_prog_run(&pr, &st, NULL, NULL, &d);
            rt_cuda_counts c1 = rt_cuda_dev_counts(dev);
            CHECK(rc == 0);
            CHECK_EQ(c1.launches - c0.launches, host ? 0 : 1); /* axo_adamw8_* (dry: validated only) */
            if (host && !rc) {
                /* the reference on copies of the starting state: rank 1's block, and rank 0's bits */
                float *ref[5], *ref0[5];
                int gs5[5] = {gp, gq[0], gq[1], gq[2], gq[3]};
                copy_state(&init, gs5, 5, ref, ref0);
                ck_adamw8_step(ref[0], rt_f(&init.globals[gg]), ref[1], ref[2], ref[3], ref[4], 19, 300, (double)1e-3f,
                               0.9, 0.999, 1e-8, 0.01, 3, 0.5, 1, 5, 19 * 300);
                ck_adamw8_step(ref0[0], rt_f(&init.globals[gg]), ref0[1], ref0[2], ref0[3], ref0[4], 19, 300,
                               (double)1e-3f, 0.9, 0.999, 1e-8, 0.01, 3, 0.5, 1, 5, 0);
                check_host_state(&st, m, gs5, 5, ref, ref0, "host adamw8", &d);
            }
        }
        ax_diag_print(&d, stderr);
        CHECK(d.nerrors == (refuse ? d.nerrors : 0));
        rt_cuda_prog_free(&pr);
        rt_cuda_state_free(&st);
        if (dev) rt_cuda_dev_close(dev);
        rt_state_free(&init);
        ir_module_destroy(m);
        ax_diag_free(&d);
    }
    printf("  adamw8 by hand: on the host as rank 1, ck_adamw8_step's bits at offset 5700; on the device (bf16, f32), "
           "launch checked, codes 1 byte an element; a split within the rows (dim 1) refused\n");
}

int main(void) {
    test_signatures();
    test_pack();
    for (int world = 1; world <= 2; world++)
        for (int64_t K = 70; K <= 320; K += 250) { /* 70: a short last block, rows of 35 bytes */
            dry_qlora(world, IR_F32, K);
            dry_qlora(world, IR_BF16, K);
        }
    fe_model hd16 = llama(64, 4, 2, 16), hd64 = llama(256, 4, 2, 64), hd128 = llama(256, 2, 1, 128);
    fe_model w128 = llama(128, 4, 2, 32);
    fe_model qwen2 = llama(64, 4, 2, 16), qwen3 = llama(64, 4, 2, 16);
    qwen2.arch = FE_ARCH_QWEN2, qwen2.arch_name = "Qwen2ForCausalLM", qwen2.attention_bias = 1;
    qwen2.tie_word_embeddings = 1, qwen2.rope_type = FE_ROPE_DEFAULT;
    qwen3.arch = FE_ARCH_QWEN3, qwen3.arch_name = "Qwen3ForCausalLM", qwen3.qk_norm = 1, qwen3.tie_word_embeddings = 1;
    fe_config sp2 = config(2, 128, 1, 0), sp2f = config(1, 256, 0, 1), dpsp = config(2, 128, 1, 0);
    sp2.sequence_parallel_degree = sp2f.sequence_parallel_degree = dpsp.sequence_parallel_degree = 2;
    dry_case cases[] = {
        {"llama hd16 f32", hd16, config(2, 40, 0, 0), 1, {0}},
        {"llama hd16 bf16", hd16, config(2, 40, 1, 0), 1, {0}},
        {"llama hd16 bf16 unfused lm head", hd16, unfused(config(2, 40, 1, 0)), 1, {0}},
        {"qwen2 f32 unfused lm head", qwen2, unfused(config(2, 40, 0, 0)), 1, {0}},
        {"qwen2 bf16 checkpointing", qwen2, config(3, 33, 1, 1), 1, {0}},
        {"qwen3 f32", qwen3, config(2, 24, 0, 0), 1, {0}},
        {"llama hd64 bf16 (flash kernels)", hd64, config(2, 150, 1, 0), 1, {0}},
        {"llama hd128 f32 (flash kernels)", hd128, config(1, 70, 0, 0), 1, {0}},
        {"qwen2 DDP 2 ranks", qwen2, config(2, 32, 0, 0), 2, {.stage = 0}},
        {"llama ZeRO-3 2 ranks bf16", hd16, config(2, 32, 1, 0), 2, {.stage = 3, .reshard_after_forward = 1}},
        {"llama ZeRO-3 + offload_all 2 ranks bf16", hd16, config(2, 32, 1, 0), 2,
         {.stage = 3, .reshard_after_forward = 1, .offload_params = 1, .offload_optimizer = 1}},
        {"qwen2 ZeRO-1 + offload_optimizer 2 ranks", qwen2, config(2, 32, 0, 0), 2, {.stage = 1, .offload_optimizer = 1}},
        {"llama ZeRO-2 + offload_optimizer 2 ranks bf16 checkpointing", hd16, config(2, 32, 1, 1), 2,
         {.stage = 2, .offload_optimizer = 1}},
        {"llama hd64 bf16 sp 2 (ring attention)", hd64, sp2, 2, {0}},
        {"llama hd128 f32 sp 2 checkpointing", hd128, sp2f, 2, {0}},
        {"llama hd64 bf16 dp 2 x sp 2 ZeRO-3", hd64, dpsp, 4, {.stage = 3, .reshard_after_forward = 1}},
        /* pure bf16 (bfloat16: true): axo_adamw_sr_bf16 on the device, x_adamw's on the host (offload) */
        {"llama hd16 pure bf16", hd16, pure_bf16(config(2, 40, 1, 0)), 1, {0}},
        {"qwen2 ZeRO-2 2 ranks pure bf16", qwen2, pure_bf16(config(2, 32, 1, 0)), 2, {.stage = 2}},
        {"llama ZeRO-3 2 ranks pure bf16 checkpointing", hd16, pure_bf16(config(2, 32, 1, 1)), 2,
         {.stage = 3, .reshard_after_forward = 1}},
        {"llama ZeRO-2 + offload_optimizer 2 ranks pure bf16", hd16, pure_bf16(config(2, 32, 1, 0)), 2,
         {.stage = 2, .offload_optimizer = 1}},
        {"llama ZeRO-3 + offload_all 2 ranks pure bf16", hd16, pure_bf16(config(2, 32, 1, 0)), 2,
         {.stage = 3, .reshard_after_forward = 1, .offload_params = 1, .offload_optimizer = 1}},
        /* 8-bit AdamW state (adamw_bnb_8bit): axo_adamw8_* on the device, x_adamw8 on the host (offload);
         * hidden 128: every matrix qualifies, down_proj's rows of 304 are blocks of 256 + 48 */
        {"llama hd32 f32 8-bit state", w128, opt8(config(2, 40, 0, 0)), 1, {0}},
        {"llama hd32 bf16 8-bit state (f32 master)", w128, opt8(config(2, 40, 1, 0)), 1, {0}},
        {"llama hd32 pure bf16 8-bit state", w128, opt8(pure_bf16(config(2, 40, 1, 0))), 1, {0}},
        {"llama hd32 ZeRO-2 2 ranks bf16 8-bit state", w128, opt8(config(2, 32, 1, 0)), 2, {.stage = 2}},
        {"llama hd32 ZeRO-3 + offload_optimizer 2 ranks pure bf16 8-bit state", w128,
         opt8(pure_bf16(config(2, 32, 1, 0))), 2, {.stage = 3, .reshard_after_forward = 1, .offload_optimizer = 1}},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++) dry_run(&cases[i]);
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++)
        if (cases[i].sh.offload_optimizer || cases[i].sh.offload_params) dry_offload_modes(&cases[i]);
    dry_offload_hand();
    dry_adamw_sr_hand();
    dry_adamw8_hand();
    dry_counts();
    dry_attn_tc();
    dry_streams();
    dry_bench_fused_vs_not();
    refusals();
    return check_done();
}
