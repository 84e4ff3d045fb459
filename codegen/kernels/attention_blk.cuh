// attention_blk.cuh — ring-attention block kernels for sequence parallelism
// (passes/seqpar.c): attention of Sq local queries against one block of Sk
// keys, masked by each token's index in its row; its backward against the
// merged whole-row out/lse; and the online-softmax merge of two partial
// results. head_dim 64 or 128 (the merge takes any head_dim).
//
// Math (runtime/cpu_kernels.h "ring attention blocks": ck_attention_blk_fwd,
// ck_attention_blk_bwd, ck_attn_merge): q[B,Sq,nh,hd], k,v[B,Sk,nkv,hd]
// (storage T = f32 or bf16), segq/idxq[B,Sq], segk/idxk[B,Sk] int32. Query
// head h reads kv head h / (nh/nkv). Query i sees key j iff segq[i] ==
// segk[j] and (!causal || idxk[j] <= idxq[i]); as in the CPU kernels, seg
// NULL (both) means one segment and idx NULL (both) index = position (then
// Sq == Sk: whole-row attention, whose tiles above the diagonal are skipped
// like any other fully masked tile). s_ij = scale q_i.k_j, or with softcap
// > 0 (Gemma 2) softcap t_ij, t_ij = tanh(scale q_i.k_j / softcap), before
// the mask; the backward's dS_ij then carries the factor 1 - t_ij^2 (softcap
// 0: none, the code and bits of before; common.cuh). Every output is fp32
// whatever T:
//  * fwd: out[B,Sq,nh,hd] = softmax over the visible keys of the block,
//    lse[B,nh,Sq]; a query that sees no key of the block gets out 0, lse -inf.
//  * bwd: out (T, the merged whole-row output), lse (fp32, whole row), dout
//    (T): D_i = dout_i . out_i, P_ij = exp(s_ij - lse_i), dV_j = sum_i P_ij
//    dout_i, dP_ij = dout_i . v_j, dS_ij = P_ij (dP_ij - D_i), dQ_i = scale
//    sum_j dS_ij k_j (this block's part: the ring sums them), dK_j = scale
//    sum_i dS_ij q_i; dk/dv sum over the query heads of a kv head. Keys no
//    query sees get dk = dv = 0; queries that see no key get dq = 0.
//  * merge: m = max(l1, l2); m = -inf -> o = 0, l = -inf; otherwise, in
//    double, w_t = e^(l_t - m), o = (w1 o1 + w2 o2) / (w1 + w2),
//    l = m + log(w1 + w2) (same operation order as the CPU, no contraction).
//
// Skipping masked tiles. The mask follows token indices, not positions, so
// the causal tile bound of attention_fwd.cuh does not hold (a zigzag rank
// holds two distant chunks of the row, and a block's keys may all lie after
// a query tile). For every 64 x 64 (query, key) tile the kernels first stage
// the 64 + 64 seg/idx entries; each thread evaluates its 16 (query, key)
// pairs into a bit mask, and __syncthreads_or drops the tile (no Q/K/V/dout
// loads, no math) when no pair is visible. The same bits mask the scores.
// Skipped tiles contribute exactly nothing, so results do not depend on it.
//
// Entry points (block 256 = 16 x 16 threads, the tile geometry of
// common.cuh: a thread owns tile rows ty+16i and columns tx+16j):
// 1. axo_attn_blk_fwd_hd{64,128}_T: grid (ceil(Sq/64), nh, B). One CTA = 64
//    queries of one head: stages Q and the query seg/idx once, then per key
//    tile: seg/idx, visibility, K and V, scores, online softmax (running max
//    and sum per row, 16-lane shuffles), P V into 4 x hd/16 fp32
//    accumulators, as attention_fwd.cuh. Dynamic shared memory
//      (3 * 64 (hd+1) + 64 * 65) * 4 + 256 * 4 = 67584 (hd 64) / 116736 (hd 128)
// 2. axo_attn_blk_bwd_preprocess_T: D[B,nh,Sq] fp32 from out and dout (T).
//    1-D, block 256, any grid (grid-stride over the B*Sq*nh rows, one warp
//    per row, butterfly sum). Same as axo_attn_bwd_preprocess with S = Sq;
//    kept here so the block backward is one module.
// 3. axo_attn_blk_bwd_dkdv_hd{64,128}_T: grid (ceil(Sk/64), nkv, B). One CTA
//    owns 64 keys of one kv head: stages K, V and the key seg/idx once, then
//    for each query head of the group (ascending) and each 64-query tile
//    (ascending): seg/idx/lse/D, visibility, Q and dout; P^T, dV += P^T
//    dout, dP^T = V dout^T, dS^T = P^T (dP^T - D), dK += dS^T Q; writes dk
//    (times scale) and dv [B,Sk,nkv,hd] fp32.
// 4. axo_attn_blk_bwd_dq_hd{64,128}_T: grid (ceil(Sq/64), nh, B). One CTA
//    owns 64 queries of one head: stages Q, dout, lse, D and the query
//    seg/idx once, then per key tile (ascending): seg/idx, visibility, K, V;
//    S, P, dP, dS in registers, dS to shared, dQ += dS K; writes dq (times
//    scale) [B,Sq,nh,hd] fp32.
//    3 and 4 use dynamic shared memory
//      (4 * 64 (hd+1) + 64 * 65) * 4 + 384 * 4 = 84736 (hd 64) / 150272 (hd 128)
//    Scores are recomputed in both (the price of no atomics).
// 5. axo_attn_merge_f32 (o1, l1, o2, l2, o, l, B, S, nh, hd): o[B,S,nh,hd],
//    l[B,nh,S]. 1-D, block 256, any grid (grid-stride, one warp per
//    (b, i, h) row, lanes over hd). o may alias o1 or o2 and l may alias l1
//    or l2 (a running merge in place).
// attention_tc.cuh has tensor-core versions of 1, 3, 4 (bf16, same
// signatures and results; AXO_CUDA_ATTN=tc).
// Kernels 1, 3, 4 exceed 48 KiB of shared memory: set
// cudaFuncAttributeMaxDynamicSharedMemorySize first (all fit sm_80's 163 KiB).
// Every output element is written by exactly one thread; fixed-order sums,
// no atomics: same inputs + same launch -> same bits.

// Bit 4 i + j: the pair at tile row ty + 16 i, column tx + 16 j is visible.
// Rows are queries and columns keys, or (KROWS) rows keys and columns
// queries. sq/iq: staged seg/idx of queries q0.., sk/ik: of keys k0..
template <bool KROWS>
__device__ __forceinline__ unsigned blk_vis(const int *sq, const int *iq, const int *sk, const int *ik, int q0, int Sq,
                                            int k0, int Sk, int causal, int tx, int ty) {
    unsigned vis = 0;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int a = ty + 16 * i, c = tx + 16 * j;
            const int qr = KROWS ? c : a, kc = KROWS ? a : c;
            if (q0 + qr < Sq && k0 + kc < Sk && sq[qr] == sk[kc] && ax_att_near(iq[qr], ik[kc], causal))
                vis |= 1u << (4 * i + j);
        }
    return vis;
}

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_blk_fwd_impl(const T *q, const T *k, const T *v, const int *segq, const int *segk,
                                                  const int *idxq, const int *idxk, float *out, float *lse, int Sq,
                                                  int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BK + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Qs = sm, *Ks = Qs + BQ * LD, *Vs = Ks + BK * LD, *Ps = Vs + BK * LD;
    int *sq = (int *)(Ps + BQ * LDP), *iq = sq + BQ, *sk = iq + BQ, *ik = sk + BK;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv);
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const T *kb = k + (i64)b * Sk * ks + (i64)kvh * HD, *vb = v + (i64)b * Sk * ks + (i64)kvh * HD;

    ax_load_tile<T, HD, BQ, LD>(Qs, q + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq);
    ax_blk_meta(sq, iq, segq, idxq, (i64)b * Sq, q0, Sq);

    float o[4][DJ], m[4], l[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -AXO_INF;
        l[i] = 0.0f;
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) o[i][jj] = 0.0f;
    }
    for (int k0 = 0; k0 < Sk; k0 += BK) {
        __syncthreads(); // the previous tile's K, V, P, key seg/idx are no longer read
        ax_blk_meta(sk, ik, segk, idxk, (i64)b * Sk, k0, Sk);
        __syncthreads();
        const unsigned vis = blk_vis<false>(sq, iq, sk, ik, q0, Sq, k0, Sk, causal, tx, ty);
        if (!__syncthreads_or(vis != 0u)) continue; // no visible pair: the tile changes nothing
        ax_load_tile<T, HD, BK, LD>(Ks, kb, ks, k0, Sk);
        ax_load_tile<T, HD, BK, LD>(Vs, vb, ks, k0, Sk);
        __syncthreads();
        float s[4][4];
        ax_tile_abt<HD, LD>(s, Qs, Ks, tx, ty);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = ty + 16 * i;
            float mt = -AXO_INF;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const bool ok = (vis >> (4 * i + j)) & 1u;
                if constexpr (CAP) s[i][j] = ok ? ax_softcap(s[i][j] * scale, softcap, ic) : -AXO_INF;
                else s[i][j] = ok ? s[i][j] * scale : -AXO_INF;
                mt = fmaxf(mt, s[i][j]);
            }
            mt = ax_max16(mt);
            const float mn = fmaxf(m[i], mt);
            float alpha = 1.0f, rs = 0.0f, p[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                p[j] = mn == -AXO_INF ? 0.0f : expf(s[i][j] - mn);
                rs += p[j];
            }
            if (mn != -AXO_INF) alpha = expf(m[i] - mn); // m = -inf -> 0
            rs = ax_sum16(rs);
            l[i] = l[i] * alpha + rs;
            m[i] = mn;
#pragma unroll
            for (int jj = 0; jj < DJ; jj++) o[i][jj] *= alpha;
#pragma unroll
            for (int j = 0; j < 4; j++) Ps[r * LDP + tx + 16 * j] = p[j];
        }
        __syncthreads();
        ax_tile_mma<BK, LDP, LD, DJ>(o, Ps, Vs, tx, ty);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = q0 + ty + 16 * i;
        if (r >= Sq) continue;
        const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        float *orow = out + ((i64)b * Sq + r) * qs + (i64)h * HD;
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) orow[tx + 16 * jj] = o[i][jj] * inv;
        if (tx == 0) lse[((i64)b * nh + h) * Sq + r] = l[i] > 0.0f ? m[i] + logf(l[i]) : -AXO_INF;
    }
    if constexpr (CAP) AX_CAP_MARK();
}

template <typename T>
__device__ __forceinline__ void attn_blk_pre_body(const T *out, const T *dout, float *D, i64 B, int Sq, int nh,
                                                  int hd) {
    const i64 rows = B * Sq * nh;
    const int lane = threadIdx.x & 31;
    const i64 warps = ax_nthreads() >> 5;
    for (i64 r = ax_tid() >> 5; r < rows; r += warps) { // r = (b Sq + i) nh + h
        const T *o = out + r * hd, *g = dout + r * hd;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32) s = fmaf(ax_ld(g + d), ax_ld(o + d), s);
        s = ax_warp_sum(s);
        if (lane == 0) {
            const i64 bs = r / nh, h = r - bs * nh, b = bs / Sq, i = bs - b * Sq;
            D[(b * nh + h) * Sq + i] = s;
        }
    }
}

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_blk_dkdv_impl(const T *q, const T *k, const T *v, const int *segq,
                                                   const int *segk, const int *idxq, const int *idxk, const T *dout,
                                                   const float *lse, const float *D, float *dk, float *dv, int Sq,
                                                   int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BQ + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Ks = sm, *Vs = Ks + BK * LD, *Qs = Vs + BK * LD, *Gs = Qs + BQ * LD, *Ps = Gs + BQ * LD;
    float *lse_s = Ps + BK * LDP, *D_s = lse_s + BQ;
    int *sq = (int *)(D_s + BQ), *iq = sq + BQ, *sk = iq + BQ, *ik = sk + BK;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int k0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z, grp = nh / nkv;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;

    ax_load_tile<T, HD, BK, LD>(Ks, k + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk);
    ax_load_tile<T, HD, BK, LD>(Vs, v + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk);
    ax_blk_meta(sk, ik, segk, idxk, (i64)b * Sk, k0, Sk);

    float dka[4][DJ], dva[4][DJ];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) dka[i][jj] = dva[i][jj] = 0.0f;

    for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
        const T *qb = q + (i64)b * Sq * qs + (i64)h * HD, *gb = dout + (i64)b * Sq * qs + (i64)h * HD;
        const float *lseb = lse + ((i64)b * nh + h) * Sq, *Db = D + ((i64)b * nh + h) * Sq;
        for (int q0 = 0; q0 < Sq; q0 += BQ) {
            __syncthreads(); // the previous tile's Q, dout, dS, query seg/idx/lse/D are no longer read
            ax_blk_meta(sq, iq, segq, idxq, (i64)b * Sq, q0, Sq);
            ax_load_vec(lse_s, lseb, q0, BQ, Sq);
            ax_load_vec(D_s, Db, q0, BQ, Sq);
            __syncthreads();
            const unsigned vis = blk_vis<true>(sq, iq, sk, ik, q0, Sq, k0, Sk, causal, tx, ty);
            if (!__syncthreads_or(vis != 0u)) continue;
            ax_load_tile<T, HD, BQ, LD>(Qs, qb, qs, q0, Sq);
            ax_load_tile<T, HD, BQ, LD>(Gs, gb, qs, q0, Sq);
            __syncthreads();
            float p[4][4], dp[4][4];
            ax_tile_abt<HD, LD>(p, Ks, Qs, tx, ty); // rows: keys, cols: queries
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const int qc = tx + 16 * j;
                    const bool ok = (vis >> (4 * i + j)) & 1u;
                    if constexpr (CAP) { // P^T to shared memory (dV), P^T (1 - t^2) stays for dS^T
                        float dc;
                        const float x = ax_softcap_d(p[i][j] * scale, softcap, ic, dc);
                        const float pv = ok ? expf(x - lse_s[qc]) : 0.0f;
                        Ps[(ty + 16 * i) * LDP + qc] = pv;
                        p[i][j] = pv * dc;
                    } else {
                        p[i][j] = ok ? expf(p[i][j] * scale - lse_s[qc]) : 0.0f;
                        Ps[(ty + 16 * i) * LDP + qc] = p[i][j];
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
    ax_store_rows<float, DJ>(dk + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk, dka, scale, tx, ty);
    ax_store_rows<float, DJ>(dv + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk, dva, 1.0f, tx, ty);
    if constexpr (CAP) AX_CAP_MARK();
}

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_blk_dq_impl(const T *q, const T *k, const T *v, const int *segq, const int *segk,
                                                 const int *idxq, const int *idxk, const T *dout, const float *lse,
                                                 const float *D, float *dq, int Sq, int Sk, int nh, int nkv,
                                                 float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BK + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Qs = sm, *Gs = Qs + BQ * LD, *Ks = Gs + BQ * LD, *Vs = Ks + BK * LD, *Ps = Vs + BK * LD;
    float *lse_s = Ps + BQ * LDP, *D_s = lse_s + BQ;
    int *sq = (int *)(D_s + BQ), *iq = sq + BQ, *sk = iq + BQ, *ik = sk + BK;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv);
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const T *kb = k + (i64)b * Sk * ks + (i64)kvh * HD, *vb = v + (i64)b * Sk * ks + (i64)kvh * HD;

    ax_load_tile<T, HD, BQ, LD>(Qs, q + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq);
    ax_load_tile<T, HD, BQ, LD>(Gs, dout + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq);
    ax_load_vec(lse_s, lse + ((i64)b * nh + h) * Sq, q0, BQ, Sq);
    ax_load_vec(D_s, D + ((i64)b * nh + h) * Sq, q0, BQ, Sq);
    ax_blk_meta(sq, iq, segq, idxq, (i64)b * Sq, q0, Sq);

    float dqa[4][DJ];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) dqa[i][jj] = 0.0f;

    for (int k0 = 0; k0 < Sk; k0 += BK) {
        __syncthreads(); // the previous tile's K, V, dS, key seg/idx are no longer read
        ax_blk_meta(sk, ik, segk, idxk, (i64)b * Sk, k0, Sk);
        __syncthreads();
        const unsigned vis = blk_vis<false>(sq, iq, sk, ik, q0, Sq, k0, Sk, causal, tx, ty);
        if (!__syncthreads_or(vis != 0u)) continue;
        ax_load_tile<T, HD, BK, LD>(Ks, kb, ks, k0, Sk);
        ax_load_tile<T, HD, BK, LD>(Vs, vb, ks, k0, Sk);
        __syncthreads();
        float s[4][4], dp[4][4];
        ax_tile_abt<HD, LD>(s, Qs, Ks, tx, ty);
        ax_tile_abt<HD, LD>(dp, Gs, Vs, tx, ty);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int qr = ty + 16 * i;
                const bool ok = (vis >> (4 * i + j)) & 1u;
                if constexpr (CAP) {
                    float dc;
                    const float x = ax_softcap_d(s[i][j] * scale, softcap, ic, dc);
                    const float p = ok ? expf(x - lse_s[qr]) * dc : 0.0f;
                    Ps[qr * LDP + tx + 16 * j] = p * (dp[i][j] - D_s[qr]);
                } else {
                    const float p = ok ? expf(s[i][j] * scale - lse_s[qr]) : 0.0f;
                    Ps[qr * LDP + tx + 16 * j] = p * (dp[i][j] - D_s[qr]);
                }
            }
        __syncthreads();
        ax_tile_mma<BK, LDP, LD, DJ>(dqa, Ps, Ks, tx, ty); // dQ += dS K
    }
    ax_store_rows<float, DJ>(dq + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq, dqa, scale, tx, ty);
    if constexpr (CAP) AX_CAP_MARK();
}

// softcap 0: the bodies without the cap (common.cuh)
template <typename T, int HD>
__device__ __forceinline__ void attn_blk_fwd_body(const T *q, const T *k, const T *v, const int *segq, const int *segk,
                                                  const int *idxq, const int *idxk, float *out, float *lse, int Sq,
                                                  int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        attn_blk_fwd_impl<T, HD, true>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal,
                                       softcap);
    else
        attn_blk_fwd_impl<T, HD, false>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal,
                                        softcap);
}
template <typename T, int HD>
__device__ __forceinline__ void attn_blk_dkdv_body(const T *q, const T *k, const T *v, const int *segq,
                                                   const int *segk, const int *idxq, const int *idxk, const T *dout,
                                                   const float *lse, const float *D, float *dk, float *dv, int Sq,
                                                   int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        attn_blk_dkdv_impl<T, HD, true>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale,
                                        causal, softcap);
    else
        attn_blk_dkdv_impl<T, HD, false>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale,
                                         causal, softcap);
}
template <typename T, int HD>
__device__ __forceinline__ void attn_blk_dq_body(const T *q, const T *k, const T *v, const int *segq, const int *segk,
                                                 const int *idxq, const int *idxk, const T *dout, const float *lse,
                                                 const float *D, float *dq, int Sq, int Sk, int nh, int nkv,
                                                 float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        attn_blk_dq_impl<T, HD, true>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale,
                                      causal, softcap);
    else
        attn_blk_dq_impl<T, HD, false>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale,
                                       causal, softcap);
}

#define AXO_ATT_BLK(SFX, T, HD)                                                                                  \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT)                                                     \
        axo_attn_blk_fwd_##SFX(const T *q, const T *k, const T *v, const int *segq, const int *segk,            \
                               const int *idxq, const int *idxk, float *out, float *lse, int Sq, int Sk, int nh, \
                               int nkv, float scale, int causal, float softcap) {                                \
        attn_blk_fwd_body<T, HD>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal,      \
                                 softcap);                                                                       \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT) axo_attn_blk_bwd_dkdv_##SFX(                       \
        const T *q, const T *k, const T *v, const int *segq, const int *segk, const int *idxq, const int *idxk,  \
        const T *dout, const float *lse, const float *D, float *dk, float *dv, int Sq, int Sk, int nh, int nkv,  \
        float scale, int causal, float softcap) {                                                                \
        attn_blk_dkdv_body<T, HD>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale, \
                                  causal, softcap);                                                              \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT) axo_attn_blk_bwd_dq_##SFX(                         \
        const T *q, const T *k, const T *v, const int *segq, const int *segk, const int *idxq, const int *idxk,  \
        const T *dout, const float *lse, const float *D, float *dq, int Sq, int Sk, int nh, int nkv, float scale, \
        int causal, float softcap) {                                                                             \
        attn_blk_dq_body<T, HD>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale,       \
                                causal, softcap);                                                                \
    }
AXO_ATT_BLK(hd64_f32, float, 64)
AXO_ATT_BLK(hd64_bf16, bf16, 64)
AXO_ATT_BLK(hd128_f32, float, 128)
AXO_ATT_BLK(hd128_bf16, bf16, 128)

extern "C" __global__ void __launch_bounds__(256) axo_attn_blk_bwd_preprocess_f32(const float *out, const float *dout,
                                                                                  float *D, i64 B, int Sq, int nh,
                                                                                  int hd) {
    attn_blk_pre_body(out, dout, D, B, Sq, nh, hd);
}
extern "C" __global__ void __launch_bounds__(256) axo_attn_blk_bwd_preprocess_bf16(const bf16 *out, const bf16 *dout,
                                                                                   float *D, i64 B, int Sq, int nh,
                                                                                   int hd) {
    attn_blk_pre_body(out, dout, D, B, Sq, nh, hd);
}

// One warp per row r = (b S + i) nh + h. Every lane reads l1/l2 of the row
// before __syncwarp and lane 0 writes l after it, and each o element is read
// and written by one lane, so o/l may alias o1/l1 or o2/l2.
extern "C" __global__ void __launch_bounds__(256) axo_attn_merge_f32(const float *o1, const float *l1,
                                                                     const float *o2, const float *l2, float *o,
                                                                     float *l, i64 B, int S, int nh, int hd) {
    const i64 rows = B * S * nh;
    const int lane = threadIdx.x & 31;
    const i64 warps = ax_nthreads() >> 5;
    for (i64 r = ax_tid() >> 5; r < rows; r += warps) {
        const i64 bs = r / nh, h = r - bs * nh, b = bs / S, i = bs - b * S;
        const i64 li = (b * nh + h) * S + i, oi = r * hd;
        const double a = (double)l1[li], c = (double)l2[li];
        __syncwarp();
        const double mx = a > c ? a : c;
        if (mx == -(double)AXO_INF) { // neither block saw a key
            for (int d = lane; d < hd; d += 32) o[oi + d] = 0.0f;
            if (lane == 0) l[li] = -AXO_INF;
            continue;
        }
        const double w1 = exp(a - mx), w2 = exp(c - mx), sum = __dadd_rn(w1, w2);
        for (int d = lane; d < hd; d += 32) {
            const double x = __dadd_rn(__dmul_rn(w1, (double)o1[oi + d]), __dmul_rn(w2, (double)o2[oi + d]));
            o[oi + d] = (float)__ddiv_rn(x, sum);
        }
        if (lane == 0) l[li] = (float)__dadd_rn(mx, log(sum));
    }
}
