/* train_internal.h — the pieces of runtime/train.c's training loop that
 * runtime/dpo.c (rl: dpo) shares with it. Not an interface for callers. */
#ifndef RT_TRAIN_INTERNAL_H
#define RT_TRAIN_INTERNAL_H

#include "runtime/data.h"
#include <stdio.h>
#include "runtime/safetensors.h"
#include "runtime/train.h"

/* A module attribute of the plan, or dflt where it is absent or of another kind (an int reads as a float too). */
static inline int64_t mattr_i(const ir_module *m, const char *k, int64_t dflt) {
    const ir_attr *a = ir_module_attr(m, k);
    return a && a->kind == IR_ATTR_INT ? a->i : dflt;
}
static inline double mattr_f(const ir_module *m, const char *k, double dflt) {
    const ir_attr *a = ir_module_attr(m, k);
    return a ? (a->kind == IR_ATTR_FLOAT ? a->f : a->kind == IR_ATTR_INT ? (double)a->i : dflt) : dflt;
}
static inline const char *mattr_s(const ir_module *m, const char *k, const char *dflt) {
    const ir_attr *a = ir_module_attr(m, k);
    return a && a->kind == IR_ATTR_STR ? a->s : dflt;
}

/* The plan's datasets under `prefix` (io.dataset, io.test_dataset), each one's sample count in counts[nds]. */
int rt_train_load_datasets(const ir_module *m, const char *prefix, int nds, int64_t V, int64_t S, rt_dataset *ds,
                           int64_t *counts, int lead, int say, ax_diag *d);
/* What a saved model carries unread from the base checkpoint: a multimodal model's vision tower and projector
 * (plans with model.carry: axoc found the weights and draws none anew), every base tensor that no parameter reads except an lm_head (tied: transformers
 * saves none), pointing into *bm's mapping, in *out (malloc'd). The count (0: *bm left closed), or -1 with d
 * filled (the weights gone since: nothing is saved without the tower); rt_st_model_close(bm) after use either
 * way. */
int rt_train_carried(const ir_module *m, rt_st_model *bm, rt_st_out **out, ax_diag *d);
/* The final model (or adapter) written into dir, atomically. */
int rt_train_write_model(rt_session *s, const char *dir, ax_diag *d);
/* A global's host buffer to / from the device backend (no-ops on the CPU executor). */
int rt_train_push(rt_session *s, const rt_buf *b, ax_diag *d);
int rt_train_pull(rt_session *s, const rt_buf *b, ax_diag *d);
double rt_train_now(void);
/* The plan's learning-rate schedule for `total` steps with `warmup` of them warming up. */
rt_lr_sched rt_train_sched(const ir_module *m, int64_t warmup, int64_t total);
/* When HF evaluates (Axolotl's eval_steps, eval_steps as a ratio, evals_per_epoch, eval_strategy): every *every steps
 * (0: never), at epoch ends (*epochly), and before the first step (*on_start). */
void rt_train_eval_plan(const ir_module *m, int64_t total, int64_t steps_per_epoch, int64_t log_every, int64_t *every,
                        int *epochly, int *on_start);
/* output_dir made, a trained model there refused unless overwrite, train_log.jsonl opened into *log (the lead rank). */
int rt_train_open_output(const rt_session *s, const char *out_dir, int overwrite, FILE **log, ax_diag *d);
/* The refusals of a schedule before the first step, where Axolotl's RexLR or torch's OneCycleLR / AdamW raise. */
int rt_train_check_sched(const rt_lr_sched *lrs, double base_lr, ax_diag *d);
/* rl: dpo's loop (runtime/dpo.c); rt_train calls it for a DPO plan. */
int rt_train_dpo(rt_session *s, const rt_train_opts *o, ax_diag *d);

#endif
