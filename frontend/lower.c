/* lower.c — builds the forward IR of a decoder-only model (see lower.h). */
#include "frontend/lower.h"
#include "runtime/tokenizer.h"
#include "ir/dpo_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lw {
    ir_builder b;
    ir_module *mod;
    const fe_model *m;
    ir_dtype dt; /* parameter / activation dtype */
    int32_t max_position; /* the micro-batch's max position (input max_position), or -1: longrope's regime */
} lw;

/* A parameter of the text model, named by its path below it ("layers.0.mlp.up_proj.weight"): the global takes
 * the module's name (model.<path>, or a multimodal model's model.language_model.<path>), attr hf the
 * checkpoint's (fe_model); lm_head.weight is the head's. */
/* hf_path: the checkpoint's path below the text model where it differs from the module's (Mixtral's
 * block_sparse_moe), else NULL */
static int add_param_as(lw *L, const char *path, const char *hf_path, ir_type t, const char *init, int decay) {
    char name[512], hf[512];
    const int head = !strcmp(path, "lm_head.weight");
    snprintf(name, sizeof name, "%s%s", head ? "" : L->m->text_module ? L->m->text_module : "model.", path);
    if (head) snprintf(hf, sizeof hf, "%s", L->m->head_ckpt ? L->m->head_ckpt : path);
    else snprintf(hf, sizeof hf, "%s%s", L->m->text_ckpt ? L->m->text_ckpt : "model.", hf_path ? hf_path : path);
    /* the multimodal model draws its text weights with text_config's initializer_range (the top level's:
     * model.initializer_range, for an untied head and resized rows); the attr only where they differ */
    const double tstd = L->m->text_initializer_range;
    const int own_std = !head && tstd > 0 && tstd != L->m->initializer_range && !strcmp(init, "normal");
    ir_attr at[] = {ir_as("hf", hf), ir_as("init", init), ir_ai("decay", decay), ir_af("std", tstd)};
    return IR_GLOBAL_REF(ir_global_add(L->mod, name, t, IR_ROLE_PARAM, at, own_std ? 4 : 3));
}

static int add_param(lw *L, const char *path, ir_type t, const char *init, int decay) {
    return add_param_as(L, path, NULL, t, init, decay);
}

static int32_t param2(lw *L, const char *path, int64_t rows, int64_t cols) {
    return add_param(L, path, ir_type_make(L->dt, 2, (int64_t[]){rows, cols}), "normal", 1);
}

/* An MoE layer's parameters (transformers 5's Qwen3-MoE / Mixtral modules): the router mlp.gate.weight [E, H] (an
 * nn.Parameter, not a Linear: no LoRA adapts it), and the experts stacked along dim 0 (runtime/train.h): gate_up_proj
 * [E, 2I, H] from the checkpoint's experts.N.<gate> and experts.N.<up>, down_proj [E, H, I] from experts.N.<down>. */
static int32_t moe_router(lw *L, int64_t l) {
    char path[256], hf[256];
    snprintf(path, sizeof path, "layers.%lld.mlp.gate.weight", (long long)l);
    snprintf(hf, sizeof hf, "layers.%lld.%s.gate.weight", (long long)l, L->m->moe_block);
    int32_t r = add_param_as(L, path, hf, ir_type_make(L->dt, 2, (int64_t[]){L->m->num_experts, L->m->hidden_size}),
                             "normal", 1);
    ir_global_set_attr(L->mod, IR_REF_GLOBAL(r), ir_ai("linear", 0));
    return r;
}
static int32_t moe_experts(lw *L, int64_t l, const char *leaf, const char *part, const char *part2, int64_t rows,
                           int64_t cols) {
    char path[256], hf[256], hf2[512];
    const fe_model *m = L->m;
    snprintf(path, sizeof path, "layers.%lld.mlp.experts.%s", (long long)l, leaf);
    snprintf(hf, sizeof hf, "layers.%lld.%s.experts.*.%s.weight", (long long)l, m->moe_block, part);
    int32_t r = add_param_as(L, path, hf, ir_type_make(L->dt, 3, (int64_t[]){m->num_experts, rows, cols}), "normal", 1);
    const int g = IR_REF_GLOBAL(r);
    ir_global_set_attr(L->mod, g, ir_ai("stack", m->num_experts));
    /* the stacked tensor's name where transformers 5 saves it whole (its re-save of a Mixtral checkpoint keeps the
     * block_sparse_moe prefix): sharded checkpoints use it */
    snprintf(hf2, sizeof hf2, "%slayers.%lld.%s.experts.%s", m->text_ckpt ? m->text_ckpt : "model.", (long long)l,
             m->moe_block, leaf);
    ir_global_set_attr(L->mod, g, ir_as("hf_stacked", hf2));
    if (part2) {
        snprintf(hf2, sizeof hf2, "%slayers.%lld.%s.experts.*.%s.weight", m->text_ckpt ? m->text_ckpt : "model.",
                 (long long)l, m->moe_block, part2);
        ir_global_set_attr(L->mod, g, ir_as("hf2", hf2));
    }
    return r;
}

/* gpt-oss's MoE parameters (transformers 5's GptOssTopKRouter and GptOssExperts): the router's weight [E, H] and bias
 * [E] (nn.Parameters: no LoRA module), the experts' stacked weights as stored, gate_up_proj [E, H, 2I] and down_proj
 * [E, I, H] (attr mxfp4: the checkpoint may hold them as <name>_blocks and <name>_scales, runtime/train.c;
 * attr transposed: [E, In, Out], for passes/lora.c's ParamWrapper), and
 * their biases [E, 2I], [E, H]. Biases take no weight decay (HF Trainer's "bias" rule). */
static void oss_moe_params(lw *L, int64_t l, int32_t *wr, int32_t *br, int32_t w[4]) {
    char path[256];
    const fe_model *m = L->m;
    const int64_t E = m->num_experts, H = m->hidden_size, I = m->moe_intermediate_size;
    snprintf(path, sizeof path, "layers.%lld.mlp.router.weight", (long long)l);
    *wr = add_param(L, path, ir_type_make(L->dt, 2, (int64_t[]){E, H}), "normal", 1);
    ir_global_set_attr(L->mod, IR_REF_GLOBAL(*wr), ir_ai("linear", 0));
    snprintf(path, sizeof path, "layers.%lld.mlp.router.bias", (long long)l);
    *br = add_param(L, path, ir_type_make(L->dt, 1, (int64_t[]){E}), "normal", 0);
    static const char *const leaf[4] = {"gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"};
    const ir_type t[4] = {ir_type_make(L->dt, 3, (int64_t[]){E, H, 2 * I}), ir_type_make(L->dt, 2, (int64_t[]){E, 2 * I}),
                          ir_type_make(L->dt, 3, (int64_t[]){E, I, H}), ir_type_make(L->dt, 2, (int64_t[]){E, H})};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "layers.%lld.mlp.experts.%s", (long long)l, leaf[i]);
        w[i] = add_param(L, path, t[i], i % 2 ? "zeros" : "normal", i % 2 == 0);
        if (i % 2 == 0) { /* [E, In, Out] (transformers' is_transposed: PEFT's ParamWrapper keeps in and out) */
            ir_global_set_attr(L->mod, IR_REF_GLOBAL(w[i]), ir_ai("mxfp4", 1));
            ir_global_set_attr(L->mod, IR_REF_GLOBAL(w[i]), ir_ai("transposed", 1));
        }
    }
}

/* A [vocab, hidden] param when tokens added to the tokenizer resized the
 * vocab (fe_resolve_tokenizer): its file holds `file_rows` rows; the rows
 * past them are drawn as transformers' resize_token_embeddings draws them
 * (normal with initializer_range, or the mean of the file's rows with
 * mean_resizing_embeddings). */
static void mark_resized(lw *L, int32_t ref, const fe_config *c) {
    if (!L->m->file_vocab_size || L->m->file_vocab_size == L->m->vocab_size) return;
    int g = IR_REF_GLOBAL(ref);
    ir_global_set_attr(L->mod, g, ir_ai("file_rows", L->m->file_vocab_size));
    ir_global_set_attr(L->mod, g, ir_as("new_rows", c->mean_resizing ? "mean" : "normal"));
}

/* unfrozen_parameters, as Axolotl's freeze_layers_except: a parameter
 * trains when one pattern matches its HF name at the start (re.match), a
 * "." not followed by "+" being a literal dot; the others are frozen
 * (trainable=0: no gradient, no optimizer state, no weight decay, as torch
 * leaves out parameters that do not require grad). Patterns with a row
 * range (LayerNamePattern: "name[start:end]") that match a parameter leave
 * only the union of their ranges of its rows (dim 0) a gradient (train_rows,
 * passes/autodiff.c's mask_rows: Axolotl's gradient hook); the other rows
 * still get AdamW's update of a zero gradient and their weight decay, as in
 * torch. A range past the rows, or empty, is Axolotl's ValueError. */
typedef struct {
    int64_t a, b;
} row_range;

static int range_cmp(const void *x, const void *y) {
    const row_range *p = x, *q = y;
    return p->a != q->a ? (p->a < q->a ? -1 : 1) : p->b < q->b ? -1 : p->b > q->b;
}

static int freeze_except(lw *L, const fe_config *c, ax_diag *d) {
    char **pats = malloc(sizeof *pats * (size_t)c->nunfrozen);
    /* each pattern's row range (b = -1: to the last row), has[i] = 0 without one; rr: a param's ranges */
    row_range *pr = malloc(sizeof *pr * (size_t)c->nunfrozen), *rr = malloc(sizeof *rr * (size_t)(c->nunfrozen + 1));
    int *has = malloc(sizeof *has * (size_t)c->nunfrozen);
    if (!pats || !pr || !has || !rr) abort();
    for (int i = 0; i < c->nunfrozen; i++) {
        const char *s = c->unfrozen[i];
        size_t n;
        has[i] = fe_unfrozen_parse(s, &n, &pr[i].a, &pr[i].b) == 1; /* config.c refused the bad ones */
        char *o = malloc(2 * n + 1), *q = o;
        if (!o) abort();
        for (size_t k = 0; k < n; k++) {
            if (s[k] == '.' && s[k + 1] != '+') *q++ = '\\';
            *q++ = s[k];
        }
        *q = 0;
        pats[i] = o;
    }
    const char *path = c->path ? c->path : "config";
    int ntrain = 0, rc = 0;
    for (int g = 0; g < L->mod->nglobals && !rc; g++) {
        const ir_global *G = &L->mod->globals[g];
        if (G->role != IR_ROLE_PARAM) continue;
        const char *hf = G->name; /* named_parameters()' name: the module's */
        const int64_t R = G->type.rank ? G->type.dims[0] : 1;
        int hit = 0, nr = 0;
        for (int i = 0; i < c->nunfrozen && !rc; i++) {
            char err[256];
            int r = rt_re_match(pats[i], hf, err, sizeof err);
            if (r < 0) {
                ax_error(d, path, "unfrozen_parameters: \"%s\" is not a regex: %s", c->unfrozen[i], err);
                rc = -1;
            }
            if (r <= 0) continue;
            hit = 1;
            if (!has[i]) continue;
            row_range x = {pr[i].a, pr[i].b < 0 ? R : pr[i].b};
            if (x.b > R || x.a >= x.b) {
                ax_error(d, path, "unfrozen_parameters: \"%s\": rows [%lld, %lld) of %s, which has %lld (Axolotl: invalid "
                         "unfreeze range)", c->unfrozen[i], (long long)x.a, (long long)x.b, hf, (long long)R);
                rc = -1;
            }
            rr[nr++] = x;
        }
        if (!hit) ir_global_set_attr(L->mod, g, ir_ai("trainable", 0));
        ntrain += hit;
        if (rc || !nr) continue;
        /* Axolotl's _merge_ranges: sorted, overlapping or touching ranges joined */
        qsort(rr, (size_t)nr, sizeof *rr, range_cmp);
        int m = 0;
        for (int k = 1; k < nr; k++) {
            if (rr[k].a <= rr[m].b) rr[m].b = rr[k].b > rr[m].b ? rr[k].b : rr[m].b;
            else rr[++m] = rr[k];
        }
        m++;
        if (m == 1 && rr[0].a == 0 && rr[0].b == R) continue; /* every row: nothing to freeze */
        int64_t *ints = malloc(sizeof *ints * (size_t)(2 * m));
        if (!ints) abort();
        for (int k = 0; k < m; k++) ints[2 * k] = rr[k].a, ints[2 * k + 1] = rr[k].b;
        ir_global_set_attr(L->mod, g, ir_aints("train_rows", 2 * m, ints));
        free(ints);
    }
    for (int i = 0; i < c->nunfrozen; i++) free(pats[i]);
    free(pats);
    free(pr);
    free(has);
    free(rr);
    if (!rc && !ntrain) {
        const char *tp = L->m->text_module ? L->m->text_module : "model.";
        ax_error(d, path,
                 "unfrozen_parameters: no parameter of the model matches (names such as %slayers.0.mlp.down_proj.weight, "
                 "%sembed_tokens.weight%s; a \".\" is a literal dot unless followed by \"+\")",
                 tp, tp, L->m->tie_word_embeddings ? "" : ", lm_head.weight");
        rc = -1;
    }
    return rc;
}

static int32_t param1(lw *L, const char *name, int64_t n, const char *init) {
    /* Norm weights and biases: HF Trainer exempts them from weight decay. */
    return add_param(L, name, ir_type_make(L->dt, 1, (int64_t[]){n}), init, 0);
}

/* A norm's weight: ones, or Gemma's zeros (its norms multiply by 1 + w; transformers draws them as zeros). */
static int32_t norm_param(lw *L, const char *name, int64_t n) { return param1(L, name, n, L->m->gemma ? "zeros" : "ones"); }

/* y = x W^T (+ b): HF nn.Linear with weight [out, in]. */
static int32_t linear(lw *L, int32_t x, int32_t w, int32_t bias) {
    int32_t y = ir_b(&L->b, IR_OP_matmul, IR_IN(x, w), IR_AT(ir_ai("ta", 0), ir_ai("tb", 1)));
    if (bias != 0) y = ir_b(&L->b, IR_OP_bias_add, IR_IN(y, bias), IR_NOAT);
    return y;
}

/* columns [begin, begin + len) of x's last dim: a part of a fused projection's output */
static int32_t slice(lw *L, int32_t x, int64_t begin, int64_t len) {
    return ir_b(&L->b, IR_OP_slice, IR_IN(x), IR_AT(ir_ai("begin", begin), ir_ai("len", len)));
}

static int32_t rmsnorm(lw *L, int32_t x, int32_t w) {
    if (L->m->norm_offset != 0) /* Gemma3RMSNorm: norm(x) (1 + w); attr absent otherwise (other plans keep their bytes) */
        return ir_b(&L->b, IR_OP_rmsnorm, IR_IN(x, w),
                    IR_AT(ir_af("eps", L->m->rms_norm_eps), ir_af("offset", L->m->norm_offset)));
    return ir_b(&L->b, IR_OP_rmsnorm, IR_IN(x, w), IR_AT(ir_af("eps", L->m->rms_norm_eps)));
}

/* Granite: a residual branch times residual_multiplier before it is added (absent at 1: other plans keep their
 * bytes) */
static int32_t residual_branch(lw *L, int32_t h) {
    const double r = L->m->residual_multiplier;
    return r > 0 && r != 1 ? ir_b(&L->b, IR_OP_scale, IR_IN(h), IR_AT(ir_af("alpha", r))) : h;
}

static int32_t reshape(lw *L, int32_t x, int n, const int64_t *dims) {
    return ir_b(&L->b, IR_OP_reshape, IR_IN(x), IR_AT(ir_aints("shape", n, dims)));
}

/* local: Gemma's sliding layers, their own base and the default RoPE. The attrs past original_max appear only where
 * they differ from the default (a partial rotation, an attention factor, yarn's and longrope's parameters), so plans
 * without them keep their bytes. */
static int32_t rope(lw *L, int32_t x, int32_t pos, int local, int query) {
    const fe_model *m = L->m;
    static const char *types[] = {"default", "linear", "llama3", "dynamic", "yarn", "longrope"};
    const int64_t hd = m->head_dim;
    const double prf = m->rope_partial_factor > 0 ? m->rope_partial_factor : 1.0;
    const int64_t rd = local ? hd : (int64_t)((double)hd * prf); /* HF: int(head_dim * partial_rotary_factor) */
    fe_rope_type ty = local ? FE_ROPE_DEFAULT : m->rope_type;
    double theta = local ? m->rope_local_theta : m->rope_theta;
    if (ty == FE_ROPE_DYNAMIC) { /* within max_position_embeddings (fe_check_config_model): HF's base at seq_len =
                                  * max_position_embeddings, which is the base itself up to rounding, as Python has it */
        const double f = m->rope_factor, mp = (double)m->max_position_embeddings;
        theta = theta * pow((f * mp / mp) - (f - 1), (double)rd / (double)(rd - 2));
        ty = FE_ROPE_DEFAULT;
    }
    ir_attr at[16];
    int na = 0;
    at[na++] = ir_af("theta", theta);
    at[na++] = ir_ai("inverse", 0);
    at[na++] = ir_as("rope_type", types[ty]);
    at[na++] = ir_af("factor", local ? 1.0 : m->rope_factor);
    at[na++] = ir_af("low_freq_factor", m->rope_low_freq_factor);
    at[na++] = ir_af("high_freq_factor", m->rope_high_freq_factor);
    at[na++] = ir_ai("original_max", m->rope_original_max_position_embeddings);
    if (rd != hd) at[na++] = ir_ai("rotary_dim", rd);
    if (m->rope_interleave) at[na++] = ir_ai("interleave", 1); /* GLM: the pairs (2i, 2i+1) */
    const double af = local || !(m->rope_attention_factor > 0) ? 1.0 : m->rope_attention_factor;
    if (af != 1.0) at[na++] = ir_af("attention_factor", af);
    if (ty == FE_ROPE_YARN) {
        at[na++] = ir_af("beta_fast", m->rope_beta_fast);
        at[na++] = ir_af("beta_slow", m->rope_beta_slow);
        at[na++] = ir_ai("truncate", m->rope_truncate);
    }
    if (ty == FE_ROPE_LONGROPE) {
        at[na++] = ir_afloats("short_factor", m->rope_n_factors, m->rope_short_factor);
        at[na++] = ir_afloats("long_factor", m->rope_n_factors, m->rope_long_factor);
    }
    /* Ministral 3's queries: times 1 + beta ln(1 + floor(pos / original_max)) (get_llama_4_attn_scale) */
    if (query && m->llama4_beta != 0) {
        at[na++] = ir_af("qscale_beta", m->llama4_beta);
        at[na++] = ir_ai("qscale_max", m->llama4_max);
    }
    /* longrope's regime follows the micro-batch's max position when a row can reach past original_max */
    if (ty == FE_ROPE_LONGROPE && L->max_position >= 0)
        return ir_b(&L->b, IR_OP_rope, IR_IN(x, pos, L->max_position), na, at);
    return ir_b(&L->b, IR_OP_rope, IR_IN(x, pos), na, at);
}

static void set_i(ir_module *mod, const char *k, int64_t v) { ir_module_set_attr(mod, ir_ai(k, v)); }
static void set_f(ir_module *mod, const char *k, double v) { ir_module_set_attr(mod, ir_af(k, v)); }
static void set_s(ir_module *mod, const char *k, const char *v) { ir_module_set_attr(mod, ir_as(k, v ? v : "")); }

/* A list of datasets: PREFIX.N (the path) and PREFIX.N.format (how axorun
 * tokenizes its rows, runtime/prompt.h), with their count at count_key. */
static void set_datasets(ir_module *mod, const char *prefix, const char *count_key, const fe_dataset *ds, int n) {
    set_i(mod, count_key, n);
    for (int i = 0; i < n; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s.%d", prefix, i);
        set_s(mod, k, ds[i].path);
        if (ds[i].continues) { /* absent for an entry's first file: older plans keep their attrs */
            snprintf(k, sizeof k, "%s.%d.continues", prefix, i);
            set_i(mod, k, 1);
        }
        if (ds[i].slice) { /* absent without a slice: older plans keep their attrs */
            snprintf(k, sizeof k, "%s.%d.slice", prefix, i);
            set_s(mod, k, ds[i].slice);
        }
        if (ds[i].loader == FE_LOADER_PARQUET) { /* absent for JSON: older plans keep their attrs */
            snprintf(k, sizeof k, "%s.%d.parquet", prefix, i);
            set_i(mod, k, 1);
        } else if (ds[i].loader != FE_LOADER_JSON) {
            snprintf(k, sizeof k, "%s.%d.loader", prefix, i);
            set_s(mod, k, fe_loader_names[ds[i].loader]);
        }
        if (ds[i].shards > 0) { /* absent without shards: older plans keep their attrs */
            snprintf(k, sizeof k, "%s.%d.shards", prefix, i);
            set_i(mod, k, ds[i].shards);
            snprintf(k, sizeof k, "%s.%d.shards_idx", prefix, i);
            set_i(mod, k, ds[i].shards_idx);
        }
        if (ds[i].formatted) {
            snprintf(k, sizeof k, "%s.%d.format", prefix, i);
            char *js = rt_ds_spec_json(&ds[i].spec);
            set_s(mod, k, js);
            free(js);
        }
    }
}

static void module_facts(const fe_config *c, const fe_model *m, int world_size, ir_module *mod) {

    set_s(mod, "model.arch", m->arch_name);
    set_s(mod, "model.dir", m->dir);
    /* a multimodal model (Gemma 3, Mistral 3): its text model's module prefix, and the vision tower and projector to carry into
     * every saved model (absent for a causal LM: other plans keep their bytes) */
    if (m->multimodal) set_s(mod, "model.text_prefix", m->text_module);
    /* an MoE model: the LoRA target names PEFT (>= 0.19, with transformers 5) moves onto the router's and the
     * experts' stacked weights (its _MOE_TARGET_MODULE_MAPPING), which passes/lora.c refuses */
    int any_moe = 0;
    for (int64_t l = 0; m->layer_moe && l < m->num_hidden_layers; l++) any_moe |= m->layer_moe[l];
    /* (PEFT converts no gpt-oss name, nor any of qwen2_moe: transformers maps other MoE types onto its conversion
     * pattern but not itself, so there gate_proj / up_proj / down_proj stay module names, the shared expert's) */
    if (any_moe && m->arch != FE_ARCH_GPTOSS && !m->shared_expert_intermediate_size) {
        char t[160];
        snprintf(t, sizeof t, "gate,%s,%s,%s", m->moe_parts[0], m->moe_parts[1], m->moe_parts[2]);
        set_s(mod, "model.moe_targets", t);
    }
    if (m->multimodal && m->carried && !c->reinit_weights) set_i(mod, "model.carry", 1);
    if (c->base_model_hub) set_s(mod, "model.hub_id", c->base_model_hub); /* adapter_config's base_model_name_or_path */
    /* the commit trained on (the snapshot's name), so that a merge or a reload takes this base even after the
     * branch moved; PEFT's revision field takes a commit as well as a branch */
    if (c->base_model_hub) set_s(mod, "model.hub_revision", strrchr(c->base_model, '/') + 1);
    set_i(mod, "model.vocab", m->vocab_size);
    set_i(mod, "model.hidden", m->hidden_size);
    set_i(mod, "model.intermediate", m->intermediate_size);
    set_i(mod, "model.layers", m->num_hidden_layers);
    set_i(mod, "model.heads", m->num_attention_heads);
    set_i(mod, "model.kv_heads", m->num_key_value_heads);
    set_i(mod, "model.head_dim", m->head_dim);
    set_i(mod, "model.tie_word_embeddings", m->tie_word_embeddings);
    set_i(mod, "model.pad_id", m->pad_token_id >= 0 ? m->pad_token_id : 0);
    set_f(mod, "model.initializer_range", m->initializer_range > 0 ? m->initializer_range : 0.02); /* 0: unset (HF: 0.02) */
    /* HF's Embedding padding_idx: its row drawn as zeros when weights are drawn (runtime/train.c) */
    if (m->pad_token_id >= 0 && m->pad_token_id < m->vocab_size) set_i(mod, "model.padding_idx", m->pad_token_id);
    if (c->reinit_weights) set_i(mod, "model.reinit_weights", 1);
    set_i(mod, "train.world_size", world_size);
    set_i(mod, "train.seq_len", c->sequence_len);
    set_i(mod, "train.micro_batch_size", c->micro_batch_size);
    int64_t rows, row_len;
    fe_token_shape(c, &rows, &row_len);
    if (rows != c->micro_batch_size) { /* one bin a micro-batch (absent otherwise: older plans keep their hashes) */
        set_i(mod, "train.rows", rows);
        set_i(mod, "train.row_len", row_len);
        /* by multipack_real_batches: false with an attention that does not read packed sequences: Axolotl counts
         * the steps as for real batches (runtime/train.c) */
        if (!c->attn_packs && c->rl != FE_RL_DPO) set_i(mod, "train.steps_as_real_batches", 1);
    }
    set_i(mod, "train.grad_accum", c->gradient_accumulation_steps);
    /* num_epochs: an integer attr when whole (as plans always had it), else a
     * float; the runtime reads either as a number */
    if (c->num_epochs == floor(c->num_epochs) && c->num_epochs < 9e15) set_i(mod, "train.epochs", (int64_t)c->num_epochs);
    else set_f(mod, "train.epochs", c->num_epochs);
    set_i(mod, "train.max_steps", c->max_steps);
    set_f(mod, "train.lr", c->learning_rate);
    set_s(mod, "train.scheduler", fe_sched_names[c->lr_scheduler]);
    /* the schedule's arguments (runtime/train.h rt_lr_sched): only those given */
    const double sk[] = {c->sched_num_cycles, c->sched_power, c->sched_lr_end, c->sched_timescale,
                         c->sched_min_lr_rate, c->cosine_min_lr_ratio, c->cosine_constant_lr_ratio};
    static const char *const skn[] = {"train.sched.num_cycles", "train.sched.power", "train.sched.lr_end",
                                      "train.sched.timescale", "train.sched.min_lr_rate", "train.sched.cosine_min_lr_ratio",
                                      "train.sched.cosine_constant_lr_ratio"};
    for (size_t i = 0; i < sizeof sk / sizeof sk[0]; i++)
        if (!isnan(sk[i])) set_f(mod, skn[i], sk[i]);
    if (!isnan(c->sched_min_lr) && (c->lr_scheduler == FE_SCHED_REDUCE_ON_PLATEAU || c->lr_scheduler == FE_SCHED_GREEDY))
        set_f(mod, "train.sched.plateau_min_lr", c->sched_min_lr); /* ReduceLROnPlateau's / GreedyLR's floor: an lr */
    else if (!isnan(c->sched_min_lr))
        set_f(mod, "train.sched.min_lr_rate", c->sched_min_lr / c->learning_rate); /* HF's */
    const double pk[] = {c->sched_factor, c->sched_patience, c->sched_threshold, c->sched_cooldown, c->sched_eps};
    static const char *const pkn[] = {"train.sched.factor", "train.sched.patience", "train.sched.threshold",
                                      "train.sched.cooldown", "train.sched.eps"};
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++)
        if (!isnan(pk[i])) set_f(mod, pkn[i], pk[i]);
    if (c->sched_mode) set_s(mod, "train.sched.mode", c->sched_mode);
    if (c->sched_threshold_mode) set_s(mod, "train.sched.threshold_mode", c->sched_threshold_mode);
    const double sk2[] = {c->sched_warmup_lr_rate, c->sched_num_decay_steps, c->sched_num_stable_steps, c->sched_min_lr_ratio};
    static const char *const skn2[] = {"train.sched.warmup_lr_rate", "train.sched.num_decay_steps",
                                       "train.sched.num_stable_steps", "train.sched.min_lr_ratio"};
    for (size_t i = 0; i < sizeof sk2 / sizeof sk2[0]; i++)
        if (!isnan(sk2[i])) set_f(mod, skn2[i], sk2[i]);
    if (c->sched_warmup_type) set_s(mod, "train.sched.warmup_type", c->sched_warmup_type);
    if (c->sched_decay_type) set_s(mod, "train.sched.decay_type", c->sched_decay_type);
    if (c->lr_quadratic_warmup) set_i(mod, "train.sched.quadratic_warmup", 1);
    const double gk[] = {c->sched_greedy_warmup, c->sched_max_lr, c->sched_window, c->sched_reset_start};
    static const char *const gkn[] = {"train.sched.greedy_warmup", "train.sched.max_lr", "train.sched.window_size",
                                      "train.sched.reset_start"};
    for (size_t i = 0; i < sizeof gk / sizeof gk[0]; i++) /* greedy's (runtime/train.c has GreedyLR's defaults) */
        if (!isnan(gk[i])) set_f(mod, gkn[i], gk[i]);
    if (c->sched_smooth >= 0) set_i(mod, "train.sched.smooth", c->sched_smooth);
    if (c->lr_scheduler == FE_SCHED_ONE_CYCLE) { /* OneCycleLR's arguments, torch's defaults written out */
        if (!isnan(c->oc_pct_start)) set_f(mod, "train.sched.pct_start", c->oc_pct_start);
        set_f(mod, "train.sched.div_factor", isnan(c->oc_div_factor) ? 25.0 : c->oc_div_factor);
        set_f(mod, "train.sched.final_div_factor", isnan(c->oc_final_div_factor) ? 1e4 : c->oc_final_div_factor);
        set_f(mod, "train.sched.base_momentum", isnan(c->oc_base_momentum) ? 0.85 : c->oc_base_momentum);
        set_f(mod, "train.sched.max_momentum", isnan(c->oc_max_momentum) ? 0.95 : c->oc_max_momentum);
        set_s(mod, "train.sched.anneal_strategy", c->oc_anneal ? c->oc_anneal : "cos");
        set_i(mod, "train.sched.three_phase", c->oc_three_phase > 0);
        set_i(mod, "train.sched.cycle_momentum", c->oc_cycle_momentum != 0);
    }
    /* absent when unset: the runtime then takes Axolotl's default, 3% of its step count (rt_axolotl_warmup) */
    if (c->warmup_steps >= 0) set_i(mod, "train.warmup_steps", c->warmup_steps);
    if (!isnan(c->warmup_ratio)) set_f(mod, "train.warmup_ratio", c->warmup_ratio);
    set_f(mod, "train.max_grad_norm", c->max_grad_norm);
    set_i(mod, "train.seed", (int64_t)c->seed);
    if (c->neftune_noise_alpha > 0) { /* runtime/train.c */
        set_f(mod, "train.neftune_noise_alpha", c->neftune_noise_alpha);
        set_i(mod, "train.neftune_multiple", fe_neftune_multiple(c));
        if (c->batch_flattening) set_i(mod, "train.neftune_flatten", 1); /* the width sums the micro-batch's rows */
    }
    set_i(mod, "train.sample_packing", c->sample_packing);
    if (c->excess_length) set_i(mod, "train.excess_length_strategy", c->excess_length); /* 1 truncate, 2 raise */
    set_i(mod, "train.bf16", c->bf16);
    set_i(mod, "train.bfloat16", c->bf16_pure); /* bf16 weights and AdamW state, no master copy */
    if (c->resume_from) ir_module_set_attr(mod, ir_as("train.resume_from", c->resume_from));
    if (c->auto_resume) set_i(mod, "train.auto_resume", 1);
    if (c->logging_steps >= 1) set_i(mod, "train.logging_steps", c->logging_steps); /* absent: Axolotl's default */
    if (c->dataset_exact_deduplication) set_i(mod, "train.dataset_exact_deduplication", 1); /* runtime/train.c */
    if (c->shuffle_before_merging && (c->ndatasets > 1 || c->ntest_datasets > 1))
        set_i(mod, "train.shuffle_before_merging_datasets", 1);
    if (c->curriculum_sampling) set_i(mod, "train.curriculum_sampling", 1);
    if (c->multipack_real_batches) set_i(mod, "train.multipack_real_batches", 1);
    if (c->group_by_length) set_i(mod, "train.group_by_length", 1);
    if (c->fix_untrained) { /* runtime/untrained.c */
        ax_buf j = {0};
        ax_buf_puts(&j, "");
        for (int i = 0; i < c->nfix_untrained_ids; i++) ax_buf_printf(&j, "%s%lld", i ? "," : "", (long long)c->fix_untrained_ids[i]);
        set_i(mod, "train.fix_untrained", 1);
        set_s(mod, "train.fix_untrained_ids", j.data);
        if (c->tok_chat_template) set_s(mod, "train.fix_untrained_template", c->tok_chat_template); /* runtime/untrained.c */
        ax_buf_free(&j);
    }
    if (c->sample_packing && c->sample_packing_eff_est > 0) {
        set_f(mod, "train.sample_packing_eff_est", c->sample_packing_eff_est);
        if (c->total_num_tokens > 0) set_i(mod, "train.total_num_tokens", c->total_num_tokens);
    }
    if (c->sample_packing_sequentially) set_i(mod, "train.pack_next_fit", 1);
    if (c->sample_packing_group_size > 0 && c->sample_packing_group_size != 100000)
        set_i(mod, "train.pack_group_size", c->sample_packing_group_size);
    if (c->sample_packing_bin_size > 0 && c->sample_packing_bin_size != 200)
        set_i(mod, "train.pack_bin_size", c->sample_packing_bin_size);
    if (!c->shuffle_merged_datasets) set_i(mod, "train.shuffle_merged_datasets", 0);
    if (c->dataloader_drop_last) set_i(mod, "train.dataloader_drop_last", 1);
    if (c->dataloader_drop_last_cfg) set_i(mod, "train.dataloader_drop_last_cfg", 1); /* the config's own true */
    if (c->min_sample_len > 0 && c->min_sample_len != 2) set_i(mod, "train.min_sample_len", c->min_sample_len);
    if (c->eval_sequence_len > 0 && c->ntest_datasets > 0) set_i(mod, "train.eval_sequence_len", c->eval_sequence_len);
    if (c->dataset_shard_num > 0 && c->dataset_shard_idx >= 0) {
        set_i(mod, "train.dataset_shard_num", c->dataset_shard_num);
        set_i(mod, "train.dataset_shard_idx", c->dataset_shard_idx);
    }
    if (c->val_set_size > 0 || c->ntest_datasets > 0) { /* held-out data, evaluated as the run goes (runtime/train.c) */
        set_i(mod, "train.eval", 1);
        set_i(mod, "train.eval_batch_size", c->eval_batch_size);
        set_i(mod, "train.eval_sample_packing", c->eval_sample_packing);
        if (c->val_set_size > 0) set_f(mod, "train.val_set_size", c->val_set_size);
        set_i(mod, "train.eval_steps", c->eval_steps);
        set_f(mod, "train.eval_steps_ratio", c->eval_steps_ratio);
        set_i(mod, "train.evals_per_epoch", c->evals_per_epoch);
        if (c->early_stopping_patience > 0) set_i(mod, "train.early_stopping_patience", c->early_stopping_patience);
        if (c->load_best) set_i(mod, "train.load_best_model_at_end", 1);
        if (c->greater_is_better) set_i(mod, "train.greater_is_better", 1);
        static const char *const es[] = {"", "no", "epoch", "steps"};
        if (c->eval_strategy) set_s(mod, "train.eval_strategy", es[c->eval_strategy]);
    }
    static const char *const ss[] = {"", "no", "epoch", "steps", "best"};
    if (c->save_strategy) set_s(mod, "train.save_strategy", ss[c->save_strategy]);
    set_i(mod, "train.save_steps", c->save_steps);
    if (c->saves_per_epoch) set_i(mod, "train.saves_per_epoch", c->saves_per_epoch);
    if (c->save_total_limit) set_i(mod, "train.save_total_limit", c->save_total_limit);
    set_i(mod, "train.gradient_checkpointing", c->gradient_checkpointing);
    /* how axorun writes checkpoint-N/ (the final model is always a full HF dir) */
    set_s(mod, "train.state_dict_type",
          c->fsdp.enabled && c->fsdp.state_dict_type == FE_STATE_DICT_SHARDED ? "SHARDED_STATE_DICT" : "FULL_STATE_DICT");
    set_s(mod, "io.output_dir", c->output_dir);
    set_datasets(mod, "io.dataset", "io.ndatasets", c->datasets, c->ndatasets);
    /* saved beside the trained model: the tokenizer's files, and the chosen chat template */
    set_s(mod, "io.tokenizer_dir", c->tokenizer_config ? c->tokenizer_config : c->base_model);
    if (c->out_chat_template) set_s(mod, "io.chat_template", c->out_chat_template);
    if (c->ntest_datasets) set_datasets(mod, "io.test_dataset", "io.ntest_datasets", c->test_datasets, c->ntest_datasets);
    if (c->dataset_prepared_path && c->tok.path) set_s(mod, "io.dataset_prepared_path", c->dataset_prepared_path);
    if (c->tok.path) {
        char *js = rt_tok_setup_json(&c->tok);
        set_s(mod, "io.tokenizer", js);
        free(js);
    }
}


/* The fused lm head + loss (linear_cross_entropy) over targets tgt with dscale ds: per row when rows > 0, the loss
 * alone (no dh, no dW GEMMs) when !grads; Gemma 2's final_logit_softcapping as attr softcap where it applies (other
 * plans keep their bytes). out: loss, dh, dW. */
static void lce(lw *L, int32_t h, int32_t w, int32_t tgt, int32_t ds, int64_t chunk, int64_t rows, int grads,
                int32_t *out) {
    ir_attr at[6] = {ir_ai("ignore_index", -100), ir_ai("chunk", chunk)};
    int na = 2;
    if (rows > 0) at[na++] = ir_ai("rows", rows);
    if (!grads) at[na++] = ir_ai("dh", 0), at[na++] = ir_ai("dw", 0);
    if (L->m->final_softcap > 0) at[na++] = ir_af("softcap", L->m->final_softcap);
    ir_bn(&L->b, IR_OP_linear_cross_entropy, IR_IN(h, w, tgt, ds), na, at, out);
}

int64_t fe_lce_chunk_rows(int64_t rows, int64_t hidden, int64_t vocab) {
    /* Liger's rule: about as many chunks as the vocab is wider than the
     * hidden size, so a chunk's logits take about the memory of the hidden
     * states; a power of two rows so GEMM tiles stay full. */
    if (rows < 1) return 1;
    int64_t ratio = hidden > 0 ? (vocab + hidden - 1) / hidden : 1;
    if (ratio < 1) ratio = 1;
    int64_t want = (rows + ratio - 1) / ratio, c = 1;
    while (c < want) c <<= 1;
    return c < rows ? c : rows;
}

/* NEFTune (Jain et al. 2023), as transformers' neftune_post_forward_hook
 * adds it to the input embeddings' output in training mode:
 *     x + uniform(-mag, mag),   mag = alpha / sqrt(L * d)
 * with L = output.size(1), the batch's width as HF's collator pads it, and d
 * the hidden size. An axo row is sequence_len long (or one bin), so mag is
 * an input the runtime sets for each micro-batch (runtime/train.c
 * rt_neftune_width: the longest row's tokens up to module attr
 * train.neftune_multiple, Axolotl's pad_to_multiple_of); attr mag is a full
 * row's, for a session run without that. Under sequence parallelism a rank
 * holds S/sp tokens of a row, but mag stays the whole width's (Axolotl
 * slices rows before the model runs, so there the hook sees L/sp). The
 * noise of each token is keyed by the runtime input `neftune_keys` (the
 * token's place in the global batch and the optimizer step, runtime/train.c),
 * so it is the same for any number of ranks and any sequence split.
 * eval_step drops the node (passes/eval.c); its gradient is the identity. */
static int32_t neftune(lw *L, int32_t x, double alpha, int64_t B, int64_t S, int64_t H) {
    int32_t keys = ir_b_input(&L->b, "neftune_keys", ir_type_make(IR_I32, 2, (int64_t[]){B, S}));
    int32_t mag_in = ir_b_input(&L->b, "neftune_mag", ir_type_scalar(IR_F32)); /* the micro step's (runtime/train.c) */
    double mag = alpha / sqrt((double)S * (double)H);                           /* a full row's: the attr */
    return ir_b(&L->b, IR_OP_neftune, IR_IN(x, keys, mag_in), IR_AT(ir_af("mag", mag), ir_ai("salt", 0)));
}

/* DPO (TRL's DPOTrainer, loss_type sigmoid) on the 2P rows of a micro-batch,
 * the P chosen completions then the P rejected, their targets the
 * completion's tokens only. Three nodes after the final norm:
 *   - the fused lm head + loss per row (rows=2P, no gradient GEMMs): each
 *     row's summed token loss s = -log p(completion);
 *   - dpo_loss(s, dpo_ref, dpo_pair_scale): the pair losses and each row's
 *     adjoint, coef = pair scale x d loss / d s. dpo_ref is the reference
 *     model's s for the same rows (the runtime computes it with eval_step
 *     before the weights move); dpo_pair_scale is 1 / (pairs in the micro
 *     batch x grad_accum x ranks), TRL's mean over a micro-batch's pairs as
 *     HF's gradient accumulation and DDP average it, and 0 for a pair a short
 *     micro-batch does not hold;
 *   - the fused pass again with coef as its per-row dscale: dh and dW are
 *     the gradients of sum_p scale_p loss_p, and its loss the root autodiff
 *     starts from (passes/autodiff.c).
 * s and the pair losses go to @stats/dpo_rows and @stats/dpo_pair_loss for
 * the runtime's metrics (TRL's rewards and logps). TRL disables dropout in
 * the policy (DPOConfig.disable_dropout), which the frontend mirrors.
 * rl: simpo and rl: orpo (TRL's CPOTrainer and ORPOTrainer) are the same
 * graph with a zero dpo_ref, their loss types, and an NLL term over the
 * chosen rows (see below). */
static int32_t dpo_loss(lw *L, const fe_config *c, int32_t hn, int32_t head, int32_t tgt, int64_t B, int64_t S, int64_t H,
                        int64_t V) {
    const int64_t P = B / 2, chunk = fe_lce_chunk_rows(B * S, H, V);
    int32_t zero = ir_b_fill(&L->b, 0.0, ir_type_scalar(IR_F32));
    int32_t rs[3], dl[2], r[3];
    lce(L, hn, head, tgt, zero, chunk, B, 0, rs);
    int32_t ref = ir_b_input(&L->b, "dpo_ref", ir_type_make(IR_F32, 1, (int64_t[]){B}));
    int32_t psc = ir_b_input(&L->b, "dpo_pair_scale", ir_type_make(IR_F32, 1, (int64_t[]){P}));
    /* TRL's loss_type (ir/dpo_loss.h); the optional attrs only where they apply (older plans keep their bytes) */
    ir_attr at[6];
    int na = 0, t[AXO_DPO_MAXTERMS];
    double w[AXO_DPO_MAXTERMS];
    at[na++] = ir_af("beta", c->rl_beta);
    const char *types = c->dpo_loss_types ? c->dpo_loss_types : "sigmoid"; /* fe_config's default */
    at[na++] = ir_as("loss_type", types);
    if (c->dpo_loss_weights) at[na++] = ir_as("loss_weights", c->dpo_loss_weights);
    if (c->dpo_label_smoothing != 0) at[na++] = ir_af("label_smoothing", c->dpo_label_smoothing);
    if (c->rl_kind == FE_RL_SIMPO) at[na++] = ir_af("gamma", c->simpo_gamma);
    const int nt = axo_dpo_parse(types, c->dpo_loss_weights, t, w);
    int counts = 0;
    for (int k = 0; k < nt; k++) counts |= axo_dpo_needs_counts(t[k]);
    int32_t din[4] = {rs[0], ref, psc, 0};
    if (counts) /* ipo, sigmoid_norm, simpo, orpo: each row's completion tokens (runtime/dpo.c) */
        din[3] = ir_b_input(&L->b, "dpo_row_tokens", ir_type_make(IR_F32, 1, (int64_t[]){B}));
    ir_bn(&L->b, IR_OP_dpo_loss, counts ? 4 : 3, din, na, at, dl);
    /* simpo's cpo_alpha x NLL (and rl: dpo's sft term): the chosen completions' token mean, a linear term in each
     * row's summed loss whose
     * weights (the runtime's dpo_row_nll: alpha / (the micro-batch's chosen completion tokens x its scale), 0 on the
     * rejected rows) add to the rows' adjoints */
    if ((c->rl_kind == FE_RL_SIMPO && c->cpo_alpha != 0) || (c->rl_kind == FE_RL_DPO_TRAINER && c->dpo_sft_weight != 0)) {
        int32_t nllw = ir_b_input(&L->b, "dpo_row_nll", ir_type_make(IR_F32, 1, (int64_t[]){B}));
        int32_t coef = ir_b(&L->b, IR_OP_add, IR_IN(dl[1], nllw), IR_NOAT);
        lce(L, hn, head, tgt, coef, chunk, 0, 1, r);
    } else if (c->rl_kind == FE_RL_ORPO) {
        /* ORPOTrainer's NLL reads every token of the chosen rows, the prompt's too: a second forward pass over the
         * chosen rows' prompt targets (dpo_prompt_targets) gives their sums (@stats/dpo_prompt_rows); the gradient
         * pass runs over every target of the rows (dpo_all_targets) with a per-token scale: the row's coef on its
         * completion's targets (coef x 1^T, an outer product, times dpo_completion_mask) plus the NLL's weight on
         * the chosen rows' targets (dpo_token_nll). A target whose scale is 0 (a rejected row's prompt) adds to the
         * pass's loss, which only roots autodiff, and to no gradient. */
        int32_t ptg = ir_b_input(&L->b, "dpo_prompt_targets", ir_type_make(IR_I32, 2, (int64_t[]){B, S}));
        int32_t atg = ir_b_input(&L->b, "dpo_all_targets", ir_type_make(IR_I32, 2, (int64_t[]){B, S}));
        int32_t cmask = ir_b_input(&L->b, "dpo_completion_mask", ir_type_make(IR_F32, 2, (int64_t[]){B, S}));
        int32_t tnll = ir_b_input(&L->b, "dpo_token_nll", ir_type_make(IR_F32, 2, (int64_t[]){B, S}));
        int32_t pr[3];
        lce(L, hn, head, ptg, zero, chunk, B, 0, pr);
        int spr = ir_global_add(L->mod, "stats/dpo_prompt_rows", ir_type_make(IR_F32, 1, (int64_t[]){B}), IR_ROLE_TEMP,
                                NULL, 0);
        ir_bn(&L->b, IR_OP_store, IR_IN(IR_GLOBAL_REF(spr), pr[0]), IR_NOAT, NULL);
        int32_t ones = ir_b_fill(&L->b, 1.0, ir_type_make(IR_F32, 2, (int64_t[]){1, S}));
        int32_t cB = reshape(L, dl[1], 2, (int64_t[]){B, 1});
        int32_t outer = ir_b(&L->b, IR_OP_matmul, IR_IN(cB, ones), IR_AT(ir_ai("ta", 0), ir_ai("tb", 0)));
        int32_t tok = ir_b(&L->b, IR_OP_add, IR_IN(ir_b(&L->b, IR_OP_mul, IR_IN(outer, cmask), IR_NOAT), tnll), IR_NOAT);
        int32_t flat = reshape(L, tok, 1, (int64_t[]){B * S});
        lce(L, hn, head, atg, flat, chunk, 0, 1, r);
    } else {
        lce(L, hn, head, tgt, dl[1], chunk, 0, 1, r);
    }
    int srow = ir_global_add(L->mod, "stats/dpo_rows", ir_type_make(IR_F32, 1, (int64_t[]){B}), IR_ROLE_TEMP, NULL, 0);
    int spl = ir_global_add(L->mod, "stats/dpo_pair_loss", ir_type_make(IR_F32, 1, (int64_t[]){P}), IR_ROLE_TEMP, NULL, 0);
    ir_bn(&L->b, IR_OP_store, IR_IN(IR_GLOBAL_REF(srow), rs[0]), IR_NOAT, NULL);
    ir_bn(&L->b, IR_OP_store, IR_IN(IR_GLOBAL_REF(spl), dl[0]), IR_NOAT, NULL);
    ir_module_set_attr(L->mod, ir_as("train.rl", "dpo"));
    ir_module_set_attr(L->mod, ir_af("train.rl_beta", c->rl_beta));
    ir_module_set_attr(L->mod, ir_as("train.dpo_loss_type", types)); /* for the runtime's messages */
    if (c->rl_kind == FE_RL_DPO_TRAINER && c->dpo_sft_weight != 0) /* dpo_loss_type's sft (TRL's RPO) */
        ir_module_set_attr(L->mod, ir_af("train.dpo_sft_weight", c->dpo_sft_weight));
    if (c->rl_kind != FE_RL_DPO_TRAINER) { /* TRL's reference-free CPOTrainer (rl: simpo) or ORPOTrainer (rl: orpo) */
        ir_module_set_attr(L->mod, ir_as("train.rl_kind", c->rl_kind == FE_RL_SIMPO ? "simpo" : "orpo"));
        ir_module_set_attr(L->mod, ir_af("train.cpo_alpha", c->rl_kind == FE_RL_ORPO ? 1.0 : c->cpo_alpha));
    }
    return r[0];
}

void fe_token_shape(const fe_config *c, int64_t *rows, int64_t *row_len) {
    const int bins = c->sample_packing && !c->multipack_real_batches && c->micro_batch_size > 1;
    *rows = c->rl == FE_RL_DPO ? 2 * c->micro_batch_size : bins ? 1 : c->micro_batch_size;
    /* rl: simpo: TRL's CPOTrainer adds a bos and an eos after Axolotl's length filter and feeds the rows whole, so
     * a row may hold sequence_len + 2 tokens (runtime/prompt.c cpo_pair) */
    *row_len = bins ? c->micro_batch_size * c->sequence_len : c->sequence_len + (c->rl == FE_RL_DPO && c->rl_kind != FE_RL_DPO_TRAINER ? 2 : 0);
}

int fe_lower(const fe_config *c, const fe_model *m, int world_size, ir_module *mod, int32_t *loss_out, ax_diag *d) {
    lw L = {.mod = mod, .m = m, .dt = c->bf16 ? IR_BF16 : IR_F32};
    int64_t sp = c->sequence_parallel_degree > 0 ? c->sequence_parallel_degree : 1;
    ir_mesh_add(mod, "dp", world_size / sp);
    ir_mesh_add(mod, "sp", sp);
    module_facts(c, m, world_size, mod);

    int64_t B, S;
    fe_token_shape(c, &B, &S);
    const int64_t H = m->hidden_size, V = m->vocab_size;
    const int64_t nh = m->num_attention_heads, nkv = m->num_key_value_heads, hd = m->head_dim;
    const int64_t I = m->intermediate_size;
    char name[256];

    ir_program *p = ir_program_add(mod, "micro_step");
    ir_builder_init(&L.b, mod, p, d);
    ir_type tok = ir_type_make(IR_I32, 2, (int64_t[]){B, S});
    int32_t ids = ir_b_input(&L.b, "input_ids", tok);
    int32_t pos = ir_b_input(&L.b, "position_ids", tok);
    int32_t seg = ir_b_input(&L.b, "seq_ids", tok);
    int32_t tgt = ir_b_input(&L.b, "targets", tok);
    /* longrope: HF takes the long factors for a batch whose max(position_ids) + 1 passes original_max; only a row
     * longer than original_max can (positions restart with each packed sequence) */
    const int64_t longest = c->eval_sequence_len > c->sequence_len ? c->eval_sequence_len : c->sequence_len;
    L.max_position = m->rope_type == FE_ROPE_LONGROPE && longest > m->rope_original_max_position_embeddings
                         ? ir_b_input(&L.b, "max_position", ir_type_scalar(IR_I32))
                         : -1;
    if (L.max_position >= 0) {
        /* unpacked rows: Axolotl passes no position_ids, so HF's run over the collator's padded width (its pad
         * multiple: the runtime takes the regime from that width); batch_flattening passes each sequence's own */
        if (!c->batch_flattening) set_i(mod, "rope.pad_multiple", fe_neftune_multiple(c));
        if (c->rl == FE_RL_DPO) {
            /* TRL's reference pass runs on the training batch, whose regime then depends on the rows it is batched
             * with; axo's reference pass batches the pairs otherwise */
            ax_error(d, c->path ? c->path : "config",
                     "rl: dpo with LongRoPE rows past original_max_position_embeddings (%lld; sequence_len %lld): the "
                     "long/short choice follows each batch's longest row, and axo's reference pass batches rows "
                     "otherwise than TRL's; use a sequence_len of at most %lld",
                     (long long)m->rope_original_max_position_embeddings, (long long)longest,
                     (long long)m->rope_original_max_position_embeddings);
            return -1;
        }
    }

    /* output_router_logits: the routers' load-balancing loss over every MoE layer's tokens, each weighted by HF's
     * attention_mask as Axolotl's collator fills it (input aux_mask: a packed row's sequences 1, 2, ..., padding 0) */
    int any_moe = 0;
    for (int64_t l = 0; m->layer_moe && l < m->num_hidden_layers; l++) any_moe |= m->layer_moe[l];
    const int32_t lbm = any_moe && m->output_router_logits ? ir_b_input(&L.b, "aux_mask", ir_type_make(IR_F32, 2, (int64_t[]){B, S}))
                                                            : -1;
    int32_t lbs = -1; /* the stats of the layers so far */
    if (lbm >= 0 && c->rl == FE_RL_DPO) {
        ax_error(d, c->path ? c->path : "config", "output_router_logits with rl: dpo: TRL's DPOTrainer adds the routers' "
                 "load-balancing loss to each pair's, which axo does not implement; set output_router_logits: false");
        return -1;
    }
    int32_t embed = param2(&L, "embed_tokens.weight", V, H);
    mark_resized(&L, embed, c);
    /* nn.Embedding(padding_idx=pad_token_id): that row takes no gradient from the lookup (the attr absent without
     * a pad in range: other plans keep their bytes) */
    int32_t x = m->pad_token_id >= 0 && m->pad_token_id < V
                    ? ir_b(&L.b, IR_OP_embedding, IR_IN(embed, ids), IR_AT(ir_ai("padding_idx", m->pad_token_id)))
                    : ir_b(&L.b, IR_OP_embedding, IR_IN(embed, ids), IR_NOAT);
    if (m->gemma) {
        /* Gemma3TextScaledWordEmbedding: times torch.tensor(hidden ** 0.5) (float32) cast to the weights' dtype */
        float a = (float)sqrt((double)H);
        if (L.dt == IR_BF16) a = ax_round_bf16(a);
        x = ir_b(&L.b, IR_OP_scale, IR_IN(x), IR_AT(ir_af("alpha", (double)a)));
    }
    if (m->embedding_multiplier > 0 && m->embedding_multiplier != 1) /* Granite: a Python float times the embeddings */
        x = ir_b(&L.b, IR_OP_scale, IR_IN(x), IR_AT(ir_af("alpha", m->embedding_multiplier)));
    if (c->neftune_noise_alpha > 0) x = neftune(&L, x, c->neftune_noise_alpha, B, S, H);

    int64_t *ranges = ax_arena_alloc(mod->arena, sizeof(int64_t) * (size_t)(2 * m->num_hidden_layers));
    for (int64_t l = 0; l < m->num_hidden_layers; l++) {
        ranges[2 * l] = p->nnodes;
#define PNAME(suffix) (snprintf(name, sizeof name, "layers.%lld.%s", (long long)l, suffix), name)
        int32_t w_in = m->post_norm_only ? 0 : norm_param(&L, PNAME("input_layernorm.weight"), H);
        /* Phi-3: one qkv_proj (rows q | k | v) instead of three */
        const int fp = m->fused_proj;
        int32_t wqkv = fp ? param2(&L, PNAME("self_attn.qkv_proj.weight"), (nh + 2 * nkv) * hd, H) : 0;
        int32_t wq = fp ? 0 : param2(&L, PNAME("self_attn.q_proj.weight"), nh * hd, H);
        int32_t bq = m->attention_bias ? param1(&L, PNAME("self_attn.q_proj.bias"), nh * hd, "zeros") : 0;
        int32_t wk = fp ? 0 : param2(&L, PNAME("self_attn.k_proj.weight"), nkv * hd, H);
        int32_t bk = m->attention_bias ? param1(&L, PNAME("self_attn.k_proj.bias"), nkv * hd, "zeros") : 0;
        int32_t wv = fp ? 0 : param2(&L, PNAME("self_attn.v_proj.weight"), nkv * hd, H);
        int32_t bv = m->attention_bias ? param1(&L, PNAME("self_attn.v_proj.bias"), nkv * hd, "zeros") : 0;
        int32_t wo = param2(&L, PNAME("self_attn.o_proj.weight"), H, nh * hd);
        /* o_proj's bias: attention_bias in Llama, Qwen3 and Gemma 3 (Qwen2's q/k/v bias leaves o_proj without) */
        const int obias = m->attention_bias && m->arch != FE_ARCH_QWEN2 && m->arch != FE_ARCH_GLM; /* GLM: q/k/v only */
        int32_t bo = obias ? param1(&L, PNAME("self_attn.o_proj.bias"), H, "zeros") : 0;
        /* q/k norms: per head (Qwen3, Gemma 3), or over the whole projection (OLMo) */
        int32_t wqn = m->qk_norm ? norm_param(&L, PNAME("self_attn.q_norm.weight"), m->qk_norm_full ? nh * hd : hd) : 0;
        int32_t wkn = m->qk_norm ? norm_param(&L, PNAME("self_attn.k_norm.weight"), m->qk_norm_full ? nkv * hd : hd) : 0;
        int32_t w_post = norm_param(&L, PNAME("post_attention_layernorm.weight"), H);
        /* Gemma 3: a norm before the MLP and one after it (post_attention_layernorm normalizes the attention's
         * output before the residual add) */
        int32_t w_preff = m->gemma ? norm_param(&L, PNAME("pre_feedforward_layernorm.weight"), H) : 0;
        int32_t w_postff = m->gemma || m->post_norm_only ? norm_param(&L, PNAME("post_feedforward_layernorm.weight"), H) : 0;
        /* GLM-4: a norm on the attention's output and one on the MLP's, before each residual add */
        int32_t w_gpa = m->glm4 ? norm_param(&L, PNAME("post_self_attn_layernorm.weight"), H) : 0;
        int32_t w_gpm = m->glm4 ? norm_param(&L, PNAME("post_mlp_layernorm.weight"), H) : 0;
        /* an MoE layer: the router and the experts (Qwen3-MoE's mlp_only_layers and decoder_sparse_step leave
         * others dense) */
        const int moe = m->layer_moe && m->layer_moe[l], oss = m->arch == FE_ARCH_GPTOSS;
        const int64_t EI = m->moe_intermediate_size;
        int32_t wr = 0, br = 0, ow[4] = {0};
        if (moe && oss) oss_moe_params(&L, l, &wr, &br, ow);
        else if (moe) wr = moe_router(&L, l);
        int32_t xgu = moe && !oss ? moe_experts(&L, l, "gate_up_proj", m->moe_parts[0], m->moe_parts[1], 2 * EI, H) : 0;
        int32_t xd = moe && !oss ? moe_experts(&L, l, "down_proj", m->moe_parts[2], NULL, H, EI) : 0;
        /* Qwen2-MoE: the shared expert's SwiGLU MLP and its gate (nn.Linear(hidden, 1)) */
        const int64_t SI = moe ? m->shared_expert_intermediate_size : 0;
        int32_t wsg = SI ? param2(&L, PNAME("mlp.shared_expert.gate_proj.weight"), SI, H) : 0;
        int32_t wsu = SI ? param2(&L, PNAME("mlp.shared_expert.up_proj.weight"), SI, H) : 0;
        int32_t wsd = SI ? param2(&L, PNAME("mlp.shared_expert.down_proj.weight"), H, SI) : 0;
        int32_t wsgate = SI ? param2(&L, PNAME("mlp.shared_expert_gate.weight"), 1, H) : 0;
        /* gpt-oss: a learned sink logit per query head */
        int32_t sinks = m->attn_sinks ? add_param(&L, PNAME("self_attn.sinks"), ir_type_make(L.dt, 1, (int64_t[]){nh}), "normal", 1)
                                      : 0;
        /* Phi-3: one gate_up_proj (gate rows first) */
        const int fgu = fp || m->fused_mlp; /* Phi-3's and GLM's one gate_up_proj */
        int32_t wgu = fgu && !moe ? param2(&L, PNAME("mlp.gate_up_proj.weight"), 2 * I, H) : 0;
        int32_t wg = fgu || moe ? 0 : param2(&L, PNAME("mlp.gate_proj.weight"), I, H);
        int32_t wu = fgu || moe ? 0 : param2(&L, PNAME("mlp.up_proj.weight"), I, H);
        int32_t wd = moe ? 0 : param2(&L, PNAME("mlp.down_proj.weight"), H, I);
#undef PNAME
        int32_t h = m->post_norm_only ? x : rmsnorm(&L, x, w_in);
        int32_t qkv = fp ? linear(&L, h, wqkv, 0) : 0;
        int32_t q = fp ? slice(&L, qkv, 0, nh * hd) : linear(&L, h, wq, bq);
        int32_t k = fp ? slice(&L, qkv, nh * hd, nkv * hd) : linear(&L, h, wk, bk);
        if (m->qk_norm_full) { /* OLMo, OLMoE: q_norm(q_proj(x)) over heads x head_dim, before the split */
            q = rmsnorm(&L, q, wqn);
            k = rmsnorm(&L, k, wkn);
        }
        q = reshape(&L, q, 4, (int64_t[]){B, S, nh, hd});
        k = reshape(&L, k, 4, (int64_t[]){B, S, nkv, hd});
        int32_t v = reshape(&L, fp ? slice(&L, qkv, (nh + nkv) * hd, nkv * hd) : linear(&L, h, wv, bv), 4,
                            (int64_t[]){B, S, nkv, hd});
        if (m->qk_norm && !m->qk_norm_full) {
            q = rmsnorm(&L, q, wqn);
            k = rmsnorm(&L, k, wkn);
        }
        const int64_t win = m->layer_window ? m->layer_window[l] : 0;
        const int local = m->local_rope && win > 0; /* Gemma's and OLMo 3's sliding layers take the local RoPE base */
        if (!m->layer_rope || m->layer_rope[l]) { /* SmolLM3's NoPE layers take none */
            q = rope(&L, q, pos, local, 1);
            k = rope(&L, k, pos, local, 0);
        }
        int32_t att[2];
        /* Gemma: scores scaled by query_pre_attn_scalar^-0.5 */
        const double scale = m->attention_multiplier > 0   ? m->attention_multiplier /* Granite */
                             : m->query_pre_attn_scalar > 0 ? 1.0 / sqrt(m->query_pre_attn_scalar)
                                                            : 1.0 / sqrt((double)hd);
        /* HF's sliding window (q - kv < win) and Gemma 2's score cap; each attr absent otherwise: other plans keep
         * their bytes */
        ir_attr aat[4] = {ir_af("scale", scale), ir_ai("causal", 1)};
        int naat = 2;
        if (win > 0 && win < S) aat[naat++] = ir_ai("window", win);
        if (m->attn_softcap > 0) aat[naat++] = ir_af("softcap", m->attn_softcap);
        if (sinks)
            ir_bn(&L.b, IR_OP_attention, IR_IN(q, k, v, seg, sinks), naat, aat, att);
        else
            ir_bn(&L.b, IR_OP_attention, IR_IN(q, k, v, seg), naat, aat, att);
        int32_t o = linear(&L, reshape(&L, att[0], 3, (int64_t[]){B, S, nh * hd}), wo, bo);
        if (m->gemma || m->post_norm_only) o = rmsnorm(&L, o, w_post);
        if (m->glm4) o = rmsnorm(&L, o, w_gpa);
        o = residual_branch(&L, o);
        x = ir_b(&L.b, IR_OP_add, IR_IN(x, o), IR_NOAT);
        int32_t h2 = m->post_norm_only ? x : rmsnorm(&L, x, m->gemma ? w_preff : w_post);
        int32_t mo;
        if (moe) { /* the router's top-k of softmax(h2 gate^T), then each token's experts' SwiGLU MLPs, weighted */
            int32_t rt[2], ff[2], lg = linear(&L, h2, wr, br);
            ir_bn(&L.b, IR_OP_moe_route, IR_IN(lg),
                  IR_AT(ir_ai("k", m->num_experts_per_tok), ir_ai("norm", m->norm_topk_prob)), rt);
            if (lbm >= 0) {
                int32_t st = ir_b(&L.b, IR_OP_moe_lb_stats, IR_IN(lg, rt[1], lbm), IR_NOAT);
                lbs = lbs < 0 ? st : ir_b(&L.b, IR_OP_add, IR_IN(lbs, st), IR_NOAT);
            }
            if (oss)
                ir_bn(&L.b, IR_OP_moe_ffn_oss, IR_IN(h2, rt[1], rt[0], ow[0], ow[1], ow[2], ow[3]),
                      IR_AT(ir_af("alpha", m->swiglu_alpha), ir_af("limit", m->swiglu_limit)), ff);
            else
                ir_bn(&L.b, IR_OP_moe_ffn, IR_IN(h2, rt[1], rt[0], xgu, xd), IR_NOAT, ff);
            mo = ff[0];
            if (SI) { /* + sigmoid(h2 . shared_expert_gate) x shared_expert(h2), the gate's [B, S, 1] column spread
                       * over the hidden size by a product with ones (exact: one term) */
                int32_t sh = linear(&L, ir_b(&L.b, IR_OP_swiglu, IR_IN(linear(&L, h2, wsg, 0), linear(&L, h2, wsu, 0)), IR_NOAT),
                                    wsd, 0);
                int32_t g = ir_b(&L.b, IR_OP_sigmoid, IR_IN(linear(&L, h2, wsgate, 0)), IR_NOAT);
                int32_t ones = ir_b_fill(&L.b, 1.0, ir_type_make(L.dt, 2, (int64_t[]){H, 1}));
                int32_t gb = linear(&L, g, ones, 0); /* [B, S, 1] x [H, 1]^T: no reshape, so seqpar splits it as any */
                mo = ir_b(&L.b, IR_OP_add, IR_IN(mo, ir_b(&L.b, IR_OP_mul, IR_IN(gb, sh), IR_NOAT)), IR_NOAT);
            }
        } else {
            /* Gemma: gelu_pytorch_tanh(gate) * up; the others: silu(gate) * up */
            int32_t gu = fgu ? linear(&L, h2, wgu, 0) : 0;
            int32_t act = ir_b(&L.b, m->gemma ? IR_OP_geglu : IR_OP_swiglu,
                               IR_IN(fgu ? slice(&L, gu, 0, I) : linear(&L, h2, wg, 0), fgu ? slice(&L, gu, I, I) : linear(&L, h2, wu, 0)),
                               IR_NOAT);
            mo = linear(&L, act, wd, 0);
        }
        if (m->gemma || m->post_norm_only) mo = rmsnorm(&L, mo, w_postff);
        if (m->glm4) mo = rmsnorm(&L, mo, w_gpm);
        mo = residual_branch(&L, mo);
        x = ir_b(&L.b, IR_OP_add, IR_IN(x, mo), IR_NOAT);
        ranges[2 * l + 1] = p->nnodes;
    }
    int32_t wn = norm_param(&L, "norm.weight", H);
    int32_t head = m->tie_word_embeddings ? embed : param2(&L, "lm_head.weight", V, H);
    if (!m->tie_word_embeddings) mark_resized(&L, head, c);
    int32_t hn = rmsnorm(&L, x, wn), loss;
    /* Granite's logits / logits_scaling, as the final hidden state scaled before the head (the same product) */
    if (m->logits_scaling > 0 && m->logits_scaling != 1)
        hn = ir_b(&L.b, IR_OP_scale, IR_IN(hn), IR_AT(ir_af("alpha", 1.0 / m->logits_scaling)));
    if (c->rl == FE_RL_DPO) {
        loss = dpo_loss(&L, c, hn, head, tgt, B, S, H, V);
    } else if (c->liger_fused_linear_cross_entropy != 0) {
        /* Liger's fused linear cross entropy, axo's default (it is the same
         * math): the loss and its gradient in one pass over row chunks, so
         * the [tokens, vocab] logits never exist. It needs the loss scale in
         * the forward: the input autodiff seeds the backward with. */
        int32_t scale = ir_b_input(&L.b, "loss_scale", ir_type_scalar(IR_F32));
        int32_t r[3];
        lce(&L, hn, head, tgt, scale, fe_lce_chunk_rows(B * S, H, V), 0, 1, r);
        loss = r[0];
    } else {
        int32_t logits = linear(&L, hn, head, 0);
        loss = m->final_softcap > 0 ? ir_b(&L.b, IR_OP_cross_entropy, IR_IN(logits, tgt),
                                           IR_AT(ir_ai("ignore_index", -100), ir_af("softcap", m->final_softcap)))
                                    : ir_b(&L.b, IR_OP_cross_entropy, IR_IN(logits, tgt), IR_AT(ir_ai("ignore_index", -100)));
    }
    if (c->nunfrozen && freeze_except(&L, c, d) != 0) return -1;
    /* The runtime reads the summed loss of the step from @stats/loss_sum (DPO: its own stats, dpo_loss). */
    if (c->rl != FE_RL_DPO) {
        int ls = ir_global_add(mod, "stats/loss_sum", ir_type_scalar(IR_F32), IR_ROLE_TEMP, NULL, 0);
        ir_bn(&L.b, IR_OP_acc, IR_IN(IR_GLOBAL_REF(ls), loss), IR_NOAT, NULL);
    }
    if (lbs >= 0) {
        /* loss + router_aux_loss_coef x aux, as transformers adds it: the differentiated root is loss + aux x
         * aux_scale, the runtime's input that makes aux's adjoint router_aux_loss_coef / (micro-batches x ranks) of
         * the step (Axolotl 0.19's mean over them); @stats/aux_sum sums aux for the log */
        int32_t aux = ir_b(&L.b, IR_OP_moe_lb_loss, IR_IN(lbs), IR_NOAT);
        /* the layers' summed stats too: eval_step keeps them (passes/eval.c drops the aux itself), so that an eval
         * batch of several calls gets HF's aux over all its tokens (runtime/train.c run_eval) */
        const int64_t nst = 2 * m->num_experts + 1; /* moe_lb_stats: counts, probability sums, the weight */
        int lst = ir_global_add(mod, "stats/lb_stats", ir_type_make(IR_F32, 1, (int64_t[]){nst}), IR_ROLE_TEMP, NULL, 0);
        ir_bn(&L.b, IR_OP_store, IR_IN(IR_GLOBAL_REF(lst), lbs), IR_NOAT, NULL);
        int as = ir_global_add(mod, "stats/aux_sum", ir_type_scalar(IR_F32), IR_ROLE_TEMP, NULL, 0);
        ir_bn(&L.b, IR_OP_acc, IR_IN(IR_GLOBAL_REF(as), aux), IR_NOAT, NULL);
        int32_t ascale = ir_b_input(&L.b, "aux_scale", ir_type_scalar(IR_F32));
        loss = ir_b(&L.b, IR_OP_add, IR_IN(loss, ir_b(&L.b, IR_OP_mul, IR_IN(aux, ascale), IR_NOAT)), IR_NOAT);
        ir_module_set_attr(mod, ir_af("train.router_aux_loss_coef", m->router_aux_loss_coef));
        /* Axolotl's multipack collator is V2BatchSamplerDataCollatorForSeq2Seq (the packed attention_mask numbers
         * the sequences) for the model types of its SUPPORTED_MULTIPACK_MODEL_TYPES or flex_attention; OLMoE is not
         * among them, so its packed tokens weigh 1 (BatchSamplerDataCollatorForSeq2Seq) */
        if (m->arch == FE_ARCH_OLMOE && !c->attn_flex) set_i(mod, "train.aux_mask_ones", 1);
    }
    ir_module_set_attr(mod, ir_aints("layer_nodes", (int)(2 * m->num_hidden_layers), ranges));
    if (L.b.failed) return -1;
    *loss_out = loss;
    return 0;
}
