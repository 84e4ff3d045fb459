/* test_ranks.c — data parallelism is exact: a plan for N local ranks
 * (threads, shared-memory collectives) trains like a 1-rank plan whose
 * gradient_accumulation_steps is N times larger, for DDP, ZeRO-1/2/3 (with
 * and without resharding after forward), on 2, 3 (uneven shards: padding)
 * and 4 ranks: same per-step losses and same final weights (fp32, relative
 * 1e-5) after several optimizer steps. CPU offload (ZeRO-1/2/3 +
 * offload_optimizer, ZeRO-3 + offload_param, both, FSDP offload without
 * resharding) on 3 and 4 ranks likewise, through its to_host / to_device
 * copies and host-side optimizer step; and in bf16 an offloaded plan trains
 * bit for bit like the same stage without offload. With small gradient
 * buckets the runs are bit-identical to one collective per gradient. Pure
 * bf16 (bfloat16: true) and 8-bit AdamW state (adamw_bnb_8bit): every
 * stage and offload equals DDP bit for bit. eval_step (val_set_size)
 * gives the same held-out loss on N ranks as on one (test_eval). NEFTune
 * noise is the same on N ranks as on one (test_neftune). LoRA+ and
 * adapters on a subset of layers likewise (test_loraplus_layers), and
 * DoRA's magnitudes (test_dora). */
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/launch.h"
#include "tests/check.h"
#include "tests/unit/ranks.h"

#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 16, STEPS = 3 };

static int64_t g_window; /* a sliding window on layer 1 (layer 0 attends fully); 0: none */
static int64_t g_layer_window[2];
static int g_wide; /* hidden 96: every matrix has >= 4096 elements, so all get 8-bit AdamW state (adamw8) */
static int g_opt8; /* optimizer: adamw_bnb_8bit */
static double g_clip = 1.0; /* max_grad_norm */

static void make(fe_config *c, fe_model *m, int64_t gas) {
    memset(m, 0, sizeof *m);
    m->arch = FE_ARCH_QWEN2; /* tied embeddings + biases: the awkward case */
    m->arch_name = "Qwen2ForCausalLM";
    m->dir = "/nonexistent";
    m->hidden_size = 24;
    m->intermediate_size = 40;
    m->num_hidden_layers = 2;
    m->num_attention_heads = 4;
    m->num_key_value_heads = 2;
    m->head_dim = 6;
    m->vocab_size = 50;
    m->rope_theta = 10000;
    m->rms_norm_eps = 1e-6;
    m->tie_word_embeddings = 1;
    m->attention_bias = 1;
    if (g_wide) m->hidden_size = 96, m->intermediate_size = 160, m->head_dim = 24;
    g_layer_window[0] = 0, g_layer_window[1] = g_window;
    m->sliding_window = g_window;
    m->layer_window = g_layer_window;
    memset(c, 0, sizeof *c);
    c->micro_batch_size = B;
    c->sequence_len = S;
    c->gradient_accumulation_steps = gas;
    c->num_epochs = 1;
    c->sequence_parallel_degree = 1;
    c->seed = 3;
    c->output_dir = "/tmp";
}

/* sequence parallelism of the plans built below (sp 1: none) */
static int64_t g_sp = 1;
static const char *g_layout = "zigzag";
static int g_ckpt;
static int g_bf16; /* bf16 params with f32 master weights (2: pure bf16, bfloat16: true) */
static pass_bucket_cfg g_bucket; /* gradient buckets of the plans built below (zero: none) */
static int g_flce;               /* liger_fused_linear_cross_entropy (0: matmul + cross_entropy) */
static pass_lora_cfg g_lora;     /* LoRA / QLoRA adapters (zero: none) */
static double g_loraplus;        /* loraplus_lr_ratio (0: no LoRA+) */
static int g_eval;               /* val_set_size: the plan has eval_step; runs evaluate after training */
static double g_neft;            /* neftune_noise_alpha (0: off) */

static char *plan_text(int world, int64_t gas, pass_shard_cfg sh) {
    fe_config c;
    fe_model m;
    make(&c, &m, gas);
    c.sequence_parallel_degree = g_sp;
    c.bf16 = g_bf16 != 0;
    c.bf16_pure = g_bf16 == 2;
    c.liger_fused_linear_cross_entropy = g_flce;
    if (g_eval) c.val_set_size = 0.1;
    c.neftune_noise_alpha = g_neft;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &m, world, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = g_clip,
                           .master_f32 = g_bf16 == 1, .pure_bf16 = g_bf16 == 2, .state_8bit = g_opt8,
                           .loraplus_ratio = g_loraplus},
                   .shard = sh, .sp_layout = g_layout, .checkpoint = g_ckpt, .lora = g_lora,
                   .sched = {.prefetch = sh.stage >= 3 ? 1 : 0}, .bucket = g_bucket}; /* as axoc compiles ZeRO-3 */
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ax_buf t = {0};
    ir_print(mod, &t);
    ir_module_destroy(mod);
    return ax_buf_steal(&t);
}

/* the data: STEPS global batches of G rows, packed two sequences per row */
typedef struct data {
    int64_t rows;
    int32_t *ids, *tgt, *pos, *seg;
} data;

static void make_data(data *dt, int64_t rows, int packed) {
    dt->rows = rows;
    size_t n = (size_t)(rows * S);
    dt->ids = malloc(n * 4), dt->tgt = malloc(n * 4), dt->pos = malloc(n * 4), dt->seg = malloc(n * 4);
    uint32_t sd = 12345;
    for (int64_t r = 0; r < rows; r++) {
        int64_t cut = 5 + r % 7;
        for (int64_t t = 0; t < S; t++) {
            sd = sd * 1664525u + 1013904223u;
            int64_t i = r * S + t;
            dt->ids[i] = (int32_t)(1 + (sd >> 10) % 49);
            if (packed) { /* two sequences per row */
                dt->seg[i] = t < cut ? 0 : 1;
                dt->pos[i] = (int32_t)(t < cut ? t : t - cut);
            } else { /* one sequence of 2*cut-3 tokens, then pads (each its own segment, as the loader does) */
                int in = t < 2 * cut - 3;
                dt->seg[i] = in ? 0 : (int32_t)(t - (2 * cut - 3) + 1);
                dt->pos[i] = in ? (int32_t)t : 0;
            }
        }
        for (int64_t t = 0; t < S; t++) {
            int64_t i = r * S + t;
            int last = t + 1 == S || dt->seg[i + 1] != dt->seg[i];
            dt->tgt[i] = last || (r + t) % 5 == 0 ? -100 : dt->ids[i + 1];
        }
    }
}

typedef struct run {
    const char *text;
    const data *dt;
    int64_t gas; /* per rank */
    double losses[STEPS];
    /* g_eval: after training, the held-out loss (token mean over the first
     * global batch) by eval_step, by eval_step again, and by micro_step
     * with loss scale 0 (dropout on, as axorun did before eval_step) */
    double eval_loss, eval_again, eval_micro;
    float *params; /* rank 0: all params, whole, concatenated in global order */
    int64_t nparams;
    int failed;
} run;

static int rank_fn(rt_comm *c, void *arg) {
    run *R = arg;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m;
    rt_session s;
    rt_rank_coll rc;
    int ok = rank_open(R->text, c, &m, &s, &rc, &d);
    int nr = rt_comm_size(c) / (int)g_sp, r = rt_comm_rank(c) / (int)g_sp; /* dp size and index */
    const int64_t G = B * R->gas * nr;
    rt_buf *ls = ok ? rt_session_global(&s, "stats/loss_sum") : NULL;
    for (int step = 0; ok && step < STEPS; step++) {
        int64_t base = (step % 2) * G, ntgt = 0; /* batches 0,1,0: the loss must fall on batch 0 */
        for (int64_t i = base * S; i < (base + G) * S; i++) ntgt += R->dt->tgt[i] != -100;
        rt_f(ls)[0] = 0;
        for (int64_t mb = 0; ok && mb < R->gas; mb++) {
            size_t off = (size_t)((base + (r * R->gas + mb) * B) * S);
            ok = rt_session_micro_step(&s, R->dt->ids + off, R->dt->tgt + off, R->dt->pos + off, R->dt->seg + off,
                                       (float)(1.0 / (double)ntgt), &d) == 0;
        }
        ok = ok && rt_session_opt_step(&s, g_wide ? 2e-3f : 2e-2f, step + 1, &d) == 0;
        double l = ok ? rt_f(ls)[0] : 0;
        ok = ok && rt_comm_all_reduce_sum_f64(c, &l, 1) == 0;
        if (rt_comm_rank(c) == 0) R->losses[step] = l / (double)ntgt;
    }
    for (int pass = 0; g_eval && ok && pass < 3; pass++) {
        int64_t ntgt = 0;
        for (int64_t i = 0; i < G * S; i++) ntgt += R->dt->tgt[i] != -100;
        rt_f(ls)[0] = 0;
        for (int64_t mb = 0; ok && mb < R->gas; mb++) {
            size_t off = (size_t)(((r * R->gas + mb) * B) * S);
            const int32_t *ids = R->dt->ids + off, *tgt = R->dt->tgt + off, *pos = R->dt->pos + off, *seg = R->dt->seg + off;
            ok = (pass < 2 ? rt_session_eval_step(&s, ids, tgt, pos, seg, &d)
                           : rt_session_micro_step(&s, ids, tgt, pos, seg, 0.0f, &d)) == 0;
        }
        double l = ok ? rt_f(ls)[0] : 0;
        ok = ok && rt_comm_all_reduce_sum_f64(c, &l, 1) == 0;
        if (rt_comm_rank(c) == 0) *(pass == 0 ? &R->eval_loss : pass == 1 ? &R->eval_again : &R->eval_micro) = l / (double)ntgt;
    }
    ok = ok && gather_params(&s, &rc, c, &R->params, &R->nparams);
    return rank_done(ok, &R->failed, &d, c, m != NULL, &rc, &s);
}

static void run_plan(run *R, int world, int64_t gas, pass_shard_cfg sh, const data *dt) {
    memset(R, 0, sizeof *R);
    char *text = plan_text(world, gas, sh);
    /* an offloaded plan really goes through its copies */
    if (sh.offload_params || sh.offload_optimizer)
        CHECK_MSG(strstr(text, "to_host(") && strstr(text, "to_device(") && strstr(text, "place=\"host\"") &&
                      strstr(text, "on=\"host\""),
                  "offload plan (stage %d, params %d, optimizer %d) has no copies or host placement", sh.stage,
                  sh.offload_params, sh.offload_optimizer);
    R->text = text;
    R->dt = dt;
    R->gas = gas;
    CHECK(rt_local_run(world, rank_fn, R) == 0);
    free(text);
}

static double rel_diff(const run *a, const run *ref) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < ref->nparams; i++) {
        double dd = (double)a->params[i] - ref->params[i];
        num += dd * dd;
        den += (double)ref->params[i] * ref->params[i];
    }
    return sqrt(num / den);
}

/* R (N ranks) trained like ref (1 rank): losses and final weights within
 * 1e-5 relative, and ref did train. Frees both. */
static void same_as_one_rank(run *R, run *ref, const char *what) {
    CHECK_MSG(!R->failed && R->nparams == ref->nparams, "%s failed", what);
    if (!R->failed && R->nparams == ref->nparams) {
        for (int st = 0; st < STEPS; st++)
            CHECK_MSG(fabs(R->losses[st] - ref->losses[st]) <= 1e-5 * fabs(ref->losses[st]), "%s: step %d loss %.9g vs 1 rank %.9g",
                      what, st + 1, R->losses[st], ref->losses[st]);
        CHECK_MSG(rel_diff(R, ref) <= 1e-5, "%s: final weights differ by %.3g (relative)", what, rel_diff(R, ref));
    }
    CHECK_MSG(ref->losses[2] < ref->losses[0], "did not train: %.6f -> %.6f", ref->losses[0], ref->losses[2]);
    free(R->params);
    free(ref->params);
}

/* Sequence parallelism: rows split over sp ranks (ring attention) train
 * exactly like one rank, with and without packing, for every layout,
 * composed with data parallelism and ZeRO, with gradient checkpointing. */
static void test_seqpar(const data *packed) {
    data plain;
    make_data(&plain, (int64_t)B * 4 * 2 * STEPS, 0);
    struct {
        int64_t sp, dp, gas;
        const char *layout;
        int packed, ckpt;
        pass_shard_cfg sh;
        int64_t window;
    } cs[] = {
        {2, 1, 2, "zigzag", 1, 0, {0, 0, 0, 0}, 0},     {4, 1, 2, "zigzag", 1, 0, {0, 0, 0, 0}, 0},
        {2, 2, 1, "zigzag", 1, 0, {0, 0, 0, 0}, 0},     {2, 1, 1, "zigzag", 0, 0, {0, 0, 0, 0}, 0},
        {4, 1, 1, "zigzag", 0, 0, {0, 0, 0, 0}, 0},     {4, 1, 1, "contiguous", 1, 0, {0, 0, 0, 0}, 0},
        {4, 1, 1, "stripe", 0, 0, {0, 0, 0, 0}, 0},     {2, 2, 1, "zigzag", 1, 0, {3, 1, 0, 0}, 0},
        {2, 2, 2, "zigzag", 1, 0, {1, 0, 0, 0}, 0},     {2, 2, 1, "zigzag", 0, 0, {2, 0, 0, 0}, 0},
        {2, 1, 1, "zigzag", 1, 1, {0, 0, 0, 0}, 0},     {2, 2, 1, "stripe", 1, 1, {3, 0, 0, 0}, 0},
        /* a sliding window of 3 on layer 1 (the ring's blocks mask by token index) */
        {4, 1, 1, "zigzag", 1, 0, {0, 0, 0, 0}, 3},  {2, 2, 1, "stripe", 0, 0, {3, 0, 0, 0}, 3},
        {4, 1, 2, "contiguous", 0, 0, {0, 0, 0, 0}, 3},
    };
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        const data *dt = cs[k].packed ? packed : &plain;
        run ref, R;
        g_sp = 1, g_ckpt = 0, g_window = cs[k].window;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        if (g_window) { /* the window masks something: without it the run differs */
            run full;
            g_window = 0;
            run_plan(&full, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
            g_window = cs[k].window;
            CHECK_MSG(fabs(full.losses[0] - ref.losses[0]) > 1e-6 * fabs(ref.losses[0]),
                      "sliding window %lld: the loss %.9g is the full attention's", (long long)g_window, ref.losses[0]);
            free(full.params);
        }
        g_sp = cs[k].sp, g_layout = cs[k].layout, g_ckpt = cs[k].ckpt;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        CHECK_MSG(strstr(text, "ring_shift(") && strstr(text, "attention_blk_bwd(") && !strstr(text, " attention("),
                  "the sp=%lld plan has no ring attention", (long long)cs[k].sp);
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1, g_layout = "zigzag", g_ckpt = 0;
        char what[160];
        snprintf(what, sizeof what, "dp %lld x sp %lld (%s, %s, zero stage %d%s, gas %lld, window %lld)", (long long)cs[k].dp,
                 (long long)cs[k].sp, cs[k].layout, cs[k].packed ? "packed" : "unpacked", cs[k].sh.stage,
                 cs[k].ckpt ? ", checkpointing" : "", (long long)cs[k].gas, (long long)cs[k].window);
        same_as_one_rank(&R, &ref, what);
        g_window = 0;
    }
    free(plain.ids), free(plain.tgt), free(plain.pos), free(plain.seg);
}

/* The fused lm head + loss (its gradient computed in the forward, the
 * tied embedding's gradient joined from it) under sharding and sequence
 * parallelism: equal to one rank, which equals the unfused plan (test_train). */
static void test_fused_lm_head(const data *dt) {
    struct {
        int64_t sp, dp, gas;
        pass_shard_cfg sh;
    } cs[] = {{1, 2, 1, {0, 0, 0, 0}}, {1, 4, 2, {3, 1, 0, 0}}, {1, 3, 1, {2, 0, 0, 1}}, {2, 1, 2, {0, 0, 0, 0}},
              {2, 2, 1, {3, 1, 0, 0}}};
    g_flce = 1;
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        run ref, R;
        g_sp = 1;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        g_sp = cs[k].sp;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        CHECK_MSG(strstr(text, "linear_cross_entropy(") && !strstr(text, "cross_entropy_bwd("), "no fused lm head in the plan");
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1;
        char what[128];
        snprintf(what, sizeof what, "fused lm head, dp %lld x sp %lld, zero stage %d%s, gas %lld", (long long)cs[k].dp,
                 (long long)cs[k].sp, cs[k].sh.stage, cs[k].sh.offload_optimizer ? " + offload" : "", (long long)cs[k].gas);
        same_as_one_rank(&R, &ref, what);
    }
    g_flce = 0;
}

/* LoRA and QLoRA adapters (fp32, no dropout: each rank draws its own masks,
 * as torch ranks do) under every kind of sharding and sequence parallelism:
 * the same losses and weights as one rank. Frozen and NF4 params are
 * sharded and gathered like any other; only the adapters are reduced. */
static void test_adapters(const data *dt) {
    struct {
        pass_adapter a;
        int64_t sp, dp, gas;
        pass_shard_cfg sh;
        const char *what;
    } cs[] = {{PASS_ADAPTER_LORA, 1, 2, 1, {0, 0, 0, 0}, "LoRA, DDP"},
              {PASS_ADAPTER_LORA, 1, 3, 1, {2, 0, 0, 0}, "LoRA, ZeRO-2"},
              {PASS_ADAPTER_LORA, 1, 4, 2, {3, 1, 0, 0}, "LoRA, ZeRO-3"},
              {PASS_ADAPTER_LORA, 1, 3, 1, {3, 1, 1, 1}, "LoRA, ZeRO-3 + offload_param + offload_optimizer"},
              {PASS_ADAPTER_LORA, 2, 2, 1, {3, 1, 0, 0}, "LoRA, dp 2 x sp 2, ZeRO-3"},
              {PASS_ADAPTER_QLORA, 1, 2, 1, {3, 0, 0, 0}, "QLoRA, FSDP2 no reshard"},
              {PASS_ADAPTER_QLORA, 1, 4, 1, {3, 1, 0, 0}, "QLoRA, ZeRO-3 / FSDP2"},
              {PASS_ADAPTER_QLORA, 1, 3, 2, {1, 0, 0, 1}, "QLoRA, ZeRO-1 + offload_optimizer"},
              {PASS_ADAPTER_QLORA, 2, 1, 2, {0, 0, 0, 0}, "QLoRA, sp 2"}};
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        g_lora = (pass_lora_cfg){.adapter = cs[k].a, .r = 4, .alpha = 16, .target_linear = 1};
        run ref, R;
        g_sp = 1;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        g_sp = cs[k].sp;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        CHECK_MSG(strstr(text, "lora_A.weight") && (cs[k].a != PASS_ADAPTER_QLORA || strstr(text, "dequant_nf4(")),
                  "%s: no adapters in the plan", cs[k].what);
        CHECK_MSG(!strstr(text, "grad/model.layers.0.self_attn.q_proj.weight "), "%s: a frozen weight has a gradient", cs[k].what);
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1;
        char what[160];
        snprintf(what, sizeof what, "%s, %lld ranks, gas %lld", cs[k].what, (long long)(cs[k].sp * cs[k].dp), (long long)cs[k].gas);
        same_as_one_rank(&R, &ref, what);
    }
    g_lora = (pass_lora_cfg){0};
}

/* DoRA (peft_use_dora): the magnitudes start as their rows' norms on each
 * rank's block (ZeRO-3 over 3 ranks splits rows unevenly; QLoRA takes the
 * dequantized rows), are gathered like any param and their gradients
 * (column sums over a rank's tokens) reduced like the adapters': the same
 * losses and weights as one rank. */
static void test_dora(const data *dt) {
    struct {
        pass_adapter a;
        int64_t sp, dp, gas;
        pass_shard_cfg sh;
        const char *what;
    } cs[] = {{PASS_ADAPTER_LORA, 1, 2, 1, {0, 0, 0, 0}, "DoRA, DDP"},
              {PASS_ADAPTER_LORA, 1, 3, 1, {3, 1, 0, 0}, "DoRA, ZeRO-3"},
              {PASS_ADAPTER_LORA, 2, 2, 1, {3, 1, 0, 0}, "DoRA, dp 2 x sp 2, ZeRO-3"},
              {PASS_ADAPTER_QLORA, 1, 2, 1, {3, 1, 0, 0}, "QLoRA + DoRA, FSDP2"}};
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        g_lora = (pass_lora_cfg){.adapter = cs[k].a, .r = 4, .alpha = 16, .target_linear = 1, .dora = 1};
        run ref, R;
        g_sp = 1;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        g_sp = cs[k].sp;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        CHECK_MSG(strstr(text, "dora_scale_bwd(") && strstr(text, "lora_magnitude_vector"), "%s: no DoRA in the plan",
                  cs[k].what);
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1;
        char what[160];
        snprintf(what, sizeof what, "%s, %lld ranks", cs[k].what, (long long)(cs[k].sp * cs[k].dp));
        same_as_one_rank(&R, &ref, what);
    }
    g_lora = (pass_lora_cfg){0};
}

/* LoRA+ (lr_scale on the AdamW of every lora_B and 1-d param) and
 * adapters on a subset of layers (peft_layers_to_transform), with a 1-d
 * module trained whole (lora_modules_to_save: norm): ZeRO-3, ZeRO-2 with
 * the optimizer step on the host (offload), QLoRA under FSDP2: the same
 * losses and weights as one rank. */
static void test_loraplus_layers(const data *dt) {
    static const int64_t l1[] = {1}, l0[] = {0};
    static const char *const norm[] = {"norm"};
    struct {
        pass_lora_cfg l;
        double ratio;
        int64_t dp, gas;
        pass_shard_cfg sh;
        const char *what;
    } cs[] = {{{.adapter = PASS_ADAPTER_LORA, .r = 4, .alpha = 16, .target_linear = 1, .layers = l1, .nlayers = 1,
                .save_modules = norm, .nsave = 1},
               16, 2, 1, {3, 1, 0, 0}, "LoRA+ x16 on layer 1 + norm saved, ZeRO-3"},
              {{.adapter = PASS_ADAPTER_LORA, .r = 4, .alpha = 16, .target_linear = 1}, 16, 3, 1, {2, 0, 0, 1},
               "LoRA+ x16, ZeRO-2 + offload_optimizer (host AdamW)"},
              {{.adapter = PASS_ADAPTER_QLORA, .r = 4, .alpha = 16, .target_linear = 1, .layers = l0, .nlayers = 1,
                .layers_int = 1},
               4, 2, 1, {3, 0, 0, 0}, "QLoRA + LoRA+ x4 on layer 0, FSDP2 no reshard"}};
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        g_lora = cs[k].l;
        g_loraplus = cs[k].ratio;
        run ref, R;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        char *text = plan_text((int)cs[k].dp, cs[k].gas, cs[k].sh);
        char want[64];
        snprintf(want, sizeof want, "lr_scale=%g", cs[k].ratio);
        CHECK_MSG(strstr(text, want) && strstr(text, "lora_B.weight"), "%s: no lr_scale in the plan", cs[k].what);
        CHECK_MSG(!cs[k].l.nlayers || !strstr(text, cs[k].l.layers[0] ? "model.layers.0.self_attn.q_proj.lora_A"
                                                                       : "model.layers.1.self_attn.q_proj.lora_A"),
                  "%s: an adapter outside peft_layers_to_transform", cs[k].what);
        free(text);
        run_plan(&R, (int)cs[k].dp, cs[k].gas, cs[k].sh, dt);
        char what[160];
        snprintf(what, sizeof what, "%s, %lld ranks", cs[k].what, (long long)cs[k].dp);
        same_as_one_rank(&R, &ref, what);
    }
    g_lora = (pass_lora_cfg){0};
    g_loraplus = 0;
}

/* bf16: offload changes where state lives and work runs, not one bit of
 * the arithmetic (the copies are exact; the host runs the same ops). */
static void offload_is_bitwise(const data *dt, int world, const pass_shard_cfg *cfgs, const char *const *names, size_t n) {
    g_bf16 = 1;
    for (size_t k = 0; k < n; k++) {
        if (!cfgs[k].offload_params && !cfgs[k].offload_optimizer) continue;
        pass_shard_cfg plain = cfgs[k];
        plain.offload_params = plain.offload_optimizer = 0;
        run P, R;
        run_plan(&P, world, 1, plain, dt);
        run_plan(&R, world, 1, cfgs[k], dt);
        int ok = !P.failed && !R.failed && P.nparams == R.nparams && P.nparams > 0;
        CHECK_MSG(ok, "bf16 %s on %d ranks failed", names[k], world);
        for (int st = 0; ok && st < STEPS; st++)
            CHECK_MSG(P.losses[st] == R.losses[st], "bf16 %s, %d ranks: step %d loss %.17g, without offload %.17g", names[k], world,
                      st + 1, R.losses[st], P.losses[st]);
        if (ok)
            CHECK_MSG(!memcmp(P.params, R.params, sizeof(float) * (size_t)P.nparams),
                      "bf16 %s, %d ranks: final weights differ from the same stage without offload", names[k], world);
        free(P.params);
        free(R.params);
    }
    g_bf16 = 0;
}

/* Pure bf16 (bfloat16: true): bf16 weights and Adam moments, updated with
 * stochastic rounding whose bits are keyed on each element's index in the
 * whole tensor. So every ZeRO stage and offload on N ranks rounds as DDP
 * does: the reduced gradients are the same bits, and the f32 updates
 * differ at most by the clip coefficient's last bits (a sum of per-rank
 * partial sums of squares; with f32 master weights that shows as 1.6e-10
 * here), which rounding to bf16 absorbs on this data. Keying on the local
 * block's index instead fails this at 1e-2. N ranks train like 1 rank
 * within bf16 noise (1e-2 relative on the weights at 3 ranks, as with f32
 * master weights). */
static void pure_bf16_ranks(const data *dt, const pass_shard_cfg *cfgs, const char *const *names, size_t n) {
    g_bf16 = 2;
    char *text = plan_text(3, 1, cfgs[2]);
    CHECK_MSG(strstr(text, "adam_m/") && !strstr(text, "master/model.layers.0.mlp.up_proj.weight: f32"),
              "pure bf16 ZeRO-2 plan: expected bf16 moments and no f32 master block");
    CHECK_MSG(strstr(text, "salt=") != NULL, "pure bf16 plan: adamw has no salt");
    free(text);
    int worlds[] = {2, 3};
    for (size_t w = 0; w < AX_ARRAY_LEN(worlds); w++) {
        run ref, ddp;
        run_plan(&ref, 1, worlds[w], (pass_shard_cfg){0}, dt);
        run_plan(&ddp, worlds[w], 1, cfgs[0], dt);
        int ok = !ref.failed && !ddp.failed && ref.nparams == ddp.nparams && ref.nparams > 0;
        CHECK_MSG(ok, "pure bf16: 1 rank or DDP on %d ranks failed", worlds[w]);
        if (ok) {
            CHECK_MSG(ref.losses[STEPS - 1] < ref.losses[0], "pure bf16 did not train: %.6f -> %.6f", ref.losses[0],
                      ref.losses[STEPS - 1]);
            for (int st = 0; st < STEPS; st++)
                CHECK_MSG(fabs(ddp.losses[st] - ref.losses[st]) <= 2e-2 * fabs(ref.losses[st]),
                          "pure bf16 DDP, %d ranks: step %d loss %.9g vs 1 rank %.9g", worlds[w], st + 1, ddp.losses[st],
                          ref.losses[st]);
            if (getenv("AXO_TEST_VERBOSE"))
                fprintf(stderr, "pure bf16, %d ranks vs 1: weights %.3g, last loss %.3g relative\n", worlds[w],
                        rel_diff(&ddp, &ref), fabs(ddp.losses[STEPS - 1] / ref.losses[STEPS - 1] - 1));
            CHECK_MSG(rel_diff(&ddp, &ref) <= 2e-2, "pure bf16 DDP, %d ranks: weights differ from 1 rank by %.3g", worlds[w],
                      rel_diff(&ddp, &ref));
            for (int64_t i = 0; i < ddp.nparams; i++)
                if (ax_round_bf16(ddp.params[i]) != ddp.params[i]) {
                    CHECK_MSG(0, "pure bf16: weight %lld = %.9g is not a bf16 value", (long long)i, (double)ddp.params[i]);
                    break;
                }
        }
        for (size_t k = 1; ok && k < n; k++) {
            if (worlds[w] == 2 && (cfgs[k].offload_params || cfgs[k].offload_optimizer)) continue;
            run R;
            run_plan(&R, worlds[w], 1, cfgs[k], dt);
            int same = !R.failed && R.nparams == ddp.nparams && !memcmp(R.losses, ddp.losses, sizeof R.losses) &&
                       !memcmp(R.params, ddp.params, sizeof(float) * (size_t)ddp.nparams);
            CHECK_MSG(same, "pure bf16 %s, %d ranks: differs from DDP on %d ranks (weights %.3g relative)", names[k],
                      worlds[w], worlds[w], R.failed || R.nparams != ddp.nparams ? -1.0 : rel_diff(&R, &ddp));
            free(R.params);
        }
        free(ref.params);
        free(ddp.params);
    }
    g_bf16 = 0;
}

/* 8-bit AdamW state (adamw8) on a model whose matrices all qualify. The
 * state is block-wise per row and rows are never split, so sharding
 * changes no block: without clipping, every stage and offload on 3 ranks
 * equals DDP bit for bit, in f32 and in pure bf16, and DDP equals 1 rank
 * (f32; bf16 within its noise: 1 rank accumulates bf16 gradients, DDP sums
 * the ranks'). With clipping the coefficient's last bits depend on how the
 * sum of squares was split (per-rank partial sums), and that moves a code
 * now and then: measured 1.0e-6 relative at ZeRO-3, checked at 1e-5. */
static void adamw8_ranks(const data *dt, const pass_shard_cfg *cfgs, const char *const *names, size_t n) {
    g_wide = g_opt8 = 1;
    char *text = plan_text(3, 1, cfgs[3]);
    CHECK_MSG(strstr(text, "adamw8(") && strstr(text, "@adam_m/model.layers.0.mlp.up_proj.weight : u8[160,96]<dp:0>") &&
                  strstr(text, "@adam_m_absmax/model.layers.0.mlp.up_proj.weight : f32[160,1]<dp:0>") &&
                  strstr(text, "@adam_v/model.embed_tokens.weight : f32[50,96]<dp:0>") && strstr(text, " adamw("),
              "ZeRO-3 8-bit plan: expected adamw8 over sharded u8 moments and f32 block maxima, adamw for the biases "
              "and the embedding table (HF Trainer's 32-bit override for nn.Embedding)");
    free(text);
    g_clip = 0;
    for (int pure = 0; pure <= 1; pure++) {
        g_bf16 = pure ? 2 : 0;
        run ref, ddp;
        run_plan(&ref, 1, 3, (pass_shard_cfg){0}, dt);
        run_plan(&ddp, 3, 1, cfgs[0], dt);
        int ok = !ref.failed && !ddp.failed && ref.nparams == ddp.nparams && ref.nparams > 0;
        CHECK_MSG(ok, "adamw8 (pure %d): 1 rank or DDP on 3 ranks failed", pure);
        if (ok) {
            CHECK_MSG(ref.losses[STEPS - 1] < ref.losses[0], "adamw8 (pure %d) did not train: %.6f -> %.6f", pure,
                      ref.losses[0], ref.losses[STEPS - 1]);
            if (getenv("AXO_TEST_VERBOSE"))
                fprintf(stderr, "adamw8 pure %d: DDP 3 ranks vs 1: weights %.3g relative\n", pure, rel_diff(&ddp, &ref));
            CHECK_MSG(rel_diff(&ddp, &ref) <= (pure ? 2e-2 : 1e-5), "adamw8 (pure %d) DDP 3 ranks: weights differ from 1 rank by %.3g",
                      pure, rel_diff(&ddp, &ref));
        }
        for (size_t k = 1; ok && k < n; k++) {
            if (pure && k != 1 && k != 3 && k != 9) continue; /* pure bf16: ZeRO-1, ZeRO-3, ZeRO-3 + offload of both */
            run R;
            run_plan(&R, 3, 1, cfgs[k], dt);
            int same = !R.failed && R.nparams == ddp.nparams && !memcmp(R.losses, ddp.losses, sizeof R.losses) &&
                       !memcmp(R.params, ddp.params, sizeof(float) * (size_t)ddp.nparams);
            CHECK_MSG(same, "adamw8 (pure %d) %s, 3 ranks: differs from DDP (weights %.3g relative)", pure, names[k],
                      R.failed || R.nparams != ddp.nparams ? -1.0 : rel_diff(&R, &ddp));
            free(R.params);
        }
        free(ref.params);
        free(ddp.params);
    }
    g_clip = 1.0;
    g_bf16 = 0;
    run ddp, z3;
    run_plan(&ddp, 3, 1, cfgs[0], dt);
    run_plan(&z3, 3, 1, cfgs[3], dt);
    int ok = !ddp.failed && !z3.failed && ddp.nparams == z3.nparams;
    CHECK_MSG(ok && rel_diff(&z3, &ddp) <= 1e-5, "adamw8 with clipping: ZeRO-3 differs from DDP by %.3g",
              ok ? rel_diff(&z3, &ddp) : -1.0);
    free(ddp.params);
    free(z3.params);
    g_wide = g_opt8 = 0;
}

/* The same run with small gradient buckets: bit-identical to R (one
 * collective per gradient), so it also equals the 1-rank reference. The
 * model's gradients: embedding 50x24 (1200 elements, 4800 B), q/o 576,
 * k/v 288 (+ 12-element biases), mlp 960, norms 24. */
static void bucketed_equal(const run *R, const run *ref, int world, int64_t gas, pass_shard_cfg sh, const char *name,
                           const data *dt) {
    g_bucket = sh.stage == 0   ? (pass_bucket_cfg){PASS_BUCKET_BYTES, 2000}
               : sh.stage == 3 && !sh.reshard_after_forward ? (pass_bucket_cfg){PASS_BUCKET_UNIT, 0}
                                                           : (pass_bucket_cfg){PASS_BUCKET_ELEMS, 300};
    char *text = plan_text(world, gas, sh);
    CHECK_MSG(strstr(text, "bucket=1") != NULL, "%s: the plan has no gradient buckets", name);
    free(text);
    run Rb;
    run_plan(&Rb, world, gas, sh, dt);
    g_bucket = (pass_bucket_cfg){0};
    CHECK_MSG(!Rb.failed && Rb.nparams == R->nparams, "%s with buckets on %d ranks failed", name, world);
    if (Rb.failed || Rb.nparams != R->nparams) return;
    CHECK_MSG(!memcmp(Rb.losses, R->losses, sizeof Rb.losses) &&
                  !memcmp(Rb.params, R->params, sizeof(float) * (size_t)R->nparams),
              "%s, %d ranks, gas %lld: bucketed run differs from one collective per gradient", name, world, (long long)gas);
    for (int st = 0; st < STEPS; st++)
        CHECK_MSG(fabs(Rb.losses[st] - ref->losses[st]) <= 1e-5 * fabs(ref->losses[st]),
                  "%s with buckets, %d ranks: step %d loss %.9g vs 1 rank %.9g", name, world, st + 1, Rb.losses[st],
                  ref->losses[st]);
    free(Rb.params);
}

/* val_set_size: eval_step (micro_step's forward, dropout off) gives the
 * held-out loss. Without dropout it equals what micro_step's forward
 * computes; evaluating twice gives the same loss; it is the same on N ranks
 * (DDP, ZeRO-3 with and without resharding, offloaded parameters, sp 2 and
 * dp 2 x sp 2 with ZeRO-3) as on one; with LoRA dropout it differs from the
 * dropout-on forward's, and the plan's eval_step has no dropout node. */
static void test_eval(const data *dt) {
    struct {
        int64_t sp, dp, gas;
        pass_shard_cfg sh;
        int lora;
        const char *what;
    } cs[] = {{1, 2, 1, {0, 0, 0, 0}, 0, "DDP"},
              {1, 2, 2, {3, 1, 0, 0}, 0, "ZeRO-3"},
              {1, 3, 1, {3, 0, 0, 0}, 0, "FSDP2 no reshard"},
              {1, 3, 1, {3, 1, 1, 1}, 0, "ZeRO-3 + offload_param + offload_optimizer"},
              {2, 1, 2, {0, 0, 0, 0}, 0, "sp 2"},
              {2, 2, 1, {3, 1, 0, 0}, 0, "dp 2 x sp 2, ZeRO-3"},
              {1, 2, 1, {3, 1, 0, 0}, 1, "LoRA, ZeRO-3"}};
    g_eval = 1;
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        if (cs[k].lora) g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 4, .alpha = 16, .target_linear = 1};
        run ref, R;
        g_sp = 1;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        g_sp = cs[k].sp;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        const char *ev = strstr(text, "program eval_step {");
        CHECK_MSG(ev != NULL, "%s: the plan has no eval_step", cs[k].what);
        CHECK_MSG(!ev || (cs[k].sp == 1 || strstr(ev, "attention_blk(")), "%s: eval_step has no ring attention", cs[k].what);
        CHECK_MSG(!ev || (cs[k].sh.stage < 3 || strstr(ev, "all_gather(")), "%s: eval_step gathers no parameter", cs[k].what);
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1;
        CHECK_MSG(!R.failed && !ref.failed, "%s failed", cs[k].what);
        CHECK_MSG(isfinite(ref.eval_loss) && ref.eval_loss > 0, "%s: eval loss %g", cs[k].what, ref.eval_loss);
        CHECK_MSG(ref.eval_again == ref.eval_loss && R.eval_again == R.eval_loss, "%s: evaluating twice differs", cs[k].what);
        CHECK_MSG(fabs(ref.eval_loss - ref.eval_micro) <= 1e-6 * ref.eval_loss,
                  "%s: eval_step's loss %.9g, micro_step's forward %.9g", cs[k].what, ref.eval_loss, ref.eval_micro);
        CHECK_MSG(fabs(R.eval_loss - ref.eval_loss) <= 1e-5 * ref.eval_loss, "%s: eval loss %.9g vs 1 rank %.9g", cs[k].what,
                  R.eval_loss, ref.eval_loss);
        same_as_one_rank(&R, &ref, cs[k].what);
    }
    /* LoRA dropout: off in eval_step, on in micro_step */
    g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 4, .alpha = 16, .target_linear = 1, .dropout = 0.3};
    char *text = plan_text(1, 2, (pass_shard_cfg){0});
    const char *ev = strstr(text, "program eval_step {"), *ms = strstr(text, "program micro_step {");
    CHECK_MSG(ev && ms && strstr(ms, "dropout(") && !strstr(ev, "dropout("), "LoRA dropout: eval_step must have no dropout node");
    free(text);
    run R;
    run_plan(&R, 1, 2, (pass_shard_cfg){0}, dt);
    CHECK_MSG(!R.failed && R.eval_again == R.eval_loss, "LoRA dropout: evaluating twice differs");
    CHECK_MSG(fabs(R.eval_loss - R.eval_micro) > 1e-4 * R.eval_loss,
              "LoRA dropout 0.3: eval_step's loss %.9g equals the dropout-on forward's %.9g", R.eval_loss, R.eval_micro);
    free(R.params);
    g_lora = (pass_lora_cfg){0};
    g_eval = 0;
}

/* NEFTune (neftune_noise_alpha: 1): a token's noise is keyed by its place
 * in the global batch and the optimizer step (runtime/train.c), not by the
 * rank that holds it, so N ranks add exactly 1 rank's noise: the same
 * losses and weights under DDP, ZeRO-3 (also uneven, on 3 ranks), sequence
 * parallelism (zigzag and stripe, packed and not, with checkpointing) and
 * dp 2 x sp 2 with ZeRO-3. eval_step adds none: its held-out loss is the
 * same on N ranks as on one and differs from the noisy forward's. And the
 * noise is live: 1 rank's losses differ from the same run without it. */
static void test_neftune(const data *packed) {
    data plain;
    make_data(&plain, (int64_t)B * 4 * 2 * STEPS, 0);
    struct {
        int64_t sp, dp, gas;
        const char *layout;
        int packed, ckpt;
        pass_shard_cfg sh;
        const char *what;
    } cs[] = {{1, 2, 1, "zigzag", 1, 0, {0, 0, 0, 0}, "DDP"},
              {1, 2, 2, "zigzag", 1, 0, {3, 1, 0, 0}, "ZeRO-3, gas 2"},
              {1, 3, 1, "zigzag", 0, 0, {3, 1, 0, 0}, "ZeRO-3 on 3 ranks, unpacked"},
              {2, 1, 2, "zigzag", 1, 0, {0, 0, 0, 0}, "sp 2, gas 2"},
              {2, 1, 1, "stripe", 0, 1, {0, 0, 0, 0}, "sp 2 stripe, unpacked, checkpointing"},
              {2, 2, 1, "zigzag", 1, 0, {3, 1, 0, 0}, "dp 2 x sp 2, ZeRO-3"}};
    run quiet;
    run_plan(&quiet, 1, 2, (pass_shard_cfg){0}, packed); /* no noise */
    g_neft = 1.0, g_eval = 1;
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        const data *dt = cs[k].packed ? packed : &plain;
        run ref, R;
        g_sp = 1;
        run_plan(&ref, 1, cs[k].gas * cs[k].dp, (pass_shard_cfg){0}, dt);
        if (k == 0)
            CHECK_MSG(!quiet.failed && !ref.failed && ref.losses[0] != quiet.losses[0],
                      "NEFTune did not change the loss: %.9g with, %.9g without", ref.losses[0], quiet.losses[0]);
        g_sp = cs[k].sp, g_layout = cs[k].layout, g_ckpt = cs[k].ckpt;
        char *text = plan_text((int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh);
        const char *ev = strstr(text, "program eval_step {"), *ms = strstr(text, "program micro_step {");
        CHECK_MSG(ev && ms && strstr(ms, "neftune(") && !strstr(ev, "neftune"), "%s: micro_step must add the noise, eval_step not",
                  cs[k].what);
        free(text);
        run_plan(&R, (int)(cs[k].sp * cs[k].dp), cs[k].gas, cs[k].sh, dt);
        g_sp = 1, g_layout = "zigzag", g_ckpt = 0;
        char what[160];
        snprintf(what, sizeof what, "NEFTune, %s", cs[k].what);
        CHECK_MSG(!R.failed && !ref.failed, "%s failed", what);
        CHECK_MSG(ref.eval_again == ref.eval_loss && R.eval_again == R.eval_loss, "%s: evaluating twice differs", what);
        CHECK_MSG(fabs(R.eval_loss - ref.eval_loss) <= 1e-5 * ref.eval_loss, "%s: eval loss %.9g vs 1 rank %.9g", what,
                  R.eval_loss, ref.eval_loss);
        CHECK_MSG(fabs(ref.eval_loss - ref.eval_micro) > 1e-4 * ref.eval_loss,
                  "%s: eval_step's loss %.9g equals the noisy forward's %.9g", what, ref.eval_loss, ref.eval_micro);
        same_as_one_rank(&R, &ref, what);
    }
    g_neft = 0, g_eval = 0;
    free(quiet.params);
    free(plain.ids), free(plain.tgt), free(plain.pos), free(plain.seg);
}

int main(void) {
    data dt;
    make_data(&dt, (int64_t)B * 4 * 2 * STEPS, 1); /* enough for 4 ranks x gas 2 */
    const char *names[] = {"DDP",
                           "ZeRO-1",
                           "ZeRO-2",
                           "ZeRO-3",
                           "ZeRO-3 no reshard (FSDP2 reshard_after_forward: false)",
                           "ZeRO-1 + offload_optimizer",
                           "ZeRO-2 + offload_optimizer",
                           "ZeRO-3 + offload_optimizer",
                           "ZeRO-3 + offload_param",
                           "ZeRO-3 + offload_param + offload_optimizer",
                           "FSDP2 offload_params, no reshard"};
    pass_shard_cfg cfgs[] = {{0, 0, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0}, {3, 1, 0, 0}, {3, 0, 0, 0}, {1, 0, 0, 1},
                             {2, 0, 0, 1}, {3, 1, 0, 1}, {3, 1, 1, 0}, {3, 1, 1, 1}, {3, 0, 1, 1}};
    int worlds[] = {2, 3, 4};
    for (size_t w = 0; w < AX_ARRAY_LEN(worlds); w++) {
        for (int64_t gas = 1; gas <= 2; gas++) {
            if (worlds[w] == 3 && gas == 2) continue;
            run ref;
            run_plan(&ref, 1, gas * worlds[w], (pass_shard_cfg){0}, &dt);
            for (size_t k = 0; k < AX_ARRAY_LEN(cfgs); k++) {
                if (worlds[w] == 2 && (cfgs[k].offload_params || cfgs[k].offload_optimizer)) continue;
                run R;
                run_plan(&R, worlds[w], gas, cfgs[k], &dt);
                CHECK_MSG(!R.failed && R.nparams == ref.nparams, "%s on %d ranks failed", names[k], worlds[w]);
                if (R.failed || R.nparams != ref.nparams) continue;
                for (int st = 0; st < STEPS; st++)
                    CHECK_MSG(fabs(R.losses[st] - ref.losses[st]) <= 1e-5 * fabs(ref.losses[st]),
                              "%s, %d ranks, gas %lld: step %d loss %.9g vs 1 rank %.9g", names[k], worlds[w], (long long)gas,
                              st + 1, R.losses[st], ref.losses[st]);
                double num = 0, den = 0;
                for (int64_t i = 0; i < ref.nparams; i++) {
                    double dd = (double)R.params[i] - ref.params[i];
                    num += dd * dd;
                    den += (double)ref.params[i] * ref.params[i];
                }
                CHECK_MSG(sqrt(num / den) <= 1e-5, "%s, %d ranks, gas %lld: final weights differ by %.3g (relative)",
                          names[k], worlds[w], (long long)gas, sqrt(num / den));
                bucketed_equal(&R, &ref, worlds[w], gas, cfgs[k], names[k], &dt);
                free(R.params);
            }
            CHECK_MSG(ref.losses[2] < ref.losses[0], "did not train: %.6f -> %.6f", ref.losses[0], ref.losses[2]);
            free(ref.params);
        }
    }
    offload_is_bitwise(&dt, 3, cfgs, names, AX_ARRAY_LEN(cfgs));
    pure_bf16_ranks(&dt, cfgs, names, AX_ARRAY_LEN(cfgs));
    adamw8_ranks(&dt, cfgs, names, AX_ARRAY_LEN(cfgs));
    test_seqpar(&dt);
    test_fused_lm_head(&dt);
    test_adapters(&dt);
    test_dora(&dt);
    test_loraplus_layers(&dt);
    test_eval(&dt);
    test_neftune(&dt);
    free(dt.ids), free(dt.tgt), free(dt.pos), free(dt.seg);
    return check_done();
}
