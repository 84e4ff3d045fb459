/* untrained.c — fix_untrained_tokens (untrained.h). */
#include "runtime/untrained.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define UNTRAINED_EPS 1e-16

static int row_untrained(const float *r, int64_t H) { /* torch.amax(row) <= eps; amax of a row with a NaN is NaN */
    float mx = r[0];
    for (int64_t j = 0; j < H; j++) {
        if (isnan(r[j])) return 0;
        if (r[j] > mx) mx = r[j];
    }
    return mx <= UNTRAINED_EPS;
}

typedef struct {
    uint64_t h;
    int64_t k; /* index into the rounded rows */
} hrow;

static int cmp_hrow(const void *a, const void *b) {
    const hrow *x = a, *y = b;
    return x->h != y->h ? (x->h > y->h) - (x->h < y->h) : (x->k > y->k) - (x->k < y->k);
}

/* Marks dup[k] for the rows among rows[0..n) whose lm_head row, rounded as numpy's float32 round(3) rounds it,
 * equals another's (Axolotl's Counter of the rows' bytes, kept where it counts 2 or more). */
static void mark_repeated(const float *lm, int64_t H, const int64_t *rows, int64_t n, char *dup) {
    float *r = malloc(sizeof *r * (size_t)(n * H + 1));
    hrow *hs = malloc(sizeof *hs * (size_t)(n + 1));
    if (!r || !hs) abort();
    for (int64_t k = 0; k < n; k++) {
        for (int64_t j = 0; j < H; j++) {
            volatile float y = lm[rows[k] * H + j] * 1000.0f; /* f32 multiply, rint, f32 divide */
            r[k * H + j] = rintf(y) / 1000.0f;
        }
        hs[k] = (hrow){XXH3_64bits(r + k * H, sizeof *r * (size_t)H), k};
    }
    qsort(hs, (size_t)n, sizeof *hs, cmp_hrow);
    for (int64_t a = 0; a < n;) {
        int64_t b = a;
        while (b < n && hs[b].h == hs[a].h) b++;
        for (int64_t i = a; i < b; i++) /* equal bytes within the hash group (a collision is not a repeat) */
            for (int64_t j = a; j < b; j++)
                if (i != j && !memcmp(r + hs[i].k * H, r + hs[j].k * H, sizeof *r * (size_t)H)) dup[hs[i].k] = 1;
        a = b;
    }
    free(r);
    free(hs);
}

static int sample_has_any(const rt_dataset *ds, int64_t s, const char *bad) {
    for (int64_t t = ds->offsets[s]; t < ds->offsets[s + 1]; t++)
        if (bad[ds->tokens[t]]) return 1;
    return 0;
}

int rt_untrained_compute(const rt_untrained_in *in, rt_untrained_fix *out, ax_diag *d) {
    memset(out, 0, sizeof *out);
    const int64_t V = in->V, H = in->H;
    if (V < 1 || H < 1) return 0;
    char *bad = calloc((size_t)V, 1); /* token id -> fixed (a dataset's ids are below V) */
    int64_t *rows1 = malloc(sizeof *rows1 * (size_t)V), n1 = 0;
    if (!bad || !rows1) abort();
    for (int64_t i = 0; i < V; i++)
        if (row_untrained(in->embed + i * H, H)) rows1[n1++] = i;
    char *dup = calloc((size_t)n1 + 1, 1);
    if (!dup) abort();
    mark_repeated(in->lm_head, H, rows1, n1, dup);
    int64_t n_untrained = 0;
    for (int64_t k = 0; k < n1; k++) {
        const int64_t i = rows1[k];
        if (i == in->pad_id) continue;
        if (dup[k] || row_untrained(in->lm_head + i * H, H)) bad[i] = 1, n_untrained++;
    }
    free(dup);
    free(rows1);
    int rc = 0;
    /* where_untrained: those and the config's ids */
    for (int i = 0; i < in->nids; i++) {
        if (in->ids[i] < 0 || in->ids[i] >= V) {
            ax_error(d, "fix_untrained_tokens", "token id %lld is past the embedding's %lld rows", (long long)in->ids[i],
                     (long long)V);
            free(bad);
            return -1;
        }
        bad[in->ids[i]] = 1;
    }
    int64_t nw = 0;
    for (int64_t i = 0; i < V; i++) nw += bad[i];
    out->nfound = nw;
    if (!nw) goto done;
    /* only when one of them is in the chat template (its vocab string) or in the first or last 250 samples */
    int seen = 0;
    const size_t tlen = in->chat_template ? strlen(in->chat_template) : 0;
    for (int64_t i = 0; i < V && in->chat_template && in->tok && !seen; i++) {
        size_t len;
        const char *str = bad[i] && i < in->tok_len ? rt_tok_str(in->tok, i, &len) : NULL;
        seen = str && (!len || memmem(in->chat_template, tlen, str, len) != NULL);
    }
    const rt_dataset *ds = in->train;
    const int64_t ns = ds ? ds->nsamples : 0;
    for (int64_t s = 0; s < ns && s < 250 && !seen; s++) seen = sample_has_any(ds, s, bad);
    for (int64_t s = ns > 250 ? ns - 250 : 0; s < ns && !seen; s++) seen = sample_has_any(ds, s, bad);
    if (!seen) goto done;
    /* the counts of every token in the training set; those of the fixed tokens that occur */
    int64_t *count = calloc((size_t)V, sizeof *count), maxc = 1;
    if (!count) abort();
    for (int64_t t = 0; ds && t < ds->ntokens; t++) count[ds->tokens[t]]++;
    for (int64_t i = 0; i < V; i++) maxc = count[i] > maxc ? count[i] : maxc;
    for (int64_t i = 0; i < V; i++) out->n += bad[i] && count[i] > 0;
    if (out->n && V - n_untrained < 1) {
        ax_error(d, "fix_untrained_tokens", "every one of the %lld embedding rows is untrained: there is no mean to take",
                 (long long)V);
        free(count);
        out->n = 0;
        rc = -1;
        goto done;
    }
    if (out->n) {
        out->ids = malloc(sizeof *out->ids * (size_t)out->n);
        out->embed = malloc(sizeof *out->embed * (size_t)(out->n * H));
        out->lm_head = malloc(sizeof *out->lm_head * (size_t)(out->n * H));
        double *all = calloc((size_t)H, sizeof *all), *sub = calloc((size_t)H, sizeof *sub);
        float *mean = malloc(sizeof *mean * (size_t)H);
        if (!out->ids || !out->embed || !out->lm_head || !all || !sub || !mean) abort();
        int64_t k = 0;
        for (int64_t i = 0; i < V; i++)
            if (bad[i] && count[i] > 0) out->ids[k++] = i;
        for (int which = 0; which < 2; which++) {
            const float *w = which ? in->lm_head : in->embed;
            double *dst = which ? out->lm_head : out->embed;
            memset(all, 0, sizeof *all * (size_t)H);
            memset(sub, 0, sizeof *sub * (size_t)H);
            for (int64_t i = 0; i < V; i++)
                for (int64_t j = 0; j < H; j++) {
                    all[j] += w[i * H + j];
                    if (bad[i]) sub[j] += w[i * H + j];
                }
            for (int64_t j = 0; j < H; j++) /* f32: (sum - sum of the fixed rows) / n_trained */
                mean[j] = ((float)all[j] - (float)sub[j]) / (float)(V - n_untrained);
            for (int64_t q = 0; q < out->n; q++) {
                const double scale = (double)count[out->ids[q]] / (double)maxc;
                for (int64_t j = 0; j < H; j++) dst[q * H + j] = (double)mean[j] * scale;
            }
        }
        free(all);
        free(sub);
        free(mean);
    }
    free(count);
done:
    free(bad);
    return rc;
}

void rt_untrained_free(rt_untrained_fix *f) {
    if (!f) return;
    free(f->ids);
    free(f->embed);
    free(f->lm_head);
    memset(f, 0, sizeof *f);
}
