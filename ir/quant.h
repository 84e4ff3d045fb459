/* quant.h — the exact arithmetic of the `dropout` and `dequant_nf4` ops and
 * of the stochastic rounding of pure-bf16 AdamW (`adamw` on bf16 state).
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

#endif
