// cross_entropy.cuh — token cross entropy over rows of logits, fwd and bwd;
// DPO's pair loss over the rows' summed losses.
//
// Math (ck_cross_entropy_*): logits[T,V], targets[T] (int32). A row whose
// target == ignore_index is skipped; other targets outside [0, V) are
// reported through *err (smallest t; err may be NULL) and treated as skipped.
//   lse = logsumexp(row) (online: running max m and sum s of exp(x - m),
//         fp32, exp = expf); loss_t = lse - x[target].
//   fwd: loss[t] = loss_t for kept rows, 0 for skipped ones; lse_out[t] = lse
//        (may be NULL). axo_cross_entropy_reduce then gives, for each run r
//        of `per` consecutive rows (per = T: the one total),
//        loss_sum[r] = sum of its loss[t] (double, fixed order, rounded to
//        fp32) and count[r] = its number of kept rows (the caller divides).
//   bwd: dlogits = (*dscale) * (softmax(row) - onehot(target)) for kept rows,
//        0 for skipped rows. dscale is a device scalar (the IR's dscale
//        tensor). dlogits may alias logits: the row is fully read (pass 1)
//        before a block barrier, then each element is read and written by one
//        thread.
//
// fwd/bwd launch: 1-D, block 256 (any multiple of 32 up to 1024; 512-1024 for
//   V >= 32k), any grid (grid-stride over rows; full size = T blocks). A
//   block owns one row at a time: each thread runs the online logsumexp over
//   columns j, j + blockDim, ... (16-byte vectors when V % V_w == 0 and
//   aligned), then one fixed-order block merge. bwd re-reads the row (cache)
//   to write dlogits. Traffic: fwd reads logits once; bwd reads twice, writes once.
// reduce launch: block 256, any grid (grid-stride over runs; full size =
//   T / per blocks); a block owns one run at a time (its partials summed per
//   thread in strided order, then a fixed tree).
// softcap > 0 (Gemma 2's final_logit_softcapping c; fwd, bwd, lce chunk):
//   every logit x is first y = tanh(x / c) * c, in fp32 as transformers
//   computes it (ck_ce_row_), and the rows above read y for x (lse, the
//   target's logit, softmax); dlogits is the gradient of x: the one of y
//   times 1 - tanh^2(x / c). softcap 0: none; the kernels test it once and run
//   the rows' code instantiated without the cap (CAP false), the code and
//   bits of before. Capped rows take the scalar path (VW 1, still coalesced):
//   the vector path's 4 or 8 tanh in flight would raise the kernels' register
//   count past 32 (full occupancy), which the no-cap path would pay too.

// The cap of one logit (transformers' order: divide, tanh, multiply) and,
// ce_cap_d, the derivative 1 - tanh^2 too.
__device__ __forceinline__ float ce_cap(float x, float c) { return tanhf(x / c) * c; }
__device__ __forceinline__ float ce_cap_d(float x, float c, float &d) {
    const float t = tanhf(x / c);
    d = 1.0f - t * t;
    return t * c;
}

template <typename T, int VW, bool CAP = false>
__device__ __forceinline__ ax_lse ce_row_lse(const T *x, i64 V, ax_lse *red, float cap = 0.0f) {
    ax_lse st;
    st.m = -AXO_INF;
    st.s = 0.0f;
    for (i64 c = (i64)threadIdx.x * VW; c < V; c += (i64)blockDim.x * VW) {
        float v[VW];
        if constexpr (VW == 1) v[0] = ax_ld(x + c);
        else ax_ld16(x + c, v);
#pragma unroll
        for (int e = 0; e < VW; e++) {
            if constexpr (CAP) st = ax_lse_add(st, ce_cap(v[e], cap));
            else st = ax_lse_add(st, v[e]);
        }
    }
    return ax_lse_block(st, red);
}

template <typename T>
__device__ __forceinline__ bool ce_target_ok(const int *targets, i64 t, i64 V, int ignore_index, int *err) {
    const int tg = targets[t];
    if (tg == ignore_index) return false;
    if (tg < 0 || tg >= V) {
        if (threadIdx.x == 0) ax_report_bad(err, t);
        return false;
    }
    return true;
}

template <typename T, int VW, bool CAP>
__device__ __forceinline__ void ce_fwd_rows(const T *logits, const int *targets, float *loss, float *lse_out, i64 T_,
                                            i64 V, int ignore_index, float cap, int *err) {
    __shared__ ax_lse red[32];
    for (i64 t = blockIdx.x; t < T_; t += gridDim.x) {
        const T *x = logits + t * V;
        if (!ce_target_ok<T>(targets, t, V, ignore_index, err)) { // uniform over the block
            if (threadIdx.x == 0) {
                loss[t] = 0.0f;
                if (lse_out) lse_out[t] = 0.0f;
            }
            continue;
        }
        const ax_lse st = ce_row_lse<T, VW, CAP>(x, V, red, cap);
        if (threadIdx.x == 0) {
            const float l = st.m + logf(st.s);
            if constexpr (CAP) loss[t] = l - ce_cap(ax_ld(x + targets[t]), cap);
            else loss[t] = l - ax_ld(x + targets[t]);
            if (lse_out) lse_out[t] = l;
        }
    }
}

template <typename T, int VW, bool CAP>
__device__ __forceinline__ void ce_bwd_rows(const T *logits, const int *targets, const float *dscale, T *dlogits,
                                            i64 T_, i64 V, int ignore_index, float cap, int *err) {
    __shared__ ax_lse red[32];
    const float scale = *dscale;
    for (i64 t = blockIdx.x; t < T_; t += gridDim.x) {
        const T *x = logits + t * V;
        T *d = dlogits + t * V;
        const bool keep = ce_target_ok<T>(targets, t, V, ignore_index, err);
        float m = 0.0f, sum = 1.0f, k = 0.0f;
        int tg = -1;
        if (keep) {
            const ax_lse st = ce_row_lse<T, VW, CAP>(x, V, red, cap); // ends with a barrier-protected merge
            m = st.m;
            sum = st.s;
            k = scale / sum;
            tg = targets[t];
        }
        for (i64 c = (i64)threadIdx.x * VW; c < V; c += (i64)blockDim.x * VW) {
            float v[VW], o[VW];
            if constexpr (VW == 1) v[0] = ax_ld(x + c);
            else ax_ld16(x + c, v);
#pragma unroll
            for (int e = 0; e < VW; e++) {
                if (!keep) {
                    o[e] = 0.0f;
                } else if constexpr (CAP) {
                    float dc;
                    const float p = expf(ce_cap_d(v[e], cap, dc) - m);
                    o[e] = (c + e == tg ? (p / sum - 1.0f) * scale : p * k) * dc;
                } else {
                    const float p = expf(v[e] - m);
                    o[e] = c + e == tg ? (p / sum - 1.0f) * scale : p * k;
                }
            }
            if constexpr (VW == 1) ax_st(d + c, o[0]);
            else ax_st16(d + c, o);
        }
        __syncthreads(); // with in-place dlogits, the next row's pass 1 must not overtake
    }
}

template <typename T, bool CAP>
__device__ __forceinline__ void ce_fwd_vw(const T *logits, const int *targets, float *loss, float *lse_out, i64 T_,
                                          i64 V, int ignore_index, float cap, int *err) {
    constexpr int VW = ax_vec<T>::N;
    if (!CAP && V % VW == 0 && ax_al16(logits)) // capped rows: the scalar path (below)
        ce_fwd_rows<T, VW, CAP>(logits, targets, loss, lse_out, T_, V, ignore_index, cap, err);
    else
        ce_fwd_rows<T, 1, CAP>(logits, targets, loss, lse_out, T_, V, ignore_index, cap, err);
}
template <typename T>
__device__ __forceinline__ void ce_fwd_body(const T *logits, const int *targets, float *loss, float *lse_out, i64 T_,
                                            i64 V, int ignore_index, float softcap, int *err) {
    if (softcap > 0.0f) ce_fwd_vw<T, true>(logits, targets, loss, lse_out, T_, V, ignore_index, softcap, err);
    else ce_fwd_vw<T, false>(logits, targets, loss, lse_out, T_, V, ignore_index, softcap, err);
}
template <typename T, bool CAP>
__device__ __forceinline__ void ce_bwd_vw(const T *logits, const int *targets, const float *dscale, T *dlogits,
                                          i64 T_, i64 V, int ignore_index, float cap, int *err) {
    constexpr int VW = ax_vec<T>::N;
    if (!CAP && V % VW == 0 && ax_al16(logits) && ax_al16(dlogits))
        ce_bwd_rows<T, VW, CAP>(logits, targets, dscale, dlogits, T_, V, ignore_index, cap, err);
    else
        ce_bwd_rows<T, 1, CAP>(logits, targets, dscale, dlogits, T_, V, ignore_index, cap, err);
}
template <typename T>
__device__ __forceinline__ void ce_bwd_body(const T *logits, const int *targets, const float *dscale, T *dlogits,
                                            i64 T_, i64 V, int ignore_index, float softcap, int *err) {
    if (softcap > 0.0f) ce_bwd_vw<T, true>(logits, targets, dscale, dlogits, T_, V, ignore_index, softcap, err);
    else ce_bwd_vw<T, false>(logits, targets, dscale, dlogits, T_, V, ignore_index, softcap, err);
}

extern "C" __global__ void axo_cross_entropy_fwd_f32(const float *logits, const int *targets, float *loss,
                                                     float *lse_out, i64 T, i64 V, int ignore_index,
                                                     float softcap, int *err) {
    ce_fwd_body(logits, targets, loss, lse_out, T, V, ignore_index, softcap, err);
}
extern "C" __global__ void axo_cross_entropy_fwd_bf16(const bf16 *logits, const int *targets, float *loss,
                                                      float *lse_out, i64 T, i64 V, int ignore_index,
                                                      float softcap, int *err) {
    ce_fwd_body(logits, targets, loss, lse_out, T, V, ignore_index, softcap, err);
}
extern "C" __global__ void axo_cross_entropy_bwd_f32(const float *logits, const int *targets, const float *dscale,
                                                     float *dlogits, i64 T, i64 V, int ignore_index,
                                                     float softcap, int *err) {
    ce_bwd_body(logits, targets, dscale, dlogits, T, V, ignore_index, softcap, err);
}
extern "C" __global__ void axo_cross_entropy_bwd_bf16(const bf16 *logits, const int *targets, const float *dscale,
                                                      bf16 *dlogits, i64 T, i64 V, int ignore_index,
                                                      float softcap, int *err) {
    ce_bwd_body(logits, targets, dscale, dlogits, T, V, ignore_index, softcap, err);
}

// ---- fused linear cross entropy: one row chunk -------------------------------
// The CUDA executor runs linear_cross_entropy chunk by chunk: a cuBLASLt
// GEMM writes the chunk's logits in fp32, this kernel turns them into the
// rows' losses and dlogits, two more GEMMs give dh and accumulate dW.
//   logits[c,V] fp32 (rows t0..t0+c-1 of the op), targets = the chunk's,
//   loss[t] as axo_cross_entropy_fwd, dl[c,V] (TO: the GEMM operand dtype)
//   = dscale[(t0 + t) / per_scale] * (softmax - onehot), 0 for skipped
//   rows: one scale for all (per_scale = the op's row count) or one per run
//   of per_scale rows (a per-sequence scale: dpo_loss's coef). dl may alias
//   logits when TO is float (the row is fully read before a barrier). Bad
//   targets are reported as row t0 + t. softcap as axo_cross_entropy_fwd/bwd
//   (the rows' logits capped, dl the gradient of the uncapped ones). Launch
//   as axo_cross_entropy_bwd.
template <typename TO, int VW, bool CAP>
__device__ __forceinline__ void lce_rows(const float *logits, const int *targets, const float *dscale, TO *dl,
                                         float *loss, i64 C, i64 V, i64 t0, i64 per_scale, int ignore_index, float cap,
                                         int *err) {
    __shared__ ax_lse red[32];
    for (i64 t = blockIdx.x; t < C; t += gridDim.x) {
        const float scale = dscale[(t0 + t) / per_scale];
        const float *x = logits + t * V;
        TO *d = dl + t * V;
        const int tg = targets[t];
        bool keep = tg != ignore_index;
        if (keep && (tg < 0 || tg >= V)) {
            if (threadIdx.x == 0) ax_report_bad(err, t0 + t);
            keep = false;
        }
        float m = 0.0f, sum = 1.0f, k = 0.0f;
        if (keep) {
            // the target's logit before any thread writes dl (which may alias logits): the
            // barriers inside ce_row_lse order this read before every write of the row
            float xt = threadIdx.x == 0 ? x[tg] : 0.0f;
            if constexpr (CAP) xt = ce_cap(xt, cap);
            const ax_lse st = ce_row_lse<float, VW, CAP>(x, V, red, cap);
            m = st.m;
            sum = st.s;
            k = scale / sum;
            if (threadIdx.x == 0) loss[t] = m + logf(sum) - xt;
        } else if (threadIdx.x == 0) {
            loss[t] = 0.0f;
        }
        for (i64 c = (i64)threadIdx.x * VW; c < V; c += (i64)blockDim.x * VW) {
            float v[VW];
            if constexpr (VW == 1) v[0] = x[c];
            else ax_ld16(x + c, v);
#pragma unroll
            for (int e = 0; e < VW; e++) {
                if constexpr (CAP) {
                    float dc = 0.0f;
                    const float p = keep ? expf(ce_cap_d(v[e], cap, dc) - m) : 0.0f;
                    ax_st(d + c + e, !keep ? 0.0f : (c + e == tg ? (p / sum - 1.0f) * scale : p * k) * dc);
                } else {
                    const float p = keep ? expf(v[e] - m) : 0.0f;
                    ax_st(d + c + e, !keep ? 0.0f : c + e == tg ? (p / sum - 1.0f) * scale : p * k);
                }
            }
        }
        __syncthreads(); // in place: the next row's pass 1 must not overtake
    }
}

template <typename TO, bool CAP>
__device__ __forceinline__ void lce_vw(const float *logits, const int *targets, const float *dscale, TO *dl,
                                       float *loss, i64 C, i64 V, i64 t0, i64 per_scale, int ignore_index, float cap,
                                       int *err) {
    if (!CAP && V % 4 == 0 && ax_al16(logits))
        lce_rows<TO, 4, CAP>(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, cap, err);
    else
        lce_rows<TO, 1, CAP>(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, cap, err);
}
template <typename TO>
__device__ __forceinline__ void lce_body(const float *logits, const int *targets, const float *dscale, TO *dl,
                                         float *loss, i64 C, i64 V, i64 t0, i64 per_scale, int ignore_index,
                                         float softcap, int *err) {
    if (softcap > 0.0f)
        lce_vw<TO, true>(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, softcap, err);
    else
        lce_vw<TO, false>(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, softcap, err);
}
extern "C" __global__ void axo_lce_chunk_f32(const float *logits, const int *targets, const float *dscale, float *dl,
                                             float *loss, i64 C, i64 V, i64 t0, i64 per_scale, int ignore_index,
                                             float softcap, int *err) {
    lce_body(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, softcap, err);
}
extern "C" __global__ void axo_lce_chunk_bf16(const float *logits, const int *targets, const float *dscale, bf16 *dl,
                                              float *loss, i64 C, i64 V, i64 t0, i64 per_scale, int ignore_index,
                                              float softcap, int *err) {
    lce_body(logits, targets, dscale, dl, loss, C, V, t0, per_scale, ignore_index, softcap, err);
}

// For each run r of `per` rows (T % per == 0): loss_sum[r] = sum of its
// loss[t] (double, fixed order), count[r] = its rows kept (count may be NULL).
extern "C" __global__ void __launch_bounds__(256) axo_cross_entropy_reduce(const float *loss, const int *targets,
                                                                           i64 T, i64 per, i64 V, int ignore_index,
                                                                           float *loss_sum, int *count) {
    __shared__ double red[32];
    for (i64 r = blockIdx.x; r < T / per; r += gridDim.x) { // uniform over the block
        double s = 0.0, n = 0.0;
        for (i64 t = r * per + threadIdx.x; t < (r + 1) * per; t += blockDim.x) {
            const int tg = targets[t];
            s += (double)loss[t];
            n += (tg != ignore_index && tg >= 0 && tg < V) ? 1.0 : 0.0;
        }
        s = ax_block_sum(s, red);
        n = ax_block_sum(n, red);
        if (threadIdx.x == 0) {
            loss_sum[r] = (float)s;
            if (count) count[r] = (int)n;
        }
    }
}

// ---- DPO's pair loss (TRL's DPOTrainer losses) --------------------------------
// Math (ck_dpo_loss): ir/dpo_loss.h itself, included below. s[2P], sref[2P]
// each row's summed token loss (the P chosen rows, then the P rejected; the
// rows' sums of a linear_cross_entropy {rows}), pscale[P], counts[2P] the
// rows' completion token counts (NULL for losses that read none); in double:
// loss[p] = sum_k w_k loss_{type k}(pair p), coef[p] = pscale[p] d loss /
// d s_c, coef[P + p] = pscale[p] d loss / d s_r (the dscale of the
// linear_cross_entropy that computes the gradients); results rounded to fp32
// once. types: term k's type in bits 4k..4k+3 (nterms <= 4), w0..w3 their
// weights.
// Launch: 1-D, block 256, any grid (grid-stride over pairs; P is a batch's
// pair count, so one block).
#include "ir/dpo_loss.h"
extern "C" __global__ void __launch_bounds__(256)
    axo_dpo_loss(const float *s, const float *sref, const float *pscale, const float *counts, i64 P, double beta,
                 double eps, double tau, double gamma, int types, int nterms, double w0, double w1, double w2, double w3, float *loss,
                 float *coef) {
    int t[AXO_DPO_MAXTERMS];
    const double w[AXO_DPO_MAXTERMS] = {w0, w1, w2, w3};
    for (int k = 0; k < AXO_DPO_MAXTERMS; k++) t[k] = (types >> (4 * k)) & 15;
    for (i64 p = ax_tid(); p < P; p += ax_nthreads()) {
        double kc, kr;
        loss[p] = (float)axo_dpo_pair(t, w, nterms, (double)s[p], (double)s[P + p], (double)sref[p], (double)sref[P + p],
                                      counts ? (double)counts[p] : 1.0, counts ? (double)counts[P + p] : 1.0, beta, eps,
                                      tau, gamma, (double)pscale[p], &kc, &kr);
        coef[p] = (float)kc;
        coef[P + p] = (float)kr;
    }
}
