// rope.cuh — rotary position embedding, HF rotate_half convention.
//
// Math (ck_rope_fwd_*): x[B,S,nh,hd], pos[B,S] (int32), inv_freq[nrot] (fp32,
// computed on the host by ck_rope_inv_freq, so every rope_type is the same
// kernel). For i < nrot: ang = inv_freq[i] * (float)pos (fp32 product, as HF),
// c = (float)cos(ang) * mscale, s = (float)sin(ang) * mscale (double sincos,
// rounded, then HF's attention_scaling in fp32), and
//   y[i] = x[i] c - x[i+nrot] s,   y[i+nrot] = x[i+nrot] c + x[i] s,
// each product and sum rounded separately; dims [2 nrot, hd) pass through (a
// partial rotation). interleave != 0 (GLM) rotates the pairs (2i, 2i + 1)
// instead of (i, i + nrot), with the same angles. inverse != 0 uses -s, which
// is the backward (dx = rope(dy, inverse = 1)). In place safe (y == x).
//
// Ministral 3's query scale (qbeta != 0, the queries' rope): f = 1 + qbeta
// log(1 + floor(pos / qmax)) in fp32 (ck_rope_qscale), multiplying the rotated
// output (and the passed-through dims), or, inverse, the input before the
// rotation (the backward of q_rot * f).
//
// longrope: inv_freq holds the short table then the long one; maxpos (NULL
// when the plan cannot reach beyond long_from) is the micro-batch's max
// position, and the long table is taken when *maxpos + 1 > long_from.
//
// Launch: 1-D, block 256, any grid (grid-stride over B*S*(hd/2) (token, i)
// items). A thread owning a pair (i < nrot) evaluates sincos once and walks the
// nh heads, so consecutive threads read/write consecutive i of a head row (two
// coalesced half-row segments per head); one with i >= nrot copies dims 2i
// and 2i + 1 (together [2 nrot, hd)) of every head when y != x. x read once,
// y written once.

template <typename T>
__device__ __forceinline__ void rope_body(const T *x, const int *pos, const float *inv_freq, const int *maxpos, T *y,
                                          i64 BS, int nh, int hd, int nrot, int long_from, float mscale, int inverse,
                                          double qbeta, i64 qmax, int interleave) {
    const int half = hd / 2;
    const i64 n = BS * half;
    if (maxpos && *maxpos + 1 > long_from) inv_freq += nrot;
    for (i64 t = ax_tid(); t < n; t += ax_nthreads()) {
        const i64 bs = t / half;
        const int i = (int)(t - bs * half);
        float f = 1.0f;
        if (qbeta != 0 && qmax > 0) {
            const float fl = floorf(__fdiv_rn((float)pos[bs], (float)qmax));
            f = __fadd_rn(1.0f, __fmul_rn((float)qbeta, (float)log(1.0 + (double)fl)));
        }
        if (i >= nrot) { // passed-through dims 2i, 2i + 1 (in [2 nrot, hd))
            if (x != y || f != 1.0f)
                for (int h = 0; h < nh; h++) {
                    const i64 o = (bs * nh + h) * hd + 2 * i;
                    ax_st(y + o, __fmul_rn(ax_ld(x + o), f));
                    ax_st(y + o + 1, __fmul_rn(ax_ld(x + o + 1), f));
                }
            continue;
        }
        const float ang = __fmul_rn(inv_freq[i], (float)pos[bs]);
        double sd, cd;
        sincos((double)ang, &sd, &cd);
        const float c = __fmul_rn((float)cd, mscale), s0 = __fmul_rn((float)sd, mscale), s = inverse ? -s0 : s0;
        const int d1 = interleave ? 2 * i : i, d2 = interleave ? 2 * i + 1 : i + nrot; // the pair's dims
        for (int h = 0; h < nh; h++) {
            const i64 o = (bs * nh + h) * hd;
            float x1 = ax_ld(x + o + d1), x2 = ax_ld(x + o + d2);
            if (inverse && f != 1.0f) x1 = __fmul_rn(x1, f), x2 = __fmul_rn(x2, f);
            float y1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)), y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
            if (!inverse && f != 1.0f) y1 = __fmul_rn(y1, f), y2 = __fmul_rn(y2, f);
            ax_st(y + o + d1, y1);
            ax_st(y + o + d2, y2);
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_rope_f32(const float *x, const int *pos, const float *inv_freq,
                                                               const int *maxpos, float *y, i64 BS, int nh, int hd,
                                                               int nrot, int long_from, float mscale, int inverse,
                                                               double qbeta, i64 qmax, int interleave) {
    rope_body(x, pos, inv_freq, maxpos, y, BS, nh, hd, nrot, long_from, mscale, inverse, qbeta, qmax, interleave);
}
extern "C" __global__ void __launch_bounds__(256) axo_rope_bf16(const bf16 *x, const int *pos, const float *inv_freq,
                                                                const int *maxpos, bf16 *y, i64 BS, int nh, int hd,
                                                                int nrot, int long_from, float mscale, int inverse,
                                                                double qbeta, i64 qmax, int interleave) {
    rope_body(x, pos, inv_freq, maxpos, y, BS, nh, hd, nrot, long_from, mscale, inverse, qbeta, qmax, interleave);
}
