/* passes.h — graph -> graph transforms, in pipeline order.
 *
 *   lora       LoRA / QLoRA adapters on the forward: base params frozen,
 *              adapters added to the targeted linear layers, QLoRA's
 *              weights stored as NF4 (before autodiff)
 *   autodiff   reverse-mode gradient of micro_step's loss w.r.t. every
 *              trainable param global; gradients accumulate into @grad/<p>
 *   optimizer  builds opt_step: global-norm clipping + AdamW (fp32 master
 *              weights when params are bf16) + zeroing of the gradients
 *   shard      data parallelism over the dp mesh axis (DDP, ZeRO-1/2/3, FSDP)
 *   offload    CPU offload: host placement, host optimizer step, copies
 *   fuse       elementwise chains -> one `fused` node each (after dce)
 *
 * Each pass returns 0, or -1 with errors in d. The pass manager
 * (pass_pipeline) runs them in order, verifies the module after each one and
 * can dump the IR text after each one into a directory.
 */
#ifndef PASSES_H
#define PASSES_H

#include "ir/ir.h"

typedef enum { PASS_ADAPTER_NONE, PASS_ADAPTER_LORA, PASS_ADAPTER_QLORA } pass_adapter;

/* PEFT's init_lora_weights: true (A kaiming-uniform, B zeros), "gaussian"
 * (A normal with std 1/r, B zeros), false (A and B keep nn.Linear's
 * kaiming-uniform init: the adapter changes the model from step 0) */
enum { PASS_LORA_INIT_DEFAULT, PASS_LORA_INIT_GAUSSIAN, PASS_LORA_INIT_FALSE };
typedef struct pass_lora_cfg {
    pass_adapter adapter; /* NONE: the pass is a no-op */
    int64_t r;
    double alpha, dropout;
    int rslora;           /* scale alpha / sqrt(r) instead of alpha / r */
    int dora;             /* peft_use_dora: DoRA's magnitude vector on every adapted layer */
    int init;             /* peft_init_lora_weights: PASS_LORA_INIT_* (0: PEFT's default) */
    int target_linear;    /* every decoder linear layer */
    int all_linear_string; /* target_linear given as PEFT's string "all-linear" */
    const char *const *targets; /* module names (PEFT's suffix match) */
    int ntargets;
    /* lora_target_parameters (PEFT's target_parameters): names of the MoE routers' and experts' weights themselves
     * (a parameter's full name or a suffix after a '.'), adapted by ParamWrapper's rule (see lora.c) */
    const char *const *target_params;
    int ntarget_params;
    int bf16;             /* compute dtype of the adapter matmuls */
    int quantize_moe;     /* QLoRA: the MoE experts' stacked weights NF4 too (quantize_moe_experts) */
    const char *model_dir; /* lora_model_dir: the runtime loads the adapters from it (NULL: fresh) */
    const char *const *save_modules; /* lora_modules_to_save: trained whole, saved in the adapter file */
    int nsave;
    /* peft_layers_to_transform: targets matched by name suffix (and
     * target_linear's) only in these decoder layers (nlayers 0: all), as
     * PEFT's layers_to_transform; layers_int: it was one integer */
    const int64_t *layers;
    int nlayers, layers_int;
    /* peft_layers_pattern: the layer list's name(s) in module names (NULL:
     * any, PEFT's default rule); pattern_str: it was one string */
    const char *const *pattern;
    int npattern, pattern_str;
    /* peft_trainable_token_indices: these rows of embed_tokens (and of the
     * lm head tied to it) are a trainable delta param, PEFT's
     * TrainableTokensLayer (see lora.c); ntokens 0: none */
    const int64_t *tokens;
    int ntokens;
    /* a multimodal model's modules that axo does not train (its vision tower's, ...): a target name that matches
     * only some of them is left out with a warning, where PEFT would wrap them (and train nothing on text) */
    const char *const *foreign;
    int nforeign;
} pass_lora_cfg;

/* LoRA / QLoRA (see lora.c) on micro_step's forward; *loss is updated to
 * the rewritten program's value. Errors name the config key. */
int pass_lora(ir_module *m, const pass_lora_cfg *cfg, int32_t *loss, ax_diag *d);

/* Appends the backward of `p` (forward nodes [0, p->nnodes)) to p.
 * loss: the f32[] value to differentiate. The adjoint seed is the runtime
 * input "loss_scale" (1 / label tokens in the global batch), so the summed
 * gradients are those of the global-batch mean loss. With checkpoint != 0,
 * each decoder layer (module attr "layer_nodes") is recomputed in the
 * backward instead of keeping its activations. Creates @grad/<name> for
 * each param global (attr trainable absent or 1). */
int pass_autodiff(ir_module *m, ir_program *p, int32_t loss, int checkpoint, ax_diag *d);

/* eval_step (see eval.c): micro_step's forward with dropout and NEFTune off, for the
 * held-out split (val_set_size). Run after the LoRA pass, before autodiff. */
int pass_eval_program(ir_module *m, ax_diag *d);

/* Sequence parallelism over the `sp` mesh axis (see seqpar.c): micro_step
 * holds S/sp tokens per row laid out as `layout` ("zigzag", "contiguous"
 * or "stripe"); attention becomes ring attention. No-op when |sp| = 1. */
int pass_seqpar(ir_module *m, const char *layout, ax_diag *d);

typedef struct pass_opt_cfg {
    double beta1, beta2, eps, weight_decay, max_grad_norm;
    /* bf16 params: master_f32 keeps f32 master copies and f32 moments (the
     * `bf16: true` recipe, DeepSpeed's); pure_bf16 keeps neither: bf16
     * moments and a stochastically rounded update of the bf16 params
     * (`bfloat16: true`). One of the two is required for bf16 params. */
    int master_f32, pure_bf16;
    /* 8-bit AdamW state (optimizer: adamw_bnb_8bit and its aliases): m and
     * v of every 2-d param of at least 4096 elements are u8 codes with f32
     * maxima per block of AXO_Q8_BLOCK of a row (adamw8); 1-d and smaller
     * params keep AdamW's state (bitsandbytes keeps tensors under 4096
     * elements in 32 bits too; torchao too, and those whose size is no
     * multiple of its 256-element block, where it quantizes 1-d ones of
     * 4096 and more that axo keeps 32-bit). */
    int state_8bit;
    int torchao_8bit; /* optimizer: adamw_torch_8bit (torchao's AdamW8bit): any embedding's state 8-bit too, and
                       * only a parameter whose element count is a multiple of the 256-element block */
    /* LoRA+ (loraplus_lr_ratio; 0: off): PEFT's create_loraplus_optimizer
     * groups. lora_B matrices and 1-d params get lr x ratio (attr lr_scale
     * on the param and its AdamW node) and weight decay unless "bias" is in
     * their name; every other param gets lr and weight decay. */
    double loraplus_ratio;
    /* Axolotl's own optimizer groups (embedding_lr, embedding_lr_scale,
     * lr_groups; groups = 1 when made, never with LoRA+): the trainable
     * params whose HF name holds embed_tokens or lm_head train without weight
     * decay at lr x emb_scale (when not 0), else at emb_lr (when not 0), else
     * at lr; a decaying param whose HF name holds lrg_module[i] (the first i
     * that does) trains at lrg_lr[i]. base_lr: learning_rate, the lr the
     * schedule scales (lr_scale = a group's lr / base_lr). */
    int groups;
    double base_lr, emb_scale, emb_lr;
    const char *const *lrg_module;
    const double *lrg_lr;
    int nlrg;
    /* lr_scheduler: one_cycle (torch's OneCycleLR, as Axolotl builds it):
     * one_lr: every group trains at the schedule's lr (OneCycleLR sets each
     * group's lr from its one max_lr), so no param or adamw node carries
     * lr_scale; the groups' weight decay stays. beta1_input (cycle_momentum): opt_step
     * takes input "beta1" f32[3] (the step's beta1 as three floats) and every
     * adamw / adamw8 node reads it as its last operand. */
    int one_lr, beta1_input;
} pass_opt_cfg;

/* Builds program opt_step. Creates @adam_m/<p>, @adam_v/<p> (role opt; f32,
 * or bf16 for a bf16 param under pure_bf16) and, with master_f32,
 * @master/<p> (f32, role opt). A param's attr lr_scale (a float, 1 when
 * absent) multiplies the scheduled lr for it: its adamw / adamw8 node
 * carries lr_scale when it is not 1 (plans without one are unchanged). */
int pass_optimizer(ir_module *m, const pass_opt_cfg *cfg, ax_diag *d);

/* How gradient reductions are grouped into buckets (bucket.c). */
typedef enum {
    PASS_BUCKET_OFF,   /* one collective per gradient */
    PASS_BUCKET_BYTES, /* torch DDP: cap in bytes (ddp_bucket_cap_mb * 2^20) */
    PASS_BUCKET_ELEMS, /* DeepSpeed ZeRO: cap in elements (reduce_bucket_size) */
    PASS_BUCKET_UNIT,  /* FSDP: one bucket per wrapped unit's run of gradients */
} pass_bucket_by;

typedef struct pass_shard_cfg {
    int stage;                 /* 0 DDP, 1/2/3 ZeRO (FSDP full shard = 3) */
    int reshard_after_forward; /* stage 3: gather again in backward */
    int offload_params, offload_optimizer;
} pass_shard_cfg;

/* Data-parallel sharding over the `dp` mesh axis (see shard.c). */
int pass_shard(ir_module *m, const pass_shard_cfg *cfg, ax_diag *d);

/* CPU offload after shard (see offload.c): places state on the host
 * (place="host"), runs the optimizer step for host state on the host
 * (on="host") and makes every host<->device copy an explicit to_host /
 * to_device. A no-op without offload_params / offload_optimizer; an error
 * for offload_params below stage 3 or offload_optimizer at stage 0. */
int pass_offload(ir_module *m, const pass_shard_cfg *cfg, ax_diag *d);

/* Streams, cross-stream waits and all-gather prefetch (see schedule.c). */
typedef struct pass_sched_cfg {
    int prefetch; /* parameter all-gather units issued ahead (0: none) */
} pass_sched_cfg;
int pass_schedule(ir_module *m, const pass_sched_cfg *cfg, ax_diag *d);

typedef struct pass_bucket_cfg {
    pass_bucket_by by;
    int64_t cap; /* in by's unit; <= 0 with BYTES/ELEMS: no buckets */
} pass_bucket_cfg;

/* Groups the gradient reductions over dp that pass_shard emitted (one per
 * gradient) into buckets, each one communicator call (see bucket.c). The
 * pipeline runs it right after pass_shard (same dump). */
int pass_bucket_grads(ir_module *m, const pass_bucket_cfg *cfg, ax_diag *d);
/* The greedy assignment: items in order; an item joins the open bucket
 * unless its size would take the bucket past cap (it then opens the next
 * one), so an item larger than cap is a bucket of its own; an item whose
 * key differs from the previous item's always opens a new bucket (dtype,
 * op, wrapped unit). cap <= 0: no size limit. Writes bucket[i] (0, 1, ...);
 * returns the bucket count. */
int pass_bucket_assign(const int64_t *sizes, const int *keys, int n, int64_t cap, int *bucket);

/* Per-rank memory and communication figures (see memplan.c). */
typedef struct pass_mem_stats {
    int64_t params;                 /* parameter count (whole model) */
    int64_t trainable_params;       /* of which trained (all but frozen base weights) */
    int64_t state_bytes[IR_NROLE];  /* device-resident globals by role, per rank */
    int64_t host_bytes;             /* globals placed on the host (offload) */
    int64_t host_state_bytes[IR_NROLE]; /* the same by role */
    int64_t padding_elems;          /* shard padding over all params */
    int64_t micro_peak, opt_peak;   /* activation/temporary arena peaks (device) */
    int64_t eval_peak;              /* eval_step's (val_set_size), 0 without one */
    int64_t arena_peak;             /* the largest program's: the arena every program shares */
    int64_t micro_host_peak, opt_host_peak; /* host arena peaks: copies to the host, host-side math */
    int64_t comm_micro, comm_opt;   /* bytes per rank per program run */
    int64_t ring_micro;             /* of comm_micro: ring_shift (sequence parallel) bytes */
    int64_t comm_step;              /* micro * grad_accum + opt */
    int64_t h2d_micro, h2d_opt, d2h_micro, d2h_opt; /* host<->device copy bytes per rank per program run */
    int64_t h2d_step, d2h_step;     /* to the device, to the host: micro * grad_accum + opt */
    /* communicator calls per rank (a bucket is one call; see ir_bucket_run_end) */
    int64_t calls_micro, calls_opt, calls_step;
} pass_mem_stats;
int pass_memplan(ir_module *m, pass_mem_stats *st);
int64_t pass_local_bytes(const ir_module *m, const ir_type *t);

/* Elementwise fusion after dce (see fuse.c): chains of elementwise nodes
 * whose intermediate values have one use become one `fused` node. */
typedef struct pass_fuse_cfg {
    int off; /* axoc --no-fuse */
} pass_fuse_cfg;
int pass_fuse(ir_module *m, const pass_fuse_cfg *cfg, ax_diag *d);

/* Removes nodes whose results are never used and that have no effect.
 * Returns the number removed. */
int pass_dce(ir_module *m, ir_program *p);

/* ---- pass manager -------------------------------------------------------- */
typedef struct pass_ctx {
    ir_module *m;
    int32_t loss;
    int checkpoint;
    pass_lora_cfg lora;
    pass_opt_cfg opt;
    pass_shard_cfg shard;
    const char *sp_layout; /* NULL: zigzag */
    pass_sched_cfg sched;
    pass_bucket_cfg bucket; /* gradient buckets (zero: one collective per gradient) */
    pass_fuse_cfg fuse;     /* elementwise fusion (zero: on) */
    const char *dump_dir; /* NULL: no dumps; else NN-<pass>.ir files */
    pass_mem_stats mem;   /* filled by the memplan step */
    int stage;            /* dump file counter */
} pass_ctx;

/* Dumps the module as DIR/NN-name.ir (when dump_dir is set) and verifies
 * it. Used after lowering and after every pass. */
int pass_checkpoint(pass_ctx *c, const char *name, ax_diag *d);
int pass_pipeline(pass_ctx *c, ax_diag *d);

#endif
