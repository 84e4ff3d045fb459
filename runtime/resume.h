/* resume.h — resumable checkpoints (resume_from_checkpoint,
 * auto_resume_from_checkpoints).
 *
 * A checkpoint-N/ that axorun writes every save_steps holds, besides the
 * model files (FULL_STATE_DICT model.safetensors, SHARDED_STATE_DICT rank
 * files, or a PEFT adapter dir):
 *
 *   optimizer/optimizer_state.json          the optimizer state's index
 *   optimizer/optimizer-rank*.safetensors   each dp rank's rows of every
 *                                           opt global (Adam moments, f32
 *                                           master weights, 8-bit codes and
 *                                           their maxima), in its own dtype
 *   trainer_state.json                      global_step, epoch, max_steps,
 *                                           log_history (HF Trainer's
 *                                           names), and an "axo" section;
 *                                           written last: a checkpoint
 *                                           without it is not resumable
 *
 * Resuming reads the trainable params from the model files and the
 * optimizer state from optimizer/, each rank only its own rows, so the
 * world size may differ from the one that wrote them; training then
 * continues at step N+1 with the data, learning-rate schedule and dropout
 * masks of step N+1, so an uninterrupted run and a resumed one on the same
 * ranks end with the same weights bit for bit.
 */
#ifndef RT_RESUME_H
#define RT_RESUME_H

#include "runtime/train.h"

#define RT_TRAINER_STATE "trainer_state.json"
#define RT_OPTIM_DIR "optimizer"

/* After the model files of checkpoint dir were written: the optimizer
 * state, then trainer_state.json (rank 0). log_history: the JSON lines
 * train_log.jsonl holds so far (rank 0; may be NULL). Collective. */
int rt_ckpt_save_state(rt_session *s, const char *dir, int64_t step, int64_t max_steps, double epoch,
                       int64_t global_batch, const char *log_history, ax_diag *d);

/* What trainer_state.json of checkpoint dir says (no collective): its
 * global_step, max_steps and global batch in rows (0 when absent). */
int rt_resume_peek(const char *dir, int64_t *step, int64_t *max_steps, int64_t *global_batch, ax_diag *d);
/* How the run that saved dir's checkpoint batched its epochs (trainer_state.json's axo.batching): 1 (absent) for
 * axo before epochs kept their short last step and packing was first-fit; 2 before the shuffle was HF Trainer's
 * (torch.randperm seeded with seed + epoch); 3 before packed micro-batches followed Axolotl's attention backend (one
 * bin of micro_batch_size x sequence_len tokens, or multipack_real_batches); RT_BATCHING_VERSION since. */
#define RT_BATCHING_VERSION 4
int rt_resume_batching(const char *dir);
/* The length of the rows the run that saved dir's checkpoint trained on (trainer_state.json's axo.row_tokens: its
 * sequence_len, or micro_batch_size x sequence_len where a micro-batch was one packed bin); 0 when absent (older
 * checkpoints) or unreadable. */
int64_t rt_resume_row_tokens(const char *dir);

/* Loads checkpoint dir into s (trainable params and optimizer state, this
 * rank's rows; then the device backend's copies) and returns its
 * global_step in *step and its log_history as JSON lines in *log (malloc'd,
 * may be NULL). Checks that the checkpoint fits the plan: every trainable
 * param and every optimizer tensor present with the plan's shape and
 * dtype, and no optimizer tensor the plan does not have. */
int rt_resume_load(rt_session *s, const char *dir, int64_t *step, char **log, ax_diag *d);

/* Only the trainable params of checkpoint dir (this rank's rows; then the
 * device backend's copies): load_best_model_at_end. Collective. */
int rt_ckpt_load_params(rt_session *s, const char *dir, ax_diag *d);

/* save_total_limit: of the checkpoint-N dirs of out_dir with N <= upto
 * (later ones belong to an abandoned run and are replaced as this one
 * reaches them), removes all but the newest `keep` (the files axo wrote; a
 * dir with other files stays). best > 0: checkpoint-best is never removed,
 * as HF's rotation keeps best_model_checkpoint (it counts as the second
 * newest, and with keep 1 the newest stays too). */
void rt_ckpt_prune(const char *out_dir, int64_t keep, int64_t upto, int64_t best);
/* HF at the end of a run with save_total_limit 1 and a best checkpoint:
 * every other checkpoint-N (N <= upto) is removed. */
void rt_ckpt_keep_only(const char *out_dir, int64_t best, int64_t upto);

/* Whether dir is a resumable checkpoint (has trainer_state.json). */
int rt_ckpt_resumable(const char *dir);

/* The checkpoint-N of out_dir with the largest N that holds a
 * trainer_state.json, into buf; 0 if found, 1 if none. */
int rt_resume_latest(const char *out_dir, char *buf, size_t cap);

#endif
