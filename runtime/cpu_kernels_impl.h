/* cpu_kernels_impl.h — the kernel bodies, written once over REAL and
 * included twice by cpu_kernels.c (REAL=float/SFX=_f32, REAL=double/
 * SFX=_f64, with CK_IS_F32, CK_EXP, CK_SQRT, CK_FMA set to match). No include
 * guard on purpose. Reductions accumulate in double in both instantiations;
 * elementwise arithmetic that torch performs in float32 is REAL here. */

#define FN(name) CK_CAT(name, SFX)

/* a.b with 8 interleaved REAL partial sums (SLP-vectorisable, fixed order),
 * combined in double in a fixed tree. */
static inline double FN(ck_dot_)(const REAL *a, const REAL *b, int64_t n) {
    REAL l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 8; t++) l[t] += a[i + t] * b[i + t];
    double s = (((double)l[0] + l[1]) + ((double)l[2] + l[3])) + (((double)l[4] + l[5]) + ((double)l[6] + l[7]));
    for (; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* ---- matmul ---------------------------------------------------------------- */
void FN(ck_matmul)(const REAL *A, const REAL *B, REAL *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                   int accumulate) {
#if CK_IS_F32
    sgemm(A, B, C, M, N, K, ta, tb, accumulate, 1);
#else
    /* Reference order: row i of C += a_ik * row k of op(B), k ascending —
     * the same per-element sequence as the packed float GEMM. */
    if (M <= 0 || N <= 0) return;
    REAL *bt = NULL;
    if (tb) { /* op(B) rows contiguous */
        bt = ck_xmalloc(sizeof(REAL) * (size_t)(K * N));
        for (int64_t j = 0; j < N; j++)
            for (int64_t k = 0; k < K; k++) bt[k * N + j] = B[j * K + k];
        B = bt;
    }
    for (int64_t i = 0; i < M; i++) {
        REAL *c = C + i * N;
        if (!accumulate) memset(c, 0, sizeof(REAL) * (size_t)N);
        for (int64_t k = 0; k < K; k++) {
            REAL a = ta ? A[k * M + i] : A[i * K + k];
            const REAL *b = B + k * N;
            for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
    free(bt);
#endif
}

/* ---- RMSNorm ------------------------------------------------------------------ */
/* r = 1/sqrt(mean(x^2) + eps) in REAL, as torch.rsqrt(var + eps) in float32. */
static inline REAL FN(ck_rms_rstd_)(const REAL *x, int64_t H, double eps) {
    double ss = 0;
    for (int64_t h = 0; h < H; h++) ss += (double)x[h] * (double)x[h];
    REAL var = (REAL)(ss / (double)H);
    return (REAL)1 / CK_SQRT(var + (REAL)eps);
}

void FN(ck_rmsnorm_fwd)(const REAL *x, const REAL *w, REAL *y, int64_t R, int64_t H, double eps, double offset) {
    const REAL off = (REAL)offset;
    for (int64_t r = 0; r < R; r++) {
        const REAL *xr = x + r * H;
        REAL *yr = y + r * H;
        REAL rs = FN(ck_rms_rstd_)(xr, H, eps);
        for (int64_t h = 0; h < H; h++) yr[h] = (off + w[h]) * (xr[h] * rs);
    }
}

void FN(ck_rmsnorm_bwd)(const REAL *x, const REAL *w, const REAL *dy, REAL *dx, REAL *dw, int64_t R, int64_t H,
                        double eps, double offset) {
    const REAL off = (REAL)offset;
    double *dwa = ck_xcalloc((size_t)H, sizeof(double));
    for (int64_t r = 0; r < R; r++) {
        const REAL *xr = x + r * H, *dyr = dy + r * H;
        REAL *dxr = dx + r * H;
        double rs = (double)FN(ck_rms_rstd_)(xr, H, eps);
        double dot = 0;
        for (int64_t h = 0; h < H; h++) {
            double xh = (double)xr[h] * rs;
            dot += (double)dyr[h] * (double)(off + w[h]) * xh;
            dwa[h] += (double)dyr[h] * xh;
        }
        dot /= (double)H;
        for (int64_t h = 0; h < H; h++) {
            double xh = (double)xr[h] * rs;
            dxr[h] = (REAL)(rs * ((double)dyr[h] * (double)(off + w[h]) - xh * dot));
        }
    }
    for (int64_t h = 0; h < H; h++) dw[h] += (REAL)dwa[h];
    free(dwa);
}

/* ---- RoPE ------------------------------------------------------------------------ */
void FN(ck_rope_fwd)(const REAL *x, const int32_t *pos, const float *inv_freq, REAL *y, int64_t B, int64_t S,
                     int64_t nh, int64_t hd, int64_t nrot, float mscale, int inverse, double qbeta, int64_t qmax,
                     int interleave) {
    REAL *cs = ck_xmalloc(sizeof(REAL) * (size_t)(2 * nrot + 1));
    REAL *sn = cs + nrot;
    for (int64_t bs = 0; bs < B * S; bs++) {
        float p = (float)pos[bs];
        /* Ministral 3's query scale (ck_rope_qscale), on the rotated output (forward) or the incoming gradient */
        const REAL f = (REAL)ck_rope_qscale(pos[bs], qbeta, qmax);
        const int fwd_scale = f != (REAL)1 && !inverse, bwd_scale = f != (REAL)1 && inverse;
        for (int64_t i = 0; i < nrot; i++) {
            float ang = inv_freq[i] * p; /* HF: (inv_freq @ pos) in float32 */
            REAL c = (REAL)cos((double)ang) * (REAL)mscale, s = (REAL)sin((double)ang) * (REAL)mscale;
            cs[i] = c;
            sn[i] = inverse ? -s : s;
        }
        for (int64_t h = 0; h < nh; h++) {
            const REAL *xr = x + (bs * nh + h) * hd;
            REAL *yr = y + (bs * nh + h) * hd;
            for (int64_t i = 0; i < nrot; i++) {
                /* the pair rotated by frequency i: (i, i + nrot), or GLM's interleaved (2i, 2i + 1) */
                const int64_t i1 = interleave ? 2 * i : i, i2 = interleave ? 2 * i + 1 : i + nrot;
                REAL x1 = xr[i1], x2 = xr[i2];
                if (bwd_scale) x1 *= f, x2 *= f;
                yr[i1] = x1 * cs[i] - x2 * sn[i];
                yr[i2] = x2 * cs[i] + x1 * sn[i];
                if (fwd_scale) yr[i1] *= f, yr[i2] *= f;
            }
            if (yr != xr || f != (REAL)1)
                for (int64_t i = 2 * nrot; i < hd; i++) yr[i] = xr[i] * f;
        }
    }
    free(cs);
}

/* ---- attention ------------------------------------------------------------------- */
#ifndef CK_ATT_BLOCK
#define CK_ATT_BLOCK 64
#endif

/* ---- ring attention blocks (sequence parallelism) ------------------------------ */
/* seg NULL: one segment; idx NULL: index = position (then Sq == Sk and a
 * causal query i sees keys < i + 1 only, which bounds the key loops). */
static inline int FN(ck_blk_ok_)(const int32_t *segq, const int32_t *segk, const int32_t *idxq, const int32_t *idxk,
                                 int64_t iq, int64_t jk, int64_t i, int64_t j, int causal, int64_t window) {
    if (segq && segq[iq] != segk[jk]) return 0;
    if (!causal) return 1;
    const int64_t d = idxq ? (int64_t)idxq[iq] - idxk[jk] : i - j; /* how far back key j lies */
    return d >= 0 && (window <= 0 || d < window);
}

/* The whole-row case (one seg for queries and keys, idx = position) on a row whose sequence ids never decrease (the
 * runtime's packed rows; checked here): keys before a query's sequence are all masked, so the key loops start at
 * the sequence's first token. 0 where that does not hold. */
#ifndef CK_SEG_RUNS_
#define CK_SEG_RUNS_
static inline int ck_seg_sorted_(const int32_t *segq, const int32_t *segk, const int32_t *idxq, int64_t b, int64_t S) {
    if (!segq || segq != segk || idxq) return 0;
    for (int64_t i = 1; i < S; i++)
        if (segq[b * S + i] < segq[b * S + i - 1]) return 0;
    return 1;
}
#endif

void FN(ck_attention_blk_fwd)(const REAL *q, const REAL *k, const REAL *v, const int32_t *segq, const int32_t *segk,
                              const int32_t *idxq, const int32_t *idxk, REAL *out, REAL *lse, int64_t B, int64_t Sq,
                              int64_t Sk, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal,
                              int64_t window, double softcap) {
    int64_t grp = nh / nkv;
    double *acc = ck_xmalloc(sizeof(double) * (size_t)(hd + 1));
    double sc[CK_ATT_BLOCK];
    for (int64_t b = 0; b < B; b++) {
        const int runs = ck_seg_sorted_(segq, segk, idxq, b, Sq);
        for (int64_t h = 0; h < nh; h++) {
            int64_t kvh = h / grp, run0 = 0; /* the first token of query i's sequence, where runs */
            for (int64_t i = 0; i < Sq; i++) {
                const REAL *qi = q + ((b * Sq + i) * nh + h) * hd;
                int64_t jend = causal && !idxq ? i + 1 : Sk;
                if (runs && i > 0 && segq[b * Sq + i] != segq[b * Sq + i - 1]) run0 = i;
                /* the first key query i can see: its sequence's start, or the window's */
                int64_t jbeg = runs ? run0 : 0;
                if (causal && window > 0 && !idxq && i - window + 1 > jbeg) jbeg = i - window + 1;
                double m = -INFINITY, l = 0;
                for (int64_t d = 0; d < hd; d++) acc[d] = 0;
                /* blocks stay aligned to CK_ATT_BLOCK: a skipped block held masked keys only, and the ones left sum
                 * in the same order, so the result is the same to the bit */
                for (int64_t j0 = jbeg / CK_ATT_BLOCK * CK_ATT_BLOCK; j0 < jend; j0 += CK_ATT_BLOCK) {
                    int64_t j1 = j0 + CK_ATT_BLOCK < jend ? j0 + CK_ATT_BLOCK : jend;
                    double bm = -INFINITY;
                    for (int64_t j = j0; j < j1; j++) {
                        if (!FN(ck_blk_ok_)(segq, segk, idxq, idxk, b * Sq + i, b * Sk + j, i, j, causal, window)) {
                            sc[j - j0] = -INFINITY;
                            continue;
                        }
                        double s = scale * FN(ck_dot_)(qi, k + ((b * Sk + j) * nkv + kvh) * hd, hd);
                        if (softcap > 0) s = softcap * tanh(s / softcap);
                        sc[j - j0] = s;
                        if (s > bm) bm = s;
                    }
                    if (bm == -INFINITY) continue;
                    double mn = bm > m ? bm : m;
                    if (mn != m) {
                        double alpha = exp(m - mn);
                        l *= alpha;
                        for (int64_t d = 0; d < hd; d++) acc[d] *= alpha;
                        m = mn;
                    }
                    for (int64_t j = j0; j < j1; j++) {
                        if (sc[j - j0] == -INFINITY) continue;
                        double p = exp(sc[j - j0] - m);
                        const REAL *vj = v + ((b * Sk + j) * nkv + kvh) * hd;
                        l += p;
                        for (int64_t d = 0; d < hd; d++) acc[d] += p * (double)vj[d];
                    }
                }
                REAL *oi = out + ((b * Sq + i) * nh + h) * hd;
                double inv = l > 0 ? 1.0 / l : 0.0;
                for (int64_t d = 0; d < hd; d++) oi[d] = (REAL)(acc[d] * inv);
                lse[(b * nh + h) * Sq + i] = (REAL)(l > 0 ? m + log(l) : -INFINITY);
            }
        }
    }
    free(acc);
}

void FN(ck_attention_blk_bwd)(const REAL *q, const REAL *k, const REAL *v, const int32_t *segq, const int32_t *segk,
                              const int32_t *idxq, const int32_t *idxk, const REAL *out, const REAL *lse,
                              const REAL *dout, REAL *dq, REAL *dk, REAL *dv, int64_t B, int64_t Sq, int64_t Sk,
                              int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window,
                              double softcap) {
    int64_t grp = nh / nkv;
    double *dka = ck_xmalloc(sizeof(double) * (size_t)(Sk * hd + 1));
    double *dva = ck_xmalloc(sizeof(double) * (size_t)(Sk * hd + 1));
    double *dqa = ck_xmalloc(sizeof(double) * (size_t)(hd + 1));
    for (int64_t b = 0; b < B; b++) {
        const int runs = ck_seg_sorted_(segq, segk, idxq, b, Sq);
        for (int64_t kvh = 0; kvh < nkv; kvh++) {
            for (int64_t t = 0; t < Sk * hd; t++) dka[t] = dva[t] = 0;
            for (int64_t h = kvh * grp; h < (kvh + 1) * grp; h++) {
                int64_t run0 = 0; /* as in the forward: keys before query i's sequence are masked */
                for (int64_t i = 0; i < Sq; i++) {
                    if (runs && i > 0 && segq[b * Sq + i] != segq[b * Sq + i - 1]) run0 = i;
                    int64_t qo = ((b * Sq + i) * nh + h) * hd;
                    const REAL *qi = q + qo, *oi = out + qo, *doi = dout + qo;
                    double D = FN(ck_dot_)(doi, oi, hd);
                    double L = (double)lse[(b * nh + h) * Sq + i];
                    for (int64_t d = 0; d < hd; d++) dqa[d] = 0;
                    int64_t jend = causal && !idxq ? i + 1 : Sk, jbeg = runs ? run0 : 0;
                    if (causal && window > 0 && !idxq && i - window + 1 > jbeg) jbeg = i - window + 1;
                    for (int64_t j = jbeg; j < jend; j++) {
                        if (!FN(ck_blk_ok_)(segq, segk, idxq, idxk, b * Sq + i, b * Sk + j, i, j, causal, window))
                            continue;
                        int64_t ko = ((b * Sk + j) * nkv + kvh) * hd;
                        const REAL *kj = k + ko, *vj = v + ko;
                        double s = scale * FN(ck_dot_)(qi, kj, hd), dcap = 1.0;
                        if (softcap > 0) { /* s' = c tanh(s / c): ds'/ds = 1 - tanh^2 */
                            const double th = tanh(s / softcap);
                            s = softcap * th, dcap = 1.0 - th * th;
                        }
                        double p = exp(s - L);
                        double dp = FN(ck_dot_)(doi, vj, hd);
                        double ds = scale * dcap * p * (dp - D);
                        double *dkj = dka + j * hd, *dvj = dva + j * hd;
                        for (int64_t d = 0; d < hd; d++) {
                            dvj[d] += p * (double)doi[d];
                            dkj[d] += ds * (double)qi[d];
                            dqa[d] += ds * (double)kj[d];
                        }
                    }
                    REAL *dqi = dq + qo;
                    for (int64_t d = 0; d < hd; d++) dqi[d] = (REAL)dqa[d];
                }
            }
            for (int64_t j = 0; j < Sk; j++) {
                int64_t ko = ((b * Sk + j) * nkv + kvh) * hd;
                for (int64_t d = 0; d < hd; d++) {
                    dk[ko + d] = (REAL)dka[j * hd + d];
                    dv[ko + d] = (REAL)dva[j * hd + d];
                }
            }
        }
    }
    free(dka);
    free(dva);
    free(dqa);
}

void FN(ck_attn_merge)(const REAL *o1, const REAL *l1, const REAL *o2, const REAL *l2, REAL *o, REAL *l, int64_t B,
                       int64_t S, int64_t nh, int64_t hd) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t i = 0; i < S; i++) {
                int64_t li = (b * nh + h) * S + i, oi = ((b * S + i) * nh + h) * hd;
                double a = (double)l1[li], c = (double)l2[li], mx = a > c ? a : c;
                if (mx == -INFINITY) { /* neither block saw a key */
                    for (int64_t d = 0; d < hd; d++) o[oi + d] = 0;
                    l[li] = (REAL)-INFINITY;
                    continue;
                }
                double w1 = exp(a - mx), w2 = exp(c - mx), sum = w1 + w2;
                for (int64_t d = 0; d < hd; d++) o[oi + d] = (REAL)((w1 * (double)o1[oi + d] + w2 * (double)o2[oi + d]) / sum);
                l[li] = (REAL)(mx + log(sum));
            }
}

/* The whole row is the block of every query against every key, with
 * token index = position (idx NULL). */
void FN(ck_attention_fwd)(const REAL *q, const REAL *k, const REAL *v, const int32_t *seg, REAL *out, REAL *lse,
                          int64_t B, int64_t S, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal,
                          int64_t window, double softcap) {
    FN(ck_attention_blk_fwd)(q, k, v, seg, seg, NULL, NULL, out, lse, B, S, S, nh, nkv, hd, scale, causal, window,
                             softcap);
}

void FN(ck_attention_bwd)(const REAL *q, const REAL *k, const REAL *v, const int32_t *seg, const REAL *out,
                          const REAL *lse, const REAL *dout, REAL *dq, REAL *dk, REAL *dv, int64_t B, int64_t S,
                          int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window,
                          double softcap) {
    FN(ck_attention_blk_bwd)(q, k, v, seg, seg, NULL, NULL, out, lse, dout, dq, dk, dv, B, S, S, nh, nkv, hd, scale,
                             causal, window, softcap);
}

/* ---- SwiGLU -------------------------------------------------------------------------- */
void FN(ck_swiglu_fwd)(const REAL *g, const REAL *u, REAL *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double x = (double)g[i];
        REAL s = (REAL)(x / (1.0 + exp(-x)));
        y[i] = s * u[i];
    }
}

void FN(ck_swiglu_bwd)(const REAL *g, const REAL *u, const REAL *dy, REAL *dg, REAL *du, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double x = (double)g[i];
        double sig = 1.0 / (1.0 + exp(-x));
        double silu = x * sig;
        double d = (double)dy[i];
        REAL dgi = (REAL)(d * (double)u[i] * sig * (1.0 + x * (1.0 - sig)));
        REAL dui = (REAL)(d * silu);
        dg[i] = dgi; /* computed before writing: dg/du may alias dy */
        du[i] = dui;
    }
}

/* ---- mixture of experts ------------------------------------------------------------ */
void FN(ck_moe_route)(const REAL *logits, REAL *w, int32_t *idx, int64_t N, int64_t E, int64_t k, int norm) {
    double *pall = ck_xmalloc(sizeof(double) * (size_t)(N * E + 1)); /* each token's probabilities, once */
#pragma omp parallel for schedule(static) if (N * E > 65536)
    for (int64_t t = 0; t < N; t++) {
        const REAL *l = logits + t * E;
        double mx = -INFINITY, sum = 0, *p = pall + t * E;
        for (int64_t e = 0; e < E; e++) mx = fmax(mx, (double)l[e]);
        for (int64_t e = 0; e < E; e++) sum += exp((double)l[e] - mx);
        for (int64_t e = 0; e < E; e++) p[e] = (double)(REAL)(exp((double)l[e] - mx) / sum);
        REAL *wt = w + t * k;
        int32_t *it = idx + t * k;
        for (int64_t j = 0; j < k; j++) { /* the j-th largest probability, the lower expert first among equals */
            int32_t best = -1;
            double bp = -1;
            for (int64_t e = 0; e < E; e++) {
                int taken = 0;
                for (int64_t i = 0; i < j; i++) taken |= it[i] == (int32_t)e;
                const double pe = p[e];
                /* a NaN (a diverged run's logits) ranks first, as in torch.topk: every slot names an expert */
                if (!taken && (best < 0 || pe > bp || (isnan(pe) && !isnan(bp)))) bp = pe, best = (int32_t)e;
            }
            it[j] = best;
            wt[j] = (REAL)bp;
        }
        if (norm) {
            REAL s = 0;
            for (int64_t j = 0; j < k; j++) s += wt[j];
            for (int64_t j = 0; j < k; j++) wt[j] = wt[j] / s;
        }
    }
    free(pall);
}

void FN(ck_moe_route_bwd)(const REAL *logits, const int32_t *idx, const REAL *dw, REAL *dlogits, int64_t N, int64_t E,
                          int64_t k, int norm) {
#pragma omp parallel for schedule(static) if (N * E > 65536)
    for (int64_t t = 0; t < N; t++) {
        const REAL *l = logits + t * E;
        const int32_t *it = idx + t * k;
        const REAL *dwt = dw + t * k;
        REAL *dl = dlogits + t * E;
        double mx = -INFINITY, sum = 0;
        for (int64_t e = 0; e < E; e++) mx = fmax(mx, (double)l[e]);
        for (int64_t e = 0; e < E; e++) sum += exp((double)l[e] - mx);
        /* the top values v_j = p[idx_j]; with norm, w_j = v_j / s (s their sum): dv_j = (dw_j - sum_i dw_i w_i) / s */
        double s = 0, dot = 0;
        for (int64_t j = 0; j < k; j++) s += exp((double)l[it[j]] - mx) / sum;
        for (int64_t j = 0; j < k; j++) dot += (double)dwt[j] * (exp((double)l[it[j]] - mx) / sum / s);
        for (int64_t e = 0; e < E; e++) dl[e] = 0;
        double pdp = 0; /* sum_e p_e dp_e, dp nonzero at the chosen experts only */
        for (int64_t j = 0; j < k; j++) {
            const double dv = norm ? ((double)dwt[j] - dot) / s : (double)dwt[j];
            const double p = exp((double)l[it[j]] - mx) / sum;
            dl[it[j]] = (REAL)dv; /* dp for now */
            pdp += p * dv;
        }
        for (int64_t e = 0; e < E; e++) { /* softmax backward: dl = p (dp - sum p dp) */
            const double p = exp((double)l[e] - mx) / sum;
            dl[e] = (REAL)(p * ((double)dl[e] - pdp));
        }
    }
}

/* The (token, slot) pairs of expert e in token order: (*order)[(*off)[e] .. (*off)[e+1]) (both malloc'd, off[E + 1],
 * order[N k]); returns the largest expert's pair count. */
static int64_t FN(moe_group)(const int32_t *idx, int64_t N, int64_t E, int64_t k, int64_t **offp, int64_t **orderp) {
    int64_t *off = ck_xmalloc(sizeof(int64_t) * (size_t)(E + 1)), *order = ck_xmalloc(sizeof(int64_t) * (size_t)(N * k + 1));
    for (int64_t e = 0; e <= E; e++) off[e] = 0;
    for (int64_t i = 0; i < N * k; i++) off[idx[i] + 1]++;
    for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
    int64_t *fill = ck_xmalloc(sizeof(int64_t) * (size_t)(E + 1));
    memcpy(fill, off, sizeof(int64_t) * (size_t)(E + 1));
    for (int64_t i = 0; i < N * k; i++) order[fill[idx[i]]++] = i;
    free(fill);
    int64_t most = 0;
    for (int64_t e = 0; e < E; e++) most = off[e + 1] - off[e] > most ? off[e + 1] - off[e] : most;
    *offp = off, *orderp = order;
    return most;
}

void FN(ck_moe_ffn_fwd)(const REAL *x, const int32_t *idx, const REAL *w, const REAL *wgu, const REAL *wd, REAL *y,
                        REAL *gu, int64_t N, int64_t H, int64_t I, int64_t E, int64_t k) {
    int64_t *off, *order;
    const int64_t most = FN(moe_group)(idx, N, E, k, &off, &order);
    REAL *xe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *ge = ck_xmalloc(sizeof(REAL) * (size_t)(most * 2 * I + 1));
    REAL *ae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1)), *oe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    for (int64_t i = 0; i < N * H; i++) y[i] = 0;
    for (int64_t e = 0; e < E; e++) { /* experts in ascending order: each token's sum in the order transformers adds */
        const int64_t n = off[e + 1] - off[e], *rows = order + off[e];
        if (!n) continue;
        for (int64_t r = 0; r < n; r++) memcpy(xe + r * H, x + (rows[r] / k) * H, sizeof(REAL) * (size_t)H);
        FN(ck_matmul)(xe, wgu + e * 2 * I * H, ge, n, 2 * I, H, 0, 1, 0);
        for (int64_t r = 0; r < n; r++) {
            memcpy(gu + rows[r] * 2 * I, ge + r * 2 * I, sizeof(REAL) * (size_t)(2 * I));
            FN(ck_swiglu_fwd)(ge + r * 2 * I, ge + r * 2 * I + I, ae + r * I, I);
        }
        FN(ck_matmul)(ae, wd + e * H * I, oe, n, H, I, 0, 1, 0);
        for (int64_t r = 0; r < n; r++) {
            const REAL wr = w[rows[r]];
            REAL *yt = y + (rows[r] / k) * H;
            for (int64_t h = 0; h < H; h++) yt[h] += oe[r * H + h] * wr;
        }
    }
    free(off), free(order), free(xe), free(ge), free(ae), free(oe);
}

void FN(ck_moe_ffn_bwd)(const REAL *x, const int32_t *idx, const REAL *w, const REAL *wgu, const REAL *wd, const REAL *gu,
                        const REAL *dy, REAL *dx, REAL *dw, REAL *dwgu, REAL *dwd, int64_t N, int64_t H, int64_t I,
                        int64_t E, int64_t k) {
    int64_t *off, *order;
    const int64_t most = FN(moe_group)(idx, N, E, k, &off, &order);
    REAL *xe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *ge = ck_xmalloc(sizeof(REAL) * (size_t)(most * 2 * I + 1));
    REAL *ae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1)), *oe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    REAL *doe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *dae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1));
    REAL *dge = ck_xmalloc(sizeof(REAL) * (size_t)(most * 2 * I + 1)), *dxe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    for (int64_t i = 0; i < N * H; i++) dx[i] = 0;
    for (int64_t i = 0; i < E * 2 * I * H; i++) dwgu[i] = 0;
    for (int64_t i = 0; i < E * H * I; i++) dwd[i] = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t n = off[e + 1] - off[e], *rows = order + off[e];
        if (!n) continue;
        for (int64_t r = 0; r < n; r++) {
            const int64_t t = rows[r] / k;
            memcpy(xe + r * H, x + t * H, sizeof(REAL) * (size_t)H);
            memcpy(ge + r * 2 * I, gu + rows[r] * 2 * I, sizeof(REAL) * (size_t)(2 * I));
            FN(ck_swiglu_fwd)(ge + r * 2 * I, ge + r * 2 * I + I, ae + r * I, I);
            const REAL wr = w[rows[r]];
            for (int64_t h = 0; h < H; h++) doe[r * H + h] = dy[t * H + h] * wr; /* d(o w)/do */
        }
        FN(ck_matmul)(ae, wd + e * H * I, oe, n, H, I, 0, 1, 0); /* o again, for dw */
        for (int64_t r = 0; r < n; r++) {
            const REAL *dyt = dy + (rows[r] / k) * H;
            double s = 0;
            for (int64_t h = 0; h < H; h++) s += (double)dyt[h] * (double)oe[r * H + h];
            dw[rows[r]] = (REAL)s;
        }
        FN(ck_matmul)(doe, ae, dwd + e * H * I, H, I, n, 1, 0, 0);   /* dWd[e] = do^T a */
        FN(ck_matmul)(doe, wd + e * H * I, dae, n, I, H, 0, 0, 0);   /* da = do Wd[e] */
        for (int64_t r = 0; r < n; r++)
            FN(ck_swiglu_bwd)(ge + r * 2 * I, ge + r * 2 * I + I, dae + r * I, dge + r * 2 * I, dge + r * 2 * I + I, I);
        FN(ck_matmul)(dge, xe, dwgu + e * 2 * I * H, 2 * I, H, n, 1, 0, 0); /* dWgu[e] = dgu^T x */
        FN(ck_matmul)(dge, wgu + e * 2 * I * H, dxe, n, H, 2 * I, 0, 0, 0); /* dx rows = dgu Wgu[e] */
        for (int64_t r = 0; r < n; r++) {
            REAL *dxt = dx + (rows[r] / k) * H;
            for (int64_t h = 0; h < H; h++) dxt[h] += dxe[r * H + h];
        }
    }
    free(off), free(order), free(xe), free(ge), free(ae), free(oe), free(doe), free(dae), free(dge), free(dxe);
}

/* ---- gpt-oss's experts ------------------------------------------------------------------- */
void FN(ck_oss_act)(const REAL *gu, REAL *a, int64_t I, double alpha, double limit) {
    for (int64_t i = 0; i < I; i++) {
        const double g = fmin((double)gu[2 * i], limit), u = fmax(fmin((double)gu[2 * i + 1], limit), -limit);
        a[i] = (REAL)((u + 1) * (g / (1 + exp(-alpha * g))));
    }
}

void FN(ck_oss_act_bwd)(const REAL *gu, const REAL *da, REAL *dgu, int64_t I, double alpha, double limit) {
    for (int64_t i = 0; i < I; i++) {
        const double g0 = (double)gu[2 * i], u0 = (double)gu[2 * i + 1], d = (double)da[i];
        const double g = fmin(g0, limit), u = fmax(fmin(u0, limit), -limit);
        const double sg = 1 / (1 + exp(-alpha * g));
        dgu[2 * i] = (REAL)(g0 <= limit ? d * (u + 1) * (sg + alpha * g * sg * (1 - sg)) : 0);
        dgu[2 * i + 1] = (REAL)(u0 >= -limit && u0 <= limit ? d * g * sg : 0);
    }
}

void FN(ck_moe_oss_fwd)(const REAL *x, const int32_t *idx, const REAL *w, const REAL *wgu, const REAL *bgu, const REAL *wd,
                        const REAL *bd, REAL *y, REAL *gu, int64_t N, int64_t H, int64_t I, int64_t E, int64_t k,
                        double alpha, double limit) {
    int64_t *off, *order;
    const int64_t most = FN(moe_group)(idx, N, E, k, &off, &order);
    REAL *xe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *ge = ck_xmalloc(sizeof(REAL) * (size_t)(most * 2 * I + 1));
    REAL *ae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1)), *oe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    for (int64_t i = 0; i < N * H; i++) y[i] = 0;
    for (int64_t e = 0; e < E; e++) { /* experts in ascending order, as transformers' loop */
        const int64_t n = off[e + 1] - off[e], *rows = order + off[e];
        if (!n) continue;
        for (int64_t r = 0; r < n; r++) memcpy(xe + r * H, x + (rows[r] / k) * H, sizeof(REAL) * (size_t)H);
        FN(ck_matmul)(xe, wgu + e * H * 2 * I, ge, n, 2 * I, H, 0, 0, 0);
        for (int64_t r = 0; r < n; r++) {
            REAL *g = ge + r * 2 * I;
            for (int64_t c = 0; c < 2 * I; c++) g[c] += bgu[e * 2 * I + c];
            memcpy(gu + rows[r] * 2 * I, g, sizeof(REAL) * (size_t)(2 * I));
            FN(ck_oss_act)(g, ae + r * I, I, alpha, limit);
        }
        FN(ck_matmul)(ae, wd + e * I * H, oe, n, H, I, 0, 0, 0);
        for (int64_t r = 0; r < n; r++) {
            const REAL wr = w[rows[r]];
            REAL *yt = y + (rows[r] / k) * H;
            for (int64_t h = 0; h < H; h++) yt[h] += (oe[r * H + h] + bd[e * H + h]) * wr;
        }
    }
    free(off), free(order), free(xe), free(ge), free(ae), free(oe);
}

void FN(ck_moe_oss_bwd)(const REAL *x, const int32_t *idx, const REAL *w, const REAL *wgu, const REAL *bgu, const REAL *wd,
                        const REAL *bd, const REAL *gu, const REAL *dy, REAL *dx, REAL *dw, REAL *dwgu, REAL *dbgu,
                        REAL *dwd, REAL *dbd, int64_t N, int64_t H, int64_t I, int64_t E, int64_t k, double alpha,
                        double limit) {
    (void)bgu; /* gu holds it */
    int64_t *off, *order;
    const int64_t most = FN(moe_group)(idx, N, E, k, &off, &order);
    REAL *xe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *ae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1));
    REAL *oe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1)), *doe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    REAL *dae = ck_xmalloc(sizeof(REAL) * (size_t)(most * I + 1)), *dge = ck_xmalloc(sizeof(REAL) * (size_t)(most * 2 * I + 1));
    REAL *dxe = ck_xmalloc(sizeof(REAL) * (size_t)(most * H + 1));
    for (int64_t i = 0; i < N * H; i++) dx[i] = 0;
    for (int64_t i = 0; i < E * 2 * I * H; i++) dwgu[i] = 0;
    for (int64_t i = 0; i < E * 2 * I; i++) dbgu[i] = 0;
    for (int64_t i = 0; i < E * H * I; i++) dwd[i] = 0;
    for (int64_t i = 0; i < E * H; i++) dbd[i] = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t n = off[e + 1] - off[e], *rows = order + off[e];
        if (!n) continue;
        for (int64_t r = 0; r < n; r++) {
            const int64_t t = rows[r] / k;
            memcpy(xe + r * H, x + t * H, sizeof(REAL) * (size_t)H);
            FN(ck_oss_act)(gu + rows[r] * 2 * I, ae + r * I, I, alpha, limit);
            const REAL wr = w[rows[r]];
            for (int64_t h = 0; h < H; h++) doe[r * H + h] = dy[t * H + h] * wr; /* d(o w)/do */
        }
        FN(ck_matmul)(ae, wd + e * I * H, oe, n, H, I, 0, 0, 0); /* o again (without its bias), for dw */
        for (int64_t r = 0; r < n; r++) {
            const REAL *dyt = dy + (rows[r] / k) * H;
            double s = 0;
            for (int64_t h = 0; h < H; h++) s += (double)dyt[h] * (double)(oe[r * H + h] + bd[e * H + h]);
            dw[rows[r]] = (REAL)s;
        }
        for (int64_t h = 0; h < H; h++) { /* dbd[e] = the column sums of do, pairs in token order */
            double s = 0;
            for (int64_t r = 0; r < n; r++) s += (double)doe[r * H + h];
            dbd[e * H + h] = (REAL)s;
        }
        FN(ck_matmul)(ae, doe, dwd + e * I * H, I, H, n, 1, 0, 0);  /* dWd[e] = a^T do */
        FN(ck_matmul)(doe, wd + e * I * H, dae, n, I, H, 0, 1, 0);  /* da = do Wd[e]^T */
        for (int64_t r = 0; r < n; r++) FN(ck_oss_act_bwd)(gu + rows[r] * 2 * I, dae + r * I, dge + r * 2 * I, I, alpha, limit);
        for (int64_t c = 0; c < 2 * I; c++) {
            double s = 0;
            for (int64_t r = 0; r < n; r++) s += (double)dge[r * 2 * I + c];
            dbgu[e * 2 * I + c] = (REAL)s;
        }
        FN(ck_matmul)(xe, dge, dwgu + e * H * 2 * I, H, 2 * I, n, 1, 0, 0);  /* dWgu[e] = x^T dgu */
        FN(ck_matmul)(dge, wgu + e * H * 2 * I, dxe, n, H, 2 * I, 0, 1, 0); /* dx rows = dgu Wgu[e]^T */
        for (int64_t r = 0; r < n; r++) {
            REAL *dxt = dx + (rows[r] / k) * H;
            for (int64_t h = 0; h < H; h++) dxt[h] += dxe[r * H + h];
        }
    }
    free(off), free(order), free(xe), free(ae), free(oe), free(doe), free(dae), free(dge), free(dxe);
}

/* ---- attention sinks -------------------------------------------------------------------- */
void FN(ck_attn_sink_fwd)(REAL *out, REAL *lse, const REAL *sinks, int64_t B, int64_t S, int64_t nh, int64_t hd) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t i = 0; i < S; i++) {
                REAL *l = lse + (b * nh + h) * S + i;
                const double L = (double)*l, s = (double)sinks[h], mx = fmax(L, s);
                const double Ln = mx + log(exp(L - mx) + exp(s - mx)), f = exp(L - Ln);
                REAL *o = out + ((b * S + i) * nh + h) * hd;
                for (int64_t d = 0; d < hd; d++) o[d] = (REAL)((double)o[d] * f);
                *l = (REAL)Ln;
            }
}

void FN(ck_attn_sink_bwd)(const REAL *sinks, const REAL *out, const REAL *lse, const REAL *dout, REAL *dsinks, int64_t B,
                          int64_t S, int64_t nh, int64_t hd) {
    for (int64_t h = 0; h < nh; h++) {
        double acc = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < S; i++) {
                const REAL *o = out + ((b * S + i) * nh + h) * hd, *g = dout + ((b * S + i) * nh + h) * hd;
                double D = 0;
                for (int64_t d = 0; d < hd; d++) D += (double)g[d] * (double)o[d];
                acc -= exp((double)sinks[h] - (double)lse[(b * nh + h) * S + i]) * D;
            }
        dsinks[h] = (REAL)acc;
    }
}

/* ---- the router's load-balancing loss ------------------------------------------------------ */
void FN(ck_moe_lb_stats)(const REAL *logits, const int32_t *idx, const REAL *mask, REAL *out, int64_t N, int64_t E,
                         int64_t k) {
    double *acc = ck_xmalloc(sizeof(double) * (size_t)(2 * E + 1));
    for (int64_t i = 0; i < 2 * E + 1; i++) acc[i] = 0;
    for (int64_t t = 0; t < N; t++) {
        const REAL *l = logits + t * E;
        const double w = (double)mask[t];
        double mx = -INFINITY, z = 0;
        for (int64_t e = 0; e < E; e++) mx = fmax(mx, (double)l[e]);
        for (int64_t e = 0; e < E; e++) z += exp((double)l[e] - mx);
        for (int64_t e = 0; e < E; e++) acc[E + e] += w * (double)(REAL)(exp((double)l[e] - mx) / z);
        for (int64_t j = 0; j < k; j++) {
            const int32_t e = idx[t * k + j];
            if (e >= 0 && e < E) acc[e] += w;
        }
        acc[2 * E] += w;
    }
    for (int64_t i = 0; i < 2 * E + 1; i++) out[i] = (REAL)acc[i];
    free(acc);
}

void FN(ck_moe_lb_stats_bwd)(const REAL *logits, const REAL *mask, const REAL *dstats, REAL *dlogits, int64_t N,
                             int64_t E) {
    const REAL *g = dstats + E;
    double *p = ck_xmalloc(sizeof(double) * (size_t)(E + 1));
    for (int64_t t = 0; t < N; t++) {
        const REAL *l = logits + t * E;
        double mx = -INFINITY, z = 0, s = 0;
        for (int64_t e = 0; e < E; e++) mx = fmax(mx, (double)l[e]);
        for (int64_t e = 0; e < E; e++) z += exp((double)l[e] - mx);
        for (int64_t e = 0; e < E; e++) p[e] = exp((double)l[e] - mx) / z, s += p[e] * (double)g[e];
        for (int64_t e = 0; e < E; e++) dlogits[t * E + e] = (REAL)((double)mask[t] * p[e] * ((double)g[e] - s));
    }
    free(p);
}

/* ---- ParamWrapper LoRA ---------------------------------------------------------------- */
void FN(ck_lora_delta)(const REAL *w, const REAL *a, const REAL *b, REAL *out, int64_t E, int64_t O, int64_t I,
                       int64_t r, double scale) {
    double *acc = ck_xmalloc(sizeof(double) * (size_t)(I + 1));
    for (int64_t e = 0; e < E; e++)
        for (int64_t o = 0; o < O; o++) {
            for (int64_t i = 0; i < I; i++) acc[i] = 0;
            for (int64_t j = 0; j < r; j++) {
                const double bj = (double)b[o * r * E + j * E + e];
                const REAL *aj = a + (e * r + j) * I;
                for (int64_t i = 0; i < I; i++) acc[i] += bj * (double)aj[i];
            }
            const REAL *wr = w + (e * O + o) * I;
            REAL *yr = out + (e * O + o) * I;
            for (int64_t i = 0; i < I; i++) yr[i] = (REAL)((double)wr[i] + scale * acc[i]);
        }
    free(acc);
}

void FN(ck_lora_delta_bwd)(const REAL *a, const REAL *b, const REAL *dw, REAL *da, REAL *db, int64_t E, int64_t O,
                           int64_t I, int64_t r, double scale) {
    double *acc = ck_xmalloc(sizeof(double) * (size_t)(r * I + 1));
    for (int64_t e = 0; e < E; e++) {
        for (int64_t i = 0; i < r * I; i++) acc[i] = 0;
        for (int64_t o = 0; o < O; o++) {
            const REAL *g = dw + (e * O + o) * I;
            for (int64_t j = 0; j < r; j++) {
                const double bj = (double)b[o * r * E + j * E + e];
                const REAL *aj = a + (e * r + j) * I;
                double *dj = acc + j * I, s = 0;
                for (int64_t i = 0; i < I; i++) {
                    dj[i] += bj * (double)g[i];
                    s += (double)g[i] * (double)aj[i];
                }
                db[o * r * E + j * E + e] = (REAL)(scale * s);
            }
        }
        for (int64_t i = 0; i < r * I; i++) da[e * r * I + i] = (REAL)(scale * acc[i]);
    }
    free(acc);
}

/* the transposed layout (gpt-oss's experts, w [E, In, Out]): out_e = w_e + scale (B_e A_e)^T, a [E*r, In], b [Out, r*E] */
void FN(ck_lora_delta_t)(const REAL *w, const REAL *a, const REAL *b, REAL *out, int64_t E, int64_t In, int64_t Out,
                         int64_t r, double scale) {
    for (int64_t e = 0; e < E; e++)
        for (int64_t p = 0; p < In; p++)
            for (int64_t q = 0; q < Out; q++) {
                double acc = 0;
                for (int64_t j = 0; j < r; j++) acc += (double)b[q * r * E + j * E + e] * (double)a[(e * r + j) * In + p];
                const int64_t at = (e * In + p) * Out + q;
                out[at] = (REAL)((double)w[at] + scale * acc);
            }
}

void FN(ck_lora_delta_t_bwd)(const REAL *a, const REAL *b, const REAL *dw, REAL *da, REAL *db, int64_t E, int64_t In,
                             int64_t Out, int64_t r, double scale) {
    for (int64_t e = 0; e < E; e++)
        for (int64_t j = 0; j < r; j++) {
            for (int64_t p = 0; p < In; p++) { /* da[e r + j, p] = scale sum_q dw_e[p, q] b[q, j E + e] */
                double s = 0;
                for (int64_t q = 0; q < Out; q++) s += (double)dw[(e * In + p) * Out + q] * (double)b[q * r * E + j * E + e];
                da[(e * r + j) * In + p] = (REAL)(scale * s);
            }
            for (int64_t q = 0; q < Out; q++) { /* db[q, j E + e] = scale sum_p dw_e[p, q] a[e r + j, p] */
                double s = 0;
                for (int64_t p = 0; p < In; p++) s += (double)dw[(e * In + p) * Out + q] * (double)a[(e * r + j) * In + p];
                db[q * r * E + j * E + e] = (REAL)(scale * s);
            }
        }
}

/* ---- GeGLU (tanh GELU) ----------------------------------------------------------------- */
#ifndef CK_GELU_K_
#define CK_GELU_K_ 0.7978845608028654 /* sqrt(2/pi) */
#define CK_GELU_C_ 0.044715
#endif
void FN(ck_geglu_fwd)(const REAL *g, const REAL *u, REAL *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double x = (double)g[i];
        REAL s = (REAL)(0.5 * x * (1.0 + tanh(CK_GELU_K_ * (x + CK_GELU_C_ * x * x * x))));
        y[i] = s * u[i];
    }
}

void FN(ck_geglu_bwd)(const REAL *g, const REAL *u, const REAL *dy, REAL *dg, REAL *du, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double x = (double)g[i], d = (double)dy[i];
        double t = tanh(CK_GELU_K_ * (x + CK_GELU_C_ * x * x * x));
        double s = 0.5 * x * (1.0 + t);
        double ds = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * CK_GELU_K_ * (1.0 + 3.0 * CK_GELU_C_ * x * x);
        REAL dgi = (REAL)(d * (double)u[i] * ds);
        REAL dui = (REAL)(d * s);
        dg[i] = dgi; /* computed before writing: dg/du may alias dy */
        du[i] = dui;
    }
}

/* ---- embedding ---------------------------------------------------------------------------- */
static int64_t FN(ck_check_ids_)(const int32_t *ids, int64_t T, int64_t V) {
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= V) return t;
    return -1;
}

int64_t FN(ck_embedding_fwd)(const REAL *table, const int32_t *ids, REAL *out, int64_t T, int64_t V, int64_t H) {
    int64_t bad = FN(ck_check_ids_)(ids, T, V);
    if (bad >= 0) return bad;
    for (int64_t t = 0; t < T; t++) memcpy(out + t * H, table + (int64_t)ids[t] * H, sizeof(REAL) * (size_t)H);
    return -1;
}

int64_t FN(ck_embedding_bwd)(const int32_t *ids, const REAL *dy, REAL *dtable, int64_t T, int64_t V, int64_t H) {
    int64_t bad = FN(ck_check_ids_)(ids, T, V);
    if (bad >= 0) return bad;
    for (int64_t t = 0; t < T; t++) {
        REAL *d = dtable + (int64_t)ids[t] * H;
        const REAL *s = dy + t * H;
        for (int64_t h = 0; h < H; h++) d[h] += s[h];
    }
    return -1;
}

/* ---- cross entropy ------------------------------------------------------------------------------ */
static int64_t FN(ck_check_targets_)(const int32_t *targets, int64_t T, int64_t V, int32_t ignore_index) {
    for (int64_t t = 0; t < T; t++)
        if (targets[t] != ignore_index && (targets[t] < 0 || targets[t] >= V)) return t;
    return -1;
}

/* One kept row: returns logsumexp(x) - x[tgt]. When d != NULL also writes
 * d = scale * (softmax(x) - onehot(tgt)); d may alias x. e_v = exp(x_v - max)
 * is evaluated in REAL (as torch's float32 log_softmax) and summed in double.
 * cap > 0 (Gemma 2's final_logit_softcapping): the row is first y = (x / cap).tanh() * cap in REAL, as
 * transformers computes it, into tmp[V] (which then stands for x), and d is the gradient of x: times 1 - (y/cap)^2. */
static double FN(ck_ce_row_)(const REAL *x, REAL *d, int64_t V, int32_t tgt, double scale, double cap, REAL *tmp) {
    if (cap > 0) {
        const REAL c = (REAL)cap;
        for (int64_t v = 0; v < V; v++) tmp[v] = (REAL)tanh((double)(x[v] / c)) * c;
        x = tmp;
    }
    REAL mx = x[0];
    for (int64_t c = 1; c < V; c++)
        if (x[c] > mx) mx = x[c];
    double xt = (double)x[tgt], sum = 0;
    if (d) {
        for (int64_t c = 0; c < V; c++) {
            REAL e = CK_EXP(x[c] - mx);
            d[c] = e;
            sum += (double)e;
        }
    } else {
        for (int64_t c = 0; c < V; c++) sum += (double)CK_EXP(x[c] - mx);
    }
    double loss = (double)mx + log(sum) - xt;
    if (d) {
        double k = scale / sum;
        double et = (double)d[tgt];
        for (int64_t c = 0; c < V; c++) d[c] = (REAL)((double)d[c] * k);
        d[tgt] = (REAL)((et / sum - 1.0) * scale);
        if (cap > 0)
            for (int64_t c = 0; c < V; c++) {
                const double t = (double)x[c] / cap;
                d[c] = (REAL)((double)d[c] * (1.0 - t * t));
            }
    }
    return loss;
}

int64_t FN(ck_cross_entropy_fwd)(const REAL *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double *loss_sum, int64_t *count) {
    int64_t bad = FN(ck_check_targets_)(targets, T, V, ignore_index);
    if (bad >= 0) return bad;
    double s = 0;
    int64_t n = 0;
    REAL *tmp = softcap > 0 ? ck_xmalloc(sizeof(REAL) * (size_t)(V + 1)) : NULL;
    for (int64_t t = 0; t < T; t++) {
        if (targets[t] == ignore_index) continue;
        s += FN(ck_ce_row_)(logits + t * V, NULL, V, targets[t], 0.0, softcap, tmp);
        n++;
    }
    free(tmp);
    *loss_sum = s;
    *count = n;
    return -1;
}

int64_t FN(ck_cross_entropy_bwd)(const REAL *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double scale, REAL *dlogits) {
    int64_t bad = FN(ck_check_targets_)(targets, T, V, ignore_index);
    if (bad >= 0) return bad;
    REAL *tmp = softcap > 0 ? ck_xmalloc(sizeof(REAL) * (size_t)(V + 1)) : NULL;
    for (int64_t t = 0; t < T; t++) {
        if (targets[t] == ignore_index) {
            memset(dlogits + t * V, 0, sizeof(REAL) * (size_t)V);
            continue;
        }
        (void)FN(ck_ce_row_)(logits + t * V, dlogits + t * V, V, targets[t], scale, softcap, tmp);
    }
    free(tmp);
    return -1;
}

int64_t FN(ck_linear_cross_entropy)(const REAL *hidden, const REAL *W, const int32_t *targets, int64_t T, int64_t H,
                                    int64_t V, int32_t ignore_index, double scale, int64_t chunk_rows, int bf16,
                                    double *loss_sum, int64_t *count, REAL *dhidden, REAL *dW) {
    return FN(ck_linear_cross_entropy_rows)(hidden, W, targets, T, H, V, ignore_index, &scale, 1, chunk_rows, bf16, NULL,
                                            1, 0.0, loss_sum, count, dhidden, dW);
}

int64_t FN(ck_linear_cross_entropy_rows)(const REAL *hidden, const REAL *W, const int32_t *targets, int64_t T,
                                         int64_t H, int64_t V, int32_t ignore_index, const double *scales, int64_t nscale,
                                         int64_t chunk_rows, int bf16, double *row_loss, int64_t nrows, double softcap,
                                         double *loss_sum, int64_t *count, REAL *dhidden, REAL *dW) {
    const int64_t per_scale = nscale > 0 ? T / nscale : T, per_row = nrows > 0 ? T / nrows : T;
    if (row_loss)
        for (int64_t r = 0; r < nrows; r++) row_loss[r] = 0;
    int64_t bad = FN(ck_check_targets_)(targets, T, V, ignore_index);
    if (bad >= 0) return bad;
    int grads = dhidden != NULL || dW != NULL;
    int64_t chunk = chunk_rows;
    if (chunk <= 0) chunk = ((int64_t)8 << 20) / (int64_t)sizeof(REAL) / (V > 0 ? V : 1);
    if (chunk < 1) chunk = 1;
    if (chunk > T) chunk = T;
    REAL *lg = ck_xmalloc(sizeof(REAL) * (size_t)(chunk * V + 1));
    REAL *tmp = softcap > 0 ? ck_xmalloc(sizeof(REAL) * (size_t)(V + 1)) : NULL;
    double s = 0;
    int64_t n = 0;
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        int64_t c = T - t0 < chunk ? T - t0 : chunk;
        const REAL *hc = hidden + t0 * H;
        FN(ck_matmul)(hc, W, lg, c, V, H, 0, 1, 0); /* logits_c = h_c W^T  [c,V] */
        for (int64_t r = 0; r < c; r++) {
            int32_t tg = targets[t0 + r];
            REAL *row = lg + r * V;
            if (tg == ignore_index) {
                if (grads) memset(row, 0, sizeof(REAL) * (size_t)V);
                continue;
            }
            double l = FN(ck_ce_row_)(row, grads ? row : NULL, V, tg, scales[(t0 + r) / per_scale], softcap, tmp);
            s += l;
            if (row_loss) row_loss[(t0 + r) / per_row] += l;
            n++;
        }
        /* bf16: the GPU's rounding points (f32 logits, bf16 GEMM operands,
         * dW accumulated in bf16 chunk by chunk) */
        if (bf16 && grads) FN(ck_round_bf16_inplace)(lg, c * V);
        if (dhidden) FN(ck_matmul)(lg, W, dhidden + t0 * H, c, H, V, 0, 0, 0); /* dh_c = dl_c W   [c,H] */
        if (dhidden && bf16) FN(ck_round_bf16_inplace)(dhidden + t0 * H, c * H);
        if (dW) FN(ck_matmul)(lg, hc, dW, V, H, c, 1, 0, 1); /* dW += dl_c^T h_c [V,H] */
        if (dW && bf16) FN(ck_round_bf16_inplace)(dW, V * H);
    }
    free(lg);
    free(tmp);
    *loss_sum = s;
    *count = n;
    return -1;
}

/* ---- DPO ------------------------------------------------------------------------------------------- */
void FN(ck_dpo_loss)(const REAL *s, const REAL *sref, const REAL *pscale, const REAL *counts, int64_t P, const int *types,
                     const double *weights, int nterms, double beta, double eps, double tau, double gamma, REAL *loss,
                     REAL *coef) {
    for (int64_t p = 0; p < P; p++) {
        double kc, kr;
        loss[p] = (REAL)axo_dpo_pair(types, weights, nterms, (double)s[p], (double)s[P + p], (double)sref[p],
                                     (double)sref[P + p], counts ? (double)counts[p] : 1.0,
                                     counts ? (double)counts[P + p] : 1.0, beta, eps, tau, gamma, (double)pscale[p], &kc,
                                     &kr);
        coef[p] = (REAL)kc;
        coef[P + p] = (REAL)kr;
    }
}

/* ---- AdamW ------------------------------------------------------------------------------------------ */
void FN(ck_adamw_step)(REAL *p, const REAL *g, REAL *m, REAL *v, int64_t n, double lr, double beta1, double beta2,
                       double eps, double weight_decay, int64_t step, double grad_scale) {
    /* Python-side scalars (double), rounded to REAL where torch passes them
     * to a float32 kernel. */
    REAL gs = (REAL)grad_scale;
    REAL decay = (REAL)(1.0 - lr * weight_decay);
    REAL w1 = (REAL)(1.0 - beta1), w1m1 = w1 - (REAL)1;
    int small = fabs((double)w1) < 0.5; /* torch's is_lerp_weight_small */
    REAL b2 = (REAL)beta2, w2 = (REAL)(1.0 - beta2);
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    REAL neg_step_size = (REAL)(-(lr / bc1));
    REAL bc2_sqrt = (REAL)pow(bc2, 0.5); /* python: bias_correction2**0.5 */
    REAL epsr = (REAL)eps;
    int64_t i0 = 0;
#if CK_IS_F32 /* the same arithmetic, 8 lanes at a time (cpu_kernels.c) */
    i0 = ck_adamw_simd_f32_(p, g, m, v, n, gs, decay, w1, w1m1, small, b2, w2, neg_step_size, bc2_sqrt, epsr);
#endif
    for (int64_t i = i0; i < n; i++) {
        REAL gi = g[i] * gs;
        REAL pi = p[i] * decay;
        REAL mi = m[i], vi = v[i];
        mi = small ? CK_FMA(w1, gi - mi, mi) : CK_FMA(w1m1, gi - mi, gi);
        vi = vi * b2;
        vi = CK_FMA(w2 * gi, gi, vi);
        REAL denom = CK_SQRT(vi) / bc2_sqrt + epsr;
        pi = pi + (neg_step_size * mi) / denom;
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

/* ---- reductions and elementwise helpers ----------------------------------------------------------------- */
double FN(ck_sumsq)(const REAL *x, int64_t n) {
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 8; t++) l[t] += (double)x[i + t] * (double)x[i + t];
    double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

void FN(ck_add)(const REAL *a, const REAL *b, REAL *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void FN(ck_mul)(const REAL *a, const REAL *b, REAL *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void FN(ck_scale)(const REAL *x, double alpha, REAL *y, int64_t n) {
    REAL a = (REAL)alpha;
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i];
}

void FN(ck_acc)(REAL *y, const REAL *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void FN(ck_round_bf16_inplace)(REAL *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (REAL)ax_round_bf16((float)x[i]);
}

/* ---- bias ---------------------------------------------------------------------------------------------------- */
void FN(ck_bias_add_fwd)(const REAL *x, const REAL *b, REAL *y, int64_t R, int64_t N) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < N; c++) y[r * N + c] = x[r * N + c] + b[c];
}

void FN(ck_bias_add_bwd)(const REAL *dy, REAL *db, int64_t R, int64_t N) {
    double *acc = ck_xcalloc((size_t)N, sizeof(double));
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < N; c++) acc[c] += (double)dy[r * N + c];
    for (int64_t c = 0; c < N; c++) db[c] += (REAL)acc[c];
    free(acc);
}

#undef FN
