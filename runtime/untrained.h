/* untrained.h — Axolotl's fix_untrained_tokens (its LGPL contrib's
 * get_embedding_mean / fix_untrained_tokens, from Unsloth): embedding rows
 * that were never trained are set, before training, to the mean of the
 * trained rows scaled by how often the token occurs in the training data.
 *
 *  - untrained: a row of embed_tokens whose largest value is <= 1e-16, and
 *    whose lm_head row is too, or whose lm_head row (rounded to 3 decimals
 *    in f32, numpy's round) equals another such row's; never the
 *    tokenizer's pad token. The config's token ids are added.
 *  - nothing happens unless one of them is written (its vocab string) in the
 *    tokenizer's chat template, or occurs in the first or last 250 samples
 *    of the training set (in Axolotl's order);
 *  - each one that occurs in the training set gets mean x count / max count
 *    (count: its occurrences in all input ids; max: over every token), the
 *    mean being the f32 sum of all rows less the fixed ones, divided by the
 *    rows less the untrained ones (not less the config's ids: Axolotl's
 *    n_trained), for embed_tokens and for lm_head each.
 * f32 sums are accumulated in double, where torch sums in f32: the new rows
 * may differ from Axolotl's in the last bits. */
#ifndef RT_UNTRAINED_H
#define RT_UNTRAINED_H

#include "ir/base.h"
#include "runtime/data.h"
#include "runtime/tokenizer.h"

#include <stdint.h>

typedef struct rt_untrained_in {
    const float *embed, *lm_head; /* [V, H] each, as the model holds them (the same pointer when tied) */
    int64_t V, H;
    int64_t pad_id;               /* the tokenizer's pad token, or -1 */
    const int64_t *ids;           /* the config's ids (fix_untrained_tokens: [..]) */
    int nids;
    const char *chat_template;    /* the tokenizer's, or NULL */
    const rt_tokenizer *tok;      /* the vocab strings, or NULL */
    int64_t tok_len;              /* len(tokenizer): an id past it has no string */
    const rt_dataset *train;      /* the training set in Axolotl's order */
} rt_untrained_in;

typedef struct rt_untrained_fix {
    int64_t n;       /* rows to set */
    int64_t *ids;    /* their token ids, ascending */
    double *embed;   /* [n, H]: the new embed_tokens rows (before the model's dtype) */
    double *lm_head; /* [n, H]: the new lm_head rows */
    int64_t nfound;  /* untrained (or listed) tokens found, before the data checks */
} rt_untrained_fix;

/* 0 with out->n rows to set (0: nothing to do), or -1 with an error. */
int rt_untrained_compute(const rt_untrained_in *in, rt_untrained_fix *out, ax_diag *d);
void rt_untrained_free(rt_untrained_fix *f);

#endif
