// attention_bwd.cuh — FlashAttention-2 style backward of attention_fwd.cuh
// (causal, GQA, segment ids, head_dim 64/128). Deterministic: three kernels,
// every output element owned by one thread of one CTA, no float atomics.
//
// Math (ck_attention_bwd_*): D_i = dout_i . out_i; P_ij = exp(s_ij - lse_i);
// dV_j = sum_i P_ij dout_i; dP_ij = dout_i . v_j; dS_ij = P_ij (dP_ij - D_i);
// dQ_i = scale sum_j dS_ij k_j; dK_j = scale sum_i dS_ij q_i. dk/dv sum over
// the nh/nkv query heads sharing a kv head (head order, then query order).
// softcap > 0 (Gemma 2): s_ij = softcap t_ij, t_ij = tanh(scale q_i.k_j /
// softcap), recomputed with the scores, and dS_ij times 1 - t_ij^2 (softcap
// 0: none, the code and bits of before; common.cuh).
//
// 1. axo_attn_bwd_preprocess_T: D[B,nh,S] (fp32). 1-D, block 256 (8 warps),
//    any grid (grid-stride over the B*S*nh rows, one warp per row: lanes read
//    dout and out at d = lane, lane + 32, ... coalesced, butterfly sum).
// 2. axo_attn_bwd_dkdv_hd{64,128}_T: grid (ceil(S/64), nkv, B), block 256.
//    One CTA owns 64 keys of one kv head: stages K, V once, then for each
//    query head of the group and each 64-query tile from the causal start
//    to the end of the segment of its last key (packed rows, below) stages
//    Q, dout, lse, D; computes P^T (thread: keys ty+16i, queries tx+16j),
//    dV += P^T dout, dP^T = V dout^T, dS^T = P^T (dP^T - D) (kept in
//    registers, then shared), dK += dS^T Q. Accumulators fp32 in registers
//    (2 x 4 x hd/16 per thread); dK scaled by `scale` at the end.
// 3. axo_attn_bwd_dq_hd{64,128}_T: grid (ceil(S/64), nh, B), block 256.
//    One CTA owns 64 queries of one head: stages Q, dout, lse, D once, loops
//    over key tiles from the one holding the start of seg[q0]'s segment
//    (packed rows, below) up to the causal limit: S, P, dP, dS in registers
//    (thread: queries ty+16i, keys tx+16j), dS to shared, dQ += dS K.
// Both 2 and 3 use dynamic shared memory
//   (4 * 64 (hd+1) + 64 * 65) * 4 + 256 * 4 bytes = 84224 (hd 64) / 149760 (hd 128)
// (set cudaFuncAttributeMaxDynamicSharedMemorySize; fits sm_80's 163 KiB).
// Scores are recomputed in both 2 and 3 (the price of no atomics).
//
// Packed rows (common.cuh: every seg row non-decreasing): dQ starts at the
// key tile holding lower_bound(seg[q0]) (ax_seg_kbeg), dK/dV stops after the
// query tile holding upper_bound(seg[kl]) - 1, kl the tile's last key
// (ax_seg_qend); the tiles left out are fully masked for the whole CTA, so
// their P and dS are 0. dQ: the skipped tiles come first and would leave the
// accumulator +0 (fmaf(+-0, k, +0) = +0), so dQ is bit-identical for finite
// inputs. dK/dV: the skipped tiles come last and add +-0 products to the
// accumulators, which changes nothing unless an accumulator is -0 (every
// visible contribution to it underflowed to -0); then the unskipped kernel's
// +0 products could turn it into +0. That sign of a zero is the one
// difference for finite inputs. (Non-finite q/k/v/dout in a skipped tile no
// longer reach the results through 0 * inf = NaN.)

template <typename T>
__device__ __forceinline__ void attn_bwd_pre_body(const T *out, const T *dout, float *D, i64 B, int S, int nh,
                                                  int hd) {
    const i64 rows = B * S * nh;
    const int lane = threadIdx.x & 31;
    const i64 warps = ax_nthreads() >> 5;
    for (i64 r = ax_tid() >> 5; r < rows; r += warps) {
        const T *o = out + r * hd, *g = dout + r * hd;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32) s = fmaf(ax_ld(g + d), ax_ld(o + d), s);
        s = ax_warp_sum(s);
        if (lane == 0) {
            const i64 bs = r / nh, h = r - bs * nh, b = bs / S, i = bs - b * S;
            D[(b * nh + h) * S + i] = s;
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_bwd_preprocess_f32(const float *out, const float *dout,
                                                                              float *D, i64 B, int S, int nh,
                                                                              int hd) {
    attn_bwd_pre_body(out, dout, D, B, S, nh, hd);
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_bwd_preprocess_bf16(const bf16 *out, const bf16 *dout,
                                                                               float *D, i64 B, int S, int nh,
                                                                               int hd) {
    attn_bwd_pre_body(out, dout, D, B, S, nh, hd);
}

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_bwd_dkdv_impl(const T *q, const T *k, const T *v, const int *seg, const T *dout,
                                                   const float *lse, const float *D, T *dk, T *dv, int S, int nh,
                                                   int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BQ + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Ks = sm, *Vs = Ks + BK * LD, *Qs = Vs + BK * LD, *Gs = Qs + BQ * LD, *Ps = Gs + BQ * LD;
    float *lse_s = Ps + BK * LDP, *D_s = lse_s + BQ;
    int *segq = (int *)(D_s + BQ), *segk = segq + BQ;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int k0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z, grp = nh / nkv;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const T *kb = k + (i64)b * S * ks + (i64)kvh * HD, *vb = v + (i64)b * S * ks + (i64)kvh * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const int qend = ax_seg_qend<BK>(segb, k0, S, causal);

    ax_load_tile<T, HD, BK, LD>(Ks, kb, ks, k0, S);
    ax_load_tile<T, HD, BK, LD>(Vs, vb, ks, k0, S);
    ax_load_vec(segk, segb, k0, BK, S);

    float dka[4][DJ], dva[4][DJ];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) dka[i][jj] = dva[i][jj] = 0.0f;

    const int qstart = causal ? (k0 / BQ) * BQ : 0;
    for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
        const T *qb = q + (i64)b * S * qs + (i64)h * HD, *gb = dout + (i64)b * S * qs + (i64)h * HD;
        const float *lseb = lse + ((i64)b * nh + h) * S, *Db = D + ((i64)b * nh + h) * S;
        for (int q0 = qstart; q0 < qend; q0 += BQ) {
            __syncthreads(); // the previous tile's Q, dout, dS are no longer read
            ax_load_tile<T, HD, BQ, LD>(Qs, qb, qs, q0, S);
            ax_load_tile<T, HD, BQ, LD>(Gs, gb, qs, q0, S);
            ax_load_vec(lse_s, lseb, q0, BQ, S);
            ax_load_vec(D_s, Db, q0, BQ, S);
            ax_load_vec(segq, segb, q0, BQ, S);
            __syncthreads();
            float p[4][4], dp[4][4];
            ax_tile_abt<HD, LD>(p, Ks, Qs, tx, ty); // rows: keys, cols: queries
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const int kr = ty + 16 * i, qc = tx + 16 * j;
                    const bool ok = ax_att_ok(q0 + qc, k0 + kr, S, causal, segb, segq[qc], segk[kr]);
                    if constexpr (CAP) { // P^T to shared memory (dV), P^T (1 - t^2) stays for dS^T
                        float dc;
                        const float x = ax_softcap_d(p[i][j] * scale, softcap, ic, dc);
                        const float pv = ok ? expf(x - lse_s[qc]) : 0.0f;
                        Ps[kr * LDP + qc] = pv;
                        p[i][j] = pv * dc;
                    } else {
                        p[i][j] = ok ? expf(p[i][j] * scale - lse_s[qc]) : 0.0f;
                        Ps[kr * LDP + qc] = p[i][j];
                    }
                }
            __syncthreads();
            ax_tile_mma<BQ, LDP, LD, DJ>(dva, Ps, Gs, tx, ty); // dV += P^T dout
            ax_tile_abt<HD, LD>(dp, Vs, Gs, tx, ty);           // dP^T = V dout^T
            __syncthreads();                                   // P^T fully read
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const int qc = tx + 16 * j;
                    Ps[(ty + 16 * i) * LDP + qc] = p[i][j] * (dp[i][j] - D_s[qc]);
                }
            __syncthreads();
            ax_tile_mma<BQ, LDP, LD, DJ>(dka, Ps, Qs, tx, ty); // dK += dS^T Q
        }
    }
    ax_store_rows<T, DJ>(dk + (i64)b * S * ks + (i64)kvh * HD, ks, k0, S, dka, scale, tx, ty);
    ax_store_rows<T, DJ>(dv + (i64)b * S * ks + (i64)kvh * HD, ks, k0, S, dva, 1.0f, tx, ty);
    if constexpr (CAP) AX_CAP_MARK();
}

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_bwd_dq_impl(const T *q, const T *k, const T *v, const int *seg, const T *dout,
                                                 const float *lse, const float *D, T *dq, int S, int nh, int nkv,
                                                 float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BK + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Qs = sm, *Gs = Qs + BQ * LD, *Ks = Gs + BQ * LD, *Vs = Ks + BK * LD, *Ps = Vs + BK * LD;
    float *lse_s = Ps + BQ * LDP, *D_s = lse_s + BQ;
    int *segq = (int *)(D_s + BQ), *segk = segq + BQ;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv);
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const T *kb = k + (i64)b * S * ks + (i64)kvh * HD, *vb = v + (i64)b * S * ks + (i64)kvh * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const int kbeg = ax_seg_kbeg<BK>(segb, q0, causal);

    ax_load_tile<T, HD, BQ, LD>(Qs, q + (i64)b * S * qs + (i64)h * HD, qs, q0, S);
    ax_load_tile<T, HD, BQ, LD>(Gs, dout + (i64)b * S * qs + (i64)h * HD, qs, q0, S);
    ax_load_vec(lse_s, lse + ((i64)b * nh + h) * S, q0, BQ, S);
    ax_load_vec(D_s, D + ((i64)b * nh + h) * S, q0, BQ, S);
    ax_load_vec(segq, segb, q0, BQ, S);

    float dqa[4][DJ];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) dqa[i][jj] = 0.0f;

    const int kend = causal ? min(S, q0 + BQ) : S;
    for (int k0 = kbeg; k0 < kend; k0 += BK) {
        __syncthreads();
        ax_load_tile<T, HD, BK, LD>(Ks, kb, ks, k0, S);
        ax_load_tile<T, HD, BK, LD>(Vs, vb, ks, k0, S);
        ax_load_vec(segk, segb, k0, BK, S);
        __syncthreads();
        float s[4][4], dp[4][4];
        ax_tile_abt<HD, LD>(s, Qs, Ks, tx, ty);
        ax_tile_abt<HD, LD>(dp, Gs, Vs, tx, ty);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int qr = ty + 16 * i, kc = tx + 16 * j;
                const bool ok = ax_att_ok(q0 + qr, k0 + kc, S, causal, segb, segq[qr], segk[kc]);
                if constexpr (CAP) {
                    float dc;
                    const float x = ax_softcap_d(s[i][j] * scale, softcap, ic, dc);
                    const float p = ok ? expf(x - lse_s[qr]) * dc : 0.0f;
                    Ps[qr * LDP + kc] = p * (dp[i][j] - D_s[qr]);
                } else {
                    const float p = ok ? expf(s[i][j] * scale - lse_s[qr]) : 0.0f;
                    Ps[qr * LDP + kc] = p * (dp[i][j] - D_s[qr]);
                }
            }
        __syncthreads();
        ax_tile_mma<BK, LDP, LD, DJ>(dqa, Ps, Ks, tx, ty); // dQ += dS K
    }
    ax_store_rows<T, DJ>(dq + (i64)b * S * qs + (i64)h * HD, qs, q0, S, dqa, scale, tx, ty);
    if constexpr (CAP) AX_CAP_MARK();
}

// softcap 0: the bodies without the cap (common.cuh)
template <typename T, int HD>
__device__ __forceinline__ void attn_bwd_dkdv_body(const T *q, const T *k, const T *v, const int *seg, const T *dout,
                                                   const float *lse, const float *D, T *dk, T *dv, int S, int nh,
                                                   int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        attn_bwd_dkdv_impl<T, HD, true>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);
    else
        attn_bwd_dkdv_impl<T, HD, false>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);
}
template <typename T, int HD>
__device__ __forceinline__ void attn_bwd_dq_body(const T *q, const T *k, const T *v, const int *seg, const T *dout,
                                                 const float *lse, const float *D, T *dq, int S, int nh, int nkv,
                                                 float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        attn_bwd_dq_impl<T, HD, true>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);
    else
        attn_bwd_dq_impl<T, HD, false>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);
}

#define AXO_ATT_BWD(SFX, T, HD)                                                                                  \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT)                                                     \
        axo_attn_bwd_dkdv_##SFX(const T *q, const T *k, const T *v, const int *seg, const T *dout,              \
                                const float *lse, const float *D, T *dk, T *dv, int S, int nh, int nkv,          \
                                float scale, int causal, float softcap) {                                        \
        attn_bwd_dkdv_body<T, HD>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);      \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT)                                                     \
        axo_attn_bwd_dq_##SFX(const T *q, const T *k, const T *v, const int *seg, const T *dout,                \
                              const float *lse, const float *D, T *dq, int S, int nh, int nkv, float scale,      \
                              int causal, float softcap) {                                                       \
        attn_bwd_dq_body<T, HD>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);            \
    }
AXO_ATT_BWD(hd64_f32, float, 64)
AXO_ATT_BWD(hd64_bf16, bf16, 64)
AXO_ATT_BWD(hd128_f32, float, 128)
AXO_ATT_BWD(hd128_bf16, bf16, 128)
