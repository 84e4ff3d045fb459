// attention_tc.cuh — tensor-core FlashAttention-2 forward and backward for
// bf16, head_dim 64 and 128 (mma.sync.m16n8k16 bf16 x bf16 -> fp32).
//
// Semantics exactly those of attention_fwd.cuh / attention_bwd.cuh and
// ck_attention_{fwd,bwd}_* (runtime/cpu_kernels.h): q[B,S,nh,hd],
// k,v[B,S,nkv,hd], seg[B,S] (int32, NULL = one segment); query head h reads
// kv head h / (nh/nkv); query i sees key j iff (!causal || j <= i) and
// seg[i] == seg[j]; s_ij = scale q_i.k_j; out (bf16), lse (fp32, natural
// log); backward D_i = dout_i.out_i (axo_attn_bwd_preprocess_bf16 of
// attention_bwd.cuh), P_ij = exp(s_ij - lse_i), dS_ij = P_ij (dP_ij - D_i),
// dq, dk, dv (bf16; dk/dv summed over the query heads of a kv head).
// Accumulation and softmax in fp32. Two extra roundings compared with the
// CUDA-core kernels, as in FlashAttention-2: P (forward) and P, dS
// (backward) are rounded to bf16 before they enter the second matrix
// product. The softmax runs in base 2: x = s * scale * log2(e),
// p = exp2(x - max); lse = (max + log2(sum)) * ln(2). softcap > 0 (Gemma 2):
// the score is capped first, x = softcap tanh(s * scale / softcap) * log2(e)
// (fp32), and the backward's dS_ij carries the factor 1 - tanh^2 (in fp32,
// before dS is rounded to bf16); softcap 0: none, the code and bits of before
// (common.cuh). Every entry point takes softcap after causal.
//
// mma.sync.m16n8k16.row.col fragments (PTX ISA; g = lane / 4, t = lane % 4;
// each 32-bit register holds two bf16, the lower column/row index in the low
// half):
//   A 16x16: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..],
//            a3 = A[g+8][2t+8..]
//   B 16x8:  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//   C 16x8:  c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][2t], C[g+8][2t+1]
// A C tile pair (columns 16kk..16kk+15) is, rounded to bf16, exactly the A
// fragment of k-step kk, so P / dS go from one product into the next in
// registers (forward, dQ kernel).
//
// Preconditions the kernels do not check: sm_80+ (bf16 mma.sync, cp.async;
// the executor keeps older GPUs on the CUDA-core kernels) and 4-byte aligned
// output pointers (bf16 results are stored in pairs; the executor's arena
// slots and globals are 256-byte aligned). Misaligned inputs are fine: they
// take the plain-load path instead of cp.async.
//
// Shared memory tiles are bf16, rows padded to HD + 8 elements (144 / 272
// bytes: 16-byte aligned rows for cp.async, and the 8 rows g = 0..7 a
// fragment load touches start 4 banks apart, so the 32 lanes' 32-bit loads
// hit 32 different banks). K/V (forward, dQ) and Q/dout (dK/dV) tiles are
// double-buffered: tile it+1 is fetched with cp.async (zero-filled past S)
// while tile it is computed. A tensor whose base is not 16-byte aligned
// falls back to plain loads (same buffers, same order of arithmetic).
//
// 1. axo_attn_tc_fwd_hd{64,128}_bf16: grid (ceil(S/64), nh, B), block 128
//    (4 warps). One CTA = 64 queries of one head; warp w owns query rows
//    16w..16w+15. Q staged once; per 64-key tile from the segment start of
//    the tile's first query (packed rows, below) up to the causal limit:
//    S = Q K^T (8 C tiles per warp), mask, online softmax (row max over the
//    4 lanes of a quad by xor shuffles; per-thread partial row sums, summed
//    over the quad at the end), O = O * alpha + P V (HD/8 C tiles).
//    Shared: Q, 2 x (K, V) tiles (64 + 4 * 64) (HD + 8) * 2, 2 x key
//    segment ids 2 * 64 * 4 bytes
//    = 46592 (hd 64) / 87552 (hd 128).
// 2. axo_attn_tc_bwd_dkdv_hd{64,128}_bf16: grid (ceil(S/64), nkv, B), block
//    256 (8 warps). One CTA owns 64 keys of one kv head: K, V staged once;
//    loops over the query heads of the group (head order) and their 64-query
//    tiles from the causal start to the segment end of the CTA's last key
//    (packed rows, below; query order). Phase A: warp (kw = w % 4,
//    hw = w / 4) computes S^T and dP^T for keys 16kw..+15 x queries
//    32hw..+31 (K Q^T, V dout^T), then P^T and dS^T = P^T (dP^T - D), written
//    to shared memory as bf16. Phase B: warp (kw, hw) accumulates dV += P^T
//    dout and dK += dS^T Q for keys 16kw..+15 x head-dim columns
//    hw HD/2 ..+HD/2 in registers. dK scaled by `scale` at the end.
//    Shared: K, V, 2 x (Q, dout) tiles 6 * 64 (HD + 8) * 2, P^T and dS^T
//    2 * 64 * 72 * 2, 2 x (lse, D, seg) 2 * 3 * 64 * 4 bytes
//    = 75264 (hd 64) / 124416 (hd 128).
// 3. axo_attn_tc_bwd_dq_hd{64,128}_bf16: grid (ceil(S/64), nh, B), block
//    128 (4 warps). One CTA owns 64 queries of one head (warp w: rows
//    16w..+15): Q, dout, lse, D staged once; per key tile from the segment
//    start of the tile's first query (packed rows, below) up to the causal
//    limit S = Q K^T, dP = dout V^T, dS = P (dP - D) in registers, dQ += dS K.
//    dQ scaled by `scale` at the end.
//    Shared: Q, dout, 2 x (K, V) tiles 6 * 64 (HD + 8) * 2, 2 x key segment
//    ids 2 * 64 * 4 bytes = 55808 (hd 64) / 104960 (hd 128).
// Packed rows (1-3; common.cuh: every seg row non-decreasing): forward and
// dQ start at the key tile holding lower_bound(seg[q0]) (ax_seg_kbeg, a
// 16-ary search of the seg row by every thread after Q is staged and before
// the first K/V tile is; the pipeline, its prefetch and its buffer parity
// count from that tile); dK/dV ends its query tiles (of every head of the
// group) after the one holding upper_bound(seg[kl]) - 1, kl the CTA's last
// key (ax_seg_qend). The tiles left out are fully masked for the whole CTA.
// Forward and dQ: they would come first, where a fully masked tile leaves
// m = -inf, l = +0 (alpha = exp2(-inf) = 0, p = 0), O = +0 and dQ = +0 (mma
// of +-0 products into +0): bit-identical for finite inputs. dK/dV: they
// would come last and add +-0 products, which changes nothing unless an
// accumulator is -0 (every visible contribution underflowed to -0) and the
// mma turns -0 + +0 into +0: the sign of a zero is the one possible
// difference. The dQ kernel for hd 64 is capped at 128 registers (launch
// bounds below), as it was without the run-time start.
// Ring-attention blocks (sequence parallelism): the same three kernels for
// attention_blk.cuh's ops, with its semantics and signatures exactly (q,k,v
// [B,Sq|Sk,..] bf16, segq/segk/idxq/idxk int32, NULL seg = one segment, NULL
// idx = position; query i sees key j iff segq[i] == segk[j] and (!causal ||
// idxk[j] <= idxq[i]); out, lse, dq, dk, dv fp32; the backward against the
// merged whole-row out/lse, D from axo_attn_blk_bwd_preprocess_bf16):
// 4. axo_attn_tc_blk_fwd_hd{64,128}_bf16: grid (ceil(Sq/64), nh, B), 128.
// 5. axo_attn_tc_blk_bwd_dkdv_hd{64,128}_bf16: grid (ceil(Sk/64), nkv, B),
//    256; query tiles of every head of the group, all of Sq.
// 6. axo_attn_tc_blk_bwd_dq_hd{64,128}_bf16: grid (ceil(Sq/64), nh, B), 128.
// Tiles, warps, per-tile math and shared memory as 1-3 (the single seg/idx
// buffer takes the place of the whole-row kernels' segment ids). The mask
// follows token indices, so there is no causal tile bound: before fetching
// a tile the CTA scans ahead (tcb_next): stage the next tile's 64 seg/idx
// entries, each thread evaluates its fragment's pairs into a bit mask,
// __syncthreads_or; tiles with no visible pair are never loaded or
// computed, and the bits of the found tile mask its scores. A row that sees
// no key gets out 0, lse -inf (dq 0); a key no query sees dk = dv = 0.
// All need cudaFuncAttributeMaxDynamicSharedMemorySize above 48 KiB (fits
// sm_80's 163 KiB).
//
// Deterministic: every output element is owned by one thread of one CTA and
// written once; no atomics; the order of every sum (mma.sync's, the quad
// shuffles, the loops over tiles and heads) depends only on the shapes, so
// the same inputs and launch give the same bits.

#define AXO_TC_LOG2E 1.4426950408889634f
#define AXO_TC_LN2 0.6931471805599453f

#ifndef AXO_TC_EMU // tests/unit/emu/cuda_bf16.h supplies host versions of these
// 16 bytes global -> shared, asynchronous; bytes < 16 zero-fills the rest.
__device__ __forceinline__ void tc_cp16(void *smem, const void *gmem, int bytes) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const size_t gp = __cvta_generic_to_global(gmem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gp), "r"(bytes) : "memory");
}
__device__ __forceinline__ void tc_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most one committed group (the newest) is still in flight.
__device__ __forceinline__ void tc_cp_wait1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
#endif

__device__ __forceinline__ float tc_quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
// Same bits in all 4 lanes: each step adds the same two partials.
__device__ __forceinline__ float tc_quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// dst[r][0..HD) (row pitch HD + 8) = rows row0 + r of a [.., rstride] bf16
// tensor at base, r < ROWS; rows at or past S are zeros. async: cp.async
// (base 16-byte aligned), else plain loads.
template <int HD, int ROWS, int NT>
__device__ __forceinline__ void tc_stage(bf16 *dst, const bf16 *base, i64 rstride, int row0, int S, bool async) {
    constexpr int CPR = HD / 8, LDS = HD + 8;
    for (int idx = threadIdx.x; idx < ROWS * CPR; idx += NT) {
        const int r = idx / CPR, c = (idx % CPR) * 8;
        const bool in = row0 + r < S;
        const bf16 *src = base + (in ? (i64)(row0 + r) * rstride + c : (i64)0);
        bf16 *d = dst + r * LDS + c;
        if (async) {
            tc_cp16(d, src, in ? 16 : 0);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) d[e] = in ? src[e] : __float2bfloat16_rn(0.0f);
        }
    }
}

__device__ __forceinline__ bool tc_ok(int qi, int kj, int S, int causal, const int *seg, int sq, int sk) {
    return qi < S && kj < S && ax_att_near(qi, kj, causal) && (!seg || sq == sk);
}

// ---- per-tile math, shared by the whole-row and the ring-block kernels ------
// vis(j, e): is element e of C tile j of this thread visible (a bool); the
// tiles' rows/columns are given at each function.

// Forward, one 64-key tile for the 16 query rows r0.. of this warp (C tile j:
// keys 8j..8j+7; element e: row r0 + g + 8 (e >> 1), key 8j + 2t + (e & 1)):
// S = Q K^T, mask, online softmax in base 2 (running max m, per-thread
// partial sums l), O = O alpha + P V.
template <int HD, bool CAP, typename Vis>
__device__ __forceinline__ void tc_fwd_tile(float (&o)[HD / 8][4], float (&m)[2], float (&l)[2], const bf16 *Qs,
                                            const bf16 *Ks, const bf16 *Vs, int r0, float sl2, float scale,
                                            float softcap, float ic, const Vis &vis) {
    constexpr int LDS = HD + 8, ND = HD / 8, KD = HD / 16;
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KD; kk++) {
        tc_u32 a[4];
        tc_ldA(a, Qs, LDS, r0, 16 * kk);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            tc_u32 bb[2];
            tc_ldB_nk(bb, Ks, LDS, 8 * j, 16 * kk);
            tc_mma(s[j], a, bb);
        }
    }
    float mx[2] = {-AXO_INF, -AXO_INF};
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if constexpr (CAP) s[j][e] = vis(j, e) ? ax_softcap(s[j][e] * scale, softcap, ic) * AXO_TC_LOG2E : -AXO_INF;
            else s[j][e] = vis(j, e) ? s[j][e] * sl2 : -AXO_INF;
            mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
        }
    float alpha[2], base[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const float mn = fmaxf(m[i], tc_quad_max(mx[i]));
        base[i] = mn == -AXO_INF ? 0.0f : mn; // a row with nothing visible yet: p = 0
        alpha[i] = exp2f(m[i] - base[i]);     // m = -inf -> 0
        m[i] = mn;
        l[i] *= alpha[i];
    }
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            s[j][e] = exp2f(s[j][e] - base[e >> 1]);
            l[e >> 1] += s[j][e];
        }
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[nd][e] *= alpha[e >> 1];
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        const tc_u32 a[4] = {tc_pack(s[2 * kk][0], s[2 * kk][1]), tc_pack(s[2 * kk][2], s[2 * kk][3]),
                             tc_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), tc_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            tc_u32 bb[2];
            tc_ldB_kn(bb, Vs, LDS, 16 * kk, 8 * nd);
            tc_mma(o[nd], a, bb);
        }
    }
}

// dQ, one 64-key tile for the 16 query rows r0.. of this warp (tiles as in
// tc_fwd_tile): S = Q K^T, dP = dout V^T, dS = P (dP - D) with P = exp2(S
// scale log2 e - lse log2 e), dQ += dS K. lse2 = lse log2 e and Dr of the
// thread's rows g, g + 8.
template <int HD, bool CAP, typename Vis>
__device__ __forceinline__ void tc_dq_tile(float (&dqa)[HD / 8][4], const bf16 *Qs, const bf16 *Gs, const bf16 *Ks,
                                           const bf16 *Vs, int r0, float sl2, float scale, float softcap, float ic,
                                           const float (&lse2)[2], const float (&Dr)[2], const Vis &vis) {
    constexpr int LDS = HD + 8, ND = HD / 8, KD = HD / 16;
    float s[8][4], dp[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KD; kk++) {
        tc_u32 a[4], ag[4];
        tc_ldA(a, Qs, LDS, r0, 16 * kk);
        tc_ldA(ag, Gs, LDS, r0, 16 * kk);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            tc_u32 bb[2];
            tc_ldB_nk(bb, Ks, LDS, 8 * j, 16 * kk);
            tc_mma(s[j], a, bb); // S = Q K^T
            tc_ldB_nk(bb, Vs, LDS, 8 * j, 16 * kk);
            tc_mma(dp[j], ag, bb); // dP = dout V^T
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = e >> 1;
            if constexpr (CAP) {
                float dc;
                const float x = ax_softcap_d(s[j][e] * scale, softcap, ic, dc) * AXO_TC_LOG2E;
                const float p = vis(j, e) ? exp2f(x - lse2[i]) * dc : 0.0f;
                s[j][e] = p * (dp[j][e] - Dr[i]); // dS
            } else {
                const float p = vis(j, e) ? exp2f(s[j][e] * sl2 - lse2[i]) : 0.0f;
                s[j][e] = p * (dp[j][e] - Dr[i]); // dS
            }
        }
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        const tc_u32 a[4] = {tc_pack(s[2 * kk][0], s[2 * kk][1]), tc_pack(s[2 * kk][2], s[2 * kk][3]),
                             tc_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), tc_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            tc_u32 bb[2];
            tc_ldB_kn(bb, Ks, LDS, 16 * kk, 8 * nd);
            tc_mma(dqa[nd], a, bb); // dQ += dS K
        }
    }
}

// dK/dV, one 64-query tile against the CTA's 64 keys, 8 warps (kw = w % 4,
// hw = w / 4). Phase A: keys 16kw.. x queries 32hw.. (C tile j: queries
// 32hw + 8j..; element e: key 16kw + g + 8 (e >> 1), query 32hw + 8j + 2t +
// (e & 1)): S^T = K Q^T, dP^T = V dout^T, P^T and dS^T = P^T (dP^T - D) to
// shared memory as bf16; a barrier; phase B: keys 16kw.. x head-dim columns
// hw HD/2..: dV += P^T dout, dK += dS^T Q. lse_s (times log2 e), D_s: the
// tile's queries. Every thread of the CTA calls it (one barrier inside).
// Used by the ring-block kernel only: tc_dkdv_body keeps the same steps
// inline, where they compile to fewer registers (126 vs 146 for hd 64 on
// sm_80: 2 CTAs per SM instead of 1).
template <int HD, bool CAP, typename Vis>
__device__ __forceinline__ void tc_dkdv_tile(float (&dka)[HD / 16][4], float (&dva)[HD / 16][4], const bf16 *Ks,
                                             const bf16 *Vs, const bf16 *Qs, const bf16 *Gs, bf16 *Ps, bf16 *dSs,
                                             const float *lse_s, const float *D_s, float sl2, float scale,
                                             float softcap, float ic, const Vis &vis) {
    constexpr int LDS = HD + 8, LDP = 64 + 8, KD = HD / 16, NH = HD / 16;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int kw = warp & 3, hw = warp >> 2;
    float st[4][4], dpt[4][4];
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[j][e] = dpt[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KD; kk++) {
        tc_u32 ak[4], av[4];
        tc_ldA(ak, Ks, LDS, 16 * kw, 16 * kk);
        tc_ldA(av, Vs, LDS, 16 * kw, 16 * kk);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            tc_u32 bb[2];
            tc_ldB_nk(bb, Qs, LDS, 32 * hw + 8 * j, 16 * kk);
            tc_mma(st[j], ak, bb); // S^T = K Q^T
            tc_ldB_nk(bb, Gs, LDS, 32 * hw + 8 * j, 16 * kk);
            tc_mma(dpt[j], av, bb); // dP^T = V dout^T
        }
    }
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int qc = 32 * hw + 8 * j + 2 * t, kr = 16 * kw + g + 8 * i;
            float p[2], ds[2];
#pragma unroll
            for (int e2 = 0; e2 < 2; e2++) {
                const int e = 2 * i + e2, c = qc + e2;
                if constexpr (CAP) {
                    float dc;
                    const float x = ax_softcap_d(st[j][e] * scale, softcap, ic, dc) * AXO_TC_LOG2E;
                    p[e2] = vis(j, e) ? exp2f(x - lse_s[c]) : 0.0f;
                    ds[e2] = p[e2] * dc * (dpt[j][e] - D_s[c]);
                } else {
                    p[e2] = vis(j, e) ? exp2f(st[j][e] * sl2 - lse_s[c]) : 0.0f;
                    ds[e2] = p[e2] * (dpt[j][e] - D_s[c]);
                }
            }
            *reinterpret_cast<tc_u32 *>(Ps + kr * LDP + qc) = tc_pack(p[0], p[1]);
            *reinterpret_cast<tc_u32 *>(dSs + kr * LDP + qc) = tc_pack(ds[0], ds[1]);
        }
    __syncthreads(); // P^T, dS^T complete
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        tc_u32 ap[4], as[4];
        tc_ldA(ap, Ps, LDP, 16 * kw, 16 * kk);
        tc_ldA(as, dSs, LDP, 16 * kw, 16 * kk);
#pragma unroll
        for (int nd = 0; nd < NH; nd++) {
            const int n0 = hw * (HD / 2) + 8 * nd;
            tc_u32 bb[2];
            tc_ldB_kn(bb, Gs, LDS, 16 * kk, n0);
            tc_mma(dva[nd], ap, bb); // dV += P^T dout
            tc_ldB_kn(bb, Qs, LDS, 16 * kk, n0);
            tc_mma(dka[nd], as, bb); // dK += dS^T Q
        }
    }
}

// ---- whole-row kernels ------------------------------------------------------
// Key tile k0 of the forward and dQ kernels into slot buf of their double buffers: its K and V rows (Ks0, Vs0:
// [2][64][HD + 8]) and its segment ids (segk0: [2][64]; 0 past S or without seg).
template <int HD>
__device__ __forceinline__ void tc_stage_kv(bf16 *Ks0, bf16 *Vs0, int *segk0, int buf, const bf16 *kb, const bf16 *vb,
                                            i64 ks, const int *segb, int k0, int S, bool async) {
    constexpr int BK = 64, NT = 128, LDS = HD + 8;
    tc_stage<HD, BK, NT>(Ks0 + buf * BK * LDS, kb, ks, k0, S, async);
    tc_stage<HD, BK, NT>(Vs0 + buf * BK * LDS, vb, ks, k0, S, async);
    if (threadIdx.x < BK) segk0[buf * BK + threadIdx.x] = segb && k0 + (int)threadIdx.x < S ? segb[k0 + threadIdx.x] : 0;
}

template <int HD, bool CAP>
__device__ __forceinline__ void tc_fwd_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg, bf16 *out,
                                            float *lse, int S, int nh, int nkv, float scale, int causal, float softcap,
                                            const void *sinks, int sbf) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 128, LDS = HD + 8, ND = HD / 8;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Qs = reinterpret_cast<bf16 *>(tc_smem);
    bf16 *Ks0 = Qs + BQ * LDS, *Vs0 = Ks0 + 2 * BK * LDS; // [2][BK][LDS] each
    int *segk0 = reinterpret_cast<int *>(Vs0 + 2 * BK * LDS); // [2][BK]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv), r0 = 16 * warp;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const bf16 *kb = k + (i64)b * S * ks + (i64)kvh * HD, *vb = v + (i64)b * S * ks + (i64)kvh * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v);
    const float sl2 = scale * AXO_TC_LOG2E;
    int qi[2], sq[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        qi[i] = q0 + r0 + g + 8 * i;
        sq[i] = segb && qi[i] < S ? segb[qi[i]] : 0;
    }

    tc_stage<HD, BQ, NT>(Qs, q + (i64)b * S * qs + (i64)h * HD, qs, q0, S, async);
    // key tiles kbeg, kbeg + 64, ... below kend (packed rows: kbeg skips the tiles before seg[q0]'s segment)
    const int kend = causal ? min(S, q0 + BQ) : S, kbeg = ax_seg_kbeg<BK>(segb, q0, causal);
    const int nkt = (kend - kbeg + BK - 1) / BK;
    tc_stage_kv<HD>(Ks0, Vs0, segk0, 0, kb, vb, ks, segb, kbeg, S, async);
    tc_cp_commit();

    float o[ND][4], m[2] = {-AXO_INF, -AXO_INF}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[nd][e] = 0.0f;

    for (int it = 0; it < nkt; it++) {
        const int k0 = kbeg + it * BK, cur = it & 1;
        if (it + 1 < nkt) { // prefetch the next tile into the other buffer (free since the end of it - 1)
            const int nx = cur ^ 1, k1 = k0 + BK;
            tc_stage_kv<HD>(Ks0, Vs0, segk0, nx, kb, vb, ks, segb, k1, S, async);
        }
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads(); // tile it (and Q) visible to every thread
        const int *segk = segk0 + cur * BK;
        tc_fwd_tile<HD, CAP>(o, m, l, Qs, Ks0 + cur * BK * LDS, Vs0 + cur * BK * LDS, r0, sl2, scale, softcap, ic,
                             [&](int j, int e) {
                                 const int c = 8 * j + 2 * t + (e & 1);
                                 return tc_ok(qi[e >> 1], k0 + c, S, causal, segb, sq[e >> 1], segk[c]);
                             });
        __syncthreads(); // buffer cur is read; the next iteration's prefetch may overwrite it
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const float L = tc_quad_sum(l[i]);
        float inv = L > 0.0f ? 1.0f / L : 0.0f, lv = L > 0.0f ? (m[i] + log2f(L)) * AXO_TC_LN2 : -AXO_INF;
        if (sinks) { // gpt-oss's sink (log2 units here), folded in before the single rounding of out
            const float sk = (float)ax_sink_ld(sinks, sbf, h) * AXO_TC_LOG2E, mn = fmaxf(m[i], sk);
            const float c = L > 0.0f ? exp2f(m[i] - mn) : 0.0f, lt = L * c + exp2f(sk - mn);
            inv = c / lt, lv = (mn + log2f(lt)) * AXO_TC_LN2;
        }
        if (qi[i] >= S) continue;
        bf16 *orow = out + ((i64)b * S + qi[i]) * qs + (i64)h * HD + 2 * t;
#pragma unroll
        for (int nd = 0; nd < ND; nd++)
            *reinterpret_cast<tc_u32 *>(orow + 8 * nd) = tc_pack(o[nd][2 * i] * inv, o[nd][2 * i + 1] * inv);
        if (t == 0) lse[((i64)b * nh + h) * S + qi[i]] = lv;
    }
    if constexpr (CAP) AX_CAP_MARK();
}

template <int HD, bool CAP>
__device__ __forceinline__ void tc_dq_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg,
                                           const bf16 *dout, const float *lse, const float *D, bf16 *dq, int S,
                                           int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 128, LDS = HD + 8, ND = HD / 8;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Qs = reinterpret_cast<bf16 *>(tc_smem), *Gs = Qs + BQ * LDS;
    bf16 *Ks0 = Gs + BQ * LDS, *Vs0 = Ks0 + 2 * BK * LDS; // [2][BK][LDS] each
    int *segk0 = reinterpret_cast<int *>(Vs0 + 2 * BK * LDS); // [2][BK]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv), r0 = 16 * warp;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const bf16 *kb = k + (i64)b * S * ks + (i64)kvh * HD, *vb = v + (i64)b * S * ks + (i64)kvh * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v) && ax_al16(dout);
    const float sl2 = scale * AXO_TC_LOG2E;
    int qi[2], sq[2];
    float lse2[2], Dr[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        qi[i] = q0 + r0 + g + 8 * i;
        const bool in = qi[i] < S;
        const i64 row = ((i64)b * nh + h) * S + qi[i];
        sq[i] = segb && in ? segb[qi[i]] : 0;
        lse2[i] = in ? lse[row] * AXO_TC_LOG2E : 0.0f;
        Dr[i] = in ? D[row] : 0.0f;
    }

    tc_stage<HD, BQ, NT>(Qs, q + (i64)b * S * qs + (i64)h * HD, qs, q0, S, async);
    tc_stage<HD, BQ, NT>(Gs, dout + (i64)b * S * qs + (i64)h * HD, qs, q0, S, async);
    // key tiles kbeg, kbeg + 64, ... below kend (packed rows: kbeg skips the tiles before seg[q0]'s segment)
    const int kend = causal ? min(S, q0 + BQ) : S, kbeg = ax_seg_kbeg<BK>(segb, q0, causal);
    const int nkt = (kend - kbeg + BK - 1) / BK;
    tc_stage_kv<HD>(Ks0, Vs0, segk0, 0, kb, vb, ks, segb, kbeg, S, async);
    tc_cp_commit();

    float dqa[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) dqa[nd][e] = 0.0f;

    for (int it = 0; it < nkt; it++) {
        const int k0 = kbeg + it * BK, cur = it & 1;
        if (it + 1 < nkt) {
            const int nx = cur ^ 1, k1 = k0 + BK;
            tc_stage_kv<HD>(Ks0, Vs0, segk0, nx, kb, vb, ks, segb, k1, S, async);
        }
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads();
        const int *segk = segk0 + cur * BK;
        tc_dq_tile<HD, CAP>(dqa, Qs, Gs, Ks0 + cur * BK * LDS, Vs0 + cur * BK * LDS, r0, sl2, scale, softcap, ic,
                            lse2, Dr, [&](int j, int e) {
                                const int c = 8 * j + 2 * t + (e & 1);
                                return tc_ok(qi[e >> 1], k0 + c, S, causal, segb, sq[e >> 1], segk[c]);
                            });
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (qi[i] >= S) continue;
        bf16 *row = dq + ((i64)b * S + qi[i]) * qs + (i64)h * HD + 2 * t;
#pragma unroll
        for (int nd = 0; nd < ND; nd++)
            *reinterpret_cast<tc_u32 *>(row + 8 * nd) = tc_pack(dqa[nd][2 * i] * scale, dqa[nd][2 * i + 1] * scale);
    }
    if constexpr (CAP) AX_CAP_MARK();
}

// Q, dout rows of query tile `it` (head kvh*grp + it / nqt, queries qstart + (it % nqt) 64 ..) and their lse
// (times log2 e), D, segment ids into buffer set `buf` of the dK/dV kernel.
template <int HD>
__device__ __forceinline__ void tc_dkdv_stage(bf16 *Qs0, bf16 *Gs0, float *lse_s0, float *D_s0, int *segq0, int buf,
                                              int it, const bf16 *q, const bf16 *dout, const float *lse,
                                              const float *D, const int *segb, int b, int S, int nh, int kvh,
                                              int grp, int qstart, int nqt, bool async) {
    constexpr int BQ = 64, LDS = HD + 8;
    const int h = kvh * grp + it / nqt, q0 = qstart + (it % nqt) * BQ;
    const i64 qs = (i64)nh * HD, off = (i64)b * S * qs + (i64)h * HD;
    tc_stage<HD, BQ, 256>(Qs0 + buf * BQ * LDS, q + off, qs, q0, S, async);
    tc_stage<HD, BQ, 256>(Gs0 + buf * BQ * LDS, dout + off, qs, q0, S, async);
    const int r = threadIdx.x;
    if (r < BQ) {
        const bool in = q0 + r < S;
        const i64 row = ((i64)b * nh + h) * S + q0 + r;
        lse_s0[buf * BQ + r] = in ? lse[row] * AXO_TC_LOG2E : 0.0f;
        D_s0[buf * BQ + r] = in ? D[row] : 0.0f;
        segq0[buf * BQ + r] = segb && in ? segb[q0 + r] : 0;
    }
}

template <int HD, bool CAP>
__device__ __forceinline__ void tc_dkdv_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg,
                                             const bf16 *dout, const float *lse, const float *D, bf16 *dk, bf16 *dv,
                                             int S, int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 256, LDS = HD + 8, LDP = BQ + 8, KD = HD / 16, NH = HD / 16;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Ks = reinterpret_cast<bf16 *>(tc_smem), *Vs = Ks + BK * LDS;
    bf16 *Qs0 = Vs + BK * LDS, *Gs0 = Qs0 + 2 * BQ * LDS; // [2][BQ][LDS] each
    bf16 *Ps = Gs0 + 2 * BQ * LDS, *dSs = Ps + BK * LDP;   // [BK][LDP]: P^T, dS^T
    float *lse_s0 = reinterpret_cast<float *>(dSs + BK * LDP), *D_s0 = lse_s0 + 2 * BQ; // [2][BQ]
    int *segq0 = reinterpret_cast<int *>(D_s0 + 2 * BQ);                               // [2][BQ]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int kw = warp & 3, hw = warp >> 2;
    const int k0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z, grp = nh / nkv;
    const i64 ks = (i64)nkv * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v) && ax_al16(dout);
    const float sl2 = scale * AXO_TC_LOG2E;
    int kr[2], kj[2], sk[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        kr[i] = 16 * kw + g + 8 * i;
        kj[i] = k0 + kr[i];
        sk[i] = segb && kj[i] < S ? segb[kj[i]] : 0;
    }
    // queries before k0 see no key of this tile (causal), nor do those from qend on (packed rows: later segments)
    const int qstart = causal ? k0 : 0, qend = ax_seg_qend<BK>(segb, k0, S, causal);
    const int nqt = (qend - qstart + BQ - 1) / BQ, ntiles = grp * nqt;

    tc_stage<HD, BK, NT>(Ks, k + (i64)b * S * ks + (i64)kvh * HD, ks, k0, S, async);
    tc_stage<HD, BK, NT>(Vs, v + (i64)b * S * ks + (i64)kvh * HD, ks, k0, S, async);
    tc_dkdv_stage<HD>(Qs0, Gs0, lse_s0, D_s0, segq0, 0, 0, q, dout, lse, D, segb, b, S, nh, kvh, grp, qstart, nqt,
                      async);
    tc_cp_commit();

    float dka[NH][4], dva[NH][4];
#pragma unroll
    for (int nd = 0; nd < NH; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[nd][e] = dva[nd][e] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        const int cur = it & 1, q0 = qstart + (it % nqt) * BQ;
        if (it + 1 < ntiles)
            tc_dkdv_stage<HD>(Qs0, Gs0, lse_s0, D_s0, segq0, cur ^ 1, it + 1, q, dout, lse, D, segb, b, S, nh, kvh,
                              grp, qstart, nqt, async);
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads();
        const bf16 *Qs = Qs0 + cur * BQ * LDS, *Gs = Gs0 + cur * BQ * LDS;
        const float *lse_s = lse_s0 + cur * BQ, *D_s = D_s0 + cur * BQ;
        const int *segq = segq0 + cur * BQ;

        // phase A: keys 16kw.., queries 32hw..32hw+31
        float st[4][4], dpt[4][4];
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) st[j][e] = dpt[j][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            tc_u32 ak[4], av[4];
            tc_ldA(ak, Ks, LDS, 16 * kw, 16 * kk);
            tc_ldA(av, Vs, LDS, 16 * kw, 16 * kk);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                tc_u32 bb[2];
                tc_ldB_nk(bb, Qs, LDS, 32 * hw + 8 * j, 16 * kk);
                tc_mma(st[j], ak, bb);  // S^T = K Q^T
                tc_ldB_nk(bb, Gs, LDS, 32 * hw + 8 * j, 16 * kk);
                tc_mma(dpt[j], av, bb); // dP^T = V dout^T
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int qc = 32 * hw + 8 * j + 2 * t;
                float p[2], ds[2];
#pragma unroll
                for (int e2 = 0; e2 < 2; e2++) {
                    const int e = 2 * i + e2, c = qc + e2;
                    if constexpr (CAP) { // as tc_dkdv_tile
                        float dc;
                        const float x = ax_softcap_d(st[j][e] * scale, softcap, ic, dc) * AXO_TC_LOG2E;
                        p[e2] = tc_ok(q0 + c, kj[i], S, causal, segb, segq[c], sk[i]) ? exp2f(x - lse_s[c]) : 0.0f;
                        ds[e2] = p[e2] * dc * (dpt[j][e] - D_s[c]);
                    } else {
                        p[e2] = tc_ok(q0 + c, kj[i], S, causal, segb, segq[c], sk[i])
                                    ? exp2f(st[j][e] * sl2 - lse_s[c])
                                    : 0.0f;
                        ds[e2] = p[e2] * (dpt[j][e] - D_s[c]);
                    }
                }
                *reinterpret_cast<tc_u32 *>(Ps + kr[i] * LDP + qc) = tc_pack(p[0], p[1]);
                *reinterpret_cast<tc_u32 *>(dSs + kr[i] * LDP + qc) = tc_pack(ds[0], ds[1]);
            }
        __syncthreads(); // P^T, dS^T complete
        // phase B: keys 16kw.., head-dim columns hw HD/2 ..
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            tc_u32 ap[4], as[4];
            tc_ldA(ap, Ps, LDP, 16 * kw, 16 * kk);
            tc_ldA(as, dSs, LDP, 16 * kw, 16 * kk);
#pragma unroll
            for (int nd = 0; nd < NH; nd++) {
                const int n0 = hw * (HD / 2) + 8 * nd;
                tc_u32 bb[2];
                tc_ldB_kn(bb, Gs, LDS, 16 * kk, n0);
                tc_mma(dva[nd], ap, bb); // dV += P^T dout
                tc_ldB_kn(bb, Qs, LDS, 16 * kk, n0);
                tc_mma(dka[nd], as, bb); // dK += dS^T Q
            }
        }
        __syncthreads(); // Q/dout buffer cur, P^T, dS^T read
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (kj[i] >= S) continue;
        const i64 off = ((i64)b * S + kj[i]) * ks + (i64)kvh * HD + hw * (HD / 2) + 2 * t;
#pragma unroll
        for (int nd = 0; nd < NH; nd++) {
            *reinterpret_cast<tc_u32 *>(dk + off + 8 * nd) =
                tc_pack(dka[nd][2 * i] * scale, dka[nd][2 * i + 1] * scale);
            *reinterpret_cast<tc_u32 *>(dv + off + 8 * nd) = tc_pack(dva[nd][2 * i], dva[nd][2 * i + 1]);
        }
    }
    if constexpr (CAP) AX_CAP_MARK();
}

// ---- ring-attention block kernels -------------------------------------------
// seg/idx of row r of a batch row starting at element off (as ax_blk_meta).
__device__ __forceinline__ void tcb_row(int &sg, int &ix, const int *seg, const int *idx, i64 off, int r, int S) {
    const bool in = r < S;
    sg = seg && in ? seg[off + r] : 0;
    ix = !in ? 0 : idx ? idx[off + r] : r;
}

// The first tile it0 <= it < n in which some (query, key) pair is visible; n
// if none. Tile it covers rows (it % per) * 64.. of the batch row at off of
// seg/idx (keys for the forward and dQ, queries for dK/dV): their seg/idx are
// staged into seg_s/idx_s and bits(row0) gives this thread's visibility bits
// of the tile, which are left in `bits`. Two barriers per tile looked at;
// every thread of the CTA calls it. seg_s/idx_s are read only in here, so
// one buffer serves the whole kernel.
template <typename Bits>
__device__ __forceinline__ int tcb_next(int it, int n, int per, int *seg_s, int *idx_s, const int *seg, const int *idx,
                                        i64 off, int S, unsigned &bits, const Bits &vis) {
    for (; it < n; it++) {
        const int row0 = (it % per) * 64;
        ax_blk_meta(seg_s, idx_s, seg, idx, off, row0, S);
        __syncthreads();
        bits = vis(row0);
        if (__syncthreads_or(bits != 0u)) break;
    }
    return it;
}

template <int HD, bool CAP>
__device__ __forceinline__ void tcb_fwd_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                             const int *segk, const int *idxq, const int *idxk, float *out, float *lse,
                                             int Sq, int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 128, LDS = HD + 8, ND = HD / 8;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Qs = reinterpret_cast<bf16 *>(tc_smem);
    bf16 *Ks0 = Qs + BQ * LDS, *Vs0 = Ks0 + 2 * BK * LDS;                       // [2][BK][LDS] each
    int *seg_s = reinterpret_cast<int *>(Vs0 + 2 * BK * LDS), *idx_s = seg_s + BK; // [BK] each
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv), r0 = 16 * warp;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const bf16 *kb = k + (i64)b * Sk * ks + (i64)kvh * HD, *vb = v + (i64)b * Sk * ks + (i64)kvh * HD;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v);
    const float sl2 = scale * AXO_TC_LOG2E;
    int qi[2], sq[2], iq[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        qi[i] = q0 + r0 + g + 8 * i;
        tcb_row(sq[i], iq[i], segq, idxq, (i64)b * Sq, qi[i], Sq);
    }
    // bit 4j + e: element e of C tile j (query qi[e >> 1], key k0 + 8j + 2t + (e & 1))
    const auto vis = [&](int k0) {
        unsigned bits = 0;
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e >> 1, c = 8 * j + 2 * t + (e & 1);
                if (qi[i] < Sq && k0 + c < Sk && sq[i] == seg_s[c] && ax_att_near(iq[i], idx_s[c], causal))
                    bits |= 1u << (4 * j + e);
            }
        return bits;
    };
    const int nkt = (Sk + BK - 1) / BK;
    unsigned bits = 0;
    int kt = tcb_next(0, nkt, nkt, seg_s, idx_s, segk, idxk, (i64)b * Sk, Sk, bits, vis);
    if (kt < nkt) {
        tc_stage<HD, BQ, NT>(Qs, q + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq, async);
        tc_stage<HD, BK, NT>(Ks0, kb, ks, kt * BK, Sk, async);
        tc_stage<HD, BK, NT>(Vs0, vb, ks, kt * BK, Sk, async);
    }
    tc_cp_commit();

    float o[ND][4], m[2] = {-AXO_INF, -AXO_INF}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[nd][e] = 0.0f;

    for (int it = 0; kt < nkt; it++) {
        const int cur = it & 1, nx = cur ^ 1;
        unsigned nbits = 0;
        const int kn = tcb_next(kt + 1, nkt, nkt, seg_s, idx_s, segk, idxk, (i64)b * Sk, Sk, nbits, vis);
        if (kn < nkt) { // prefetch the next visible tile into the other buffer (free since the end of it - 1)
            tc_stage<HD, BK, NT>(Ks0 + nx * BK * LDS, kb, ks, kn * BK, Sk, async);
            tc_stage<HD, BK, NT>(Vs0 + nx * BK * LDS, vb, ks, kn * BK, Sk, async);
        }
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads(); // tile kt (and Q) visible to every thread
        tc_fwd_tile<HD, CAP>(o, m, l, Qs, Ks0 + cur * BK * LDS, Vs0 + cur * BK * LDS, r0, sl2, scale, softcap, ic,
                             [&](int j, int e) { return ((bits >> (4 * j + e)) & 1u) != 0u; });
        __syncthreads(); // buffer cur is read
        kt = kn, bits = nbits;
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const float L = tc_quad_sum(l[i]), inv = L > 0.0f ? 1.0f / L : 0.0f;
        if (qi[i] >= Sq) continue;
        float *orow = out + ((i64)b * Sq + qi[i]) * qs + (i64)h * HD + 2 * t;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            orow[8 * nd] = o[nd][2 * i] * inv;
            orow[8 * nd + 1] = o[nd][2 * i + 1] * inv;
        }
        if (t == 0) lse[((i64)b * nh + h) * Sq + qi[i]] = L > 0.0f ? (m[i] + log2f(L)) * AXO_TC_LN2 : -AXO_INF;
    }
    if constexpr (CAP) AX_CAP_MARK();
}

template <int HD, bool CAP>
__device__ __forceinline__ void tcb_dq_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                            const int *segk, const int *idxq, const int *idxk, const bf16 *dout,
                                            const float *lse, const float *D, float *dq, int Sq, int Sk, int nh,
                                            int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 128, LDS = HD + 8, ND = HD / 8;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Qs = reinterpret_cast<bf16 *>(tc_smem), *Gs = Qs + BQ * LDS;
    bf16 *Ks0 = Gs + BQ * LDS, *Vs0 = Ks0 + 2 * BK * LDS;                       // [2][BK][LDS] each
    int *seg_s = reinterpret_cast<int *>(Vs0 + 2 * BK * LDS), *idx_s = seg_s + BK; // [BK] each
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv), r0 = 16 * warp;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const bf16 *kb = k + (i64)b * Sk * ks + (i64)kvh * HD, *vb = v + (i64)b * Sk * ks + (i64)kvh * HD;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v) && ax_al16(dout);
    const float sl2 = scale * AXO_TC_LOG2E;
    int qi[2], sq[2], iq[2];
    float lse2[2], Dr[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        qi[i] = q0 + r0 + g + 8 * i;
        tcb_row(sq[i], iq[i], segq, idxq, (i64)b * Sq, qi[i], Sq);
        const bool in = qi[i] < Sq;
        const i64 row = ((i64)b * nh + h) * Sq + qi[i];
        lse2[i] = in ? lse[row] * AXO_TC_LOG2E : 0.0f;
        Dr[i] = in ? D[row] : 0.0f;
    }
    const auto vis = [&](int k0) { // as in tcb_fwd_body
        unsigned bits = 0;
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e >> 1, c = 8 * j + 2 * t + (e & 1);
                if (qi[i] < Sq && k0 + c < Sk && sq[i] == seg_s[c] && ax_att_near(iq[i], idx_s[c], causal))
                    bits |= 1u << (4 * j + e);
            }
        return bits;
    };
    const int nkt = (Sk + BK - 1) / BK;
    unsigned bits = 0;
    int kt = tcb_next(0, nkt, nkt, seg_s, idx_s, segk, idxk, (i64)b * Sk, Sk, bits, vis);
    if (kt < nkt) {
        tc_stage<HD, BQ, NT>(Qs, q + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq, async);
        tc_stage<HD, BQ, NT>(Gs, dout + (i64)b * Sq * qs + (i64)h * HD, qs, q0, Sq, async);
        tc_stage<HD, BK, NT>(Ks0, kb, ks, kt * BK, Sk, async);
        tc_stage<HD, BK, NT>(Vs0, vb, ks, kt * BK, Sk, async);
    }
    tc_cp_commit();

    float dqa[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) dqa[nd][e] = 0.0f;

    for (int it = 0; kt < nkt; it++) {
        const int cur = it & 1, nx = cur ^ 1;
        unsigned nbits = 0;
        const int kn = tcb_next(kt + 1, nkt, nkt, seg_s, idx_s, segk, idxk, (i64)b * Sk, Sk, nbits, vis);
        if (kn < nkt) {
            tc_stage<HD, BK, NT>(Ks0 + nx * BK * LDS, kb, ks, kn * BK, Sk, async);
            tc_stage<HD, BK, NT>(Vs0 + nx * BK * LDS, vb, ks, kn * BK, Sk, async);
        }
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads();
        tc_dq_tile<HD, CAP>(dqa, Qs, Gs, Ks0 + cur * BK * LDS, Vs0 + cur * BK * LDS, r0, sl2, scale, softcap, ic,
                            lse2, Dr, [&](int j, int e) { return ((bits >> (4 * j + e)) & 1u) != 0u; });
        __syncthreads();
        kt = kn, bits = nbits;
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (qi[i] >= Sq) continue;
        float *row = dq + ((i64)b * Sq + qi[i]) * qs + (i64)h * HD + 2 * t;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            row[8 * nd] = dqa[nd][2 * i] * scale;
            row[8 * nd + 1] = dqa[nd][2 * i + 1] * scale;
        }
    }
    if constexpr (CAP) AX_CAP_MARK();
}

template <int HD, bool CAP>
__device__ __forceinline__ void tcb_dkdv_impl(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                              const int *segk, const int *idxq, const int *idxk, const bf16 *dout,
                                              const float *lse, const float *D, float *dk, float *dv, int Sq, int Sk,
                                              int nh, int nkv, float scale, int causal, float softcap) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = 64, BK = 64, NT = 256, LDS = HD + 8, LDP = BQ + 8, NH = HD / 16;
    AX_DYN_SMEM(unsigned char, tc_smem);
    bf16 *Ks = reinterpret_cast<bf16 *>(tc_smem), *Vs = Ks + BK * LDS;
    bf16 *Qs0 = Vs + BK * LDS, *Gs0 = Qs0 + 2 * BQ * LDS; // [2][BQ][LDS] each
    bf16 *Ps = Gs0 + 2 * BQ * LDS, *dSs = Ps + BK * LDP;   // [BK][LDP]: P^T, dS^T
    float *lse_s0 = reinterpret_cast<float *>(dSs + BK * LDP), *D_s0 = lse_s0 + 2 * BQ; // [2][BQ]
    int *seg_s = reinterpret_cast<int *>(D_s0 + 2 * BQ), *idx_s = seg_s + BQ;          // [BQ] each
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int kw = warp & 3, hw = warp >> 2;
    const int k0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z, grp = nh / nkv;
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const bool async = ax_al16(q) && ax_al16(k) && ax_al16(v) && ax_al16(dout);
    const float sl2 = scale * AXO_TC_LOG2E;
    int kj[2], sk[2], ik[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        kj[i] = k0 + 16 * kw + g + 8 * i;
        tcb_row(sk[i], ik[i], segk, idxk, (i64)b * Sk, kj[i], Sk);
    }
    // bit 4j + e: element e of C tile j (key kj[e >> 1], query q0 + 32hw + 8j + 2t + (e & 1))
    const auto vis = [&](int q0) {
        unsigned bits = 0;
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e >> 1, c = 32 * hw + 8 * j + 2 * t + (e & 1);
                if (q0 + c < Sq && kj[i] < Sk && seg_s[c] == sk[i] && ax_att_near(idx_s[c], ik[i], causal))
                    bits |= 1u << (4 * j + e);
            }
        return bits;
    };
    // Q, dout, lse (times log2 e), D of tile it (head kvh grp + it / nqt, queries (it % nqt) 64..) into set buf
    const int nqt = (Sq + BQ - 1) / BQ, ntiles = grp * nqt;
    const auto stage = [&](int buf, int it) {
        const int h = kvh * grp + it / nqt, q0 = (it % nqt) * BQ;
        const i64 off = (i64)b * Sq * qs + (i64)h * HD;
        tc_stage<HD, BQ, NT>(Qs0 + buf * BQ * LDS, q + off, qs, q0, Sq, async);
        tc_stage<HD, BQ, NT>(Gs0 + buf * BQ * LDS, dout + off, qs, q0, Sq, async);
        const int r = threadIdx.x;
        if (r < BQ) {
            const bool in = q0 + r < Sq;
            const i64 row = ((i64)b * nh + h) * Sq + q0 + r;
            lse_s0[buf * BQ + r] = in ? lse[row] * AXO_TC_LOG2E : 0.0f;
            D_s0[buf * BQ + r] = in ? D[row] : 0.0f;
        }
    };
    unsigned bits = 0;
    int it = tcb_next(0, ntiles, nqt, seg_s, idx_s, segq, idxq, (i64)b * Sq, Sq, bits, vis);
    if (it < ntiles) {
        tc_stage<HD, BK, NT>(Ks, k + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk, async);
        tc_stage<HD, BK, NT>(Vs, v + (i64)b * Sk * ks + (i64)kvh * HD, ks, k0, Sk, async);
        stage(0, it);
    }
    tc_cp_commit();

    float dka[NH][4], dva[NH][4];
#pragma unroll
    for (int nd = 0; nd < NH; nd++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[nd][e] = dva[nd][e] = 0.0f;

    for (int n = 0; it < ntiles; n++) {
        const int cur = n & 1;
        unsigned nbits = 0;
        const int in = tcb_next(it + 1, ntiles, nqt, seg_s, idx_s, segq, idxq, (i64)b * Sq, Sq, nbits, vis);
        if (in < ntiles) stage(cur ^ 1, in);
        tc_cp_commit();
        tc_cp_wait1();
        __syncthreads();
        tc_dkdv_tile<HD, CAP>(dka, dva, Ks, Vs, Qs0 + cur * BQ * LDS, Gs0 + cur * BQ * LDS, Ps, dSs, lse_s0 + cur * BQ,
                              D_s0 + cur * BQ, sl2, scale, softcap, ic,
                              [&](int j, int e) { return ((bits >> (4 * j + e)) & 1u) != 0u; });
        __syncthreads(); // Q/dout buffer cur, P^T, dS^T read
        it = in, bits = nbits;
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (kj[i] >= Sk) continue;
        const i64 off = ((i64)b * Sk + kj[i]) * ks + (i64)kvh * HD + hw * (HD / 2) + 2 * t;
#pragma unroll
        for (int nd = 0; nd < NH; nd++) {
            dk[off + 8 * nd] = dka[nd][2 * i] * scale, dk[off + 8 * nd + 1] = dka[nd][2 * i + 1] * scale;
            dv[off + 8 * nd] = dva[nd][2 * i], dv[off + 8 * nd + 1] = dva[nd][2 * i + 1];
        }
    }
    if constexpr (CAP) AX_CAP_MARK();
}

// ---- entry bodies: softcap 0 runs the instantiation without the cap (common.cuh) ----
template <int HD>
__device__ __forceinline__ void tc_fwd_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg, bf16 *out,
                                            float *lse, int S, int nh, int nkv, float scale, int causal, float softcap,
                                            const void *sinks = nullptr, int sbf = 0) {
    if (softcap > 0.0f) tc_fwd_impl<HD, true>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);
    else tc_fwd_impl<HD, false>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);
}
template <int HD>
__device__ __forceinline__ void tc_dq_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg,
                                           const bf16 *dout, const float *lse, const float *D, bf16 *dq, int S,
                                           int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f) tc_dq_impl<HD, true>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);
    else tc_dq_impl<HD, false>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);
}
template <int HD>
__device__ __forceinline__ void tc_dkdv_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg,
                                             const bf16 *dout, const float *lse, const float *D, bf16 *dk, bf16 *dv,
                                             int S, int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f) tc_dkdv_impl<HD, true>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);
    else tc_dkdv_impl<HD, false>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);
}
template <int HD>
__device__ __forceinline__ void tcb_fwd_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                             const int *segk, const int *idxq, const int *idxk, float *out, float *lse,
                                             int Sq, int Sk, int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        tcb_fwd_impl<HD, true>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal, softcap);
    else
        tcb_fwd_impl<HD, false>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal, softcap);
}
template <int HD>
__device__ __forceinline__ void tcb_dq_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                            const int *segk, const int *idxq, const int *idxk, const bf16 *dout,
                                            const float *lse, const float *D, float *dq, int Sq, int Sk, int nh,
                                            int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        tcb_dq_impl<HD, true>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale, causal,
                              softcap);
    else
        tcb_dq_impl<HD, false>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale, causal,
                               softcap);
}
template <int HD>
__device__ __forceinline__ void tcb_dkdv_body(const bf16 *q, const bf16 *k, const bf16 *v, const int *segq,
                                              const int *segk, const int *idxq, const int *idxk, const bf16 *dout,
                                              const float *lse, const float *D, float *dk, float *dv, int Sq, int Sk,
                                              int nh, int nkv, float scale, int causal, float softcap) {
    if (softcap > 0.0f)
        tcb_dkdv_impl<HD, true>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale, causal,
                                softcap);
    else
        tcb_dkdv_impl<HD, false>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale,
                                 causal, softcap);
}

// dQ hd 64: shared memory lets 4 CTAs share an sm_90 SM, so at most 128 registers (ptxas takes ~155 when the
// key loop starts at a run-time tile, ax_seg_kbeg; capped, it needs no spills).
#define AXO_TC_DQ_BOUNDS_64 __launch_bounds__(128, 4)
#define AXO_TC_DQ_BOUNDS_128 __launch_bounds__(128)
#define AXO_TC_ATT(HD)                                                                                           \
    extern "C" __global__ void __launch_bounds__(128)                                                            \
        axo_attn_tc_fwd_hd##HD##_bf16(const bf16 *q, const bf16 *k, const bf16 *v, const int *seg, bf16 *out,   \
                                      float *lse, int S, int nh, int nkv, float scale, int causal,               \
                                      float softcap, const void *sinks, int sbf) {                               \
        tc_fwd_body<HD>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);                 \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) axo_attn_tc_bwd_dkdv_hd##HD##_bf16(                        \
        const bf16 *q, const bf16 *k, const bf16 *v, const int *seg, const bf16 *dout, const float *lse,         \
        const float *D, bf16 *dk, bf16 *dv, int S, int nh, int nkv, float scale, int causal, float softcap) {    \
        tc_dkdv_body<HD>(q, k, v, seg, dout, lse, D, dk, dv, S, nh, nkv, scale, causal, softcap);                \
    }                                                                                                            \
    extern "C" __global__ void AXO_TC_DQ_BOUNDS_##HD axo_attn_tc_bwd_dq_hd##HD##_bf16(                           \
        const bf16 *q, const bf16 *k, const bf16 *v, const int *seg, const bf16 *dout, const float *lse,         \
        const float *D, bf16 *dq, int S, int nh, int nkv, float scale, int causal, float softcap) {              \
        tc_dq_body<HD>(q, k, v, seg, dout, lse, D, dq, S, nh, nkv, scale, causal, softcap);                      \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(128) axo_attn_tc_blk_fwd_hd##HD##_bf16(                         \
        const bf16 *q, const bf16 *k, const bf16 *v, const int *segq, const int *segk, const int *idxq,          \
        const int *idxk, float *out, float *lse, int Sq, int Sk, int nh, int nkv, float scale, int causal,       \
        float softcap) {                                                                                         \
        tcb_fwd_body<HD>(q, k, v, segq, segk, idxq, idxk, out, lse, Sq, Sk, nh, nkv, scale, causal, softcap);    \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) axo_attn_tc_blk_bwd_dkdv_hd##HD##_bf16(                    \
        const bf16 *q, const bf16 *k, const bf16 *v, const int *segq, const int *segk, const int *idxq,          \
        const int *idxk, const bf16 *dout, const float *lse, const float *D, float *dk, float *dv, int Sq,       \
        int Sk, int nh, int nkv, float scale, int causal, float softcap) {                                       \
        tcb_dkdv_body<HD>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dk, dv, Sq, Sk, nh, nkv, scale, causal, \
                          softcap);                                                                              \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(128) axo_attn_tc_blk_bwd_dq_hd##HD##_bf16(                      \
        const bf16 *q, const bf16 *k, const bf16 *v, const int *segq, const int *segk, const int *idxq,          \
        const int *idxk, const bf16 *dout, const float *lse, const float *D, float *dq, int Sq, int Sk, int nh,  \
        int nkv, float scale, int causal, float softcap) {                                                       \
        tcb_dq_body<HD>(q, k, v, segq, segk, idxq, idxk, dout, lse, D, dq, Sq, Sk, nh, nkv, scale, causal,       \
                        softcap);                                                                                \
    }
AXO_TC_ATT(64)
AXO_TC_ATT(128)
