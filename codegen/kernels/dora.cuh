// dora.cuh — DoRA (PEFT's use_dora): the adapted weight's row norms, the
// magnitude scaling of a layer's output, and its gradient; and PEFT's
// ParamWrapper LoRA (lora_delta: a weight's own low-rank delta, the MoE
// experts' and routers').
//
// Math (ck_dora_*, runtime/cpu_kernels.c; ir/ops.def):
//  * axo_dora_norm_T(w, b, a, norm, N, K, r, s): norm[i] = sqrt(sum_k v^2),
//    v = w[i,k] + s * sum_j b[i,j] a[j,k] (w of dtype T, b f32 [N,r], a f32
//    [r,K]). Grid N (one block per row), block 256: each thread forms its
//    columns' v in f32 and sums v^2 in double; ax_block_sum adds the
//    threads. The CPU sums in double too, in column order: equal to a
//    few f32 ulps, not bit for bit.
//  * axo_dora_scale_T(base, lora, m, norm, y, R, N, s): g = m[c] / norm[c];
//    y = (g - 1) * base + (g * s) * lora, each product and the sum rounded
//    once (no FMA), as the CPU does in f32, then rounded to T. 1-D, block
//    256, grid-stride over R*N.
//  * axo_dora_scale_bwd_T(base, lora, m, norm, dy, dbase, dlora, part, R, N,
//    s): dbase = (g - 1) * dy, dlora = (g * s) * dy (rounded to T), and the
//    column sums of dy * (base + s * lora) as bias_grad_partial does them:
//    grid (ceil(N/32), P), block (32, 8), double per thread, fp32 partials
//    part[P*N]. axo_dora_dm_reduce: dm[c] = (sum of the P partials in
//    order, double) / norm[c], f32. The CPU sums the rows in order: equal
//    to rounding, not bit for bit.
//  * axo_lora_delta_T(w, a, b, out, E, O, I, r, s, t): out = w + s B_e A_e
//    (ck_lora_delta: w, out [E, O, I]; A_e rows e*r.. of a [E*r, I]; B_e's
//    column j is column j*E+e of b [O, r*E]), the sum over j in fp32 (the
//    CPU's in double: equal to rounding). 1-D grid-stride over E*O*I, block
//    256. t = 1: w, out (and the backwards' dw) are stored [E, I, O]
//    (gpt-oss's experts, ck_lora_delta_t: out_e = w_e + s (B_e A_e)^T).
//  * axo_lora_delta_da_T(a, b, dw, da, E, O, I, r, s): da = s B_e^T dw_e, a
//    thread per (e, column i, 16 of the r rows), fp32 sums over o in o
//    order. 1-D, block 256.
//  * axo_lora_delta_db_T(a, b, dw, db, E, O, I, r, s): db = s dw_e A_e^T,
//    one block per (e, o) and 16 of the r columns (grid (E*O, ceil(r/16))),
//    each thread's columns i in fp32, then the block's sum (ax_block_sum).
//    fp32, not double: an MoE layer's delta is E*O*I*r multiply-adds each
//    way (Qwen3-30B-A3B at r 64: about 10^12 a step), and double runs at a
//    fraction of fp32's rate on most GPUs.
template <typename T>
__device__ __forceinline__ void dora_norm_body(const T *w, const float *b, const float *a, float *norm, i64 N, i64 K,
                                               i64 r, float s) {
    __shared__ double red[32];
    const i64 i = blockIdx.x;
    if (i >= N) return;
    double acc = 0.0;
    for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
        float l = 0.0f;
        for (i64 j = 0; j < r; j++) l = __fadd_rn(l, __fmul_rn(b[i * r + j], a[j * K + k]));
        const float v = __fadd_rn(ax_ld(w + i * K + k), __fmul_rn(s, l));
        acc += (double)v * (double)v;
    }
    acc = ax_block_sum(acc, red);
    if (threadIdx.x == 0) norm[i] = (float)sqrt(acc);
}
extern "C" __global__ void __launch_bounds__(256) axo_dora_norm_f32(const float *w, const float *b, const float *a,
                                                                    float *norm, i64 N, i64 K, i64 r, float s) {
    dora_norm_body(w, b, a, norm, N, K, r, s);
}
extern "C" __global__ void __launch_bounds__(256) axo_dora_norm_bf16(const bf16 *w, const float *b, const float *a,
                                                                     float *norm, i64 N, i64 K, i64 r, float s) {
    dora_norm_body(w, b, a, norm, N, K, r, s);
}

template <typename T>
__device__ __forceinline__ void dora_scale_body(const T *base, const T *lora, const float *m, const float *norm, T *y,
                                                i64 R, i64 N, float s) {
    const i64 n = R * N;
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) {
        const i64 c = i % N;
        const float g = __fdiv_rn(m[c], norm[c]);
        const float v = __fadd_rn(__fmul_rn(__fsub_rn(g, 1.0f), ax_ld(base + i)), __fmul_rn(__fmul_rn(g, s), ax_ld(lora + i)));
        ax_st(y + i, v);
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_dora_scale_f32(const float *base, const float *lora, const float *m,
                                                                     const float *norm, float *y, i64 R, i64 N, float s) {
    dora_scale_body(base, lora, m, norm, y, R, N, s);
}
extern "C" __global__ void __launch_bounds__(256) axo_dora_scale_bf16(const bf16 *base, const bf16 *lora, const float *m,
                                                                      const float *norm, bf16 *y, i64 R, i64 N, float s) {
    dora_scale_body(base, lora, m, norm, y, R, N, s);
}

template <typename T>
__device__ __forceinline__ void dora_scale_bwd_body(const T *base, const T *lora, const float *m, const float *norm,
                                                    const T *dy, T *dbase, T *dlora, float *part, i64 R, i64 N,
                                                    float s) {
    __shared__ double acc[8][33];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const i64 c = (i64)blockIdx.x * 32 + tx;
    double sum = 0.0;
    if (c < N) {
        const float g = __fdiv_rn(m[c], norm[c]), gm1 = __fsub_rn(g, 1.0f), gs = __fmul_rn(g, s);
        for (i64 r = (i64)blockIdx.y * 8 + ty; r < R; r += (i64)gridDim.y * 8) {
            const i64 i = r * N + c;
            const float d = ax_ld(dy + i);
            ax_st(dbase + i, __fmul_rn(gm1, d));
            ax_st(dlora + i, __fmul_rn(gs, d));
            const float t = __fadd_rn(ax_ld(base + i), __fmul_rn(s, ax_ld(lora + i)));
            sum += (double)d * (double)t;
        }
    }
    acc[ty][tx] = sum;
    __syncthreads();
    if (ty == 0 && c < N) {
        double t = acc[0][tx];
#pragma unroll
        for (int k = 1; k < 8; k++) t += acc[k][tx];
        part[(i64)blockIdx.y * N + c] = (float)t;
    }
}
extern "C" __global__ void __launch_bounds__(256)
    axo_dora_scale_bwd_f32(const float *base, const float *lora, const float *m, const float *norm, const float *dy,
                           float *dbase, float *dlora, float *part, i64 R, i64 N, float s) {
    dora_scale_bwd_body(base, lora, m, norm, dy, dbase, dlora, part, R, N, s);
}
extern "C" __global__ void __launch_bounds__(256)
    axo_dora_scale_bwd_bf16(const bf16 *base, const bf16 *lora, const float *m, const float *norm, const bf16 *dy,
                            bf16 *dbase, bf16 *dlora, float *part, i64 R, i64 N, float s) {
    dora_scale_bwd_body(base, lora, m, norm, dy, dbase, dlora, part, R, N, s);
}
extern "C" __global__ void __launch_bounds__(256) axo_dora_dm_reduce(const float *part, int nparts, i64 N,
                                                                     const float *norm, float *dm) {
    for (i64 c = ax_tid(); c < N; c += ax_nthreads()) {
        double t = 0.0;
        for (int p = 0; p < nparts; p++) t += (double)part[(i64)p * N + c];
        dm[c] = (float)(t / (double)norm[c]);
    }
}

// ---- ParamWrapper LoRA: w + s B_e A_e and its gradients ------------------------------------------------------------
// element (e, o, i) of a weight [E, O, I], or of one stored [E, I, O] (t)
__device__ __forceinline__ i64 lora_widx(i64 e, i64 o, i64 i, i64 O, i64 I, int t) {
    return t ? (e * I + i) * O + o : (e * O + o) * I + i;
}
template <typename T>
__device__ __forceinline__ void lora_delta_body(const T *w, const T *a, const T *b, T *out, i64 E, i64 O, i64 I, i64 r,
                                                double s, int t) {
    const i64 n = E * O * I;
    for (i64 x = ax_tid(); x < n; x += ax_nthreads()) {
        const i64 e = x / (O * I), o = t ? x % O : (x / I) % O, i = t ? (x / O) % I : x % I;
        float acc = 0;
        for (i64 j = 0; j < r; j++) acc = fmaf(ax_ld(b + o * r * E + j * E + e), ax_ld(a + (e * r + j) * I + i), acc);
        ax_st(out + x, (float)((double)ax_ld(w + x) + s * (double)acc));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_f32(const float *w, const float *a, const float *b,
                                                                     float *out, i64 E, i64 O, i64 I, i64 r, double s,
                                                                     int t) {
    lora_delta_body(w, a, b, out, E, O, I, r, s, t);
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_bf16(const bf16 *w, const bf16 *a, const bf16 *b, bf16 *out,
                                                                      i64 E, i64 O, i64 I, i64 r, double s, int t) {
    lora_delta_body(w, a, b, out, E, O, I, r, s, t);
}

#define AXO_LORA_JB 16 /* rows of A (columns of B) a thread sums at once */
template <typename T>
__device__ __forceinline__ void lora_delta_da_body(const T *a, const T *b, const T *dw, T *da, i64 E, i64 O, i64 I, i64 r,
                                                   double s, int t) {
    (void)a;
    const i64 nj = (r + AXO_LORA_JB - 1) / AXO_LORA_JB, n = E * nj * I;
    for (i64 x = ax_tid(); x < n; x += ax_nthreads()) {
        const i64 e = x / (nj * I), j0 = ((x / I) % nj) * AXO_LORA_JB, i = x % I;
        const int m = (int)(r - j0 < AXO_LORA_JB ? r - j0 : AXO_LORA_JB);
        float acc[AXO_LORA_JB];
#pragma unroll
        for (int j = 0; j < AXO_LORA_JB; j++) acc[j] = 0;
        for (i64 o = 0; o < O; o++) {
            const float g = ax_ld(dw + lora_widx(e, o, i, O, I, t));
            const T *bo = b + o * r * E + e;
#pragma unroll
            for (int j = 0; j < AXO_LORA_JB; j++)
                if (j < m) acc[j] = fmaf(ax_ld(bo + (j0 + j) * E), g, acc[j]);
        }
        for (int j = 0; j < m; j++) ax_st(da + (e * r + j0 + j) * I + i, (float)(s * (double)acc[j]));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_da_f32(const float *a, const float *b, const float *dw,
                                                                        float *da, i64 E, i64 O, i64 I, i64 r, double s,
                                                                        int t) {
    lora_delta_da_body(a, b, dw, da, E, O, I, r, s, t);
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_da_bf16(const bf16 *a, const bf16 *b, const bf16 *dw,
                                                                         bf16 *da, i64 E, i64 O, i64 I, i64 r, double s,
                                                                         int t) {
    lora_delta_da_body(a, b, dw, da, E, O, I, r, s, t);
}

template <typename T>
__device__ __forceinline__ void lora_delta_db_body(const T *a, const T *b, const T *dw, T *db, i64 E, i64 O, i64 I, i64 r,
                                                   double s, int t) {
    (void)b;
    __shared__ float red[32];
    const i64 eo = blockIdx.x, e = eo / O, o = eo % O, j0 = (i64)blockIdx.y * AXO_LORA_JB;
    if (e >= E || j0 >= r) return;
    const int m = (int)(r - j0 < AXO_LORA_JB ? r - j0 : AXO_LORA_JB);
    float acc[AXO_LORA_JB];
#pragma unroll
    for (int j = 0; j < AXO_LORA_JB; j++) acc[j] = 0;
    for (i64 i = threadIdx.x; i < I; i += blockDim.x) {
        const float gi = ax_ld(dw + lora_widx(e, o, i, O, I, t));
#pragma unroll
        for (int j = 0; j < AXO_LORA_JB; j++)
            if (j < m) acc[j] = fmaf(gi, ax_ld(a + (e * r + j0 + j) * I + i), acc[j]);
    }
    for (int j = 0; j < m; j++) {
        const float t = ax_block_sum(acc[j], red);
        if (threadIdx.x == 0) ax_st(db + o * r * E + (j0 + j) * E + e, (float)(s * (double)t));
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_db_f32(const float *a, const float *b, const float *dw,
                                                                        float *db, i64 E, i64 O, i64 I, i64 r, double s,
                                                                        int t) {
    lora_delta_db_body(a, b, dw, db, E, O, I, r, s, t);
}
extern "C" __global__ void __launch_bounds__(256) axo_lora_delta_db_bf16(const bf16 *a, const bf16 *b, const bf16 *dw,
                                                                         bf16 *db, i64 E, i64 O, i64 I, i64 r, double s,
                                                                         int t) {
    lora_delta_db_body(a, b, dw, db, E, O, I, r, s, t);
}
