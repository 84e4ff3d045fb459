// moe.cuh — mixture of experts (Qwen3-MoE / Mixtral sparse blocks): the
// router's top-k and the experts' SwiGLU MLPs, the math of
// runtime/cpu_kernels.h (ck_moe_*). Deterministic: no atomics, every sum in
// a fixed order.
//
//  * axo_moe_route_T(logits[N,E], w[N,k], idx[N,k], N, E, k, norm): one
//    thread per token, exactly ck_moe_route (double softmax, each p rounded
//    to float, top-k with the lower expert first among equals, the float
//    renormalisation). axo_moe_route_bwd_T(logits, idx, dw, dlogits, ...):
//    ck_moe_route_bwd's double math.
//  * Grouping the (token, slot) pairs p = t k + j by expert: axo_moe_count
//    (grid E, one block per expert: its pairs' count) then axo_moe_fill (grid
//    E: off[e] = the counts before e, poff[e] the same with each count padded
//    to a multiple of 64 (the GEMM tiles), and the expert's pairs in
//    ascending order into order[off[e] ...]; block e = E - 1 also writes
//    off[E], poff[E]).
//  * axo_moe_gemm_T / axo_moe_gemm_af32_T(A, adiv, B, bt, C, order, off,
//    poff, E, Nc, K): for each expert e and each of its pairs p (sorted
//    position r), C[p, :Nc] = A[p / adiv, :K] . op(B_e) in fp32, where B_e
//    is [Nc, K] (bt = 1: x W^T) or [K, Nc] (bt = 0); A is T (the tokens,
//    adiv = k) or float (a per-pair scratch, adiv = 1). Grid (ceil(N k / 64)
//    + E, ceil(Nc / 64)): a block owns 64 of an expert's rows (the padded
//    offsets say which expert) and 64 columns, 256 threads of 4 x 4 outputs,
//    K in steps of 16 through shared memory. fp32 FMA, no tensor cores yet.
//  * axo_moe_wgrad_T(A float, B T, bdiv, C T, order, off, Ma, Nb): C[e] = sum
//    over e's pairs p (ascending) of A[p, :Ma]^T B[p / bdiv, :Nb] ([E, Ma,
//    Nb], every element written once from its fp32 sum, 0 for an expert
//    without pairs; axo_moe_wgrad_bf32_bf16: B float, C bf16). Grid
//    (ceil(Ma / 64), ceil(Nb / 64), E), 256 threads of 4 x 4.
//  * axo_moe_act_T(gu[P, 2I], act float[P, I]): silu(g) u as ck_swiglu_fwd
//    (silu in double, rounded, times u). axo_moe_act_bwd_T(gu, da float,
//    dgu float[P, 2I]): ck_swiglu_bwd's double formula.
//  * axo_moe_combine_T(o float[N k, H], w[N, k] or NULL, idx, y[N, H], N, k,
//    H): y[t] = the sum over t's slots in ascending expert order of o[p] w[p]
//    (each product rounded, then added: transformers' index_add_ order);
//    w NULL: of o[p] (dx from its per-pair parts).
//  * axo_moe_dw_T(dy[N,H], o float, dw[N,k], N, k, H): dw[p] = dy[t] . o[p]
//    in double, one warp per pair. axo_moe_scale_T(dy, w, do float[N k, H],
//    N, k, H): do[p] = dy[t] w[p].
//
//  * axo_moe_gemm_tc_* / axo_moe_wgrad_tc_*: the same two products on tensor
//    cores (bf16 plans on sm_80+, opt-in by AXO_CUDA_MOE=tc until a GPU has
//    validated them; see their section below).
//
//  * The routers' load-balancing loss (ck_moe_lb_*): axo_moe_lb_rows_T(logits,
//    idx, mask, rows f32[N, 2E+1], N, E, k) writes each token's part of the
//    stats (its slots' experts weighted, its softmax (double, each p rounded)
//    weighted, its weight), which the executor sums over the tokens with
//    bias_grad's column sums; axo_moe_lb_stats_bwd_T(logits, mask, dstats,
//    dlogits, N, E): mask p (g - p.g) in double; axo_moe_lb_loss(stats, out,
//    E) and axo_moe_lb_loss_bwd(stats, dy, dstats, E): one thread, double.
//
// Launch: route / route_bwd / act / act_bwd / combine / dw / scale are 1-D,
// block 256 (grid-stride); count / fill: grid E, block 256; gemm, wgrad as
// above.

template <typename T>
__device__ __forceinline__ void moe_route_body(const T *logits, T *w, int *idx, i64 N, int E, int k, int norm) {
    for (i64 t = ax_tid(); t < N; t += ax_nthreads()) {
        const T *l = logits + t * E;
        double mx = -(double)AXO_INF, sum = 0;
        for (int e = 0; e < E; e++) mx = fmax(mx, (double)ax_ld(l + e));
        for (int e = 0; e < E; e++) sum += exp((double)ax_ld(l + e) - mx);
        int *it = idx + t * k;
        float wt[32];
        for (int j = 0; j < k; j++) {
            int best = -1;
            double bp = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= it[i] == e;
                const double pe = (double)(float)(exp((double)ax_ld(l + e) - mx) / sum);
                if (!taken && (best < 0 || pe > bp || (pe != pe && bp == bp))) bp = pe, best = e; /* NaN first */
            }
            it[j] = best;
            wt[j] = (float)bp;
        }
        if (norm) {
            float s = 0;
            for (int j = 0; j < k; j++) s = __fadd_rn(s, wt[j]);
            for (int j = 0; j < k; j++) wt[j] = __fdiv_rn(wt[j], s);
        }
        for (int j = 0; j < k; j++) ax_st(w + t * k + j, wt[j]);
    }
}
template <typename T>
__device__ __forceinline__ void moe_route_bwd_body(const T *logits, const int *idx, const T *dw, T *dlogits, i64 N, int E,
                                                   int k, int norm) {
    for (i64 t = ax_tid(); t < N; t += ax_nthreads()) {
        const T *l = logits + t * E;
        const int *it = idx + t * k;
        T *dl = dlogits + t * E;
        double mx = -(double)AXO_INF, sum = 0;
        for (int e = 0; e < E; e++) mx = fmax(mx, (double)ax_ld(l + e));
        for (int e = 0; e < E; e++) sum += exp((double)ax_ld(l + e) - mx);
        double s = 0, dot = 0;
        for (int j = 0; j < k; j++) s += exp((double)ax_ld(l + it[j]) - mx) / sum;
        for (int j = 0; j < k; j++) dot += (double)ax_ld(dw + t * k + j) * (exp((double)ax_ld(l + it[j]) - mx) / sum / s);
        double pdp = 0;
        for (int j = 0; j < k; j++) {
            const double dv = norm ? ((double)ax_ld(dw + t * k + j) - dot) / s : (double)ax_ld(dw + t * k + j);
            pdp += exp((double)ax_ld(l + it[j]) - mx) / sum * (double)(float)dv;
        }
        for (int e = 0; e < E; e++) {
            double dp = 0;
            for (int j = 0; j < k; j++)
                if (it[j] == e) dp = (double)(float)(norm ? ((double)ax_ld(dw + t * k + j) - dot) / s : (double)ax_ld(dw + t * k + j));
            ax_st(dl + e, (float)(exp((double)ax_ld(l + e) - mx) / sum * (dp - pdp)));
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_route_f32(const float *logits, float *w, int *idx, i64 N, int E,
                                                                    int k, int norm) {
    moe_route_body(logits, w, idx, N, E, k, norm);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_route_bf16(const bf16 *logits, bf16 *w, int *idx, i64 N, int E,
                                                                     int k, int norm) {
    moe_route_body(logits, w, idx, N, E, k, norm);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_route_bwd_f32(const float *logits, const int *idx, const float *dw,
                                                                        float *dlogits, i64 N, int E, int k, int norm) {
    moe_route_bwd_body(logits, idx, dw, dlogits, N, E, k, norm);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_route_bwd_bf16(const bf16 *logits, const int *idx, const bf16 *dw,
                                                                         bf16 *dlogits, i64 N, int E, int k, int norm) {
    moe_route_bwd_body(logits, idx, dw, dlogits, N, E, k, norm);
}

// ---- grouping --------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(256) axo_moe_count(const int *idx, i64 n, int *counts) {
    __shared__ int part[256];
    const int e = blockIdx.x;
    int c = 0;
    for (i64 i = threadIdx.x; i < n; i += 256) c += idx[i] == e;
    part[threadIdx.x] = c;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) counts[e] = part[0];
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_fill(const int *idx, i64 n, int E, const int *counts, int *off,
                                                               int *poff, int *order) {
    __shared__ int scan[256];
    __shared__ int base[2];
    const int e = blockIdx.x;
    if (threadIdx.x == 0) {
        int o = 0, po = 0;
        for (int f = 0; f < e; f++) o += counts[f], po += (counts[f] + 63) / 64 * 64;
        base[0] = o;
        base[1] = po;
        off[e] = o;
        poff[e] = po;
        if (e == E - 1) off[E] = o + counts[e], poff[E] = po + (counts[e] + 63) / 64 * 64;
    }
    __syncthreads();
    int at = base[0];
    for (i64 c0 = 0; c0 < n; c0 += 256) {
        const i64 i = c0 + threadIdx.x;
        const int flag = i < n && idx[i] == e;
        scan[threadIdx.x] = flag;
        __syncthreads();
        for (int s = 1; s < 256; s <<= 1) { // inclusive scan (Hillis-Steele)
            const int v = (int)threadIdx.x >= s ? scan[threadIdx.x - s] : 0;
            __syncthreads();
            scan[threadIdx.x] += v;
            __syncthreads();
        }
        if (flag) order[at + scan[threadIdx.x] - 1] = (int)i;
        at += scan[255];
        __syncthreads();
    }
}

// ---- the experts' GEMMs -----------------------------------------------------------------
// The expert e whose padded rows hold this block's 64 rows (blockIdx.x), the first of them within e's pairs
// (*local) and e's pair count (*ne); 0 when the block has none of e's pairs.
__device__ __forceinline__ int moe_tile_rows(const int *off, const int *poff, int E, int *e, i64 *local, i64 *ne) {
    const i64 row0 = (i64)blockIdx.x * 64;
    if (row0 >= poff[E]) return 0;
    int lo = 0, hi = E;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (poff[mid] <= row0) lo = mid;
        else hi = mid;
    }
    *e = lo, *local = row0 - poff[lo], *ne = off[lo + 1] - off[lo];
    return *local < *ne;
}
template <typename TA, typename TB>
__device__ __forceinline__ void moe_gemm_body(const TA *A, int adiv, const TB *B, int bt, float *C, const int *order,
                                              const int *off, const int *poff, int E, int Nc, int K) {
    __shared__ float As[16][65];
    __shared__ float Bs[16][65];
    int e;
    i64 local, ne;
    if (!moe_tile_rows(off, poff, E, &e, &local, &ne)) return; // the whole block: no barrier is left waiting
    const int n0 = blockIdx.y * 64, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const TB *Be = B + (i64)e * Nc * K;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = threadIdx.x; i < 1024; i += 256) {
            const int m = i / 16, kk = i % 16;
            const i64 lr = local + m;
            float v = 0;
            if (lr < ne && k0 + kk < K) v = ax_ld(A + (i64)(order[off[e] + lr] / adiv) * K + k0 + kk);
            As[kk][m] = v;
        }
        for (int i = threadIdx.x; i < 1024; i += 256) {
            const int nn = bt ? i / 16 : i % 64, kk = bt ? i % 16 : i / 64, col = n0 + nn;
            float v = 0;
            if (col < Nc && k0 + kk < K) v = bt ? ax_ld(Be + (i64)col * K + k0 + kk) : ax_ld(Be + (i64)(k0 + kk) * Nc + col);
            Bs[kk][nn] = v;
        }
        __syncthreads();
        for (int kk = 0; kk < 16; kk++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(As[kk][ty * 4 + i], Bs[kk][tx * 4 + j], acc[i][j]);
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        const i64 lr = local + ty * 4 + i;
        if (lr >= ne) continue;
        const i64 p = order[off[e] + lr];
        for (int j = 0; j < 4; j++) {
            const int col = n0 + tx * 4 + j;
            if (col < Nc) C[p * Nc + col] = acc[i][j];
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_gemm_f32(const float *A, int adiv, const float *B, int bt, float *C,
                                                                   const int *order, const int *off, const int *poff, int E,
                                                                   int Nc, int K) {
    moe_gemm_body(A, adiv, B, bt, C, order, off, poff, E, Nc, K);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_gemm_bf16(const bf16 *A, int adiv, const bf16 *B, int bt, float *C,
                                                                    const int *order, const int *off, const int *poff, int E,
                                                                    int Nc, int K) {
    moe_gemm_body(A, adiv, B, bt, C, order, off, poff, E, Nc, K);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_gemm_af32_bf16(const float *A, int adiv, const bf16 *B, int bt,
                                                                         float *C, const int *order, const int *off,
                                                                         const int *poff, int E, int Nc, int K) {
    moe_gemm_body(A, adiv, B, bt, C, order, off, poff, E, Nc, K);
}

template <typename TB, typename TC>
__device__ __forceinline__ void moe_wgrad_body(const float *A, const TB *B, int bdiv, TC *C, const int *order,
                                               const int *off, int Ma, int Nb) {
    __shared__ float As[16][65];
    __shared__ float Bs[16][65];
    const int e = blockIdx.z, m0 = blockIdx.x * 64, n0 = blockIdx.y * 64, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const i64 first = off[e], ne = off[e + 1] - off[e];
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    for (i64 r0 = 0; r0 < ne; r0 += 16) {
        for (int i = threadIdx.x; i < 1024; i += 256) {
            const int kk = i / 64, mm = i % 64;
            float a = 0, b = 0;
            if (r0 + kk < ne) {
                const i64 p = order[first + r0 + kk];
                if (m0 + mm < Ma) a = A[p * Ma + m0 + mm];
                if (n0 + mm < Nb) b = ax_ld(B + (p / bdiv) * Nb + n0 + mm);
            }
            As[kk][mm] = a;
            Bs[kk][mm] = b;
        }
        __syncthreads();
        for (int kk = 0; kk < 16; kk++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(As[kk][ty * 4 + i], Bs[kk][tx * 4 + j], acc[i][j]);
        __syncthreads();
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            const int m = m0 + ty * 4 + i, nn = n0 + tx * 4 + j;
            if (m < Ma && nn < Nb) ax_st(C + ((i64)e * Ma + m) * Nb + nn, acc[i][j]);
        }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_wgrad_f32(const float *A, const float *B, int bdiv, float *C,
                                                                    const int *order, const int *off, int Ma, int Nb) {
    moe_wgrad_body(A, B, bdiv, C, order, off, Ma, Nb);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_wgrad_bf16(const float *A, const bf16 *B, int bdiv, bf16 *C,
                                                                     const int *order, const int *off, int Ma, int Nb) {
    moe_wgrad_body(A, B, bdiv, C, order, off, Ma, Nb);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_wgrad_bf32_bf16(const float *A, const float *B, int bdiv, bf16 *C,
                                                                          const int *order, const int *off, int Ma, int Nb) {
    moe_wgrad_body(A, B, bdiv, C, order, off, Ma, Nb);
}

// ---- the experts' GEMMs on tensor cores (bf16 plans, sm_80+, AXO_CUDA_MOE=tc) ------------------------------------
// The products of axo_moe_gemm_T / axo_moe_wgrad_T by mma.sync m16n8k16 (common.cuh's fragments), fp32 sums: the
// operands are staged in shared memory as bf16, an f32 one (the activation, a gradient: what transformers holds
// in bf16 there) rounded as it is staged. Block 64 x 64 outputs, 4 warps of 16 rows x 64 columns, K in steps of
// 32; rows padded to 40 elements (the 8 rows a fragment load touches start 20 words apart: 32 banks).
#define MOE_TC_BK 32
#define MOE_TC_LD (MOE_TC_BK + 8)

__device__ __forceinline__ void moe_tc_tile(const bf16 *As, const bf16 *Bs, float (&acc)[8][4]) {
    const int warp = threadIdx.x >> 5;
#pragma unroll
    for (int ks = 0; ks < MOE_TC_BK; ks += 16) {
        tc_u32 a[4];
        tc_ldA(a, As, MOE_TC_LD, warp * 16, ks);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            tc_u32 b[2];
            tc_ldB_nk(b, Bs, MOE_TC_LD, j * 8, ks);
            tc_mma(acc[j], a, b);
        }
    }
}

// axo_moe_gemm_tc_bf16 (A bf16 tokens) / axo_moe_gemm_tc_af32_bf16 (A f32 per pair): axo_moe_gemm's arguments and
// grid ((n + 63) / 64 + E, ceil(Nc / 64)), block 128.
template <typename TA>
__device__ __forceinline__ void moe_gemm_tc_body(const TA *A, int adiv, const bf16 *B, int bt, float *C, const int *order,
                                                 const int *off, const int *poff, int E, int Nc, int K) {
    __shared__ __align__(16) bf16 As[64 * MOE_TC_LD];
    __shared__ __align__(16) bf16 Bs[64 * MOE_TC_LD];
    int e;
    i64 local, ne;
    if (!moe_tile_rows(off, poff, E, &e, &local, &ne)) return; // the whole block: no barrier is left waiting
    const int n0 = blockIdx.y * 64;
    const bf16 *Be = B + (i64)e * Nc * K;
    float acc[8][4];
    for (int j = 0; j < 8; j++)
        for (int c = 0; c < 4; c++) acc[j][c] = 0;
    for (int k0 = 0; k0 < K; k0 += MOE_TC_BK) {
        for (int i = threadIdx.x; i < 64 * MOE_TC_BK; i += blockDim.x) {
            const int m = i / MOE_TC_BK, kk = i % MOE_TC_BK;
            const i64 lr = local + m;
            float v = 0;
            if (lr < ne && k0 + kk < K) v = ax_ld(A + (i64)(order[off[e] + lr] / adiv) * K + k0 + kk);
            As[m * MOE_TC_LD + kk] = __float2bfloat16_rn(v);
        }
        for (int i = threadIdx.x; i < 64 * MOE_TC_BK; i += blockDim.x) {
            // bt: B_e [Nc, K], read along K; else B_e [K, Nc], read along Nc (coalesced either way)
            const int nn = bt ? i / MOE_TC_BK : i % 64, kk = bt ? i % MOE_TC_BK : i / 64, col = n0 + nn;
            float v = 0;
            if (col < Nc && k0 + kk < K) v = bt ? ax_ld(Be + (i64)col * K + k0 + kk) : ax_ld(Be + (i64)(k0 + kk) * Nc + col);
            Bs[nn * MOE_TC_LD + kk] = __float2bfloat16_rn(v);
        }
        __syncthreads();
        moe_tc_tile(As, Bs, acc);
        __syncthreads();
    }
    const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    for (int h = 0; h < 2; h++) {
        const i64 lr = local + warp * 16 + g + 8 * h;
        if (lr >= ne) continue;
        const i64 p = order[off[e] + lr];
        for (int j = 0; j < 8; j++) {
            const int col = n0 + j * 8 + 2 * t;
            if (col < Nc) C[p * Nc + col] = acc[j][2 * h];
            if (col + 1 < Nc) C[p * Nc + col + 1] = acc[j][2 * h + 1];
        }
    }
}
extern "C" __global__ void __launch_bounds__(128) axo_moe_gemm_tc_bf16(const bf16 *A, int adiv, const bf16 *B, int bt,
                                                                       float *C, const int *order, const int *off,
                                                                       const int *poff, int E, int Nc, int K) {
    moe_gemm_tc_body(A, adiv, B, bt, C, order, off, poff, E, Nc, K);
}
extern "C" __global__ void __launch_bounds__(128) axo_moe_gemm_tc_af32_bf16(const float *A, int adiv, const bf16 *B, int bt,
                                                                            float *C, const int *order, const int *off,
                                                                            const int *poff, int E, int Nc, int K) {
    moe_gemm_tc_body(A, adiv, B, bt, C, order, off, poff, E, Nc, K);
}

// axo_moe_wgrad_tc_bf16 (B bf16) / axo_moe_wgrad_tc_bf32_bf16 (B f32): C[e] (bf16) = sum over e's pairs of
// A[p, :Ma]^T B[p / bdiv, :Nb]; grid (ceil(Ma / 64), ceil(Nb / 64), E), block 128; 0 for an expert without pairs.
template <typename TB>
__device__ __forceinline__ void moe_wgrad_tc_body(const float *A, const TB *B, int bdiv, bf16 *C, const int *order,
                                                  const int *off, int Ma, int Nb) {
    __shared__ __align__(16) bf16 As[64 * MOE_TC_LD];
    __shared__ __align__(16) bf16 Bs[64 * MOE_TC_LD];
    const int e = blockIdx.z, m0 = blockIdx.x * 64, n0 = blockIdx.y * 64;
    const i64 first = off[e], ne = off[e + 1] - off[e];
    float acc[8][4];
    for (int j = 0; j < 8; j++)
        for (int c = 0; c < 4; c++) acc[j][c] = 0;
    for (i64 r0 = 0; r0 < ne; r0 += MOE_TC_BK) {
        for (int i = threadIdx.x; i < 64 * MOE_TC_BK; i += blockDim.x) {
            const int kk = i / 64, mm = i % 64;
            float a = 0, b = 0;
            if (r0 + kk < ne) {
                const i64 p = order[first + r0 + kk];
                if (m0 + mm < Ma) a = A[p * Ma + m0 + mm];
                if (n0 + mm < Nb) b = ax_ld(B + (p / bdiv) * Nb + n0 + mm);
            }
            As[mm * MOE_TC_LD + kk] = __float2bfloat16_rn(a);
            Bs[mm * MOE_TC_LD + kk] = __float2bfloat16_rn(b);
        }
        __syncthreads();
        moe_tc_tile(As, Bs, acc);
        __syncthreads();
    }
    const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    for (int h = 0; h < 2; h++) {
        const int m = m0 + warp * 16 + g + 8 * h;
        if (m >= Ma) continue;
        for (int j = 0; j < 8; j++) {
            const int nn = n0 + j * 8 + 2 * t;
            if (nn < Nb) ax_st(C + ((i64)e * Ma + m) * Nb + nn, acc[j][2 * h]);
            if (nn + 1 < Nb) ax_st(C + ((i64)e * Ma + m) * Nb + nn + 1, acc[j][2 * h + 1]);
        }
    }
}
extern "C" __global__ void __launch_bounds__(128) axo_moe_wgrad_tc_bf16(const float *A, const bf16 *B, int bdiv, bf16 *C,
                                                                        const int *order, const int *off, int Ma, int Nb) {
    moe_wgrad_tc_body(A, B, bdiv, C, order, off, Ma, Nb);
}
extern "C" __global__ void __launch_bounds__(128) axo_moe_wgrad_tc_bf32_bf16(const float *A, const float *B, int bdiv,
                                                                             bf16 *C, const int *order, const int *off,
                                                                             int Ma, int Nb) {
    moe_wgrad_tc_body(A, B, bdiv, C, order, off, Ma, Nb);
}

// ---- per pair, per token ----------------------------------------------------------------
template <typename T>
__device__ __forceinline__ void moe_act_body(const T *gu, float *act, i64 P, int I) {
    for (i64 i = ax_tid(); i < P * I; i += ax_nthreads()) {
        const i64 p = i / I, c = i - p * I;
        const double g = (double)ax_ld(gu + p * 2 * I + c);
        const float s = (float)(g / (1.0 + exp(-g)));
        act[i] = __fmul_rn(s, ax_ld(gu + p * 2 * I + I + c));
    }
}
template <typename T>
__device__ __forceinline__ void moe_act_bwd_body(const T *gu, const float *da, float *dgu, i64 P, int I) {
    for (i64 i = ax_tid(); i < P * I; i += ax_nthreads()) {
        const i64 p = i / I, c = i - p * I;
        const double g = (double)ax_ld(gu + p * 2 * I + c), u = (double)ax_ld(gu + p * 2 * I + I + c), d = (double)da[i];
        const double sig = 1.0 / (1.0 + exp(-g));
        dgu[p * 2 * I + c] = (float)(d * u * sig * (1.0 + g * (1.0 - sig)));
        dgu[p * 2 * I + I + c] = (float)(d * (g * sig));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_act_f32(const float *gu, float *act, i64 P, int I) {
    moe_act_body(gu, act, P, I);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_act_bf16(const bf16 *gu, float *act, i64 P, int I) {
    moe_act_body(gu, act, P, I);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_act_bwd_f32(const float *gu, const float *da, float *dgu, i64 P,
                                                                      int I) {
    moe_act_bwd_body(gu, da, dgu, P, I);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_act_bwd_bf16(const bf16 *gu, const float *da, float *dgu, i64 P,
                                                                       int I) {
    moe_act_bwd_body(gu, da, dgu, P, I);
}

template <typename T>
__device__ __forceinline__ void moe_combine_body(const float *o, const T *w, const int *idx, T *y, i64 N, int k, int H) {
    for (i64 i = ax_tid(); i < N * H; i += ax_nthreads()) {
        const i64 t = i / H, h = i - t * H;
        const int *it = idx + t * k;
        float acc = 0;
        int prev = -1;
        for (int c = 0; c < k; c++) { // the slots in ascending expert order
            int j = -1;
            for (int s = 0; s < k; s++)
                if (it[s] > prev && (j < 0 || it[s] < it[j])) j = s;
            if (j < 0) break;
            prev = it[j];
            const float v = o[(t * k + j) * H + h];
            acc = __fadd_rn(acc, w ? __fmul_rn(v, ax_ld(w + t * k + j)) : v);
        }
        ax_st(y + i, acc);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_combine_f32(const float *o, const float *w, const int *idx, float *y,
                                                                      i64 N, int k, int H) {
    moe_combine_body(o, w, idx, y, N, k, H);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_combine_bf16(const float *o, const bf16 *w, const int *idx, bf16 *y,
                                                                       i64 N, int k, int H) {
    moe_combine_body(o, w, idx, y, N, k, H);
}

template <typename T>
__device__ __forceinline__ void moe_dw_body(const T *dy, const float *o, T *dw, i64 N, int k, int H) {
    const i64 lane = threadIdx.x % 32, warps = (i64)gridDim.x * (blockDim.x / 32);
    for (i64 p = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; p < N * k; p += warps) {
        const i64 t = p / k;
        double s = 0;
        for (int h = (int)lane; h < H; h += 32) s += (double)ax_ld(dy + t * H + h) * (double)o[p * H + h];
        for (int m = 16; m > 0; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
        if (lane == 0) ax_st(dw + p, (float)s);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_dw_f32(const float *dy, const float *o, float *dw, i64 N, int k,
                                                                 int H) {
    moe_dw_body(dy, o, dw, N, k, H);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_dw_bf16(const bf16 *dy, const float *o, bf16 *dw, i64 N, int k,
                                                                  int H) {
    moe_dw_body(dy, o, dw, N, k, H);
}

template <typename T>
__device__ __forceinline__ void moe_scale_body(const T *dy, const T *w, float *dout, i64 N, int k, int H) {
    for (i64 i = ax_tid(); i < N * k * H; i += ax_nthreads()) {
        const i64 p = i / H, h = i - p * H;
        dout[i] = __fmul_rn(ax_ld(dy + (p / k) * H + h), ax_ld(w + p));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_scale_f32(const float *dy, const float *w, float *dout, i64 N, int k,
                                                                    int H) {
    moe_scale_body(dy, w, dout, N, k, H);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_scale_bf16(const bf16 *dy, const bf16 *w, float *dout, i64 N, int k,
                                                                     int H) {
    moe_scale_body(dy, w, dout, N, k, H);
}

// ---- gpt-oss's experts (ck_moe_oss_*, ck_oss_act*) -----------------------------------------
// axo_moe_bias_T(C float[n, Nc], b[E, Nc], idx[n], n, Nc): C[p] += b[idx[p]] (the expert biases, fp32 adds).
// axo_moe_oss_act_T(gu[P, 2I] (gate, up interleaved), act float[P, I], P, I, alpha, limit): g = min(gate, limit),
// u = clamp(up, -limit, limit), act = (u + 1) g sigmoid(alpha g) in double (ck_oss_act);
// axo_moe_oss_act_bwd_T(gu, da float, dgu float[P, 2I], ...): ck_oss_act_bwd (gradient only inside the clamps,
// bounds included). axo_moe_colsum_T(A float[n, C], order, off, out[E, C], E, C): out[e] = the column sums of A
// over e's pairs in ascending order (double), 0 for an expert without pairs. All 1-D, block 256, grid-stride.
template <typename T>
__device__ __forceinline__ void moe_bias_body(float *C, const T *b, const int *idx, i64 n, int Nc) {
    for (i64 i = ax_tid(); i < n * Nc; i += ax_nthreads()) {
        const i64 p = i / Nc, c = i - p * Nc;
        C[i] = __fadd_rn(C[i], ax_ld(b + (i64)idx[p] * Nc + c));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_bias_f32(float *C, const float *b, const int *idx, i64 n, int Nc) {
    moe_bias_body(C, b, idx, n, Nc);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_bias_bf16(float *C, const bf16 *b, const int *idx, i64 n, int Nc) {
    moe_bias_body(C, b, idx, n, Nc);
}
template <typename T>
__device__ __forceinline__ void moe_oss_act_body(const T *gu, const float *da, float *out, i64 P, int I, double alpha,
                                                 double limit) {
    for (i64 i = ax_tid(); i < P * I; i += ax_nthreads()) {
        const i64 p = i / I, c = i - p * I;
        const double g0 = (double)ax_ld(gu + p * 2 * I + 2 * c), u0 = (double)ax_ld(gu + p * 2 * I + 2 * c + 1);
        const double g = fmin(g0, limit), u = fmax(fmin(u0, limit), -limit);
        if (!da) {
            out[i] = (float)((u + 1) * (g / (1 + exp(-alpha * g))));
            continue;
        }
        const double d = (double)da[i], sg = 1 / (1 + exp(-alpha * g));
        out[p * 2 * I + 2 * c] = (float)(g0 <= limit ? d * (u + 1) * (sg + alpha * g * sg * (1 - sg)) : 0);
        out[p * 2 * I + 2 * c + 1] = (float)(u0 >= -limit && u0 <= limit ? d * g * sg : 0);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_oss_act_f32(const float *gu, float *act, i64 P, int I, double alpha,
                                                                      double limit) {
    moe_oss_act_body(gu, (const float *)0, act, P, I, alpha, limit);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_oss_act_bf16(const bf16 *gu, float *act, i64 P, int I, double alpha,
                                                                       double limit) {
    moe_oss_act_body(gu, (const float *)0, act, P, I, alpha, limit);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_oss_act_bwd_f32(const float *gu, const float *da, float *dgu, i64 P,
                                                                          int I, double alpha, double limit) {
    moe_oss_act_body(gu, da, dgu, P, I, alpha, limit);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_oss_act_bwd_bf16(const bf16 *gu, const float *da, float *dgu, i64 P,
                                                                           int I, double alpha, double limit) {
    moe_oss_act_body(gu, da, dgu, P, I, alpha, limit);
}
template <typename T>
__device__ __forceinline__ void moe_colsum_body(const float *A, const int *order, const int *off, T *out, int E, int C) {
    for (i64 i = ax_tid(); i < (i64)E * C; i += ax_nthreads()) {
        const i64 e = i / C, c = i - e * C;
        double s = 0;
        for (i64 r = off[e]; r < off[e + 1]; r++) s += (double)A[(i64)order[r] * C + c];
        ax_st(out + i, (float)s);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_colsum_f32(const float *A, const int *order, const int *off,
                                                                     float *out, int E, int C) {
    moe_colsum_body(A, order, off, out, E, C);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_colsum_bf16(const float *A, const int *order, const int *off,
                                                                      bf16 *out, int E, int C) {
    moe_colsum_body(A, order, off, out, E, C);
}
// axo_moe_expand_T(x[N, H], xe float[N k, H], N, k, H): each pair's token row as fp32 (the left operand of the
// transposed experts' dWgu = x^T dgu through axo_moe_wgrad). 1-D, block 256.
template <typename T>
__device__ __forceinline__ void moe_expand_body(const T *x, float *xe, i64 N, int k, int H) {
    for (i64 i = ax_tid(); i < N * k * H; i += ax_nthreads()) {
        const i64 p = i / H, h = i - p * H;
        xe[i] = ax_ld(x + (p / k) * H + h);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_expand_f32(const float *x, float *xe, i64 N, int k, int H) {
    moe_expand_body(x, xe, N, k, H);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_expand_bf16(const bf16 *x, float *xe, i64 N, int k, int H) {
    moe_expand_body(x, xe, N, k, H);
}

// ---- the routers' load-balancing loss ---------------------------------------------------
template <typename T>
__device__ __forceinline__ void moe_lb_rows_body(const T *logits, const int *idx, const float *mask, float *rows, i64 N,
                                                 int E, int k) {
    for (i64 t = ax_tid(); t < N; t += ax_nthreads()) {
        const T *l = logits + t * E;
        float *o = rows + t * (2 * E + 1);
        const float w = mask[t];
        double mx = -(double)AXO_INF, z = 0;
        for (int e = 0; e < E; e++) mx = fmax(mx, (double)ax_ld(l + e));
        for (int e = 0; e < E; e++) z += exp((double)ax_ld(l + e) - mx);
        for (int e = 0; e < E; e++) {
            o[e] = 0;
            o[E + e] = (float)((double)w * (double)(float)(exp((double)ax_ld(l + e) - mx) / z));
        }
        for (int j = 0; j < k; j++) {
            const int e = idx[t * k + j];
            if (e >= 0 && e < E) o[e] += w;
        }
        o[2 * E] = w;
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_lb_rows_f32(const float *logits, const int *idx, const float *mask,
                                                                      float *rows, i64 N, int E, int k) {
    moe_lb_rows_body(logits, idx, mask, rows, N, E, k);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_lb_rows_bf16(const bf16 *logits, const int *idx, const float *mask,
                                                                       float *rows, i64 N, int E, int k) {
    moe_lb_rows_body(logits, idx, mask, rows, N, E, k);
}
template <typename T>
__device__ __forceinline__ void moe_lb_stats_bwd_body(const T *logits, const float *mask, const float *dstats, T *dlogits,
                                                      i64 N, int E) {
    const float *g = dstats + E;
    for (i64 t = ax_tid(); t < N; t += ax_nthreads()) {
        const T *l = logits + t * E;
        double mx = -(double)AXO_INF, z = 0, s = 0;
        for (int e = 0; e < E; e++) mx = fmax(mx, (double)ax_ld(l + e));
        for (int e = 0; e < E; e++) z += exp((double)ax_ld(l + e) - mx);
        for (int e = 0; e < E; e++) s += exp((double)ax_ld(l + e) - mx) / z * (double)g[e];
        for (int e = 0; e < E; e++) {
            const double p = exp((double)ax_ld(l + e) - mx) / z;
            ax_st(dlogits + t * E + e, (float)((double)mask[t] * p * ((double)g[e] - s)));
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_lb_stats_bwd_f32(const float *logits, const float *mask,
                                                                           const float *dstats, float *dlogits, i64 N, int E) {
    moe_lb_stats_bwd_body(logits, mask, dstats, dlogits, N, E);
}
extern "C" __global__ void __launch_bounds__(256) axo_moe_lb_stats_bwd_bf16(const bf16 *logits, const float *mask,
                                                                            const float *dstats, bf16 *dlogits, i64 N, int E) {
    moe_lb_stats_bwd_body(logits, mask, dstats, dlogits, N, E);
}
extern "C" __global__ void axo_moe_lb_loss(const float *stats, float *out, int E) {
    if (threadIdx.x || blockIdx.x) return;
    const double T = stats[2 * E];
    double s = 0;
    for (int e = 0; T != 0 && e < E; e++) s += ((double)stats[e] / T) * ((double)stats[E + e] / T);
    out[0] = (float)((double)E * s);
}
extern "C" __global__ void axo_moe_lb_loss_bwd(const float *stats, const float *dy, float *dstats, int E) {
    const double T = stats[2 * E];
    for (int i = threadIdx.x; i < 2 * E + 1; i += blockDim.x)
        dstats[i] = i >= E && i < 2 * E && T != 0 ? (float)((double)dy[0] * (double)E * (double)stats[i - E] / (T * T)) : 0.0f;
}
