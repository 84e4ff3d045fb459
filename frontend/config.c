/* config.c — the Axolotl-style YAML config (see config.h).
 *
 * The file is loaded with libyaml's document API, the top-level mapping's
 * pairs are collected (duplicate keys rejected), and each key is handled by
 * one row of `keys[]` (plain typed settings) or a special case below.
 * Processing continues after an error so one run reports every problem. */
#include "frontend/hub.h"
#include "frontend/internal.h"
#include "runtime/tokenizer.h"
#include "ir/dpo_loss.h"

#include <ctype.h>
#include <jansson.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- YAML helpers (shared with fsdp.c) --------------------------------- */
const char *fe_yloc(const fe_yctx *y, const yaml_node_t *n, char *buf, size_t cap) {
    if (!n) return ax_loc(buf, cap, y->file, 0, 0);
    return ax_loc(buf, cap, y->file, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1);
}

const char *fe_y_text(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int fe_y_is_null(const yaml_node_t *n) {
    if (!n) return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = fe_y_text(n);
    return !*s || !strcmp(s, "~") || !strcasecmp(s, "null");
}

const char *fe_yfound(const yaml_node_t *n, char *buf, size_t cap) {
    if (!n || fe_y_is_null(n)) {
        snprintf(buf, cap, "nothing (null)");
    } else if (n->type == YAML_MAPPING_NODE) {
        snprintf(buf, cap, "a mapping");
    } else if (n->type == YAML_SEQUENCE_NODE) {
        snprintf(buf, cap, "a list");
    } else {
        const char *s = fe_y_text(n);
        if (!s) s = ""; /* never NULL for a scalar; says so to gcc -O2 */
        size_t len = strlen(s);
        if (len > 60)
            snprintf(buf, cap, "\"%.57s...\"", s);
        else
            snprintf(buf, cap, "\"%s\"", s);
    }
    return buf;
}

int fe_parse_bool(const char *s, int *out) {
    static const char *t[] = {"true", "yes", "on", "y"}, *f[] = {"false", "no", "off", "n"};
    for (size_t i = 0; i < AX_ARRAY_LEN(t); i++) {
        if (!strcasecmp(s, t[i])) return *out = 1, 1;
        if (!strcasecmp(s, f[i])) return *out = 0, 1;
    }
    return 0;
}

int fe_parse_num(const char *s, double *out) {
    char tmp[128];
    size_t n = 0;
    /* YAML 1.1 allows '_' as a digit separator. */
    for (const char *p = s; *p; p++) {
        if (*p == '_') continue;
        if (n + 1 >= sizeof tmp) return 0;
        tmp[n++] = *p;
    }
    tmp[n] = 0;
    if (!n || isspace((unsigned char)tmp[0])) return 0;
    for (size_t i = 0; i < n; i++) /* no hex floats, inf or nan */
        if (!strchr("0123456789+-.eE", tmp[i])) return 0;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static void yerr(const fe_yctx *y, const yaml_node_t *v, const char *key, const char *expected) {
    char loc[512], found[128];
    ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: expected %s, found %s", key, expected,
             fe_yfound(v, found, sizeof found));
}

int fe_y_bool(const fe_yctx *y, const char *key, const yaml_node_t *v, int *out) {
    const char *s = fe_y_text(v);
    int b;
    if (!s || !fe_parse_bool(s, &b)) {
        yerr(y, v, key, "true or false");
        return -1;
    }
    *out = b;
    return 0;
}

int fe_y_int(const fe_yctx *y, const char *key, const yaml_node_t *v, int64_t min, int64_t *out) {
    const char *s = fe_y_text(v);
    double x;
    const char *what = min >= 1 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer";
    if (!s || !fe_parse_num(s, &x) || x != floor(x) || fabs(x) > 9.0e18 || x < (double)min) {
        yerr(y, v, key, what);
        return -1;
    }
    *out = (int64_t)x;
    return 0;
}

int fe_y_num(const fe_yctx *y, const char *key, const yaml_node_t *v, int kind, double *out) {
    static const char *what[] = {"a non-negative number", "a positive number", "a number in [0, 1)"};
    const char *s = fe_y_text(v);
    double x;
    if (!s || !fe_parse_num(s, &x) || x < 0 || (kind == 1 && x <= 0) || (kind == 2 && x >= 1)) {
        yerr(y, v, key, what[kind]);
        return -1;
    }
    *out = x;
    return 0;
}

int fe_y_str(const fe_yctx *y, const char *key, const yaml_node_t *v, const char **out) {
    const char *s = fe_y_text(v);
    if (!s || fe_y_is_null(v)) {
        yerr(y, v, key, "a string");
        return -1;
    }
    *out = ax_arena_strdup(y->ar, s);
    return 0;
}

int fe_y_pairs(const fe_yctx *y, const yaml_node_t *map, const char *ctx, fe_ypair **out) {
    int n = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    fe_ypair *p = ax_arena_alloc(y->ar, sizeof *p * (size_t)(n ? n : 1));
    int k = 0;
    char loc[512], loc2[64], found[128];
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(y->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(y->doc, pr->value);
        const char *key = fe_y_text(kn);
        if (!key) {
            ax_error(y->d, fe_yloc(y, kn, loc, sizeof loc), "%s: expected a setting name, found %s", ctx,
                     fe_yfound(kn, found, sizeof found));
            continue;
        }
        int dup = 0;
        for (int i = 0; i < k && !dup; i++) {
            if (strcmp(p[i].key, key)) continue;
            dup = 1;
            snprintf(loc2, sizeof loc2, "%d:%d", (int)p[i].k->start_mark.line + 1, (int)p[i].k->start_mark.column + 1);
            ax_error(y->d, fe_yloc(y, kn, loc, sizeof loc), "%s%s%s: duplicate key (first set at line %s)",
                     ctx[0] ? ctx : "", ctx[0] ? "." : "", key, loc2);
        }
        if (dup) continue;
        p[k].key = key;
        p[k].k = kn;
        p[k].v = vn;
        k++;
    }
    *out = p;
    return k;
}

/* ---- paths --------------------------------------------------------------- */

/* The YAML file's directory ("." when it has none). */
static char *yaml_dir(ax_arena *ar, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return ax_arena_strdup(ar, ".");
    if (slash == path) return ax_arena_strdup(ar, "/");
    return ax_arena_strndup(ar, path, (size_t)(slash - path));
}

/* Resolves `given` as written (absolute, or relative to the working
 * directory), else relative to the YAML file's directory. Returns the
 * absolute real path, or NULL with an error naming the key and every path
 * tried. want_dir: 1 directory, 0 regular file. */
static const char *resolve(const fe_yctx *y, const char *ydir, const char *key, const yaml_node_t *v,
                           const char *given, int want_dir, const char *hint) {
    int (*ok)(const char *) = want_dir ? is_dir : is_file;
    const char *tried[2];
    int ntried = 0;
    tried[ntried++] = given;
    const char *hit = ok(given) ? given : NULL;
    if (!hit && given[0] != '/') {
        const char *rel = ax_arena_printf(y->ar, "%s/%s", ydir, given);
        tried[ntried++] = rel;
        if (ok(rel)) hit = rel;
    }
    if (hit) {
        char *rp = realpath(hit, NULL);
        const char *r = ax_arena_strdup(y->ar, rp ? rp : hit);
        free(rp);
        return r;
    }
    char loc[512];
    if (ntried == 2)
        ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: expected an existing %s, found none at \"%s\" or \"%s\"%s",
                 key, want_dir ? "directory" : "file", tried[0], tried[1], hint ? hint : "");
    else
        ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: expected an existing %s, found none at \"%s\"%s", key,
                 want_dir ? "directory" : "file", tried[0], hint ? hint : "");
    return NULL;
}

/* A local directory, else a Hugging Face Hub repo id ("org/name") found in
 * huggingface_hub's cache or downloaded into it (frontend/hub.h), at the
 * config's revision_of_model. want: FE_HUB_* of what the snapshot must hold. */
static const char *resolve_model_dir(const fe_yctx *y, const char *ydir, const char *key, const yaml_node_t *v,
                                     const char *given, const char *revision, int want, int *from_hub) {
    int local = is_dir(given) || (given[0] != '/' && is_dir(ax_arena_printf(y->ar, "%s/%s", ydir, given)));
    if (!local && fe_hub_is_repo_id(given)) {
        char loc[512];
        if (from_hub) *from_hub = 1;
        const char *r = fe_hub_model(y->ar, given, revision, want, fe_yloc(y, v, loc, sizeof loc), key, y->d);
        if (!r && strchr(given, '/')) /* "models/tiny-lama": a mistyped path reads as a repo id too */
            ax_diag_add(y->d, AX_SEV_NOTE, loc, "%s: nor is \"%s\" a directory here or beside the config (%s)", key, given,
                        ydir);
        return r;
    }
    const char *hint = want & FE_HUB_TOKENIZER ? " (a local directory with tokenizer.json, or a Hub repo id)" : NULL;
    return resolve(y, ydir, key, v, given, 1, hint);
}

/* ---- the key table --------------------------------------------------------- */
typedef enum {
    K_BOOL,     /* int field, YAML 1.1 boolean */
    K_INT,      /* int64_t field >= min */
    K_NUM,      /* double field; min: 0 >= 0, 1 > 0, 2 in [0, 1) */
    K_STR,      /* const char * field */
    K_LIGER,    /* int field, boolean, -1 when absent */
    K_ANY,      /* accepted and ignored, any value */
    K_SPECIAL,  /* handled in apply_special */
} key_kind;

typedef struct key_def {
    const char *name;
    key_kind kind;
    long off; /* offsetof(fe_config, field), or -1 = type-check and ignore */
    int min;
} key_def;

#define F(field) ((long)offsetof(fe_config, field))
static const key_def keys[] = {
    {"adam_beta1", K_NUM, F(adam_beta1), 2},
    {"adam_beta2", K_NUM, F(adam_beta2), 2},
    {"adam_epsilon", K_NUM, F(adam_epsilon), 1},
    {"adapter", K_SPECIAL, -1, 0},
    {"fix_untrained_tokens", K_SPECIAL, -1, 0},
    {"added_tokens_overrides", K_SPECIAL, -1, 0},
    {"attn_implementation", K_SPECIAL, -1, 0},
    {"auto_resume_from_checkpoints", K_BOOL, F(auto_resume), 0},
    {"base_model", K_SPECIAL, -1, 0},
    {"base_model_config", K_SPECIAL, -1, 0},
    {"revision_of_model", K_SPECIAL, -1, 0},
    {"model_revision", K_SPECIAL, -1, 0},
    {"batch_size", K_SPECIAL, -1, 0},
    {"bf16", K_SPECIAL, -1, 0},
    {"bfloat16", K_SPECIAL, -1, 0},
    {"chat_template", K_SPECIAL, -1, 0},
    {"chat_template_jinja", K_SPECIAL, -1, 0},
    {"chat_template_kwargs", K_SPECIAL, -1, 0},
    {"cosine_constant_lr_ratio", K_NUM, F(cosine_constant_lr_ratio), 0},
    {"cosine_min_lr_ratio", K_NUM, F(cosine_min_lr_ratio), 0},
    {"dataset_prepared_path", K_STR, F(dataset_prepared_path), 0},
    {"datasets", K_SPECIAL, -1, 0},
    {"ddp_bucket_cap_mb", K_NUM, F(ddp_bucket_cap_mb), 1},
    {"debug", K_BOOL, -1, 0},
    {"deepspeed", K_SPECIAL, -1, 0},
    {"eot_tokens", K_SPECIAL, -1, 0},
    {"excess_length_strategy", K_SPECIAL, -1, 0},
    {"early_stopping_patience", K_INT, F(early_stopping_patience), 0},
    {"eval_batch_size", K_INT, F(eval_batch_size), 1},
    {"eval_sample_packing", K_BOOL, F(eval_sample_packing), 0},
    {"eval_steps", K_SPECIAL, -1, 0},
    {"eval_strategy", K_SPECIAL, -1, 0},
    {"evaluation_strategy", K_SPECIAL, -1, 0},
    {"evals_per_epoch", K_INT, F(evals_per_epoch), 0},
    {"flash_attention", K_BOOL, -1, 0},
    {"float16", K_SPECIAL, -1, 0},
    {"fp16", K_SPECIAL, -1, 0},
    {"fsdp", K_SPECIAL, -1, 0},
    {"fsdp_config", K_SPECIAL, -1, 0},
    {"fsdp_version", K_SPECIAL, -1, 0},
    {"gradient_accumulation_steps", K_INT, F(gradient_accumulation_steps), 1},
    {"gradient_checkpointing", K_SPECIAL, -1, 0},
    {"greater_is_better", K_BOOL, F(greater_is_better), 0},
    {"group_by_length", K_SPECIAL, -1, 0},
    {"heads_k_stride", K_INT, F(heads_k_stride), 1},
    {"learning_rate", K_NUM, F(learning_rate), 1},
    {"liger_cross_entropy", K_LIGER, F(liger_cross_entropy), 0},
    {"liger_fused_linear_cross_entropy", K_LIGER, F(liger_fused_linear_cross_entropy), 0},
    {"liger_glu_activation", K_LIGER, F(liger_glu_activation), 0},
    {"liger_layer_norm", K_LIGER, F(liger_layer_norm), 0},
    {"liger_rms_norm", K_LIGER, F(liger_rms_norm), 0},
    {"liger_rope", K_LIGER, F(liger_rope), 0},
    {"load_best_model_at_end", K_BOOL, F(load_best_model_at_end), 0},
    {"load_in_4bit", K_BOOL, F(load_in_4bit), 0},
    {"quantize_moe_experts", K_BOOL, F(quantize_moe_experts), 0},
    {"load_in_8bit", K_SPECIAL, -1, 0},
    {"local_rank", K_ANY, -1, 0},
    {"logging_steps", K_INT, F(logging_steps), 1},
    {"lora_alpha", K_NUM, F(lora_alpha), 1},
    {"lora_dropout", K_NUM, F(lora_dropout), 2},
    {"lora_r", K_INT, F(lora_r), 1},
    {"lora_target_linear", K_BOOL, F(lora_target_linear), 0},
    {"mean_resizing_embeddings", K_BOOL, F(mean_resizing), 0},
    {"lora_fan_in_fan_out", K_SPECIAL, -1, 0},
    {"lora_model_dir", K_SPECIAL, -1, 0},
    {"lora_modules_to_save", K_SPECIAL, -1, 0},
    {"lora_target_modules", K_SPECIAL, -1, 0},
    {"lora_target_parameters", K_SPECIAL, -1, 0},
    {"loraplus_lr_embedding", K_NUM, F(loraplus_lr_embedding), 0},
    {"loraplus_lr_ratio", K_NUM, F(loraplus_lr_ratio), 1},
    {"embedding_lr", K_NUM, F(embedding_lr), 0},
    {"embedding_lr_scale", K_NUM, F(embedding_lr_scale), 0},
    {"lr_groups", K_SPECIAL, -1, 0},
    {"lr_quadratic_warmup", K_BOOL, F(lr_quadratic_warmup), 0},
    {"lr_scheduler", K_SPECIAL, -1, 0},
    {"lr_scheduler_kwargs", K_SPECIAL, -1, 0},
    {"lr_div_factor", K_SPECIAL, -1, 0},
    {"max_grad_norm", K_NUM, F(max_grad_norm), 0},
    {"metric_for_best_model", K_SPECIAL, -1, 0},
    {"max_steps", K_INT, F(max_steps), 0},
    {"micro_batch_size", K_INT, F(micro_batch_size), 1},
    {"model_type", K_SPECIAL, -1, 0},
    {"neftune_noise_alpha", K_NUM, F(neftune_noise_alpha), 0},
    {"noisy_embedding_alpha", K_SPECIAL, -1, 0},
    {"num_epochs", K_NUM, F(num_epochs), 1},
    {"optimizer", K_SPECIAL, -1, 0},
    {"rl", K_SPECIAL, -1, 0},        /* check_rl */
    {"rl_beta", K_SPECIAL, -1, 0},   /* check_rl */
    {"dpo_beta", K_SPECIAL, -1, 0},  /* check_rl */
    {"trl", K_SPECIAL, -1, 0},       /* check_rl */
    {"dpo_loss_type", K_SPECIAL, -1, 0},
    {"dpo_loss_weights", K_SPECIAL, -1, 0},
    {"dpo_label_smoothing", K_SPECIAL, -1, 0},
    {"max_prompt_len", K_SPECIAL, -1, 0},
    {"simpo_gamma", K_SPECIAL, -1, 0}, /* check_rl: rl: simpo */
    {"cpo_alpha", K_SPECIAL, -1, 0},
    {"orpo_alpha", K_SPECIAL, -1, 0},  /* check_rl: beta's last fallback, as Axolotl's RL builder reads it */
    {"dpo_use_logits_to_keep", K_SPECIAL, -1, 0},   /* check_rl: Axolotl 0.19 raises on these three */
    {"dpo_generate_during_eval", K_SPECIAL, -1, 0},
    {"dpo_norm_loss", K_SPECIAL, -1, 0},
    {"rpo_alpha", K_SPECIAL, -1, 0},
    {"output_dir", K_STR, F(output_dir), 0},
    {"pad_to_sequence_len", K_BOOL, F(pad_to_sequence_len), 0},
    {"pad_to_multiple_of", K_SPECIAL, -1, 0}, /* check_collator */
    {"batch_flattening", K_SPECIAL, -1, 0},   /* check_collator */
    {"peft_layers_pattern", K_SPECIAL, -1, 0},
    {"peft_layers_to_transform", K_SPECIAL, -1, 0},
    {"peft_trainable_token_indices", K_SPECIAL, -1, 0},
    {"peft_init_lora_weights", K_SPECIAL, -1, 0},
    {"peft_use_dora", K_SPECIAL, -1, 0},
    {"peft_use_rslora", K_BOOL, F(peft_use_rslora), 0},
    {"plugins", K_SPECIAL, -1, 0},
    {"resize_token_embeddings_to_32x", K_BOOL, F(resize_32x), 0},
    {"resume_from_checkpoint", K_SPECIAL, -1, 0},
    {"ring_attn_func", K_SPECIAL, -1, 0},
    {"sample_packing", K_BOOL, F(sample_packing), 0},
    {"save_steps", K_INT, F(save_steps), 0},
    {"save_total_limit", K_INT, F(save_total_limit), 0},
    {"saves_per_epoch", K_INT, F(saves_per_epoch), 0},
    {"sdp_attention", K_BOOL, -1, 0},
    {"save_strategy", K_SPECIAL, -1, 0},
    {"seed", K_INT, F(seed), 0},
    {"shrink_embeddings", K_BOOL, F(shrink_embeddings), 0},
    {"sequence_len", K_INT, F(sequence_len), 1},
    {"sequence_parallel_degree", K_INT, F(sequence_parallel_degree), 1},
    /* Axolotl's default true shuffles the merged datasets once; false keeps
     * them in order, but HF Trainer's sampler shuffles the rows every epoch
     * anyway, and axo's own epoch shuffle does: neither changes the order */
    {"shuffle_merged_datasets", K_BOOL, F(shuffle_merged_datasets), 0},
    {"shuffle_before_merging_datasets", K_BOOL, F(shuffle_before_merging), 0},
    {"curriculum_sampling", K_BOOL, F(curriculum_sampling), 0},
    {"sample_packing_sequentially", K_BOOL, F(sample_packing_sequentially), 0},
    {"multipack_real_batches", K_BOOL, F(multipack_real_batches), 0},
    {"reinit_weights", K_BOOL, F(reinit_weights), 0},
    {"sample_packing_eff_est", K_NUM, F(sample_packing_eff_est), 1},
    {"total_num_tokens", K_INT, F(total_num_tokens), 1},
    {"sample_packing_group_size", K_INT, F(sample_packing_group_size), 1},
    {"sample_packing_bin_size", K_INT, F(sample_packing_bin_size), 1},
    {"dataloader_drop_last", K_BOOL, F(dataloader_drop_last), 0},
    {"dataset_exact_deduplication", K_BOOL, F(dataset_exact_deduplication), 0},
    {"min_sample_len", K_INT, F(min_sample_len), 0},
    {"eval_sequence_len", K_INT, F(eval_sequence_len), 1},
    {"dataset_shard_num", K_INT, F(dataset_shard_num), 1},
    {"dataset_shard_idx", K_INT, F(dataset_shard_idx), 0},
    {"special_tokens", K_SPECIAL, -1, 0},
    {"strict", K_BOOL, -1, 0},
    {"test_datasets", K_SPECIAL, -1, 0},
    {"tf32", K_BOOL, F(tf32), 0},
    {"tokenizer_config", K_SPECIAL, -1, 0},
    {"tokenizer_type", K_ANY, -1, 0},
    {"default_system_message", K_SPECIAL, -1, 0},
    {"model_config", K_SPECIAL, -1, 0},
    {"model_quantization_config", K_SPECIAL, -1, 0},
    {"model_quantization_config_kwargs", K_SPECIAL, -1, 0},
    {"overrides_of_model_config", K_SPECIAL, -1, 0},
    {"tokens", K_SPECIAL, -1, 0},
    {"unfrozen_parameters", K_SPECIAL, -1, 0},
    {"train_on_inputs", K_BOOL, F(train_on_inputs), 0},
    {"trust_remote_code", K_SPECIAL, -1, 0},
    {"val_set_size", K_NUM, F(val_set_size), 0},
    {"warmup_ratio", K_NUM, F(warmup_ratio), 2},
    {"warmup_steps", K_INT, F(warmup_steps), 0},
    {"weight_decay", K_NUM, F(weight_decay), 0},
    {"xformers_attention", K_BOOL, -1, 0},
};
#undef F

static const key_def *find_key(const char *name) {
    for (size_t i = 0; i < AX_ARRAY_LEN(keys); i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

int64_t fe_neftune_multiple(const fe_config *c) {
    if (c->batch_flattening) return 1; /* DataCollatorWithFlattening: no padding */
    const int pad = c->pad_to_sequence_len < 0 && c->sample_packing ? 1 : c->pad_to_sequence_len;
    const int64_t m = c->pad_to_multiple_of > 0 ? c->pad_to_multiple_of : 64;
    return pad > 0 ? m * ((c->sequence_len + m - 1) / m) : pad < 0 ? m : 1;
}

/* ---- Axolotl keys axo does not read ---------------------------------------
 * fe_refused_keys: they change what is trained (the model, the loss, the
 * data, the optimizer or the schedule), so only a value that leaves training
 * as it is (null, Axolotl's default, or an "off") is accepted; any other is
 * an error rather than a run that silently trains something else. The keys
 * of plugins (kd_*, spectrum_*, grokfast_*, ...) are inert without their
 * plugin, which `plugins:` refuses, but a value other than the default is
 * refused as well. Sources: Axolotl's schemas (AxolotlInputConfig and its
 * mixins, the integrations' args.py) and the keys of older releases.
 * (tokens, special_tokens, added_tokens_overrides and the embedding-resize
 * keys are read: fe_resolve_tokenizer.) */
const fe_refused_key fe_refused_keys[] = {
    /* RL, reward models and their losses */
    {"ebft", "", "Energy-Based Fine-Tuning"},
    {"reward_model", "false", "a reward model: classification head and pairwise loss"},
    {"process_reward_model", "false", "a process reward model: token classification over steps"},
    {"center_rewards_coefficient", "", "a penalty centering the reward model's outputs"},
    {"num_labels", "", "the classification head of a reward model"},
    {"dpo_use_weighting", "false", "weighted DPO loss"},
    {"kto_desirable_weight", "", "the KTO desirable-loss weight"},
    {"kto_undesirable_weight", "", "the KTO undesirable-loss weight"},
    {"trainer_cls", "", "a custom Trainer class"},
    /* the model */
    {"qat", "", "quantization-aware training: fake-quantized weights and activations"},
    {"embeddings_skip_upcast", "false", "embeddings kept in low precision under PEFT"},
    {"model_kwargs", "{}", "extra from_pretrained arguments"},
    {"overrides_of_model_kwargs", "{}", "extra from_pretrained arguments"},
    {"cls_model_config", "", "another config class for the model"},
    {"processor_type", "", "a multimodal processor"},
    {"image_size", "", "resized training images"},
    {"image_resize_algorithm", "", "the resampling of training images"},
    {"gptq", "false", "a GPTQ-quantized base model"},
    {"rope_scaling", "", "RoPE scaling (Axolotl takes it under model_config)"},
    {"lisa_n_layers", "", "LISA: only a few random layers trained at a time"},
    {"use_onebitllms", "false", "1.58-bit (BitNet) training"},
    {"fp32_norms", "false", "norm weights and their math kept in f32 under FSDP2 mixed precision"},
    {"fp32_norm_classes", "", "which norm modules stay in f32 (fp32_norms)"},
    {"lisa_step_interval", "", "how often LISA changes the trained layers"},
    {"lisa_layers_attribute", "model.layers", "where LISA finds the layers"},
    /* the tokenizer */
    {"tokenizer_use_fast", "true", "the slow tokenizer, which may tokenize differently"},
    {"tokenizer_legacy", "", "the tokenizer's legacy handling of text after special tokens"},
    {"tokenizer_use_mistral_common", "false", "the mistral-common tokenizer"},
    /* precision and attention */
    {"fp8", "false", "FP8 matmuls"},
    {"fp8_enable_fsdp_float8_all_gather", "false", "FP8 all-gather of FSDP weights"},
    {"float32", "false", "full fp32 instead of the configured precision"},
    {"s2_attention", "false", "shifted sparse attention, an approximation"},
    {"sage_attention", "false", "SageAttention's 8-bit QK, an approximation"},
    {"scaling_softmax", "false", "Scalable-Softmax attention"},
    {"scaling_softmax_factor", "", "the Scalable-Softmax scale"},
    {"scaling_softmax_bias", "", "the Scalable-Softmax bias"},
    /* the loss */
    {"use_eaft", "false", "the Entropy-Aware Focal Training loss"},
    {"eaft_alpha", "1.0", "the EAFT entropy exponent"},
    {"eaft_k", "20", "the EAFT top-k"},
    /* the data */
    {"skip_prepare_dataset", "false", "tokenizing on the fly without the prepare-time steps"},
    {"pretraining_dataset", "", "streamed pretraining data"},
    {"streaming", "false", "streamed datasets (order from a shuffle buffer, online packing)"},
    {"streaming_multipack_buffer_size", "10000", "the buffer of online packing"},
    {"pretrain_multipack_buffer_size", "10000", "the buffer of online packing"},
    {"pretrain_multipack_attn", "true", "attention across the samples of a pack"},
    {"pretraining_sample_concatenation", "false", "concatenated streamed samples"},
    {"max_packed_sequence_len", "0", "the old packing"},
    {"use_pose", "false", "PoSE position ids"},
    {"pose_split_on_token_ids", "", "PoSE chunk split points"},
    {"pose_max_context_len", "", "the PoSE context length"},
    {"pose_num_chunks", "", "the PoSE chunk count"},
    /* the step count and the optimizer */
    {"auto_find_batch_size", "false", "a smaller batch after an out-of-memory error"},
    {"optim_args", "{}, \"\"", "extra optimizer arguments"},
    {"optim_target_modules", "", "the modules a projecting optimizer acts on"},
    {"adam_epsilon2", "", "the CAME optimizer's second epsilon"},
    {"adam_beta3", "", "the CAME optimizer's third beta"},
    {"dion_lr", "", "the Dion optimizer"},
    {"dion_momentum", "", "the Dion optimizer"},
    {"dion_rank_fraction", "1.0", "the Dion optimizer"},
    {"dion_rank_multiple_of", "1", "the Dion optimizer"},
    {"qgalore_rank", "256", "the Q-GaLore optimizer"},
    {"qgalore_update_proj_gap", "200", "the Q-GaLore optimizer"},
    {"qgalore_scale", "0.25", "the Q-GaLore optimizer"},
    {"qgalore_proj_type", "std", "the Q-GaLore optimizer"},
    {"qgalore_proj_quant", "true", "the Q-GaLore optimizer"},
    {"qgalore_proj_bits", "4", "the Q-GaLore optimizer"},
    {"qgalore_proj_group_size", "256", "the Q-GaLore optimizer"},
    {"qgalore_cos_threshold", "0.4", "the Q-GaLore optimizer"},
    {"qgalore_gamma_proj", "2", "the Q-GaLore optimizer"},
    {"qgalore_queue_size", "5", "the Q-GaLore optimizer"},
    {"jagged_restart_steps", "", "learning-rate restarts every N steps"},
    {"jagged_restart_warmup_steps", "", "the warmup after each learning-rate restart"},
    {"jagged_restart_anneal_steps", "", "the anneal before each learning-rate restart"},
    /* PEFT */
    {"peft", "{}", "LoftQ initialization or another quantized-base backend"},
    {"peft_layer_replication", "", "duplicated layers"},
    {"peft_ensure_weight_tying", "false", "tied adapters of tied weights"},
    {"peft_autocast_adapter_dtype", "true", "adapter weights in the base dtype"},
    {"bnb_config_kwargs", "{}", "the bitsandbytes 4-bit quantization"},
    {"relora", "false", "ReLoRA restarts of the adapters"},
    {"relora_prune_ratio", "", "ReLoRA's pruning of the optimizer state"},
    {"relora_prune_method", "magnitude", "ReLoRA's pruning of the optimizer state"},
    {"relora_steps", "", "ReLoRA restarts"},
    {"relora_warmup_steps", "", "ReLoRA restarts"},
    {"relora_anneal_steps", "", "ReLoRA restarts"},
    /* plugin keys (integrations/<name>/args.py) */
    {"liger_use_token_scaling", "false", "the fused cross-entropy loss scaled per token"},
    {"kd_trainer", "false", "knowledge distillation"},
    {"kd_ce_alpha", "", "knowledge distillation"},
    {"kd_alpha", "", "knowledge distillation"},
    {"kd_temperature", "", "knowledge distillation"},
    {"kd_beta", "0", "knowledge distillation"},
    {"kd_normalize_topk", "", "knowledge distillation"},
    {"kd_online_server_base_url", "", "knowledge distillation from an online teacher"},
    {"kd_online_topk", "", "knowledge distillation from an online teacher"},
    {"kd_online_server", "vllm", "knowledge distillation from an online teacher"},
    {"kd_online_server_model", "", "knowledge distillation from an online teacher"},
    {"kd_online_max_new_tokens", "2048", "knowledge distillation from an online teacher"},
    {"kd_temperature_min", "", "knowledge distillation"},
    {"spectrum_top_fraction", "0.5", "Spectrum: only the top-SNR layers trained"},
    {"spectrum_model_name", "", "Spectrum: only the top-SNR layers trained"},
    {"grokfast_alpha", "0.98", "Grokfast's gradient filter"},
    {"grokfast_lamb", "2.0", "Grokfast's gradient filter"},
    {"llmcompressor", "", "sparse fine-tuning with an LLM Compressor recipe"},
    {"dense_mixer", "true", "DenseMixer's MoE router gradient"},
    {"enable_dft_loss", "false", "the Dynamic Fine-Tuning loss"},
    {"moe_balance_type", "", "aux-loss-free MoE routing"},
    {"moe_update_rate", "", "aux-loss-free MoE routing"},
    {"moe_update_momentum", "", "aux-loss-free MoE routing"},
    {"moe_bias_cap", "", "aux-loss-free MoE routing"},
    {"moe_afb_warmup_steps", "", "aux-loss-free MoE routing"},
    {"moe_bias_sync_group", "", "aux-loss-free MoE routing"},
    {"diffusion", "", "a masked-diffusion training objective"},
    {"noise_schedule", "", "a masked-diffusion training objective"},
    {"min_mask_ratio", "", "a masked-diffusion training objective"},
    {"max_mask_ratio", "", "a masked-diffusion training objective"},
    {"num_diffusion_steps", "", "a masked-diffusion training objective"},
    {"eps", "", "a masked-diffusion training objective"},
    {"importance_weighting", "", "a masked-diffusion training objective"},
};
const int fe_nrefused_keys = (int)AX_ARRAY_LEN(fe_refused_keys);

/* Axolotl keys that steer only infrastructure, speed or logging: what is
 * trained stays the same (wandb_* and swanlab_* are accepted by prefix). */
const char *const fe_infra_keys[] = {
    /* kernels, memory housekeeping and compilation: the same numbers, another speed */
    "torch_empty_cache_steps", "gc_collect_steps", "selective_checkpointing", "sdpa_varlen", "fused_attn_kernel",
    "flash_attn_d512", "large_head_attention", "ple_cpu_offload", "torch_compile_options",
    "vllm", "quantization", "dynamic_checkpoint", "precompute_ref_log_probs", "dpo_use_liger_kernel",
    "dpo_padding_free", "num_dataset_shards_to_save", "dataset_processes", "dataset_num_proc",
    "dataset_keep_in_memory", "dataloader_pin_memory", "dataloader_num_workers", "dataloader_prefetch_factor",
    "accelerator_config", "remove_unused_columns", "push_dataset_to_hub", "hf_use_auth_token", "device",
    "device_map", "world_size", "ddp", "ddp_timeout", "ddp_broadcast_buffers", "ddp_find_unused_parameters",
    "do_causal_lm_eval", "eval_causal_lm_metrics", "do_bench_eval", "bench_dataset", "bench_split",
    "loss_watchdog_threshold", "loss_watchdog_patience", "gc_steps", "gradient_checkpointing_kwargs",
    "activation_offloading", "layer_offloading", "sample_packing_mp_start_method",
    "flex_attention", "flex_attn_compile_kwargs", "eager_attention",
    "flash_attn_cross_entropy", "flash_attn_rms_norm", "flash_attn_fuse_mlp", "flash_optimum",
    "gemma4_hybrid_attn_impl", "experts_implementation", "lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel",
    "lora_embedding_kernel", "chunked_cross_entropy", "chunked_cross_entropy_num_chunks", "tiled_mlp",
    "tiled_mlp_num_shards", "tiled_mlp_use_original_mlp", "llama4_linearized_experts", "deepcompile",
    "fsdp_final_state_dict_type", "dp_shard_size", "dp_replicate_size", "context_parallel_size",
    "tensor_parallel_size", "torch_compile", "torch_compile_backend", "torch_compile_mode",
    "save_first_step", "save_only_model", "use_tensorboard", "profiler_steps",
    "profiler_steps_start", "include_tokens_per_second", "include_tkps", "max_memory", "gpu_memory_limit",
    "low_cpu_mem_usage", "is_preprocess", "preprocess_iterable", "total_supervised_tokens", "axolotl_config_path",
    "is_falcon_derived_model", "is_llama_derived_model", "is_mistral_derived_model", "is_qwen_derived_model",
    "generate_samples", "num_generation_samples", "generation_max_new_tokens", "generation_temperature",
    "generation_top_p", "generation_top_k", "generation_prompt_ratio", "generation_do_sample", "capabilities",
    "env_capabilities", "tokenizer_save_jinja_files", "experimental_skip_move_to_device", "use_kernels",
    "hub_model_id", "hub_strategy", "hub_revision", "save_safetensors", "qlora_sharded_model_loading",
    "lora_on_cpu", "merge_lora", "merge_method", "relora_cpu_offload", "torchdistx_path", "use_mlflow",
    "mlflow_tracking_uri", "mlflow_experiment_name", "mlflow_run_name", "hf_mlflow_log_artifacts", "use_wandb",
    "use_comet", "comet_api_key", "comet_workspace", "comet_project_name", "comet_experiment_key", "comet_mode",
    "comet_online", "comet_experiment_config", "gradio_title", "gradio_share", "gradio_server_name",
    "gradio_server_port", "gradio_max_new_tokens", "gradio_temperature", "use_ray", "ray_run_name",
    "ray_num_workers", "resources_per_worker", "use_otel_metrics", "otel_metrics_host", "otel_metrics_port",
    "use_trackio", "trackio_project_name", "trackio_run_name", "trackio_space_id",
    /* what axo always does: a multimodal model's vision tower and projector are never trained (text only) */
    "freeze_mm_modules",
    /* plugins' (cut_cross_entropy: the same loss without the logits; liger_swiglu: liger_glu_activation's
     * old name, a kernel of the same math) */
    "cut_cross_entropy", "cut_cross_entropy_accum_c_fp32", "cut_cross_entropy_c_grad_chunk_size", "liger_swiglu",
    "liger_rms_norm_gated", "lm_eval_tasks", "lm_eval_batch_size", "lm_eval_post_train", "use_scattermoe",
    "use_sonicmoe", "dft_chunk_size", "enable_dft_channel_loss", "kd_online_timeout", "use_swanlab",
    /* older releases' */
    "eval_table_size", "eval_max_new_tokens", "unsloth_cross_entropy_loss",
    "unsloth_lora_mlp", "unsloth_lora_qkv", "unsloth_lora_o", "unsloth_rms_norm", "unsloth_rope",
    "flash_attn_fuse_qkv",
};
const int fe_ninfra_keys = (int)AX_ARRAY_LEN(fe_infra_keys);

static const fe_refused_key *find_refused(const char *name) {
    for (int i = 0; i < fe_nrefused_keys; i++)
        if (!strcmp(fe_refused_keys[i].name, name)) return &fe_refused_keys[i];
    return NULL;
}
static int is_infra(const char *name) {
    for (int i = 0; i < fe_ninfra_keys; i++)
        if (!strcmp(fe_infra_keys[i], name)) return 1;
    return !strncmp(name, "wandb_", 6) || !strncmp(name, "swanlab_", 8);
}

const char *fe_config_tables_overlap(void) {
    for (int i = 0; i < fe_nrefused_keys; i++) {
        const char *n = fe_refused_keys[i].name;
        if (find_key(n) || is_infra(n) || find_refused(n) != &fe_refused_keys[i]) return n;
    }
    for (int i = 0; i < fe_ninfra_keys; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(fe_infra_keys[i], fe_infra_keys[j])) return fe_infra_keys[i];
    for (int i = 0; i < fe_ninfra_keys; i++)
        if (find_key(fe_infra_keys[i])) return fe_infra_keys[i];
    for (size_t i = 0; i < AX_ARRAY_LEN(keys); i++)
        if (find_key(keys[i].name) != &keys[i]) return keys[i].name;
    return NULL;
}

/* Does v equal one harmless form: false, true, 0, [], {}, "" or a value? */
static int harmless_form(const yaml_node_t *v, const char *form) {
    if (!strcmp(form, "[]")) return v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.top == v->data.sequence.items.start;
    if (!strcmp(form, "{}")) return v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.top == v->data.mapping.pairs.start;
    const char *s = fe_y_text(v);
    if (!s) return 0;
    if (!strcmp(form, "\"\"")) return !*s;
    int b, fb;
    double x, fx;
    if (fe_parse_bool(form, &fb)) return fe_parse_bool(s, &b) && b == fb;
    if (fe_parse_num(form, &fx)) return fe_parse_num(s, &x) && x == fx;
    return !strcmp(s, form);
}

static int harmless(const yaml_node_t *v, const char *forms) {
    if (fe_y_is_null(v)) return 1;
    for (const char *p = forms; *p;) {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char form[64];
        snprintf(form, sizeof form, "%.*s", (int)n, p);
        if (harmless_form(v, form)) return 1;
        p += e ? n + 2 : n;
    }
    return 0;
}

/* "KEY: VALUE changes training (WHAT) and is not implemented in axo": the
 * value as written (a list or a mapping by its kind). */
static void refuse(const fe_yctx *y, const yaml_node_t *v, const char *key, const char *what, const char *accepts) {
    char loc[512], val[80];
    const char *s = fe_y_text(v);
    if (v->type == YAML_SEQUENCE_NODE) snprintf(val, sizeof val, "a list");
    else if (v->type == YAML_MAPPING_NODE) snprintf(val, sizeof val, "a mapping");
    else if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(s) > 60) snprintf(val, sizeof val, "\"%.57s%s\"", s, strlen(s) > 60 ? "..." : "");
    else snprintf(val, sizeof val, "%s", s);
    ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: %s changes training (%s) and is not implemented in axo%s%s", key,
             val, what, accepts ? "; " : "", accepts ? accepts : "");
}

static void check_refused(const fe_yctx *y, const fe_ypair *p, const fe_refused_key *r) {
    if (harmless(p->v, r->harmless)) return;
    char acc[160];
    snprintf(acc, sizeof acc, "axo accepts %s%s", *r->harmless ? "null, " : "only null", r->harmless);
    refuse(y, p->v, p->key, r->what, acc);
}

/* ---- loading ------------------------------------------------------------------ */
typedef struct loader {
    fe_yctx y;
    fe_config *c;
    const char *ydir;
    fe_ypair *pairs;
    int npairs;
    fe_yaml_set set;
    int bf16_auto;
    fe_fsdp_nodes fsdp;
    const yaml_node_t *trust_remote_code; /* its value when true */
    double noisy_alpha;                   /* noisy_embedding_alpha (0: not given) */
    const yaml_node_t *noisy_k;           /* its key, when nonzero */
} loader;

static const fe_ypair *pair(const loader *L, const char *key) {
    for (int i = 0; i < L->npairs; i++)
        if (!strcmp(L->pairs[i].key, key)) return &L->pairs[i];
    return NULL;
}

static void set_defaults(fe_config *c) {
    memset(c, 0, sizeof *c);
    c->output_dir = "./outputs";
    c->sequence_len = 512; /* Axolotl's default */
    c->micro_batch_size = 1;
    c->gradient_accumulation_steps = 1;
    c->num_epochs = 1;
    c->learning_rate = 5e-5;
    c->lr_scheduler = FE_SCHED_COSINE;
    c->warmup_steps = -1, c->warmup_ratio = NAN; /* unset: Axolotl's 3% of its step count, at most 100 */
    c->sched_num_cycles = c->sched_power = c->sched_lr_end = c->sched_timescale = NAN;
    c->sched_min_lr = c->sched_min_lr_rate = c->cosine_min_lr_ratio = c->cosine_constant_lr_ratio = NAN;
    c->sched_warmup_lr_rate = c->sched_num_decay_steps = c->sched_num_stable_steps = c->sched_min_lr_ratio = NAN;
    c->sched_factor = c->sched_patience = c->sched_threshold = c->sched_cooldown = c->sched_eps = NAN;
    c->oc_pct_start = c->oc_div_factor = c->oc_final_div_factor = c->oc_base_momentum = c->oc_max_momentum = NAN;
    c->oc_three_phase = c->oc_cycle_momentum = -1;
    c->sched_greedy_warmup = c->sched_max_lr = c->sched_window = c->sched_reset_start = NAN;
    c->sched_smooth = -1;
    c->pad_to_sequence_len = -1;
    c->model_quant_dequantize = -1;
    c->optimizer = "adamw_torch";
    c->rl_beta = 0.1; /* TRL DPOConfig.beta */
    c->dpo_loss_types = "sigmoid";
    c->adam_beta1 = 0.9;
    c->adam_beta2 = 0.999;
    c->adam_epsilon = 1e-8;
    c->max_grad_norm = 1.0;
    c->lora_alpha = 16;
    c->loraplus_lr_embedding = 1e-6; /* Axolotl's default */
    c->embedding_lr = c->embedding_lr_scale = NAN;
    c->shuffle_merged_datasets = 1;
    c->dataset_shard_num = c->dataset_shard_idx = -1;
    c->sequence_parallel_degree = 1;
    c->heads_k_stride = 1;
    c->liger_rope = c->liger_rms_norm = c->liger_glu_activation = c->liger_layer_norm = -1;
    c->liger_cross_entropy = c->liger_fused_linear_cross_entropy = -1;
    c->logging_steps = -1; /* unset: Axolotl's max(min(int(0.005 x its steps), 10), 1) (rt_axolotl_logging_steps) */
    c->seed = 42;
    c->ddp_bucket_cap_mb = 25; /* torch DistributedDataParallel's default */
}

static int match_one(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* A value that must be one of `names`: index, or -1 with an error listing
 * them. */
static int y_enum(const loader *L, const char *key, const yaml_node_t *v, const char *const *names, int n) {
    const char *s = fe_y_text(v);
    int i = s && !fe_y_is_null(v) ? match_one(s, names, n) : -1;
    if (i >= 0) return i;
    char exp[512] = "one of";
    for (int k = 0; k < n; k++) {
        strncat(exp, k ? ", " : " ", sizeof exp - strlen(exp) - 1);
        strncat(exp, names[k], sizeof exp - strlen(exp) - 1);
    }
    yerr(&L->y, v, key, exp);
    return -1;
}

static void not_implemented(const loader *L, const yaml_node_t *v, const char *fmt, const char *key) {
    char loc[512];
    ax_error(L->y.d, fe_yloc(&L->y, v, loc, sizeof loc), fmt, key);
}

static void do_string_list(loader *L, const fe_ypair *p, const char ***out, int *nout);

/* A list of strings into a fixed array (roles_to_train, eot_tokens). */
static int str_list(loader *L, const yaml_node_t *v, const char *key, const char **arr, int cap) {
    const fe_yctx *y = &L->y;
    char loc[512];
    if (v->type != YAML_SEQUENCE_NODE) {
        yerr(y, v, key, "a list of strings");
        return -1;
    }
    yaml_node_item_t *it = v->data.sequence.items.start;
    int n = (int)(v->data.sequence.items.top - it);
    if (n > cap) {
        ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: at most %d entries, found %d", key, cap, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s[%d]", key, i);
        if (fe_y_str(y, name, yaml_document_get_node(y->doc, it[i]), &arr[i]) != 0) return -1;
    }
    return n;
}

static const char *const eot_mode_names[] = {"none", "turn", "all", "last"};

/* train_on_eos / train_on_eot: all | turn | last | none (false = none) */
static int eot_mode(loader *L, const yaml_node_t *v, const char *key) {
    const char *s = fe_y_text(v);
    int b;
    if (s && fe_parse_bool(s, &b) && !b) return RT_EOT_NONE;
    return y_enum(L, key, v, eot_mode_names, 4);
}

/* chat_template_jinja: a path to an existing file (as given, or beside the
 * config) is read; anything else is the template itself (Axolotl's rule) */
static void jinja_src(loader *L, const char *key, const yaml_node_t *v, fe_jinja_src *out) {
    const fe_yctx *y = &L->y;
    const char *s;
    if (fe_y_str(y, key, v, &s) != 0) return;
    char loc[512];
    fe_yloc(y, v, loc, sizeof loc);
    if (!strchr(s, '\n') && strlen(s) < 4096) {
        const char *cand[2] = {s, s[0] != '/' ? ax_arena_printf(y->ar, "%s/%s", L->ydir, s) : NULL};
        for (int i = 0; i < 2; i++) {
            if (!cand[i] || !is_file(cand[i])) continue;
            size_t n;
            char *text = ax_read_file(cand[i], &n, y->d);
            if (!text) return;
            out->text = ax_arena_strndup(y->ar, text, n);
            out->where = cand[i];
            free(text);
            return;
        }
    }
    size_t sl = strlen(s);
    if (!strstr(s, "{{") && !strstr(s, "{%") &&
        (strchr(s, '/') || (sl > 6 && !strcmp(s + sl - 6, ".jinja")) || (sl > 3 && !strcmp(s + sl - 3, ".j2"))))
        ax_warn(y->d, loc, "%s: \"%s\" is not a file (as given, or beside the config), so it is the template text "
                           "itself, which has no Jinja tags",
                key, s);
    out->text = s;
    out->where = ax_arena_printf(y->ar, "%s: %s", loc, key);
}

/* Any YAML value as JSON: mappings, lists, and plain scalars as null, bool,
 * integer, number or string (quoted scalars stay strings); NULL after an
 * error at `key`. */
static json_t *y_to_json(loader *L, const yaml_node_t *v, const char *key) {
    const fe_yctx *y = &L->y;
    char k2[300];
    if (v->type == YAML_MAPPING_NODE) {
        fe_ypair *kp;
        int n = fe_y_pairs(y, v, key, &kp);
        if (n < 0) return NULL;
        json_t *o = json_object();
        for (int i = 0; i < n; i++) {
            snprintf(k2, sizeof k2, "%s.%s", key, kp[i].key);
            json_t *x = y_to_json(L, kp[i].v, k2);
            if (!x) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, kp[i].key, x);
        }
        return o;
    }
    if (v->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        int i = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
            snprintf(k2, sizeof k2, "%s[%d]", key, i);
            json_t *x = y_to_json(L, yaml_document_get_node(y->doc, *it), k2);
            if (!x) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, x);
        }
        return a;
    }
    const char *t = fe_y_text(v);
    if (!t) {
        yerr(y, v, key, "a value");
        return NULL;
    }
    int b;
    double num;
    int plain = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && fe_y_is_null(v)) return json_null();
    if (plain && fe_parse_bool(t, &b)) return json_boolean(b);
    if (plain && fe_parse_num(t, &num))
        return num == floor(num) && fabs(num) < 9e15 && !strpbrk(t, ".eE") ? json_integer((json_int_t)num) : json_real(num);
    return json_string(t);
}

/* chat_template_kwargs: {name: scalar} as a JSON object */
static void template_kwargs(loader *L, const char *key, const yaml_node_t *v, const char **out) {
    const fe_yctx *y = &L->y;
    fe_ypair *kp;
    int n = v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, v, key, &kp) : -1;
    if (n < 0) {
        yerr(y, v, key, "a mapping {name: value} of template variables");
        return;
    }
    json_t *o = json_object();
    for (int i = 0; i < n; i++) {
        const yaml_node_t *x = kp[i].v;
        const char *t = fe_y_text(x);
        char k2[200];
        snprintf(k2, sizeof k2, "%s.%s", key, kp[i].key);
        if (!t) {
            yerr(y, x, k2, "a string, number or boolean");
            continue;
        }
        json_object_set_new(o, kp[i].key, y_to_json(L, x, k2)); /* a scalar: never NULL */
    }
    char *js = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    *out = ax_arena_strdup(y->ar, js);
    free(js);
    json_decref(o);
}

/* Keys every `datasets:` entry may have, read by the entry loop itself (path, type, shards) or meaning nothing
 * for a local file (ds_type, split). */
static int dataset_common_key(const char *k) {
    static const char *const keys[] = {"path", "type", "ds_type", "split", "shards", "shards_idx", "data_files", "revision",
                                       "name"};
    for (size_t i = 0; i < AX_ARRAY_LEN(keys); i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

/* A dataset's roles: {role: [names in the data]} into the spec's map (source -> role); -1 on a bad value */
static int roles_map(loader *L, const yaml_node_t *v, const char *key, rt_ds_spec *s) {
    const fe_yctx *y = &L->y;
    fe_ypair *mp;
    int nm = v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, v, key, &mp) : -1;
    if (nm < 0) {
        yerr(y, v, key, "a mapping {role: [names in the data]}");
        return -1;
    }
    s->nrole_map = 0;
    for (int j = 0; j < nm; j++) {
        char k2[200];
        snprintf(k2, sizeof k2, "%s.%s", key, mp[j].key);
        const char *src[RT_MAX_ROLES];
        int n = str_list(L, mp[j].v, k2, src, RT_MAX_ROLES);
        for (int q = 0; q < n && s->nrole_map < RT_MAX_ROLES * 2; q++)
            s->role_from[s->nrole_map] = src[q], s->role_to[s->nrole_map++] = mp[j].key;
    }
    return 0;
}

/* The keys of one `datasets:` entry with a type (Axolotl's dataset schema). */
static void dataset_keys(loader *L, fe_dataset *ds, const fe_ypair *dp, int np, const char *name) {
    const fe_yctx *y = &L->y;
    char key[160], loc[512];
    rt_ds_spec *s = &ds->spec;
    const yaml_node_t *eot_node = NULL;
    for (int k = 0; k < np; k++) {
        const char *kk = dp[k].key;
        const yaml_node_t *v = dp[k].v;
        snprintf(key, sizeof key, "%s.%s", name, kk);
        if (dataset_common_key(kk) || fe_y_is_null(v)) continue;
        int chat = s->fmt == RT_FMT_CHAT;
        if (!strcmp(kk, "field") && s->fmt == RT_FMT_COMPLETION) {
            fe_y_str(y, key, v, &s->field);
        } else if (chat && !strcmp(kk, "field_messages")) {
            fe_y_str(y, key, v, &s->field_messages);
        } else if (chat && !strcmp(kk, "field_system")) {
            fe_y_str(y, key, v, &s->field_system);
        } else if (chat && !strcmp(kk, "message_field_role")) {
            fe_y_str(y, key, v, &s->role_key);
        } else if (chat && !strcmp(kk, "message_field_content")) {
            fe_y_str(y, key, v, &s->content_key);
        } else if (chat && !strcmp(kk, "message_field_training")) {
            fe_y_str(y, key, v, &s->training_key);
        } else if (chat && !strcmp(kk, "message_field_training_detail")) {
            fe_y_str(y, key, v, &s->training_detail_key);
        } else if (chat && !strcmp(kk, "template_thinking_key")) {
            fe_y_str(y, key, v, &s->thinking_key);
        } else if (chat && !strcmp(kk, "field_tools")) {
            const char *ft; /* Axolotl 0.19's StrategyLoader never hands it to the prompter */
            if (fe_y_str(y, key, v, &ft) == 0 && strcmp(ft, "tools"))
                ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc),
                        "%s: changes nothing in Axolotl 0.19 (its chat_template loader never passes it on: tools "
                        "are always read from \"tools\"), nor here",
                        key);
        } else if (chat && !strcmp(kk, "split_thinking")) {
            int b;
            if (fe_y_bool(y, key, v, &b) == 0) s->split_thinking = b;
        } else if (chat && !strcmp(kk, "field_thinking")) {
            /* Axolotl 0.19 maps reasoning_content from field_thinking only when message_property_mappings is
             * empty, which its config validation never leaves it (role and content are always filled in): the
             * key changes nothing there, nor here. Map the field in message_property_mappings instead. */
            const char *ft;
            if (fe_y_str(y, key, v, &ft) == 0 && strcmp(ft, "reasoning_content"))
                ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc),
                        "%s: changes nothing in Axolotl 0.19 (its config validation always fills in "
                        "message_property_mappings, and field_thinking is read only when that is empty), nor here; "
                        "to read reasoning from %s, map it: message_property_mappings: {reasoning_content: %s}",
                        key, ft, ft);
        } else if (chat && !strcmp(kk, "message_property_mappings")) {
            fe_ypair *mp;
            int nm = v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, v, key, &mp) : -1;
            if (nm < 0) {
                yerr(y, v, key, "a mapping {role: FIELD, content: FIELD}");
                continue;
            }
            for (int j = 0; j < nm; j++) {
                char k2[200];
                snprintf(k2, sizeof k2, "%s.%s", key, mp[j].key);
                if (!strcmp(mp[j].key, "role")) fe_y_str(y, k2, mp[j].v, &s->role_key);
                else if (!strcmp(mp[j].key, "content")) fe_y_str(y, k2, mp[j].v, &s->content_key);
                else if (s->nprop < RT_MAX_ROLES) { /* any other key the template reads, e.g. reasoning_content */
                    const char *from;
                    if (fe_y_str(y, k2, mp[j].v, &from) == 0) /* the key text lives in the YAML document: copy it */
                        s->prop_to[s->nprop] = ax_arena_strdup(y->ar, mp[j].key), s->prop_from[s->nprop++] = from;
                } else
                    yerr(y, mp[j].v, k2, "at most 16 mappings besides role and content");
            }
        } else if (chat && !strcmp(kk, "roles_to_train")) {
            int n = str_list(L, v, key, s->train_roles, RT_MAX_ROLES);
            if (n >= 0) s->ntrain_roles = n;
        } else if (chat && !strcmp(kk, "roles")) {
            roles_map(L, v, key, s);
        } else if (chat && !strcmp(kk, "train_on_eos")) {
            int m = eot_mode(L, v, key);
            if (m >= 0) s->train_on_eos = (rt_eot_mode)m;
        } else if (chat && !strcmp(kk, "train_on_eot")) {
            int m = eot_mode(L, v, key);
            if (m >= 0) s->train_on_eot = (rt_eot_mode)m;
            eot_node = v;
        } else if (chat && !strcmp(kk, "chat_template")) {
            fe_y_str(y, key, v, &ds->chat_template);
        } else if (chat && !strcmp(kk, "chat_template_jinja")) {
            jinja_src(L, key, v, &ds->chat_template_jinja);
        } else if (chat && !strcmp(kk, "drop_system_message")) {
            int b;
            if (fe_y_bool(y, key, v, &b) == 0) s->drop_system_message = b;
        } else {
            ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s: not a key of a `%s` dataset that axo reads, ignored",
                    key, ds->type);
        }
    }
    if (!eot_node) s->train_on_eot = s->train_on_eos; /* Axolotl: train_on_eot defaults to train_on_eos */
}

/* `type:` as a mapping: Axolotl's user_defined dataset (UserDefinedDatasetConfig,
 * its defaults), formats checked now as Python's str.format would fail on
 * the first row. 0, or -1 after an error. */
static int user_defined_type(loader *L, fe_dataset *ds, const yaml_node_t *v, const char *key) {
    const fe_yctx *y = &L->y;
    char loc[512], k2[160], err[256];
    fe_ypair *kp;
    int n = fe_y_pairs(y, v, key, &kp), bad = 0;
    rt_ds_spec_defaults(&ds->spec, RT_FMT_ALPACA);
    rt_ds_spec *s = &ds->spec;
    s->user_defined = 1;
    s->ud_system_prompt = "", s->ud_field_system = "system", s->ud_field_instruction = "instruction";
    s->ud_field_input = "input", s->ud_field_output = "output", s->ud_format = "{instruction} {input} ";
    s->ud_no_input_format = "{instruction} ", s->ud_system_format = "{system}";
    static const char *const turn[] = {"instruction", "input", NULL}, *const noin[] = {"instruction", NULL},
                             *const sys[] = {"system", NULL};
    for (int i = 0; i < n; i++) {
        struct { const char *name; const char **field; const char *const *names; } f[] = {
            {"system_prompt", &s->ud_system_prompt, NULL},   {"field_system", &s->ud_field_system, NULL},
            {"field_instruction", &s->ud_field_instruction, NULL}, {"field_input", &s->ud_field_input, NULL},
            {"field_output", &s->ud_field_output, NULL},     {"format", &s->ud_format, turn},
            {"no_input_format", &s->ud_no_input_format, noin}, {"system_format", &s->ud_system_format, sys}};
        snprintf(k2, sizeof k2, "%s.%s", key, kp[i].key);
        size_t j = 0;
        while (j < AX_ARRAY_LEN(f) && strcmp(f[j].name, kp[i].key)) j++;
        if (j == AX_ARRAY_LEN(f)) {
            ax_warn(y->d, fe_yloc(y, kp[i].k, loc, sizeof loc), "%s: not a key of a user-defined prompt format, ignored", k2);
            continue;
        }
        const char *val;
        if (fe_y_str(y, k2, kp[i].v, &val) != 0) {
            bad = 1;
            continue;
        }
        if (f[j].names && rt_ud_format_check(val, f[j].names, err, sizeof err) != 0) {
            ax_error(y->d, fe_yloc(y, kp[i].v, loc, sizeof loc), "%s: %s", k2, err);
            bad = 1;
            continue;
        }
        *f[j].field = val;
    }
    ds->type = "user_defined";
    ds->formatted = 1;
    return bad ? -1 : 0;
}

/* rl: dpo, ipo or simpo (check_rl reads the rest of rl; the datasets need only this): Axolotl loads them through
 * its DPO strategies */
static int rl_dpo(loader *L) {
    const fe_ypair *p = pair(L, "rl");
    const char *t = p ? fe_y_text(p->v) : NULL;
    return t && (!strcmp(t, "dpo") || !strcmp(t, "ipo") || !strcmp(t, "simpo"));
}

/* rl: simpo and rl: orpo: TRL's CPOTrainer and ORPOTrainer tokenize the pairs themselves (their tokenize_row,
 * runtime/prompt.c) */
static int rl_simpo(loader *L) {
    const fe_ypair *p = pair(L, "rl");
    const char *t = p ? fe_y_text(p->v) : NULL;
    return t && (!strcmp(t, "simpo") || !strcmp(t, "orpo"));
}

/* rl: orpo: Axolotl 0.19 loads the datasets through its ORPO strategies (prompt_strategies/orpo), of which
 * chat_template.argilla makes the prompt / chosen / rejected texts TRL's ORPOTrainer takes */
static int rl_orpo(loader *L) {
    const fe_ypair *p = pair(L, "rl");
    const char *t = p ? fe_y_text(p->v) : NULL;
    return t && !strcmp(t, "orpo");
}

static int orpo_type(loader *L, fe_dataset *ds, const yaml_node_t *v, const fe_ypair *dp, int np, const char *key) {
    const fe_yctx *y = &L->y;
    char loc[512];
    const char *t = NULL;
    rt_ds_spec_defaults(&ds->spec, RT_FMT_DPO);
    ds->formatted = 1;
    ds->type = "passthrough";
    if (v && v->type == YAML_SCALAR_NODE) t = fe_y_text(v);
    if (!v || fe_y_is_null(v) || (t && !*t)) /* no type (Axolotl's falsy ""): rows of prompt / chosen / rejected texts */
        return 0;
    if (!t || strcmp(t, "chat_template.argilla")) {
        ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: with rl: orpo axo reads Axolotl 0.19's ORPO dataset type "
                 "chat_template.argilla (conversations under \"chosen\" and \"rejected\", rendered with the config's "
                 "chat_template), or no type (rows of prompt, chosen and rejected texts), found %s", key, t ? t : "a mapping");
        return -1;
    }
    ds->type = t;
    ds->spec.dpo_family = RT_DPO_CHAT;
    ds->spec.dpo_variant = RT_DPOV_ORPO_ARGILLA;
    ds->spec.field_messages = "chosen", ds->spec.ud_field_chosen = "chosen", ds->spec.ud_field_rejected = "rejected";
    for (int k = 0; k < np; k++) /* the transform asks the config for its template, never the dataset */
        if ((!strcmp(dp[k].key, "chat_template") || !strcmp(dp[k].key, "chat_template_jinja")) && !fe_y_is_null(dp[k].v))
            ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s: ignored: Axolotl's ORPO chat_template.argilla renders "
                    "with the top-level chat_template", dp[k].key);
    return 0;
}

/* A datasets[] entry's type under rl: dpo (Axolotl 0.19's prompt_strategies/dpo; runtime/prompt.h "dpo"): none
 * or passthrough, chatml[.variant], llama3[.variant], or a mapping (user_defined.default) */
/* A DPO dataset entry's keys: Axolotl 0.19 rebuilds each `datasets:` entry under rl: dpo as a DPODataset (path,
 * split, type, data_files, revision, field_messages, field_chosen, field_rejected) and drops every other key (its
 * validate_config). The three field_* are kept whatever the type (test_datasets[i] reads datasets[i]'s); the
 * loading keys that entry drops are refused (Axolotl would load the data without them), the rest warned about. */
static int dpo_entry_keys(loader *L, fe_dataset *ds, const fe_ypair *dp, int np, const char *name, int train_list) {
    const fe_yctx *y = &L->y;
    char key[160], loc[512];
    static const char *const fields[3] = {"field_messages", "field_chosen", "field_rejected"};
    int bad = 0;
    for (int k = 0; k < np; k++) {
        const char *kk = dp[k].key;
        const yaml_node_t *v = dp[k].v;
        snprintf(key, sizeof key, "%s.%s", name, kk);
        if (fe_y_is_null(v) || !strcmp(kk, "path") || !strcmp(kk, "type") || !strcmp(kk, "split") ||
            !strcmp(kk, "data_files") || !strcmp(kk, "revision"))
            continue;
        int f = 0;
        while (f < 3 && strcmp(kk, fields[f])) f++;
        if (f < 3) {
            bad |= fe_y_str(y, key, v, &ds->dpo_fields[f]) != 0;
            continue;
        }
        const int loading = !strcmp(kk, "name") || !strcmp(kk, "ds_type") || !strcmp(kk, "shards") || !strcmp(kk, "shards_idx");
        if (!train_list && loading) continue; /* test_datasets keep their schema: loaded with these */
        if (loading) {
            ax_error(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s: with rl: dpo Axolotl 0.19 rebuilds the entry as a "
                     "DPODataset, which drops it, and loads the data without it; remove it (or name the file directly)", key);
            bad = 1;
        } else {
            ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s: ignored, as Axolotl 0.19 ignores it under rl: dpo "
                    "(its DPODataset keeps only path, split, type, data_files, revision and field_messages / field_chosen "
                    "/ field_rejected; the chat template is the top-level one)", key);
        }
    }
    ds->spec.field_messages = ds->dpo_fields[0] ? ds->dpo_fields[0] : "messages";
    ds->spec.ud_field_chosen = ds->dpo_fields[1] ? ds->dpo_fields[1] : "chosen";
    ds->spec.ud_field_rejected = ds->dpo_fields[2] ? ds->dpo_fields[2] : "rejected";
    return bad ? -1 : 0;
}

static int dpo_type(loader *L, fe_dataset *ds, const yaml_node_t *v, const char *key) {
    const fe_yctx *y = &L->y;
    char loc[512], k2[160], err[256];
    rt_ds_spec_defaults(&ds->spec, RT_FMT_DPO);
    rt_ds_spec *s = &ds->spec;
    ds->formatted = 1;
    ds->type = "passthrough";
    if (!v || fe_y_is_null(v)) return 0;
    if (v->type == YAML_MAPPING_NODE) {
        s->dpo_family = RT_DPO_USER;
        s->ud_field_prompt = "prompt", s->ud_field_system = "system", s->ud_field_chosen = "chosen";
        s->ud_field_rejected = "rejected", s->ud_format = "{prompt}", s->ud_chosen_format = "{chosen}";
        s->ud_rejected_format = "{rejected}";
        static const char *const pn[] = {"prompt", "system", NULL}, *const cn[] = {"chosen", NULL},
                                 *const rn[] = {"rejected", NULL};
        fe_ypair *kp;
        int n = fe_y_pairs(y, v, key, &kp), bad = 0;
        for (int i = 0; i < n; i++) {
            struct { const char *name; const char **field; const char *const *names; } f[] = {
                {"field_prompt", &s->ud_field_prompt, NULL},     {"field_system", &s->ud_field_system, NULL},
                {"field_chosen", &s->ud_field_chosen, NULL},     {"field_rejected", &s->ud_field_rejected, NULL},
                {"prompt_format", &s->ud_format, pn},            {"chosen_format", &s->ud_chosen_format, cn},
                {"rejected_format", &s->ud_rejected_format, rn}};
            snprintf(k2, sizeof k2, "%s.%s", key, kp[i].key);
            size_t j = 0;
            while (j < AX_ARRAY_LEN(f) && strcmp(f[j].name, kp[i].key)) j++;
            if (j == AX_ARRAY_LEN(f)) {
                ax_warn(y->d, fe_yloc(y, kp[i].k, loc, sizeof loc), "%s: not a key of Axolotl's user-defined DPO format, ignored",
                        k2);
                continue;
            }
            const char *val;
            if (fe_y_is_null(kp[i].v)) continue; /* ds_cfg.get(...) or the default */
            if (fe_y_str(y, k2, kp[i].v, &val) != 0) {
                bad = 1;
                continue;
            }
            if (f[j].names && !*val) continue; /* an empty format: Axolotl's default ("if not prompt_format") */
            if (f[j].names && rt_ud_format_check(val, f[j].names, err, sizeof err) != 0) {
                ax_error(y->d, fe_yloc(y, kp[i].v, loc, sizeof loc), "%s: %s", k2, err);
                bad = 1;
                continue;
            }
            *f[j].field = val;
        }
        ds->type = "user_defined";
        return bad ? -1 : 0;
    }
    const char *t;
    if (fe_y_str(y, key, v, &t) != 0) return -1;
    if (!*t || !strcmp(t, "passthrough") || !strcmp(t, "passthrough.default")) return 0;
    if (!strcmp(t, "chat_template") || !strcmp(t, "chat_template.default") || !strcmp(t, "chat_template.argilla_chat")) {
        s->dpo_family = RT_DPO_CHAT;
        if (!strcmp(t, "chat_template.argilla_chat")) s->dpo_variant = RT_DPOV_ARGILLA_CHAT;
        ds->type = t;
        return 0;
    }
    if (!strcmp(t, "zephyr.nectar")) {
        s->dpo_family = RT_DPO_ZEPHYR;
        s->dpo_variant = RT_DPOV_NECTAR;
        ds->type = t;
        ax_warn(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: zephyr.nectar, as Axolotl 0.19 has it: the chosen answer is the "
                "one of largest \"rank\" and the rejected the next, while Nectar ranks its best answer 1", key);
        return 0;
    }
    const char *dot = strchr(t, '.');
    size_t fl = dot ? (size_t)(dot - t) : strlen(t);
    const char *var = dot ? dot + 1 : "default";
    int fam = fl == 6 && !strncmp(t, "chatml", 6) ? RT_DPO_CHATML : fl == 6 && !strncmp(t, "llama3", 6) ? RT_DPO_LLAMA3 : -1;
    int vi = -1;
    for (int i = 0; fam >= 0 && i < RT_DPOV_NECTAR; i++) /* chatml's and llama3's (nectar is zephyr's) */
        if (!strcmp(var, rt_dpo_variant_names[i])) vi = i;
    if (fam < 0 || vi < 0) {
        ax_error(y->d, fe_yloc(y, v, loc, sizeof loc),
                 "%s: DPO dataset type \"%s\" is not implemented; axo reads chat_template.default, "
                 "chat_template.argilla_chat, zephyr.nectar, chatml or llama3 "
                 "with .default, .argilla_chat, .icr, .intel, .prompt_pairs or .ultra, a user-defined format (type: "
                 "{field_prompt: ..., prompt_format: ...}), or rows that hold prompt, chosen and rejected (no type, or "
                 "passthrough)",
                 key, t);
        return -1;
    }
    s->dpo_family = (rt_dpo_family)fam;
    s->dpo_variant = (rt_dpo_variant)vi;
    ds->type = t;
    return 0;
}

/* datasets: or test_datasets: (p->key), into *out / *nout */
/* A datasets[] path that is no local file: a local folder (the .json/.jsonl files of the entry's split, as HF
 * datasets reads a folder) or a Hub repo id (those files of the repo: frontend/hub.h), with the entry's split,
 * data_files and revision keys. Returns their count with *paths, -1 after an error, or 0 when the path is for
 * resolve() (a local file, or neither). */
static int local_format(loader *L, fe_dataset *ds, const fe_ypair *dp, int np, const char *name, const char *given);

static int hub_dataset(loader *L, fe_dataset *ds, const char *name, const yaml_node_t *pv, const fe_ypair *dp, int np,
                       const char *given, const char ***paths, int **cont, const char **slice, int *by_name) {
    const fe_yctx *y = &L->y;
    char loc[512], key[160];
    size_t gl = strlen(given);
    static const char *const ext[] = {".json", ".jsonl", ".parquet", ".csv", ".arrow", ".txt"};
    int file_like = 0; /* "data.jsonl" has a repo id's shape too: a missing file, not a repo */
    for (size_t i = 0; i < AX_ARRAY_LEN(ext); i++)
        file_like |= gl > strlen(ext[i]) && !strcasecmp(given + gl - strlen(ext[i]), ext[i]);
    const char *rel = given[0] != '/' ? ax_arena_printf(y->ar, "%s/%s", L->ydir, given) : given;
    const char *dir = is_dir(given) ? given : is_dir(rel) ? rel : NULL;
    int local_file = is_file(given) || is_file(rel);
    if (local_file || (!dir && (file_like || !fe_hub_is_repo_id(given)))) {
        for (int k = 0; local_file && k < np; k++) /* HF's json loader of one file has no use for them */
            if ((!strcmp(dp[k].key, "data_files") || !strcmp(dp[k].key, "revision") || !strcmp(dp[k].key, "name")) &&
                !fe_y_is_null(dp[k].v))
                ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s.%s: ignored for a local file", name, dp[k].key);
        return 0;
    }
    fe_hub_ds_sel sel = {0};
    const char *rev = NULL, **cfg_names = NULL;
    int ncfg_names = 0;
    for (int k = 0; k < np; k++) {
        const char *kk = dp[k].key;
        const yaml_node_t *v = dp[k].v;
        snprintf(key, sizeof key, "%s.%s", name, kk);
        if (fe_y_is_null(v)) continue;
        if (!strcmp(kk, "split")) {
            if (fe_y_str(y, key, v, &sel.split) != 0) return -1;
        } else if (!strcmp(kk, "revision")) {
            if (dir) ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc), "%s: ignored for a local folder", key);
            else if (fe_y_str(y, key, v, &rev) != 0) return -1;
        } else if (!strcmp(kk, "name")) { /* a configuration of the dataset card */
            if (v->type != YAML_SCALAR_NODE) { /* Axolotl 0.19's SFT schema takes a str: a list makes pydantic take
                                                * the entry as a DPO dataset, which drops name, shards and the rest */
                yerr(y, v, key, "one configuration name (Axolotl 0.19 reads a list as another dataset schema that "
                                "drops it; write one entry per name)");
                return -1;
            }
            cfg_names = ax_arena_alloc(y->ar, sizeof *cfg_names);
            if (fe_y_str(y, key, v, &cfg_names[0]) != 0) return -1;
            ncfg_names = 1;
        } else if (!strcmp(kk, "data_files")) {
            const char **arr = ax_arena_alloc(y->ar, sizeof *arr * 64);
            int n = v->type == YAML_SCALAR_NODE ? (fe_y_str(y, key, v, &arr[0]) == 0 ? 1 : -1) : str_list(L, v, key, arr, 64);
            if (n < 0) return -1;
            sel.data_files = arr, sel.ndata_files = n;
        }
    }
    /* no split (or ""): Axolotl takes the "train" split of what load_dataset returns, of a test_datasets entry
     * "test" */
    if (sel.split && !*sel.split) sel.split = NULL;
    if (!sel.split && !strncmp(name, "test_datasets", 13)) sel.split = "test";
    if (sel.split) { /* HF's split spec: the split's name, and a slice of its rows (the runtime takes them) */
        char err[400];
        snprintf(key, sizeof key, "%s.split", name);
        if (fe_parse_split(y->ar, sel.split, &sel.split, slice, err, sizeof err)) {
            ax_error(y->d, key, "%s", err);
            return -1;
        }
    }
    snprintf(key, sizeof key, "%s.path", name);
    *by_name = 0;
    if (dir && sel.ndata_files) {
        /* Axolotl 0.19 loads a local folder's data_files with load_dataset(<ds_type, else the folder path's
         * format, else json>, data_files=...): resolved from where it runs, not in the folder, no card, no name */
        if (local_format(L, ds, dp, np, name, given) != 0) return -1;
        if (sel.split && strcmp(sel.split, "train")) {
            ax_error(y->d, fe_yloc(y, pv, loc, sizeof loc), "%s.split: \"%s\": the data_files of a local folder make "
                     "the one split \"train\" (Axolotl hands them to HF's %s loader)", name, sel.split,
                     fe_loader_names[ds->loader]);
            return -1;
        }
        char *cwd = realpath(".", NULL), *cfgdir = realpath(L->ydir, NULL); /* the plan holds absolute paths */
        const char *bases[2] = {cwd ? ax_arena_strdup(y->ar, cwd) : ".", cfgdir ? ax_arena_strdup(y->ar, cfgdir) : L->ydir};
        free(cwd), free(cfgdir);
        char err[1024];
        int n = fe_hub_glob_files(y->ar, sel.data_files, sel.ndata_files, bases, 2, paths, err, sizeof err);
        if (n < 0) {
            ax_error(y->d, fe_yloc(y, pv, loc, sizeof loc), "%s.data_files (the folder %s's, as Axolotl resolves them: "
                     "from its working directory): %s", name, dir, err);
            return -1;
        }
        for (int k = 0; k < n; k++)
            if (fe_hub_data_format((*paths)[k]) == 2 && ds->loader != FE_LOADER_PARQUET) {
                ax_error(y->d, fe_yloc(y, pv, loc, sizeof loc), "%s: %s is Parquet, and Axolotl reads a local folder's "
                         "data_files with HF's json loader unless ds_type says otherwise: set ds_type: parquet", name,
                         (*paths)[k]);
                return -1;
            }
        *cont = ax_arena_alloc(y->ar, sizeof **cont * (size_t)n);
        for (int k = 0; k < n; k++) (*cont)[k] = k > 0;
        *by_name = 1; /* the format is ds->loader's, not each name's */
        return n;
    }
    const char **all = NULL;
    int total = 0, *flags = NULL;
    for (int c = 0; c < (ncfg_names > 0 ? ncfg_names : 1); c++) {
        sel.name = ncfg_names > 0 ? cfg_names[c] : NULL;
        const char **got = NULL;
        int n;
        if (dir) {
            char err[1024];
            char *rp = realpath(dir, NULL);
            n = fe_hub_dataset_dir(y->ar, rp ? rp : dir, &sel, &got, err, sizeof err);
            free(rp);
            if (n < 0) ax_error(y->d, fe_yloc(y, pv, loc, sizeof loc), "%s: the folder %s: %s", key, dir, err);
        } else {
            n = fe_hub_dataset(y->ar, given, rev, &sel, fe_yloc(y, pv, loc, sizeof loc), key, y->d, &got);
        }
        if (n < 0) return -1;
        const char **grown = ax_arena_alloc(y->ar, sizeof *grown * (size_t)(total + n));
        int *gf = ax_arena_alloc(y->ar, sizeof *gf * (size_t)(total + n));
        if (total) memcpy(grown, all, sizeof *grown * (size_t)total), memcpy(gf, flags, sizeof *gf * (size_t)total);
        for (int k = 0; k < n; k++) grown[total + k] = got[k], gf[total + k] = k > 0; /* a name's later files continue it */
        all = grown, flags = gf, total += n;
    }
    *paths = all, *cont = flags;
    return total;
}

const char *const fe_loader_names[5] = {"json", "parquet", "text", "csv", "tsv"};

/* A local file's format, as Axolotl's get_ds_type chooses the HF datasets loader: the entry's ds_type, else
 * ".parquet", ".arrow", ".csv" or ".txt" anywhere in the path as written, else json. axo reads json, parquet, text
 * and csv (HF's loader names: "tsv" is none). */
static int local_format(loader *L, fe_dataset *ds, const fe_ypair *dp, int np, const char *name, const char *given) {
    const fe_yctx *y = &L->y;
    char key[160], loc[512];
    const char *t = NULL;
    const yaml_node_t *at = NULL;
    for (int k = 0; k < np; k++)
        if (!strcmp(dp[k].key, "ds_type") && !fe_y_is_null(dp[k].v)) {
            snprintf(key, sizeof key, "%s.ds_type", name);
            if (fe_y_str(y, key, dp[k].v, &t) != 0) return -1;
            at = dp[k].v;
        }
    if (!t) {
        static const char *const by_name[][2] = {{".parquet", "parquet"}, {".arrow", "arrow"}, {".csv", "csv"}, {".txt", "text"}};
        t = "json";
        for (size_t i = 0; i < AX_ARRAY_LEN(by_name) && !strcmp(t, "json"); i++)
            if (strstr(given, by_name[i][0])) t = by_name[i][1];
    }
    for (int i = 0; i <= FE_LOADER_CSV; i++)
        if (!strcmp(t, fe_loader_names[i])) {
            ds->loader = i;
            return 0;
        }
    if (at) {
        yerr(y, at, key, "json, parquet, text or csv (axo does not read HF datasets' other loaders; convert the file, "
                         "e.g. with HF datasets' to_json)");
    } else {
        snprintf(key, sizeof key, "%s.path", name);
        const yaml_node_t *pv = NULL;
        for (int k = 0; k < np; k++)
            if (!strcmp(dp[k].key, "path")) pv = dp[k].v;
        ax_error(y->d, fe_yloc(y, pv, loc, sizeof loc),
                 "%s: \"%s\" is read by HF datasets' %s loader (Axolotl chooses it from the name), which axo does not "
                 "reproduce: axo reads json, parquet, text and csv files (set ds_type: json if the file is JSON lines)",
                 key, given, t);
    }
    return -1;
}

/* A local file's split: HF's json / parquet loader of one file makes the one split "train", which a slice may
 * cut ("train[:500]": Axolotl keeps it). */
static int local_split(loader *L, fe_dataset *ds, const fe_ypair *dp, int np, const char *name) {
    const fe_yctx *y = &L->y;
    char key[160], err[400], loc[512];
    for (int k = 0; k < np; k++) {
        if (strcmp(dp[k].key, "split") || fe_y_is_null(dp[k].v)) continue;
        snprintf(key, sizeof key, "%s.split", name);
        const char *spec, *nm;
        if (fe_y_str(y, key, dp[k].v, &spec) != 0) return -1;
        if (!*spec) continue; /* Axolotl: an empty split is none */
        if (fe_parse_split(y->ar, spec, &nm, &ds->slice, err, sizeof err)) {
            ax_error(y->d, fe_yloc(y, dp[k].v, loc, sizeof loc), "%s: %s", key, err);
            return -1;
        }
        if (strcmp(nm, "train")) {
            ax_error(y->d, fe_yloc(y, dp[k].v, loc, sizeof loc),
                     "%s: \"%s\": a single file is the one split \"train\" (HF datasets' loader of a file)", key, nm);
            return -1;
        }
    }
    return 0;
}

static void do_datasets(loader *L, const fe_ypair *p, fe_dataset **out, int *nout) {
    const fe_yctx *y = &L->y;
    char loc[512];
    const char *list = p->key;
    if (p->v->type != YAML_SEQUENCE_NODE) {
        yerr(y, p->v, list, "a list of {path: FILE, type: ...}");
        return;
    }
    yaml_node_item_t *it = p->v->data.sequence.items.start;
    int n = (int)(p->v->data.sequence.items.top - it);
    if (n == 0) {
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "%s: expected at least one {path: FILE}, found an empty list", list);
    }
    *out = ax_arena_alloc(y->ar, sizeof **out * (size_t)(n ? n : 1));
    *nout = 0;
    int extra = 0, bsh = 0; /* extra: entries added for splits of several files */
    for (int i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(y->doc, it[i]);
        char name[64];
        snprintf(name, sizeof name, "%s[%d]", list, i);
        if (e->type != YAML_MAPPING_NODE) {
            yerr(y, e, name, "a mapping with `path:`");
            continue;
        }
        fe_ypair *dp;
        int np = fe_y_pairs(y, e, name, &dp);
        const fe_ypair *path = NULL, *type = NULL;
        for (int k = 0; k < np; k++) {
            if (!strcmp(dp[k].key, "path")) path = &dp[k];
            else if (!strcmp(dp[k].key, "type")) type = &dp[k];
        }
        fe_dataset *ds = &(*out)[*nout];
        memset(ds, 0, sizeof *ds);
        char key[96];
        const char *t = NULL;
        /* shards / shards_idx (any dataset): Axolotl's dataset.shuffle(seed).shard(shards, shards_idx) */
        for (int k = 0; k < np; k++) {
            int64_t v;
            char k2[160];
            snprintf(k2, sizeof k2, "%s.%s", name, dp[k].key);
            if ((strcmp(dp[k].key, "shards") && strcmp(dp[k].key, "shards_idx")) || fe_y_is_null(dp[k].v)) continue;
            if (fe_y_int(y, k2, dp[k].v, 0, &v) != 0) continue;
            if (!strcmp(dp[k].key, "shards")) ds->shards = v;
            else ds->shards_idx = v;
        }
        if (ds->shards > 0 && ds->shards_idx >= ds->shards)
            ax_error(y->d, fe_yloc(y, e, loc, sizeof loc), "%s.shards_idx: expected an index below shards %lld, found %lld",
                     name, (long long)ds->shards, (long long)ds->shards_idx);
        snprintf(key, sizeof key, "%s.type", name);
        if (rl_orpo(L)) { /* preference pairs: Axolotl's ORPO strategies */
            if (orpo_type(L, ds, type ? type->v : NULL, dp, np, key) != 0) continue;
            ds->spec.dpo_cpo = 1;
        } else if (rl_dpo(L)) { /* preference pairs: Axolotl's DPO strategies */
            if (dpo_type(L, ds, type ? type->v : NULL, key) != 0 ||
                dpo_entry_keys(L, ds, dp, np, name, !strcmp(list, "datasets")) != 0)
                continue;
            ds->spec.dpo_cpo = rl_simpo(L);
        } else if (type && type->v->type == YAML_MAPPING_NODE) { /* Axolotl's user_defined prompt format */
            if (user_defined_type(L, ds, type->v, key) != 0) continue;
            dataset_keys(L, ds, dp, np, name);
        } else if (type && !fe_y_is_null(type->v) && fe_y_str(y, key, type->v, &t) != 0) {
            continue;
        } else if (t && t[0]) { /* an empty type is a pre-tokenized dataset too */
            rt_fmt fmt;
            if (!strcmp(t, "completion")) fmt = RT_FMT_COMPLETION;
            else if (!strcmp(t, "alpaca")) fmt = RT_FMT_ALPACA;
            else if (!strcmp(t, "chat_template")) fmt = RT_FMT_CHAT;
            else if (!strcmp(t, "input_output")) fmt = RT_FMT_INPUT_OUTPUT;
            else {
                if (!strncmp(t, "sharegpt", 8))
                    ax_error(y->d, fe_yloc(y, type->v, loc, sizeof loc),
                             "%s: \"%s\" is deprecated in Axolotl too; use type: chat_template with field_messages: "
                             "conversations and message_property_mappings: {role: from, content: value}",
                             key, t);
                else
                    ax_error(y->d, fe_yloc(y, type->v, loc, sizeof loc),
                             "%s: dataset type \"%s\" is not implemented; axo reads alpaca, completion, chat_template, a user-defined format (type: {format: ..., field_instruction: ...}), "
                             "input_output, or pre-tokenized rows (input_ids/labels, no type)",
                             key, t);
                continue;
            }
            ds->type = t;
            ds->formatted = 1;
            rt_ds_spec_defaults(&ds->spec, fmt);
            dataset_keys(L, ds, dp, np, name);
        } else {
            for (int k = 0; k < np; k++)
                if (!dataset_common_key(dp[k].key))
                    ax_warn(y->d, fe_yloc(y, dp[k].k, loc, sizeof loc),
                            "%s.%s: unknown key for a pre-tokenized dataset (no type), ignored", name, dp[k].key);
        }
        snprintf(key, sizeof key, "%s.path", name);
        if (!path || fe_y_is_null(path->v)) {
            ax_error(y->d, fe_yloc(y, e, loc, sizeof loc), "%s: expected a path to a local .jsonl or .json file, found none",
                     key);
            continue;
        }
        const char *given;
        if (fe_y_str(y, key, path->v, &given) != 0) continue;
        const char **parts = NULL, *slice = NULL;
        int *cont = NULL, fixed_format = 0;
        int nparts = hub_dataset(L, ds, name, path->v, dp, np, given, &parts, &cont, &slice, &fixed_format);
        if (nparts < 0) continue;
        if (nparts == 0) {
            const char *r = resolve(y, L->ydir, key, path->v, given, 0,
                                    " (a local .jsonl / .json / .parquet file, or a Hub dataset repo id)");
            if (!r || local_format(L, ds, dp, np, name, given) != 0) continue;
            if (local_split(L, ds, dp, np, name) != 0) continue;
            ds->path = r;
            (*nout)++;
            continue;
        }
        /* a split of several files: HF datasets concatenates them, in order, into one dataset; here they are
         * consecutive datasets of the same entry, which the merge concatenates the same way. Only the keys that
         * act on one dataset before the merge would see the difference. */
        int longest = 0; /* the most files one dataset (one name) is made of */
        for (int k = 0, run = 0; k < nparts; k++) run = cont[k] ? run + 1 : 1, longest = run > longest ? run : longest;
        if (longest > 1 && (ds->shards > 0 || (pair(L, "shuffle_before_merging_datasets") &&
                                             fe_y_text(pair(L, "shuffle_before_merging_datasets")->v) &&
                                             fe_parse_bool(fe_y_text(pair(L, "shuffle_before_merging_datasets")->v), &bsh) &&
                                             bsh))) {
            ax_error(y->d, fe_yloc(y, path->v, loc, sizeof loc),
                     "%s: its split is %d files, and %s acts on the one dataset HF datasets makes of them, which axo "
                     "does not (name one file with data_files)",
                     key, longest, ds->shards > 0 ? "shards" : "shuffle_before_merging_datasets");
            continue;
        }
        if (nparts > 1) { /* room for the others after this entry */
            fe_dataset *grown = ax_arena_alloc(y->ar, sizeof *grown * (size_t)(n + extra + nparts));
            memcpy(grown, *out, sizeof *grown * (size_t)(*nout + 1));
            *out = grown, extra += nparts - 1;
            ds = &(*out)[*nout];
        }
        for (int k = 0; k < nparts; k++) {
            (*out)[*nout] = *ds;
            (*out)[*nout].slice = k == 0 ? slice : NULL; /* the split's rows: its first file carries the slice */
            (*out)[*nout].path = parts[k];
            if (!fixed_format) (*out)[*nout].loader = fe_hub_data_format(parts[k]) - 1;
            (*out)[*nout].continues = cont[k];
            (*nout)++;
        }
    }
}

static void do_string_list(loader *L, const fe_ypair *p, const char ***out, int *nout) {
    const fe_yctx *y = &L->y;
    if (p->v->type != YAML_SEQUENCE_NODE) {
        yerr(y, p->v, p->key, "a list of names");
        return;
    }
    yaml_node_item_t *it = p->v->data.sequence.items.start;
    int n = (int)(p->v->data.sequence.items.top - it);
    const char **arr = out ? ax_arena_alloc(y->ar, sizeof *arr * (size_t)(n ? n : 1)) : NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(y->doc, it[i]);
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", p->key, i);
        const char *s;
        if (fe_y_str(y, name, e, &s) == 0 && arr) arr[k++] = s;
    }
    if (out) {
        *out = arr;
        *nout = k;
    }
}

/* Axolotl's LayerNamePattern: a trailing [i], [a:b], [a:] or [:b] (digits
 * only) is a row range of the parameter, not part of the regex. */
int fe_unfrozen_parse(const char *s, size_t *base_len, int64_t *start, int64_t *end) {
    size_t n = strlen(s);
    *base_len = n, *start = 0, *end = -1;
    if (n < 3 || s[n - 1] != ']') return 0;
    const char *lb = strrchr(s, '[');
    if (!lb || lb == s) return 0;
    const char *in = lb + 1, *close = s + n - 1, *colon = NULL;
    for (const char *q = in; q < close; q++) {
        if (*q == ':' && !colon) colon = q;
        else if (*q < '0' || *q > '9') return 0; /* not digits with at most one colon */
    }
    /* Python: start_part, end_part = the digits before and after the colon (end_part None without one) */
    int64_t v[2] = {0, -1}; /* start, end (-1: None) */
    for (int k = 0; k < 2; k++) {
        const char *p0 = k ? (colon ? colon + 1 : close) : in, *p1 = k ? close : (colon ? colon : close);
        if (p0 == p1) continue;
        int64_t x = 0;
        for (const char *q = p0; q < p1; q++)
            if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, *q - '0', &x)) return -1;
        v[k] = x;
    }
    if (!colon && close > in) { /* "[i]": row i alone */
        if (v[0] == INT64_MAX) return -1;
        v[1] = v[0] + 1;
    }
    if (v[1] >= 0 && v[0] >= v[1]) return -1;
    *base_len = (size_t)(lb - s), *start = v[0], *end = v[1];
    return 1;
}

/* lr_groups: a list of {name, modules: [substrings of parameter names], lr}
 * (Axolotl's LrGroup) */
static void lr_groups(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512], k2[160];
    if (p->v->type != YAML_SEQUENCE_NODE) {
        yerr(y, p->v, p->key, "a list of {name, modules, lr}");
        return;
    }
    yaml_node_item_t *it = p->v->data.sequence.items.start;
    int n = (int)(p->v->data.sequence.items.top - it);
    c->lr_groups = ax_arena_alloc(y->ar, sizeof *c->lr_groups * (size_t)(n + 1));
    c->lr_groups_set = 1;
    for (int i = 0; i < n; i++) {
        const yaml_node_t *g = yaml_document_get_node(y->doc, it[i]);
        snprintf(k2, sizeof k2, "%s[%d]", p->key, i);
        fe_ypair *gp;
        int ng = g && g->type == YAML_MAPPING_NODE ? fe_y_pairs(y, g, k2, &gp) : -1;
        if (ng < 0) {
            yerr(y, g, k2, "a mapping {name, modules, lr}");
            continue;
        }
        struct fe_lr_group *lg = &c->lr_groups[c->nlr_groups];
        *lg = (struct fe_lr_group){0};
        int have = 0;
        for (int j = 0; j < ng; j++) {
            char k3[200];
            snprintf(k3, sizeof k3, "%s.%s", k2, gp[j].key);
            if (!strcmp(gp[j].key, "name")) have |= (fe_y_str(y, k3, gp[j].v, &lg->name) == 0) << 0;
            else if (!strcmp(gp[j].key, "lr")) have |= (fe_y_num(y, k3, gp[j].v, 0, &lg->lr) == 0) << 1;
            else if (!strcmp(gp[j].key, "modules")) {
                fe_ypair mp = {.key = ax_arena_strdup(y->ar, k3), .k = gp[j].k, .v = gp[j].v};
                int before = y->d->nerrors;
                do_string_list(L, &mp, &lg->modules, &lg->nmodules);
                have |= (y->d->nerrors == before) << 2;
            } else
                ax_error(y->d, fe_yloc(y, gp[j].k, loc, sizeof loc), "%s: not a key of an lr group (name, modules, lr)", k3);
        }
        if (have != 7)
            ax_error(y->d, fe_yloc(y, g, loc, sizeof loc), "%s: expected name, modules and lr (Axolotl's LrGroup)", k2);
        else
            c->nlr_groups++;
    }
}

/* unfrozen_parameters: a list of patterns (or one), matched as Axolotl's
 * freeze_layers_except matches them (frontend/lower.c) */
static void unfrozen(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512];
    if (p->v->type == YAML_SCALAR_NODE) {
        c->unfrozen = ax_arena_alloc(y->ar, sizeof *c->unfrozen);
        if (fe_y_str(y, p->key, p->v, &c->unfrozen[0]) == 0) c->nunfrozen = 1;
    } else {
        do_string_list(L, p, &c->unfrozen, &c->nunfrozen);
    }
    for (int i = 0; i < c->nunfrozen; i++) {
        char err[256];
        size_t bl;
        int64_t a, b;
        if (fe_unfrozen_parse(c->unfrozen[i], &bl, &a, &b) < 0) {
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                     "%s: \"%s\": a row range [start:end] needs end > start (Axolotl's ValueError)", p->key,
                     c->unfrozen[i]);
            continue;
        }
        char *base = ax_arena_alloc(y->ar, bl + 1);
        memcpy(base, c->unfrozen[i], bl);
        base[bl] = 0;
        if (rt_re_match(base, "", err, sizeof err) < 0)
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "%s: \"%s\" is not a regex: %s", p->key, base, err);
    }
}

/* fix_untrained_tokens: a boolean or an integer (Python's truth: on unless false or 0), or a list of token ids
 * that are fixed as well (Axolotl's token_ids_to_fix; an empty list is off) */
static void fix_untrained(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    const yaml_node_t *v = p->v;
    if (v->type == YAML_SEQUENCE_NODE) {
        int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
        c->fix_untrained_ids = ax_arena_alloc(y->ar, sizeof *c->fix_untrained_ids * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++) {
            const yaml_node_t *e = yaml_document_get_node(y->doc, v->data.sequence.items.start[i]);
            int64_t id;
            if (!e || fe_y_int(y, p->key, e, 0, &id) != 0) return;
            c->fix_untrained_ids[c->nfix_untrained_ids++] = id;
        }
        c->fix_untrained = n > 0;
        return;
    }
    int b;
    double x;
    const char *t = fe_y_text(v);
    if (fe_y_is_null(v)) return;
    if (t && fe_parse_bool(t, &b)) c->fix_untrained = b;
    else if (t && fe_parse_num(t, &x) && x == floor(x)) c->fix_untrained = x != 0;
    else yerr(y, v, p->key, "true, false, an integer or a list of token ids");
}

/* added_tokens_overrides: {token id: new content}, Axolotl's dict[int, str]
 * (an existing added token of the tokenizer gets another string) */
static void added_overrides(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512], k2[160];
    fe_ypair *kp;
    int n = p->v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, p->v, p->key, &kp) : -1;
    if (n < 0) {
        yerr(y, p->v, p->key, "a mapping {token id: \"new content\", ...}");
        return;
    }
    c->override_ids = ax_arena_alloc(y->ar, sizeof *c->override_ids * (size_t)(n ? n : 1));
    c->override_strs = ax_arena_alloc(y->ar, sizeof *c->override_strs * (size_t)(n ? n : 1));
    c->noverrides = 0;
    for (int i = 0; i < n; i++) {
        char *end;
        long long id = strtoll(kp[i].key, &end, 10);
        snprintf(k2, sizeof k2, "%s.%s", p->key, kp[i].key);
        if (!*kp[i].key || *end || id < 0 || id > INT32_MAX) {
            ax_error(y->d, fe_yloc(y, kp[i].k, loc, sizeof loc), "%s: expected a token id (a whole number >= 0) as the key, found "
                     "\"%s\"", p->key, kp[i].key);
            continue;
        }
        const char *s;
        if (fe_y_str(y, k2, kp[i].v, &s) != 0) continue;
        if (!*s) {
            ax_error(y->d, fe_yloc(y, kp[i].v, loc, sizeof loc), "%s: expected the token's new content, found an empty string", k2);
            continue;
        }
        c->override_ids[c->noverrides] = id;
        c->override_strs[c->noverrides++] = s;
    }
}

const char *const fe_sched_names[FE_SCHED_COUNT] = {
    "constant",           "linear",                    "cosine",              "constant_with_warmup", "cosine_with_restarts",
    "polynomial",         "inverse_sqrt",              "cosine_with_min_lr",  "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "rex",                    "reduce_lr_on_plateau", "one_cycle",           "greedy"};

/* lr_scheduler_kwargs: the arguments HF's schedules take (a key another
 * schedule takes is checked against lr_scheduler in check_schedule) */
#define SCHED_KWARGS                                                                                                  \
    "num_cycles, power, lr_end, timescale, min_lr, min_lr_rate, warmup_lr_rate, num_decay_steps, num_stable_steps, " \
    "min_lr_ratio, warmup_type, decay_type, mode, factor, patience, threshold, threshold_mode, cooldown, eps, warmup, " \
    "max_lr, smooth, window_size, reset_start, verbose"
/* lr_scheduler_kwargs' pairs: their count, or -1 with an error naming the arguments `what` expects */
static int kwargs_pairs(const fe_yctx *y, const fe_ypair *p, const char *what, fe_ypair **kp) {
    int n = p->v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, p->v, p->key, kp) : -1;
    if (n < 0) {
        char exp[512];
        snprintf(exp, sizeof exp, "a mapping of %s", what);
        yerr(y, p->v, p->key, exp);
    }
    return n;
}

static void sched_kwargs(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512], k2[160];
    fe_ypair *kp;
    const int n = kwargs_pairs(y, p, "the schedule's arguments (" SCHED_KWARGS ")", &kp);
    if (n < 0) return;
    struct { const char *name; double *dst; } f[] = {{"num_cycles", &c->sched_num_cycles}, {"power", &c->sched_power},
                                                     {"lr_end", &c->sched_lr_end},         {"timescale", &c->sched_timescale},
                                                     {"min_lr", &c->sched_min_lr},         {"min_lr_rate", &c->sched_min_lr_rate},
                                                     {"warmup_lr_rate", &c->sched_warmup_lr_rate},
                                                     {"num_decay_steps", &c->sched_num_decay_steps},
                                                     {"num_stable_steps", &c->sched_num_stable_steps},
                                                     {"min_lr_ratio", &c->sched_min_lr_ratio},
                                                     {"factor", &c->sched_factor},
                                                     {"patience", &c->sched_patience},
                                                     {"threshold", &c->sched_threshold},
                                                     {"cooldown", &c->sched_cooldown},
                                                     {"eps", &c->sched_eps},
                                                     {"warmup", &c->sched_greedy_warmup},
                                                     {"max_lr", &c->sched_max_lr},
                                                     {"window_size", &c->sched_window},
                                                     {"reset_start", &c->sched_reset_start}};
    static const char *const shapes[] = {"linear", "cosine", "1-sqrt"}; /* get_wsd_schedule's warmup and decay types */
    for (int i = 0; i < n; i++) {
        snprintf(k2, sizeof k2, "%s.%s", p->key, kp[i].key);
        if (fe_y_is_null(kp[i].v)) continue; /* None: HF's default */
        const int md = !strcmp(kp[i].key, "mode"), tm = !strcmp(kp[i].key, "threshold_mode");
        if (md || tm) { /* ReduceLROnPlateau's */
            const char *t = fe_y_text(kp[i].v);
            const char *a = md ? "min" : "rel", *b = md ? "max" : "abs";
            if (!t || kp[i].v->type != YAML_SCALAR_NODE || (strcmp(t, a) && strcmp(t, b)))
                yerr(y, kp[i].v, ax_arena_strdup(y->ar, k2),
                     md ? "min or max (ReduceLROnPlateau, GreedyLR)" : "rel or abs (ReduceLROnPlateau, GreedyLR)");
            else
                *(md ? &c->sched_mode : &c->sched_threshold_mode) = !strcmp(t, a) ? a : b;
            continue;
        }
        if (!strcmp(kp[i].key, "smooth") || !strcmp(kp[i].key, "verbose")) { /* GreedyLR's; verbose only prints */
            int b;
            if (fe_y_bool(y, ax_arena_strdup(y->ar, k2), kp[i].v, &b) == 0 && !strcmp(kp[i].key, "smooth")) c->sched_smooth = b;
            continue;
        }
        const int wt = !strcmp(kp[i].key, "warmup_type"), dt = !strcmp(kp[i].key, "decay_type");
        if (wt || dt) {
            const char *t = fe_y_text(kp[i].v);
            size_t j = 0;
            while (t && kp[i].v->type == YAML_SCALAR_NODE && j < AX_ARRAY_LEN(shapes) && strcmp(t, shapes[j])) j++;
            if (!t || kp[i].v->type != YAML_SCALAR_NODE || j == AX_ARRAY_LEN(shapes))
                yerr(y, kp[i].v, ax_arena_strdup(y->ar, k2), "linear, cosine or 1-sqrt (HF's get_wsd_schedule)");
            else
                *(wt ? &c->sched_warmup_type : &c->sched_decay_type) = shapes[j];
            continue;
        }
        size_t j = 0;
        while (j < AX_ARRAY_LEN(f) && strcmp(f[j].name, kp[i].key)) j++;
        if (j == AX_ARRAY_LEN(f)) {
            ax_error(y->d, fe_yloc(y, kp[i].k, loc, sizeof loc), "%s: not an argument of axo's schedules (" SCHED_KWARGS ")",
                     k2);
            continue;
        }
        if (!strcmp(kp[i].key, "min_lr_ratio") || !strcmp(kp[i].key, "num_stable_steps")) { /* any number, as HF */
            const char *tx = fe_y_text(kp[i].v);
            double x;
            if (!tx || kp[i].v->type != YAML_SCALAR_NODE || !fe_parse_num(tx, &x))
                yerr(y, kp[i].v, ax_arena_strdup(y->ar, k2), "a number");
            else
                *f[j].dst = x;
            continue;
        }
        fe_y_num(y, k2, kp[i].v, 0, f[j].dst);
    }
}

/* lr_scheduler: one_cycle's lr_scheduler_kwargs: torch's OneCycleLR arguments, which Axolotl passes on as
 * they are, typed as PyYAML reads them (its safe_load): a number written "1e4" is a string there, which
 * OneCycleLR's arithmetic refuses. Axolotl passes max_lr (learning_rate) and total_steps (the run's steps)
 * itself; pct_start only when the kwargs have none. */
#define ONE_CYCLE_KWARGS                                                                                         \
    "pct_start, anneal_strategy, cycle_momentum, base_momentum, max_momentum, div_factor, final_div_factor, " \
    "three_phase, epochs, steps_per_epoch, last_epoch"
static int oc_number(const fe_yctx *y, const char *key, const yaml_node_t *v, int float_only, double *out) {
    const char *t = fe_y_text(v);
    const int plain = v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && t && (fe_yaml11_float(t) || (!float_only && fe_yaml11_int(t))) && fe_parse_num(t, out)) return 0;
    if (plain && t && float_only && fe_yaml11_int(t))
        yerr(y, v, key, "a float written with a decimal point (torch's OneCycleLR refuses an int here)");
    else
        yerr(y, v, key, v->type == YAML_SEQUENCE_NODE ? "a number (a value per parameter group is not implemented)"
                                                      : "a number as YAML 1.1 writes one (PyYAML reads 1e4 as a string; "
                                                        "write 1.0e+4)");
    return -1;
}

static void one_cycle_kwargs(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512], k2[160];
    fe_ypair *kp;
    const int n = kwargs_pairs(y, p, "OneCycleLR's arguments (" ONE_CYCLE_KWARGS ")", &kp);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
        const char *k = kp[i].key;
        const yaml_node_t *v = kp[i].v;
        snprintf(k2, sizeof k2, "%s.%s", p->key, k);
        const char *key = ax_arena_strdup(y->ar, k2);
        const char *at = fe_yloc(y, kp[i].k, loc, sizeof loc);
        double x;
        int b;
        if (!strcmp(k, "max_lr") || !strcmp(k, "total_steps") || !strcmp(k, "optimizer")) {
            ax_error(y->d, at, "%s: Axolotl passes %s to OneCycleLR itself, and a second one fails its call (TypeError)",
                     key, !strcmp(k, "max_lr") ? "max_lr (learning_rate)" : !strcmp(k, "total_steps") ? "total_steps (the run's steps)" : "the optimizer");
        } else if (!strcmp(k, "epochs") || !strcmp(k, "steps_per_epoch")) {
            ax_warn(y->d, at, "%s: ignored, as OneCycleLR ignores it when given total_steps (Axolotl passes the run's)",
                    key);
        } else if (!strcmp(k, "last_epoch")) {
            const char *t = fe_y_text(v);
            if (!t || !fe_yaml11_int(t) || !fe_parse_num(t, &x) || x != -1)
                yerr(y, v, key, "-1 (OneCycleLR's default; a scheduler resumed from elsewhere is not implemented)");
        } else if (!strcmp(k, "pct_start")) {
            if (oc_number(y, key, v, 1, &x) == 0) {
                if (x < 0 || x > 1) yerr(y, v, key, "a float in [0, 1] (torch's OneCycleLR refuses any other)");
                else c->oc_pct_start = x;
            }
        } else if (!strcmp(k, "anneal_strategy")) {
            const char *t = fe_y_text(v);
            if (!t || v->type != YAML_SCALAR_NODE || (strcmp(t, "cos") && strcmp(t, "linear")))
                yerr(y, v, key, "cos or linear (OneCycleLR)");
            else
                c->oc_anneal = !strcmp(t, "cos") ? "cos" : "linear";
        } else if (!strcmp(k, "cycle_momentum") || !strcmp(k, "three_phase")) {
            if (fe_y_bool(y, key, v, &b) == 0) *(!strcmp(k, "three_phase") ? &c->oc_three_phase : &c->oc_cycle_momentum) = b;
        } else if (!strcmp(k, "base_momentum") || !strcmp(k, "max_momentum")) {
            if (oc_number(y, key, v, 0, &x) == 0) *(!strcmp(k, "base_momentum") ? &c->oc_base_momentum : &c->oc_max_momentum) = x;
        } else if (!strcmp(k, "div_factor") || !strcmp(k, "final_div_factor")) {
            if (oc_number(y, key, v, 0, &x) == 0) {
                if (!(x > 0)) yerr(y, v, key, "a positive number (the lr is divided by it)");
                else *(!strcmp(k, "div_factor") ? &c->oc_div_factor : &c->oc_final_div_factor) = x;
            }
        } else {
            ax_error(y->d, at, "%s: not an argument of torch's OneCycleLR (" ONE_CYCLE_KWARGS ")", key);
        }
    }
}

/* one_cycle against the rest of the config: OneCycleLR gives every parameter group the lr it computes from its
 * one max_lr (learning_rate), so Axolotl's groups and LoRA+ keep only their weight decay; with cycle_momentum it
 * replaces AdamW's beta1 from the first step; pct_start from the kwargs makes the warmup unused. */
static void check_one_cycle(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    static const char *const groups[] = {"loraplus_lr_ratio", "embedding_lr", "embedding_lr_scale", "lr_groups"};
    for (size_t i = 0; i < AX_ARRAY_LEN(groups); i++) {
        const fe_ypair *q = pair(L, groups[i]);
        if (!q || fe_y_is_null(q->v)) continue;
        ax_warn(y->d, fe_yloc(y, q->k, loc, sizeof loc),
                "%s: with lr_scheduler: one_cycle every parameter group trains at the schedule's lr (torch's OneCycleLR "
                "sets each group's lr from its one max_lr, learning_rate, as Axolotl builds it): the group's own lr has "
                "no effect, its weight decay stays", groups[i]);
        break;
    }
    const fe_ypair *q = pair(L, "adam_beta1");
    if (c->oc_cycle_momentum != 0 && q && !fe_y_is_null(q->v))
        ax_warn(y->d, fe_yloc(y, q->k, loc, sizeof loc),
                "adam_beta1: replaced by one_cycle's momentum (from max_momentum %g down to base_momentum %g and back), as "
                "torch's OneCycleLR replaces it; lr_scheduler_kwargs.cycle_momentum: false keeps it",
                isnan(c->oc_max_momentum) ? 0.95 : c->oc_max_momentum, isnan(c->oc_base_momentum) ? 0.85 : c->oc_base_momentum);
    q = pair(L, c->warmup_steps > 0 ? "warmup_steps" : "warmup_ratio");
    if (!isnan(c->oc_pct_start) && q && !fe_y_is_null(q->v) && (c->warmup_steps > 0 || c->warmup_ratio > 0))
        ax_warn(y->d, fe_yloc(y, q->k, loc, sizeof loc),
                "%s: unused with lr_scheduler_kwargs.pct_start (Axolotl passes the warmup to OneCycleLR as its pct_start only "
                "when the kwargs have none)", q->key);
}

/* plugins: those whose effect axo has, exactly; any other changes training */
static void plugins(loader *L, const fe_ypair *p) {
    do_string_list(L, p, NULL, NULL); /* a list of strings */
    if (p->v->type != YAML_SEQUENCE_NODE) return;
    /* Liger's kernels compute the same math (axo's liger_* keys); cut cross
     * entropy computes the cross-entropy loss without the logits, as axo's
     * fused linear + cross entropy does */
    static const char *const same[] = {"axolotl.integrations.liger.LigerPlugin",
                                       "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"};
    yaml_node_item_t *it = p->v->data.sequence.items.start;
    int n = (int)(p->v->data.sequence.items.top - it);
    for (int i = 0; i < n; i++) {
        const yaml_node_t *e = yaml_document_get_node(L->y.doc, it[i]);
        const char *s = fe_y_text(e);
        if (!s || fe_y_is_null(e) || match_one(s, same, 2) >= 0) continue;
        char key[96];
        snprintf(key, sizeof key, "%s[%d]", p->key, i);
        refuse(&L->y, e, key, "the plugin's own training behaviour",
               "axo accepts axolotl.integrations.liger.LigerPlugin and "
               "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin");
    }
}

/* attn_implementation: the exact-attention kernels all compute softmax(QK^T
 * / sqrt(d)) V, as axo's own attention does; s2, sage and fp8 approximate it */
/* A hub-kernel path without its "@revision" or ":kernel" suffix (Axolotl's attn_impl_base), into buf */
static const char *attn_impl_base(const char *s, char *buf, size_t cap) {
    size_t n = strcspn(s, "@:");
    while (n && s[n - 1] == ' ') n--;
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    return buf;
}

static void attn_implementation(loader *L, const yaml_node_t *v) {
    /* the hub kernels Axolotl passes to transformers: FlashAttention 2 / 3 builds (vllm-flash-attn3's takes
     * gpt-oss's sinks), exact attention too */
    static const char *const exact[] = {"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention",
                                        "xformers", "kernels-community/flash-attn2", "kernels-community/flash-attn3",
                                        "kernels-community/vllm-flash-attn3"};
    static const char *const approx[][2] = {{"s2", "shifted sparse attention, an approximation"},
                                            {"sage", "SageAttention's 8-bit QK, an approximation"},
                                            {"fp8", "FP8 attention, an approximation"}};
    const char *s;
    char base[128];
    if (fe_y_str(&L->y, "attn_implementation", v, &s) != 0 ||
        match_one(attn_impl_base(s, base, sizeof base), exact, (int)AX_ARRAY_LEN(exact)) >= 0)
        return;
    const char *what = "an attention kernel axo does not know";
    for (size_t i = 0; i < AX_ARRAY_LEN(approx); i++)
        if (!strcmp(s, approx[i][0])) what = approx[i][1];
    refuse(&L->y, v, "attn_implementation", what,
           "axo computes exact attention and accepts eager, sdpa, flash_attention_2, flash_attention_3, "
           "flex_attention, xformers, kernels-community/flash-attn2, kernels-community/flash-attn3, "
           "kernels-community/vllm-flash-attn3");
}

/* Axolotl's attn_supports_packing: attn_implementation, else the first of its legacy flags set (in its order:
 * xformers_attention, sage_attention, flex_attention, flash_attention, sdp_attention, eager_attention), is one
 * whose kernel reads packed sequences (flash_attention_2/3, flex_attention, xformers, the hub's flash-attn2/3, not
 * vllm-flash-attn3; sage is refused). Values
 * were checked where the keys were read. */
static const char *const attn_legacy_flags[][2] = {
    {"xformers_attention", "xformers"},       {"sage_attention", "sage"}, {"flex_attention", "flex_attention"},
    {"flash_attention", "flash_attention_2"}, {"sdp_attention", "sdpa"},  {"eager_attention", "eager"}};
static int attn_packs(const loader *L, int *flex, const char **impl_out) {
    static const char *const packs[] = {"flash_attention_2", "flash_attention_3", "flex_attention", "xformers",
                                        "kernels-community/flash-attn2", "kernels-community/flash-attn3"};
    const fe_ypair *p = pair(L, "attn_implementation");
    const char *impl = p && !fe_y_is_null(p->v) && fe_y_text(p->v) && *fe_y_text(p->v) ? fe_y_text(p->v) : NULL;
    for (size_t i = 0; !impl && i < AX_ARRAY_LEN(attn_legacy_flags); i++) {
        const fe_ypair *f = pair(L, attn_legacy_flags[i][0]);
        const char *t = f ? fe_y_text(f->v) : NULL;
        int b;
        if (t && fe_parse_bool(t, &b) && b) impl = attn_legacy_flags[i][1];
    }
    char base[128];
    *impl_out = impl ? ax_arena_strdup(L->y.ar, attn_impl_base(impl, base, sizeof base)) : NULL;
    *flex = impl && !strcmp(attn_impl_base(impl, base, sizeof base), "flex_attention");
    return impl && match_one(attn_impl_base(impl, base, sizeof base), packs, (int)AX_ARRAY_LEN(packs)) >= 0;
}

/* peft_layers_to_transform: a layer index or a list of them (PEFT's
 * layers_to_transform takes either; [] is no restriction, as in PEFT). The
 * indices are checked against the model in fe_check_config_model. */
static void layers_to_transform(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    int64_t x;
    if (p->v->type == YAML_SCALAR_NODE) {
        if (fe_y_int(y, p->key, p->v, 0, &x) != 0) return;
        c->peft_layers = ax_arena_alloc(y->ar, sizeof *c->peft_layers);
        c->peft_layers[0] = x;
        c->npeft_layers = 1;
        c->peft_layers_int = 1;
        return;
    }
    if (p->v->type != YAML_SEQUENCE_NODE) {
        yerr(y, p->v, p->key, "a layer index or a list of layer indices");
        return;
    }
    yaml_node_item_t *it = p->v->data.sequence.items.start;
    int n = (int)(p->v->data.sequence.items.top - it), k = 0;
    int64_t *arr = ax_arena_alloc(y->ar, sizeof *arr * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", p->key, i);
        if (fe_y_int(y, name, yaml_document_get_node(y->doc, it[i]), 0, &x) == 0) arr[k++] = x;
    }
    if (k == n) c->peft_layers = arr, c->npeft_layers = n, c->peft_layers_int = 0;
}

/* peft_trainable_token_indices: a list of token ids, or (PEFT's dict form)
 * a mapping whose one key names the input embedding (embed_tokens, or a
 * longer name ending in it) and holds the list; a tied lm_head follows the
 * embedding, as PEFT ties it. The ids are checked against the vocabulary by
 * the LoRA pass, which knows it. */
static void trainable_tokens(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    const yaml_node_t *v = p->v;
    char name[160];
    if (v->type == YAML_MAPPING_NODE) {
        fe_ypair *mp;
        int n = fe_y_pairs(y, v, p->key, &mp);
        if (n != 1) {
            yerr(y, v, p->key, "a list of token ids, or a mapping with one key, embed_tokens (an untied lm_head's own "
                               "trainable tokens are not implemented)");
            return;
        }
        size_t kl = strlen(mp[0].key);
        if (strcmp(mp[0].key, "embed_tokens") && !(kl > 13 && !strcmp(mp[0].key + kl - 13, ".embed_tokens"))) {
            char loc[512];
            ax_error(y->d, fe_yloc(y, mp[0].k, loc, sizeof loc),
                     "%s: \"%s\": expected embed_tokens, the input embedding (trainable tokens of another module are "
                     "not implemented)", p->key, mp[0].key);
            return;
        }
        snprintf(name, sizeof name, "%s.%s", p->key, mp[0].key);
        v = mp[0].v;
    } else {
        snprintf(name, sizeof name, "%s", p->key);
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        yerr(y, v, name, "a list of token ids");
        return;
    }
    yaml_node_item_t *it = v->data.sequence.items.start;
    int n = (int)(v->data.sequence.items.top - it), k = 0;
    if (n == 0) {
        yerr(y, v, name, "at least one token id");
        return;
    }
    int64_t *arr = ax_arena_alloc(y->ar, sizeof *arr * (size_t)n);
    for (int i = 0; i < n; i++) {
        char nm[200];
        int64_t x;
        snprintf(nm, sizeof nm, "%s[%d]", name, i);
        const yaml_node_t *e = yaml_document_get_node(y->doc, it[i]);
        if (fe_y_int(y, nm, e, 0, &x) != 0) continue;
        int dup = 0;
        for (int j = 0; j < k && !dup; j++) dup = arr[j] == x;
        if (dup) { /* index_copy with a repeated index has no defined result */
            yerr(y, e, nm, "a token id not already in the list");
            continue;
        }
        arr[k++] = x;
    }
    if (k == n) c->trainable_tokens = arr, c->ntrainable_tokens = n;
}

/* peft_layers_pattern: the name (or names) of the layer list in module
 * names, a string or a list of them. PEFT reads each as a regular
 * expression in `.*\.PATTERN\.(\d+)\.`; axo takes names only (letters,
 * digits, _), which match exactly themselves either way. */
static void layers_pattern(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512];
    const char **arr;
    int n, str = p->v->type == YAML_SCALAR_NODE;
    if (str) {
        arr = ax_arena_alloc(y->ar, sizeof *arr);
        if (fe_y_str(y, p->key, p->v, &arr[0]) != 0) return;
        n = *arr[0] ? 1 : 0; /* "": any pattern, as PEFT reads an empty one */
    } else if (p->v->type == YAML_SEQUENCE_NODE) {
        n = (int)(p->v->data.sequence.items.top - p->v->data.sequence.items.start);
        arr = ax_arena_alloc(y->ar, sizeof *arr * (size_t)(n ? n : 1));
        if (str_list(L, p->v, p->key, arr, n) != n) return;
    } else {
        yerr(y, p->v, p->key, "a name or a list of names (e.g. layers)");
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *s = arr[i];
        size_t bad = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        if (!*s || s[bad]) {
            const yaml_node_t *at = str ? p->v : yaml_document_get_node(y->doc, p->v->data.sequence.items.start[i]);
            ax_error(y->d, fe_yloc(y, at, loc, sizeof loc),
                     "%s: expected the name of the decoder layer list in module names (letters, digits, _; \"layers\" "
                     "for Llama, Qwen and Mistral), found \"%s\"%s", p->key, s,
                     *s ? " (a regular expression is not implemented)" : "");
            return;
        }
    }
    c->peft_layers_pattern = arr;
    c->npeft_layers_pattern = n;
    c->peft_layers_pattern_str = str;
}

/* revision_of_model (or its alias model_revision): the Hub revision of
 * base_model, base_model_config and tokenizer_config, as Axolotl passes it
 * to from_pretrained; NULL when not given. */
static const char *revision(const loader *L) {
    const fe_ypair *a = pair(L, "revision_of_model"), *b = pair(L, "model_revision");
    const fe_ypair *p = a && !fe_y_is_null(a->v) ? a : b && !fe_y_is_null(b->v) ? b : NULL;
    const char *r;
    if (!p || p->v->type != YAML_SCALAR_NODE) return NULL;
    r = fe_y_text(p->v); /* the document's own text: copied, since the document goes when the load ends */
    return r && *r ? ax_arena_strdup(L->y.ar, r) : NULL;
}

static void apply_special(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    const char *k = p->key;
    yaml_node_t *v = p->v;
    char loc[512];
    int b;
    if (!strcmp(k, "default_system_message")) { /* Axolotl 0.19's effect: none (see the message) */
        const char *t;
        if (fe_y_is_null(v) || fe_y_str(y, k, v, &t) != 0 || !*t) return;
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc),
                "%s: has no effect, as in Axolotl 0.19, which only replaces \"You are a helpful assistant.\" in the "
                "chatml template, and that template has no such text; put a system turn in the data instead", k);
        return;
    }
    if (!strcmp(k, "base_model")) {
        const char *given;
        if (fe_y_str(y, k, v, &given) != 0) return;
        if (!c->tokenizer_name_or_path) c->tokenizer_name_or_path = given;
        int hub = 0;
        c->base_model = resolve_model_dir(y, L->ydir, k, v, given, revision(L), FE_HUB_CONFIG | FE_HUB_WEIGHTS, &hub);
        if (hub && c->base_model) c->base_model_hub = given, c->base_model_revision = revision(L);
    } else if (!strcmp(k, "base_model_config")) {
        /* Checked against base_model once both are known (load_finish). */
        const char *given;
        if (fe_y_str(y, k, v, &given) != 0) return;
        if (!pair(L, "tokenizer_config")) c->tokenizer_name_or_path = given;
        resolve_model_dir(y, L->ydir, k, v, given, revision(L), FE_HUB_CONFIG, NULL);
    } else if (!strcmp(k, "revision_of_model") || !strcmp(k, "model_revision")) {
        const char *r; /* read again where the model is resolved (revision()) */
        if (!fe_y_is_null(v) && fe_y_str(y, k, v, &r) == 0 && (!*r || strstr(r, "..") || r[0] == '/' || strchr(r, '\\')))
            yerr(y, v, k, "a Hub revision: a branch, a tag or a commit hash");
    } else if (!strcmp(k, "datasets")) {
        do_datasets(L, p, &c->datasets, &c->ndatasets);
    } else if (!strcmp(k, "test_datasets")) {
        do_datasets(L, p, &c->test_datasets, &c->ntest_datasets);
    } else if (!strcmp(k, "eval_steps")) { /* HF: a whole number of steps, or a fraction (< 1) of the total */
        double x;
        if (fe_y_num(y, k, v, 1, &x) != 0) return;
        if (x >= 1 && x == floor(x)) c->eval_steps = (int64_t)x;
        else if (x > 0 && x < 1) c->eval_steps_ratio = x;
        else yerr(y, v, k, "a whole number of steps, or a fraction in (0, 1) of the total steps");
    } else if (!strcmp(k, "metric_for_best_model")) { /* HF prefixes "eval_"; axo evaluates the loss alone */
        const char *m;
        if (fe_y_str(y, k, v, &m) != 0) return;
        if (strcmp(m, "loss") && strcmp(m, "eval_loss"))
            yerr(y, v, k, "loss or eval_loss (the only metric axo evaluates)");
    } else if (!strcmp(k, "excess_length_strategy")) {
        static const char *const names[] = {"drop", "truncate", "raise"};
        int i = y_enum(L, k, v, names, 3);
        if (i >= 0) c->excess_length = i;
    } else if (!strcmp(k, "chat_template")) {
        fe_y_str(y, k, v, &c->chat_template);
    } else if (!strcmp(k, "chat_template_jinja")) {
        jinja_src(L, k, v, &c->chat_template_jinja);
    } else if (!strcmp(k, "chat_template_kwargs")) {
        template_kwargs(L, k, v, &c->chat_template_kwargs);
    } else if (!strcmp(k, "tokenizer_config")) {
        const char *given;
        if (fe_y_str(y, k, v, &given) != 0) return;
        c->tokenizer_name_or_path = given;
        c->tokenizer_config = resolve_model_dir(y, L->ydir, k, v, given, revision(L), FE_HUB_TOKENIZER, NULL);
    } else if (!strcmp(k, "eot_tokens")) {
        const char **arr = ax_arena_alloc(y->ar, sizeof *arr * 8);
        int n = str_list(L, v, k, arr, 8);
        if (n >= 0) c->eot_tokens = arr, c->neot_tokens = n;
    } else if (!strcmp(k, "special_tokens")) {
        fe_ypair *sp;
        int n = v->type == YAML_MAPPING_NODE ? fe_y_pairs(y, v, k, &sp) : -1;
        if (n < 0) {
            yerr(y, v, k, "a mapping {bos_token: ..., eos_token: ..., pad_token: ...}");
            return;
        }
        /* Axolotl's SpecialTokensConfig: bos, eos, pad, unk and
         * additional_special_tokens; each is added to the tokenizer as a
         * special token when it is not one already (fe_resolve_tokenizer) */
        for (int i = 0; i < n; i++) {
            char k2[96];
            snprintf(k2, sizeof k2, "special_tokens.%s", sp[i].key);
            if (fe_y_is_null(sp[i].v)) continue;
            const char **dst = !strcmp(sp[i].key, "bos_token")   ? &c->special_bos
                               : !strcmp(sp[i].key, "eos_token") ? &c->special_eos
                               : !strcmp(sp[i].key, "pad_token") ? &c->special_pad
                               : !strcmp(sp[i].key, "unk_token") ? &c->special_unk
                                                                 : NULL;
            if (dst) {
                if (fe_y_str(y, k2, sp[i].v, dst) == 0 && !**dst)
                    ax_error(y->d, fe_yloc(y, sp[i].v, loc, sizeof loc), "%s: expected a token, found an empty string", k2);
            } else if (!strcmp(sp[i].key, "additional_special_tokens")) {
                fe_ypair lp = {.key = k2, .k = sp[i].k, .v = sp[i].v};
                do_string_list(L, &lp, &c->extra_special, &c->nextra_special);
            } else {
                ax_warn(y->d, fe_yloc(y, sp[i].k, loc, sizeof loc),
                        "%s: not a key of Axolotl's special_tokens (bos_token, eos_token, pad_token, unk_token, "
                        "additional_special_tokens), ignored as Axolotl ignores it", k2);
            }
        }
    } else if (!strcmp(k, "tokens")) {
        do_string_list(L, p, &c->tokens, &c->ntokens);
    } else if (!strcmp(k, "save_strategy")) {
        static const char *const names[] = {"no", "epoch", "steps", "best"};
        int i = y_enum(L, k, v, names, 4);
        if (i >= 0) c->save_strategy = i + 1;
    } else if (!strcmp(k, "eval_strategy") || !strcmp(k, "evaluation_strategy")) { /* the second: HF's old name */
        static const char *const names[] = {"no", "epoch", "steps"};
        int i = y_enum(L, k, v, names, 3);
        if (i >= 0) c->eval_strategy = i + 1;
    } else if (!strcmp(k, "unfrozen_parameters")) {
        unfrozen(L, p);
    } else if (!strcmp(k, "fix_untrained_tokens")) {
        fix_untrained(L, p);
    } else if (!strcmp(k, "lr_groups")) {
        lr_groups(L, p);
    } else if (!strcmp(k, "model_config") || !strcmp(k, "overrides_of_model_config")) {
        if (v->type != YAML_MAPPING_NODE) {
            yerr(y, v, k, "a mapping of config.json keys to their values");
            return;
        }
        json_t *j = y_to_json(L, v, k);
        if (j && json_object_size(j)) {
            char *js = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
            c->model_config = ax_arena_strdup(y->ar, js);
            free(js);
        }
        json_decref(j);
    } else if (!strcmp(k, "model_quantization_config")) {
        /* Axolotl builds transformers' <name>(**model_quantization_config_kwargs): Mxfp4Config is gpt-oss's, whose
         * MXFP4 experts axo dequantizes on load (dequantize: true); other quantized loads change the model */
        const char *t = fe_y_text(v);
        if (t && !*t) return;
        if (!t || v->type != YAML_SCALAR_NODE || strcmp(t, "Mxfp4Config"))
            yerr(y, v, k, "Mxfp4Config (gpt-oss's MXFP4 experts, dequantized) or nothing: another quantized base model "
                          "is not implemented");
        else
            c->model_quant = "Mxfp4Config";
    } else if (!strcmp(k, "model_quantization_config_kwargs")) {
        if (v->type != YAML_MAPPING_NODE) {
            yerr(y, v, k, "a mapping of the quantization config's arguments");
            return;
        }
        json_t *j = y_to_json(L, v, k);
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            if (!strcmp(key, "dequantize") && json_is_boolean(val)) {
                c->model_quant_dequantize = json_is_true(val);
            } else {
                char *vs = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
                ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s.%s: expected dequantize: true or false (Mxfp4Config's "
                         "argument), found %s: %s", k, key, key, vs ? vs : "?");
                free(vs);
            }
        }
        json_decref(j);
    } else if (!strcmp(k, "added_tokens_overrides")) {
        added_overrides(L, p);
    } else if (!strcmp(k, "adapter")) {
        static const char *const names[] = {"lora", "qlora"};
        int i = y_enum(L, k, v, names, 2);
        if (i >= 0) c->adapter = i == 0 ? FE_ADAPTER_LORA : FE_ADAPTER_QLORA;
    } else if (!strcmp(k, "lr_scheduler")) {
        int i = y_enum(L, k, v, fe_sched_names, FE_SCHED_COUNT);
        if (i >= 0) c->lr_scheduler = (fe_sched)i;
    } else if (!strcmp(k, "lr_div_factor")) { /* in Axolotl 0.19's schema (a float), read by nothing */
        double x;
        const char *t = fe_y_text(v);
        if (!t || v->type != YAML_SCALAR_NODE || !fe_parse_num(t, &x))
            yerr(y, v, k, "a number");
        else
            ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored, as Axolotl 0.19 ignores it (one_cycle's "
                    "div_factor is lr_scheduler_kwargs.div_factor)", k);
    } else if (!strcmp(k, "rl") || !strcmp(k, "rl_beta") || !strcmp(k, "dpo_beta") || !strcmp(k, "trl") ||
               !strcmp(k, "dpo_loss_type") || !strcmp(k, "dpo_loss_weights") || !strcmp(k, "dpo_label_smoothing") ||
               !strcmp(k, "max_prompt_len") || !strcmp(k, "dpo_use_logits_to_keep") ||
               !strcmp(k, "dpo_generate_during_eval") || !strcmp(k, "dpo_norm_loss") || !strcmp(k, "simpo_gamma") ||
               !strcmp(k, "rpo_alpha") ||
               !strcmp(k, "cpo_alpha") || !strcmp(k, "orpo_alpha")) {
        /* read in check_rl, as a whole */
    } else if (!strcmp(k, "pad_to_multiple_of") || !strcmp(k, "batch_flattening")) {
        /* read in check_collator, once the attention and sample_packing are known */
    } else if (!strcmp(k, "lr_scheduler_kwargs")) {
        /* read in check_schedule, once lr_scheduler is known: rex takes none, so any mapping goes */
    } else if (!strcmp(k, "optimizer")) {
        /* paged_adamw_32bit (Axolotl's QLoRA examples) is AdamW with f32
         * state whose pages bitsandbytes may spill to the host under memory
         * pressure: the same updates; axo plans memory ahead instead */
        /* adamw_bnb_8bit (= adamw_8bit; paged_: the same, spilling pages
         * under memory pressure) is AdamW with bitsandbytes' 8-bit
         * block-wise state; adamw_torch_8bit torchao's AdamW8bit, the same
         * scheme (Dettmers et al.'s block-wise dynamic quantization, blocks
         * of 256, small tensors kept f32; Axolotl's gpt-oss examples use
         * it); ir/quant.h has axo's, bit-identical to neither */
        static const char *const names[] = {"adamw_torch",    "adamw_torch_fused", "adamw_hf",         "paged_adamw_32bit",
                                            "adamw_bnb_8bit", "adamw_8bit",        "paged_adamw_8bit", "adamw_torch_8bit"};
        const char *s = fe_y_text(v);
        int n8 = 0;
        for (int j = 4; s && j < 8; j++) n8 |= !strcmp(s, names[j]);
        if (s && !n8 && (strstr(s, "8bit") || strstr(s, "4bit") || strstr(s, "fp8"))) {
            ax_error(y->d, fe_yloc(y, v, loc, sizeof loc),
                     "%s: \"%s\" is not implemented; low-bit state: adamw_bnb_8bit (adamw_8bit, paged_adamw_8bit, "
                     "adamw_torch_8bit); f32 state: adamw_torch (or paged_adamw_32bit)", k, s);
            return;
        }
        int i = y_enum(L, k, v, names, 8);
        if (i >= 0) {
            c->optimizer = names[i];
            c->optimizer_8bit = i >= 4;
        }
    } else if (!strcmp(k, "ring_attn_func")) {
        static const char *const names[] = {"varlen_llama3", "batch_ring", "batch_zigzag", "batch_stripe"};
        int i = y_enum(L, k, v, names, 4);
        if (i >= 0) c->ring_attn_func = names[i];
    } else if (!strcmp(k, "bf16")) {
        const char *s = fe_y_text(v);
        if (s && !strcasecmp(s, "auto")) {
            c->bf16 = 1;
            L->bf16_auto = 1;
        } else if (s && fe_parse_bool(s, &b)) {
            c->bf16 = b;
            L->set.bf16 = 1;
        } else {
            yerr(y, v, k, "true, false or auto");
        }
    } else if (!strcmp(k, "bfloat16")) {
        /* Axolotl: the model in bf16 without AMP, so AdamW's state is bf16 too */
        if (fe_y_bool(y, k, v, &b) == 0) c->bf16_pure = b;
    } else if (!strcmp(k, "fp16") || !strcmp(k, "float16")) {
        if (fe_y_bool(y, k, v, &b) == 0 && b)
            not_implemented(L, v, "%s: true is not implemented (axo trains in bf16 or fp32; use bf16: true or bfloat16: true)", k);
    } else if (!strcmp(k, "load_in_8bit")) {
        if (fe_y_bool(y, k, v, &b) == 0 && b) {
            not_implemented(L, v, "%s: true (8-bit base weights) is not implemented; use adapter: qlora with load_in_4bit: true", k);
            c->load_in_8bit = 1;
        }
    } else if (!strcmp(k, "gradient_checkpointing")) {
        const char *s = fe_y_text(v);
        if (s && fe_parse_bool(s, &b))
            c->gradient_checkpointing = b;
        else if (s && (!strcmp(s, "offload") || !strcmp(s, "unsloth")))
            ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: \"%s\" is not implemented; use true or false", k, s);
        else
            yerr(y, v, k, "true or false");
    } else if (!strcmp(k, "resume_from_checkpoint")) {
        /* a checkpoint-N dir axorun wrote (runtime/resume.h) */
        const char *given;
        if (fe_y_is_null(v) || fe_y_str(y, k, v, &given) != 0 || !*given) return;
        const char *dir = resolve(y, L->ydir, k, v, given, 1, NULL);
        if (dir) {
            const char *f = ax_arena_printf(y->ar, "%s/trainer_state.json", dir);
            if (!is_file(f))
                ax_error(y->d, fe_yloc(y, v, loc, sizeof loc),
                         "%s: expected a checkpoint dir axorun wrote (with trainer_state.json), but %s does not exist", k, f);
            else
                c->resume_from = dir;
        }
    } else if (!strcmp(k, "lora_model_dir")) {
        /* continue training a saved PEFT adapter (its weights replace the
         * fresh init; its shapes and alpha must match the config's) */
        const char *given;
        if (fe_y_is_null(v) || fe_y_str(y, k, v, &given) != 0) return;
        /* a Hub repo id too, as PeftModel.from_pretrained takes (at its main revision: Axolotl passes no
         * revision there) */
        const char *dir = resolve_model_dir(y, L->ydir, k, v, given, NULL, FE_HUB_ADAPTER, NULL);
        if (dir) {
            const char *f = ax_arena_printf(y->ar, "%s/adapter_model.safetensors", dir);
            if (!is_file(f))
                ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: expected a PEFT adapter directory, but %s does not exist",
                         k, f);
            else
                c->lora_model_dir = dir;
        }
    } else if (!strcmp(k, "peft_trainable_token_indices")) {
        trainable_tokens(L, p);
    } else if (!strcmp(k, "peft_layers_to_transform")) {
        layers_to_transform(L, p);
    } else if (!strcmp(k, "peft_layers_pattern")) {
        layers_pattern(L, p);
    } else if (!strcmp(k, "lora_modules_to_save")) {
        do_string_list(L, p, &c->lora_modules_to_save, &c->nlora_modules_to_save);
    } else if (!strcmp(k, "lora_target_parameters")) { /* PEFT's target_parameters: MoE experts' / routers' weights */
        const char *s1;
        if (v->type == YAML_SCALAR_NODE) { /* one name (Axolotl's schema takes a string too) */
            if (fe_y_str(y, k, v, &s1) == 0) {
                const char **arr = ax_arena_alloc(y->ar, sizeof *arr);
                arr[0] = s1;
                c->lora_target_parameters = arr, c->nlora_target_parameters = 1;
            }
        } else {
            do_string_list(L, p, &c->lora_target_parameters, &c->nlora_target_parameters);
        }
    } else if (!strcmp(k, "peft_init_lora_weights")) { /* PEFT's init_lora_weights: true, false or an init's name */
        const char *s = fe_y_text(v);
        if (s && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && fe_parse_bool(s, &b)) {
            c->peft_init_lora_weights = b ? 0 : 2;
        } else if (s && !strcmp(s, "gaussian")) {
            c->peft_init_lora_weights = 1;
        } else {
            ax_error(y->d, fe_yloc(y, v, loc, sizeof loc),
                     "%s: expected true, false or gaussian, found \"%s\"%s", k, s ? s : "(not a scalar)",
                     s ? " (PEFT's SVD- and data-driven inits, pissa, olora, loftq, eva, corda, are not implemented in axo)" : "");
        }
    } else if (!strcmp(k, "peft_use_dora")) {
        if (fe_y_bool(y, k, v, &b) == 0) c->peft_use_dora = b;
    } else if (!strcmp(k, "lora_fan_in_fan_out")) {
        if (fe_y_bool(y, k, v, &b) == 0 && b)
            not_implemented(L, v, "%s: true is for Conv1D weights (GPT-2); this model's linear layers are [out, in]", k);
    } else if (!strcmp(k, "lora_target_modules")) {
        const char *s;
        if (v->type != YAML_SCALAR_NODE) {
            do_string_list(L, p, &c->lora_target_modules, &c->nlora_target_modules);
        } else if (fe_y_str(y, k, v, &s) == 0) {
            /* PEFT's target_modules as a string: "all-linear" (every linear layer but the output one), or a
             * regex that must match a module's whole name */
            char err[256];
            if (!strcmp(s, "all-linear")) c->lora_target_linear = 1, c->lora_all_linear_string = 1;
            else if (rt_re_match(s, "", err, sizeof err) < 0)
                ax_error(y->d, fe_yloc(y, v, loc, sizeof loc), "%s: \"%s\" is not a regex: %s", k, s, err);
            else c->lora_target_regex = s;
        }
    } else if (!strcmp(k, "plugins")) {
        plugins(L, p);
    } else if (!strcmp(k, "attn_implementation")) {
        attn_implementation(L, v);
    } else if (!strcmp(k, "group_by_length")) {
        if (fe_y_bool(y, k, v, &b) == 0) c->group_by_length = b;
    } else if (!strcmp(k, "model_type")) {
        /* the class from_pretrained loads: a causal LM, whatever its name */
        const char *s;
        if (fe_y_str(y, k, v, &s) != 0) return;
        size_t n = strlen(s), m = strlen("ForCausalLM");
        if (n < m || strcmp(s + n - m, "ForCausalLM"))
            refuse(y, v, k, "another model class and head than a causal language model's",
                   "axo accepts AutoModelForCausalLM or a *ForCausalLM class");
    } else if (!strcmp(k, "noisy_embedding_alpha")) { /* neftune_noise_alpha's old name: apply_neftune */
        double x;
        if (fe_y_num(y, k, v, 0, &x) == 0 && x > 0) L->noisy_alpha = x, L->noisy_k = p->k;
    } else if (!strcmp(k, "trust_remote_code")) {
        if (fe_y_bool(y, k, v, &b) == 0 && b) L->trust_remote_code = v; /* checked against the model in check_whole */
    } else if (!strcmp(k, "deepspeed")) {
        const char *s;
        if (fe_y_str(y, k, v, &s) == 0) c->ds.path = s;
    } else if (!strcmp(k, "fsdp")) {
        L->fsdp.list_k = p->k;
        L->fsdp.list = v;
    } else if (!strcmp(k, "fsdp_version")) {
        L->fsdp.version_k = p->k;
        L->fsdp.version = v;
    } else if (!strcmp(k, "fsdp_config")) {
        L->fsdp.cfg_k = p->k;
        L->fsdp.cfg = v;
    }
}

/* Infrastructure keys that ask for something done beside training (an upload, a tracker, generations, an
 * evaluation harness): accepted, since what is trained is the same, but a value that turns one on gets a warning,
 * so that nobody waits for a dashboard or an upload axo never makes. */
static const struct {
    const char *name, *what;
} unperformed[] = {
    {"hub_model_id", "pushing the model to the Hugging Face Hub (upload output_dir with `hf upload` afterwards)"},
    {"push_dataset_to_hub", "pushing the prepared dataset to the Hub"},
    {"use_wandb", "logging to Weights & Biases (axorun writes train_log.jsonl in output_dir)"},
    {"wandb_project", "logging to Weights & Biases (axorun writes train_log.jsonl in output_dir)"},
    {"use_mlflow", "logging to MLflow (axorun writes train_log.jsonl in output_dir)"},
    {"use_comet", "logging to Comet (axorun writes train_log.jsonl in output_dir)"},
    {"use_tensorboard", "TensorBoard logs (axorun writes train_log.jsonl in output_dir)"},
    {"use_trackio", "logging to Trackio (axorun writes train_log.jsonl in output_dir)"},
    {"use_swanlab", "logging to SwanLab (axorun writes train_log.jsonl in output_dir)"},
    {"use_otel_metrics", "OpenTelemetry metrics"},
    {"generate_samples", "sample generations during training"},
    {"lm_eval_tasks", "lm-eval-harness evaluations"},
    {"do_bench_eval", "the benchmark evaluation"},
    {"do_causal_lm_eval", "the causal-LM metric evaluation (axo evaluates the loss)"},
    {"merge_lora", "merging the adapter after training (run `axoc merge-lora OUTPUT_DIR -o DIR`)"},
    {"use_ray", "a Ray Train launch"},
};

const char *fe_unperformed_key(const char *name) {
    for (size_t i = 0; i < AX_ARRAY_LEN(unperformed); i++)
        if (!strcmp(name, unperformed[i].name)) return unperformed[i].what;
    return NULL;
}

static void warn_unperformed(const fe_yctx *y, const fe_ypair *p) {
    for (size_t i = 0; i < AX_ARRAY_LEN(unperformed); i++) {
        if (strcmp(p->key, unperformed[i].name) || fe_y_is_null(p->v)) continue;
        const char *t = fe_y_text(p->v);
        int b;
        if (t && (!*t || (fe_parse_bool(t, &b) && !b))) return; /* "", false, off */
        if (p->v->type == YAML_SEQUENCE_NODE && p->v->data.sequence.items.top == p->v->data.sequence.items.start) return;
        char loc[512];
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: accepted, but axo does not do %s", p->key,
                unperformed[i].what);
        return;
    }
}

static void apply_pair(loader *L, const fe_ypair *p) {
    const fe_yctx *y = &L->y;
    char loc[512];
    const key_def *kd = find_key(p->key);
    if (!kd) {
        const fe_refused_key *r = find_refused(p->key);
        if (r) check_refused(y, p, r);
        else if (!is_infra(p->key)) ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "unknown key `%s`, ignored", p->key);
        else warn_unperformed(y, p);
        return;
    }
    /* A null value means "not set": the default applies. */
    if (fe_y_is_null(p->v) && kd->kind != K_ANY) return;
    char *base = (char *)L->c;
    int b;
    int64_t i64;
    double x;
    const char *s;
    switch (kd->kind) {
    case K_BOOL:
        if (fe_y_bool(y, p->key, p->v, &b) == 0 && kd->off >= 0) *(int *)(base + kd->off) = b;
        break;
    case K_LIGER:
        if (fe_y_bool(y, p->key, p->v, &b) == 0) *(int *)(base + kd->off) = b;
        break;
    case K_INT:
        if (fe_y_int(y, p->key, p->v, kd->min, &i64) == 0) {
            if (kd->off == (long)offsetof(fe_config, seed)) {
                if (i64 > 4294967295ll) /* HF's set_seed also seeds numpy's legacy generator, which refuses it */
                    yerr(y, p->v, p->key, "an integer in [0, 4294967295] (HF Trainer's set_seed passes it to numpy's "
                         "np.random.seed, which takes 32-bit seeds only)");
                else
                    L->c->seed = (uint64_t)i64;
            } else
                *(int64_t *)(base + kd->off) = i64;
        }
        break;
    case K_NUM:
        if (fe_y_num(y, p->key, p->v, kd->min, &x) == 0) *(double *)(base + kd->off) = x;
        break;
    case K_STR:
        if (fe_y_str(y, p->key, p->v, &s) == 0) *(const char **)(base + kd->off) = s;
        break;
    case K_ANY:
        break;
    case K_SPECIAL:
        apply_special(L, p);
        break;
    }
}

/* batch_size, as Axolotl's normalize_config reads it: the rows a rank takes
 * per step, so gradient_accumulation_steps = batch_size // micro_batch_size
 * (Axolotl multiplies batch_size by the world size only afterwards); giving
 * both is Axolotl's error too. */
static void apply_batch_size(loader *L) {
    const fe_ypair *p = pair(L, "batch_size");
    const fe_yctx *y = &L->y;
    fe_config *c = L->c;
    char loc[512];
    int64_t bs;
    if (!p || fe_y_is_null(p->v) || fe_y_int(y, p->key, p->v, 1, &bs) != 0) return;
    if (L->set.gradient_accumulation_steps) {
        ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc),
                 "batch_size: expected only one of gradient_accumulation_steps and batch_size, found both (as Axolotl)");
        return;
    }
    if (bs < c->micro_batch_size) {
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                 "batch_size: expected at least micro_batch_size (%lld): gradient_accumulation_steps = batch_size // "
                 "micro_batch_size would be 0, found %lld",
                 (long long)c->micro_batch_size, (long long)bs);
        return;
    }
    c->gradient_accumulation_steps = bs / c->micro_batch_size;
    L->set.gradient_accumulation_steps = 1; /* a DeepSpeed value must agree with it */
    if (bs % c->micro_batch_size)
        ax_warn(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                "batch_size: %lld is not a multiple of micro_batch_size %lld; gradient_accumulation_steps is %lld, as "
                "Axolotl rounds down, so a rank takes %lld rows per step",
                (long long)bs, (long long)c->micro_batch_size, (long long)c->gradient_accumulation_steps,
                (long long)(c->gradient_accumulation_steps * c->micro_batch_size));
}

/* noisy_embedding_alpha is neftune_noise_alpha's old name; Axolotl's
 * check_neftune renames it when neftune_noise_alpha is not set (or 0) and
 * refuses the two both set (nonzero). */
static void apply_neftune(loader *L) {
    char loc[512];
    if (!L->noisy_k) return;
    if (L->c->neftune_noise_alpha > 0) {
        ax_error(L->y.d, fe_yloc(&L->y, L->noisy_k, loc, sizeof loc),
                 "noisy_embedding_alpha: expected only one of noisy_embedding_alpha (the old name) and "
                 "neftune_noise_alpha, found both (as Axolotl)");
        return;
    }
    L->c->neftune_noise_alpha = L->noisy_alpha;
}

/* trust_remote_code: true lets a checkpoint's own modelling or tokenizer
 * code run (config.json's or tokenizer_config.json's "auto_map"), which axo
 * does not; without such code it changes nothing. */
static void check_remote_code(loader *L) {
    const fe_config *c = L->c;
    char loc[512];
    const char *dirs[2] = {c->base_model, c->tokenizer_config}, *files[2] = {"config.json", "tokenizer_config.json"};
    for (int i = 0; L->trust_remote_code && i < 2; i++)
        for (int j = 0; dirs[i] && j < 2; j++) {
            const char *f = ax_arena_printf(L->y.ar, "%s/%s", dirs[i], files[j]);
            json_t *o = is_file(f) ? json_load_file(f, 0, NULL) : NULL;
            int remote = json_is_object(o) && json_object_get(o, "auto_map") != NULL;
            json_decref(o);
            if (!remote) continue;
            ax_error(L->y.d, fe_yloc(&L->y, L->trust_remote_code, loc, sizeof loc),
                     "trust_remote_code: true changes training (%s has \"auto_map\": the checkpoint's own code would "
                     "define the %s) and is not implemented in axo; axo accepts null, false, or true for a checkpoint "
                     "without its own code",
                     f, j ? "tokenizer" : "model");
            return;
        }
}

/* Resolves the DeepSpeed file: the override (as given) wins; the YAML's
 * value is tried as given and then relative to the YAML's directory. */
static void load_deepspeed(loader *L, const char *override) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    const fe_ypair *p = pair(L, "deepspeed");
    char loc[512];
    const char *resolved = NULL;
    if (override) {
        if (c->ds.path)
            ax_diag_add(y->d, AX_SEV_NOTE, fe_yloc(y, p ? p->v : NULL, loc, sizeof loc),
                        "--deepspeed %s overrides deepspeed: %s", override, c->ds.path);
        c->ds.path = ax_arena_strdup(y->ar, override);
        if (is_file(override)) {
            resolved = override;
        } else {
            ax_error(y->d, override, "--deepspeed: expected an existing DeepSpeed JSON file, found none%s",
                     fe_deepspeed_bundled_count() ? " (bundled configs: run `axoc fetch deepspeed_configs`)" : "");
            return;
        }
    } else if (c->ds.path) {
        resolved = resolve(y, L->ydir, "deepspeed", p->v, c->ds.path, 0,
                           " (bundled configs: run `axoc fetch deepspeed_configs`)");
        if (!resolved) return;
    } else {
        return;
    }
    fe_deepspeed_load(resolved, c, &L->set, y->ar, y->d);
}

/* ddp_bucket_cap_mb: MiB as torch takes it (bytes = MiB * 2^20); DDP only. */
static void check_ddp_bucket(loader *L) {
    const fe_ypair *p = pair(L, "ddp_bucket_cap_mb");
    char loc[512];
    if (!p || fe_y_is_null(p->v)) return;
    const fe_config *c = L->c;
    if (c->ddp_bucket_cap_mb > 1048576.0)
        ax_error(L->y.d, fe_yloc(&L->y, p->v, loc, sizeof loc),
                 "ddp_bucket_cap_mb: expected a gradient bucket size in MiB of at most 1048576, found %.17g",
                 c->ddp_bucket_cap_mb);
    else if (c->ds.present || c->fsdp.enabled)
        ax_warn(L->y.d, fe_yloc(&L->y, p->k, loc, sizeof loc),
                "ddp_bucket_cap_mb: applies to DDP only; ignored with %s",
                c->ds.present ? "DeepSpeed (its gradient buckets are zero_optimization.reduce_bucket_size)"
                              : "FSDP (one gradient bucket per wrapped unit)");
}

/* pad_to_multiple_of and batch_flattening: Axolotl's collator (the batches' padding, or a micro-batch flattened
 * into one row without padding, which its varlen attention computes as separate rows). What they change is only
 * the batch's width, which NEFTune's scale reads (fe_neftune_multiple); batch_flattening as Axolotl validates and
 * resolves it (true: refused without a varlen attention or with sample_packing; auto: on with a varlen attention,
 * no sample_packing and micro_batch_size > 1). */
static void check_collator(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    const fe_ypair *p = pair(L, "pad_to_multiple_of");
    if (p && !fe_y_is_null(p->v)) {
        int64_t x;
        if (fe_y_int(y, p->key, p->v, 0, &x) == 0) c->pad_to_multiple_of = x; /* 0: Axolotl's `or 64` */
    }
    p = pair(L, "batch_flattening");
    if (!p || fe_y_is_null(p->v)) return;
    const char *t = fe_y_text(p->v);
    int b = 0;
    const int autov = t && p->v->type == YAML_SCALAR_NODE && !strcmp(t, "auto");
    if (!autov && (!t || p->v->type != YAML_SCALAR_NODE || !fe_parse_bool(t, &b))) {
        yerr(y, p->v, p->key, "true, false or auto");
        return;
    }
    if (autov) {
        c->batch_flattening = c->attn_packs && !c->sample_packing && c->micro_batch_size > 1;
        return;
    }
    if (b && !c->attn_packs)
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "batch_flattening: true requires an attention backend that "
                 "reads packed sequences (e.g. attn_implementation: flash_attention_2), as Axolotl requires");
    else if (b && c->sample_packing)
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                 "batch_flattening: true is not compatible with sample_packing (Axolotl refuses both)");
    else
        c->batch_flattening = b;
}

/* lr_scheduler: rex, Axolotl's RexLR: max_lr = learning_rate, min_lr =
 * cosine_min_lr_ratio x learning_rate (0 without it). Its last step's lr
 * is min_lr itself, not a multiple of a group's lr, so with Axolotl's own
 * groups (embedding_lr, lr_groups, LoRA+) and a nonzero floor the groups'
 * lrs stop being the multiples axo applies: refused. */
static void check_rex(loader *L) {
    fe_config *c = L->c;
    char loc[512];
    const fe_ypair *p = pair(L, "cosine_min_lr_ratio");
    const double r = c->cosine_min_lr_ratio;
    if (!isnan(r) && (r < 0 || r > 1))
        ax_error(L->y.d, fe_yloc(&L->y, p->v, loc, sizeof loc), "cosine_min_lr_ratio: expected a ratio in [0, 1], found %g",
                 r);
    const int groups = !isnan(c->embedding_lr) || !isnan(c->embedding_lr_scale) || c->nlr_groups > 0 ||
                       c->loraplus_lr_ratio > 0;
    if (!isnan(r) && r > 0 && groups)
        ax_error(L->y.d, fe_yloc(&L->y, p->v, loc, sizeof loc),
                 "cosine_min_lr_ratio: with lr_scheduler: rex, RexLR ends every parameter group at the same absolute lr, "
                 "which axo's per-group lr multiples cannot express; drop embedding_lr / embedding_lr_scale / lr_groups / "
                 "loraplus_lr_ratio or the floor");
    const fe_ypair *q = pair(L, c->lr_quadratic_warmup ? "lr_quadratic_warmup" : "cosine_constant_lr_ratio");
    if (q && (c->lr_quadratic_warmup || !isnan(c->cosine_constant_lr_ratio)))
        ax_warn(L->y.d, fe_yloc(&L->y, q->k, loc, sizeof loc), "%s: ignored with lr_scheduler: rex (Axolotl builds RexLR "
                "before it looks at it)", q->key);
}

/* Where lr_scheduler_kwargs.name's value is (else where lr_scheduler_kwargs is, else the file) */
static const char *kwarg_at(const loader *L, const char *name, char *buf, size_t cap) {
    const fe_ypair *p = pair(L, "lr_scheduler_kwargs");
    if (!p) return L->y.file;
    if (p->v->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *q = p->v->data.mapping.pairs.start; q < p->v->data.mapping.pairs.top; q++) {
            const char *k = fe_y_text(yaml_document_get_node(L->y.doc, q->key));
            if (k && !strcmp(k, name)) return fe_yloc(&L->y, yaml_document_get_node(L->y.doc, q->value), buf, cap);
        }
    return fe_yloc(&L->y, p->k, buf, cap);
}

/* The schedule's arguments against the schedule, as HF's get_scheduler
 * and Axolotl's create_scheduler would take or refuse them. */
static void check_schedule(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    const fe_ypair *p = pair(L, "lr_scheduler_kwargs");
    const char *at = p ? fe_yloc(y, p->k, loc, sizeof loc) : y->file;
    const char *name = fe_sched_names[c->lr_scheduler];
    const int wmin = c->lr_scheduler == FE_SCHED_COSINE_WARMUP_WITH_MIN_LR, wsd = c->lr_scheduler == FE_SCHED_WARMUP_STABLE_DECAY;
    int cyc = c->lr_scheduler == FE_SCHED_COSINE || c->lr_scheduler == FE_SCHED_COSINE_WITH_RESTARTS ||
              c->lr_scheduler == FE_SCHED_COSINE_WITH_MIN_LR || wmin || wsd;
    int poly = c->lr_scheduler == FE_SCHED_POLYNOMIAL, isq = c->lr_scheduler == FE_SCHED_INVERSE_SQRT,
        minlr = c->lr_scheduler == FE_SCHED_COSINE_WITH_MIN_LR || wmin;
    const int greedy = c->lr_scheduler == FE_SCHED_GREEDY, plat = c->lr_scheduler == FE_SCHED_REDUCE_ON_PLATEAU || greedy;
    if (c->lr_scheduler == FE_SCHED_REX) { /* Axolotl builds RexLR itself and passes none of them */
        if (p && p->v->type == YAML_MAPPING_NODE && p->v->data.mapping.pairs.top > p->v->data.mapping.pairs.start)
            ax_warn(y->d, at, "lr_scheduler_kwargs: ignored with lr_scheduler: rex (Axolotl's RexLR takes none; its "
                              "floor is cosine_min_lr_ratio x learning_rate)");
        return check_rex(L);
    }
    if (c->lr_scheduler == FE_SCHED_ONE_CYCLE) { /* OneCycleLR's own arguments; HF's stay unset */
        if (p && !fe_y_is_null(p->v)) one_cycle_kwargs(L, p);
        check_one_cycle(L);
    } else if (p && !fe_y_is_null(p->v)) {
        sched_kwargs(L, p);
    }
    if ((!isnan(c->sched_factor) || !isnan(c->sched_patience) || !isnan(c->sched_threshold) || !isnan(c->sched_cooldown) ||
         !isnan(c->sched_eps) || c->sched_mode || c->sched_threshold_mode) && !plat)
        ax_error(y->d, at, "lr_scheduler_kwargs: mode, factor, patience, threshold, threshold_mode, cooldown and eps are "
                           "reduce_lr_on_plateau's and greedy's; lr_scheduler is %s", name);
    if ((!isnan(c->sched_greedy_warmup) || !isnan(c->sched_max_lr) || !isnan(c->sched_window) ||
         !isnan(c->sched_reset_start) || c->sched_smooth >= 0) && !greedy)
        ax_error(y->d, at, "lr_scheduler_kwargs: warmup, max_lr, smooth, window_size and reset_start are greedy's; "
                           "lr_scheduler is %s", name);
    if (plat) {
        char kl[512];
        if (!isnan(c->sched_factor) && !(c->sched_factor < 1 && (!greedy || c->sched_factor > 0)))
            ax_error(y->d, kwarg_at(L, "factor", kl, sizeof kl), "lr_scheduler_kwargs.factor: expected %s, found %g (%s)",
                     greedy ? "in (0, 1)" : "below 1", c->sched_factor,
                     greedy ? "GreedyLR refuses 1 and above, and divides by it" : "torch's ReduceLROnPlateau refuses it");
        const double ints[5] = {c->sched_patience, c->sched_cooldown, c->sched_greedy_warmup, c->sched_window,
                                c->sched_reset_start};
        static const char *const ik[5] = {"patience", "cooldown", "warmup", "window_size", "reset_start"};
        for (int k = 0; k < 5; k++) /* counted in int64_t: whole numbers up to 2^53, exact in the YAML's double */
            if (!isnan(ints[k]) && (ints[k] != floor(ints[k]) || fabs(ints[k]) > 0x1p53 || (k == 3 && ints[k] < 1)))
                ax_error(y->d, kwarg_at(L, ik[k], kl, sizeof kl),
                         "lr_scheduler_kwargs.%s: expected a whole number of evaluations%s, at most 2^53, found %g", ik[k],
                         k == 3 ? " (at least 1)" : "", ints[k]);
        if (!isnan(c->sched_min_lr_rate))
            ax_error(y->d, at, "lr_scheduler_kwargs.min_lr_rate: cosine_with_min_lr's; %s's floor is min_lr", name);
        if (!isnan(c->embedding_lr) || !isnan(c->embedding_lr_scale) || c->nlr_groups > 0 || c->loraplus_lr_ratio > 0)
            ax_error(y->d, at, "lr_scheduler: %s %s each parameter group's lr %s on its own, which axo's per-group lr "
                     "multiples cannot follow: drop embedding_lr / embedding_lr_scale / lr_groups / loraplus_lr_ratio or "
                     "use another schedule", name, greedy ? "moves" : "lowers",
                     greedy ? "between min_lr and max_lr, each clamped" : "down to min_lr and stops at eps");
    }
    if (!isnan(c->sched_warmup_lr_rate) && !wmin)
        ax_error(y->d, at, "lr_scheduler_kwargs.warmup_lr_rate: cosine_warmup_with_min_lr's; lr_scheduler is %s", name);
    if ((!isnan(c->sched_num_decay_steps) || !isnan(c->sched_num_stable_steps) || !isnan(c->sched_min_lr_ratio) ||
         c->sched_warmup_type || c->sched_decay_type) && !wsd)
        ax_error(y->d, at, "lr_scheduler_kwargs: num_decay_steps, num_stable_steps, min_lr_ratio, warmup_type and "
                           "decay_type are warmup_stable_decay's; lr_scheduler is %s", name);
    if (wsd && isnan(c->sched_num_decay_steps))
        ax_error(y->d, at, "lr_scheduler: warmup_stable_decay needs lr_scheduler_kwargs.num_decay_steps (HF's "
                           "get_wsd_schedule)");

    if (!isnan(c->sched_num_cycles) && !cyc) ax_error(y->d, at, "lr_scheduler_kwargs.num_cycles: %s takes no num_cycles", name);
    if ((!isnan(c->sched_power) || !isnan(c->sched_lr_end)) && !poly)
        ax_error(y->d, at, "lr_scheduler_kwargs: power and lr_end are polynomial's; lr_scheduler is %s", name);
    if (!isnan(c->sched_timescale) && !isq) ax_error(y->d, at, "lr_scheduler_kwargs.timescale: %s takes none", name);
    if ((!isnan(c->sched_min_lr) || !isnan(c->sched_min_lr_rate)) && !minlr && !plat)
        ax_error(y->d, at, "lr_scheduler_kwargs: min_lr and min_lr_rate are cosine_with_min_lr's; lr_scheduler is %s "
                           "(Axolotl's cosine takes cosine_min_lr_ratio)", name);
    if (minlr && !isnan(c->sched_min_lr) && !isnan(c->sched_min_lr_rate))
        ax_error(y->d, at, "lr_scheduler_kwargs: only one of min_lr or min_lr_rate should be set (HF)");
    if (minlr && isnan(c->sched_min_lr) && isnan(c->sched_min_lr_rate))
        ax_error(y->d, at, "lr_scheduler: %s needs lr_scheduler_kwargs.min_lr or min_lr_rate (HF)", name);
    if (poly && (isnan(c->sched_lr_end) ? 1e-7 : c->sched_lr_end) >= c->learning_rate)
        ax_error(y->d, at, "lr_scheduler_kwargs.lr_end (%g) must be smaller than learning_rate (%g), as HF requires",
                 isnan(c->sched_lr_end) ? 1e-7 : c->sched_lr_end, c->learning_rate);
    if (isq && !isnan(c->sched_timescale) && !(c->sched_timescale > 0))
        ax_error(y->d, at, "lr_scheduler_kwargs.timescale: expected > 0, found %g", c->sched_timescale);
    double r[2] = {c->cosine_min_lr_ratio, c->cosine_constant_lr_ratio};
    const char *rk[2] = {"cosine_min_lr_ratio", "cosine_constant_lr_ratio"};
    for (int i = 0; i < 2; i++)
        if (!isnan(r[i]) && (r[i] < 0 || r[i] > 1))
            ax_error(y->d, fe_yloc(y, pair(L, rk[i])->v, loc, sizeof loc), "%s: expected a ratio in [0, 1], found %g", rk[i], r[i]);
    if ((!isnan(c->cosine_min_lr_ratio) || c->lr_quadratic_warmup) && c->lr_scheduler != FE_SCHED_COSINE) {
        p = pair(L, c->lr_quadratic_warmup ? "lr_quadratic_warmup" : "cosine_min_lr_ratio");
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: applies to lr_scheduler: cosine only (Axolotl), ignored with %s",
                p->key, name);
    }
}

/* early_stopping_patience and load_best_model_at_end, as Axolotl 0.19
 * validates them and passes them to HF's TrainingArguments. */
static void check_best_model(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    const fe_ypair *p;
    int held_out = c->val_set_size > 0 || c->ntest_datasets > 0;
    /* Axolotl's check_saves / check_evals / check_save_strategy_best_requires_metric */
    if (c->save_strategy && c->save_strategy != FE_SAVE_STEPS && c->save_steps > 0)
        ax_error(y->d, fe_yloc(y, pair(L, "save_strategy")->v, loc, sizeof loc),
                 "save_strategy: expected steps (or none) with save_steps, found %s", fe_y_text(pair(L, "save_strategy")->v));
    if (c->save_strategy == FE_SAVE_BEST && !pair(L, "metric_for_best_model"))
        ax_error(y->d, fe_yloc(y, pair(L, "save_strategy")->v, loc, sizeof loc),
                 "save_strategy: best requires metric_for_best_model (loss / eval_loss), as Axolotl does");
    if (c->save_strategy == FE_SAVE_BEST && !held_out)
        ax_error(y->d, fe_yloc(y, pair(L, "save_strategy")->v, loc, sizeof loc),
                 "save_strategy: best saves when eval_loss improves: set val_set_size or test_datasets");
    p = pair(L, "eval_strategy") ? pair(L, "eval_strategy") : pair(L, "evaluation_strategy");
    if (c->eval_strategy && c->eval_strategy != FE_EVAL_STEPS && (c->eval_steps || c->eval_steps_ratio > 0))
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "%s: expected steps (or none) with eval_steps, found %s", p->key,
                 fe_y_text(p->v));
    if (c->eval_strategy && c->eval_strategy != FE_EVAL_STEPS && c->evals_per_epoch)
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "%s: expected steps (or none) with evals_per_epoch, found %s",
                 p->key, fe_y_text(p->v));
    if ((c->lr_scheduler == FE_SCHED_REDUCE_ON_PLATEAU || c->lr_scheduler == FE_SCHED_GREEDY) &&
        (!held_out || c->eval_strategy == FE_EVAL_NO))
        ax_error(y->d, fe_yloc(y, pair(L, "lr_scheduler")->v, loc, sizeof loc),
                 "lr_scheduler: %s %s, and HF requires an evaluation for it: set val_set_size or test_datasets%s",
                 fe_sched_names[c->lr_scheduler],
                 c->lr_scheduler == FE_SCHED_GREEDY ? "moves the lr as eval_loss improves or stalls"
                                                     : "lowers the lr when eval_loss stops improving",
                 c->eval_strategy == FE_EVAL_NO ? " and no eval_strategy: no" : "");
    if (c->eval_strategy > FE_EVAL_NO && !held_out)
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "%s: %s, but there is nothing to evaluate: set val_set_size or "
                 "test_datasets", p->key, fe_y_text(p->v));
    if (c->early_stopping_patience > 0) {
        p = pair(L, "early_stopping_patience");
        const char *at = fe_yloc(y, p->k, loc, sizeof loc);
        if (!c->save_steps || !(c->eval_steps || c->eval_steps_ratio))
            ax_error(y->d, at, "early_stopping_patience: requires save_steps and eval_steps to be set (eval_steps "
                               "dividing save_steps), as Axolotl does");
        else if (!c->eval_steps)
            ax_error(y->d, at, "early_stopping_patience: expected eval_steps as a whole number of steps, found a fraction "
                               "(%g) of the run", c->eval_steps_ratio);
        else if (c->save_steps % c->eval_steps)
            ax_error(y->d, at, "early_stopping_patience: requires that eval_steps (%lld) evenly divides save_steps (%lld)",
                     (long long)c->eval_steps, (long long)c->save_steps);
        else if (!held_out)
            ax_error(y->d, at, "early_stopping_patience: there is nothing to evaluate: set val_set_size or test_datasets");
    }
    int want = c->load_best_model_at_end || c->early_stopping_patience > 0;
    c->load_best = want && held_out && c->save_steps > 0 && c->eval_steps > 0 && c->save_steps % c->eval_steps == 0;
    if (c->load_best_model_at_end && !c->load_best) {
        p = pair(L, "load_best_model_at_end");
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc),
                "load_best_model_at_end: ignored, as Axolotl ignores it, unless val_set_size or test_datasets is set and save_steps is a "
                "multiple of eval_steps (both whole numbers of steps); the final model is the last step's");
    }
}

/* peft_layers_to_transform / peft_layers_pattern: Axolotl passes them to
 * PEFT's LoraConfig, so they mean nothing without an adapter; a pattern
 * needs layers (Axolotl's and PEFT's check). */
/* rl and the keys of TRL's DPOTrainer as Axolotl 0.19 hands them over
 * (core/trainers/dpo, core/builders/rl.py; TRL 1.9's DPOConfig): beta is
 * trl.beta, else rl_beta, else dpo_beta (its old name, when not 0), else
 * TRL's 0.1. What axo implements of rl: dpo (and rl: ipo) is TRL's loss
 * types that score each pair alone (ir/dpo_loss.h) with the reference
 * model's log-probabilities taken before the first step
 * (docs/architecture.md); the rest is refused here. */
/* any finite number, as Axolotl's float fields take it */
static int y_finite(const fe_yctx *y, const char *key, const yaml_node_t *v, double *out) {
    const char *s = fe_y_text(v);
    if (!s || v->type != YAML_SCALAR_NODE || !fe_parse_num(s, out) || !isfinite(*out)) {
        yerr(y, v, key, "a number");
        return -1;
    }
    return 0;
}

static void check_rl(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512], k2[96];
    const fe_ypair *p = pair(L, "rl");
    const char *rl = p && !fe_y_is_null(p->v) ? fe_y_text(p->v) : NULL;
    if (p && !fe_y_is_null(p->v) && (!rl || p->v->type != YAML_SCALAR_NODE)) {
        yerr(y, p->v, "rl", "one of dpo, ipo, orpo, kto, simpo, grpo, gdpo, ebft (Axolotl's RLType)");
        return;
    }
    int no = 0;
    if (rl && (!*rl || (fe_parse_bool(rl, &no) && !no))) rl = NULL; /* "" and false: no rl (Axolotl's falsy) */
    static const char *const gone[][2] = {{"dpo_use_logits_to_keep", "it has been removed in TRL >= 0.29.0"},
                                          {"dpo_generate_during_eval", "it has been removed in TRL >= 0.29.0"},
                                          {"dpo_norm_loss", "due to breaking changes in TRL >= 0.29.0"},
                                          {"rpo_alpha", "deprecated in TRL >= 0.29.0; RPO is now dpo_loss_type: [sigmoid, "
                                                        "sft] with dpo_loss_weights: [1.0, <rpo_alpha>]"}};
    for (size_t i = 0; i < AX_ARRAY_LEN(gone); i++)
        if ((p = pair(L, gone[i][0])) && !fe_y_is_null(p->v))
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: no longer supported, %s (Axolotl 0.19 refuses it)",
                     gone[i][0], gone[i][1]);
    p = pair(L, "rl");
    if (rl && strcmp(rl, "dpo") && strcmp(rl, "ipo") && strcmp(rl, "simpo") && strcmp(rl, "orpo")) {
        static const char *const others[] = {"kto", "grpo", "gdpo", "ebft"};
        int known = 0;
        for (size_t i = 0; i < AX_ARRAY_LEN(others); i++) known |= !strcmp(rl, others[i]);
        if (known)
            refuse(y, p->v, "rl", "a preference or RL objective other than TRL's DPOTrainer, CPOTrainer (simpo) and "
                   "ORPOTrainer", "axo accepts dpo, ipo, simpo and orpo");
        else
            yerr(y, p->v, "rl", "one of dpo, ipo, orpo, kto, simpo, grpo, gdpo, ebft (Axolotl's RLType)");
        return;
    }
    const char *const dpo_only[] = {"rl_beta", "dpo_beta", "trl", "dpo_loss_type", "dpo_loss_weights",
                                    "dpo_label_smoothing", "max_prompt_len", "simpo_gamma", "cpo_alpha", "orpo_alpha"};
    if (!rl) {
        for (size_t i = 0; i < AX_ARRAY_LEN(dpo_only); i++)
            if ((p = pair(L, dpo_only[i])) && !fe_y_is_null(p->v) &&
                !(p->v->type == YAML_MAPPING_NODE && p->v->data.mapping.pairs.top == p->v->data.mapping.pairs.start)) {
                if (!strcmp(dpo_only[i], "dpo_loss_type") || !strcmp(dpo_only[i], "dpo_loss_weights"))
                    ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: for rl: dpo only (Axolotl refuses it without)",
                             dpo_only[i]);
                else
                    ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored without rl (the causal-LM loss)", dpo_only[i]);
            }
        return;
    }
    c->rl = FE_RL_DPO;
    c->rl_ipo = !strcmp(rl, "ipo");
    const int simpo = !strcmp(rl, "simpo"), orpo = !strcmp(rl, "orpo");
    c->rl_kind = simpo ? FE_RL_SIMPO : orpo ? FE_RL_ORPO : FE_RL_DPO_TRAINER;
    if (c->rl_ipo)
        ax_warn(y->d, fe_yloc(y, p->v, loc, sizeof loc), "rl: ipo: TRL's DPOTrainer with loss_type [ipo] (Axolotl 0.19 says it "
                "will soon be deprecated: rl: dpo with dpo_loss_type: [ipo] is the same)");
    /* beta */
    double b;
    int have_beta = 0;
    const fe_ypair *tp = pair(L, "trl");
    if (tp && !fe_y_is_null(tp->v)) {
        if (tp->v->type != YAML_MAPPING_NODE) {
            yerr(y, tp->v, "trl", "a mapping (of which axo reads beta)");
        } else {
            fe_ypair *kp;
            int n = fe_y_pairs(y, tp->v, "trl", &kp);
            for (int i = 0; i < n; i++) {
                snprintf(k2, sizeof k2, "trl.%s", kp[i].key);
                if (!strcmp(kp[i].key, "beta")) {
                    if (!fe_y_is_null(kp[i].v) && fe_y_num(y, k2, kp[i].v, 0, &b) == 0) c->rl_beta = b, have_beta = 1;
                    continue;
                }
                int f = 0;
                if (fe_y_is_null(kp[i].v) || (fe_y_text(kp[i].v) && fe_parse_bool(fe_y_text(kp[i].v), &f) && !f)) continue;
                refuse(y, kp[i].v, k2, "a setting of TRL's generating trainers (GRPO and the like), or of the reference "
                       "model's updates", "axo accepts null or false; it reads trl.beta");
            }
        }
    }
    /* Axolotl's check_rl_beta: dpo_beta when it is set and rl_beta is not (or 0) */
    double rb = NAN, db = NAN;
    if ((p = pair(L, "rl_beta")) && !fe_y_is_null(p->v) && fe_y_num(y, "rl_beta", p->v, 0, &b) == 0) rb = b;
    if ((p = pair(L, "dpo_beta")) && !fe_y_is_null(p->v) && fe_y_num(y, "dpo_beta", p->v, 0, &b) == 0) db = b;
    if (!isnan(db) && db != 0 && (isnan(rb) || rb == 0)) rb = db;
    if (!have_beta && !isnan(rb)) c->rl_beta = rb, have_beta = 1;
    /* Axolotl's RL builder: orpo_alpha is beta when neither trl.beta nor rl_beta is set, whatever the rl */
    if (!have_beta && (p = pair(L, "orpo_alpha")) && !fe_y_is_null(p->v) && y_finite(y, "orpo_alpha", p->v, &b) == 0)
        c->rl_beta = b, have_beta = 1;
    if (orpo) { /* ORPOConfig(beta): TRL's ORPOTrainer, its loss the chosen rows' NLL - beta x mean logsigmoid(log odds) */
        for (const char *const *k = (const char *const[]){"simpo_gamma", "cpo_alpha", "dpo_label_smoothing",
                                                          "dpo_use_liger_kernel", "dpo_use_weighting", "dpo_padding_free",
                                                          "max_prompt_len", NULL}; *k; k++)
            if ((p = pair(L, *k)) && !fe_y_is_null(p->v))
                ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored with rl: orpo (Axolotl does not pass it to "
                        "TRL's ORPOTrainer)", *k);
        static const char *const dpo_keys[] = {"dpo_loss_type", "dpo_loss_weights"};
        for (size_t i = 0; i < AX_ARRAY_LEN(dpo_keys); i++)
            if ((p = pair(L, dpo_keys[i])) && !fe_y_is_null(p->v))
                ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: for rl: dpo only (Axolotl refuses it with rl: orpo)",
                         dpo_keys[i]);
        c->dpo_loss_types = "orpo";
        goto common;
    }
    if (simpo) { /* CPOConfig(loss_type="simpo", simpo_gamma, cpo_alpha when set), as Axolotl's RL builder makes it */
        if ((p = pair(L, "simpo_gamma")) && !fe_y_is_null(p->v)) {
            if (y_finite(y, "simpo_gamma", p->v, &b) == 0) c->simpo_gamma = b;
        } else {
            ax_error(y->d, p ? fe_yloc(y, p->v, loc, sizeof loc) : y->file, "simpo_gamma: rl: simpo needs it (Axolotl "
                     "0.19 hands TRL's CPOConfig simpo_gamma None when it is unset, and the SimPO loss then fails at the "
                     "first step); the SimPO paper and TRL's own default use 0.5");
        }
        c->cpo_alpha = 1.0; /* CPOConfig's default: the NLL term is on unless cpo_alpha: 0 */
        if ((p = pair(L, "cpo_alpha")) && !fe_y_is_null(p->v) && y_finite(y, "cpo_alpha", p->v, &b) == 0) c->cpo_alpha = b;
        if (!(c->rl_beta != 0))
            ax_error(y->d, y->file, "rl: simpo with beta 0: CPOTrainer divides simpo_gamma by beta");
        if (!isnan(c->warmup_ratio) && c->warmup_ratio != 0) {
            p = pair(L, "warmup_ratio");
            ax_error(y->d, p ? fe_yloc(y, p->v, loc, sizeof loc) : y->file, "warmup_ratio: not supported with the simpo "
                     "trainer; use warmup_steps (Axolotl's check)");
        }
        static const char *const dpo_keys[] = {"dpo_loss_type", "dpo_loss_weights"};
        for (size_t i = 0; i < AX_ARRAY_LEN(dpo_keys); i++)
            if ((p = pair(L, dpo_keys[i])) && !fe_y_is_null(p->v))
                ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: for rl: dpo only (Axolotl refuses it with rl: simpo, "
                         "whose loss is CPOTrainer's simpo)", dpo_keys[i]);
        static const char *const unread[] = {"dpo_label_smoothing", "dpo_use_liger_kernel", "dpo_use_weighting",
                                             "dpo_padding_free", "max_prompt_len"};
        for (size_t i = 0; i < AX_ARRAY_LEN(unread); i++)
            if ((p = pair(L, unread[i])) && !fe_y_is_null(p->v))
                ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored with rl: simpo (Axolotl passes it to TRL's "
                        "DPOTrainer only)", unread[i]);
        c->dpo_loss_types = "simpo";
        goto simpo_common;
    }
    for (const char *const *k = (const char *const[]){"simpo_gamma", "cpo_alpha", NULL}; *k; k++)
        if ((p = pair(L, *k)) && !fe_y_is_null(p->v))
            ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored with rl: %s (it is read by rl: simpo's "
                    "CPOTrainer)", *k, rl);
    /* the loss: TRL's loss_type (a weighted sum of per-pair losses, ir/dpo_loss.h), as Axolotl's DPOStrategy sets it:
     * dpo_loss_type / dpo_loss_weights under rl: dpo (Axolotl's check_dpo refuses them under any other rl), ipo
     * under rl: ipo; label_smoothing from dpo_label_smoothing under rl: dpo */
    int nlt = 0, bad = 0, tcodes[AXO_DPO_MAXTERMS] = {0}, is_sft[AXO_DPO_MAXTERMS] = {0}, npair = 0;
    ax_buf lt = {0}, lw = {0};
    if ((p = pair(L, "dpo_loss_type")) && !fe_y_is_null(p->v)) {
        yaml_node_item_t *it = p->v->type == YAML_SEQUENCE_NODE ? p->v->data.sequence.items.start : NULL;
        nlt = it ? (int)(p->v->data.sequence.items.top - it) : 0;
        if (!it) {
            yerr(y, p->v, "dpo_loss_type", "a list of TRL's loss types (Axolotl's schema: a scalar is no list)");
            bad = 1;
        } else if (c->rl_ipo) {
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_loss_type: for rl: dpo only (Axolotl refuses it with rl: "
                     "ipo, whose loss is ipo)");
            nlt = 0;
        } else if (nlt == 0) {
            yerr(y, p->v, "dpo_loss_type", "a list of at least one of TRL's loss types (sigmoid, hinge, ipo, ...)");
        } else if (nlt > AXO_DPO_MAXTERMS) {
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "dpo_loss_type: a sum of %d losses is not implemented (at most %d)",
                     nlt, AXO_DPO_MAXTERMS);
            nlt = 0;
        }
        for (int i = 0; i < nlt; i++) {
            yaml_node_t *e = it ? yaml_document_get_node(y->doc, it[i]) : p->v;
            const char *t = fe_y_text(e);
            int code = t && e->type == YAML_SCALAR_NODE ? axo_dpo_type_from_name(t, strlen(t)) : -1;
            if (code >= AXO_DPO_SIMPO) code = -1; /* CPOTrainer's and ORPOTrainer's, not DPOConfig's */
            if (code >= 0) {
                tcodes[npair] = code;
                ax_buf_printf(&lt, "%s%s", npair++ ? "," : "", t);
            } else if (t && e->type == YAML_SCALAR_NODE && !strcmp(t, "sft")) {
                is_sft[i] = 1; /* the micro-batch's chosen completions' token mean: an NLL term beside the pairs' */
            } else if (t && e->type == YAML_SCALAR_NODE && (!strcmp(t, "aot") || !strcmp(t, "aot_unpaired"))) {
                refuse(y, e, "dpo_loss_type", "an aot loss (sorted over the micro-batch)",
                       "axo implements TRL's per-pair losses (sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair, "
                       "sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm) and sft");
                bad = 1;
            } else {
                yerr(y, e, "dpo_loss_type", "one of TRL 1.9's loss types: sigmoid, hinge, ipo, exo_pair, nca_pair, robust, "
                     "bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, sigmoid_norm");
                bad = 1;
            }
        }
    }
    if ((p = pair(L, "dpo_loss_weights")) && !fe_y_is_null(p->v)) {
        yaml_node_item_t *it = p->v->type == YAML_SEQUENCE_NODE ? p->v->data.sequence.items.start : NULL;
        int nw = it ? (int)(p->v->data.sequence.items.top - it) : -1;
        if (c->rl_ipo)
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_loss_weights: for rl: dpo only (Axolotl refuses it with "
                     "rl: ipo)");
        else if (!pair(L, "dpo_loss_type") || fe_y_is_null(pair(L, "dpo_loss_type")->v))
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_loss_weights: requires dpo_loss_type to be set (Axolotl's check)");
        else if (nw != nlt && nlt > 0)
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "dpo_loss_weights: expected a list of %d weight%s, one a loss "
                     "type (Axolotl's check)", nlt, nlt == 1 ? "" : "s");
        else
            for (int i = 0; i < nw; i++) { /* any finite number, as Axolotl's list[float] and TRL take it */
                yaml_node_t *e = yaml_document_get_node(y->doc, it[i]);
                snprintf(k2, sizeof k2, "dpo_loss_weights[%d]", i);
                if (y_finite(y, k2, e, &b) != 0) bad = 1;
                else if (i < nlt && is_sft[i]) c->dpo_sft_weight += b;
                else ax_buf_printf(&lw, "%s%.17g", lw.len ? "," : "", b);
            }
    }
    /* sft's weight (1 without dpo_loss_weights); the pair losses without it, or, when sft is all, sigmoid of weight 0
     * (the op needs a term) */
    int nsft = 0;
    for (int i = 0; i < nlt; i++) nsft += is_sft[i];
    if (nsft && !(pair(L, "dpo_loss_weights") && !fe_y_is_null(pair(L, "dpo_loss_weights")->v))) c->dpo_sft_weight = nsft;
    if (nsft && !npair && !bad) ax_buf_puts(&lt, "sigmoid"), ax_buf_puts(&lw, "0"), tcodes[0] = AXO_DPO_SIGMOID, npair = 1;
    c->dpo_loss_types = c->rl_ipo ? "ipo" : npair > 0 && !bad ? ax_arena_strdup(L->y.ar, lt.data) : "sigmoid";
    if (c->rl_ipo) tcodes[0] = AXO_DPO_IPO, npair = 1;
    if (!npair) tcodes[0] = AXO_DPO_SIGMOID, npair = 1;
    if (lw.len && !bad) c->dpo_loss_weights = ax_arena_strdup(L->y.ar, lw.data);
    const int nall = nlt; /* TRL's loss types, sft included */
    nlt = npair;
    ax_buf_free(&lt);
    ax_buf_free(&lw);
    int uses_ls = 0, exo = 0, robust = 0;
    for (int i = 0; i < nlt; i++) {
        uses_ls |= tcodes[i] == AXO_DPO_ROBUST || tcodes[i] == AXO_DPO_EXO_PAIR;
        exo |= tcodes[i] == AXO_DPO_EXO_PAIR;
        robust |= tcodes[i] == AXO_DPO_ROBUST;
    }
    if ((p = pair(L, "dpo_label_smoothing")) && !fe_y_is_null(p->v) && fe_y_num(y, "dpo_label_smoothing", p->v, 2, &b) == 0 &&
        b != 0) {
        if (c->rl_ipo)
            ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_label_smoothing: ignored with rl: ipo (Axolotl passes it "
                    "for rl: dpo only)");
        else if (!uses_ls)
            ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_label_smoothing: ignored, as TRL 1.9's %s loss ignores it "
                    "(it is read by the robust, exo_pair and aot losses only)", c->dpo_loss_types);
        else if (robust && !(b >= 0 && b < 0.5)) /* TRL only warns: (1 - 2 eps) divides robust's loss, 0 or negative */
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc), "dpo_label_smoothing: expected a number in [0, 0.5) for the "
                     "robust loss (it divides by 1 - 2 x dpo_label_smoothing), found %g", b);
        else
            c->dpo_label_smoothing = b; /* exo_pair: any eps in (0, 1), log(eps) and log(1 - eps) */
    }
    if (exo && c->dpo_label_smoothing == 0 && !bad)
        ax_error(y->d, fe_yloc(y, pair(L, "dpo_loss_type")->v, loc, sizeof loc), "dpo_loss_type: exo_pair needs "
                 "dpo_label_smoothing > 0 (TRL raises; the EXO paper recommends 1e-3)");
    if ((p = pair(L, "dpo_use_liger_kernel")) && !fe_y_is_null(p->v) && fe_y_text(p->v) && fe_parse_bool(fe_y_text(p->v), &no) &&
        no && !bad) {
        /* TRL's Liger path: LigerFusedLinearDPOLoss(beta, loss_type[0]), no label smoothing, no loss weights; axo
         * computes TRL's own losses, which are those numbers only for one sigmoid term of weight 1 */
        if (tcodes[0] == AXO_DPO_IPO)
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_use_liger_kernel: Axolotl refuses it with the ipo loss "
                     "(liger's fused DPO loss cannot length-normalize the squared margin)");
        else if (nall > 1)
            ax_error(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dpo_use_liger_kernel: TRL raises with several loss types");
        else if (tcodes[0] != AXO_DPO_SIGMOID || c->dpo_loss_weights)
            refuse(y, p->v, "dpo_use_liger_kernel", "TRL's Liger DPO loss (its own kernel, without loss weights or label "
                   "smoothing) with a loss other than sigmoid of weight 1", "axo accepts it with the sigmoid loss");
    }
common:;
    {   /* Axolotl's check_fsdp2_base_model_quant_rl (dpo, ipo, orpo and kto: not simpo) */
        const fe_ypair *fv = pair(L, "fsdp_version");
        double v = 0;
        const char *q = NULL;
        if (fv && !fe_y_is_null(fv->v) && fe_y_text(fv->v) && fe_parse_num(fe_y_text(fv->v), &v) && v == 2)
            for (int i = 0; i < 2 && !q; i++) {
                const char *k = i ? "load_in_8bit" : "load_in_4bit";
                const fe_ypair *lq = pair(L, k);
                if (lq && !fe_y_is_null(lq->v) && fe_y_text(lq->v) && fe_parse_bool(fe_y_text(lq->v), &no) && no) q = k;
            }
        if (q)
            ax_error(y->d, fe_yloc(y, fv->k, loc, sizeof loc), "fsdp_version: 2 with %s and rl: %s: FSDP2 does not "
                     "support load_in_8bit or load_in_4bit with rl (Axolotl's check; use DeepSpeed or fsdp_version 1)", q,
                     rl);
    }
    int64_t mp;
    if (c->rl_kind == FE_RL_DPO_TRAINER && (p = pair(L, "max_prompt_len")) && !fe_y_is_null(p->v) &&
        fe_y_int(y, "max_prompt_len", p->v, 1, &mp) == 0)
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "max_prompt_len: ignored, as Axolotl 0.19 passes it to no DPO "
                "trainer (TRL 1.9's DPOConfig has no max_prompt_length)");
simpo_common:;
    const int ref_free = c->rl_kind != FE_RL_DPO_TRAINER;
    /* what axo does not implement with it (yet), and Axolotl's own refusals */
    struct { const char *key; int on; const char *why; } no_go[] = {
        {"sample_packing", c->sample_packing, "`sample_packing: true` does not work with RLHF training (Axolotl's check)"},
        {"sequence_parallel_degree", c->sequence_parallel_degree > 1, "sequence parallelism with rl: dpo is not implemented "
         "(each row's summed log-probability would be reduced over the sp ranks)"},
        {"neftune_noise_alpha", c->neftune_noise_alpha > 0, "NEFTune with rl: dpo is not implemented (under PEFT, HF's hook "
         "would also add noise to TRL's reference forward)"},
        {"val_set_size", c->val_set_size >= 1, "with rl Axolotl hands HF's train_test_split the float as it is, which it "
         "refuses outside (0, 1); give a fraction"},
        {"lora_model_dir", !ref_free && c->lora_model_dir != NULL, "rl: dpo on an adapter trained before is not implemented (TRL's "
         "reference is then the base model without it, not the model the run starts from)"},
        {"peft_init_lora_weights", !ref_free && c->peft_init_lora_weights == 2, "rl: dpo with adapters that do not start at zero is "
         "not implemented (TRL's reference is the model without them)"},
        {"excess_length_strategy", c->excess_length != 0, "rl: dpo implements Axolotl's default, drop"},
        {"curriculum_sampling", c->curriculum_sampling, "rl: dpo in the prepared order is not implemented"},
        {"group_by_length", c->group_by_length, "rl: dpo with length-grouped batches is not implemented"},
        {"dataset_exact_deduplication", c->dataset_exact_deduplication, "rl: dpo with deduplication is not implemented"},
        {"dataset_shard_num", c->dataset_shard_num > 0, "rl: dpo with dataset_shard_num is not implemented"},
        {"fix_untrained_tokens", c->fix_untrained, "rl: dpo with fix_untrained_tokens is not implemented"},
        {"lr_scheduler", c->lr_scheduler == FE_SCHED_REDUCE_ON_PLATEAU || c->lr_scheduler == FE_SCHED_GREEDY,
         "a scheduler stepped with eval_loss is not implemented with rl: dpo yet"},
        {"save_strategy", c->save_strategy == FE_SAVE_BEST, "save_strategy: best with rl: dpo is not "
         "implemented yet"},
        {"batch_flattening", c->batch_flattening, "rl: dpo pads its pairs as TRL's collator does"},
        {"pad_to_multiple_of", c->pad_to_multiple_of > 0, "with rl: dpo Axolotl swaps in its own DPO collator, which "
         "does not pad TRL 1.9's prompt_ids / chosen_ids (its run fails at the first batch)"},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(no_go); i++)
        if (no_go[i].on) {
            p = pair(L, no_go[i].key);
            ax_error(y->d, p ? fe_yloc(y, p->v, loc, sizeof loc) : y->file, "%s: %s", no_go[i].key, no_go[i].why);
        }
    if (c->sequence_len < 2)
        ax_error(y->d, y->file, "sequence_len: rl: dpo needs rows of at least 2 tokens (a prompt and a completion)");
    if ((p = pair(L, "dataloader_drop_last")) && !fe_y_is_null(p->v)) {
        ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "dataloader_drop_last: ignored with rl: dpo, as Axolotl's RL "
                "trainer builder does not pass it (HF's default: false)");
        c->dataloader_drop_last = 0;
    }
    /* Axolotl's RL builder does not pass these to HF */
    static const char *const rl_unread[] = {"early_stopping_patience", "load_best_model_at_end"};
    for (size_t i = 0; i < AX_ARRAY_LEN(rl_unread); i++)
        if ((p = pair(L, rl_unread[i])) && !fe_y_is_null(p->v) && (i ? c->load_best_model_at_end : c->early_stopping_patience > 0))
            ax_warn(y->d, fe_yloc(y, p->k, loc, sizeof loc), "%s: ignored, as Axolotl's RL trainer builder does not pass it "
                    "to HF", rl_unread[i]);
    c->early_stopping_patience = 0, c->load_best_model_at_end = 0;
    /* Axolotl's DPO strategies read cfg["datasets"][i] for test_datasets[i] as well: chat_template.default its
     * field_* keys, user_defined its type mapping */
    for (int j = 0; j < c->ntest_datasets; j++) {
        fe_dataset *t = &c->test_datasets[j];
        const rt_dpo_family f = t->spec.dpo_family;
        if (t->spec.fmt != RT_FMT_DPO || (f != RT_DPO_CHAT && f != RT_DPO_USER) || t->spec.dpo_variant == RT_DPOV_ORPO_ARGILLA)
            continue;
        p = pair(L, "test_datasets");
        if (j >= c->ndatasets || (f == RT_DPO_USER && c->datasets[j].spec.dpo_family != RT_DPO_USER)) {
            ax_error(y->d, p ? fe_yloc(y, p->k, loc, sizeof loc) : y->file, "test_datasets[%d]: its %s type reads "
                     "datasets[%d]'s %s in Axolotl 0.19 (its DPO strategies index datasets, not test_datasets), and %s",
                     j, f == RT_DPO_CHAT ? "chat_template.default" : "user-defined", j,
                     f == RT_DPO_CHAT ? "field_* keys" : "type mapping",
                     j >= c->ndatasets ? "there is none (Axolotl fails)" : "that is no mapping (Axolotl raises)");
            continue;
        }
        const fe_dataset *src = &c->datasets[j];
        if (f == RT_DPO_CHAT) {
            t->spec.field_messages = src->dpo_fields[0] ? src->dpo_fields[0] : "messages";
            t->spec.ud_field_chosen = src->dpo_fields[1] ? src->dpo_fields[1] : "chosen";
            t->spec.ud_field_rejected = src->dpo_fields[2] ? src->dpo_fields[2] : "rejected";
        } else {
            const rt_ds_spec *u = &src->spec;
            t->spec.ud_field_prompt = u->ud_field_prompt, t->spec.ud_field_system = u->ud_field_system;
            t->spec.ud_field_chosen = u->ud_field_chosen, t->spec.ud_field_rejected = u->ud_field_rejected;
            t->spec.ud_format = u->ud_format, t->spec.ud_chosen_format = u->ud_chosen_format;
            t->spec.ud_rejected_format = u->ud_rejected_format;
        }
    }
    if (c->lora_dropout > 0 && c->adapter != FE_ADAPTER_NONE) {
        p = pair(L, "lora_dropout");
        ax_warn(y->d, p ? fe_yloc(y, p->k, loc, sizeof loc) : y->file, "lora_dropout: %g is not applied, as TRL's "
                "DPOTrainer disables every dropout of the model (DPOConfig.disable_dropout)", c->lora_dropout);
        c->lora_dropout = 0;
    }
}

static void check_peft_layers(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    const fe_ypair *pl = pair(L, "peft_layers_to_transform"), *pp = pair(L, "peft_layers_pattern");
    if (c->npeft_layers_pattern && !c->npeft_layers)
        ax_error(y->d, fe_yloc(y, pp->k, loc, sizeof loc),
                 "peft_layers_pattern: requires peft_layers_to_transform to be set (as Axolotl and PEFT require)");
    if (c->peft_use_dora && c->peft_init_lora_weights == 2)
        ax_error(y->d, fe_yloc(y, pair(L, "peft_init_lora_weights")->v, loc, sizeof loc),
                 "peft_init_lora_weights: false with peft_use_dora is not implemented (DoRA's magnitude would start from "
                 "the norms of W + s·B·A with a random B)");
    if (c->adapter == FE_ADAPTER_NONE && c->peft_use_dora) { /* Axolotl hands it to PEFT's LoraConfig only */
        ax_warn(y->d, fe_yloc(y, pair(L, "peft_use_dora")->k, loc, sizeof loc),
                "peft_use_dora: ignored without adapter: lora|qlora (DoRA is a kind of LoRA adapter)");
        c->peft_use_dora = 0;
    }
    if (c->adapter == FE_ADAPTER_NONE && (c->npeft_layers || c->npeft_layers_pattern)) {
        ax_warn(y->d, fe_yloc(y, (c->npeft_layers ? pl : pp)->k, loc, sizeof loc),
                "%s: ignored without adapter: lora|qlora (they choose the layers of the LoRA adapters)",
                c->npeft_layers ? "peft_layers_to_transform" : "peft_layers_pattern");
        c->npeft_layers = c->npeft_layers_pattern = 0;
    }
}

static void check_whole(loader *L) {
    fe_config *c = L->c;
    const fe_yctx *y = &L->y;
    char loc[512];
    const fe_ypair *p;
    if (!(p = pair(L, "base_model")) || fe_y_is_null(p->v))
        ax_error(y->d, p ? fe_yloc(y, p->v, loc, sizeof loc) : y->file,
                 "base_model: expected a Hugging Face model directory or Hub repo id, found none");
    if (!(p = pair(L, "datasets")) || fe_y_is_null(p->v))
        ax_error(y->d, p ? fe_yloc(y, p->v, loc, sizeof loc) : y->file,
                 "datasets: expected a list of {path: FILE.jsonl}, found none");
    if ((p = pair(L, "base_model_config")) && c->base_model) {
        const char *given = fe_y_text(p->v);
        char *a = NULL, *b = NULL;
        if (given) {
            const char *rel = ax_arena_printf(y->ar, "%s/%s", L->ydir, given);
            int local = is_dir(given) || is_dir(rel);
            if (!local && fe_hub_is_repo_id(given)) /* a repo id: the same repo as base_model's */
                given = c->base_model_hub && !strcmp(given, c->base_model_hub) ? NULL : given;
            a = !given ? NULL : local ? realpath(is_dir(given) ? given : rel, NULL) : strdup(given);
            b = given ? realpath(c->base_model, NULL) : NULL;
        }
        if (a && b && strcmp(a, b))
            ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                     "base_model_config: a config.json from a directory other than base_model is not implemented "
                     "(found \"%s\", base_model is \"%s\")",
                     a, b);
        free(a);
        free(b);
    }
    if (pair(L, "warmup_steps") && pair(L, "warmup_ratio") && !fe_y_is_null(pair(L, "warmup_steps")->v) &&
        !fe_y_is_null(pair(L, "warmup_ratio")->v))
        ax_error(y->d, fe_yloc(y, pair(L, "warmup_ratio")->k, loc, sizeof loc),
                 "warmup_ratio: expected only one of warmup_steps and warmup_ratio, found both");
    if (c->nunfrozen && c->adapter != FE_ADAPTER_NONE)
        ax_error(y->d, fe_yloc(y, pair(L, "unfrozen_parameters")->k, loc, sizeof loc),
                 "unfrozen_parameters: with adapter: %s, Axolotl matches the patterns against PEFT's wrapped names; "
                 "axo implements it for a full fine-tune only", c->adapter == FE_ADAPTER_LORA ? "lora" : "qlora");
    if (c->ntest_datasets > 0 && c->val_set_size > 0)
        ax_error(y->d, fe_yloc(y, pair(L, "val_set_size")->k, loc, sizeof loc),
                 "val_set_size: expected 0 with test_datasets (Axolotl: a non-zero val_set_size should not be used with "
                 "test_datasets), found %g", c->val_set_size);
    if (c->val_set_size > 9007199254740992.0) /* 2^53: a row count the runtime holds exactly */
        ax_error(y->d, fe_yloc(y, pair(L, "val_set_size")->v, loc, sizeof loc),
                 "val_set_size: expected at most 2^53 rows, found %.17g", c->val_set_size);
    if (c->neftune_noise_alpha > 3.4e38) { /* the noise's scale is an f32 */
        const char *key = pair(L, "neftune_noise_alpha") ? "neftune_noise_alpha" : "noisy_embedding_alpha";
        ax_error(y->d, fe_yloc(y, pair(L, key) ? pair(L, key)->v : NULL, loc, sizeof loc),
                 "%s: expected at most 3.4e38 (the noise scale is an f32), found %.17g", key, c->neftune_noise_alpha);
    }
    if (c->num_epochs > 1e6) /* the step count, epochs x steps per epoch, stays an exact int64 */
        ax_error(y->d, fe_yloc(y, pair(L, "num_epochs")->v, loc, sizeof loc),
                 "num_epochs: expected at most 1000000, found %.17g", c->num_epochs);
    if (c->val_set_size >= 1 && c->val_set_size != floor(c->val_set_size))
        ax_error(y->d, fe_yloc(y, pair(L, "val_set_size")->v, loc, sizeof loc),
                 "val_set_size: expected a fraction in [0, 1) or a whole number of rows, found %.17g", c->val_set_size);
    if (!pair(L, "eval_batch_size") || fe_y_is_null(pair(L, "eval_batch_size")->v)) c->eval_batch_size = c->micro_batch_size;
    /* Axolotl sets an unset eval_sample_packing to sample_packing, and packs
     * the eval rows only when sample_packing is on and it is not false */
    if (!pair(L, "eval_sample_packing") || fe_y_is_null(pair(L, "eval_sample_packing")->v))
        c->eval_sample_packing = c->sample_packing;
    c->eval_sample_packing = c->sample_packing && c->eval_sample_packing;
    /* Axolotl asks HF for dataloader_drop_last when sample_packing packs and eval_sample_packing is false; it
     * applies to the loaders of unpacked rows only (a packed loader takes Axolotl's batch sampler instead) */
    if (!pair(L, "dataloader_drop_last") || fe_y_is_null(pair(L, "dataloader_drop_last")->v))
        c->dataloader_drop_last = c->sample_packing && !c->eval_sample_packing;
    else
        c->dataloader_drop_last_cfg = c->dataloader_drop_last;
    /* How Axolotl batches packed rows follows its attention backend (its attn_supports_packing): where the kernel
     * takes packed sequences, a micro-batch is one bin of micro_batch_size x sequence_len tokens; where it does
     * not (sdpa, eager, none set), multipack_real_batches: micro_batch_size bins of sequence_len. */
    const fe_ypair *ai = pair(L, "attn_implementation"); /* null or empty: unset, as Axolotl reads it */
    for (size_t i = 0; ai && !fe_y_is_null(ai->v) && fe_y_text(ai->v) && *fe_y_text(ai->v) && i < AX_ARRAY_LEN(attn_legacy_flags); i++) {
        const fe_ypair *f = pair(L, attn_legacy_flags[i][0]);
        int b;
        if (f && fe_y_text(f->v) && fe_parse_bool(fe_y_text(f->v), &b) && b) /* Axolotl's own refusal */
            ax_error(y->d, fe_yloc(y, f->k, loc, sizeof loc),
                     "%s: expected only one of attn_implementation and the legacy attention flags (Axolotl refuses "
                     "both; the flags are deprecated), found both set", attn_legacy_flags[i][0]);
    }
    c->attn_packs = attn_packs(L, &c->attn_flex, &c->attn_impl);
    if (c->sample_packing && (!pair(L, "multipack_real_batches") || fe_y_is_null(pair(L, "multipack_real_batches")->v)))
        c->multipack_real_batches = !c->attn_packs;
    if (c->sequence_parallel_degree > 1 && !c->ring_attn_func)
        c->ring_attn_func = c->sample_packing ? "varlen_llama3" : "batch_ring";
    if ((p = pair(L, "ring_attn_func")) && c->ring_attn_func && c->sequence_parallel_degree > 1 &&
        c->sample_packing && strcmp(c->ring_attn_func, "varlen_llama3"))
        ax_error(y->d, fe_yloc(y, p->v, loc, sizeof loc),
                 "ring_attn_func: expected varlen_llama3 with sample_packing: true, found \"%s\"", c->ring_attn_func);
    if (c->fsdp.enabled && c->fsdp.activation_checkpointing && c->gradient_checkpointing)
        ax_error(y->d, fe_yloc(y, pair(L, "gradient_checkpointing")->k, loc, sizeof loc),
                 "gradient_checkpointing: expected only one of gradient_checkpointing and "
                 "fsdp_config.activation_checkpointing, found both set");
    check_collator(L);
    check_ddp_bucket(L);
    check_remote_code(L);
    check_best_model(L);
    check_schedule(L);
    check_rl(L);
    if (c->save_steps > 0 && c->saves_per_epoch > 0)
        ax_error(y->d, fe_yloc(y, pair(L, "saves_per_epoch")->k, loc, sizeof loc),
                 "saves_per_epoch: expected only one of save_steps and saves_per_epoch, found both");
    if (c->optimizer_8bit && c->ds.optimizer_section) {
        ax_warn(y->d, fe_yloc(y, pair(L, "optimizer")->v, loc, sizeof loc),
                "optimizer: %s is replaced by the DeepSpeed config's own \"optimizer\" section (AdamW with f32 state), "
                "as HF Trainer does; drop that section to keep the 8-bit state",
                c->optimizer);
        c->optimizer_8bit = 0;
    }
    check_peft_layers(L);
    /* Axolotl shards only with both keys (its _apply_dataset_sharding); HF datasets refuses an index past them */
    if ((c->dataset_shard_num > 0) != (c->dataset_shard_idx >= 0)) {
        const char *k = c->dataset_shard_num > 0 ? "dataset_shard_num" : "dataset_shard_idx";
        ax_warn(y->d, fe_yloc(y, pair(L, k)->k, loc, sizeof loc),
                "%s: ignored without %s, as Axolotl ignores it (it shards only with both)", k,
                c->dataset_shard_num > 0 ? "dataset_shard_idx" : "dataset_shard_num");
        c->dataset_shard_num = c->dataset_shard_idx = -1;
    } else if (c->dataset_shard_num > 0 && c->dataset_shard_idx >= c->dataset_shard_num) {
        ax_error(y->d, fe_yloc(y, pair(L, "dataset_shard_idx")->v, loc, sizeof loc),
                 "dataset_shard_idx: expected an index below dataset_shard_num %lld, found %lld",
                 (long long)c->dataset_shard_num, (long long)c->dataset_shard_idx);
    }
    /* eval_sequence_len: Axolotl drops (or truncates) test_datasets' samples at it instead of sequence_len; axo's
     * eval_step has rows of sequence_len, so a longer eval length cannot be honoured */
    if (c->eval_sequence_len > 0 && c->ntest_datasets > 0 && c->eval_sequence_len > c->sequence_len)
        ax_error(y->d, fe_yloc(y, pair(L, "eval_sequence_len")->v, loc, sizeof loc),
                 "eval_sequence_len: %lld is longer than sequence_len %lld; axo evaluates rows of sequence_len tokens, "
                 "so test samples that long cannot be evaluated whole: give at most %lld",
                 (long long)c->eval_sequence_len, (long long)c->sequence_len, (long long)c->sequence_len);
    if (c->lr_groups_set && c->nlr_groups && c->loraplus_lr_ratio > 0)
        ax_error(y->d, fe_yloc(y, pair(L, "lr_groups")->k, loc, sizeof loc),
                 "lr_groups and loraplus_lr_ratio cannot be used together (Axolotl's check)");
    if ((c->lr_groups_set || !isnan(c->embedding_lr) || !isnan(c->embedding_lr_scale)) && c->loraplus_lr_ratio > 0) {
        /* Axolotl hands LoRA+ the optimizer (PEFT's create_loraplus_optimizer) and makes none of its own groups */
        const char *k = !isnan(c->embedding_lr) ? "embedding_lr" : "embedding_lr_scale";
        if (!isnan(c->embedding_lr) || !isnan(c->embedding_lr_scale))
            ax_warn(y->d, fe_yloc(y, pair(L, k)->k, loc, sizeof loc),
                    "%s: ignored, as Axolotl ignores it, with loraplus_lr_ratio (LoRA+ makes the groups)", k);
        c->embedding_lr = c->embedding_lr_scale = NAN;
        c->lr_groups_set = 0, c->nlr_groups = 0;
    }
    if ((c->lr_groups_set || !isnan(c->embedding_lr) || !isnan(c->embedding_lr_scale)) && c->ds.optimizer_section) {
        const char *k = c->lr_groups_set ? "lr_groups" : !isnan(c->embedding_lr) ? "embedding_lr" : "embedding_lr_scale";
        ax_warn(y->d, fe_yloc(y, pair(L, k)->k, loc, sizeof loc),
                "%s: ignored, as HF Trainer ignores it, with the DeepSpeed config's own \"optimizer\" section (one "
                "learning rate for every parameter); drop that section for Axolotl's optimizer groups",
                k);
        c->embedding_lr = c->embedding_lr_scale = NAN;
        c->lr_groups_set = 0, c->nlr_groups = 0;
    }
    if (c->loraplus_lr_ratio > 0 && c->ds.optimizer_section) {
        /* HF Trainer hands DeepSpeed's own optimizer every trainable param
         * in one group (accelerate's DummyOptim) and never calls Axolotl's
         * create_optimizer, so LoRA+'s groups are not made */
        ax_warn(y->d, fe_yloc(y, pair(L, "loraplus_lr_ratio")->k, loc, sizeof loc),
                "loraplus_lr_ratio: ignored, as HF Trainer ignores it, with the DeepSpeed config's own \"optimizer\" "
                "section (one learning rate for every parameter); drop that section for LoRA+");
        c->loraplus_lr_ratio = 0;
    }
    if (c->bf16_pure && c->ds.present) {
        ax_warn(y->d, fe_yloc(y, pair(L, "bfloat16")->k, loc, sizeof loc),
                "bfloat16: true with DeepSpeed: its optimizer keeps f32 master weights and f32 Adam moments of the "
                "bf16 model, and so does axo (16 bytes per parameter); the pure bf16 state (8 bytes, no master "
                "copy) applies without deepspeed");
        c->bf16_pure = 0;
    }
    if (c->ds.present && c->fsdp.enabled) {
        p = pair(L, "fsdp_config") ? pair(L, "fsdp_config") : pair(L, "fsdp");
        ax_error(y->d, fe_yloc(y, p ? p->k : NULL, loc, sizeof loc),
                 "deepspeed and fsdp: expected one of DeepSpeed or FSDP, found both (deepspeed: %s)", c->ds.path);
    }
}

static void report_yaml_problem(const fe_yctx *y, const yaml_parser_t *ps) {
    char loc[512];
    const yaml_mark_t *m = &ps->problem_mark;
    ax_error(y->d, ax_loc(loc, sizeof loc, y->file, (int)m->line + 1, (int)m->column + 1), "invalid YAML: %s%s%s",
             ps->problem ? ps->problem : "parse error", ps->context ? " " : "", ps->context ? ps->context : "");
}

int fe_config_load(const char *yaml_path, const char *deepspeed_override, fe_config *out, ax_arena *arena,
                   ax_diag *d) {
    int errors0 = d->nerrors;
    set_defaults(out);
    out->path = ax_arena_strdup(arena, yaml_path);
    size_t len = 0;
    char *text = ax_read_file(yaml_path, &len, d);
    if (!text) return -1;
    yaml_parser_t ps;
    yaml_document_t doc, doc2;
    loader L = {.y = {.file = out->path, .doc = &doc, .ar = arena, .d = d}, .c = out};
    L.ydir = yaml_dir(arena, yaml_path);
    yaml_parser_initialize(&ps);
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    if (!yaml_parser_load(&ps, &doc)) {
        report_yaml_problem(&L.y, &ps);
        yaml_parser_delete(&ps);
        free(text);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    char loc[512], found[128];
    if (!root) {
        ax_error(d, out->path, "expected a mapping of settings, found an empty file");
        goto done;
    }
    /* A second document would be silently ignored by a single load. */
    if (!yaml_parser_load(&ps, &doc2)) {
        report_yaml_problem(&L.y, &ps);
        goto done;
    }
    if (yaml_document_get_root_node(&doc2)) {
        ax_error(d, fe_yloc(&L.y, yaml_document_get_root_node(&doc2), loc, sizeof loc),
                 "expected a single YAML document, found a second one");
    }
    yaml_document_delete(&doc2);
    if (root->type != YAML_MAPPING_NODE) {
        ax_error(d, fe_yloc(&L.y, root, loc, sizeof loc), "expected a mapping of settings at the top level, found %s",
                 fe_yfound(root, found, sizeof found));
        goto done;
    }
    L.npairs = fe_y_pairs(&L.y, root, "", &L.pairs);
    for (int i = 0; i < L.npairs; i++) {
        const char *k = L.pairs[i].key;
        if (!strcmp(k, "micro_batch_size")) L.set.micro_batch_size = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "gradient_accumulation_steps")) L.set.gradient_accumulation_steps = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "max_grad_norm")) L.set.max_grad_norm = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "learning_rate")) L.set.learning_rate = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "weight_decay")) L.set.weight_decay = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "adam_beta1")) L.set.adam_beta1 = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "adam_beta2")) L.set.adam_beta2 = !fe_y_is_null(L.pairs[i].v);
        if (!strcmp(k, "adam_epsilon")) L.set.adam_epsilon = !fe_y_is_null(L.pairs[i].v);
        apply_pair(&L, &L.pairs[i]);
    }
    apply_batch_size(&L);
    apply_neftune(&L);
    fe_fsdp_parse(&L.y, &L.fsdp, &out->fsdp);
    if (out->bf16_pure) { /* bf16 weights whatever bf16 (AMP) says; a DeepSpeed bf16.enabled must agree */
        out->bf16 = 1;
        L.set.bf16 = 1;
    }
    load_deepspeed(&L, deepspeed_override);
    check_whole(&L);
done:
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    free(text);
    return d->nerrors > errors0 ? -1 : 0;
}

/* ---- canonical text -------------------------------------------------------------- */
typedef struct lines {
    char **v;
    int n, cap;
} lines;

static void addl(lines *L, const char *fmt, ...) AX_PRINTF(2, 3);
static void addl(lines *L, const char *fmt, ...) {
    if (L->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 128;
        L->v = realloc(L->v, sizeof *L->v * (size_t)L->cap);
        if (!L->v) abort();
    }
    ax_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ax_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    L->v[L->n++] = ax_buf_steal(&b);
}

/* Strings are escaped so a value can never break the one-line format. */
static const char *esc(ax_buf *tmp, const char *s) {
    tmp->len = 0;
    ax_buf_puts(tmp, "");
    if (!s) return "";
    for (; *s; s++) {
        if (*s == '\\')
            ax_buf_puts(tmp, "\\\\");
        else if (*s == '\n')
            ax_buf_puts(tmp, "\\n");
        else if ((unsigned char)*s < 0x20)
            ax_buf_printf(tmp, "\\x%02x", (unsigned char)*s);
        else
            ax_buf_append(tmp, s, 1);
    }
    return tmp->data;
}

static double z(double x) { return x == 0 ? 0.0 : x; } /* -0 prints as 0 */

/* Orders "key=value" lines by key ('=' sorts before every key character). */
static int cmp_line(const void *a, const void *b) {
    const unsigned char *x = *(const unsigned char *const *)a, *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        int cx = *x == '=' ? 0 : *x, cy = *y == '=' ? 0 : *y;
        if (cx != cy) return cx - cy;
        if (!cx) return strcmp((const char *)x + 1, (const char *)y + 1);
    }
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void fe_config_canonical(const fe_config *c, ax_buf *out) {

    static const char *adapter[] = {"none", "lora", "qlora"};
    static const char *offload[] = {"none", "cpu"};
    static const char *sd[] = {"FULL_STATE_DICT", "SHARDED_STATE_DICT"};
    lines L = {0};
    ax_buf t = {0};
#define I(k, v) addl(&L, "%s=%lld", k, (long long)(v))
#define D(k, v) addl(&L, "%s=%.17g", k, z(v))
#define S(k, v) addl(&L, "%s=%s", k, esc(&t, v))
    S("base_model", c->base_model);
    const struct {
        const char *name;
        const fe_dataset *ds;
        int n;
    } lists[] = {{"datasets", c->datasets, c->ndatasets}, {"test_datasets", c->test_datasets, c->ntest_datasets}};
    for (size_t li = 0; li < AX_ARRAY_LEN(lists); li++) {
        char k[48];
        snprintf(k, sizeof k, "%s.count", lists[li].name);
        if (li == 0 || lists[li].n) I(k, lists[li].n);
        for (int i = 0; i < lists[li].n; i++) {
            const fe_dataset *ds = &lists[li].ds[i];
            snprintf(k, sizeof k, "%s.%04d.path", lists[li].name, i);
            S(k, ds->path);
            snprintf(k, sizeof k, "%s.%04d.type", lists[li].name, i);
            if (ds->formatted) { /* the resolved format, so the cache key covers every setting */
                char *js = rt_ds_spec_json(&ds->spec);
                S(k, js);
                free(js);
            } else {
                S(k, "");
            }
            if (ds->continues) { /* one Axolotl dataset of several files (absent otherwise: older cache keys) */
                snprintf(k, sizeof k, "%s.%04d.continues", lists[li].name, i);
                I(k, 1);
            }
            if (ds->loader == FE_LOADER_PARQUET) { /* what the file is read as, and the rows of the split: both in the
                                                    * plan (absent when JSON / whole: older cache keys) */
                snprintf(k, sizeof k, "%s.%04d.parquet", lists[li].name, i);
                I(k, 1);
            } else if (ds->loader != FE_LOADER_JSON) {
                snprintf(k, sizeof k, "%s.%04d.loader", lists[li].name, i);
                S(k, fe_loader_names[ds->loader]);
            }
            if (ds->slice) {
                snprintf(k, sizeof k, "%s.%04d.slice", lists[li].name, i);
                S(k, ds->slice);
            }
            if (ds->shards > 0) {
                snprintf(k, sizeof k, "%s.%04d.shards", lists[li].name, i);
                I(k, ds->shards);
                snprintf(k, sizeof k, "%s.%04d.shards_idx", lists[li].name, i);
                I(k, ds->shards_idx);
            }
        }
    }
    if (c->tok.path) { /* with the tokens added to it (tokens, special_tokens, added_tokens_overrides) */
        char *js = rt_tok_setup_json(&c->tok);
        S("tokenizer", js);
        free(js);
    }
    /* absent when off: older plans keep their cache keys */
    if (c->model_config) S("model_config", c->model_config);
    if (c->save_strategy) I("save_strategy", c->save_strategy);
    if (c->peft_init_lora_weights) I("peft_init_lora_weights", c->peft_init_lora_weights);
    if (c->eval_strategy) I("eval_strategy", c->eval_strategy);
    if (c->nunfrozen) { /* in order: a list of patterns */
        ax_buf j = {0};
        ax_buf_puts(&j, "");
        for (int i = 0; i < c->nunfrozen; i++) ax_buf_printf(&j, "%s%s", i ? "\x1f" : "", c->unfrozen[i]);
        S("unfrozen_parameters", j.data);
        ax_buf_free(&j);
    }
    if (c->resize_32x) I("resize_token_embeddings_to_32x", c->resize_32x);
    if (c->mean_resizing) I("mean_resizing_embeddings", c->mean_resizing);
    if (c->shrink_embeddings) I("shrink_embeddings", c->shrink_embeddings);
    S("output_dir", c->output_dir);
    I("sequence_len", c->sequence_len);
    I("sample_packing", c->sample_packing);
    if (c->dataset_prepared_path) S("dataset_prepared_path", c->dataset_prepared_path);
    if (c->excess_length) I("excess_length_strategy", c->excess_length); /* absent for drop: older plans keep their keys */
    I("pad_to_sequence_len", c->pad_to_sequence_len > 0); /* 0 for unset too: older plans keep their cache keys */
    if (c->neftune_noise_alpha > 0) I("neftune_pad_multiple", fe_neftune_multiple(c));
    if (c->neftune_noise_alpha > 0 && c->batch_flattening) I("neftune_flatten", 1);
    I("micro_batch_size", c->micro_batch_size);
    I("eval_batch_size", c->eval_batch_size);
    if (!c->shuffle_merged_datasets) I("shuffle_merged_datasets", 0); /* absent when true: older plans keep their keys */
    if (c->dataset_exact_deduplication) I("dataset_exact_deduplication", 1);
    if (c->shuffle_before_merging && (c->ndatasets > 1 || c->ntest_datasets > 1)) I("shuffle_before_merging_datasets", 1);
    if (c->curriculum_sampling) I("curriculum_sampling", 1);
    if (c->sample_packing_sequentially) I("sample_packing_sequentially", 1);
    if (c->multipack_real_batches) I("multipack_real_batches", 1);
    /* packed, whether the attention reads packed sequences decides the step count too (frontend/lower.c) */
    if (c->sample_packing && !c->multipack_real_batches && !c->attn_packs) I("attn_packs", 0);
    if (c->reinit_weights) I("reinit_weights", 1);
    if (c->group_by_length) I("group_by_length", 1);
    if (c->fix_untrained) {
        ax_buf j = {0};
        ax_buf_puts(&j, "");
        for (int i = 0; i < c->nfix_untrained_ids; i++) ax_buf_printf(&j, "%s%lld", i ? "," : "", (long long)c->fix_untrained_ids[i]);
        S("fix_untrained_tokens", c->nfix_untrained_ids ? j.data : "true");
        ax_buf_free(&j);
    }
    if (c->sample_packing && c->sample_packing_eff_est > 0) D("sample_packing_eff_est", c->sample_packing_eff_est);
    if (c->sample_packing && c->sample_packing_eff_est > 0 && c->total_num_tokens > 0) I("total_num_tokens", c->total_num_tokens);
    if (c->sample_packing_group_size > 0 && c->sample_packing_group_size != 100000)
        I("sample_packing_group_size", c->sample_packing_group_size);
    if (c->sample_packing_bin_size > 0 && c->sample_packing_bin_size != 200)
        I("sample_packing_bin_size", c->sample_packing_bin_size);
    if (c->dataloader_drop_last) I("dataloader_drop_last", c->dataloader_drop_last_cfg ? 2 : 1); /* 2: the config's */
    if (c->min_sample_len > 0 && c->min_sample_len != 2) I("min_sample_len", c->min_sample_len); /* 0: Axolotl's `or 2` */
    if (c->eval_sequence_len > 0 && c->ntest_datasets > 0) I("eval_sequence_len", c->eval_sequence_len);
    if (c->dataset_shard_num > 0 && c->dataset_shard_idx >= 0) {
        I("dataset_shard_num", c->dataset_shard_num);
        I("dataset_shard_idx", c->dataset_shard_idx);
    }
    I("eval_sample_packing", c->eval_sample_packing);
    I("gradient_accumulation_steps", c->gradient_accumulation_steps);
    D("num_epochs", c->num_epochs); /* %.17g: a whole number prints as before, e.g. num_epochs=1 */
    I("max_steps", c->max_steps);
    D("val_set_size", c->val_set_size);
    D("learning_rate", c->learning_rate);
    S("lr_scheduler", fe_sched_names[c->lr_scheduler]);
    D("lr_scheduler_kwargs.num_cycles", c->sched_num_cycles);
    D("lr_scheduler_kwargs.power", c->sched_power);
    D("lr_scheduler_kwargs.lr_end", c->sched_lr_end);
    D("lr_scheduler_kwargs.timescale", c->sched_timescale);
    D("lr_scheduler_kwargs.min_lr", c->sched_min_lr);
    D("lr_scheduler_kwargs.min_lr_rate", c->sched_min_lr_rate);
    /* the later schedules' arguments only when given: older plans keep their cache keys */
    if (!isnan(c->sched_warmup_lr_rate)) D("lr_scheduler_kwargs.warmup_lr_rate", c->sched_warmup_lr_rate);
    if (!isnan(c->sched_num_decay_steps)) D("lr_scheduler_kwargs.num_decay_steps", c->sched_num_decay_steps);
    if (!isnan(c->sched_num_stable_steps)) D("lr_scheduler_kwargs.num_stable_steps", c->sched_num_stable_steps);
    if (!isnan(c->sched_min_lr_ratio)) D("lr_scheduler_kwargs.min_lr_ratio", c->sched_min_lr_ratio);
    if (c->sched_warmup_type) S("lr_scheduler_kwargs.warmup_type", c->sched_warmup_type);
    if (c->sched_decay_type) S("lr_scheduler_kwargs.decay_type", c->sched_decay_type);
    const struct { const char *k; double v; } pk[] = {{"factor", c->sched_factor}, {"patience", c->sched_patience},
                                                       {"threshold", c->sched_threshold}, {"cooldown", c->sched_cooldown},
                                                       {"eps", c->sched_eps}};
    for (size_t i = 0; i < AX_ARRAY_LEN(pk); i++)
        if (!isnan(pk[i].v)) {
            char k[64];
            snprintf(k, sizeof k, "lr_scheduler_kwargs.%s", pk[i].k);
            D(k, pk[i].v);
        }
    if (c->sched_mode) S("lr_scheduler_kwargs.mode", c->sched_mode);
    if (c->sched_threshold_mode) S("lr_scheduler_kwargs.threshold_mode", c->sched_threshold_mode);
    const struct { const char *k; double v; } gk[] = {{"warmup", c->sched_greedy_warmup}, {"max_lr", c->sched_max_lr},
                                                       {"window_size", c->sched_window},
                                                       {"reset_start", c->sched_reset_start}};
    for (size_t i = 0; i < AX_ARRAY_LEN(gk); i++) /* greedy's, only when given: other plans keep their cache keys */
        if (!isnan(gk[i].v)) {
            char k[64];
            snprintf(k, sizeof k, "lr_scheduler_kwargs.%s", gk[i].k);
            D(k, gk[i].v);
        }
    if (c->sched_smooth >= 0) I("lr_scheduler_kwargs.smooth", c->sched_smooth);
    if (c->lr_scheduler == FE_SCHED_ONE_CYCLE) { /* OneCycleLR's arguments as lower.c writes them */
        const struct { const char *k; double v, dflt; } ok[] = {
            {"pct_start", c->oc_pct_start, NAN},           {"div_factor", c->oc_div_factor, 25.0},
            {"final_div_factor", c->oc_final_div_factor, 1e4}, {"base_momentum", c->oc_base_momentum, 0.85},
            {"max_momentum", c->oc_max_momentum, 0.95}};
        for (size_t i = 0; i < AX_ARRAY_LEN(ok); i++) {
            char k[64];
            snprintf(k, sizeof k, "lr_scheduler_kwargs.%s", ok[i].k);
            D(k, isnan(ok[i].v) ? ok[i].dflt : ok[i].v);
        }
        S("lr_scheduler_kwargs.anneal_strategy", c->oc_anneal ? c->oc_anneal : "cos");
        I("lr_scheduler_kwargs.three_phase", c->oc_three_phase > 0);
        I("lr_scheduler_kwargs.cycle_momentum", c->oc_cycle_momentum != 0);
    }
    D("cosine_min_lr_ratio", c->cosine_min_lr_ratio);
    D("cosine_constant_lr_ratio", c->cosine_constant_lr_ratio);
    I("lr_quadratic_warmup", c->lr_quadratic_warmup);
    if (c->warmup_steps >= 0) I("warmup_steps", c->warmup_steps);
    if (!isnan(c->warmup_ratio)) D("warmup_ratio", c->warmup_ratio);
    D("weight_decay", c->weight_decay);
    /* absent when off: older plans keep their cache keys */
    if (c->neftune_noise_alpha > 0) D("neftune_noise_alpha", c->neftune_noise_alpha);
    if (c->rl == FE_RL_DPO) {
        S("rl", "dpo");
        D("rl_beta", c->rl_beta);
        S("dpo_loss_type", c->dpo_loss_types);
        if (c->dpo_loss_weights) S("dpo_loss_weights", c->dpo_loss_weights);
        if (c->dpo_label_smoothing != 0) D("dpo_label_smoothing", c->dpo_label_smoothing);
        if (c->rl_kind == FE_RL_SIMPO) S("rl_trainer", "cpo"), D("simpo_gamma", c->simpo_gamma), D("cpo_alpha", c->cpo_alpha);
        if (c->dpo_sft_weight != 0) D("dpo_sft_weight", c->dpo_sft_weight);
        if (c->rl_kind == FE_RL_ORPO) S("rl_trainer", "orpo");
    }
    S("optimizer", c->optimizer_8bit ? (!strcmp(c->optimizer, "adamw_torch_8bit") ? "adamw_torch_8bit" : "adamw_8bit")
                                     : "adamw"); /* adamw_torch, _fused, _hf, paged_adamw_32bit are one
                                                                * algorithm; adamw_bnb_8bit, adamw_8bit, paged_ another */
    D("adam_beta1", c->adam_beta1);
    D("adam_beta2", c->adam_beta2);
    D("adam_epsilon", c->adam_epsilon);
    D("max_grad_norm", c->max_grad_norm);
    I("bf16", c->bf16);
    I("bfloat16", c->bf16_pure);
    I("fp16", c->fp16);
    I("tf32", c->tf32);
    I("gradient_checkpointing", c->gradient_checkpointing);
    if (c->resume_from) S("resume_from_checkpoint", c->resume_from); /* absent when unset: older plans keep their keys */
    if (c->auto_resume) I("auto_resume_from_checkpoints", c->auto_resume);
    S("adapter", adapter[c->adapter]);
    if (c->adapter != FE_ADAPTER_NONE) {
        I("lora_r", c->lora_r);
        D("lora_alpha", c->lora_alpha);
        D("lora_dropout", c->lora_dropout);
        I("lora_target_linear", c->lora_target_linear);
        I("peft_use_rslora", c->peft_use_rslora);
        if (c->peft_use_dora) I("peft_use_dora", 1); /* absent when off: older plans keep their cache keys */
        S("lora_model_dir", c->lora_model_dir ? c->lora_model_dir : "");
        /* absent when unset: older plans keep their cache keys. As written
         * (an int or a list, a string or a list): the saved
         * adapter_config.json says it so */
        if (c->ntrainable_tokens) { /* absent when unset: older plans keep their cache keys */
            ax_buf j = {0};
            ax_buf_puts(&j, "[");
            for (int i = 0; i < c->ntrainable_tokens; i++)
                ax_buf_printf(&j, "%s%lld", i ? "," : "", (long long)c->trainable_tokens[i]);
            ax_buf_puts(&j, "]");
            S("peft_trainable_token_indices", j.data);
            ax_buf_free(&j);
        }
        if (c->npeft_layers) {
            ax_buf j = {0};
            ax_buf_puts(&j, c->peft_layers_int ? "" : "[");
            for (int i = 0; i < c->npeft_layers; i++) ax_buf_printf(&j, "%s%lld", i ? "," : "", (long long)c->peft_layers[i]);
            ax_buf_puts(&j, c->peft_layers_int ? "" : "]");
            S("peft_layers_to_transform", j.data);
            ax_buf_free(&j);
        }
        if (c->npeft_layers_pattern) {
            ax_buf j = {0};
            ax_buf_puts(&j, c->peft_layers_pattern_str ? "" : "[");
            for (int i = 0; i < c->npeft_layers_pattern; i++) ax_buf_printf(&j, "%s%s", i ? "," : "", c->peft_layers_pattern[i]);
            ax_buf_puts(&j, c->peft_layers_pattern_str ? "" : "]");
            S("peft_layers_pattern", j.data);
            ax_buf_free(&j);
        }
        /* Sets of module names: order does not matter. */
        for (int which = 0; which < 3; which++) {
            const char **src = which == 2 ? c->lora_target_parameters : which ? c->lora_modules_to_save : c->lora_target_modules;
            int n = which == 2 ? c->nlora_target_parameters : which ? c->nlora_modules_to_save : c->nlora_target_modules;
            const char **m = malloc(sizeof *m * (size_t)(n + 1));
            for (int i = 0; i < n; i++) m[i] = src[i];
            qsort(m, (size_t)n, sizeof *m, cmp_str);
            ax_buf j = {0};
            ax_buf_puts(&j, "");
            for (int i = 0; i < n; i++) {
                if (i && !strcmp(m[i], m[i - 1])) continue;
                if (j.len) ax_buf_puts(&j, ",");
                ax_buf_puts(&j, m[i]);
            }
            if (!which) {
                S("lora_target_modules", j.data);
                if (c->lora_target_regex) S("lora_target_regex", c->lora_target_regex);
            } else if (n) { /* absent when empty: older plans keep their cache keys */
                S(which == 2 ? "lora_target_parameters" : "lora_modules_to_save", j.data);
            }
            ax_buf_free(&j);
            free(m);
        }
    }
    /* absent when unset: older plans keep their cache keys (loraplus_lr_embedding
     * changes no plan: axo makes no LoRA embedding adapter) */
    if (c->loraplus_lr_ratio > 0) D("loraplus_lr_ratio", c->loraplus_lr_ratio);
    if (!isnan(c->embedding_lr)) D("embedding_lr", c->embedding_lr);
    if (!isnan(c->embedding_lr_scale)) D("embedding_lr_scale", c->embedding_lr_scale);
    if (c->lr_groups_set) { /* name:lr:module,module;... */
        ax_buf j = {0};
        for (int i = 0; i < c->nlr_groups; i++) {
            ax_buf_printf(&j, "%s%s:%.17g:", i ? ";" : "", c->lr_groups[i].name, c->lr_groups[i].lr);
            for (int k = 0; k < c->lr_groups[i].nmodules; k++) ax_buf_printf(&j, "%s%s", k ? "," : "", c->lr_groups[i].modules[k]);
        }
        ax_buf_puts(&j, "");
        S("lr_groups", j.data);
        ax_buf_free(&j);
    }
    I("load_in_4bit", c->load_in_4bit);
    I("load_in_8bit", c->load_in_8bit);
    if (c->quantize_moe_experts) I("quantize_moe_experts", 1); /* absent when unset: older plans keep their cache keys */
    I("sequence_parallel_degree", c->sequence_parallel_degree);
    if (c->sequence_parallel_degree > 1) {
        S("ring_attn_func", c->ring_attn_func);
        I("heads_k_stride", c->heads_k_stride);
    }
    I("liger_rope", c->liger_rope);
    I("liger_rms_norm", c->liger_rms_norm);
    I("liger_glu_activation", c->liger_glu_activation);
    I("liger_layer_norm", c->liger_layer_norm);
    I("liger_cross_entropy", c->liger_cross_entropy);
    I("liger_fused_linear_cross_entropy", c->liger_fused_linear_cross_entropy);
    I("save_steps", c->save_steps);
    if (c->saves_per_epoch) I("saves_per_epoch", c->saves_per_epoch);
    if (c->save_total_limit) I("save_total_limit", c->save_total_limit);
    if (c->logging_steps >= 1) I("logging_steps", c->logging_steps);
    I("eval_steps", c->eval_steps);
    if (c->eval_steps_ratio > 0) D("eval_steps_ratio", c->eval_steps_ratio);
    if (c->evals_per_epoch) I("evals_per_epoch", c->evals_per_epoch);
    addl(&L, "seed=%llu", (unsigned long long)c->seed);
    I("early_stopping_patience", c->early_stopping_patience);
    I("load_best", c->load_best);
    I("greater_is_better", c->greater_is_better);
    D("ddp_bucket_cap_mb", c->ddp_bucket_cap_mb);

    const fe_deepspeed *ds = &c->ds;
    I("deepspeed.enabled", ds->present);
    if (ds->present) {
        I("deepspeed.zero_stage", ds->zero_stage);
        S("deepspeed.offload_param", offload[ds->offload_param]);
        S("deepspeed.offload_optimizer", offload[ds->offload_optimizer]);
        I("deepspeed.offload_param_pin_memory", ds->offload_param_pin_memory);
        I("deepspeed.offload_optimizer_pin_memory", ds->offload_optimizer_pin_memory);
        I("deepspeed.bf16", ds->bf16);
        I("deepspeed.fp16", ds->fp16);
        D("deepspeed.gradient_clipping", ds->gradient_clipping);
        I("deepspeed.overlap_comm", ds->overlap_comm);
        I("deepspeed.contiguous_gradients", ds->contiguous_gradients);
        I("deepspeed.reduce_bucket_size", ds->reduce_bucket_size);
        I("deepspeed.stage3_prefetch_bucket_size", ds->stage3_prefetch_bucket_size);
        I("deepspeed.stage3_param_persistence_threshold", ds->stage3_param_persistence_threshold);
        I("deepspeed.stage3_max_live_parameters", ds->stage3_max_live_parameters);
        I("deepspeed.stage3_max_reuse_distance", ds->stage3_max_reuse_distance);
        I("deepspeed.stage3_gather_16bit_weights_on_model_save", ds->stage3_gather_16bit_weights_on_model_save);
        I("deepspeed.sub_group_size", ds->sub_group_size);
        I("deepspeed.torch_compile", ds->torch_compile);
        I("deepspeed.train_batch_size", ds->train_batch_size);
        I("deepspeed.wall_clock_breakdown", ds->wall_clock_breakdown);
    }
    const fe_fsdp *f = &c->fsdp;
    I("fsdp.enabled", f->enabled);
    if (f->enabled) {
        I("fsdp.offload_params", f->offload_params);
        I("fsdp.cpu_ram_efficient_loading", f->cpu_ram_efficient_loading);
        S("fsdp.auto_wrap_policy", f->auto_wrap_policy);
        if (f->auto_wrap_policy && !strcmp(f->auto_wrap_policy, "SIZE_BASED_WRAP"))
            I("fsdp.min_num_params", f->min_num_params);
        else
            S("fsdp.transformer_layer_cls_to_wrap", f->transformer_layer_cls_to_wrap);
        S("fsdp.state_dict_type", sd[f->state_dict_type]);
        I("fsdp.reshard_after_forward", f->reshard_after_forward);
        I("fsdp.activation_checkpointing", f->activation_checkpointing);
    }
#undef I
#undef D
#undef S
    qsort(L.v, (size_t)L.n, sizeof *L.v, cmp_line);
    for (int i = 0; i < L.n; i++) {
        ax_buf_puts(out, L.v[i]);
        ax_buf_puts(out, "\n");
        free(L.v[i]);
    }
    free(L.v);
    ax_buf_free(&t);
}
