#include "runtime/data.h"

#include "runtime/csv.h"
#include "runtime/parquet.h"
#include "runtime/prompt.h"

#include <jansson.h>
#include <xxhash.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOAD_ERRORS 20

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Checks that v is an array of integers (booleans too for attention_mask)
 * and copies it into out (sized by the caller). Returns the length, or -1
 * after an error at `loc` naming key[index]. */
static int64_t int_array(const json_t *v, const char *key, const char *loc, int64_t *out, ax_diag *d) {
    if (!json_is_array(v)) {
        ax_error(d, loc, "%s: expected an array of integers, found %s", key, json_kind(v));
        return -1;
    }
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        if (json_is_integer(x)) {
            if (out) out[i] = (int64_t)json_integer_value(x);
        } else if (json_is_boolean(x) && strcmp(key, "attention_mask") == 0) {
            if (out) out[i] = json_is_true(x) ? 1 : 0;
        } else {
            ax_error(d, loc, "%s[%zu]: expected an integer, found %s", key, i, json_kind(x));
            return -1;
        }
    }
    return (int64_t)n;
}

/* Parses one non-blank line; appends to tok/lab and returns the kept length,
 * or -1 after an error. */
/* One pre-tokenized row (a JSON object; root is not freed): its kept tokens appended; their count, or -1 after an
 * error at loc. */
static int64_t parse_row(const json_t *root, const char *loc, int64_t vocab, ax_buf *tok, ax_buf *lab, ax_diag *d) {
    int64_t kept = -1;
    int64_t *ids = NULL, *labels = NULL, *mask = NULL;
    if (!json_is_object(root)) {
        ax_error(d, loc, "expected a JSON object, found %s", json_kind(root));
        goto done;
    }
    const json_t *jids = json_object_get(root, "input_ids");
    const json_t *jlab = json_object_get(root, "labels");
    const json_t *jmask = json_object_get(root, "attention_mask");
    if (!jids) {
        ax_error(d, loc, "input_ids: missing (the pre-tokenized format needs \"input_ids\")");
        goto done;
    }
    size_t n = json_is_array(jids) ? json_array_size(jids) : 0;
    ids = malloc((n + 1) * sizeof *ids);
    labels = malloc((n + 1) * sizeof *labels);
    mask = malloc((n + 1) * sizeof *mask);
    if (!ids || !labels || !mask) abort();
    if (int_array(jids, "input_ids", loc, ids, d) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            ax_error(d, loc, "input_ids[%zu]: token id %lld out of range [0, %lld)", i, (long long)ids[i],
                     (long long)vocab);
            goto done;
        }
    }
    if (jlab && !json_is_null(jlab)) {
        if (json_is_array(jlab) && json_array_size(jlab) != n) {
            ax_error(d, loc, "labels: length %zu differs from input_ids length %zu", json_array_size(jlab), n);
            goto done;
        }
        if (int_array(jlab, "labels", loc, labels, d) < 0) goto done;
        for (size_t i = 0; i < n; i++) {
            if (labels[i] != RT_IGNORE_INDEX && (labels[i] < 0 || labels[i] >= vocab)) {
                ax_error(d, loc, "labels[%zu]: label %lld is neither -100 nor in [0, %lld)", i, (long long)labels[i],
                         (long long)vocab);
                goto done;
            }
        }
    } else {
        memcpy(labels, ids, n * sizeof *ids);
    }
    if (jmask && !json_is_null(jmask)) {
        if (json_is_array(jmask) && json_array_size(jmask) != n) {
            ax_error(d, loc, "attention_mask: length %zu differs from input_ids length %zu", json_array_size(jmask),
                     n);
            goto done;
        }
        if (int_array(jmask, "attention_mask", loc, mask, d) < 0) goto done;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] != 0 && mask[i] != 1) {
                ax_error(d, loc, "attention_mask[%zu]: expected 0 or 1, found %lld", i, (long long)mask[i]);
                goto done;
            }
        }
    } else {
        for (size_t i = 0; i < n; i++) mask[i] = 1;
    }
    kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        int32_t t = (int32_t)ids[i], l = (int32_t)labels[i];
        ax_buf_append(tok, &t, sizeof t);
        ax_buf_append(lab, &l, sizeof l);
        kept++;
    }
done:
    free(ids);
    free(labels);
    free(mask);
    return kept;
}

static int64_t parse_line(const char *line, size_t len, const char *loc_file, int lineno, int64_t vocab,
                          ax_buf *tok, ax_buf *lab, ax_diag *d) {
    char loc[512];
    ax_loc(loc, sizeof loc, loc_file, lineno, 0);
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char jloc[512];
        ax_error(d, ax_loc(jloc, sizeof jloc, loc_file, lineno, jerr.column > 0 ? jerr.column : 0),
                 "invalid JSON: %s", jerr.text);
        return -1;
    }
    int64_t kept = parse_row(root, loc, vocab, tok, lab, d);
    json_decref(root);
    return kept;
}

/* The next line of text[*pos..len) (without its '\n'); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *ll) {
    if (*pos >= len) return 0;
    *line = text + *pos;
    const char *nl = memchr(*line, '\n', len - *pos);
    *ll = nl ? (size_t)(nl - *line) : len - *pos;
    *pos += *ll + (nl ? 1 : 0);
    return 1;
}

/* A label anywhere in sample i (Axolotl's drop_no_trainable_tokens test). */
static int sample_has_label(const rt_dataset *ds, int64_t i) {
    for (int64_t k = ds->offsets[i]; k < ds->offsets[i + 1]; k++)
        if (ds->labels[k] != RT_IGNORE_INDEX) return 1;
    return 0;
}

/* HF datasets' Dataset.shard(num, idx) (contiguous): of n rows, shard idx starts at *start and has the returned
 * count (the first n % num shards are one longer). */
static int64_t hf_shard(int64_t n, int64_t num, int64_t idx, int64_t *start) {
    const int64_t div = n / num, mod = n % num;
    *start = div * idx + (idx < mod ? idx : mod);
    return div + (idx < mod);
}

/* Whether a file's text is one JSON array of rows (its first non-blank byte is '['), not JSON lines. */
static int json_array_text(const char *text, size_t len) {
    size_t k = 0;
    while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r' || text[k] == '\n')) k++;
    return k < len && text[k] == '[';
}

static int blank(const char *line, size_t ll) {
    size_t k = 0;
    while (k < ll && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    return k == ll;
}

/* Appends parsed samples (tok/lab int32, lens int64) to ds. */
static void append_samples(rt_dataset *ds, const ax_buf *tok, const ax_buf *lab, const ax_buf *lens, int64_t nempty,
                           int64_t vocab_size) {
    int64_t add = (int64_t)(lens->len / sizeof(int64_t));
    int64_t addtok = (int64_t)(tok->len / sizeof(int32_t));
    int64_t *off = realloc(ds->offsets, (size_t)(ds->nsamples + add + 1) * sizeof *off);
    int32_t *t = realloc(ds->tokens, (size_t)(ds->ntokens + addtok + 1) * sizeof *t);
    int32_t *l = realloc(ds->labels, (size_t)(ds->ntokens + addtok + 1) * sizeof *l);
    if (!off || !t || !l) abort();
    ds->offsets = off;
    ds->tokens = t;
    ds->labels = l;
    if (ds->nsamples == 0) off[0] = 0;
    const int64_t *ln = (const int64_t *)(const void *)lens->data;
    for (int64_t i = 0; i < add; i++) off[ds->nsamples + i + 1] = off[ds->nsamples + i] + ln[i];
    if (addtok) {
        memcpy(t + ds->ntokens, tok->data, tok->len);
        memcpy(l + ds->ntokens, lab->data, lab->len);
    }
    ds->nsamples += add;
    ds->ntokens += addtok;
    ds->nempty += nempty;
    ds->vocab_size = vocab_size;
}

/* The end of a load: the samples appended when there was no error; the
 * buffers freed either way. */
static int finish_load(rt_dataset *ds, ax_buf *tok, ax_buf *lab, ax_buf *lens, int64_t nempty, int64_t vocab_size,
                       int nerr) {
    if (!nerr) append_samples(ds, tok, lab, lens, nempty, vocab_size);
    ax_buf_free(tok);
    ax_buf_free(lab);
    ax_buf_free(lens);
    return nerr ? -1 : 0;
}

int rt_data_load_text(const char *text, size_t len, const char *name, int64_t vocab_size, rt_dataset *ds,
                      ax_diag *d) {
    if (vocab_size < 1 || vocab_size > (int64_t)INT32_MAX + 1) {
        ax_error(d, name, "vocab_size %lld out of range", (long long)vocab_size);
        return -1;
    }
    if (ds->vocab_size && ds->vocab_size != vocab_size) {
        ax_error(d, name, "vocab_size %lld differs from the dataset's %lld", (long long)vocab_size,
                 (long long)ds->vocab_size);
        return -1;
    }
    ax_buf tok = {0}, lab = {0}, lens = {0};
    int nerr = 0;
    int64_t nempty = 0;
    int lineno = 0;
    size_t pos = 0;
    const char *line;
    size_t ll;
    if (json_array_text(text, len)) { /* one JSON array of rows, as HF's json loader also reads a .json file */
        json_error_t je;
        json_t *arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        char loc[600];
        if (!arr) {
            ax_error(d, ax_loc(loc, sizeof loc, name, je.line, je.column > 0 ? je.column : 0), "invalid JSON: %s",
                     je.text);
            nerr++;
        }
        for (size_t i = 0; arr && i < json_array_size(arr); i++) {
            snprintf(loc, sizeof loc, "%s: row %zu", name, i);
            int64_t n = parse_row(json_array_get(arr, i), loc, vocab_size, &tok, &lab, d);
            if (n < 0 && ++nerr >= MAX_LOAD_ERRORS) {
                ax_error(d, name, "too many errors; stopped at row %zu", i);
                break;
            }
            if (n < 0) continue;
            else if (n == 0) nempty++;
            else ax_buf_append(&lens, &n, sizeof n);
        }
        json_decref(arr);
        len = 0; /* no lines below */
    }
    while (next_line(text, len, &pos, &line, &ll)) {
        lineno++;
        if (blank(line, ll)) continue;
        int64_t n = parse_line(line, ll, name, lineno, vocab_size, &tok, &lab, d);
        if (n < 0) {
            if (++nerr >= MAX_LOAD_ERRORS) {
                ax_error(d, name, "too many errors; stopped at line %d", lineno);
                break;
            }
            continue;
        }
        if (n == 0) {
            nempty++;
            continue;
        }
        ax_buf_append(&lens, &n, sizeof n);
    }
    return finish_load(ds, &tok, &lab, &lens, nempty, vocab_size, nerr);
}

int rt_data_load(const char *const *paths, int npaths, int64_t vocab_size, rt_dataset *ds, ax_diag *d) {
    rt_data_source *src = calloc((size_t)(npaths > 0 ? npaths : 1), sizeof *src);
    if (!src) abort();
    for (int i = 0; i < npaths; i++) src[i].path = paths[i];
    int rc = rt_data_load_sources(src, npaths, NULL, 1, vocab_size, NULL, 0, NULL, ds, d);
    free(src);
    return rc;
}

void rt_data_free(rt_dataset *ds) {
    if (!ds) return;
    free(ds->offsets);
    free(ds->tokens);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* ---- epochs ------------------------------------------------------------ */
#define GOLDEN 0x9E3779B97F4A7C15ull

uint64_t rt_splitmix64(uint64_t *state) {
    uint64_t z = (*state += GOLDEN);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* torch's CPU generator (at::mt19937 as CPUGeneratorImpl keeps it): manual_seed(seed) seeds MT19937 with the
 * seed's low 32 bits (init_genrand); random() is one tempered 32-bit draw. */
typedef struct {
    uint32_t mt[624];
    int next;
} torch_mt19937;

static void torch_mt_seed(torch_mt19937 *g, uint64_t seed) {
    g->mt[0] = (uint32_t)seed;
    for (int j = 1; j < 624; j++) g->mt[j] = 1812433253u * (g->mt[j - 1] ^ (g->mt[j - 1] >> 30)) + (uint32_t)j;
    g->next = 624;
}

static uint32_t torch_mt_random(torch_mt19937 *g) {
    if (g->next >= 624) {
        for (int k = 0; k < 624; k++) {
            const uint32_t y = (g->mt[k] & 0x80000000u) | (g->mt[(k + 1) % 624] & 0x7fffffffu);
            g->mt[k] = g->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->next = 0;
    }
    uint32_t y = g->mt[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

void rt_torch_randperm(uint64_t seed, int64_t n, int64_t *out) {
    torch_mt19937 *g = malloc(sizeof *g);
    if (!g) abort();
    torch_mt_seed(g, seed);
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = 0; i < n - 1; i++) { /* randperm_cpu: swap i with i + random() % (n - i), from the front */
        const int64_t z = (int64_t)torch_mt_random(g) % (n - i), t = out[i];
        out[i] = out[z + i], out[z + i] = t;
    }
    free(g);
}

void rt_data_epoch_order(int64_t n, uint64_t seed, int64_t epoch, int64_t *order) {
    rt_torch_randperm(seed + (uint64_t)epoch, n, order);
}

void rt_rows_free(rt_rows *r) {
    if (!r) return;
    free(r->input_ids);
    free(r->targets);
    free(r->position_ids);
    free(r->seq_ids);
    free(r->row_seq_off);
    free(r->seqs);
    memset(r, 0, sizeof *r);
}

/* Axolotl's default packing (pack_parallel / pack_group in its multipack sampler): the samples in order, in groups
 * of group_size; within a group each goes into the first bin (in the order bins were opened) with room for it and
 * fewer than bin_size samples, else into a new bin. A bin is a row; its samples keep the order they came in. The
 * first bin with room is found in a max-tree of the bins' room (a bin of bin_size samples has none), so a group of
 * n samples takes O(n log n), not the O(n x bins) of a scan. seqs (len set) are reordered by row with their
 * starts; row_seq_off gets the rows' offsets. Returns the number of rows. */
static int64_t pack_first_fit(rt_row_seq *seqs, int64_t n, int64_t cap, int64_t group_size, int64_t bin_size,
                              int64_t *row_seq_off) {
    int64_t P = 1;
    while (P < (group_size < n ? group_size : n)) P *= 2;
    int64_t *room = malloc(sizeof *room * (size_t)(2 * P)), *used = malloc(sizeof *used * (size_t)P);
    int64_t *cnt = malloc(sizeof *cnt * (size_t)P), *bin = malloc(sizeof *bin * (size_t)(n + 1));
    int64_t *fill = malloc(sizeof *fill * (size_t)(P + 1));
    rt_row_seq *tmp = malloc(sizeof *tmp * (size_t)(n + 1));
    if (!room || !used || !cnt || !bin || !fill || !tmp) abort();
    int64_t nrows = 0;
    for (int64_t g0 = 0; g0 < n; g0 += group_size) {
        const int64_t g1 = g0 + group_size < n ? g0 + group_size : n;
        int64_t nb = 0;
        for (int64_t i = 1; i < 2 * P; i++) room[i] = -1;
        for (int64_t k = g0; k < g1; k++) {
            const int64_t len = seqs[k].len;
            int64_t b;
            if (room[1] >= len) { /* the leftmost bin with room: descend towards it */
                int64_t i = 1;
                while (i < P) i = room[2 * i] >= len ? 2 * i : 2 * i + 1;
                b = i - P;
                used[b] += len;
                cnt[b]++;
            } else {
                b = nb++;
                used[b] = len;
                cnt[b] = 1;
            }
            bin[k] = b;
            int64_t i = P + b;
            room[i] = cnt[b] < bin_size ? cap - used[b] : -1;
            for (i /= 2; i >= 1; i /= 2) room[i] = room[2 * i] > room[2 * i + 1] ? room[2 * i] : room[2 * i + 1];
        }
        /* rows nrows .. nrows+nb-1: the group's bins in order, each bin's samples in the order they came */
        for (int64_t b = 0; b <= nb; b++) fill[b] = 0;
        for (int64_t k = g0; k < g1; k++) fill[bin[k] + 1]++;
        for (int64_t b = 0; b < nb; b++) fill[b + 1] += fill[b];
        for (int64_t b = 0; b < nb; b++) row_seq_off[nrows + b] = g0 + fill[b];
        for (int64_t b = 0; b < nb; b++) used[b] = 0;
        for (int64_t k = g0; k < g1; k++) {
            const int64_t b = bin[k];
            rt_row_seq q = seqs[k];
            q.start = (int32_t)used[b];
            used[b] += q.len;
            tmp[g0 + fill[b]++] = q;
        }
        nrows += nb;
    }
    if (n) memcpy(seqs, tmp, sizeof *seqs * (size_t)n);
    row_seq_off[nrows] = n;
    free(room);
    free(used);
    free(cnt);
    free(bin);
    free(fill);
    free(tmp);
    return nrows;
}

/* HF's get_length_grouped_indices on the samples in their (shuffled) order: megabatches of mult x bs, each sorted
 * by length, longest first, stably (Python's sorted(reverse=True)); then the first sample of the megabatch whose
 * first is the longest (the first such) and the very first sample change places. */
static void group_by_length(rt_row_seq *q, int64_t n, int64_t bs) {
    int64_t mult = n / (bs * 4) < 50 ? n / (bs * 4) : 50;
    if (mult < 1) mult = 1;
    const int64_t mb = mult * bs;
    rt_row_seq *tmp = malloc(sizeof *tmp * (size_t)(mb + 1));
    if (!tmp) abort();
    int64_t best = 0; /* the megabatch whose first is the longest */
    for (int64_t a = 0; a < n; a += mb) {
        const int64_t e = a + mb < n ? a + mb : n;
        for (int64_t w = 1; w < e - a; w *= 2) /* stable merge sort by length, descending */
            for (int64_t l = a; l < e; l += 2 * w) {
                int64_t m = l + w < e ? l + w : e, r = l + 2 * w < e ? l + 2 * w : e, i = l, j = m, k = 0;
                while (i < m && j < r) tmp[k++] = q[j].len > q[i].len ? q[j++] : q[i++];
                while (i < m) tmp[k++] = q[i++];
                while (j < r) tmp[k++] = q[j++];
                memcpy(q + l, tmp, sizeof *q * (size_t)k);
            }
        if (q[a].len > q[best].len) best = a;
    }
    const rt_row_seq t = q[0];
    q[0] = q[best];
    q[best] = t;
    free(tmp);
}

/* Where each sample of the epoch goes (out's seqs, row_seq_off, nrows, nseqs and the counts); no row arrays. */
static int place_rows(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, rt_rows *out, ax_diag *d) {
    memset(out, 0, sizeof *out);
    if (o->seq_len < 1 || o->seq_len > INT32_MAX) {
        ax_error(d, NULL, "sequence_len %lld out of range [1, %d]", (long long)o->seq_len, INT32_MAX);
        return -1;
    }
    if (o->pad_id < 0 || (ds->vocab_size > 0 && o->pad_id >= ds->vocab_size)) {
        ax_error(d, NULL, "pad token id %d out of range [0, %lld)", (int)o->pad_id, (long long)ds->vocab_size);
        return -1;
    }
    if (o->row_len != 0 && !o->sample_packing) {
        ax_error(d, NULL, "row length %lld: a row longer than sequence_len holds packed samples only", (long long)o->row_len);
        return -1;
    }
    if (o->row_len != 0 && (o->row_len < o->seq_len || o->row_len > INT32_MAX)) {
        ax_error(d, NULL, "row length %lld: expected a packed row of sequence_len %lld tokens or more, at most %d",
                 (long long)o->row_len, (long long)o->seq_len, INT32_MAX);
        return -1;
    }
    /* L: a sample's most tokens; C: a row's (a bin's capacity) */
    const int64_t n = ds->nsamples, L = o->seq_len, C = o->row_len > 0 ? o->row_len : L;
    int64_t *order = malloc((size_t)(n + 1) * sizeof *order);
    out->seqs = malloc((size_t)(n + 1) * sizeof *out->seqs);
    out->row_seq_off = malloc((size_t)(n + 2) * sizeof *out->row_seq_off);
    if (!order || !out->seqs || !out->row_seq_off) abort();
    /* The samples the epoch keeps, in the dataset's order (into seqs, placed below): Axolotl filters them when it
     * prepares the dataset, before the Trainer's sampler sees it. */
    int64_t nrows = 0, nseqs = 0;
    for (int64_t s = 0; s < n; s++) {
        int64_t len = rt_data_sample_len(ds, s);
        if (len < (o->min_len > 0 ? o->min_len : 2)) { /* Axolotl's min_sample_len (its filter comes first) */
            if (len > 0) out->nshort++;
            continue;
        }
        if (o->sample_packing && !sample_has_label(ds, s)) { /* Axolotl drops these before it packs */
            out->nnolabel++;
            continue;
        }
        if (len > L && o->excess == RT_EXCESS_TRUNCATE) {
            len = L;
            out->ntruncated++;
        } else if (len > L && o->excess == RT_EXCESS_RAISE) {
            ax_error(d, "dataset",
                     "sample %lld has %lld tokens, more than sequence_len %lld (excess_length_strategy: raise; drop "
                     "or truncate train without it)",
                     (long long)s, (long long)len, (long long)L);
            free(order);
            rt_rows_free(out);
            return -1;
        } else if (len > L) {
            out->ndropped++;
            continue;
        }
        out->seqs[nseqs++] = (rt_row_seq){s, 0, (int32_t)len};
    }
    if (!o->sequential && nseqs >= RT_TORCH_RANDPERM_MAX) { /* torch's randperm_cpu switches algorithm there */
        ax_error(d, "dataset", "%lld samples: torch.randperm draws orders of %lld or more another way, which axo does not "
                 "reproduce (curriculum_sampling trains in the prepared order)", (long long)nseqs,
                 (long long)RT_TORCH_RANDPERM_MAX);
        free(order);
        rt_rows_free(out);
        return -1;
    }
    if (!o->sequential) { /* the sampler's order of the kept samples (rt_data_epoch_order) */
        rt_data_epoch_order(nseqs, o->seed, epoch, order);
        rt_row_seq *perm = malloc((size_t)(nseqs + 1) * sizeof *perm);
        if (!perm) abort();
        for (int64_t k = 0; k < nseqs; k++) perm[k] = out->seqs[order[k]];
        memcpy(out->seqs, perm, (size_t)nseqs * sizeof *perm);
        free(perm);
    }
    free(order);
    if (o->group_batch > 0 && !o->sample_packing) group_by_length(out->seqs, nseqs, o->group_batch);
    /* Placement: one per row; or packed, next-fit (sample_packing_sequentially) or first-fit */
    if (o->sample_packing && !o->pack_next_fit) {
        nrows = pack_first_fit(out->seqs, nseqs, C, o->pack_group_size > 0 ? o->pack_group_size : 100000,
                               o->pack_bin_size > 0 ? o->pack_bin_size : 200, out->row_seq_off);
    } else {
        int64_t used = 0;
        for (int64_t q = 0; q < nseqs; q++) {
            const int32_t len = out->seqs[q].len;
            if (!o->sample_packing || nrows == 0 || used + len > C) {
                out->row_seq_off[nrows++] = q;
                used = 0;
            }
            out->seqs[q].start = (int32_t)used;
            used += len;
        }
        out->row_seq_off[nrows] = nseqs;
    }
    out->nrows = nrows;
    out->nseqs = nseqs;
    out->seq_len = C;
    return 0;
}

int64_t rt_data_count_rows(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, ax_diag *d) {
    rt_rows r;
    if (place_rows(ds, o, epoch, &r, d) != 0) return -1;
    const int64_t n = r.nrows;
    rt_rows_free(&r);
    return n;
}

rt_epoch_span rt_epoch_span_of(const rt_batching *b, int64_t nrows) {
    const int64_t Bg = b->B * b->nranks, G = Bg * b->ga;
    rt_epoch_span e = {.nrows = nrows};
    e.len = b->drop_last ? nrows / Bg * Bg : b->nranks == 1 ? nrows : (nrows + Bg - 1) / Bg * Bg;
    e.nsteps = (e.len + G - 1) / G;
    return e;
}

int64_t rt_epoch_row(const rt_batching *b, const rt_epoch_span *e, int64_t step, int64_t i) {
    const int64_t Bg = b->B * b->nranks, v = step * Bg * b->ga + i;
    if (v >= e->len) return -1;
    if (v < e->nrows) return v;
    return (v - e->nrows) % (e->nrows < Bg ? e->nrows : Bg);
}

int rt_data_build_epoch(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, rt_rows *out, ax_diag *d) {
    if (place_rows(ds, o, epoch, out, d) != 0) return -1;
    const int64_t nrows = out->nrows, L = out->seq_len;

    size_t cells = (size_t)(nrows ? nrows : 1) * (size_t)L;
    out->input_ids = malloc(cells * sizeof(int32_t));
    out->targets = malloc(cells * sizeof(int32_t));
    out->position_ids = malloc(cells * sizeof(int32_t));
    out->seq_ids = malloc(cells * sizeof(int32_t));
    if (!out->input_ids || !out->targets || !out->position_ids || !out->seq_ids) abort();

    int64_t ntargets = 0;
    for (int64_t r = 0; r < nrows; r++) {
        int32_t *ids = out->input_ids + r * L, *tg = out->targets + r * L, *pos = out->position_ids + r * L,
                *sid = out->seq_ids + r * L;
        int64_t fill = 0;
        int32_t next_id = 0;
        for (int64_t q = out->row_seq_off[r]; q < out->row_seq_off[r + 1]; q++, next_id++) {
            const rt_row_seq *sq = &out->seqs[q];
            const int32_t *st = ds->tokens + ds->offsets[sq->sample];
            const int32_t *sl = ds->labels + ds->offsets[sq->sample];
            for (int32_t t = 0; t < sq->len; t++) {
                int64_t c = sq->start + t;
                ids[c] = st[t];
                tg[c] = t + 1 < sq->len ? sl[t + 1] : RT_IGNORE_INDEX;
                pos[c] = t;
                sid[c] = next_id;
                if (tg[c] != RT_IGNORE_INDEX) ntargets++;
            }
            fill = sq->start + sq->len;
        }
        for (int64_t c = fill; c < L; c++) {
            ids[c] = o->pad_id;
            tg[c] = RT_IGNORE_INDEX;
            pos[c] = 0;
            sid[c] = next_id++;
        }
    }
    out->ntargets = ntargets;
    return 0;
}

int64_t rt_rows_count_targets(const rt_rows *r, int64_t row_begin, int64_t row_count) {
    if (row_begin < 0) {
        row_count += row_begin;
        row_begin = 0;
    }
    if (row_count <= 0 || row_begin >= r->nrows) return 0;
    if (row_count > r->nrows - row_begin) row_count = r->nrows - row_begin;
    int64_t c = 0;
    const int32_t *t = r->targets + row_begin * r->seq_len;
    for (int64_t i = 0, e = row_count * r->seq_len; i < e; i++) c += t[i] != RT_IGNORE_INDEX;
    return c;
}

/* ---- rows of text through a prompt format (runtime/prompt.h) ---------------- */

/* One row: tokenized, checked against the vocab, samples appended. */
static int formatted_row(rt_prompter *p, const rt_ds_spec *spec, const json_t *row, const char *loc, int64_t vocab,
                         ax_buf *tok, ax_buf *lab, ax_buf *lens, int64_t *nempty, ax_diag *d) {
    size_t t0 = tok->len, l0 = lens->len;
    if (rt_prompt_row(p, spec, row, loc, tok, lab, lens, d)) return -1;
    const int32_t *t = (const int32_t *)(tok->data + t0);
    for (size_t i = 0; i < (tok->len - t0) / sizeof *t; i++)
        if (t[i] < 0 || t[i] >= vocab) {
            ax_error(d, loc, "token id %d from the tokenizer is outside the model's vocab_size %lld", t[i],
                     (long long)vocab);
            return -1;
        }
    /* empty samples are skipped; a sample without a label stays, as in Axolotl's dataset, and the epoch drops
     * it when it packs (Axolotl's process_datasets_for_packing) */
    const int64_t *ln = (const int64_t *)(const void *)(lens->data + l0);
    size_t ns = (lens->len - l0) / sizeof *ln, kept = 0, at = t0;
    for (size_t k = 0; k < ns; k++) {
        size_t bytes = (size_t)ln[k] * sizeof(int32_t);
        if (ln[k] == 0) {
            (*nempty)++;
        } else {
            memmove(tok->data + t0, tok->data + at, bytes);
            memmove(lab->data + t0, lab->data + at, bytes);
            memmove(lens->data + l0 + kept * sizeof *ln, &ln[k], sizeof *ln);
            t0 += bytes;
            kept++;
        }
        at += bytes;
    }
    tok->len = lab->len = t0;
    lens->len = l0 + kept * sizeof *ln;
    return 0;
}

int rt_data_load_formatted_text(const char *text, size_t len, const char *name, const rt_ds_spec *spec,
                                rt_prompter *p, int64_t vocab_size, rt_dataset *ds, ax_diag *d) {
    ax_buf tok = {0}, lab = {0}, lens = {0};
    p->dpo_keys = 0; /* a file's rows share its columns (HF datasets) */
    int nerr = 0;
    int64_t nempty = 0;
    char loc[600];
    if (json_array_text(text, len)) { /* one JSON array of rows (e.g. alpaca_data.json) */
        json_error_t je;
        json_t *arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!arr) {
            ax_error(d, ax_loc(loc, sizeof loc, name, je.line, je.column > 0 ? je.column : 0), "invalid JSON: %s",
                     je.text);
            nerr++;
        } else {
            for (size_t i = 0; i < json_array_size(arr) && nerr < MAX_LOAD_ERRORS; i++) {
                snprintf(loc, sizeof loc, "%s: row %zu", name, i);
                if (formatted_row(p, spec, json_array_get(arr, i), loc, vocab_size, &tok, &lab, &lens, &nempty, d))
                    nerr++;
            }
            json_decref(arr);
        }
    } else { /* JSON lines */
        int lineno = 0;
        size_t pos = 0;
        const char *line;
        size_t ll;
        while (nerr < MAX_LOAD_ERRORS && next_line(text, len, &pos, &line, &ll)) {
            lineno++;
            if (blank(line, ll)) continue;
            json_error_t je;
            json_t *row = json_loadb(line, ll, JSON_REJECT_DUPLICATES, &je);
            if (!row) {
                ax_error(d, ax_loc(loc, sizeof loc, name, lineno, je.column > 0 ? je.column : 0), "invalid JSON: %s",
                         je.text);
                nerr++;
                continue;
            }
            ax_loc(loc, sizeof loc, name, lineno, 0);
            if (formatted_row(p, spec, row, loc, vocab_size, &tok, &lab, &lens, &nempty, d)) nerr++;
            json_decref(row);
        }
    }
    if (nerr >= MAX_LOAD_ERRORS) ax_error(d, name, "too many errors; stopped");
    return finish_load(ds, &tok, &lab, &lens, nempty, vocab_size, nerr);
}

int rt_data_load_formatted(const char *path, const rt_ds_spec *spec, rt_prompter *p, int64_t vocab_size,
                           rt_dataset *ds, ax_diag *d) {
    size_t len;
    char *text = ax_read_file(path, &len, d);
    if (!text) return -1;
    int rc = rt_data_load_formatted_text(text, len, path, spec, p, vocab_size, ds, d);
    free(text);
    return rc;
}

/* ---- dataset_prepared_path: tokenized datasets kept between runs ------------ */

#define PREP_MAGIC "AXODS002" /* 002: samples without a label are kept */

/* The entry's name: XXH3-128 of everything the samples depend on (the file's
 * bytes, the format, the tokenizer file and setup, sequence_len, the vocab). */
static void prep_key(const char *text, size_t len, const rt_ds_spec *spec, const rt_tok_setup *setup,
                     uint64_t tok_hash, int64_t seq_len, int64_t vocab, char hex[33]) {
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    XXH3_128bits_update(st, PREP_MAGIC, 8);
    char *js = rt_ds_spec_json(spec), *ts = rt_tok_setup_json(setup);
    XXH3_128bits_update(st, js, strlen(js) + 1);
    XXH3_128bits_update(st, ts, strlen(ts) + 1);
    free(js);
    free(ts);
    int64_t nums[3] = {(int64_t)tok_hash, seq_len, vocab};
    XXH3_128bits_update(st, nums, sizeof nums);
    XXH3_128bits_update(st, text, len);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* Samples [n0, ds->nsamples) of ds as an entry file: magic, counts, offsets,
 * tokens, labels, then XXH3-64 of all before it. Written atomically. */
static int prep_write(const char *path, const rt_dataset *ds, int64_t n0, int64_t t0, int64_t e0, ax_diag *d) {
    ax_buf b = {0};
    ax_buf_append(&b, PREP_MAGIC, 8);
    int64_t ns = ds->nsamples - n0, nt = ds->ntokens - t0, ne = ds->nempty - e0;
    ax_buf_append(&b, &ns, 8);
    ax_buf_append(&b, &nt, 8);
    ax_buf_append(&b, &ne, 8);
    for (int64_t i = 0; i <= ns; i++) {
        int64_t o = ds->offsets[n0 + i] - t0;
        ax_buf_append(&b, &o, 8);
    }
    ax_buf_append(&b, ds->tokens + t0, sizeof(int32_t) * (size_t)nt);
    ax_buf_append(&b, ds->labels + t0, sizeof(int32_t) * (size_t)nt);
    uint64_t h = XXH3_64bits(b.data, b.len);
    ax_buf_append(&b, &h, 8);
    int rc = ax_write_file_atomic(path, b.data, b.len, d);
    ax_buf_free(&b);
    return rc;
}

/* Appends an entry's samples to ds; 0, or -1 when it is absent or not
 * whole (then it is rebuilt; nothing is reported for a miss). */
static int prep_read(const char *path, int64_t vocab, rt_dataset *ds) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fclose(f);
    ax_diag quiet;
    ax_diag_init(&quiet);
    size_t len;
    char *buf = ax_read_file(path, &len, &quiet);
    ax_diag_free(&quiet);
    int rc = -1;
    int64_t h[3];
    if (!buf || len < 40 || memcmp(buf, PREP_MAGIC, 8)) goto out;
    memcpy(h, buf + 8, sizeof h);
    int64_t ns = h[0], nt = h[1];
    if (ns < 0 || nt < 0 || (uint64_t)ns > len / 8 || (uint64_t)nt > len / 8 ||
        len != 32 + 8 * (size_t)(ns + 1) + 8 * (size_t)nt + 8)
        goto out;
    uint64_t want;
    memcpy(&want, buf + len - 8, 8);
    if (XXH3_64bits(buf, len - 8) != want) goto out;
    const char *p = buf + 32;
    ax_buf tok = {0}, lab = {0}, lens = {0};
    int64_t prev = 0, ok = 1;
    for (int64_t i = 0; i <= ns && ok; i++) {
        int64_t o;
        memcpy(&o, p + 8 * i, 8);
        if (i == 0 ? o != 0 : (o < prev || o > nt)) ok = 0;
        if (i > 0) {
            int64_t l = o - prev;
            ax_buf_append(&lens, &l, 8);
        }
        prev = o;
    }
    ok = ok && prev == nt;
    p += 8 * (ns + 1);
    for (int64_t i = 0; i < nt && ok; i++) {
        int32_t t;
        memcpy(&t, p + 4 * i, 4);
        ok = t >= 0 && t < vocab;
    }
    if (ok) {
        ax_buf_append(&tok, p, 4 * (size_t)nt);
        ax_buf_append(&lab, p + 4 * nt, 4 * (size_t)nt);
        rc = finish_load(ds, &tok, &lab, &lens, h[2], vocab, 0);
    } else {
        ax_buf_free(&lens);
    }
out:
    free(buf);
    return rc;
}

/* A file's rows: a JSON array's elements (*arr holds them), else its non-blank lines (row/rlen). 0, or -1 after
 * an error (a JSON array that does not parse). */
typedef struct {
    json_t *arr;
    const char **row;
    size_t *rlen, n;
} text_rows;

static int rows_of(const char *path, const char *text, size_t len, text_rows *r, ax_diag *d) {
    memset(r, 0, sizeof *r);
    if (json_array_text(text, len)) {
        json_error_t je;
        char loc[600];
        if (!(r->arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je))) {
            ax_error(d, ax_loc(loc, sizeof loc, path, je.line, je.column > 0 ? je.column : 0), "invalid JSON: %s",
                     je.text);
            return -1;
        }
        r->n = json_array_size(r->arr);
        return 0;
    }
    r->row = malloc(sizeof *r->row * (len / 2 + 2));
    r->rlen = malloc(sizeof *r->rlen * (len / 2 + 2));
    if (!r->row || !r->rlen) abort();
    size_t pos = 0;
    const char *line;
    size_t ll;
    while (next_line(text, len, &pos, &line, &ll))
        if (!blank(line, ll)) r->row[r->n] = line, r->rlen[r->n++] = ll;
    return 0;
}

static void rows_free(text_rows *r) {
    json_decref(r->arr);
    free(r->row);
    free(r->rlen);
}

/* rows order[0..n) of r as JSONL text */
static char *rows_text(const text_rows *r, const int64_t *order, int64_t n, size_t *out_len) {
    ax_buf b = {0};
    for (int64_t k = 0; k < n; k++) {
        if (r->arr) {
            char *js = json_dumps(json_array_get(r->arr, (size_t)order[k]), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            if (!js) abort();
            ax_buf_puts(&b, js);
            free(js);
        } else {
            ax_buf_append(&b, r->row[order[k]], r->rlen[order[k]]);
        }
        ax_buf_puts(&b, "\n");
    }
    ax_buf_puts(&b, "");
    *out_len = b.len;
    return b.data ? b.data : strdup("");
}

/* A source's shard (rt_data_source.shards) as JSONL text: its rows in numpy's permutation of the seed, the
 * contiguous shard of them. NULL after an error (a JSON array that does not parse). */
static char *shard_text(const rt_data_source *s, const char *text, size_t len, size_t *out_len, ax_diag *d) {
    text_rows r;
    if (rows_of(s->path, text, len, &r, d)) return NULL;
    int64_t *order = malloc(sizeof *order * (r.n + 1));
    if (!order) abort();
    rt_np_permutation(s->seed, (int64_t)r.n, order);
    int64_t start;
    const int64_t cnt = hf_shard((int64_t)r.n, s->shards, s->shards_idx, &start);
    char *t = rows_text(&r, order + start, cnt, out_len);
    free(order);
    rows_free(&r);
    return t;
}

/* rows [from, to) of a file's text as JSONL text (rt_data_source.slice), or NULL after an error */
static char *slice_text(const char *path, const char *text, size_t len, int64_t from, int64_t to, size_t *out_len,
                        ax_diag *d) {
    text_rows r;
    if (rows_of(path, text, len, &r, d)) return NULL;
    if (to > (int64_t)r.n) to = (int64_t)r.n;
    if (from > to) from = to;
    int64_t *order = malloc(sizeof *order * (size_t)(to - from + 1));
    if (!order) abort();
    for (int64_t k = from; k < to; k++) order[k - from] = k;
    char *t = rows_text(&r, order, to - from, out_len);
    free(order);
    rows_free(&r);
    return t;
}

int rt_split_slice_range(const char *slice, int64_t n, int64_t *from, int64_t *to, char *err, size_t errcap) {
    json_error_t je;
    json_t *j = json_loads(slice, 0, &je);
    const json_t *jf = json_object_get(j, "from"), *jt = json_object_get(j, "to");
    const char *unit = json_string_value(json_object_get(j, "unit")), *round_ = json_string_value(json_object_get(j, "rounding"));
    int rc = 0;
    if (!json_is_object(j) || !unit || (jf && !json_is_null(jf) && !json_is_integer(jf)) || (jt && !json_is_null(jt) && !json_is_integer(jt))) {
        snprintf(err, errcap, "a split slice of another form: %s", slice);
        json_decref(j);
        return -1;
    }
    const int pct = !strcmp(unit, "%"), pct1 = round_ && !strcmp(round_, "pct1_dropremainder");
    int64_t f = json_is_integer(jf) ? json_integer_value(jf) : 0, t = json_is_integer(jt) ? json_integer_value(jt) : n;
    const int bad_pct = pct && ((json_is_integer(jf) && (f < -100 || f > 100)) || (json_is_integer(jt) && (t < -100 || t > 100)));
    if (bad_pct || f < -INT64_MAX / 2 || t < -INT64_MAX / 2) {
        snprintf(err, errcap, "a split slice out of range: %s", slice);
        json_decref(j);
        return -1;
    }
    if (pct) { /* datasets' _pct_to_abs_closest (Python's round: half to even) or _pct_to_abs_pct1 */
        if (pct1 && n < 100) {
            snprintf(err, errcap, "pct1_dropremainder rounding of a split of %lld rows (fewer than 100) is always empty, "
                                  "which HF datasets refuses", (long long)n);
            rc = -1;
        }
        f = !json_is_integer(jf) ? 0 : pct1 ? f * (n / 100) : (int64_t)nearbyint((double)f * (double)n / 100.0);
        t = !json_is_integer(jt) ? n : pct1 ? t * (n / 100) : (int64_t)nearbyint((double)t * (double)n / 100.0);
    }
    if (f < 0) f = n + f > 0 ? n + f : 0;
    if (t < 0) t = n + t > 0 ? n + t : 0;
    *from = f < n ? f : n;
    *to = t < n ? t : n;
    json_decref(j);
    return rc;
}

int rt_utf8_len(const unsigned char *p, size_t n) {
    const unsigned c = p[0];
    if (c < 0x80) return 1;
    const int k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || (size_t)k > n) return 0;
    for (int i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return k;
}

int rt_utf8_check(const char *buf, size_t len, const char *name, const char *loader, ax_diag *d) {
    const unsigned char *p = (const unsigned char *)buf;
    int64_t line = 1;
    for (size_t i = 0; i < len;) {
        const int k = rt_utf8_len(p + i, len - i);
        if (!k || p[i] == 0) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%lld", name, (long long)line);
            if (p[i] == 0)
                ax_error(d, where, "a NUL character (byte offset %zu): axo's rows hold no NUL (JSON lines cannot either)", i);
            else
                ax_error(d, where, "not UTF-8 at byte offset %zu (0x%02x): HF datasets' %s loader decodes the file as "
                         "UTF-8 and stops there", i, p[i], loader);
            return -1;
        }
        line += p[i] == '\n' || (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n')); /* universal newlines */
        i += (size_t)k;
    }
    return 0;
}

void rt_json_str(ax_buf *out, const char *s, size_t n) {
    ax_buf_append(out, "\"", 1);
    size_t run = 0; /* bytes copied as they are, in one append */
    for (size_t k = 0; k < n; k++) {
        const unsigned char c = (unsigned char)s[k];
        if (c != '"' && c != '\\' && c >= 0x20) continue;
        ax_buf_append(out, s + run, k - run);
        if (c < 0x20) ax_buf_printf(out, "\\u%04x", c);
        else ax_buf_printf(out, "\\%c", (char)c);
        run = k + 1;
    }
    ax_buf_append(out, s + run, n - run);
    ax_buf_append(out, "\"", 1);
}

int rt_text_rows(const char *buf, size_t len, const char *name, ax_buf *out, ax_diag *d) {
    if (rt_utf8_check(buf, len, name, "text", d) != 0) return -1;
    for (size_t i = 0; i < len;) { /* a line: up to \n, \r\n or \r (universal newlines), which it does not keep */
        size_t e = i;
        while (e < len && buf[e] != '\n' && buf[e] != '\r') e++;
        ax_buf_printf(out, "{\"text\": ");
        rt_json_str(out, buf + i, e - i);
        ax_buf_printf(out, "}\n");
        i = e < len ? e + (buf[e] == '\r' && e + 1 < len && buf[e + 1] == '\n' ? 2 : 1) : len;
    }
    return 0;
}

/* A source's rows as text: a Parquet file's rows as JSON lines (runtime/parquet.h), a text file's lines as
 * {"text": line} (rt_text_rows; a row's errors name it as that line), a CSV file's as HF's csv loader reads them
 * (runtime/csv.h), else the file's own bytes. */
static char *source_text(const rt_data_source *s, size_t *len, ax_diag *d) {
    char *text = ax_read_file(s->path, len, d);
    if (!text || s->loader == RT_LOADER_JSON) return text;
    ax_buf rows = {0};
    int rc = s->loader == RT_LOADER_PARQUET ? rt_parquet_rows(text, *len, s->path, &rows, d)
             : s->loader == RT_LOADER_TEXT  ? rt_text_rows(text, *len, s->path, &rows, d)
                                            : rt_csv_rows(text, *len, s->path, s->loader == RT_LOADER_TSV ? '\t' : ',', &rows, d);
    free(text);
    if (rc) {
        ax_buf_free(&rows);
        return NULL;
    }
    *len = rows.len;
    return rows.data ? ax_buf_steal(&rows) : strdup("");
}

int rt_data_load_sources(const rt_data_source *src, int n, const rt_tok_setup *setup, int64_t seq_len,
                         int64_t vocab_size, const char *prep_dir, int prep_write_ok, FILE *say, rt_dataset *ds,
                         ax_diag *d) {
    memset(ds, 0, sizeof *ds);
    rt_prompter p = {0};
    int have = 0, rc = 0;
    uint64_t tok_hash = 0;
    if (prep_dir && setup) { /* the tokenizer's bytes are part of every entry's key */
        size_t tl;
        char *tt = ax_read_file(setup->path, &tl, d);
        if (!tt) return -1;
        tok_hash = XXH3_64bits(tt, tl);
        free(tt);
    }
    int64_t *starts = calloc((size_t)n + 1, sizeof *starts); /* each source's first sample (nloaded) */
    int64_t *rfrom = calloc((size_t)n + 1, sizeof *rfrom), *rto = calloc((size_t)n + 1, sizeof *rto);
    char **pre = calloc((size_t)n + 1, sizeof *pre); /* a sliced split's texts, read once for counting and loading */
    size_t *prelen = calloc((size_t)n + 1, sizeof *prelen);
    if (!starts || !rfrom || !rto || !pre || !prelen) abort();
    for (int i = 0; i < n; i++) rto[i] = -1; /* every row */
    for (int i = 0; i < n && rc == 0; i++) { /* a sliced split: its files' rows counted, then each file's share */
        if (!src[i].slice || src[i].continues) continue;
        int j = i + 1;
        while (j < n && src[j].continues) j++;
        int64_t total = 0;
        for (int k = i; k < j && rc == 0; k++) {
            text_rows r;
            if (!(pre[k] = source_text(&src[k], &prelen[k], d)) || rows_of(src[k].path, pre[k], prelen[k], &r, d)) rc = -1;
            else rfrom[k] = total, total += (int64_t)r.n, rows_free(&r);
        }
        int64_t a, b;
        char err[300];
        if (rc == 0 && rt_split_slice_range(src[i].slice, total, &a, &b, err, sizeof err)) {
            ax_error(d, src[i].path, "%s", err);
            rc = -1;
        } else if (rc == 0 && a == b) { /* datasets: 'Instruction corresponds to no data!' (from > to is empty, no error) */
            ax_error(d, src[i].path, "the split's slice %s of its %lld rows selects none of them (HF datasets refuses it "
                                     "too)", src[i].slice, (long long)total);
            rc = -1;
        }
        for (int k = i; k < j && rc == 0; k++) { /* [a, b) of the whole, as each file's own rows */
            const int64_t off = rfrom[k], cnt = (k + 1 < j ? rfrom[k + 1] : total) - off;
            int64_t lo = a - off, hi = b - off;
            lo = lo < 0 ? 0 : lo > cnt ? cnt : lo;
            hi = hi < lo ? lo : hi > cnt ? cnt : hi;
            rfrom[k] = lo, rto[k] = hi;
        }
    }
    if (rc) { /* the counts failed: their errors are said; reading the files again would say them twice */
        for (int i = 0; i < n; i++) free(pre[i]);
        free(starts), free(rfrom), free(rto), free(pre), free(prelen);
        rt_data_free(ds);
        return -1;
    }
    int group_rows = 0; /* the current split (a file and those that continue it) has a row */
    for (int i = 0; i < n; i++) { /* past a bad file too, so every file's errors are reported */
        int64_t n0 = ds->nsamples, t0 = ds->ntokens, e0 = ds->nempty;
        starts[i] = n0;
        size_t len = prelen[i];
        char *text = pre[i] ? pre[i] : source_text(&src[i], &len, d);
        pre[i] = NULL;
        if (!text) {
            rc = -1;
            continue;
        }
        /* HF datasets' text and csv loaders refuse a split of no row at all (an empty file, a header alone) */
        group_rows = (src[i].continues ? group_rows : 0) || len > 0;
        if ((src[i].loader == RT_LOADER_TEXT || src[i].loader >= RT_LOADER_CSV) && !group_rows &&
            (i + 1 == n || !src[i + 1].continues)) {
            ax_error(d, src[i].path, "no row%s (HF datasets' %s loader refuses a split without one)",
                     src[i].loader == RT_LOADER_TEXT ? ": an empty file" : " under the header",
                     src[i].loader == RT_LOADER_TEXT ? "text" : "csv");
            free(text);
            rc = -1;
            continue;
        }
        char where[1200]; /* the name its errors carry: with a shard, its lines are the shard's rows */
        snprintf(where, sizeof where, "%s", src[i].path);
        if (rto[i] >= 0) { /* the split's slice: its rows of this file */
            size_t sl;
            char *st = slice_text(src[i].path, text, len, rfrom[i], rto[i], &sl, d);
            free(text);
            if (!st) {
                rc = -1;
                continue;
            }
            text = st, len = sl;
            snprintf(where, sizeof where, "%s (its rows %lld to %lld, of the split's slice: line N is the Nth of them)",
                     src[i].path, (long long)rfrom[i], (long long)rto[i]);
        }
        if (src[i].shards > 0) {
            size_t sl;
            char *st = shard_text(&src[i], text, len, &sl, d);
            free(text);
            if (!st) {
                rc = -1;
                continue;
            }
            text = st, len = sl;
            const size_t wl = strlen(where);
            snprintf(where + wl, sizeof where - wl, " (shard %lld of %lld of those rows: line N is its Nth row)",
                     (long long)src[i].shards_idx, (long long)src[i].shards);
        }
        if (!src[i].spec) {
            if (rt_data_load_text(text, len, where, vocab_size, ds, d) != 0) rc = -1;
            free(text);
            continue;
        }
        if (!setup) {
            ax_error(d, src[i].path, "a dataset with a type needs a tokenizer");
            free(text);
            rc = -1;
            break;
        }
        const rt_ds_spec *spec = src[i].spec;
        char entry[4096] = "", hex[33];
        int cached = 0;
        if (prep_dir) {
            prep_key(text, len, spec, setup, tok_hash, seq_len, vocab_size, hex);
            snprintf(entry, sizeof entry, "%s/%s.axods", prep_dir, hex);
            cached = prep_read(entry, vocab_size, ds) == 0;
        }
        if (!cached) {
            if (!have && rt_prompter_init(&p, setup, seq_len, d)) {
                free(text);
                rc = -1;
                break;
            }
            have = 1;
            int bad = rt_data_load_formatted_text(text, len, where, spec, &p, vocab_size, ds, d) != 0;
            if (!bad && prep_dir && prep_write_ok)
                bad = ax_mkdir_p(prep_dir, d) != 0 || prep_write(entry, ds, n0, t0, e0, d) != 0;
            if (bad) {
                free(text);
                rc = -1;
                continue;
            }
        }
        free(text);
        if (say) {
            int64_t nl = 0;
            for (int64_t t = t0; t < ds->ntokens; t++) nl += ds->labels[t] != RT_IGNORE_INDEX;
            fprintf(say, "dataset %s: %lld samples, %lld tokens, %lld of them labels (%s%s%s", src[i].path,
                    (long long)(ds->nsamples - n0), (long long)(ds->ntokens - t0), (long long)nl, spec->user_defined ? "user_defined" : rt_fmt_names[spec->fmt],
                    spec->fmt == RT_FMT_CHAT ? " " : "", spec->fmt == RT_FMT_CHAT ? (spec->jinja ? "jinja template" : rt_tpl_name(spec->tpl)) : "");
            if (ds->nempty - e0) fprintf(say, "; %lld empty rows skipped", (long long)(ds->nempty - e0));
            int64_t nolab = 0;
            for (int64_t k = n0; k < ds->nsamples; k++) nolab += !sample_has_label(ds, k);
            if (nolab) fprintf(say, "; %lld without a label (dropped when packing, as Axolotl does)", (long long)nolab);
            if (cached) fprintf(say, "; from %s", entry);
            else if (prep_dir && prep_write_ok) fprintf(say, "; kept in %s", entry);
            fprintf(say, ")\n");
        }
    }
    if (have) rt_prompter_free(&p);
    if (rc == 0)
        for (int i = 0; i < n; i++)
            if (src[i].nloaded) *src[i].nloaded = (i + 1 < n ? starts[i + 1] : ds->nsamples) - starts[i];
    free(starts);
    free(rfrom);
    free(rto);
    for (int i = 0; i < n; i++) free(pre[i]); /* those a stopped loop did not take */
    free(pre);
    free(prelen);
    if (rc == 0 && !ds->offsets) { /* all blank: a valid empty set */
        ds->offsets = calloc(1, sizeof *ds->offsets);
        if (!ds->offsets) abort();
        ds->vocab_size = vocab_size;
    }
    if (rc) rt_data_free(ds);
    return rc;
}

/* ---- numpy's default_rng(seed).permutation(n) ------------------------------ */

/* SeedSequence's hash constants (numpy/random/bit_generator.pyx) */
enum { NP_POOL = 4 };
#define NP_INIT_A 0x43b0d7e5u
#define NP_MULT_A 0x931e8875u
#define NP_INIT_B 0x8b51f9ddu
#define NP_MULT_B 0x58f38dedu
#define NP_MIX_L 0xca01f9ddu
#define NP_MIX_R 0x4973f715u

static uint32_t np_hashmix(uint32_t v, uint32_t *h) {
    v ^= *h;
    *h *= NP_MULT_A;
    v *= *h;
    return v ^ (v >> 16);
}

static uint32_t np_mix(uint32_t x, uint32_t y) {
    uint32_t r = NP_MIX_L * x - NP_MIX_R * y;
    return r ^ (r >> 16);
}

typedef struct {
    unsigned __int128 state, inc;
    int has32;
    uint32_t u32;
} np_pcg64;

static const unsigned __int128 NP_PCG_MULT = ((unsigned __int128)2549297995355413924ull << 64) | 4865540595714422341ull;

static uint64_t np_next64(np_pcg64 *g) {
    g->state = g->state * NP_PCG_MULT + g->inc;
    uint64_t x = (uint64_t)(g->state >> 64) ^ (uint64_t)g->state;
    unsigned rot = (unsigned)(g->state >> 122);
    return (x >> rot) | (x << ((64 - rot) & 63));
}

static uint32_t np_next32(np_pcg64 *g) {
    if (g->has32) {
        g->has32 = 0;
        return g->u32;
    }
    uint64_t v = np_next64(g);
    g->has32 = 1;
    g->u32 = (uint32_t)(v >> 32);
    return (uint32_t)v;
}

/* SeedSequence(seed).generate_state(4, uint64), then PCG64's set_seed */
static void np_pcg64_seed(np_pcg64 *g, uint64_t seed) {
    uint32_t ent[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int nent = seed >> 32 ? 2 : 1; /* the seed's 32-bit words, low first; 0 is one word */
    uint32_t pool[NP_POOL], h = NP_INIT_A;
    for (int i = 0; i < NP_POOL; i++) pool[i] = np_hashmix(i < nent ? ent[i] : 0, &h);
    for (int s = 0; s < NP_POOL; s++)
        for (int t = 0; t < NP_POOL; t++)
            if (s != t) pool[t] = np_mix(pool[t], np_hashmix(pool[s], &h));
    uint32_t w[8], hb = NP_INIT_B;
    for (int i = 0; i < 8; i++) {
        uint32_t v = pool[i % NP_POOL] ^ hb;
        hb *= NP_MULT_B;
        v *= hb;
        w[i] = v ^ (v >> 16);
    }
    uint64_t v64[4];
    for (int i = 0; i < 4; i++) v64[i] = (uint64_t)w[2 * i] | ((uint64_t)w[2 * i + 1] << 32);
    unsigned __int128 s = ((unsigned __int128)v64[0] << 64) | v64[1], inc = ((unsigned __int128)v64[2] << 64) | v64[3];
    g->state = 0;
    g->inc = (inc << 1) | 1;
    g->state = g->state * NP_PCG_MULT + g->inc;
    g->state += s;
    g->state = g->state * NP_PCG_MULT + g->inc;
    g->has32 = 0, g->u32 = 0;
}

/* numpy's random_interval: uniform in [0, max] by masked rejection */
static uint64_t np_interval(np_pcg64 *g, uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max, v;
    mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16, mask |= mask >> 32;
    if (max <= 0xffffffffu)
        while ((v = (np_next32(g) & mask)) > max) {
        }
    else
        while ((v = (np_next64(g) & mask)) > max) {
        }
    return v;
}

void rt_np_permutation(uint64_t seed, int64_t n, int64_t *out) {
    np_pcg64 g;
    np_pcg64_seed(&g, seed);
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)np_interval(&g, (uint64_t)i), t = out[i];
        out[i] = out[j], out[j] = t;
    }
}

/* The samples of ds listed in idx[0..n), in that order, into a new dataset. */
static void take_samples(const rt_dataset *ds, const int64_t *idx, int64_t n, rt_dataset *out) {
    memset(out, 0, sizeof *out);
    int64_t nt = 0;
    for (int64_t k = 0; k < n; k++) nt += rt_data_sample_len(ds, idx[k]);
    out->offsets = malloc(sizeof *out->offsets * (size_t)(n + 1));
    out->tokens = malloc(sizeof *out->tokens * (size_t)(nt + 1));
    out->labels = malloc(sizeof *out->labels * (size_t)(nt + 1));
    if (!out->offsets || !out->tokens || !out->labels) abort();
    out->offsets[0] = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = idx[k], len = rt_data_sample_len(ds, i), at = out->offsets[k];
        memcpy(out->tokens + at, ds->tokens + ds->offsets[i], sizeof *out->tokens * (size_t)len);
        memcpy(out->labels + at, ds->labels + ds->offsets[i], sizeof *out->labels * (size_t)len);
        out->offsets[k + 1] = at + len;
    }
    out->nsamples = n;
    out->ntokens = nt;
    out->vocab_size = ds->vocab_size;
}

/* Whether Axolotl keeps sample i before it splits (handle_long_seq_in_dataset: at least 2 tokens, and not
 * longer than seq_len under the drop strategy; with packing, process_datasets_for_packing: a label). */
static int axolotl_keeps(const rt_dataset *ds, int64_t i, const rt_split_opts *o) {
    int64_t len = rt_data_sample_len(ds, i);
    if (len < (o->min_len > 0 ? o->min_len : 2) || (o->excess == RT_EXCESS_DROP && len > o->seq_len)) return 0;
    return !o->sample_packing || sample_has_label(ds, i);
}

/* Axolotl's dataset_exact_deduplication over the samples idx[0..n) in that
 * order: a sample whose tokens and labels (cut to seq_len under truncate, as
 * Axolotl truncates before it hashes its rows) equal an earlier one's gets
 * dup[i] = 1. Returns the count. */
static int64_t mark_duplicates(const rt_dataset *ds, const int64_t *idx, int64_t n, const rt_split_opts *o, char *dup) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    int64_t *slot = malloc(sizeof *slot * cap), ndup = 0;
    uint64_t *hs = malloc(sizeof *hs * cap);
    if (!slot || !hs) abort();
    for (size_t k = 0; k < cap; k++) slot[k] = -1;
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort();
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = idx[k], off = ds->offsets[i];
        int64_t len = rt_data_sample_len(ds, i);
        if (o->excess == RT_EXCESS_TRUNCATE && len > o->seq_len) len = o->seq_len;
        XXH3_64bits_reset(st);
        XXH3_64bits_update(st, &len, sizeof len);
        XXH3_64bits_update(st, ds->tokens + off, sizeof *ds->tokens * (size_t)len);
        XXH3_64bits_update(st, ds->labels + off, sizeof *ds->labels * (size_t)len);
        const uint64_t h = XXH3_64bits_digest(st);
        size_t at = (size_t)h & (cap - 1);
        for (; slot[at] >= 0; at = (at + 1) & (cap - 1)) {
            if (hs[at] != h) continue;
            const int64_t j = slot[at], oj = ds->offsets[j];
            int64_t lj = rt_data_sample_len(ds, j);
            if (o->excess == RT_EXCESS_TRUNCATE && lj > o->seq_len) lj = o->seq_len;
            if (lj == len && !memcmp(ds->tokens + oj, ds->tokens + off, sizeof *ds->tokens * (size_t)len) &&
                !memcmp(ds->labels + oj, ds->labels + off, sizeof *ds->labels * (size_t)len))
                break;
        }
        if (slot[at] >= 0) dup[i] = 1, ndup++;
        else slot[at] = i, hs[at] = h;
    }
    XXH3_freeState(st);
    free(slot);
    free(hs);
    return ndup;
}

void rt_data_truncate(rt_dataset *ds, int64_t len) {
    int64_t at = 0;
    for (int64_t i = 0; i < ds->nsamples; i++) {
        int64_t n = rt_data_sample_len(ds, i), from = ds->offsets[i];
        if (n > len) n = len;
        memmove(ds->tokens + at, ds->tokens + from, sizeof *ds->tokens * (size_t)n);
        memmove(ds->labels + at, ds->labels + from, sizeof *ds->labels * (size_t)n);
        ds->offsets[i] = at;
        at += n;
    }
    ds->offsets[ds->nsamples] = at;
    ds->ntokens = at;
}

static void merged_order(const rt_dataset *ds, const rt_split_opts *o, int64_t *order);

int64_t rt_data_merge_order(rt_dataset *ds, const rt_split_opts *o) {
    const int64_t n = ds->nsamples;
    int64_t *idx = calloc((size_t)n + 1, sizeof *idx), nk = 0;
    char *dup = calloc((size_t)n + 1, 1);
    if (!idx || !dup) abort();
    merged_order(ds, o, idx);
    int moved = 0;
    for (int64_t i = 0; i < n && !moved; i++) moved = idx[i] != i;
    const int64_t nd = o->dedup ? mark_duplicates(ds, idx, n, o, dup) : 0;
    if (nd || moved) {
        for (int64_t k = 0; k < n; k++)
            if (!dup[idx[k]]) idx[nk++] = idx[k];
        rt_dataset out;
        take_samples(ds, idx, nk, &out);
        out.nempty = ds->nempty;
        rt_data_free(ds);
        *ds = out;
    }
    free(idx);
    free(dup);
    return nd;
}

/* dataset_shard_num / dataset_shard_idx: HF datasets' contiguous shard of order[0..*n) (the first n % num
 * shards one longer), moved to the front. */
static void take_shard(int64_t *order, int64_t *n, const rt_split_opts *o) {
    if (o->shard_num < 1) return;
    int64_t start;
    const int64_t len = hf_shard(*n, o->shard_num, o->shard_idx, &start);
    memmove(order, order + start, sizeof *order * (size_t)len);
    *n = len;
}

/* Axolotl's prepared data as indices into ds, in its order: numpy's permutation (o->shuffle), the samples it
 * keeps, without later copies (o->dedup; dup[i] = 1 marks them), then o's shard. order[] and dup[] hold
 * nsamples + 1 entries; returns the count. */
/* Axolotl's merged dataset: each dataset shuffled first (shuffle_before_merging_datasets), then the merged one
 * (o->shuffle): order[k] is the sample at its row k */
static void merged_order(const rt_dataset *ds, const rt_split_opts *o, int64_t *order) {
    const int64_t n = ds->nsamples;
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (o->shuffle_each && o->nparts > 1) { /* each dataset's own shuffle(seed), then concatenate_datasets */
        int64_t at = 0;
        for (int p = 0; p < o->nparts && at < n; p++) {
            const int64_t np = o->parts[p] < n - at ? o->parts[p] : n - at;
            rt_np_permutation(o->seed, np, order + at);
            for (int64_t k = at; k < at + np; k++) order[k] += at;
            at += np;
        }
    }
    if (o->shuffle) { /* the merged dataset's shuffle(seed): row k is row perm[k] of what was merged */
        int64_t *perm = malloc(sizeof *perm * (size_t)(n + 1)), *merged = malloc(sizeof *merged * (size_t)(n + 1));
        if (!perm || !merged) abort();
        rt_np_permutation(o->seed, n, perm);
        for (int64_t k = 0; k < n; k++) merged[k] = order[perm[k]];
        memcpy(order, merged, sizeof *order * (size_t)n);
        free(perm);
        free(merged);
    }
}

/* Axolotl's prepared order: order[0..n) the merged order (merged_order), kept in place less the samples it drops,
 * its duplicates (marked in dup) and those outside o's shard; how many remain */
static int64_t prepared_of_merged(const rt_dataset *ds, const rt_split_opts *o, int64_t *order, char *dup) {
    const int64_t n = ds->nsamples;
    int64_t nf = 0;
    for (int64_t k = 0; k < n; k++)
        if (axolotl_keeps(ds, order[k], o)) order[nf++] = order[k];
    if (o->dedup && mark_duplicates(ds, order, nf, o, dup)) {
        int64_t m = 0;
        for (int64_t k = 0; k < nf; k++)
            if (!dup[order[k]]) order[m++] = order[k];
        nf = m;
    }
    take_shard(order, &nf, o);
    return nf;
}

static int64_t axolotl_prepared(const rt_dataset *ds, const rt_split_opts *o, int64_t *order, char *dup) {
    merged_order(ds, o, order);
    return prepared_of_merged(ds, o, order, dup);
}

int rt_data_split(rt_dataset *ds, double val, const rt_split_opts *o, rt_dataset *eval, ax_diag *d) {
    memset(eval, 0, sizeof *eval);
    const int64_t n = ds->nsamples;
    int64_t *order = malloc(sizeof *order * (size_t)(n + 1));
    int64_t *mo = malloc(sizeof *mo * (size_t)(n + 1)); /* the merged order, which training keeps */
    char *held = calloc((size_t)n + 1, 1), *dup = calloc((size_t)n + 1, 1);
    if (!order || !mo || !held || !dup) abort();
    merged_order(ds, o, mo);
    memcpy(order, mo, sizeof *order * (size_t)n);
    int64_t nf = prepared_of_merged(ds, o, order, dup);
    char *in_shard = NULL; /* with a shard, training keeps only its samples */
    if (o->shard_num > 0) {
        if (!(in_shard = calloc((size_t)n + 1, 1))) abort();
        for (int64_t k = 0; k < nf; k++) in_shard[order[k]] = 1;
    }
    /* Axolotl: int(val) when above 1, else a fraction; HF's train_test_split: ceil(fraction x n) */
    const int64_t n_eval = val > 1 ? (int64_t)val : (int64_t)ceil(val * (double)nf);
    if (n_eval < 1 || n_eval >= nf) {
        ax_error(d, "dataset", "val_set_size: %lld held-out samples of the %lld Axolotl would split leaves %s",
                 (long long)n_eval, (long long)nf, n_eval < 1 ? "no evaluation sample" : "no training sample");
        free(order);
        free(mo);
        free(held);
        free(dup);
        free(in_shard);
        return -1;
    }
    for (int64_t k = nf - n_eval; k < nf; k++) held[order[k]] = 1;
    int64_t *rest = malloc(sizeof *rest * (size_t)(n + 1)), nr = 0;
    if (!rest) abort();
    if (o->train_in_order) { /* Axolotl's own training set, in its order (curriculum_sampling trains in it) */
        for (int64_t k = 0; k < nf - n_eval; k++) rest[nr++] = order[k];
    } else { /* the same in its merged order, with the samples it drops left to the epoch's own filters */
        for (int64_t k = 0; k < n; k++) {
            const int64_t i = mo[k];
            if (!held[i] && !dup[i] && (!in_shard || in_shard[i])) rest[nr++] = i;
        }
    }
    rt_dataset train;
    take_samples(ds, rest, nr, &train);
    take_samples(ds, order + nf - n_eval, n_eval, eval);
    train.nempty = ds->nempty;
    free(order);
    free(mo);
    free(held);
    free(rest);
    free(dup);
    free(in_shard);
    rt_data_free(ds);
    *ds = train;
    return 0;
}

void rt_data_axolotl_order(rt_dataset *ds, const rt_split_opts *o) {
    int64_t *order = malloc(sizeof *order * (size_t)(ds->nsamples + 1));
    char *dup = calloc((size_t)ds->nsamples + 1, 1);
    if (!order || !dup) abort();
    const int64_t nf = axolotl_prepared(ds, o, order, dup);
    free(dup);
    rt_dataset out;
    take_samples(ds, order, nf, &out);
    out.nempty = ds->nempty;
    free(order);
    rt_data_free(ds);
    *ds = out;
}
