// quant.cuh — LoRA dropout, NEFTune's noise and QLoRA's NF4 dequantization.
//
// The arithmetic is ir/quant.h itself: the line that includes it below is
// replaced by the header's text when the sources are embedded
// (codegen/embed_kernels.cmake), with its functions made __device__ and its
// tables __device__ const (common.cuh), so the CPU reference
// (runtime/cpu_kernels.c) and these kernels draw the same masks and decode
// the same bits.
//
// Math:
//  * axo_dropout_T(x, seed, y, n, salt, thr, k): y[i] = x[i] * k (one f32
//    multiply, __fmul_rn: no contraction) if axo_rng_u32(*seed, salt, i) >=
//    thr, else 0; rounded to T. i is the flat index into the (local)
//    tensor; seed is the runtime i32 scalar "dropout_seed" on the device.
//    thr = axo_dropout_threshold(p) and k = axo_dropout_scale(p) are
//    computed on the host from the same header (ck_dropout_f32). y may
//    alias x.
//  * axo_neftune_T(x, keys, y, n, H, salt, mag, mag_p): x is n / H rows of H
//    (mag_p: the micro step's mag on the device, replacing mag; NULL: mag);
//    y[i] = x[i] + mag * axo_neftune_unit(keys[i / H], salt, i % H), the
//    product and the sum each rounded once (__fmul_rn, __fadd_rn: no FMA),
//    then rounded to T (ck_neftune_f32). keys is the runtime i32 input
//    "neftune_keys" on the device, one per row (token). y may alias x.
//  * axo_dequant_nf4_T(q, absmax, rowmax, w, N, K): w[r, c] =
//    axo_nf4_value(code, axo_nf4_scale(rowmax[r], absmax[r, c / 64])) in
//    f32, rounded to T (ck_dequant_nf4_f32). K is even; absmax has
//    ceil(K / 64) steps per row (the last block of a row may be shorter).
//
// Storage (the CUDA executor packs what the CPU executor holds as one float
// per element, runtime/cuda_exec.h): q is nf4, two codes per byte, element
// 2i in the low nibble of byte i and 2i+1 in the high nibble — so, read as a
// little-endian 32-bit word, element 8v + j sits at bits 4j..4j+3 of word v;
// absmax is u8, one step per byte; rowmax f32. A row of K codes is K/2
// bytes (whole bytes: K is even); rows follow each other without padding.
//
// Launch: 1-D, block 256, any grid (grid-stride). Dropout and NEFTune: as the
// elementwise kernels (ax_map: 16-byte vectors when aligned), full size
// ceil(n / (256 V)). Dequant: one thread per 8 elements (one 32-bit word of
// codes), full size ceil(N K / 8 / 256). When K % 8 == 0 (model widths) the
// 8 codes of a word share a row and a block (64 is a multiple of 8): one
// scale per word; otherwise a word may straddle two rows and each element
// finds its own. w is written as 16-byte vectors when 16-byte aligned (the
// arena's values are), else element by element; q is read as words when
// 4-byte aligned, else (and for a last partial word) as bytes.
// Traffic: dropout one read and one write per element (NEFTune also a key
// per element, from cache: H consecutive elements share it); dequant 0.5 + 4 or 2
// bytes per element (+ 1/64 of a byte of steps and the row's max).

#include "ir/quant.h"

template <typename T>
__device__ __forceinline__ void dropout_body(const T *x, const int *seed, T *y, i64 n, unsigned salt, unsigned thr,
                                             float k) {
    const uint32_t s = (uint32_t)*seed;
    const T *in[1] = {x};
    T *out[1] = {y};
    ax_map<T, 1, 1>(n, in, out, [s, salt, thr, k](i64 i, const float(&v)[1], float(&r)[1]) {
        r[0] = axo_rng_u32(s, salt, (uint32_t)i) >= thr ? __fmul_rn(v[0], k) : 0.0f;
    });
}
extern "C" __global__ void __launch_bounds__(256)
    axo_dropout_f32(const float *x, const int *seed, float *y, i64 n, unsigned salt, unsigned thr, float k) {
    dropout_body(x, seed, y, n, salt, thr, k);
}
extern "C" __global__ void __launch_bounds__(256)
    axo_dropout_bf16(const bf16 *x, const int *seed, bf16 *y, i64 n, unsigned salt, unsigned thr, float k) {
    dropout_body(x, seed, y, n, salt, thr, k);
}

template <typename T>
__device__ __forceinline__ void neftune_body(const T *x, const int *keys, T *y, i64 n, i64 H, unsigned salt, float mag_attr,
                                             const float *mag_p) {
    const float mag = mag_p ? *mag_p : mag_attr;
    const T *in[1] = {x};
    T *out[1] = {y};
    ax_map<T, 1, 1>(n, in, out, [keys, H, salt, mag](i64 i, const float(&v)[1], float(&r)[1]) {
        const i64 row = i / H;
        const float u = axo_neftune_unit((uint32_t)keys[row], salt, (uint32_t)(i - row * H));
        r[0] = __fadd_rn(v[0], __fmul_rn(mag, u));
    });
}
extern "C" __global__ void __launch_bounds__(256)
    axo_neftune_f32(const float *x, const int *keys, float *y, i64 n, i64 H, unsigned salt, float mag, const float *mag_p) {
    neftune_body(x, keys, y, n, H, salt, mag, mag_p);
}
extern "C" __global__ void __launch_bounds__(256)
    axo_neftune_bf16(const bf16 *x, const int *keys, bf16 *y, i64 n, i64 H, unsigned salt, float mag, const float *mag_p) {
    neftune_body(x, keys, y, n, H, salt, mag, mag_p);
}

// Eight consecutive outputs: one 16-byte store (bf16), two (f32), or scalars.
__device__ __forceinline__ void dq_st8(float *p, const float (&v)[8], bool al) {
    if (al) {
        const float a[4] = {v[0], v[1], v[2], v[3]}, b[4] = {v[4], v[5], v[6], v[7]};
        ax_st16(p, a);
        ax_st16(p + 4, b);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) p[j] = v[j];
    }
}
__device__ __forceinline__ void dq_st8(bf16 *p, const float (&v)[8], bool al) {
    if (al) {
        ax_st16(p, v);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) ax_st(p + j, v[j]);
    }
}

// The packed codes of elements 8v .. 8v + cnt - 1 (cnt <= 8) as one word.
__device__ __forceinline__ uint32_t dq_word(const unsigned char *q, i64 v, int cnt, bool qal) {
    if (cnt == 8 && qal) return reinterpret_cast<const uint32_t *>(q)[v];
    uint32_t word = 0;
    for (int k = 0; k < (cnt + 1) / 2; k++) word |= (uint32_t)q[4 * v + k] << (8 * k);
    return word;
}

template <typename T>
__device__ __forceinline__ void dequant_body(const unsigned char *q, const unsigned char *absmax, const float *rowmax,
                                             T *w, i64 N, i64 K) {
    const i64 n = N * K, nwords = (n + 7) / 8, nb = (K + AXO_NF4_BLOCK - 1) / AXO_NF4_BLOCK;
    const bool qal = ((unsigned long long)q & 3ull) == 0, wal = ax_al16(w), one_scale = K % 8 == 0;
    for (i64 v = ax_tid(); v < nwords; v += ax_nthreads()) {
        const i64 e = v * 8;
        const int cnt = n - e < 8 ? (int)(n - e) : 8;
        const uint32_t word = dq_word(q, v, cnt, qal);
        float o[8];
        if (one_scale) {
            const i64 r = e / K;
            const float s = axo_nf4_scale(rowmax[r], absmax[r * nb + (e - r * K) / AXO_NF4_BLOCK]);
#pragma unroll
            for (int j = 0; j < 8; j++) o[j] = axo_nf4_value(word >> (4 * j), s);
        } else {
            for (int j = 0; j < cnt; j++) {
                const i64 r = (e + j) / K, c = e + j - r * K;
                o[j] = axo_nf4_value(word >> (4 * j), axo_nf4_scale(rowmax[r], absmax[r * nb + c / AXO_NF4_BLOCK]));
            }
        }
        if (cnt == 8) {
            dq_st8(w + e, o, wal);
        } else {
            for (int j = 0; j < cnt; j++) ax_st(w + e + j, o[j]);
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_dequant_nf4_f32(const unsigned char *q, const unsigned char *absmax,
                                                                     const float *rowmax, float *w, i64 N, i64 K) {
    dequant_body(q, absmax, rowmax, w, N, K);
}
extern "C" __global__ void __launch_bounds__(256) axo_dequant_nf4_bf16(const unsigned char *q, const unsigned char *absmax,
                                                                      const float *rowmax, bf16 *w, i64 N, i64 K) {
    dequant_body(q, absmax, rowmax, w, N, K);
}
