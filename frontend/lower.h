/* lower.h — model description + config -> IR module (forward graph).
 *
 * fe_lower builds: the mesh (dp = world_size / sp, sp), module attributes
 * the runtime needs (model shape, training schedule, I/O paths), one global
 * per HF parameter (role param, attrs hf=<HF name>, init=<normal|ones|zeros>,
 * trainable, decay), and the `micro_step` program holding the forward graph
 * of one micro-batch ending in the summed token cross-entropy (value id in
 * *loss_out). Later passes add the backward (autodiff) and `opt_step`.
 *
 * The forward follows HF modeling_llama / qwen2 / qwen3 / mistral exactly:
 * embedding -> per layer [RMSNorm -> q,k,v proj (+bias for Qwen2) ->
 * (Qwen3: per-head RMSNorm of q and k) -> RoPE -> causal GQA attention
 * within packed-sequence boundaries -> o proj -> residual -> RMSNorm ->
 * SwiGLU MLP -> residual] -> RMSNorm -> lm_head (tied: embed_tokens) ->
 * cross-entropy over `targets` (labels already shifted by the data loader).
 * The last two are one fused linear_cross_entropy node (loss and gradient
 * in one chunked pass, reading the `loss_scale` input) unless the config
 * says liger_fused_linear_cross_entropy: false, which gives matmul +
 * cross_entropy over materialised [tokens, vocab] logits.
 *
 * Node ranges of each decoder layer are recorded in the module attribute
 * "layer_nodes" ([begin0, end0, begin1, end1, ...], indices into
 * micro_step) for gradient checkpointing.
 */
#ifndef FE_LOWER_H
#define FE_LOWER_H

#include "frontend/config.h"
#include "ir/ir.h"

/* Rows per chunk of the fused linear cross entropy (Liger's rule). */
int64_t fe_lce_chunk_rows(int64_t rows, int64_t hidden, int64_t vocab);

/* A micro-batch's tokens [*rows, *row_len]: micro_batch_size rows of sequence_len; or, packed as Axolotl packs
 * them for an attention kernel that reads packed sequences (multipack_real_batches false, micro_batch_size > 1),
 * one bin of micro_batch_size x sequence_len tokens, a single row. Samples stay at most sequence_len long. */
void fe_token_shape(const fe_config *c, int64_t *rows, int64_t *row_len);

int fe_lower(const fe_config *c, const fe_model *m, int world_size, ir_module *mod, int32_t *loss_out, ax_diag *d);

#endif
