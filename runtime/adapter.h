/* adapter.h — PEFT LoRA adapter directories (what a LoRA/QLoRA run writes).
 *
 * rt_merge_lora folds an adapter into its base model, as PEFT's
 * merge_and_unload / `axolotl merge_lora` do, and writes a plain HF model
 * dir (model.safetensors + the base's config.json) that needs no adapter
 * code to load: for every adapted linear layer
 *     W' = W + s * B A,   s = lora_alpha / r  (lora_alpha / sqrt(r) with use_rslora)
 * computed in double from the stored values and rounded once to W's dtype;
 * every other tensor is copied unchanged (same dtype, same bytes). For a
 * QLoRA adapter the base is the model's original (unquantized) weights, as
 * Axolotl merges QLoRA adapters into the bf16 model.
 */
#ifndef RT_ADAPTER_H
#define RT_ADAPTER_H

#include "ir/base.h"

/* adapter_dir: adapter_model.safetensors + adapter_config.json. base_dir:
 * the HF model dir (NULL: adapter_config.json's base_model_name_or_path).
 * Every adapter tensor must find its base weight with matching shapes;
 * out_dir is published atomically and never replaced unless overwrite.
 * *merged (may be NULL): how many layers were merged. */
int rt_merge_lora(const char *adapter_dir, const char *base_dir, const char *out_dir, int overwrite, int *merged,
                  ax_diag *d);

#endif
