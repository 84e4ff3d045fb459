// rmsnorm.cuh — RMSNorm (HF LlamaRMSNorm) forward and backward.
//
// Math (ck_rmsnorm_*), per row x[H] with weight w[H]:
//   r = 1 / sqrt((float)(sum x^2 / H) + eps)   (correctly rounded sqrt, div)
//   fwd: y = w' * (x * r), the two products rounded separately as torch does,
//        w' = offset + w (Gemma3RMSNorm's 1 + w in fp32; offset 0: Llama's w).
//   bwd: xhat = x r, c = sum(dy w xhat) / H,
//        dx = r (dy w - xhat c),  dw (=, or += when accumulate) sum_rows dy xhat.
// Sums within a row are fp32 (per-thread, then a fixed block tree).
//
// fwd launch: grid R (one block per row), block 256, no dynamic smem.
//   Thread t handles columns t*V.., t*V + 256V.. as 16-byte vectors when H % V
//   == 0 and the pointers are aligned (V = 4 f32 / 8 bf16), else columns
//   t, t+256, ... Pass 1 reads the row for sum x^2, pass 2 re-reads it (L1/L2
//   hit) with w and writes y. Optional rstd[R] (fp32) output, may be NULL.
// bwd launch (two kernels, deterministic, no float atomics):
//   1. axo_rmsnorm_bwd_T: grid P blocks (launcher's choice from R, e.g.
//      min(R, 2 * SMs)), block 256, dynamic smem H * 4 bytes (dw accumulator;
//      raise cudaFuncAttributeMaxDynamicSharedMemorySize above 48 KiB, i.e.
//      for H > 12288). Block p does rows p, p + P, ...: one block reduction
//      gives sum x^2 and sum dy w x, then dx is written and each thread adds
//      dy * xhat into the smem accumulator columns it owns (the same columns
//      for every row: no races, rows in ascending order). At the end
//      part[p*H + c] = accumulator.
//   2. axo_rmsnorm_dw_reduce_T: 1-D, block 256, grid ceil(H/256): dw[c] (+)=
//      sum over p ascending of part[p*H + c] (double).
//   Scratch: part[P*H] fp32. Traffic: x, dy read twice per row (second time
//   from cache), w per row (cache), dx written once.

template <typename T, int V>
__device__ __forceinline__ void rms_row_sums(const T *x, const T *dy, const T *w, i64 H, float off, float &ss,
                                             float &dot) {
    // dot = sum dy*w*x (only when dy != NULL)
    ss = 0.0f;
    dot = 0.0f;
    for (i64 c = (i64)threadIdx.x * V; c < H; c += (i64)blockDim.x * V) {
        float xv[V];
        if constexpr (V == 1) xv[0] = ax_ld(x + c);
        else ax_ld16(x + c, xv);
#pragma unroll
        for (int e = 0; e < V; e++) ss = fmaf(xv[e], xv[e], ss);
        if (dy) {
            float dv[V], wv[V];
            if constexpr (V == 1) {
                dv[0] = ax_ld(dy + c);
                wv[0] = ax_ld(w + c);
            } else {
                ax_ld16(dy + c, dv);
                ax_ld16(w + c, wv);
            }
#pragma unroll
            for (int e = 0; e < V; e++) dot = fmaf(dv[e] * __fadd_rn(off, wv[e]), xv[e], dot);
        }
    }
}

__device__ __forceinline__ float rms_rstd(float ss, i64 H, float eps) {
    float var = ss / (float)H;
    return 1.0f / sqrtf(__fadd_rn(var, eps));
}

template <typename T, int V>
__device__ __forceinline__ void rmsnorm_fwd_row(const T *x, const T *w, T *y, float *rstd, i64 H, float eps,
                                                float off) {
    __shared__ float red[32];
    const i64 row = blockIdx.x;
    x += row * H;
    y += row * H;
    float ss, dot;
    rms_row_sums<T, V>(x, (const T *)0, w, H, off, ss, dot);
    ss = ax_block_sum(ss, red);
    const float r = rms_rstd(ss, H, eps);
    if (rstd && threadIdx.x == 0) rstd[row] = r;
    for (i64 c = (i64)threadIdx.x * V; c < H; c += (i64)blockDim.x * V) {
        float xv[V], wv[V], yv[V];
        if constexpr (V == 1) {
            xv[0] = ax_ld(x + c);
            wv[0] = ax_ld(w + c);
        } else {
            ax_ld16(x + c, xv);
            ax_ld16(w + c, wv);
        }
#pragma unroll
        for (int e = 0; e < V; e++) yv[e] = __fmul_rn(__fadd_rn(off, wv[e]), __fmul_rn(xv[e], r));
        if constexpr (V == 1) ax_st(y + c, yv[0]);
        else ax_st16(y + c, yv);
    }
}

template <typename T>
__device__ __forceinline__ void rmsnorm_fwd_body(const T *x, const T *w, T *y, float *rstd, i64 H, float eps,
                                                 float off) {
    constexpr int V = ax_vec<T>::N;
    if (H % V == 0 && ax_al16(x) && ax_al16(w) && ax_al16(y)) rmsnorm_fwd_row<T, V>(x, w, y, rstd, H, eps, off);
    else rmsnorm_fwd_row<T, 1>(x, w, y, rstd, H, eps, off);
}

template <typename T, int V>
__device__ __forceinline__ void rmsnorm_bwd_rows(const T *x, const T *w, const T *dy, T *dx, float *part, i64 R, i64 H,
                                                 float eps, float off) {
    __shared__ float red[32];
    AX_DYN_SMEM(float, acc); // [H]
    for (i64 c = (i64)threadIdx.x * V; c < H; c += (i64)blockDim.x * V)
#pragma unroll
        for (int e = 0; e < V; e++) acc[c + e] = 0.0f;
    for (i64 row = blockIdx.x; row < R; row += gridDim.x) {
        const T *xr = x + row * H, *dyr = dy + row * H;
        T *dxr = dx + row * H;
        float ss, dot;
        rms_row_sums<T, V>(xr, dyr, w, H, off, ss, dot);
        ss = ax_block_sum(ss, red);
        dot = ax_block_sum(dot, red);
        const float r = rms_rstd(ss, H, eps);
        const float cm = dot * r / (float)H; // mean(dy w xhat)
        for (i64 c = (i64)threadIdx.x * V; c < H; c += (i64)blockDim.x * V) {
            float xv[V], wv[V], dv[V], o[V];
            if constexpr (V == 1) {
                xv[0] = ax_ld(xr + c);
                wv[0] = ax_ld(w + c);
                dv[0] = ax_ld(dyr + c);
            } else {
                ax_ld16(xr + c, xv);
                ax_ld16(w + c, wv);
                ax_ld16(dyr + c, dv);
            }
#pragma unroll
            for (int e = 0; e < V; e++) {
                const float xh = xv[e] * r;
                o[e] = r * (dv[e] * __fadd_rn(off, wv[e]) - xh * cm);
                acc[c + e] += dv[e] * xh;
            }
            if constexpr (V == 1) ax_st(dxr + c, o[0]);
            else ax_st16(dxr + c, o);
        }
    }
    float *pp = part + (i64)blockIdx.x * H;
    for (i64 c = (i64)threadIdx.x * V; c < H; c += (i64)blockDim.x * V)
#pragma unroll
        for (int e = 0; e < V; e++) pp[c + e] = acc[c + e];
}

template <typename T>
__device__ __forceinline__ void rmsnorm_bwd_body(const T *x, const T *w, const T *dy, T *dx, float *part, i64 R,
                                                 i64 H, float eps, float off) {
    constexpr int V = ax_vec<T>::N;
    if (H % V == 0 && ax_al16(x) && ax_al16(w) && ax_al16(dy) && ax_al16(dx))
        rmsnorm_bwd_rows<T, V>(x, w, dy, dx, part, R, H, eps, off);
    else
        rmsnorm_bwd_rows<T, 1>(x, w, dy, dx, part, R, H, eps, off);
}

extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_fwd_f32(const float *x, const float *w, float *y,
                                                                      float *rstd, i64 H, float eps, float off) {
    rmsnorm_fwd_body(x, w, y, rstd, H, eps, off);
}
extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_fwd_bf16(const bf16 *x, const bf16 *w, bf16 *y,
                                                                       float *rstd, i64 H, float eps, float off) {
    rmsnorm_fwd_body(x, w, y, rstd, H, eps, off);
}
extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_bwd_f32(const float *x, const float *w, const float *dy,
                                                                      float *dx, float *part, i64 R, i64 H,
                                                                      float eps, float off) {
    rmsnorm_bwd_body(x, w, dy, dx, part, R, H, eps, off);
}
extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_bwd_bf16(const bf16 *x, const bf16 *w, const bf16 *dy,
                                                                       bf16 *dx, float *part, i64 R, i64 H,
                                                                       float eps, float off) {
    rmsnorm_bwd_body(x, w, dy, dx, part, R, H, eps, off);
}
extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_dw_reduce_f32(const float *part, int nparts, i64 H,
                                                                            float *dw, int accumulate) {
    ax_reduce_partials(part, nparts, H, dw, accumulate);
}
extern "C" __global__ void __launch_bounds__(256) axo_rmsnorm_dw_reduce_bf16(const float *part, int nparts, i64 H,
                                                                             bf16 *dw, int accumulate) {
    ax_reduce_partials(part, nparts, H, dw, accumulate);
}
