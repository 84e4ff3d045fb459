/* config.h — the training configuration as axo understands it.
 *
 * fe_config_load reads an Axolotl-style YAML file (libyaml), the DeepSpeed
 * JSON it names (or the --deepspeed override), normalises FSDP1 settings to
 * FSDP2 terms, and checks the whole for consistency. fe_model_load reads a
 * Hugging Face model directory's config.json. Every diagnostic names the file
 * and line:col (YAML) or key path (JSON), what was expected and what was
 * found. Unknown keys warn; Axolotl keys that only steer infrastructure or
 * logging are accepted silently; keys whose meaning axo does not implement
 * are errors unless their value leaves training as it is (fe_refused_keys).
 */
#ifndef FE_CONFIG_H
#define FE_CONFIG_H

#include "ir/base.h"
#include "runtime/prompt.h"

typedef enum { FE_ADAPTER_NONE, FE_ADAPTER_LORA, FE_ADAPTER_QLORA } fe_adapter;
/* a dataset file's loader: = fe_hub_data_format - 1 and runtime/data.h's RT_LOADER_* */
enum { FE_LOADER_JSON, FE_LOADER_PARQUET, FE_LOADER_TEXT, FE_LOADER_CSV, FE_LOADER_TSV /* csv, sep "\t" */ };
enum { FE_SAVE_NO = 1, FE_SAVE_EPOCH, FE_SAVE_STEPS, FE_SAVE_BEST };   /* save_strategy */
enum { FE_EVAL_NO = 1, FE_EVAL_EPOCH, FE_EVAL_STEPS };                 /* eval_strategy */
/* lr_scheduler: HF TrainingArguments' lr_scheduler_type names (fe_sched_names) */
typedef enum {
    FE_SCHED_CONSTANT, /* HF: no warmup at all */
    FE_SCHED_LINEAR,
    FE_SCHED_COSINE,
    FE_SCHED_CONSTANT_WITH_WARMUP,
    FE_SCHED_COSINE_WITH_RESTARTS,
    FE_SCHED_POLYNOMIAL,
    FE_SCHED_INVERSE_SQRT,
    FE_SCHED_COSINE_WITH_MIN_LR,
    FE_SCHED_COSINE_WARMUP_WITH_MIN_LR, /* HF: its warmup starts at (t + 1) / W, the cosine one step ahead */
    FE_SCHED_WARMUP_STABLE_DECAY,       /* HF's get_wsd_schedule */
    FE_SCHED_REX,                       /* Axolotl's RexLR (lr_scheduler: rex) */
    FE_SCHED_REDUCE_ON_PLATEAU,         /* torch's ReduceLROnPlateau, stepped with eval_loss */
    FE_SCHED_ONE_CYCLE,                 /* torch's OneCycleLR as Axolotl builds it (also cycles AdamW's beta1) */
    FE_SCHED_GREEDY,                    /* HF's GreedyLR, stepped with eval_loss as reduce_lr_on_plateau */
    FE_SCHED_COUNT
} fe_sched;
extern const char *const fe_sched_names[FE_SCHED_COUNT];
extern const char *const fe_loader_names[5]; /* by FE_LOADER_*: json, parquet, text, csv, tsv */
typedef enum { FE_OFFLOAD_NONE, FE_OFFLOAD_CPU } fe_offload;
typedef enum { FE_STATE_DICT_FULL, FE_STATE_DICT_SHARDED } fe_state_dict;

/* `chat_template_jinja:` as Axolotl reads it: the template's text, or the
 * path of a file holding it (tried as given, then beside the config). */
typedef struct fe_jinja_src {
    const char *text;  /* NULL when absent */
    const char *where; /* for messages: the file it came from, or "config.yml:LINE:COL: key" */
} fe_jinja_src;

typedef struct fe_dataset {
    const char *path; /* local .jsonl (or .json array) file */
    const char *type; /* NULL: pre-tokenized rows; else the Axolotl type as written */
    int formatted;    /* rows of text through `spec` (alpaca, completion, chat_template) */
    rt_ds_spec spec;  /* its chat template is resolved by fe_resolve_tokenizer */
    const char *chat_template; /* the dataset's own `chat_template:`, or NULL */
    fe_jinja_src chat_template_jinja; /* the dataset's own `chat_template_jinja:` */
    int64_t shards, shards_idx; /* shards (0: none) / shards_idx: one contiguous shard of the shuffled rows */
    int continues;    /* a later file of the entry before it: its split is several files (one Axolotl dataset) */
    int loader;       /* the HF datasets loader that reads the file: FE_LOADER_* (ds_type, or its name) */
    const char *slice; /* the split's slice (runtime/data.h rt_data_source.slice) on its first file, or NULL */
    /* rl: dpo: the entry's field_messages / field_chosen / field_rejected as written (NULL: unset), whatever its
     * type: Axolotl's DPO strategies read datasets[i]'s for test_datasets[i] too */
    const char *dpo_fields[3];
} fe_dataset;

/* DeepSpeed JSON, with every "auto" resolved from the YAML. */
typedef struct fe_deepspeed {
    int present;
    const char *path;        /* as given (YAML `deepspeed:` or --deepspeed) */
    int zero_stage;          /* 0..3 */
    fe_offload offload_param;     /* zero_optimization.offload_param.device */
    fe_offload offload_optimizer; /* zero_optimization.offload_optimizer.device */
    int bf16;                /* bf16.enabled after resolving "auto" */
    int fp16;                /* fp16.enabled after resolving "auto" */
    int optimizer_section;   /* an "optimizer" section: DeepSpeed's AdamW replaces the YAML's optimizer */
    double gradient_clipping;  /* resolved; 0 = none */
    int overlap_comm, contiguous_gradients;
    int64_t reduce_bucket_size;          /* bytes/elements as in JSON, "auto" -> 0 */
    int64_t stage3_prefetch_bucket_size; /* "auto" -> 0 */
    int64_t stage3_max_live_parameters;  /* default 1e9 */
    int stage3_gather_16bit_weights_on_model_save;
    int torch_compile;       /* "compile": {"disable": false} present */
    /* Added by the frontend (the fields above are the original contract). */
    const char *resolved_path;           /* the file actually read */
    int offload_param_pin_memory, offload_optimizer_pin_memory;
    int64_t stage3_param_persistence_threshold; /* "auto" -> -1 (HF: 10*hidden); default 1e5 */
    int64_t stage3_max_reuse_distance;   /* default 1e9 */
    int64_t sub_group_size;              /* default 1e9 */
    int wall_clock_breakdown;
    int64_t train_batch_size;            /* explicit number, or 0 for "auto"/absent */
    /* gradient_accumulation_steps / train_micro_batch_size_per_gpu /
     * gradient_clipping / bf16.enabled: "auto" or absent takes the YAML
     * value; an explicit value must agree with a value the YAML wrote, and is
     * adopted into the config when the YAML left that setting unset. */
} fe_deepspeed;

/* FSDP settings in FSDP2 terms (FSDP1 input is mapped onto these). */
typedef struct fe_fsdp {
    int enabled;
    int version;               /* version the user wrote: 1 or 2 */
    int offload_params;
    int cpu_ram_efficient_loading;
    const char *auto_wrap_policy;              /* "TRANSFORMER_BASED_WRAP" (default) or "SIZE_BASED_WRAP" */
    const char *transformer_layer_cls_to_wrap; /* e.g. "LlamaDecoderLayer"; NULL = model's decoder layer */
    fe_state_dict state_dict_type;
    int reshard_after_forward; /* FULL_SHARD -> 1, SHARD_GRAD_OP -> 0 */
    int activation_checkpointing;
    int64_t min_num_params;    /* SIZE_BASED_WRAP threshold, default 1e8 */
} fe_fsdp;

enum { FE_RL_NONE, FE_RL_DPO };
/* Which TRL trainer runs the preference pairs of FE_RL_DPO */
enum { FE_RL_DPO_TRAINER, FE_RL_SIMPO, FE_RL_ORPO };

typedef struct fe_config {
    const char *path;        /* the YAML file */
    const char *base_model;  /* resolved local HF model dir */
    const char *base_model_hub;     /* the Hub repo id base_model was resolved from (frontend/hub.h), or NULL */
    const char *base_model_revision; /* revision_of_model (model_revision), or NULL */
    fe_dataset *datasets;
    int ndatasets;
    fe_dataset *test_datasets;  /* test_datasets: evaluated instead of a val_set_size split */
    int ntest_datasets;
    const char *output_dir;  /* default "./outputs" */

    int64_t sequence_len;    /* default 512 (Axolotl's) */
    int sample_packing;
    int shuffle_merged_datasets; /* default 1: Axolotl's merged datasets shuffled (numpy's permutation) before the split */
    int dataset_exact_deduplication; /* samples equal to an earlier one dropped (each split) */
    int shuffle_before_merging;      /* shuffle_before_merging_datasets: each dataset shuffled before the merge */
    int curriculum_sampling;         /* training in the prepared data's order (HF's SequentialSampler) */
    int sample_packing_sequentially; /* next-fit packing in sampler order instead of Axolotl's first-fit */
    int attn_packs;                  /* the attention backend reads packed sequences (Axolotl's attn_supports_packing) */
    int attn_flex;                   /* attn_implementation: flex_attention (Axolotl's V2 multipack collator for any model) */
    const char *attn_impl;           /* the attention kernel asked for (attn_implementation, else the first legacy flag
                                      * set: "sdpa", "xformers", "flash_attention_2", ...); NULL: transformers' default */
    int multipack_real_batches;      /* packs of sequence_len, micro_batch_size of them a batch; unset: Axolotl's rule (attn_packs) */
    int64_t sample_packing_group_size; /* first-fit packing: samples per group (0: Axolotl's 100000) */
    int64_t sample_packing_bin_size;   /* first-fit packing: samples per row at most (0: Axolotl's 200) */
    int dataloader_drop_last;        /* unpacked rows: the last incomplete micro-batch dropped; unset: Axolotl's rule */
    int dataloader_drop_last_cfg;    /* the config's own dataloader_drop_last: true (Axolotl's packed step count) */
    int reinit_weights;              /* random weights as HF's from_config draws them, not the model's files */
    int group_by_length;             /* unpacked batches of similar lengths (HF's LengthGroupedSampler) */
    int fix_untrained;               /* fix_untrained_tokens: untrained embedding rows set to the mean (Axolotl's) */
    int64_t *fix_untrained_ids;      /* its list form: token ids fixed as well */
    int nfix_untrained_ids;
    double sample_packing_eff_est;   /* packed: Axolotl's step count from tokens / this efficiency (0: from the rows) */
    int64_t total_num_tokens;        /* with sample_packing_eff_est: the tokens it counts (0: the training set's) */
    int64_t min_sample_len;          /* shorter samples dropped; 0 (unset): Axolotl's 2 */
    int64_t eval_sequence_len;       /* test_datasets' length limit (0: sequence_len); at most sequence_len here */
    int64_t dataset_shard_num, dataset_shard_idx; /* -1: unset; both set: one contiguous shard of the prepared data */
    int eval_sample_packing;    /* eval rows packed: sample_packing unless false (Axolotl) */
    int64_t micro_batch_size;   /* default 1 */
    int64_t eval_batch_size;    /* default micro_batch_size */
    int64_t gradient_accumulation_steps; /* default 1 */
    double num_epochs;          /* default 1; > 0, fractions allowed (Axolotl's float, HF's num_train_epochs) */
    int64_t max_steps;          /* 0 = ceil(num_epochs x steps per epoch), as HF Trainer */
    double val_set_size;        /* default 0 */

    double learning_rate;    /* default 5e-5 (HF TrainingArguments' default) */
    fe_sched lr_scheduler;   /* default cosine (Axolotl default) */
    /* lr_scheduler_kwargs (HF's per-schedule arguments; NAN: HF's default) */
    double sched_num_cycles, sched_power, sched_lr_end, sched_timescale, sched_min_lr, sched_min_lr_rate;
    /* cosine_warmup_with_min_lr's warmup_lr_rate; warmup_stable_decay's num_decay_steps, num_stable_steps (NAN:
     * none given), min_lr_ratio, warmup_type and decay_type (NULL: linear, cosine) */
    double sched_warmup_lr_rate, sched_num_decay_steps, sched_num_stable_steps, sched_min_lr_ratio;
    const char *sched_warmup_type, *sched_decay_type;
    /* reduce_lr_on_plateau (ReduceLROnPlateau's arguments; NAN / NULL: torch's defaults; min_lr is sched_min_lr) */
    double sched_factor, sched_patience, sched_threshold, sched_cooldown, sched_eps;
    const char *sched_mode, *sched_threshold_mode;
    /* greedy (GreedyLR's own arguments beside those: warmup, max_lr, window_size, reset_start; NAN / -1: its
     * defaults) */
    double sched_greedy_warmup, sched_max_lr, sched_window, sched_reset_start;
    int sched_smooth;
    /* one_cycle (OneCycleLR's arguments; NAN / NULL / -1: torch's defaults; pct_start NAN: Axolotl's warmup steps
     * over the run's steps, known at run time) */
    double oc_pct_start, oc_div_factor, oc_final_div_factor, oc_base_momentum, oc_max_momentum;
    const char *oc_anneal; /* "cos" or "linear" */
    int oc_three_phase, oc_cycle_momentum;
    /* Axolotl's cosine variants: cosine_min_lr_ratio, cosine_constant_lr_ratio (NAN: unset), lr_quadratic_warmup */
    double cosine_min_lr_ratio, cosine_constant_lr_ratio;
    int lr_quadratic_warmup;
    int64_t warmup_steps;    /* -1: unset; warmup_ratio used when set, else Axolotl's default (runtime/train.c
                              * rt_axolotl_warmup) */
    double warmup_ratio;     /* NAN: unset */
    double weight_decay;     /* default 0.0 */
    double neftune_noise_alpha; /* NEFTune (transformers' TrainingArguments.neftune_noise_alpha; old name
                                 * noisy_embedding_alpha): noise on the input embeddings in training; 0 = off */
    /* rl (Axolotl's RLType): FE_RL_NONE, the causal-LM loss; FE_RL_DPO, TRL's DPOTrainer (rl: dpo, or rl: ipo):
     * a micro-batch is micro_batch_size preference pairs, 2 x micro_batch_size rows (the chosen completions, then
     * the rejected, TRL's concatenated batch); rl_beta (trl.beta, rl_beta, or the old dpo_beta; TRL's 0.1) */
    int rl;
    int rl_ipo;              /* rl: ipo (Axolotl: DPOTrainer with loss_type [ipo]) */
    int rl_kind;             /* FE_RL_DPO_TRAINER (dpo, ipo), FE_RL_SIMPO (CPOTrainer, loss_type simpo), FE_RL_ORPO */
    double cpo_alpha;        /* rl: simpo: the NLL term's weight (cpo_alpha; CPOConfig's 1.0) */
    double dpo_sft_weight;   /* rl: dpo: dpo_loss_type's sft term's weight (TRL's RPO: the chosen rows' token mean) */
    double simpo_gamma;      /* rl: simpo: the reward margin (simpo_gamma) */
    double rl_beta;
    const char *dpo_loss_types;   /* TRL's loss_type, comma-separated (dpo_loss_type; ipo with rl: ipo): "sigmoid" */
    const char *dpo_loss_weights; /* TRL's loss_weights, comma-separated, or NULL (all 1) */
    double dpo_label_smoothing;   /* TRL's label_smoothing (robust, exo_pair): dpo_label_smoothing under rl: dpo */
    const char *optimizer;   /* adamw_torch (default), adamw_torch_fused, adamw_hf: all AdamW */
    int optimizer_8bit;      /* adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit: AdamW with 8-bit block-wise state */
    double adam_beta1, adam_beta2, adam_epsilon; /* 0.9, 0.999, 1e-8 */
    double max_grad_norm;    /* default 1.0 (HF Trainer) */

    int bf16;                /* 1 when bf16: true (or auto), or bfloat16: true */
    int bf16_pure;           /* bfloat16: true (no AMP): bf16 weights and AdamW
                              * moments, no f32 master copy (not under DeepSpeed,
                              * whose optimizer keeps f32 master state) */
    int fp16;
    int tf32;
    int gradient_checkpointing;

    fe_adapter adapter;
    int64_t lora_r;
    double lora_alpha, lora_dropout;
    const char **lora_target_modules;
    int nlora_target_modules;
    const char **lora_modules_to_save; /* whole modules trained and saved beside the adapters (PEFT's modules_to_save) */
    int nlora_modules_to_save;
    const char **lora_target_parameters; /* PEFT's target_parameters: the MoE experts' / routers' weights themselves */
    int nlora_target_parameters;
    int lora_target_linear;
    int lora_all_linear_string; /* lora_target_modules: "all-linear" (PEFT resolves the string itself) */
    int peft_use_rslora;
    int peft_use_dora;    /* DoRA (PEFT's use_dora): a trained magnitude per output row */
    int peft_init_lora_weights; /* 0 true (PEFT's default), 1 gaussian, 2 false (PASS_LORA_INIT_*) */
    /* peft_layers_to_transform (PEFT's layers_to_transform): LoRA only on
     * the targets in these decoder layers; npeft_layers 0 = every layer.
     * peft_layers_int: written as one integer (PEFT keeps an int as an int) */
    int64_t *peft_layers;
    int npeft_layers, peft_layers_int;
    /* peft_trainable_token_indices (PEFT's trainable_token_indices): these
     * rows of embed_tokens (and of a tied lm_head) train as one delta param;
     * a list, or a mapping naming embed_tokens */
    int64_t *trainable_tokens;
    int ntrainable_tokens;
    /* peft_layers_pattern (PEFT's layers_pattern): the name of the layer
     * list in module names (Llama, Qwen, Mistral: "layers"); NULL = any.
     * peft_layers_pattern_str: written as one string, not a list */
    const char **peft_layers_pattern;
    int npeft_layers_pattern, peft_layers_pattern_str;
    /* LoRA+ (PEFT's create_loraplus_optimizer, as Axolotl calls it):
     * lora_B matrices and 1-d params train at learning_rate x ratio; 0 =
     * unset. loraplus_lr_embedding (default 1e-6) is the learning rate of
     * LoRA embedding adapters, which axo never creates. */
    double loraplus_lr_ratio, loraplus_lr_embedding;
    /* Axolotl's own optimizer groups (create_optimizer_grouped_parameters),
     * made when embedding_lr, embedding_lr_scale or lr_groups is set (and
     * not LoRA+): the embeddings (names with embed_tokens or lm_head) train
     * without weight decay at learning_rate x embedding_lr_scale (when not
     * 0), else at embedding_lr (when not 0), else at learning_rate; a
     * decaying param whose name holds a module of an lr group trains at that
     * group's lr. NAN: unset. */
    double embedding_lr, embedding_lr_scale;
    struct fe_lr_group {
        const char *name;
        const char **modules;
        int nmodules;
        double lr;
    } *lr_groups;
    int nlr_groups, lr_groups_set;
    const char *lora_model_dir; /* a saved adapter to continue (NULL: fresh adapters) */
    const char *resume_from;    /* resume_from_checkpoint: a checkpoint dir axo wrote (NULL: a fresh run) */
    int auto_resume;            /* auto_resume_from_checkpoints: the newest resumable checkpoint of output_dir */
    int load_in_4bit, load_in_8bit;
    int quantize_moe_experts; /* QLoRA: the MoE experts' stacked weights NF4 too (Axolotl's quantize_moe_experts) */

    int64_t sequence_parallel_degree; /* default 1 */
    const char *ring_attn_func;       /* NULL, "varlen_llama3", "batch_ring", ... */
    int64_t heads_k_stride;           /* default 1 */

    /* liger_* switches: -1 = not written (axo's default applies), 0/1 */
    int liger_rope, liger_rms_norm, liger_glu_activation, liger_layer_norm;
    int liger_cross_entropy, liger_fused_linear_cross_entropy;

    int64_t save_steps;      /* 0 = only the final save */
    int64_t saves_per_epoch; /* 0 = none; else Axolotl's save_steps = 1 / (saves_per_epoch x num_epochs) of the run */
    int64_t save_total_limit; /* keep only the newest N checkpoints (and the best); unset or 0: 4, Axolotl's */
    int save_strategy;        /* 0 unset (Axolotl: steps with save_steps / saves_per_epoch, else epoch), FE_SAVE_* */
    int eval_strategy;        /* 0 unset (steps with eval_steps / evals_per_epoch, else each epoch), FE_EVAL_* */
    int64_t logging_steps;   /* -1: unset (the runtime takes Axolotl's default) */
    int64_t eval_steps;      /* evaluate every N steps (val_set_size > 0); 0 = see below */
    double eval_steps_ratio; /* eval_steps given as a fraction of the total steps (HF: < 1) */
    int64_t evals_per_epoch; /* else Axolotl's eval_steps = 1 / (evals_per_epoch x num_epochs) of the run;
                              * neither: one at each epoch's end */
    uint64_t seed;           /* default 42 */
    int64_t early_stopping_patience; /* 0 = off; else stop after this many evaluations without a better eval_loss */
    int load_best_model_at_end;      /* as written (Axolotl's default false) */
    int greater_is_better;           /* metric_for_best_model (eval_loss): larger is better (HF default: no) */
    int load_best;                   /* derived as Axolotl passes it to HF: (load_best_model_at_end or
                                      * early_stopping_patience) and held-out data and save_steps a multiple of
                                      * eval_steps; the final model is then the best evaluated checkpoint's */
    int pad_to_sequence_len; /* -1: unset (Axolotl's None), else 0 / 1 */
    /* Axolotl's collator: pad_to_multiple_of (0: unset, 64), batch_flattening as its validator resolves it (a
     * micro-batch concatenated into one row without padding); they change only the width NEFTune's scale sees */
    int64_t pad_to_multiple_of;
    int batch_flattening;

    fe_deepspeed ds;
    fe_fsdp fsdp;

    /* Tokenization of datasets with a `type` (runtime/prompt.h). */
    int train_on_inputs;            /* default false */
    const char *dataset_prepared_path; /* tokenized datasets kept here between runs, or NULL */
    int excess_length;              /* excess_length_strategy: 0 drop (default), 1 truncate, 2 raise */
    const char *chat_template;      /* top-level `chat_template:` as written, or NULL */
    fe_jinja_src chat_template_jinja; /* top-level `chat_template_jinja:` */
    const char *out_chat_template;    /* derived: the top-level template as Jinja text, saved beside the trained
                                       * model as chat_template.jinja (Axolotl sets it on the tokenizer it saves) */
    const char *tok_chat_template;    /* derived: the tokenizer's chat template as Axolotl's tokenizer holds it (the
                                       * top-level one when chat datasets resolve it, else the tokenizer's own), or NULL */
    const char *chat_template_kwargs; /* chat_template_kwargs: as a JSON object, or NULL */
    const char *tokenizer_config;   /* resolved `tokenizer_config:` dir, or NULL (= base_model) */
    /* the tokenizer's name as Axolotl loads it (tokenizer_config, else base_model_config, else base_model, as
     * written): transformers' name_or_path, which one of Axolotl's chat-template rules looks at */
    const char *tokenizer_name_or_path;
    const char *special_bos, *special_eos, *special_pad, *special_unk; /* special_tokens: set (added if new), or NULL */
    const char **extra_special;     /* special_tokens.additional_special_tokens: added as special tokens */
    int nextra_special;
    const char **tokens;            /* tokens: added to the tokenizer (not special) */
    int ntokens;
    int64_t *override_ids;          /* added_tokens_overrides: id -> new content of that added token */
    const char **override_strs;
    int noverrides;
    int resize_32x;                 /* resize_token_embeddings_to_32x */
    int mean_resizing;              /* mean_resizing_embeddings (Axolotl's default false) */
    int shrink_embeddings;          /* shrink_embeddings */
    const char *lora_target_regex;  /* lora_target_modules given as one string: PEFT's regex over whole module names */
    const char *model_config;
    /* model_quantization_config: "Mxfp4Config" (gpt-oss), with model_quantization_config_kwargs' dequantize (-1:
     * not given); checked against the model in fe_check_model */
    const char *model_quant;
    int model_quant_dequantize;       /* model_config / overrides_of_model_config: a JSON object, or NULL */
    const char **unfrozen;          /* unfrozen_parameters: regexes; only matching params train (full fine-tune) */
    int nunfrozen;
    const char **eot_tokens;        /* eot_tokens: (NULL = [eos_token]) */
    int neot_tokens;
    rt_tok_setup tok;               /* resolved by fe_resolve_tokenizer; tok.path NULL when no dataset has a type */

    /* Added by the frontend. */
    double ddp_bucket_cap_mb; /* DDP gradient bucket capacity in MiB (torch default 25) */
} fe_config;

/* Loads and checks a config. deepspeed_override: the --deepspeed FILE or
 * NULL. Strings live in `arena`. Returns 0, or -1 with errors in d
 * (warnings are added to d either way). */
int fe_config_load(const char *yaml_path, const char *deepspeed_override, fe_config *out, ax_arena *arena,
                   ax_diag *d);

/* Axolotl keys that change what is trained and that axo does not implement
 * (config.c's table). A value is accepted when it is null or one of
 * `harmless`, YAML values separated by ", " ("" when only null is): false,
 * true, 0, [], {}, "" (an empty string), or a default (a number compares
 * numerically, any other text exactly); any other value is a compile error
 * saying what it does (`what`). */
typedef struct fe_refused_key {
    const char *name, *harmless, *what;
} fe_refused_key;
extern const fe_refused_key fe_refused_keys[];
extern const int fe_nrefused_keys;
/* Axolotl keys that only steer infrastructure or logging (not what is
 * trained): accepted silently, whatever their value. */
extern const char *const fe_infra_keys[];
extern const int fe_ninfra_keys;
/* For an infrastructure key that asks for something done beside training
 * (hub_model_id, use_wandb, wandb_project, merge_lora, ...), what axo does
 * not do: a value that turns it on gets a warning; NULL for other keys. */
const char *fe_unperformed_key(const char *name);
/* A name that two of config.c's tables (keys axo reads, fe_refused_keys,
 * fe_infra_keys) both hold, or NULL: each key has one meaning. */
const char *fe_config_tables_overlap(void);

/* An unfrozen_parameters pattern as Axolotl's LayerNamePattern splits it:
 * a regex, then optionally a row range "[start:end]", "[i]" (row i),
 * "[start:]", "[:end]" or "[]" (all). Returns 0 without a range (*base_len
 * = the whole length), 1 with one (*base_len: the regex part; *start; *end,
 * or -1 for "to the last row"), -1 for a range Axolotl refuses (end <=
 * start, or numbers past int64). */
int fe_unfrozen_parse(const char *pattern, size_t *base_len, int64_t *start, int64_t *end);

/* A canonical, deterministic text of every resolved setting (one
 * "key=value" line each, sorted): the plan's config echo and the cache key. */
void fe_config_canonical(const fe_config *c, ax_buf *out);

/* ---- model description (HF config.json) ----------------------------- */
typedef enum {
    FE_ARCH_LLAMA,
    FE_ARCH_QWEN2,
    FE_ARCH_QWEN3,
    FE_ARCH_MISTRAL,
    FE_ARCH_GEMMA3,
    FE_ARCH_GRANITE,
    FE_ARCH_SMOLLM3,
    FE_ARCH_OLMO2,
    FE_ARCH_OLMO3,
    FE_ARCH_PHI3,
    FE_ARCH_GPTOSS,
    FE_ARCH_OLMOE,
    FE_ARCH_GLM /* GlmForCausalLM, Glm4ForCausalLM */
} fe_arch;
typedef enum { FE_ROPE_DEFAULT, FE_ROPE_LINEAR, FE_ROPE_LLAMA3, FE_ROPE_DYNAMIC, FE_ROPE_YARN, FE_ROPE_LONGROPE } fe_rope_type;

typedef struct fe_model {
    const char *dir;
    fe_arch arch;
    const char *arch_name;   /* "LlamaForCausalLM" ... */
    const char *decoder_layer_cls; /* "LlamaDecoderLayer" ... */
    int64_t hidden_size, intermediate_size, num_hidden_layers;
    int64_t num_attention_heads, num_key_value_heads, head_dim;
    int64_t vocab_size, max_position_embeddings;
    double rope_theta;
    fe_rope_type rope_type;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_original_max_position_embeddings;
    double rms_norm_eps;
    int tie_word_embeddings;
    int attention_bias;      /* q/k/v projections carry a bias (Qwen2) */
    int qk_norm;             /* RMSNorm on q and k per head (Qwen3) */
    int64_t sliding_window;  /* 0 = none (Qwen2/3: only when use_sliding_window) */
    int64_t *layer_window;   /* [num_hidden_layers]: each layer's sliding window (0 = full attention) */
    /* Gemma 3 (Gemma3ForCausalLM): norms y = norm(x) (1 + w) (norm_offset 1), pre/post norms around the
     * attention and the MLP, embeddings scaled by sqrt(hidden) in the weights' dtype, tanh-GELU GLU, attention
     * scale query_pre_attn_scalar^-0.5, the sliding layers' own RoPE base (default RoPE) */
    int gemma;
    double norm_offset;          /* 0, Gemma 1 */
    double query_pre_attn_scalar; /* Gemma: attention scale^-2; 0 = head_dim */
    double rope_local_theta;     /* Gemma: the sliding layers' rope_theta (rope_local_base_freq) */
    /* Gemma 2 (Gemma2ForCausalLM): Gemma 3's layer without the q/k norms, one RoPE for every layer, and tanh
     * soft-capping c tanh(x / c) of the attention scores (attn_logit_softcapping) and of the logits
     * (final_logit_softcapping); 0: none */
    int gemma2;
    double attn_softcap, final_softcap;
    /* Granite (GraniteForCausalLM): embeddings times embedding_multiplier, scores times attention_multiplier (not
     * head_dim^-0.5), each residual branch times residual_multiplier, logits divided by logits_scaling; 0 when not
     * Granite */
    double embedding_multiplier, attention_multiplier, residual_multiplier, logits_scaling;
    /* SmolLM3: no_rope_layers (1: the layer takes RoPE, 0: none, NoPE); NULL: every layer takes it */
    int *layer_rope;
    /* OLMo 2 / 3: norms after the attention and the MLP only (none before), q/k RMSNorm over the whole projection
     * (heads x head_dim) before the heads are split */
    int post_norm_only;
    int qk_norm_full; /* q_norm / k_norm over the whole projection (OLMo 2/3's, OLMoE's), not per head */
    int ministral3;   /* Ministral 3 (Ministral3ForCausalLM, or Mistral 3's "ministral3" text model): Mistral's layer */
    double llama4_beta;    /* its queries' scale 1 + beta ln(1 + floor(pos / llama4_max)) (0: none) */
    int64_t llama4_max;    /* (rope_parameters.llama_4_scaling_beta, original_max_position_embeddings) */
    /* the sliding layers take their own RoPE (default type, base rope_local_theta): Gemma 3, OLMo 3 */
    int local_rope;
    /* Phi-3: q, k, v from one qkv_proj (rows q | k | v) and gate, up from one gate_up_proj (gate first), each a
     * fused matmul whose output is sliced (PEFT adapts the fused module) */
    int fused_proj;
    /* Mixture of experts (Qwen3MoeForCausalLM, MixtralForCausalLM): layer_moe[l] 1 for a sparse layer (Qwen3-MoE's
     * mlp_only_layers and decoder_sparse_step make others dense); num_experts of moe_intermediate_size each,
     * num_experts_per_tok chosen per token, their weights renormalised to sum 1 when norm_topk_prob (Mixtral:
     * always); the checkpoint's names: <moe_block>.gate.weight, <moe_block>.experts.N.<moe_parts[0..2]>.weight (gate,
     * up, down): mlp / gate_proj, up_proj, down_proj, Mixtral's block_sparse_moe / w1, w3, w2 */
    int *layer_moe;
    int64_t num_experts, num_experts_per_tok, moe_intermediate_size;
    /* Qwen2-MoE: a dense SwiGLU shared expert beside the routed ones, its output times sigmoid(x . shared_expert_gate)
     * (0: none) */
    int64_t shared_expert_intermediate_size;
    /* GLM (GlmForCausalLM): Llama's layer with q/k/v biases (no o_proj bias), one fused gate_up_proj, RoPE on the
     * interleaved pairs (2i, 2i+1) of the first half of each head; GLM-4 (Glm4ForCausalLM) adds norms after the
     * attention and after the MLP (post_self_attn_layernorm, post_mlp_layernorm) */
    int rope_interleave, fused_mlp, glm4;
    int norm_topk_prob;
    /* output_router_logits: transformers adds router_aux_loss_coef x the routers' load-balancing loss to the loss */
    int output_router_logits;
    double router_aux_loss_coef;
    const char *moe_block;
    const char *moe_parts[3];
    /* gpt-oss (GptOssForCausalLM): every layer's attention has a learned sink per head (self_attn.sinks), its
     * router a bias (mlp.router.weight, .bias), its experts transformers 5's stacked, transposed and biased
     * weights (mlp.experts.gate_up_proj [E, H, 2I] gate/up interleaved, down_proj [E, I, H], *_bias) with the
     * clamped GLU (swiglu_alpha, swiglu_limit); the checkpoint may hold them as MXFP4 (*_blocks, *_scales) */
    int attn_sinks;
    double swiglu_alpha, swiglu_limit;
    int mxfp4_checkpoint; /* config.json's quantization_config was MXFP4 (dropped from config_json: axo dequantizes) */
    const char *hidden_act;  /* "silu" (SwiGLU), or Gemma's "gelu_pytorch_tanh" (GeGLU) */
    const char *torch_dtype;
    int64_t bos_token_id, eos_token_id, pad_token_id; /* -1 if absent */
    double initializer_range; /* HF's init std (default 0.02): random weights and drawn rows */
    char *config_json;       /* the file's bytes (arena), for the cache key */
    size_t config_json_len;
    /* Added by the frontend. */
    int head_dim_explicit;   /* config.json wrote head_dim */
    int64_t file_vocab_size; /* tokens added (fe_resolve_tokenizer) resized the vocab: the embedding / lm_head rows in
                              * the safetensors (vocab_size is the new count); 0 when not resized */
    /* RoPE as transformers 5 computes it (modeling_rope_utils.py): attention_factor is HF's attention_scaling, the
     * cos/sin multiplier (yarn's and longrope's, from their formulas unless the config gives it; 1 for the others);
     * yarn's beta_fast / beta_slow / truncate; longrope's short / long factors (n_factors each); the rotated share of
     * each head (partial_rotary_factor, Phi-3 only: 1 elsewhere) */
    double rope_attention_factor, rope_beta_fast, rope_beta_slow;
    int rope_truncate;
    int rope_n_factors;
    double *rope_short_factor, *rope_long_factor;
    double rope_partial_factor;
    /* Gemma3ForConditionalGeneration (gemma-3-4b and larger) and Mistral3ForConditionalGeneration
     * (Mistral-Small-3.1/3.2) trained on text: their language model only, the text_config's Gemma3ForCausalLM /
     * MistralForCausalLM exactly (transformers gives each pair the same loss and gradients on input_ids). Two
     * names per text parameter: the module's, which PEFT, unfrozen_parameters and
     * lora_target_modules see (model.language_model.layers.0...), the checkpoint's, as the weights name it (the
     * Hub's language_model.model.layers.0..., or model.language_model.layers.0...), saved back the same way as
     * transformers re-saves the layout it loaded; the vision tower and projector are never run and are copied
     * unchanged into every saved model. NULL prefixes: a causal LM's "model.". */
    int multimodal;
    const char *text_module; /* "model.language_model." */
    const char *text_ckpt;   /* "language_model.model." or "model.language_model." */
    const char *head_ckpt;   /* an untied lm_head's name in the checkpoint */
    const char **foreign;    /* the module names of the rest of the checkpoint (the vision tower, the projector) */
    int nforeign;
    double text_initializer_range; /* text_config's: the text weights' init std (initializer_range: the top level's,
                                    * for resized rows and an untied lm_head); 0: the same */
    int carried;             /* weights were found: every saved model must carry the tower */
    int untied_by_weights;   /* the config ties (tie_word_embeddings, or its default), but the weights hold an
                              * lm_head of other values: untied, as transformers loads it (and PEFT, reading the
                              * config, still ties its trainable tokens: refused) */
} fe_model;

/* When a dataset has a `type`, or the config adds tokens (tokens,
 * special_tokens, added_tokens_overrides): finds the tokenizer (tokenizer.json in
 * tokenizer_config or base_model), its BOS/EOS (tokenizer_config.json, then
 * special_tokens:), eot_tokens, each chat_template dataset's template; loads
 * the tokenizer once to check every token and that its ids fit the model's
 * vocab. Tokens the config adds are added as Axolotl adds them, and the
 * model's vocab is resized as Axolotl resizes it (m->vocab_size becomes
 * the new row count, m->file_vocab_size the rows in the safetensors, and
 * m->config_json says the new vocab_size). 0, or -1 with errors naming the
 * file or key. */
int fe_resolve_tokenizer(fe_config *c, fe_model *m, ax_arena *ar, ax_diag *d);

/* Reads DIR/config.json. Returns 0 or -1 with errors naming
 * DIR/config.json and the key. */
int fe_model_load(const char *dir, fe_model *out, ax_arena *arena, ax_diag *d);
/* The same with `overrides` (a JSON object, or NULL): each of its keys
 * replaces config.json's (Axolotl's model_config / overrides_of_model_config
 * setattr on the loaded config); m->config_json is the result, which the
 * trained model's config.json will be. Errors name "DIR/config.json (with
 * model_config)". */
int fe_model_load_with(const char *dir, const char *overrides, fe_model *out, ax_arena *arena, ax_diag *d);

/* Cross-checks config against model (heads divide hidden, sequence_len vs
 * sequence_parallel_degree and max_position_embeddings, fsdp wrap class
 * matches the model's decoder layer, ...). world_size: ranks the plan is
 * for. Returns 0 or -1. */
int fe_check_config_model(const fe_config *c, const fe_model *m, int world_size, ax_diag *d);

/* `axoc fetch deepspeed_configs`: writes the bundled DeepSpeed JSONs into
 * dest_dir (created). An existing file whose bytes differ is left alone
 * (warning) unless force. Returns 0 or -1. */
int fe_fetch_deepspeed_configs(const char *dest_dir, int force, ax_diag *d);

/* The DeepSpeed JSONs bundled into the library (configs/deepspeed/):
 * count, and the i-th file's name ("zero1.json") and bytes; NULL when i is
 * out of range. */
int fe_deepspeed_bundled_count(void);
const char *fe_deepspeed_bundled(int i, const unsigned char **data, size_t *len);

/* The model-dependent DeepSpeed "auto"s, resolved as the HF Trainer does
 * from the hidden size H: reduce_bucket_size H*H, stage3_prefetch_bucket_size
 * 0.9*H*H, stage3_param_persistence_threshold 10*H; explicit values pass
 * through. */
void fe_deepspeed_model_autos(const fe_deepspeed *ds, int64_t hidden_size, int64_t *reduce_bucket_size,
                              int64_t *prefetch_bucket_size, int64_t *param_persistence_threshold);

/* NEFTune's batch width as HF sees it: Axolotl's collator pads a batch's longest row up to a multiple of this
 * (with M = pad_to_multiple_of or 64: pad_to_sequence_len: M x ceil(sequence_len / M), which Axolotl turns on with
 * sample_packing when unset; unset: M; false: 1, the longest row itself; batch_flattening: 1, and the width is the
 * micro-batch's tokens in one row). */
int64_t fe_neftune_multiple(const fe_config *c);

#endif
