// swiglu.cuh — SwiGLU forward and backward, and GeGLU's (Gemma: tanh GELU).
//
// Math (runtime/cpu_kernels.h, ck_swiglu_*): with x = gate,
//   fwd: s = (float)(x / (1 + exp(-x)))  evaluated in double, then y = s * u (fp32);
//   bwd: sig = 1/(1+exp(-x)) (double),
//        dg = (float)(dy * u * sig * (1 + x (1 - sig))), du = (float)(dy * x * sig).
// The double math keeps fwd/bwd within an ulp of the CPU reference; the
// kernels stay memory-bound on A100/H100 (FP64 rate is half of FP32 there).
//
// Launch: 1-D, block 256, any grid (grid-stride, 16-byte vectors when aligned);
// full size ceil(n / (256 * V)) blocks, V = 4 (f32) or 8 (bf16).
// Traffic: fwd reads g, u and writes y; bwd reads g, u, dy and writes dg, du.
// dg/du may alias g/u/dy (each element is read before it is written).

__device__ __forceinline__ float swiglu_silu(float g) {
    double x = (double)g;
    return (float)(x / (1.0 + exp(-x)));
}

template <typename T> __device__ __forceinline__ void swiglu_fwd_body(const T *g, const T *u, T *y, i64 n) {
    const T *in[2] = {g, u};
    T *out[1] = {y};
    ax_map<T, 2, 1>(n, in, out, [](i64, const float(&v)[2], float(&r)[1]) {
        r[0] = __fmul_rn(swiglu_silu(v[0]), v[1]);
    });
}

template <typename T>
__device__ __forceinline__ void swiglu_bwd_body(const T *g, const T *u, const T *dy, T *dg, T *du, i64 n) {
    const T *in[3] = {g, u, dy};
    T *out[2] = {dg, du};
    ax_map<T, 3, 2>(n, in, out, [](i64, const float(&v)[3], float(&r)[2]) {
        double x = (double)v[0], sig = 1.0 / (1.0 + exp(-x)), d = (double)v[2];
        r[0] = (float)(d * (double)v[1] * sig * (1.0 + x * (1.0 - sig)));
        r[1] = (float)(d * (x * sig));
    });
}

extern "C" __global__ void __launch_bounds__(256) axo_swiglu_fwd_f32(const float *g, const float *u, float *y, i64 n) {
    swiglu_fwd_body(g, u, y, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_swiglu_fwd_bf16(const bf16 *g, const bf16 *u, bf16 *y, i64 n) {
    swiglu_fwd_body(g, u, y, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_swiglu_bwd_f32(const float *g, const float *u, const float *dy,
                                                                     float *dg, float *du, i64 n) {
    swiglu_bwd_body(g, u, dy, dg, du, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_swiglu_bwd_bf16(const bf16 *g, const bf16 *u, const bf16 *dy,
                                                                      bf16 *dg, bf16 *du, i64 n) {
    swiglu_bwd_body(g, u, dy, dg, du, n);
}

// GeGLU (runtime/cpu_kernels.h, ck_geglu_*): s = 0.5 x (1 + tanh(k (x + c x^3))),
// k = sqrt(2/pi), c = 0.044715, in double, rounded to float; y = s * u (fp32).
// bwd in double: t = tanh(k (x + c x^3)), s' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2),
// dg = (float)(dy u s'), du = (float)(dy s). Launch and traffic as SwiGLU's.
__device__ __forceinline__ float geglu_gelu(float g) {
    double x = (double)g;
    return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
}

template <typename T> __device__ __forceinline__ void geglu_fwd_body(const T *g, const T *u, T *y, i64 n) {
    const T *in[2] = {g, u};
    T *out[1] = {y};
    ax_map<T, 2, 1>(n, in, out, [](i64, const float(&v)[2], float(&r)[1]) {
        r[0] = __fmul_rn(geglu_gelu(v[0]), v[1]);
    });
}

template <typename T>
__device__ __forceinline__ void geglu_bwd_body(const T *g, const T *u, const T *dy, T *dg, T *du, i64 n) {
    const T *in[3] = {g, u, dy};
    T *out[2] = {dg, du};
    ax_map<T, 3, 2>(n, in, out, [](i64, const float(&v)[3], float(&r)[2]) {
        const double k = 0.7978845608028654, c = 0.044715;
        double x = (double)v[0], d = (double)v[2], t = tanh(k * (x + c * x * x * x));
        double ds = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x);
        r[0] = (float)(d * (double)v[1] * ds);
        r[1] = (float)(d * (0.5 * x * (1.0 + t)));
    });
}

extern "C" __global__ void __launch_bounds__(256) axo_geglu_fwd_f32(const float *g, const float *u, float *y, i64 n) {
    geglu_fwd_body(g, u, y, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_geglu_fwd_bf16(const bf16 *g, const bf16 *u, bf16 *y, i64 n) {
    geglu_fwd_body(g, u, y, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_geglu_bwd_f32(const float *g, const float *u, const float *dy,
                                                                    float *dg, float *du, i64 n) {
    geglu_bwd_body(g, u, dy, dg, du, n);
}
extern "C" __global__ void __launch_bounds__(256) axo_geglu_bwd_bf16(const bf16 *g, const bf16 *u, const bf16 *dy,
                                                                     bf16 *dg, bf16 *du, i64 n) {
    geglu_bwd_body(g, u, dy, dg, du, n);
}
