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

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANK_FILES 65536

static void rank_file_name(char *out, size_t cap, int r, int n) {
    snprintf(out, cap, "model-rank%05d-of-%05d.safetensors", r, n);
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

/* Sum of v over the whole world: an all_reduce along every mesh axis in
 * turn (a sum over a product mesh). */
static int world_sum(rt_session *s, float *v, int n) {
    for (int a = 0; a < s->m->nmesh; a++) {
        if (s->m->mesh_sizes[a] == 1) continue;
        if (!s->st.coll || s->st.coll->all_reduce(s->st.coll->ctx, a, v, n) != 0) return -1;
    }
    return 0;
}

/* Removes a checkpoint or model dir axo wrote: only the file names axo
 * writes, then the dir if that left it empty (a user's own files stay). */
/* ---- saving ------------------------------------------------------------------ */
static const char *param_name(const ir_global *G) { return ir_attr_str(G->attrs, G->nattrs, "hf", G->name); }

/* This rank's rows of every parameter into dir/<rank file>. */
static int write_rank_file(rt_session *s, const char *dir, int r, int n, ax_diag *d) {
    const ir_module *m = s->m;
    rt_st_out *outs = calloc((size_t)m->nglobals + 1, sizeof *outs);
    int64_t(*shapes)[IR_MAX_RANK] = calloc((size_t)m->nglobals + 1, sizeof *shapes);
    void **bufs = calloc((size_t)m->nglobals + 1, sizeof *bufs);
    int k = 0;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM) continue;
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
        outs[k].name = param_name(G);
        outs[k].rank = t->rank;
        outs[k].shape = shapes[k];
        if (t->dtype == IR_BF16) {
            uint16_t *h = malloc(sizeof *h * (size_t)cnt);
            for (int64_t i = 0; i < cnt; i++) h[i] = ax_f32_to_bf16(src[i]);
            outs[k].dtype = RT_ST_BF16;
            outs[k].data = bufs[k] = h;
        } else {
            outs[k].dtype = RT_ST_F32;
            outs[k].data = src;
        }
        k++;
    }
    char name[96], path[4096];
    rank_file_name(name, sizeof name, r, n);
    int rc = -1;
    if (ax_path_join(path, sizeof path, dir, name) != 0)
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
static int finish(rt_session *s, const char *tmp, const char *dir, int exists, int n, ax_diag *d) {
    const ir_module *m = s->m;
    ax_buf b = {0};
    char name[96], path[4096];
    ax_buf_printf(&b, "{\n \"format\": \"%s\",\n \"version\": 1,\n \"world_size\": %d,\n \"files\": [", RT_SHARDED_FORMAT, n);
    for (int r = 0; r < n; r++) {
        rank_file_name(name, sizeof name, r, n);
        ax_buf_printf(&b, "%s\n  \"%s\"", r ? "," : "", name);
    }
    ax_buf_puts(&b, "\n ],\n \"tensors\": {");
    int first = 1;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM) continue;
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string(G->type.dtype == IR_BF16 ? "BF16" : "F32"));
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
        put_json(&b, json_string(param_name(G)));
        ax_buf_puts(&b, ": ");
        put_json(&b, t);
    }
    ax_buf_puts(&b, "\n }\n}\n");
    char *text = ax_buf_steal(&b);
    int rc = 0;
    if (s->hf_config)
        rc = ax_path_join(path, sizeof path, tmp, "config.json") != 0 ||
             ax_write_file_atomic(path, s->hf_config, s->hf_config_len, d) != 0;
    if (!rc) /* the index last: a directory without it is not a checkpoint */
        rc = ax_path_join(path, sizeof path, tmp, RT_SHARDED_INDEX) != 0 ||
             ax_write_file_atomic(path, text, strlen(text), d) != 0;
    free(text);
    if (!rc) rc = rt_modeldir_publish(tmp, dir, exists, d) != 0;
    if (rc) rt_modeldir_remove(tmp);
    return rc ? -1 : 0;
}

int rt_session_save_sharded(rt_session *s, const char *dir, int overwrite, ax_diag *d) {
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
        if (m->globals[g].role == IR_ROLE_PARAM && t->shard.axis >= 0 && (t->shard.axis != dp || t->shard.dim != 0)) {
            ax_error(d, m->globals[g].name, "SHARDED_STATE_DICT: split on dim %d over mesh axis %s; only parameters "
                     "split on dim 0 over dp can be saved sharded", t->shard.dim, m->mesh_names[t->shard.axis]);
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
    if (world_sum(s, v, 3) != 0) {
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
    int bad = writer ? write_rank_file(s, tmp, me, n, d) != 0 : 0;
    v[0] = (float)bad;
    if (world_sum(s, v, 1) != 0 || v[0] > 0) {
        if (!bad)
            ax_error(d, dir, lead ? "checkpoint not written: another rank could not write its file"
                                  : "checkpoint not written: another rank could not write its file (aborted)");
        if (lead) rt_modeldir_remove(tmp);
        return -1;
    }
    /* 3. rank 0: config.json, the index, rename into place */
    bad = lead ? finish(s, tmp, dir, exists, n, d) != 0 : 0;
    v[0] = (float)bad;
    if (world_sum(s, v, 1) != 0 || v[0] > 0) {
        if (!bad) ax_error(d, dir, "checkpoint not written: rank 0 could not complete it (aborted)");
        return -1;
    }
    return 0;
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

static int load_tensor(rt_sharded_ckpt *c, const char *ipath, const char *name, json_t *t, rt_st_file *files, int *held,
                       rt_sharded_tensor *out, ax_diag *d) {
    char msg[512];
    json_t *jd = json_object_get(t, "dtype"), *js = json_object_get(t, "shape"), *jr = json_object_get(t, "rows");
    int dt = json_is_string(jd) ? rt_st_dtype_parse(json_string_value(jd)) : -1;
    if (!json_is_object(t) || dt < 0 || !json_is_array(js) || json_array_size(js) > RT_ST_MAX_RANK) {
        snprintf(msg, sizeof msg, "tensor \"%s\": expected {\"dtype\": a safetensors dtype, \"shape\": [dims], \"rows\": ...}", name);
        return bad_index(d, ipath, msg);
    }
    out->name = ax_arena_strdup(c->arena, name);
    out->dtype = (rt_st_dtype)dt;
    out->rank = (int)json_array_size(js);
    int64_t numel = 1;
    for (int i = 0; i < out->rank; i++) {
        json_t *x = json_array_get(js, (size_t)i);
        int64_t v = json_is_integer(x) ? json_integer_value(x) : -1;
        if (v < 0 || v > ((int64_t)1 << 48) || (v && numel > ((int64_t)1 << 48) / v)) {
            snprintf(msg, sizeof msg, "tensor \"%s\": shape[%d] is not a dimension (a non-negative integer, at most 2^48 elements)",
                     name, i);
            return bad_index(d, ipath, msg);
        }
        out->shape[i] = v;
        numel *= v;
    }
    size_t esz = rt_st_dtype_size(out->dtype);
    out->nbytes = (size_t)numel * esz;
    out->data = ax_arena_alloc(c->arena, out->nbytes + 1);
    int64_t row_bytes = out->rank && out->shape[0] ? (int64_t)out->nbytes / out->shape[0] : (int64_t)out->nbytes;
    /* which file holds which rows: they must tile [0, d0) in rank order */
    int64_t d0 = out->rank ? out->shape[0] : 1;
    if (out->rank && (!json_is_array(jr) || (int)json_array_size(jr) != c->world)) {
        snprintf(msg, sizeof msg, "tensor \"%s\": \"rows\" must list one [begin, end) per rank file (%d)", name, c->world);
        return bad_index(d, ipath, msg);
    }
    int64_t next = 0;
    for (int r = 0; r < c->world; r++) {
        int64_t b = 0, e = r ? 0 : 1;
        if (out->rank) {
            json_t *p = json_array_get(jr, (size_t)r), *jb = json_array_get(p, 0), *je = json_array_get(p, 1);
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(jb) || !json_is_integer(je) ||
                json_integer_value(jb) != next || json_integer_value(je) < next || json_integer_value(je) > d0) {
                snprintf(msg, sizeof msg,
                         "tensor \"%s\": rows of rank file %d: expected [%lld, end] with end in [%lld, %lld], in order "
                         "(the ranks' rows must tile dim 0)",
                         name, r, (long long)next, (long long)next, (long long)d0);
                return bad_index(d, ipath, msg);
            }
            b = json_integer_value(jb);
            e = json_integer_value(je);
            next = e;
        }
        if (e == b) continue;
        const rt_st_tensor *ft = rt_st_find(&files[r], name);
        if (!ft) {
            ax_error(d, files[r].path, "tensor \"%s\" is missing (the index %s says this file holds its rows %lld..%lld)", name,
                     ipath, (long long)b, (long long)e);
            return -1;
        }
        int same = ft->dtype == out->dtype && ft->rank == out->rank;
        for (int i = 0; same && i < out->rank; i++) same = ft->shape[i] == (i ? out->shape[i] : e - b);
        if (!same) {
            ax_error(d, files[r].path, "tensor \"%s\": dtype or shape differs from the index %s (rows %lld..%lld of a %s tensor)",
                     name, ipath, (long long)b, (long long)e, rt_st_dtype_name(out->dtype));
            return -1;
        }
        memcpy((char *)out->data + b * row_bytes, rt_st_data(&files[r], ft), (size_t)((e - b) * row_bytes));
        held[r]++;
    }
    if (out->rank && next != d0) {
        snprintf(msg, sizeof msg, "tensor \"%s\": the ranks' rows end at %lld, the tensor has %lld", name, (long long)next,
                 (long long)d0);
        return bad_index(d, ipath, msg);
    }
    return 0;
}

int rt_sharded_load(const char *dir, rt_sharded_ckpt *c, ax_diag *d) {
    memset(c, 0, sizeof *c);
    char ipath[4096], path[4096];
    if (ax_path_join(ipath, sizeof ipath, dir, RT_SHARDED_INDEX) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (!ax_file_exists(ipath)) {
        ax_error(d, dir, "no %s: not a SHARDED_STATE_DICT checkpoint (or an incomplete one)", RT_SHARDED_INDEX);
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ax_error(d, ipath, "line %d, column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    c->arena = ax_arena_create();
    int rc = -1, nf = 0;
    rt_st_file *files = NULL;
    int *held = NULL;
    json_t *jf = json_object_get(root, "files"), *jt = json_object_get(root, "tensors"), *jw = json_object_get(root, "world_size");
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!json_is_object(root) || !fmt || strcmp(fmt, RT_SHARDED_FORMAT) != 0) {
        bad_index(d, ipath, "expected \"format\": \"" RT_SHARDED_FORMAT "\"");
        goto out;
    }
    if (json_integer_value(json_object_get(root, "version")) != 1) {
        bad_index(d, ipath, "expected \"version\": 1 (written by another axo version?)");
        goto out;
    }
    c->world = json_is_integer(jw) ? (int)json_integer_value(jw) : 0;
    if (c->world < 1 || c->world > MAX_RANK_FILES || !json_is_array(jf) || (int)json_array_size(jf) != c->world ||
        !json_is_object(jt)) {
        bad_index(d, ipath, "expected \"world_size\" (1..65536), \"files\" (one name per rank) and \"tensors\"");
        goto out;
    }
    files = calloc((size_t)c->world, sizeof *files);
    held = calloc((size_t)c->world, sizeof *held);
    for (; nf < c->world; nf++) {
        const char *fn = json_string_value(json_array_get(jf, (size_t)nf));
        if (!fn || !plain_name(fn)) {
            bad_index(d, ipath, "\"files\": expected plain file names in the checkpoint directory");
            goto out;
        }
        if (ax_path_join(path, sizeof path, dir, fn) != 0) {
            ax_error(d, dir, "path too long");
            goto out;
        }
        if (rt_st_open(path, &files[nf], d) != 0) {
            ax_error(d, path, "rank file %d of the sharded checkpoint %s cannot be read", nf, dir);
            goto out;
        }
    }
    c->ntensors = (int)json_object_size(jt);
    c->tensors = ax_arena_alloc(c->arena, sizeof *c->tensors * ((size_t)c->ntensors + 1));
    const char *name;
    json_t *t;
    int k = 0;
    json_object_foreach(jt, name, t) {
        if (load_tensor(c, ipath, name, t, files, held, &c->tensors[k++], d) != 0) goto out;
    }
    for (int r = 0; r < c->world; r++)
        if (held[r] != files[r].ntensors) {
            ax_error(d, files[r].path, "holds %d tensors but the index %s places %d in it", files[r].ntensors, ipath, held[r]);
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
    for (int r = 0; r < nf; r++) rt_st_close(&files[r]);
    free(files);
    free(held);
    json_decref(root);
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
    if (rt_modeldir_begin(out_dir, overwrite, (long)getpid(), tmp, sizeof tmp, &exists, d) != 0) goto out;
    for (int i = 0; i < c.ntensors; i++)
        outs[i] = (rt_st_out){.name = c.tensors[i].name, .dtype = c.tensors[i].dtype, .rank = c.tensors[i].rank,
                              .shape = c.tensors[i].shape, .data = c.tensors[i].data};
    rc = ax_path_join(path, sizeof path, tmp, "model.safetensors") != 0 || rt_st_write(path, outs, c.ntensors, d) != 0;
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
    rt_sharded_free(&c);
    return rc;
}
