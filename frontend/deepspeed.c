/* deepspeed.c — the DeepSpeed JSON (jansson), "auto" resolved from the
 * YAML as the HF Trainer does (see config.h).
 *
 * Diagnostics: where = "FILE: key.path", msg = "expected ..., found ...".
 * Every object's keys are checked against what axo knows; unknown keys warn,
 * and known keys that ask for something axo does not implement (NVMe
 * offload, fp16, ZeRO++ ...) are errors. */
#include "frontend/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

typedef struct jctx {
    const char *file;
    ax_diag *d;
    ax_arena *ar;
    fe_config *c;
    const fe_yaml_set *set;
} jctx;

static const char *where(const jctx *J, const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s: %s", J->file, path);
    return buf;
}

static const char *found(const json_t *v, char *buf, size_t cap) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s) {
        snprintf(buf, cap, "an unprintable value");
    } else if (strlen(s) > 60) {
        snprintf(buf, cap, "%.57s...", s);
    } else {
        snprintf(buf, cap, "%s", s);
    }
    free(s);
    return buf;
}

static void jerr(const jctx *J, const char *path, const json_t *v, const char *expected) {
    char w[512], f[128];
    ax_error(J->d, where(J, path, w, sizeof w), "expected %s, found %s", expected, found(v, f, sizeof f));
}

static int is_auto(const json_t *v) { return json_is_string(v) && !strcmp(json_string_value(v), "auto"); }

static int j_bool(const jctx *J, const char *path, const json_t *v, int *out) {
    if (!json_is_boolean(v)) {
        jerr(J, path, v, "true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* An integer in [min, max]; JSON reals that are whole (5e8) count. */
static int j_int(const jctx *J, const char *path, const json_t *v, int64_t min, int64_t max, const char *expected,
                 int64_t *out) {
    double x;
    if (json_is_integer(v))
        x = (double)json_integer_value(v);
    else if (json_is_real(v))
        x = json_real_value(v);
    else
        x = NAN;
    if (!(x == floor(x)) || x < (double)min || x > (double)max) {
        jerr(J, path, v, expected);
        return -1;
    }
    *out = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)x;
    return 0;
}

static int j_num(const jctx *J, const char *path, const json_t *v, double *out) {
    if (!json_is_number(v) || json_number_value(v) < 0) {
        jerr(J, path, v, "a non-negative number or \"auto\"");
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int in_list(const char *k, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(k, *list)) return 1;
    return 0;
}

/* Warns about keys of obj outside `known` (prefix: obj's key path). */
static void check_keys(const jctx *J, const json_t *obj, const char *prefix, const char *const *known) {
    const char *k;
    json_t *v;
    char w[512];
    json_object_foreach((json_t *)obj, k, v) {
        if (in_list(k, known)) continue;
        snprintf(w, sizeof w, "%s: %s%s%s", J->file, prefix, prefix[0] ? "." : "", k);
        ax_warn(J->d, w, "unknown DeepSpeed key, ignored");
    }
}

static json_t *object_at(const jctx *J, json_t *root, const char *key) {
    json_t *o = json_object_get(root, key);
    if (o && !json_is_object(o)) {
        jerr(J, key, o, "an object");
        return NULL;
    }
    return o;
}

/* offload_param / offload_optimizer: device cpu|none; nvme is not
 * implemented. */
static void offload(const jctx *J, json_t *zo, const char *key, fe_offload *dev, int *pin) {
    static const char *const known[] = {"device", "pin_memory", "buffer_count", "buffer_size", "max_in_cpu",
                                        "nvme_path", "fast_init", "ratio", "pipeline", "pipeline_read",
                                        "pipeline_write", NULL};
    char path[128], w[512];
    json_t *o = json_object_get(zo, key);
    if (!o || json_is_null(o)) return;
    snprintf(path, sizeof path, "zero_optimization.%s", key);
    if (!json_is_object(o)) {
        jerr(J, path, o, "an object");
        return;
    }
    check_keys(J, o, path, known);
    json_t *d = json_object_get(o, "device");
    snprintf(path, sizeof path, "zero_optimization.%s.device", key);
    if (d && json_is_string(d) && !strcasecmp(json_string_value(d), "cpu")) {
        *dev = FE_OFFLOAD_CPU;
    } else if (!d || json_is_null(d) || (json_is_string(d) && !strcasecmp(json_string_value(d), "none"))) {
        *dev = FE_OFFLOAD_NONE;
    } else if (json_is_string(d) && !strcasecmp(json_string_value(d), "nvme")) {
        ax_error(J->d, where(J, path, w, sizeof w), "offload to nvme is not implemented; use \"cpu\" or \"none\"");
    } else {
        jerr(J, path, d, "\"cpu\" or \"none\"");
    }
    json_t *p = json_object_get(o, "pin_memory");
    snprintf(path, sizeof path, "zero_optimization.%s.pin_memory", key);
    if (p) j_bool(J, path, p, pin);
}

static void zero_optimization(const jctx *J, json_t *zo, fe_deepspeed *ds) {
    static const char *const known[] = {
        "stage", "offload_param", "offload_optimizer", "overlap_comm", "contiguous_gradients", "reduce_bucket_size",
        "reduce_scatter", "allgather_partitions", "allgather_bucket_size", "round_robin_gradients",
        "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "stage3_max_live_parameters",
        "stage3_max_reuse_distance", "stage3_gather_16bit_weights_on_model_save",
        "stage3_gather_fp16_weights_on_model_save", "gather_16bit_weights_on_model_save", "sub_group_size",
        "load_from_fp32_weights", "elastic_checkpoint", "ignore_unused_parameters", "memory_efficient_linear",
        "zero_hpz_partition_size", "zero_quantized_weights", "zero_quantized_gradients", "mics_shard_size",
        "cpu_offload", "cpu_offload_params", "log_trace_cache_warnings", NULL};
    char w[512];
    check_keys(J, zo, "zero_optimization", known);
    json_t *v;
    int64_t n;
    if ((v = json_object_get(zo, "stage")) && j_int(J, "zero_optimization.stage", v, 0, 3, "an integer 0-3", &n) == 0)
        ds->zero_stage = (int)n;
    offload(J, zo, "offload_param", &ds->offload_param, &ds->offload_param_pin_memory);
    offload(J, zo, "offload_optimizer", &ds->offload_optimizer, &ds->offload_optimizer_pin_memory);
    if (ds->offload_param == FE_OFFLOAD_CPU && ds->zero_stage != 3)
        ax_error(J->d, where(J, "zero_optimization.offload_param", w, sizeof w),
                 "expected zero_optimization.stage 3 (DeepSpeed offloads parameters only at stage 3), found stage %d",
                 ds->zero_stage);
    if (ds->offload_optimizer == FE_OFFLOAD_CPU && ds->zero_stage == 0)
        ax_error(J->d, where(J, "zero_optimization.offload_optimizer", w, sizeof w),
                 "expected zero_optimization.stage 1-3 (optimizer offload needs ZeRO), found stage 0");
    ds->overlap_comm = ds->zero_stage == 3; /* DeepSpeed's default */
    if ((v = json_object_get(zo, "overlap_comm"))) j_bool(J, "zero_optimization.overlap_comm", v, &ds->overlap_comm);
    if ((v = json_object_get(zo, "contiguous_gradients")))
        j_bool(J, "zero_optimization.contiguous_gradients", v, &ds->contiguous_gradients);
    static const struct {
        const char *key;
        size_t off;
        int64_t auto_value; /* INT64_MIN: "auto" not allowed */
    } ints[] = {
        {"reduce_bucket_size", offsetof(fe_deepspeed, reduce_bucket_size), 0},
        {"stage3_prefetch_bucket_size", offsetof(fe_deepspeed, stage3_prefetch_bucket_size), 0},
        {"stage3_param_persistence_threshold", offsetof(fe_deepspeed, stage3_param_persistence_threshold), -1},
        {"stage3_max_live_parameters", offsetof(fe_deepspeed, stage3_max_live_parameters), INT64_MIN},
        {"stage3_max_reuse_distance", offsetof(fe_deepspeed, stage3_max_reuse_distance), INT64_MIN},
        {"sub_group_size", offsetof(fe_deepspeed, sub_group_size), INT64_MIN},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(ints); i++) {
        char path[128];
        snprintf(path, sizeof path, "zero_optimization.%s", ints[i].key);
        v = json_object_get(zo, ints[i].key);
        int64_t *dst = (int64_t *)((char *)ds + ints[i].off);
        if (!v) continue;
        if (is_auto(v) && ints[i].auto_value != INT64_MIN)
            *dst = ints[i].auto_value;
        else
            j_int(J, path, v, 0, INT64_MAX / 2,
                  ints[i].auto_value != INT64_MIN ? "a non-negative integer or \"auto\"" : "a non-negative integer", dst);
    }
    const char *g16[] = {"stage3_gather_16bit_weights_on_model_save", "stage3_gather_fp16_weights_on_model_save",
                         "gather_16bit_weights_on_model_save"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "zero_optimization.%s", g16[i]);
        if ((v = json_object_get(zo, g16[i]))) j_bool(J, path, v, &ds->stage3_gather_16bit_weights_on_model_save);
    }
    /* switches that ask for machinery axo does not have */
    int b;
    if ((v = json_object_get(zo, "zero_quantized_weights")) && j_bool(J, "zero_optimization.zero_quantized_weights", v, &b) == 0 && b)
        ax_error(J->d, where(J, "zero_optimization.zero_quantized_weights", w, sizeof w), "ZeRO++ quantized weights are not implemented");
    if ((v = json_object_get(zo, "zero_quantized_gradients")) && j_bool(J, "zero_optimization.zero_quantized_gradients", v, &b) == 0 && b)
        ax_error(J->d, where(J, "zero_optimization.zero_quantized_gradients", w, sizeof w), "ZeRO++ quantized gradients are not implemented");
    if ((v = json_object_get(zo, "zero_hpz_partition_size")) &&
        j_int(J, "zero_optimization.zero_hpz_partition_size", v, 0, INT64_MAX / 2, "a positive integer", &n) == 0 && n > 1)
        ax_error(J->d, where(J, "zero_optimization.zero_hpz_partition_size", w, sizeof w),
                 "ZeRO++ hierarchical partitioning (%lld) is not implemented; use 1", (long long)n);
    if ((v = json_object_get(zo, "mics_shard_size")) &&
        j_int(J, "zero_optimization.mics_shard_size", v, -1, INT64_MAX / 2, "an integer", &n) == 0 && n > 0)
        ax_error(J->d, where(J, "zero_optimization.mics_shard_size", w, sizeof w), "MiCS sharding is not implemented");
    if ((v = json_object_get(zo, "cpu_offload")) && j_bool(J, "zero_optimization.cpu_offload", v, &b) == 0 && b)
        ax_error(J->d, where(J, "zero_optimization.cpu_offload", w, sizeof w),
                 "the old cpu_offload switch is not supported; use \"offload_optimizer\": {\"device\": \"cpu\"}");
}

/* A setting DeepSpeed and the YAML both have: "auto" (or absent) takes
 * the YAML value; an explicit value must equal a value the YAML wrote and
 * is otherwise adopted. Returns the resolved value through *yaml_val. */
static void match_int(const jctx *J, json_t *root, const char *key, const char *yaml_key, int yaml_set, int64_t *yaml_val,
                      int64_t *ds_val) {
    json_t *v = json_object_get(root, key);
    char w[512];
    int64_t n;
    if (v && !is_auto(v)) {
        if (j_int(J, key, v, 1, INT64_MAX / 2, "a positive integer or \"auto\"", &n) != 0) return;
        if (yaml_set && n != *yaml_val) {
            ax_error(J->d, where(J, key, w, sizeof w), "%lld disagrees with the YAML's %s: %lld; expected \"auto\" or %lld",
                     (long long)n, yaml_key, (long long)*yaml_val, (long long)*yaml_val);
            return;
        }
        if (!yaml_set && n != *yaml_val)
            ax_diag_add(J->d, AX_SEV_NOTE, where(J, key, w, sizeof w), "%s: %lld taken from the DeepSpeed config", yaml_key,
                        (long long)n);
        *yaml_val = n;
    }
    if (ds_val) *ds_val = *yaml_val;
}

/* bf16 / fp16 sections: {"enabled": true|false|"auto", ...}. */
static void precision(const jctx *J, json_t *root, const char *key, int *ds_flag) {
    static const char *const known_bf16[] = {"enabled", "immediate_grad_update", "check_grad_overflow", NULL};
    static const char *const known_fp16[] = {"enabled", "auto_cast", "loss_scale", "initial_scale_power",
                                             "loss_scale_window", "hysteresis", "consecutive_hysteresis",
                                             "min_loss_scale", "fp16_master_weights_and_grads", NULL};
    fe_config *c = J->c;
    int is_bf16 = !strcmp(key, "bf16");
    char path[64], w[512];
    json_t *o = object_at(J, root, key);
    *ds_flag = is_bf16 ? c->bf16 : c->fp16; /* absent: as the YAML says */
    if (!o) return;
    check_keys(J, o, key, is_bf16 ? known_bf16 : known_fp16);
    json_t *e = json_object_get(o, "enabled");
    snprintf(path, sizeof path, "%s.enabled", key);
    int b;
    if (!e || is_auto(e)) return;
    if (j_bool(J, path, e, &b) != 0) return;
    if (!is_bf16) {
        if (b) ax_error(J->d, where(J, path, w, sizeof w), "fp16 training is not implemented; use bf16 or \"auto\"");
        return;
    }
    if (J->set->bf16 && b != c->bf16) {
        ax_error(J->d, where(J, path, w, sizeof w), "%s disagrees with the YAML's bf16: %s; expected \"auto\" or %s",
                 b ? "true" : "false", c->bf16 ? "true" : "false", c->bf16 ? "true" : "false");
        return;
    }
    c->bf16 = b;
    *ds_flag = b;
}

/* "optimizer": {"type": "AdamW", "params": {...}}: only AdamW, and each
 * param "auto" or equal to the YAML's value. */
static void optimizer(const jctx *J, json_t *root) {
    static const char *const known[] = {"type", "params", NULL};
    static const char *const known_p[] = {"lr", "betas", "eps", "weight_decay", "torch_adam", "adam_w_mode", NULL};
    json_t *o = object_at(J, root, "optimizer");
    char w[512];
    if (!o) return;
    J->c->ds.optimizer_section = 1;
    check_keys(J, o, "optimizer", known);
    json_t *t = json_object_get(o, "type");
    if (!json_is_string(t) || (strcasecmp(json_string_value(t), "AdamW") && strcasecmp(json_string_value(t), "Adam"))) {
        jerr(J, "optimizer.type", t ? t : json_null(), "\"AdamW\" (axo's optimizer is AdamW)");
        return;
    }
    json_t *p = json_object_get(o, "params");
    if (!p) return;
    if (!json_is_object(p)) {
        jerr(J, "optimizer.params", p, "an object");
        return;
    }
    check_keys(J, p, "optimizer.params", known_p);
    fe_config *c = J->c;
    struct {
        const char *key, *yaml_key;
        json_t *v;
        double *dst;
        int set;
    } f[] = {
        {"optimizer.params.lr", "learning_rate", json_object_get(p, "lr"), &c->learning_rate, J->set->learning_rate},
        {"optimizer.params.eps", "adam_epsilon", json_object_get(p, "eps"), &c->adam_epsilon, J->set->adam_epsilon},
        {"optimizer.params.weight_decay", "weight_decay", json_object_get(p, "weight_decay"), &c->weight_decay,
         J->set->weight_decay},
        {"optimizer.params.betas[0]", "adam_beta1", NULL, &c->adam_beta1, J->set->adam_beta1},
        {"optimizer.params.betas[1]", "adam_beta2", NULL, &c->adam_beta2, J->set->adam_beta2},
    };
    json_t *betas = json_object_get(p, "betas");
    if (betas && !is_auto(betas)) {
        if (!json_is_array(betas) || json_array_size(betas) != 2)
            jerr(J, "optimizer.params.betas", betas, "[beta1, beta2] or \"auto\"");
        else
            f[3].v = json_array_get(betas, 0), f[4].v = json_array_get(betas, 1);
    }
    for (size_t i = 0; i < AX_ARRAY_LEN(f); i++) {
        double x;
        if (!f[i].v || is_auto(f[i].v) || j_num(J, f[i].key, f[i].v, &x) != 0) continue;
        if (f[i].set && x != *f[i].dst) {
            ax_error(J->d, where(J, f[i].key, w, sizeof w), "%.17g disagrees with the YAML's %s: %.17g; expected \"auto\"",
                     x, f[i].yaml_key, *f[i].dst);
            continue;
        }
        *f[i].dst = x;
    }
}

/* "scheduler": the type must be the YAML's lr_scheduler and every param
 * "auto" (axo derives warmup and decay from the YAML). */
static void scheduler(const jctx *J, json_t *root) {
    static const char *const known[] = {"type", "params", NULL};
    static const char *const types[] = {"WarmupLR", "WarmupDecayLR", "WarmupCosineLR"};
    /* WarmupLR warms up, then holds: HF's constant_with_warmup (a YAML `constant` takes DeepSpeed's) */
    static const fe_sched same[] = {FE_SCHED_CONSTANT_WITH_WARMUP, FE_SCHED_LINEAR, FE_SCHED_COSINE};
    json_t *o = object_at(J, root, "scheduler");
    char w[512], f[128];
    if (!o) return;
    check_keys(J, o, "scheduler", known);
    json_t *t = json_object_get(o, "type");
    int which = -1;
    for (int i = 0; i < 3 && json_is_string(t); i++)
        if (!strcmp(json_string_value(t), types[i])) which = i;
    if (which < 0) {
        jerr(J, "scheduler.type", t ? t : json_null(), "WarmupLR, WarmupDecayLR or WarmupCosineLR");
        return;
    }
    if (which == 0 && J->c->lr_scheduler == FE_SCHED_CONSTANT) J->c->lr_scheduler = FE_SCHED_CONSTANT_WITH_WARMUP;
    if (same[which] != J->c->lr_scheduler) {
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (same[i] == J->c->lr_scheduler) want = i;
        ax_error(J->d, where(J, "scheduler.type", w, sizeof w), "%s disagrees with the YAML's lr_scheduler: %s; expected %s",
                 types[which], fe_sched_names[J->c->lr_scheduler],
                 want >= 0 ? types[want] : "no scheduler section (DeepSpeed has none of that shape)");
        return;
    }
    json_t *p = json_object_get(o, "params");
    const char *k;
    json_t *v;
    if (p && json_is_object(p)) {
        json_object_foreach(p, k, v) {
            if (is_auto(v)) continue;
            char path[256];
            snprintf(path, sizeof path, "scheduler.params.%s", k);
            ax_error(J->d, where(J, path, w, sizeof w),
                     "expected \"auto\" (axo takes warmup and decay from the YAML), found %s", found(v, f, sizeof f));
        }
    }
}

int fe_deepspeed_load(const char *path, fe_config *c, const fe_yaml_set *set, ax_arena *ar, ax_diag *d) {
    static const char *const known[] = {
        "zero_optimization", "bf16", "fp16", "gradient_clipping", "gradient_accumulation_steps", "train_batch_size",
        "train_micro_batch_size_per_gpu", "wall_clock_breakdown", "compile", "steps_per_print", "optimizer",
        "scheduler", "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer", "prescale_gradients",
        "gradient_predivide_factor", "communication_data_type", "flops_profiler", "tensorboard", "wandb",
        "csv_monitor", "comms_logger", "memory_breakdown", "dump_state", "activation_checkpointing", "amp",
        "data_types", NULL};
    int errors0 = d->nerrors;
    fe_deepspeed *ds = &c->ds;
    const char *given = ds->path;
    memset(ds, 0, sizeof *ds);
    ds->path = given ? given : ax_arena_strdup(ar, path);
    ds->resolved_path = ax_arena_strdup(ar, path);
    ds->contiguous_gradients = 1;
    ds->reduce_bucket_size = 500000000;
    ds->stage3_prefetch_bucket_size = 50000000;
    ds->stage3_param_persistence_threshold = 100000;
    ds->stage3_max_live_parameters = 1000000000;
    ds->stage3_max_reuse_distance = 1000000000;
    ds->sub_group_size = 1000000000;
    jctx J = {.file = ds->path, .d = d, .ar = ar, .c = c, .set = set};
    size_t len;
    char *text = ax_read_file(path, &len, d);
    if (!text) return -1;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    char w[512];
    if (!root) {
        ax_error(d, ax_loc(w, sizeof w, ds->path, je.line, je.column), "invalid JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        char f[128];
        ax_error(d, ds->path, "expected a DeepSpeed JSON object, found %s", found(root, f, sizeof f));
        json_decref(root);
        return -1;
    }
    ds->present = 1;
    check_keys(&J, root, "", known);
    json_t *v, *zo = object_at(&J, root, "zero_optimization");
    if (zo) zero_optimization(&J, zo, ds);
    else ds->overlap_comm = 0;

    precision(&J, root, "bf16", &ds->bf16);
    precision(&J, root, "fp16", &ds->fp16);
    if (ds->bf16 && ds->fp16) ax_error(d, ds->path, "expected at most one of bf16.enabled and fp16.enabled, found both");

    /* gradient_clipping: "auto"/absent -> max_grad_norm */
    v = json_object_get(root, "gradient_clipping");
    ds->gradient_clipping = c->max_grad_norm;
    if (v && !is_auto(v)) {
        double x;
        if (j_num(&J, "gradient_clipping", v, &x) == 0) {
            if (set->max_grad_norm && x != c->max_grad_norm)
                ax_error(d, where(&J, "gradient_clipping", w, sizeof w),
                         "%.17g disagrees with the YAML's max_grad_norm: %.17g; expected \"auto\" or %.17g", x,
                         c->max_grad_norm, c->max_grad_norm);
            else
                c->max_grad_norm = ds->gradient_clipping = x;
        }
    }
    match_int(&J, root, "gradient_accumulation_steps", "gradient_accumulation_steps", set->gradient_accumulation_steps,
              &c->gradient_accumulation_steps, NULL);
    match_int(&J, root, "train_micro_batch_size_per_gpu", "micro_batch_size", set->micro_batch_size,
              &c->micro_batch_size, NULL);
    v = json_object_get(root, "train_batch_size");
    if (v && !is_auto(v)) j_int(&J, "train_batch_size", v, 1, INT64_MAX / 2, "a positive integer or \"auto\"", &ds->train_batch_size);
    if ((v = json_object_get(root, "wall_clock_breakdown"))) j_bool(&J, "wall_clock_breakdown", v, &ds->wall_clock_breakdown);

    json_t *cp = object_at(&J, root, "compile");
    if (cp) {
        static const char *const known_c[] = {"disable", "backend", "kwargs", NULL};
        check_keys(&J, cp, "compile", known_c);
        int dis = 0;
        if ((v = json_object_get(cp, "disable"))) j_bool(&J, "compile.disable", v, &dis);
        ds->torch_compile = !dis;
    }
    optimizer(&J, root);
    scheduler(&J, root);
    int b;
    if ((v = json_object_get(root, "prescale_gradients")) && j_bool(&J, "prescale_gradients", v, &b) == 0 && b)
        ax_error(d, where(&J, "prescale_gradients", w, sizeof w), "true is not implemented; use false");
    json_t *amp = object_at(&J, root, "amp");
    if (amp && (v = json_object_get(amp, "enabled")) && j_bool(&J, "amp.enabled", v, &b) == 0 && b)
        ax_error(d, where(&J, "amp.enabled", w, sizeof w), "NVIDIA Apex AMP is not implemented; use bf16");
    json_decref(root);
    return d->nerrors > errors0 ? -1 : 0;
}

void fe_deepspeed_model_autos(const fe_deepspeed *ds, int64_t hidden_size, int64_t *reduce_bucket_size,
                              int64_t *prefetch_bucket_size, int64_t *param_persistence_threshold) {
    int64_t h = hidden_size;
    if (reduce_bucket_size) *reduce_bucket_size = ds->reduce_bucket_size ? ds->reduce_bucket_size : h * h;
    if (prefetch_bucket_size)
        *prefetch_bucket_size = ds->stage3_prefetch_bucket_size ? ds->stage3_prefetch_bucket_size : (int64_t)(0.9 * (double)(h * h));
    if (param_persistence_threshold)
        *param_persistence_threshold =
            ds->stage3_param_persistence_threshold >= 0 ? ds->stage3_param_persistence_threshold : 10 * h;
}
