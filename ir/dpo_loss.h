/* dpo_loss.h — the arithmetic of the `dpo_loss` op: TRL 1.9's DPOTrainer
 * losses (DPOTrainer.compute_loss, f_divergence_type reverse_kl) that depend
 * on one pair only, their partial derivatives, and a weighted sum of them
 * (DPOConfig.loss_type with loss_weights: sum_k w_k mean_pairs loss_k).
 *
 * One definition for every executor: plain C99 for the CPU executor, pasted
 * into the NVRTC source of the CUDA kernels (AXO_QFN becomes __device__
 * there, codegen/kernels/common.cuh), as ir/quant.h is.
 *
 * A pair's scores are its log-ratios against the reference model:
 *     c = logp_c - ref_c,  r = logp_r - ref_r,  delta = c - r
 * (axo's rows hold summed token losses s = -logp, so c = sref_c - s_c). With
 * nc, nr the completion token counts (clamped to >= 1, as TRL clamps them),
 * z = beta delta, softplus(x) = log(1 + e^x), eps = label_smoothing:
 *   sigmoid       softplus(-z)
 *   hinge         relu(1 - z)                       (d/dz 0 at the kink, as torch's relu)
 *   ipo           (c/nc - r/nr - 1/(2 beta))^2
 *   exo_pair      q (log q - log(1-eps)) + (1-q)(log(1-q) - log eps),  q = sigmoid(z)
 *   nca_pair      softplus(-beta c) + softplus(beta c)/2 + softplus(beta r)/2
 *   robust        ((1-eps) softplus(-z) - eps softplus(z)) / (1 - 2 eps)
 *   bco_pair      softplus(-beta c) + softplus(beta r)
 *   sppo_hard     (c - 1/(2 beta))^2 + (r + 1/(2 beta))^2
 *   apo_zero      1 - sigmoid(beta c) + sigmoid(beta r)
 *   apo_down      sigmoid(beta c) + 1 - sigmoid(z)
 *   discopop      softplus(-z)(1 - m) + e^-z m,  m = sigmoid(z / tau)
 *   sigmoid_norm  softplus(-beta (c/nc - r/nr))
 * and two of TRL's reference-free trainers, where the reference is absent
 * (sref = 0, so c and r are the policy's own log-probabilities) and a, b are
 * the mean token log-probabilities c/nc, r/nr:
 *   simpo         (1-eps) softplus(-zs) + eps softplus(zs),  zs = beta (a - b) - gamma
 *                 (CPOTrainer, loss_type simpo: gamma is simpo_gamma)
 *   orpo          beta softplus(-o),  o = (a - b) - (log(1 - e^a) - log(1 - e^b))
 *                 (ORPOTrainer's odds-ratio term, -beta logsigmoid(o))
 * (TRL's logsigmoid(x) = -softplus(-x).) Everything is in double; the
 * callers round a pair's loss and its rows' adjoints to f32 once. TRL's aot
 * and aot_unpaired (sorted over the batch) couple pairs and are not here;
 * its sft term (the chosen rows' token mean), like simpo's and orpo's NLL, is
 * linear in the rows' losses: per-row weights the lowering adds to the
 * adjoints (frontend/lower.c dpo_loss).
 */
#ifndef IR_DPO_LOSS_H
#define IR_DPO_LOSS_H

#ifndef __CUDACC_RTC__ /* NVRTC has no C library headers; its math functions are built in */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#endif
#ifndef AXO_QFN
#define AXO_QFN static inline
#endif

enum {
    AXO_DPO_SIGMOID,
    AXO_DPO_HINGE,
    AXO_DPO_IPO,
    AXO_DPO_EXO_PAIR,
    AXO_DPO_NCA_PAIR,
    AXO_DPO_ROBUST,
    AXO_DPO_BCO_PAIR,
    AXO_DPO_SPPO_HARD,
    AXO_DPO_APO_ZERO,
    AXO_DPO_APO_DOWN,
    AXO_DPO_DISCOPOP,
    AXO_DPO_SIGMOID_NORM,
    AXO_DPO_SIMPO,
    AXO_DPO_ORPO,
    AXO_DPO_NTYPES
};
#define AXO_DPO_MAXTERMS 4 /* loss types in one weighted sum (TRL's MPO mixes three) */

/* softplus(x) = log(1 + e^x) without overflow; sigmoid(x) likewise */
AXO_QFN double axo_softplus(double x) { return log1p(exp(-fabs(x))) + (x > 0 ? x : 0.0); }
AXO_QFN double axo_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
/* log(1 - e^x) for x < 0, TRL's log1mexp (its branch at -ln 2) */
AXO_QFN double axo_log1mexp(double x) { return x < -0.6931471805599453 ? log1p(-exp(x)) : log(-expm1(x)); }

/* One term: its loss, and *dc, *dr its partial derivatives in c and r. */
AXO_QFN double axo_dpo_term(int type, double c, double r, double nc, double nr, double beta, double eps, double tau,
                            double gamma, double *dc, double *dr) {
    const double z = beta * (c - r);
    double l = 0, dz = 0; /* most terms are functions of z: dc = beta dz, dr = -beta dz */
    *dc = *dr = 0;
    nc = nc < 1 ? 1 : nc;
    nr = nr < 1 ? 1 : nr;
    switch (type) {
    case AXO_DPO_SIGMOID:
        l = axo_softplus(-z), dz = -axo_sigmoid(-z);
        break;
    case AXO_DPO_HINGE:
        l = 1 - z > 0 ? 1 - z : 0.0, dz = 1 - z > 0 ? -1.0 : 0.0;
        break;
    case AXO_DPO_IPO: {
        const double a = c / nc - r / nr - 1 / (2 * beta);
        *dc = 2 * a / nc, *dr = -2 * a / nr;
        return a * a;
    }
    case AXO_DPO_EXO_PAIR: {
        const double q = axo_sigmoid(z), lq = -axo_softplus(-z), l1q = -axo_softplus(z); /* log q, log(1 - q) */
        const double lp = log1p(-eps), le = log(eps);
        l = q * (lq - lp) + (1 - q) * (l1q - le);
        dz = q * (1 - q) * ((lq - lp) - (l1q - le)); /* the +q(1-q) and -q(1-q) of d log q, d log(1-q) cancel */
        break;
    }
    case AXO_DPO_NCA_PAIR: {
        const double bc = beta * c, br = beta * r;
        *dc = beta * (-axo_sigmoid(-bc) + 0.5 * axo_sigmoid(bc)), *dr = beta * 0.5 * axo_sigmoid(br);
        return axo_softplus(-bc) + 0.5 * axo_softplus(bc) + 0.5 * axo_softplus(br);
    }
    case AXO_DPO_ROBUST:
        l = ((1 - eps) * axo_softplus(-z) - eps * axo_softplus(z)) / (1 - 2 * eps);
        dz = (-(1 - eps) * axo_sigmoid(-z) - eps * axo_sigmoid(z)) / (1 - 2 * eps);
        break;
    case AXO_DPO_BCO_PAIR: {
        const double bc = beta * c, br = beta * r;
        *dc = -beta * axo_sigmoid(-bc), *dr = beta * axo_sigmoid(br);
        return axo_softplus(-bc) + axo_softplus(br);
    }
    case AXO_DPO_SPPO_HARD: {
        const double a = c - 0.5 / beta, b = r + 0.5 / beta;
        *dc = 2 * a, *dr = 2 * b;
        return a * a + b * b;
    }
    case AXO_DPO_APO_ZERO: {
        const double sc = axo_sigmoid(beta * c), sr = axo_sigmoid(beta * r);
        *dc = -beta * sc * (1 - sc), *dr = beta * sr * (1 - sr);
        return 1 - sc + sr;
    }
    case AXO_DPO_APO_DOWN: {
        const double sc = axo_sigmoid(beta * c), sz = axo_sigmoid(z);
        *dc = beta * sc * (1 - sc) - beta * sz * (1 - sz), *dr = beta * sz * (1 - sz);
        return sc + 1 - sz;
    }
    case AXO_DPO_DISCOPOP: {
        const double m = axo_sigmoid(z / tau), dm = m * (1 - m) / tau, sp = axo_softplus(-z), e = exp(-z);
        l = sp * (1 - m) + e * m;
        dz = -axo_sigmoid(-z) * (1 - m) - sp * dm - e * m + e * dm;
        break;
    }
    case AXO_DPO_SIGMOID_NORM: {
        const double zn = beta * (c / nc - r / nr), g = -axo_sigmoid(-zn);
        *dc = beta * g / nc, *dr = -beta * g / nr;
        return axo_softplus(-zn);
    }
    case AXO_DPO_SIMPO: {
        const double zs = beta * (c / nc - r / nr) - gamma;
        const double g = -(1 - eps) * axo_sigmoid(-zs) + eps * axo_sigmoid(zs);
        *dc = beta * g / nc, *dr = -beta * g / nr;
        return (1 - eps) * axo_softplus(-zs) + eps * axo_softplus(zs);
    }
    case AXO_DPO_ORPO: {
        const double a = c / nc, b = r / nr, o = (a - b) - (axo_log1mexp(a) - axo_log1mexp(b));
        const double g = -beta * axo_sigmoid(-o); /* d loss / d o; d o / d a = 1 / (1 - e^a) */
        *dc = g / (-expm1(a)) / nc, *dr = -g / (-expm1(b)) / nr;
        return beta * axo_softplus(-o);
    }
    default: return 0;
    }
    *dc = beta * dz, *dr = -beta * dz;
    return l;
}

/* The pair's loss sum_k w_k loss_k and the adjoints of its two rows' summed
 * token losses s_c, s_r scaled by pscale (c = sref_c - s_c, so d/ds = -d/dc). */
AXO_QFN double axo_dpo_pair(const int *types, const double *weights, int nterms, double s_c, double s_r, double sref_c,
                            double sref_r, double nc, double nr, double beta, double eps, double tau, double gamma,
                            double pscale, double *coef_c, double *coef_r) {
    const double c = sref_c - s_c, r = sref_r - s_r;
    double l = 0, gc = 0, gr = 0;
    for (int k = 0; k < nterms; k++) {
        double dc, dr;
        l += weights[k] * axo_dpo_term(types[k], c, r, nc, nr, beta, eps, tau, gamma, &dc, &dr);
        gc += weights[k] * dc, gr += weights[k] * dr;
    }
    /* a pair the micro-batch does not hold (scale 0) gets no adjoint, whatever its terms give (orpo's log(1 - p) of a
     * padding row's p = 1 is -inf) */
    *coef_c = pscale == 0 ? 0.0 : -pscale * gc, *coef_r = pscale == 0 ? 0.0 : -pscale * gr;
    return l;
}

/* Which terms read the completion token counts. */
AXO_QFN int axo_dpo_needs_counts(int type) {
    return type == AXO_DPO_IPO || type == AXO_DPO_SIGMOID_NORM || type == AXO_DPO_SIMPO || type == AXO_DPO_ORPO;
}

#ifndef __CUDACC_RTC__
/* TRL's names of the types above, in their order; -1 for another name. */
static inline int axo_dpo_type_from_name(const char *s, size_t n) {
    static const char *const names[AXO_DPO_NTYPES] = {"sigmoid",  "hinge",     "ipo",      "exo_pair",
                                                      "nca_pair", "robust",    "bco_pair", "sppo_hard",
                                                      "apo_zero", "apo_down",  "discopop", "sigmoid_norm",
                                                      "simpo",    "orpo"};
    for (int i = 0; i < AXO_DPO_NTYPES; i++)
        if (strlen(names[i]) == n && !strncmp(s, names[i], n)) return i;
    return -1;
}

/* attr loss_type ("sigmoid", or "ipo,sigmoid", ...) and loss_weights ("1,0.5", NULL: all 1) into codes and
 * weights; the count, or -1 for an unknown name, too many terms or a bad weight list. */
static inline int axo_dpo_parse(const char *types, const char *weights, int *t, double *w) {
    int n = 0;
    for (const char *p = types; p && *p && n < AXO_DPO_MAXTERMS + 1;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == AXO_DPO_MAXTERMS || (t[n] = axo_dpo_type_from_name(p, len)) < 0) return -1;
        w[n++] = 1.0;
        p = e ? e + 1 : p + len;
    }
    if (!n) return -1;
    if (weights) {
        const char *p = weights;
        for (int k = 0; k < n; k++) {
            char *end;
            w[k] = strtod(p, &end);
            if (end == p || (k + 1 < n ? *end != ',' : *end != 0)) return -1;
            p = end + (k + 1 < n);
        }
    }
    return n;
}
#endif

#endif
