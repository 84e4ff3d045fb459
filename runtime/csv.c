/* csv.c — CSV files as HF datasets' csv loader reads them (runtime/csv.h). */
#include "runtime/csv.h"

#include "runtime/data.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_CHUNK 10000 /* HF datasets' CsvConfig.chunksize: pandas types each chunk on its own */

typedef struct {
    ax_buf text;    /* the fields' unquoted bytes, back to back */
    size_t *off;    /* field k: text[off[k] .. off[k + 1]) */
    size_t nf, capf;
    size_t *rec;    /* record r: fields rec[r] .. rec[r + 1] */
    int64_t *line;  /* the line record r starts on */
    size_t nrec, caprec;
} csv_toks;

static void end_field(csv_toks *t) {
    if (t->nf + 2 > t->capf) {
        t->capf = t->capf ? 2 * t->capf : 1024;
        t->off = realloc(t->off, sizeof *t->off * t->capf);
        if (!t->off) abort();
    }
    t->off[++t->nf] = t->text.len;
}

static void begin_record(csv_toks *t, int64_t line) {
    if (t->nrec + 2 > t->caprec) {
        t->caprec = t->caprec ? 2 * t->caprec : 256;
        t->rec = realloc(t->rec, sizeof *t->rec * t->caprec);
        t->line = realloc(t->line, sizeof *t->line * t->caprec);
        if (!t->rec || !t->line) abort();
    }
    t->rec[t->nrec] = t->nf;
    t->line[t->nrec] = line;
}

static void end_record(csv_toks *t) { t->rec[++t->nrec] = t->nf; }

/* pandas' C tokenizer with read_csv's defaults (quotechar '"', doublequote, no escapechar, skip_blank_lines) */
static int tokenize(const char *buf, size_t len, const char *name, char sep, csv_toks *t, ax_diag *d) {
    enum { START_RECORD, START_FIELD, IN_FIELD, IN_QUOTED, QUOTE_IN_QUOTED } st = START_RECORD;
    int64_t line = 1, qline = 0;
    char where[4200];
    t->off = malloc(sizeof *t->off * 1024), t->capf = 1024, t->off[0] = 0;
    size_t i = 0;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) i = 3; /* pandas drops a UTF-8 BOM */
    while (i < len) {
        const unsigned char c = (unsigned char)buf[i];
        const int nl = c == '\n' || c == '\r';
        const size_t step = c == '\r' && i + 1 < len && buf[i + 1] == '\n' ? 2 : 1;
        switch (st) {
        case START_RECORD:
            if (c == ' ' || c == '\t') { /* a line of only spaces is blank too */
                size_t j = i;
                while (j < len && (buf[j] == ' ' || buf[j] == '\t')) j++;
                if (j == len || buf[j] == '\n' || buf[j] == '\r') {
                    i = j;
                    continue;
                }
            }
            if (nl) { /* an empty line; after a skipped one that ends in a lone \r, pandas' EAT_CRNL_NOP state also
                       * swallows the next character when it is the separator */
                i += step, line++;
                if (step == 1 && c == '\r' && i < len && buf[i] == sep) i++;
                continue;
            }
            begin_record(t, line);
            st = START_FIELD;
            continue;
        case START_FIELD:
            if (c == '"') {
                st = IN_QUOTED, qline = line, i++;
            } else if (c == (unsigned char)sep) {
                end_field(t), i++;
            } else if (nl) {
                end_field(t), end_record(t), st = START_RECORD, i += step, line++;
            } else {
                st = IN_FIELD;
            }
            continue;
        case IN_FIELD:
            if (c == (unsigned char)sep) end_field(t), st = START_FIELD, i++;
            else if (nl) end_field(t), end_record(t), st = START_RECORD, i += step, line++;
            else ax_buf_append(&t->text, buf + i, 1), i++;
            continue;
        case IN_QUOTED:
            if (c == '"') {
                st = QUOTE_IN_QUOTED, i++;
            } else {
                ax_buf_append(&t->text, buf + i, step); /* a line break inside quotes is text, as written */
                if (nl) line++;
                i += step;
            }
            continue;
        case QUOTE_IN_QUOTED:
            if (c == '"') ax_buf_append(&t->text, "\"", 1), st = IN_QUOTED, i++;
            else if (c == (unsigned char)sep) end_field(t), st = START_FIELD, i++;
            else if (nl) end_field(t), end_record(t), st = START_RECORD, i += step, line++;
            else ax_buf_append(&t->text, buf + i, 1), st = IN_FIELD, i++; /* "ab"c: the text joins the field */
            continue;
        }
    }
    if (st == IN_QUOTED) {
        snprintf(where, sizeof where, "%s:%lld", name, (long long)qline);
        ax_error(d, where, "a quoted field is still open at the end of the file (pandas: \"EOF inside string\")");
        return -1;
    }
    if (st != START_RECORD) end_field(t), end_record(t);
    return 0;
}

/* ---- values ---------------------------------------------------------------- */
static const char *const NA[] = {"",    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                                 "<NA>", "N/A", "NA",       "NULL", "NaN",    "None",     "n/a",  "nan",  "null"};

static int is_na(const char *s, size_t n) {
    for (size_t k = 0; k < AX_ARRAY_LEN(NA); k++)
        if (strlen(NA[k]) == n && !memcmp(NA[k], s, n)) return 1;
    return 0;
}

static void trim(const char **s, size_t *n) {
    while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* an integer as pandas' parser takes it: spaces, a sign, digits. 1 int64, 2 above INT64_MAX (<= UINT64_MAX,
 * non-negative), 3 beyond 64 bits, 0 not an integer */
static int parse_int(const char *s, size_t n, int64_t *iv, uint64_t *uv) {
    trim(&s, &n);
    int neg = 0;
    if (n && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', s++, n--;
    if (!n) return 0;
    unsigned __int128 v = 0;
    int big = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        if (!big) v = v * 10 + (unsigned)(s[k] - '0');
        if (v > (unsigned __int128)UINT64_MAX) big = 1;
    }
    if (big) return 3;
    if (neg) {
        if (v > (unsigned __int128)INT64_MAX + 1) return 3;
        *iv = v == (unsigned __int128)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return 1;
    }
    if (v > INT64_MAX) {
        *uv = (uint64_t)v;
        return 2;
    }
    *iv = (int64_t)v;
    return 1;
}

/* a number as pandas' parser takes it: spaces, a sign, digits with one '.', an exponent; or inf / infinity */
static int parse_float(const char *s, size_t n, double *out) {
    trim(&s, &n);
    char tmp[400];
    if (!n || n >= sizeof tmp) return 0;
    size_t k = 0;
    if (s[k] == '+' || s[k] == '-') k++;
    const size_t rest = n - k;
    if ((rest == 3 && !strncasecmp(s + k, "inf", 3)) || (rest == 8 && !strncasecmp(s + k, "infinity", 8))) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    size_t digits = 0;
    while (k < n && isdigit((unsigned char)s[k])) k++, digits++;
    if (k < n && s[k] == '.') {
        k++;
        while (k < n && isdigit((unsigned char)s[k])) k++, digits++;
    }
    if (!digits) return 0;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t ed = 0;
        while (k < n && isdigit((unsigned char)s[k])) k++, ed++;
        if (!ed) return 0;
    }
    if (k != n) return 0;
    memcpy(tmp, s, n), tmp[n] = 0;
    errno = 0;
    *out = strtod(tmp, NULL); /* overflow gives inf and underflow 0, as pandas' parser does */
    return 1;
}

static int is_true(const char *s, size_t n) {
    return (n == 4 && (!memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4) || !memcmp(s, "true", 4)));
}
static int is_false(const char *s, size_t n) {
    return (n == 5 && (!memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5) || !memcmp(s, "false", 5)));
}

enum { C_INT, C_UINT, C_FLOAT, C_BOOL, C_STR };
static const char *const CT_NAME[] = {"int64", "uint64", "float64", "bool", "string"};

static void json_double(ax_buf *o, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    ax_buf_printf(o, "%s%s", b, strpbrk(b, ".en") ? "" : ".0"); /* a float stays a float in JSON */
}

int rt_csv_rows(const char *buf, size_t len, const char *name, char sep, ax_buf *out, ax_diag *d) {
    char where[4200];
    if (rt_utf8_check(buf, len, name, "csv", d) != 0) return -1; /* pandas decodes the file before it parses it */
    csv_toks t = {0};
    int rc = -1;
    int *type = NULL, *t0 = NULL, *warned = NULL;
    char **names = NULL;
    if (tokenize(buf, len, name, sep, &t, d) != 0) goto done;
    if (t.nrec == 0) {
        ax_error(d, name, "no header row (pandas: \"No columns to parse from file\")");
        goto done;
    }
    const size_t ncol = t.rec[1] - t.rec[0];
    type = malloc(sizeof *type * ncol), t0 = malloc(sizeof *t0 * ncol), warned = calloc(ncol, sizeof *warned);
    names = calloc(ncol, sizeof *names);
    if (!type || !t0 || !warned || !names) abort();
    /* header names: "Unnamed: i" for an empty one; a repeat gets ".k", the first k naming no column */
    for (size_t j = 0; j < ncol; j++) {
        const size_t a = t.off[t.rec[0] + j], b = t.off[t.rec[0] + j + 1];
        if (b == a) {
            names[j] = malloc(32);
            snprintf(names[j], 32, "Unnamed: %zu", j);
        } else {
            names[j] = strndup(t.text.data + a, b - a);
        }
    }
    for (size_t j = 1; j < ncol; j++) {
        int dup = 0;
        for (size_t q = 0; q < j && !dup; q++) dup = !strcmp(names[q], names[j]);
        if (!dup) continue;
        for (int k = 1;; k++) {
            char cand[4200];
            snprintf(cand, sizeof cand, "%s.%d", names[j], k);
            int taken = 0;
            for (size_t q = 0; q < ncol && !taken; q++) {
                if (q == j) continue;
                const size_t a = t.off[t.rec[0] + q], b = t.off[t.rec[0] + q + 1];
                taken = !strcmp(names[q], cand) || (b - a == strlen(cand) && !memcmp(t.text.data + a, cand, b - a));
            }
            if (!taken) {
                free(names[j]);
                names[j] = strdup(cand);
                break;
            }
        }
    }
    for (size_t r = 1; r < t.nrec; r++)
        if (t.rec[r + 1] - t.rec[r] > ncol) {
            snprintf(where, sizeof where, "%s:%lld", name, (long long)t.line[r]);
            ax_error(d, where, "%zu fields, and the header has %zu (pandas takes the first column as an index when "
                     "every row has one more, else fails)", t.rec[r + 1] - t.rec[r], ncol);
            goto done;
        }
#define FIELD(r, j, s, n)                                                                                           \
    const int has_##s = (j) < t.rec[(r) + 1] - t.rec[r];                                                           \
    const char *s = has_##s && t.text.data ? t.text.data + t.off[t.rec[r] + (j)] : "";                             \
    const size_t n = has_##s ? t.off[t.rec[r] + (j) + 1] - t.off[t.rec[r] + (j)] : 0
    for (size_t c0 = 1; c0 < t.nrec; c0 += CSV_CHUNK) {
        const size_t c1 = c0 + CSV_CHUNK < t.nrec ? c0 + CSV_CHUNK : t.nrec;
        for (size_t j = 0; j < ncol; j++) { /* pandas' type of column j in this chunk */
            int any = 0, na = 0, all_int = 1, any_big = 0, any_huge = 0, any_minus = 0, all_num = 1,
                all_bool = 1;
            size_t huge_row = 0;
            for (size_t r = c0; r < c1; r++) {
                FIELD(r, j, s, n);
                if (is_na(s, n)) {
                    na = 1;
                    continue;
                }
                any = 1;
                int64_t iv;
                uint64_t uv;
                double x;
                const int pi = parse_int(s, n, &iv, &uv);
                if (pi == 3 && !any_huge) any_huge = 1, huge_row = r;
                const char *ts = s;
                size_t tn = n;
                trim(&ts, &tn);
                any_minus |= tn && ts[0] == '-';
                all_int &= pi != 0;
                any_big |= pi == 2;
                all_num &= pi != 0 || parse_float(s, n, &x);
                all_bool &= is_true(s, n) || is_false(s, n);
            }
            if (any && all_int && any_huge) { /* pandas keeps them Python ints, which HF datasets cannot store */
                snprintf(where, sizeof where, "%s:%lld", name, (long long)t.line[huge_row]);
                ax_error(d, where, "column \"%s\": an integer that does not fit 64 bits (HF datasets fails on it)",
                         names[j]);
                goto done;
            }
            /* numbers with one above 2^63 - 1 and one written with a minus or a missing value: what pandas makes of
             * them (floats, or every value's text, "NA" too) depends on the order of the values through its int64,
             * uint64 and float attempts; axo refuses the column rather than guess */
            if (any_big && all_num && (any_minus || na)) {
                snprintf(where, sizeof where, "%s:%lld", name, (long long)t.line[c0]);
                ax_error(d, where, "column \"%s\": an integer above 2^63 - 1 beside a negative number or a missing value "
                         "in rows %zu to %zu: pandas' reading of that depends on the values' order, which axo does not "
                         "reproduce (quote the column's values in a JSON lines file instead)", names[j], c0, c1 - 1);
                goto done;
            }
            int ty = !any                          ? C_FLOAT
                     : all_int                      ? (na ? C_FLOAT : any_big ? C_UINT : C_INT)
                     : all_num                      ? C_FLOAT
                     : all_bool                     ? C_BOOL
                                                    : C_STR;
            type[j] = ty;
            if (c0 == 1) t0[j] = ty;
            if (ty == t0[j]) continue;
            /* a later chunk: cast to the first chunk's type, as pyarrow casts (or refuses) */
            const int ok = (t0[j] == C_FLOAT && (ty == C_INT || ty == C_UINT || ty == C_BOOL)) ||
                           (t0[j] == C_INT && (ty == C_FLOAT || ty == C_UINT || ty == C_BOOL)) ||
                           (t0[j] == C_UINT && (ty == C_INT || ty == C_FLOAT)) ||
                           (t0[j] == C_STR && (ty == C_INT || ty == C_UINT || ty == C_BOOL || (ty == C_FLOAT && !any)));
            if (!ok) {
                snprintf(where, sizeof where, "%s:%lld", name, (long long)t.line[c0]);
                ax_error(d, where, "column \"%s\": rows %zu to %zu read as %s, the file's first %d rows as %s; HF "
                         "datasets casts each later chunk to the first one's types and %s",
                         names[j], c0, c1 - 1, CT_NAME[ty], CSV_CHUNK, CT_NAME[t0[j]],
                         t0[j] == C_STR ? "formats floats as pyarrow does, which axo does not reproduce"
                                        : "fails on this one");
                goto done;
            }
            for (size_t r = c0; r < c1 && (t0[j] == C_INT || t0[j] == C_UINT); r++) { /* values the cast refuses */
                FIELD(r, j, s, n);
                int64_t iv = 0;
                uint64_t uv = 0;
                double x = 0;
                if (is_na(s, n)) continue;
                const int pi = parse_int(s, n, &iv, &uv);
                const int bad = ty == C_FLOAT ? !(parse_float(s, n, &x) && x == floor(x) && fabs(x) < 9.2e18 &&
                                                  (t0[j] == C_INT || x >= 0))
                                : t0[j] == C_INT ? pi == 2
                                                 : pi == 1 && iv < 0;
                if (bad) {
                    snprintf(where, sizeof where, "%s:%lld", name, (long long)t.line[r]);
                    ax_error(d, where, "column \"%s\": %.*s cannot be cast to %s, the type of the file's first %d "
                             "rows (HF datasets fails there too)", names[j], (int)n, s, CT_NAME[t0[j]], CSV_CHUNK);
                    goto done;
                }
            }
        }
        for (size_t r = c0; r < c1; r++) {
            ax_buf_append(out, "{", 1);
            for (size_t j = 0; j < ncol; j++) {
                FIELD(r, j, s, n);
                if (j) ax_buf_append(out, ", ", 2);
                rt_json_str(out, names[j], strlen(names[j]));
                ax_buf_append(out, ": ", 2);
                int64_t iv = 0;
                uint64_t uv = 0;
                double x = 0;
                if (is_na(s, n)) {
                    ax_buf_printf(out, "null");
                    continue;
                }
                const int pi = type[j] == C_STR ? 0 : parse_int(s, n, &iv, &uv);
                switch (t0[j]) {
                case C_STR:
                    if (type[j] == C_BOOL) ax_buf_printf(out, is_true(s, n) ? "\"true\"" : "\"false\"");
                    else if (type[j] == C_STR) rt_json_str(out, s, n);
                    else if (pi == 2) ax_buf_printf(out, "\"%llu\"", (unsigned long long)uv);
                    else ax_buf_printf(out, "\"%lld\"", (long long)iv);
                    break;
                case C_BOOL: ax_buf_printf(out, is_true(s, n) ? "true" : "false"); break;
                case C_INT:
                case C_UINT:
                    if (type[j] == C_BOOL) ax_buf_printf(out, is_true(s, n) ? "1" : "0");
                    else if (pi == 1) ax_buf_printf(out, "%lld", (long long)iv);
                    else if (pi == 2) json_double(out, (double)uv); /* JSON's integers stop at 2^63 - 1 */
                    else parse_float(s, n, &x), ax_buf_printf(out, "%lld", (long long)x);
                    break;
                case C_FLOAT:
                    if (type[j] == C_BOOL) x = is_true(s, n);
                    else if (pi == 1) x = (double)iv;
                    else if (pi == 2) x = (double)uv;
                    else parse_float(s, n, &x);
                    if (isinf(x)) {
                        if (!warned[j]++)
                            ax_warn(d, name, "column \"%s\": infinite values read as null (JSON has no infinity)", names[j]);
                        ax_buf_printf(out, "null");
                    } else {
                        json_double(out, x);
                    }
                    break;
                }
            }
            ax_buf_append(out, "}\n", 2);
        }
    }
#undef FIELD
    rc = 0;
done:
    for (size_t j = 0; names && j < t.rec[1] - t.rec[0]; j++) free(names[j]);
    free(names), free(type), free(t0), free(warned);
    free(t.off), free(t.rec), free(t.line), ax_buf_free(&t.text);
    return rc;
}
