/* train.h — a training session on the CPU executor: everything axorun does.
 *
 * A session is built from a plan (or, in tests, from an IR module): it
 * parses the plan's IR, allocates the globals, loads the base model's
 * weights by their HF names (or initialises them from the seed, see
 * rt_init_param), and prepares micro_step and opt_step. The runtime learns
 * everything from the plan: it includes no frontend or passes header.
 *
 * Step semantics: a global batch is micro_batch_size x grad_accum rows (x dp
 * ranks, later); micro_step runs once per micro-batch with loss_scale =
 * 1 / (label tokens in the whole global batch), so the accumulated
 * gradient is that of the global-batch token-mean loss however the batch is
 * split; then opt_step runs with the scheduled lr.
 */
#ifndef RT_TRAIN_H
#define RT_TRAIN_H

#include "ir/ir.h"
#include "runtime/backend.h"
#include "runtime/exec.h"

struct rt_rows; /* runtime/data.h */

/* lr_scheduler: reduce_lr_on_plateau, torch's ReduceLROnPlateau as HF Trainer steps it: with the eval loss after
 * each evaluation (not eval_on_start's), the lr applying from the next step on. No warmup (HF's
 * get_reduce_on_plateau_schedule takes none). greedy (HF's GreedyLR, stepped the same way): also raises the lr
 * (lr / factor, up to max_lr) after more than patience improving evaluations, then skips warmup evaluations;
 * smooth: the metric is the mean of the last window evaluations (its StreamingAverage, in its order of
 * operations); reset_start reductions that end at or below min_lr return everything to the start. */
typedef struct rt_plateau_opts {
    int mode_max, thr_abs;          /* mode "max" / threshold_mode "abs" (defaults: min, rel) */
    double factor, threshold, min_lr, eps;
    int64_t patience, cooldown;
    int greedy, smooth;             /* greedy: GreedyLR, with max_lr, warmup, window (smooth), reset_start */
    double max_lr;
    int64_t warmup, window, reset_start;
} rt_plateau_opts;
typedef struct rt_plateau {
    double best, lr;                /* best: inf (min) or -inf (max) before the first evaluation */
    int64_t bad, cooldown_counter;  /* num_bad_epochs, cooldown_counter */
    /* greedy: the initial lr, num_good_epochs, warmup_counter, reset_start's count down; smooth: the last nwin
     * metrics (a ring from win_head, oldest first) and their running sum */
    double init_lr, win_sum;
    int64_t good, warmup_counter, reset_left;
    double *win;
    int64_t nwin, win_cap, win_head;
} rt_plateau;
typedef struct rt_session {
    ir_module *m;
    rt_state st;
    rt_prog micro, opt, eval;
    int has_opt, has_eval; /* eval_step: plans with val_set_size (passes/eval.c) */
    /* facts from module attrs */
    int64_t B, S, V, grad_accum, layers;
    /* the config's sequence_len (a sample's most tokens) and micro_batch_size: S and B, unless a micro-batch is
     * one packed bin of mbs x L tokens (B 1, S mbs x L: Axolotl's multipack layout, frontend/lower.h) */
    int64_t L, mbs;
    /* sequence parallelism: this rank holds Sl = S/sp tokens of each row,
     * chosen by the layout (module attr sp.layout, see passes/seqpar.c) */
    int sp_axis, sp_layout; /* -1 if none; RT_SP_* */
    int64_t sp, Sl;
    /* runtime inputs ([B, Sl] each) */
    rt_buf in_ids, in_tgt, in_pos, in_seg, in_idx, in_loss_scale, in_lr, in_step;
    rt_buf in_beta1; /* f32[3]: the step's AdamW beta1 as three floats summing to it exactly (plans whose opt_step has
                      * input "beta1": one_cycle); NaN until set, so a plan run without it cannot train quietly */
    rt_buf in_dropout_seed; /* i32[]: LoRA dropout masks, new every micro step */
    rt_buf in_neftune_keys; /* i32[B, Sl]: NEFTune's noise key of each local token (see rt_neftune_key) */
    rt_buf in_neftune_mag;  /* f32[]: NEFTune's mag for this micro step (rt_neftune_mag of neftune_width) */
    rt_buf in_max_position; /* i32[]: the micro-batch's largest position id, over all its rows (longrope's regime) */
    /* the position HF's longrope_frequency_update sees for the batch being fed, where it is not the rows' own
     * largest: unpacked rows (HF's arange over the collator's padded width), or an eval batch run as several calls;
     * max_position_set 0: the rows' own */
    int max_position_set;
    int32_t max_position_value;
    /* rl: dpo (module attr train.rl): the reference model's summed token loss of each of the B rows (f32[B], NaN
     * until rt_session_set_dpo sets it) and each pair's loss scale (f32[B/2]) */
    rt_buf in_dpo_ref, in_dpo_pair_scale;
    rt_buf in_dpo_counts; /* f32[B]: each row's completion tokens (input "dpo_row_tokens": the ipo and sigmoid_norm losses) */
    rt_buf in_dpo_nll;    /* f32[B]: each row's NLL weight (input "dpo_row_nll": rl: simpo's cpo_alpha term) */
    rt_buf in_dpo_ptgt;   /* i32[B,S]: the chosen rows' prompt targets (input "dpo_prompt_targets"; -100 elsewhere) */
    rt_buf in_dpo_atgt;   /* i32[B,S]: rl: orpo: every row's targets (input "dpo_all_targets") */
    rt_buf in_dpo_cmask;  /* f32[B,S]: rl: orpo: 1 on the completion's targets (input "dpo_completion_mask") */
    rt_buf in_dpo_tnll;   /* f32[B,S]: rl: orpo: the NLL's weight of each chosen row's target (input "dpo_token_nll") */
    int dpo;
    /* output_router_logits (module attr train.router_aux_loss_coef): the load-balancing loss's token weights
     * (f32[B, Sl]: each token's HF attention_mask value as Axolotl's collator fills it) from aux_mask_rows (the whole
     * micro-batch's [B, S], set by the caller; NULL: rt_aux_mask of the sequence ids, every sequence of a row its
     * own), and aux_scale (f32[]: the seed of aux's gradient over loss_scale, set by the caller per micro step) */
    rt_buf in_aux_mask, in_aux_scale;
    const float *aux_mask_rows;
    double router_aux_coef;
    int aux_mask_ones;       /* Axolotl's other multipack collator (a model type outside its multipack list: OLMoE):
                              * packed tokens weigh 1 in the load-balancing loss, not their sequence's ordinal */
    int aux; /* the plan has the load-balancing loss */
    int64_t neftune_width;  /* the micro-batch's width as HF's collator pads it (rt_neftune_width); 0: the row's S */
    int neftune;            /* the plan adds NEFTune noise (module attr train.neftune_noise_alpha) */
    int64_t micro_count;    /* micro steps run so far */
    /* load_best_model_at_end / early_stopping_patience (runtime/train.c),
     * kept in trainer_state.json under HF TrainerState's names: the best
     * eval_loss so far and the step that gave it (best_step 0: none yet),
     * the newest checkpoint that holds the best (best_model_checkpoint; 0:
     * none), and EarlyStoppingCallback's count of evaluations without
     * improvement */
    double best_metric;
    int64_t best_step, best_ckpt_step, patience_count;
    /* lr_scheduler: reduce_lr_on_plateau: its state (the lr in force, the best eval_loss, the bad evaluations and
     * the cooldown left), kept in trainer_state.json's axo.plateau so that a resumed run goes on with it */
    int plateau_on;
    rt_plateau plateau;
    rt_plateau_opts plateau_opts; /* its arguments: a checkpoint records them, a resume must have the same */
    int adapter;            /* the plan trains LoRA adapters (module attr lora.adapter) */
    char *hf_config; /* config.json bytes from the plan (may be NULL) */
    size_t hf_config_len;
    rt_backend *backend; /* NULL: the CPU executor; else owned, freed by close */
} rt_session;

/* Opens a plan file; or builds a session from a module (takes ownership). */
int rt_session_open(const char *plan_path, rt_session *s, ax_diag *d);
int rt_session_from_module(ir_module *m, rt_session *s, ax_diag *d);
void rt_session_close(rt_session *s);

/* Loads model_dir's safetensors (model.safetensors or the sharded index)
 * when present, else initialises every param from seed. Then derives the
 * f32 master copies and rounds bf16 params. model_dir NULL = the plan's
 * model.dir. */
int rt_session_init_weights(rt_session *s, const char *model_dir, ax_diag *d);

/* This rank's block of a global of type t: its first row and row count
 * (rows past the tensor's end are padding); the whole tensor when unsplit. */
void rt_session_block(const rt_session *s, const ir_type *t, int64_t *first, int64_t *rows);

/* Stacked parameters: a global [E, R, C] holding E checkpoint tensors along dim 0, an MoE layer's experts as
 * transformers 5 holds them (mlp.experts.gate_up_proj [E, 2I, H] from the checkpoint's experts.N.gate_proj and
 * up_proj, down_proj [E, H, I]). Attrs: stack = E; hf = the first part's checkpoint name with '*' for the expert's
 * index; hf2 = a second part's, whose rows follow the first's in each expert's slab (absent: one part). Full saves
 * write the parts under their checkpoint names, as transformers' save_pretrained does; sharded checkpoints keep the
 * global whole under hf_stacked (the checkpoint's prefix and the module's leaf: what transformers 5 re-saves a
 * stacked model as), the optimizer state under its own name, with dim 0 (whole experts) split over ranks. */
int rt_stacked(const ir_global *G); /* E, or 0 */
int rt_stacked_parts(const ir_global *G);
/* part p of expert e: its checkpoint name into name, its shape [R / parts, C], its first element in the global */
int rt_stacked_part(const ir_global *G, int64_t e, int p, char *name, size_t cap, int64_t shape[2], int64_t *at);
/* 1 when name is one of G's parts' checkpoint names (any expert) */
int rt_stacked_match(const ir_global *G, const char *name);
/* experts [first, first + rows) of G from a model's safetensors into dst (f32): the whole global under its module name
 * or hf_stacked (transformers 5's state_dict or re-save), else the parts under their checkpoint names */
struct rt_st_model;
int rt_stacked_read(const struct rt_st_model *sm, const ir_global *G, int64_t first, int64_t rows, float *dst,
                    const char *where, ax_diag *d);
/* One line of train_log.jsonl (with its newline) into buf. */
/* An evaluation's train_log.jsonl line: {"step", "epoch", "eval_loss", "eval_tokens"}. */
void rt_eval_log_line(char *buf, size_t cap, int64_t step, int64_t epoch, double eval_loss, int64_t tokens);
void rt_log_line(char *buf, size_t cap, int64_t step, int64_t epoch, double loss, double grad_norm, double lr,
                 double tokens_per_s);
/* Rank 0 of the whole mesh? */
int rt_session_is_rank0(const rt_session *s);
/* Collective over the whole mesh: nonzero on every rank if `bad` is set on any. */
int rt_session_any_rank(rt_session *s, int bad);
/* Collective: v[0..n) summed over every rank of the mesh, in place. 0 or -1. */
int rt_session_world_sum(rt_session *s, float *v, int n);

/* NEFTune's noise key (the neftune op, ir/quant.h) of the token at index j
 * of row `row` of optimizer step `step`'s global batch (0-based). A session
 * of dp rank r takes rows (r * grad_accum + m) * B + b in its m-th micro step
 * of a step, as the training loop feeds them, so a token gets the same key,
 * and the same noise, with N ranks as with 1 rank and N times the
 * accumulation, and on whichever sp rank holds it. */
uint32_t rt_neftune_key(uint64_t seed, int64_t step, int64_t row, int64_t j);

enum { RT_SP_CONTIGUOUS, RT_SP_ZIGZAG, RT_SP_STRIPE };
/* Index in its row (of S tokens) of local token t (of S/sp) on sp rank r. */
int64_t rt_sp_token_index(int layout, int64_t S, int64_t sp, int64_t r, int64_t t);

/* One micro-batch: arrays of B*S int32 each (whole rows; with sequence
 * parallelism the session takes its own tokens of each row). */
int rt_session_micro_step(rt_session *s, const int32_t *ids, const int32_t *targets, const int32_t *pos,
                          const int32_t *seg, float loss_scale, ax_diag *d);
int rt_session_opt_step(rt_session *s, float lr, int64_t step, ax_diag *d);
/* The held-out loss of one micro-batch (row-major [B, S] like micro_step's)
 * by eval_step: forward only, dropout and NEFTune off; adds the summed token loss to
 * @stats/loss_sum and touches nothing else. Needs has_eval. */
int rt_session_eval_step(rt_session *s, const int32_t *ids, const int32_t *targets, const int32_t *pos,
                         const int32_t *seg, ax_diag *d);

/* rl: dpo: the next micro or eval step's reference losses ref[B] (each row's summed token loss under the
 * reference model: the chosen rows, then the rejected), pair scales scale[B/2] (the weight of each pair's loss
 * in the step's; 0 for a pair the micro-batch does not hold) and the rows' completion token counts counts[B]
 * (TRL's completion_mask sums, for the losses that average over them; NULL: ones). */
void rt_session_set_dpo(rt_session *s, const float *ref, const float *pair_scale, const float *counts);
/* rl: simpo's NLL term: each row's weight f32[B] */
void rt_session_set_dpo_nll(rt_session *s, const float *nll);
/* rl: orpo's inputs, each [B,S]: the chosen rows' prompt targets, every row's targets, the completion's targets
 * (1) and the NLL weight of each chosen row's target */
void rt_session_set_dpo_orpo(rt_session *s, const int32_t *prompt_targets, const int32_t *all_targets,
                             const float *completion_mask, const float *token_nll);
/* rl: orpo's inputs for a micro-batch of 2P rows of S tokens (ids, its completion targets tgt and sequence ids seg,
 * padding at seg != 0; keep[j] < 0 for a pair the micro-batch does not hold, NULL: all held): each row's targets
 * (ORPOTrainer's labels where attention_mask is 1), the chosen rows' prompt targets, the completion targets as 1s,
 * and scale / N on each of the N targets of the chosen rows (the NLL's weight), set with rt_session_set_dpo_orpo;
 * scratch holds 8 P S int32s; nll[2P] (or NULL) gets each row's NLL target count. Returns N. */
double rt_dpo_orpo_stage(rt_session *s, const int32_t *ids, const int32_t *tgt, const int32_t *seg, const int64_t *keep,
                         int64_t P, int64_t S, double scale, int32_t *scratch, float *nll);

/* A global's buffer by name (NULL if none). */
rt_buf *rt_session_global(rt_session *s, const char *name);

/* Writes an HF model dir: model.safetensors (params by HF name, in the
 * params' dtype) + config.json; for a LoRA/QLoRA plan a PEFT adapter dir
 * instead: adapter_model.safetensors (the adapter weights, f32, by PEFT's
 * names) + adapter_config.json. Atomically (files via temp+rename; a
 * directory via DIR.tmp-PID then rename). Refuses to replace an existing
 * directory unless overwrite. */
int rt_session_save(rt_session *s, const char *dir, int overwrite, ax_diag *d);

/* Seeded init of one parameter: "normal" -> N(0, std) from a splitmix64
 * stream keyed by (seed, XXH64(name)) through Box-Muller; "uniform" ->
 * U(-std, std) from the same stream (LoRA A: std = 1/sqrt(fan_in), PEFT's
 * kaiming_uniform(a=sqrt(5))); "ones"; "zeros".
 * Independent of parameter order and of sharding. */
void rt_init_param(const char *name, const char *init, double std, uint64_t seed, float *out, int64_t n);

/* The learning-rate schedule: HF get_scheduler's lr_lambda for
 * lr_scheduler_type `name` (constant: no warmup; constant_with_warmup,
 * linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt,
 * cosine_with_min_lr), with lr_scheduler_kwargs (NAN: HF's default), and
 * Axolotl's cosine variants (cosine_min_lr_ratio, with
 * cosine_constant_lr_ratio, lr_quadratic_warmup; Axolotl's precedence). */
typedef struct rt_lr_sched {
    const char *name;
    int64_t warmup, total;
    double num_cycles, power, lr_end, timescale, min_lr_rate;
    double cosine_min_lr_ratio, cosine_constant_lr_ratio;
    int quadratic_warmup;
    /* cosine_warmup_with_min_lr: warmup_lr_rate; warmup_stable_decay: num_decay_steps, num_stable_steps (NAN:
     * total - warmup - decay), min_lr_ratio, warmup_type and decay_type ("linear", "cosine", "1-sqrt"; NULL: HF's
     * linear and cosine). rex (Axolotl's RexLR) takes its floor from cosine_min_lr_ratio. */
    double warmup_lr_rate, num_decay_steps, num_stable_steps, min_lr_ratio;
    const char *warmup_type, *decay_type;
    /* one_cycle: torch's OneCycleLR as Axolotl builds it (max_lr = base_lr, total_steps = total), with
     * lr_scheduler_kwargs: pct_start (NAN: warmup / total, as Axolotl passes it), div_factor, final_div_factor,
     * base_momentum, max_momentum, anneal_linear (anneal_strategy linear, else cos), three_phase,
     * cycle_momentum. Every field must be set (the frontend writes torch's defaults: 25, 1e4, 0.85, 0.95, cos,
     * two phases, cycling). */
    double oc_pct_start, oc_div_factor, oc_final_div_factor, oc_base_momentum, oc_max_momentum;
    int oc_anneal_linear, oc_three_phase, oc_cycle_momentum;
} rt_lr_sched;
void rt_plateau_init(rt_plateau *p, const rt_plateau_opts *o, double lr); /* p: any contents (nothing is freed) */
/* One ReduceLROnPlateau.step(metric) (o->greedy: GreedyLR.step): returns 1 when it changed p->lr, -1 when the
 * smoothing window could not grow (no memory). */
int rt_plateau_step(rt_plateau *p, const rt_plateau_opts *o, double metric);
void rt_plateau_free(rt_plateau *p); /* the smoothing window */

/* The lr of optimizer step `step0` (0-based), as LambdaLR gives it (one_cycle: as rt_one_cycle_at, NAN where it
 * fails). */
double rt_lr_sched_at(const rt_lr_sched *s, double base_lr, int64_t step0);
/* one_cycle: the lr and AdamW beta1 (the momentum; NAN without cycle_momentum) that OneCycleLR gives optimizer
 * step `step0` (0-based: its get_lr() at last_epoch = step0, which HF Trainer's first step takes from the
 * scheduler's constructor). 0, or -1 with `why` (cap bytes) where torch raises instead: pct_start outside [0, 1]
 * (ValueError), a phase of no length holding the step (ZeroDivisionError: e.g. a warmup of 1 step ends its
 * phase at step 0), step0 past total (ValueError). */
int rt_one_cycle_at(const rt_lr_sched *s, double base_lr, int64_t step0, double *lr, double *beta1, char *why,
                    size_t cap);
/* NEFTune (transformers' neftune_post_forward_hook): mag = alpha / torch.sqrt(tensor(width * hidden)), in f32 as
 * torch computes it (correctly rounded; torch's own sqrt is on its MKL AVX2 path, 1 ulp off at some sizes on
 * others), width the batch's padded length. rt_neftune_width: that length for micro-batch rows r[0..n) of rows
 * (negative: an empty row), Axolotl's collator padding the longest row's tokens up to a multiple of `multiple`
 * (frontend fe_neftune_multiple), or with flatten (batch_flattening) their sum, one row; 0 when every row is
 * empty. */
float rt_neftune_mag(double alpha, int64_t width, int64_t hidden);
int64_t rt_neftune_width(const struct rt_rows *rows, const int64_t *r, int64_t n, int64_t multiple, int flatten);
/* output_router_logits: the token weights of micro-batch rows row_of[0..B) (a row's S tokens each, seq the rows' sequence
 * ids): HF's attention_mask as Axolotl's multipack collator fills it (V2BatchSamplerDataCollatorForSeq2Seq, for the
 * model types of its multipack list), a row's n-th sequence n, its padding 0; an unpacked row's one sequence 1; with
 * ones (BatchSamplerDataCollatorForSeq2Seq, for the other model types: OLMoE), every real token 1. Into mask[B*S]. */
void rt_aux_mask(const struct rt_rows *rows, const int64_t *row_of, int64_t B, const int32_t *seg, int ones, float *mask);

/* Sets the session's beta1 input (plans with input "beta1") to x. */
void rt_session_set_beta1(rt_session *s, double x);
/* (input "beta1" holds x as ir/quant.h's axo_beta1_split writes it) */
/* The same with every argument at its default. */
double rt_lr_at(const char *sched, double base_lr, int64_t warmup, int64_t total_steps, int64_t step0);

typedef struct rt_train_opts {
    const char *output_dir; /* NULL = the plan's io.output_dir */
    int overwrite;          /* replace an existing output dir's model/checkpoints */
    int64_t max_steps;      /* > 0 overrides the plan */
    const char *resume_from; /* a checkpoint dir to continue from (overrides the plan's resume_from_checkpoint) */
    int quiet;
    struct rt_trace *trace; /* non-NULL: every rank records optimizer step trace_step into it */
    int64_t trace_step;     /* 1-based */
    /* Called on every rank after its weights are initialised, before the
     * first step: attaches a device backend to the session (tools/axorun.c
     * uses it for the CUDA executor). NULL: train on the CPU executor. */
    int (*attach)(rt_session *s, void *ctx, ax_diag *d);
    void *attach_ctx;
} rt_train_opts;

int rt_train(rt_session *s, const rt_train_opts *o, ax_diag *d);

/* The warmup Axolotl 0.19 hands HF (core/builders/base.py _configure_warmup_and_logging) for its
 * total_num_steps (SFT: its own count, or max_steps when fewer; rl: its own count): warmup_steps as given
 * (module attr train.warmup_steps), else int(warmup_ratio x total_num_steps), else min(int(0.03 x
 * total_num_steps), 100); a warmup of 1 becomes 2. Plans from before the attrs could be unset say 0. */
int64_t rt_axolotl_warmup(const ir_module *m, int64_t total_num_steps);
/* logging_steps as given (module attr train.logging_steps), else Axolotl's max(min(int(0.005 x
 * total_num_steps), 10), 1). */
int64_t rt_axolotl_logging_steps(const ir_module *m, int64_t total_num_steps);

#endif
