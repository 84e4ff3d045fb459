/* sharded_ckpt.c — SHARDED_STATE_DICT checkpoints (see sharded_ckpt.h).
 *
 * Which rows a file holds: a parameter split on dim 0 over dp (FSDP,
 * ZeRO-3) is held by dp rank r as rows [r*c, min((r+1)*c, d0)) with
 * c = ceil(d0/N), the block without its padding (possibly empty); an
 * unsplit parameter is held whole by rank 0's file. Ranks whose coordinate
 * on another mesh axis is not 0 hold copies of the same blocks and write
 * nothing. A rank file holds exactly the tensors whose range is non-empty,
 * under their HF names, with dim 0 cut to the range, in the parameter's
 * dtype (bytes as a FULL_STATE_DICT save writes them).
 */
#include "runtime/sharded_ckpt.h"
#include "runtime/modeldir.h"
#include "runtime/train_internal.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANK_FILES 65536

/* What a sharded save writes: the params (SHARDED_STATE_DICT) or the
 * optimizer state (resumable checkpoints), with their file names. */
typedef struct what_saved {
    ir_role role;
    const char *prefix; /* rank files: PREFIX-rank00000-of-00002.safetensors */
    const char *index;
    int with_config;    /* config.json beside the index */
} what_saved;

static const what_saved PARAMS = {IR_ROLE_PARAM, "model", RT_SHARDED_INDEX, 1};
static const what_saved OPTIM = {IR_ROLE_OPT, "optimizer", RT_OPTIM_INDEX, 0};

static void rank_file_name(char *out, size_t cap, const what_saved *w, int r, int n) {
    snprintf(out, cap, "%s-rank%05d-of-%05d.safetensors", w->prefix, r, n);
}

/* Rows [*b, *e) of dim 0 of t held by the file of dp rank r of n. */
static void rows_of(const ir_type *t, int r, int64_t n, int64_t *b, int64_t *e) {
    int64_t d0 = t->dims[0];
    if (t->shard.axis < 0) {
        *b = r ? d0 : 0;
        *e = d0;
        return;
    }
    int64_t c = rt_block_rows(t, n);
    *b = r * c < d0 ? r * c : d0;
    *e = (r + 1) * c < d0 ? (r + 1) * c : d0;
}

/* ---- saving ------------------------------------------------------------------ */
/* A param under its HF name (an MoE layer's experts stacked, under the name transformers 5 saves them whole:
 * runtime/train.h); optimizer state under the global's own name. */
static const char *saved_name(const ir_global *G) {
    if (G->role != IR_ROLE_PARAM) return G->name;
    return rt_stacked(G) ? ir_attr_str(G->attrs, G->nattrs, "hf_stacked", G->name) : ir_attr_str(G->attrs, G->nattrs, "hf", G->name);
}

rt_st_dtype rt_sharded_dtype(ir_dtype t) { return t == IR_BF16 ? RT_ST_BF16 : t == IR_U8 ? RT_ST_U8 : RT_ST_F32; }

/* This rank's rows of every global of the role into dir/<rank file>. */
static int write_rank_file(rt_session *s, const char *dir, const what_saved *w, int r, int n, ax_diag *d) {
    const ir_module *m = s->m;
    rt_st_out *outs = calloc((size_t)m->nglobals + 1, sizeof *outs);
    int64_t(*shapes)[IR_MAX_RANK] = calloc((size_t)m->nglobals + 1, sizeof *shapes);
    void **bufs = calloc((size_t)m->nglobals + 1, sizeof *bufs);
    int k = 0;
    for (int g = 0; g < m->nglobals; g++) /* a device backend holds the current values */
        if (m->globals[g].role == w->role && s->backend && s->backend->download(s->backend, &s->st, g, d) != 0) {
            free(bufs), free(shapes), free(outs);
            return -1;
        }
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != w->role) continue;
        const ir_type *t = &G->type;
        int64_t b = 0, e = 1, row = 1;
        if (t->rank == 0) {
            if (r) continue;
        } else {
            rows_of(t, r, n, &b, &e);
            if (e == b) continue;
            row = ir_type_numel(t) / t->dims[0];
        }
        const float *src = rt_f(&s->st.globals[g]); /* the block, or the whole tensor */
        if (t->shard.axis < 0) src += b * row;
        int64_t cnt = (e - b) * row;
        memcpy(shapes[k], t->dims, sizeof(int64_t) * (size_t)t->rank);
        if (t->rank) shapes[k][0] = e - b;
        outs[k].name = saved_name(G);
        outs[k].rank = t->rank;
        outs[k].shape = shapes[k];
        if (t->dtype == IR_BF16) {
            uint16_t *h = malloc(sizeof *h * (size_t)(cnt ? cnt : 1));
            for (int64_t i = 0; i < cnt; i++) h[i] = ax_f32_to_bf16(src[i]);
            outs[k].dtype = RT_ST_BF16;
            outs[k].data = bufs[k] = h;
        } else if (t->dtype == IR_U8) { /* codes, held as floats by the CPU executor */
            uint8_t *q = malloc((size_t)(cnt ? cnt : 1));
            for (int64_t i = 0; i < cnt; i++) q[i] = (uint8_t)src[i];
            outs[k].dtype = RT_ST_U8;
            outs[k].data = bufs[k] = q;
        } else {
            outs[k].dtype = RT_ST_F32;
            outs[k].data = src;
        }
        k++;
    }
    char name[96], path[4096];
    rank_file_name(name, sizeof name, w, r, n);
    int rc = -1;
    if (!k) /* this rank holds no rows (DDP's whole optimizer state is rank 0's): no file, null in the index */
        rc = 0;
    else if (ax_path_join(path, sizeof path, dir, name) != 0)
        ax_error(d, dir, "path too long");
    else
        rc = rt_st_write(path, outs, k, d);
    for (int i = 0; i < k; i++) free(bufs[i]);
    free(bufs);
    free(shapes);
    free(outs);
    return rc;
}

static json_t *ints_json(const int64_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* One line of JSON (compact, sorted keys). */
static void put_json(ax_buf *b, json_t *j) {
    char *t = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    ax_buf_puts(b, t);
    free(t);
    json_decref(j);
}

/* Rank 0: config.json and the index into tmp, then tmp -> dir. The index
 * is JSON with one line per tensor, in parameter order. */
static int finish(rt_session *s, const what_saved *w, const char *tmp, const char *dir, int exists, int n, ax_diag *d) {
    const ir_module *m = s->m;
    ax_buf b = {0};
    char name[96], path[4096];
    ax_buf_printf(&b, "{\n \"format\": \"%s\",\n \"version\": 1,\n \"world_size\": %d,\n \"files\": [", RT_SHARDED_FORMAT, n);
    for (int r = 0; r < n; r++) { /* null: rank r holds no rows of anything, and wrote no file */
        int has = 0;
        for (int g = 0; g < m->nglobals && !has; g++) {
            const ir_type *t = &m->globals[g].type;
            if (m->globals[g].role != w->role) continue;
            int64_t rb = 0, re = r ? 0 : 1;
            if (t->rank) rows_of(t, r, n, &rb, &re);
            has = re > rb;
        }
        rank_file_name(name, sizeof name, w, r, n);
        if (has) ax_buf_printf(&b, "%s\n  \"%s\"", r ? "," : "", name);
        else ax_buf_printf(&b, "%s\n  null", r ? "," : "");
    }
    ax_buf_puts(&b, "\n ],\n \"tensors\": {");
    int first = 1;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != w->role) continue;
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string(rt_st_dtype_name(rt_sharded_dtype(G->type.dtype))));
        json_object_set_new(t, "shape", ints_json(G->type.dims, G->type.rank));
        if (G->type.rank) {
            json_t *rows = json_array();
            for (int r = 0; r < n; r++) {
                int64_t be[2];
                rows_of(&G->type, r, n, &be[0], &be[1]);
                json_array_append_new(rows, ints_json(be, 2));
            }
            json_object_set_new(t, "rows", rows);
        }
        ax_buf_puts(&b, first ? "\n  " : ",\n  ");
        first = 0;
        put_json(&b, json_string(saved_name(G)));
        ax_buf_puts(&b, ": ");
        put_json(&b, t);
    }
    ax_buf_puts(&b, "\n }\n}\n");
    char *text = ax_buf_steal(&b);
    int rc = 0;
    if (s->hf_config && w->with_config)
        rc = ax_path_join(path, sizeof path, tmp, "config.json") != 0 ||
             ax_write_file_atomic(path, s->hf_config, s->hf_config_len, d) != 0;
    if (!rc && w->role == IR_ROLE_PARAM) { /* what the model carries unread (the vision tower): merge-sharded adds it */
        rt_st_model bm;
        rt_st_out *carried = NULL;
        int nc = rt_train_carried(m, &bm, &carried, d);
        if (nc < 0) rc = -1;
        else if (nc > 0)
            rc = ax_path_join(path, sizeof path, tmp, RT_SHARDED_CARRIED) != 0 || rt_st_write(path, carried, nc, d) != 0;
        free(carried);
        rt_st_model_close(&bm);
    }
    if (!rc) /* the index last: a directory without it is not a checkpoint */
        rc = ax_path_join(path, sizeof path, tmp, w->index) != 0 ||
             ax_write_file_atomic(path, text, strlen(text), d) != 0;
    free(text);
    if (!rc) rc = rt_modeldir_publish(tmp, dir, exists, d) != 0;
    if (rc) rt_modeldir_remove(tmp);
    return rc ? -1 : 0;
}

static int save_sharded(rt_session *s, const what_saved *w, const char *dir, int overwrite, ax_diag *d) {
    const ir_module *m = s->m;
    int dp = ir_mesh_find(m, "dp");
    int n = dp >= 0 ? (int)m->mesh_sizes[dp] : 1, me = dp >= 0 ? s->st.coord[dp] : 0;
    int lead = 1, writer = 1;
    for (int a = 0; a < m->nmesh; a++) {
        if (s->st.coord[a]) lead = 0;
        if (a != dp && s->st.coord[a]) writer = 0;
    }
    /* the same check on every rank, before any collective */
    for (int g = 0; g < m->nglobals; g++) {
        const ir_type *t = &m->globals[g].type;
        if (m->globals[g].role == w->role && t->shard.axis >= 0 && (t->shard.axis != dp || t->shard.dim != 0)) {
            ax_error(d, m->globals[g].name, "%s: split on dim %d over mesh axis %s; only state split on dim 0 over dp "
                     "can be saved sharded", w->role == IR_ROLE_PARAM ? "SHARDED_STATE_DICT" : "checkpoint",
                     t->shard.dim, m->mesh_names[t->shard.axis]);
            return -1;
        }
    }
    if (n > MAX_RANK_FILES) {
        ax_error(d, dir, "SHARDED_STATE_DICT: %d rank files are more than %d", n, MAX_RANK_FILES);
        return -1;
    }
    /* 1. rank 0 prepares DIR.tmp-PID and shares its PID */
    char tmp[4096];
    float v[3] = {0, 0, 0};
    int exists = 0, made = 0;
    if (lead) {
        long pid = (long)getpid();
        if (rt_modeldir_begin(dir, overwrite, pid, tmp, sizeof tmp, &exists, d) != 0) v[0] = 1;
        else made = 1;
        v[1] = (float)(pid & 0xffff);
        v[2] = (float)((pid >> 16) & 0xffff);
    }
    if (rt_session_world_sum(s, v, 3) != 0) {
        ax_error(d, dir, "checkpoint not written: a peer rank failed (aborted)");
        if (made) rt_modeldir_remove(tmp);
        return -1;
    }
    if (v[0] > 0) {
        if (!lead) ax_error(d, dir, "checkpoint not written: rank 0 could not prepare it (aborted)");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)v[1] + ((long)v[2] << 16));
    /* 2. each writer: its rows, no gather */
    int bad = writer ? write_rank_file(s, tmp, w, me, n, d) != 0 : 0;
    v[0] = (float)bad;
    if (rt_session_world_sum(s, v, 1) != 0 || v[0] > 0) {
        if (!bad)
            ax_error(d, dir, lead ? "checkpoint not written: another rank could not write its file"
                                  : "checkpoint not written: another rank could not write its file (aborted)");
        if (lead) rt_modeldir_remove(tmp);
        return -1;
    }
    /* 3. rank 0: config.json, the index, rename into place */
    bad = lead ? finish(s, w, tmp, dir, exists, n, d) != 0 : 0;
    v[0] = (float)bad;
    if (rt_session_world_sum(s, v, 1) != 0 || v[0] > 0) {
        if (!bad) ax_error(d, dir, "checkpoint not written: rank 0 could not complete it (aborted)");
        return -1;
    }
    return 0;
}

int rt_session_save_sharded(rt_session *s, const char *dir, int overwrite, ax_diag *d) {
    return save_sharded(s, &PARAMS, dir, overwrite, d);
}

int rt_session_save_optimizer(rt_session *s, const char *dir, int overwrite, ax_diag *d) {
    return save_sharded(s, &OPTIM, dir, overwrite, d);
}

/* ---- reading ------------------------------------------------------------------ */
static int bad_index(ax_diag *d, const char *ipath, const char *what) {
    ax_error(d, ipath, "%s", what);
    return -1;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const rt_sharded_tensor *)a)->name, ((const rt_sharded_tensor *)b)->name);
}

/* A plain file name: no directory part, no "." or "..". */
static int plain_name(const char *s) { return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."); }

/* The index entry of tensor `name`: dtype and shape into out (no data). */
static int tensor_info(const rt_sharded_dir *x, const char *name, json_t *t, rt_sharded_tensor *out, ax_diag *d) {
    char msg[512];
    json_t *jd = json_object_get(t, "dtype"), *js = json_object_get(t, "shape");
    int dt = json_is_string(jd) ? rt_st_dtype_parse(json_string_value(jd)) : -1;
    if (!json_is_object(t) || dt < 0 || !json_is_array(js) || json_array_size(js) > RT_ST_MAX_RANK) {
        snprintf(msg, sizeof msg, "tensor \"%s\": expected {\"dtype\": a safetensors dtype, \"shape\": [dims], \"rows\": ...}", name);
        return bad_index(d, x->ipath, msg);
    }
    memset(out, 0, sizeof *out);
    out->name = name;
    out->dtype = (rt_st_dtype)dt;
    out->rank = (int)json_array_size(js);
    int64_t numel = 1;
    for (int i = 0; i < out->rank; i++) {
        json_t *v0 = json_array_get(js, (size_t)i);
        int64_t v = json_is_integer(v0) ? json_integer_value(v0) : -1;
        if (v < 0 || v > ((int64_t)1 << 48) || (v && numel > ((int64_t)1 << 48) / v)) {
            snprintf(msg, sizeof msg, "tensor \"%s\": shape[%d] is not a dimension (a non-negative integer, at most 2^48 elements)",
                     name, i);
            return bad_index(d, x->ipath, msg);
        }
        out->shape[i] = v;
        numel *= v;
    }
    out->nbytes = (size_t)numel * rt_st_dtype_size(out->dtype);
    return 0;
}

int rt_sharded_find(const rt_sharded_dir *x, const char *name, rt_sharded_tensor *info, ax_diag *d) {
    json_t *t = json_object_get((json_t *)x->tensors, name);
    if (!t) return 1;
    return tensor_info(x, name, t, info, d) ? -1 : 0;
}

/* Rows [rb, re) of the tensor (whole tensor for rank 0) as raw bytes into
 * dst, from whichever rank files hold them; checks that the files' rows
 * tile dim 0 in rank order and that each file holds what the index says.
 * held (may be NULL): per file, +1 for each file that holds rows of it. */
static int read_rows(const rt_sharded_dir *x, const char *name, int64_t rb, int64_t re, void *dst, int *held, ax_diag *d) {
    char msg[512];
    rt_sharded_tensor info;
    json_t *t = json_object_get((json_t *)x->tensors, name);
    if (!t) {
        snprintf(msg, sizeof msg, "has no tensor \"%s\"", name);
        return bad_index(d, x->ipath, msg);
    }
    if (tensor_info(x, name, t, &info, d) != 0) return -1;
    json_t *jr = json_object_get(t, "rows");
    int64_t d0 = info.rank ? info.shape[0] : 1;
    int64_t row_bytes = info.rank && info.shape[0] ? (int64_t)info.nbytes / info.shape[0] : (int64_t)info.nbytes;
    if (!info.rank) rb = 0, re = 1;
    if (rb < 0 || re < rb || re > d0) {
        snprintf(msg, sizeof msg, "tensor \"%s\": rows %lld..%lld asked of a tensor of %lld", name, (long long)rb, (long long)re,
                 (long long)d0);
        return bad_index(d, x->ipath, msg);
    }
    if (info.rank && (!json_is_array(jr) || (int)json_array_size(jr) != x->world)) {
        snprintf(msg, sizeof msg, "tensor \"%s\": \"rows\" must list one [begin, end) per rank file (%d)", name, x->world);
        return bad_index(d, x->ipath, msg);
    }
    int64_t next = 0;
    for (int r = 0; r < x->world; r++) {
        int64_t b = 0, e = r ? 0 : 1;
        if (info.rank) {
            json_t *p = json_array_get(jr, (size_t)r), *jb = json_array_get(p, 0), *je = json_array_get(p, 1);
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(jb) || !json_is_integer(je) ||
                json_integer_value(jb) != next || json_integer_value(je) < next || json_integer_value(je) > d0) {
                snprintf(msg, sizeof msg,
                         "tensor \"%s\": rows of rank file %d: expected [%lld, end] with end in [%lld, %lld], in order "
                         "(the ranks' rows must tile dim 0)",
                         name, r, (long long)next, (long long)next, (long long)d0);
                return bad_index(d, x->ipath, msg);
            }
            b = json_integer_value(jb);
            e = json_integer_value(je);
            next = e;
        }
        if (e == b) continue;
        rt_st_file *f = &((rt_st_file *)x->files)[r];
        if (!f->path) {
            snprintf(msg, sizeof msg, "tensor \"%s\": rank file %d holds rows %lld..%lld, but \"files\" names no file for it",
                     name, r, (long long)b, (long long)e);
            return bad_index(d, x->ipath, msg);
        }
        const rt_st_tensor *ft = rt_st_find(f, name);
        if (!ft) {
            ax_error(d, f->path, "tensor \"%s\" is missing (the index %s says this file holds its rows %lld..%lld)", name,
                     x->ipath, (long long)b, (long long)e);
            return -1;
        }
        int same = ft->dtype == info.dtype && ft->rank == info.rank;
        for (int i = 0; same && i < info.rank; i++) same = ft->shape[i] == (i ? info.shape[i] : e - b);
        if (!same) {
            ax_error(d, f->path, "tensor \"%s\": dtype or shape differs from the index %s (rows %lld..%lld of a %s tensor)",
                     name, x->ipath, (long long)b, (long long)e, rt_st_dtype_name(info.dtype));
            return -1;
        }
        if (held) held[r]++;
        int64_t lo = b > rb ? b : rb, hi = e < re ? e : re; /* the rows this file gives */
        if (lo < hi)
            memcpy((char *)dst + (lo - rb) * row_bytes, (const char *)rt_st_data(f, ft) + (lo - b) * row_bytes,
                   (size_t)((hi - lo) * row_bytes));
    }
    if (info.rank && next != d0) {
        snprintf(msg, sizeof msg, "tensor \"%s\": the ranks' rows end at %lld, the tensor has %lld", name, (long long)next,
                 (long long)d0);
        return bad_index(d, x->ipath, msg);
    }
    return 0;
}

int rt_sharded_read(const rt_sharded_dir *x, const char *name, int64_t rb, int64_t re, void *dst, ax_diag *d) {
    return read_rows(x, name, rb, re, dst, NULL, d);
}

int rt_sharded_open(const char *dir, const char *index, rt_sharded_dir *x, ax_diag *d) {
    memset(x, 0, sizeof *x);
    char path[4096];
    if (ax_path_join(x->ipath, sizeof x->ipath, dir, index) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (!ax_file_exists(x->ipath)) {
        ax_error(d, dir, "no %s: not a %s (or an incomplete one)", index,
                 strcmp(index, RT_SHARDED_INDEX) ? "checkpoint's optimizer state" : "SHARDED_STATE_DICT checkpoint");
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(x->ipath, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ax_error(d, x->ipath, "line %d, column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    x->root = root;
    json_t *jf = json_object_get(root, "files"), *jt = json_object_get(root, "tensors"), *jw = json_object_get(root, "world_size");
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!json_is_object(root) || !fmt || strcmp(fmt, RT_SHARDED_FORMAT) != 0) {
        bad_index(d, x->ipath, "expected \"format\": \"" RT_SHARDED_FORMAT "\"");
        goto fail;
    }
    if (json_integer_value(json_object_get(root, "version")) != 1) {
        bad_index(d, x->ipath, "expected \"version\": 1 (written by another axo version?)");
        goto fail;
    }
    x->world = json_is_integer(jw) ? (int)json_integer_value(jw) : 0;
    if (x->world < 1 || x->world > MAX_RANK_FILES || !json_is_array(jf) || (int)json_array_size(jf) != x->world ||
        !json_is_object(jt)) {
        bad_index(d, x->ipath, "expected \"world_size\" (1..65536), \"files\" (one name per rank) and \"tensors\"");
        goto fail;
    }
    x->tensors = jt;
    rt_st_file *files = calloc((size_t)x->world, sizeof *files);
    x->files = files;
    for (; x->nopen < x->world; x->nopen++) {
        json_t *je0 = json_array_get(jf, (size_t)x->nopen);
        if (json_is_null(je0)) continue; /* a rank that held no rows */
        const char *fn = json_string_value(je0);
        if (!fn || !plain_name(fn)) {
            bad_index(d, x->ipath, "\"files\": expected plain file names in the checkpoint directory (or null)");
            goto fail;
        }
        if (ax_path_join(path, sizeof path, dir, fn) != 0) {
            ax_error(d, dir, "path too long");
            goto fail;
        }
        if (rt_st_open(path, &files[x->nopen], d) != 0) {
            ax_error(d, path, "rank file %d of the sharded checkpoint %s cannot be read", x->nopen, dir);
            goto fail;
        }
    }
    x->ntensors = (int)json_object_size(jt);
    return 0;
fail:
    rt_sharded_close(x);
    return -1;
}

const char *rt_sharded_name(const rt_sharded_dir *x, int i) {
    int k = 0;
    const char *name;
    json_t *t;
    json_object_foreach((json_t *)x->tensors, name, t) {
        if (k++ == i) return name;
    }
    return NULL;
}

void rt_sharded_close(rt_sharded_dir *x) {
    rt_st_file *files = x->files;
    for (int r = 0; r < x->nopen; r++) rt_st_close(&files[r]);
    free(files);
    json_decref((json_t *)x->root);
    memset(x, 0, sizeof *x);
}

int rt_sharded_load(const char *dir, rt_sharded_ckpt *c, ax_diag *d) {
    memset(c, 0, sizeof *c);
    rt_sharded_dir x;
    if (rt_sharded_open(dir, RT_SHARDED_INDEX, &x, d) != 0) return -1;
    char path[4096];
    c->arena = ax_arena_create();
    c->world = x.world;
    int rc = -1;
    int *held = calloc((size_t)x.world, sizeof *held);
    c->ntensors = x.ntensors;
    c->tensors = ax_arena_alloc(c->arena, sizeof *c->tensors * ((size_t)c->ntensors + 1));
    const char *name;
    json_t *t;
    int k = 0;
    json_object_foreach((json_t *)x.tensors, name, t) {
        rt_sharded_tensor *o = &c->tensors[k++];
        if (tensor_info(&x, name, t, o, d) != 0) goto out;
        o->name = ax_arena_strdup(c->arena, name);
        o->data = ax_arena_alloc(c->arena, o->nbytes + 1);
        if (read_rows(&x, name, 0, o->rank ? o->shape[0] : 1, o->data, held, d) != 0) goto out;
    }
    rt_st_file *files = x.files;
    for (int r = 0; r < c->world; r++)
        if (files[r].path && held[r] != files[r].ntensors) {
            ax_error(d, files[r].path, "holds %d tensors but the index %s places %d in it", files[r].ntensors, x.ipath, held[r]);
            goto out;
        }
    qsort(c->tensors, (size_t)c->ntensors, sizeof *c->tensors, cmp_tensor);
    if (ax_path_join(path, sizeof path, dir, "config.json") == 0 && ax_file_exists(path)) {
        size_t len;
        char *cfg = ax_read_file(path, &len, d);
        if (!cfg) goto out;
        c->config_json = ax_arena_alloc(c->arena, len + 1);
        memcpy(c->config_json, cfg, len);
        c->config_len = len;
        free(cfg);
    }
    rc = 0;
out:
    free(held);
    rt_sharded_close(&x);
    if (rc) rt_sharded_free(c);
    return rc;
}

void rt_sharded_free(rt_sharded_ckpt *c) {
    ax_arena_destroy(c->arena);
    memset(c, 0, sizeof *c);
}

int rt_sharded_merge(const char *dir, const char *out_dir, int overwrite, ax_diag *d) {
    char *a = realpath(dir, NULL), *b = realpath(out_dir, NULL);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    if (same) {
        ax_error(d, out_dir, "is the checkpoint being merged; choose another output directory");
        return -1;
    }
    rt_sharded_ckpt c;
    if (rt_sharded_load(dir, &c, d) != 0) return -1;
    int exists, rc = -1;
    char tmp[4096], path[4096];
    rt_st_out *outs = calloc((size_t)c.ntensors + 1, sizeof *outs);
    rt_st_file cf = {0}; /* a multimodal model's vision tower and projector, saved beside the rank files */
    if (ax_path_join(path, sizeof path, dir, RT_SHARDED_CARRIED) == 0 && ax_file_exists(path) &&
        rt_st_open(path, &cf, d) != 0)
        goto out;
    if (rt_modeldir_begin(out_dir, overwrite, (long)getpid(), tmp, sizeof tmp, &exists, d) != 0) goto out;
    for (int i = 0; i < c.ntensors; i++)
        outs[i] = (rt_st_out){.name = c.tensors[i].name, .dtype = c.tensors[i].dtype, .rank = c.tensors[i].rank,
                              .shape = c.tensors[i].shape, .data = c.tensors[i].data};
    int n = c.ntensors;
    if (cf.ntensors) {
        rt_st_out *more = realloc(outs, sizeof *outs * (size_t)(n + cf.ntensors + 1));
        if (!more) abort();
        outs = more;
        for (int i = 0; i < cf.ntensors; i++) {
            const rt_st_tensor *t = &cf.tensors[i];
            outs[n++] = (rt_st_out){.name = t->name, .dtype = t->dtype, .rank = t->rank, .shape = t->shape,
                                    .data = rt_st_data(&cf, t)};
        }
    }
    rc = ax_path_join(path, sizeof path, tmp, "model.safetensors") != 0 || rt_st_write(path, outs, n, d) != 0;
    if (!rc && c.config_json)
        rc = ax_path_join(path, sizeof path, tmp, "config.json") != 0 ||
             ax_write_file_atomic(path, c.config_json, c.config_len, d) != 0;
    if (!rc) rc = rt_modeldir_publish(tmp, out_dir, exists, d) != 0;
    if (rc) {
        rt_modeldir_remove(tmp);
        rc = -1;
    }
out:
    free(outs);
    rt_st_close(&cf);
    rt_sharded_free(&c);
    return rc;
}
