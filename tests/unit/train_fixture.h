/* train_fixture.h — the tiny hand-built models, configs, batches and
 * session helpers that the single-process training tests share
 * (test_train.c, test_lora.c): static functions, included by each test. */
#ifndef TESTS_TRAIN_FIXTURE_H
#define TESTS_TRAIN_FIXTURE_H

#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/train.h"
#include "tests/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void make_model(fe_model *m, fe_arch arch) {
    memset(m, 0, sizeof *m);
    m->arch = arch;
    m->arch_name = arch == FE_ARCH_QWEN3 ? "Qwen3ForCausalLM" : arch == FE_ARCH_QWEN2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
    m->dir = "/nonexistent-model-dir";
    m->hidden_size = 32;
    m->intermediate_size = 48;
    m->num_hidden_layers = 2;
    m->num_attention_heads = 4;
    m->num_key_value_heads = 2;
    m->head_dim = 8;
    m->vocab_size = 64;
    m->rope_theta = 10000;
    m->rope_type = FE_ROPE_DEFAULT;
    m->rms_norm_eps = 1e-6;
    m->tie_word_embeddings = arch != FE_ARCH_LLAMA;
    m->attention_bias = arch == FE_ARCH_QWEN2;
    m->qk_norm = arch == FE_ARCH_QWEN3;
    m->pad_token_id = 0;
}

static int g_flce; /* liger_fused_linear_cross_entropy of make_cfg's configs */

static void make_cfg(fe_config *c, int64_t B, int64_t S, int64_t gas, int ckpt) {
    memset(c, 0, sizeof *c);
    c->liger_fused_linear_cross_entropy = g_flce;
    c->micro_batch_size = B;
    c->sequence_len = S;
    c->gradient_accumulation_steps = gas;
    c->gradient_checkpointing = ckpt;
    c->num_epochs = 1;
    c->learning_rate = 1e-2;
    c->lr_scheduler = FE_SCHED_CONSTANT;
    c->adam_beta1 = 0.9;
    c->adam_beta2 = 0.999;
    c->adam_epsilon = 1e-8;
    c->weight_decay = 0.0;
    c->max_grad_norm = 1.0;
    c->sequence_parallel_degree = 1;
    c->seed = 7;
    c->output_dir = "/tmp";
}

/* A test's start: diagnostics, the tiny model of arch, a config of B rows
 * of S tokens (no accumulation, no checkpointing). */
static inline void fixture(ax_diag *d, fe_config *c, fe_model *m, fe_arch arch, int64_t B, int64_t S);

static pass_shard_cfg g_shard; /* sharding used by build() */
static pass_lora_cfg g_lora;   /* adapters used by build() (zero: none) */
static double g_loraplus;      /* loraplus_lr_ratio used by build() (0: no LoRA+) */
static int64_t g_last_peak;     /* memplan's micro_step peak of the last build() */

static int build(rt_session *s, const fe_config *c, const fe_model *m, ax_diag *d) {
    ir_module *mod = ir_module_create();
    int32_t loss;
    if (fe_lower(c, m, 1, mod, &loss, d)) {
        ir_module_destroy(mod);
        return -1;
    }
    pass_ctx pc = {.m = mod, .loss = loss, .checkpoint = c->gradient_checkpointing, .lora = g_lora,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 0,
                           .master_f32 = c->bf16 && !c->bf16_pure, .pure_bf16 = c->bf16_pure,
                           .state_8bit = c->optimizer_8bit, .loraplus_ratio = g_loraplus},
                   .shard = g_shard};
    if (pass_pipeline(&pc, d)) {
        ir_module_destroy(mod);
        return -1;
    }
    g_last_peak = pc.mem.micro_peak;
    /* round trip through the text form, as the runtime does */
    ax_buf t1 = {0}, t2 = {0};
    ir_print(mod, &t1);
    ir_module *back = ir_parse(t1.data, t1.len, "pipeline", d);
    CHECK(back != NULL);
    if (!back) return -1;
    ir_print(back, &t2);
    CHECK(t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0);
    ax_buf_free(&t1);
    ax_buf_free(&t2);
    ir_module_destroy(mod);
    if (rt_session_from_module(back, s, d)) return -1;
    if (rt_session_init_weights(s, NULL, d) == 0) return 0;
    rt_session_close(s); /* a build that fails leaves nothing to close */
    return -1;
}

/* deterministic batch: B rows of S tokens, two packed sequences per row */
typedef struct batch {
    int32_t *ids, *tgt, *pos, *seg;
    int64_t n, ntgt;
} batch;

static void make_batch(batch *b, int64_t B, int64_t S, int64_t V, uint32_t seed) {
    b->n = B * S;
    b->ids = malloc(sizeof(int32_t) * (size_t)b->n);
    b->tgt = malloc(sizeof(int32_t) * (size_t)b->n);
    b->pos = malloc(sizeof(int32_t) * (size_t)b->n);
    b->seg = malloc(sizeof(int32_t) * (size_t)b->n);
    b->ntgt = 0;
    for (int64_t r = 0; r < B; r++) {
        int64_t cut = S / 2 + (int64_t)(r % 3);
        for (int64_t t = 0; t < S; t++) {
            int64_t i = r * S + t;
            seed = seed * 1664525u + 1013904223u;
            b->ids[i] = (int32_t)(1 + (seed >> 8) % (uint32_t)(V - 1));
            b->seg[i] = t < cut ? 0 : 1;
            b->pos[i] = (int32_t)(t < cut ? t : t - cut);
        }
        for (int64_t t = 0; t < S; t++) {
            int64_t i = r * S + t;
            int last = t + 1 == S || b->seg[i + 1] != b->seg[i];
            b->tgt[i] = last || (t == 1) ? -100 : b->ids[i + 1];
            b->ntgt += b->tgt[i] != -100;
        }
    }
}

static void free_batch(batch *b) {
    free(b->ids), free(b->tgt), free(b->pos), free(b->seg);
}

static double loss_of(rt_session *s, const batch *b, ax_diag *d) {
    rt_buf *ls = rt_session_global(s, "stats/loss_sum");
    rt_f(ls)[0] = 0;
    CHECK(rt_session_micro_step(s, b->ids, b->tgt, b->pos, b->seg, (float)(1.0 / (double)b->ntgt), d) == 0);
    return (double)rt_f(ls)[0] / (double)b->ntgt;
}

static void zero_grads(rt_session *s) {
    for (int g = 0; g < s->m->nglobals; g++)
        if (s->m->globals[g].role == IR_ROLE_GRAD) memset(s->st.globals[g].data, 0, (size_t)s->st.globals[g].numel * 4);
}

static void copy_weights(rt_session *dst, rt_session *src) {
    for (int g = 0; g < src->m->nglobals; g++)
        if (src->m->globals[g].role == IR_ROLE_PARAM) {
            rt_buf *b = rt_session_global(dst, src->m->globals[g].name);
            memcpy(b->data, src->st.globals[g].data, (size_t)b->numel * 4);
        }
}

/* Relative L2 difference of b's globals of one role from a's: the worst
 * tensor's, or (global) over all of them at once. Global is the fair bf16
 * measure for weights: some tensors have a gradient that is zero in exact
 * math (Qwen2's k_proj.bias: softmax ignores a per-query constant), so Adam
 * turns their rounding noise into full-size steps. */
static double rel_diff_role(rt_session *a, rt_session *b, ir_role role, int global) {
    double worst = 0, gnum = 0, gden = 0;
    for (int g = 0; g < a->m->nglobals; g++) {
        if (a->m->globals[g].role != role) continue;
        rt_buf *x = &a->st.globals[g], *y = rt_session_global(b, a->m->globals[g].name);
        double num = 0, den = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            double dd = (double)rt_f(x)[i] - rt_f(y)[i];
            num += dd * dd;
            den += (double)rt_f(x)[i] * rt_f(x)[i];
        }
        worst = fmax(worst, sqrt(num / (den > 0 ? den : 1)));
        gnum += num;
        gden += den;
    }
    return global ? sqrt(gnum / (gden > 0 ? gden : 1)) : worst;
}

static inline void fixture(ax_diag *d, fe_config *c, fe_model *m, fe_arch arch, int64_t B, int64_t S) {
    ax_diag_init(d);
    make_model(m, arch);
    make_cfg(c, B, S, 1, 0);
}

#endif
