/* quant.h — the exact arithmetic of the `dropout`, `neftune` and `dequant_nf4` ops, of
 * the stochastic rounding of pure-bf16 AdamW (`adamw` on bf16 state) and of
 * 8-bit AdamW state (`adamw8`).
 *
 * One definition for every executor: this header is plain C99 for the CPU
 * executor and the weight loader, and is pasted into the NVRTC source of the
 * CUDA kernels (AXO_QFN becomes __device__ there), so both draw the same
 * dropout masks and dequantize to the same bits.
 *
 * dropout(x, seed){p, salt}: element i is kept iff
 *     axo_rng_u32(seed, salt, i) >= axo_dropout_threshold(p)
 * and a kept element is x * (float)(1 / (1 - p)) (one f32 multiply). The
 * bits are a counter-based hash of (seed, salt, i), so a recomputation
 * (gradient checkpointing, the backward) draws the same mask.
 *
 * NF4 (QLoRA's 4-bit NormalFloat, Dettmers et al. 2023): a weight row of K
 * values is cut into blocks of 64 (the last one shorter when 64 does not
 * divide K); each block stores 64 4-bit indices into
 * the 16-value code book below (values in [-1, 1], normal quantiles) and a
 * scale. Where bitsandbytes double-quantizes the f32 block scales in groups
 * of 256, axo stores each row's largest scale (f32) and, per block, an 8-bit
 * step k with scale = rowmax * 2^(-k/16) (rounded up, so every weight of the
 * block is within [-scale, scale]): 4 + 8/64 + 32/K bits per weight, the
 * same 4.13 bits as bitsandbytes' double quantization for K >= 2048, and
 * every scale stays within a row, so row-sharded blocks stay whole.
 *     w = code[q] * (rowmax * 2^(-k/16))   in f32, then rounded to the
 *                                          compute dtype.
 *
 * Stochastic rounding (adamw on bf16 p, m, v; `bfloat16: true`): the f32
 * result x is stored as the bf16 just below or just above it in magnitude,
 * the upper one with probability (x's 16 dropped bits) / 65536, so the
 * stored value is x in expectation. An update smaller than half a bf16 step
 * (lr·m/√v against a weight ~1: 2^-9) is then kept on average instead of
 * being rounded away every step, and so is Adam's v, whose per-step change
 * (1 - beta2)·g² is below bf16's resolution once v has settled. The random
 * bits are axo_rng_u32(step, 3·salt + j, i) for j = 0 (p), 1 (m), 2 (v),
 * salt the parameter's ordinal and i the element's index in the whole
 * (unsharded) tensor: 1 rank and N ranks, on any executor, round alike.
 */
#ifndef IR_QUANT_H
#define IR_QUANT_H

#ifndef AXO_QFN
#include <stdint.h>
#define AXO_QFN static inline
#define AXO_QCONST static const
#endif

#define AXO_NF4_BLOCK 64

AXO_QCONST float axo_nf4_code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* 2^(-j/16), j = 0..15, rounded to f32 */
AXO_QCONST float axo_nf4_step[16] = {
    0x1p+0f,        0x1.ea4afap-1f, 0x1.d5818ep-1f, 0x1.c199bep-1f, 0x1.ae89fap-1f, 0x1.9c4918p-1f,
    0x1.8ace54p-1f, 0x1.7a1148p-1f, 0x1.6a09e6p-1f, 0x1.5ab07ep-1f, 0x1.4bfdaep-1f, 0x1.3dea64p-1f,
    0x1.306fe0p-1f, 0x1.2387a6p-1f, 0x1.172b84p-1f, 0x1.0b5586p-1f,
};

/* The scale of a block with step k (0..255) in a row whose largest block
 * scale is rowmax: an f32 multiply by the table, then an exact power of 2. */
AXO_QFN float axo_nf4_scale(float rowmax, uint32_t k) {
    float s = rowmax * axo_nf4_step[k & 15u];
    for (uint32_t e = k >> 4; e; e--) s *= 0.5f;
    return s;
}

AXO_QFN float axo_nf4_value(uint32_t q, float scale) { return axo_nf4_code[q & 15u] * scale; }

AXO_QFN uint32_t axo_fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

AXO_QFN uint32_t axo_rng_u32(uint32_t seed, uint32_t salt, uint32_t i) {
    uint32_t k = axo_fmix32(seed * 0x9e3779b1u + axo_fmix32(salt + 0x632be5abu));
    return axo_fmix32(axo_fmix32(i ^ k) + k);
}

/* p in [0, 1): elements whose bits are below this are dropped. */
AXO_QFN uint32_t axo_dropout_threshold(double p) {
    double t = p * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)(t + 0.5);
}

/* What a kept element is multiplied by: 1 / (1 - p) in double, rounded once
 * to f32 (the executors compute it on the host and pass it on). */
AXO_QFN float axo_dropout_scale(double p) { return (float)(1.0 / (1.0 - p)); }

/* NEFTune (the `neftune` op): element h of a row whose key is k becomes
 *     x + mag * axo_neftune_unit(k, salt, h)
 * in f32 (the product and the sum each rounded once, never contracted into
 * an FMA), then rounded to the tensor's dtype. The unit is 24 random bits
 * (as torch's uniform_ draws a float32) on a grid of 2^-23 in [-1, 1):
 * (bits >> 8) * 2^-23 is exact in [0, 2) and so is its difference with 1,
 * so the noise is in [-mag, mag] with mean ~0 and variance ~mag^2 / 3. */
AXO_QFN float axo_neftune_unit(uint32_t key, uint32_t salt, uint32_t h) {
    return (float)(axo_rng_u32(key, salt, h) >> 8) * 0x1p-23f - 1.0f;
}

/* x (f32) to the f32 value of a bf16, stochastically: the 16 bits below
 * bf16's mantissa are added to r's low 16 bits and cut off. Non-finite x:
 * inf stays, NaN becomes the canonical quiet NaN; a finite x that would
 * round up to inf is cut toward zero instead (the largest finite bf16). */
AXO_QFN float axo_bf16_sr(float x, uint32_t r) {
    union {
        float f;
        uint32_t u;
    } c, o;
    c.f = x;
    if ((c.u & 0x7f800000u) == 0x7f800000u) {
        if (c.u & 0x007fffffu) c.u = 0x7fc00000u;
        return c.f;
    }
    o.u = (c.u + (r & 0xffffu)) & 0xffff0000u;
    if ((o.u & 0x7f800000u) == 0x7f800000u) o.u = c.u & 0xffff0000u;
    return o.f;
}

/* ---- 8-bit AdamW state (optimizer: adamw_bnb_8bit / adamw_8bit / paged_adamw_8bit) ----
 * Dettmers et al.'s block-wise dynamic quantization, with axo's own code
 * book: each run of AXO_Q8_BLOCK consecutive elements of a row (the last
 * run of a row shorter when AXO_Q8_BLOCK does not divide it; blocks never
 * cross rows, so row-sharded state keeps whole blocks) keeps its absolute
 * maximum (f32) and one byte per element. A byte is a dynamic-
 * exponent code: for a magnitude code c of B bits (B = 7 for the signed m,
 * whose 8th bit is the sign; B = 8 for the non-negative v), E = the leading
 * zeros of c, n = 2^(B-1-E), f = c - n, and
 *     |value| = 10^-E * (0.1 + 0.9 (f + 1) / n)       (c = 0: 0)
 * so each decade (10^-(E+1), 10^-E] gets n linear steps, from 1e-6 (m) or
 * 1e-7 (v) up to exactly 1 (the block's maximum itself is stored exactly).
 * The tables below are that formula in double, rounded to f32 (test_cpu_
 * kernels recomputes them). Encoding is round to the nearest table value
 * of x / absmax (ties to the smaller magnitude). The code books are
 * bitsandbytes' construction, not its exact values, so states are not
 * bit-identical to bitsandbytes'. */
#define AXO_Q8_BLOCK 256

/* |m| codes 0..127 (the sign is bit 7) */
AXO_QCONST float axo_q8_signed[128] = {
    0.0f, 0x1.0c6f7ap-20f, 0x1.711948p-18f, 0x1.4f8b58p-17f, 0x1.10a138p-15f, 0x1.cd5f9ap-15f,
    0x1.450efep-14f, 0x1.a36e2ep-14f, 0x1.bda512p-13f, 0x1.54c986p-12f, 0x1.cac084p-12f, 0x1.205bcp-11f,
    0x1.5b573ep-11f, 0x1.9652bep-11f, 0x1.d14e3cp-11f, 0x1.0624dep-10f, 0x1.99999ap-10f, 0x1.16872cp-9f,
    0x1.60418ap-9f, 0x1.a9fbe8p-9f, 0x1.f3b646p-9f, 0x1.1eb852p-8f, 0x1.439582p-8f, 0x1.6872bp-8f,
    0x1.8d4fep-8f, 0x1.b22d0ep-8f, 0x1.d70a3ep-8f, 0x1.fbe76cp-8f, 0x1.10624ep-7f, 0x1.22d0e6p-7f,
    0x1.353f7cp-7f, 0x1.47ae14p-7f, 0x1.a3d70ap-7f, 0x1p-6f, 0x1.2e147ap-6f, 0x1.5c28f6p-6f,
    0x1.8a3d7p-6f, 0x1.b851ecp-6f, 0x1.e66666p-6f, 0x1.0a3d7p-5f, 0x1.2147aep-5f, 0x1.3851ecp-5f,
    0x1.4f5c28p-5f, 0x1.666666p-5f, 0x1.7d70a4p-5f, 0x1.947ae2p-5f, 0x1.ab851ep-5f, 0x1.c28f5cp-5f,
    0x1.d9999ap-5f, 0x1.f0a3d8p-5f, 0x1.03d70ap-4f, 0x1.0f5c28p-4f, 0x1.1ae148p-4f, 0x1.266666p-4f,
    0x1.31eb86p-4f, 0x1.3d70a4p-4f, 0x1.48f5c2p-4f, 0x1.547ae2p-4f, 0x1.6p-4f, 0x1.6b851ep-4f,
    0x1.770a3ep-4f, 0x1.828f5cp-4f, 0x1.8e147ap-4f, 0x1.99999ap-4f, 0x1.d33334p-4f, 0x1.066666p-3f,
    0x1.233334p-3f, 0x1.4p-3f, 0x1.5cccccp-3f, 0x1.79999ap-3f, 0x1.966666p-3f, 0x1.b33334p-3f,
    0x1.dp-3f, 0x1.ecccccp-3f, 0x1.04ccccp-2f, 0x1.133334p-2f, 0x1.21999ap-2f, 0x1.3p-2f,
    0x1.3e6666p-2f, 0x1.4cccccp-2f, 0x1.5b3334p-2f, 0x1.69999ap-2f, 0x1.78p-2f, 0x1.866666p-2f,
    0x1.94ccccp-2f, 0x1.a33334p-2f, 0x1.b1999ap-2f, 0x1.cp-2f, 0x1.ce6666p-2f, 0x1.dcccccp-2f,
    0x1.eb3334p-2f, 0x1.f9999ap-2f, 0x1.04p-1f, 0x1.0b3334p-1f, 0x1.126666p-1f, 0x1.19999ap-1f,
    0x1.20ccccp-1f, 0x1.28p-1f, 0x1.2f3334p-1f, 0x1.366666p-1f, 0x1.3d999ap-1f, 0x1.44ccccp-1f,
    0x1.4cp-1f, 0x1.533334p-1f, 0x1.5a6666p-1f, 0x1.61999ap-1f, 0x1.68ccccp-1f, 0x1.7p-1f,
    0x1.773334p-1f, 0x1.7e6666p-1f, 0x1.85999ap-1f, 0x1.8cccccp-1f, 0x1.94p-1f, 0x1.9b3334p-1f,
    0x1.a26666p-1f, 0x1.a9999ap-1f, 0x1.b0ccccp-1f, 0x1.b8p-1f, 0x1.bf3334p-1f, 0x1.c66666p-1f,
    0x1.cd999ap-1f, 0x1.d4ccccp-1f, 0x1.dcp-1f, 0x1.e33334p-1f, 0x1.ea6666p-1f, 0x1.f1999ap-1f,
    0x1.f8ccccp-1f, 0x1p+0f,
};

/* v codes 0..255 */
AXO_QCONST float axo_q8_unsigned[256] = {
    0.0f, 0x1.ad7f2ap-24f, 0x1.27476cp-21f, 0x1.0c6f7ap-20f, 0x1.b43526p-19f, 0x1.711948p-18f,
    0x1.040bfep-17f, 0x1.4f8b58p-17f, 0x1.64840ep-16f, 0x1.10a138p-15f, 0x1.6f0068p-15f, 0x1.cd5f9ap-15f,
    0x1.15df66p-14f, 0x1.450efep-14f, 0x1.743e96p-14f, 0x1.a36e2ep-14f, 0x1.47ae14p-13f, 0x1.bda512p-13f,
    0x1.19ce08p-12f, 0x1.54c986p-12f, 0x1.8fc504p-12f, 0x1.cac084p-12f, 0x1.02dep-11f, 0x1.205bcp-11f,
    0x1.3dd98p-11f, 0x1.5b573ep-11f, 0x1.78d4fep-11f, 0x1.9652bep-11f, 0x1.b3d07cp-11f, 0x1.d14e3cp-11f,
    0x1.eecbfcp-11f, 0x1.0624dep-10f, 0x1.4fdf3cp-10f, 0x1.99999ap-10f, 0x1.e353f8p-10f, 0x1.16872cp-9f,
    0x1.3b645ap-9f, 0x1.60418ap-9f, 0x1.851eb8p-9f, 0x1.a9fbe8p-9f, 0x1.ced916p-9f, 0x1.f3b646p-9f,
    0x1.0c49bap-8f, 0x1.1eb852p-8f, 0x1.3126eap-8f, 0x1.439582p-8f, 0x1.560418p-8f, 0x1.6872bp-8f,
    0x1.7ae148p-8f, 0x1.8d4fep-8f, 0x1.9fbe76p-8f, 0x1.b22d0ep-8f, 0x1.c49ba6p-8f, 0x1.d70a3ep-8f,
    0x1.e978d4p-8f, 0x1.fbe76cp-8f, 0x1.072b02p-7f, 0x1.10624ep-7f, 0x1.19999ap-7f, 0x1.22d0e6p-7f,
    0x1.2c0832p-7f, 0x1.353f7cp-7f, 0x1.3e76c8p-7f, 0x1.47ae14p-7f, 0x1.75c29p-7f, 0x1.a3d70ap-7f,
    0x1.d1eb86p-7f, 0x1p-6f, 0x1.170a3ep-6f, 0x1.2e147ap-6f, 0x1.451eb8p-6f, 0x1.5c28f6p-6f,
    0x1.733334p-6f, 0x1.8a3d7p-6f, 0x1.a147aep-6f, 0x1.b851ecp-6f, 0x1.cf5c28p-6f, 0x1.e66666p-6f,
    0x1.fd70a4p-6f, 0x1.0a3d7p-5f, 0x1.15c29p-5f, 0x1.2147aep-5f, 0x1.2cccccp-5f, 0x1.3851ecp-5f,
    0x1.43d70ap-5f, 0x1.4f5c28p-5f, 0x1.5ae148p-5f, 0x1.666666p-5f, 0x1.71eb86p-5f, 0x1.7d70a4p-5f,
    0x1.88f5c2p-5f, 0x1.947ae2p-5f, 0x1.ap-5f, 0x1.ab851ep-5f, 0x1.b70a3ep-5f, 0x1.c28f5cp-5f,
    0x1.ce147ap-5f, 0x1.d9999ap-5f, 0x1.e51eb8p-5f, 0x1.f0a3d8p-5f, 0x1.fc28f6p-5f, 0x1.03d70ap-4f,
    0x1.09999ap-4f, 0x1.0f5c28p-4f, 0x1.151eb8p-4f, 0x1.1ae148p-4f, 0x1.20a3d8p-4f, 0x1.266666p-4f,
    0x1.2c28f6p-4f, 0x1.31eb86p-4f, 0x1.37ae14p-4f, 0x1.3d70a4p-4f, 0x1.433334p-4f, 0x1.48f5c2p-4f,
    0x1.4eb852p-4f, 0x1.547ae2p-4f, 0x1.5a3d7p-4f, 0x1.6p-4f, 0x1.65c29p-4f, 0x1.6b851ep-4f,
    0x1.7147aep-4f, 0x1.770a3ep-4f, 0x1.7cccccp-4f, 0x1.828f5cp-4f, 0x1.8851ecp-4f, 0x1.8e147ap-4f,
    0x1.93d70ap-4f, 0x1.99999ap-4f, 0x1.b66666p-4f, 0x1.d33334p-4f, 0x1.fp-4f, 0x1.066666p-3f,
    0x1.14ccccp-3f, 0x1.233334p-3f, 0x1.31999ap-3f, 0x1.4p-3f, 0x1.4e6666p-3f, 0x1.5cccccp-3f,
    0x1.6b3334p-3f, 0x1.79999ap-3f, 0x1.88p-3f, 0x1.966666p-3f, 0x1.a4ccccp-3f, 0x1.b33334p-3f,
    0x1.c1999ap-3f, 0x1.dp-3f, 0x1.de6666p-3f, 0x1.ecccccp-3f, 0x1.fb3334p-3f, 0x1.04ccccp-2f,
    0x1.0cp-2f, 0x1.133334p-2f, 0x1.1a6666p-2f, 0x1.21999ap-2f, 0x1.28ccccp-2f, 0x1.3p-2f,
    0x1.373334p-2f, 0x1.3e6666p-2f, 0x1.45999ap-2f, 0x1.4cccccp-2f, 0x1.54p-2f, 0x1.5b3334p-2f,
    0x1.626666p-2f, 0x1.69999ap-2f, 0x1.70ccccp-2f, 0x1.78p-2f, 0x1.7f3334p-2f, 0x1.866666p-2f,
    0x1.8d999ap-2f, 0x1.94ccccp-2f, 0x1.9cp-2f, 0x1.a33334p-2f, 0x1.aa6666p-2f, 0x1.b1999ap-2f,
    0x1.b8ccccp-2f, 0x1.cp-2f, 0x1.c73334p-2f, 0x1.ce6666p-2f, 0x1.d5999ap-2f, 0x1.dcccccp-2f,
    0x1.e4p-2f, 0x1.eb3334p-2f, 0x1.f26666p-2f, 0x1.f9999ap-2f, 0x1.006666p-1f, 0x1.04p-1f,
    0x1.07999ap-1f, 0x1.0b3334p-1f, 0x1.0eccccp-1f, 0x1.126666p-1f, 0x1.16p-1f, 0x1.19999ap-1f,
    0x1.1d3334p-1f, 0x1.20ccccp-1f, 0x1.246666p-1f, 0x1.28p-1f, 0x1.2b999ap-1f, 0x1.2f3334p-1f,
    0x1.32ccccp-1f, 0x1.366666p-1f, 0x1.3ap-1f, 0x1.3d999ap-1f, 0x1.413334p-1f, 0x1.44ccccp-1f,
    0x1.486666p-1f, 0x1.4cp-1f, 0x1.4f999ap-1f, 0x1.533334p-1f, 0x1.56ccccp-1f, 0x1.5a6666p-1f,
    0x1.5ep-1f, 0x1.61999ap-1f, 0x1.653334p-1f, 0x1.68ccccp-1f, 0x1.6c6666p-1f, 0x1.7p-1f,
    0x1.73999ap-1f, 0x1.773334p-1f, 0x1.7accccp-1f, 0x1.7e6666p-1f, 0x1.82p-1f, 0x1.85999ap-1f,
    0x1.893334p-1f, 0x1.8cccccp-1f, 0x1.906666p-1f, 0x1.94p-1f, 0x1.97999ap-1f, 0x1.9b3334p-1f,
    0x1.9eccccp-1f, 0x1.a26666p-1f, 0x1.a6p-1f, 0x1.a9999ap-1f, 0x1.ad3334p-1f, 0x1.b0ccccp-1f,
    0x1.b46666p-1f, 0x1.b8p-1f, 0x1.bb999ap-1f, 0x1.bf3334p-1f, 0x1.c2ccccp-1f, 0x1.c66666p-1f,
    0x1.cap-1f, 0x1.cd999ap-1f, 0x1.d13334p-1f, 0x1.d4ccccp-1f, 0x1.d86666p-1f, 0x1.dcp-1f,
    0x1.df999ap-1f, 0x1.e33334p-1f, 0x1.e6ccccp-1f, 0x1.ea6666p-1f, 0x1.eep-1f, 0x1.f1999ap-1f,
    0x1.f53334p-1f, 0x1.f8ccccp-1f, 0x1.fc6666p-1f, 0x1p+0f,
};

/* Index of the table value nearest to a (0 <= a), over n ascending values
 * starting at 0: ties go to the smaller one. */
AXO_QFN uint32_t axo_q8_nearest(const float *tab, uint32_t n, float a) {
    uint32_t lo = 0, hi = n - 1;
    if (!(a > 0.0f)) return 0;
    if (a >= tab[hi]) return hi;
    while (hi - lo > 1) { /* tab[lo] <= a < tab[hi] */
        uint32_t mid = (lo + hi) >> 1;
        if (tab[mid] <= a) lo = mid;
        else hi = mid;
    }
    return (a - tab[lo]) <= (tab[hi] - a) ? lo : hi;
}

/* m: x / absmax in [-1, 1] -> a byte (bit 7 the sign); and back */
AXO_QFN uint32_t axo_q8_encode_signed(float m, float absmax) {
    if (!(absmax > 0.0f)) return 0;
    float x = m / absmax;
    uint32_t c = axo_q8_nearest(axo_q8_signed, 128, x < 0.0f ? -x : x);
    return c && x < 0.0f ? (c | 128u) : c;
}
AXO_QFN float axo_q8_decode_signed(uint32_t b, float absmax) {
    float a = axo_q8_signed[b & 127u] * absmax;
    return (b & 128u) ? -a : a;
}
AXO_QFN uint32_t axo_q8_encode_unsigned(float v, float absmax) {
    if (!(absmax > 0.0f)) return 0;
    return axo_q8_nearest(axo_q8_unsigned, 256, v / absmax);
}
AXO_QFN float axo_q8_decode_unsigned(uint32_t b, float absmax) { return axo_q8_unsigned[b & 255u] * absmax; }

/* AdamW's per-step beta1 (adamw / adamw8's optional f32[3] operand, lr_scheduler: one_cycle): the double x as three
 * floats, its top 24 bits, the remainder's top 24, the rest; each remainder is exact in double, so
 * axo_beta1_join's ((double)f[0] + (double)f[1]) + (double)f[2] is x exactly (the first sum spans at most 49 bits,
 * and the second's exact result is x itself). */
AXO_QFN void axo_beta1_split(double x, float *f) {
    f[0] = (float)x;
    const double r = x - (double)f[0];
    f[1] = (float)r;
    f[2] = (float)(r - (double)f[1]);
}
AXO_QFN double axo_beta1_join(const float *f) { return ((double)f[0] + (double)f[1]) + (double)f[2]; }

#endif
