/* parse.c — reads the IR's text form back into a module (grammar in
 * docs/ir.md).
 *
 * A hand-written lexer and recursive-descent parser over (text, len): it
 * never reads past len, needs no NUL terminator, and has no recursion that
 * input can deepen. The text is line-oriented: every item (header, attr,
 * mesh, global, program opener, node, closing brace) ends at a newline, so
 * trailing garbage is reported where it starts.
 *
 * The parser stops at the first error and reports it as
 * "name:line:col: expected ..., found ..." through ax_diag. Nodes are added
 * with ir_node_add after the parser has itself checked arity, operands and
 * types against ir_infer, so that every problem carries a location.
 */
#include "ir/ir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokens ----------------------------------------------------------- */
typedef enum { T_EOF, T_NL, T_ATOM, T_GLOBAL, T_VALUE, T_STRING, T_PUNCT, T_ERROR } tkind;

typedef struct tok {
    tkind k;
    const char *s; /* ATOM: the text; GLOBAL/VALUE: the name without sigil */
    size_t n;
    const char *str; /* STRING: decoded, NUL-terminated (scratch arena) */
    char c;          /* PUNCT */
    int line, col;
} tok;

/* Name -> int map over (ptr, len) keys that outlive the map. */
typedef struct slot {
    const char *s;
    size_t n;
    int v, line;
} slot;
typedef struct nmap {
    slot *slots;
    size_t cap, count;
} nmap;

typedef struct parser {
    const char *src;
    size_t len, pos;
    int line, col; /* of src[pos] */
    const char *name;
    ax_diag *d;
    ax_arena *tmp; /* scratch: decoded strings, attr arrays */
    tok t;         /* current (lookahead) token */
    int failed;
    ir_module *m;
    nmap values, globals, programs;
    char found[128];
} parser;

/* FNV-1a */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static slot *nmap_find(const nmap *m, const char *s, size_t n) {
    if (!m->cap) return NULL;
    for (size_t i = hash_bytes(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot *e = &m->slots[i];
        if (!e->s) return NULL;
        if (e->n == n && memcmp(e->s, s, n) == 0) return e;
    }
}

static void nmap_put(nmap *m, const char *s, size_t n, int v, int line) {
    if ((m->count + 1) * 2 > m->cap) {
        nmap g = {calloc(m->cap ? m->cap * 2 : 64, sizeof(slot)), m->cap ? m->cap * 2 : 64, 0};
        if (!g.slots) abort();
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].s) nmap_put(&g, m->slots[i].s, m->slots[i].n, m->slots[i].v, m->slots[i].line);
        free(m->slots);
        *m = g;
    }
    size_t i = hash_bytes(s, n) & (m->cap - 1);
    while (m->slots[i].s) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (slot){s, n, v, line};
    m->count++;
}

static void nmap_clear(nmap *m) {
    if (m->slots) memset(m->slots, 0, m->cap * sizeof(slot));
    m->count = 0;
}

/* ---- errors ------------------------------------------------------------- */
/* Records the first error only: later ones are consequences. Returns -1. */
AX_PRINTF(4, 5) static int perr(parser *p, int line, int col, const char *fmt, ...) {
    if (p->failed) return -1;
    p->failed = 1;
    char where[1024];
    ax_loc(where, sizeof where, p->name, line, col);
    va_list ap;
    va_start(ap, fmt);
    ax_diag_vadd(p->d, AX_SEV_ERROR, where, fmt, ap);
    va_end(ap);
    return -1;
}

/* How a token reads in "found ..." (valid until the next call). */
static const char *found(parser *p, const tok *t) {
    switch (t->k) {
    case T_EOF: return "end of file";
    case T_NL: return "end of line";
    case T_STRING: return "a string";
    case T_PUNCT: snprintf(p->found, sizeof p->found, "'%c'", t->c); return p->found;
    case T_ERROR: return "an invalid token";
    default: break;
    }
    const char *sig = t->k == T_GLOBAL ? "@" : t->k == T_VALUE ? "%" : "";
    int n = t->n > 40 ? 40 : (int)t->n;
    snprintf(p->found, sizeof p->found, "'%s%.*s%s'", sig, n, t->s, t->n > 40 ? "..." : "");
    return p->found;
}

/* ---- lexer --------------------------------------------------------------- */
static int is_alnum_(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
static int is_atom_char(int c) { return is_alnum_(c) || c == '.' || c == '-' || c == '+'; }
static int is_global_char(int c) { return is_alnum_(c) || c == '.' || c == '-' || c == '/'; }

static void adv(parser *p) {
    if (p->src[p->pos] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->pos++;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void lex_string(parser *p, tok *t) {
    ax_buf b = {0};
    adv(p); /* opening quote */
    for (;;) {
        if (p->pos >= p->len || p->src[p->pos] == '\n') {
            perr(p, t->line, t->col, "unterminated string: expected a closing '\"' before the end of the %s",
                 p->pos >= p->len ? "file" : "line");
            t->k = T_ERROR;
            ax_buf_free(&b);
            return;
        }
        char c = p->src[p->pos];
        if (c == '"') {
            adv(p);
            break;
        }
        if (c != '\\') {
            ax_buf_append(&b, &c, 1);
            adv(p);
            continue;
        }
        int eline = p->line, ecol = p->col;
        adv(p);
        char e = p->pos < p->len ? p->src[p->pos] : 0;
        char o = 0;
        switch (e) {
        case '"': o = '"'; break;
        case '\\': o = '\\'; break;
        case 'n': o = '\n'; break;
        case 't': o = '\t'; break;
        case 'x':
            if (p->pos + 2 < p->len && hexval(p->src[p->pos + 1]) >= 0 && hexval(p->src[p->pos + 2]) >= 0) {
                o = (char)(hexval(p->src[p->pos + 1]) * 16 + hexval(p->src[p->pos + 2]));
                adv(p);
                adv(p);
            }
            break;
        default: break;
        }
        if (!o) {
            perr(p, eline, ecol, "bad escape in string: expected \\\" \\\\ \\n \\t or \\xHH (not \\x00)");
            t->k = T_ERROR;
            ax_buf_free(&b);
            return;
        }
        ax_buf_append(&b, &o, 1);
        adv(p);
    }
    t->k = T_STRING;
    t->str = ax_arena_strndup(p->tmp, b.data ? b.data : "", b.len);
    ax_buf_free(&b);
}

static void next(parser *p) {
    tok *t = &p->t;
    if (p->failed) { /* stop producing tokens after the first error */
        t->k = T_ERROR;
        return;
    }
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c == ' ' || c == '\t' || c == '\r') {
            adv(p);
        } else if (c == '#') {
            while (p->pos < p->len && p->src[p->pos] != '\n') adv(p);
        } else {
            break;
        }
    }
    memset(t, 0, sizeof *t);
    t->line = p->line;
    t->col = p->col;
    if (p->pos >= p->len) {
        t->k = T_EOF;
        return;
    }
    char c = p->src[p->pos];
    if (c == '\n') {
        t->k = T_NL;
        adv(p);
        return;
    }
    if (c == '@' || c == '%') {
        adv(p);
        t->s = p->src + p->pos;
        while (p->pos < p->len && (c == '@' ? is_global_char(p->src[p->pos]) : is_alnum_(p->src[p->pos]))) adv(p);
        t->n = (size_t)(p->src + p->pos - t->s);
        t->k = c == '@' ? T_GLOBAL : T_VALUE;
        if (!t->n) {
            perr(p, t->line, t->col, "expected a %s name after '%c'", c == '@' ? "global" : "value", c);
            t->k = T_ERROR;
        }
        return;
    }
    if (c == '"') {
        lex_string(p, t);
        return;
    }
    if (is_atom_char(c)) {
        t->s = p->src + p->pos;
        while (p->pos < p->len && is_atom_char(p->src[p->pos])) adv(p);
        t->n = (size_t)(p->src + p->pos - t->s);
        t->k = T_ATOM;
        return;
    }
    if (c && strchr("(){}[]<>,=:", c)) {
        t->k = T_PUNCT;
        t->c = c;
        adv(p);
        return;
    }
    if ((unsigned char)c >= 0x21 && (unsigned char)c < 0x7f)
        perr(p, t->line, t->col, "unexpected character '%c'", c);
    else
        perr(p, t->line, t->col, "unexpected byte 0x%02x", (unsigned char)c);
    t->k = T_ERROR;
}

/* ---- token helpers --------------------------------------------------------- */
static int is_punct(const parser *p, char c) { return p->t.k == T_PUNCT && p->t.c == c; }

static int atom_is(const parser *p, const char *w) {
    return p->t.k == T_ATOM && p->t.n == strlen(w) && memcmp(p->t.s, w, p->t.n) == 0;
}

static int expect_punct(parser *p, char c, const char *ctx) {
    if (!is_punct(p, c)) return perr(p, p->t.line, p->t.col, "expected '%c' %s, found %s", c, ctx, found(p, &p->t));
    next(p);
    return 0;
}

/* The end of an item: a newline (consumed) or the end of the file. */
static int expect_eol(parser *p, const char *ctx) {
    if (p->t.k == T_NL) {
        next(p);
        return 0;
    }
    if (p->t.k == T_EOF) return 0;
    return perr(p, p->t.line, p->t.col, "expected end of line %s, found %s", ctx, found(p, &p->t));
}

static void skip_newlines(parser *p) {
    while (p->t.k == T_NL) next(p);
}

static int text_is_int(const char *s, size_t n) {
    size_t i = n && s[0] == '-';
    if (i == n) return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* -?D+(.D*)?([eE][+-]?D+)? with a '.' or an exponent, or inf, -inf, nan. */
static int text_is_float(const char *s, size_t n) {
    if ((n == 3 && !memcmp(s, "inf", 3)) || (n == 4 && !memcmp(s, "-inf", 4)) || (n == 3 && !memcmp(s, "nan", 3))) return 1;
    size_t i = n && s[0] == '-', d = 0;
    int frac = 0, ex = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
    if (!d) return 0;
    if (i < n && s[i] == '.') {
        frac = 1;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ex = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == e0) return 0;
    }
    return i == n && (frac || ex);
}

/* [A-Za-z0-9_]+ */
static int text_is_word(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_alnum_(s[i])) return 0;
    return n > 0;
}

/* The token's text as a C string in buf; 0 if it fits. */
static int tok_cstr(const tok *t, char *buf, size_t cap) {
    if (t->k != T_ATOM || t->n >= cap) return -1;
    memcpy(buf, t->s, t->n);
    buf[t->n] = 0;
    return 0;
}

static int text_is_ident(const char *s, size_t n, int dots) {
    if (!n || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum_(s[i]) && !(dots && s[i] == '.')) return 0;
    return 1;
}

/* Integer token -> *out; what names the thing expected. */
static int parse_int(parser *p, int64_t *out, const char *what) {
    const tok *t = &p->t;
    if (t->k != T_ATOM || !text_is_int(t->s, t->n)) return perr(p, t->line, t->col, "expected %s, found %s", what, found(p, t));
    int neg = t->s[0] == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (size_t i = (size_t)neg; i < t->n; i++) {
        uint64_t dgt = (uint64_t)(t->s[i] - '0');
        if (v > (lim - dgt) / 10) return perr(p, t->line, t->col, "integer %s out of range (64-bit)", found(p, t));
        v = v * 10 + dgt;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    next(p);
    return 0;
}

/* ---- types ------------------------------------------------------------------ */
/* Bound on a tensor's element count: keeps every later size computation
 * (numel * bits, byte offsets) far from int64 overflow. */
#define MAX_NUMEL ((int64_t)1 << 48)

static int numel_ok(const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return 0;
        if (t->dims[i] && n > MAX_NUMEL / t->dims[i]) return 0;
        n *= t->dims[i];
    }
    return 1;
}

static const char *mesh_list(parser *p) {
    if (!p->m->nmesh) return "the module has no mesh";
    ax_buf b = {0};
    ax_buf_puts(&b, "mesh axes:");
    for (int i = 0; i < p->m->nmesh; i++) ax_buf_printf(&b, " %s", p->m->mesh_names[i]);
    const char *s = ax_arena_strdup(p->tmp, b.data);
    ax_buf_free(&b);
    return s;
}

static int parse_type(parser *p, ir_type *out) {
    const tok *t = &p->t;
    if (t->k != T_ATOM) return perr(p, t->line, t->col, "expected a type such as f32[2,16], found %s", found(p, t));
    char dn[8];
    ir_dtype dt;
    if (tok_cstr(t, dn, sizeof dn) || ir_dtype_parse(dn, &dt) != 0)
        return perr(p, t->line, t->col, "expected a dtype (f32, bf16, f16, i32, u8, nf4), found %s", found(p, t));
    int tline = t->line, tcol = t->col;
    next(p);
    if (expect_punct(p, '[', "after the dtype")) return -1;
    int64_t dims[IR_MAX_RANK];
    int rank = 0;
    if (is_punct(p, ']')) {
        next(p);
    } else {
        for (;;) {
            if (rank == IR_MAX_RANK) return perr(p, t->line, t->col, "expected ']': rank exceeds %d", IR_MAX_RANK);
            int dl = t->line, dc = t->col;
            if (parse_int(p, &dims[rank], "a dimension (integer)")) return -1;
            if (dims[rank] < 0) return perr(p, dl, dc, "expected a dimension >= 0, found %lld", (long long)dims[rank]);
            rank++;
            if (is_punct(p, ',')) {
                next(p);
                continue;
            }
            if (expect_punct(p, ']', "or ',' in the dimension list")) return -1;
            break;
        }
    }
    *out = ir_type_make(dt, rank, dims);
    if (!numel_ok(out)) return perr(p, tline, tcol, "tensor type too large (more than 2^48 elements)");
    if (is_punct(p, '<')) {
        next(p);
        if (t->k != T_ATOM) return perr(p, t->line, t->col, "expected a mesh axis name after '<', found %s", found(p, t));
        int ax = -1;
        for (int i = 0; i < p->m->nmesh && ax < 0; i++)
            if (strlen(p->m->mesh_names[i]) == t->n && !memcmp(p->m->mesh_names[i], t->s, t->n)) ax = i;
        if (ax < 0) return perr(p, t->line, t->col, "expected a mesh axis (%s), found %s", mesh_list(p), found(p, t));
        next(p);
        if (expect_punct(p, ':', "after the mesh axis")) return -1;
        int dl = t->line, dc = t->col;
        int64_t dim;
        if (parse_int(p, &dim, "the split dimension (integer)")) return -1;
        if (dim < 0 || dim >= rank)
            return perr(p, dl, dc, "expected a split dimension in [0, %d), found %lld", rank, (long long)dim);
        if (expect_punct(p, '>', "after the sharding")) return -1;
        out->shard.axis = (int8_t)ax;
        out->shard.dim = (int8_t)dim;
    }
    return 0;
}

static int parse_role(parser *p, ir_role *out) {
    const tok *t = &p->t;
    char rn[8];
    if (tok_cstr(t, rn, sizeof rn) || ir_role_parse(rn, out) != 0)
        return perr(p, t->line, t->col, "expected a role (act, param, grad, opt, input, temp), found %s", found(p, t));
    next(p);
    return 0;
}

/* ---- attributes ------------------------------------------------------------- */
/* A float atom (a float's text: an integer's is refused, also in a float list) into *out. */
static int parse_float(parser *p, double *out, const char *what) {
    const tok *t = &p->t;
    if (t->k != T_ATOM || !text_is_float(t->s, t->n)) return perr(p, t->line, t->col, "expected %s, found %s", what, found(p, t));
    char *s = ax_arena_strndup(p->tmp, t->s, t->n);
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE && (v > 1 || v < -1)) return perr(p, t->line, t->col, "float %s out of range", found(p, t));
    *out = v;
    next(p);
    return 0;
}

static int parse_attr_value(parser *p, ir_attr *a) {
    const tok *t = &p->t;
    if (t->k == T_STRING) {
        a->kind = IR_ATTR_STR;
        a->s = t->str;
        next(p);
        return 0;
    }
    if (is_punct(p, '[')) { /* [integers], or [floats] when the first element is written as a float */
        next(p);
        const int floats = t->k == T_ATOM && !text_is_int(t->s, t->n) && text_is_float(t->s, t->n);
        void *v = NULL;
        int n = 0, cap = 0;
        if (!is_punct(p, ']')) {
            for (;;) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    void *nv = realloc(v, 8 * (size_t)cap);
                    if (!nv) abort();
                    v = nv;
                }
                if (floats ? parse_float(p, (double *)v + n, "a float in the list")
                           : parse_int(p, (int64_t *)v + n, "an integer in the list"))
                    break;
                n++;
                if (is_punct(p, ',')) {
                    next(p);
                    continue;
                }
                expect_punct(p, ']', floats ? "or ',' in the float list" : "or ',' in the integer list");
                break;
            }
        } else {
            next(p);
        }
        if (p->failed) {
            free(v);
            return -1;
        }
        a->kind = floats ? IR_ATTR_FLOATS : IR_ATTR_INTS;
        a->n = n;
        void *c = ax_arena_alloc(p->tmp, 8 * (size_t)(n ? n : 1));
        if (n) memcpy(c, v, 8 * (size_t)n);
        if (floats)
            a->floats = c;
        else
            a->ints = c;
        free(v);
        return 0;
    }
    if (t->k == T_ATOM && text_is_int(t->s, t->n)) {
        a->kind = IR_ATTR_INT;
        return parse_int(p, &a->i, "an integer");
    }
    if (t->k == T_ATOM && text_is_float(t->s, t->n)) {
        a->kind = IR_ATTR_FLOAT;
        return parse_float(p, &a->f, "a float");
    }
    return perr(p, t->line, t->col,
                "expected an attribute value (integer, float, \"string\", [integers] or [floats]), found %s", found(p, t));
}

/* '{' key=value, ... '}' -> scratch array. */
static int parse_attr_dict(parser *p, ir_attr **out, int *nout) {
    ir_attr *a = NULL;
    int n = 0, cap = 0;
    next(p); /* '{' */
    if (is_punct(p, '}')) {
        next(p);
        *out = NULL;
        *nout = 0;
        return 0;
    }
    for (;;) {
        const tok *t = &p->t;
        if (t->k != T_ATOM || !text_is_ident(t->s, t->n, 1)) {
            perr(p, t->line, t->col, "expected an attribute name, found %s", found(p, t));
            break;
        }
        for (int i = 0; i < n; i++)
            if (strlen(a[i].key) == t->n && !memcmp(a[i].key, t->s, t->n)) perr(p, t->line, t->col, "duplicate attribute %s", found(p, t));
        if (p->failed) break;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ir_attr *na = ax_arena_alloc(p->tmp, sizeof *na * (size_t)cap);
            if (n) memcpy(na, a, sizeof *na * (size_t)n);
            a = na;
        }
        memset(&a[n], 0, sizeof a[n]);
        a[n].key = ax_arena_strndup(p->tmp, t->s, t->n);
        next(p);
        if (expect_punct(p, '=', "after the attribute name") || parse_attr_value(p, &a[n])) break;
        n++;
        if (is_punct(p, ',')) {
            next(p);
            continue;
        }
        expect_punct(p, '}', "or ',' in the attributes");
        break;
    }
    if (p->failed) return -1;
    *out = a;
    *nout = n;
    return 0;
}

/* ---- top-level items ----------------------------------------------------------- */
static int parse_module_attr(parser *p) {
    next(p); /* attr */
    const tok *t = &p->t;
    if (t->k != T_ATOM || !text_is_ident(t->s, t->n, 1))
        return perr(p, t->line, t->col, "expected an attribute name after 'attr', found %s", found(p, t));
    ir_attr a;
    memset(&a, 0, sizeof a);
    a.key = ax_arena_strndup(p->tmp, t->s, t->n);
    if (ir_module_attr(p->m, a.key)) return perr(p, t->line, t->col, "duplicate module attribute %s", found(p, t));
    next(p);
    if (expect_punct(p, '=', "after the attribute name") || parse_attr_value(p, &a) || expect_eol(p, "after the attribute"))
        return -1;
    ir_module_set_attr(p->m, a);
    return 0;
}

static int parse_mesh(parser *p, int *mesh_line) {
    const tok *t = &p->t;
    if (*mesh_line) return perr(p, t->line, t->col, "duplicate 'mesh' line (the first is at line %d)", *mesh_line);
    *mesh_line = t->line;
    next(p);
    while (t->k == T_ATOM) {
        if (!text_is_ident(t->s, t->n, 0))
            return perr(p, t->line, t->col, "expected a mesh axis name, found %s", found(p, t));
        if (p->m->nmesh == IR_MAX_MESH) return perr(p, t->line, t->col, "too many mesh axes (at most %d)", IR_MAX_MESH);
        char *name = ax_arena_strndup(p->tmp, t->s, t->n);
        if (ir_mesh_find(p->m, name) >= 0) return perr(p, t->line, t->col, "duplicate mesh axis %s", found(p, t));
        next(p);
        if (expect_punct(p, '=', "after the mesh axis name")) return -1;
        int sl = t->line, sc = t->col;
        int64_t size;
        if (parse_int(p, &size, "the mesh axis size (integer)")) return -1;
        if (size <= 0) return perr(p, sl, sc, "expected a mesh axis size >= 1, found %lld", (long long)size);
        ir_mesh_add(p->m, name, size);
    }
    return expect_eol(p, "or 'axis=size' in the mesh");
}

static int parse_global(parser *p) {
    next(p); /* global */
    const tok *t = &p->t;
    if (t->k != T_GLOBAL) return perr(p, t->line, t->col, "expected a global name (@name), found %s", found(p, t));
    slot *prev = nmap_find(&p->globals, t->s, t->n);
    if (prev) return perr(p, t->line, t->col, "redefinition of global %s (first defined at line %d)", found(p, t), prev->line);
    tok name = *t;
    next(p);
    ir_type ty;
    ir_role role;
    ir_attr *attrs = NULL;
    int nattrs = 0;
    if (expect_punct(p, ':', "after the global name") || parse_type(p, &ty) || parse_role(p, &role)) return -1;
    if (is_punct(p, '{') && parse_attr_dict(p, &attrs, &nattrs)) return -1;
    if (expect_eol(p, "after the global")) return -1;
    char *gname = ax_arena_strndup(p->tmp, name.s, name.n);
    int g = ir_global_add(p->m, gname, ty, role, attrs, nattrs);
    nmap_put(&p->globals, gname, name.n, g, name.line);
    return 0;
}

typedef struct named {
    const char *s;
    size_t n;
    int line, col;
} named;

#define MAX_OPERANDS IR_MAX_IN
#define MAX_RESULTS 8

static int parse_node(parser *p, ir_program *prog) {
    const tok *t = &p->t;
    ir_module *m = p->m;
    named res[MAX_RESULTS];
    int nres = 0;
    if (t->k == T_VALUE) {
        for (;;) {
            if (t->k != T_VALUE) return perr(p, t->line, t->col, "expected a result name (%%name), found %s", found(p, t));
            if (nres == MAX_RESULTS) return perr(p, t->line, t->col, "too many results (at most %d)", MAX_RESULTS);
            res[nres++] = (named){t->s, t->n, t->line, t->col};
            next(p);
            if (!is_punct(p, ',')) break;
            next(p);
        }
        if (expect_punct(p, '=', "after the result names")) return -1;
    }
    /* op */
    if (t->k != T_ATOM) return perr(p, t->line, t->col, "expected an op name, found %s", found(p, t));
    tok optok = *t;
    char opname[64];
    ir_op op;
    if (tok_cstr(t, opname, sizeof opname) || ir_op_parse(opname, &op) != 0)
        return perr(p, t->line, t->col, "expected an op name, found unknown op %s", found(p, t));
    const ir_op_info *info = &ir_ops[op];
    next(p);
    if (expect_punct(p, '(', "after the op name")) return -1;
    /* operands */
    int32_t in[MAX_OPERANDS];
    int inl[MAX_OPERANDS], inc[MAX_OPERANDS];
    int nin = 0;
    if (!is_punct(p, ')')) {
        for (;;) {
            int32_t ref;
            if (t->k == T_VALUE) {
                slot *s = nmap_find(&p->values, t->s, t->n);
                if (!s) return perr(p, t->line, t->col, "use of undefined value %s", found(p, t));
                ref = s->v;
            } else if (t->k == T_GLOBAL) {
                slot *s = nmap_find(&p->globals, t->s, t->n);
                if (!s) return perr(p, t->line, t->col, "unknown global %s (globals must be declared before use)", found(p, t));
                ref = IR_GLOBAL_REF(s->v);
            } else {
                return perr(p, t->line, t->col, "expected an operand (%%value or @global), found %s", found(p, t));
            }
            if (nin == MAX_OPERANDS) {
                char nb[32];
                return perr(p, optok.line, optok.col, "%s takes %s operand%s, found more than %d", info->name,
                            ir_op_nin_str(op, nb, sizeof nb), info->nin == 1 ? "" : "s", MAX_OPERANDS);
            }
            inl[nin] = t->line;
            inc[nin] = t->col;
            in[nin++] = ref;
            next(p);
            if (is_punct(p, ',')) {
                next(p);
                continue;
            }
            if (!is_punct(p, ')')) return perr(p, t->line, t->col, "expected ',' or ')' in the operands, found %s", found(p, t));
            break;
        }
    }
    next(p); /* ')' */
    if (!ir_op_nin_ok(op, nin)) {
        char nb[32];
        return perr(p, optok.line, optok.col, "%s takes %s operand%s, found %d", info->name, ir_op_nin_str(op, nb, sizeof nb),
                    info->nin == 1 ? "" : "s", nin);
    }
    for (int i = 0; (info->flags & IR_F_EFFECT) && i < nin; i++)
        if (ir_op_writes(op, i) && !IR_REF_IS_GLOBAL(in[i]))
            return perr(p, inl[i], inc[i], "expected a global (the state %s updates) as operand %d, found a value", info->name, i);
    if (nres != info->nout) {
        int l = nres ? res[0].line : optok.line, c = nres ? res[0].col : optok.col;
        return perr(p, l, c, "%s has %d result%s, found %d result name%s", info->name, info->nout, info->nout == 1 ? "" : "s",
                    nres, nres == 1 ? "" : "s");
    }
    ir_attr *attrs = NULL;
    int nattrs = 0;
    if (is_punct(p, '{') && parse_attr_dict(p, &attrs, &nattrs)) return -1;
    /* result types */
    ir_type types[MAX_RESULTS];
    ir_role roles[MAX_RESULTS];
    int tline[MAX_RESULTS], tcol[MAX_RESULTS];
    if (info->nout > 0) {
        if (expect_punct(p, ':', "and the result types")) return -1;
        for (int i = 0; i < info->nout; i++) {
            if (i && expect_punct(p, ',', "between the result types")) return -1;
            tline[i] = t->line;
            tcol[i] = t->col;
            if (parse_type(p, &types[i]) || parse_role(p, &roles[i])) return -1;
        }
        if (is_punct(p, ','))
            return perr(p, t->line, t->col, "expected end of line: %s has %d result type%s, found more", info->name, info->nout,
                        info->nout == 1 ? "" : "s");
    } else if (is_punct(p, ':')) {
        return perr(p, t->line, t->col, "expected end of line: %s has no results to type, found ':'", info->name);
    }
    if (expect_eol(p, "after the node")) return -1;
    /* names: each defined once */
    for (int i = 0; i < nres; i++) {
        slot *s = nmap_find(&p->values, res[i].s, res[i].n);
        int first = s ? s->line : 0;
        for (int j = 0; j < i && !first; j++)
            if (res[j].n == res[i].n && !memcmp(res[j].s, res[i].s, res[i].n)) first = res[j].line;
        if (first)
            return perr(p, res[i].line, res[i].col, "redefinition of %%%.*s (first defined at line %d)", (int)res[i].n, res[i].s,
                        first);
    }
    /* types: ir_infer, written types must agree for untyped ops */
    ir_type tin[MAX_OPERANDS], tout[MAX_RESULTS];
    for (int i = 0; i < nin; i++) tin[i] = *ir_ref_type(m, prog, in[i]);
    if (info->flags & IR_F_TYPED)
        for (int i = 0; i < info->nout; i++) tout[i] = types[i];
    if (op == IR_OP_reshape) { /* its shape rule multiplies the attr's dims */
        const ir_attr *s = ir_attr_find(attrs, nattrs, "shape");
        if (s && s->kind == IR_ATTR_INTS && s->n <= IR_MAX_RANK) {
            ir_type st = ir_type_make(IR_F32, s->n, s->ints);
            if (!numel_ok(&st))
                return perr(p, optok.line, optok.col, "reshape: shape must have dims >= 0 and at most 2^48 elements");
        }
    }
    char err[512];
    if (ir_infer(m, op, tin, nin, attrs, nattrs, tout, err, sizeof err) != 0)
        return perr(p, optok.line, optok.col, "%s: %s", info->name, err);
    for (int i = 0; i < info->nout; i++) {
        char a[128], b[128];
        if (!(info->flags & IR_F_TYPED) && !ir_type_equal(&types[i], &tout[i]))
            return perr(p, tline[i], tcol[i], "result %d declared %s but the shape rule gives %s", i,
                        ir_type_str(m, &types[i], a, sizeof a), ir_type_str(m, &tout[i], b, sizeof b));
    }
    ax_diag nd;
    ax_diag_init(&nd);
    int32_t ids[MAX_RESULTS];
    int rc = ir_node_add(m, prog, op, in, nin, attrs, nattrs, (info->flags & IR_F_TYPED) ? types : NULL, roles, ids, &nd);
    if (rc < 0) perr(p, optok.line, optok.col, "%s", nd.n ? nd.entries[0].msg : "cannot add the node");
    ax_diag_free(&nd);
    if (rc < 0) return -1;
    for (int i = 0; i < nres; i++) nmap_put(&p->values, res[i].s, res[i].n, ids[i], res[i].line);
    return 0;
}

static int parse_program(parser *p) {
    int pline = p->t.line;
    next(p); /* program */
    const tok *t = &p->t;
    if (t->k != T_ATOM || !text_is_word(t->s, t->n))
        return perr(p, t->line, t->col, "expected a program name ([A-Za-z0-9_]+), found %s", found(p, t));
    slot *prev = nmap_find(&p->programs, t->s, t->n);
    if (prev) return perr(p, t->line, t->col, "duplicate program %s (first defined at line %d)", found(p, t), prev->line);
    char *name = ax_arena_strndup(p->tmp, t->s, t->n);
    nmap_put(&p->programs, name, t->n, 0, t->line);
    ir_program *prog = ir_program_add(p->m, name);
    nmap_clear(&p->values);
    next(p);
    if (expect_punct(p, '{', "after the program name") || expect_eol(p, "after '{'")) return -1;
    for (;;) {
        skip_newlines(p);
        if (t->k == T_EOF)
            return perr(p, t->line, t->col, "expected '}' closing program %s (opened at line %d), found end of file", name, pline);
        if (is_punct(p, '}')) {
            next(p);
            return expect_eol(p, "after '}'");
        }
        if (parse_node(p, prog)) return -1;
    }
}

ir_module *ir_parse(const char *text, size_t len, const char *name, ax_diag *d) {
    parser ps, *p = &ps;
    memset(p, 0, sizeof *p);
    p->src = text ? text : "";
    p->len = text ? len : 0;
    p->line = p->col = 1;
    p->name = name ? name : "<ir>";
    p->d = d;
    p->tmp = ax_arena_create();
    p->m = ir_module_create();
    const tok *t = &p->t;
    int mesh_line = 0;
    next(p);
    skip_newlines(p);
    if (!atom_is(p, "axo.ir")) {
        perr(p, t->line, t->col, "expected the header 'axo.ir 1', found %s", found(p, t));
    } else {
        next(p);
        int vl = t->line, vc = t->col;
        int64_t ver = 0;
        if (!parse_int(p, &ver, "the format version (1)") && ver != 1)
            perr(p, vl, vc, "expected format version 1, found %lld", (long long)ver);
        expect_eol(p, "after the header");
    }
    while (!p->failed) {
        skip_newlines(p);
        if (t->k == T_EOF) break;
        if (atom_is(p, "attr"))
            parse_module_attr(p);
        else if (atom_is(p, "mesh"))
            parse_mesh(p, &mesh_line);
        else if (atom_is(p, "global"))
            parse_global(p);
        else if (atom_is(p, "program"))
            parse_program(p);
        else
            perr(p, t->line, t->col, "expected 'attr', 'mesh', 'global' or 'program', found %s", found(p, t));
    }
    free(p->values.slots);
    free(p->globals.slots);
    free(p->programs.slots);
    ax_arena_destroy(p->tmp);
    if (p->failed) {
        ir_module_destroy(p->m);
        return NULL;
    }
    return p->m;
}
