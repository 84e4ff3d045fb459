// misc.cuh — the small kernels the CUDA executor (runtime/cuda_exec.c) needs
// beside the fused ones: fills, accumulation across storage types, and the
// gradient-clipping coefficient.
//
// Math (runtime/cpu_exec.c, the reference):
//  * axo_fill_u32 / axo_fill_u16: p[i] = v (the bit pattern of an f32/i32 or
//    a bf16 constant, computed on the host exactly as the CPU rounds it).
//  * axo_acc_f32_bf16: y (f32) += x (bf16), one fp32 add (ck_acc_f32).
//    axo_acc_bf16_f32: y (bf16) = round_bf16(y + x), x f32, the add in fp32
//    then one rounding (ck_acc_f32 then round_if_bf16).
//  * axo_clip_coef: out = min(1, max_norm / (sqrt((double)s) + 1e-6)) in
//    double, rounded to float (x_clip_coef); s, out are f32 scalars.
//
//  * axo_slice_T(x, y, rows, W, begin, len): y[r, j] = x[r, begin + j] (a fused
//    projection's parts); axo_slice_bwd_T(dy, dx, rows, W, begin, len):
//    dx[r, k] = dy[r, k - begin] inside [begin, begin + len), 0 elsewhere. Exact
//    copies (x_slice / x_slice_bwd).
//
// Launch: the fills, accs and slices are 1-D, block 256, any grid (grid-stride;
// full size ceil(n / 256)). axo_clip_coef: one block of 32 threads (thread 0
// writes). Traffic: one read per input element, one write per output.

extern "C" __global__ void __launch_bounds__(256) axo_fill_u32(unsigned *p, unsigned v, i64 n) {
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) p[i] = v;
}
extern "C" __global__ void __launch_bounds__(256) axo_fill_u16(unsigned short *p, unsigned v, i64 n) {
    const unsigned short h = (unsigned short)(v & 0xffffu);
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) p[i] = h;
}

extern "C" __global__ void __launch_bounds__(256) axo_acc_f32_bf16(float *y, const bf16 *x, i64 n) {
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) y[i] = __fadd_rn(y[i], __bfloat162float(x[i]));
}
extern "C" __global__ void __launch_bounds__(256) axo_acc_bf16_f32(bf16 *y, const float *x, i64 n) {
    for (i64 i = ax_tid(); i < n; i += ax_nthreads())
        y[i] = __float2bfloat16_rn(__fadd_rn(__bfloat162float(y[i]), x[i]));
}

extern "C" __global__ void __launch_bounds__(32) axo_clip_coef(const float *sumsq, float *out, double max_norm) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    const double c = max_norm / (sqrt((double)*sumsq) + 1e-6);
    *out = (float)(c < 1.0 ? c : 1.0);
}

template <typename T> __device__ void slice_t(const T *x, T *y, i64 rows, i64 W, i64 begin, i64 len) {
    for (i64 i = ax_tid(); i < rows * len; i += ax_nthreads()) y[i] = x[(i / len) * W + begin + i % len];
}
__device__ inline float slice_zero(const float *) { return 0.0f; }
__device__ inline bf16 slice_zero(const bf16 *) { return __float2bfloat16_rn(0.0f); }
template <typename T> __device__ void slice_bwd_t(const T *dy, T *dx, i64 rows, i64 W, i64 begin, i64 len) {
    const T zero = slice_zero(dy);
    for (i64 i = ax_tid(); i < rows * W; i += ax_nthreads()) {
        const i64 k = i % W - begin;
        dx[i] = k >= 0 && k < len ? dy[(i / W) * len + k] : zero;
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_slice_f32(const float *x, float *y, i64 rows, i64 W, i64 begin, i64 len) {
    slice_t(x, y, rows, W, begin, len);
}
extern "C" __global__ void __launch_bounds__(256) axo_slice_bf16(const bf16 *x, bf16 *y, i64 rows, i64 W, i64 begin, i64 len) {
    slice_t(x, y, rows, W, begin, len);
}
extern "C" __global__ void __launch_bounds__(256) axo_slice_bwd_f32(const float *dy, float *dx, i64 rows, i64 W, i64 begin,
                                                                    i64 len) {
    slice_bwd_t(dy, dx, rows, W, begin, len);
}
extern "C" __global__ void __launch_bounds__(256) axo_slice_bwd_bf16(const bf16 *dy, bf16 *dx, i64 rows, i64 W, i64 begin,
                                                                     i64 len) {
    slice_bwd_t(dy, dx, rows, W, begin, len);
}
