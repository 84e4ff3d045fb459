/* adapter.h — PEFT LoRA adapter directories (what a LoRA/QLoRA run writes).
 *
 * rt_merge_lora folds an adapter into its base model, as PEFT's
 * merge_and_unload / `axolotl merge_lora` do, and writes a plain HF model
 * dir (model.safetensors + the base's config.json) that needs no adapter
 * code to load: for every adapted linear layer
 *     W' = W + s * B A,   s = lora_alpha / r  (lora_alpha / sqrt(r) with use_rslora)
 * and for a DoRA adapter (use_dora, PEFT's merge of lora_magnitude_vector m)
 *     W' = (m / ||W + s B A||_row) * (W + s B A), row by row,
 * computed in double from the stored values, rounded to f32, then to W's
 * dtype (bf16/f16: W itself is exact in f32, so the f32 step is the only
 * one that can differ from a single rounding, by at most one bf16 ulp);
 * every other tensor is copied unchanged (same dtype, same bytes), and so
 * are the base's config.json, generation_config.json and tokenizer files. For a
 * QLoRA adapter the base is the model's original (unquantized) weights, as
 * Axolotl merges QLoRA adapters into the bf16 model.
 */
#ifndef RT_ADAPTER_H
#define RT_ADAPTER_H

#include "ir/base.h"

/* What adapter_config.json says (the fields axo uses). */
typedef struct rt_adapter_cfg {
    int64_t r;
    double alpha, scale; /* scale: alpha / r, or alpha / sqrt(r) with rsLoRA */
    int rslora;
    int dora;            /* use_dora: a lora_magnitude_vector per adapted layer */
    char base[4096];     /* base_model_name_or_path ("" if absent) */
    char revision[256];  /* its Hub revision ("" if absent or null) */
    int gate_up_fused;   /* rank_pattern / alpha_pattern double r and alpha of the experts' gate_up_proj (PEFT's MoE
                          * conversion of gate_proj + up_proj), the only per-module pattern axo reads */
    int target_params;   /* target_parameters names MoE routers' / experts' weights (PEFT's ParamWrapper) */
    int tp_gate_up, tp_down; /* ... among them the experts' gate_up_proj, down_proj */
} rt_adapter_cfg;

/* the key PEFT's MoE conversion gives rank_pattern and alpha_pattern for the experts' fused gate_up_proj */
#define RT_GATE_UP_PATTERN ".*\\.gate_up_proj"

/* A multimodal checkpoint's tensor name as PEFT and transformers name the parameter (its module's): the Hub's
 * language_model.model.* (an untied head language_model.lm_head.*), vision_tower.* (Gemma's SigLIP
 * vision_tower.vision_model.*) and multi_modal_projector.* become model.language_model.*, lm_head.*,
 * model.vision_tower.* and model.multi_modal_projector.* (transformers' llava conversion, Gemma 3's and Mistral
 * 3's); any other name (transformers 5's own layout) is already the module's. Into out (cap bytes); returns out. */
const char *rt_adapter_module_name(const char *key, char *out, size_t cap);

/* Reads DIR/adapter_config.json: a LORA adapter with one r and lora_alpha
 * or a DoRA one (use_dora); per-module rank/alpha patterns are refused,
 * naming the file. */
int rt_adapter_config_read(const char *dir, rt_adapter_cfg *c, ax_diag *d);

/* adapter_config.json's trainable_token_indices: a list, or a mapping whose
 * one key names the input embedding (embed_tokens). Returns the count and a
 * malloc'd array, or -1 after an error naming the file. */
int rt_adapter_token_indices(const char *adapter_dir, int64_t **out, ax_diag *d);

/* adapter_dir: adapter_model.safetensors + adapter_config.json. base_dir:
 * the HF model dir (NULL: adapter_config.json's base_model_name_or_path).
 * Every adapter tensor must find its base weight with matching shapes;
 * out_dir is published atomically and never replaced unless overwrite.
 * *merged (may be NULL): how many layers were merged. */
int rt_merge_lora(const char *adapter_dir, const char *base_dir, const char *out_dir, int overwrite, int *merged,
                  ax_diag *d);

#endif
