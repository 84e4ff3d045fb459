/* test_data.c — jsonl loading, errors with file:line, epoch rows (targets,
 * positions, sequence ids, packing, drops, determinism). */
#include "ir/base.h"
#include "runtime/csv.h"
#include "runtime/data.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define JSONL AXO_SOURCE_DIR "/tests/data/jsonl/"

static int sample_is(const rt_dataset *ds, int64_t i, const int32_t *tok, const int32_t *lab, int n) {
    if (rt_data_sample_len(ds, i) != n) return 0;
    const int32_t *t = ds->tokens + ds->offsets[i], *l = ds->labels + ds->offsets[i];
    for (int k = 0; k < n; k++)
        if (t[k] != tok[k] || l[k] != lab[k]) return 0;
    return 1;
}

static void test_load(void) {
    const char *paths[] = {JSONL "good.jsonl", JSONL "good2.jsonl"};
    rt_dataset ds;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load(paths, 2, 256, &ds, &d), 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(ds.nsamples, 6);
    CHECK_EQ(ds.nempty, 1); /* the all-masked line */
    CHECK_EQ(ds.vocab_size, 256);
    CHECK(sample_is(&ds, 0, (int32_t[]){5, 6, 7, 8}, (int32_t[]){-100, -100, 7, 8}, 4));
    CHECK(sample_is(&ds, 1, (int32_t[]){9, 10}, (int32_t[]){9, 10}, 2));           /* mask 0 stripped */
    CHECK(sample_is(&ds, 2, (int32_t[]){2, 3, 4, 5}, (int32_t[]){2, 3, 4, 5}, 4)); /* leading pads stripped */
    CHECK(sample_is(&ds, 3, (int32_t[]){13, 14}, (int32_t[]){13, 14}, 2));         /* no final newline */
    CHECK(sample_is(&ds, 4, (int32_t[]){20, 21, 22}, (int32_t[]){20, 21, 22}, 3)); /* CRLF, labels null */
    CHECK(sample_is(&ds, 5, (int32_t[]){23}, (int32_t[]){23}, 1));
    CHECK_EQ(ds.ntokens, 16);
    rt_data_free(&ds);

    /* vocab bound applies: 22 and 23 are out of range for vocab 20 */
    CHECK_EQ(rt_data_load(paths, 2, 20, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, JSONL "good2.jsonl:1"));
    CHECK(ax_diag_contains(&d, "input_ids[0]: token id 20 out of range [0, 20)"));
    CHECK(ax_diag_contains(&d, JSONL "good2.jsonl:3"));
    CHECK(ds.nsamples == 0 && ds.tokens == NULL);
    ax_diag_free(&d);

    /* every error in a file is reported with its line */
    ax_diag_init(&d);
    const char *bad[] = {JSONL "bad.jsonl"};
    CHECK_EQ(rt_data_load(bad, 1, 256, &ds, &d), -1);
    CHECK_EQ(d.nerrors, 4);
    if (d.n == 4) {
        CHECK_STREQ(d.entries[0].where, JSONL "bad.jsonl:2");
        CHECK_STREQ(d.entries[0].msg, "labels: length 2 differs from input_ids length 3");
        CHECK_STREQ(d.entries[1].where, JSONL "bad.jsonl:4");
        CHECK_STREQ(d.entries[1].msg, "input_ids[1]: token id 300 out of range [0, 256)");
        CHECK_CONTAINS(d.entries[2].where, JSONL "bad.jsonl:5:");
        CHECK_CONTAINS(d.entries[2].msg, "invalid JSON");
        CHECK_STREQ(d.entries[3].where, JSONL "bad.jsonl:6");
        CHECK_CONTAINS(d.entries[3].msg, "input_ids: missing");
    }
    ax_diag_free(&d);

    ax_diag_init(&d);
    const char *none[] = {JSONL "no-such-file.jsonl"};
    CHECK_EQ(rt_data_load(none, 1, 256, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "no-such-file.jsonl"));
    CHECK_EQ(rt_data_load(NULL, 0, 256, &ds, &d), 0); /* no files: an empty set */
    CHECK_EQ(ds.nsamples, 0);
    rt_data_free(&ds);
    ax_diag_free(&d);
}

static void expect_err(const char *text, int64_t vocab, const char *where, const char *msg, int line) {
    rt_dataset ds;
    memset(&ds, 0, sizeof ds);
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_data_load_text(text, strlen(text), "data.jsonl", vocab, &ds, &d);
    CHECK_MSG(rc == -1 && d.nerrors == 1, "line %d: rc %d errors %d", line, rc, d.nerrors);
    if (d.n >= 1) {
        CHECK_MSG(strncmp(d.entries[0].where, where, strlen(where)) == 0, "line %d: where '%s' != '%s'", line,
                  d.entries[0].where, where);
        CHECK_MSG(strstr(d.entries[0].msg, msg) != NULL, "line %d: '%s' lacks '%s'", line, d.entries[0].msg, msg);
    }
    CHECK_EQ(ds.nsamples, 0);
    rt_data_free(&ds);
    ax_diag_free(&d);
}

/* a .json file holding one array of pre-tokenized rows (HF's json loader reads that too): the same samples as the
 * JSON lines of the same rows, masks and labels applied alike */
static void test_load_array(void) {
    const char *lines = "{\"input_ids\":[1,2,3],\"labels\":[-100,2,3]}\n{\"input_ids\":[4,5],\"attention_mask\":[1,0]}\n";
    const char *array = " [ {\"input_ids\":[1,2,3],\"labels\":[-100,2,3]},\n{\"input_ids\":[4,5],\"attention_mask\":[1,0]} ]\n";
    rt_dataset a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load_text(lines, strlen(lines), "a.jsonl", 16, &a, &d), 0);
    CHECK_EQ(rt_data_load_text(array, strlen(array), "b.json", 16, &b, &d), 0);
    CHECK_EQ(d.nerrors, 0);
    CHECK_EQ(b.nsamples, 2);
    CHECK(a.nsamples == b.nsamples && a.offsets[a.nsamples] == b.offsets[b.nsamples] && b.offsets[2] == 4);
    for (int64_t i = 0; a.nsamples == b.nsamples && i < a.offsets[a.nsamples]; i++)
        CHECK(a.tokens[i] == b.tokens[i] && a.labels[i] == b.labels[i]);
    rt_data_free(&a);
    rt_data_free(&b);
    ax_diag_free(&d);
}

static void test_load_errors(void) {
    expect_err("\n\n{bad json\n", 256, "data.jsonl:3:", "invalid JSON", __LINE__);
    expect_err("{\"input_ids\":[1],\"input_ids\":[2]}", 256, "data.jsonl:1:", "duplicate", __LINE__);
    /* a file whose text is one JSON array is an array of rows (as HF's json loader reads a .json file) */
    expect_err("[1]\n", 256, "data.jsonl: row 0", "expected a JSON object, found integer", __LINE__);
    expect_err("[{\"input_ids\":[1]},\n {\"input_ids\":[1],}]", 256, "data.jsonl:2:", "invalid JSON", __LINE__);
    expect_err("[[1,2]]\n", 256, "data.jsonl: row 0", "expected a JSON object, found array", __LINE__);
    expect_err("{\"labels\":[1]}", 256, "data.jsonl:1", "input_ids: missing", __LINE__);
    expect_err("{\"input_ids\":\"abc\"}", 256, "data.jsonl:1", "input_ids: expected an array of integers, found string",
               __LINE__);
    expect_err("{\"input_ids\":[1,\"x\"]}", 256, "data.jsonl:1", "input_ids[1]: expected an integer, found string",
               __LINE__);
    expect_err("{\"input_ids\":[1,2.5]}", 256, "data.jsonl:1", "input_ids[1]: expected an integer, found real", __LINE__);
    expect_err("{\"input_ids\":[true]}", 256, "data.jsonl:1", "input_ids[0]: expected an integer, found boolean",
               __LINE__);
    expect_err("{\"input_ids\":[1,2],\"labels\":[1]}", 256, "data.jsonl:1",
               "labels: length 1 differs from input_ids length 2", __LINE__);
    expect_err("{\"input_ids\":[1,2],\"labels\":{}}", 256, "data.jsonl:1", "labels: expected an array", __LINE__);
    expect_err("{\"input_ids\":[1,2],\"labels\":[1,null]}", 256, "data.jsonl:1", "labels[1]: expected an integer",
               __LINE__);
    expect_err("\n{\"input_ids\":[1,300]}", 256, "data.jsonl:2", "input_ids[1]: token id 300 out of range [0, 256)",
               __LINE__);
    expect_err("{\"input_ids\":[-1]}", 256, "data.jsonl:1", "token id -1 out of range", __LINE__);
    expect_err("{\"input_ids\":[256]}", 256, "data.jsonl:1", "token id 256 out of range", __LINE__);
    expect_err("{\"input_ids\":[1],\"labels\":[-5]}", 256, "data.jsonl:1", "labels[0]: label -5 is neither -100",
               __LINE__);
    expect_err("{\"input_ids\":[1],\"labels\":[999]}", 256, "data.jsonl:1", "labels[0]: label 999", __LINE__);
    expect_err("{\"input_ids\":[1,2],\"attention_mask\":[1]}", 256, "data.jsonl:1",
               "attention_mask: length 1 differs from input_ids length 2", __LINE__);
    expect_err("{\"input_ids\":[1,2],\"attention_mask\":[1,2]}", 256, "data.jsonl:1",
               "attention_mask[1]: expected 0 or 1, found 2", __LINE__);
    expect_err("{\"input_ids\":[1,2],\"attention_mask\":\"11\"}", 256, "data.jsonl:1",
               "attention_mask: expected an array", __LINE__);
    expect_err("{\"input_ids\":[1]}", 0, "data.jsonl", "vocab_size 0 out of range", __LINE__);
    /* the example from the docs: line 17 */
    char big[4096] = "";
    for (int i = 0; i < 16; i++) strcat(big, "{\"input_ids\":[1]}\n");
    strcat(big, "{\"input_ids\":[1,2,3,4,5,6,7,8,9,10,11,12,13],\"labels\":[1,2,3,4,5,6,7,8,9,10,11,12]}\n");
    expect_err(big, 256, "data.jsonl:17", "labels: length 12 differs from input_ids length 13", __LINE__);
    /* too many errors: stops with a summary */
    char many[4096] = "";
    for (int i = 0; i < 30; i++) strcat(many, "{}\n");
    rt_dataset ds;
    memset(&ds, 0, sizeof ds);
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load_text(many, strlen(many), "m.jsonl", 256, &ds, &d), -1);
    CHECK(d.nerrors <= 21 && ax_diag_contains(&d, "too many errors"));
    ax_diag_free(&d);
}

/* ---- rows ---------------------------------------------------------------- */

/* Checks every documented invariant of r for dataset ds and options o. */
static void check_rows(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, const rt_rows *r) {
    const int64_t L = o->row_len > 0 ? o->row_len : o->seq_len, Ls = o->seq_len; /* a row's tokens, a sample's most */
    CHECK_EQ(r->seq_len, L);
    int64_t *order = malloc((size_t)(ds->nsamples + 1) * sizeof *order);
    int *seen = calloc((size_t)ds->nsamples + 1, sizeof *seen);
    int64_t k = 0, dropped = 0, targets = 0, bad = 0;
    const int first_fit = o->sample_packing && !o->pack_next_fit;
    /* seqs follow the kept samples (the dataset's order minus the dropped ones), shuffled by the epoch's order of
     * that many; first-fit: the rows a plain scan of the bins opened so far gives, in groups (each row's samples in
     * that order) */
    const int64_t gs = o->pack_group_size > 0 ? o->pack_group_size : 100000, bs = o->pack_bin_size > 0 ? o->pack_bin_size : 200;
    int64_t *kept = malloc((size_t)(ds->nsamples + 1) * sizeof *kept), *bin = malloc((size_t)(ds->nsamples + 1) * sizeof *bin);
    int64_t *room = malloc((size_t)(ds->nsamples + 1) * sizeof *room), *cnt = malloc((size_t)(ds->nsamples + 1) * sizeof *cnt);
    for (int64_t i = 0; i < ds->nsamples; i++) {
        if (rt_data_sample_len(ds, i) > Ls) {
            dropped++;
            continue;
        }
        kept[k++] = i;
    }
    rt_data_epoch_order(k, o->seed, epoch, order);
    for (int64_t i = 0; i < k; i++) bin[i] = kept[o->sequential ? i : order[i]];
    memcpy(kept, bin, sizeof *kept * (size_t)k);
    if (first_fit) {
        int64_t row = 0, q = 0;
        for (int64_t g0 = 0; g0 < k; g0 += gs) {
            int64_t nb = 0, g1 = g0 + gs < k ? g0 + gs : k;
            for (int64_t j = g0; j < g1; j++) {
                int64_t len = rt_data_sample_len(ds, kept[j]), b = 0;
                while (b < nb && !(room[b] >= len && cnt[b] < bs)) b++;
                if (b == nb) room[nb] = L, cnt[nb++] = 0;
                room[b] -= len, cnt[b]++, bin[j] = b;
            }
            for (int64_t b = 0; b < nb; b++, row++) {
                if (row >= r->nrows || r->row_seq_off[row] != q) bad++;
                for (int64_t j = g0; j < g1; j++)
                    if (bin[j] == b) bad += q >= r->nseqs || r->seqs[q++].sample != kept[j];
            }
        }
        CHECK_EQ(row, r->nrows);
    } else
        for (int64_t j = 0; j < k; j++)
            if (j >= r->nseqs || r->seqs[j].sample != kept[j]) bad++;
    free(kept);
    free(bin);
    free(room);
    free(cnt);
    CHECK_EQ(bad, 0);
    CHECK_EQ(k, r->nseqs);
    CHECK_EQ(dropped, r->ndropped);
    CHECK_EQ(r->row_seq_off[0], 0);
    CHECK_EQ(r->row_seq_off[r->nrows], r->nseqs);
    for (int64_t row = 0; row < r->nrows; row++) {
        const int32_t *ids = r->input_ids + row * L, *tg = r->targets + row * L, *pos = r->position_ids + row * L,
                      *sid = r->seq_ids + row * L;
        int64_t q0 = r->row_seq_off[row], q1 = r->row_seq_off[row + 1], used = 0;
        if (q1 <= q0) bad++; /* no empty rows */
        if (!o->sample_packing && q1 - q0 != 1) bad++;
        for (int64_t q = q0; q < q1; q++) {
            const rt_row_seq *s = &r->seqs[q];
            seen[s->sample]++;
            if (s->start != used || s->len != rt_data_sample_len(ds, s->sample)) bad++;
            const int32_t *tok = ds->tokens + ds->offsets[s->sample], *lab = ds->labels + ds->offsets[s->sample];
            for (int t = 0; t < s->len; t++) {
                int64_t c = s->start + t;
                int32_t want = t + 1 < s->len ? lab[t + 1] : RT_IGNORE_INDEX;
                if (ids[c] != tok[t] || tg[c] != want || pos[c] != t || sid[c] != q - q0) bad++;
            }
            used += s->len;
        }
        if (used > L) bad++;
        for (int64_t c = used; c < L; c++) /* padding: each its own id */
            if (ids[c] != o->pad_id || tg[c] != RT_IGNORE_INDEX || pos[c] != 0 || sid[c] != (q1 - q0) + (c - used))
                bad++;
        /* next-fit: the next row's first sample did not fit in this row */
        if (o->sample_packing && !first_fit && row + 1 < r->nrows && used + r->seqs[q1].len <= L) bad++;
        for (int64_t c = 0; c < L; c++) targets += tg[c] != RT_IGNORE_INDEX;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(targets, r->ntargets);
    CHECK_EQ(rt_rows_count_targets(r, 0, r->nrows), r->ntargets);
    /* multiset: every kept sample exactly once, dropped ones never */
    int64_t wrong = 0;
    for (int64_t i = 0; i < ds->nsamples; i++)
        wrong += seen[i] != (rt_data_sample_len(ds, i) <= Ls ? 1 : 0);
    CHECK_EQ(wrong, 0);
    free(order);
    free(seen);
}

static void test_prng(void) {
    uint64_t s = 0;
    CHECK(rt_splitmix64(&s) == 0xE220A8397B1DCDAFull); /* the published first output for state 0 */
    int64_t o[2];
    rt_data_epoch_order(0, 42, 1, o); /* n = 0, 1 are fine */
    rt_data_epoch_order(1, 42, 1, o);
    CHECK_EQ(o[0], 0);
}

static void load_text(const char *text, rt_dataset *ds);
/* rows[0..) of JSON lines a and b are equal JSON values; *rows counts them */
static int same_rows(const char *a, const char *b, int *rows) {
    *rows = 0;
    while (*a || *b) {
        const char *ae = strchr(a, '\n'), *be = strchr(b, '\n');
        if (!ae || !be) return 0;
        json_t *x = json_loadb(a, (size_t)(ae - a), 0, NULL), *y = json_loadb(b, (size_t)(be - b), 0, NULL);
        const int eq = x && y && json_equal(x, y);
        json_decref(x), json_decref(y);
        if (!eq) return 0;
        a = ae + 1, b = be + 1, (*rows)++;
    }
    return 1;
}

/* The rows the text reader (sep 0) or the csv reader makes of tests/reference/<dir>/<file>, into out; its return
 * code (-1 when the file cannot be read). path gets the file's path. */
static int fixture_rows(const char *dir, const char *file, char sep, ax_buf *out, ax_diag *d, char *path, size_t cap) {
    snprintf(path, cap, "%s/tests/reference/%s/%s", AXO_SOURCE_DIR, dir, file);
    size_t len = 0;
    char *buf = ax_read_file(path, &len, d);
    CHECK_MSG(buf != NULL, "%s: cannot read", path);
    const int rc = !buf ? -1 : sep ? rt_csv_rows(buf, len, path, sep, out, d) : rt_text_rows(buf, len, path, out, d);
    free(buf);
    return rc;
}

/* rt_text_rows = HF datasets' text loader (tests/reference/make_text_fixtures.py: load_dataset("text") on each
 * file): the same rows, and an error where datasets refuses the bytes (invalid UTF-8 as Python's strict codec
 * sees it: a bad byte, an overlong form, a surrogate, a cut sequence), naming the line */
static void test_text_rows(void) {
    static const struct { const char *name, *err_at; } cases[] = {
        {"plain", NULL},          {"no_final_newline", NULL}, {"crlf", NULL},          {"lone_cr", NULL},
        {"mixed_breaks", NULL},   {"blank_lines", NULL},      {"only_newline", NULL},  {"bom", NULL},
        {"other_separators", NULL}, {"escapes", NULL},        {"unicode", NULL},       {"empty", NULL},
        {"bad_utf8", ":2"},       {"overlong", ":2"},         {"surrogate", ":2"},     {"truncated_seq", ":2"}};
    for (size_t c = 0; c < AX_ARRAY_LEN(cases); c++) {
        char path[1024], want_path[1024], file[128];
        snprintf(file, sizeof file, "%s.txt", cases[c].name);
        snprintf(want_path, sizeof want_path, "%s/tests/reference/text/%s.jsonl", AXO_SOURCE_DIR, cases[c].name);
        ax_diag d;
        ax_diag_init(&d);
        size_t wlen = 0;
        ax_buf out = {0};
        const int rc = fixture_rows("text", file, 0, &out, &d, path, sizeof path);
        if (cases[c].err_at) {
            char at[1100];
            snprintf(at, sizeof at, "%s%s", path, cases[c].err_at);
            CHECK_MSG(rc == -1, "%s: expected an error (HF datasets refuses it)", cases[c].name);
            int found = 0;
            for (int e = 0; e < d.n; e++)
                found |= d.entries[e].sev == AX_SEV_ERROR && !strcmp(d.entries[e].where, at) &&
                         strstr(d.entries[e].msg, "not UTF-8 at byte offset") != NULL;
            CHECK_MSG(found, "%s: no error at %s naming the bad UTF-8", cases[c].name, at);
        } else {
            CHECK_MSG(rc == 0, "%s: %s", cases[c].name, d.n ? d.entries[0].msg : "");
            /* datasets refuses only the empty file of these: no row, which the data loader refuses (e2e parquet.sh) */
            const int empty = !strcmp(cases[c].name, "empty");
            CHECK_MSG(empty != ax_file_exists(want_path), "%s: HF datasets' rows are missing (or empty.jsonl exists)",
                      cases[c].name);
            CHECK_MSG(!empty || out.len == 0, "empty.txt: %zu bytes of rows", out.len);
            char *want = ax_file_exists(want_path) ? ax_read_file(want_path, &wlen, &d) : strdup("");
            int rows = 0;
            CHECK_MSG(same_rows(out.data ? out.data : "", want ? want : "", &rows),
                      "%s: rows differ from HF datasets' (after %d rows)", cases[c].name, rows);
            free(want);
        }
        ax_buf_free(&out);
        ax_diag_free(&d);
    }
}


/* p[0..n) against a fixture record: "order" whole, or "head", "tail" and "weighted_sum" */
static int order_matches(const json_t *rec, const int64_t *p, int64_t n) {
    const json_t *whole = json_object_get(rec, "order");
    int ok = 1;
    if (whole) {
        ok &= (int64_t)json_array_size(whole) == n;
        for (int64_t k = 0; ok && k < n; k++) ok &= json_integer_value(json_array_get(whole, (size_t)k)) == p[k];
        return ok;
    }
    const json_t *h = json_object_get(rec, "head"), *t = json_object_get(rec, "tail");
    for (int64_t k = 0; k < 16; k++)
        ok &= json_integer_value(json_array_get(h, (size_t)k)) == p[k] &&
              json_integer_value(json_array_get(t, (size_t)k)) == p[n - 16 + k];
    uint64_t ws = 0;
    for (int64_t k = 0; k < n; k++) ws += (uint64_t)k * (uint64_t)p[k];
    return ok && strtoull(json_string_value(json_object_get(rec, "weighted_sum")), NULL, 10) == ws;
}

/* The training order = HF Trainer's (transformers 5.16 under accelerate 1.13,
 * tests/reference/make_torch_order_fixtures.py): its own train dataloader
 * iterated epoch by epoch, seeds 0 to 2^32 - 1 (2^32 - 1 + 1 wraps to 0 as
 * torch's manual_seed does), n from 1 to 70000; and rt_torch_randperm =
 * torch.randperm on a seeded CPU generator, across MT19937's 624-draw refill */
static void test_torch_order(void) {
    json_error_t err;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/torch_order.json", 0, &err);
    CHECK_MSG(fx != NULL, "torch_order.json: %s", err.text);
    size_t i, e;
    json_t *c, *ep;
    int ncases = 0;
    json_array_foreach(json_object_get(fx, "trainer"), i, c) {
        uint64_t seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
        int64_t n = json_integer_value(json_object_get(c, "n"));
        int64_t *p = malloc(sizeof *p * (size_t)n);
        json_array_foreach(json_object_get(c, "epochs"), e, ep) {
            const int64_t epoch = json_integer_value(json_object_get(ep, "epoch"));
            rt_data_epoch_order(n, seed, epoch, p);
            CHECK_MSG(order_matches(ep, p, n), "HF Trainer's order: seed %llu n %lld epoch %lld differs",
                      (unsigned long long)seed, (long long)n, (long long)epoch);
            ncases++;
        }
        free(p);
    }
    json_array_foreach(json_object_get(fx, "randperm"), i, c) {
        uint64_t seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
        int64_t n = json_integer_value(json_object_get(c, "n"));
        int64_t *p = malloc(sizeof *p * (size_t)n);
        rt_torch_randperm(seed, n, p);
        CHECK_MSG(order_matches(c, p, n), "torch.randperm seed %llu n %lld differs", (unsigned long long)seed,
                  (long long)n);
        free(p);
        ncases++;
    }
    CHECK_EQ(ncases, 24);
    /* packed: Axolotl's MultipackBatchSampler under accelerate yields first-fit packs of the same order; it stops
     * at the least bin count of four packings it drew from torch's global generator (not reproducible, and at
     * most a bin or two short), so its bins must be the first of the epoch's rows */
    int npacked = 0;
    json_array_foreach(json_object_get(fx, "multipack"), i, c) {
        const json_t *lens = json_object_get(c, "lengths");
        ax_buf text = {0};
        for (size_t k = 0; k < json_array_size(lens); k++) {
            ax_buf_printf(&text, "{\"input_ids\": [");
            for (json_int_t t = 0; t < json_integer_value(json_array_get(lens, k)); t++)
                ax_buf_printf(&text, "%s%d", t ? "," : "", 3 + (int)((k + (size_t)t) % 90));
            ax_buf_printf(&text, "]}\n");
        }
        rt_dataset ds;
        load_text(text.data, &ds);
        rt_data_opts o = {.seq_len = json_integer_value(json_object_get(c, "capacity")),
                          .sample_packing = 1,
                          .seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10),
                          .pack_group_size = json_integer_value(json_object_get(c, "group_size")),
                          .pack_bin_size = json_integer_value(json_object_get(c, "bin_size"))};
        json_array_foreach(json_object_get(c, "epochs"), e, ep) {
            const json_t *bins = json_object_get(ep, "bins");
            rt_rows r;
            ax_diag d;
            ax_diag_init(&d);
            CHECK_EQ(rt_data_build_epoch(&ds, &o, json_integer_value(json_object_get(ep, "epoch")), &r, &d), 0);
            int ok = r.nrows >= (int64_t)json_array_size(bins) && r.nrows <= (int64_t)json_array_size(bins) + 2;
            for (size_t b = 0; ok && b < json_array_size(bins); b++) {
                const json_t *bin = json_array_get(bins, b);
                ok &= r.row_seq_off[b + 1] - r.row_seq_off[b] == (int64_t)json_array_size(bin);
                for (size_t q = 0; ok && q < json_array_size(bin); q++)
                    ok &= r.seqs[r.row_seq_off[b] + (int64_t)q].sample == json_integer_value(json_array_get(bin, q));
            }
            CHECK_MSG(ok, "multipack case %zu epoch %zu: axo's rows are not Axolotl's bins (%lld rows, %zu bins)", i, e,
                      (long long)r.nrows, json_array_size(bins));
            npacked++;
            rt_rows_free(&r);
            ax_diag_free(&d);
        }
        rt_data_free(&ds);
        ax_buf_free(&text);
    }
    CHECK_EQ(npacked, 4);
    json_decref(fx);
}

/* rt_csv_rows = HF datasets' csv loader (tests/reference/make_csv_fixtures.py: load_dataset("csv") on each file,
 * pandas 3 in chunks of 10,000 rows): the same rows (NaN and infinities null, integers above 2^63 - 1 as
 * floats), and an error where datasets raises; only_header's no rows are refused later, by the data loader. One
 * file datasets reads is refused on purpose: a column of an integer above 2^63 - 1 and a negative one, which
 * pandas reads as floats or as every value's text depending on the values' order */
static void test_csv_rows(void) {
    static const char *const cases[] = {
        "ints", "int_na", "floats", "bools", "bool_na", "spaces", "infinities", "nas", "nas_str", "quoted",
        "quoted_na", "newline_in_quote", "big_int", "neg_big", "too_big", "neg_and_big", "hex_and_more", "dup_header",
        "empty_header", "fewer_fields", "more_fields", "blank_lines", "space_fields", "crlf", "cr", "bom",
        "no_final_newline", "only_header", "empty", "mixed", "quote_mid", "eof_in_quote", "unicode", "bad_utf8",
        "header_spaces", "alpaca", "chunk_int_then_na", "chunk_int_then_float", "chunk_int_then_whole_float",
        "chunk_str_then_int", "chunk_str_then_bool", "chunk_float_then_int", "chunk_na_then_str", "chunk_int_then_str",
        "tabs"};
    int nok = 0, nerr = 0;
    for (size_t c = 0; c < AX_ARRAY_LEN(cases); c++) {
        const int tsv = !strcmp(cases[c], "tabs");
        char path[1024], want_path[1024], file[128];
        snprintf(file, sizeof file, "%s.%s", cases[c], tsv ? "tsv" : "csv");
        snprintf(want_path, sizeof want_path, "%s/tests/reference/csv/%s.jsonl", AXO_SOURCE_DIR, cases[c]);
        ax_diag d;
        ax_diag_init(&d);
        size_t wlen = 0;
        ax_buf out = {0};
        const int rc = fixture_rows("csv", file, tsv ? '\t' : ',', &out, &d, path, sizeof path);
        const int accepted = ax_file_exists(want_path) || !strcmp(cases[c], "only_header");
        if (!strcmp(cases[c], "neg_and_big")) { /* read by datasets, refused by axo: pandas' reading is order-dependent */
            CHECK_MSG(rc == -1 && ax_diag_contains(&d, "depends on the values' order, which axo does not reproduce"),
                      "neg_and_big: axo should refuse a column of a uint64 and a negative integer");
            nerr++;
        } else if (!accepted) {
            CHECK_MSG(rc == -1 && d.nerrors > 0, "%s: HF datasets refuses it, axo read %zu bytes of rows", cases[c], out.len);
            nerr++;
        } else {
            CHECK_MSG(rc == 0, "%s: %s", cases[c], d.n ? d.entries[0].msg : "");
            char *want = ax_file_exists(want_path) ? ax_read_file(want_path, &wlen, &d) : strdup("");
            int rows = 0;
            CHECK_MSG(rc != 0 || same_rows(out.data ? out.data : "", want ? want : "", &rows),
                      "%s: rows differ from HF datasets' (after %d rows)", cases[c], rows);
            free(want);
            nok++;
        }
        ax_buf_free(&out);
        ax_diag_free(&d);
    }
    CHECK_EQ(nok, 35);
    CHECK_EQ(nerr, 10);
}

static void load_text(const char *text, rt_dataset *ds) {
    ax_diag d;
    ax_diag_init(&d);
    memset(ds, 0, sizeof *ds);
    CHECK_EQ(rt_data_load_text(text, strlen(text), "t.jsonl", 100, ds, &d), 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
}

static void test_rows_exact(void) {
    /* two samples packed into one row of 8: A=[5,6,7] labels [-100,6,7],
     * B=[8,9] labels default; pad 0. */
    rt_dataset ds;
    load_text("{\"input_ids\":[5,6,7],\"labels\":[-100,6,7]}\n{\"input_ids\":[8,9]}\n", &ds);
    rt_data_opts o = {.seq_len = 8, .sample_packing = 1, .seed = 7, .pad_id = 0};
    rt_rows r;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nrows, 1);
    CHECK_EQ(r.nseqs, 2);
    int a_first = r.seqs[0].sample == 0;
    const int32_t ids_ab[] = {5, 6, 7, 8, 9, 0, 0, 0}, ids_ba[] = {8, 9, 5, 6, 7, 0, 0, 0};
    const int32_t tg_ab[] = {6, 7, -100, 9, -100, -100, -100, -100}, tg_ba[] = {9, -100, 6, 7, -100, -100, -100, -100};
    const int32_t pos_ab[] = {0, 1, 2, 0, 1, 0, 0, 0}, pos_ba[] = {0, 1, 0, 1, 2, 0, 0, 0};
    const int32_t sid_ab[] = {0, 0, 0, 1, 1, 2, 3, 4}, sid_ba[] = {0, 0, 1, 1, 1, 2, 3, 4};
    CHECK(memcmp(r.input_ids, a_first ? ids_ab : ids_ba, sizeof ids_ab) == 0);
    CHECK(memcmp(r.targets, a_first ? tg_ab : tg_ba, sizeof tg_ab) == 0);
    CHECK(memcmp(r.position_ids, a_first ? pos_ab : pos_ba, sizeof pos_ab) == 0);
    CHECK(memcmp(r.seq_ids, a_first ? sid_ab : sid_ba, sizeof sid_ab) == 0);
    CHECK_EQ(r.ntargets, 3);
    check_rows(&ds, &o, 0, &r);
    rt_rows_free(&r);

    /* same data unpacked, seq_len 4, pad 99: two rows */
    o = (rt_data_opts){.seq_len = 4, .sample_packing = 0, .seed = 7, .pad_id = 99};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nrows, 2);
    int ra = r.seqs[0].sample == 0 ? 0 : 1; /* row holding A */
    const int32_t ids_a[] = {5, 6, 7, 99}, tg_a[] = {6, 7, -100, -100}, sid_a[] = {0, 0, 0, 1};
    const int32_t ids_b[] = {8, 9, 99, 99}, tg_b[] = {9, -100, -100, -100}, sid_b[] = {0, 0, 1, 2};
    CHECK(memcmp(r.input_ids + 4 * ra, ids_a, sizeof ids_a) == 0);
    CHECK(memcmp(r.targets + 4 * ra, tg_a, sizeof tg_a) == 0);
    CHECK(memcmp(r.seq_ids + 4 * ra, sid_a, sizeof sid_a) == 0);
    CHECK(memcmp(r.input_ids + 4 * (1 - ra), ids_b, sizeof ids_b) == 0);
    CHECK(memcmp(r.targets + 4 * (1 - ra), tg_b, sizeof tg_b) == 0);
    CHECK(memcmp(r.seq_ids + 4 * (1 - ra), sid_b, sizeof sid_b) == 0);
    CHECK_EQ(rt_rows_count_targets(&r, ra, 1), 2);
    CHECK_EQ(rt_rows_count_targets(&r, 1 - ra, 1), 1);
    CHECK_EQ(rt_rows_count_targets(&r, 0, 100), 3);
    CHECK_EQ(rt_rows_count_targets(&r, -1, 2), rt_rows_count_targets(&r, 0, 1));
    CHECK_EQ(rt_rows_count_targets(&r, 2, 1), 0);
    check_rows(&ds, &o, 0, &r);
    rt_rows_free(&r);

    /* a sample of exactly seq_len fits; one longer is dropped */
    o = (rt_data_opts){.seq_len = 2, .sample_packing = 1, .seed = 7, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 3, &r, &d), 0);
    CHECK_EQ(r.nrows, 1);
    CHECK_EQ(r.ndropped, 1);
    CHECK_EQ(r.seqs[0].sample, 1);
    CHECK_EQ(r.ntargets, 1);
    rt_rows_free(&r);

    /* a bin of row_len 5 holds both samples (3 + 2 tokens) though each is at most seq_len 3; a sample longer than
     * seq_len is dropped even where the bin has room for it */
    o = (rt_data_opts){.seq_len = 3, .row_len = 5, .sample_packing = 1, .seed = 7, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nrows, 1);
    CHECK_EQ(r.seq_len, 5);
    CHECK_EQ(r.nseqs, 2);
    CHECK_EQ(r.ndropped, 0);
    CHECK(memcmp(r.input_ids, a_first ? ids_ab : ids_ba, sizeof(int32_t) * 5) == 0);
    check_rows(&ds, &o, 0, &r);
    rt_rows_free(&r);
    o = (rt_data_opts){.seq_len = 2, .row_len = 8, .sample_packing = 1, .seed = 7, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nrows, 1);
    CHECK_EQ(r.nseqs, 1);
    CHECK_EQ(r.ndropped, 1);
    CHECK_EQ(r.seqs[0].sample, 1);
    rt_rows_free(&r);

    /* bad options */
    o = (rt_data_opts){.seq_len = 4, .row_len = 3, .sample_packing = 1, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), -1);
    CHECK(ax_diag_contains(&d, "row length 3: expected a packed row of sequence_len 4 tokens or more"));
    o = (rt_data_opts){.seq_len = 4, .row_len = 8, .sample_packing = 0, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), -1);
    CHECK(ax_diag_contains(&d, "row length 8: a row longer than sequence_len holds packed samples only"));
    o = (rt_data_opts){.seq_len = 0, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), -1);
    CHECK(ax_diag_contains(&d, "sequence_len 0 out of range"));
    o = (rt_data_opts){.seq_len = 4, .pad_id = 100};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), -1);
    CHECK(ax_diag_contains(&d, "pad token id 100 out of range [0, 100)"));
    rt_rows_free(&r);
    ax_diag_free(&d);
    rt_data_free(&ds);
}

static void test_rows_toy(void) {
    const char *paths[] = {AXO_SOURCE_DIR "/configs/data/toy_reverse.jsonl"};
    rt_dataset ds;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load(paths, 1, 256, &ds, &d), 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(ds.nsamples, 3000);
    CHECK_EQ(ds.ntokens, 92776);
    /* structure of the reverse task: BOS, k tokens, SEP, reversed, EOS */
    int64_t bad = 0, maxlen = 0, over32 = 0;
    for (int64_t i = 0; i < ds.nsamples; i++) {
        int64_t n = rt_data_sample_len(&ds, i), k = (n - 3) / 2;
        const int32_t *t = ds.tokens + ds.offsets[i], *l = ds.labels + ds.offsets[i];
        if (n > maxlen) maxlen = n;
        over32 += n > 32;
        if ((n - 3) % 2 || k < 4 || k > 24 || t[0] != 1 || t[k + 1] != 2 || t[n - 1] != 3) bad++;
        for (int64_t j = 0; j < k && !bad; j++)
            if (t[1 + j] != t[n - 2 - j] || t[1 + j] < 16 || t[1 + j] > 79) bad++;
        for (int64_t j = 0; j < n; j++)
            if (l[j] != (j <= k + 1 ? -100 : t[j])) bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(maxlen, 51);

    rt_data_opts o = {.seq_len = 64, .sample_packing = 1, .seed = 1234, .pad_id = 0};
    rt_rows a, b, c, e;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &a, &d), 0);
    CHECK_EQ(a.ndropped, 0);
    CHECK_EQ(a.ntargets, 44888); /* sum over samples of (k + 1) */
    CHECK(ds.ntokens * 100 > a.nrows * 64 * 65); /* next-fit fills rows: 1975 rows, 73% full */
    check_rows(&ds, &o, 0, &a);
    /* split the rows like ranks/micro-batches: counts add up */
    int64_t sum = 0;
    for (int64_t r0 = 0; r0 < a.nrows; r0 += 7) sum += rt_rows_count_targets(&a, r0, 7);
    CHECK_EQ(sum, a.ntargets);

    /* determinism: same seed+epoch -> same bytes */
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &b, &d), 0);
    size_t cells = (size_t)(a.nrows * a.seq_len) * sizeof(int32_t);
    CHECK(a.nrows == b.nrows && memcmp(a.input_ids, b.input_ids, cells) == 0 &&
          memcmp(a.targets, b.targets, cells) == 0 && memcmp(a.position_ids, b.position_ids, cells) == 0 &&
          memcmp(a.seq_ids, b.seq_ids, cells) == 0);
    /* another epoch: a different order, same multiset (check_rows) */
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 1, &c, &d), 0);
    check_rows(&ds, &o, 1, &c);
    int64_t same = 0;
    for (int64_t i = 0; i < a.nseqs && i < c.nseqs; i++) same += a.seqs[i].sample == c.seqs[i].sample;
    CHECK(same < 20);
    CHECK_EQ(c.ntargets, a.ntargets);
    rt_rows_free(&c);
    /* another seed differs too */
    o.seed = 1235;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &c, &d), 0);
    CHECK(memcmp(a.seqs, c.seqs, 16 * sizeof *a.seqs) != 0);
    rt_rows_free(&c);

    /* unpacked: one per row; seq_len 32 drops the long ones */
    o = (rt_data_opts){.seq_len = 32, .sample_packing = 0, .seed = 5, .pad_id = 0};
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 2, &e, &d), 0);
    CHECK_EQ(e.ndropped, over32);
    CHECK(over32 > 0);
    CHECK_EQ(e.nrows, ds.nsamples - over32);
    check_rows(&ds, &o, 2, &e);
    rt_rows_free(&e);
    o.sample_packing = 1;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 2, &e, &d), 0);
    CHECK_EQ(e.ndropped, over32);
    check_rows(&ds, &o, 2, &e);
    rt_rows_free(&e);
    /* bins of 4 x 32 tokens (one bin a micro-batch), samples still at most 32: the same samples dropped, fewer and
     * fuller rows than bins of 32 */
    const int64_t rows32 = rt_data_count_rows(&ds, &o, 2, &d);
    o.row_len = 128;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 2, &e, &d), 0);
    CHECK_EQ(e.ndropped, over32);
    CHECK_EQ(e.seq_len, 128);
    CHECK(e.nrows * 4 < rows32 && e.nrows * 4 > rows32 / 2);
    check_rows(&ds, &o, 2, &e);
    rt_rows_free(&e);

    rt_rows_free(&a);
    rt_rows_free(&b);
    CHECK_EQ(d.nerrors, 0);
    ax_diag_free(&d);
    rt_data_free(&ds);
}

static void test_empty(void) {
    rt_dataset ds;
    load_text("\n\n", &ds);
    rt_data_opts o = {.seq_len = 16, .sample_packing = 1, .seed = 1, .pad_id = 0};
    rt_rows r;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nrows, 0);
    CHECK_EQ(r.ntargets, 0);
    CHECK_EQ(rt_rows_count_targets(&r, 0, 10), 0);
    rt_rows_free(&r);
    ax_diag_free(&d);
    rt_data_free(&ds);
}

/* excess_length_strategy: drop (default), truncate, raise */
static void test_excess(void) {
    const char *text = "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4, 5, 6, 7, 8, 9, 10]}\n";
    rt_dataset ds = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load_text(text, strlen(text), "x.jsonl", 16, &ds, &d), 0);
    rt_data_opts o = {.seq_len = 5, .seed = 1};
    rt_rows r;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nseqs, 1);
    CHECK_EQ(r.ndropped, 1);
    rt_rows_free(&r);
    o.excess = RT_EXCESS_TRUNCATE;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
    CHECK_EQ(r.nseqs, 2);
    CHECK_EQ(r.ndropped, 0);
    CHECK_EQ(r.ntruncated, 1);
    for (int64_t q = 0; q < r.nseqs; q++) {
        if (r.seqs[q].sample != 1) continue;
        const int64_t row = q; /* no packing: one sequence per row */
        CHECK_EQ(r.seqs[q].len, 5);
        CHECK_EQ(r.input_ids[row * 5 + 4], 8);          /* the first 5 tokens */
        CHECK_EQ(r.targets[row * 5 + 3], 8);
        CHECK_EQ(r.targets[row * 5 + 4], RT_IGNORE_INDEX); /* nothing after the cut is predicted */
    }
    rt_rows_free(&r);
    o.excess = RT_EXCESS_RAISE;
    CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), -1);
    CHECK(ax_diag_contains(&d, "sample 1 has 7 tokens, more than sequence_len 5"));
    rt_data_free(&ds);
    ax_diag_free(&d);
}

/* rt_np_permutation = numpy's default_rng(seed).permutation(n)
 * (tests/reference/make_numpy_perm_fixtures.py): whole permutations, or
 * the ends and a weighted sum of long ones (n up to 200000, 32-bit draws;
 * seeds of one and two 32-bit words, 0 and 2^64 - 1) */
static void test_np_permutation(void) {
    json_error_t err;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/numpy_permutation.json", 0, &err);
    CHECK_MSG(fx != NULL, "numpy_permutation.json: %s", err.text);
    size_t i;
    json_t *c;
    json_array_foreach(fx, i, c) {
        uint64_t seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
        int64_t n = json_integer_value(json_object_get(c, "n"));
        int64_t *p = malloc(sizeof *p * (size_t)n);
        rt_np_permutation(seed, n, p);
        json_t *whole = json_object_get(c, "perm");
        int ok = 1;
        if (whole) {
            for (int64_t k = 0; k < n; k++) ok &= json_integer_value(json_array_get(whole, (size_t)k)) == p[k];
        } else {
            json_t *h = json_object_get(c, "head"), *t = json_object_get(c, "tail");
            for (int64_t k = 0; k < 16; k++)
                ok &= json_integer_value(json_array_get(h, (size_t)k)) == p[k] &&
                      json_integer_value(json_array_get(t, (size_t)k)) == p[n - 16 + k];
            uint64_t ws = 0;
            for (int64_t k = 0; k < n; k++) ws += (uint64_t)k * (uint64_t)p[k];
            ok &= strtoull(json_string_value(json_object_get(c, "weighted_sum")), NULL, 10) == ws;
        }
        CHECK_MSG(ok, "numpy permutation seed %llu n %lld differs", (unsigned long long)seed, (long long)n);
        free(p);
    }
    json_decref(fx);
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* An epoch's steps = HF Trainer's updates over accelerate's sharded batches
 * (tests/reference/make_batching_fixtures.py runs accelerate's
 * BatchSamplerShard): each step's samples over all ranks, as a multiset, for
 * one and several ranks, top-up and drop_last, short last steps. */
static void test_batching(void) {
    json_error_t err;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/batching.json", 0, &err);
    CHECK_MSG(fx != NULL, "batching.json: %s", err.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(fx, "cases"), i, c) {
        const rt_batching b = {.B = json_integer_value(json_object_get(c, "micro_batch_size")),
                               .ga = json_integer_value(json_object_get(c, "gradient_accumulation_steps")),
                               .nranks = json_integer_value(json_object_get(c, "ranks")),
                               .drop_last = json_is_true(json_object_get(c, "drop_last"))};
        const int64_t n = json_integer_value(json_object_get(c, "n")), G = b.B * b.ga * b.nranks;
        const json_t *steps = json_object_get(c, "steps");
        const rt_epoch_span e = rt_epoch_span_of(&b, n);
        int ok = e.nsteps == (int64_t)json_array_size(steps);
        int64_t *got = malloc(sizeof *got * (size_t)G);
        for (int64_t st = 0; ok && st < e.nsteps; st++) {
            int64_t k = 0;
            for (int64_t j = 0; j < G; j++) {
                const int64_t r = rt_epoch_row(&b, &e, st, j);
                ok &= r >= -1 && r < n;
                if (r >= 0) got[k++] = r;
            }
            qsort(got, (size_t)k, sizeof *got, cmp_i64);
            const json_t *want = json_array_get(steps, (size_t)st);
            ok &= k == (int64_t)json_array_size(want);
            for (int64_t j = 0; ok && j < k; j++) ok &= json_integer_value(json_array_get(want, (size_t)j)) == got[j];
        }
        CHECK_MSG(ok, "batching n %lld, B %lld, ga %lld, %lld ranks, drop_last %d: steps differ from HF's", (long long)n,
                  (long long)b.B, (long long)b.ga, (long long)b.nranks, b.drop_last);
        free(got);
    }
    json_decref(fx);
}

/* A dataset of samples of the given lengths (a JSON array), in that order: [1, 2, 2, ...]. */
static void load_lengths(const json_t *lens, rt_dataset *ds, ax_diag *d) {
    ax_buf t = {0};
    for (size_t k = 0; k < json_array_size(lens); k++) {
        ax_buf_puts(&t, "{\"input_ids\": [1");
        for (json_int_t j = 1; j < json_integer_value(json_array_get(lens, k)); j++) ax_buf_puts(&t, ", 2");
        ax_buf_puts(&t, "]}\n");
    }
    memset(ds, 0, sizeof *ds);
    CHECK(rt_data_load_text(t.data, t.len, "lengths.jsonl", 16, ds, d) == 0);
    ax_buf_free(&t);
}

/* Packed rows in dataset order (curriculum_sampling) = the bins of Axolotl's multipack sampler
 * (tests/reference/make_packing_fixtures.py runs its pack_parallel / allocate_sequentially): first-fit in groups,
 * at most bin_size samples a row, or next-fit */
static void test_packing_axolotl(void) {
    json_error_t err;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/packing.json", 0, &err);
    CHECK_MSG(fx != NULL, "packing.json: %s", err.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(fx, "cases"), i, c) {
        const json_t *lens = json_object_get(c, "lengths"), *bins = json_object_get(c, "bins");
        rt_dataset ds;
        ax_diag d;
        ax_diag_init(&d);
        load_lengths(lens, &ds, &d);
        rt_data_opts o = {.seq_len = json_integer_value(json_object_get(c, "capacity")), .sample_packing = 1,
                          .sequential = 1, .pack_next_fit = json_is_true(json_object_get(c, "sequential")),
                          .pack_group_size = json_integer_value(json_object_get(c, "group_size")),
                          .pack_bin_size = json_integer_value(json_object_get(c, "bin_size"))};
        rt_rows r;
        CHECK(rt_data_build_epoch(&ds, &o, 0, &r, &d) == 0);
        int ok = r.nrows == (int64_t)json_array_size(bins);
        for (int64_t row = 0; ok && row < r.nrows; row++) {
            const json_t *b = json_array_get(bins, (size_t)row);
            ok &= r.row_seq_off[row + 1] - r.row_seq_off[row] == (int64_t)json_array_size(b);
            for (int64_t q = r.row_seq_off[row]; ok && q < r.row_seq_off[row + 1]; q++)
                ok &= r.seqs[q].sample == json_integer_value(json_array_get(b, (size_t)(q - r.row_seq_off[row])));
        }
        CHECK_MSG(ok, "packing case %zu: %lld rows, Axolotl's bins %zu, or their samples differ", i, (long long)r.nrows,
                  json_array_size(bins));
        rt_rows_free(&r);
        rt_data_free(&ds);
        ax_diag_free(&d);
    }
    json_decref(fx);
}

/* group_by_length: the samples in a given order (sequential) grouped as transformers' get_length_grouped_indices
 * groups them (tests/reference/make_length_group_fixtures.py runs it from its source): megabatches, each sorted by
 * length (stably, ties in order), the longest first */
static void test_length_groups(void) {
    json_error_t err;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/length_groups.json", 0, &err);
    CHECK_MSG(fx != NULL, "length_groups.json: %s", err.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(fx, "cases"), i, c) {
        const json_t *lens = json_object_get(c, "lengths"), *want = json_object_get(c, "order");
        rt_dataset ds;
        ax_diag d;
        ax_diag_init(&d);
        load_lengths(lens, &ds, &d);
        rt_data_opts o = {.seq_len = 64, .sequential = 1, .group_batch = json_integer_value(json_object_get(c, "batch_size"))};
        rt_rows r;
        CHECK(rt_data_build_epoch(&ds, &o, 0, &r, &d) == 0);
        int ok = r.nrows == (int64_t)json_array_size(want);
        for (int64_t q = 0; ok && q < r.nrows; q++) ok &= r.seqs[r.row_seq_off[q]].sample == json_integer_value(json_array_get(want, (size_t)q));
        CHECK_MSG(ok, "group_by_length case %zu (%lld samples): the order differs from transformers'", i, (long long)r.nrows);
        rt_rows_free(&r);
        rt_data_free(&ds);
        ax_diag_free(&d);
    }
    json_decref(fx);
}

/* dataset_exact_deduplication: later copies go (tokens and labels equal), and under truncate two samples
 * equal in their first seq_len tokens are copies */
static void test_dedup(void) {
    const char *t = "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 2, 4]}\n{\"input_ids\": [1, 2, 3]}\n"
                    "{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n{\"input_ids\": [1, 2, 4, 9]}\n";
    for (int trunc = 0; trunc < 2; trunc++) {
        rt_dataset ds = {0};
        ax_diag d;
        ax_diag_init(&d);
        CHECK(rt_data_load_text(t, strlen(t), "d.jsonl", 16, &ds, &d) == 0);
        rt_split_opts o = {.seq_len = 3, .excess = trunc ? RT_EXCESS_TRUNCATE : RT_EXCESS_DROP, .dedup = 1};
        CHECK_EQ(rt_data_merge_order(&ds, &o), trunc ? 2 : 1);
        CHECK_EQ(ds.nsamples, trunc ? 3 : 4);
        CHECK(rt_data_sample_len(&ds, 0) == 3 && ds.tokens[2] == 3 && ds.tokens[5] == 4); /* first copies kept, in order */
        rt_data_free(&ds);
        ax_diag_free(&d);
    }
}

/* min_sample_len: Axolotl drops samples under 2 tokens (its `min_sample_len or 2`), or under the given length,
 * before it truncates */
static void test_min_len(void) {
    const char *text = "{\"input_ids\": [1]}\n{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 2, 3, 4, 5, 6, 7]}\n";
    rt_dataset ds = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_data_load_text(text, strlen(text), "m.jsonl", 16, &ds, &d), 0);
    const struct {
        int64_t min;
        int excess;
        int64_t nseqs, nshort, ndropped;
    } c[] = {{0, RT_EXCESS_DROP, 1, 1, 1}, {1, RT_EXCESS_DROP, 2, 0, 1}, {3, RT_EXCESS_TRUNCATE, 1, 2, 0},
             {8, RT_EXCESS_TRUNCATE, 0, 3, 0}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rt_data_opts o = {.seq_len = 5, .seed = 1, .min_len = c[i].min, .excess = c[i].excess};
        rt_rows r;
        CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
        CHECK_MSG(r.nseqs == c[i].nseqs && r.nshort == c[i].nshort && r.ndropped == c[i].ndropped,
                  "min_len %lld: %lld sequences, %lld short, %lld long", (long long)c[i].min, (long long)r.nseqs,
                  (long long)r.nshort, (long long)r.ndropped);
        rt_rows_free(&r);
    }
    rt_data_free(&ds);
    ax_diag_free(&d);
}

int main(void) {
    test_np_permutation();
    test_torch_order();
    test_text_rows();
    test_csv_rows();
    test_batching();
    test_packing_axolotl();
    test_length_groups();
    test_min_len();
    test_dedup();
    test_excess();
    test_load();
    test_load_errors();
    test_load_array();
    test_prng();
    test_rows_exact();
    test_rows_toy();
    test_empty();
    return check_done();
}
