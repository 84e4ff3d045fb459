/* hfconfig.c — a Hugging Face model directory's config.json (jansson), and
 * the cross-checks between a training config and its model (see config.h).
 *
 * Defaults follow transformers' config classes for each family (Llama, Qwen2/3,
 * Mistral, Gemma 3, Granite, SmolLM3, OLMo 2/3, and the text models of the
 * multimodal Gemma 3 and Mistral 3);
 * both the classic layout (rope_theta / rope_scaling / torch_dtype) and the
 * transformers >= 5 one (rope_parameters / dtype) are read. */
#include "frontend/internal.h"
#include "runtime/adapter.h"
#include "runtime/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct hctx {
    const char *file; /* DIR/config.json */
    const char *kp;   /* "text_config." when reading a multimodal model's text config, else "" */
    ax_diag *d;
} hctx;

static void herr(const hctx *H, const char *key, const json_t *v, const char *expected) {
    char w[1024];
    char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    snprintf(w, sizeof w, "%s: %s%s", H->file, H->kp ? H->kp : "", key);
    ax_error(H->d, w, "expected %s, found %.60s", expected, s ? s : "nothing");
    free(s);
}

/* Bounds on the model's sizes, far above any real model's, that keep every
 * shape product and byte count the compiler forms within int64 (the plan as a
 * whole is bounded by fe_check_config_model), and token ids and positions
 * within the int32 the runtime holds them in. */
#define MAX_DIM (INT64_C(1) << 20)   /* hidden_size, intermediate_size */
#define MAX_COUNT (INT64_C(1) << 12) /* layers, heads, head_dim */
#define MAX_I32 INT64_C(2147483647)  /* vocab_size, positions */

/* An integer in [min, max]; required ones report their absence. */
static int64_t get_int(const hctx *H, const json_t *o, const char *key, int64_t dflt, int required, int64_t min,
                       int64_t max) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) herr(H, key, NULL, min > 0 ? "a positive integer" : "an integer");
        return dflt;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        herr(H, key, v, min > 0 ? "a positive integer" : "a non-negative integer");
        return dflt;
    }
    if (json_integer_value(v) > max) {
        char what[64];
        snprintf(what, sizeof what, "an integer of at most %lld", (long long)max);
        herr(H, key, v, what);
        return dflt;
    }
    return (int64_t)json_integer_value(v);
}

static double get_num(const hctx *H, const json_t *o, const char *prefix, const char *key, double dflt, int required) {
    json_t *v = json_object_get(o, key);
    char k[128];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    if (!v || json_is_null(v)) {
        if (required) herr(H, k, NULL, "a number");
        return dflt;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0)) {
        herr(H, k, v, "a positive number");
        return dflt;
    }
    return json_number_value(v);
}

static int get_bool(const hctx *H, const json_t *o, const char *key, int dflt) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_boolean(v)) {
        herr(H, key, v, "true or false");
        return dflt;
    }
    return json_is_true(v);
}

/* bos/eos/pad: an integer, null (-1), or a list (the first id). */
static int64_t get_token(const hctx *H, const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!v || json_is_null(v)) return -1;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        herr(H, key, v, "a token id");
        return -1;
    }
    return (int64_t)json_integer_value(v);
}

/* yarn_get_mscale: 0.1 mscale ln(scale) + 1, 1 for scale <= 1 */
static double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0; }

/* A number or null/absent (0 then): yarn's optional keys, which HF reads with `or` / truthiness */
static double opt_num(const hctx *H, const json_t *o, const char *prefix, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    char k[128];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        herr(H, k, v, "a number or null");
        return 0;
    }
    return json_number_value(v);
}

/* longrope's short_factor / long_factor: a list of positive numbers, its length checked against the rotated dims by
 * the caller */
static double *factor_list(const hctx *H, const json_t *o, const char *prefix, const char *key, int *n, ax_arena *arena) {
    json_t *v = json_object_get(o, key);
    char k[128];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    size_t len = json_is_array(v) ? json_array_size(v) : 0;
    if (len > (size_t)MAX_COUNT) {
        char what[96];
        snprintf(what, sizeof what, "at most %lld factors (one per rotated pair of dims)", (long long)MAX_COUNT);
        herr(H, k, v, what);
        return NULL;
    }
    int ok = len > 0;
    for (size_t i = 0; ok && i < len; i++) {
        json_t *e = json_array_get(v, i);
        ok = json_is_number(e) && json_number_value(e) > 0 && isfinite(json_number_value(e));
    }
    if (!ok) {
        herr(H, k, v, "a list of positive numbers, one per rotated pair of dims");
        return NULL;
    }
    double *f = ax_arena_alloc(arena, sizeof(double) * len);
    for (size_t i = 0; i < len; i++) f[i] = json_number_value(json_array_get(v, i));
    *n = (int)len;
    return f;
}

/* One RoPE parameter dict (rope_scaling, rope_parameters, or Gemma's full_attention one) as transformers 5's
 * standardize_rope_params and ROPE_INIT_FUNCTIONS read it. root: the model's config object (its top-level
 * original_max_position_embeddings, which Phi3Config always has, beats the dict's); nested: a per-layer-type dict
 * (Gemma 3, OLMo 3), where the top-level original max is not read and yarn's truncate is read from the outer
 * rope_parameters (so it is always true). */
static void rope(const hctx *H, const json_t *rs, const char *prefix, const json_t *root, int nested, fe_model *m,
                 ax_arena *arena) {
    char k[128];
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    snprintf(k, sizeof k, "%srope_type", prefix);
    static const char *const names[] = {"default", "linear", "llama3", "dynamic", "yarn", "longrope"};
    static const fe_rope_type types[] = {FE_ROPE_DEFAULT, FE_ROPE_LINEAR, FE_ROPE_LLAMA3,
                                         FE_ROPE_DYNAMIC, FE_ROPE_YARN,   FE_ROPE_LONGROPE};
    int which = -1;
    const int phi3 = m->arch == FE_ARCH_PHI3;
    for (int i = 0; i < 6 && json_is_string(t); i++)
        if (!strcmp(json_string_value(t), names[i])) which = i;
    /* Phi3Config reads the older names su and yarn as longrope, and takes no other scaling */
    if (phi3 && json_is_string(t) && !strcmp(json_string_value(t), "su")) which = 5;
    if (phi3 && which == 4) which = 5;
    if (phi3 && which > 0 && which != 5) which = -1;
    if (which < 0) {
        herr(H, k, t, phi3 ? "default, longrope, su or yarn (Phi3Config reads the last two as longrope)"
                           : "one of default, linear, llama3, dynamic, yarn, longrope");
        return;
    }
    m->rope_type = types[which];
    m->rope_attention_factor = 1.0;
    if (m->rope_type == FE_ROPE_DEFAULT) return;
    json_t *om = json_object_get(rs, "original_max_position_embeddings");
    snprintf(k, sizeof k, "%soriginal_max_position_embeddings", prefix);
    json_t *top_om = json_object_get(root, "original_max_position_embeddings");
    const int uses_om = m->rope_type == FE_ROPE_LLAMA3 || m->rope_type == FE_ROPE_YARN || m->rope_type == FE_ROPE_LONGROPE;
    m->rope_original_max_position_embeddings = m->max_position_embeddings;
    if (uses_om && phi3) { /* Phi3Config.original_max_position_embeddings, default 4096 (null: HF refuses) */
        if (top_om && json_is_null(top_om)) herr(H, "original_max_position_embeddings", top_om, "a positive integer");
        m->rope_original_max_position_embeddings = get_int(H, root, "original_max_position_embeddings", 4096, 0, 1, MAX_I32);
    } else if (uses_om && !nested && top_om && !json_is_null(top_om)) {
        m->rope_original_max_position_embeddings =
            get_int(H, root, "original_max_position_embeddings", m->max_position_embeddings, 0, 1, MAX_I32);
    } else if (om && !json_is_null(om)) {
        if (!json_is_integer(om) || json_integer_value(om) <= 0 || json_integer_value(om) > MAX_I32)
            herr(H, k, om, "a positive integer");
        else
            m->rope_original_max_position_embeddings = (int64_t)json_integer_value(om);
    }
    const double omax = (double)m->rope_original_max_position_embeddings;
    /* longrope: factor absent means max_position_embeddings / original_max_position_embeddings (yarn's is a
     * required key: transformers refuses a yarn config without it) */
    const int derived = m->rope_type == FE_ROPE_LONGROPE &&
                        (!json_object_get(rs, "factor") || json_is_null(json_object_get(rs, "factor")));
    m->rope_factor = derived ? (double)m->max_position_embeddings / omax : get_num(H, rs, prefix, "factor", 1, 1);
    if (m->rope_type == FE_ROPE_LLAMA3) {
        m->rope_low_freq_factor = get_num(H, rs, prefix, "low_freq_factor", 1, 1);
        m->rope_high_freq_factor = get_num(H, rs, prefix, "high_freq_factor", 4, 1);
    }
    const double f = m->rope_factor, given = opt_num(H, rs, prefix, "attention_factor");
    json_t *ga = json_object_get(rs, "attention_factor");
    if (ga && !json_is_null(ga) && !(given > 0)) { /* HF would scale cos and sin by it: 0 or less trains nothing */
        snprintf(k, sizeof k, "%sattention_factor", prefix);
        herr(H, k, ga, "a positive number or null");
    }
    if (m->rope_type == FE_ROPE_YARN) {
        const double ms = opt_num(H, rs, prefix, "mscale"), msa = opt_num(H, rs, prefix, "mscale_all_dim");
        m->rope_attention_factor = given ? given : ms && msa ? yarn_mscale(f, ms) / yarn_mscale(f, msa) : yarn_mscale(f, 1);
        m->rope_beta_fast = opt_num(H, rs, prefix, "beta_fast");
        m->rope_beta_slow = opt_num(H, rs, prefix, "beta_slow");
        if (!m->rope_beta_fast) m->rope_beta_fast = 32; /* HF: `or 32`, `or 1` */
        if (!m->rope_beta_slow) m->rope_beta_slow = 1;
        static const char *const betas[] = {"beta_fast", "beta_slow"};
        for (int i = 0; i < 2; i++)
            if (!((i ? m->rope_beta_slow : m->rope_beta_fast) > 0)) {
                snprintf(k, sizeof k, "%s%s", prefix, betas[i]);
                herr(H, k, json_object_get(rs, betas[i]), "a positive number of rotations, or null");
            }
        /* HF: rope_parameters.get("truncate", True) and `if truncate`: null means no truncation; a nested config's
         * is read from the outer dict, which never has it */
        json_t *tr = json_object_get(rs, "truncate");
        m->rope_truncate = 1;
        if (!nested && tr && json_is_null(tr)) {
            m->rope_truncate = 0;
        } else if (!nested && tr) {
            snprintf(k, sizeof k, "%struncate", prefix);
            if (!json_is_boolean(tr)) herr(H, k, tr, "true, false or null");
            else m->rope_truncate = json_is_true(tr);
        }
    } else if (m->rope_type == FE_ROPE_LONGROPE) {
        m->rope_attention_factor = given ? given : f <= 1 ? 1.0 : sqrt(1 + log(f) / log(omax));
        m->rope_short_factor = factor_list(H, rs, prefix, "short_factor", &m->rope_n_factors, arena);
        int nl = 0;
        m->rope_long_factor = factor_list(H, rs, prefix, "long_factor", &nl, arena);
        if (m->rope_short_factor && m->rope_long_factor && nl != m->rope_n_factors) {
            snprintf(k, sizeof k, "%slong_factor", prefix);
            char what[96];
            snprintf(what, sizeof what, "as many factors as short_factor (%d)", m->rope_n_factors);
            herr(H, k, json_object_get(rs, "long_factor"), what);
        }
    }
}

/* Gemma 3's RoPE as Gemma3TextConfig.convert_rope_params_to_dict builds it: full-attention layers take
 * rope_parameters.full_attention (or the default RoPE) updated with a top-level rope_scaling, their rope_theta
 * from it else the top-level rope_theta (1e6); sliding layers rope_parameters.sliding_attention (the default RoPE
 * only), their rope_theta from it else rope_local_base_freq (1e4). transformers >= 5 writes rope_parameters, the
 * Hub's configs the top-level keys. */
static void gemma_rope(const hctx *H, const json_t *root, fe_model *m, ax_arena *arena) {
    /* OLMo 3 (Olmo3Config.convert_rope_params_to_dict): the same, but full layers default to 5e5 and sliding ones
     * take default_theta 5e5 unless rope_parameters.sliding_attention names one (the top-level rope_theta has
     * been popped for the full layers by then) */
    const int olmo = m->arch == FE_ARCH_OLMO3;
    const double top_theta = get_num(H, root, "", "rope_theta", olmo ? 5e5 : 1e6, 0);
    const double top_local = olmo ? 5e5 : get_num(H, root, "", "rope_local_base_freq", 10000.0, 0);
    json_t *rp = json_object_get(root, "rope_parameters"), *full = NULL, *slide = NULL;
    if (rp && !json_is_null(rp)) {
        full = json_is_object(rp) ? json_object_get(rp, "full_attention") : NULL;
        slide = json_is_object(rp) ? json_object_get(rp, "sliding_attention") : NULL;
        if ((full && !json_is_null(full) && !json_is_object(full)) || (slide && !json_is_null(slide) && !json_is_object(slide)) ||
            !json_is_object(rp)) {
            herr(H, "rope_parameters", rp, "an object of full_attention and sliding_attention parameters");
            return;
        }
    }
    json_t *f = json_is_object(full) ? json_deep_copy(full) : json_object();
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        if (!json_is_object(rs)) herr(H, "rope_scaling", rs, "null or an object");
        else json_object_update(f, rs);
    }
    if (!json_object_get(f, "rope_type") && !json_object_get(f, "type")) json_object_set_new(f, "rope_type", json_string("default"));
    m->rope_theta = json_object_get(f, "rope_theta") ? get_num(H, f, "rope_parameters.full_attention.", "rope_theta", top_theta, 0)
                                                     : top_theta;
    /* transformers nests these per layer type whichever way the file writes them */
    rope(H, f, rp && !json_is_null(rp) ? "rope_parameters.full_attention." : "rope_scaling.", root, 1, m, arena);
    json_decref(f);
    m->rope_local_theta = top_local;
    if (json_is_object(slide)) {
        if (json_object_get(slide, "rope_theta"))
            m->rope_local_theta = get_num(H, slide, "rope_parameters.sliding_attention.", "rope_theta", top_local, 0);
        json_t *t = json_object_get(slide, "rope_type");
        if (t && !json_is_null(t) && (!json_is_string(t) || strcmp(json_string_value(t), "default")))
            herr(H, "rope_parameters.sliding_attention.rope_type", t, "\"default\" (the sliding layers' RoPE)");
    }
}

/* Gemma 2's and 3's other facts, and what axo refuses of them. */
static void gemma_facts(const hctx *H, const json_t *root, fe_model *m) {
    m->norm_offset = 1.0;
    m->query_pre_attn_scalar = get_num(H, root, "", "query_pre_attn_scalar", 256, 0);
    /* tanh soft-capping of the logits and of the attention scores: Gemma2Config's defaults 30 and 50,
     * Gemma3TextConfig's none; null: none. Gemma3ForConditionalGeneration never reads final_logit_softcapping
     * (transformers caps the logits in Gemma3ForCausalLM only), so neither does axo there. */
    static const char *const caps[] = {"final_logit_softcapping", "attn_logit_softcapping"};
    double *cv[] = {&m->final_softcap, &m->attn_softcap};
    static const double cap0[] = {30.0, 50.0};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, caps[i]);
        *cv[i] = v && json_is_null(v) ? 0.0 : get_num(H, root, "", caps[i], m->gemma2 ? cap0[i] : 0.0, 0);
    }
    if (m->multimodal) m->final_softcap = 0.0;
    if (get_bool(H, root, "use_bidirectional_attention", 0))
        herr(H, "use_bidirectional_attention", json_object_get(root, "use_bidirectional_attention"),
             "false (bidirectional Gemma attention is not implemented)");
}

/* Qwen3MoeForCausalLM, Qwen2MoeForCausalLM and MixtralForCausalLM: their sparse MLP blocks as transformers 5.25 builds them, and what
 * axo refuses of them. */
static void moe_facts(const hctx *H, const json_t *root, fe_model *m, ax_arena *arena) {
    const int mixtral = !strcmp(m->arch_name, "MixtralForCausalLM"), oss = m->arch == FE_ARCH_GPTOSS,
              olmoe = m->arch == FE_ARCH_OLMOE; /* OlmoeConfig: Qwen3-MoE's block, 64 experts of intermediate_size */
    const int q2 = !strcmp(m->arch_name, "Qwen2MoeForCausalLM"); /* Qwen2MoeConfig: 60 experts, 4 a token, 1408 wide */
    m->num_experts = get_int(H, root, mixtral || oss ? "num_local_experts" : "num_experts",
                             mixtral ? 8 : olmoe ? 64 : q2 ? 60 : 128, 0, mixtral || oss, MAX_COUNT);
    m->num_experts_per_tok = get_int(H, root, "num_experts_per_tok", mixtral ? 2 : oss || q2 ? 4 : 8, 0, 1, MAX_COUNT);
    if (m->num_experts > 0 && m->num_experts_per_tok > m->num_experts) {
        char what[96];
        snprintf(what, sizeof what, "at most the %lld experts", (long long)m->num_experts);
        herr(H, "num_experts_per_tok", json_object_get(root, "num_experts_per_tok"), what);
    }
    /* Mixtral's and gpt-oss's experts are intermediate_size wide and always renormalise their top-k weights (gpt-oss:
     * a softmax over the top-k logits, the same weights) */
    m->moe_intermediate_size = mixtral || oss || olmoe ? m->intermediate_size
                                                       : get_int(H, root, "moe_intermediate_size", q2 ? 1408 : 768, 0, 1, MAX_DIM);
    m->norm_topk_prob = mixtral || oss ? 1 : get_bool(H, root, "norm_topk_prob", 0);
    if (oss) { /* GptOssConfig's clamped GLU: swiglu_alpha (1.702), swiglu_limit (7.0) */
        m->swiglu_alpha = get_num(H, root, "", "swiglu_alpha", 1.702, 0);
        m->swiglu_limit = get_num(H, root, "", "swiglu_limit", 7.0, 0);
        if (!(m->swiglu_limit > 0))
            herr(H, "swiglu_limit", json_object_get(root, "swiglu_limit"), "a positive number");
        m->attn_sinks = 1;
    }
    m->moe_block = mixtral ? "block_sparse_moe" : "mlp";
    m->moe_parts[0] = mixtral ? "w1" : "gate_proj";
    m->moe_parts[1] = mixtral ? "w3" : "up_proj";
    m->moe_parts[2] = mixtral ? "w2" : "down_proj";
    /* the load-balancing loss: transformers adds router_aux_loss_coef (0.001 by default in both configs; 0 or any
     * finite value taken) x load_balancing_loss_func to the loss */
    m->output_router_logits = get_bool(H, root, "output_router_logits", 0);
    m->router_aux_loss_coef = olmoe ? 0.01 : 0.001; /* OlmoeConfig's default */
    json_t *rc = json_object_get(root, "router_aux_loss_coef");
    if (rc && !json_is_null(rc)) {
        if (!json_is_number(rc) || !isfinite(json_number_value(rc)))
            herr(H, "router_aux_loss_coef", rc, "a finite number");
        else
            m->router_aux_loss_coef = json_number_value(rc);
    }
    json_t *jn = json_object_get(root, "router_jitter_noise");
    if (jn && !json_is_null(jn) && (!json_is_number(jn) || json_number_value(jn) != 0))
        herr(H, "router_jitter_noise", jn, "0 (Mixtral's training-time jitter on the router's input is not implemented)");
    if (!mixtral && !oss && !olmoe && get_bool(H, root, "use_sliding_window", 0))
        herr(H, "use_sliding_window", json_object_get(root, "use_sliding_window"),
             "false (Qwen3-MoE's and Qwen2-MoE's sliding-window layers are not implemented)");
    /* Qwen2MoeSparseMoeBlock's shared expert (Qwen2MoeConfig's default width 5632) */
    if (q2)
        m->shared_expert_intermediate_size = get_int(H, root, "shared_expert_intermediate_size", 5632, 0, 1, MAX_DIM);
    /* Qwen3MoeDecoderLayer: sparse unless in mlp_only_layers, and only every decoder_sparse_step-th layer */
    const int64_t step = mixtral || oss || olmoe ? 1 : get_int(H, root, "decoder_sparse_step", 1, 0, 1, MAX_COUNT);
    json_t *only = mixtral || oss || olmoe ? NULL : json_object_get(root, "mlp_only_layers");
    if (only && !json_is_null(only) && !json_is_array(only)) herr(H, "mlp_only_layers", only, "a list of layer indices");
    if (m->num_hidden_layers > 0) m->layer_moe = ax_arena_alloc(arena, sizeof(int) * (size_t)m->num_hidden_layers);
    for (int64_t l = 0; m->layer_moe && l < m->num_hidden_layers; l++) {
        int dense = 0;
        for (size_t i = 0; json_is_array(only) && i < json_array_size(only); i++) {
            json_t *v = json_array_get(only, i);
            if (!json_is_integer(v)) {
                herr(H, "mlp_only_layers", only, "a list of layer indices");
                break;
            }
            dense |= json_integer_value(v) == l;
        }
        m->layer_moe[l] = !dense && m->num_experts > 0 && (l + 1) % step == 0;
    }
}

/* Tied by the config (tie_word_embeddings, or its default), yet the checkpoint holds an lm_head of other values:
 * transformers then does not tie them (and says so); nor does axo. */
static void untie_if_differs(fe_model *m, const rt_st_tensor *head, const rt_st_file *hf_, const rt_st_tensor *emb,
                             const rt_st_file *ef, const char *file, ax_diag *d) {
    if (!m->tie_word_embeddings || !head || !emb) return;
    if (head->dtype == emb->dtype && head->end - head->begin == emb->end - emb->begin &&
        !memcmp(rt_st_data(hf_, head), rt_st_data(ef, emb), (size_t)(emb->end - emb->begin)))
        return;
    m->tie_word_embeddings = 0;
    m->untied_by_weights = 1;
    ax_warn(d, file, "tie_word_embeddings is true (the default when absent), but the weights' %s differs from the "
            "embedding: untied, as transformers loads it (write tie_word_embeddings: false to say so)",
            m->head_ckpt ? m->head_ckpt : "lm_head.weight");
}

/* A causal LM that ties: whether its weights hold an lm_head of their own (see untie_if_differs). */
static void causal_tie(const char *dir, const char *file, fe_model *m, ax_arena *arena, ax_diag *d) {
    if (!m->tie_word_embeddings || (!is_file(ax_arena_printf(arena, "%s/model.safetensors", dir)) &&
                                    !is_file(ax_arena_printf(arena, "%s/model.safetensors.index.json", dir))))
        return;
    rt_st_model sm;
    if (rt_st_model_open(dir, &sm, d) != 0) return;
    const rt_st_file *hf_ = NULL, *ef = NULL;
    const rt_st_tensor *head = rt_st_model_find(&sm, "lm_head.weight", &hf_);
    const rt_st_tensor *emb = rt_st_model_find(&sm, "model.embed_tokens.weight", &ef);
    untie_if_differs(m, head, hf_, emb, ef, file, d);
    rt_st_model_close(&sm);
}

/* Where the multimodal Gemma 3's text weights are in its checkpoint (see fe_model): the Hub's layout
 * (language_model.model.*), or transformers 5's module names (model.language_model.*); a dir without weights
 * (drawn at random) is saved as transformers saves a new model, in the Hub's layout. */
static void mm_layout(const char *dir, const char *file, fe_model *m, ax_arena *arena, ax_diag *d) {
    m->text_ckpt = "language_model.model.";
    m->head_ckpt = "lm_head.weight";
    if (!is_file(ax_arena_printf(arena, "%s/model.safetensors", dir)) &&
        !is_file(ax_arena_printf(arena, "%s/model.safetensors.index.json", dir)))
        return;
    rt_st_model sm;
    if (rt_st_model_open(dir, &sm, d) != 0) return;
    m->carried = 1;
    static const char *const text[] = {"language_model.model.", "model.language_model."};
    int found = -1;
    for (int i = 0; i < 2 && found < 0; i++)
        if (rt_st_model_find(&sm, ax_arena_printf(arena, "%sembed_tokens.weight", text[i]), NULL)) found = i;
    if (found < 0)
        ax_error(d, dir, "the weights hold neither language_model.model.embed_tokens.weight nor "
                 "model.language_model.embed_tokens.weight: not Gemma3ForConditionalGeneration's text model (%s)", file);
    else
        m->text_ckpt = text[found];
    const rt_st_file *hf_ = NULL, *ef = NULL;
    const rt_st_tensor *head = rt_st_model_find(&sm, "language_model.lm_head.weight", &hf_);
    if (head) m->head_ckpt = "language_model.lm_head.weight";
    else head = rt_st_model_find(&sm, "lm_head.weight", &hf_);
    const rt_st_tensor *emb = found < 0 ? NULL : rt_st_model_find(&sm, ax_arena_printf(arena, "%sembed_tokens.weight", m->text_ckpt), &ef);
    untie_if_differs(m, head, hf_, emb, ef, file, d);
    /* the other modules (the tower's, the projector's), as transformers names them: model.vision_tower.*, ... */
    m->foreign = ax_arena_alloc(arena, sizeof *m->foreign * (size_t)(sm.nentries + 1));
    for (int e = 0; e < sm.nentries; e++) {
        const char *k = sm.entries[e].name;
        if (!strncmp(k, m->text_ckpt, strlen(m->text_ckpt)) || strstr(k, "lm_head.")) continue;
        char mod[1024];
        rt_adapter_module_name(k, mod, sizeof mod);
        size_t n = strlen(mod);
        if (n > 7 && !strcmp(mod + n - 7, ".weight")) n -= 7;
        else if (n > 5 && !strcmp(mod + n - 5, ".bias")) n -= 5;
        const char *name = ax_arena_strndup(arena, mod, n);
        if (!m->nforeign || strcmp(m->foreign[m->nforeign - 1], name)) m->foreign[m->nforeign++] = name;
    }
    rt_st_model_close(&sm);
}

int fe_model_load(const char *dir, fe_model *out, ax_arena *arena, ax_diag *d) {
    return fe_model_load_with(dir, NULL, out, arena, d);
}

int fe_model_load_with(const char *dir, const char *overrides, fe_model *out, ax_arena *arena, ax_diag *d) {
    int errors0 = d->nerrors;
    memset(out, 0, sizeof *out);
    out->dir = ax_arena_strdup(arena, dir);
    const char *file = ax_arena_printf(arena, "%s/config.json", dir);
    hctx H = {.file = file, .d = d};
    size_t len;
    char *text = ax_read_file(file, &len, d);
    if (!text) return -1;
    out->config_json = ax_arena_alloc(arena, len + 1);
    memcpy(out->config_json, text, len);
    out->config_json_len = len;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    char w[1024];
    if (!root) {
        ax_error(d, ax_loc(w, sizeof w, file, je.line, je.column), "invalid JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        herr(&H, "(top level)", root, "an object");
        json_decref(root);
        return -1;
    }
    if (overrides) { /* model_config: Axolotl sets each key on the loaded config (setattr), and saves the result */
        json_t *ov = json_loads(overrides, 0, &je);
        if (!json_is_object(ov)) {
            ax_error(d, "model_config", "bad overrides record");
            json_decref(ov);
            json_decref(root);
            return -1;
        }
        json_object_update(root, ov);
        json_decref(ov);
        char *t = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
        size_t tl = strlen(t);
        out->config_json = ax_arena_alloc(arena, tl + 2);
        memcpy(out->config_json, t, tl);
        out->config_json[tl] = '\n';
        out->config_json_len = tl + 1;
        free(t);
        H.file = ax_arena_printf(arena, "%s (with model_config)", file);
    }
    /* the causal LMs, then the multimodal models whose language model axo trains on text (see fe_model) */
    static const char *const archs[] = {"LlamaForCausalLM",   "Qwen2ForCausalLM",  "Qwen3ForCausalLM",
                                        "MistralForCausalLM", "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration",
                                        "Mistral3ForConditionalGeneration", "GraniteForCausalLM", "SmolLM3ForCausalLM",
                                        "Olmo2ForCausalLM", "Olmo3ForCausalLM", "Phi3ForCausalLM",
                                        "Qwen3MoeForCausalLM", "MixtralForCausalLM", "GptOssForCausalLM",
                                        "OlmoeForCausalLM", "Ministral3ForCausalLM", "Gemma2ForCausalLM",
                                        "Qwen2MoeForCausalLM", "GlmForCausalLM", "Glm4ForCausalLM"};
    static const char *const layers[] = {"LlamaDecoderLayer",   "Qwen2DecoderLayer",  "Qwen3DecoderLayer",
                                         "MistralDecoderLayer", "Gemma3DecoderLayer", "Gemma3DecoderLayer",
                                         "MistralDecoderLayer", "GraniteDecoderLayer", "SmolLM3DecoderLayer",
                                         "Olmo2DecoderLayer",   "Olmo3DecoderLayer", "Phi3DecoderLayer",
                                         "Qwen3MoeDecoderLayer", "MixtralDecoderLayer", "GptOssDecoderLayer",
                                         "OlmoeDecoderLayer", "Ministral3DecoderLayer", "Gemma2DecoderLayer",
                                         "Qwen2MoeDecoderLayer", "GlmDecoderLayer", "Glm4DecoderLayer"};
    /* each multimodal model's text model: its text_config's model_type, the family it is */
    static const char *const text_type[] = {NULL, NULL, NULL, NULL, NULL, "gemma3_text", "mistral",
                                            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                            NULL, NULL};
    static const fe_arch family[] = {FE_ARCH_LLAMA,   FE_ARCH_QWEN2,   FE_ARCH_QWEN3,   FE_ARCH_MISTRAL,
                                     FE_ARCH_GEMMA3,  FE_ARCH_GEMMA3,  FE_ARCH_MISTRAL, FE_ARCH_GRANITE,
                                     FE_ARCH_SMOLLM3, FE_ARCH_OLMO2,   FE_ARCH_OLMO3,   FE_ARCH_PHI3,
                                     FE_ARCH_QWEN3,   FE_ARCH_MISTRAL, FE_ARCH_GPTOSS,  FE_ARCH_OLMOE,
                                     FE_ARCH_MISTRAL, FE_ARCH_GEMMA3,  FE_ARCH_QWEN2,   FE_ARCH_GLM,
                                     FE_ARCH_GLM};
    json_t *a = json_object_get(root, "architectures");
    json_t *a0 = json_is_array(a) ? json_array_get(a, 0) : NULL;
    int which = -1;
    for (int i = 0; i < (int)AX_ARRAY_LEN(archs) && json_is_string(a0); i++)
        if (!strcmp(json_string_value(a0), archs[i])) which = i;
    if (which < 0) {
        herr(&H, "architectures[0]", a0 ? a0 : a,
             "one of LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, Gemma3ForCausalLM, "
             "GraniteForCausalLM, SmolLM3ForCausalLM, Olmo2ForCausalLM, Olmo3ForCausalLM, Phi3ForCausalLM, "
             "Qwen3MoeForCausalLM, MixtralForCausalLM, GptOssForCausalLM, OlmoeForCausalLM, Ministral3ForCausalLM, "
             "Gemma2ForCausalLM, Qwen2MoeForCausalLM, GlmForCausalLM, Glm4ForCausalLM, Gemma3ForConditionalGeneration, "
             "Mistral3ForConditionalGeneration");
        json_decref(root);
        return -1;
    }
    fe_model *m = out;
    m->arch = family[which];
    m->arch_name = archs[which];
    m->decoder_layer_cls = layers[which];
    m->gemma2 = !strcmp(archs[which], "Gemma2ForCausalLM"); /* Gemma 3's family, with its own differences */
    m->glm4 = !strcmp(archs[which], "Glm4ForCausalLM");
    m->rope_interleave = m->fused_mlp = m->arch == FE_ARCH_GLM;
    json_t *top = root; /* the file's object; root: the text model's (a multimodal model's text_config) */
    if (text_type[which]) {
        json_t *tc = json_object_get(root, "text_config");
        json_t *mt = json_is_object(tc) ? json_object_get(tc, "model_type") : NULL;
        const int gemma = family[which] == FE_ARCH_GEMMA3;
        if ((tc && !json_is_null(tc) && !json_is_object(tc)) || (!gemma && !json_is_object(tc))) {
            herr(&H, "text_config", tc, gemma ? "an object (Gemma3TextConfig's keys)" : "an object (the language model's config)");
            json_decref(root);
            return -1;
        }
        /* Mistral 3's text model: Mistral's, or Ministral 3's (Ministral-3-*-2512) */
        const int min3 = !gemma && json_is_string(mt) && !strcmp(json_string_value(mt), "ministral3");
        m->ministral3 = min3;
        if (mt && !json_is_null(mt) && !min3 && (!json_is_string(mt) || strcmp(json_string_value(mt), text_type[which]))) {
            char what[160];
            snprintf(what, sizeof what, gemma ? "\"%s\" (the only language model axo implements for %s)"
                                              : "\"%s\" or \"ministral3\" (the language models axo implements for %s)",
                     text_type[which], archs[which]);
            herr(&H, "text_config.model_type", mt, what);
            json_decref(root);
            return -1;
        }
        m->multimodal = 1;
        m->text_module = "model.language_model.";
        root = json_is_object(tc) ? json_incref(tc) : json_object(); /* absent: every Gemma3TextConfig default */
        H.kp = "text_config.";
    } else {
        json_incref(root);
        m->ministral3 = !strcmp(archs[which], "Ministral3ForCausalLM");
    }
    /* Gemma3TextConfig has a default for every size (gemma-3-4b's text_config leaves most of them out); the
     * others' configs always carry them */
    const int g3 = m->arch == FE_ARCH_GEMMA3, req = !g3;
    m->hidden_size = get_int(&H, root, "hidden_size", g3 ? 2304 : 0, req, 1, MAX_DIM);
    m->intermediate_size = get_int(&H, root, "intermediate_size", g3 ? 9216 : 0, req, 1, MAX_DIM);
    m->num_hidden_layers = get_int(&H, root, "num_hidden_layers", g3 ? 26 : 0, req, 1, MAX_COUNT);
    m->num_attention_heads = get_int(&H, root, "num_attention_heads", g3 ? 8 : 0, req, 1, MAX_COUNT);
    /* Gemma3TextConfig's and Qwen3MoeConfig's default is 4, the others' the query heads' */
    const int oss = m->arch == FE_ARCH_GPTOSS;
    m->num_key_value_heads = get_int(&H, root, "num_key_value_heads",
                                     !strcmp(archs[which], "Qwen2MoeForCausalLM")            ? 16 /* Qwen2MoeConfig's */
                                     : family[which] == FE_ARCH_GLM                      ? 2  /* GlmConfig's */
                                     : g3 || !strcmp(archs[which], "Qwen3MoeForCausalLM") ? 4
                                     : oss                                               ? 8 /* GptOssConfig's */
                                                                                         : m->num_attention_heads,
                                     0, 1, MAX_COUNT);
    json_t *hd = json_object_get(root, "head_dim");
    /* Gemma3TextConfig: head_dim 256; GptOssConfig: 64; Ministral3Config: 128 */
    const int glm = m->arch == FE_ARCH_GLM; /* GlmConfig / Glm4Config: head_dim 128 */
    m->head_dim_explicit = (hd && !json_is_null(hd)) || g3 || oss || (m->ministral3 && !hd) || (glm && !hd);
    m->head_dim = hd && !json_is_null(hd) ? get_int(&H, root, "head_dim", 0, 1, 1, MAX_COUNT)
                  : g3                    ? 256
                  : oss                   ? 64
                  : (m->ministral3 || glm) && !hd ? 128 /* Ministral3Config: 128 when absent, null: hidden / heads */
                  : m->num_attention_heads ? m->hidden_size / m->num_attention_heads
                                           : 0;
    m->vocab_size = get_int(&H, root, "vocab_size", m->gemma2 ? 256000 : g3 ? 262208 : 0, req, 1, MAX_I32);
    m->max_position_embeddings =
        get_int(&H, root, "max_position_embeddings", m->gemma2                                      ? 8192
                                                     : g3 || oss || m->arch == FE_ARCH_GLM               ? 131072
                                                     : m->ministral3                                       ? 262144
                                                     : !strcmp(archs[which], "Qwen2MoeForCausalLM")         ? 32768
                                                     : m->arch == FE_ARCH_PHI3 || m->arch == FE_ARCH_OLMOE ? 4096
                                                                                                           : 2048,
                0, 1, MAX_I32);
    /* the configs' defaults: 1e-5 for Phi3Config and Olmo2/3Config, 1e-6 for the others */
    const int eps5 = m->arch == FE_ARCH_PHI3 || m->arch == FE_ARCH_OLMO2 || m->arch == FE_ARCH_OLMO3 || oss ||
                     m->arch == FE_ARCH_OLMOE || m->ministral3 ||
                     !strcmp(m->arch_name, "MixtralForCausalLM");
    m->rms_norm_eps = get_num(&H, root, "", "rms_norm_eps", eps5 ? 1e-5 : m->arch == FE_ARCH_GLM ? 1.5625e-07 : 1e-6, 0);
    m->gemma = m->arch == FE_ARCH_GEMMA3;
    /* Gemma3TextConfig: true; the multimodal model ties by its top-level key (default true), as transformers */
    if (m->multimodal) { /* null: untied (transformers draws an lm_head of its own) */
        H.kp = "";
        json_t *tw = json_object_get(top, "tie_word_embeddings");
        if (tw && json_is_null(tw) && m->arch != FE_ARCH_GEMMA3) /* Mistral3Config's strict bool refuses it */
            herr(&H, "tie_word_embeddings", tw, "true or false");
        m->tie_word_embeddings = tw && json_is_null(tw) ? 0 : get_bool(&H, top, "tie_word_embeddings", 1);
        H.kp = "text_config.";
    } else {
        m->tie_word_embeddings = get_bool(&H, root, "tie_word_embeddings", m->gemma || m->arch == FE_ARCH_SMOLLM3);
    }
    /* SmolLM3Config's and MixtralConfig's default_theta */
    const double theta0 = m->arch == FE_ARCH_SMOLLM3                      ? 2e6
                          : !strcmp(m->arch_name, "MixtralForCausalLM") ? 1e6
                          : oss                                         ? 150000.0 /* GptOssConfig's default_theta */
                                                                        : 10000.0;
    m->rope_theta = m->gemma && !m->gemma2 ? 1e6 : theta0; /* Gemma2Config: the default RoPE's 1e4 */
    m->rope_factor = 1.0, m->rope_partial_factor = 1.0, m->rope_attention_factor = 1.0;
    if (m->arch == FE_ARCH_GLM) m->rope_partial_factor = 0.5; /* GlmConfig / Glm4Config: the first half of each head */

    json_t *rp = json_object_get(root, "rope_parameters"); /* transformers >= 5 */
    m->local_rope = (m->gemma && !m->gemma2) || m->arch == FE_ARCH_OLMO3; /* Gemma 2: one RoPE for every layer */
    m->post_norm_only = m->arch == FE_ARCH_OLMO2 || m->arch == FE_ARCH_OLMO3;
    m->qk_norm_full = m->post_norm_only || m->arch == FE_ARCH_OLMOE; /* OlmoeAttention: OLMo's norms, Llama's layer */
    if (m->local_rope) {
        gemma_rope(&H, root, m, arena);
        json_t *prf = json_object_get(root, "partial_rotary_factor");
        if (prf && !json_is_null(prf) && (!json_is_number(prf) || json_number_value(prf) != 1.0))
            herr(&H, "partial_rotary_factor", prf, "1.0 (a partial rotation is implemented for Phi-3 and GLM only)");
    }
    else {
        /* convert_rope_params_to_dict: a non-empty rope_scaling wins over rope_parameters; rope_theta and
         * partial_rotary_factor from the dict, else the top level */
        json_t *rs = json_object_get(root, "rope_scaling");
        const char *pre = "rope_scaling.";
        if (rs && !json_is_null(rs) && !json_is_object(rs)) herr(&H, "rope_scaling", rs, "null or an object");
        if (!json_is_object(rs) || !json_object_size(rs)) {
            rs = rp, pre = "rope_parameters.";
            if (rp && !json_is_null(rp) && !json_is_object(rp)) herr(&H, "rope_parameters", rp, "an object");
        }
        json_t *oss_rope = NULL; /* GptOssConfig: yarn (factor 32 over 4096 positions, betas 32 and 1, no truncation)
                                  * when the config gives no RoPE dict */
        if (oss && !json_is_object(rs)) {
            oss_rope = json_pack("{s:s, s:f, s:f, s:f, s:b, s:i}", "rope_type", "yarn", "factor", 32.0, "beta_fast", 32.0,
                                 "beta_slow", 1.0, "truncate", 0, "original_max_position_embeddings", 4096);
            rs = oss_rope;
        }
        if (m->ministral3 && !json_is_object(rs)) { /* Ministral3Config's RoPE when the config gives none */
            oss_rope = json_pack("{s:s, s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:f}", "rope_type", "yarn", "rope_theta", 1e6,
                                 "factor", 16.0, "original_max_position_embeddings", 16384, "beta_fast", 32.0,
                                 "beta_slow", 1.0, "mscale_all_dim", 1.0, "mscale", 1.0, "llama_4_scaling_beta", 0.1);
            rs = oss_rope;
        }
        if (m->ministral3) { /* its queries' scale (get_llama_4_attn_scale) reads the beta from the dict */
            char k[96];
            snprintf(k, sizeof k, "%sllama_4_scaling_beta", pre);
            json_t *b = json_object_get(rs, "llama_4_scaling_beta");
            if (!json_is_number(b)) herr(&H, k, b, "a number (Ministral 3 scales its queries by it)");
            else m->llama4_beta = json_number_value(b);
        }
        if (json_is_object(rs) && json_object_get(rs, "rope_theta"))
            m->rope_theta = get_num(&H, rs, pre, "rope_theta", theta0, 0);
        else
            m->rope_theta = get_num(&H, root, "", "rope_theta", theta0, 0);
        if (json_is_object(rs)) rope(&H, rs, pre, root, 0, m, arena);
        /* ... and the dict's original_max_position_embeddings as transformers standardizes it (a top-level one wins;
         * absent, max_position_embeddings): the one YaRN reads */
        if (m->ministral3) m->llama4_max = m->rope_original_max_position_embeddings;
        json_t *prf = json_is_object(rs) ? json_object_get(rs, "partial_rotary_factor") : NULL;
        const char *pk = prf ? (rs == rp ? "rope_parameters.partial_rotary_factor" : "rope_scaling.partial_rotary_factor")
                             : "partial_rotary_factor";
        if (!prf) prf = json_object_get(root, "partial_rotary_factor");
        if (prf && !json_is_null(prf)) {
            const double v = json_is_number(prf) ? json_number_value(prf) : -1;
            if (m->arch != FE_ARCH_PHI3 && m->arch != FE_ARCH_GLM && v != 1.0)
                herr(&H, pk, prf, "1.0 (a partial rotation is implemented for Phi-3 and GLM only)");
            else if (!(v > 0 && v <= 1))
                herr(&H, pk, prf, "a number in (0, 1]");
            else
                m->rope_partial_factor = v;
        }
        const int64_t rd = (int64_t)((double)m->head_dim * m->rope_partial_factor); /* HF: int(head_dim * factor) */
        if (m->head_dim > 0 && (rd <= 0 || rd % 2))
            herr(&H, pk, prf, "a factor that rotates an even, positive count of each head's dims");
        else if (m->rope_type == FE_ROPE_LONGROPE && m->rope_short_factor && m->rope_n_factors != rd / 2) {
            char what[96], key[64];
            snprintf(what, sizeof what, "%lld factors (half of the %lld rotated dims of each head)", (long long)(rd / 2),
                     (long long)rd);
            snprintf(key, sizeof key, "%sshort_factor", pre);
            herr(&H, key, json_object_get(rs, "short_factor"), what);
        }
        if (oss_rope) json_decref(oss_rope);
    }

    /* q/k/v bias and q/k norm are architectural (Qwen2 always has the
     * bias; Llama and Qwen3 read attention_bias; Mistral never has one). */
    switch (m->arch) {
    case FE_ARCH_QWEN2: /* Qwen2-MoE: Qwen2MoeConfig.qkv_bias (true by default) */
        m->attention_bias = !strcmp(m->arch_name, "Qwen2MoeForCausalLM") ? get_bool(&H, root, "qkv_bias", 1) : 1;
        break;
    case FE_ARCH_LLAMA:
    case FE_ARCH_QWEN3:
    case FE_ARCH_GRANITE:
    case FE_ARCH_SMOLLM3:
    case FE_ARCH_OLMO2:
    case FE_ARCH_OLMO3:
    case FE_ARCH_GEMMA3: m->attention_bias = get_bool(&H, root, "attention_bias", 0); break;
    case FE_ARCH_MISTRAL:
    case FE_ARCH_PHI3: m->attention_bias = 0; break; /* Phi3's projections have no bias, whatever the config says */
    case FE_ARCH_GPTOSS: m->attention_bias = get_bool(&H, root, "attention_bias", 1); break;
    case FE_ARCH_OLMOE: m->attention_bias = get_bool(&H, root, "attention_bias", 0); break;
    case FE_ARCH_GLM: m->attention_bias = get_bool(&H, root, "attention_bias", 1); break; /* q/k/v only */
    }
    m->qk_norm = m->arch == FE_ARCH_QWEN3 || (m->gemma && !m->gemma2) || m->qk_norm_full;
    if (m->gemma) gemma_facts(&H, root, m);
    if ((m->arch == FE_ARCH_LLAMA || m->arch == FE_ARCH_GRANITE || m->arch == FE_ARCH_SMOLLM3) &&
        get_bool(&H, root, "mlp_bias", 0)) {
        snprintf(w, sizeof w, "%s: mlp_bias", file);
        ax_error(d, w, "true (biases on the MLP projections) is not implemented");
    }
    json_t *sw = json_object_get(root, "sliding_window");
    if (m->arch == FE_ARCH_GRANITE) { /* GraniteConfig's multipliers, each 1 by default */
        m->embedding_multiplier = get_num(&H, root, "", "embedding_multiplier", 1.0, 0);
        m->attention_multiplier = get_num(&H, root, "", "attention_multiplier", 1.0, 0);
        m->residual_multiplier = get_num(&H, root, "", "residual_multiplier", 1.0, 0);
        m->logits_scaling = get_num(&H, root, "", "logits_scaling", 1.0, 0);
    }
    if (m->arch == FE_ARCH_PHI3) {
        m->fused_proj = 1;
        /* what axo does not implement of Phi-3: residual dropout (transformers applies resid_pdrop in training; the
         * configs have 0); attention dropout: below, for every family */
        json_t *v = json_object_get(root, "resid_pdrop");
        if (v && !json_is_null(v) && (!json_is_number(v) || json_number_value(v) != 0))
            herr(&H, "resid_pdrop", v, "0 (residual dropout is not implemented)");
    }
    if (!strcmp(m->arch_name, "Qwen3MoeForCausalLM") || !strcmp(m->arch_name, "MixtralForCausalLM") || oss ||
        m->arch == FE_ARCH_OLMOE || !strcmp(m->arch_name, "Qwen2MoeForCausalLM"))
        moe_facts(&H, root, m, arena);
    if (m->arch == FE_ARCH_OLMOE) { /* OlmoeAttention's clip_qkv (clamps q, k and v; null in the released configs) */
        json_t *v = json_object_get(root, "clip_qkv");
        if (v && !json_is_null(v)) herr(&H, "clip_qkv", v, "null (clamping q, k and v is not implemented)");
    }
    if (!oss) { /* a pre-quantized checkpoint (fp8 like the Hub's Ministral-3-*-2512 instruct models, bitsandbytes, gptq,
                 * awq, ...): its weights are no plain floats (scales beside them), so reading them as such would train
                 * a wrong model */
        json_t *qc = json_object_get(top, "quantization_config");
        if (!qc || json_is_null(qc)) qc = json_object_get(root, "quantization_config");
        if (qc && !json_is_null(qc)) {
            json_t *qm = json_object_get(qc, "quant_method");
            H.kp = json_object_get(top, "quantization_config") == qc ? "" : H.kp;
            herr(&H, "quantization_config", qm ? qm : qc,
                 "none: a pre-quantized checkpoint (its quant_method) is not implemented; axo loads bf16, f16 or f32 "
                 "weights (and quantizes them itself with load_in_4bit), so give it the checkpoint's unquantized "
                 "release");
            if (m->multimodal) H.kp = "text_config.";
        }
    }
    if (oss) { /* the checkpoint's MXFP4 experts: axo trains them dequantized, and saves them so; the saved config.json
                * loses quantization_config, as transformers' dequantizing load removes it */
        json_t *qc = json_object_get(root, "quantization_config");
        const char *qm = json_string_value(json_object_get(qc, "quant_method"));
        if (qc && !json_is_null(qc) && (!qm || strcmp(qm, "mxfp4")))
            herr(&H, "quantization_config.quant_method", json_object_get(qc, "quant_method"),
                 "\"mxfp4\" (gpt-oss's own format; another quantized checkpoint is not implemented)");
        if (qm && !strcmp(qm, "mxfp4")) {
            m->mxfp4_checkpoint = 1;
            json_error_t je2;
            json_t *cj = json_loadb(m->config_json, m->config_json_len, 0, &je2);
            if (cj) {
                json_object_del(cj, "quantization_config");
                char *t = json_dumps(cj, JSON_SORT_KEYS | JSON_INDENT(2));
                const size_t tl = t ? strlen(t) : 0;
                if (t) {
                    m->config_json = ax_arena_alloc(arena, tl + 2);
                    memcpy(m->config_json, t, tl);
                    m->config_json[tl] = '\n';
                    m->config_json_len = tl + 1;
                }
                free(t);
                json_decref(cj);
            }
        }
    }
    { /* every family's attention applies attention_dropout to the probabilities in training (the configs have 0) */
        json_t *v = json_object_get(root, "attention_dropout");
        if (v && !json_is_null(v) && (!json_is_number(v) || json_number_value(v) != 0))
            herr(&H, "attention_dropout", v, "0 (dropout on the attention probabilities is not implemented)");
    }
    if (m->arch == FE_ARCH_SMOLLM3) { /* no_rope_layers, else every no_rope_layer_interval-th layer without RoPE (4) */
        json_t *nr = json_object_get(root, "no_rope_layers");
        const int64_t every = get_int(&H, root, "no_rope_layer_interval", 4, 0, 1, MAX_COUNT);
        if (m->num_hidden_layers > 0) m->layer_rope = ax_arena_alloc(arena, sizeof(int) * (size_t)m->num_hidden_layers);
        for (int64_t l = 0; m->layer_rope && l < m->num_hidden_layers; l++) {
            if (nr && !json_is_null(nr)) {
                json_t *v = json_array_get(nr, (size_t)l);
                if (!json_is_array(nr) || (int64_t)json_array_size(nr) != m->num_hidden_layers || !json_is_integer(v) ||
                    (json_integer_value(v) != 0 && json_integer_value(v) != 1)) {
                    herr(&H, "no_rope_layers", nr, "a list of num_hidden_layers entries, each 1 (RoPE) or 0 (none)");
                    break;
                }
                m->layer_rope[l] = (int)json_integer_value(v);
            } else {
                m->layer_rope[l] = (l + 1) % every != 0;
            }
        }
        if (get_bool(&H, root, "use_sliding_window", 0))
            herr(&H, "use_sliding_window", json_object_get(root, "use_sliding_window"),
                 "false (SmolLM3's sliding-window layers are not implemented)");
    }
    int sw_active = m->arch == FE_ARCH_MISTRAL || m->gemma || m->arch == FE_ARCH_OLMO3 || m->arch == FE_ARCH_PHI3 || oss ? 1
                    : (m->arch == FE_ARCH_QWEN2 || m->arch == FE_ARCH_QWEN3) ? get_bool(&H, root, "use_sliding_window", 0)
                                                                             : 0;
    if (sw_active && sw && !json_is_null(sw)) m->sliding_window = get_int(&H, root, "sliding_window", 0, 0, 1, MAX_I32);
    else if (sw_active && !sw && m->arch != FE_ARCH_PHI3 && strcmp(m->arch_name, "MixtralForCausalLM") && !m->ministral3)
        m->sliding_window = oss ? 128 : 4096; /* the configs' default when absent (null: none); Phi3Config's and
                                               * MixtralConfig's and Ministral3Config's: none */
    /* Which layers slide, as transformers 5 builds layer_types: Mistral all of them (it ignores layer_types), Llama
     * none; otherwise the config's layer_types, else Gemma's every sliding_window_pattern-th layer (6) attending
     * fully, else Qwen2/3's layers from max_window_layers (28) on when there is a window. Marked 1 first, then
     * given the window; layers typed sliding without one (Qwen2/3's use_sliding_window false, Gemma's
     * sliding_window null) are an error, as transformers builds their mask from a None window and fails. */
    if (m->num_hidden_layers > 0) m->layer_window = ax_arena_alloc(arena, sizeof(int64_t) * (size_t)m->num_hidden_layers);
    json_t *lt = m->arch == FE_ARCH_MISTRAL || m->arch == FE_ARCH_LLAMA || m->arch == FE_ARCH_GRANITE ||
                         m->arch == FE_ARCH_SMOLLM3 /* its window needs use_sliding_window, refused above */ ||
                         m->arch == FE_ARCH_OLMO2 || m->arch == FE_ARCH_PHI3
                     ? NULL
                     : json_object_get(root, "layer_types");
    /* Gemma2Config: every 2nd layer attends fully (it reads no sliding_window_pattern) */
    const int64_t pat = m->gemma2 ? 2 : m->gemma ? get_int(&H, root, "sliding_window_pattern", 6, 0, 1, MAX_COUNT) : 0;
    const int64_t from = m->arch == FE_ARCH_QWEN2 || m->arch == FE_ARCH_QWEN3
                             ? get_int(&H, root, "max_window_layers", 28, 0, 0, MAX_COUNT)
                             : 0;
    int64_t nslide = 0;
    for (int64_t l = 0; m->layer_window && l < m->num_hidden_layers; l++) {
        int64_t s = 0;
        if (lt && !json_is_null(lt)) {
            if (!json_is_array(lt) || (int64_t)json_array_size(lt) != m->num_hidden_layers) {
                herr(&H, "layer_types", lt, "a list of num_hidden_layers entries");
                break;
            }
            const char *t = json_string_value(json_array_get(lt, (size_t)l));
            if (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention"))) {
                herr(&H, "layer_types", json_array_get(lt, (size_t)l), "\"sliding_attention\" or \"full_attention\" in every entry");
                break;
            }
            s = !strcmp(t, "sliding_attention");
        } else if (m->arch == FE_ARCH_MISTRAL || m->arch == FE_ARCH_PHI3) { /* the window on every layer */
            s = m->sliding_window > 0;
        } else if (m->gemma) {
            s = (l + 1) % pat != 0;
        } else if (m->arch == FE_ARCH_OLMO3) { /* Olmo3Config: every 4th layer attends fully */
            s = (l + 1) % 4 != 0;
        } else if (oss) { /* GptOssConfig: every 2nd layer attends fully */
            s = (l + 1) % 2 != 0;
        } else if ((m->arch == FE_ARCH_QWEN2 || m->arch == FE_ARCH_QWEN3) && m->sliding_window > 0) {
            s = l >= from;
        }
        m->layer_window[l] = s ? m->sliding_window : 0;
        nslide += s;
    }
    if (nslide && !m->sliding_window)
        herr(&H, "sliding_window", json_object_get(root, "sliding_window"),
             m->gemma || m->arch == FE_ARCH_OLMO3 || oss ? "a window for the sliding_attention layers (transformers fails on null)"
                      : "a window with use_sliding_window: true for the sliding_attention layers of layer_types "
                        "(transformers fails on this config)");

    json_t *act = json_object_get(root, m->gemma ? "hidden_activation" : "hidden_act");
    if (m->gemma && (!act || json_is_null(act))) act = json_object_get(root, "hidden_act");
    m->hidden_act = "silu";
    if (m->gemma) {
        /* Gemma2Config's and Gemma3TextConfig's hidden_activation: gelu_pytorch_tanh (their default) */
        if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "gelu_pytorch_tanh")))
            herr(&H, "hidden_activation", act, "\"gelu_pytorch_tanh\" (Gemma's activation; the only one axo implements for it)");
        m->hidden_act = "gelu_pytorch_tanh";
    } else if (act && !json_is_null(act) && !oss) { /* (GptOssExperts' clamped GLU reads no hidden_act) */
        if (!json_is_string(act) || strcmp(json_string_value(act), "silu"))
            herr(&H, "hidden_act", act, "\"silu\" (the only activation axo implements)");
        else
            m->hidden_act = "silu";
    }
    /* the file's dtype, the model's init std and its special tokens: the top level's (Gemma3Config's), else
     * the text config's, else Gemma3TextConfig's defaults */
    json_t *dt = NULL; /* transformers keeps dtype where both are written */
    for (int k = 0; k < 4 && (!dt || json_is_null(dt)); k++)
        dt = json_object_get(k < 2 ? top : root, k % 2 ? "torch_dtype" : "dtype");
    if (json_is_string(dt)) m->torch_dtype = ax_arena_strdup(arena, json_string_value(dt));
    static const char *const toks[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int64_t *tv[] = {&m->bos_token_id, &m->eos_token_id, &m->pad_token_id}, gemma_tok[] = {2, 1, 0};
    for (int k = 0; k < 3; k++) { /* the embedding's padding_idx is text_config.pad_token_id's */
        const json_t *first = k == 2 ? root : top, *second = k == 2 ? top : root;
        const json_t *o = json_object_get(first, toks[k]) ? first : second;
        H.kp = o == root && m->multimodal ? "text_config." : "";
        *tv[k] = get_token(&H, o, toks[k]);
        if (m->gemma && !json_object_get(o, toks[k])) *tv[k] = gemma_tok[k];
        static const int64_t phi3_tok[] = {1, 32000, 32000}; /* Phi3Config's */
        if (m->arch == FE_ARCH_PHI3 && !json_object_get(o, toks[k])) *tv[k] = phi3_tok[k];
        static const int64_t olmoe_tok[] = {-1, 50279, 1}; /* OlmoeConfig's */
        if (m->arch == FE_ARCH_OLMOE && !json_object_get(o, toks[k])) *tv[k] = olmoe_tok[k];
        static const int64_t ministral3_tok[] = {1, 2, 11}; /* Ministral3Config's */
        if (m->ministral3 && !json_object_get(o, toks[k])) *tv[k] = ministral3_tok[k];
        static const int64_t glm_tok[] = {-1, 151329, 151329}; /* GlmConfig's (eos: its list's first, null too) */
        if (m->arch == FE_ARCH_GLM && (!json_object_get(o, toks[k]) || (k == 1 && json_is_null(json_object_get(o, toks[k])))))
            *tv[k] = glm_tok[k];
    }
    H.kp = "";
    m->initializer_range = get_num(&H, json_object_get(top, "initializer_range") ? top : root, "", "initializer_range", 0.02, 0);
    if (m->multimodal && json_object_get(root, "initializer_range")) { /* transformers draws the text weights with it */
        H.kp = "text_config.";
        m->text_initializer_range = get_num(&H, root, "", "initializer_range", 0.02, 0);
        H.kp = "";
    }
    if (!(m->initializer_range > 0) || m->initializer_range > 1e30) {
        snprintf(w, sizeof w, "%s: initializer_range", file);
        ax_error(d, w, "expected a positive number, found %g", m->initializer_range);
    }
    json_decref(root);
    json_decref(top);
    if (m->multimodal && d->nerrors == errors0) mm_layout(dir, file, m, arena, d);
    else if (d->nerrors == errors0) causal_tie(dir, file, m, arena, d);
    return d->nerrors > errors0 ? -1 : 0;
}

int fe_check_config_model(const fe_config *c, const fe_model *m, int world_size, ax_diag *d) {
    int errors0 = d->nerrors;
    const char *cf = c->path ? c->path : "config";
    const char *mf = m->dir ? m->dir : "model";
    char mw[1024];
    snprintf(mw, sizeof mw, "%s/config.json", mf);
    if (!m->head_dim_explicit && m->num_attention_heads > 0 && m->hidden_size % m->num_attention_heads)
        ax_error(d, mw, "num_attention_heads: expected a divisor of hidden_size %lld (config.json has no head_dim), found %lld",
                 (long long)m->hidden_size, (long long)m->num_attention_heads);
    if (m->num_key_value_heads <= 0 || m->num_attention_heads % m->num_key_value_heads)
        ax_error(d, mw, "num_key_value_heads: expected a divisor of num_attention_heads %lld, found %lld",
                 (long long)m->num_attention_heads, (long long)m->num_key_value_heads);
    if (world_size < 1) ax_error(d, cf, "world size: expected at least 1, found %d", world_size);
    if (c->fix_untrained) { /* runtime/untrained.c fixes whole embedding tensors */
        int save_e = 0, save_o = 0;
        for (int i = 0; i < c->nlora_modules_to_save; i++) {
            save_e |= !strcmp(c->lora_modules_to_save[i], "embed_tokens");
            save_o |= !strcmp(c->lora_modules_to_save[i], "lm_head");
        }
        if (c->adapter != FE_ADAPTER_NONE && !(save_e && save_o))
            ax_error(d, cf, "fix_untrained_tokens with an adapter: Axolotl's fix also makes embed_tokens and lm_head "
                     "trainable, and the adapter would not save them; add lora_modules_to_save: [embed_tokens, lm_head]");
        for (int i = 0; i < c->nfix_untrained_ids; i++)
            if (c->fix_untrained_ids[i] >= m->vocab_size)
                ax_error(d, cf, "fix_untrained_tokens: token id %lld is past the model's vocab_size %lld",
                         (long long)c->fix_untrained_ids[i], (long long)m->vocab_size);
    }
    if (m->multimodal && (!m->carried || c->reinit_weights))
        ax_warn(d, mw, "%s: %s, so the saved models hold its language model only (transformers draws the vision tower "
                "and projector at random when it loads them)", m->arch_name,
                c->reinit_weights ? "reinit_weights draws the weights anew" : "no weights to carry the vision tower from");
    int64_t sp = c->sequence_parallel_degree;
    if (sp < 1) ax_error(d, cf, "sequence_parallel_degree: expected a positive integer, found %lld", (long long)sp);
    /* soft-capped attention scores (Gemma 2, a Gemma 3 that sets them) where Axolotl 0.19 cannot apply the cap:
     * transformers refuses sdpa (Gemma2PreTrainedModel._supports_sdpa is False; Gemma 3's sdpa path raises), and
     * Axolotl's varlen ring attention asserts there is none; its xformers patch and its batch ring adapters take
     * the cap and drop it, so there Axolotl trains without it while axo applies it */
    if (m->attn_softcap > 0) {
        if (c->attn_impl && !strcmp(c->attn_impl, "sdpa"))
            ax_error(d, cf, "sdpa attention (attn_implementation: sdpa or sdp_attention: true) with %s's "
                     "attn_logit_softcapping %g: transformers refuses it (sdpa cannot cap the scores); use eager, "
                     "flash_attention_2 or flex_attention, which axo computes the same way", m->arch_name, m->attn_softcap);
        if (c->attn_impl && !strcmp(c->attn_impl, "xformers"))
            ax_warn(d, cf, "xformers attention with attn_logit_softcapping %g: axo caps the scores as transformers' eager "
                    "and flash attention do, while Axolotl 0.19's xformers patch drops the cap, so its run would differ",
                    m->attn_softcap);
        if (sp > 1 && c->ring_attn_func && !strcmp(c->ring_attn_func, "varlen_llama3"))
            ax_error(d, cf, "sequence_parallel_degree %lld with ring_attn_func varlen_llama3 (the default with "
                     "sample_packing) and attn_logit_softcapping %g: Axolotl 0.19's varlen ring attention refuses a "
                     "soft cap (it asserts there is none); axo would apply it, but the run has no Axolotl counterpart",
                     (long long)sp, m->attn_softcap);
        else if (sp > 1)
            ax_warn(d, cf, "sequence_parallel_degree %lld with attn_logit_softcapping %g: axo caps the scores on every "
                    "ring block, as one GPU does, while Axolotl 0.19's %s ring adapter drops the cap, so its run would "
                    "differ", (long long)sp, m->attn_softcap, c->ring_attn_func ? c->ring_attn_func : "batch_ring");
    }
    if (sp > 1) {
        if (c->sequence_len % (2 * sp))
            ax_error(d, cf,
                     "sequence_len: expected a multiple of 2 * sequence_parallel_degree = %lld (ring attention splits "
                     "each sequence into 2*sp chunks), found %lld",
                     (long long)(2 * sp), (long long)c->sequence_len);
        if (world_size >= 1 && world_size % sp)
            ax_error(d, cf, "sequence_parallel_degree: expected a divisor of the world size %d, found %lld", world_size,
                     (long long)sp);
        if (c->heads_k_stride < 1 || (m->num_key_value_heads > 0 && m->num_key_value_heads % c->heads_k_stride))
            ax_error(d, cf, "heads_k_stride: expected a divisor of num_key_value_heads %lld, found %lld",
                     (long long)m->num_key_value_heads, (long long)c->heads_k_stride);
    }
    if (c->fsdp.enabled && c->fsdp.transformer_layer_cls_to_wrap && m->decoder_layer_cls &&
        strcmp(c->fsdp.transformer_layer_cls_to_wrap, m->decoder_layer_cls) &&
        (!c->fsdp.auto_wrap_policy || !strcmp(c->fsdp.auto_wrap_policy, "TRANSFORMER_BASED_WRAP")))
        ax_error(d, cf, "fsdp_config.transformer_layer_cls_to_wrap: expected %s (the decoder layer of %s), found %s",
                 m->decoder_layer_cls, m->arch_name, c->fsdp.transformer_layer_cls_to_wrap);
    if (m->max_position_embeddings > 0 && c->sequence_len > m->max_position_embeddings)
        ax_warn(d, cf, "sequence_len: %lld is longer than the model's max_position_embeddings %lld",
                (long long)c->sequence_len, (long long)m->max_position_embeddings);
    /* dynamic NTK RoPE: transformers recomputes the base whenever a batch reaches past max_position_embeddings and
     * keeps the larger one for later batches (dynamic_frequency_update), a state across steps axo does not model;
     * within max_position_embeddings it is the default RoPE */
    const int64_t longest = c->eval_sequence_len > c->sequence_len ? c->eval_sequence_len : c->sequence_len;
    if (m->rope_type == FE_ROPE_DYNAMIC && longest > m->max_position_embeddings)
        ax_error(d, cf, "%s: %lld is longer than max_position_embeddings %lld with %s's dynamic RoPE scaling "
                 "(transformers then rescales RoPE per batch and keeps the largest rescaling for the batches after, which "
                 "axo does not model); use at most %lld, or a static scaling (linear, yarn)",
                 c->eval_sequence_len > c->sequence_len ? "eval_sequence_len" : "sequence_len", (long long)longest,
                 (long long)m->max_position_embeddings, mw, (long long)m->max_position_embeddings);
    if (c->micro_batch_size < 1)
        ax_error(d, cf, "micro_batch_size: expected a positive integer, found %lld", (long long)c->micro_batch_size);
    /* the runtime indexes a batch's tokens, and the kernels their rows, with int32 */
    const struct {
        const char *key;
        int64_t rows;
    } batches[] = {{"micro_batch_size", c->micro_batch_size}, {"eval_batch_size", c->eval_batch_size}};
    for (size_t i = 0; i < AX_ARRAY_LEN(batches); i++)
        if (c->sequence_len > 0 && batches[i].rows > 0 && batches[i].rows > MAX_I32 / c->sequence_len)
            ax_error(d, cf, "%s x sequence_len: expected at most %lld tokens in a batch, found %lld x %lld",
                     batches[i].key, (long long)MAX_I32, (long long)batches[i].rows, (long long)c->sequence_len);
    /* a step's global batch in rows, which the runtime counts and offsets in int64 */
    if ((double)c->micro_batch_size * (double)c->gradient_accumulation_steps * (double)(world_size > 0 ? world_size : 1) >
        1099511627776.0)
        ax_error(d, cf,
                 "micro_batch_size x gradient_accumulation_steps x world size: expected at most 2^40 rows in a global "
                 "batch, found %lld x %lld x %d",
                 (long long)c->micro_batch_size, (long long)c->gradient_accumulation_steps, world_size);
    /* The whole plan, in doubles (which cannot overflow): weights with their gradients and AdamW state, and one
     * micro-batch's activations with its logits. Bounding it bounds every shape product and byte count the
     * compiler forms in int64. */
    {
        double H = (double)m->hidden_size, I = (double)m->intermediate_size, L = (double)m->num_hidden_layers;
        double Q = (double)m->num_attention_heads * (double)m->head_dim, KV = (double)m->num_key_value_heads *
                                                                            (double)m->head_dim;
        double V = (double)m->vocab_size, T = (double)c->micro_batch_size * (double)c->sequence_len;
        /* an MoE layer: every expert's MLP and the router (counted for every layer: a bound) */
        const double mlp = m->num_experts > 0 ? (double)m->num_experts * (3 * H * (double)m->moe_intermediate_size + H) + 3 * H * I
                                              : 3 * H * I;
        double params = V * H * 2 + L * (H * Q * 2 + H * KV * 2 + mlp + 2 * H);
        if (c->adapter != FE_ADAPTER_NONE && c->lora_r > 0) /* A and B of every linear layer, at most */
            params += L * (double)c->lora_r * (8 * H + 2 * Q + 2 * KV + 4 * I);
        double acts = T * (L * (4 * H + 2 * Q + 2 * KV + 3 * I + 3 * (double)m->num_experts_per_tok * (double)m->moe_intermediate_size) + V);
        double bytes = params * 16 + acts * 4;
        if (bytes > 1125899906842624.0) /* 1 PiB */
            ax_error(d, cf,
                     "the plan would hold about %.3g PiB (%.3g parameters with their gradients and optimizer state, "
                     "and %.3g activations of a micro-batch); axo plans at most 1 PiB: check hidden_size, "
                     "intermediate_size, num_hidden_layers, vocab_size, num_experts, moe_intermediate_size, "
                     "num_experts_per_tok, sequence_len, micro_batch_size and lora_r",
                     bytes / 1125899906842624.0, params, acts);
    }
    if (c->adapter != FE_ADAPTER_NONE && c->lora_r <= 0)
        ax_error(d, cf, "lora_r: expected a positive integer with adapter: %s, found %lld",
                 c->adapter == FE_ADAPTER_LORA ? "lora" : "qlora", (long long)c->lora_r);
    if (c->adapter != FE_ADAPTER_NONE && c->lora_r > MAX_DIM)
        ax_error(d, cf, "lora_r: expected at most %lld, found %lld", (long long)MAX_DIM, (long long)c->lora_r);
    for (int i = 0; c->adapter != FE_ADAPTER_NONE && i < c->npeft_layers; i++)
        if (c->peft_layers[i] >= m->num_hidden_layers) {
            ax_error(d, cf, "peft_layers_to_transform: layer %lld is out of range: the model has %lld decoder layers (0 to %lld)",
                     (long long)c->peft_layers[i], (long long)m->num_hidden_layers, (long long)m->num_hidden_layers - 1);
            break;
        }
    if (c->adapter == FE_ADAPTER_QLORA && !c->load_in_4bit)
        ax_error(d, cf, "load_in_4bit: expected true with adapter: qlora, found false");
    if (c->load_in_4bit && c->adapter != FE_ADAPTER_QLORA)
        ax_error(d, cf, "adapter: expected qlora with load_in_4bit: true, found %s",
                 c->adapter == FE_ADAPTER_LORA ? "lora" : "none");
    /* Axolotl's check_quantize_moe_experts: an adapter over 4- or 8-bit base weights (axo has the 4-bit ones), and
     * no lora_target_linear */
    if (c->quantize_moe_experts && (c->adapter != FE_ADAPTER_QLORA || !c->load_in_4bit))
        ax_error(d, cf, "quantize_moe_experts: requires adapter: qlora with load_in_4bit: true (Axolotl also takes lora "
                 "with load_in_8bit, and axo has no 8-bit base weights)");
    if (c->quantize_moe_experts && c->lora_target_linear && !c->lora_all_linear_string)
        ax_error(d, cf, "quantize_moe_experts: lora_target_linear is not compatible with it (Axolotl's check); target "
                 "the experts' weights with lora_target_parameters instead");
    /* gpt-oss: its MXFP4 experts are dequantized on load (Axolotl's model_quantization_config: Mxfp4Config with
     * dequantize: true; without it transformers keeps them packed and frozen) */
    if (c->model_quant && m->arch != FE_ARCH_GPTOSS)
        ax_error(d, cf, "model_quantization_config: Mxfp4Config is gpt-oss's MXFP4 checkpoint format; %s has none",
                 m->arch_name);
    if (c->model_quant && c->model_quant_dequantize != 1)
        ax_error(d, cf, "model_quantization_config_kwargs: expected dequantize: true with Mxfp4Config (axo trains "
                 "gpt-oss's experts dequantized; transformers without it keeps them in MXFP4, frozen)");
    if (c->model_quant && c->fsdp.enabled && c->fsdp.cpu_ram_efficient_loading)
        ax_error(d, cf, "fsdp_config.cpu_ram_efficient_loading: not supported with model_quantization_config: Mxfp4Config "
                 "(Axolotl's check)");
    if (m->mxfp4_checkpoint && !c->model_quant)
        ax_warn(d, cf, "%s holds its experts in MXFP4: axo dequantizes and trains them, as Axolotl with "
                "model_quantization_config: Mxfp4Config and model_quantization_config_kwargs: {dequantize: true} (without "
                "that, transformers keeps them packed and frozen where its MXFP4 kernels run); set them to say so",
                m->dir);
    if (m->arch == FE_ARCH_GPTOSS && c->quantize_moe_experts)
        ax_error(d, cf, "quantize_moe_experts: not implemented for gpt-oss's transposed, biased experts");
    if (c->quantize_moe_experts && !m->layer_moe)
        ax_warn(d, cf, "quantize_moe_experts: %s has no MoE experts; nothing more is quantized", m->arch_name);
    if (c->ds.present && c->ds.train_batch_size > 0 && world_size >= 1 && sp >= 1) {
        int64_t dp = world_size / sp;
        int64_t want = c->micro_batch_size * c->gradient_accumulation_steps * (dp > 0 ? dp : 1);
        if (c->ds.train_batch_size != want) {
            snprintf(mw, sizeof mw, "%s: train_batch_size", c->ds.path);
            ax_error(d, mw,
                     "expected micro_batch_size %lld * gradient_accumulation_steps %lld * data-parallel ranks %lld = "
                     "%lld (or \"auto\"), found %lld",
                     (long long)c->micro_batch_size, (long long)c->gradient_accumulation_steps, (long long)dp,
                     (long long)want, (long long)c->ds.train_batch_size);
        }
    }
    return d->nerrors > errors0 ? -1 : 0;
}
