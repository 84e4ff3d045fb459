// swiglu.cuh — SwiGLU forward and backward, and GeGLU's (Gemma: tanh GELU).
// GeGLU (ck_geglu_*): a(x) = 0.5 x (1 + tanh(k (x + c x^3))), k = sqrt(2/pi),
// c = 0.044715, a'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2), t the
// tanh; otherwise as SwiGLU below, with a for SiLU.
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

// The activations, each with the CPU kernel's exact double expressions (ck_swiglu_*, ck_geglu_*).
struct glu_silu {
    static __device__ __forceinline__ double fwd(double x) { return x / (1.0 + exp(-x)); }
    static __device__ __forceinline__ void bwd(double x, double u, double d, float &dg, float &du) {
        const double sig = 1.0 / (1.0 + exp(-x));
        dg = (float)(d * u * sig * (1.0 + x * (1.0 - sig)));
        du = (float)(d * (x * sig));
    }
};
struct glu_gelu_tanh {
    static __device__ __forceinline__ double fwd(double x) {
        return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    }
    static __device__ __forceinline__ void bwd(double x, double u, double d, float &dg, float &du) {
        const double k = 0.7978845608028654, c = 0.044715, t = tanh(k * (x + c * x * x * x));
        const double ds = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x);
        dg = (float)(d * u * ds);
        du = (float)(d * (0.5 * x * (1.0 + t)));
    }
};

template <typename T, typename A> __device__ __forceinline__ void glu_fwd_body(const T *g, const T *u, T *y, i64 n) {
    const T *in[2] = {g, u};
    T *out[1] = {y};
    ax_map<T, 2, 1>(n, in, out, [](i64, const float(&v)[2], float(&r)[1]) {
        r[0] = __fmul_rn((float)A::fwd((double)v[0]), v[1]);
    });
}

template <typename T, typename A>
__device__ __forceinline__ void glu_bwd_body(const T *g, const T *u, const T *dy, T *dg, T *du, i64 n) {
    const T *in[3] = {g, u, dy};
    T *out[2] = {dg, du};
    ax_map<T, 3, 2>(n, in, out, [](i64, const float(&v)[3], float(&r)[2]) {
        A::bwd((double)v[0], (double)v[1], (double)v[2], r[0], r[1]);
    });
}

#define AXO_GLU(NAME, A)                                                                                          \
    extern "C" __global__ void __launch_bounds__(256) axo_##NAME##_fwd_f32(const float *g, const float *u, float *y, \
                                                                           i64 n) {                                 \
        glu_fwd_body<float, A>(g, u, y, n);                                                                       \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(256) axo_##NAME##_fwd_bf16(const bf16 *g, const bf16 *u, bf16 *y,  \
                                                                            i64 n) {                                \
        glu_fwd_body<bf16, A>(g, u, y, n);                                                                        \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(256) axo_##NAME##_bwd_f32(const float *g, const float *u,          \
                                                                           const float *dy, float *dg, float *du,   \
                                                                           i64 n) {                                 \
        glu_bwd_body<float, A>(g, u, dy, dg, du, n);                                                              \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(256) axo_##NAME##_bwd_bf16(const bf16 *g, const bf16 *u,           \
                                                                            const bf16 *dy, bf16 *dg, bf16 *du,     \
                                                                            i64 n) {                                \
        glu_bwd_body<bf16, A>(g, u, dy, dg, du, n);                                                               \
    }
AXO_GLU(swiglu, glu_silu)
AXO_GLU(geglu, glu_gelu_tanh)
