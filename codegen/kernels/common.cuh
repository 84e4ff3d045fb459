// common.cuh — helpers shared by every axo CUDA kernel source.
//
// Not a kernel source of its own: codegen/embed_kernels.cmake prepends this
// file to every other codegen/kernels/*.cuh, so each registered source is
// self-contained for NVRTC (no header callbacks; the only include is
// cuda_bf16.h from the CUDA toolkit).
//
// Conventions for all kernels:
//  * Storage type T is float or __nv_bfloat16; math is fp32 (reductions may
//    use double where the CPU reference does and it is cheap). Every entry
//    point is extern "C" and named axo_<kernel>_<dtype>.
//  * Arrays are contiguous row-major, as in runtime/cpu_kernels.h. Element
//    offsets are 64-bit. 16-byte vector loads are used when every pointer
//    involved is 16-byte aligned (cudaMalloc gives 256) and the row length
//    allows it; otherwise the same kernel takes a scalar path.
//  * Block sizes are multiples of 32. Reductions are fixed-order trees whose
//    shape depends only on the launch geometry (never on timing), and there
//    are no atomics on floats: same inputs + same launch -> same bits.
//  * Built without --use_fast_math: expf/logf/sqrtf/division are the
//    accurate versions. Where torch rounds every elementwise op separately,
//    kernels use __fmul_rn/__fadd_rn/... so no FMA contraction changes the
//    rounding relative to the CPU reference.
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;
typedef long long i64;

// ir/quant.h (the random bits, NF4 and stochastic rounding that host and
// kernels share) on the device: a source's line `#include "ir/quant.h"` is
// replaced by the header's text when the sources are embedded
// (codegen/embed_kernels.cmake); these make its functions __device__ and
// its tables __device__ const. Defined once, here, so that sources which
// end up in one translation unit (quant.cuh and adamw.cuh both include the
// header; its include guard keeps the second copy out) agree.
typedef unsigned int uint32_t;
#define AXO_QFN __device__ __forceinline__
#define AXO_QCONST __device__ const

#define AXO_INF __int_as_float(0x7f800000)

// A kernel's dynamic shared memory: AX_DYN_SMEM(float, sm); declares sm[],
// 16-byte aligned. A macro so that the host emulator (tests/unit/emu), which
// defines it first, can hand each CTA its buffer.
#ifndef AX_DYN_SMEM
#define AX_DYN_SMEM(T, name) extern __shared__ __align__(16) T name[]
#endif

__device__ __forceinline__ float ax_ld(const float *p) { return *p; }
__device__ __forceinline__ float ax_ld(const bf16 *p) { return __bfloat162float(*p); }
// gpt-oss's attention sinks: head h's logit, the sinks bf16 when sbf, else f32
__device__ __forceinline__ double ax_sink_ld(const void *s, int sbf, i64 h) {
    return sbf ? (double)ax_ld((const bf16 *)s + h) : (double)((const float *)s)[h];
}
__device__ __forceinline__ void ax_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void ax_st(bf16 *p, float v) { *p = __float2bfloat16_rn(v); }

// Number of T in one 16-byte vector.
template <typename T> struct ax_vec;
template <> struct ax_vec<float> { static constexpr int N = 4; };
template <> struct ax_vec<bf16> { static constexpr int N = 8; };

__device__ __forceinline__ void ax_ld16(const float *p, float (&v)[4]) {
    float4 t = *reinterpret_cast<const float4 *>(p);
    v[0] = t.x; v[1] = t.y; v[2] = t.z; v[3] = t.w;
}
__device__ __forceinline__ void ax_ld16(const bf16 *p, float (&v)[8]) {
    uint4 t = *reinterpret_cast<const uint4 *>(p);
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&t);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __bfloat1622float2(h[i]);
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void ax_st16(float *p, const float (&v)[4]) {
    *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void ax_st16(bf16 *p, const float (&v)[8]) {
    uint4 t;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&t);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4 *>(p) = t;
}

__device__ __forceinline__ bool ax_al16(const void *p) { return ((unsigned long long)p & 15ull) == 0; }

__device__ __forceinline__ i64 ax_tid() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 ax_nthreads() { return (i64)gridDim.x * blockDim.x; }

// ---- reductions --------------------------------------------------------
// Butterfly (xor) sums: every lane ends with the same bits, because each
// step adds the same two partials (a + b == b + a exactly).
template <typename A> __device__ __forceinline__ A ax_warp_sum(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float ax_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the whole block, returned to every thread. `red` is shared memory
// of >= 32 elements. Order: butterfly within each warp, then every warp
// butterflies the per-warp sums (zero-padded to 32), so all threads agree
// without a broadcast. Must be reached by all threads of the block.
template <typename A> __device__ __forceinline__ A ax_block_sum(A v, A *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = ax_warp_sum(v);
    __syncthreads(); // red may still be read by a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    return ax_warp_sum(lane < nw ? red[lane] : A(0));
}

// Online log-sum-exp state: the sum of exp(x - m) over the values seen.
struct ax_lse {
    float m, s;
};
__device__ __forceinline__ ax_lse ax_lse_add(ax_lse a, float x) {
    if (x == -AXO_INF) return a;
    if (x <= a.m) {
        a.s += expf(x - a.m);
    } else { // also the first value (a.m == -inf): exp(-inf) == 0
        a.s = a.s * expf(a.m - x) + 1.0f;
        a.m = x;
    }
    return a;
}
// Commutative merge (same bits for (a,b) and (b,a)); empty states have m = -inf, s = 0.
__device__ __forceinline__ ax_lse ax_lse_merge(ax_lse a, ax_lse b) {
    float m = fmaxf(a.m, b.m);
    if (m == -AXO_INF) return a;
    ax_lse r;
    r.m = m;
    r.s = a.s * expf(a.m - m) + b.s * expf(b.m - m);
    return r;
}
__device__ __forceinline__ ax_lse ax_lse_warp(ax_lse v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        ax_lse t;
        t.m = __shfl_xor_sync(0xffffffffu, v.m, o);
        t.s = __shfl_xor_sync(0xffffffffu, v.s, o);
        v = ax_lse_merge(v, t);
    }
    return v;
}
// Block-wide merge, result in every thread; `red` >= 32 entries of shared memory.
__device__ __forceinline__ ax_lse ax_lse_block(ax_lse v, ax_lse *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = ax_lse_warp(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    ax_lse e;
    e.m = -AXO_INF;
    e.s = 0.0f;
    return ax_lse_warp(lane < nw ? red[lane] : e);
}

// out[c] = (accumulate ? out[c] : 0) + sum_{p < nparts} part[p*N + c], the
// partials added in ascending p in double. One thread per column (grid-stride).
template <typename T>
__device__ __forceinline__ void ax_reduce_partials(const float *part, int nparts, i64 N, T *out, int accumulate) {
    for (i64 c = ax_tid(); c < N; c += ax_nthreads()) {
        double s = 0.0;
        for (int p = 0; p < nparts; p++) s += (double)part[(i64)p * N + c];
        float r = (float)s;
        ax_st(out + c, accumulate ? __fadd_rn(ax_ld(out + c), r) : r);
    }
}

// Index inputs outside [0, V) are reported through *err (the smallest bad
// position wins: atomicMin on an int is order-independent); err may be NULL.
__device__ __forceinline__ void ax_report_bad(int *err, i64 t) {
    if (err) atomicMin(err, (int)(t < 0x7fffffff ? t : 0x7fffffff));
}

// ---- elementwise driver --------------------------------------------------
// For i < n: f(i, x, y) with x[k] = in[k][i] (as float), then out[k][i] = y[k].
// Grid-stride; when every pointer is 16-byte aligned the body runs over
// 16-byte vectors (4 floats / 8 bf16) and a scalar loop takes the tail. Each
// element is read and written by one thread, so out may alias in.
template <typename T, int NI, int NO, typename F>
__device__ __forceinline__ void ax_map(i64 n, const T *const (&in)[NI], T *const (&out)[NO], F f) {
    constexpr int V = ax_vec<T>::N;
    bool al = true;
#pragma unroll
    for (int k = 0; k < NI; k++) al = al && ax_al16(in[k]);
#pragma unroll
    for (int k = 0; k < NO; k++) al = al && ax_al16(out[k]);
    const i64 nv = al ? n / V : 0;
    for (i64 v = ax_tid(); v < nv; v += ax_nthreads()) {
        float x[NI][V], y[NO][V];
#pragma unroll
        for (int k = 0; k < NI; k++) ax_ld16(in[k] + v * V, x[k]);
#pragma unroll
        for (int e = 0; e < V; e++) {
            float xi[NI], yi[NO];
#pragma unroll
            for (int k = 0; k < NI; k++) xi[k] = x[k][e];
            f(v * V + e, xi, yi);
#pragma unroll
            for (int k = 0; k < NO; k++) y[k][e] = yi[k];
        }
#pragma unroll
        for (int k = 0; k < NO; k++) ax_st16(out[k] + v * V, y[k]);
    }
    for (i64 i = nv * V + ax_tid(); i < n; i += ax_nthreads()) {
        float xi[NI], yi[NO];
#pragma unroll
        for (int k = 0; k < NI; k++) xi[k] = ax_ld(in[k] + i);
        f(i, xi, yi);
#pragma unroll
        for (int k = 0; k < NO; k++) ax_st(out[k] + i, yi[k]);
    }
}

// ---- attention tiles -------------------------------------------------------
// Tile geometry shared by the attention kernels: 64 x 64 score tiles, 256
// threads as a 16 x 16 grid (tx = tid % 16, ty = tid / 16). A thread owns
// score rows ty + 16 i and columns tx + 16 j (i, j < 4), and output columns
// tx + 16 jj (jj < HD/16). Shared tiles are fp32 with rows padded to HD + 1
// floats, so the 16 different rows a half-warp reads at one d fall in 16
// different banks.
#define AXO_ATT_BQ 64
#define AXO_ATT_BK 64
#define AXO_ATT_NT 256

// dst[r*LD + c] = src row (row0 + r), c < HD, as fp32, for r < ROWS; rows at
// or past S read as 0. Row r of the source starts at base + (row0 + r) * rstride.
template <typename T, int HD, int ROWS, int LD>
__device__ __forceinline__ void ax_load_tile(float *dst, const T *base, i64 rstride, int row0, int S) {
    constexpr int V = ax_vec<T>::N, VPR = HD / V;
    if (ax_al16(base) && rstride % V == 0) {
        for (int idx = threadIdx.x; idx < ROWS * VPR; idx += blockDim.x) {
            const int r = idx / VPR, c = (idx % VPR) * V;
            float v[V];
            if (row0 + r < S) ax_ld16(base + (i64)(row0 + r) * rstride + c, v);
            else
#pragma unroll
                for (int e = 0; e < V; e++) v[e] = 0.0f;
#pragma unroll
            for (int e = 0; e < V; e++) dst[r * LD + c + e] = v[e];
        }
    } else {
        for (int idx = threadIdx.x; idx < ROWS * HD; idx += blockDim.x) {
            const int r = idx / HD, c = idx % HD;
            dst[r * LD + c] = row0 + r < S ? ax_ld(base + (i64)(row0 + r) * rstride + c) : 0.0f;
        }
    }
}

// Loads n entries src[row0 + r] (0 past S, or 0 when src == NULL).
template <typename A>
__device__ __forceinline__ void ax_load_vec(A *dst, const A *src, int row0, int n, int S) {
    for (int r = threadIdx.x; r < n; r += blockDim.x) dst[r] = (src && row0 + r < S) ? src[row0 + r] : A(0);
}

// Sum / max over the 16 lanes that share ty (xor 8, 4, 2, 1 stays inside a half warp).
__device__ __forceinline__ float ax_sum16(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float ax_max16(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The attention kernels' `causal` argument carries the causal mask and a
// sliding window in one int: 0 = not causal; c > 0 = query i sees key j only
// when 0 <= i - j < c (positions in the row, or token indices for the ring
// blocks). Plain causal attention is c = INT_MAX; HF's sliding window W
// (q - kv < W) is c = W. The host computes it with ax_att_causal_arg.
#define AXO_ATT_CAUSAL_ALL 0x7fffffff
__host__ __device__ __forceinline__ int ax_att_causal_arg(int causal, long long window) {
    return !causal ? 0 : window > 0 && window < AXO_ATT_CAUSAL_ALL ? (int)window : AXO_ATT_CAUSAL_ALL;
}
// i - j in [0, causal): one unsigned compare (a negative difference wraps
// past INT_MAX); always true when not causal.
__device__ __forceinline__ bool ax_att_near(int qi, int kj, int causal) {
    return !causal || (unsigned)(qi - kj) < (unsigned)causal;
}
// Key j is visible to query i (both < S checked by the caller's bounds).
__device__ __forceinline__ bool ax_att_ok(int qi, int kj, int S, int causal, const int *seg, int sq, int sk) {
    return qi < S && kj < S && ax_att_near(qi, kj, causal) && (!seg || sq == sk);
}

// Gemma 2's soft-capping (attr softcap; runtime/cpu_kernels.h), c > 0: an
// attention score s = scale q.k (before the mask and the softmax) or a logit
// becomes c tanh(s / c); ax_softcap_d also gives the derivative
// d = 1 - tanh^2(s / c), the factor the backward applies to dS / dlogits.
// The fp32 forms take ic = 1 / c (computed once per kernel: no division per
// score; s ic is within an ulp of s / c); the double ones are the CPU
// reference's operations exactly (attention_any.cuh).
// A kernel's `softcap` argument 0 means no cap: the kernels test it once and
// run a body instantiated without the cap (template flag CAP), which is the
// code they ran before they took the argument (the same bits); the CAP body
// applies these. AX_CAP_MARK() at the start and the end of a CAP body keeps
// the compiler from hoisting or merging the code both instantiations share
// into stretches that both then run through, which cost registers beyond
// either body's own (the tensor-core forward hd 128: 198, against 161
// without a cap and 168 with one).
__device__ __forceinline__ float ax_softcap(float s, float c, float ic) { return c * tanhf(s * ic); }
__device__ __forceinline__ float ax_softcap_d(float s, float c, float ic, float &d) {
    const float t = tanhf(s * ic);
    d = 1.0f - t * t;
    return c * t;
}
__device__ __forceinline__ double ax_softcap(double s, double c) { return c * tanh(s / c); }
__device__ __forceinline__ double ax_softcap_d(double s, double c, double &d) {
    const double t = tanh(s / c);
    d = 1.0 - t * t;
    return c * t;
}
#ifdef __CUDA_ARCH__
#define AX_CAP_MARK() asm volatile("// softcap body")
#else
#define AX_CAP_MARK() ((void)0)
#endif

// ---- packed rows: segment bounds (whole-row attention) -------------------
// Contract of the whole-row attention kernels (attention_fwd/bwd/tc/any.cuh;
// not attention_blk.cuh): every row of seg[B,S] is non-decreasing,
// seg[b,i] <= seg[b,i+1] (the runtime numbers a row's packed samples 0, 1,
// 2, ... and gives each padding token the next id). Then the keys of query
// i's segment are exactly [lower_bound(seg[i]), upper_bound(seg[i])) of its
// row, and the kernels skip the tiles outside that range that are fully
// masked (see each kernel's header). A row that breaks the contract gives
// wrong attention but no out-of-bounds access (every bound stays in [0, S]).
// AXO_ATT_SEG_SKIP 0 visits every tile up to the causal bound, as the
// kernels did before; the emulator tests define it as a variable and
// compare the two bit for bit.
#ifndef AXO_ATT_SEG_SKIP
#define AXO_ATT_SEG_SKIP 1
#endif

// The first j in [lo, hi) with seg[j] > x (upper) or seg[j] >= x (!upper),
// hi if none; seg[lo..hi) non-decreasing. A 16-ary search: each step loads
// 16 evenly spaced entries (stride w = ceil((hi - lo) / 16), independent
// loads, so one memory latency a step) and keeps the gap between the last
// probe below the answer and the first at or past it: fewer than w entries
// remain, 4 steps for 8192 entries (a binary search: 13 dependent loads).
// The tile kernels call it from every thread with the same arguments, so a
// warp's lanes load the same addresses (one transaction per probe), and no
// barrier or shared memory is needed to hand the result around (a one-warp
// __ballot_sync version raised the tensor-core dK/dV kernel's registers from
// 126 to 144 for hd 64 on sm_80: one CTA per SM instead of two). If seg is
// not monotone the result is still in [lo, hi].
__device__ __forceinline__ int ax_seg_search(const int *seg, int lo, int hi, int x, bool upper) {
    while (lo < hi) {
        const int w = (hi - lo + 15) >> 4;
        int f = 0; // probes before the answer (the first f when seg is monotone)
#pragma unroll
        for (int e = 0; e < 16; e++) {
            const int p = lo + e * w;
            f += p < hi && (upper ? seg[p] <= x : seg[p] < x);
        }
        if (f == 0) {
            hi = lo;
        } else {
            const int nlo = lo + (f - 1) * w + 1;
            hi = min(hi, lo + f * w);
            lo = nlo;
        }
    }
    return lo;
}
// Whole-row kernels with one CTA per 64-query tile starting at q0 (forward,
// dQ): the first key any of its queries can see, rounded down to the key
// tile grid (multiples of BK). Keys before lower_bound(seg[q0]) belong to
// earlier segments (seg[j] < seg[q0] <= seg[i] for every query i >= q0).
// 0 without seg (one segment) or with AXO_ATT_SEG_SKIP 0. A sliding window
// (causal < q0 + 1) also starts it no earlier than the tile of q0 - causal +
// 1, the first key query q0 sees. Called by every thread of the CTA: all get
// the same value.
template <int BK>
__device__ __forceinline__ int ax_seg_kbeg(const int *segb, int q0, int causal) {
    if (!AXO_ATT_SEG_SKIP) return 0;
    const int w = causal && q0 >= causal ? (q0 - causal + 1) / BK * BK : 0;
    if (!segb) return w;
    return max(w, ax_seg_search(segb, 0, q0, segb[q0], false) / BK * BK);
}
// Whole-row kernels with one CTA per key tile [k0, k0 + BK) (dK/dV): the
// end of the queries that can see any of its keys, upper_bound(seg[kl]) with
// kl the tile's last key < S (seg[i] > seg[kl] >= seg[j] for every later
// query i and key j of the tile); S without seg or with AXO_ATT_SEG_SKIP 0.
// Called by every thread of the CTA: all get the same value.
// A sliding window also ends it at kl + causal (the last query that sees key kl).
template <int BK>
__device__ __forceinline__ int ax_seg_qend(const int *segb, int k0, int S, int causal) {
    if (!AXO_ATT_SEG_SKIP) return S;
    const int kl = min(S, k0 + BK) - 1;
    const int w = causal && causal <= S - kl ? kl + causal : S;
    if (!segb) return w;
    return min(w, ax_seg_search(segb, kl + 1, S, segb[kl], true));
}

// Ring-attention blocks (attention_blk.cuh, attention_tc.cuh): seg_s/idx_s[r]
// for rows row0 + r (r < 64) of the batch row starting at element off: seg
// NULL -> 0 (one segment), idx NULL -> the position row0 + r; rows at or past
// S hold 0 (the visibility tests never pair them).
__device__ __forceinline__ void ax_blk_meta(int *seg_s, int *idx_s, const int *seg, const int *idx, i64 off, int row0,
                                            int S) {
    for (int r = threadIdx.x; r < AXO_ATT_BQ; r += blockDim.x) {
        const bool in = row0 + r < S;
        seg_s[r] = seg && in ? seg[off + row0 + r] : 0;
        idx_s[r] = !in ? 0 : idx ? idx[off + row0 + r] : row0 + r;
    }
}

// acc[i][jj] += sum_c A[(ty + 16 i) * LDA + c] * B[c * LDB + tx + 16 jj], c < NC.
template <int NC, int LDA, int LDB, int DJ>
__device__ __forceinline__ void ax_tile_mma(float (&acc)[4][DJ], const float *A, const float *B, int tx, int ty) {
#pragma unroll 4
    for (int c = 0; c < NC; c++) {
        float a[4], b[DJ];
#pragma unroll
        for (int i = 0; i < 4; i++) a[i] = A[(ty + 16 * i) * LDA + c];
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) b[jj] = B[c * LDB + tx + 16 * jj];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int jj = 0; jj < DJ; jj++) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);
    }
}

// s[i][j] = sum_d A[(ty + 16 i) * LD + d] * B[(tx + 16 j) * LD + d], d < HD  (A B^T).
template <int HD, int LD>
__device__ __forceinline__ void ax_tile_abt(float (&s)[4][4], const float *A, const float *B, int tx, int ty) {
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#pragma unroll 4
    for (int d = 0; d < HD; d++) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) a[i] = A[(ty + 16 * i) * LD + d];
#pragma unroll
        for (int j = 0; j < 4; j++) b[j] = B[(tx + 16 * j) * LD + d];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) s[i][j] = fmaf(a[i], b[j], s[i][j]);
    }
}

// Writes acc * mul to rows row0 + ty + 16 i (< S) of a [.., rstride] tensor at base.
template <typename T, int DJ>
__device__ __forceinline__ void ax_store_rows(T *base, i64 rstride, int row0, int S, const float (&acc)[4][DJ],
                                              float mul, int tx, int ty) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = row0 + ty + 16 * i;
        if (r >= S) continue;
#pragma unroll
        for (int jj = 0; jj < DJ; jj++) ax_st(base + (i64)r * rstride + tx + 16 * jj, acc[i][jj] * mul);
    }
}

// ---- tensor cores: mma.sync.m16n8k16 bf16 x bf16 -> fp32 (sm_80+) and its fragments -------------------------------
// Fragments (PTX ISA; g = lane / 4, t = lane % 4; each 32-bit register holds two bf16, the lower column/row index in
// the low half): A 16x16: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..];
// B 16x8: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; C 16x8: c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][..].
// Used by attention_tc.cuh and moe.cuh; the emulator (tests/unit/emu/cuda_bf16.h) defines AXO_TC_EMU and its own
// tc_mma.
typedef unsigned int tc_u32;

#ifndef AXO_TC_EMU
// c += A B (A 16x16 bf16 row-major fragment, B 16x8 col fragment, fp32 C).
// Below sm_80 (no bf16 mma.sync) it traps: a module that holds tensor-core kernels beside others (moe.cuh) still
// builds for older GPUs, where the executor never launches those kernels (tc_arch_ok).
__device__ __forceinline__ void tc_mma(float (&c)[4], const tc_u32 (&a)[4], const tc_u32 (&b)[2]) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)c, (void)a, (void)b;
    __trap();
#endif
}
#endif

__device__ __forceinline__ tc_u32 tc_pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi); // .x (low half) = lo
    return *reinterpret_cast<tc_u32 *>(&h);
}

// A fragment of rows r0.., columns k0.. of a row-major bf16 tile X (leading dim ld).
__device__ __forceinline__ void tc_ldA(tc_u32 (&a)[4], const bf16 *X, int ld, int r0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bf16 *p = X + (r0 + g) * ld + k0 + 2 * t;
    a[0] = *reinterpret_cast<const tc_u32 *>(p);
    a[1] = *reinterpret_cast<const tc_u32 *>(p + 8 * ld);
    a[2] = *reinterpret_cast<const tc_u32 *>(p + 8);
    a[3] = *reinterpret_cast<const tc_u32 *>(p + 8 * ld + 8);
}
// B fragment with B[kk][n] = Y[n0 + n][k0 + kk] (Y row-major by n: K for Q K^T).
__device__ __forceinline__ void tc_ldB_nk(tc_u32 (&b)[2], const bf16 *Y, int ld, int n0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bf16 *p = Y + (n0 + g) * ld + k0 + 2 * t;
    b[0] = *reinterpret_cast<const tc_u32 *>(p);
    b[1] = *reinterpret_cast<const tc_u32 *>(p + 8);
}
// B fragment with B[kk][n] = Z[k0 + kk][n0 + n] (Z row-major by k: V for P V).
__device__ __forceinline__ void tc_ldB_kn(tc_u32 (&b)[2], const bf16 *Z, int ld, int k0, int n0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const unsigned short *p = reinterpret_cast<const unsigned short *>(Z + (k0 + 2 * t) * ld + n0 + g);
    b[0] = (tc_u32)p[0] | ((tc_u32)p[ld] << 16);
    b[1] = (tc_u32)p[8 * ld] | ((tc_u32)p[9 * ld] << 16);
}

