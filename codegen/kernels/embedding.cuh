// embedding.cuh — token embedding forward and backward.
//
// Math (ck_embedding_*): fwd out[T,H] = table[ids[t], :] (table[V,H]).
// bwd dtable[V,H] (=, or += when accumulate) gets dy[t,:] added into row
// ids[t] for t ascending — exactly the CPU order, so the fp32 result is
// bit-identical to the reference. The bf16 variant reads bf16 dy and
// accumulates into an fp32 dtable (gradient accumulation stays fp32).
// ids outside [0, V): reported through *err (the smallest such t; err may be
// NULL, the caller initialises it to INT_MAX); fwd writes zeros for that row,
// bwd skips it. Nothing is read or written out of bounds.
//
// fwd launch: 1-D, block 256, any grid (grid-stride over tokens): the block
//   copies one row per step with 16-byte vectors when H % V == 0 and aligned.
// bwd: one launch covers the vocabulary rows [vlo, vhi) of dtable, which
//   points at row vlo (a bf16 result is made segment by segment through a
//   bounded fp32 scratch, never a whole [V,H] fp32 table); ids outside that
//   range are other segments' (bad ids are reported by the vlo == 0 launch).
// bwd launch: grid ceil((vhi - vlo) / 64), block 256, no dynamic smem. Block b
//   owns the 64 vocabulary rows [vlo+64b, vlo+64b+64) — no other block writes them, so no
//   atomics. It scans ids in chunks of 256 (each thread one id, coalesced),
//   compacts the in-range positions in ascending t with warp ballots, then
//   for each such t (in order) adds dy[t,:] into its row, thread j owning
//   columns j, j+256, ... for the whole kernel (the same thread zeroes and
//   accumulates a column: ordered, race-free). Every dy row is read by exactly
//   one block; ids are re-read by every block (T*4 bytes each, L2-resident).
//   Sort-free and deterministic; O(T * V/64) id comparisons.

template <typename T>
__device__ __forceinline__ void embedding_fwd_body(const T *table, const int *ids, T *out, i64 T_, i64 V, i64 H,
                                                   int *err) {
    constexpr int VW = ax_vec<T>::N;
    const bool vec = H % VW == 0 && ax_al16(table) && ax_al16(out);
    for (i64 t = blockIdx.x; t < T_; t += gridDim.x) {
        const int id = ids[t];
        const bool ok = id >= 0 && id < V;
        if (!ok && threadIdx.x == 0) ax_report_bad(err, t);
        const T *src = table + (ok ? (i64)id : 0) * H;
        T *dst = out + t * H;
        if (vec) {
            for (i64 c = (i64)threadIdx.x * VW; c < H; c += (i64)blockDim.x * VW) {
                float v[VW];
                if (ok) ax_ld16(src + c, v);
                else
#pragma unroll
                    for (int e = 0; e < VW; e++) v[e] = 0.0f;
                ax_st16(dst + c, v);
            }
        } else {
            for (i64 c = threadIdx.x; c < H; c += blockDim.x) ax_st(dst + c, ok ? ax_ld(src + c) : 0.0f);
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_embedding_fwd_f32(const float *table, const int *ids, float *out,
                                                                        i64 T, i64 V, i64 H, int *err) {
    embedding_fwd_body(table, ids, out, T, V, H, err);
}
extern "C" __global__ void __launch_bounds__(256) axo_embedding_fwd_bf16(const bf16 *table, const int *ids, bf16 *out,
                                                                         i64 T, i64 V, i64 H, int *err) {
    embedding_fwd_body(table, ids, out, T, V, H, err);
}

#define AXO_EMB_ROWS 64
template <typename T>
__device__ __forceinline__ void embedding_bwd_body(const int *ids, const T *dy, float *dtable, i64 T_, i64 vlo, i64 vhi,
                                                   i64 V, i64 H, int accumulate, int *err) {
    __shared__ int list[256];
    __shared__ int wcount[8];
    const i64 v0 = vlo + (i64)blockIdx.x * AXO_EMB_ROWS;
    const i64 v1 = v0 + AXO_EMB_ROWS < vhi ? v0 + AXO_EMB_ROWS : vhi;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (!accumulate)
        for (i64 v = v0; v < v1; v++)
            for (i64 c = threadIdx.x; c < H; c += blockDim.x) dtable[(v - vlo) * H + c] = 0.0f;
    for (i64 t0 = 0; t0 < T_; t0 += 256) {
        const i64 t = t0 + threadIdx.x;
        const int id = t < T_ ? ids[t] : -1;
        if (vlo == 0 && blockIdx.x == 0 && t < T_ && (id < 0 || id >= V)) ax_report_bad(err, t);
        const bool hit = t < T_ && id >= v0 && id < v1;
        const unsigned m = __ballot_sync(0xffffffffu, hit);
        __syncthreads(); // the previous chunk's list is no longer read
        if (lane == 0) wcount[warp] = __popc(m);
        __syncthreads();
        int base = 0, total = 0;
        for (int k = 0; k < 8; k++) {
            base += k < warp ? wcount[k] : 0;
            total += wcount[k];
        }
        if (hit) list[base + __popc(m & ((1u << lane) - 1u))] = (int)threadIdx.x;
        __syncthreads();
        for (int k = 0; k < total; k++) {
            const i64 tk = t0 + list[k];
            float *drow = dtable + ((i64)ids[tk] - vlo) * H;
            const T *src = dy + tk * H;
            for (i64 c = threadIdx.x; c < H; c += blockDim.x) drow[c] = __fadd_rn(drow[c], ax_ld(src + c));
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_embedding_bwd_f32(const int *ids, const float *dy, float *dtable,
                                                                        i64 T, i64 vlo, i64 vhi, i64 V, i64 H,
                                                                        int accumulate, int *err) {
    embedding_bwd_body(ids, dy, dtable, T, vlo, vhi, V, H, accumulate, err);
}
extern "C" __global__ void __launch_bounds__(256) axo_embedding_bwd_bf16(const int *ids, const bf16 *dy, float *dtable,
                                                                         i64 T, i64 vlo, i64 vhi, i64 V, i64 H,
                                                                         int accumulate, int *err) {
    embedding_bwd_body(ids, dy, dtable, T, vlo, vhi, V, H, accumulate, err);
}
