#include "runtime/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes ------------------------------------------------------------ */
static const struct {
    const char *name;
    size_t size;
} st_dtypes[RT_ST_NDTYPES] = {
    [RT_ST_BOOL] = {"BOOL", 1},       [RT_ST_U8] = {"U8", 1},   [RT_ST_I8] = {"I8", 1},
    [RT_ST_I16] = {"I16", 2},         [RT_ST_U16] = {"U16", 2}, [RT_ST_F16] = {"F16", 2},
    [RT_ST_BF16] = {"BF16", 2},       [RT_ST_I32] = {"I32", 4}, [RT_ST_U32] = {"U32", 4},
    [RT_ST_F32] = {"F32", 4},         [RT_ST_I64] = {"I64", 8}, [RT_ST_U64] = {"U64", 8},
    [RT_ST_F64] = {"F64", 8},         [RT_ST_F8_E4M3] = {"F8_E4M3", 1},
    [RT_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *rt_st_dtype_name(rt_st_dtype t) {
    return (unsigned)t < RT_ST_NDTYPES ? st_dtypes[t].name : NULL;
}

int rt_st_dtype_parse(const char *s) {
    for (int i = 0; i < RT_ST_NDTYPES; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) return i;
    return -1;
}

size_t rt_st_dtype_size(rt_st_dtype t) { return (unsigned)t < RT_ST_NDTYPES ? st_dtypes[t].size : 0; }

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- reader ------------------------------------------------------------ */

/* Byte offset in the file of a tensor's key in the header (best effort: the
 * first occurrence of the quoted name), or of the header start. */
static size_t key_offset(const rt_st_file *f, size_t hlen, const char *name) {
    size_t n = strlen(name);
    char *q = malloc(n + 3);
    if (!q) abort();
    q[0] = '"';
    memcpy(q + 1, name, n);
    q[n + 1] = '"';
    q[n + 2] = 0;
    const uint8_t *hit = memmem(f->base + 8, hlen, q, n + 2);
    free(q);
    return hit ? (size_t)(hit - f->base) : 8;
}

/* Reads a non-negative JSON integer; 0 on success. */
static int json_nonneg(const json_t *v, int64_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (int64_t)x;
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const rt_st_tensor *)a)->name, ((const rt_st_tensor *)b)->name);
}

static int cmp_tensor_ptr_begin(const void *a, const void *b) {
    const rt_st_tensor *x = *(const rt_st_tensor *const *)a, *y = *(const rt_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

typedef struct {
    const char *k, *v;
} st_kv;

static int cmp_kv(const void *a, const void *b) { return strcmp(((const st_kv *)a)->k, ((const st_kv *)b)->k); }

/* Validates one tensor entry into *t. On error fills d and returns -1. */
static int parse_tensor(rt_st_file *f, size_t hlen, const char *name, json_t *v, rt_st_tensor *t, ax_diag *d) {
    const char *P = f->path;
    size_t at = key_offset(f, hlen, name);
    if (!json_is_object(v)) {
        ax_error(d, P, "tensor '%s': expected an object (byte offset %zu)", name, at);
        return -1;
    }
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!jd || !json_is_string(jd)) {
        ax_error(d, P, "tensor '%s': dtype: %s (byte offset %zu)", name, jd ? "expected a string" : "missing", at);
        return -1;
    }
    int dt = rt_st_dtype_parse(json_string_value(jd));
    if (dt < 0) {
        ax_error(d, P, "tensor '%s': dtype: unknown dtype '%s' (byte offset %zu)", name, json_string_value(jd), at);
        return -1;
    }
    if (!js || !json_is_array(js)) {
        ax_error(d, P, "tensor '%s': shape: %s (byte offset %zu)", name, js ? "expected an array" : "missing", at);
        return -1;
    }
    size_t rank = json_array_size(js);
    if (rank > RT_ST_MAX_RANK) {
        ax_error(d, P, "tensor '%s': shape: rank %zu exceeds the supported %d (byte offset %zu)", name, rank,
                 RT_ST_MAX_RANK, at);
        return -1;
    }
    memset(t, 0, sizeof *t);
    t->name = ax_arena_strdup(f->arena, name);
    t->dtype = (rt_st_dtype)dt;
    t->rank = (int)rank;
    t->numel = 1;
    for (size_t i = 0; i < rank; i++) {
        int64_t dim;
        if (json_nonneg(json_array_get(js, i), &dim) != 0) {
            ax_error(d, P, "tensor '%s': shape[%zu]: expected a non-negative integer (byte offset %zu)", name, i, at);
            return -1;
        }
        t->shape[i] = dim;
        if (dim != 0 && t->numel > INT64_MAX / dim) {
            ax_error(d, P, "tensor '%s': shape: element count overflows (byte offset %zu)", name, at);
            return -1;
        }
        t->numel *= dim;
    }
    int64_t b, e;
    if (!jo || !json_is_array(jo) || json_array_size(jo) != 2 || json_nonneg(json_array_get(jo, 0), &b) != 0 ||
        json_nonneg(json_array_get(jo, 1), &e) != 0) {
        ax_error(d, P, "tensor '%s': data_offsets: %s (byte offset %zu)", name,
                 jo ? "expected [begin, end] of non-negative integers" : "missing", at);
        return -1;
    }
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    size_t data_at = f->size - f->data_size; /* file offset of the data area */
    if (t->begin > t->end) {
        ax_error(d, P, "tensor '%s': data_offsets [%lld, %lld]: begin > end (byte offset %zu)", name, (long long)b,
                 (long long)e, at);
        return -1;
    }
    if (t->end > f->data_size) {
        ax_error(d, P,
                 "tensor '%s': data_offsets [%lld, %lld] run past the end of the data area (%zu bytes; "
                 "tensor would end at byte offset %llu of a %zu-byte file)",
                 name, (long long)b, (long long)e, f->data_size, (unsigned long long)(data_at + t->end), f->size);
        return -1;
    }
    uint64_t esz = st_dtypes[dt].size;
    if ((uint64_t)t->numel > UINT64_MAX / esz || (uint64_t)t->numel * esz != t->end - t->begin) {
        ax_error(d, P,
                 "tensor '%s': data_offsets [%lld, %lld] hold %llu bytes but %s shape needs %lld x %llu bytes "
                 "(byte offset %llu)",
                 name, (long long)b, (long long)e, (unsigned long long)(t->end - t->begin), st_dtypes[dt].name,
                 (long long)t->numel, (unsigned long long)esz, (unsigned long long)(data_at + t->begin));
        return -1;
    }
    return 0;
}

static int st_parse(rt_st_file *f, ax_diag *d) {
    const char *P = f->path;
    if (f->size < 8) {
        ax_error(d, P, "file is %zu bytes, too short for the 8-byte header length (byte offset 0)", f->size);
        return -1;
    }
    uint64_t hlen = load_le64(f->base);
    if (hlen > f->size - 8) {
        ax_error(d, P, "header length %llu (byte offset 0) exceeds the %zu bytes that follow it",
                 (unsigned long long)hlen, f->size - 8);
        return -1;
    }
    if (hlen > RT_ST_MAX_HEADER) {
        ax_error(d, P, "header length %llu (byte offset 0) exceeds the limit of %llu bytes", (unsigned long long)hlen,
                 (unsigned long long)RT_ST_MAX_HEADER);
        return -1;
    }
    if (hlen < 2 || f->base[8] != '{') {
        ax_error(d, P, "header is not a JSON object (byte offset 8)");
        return -1;
    }
    f->data = f->base + 8 + hlen;
    f->data_size = f->size - 8 - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        ax_error(d, P, "header JSON: %s (byte offset %llu)", jerr.text, (unsigned long long)(8 + jerr.position));
        return -1;
    }
    if (!json_is_object(root)) {
        ax_error(d, P, "header is not a JSON object (byte offset 8)");
        json_decref(root);
        return -1;
    }
    size_t nkeys = json_object_size(root);
    f->tensors = ax_arena_alloc(f->arena, (nkeys ? nkeys : 1) * sizeof *f->tensors);
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                ax_error(d, P, "__metadata__: expected an object (byte offset %zu)", key_offset(f, hlen, key));
                rc = -1;
                break;
            }
            size_t nm = json_object_size(v);
            st_kv *kv = ax_arena_alloc(f->arena, (nm ? nm : 1) * sizeof *kv);
            const char *mk;
            json_t *mv;
            int i = 0;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    ax_error(d, P, "__metadata__.%s: expected a string (byte offset %zu)", mk,
                             key_offset(f, hlen, mk));
                    rc = -1;
                    break;
                }
                kv[i].k = ax_arena_strdup(f->arena, mk);
                kv[i].v = ax_arena_strdup(f->arena, json_string_value(mv));
                i++;
            }
            if (rc) break;
            qsort(kv, (size_t)i, sizeof *kv, cmp_kv);
            f->meta_keys = ax_arena_alloc(f->arena, ((size_t)i + 1) * sizeof *f->meta_keys);
            f->meta_values = ax_arena_alloc(f->arena, ((size_t)i + 1) * sizeof *f->meta_values);
            for (int j = 0; j < i; j++) {
                f->meta_keys[j] = kv[j].k;
                f->meta_values[j] = kv[j].v;
            }
            f->nmeta = i;
            continue;
        }
        if (parse_tensor(f, (size_t)hlen, key, v, &f->tensors[f->ntensors], d) != 0) {
            rc = -1;
            break;
        }
        f->ntensors++;
    }
    json_decref(root);
    if (rc) return -1;

    /* Overlap check: sort by begin; each non-empty range must start at or
     * after the furthest end seen so far. */
    rt_st_tensor **by = malloc(((size_t)f->ntensors + 1) * sizeof *by);
    if (!by) abort();
    for (int i = 0; i < f->ntensors; i++) by[i] = &f->tensors[i];
    qsort(by, (size_t)f->ntensors, sizeof *by, cmp_tensor_ptr_begin);
    const rt_st_tensor *prev = NULL;
    for (int i = 0; i < f->ntensors; i++) {
        const rt_st_tensor *t = by[i];
        if (t->begin == t->end) continue;
        if (prev && t->begin < prev->end) {
            ax_error(d, P, "tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu] (byte offset %llu)",
                     t->name, (unsigned long long)t->begin, (unsigned long long)t->end, prev->name,
                     (unsigned long long)prev->begin, (unsigned long long)prev->end,
                     (unsigned long long)(8 + hlen + t->begin));
            rc = -1;
            break;
        }
        if (!prev || t->end > prev->end) prev = t;
    }
    free(by);
    if (rc) return -1;
    qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, cmp_tensor_name);
    return 0;
}

int rt_st_open_buffer(const void *buf, size_t len, const char *name, rt_st_file *f, ax_diag *d) {
    memset(f, 0, sizeof *f);
    f->arena = ax_arena_create();
    f->path = ax_arena_strdup(f->arena, name ? name : "<buffer>");
    f->base = buf;
    f->size = len;
    if (st_parse(f, d) != 0) {
        rt_st_close(f);
        return -1;
    }
    return 0;
}

int rt_st_open(const char *path, rt_st_file *f, ax_diag *d) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        ax_error(d, path, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ax_error(d, path, "not a regular file");
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        ax_error(d, path, "file is %zu bytes, too short for the 8-byte header length (byte offset 0)", size);
        return -1;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        ax_error(d, path, "cannot mmap: %s", strerror(errno));
        return -1;
    }
    f->arena = ax_arena_create();
    f->path = ax_arena_strdup(f->arena, path);
    f->base = p;
    f->size = size;
    f->mapped = 1;
    if (st_parse(f, d) != 0) {
        rt_st_close(f);
        return -1;
    }
    return 0;
}

void rt_st_close(rt_st_file *f) {
    if (!f) return;
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    ax_arena_destroy(f->arena);
    memset(f, 0, sizeof *f);
}

const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name) {
    int lo = 0, hi = f->ntensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rt_st_meta(const rt_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

const void *rt_st_data(const rt_st_file *f, const rt_st_tensor *t) { return f->data + t->begin; }

int rt_st_widen(rt_st_dtype dt, const void *raw, int64_t n, float *out) {
    const uint8_t *src = raw;
    switch (dt) {
    case RT_ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(out, src, (size_t)n * 4);
        return 0;
#endif
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = src + 4 * i;
            union { uint32_t u; float f; } v;
            v.u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            out[i] = v.f;
        }
        return 0;
    case RT_ST_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = ax_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    case RT_ST_F16:
        for (int64_t i = 0; i < n; i++) out[i] = ax_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    case RT_ST_U8:
        for (int64_t i = 0; i < n; i++) out[i] = (float)src[i];
        return 0;
    default:
        return -1;
    }
}

/* Widens n elements of a weight tensor starting at src (any alignment) to
 * f32: F32, BF16 or F16 (codes such as U8 are not weights). */
static int convert_f32(const rt_st_file *f, const rt_st_tensor *t, const uint8_t *src, int64_t n, float *out,
                       ax_diag *d) {
    if (t->dtype == RT_ST_U8 || rt_st_widen(t->dtype, src, n, out) != 0) {
        ax_error(d, f->path, "tensor '%s': dtype %s cannot be read as f32 (byte offset %llu)", t->name,
                 st_dtypes[t->dtype].name, (unsigned long long)(f->data - f->base + t->begin));
        return -1;
    }
    return 0;
}

int rt_st_read_f32(const rt_st_file *f, const rt_st_tensor *t, float *out, ax_diag *d) {
    return convert_f32(f, t, f->data + t->begin, t->numel, out, d);
}

int rt_st_read_f32_rows(const rt_st_file *f, const rt_st_tensor *t, int64_t row_begin, int64_t row_count,
                        float *out, ax_diag *d) {
    if (t->rank < 1) {
        ax_error(d, f->path, "tensor '%s': a row range needs rank >= 1, tensor is a scalar", t->name);
        return -1;
    }
    int64_t rows = t->shape[0];
    if (row_begin < 0 || row_count < 0 || row_begin > rows || row_count > rows - row_begin) {
        ax_error(d, f->path, "tensor '%s': rows [%lld, %lld) out of range for dim 0 of size %lld", t->name,
                 (long long)row_begin, (long long)(row_begin + row_count), (long long)rows);
        return -1;
    }
    if (row_count == 0) return 0;
    int64_t row_elems = t->numel / rows;
    size_t esz = st_dtypes[t->dtype].size;
    const uint8_t *src = f->data + t->begin + (size_t)row_begin * (size_t)row_elems * esz;
    return convert_f32(f, t, src, row_count * row_elems, out, d);
}

/* ---- model directories ------------------------------------------------- */
static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const rt_st_entry *)a)->name, ((const rt_st_entry *)b)->name);
}

static char *join_path(ax_arena *a, const char *dir, const char *file) {
    size_t n = strlen(dir);
    return ax_arena_printf(a, "%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", file);
}

static int open_index(rt_st_model *m, const char *ipath, ax_diag *d) {
    size_t len;
    char *text = ax_read_file(ipath, &len, d);
    if (!text) return -1;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) {
        char loc[512];
        ax_error(d, ax_loc(loc, sizeof loc, ipath, jerr.line, jerr.column), "invalid JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!wm || !json_is_object(wm)) {
        ax_error(d, ipath, "weight_map: %s", wm ? "expected an object" : "missing");
        goto done;
    }
    size_t n = json_object_size(wm);
    char **files = ax_arena_alloc(m->arena, (n ? n : 1) * sizeof *files);
    m->entries = ax_arena_alloc(m->arena, (n ? n : 1) * sizeof *m->entries);
    const char **ent_file = ax_arena_alloc(m->arena, (n ? n : 1) * sizeof *ent_file);
    size_t nf = 0, ne = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        const char *fn = json_is_string(v) ? json_string_value(v) : NULL;
        if (!fn || !fn[0] || strchr(fn, '/') || strcmp(fn, ".") == 0 || strcmp(fn, "..") == 0) {
            ax_error(d, ipath, "weight_map.%s: expected a shard file name in the same directory", key);
            goto done;
        }
        m->entries[ne].name = ax_arena_strdup(m->arena, key);
        ent_file[ne] = ax_arena_strdup(m->arena, fn);
        files[nf++] = (char *)ent_file[ne];
        ne++;
    }
    qsort(files, nf, sizeof *files, cmp_str_ptr);
    size_t u = 0;
    for (size_t i = 0; i < nf; i++)
        if (u == 0 || strcmp(files[u - 1], files[i]) != 0) files[u++] = files[i];
    m->shards = calloc(u ? u : 1, sizeof *m->shards);
    if (!m->shards) abort();
    for (size_t i = 0; i < u; i++) {
        if (rt_st_open(join_path(m->arena, m->dir, files[i]), &m->shards[i], d) != 0) goto done;
        m->nshards++;
    }
    int missing = 0;
    for (size_t i = 0; i < ne; i++) {
        char **hit = bsearch(&ent_file[i], files, u, sizeof *files, cmp_str_ptr);
        int s = (int)(hit - files);
        m->entries[i].shard = s;
        m->entries[i].tensor = rt_st_find(&m->shards[s], m->entries[i].name);
        if (!m->entries[i].tensor) {
            ax_error(d, ipath, "weight_map.%s: tensor '%s' is missing from its shard %s", m->entries[i].name,
                     m->entries[i].name, m->shards[s].path);
            missing++;
        }
    }
    if (missing) goto done;
    m->nentries = (int)ne;
    qsort(m->entries, ne, sizeof *m->entries, cmp_entry);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int rt_st_model_open(const char *dir, rt_st_model *m, ax_diag *d) {
    memset(m, 0, sizeof *m);
    m->arena = ax_arena_create();
    m->dir = ax_arena_strdup(m->arena, dir);
    char *ipath = join_path(m->arena, dir, "model.safetensors.index.json");
    char *spath = join_path(m->arena, dir, "model.safetensors");
    int rc;
    if (ax_file_exists(ipath)) {
        rc = open_index(m, ipath, d);
    } else if (ax_file_exists(spath)) {
        m->shards = calloc(1, sizeof *m->shards);
        if (!m->shards) abort();
        rc = rt_st_open(spath, &m->shards[0], d);
        if (rc == 0) {
            m->nshards = 1;
            const rt_st_file *f = &m->shards[0];
            m->entries = ax_arena_alloc(m->arena, ((size_t)f->ntensors + 1) * sizeof *m->entries);
            for (int i = 0; i < f->ntensors; i++)
                m->entries[i] = (rt_st_entry){f->tensors[i].name, 0, &f->tensors[i]};
            m->nentries = f->ntensors;
        }
    } else {
        ax_error(d, dir, "no model.safetensors or model.safetensors.index.json in this directory");
        rc = -1;
    }
    if (rc != 0) rt_st_model_close(m);
    return rc;
}

void rt_st_model_close(rt_st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nshards; i++) rt_st_close(&m->shards[i]);
    free(m->shards);
    ax_arena_destroy(m->arena);
    memset(m, 0, sizeof *m);
}

const rt_st_tensor *rt_st_model_find(const rt_st_model *m, const char *name, const rt_st_file **file) {
    rt_st_entry key = {name, 0, NULL};
    const rt_st_entry *e = bsearch(&key, m->entries, (size_t)m->nentries, sizeof *m->entries, cmp_entry);
    if (!e) return NULL;
    if (file) *file = &m->shards[e->shard];
    return e->tensor;
}

/* ---- writer ------------------------------------------------------------ */
/* Sorts indices by name without global state (the writer may run on any
 * rank thread): pairs of (name, index). */
typedef struct {
    const char *name;
    int idx;
} st_name_idx;
static int cmp_name_idx(const void *a, const void *b) {
    const st_name_idx *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

int rt_st_serialize(const rt_st_out *tensors, int n, ax_buf *b, ax_diag *d) {
    if (n < 0) n = 0;
    uint64_t *nbytes = calloc((size_t)n + 1, sizeof *nbytes);
    st_name_idx *byname = calloc((size_t)n + 1, sizeof *byname);
    int *order = calloc((size_t)n + 1, sizeof *order);
    if (!nbytes || !order || !byname) abort();
    int rc = -1;
    json_t *root = json_object();
    char *hdr = NULL;
    for (int i = 0; i < n; i++) {
        const rt_st_out *t = &tensors[i];
        const char *nm = t->name ? t->name : "(null)";
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
            ax_error(d, NULL, "safetensors write: tensor #%d: invalid name '%s'", i, nm);
            goto done;
        }
        if (!rt_st_dtype_name(t->dtype)) {
            ax_error(d, NULL, "safetensors write: tensor '%s': invalid dtype %d", nm, (int)t->dtype);
            goto done;
        }
        if (t->rank < 0 || t->rank > RT_ST_MAX_RANK || (t->rank > 0 && !t->shape)) {
            ax_error(d, NULL, "safetensors write: tensor '%s': invalid rank %d", nm, t->rank);
            goto done;
        }
        uint64_t numel = 1;
        for (int k = 0; k < t->rank; k++) {
            if (t->shape[k] < 0) {
                ax_error(d, NULL, "safetensors write: tensor '%s': shape[%d] = %lld is negative", nm, k,
                         (long long)t->shape[k]);
                goto done;
            }
            if (t->shape[k] != 0 && numel > (UINT64_MAX / 8) / (uint64_t)t->shape[k]) {
                ax_error(d, NULL, "safetensors write: tensor '%s': shape overflows", nm);
                goto done;
            }
            numel *= (uint64_t)t->shape[k];
        }
        nbytes[i] = numel * st_dtypes[t->dtype].size;
        if (nbytes[i] && !t->data) {
            ax_error(d, NULL, "safetensors write: tensor '%s': no data", nm);
            goto done;
        }
        byname[i] = (st_name_idx){t->name, i};
    }
    qsort(byname, (size_t)n, sizeof *byname, cmp_name_idx);
    for (int j = 0; j < n; j++) order[j] = byname[j].idx;
    uint64_t off = 0;
    for (int j = 0; j < n; j++) {
        const rt_st_out *t = &tensors[order[j]];
        if (j > 0 && strcmp(tensors[order[j - 1]].name, t->name) == 0) {
            ax_error(d, NULL, "safetensors write: duplicate tensor name '%s'", t->name);
            goto done;
        }
        json_t *shape = json_array();
        for (int k = 0; k < t->rank; k++) json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + nbytes[order[j]])));
        json_t *obj = json_object();
        json_object_set_new(obj, "dtype", json_string(st_dtypes[t->dtype].name));
        json_object_set_new(obj, "shape", shape);
        json_object_set_new(obj, "data_offsets", offs);
        if (json_object_set_new(root, t->name, obj) != 0) {
            ax_error(d, NULL, "safetensors write: tensor name '%s' is not valid UTF-8", t->name);
            goto done;
        }
        off += nbytes[order[j]];
    }
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    hdr = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!hdr) {
        ax_error(d, NULL, "safetensors write: cannot encode the header");
        goto done;
    }
    /* Pad with spaces so 8 + header length is a multiple of 8. */
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    ax_buf_u64(b, (uint64_t)padded);
    ax_buf_append(b, hdr, hl);
    for (size_t i = hl; i < padded; i++) ax_buf_u8(b, ' ');
    for (int j = 0; j < n; j++) ax_buf_append(b, tensors[order[j]].data, (size_t)nbytes[order[j]]);
    rc = 0;
done:
    free(hdr);
    json_decref(root);
    free(nbytes);
    free(order);
    free(byname);
    return rc;
}

int rt_st_write(const char *path, const rt_st_out *tensors, int n, ax_diag *d) {
    ax_buf b = {0};
    int rc = rt_st_serialize(tensors, n, &b, d);
    if (rc == 0) rc = ax_write_file_atomic(path, b.data, b.len, d);
    ax_buf_free(&b);
    return rc;
}

/* ---- MXFP4 (gpt-oss) ------------------------------------------------------- */
int rt_st_mxfp4_find(const rt_st_model *m, const char *name, const rt_st_file **fb, const rt_st_tensor **blocks,
                     const rt_st_file **fs, const rt_st_tensor **scales, int64_t *E, int64_t *C, int64_t *R, ax_diag *d) {
    char nb[1024], ns[1024];
    snprintf(nb, sizeof nb, "%s_blocks", name);
    snprintf(ns, sizeof ns, "%s_scales", name);
    const rt_st_tensor *tb = rt_st_model_find(m, nb, fb), *ts = rt_st_model_find(m, ns, fs);
    if (!tb && !ts) return 1;
    if (!tb || !ts || tb->dtype != RT_ST_U8 || ts->dtype != RT_ST_U8 || tb->rank != 4 || ts->rank != 3 ||
        tb->shape[3] != 16 || tb->shape[0] != ts->shape[0] || tb->shape[1] != ts->shape[1] || tb->shape[2] != ts->shape[2]) {
        ax_error(d, tb ? (*fb)->path : (*fs)->path, "\"%s\" / \"%s\": expected MXFP4 blocks u8[E, R, G, 16] and scales "
                 "u8[E, R, G], both present", nb, ns);
        return -1;
    }
    *blocks = tb, *scales = ts;
    *E = tb->shape[0], *R = tb->shape[1], *C = tb->shape[2] * 32;
    return 0;
}

void rt_st_mxfp4_dequant(const rt_st_file *fb, const rt_st_tensor *blocks, const rt_st_file *fs,
                         const rt_st_tensor *scales, int64_t e0, int64_t ne, float *dst) {
    static const float fp4[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    const int64_t R = blocks->shape[1], G = blocks->shape[2], C = G * 32;
    const uint8_t *bl = rt_st_data(fb, blocks), *sc = rt_st_data(fs, scales);
    for (int64_t e = e0; e < e0 + ne; e++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t g = 0; g < G; g++) {
                const float mul = ldexpf(1.0f, (int)sc[(e * R + r) * G + g] - 127);
                const uint8_t *b = bl + ((e * R + r) * G + g) * 16;
                float *o = dst + (e - e0) * C * R + g * 32 * R + r;
                for (int j = 0; j < 16; j++) {
                    o[(2 * j) * R] = fp4[b[j] & 15] * mul;
                    o[(2 * j + 1) * R] = fp4[b[j] >> 4] * mul;
                }
            }
}
