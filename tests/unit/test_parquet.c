/* test_parquet: runtime/parquet.c against pyarrow. Each tests/reference/parquet/NAME.parquet was written by
 * pyarrow (make_parquet_fixtures.py) and NAME.jsonl holds the rows it reads back (to_pylist, rendered as
 * parquet.h says); the C reader must give the same JSON values row for row. Then bad input: every error names
 * the file, nothing is read outside the buffer (the ASan build runs this too), and a file cut anywhere is an
 * error, never a crash. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/parquet.h"
#include "tests/check.h"

#define DIR AXO_SOURCE_DIR "/tests/reference/parquet/"

static char *slurp(const char *path, size_t *len) {
    ax_diag d;
    ax_diag_init(&d);
    char *t = ax_read_file(path, len, &d);
    ax_diag_free(&d);
    return t;
}

/* the next line of text at *pos as a JSON value (NULL at the end) */
static json_t *next_row(const char *text, size_t len, size_t *pos) {
    if (*pos >= len) return NULL;
    const char *nl = memchr(text + *pos, '\n', len - *pos);
    size_t e = nl ? (size_t)(nl - text) : len;
    json_error_t je;
    json_t *j = json_loadb(text + *pos, e - *pos, JSON_REJECT_DUPLICATES, &je);
    *pos = e + 1;
    return j;
}

/* the codecs this build reads (CMake finds each library or leaves it out) */
enum { NONE = 0, SNAPPY = 1, GZIP = 2, ZSTD = 6, LZ4_RAW = 7 };
static int have_codec(int codec) {
    switch (codec) {
#ifdef AXO_HAVE_SNAPPY
    case SNAPPY: return 1;
#endif
#ifdef AXO_HAVE_ZLIB
    case GZIP: return 1;
#endif
#ifdef AXO_HAVE_ZSTD
    case ZSTD: return 1;
#endif
#ifdef AXO_HAVE_LZ4
    case LZ4_RAW: return 1;
#endif
    case NONE: return 1;
    default: return 0;
    }
}

static void refused(const void *buf, size_t len, const char *needle);

/* fixture `name` (written with `codec`) reads as pyarrow read it; in a build without that codec, the error says so */
static void same_rows(const char *name, int codec, int expect_warn) {
    char p[512], q[512];
    snprintf(p, sizeof p, DIR "%s.parquet", name);
    snprintf(q, sizeof q, DIR "%s.jsonl", name);
    size_t plen, qlen;
    char *pq = slurp(p, &plen), *want = slurp(q, &qlen);
    CHECK_MSG(pq && want, "%s: fixture missing", name);
    if (!pq || !want || !have_codec(codec)) {
        if (pq && want) {
            printf("%s: this build lacks its codec: checking that the error says so\n", name);
            refused(pq, plen, "this build of axo was made without");
        }
        free(pq);
        free(want);
        return;
    }
    ax_buf out = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK(rt_is_parquet(pq, plen));
    int rc = rt_parquet_rows(pq, plen, p, &out, &d);
    CHECK_MSG(rc == 0, "%s: rt_parquet_rows failed", name);
    if (rc) ax_diag_print(&d, stderr);
    CHECK_MSG((d.nwarnings > 0) == expect_warn, "%s: %d warnings", name, d.nwarnings);
    if (expect_warn) CHECK(ax_diag_contains(&d, "holds binary values"));
    size_t a = 0, b = 0;
    int row = 0, diff = 0;
    for (;; row++) {
        json_t *x = next_row(out.data ? out.data : "", out.len, &a), *y = next_row(want, qlen, &b);
        if (!x || !y) {
            CHECK_MSG(!x && !y, "%s: row counts differ at row %d", name, row);
            json_decref(x);
            json_decref(y);
            break;
        }
        if (!json_equal(x, y) && diff++ < 3) {
            char *sx = json_dumps(x, JSON_COMPACT), *sy = json_dumps(y, JSON_COMPACT);
            fprintf(stderr, "%s row %d:\n  axo     %s\n  pyarrow %s\n", name, row, sx, sy);
            free(sx);
            free(sy);
        }
        json_decref(x);
        json_decref(y);
    }
    CHECK_MSG(diff == 0, "%s: %d rows differ", name, diff);
    /* key order is the schema's: the first row's text starts with the first column */
    if (out.len && qlen) {
        const char *k1 = strchr(out.data, '"'), *k2 = strchr(want, '"');
        CHECK(k1 && k2 && !strncmp(k1, k2, 12));
    }
    ax_buf_free(&out);
    ax_diag_free(&d);
    free(pq);
    free(want);
}

/* rt_parquet_rows on buf: -1 with an error naming the file and containing `needle` */
static void refused(const void *buf, size_t len, const char *needle) {
    ax_buf out = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_parquet_rows(buf, len, "x.parquet", &out, &d), -1);
    CHECK_MSG(d.nerrors > 0 && !strcmp(d.entries[0].where, "x.parquet"), "the error names the file");
    if (needle) {
        CHECK_MSG(ax_diag_contains(&d, needle), "expected \"%s\"", needle);
        if (!ax_diag_contains(&d, needle)) ax_diag_print(&d, stderr);
    }
    ax_buf_free(&out);
    ax_diag_free(&d);
}

/* Every prefix and a sample of single-byte changes of a fixture: 0 or -1, never a fault (ASan, UBSan) */
static void mangled(const char *name) {
    char p[512];
    snprintf(p, sizeof p, DIR "%s.parquet", name);
    size_t len;
    unsigned char *pq = (unsigned char *)slurp(p, &len);
    if (!pq) return;
    int errors = 0, ok = 0;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
        ax_buf out = {0};
        ax_diag d;
        ax_diag_init(&d);
        int rc = rt_parquet_rows(pq, cut, "x.parquet", &out, &d);
        errors += rc == -1 && d.nerrors > 0;
        ax_buf_free(&out);
        ax_diag_free(&d);
    }
    CHECK_MSG(errors > 0, "%s: a cut file is an error", name);
    unsigned char *m = malloc(len);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 600; k++) {
        memcpy(m, pq, len);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t at = (size_t)(s >> 33) % len;
        m[at] ^= (unsigned char)(1u << (s >> 29 & 7));
        ax_buf out = {0};
        ax_diag d;
        ax_diag_init(&d);
        int rc = rt_parquet_rows(m, len, "x.parquet", &out, &d);
        ok += rc == 0 || (rc == -1 && d.nerrors > 0);
        ax_buf_free(&out);
        ax_diag_free(&d);
    }
    CHECK_EQ(ok, 600);
    free(m);
    free(pq);
}

int main(void) {
    same_rows("alpaca_snappy", SNAPPY, 0);
    same_rows("chat_zstd_v2", ZSTD, 0);
    same_rows("chat_snappy", SNAPPY, 0);
    same_rows("sharegpt_gzip", GZIP, 0);
    same_rows("types_gzip", GZIP, 1);
    same_rows("types_v2", SNAPPY, 1);
    same_rows("encodings_plain", NONE, 0);
    same_rows("encodings_plain_v2", ZSTD, 0);
    same_rows("plain_none", NONE, 0);
    same_rows("empty", NONE, 0); /* no pages */
    same_rows("all_null", SNAPPY, 0);
    same_rows("decimals", SNAPPY, 0);      /* INT32 / INT64 / FLBA decimals: the nearest double, rounded once */
    same_rows("decimals_flba", SNAPPY, 0);
    same_rows("chat_lz4", LZ4_RAW, 0);

    refused("PAR1", 4, "does not start and end with \"PAR1\"");
    refused("{\"text\": \"a\"}\n", 14, "not a Parquet file");
    static const char tail_beyond[] = "PAR1xxxx\xff\xff\x00\x00PAR1";
    refused(tail_beyond, sizeof tail_beyond - 1, "footer length");
    static const char enc[] = "PAR1xxxxxxxxPARE";
    refused(enc, sizeof enc - 1, "encrypted");
    static const char junk_footer[] = "PAR1\x19\x0c\x0c\x0c\x04\x00\x00\x00PAR1";
    refused(junk_footer, sizeof junk_footer - 1, "footer");

    /* files a review built by hand, each once a fault (now in the fuzz corpus): an error naming what is wrong */
    static const char *const bugs[][2] = {
        {"delta_overflow", "DELTA_BINARY_PACKED values are cut short or malformed"},
        {"delta_overflow_unc", "DELTA_BINARY_PACKED values are cut short or malformed"},
        {"dup_schema", "lists a second schema"},
        {"f16_bytearray", NULL}, /* FLOAT16 on a BYTE_ARRAY column: binary, never read as 2 bytes */
        {"nch_root", "fewer elements than its groups' children"},
        {"nch_group", "fewer elements than its groups' children"},
        {"nocols", "has no columns"},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(bugs); i++) {
        char p[512];
        snprintf(p, sizeof p, AXO_SOURCE_DIR "/tests/fuzz/corpus/fuzz_parquet/bug-%s.parquet", bugs[i][0]);
        size_t len;
        char *b = slurp(p, &len);
        CHECK_MSG(b != NULL, "%s missing", p);
        if (b && bugs[i][1]) refused(b, len, bugs[i][1]);
        if (b && !bugs[i][1]) {
            ax_buf out = {0};
            ax_diag d;
            ax_diag_init(&d);
            const int rc = rt_parquet_rows(b, len, "x.parquet", &out, &d);
            CHECK_MSG(rc == 0 && out.data && strstr(out.data, "{\"h\":null}") && !strstr(out.data, "\"h\":3"),
                      "%s: read as binary (null)", p);
            ax_buf_free(&out);
            ax_diag_free(&d);
        }
        free(b);
    }

    mangled("alpaca_snappy");
    mangled("chat_zstd_v2");
    mangled("types_gzip");
    mangled("encodings_plain");
    return check_done();
}
