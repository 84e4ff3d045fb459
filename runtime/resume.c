/* resume.c — resumable checkpoints (see resume.h). */
#include "runtime/resume.h"
#include "runtime/modeldir.h"
#include "runtime/sharded_ckpt.h"

#include <dirent.h>
#include <stddef.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRAINER_FORMAT "axo.trainer_state"

/* ---- saving ------------------------------------------------------------------ */
/* The arguments of reduce_lr_on_plateau / greedy as a checkpoint keeps them (doubles as hex, exact): HF restores
 * a scheduler's own arguments from its state_dict, so a resume under other ones would not continue that run. */
static const struct {
    const char *key; /* lr_scheduler_kwargs' name */
    int is_int;
    size_t off;
} plateau_fields[] = {
    {"factor", 0, offsetof(rt_plateau_opts, factor)},       {"threshold", 0, offsetof(rt_plateau_opts, threshold)},
    {"min_lr", 0, offsetof(rt_plateau_opts, min_lr)},       {"eps", 0, offsetof(rt_plateau_opts, eps)},
    {"max_lr", 0, offsetof(rt_plateau_opts, max_lr)},       {"patience", 1, offsetof(rt_plateau_opts, patience)},
    {"cooldown", 1, offsetof(rt_plateau_opts, cooldown)},   {"warmup", 1, offsetof(rt_plateau_opts, warmup)},
    {"window_size", 1, offsetof(rt_plateau_opts, window)},  {"reset_start", 1, offsetof(rt_plateau_opts, reset_start)},
};

static json_t *plateau_opts_json(const rt_plateau_opts *o) {
    json_t *j = json_pack("{s:s,s:s,s:b,s:b}", "mode", o->mode_max ? "max" : "min", "threshold_mode",
                          o->thr_abs ? "abs" : "rel", "greedy", o->greedy, "smooth", o->smooth);
    for (size_t i = 0; i < sizeof plateau_fields / sizeof plateau_fields[0]; i++) {
        const char *at = (const char *)o + plateau_fields[i].off;
        if (plateau_fields[i].is_int) {
            json_object_set_new(j, plateau_fields[i].key, json_integer(*(const int64_t *)(const void *)at));
        } else {
            char h[64];
            snprintf(h, sizeof h, "%a", *(const double *)(const void *)at);
            json_object_set_new(j, plateau_fields[i].key, json_string(h));
        }
    }
    return j;
}

/* 1 (with an error naming the first argument that differs) when the checkpoint's arguments j are not o */
static int plateau_opts_differ(const char *path, const json_t *j, const rt_plateau_opts *o, ax_diag *d) {
    json_t *now = plateau_opts_json(o);
    const char *k;
    json_t *v;
    int differ = 0;
    json_object_foreach(now, k, v) {
        const json_t *was = json_object_get(j, k);
        if (was && json_equal(was, v)) continue;
        char a[64], b[64];
        const json_t *pair[2] = {was, v};
        char *out[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            const json_t *x = pair[i];
            if (!x) snprintf(out[i], 64, "unset");
            else if (json_is_string(x) && !strncmp(json_string_value(x), "0x", 2)) snprintf(out[i], 64, "%.17g", strtod(json_string_value(x), NULL));
            else if (json_is_string(x)) snprintf(out[i], 64, "%s", json_string_value(x));
            else if (json_is_integer(x)) snprintf(out[i], 64, "%lld", (long long)json_integer_value(x));
            else snprintf(out[i], 64, "%s", json_is_true(x) ? "true" : "false");
        }
        ax_error(d, path, "lr_scheduler_kwargs.%s was %s when this checkpoint was saved and is %s now (%s): HF restores "
                 "the scheduler's own arguments from its checkpoint, so resume with the same", k, a, b,
                 !strcmp(k, "greedy") ? "the schedule itself" : "the schedule's argument");
        differ = 1;
        break;
    }
    json_decref(now);
    return differ;
}

static json_t *log_history_json(const char *lines) {
    json_t *a = json_array();
    for (const char *p = lines; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        json_t *row = n ? json_loadb(p, n, 0, NULL) : NULL;
        if (row) json_array_append_new(a, row);
        p += n + (e != NULL);
    }
    return a;
}

int rt_ckpt_save_state(rt_session *s, const char *dir, int64_t step, int64_t max_steps, double epoch,
                       int64_t global_batch, const char *log_history, ax_diag *d) {
    char opt[4096], path[4096];
    if (ax_path_join(opt, sizeof opt, dir, RT_OPTIM_DIR) != 0 || ax_path_join(path, sizeof path, dir, RT_TRAINER_STATE) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (rt_session_save_optimizer(s, opt, 1, d) != 0) return -1; /* collective; every rank gets its status */
    int bad = 0;
    if (rt_session_is_rank0(s)) {
        json_t *j = json_object(), *axo = json_object();
        int64_t world = 1;
        for (int a = 0; a < s->m->nmesh; a++) world *= s->m->mesh_sizes[a];
        json_object_set_new(j, "global_step", json_integer(step));
        json_object_set_new(j, "epoch", json_real(epoch));
        json_object_set_new(j, "max_steps", json_integer(max_steps));
        json_object_set_new(j, "log_history", log_history_json(log_history));
        if (s->best_step > 0) { /* HF TrainerState's names */
            char ck[64];
            char hex[64], bdir[4096];
            snprintf(hex, sizeof hex, "%a", s->best_metric); /* exact: the comparisons go on after a resume */
            json_object_set_new(j, "best_metric", json_real(s->best_metric));
            json_object_set_new(axo, "best_metric_hex", json_string(hex));
            json_object_set_new(j, "best_global_step", json_integer(s->best_step));
            /* HF's form: output_dir/checkpoint-N, a sibling of this checkpoint */
            const char *sl = strrchr(dir, '/');
            snprintf(ck, sizeof ck, "checkpoint-%lld", (long long)s->best_ckpt_step);
            if (sl) snprintf(bdir, sizeof bdir, "%.*s/%s", (int)(sl - dir), dir, ck);
            else snprintf(bdir, sizeof bdir, "%s", ck);
            json_object_set_new(j, "best_model_checkpoint", s->best_ckpt_step > 0 ? json_string(bdir) : json_null());
        }
        int64_t patience = ir_attr_int(s->m->attrs, s->m->nattrs, "train.early_stopping_patience", 0);
        if (patience > 0)
            json_object_set_new(
                j, "stateful_callbacks",
                json_pack("{s:{s:{s:I,s:f},s:{s:I}}}", "EarlyStoppingCallback", "args", "early_stopping_patience",
                          (json_int_t)patience, "early_stopping_threshold", 0.0, "attributes",
                          "early_stopping_patience_counter", (json_int_t)s->patience_count));
        json_object_set_new(axo, "format", json_string(TRAINER_FORMAT));
        json_object_set_new(axo, "version", json_integer(1));
        json_object_set_new(axo, "world_size", json_integer(world));
        json_object_set_new(axo, "micro_steps", json_integer(s->micro_count));
        json_object_set_new(axo, "global_batch_rows", json_integer(global_batch));
        json_object_set_new(axo, "row_tokens", json_integer(s->S)); /* a row's length: with packing, its bin capacity */
        json_object_set_new(axo, "batching", json_integer(RT_BATCHING_VERSION));
        if (s->plateau_on) { /* hex floats: exact, and inf (no best yet) stays inf */
            char bh[64], lh[64];
            snprintf(bh, sizeof bh, "%a", s->plateau.best);
            snprintf(lh, sizeof lh, "%a", s->plateau.lr);
            json_t *pl = json_pack("{s:s,s:s,s:I,s:I}", "best", bh, "lr", lh, "bad", (json_int_t)s->plateau.bad, "cooldown",
                                   (json_int_t)s->plateau.cooldown_counter);
            /* greedy's own state (GreedyLR.state_dict's counters and its StreamingAverage, oldest value first);
             * written for both schedules, read back by greedy */
            char ih[64], sh[64];
            snprintf(ih, sizeof ih, "%a", s->plateau.init_lr);
            snprintf(sh, sizeof sh, "%a", s->plateau.win_sum);
            json_t *win = json_array();
            for (int64_t k = 0; k < s->plateau.nwin; k++) {
                char vh[64];
                snprintf(vh, sizeof vh, "%a", s->plateau.win[(s->plateau.win_head + k) % s->plateau.nwin]);
                json_array_append_new(win, json_string(vh));
            }
            json_object_set_new(pl, "greedy", json_pack("{s:s,s:I,s:I,s:I,s:s,s:o}", "init_lr", ih, "good",
                                                        (json_int_t)s->plateau.good, "warmup",
                                                        (json_int_t)s->plateau.warmup_counter, "reset_left",
                                                        (json_int_t)s->plateau.reset_left, "window_sum", sh, "window", win));
            json_object_set_new(pl, "opts", plateau_opts_json(&s->plateau_opts));
            json_object_set_new(axo, "plateau", pl);
        }
        json_object_set_new(axo, "optimizer_state", json_string(RT_OPTIM_DIR "/" RT_OPTIM_INDEX));
        json_object_set_new(j, "axo", axo);
        char *txt = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1) | JSON_REAL_PRECISION(15));
        json_decref(j);
        bad = !txt || ax_write_file_atomic(path, txt, strlen(txt), d) != 0;
        free(txt);
    }
    if (rt_session_any_rank(s, bad)) {
        if (!bad) ax_error(d, dir, "checkpoint not resumable: rank 0 could not write %s", RT_TRAINER_STATE);
        return -1;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------ */
static int same_shape(const int64_t *a, int ra, const ir_type *t) {
    if (ra != t->rank) return 0;
    for (int i = 0; i < ra; i++)
        if (a[i] != t->dims[i]) return 0;
    return 1;
}


static double num_or_nan(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static int read_trainer_state(const char *dir, int64_t *step, int64_t *max_steps, int64_t *gbatch, char **log,
                              rt_session *best_into, ax_diag *d) {
    char path[4096], other[4096];
    if (ax_path_join(path, sizeof path, dir, RT_TRAINER_STATE) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (!ax_file_exists(path)) {
        int hf = ax_path_join(other, sizeof other, dir, "optimizer.pt") == 0 && ax_file_exists(other);
        ax_error(d, dir, "has no %s: not a resumable checkpoint%s", RT_TRAINER_STATE,
                 hf ? " (an HF Trainer checkpoint? its optimizer.pt is a torch pickle axo cannot read)"
                    : " (axorun writes one into every save_steps checkpoint, last; an interrupted save leaves none)");
        return -1;
    }
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        ax_error(d, path, "line %d, column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    json_t *gs = json_object_get(j, "global_step"), *axo = json_object_get(j, "axo");
    const char *fmt = json_string_value(json_object_get(axo, "format"));
    if (!fmt || strcmp(fmt, TRAINER_FORMAT) || json_integer_value(json_object_get(axo, "version")) != 1) {
        ax_error(d, path, "expected an \"axo\" section {\"format\": \"" TRAINER_FORMAT "\", \"version\": 1} (not a checkpoint "
                          "axo wrote, or another axo version's)");
    } else if (!json_is_integer(gs) || json_integer_value(gs) < 1 || json_integer_value(gs) > (INT64_C(1) << 36)) {
        /* 2^36: the ranks agree on it through f32 halves (runtime/train.c), exact below 2^24 each */
        ax_error(d, path, "global_step: expected a positive integer of at most 2^36");
    } else {
        *step = json_integer_value(gs);
        if (max_steps) *max_steps = json_integer_value(json_object_get(j, "max_steps"));
        if (gbatch) *gbatch = json_integer_value(json_object_get(axo, "global_batch_rows"));
        rc = 0;
    }
    if (!rc && best_into) { /* load_best_model_at_end / early stopping continue where they were */
        json_t *bm = json_object_get(j, "best_metric"), *bs = json_object_get(j, "best_global_step");
        const char *bc = json_string_value(json_object_get(j, "best_model_checkpoint"));
        json_t *pc = json_object_get(json_object_get(json_object_get(json_object_get(j, "stateful_callbacks"),
                                                                     "EarlyStoppingCallback"),
                                                     "attributes"),
                                     "early_stopping_patience_counter");
        best_into->best_step = json_is_integer(bs) && json_is_number(bm) ? json_integer_value(bs) : 0;
        const char *hex = json_string_value(json_object_get(axo, "best_metric_hex"));
        best_into->best_metric = !best_into->best_step ? 0 : hex ? strtod(hex, NULL) : json_number_value(bm);
        long long ck = 0;
        const char *base = bc ? strrchr(bc, '/') : NULL;
        base = base ? base + 1 : bc;
        best_into->best_ckpt_step = base && sscanf(base, "checkpoint-%lld", &ck) == 1 ? ck : 0;
        best_into->patience_count = json_is_integer(pc) ? json_integer_value(pc) : 0;
        const json_t *pl = json_object_get(axo, "plateau");
        const char *pb = json_string_value(json_object_get(pl, "best")), *plr = json_string_value(json_object_get(pl, "lr"));
        if (best_into->plateau_on && pb && plr) { /* else (a checkpoint of another schedule): the plateau starts afresh */
            best_into->plateau.best = strtod(pb, NULL);
            best_into->plateau.lr = strtod(plr, NULL);
            best_into->plateau.bad = json_integer_value(json_object_get(pl, "bad"));
            best_into->plateau.cooldown_counter = json_integer_value(json_object_get(pl, "cooldown"));
            const json_t *op = json_object_get(pl, "opts");
            if (op && plateau_opts_differ(path, op, &best_into->plateau_opts, d)) rc = -1;
            const json_t *gr = json_object_get(pl, "greedy"), *win = json_object_get(gr, "window"), *v;
            const char *ih = json_string_value(json_object_get(gr, "init_lr")),
                       *sh = json_string_value(json_object_get(gr, "window_sum"));
            if (gr && ih && sh && json_is_array(win)) {
                rt_plateau *P = &best_into->plateau;
                P->init_lr = strtod(ih, NULL);
                P->good = json_integer_value(json_object_get(gr, "good"));
                P->warmup_counter = json_integer_value(json_object_get(gr, "warmup"));
                P->reset_left = json_integer_value(json_object_get(gr, "reset_left"));
                rt_plateau_free(P);
                const size_t n = json_array_size(win);
                if (n) {
                    P->win = malloc(sizeof *P->win * n);
                    if (!P->win) {
                        ax_error(d, path, "no memory for greedy's smoothing window of %zu values", n);
                        rc = -1;
                    }
                    size_t k;
                    json_array_foreach(win, k, v) if (P->win) P->win[k] = strtod(json_string_value(v) ? json_string_value(v) : "nan", NULL);
                    if (P->win) P->nwin = P->win_cap = (int64_t)n;
                }
                P->win_sum = strtod(sh, NULL);
            }
        }
    }
    if (!rc && log) {
        ax_buf b = {0};
        ax_buf_puts(&b, "");
        json_t *h = json_object_get(j, "log_history"), *row;
        size_t i;
        json_array_foreach(h, i, row) { /* as train_log.jsonl wrote them */
            char line[512];
            if (json_object_get(row, "rewards/chosen") || json_object_get(row, "eval_rewards/chosen")) {
                /* rl: dpo's lines carry TRL's metrics: the row's keys in runtime/dpo.c's order, its numbers as they
                 * were written (%.6g) */
                static const char *const keys[] = {"step", "epoch", "loss", "grad_norm", "lr", "eval_loss",
                                                   "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                                   "rewards/margins", "logps/chosen", "logps/rejected",
                                                   "eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/accuracies",
                                                   "eval_rewards/margins", "eval_logps/chosen", "eval_logps/rejected",
                                                   "tokens_per_s"};
                json_t *o = json_object();
                for (size_t k = 0; k < AX_ARRAY_LEN(keys); k++)
                    if (json_object_get(row, keys[k])) json_object_set(o, keys[k], json_object_get(row, keys[k]));
                char *t = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
                json_decref(o);
                if (t) ax_buf_puts(&b, t), ax_buf_puts(&b, "\n");
                free(t);
                continue;
            }
            if (json_object_get(row, "eval_loss")) {
                rt_eval_log_line(line, sizeof line, json_integer_value(json_object_get(row, "step")),
                                 json_integer_value(json_object_get(row, "epoch")), num_or_nan(json_object_get(row, "eval_loss")),
                                 json_integer_value(json_object_get(row, "eval_tokens")));
                ax_buf_puts(&b, line);
                continue;
            }
            rt_log_line(line, sizeof line, json_integer_value(json_object_get(row, "step")),
                        json_integer_value(json_object_get(row, "epoch")), num_or_nan(json_object_get(row, "loss")),
                        num_or_nan(json_object_get(row, "grad_norm")), num_or_nan(json_object_get(row, "lr")),
                        num_or_nan(json_object_get(row, "tokens_per_s")));
            ax_buf_puts(&b, line);
        }
        *log = ax_buf_steal(&b);
    }
    json_decref(j);
    return rc;
}

/* An integer of trainer_state.json's "axo" section, dflt when absent or unreadable. */
static int64_t axo_state_int(const char *dir, const char *key, int64_t dflt) {
    char path[4096];
    if (ax_path_join(path, sizeof path, dir, RT_TRAINER_STATE) != 0) return dflt;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    json_t *v = json_object_get(json_object_get(j, "axo"), key);
    const int64_t r = json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
    json_decref(j);
    return r;
}

int rt_resume_batching(const char *dir) { return (int)axo_state_int(dir, "batching", 1); }

int64_t rt_resume_row_tokens(const char *dir) { return axo_state_int(dir, "row_tokens", 0); }

int rt_resume_peek(const char *dir, int64_t *step, int64_t *max_steps, int64_t *global_batch, ax_diag *d) {
    return read_trainer_state(dir, step, max_steps, global_batch, NULL, NULL, d);
}

int rt_ckpt_resumable(const char *dir) {
    char path[4096];
    return ax_path_join(path, sizeof path, dir, RT_TRAINER_STATE) == 0 && ax_file_exists(path);
}

/* The trainable params: from the adapter file, the sharded rank files or
 * model.safetensors of dir, this rank's rows. */
static int load_params(rt_session *s, const char *dir, ax_diag *d) {
    const ir_module *m = s->m;
    char path[4096];
    rt_st_file af;
    rt_st_model sm;
    rt_sharded_dir sx;
    int kind = s->adapter ? 0 : (ax_path_join(path, sizeof path, dir, RT_SHARDED_INDEX) == 0 && ax_file_exists(path)) ? 1 : 2;
    if (kind == 0) {
        if (ax_path_join(path, sizeof path, dir, "adapter_model.safetensors") != 0 || rt_st_open(path, &af, d) != 0) return -1;
    } else if (kind == 1) {
        if (rt_sharded_open(dir, RT_SHARDED_INDEX, &sx, d) != 0) return -1;
    } else if (rt_st_model_open(dir, &sm, d) != 0) {
        return -1;
    }
    int rc = 0;
    for (int g = 0; g < m->nglobals && !rc; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM || !ir_attr_int(G->attrs, G->nattrs, "trainable", 1)) continue;
        const char *name = rt_stacked(G) ? ir_attr_str(G->attrs, G->nattrs, "hf_stacked", G->name)
                                         : ir_attr_str(G->attrs, G->nattrs, "hf", G->name);
        if (kind == 0) name = ir_attr_str(G->attrs, G->nattrs, "saved_as", name);
        int64_t first, rows;
        rt_session_block(s, &G->type, &first, &rows);
        int64_t row = G->type.rank && G->type.dims[0] ? ir_type_numel(&G->type) / G->type.dims[0] : 1;
        float *dst = rt_f(&s->st.globals[g]);
        const rt_st_tensor *t = NULL;
        const rt_st_file *f = &af;
        rt_sharded_tensor info;
        int found = 0;
        rt_st_dtype dt = RT_ST_F32;
        const int64_t *shape = NULL;
        int rank = 0;
        if (kind == 1) {
            int r = rt_sharded_find(&sx, name, &info, d);
            if (r < 0) {
                rc = -1;
                break;
            }
            found = r == 0, dt = info.dtype, shape = info.shape, rank = info.rank;
        } else {
            t = kind == 0 ? rt_st_find(&af, name) : rt_st_model_find(&sm, name, &f);
            if (t) found = 1, dt = t->dtype, shape = t->shape, rank = t->rank;
        }
        if (kind == 2 && !found && rt_stacked(G)) { /* a full save: the experts under the checkpoint's names */
            if (rows > 0) rc = rt_stacked_read(&sm, G, first, rows, dst, dir, d);
            continue;
        }
        if (!found) {
            ax_error(d, dir, "has no \"%s\": the checkpoint does not hold a parameter this plan trains (another model, "
                             "adapter targets or lora_modules_to_save?)", name);
            rc = -1;
        } else if (!same_shape(shape, rank, &G->type) || dt != rt_sharded_dtype(G->type.dtype)) {
            char want[96];
            ax_error(d, dir, "\"%s\" is a %s tensor of another shape or dtype than the plan's %s", name, rt_st_dtype_name(dt),
                     ir_type_str(m, &G->type, want, sizeof want));
            rc = -1;
        } else if (kind == 1 && G->type.rank && rows <= 0) {
            /* a padding rank: its block starts past the tensor's end */
        } else if (kind == 1) {
            size_t es = rt_st_dtype_size(dt);
            void *raw = malloc(es * (size_t)(rows * row) + 1);
            rc = rt_sharded_read(&sx, name, first, first + (G->type.rank ? rows : 1), raw, d);
            if (!rc) rt_st_widen(dt, raw, G->type.rank ? rows * row : 1, dst);
            free(raw);
        } else if (G->type.rank == 0) {
            rc = rt_st_read_f32(f, t, dst, d);
        } else if (rows > 0) {
            rc = rt_st_read_f32_rows(f, t, first, rows, dst, d);
        }
    }
    if (kind == 0) rt_st_close(&af);
    else if (kind == 1) rt_sharded_close(&sx);
    else rt_st_model_close(&sm);
    return rc ? -1 : 0;
}

/* The optimizer state from dir/optimizer, this rank's rows. */
static int load_optimizer(rt_session *s, const char *dir, ax_diag *d) {
    const ir_module *m = s->m;
    char od[4096];
    rt_sharded_dir x;
    if (ax_path_join(od, sizeof od, dir, RT_OPTIM_DIR) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (rt_sharded_open(od, RT_OPTIM_INDEX, &x, d) != 0) return -1;
    int rc = 0, nopt = 0;
    for (int g = 0; g < m->nglobals && !rc; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_OPT) continue;
        nopt++;
        rt_sharded_tensor info;
        int r = rt_sharded_find(&x, G->name, &info, d);
        if (r != 0) {
            if (r > 0)
                ax_error(d, x.ipath, "has no \"%s\": the checkpoint's optimizer state does not fit this plan (written with "
                                     "another optimizer, precision or set of trainable parameters?)", G->name);
            rc = -1;
            break;
        }
        if (!same_shape(info.shape, info.rank, &G->type) || info.dtype != rt_sharded_dtype(G->type.dtype)) {
            char want[96];
            ax_error(d, x.ipath, "\"%s\" is a %s tensor of another shape or dtype than the plan's %s (another optimizer or "
                                 "precision: bf16 vs bfloat16, adamw_bnb_8bit?)", G->name, rt_st_dtype_name(info.dtype),
                     ir_type_str(m, &G->type, want, sizeof want));
            rc = -1;
            break;
        }
        int64_t first, rows;
        rt_session_block(s, &G->type, &first, &rows);
        int64_t row = G->type.rank && G->type.dims[0] ? ir_type_numel(&G->type) / G->type.dims[0] : 1;
        int64_t n = G->type.rank ? rows * row : 1;
        void *raw = malloc(rt_st_dtype_size(info.dtype) * (size_t)n + 1);
        rc = (G->type.rank && rows <= 0) ? 0 : rt_sharded_read(&x, G->name, first, first + (G->type.rank ? rows : 1), raw, d);
        if (!rc) rt_st_widen(info.dtype, raw, n, rt_f(&s->st.globals[g]));
        free(raw);
    }
    if (!rc && nopt != x.ntensors)
        for (int i = 0; i < x.ntensors && !rc; i++) {
            const char *name = rt_sharded_name(&x, i);
            int g = ir_global_find(m, name);
            if (g < 0 || m->globals[g].role != IR_ROLE_OPT) {
                ax_error(d, x.ipath, "holds \"%s\", which this plan's optimizer does not have (written with another "
                                     "optimizer or precision?)", name);
                rc = -1;
            }
        }
    rt_sharded_close(&x);
    return rc ? -1 : 0;
}

int rt_resume_load(rt_session *s, const char *dir, int64_t *step, char **log, ax_diag *d) {
    *log = NULL;
    int bad = read_trainer_state(dir, step, NULL, NULL, log, s, d) != 0;
    bad = bad || load_params(s, dir, d) != 0 || load_optimizer(s, dir, d) != 0;
    for (int g = 0; !bad && s->backend && g < s->m->nglobals; g++) {
        ir_role r = s->m->globals[g].role;
        if (r == IR_ROLE_PARAM || r == IR_ROLE_OPT) bad = s->backend->upload(s->backend, &s->st, g, d) != 0;
    }
    if (rt_session_any_rank(s, bad)) {
        if (!bad) ax_error(d, dir, "resuming failed on another rank");
        free(*log);
        *log = NULL;
        return -1;
    }
    s->micro_count = (int64_t)((uint64_t)*step * (uint64_t)s->grad_accum); /* the dropout masks of the steps to come
                                                                            * (a counter: it may wrap) */
    return 0;
}

int rt_ckpt_load_params(rt_session *s, const char *dir, ax_diag *d) {
    int bad = load_params(s, dir, d) != 0;
    for (int g = 0; !bad && s->backend && g < s->m->nglobals; g++)
        if (s->m->globals[g].role == IR_ROLE_PARAM) bad = s->backend->upload(s->backend, &s->st, g, d) != 0;
    if (rt_session_any_rank(s, bad)) {
        if (!bad) ax_error(d, dir, "loading the best checkpoint failed on another rank");
        return -1;
    }
    return 0;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* The N of every checkpoint-N dir of out_dir, ascending (malloc'd). */
static long long *checkpoints(const char *out_dir, size_t *n) {
    DIR *dh = opendir(out_dir);
    long long *ns = NULL;
    size_t cap = 0;
    *n = 0;
    if (!dh) return NULL;
    struct dirent *e;
    while ((e = readdir(dh))) {
        long long k;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &k, &tail) != 1) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            ns = realloc(ns, cap * sizeof *ns);
        }
        ns[(*n)++] = k;
    }
    closedir(dh);
    if (*n) qsort(ns, *n, sizeof *ns, cmp_ll);
    return ns;
}

void rt_ckpt_prune(const char *out_dir, int64_t keep, int64_t upto, int64_t best) {
    size_t n;
    long long *ns = checkpoints(out_dir, &n);
    while (n && ns[n - 1] > upto) n--; /* an abandoned run's later ones: replaced as this run reaches them */
    size_t b = n;
    for (size_t i = 0; best > 0 && i < n; i++)
        if (ns[i] == best) b = i;
    if (b < n) { /* HF: the best moves to second newest (it stays the newest when it is) */
        for (size_t i = b; i + 2 < n; i++) {
            long long t = ns[i];
            ns[i] = ns[i + 1], ns[i + 1] = t;
        }
        if (keep == 1 && ns[n - 1] != best) keep = 2; /* the newest stays too, to resume from */
    }
    char path[4096];
    for (size_t i = 0; keep > 0 && i + (size_t)keep < n; i++)
        if (snprintf(path, sizeof path, "%s/checkpoint-%lld", out_dir, ns[i]) < (int)sizeof path) rt_modeldir_remove(path);
    free(ns);
}

void rt_ckpt_keep_only(const char *out_dir, int64_t best, int64_t upto) {
    size_t n;
    long long *ns = checkpoints(out_dir, &n);
    char path[4096];
    for (size_t i = 0; i < n; i++)
        if (ns[i] != best && ns[i] <= upto && snprintf(path, sizeof path, "%s/checkpoint-%lld", out_dir, ns[i]) < (int)sizeof path)
            rt_modeldir_remove(path);
    free(ns);
}

int rt_resume_latest(const char *out_dir, char *buf, size_t cap) {
    size_t n;
    long long *ns = checkpoints(out_dir, &n);
    int rc = 1;
    char path[4096];
    while (n-- > 0 && rc)
        if (snprintf(path, sizeof path, "%s/checkpoint-%lld", out_dir, ns[n]) < (int)sizeof path && rt_ckpt_resumable(path)) {
            snprintf(buf, cap, "%s", path);
            rc = 0;
        }
    free(ns);
    return rc;
}
