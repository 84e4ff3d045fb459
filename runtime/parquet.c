/* parquet.c — see parquet.h. The format is parquet-format's (its Thrift
 * definitions, Encodings.md and LogicalTypes.md); the footer and page headers
 * are Thrift's compact protocol, read here field by field. */
#include "runtime/parquet.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AXO_HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef AXO_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef AXO_HAVE_LZ4
#include <lz4.h>
#endif
#ifdef AXO_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- Thrift compact protocol ----------------------------------------------- */

enum { T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT };

typedef struct {
    const uint8_t *p, *end;
    int bad;
} tin;

static uint64_t t_varint(tin *r) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) break;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}
static int64_t t_zz(tin *r) {
    uint64_t u = t_varint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
static int32_t t_i32(tin *r) {
    int64_t v = t_zz(r);
    if (v < INT32_MIN || v > INT32_MAX) r->bad = 1;
    return r->bad ? 0 : (int32_t)v;
}
/* the next field of a struct: its type (T_STOP at the end), *id moved to its id */
static int t_field(tin *r, int *id) {
    if (r->p >= r->end) {
        r->bad = 1;
        return T_STOP;
    }
    uint8_t b = *r->p++;
    if (!b) return T_STOP;
    int type = b & 15, delta = b >> 4;
    int64_t nid = delta ? (int64_t)*id + delta : t_zz(r); /* field ids are i16 */
    if (nid < INT16_MIN || nid > INT16_MAX) r->bad = 1;
    else *id = (int)nid;
    if (type == T_STOP || type > T_STRUCT) r->bad = 1;
    return r->bad ? T_STOP : type;
}
/* a list header: its size (each element takes a byte at least), *et its elements' type */
static int64_t t_list(tin *r, int *et) {
    *et = 0;
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    uint8_t b = *r->p++;
    uint64_t n = b >> 4;
    *et = b & 15;
    if (n == 15) n = t_varint(r);
    if (n > (uint64_t)(r->end - r->p)) r->bad = 1;
    return r->bad ? 0 : (int64_t)n;
}
static const uint8_t *t_bin(tin *r, size_t *len) {
    uint64_t n = t_varint(r);
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        *len = 0;
        return NULL;
    }
    const uint8_t *s = r->p;
    r->p += n;
    *len = (size_t)n;
    return s;
}
/* a value of type `type`; in a list or map a bool is a byte */
static void t_skip(tin *r, int type, int in_list, int depth) {
    if (depth > 32 || r->bad) {
        r->bad = 1;
        return;
    }
    switch (type) {
    case T_TRUE:
    case T_FALSE:
    case T_BYTE:
        if (type == T_BYTE || in_list) {
            if (r->p >= r->end) r->bad = 1;
            else r->p++;
        }
        return;
    case T_I16:
    case T_I32:
    case T_I64: t_varint(r); return;
    case T_DOUBLE:
        if (r->end - r->p < 8) r->bad = 1;
        else r->p += 8;
        return;
    case T_BINARY: {
        size_t n;
        t_bin(r, &n);
        return;
    }
    case T_LIST:
    case T_SET: {
        int et;
        int64_t n = t_list(r, &et);
        for (int64_t i = 0; i < n && !r->bad; i++) t_skip(r, et, 1, depth + 1);
        return;
    }
    case T_MAP: {
        uint64_t n = t_varint(r);
        if (r->bad || n > (uint64_t)(r->end - r->p)) {
            r->bad = 1;
            return;
        }
        if (!n) return;
        if (r->p >= r->end) {
            r->bad = 1;
            return;
        }
        uint8_t kv = *r->p++;
        for (uint64_t i = 0; i < n && !r->bad; i++) {
            t_skip(r, kv >> 4, 1, depth + 1);
            t_skip(r, kv & 15, 1, depth + 1);
        }
        return;
    }
    case T_STRUCT: {
        int id = 0, t;
        while (!r->bad && (t = t_field(r, &id)) != T_STOP) t_skip(r, t, 0, depth + 1);
        return;
    }
    default: r->bad = 1;
    }
}

/* the limits (rt_parquet_set_limits): level entries a row group may claim beyond 256 per byte of the file; value
 * bytes a row group may expand to */
static int64_t g_max_entries = (int64_t)64 << 20, g_max_bytes = INT64_MAX;

/* ---- the footer ------------------------------------------------------------- */

enum { PQ_MAX_DEPTH = 100 }; /* nesting, as Arrow allows */
enum { P_BOOLEAN, P_INT32, P_INT64, P_INT96, P_FLOAT, P_DOUBLE, P_BYTE_ARRAY, P_FLBA };
enum { REQUIRED, OPTIONAL, REPEATED };
/* ConvertedType */
enum { C_UTF8 = 0, C_MAP = 1, C_MAP_KEY_VALUE = 2, C_LIST = 3, C_ENUM = 4, C_DECIMAL = 5, C_UINT_8 = 11, C_UINT_16 = 12,
       C_UINT_32 = 13, C_UINT_64 = 14, C_JSON = 19 };
/* LogicalType's members */
enum { L_STRING = 1, L_MAP = 2, L_LIST = 3, L_ENUM = 4, L_DECIMAL = 5, L_INTEGER = 10, L_JSON = 12, L_UUID = 14,
       L_FLOAT16 = 15 };
/* how a leaf's values are written */
enum { R_BOOL, R_INT, R_UINT, R_F64, R_F16, R_STR, R_BIN, R_DEC, R_UUID };
/* how a group's instance is written */
enum { G_STRUCT, G_LIST, G_PAIR };

typedef struct {
    const char *name; /* NUL-terminated copy */
    int type;         /* physical type; -1 for a group */
    int type_length, rep, nchildren, conv, logical, int_signed, scale;
    /* derived */
    int parent, depth, max_def, max_rep, leaf, first_leaf, nleaves;
    int *child;
    int render; /* R_* for a leaf */
    int kind;   /* G_* for a group */
    int unwrap; /* a repeated group whose instances are its one child's values (a LIST's element) */
} pq_el;

typedef struct {
    int codec, type;
    int64_t num_values, data_off, dict_off, size;
    int has_dict;
} pq_chunk;

typedef struct {
    int64_t nrows;
    pq_chunk *col; /* one per leaf */
} pq_rg;

typedef struct {
    const uint8_t *buf;
    size_t len;
    const char *name;
    ax_diag *d;
    pq_el *el;
    int nel, nleaves;
    int *leaf_el; /* leaf -> element */
    pq_rg *rg;
    int nrg;
    int64_t nrows;
    int64_t max_entries; /* the most level entries one row group may claim (from the file's size) */
    int *warned;   /* per leaf: its binary values were reported */
} pq_file;

static int bad_footer(pq_file *f, const char *what) {
    ax_error(f->d, f->name, "not a readable Parquet file: its footer (file metadata) %s", what);
    return -1;
}

static int read_logical(tin *r, pq_el *e) {
    int id = 0, t;
    while (!r->bad && (t = t_field(r, &id)) != T_STOP) {
        if (t != T_STRUCT) {
            t_skip(r, t, 0, 1);
            continue;
        }
        e->logical = id;
        int fid = 0, ft;
        while (!r->bad && (ft = t_field(r, &fid)) != T_STOP) {
            if (id == L_INTEGER && fid == 2 && (ft == T_TRUE || ft == T_FALSE)) e->int_signed = ft == T_TRUE;
            else if (id == L_DECIMAL && fid == 1 && ft == T_I32) e->scale = t_i32(r);
            else t_skip(r, ft, 0, 2);
        }
    }
    return r->bad ? -1 : 0;
}

static int read_schema_el(tin *r, pq_el *e, ax_arena *ar) {
    int id = 0, t;
    e->type = -1, e->conv = -1, e->int_signed = 1;
    int have_name = 0;
    while (!r->bad && (t = t_field(r, &id)) != T_STOP) {
        if (id == 1 && t == T_I32) e->type = t_i32(r);
        else if (id == 2 && t == T_I32) e->type_length = t_i32(r);
        else if (id == 3 && t == T_I32) e->rep = t_i32(r);
        else if (id == 4 && t == T_BINARY) {
            size_t n;
            const uint8_t *s = t_bin(r, &n);
            if (s) e->name = ax_arena_strndup(ar, (const char *)s, n), have_name = 1;
        } else if (id == 5 && t == T_I32) e->nchildren = t_i32(r);
        else if (id == 6 && t == T_I32) e->conv = t_i32(r);
        else if (id == 7 && t == T_I32) e->scale = t_i32(r);
        else if (id == 10 && t == T_STRUCT) read_logical(r, e);
        else t_skip(r, t, 0, 1);
    }
    if (!have_name || e->rep < REQUIRED || e->rep > REPEATED || e->type < -1 || e->type > P_FLBA ||
        e->nchildren < 0 || (e->type == P_FLBA && (e->type_length < 1 || e->type_length > (1 << 20))))
        r->bad = 1;
    return r->bad ? -1 : 0;
}

static int read_column_meta(tin *r, pq_chunk *c, const char *path[], int npath, int *path_ok) {
    int id = 0, t, np = 0;
    *path_ok = 1;
    while (!r->bad && (t = t_field(r, &id)) != T_STOP) {
        if (id == 1 && t == T_I32) c->type = t_i32(r);
        else if (id == 3 && t == T_LIST) {
            int et;
            int64_t n = t_list(r, &et);
            for (int64_t i = 0; i < n && !r->bad; i++) {
                size_t len;
                const uint8_t *s = et == T_BINARY ? t_bin(r, &len) : NULL;
                if (!s) {
                    r->bad = 1;
                    break;
                }
                if (np >= npath || strlen(path[np]) != len || memcmp(path[np], s, len)) *path_ok = 0;
                np++;
            }
        } else if (id == 4 && t == T_I32) c->codec = t_i32(r);
        else if (id == 5 && t == T_I64) c->num_values = t_zz(r);
        else if (id == 7 && t == T_I64) c->size = t_zz(r);
        else if (id == 9 && t == T_I64) c->data_off = t_zz(r);
        else if (id == 11 && t == T_I64) c->dict_off = t_zz(r), c->has_dict = 1;
        else t_skip(r, t, 0, 3);
    }
    if (np != npath) *path_ok = 0;
    return r->bad ? -1 : 0;
}

/* the leaf's path from the root's child down, into path[] (at most 64) */
static int leaf_path(const pq_file *f, int e, const char *path[PQ_MAX_DEPTH + 1]) {
    int n = 0;
    for (int x = e; x > 0; x = f->el[x].parent) n++;
    int k = n;
    for (int x = e; x > 0; x = f->el[x].parent) path[--k] = f->el[x].name;
    return n;
}

static int read_row_group(tin *r, pq_file *f, pq_rg *g, ax_arena *ar) {
    int id = 0, t, ncol = 0;
    g->col = ax_arena_alloc(ar, sizeof *g->col * (size_t)(f->nleaves ? f->nleaves : 1));
    while (!r->bad && (t = t_field(r, &id)) != T_STOP) {
        if (id == 1 && t == T_LIST) {
            int et;
            int64_t n = t_list(r, &et);
            if (et != T_STRUCT || n != f->nleaves) return bad_footer(f, "lists another number of columns than its schema");
            for (int64_t i = 0; i < n && !r->bad; i++) {
                int cid = 0, ct, have_meta = 0;
                while (!r->bad && (ct = t_field(r, &cid)) != T_STOP) {
                    if (cid == 1 && ct == T_BINARY) {
                        size_t len;
                        t_bin(r, &len);
                        if (len) {
                            ax_error(f->d, f->name, "column %lld's data is in another file (file_path): not read",
                                     (long long)i);
                            return -1;
                        }
                    } else if (cid == 3 && ct == T_STRUCT) {
                        const char *path[PQ_MAX_DEPTH + 1];
                        int np = leaf_path(f, f->leaf_el[i], path), ok;
                        if (read_column_meta(r, &g->col[i], path, np, &ok) == 0 && !ok)
                            return bad_footer(f, "names a column chunk that is not the schema's column there");
                        have_meta = 1;
                    } else if (cid == 8 || cid == 9) {
                        ax_error(f->d, f->name, "an encrypted Parquet file (column %lld): not read", (long long)i);
                        return -1;
                    } else {
                        t_skip(r, ct, 0, 2);
                    }
                }
                if (!r->bad && !have_meta) return bad_footer(f, "has a column chunk without its metadata");
            }
            ncol = (int)n;
        } else if (id == 3 && t == T_I64) {
            g->nrows = t_zz(r);
        } else {
            t_skip(r, t, 0, 1);
        }
    }
    if (r->bad) return bad_footer(f, "is cut short or malformed");
    if (ncol != f->nleaves || g->nrows < 0) return bad_footer(f, "has a row group without its columns or row count");
    return 0;
}

static int bit_width(int max) {
    int b = 0;
    while (max >> b) b++;
    return b;
}

/* depth, levels, leaves and how each element is written, from the flat schema */
static int build_schema(pq_file *f, ax_arena *ar) {
    int next = 1;
    f->el[0].parent = -1, f->el[0].leaf = -1;
    /* children in depth-first order: element i's children follow it */
    int stack[PQ_MAX_DEPTH + 1], left[PQ_MAX_DEPTH + 1], sp = 0;
    if (f->el[0].type != -1) return bad_footer(f, "has a schema whose root is not a group");
    if (f->el[0].nchildren > f->nel - 1) return bad_footer(f, "has a schema with fewer elements than its groups' children");
    stack[0] = 0, left[0] = f->el[0].nchildren;
    f->el[0].child = ax_arena_alloc(ar, sizeof(int) * (size_t)(f->el[0].nchildren + 1));
    while (sp >= 0) {
        if (left[sp] == 0) {
            sp--;
            continue;
        }
        if (next >= f->nel) return bad_footer(f, "has a schema with fewer elements than its groups' children");
        int p = stack[sp], e = next++;
        left[sp]--;
        pq_el *x = &f->el[e], *px = &f->el[p];
        px->child[px->nchildren - left[sp] - 1] = e;
        x->parent = p;
        x->depth = px->depth + 1;
        x->max_def = px->max_def + (x->rep != REQUIRED);
        x->max_rep = px->max_rep + (x->rep == REPEATED);
        x->leaf = -1;
        json_t *nm = json_string(x->name); /* a row's keys */
        if (!nm) return bad_footer(f, "has a column name that is not UTF-8");
        json_decref(nm);
        if (x->type == -1) {
            if (x->nchildren < 1) return bad_footer(f, "has a group without children");
            if (x->nchildren > f->nel - next) return bad_footer(f, "has a schema with fewer elements than its groups' children");
            if (sp + 1 > PQ_MAX_DEPTH) return bad_footer(f, "nests deeper than 100 levels (Arrow's limit too)");
            x->child = ax_arena_alloc(ar, sizeof(int) * (size_t)x->nchildren);
            stack[++sp] = e, left[sp] = x->nchildren;
        } else {
            if (x->nchildren) return bad_footer(f, "has a column with children");
            x->leaf = f->nleaves++;
        }
    }
    if (next != f->nel) return bad_footer(f, "has schema elements outside its tree");
    if (f->nleaves == 0) return bad_footer(f, "has no columns");
    f->leaf_el = ax_arena_alloc(ar, sizeof(int) * (size_t)(f->nleaves + 1));
    for (int e = f->nel - 1; e >= 0; e--) { /* leaves under each element: a contiguous range, children first */
        pq_el *x = &f->el[e];
        if (x->leaf >= 0) {
            f->leaf_el[x->leaf] = e;
            x->first_leaf = x->leaf, x->nleaves = 1;
        } else {
            x->first_leaf = x->nchildren ? f->el[x->child[0]].first_leaf : 0;
            for (int c = 0; c < x->nchildren; c++) x->nleaves += f->el[x->child[c]].nleaves;
        }
    }
    for (int e = 1; e < f->nel; e++) {
        pq_el *x = &f->el[e];
        if (x->max_def > 32767 || x->max_rep > 32767) return bad_footer(f, "nests too deep");
        if (x->leaf >= 0) {
            int lg = x->logical, cv = x->conv;
            int str = lg == L_STRING || lg == L_JSON || cv == C_UTF8 || cv == C_JSON; /* ENUM: bytes, as Arrow reads it */
            int dec = lg == L_DECIMAL || cv == C_DECIMAL;
            switch (x->type) {
            case P_BOOLEAN: x->render = R_BOOL; break;
            case P_INT32:
            case P_INT64:
                x->render = dec                                               ? R_DEC
                            : (lg == L_INTEGER && !x->int_signed) || (cv >= C_UINT_8 && cv <= C_UINT_64) ? R_UINT
                                                                                                        : R_INT;
                break;
            case P_INT96: x->render = R_INT; break;
            case P_FLOAT:
            case P_DOUBLE: x->render = R_F64; break;
            default:
                x->render = dec                                                          ? R_DEC
                            : str                                                        ? R_STR
                            : lg == L_FLOAT16 && x->type == P_FLBA && x->type_length == 2 ? R_F16
                            : lg == L_UUID && x->type == P_FLBA && x->type_length == 16   ? R_UUID
                                                                                          : R_BIN;
            }
            if (x->render == R_DEC && (x->scale < 0 || x->scale > 38)) return bad_footer(f, "has a DECIMAL of scale outside 0..38");
            continue;
        }
        const int list = x->logical == L_LIST || x->conv == C_LIST;
        const int map = x->logical == L_MAP || x->conv == C_MAP || x->conv == C_MAP_KEY_VALUE;
        pq_el *c0 = &f->el[x->child[0]];
        if ((list || map) && x->nchildren == 1 && c0->rep == REPEATED) {
            x->kind = G_LIST; /* its value: the list of its repeated child's instances */
            if (map && c0->type == -1 && c0->nchildren == 2) c0->kind = G_PAIR;
            else if (map && c0->type == -1 && c0->nchildren == 1) c0->unwrap = 1; /* keys only: a list of keys */
            else if (list && c0->type == -1 && c0->nchildren == 1 && strcmp(c0->name, "array") &&
                     f->el[c0->child[0]].rep != REPEATED) { /* a repeated child keeps its group (Arrow) */
                char tuple[600];
                snprintf(tuple, sizeof tuple, "%s_tuple", x->name);
                c0->unwrap = strcmp(c0->name, tuple) != 0; /* the legacy two-level layouts keep the group */
            }
        }
    }
    return 0;
}

static int read_footer(pq_file *f, ax_arena *ar) {
    const uint8_t *b = f->buf;
    if (f->len >= 4 && !memcmp(b, "PAR1", 4) && !memcmp(b + f->len - 4, "PARE", 4)) {
        ax_error(f->d, f->name, "an encrypted Parquet file (encrypted footer): not read");
        return -1;
    }
    if (!rt_is_parquet(b, f->len)) {
        ax_error(f->d, f->name, "not a Parquet file (it does not start and end with \"PAR1\")");
        return -1;
    }
    uint32_t flen = (uint32_t)b[f->len - 8] | (uint32_t)b[f->len - 7] << 8 | (uint32_t)b[f->len - 6] << 16 |
                    (uint32_t)b[f->len - 5] << 24;
    if (flen > f->len - 12) {
        ax_error(f->d, f->name, "not a readable Parquet file: its footer length %u is beyond the file (%zu bytes)", flen,
                 f->len);
        return -1;
    }
    tin r = {b + f->len - 8 - flen, b + f->len - 8, 0};
    int id = 0, t, have_schema = 0, have_rg = 0, et = 0;
    while (!r.bad && (t = t_field(&r, &id)) != T_STOP) {
        if (id == 2 && t == T_LIST) {
            if (have_schema) return bad_footer(f, "lists a second schema");
            int64_t n = t_list(&r, &et);
            if (r.bad || et != T_STRUCT || n < 1) return bad_footer(f, "has no schema");
            f->nel = (int)n;
            f->el = ax_arena_alloc(ar, sizeof *f->el * (size_t)n);
            for (int64_t i = 0; i < n && !r.bad; i++) read_schema_el(&r, &f->el[i], ar);
            if (r.bad) return bad_footer(f, "has a malformed schema");
            if (build_schema(f, ar)) return -1;
            have_schema = 1;
        } else if (id == 3 && t == T_I64) {
            f->nrows = t_zz(&r);
        } else if (id == 4 && t == T_LIST) {
            if (!have_schema) return bad_footer(f, "lists its row groups before its schema");
            if (have_rg) return bad_footer(f, "lists its row groups twice");
            int64_t n = t_list(&r, &et);
            if (r.bad || et != T_STRUCT) return bad_footer(f, "has malformed row groups");
            f->nrg = (int)n;
            f->rg = ax_arena_alloc(ar, sizeof *f->rg * (size_t)(n ? n : 1));
            for (int64_t i = 0; i < n; i++)
                if (read_row_group(&r, f, &f->rg[i], ar)) return -1;
            have_rg = 1;
        } else if (id == 8) {
            ax_error(f->d, f->name, "an encrypted Parquet file: not read");
            return -1;
        } else {
            t_skip(&r, t, 0, 1);
        }
    }
    if (r.bad) return bad_footer(f, "is cut short or malformed");
    if (!have_schema || !have_rg) return bad_footer(f, "lacks its schema or its row groups");
    int64_t sum = 0;
    for (int i = 0; i < f->nrg; i++) sum += f->rg[i].nrows;
    if (sum != f->nrows) return bad_footer(f, "counts other rows than its row groups hold");
    return 0;
}

/* ---- a column chunk's levels and values --------------------------------------- */

typedef union {
    int64_t i;
    double f;
    struct {
        int64_t off, len; /* into the column's bytes */
    } s;
} pq_val;

typedef struct {
    int16_t *def, *rep;
    int64_t n, cap;
    pq_val *v;
    int64_t nv, vcap;
    ax_buf bytes;
    pq_val *dict;
    int64_t ndict;
    int64_t pos, vpos; /* assembly cursors */
    int seen_bin;
} pq_col;

typedef struct {
    pq_file *f;
    int rg, leaf;
    int64_t page_at;
    int64_t *entries, *bytes; /* the level entries and value bytes the row group may still expand to */
} pq_ctx;

/* a leaf's dotted path ("messages.list.element.role") into buf, for messages */
static void col_name(const pq_file *f, int leaf, char *buf, size_t cap) {
    const char *path[PQ_MAX_DEPTH + 1];
    const int np = leaf_path(f, f->leaf_el[leaf], path);
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < np && k < cap - 1; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? "." : "", path[i]);
}

static int col_err(const pq_ctx *c, const char *fmt, ...) AX_PRINTF(2, 3);
static int col_err(const pq_ctx *c, const char *fmt, ...) {
    const pq_file *f = c->f;
    char col[512];
    col_name(f, c->leaf, col, sizeof col);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ax_error(f->d, f->name, "row group %d, column \"%s\", page at byte %lld: %s", c->rg, col, (long long)c->page_at, msg);
    return -1;
}

/* n more level entries (a count a few bytes can claim: bounded by the file's size) */
static int spend(const pq_ctx *c, int64_t n) {
    if (n < 0 || n > *c->entries)
        return col_err(c, "claims more values than a file of %zu bytes can hold (at most %lld a row group); the file is "
                          "malformed",
                       c->f->len, (long long)c->f->max_entries);
    *c->entries -= n;
    return 0;
}
/* n more bytes of values or of a decompressed page (real data: bounded only by g_max_bytes) */
static int spend_bytes(const pq_ctx *c, int64_t n) {
    if (n < 0 || n > *c->bytes)
        return col_err(c, "expands to more than %lld bytes in one row group, the most axo reads (a smaller row group "
                          "reads)", (long long)g_max_bytes);
    *c->bytes -= n;
    return 0;
}

static void grow(void **p, int64_t *cap, int64_t need, size_t elsize) {
    if (need <= *cap) return;
    int64_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elsize);
    if (!q) abort();
    *p = q;
    *cap = nc;
}

/* value k of width bw (0..64) of an LSB-first bit-packed run at p; the caller has checked its bytes */
static uint64_t get_bits(const uint8_t *p, uint64_t bitpos, int bw) {
    uint64_t v = 0, byte = bitpos >> 3;
    int got = 0, sh = (int)(bitpos & 7);
    while (got < bw) {
        v |= (uint64_t)(p[byte++] >> sh) << got;
        got += 8 - sh;
        sh = 0;
    }
    return bw < 64 ? v & ((1ull << bw) - 1) : v;
}

/* n values of Parquet's RLE / bit-packed hybrid (bit width bw <= 32) from [p, end) into out */
static int rle_hybrid(const uint8_t *p, const uint8_t *end, int bw, int64_t n, uint32_t *out) {
    int64_t i = 0;
    if (bw == 0) {
        memset(out, 0, sizeof *out * (size_t)n);
        return 0;
    }
    while (i < n) {
        tin r = {p, end, 0};
        uint64_t h = t_varint(&r);
        if (r.bad) return -1;
        p = r.p;
        if (h & 1) {
            uint64_t groups = h >> 1, avail = (uint64_t)(end - p);
            if (groups == 0 || groups > avail) return -1;
            uint64_t bytes = groups * (uint64_t)bw, cnt = groups * 8;
            if (bytes > avail) cnt = avail * 8 / (uint64_t)bw, bytes = avail; /* a last run cut at the page's end */
            for (uint64_t k = 0; k < cnt && i < n; k++) out[i++] = (uint32_t)get_bits(p, k * (uint64_t)bw, bw);
            p += bytes;
        } else {
            uint64_t cnt = h >> 1;
            int nb = (bw + 7) / 8;
            if (end - p < nb) return -1;
            uint32_t v = 0;
            for (int k = 0; k < nb; k++) v |= (uint32_t)p[k] << (8 * k);
            p += nb;
            for (uint64_t k = 0; k < cnt && i < n; k++) out[i++] = v;
        }
    }
    return 0;
}

/* DELTA_BINARY_PACKED: exactly n values from [*pp, end) into out; *pp moved past them */
static int delta_packed(const uint8_t **pp, const uint8_t *end, int64_t n, int64_t *out) {
    tin r = {*pp, end, 0};
    uint64_t block = t_varint(&r), nmini = t_varint(&r), total = t_varint(&r);
    int64_t first = t_zz(&r);
    if (r.bad || block == 0 || block > (1u << 31) || block % 128 || nmini == 0 || nmini > block || block % nmini ||
        (block / nmini) % 32 || total != (uint64_t)n) /* Arrow reads both sizes as int32 */
        return -1;
    const uint64_t per = block / nmini;
    uint64_t last = (uint64_t)first;
    int64_t k = 0;
    if (n > 0) out[k++] = first;
    while (k < n) {
        int64_t min_delta = t_zz(&r);
        if (r.bad || (uint64_t)(end - r.p) < nmini) return -1;
        const uint8_t *widths = r.p;
        r.p += nmini;
        for (uint64_t m = 0; m < nmini && k < n; m++) {
            int bw = widths[m];
            if (bw > 64 || (bw && per > (uint64_t)(end - r.p) * 8 / (uint64_t)bw)) return -1;
            const uint64_t bytes = per * (uint64_t)bw / 8; /* per <= 2^31: no overflow */
            for (uint64_t j = 0; j < per && k < n; j++) {
                last += (uint64_t)min_delta + get_bits(r.p, j * (uint64_t)bw, bw);
                out[k++] = (int64_t)last;
            }
            r.p += bytes;
        }
    }
    *pp = r.p;
    return 0;
}

static int64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; k++) v |= (uint64_t)p[k] << (8 * k);
    if (n < 8 && (v >> (8 * n - 1) & 1)) v |= ~0ull << (8 * n); /* sign-extended */
    return (int64_t)v;
}

/* append a byte string to the column's bytes: its (off, len) */
static pq_val put_bytes(pq_col *col, const void *p, int64_t n) {
    pq_val v;
    v.s.off = (int64_t)col->bytes.len, v.s.len = n;
    ax_buf_append(&col->bytes, p, (size_t)n);
    return v;
}

/* n PLAIN values of the leaf's type from [p, end) into out */
static int plain_values(const pq_ctx *c, const pq_el *x, pq_col *col, const uint8_t *p, const uint8_t *end, int64_t n,
                        pq_val *out) {
    const int64_t avail = end - p;
    int w = 0;
    switch (x->type) {
    case P_BOOLEAN:
        if (avail < (n + 7) / 8) return col_err(c, "%lld booleans do not fit in %lld bytes", (long long)n, (long long)avail);
        for (int64_t i = 0; i < n; i++) out[i].i = p[i >> 3] >> (i & 7) & 1;
        return 0;
    case P_INT32: w = 4; break;
    case P_INT64:
    case P_DOUBLE: w = 8; break;
    case P_FLOAT: w = 4; break;
    case P_INT96: w = 12; break;
    case P_FLBA: w = x->type_length; break;
    case P_BYTE_ARRAY:
        for (int64_t i = 0; i < n; i++) {
            if (end - p < 4) return col_err(c, "value %lld of %lld is cut short", (long long)i, (long long)n);
            uint32_t l = (uint32_t)rd_le(p, 4);
            p += 4;
            if ((uint64_t)(end - p) < l) return col_err(c, "value %lld (%u bytes) runs past the page", (long long)i, l);
            if (spend_bytes(c, l)) return -1;
            out[i] = put_bytes(col, p, l);
            p += l;
        }
        return 0;
    }
    if (n > avail / w) return col_err(c, "%lld values of %d bytes do not fit in %lld bytes", (long long)n, w, (long long)avail);
    for (int64_t i = 0; i < n; i++, p += w) {
        switch (x->type) {
        case P_INT32:
        case P_INT64: out[i].i = rd_le(p, w); break;
        case P_FLOAT: {
            float v;
            memcpy(&v, p, 4);
            out[i].f = v;
            break;
        }
        case P_DOUBLE: memcpy(&out[i].f, p, 8); break;
        case P_INT96: { /* nanoseconds of the day, then the Julian day */
            uint64_t ns = (uint64_t)rd_le(p, 8), day = (uint64_t)rd_le(p + 8, 4);
            out[i].i = (int64_t)((day - 2440588u) * 86400000000000ull + ns);
            break;
        }
        default:
            if (spend_bytes(c, w)) return -1;
            out[i] = put_bytes(col, p, w);
        }
    }
    return 0;
}

/* the page's n values (non-null entries) in `enc` from [p, end), appended to the column */
static int page_values(const pq_ctx *c, const pq_el *x, pq_col *col, int enc, const uint8_t *p, const uint8_t *end,
                       int64_t n) {
    grow((void **)&col->v, &col->vcap, col->nv + n, sizeof *col->v);
    pq_val *out = col->v + col->nv;
    int rc = 0;
    switch (enc) {
    case 0: /* PLAIN */
        rc = plain_values(c, x, col, p, end, n, out);
        break;
    case 2: /* PLAIN_DICTIONARY */
    case 8: { /* RLE_DICTIONARY */
        if (!col->dict) return col_err(c, "dictionary-encoded values without a dictionary page");
        if (p >= end && n) return col_err(c, "dictionary indices are missing");
        int bw = n ? *p++ : 0;
        if (bw > 32) return col_err(c, "dictionary indices of %d bits", bw);
        uint32_t *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
        if (!idx) abort();
        if (rle_hybrid(p, end, bw, n, idx)) rc = col_err(c, "dictionary indices are cut short or malformed");
        for (int64_t i = 0; i < n && !rc; i++) {
            if (idx[i] >= (uint64_t)col->ndict)
                rc = col_err(c, "dictionary index %u past the dictionary's %lld values", idx[i], (long long)col->ndict);
            else out[i] = col->dict[idx[i]];
        }
        free(idx);
        break;
    }
    case 3: { /* RLE: booleans, after a 4-byte length */
        if (x->type != P_BOOLEAN) return col_err(c, "RLE-encoded values of a non-boolean column");
        if (end - p < 4) return col_err(c, "RLE booleans without their length");
        uint32_t l = (uint32_t)rd_le(p, 4);
        p += 4;
        if ((uint64_t)(end - p) < l) return col_err(c, "RLE booleans run past the page");
        uint32_t *v = malloc(sizeof *v * (size_t)(n ? n : 1));
        if (!v) abort();
        if (rle_hybrid(p, p + l, 1, n, v)) rc = col_err(c, "RLE booleans are cut short or malformed");
        for (int64_t i = 0; i < n && !rc; i++) out[i].i = v[i];
        free(v);
        break;
    }
    case 5: { /* DELTA_BINARY_PACKED */
        if (x->type != P_INT32 && x->type != P_INT64) return col_err(c, "DELTA_BINARY_PACKED values of a non-integer column");
        int64_t *v = malloc(sizeof *v * (size_t)(n ? n : 1));
        if (!v) abort();
        if (delta_packed(&p, end, n, v)) rc = col_err(c, "DELTA_BINARY_PACKED values are cut short or malformed");
        for (int64_t i = 0; i < n && !rc; i++) out[i].i = x->type == P_INT32 ? (int64_t)(int32_t)v[i] : v[i];
        free(v);
        break;
    }
    case 6:   /* DELTA_LENGTH_BYTE_ARRAY */
    case 7: { /* DELTA_BYTE_ARRAY: prefix lengths, then the suffixes as DELTA_LENGTH_BYTE_ARRAY */
        if (x->type != P_BYTE_ARRAY && !(enc == 7 && x->type == P_FLBA))
            return col_err(c, "DELTA_*BYTE_ARRAY values of a column of other values");
        int64_t *pre = enc == 7 ? malloc(sizeof *pre * (size_t)(n ? n : 1)) : NULL, *len = malloc(sizeof *len * (size_t)(n ? n : 1));
        if (!len || (enc == 7 && !pre)) abort();
        if ((pre && delta_packed(&p, end, n, pre)) || delta_packed(&p, end, n, len))
            rc = col_err(c, "the lengths of DELTA byte arrays are cut short or malformed");
        ax_buf tmp = {0};
        int64_t prev_off = 0, prev_len = 0;
        for (int64_t i = 0; i < n && !rc; i++) {
            int64_t pl = pre ? pre[i] : 0, sl = len[i];
            if (sl < 0 || sl > end - p || pl < 0 || pl > prev_len || (i == 0 && pl))
                rc = col_err(c, "DELTA byte array %lld has a length outside the page", (long long)i);
            else if (x->type == P_FLBA && pl + sl != x->type_length)
                rc = col_err(c, "DELTA byte array %lld is %lld bytes in a column of %d", (long long)i, (long long)(pl + sl),
                             x->type_length);
            else if (spend_bytes(c, pl + sl) == 0) {
                tmp.len = 0;
                ax_buf_append(&tmp, col->bytes.data ? col->bytes.data + prev_off : "", (size_t)pl);
                ax_buf_append(&tmp, p, (size_t)sl);
                out[i] = put_bytes(col, tmp.data, pl + sl);
                p += sl;
                prev_off = out[i].s.off, prev_len = pl + sl;
            } else {
                rc = -1;
            }
        }
        ax_buf_free(&tmp);
        free(pre);
        free(len);
        break;
    }
    case 9: { /* BYTE_STREAM_SPLIT */
        int w = x->type == P_FLOAT || x->type == P_INT32 ? 4 : x->type == P_DOUBLE || x->type == P_INT64 ? 8
                : x->type == P_FLBA ? x->type_length : 0;
        if (!w) return col_err(c, "BYTE_STREAM_SPLIT values of a column of other values");
        if (end - p < n * w) return col_err(c, "BYTE_STREAM_SPLIT values are cut short");
        uint8_t *tmp = malloc((size_t)w + 1);
        if (!tmp) abort();
        for (int64_t i = 0; i < n && !rc; i++) {
            for (int k = 0; k < w; k++) tmp[k] = p[(int64_t)k * n + i];
            if (plain_values(c, x, col, tmp, tmp + w, 1, &out[i])) rc = -1;
        }
        free(tmp);
        break;
    }
    default: return col_err(c, "values in encoding %d, which axo does not read", enc);
    }
    if (rc == 0) col->nv += n;
    return rc;
}

/* n levels of bit width bw from the hybrid run [p, end) into out */
static int levels(const pq_ctx *c, const uint8_t *p, const uint8_t *end, int bw, int64_t n, int16_t *out, int maxl) {
    uint32_t *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) abort();
    int rc = rle_hybrid(p, end, bw, n, v) ? col_err(c, "its levels are cut short or malformed") : 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        if (v[i] > (uint32_t)maxl) rc = col_err(c, "a level %u above the column's maximum %d", v[i], maxl);
        out[i] = (int16_t)v[i];
    }
    free(v);
    return rc;
}

static int decompress(const pq_ctx *c, int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t want) {
    static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
    switch (codec) { /* (an uncompressed page is read in place: read_chunk) */
#ifdef AXO_HAVE_SNAPPY
    case 1: {
        size_t ul, got = want;
        if (snappy_uncompressed_length((const char *)src, n, &ul) != SNAPPY_OK || ul != want ||
            snappy_uncompress((const char *)src, n, (char *)dst, &got) != SNAPPY_OK || got != want)
            return col_err(c, "its SNAPPY data does not decompress to the page's %zu bytes", want);
        return 0;
    }
#endif
#ifdef AXO_HAVE_ZLIB
    case 2: {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, 15 + 32) != Z_OK) abort();
        z.next_in = (Bytef *)(uintptr_t)src, z.avail_in = (uInt)n;
        z.next_out = dst, z.avail_out = (uInt)want;
        int zr = Z_OK;
        while (zr == Z_OK && z.avail_out) zr = inflate(&z, Z_FINISH);
        const size_t got = want - z.avail_out;
        inflateEnd(&z);
        if ((zr != Z_STREAM_END && zr != Z_OK && zr != Z_BUF_ERROR) || got != want)
            return col_err(c, "its GZIP data does not decompress to the page's %zu bytes", want);
        return 0;
    }
#endif
#ifdef AXO_HAVE_LZ4
    case 7: {
        int got = n > INT32_MAX || want > INT32_MAX ? -1 : LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)want);
        if (got < 0 || (size_t)got != want)
            return col_err(c, "its LZ4_RAW data does not decompress to the page's %zu bytes", want);
        return 0;
    }
#endif
#ifdef AXO_HAVE_ZSTD
    case 6: {
        size_t got = ZSTD_decompress(dst, want, src, n);
        if (ZSTD_isError(got) || got != want)
            return col_err(c, "its ZSTD data does not decompress to the page's %zu bytes", want);
        return 0;
    }
#endif
    default:
        if (codec >= 0 && codec < (int)AX_ARRAY_LEN(names))
            return col_err(c, "compressed with %s, which %s", names[codec],
                           codec == 1 || codec == 2 || codec == 6 || codec == 7
                               ? "this build of axo was made without (install libsnappy-dev, zlib1g-dev, libzstd-dev, "
                                 "liblz4-dev and rebuild)"
                               : "axo does not read (write the file with snappy, gzip, zstd or lz4_raw)");
        return col_err(c, "compressed with codec %d, which Parquet does not define", codec);
    }
}

/* the page header at *pos (Thrift), filled into h[]: type, uncompressed, compressed, then the data/dict/v2
 * header's fields */
typedef struct {
    int type;
    int32_t usize, csize;
    int32_t num_values, encoding, def_enc, rep_enc; /* v1; dictionary: num_values, encoding */
    int32_t num_nulls, num_rows, def_len, rep_len;  /* v2 */
    int compressed;                                 /* v2's is_compressed (default true) */
} pq_page;

static int read_page_header(tin *r, pq_page *h) {
    int id = 0, t;
    memset(h, 0, sizeof *h);
    h->type = -1, h->compressed = 1;
    while (!r->bad && (t = t_field(r, &id)) != T_STOP) {
        if (id == 1 && t == T_I32) h->type = t_i32(r);
        else if (id == 2 && t == T_I32) h->usize = t_i32(r);
        else if (id == 3 && t == T_I32) h->csize = t_i32(r);
        else if ((id == 5 || id == 7 || id == 8) && t == T_STRUCT) {
            int fid = 0, ft;
            while (!r->bad && (ft = t_field(r, &fid)) != T_STOP) {
                if (ft == T_I32) {
                    int32_t v = t_i32(r);
                    if (fid == 1) h->num_values = v;
                    else if (id == 5 && fid == 2) h->encoding = v;
                    else if (id == 5 && fid == 3) h->def_enc = v;
                    else if (id == 5 && fid == 4) h->rep_enc = v;
                    else if (id == 7 && fid == 2) h->encoding = v;
                    else if (id == 8 && fid == 2) h->num_nulls = v;
                    else if (id == 8 && fid == 3) h->num_rows = v;
                    else if (id == 8 && fid == 4) h->encoding = v;
                    else if (id == 8 && fid == 5) h->def_len = v;
                    else if (id == 8 && fid == 6) h->rep_len = v;
                } else if (id == 8 && fid == 7 && (ft == T_TRUE || ft == T_FALSE)) {
                    h->compressed = ft == T_TRUE;
                } else {
                    t_skip(r, ft, 0, 2);
                }
            }
        } else {
            t_skip(r, t, 0, 1);
        }
    }
    return r->bad ? -1 : 0;
}

/* every page of the leaf's chunk in row group g into col */
static int read_chunk(pq_ctx *c, const pq_chunk *ck, pq_col *col) {
    pq_file *f = c->f;
    const pq_el *x = &f->el[f->leaf_el[c->leaf]];
    const int64_t data_end = (int64_t)f->len - 8;
    int64_t pos = ck->has_dict && ck->dict_off > 0 && ck->dict_off < ck->data_off ? ck->dict_off : ck->data_off;
    c->page_at = pos;
    if (ck->type != x->type) return col_err(c, "its chunk's type %d is not the schema's %d", ck->type, x->type);
    if (ck->num_values == 0) return 0; /* a row group without rows */
    if (ck->num_values < 0 || pos < 4 || pos >= data_end)
        return col_err(c, "its chunk starts outside the file, or counts %lld values", (long long)ck->num_values);
    const int dbw = bit_width(x->max_def), rbw = bit_width(x->max_rep);
    uint8_t *scratch = NULL;
    size_t scap = 0;
    int rc = 0;
    while (col->n < ck->num_values && rc == 0) {
        c->page_at = pos;
        if (pos >= data_end) {
            rc = col_err(c, "the chunk ends after %lld of its %lld values", (long long)col->n, (long long)ck->num_values);
            break;
        }
        tin r = {f->buf + pos, f->buf + data_end, 0};
        pq_page h;
        if (read_page_header(&r, &h)) {
            rc = col_err(c, "its page header is cut short or malformed");
            break;
        }
        const uint8_t *body = r.p;
        if (h.csize < 0 || h.usize < 0 || h.csize > f->buf + data_end - body) {
            rc = col_err(c, "a page of %d bytes runs past the file", h.csize);
            break;
        }
        pos = body + h.csize - f->buf;
        if (h.type == 1) continue; /* an index page */
        if (h.type != 0 && h.type != 2 && h.type != 3) {
            rc = col_err(c, "a page of type %d", h.type);
            break;
        }
        if (h.usize > *c->bytes) {
            rc = spend_bytes(c, h.usize);
            break;
        }
        /* the part of the body that is compressed: all of it, but a v2 page's levels */
        const int64_t lv = h.type == 3 ? (int64_t)h.def_len + h.rep_len : 0;
        if (h.type == 3 && (h.def_len < 0 || h.rep_len < 0 || lv > h.csize || lv > h.usize)) {
            rc = col_err(c, "a v2 page's levels (%d + %d bytes) are longer than the page", h.rep_len, h.def_len);
            break;
        }
        const uint8_t *data;
        size_t dlen = (size_t)(h.usize - lv);
        if (ck->codec == 0 || (h.type == 3 && !h.compressed)) {
            if (h.usize != h.csize) {
                rc = col_err(c, "an uncompressed page of %d bytes says it has %d", h.csize, h.usize);
                break;
            }
            data = body + lv;
        } else {
            if (dlen + 1 > scap) {
                free(scratch);
                scap = dlen + 1;
                if (!(scratch = malloc(scap))) abort();
            }
            if ((dlen || h.csize > lv) && (rc = decompress(c, ck->codec, body + lv, (size_t)(h.csize - lv), scratch, dlen)))
                break; /* (a v2 page may hold no values at all, not even an empty compressed block) */
            data = scratch;
        }
        const uint8_t *dend = data + dlen;
        if (h.type == 2) { /* the dictionary */
            if (col->dict || col->n) {
                rc = col_err(c, "a second dictionary page, or one after data pages");
                break;
            }
            if (h.encoding != 0 && h.encoding != 2) {
                rc = col_err(c, "a dictionary page in encoding %d", h.encoding);
                break;
            }
            if (h.num_values < 0 || (rc = spend(c, h.num_values))) {
                if (!rc) rc = col_err(c, "a dictionary of %d values", h.num_values);
                break;
            }
            col->dict = malloc(sizeof *col->dict * (size_t)(h.num_values ? h.num_values : 1));
            if (!col->dict) abort();
            col->ndict = h.num_values;
            rc = plain_values(c, x, col, data, dend, h.num_values, col->dict);
            continue;
        }
        const int64_t nent = h.num_values;
        if (nent < 0 || nent > ck->num_values - col->n) {
            rc = col_err(c, "a page of %lld values past the chunk's %lld", (long long)nent, (long long)ck->num_values);
            break;
        }
        if ((rc = spend(c, nent))) break;
        if (nent == 0) continue;
        if (col->n + nent > col->cap) {
            int64_t cap = col->cap;
            grow((void **)&col->def, &cap, col->n + nent, sizeof *col->def);
            grow((void **)&col->rep, &col->cap, col->n + nent, sizeof *col->rep);
        }
        int16_t *dl = col->def + col->n, *rl = col->rep + col->n;
        const uint8_t *vp;
        if (h.type == 0) { /* v1: [4-byte length, repetition levels] [4-byte length, definition levels] values */
            const uint8_t *p = data;
            for (int k = 0; k < 2 && rc == 0; k++) {
                const int maxl = k == 0 ? x->max_rep : x->max_def;
                int16_t *out = k == 0 ? rl : dl;
                if (maxl == 0) {
                    memset(out, 0, sizeof *out * (size_t)nent);
                    continue;
                }
                if ((k == 0 ? h.rep_enc : h.def_enc) != 3) {
                    rc = col_err(c, "levels in encoding %d (axo reads RLE levels)", k == 0 ? h.rep_enc : h.def_enc);
                    break;
                }
                if (dend - p < 4) {
                    rc = col_err(c, "its levels are cut short");
                    break;
                }
                uint32_t l = (uint32_t)rd_le(p, 4);
                p += 4;
                if ((uint64_t)(dend - p) < l) {
                    rc = col_err(c, "its levels run past the page");
                    break;
                }
                rc = levels(c, p, p + l, k == 0 ? rbw : dbw, nent, out, maxl);
                p += l;
            }
            vp = p;
        } else { /* v2: repetition levels, definition levels (never compressed, no lengths), values */
            const uint8_t *p = body;
            if (x->max_rep) rc = levels(c, p, p + h.rep_len, rbw, nent, rl, x->max_rep);
            else memset(rl, 0, sizeof *rl * (size_t)nent);
            p += h.rep_len;
            if (rc == 0 && x->max_def) rc = levels(c, p, p + h.def_len, dbw, nent, dl, x->max_def);
            else if (rc == 0) memset(dl, 0, sizeof *dl * (size_t)nent);
            vp = data;
        }
        if (rc) break;
        int64_t nn = 0;
        for (int64_t i = 0; i < nent; i++) nn += dl[i] == x->max_def;
        if ((rc = page_values(c, x, col, h.encoding, vp, dend, nn))) break;
        col->n += nent;
    }
    free(scratch);
    return rc;
}

/* ---- rows from the levels --------------------------------------------------------- */

typedef struct {
    pq_file *f;
    pq_col *col;
    int rg, bad;
    int64_t row;
} pq_asm;

static json_t *asm_fail(pq_asm *a, const char *what) {
    if (!a->bad)
        ax_error(a->f->d, a->f->name, "row group %d, row %lld: %s", a->rg, (long long)a->row, what);
    a->bad = 1;
    return json_null();
}

/* A two's-complement integer (n bytes; little-endian when le, else big-endian) as decimal digits with a sign */
static void dec_digits(const uint8_t *p, int n, int le, char *out, size_t cap) {
    uint8_t m[32] = {0};
    if (n > 32) n = 32;
    for (int i = 0; i < n; i++) m[i] = p[le ? n - 1 - i : i]; /* big-endian */
    const int neg = n && m[0] & 0x80;
    if (neg) { /* the magnitude: invert and add one */
        int carry = 1;
        for (int i = n - 1; i >= 0; i--) {
            int v = (uint8_t)~m[i] + carry;
            m[i] = (uint8_t)v, carry = v >> 8;
        }
    }
    char rev[100];
    int nd = 0, nz;
    do { /* divide the big-endian magnitude by 10, collecting remainders */
        int rem = 0;
        nz = 0;
        for (int i = 0; i < n; i++) {
            int cur = rem * 256 + m[i];
            m[i] = (uint8_t)(cur / 10), rem = cur % 10;
            nz |= m[i];
        }
        rev[nd++] = (char)('0' + rem);
    } while (nz && nd < (int)sizeof rev);
    size_t k = 0;
    if (neg && k + 1 < cap) out[k++] = '-';
    while (nd && k + 1 < cap) out[k++] = rev[--nd];
    out[k] = 0;
}

/* digits x 10^-scale as the nearest double (strtod rounds once), as Python's float(Decimal) gives it */
static json_t *dec_json(const char *digits, int scale) {
    char num[160];
    snprintf(num, sizeof num, "%se-%d", digits, scale);
    const double r = strtod(num, NULL);
    return isfinite(r) ? json_real(r) : json_null();
}

static json_t *leaf_value(pq_asm *a, const pq_el *x, pq_col *c) {
    const pq_val v = c->v[c->vpos++];
    switch (x->render) {
    case R_BOOL: return json_boolean(v.i);
    case R_INT: return json_integer(v.i);
    case R_UINT: {
        uint64_t u = x->type == P_INT32 ? (uint32_t)v.i : (uint64_t)v.i;
        return u <= INT64_MAX ? json_integer((json_int_t)u) : json_real((double)u);
    }
    case R_F64: return isfinite(v.f) ? json_real(v.f) : json_null();
    case R_F16: {
        const uint8_t *p = (const uint8_t *)c->bytes.data + v.s.off;
        if (v.s.len != 2) return asm_fail(a, "a FLOAT16 value is not 2 bytes; the file is malformed");
        float h = ax_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        return isfinite(h) ? json_real(h) : json_null();
    }
    case R_DEC: {
        char digits[128];
        if (x->type == P_INT32 || x->type == P_INT64) {
            uint8_t le[8];
            for (int k = 0; k < 8; k++) le[k] = (uint8_t)((uint64_t)v.i >> (8 * k));
            dec_digits(le, 8, 1, digits, sizeof digits);
        } else if (v.s.len > 32) {
            return json_null(); /* wider than any DECIMAL precision Arrow reads (76 digits) */
        } else {
            dec_digits((const uint8_t *)c->bytes.data + v.s.off, (int)v.s.len, 0, digits, sizeof digits);
        }
        return dec_json(digits, x->scale);
    }
    case R_UUID: {
        const uint8_t *p = (const uint8_t *)c->bytes.data + v.s.off;
        if (v.s.len != 16) return asm_fail(a, "a UUID value is not 16 bytes; the file is malformed");
        char u[40];
        int k = 0;
        for (int i = 0; i < 16; i++) k += snprintf(u + k, sizeof u - (size_t)k, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", p[i]);
        return json_string(u);
    }
    case R_STR: {
        const char *p = c->bytes.data ? c->bytes.data + v.s.off : "";
        if (memchr(p, 0, (size_t)v.s.len)) /* as in a JSON lines file, where \u0000 is refused */
            return asm_fail(a, "a string holds a NUL character, which axo does not read");
        json_t *s = json_stringn(p, (size_t)v.s.len);
        return s ? s : asm_fail(a, "a string column holds bytes that are not UTF-8");
    }
    default:
        c->seen_bin = 1;
        return json_null();
    }
}

static int leaf_at_end(const pq_col *c) { return c->pos >= c->n; }

/* every leaf under x passes one entry: x is null, or an empty list, here */
static void skip_entry(pq_asm *a, const pq_el *x) {
    for (int l = x->first_leaf; l < x->first_leaf + x->nleaves; l++) {
        pq_col *c = &a->col[l];
        if (leaf_at_end(c) || c->def[c->pos] >= x->max_def) {
            asm_fail(a, "its columns disagree on where a value is null; the file is malformed");
            return;
        }
        c->pos++;
    }
}

static json_t *read_field(pq_asm *a, int e);

static json_t *read_instance(pq_asm *a, int e) {
    const pq_el *x = &a->f->el[e];
    if (x->leaf >= 0) {
        pq_col *c = &a->col[x->leaf];
        if (leaf_at_end(c) || c->def[c->pos] != x->max_def || c->vpos >= c->nv)
            return asm_fail(a, "a value's levels do not match the column's values; the file is malformed");
        c->pos++;
        return leaf_value(a, x, c);
    }
    if (x->unwrap || x->kind == G_LIST) return read_field(a, x->child[0]);
    if (x->kind == G_PAIR) {
        json_t *p = json_array();
        json_array_append_new(p, read_field(a, x->child[0]));
        json_array_append_new(p, read_field(a, x->child[1]));
        return p;
    }
    json_t *o = json_object();
    for (int k = 0; k < x->nchildren && !a->bad; k++) json_object_set_new(o, a->f->el[x->child[k]].name, read_field(a, x->child[k]));
    return o;
}

/* one occurrence of field e in an instance of its parent */
static json_t *read_field(pq_asm *a, int e) {
    const pq_el *x = &a->f->el[e];
    pq_col *drv = &a->col[x->first_leaf];
    if (a->bad) return json_null();
    if (leaf_at_end(drv)) return asm_fail(a, "a column ends before the row group's rows; the file is malformed");
    if (x->rep != REQUIRED && drv->def[drv->pos] < x->max_def) {
        skip_entry(a, x);
        return x->rep == REPEATED ? json_array() : json_null();
    }
    if (x->rep != REPEATED) return read_instance(a, e);
    json_t *arr = json_array();
    do {
        if (drv->def[drv->pos] < x->max_def) return json_decref(arr), asm_fail(a, "a list's element is missing; the file is malformed");
        json_array_append_new(arr, read_instance(a, e));
    } while (!a->bad && !leaf_at_end(drv) && drv->rep[drv->pos] == x->max_rep);
    return arr;
}

static int assemble(pq_file *f, int g, pq_col *col, ax_buf *out) {
    pq_asm a = {.f = f, .col = col, .rg = g};
    const pq_el *root = &f->el[0];
    for (a.row = 0; a.row < f->rg[g].nrows && !a.bad; a.row++) {
        for (int l = 0; l < f->nleaves; l++)
            if (leaf_at_end(&col[l]) || col[l].rep[col[l].pos] != 0) asm_fail(&a, "a column ends or does not start a row here; the file is malformed");
        json_t *o = json_object();
        for (int k = 0; k < root->nchildren && !a.bad; k++)
            json_object_set_new(o, f->el[root->child[k]].name, read_field(&a, root->child[k]));
        if (!a.bad) {
            char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (!js) abort();
            ax_buf_puts(out, js);
            ax_buf_puts(out, "\n");
            free(js);
        }
        json_decref(o);
    }
    for (int l = 0; l < f->nleaves && !a.bad; l++)
        if (col[l].pos != col[l].n || col[l].vpos != col[l].nv) asm_fail(&a, "a column holds more values than the rows; the file is malformed");
    return a.bad ? -1 : 0;
}

void rt_parquet_set_limits(int64_t entries, int64_t bytes) {
    g_max_entries = entries, g_max_bytes = bytes;
}

int rt_is_parquet(const void *buf, size_t len) {
    const uint8_t *b = buf;
    return len >= 12 && !memcmp(b, "PAR1", 4) && !memcmp(b + len - 4, "PAR1", 4);
}

int rt_parquet_rows(const void *buf, size_t len, const char *name, ax_buf *out, ax_diag *d) {
    ax_arena *ar = ax_arena_create();
    pq_file f = {.buf = buf, .len = len, .name = name, .d = d};
    /* A row group may claim at most 256 level entries per byte of the file, and 64 Mi more: a run of levels costs
     * a few bytes whatever its length, and real files stay far below it. Value bytes are real data (a
     * dictionary or a codec may expand them far beyond the file's size, as for pyarrow), bounded only by
     * g_max_bytes. */
    f.max_entries = len > (size_t)INT64_MAX / 512 ? INT64_MAX / 2 : (int64_t)(256 * len) + g_max_entries;
    int rc = read_footer(&f, ar);
    if (rc == 0) f.warned = ax_arena_alloc(ar, sizeof(int) * (size_t)(f.nleaves + 1));
    for (int g = 0; g < f.nrg && rc == 0; g++) {
        pq_col *col = calloc((size_t)(f.nleaves ? f.nleaves : 1), sizeof *col);
        if (!col) abort();
        int64_t entries = f.max_entries, bytes = g_max_bytes;
        for (int l = 0; l < f.nleaves && rc == 0; l++) {
            pq_ctx c = {.f = &f, .rg = g, .leaf = l, .entries = &entries, .bytes = &bytes};
            rc = read_chunk(&c, &f.rg[g].col[l], &col[l]);
            if (rc == 0 && col[l].n == 0 && f.rg[g].nrows) rc = col_err(&c, "the chunk holds no values");
        }
        if (rc == 0) rc = assemble(&f, g, col, out);
        for (int l = 0; l < f.nleaves; l++) {
            if (rc == 0 && col[l].seen_bin && !f.warned[l]) {
                char cn[512];
                col_name(&f, l, cn, sizeof cn);
                ax_warn(d, name, "column \"%s\" holds binary values (no string annotation; HF datasets reads them as "
                                 "bytes): its rows read them as null", cn);
                f.warned[l] = 1;
            }
            free(col[l].def);
            free(col[l].rep);
            free(col[l].v);
            free(col[l].dict);
            ax_buf_free(&col[l].bytes);
        }
        free(col);
    }
    ax_arena_destroy(ar);
    return rc;
}
