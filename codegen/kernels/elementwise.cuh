// elementwise.cuh — add, mul, scale, sigmoid, acc (y += x) and dtype conversion.
//
// Math (runtime/cpu_kernels.h): y = a + b; y = a * b; y = (float)alpha * x; y = 1 / (1 + e^-x);
// y += x; convert rounds to nearest even (__float2bfloat16_rn, NaN kept),
// bf16 -> f32 is exact. bf16 variants compute in fp32 and round the result.
//
// Launch: 1-D, block 256 threads, any grid (grid-stride); a full-size grid is
// ceil(n / (256 * V)) blocks (V = 4 floats or 8 bf16 per 16-byte vector),
// capped at a few waves (e.g. 8 x SM count) since the loop covers the rest.
// Each thread moves whole 16-byte vectors when the pointers are aligned.
// Traffic: one read per input element, one write per output element.
// Outputs may alias inputs.

#define AXO_BINARY(NAME, T, EXPR)                                                                   \
    extern "C" __global__ void __launch_bounds__(256) NAME(const T *a, const T *b, T *y, i64 n) {   \
        const T *in[2] = {a, b};                                                                    \
        T *out[1] = {y};                                                                            \
        ax_map<T, 2, 1>(n, in, out, [](i64, const float(&x)[2], float(&r)[1]) { r[0] = EXPR; });  \
    }

AXO_BINARY(axo_add_f32, float, __fadd_rn(x[0], x[1]))
AXO_BINARY(axo_add_bf16, bf16, __fadd_rn(x[0], x[1]))
AXO_BINARY(axo_mul_f32, float, __fmul_rn(x[0], x[1]))
AXO_BINARY(axo_mul_bf16, bf16, __fmul_rn(x[0], x[1]))

template <typename T> __device__ __forceinline__ void scale_body(const T *x, float alpha, T *y, i64 n) {
    const T *in[1] = {x};
    T *out[1] = {y};
    ax_map<T, 1, 1>(n, in, out, [alpha](i64, const float(&v)[1], float(&r)[1]) { r[0] = __fmul_rn(alpha, v[0]); });
}
// alpha is the IR attribute rounded to float by the caller, as (REAL)alpha.
extern "C" __global__ void __launch_bounds__(256) axo_scale_f32(const float *x, float alpha, float *y, i64 n) {
    scale_body(x, alpha, y, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_scale_bf16(const bf16 *x, float alpha, bf16 *y, i64 n) {
    scale_body(x, alpha, y, n);
}

// y = 1 / (1 + e^-x) in fp32, as the CPU's x_sigmoid (Qwen2-MoE's shared-expert gate)
template <typename T> __device__ __forceinline__ void sigmoid_body(const T *x, T *y, i64 n) {
    const T *in[1] = {x};
    T *out[1] = {y};
    ax_map<T, 1, 1>(n, in, out, [](i64, const float(&v)[1], float(&r)[1]) { r[0] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v[0]))); });
}
extern "C" __global__ void __launch_bounds__(256) axo_sigmoid_f32(const float *x, float *y, i64 n) { sigmoid_body(x, y, n); }
extern "C" __global__ void __launch_bounds__(256) axo_sigmoid_bf16(const bf16 *x, bf16 *y, i64 n) { sigmoid_body(x, y, n); }
// dx = (dy (1 - y)) y (a = y, b = dy), as the CPU's x_sigmoid_bwd and torch's sigmoid_backward
AXO_BINARY(axo_sigmoid_bwd_f32, float, __fmul_rn(__fmul_rn(x[1], __fsub_rn(1.0f, x[0])), x[0]))
AXO_BINARY(axo_sigmoid_bwd_bf16, bf16, __fmul_rn(__fmul_rn(x[1], __fsub_rn(1.0f, x[0])), x[0]))

// y += x
template <typename T> __device__ __forceinline__ void acc_body(T *y, const T *x, i64 n) {
    const T *in[2] = {y, x};
    T *out[1] = {y};
    ax_map<T, 2, 1>(n, in, out, [](i64, const float(&v)[2], float(&r)[1]) { r[0] = __fadd_rn(v[0], v[1]); });
}
extern "C" __global__ void __launch_bounds__(256) axo_acc_f32(float *y, const float *x, i64 n) { acc_body(y, x, n); }
extern "C" __global__ void __launch_bounds__(256) axo_acc_bf16(bf16 *y, const bf16 *x, i64 n) { acc_body(y, x, n); }

// Conversions: each thread converts 8 consecutive elements per step (two
// float4 loads + one 16-byte bf16 store, or the reverse) when aligned.
extern "C" __global__ void __launch_bounds__(256) axo_convert_f32_bf16(const float *x, bf16 *y, i64 n) {
    const i64 nv = ax_al16(x) && ax_al16(y) ? n / 8 : 0;
    for (i64 v = ax_tid(); v < nv; v += ax_nthreads()) {
        float a[4], b[4], c[8];
        ax_ld16(x + v * 8, a);
        ax_ld16(x + v * 8 + 4, b);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            c[e] = a[e];
            c[e + 4] = b[e];
        }
        ax_st16(y + v * 8, c);
    }
    for (i64 i = nv * 8 + ax_tid(); i < n; i += ax_nthreads()) ax_st(y + i, x[i]);
}
extern "C" __global__ void __launch_bounds__(256) axo_convert_bf16_f32(const bf16 *x, float *y, i64 n) {
    const i64 nv = ax_al16(x) && ax_al16(y) ? n / 8 : 0;
    for (i64 v = ax_tid(); v < nv; v += ax_nthreads()) {
        float c[8], a[4], b[4];
        ax_ld16(x + v * 8, c);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            a[e] = c[e];
            b[e] = c[e + 4];
        }
        ax_st16(y + v * 8, a);
        ax_st16(y + v * 8 + 4, b);
    }
    for (i64 i = nv * 8 + ax_tid(); i < n; i += ax_nthreads()) y[i] = ax_ld(x + i);
}
