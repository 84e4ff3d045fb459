// attention_fwd.cuh — FlashAttention-style causal GQA attention forward with
// segment ids (packed sequences), head_dim 64 or 128.
//
// Math (ck_attention_fwd_*): q[B,S,nh,hd], k,v[B,S,nkv,hd], seg[B,S] (int32,
// NULL = one segment) -> out[B,S,nh,hd], lse[B,nh,S] (fp32, natural log);
// sinks (gpt-oss; NULL: none, bf16 when sbf, else f32): each head's sink
// logit joins every row's softmax with no value (ck_attn_sink_fwd's result,
// out rounded once).
// Query head h reads kv head h / (nh/nkv). Query i sees key j iff
// (!causal || j <= i) and seg[i] == seg[j]; s_ij = scale q_i.k_j;
// softcap > 0 (Gemma 2): s_ij = softcap tanh(scale q_i.k_j / softcap), before
// the mask (common.cuh; softcap 0: none, the code and bits of before).
// out_i = sum_j softmax(s_i)_j v_j. Online softmax over key tiles: running
// max m and sum l per query row, the fp32 accumulator rescaled by
// exp(m_old - m_new) whenever the max grows; fully masked tiles change nothing.
// Packed rows (common.cuh: every seg row non-decreasing): the key loop starts
// at the tile holding lower_bound(seg[q0]) (ax_seg_kbeg), since every earlier
// tile is fully masked for the whole query tile. Bit-identical to visiting
// them for finite inputs: a fully masked tile before the first visible key
// leaves m = -inf, l = 0, o = +0 (alpha = 1, p = 0, fmaf(0, v, +0) = +0).
//
// Launch: grid (ceil(S/64), nh, B), block 256, dynamic shared memory
//   (64 (hd+1) * 3 + 64 * 65) * 4 + 128 * 4 bytes
//   = 67072 (hd 64) / 116224 (hd 128): set
//   cudaFuncAttributeMaxDynamicSharedMemorySize first (> 48 KiB).
// One CTA = one 64-query tile of one head of one batch row. It stages Q
// (64 x hd, fp32) once, then for each 64-key tile from the one holding the
// start of seg[q0]'s segment up to the causal limit stages K and V (16-byte
// vector loads, converted to fp32), computes the 64 x 64 scores (each thread
// a 4 x 4 block: rows ty+16i, cols tx+16j, fp32 FMA over hd from shared
// memory), masks, updates m/l with 16-lane shuffles, writes P to shared
// memory, and adds P V into its 4 x hd/16 accumulators.
// Traffic: Q, out once; K, V once per query tile (L2-resident for nearby
// tiles). CUDA-core fp32 math, no tensor cores yet: correct first.

template <typename T, int HD, bool CAP>
__device__ __forceinline__ void attn_fwd_impl(const T *q, const T *k, const T *v, const int *seg, T *out, float *lse,
                                              int S, int nh, int nkv, float scale, int causal, float softcap,
                                              const void *sinks, int sbf) {
    if constexpr (CAP) AX_CAP_MARK();
    const float ic = CAP ? 1.0f / softcap : 0.0f; // 1 / softcap, once (ax_softcap)
    constexpr int BQ = AXO_ATT_BQ, BK = AXO_ATT_BK, LD = HD + 1, LDP = BK + 1, DJ = HD / 16;
    AX_DYN_SMEM(float, sm);
    float *Qs = sm, *Ks = Qs + BQ * LD, *Vs = Ks + BK * LD, *Ps = Vs + BK * LD;
    int *segq = (int *)(Ps + BQ * LDP), *segk = segq + BQ;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z, kvh = h / (nh / nkv);
    const i64 qs = (i64)nh * HD, ks = (i64)nkv * HD;
    const T *qb = q + (i64)b * S * qs + (i64)h * HD;
    const T *kb = k + (i64)b * S * ks + (i64)kvh * HD, *vb = v + (i64)b * S * ks + (i64)kvh * HD;
    const int *segb = seg ? seg + (i64)b * S : (const int *)0;
    const int kbeg = ax_seg_kbeg<BK>(segb, q0, causal);

    ax_load_tile<T, HD, BQ, LD>(Qs, qb, qs, q0, S);
    ax_load_vec(segq, segb, q0, BQ, S);

    float o[4][DJ], m[4], l[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -AXO_INF;
        l[i] = 0.0f;
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) o[i][jj] = 0.0f;
    }
    const int kend = causal ? min(S, q0 + BQ) : S;
    for (int k0 = kbeg; k0 < kend; k0 += BK) {
        __syncthreads(); // the previous tile's K, V, P are no longer read
        ax_load_tile<T, HD, BK, LD>(Ks, kb, ks, k0, S);
        ax_load_tile<T, HD, BK, LD>(Vs, vb, ks, k0, S);
        ax_load_vec(segk, segb, k0, BK, S);
        __syncthreads();
        float s[4][4];
        ax_tile_abt<HD, LD>(s, Qs, Ks, tx, ty);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = ty + 16 * i;
            float mt = -AXO_INF;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int c = tx + 16 * j;
                const bool ok = ax_att_ok(q0 + r, k0 + c, S, causal, segb, segq[r], segk[c]);
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
        if (r >= S) continue;
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f, L = l[i] > 0.0f ? m[i] + logf(l[i]) : -AXO_INF;
        if (sinks) { // gpt-oss's sink: one more logit of no value, folded in before the single rounding of out
            const float sk = (float)ax_sink_ld(sinks, sbf, h), mn = fmaxf(m[i], sk);
            const float c = l[i] > 0.0f ? expf(m[i] - mn) : 0.0f, lt = l[i] * c + expf(sk - mn);
            inv = c / lt, L = mn + logf(lt);
        }
        T *orow = out + ((i64)b * S + r) * qs + (i64)h * HD;
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) ax_st(orow + tx + 16 * jj, o[i][jj] * inv);
        if (tx == 0) lse[((i64)b * nh + h) * S + r] = L;
    }
    if constexpr (CAP) AX_CAP_MARK();
}

// softcap 0: the body without the cap (common.cuh)
template <typename T, int HD>
__device__ __forceinline__ void attn_fwd_body(const T *q, const T *k, const T *v, const int *seg, T *out, float *lse,
                                              int S, int nh, int nkv, float scale, int causal, float softcap,
                                              const void *sinks = nullptr, int sbf = 0) {
    if (softcap > 0.0f)
        attn_fwd_impl<T, HD, true>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);
    else
        attn_fwd_impl<T, HD, false>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);
}

#define AXO_ATT_FWD(NAME, T, HD)                                                                                 \
    extern "C" __global__ void __launch_bounds__(AXO_ATT_NT)                                                     \
        NAME(const T *q, const T *k, const T *v, const int *seg, T *out, float *lse, int S, int nh, int nkv,    \
             float scale, int causal, float softcap, const void *sinks, int sbf) {                               \
        attn_fwd_body<T, HD>(q, k, v, seg, out, lse, S, nh, nkv, scale, causal, softcap, sinks, sbf);            \
    }
AXO_ATT_FWD(axo_attn_fwd_hd64_f32, float, 64)
AXO_ATT_FWD(axo_attn_fwd_hd64_bf16, bf16, 64)
AXO_ATT_FWD(axo_attn_fwd_hd128_f32, float, 128)
AXO_ATT_FWD(axo_attn_fwd_hd128_bf16, bf16, 128)
