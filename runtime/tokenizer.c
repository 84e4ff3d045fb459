#include "runtime/tokenizer.h"

#include <jansson.h>
#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

/* ---- maps ------------------------------------------------------------------ */

/* string -> id, open addressing; keys live in the tokenizer's arena */
typedef struct {
    const char *s;
    uint32_t len;
    int32_t id;
} strent;
typedef struct {
    strent *e;
    size_t cap, n;
} strmap;

static void strmap_init(strmap *m, size_t want) {
    size_t cap = 64;
    while (cap < want * 2) cap <<= 1;
    m->e = calloc(cap, sizeof *m->e);
    if (!m->e) abort();
    m->cap = cap;
    m->n = 0;
}

static strent *strmap_slot(const strmap *m, const char *s, size_t len) {
    size_t i = (size_t)XXH3_64bits(s, len) & (m->cap - 1);
    for (;;) {
        strent *e = &m->e[i];
        if (!e->s || (e->len == len && !memcmp(e->s, s, len))) return e;
        i = (i + 1) & (m->cap - 1);
    }
}

static int32_t strmap_get(const strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    const strent *e = strmap_slot(m, s, len);
    return e->s ? e->id : -1;
}

/* Inserts or replaces; the map never grows past half full (sized up front). */
static void strmap_put(strmap *m, const char *s, size_t len, int32_t id) {
    if ((m->n + 1) * 2 > m->cap) {
        strmap old = *m;
        strmap_init(m, old.n + 1);
        for (size_t i = 0; i < old.cap; i++)
            if (old.e[i].s) *strmap_slot(m, old.e[i].s, old.e[i].len) = old.e[i], m->n++;
        free(old.e);
    }
    strent *e = strmap_slot(m, s, len);
    if (!e->s) m->n++;
    e->s = s;
    e->len = (uint32_t)len;
    e->id = id;
}

/* (left id, right id) -> (merge rank, merged id) */
typedef struct {
    uint64_t key; /* UINT64_MAX = empty */
    int32_t rank, id;
} pairent;
typedef struct {
    pairent *e;
    size_t cap;
} pairmap;

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t pair_hash(uint64_t k) { return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20); }

static const pairent *pairmap_get(const pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t k = pair_key(a, b);
    for (size_t i = pair_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->e[i].key == k) return &m->e[i];
        if (m->e[i].key == UINT64_MAX) return NULL;
    }
}

/* Ids index a table: a corrupt file must not make it gigabytes. Real
 * vocabularies are below 300k. */
#define RT_TOK_MAX_ID (1 << 24)

/* ---- the tokenizer ------------------------------------------------------- */

typedef enum { N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWER, N_PREPEND, N_REPLACE, N_STRIP } norm_kind;
typedef struct {
    norm_kind kind;
    const char *a, *b; /* Prepend: a; Replace: pattern a -> content b */
    int left, right;   /* Strip */
} norm_step;

typedef enum { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS } split_behavior;
typedef enum { P_SPLIT, P_BYTELEVEL, P_METASPACE, P_DIGITS } pre_kind;
typedef struct {
    pre_kind kind;
    regex_t *re;            /* Split with a Regex; ByteLevel with use_regex */
    const char *literal;    /* Split with a String */
    split_behavior behavior;
    int invert;
    int add_prefix_space;   /* ByteLevel */
    const char *replacement; /* Metaspace (UTF-8 of one char) */
    int prepend;            /* Metaspace: 0 never, 1 first, 2 always */
    int split;              /* Metaspace */
    int individual;         /* Digits */
} pre_step;

typedef struct {
    const char *s;
    uint32_t len;
    int32_t id;
    int lstrip, rstrip;
} added_tok;

typedef struct {
    int32_t rank, pos, id;
} heap_ent;

typedef struct {
    int32_t id;
    int32_t prev, next;
    int alive;
} bpe_sym;

typedef struct {
    uint64_t h;
    uint32_t koff, klen, ioff, ilen;
    int used;
} cache_ent;

struct rt_tokenizer {
    ax_arena *ar;
    char *path;
    strmap vocab;
    pairmap merges;
    const char **tok_str; /* id -> string (vocab and added), NULL for gaps */
    uint32_t *tok_len;
    int64_t nids;
    int64_t model_n;      /* entries of the model's vocab as loaded (tokenizers' model.get_vocab_size()) */
    added_tok *added;
    int nadded;
    uint8_t added_first[256];
    norm_step *norm;
    int nnorm;
    pre_step *pre;
    int npre;
    int bytelevel;          /* the byte-to-char map is applied (pre-tokenizer or decoder) */
    int metaspace_decode;   /* replace U+2581 by a space when rendering pieces */
    int ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;
    int32_t *prefix, *suffix;
    int nprefix, nsuffix;
    int trim_offsets, trim_prefix_space; /* a ByteLevel post-processor's: offsets lose leading/trailing spaces */
    /* per-encode scratch */
    ax_buf scratch, pieces, syms, heap, tmp;
    /* word cache */
    cache_ent *cache;
    size_t cache_cap, cache_n;
    ax_buf cache_keys, cache_ids;
};

/* GPT-2's byte <-> char map: printable bytes map to themselves, the others to
 * U+0100 upward in byte order. */
static uint32_t byte_char[256];
static int16_t char_byte[512];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static OnigEncoding onig_encs[1];

static void global_init(void) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_char[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int c = 0; c < 512; c++) char_byte[c] = -1;
    for (int b = 0; b < 256; b++) char_byte[byte_char[b]] = (int16_t)b;
    onig_encs[0] = ONIG_ENCODING_UTF8;
    onig_initialize(onig_encs, 1);
}

int rt_re_match(const char *pattern, const char *text, char *err, size_t errcap) {
    pthread_once(&init_once, global_init);
    regex_t *re = NULL;
    OnigErrorInfo einfo;
    int r = onig_new(&re, (const UChar *)pattern, (const UChar *)pattern + strlen(pattern), ONIG_OPTION_NONE,
                     ONIG_ENCODING_UTF8, ONIG_SYNTAX_PYTHON, &einfo);
    if (r != ONIG_NORMAL) {
        UChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, r, &einfo);
        if (err && errcap) snprintf(err, errcap, "%s", (const char *)msg);
        return -1;
    }
    OnigRegion *reg = onig_region_new();
    const UChar *s = (const UChar *)text, *e = s + strlen(text);
    int m = onig_match(re, s, e, s, reg, ONIG_OPTION_NONE);
    onig_region_free(reg, 1);
    onig_free(re);
    return m >= 0;
}

static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- loading ------------------------------------------------------------- */

typedef struct {
    rt_tokenizer *t;
    ax_diag *d;
    const char *file;
    int bad;
} loader;

static void lerr(loader *L, const char *key, const char *fmt, const char *what) {
    char loc[600];
    snprintf(loc, sizeof loc, "%s: %s", L->file, key);
    ax_error(L->d, loc, fmt, what);
    L->bad = 1;
}

static const char *jstr(loader *L, const json_t *o, const char *key, const char *where) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        char k[300];
        snprintf(k, sizeof k, "%s.%s", where, key);
        lerr(L, k, "expected a string%s", "");
        return NULL;
    }
    return ax_arena_strndup(L->t->ar, json_string_value(v), json_string_length(v));
}

static int jbool(const json_t *o, const char *key, int dflt) {
    const json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static regex_t *compile_re(loader *L, const char *pat, size_t len, const char *where) {
    regex_t *re = NULL;
    OnigErrorInfo einfo;
    int r = onig_new(&re, (const UChar *)pat, (const UChar *)pat + len, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                     ONIG_SYNTAX_DEFAULT, &einfo);
    if (r != ONIG_NORMAL) {
        UChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, r, &einfo);
        lerr(L, where, "the regex does not compile: %s", (const char *)msg);
        return NULL;
    }
    return re;
}

/* A pipeline step's "type"; NULL when there is nothing more to do: the step
 * is null, it was an error, or it was a "Sequence", whose items (n[list])
 * went through `each` here. */
static const char *step_type(loader *L, const json_t *n, const char *where, const char *list,
                             void (*each)(loader *, const json_t *, const char *)) {
    if (!n || json_is_null(n)) return NULL;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) {
        lerr(L, where, "expected an object with a \"type\"%s", "");
        return NULL;
    }
    if (strcmp(type, "Sequence")) return type;
    size_t i;
    const json_t *x;
    char w[300];
    json_array_foreach(json_object_get(n, list), i, x) {
        snprintf(w, sizeof w, "%s.%s[%zu]", where, list, i);
        each(L, x, w);
    }
    return NULL;
}

static void load_normalizer(loader *L, const json_t *n, const char *where) {
    const char *type = step_type(L, n, where, "normalizers", load_normalizer);
    rt_tokenizer *t = L->t;
    if (!type) return;
    norm_step s = {0};
    if (!strcmp(type, "NFC")) s.kind = N_NFC;
    else if (!strcmp(type, "NFD")) s.kind = N_NFD;
    else if (!strcmp(type, "NFKC")) s.kind = N_NFKC;
    else if (!strcmp(type, "NFKD")) s.kind = N_NFKD;
    else if (!strcmp(type, "Lowercase")) s.kind = N_LOWER;
    else if (!strcmp(type, "Prepend")) {
        s.kind = N_PREPEND;
        if (!(s.a = jstr(L, n, "prepend", where))) return;
    } else if (!strcmp(type, "Replace")) {
        s.kind = N_REPLACE;
        const json_t *p = json_object_get(n, "pattern");
        const json_t *lit = json_object_get(p, "String");
        if (!json_is_string(lit)) {
            lerr(L, where, "Replace: only a {\"String\": ...} pattern is supported%s", "");
            return;
        }
        s.a = ax_arena_strndup(t->ar, json_string_value(lit), json_string_length(lit));
        if (!s.a[0]) {
            lerr(L, where, "Replace: the pattern is empty%s", "");
            return;
        }
        if (!(s.b = jstr(L, n, "content", where))) return;
    } else if (!strcmp(type, "Strip")) {
        s.kind = N_STRIP;
        s.left = jbool(n, "strip_left", 1);
        s.right = jbool(n, "strip_right", 1);
    } else {
        lerr(L, where,
             "normalizer \"%s\" is not supported (axo reads NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip "
             "and Sequence)",
             type);
        return;
    }
    t->norm = realloc(t->norm, sizeof *t->norm * (size_t)(t->nnorm + 1));
    if (!t->norm) abort();
    t->norm[t->nnorm++] = s;
}

static int parse_behavior(loader *L, const json_t *o, const char *where, split_behavior *b) {
    const char *s = json_string_value(json_object_get(o, "behavior"));
    if (!s) s = "Isolated";
    if (!strcmp(s, "Removed")) *b = B_REMOVED;
    else if (!strcmp(s, "Isolated")) *b = B_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious")) *b = B_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext")) *b = B_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous")) *b = B_CONTIGUOUS;
    else {
        lerr(L, where, "unknown split behavior \"%s\"", s);
        return -1;
    }
    return 0;
}

static void load_pretok(loader *L, const json_t *n, const char *where) {
    const char *type = step_type(L, n, where, "pretokenizers", load_pretok);
    rt_tokenizer *t = L->t;
    if (!type) return;
    pre_step s = {0};
    if (!strcmp(type, "Split")) {
        s.kind = P_SPLIT;
        const json_t *p = json_object_get(n, "pattern");
        const json_t *re = json_object_get(p, "Regex"), *lit = json_object_get(p, "String");
        if (json_is_string(re)) {
            if (!(s.re = compile_re(L, json_string_value(re), json_string_length(re), where))) return;
        } else if (json_is_string(lit) && json_string_length(lit)) {
            s.literal = ax_arena_strndup(t->ar, json_string_value(lit), json_string_length(lit));
        } else {
            lerr(L, where, "Split: expected pattern {\"Regex\": ...} or {\"String\": ...}%s", "");
            return;
        }
        if (parse_behavior(L, n, where, &s.behavior)) {
            if (s.re) onig_free(s.re);
            return;
        }
        s.invert = jbool(n, "invert", 0);
    } else if (!strcmp(type, "ByteLevel")) {
        s.kind = P_BYTELEVEL;
        s.add_prefix_space = jbool(n, "add_prefix_space", 1);
        if (jbool(n, "use_regex", 1) && !(s.re = compile_re(L, GPT2_RE, sizeof GPT2_RE - 1, where))) return;
        t->bytelevel = 1;
    } else if (!strcmp(type, "Metaspace")) {
        s.kind = P_METASPACE;
        const char *r = json_string_value(json_object_get(n, "replacement"));
        s.replacement = ax_arena_strdup(t->ar, r ? r : "\xe2\x96\x81");
        const char *ps = json_string_value(json_object_get(n, "prepend_scheme"));
        if (ps) s.prepend = !strcmp(ps, "never") ? 0 : !strcmp(ps, "first") ? 1 : 2;
        else s.prepend = jbool(n, "add_prefix_space", 1) ? 2 : 0;
        s.split = jbool(n, "split", 1);
        t->metaspace_decode = 1;
    } else if (!strcmp(type, "Digits")) {
        s.kind = P_DIGITS;
        s.individual = jbool(n, "individual_digits", 0);
    } else {
        lerr(L, where,
             "pre-tokenizer \"%s\" is not supported (axo reads Split, ByteLevel, Metaspace, Digits and Sequence)",
             type);
        return;
    }
    t->pre = realloc(t->pre, sizeof *t->pre * (size_t)(t->npre + 1));
    if (!t->pre) abort();
    t->pre[t->npre++] = s;
}

static void add_ids(loader *L, const json_t *ids, int32_t **arr, int *n, const char *where) {
    size_t i;
    const json_t *x;
    json_array_foreach(ids, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= RT_TOK_MAX_ID) {
            lerr(L, where, "expected token ids%s", "");
            return;
        }
        *arr = realloc(*arr, sizeof **arr * (size_t)(*n + 1));
        if (!*arr) abort();
        (*arr)[(*n)++] = (int32_t)json_integer_value(x);
    }
}

static void load_post(loader *L, const json_t *n, const char *where) {
    const char *type = step_type(L, n, where, "processors", load_post);
    rt_tokenizer *t = L->t;
    if (!type) return;
    if (!strcmp(type, "ByteLevel")) { /* offsets only: trim_offsets and add_prefix_space (tokenizers' defaults: true) */
        const json_t *tr = json_object_get(n, "trim_offsets"), *ap = json_object_get(n, "add_prefix_space");
        t->trim_offsets = tr ? json_is_true(tr) : 1;
        t->trim_prefix_space = ap ? json_is_true(ap) : 1;
        return;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const json_t *single = json_object_get(n, "single"), *sp = json_object_get(n, "special_tokens");
        size_t i;
        const json_t *x;
        int seen_a = 0;
        json_array_foreach(single, i, x) {
            const json_t *st = json_object_get(x, "SpecialToken");
            if (json_object_get(x, "Sequence")) {
                seen_a = 1;
                continue;
            }
            const char *name = json_string_value(json_object_get(st, "id"));
            const json_t *spt = name ? json_object_get(sp, name) : NULL;
            if (!spt) {
                lerr(L, where, "TemplateProcessing: special token \"%s\" is not in special_tokens", name ? name : "?");
                return;
            }
            if (seen_a) add_ids(L, json_object_get(spt, "ids"), &t->suffix, &t->nsuffix, where);
            else add_ids(L, json_object_get(spt, "ids"), &t->prefix, &t->nprefix, where);
        }
        if (!seen_a) lerr(L, where, "TemplateProcessing: \"single\" has no Sequence%s", "");
        return;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        const json_t *cls = json_object_get(n, "cls"), *sep = json_object_get(n, "sep");
        json_t *c = json_array(), *s = json_array();
        json_array_append(c, json_array_get(cls, 1));
        json_array_append(s, json_array_get(sep, 1));
        add_ids(L, c, &t->prefix, &t->nprefix, where);
        add_ids(L, s, &t->suffix, &t->nsuffix, where);
        json_decref(c);
        json_decref(s);
        return;
    }
    lerr(L, where, "post-processor \"%s\" is not supported (axo reads TemplateProcessing, ByteLevel, Sequence)",
         type);
}

static void set_token(rt_tokenizer *t, int32_t id, const char *s, size_t len) {
    if (id >= t->nids) {
        int64_t n = t->nids ? t->nids : 1024;
        while (n <= id) n *= 2;
        t->tok_str = realloc(t->tok_str, sizeof *t->tok_str * (size_t)n);
        t->tok_len = realloc(t->tok_len, sizeof *t->tok_len * (size_t)n);
        if (!t->tok_str || !t->tok_len) abort();
        for (int64_t i = t->nids; i < n; i++) t->tok_str[i] = NULL, t->tok_len[i] = 0;
        t->nids = n;
    }
    t->tok_str[id] = s;
    t->tok_len[id] = (uint32_t)len;
}

static void load_model(loader *L, const json_t *m) {
    rt_tokenizer *t = L->t;
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type || strcmp(type, "BPE")) {
        lerr(L, "model.type",
             "model type \"%s\" is not supported: axo reads BPE tokenizers (Llama 2/3, Mistral, Qwen, GPT-2 families)",
             type ? type : "(none)");
        return;
    }
    const json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0) {
        lerr(L, "model.dropout", "BPE dropout is not supported (expected null)%s", "");
        return;
    }
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(m, keys[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v))) {
            char w[64];
            snprintf(w, sizeof w, "model.%s", keys[k]);
            lerr(L, w, "is not supported (expected null)%s", "");
            return;
        }
    }
    t->ignore_merges = jbool(m, "ignore_merges", 0);
    t->byte_fallback = jbool(m, "byte_fallback", 0);
    t->fuse_unk = jbool(m, "fuse_unk", 0);
    const json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab)) {
        lerr(L, "model.vocab", "expected an object {token: id}%s", "");
        return;
    }
    strmap_init(&t->vocab, json_object_size(vocab) + 1024);
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)vocab, k, klen, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= RT_TOK_MAX_ID) {
            char w[128];
            snprintf(w, sizeof w, "model.vocab[\"%.60s\"]", k);
            lerr(L, w, "expected a token id in [0, 16777216)%s", "");
            return;
        }
        const char *s = ax_arena_strndup(t->ar, k, klen);
        int32_t id = (int32_t)json_integer_value(v);
        strmap_put(&t->vocab, s, klen, id);
        set_token(t, id, s, klen);
    }
    const json_t *unk = json_object_get(m, "unk_token");
    t->unk_id = -1;
    if (json_is_string(unk)) {
        t->unk_id = strmap_get(&t->vocab, json_string_value(unk), json_string_length(unk));
        if (t->unk_id < 0) lerr(L, "model.unk_token", "\"%s\" is not in the vocab", json_string_value(unk));
    }
    const json_t *merges = json_object_get(m, "merges");
    if (!json_is_array(merges)) {
        lerr(L, "model.merges", "expected a list of merges%s", "");
        return;
    }
    size_t nm = json_array_size(merges), cap = 64;
    while (cap < nm * 2 + 2) cap <<= 1;
    t->merges.e = malloc(sizeof *t->merges.e * cap);
    if (!t->merges.e) abort();
    for (size_t i = 0; i < cap; i++) t->merges.e[i].key = UINT64_MAX;
    t->merges.cap = cap;
    ax_buf cat = {0};
    for (size_t r = 0; r < nm; r++) {
        const json_t *x = json_array_get(merges, r);
        const char *a, *b;
        size_t alen, blen;
        if (json_is_string(x)) { /* "a b" */
            a = json_string_value(x);
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) goto bad_merge;
            alen = (size_t)(sp - a);
            b = sp + 1;
            blen = strlen(b);
        } else if (json_is_array(x) && json_array_size(x) == 2 && json_is_string(json_array_get(x, 0)) &&
                   json_is_string(json_array_get(x, 1))) {
            a = json_string_value(json_array_get(x, 0));
            alen = json_string_length(json_array_get(x, 0));
            b = json_string_value(json_array_get(x, 1));
            blen = json_string_length(json_array_get(x, 1));
        } else {
            goto bad_merge;
        }
        int32_t ia = strmap_get(&t->vocab, a, alen), ib = strmap_get(&t->vocab, b, blen);
        cat.len = 0;
        ax_buf_append(&cat, a, alen);
        ax_buf_append(&cat, b, blen);
        int32_t ic = strmap_get(&t->vocab, cat.data, cat.len);
        if (ia < 0 || ib < 0 || ic < 0) {
            char w[64];
            snprintf(w, sizeof w, "model.merges[%zu]", r);
            lerr(L, w, "a token of this merge (or their concatenation) is not in the vocab%s", "");
            break;
        }
        uint64_t key = pair_key(ia, ib);
        size_t i = pair_hash(key) & (cap - 1);
        while (t->merges.e[i].key != UINT64_MAX && t->merges.e[i].key != key) i = (i + 1) & (cap - 1);
        if (t->merges.e[i].key == UINT64_MAX) { /* the first (lowest) rank wins, as in `tokenizers` */
            t->merges.e[i].key = key;
            t->merges.e[i].rank = (int32_t)r;
            t->merges.e[i].id = ic;
        }
        continue;
    bad_merge : {
        char w[64];
        snprintf(w, sizeof w, "model.merges[%zu]", r);
        lerr(L, w, "expected \"a b\" or [\"a\", \"b\"]%s", "");
        break;
    }
    }
    ax_buf_free(&cat);
}

/* Fills one added token (a non-empty string) and its entry in the id table. */
static void set_added(rt_tokenizer *t, added_tok *at, const char *s, size_t len, int32_t id, int lstrip, int rstrip) {
    at->s = ax_arena_strndup(t->ar, s, len);
    at->len = (uint32_t)len;
    at->id = id;
    at->lstrip = lstrip;
    at->rstrip = rstrip;
    t->added_first[(uint8_t)at->s[0]] = 1;
    set_token(t, at->id, at->s, at->len);
}

static void load_added(loader *L, const json_t *a) {
    rt_tokenizer *t = L->t;
    if (!a || json_is_null(a)) return;
    size_t i;
    const json_t *x;
    t->added = calloc(json_array_size(a) + 1, sizeof *t->added);
    if (!t->added) abort();
    json_array_foreach(a, i, x) {
        char w[64];
        snprintf(w, sizeof w, "added_tokens[%zu]", i);
        const json_t *c = json_object_get(x, "content"), *id = json_object_get(x, "id");
        if (!json_is_string(c) || !json_string_length(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= RT_TOK_MAX_ID) {
            lerr(L, w, "expected {\"id\": N, \"content\": \"...\"}%s", "");
            return;
        }
        if (jbool(x, "single_word", 0)) {
            lerr(L, w, "single_word added tokens are not supported%s", "");
            return;
        }
        set_added(t, &t->added[t->nadded++], json_string_value(c), json_string_length(c), (int32_t)json_integer_value(id),
                  jbool(x, "lstrip", 0), jbool(x, "rstrip", 0));
    }
}

/* What rt_tok_piece must undo: the byte-level map, or SentencePiece's U+2581
 * for spaces (a Metaspace decoder, or a Replace of it). */
static void scan_decoder(rt_tokenizer *t, const json_t *dec) {
    const char *dt = json_string_value(json_object_get(dec, "type"));
    if (!dt) return;
    if (!strcmp(dt, "ByteLevel")) t->bytelevel = 1;
    if (!strcmp(dt, "Metaspace")) t->metaspace_decode = 1;
    if (!strcmp(dt, "Replace")) {
        const char *p = json_string_value(json_object_get(json_object_get(dec, "pattern"), "String"));
        if (p && !strcmp(p, "\xe2\x96\x81")) t->metaspace_decode = 1;
    }
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(dec, "decoders"), i, x) scan_decoder(t, x);
}

rt_tokenizer *rt_tok_load(const char *path, ax_diag *d) {
    pthread_once(&init_once, global_init);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        char loc[600];
        ax_error(d, ax_loc(loc, sizeof loc, path, jerr.line, jerr.column), "cannot read the tokenizer: %s", jerr.text);
        return NULL;
    }
    rt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->ar = ax_arena_create();
    t->path = ax_arena_strdup(t->ar, path);
    t->unk_id = -1;
    loader L = {t, d, path, 0};
    if (!json_is_object(root)) lerr(&L, "(top)", "expected a JSON object%s", "");
    else {
        load_model(&L, json_object_get(root, "model"));
        if (!L.bad) load_added(&L, json_object_get(root, "added_tokens"));
        if (!L.bad) load_normalizer(&L, json_object_get(root, "normalizer"), "normalizer");
        if (!L.bad) load_pretok(&L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer");
        if (!L.bad) load_post(&L, json_object_get(root, "post_processor"), "post_processor");
        scan_decoder(t, json_object_get(root, "decoder"));
    }
    json_decref(root);
    if (L.bad) {
        rt_tok_free(t);
        return NULL;
    }
    for (int i = 0; i < t->nprefix; i++)
        if (t->prefix[i] >= t->nids || !t->tok_str[t->prefix[i]]) L.bad = 1;
    for (int i = 0; i < t->nsuffix; i++)
        if (t->suffix[i] >= t->nids || !t->tok_str[t->suffix[i]]) L.bad = 1;
    if (L.bad) {
        lerr(&L, "post_processor", "a special token id is in neither the vocab nor added_tokens%s", "");
        rt_tok_free(t);
        return NULL;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < t->nids; i++)
        if (t->tok_str[i]) n = i + 1;
    t->nids = n;
    t->model_n = (int64_t)t->vocab.n;
    return t;
}

void rt_tok_free(rt_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->npre; i++)
        if (t->pre[i].re) onig_free(t->pre[i].re);
    free(t->pre);
    free(t->norm);
    free(t->added);
    free(t->vocab.e);
    free(t->merges.e);
    free(t->tok_str);
    free(t->tok_len);
    free(t->prefix);
    free(t->suffix);
    free(t->cache);
    ax_buf_free(&t->scratch);
    ax_buf_free(&t->pieces);
    ax_buf_free(&t->syms);
    ax_buf_free(&t->heap);
    ax_buf_free(&t->tmp);
    ax_buf_free(&t->cache_keys);
    ax_buf_free(&t->cache_ids);
    ax_arena_destroy(t->ar);
    free(t);
}

int32_t rt_tok_id(const rt_tokenizer *t, const char *token) {
    size_t len = strlen(token);
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].len == len && !memcmp(t->added[i].s, token, len)) return t->added[i].id;
    return strmap_get(&t->vocab, token, len);
}

int32_t rt_tok_add(rt_tokenizer *t, const char *token, int *fresh) {
    size_t len = strlen(token);
    if (fresh) *fresh = 0;
    if (!len) return -1; /* tokenizers skips an empty token */
    int32_t max_added = -1;
    for (int i = 0; i < t->nadded; i++) {
        if (t->added[i].len == len && !memcmp(t->added[i].s, token, len)) return t->added[i].id;
        if (t->added[i].id > max_added) max_added = t->added[i].id;
    }
    int32_t id = strmap_get(&t->vocab, token, len);
    if (id < 0) {
        const int32_t model_n = (int32_t)t->model_n;
        id = max_added >= model_n ? max_added + 1 : model_n;
        if (fresh) *fresh = 1;
    }
    added_tok *grown = realloc(t->added, sizeof *t->added * (size_t)(t->nadded + 1));
    if (!grown) abort();
    t->added = grown;
    int64_t n = t->nids;
    set_added(t, &t->added[t->nadded++], token, len, id, 0, 0); /* may grow the id table past the last id: */
    t->nids = n > id + 1 ? n : id + 1;                         /* keep nids = last id + 1 */
    return id;
}

int rt_tok_override(rt_tokenizer *t, int32_t id, const char *token) {
    added_tok *at = NULL;
    for (int i = 0; i < t->nadded && !at; i++)
        if (t->added[i].id == id) at = &t->added[i];
    if (!at) return -1;
    size_t len = strlen(token);
    strent *old = t->vocab.cap ? strmap_slot(&t->vocab, at->s, at->len) : NULL;
    if (old && old->s && old->id == id) old->id = -1; /* the model vocab's entry is renamed too */
    at->s = ax_arena_strndup(t->ar, token, len);
    at->len = (uint32_t)len;
    if (old && old->s) strmap_put(&t->vocab, at->s, at->len, id);
    if (len) t->added_first[(uint8_t)at->s[0]] = 1;
    t->tok_str[id] = at->s;
    t->tok_len[id] = at->len;
    return 0;
}

int64_t rt_tok_len(const rt_tokenizer *t) {
    int64_t n = t->model_n;
    for (int i = 0; i < t->nadded; i++) n += strmap_get(&t->vocab, t->added[i].s, t->added[i].len) < 0;
    return n;
}

int64_t rt_tok_vocab_size(const rt_tokenizer *t) { return t->nids; }
const char *rt_tok_path(const rt_tokenizer *t) { return t->path; }

int rt_tok_special_prefix(const rt_tokenizer *t, const int32_t **ids) {
    *ids = t->prefix;
    return t->nprefix;
}
int rt_tok_special_suffix(const rt_tokenizer *t, const int32_t **ids) {
    *ids = t->suffix;
    return t->nsuffix;
}

/* ---- UTF-8 helpers ----------------------------------------------------------- */

static size_t u8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static void put_cp(ax_buf *b, uint32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, tmp);
    ax_buf_append(b, tmp, (size_t)n);
}

static int is_ws(utf8proc_int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/* ---- pieces ------------------------------------------------------------------ */

/* A piece is scratch[off .. off+len); at_start: it begins at offset 0 of the
 * original text (Metaspace's prepend_scheme "first"). */
typedef struct {
    size_t off, len;
    int at_start;
} piece;

typedef struct {
    size_t s, e;
    int match;
} span;

/* Splits pieces by the spans `find` marks, with `behavior` (the rules of
 * `tokenizers`' NormalizedString::split), dropping empty pieces. */
static void apply_behavior(span *sp, int n, split_behavior b, int invert, ax_buf *outsp, int *nout) {
    span *o = (span *)outsp->data;
    int k = 0;
    int prev_match = 0;
    if (invert)
        for (int i = 0; i < n; i++) sp[i].match = !sp[i].match;
    if (b == B_MERGED_NEXT) {
        for (int i = n - 1; i >= 0; i--) {
            if (sp[i].match && !prev_match && k) o[k - 1].s = sp[i].s;
            else o[k++] = (span){sp[i].s, sp[i].e, sp[i].match};
            prev_match = sp[i].match;
        }
        for (int i = 0; i < k / 2; i++) {
            span tmp = o[i];
            o[i] = o[k - 1 - i];
            o[k - 1 - i] = tmp;
        }
    } else {
        for (int i = 0; i < n; i++) {
            switch (b) {
            case B_REMOVED:
                if (!sp[i].match) o[k++] = sp[i];
                break;
            case B_ISOLATED: o[k++] = sp[i]; break;
            case B_MERGED_PREV:
                if (sp[i].match && !prev_match && k) o[k - 1].e = sp[i].e;
                else o[k++] = sp[i];
                break;
            case B_CONTIGUOUS:
                if (sp[i].match == prev_match && k) o[k - 1].e = sp[i].e;
                else o[k++] = sp[i];
                break;
            default: break;
            }
            prev_match = sp[i].match;
        }
    }
    *nout = k;
}

/* spans of matches of step s in str[0..len) with the gaps between them */
static int find_spans(rt_tokenizer *t, const pre_step *s, const regex_t *re, const char *str, size_t len, ax_buf *spb,
                      ax_diag *d, const char *where) {
    spb->len = 0;
    size_t prev = 0;
#define PUSH(a, b, m)                                                                                                \
    do {                                                                                                             \
        span x_ = {(a), (b), (m)};                                                                                   \
        ax_buf_append(spb, &x_, sizeof x_);                                                                          \
    } while (0)
    if (re) {
        OnigRegion *rg = onig_region_new();
        const UChar *us = (const UChar *)str, *end = us + len;
        size_t start = 0;
        while (start <= len) {
            int r = onig_search((regex_t *)re, us, end, us + start, end, rg, ONIG_OPTION_NONE);
            if (r == ONIG_MISMATCH) break;
            if (r < 0) {
                onig_region_free(rg, 1);
                ax_error(d, where, "%s: the tokenizer's regex failed (Oniguruma error %d)", t->path, r);
                return -1;
            }
            size_t ms = (size_t)rg->beg[0], me = (size_t)rg->end[0];
            if (prev != ms) PUSH(prev, ms, 0);
            PUSH(ms, me, 1);
            prev = me;
            start = me > ms ? me : me + (me < len ? u8_len((unsigned char)str[me]) : 1);
        }
        onig_region_free(rg, 1);
    } else if (s->kind == P_SPLIT || s->kind == P_METASPACE) { /* a literal, or Metaspace's replacement char */
        const char *needle = s->kind == P_SPLIT ? s->literal : s->replacement;
        size_t ll = strlen(needle);
        const char *p = str, *e = str + len;
        while (p < e) {
            const char *f = memmem(p, (size_t)(e - p), needle, ll);
            if (!f) break;
            size_t ms = (size_t)(f - str);
            if (prev != ms) PUSH(prev, ms, 0);
            PUSH(ms, ms + ll, 1);
            prev = ms + ll;
            p = f + ll;
        }
    } else { /* Digits: every numeric char is a match */
        size_t i = 0;
        while (i < len) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)str + i, (utf8proc_ssize_t)(len - i), &cp);
            if (n <= 0) n = 1, cp = 0;
            utf8proc_category_t c = utf8proc_category(cp);
            if (c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO) {
                if (prev != i) PUSH(prev, i, 0);
                PUSH(i, i + (size_t)n, 1);
                prev = i + (size_t)n;
            }
            i += (size_t)n;
        }
    }
    if (prev != len) PUSH(prev, len, 0);
#undef PUSH
    return 0;
}

static size_t scratch_add(rt_tokenizer *t, const char *p, size_t n) {
    size_t off = t->scratch.len;
    ax_buf_append(&t->scratch, p, n);
    return off;
}

/* Runs one pre-tokenizer step over every piece of `in`, into `out`. */
static int pre_step_run(rt_tokenizer *t, const pre_step *s, const ax_buf *in, ax_buf *out, ax_diag *d,
                        const char *where) {
    const piece *ps = (const piece *)in->data;
    size_t np = in->len / sizeof *ps;
    out->len = 0;
    ax_buf spb = {0}, outsp = {0};
    int rc = 0;
    for (size_t i = 0; i < np; i++) {
        piece p = ps[i];
        if (s->kind == P_BYTELEVEL && s->add_prefix_space && t->scratch.data[p.off] != ' ') {
            size_t off = scratch_add(t, " ", 1);
            ax_buf_append(&t->scratch, t->scratch.data + p.off, p.len);
            p.off = off;
            p.len++;
        }
        if (s->kind == P_METASPACE) { /* spaces -> replacement, then the prefix */
            ax_buf *b = &t->tmp;
            b->len = 0;
            const char *str = t->scratch.data + p.off;
            size_t rl = strlen(s->replacement);
            int starts = p.len >= rl && !memcmp(str, s->replacement, rl);
            int pre = !starts && str[0] != ' ' && (s->prepend == 2 || (s->prepend == 1 && p.at_start));
            if (pre) ax_buf_append(b, s->replacement, rl);
            for (size_t k = 0; k < p.len; k++) {
                if (str[k] == ' ') ax_buf_append(b, s->replacement, rl);
                else ax_buf_append(b, str + k, 1);
            }
            p.off = scratch_add(t, b->data, b->len);
            p.len = b->len;
            if (!s->split) {
                ax_buf_append(out, &p, sizeof p);
                continue;
            }
        }
        int nsp = 0;
        const char *str = t->scratch.data + p.off;
        if (s->kind == P_BYTELEVEL && !s->re) {
            ax_buf_append(out, &p, sizeof p);
            continue;
        }
        if (find_spans(t, s, s->re, str, p.len, &spb, d, where)) {
            rc = -1;
            break;
        }
        int n = (int)(spb.len / sizeof(span));
        outsp.len = 0; /* room for as many spans as there are (behaviors never add any) */
        ax_buf_append(&outsp, spb.data, spb.len);
        split_behavior b = s->kind == P_SPLIT ? s->behavior : s->kind == P_METASPACE ? B_MERGED_NEXT
                           : s->kind == P_DIGITS ? (s->individual ? B_ISOLATED : B_CONTIGUOUS)
                                                  : B_ISOLATED;
        apply_behavior((span *)spb.data, n, b, s->kind == P_SPLIT && s->invert, &outsp, &nsp);
        const span *o = (const span *)outsp.data;
        for (int k = 0; k < nsp; k++) {
            if (o[k].e == o[k].s) continue;
            piece q = {p.off + o[k].s, o[k].e - o[k].s, p.at_start && o[k].s == 0};
            ax_buf_append(out, &q, sizeof q);
        }
    }
    ax_buf_free(&spb);
    ax_buf_free(&outsp);
    if (rc == 0 && s->kind == P_BYTELEVEL) { /* bytes -> GPT-2 chars, in place of each piece */
        piece *q = (piece *)out->data;
        size_t nq = out->len / sizeof *q;
        for (size_t i = 0; i < nq; i++) {
            ax_buf *b = &t->tmp;
            b->len = 0;
            for (size_t k = 0; k < q[i].len; k++) put_cp(b, byte_char[(unsigned char)t->scratch.data[q[i].off + k]]);
            q[i].off = scratch_add(t, b->data, b->len);
            q[i].len = b->len;
        }
    }
    return rc;
}

/* ---- normalization ----------------------------------------------------------- */

/* Normalizes text into out. -1 on text that is not UTF-8, -2 when the
 * normalizer makes it more than 64 times longer. */
static int normalize(rt_tokenizer *t, const char *text, size_t len, ax_buf *out) {
    out->len = 0;
    ax_buf_append(out, text, len);
    ax_buf next = {0};
    for (int i = 0; i < t->nnorm; i++) {
        const norm_step *s = &t->norm[i];
        next.len = 0;
        switch (s->kind) {
        case N_NFC:
        case N_NFD:
        case N_NFKC:
        case N_NFKD: {
            int opt = UTF8PROC_STABLE;
            opt |= (s->kind == N_NFC || s->kind == N_NFKC) ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
            if (s->kind == N_NFKC || s->kind == N_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)out->data, (utf8proc_ssize_t)out->len, &dst,
                                              (utf8proc_option_t)opt);
            if (n < 0) {
                ax_buf_free(&next);
                return -1;
            }
            ax_buf_append(&next, dst, (size_t)n);
            free(dst);
            break;
        }
        case N_LOWER: {
            size_t k = 0;
            while (k < out->len) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)out->data + k,
                                                      (utf8proc_ssize_t)(out->len - k), &cp);
                if (n <= 0) {
                    ax_buf_free(&next);
                    return -1;
                }
                put_cp(&next, (uint32_t)utf8proc_tolower(cp));
                k += (size_t)n;
            }
            break;
        }
        case N_PREPEND:
            if (out->len) ax_buf_puts(&next, s->a);
            ax_buf_append(&next, out->data, out->len);
            break;
        case N_REPLACE: {
            size_t pl = strlen(s->a);
            const char *p = out->data, *e = out->data + out->len;
            while (p < e) {
                const char *f = memmem(p, (size_t)(e - p), s->a, pl);
                if (!f) break;
                ax_buf_append(&next, p, (size_t)(f - p));
                ax_buf_puts(&next, s->b);
                p = f + pl;
            }
            ax_buf_append(&next, p, (size_t)(e - p));
            break;
        }
        case N_STRIP: {
            size_t a = 0, b = out->len;
            while (s->left && a < b) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t n =
                    utf8proc_iterate((const utf8proc_uint8_t *)out->data + a, (utf8proc_ssize_t)(b - a), &cp);
                if (n <= 0 || !is_ws(cp)) break;
                a += (size_t)n;
            }
            while (s->right && b > a) {
                size_t k = b - 1;
                while (k > a && ((unsigned char)out->data[k] & 0xC0) == 0x80) k--;
                utf8proc_int32_t cp;
                utf8proc_iterate((const utf8proc_uint8_t *)out->data + k, (utf8proc_ssize_t)(b - k), &cp);
                if (!is_ws(cp)) break;
                b = k;
            }
            ax_buf_append(&next, out->data + a, b - a);
            break;
        }
        }
        ax_buf tmp = *out;
        *out = next;
        next = tmp;
        if (out->len > 64 * len + 4096) { /* NFKD grows text ~11x at most, Replace " " -> "▁" 3x; a chain of
                                              * Replace steps could grow it exponentially */
            ax_buf_free(&next);
            return -2;
        }
    }
    ax_buf_free(&next);
    return 0;
}

/* ---- BPE -------------------------------------------------------------------------- */

static int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(ax_buf *h, heap_ent e) {
    ax_buf_append(h, &e, sizeof e);
    heap_ent *a = (heap_ent *)h->data;
    size_t i = h->len / sizeof e - 1;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&a[i], &a[p])) break;
        heap_ent tmp = a[i];
        a[i] = a[p];
        a[p] = tmp;
        i = p;
    }
}

static heap_ent heap_pop(ax_buf *h) {
    heap_ent *a = (heap_ent *)h->data;
    size_t n = h->len / sizeof *a;
    heap_ent top = a[0];
    a[0] = a[n - 1];
    h->len -= sizeof *a;
    n--;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_less(&a[l], &a[m])) m = l;
        if (r < n && heap_less(&a[r], &a[m])) m = r;
        if (m == i) break;
        heap_ent tmp = a[i];
        a[i] = a[m];
        a[m] = tmp;
        i = m;
    }
    return top;
}

static void push_pair(rt_tokenizer *t, const bpe_sym *sy, int32_t pos) {
    if (pos < 0 || sy[pos].next < 0) return;
    const pairent *m = pairmap_get(&t->merges, sy[pos].id, sy[sy[pos].next].id);
    if (m) heap_push(&t->heap, (heap_ent){m->rank, pos, m->id});
}

static void sym_add(rt_tokenizer *t, int32_t id) {
    bpe_sym s = {id, -1, -1, 1};
    ax_buf_append(&t->syms, &s, sizeof s);
}

/* BPE of one word (`tokenizers`' BPE::merge_word + Word::merge_all). */
static int bpe_word(rt_tokenizer *t, const char *w, size_t len, ax_buf *out) {
    if (!len) return 0;
    if (t->ignore_merges) {
        int32_t id = strmap_get(&t->vocab, w, len);
        if (id >= 0) {
            ax_buf_append(out, &id, sizeof id);
            return 0;
        }
    }
    t->syms.len = 0;
    int32_t unk = -1;
    size_t i = 0;
    while (i < len) {
        size_t n = u8_len((unsigned char)w[i]);
        if (i + n > len) n = len - i;
        int32_t id = strmap_get(&t->vocab, w + i, n);
        if (id >= 0) {
            if (unk >= 0) sym_add(t, unk), unk = -1;
            sym_add(t, id);
        } else {
            int ok = 0;
            if (t->byte_fallback) {
                int32_t ids[4];
                ok = 1;
                for (size_t k = 0; k < n && ok; k++) {
                    char name[8];
                    snprintf(name, sizeof name, "<0x%02X>", (unsigned char)w[i + k]);
                    ids[k] = strmap_get(&t->vocab, name, 6);
                    ok = ids[k] >= 0;
                }
                if (ok)
                    for (size_t k = 0; k < n; k++) sym_add(t, ids[k]);
            }
            if (!ok) {
                if (t->unk_id < 0) return -1;
                if (unk >= 0 && !t->fuse_unk) sym_add(t, unk);
                unk = t->unk_id;
            }
        }
        i += n;
    }
    if (unk >= 0) sym_add(t, unk);
    bpe_sym *sy = (bpe_sym *)t->syms.data;
    int32_t ns = (int32_t)(t->syms.len / sizeof *sy);
    for (int32_t k = 0; k < ns; k++) sy[k].prev = k - 1, sy[k].next = k + 1 < ns ? k + 1 : -1;
    t->heap.len = 0;
    for (int32_t k = 0; k + 1 < ns; k++) push_pair(t, sy, k);
    while (t->heap.len) {
        heap_ent top = heap_pop(&t->heap);
        bpe_sym *a = &sy[top.pos];
        if (!a->alive || a->next < 0) continue;
        const pairent *m = pairmap_get(&t->merges, a->id, sy[a->next].id);
        if (!m || m->id != top.id) continue;
        int32_t nx = a->next;
        a->id = top.id;
        sy[nx].alive = 0;
        a->next = sy[nx].next;
        if (a->next >= 0) sy[a->next].prev = top.pos;
        push_pair(t, sy, a->prev);
        push_pair(t, sy, top.pos);
    }
    for (int32_t k = 0; k < ns; k++)
        if (sy[k].alive) ax_buf_append(out, &sy[k].id, sizeof(int32_t));
    return 0;
}

#define CACHE_MAX_WORD 256

static int bpe_cached(rt_tokenizer *t, const char *w, size_t len, ax_buf *out) {
    if (len > CACHE_MAX_WORD) return bpe_word(t, w, len, out);
    if (!t->cache) {
        t->cache_cap = 1u << 16;
        t->cache = calloc(t->cache_cap, sizeof *t->cache);
        if (!t->cache) abort();
    }
    uint64_t h = XXH3_64bits(w, len);
    size_t i = (size_t)h & (t->cache_cap - 1);
    for (;; i = (i + 1) & (t->cache_cap - 1)) {
        cache_ent *e = &t->cache[i];
        if (!e->used) break;
        if (e->h == h && e->klen == len && !memcmp(t->cache_keys.data + e->koff, w, len)) {
            ax_buf_append(out, t->cache_ids.data + e->ioff, e->ilen * sizeof(int32_t));
            return 0;
        }
    }
    size_t before = out->len;
    if (bpe_word(t, w, len, out)) return -1;
    if (t->cache_n * 2 >= t->cache_cap) { /* full: start over */
        memset(t->cache, 0, t->cache_cap * sizeof *t->cache);
        t->cache_n = 0;
        t->cache_keys.len = t->cache_ids.len = 0;
        i = (size_t)h & (t->cache_cap - 1);
    }
    cache_ent *e = &t->cache[i];
    e->used = 1;
    e->h = h;
    e->koff = (uint32_t)t->cache_keys.len;
    e->klen = (uint32_t)len;
    e->ioff = (uint32_t)t->cache_ids.len;
    e->ilen = (uint32_t)((out->len - before) / sizeof(int32_t));
    ax_buf_append(&t->cache_keys, w, len);
    ax_buf_append(&t->cache_ids, out->data + before, out->len - before);
    t->cache_n++;
    return 0;
}

/* ---- encode ---------------------------------------------------------------------- */

/* One text segment (no added tokens in it): normalize, pre-tokenize, BPE. */
static int encode_segment(rt_tokenizer *t, const char *s, size_t len, int at_start, ax_buf *out, const char *where,
                          ax_diag *d) {
    if (!len) return 0;
    ax_buf norm = {0};
    int nrc = normalize(t, s, len, &norm);
    if (nrc) {
        ax_buf_free(&norm);
        if (nrc == -2)
            ax_error(d, where, "%s: its normalizer makes a text of %zu bytes more than 64 times longer", t->path, len);
        else ax_error(d, where, "the text is not valid UTF-8");
        return -1;
    }
    t->scratch.len = 0;
    t->pieces.len = 0;
    piece p0 = {scratch_add(t, norm.data, norm.len), norm.len, at_start};
    ax_buf_free(&norm);
    if (!p0.len) return 0;
    ax_buf_append(&t->pieces, &p0, sizeof p0);
    ax_buf other = {0};
    for (int i = 0; i < t->npre; i++) {
        if (pre_step_run(t, &t->pre[i], &t->pieces, &other, d, where)) {
            ax_buf_free(&other);
            return -1;
        }
        ax_buf tmp = t->pieces;
        t->pieces = other;
        other = tmp;
    }
    ax_buf_free(&other);
    const piece *ps = (const piece *)t->pieces.data;
    size_t np = t->pieces.len / sizeof *ps;
    for (size_t i = 0; i < np; i++) {
        if (bpe_cached(t, t->scratch.data + ps[i].off, ps[i].len, out)) {
            ax_error(d, where, "%s: the text has a character that is not in the vocab and the model has no unk_token",
                     t->path);
            return -1;
        }
    }
    return 0;
}

int rt_tok_encode(rt_tokenizer *t, const char *text, size_t len, int add_special, ax_buf *out, const char *where,
                  ax_diag *d) {
    if (len > (size_t)INT32_MAX) {
        ax_error(d, where, "the text is longer than 2 GiB");
        return -1;
    }
    {
        size_t k = 0;
        while (k < len) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t n =
                utf8proc_iterate((const utf8proc_uint8_t *)text + k, (utf8proc_ssize_t)(len - k), &cp);
            if (n <= 0) {
                ax_error(d, where, "the text is not valid UTF-8 at byte %zu", k);
                return -1;
            }
            k += (size_t)n;
        }
    }
    if (add_special) ax_buf_append(out, t->prefix, sizeof(int32_t) * (size_t)t->nprefix);
    size_t seg = 0, i = 0;
    while (i < len) {
        if (!t->added_first[(unsigned char)text[i]]) {
            i++;
            continue;
        }
        const added_tok *best = NULL;
        for (int k = 0; k < t->nadded; k++) {
            const added_tok *a = &t->added[k];
            if (a->len <= len - i && (!best || a->len > best->len) && !memcmp(text + i, a->s, a->len)) best = a;
        }
        if (!best) {
            i++;
            continue;
        }
        size_t s = i, e = i + best->len;
        if (best->lstrip)
            while (s > seg && is_ws((unsigned char)text[s - 1])) s--;
        if (best->rstrip)
            while (e < len && is_ws((unsigned char)text[e])) e++;
        if (encode_segment(t, text + seg, s - seg, seg == 0, out, where, d)) return -1;
        ax_buf_append(out, &best->id, sizeof best->id);
        seg = i = e;
    }
    if (encode_segment(t, text + seg, len - seg, seg == 0, out, where, d)) return -1;
    if (add_special) ax_buf_append(out, t->suffix, sizeof(int32_t) * (size_t)t->nsuffix);
    return 0;
}

const char *rt_tok_str(const rt_tokenizer *t, int64_t id, size_t *len) {
    if (id < 0 || id >= t->nids || !t->tok_str[id]) return NULL;
    *len = t->tok_len[id];
    return t->tok_str[id];
}

void rt_tok_piece(const rt_tokenizer *t, int32_t id, ax_buf *out) {
    if (id < 0 || id >= t->nids || !t->tok_str[id]) {
        ax_buf_printf(out, "<id %d>", id);
        return;
    }
    const char *s = t->tok_str[id];
    size_t len = t->tok_len[id];
    for (int k = 0; k < t->nadded; k++)
        if (t->added[k].id == id) {
            ax_buf_append(out, s, len);
            return;
        }
    unsigned hx;
    if (len == 6 && sscanf(s, "<0x%2X>", &hx) == 1) {
        ax_buf_u8(out, (uint8_t)hx);
        return;
    }
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) break;
        if (t->bytelevel && cp < 512 && char_byte[cp] >= 0) ax_buf_u8(out, (uint8_t)char_byte[cp]);
        else if (t->metaspace_decode && cp == 0x2581) ax_buf_u8(out, ' ');
        else ax_buf_append(out, s + i, (size_t)n);
        i += (size_t)n;
    }
}

int rt_tok_trims_offsets(const rt_tokenizer *t, int *add_prefix_space) {
    if (add_prefix_space) *add_prefix_space = t->trim_prefix_space;
    return t->trim_offsets;
}
