// attention_any.cuh — attention forward and backward for any head_dim up to
// 256 (the tiny test models have 16; the fast kernels in attention_fwd.cuh
// and attention_bwd.cuh cover 64 and 128). Simple and exact rather than
// fast: one thread per output row, the reference's double accumulators.
//
// Math: exactly ck_attention_fwd_* / ck_attention_bwd_* (runtime/cpu_kernels.h):
// q[B,S,nh,hd], k,v[B,S,nkv,hd], seg[B,S] (int32, NULL = one segment);
// query head h reads kv head h / (nh/nkv); query i sees key j iff
// (!causal || 0 <= i - j < causal: common.cuh's window encoding) and
// seg[i] == seg[j]; s_ij = scale q_i.k_j (double), or with softcap > 0
// (Gemma 2; a double like scale) s_ij = softcap t_ij, t_ij = tanh(scale
// q_i.k_j / softcap), before the mask (softcap 0: none, the code and bits of
// before; common.cuh).
//   fwd: online softmax over keys in ascending order, running max m, sum l and
//        the output accumulator in double; out_i = acc / l (rounded to T),
//        lse_i = m + log(l) (fp32; -inf if no key is visible, which cannot
//        happen since a query sees itself).
//   bwd: D_i = dout_i.out_i; P_ij = exp(s_ij - lse_i); dP_ij = dout_i.v_j;
//        dS_ij = P_ij (dP_ij - D_i) (times 1 - t_ij^2 with a softcap: the
//        reference's scale (1 - t^2) P (dP - D)); dq_i = scale sum_j dS_ij k_j;
//        dk_j = scale sum_{h in group, i} dS_ij q_i; dv_j = sum P_ij dout_i,
//        dk/dv summed over the group's query heads in head order, then
//        queries ascending (the reference's order), all in double.
//
// Launch (all three): 1-D, block 128, grid ceil(rows / 128), no shared
// memory; fwd and dq: rows = B*nh*S (row r = ((b*nh + h)*S + i)); dkdv:
// rows = B*nkv*S (row r = ((b*nkv + g)*S + j)). hd <= AXO_ATT_ANY_MAXHD.
// Per-thread accumulators live in local memory (hd doubles each).
// Traffic: every row re-reads the K/V (or Q/dout) rows it needs: O(S^2 hd)
// per head; meant for small models and checks, not for speed. Packed rows
// (seg non-decreasing, common.cuh): each thread loops over its own segment
// only (fwd, dq: keys from the segment's first token, to the segment's end
// when not causal; dkdv: queries to the segment's end, from its start when
// not causal), found by a binary search of its seg row.

#define AXO_ATT_ANY_MAXHD 256

__device__ __forceinline__ bool att_any_ok(int i, int j, int causal, const int *segb) {
    return ax_att_near(i, j, causal) && (!segb || segb[i] == segb[j]);
}

// Packed rows (common.cuh: every seg row non-decreasing): token i's segment is
// [att_any_jbeg(i), att_any_jend(i)) (binary searches; [0, S) without seg or
// with AXO_ATT_SEG_SKIP 0). Keys / queries outside it are masked and were
// skipped by `continue` anyway: looping over that range alone gives the
// same bits.
__device__ __forceinline__ int att_any_jbeg(const int *segb, int i) {
    return AXO_ATT_SEG_SKIP && segb ? ax_seg_search(segb, 0, i, segb[i], false) : 0;
}
// A sliding window (common.cuh: causal < INT_MAX): query i's first key, key j's last query + 1.
__device__ __forceinline__ int att_any_wbeg(int i, int causal) { return causal && i >= causal ? i - causal + 1 : 0; }
__device__ __forceinline__ int att_any_wend(int j, int causal, int S) {
    return causal && causal <= S - j ? j + causal : S;
}
__device__ __forceinline__ int att_any_jend(const int *segb, int i, int S) {
    return AXO_ATT_SEG_SKIP && segb ? ax_seg_search(segb, i + 1, S, segb[i], true) : S;
}

template <typename T> __device__ __forceinline__ double att_any_dot(const T *a, const T *b, int hd) {
    double s = 0.0;
    for (int d = 0; d < hd; d++) s += (double)ax_ld(a + d) * (double)ax_ld(b + d);
    return s;
}

template <typename T, bool CAP>
__device__ __forceinline__ void att_any_fwd_impl(const T *q, const T *k, const T *v, const int *seg, T *out,
                                                 float *lse, i64 B, int S, int nh, int nkv, int hd, double scale,
                                                 int causal, double softcap, const void *sinks, int sbf) {
    if constexpr (CAP) AX_CAP_MARK();
    const i64 r = ax_tid();
    if (r >= B * nh * S) return;
    const int i = (int)(r % S), h = (int)((r / S) % nh);
    const i64 b = r / ((i64)S * nh);
    const int kvh = h / (nh / nkv);
    const int *segb = seg ? seg + b * S : (const int *)0;
    const T *qi = q + ((b * S + i) * nh + h) * hd;
    double acc[AXO_ATT_ANY_MAXHD];
    for (int d = 0; d < hd; d++) acc[d] = 0.0;
    double m = -(double)AXO_INF, l = 0.0;
    const int jbeg = max(att_any_jbeg(segb, i), att_any_wbeg(i, causal));
    const int jend = causal ? i + 1 : att_any_jend(segb, i, S);
    for (int j = jbeg; j < jend; j++) {
        if (!att_any_ok(i, j, causal, segb)) continue;
        const T *kj = k + ((b * S + j) * nkv + kvh) * hd, *vj = v + ((b * S + j) * nkv + kvh) * hd;
        double s = scale * att_any_dot(qi, kj, hd);
        if constexpr (CAP) s = ax_softcap(s, softcap);
        if (s > m) { // rescale what was accumulated under the old max (m = -inf: l = acc = 0)
            const double alpha = exp(m - s);
            l *= alpha;
            for (int d = 0; d < hd; d++) acc[d] *= alpha;
            m = s;
        }
        const double p = exp(s - m);
        l += p;
        for (int d = 0; d < hd; d++) acc[d] += p * (double)ax_ld(vj + d);
    }
    double inv = l > 0.0 ? 1.0 / l : 0.0, L = l > 0.0 ? m + log(l) : -(double)AXO_INF;
    if (sinks) { // gpt-oss's sink: one more logit of no value, folded in before the single rounding of out
        const double sk = ax_sink_ld(sinks, sbf, h), mn = fmax(m, sk), c = l > 0.0 ? exp(m - mn) : 0.0;
        const double lt = l * c + exp(sk - mn);
        inv = c / lt, L = mn + log(lt);
    }
    T *oi = out + ((b * S + i) * nh + h) * hd;
    for (int d = 0; d < hd; d++) ax_st(oi + d, (float)(acc[d] * inv));
    lse[(b * nh + h) * S + i] = (float)L;
    if constexpr (CAP) AX_CAP_MARK();
}

template <typename T, bool CAP>
__device__ __forceinline__ void att_any_dq_impl(const T *q, const T *k, const T *v, const int *seg, const T *out,
                                                const float *lse, const T *dout, T *dq, i64 B, int S, int nh, int nkv,
                                                int hd, double scale, int causal, double softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const i64 r = ax_tid();
    if (r >= B * nh * S) return;
    const int i = (int)(r % S), h = (int)((r / S) % nh);
    const i64 b = r / ((i64)S * nh);
    const int kvh = h / (nh / nkv);
    const int *segb = seg ? seg + b * S : (const int *)0;
    const i64 qo = ((b * S + i) * nh + h) * hd;
    const T *qi = q + qo, *doi = dout + qo;
    const double D = att_any_dot(doi, out + qo, hd), L = (double)lse[(b * nh + h) * S + i];
    double acc[AXO_ATT_ANY_MAXHD];
    for (int d = 0; d < hd; d++) acc[d] = 0.0;
    const int jbeg = max(att_any_jbeg(segb, i), att_any_wbeg(i, causal));
    const int jend = causal ? i + 1 : att_any_jend(segb, i, S);
    for (int j = jbeg; j < jend; j++) {
        if (!att_any_ok(i, j, causal, segb)) continue;
        const T *kj = k + ((b * S + j) * nkv + kvh) * hd, *vj = v + ((b * S + j) * nkv + kvh) * hd;
        double ds;
        if constexpr (CAP) {
            double dc;
            const double p = exp(ax_softcap_d(scale * att_any_dot(qi, kj, hd), softcap, dc) - L);
            ds = scale * dc * p * (att_any_dot(doi, vj, hd) - D);
        } else {
            const double p = exp(scale * att_any_dot(qi, kj, hd) - L);
            ds = scale * p * (att_any_dot(doi, vj, hd) - D);
        }
        for (int d = 0; d < hd; d++) acc[d] += ds * (double)ax_ld(kj + d);
    }
    for (int d = 0; d < hd; d++) ax_st(dq + qo + d, (float)acc[d]);
    if constexpr (CAP) AX_CAP_MARK();
}

template <typename T, bool CAP>
__device__ __forceinline__ void att_any_dkdv_impl(const T *q, const T *k, const T *v, const int *seg, const T *out,
                                                  const float *lse, const T *dout, T *dk, T *dv, i64 B, int S, int nh,
                                                  int nkv, int hd, double scale, int causal, double softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const i64 r = ax_tid();
    if (r >= B * nkv * S) return;
    const int j = (int)(r % S), kvh = (int)((r / S) % nkv);
    const i64 b = r / ((i64)S * nkv);
    const int grp = nh / nkv;
    const int *segb = seg ? seg + b * S : (const int *)0;
    const i64 ko = ((b * S + j) * nkv + kvh) * hd;
    const T *kj = k + ko, *vj = v + ko;
    double dka[AXO_ATT_ANY_MAXHD], dva[AXO_ATT_ANY_MAXHD];
    for (int d = 0; d < hd; d++) dka[d] = dva[d] = 0.0;
    const int ibeg = causal ? j : att_any_jbeg(segb, j);
    const int iend = min(att_any_jend(segb, j, S), att_any_wend(j, causal, S));
    for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
        for (int i = ibeg; i < iend; i++) {
            if (!att_any_ok(i, j, causal, segb)) continue;
            const i64 qo = ((b * S + i) * nh + h) * hd;
            const T *qi = q + qo, *doi = dout + qo;
            const double D = att_any_dot(doi, out + qo, hd), L = (double)lse[(b * nh + h) * S + i];
            double p, ds;
            if constexpr (CAP) {
                double dc;
                p = exp(ax_softcap_d(scale * att_any_dot(qi, kj, hd), softcap, dc) - L);
                ds = scale * dc * p * (att_any_dot(doi, vj, hd) - D);
            } else {
                p = exp(scale * att_any_dot(qi, kj, hd) - L);
                ds = scale * p * (att_any_dot(doi, vj, hd) - D);
            }
            for (int d = 0; d < hd; d++) {
                dva[d] += p * (double)ax_ld(doi + d);
                dka[d] += ds * (double)ax_ld(qi + d);
            }
        }
    }
    for (int d = 0; d < hd; d++) {
        ax_st(dk + ko + d, (float)dka[d]);
        ax_st(dv + ko + d, (float)dva[d]);
    }
    if constexpr (CAP) AX_CAP_MARK();
}

// softcap 0: the bodies without the cap (common.cuh)
template <typename T>
__device__ __forceinline__ void att_any_fwd_body(const T *q, const T *k, const T *v, const int *seg, T *out,
                                                 float *lse, i64 B, int S, int nh, int nkv, int hd, double scale,
                                                 int causal, double softcap, const void *sinks = nullptr, int sbf = 0) {
    if (softcap > 0.0)
        att_any_fwd_impl<T, true>(q, k, v, seg, out, lse, B, S, nh, nkv, hd, scale, causal, softcap, sinks, sbf);
    else
        att_any_fwd_impl<T, false>(q, k, v, seg, out, lse, B, S, nh, nkv, hd, scale, causal, softcap, sinks, sbf);
}
template <typename T>
__device__ __forceinline__ void att_any_dq_body(const T *q, const T *k, const T *v, const int *seg, const T *out,
                                                const float *lse, const T *dout, T *dq, i64 B, int S, int nh, int nkv,
                                                int hd, double scale, int causal, double softcap) {
    if (softcap > 0.0)
        att_any_dq_impl<T, true>(q, k, v, seg, out, lse, dout, dq, B, S, nh, nkv, hd, scale, causal, softcap);
    else
        att_any_dq_impl<T, false>(q, k, v, seg, out, lse, dout, dq, B, S, nh, nkv, hd, scale, causal, softcap);
}
template <typename T>
__device__ __forceinline__ void att_any_dkdv_body(const T *q, const T *k, const T *v, const int *seg, const T *out,
                                                  const float *lse, const T *dout, T *dk, T *dv, i64 B, int S, int nh,
                                                  int nkv, int hd, double scale, int causal, double softcap) {
    if (softcap > 0.0)
        att_any_dkdv_impl<T, true>(q, k, v, seg, out, lse, dout, dk, dv, B, S, nh, nkv, hd, scale, causal, softcap);
    else
        att_any_dkdv_impl<T, false>(q, k, v, seg, out, lse, dout, dk, dv, B, S, nh, nkv, hd, scale, causal, softcap);
}

#define AXO_ATT_ANY(SFX, T)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128)                                                              \
        axo_attn_any_fwd_##SFX(const T *q, const T *k, const T *v, const int *seg, T *out, float *lse, i64 B,      \
                               int S, int nh, int nkv, int hd, double scale, int causal, double softcap,           \
                               const void *sinks, int sbf) {                                                       \
        att_any_fwd_body<T>(q, k, v, seg, out, lse, B, S, nh, nkv, hd, scale, causal, softcap, sinks, sbf);        \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(128)                                                              \
        axo_attn_any_bwd_dq_##SFX(const T *q, const T *k, const T *v, const int *seg, const T *out,               \
                                  const float *lse, const T *dout, T *dq, i64 B, int S, int nh, int nkv, int hd,   \
                                  double scale, int causal, double softcap) {                                      \
        att_any_dq_body<T>(q, k, v, seg, out, lse, dout, dq, B, S, nh, nkv, hd, scale, causal, softcap);           \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(128)                                                              \
        axo_attn_any_bwd_dkdv_##SFX(const T *q, const T *k, const T *v, const int *seg, const T *out,             \
                                    const float *lse, const T *dout, T *dk, T *dv, i64 B, int S, int nh, int nkv,  \
                                    int hd, double scale, int causal, double softcap) {                            \
        att_any_dkdv_body<T>(q, k, v, seg, out, lse, dout, dk, dv, B, S, nh, nkv, hd, scale, causal, softcap);     \
    }
AXO_ATT_ANY(f32, float)
AXO_ATT_ANY(bf16, bf16)

// ---- attention sinks (gpt-oss; ck_attn_sink_fwd / ck_attn_sink_bwd) -----------------------
//  * axo_attn_sink_T(out T[B,S,nh,hd], lse f32[B,nh,S], sinks, sinks_bf16, B, S, nh, hd): in place,
//    lse' = logaddexp(lse, sinks[h]), out' = out exp(lse - lse') (double); sinks is bf16 when
//    sinks_bf16, else f32 (seqpar's ring passes an f32 out with the model's sinks). 1-D, block 256,
//    grid-stride over the B nh S rows (r = (b nh + h) S + i).
//  * axo_attn_sink_bwd_T(sinks, sinks_bf16, out', lse', dout, dsinks (sinks' dtype), B, S, nh, hd):
//    dsinks[h] = -sum over b, i of exp(sinks[h] - lse'[b,h,i]) (dout . out') in double. Grid nh
//    (one block per head), block 256: each thread sums its rows (b S + i = thread, thread + 256, ...),
//    then a fixed-order tree over the 256 partial sums: deterministic, no atomics.
template <typename T>
__device__ __forceinline__ void attn_sink_body(T *out, float *lse, const void *sinks, int sbf, i64 B, int S, int nh, int hd) {
    for (i64 r = ax_tid(); r < B * nh * S; r += ax_nthreads()) {
        const i64 i = r % S, h = (r / S) % nh, b = r / ((i64)S * nh);
        const double L = (double)lse[r], s = ax_sink_ld(sinks, sbf, h), mx = fmax(L, s);
        const double Ln = mx + log(exp(L - mx) + exp(s - mx)), f = exp(L - Ln);
        T *o = out + ((b * S + i) * nh + h) * hd;
        for (int d = 0; d < hd; d++) ax_st(o + d, (float)((double)ax_ld(o + d) * f));
        lse[r] = (float)Ln;
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_sink_f32(float *out, float *lse, const void *sinks, int sbf, i64 B,
                                                                    int S, int nh, int hd) {
    attn_sink_body(out, lse, sinks, sbf, B, S, nh, hd);
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_sink_bf16(bf16 *out, float *lse, const void *sinks, int sbf, i64 B,
                                                                     int S, int nh, int hd) {
    attn_sink_body(out, lse, sinks, sbf, B, S, nh, hd);
}
template <typename T>
__device__ __forceinline__ void attn_sink_bwd_body(const void *sinks, int sbf, const T *out, const float *lse, const T *dout,
                                                   void *dsinks, i64 B, int S, int nh, int hd) {
    __shared__ double part[256];
    const int h = blockIdx.x;
    const double s = ax_sink_ld(sinks, sbf, h);
    double acc = 0;
    for (i64 r = threadIdx.x; r < B * S; r += 256) {
        const i64 b = r / S, i = r - b * S;
        const T *o = out + (r * nh + h) * hd, *g = dout + (r * nh + h) * hd;
        double D = 0;
        for (int d = 0; d < hd; d++) D += (double)ax_ld(g + d) * (double)ax_ld(o + d);
        acc -= exp(s - (double)lse[(b * nh + h) * S + i]) * D;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int k = 128; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (sbf) ax_st((bf16 *)dsinks + h, (float)part[0]);
        else ((float *)dsinks)[h] = (float)part[0];
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_sink_bwd_f32(const void *sinks, int sbf, const float *out,
                                                                        const float *lse, const float *dout, void *dsinks,
                                                                        i64 B, int S, int nh, int hd) {
    attn_sink_bwd_body(sinks, sbf, out, lse, dout, dsinks, B, S, nh, hd);
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_sink_bwd_bf16(const void *sinks, int sbf, const bf16 *out,
                                                                         const float *lse, const bf16 *dout, void *dsinks,
                                                                         i64 B, int S, int nh, int hd) {
    attn_sink_bwd_body(sinks, sbf, out, lse, dout, dsinks, B, S, nh, hd);
}
