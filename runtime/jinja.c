/* jinja.c — a Jinja2 subset for chat templates (see jinja.h). Written from
 * jinja2's documented semantics and checked against jinja2 itself
 * (tests/reference/jinja/cases.jsonl).
 *
 * Layout: lexer (source -> tokens, whitespace control applied to the data
 * between tags, as jinja2's lexer does), recursive-descent parser (tokens ->
 * nodes, allocated in the template's arena; filter and test names resolved
 * here so an unknown one is a parse error), tree-walking interpreter.
 *
 * Errors inside the parser and the interpreter longjmp to the entry point:
 * every allocation is in an arena (the template's, or the render's), so an
 * error frees everything with it. The render's arena is capped, as are the
 * output, loop iterations and macro recursion.
 */
#include "runtime/jinja.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#define MAX_OUTPUT (64u << 20) /* bytes of rendered text */
#define MAX_MEMORY (512u << 20) /* bytes of values in one render */
#define MAX_ITERS 10000000L    /* loop iterations in one render */
#define MAX_RANGE 100000       /* jinja2's sandbox MAX_RANGE */
#define MAX_CALL_DEPTH 200     /* nested macro calls */
#define MAX_NEST 200           /* nested expressions / blocks when parsing */

/* ---- values ---------------------------------------------------------------- */

enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_TUPLE, V_DICT, V_NS, V_FUNC, V_MACRO, V_LOOP, V_MISSING };

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jmacro jmacro;
typedef struct jloop jloop;

typedef struct jv {
    int k;
    size_t n; /* V_STR: bytes */
    union {
        int64_t i;     /* V_BOOL, V_INT */
        double f;      /* V_FLOAT */
        const char *s; /* V_STR (NUL-terminated too); V_UNDEF: why it is undefined, or NULL */
        jlist *l;      /* V_LIST, V_TUPLE */
        jdict *d;      /* V_DICT, V_NS */
        jfunc *fn;
        jmacro *m;
        jloop *lp;
    };
} jv;

struct jlist {
    size_t n;
    int gen; /* a generator (what map, select, unique... return): no len, no index, always true */
    jv *v;
};
struct jdict {
    size_t n, cap;
    jv *k, *v;
};
struct jfunc {
    const char *name; /* a global ("range") or a method ("strip") */
    jv self;          /* the bound object, V_UNDEF for a global */
    int global;
};

typedef struct node node;
typedef struct frame frame;
struct jmacro {
    const node *def; /* N_MACRO, or N_CALLBLOCK for `caller` */
    frame *closure;
    jv caller;       /* for a call block: the macro's caller, or undefined */
};
typedef struct {
    jlist *items;
    jv changed_last;
    int changed_any;
} loopstate;
struct jloop {
    loopstate *st;
    int64_t i;
};

static jv mk_undef(const char *why) {
    jv v = {V_UNDEF, 0, {.s = why}};
    return v;
}
static jv mk_none(void) {
    jv v = {V_NONE, 0, {.i = 0}};
    return v;
}
static jv mk_bool(int b) {
    jv v = {V_BOOL, 0, {.i = b != 0}};
    return v;
}
static jv mk_int(int64_t i) {
    jv v = {V_INT, 0, {.i = i}};
    return v;
}
static jv mk_float(double f) {
    jv v = {V_FLOAT, 0, {.f = f}};
    return v;
}
static jv mk_missing(void) {
    jv v = {V_MISSING, 0, {.i = 0}};
    return v;
}

/* ---- the nodes ----------------------------------------------------------------- */

enum {
    /* statements */
    N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK, N_CONTINUE,
    N_WITH,
    /* expressions */
    E_CONST, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NEG, E_POS,
    E_NOT, E_AND, E_OR, E_CMP, E_COND, E_CONCAT,
    /* assignment targets */
    T_NAME, T_TUPLE, T_NSATTR
};

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

struct node {
    int kind, line, op; /* op: E_BIN / E_CMP operator, filter or test id, E_TEST negation in `neg` */
    int neg;
    const char *name; /* names, attributes, filters, tests */
    jv val;           /* E_CONST */
    node *a, *b, *c;  /* operands; E_SLICE: start, stop, step in a/b/c with the object in `obj` */
    node *obj;
    node **xs;        /* items, args, body, elements */
    int nx;
    node **ys;        /* kwarg values, else-body, dict values */
    int ny;
    const char **names; /* kwarg names, macro params */
    int nnames;
    node *dyn_args, *dyn_kwargs;
    int *ops; /* E_CMP: the operators */
};

/* ---- errors and memory ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

typedef struct {
    ax_arena *ar;
    size_t bytes;
    jmp_buf jb;
    jinja_err *err;
    int line;
} ctx;

static _Noreturn void AX_PRINTF(3, 4) fail_at(ctx *c, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
    va_end(ap);
    c->err->line = line;
    longjmp(c->jb, 1);
}
#define fail(c, ...) fail_at((c), (c)->line, __VA_ARGS__)

static void *alloc(ctx *c, size_t n) {
    c->bytes += n;
    if (c->bytes > MAX_MEMORY) fail(c, "the template used more than %u MiB of memory", MAX_MEMORY >> 20);
    return ax_arena_alloc(c->ar, n ? n : 1);
}

static void sb_grow(ctx *c, sbuf *b, size_t more) {
    if (b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->n + more + 1) cap *= 2;
    char *p = alloc(c, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}
static void sb_put(ctx *c, sbuf *b, const char *s, size_t n) {
    if (!n) return;
    sb_grow(c, b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(ctx *c, sbuf *b, const char *s) { sb_put(c, b, s, strlen(s)); }
static void sb_ch(ctx *c, sbuf *b, char ch) { sb_put(c, b, &ch, 1); }
static void AX_PRINTF(3, 4) sb_printf(ctx *c, sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(c, b, tmp, (size_t)(n < (int)sizeof tmp ? n : (int)sizeof tmp - 1));
}

static jv mk_strn(ctx *c, const char *s, size_t n) {
    char *p = alloc(c, n + 1);
    if (n) memcpy(p, s, n);
    jv v = {V_STR, n, {.s = p}};
    return v;
}
static jv mk_str(ctx *c, const char *s) { return mk_strn(c, s, strlen(s)); }
static jv sb_val(ctx *c, sbuf *b) {
    if (!b->p) return mk_strn(c, "", 0);
    jv v = {V_STR, b->n, {.s = b->p}};
    return v;
}
static jlist *mk_jlist(ctx *c, size_t n) {
    jlist *l = alloc(c, sizeof *l);
    l->n = n;
    l->v = alloc(c, sizeof(jv) * (n ? n : 1));
    return l;
}
static jv mk_seq(int kind, jlist *l) {
    jv v = {kind, 0, {.l = l}};
    return v;
}
static jdict *mk_jdict(ctx *c) { return alloc(c, sizeof(jdict)); }
static jv mk_dictv(int kind, jdict *d) {
    jv v = {kind, 0, {.d = d}};
    return v;
}

/* a growable list while building */
typedef struct {
    jv *v;
    size_t n, cap;
} vbuf;
static void vb_push(ctx *c, vbuf *b, jv x) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        jv *v = alloc(c, sizeof(jv) * cap);
        if (b->n) memcpy(v, b->v, sizeof(jv) * b->n);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
}
static jv vb_list(ctx *c, vbuf *b, int kind, int gen) {
    jlist *l = alloc(c, sizeof *l);
    l->n = b->n;
    l->v = b->v ? b->v : alloc(c, sizeof(jv)); /* never NULL: memcpy from it is then defined */
    l->gen = gen;
    return mk_seq(kind, l);
}

/* ---- UTF-8 and Python's character classes ----------------------------------------- */

static size_t u8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

static int32_t u8_dec(const char *s, size_t n, size_t *adv) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
    if (k <= 0) {
        *adv = 1;
        return (unsigned char)s[0];
    }
    *adv = (size_t)k;
    return cp;
}
static void u8_enc(ctx *c, sbuf *b, int32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, tmp);
    sb_put(c, b, (const char *)tmp, (size_t)k);
}
static size_t u8_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}
/* byte offset of code point `idx` (idx <= count) */
static size_t u8_off(const char *s, size_t n, size_t idx) {
    size_t i = 0;
    while (idx > 0 && i < n) {
        i += u8_len((unsigned char)s[i]);
        idx--;
    }
    return i > n ? n : i;
}

/* str.isspace() */
static int py_isspace(int32_t cp) {
    return (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}
void jinja_strip_space(const char *s, size_t *a, size_t *b, int left, int right) {
    size_t adv;
    while (left && *a < *b && py_isspace(u8_dec(s + *a, *b - *a, &adv))) *a += adv;
    while (right && *b > *a) {
        size_t st = *b - 1;
        while (st > *a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        if (!py_isspace(u8_dec(s + st, *b - st, &adv))) break;
        *b = st;
    }
}

static int is_cased_upper(int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT;
}
static int is_cased(int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}
static int is_alpha(int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
static int is_digit(int32_t cp) {
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ND;
}
static int is_printable(int32_t cp) {
    if (cp == ' ') return 1;
    utf8proc_category_t k = utf8proc_category(cp);
    return !(k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
             k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_ZS ||
             k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP);
}

/* ---- formatting: str() and repr() as Python's ----------------------------------- */

static const char *type_name(jv v) {
    switch (v.k) {
    case V_UNDEF: return "Undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return "str";
    case V_LIST: return v.l->gen ? "generator" : "list";
    case V_TUPLE: return "tuple";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_FUNC: return "builtin_function_or_method";
    case V_MACRO: return "Macro";
    case V_LOOP: return "LoopContext";
    default: return "object";
    }
}

/* float.__repr__: the shortest digits that read back, fixed notation for
 * exponents in [-4, 16), else d.ddde+XX */
static void fmt_float(ctx *c, sbuf *b, double x) {
    if (isnan(x)) {
        sb_puts(c, b, "nan");
        return;
    }
    if (isinf(x)) {
        sb_puts(c, b, x < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    for (int p = 0; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0, neg = tmp[0] == '-';
    const char *q = tmp + neg;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int e = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) sb_ch(c, b, '-');
    if (e >= -4 && e < 16) {
        if (e < 0) {
            sb_puts(c, b, "0.");
            for (int i = 0; i < -e - 1; i++) sb_ch(c, b, '0');
            sb_put(c, b, digits, (size_t)nd);
        } else {
            for (int i = 0; i <= e; i++) sb_ch(c, b, i < nd ? digits[i] : '0');
            sb_ch(c, b, '.');
            if (nd > e + 1) sb_put(c, b, digits + e + 1, (size_t)(nd - e - 1));
            else sb_ch(c, b, '0');
        }
    } else {
        sb_ch(c, b, digits[0]);
        if (nd > 1) {
            sb_ch(c, b, '.');
            sb_put(c, b, digits + 1, (size_t)(nd - 1));
        }
        sb_printf(c, b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

static void repr_str(ctx *c, sbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    sb_ch(c, b, q);
    for (size_t i = 0; i < n;) {
        size_t adv;
        int32_t cp = u8_dec(s + i, n - i, &adv);
        if (cp == q || cp == '\\') {
            sb_ch(c, b, '\\');
            sb_ch(c, b, (char)cp);
        } else if (cp == '\n') sb_puts(c, b, "\\n");
        else if (cp == '\r') sb_puts(c, b, "\\r");
        else if (cp == '\t') sb_puts(c, b, "\\t");
        else if (cp < 0x20 || cp == 0x7f) sb_printf(c, b, "\\x%02x", cp);
        else if (cp < 0x80 || is_printable(cp)) sb_put(c, b, s + i, adv);
        else if (cp < 0x100) sb_printf(c, b, "\\x%02x", cp);
        else if (cp < 0x10000) sb_printf(c, b, "\\u%04x", cp);
        else sb_printf(c, b, "\\U%08x", cp);
        i += adv;
    }
    sb_ch(c, b, q);
}

static void to_str(ctx *c, sbuf *b, jv v);

static void to_repr(ctx *c, sbuf *b, jv v) {
    switch (v.k) {
    case V_STR: repr_str(c, b, v.s, v.n); return;
    case V_UNDEF: sb_puts(c, b, "Undefined"); return;
    case V_LIST:
    case V_TUPLE:
        if (v.l->gen) {
            sb_puts(c, b, "<generator object>");
            return;
        }
        sb_ch(c, b, v.k == V_LIST ? '[' : '(');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) sb_puts(c, b, ", ");
            to_repr(c, b, v.l->v[i]);
        }
        if (v.k == V_TUPLE && v.l->n == 1) sb_ch(c, b, ',');
        sb_ch(c, b, v.k == V_LIST ? ']' : ')');
        return;
    case V_DICT:
    case V_NS:
        if (v.k == V_NS) sb_puts(c, b, "<Namespace ");
        sb_ch(c, b, '{');
        for (size_t i = 0; i < v.d->n; i++) {
            if (i) sb_puts(c, b, ", ");
            to_repr(c, b, v.d->k[i]);
            sb_puts(c, b, ": ");
            to_repr(c, b, v.d->v[i]);
        }
        sb_ch(c, b, '}');
        if (v.k == V_NS) sb_ch(c, b, '>');
        return;
    default: to_str(c, b, v);
    }
}

static void to_str(ctx *c, sbuf *b, jv v) {
    switch (v.k) {
    case V_UNDEF: return;
    case V_NONE: sb_puts(c, b, "None"); return;
    case V_BOOL: sb_puts(c, b, v.i ? "True" : "False"); return;
    case V_INT: sb_printf(c, b, "%lld", (long long)v.i); return;
    case V_FLOAT: fmt_float(c, b, v.f); return;
    case V_STR: sb_put(c, b, v.s, v.n); return;
    case V_FUNC: sb_printf(c, b, "<built-in method %s>", v.fn->name); return;
    case V_MACRO: sb_printf(c, b, "<Macro '%s'>", v.m->def->name ? v.m->def->name : "caller"); return;
    case V_LOOP: sb_printf(c, b, "<LoopContext %lld/%zu>", (long long)v.lp->i + 1, v.lp->st->items->n); return;
    case V_MISSING: fail(c, "a required argument is missing"); /* a builtin that did not check its arguments */
    default: to_repr(c, b, v);
    }
}

static jv str_of(ctx *c, jv v) {
    if (v.k == V_STR) return v;
    sbuf b = {0};
    to_str(c, &b, v);
    return sb_val(c, &b);
}

/* ---- lexer ------------------------------------------------------------------------ */

enum { TK_DATA, TK_VBEGIN, TK_VEND, TK_BBEGIN, TK_BEND, TK_NAME, TK_STR, TK_INT, TK_FLOAT, TK_OP, TK_EOF };

typedef struct {
    int t, line;
    const char *s; /* TK_DATA, TK_NAME, TK_STR (decoded), TK_OP */
    size_t n;
    int64_t i;
    double f;
} token;

struct jinja_tpl {
    ax_arena *ar;
    node **body;
    int nbody;
};

typedef struct {
    ctx c;
    const char *src;
    size_t n;
    token *toks;
    size_t ntok, cap, pos;
    int depth, loops;
} parser;

static void push_tok(parser *p, token t) {
    if (p->ntok == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        token *nt = alloc(&p->c, sizeof(token) * cap);
        if (p->ntok) memcpy(nt, p->toks, sizeof(token) * p->ntok);
        p->toks = nt;
        p->cap = cap;
    }
    p->toks[p->ntok++] = t;
}

static int lines_in(const char *s, size_t a, size_t b) {
    int k = 0;
    for (size_t i = a; i < b; i++) k += s[i] == '\n';
    return k;
}

/* Python's \s (str.isspace) at s[i], its length or 0 */
static size_t ws_at(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    size_t adv;
    int32_t cp = u8_dec(s + i, n - i, &adv);
    return py_isspace(cp) ? adv : 0;
}
static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t k;
    while ((k = ws_at(s, n, i))) i += k;
    return i;
}
/* the end of s[a, b) with trailing whitespace removed */
static size_t rstrip_end(const char *s, size_t a, size_t b) {
    while (b > a) {
        size_t st = b - 1;
        while (st > a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        if (!ws_at(s, b, st)) break;
        b = st;
    }
    return b;
}

/* the data before a tag, with the tag's whitespace control applied: `-`
 * strips all whitespace before it; otherwise lstrip_blocks strips spaces from
 * the line's start when only whitespace precedes a {% or {# there */
static void push_data(parser *p, size_t a, size_t b, char sign, int lstrip_ok, int line_starting, int line) {
    if (sign == '-') b = rstrip_end(p->src, a, b);
    else if (sign != '+' && lstrip_ok) {
        size_t l = b;
        while (l > a && p->src[l - 1] != '\n') l--;
        if ((l > a || line_starting) && l < b && skip_ws(p->src, b, l) == b) b = l;
    }
    if (b > a) {
        token t = {TK_DATA, line, p->src + a, b - a, 0, 0};
        push_tok(p, t);
    }
}

static int is_name_start(unsigned char ch) { return ch == '_' || (unsigned)((ch | 32) - 'a') < 26u || ch >= 0x80; }
static int is_name_char(unsigned char ch) { return is_name_start(ch) || (ch >= '0' && ch <= '9'); }

/* a string literal's body, unescaped as Python's unicode-escape does */
static void unescape(parser *p, const char *s, size_t n, int line, token *t) {
    ctx *c = &p->c;
    sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            sb_ch(c, &b, s[i]);
            continue;
        }
        char e = s[++i];
        int hex = 0;
        switch (e) {
        case '\n': break;
        case '\\': sb_ch(c, &b, '\\'); break;
        case '\'': sb_ch(c, &b, '\''); break;
        case '"': sb_ch(c, &b, '"'); break;
        case 'a': sb_ch(c, &b, '\a'); break;
        case 'b': sb_ch(c, &b, '\b'); break;
        case 'f': sb_ch(c, &b, '\f'); break;
        case 'n': sb_ch(c, &b, '\n'); break;
        case 'r': sb_ch(c, &b, '\r'); break;
        case 't': sb_ch(c, &b, '\t'); break;
        case 'v': sb_ch(c, &b, '\v'); break;
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                int v = 0, k = 0;
                while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') v = v * 8 + (s[i++] - '0'), k++;
                i--;
                u8_enc(c, &b, v);
            } else {
                sb_ch(c, &b, '\\');
                sb_ch(c, &b, e);
            }
        }
        if (hex) {
            int32_t v = 0;
            for (int k = 0; k < hex; k++) {
                char h = i + 1 + (size_t)k < n ? s[i + 1 + k] : 0;
                int d = h >= '0' && h <= '9' ? h - '0' : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10 : -1;
                if (d < 0) fail_at(c, line, "truncated \\%c escape in a string literal", e);
                v = v * 16 + d;
            }
            if (v > 0x10FFFF) fail_at(c, line, "illegal Unicode character in a string literal");
            i += (size_t)hex;
            u8_enc(c, &b, v);
        }
    }
    sb_grow(c, &b, 0);
    t->s = b.p;
    t->n = b.n;
}

static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<="};

/* the tokens of one {{ }} or {% %}, up to its end marker (at bracket depth 0);
 * returns the position after the marker */
static size_t lex_tag(parser *p, size_t i, int block, int *line, int *line_starting) {
    const char *s = p->src;
    size_t n = p->n;
    char stack[MAX_NEST];
    int depth = 0;
    for (;;) {
        size_t j = skip_ws(s, n, i);
        *line += lines_in(s, i, j);
        i = j;
        if (i >= n) fail_at(&p->c, *line, "unexpected end of template, expected the end of the %s",
                            block ? "statement block (%})" : "print statement (}})");
        if (depth == 0) {
            const char *end = block ? "%}" : "}}";
            int sign = (s[i] == '-' || (block && s[i] == '+')) && i + 2 <= n && !strncmp(s + i + 1, end, 2);
            if (sign || !strncmp(s + i, end, 2)) {
                token t = {block ? TK_BEND : TK_VEND, *line, NULL, 0, 0, 0};
                push_tok(p, t);
                size_t k = i + 2 + (size_t)sign;
                if (sign && s[i] == '-') {
                    size_t m = skip_ws(s, n, k);
                    *line += lines_in(s, k, m);
                    k = m;
                } else if (!sign && block && k < n && s[k] == '\n') { /* trim_blocks */
                    k++;
                    (*line)++;
                }
                *line_starting = k > 0 && s[k - 1] == '\n';
                return k;
            }
        }
        token t = {TK_OP, *line, s + i, 1, 0, 0};
        unsigned char ch = (unsigned char)s[i];
        if (ch >= '0' && ch <= '9') {
            /* float: digits (. digits)? (e[+-]digits)? with one of them; _ separators */
            size_t k = i;
            while (k < n && ((s[k] >= '0' && s[k] <= '9') || (s[k] == '_' && k + 1 < n && s[k + 1] >= '0' && s[k + 1] <= '9'))) k++;
            int isf = 0;
            size_t m = k;
            if (m + 1 < n && s[m] == '.' && s[m + 1] >= '0' && s[m + 1] <= '9' && !(i > 0 && s[i - 1] == '.')) {
                m++;
                while (m < n && ((s[m] >= '0' && s[m] <= '9') || s[m] == '_')) m++;
                isf = 1;
            }
            if (m < n && (s[m] | 32) == 'e' && !(i > 0 && s[i - 1] == '.')) {
                size_t q = m + 1;
                if (q < n && (s[q] == '+' || s[q] == '-')) q++;
                if (q < n && s[q] >= '0' && s[q] <= '9') {
                    while (q < n && ((s[q] >= '0' && s[q] <= '9') || s[q] == '_')) q++;
                    m = q;
                    isf = 1;
                }
            }
            char num[128];
            size_t nn = 0;
            int base = 10;
            size_t from = i;
            if (!isf && s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
                base = (s[i + 1] | 32) == 'b' ? 2 : (s[i + 1] | 32) == 'o' ? 8 : 16;
                from = i + 2;
                m = from;
                while (m < n && (s[m] == '_' || (base == 16 ? (s[m] >= '0' && s[m] <= '9') || ((s[m] | 32) >= 'a' && (s[m] | 32) <= 'f')
                                                            : s[m] >= '0' && s[m] < '0' + base)))
                    m++;
            } else if (!isf) {
                m = k;
            }
            for (size_t q = from; q < m && nn + 1 < sizeof num; q++)
                if (s[q] != '_') num[nn++] = s[q];
            num[nn] = 0;
            if (isf) {
                t.t = TK_FLOAT;
                t.f = strtod(num, NULL);
            } else {
                t.t = TK_INT;
                char *e;
                unsigned long long v = strtoull(num, &e, base);
                if (v > (unsigned long long)INT64_MAX || !nn) fail_at(&p->c, *line, "integer literal %s is too large", num);
                t.i = (int64_t)v;
            }
            i = m;
        } else if (is_name_start(ch)) {
            size_t k = i;
            while (k < n && is_name_char((unsigned char)s[k])) k++;
            t.t = TK_NAME;
            t.n = k - i;
            i = k;
        } else if (ch == '\'' || ch == '"') {
            size_t k = i + 1;
            while (k < n && s[k] != (char)ch) k += s[k] == '\\' ? 2 : 1;
            if (k >= n) fail_at(&p->c, *line, "unexpected end of string literal");
            t.t = TK_STR;
            unescape(p, s + i + 1, k - i - 1, *line, &t);
            *line += lines_in(s, i, k);
            i = k + 1;
        } else {
            int two = 0;
            for (size_t q = 0; q < sizeof ops2 / sizeof *ops2; q++)
                if (i + 1 < n && !strncmp(s + i, ops2[q], 2)) two = 1;
            if (two) t.n = 2;
            else if (!strchr("+-/*%~[](){}><=.:|,;", ch) || !ch) fail_at(&p->c, *line, "unexpected char '%c'", ch);
            if (ch == '(' || ch == '[' || ch == '{') {
                if (depth >= MAX_NEST) fail_at(&p->c, *line, "brackets nested too deeply");
                stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
            } else if (ch == ')' || ch == ']' || ch == '}') {
                if (!depth) fail_at(&p->c, *line, "unexpected '%c'", ch);
                if (stack[--depth] != (char)ch) fail_at(&p->c, *line, "unexpected '%c', expected '%c'", ch, stack[depth]);
            }
            i += t.n;
        }
        push_tok(p, t);
    }
}

static void lex(parser *p) {
    const char *s = p->src;
    size_t n = p->n, i = 0;
    int line = 1, line_starting = 1;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && !(s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#'))) j++;
        if (j + 1 >= n) { /* no more tags */
            push_data(p, i, n, 0, 0, 0, line);
            break;
        }
        char kind = s[j + 1];
        char sign = j + 2 < n && (s[j + 2] == '-' || s[j + 2] == '+') ? s[j + 2] : 0;
        size_t body = j + 2 + (sign != 0);
        /* {% raw %} */
        size_t r = skip_ws(s, n, body);
        int raw = 0;
        size_t raw_end = 0;
        if (kind == '%' && r + 3 <= n && !strncmp(s + r, "raw", 3)) {
            size_t q = skip_ws(s, n, r + 3);
            if (q + 2 <= n && !strncmp(s + q, "%}", 2)) raw = 1, raw_end = q + 2;
            else if (q + 3 <= n && !strncmp(s + q, "-%}", 3)) raw = 1, raw_end = skip_ws(s, n, q + 3);
        }
        push_data(p, i, j, sign, kind != '{', line_starting, line);
        line += lines_in(s, i, j);
        if (kind == '#') {
            size_t k = body;
            while (k + 1 < n && !(s[k] == '#' && s[k + 1] == '}')) k++;
            if (k + 1 >= n) fail_at(&p->c, line, "missing end of comment tag");
            char esign = k > body && (s[k - 1] == '-' || s[k - 1] == '+') ? s[k - 1] : 0;
            size_t e = k + 2;
            if (esign == '-') e = skip_ws(s, n, e);
            else if (!esign && e < n && s[e] == '\n') e++;
            line += lines_in(s, j, e);
            line_starting = s[e - 1] == '\n';
            i = e;
            continue;
        }
        if (raw) {
            /* up to {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?) */
            size_t k = raw_end, e = 0;
            char esign = 0;
            size_t tagpos = 0;
            for (; k + 1 < n; k++) {
                if (s[k] != '{' || s[k + 1] != '%') continue;
                size_t q = k + 2;
                char sg = q < n && (s[q] == '-' || s[q] == '+') ? s[q] : 0;
                q = skip_ws(s, n, q + (sg != 0));
                if (q + 6 > n || strncmp(s + q, "endraw", 6)) continue;
                q = skip_ws(s, n, q + 6);
                if (q + 3 <= n && !strncmp(s + q, "+%}", 3)) e = q + 3;
                else if (q + 3 <= n && !strncmp(s + q, "-%}", 3)) e = skip_ws(s, n, q + 3);
                else if (q + 2 <= n && !strncmp(s + q, "%}", 2)) e = q + 2 + (q + 2 < n && s[q + 2] == '\n');
                else continue;
                esign = sg;
                tagpos = k;
                break;
            }
            if (!e) fail_at(&p->c, line, "missing end of raw directive");
            line += lines_in(s, j, raw_end);
            push_data(p, raw_end, tagpos, esign, 1, s[raw_end - 1] == '\n', line);
            line += lines_in(s, raw_end, e);
            line_starting = s[e - 1] == '\n';
            i = e;
            continue;
        }
        token t = {kind == '{' ? TK_VBEGIN : TK_BBEGIN, line, NULL, 0, 0, 0};
        push_tok(p, t);
        i = lex_tag(p, body, kind == '%', &line, &line_starting);
    }
    token e = {TK_EOF, line, NULL, 0, 0, 0};
    push_tok(p, e);
}

/* ---- parser ----------------------------------------------------------------------- */

static const char *const filter_names[] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map",
    "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
    "string", "striptags", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount", NULL};
enum {
    F_ABS, F_ATTR, F_BATCH, F_CAPITALIZE, F_CENTER, F_COUNT, F_D, F_DEFAULT, F_DICTSORT, F_E, F_ESCAPE, F_FIRST,
    F_FLOAT, F_FORCEESCAPE, F_FORMAT, F_INDENT, F_INT, F_ITEMS, F_JOIN, F_LAST, F_LENGTH, F_LIST, F_LOWER, F_MAP,
    F_MAX, F_MIN, F_REJECT, F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR, F_SORT,
    F_STRING, F_STRIPTAGS, F_SUM, F_TITLE, F_TOJSON, F_TRIM, F_UNIQUE, F_UPPER, F_WORDCOUNT
};
static const char *const test_names[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even", "false", "filter",
    "float", "ge", ">=", "gt", "greaterthan", ">", "in", "integer", "iterable", "le", "<=", "lower", "lt",
    "lessthan", "<", "mapping", "ne", "!=", "none", "number", "odd", "sameas", "sequence", "string", "test",
    "true", "undefined", "upper", NULL};
enum {
    X_BOOLEAN, X_CALLABLE, X_DEFINED, X_DIVISIBLEBY, X_EQ, X_EQUALTO, X_EQ2, X_ESCAPED, X_EVEN, X_FALSE, X_FILTER,
    X_FLOAT, X_GE, X_GE2, X_GT, X_GREATERTHAN, X_GT2, X_IN, X_INTEGER, X_ITERABLE, X_LE, X_LE2, X_LOWER, X_LT,
    X_LESSTHAN, X_LT2, X_MAPPING, X_NE, X_NE2, X_NONE, X_NUMBER, X_ODD, X_SAMEAS, X_SEQUENCE, X_STRING, X_TEST,
    X_TRUE, X_UNDEFINED, X_UPPER
};

static int name_index(const char *const *names, const char *s, size_t n) {
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], s, n)) return i;
    return -1;
}

static token *cur(parser *p) { return &p->toks[p->pos]; }
static token *peek(parser *p, size_t k) { return &p->toks[p->pos + k < p->ntok ? p->pos + k : p->ntok - 1]; }
static token *adv(parser *p) {
    token *t = cur(p);
    if (t->t != TK_EOF) p->pos++;
    return t;
}
static int tok_is(const token *t, int type, const char *s) {
    return t->t == type && strlen(s) == t->n && !memcmp(t->s, s, t->n);
}
static int is_op(parser *p, const char *s) { return tok_is(cur(p), TK_OP, s); }
static int is_name(parser *p, const char *s) { return tok_is(cur(p), TK_NAME, s); }

static const char *describe(parser *p, const token *t) {
    switch (t->t) {
    case TK_DATA: return "template data";
    case TK_VBEGIN: return "begin of print statement";
    case TK_VEND: return "end of print statement";
    case TK_BBEGIN: return "begin of statement block";
    case TK_BEND: return "end of statement block";
    case TK_EOF: return "end of template";
    case TK_STR: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: return ax_arena_strndup(p->c.ar, t->s, t->n < 40 ? t->n : 40);
    }
}
#define perr(p, ...) fail_at(&(p)->c, cur(p)->line, __VA_ARGS__)

static void expect_op(parser *p, const char *s) {
    if (!is_op(p, s)) perr(p, "expected token '%s', got '%s'", s, describe(p, cur(p)));
    adv(p);
}
static void expect_type(parser *p, int type, const char *what) {
    if (cur(p)->t != type) perr(p, "expected token '%s', got '%s'", what, describe(p, cur(p)));
    adv(p);
}
static const char *expect_ident(parser *p) {
    if (cur(p)->t != TK_NAME) perr(p, "expected a name, got '%s'", describe(p, cur(p)));
    token *t = adv(p);
    return ax_arena_strndup(p->c.ar, t->s, t->n);
}

static node *mk_node(parser *p, int kind, int line) {
    node *x = alloc(&p->c, sizeof *x);
    x->kind = kind;
    x->line = line;
    return x;
}

typedef struct {
    node **v;
    int n, cap;
} nbuf;
static void nb_push(parser *p, nbuf *b, node *x) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        node **v = alloc(&p->c, sizeof(node *) * (size_t)cap);
        if (b->n) memcpy(v, b->v, sizeof(node *) * (size_t)b->n);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
}
typedef struct {
    const char **v;
    int n, cap;
} namebuf;
static void nmb_push(parser *p, namebuf *b, const char *s) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        const char **v = alloc(&p->c, sizeof(char *) * (size_t)cap);
        if (b->n) memcpy(v, b->v, sizeof(char *) * (size_t)b->n);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = s;
}

static node *parse_expr(parser *p, int with_cond);
static node *parse_tuple(parser *p, int with_cond, int explicit_parens);
static node *parse_unary(parser *p, int with_filter);

static void nest_in(parser *p) {
    if (++p->depth > MAX_NEST) perr(p, "the template is nested too deeply");
}

static node *parse_primary(parser *p) {
    token *t = cur(p);
    node *x;
    if (t->t == TK_NAME) {
        adv(p);
        if (tok_is(t, TK_NAME, "true") || tok_is(t, TK_NAME, "True") || tok_is(t, TK_NAME, "false") ||
            tok_is(t, TK_NAME, "False")) {
            x = mk_node(p, E_CONST, t->line);
            x->val = mk_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (tok_is(t, TK_NAME, "none") || tok_is(t, TK_NAME, "None")) {
            x = mk_node(p, E_CONST, t->line);
            x->val = mk_none();
        } else {
            x = mk_node(p, E_NAME, t->line);
            x->name = ax_arena_strndup(p->c.ar, t->s, t->n);
        }
        return x;
    }
    if (t->t == TK_STR) {
        sbuf b = {0};
        while (cur(p)->t == TK_STR) {
            token *s = adv(p);
            sb_put(&p->c, &b, s->s, s->n);
        }
        x = mk_node(p, E_CONST, t->line);
        x->val = sb_val(&p->c, &b);
        return x;
    }
    if (t->t == TK_INT || t->t == TK_FLOAT) {
        adv(p);
        x = mk_node(p, E_CONST, t->line);
        x->val = t->t == TK_INT ? mk_int(t->i) : mk_float(t->f);
        return x;
    }
    if (is_op(p, "(")) {
        adv(p);
        x = parse_tuple(p, 1, 1);
        expect_op(p, ")");
        return x;
    }
    if (is_op(p, "[") || is_op(p, "{")) {
        int dict = is_op(p, "{");
        adv(p);
        nbuf ks = {0}, vs = {0};
        while (!is_op(p, dict ? "}" : "]")) {
            if (ks.n) expect_op(p, ",");
            if (is_op(p, dict ? "}" : "]")) break;
            nb_push(p, &ks, parse_expr(p, 1));
            if (dict) {
                expect_op(p, ":");
                nb_push(p, &vs, parse_expr(p, 1));
            }
        }
        adv(p);
        x = mk_node(p, dict ? E_DICT : E_LIST, t->line);
        x->xs = ks.v, x->nx = ks.n, x->ys = vs.v, x->ny = vs.n;
        return x;
    }
    perr(p, "unexpected '%s'", describe(p, t));
    return NULL;
}

/* (args): positional, name=value, *args, **kwargs */
static void parse_call_args(parser *p, node *x) {
    expect_op(p, "(");
    nbuf args = {0}, kwv = {0};
    namebuf kwn = {0};
    while (!is_op(p, ")")) {
        if (args.n || kwv.n || x->dyn_args || x->dyn_kwargs) {
            expect_op(p, ",");
            if (is_op(p, ")")) break;
        }
        if (is_op(p, "*")) {
            adv(p);
            x->dyn_args = parse_expr(p, 1);
        } else if (is_op(p, "**")) {
            adv(p);
            x->dyn_kwargs = parse_expr(p, 1);
        } else if (cur(p)->t == TK_NAME && tok_is(peek(p, 1), TK_OP, "=")) {
            nmb_push(p, &kwn, expect_ident(p));
            adv(p);
            nb_push(p, &kwv, parse_expr(p, 1));
        } else {
            if (kwv.n || x->dyn_args || x->dyn_kwargs) perr(p, "invalid syntax for function call expression");
            nb_push(p, &args, parse_expr(p, 1));
        }
    }
    adv(p);
    x->xs = args.v, x->nx = args.n, x->ys = kwv.v, x->ny = kwv.n, x->names = kwn.v, x->nnames = kwn.n;
}

static node *parse_subscript_arg(parser *p) {
    int line = cur(p)->line;
    node *parts[3] = {NULL, NULL, NULL};
    if (!is_op(p, ":")) {
        node *e = parse_expr(p, 1);
        if (!is_op(p, ":")) return e;
        parts[0] = e;
    }
    adv(p); /* ':' */
    if (!is_op(p, "]") && !is_op(p, ",") && !is_op(p, ":")) parts[1] = parse_expr(p, 1);
    if (is_op(p, ":")) {
        adv(p);
        if (!is_op(p, "]") && !is_op(p, ",")) parts[2] = parse_expr(p, 1);
    }
    node *s = mk_node(p, E_SLICE, line);
    s->a = parts[0], s->b = parts[1], s->c = parts[2];
    return s;
}

static node *parse_postfix(parser *p, node *x) {
    for (;;) {
        int line = cur(p)->line;
        if (is_op(p, ".")) {
            adv(p);
            token *t = cur(p);
            if (t->t == TK_NAME) {
                node *a = mk_node(p, E_ATTR, line);
                a->obj = x;
                a->name = expect_ident(p);
                x = a;
            } else if (t->t == TK_INT) {
                adv(p);
                node *k = mk_node(p, E_CONST, line);
                k->val = mk_int(t->i);
                node *a = mk_node(p, E_ITEM, line);
                a->obj = x, a->a = k;
                x = a;
            } else {
                perr(p, "expected name or number, got '%s'", describe(p, t));
            }
        } else if (is_op(p, "[")) {
            adv(p);
            nbuf args = {0};
            while (!is_op(p, "]")) {
                if (args.n) {
                    expect_op(p, ",");
                    if (is_op(p, "]")) break;
                }
                nb_push(p, &args, parse_subscript_arg(p));
            }
            adv(p);
            if (!args.n) perr(p, "expected a subscript");
            node *k = args.v[0];
            if (args.n > 1) {
                for (int i = 0; i < args.n; i++) /* x[a:b, c]: slice objects are not values here */
                    if (args.v[i]->kind == E_SLICE) perr(p, "a slice inside a tuple subscript is not supported");
                k = mk_node(p, E_TUPLE, line);
                k->xs = args.v, k->nx = args.n;
            }
            node *a = mk_node(p, k->kind == E_SLICE ? E_SLICE : E_ITEM, line);
            if (k->kind == E_SLICE) *a = *k, a->kind = E_SLICE;
            else a->a = k;
            a->obj = x;
            x = a;
        } else if (is_op(p, "(")) {
            node *cl = mk_node(p, E_CALL, line);
            cl->obj = x;
            parse_call_args(p, cl);
            x = cl;
        } else {
            return x;
        }
    }
}

static node *parse_filter(parser *p, node *x) {
    int line = cur(p)->line;
    token *t = cur(p);
    const char *name = expect_ident(p);
    while (is_op(p, ".")) { /* dotted filter names: only the builtins exist */
        adv(p);
        name = ax_arena_printf(p->c.ar, "%s.%s", name, expect_ident(p));
    }
    int id = name_index(filter_names, name, strlen(name));
    if (id < 0) fail_at(&p->c, t->line, "no filter named '%s'", name);
    node *f = mk_node(p, E_FILTER, line);
    f->op = id;
    f->name = name;
    f->obj = x;
    if (is_op(p, "(")) parse_call_args(p, f);
    return f;
}

static node *parse_test(parser *p, node *x) {
    int line = cur(p)->line;
    adv(p); /* is */
    int neg = 0;
    if (is_name(p, "not")) adv(p), neg = 1;
    token *t = cur(p);
    const char *name = expect_ident(p);
    while (is_op(p, ".")) {
        adv(p);
        name = ax_arena_printf(p->c.ar, "%s.%s", name, expect_ident(p));
    }
    int id = name_index(test_names, name, strlen(name));
    if (id < 0) fail_at(&p->c, t->line, "no test named '%s'", name);
    node *f = mk_node(p, E_TEST, line);
    f->op = id;
    f->neg = neg;
    f->name = name;
    f->obj = x;
    token *c = cur(p);
    if (is_op(p, "(")) {
        parse_call_args(p, f);
    } else if ((c->t == TK_NAME || c->t == TK_STR || c->t == TK_INT || c->t == TK_FLOAT || is_op(p, "[") ||
                is_op(p, "{")) &&
               !is_name(p, "else") && !is_name(p, "or") && !is_name(p, "and")) {
        if (is_name(p, "is")) perr(p, "you cannot chain multiple tests with is");
        node *arg = parse_postfix(p, parse_primary(p));
        f->xs = alloc(&p->c, sizeof(node *));
        f->xs[0] = arg;
        f->nx = 1;
    }
    return f;
}

static node *parse_filter_expr(parser *p, node *x) {
    for (;;) {
        if (is_op(p, "|")) {
            adv(p);
            x = parse_filter(p, x);
        } else if (is_name(p, "is")) {
            x = parse_test(p, x);
        } else if (is_op(p, "(")) {
            node *cl = mk_node(p, E_CALL, cur(p)->line);
            cl->obj = x;
            parse_call_args(p, cl);
            x = cl;
        } else {
            return x;
        }
    }
}

static node *parse_unary(parser *p, int with_filter) {
    nest_in(p);
    int line = cur(p)->line;
    node *x;
    if (is_op(p, "-") || is_op(p, "+")) {
        int neg = is_op(p, "-");
        adv(p);
        x = mk_node(p, neg ? E_NEG : E_POS, line);
        x->a = parse_unary(p, 0);
    } else {
        x = parse_primary(p);
    }
    x = parse_postfix(p, x);
    if (with_filter) x = parse_filter_expr(p, x);
    p->depth--;
    return x;
}

static node *bin(parser *p, int op, node *a, node *b, int line) {
    node *x = mk_node(p, E_BIN, line);
    x->op = op, x->a = a, x->b = b;
    return x;
}

static node *parse_pow(parser *p) {
    node *x = parse_unary(p, 1);
    while (is_op(p, "**")) {
        int line = adv(p)->line;
        x = bin(p, OP_POW, x, parse_unary(p, 1), line);
    }
    return x;
}
static node *parse_math2(parser *p) {
    node *x = parse_pow(p);
    for (;;) {
        int op = is_op(p, "*") ? OP_MUL : is_op(p, "/") ? OP_DIV : is_op(p, "//") ? OP_FLOORDIV : is_op(p, "%") ? OP_MOD : -1;
        if (op < 0) return x;
        int line = adv(p)->line;
        x = bin(p, op, x, parse_pow(p), line);
    }
}
static node *parse_concat(parser *p) {
    node *x = parse_math2(p);
    if (!is_op(p, "~")) return x;
    nbuf parts = {0};
    nb_push(p, &parts, x);
    int line = cur(p)->line;
    while (is_op(p, "~")) {
        adv(p);
        nb_push(p, &parts, parse_math2(p));
    }
    node *c = mk_node(p, E_CONCAT, line);
    c->xs = parts.v, c->nx = parts.n;
    return c;
}
static node *parse_math1(parser *p) {
    node *x = parse_concat(p);
    for (;;) {
        int op = is_op(p, "+") ? OP_ADD : is_op(p, "-") ? OP_SUB : -1;
        if (op < 0) return x;
        int line = adv(p)->line;
        x = bin(p, op, x, parse_concat(p), line);
    }
}
static node *parse_compare(parser *p) {
    int line = cur(p)->line;
    node *x = parse_math1(p);
    nbuf rhs = {0};
    int ops[64], n = 0;
    for (;;) {
        int op = is_op(p, "==") ? OP_EQ : is_op(p, "!=") ? OP_NE : is_op(p, "<") ? OP_LT : is_op(p, "<=") ? OP_LE
               : is_op(p, ">") ? OP_GT : is_op(p, ">=") ? OP_GE : is_name(p, "in") ? OP_IN : -1;
        if (op < 0 && is_name(p, "not") && tok_is(peek(p, 1), TK_NAME, "in")) {
            adv(p);
            op = OP_NOTIN;
        }
        if (op < 0) break;
        adv(p);
        if (n == 64) perr(p, "too many chained comparisons");
        ops[n++] = op;
        nb_push(p, &rhs, parse_math1(p));
    }
    if (!n) return x;
    node *c = mk_node(p, E_CMP, line);
    c->a = x;
    c->xs = rhs.v, c->nx = rhs.n;
    c->ops = alloc(&p->c, sizeof(int) * (size_t)n);
    memcpy(c->ops, ops, sizeof(int) * (size_t)n);
    return c;
}
static node *parse_not(parser *p) {
    if (is_name(p, "not")) {
        int line = adv(p)->line;
        nest_in(p);
        node *x = mk_node(p, E_NOT, line);
        x->a = parse_not(p);
        p->depth--;
        return x;
    }
    return parse_compare(p);
}
static node *parse_and(parser *p) {
    node *x = parse_not(p);
    while (is_name(p, "and")) {
        int line = adv(p)->line;
        node *y = mk_node(p, E_AND, line);
        y->a = x, y->b = parse_not(p);
        x = y;
    }
    return x;
}
static node *parse_or(parser *p) {
    node *x = parse_and(p);
    while (is_name(p, "or")) {
        int line = adv(p)->line;
        node *y = mk_node(p, E_OR, line);
        y->a = x, y->b = parse_and(p);
        x = y;
    }
    return x;
}
static node *parse_expr(parser *p, int with_cond) {
    nest_in(p);
    node *x = parse_or(p);
    while (with_cond && is_name(p, "if")) {
        int line = adv(p)->line;
        node *y = mk_node(p, E_COND, line);
        y->a = parse_or(p); /* the condition */
        y->b = x;
        if (is_name(p, "else")) {
            adv(p);
            y->c = parse_expr(p, 1);
        }
        x = y;
    }
    p->depth--;
    return x;
}

/* a, b, c as a tuple (also without parentheses); one expression alone is itself */
static node *parse_tuple(parser *p, int with_cond, int explicit_parens) {
    int line = cur(p)->line;
    nbuf items = {0};
    int comma = 0;
    for (;;) {
        if (items.n) {
            if (!is_op(p, ",")) break;
            adv(p);
            comma = 1;
        }
        token *t = cur(p);
        if (t->t == TK_VEND || t->t == TK_BEND || t->t == TK_EOF || is_op(p, ")") || is_name(p, "recursive") ||
            (!with_cond && is_name(p, "if")) || is_op(p, "="))
            break;
        nb_push(p, &items, parse_expr(p, with_cond));
    }
    if (!items.n && !explicit_parens) perr(p, "expected an expression, got '%s'", describe(p, cur(p)));
    if (items.n == 1 && !comma) return items.v[0];
    node *x = mk_node(p, E_TUPLE, line);
    x->xs = items.v, x->nx = items.n;
    return x;
}

/* ---- statements ---- */

static node **parse_body(parser *p, const char *const *ends, int *n);

static void end_block(parser *p) { expect_type(p, TK_BEND, "end of statement block"); }

/* an assignment target: name, ns.attr (with_ns), or names separated by commas */
static node *parse_target(parser *p, int with_ns) {
    int line = cur(p)->line;
    nbuf items = {0};
    int paren = is_op(p, "(");
    if (paren) adv(p);
    for (;;) {
        if (items.n) {
            if (!is_op(p, ",")) break;
            adv(p);
            if (paren && is_op(p, ")")) break;
        }
        if (cur(p)->t != TK_NAME) perr(p, "expected a name to assign to, got '%s'", describe(p, cur(p)));
        node *t = mk_node(p, T_NAME, line);
        t->name = expect_ident(p);
        if (with_ns && is_op(p, ".")) {
            adv(p);
            t->kind = T_NSATTR;
            t->a = mk_node(p, E_NAME, line);
            t->a->name = t->name;
            t->name = expect_ident(p);
        }
        nb_push(p, &items, t);
        if (with_ns && t->kind == T_NSATTR) break;
    }
    if (paren) expect_op(p, ")");
    if (items.n == 1 && !paren) return items.v[0];
    node *x = mk_node(p, T_TUPLE, line);
    x->xs = items.v, x->nx = items.n;
    return x;
}

static void parse_params(parser *p, node *m) {
    namebuf names = {0};
    nbuf defs = {0};
    expect_op(p, "(");
    while (!is_op(p, ")")) {
        if (names.n) expect_op(p, ",");
        nmb_push(p, &names, expect_ident(p));
        node *d = NULL;
        if (is_op(p, "=")) {
            adv(p);
            d = parse_expr(p, 1);
        } else if (defs.n && defs.v[defs.n - 1]) {
            perr(p, "non-default argument follows default argument");
        }
        nb_push(p, &defs, d);
    }
    adv(p);
    m->names = names.v, m->nnames = names.n, m->ys = defs.v, m->ny = defs.n;
}

static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_FOR[] = {"else", "endfor", NULL};
static const char *const END_FOR2[] = {"endfor", NULL};

static node *parse_statement(parser *p) {
    token *t = cur(p);
    int line = t->line;
    if (t->t != TK_NAME) perr(p, "tag name expected, got '%s'", describe(p, t));
    const char *kw = ax_arena_strndup(p->c.ar, t->s, t->n);
    adv(p);
    node *x;
    if (!strcmp(kw, "if")) {
        x = mk_node(p, N_IF, line);
        node *cur_if = x;
        for (;;) {
            cur_if->a = parse_tuple(p, 1, 0);
            end_block(p);
            cur_if->xs = parse_body(p, END_IF, &cur_if->nx);
            if (is_name(p, "elif")) {
                adv(p);
                node *e = mk_node(p, N_IF, cur(p)->line);
                cur_if->ys = alloc(&p->c, sizeof(node *));
                cur_if->ys[0] = e;
                cur_if->ny = 1;
                cur_if = e;
                continue;
            }
            if (is_name(p, "else")) {
                adv(p);
                end_block(p);
                cur_if->ys = parse_body(p, END_IF + 2, &cur_if->ny);
            }
            adv(p); /* endif */
            end_block(p);
            return x;
        }
    }
    if (!strcmp(kw, "for")) {
        x = mk_node(p, N_FOR, line);
        x->obj = parse_target(p, 0);
        if (!is_name(p, "in")) perr(p, "expected 'in', got '%s'", describe(p, cur(p)));
        adv(p);
        x->a = parse_tuple(p, 0, 0);
        if (is_name(p, "if")) {
            adv(p);
            x->b = parse_expr(p, 1);
        }
        if (is_name(p, "recursive")) perr(p, "recursive for loops are not supported");
        end_block(p);
        p->loops++;
        x->xs = parse_body(p, END_FOR, &x->nx);
        p->loops--;
        if (is_name(p, "else")) {
            adv(p);
            end_block(p);
            x->ys = parse_body(p, END_FOR2, &x->ny);
        }
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "set")) {
        node *target = parse_target(p, 1);
        if (is_op(p, "=")) {
            adv(p);
            x = mk_node(p, N_SET, line);
            x->obj = target;
            x->a = parse_tuple(p, 1, 0);
            end_block(p);
            return x;
        }
        x = mk_node(p, N_SETBLOCK, line);
        x->obj = target;
        node *f = NULL;
        while (is_op(p, "|")) {
            adv(p);
            f = parse_filter(p, f);
        }
        x->a = f; /* filters applied to the body, innermost first; their obj chain ends in NULL */
        end_block(p);
        static const char *const ends[] = {"endset", NULL};
        x->xs = parse_body(p, ends, &x->nx);
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "macro")) {
        x = mk_node(p, N_MACRO, line);
        x->name = expect_ident(p);
        parse_params(p, x);
        end_block(p);
        static const char *const ends[] = {"endmacro", NULL};
        int loops = p->loops;
        p->loops = 0;
        x->xs = parse_body(p, ends, &x->nx);
        p->loops = loops;
        adv(p);
        if (cur(p)->t == TK_NAME) adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "call")) {
        x = mk_node(p, N_CALLBLOCK, line);
        if (is_op(p, "(")) parse_params(p, x);
        x->a = parse_expr(p, 1);
        if (x->a->kind != E_CALL) fail_at(&p->c, line, "expected a call after {%% call %%}");
        end_block(p);
        static const char *const ends[] = {"endcall", NULL};
        int loops = p->loops;
        p->loops = 0;
        x->xs = parse_body(p, ends, &x->nx);
        p->loops = loops;
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "filter")) {
        x = mk_node(p, N_FILTERBLOCK, line);
        node *f = parse_filter(p, NULL);
        while (is_op(p, "|")) {
            adv(p);
            f = parse_filter(p, f);
        }
        x->a = f;
        end_block(p);
        static const char *const ends[] = {"endfilter", NULL};
        x->xs = parse_body(p, ends, &x->nx);
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "with")) {
        x = mk_node(p, N_WITH, line);
        nbuf targets = {0}, vals = {0};
        while (!(cur(p)->t == TK_BEND)) {
            if (targets.n) expect_op(p, ",");
            nb_push(p, &targets, parse_target(p, 0));
            expect_op(p, "=");
            nb_push(p, &vals, parse_expr(p, 1));
        }
        end_block(p);
        x->obj = mk_node(p, T_TUPLE, line); /* the targets */
        x->obj->xs = targets.v, x->obj->nx = targets.n;
        x->ys = vals.v, x->ny = vals.n;
        static const char *const ends[] = {"endwith", NULL};
        x->xs = parse_body(p, ends, &x->nx);
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "generation")) { /* transformers' extension: renders its body */
        end_block(p);
        static const char *const ends[] = {"endgeneration", NULL};
        x = mk_node(p, N_IF, line);
        x->a = mk_node(p, E_CONST, line);
        x->a->val = mk_bool(1);
        x->xs = parse_body(p, ends, &x->nx);
        adv(p);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        if (!p->loops) fail_at(&p->c, line, "'%s' outside of a for loop", kw);
        x = mk_node(p, kw[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        end_block(p);
        return x;
    }
    if (!strcmp(kw, "extends") || !strcmp(kw, "block") || !strcmp(kw, "include") || !strcmp(kw, "import") ||
        !strcmp(kw, "from"))
        fail_at(&p->c, line, "'%s' is not supported in a chat template (there are no other templates to load)", kw);
    fail_at(&p->c, line, "encountered unknown tag '%s'", kw);
    return NULL;
}

/* nodes up to a {% NAME %} with NAME in ends (left at NAME), or to the end */
static node **parse_body(parser *p, const char *const *ends, int *n) {
    nbuf body = {0};
    nest_in(p);
    for (;;) {
        token *t = cur(p);
        if (t->t == TK_EOF) {
            if (ends) {
                sbuf b = {0};
                for (int i = 0; ends[i]; i++) sb_printf(&p->c, &b, "%s'%s'", i ? " or " : "", ends[i]);
                fail_at(&p->c, t->line, "unexpected end of template, expected %s", b.p);
            }
            break;
        }
        if (t->t == TK_DATA) {
            node *d = mk_node(p, N_DATA, t->line);
            d->val.k = V_STR;
            d->val.s = t->s, d->val.n = t->n;
            adv(p);
            nb_push(p, &body, d);
        } else if (t->t == TK_VBEGIN) {
            adv(p);
            node *o = mk_node(p, N_OUTPUT, t->line);
            o->a = parse_tuple(p, 1, 0);
            expect_type(p, TK_VEND, "end of print statement");
            nb_push(p, &body, o);
        } else if (t->t == TK_BBEGIN) {
            token *nm = peek(p, 1);
            int is_end = 0;
            for (int i = 0; ends && ends[i]; i++) is_end |= tok_is(nm, TK_NAME, ends[i]);
            if (is_end) {
                adv(p);
                break;
            }
            adv(p);
            nb_push(p, &body, parse_statement(p));
        } else {
            perr(p, "unexpected '%s'", describe(p, t));
        }
    }
    p->depth--;
    *n = body.n;
    return body.v;
}

jinja_tpl *jinja_parse(const char *src, size_t len, jinja_err *err) {
    memset(err, 0, sizeof *err);
    jinja_tpl *volatile t = calloc(1, sizeof *t);
    if (!t) abort();
    t->ar = ax_arena_create();
    parser p;
    memset(&p, 0, sizeof p);
    p.c.ar = t->ar;
    p.c.err = err;
    if (setjmp(p.c.jb)) {
        jinja_free(t);
        return NULL;
    }
    /* newlines normalized to \n; one trailing newline dropped (keep_trailing_newline=False) */
    char *s = alloc(&p.c, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    p.src = s;
    p.n = n;
    lex(&p);
    t->body = parse_body(&p, NULL, &t->nbody);
    return t;
}

void jinja_free(jinja_tpl *t) {
    if (!t) return;
    ax_arena_destroy(t->ar);
    free(t);
}

/* ---- the interpreter: scopes, truth, equality, order --------------------------------- */

struct frame {
    frame *up;
    size_t n, cap;
    const char **names;
    jv *vals;
};

typedef struct {
    ctx c;
    sbuf *out;
    frame *globals;
    long iters;
    int calls;
} R;

typedef struct {
    jv *pos;
    int npos;
    const char **kwn;
    jv *kwv;
    int nkw;
} args_t;

static frame *new_frame(R *r, frame *up) {
    frame *f = alloc(&r->c, sizeof *f);
    f->up = up;
    return f;
}
static int lookup(const frame *f, const char *name, jv *out) {
    for (; f; f = f->up)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->names[i], name)) {
                *out = f->vals[i];
                return 1;
            }
    return 0;
}
static void fset(R *r, frame *f, const char *name, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = alloc(&r->c, sizeof(char *) * cap);
        jv *nv = alloc(&r->c, sizeof(jv) * cap);
        if (f->n) memcpy(nn, f->names, sizeof(char *) * f->n), memcpy(nv, f->vals, sizeof(jv) * f->n);
        f->names = nn, f->vals = nv, f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

static void undef_fail(R *r, jv u) { fail(&r->c, "%s", u.s ? u.s : "the value is undefined"); }

static const char *obj_repr(R *r, jv v) {
    if (v.k == V_NONE) return "None";
    return ax_arena_printf(r->c.ar, "%s object", type_name(v));
}
static jv undef_attr(R *r, jv obj, const char *name) {
    return mk_undef(ax_arena_printf(r->c.ar, "'%s' has no attribute '%s'", obj_repr(r, obj), name));
}

static int truthy(jv v) {
    switch (v.k) {
    case V_UNDEF:
    case V_NONE:
    case V_MISSING: return 0;
    case V_BOOL:
    case V_INT: return v.i != 0;
    case V_FLOAT: return v.f != 0;
    case V_STR: return v.n > 0;
    case V_LIST:
    case V_TUPLE: return v.l->gen || v.l->n > 0;
    case V_DICT: return v.d->n > 0;
    default: return 1;
    }
}

static int is_num(jv v) { return v.k == V_BOOL || v.k == V_INT || v.k == V_FLOAT; }
static double num_f(jv v) { return v.k == V_FLOAT ? v.f : (double)v.i; }

static int py_eq(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.k != V_FLOAT && b.k != V_FLOAT) return a.i == b.i;
        return num_f(a) == num_f(b);
    }
    if (a.k != b.k) return 0;
    switch (a.k) {
    case V_UNDEF:
    case V_NONE: return 1;
    case V_STR: return a.n == b.n && !memcmp(a.s, b.s, a.n);
    case V_LIST:
    case V_TUPLE:
        if (a.l->gen || b.l->gen) return a.l == b.l;
        if (a.l->n != b.l->n) return 0;
        for (size_t i = 0; i < a.l->n; i++)
            if (!py_eq(a.l->v[i], b.l->v[i])) return 0;
        return 1;
    case V_DICT:
        if (a.d->n != b.d->n) return 0;
        for (size_t i = 0; i < a.d->n; i++) {
            size_t j = 0;
            while (j < b.d->n && !py_eq(a.d->k[i], b.d->k[j])) j++;
            if (j == b.d->n || !py_eq(a.d->v[i], b.d->v[j])) return 0;
        }
        return 1;
    default: return a.d == b.d;
    }
}

/* Python's <, ==, > for orderable pairs: -1, 0, 1; fails as Python's TypeError */
static int py_cmp(R *r, jv a, jv b, const char *op) {
    if (a.k == V_UNDEF) undef_fail(r, a);
    if (b.k == V_UNDEF) undef_fail(r, b);
    if (is_num(a) && is_num(b)) {
        if (a.k != V_FLOAT && b.k != V_FLOAT) return a.i < b.i ? -1 : a.i > b.i;
        double x = num_f(a), y = num_f(b);
        return x < y ? -1 : x > y;
    }
    if (a.k == V_STR && b.k == V_STR) {
        size_t m = a.n < b.n ? a.n : b.n;
        int c = memcmp(a.s, b.s, m);
        return c ? (c < 0 ? -1 : 1) : a.n < b.n ? -1 : a.n > b.n;
    }
    if ((a.k == V_LIST || a.k == V_TUPLE) && a.k == b.k && !a.l->gen && !b.l->gen) {
        size_t m = a.l->n < b.l->n ? a.l->n : b.l->n;
        for (size_t i = 0; i < m; i++)
            if (!py_eq(a.l->v[i], b.l->v[i])) return py_cmp(r, a.l->v[i], b.l->v[i], op);
        return a.l->n < b.l->n ? -1 : a.l->n > b.l->n;
    }
    fail(&r->c, "'%s' not supported between instances of '%s' and '%s'", op, type_name(a), type_name(b));
    return 0;
}

static size_t py_len(R *r, jv v) {
    switch (v.k) {
    case V_UNDEF: return 0;
    case V_STR: return u8_count(v.s, v.n);
    case V_LIST:
    case V_TUPLE:
        if (!v.l->gen) return v.l->n;
        break;
    case V_DICT: return v.d->n;
    default: break;
    }
    fail(&r->c, "object of type '%s' has no len()", type_name(v));
    return 0;
}

/* the items `for` sees */
static jlist *iter_items(R *r, jv v) {
    switch (v.k) {
    case V_UNDEF: return mk_jlist(&r->c, 0);
    case V_LIST:
    case V_TUPLE: return v.l;
    case V_DICT: {
        jlist *l = mk_jlist(&r->c, v.d->n);
        for (size_t i = 0; i < v.d->n; i++) l->v[i] = v.d->k[i];
        return l;
    }
    case V_STR: {
        size_t n = u8_count(v.s, v.n), at = 0;
        jlist *l = mk_jlist(&r->c, n);
        for (size_t i = 0; i < n; i++) {
            size_t k = u8_len((unsigned char)v.s[at]);
            if (at + k > v.n) k = v.n - at;
            l->v[i] = mk_strn(&r->c, v.s + at, k);
            at += k;
        }
        return l;
    }
    default: fail(&r->c, "'%s' object is not iterable", type_name(v)); return NULL;
    }
}

static int dict_find(const jdict *d, jv key, size_t *at) {
    for (size_t i = 0; i < d->n; i++)
        if (py_eq(d->k[i], key)) {
            *at = i;
            return 1;
        }
    return 0;
}
static void dict_put(R *r, jdict *d, jv key, jv val) {
    size_t at;
    if (dict_find(d, key, &at)) {
        d->v[at] = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *k = alloc(&r->c, sizeof(jv) * cap), *v = alloc(&r->c, sizeof(jv) * cap);
        if (d->n) memcpy(k, d->k, sizeof(jv) * d->n), memcpy(v, d->v, sizeof(jv) * d->n);
        d->k = k, d->v = v, d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
}
static jv dict_get_str(const jdict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].k == V_STR && d->k[i].n == n && !memcmp(d->k[i].s, key, n)) return d->v[i];
    return mk_missing();
}

static int contains(R *r, jv hay, jv x) {
    switch (hay.k) {
    case V_UNDEF: return 0;
    case V_STR:
        if (x.k != V_STR) fail(&r->c, "'in <string>' requires string as left operand, not %s", type_name(x));
        if (!x.n) return 1;
        for (size_t i = 0; i + x.n <= hay.n; i++)
            if (!memcmp(hay.s + i, x.s, x.n)) return 1;
        return 0;
    case V_LIST:
    case V_TUPLE:
        for (size_t i = 0; i < hay.l->n; i++)
            if (py_eq(hay.l->v[i], x)) return 1;
        return 0;
    case V_DICT: {
        size_t at;
        return dict_find(hay.d, x, &at);
    }
    default: fail(&r->c, "argument of type '%s' is not iterable", type_name(hay)); return 0;
    }
}

/* ---- arithmetic ------------------------------------------------------------------ */

static jv py_percent(R *r, jv fmt, jv args);

static int64_t ck(R *r, int overflow, int64_t v) {
    if (overflow) fail(&r->c, "integer overflow (axo's integers are 64-bit)");
    return v;
}

static jv repeat(R *r, jv seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.k == V_STR) {
        if (seq.n && (uint64_t)times > MAX_OUTPUT / seq.n) fail(&r->c, "the repeated string is too long");
        sbuf b = {0};
        for (int64_t i = 0; i < times; i++) sb_put(&r->c, &b, seq.s, seq.n);
        return sb_val(&r->c, &b);
    }
    if (seq.l->n && (uint64_t)times > (uint64_t)MAX_RANGE * 10 / seq.l->n) fail(&r->c, "the repeated list is too long");
    jlist *l = mk_jlist(&r->c, seq.l->n * (size_t)times);
    for (int64_t i = 0; i < times; i++) memcpy(l->v + (size_t)i * seq.l->n, seq.l->v, sizeof(jv) * seq.l->n);
    return mk_seq(seq.k, l);
}

static const char *op_sym[] = {"+", "-", "*", "/", "//", "%", "**"};

static jv arith(R *r, int op, jv a, jv b) {
    if (a.k == V_UNDEF) undef_fail(r, a);
    if (b.k == V_UNDEF) undef_fail(r, b);
    if (is_num(a) && is_num(b)) {
        int fl = a.k == V_FLOAT || b.k == V_FLOAT;
        int64_t x = a.i, y = b.i, z = 0;
        double p = num_f(a), q = num_f(b);
        switch (op) {
        case OP_ADD:
            if (fl) return mk_float(p + q);
            ck(r, __builtin_add_overflow(x, y, &z), 0);
            return mk_int(z);
        case OP_SUB:
            if (fl) return mk_float(p - q);
            ck(r, __builtin_sub_overflow(x, y, &z), 0);
            return mk_int(z);
        case OP_MUL:
            if (fl) return mk_float(p * q);
            ck(r, __builtin_mul_overflow(x, y, &z), 0);
            return mk_int(z);
        case OP_DIV:
            if (q == 0) fail(&r->c, "division by zero");
            return mk_float(p / q);
        case OP_FLOORDIV:
        case OP_MOD:
            if (q == 0) fail(&r->c, op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
            if (!fl) {
                if (x == INT64_MIN && y == -1) ck(r, 1, 0);
                int64_t d = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) d--, m += y;
                return mk_int(op == OP_MOD ? m : d);
            } else {
                double m = fmod(p, q), d = (p - m) / q, fd; /* CPython's float floordiv / mod */
                if (m) {
                    if ((q < 0) != (m < 0)) m += q, d -= 1.0;
                } else {
                    m = copysign(0.0, q);
                }
                if (d) {
                    fd = floor(d);
                    if (d - fd > 0.5) fd += 1.0;
                } else {
                    fd = copysign(0.0, p / q);
                }
                return mk_float(op == OP_MOD ? m : fd);
            }
        case OP_POW:
            if (!fl && y >= 0) {
                int64_t acc = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(acc, x, &acc)) ck(r, 1, 0);
                    if (acc == 0 || acc == 1) break;
                    if (acc == -1 && i + 1 < y) {
                        acc = (y - i - 1) % 2 ? 1 : -1;
                        break;
                    }
                }
                return mk_int(acc);
            }
            if (p == 0 && q < 0) fail(&r->c, "0.0 cannot be raised to a negative power");
            return mk_float(pow(p, q));
        default: break;
        }
    }
    if (op == OP_ADD && a.k == b.k && (a.k == V_STR || ((a.k == V_LIST || a.k == V_TUPLE) && !a.l->gen && !b.l->gen))) {
        if (a.k == V_STR) {
            sbuf s = {0};
            sb_put(&r->c, &s, a.s, a.n);
            sb_put(&r->c, &s, b.s, b.n);
            return sb_val(&r->c, &s);
        }
        jlist *l = mk_jlist(&r->c, a.l->n + b.l->n);
        memcpy(l->v, a.l->v, sizeof(jv) * a.l->n);
        memcpy(l->v + a.l->n, b.l->v, sizeof(jv) * b.l->n);
        return mk_seq(a.k, l);
    }
    if (op == OP_MUL) {
        if ((a.k == V_INT || a.k == V_BOOL) && (b.k == V_STR || b.k == V_LIST || b.k == V_TUPLE)) {
            jv t = a;
            a = b, b = t;
        }
        if ((b.k == V_INT || b.k == V_BOOL) && (a.k == V_STR || ((a.k == V_LIST || a.k == V_TUPLE) && !a.l->gen)))
            return repeat(r, a, b.i);
    }
    if (op == OP_MOD && a.k == V_STR) return py_percent(r, a, b);
    fail(&r->c, "unsupported operand type(s) for %s: '%s' and '%s'", op_sym[op], type_name(a), type_name(b));
    return a;
}

/* ---- attributes, items, slices ---------------------------------------------------------- */

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "replace", "upper", "lower", "title",
    "capitalize", "swapcase", "casefold", "find", "rfind", "index", "rindex", "count", "splitlines", "join",
    "format", "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "isupper", "islower",
    "removeprefix", "removesuffix", "partition", "rpartition", "zfill", "center", "ljust", "rjust", NULL};
static const char *const dict_methods[] = {"items", "keys", "values", "get", "copy", NULL};
static const char *const seq_methods[] = {"index", "count", NULL};
static const char *const list_methods[] = {"index", "count", "copy", NULL};
/* what the immutable sandbox refuses */
static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const list_unsafe[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL};

static int in_names(const char *const *names, const char *s) { return name_index(names, s, strlen(s)) >= 0; }

static jv bound(R *r, jv self, const char *name) {
    jfunc *fn = alloc(&r->c, sizeof *fn);
    fn->name = name;
    fn->self = self;
    jv v = {V_FUNC, 0, {.fn = fn}};
    return v;
}

static jv loop_attr(R *r, jv lv, const char *name) {
    jloop *lp = lv.lp;
    int64_t i = lp->i, n = (int64_t)lp->st->items->n;
    if (!strcmp(name, "index")) return mk_int(i + 1);
    if (!strcmp(name, "index0")) return mk_int(i);
    if (!strcmp(name, "revindex")) return mk_int(n - i);
    if (!strcmp(name, "revindex0")) return mk_int(n - i - 1);
    if (!strcmp(name, "first")) return mk_bool(i == 0);
    if (!strcmp(name, "last")) return mk_bool(i == n - 1);
    if (!strcmp(name, "length")) return mk_int(n);
    if (!strcmp(name, "depth")) return mk_int(1);
    if (!strcmp(name, "depth0")) return mk_int(0);
    if (!strcmp(name, "previtem")) return i > 0 ? lp->st->items->v[i - 1] : mk_undef("there is no previous item");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? lp->st->items->v[i + 1] : mk_undef("there is no next item");
    if (!strcmp(name, "cycle") || !strcmp(name, "changed")) return bound(r, lv, name);
    return undef_attr(r, lv, name);
}

/* obj.name: a method of obj's type, else its item (jinja2's getattr, then getitem) */
static jv get_attr(R *r, jv obj, const char *name) {
    switch (obj.k) {
    case V_UNDEF: undef_fail(r, obj); break;
    case V_DICT: {
        if (in_names(dict_methods, name)) return bound(r, obj, name);
        if (in_names(dict_unsafe, name))
            return mk_undef(ax_arena_printf(r->c.ar, "access to attribute '%s' of 'dict' object is unsafe.", name));
        jv v = dict_get_str(obj.d, name);
        return v.k == V_MISSING ? undef_attr(r, obj, name) : v;
    }
    case V_NS: {
        jv v = dict_get_str(obj.d, name);
        return v.k == V_MISSING ? undef_attr(r, obj, name) : v;
    }
    case V_STR:
        if (in_names(str_methods, name)) return bound(r, obj, name);
        break;
    case V_LIST:
    case V_TUPLE:
        if (obj.l->gen) break;
        if (in_names(obj.k == V_LIST ? list_methods : seq_methods, name)) return bound(r, obj, name);
        if (obj.k == V_LIST && in_names(list_unsafe, name))
            return mk_undef(ax_arena_printf(r->c.ar, "access to attribute '%s' of 'list' object is unsafe.", name));
        break;
    case V_LOOP: return loop_attr(r, obj, name);
    default: break;
    }
    return undef_attr(r, obj, name);
}

static int as_index(jv k, int64_t *i) {
    if (k.k != V_INT && k.k != V_BOOL) return 0;
    *i = k.i;
    return 1;
}

/* obj[key]: the item, else (for a string key) the attribute, else undefined */
static jv get_item(R *r, jv obj, jv key) {
    int64_t i;
    switch (obj.k) {
    case V_UNDEF: undef_fail(r, obj); break;
    case V_DICT: {
        size_t at;
        if (dict_find(obj.d, key, &at)) return obj.d->v[at];
        break;
    }
    case V_LIST:
    case V_TUPLE:
        if (!obj.l->gen && as_index(key, &i)) {
            int64_t n = (int64_t)obj.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj.l->v[i];
            return mk_undef(ax_arena_printf(r->c.ar, "'%s' has no element %lld", obj_repr(r, obj), (long long)key.i));
        }
        break;
    case V_STR:
        if (as_index(key, &i)) {
            int64_t n = (int64_t)u8_count(obj.s, obj.n);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t a = u8_off(obj.s, obj.n, (size_t)i), b = u8_off(obj.s, obj.n, (size_t)i + 1);
                return mk_strn(&r->c, obj.s + a, b - a);
            }
            return mk_undef(ax_arena_printf(r->c.ar, "'str object' has no element %lld", (long long)key.i));
        }
        break;
    default: break;
    }
    if (key.k == V_STR) return get_attr(r, obj, key.s);
    sbuf b = {0};
    to_repr(&r->c, &b, key);
    return mk_undef(ax_arena_printf(r->c.ar, "'%s' has no element %s", obj_repr(r, obj), b.p ? b.p : ""));
}

/* Python's slice.indices */
static void slice_idx(R *r, jv a, jv b, jv c, int64_t n, int64_t *start, int64_t *stop, int64_t *step) {
    int64_t st = 1;
    if (c.k != V_NONE && c.k != V_UNDEF && c.k != V_MISSING) {
        if (!as_index(c, &st)) fail(&r->c, "slice indices must be integers or None");
        if (st == 0) fail(&r->c, "slice step cannot be zero");
    }
    int64_t lo = st < 0 ? -1 : 0, hi = st < 0 ? n - 1 : n, x;
    jv e[2] = {a, b};
    int64_t out[2] = {st < 0 ? hi : lo, st < 0 ? lo : hi};
    for (int k = 0; k < 2; k++) {
        if (e[k].k == V_NONE || e[k].k == V_UNDEF || e[k].k == V_MISSING) continue;
        if (!as_index(e[k], &x)) fail(&r->c, "slice indices must be integers or None");
        if (x < 0) {
            x += n;
            if (x < lo) x = lo;
        } else if (x > hi) {
            x = hi;
        }
        out[k] = x;
    }
    *start = out[0], *stop = out[1], *step = st;
}

static jv get_slice(R *r, jv obj, jv a, jv b, jv c) {
    int64_t st, sp, step;
    if (obj.k == V_UNDEF) undef_fail(r, obj);
    if (obj.k == V_STR) {
        int64_t n = (int64_t)u8_count(obj.s, obj.n);
        slice_idx(r, a, b, c, n, &st, &sp, &step);
        sbuf s = {0};
        if (step == 1 && st < sp) {
            size_t x = u8_off(obj.s, obj.n, (size_t)st), y = u8_off(obj.s, obj.n, (size_t)sp);
            return mk_strn(&r->c, obj.s + x, y - x);
        }
        for (int64_t i = st; step > 0 ? i < sp : i > sp; i += step) {
            size_t x = u8_off(obj.s, obj.n, (size_t)i), y = u8_off(obj.s, obj.n, (size_t)i + 1);
            sb_put(&r->c, &s, obj.s + x, y - x);
        }
        return sb_val(&r->c, &s);
    }
    if ((obj.k == V_LIST || obj.k == V_TUPLE) && !obj.l->gen) {
        slice_idx(r, a, b, c, (int64_t)obj.l->n, &st, &sp, &step);
        vbuf out = {0};
        for (int64_t i = st; step > 0 ? i < sp : i > sp; i += step) vb_push(&r->c, &out, obj.l->v[i]);
        return vb_list(&r->c, &out, obj.k, 0);
    }
    return mk_undef(ax_arena_printf(r->c.ar, "'%s' cannot be sliced", obj_repr(r, obj)));
}

/* ---- strings --------------------------------------------------------------------------- */

static jv case_map(R *r, jv s, int mode) { /* 0 lower, 1 upper, 2 swapcase */
    sbuf b = {0};
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
        int32_t m = mode == 0 ? utf8proc_tolower(cp) : mode == 1 ? utf8proc_toupper(cp)
                  : is_cased_upper(cp) ? utf8proc_tolower(cp) : utf8proc_toupper(cp);
        if (cp == 0xDF && mode == 1) sb_puts(&r->c, &b, "SS");
        else if (m == cp) sb_put(&r->c, &b, s.s + i, adv);
        else u8_enc(&r->c, &b, m);
        i += adv;
    }
    return sb_val(&r->c, &b);
}

/* str.title() (titlecase after uncased characters) */
static jv py_title(R *r, jv s) {
    sbuf b = {0};
    int prev_cased = 0;
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
        int32_t m = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
        u8_enc(&r->c, &b, m);
        prev_cased = is_cased(cp);
        i += adv;
    }
    return sb_val(&r->c, &b);
}

static jv py_capitalize(R *r, jv s) {
    sbuf b = {0};
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
        u8_enc(&r->c, &b, i == 0 ? utf8proc_totitle(cp) : utf8proc_tolower(cp));
        i += adv;
    }
    return sb_val(&r->c, &b);
}

static int in_chars(int32_t cp, jv chars) {
    if (chars.k != V_STR) return py_isspace(cp);
    for (size_t i = 0; i < chars.n;) {
        size_t adv;
        if (u8_dec(chars.s + i, chars.n - i, &adv) == cp) return 1;
        i += adv;
    }
    return 0;
}

static jv py_strip(R *r, jv s, jv chars, int left, int right) {
    if (chars.k != V_STR && chars.k != V_NONE && chars.k != V_MISSING)
        fail(&r->c, "strip arg must be None or str");
    size_t a = 0, b = s.n;
    while (left && a < b) {
        size_t adv;
        if (!in_chars(u8_dec(s.s + a, b - a, &adv), chars)) break;
        a += adv;
    }
    while (right && b > a) {
        size_t st = b - 1;
        while (st > a && ((unsigned char)s.s[st] & 0xC0) == 0x80) st--;
        size_t adv;
        if (!in_chars(u8_dec(s.s + st, b - st, &adv), chars)) break;
        b = st;
    }
    return a == 0 && b == s.n ? s : mk_strn(&r->c, s.s + a, b - a);
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (!nn) return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}
static const char *rfind_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (!memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

static jv py_split(R *r, jv s, jv sep, int64_t maxsplit, int from_right) {
    vbuf out = {0};
    if (sep.k == V_STR) {
        if (!sep.n) fail(&r->c, "empty separator");
        if (!from_right) {
            size_t at = 0;
            for (int64_t k = 0; maxsplit < 0 || k < maxsplit; k++) {
                const char *hit = find_bytes(s.s + at, s.n - at, sep.s, sep.n);
                if (!hit) break;
                vb_push(&r->c, &out, mk_strn(&r->c, s.s + at, (size_t)(hit - s.s) - at));
                at = (size_t)(hit - s.s) + sep.n;
            }
            vb_push(&r->c, &out, mk_strn(&r->c, s.s + at, s.n - at));
        } else {
            size_t end = s.n;
            for (int64_t k = 0; maxsplit < 0 || k < maxsplit; k++) {
                const char *hit = rfind_bytes(s.s, end, sep.s, sep.n);
                if (!hit) break;
                size_t h = (size_t)(hit - s.s);
                vb_push(&r->c, &out, mk_strn(&r->c, s.s + h + sep.n, end - h - sep.n));
                end = h;
            }
            vb_push(&r->c, &out, mk_strn(&r->c, s.s, end));
            for (size_t i = 0; i < out.n / 2; i++) {
                jv t = out.v[i];
                out.v[i] = out.v[out.n - 1 - i];
                out.v[out.n - 1 - i] = t;
            }
        }
        return vb_list(&r->c, &out, V_LIST, 0);
    }
    if (sep.k != V_NONE && sep.k != V_MISSING) fail(&r->c, "must be str or None, not %s", type_name(sep));
    /* runs of whitespace; nothing empty */
    size_t i = 0;
    int64_t k = 0;
    if (!from_right) {
        while (i < s.n) {
            size_t w;
            while ((w = ws_at(s.s, s.n, i))) i += w;
            if (i >= s.n) break;
            if (maxsplit >= 0 && k >= maxsplit) {
                size_t e = rstrip_end(s.s, i, s.n);
                vb_push(&r->c, &out, mk_strn(&r->c, s.s + i, e - i));
                break;
            }
            size_t j = i;
            while (j < s.n && !ws_at(s.s, s.n, j)) j += u8_len((unsigned char)s.s[j]);
            if (j > s.n) j = s.n;
            vb_push(&r->c, &out, mk_strn(&r->c, s.s + i, j - i));
            k++;
            i = j;
        }
        return vb_list(&r->c, &out, V_LIST, 0);
    }
    /* rsplit(None, maxsplit): from the right */
    jv all = py_split(r, s, mk_none(), -1, 0);
    if (maxsplit < 0 || (int64_t)all.l->n <= maxsplit + 1) return all;
    /* the first n - maxsplit words joined back as they were */
    size_t keep = all.l->n - (size_t)maxsplit;
    jv lastw = all.l->v[keep - 1];
    size_t head_end = (size_t)(lastw.s - s.s) + lastw.n, a = 0, w;
    while ((w = ws_at(s.s, s.n, a))) a += w;
    vb_push(&r->c, &out, mk_strn(&r->c, s.s + a, head_end - a));
    for (size_t q = keep; q < all.l->n; q++) vb_push(&r->c, &out, all.l->v[q]);
    return vb_list(&r->c, &out, V_LIST, 0);
}

static int is_line_break(const char *s, size_t n, size_t i, size_t *len) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') {
        *len = i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
        return 1;
    }
    if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e)) {
        *len = 1;
        return 1;
    }
    size_t adv;
    int32_t cp = u8_dec(s + i, n - i, &adv);
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
        *len = adv;
        return 1;
    }
    return 0;
}

static jv py_splitlines(R *r, jv s, int keepends) {
    vbuf out = {0};
    size_t start = 0, i = 0;
    while (i < s.n) {
        size_t len;
        if (is_line_break(s.s, s.n, i, &len)) {
            vb_push(&r->c, &out, mk_strn(&r->c, s.s + start, i - start + (keepends ? len : 0)));
            i += len;
            start = i;
        } else {
            i++;
        }
    }
    if (start < s.n) vb_push(&r->c, &out, mk_strn(&r->c, s.s + start, s.n - start));
    return vb_list(&r->c, &out, V_LIST, 0);
}

static jv py_replace(R *r, jv s, jv old, jv new_, int64_t count) {
    if (old.k != V_STR || new_.k != V_STR) fail(&r->c, "replace() arguments must be str");
    sbuf b = {0};
    if (!old.n) { /* between every character */
        size_t i = 0;
        int64_t k = 0;
        for (;;) {
            if (count < 0 || k < count) sb_put(&r->c, &b, new_.s, new_.n), k++;
            if (i >= s.n) break;
            size_t l = u8_len((unsigned char)s.s[i]);
            sb_put(&r->c, &b, s.s + i, l);
            i += l;
        }
        return sb_val(&r->c, &b);
    }
    size_t at = 0;
    for (int64_t k = 0; count < 0 || k < count; k++) {
        const char *hit = find_bytes(s.s + at, s.n - at, old.s, old.n);
        if (!hit) break;
        sb_put(&r->c, &b, s.s + at, (size_t)(hit - s.s) - at);
        sb_put(&r->c, &b, new_.s, new_.n);
        at = (size_t)(hit - s.s) + old.n;
        if (b.n > MAX_OUTPUT) fail(&r->c, "the replaced string is too long");
    }
    sb_put(&r->c, &b, s.s + at, s.n - at);
    return sb_val(&r->c, &b);
}

static int64_t py_count_sub(jv s, jv sub) {
    if (!sub.n) return (int64_t)u8_count(s.s, s.n) + 1;
    int64_t k = 0;
    for (size_t at = 0;;) {
        const char *hit = find_bytes(s.s + at, s.n - at, sub.s, sub.n);
        if (!hit) return k;
        k++;
        at = (size_t)(hit - s.s) + sub.n;
    }
}

static jv html_escape(R *r, jv s) {
    sbuf b = {0};
    for (size_t i = 0; i < s.n; i++) {
        switch (s.s[i]) {
        case '&': sb_puts(&r->c, &b, "&amp;"); break;
        case '<': sb_puts(&r->c, &b, "&lt;"); break;
        case '>': sb_puts(&r->c, &b, "&gt;"); break;
        case '"': sb_puts(&r->c, &b, "&#34;"); break;
        case '\'': sb_puts(&r->c, &b, "&#39;"); break;
        default: sb_ch(&r->c, &b, s.s[i]);
        }
    }
    return sb_val(&r->c, &b);
}

static int str_pred(jv s, int which) { /* isdigit, isalpha, isalnum, isspace, isupper, islower */
    if (!s.n) return 0;
    int cased = 0;
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
        i += adv;
        switch (which) {
        case 0: if (!is_digit(cp)) return 0; break;
        case 1: if (!is_alpha(cp)) return 0; break;
        case 2: if (!is_alpha(cp) && !is_digit(cp)) return 0; break;
        case 3: if (!py_isspace(cp)) return 0; break;
        case 4:
            if (utf8proc_category(cp) == UTF8PROC_CATEGORY_LL || utf8proc_category(cp) == UTF8PROC_CATEGORY_LT) return 0;
            cased |= is_cased(cp);
            break;
        default:
            if (is_cased_upper(cp)) return 0;
            cased |= is_cased(cp);
        }
    }
    return which < 4 || cased;
}

static jv pad_str(R *r, jv s, int64_t width, jv fill, int where) { /* 0 center, 1 ljust, 2 rjust */
    int64_t n = (int64_t)u8_count(s.s, s.n);
    if (width <= n) return s;
    const char *f = " ";
    size_t fl = 1;
    if (fill.k == V_STR) {
        if (u8_count(fill.s, fill.n) != 1) fail(&r->c, "The fill character must be exactly one character long");
        f = fill.s, fl = fill.n;
    }
    int64_t marg = width - n, left = where == 0 ? marg / 2 + (marg & width & 1) : where == 1 ? 0 : marg;
    if (width > (int64_t)MAX_OUTPUT) fail(&r->c, "the padded string is too long");
    sbuf b = {0};
    for (int64_t i = 0; i < left; i++) sb_put(&r->c, &b, f, fl);
    sb_put(&r->c, &b, s.s, s.n);
    for (int64_t i = 0; i < marg - left; i++) sb_put(&r->c, &b, f, fl);
    return sb_val(&r->c, &b);
}

/* ---- calls: binding arguments ---------------------------------------------------------- */

/* args -> out[np] by Python's rules; absent ones are V_MISSING */
static void bind(R *r, const char *fname, const char *const *params, int np, const args_t *a, jv *out) {
    for (int i = 0; i < np; i++) out[i] = mk_missing();
    if (a->npos > np) fail(&r->c, "%s() takes at most %d argument%s (%d given)", fname, np, np == 1 ? "" : "s", a->npos);
    for (int i = 0; i < a->npos; i++) out[i] = a->pos[i];
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(params[i], a->kwn[k])) i++;
        if (i == np) fail(&r->c, "%s() got an unexpected keyword argument '%s'", fname, a->kwn[k]);
        if (out[i].k != V_MISSING) fail(&r->c, "%s() got multiple values for argument '%s'", fname, a->kwn[k]);
        out[i] = a->kwv[k];
    }
}
static jv or_default(jv v, jv d) { return v.k == V_MISSING ? d : v; }
static int64_t int_arg(R *r, jv v, int64_t d, const char *what) {
    if (v.k == V_MISSING) return d;
    if (v.k != V_INT && v.k != V_BOOL) fail(&r->c, "%s: an integer is required, not '%s'", what, type_name(v));
    return v.i;
}
static jv str_arg(R *r, jv v, const char *what) {
    if (v.k != V_STR) fail(&r->c, "%s: a string is required, not '%s'", what, type_name(v));
    return v;
}

static jv call_value(R *r, jv fn, const args_t *a);

/* "{} {0} {name}".format(...) with no format specs */
static jv py_format(R *r, jv s, const args_t *a) {
    sbuf b = {0};
    int auto_i = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.s[i];
        if (ch == '}' ) {
            if (i + 1 < s.n && s.s[i + 1] == '}') i++;
            else fail(&r->c, "Single '}' encountered in format string");
            sb_ch(&r->c, &b, '}');
            continue;
        }
        if (ch != '{') {
            sb_ch(&r->c, &b, ch);
            continue;
        }
        if (i + 1 < s.n && s.s[i + 1] == '{') {
            sb_ch(&r->c, &b, '{');
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < s.n && s.s[j] != '}' && s.s[j] != ':' && s.s[j] != '!') j++;
        if (j >= s.n || s.s[j] != '}') fail(&r->c, "format(): conversions and format specs are not supported");
        const char *f = s.s + i + 1;
        size_t fl = j - i - 1;
        jv v = mk_missing();
        if (!fl) {
            if (auto_i >= a->npos) fail(&r->c, "Replacement index %d out of range for positional args tuple", auto_i);
            v = a->pos[auto_i++];
        } else if (f[0] >= '0' && f[0] <= '9') {
            int idx = atoi(f);
            if (idx >= a->npos) fail(&r->c, "Replacement index %d out of range for positional args tuple", idx);
            v = a->pos[idx];
        } else {
            for (int k = 0; k < a->nkw; k++)
                if (strlen(a->kwn[k]) == fl && !memcmp(a->kwn[k], f, fl)) v = a->kwv[k];
            if (v.k == V_MISSING) fail(&r->c, "format(): no argument named '%.*s'", (int)fl, f);
        }
        to_str(&r->c, &b, v);
        i = j;
    }
    return sb_val(&r->c, &b);
}

/* str % args: %s %r %d %i %f %x %o %e %g %c %% with flags, width, precision */
static jv py_percent(R *r, jv fmt, jv args) {
    sbuf b = {0};
    jlist one = {1, 0, &args};
    const jlist *av = args.k == V_TUPLE ? args.l : &one;
    size_t ai = 0;
    for (size_t i = 0; i < fmt.n; i++) {
        if (fmt.s[i] != '%') {
            sb_ch(&r->c, &b, fmt.s[i]);
            continue;
        }
        if (++i >= fmt.n) fail(&r->c, "incomplete format");
        jv v = mk_missing();
        if (fmt.s[i] == '(') {
            size_t j = i + 1;
            while (j < fmt.n && fmt.s[j] != ')') j++;
            if (args.k != V_DICT || j >= fmt.n) fail(&r->c, "format requires a mapping");
            jv key = mk_strn(&r->c, fmt.s + i + 1, j - i - 1);
            size_t at;
            if (!dict_find(args.d, key, &at)) fail(&r->c, "KeyError: %s", key.s);
            v = args.d->v[at];
            i = j + 1;
        }
        /* flags (each once), width, .precision: rebuilt as a C spec; widths and precisions
         * are bounded so that every conversion fits `out` (and no printf sees a width past INT_MAX) */
        char spec[32], flags[6] = "";
        size_t nf = 0;
        while (i < fmt.n && fmt.s[i] && strchr("-+ 0#", fmt.s[i])) {
            if (!strchr(flags, fmt.s[i])) flags[nf++] = fmt.s[i];
            i++;
        }
        long width = -1, prec = -1;
        for (; i < fmt.n && fmt.s[i] >= '0' && fmt.s[i] <= '9'; i++)
            if ((width = (width < 0 ? 0 : width) * 10 + (fmt.s[i] - '0')) > 256)
                fail(&r->c, "format width above 256 is not supported");
        if (i < fmt.n && fmt.s[i] == '.')
            for (prec = 0, i++; i < fmt.n && fmt.s[i] >= '0' && fmt.s[i] <= '9'; i++)
                if ((prec = prec * 10 + (fmt.s[i] - '0')) > 100) fail(&r->c, "format precision above 100 is not supported");
        if (i >= fmt.n) fail(&r->c, "incomplete format");
        size_t sn = (size_t)snprintf(spec, sizeof spec, "%%%s", flags);
        if (width >= 0) sn += (size_t)snprintf(spec + sn, sizeof spec - sn, "%ld", width);
        if (prec >= 0) sn += (size_t)snprintf(spec + sn, sizeof spec - sn, ".%ld", prec);
        char conv = fmt.s[i];
        if (conv == '%') {
            sb_ch(&r->c, &b, '%');
            continue;
        }
        if (v.k == V_MISSING) {
            if (ai >= av->n) fail(&r->c, "not enough arguments for format string");
            v = av->v[ai++];
        }
        char out[512];
        switch (conv) {
        case 's':
        case 'r': {
            sbuf t = {0};
            if (conv == 's') to_str(&r->c, &t, v);
            else to_repr(&r->c, &t, v);
            spec[sn++] = 's';
            spec[sn] = 0;
            if (sn == 2) sb_put(&r->c, &b, t.p ? t.p : "", t.n);
            else {
                ax_buf tmp = {0};
                ax_buf_printf(&tmp, spec, t.p ? t.p : "");
                sb_put(&r->c, &b, tmp.data ? (const char *)tmp.data : "", tmp.len);
                ax_buf_free(&tmp);
            }
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o':
        case 'c':
        {
            if (conv == 'c' && v.k == V_STR) { /* a one-character string */
                if (u8_count(v.s, v.n) != 1) fail(&r->c, "%%c requires int or char");
                sb_put(&r->c, &b, v.s, v.n);
                break;
            }
            if (!is_num(v)) fail(&r->c, "%%%c format: a real number is required, not %s", conv, type_name(v));
            if (v.k == V_FLOAT && conv == 'c') fail(&r->c, "%%c requires int or char");
            if (v.k == V_FLOAT && conv != 'd' && conv != 'i')
                fail(&r->c, "%%%c format: an integer is required, not float", conv);
            /* int(x) of a float; Python's ints have no bound, these have int64's */
            if (v.k == V_FLOAT && !(v.f > -9223372036854775808.0 && v.f < 9223372036854775808.0))
                fail(&r->c, "%%%c format: %g is outside the 64-bit integer range", conv, v.f);
            int64_t iv = v.k == V_FLOAT ? (int64_t)v.f : v.i;
            if (conv == 'c') {
                if (iv < 0 || iv > 0x10FFFF) fail(&r->c, "%%c arg not in range(0x110000)");
                u8_enc(&r->c, &b, (int32_t)iv);
                break;
            }
            spec[sn++] = 'l', spec[sn++] = 'l', spec[sn++] = conv == 'i' ? 'd' : conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, (long long)iv);
            sb_puts(&r->c, &b, out);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (!is_num(v)) fail(&r->c, "must be real number, not %s", type_name(v));
            spec[sn++] = conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, num_f(v));
            sb_puts(&r->c, &b, out);
            break;
        default: fail(&r->c, "unsupported format character '%c'", conv);
        }
    }
    if (ai < av->n && args.k != V_DICT && !(args.k != V_TUPLE && ai == 0))
        fail(&r->c, "not all arguments converted during string formatting");
    return sb_val(&r->c, &b);
}

static jv call_method(R *r, jv self, const char *name, const args_t *a) {
    jv x[4];
    if (self.k == V_STR) {
        static const char *const p_strip[] = {"chars"}, *const p_split[] = {"sep", "maxsplit"},
                                 *const p_sw[] = {"prefix", "start", "end"}, *const p_rep[] = {"old", "new", "count"},
                                 *const p_find[] = {"sub", "start", "end"}, *const p_keep[] = {"keepends"},
                                 *const p_it[] = {"iterable"}, *const p_w[] = {"width", "fillchar"};
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
            bind(r, name, p_strip, 1, a, x);
            return py_strip(r, self, x[0], name[0] != 'r', name[0] != 'l');
        }
        if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
            bind(r, name, p_split, 2, a, x);
            return py_split(r, self, x[0], int_arg(r, x[1], -1, "maxsplit"), name[0] == 'r');
        }
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            bind(r, name, p_sw, 3, a, x);
            jlist one = {1, 0, &x[0]};
            const jlist *cands = x[0].k == V_TUPLE ? x[0].l : &one;
            for (size_t i = 0; i < cands->n; i++) {
                jv c = str_arg(r, cands->v[i], name);
                if (c.n <= self.n && !memcmp(name[0] == 's' ? self.s : self.s + self.n - c.n, c.s, c.n)) return mk_bool(1);
            }
            return mk_bool(0);
        }
        if (!strcmp(name, "replace")) {
            bind(r, name, p_rep, 3, a, x);
            return py_replace(r, self, x[0], x[1], int_arg(r, x[2], -1, "count"));
        }
        if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "swapcase") || !strcmp(name, "casefold")) {
            bind(r, name, NULL, 0, a, x);
            return case_map(r, self, name[0] == 'u' ? 1 : name[0] == 's' ? 2 : 0);
        }
        if (!strcmp(name, "title")) return bind(r, name, NULL, 0, a, x), py_title(r, self);
        if (!strcmp(name, "capitalize")) return bind(r, name, NULL, 0, a, x), py_capitalize(r, self);
        if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "rindex") ||
            !strcmp(name, "count")) {
            bind(r, name, p_find, 3, a, x);
            if (x[1].k != V_MISSING || x[2].k != V_MISSING) fail(&r->c, "%s(): start and end are not supported", name);
            jv sub = str_arg(r, x[0], name);
            if (!strcmp(name, "count")) return mk_int(py_count_sub(self, sub));
            const char *hit = name[0] == 'r' ? rfind_bytes(self.s, self.n, sub.s, sub.n) : find_bytes(self.s, self.n, sub.s, sub.n);
            if (!hit && strstr(name, "index")) fail(&r->c, "substring not found");
            return mk_int(hit ? (int64_t)u8_count(self.s, (size_t)(hit - self.s)) : -1);
        }
        if (!strcmp(name, "splitlines")) {
            bind(r, name, p_keep, 1, a, x);
            return py_splitlines(r, self, truthy(x[0]));
        }
        if (!strcmp(name, "join")) {
            bind(r, name, p_it, 1, a, x);
            jlist *l = iter_items(r, x[0]);
            sbuf b = {0};
            for (size_t i = 0; i < l->n; i++) {
                if (l->v[i].k != V_STR)
                    fail(&r->c, "sequence item %zu: expected str instance, %s found", i, type_name(l->v[i]));
                if (i) sb_put(&r->c, &b, self.s, self.n);
                sb_put(&r->c, &b, l->v[i].s, l->v[i].n);
            }
            return sb_val(&r->c, &b);
        }
        if (!strcmp(name, "format")) return py_format(r, self, a);
        static const char *const preds[] = {"isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", NULL};
        int pi = name_index(preds, name, strlen(name));
        if (!strcmp(name, "isdecimal") || !strcmp(name, "isnumeric")) pi = 0;
        if (pi >= 0) return bind(r, name, NULL, 0, a, x), mk_bool(str_pred(self, pi));
        if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
            bind(r, name, p_sw, 1, a, x);
            jv c = str_arg(r, x[0], name);
            int pre = name[6] == 'p';
            if (c.n <= self.n && !memcmp(pre ? self.s : self.s + self.n - c.n, c.s, c.n))
                return mk_strn(&r->c, pre ? self.s + c.n : self.s, self.n - c.n);
            return self;
        }
        if (!strcmp(name, "partition") || !strcmp(name, "rpartition")) {
            bind(r, name, p_split, 1, a, x);
            jv sep = str_arg(r, x[0], name);
            if (!sep.n) fail(&r->c, "empty separator");
            const char *hit = name[0] == 'r' ? rfind_bytes(self.s, self.n, sep.s, sep.n) : find_bytes(self.s, self.n, sep.s, sep.n);
            jlist *l = mk_jlist(&r->c, 3);
            jv empty = mk_strn(&r->c, "", 0);
            if (!hit) {
                l->v[0] = name[0] == 'r' ? empty : self, l->v[1] = empty, l->v[2] = name[0] == 'r' ? self : empty;
            } else {
                size_t h = (size_t)(hit - self.s);
                l->v[0] = mk_strn(&r->c, self.s, h), l->v[1] = sep, l->v[2] = mk_strn(&r->c, hit + sep.n, self.n - h - sep.n);
            }
            return mk_seq(V_TUPLE, l);
        }
        if (!strcmp(name, "zfill")) {
            bind(r, name, p_w, 1, a, x);
            int64_t w = int_arg(r, x[0], 0, name), n = (int64_t)u8_count(self.s, self.n);
            if (w <= n) return self;
            if (w > (int64_t)MAX_OUTPUT) fail(&r->c, "the padded string is too long");
            sbuf b = {0};
            size_t sign = self.n && (self.s[0] == '-' || self.s[0] == '+');
            sb_put(&r->c, &b, self.s, sign);
            for (int64_t i = 0; i < w - n; i++) sb_ch(&r->c, &b, '0');
            sb_put(&r->c, &b, self.s + sign, self.n - sign);
            return sb_val(&r->c, &b);
        }
        if (!strcmp(name, "center") || !strcmp(name, "ljust") || !strcmp(name, "rjust")) {
            bind(r, name, p_w, 2, a, x);
            return pad_str(r, self, int_arg(r, x[0], 0, name), x[1], name[0] == 'c' ? 0 : name[0] == 'l' ? 1 : 2);
        }
    }
    if (self.k == V_DICT) {
        static const char *const p_get[] = {"key", "default"};
        if (!strcmp(name, "get")) {
            bind(r, name, p_get, 2, a, x);
            if (x[0].k == V_MISSING) fail(&r->c, "get expected at least 1 argument, got 0");
            size_t at;
            return dict_find(self.d, x[0], &at) ? self.d->v[at] : or_default(x[1], mk_none());
        }
        bind(r, name, NULL, 0, a, x);
        if (!strcmp(name, "copy")) {
            jdict *d = mk_jdict(&r->c);
            for (size_t i = 0; i < self.d->n; i++) dict_put(r, d, self.d->k[i], self.d->v[i]);
            return mk_dictv(V_DICT, d);
        }
        jlist *l = mk_jlist(&r->c, self.d->n);
        for (size_t i = 0; i < self.d->n; i++) {
            if (name[0] == 'k') l->v[i] = self.d->k[i];
            else if (name[0] == 'v') l->v[i] = self.d->v[i];
            else {
                jlist *pair = mk_jlist(&r->c, 2);
                pair->v[0] = self.d->k[i], pair->v[1] = self.d->v[i];
                l->v[i] = mk_seq(V_TUPLE, pair);
            }
        }
        return mk_seq(V_LIST, l);
    }
    if (self.k == V_LIST || self.k == V_TUPLE) {
        static const char *const p_x[] = {"value"};
        if (!strcmp(name, "copy")) return bind(r, name, NULL, 0, a, x), self;
        bind(r, name, p_x, 1, a, x);
        int64_t k = 0;
        for (size_t i = 0; i < self.l->n; i++)
            if (py_eq(self.l->v[i], x[0])) {
                if (name[0] == 'i') return mk_int((int64_t)i);
                k++;
            }
        if (name[0] == 'i') fail(&r->c, "list.index(x): x not in list");
        return mk_int(k);
    }
    if (self.k == V_LOOP) {
        if (!strcmp(name, "cycle")) {
            if (!a->npos) fail(&r->c, "no items for cycling given");
            return a->pos[self.lp->i % a->npos];
        }
        loopstate *st = self.lp->st; /* changed(*values) */
        jlist *l = mk_jlist(&r->c, (size_t)a->npos);
        for (int i = 0; i < a->npos; i++) l->v[i] = a->pos[i];
        jv now = mk_seq(V_LIST, l);
        int changed = !st->changed_any || !py_eq(st->changed_last, now);
        st->changed_last = now;
        st->changed_any = 1;
        return mk_bool(changed);
    }
    fail(&r->c, "'%s' object has no method '%s'", type_name(self), name);
    return self;
}

/* ---- tojson: json.dumps(x, ensure_ascii, indent, separators, sort_keys) --------------------- */

typedef struct {
    int ascii, sort;
    const char *indent; /* NULL: none */
    jv item_sep, key_sep;
} json_opts;

static void json_str(R *r, sbuf *b, const char *s, size_t n, int ascii) {
    sb_ch(&r->c, b, '"');
    for (size_t i = 0; i < n;) {
        size_t adv;
        int32_t cp = u8_dec(s + i, n - i, &adv);
        switch (cp) {
        case '"': sb_puts(&r->c, b, "\\\""); break;
        case '\\': sb_puts(&r->c, b, "\\\\"); break;
        case '\n': sb_puts(&r->c, b, "\\n"); break;
        case '\r': sb_puts(&r->c, b, "\\r"); break;
        case '\t': sb_puts(&r->c, b, "\\t"); break;
        case '\b': sb_puts(&r->c, b, "\\b"); break;
        case '\f': sb_puts(&r->c, b, "\\f"); break;
        default:
            if (cp < 0x20) sb_printf(&r->c, b, "\\u%04x", cp);
            else if (ascii && cp >= 0x7f) {
                if (cp >= 0x10000) {
                    int32_t v = cp - 0x10000;
                    sb_printf(&r->c, b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    sb_printf(&r->c, b, "\\u%04x", cp);
                }
            } else sb_put(&r->c, b, s + i, adv);
        }
        i += adv;
    }
    sb_ch(&r->c, b, '"');
}

static void json_num(R *r, sbuf *b, jv v) {
    if (v.k == V_BOOL) sb_puts(&r->c, b, v.i ? "true" : "false");
    else if (v.k == V_INT) sb_printf(&r->c, b, "%lld", (long long)v.i);
    else if (isnan(v.f)) sb_puts(&r->c, b, "NaN");
    else if (isinf(v.f)) sb_puts(&r->c, b, v.f < 0 ? "-Infinity" : "Infinity");
    else fmt_float(&r->c, b, v.f);
}

static void json_nl(R *r, sbuf *b, const json_opts *o, int level) {
    sb_ch(&r->c, b, '\n');
    for (int i = 0; i < level; i++) sb_puts(&r->c, b, o->indent);
}

static void sort_vals(R *r, jv *v, size_t n, jv *keys, int reverse);

static void json_dump(R *r, sbuf *b, jv v, const json_opts *o, int level) {
    if (level > 500) fail(&r->c, "maximum recursion depth exceeded while encoding a JSON object");
    switch (v.k) {
    case V_NONE: sb_puts(&r->c, b, "null"); return;
    case V_BOOL:
    case V_INT:
    case V_FLOAT: json_num(r, b, v); return;
    case V_STR: json_str(r, b, v.s, v.n, o->ascii); return;
    case V_LIST:
    case V_TUPLE:
        if (v.l->gen) break;
        if (!v.l->n) {
            sb_puts(&r->c, b, "[]");
            return;
        }
        sb_ch(&r->c, b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) sb_put(&r->c, b, o->item_sep.s, o->item_sep.n);
            if (o->indent) json_nl(r, b, o, level + 1);
            json_dump(r, b, v.l->v[i], o, level + 1);
        }
        if (o->indent) json_nl(r, b, o, level);
        sb_ch(&r->c, b, ']');
        return;
    case V_DICT: {
        if (!v.d->n) {
            sb_puts(&r->c, b, "{}");
            return;
        }
        size_t n = v.d->n, *order = alloc(&r->c, sizeof(size_t) * n);
        for (size_t i = 0; i < n; i++) order[i] = i;
        if (o->sort) { /* sorted(d.items()): by key */
            jv *idx = alloc(&r->c, sizeof(jv) * n), *keys = alloc(&r->c, sizeof(jv) * n);
            for (size_t i = 0; i < n; i++) idx[i] = mk_int((int64_t)i), keys[i] = v.d->k[i];
            sort_vals(r, idx, n, keys, 0);
            for (size_t i = 0; i < n; i++) order[i] = (size_t)idx[i].i;
        }
        sb_ch(&r->c, b, '{');
        for (size_t q = 0; q < n; q++) {
            size_t i = order[q];
            jv k = v.d->k[i];
            if (q) sb_put(&r->c, b, o->item_sep.s, o->item_sep.n);
            if (o->indent) json_nl(r, b, o, level + 1);
            if (k.k == V_STR) json_str(r, b, k.s, k.n, o->ascii);
            else if (k.k == V_NONE) sb_puts(&r->c, b, "\"null\"");
            else if (is_num(k)) {
                sb_ch(&r->c, b, '"');
                json_num(r, b, k);
                sb_ch(&r->c, b, '"');
            } else fail(&r->c, "keys must be str, int, float, bool or None, not %s", type_name(k));
            sb_put(&r->c, b, o->key_sep.s, o->key_sep.n);
            json_dump(r, b, v.d->v[i], o, level + 1);
        }
        if (o->indent) json_nl(r, b, o, level);
        sb_ch(&r->c, b, '}');
        return;
    }
    default: break;
    }
    fail(&r->c, "Object of type %s is not JSON serializable", type_name(v));
}

static jv do_tojson(R *r, jv v, const args_t *a) {
    static const char *const params[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    jv x[4];
    bind(r, "tojson", params, 4, a, x);
    json_opts o;
    memset(&o, 0, sizeof o);
    o.ascii = truthy(x[0]);
    o.sort = truthy(x[3]);
    if (x[1].k == V_STR) o.indent = x[1].s;
    else if (x[1].k == V_INT || x[1].k == V_BOOL) {
        int64_t k = x[1].i < 0 ? 0 : x[1].i > 1000 ? 1000 : x[1].i;
        char *sp = alloc(&r->c, (size_t)k + 1);
        memset(sp, ' ', (size_t)k);
        o.indent = sp;
    } else if (x[1].k != V_NONE && x[1].k != V_MISSING) fail(&r->c, "tojson: indent must be an integer or a string");
    o.item_sep = mk_str(&r->c, o.indent ? "," : ", ");
    o.key_sep = mk_str(&r->c, ": ");
    if (x[2].k != V_NONE && x[2].k != V_MISSING) {
        if ((x[2].k != V_TUPLE && x[2].k != V_LIST) || x[2].l->n != 2 || x[2].l->v[0].k != V_STR || x[2].l->v[1].k != V_STR)
            fail(&r->c, "tojson: separators must be a pair of strings");
        o.item_sep = x[2].l->v[0], o.key_sep = x[2].l->v[1];
    }
    sbuf b = {0};
    json_dump(r, &b, v, &o, 0);
    return sb_val(&r->c, &b);
}

/* ---- sorting (stable; keys compared as Python does) ---------------------------------------- */

static int key_cmp(R *r, jv a, jv b) {
    if (a.k == V_LIST && b.k == V_LIST && a.l->gen == 2 && b.l->gen == 2) { /* multi-attribute keys */
        for (size_t i = 0; i < a.l->n; i++) {
            int c = py_cmp(r, a.l->v[i], b.l->v[i], "<");
            if (c) return c;
        }
        return 0;
    }
    return py_cmp(r, a, b, "<");
}

static void sort_vals(R *r, jv *v, size_t n, jv *keys, int reverse) {
    if (n < 2) return;
    jv *tv = alloc(&r->c, sizeof(jv) * n), *tk = alloc(&r->c, sizeof(jv) * n);
    for (size_t w = 1; w < n; w *= 2) { /* bottom-up merge sort */
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = key_cmp(r, keys[j], keys[i]);
                int take_right = reverse ? c > 0 : c < 0;
                if (take_right) tv[k] = v[j], tk[k++] = keys[j++];
                else tv[k] = v[i], tk[k++] = keys[i++];
            }
            while (i < mid) tv[k] = v[i], tk[k++] = keys[i++];
            while (j < hi) tv[k] = v[j], tk[k++] = keys[j++];
        }
        memcpy(v, tv, sizeof(jv) * n);
        memcpy(keys, tk, sizeof(jv) * n);
    }
}

/* ---- filters and tests ------------------------------------------------------------------- */

static jv ignore_case(R *r, jv v) { return v.k == V_STR ? case_map(r, v, 0) : v; }

/* make_attrgetter: "a.b.0" looked up part by part as items */
static jv attr_path(R *r, jv item, jv attribute, jv dflt) {
    if (attribute.k == V_MISSING || attribute.k == V_NONE) return item;
    if (attribute.k != V_STR) {
        item = get_item(r, item, attribute);
        return item.k == V_UNDEF && dflt.k != V_MISSING && dflt.k != V_NONE ? dflt : item;
    }
    const char *s = attribute.s;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        int digits = n > 0;
        for (size_t i = 0; i < n; i++) digits &= s[i] >= '0' && s[i] <= '9';
        jv key = digits ? mk_int(strtoll(s, NULL, 10)) : mk_strn(&r->c, s, n);
        item = get_item(r, item, key);
        if (item.k == V_UNDEF && dflt.k != V_MISSING && dflt.k != V_NONE) item = dflt;
        if (!dot) return item;
        s = dot + 1;
    }
}

static jv apply_filter(R *r, int id, const char *name, jv v, const args_t *a);
static int apply_test(R *r, int id, const char *name, jv v, const args_t *a);

static args_t args_from(const args_t *a, int skip) {
    args_t b = *a;
    if (skip > 0) { /* no positional arguments: pos is NULL, and NULL + 0 is undefined */
        b.pos += skip;
        b.npos -= skip;
    }
    return b;
}

/* select / reject / selectattr / rejectattr: a generator */
static jv select_items(R *r, jv v, const args_t *a, int want, int by_attr) {
    vbuf out = {0};
    if (!truthy(v)) return vb_list(&r->c, &out, V_LIST, 1);
    jlist *items = iter_items(r, v);
    int off = by_attr;
    if (by_attr && a->npos < 1) fail(&r->c, "Missing parameter for attribute name");
    int tid = -1;
    if (a->npos > off) {
        jv tn = str_arg(r, a->pos[off], "select");
        tid = name_index(test_names, tn.s, tn.n);
        if (tid < 0) fail(&r->c, "no test named '%s'", tn.s);
    }
    args_t targs = args_from(a, off + 1 > a->npos ? a->npos : off + 1);
    for (size_t i = 0; i < items->n; i++) {
        jv x = by_attr ? attr_path(r, items->v[i], a->pos[0], mk_missing()) : items->v[i];
        int ok = tid < 0 ? truthy(x) : apply_test(r, tid, test_names[tid], x, &targs);
        if (ok == want) vb_push(&r->c, &out, items->v[i]);
    }
    return vb_list(&r->c, &out, V_LIST, 1);
}

static jv to_list_val(R *r, jv v) {
    jlist *l = iter_items(r, v);
    if (v.k == V_LIST && !l->gen) return v;
    jlist *c = mk_jlist(&r->c, l->n);
    memcpy(c->v, l->v, sizeof(jv) * l->n);
    return mk_seq(V_LIST, c);
}

static jv min_max(R *r, jv v, const args_t *a, int want_max) {
    static const char *const params[] = {"case_sensitive", "attribute"};
    jv x[2];
    bind(r, want_max ? "max" : "min", params, 2, a, x);
    jlist *l = iter_items(r, v);
    if (!l->n) return mk_undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    jv bk = mk_missing();
    for (size_t i = 0; i < l->n; i++) {
        jv k = attr_path(r, l->v[i], x[1], mk_missing());
        if (!truthy(x[0])) k = ignore_case(r, k);
        if (i == 0 || (want_max ? py_cmp(r, k, bk, ">") > 0 : py_cmp(r, k, bk, "<") < 0)) best = i, bk = k;
    }
    return l->v[best];
}

static jv py_float_of(R *r, jv v, int *ok) {
    *ok = 1;
    if (is_num(v)) return mk_float(num_f(v));
    if (v.k == V_STR) {
        char buf[128];
        size_t n = 0;
        jv t = py_strip(r, v, mk_none(), 1, 1);
        for (size_t i = 0; i < t.n && n + 1 < sizeof buf; i++)
            if (t.s[i] != '_') buf[n++] = t.s[i];
        buf[n] = 0;
        char *e;
        double f = strtod(buf, &e);
        if (n && !*e && t.n < sizeof buf && !(buf[0] == '0' && (buf[1] | 32) == 'x')) return mk_float(f);
    }
    *ok = 0;
    return mk_float(0);
}

static jv apply_filter(R *r, int id, const char *name, jv v, const args_t *a) {
    jv x[4];
    switch (id) {
    case F_ABS:
        bind(r, name, NULL, 0, a, x);
        if (v.k == V_FLOAT) return mk_float(fabs(v.f));
        if (v.k == V_INT || v.k == V_BOOL) {
            if (v.i == INT64_MIN) ck(r, 1, 0);
            return mk_int(v.i < 0 ? -v.i : v.i);
        }
        fail(&r->c, "bad operand type for abs(): '%s'", type_name(v));
        break;
    case F_ATTR: {
        static const char *const p[] = {"name"};
        bind(r, name, p, 1, a, x);
        jv n = str_arg(r, x[0], name);
        if (v.k == V_DICT) return in_names(dict_methods, n.s) ? get_attr(r, v, n.s) : undef_attr(r, v, n.s);
        return get_attr(r, v, n.s);
    }
    case F_BATCH: {
        static const char *const p[] = {"linecount", "fill_with"};
        bind(r, name, p, 2, a, x);
        int64_t k = int_arg(r, x[0], 1, name);
        if (k <= 0) fail(&r->c, "batch: linecount must be positive");
        jlist *l = iter_items(r, v);
        vbuf out = {0};
        for (size_t i = 0; i < l->n; i += (size_t)k) {
            vbuf row = {0};
            for (size_t j = i; j < i + (size_t)k; j++) {
                if (j < l->n) vb_push(&r->c, &row, l->v[j]);
                else if (x[1].k != V_MISSING && x[1].k != V_NONE) vb_push(&r->c, &row, x[1]);
            }
            vb_push(&r->c, &out, vb_list(&r->c, &row, V_LIST, 0));
        }
        return vb_list(&r->c, &out, V_LIST, 1);
    }
    case F_CAPITALIZE: bind(r, name, NULL, 0, a, x); return py_capitalize(r, str_of(&r->c, v));
    case F_CENTER: {
        static const char *const p[] = {"width"};
        bind(r, name, p, 1, a, x);
        return pad_str(r, str_of(&r->c, v), int_arg(r, x[0], 80, name), mk_missing(), 0);
    }
    case F_COUNT:
    case F_LENGTH: bind(r, name, NULL, 0, a, x); return mk_int((int64_t)py_len(r, v));
    case F_D:
    case F_DEFAULT: {
        static const char *const p[] = {"default_value", "boolean"};
        bind(r, name, p, 2, a, x);
        if (v.k == V_UNDEF || (truthy(x[1]) && !truthy(v))) return or_default(x[0], mk_strn(&r->c, "", 0));
        return v;
    }
    case F_DICTSORT: {
        static const char *const p[] = {"case_sensitive", "by", "reverse"};
        bind(r, name, p, 3, a, x);
        if (v.k != V_DICT) fail(&r->c, "dictsort: a mapping is required, not '%s'", type_name(v));
        int by_val = x[1].k == V_STR && !strcmp(x[1].s, "value");
        if (x[1].k == V_STR && !by_val && strcmp(x[1].s, "key")) fail(&r->c, "You can only sort by either \"key\" or \"value\"");
        size_t n = v.d->n;
        jv *items = alloc(&r->c, sizeof(jv) * (n ? n : 1)), *keys = alloc(&r->c, sizeof(jv) * (n ? n : 1));
        for (size_t i = 0; i < n; i++) {
            jlist *pair = mk_jlist(&r->c, 2);
            pair->v[0] = v.d->k[i], pair->v[1] = v.d->v[i];
            items[i] = mk_seq(V_TUPLE, pair);
            keys[i] = by_val ? v.d->v[i] : v.d->k[i];
            if (!truthy(x[0])) keys[i] = ignore_case(r, keys[i]);
        }
        sort_vals(r, items, n, keys, truthy(x[2]));
        jlist *l = mk_jlist(&r->c, n);
        if (n) memcpy(l->v, items, sizeof(jv) * n);
        return mk_seq(V_LIST, l);
    }
    case F_E:
    case F_ESCAPE:
    case F_FORCEESCAPE: bind(r, name, NULL, 0, a, x); return html_escape(r, str_of(&r->c, v));
    case F_FIRST: {
        bind(r, name, NULL, 0, a, x);
        jlist *l = iter_items(r, v);
        return l->n ? l->v[0] : mk_undef("No first item, sequence was empty.");
    }
    case F_LAST: {
        bind(r, name, NULL, 0, a, x);
        if ((v.k == V_LIST || v.k == V_TUPLE) && v.l->gen) fail(&r->c, "'generator' object is not reversible");
        jlist *l = iter_items(r, v);
        return l->n ? l->v[l->n - 1] : mk_undef("No last item, sequence was empty.");
    }
    case F_FLOAT: {
        static const char *const p[] = {"default"};
        bind(r, name, p, 1, a, x);
        int ok;
        jv f = py_float_of(r, v, &ok);
        return ok ? f : or_default(x[0], mk_float(0));
    }
    case F_FORMAT: {
        jv s = str_of(&r->c, v);
        if (a->nkw) {
            jdict *d = mk_jdict(&r->c);
            for (int i = 0; i < a->nkw; i++) dict_put(r, d, mk_str(&r->c, a->kwn[i]), a->kwv[i]);
            return py_percent(r, s, mk_dictv(V_DICT, d));
        }
        jlist *l = mk_jlist(&r->c, (size_t)a->npos);
        for (int i = 0; i < a->npos; i++) l->v[i] = a->pos[i];
        return py_percent(r, s, mk_seq(V_TUPLE, l));
    }
    case F_INDENT: {
        static const char *const p[] = {"width", "first", "blank"};
        bind(r, name, p, 3, a, x);
        jv ind = x[0].k == V_STR ? x[0] : mk_missing();
        if (ind.k == V_MISSING) {
            int64_t w = int_arg(r, x[0], 4, name);
            char *sp = alloc(&r->c, (size_t)(w > 0 ? w : 0) + 1);
            if (w > 0) memset(sp, ' ', (size_t)w);
            ind = mk_str(&r->c, sp);
        }
        jv s = str_of(&r->c, v);
        sbuf t = {0};
        sb_put(&r->c, &t, s.s, s.n);
        sb_ch(&r->c, &t, '\n');
        jv lines = py_splitlines(r, sb_val(&r->c, &t), 0);
        sbuf b = {0};
        if (truthy(x[1])) sb_put(&r->c, &b, ind.s, ind.n);
        for (size_t i = 0; i < lines.l->n; i++) {
            jv ln = lines.l->v[i];
            if (i) {
                sb_ch(&r->c, &b, '\n');
                if (ln.n || truthy(x[2])) sb_put(&r->c, &b, ind.s, ind.n);
            }
            sb_put(&r->c, &b, ln.s, ln.n);
        }
        return sb_val(&r->c, &b);
    }
    case F_INT: {
        static const char *const p[] = {"default", "base"};
        bind(r, name, p, 2, a, x);
        jv dflt = or_default(x[0], mk_int(0));
        if (v.k == V_INT || v.k == V_BOOL) return mk_int(v.i);
        if (v.k == V_FLOAT) return isfinite(v.f) && fabs(v.f) < 9.2e18 ? mk_int((int64_t)v.f) : dflt;
        if (v.k == V_STR) {
            int64_t base = int_arg(r, x[1], 10, name);
            jv t = py_strip(r, v, mk_none(), 1, 1);
            char buf[128];
            size_t n = 0;
            for (size_t i = 0; i < t.n && n + 1 < sizeof buf; i++)
                if (t.s[i] != '_') buf[n++] = t.s[i];
            buf[n] = 0;
            char *e;
            long long iv = n ? strtoll(buf, &e, (int)base) : 0;
            if (n && !*e) return mk_int(iv);
            int ok;
            jv f = py_float_of(r, v, &ok);
            if (ok && isfinite(f.f) && fabs(f.f) < 9.2e18) return mk_int((int64_t)f.f);
        }
        return dflt;
    }
    case F_ITEMS: {
        bind(r, name, NULL, 0, a, x);
        if (v.k == V_UNDEF) return vb_list(&r->c, &(vbuf){0}, V_LIST, 1);
        if (v.k != V_DICT) fail(&r->c, "Can only get item pairs from a mapping.");
        args_t none = {0};
        jv l = call_method(r, v, "items", &none);
        l.l->gen = 1;
        return l;
    }
    case F_JOIN: {
        static const char *const p[] = {"d", "attribute"};
        bind(r, name, p, 2, a, x);
        jv sep = x[0].k == V_MISSING ? mk_strn(&r->c, "", 0) : str_of(&r->c, x[0]);
        jlist *l = iter_items(r, v);
        sbuf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (i) sb_put(&r->c, &b, sep.s, sep.n);
            to_str(&r->c, &b, attr_path(r, l->v[i], x[1], mk_missing()));
        }
        return sb_val(&r->c, &b);
    }
    case F_LIST: bind(r, name, NULL, 0, a, x); return to_list_val(r, v);
    case F_LOWER: bind(r, name, NULL, 0, a, x); return case_map(r, str_of(&r->c, v), 0);
    case F_UPPER: bind(r, name, NULL, 0, a, x); return case_map(r, str_of(&r->c, v), 1);
    case F_MAP: {
        jlist *l = iter_items(r, v);
        vbuf out = {0};
        int by_attr = 0;
        jv attr = mk_missing(), dflt = mk_missing();
        for (int k = 0; k < a->nkw; k++) {
            if (!strcmp(a->kwn[k], "attribute")) attr = a->kwv[k], by_attr = 1;
            else if (!strcmp(a->kwn[k], "default")) dflt = a->kwv[k];
        }
        if (by_attr && !a->npos) {
            for (size_t i = 0; i < l->n; i++) vb_push(&r->c, &out, attr_path(r, l->v[i], attr, dflt));
            return vb_list(&r->c, &out, V_LIST, 1);
        }
        if (!a->npos) fail(&r->c, "map requires a filter argument");
        jv fn = str_arg(r, a->pos[0], name);
        int fid = name_index(filter_names, fn.s, fn.n);
        if (fid < 0) fail(&r->c, "no filter named '%s'", fn.s);
        args_t rest = args_from(a, 1);
        for (size_t i = 0; i < l->n; i++) vb_push(&r->c, &out, apply_filter(r, fid, filter_names[fid], l->v[i], &rest));
        return vb_list(&r->c, &out, V_LIST, 1);
    }
    case F_MAX:
    case F_MIN: return min_max(r, v, a, id == F_MAX);
    case F_REJECT: return select_items(r, v, a, 0, 0);
    case F_SELECT: return select_items(r, v, a, 1, 0);
    case F_REJECTATTR: return select_items(r, v, a, 0, 1);
    case F_SELECTATTR: return select_items(r, v, a, 1, 1);
    case F_REPLACE: {
        static const char *const p[] = {"old", "new", "count"};
        bind(r, name, p, 3, a, x);
        if (x[0].k == V_MISSING || x[1].k == V_MISSING)
            fail(&r->c, "replace() missing required argument '%s'", x[0].k == V_MISSING ? "old" : "new");
        return py_replace(r, str_of(&r->c, v), str_of(&r->c, x[0]), str_of(&r->c, x[1]),
                          x[2].k == V_NONE ? -1 : int_arg(r, x[2], -1, name));
    }
    case F_REVERSE: {
        bind(r, name, NULL, 0, a, x);
        if (v.k == V_STR) return get_slice(r, v, mk_none(), mk_none(), mk_int(-1));
        jlist *l = iter_items(r, v);
        jlist *o = mk_jlist(&r->c, l->n);
        for (size_t i = 0; i < l->n; i++) o->v[i] = l->v[l->n - 1 - i];
        o->gen = 1;
        return mk_seq(V_LIST, o);
    }
    case F_ROUND: {
        static const char *const p[] = {"precision", "method"};
        bind(r, name, p, 2, a, x);
        int64_t prec = int_arg(r, x[0], 0, name);
        const char *m = x[1].k == V_STR ? x[1].s : "common";
        if (strcmp(m, "common") && strcmp(m, "ceil") && strcmp(m, "floor"))
            fail(&r->c, "method must be common, ceil or floor");
        if (!is_num(v)) fail(&r->c, "type %s doesn't define __round__ method", type_name(v));
        if (!strcmp(m, "common")) {
            if (v.k != V_FLOAT) {
                if (prec >= 0) return mk_int(v.i);
                if (prec < -18) return mk_int(0); /* 10^19 > every int64 */
                double p10 = pow(10, (double)-prec), q = (double)v.i / p10, rq = nearbyint(q);
                return mk_int((int64_t)(rq * p10));
            }
            if (!isfinite(v.f) || prec > 300) return v;
            char buf[400];
            if (prec >= 0) { /* correctly rounded, ties to even, as Python's round() */
                snprintf(buf, sizeof buf, "%.*f", (int)prec, v.f);
                return mk_float(strtod(buf, NULL));
            }
            if (prec < -308) return mk_float(copysign(0.0, v.f)); /* 10^309 is inf as a double */
            double p10 = pow(10, (double)-prec);
            return mk_float(nearbyint(v.f / p10) * p10);
        }
        if (prec > 308 || prec < -308) fail(&r->c, "round: precision %lld is out of range", (long long)prec);
        double p10 = pow(10, (double)prec), y = num_f(v) * p10;
        return mk_float((!strcmp(m, "ceil") ? ceil(y) : floor(y)) / p10);
    }
    case F_SAFE:
    case F_STRING: bind(r, name, NULL, 0, a, x); return str_of(&r->c, v);
    case F_SORT: {
        static const char *const p[] = {"reverse", "case_sensitive", "attribute"};
        bind(r, name, p, 3, a, x);
        jlist *l = iter_items(r, v);
        size_t n = l->n;
        jv *items = alloc(&r->c, sizeof(jv) * (n ? n : 1)), *keys = alloc(&r->c, sizeof(jv) * (n ? n : 1));
        jv attrs = x[2].k == V_STR ? py_split(r, x[2], mk_str(&r->c, ","), -1, 0) : mk_missing();
        for (size_t i = 0; i < n; i++) {
            items[i] = l->v[i];
            jlist *ks = mk_jlist(&r->c, attrs.k == V_MISSING ? 1 : attrs.l->n);
            for (size_t q = 0; q < ks->n; q++) {
                jv k = attr_path(r, l->v[i], attrs.k == V_MISSING ? x[2] : attrs.l->v[q], mk_missing());
                ks->v[q] = truthy(x[1]) ? k : ignore_case(r, k);
            }
            ks->gen = 2;
            keys[i] = mk_seq(V_LIST, ks);
        }
        sort_vals(r, items, n, keys, truthy(x[0]));
        jlist *o = mk_jlist(&r->c, n);
        if (n) memcpy(o->v, items, sizeof(jv) * n);
        return mk_seq(V_LIST, o);
    }
    case F_STRIPTAGS: {
        bind(r, name, NULL, 0, a, x);
        jv s = str_of(&r->c, v);
        sbuf b = {0};
        for (size_t i = 0; i < s.n; i++) {
            if (s.s[i] == '<') {
                const char *end = s.n - i >= 4 && !memcmp(s.s + i, "<!--", 4) ? find_bytes(s.s + i, s.n - i, "-->", 3)
                                                                          : memchr(s.s + i, '>', s.n - i);
                if (end) {
                    i = (size_t)(end - s.s) + (*end == '-' ? 2 : 0);
                    continue;
                }
            }
            sb_ch(&r->c, &b, s.s[i]);
        }
        jv words = py_split(r, sb_val(&r->c, &b), mk_none(), -1, 0);
        sbuf o = {0};
        for (size_t i = 0; i < words.l->n; i++) {
            if (i) sb_ch(&r->c, &o, ' ');
            sb_put(&r->c, &o, words.l->v[i].s, words.l->v[i].n);
        }
        static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                                             {"&#34;", "\""}, {"&#39;", "'"}, {"&#x27;", "'"}};
        jv res = sb_val(&r->c, &o);
        for (size_t e = 0; e < sizeof ent / sizeof *ent; e++)
            res = py_replace(r, res, mk_str(&r->c, ent[e][0]), mk_str(&r->c, ent[e][1]), -1);
        return res;
    }
    case F_SUM: {
        static const char *const p[] = {"attribute", "start"};
        bind(r, name, p, 2, a, x);
        jv acc = or_default(x[1], mk_int(0));
        jlist *l = iter_items(r, v);
        for (size_t i = 0; i < l->n; i++) acc = arith(r, OP_ADD, acc, attr_path(r, l->v[i], x[0], mk_missing()));
        return acc;
    }
    case F_TITLE: { /* jinja2's: each word after [-\s({[<]+ capitalized */
        bind(r, name, NULL, 0, a, x);
        jv s = str_of(&r->c, v);
        sbuf b = {0};
        int at_start = 1;
        for (size_t i = 0; i < s.n;) {
            size_t adv;
            int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
            int sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp);
            if (sep) sb_put(&r->c, &b, s.s + i, adv);
            else u8_enc(&r->c, &b, at_start ? utf8proc_toupper(cp) : utf8proc_tolower(cp));
            at_start = sep;
            i += adv;
        }
        return sb_val(&r->c, &b);
    }
    case F_TOJSON: return do_tojson(r, v, a);
    case F_TRIM: {
        static const char *const p[] = {"chars"};
        bind(r, name, p, 1, a, x);
        return py_strip(r, str_of(&r->c, v), x[0], 1, 1);
    }
    case F_UNIQUE: {
        static const char *const p[] = {"case_sensitive", "attribute"};
        bind(r, name, p, 2, a, x);
        jlist *l = iter_items(r, v);
        vbuf out = {0}, seen = {0};
        for (size_t i = 0; i < l->n; i++) {
            jv k = attr_path(r, l->v[i], x[1], mk_missing());
            if (!truthy(x[0])) k = ignore_case(r, k);
            size_t j = 0;
            while (j < seen.n && !py_eq(seen.v[j], k)) j++;
            if (j < seen.n) continue;
            vb_push(&r->c, &seen, k);
            vb_push(&r->c, &out, l->v[i]);
        }
        return vb_list(&r->c, &out, V_LIST, 1);
    }
    case F_WORDCOUNT: {
        bind(r, name, NULL, 0, a, x);
        jv s = str_of(&r->c, v);
        int64_t k = 0;
        int in_word = 0;
        for (size_t i = 0; i < s.n;) {
            size_t adv;
            int32_t cp = u8_dec(s.s + i, s.n - i, &adv);
            int w = cp == '_' || is_alpha(cp) || is_digit(cp);
            k += w && !in_word;
            in_word = w;
            i += adv;
        }
        return mk_int(k);
    }
    default: break;
    }
    fail(&r->c, "no filter named '%s'", name);
    return v;
}

static int apply_test(R *r, int id, const char *name, jv v, const args_t *a) {
    static const char *const p1[] = {"other"};
    jv x[2];
    switch (id) {
    case X_DEFINED: return bind(r, name, NULL, 0, a, x), v.k != V_UNDEF;
    case X_UNDEFINED: return bind(r, name, NULL, 0, a, x), v.k == V_UNDEF;
    case X_NONE: return bind(r, name, NULL, 0, a, x), v.k == V_NONE;
    case X_BOOLEAN: return bind(r, name, NULL, 0, a, x), v.k == V_BOOL;
    case X_TRUE: return bind(r, name, NULL, 0, a, x), v.k == V_BOOL && v.i;
    case X_FALSE: return bind(r, name, NULL, 0, a, x), v.k == V_BOOL && !v.i;
    case X_INTEGER: return bind(r, name, NULL, 0, a, x), v.k == V_INT;
    case X_FLOAT: return bind(r, name, NULL, 0, a, x), v.k == V_FLOAT;
    case X_NUMBER: return bind(r, name, NULL, 0, a, x), is_num(v);
    case X_STRING: return bind(r, name, NULL, 0, a, x), v.k == V_STR;
    case X_MAPPING: return bind(r, name, NULL, 0, a, x), v.k == V_DICT;
    case X_CALLABLE: return bind(r, name, NULL, 0, a, x), v.k == V_FUNC || v.k == V_MACRO;
    case X_ESCAPED: return bind(r, name, NULL, 0, a, x), 0;
    case X_ITERABLE:
        bind(r, name, NULL, 0, a, x);
        return v.k == V_UNDEF || v.k == V_STR || v.k == V_LIST || v.k == V_TUPLE || v.k == V_DICT;
    case X_SEQUENCE:
        bind(r, name, NULL, 0, a, x);
        return v.k == V_UNDEF || v.k == V_STR || ((v.k == V_LIST || v.k == V_TUPLE) && !v.l->gen) || v.k == V_DICT;
    case X_ODD:
    case X_EVEN: {
        bind(r, name, NULL, 0, a, x);
        jv m = arith(r, OP_MOD, v, mk_int(2));
        return (num_f(m) == 1) == (id == X_ODD);
    }
    case X_DIVISIBLEBY: {
        static const char *const p[] = {"num"};
        bind(r, name, p, 1, a, x);
        return num_f(arith(r, OP_MOD, v, x[0])) == 0;
    }
    case X_LOWER: return bind(r, name, NULL, 0, a, x), str_pred(str_of(&r->c, v), 5);
    case X_UPPER: return bind(r, name, NULL, 0, a, x), str_pred(str_of(&r->c, v), 4);
    case X_FILTER:
    case X_TEST:
        bind(r, name, NULL, 0, a, x);
        return v.k == V_STR && name_index(id == X_FILTER ? filter_names : test_names, v.s, v.n) >= 0;
    case X_IN:
        bind(r, name, p1, 1, a, x);
        return contains(r, x[0], v);
    case X_SAMEAS:
        bind(r, name, p1, 1, a, x);
        if (v.k != x[0].k) return 0;
        if (v.k == V_STR) return v.s == x[0].s;
        if (v.k <= V_FLOAT) return py_eq(v, x[0]);
        return v.l == x[0].l;
    default: break;
    }
    bind(r, name, p1, 1, a, x);
    if (x[0].k == V_MISSING) fail(&r->c, "%s() missing 1 required positional argument", name);
    switch (id) {
    case X_EQ:
    case X_EQUALTO:
    case X_EQ2: return py_eq(v, x[0]);
    case X_NE:
    case X_NE2: return !py_eq(v, x[0]);
    case X_LT:
    case X_LESSTHAN:
    case X_LT2: return py_cmp(r, v, x[0], "<") < 0;
    case X_LE:
    case X_LE2: return py_cmp(r, v, x[0], "<=") <= 0;
    case X_GT:
    case X_GREATERTHAN:
    case X_GT2: return py_cmp(r, v, x[0], ">") > 0;
    default: return py_cmp(r, v, x[0], ">=") >= 0;
    }
}

/* ---- globals, calls, macros ------------------------------------------------------------- */

static jv exec_macro(R *r, jmacro *m, const args_t *a);

static jv kwargs_dict(R *r, const args_t *a, int allow_positional_dict, const char *fname) {
    jdict *d = mk_jdict(&r->c);
    if (a->npos > (allow_positional_dict ? 1 : 0)) fail(&r->c, "%s() takes keyword arguments only", fname);
    if (a->npos) {
        jv src = a->pos[0];
        if (src.k == V_DICT || src.k == V_NS)
            for (size_t i = 0; i < src.d->n; i++) dict_put(r, d, src.d->k[i], src.d->v[i]);
        else {
            jlist *l = iter_items(r, src);
            for (size_t i = 0; i < l->n; i++) {
                jv pr = l->v[i];
                if ((pr.k != V_LIST && pr.k != V_TUPLE) || pr.l->n != 2)
                    fail(&r->c, "%s(): each element must be a key, value pair", fname);
                dict_put(r, d, pr.l->v[0], pr.l->v[1]);
            }
        }
    }
    for (int i = 0; i < a->nkw; i++) dict_put(r, d, mk_str(&r->c, a->kwn[i]), a->kwv[i]);
    return mk_dictv(V_DICT, d);
}

static jv call_global(R *r, const char *name, const args_t *a) {
    if (!strcmp(name, "range")) {
        if (a->nkw || a->npos < 1 || a->npos > 3) fail(&r->c, "range expected 1 to 3 integer arguments");
        int64_t v[3];
        for (int i = 0; i < a->npos; i++) v[i] = int_arg(r, a->pos[i], 0, "range");
        int64_t start = a->npos > 1 ? v[0] : 0, stop = a->npos > 1 ? v[1] : v[0], step = a->npos > 2 ? v[2] : 1;
        if (!step) fail(&r->c, "range() arg 3 must not be zero");
        double cnt = step > 0 ? ceil(((double)stop - (double)start) / (double)step) : ceil(((double)start - (double)stop) / (double)-step);
        if (cnt < 0) cnt = 0;
        if (cnt > MAX_RANGE)
            fail(&r->c, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
        jlist *l = mk_jlist(&r->c, (size_t)cnt);
        /* every element lies between start and stop; i * step alone may not fit (unsigned arithmetic wraps back) */
        for (size_t i = 0; i < l->n; i++) l->v[i] = mk_int((int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step));
        return mk_seq(V_LIST, l);
    }
    if (!strcmp(name, "namespace")) {
        jv d = kwargs_dict(r, a, 1, name);
        for (size_t i = 0; i < d.d->n; i++)
            if (d.d->k[i].k == V_STR && d.d->k[i].s[0] == '_')
                fail(&r->c, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'.",
                     d.d->k[i].s);
        d.k = V_NS;
        return d;
    }
    if (!strcmp(name, "dict")) return kwargs_dict(r, a, 1, name);
    if (!strcmp(name, "raise_exception")) {
        static const char *const p[] = {"message"};
        jv x[1];
        bind(r, name, p, 1, a, x);
        jv msg = str_of(&r->c, or_default(x[0], mk_none()));
        snprintf(r->c.err->msg, sizeof r->c.err->msg, "%s", msg.s);
        r->c.err->raised = 1;
        r->c.err->line = r->c.line;
        longjmp(r->c.jb, 1);
    }
    if (!strcmp(name, "strftime_now")) {
        static const char *const p[] = {"format"};
        jv x[1];
        bind(r, name, p, 1, a, x);
        jv f = str_arg(r, x[0], name);
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        char buf[512];
        size_t n = f.n ? strftime(buf, sizeof buf, f.s, &tmv) : 0;
        return mk_strn(&r->c, buf, n);
    }
    fail(&r->c, "'%s' is not callable", name);
    return mk_none();
}

static jv call_value(R *r, jv fn, const args_t *a) {
    switch (fn.k) {
    case V_FUNC: return fn.fn->global ? call_global(r, fn.fn->name, a) : call_method(r, fn.fn->self, fn.fn->name, a);
    case V_MACRO: return exec_macro(r, fn.m, a);
    case V_UNDEF: undef_fail(r, fn); break;
    default: break;
    }
    fail(&r->c, "'%s' object is not callable", type_name(fn));
    return fn;
}

/* ---- evaluation ----------------------------------------------------------------------- */

static jv eval(R *r, const node *x, frame *f);

static args_t eval_args(R *r, const node *x, frame *f, int extra_kw) {
    args_t a = {0};
    vbuf pos = {0};
    for (int i = 0; i < x->nx; i++) vb_push(&r->c, &pos, eval(r, x->xs[i], f));
    if (x->dyn_args) {
        jlist *l = iter_items(r, eval(r, x->dyn_args, f));
        for (size_t i = 0; i < l->n; i++) vb_push(&r->c, &pos, l->v[i]);
    }
    jv dk = x->dyn_kwargs ? eval(r, x->dyn_kwargs, f) : mk_missing();
    if (dk.k != V_MISSING && dk.k != V_DICT) fail(&r->c, "argument after ** must be a mapping, not %s", type_name(dk));
    int nkw = x->ny + (dk.k == V_DICT ? (int)dk.d->n : 0) + extra_kw;
    a.kwn = alloc(&r->c, sizeof(char *) * (size_t)(nkw ? nkw : 1));
    a.kwv = alloc(&r->c, sizeof(jv) * (size_t)(nkw ? nkw : 1));
    for (int i = 0; i < x->ny; i++) a.kwn[a.nkw] = x->names[i], a.kwv[a.nkw++] = eval(r, x->ys[i], f);
    for (size_t i = 0; dk.k == V_DICT && i < dk.d->n; i++) {
        if (dk.d->k[i].k != V_STR) fail(&r->c, "keywords must be strings");
        a.kwn[a.nkw] = dk.d->k[i].s, a.kwv[a.nkw++] = dk.d->v[i];
    }
    a.pos = pos.v;
    a.npos = (int)pos.n;
    return a;
}

static jv eval_filter_chain(R *r, const node *x, frame *f, jv body) {
    jv v = x->obj ? (x->obj->kind == E_FILTER ? eval_filter_chain(r, x->obj, f, body) : eval(r, x->obj, f)) : body;
    args_t a = eval_args(r, x, f, 0);
    r->c.line = x->line;
    return apply_filter(r, x->op, x->name, v, &a);
}

static int cmp_op(R *r, int op, jv a, jv b) {
    switch (op) {
    case OP_EQ: return py_eq(a, b);
    case OP_NE: return !py_eq(a, b);
    case OP_LT: return py_cmp(r, a, b, "<") < 0;
    case OP_LE: return py_cmp(r, a, b, "<=") <= 0;
    case OP_GT: return py_cmp(r, a, b, ">") > 0;
    case OP_GE: return py_cmp(r, a, b, ">=") >= 0;
    case OP_IN: return contains(r, b, a);
    default: return !contains(r, b, a);
    }
}

static jv eval(R *r, const node *x, frame *f) {
    r->c.line = x->line;
    switch (x->kind) {
    case E_CONST: return x->val;
    case E_NAME: {
        jv v;
        if (lookup(f, x->name, &v)) return v;
        return mk_undef(ax_arena_printf(r->c.ar, "'%s' is undefined", x->name));
    }
    case E_LIST:
    case E_TUPLE: {
        jlist *l = mk_jlist(&r->c, (size_t)x->nx);
        for (int i = 0; i < x->nx; i++) l->v[i] = eval(r, x->xs[i], f);
        return mk_seq(x->kind == E_LIST ? V_LIST : V_TUPLE, l);
    }
    case E_DICT: {
        jdict *d = mk_jdict(&r->c);
        for (int i = 0; i < x->nx; i++) {
            jv k = eval(r, x->xs[i], f);
            if (k.k == V_LIST || k.k == V_DICT || k.k == V_NS) fail(&r->c, "unhashable type: '%s'", type_name(k));
            dict_put(r, d, k, eval(r, x->ys[i], f));
        }
        return mk_dictv(V_DICT, d);
    }
    case E_ATTR: {
        jv o = eval(r, x->obj, f);
        r->c.line = x->line;
        return get_attr(r, o, x->name);
    }
    case E_ITEM: {
        jv o = eval(r, x->obj, f), k = eval(r, x->a, f);
        r->c.line = x->line;
        return get_item(r, o, k);
    }
    case E_SLICE: {
        jv o = eval(r, x->obj, f);
        jv a = x->a ? eval(r, x->a, f) : mk_none(), b = x->b ? eval(r, x->b, f) : mk_none(),
           c = x->c ? eval(r, x->c, f) : mk_none();
        r->c.line = x->line;
        return get_slice(r, o, a, b, c);
    }
    case E_CALL: {
        jv fn = eval(r, x->obj, f);
        args_t a = eval_args(r, x, f, 0);
        r->c.line = x->line;
        return call_value(r, fn, &a);
    }
    case E_FILTER: return eval_filter_chain(r, x, f, mk_none());
    case E_TEST: {
        jv v = eval(r, x->obj, f);
        args_t a = eval_args(r, x, f, 0);
        r->c.line = x->line;
        int t = apply_test(r, x->op, x->name, v, &a);
        return mk_bool(x->neg ? !t : t);
    }
    case E_BIN: {
        jv a = eval(r, x->a, f), b = eval(r, x->b, f);
        r->c.line = x->line;
        return arith(r, x->op, a, b);
    }
    case E_NEG:
    case E_POS: {
        jv a = eval(r, x->a, f);
        r->c.line = x->line;
        if (a.k == V_UNDEF) undef_fail(r, a);
        if (!is_num(a)) fail(&r->c, "bad operand type for unary %c: '%s'", x->kind == E_NEG ? '-' : '+', type_name(a));
        if (x->kind == E_POS) return a.k == V_BOOL ? mk_int(a.i) : a;
        if (a.k == V_FLOAT) return mk_float(-a.f);
        if (a.i == INT64_MIN) ck(r, 1, 0);
        return mk_int(-a.i);
    }
    case E_NOT: return mk_bool(!truthy(eval(r, x->a, f)));
    case E_AND: {
        jv a = eval(r, x->a, f);
        return truthy(a) ? eval(r, x->b, f) : a;
    }
    case E_OR: {
        jv a = eval(r, x->a, f);
        return truthy(a) ? a : eval(r, x->b, f);
    }
    case E_CMP: {
        jv a = eval(r, x->a, f);
        for (int i = 0; i < x->nx; i++) {
            jv b = eval(r, x->xs[i], f);
            r->c.line = x->line;
            if (!cmp_op(r, x->ops[i], a, b)) return mk_bool(0);
            a = b;
        }
        return mk_bool(1);
    }
    case E_COND:
        if (truthy(eval(r, x->a, f))) return eval(r, x->b, f);
        return x->c ? eval(r, x->c, f) : mk_undef("the inline if expression had no else branch");
    case E_CONCAT: {
        sbuf b = {0};
        for (int i = 0; i < x->nx; i++) to_str(&r->c, &b, eval(r, x->xs[i], f));
        return sb_val(&r->c, &b);
    }
    default: break;
    }
    fail(&r->c, "internal error: node %d is not an expression", x->kind);
    return mk_none();
}

/* ---- statements ------------------------------------------------------------------------ */

enum { FLOW_NEXT, FLOW_BREAK, FLOW_CONTINUE };

static int exec_body(R *r, node *const *body, int n, frame *f);

static void emit(R *r, const char *s, size_t n) {
    if (r->out->n + n > MAX_OUTPUT) fail(&r->c, "the template's output is longer than %u MiB", MAX_OUTPUT >> 20);
    sb_put(&r->c, r->out, s, n);
}

static void assign(R *r, const node *t, jv v, frame *f) {
    if (t->kind == T_NAME) {
        fset(r, f, t->name, v);
    } else if (t->kind == T_NSATTR) {
        jv ns;
        if (!lookup(f, t->a->name, &ns) || ns.k != V_NS) fail(&r->c, "cannot assign attribute on non-namespace object");
        if (t->name[0] == '_')
            fail(&r->c, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'.", t->name);
        dict_put(r, ns.d, mk_str(&r->c, t->name), v);
    } else {
        jlist *l = iter_items(r, v);
        if ((int)l->n != t->nx)
            fail(&r->c, (int)l->n < t->nx ? "not enough values to unpack (expected %d, got %zu)"
                                          : "too many values to unpack (expected %d, got %zu)", t->nx, l->n);
        for (int i = 0; i < t->nx; i++) assign(r, t->xs[i], l->v[i], f);
    }
}

static jv render_to_str(R *r, node *const *body, int n, frame *f) {
    sbuf b = {0}, *saved = r->out;
    r->out = &b;
    exec_body(r, body, n, f);
    r->out = saved;
    return sb_val(&r->c, &b);
}

static jv exec_macro(R *r, jmacro *m, const args_t *a) {
    const node *d = m->def;
    if (++r->calls > MAX_CALL_DEPTH) fail(&r->c, "maximum recursion depth exceeded (%d nested macro calls)", MAX_CALL_DEPTH);
    frame *f = new_frame(r, m->closure);
    int np = d->nnames;
    vbuf extra = {0};
    jdict *kw = mk_jdict(&r->c);
    jv *vals = alloc(&r->c, sizeof(jv) * (size_t)(np ? np : 1));
    for (int i = 0; i < np; i++) vals[i] = mk_missing();
    for (int i = 0; i < a->npos; i++) {
        if (i < np) vals[i] = a->pos[i];
        else vb_push(&r->c, &extra, a->pos[i]);
    }
    jv caller = m->caller;
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(d->names[i], a->kwn[k])) i++;
        if (i < np) vals[i] = a->kwv[k];
        else if (!strcmp(a->kwn[k], "caller")) caller = a->kwv[k];
        else dict_put(r, kw, mk_str(&r->c, a->kwn[k]), a->kwv[k]);
    }
    for (int i = 0; i < np; i++) {
        if (vals[i].k == V_MISSING)
            vals[i] = d->ys && d->ys[i] ? eval(r, d->ys[i], f)
                                        : mk_undef(ax_arena_printf(r->c.ar, "parameter '%s' was not provided", d->names[i]));
        fset(r, f, d->names[i], vals[i]);
    }
    fset(r, f, "varargs", vb_list(&r->c, &extra, V_TUPLE, 0));
    fset(r, f, "kwargs", mk_dictv(V_DICT, kw));
    if (caller.k != V_UNDEF) fset(r, f, "caller", caller);
    jv out = render_to_str(r, d->xs, d->nx, f);
    r->calls--;
    return out;
}

static int exec_for(R *r, const node *x, frame *f) {
    jv it = eval(r, x->a, f);
    jlist *items = iter_items(r, it);
    if (x->b) { /* for ... if cond: the items it keeps */
        vbuf kept = {0};
        for (size_t i = 0; i < items->n; i++) {
            frame *g = new_frame(r, f);
            assign(r, x->obj, items->v[i], g);
            if (truthy(eval(r, x->b, g))) vb_push(&r->c, &kept, items->v[i]);
        }
        items = vb_list(&r->c, &kept, V_LIST, 0).l;
    }
    if (!items->n) return x->ny ? exec_body(r, x->ys, x->ny, new_frame(r, f)) : FLOW_NEXT;
    loopstate *st = alloc(&r->c, sizeof *st);
    st->items = items;
    frame *g = new_frame(r, f); /* one scope, emptied for each iteration */
    for (size_t i = 0; i < items->n; i++) {
        if (++r->iters > MAX_ITERS) fail(&r->c, "more than %ld loop iterations", MAX_ITERS);
        g->n = 0;
        r->c.line = x->line;
        assign(r, x->obj, items->v[i], g);
        jloop *lp = alloc(&r->c, sizeof *lp);
        lp->st = st;
        lp->i = (int64_t)i;
        jv lv = {V_LOOP, 0, {.lp = lp}};
        fset(r, g, "loop", lv);
        int flow = exec_body(r, x->xs, x->nx, g);
        if (flow == FLOW_BREAK) break;
    }
    return FLOW_NEXT;
}

static int exec_body(R *r, node *const *body, int n, frame *f) {
    for (int i = 0; i < n; i++) {
        const node *x = body[i];
        r->c.line = x->line;
        switch (x->kind) {
        case N_DATA: emit(r, x->val.s, x->val.n); break;
        case N_OUTPUT: {
            jv v = eval(r, x->a, f);
            if (v.k == V_STR) emit(r, v.s, v.n);
            else {
                sbuf b = {0};
                to_str(&r->c, &b, v);
                emit(r, b.p ? b.p : "", b.n);
            }
            break;
        }
        case N_IF: { /* an elif is an N_IF as the whole else body */
            int flow = truthy(eval(r, x->a, f)) ? exec_body(r, x->xs, x->nx, f) : exec_body(r, x->ys, x->ny, f);
            if (flow != FLOW_NEXT) return flow;
            break;
        }
        case N_FOR: exec_for(r, x, f); break;
        case N_SET: assign(r, x->obj, eval(r, x->a, f), f); break;
        case N_SETBLOCK: {
            jv v = render_to_str(r, x->xs, x->nx, f);
            if (x->a) v = eval_filter_chain(r, x->a, f, v);
            assign(r, x->obj, v, f);
            break;
        }
        case N_MACRO: {
            jmacro *m = alloc(&r->c, sizeof *m);
            m->def = x;
            m->closure = f;
            m->caller = mk_undef(NULL);
            jv v = {V_MACRO, 0, {.m = m}};
            fset(r, f, x->name, v);
            break;
        }
        case N_CALLBLOCK: {
            jmacro *m = alloc(&r->c, sizeof *m);
            m->def = x;
            m->closure = f;
            m->caller = mk_undef(NULL);
            jv caller = {V_MACRO, 0, {.m = m}};
            const node *cl = x->a;
            jv fn = eval(r, cl->obj, f);
            args_t a = eval_args(r, cl, f, 1);
            a.kwn[a.nkw] = "caller", a.kwv[a.nkw++] = caller;
            r->c.line = x->line;
            jv v = str_of(&r->c, call_value(r, fn, &a));
            emit(r, v.s, v.n);
            break;
        }
        case N_FILTERBLOCK: {
            jv v = str_of(&r->c, eval_filter_chain(r, x->a, f, render_to_str(r, x->xs, x->nx, f)));
            emit(r, v.s, v.n);
            break;
        }
        case N_WITH: {
            frame *g = new_frame(r, f);
            for (int k = 0; k < x->ny; k++) assign(r, x->obj->xs[k], eval(r, x->ys[k], f), g);
            int flow = exec_body(r, x->xs, x->nx, g);
            if (flow != FLOW_NEXT) return flow;
            break;
        }
        case N_BREAK: return FLOW_BREAK;
        case N_CONTINUE: return FLOW_CONTINUE;
        default: fail(&r->c, "internal error: node %d is not a statement", x->kind);
        }
    }
    return FLOW_NEXT;
}

/* ---- JSON in, render -------------------------------------------------------------------- */

static jv from_json(R *r, const json_t *j, int depth) {
    if (depth > 200) fail(&r->c, "the template's variables are nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jdict *d = mk_jdict(&r->c);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) dict_put(r, d, mk_str(&r->c, k), from_json(r, v, depth + 1));
        return mk_dictv(V_DICT, d);
    }
    case JSON_ARRAY: {
        jlist *l = mk_jlist(&r->c, json_array_size(j));
        for (size_t i = 0; i < l->n; i++) l->v[i] = from_json(r, json_array_get(j, i), depth + 1);
        return mk_seq(V_LIST, l);
    }
    case JSON_STRING: return mk_strn(&r->c, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return mk_int(json_integer_value(j));
    case JSON_REAL: return mk_float(json_real_value(j));
    case JSON_TRUE: return mk_bool(1);
    case JSON_FALSE: return mk_bool(0);
    default: return mk_none();
    }
}

int jinja_render(const jinja_tpl *t, const json_t *vars, ax_buf *out, jinja_err *err) {
    memset(err, 0, sizeof *err);
    R r;
    memset(&r, 0, sizeof r);
    r.c.ar = ax_arena_create();
    r.c.err = err;
    sbuf body = {0};
    r.out = &body;
    int rc = 0;
    if (setjmp(r.c.jb)) {
        rc = -1;
    } else {
        r.globals = new_frame(&r, NULL);
        static const char *const globals[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};
        for (size_t i = 0; i < sizeof globals / sizeof *globals; i++) {
            jfunc *fn = alloc(&r.c, sizeof *fn);
            fn->name = globals[i];
            fn->global = 1;
            jv v = {V_FUNC, 0, {.fn = fn}};
            fset(&r, r.globals, globals[i], v);
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vars, k, v) fset(&r, r.globals, ax_arena_strdup(r.c.ar, k), from_json(&r, v, 0));
        exec_body(&r, t->body, t->nbody, new_frame(&r, r.globals));
    }
    if (body.n) ax_buf_append(out, body.p, body.n);
    ax_arena_destroy(r.c.ar);
    return rc;
}
