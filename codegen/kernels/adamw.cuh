// adamw.cuh — AdamW step, torch.optim.AdamW semantics (single-tensor path).
//
// Math: exactly ck_adamw_step_f32 (runtime/cpu_kernels.h), in its order and
// with its roundings: scalars in double, rounded to float where torch hands
// them to a float32 kernel; per element
//   g  = g * gs;  p = p * (float)(1 - lr wd)
//   m  = fma(w1, g - m, m)  (or fma(w1 - 1, g - m, g) when |w1| >= 0.5), w1 = 1 - beta1
//   v  = v * beta2;  v = fma((1 - beta2) g, g, v)
//   p  = p + (-(lr / bc1) m) / (sqrt(v) / sqrt(bc2) + eps)
// Every op is an explicit _rn intrinsic / fmaf, so the fp32 update is the
// CPU's bit for bit (up to the last ulp of the double pow()s).
// lr, step (1-based, after its increment) and grad_scale are device scalars
// (fp32 tensors in the IR: they change per step without re-launch setup, and
// suit CUDA-graph replay); beta1_p, when not NULL, is the step's beta1 as
// three device floats whose sum ((double)[0] + (double)[1]) + (double)[2] is
// it exactly (ir/quant.h axo_beta1_split; a schedule that cycles it:
// one_cycle) and replaces the beta1 argument; beta1, beta2, eps,
// weight_decay are attributes,
// and so is lr_scale (the last argument of every kernel here; LoRA+'s ratio,
// else 1): the step's lr is (double)*lr * lr_scale, as the CPU's x_adamw
// computes it (times 1.0: exactly *lr).
// _f32: p, g, m, v fp32. _bf16: g bf16 (bf16 gradients), p/m/v fp32 master
// state, and p_bf16 (may be NULL) receives the updated parameter rounded to
// bf16 (the compute copy), saving a separate convert pass.
// _sr_bf16 (pure bf16, `bfloat16: true`; ck_adamw_step_sr_bf16): p, g, m, v
// all bf16. The fp32 step above on their fp32 values, then p, m and v each
// stored stochastically rounded to bf16 (ir/quant.h, included below):
//   x -> axo_bf16_sr(x, axo_rng_u32(step, 3 salt + j, first + i)),
//   j = 0 (p), 1 (m), 2 (v)
// with salt the parameter's ordinal (attr) and first the offset, in
// elements of the whole tensor, of this rank's block (element i of the
// block is element first + i of the tensor): every sharding draws the bits
// one rank would. axo_bf16_sr's result has 16 zero low bits (or is the
// canonical NaN), so its top half is stored as is.
//
// Launch: 1-D, block 256, any grid (grid-stride; full size ceil(n/256)).
// Each thread derives the step scalars once (a few double ops), then
// updates elements t, t + gridsize, ... Traffic: read p, g, m, v; write p,
// m, v (+ p_bf16): 28 B/element in f32; _sr_bf16 14 B/element.
//
// adamw8 (8-bit block-wise state, `optimizer: adamw_bnb_8bit`;
// ck_adamw8_step): p [R,K] f32 (_f32) or bf16 (_bf16, stochastically
// rounded as _sr_bf16 rounds p: salt 3 salt + 0, index first + the
// element's index in this rank's block); g [R,K] f32 or bf16 (g_bf16);
// qm, qv [R,K] u8 codes, one byte per element; am, av [R,nb] f32 block
// maxima, nb = ceil(K / AXO_Q8_BLOCK): block b of row r is elements
// b*256 .. min(K, b*256 + 256) - 1 of the row (the last one shorter;
// blocks never cross rows) and its maxima are am/av[r*nb + b]. Per block:
// decode m = code value * am, v likewise (ir/quant.h); adamw_elem on each
// element; the new maxima mx = max |m|, vx = max v over the block; each m,
// v encoded to the nearest code of m / mx, v / vx; am, av = mx, vx; p
// stored. The maxima need the whole block's new m, v before any code is
// written: f32 max is exact and order-independent (each lane keeps the
// CPU's `a > mx ? a : mx` from 0, so a NaN never enters, then a butterfly
// of fmaxf over values that are not NaN), so they are the CPU's bits.
// Launch: block 256 = 8 warps, one warp per quantization block (q = r nb +
// b), grid-stride over the R nb blocks (full grid ceil(R nb / 8)); lane l
// takes elements l, l + 32, ..., l + 224 of its block (coalesced, 8 in
// registers), so the maxima are a warp butterfly: no shared memory and no
// __syncthreads. Traffic: read p, g, 2 codes; write p, 2 codes: 18
// B/element in f32 (+8 B per 256 for the maxima), 10 B in bf16.

#include "ir/quant.h"

struct adamw_scalars {
    float gs, decay, w1, w1m1, b2, w2, nss, bc2s, eps;
    bool small;
};

__device__ __forceinline__ adamw_scalars adamw_prep(const float *lr_p, const float *step_p, const float *gscale_p,
                                                    const float *beta1_p, double beta1_attr, double beta2, double eps,
                                                    double wd, double lr_scale) {
    const double lr = (double)*lr_p * lr_scale, gsd = (double)*gscale_p;
    const double beta1 = beta1_p ? axo_beta1_join(beta1_p) : beta1_attr;
    const long long step = (long long)*step_p;
    adamw_scalars k;
    k.gs = (float)gsd;
    k.decay = (float)(1.0 - lr * wd);
    k.w1 = (float)(1.0 - beta1);
    k.w1m1 = __fsub_rn(k.w1, 1.0f);
    k.small = fabs((double)k.w1) < 0.5;
    k.b2 = (float)beta2;
    k.w2 = (float)(1.0 - beta2);
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    k.nss = (float)(-(lr / bc1));
    k.bc2s = (float)pow(bc2, 0.5);
    k.eps = (float)eps;
    return k;
}

__device__ __forceinline__ void adamw_elem(const adamw_scalars &k, float &p, float g, float &m, float &v) {
    const float gi = __fmul_rn(g, k.gs);
    float pi = __fmul_rn(p, k.decay);
    float mi = m, vi = v;
    mi = k.small ? fmaf(k.w1, __fsub_rn(gi, mi), mi) : fmaf(k.w1m1, __fsub_rn(gi, mi), gi);
    vi = __fmul_rn(vi, k.b2);
    vi = fmaf(__fmul_rn(k.w2, gi), gi, vi);
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2s), k.eps);
    pi = __fadd_rn(pi, __fdiv_rn(__fmul_rn(k.nss, mi), denom));
    p = pi;
    m = mi;
    v = vi;
}

extern "C" __global__ void __launch_bounds__(256)
    axo_adamw_f32(float *p, const float *g, float *m, float *v, i64 n, const float *lr, const float *step,
                  const float *gscale, const float *beta1_p, double beta1, double beta2, double eps, double weight_decay,
                  double lr_scale) {
    const adamw_scalars k = adamw_prep(lr, step, gscale, beta1_p, beta1, beta2, eps, weight_decay, lr_scale);
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) {
        float pi = p[i], mi = m[i], vi = v[i];
        adamw_elem(k, pi, g[i], mi, vi);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

extern "C" __global__ void __launch_bounds__(256)
    axo_adamw_bf16(float *p, const bf16 *g, float *m, float *v, bf16 *p_bf16, i64 n, const float *lr,
                   const float *step, const float *gscale, const float *beta1_p, double beta1, double beta2, double eps,
                   double weight_decay, double lr_scale) {
    const adamw_scalars k = adamw_prep(lr, step, gscale, beta1_p, beta1, beta2, eps, weight_decay, lr_scale);
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) {
        float pi = p[i], mi = m[i], vi = v[i];
        adamw_elem(k, pi, __bfloat162float(g[i]), mi, vi);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if (p_bf16) p_bf16[i] = __float2bfloat16_rn(pi);
    }
}

// The bf16 whose bits are the top half of x (x from axo_bf16_sr: exact).
__device__ __forceinline__ bf16 adamw_top16(float x) {
    return __ushort_as_bfloat16((unsigned short)(__float_as_uint(x) >> 16));
}

extern "C" __global__ void __launch_bounds__(256)
    axo_adamw_sr_bf16(bf16 *p, const bf16 *g, bf16 *m, bf16 *v, i64 n, i64 first, const float *lr, const float *step,
                      const float *gscale, const float *beta1_p, double beta1, double beta2, double eps,
                      double weight_decay, unsigned salt, double lr_scale) {
    const adamw_scalars k = adamw_prep(lr, step, gscale, beta1_p, beta1, beta2, eps, weight_decay, lr_scale);
    const uint32_t seed = (uint32_t)(long long)*step, sp = 3u * salt, sm = sp + 1u, sv = sp + 2u;
    for (i64 i = ax_tid(); i < n; i += ax_nthreads()) {
        float pi = __bfloat162float(p[i]), mi = __bfloat162float(m[i]), vi = __bfloat162float(v[i]);
        adamw_elem(k, pi, __bfloat162float(g[i]), mi, vi);
        const uint32_t e = (uint32_t)(first + i); // the element's index in the whole tensor, mod 2^32 as on the CPU
        p[i] = adamw_top16(axo_bf16_sr(pi, axo_rng_u32(seed, sp, e)));
        m[i] = adamw_top16(axo_bf16_sr(mi, axo_rng_u32(seed, sm, e)));
        v[i] = adamw_top16(axo_bf16_sr(vi, axo_rng_u32(seed, sv, e)));
    }
}

// ---- adamw8 -------------------------------------------------------------------------
// p's store: an f32 parameter as is; a bf16 one stochastically rounded with the bits r (the element's index in
// the whole tensor, mod 2^32 as on the CPU).
__device__ __forceinline__ void adamw8_st(float *p, float x, uint32_t) { *p = x; }
__device__ __forceinline__ void adamw8_st(bf16 *p, float x, uint32_t r) { *p = adamw_top16(axo_bf16_sr(x, r)); }

template <typename P>
__device__ __forceinline__ void adamw8_run(P *p, const void *g, unsigned char *qm, unsigned char *qv, float *am,
                                           float *av, i64 rows, i64 K, i64 first, const float *lr, const float *step,
                                           const float *gscale, const float *beta1_p, double beta1, double beta2,
                                           double eps, double wd, unsigned salt, int g_bf16, double lr_scale) {
    const adamw_scalars k = adamw_prep(lr, step, gscale, beta1_p, beta1, beta2, eps, wd, lr_scale);
    const uint32_t seed = (uint32_t)(long long)*step, sp = 3u * salt;
    const i64 nb = (K + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK, nq = rows * nb, wpb = blockDim.x >> 5;
    const int lane = threadIdx.x & 31;
    for (i64 q = (i64)blockIdx.x * wpb + (threadIdx.x >> 5); q < nq; q += (i64)gridDim.x * wpb) { // warp-uniform
        const i64 r = q / nb, k0 = (q - r * nb) * AXO_Q8_BLOCK, b0 = r * K + k0;
        const int len = K - k0 < AXO_Q8_BLOCK ? (int)(K - k0) : AXO_Q8_BLOCK;
        const float ma = am[q], va = av[q]; // read by every lane before lane 0 writes the new ones (after the shuffles)
        float pv[AXO_Q8_BLOCK / 32] = {}, mv[AXO_Q8_BLOCK / 32] = {}, vv[AXO_Q8_BLOCK / 32] = {}, mx = 0.0f, vx = 0.0f;
#pragma unroll
        for (int j = 0; j < AXO_Q8_BLOCK / 32; j++) {
            const int i = lane + 32 * j;
            if (i >= len) continue;
            const i64 e = b0 + i;
            float pi = ax_ld(p + e), mi = axo_q8_decode_signed(qm[e], ma), vi = axo_q8_decode_unsigned(qv[e], va);
            adamw_elem(k, pi, g_bf16 ? ax_ld((const bf16 *)g + e) : ax_ld((const float *)g + e), mi, vi);
            const float a = fabsf(mi);
            mx = a > mx ? a : mx;
            vx = vi > vx ? vi : vx;
            pv[j] = pi, mv[j] = mi, vv[j] = vi;
        }
        mx = ax_warp_max(mx);
        vx = ax_warp_max(vx);
#pragma unroll
        for (int j = 0; j < AXO_Q8_BLOCK / 32; j++) {
            const int i = lane + 32 * j;
            if (i >= len) continue;
            const i64 e = b0 + i;
            qm[e] = (unsigned char)axo_q8_encode_signed(mv[j], mx);
            qv[e] = (unsigned char)axo_q8_encode_unsigned(vv[j], vx);
            adamw8_st(p + e, pv[j], axo_rng_u32(seed, sp, (uint32_t)(first + e))); // (f32: the bits go unused)
        }
        if (lane == 0) am[q] = mx, av[q] = vx;
    }
}

extern "C" __global__ void __launch_bounds__(256)
    axo_adamw8_f32(float *p, const void *g, unsigned char *qm, unsigned char *qv, float *am, float *av, i64 rows, i64 K,
                   i64 first, const float *lr, const float *step, const float *gscale, const float *beta1_p,
                   double beta1, double beta2, double eps, double weight_decay, unsigned salt, int g_bf16,
                   double lr_scale) {
    adamw8_run(p, g, qm, qv, am, av, rows, K, first, lr, step, gscale, beta1_p, beta1, beta2, eps, weight_decay, salt,
               g_bf16, lr_scale);
}

extern "C" __global__ void __launch_bounds__(256)
    axo_adamw8_bf16(bf16 *p, const void *g, unsigned char *qm, unsigned char *qv, float *am, float *av, i64 rows, i64 K,
                    i64 first, const float *lr, const float *step, const float *gscale, const float *beta1_p,
                    double beta1, double beta2, double eps, double weight_decay, unsigned salt, int g_bf16,
                    double lr_scale) {
    adamw8_run(p, g, qm, qv, am, av, rows, K, first, lr, step, gscale, beta1_p, beta1, beta2, eps, weight_decay, salt,
               g_bf16, lr_scale);
}
