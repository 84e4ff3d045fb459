/* dpo.c — rl: dpo's (and rl: ipo's) training loop: TRL 1.9's DPOTrainer as
 * Axolotl 0.19 runs it, with the loss types of ir/dpo_loss.h.
 *
 * The data: runtime/prompt.c's dpo format gives two samples a pair, prompt
 * + chosen then prompt + rejected, labels -100 on the prompt; a pair
 * Axolotl drops as too long gives none. Axolotl merges the datasets as it
 * merges SFT ones (each shuffled first with shuffle_before_merging_datasets,
 * the merged one with shuffle_merged_datasets: numpy's permutation of the
 * seed), sets max_steps to ceil(pairs x num_epochs / global batch), and
 * hands the pairs to TRL, which drops those whose prompt alone fills
 * max_length (sequence_len) and HF Trainer's sampler shuffles each epoch
 * (torch.randperm of seed + epoch), batches and shards as for SFT (a "row"
 * of rt_epoch_row is a pair here).
 *
 * A micro-batch of P pairs is 2P rows of sequence_len, the chosen then the
 * rejected (TRL's concatenated batch), each prompt + completion cut to
 * sequence_len from its start (the collator's keep_start) and right-padded:
 * position ids 0.., the padding's own sequence ids, targets the next token
 * where that token is the completion's.
 *
 * The reference model is the one the run starts from (TRL's ref_model, or
 * the PEFT model with its adapters disabled, which is the same while new
 * adapters are zero): before the first step eval_step gives each kept
 * pair's summed token losses of both rows, each rank a share, joined by a
 * sum over the ranks (each value comes from one rank, the others add 0).
 *
 * Each micro step's pair scale is 1 / (its pairs x the rank's micro-batches
 * in the step x ranks) (the loss weights are the op's, ir/dpo_loss.h; a plan
 * from before them carries train.dpo_loss_weight, read here): TRL's mean over the
 * micro-batch's pairs, HF's division by the step's accumulation count and
 * DDP's average. The logged loss is the sum of the scaled pair losses over
 * the ranks (HF's mean over ranks of each rank's sum), and TRL's metrics
 * (rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
 * logps/chosen, logps/rejected) the mean over the step's global
 * micro-batches of their mean over its pairs. */
#include "runtime/train_internal.h"
#include "ir/dpo_loss.h"
#include "runtime/resume.h"
#include "runtime/sharded_ckpt.h"

#include <errno.h>
#include <xxhash.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Leading -100 labels of a sample: its prompt's tokens (a completion token's label is its id) */
static int64_t prompt_len(const rt_dataset *ds, int64_t i) {
    int64_t n = 0, len = rt_data_sample_len(ds, i);
    while (n < len && ds->labels[ds->offsets[i] + n] == RT_IGNORE_INDEX) n++;
    return n;
}

/* Row r of a micro-batch's [B, S] arrays from sample i (or padding when i < 0). */
static void put_row(const rt_dataset *ds, int64_t i, int64_t S, int32_t pad, int64_t r, int32_t *ids, int32_t *tgt,
                    int32_t *pos, int32_t *seg) {
    int64_t len = i < 0 ? 0 : rt_data_sample_len(ds, i), plen = i < 0 ? 0 : prompt_len(ds, i);
    if (len > S) len = S; /* TRL's collator: keep_start */
    const int32_t *tok = i < 0 ? NULL : ds->tokens + ds->offsets[i];
    for (int64_t t = 0; t < S; t++) {
        const int64_t k = r * S + t;
        ids[k] = t < len ? tok[t] : pad;
        pos[k] = t < len ? (int32_t)t : 0;
        seg[k] = t < len ? 0 : (int32_t)(1 + t - len); /* each padding token its own sequence */
        tgt[k] = t + 1 < len && t + 1 >= plen ? tok[t + 1] : RT_IGNORE_INDEX;
    }
}

/* A micro-batch of pairs q[0..P) (-1: none) into the staged rows: chosen rows 0..P-1, rejected P..2P-1 */
/* ... and each row's completion tokens in cnt[2P] (TRL's completion_mask summed after the collator's keep_start cut;
 * 1 for padding rows, which TRL's clamp would give) */
static void stage_pairs(const rt_dataset *ds, const int64_t *first, const int64_t *q, int64_t P, int64_t S, int32_t pad,
                        int32_t *stage, float *cnt) {
    int32_t *ids = stage, *tgt = stage + 2 * P * S, *pos = stage + 4 * P * S, *seg = stage + 6 * P * S;
    for (int64_t j = 0; j < P; j++)
        for (int h = 0; h < 2; h++) {
            const int64_t i = q[j] < 0 ? -1 : first[q[j]] + h;
            put_row(ds, i, S, pad, h * P + j, ids, tgt, pos, seg);
            int64_t len = i < 0 ? 0 : rt_data_sample_len(ds, i), plen = i < 0 ? 0 : prompt_len(ds, i);
            len = len < S ? len : S, plen = plen < len ? plen : len;
            cnt[h * P + j] = i < 0 ? 1.0f : (float)(len - plen);
        }
}

static const char *jnum6(char *b, size_t cap, double v) {
    if (!isfinite(v)) return "null";
    snprintf(b, cap, "%.6g", v);
    return b;
}

enum { M_CH, M_RJ, M_ACC, M_MARGIN, M_LPC, M_LPR, M_NLL, M_LOR, M_LOC, M_N, M_COUNT }; /* a global micro-batch's sums */

/* rl: simpo (TRL's CPOTrainer) and rl: orpo (ORPOTrainer): no reference model (its log-probs are 0), the rows'
 * log-probabilities are their tokens' mean (get_batch_logps with average_log_prob), and the loss adds alpha x the
 * NLL, the mean token loss of the micro-batch's chosen rows: simpo's over their completions (alpha cpo_alpha),
 * orpo's over every token (alpha 1; it also logs log_odds_ratio and log_odds_chosen). ref_free is 0 for TRL's
 * DPOTrainer. ob: orpo's staging of its four [2P, S] inputs. */
typedef struct pref_kind {
    int ref_free, orpo;
    double alpha;
    int32_t *ob;
} pref_kind;

double rt_dpo_orpo_stage(rt_session *s, const int32_t *ids, const int32_t *tgt, const int32_t *seg, const int64_t *keep,
                         int64_t P, int64_t S, double scale, int32_t *scratch, float *nll) {
    int32_t *ptgt = scratch, *atgt = scratch + 2 * P * S;
    float *cm = (float *)(scratch + 4 * P * S), *tn = (float *)(scratch + 6 * P * S);
    double nall = 0;
    for (int64_t r = 0; r < 2 * P; r++) {
        const int chosen = r < P && (!keep || keep[r] >= 0);
        int64_t len = 0, n = 0;
        while (len < S && seg[r * S + len] == 0) len++;
        for (int64_t t = 0; t < S; t++) {
            const int64_t k = r * S + t;
            atgt[k] = t + 1 < len ? ids[k + 1] : -100;
            cm[k] = tgt[k] != -100 ? 1.0f : 0.0f;
            ptgt[k] = chosen && atgt[k] != -100 && tgt[k] == -100 ? atgt[k] : -100;
            n += chosen && atgt[k] != -100;
        }
        if (nll) nll[r] = (float)n;
        nall += (double)n;
    }
    const float w = nall > 0 ? (float)(scale / nall) : 0.0f;
    for (int64_t k = 0; k < 2 * P * S; k++) tn[k] = k < P * S && atgt[k] != -100 ? w : 0.0f;
    rt_session_set_dpo_orpo(s, ptgt, atgt, cm, tn);
    return nall;
}

static double orpo_stage(rt_session *s, const pref_kind *pk, const int32_t *stage, const int64_t *keep, int64_t P,
                         int64_t S, double scale, float *nll) {
    return rt_dpo_orpo_stage(s, stage, stage + 2 * P * S, stage + 6 * P * S, keep, P, S, scale, pk->ob, nll);
}

/* ORPOTrainer's log odds of a pair from its mean token log-probs a, b: (a - b) - (log(1 - e^a) - log(1 - e^b)) */
static double orpo_log_odds(double a, double b) { return (a - b) - (axo_log1mexp(a) - axo_log1mexp(b)); }

/* A split's pairs as the loader gave them (samples 2k, 2k+1, each dataset's in its order), checked, then Axolotl's
 * merge: each dataset shuffled first (shuffle_before_merging_datasets, several datasets), the merged one by
 * shuffle_merged_datasets (default on). first[k]: the chosen sample of merged pair k. */
static int merge_pairs(const ir_module *m, const char *prefix, const rt_dataset *ds, const int64_t *counts, int nds,
                       int64_t *first, int64_t *tmp, ax_diag *d) {
    const uint64_t seed = (uint64_t)mattr_i(m, "train.seed", 42);
    const int64_t npairs = ds->nsamples / 2;
    for (int i = 0; i < nds; i++)
        if (counts[i] % 2) {
            char k[64];
            snprintf(k, sizeof k, "%s.%d", prefix, i);
            ax_error(d, mattr_s(m, k, "dataset"), "rl: dpo: the dataset gave an odd number of samples (not of a DPO type?)");
            return -1;
        }
    /* CPOTrainer's and ORPOTrainer's tokenize_row lets the two prompts differ by a token (a merge at the boundary) */
    const int64_t tol = ir_module_attr(m, "train.rl_kind") ? 1 : 0;
    for (int64_t k = 0; k < npairs; k++)
        if (llabs(prompt_len(ds, 2 * k) - prompt_len(ds, 2 * k + 1)) > tol) {
            ax_error(d, "dataset", "rl: dpo: pair %lld's two samples do not share their prompt", (long long)k);
            return -1;
        }
    for (int64_t k = 0; k < npairs; k++) first[k] = 2 * k;
    if (nds > 1 && mattr_i(m, "train.shuffle_before_merging_datasets", 0)) {
        for (int i = 0, at = 0; i < nds; at += (int)(counts[i] / 2), i++) {
            const int64_t n = counts[i] / 2;
            rt_np_permutation(seed, n, tmp);
            for (int64_t k = 0; k < n; k++) tmp[k] = first[at + tmp[k]];
            memcpy(first + at, tmp, sizeof *tmp * (size_t)n);
        }
    }
    if (mattr_i(m, "train.shuffle_merged_datasets", 1)) {
        rt_np_permutation(seed, npairs, tmp);
        for (int64_t k = 0; k < npairs; k++) tmp[k] = first[tmp[k]];
        memcpy(first, tmp, sizeof *tmp * (size_t)npairs);
    }
    return 0;
}

/* TRL drops the pairs whose prompt alone fills max_length (keep_start would leave no completion token): in place,
 * the count kept */
static int64_t trl_keep(const rt_dataset *ds, int64_t *first, int64_t n, int64_t L) {
    int64_t nk = 0;
    for (int64_t k = 0; k < n; k++)
        if (prompt_len(ds, first[k]) < L) first[nk++] = first[k];
    return nk;
}

/* eval_step over pairs first[0..n): this rank's are those k with k % ranks == rank, P a call (every rank makes as
 * many calls: eval_step may gather ZeRO-3 parameters); vals[7k..7k+7) gets pair k's row losses (chosen, rejected)
 * and, with ref, its pair loss, rewards and logps (TRL's), summed over the ranks (each pair comes from one). */
enum { V_SC, V_SR, V_LOSS, V_RC, V_RR, V_LPC, V_LPR, V_NLLS, V_NLLN, V_LOR, V_LOC, V_N };
static int pairs_pass(rt_session *s, const rt_dataset *ds, const int64_t *first, int64_t n, const float *ref, double beta,
                      const pref_kind *pk, int32_t pad, int32_t *stage, float *rowbuf, int64_t *keep, float *vals,
                      ax_diag *d) {
    const ir_module *m = s->m;
    const int dp = ir_mesh_find(m, "dp");
    const int64_t nranks = dp >= 0 ? m->mesh_sizes[dp] : 1, rank = dp >= 0 ? s->st.coord[dp] : 0;
    const int64_t P = s->B / 2, S = s->S, mine = (n + nranks - 1) / nranks, calls = (mine + P - 1) / P;
    rt_buf *rows = rt_session_global(s, "stats/dpo_rows"), *pl = rt_session_global(s, "stats/dpo_pair_loss");
    float *sref = rowbuf, *zero = rowbuf + 2 * P, *cnt = rowbuf + 3 * P;
    memset(vals, 0, sizeof *vals * (size_t)(V_N * n));
    for (int64_t j = 0; j < P; j++) zero[j] = 0;
    for (int64_t b = 0; b < calls; b++) {
        for (int64_t j = 0; j < P; j++) {
            const int64_t k = (b * P + j) * nranks + rank;
            keep[j] = k < n ? k : -1;
            sref[j] = ref && keep[j] >= 0 ? ref[2 * k] : 0.0f;
            sref[P + j] = ref && keep[j] >= 0 ? ref[2 * k + 1] : 0.0f;
        }
        stage_pairs(ds, first, keep, P, S, pad, stage, cnt);
        rt_session_set_dpo(s, sref, zero, cnt);
        float *nn = rowbuf + 5 * P; /* orpo: each row's NLL targets */
        if (pk->orpo) orpo_stage(s, pk, stage, keep, P, S, 0.0, nn);
        rt_buf *prow = pk->orpo ? rt_session_global(s, "stats/dpo_prompt_rows") : NULL;
        if (rt_session_eval_step(s, stage, stage + 2 * P * S, stage + 4 * P * S, stage + 6 * P * S, d) != 0 ||
            rt_train_pull(s, rows, d) != 0 || rt_train_pull(s, pl, d) != 0 || (prow && rt_train_pull(s, prow, d) != 0))
            return -1;
        for (int64_t j = 0; j < P; j++) {
            if (keep[j] < 0) continue;
            float *v = vals + V_N * keep[j];
            double lc = -(double)rt_f(rows)[j], lr = -(double)rt_f(rows)[P + j];
            v[V_SC] = rt_f(rows)[j], v[V_SR] = rt_f(rows)[P + j];
            /* the NLL's share of the chosen row: simpo its completion, orpo every target */
            v[V_NLLS] = rt_f(rows)[j] + (prow ? rt_f(prow)[j] : 0.0f), v[V_NLLN] = pk->orpo ? nn[j] : cnt[j];
            if (!ref) continue;
            if (pk->ref_free) lc /= (double)cnt[j], lr /= (double)cnt[P + j]; /* the tokens' mean */
            if (pk->orpo) {
                const double lo = orpo_log_odds(lc, lr);
                v[V_LOR] = (float)-axo_softplus(-lo), v[V_LOC] = (float)lo;
            }
            v[V_LOSS] = rt_f(pl)[j];
            v[V_RC] = (float)(beta * (lc + (double)sref[j])), v[V_RR] = (float)(beta * (lr + (double)sref[P + j]));
            v[V_LPC] = (float)lc, v[V_LPR] = (float)lr;
        }
    }
    if (nranks > 1 && (V_N * n > INT32_MAX || rt_session_world_sum(s, vals, (int)(V_N * n)) != 0)) {
        ax_error(d, "train", "rl: dpo: joining the pairs' values across ranks failed");
        return -1;
    }
    return 0;
}

/* HF's evaluation of pairs first[0..n) (TRL's DPOTrainer in eval mode): eval_loss the mean pair loss (HF weights
 * each batch's mean by its rows); each metric the mean over the eval steps (E pairs a rank, ranks of them a step) of
 * its mean over the step's pairs. met[M_N] as the training's. On several ranks accelerate (even_batches) tops a
 * last batch short of E pairs up with the pairs the first rounds began with (pair i of the top-up is pair
 * i mod min(n, ranks x E)): that batch's mean takes them in, its weight stays its own pairs (gather_for_metrics
 * cuts the repeats); the metrics, gathered per step with accelerator.gather, take in the top-up and the round's
 * padding batches too. A pair's values do not depend on its batch, so both are summed from the pairs already
 * evaluated. rl: simpo's NLL term is each batch's own (its chosen tokens' mean): eval_loss adds alpha x it,
 * weighted by the batch's pairs, and met[M_NLL] is its mean over the batches. */
static int dpo_eval(rt_session *s, const rt_dataset *ds, const int64_t *first, int64_t n, const float *ref, double beta,
                    const pref_kind *pk, double weight, int64_t E, int32_t pad, int32_t *stage, float *rowbuf,
                    int64_t *keep, double *loss, double *met, ax_diag *d) {
    const ir_module *m = s->m;
    const int dp = ir_mesh_find(m, "dp");
    const int64_t nranks = dp >= 0 ? m->mesh_sizes[dp] : 1, Ge = (E > 0 ? E : 1) * nranks;
    float *vals = malloc(sizeof *vals * (size_t)(V_N * n + 1));
    if (!vals) abort();
    const int64_t saved = s->micro_count;
    int rc = pairs_pass(s, ds, first, n, ref, beta, pk, pad, stage, rowbuf, keep, vals, d);
    s->micro_count = saved;
    double tot = 0, acc[M_N] = {0};
    int64_t ngroups = 0;
    const int64_t m0 = n < Ge ? n : Ge; /* the pairs accelerate cycles through to fill the last round */
    for (int64_t g0 = 0; g0 < n && !rc; g0 += Ge, ngroups++) {
        const int64_t g1 = g0 + Ge < n ? g0 + Ge : n;
        /* DPOTrainer gathers the metrics with accelerator.gather, not gather_for_metrics: a last round short of
         * ranks x E pairs takes in the top-up and the padding batches, pairs 0, 1, ... (mod m0); CPOTrainer and
         * ORPOTrainer use gather_for_metrics, which cuts them */
        const int64_t pad_n = nranks > 1 && g1 - g0 < Ge && !pk->ref_free ? Ge - (g1 - g0) : 0;
        double sum[M_N] = {0};
        for (int64_t j = 0; j < g1 - g0 + pad_n; j++) {
            const int64_t k = j < g1 - g0 ? g0 + j : (j - (g1 - g0)) % m0;
            const float *v = vals + V_N * k;
            if (j < g1 - g0) tot += v[V_LOSS];
            sum[M_CH] += v[V_RC], sum[M_RJ] += v[V_RR], sum[M_ACC] += v[V_RC] > v[V_RR];
            sum[M_MARGIN] += (double)v[V_RC] - (double)v[V_RR], sum[M_LPC] += v[V_LPC], sum[M_LPR] += v[V_LPR];
            sum[M_LOR] += v[V_LOR], sum[M_LOC] += v[V_LOC];
        }
        for (int k = 0; k < M_N; k++) acc[k] += sum[k] / (double)(g1 - g0 + pad_n);
    }
    const int64_t Eb = E > 0 ? E : 1, last = n > 0 ? n - (n - 1) / Eb * Eb : 0; /* pairs of the last batch */
    if (!rc && nranks > 1 && n > 0 && last < Eb) {
        /* the short last batch: p x (its pairs' + the top-up's losses) / E where it counted p x (its pairs') / p */
        const int64_t m0 = n < nranks * Eb ? n : nranks * Eb;
        double own = 0, up = 0;
        for (int64_t k = n - last; k < n; k++) own += vals[V_N * k + V_LOSS];
        for (int64_t i = 0; i < Eb - last; i++) up += vals[V_N * (i % m0) + V_LOSS];
        tot += (double)last * (own + up) / (double)Eb - own;
    }
    /* CPOTrainer's and ORPOTrainer's per-batch scalars (nll_loss, log_odds_ratio, log_odds_chosen): each rank's of its
     * batch, top-up and padding pairs included (accelerate's even_batches fill a round's slots from pair 0 on),
     * gathered with gather_for_metrics, which keeps the first `remainder` of them in a short last round (as many
     * as its real pairs), averaged over the round, then over the rounds */
    double scal[3] = {NAN, NAN, NAN};
    if (!rc && pk->ref_free) {
        const int64_t m1 = n < nranks * Eb ? n : nranks * Eb;
        double rsum[3] = {0, 0, 0};
        int64_t nrounds = 0;
        for (int64_t g0 = 0; g0 < n; g0 += nranks * Eb, nrounds++) {
            const int64_t real = (g0 + nranks * Eb < n ? g0 + nranks * Eb : n) - g0;
            const int64_t keep = real < nranks * Eb && real < nranks ? real : nranks;
            double step[3] = {0, 0, 0};
            for (int64_t r = 0; r < keep; r++) {
                double ss = 0, nn = 0, lor = 0, loc = 0;
                int64_t np = 0;
                for (int64_t j = r * Eb; j < (r + 1) * Eb; j++) {
                    if (nranks == 1 && j >= real) break; /* one rank: the short last batch as it is */
                    const float *v = vals + V_N * (j < real ? g0 + j : (j - real) % m1);
                    ss += v[V_NLLS], nn += v[V_NLLN], lor += v[V_LOR], loc += v[V_LOC], np++;
                }
                step[0] += pk->alpha == 0 ? 0.0 : nn > 0 ? ss / nn : NAN; /* TRL: a 0 NLL when cpo_alpha is 0 */
                step[1] += np ? lor / (double)np : NAN, step[2] += np ? loc / (double)np : NAN;
            }
            for (int k = 0; k < 3; k++) rsum[k] += step[k] / (double)keep;
        }
        for (int k = 0; k < 3; k++) scal[k] = nrounds ? rsum[k] / (double)nrounds : NAN;
    }
    if (!rc && (pk->ref_free || pk->alpha != 0)) {
        /* eval_loss's NLL (simpo's, orpo's, rl: dpo's sft): each HF batch's own (E consecutive pairs, the short last
         * one topped up on ranks), weighted by its real pairs */
        const int64_t m1 = n < nranks * Eb ? n : nranks * Eb;
        for (int64_t b0 = 0; b0 < n; b0 += Eb) {
            const int64_t own = (b0 + Eb < n ? b0 + Eb : n) - b0, up = nranks > 1 && own < Eb ? Eb - own : 0;
            double ss = 0, nn = 0;
            for (int64_t j = 0; j < own + up; j++) {
                const float *v = vals + V_N * (j < own ? b0 + j : (j - own) % m1);
                ss += v[V_NLLS], nn += v[V_NLLN];
            }
            tot += pk->alpha == 0 ? 0.0 : pk->alpha * (double)own * (nn > 0 ? ss / nn : NAN);
        }
    }
    free(vals);
    if (rc) return -1;
    *loss = n > 0 ? weight * tot / (double)n : NAN; /* TRL's loss (weight: a plan from before the op's loss weights) */
    for (int k = 0; k < M_N; k++) met[k] = ngroups ? acc[k] / (double)ngroups : NAN;
    if (pk->ref_free) met[M_NLL] = scal[0], met[M_LOR] = scal[1], met[M_LOC] = scal[2];
    return 0;
}

/* A checkpoint's reference log-probs (rl: dpo), beside its trainer_state.json: a full fine-tune cannot take them
 * again once the weights moved. "AXODPO01", the pair counts, an XXH3 of the pairs' tokens in their order (so a
 * resumed run on other data is refused), then the training pairs' and the eval pairs' row losses (f32). */
#define DPO_REF_FILE "dpo_reference.bin"
static uint64_t pairs_hash(const rt_dataset *ds, const int64_t *first, int64_t n, uint64_t h) {
    for (int64_t k = 0; k < n; k++)
        for (int r = 0; r < 2; r++) {
            const int64_t i = first[k] + r;
            h = XXH3_64bits_withSeed(ds->tokens + ds->offsets[i], sizeof(int32_t) * (size_t)rt_data_sample_len(ds, i), h);
            h = XXH3_64bits_withSeed(ds->labels + ds->offsets[i], sizeof(int32_t) * (size_t)rt_data_sample_len(ds, i), h);
        }
    return h;
}

static int ref_save(const char *dir, int64_t nk, int64_t nek, uint64_t h, const float *ref, const float *eref, ax_diag *d) {
    char path[4096];
    if (ax_path_join(path, sizeof path, dir, DPO_REF_FILE) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    ax_buf b = {0};
    const int64_t hdr[3] = {nk, nek, (int64_t)h};
    ax_buf_append(&b, "AXODPO01", 8);
    ax_buf_append(&b, hdr, sizeof hdr);
    ax_buf_append(&b, ref, sizeof *ref * (size_t)(2 * nk));
    ax_buf_append(&b, eref, sizeof *eref * (size_t)(2 * nek));
    int rc = ax_write_file_atomic(path, b.data, b.len, d);
    ax_buf_free(&b);
    return rc;
}

static int ref_load(const char *dir, int64_t nk, int64_t nek, uint64_t h, float *ref, float *eref, ax_diag *d) {
    char path[4096];
    size_t len = 0;
    if (ax_path_join(path, sizeof path, dir, DPO_REF_FILE) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    char *b = ax_read_file(path, &len, d);
    if (!b) return -1;
    int64_t hdr[3] = {0, 0, 0};
    if (len >= 8 + sizeof hdr) memcpy(hdr, b + 8, sizeof hdr);
    const size_t want = 8 + sizeof hdr + sizeof(float) * (size_t)(2 * nk + 2 * nek);
    int rc = 0;
    if (len < 8 + sizeof hdr || memcmp(b, "AXODPO01", 8)) {
        ax_error(d, path, "not a reference file axo wrote (expected the AXODPO01 header)");
        rc = -1;
    } else if (hdr[0] != nk || hdr[1] != nek || (uint64_t)hdr[2] != h || len != want) {
        ax_error(d, path, "holds the reference log-probabilities of %lld training and %lld eval pairs of other data; this "
                 "run has %lld and %lld (the datasets, the tokenizer or sequence_len changed): it cannot continue that "
                 "run", (long long)hdr[0], (long long)hdr[1], (long long)nk, (long long)nek);
        rc = -1;
    } else {
        memcpy(ref, b + 8 + sizeof hdr, sizeof(float) * (size_t)(2 * nk));
        memcpy(eref, b + 8 + sizeof hdr + sizeof(float) * (size_t)(2 * nk), sizeof(float) * (size_t)(2 * nek));
    }
    free(b);
    return rc;
}

static void eval_report(FILE *out, FILE *log, ax_buf *hist, int64_t step, int64_t epoch, double loss, const double *met,
                        const pref_kind *pk) {
    char line[1024], a[10][40], nll[200] = "";
    if (pk->orpo)
        snprintf(nll, sizeof nll, ", \"eval_nll_loss\": %s, \"eval_log_odds_ratio\": %s, \"eval_log_odds_chosen\": %s",
                 jnum6(a[7], 40, met[M_NLL]), jnum6(a[8], 40, met[M_LOR]), jnum6(a[9], 40, met[M_LOC]));
    else if (pk->ref_free)
        snprintf(nll, sizeof nll, ", \"eval_nll_loss\": %s", jnum6(a[7], 40, met[M_NLL]));
    snprintf(line, sizeof line,
             "{\"step\": %lld, \"epoch\": %lld, \"eval_loss\": %s, \"eval_rewards/chosen\": %s, \"eval_rewards/rejected\": %s, "
             "\"eval_rewards/accuracies\": %s, \"eval_rewards/margins\": %s, \"eval_logps/chosen\": %s, "
             "\"eval_logps/rejected\": %s%s}\n",
             (long long)step, (long long)epoch, jnum6(a[0], 40, loss), jnum6(a[1], 40, met[M_CH]), jnum6(a[2], 40, met[M_RJ]),
             jnum6(a[3], 40, met[M_ACC]), jnum6(a[4], 40, met[M_MARGIN]), jnum6(a[5], 40, met[M_LPC]),
             jnum6(a[6], 40, met[M_LPR]), nll);
    if (out)
        printf("eval at step %lld | eval_loss %.4f | eval_rewards/chosen %.4f | eval_rewards/rejected %.4f | "
               "eval_rewards/accuracies %.3f\n", (long long)step, loss, met[M_CH], met[M_RJ], met[M_ACC]);
    if (log) {
        fputs(line, log);
        fflush(log);
        ax_buf_puts(hist, line);
    }
}

int rt_train_dpo(rt_session *s, const rt_train_opts *o, ax_diag *d) {
    const ir_module *m = s->m;
    const int dp = ir_mesh_find(m, "dp");
    const int64_t nranks = dp >= 0 ? m->mesh_sizes[dp] : 1, rank = dp >= 0 ? s->st.coord[dp] : 0;
    const int lead = rt_session_is_rank0(s), quiet = o->quiet || !lead;
    const char *out_dir = o->output_dir ? o->output_dir : mattr_s(m, "io.output_dir", "./outputs");
    const int64_t P = s->B / 2, S = s->S, ga = s->grad_accum;
    const double beta = mattr_f(m, "train.rl_beta", 0.1), weight = mattr_f(m, "train.dpo_loss_weight", 1.0);
    /* alpha: the NLL term's weight, simpo's cpo_alpha, orpo's 1, or rl: dpo's sft term */
    pref_kind pk = {.ref_free = ir_module_attr(m, "train.rl_kind") != NULL,
                    .alpha = ir_module_attr(m, "train.rl_kind") ? mattr_f(m, "train.cpo_alpha", 0)
                                                                : mattr_f(m, "train.dpo_sft_weight", 0),
                    .orpo = !strcmp(mattr_s(m, "train.rl_kind", ""), "orpo")};
    const char *rl_name = mattr_s(m, "train.rl_kind", "dpo");
    const int32_t pad = (int32_t)mattr_i(m, "model.pad_id", 0);
    const uint64_t seed = (uint64_t)mattr_i(m, "train.seed", 42);
    int nds = (int)mattr_i(m, "io.ndatasets", 0);
    if (nds < 1) {
        ax_error(d, "plan", "the config names no dataset (datasets:)");
        return -1;
    }
    if (!s->has_eval || s->sp > 1) {
        ax_error(d, "plan", "an rl: dpo plan needs eval_step and no sequence parallelism (a plan from another axoc?)");
        return -1;
    }
    rt_dataset ds = {0}, eds = {0};
    int64_t *counts = calloc((size_t)nds, sizeof *counts), *first = NULL, *keep = NULL, *order = NULL, *efirst = NULL;
    float *ref = NULL, *rowbuf = NULL, *mred = NULL, *eref = NULL;
    double *msum = NULL;
    int32_t *stage = NULL;
    FILE *log = NULL;
    ax_buf logbuf = {0};
    int rc = -1;
    if (!counts) abort();
    if (rt_train_load_datasets(m, "io.dataset", nds, s->V, s->L, &ds, counts, lead, lead && !quiet, d)) goto out;

    /* the pairs of each split, merged as Axolotl merges them; val_set_size holds out the last of the merged pairs
     * (its train_test_split, shuffle=False), before TRL's drop; test_datasets are their own merge */
    int64_t npairs = ds.nsamples / 2;
    first = malloc(sizeof *first * (size_t)(npairs + 1));
    order = malloc(sizeof *order * (size_t)(npairs + 1));
    if (!first || !order) abort();
    if (merge_pairs(m, "io.dataset", &ds, counts, nds, first, order, d) != 0) goto out;
    if (lead && ds.nempty)
        ax_warn(d, "dataset", "%lld pairs longer than sequence_len were dropped, as Axolotl drops them",
                (long long)(ds.nempty / 2));
    const double val = mattr_f(m, "train.val_set_size", 0);
    const int ntest = (int)mattr_i(m, "io.ntest_datasets", 0);
    const rt_dataset *eset = NULL; /* the eval pairs' samples: ds's (val_set_size) or eds's (test_datasets) */
    int64_t ne = 0;
    if (val > 0) {
        ne = val < 1 ? (int64_t)ceil(val * (double)npairs) : (int64_t)val;
        if (ne < 1 || ne >= npairs) {
            ax_error(d, "val_set_size", "%g of %lld preference pairs leaves %s (HF datasets' train_test_split refuses it)",
                     val, (long long)npairs, ne < 1 ? "no pair to evaluate" : "no pair to train on");
            goto out;
        }
        efirst = malloc(sizeof *efirst * (size_t)(ne + 1));
        if (!efirst) abort();
        memcpy(efirst, first + (npairs - ne), sizeof *efirst * (size_t)ne);
        npairs -= ne;
        eset = &ds;
    } else if (ntest > 0) {
        int64_t *ecounts = calloc((size_t)ntest, sizeof *ecounts);
        if (!ecounts) abort();
        int bad = rt_train_load_datasets(m, "io.test_dataset", ntest, s->V, s->L, &eds, ecounts, lead, lead && !quiet, d);
        ne = eds.nsamples / 2;
        efirst = malloc(sizeof *efirst * (size_t)(ne + 1));
        int64_t *tmp = malloc(sizeof *tmp * (size_t)(ne + 1));
        if (!efirst || !tmp) abort();
        if (!bad) bad = merge_pairs(m, "io.test_dataset", &eds, ecounts, ntest, efirst, tmp, d);
        free(ecounts), free(tmp);
        if (bad) goto out;
        eset = &eds;
    }
    const int64_t ntrain_ax = npairs; /* Axolotl's count for its max_steps: before TRL's drop */
    /* TRL's CPOTrainer keeps every pair (its tokenize_row cuts the completions instead) */
    int64_t nk = pk.ref_free ? npairs : trl_keep(&ds, first, npairs, s->L),
            nek = !eset ? 0 : pk.ref_free ? ne : trl_keep(eset, efirst, ne, s->L);
    if (pk.ref_free && lead) { /* a pair TRL would feed the model whole, past sequence_len (the bos and eos it adds) */
        int64_t over = 0;
        for (int e = 0; e < 2; e++) {
            const rt_dataset *x = e ? eset : &ds;
            const int64_t *f = e ? efirst : first, nn = e ? nek : nk;
            for (int64_t k = 0; x && k < nn; k++)
                over += rt_data_sample_len(x, f[k]) > S || rt_data_sample_len(x, f[k] + 1) > S;
        }
        if (over)
            ax_warn(d, "dataset", "rl: %s: %lld pairs have a row longer than sequence_len + 2 (TRL's CPOTrainer "
                    "tokenizes the prompt and completion together and adds a bos and an eos); TRL feeds those rows "
                    "whole, axo's rows hold sequence_len + 2 tokens and cut them there", rl_name, (long long)over);
    }
    if (lead && nk + nek < npairs + ne)
        ax_warn(d, "dataset", "%lld pairs whose prompt alone has sequence_len tokens or more were dropped, as TRL drops "
                "them", (long long)(npairs + ne - nk - nek));
    if (eset && nek < 1) {
        ax_error(d, val > 0 ? "val_set_size" : "test_datasets", "no preference pair is left to evaluate (TRL drops those "
                 "whose prompt alone has sequence_len tokens)");
        goto out;
    }
    const int64_t G = P * ga * nranks; /* pairs a step */
    /* Axolotl's RL builder does not pass dataloader_drop_last: HF's default, false (the frontend warns) */
    const rt_batching bt = {.B = P, .ga = ga, .nranks = nranks, .drop_last = 0};
    rt_epoch_span esp = rt_epoch_span_of(&bt, nk);
    if (esp.nsteps < 1) {
        ax_error(d, "dataset", "%lld preference pairs are fewer than one micro-batch on every rank (%lld pairs = "
                 "micro_batch_size %lld x %lld ranks)", (long long)nk, (long long)(P * nranks), (long long)P, (long long)nranks);
        goto out;
    }
    /* Axolotl's max_steps for rl: ceil(its pairs x num_epochs / batch size), its pairs being those before TRL's drop */
    const double epochs = mattr_f(m, "train.epochs", 1);
    const int64_t data_total = (int64_t)ceil((double)ntrain_ax * epochs / (double)G), max_steps = o->max_steps > 0 ?
                               o->max_steps : mattr_i(m, "train.max_steps", 0);
    const int64_t total = max_steps > 0 ? max_steps : data_total;
    const int64_t warmup = rt_axolotl_warmup(m, data_total); /* for rl, Axolotl's count is not capped by max_steps */
    const rt_lr_sched lrs = rt_train_sched(m, warmup, total);
    const double base_lr = mattr_f(m, "train.lr", 1e-4);
    const int one_cycle = !strcmp(lrs.name, "one_cycle");
    if (rt_train_check_sched(&lrs, base_lr, d) != 0) goto out;
    /* Axolotl's RL builder asks HF for logging_first_step */
    const int64_t log_every = rt_axolotl_logging_steps(m, data_total);
    int64_t save_every = mattr_i(m, "train.save_steps", 0);
    int64_t keep_n = mattr_i(m, "train.save_total_limit", 0);
    if (keep_n <= 0) keep_n = 4;
    const char *sstrat = mattr_s(m, "train.save_strategy", "");
    const int per_epoch_saves = (int)mattr_i(m, "train.saves_per_epoch", 0);
    if (per_epoch_saves > 0) {
        double r = 1.0 / ((double)per_epoch_saves * epochs);
        if (r < 1.0) save_every = (int64_t)ceil((double)total * r);
    }
    enum { SAVE_NO, SAVE_EPOCH, SAVE_STEPS } save_mode = save_every > 0              ? SAVE_STEPS
                                                         : !strcmp(sstrat, "no")    ? SAVE_NO
                                                         : !strcmp(sstrat, "steps") ? SAVE_STEPS
                                                                                    : SAVE_EPOCH;
    if (save_mode == SAVE_STEPS && save_every <= 0) save_every = 500;

    /* the output dir before any work: a trained model there is never replaced unasked */
    if (rt_session_any_rank(s, lead && rt_train_open_output(s, out_dir, o->overwrite, &log, d) != 0)) goto out;

    stage = malloc(sizeof *stage * (size_t)(8 * P * S)); /* a micro-batch's ids, targets, positions, sequence ids */
    ref = calloc((size_t)(2 * nk + 1), sizeof *ref);
    rowbuf = malloc(sizeof *rowbuf * (size_t)(9 * P + 1)); /* ref[2P], scales[P], counts[2P], NLL weights and counts */
    if (pk.orpo) pk.ob = malloc(sizeof *pk.ob * (size_t)(8 * P * S)); /* orpo's four [2P, S] inputs */
    keep = malloc(sizeof *keep * (size_t)(P + 1));
    if (!stage || !ref || !rowbuf || !keep || (pk.orpo && !pk.ob)) abort();
    rt_buf *rows = rt_session_global(s, "stats/dpo_rows"), *pl = rt_session_global(s, "stats/dpo_pair_loss"),
           *gss = rt_session_global(s, "stats/grad_sumsq");
    if (!rows || !pl) {
        ax_error(d, "plan", "an rl: dpo plan without @stats/dpo_rows or @stats/dpo_pair_loss");
        goto out;
    }
    double t0 = rt_train_now();
    /* resume_from_checkpoint (or --resume-from), or auto_resume_from_checkpoints: the newest resumable one; its
     * reference log-probs come from it (the weights have moved) */
    char latest[4096];
    const char *resume = o->resume_from ? o->resume_from : mattr_s(m, "train.resume_from", NULL);
    if (resume && !*resume) resume = NULL;
    if (!resume && mattr_i(m, "train.auto_resume", 0) && rt_resume_latest(out_dir, latest, sizeof latest) == 0) resume = latest;
    float agree[2] = {resume ? 1.0f : 0.0f, 1.0f};
    if (nranks > 1 && rt_session_world_sum(s, agree, 2) != 0) {
        ax_error(d, "train", "ranks could not agree on resuming (a collective failed)");
        goto out;
    }
    if (agree[0] != 0 && agree[0] != agree[1]) {
        ax_error(d, resume ? resume : out_dir, "some ranks would resume and others start afresh (do all ranks see the same "
                 "output_dir and checkpoints?)");
        goto out;
    }
    const uint64_t phash = pairs_hash(eset ? eset : &ds, efirst, eset ? nek : 0, pairs_hash(&ds, first, nk, 0));
    int64_t start = 0;
    char *hist = NULL;
    if (resume) {
        int64_t ck_step = 0, ck_max = 0, ck_batch = 0;
        eref = calloc((size_t)(2 * nek + 1), sizeof *eref);
        if (!eref) abort();
        if (rt_resume_peek(resume, &ck_step, &ck_max, &ck_batch, d) != 0 ||
            (!pk.ref_free && ref_load(resume, nk, nek, phash, ref, eref, d) != 0))
            goto out;
        if (ck_batch > 0 && ck_batch != G) {
            ax_error(d, resume, "was trained with %lld preference pairs a step, this plan takes %lld (micro_batch_size %lld "
                     "x gradient_accumulation_steps %lld x %lld ranks): the data would not continue where it stopped",
                     (long long)ck_batch, (long long)G, (long long)P, (long long)ga, (long long)nranks);
            goto out;
        }
        if (ck_max > 0 && ck_max != total && one_cycle) {
            ax_error(d, resume, "was saved by a run of %lld steps, this one has %lld: torch's OneCycleLR keeps the "
                     "checkpoint's total_steps; resume with max_steps: %lld", (long long)ck_max, (long long)total,
                     (long long)ck_max);
            goto out;
        }
        if (rt_resume_load(s, resume, &start, &hist, d) != 0) goto out;
        if (start >= total) {
            ax_error(d, resume, "is at step %lld and training ends at step %lld (max_steps): nothing is left to train",
                     (long long)start, (long long)total);
            free(hist);
            goto out;
        }
        if (lead && ck_max > 0 && ck_max != total)
            ax_warn(d, resume, "was saved by a run of %lld steps, this one has %lld: the learning-rate schedule continues "
                    "as this run's", (long long)ck_max, (long long)total);
        if (!quiet) printf("axorun: resuming from %s at step %lld of %lld\n", resume, (long long)start + 1, (long long)total);
        if (log && hist) { /* the resumed run's log starts with the checkpoint's history */
            fputs(hist, log);
            fflush(log);
            ax_buf_puts(&logbuf, hist);
        }
        free(hist);
    }
    /* the reference: eval_step at the initial weights over the training pairs and the eval pairs, each rank a
     * share (pairs_pass); the row losses kept, two a pair */
    if (!resume && pk.ref_free) {
        eref = calloc((size_t)(2 * nek + 1), sizeof *eref); /* no reference model: its log-probs are 0 */
        if (!eref) abort();
    } else if (!resume) {
        float *v = malloc(sizeof *v * (size_t)(V_N * (nk > nek ? nk : nek) + 1));
        eref = calloc((size_t)(2 * nek + 1), sizeof *eref);
        if (!v || !eref) abort();
        int bad = pairs_pass(s, &ds, first, nk, NULL, beta, &pk, pad, stage, rowbuf, keep, v, d) != 0;
        for (int64_t k = 0; k < nk && !bad; k++) ref[2 * k] = v[V_N * k + V_SC], ref[2 * k + 1] = v[V_N * k + V_SR];
        if (!bad && eset) bad = pairs_pass(s, eset, efirst, nek, NULL, beta, &pk, pad, stage, rowbuf, keep, v, d) != 0;
        for (int64_t k = 0; k < nek && !bad; k++) eref[2 * k] = v[V_N * k + V_SC], eref[2 * k + 1] = v[V_N * k + V_SR];
        free(v);
        if (bad) goto out;
        if (!quiet)
            printf("axorun: rl: dpo: the reference model's log-probabilities of %lld pairs in %.1f s (eval_step, before "
                   "the first step)\n", (long long)(nk + nek), rt_train_now() - t0);
    }
    /* evaluation: when HF evaluates (and at the end, as axo's SFT loop does); eval batches of eval_batch_size pairs */
    int64_t eval_every = 0;
    int eval_epochly = 0, eval_on_start = 0;
    const int64_t eval_bs = mattr_i(m, "train.eval_batch_size", P);
    if (eset) {
        rt_train_eval_plan(m, total, esp.nsteps, log_every, &eval_every, &eval_epochly, &eval_on_start);
        if (!quiet)
            printf("axorun: %lld preference pairs %s; evaluated %s%s\n", (long long)nek,
                   val > 0 ? "held out (val_set_size)" : "to evaluate (test_datasets)",
                   eval_every ? "at the eval steps and at the end" : "before the first step only (eval_strategy: no)",
                   eval_on_start && eval_every ? ", and before the first step (eval_on_start)" : "");
    }
    if (!quiet)
        printf("axorun: rl: %s (beta %g, loss %s): %lld steps (%lld per epoch), %lld preference pairs a step "
               "(micro_batch_size %lld x %lld x %lld rank%s), rows of %lld tokens, %s executor\n",
               rl_name, beta, mattr_s(m, "train.dpo_loss_type", "sigmoid"), (long long)total, (long long)esp.nsteps, (long long)G, (long long)P, (long long)ga, (long long)nranks,
               nranks > 1 ? "s" : "", (long long)S, s->backend ? s->backend->name : "cpu");
    int64_t ep = 0, ep_first = 0;
    double tlast = rt_train_now();
    int64_t tok_since = 0;
    /* since the last log: HF's summed loss of the steps, TRL's metrics of every global micro-batch (their means) */
    double loss_acc = 0, met_acc[M_N] = {0};
    int64_t last_logged = start, met_n = 0;
    msum = malloc(sizeof *msum * (size_t)(M_COUNT * ga) + 1);
    mred = malloc(sizeof *mred * (size_t)(M_COUNT * ga + 2) + 1);
    if (!msum || !mred) abort();
    if (eset && eval_on_start && start == 0 && total > 0) { /* HF's eval_on_start, before step 1 */
        double el, met[M_N];
        if (dpo_eval(s, eset, efirst, nek, eref, beta, &pk, weight, eval_bs, pad, stage, rowbuf, keep, &el, met, d) != 0) goto out;
        eval_report(quiet ? NULL : stdout, log, &logbuf, 0, 0, el, met, &pk);
    }
    ep = start / esp.nsteps, ep_first = ep * esp.nsteps; /* a resumed run's epoch */
    for (int64_t step = start; step < total; step++) {
        if (step >= ep_first + esp.nsteps) ep_first += esp.nsteps, ep++; /* every epoch has nk pairs */
        const int64_t estep = step - ep_first;
        int64_t *perm = order; /* this epoch's sampler order over the kept pairs */
        if (estep == 0 || step == start) rt_data_epoch_order(nk, seed, ep, perm);
        /* this rank's micro-batches that hold a pair: HF divides each by their count */
        int64_t nmb = 0;
        for (int64_t mb = 0; mb < ga; mb++) {
            int any = 0;
            for (int64_t j = 0; j < P; j++) any |= rt_epoch_row(&bt, &esp, estep, (mb * nranks + rank) * P + j) >= 0;
            nmb += any;
        }
        double lsum = 0;
        int64_t step_tok = 0;
        memset(msum, 0, sizeof *msum * (size_t)(M_COUNT * ga));
        for (int64_t mb = 0; mb < ga; mb++) {
            int64_t np = 0;
            for (int64_t j = 0; j < P; j++) {
                const int64_t r = rt_epoch_row(&bt, &esp, estep, (mb * nranks + rank) * P + j);
                keep[j] = r >= 0 ? perm[r] : -1;
                np += r >= 0;
            }
            float *sref = rowbuf, *psc = rowbuf + 2 * P, *cnt = rowbuf + 3 * P;
            stage_pairs(&ds, first, keep, P, S, pad, stage, cnt);
            for (int64_t j = 0; j < P; j++) {
                sref[j] = keep[j] >= 0 ? ref[2 * keep[j]] : 0.0f;
                sref[P + j] = keep[j] >= 0 ? ref[2 * keep[j] + 1] : 0.0f;
                psc[j] = keep[j] >= 0 ? (float)(weight / ((double)np * (double)nmb * (double)nranks)) : 0.0f;
            }
            rt_session_set_dpo(s, sref, psc, cnt);
            /* the NLL: alpha x the chosen rows' token mean (simpo: their completions'; orpo: every target's), HF's
             * and DDP's scale */
            float *nllw = rowbuf + 5 * P, *nn = rowbuf + 7 * P;
            double ncm = 0;
            for (int64_t j = 0; j < P; j++) ncm += keep[j] >= 0 ? (double)cnt[j] : 0.0;
            if (pk.orpo) ncm = orpo_stage(s, &pk, stage, keep, P, S, pk.alpha / ((double)nmb * (double)nranks), nn);
            for (int64_t j = 0; j < 2 * P; j++)
                nllw[j] = j < P && keep[j] >= 0 && ncm > 0 ? (float)(pk.alpha / (ncm * (double)nmb * (double)nranks)) : 0.0f;
            if (!pk.orpo && pk.alpha != 0) rt_session_set_dpo_nll(s, nllw);
            rt_buf *prow = pk.orpo ? rt_session_global(s, "stats/dpo_prompt_rows") : NULL;
            if (rt_session_micro_step(s, stage, stage + 2 * P * S, stage + 4 * P * S, stage + 6 * P * S, 0.0f, d) != 0 ||
                rt_train_pull(s, rows, d) != 0 || rt_train_pull(s, pl, d) != 0 || (prow && rt_train_pull(s, prow, d) != 0))
                goto out;
            double *ms = msum + M_COUNT * mb;
            double nll_s = 0;
            for (int64_t j = 0; j < P; j++) {
                if (keep[j] < 0) continue;
                lsum += (double)psc[j] * (double)rt_f(pl)[j];
                const double sn = (double)rt_f(rows)[j] + (prow ? (double)rt_f(prow)[j] : 0.0); /* the row's NLL sum */
                if (pk.alpha != 0) lsum += (double)nllw[j] * sn;
                if (pk.ref_free) nll_s += sn;
                /* TRL's: logps = -summed token loss; rewards = beta x (logps - reference logps); CPOTrainer's and
                 * ORPOTrainer's logps are the tokens' mean */
                double lc = -(double)rt_f(rows)[j], lr_ = -(double)rt_f(rows)[P + j];
                if (pk.ref_free) lc /= (double)cnt[j], lr_ /= (double)cnt[P + j];
                const double rc_ = beta * (lc + (double)sref[j]), rr = beta * (lr_ + (double)sref[P + j]);
                ms[M_CH] += rc_, ms[M_RJ] += rr, ms[M_ACC] += rc_ > rr, ms[M_MARGIN] += rc_ - rr;
                ms[M_LPC] += lc, ms[M_LPR] += lr_, ms[M_N] += 1;
                if (pk.orpo) {
                    const double lo = orpo_log_odds(lc, lr_);
                    ms[M_LOR] += -axo_softplus(-lo), ms[M_LOC] += lo;
                }
            }
            /* TRL's nll_loss metric, this rank's micro-batch value, weighted by its pairs (its mean over the ranks) */
            if (pk.ref_free && np > 0) ms[M_NLL] += (pk.alpha == 0 || ncm <= 0 ? 0.0 : nll_s / ncm) * (double)np;
            for (int64_t i = 0; i < 2 * P * S; i++) step_tok += stage[6 * P * S + i] == 0; /* the attention mask's tokens */
        }
        double lr, b1 = NAN;
        if (one_cycle) {
            char why[256];
            if (rt_one_cycle_at(&lrs, base_lr, step, &lr, &b1, why, sizeof why) != 0) {
                ax_error(d, "train", "lr_scheduler: one_cycle: %s", why);
                goto out;
            }
            if (!isnan(b1)) rt_session_set_beta1(s, b1);
        } else {
            lr = rt_lr_sched_at(&lrs, base_lr, step);
        }
        if (rt_session_opt_step(s, (float)lr, step + 1, d) != 0 || rt_train_pull(s, gss, d) != 0) goto out;
        /* one reduction: the loss, the tokens, each global micro-batch's metric sums */
        mred[0] = (float)lsum, mred[1] = (float)step_tok;
        for (int64_t i = 0; i < M_COUNT * ga; i++) mred[2 + i] = (float)msum[i];
        if (nranks > 1 && s->st.coll->all_reduce(s->st.coll->ctx, dp, mred, (int)(2 + M_COUNT * ga)) != 0) {
            ax_error(d, "train", "reducing the loss across ranks failed");
            goto out;
        }
        const double loss = (double)mred[0], gnorm = gss ? sqrt((double)rt_f(gss)[0]) : NAN;
        for (int64_t mb = 0; mb < ga; mb++) {
            const float *ms = mred + 2 + M_COUNT * mb;
            if (ms[M_N] <= 0) continue;
            for (int k = 0; k < M_N; k++) met_acc[k] += (double)ms[k] / (double)ms[M_N];
            met_n++;
        }
        loss_acc += loss;
        tok_since += (int64_t)mred[1];
        const int diverged = !isfinite(loss) || (gss && !isfinite(gnorm));
        if (step == 0 || (step + 1) % log_every == 0 || step + 1 == total || diverged) {
            double t = rt_train_now(), tps = (double)tok_since / fmax(t - tlast, 1e-9), met[M_N];
            const double log_loss = loss_acc / (double)(step + 1 - last_logged);
            for (int k = 0; k < M_N; k++) met[k] = met_n ? met_acc[k] / (double)met_n : NAN, met_acc[k] = 0;
            loss_acc = 0, met_n = 0, last_logged = step + 1;
            if (!quiet)
                printf("step %lld/%lld | epoch %lld | loss %.4f | grad_norm %.4f | lr %.3e | rewards/chosen %.4f | "
                       "rewards/rejected %.4f | rewards/accuracies %.3f | %.0f tok/s\n",
                       (long long)step + 1, (long long)total, (long long)ep, log_loss, gnorm, lr, met[M_CH], met[M_RJ],
                       met[M_ACC], tps);
            if (log) {
                char line[1024], a[12][40], nll[256] = "";
                if (pk.orpo)
                    snprintf(nll, sizeof nll, ", \"nll_loss\": %s, \"log_odds_ratio\": %s, \"log_odds_chosen\": %s",
                             jnum6(a[9], 40, met[M_NLL]), jnum6(a[10], 40, met[M_LOR]), jnum6(a[11], 40, met[M_LOC]));
                else if (pk.ref_free)
                    snprintf(nll, sizeof nll, ", \"nll_loss\": %s", jnum6(a[9], 40, met[M_NLL]));
                snprintf(line, sizeof line,
                         "{\"step\": %lld, \"epoch\": %lld, \"loss\": %s, \"grad_norm\": %s, \"lr\": %s, \"rewards/chosen\": "
                         "%s, \"rewards/rejected\": %s, \"rewards/accuracies\": %s, \"rewards/margins\": %s, "
                         "\"logps/chosen\": %s, \"logps/rejected\": %s%s, \"tokens_per_s\": %.1f}\n",
                         (long long)step + 1, (long long)ep, jnum6(a[0], 40, log_loss), jnum6(a[1], 40, gnorm), jnum6(a[2], 40, lr),
                         jnum6(a[3], 40, met[M_CH]), jnum6(a[4], 40, met[M_RJ]), jnum6(a[5], 40, met[M_ACC]),
                         jnum6(a[6], 40, met[M_MARGIN]), jnum6(a[7], 40, met[M_LPC]), jnum6(a[8], 40, met[M_LPR]), nll, tps);
                fputs(line, log);
                fflush(log);
                ax_buf_puts(&logbuf, line);
            }
            tlast = t;
            tok_since = 0;
        }
        if (diverged) {
            ax_error(d, "train", "step %lld: loss %g, grad_norm %g: training diverged, so it stopped without saving this "
                     "step; lower learning_rate (now %g at this step) or set max_grad_norm",
                     (long long)step + 1, loss, gnorm, lr);
            goto out;
        }
        const int epoch_end = estep + 1 == esp.nsteps;
        const int eval_point = eval_every && (eval_epochly ? epoch_end : (step + 1) % eval_every == 0);
        if (eset && eval_every && (eval_point || step + 1 == total)) {
            double el, met[M_N];
            if (dpo_eval(s, eset, efirst, nek, eref, beta, &pk, weight, eval_bs, pad, stage, rowbuf, keep, &el, met, d) != 0) goto out;
            eval_report(quiet ? NULL : stdout, log, &logbuf, step + 1, ep, el, met, &pk);
        }
        const int save_now = save_mode == SAVE_STEPS   ? (step + 1) % save_every == 0 || step + 1 == total
                             : save_mode == SAVE_EPOCH ? epoch_end || step + 1 == total
                                                       : 0;
        if (save_now) { /* checkpoints as SFT writes them (the final model goes to output_dir itself) */
            char ck[4096], name[64];
            snprintf(name, sizeof name, "checkpoint-%lld", (long long)step + 1);
            if (ax_path_join(ck, sizeof ck, out_dir, name) != 0) {
                ax_error(d, out_dir, "path too long");
                goto out;
            }
            /* fsdp_config.state_dict_type: SHARDED_STATE_DICT checkpoints are per-rank files; a checkpoint that a
             * crash cut short, or one an earlier run left (a DPO run does not resume), is replaced */
            const int sharded = !s->adapter && !strcmp(mattr_s(m, "train.state_dict_type", "FULL_STATE_DICT"), "SHARDED_STATE_DICT");
            const int ow = o->overwrite || (lead && !rt_ckpt_resumable(ck));
            int ck_bad = (sharded ? rt_session_save_sharded(s, ck, ow, d) : rt_session_save(s, ck, ow, d)) != 0;
            if (rt_session_any_rank(s, ck_bad)) {
                if (!ck_bad) ax_error(d, ck, "checkpoint not written: another rank failed");
                goto out;
            }
            if (rt_session_any_rank(s, lead && !pk.ref_free && ref_save(ck, nk, nek, phash, ref, eref, d) != 0) ||
                rt_ckpt_save_state(s, ck, step + 1, total, (double)ep + (double)(estep + 1) / (double)esp.nsteps, G,
                                   logbuf.data, d) != 0)
                goto out;
            if (lead) rt_ckpt_prune(out_dir, keep_n, step + 1, 0);
        }
    }
    if (log) fclose(log);
    log = NULL;
    if (rt_train_write_model(s, out_dir, d) != 0) goto out;
    if (!quiet) printf("axorun: done in %.1f s; model saved to %s/\n", rt_train_now() - t0, out_dir);
    rc = 0;
out:
    if (log) fclose(log);
    ax_buf_free(&logbuf);
    free(counts), free(first), free(keep), free(order), free(ref), free(rowbuf), free(stage), free(msum), free(mred);
    free(efirst), free(eref), free(pk.ob);
    rt_data_free(&ds), rt_data_free(&eds);
    return rc;
}
