// rope.cuh — rotary position embedding, HF rotate_half convention.
//
// Math (ck_rope_fwd_*): x[B,S,nh,hd], pos[B,S] (int32), inv_freq[nrot] (fp32,
// computed on the host by ck_rope_inv_freq, so every rope_type is the same
// kernel). For i < nrot: ang = inv_freq[i] * (float)pos (fp32 product, as HF),
// c = (float)cos(ang) * mscale, s = (float)sin(ang) * mscale (double sincos,
// rounded, then HF's attention_scaling in fp32), and
//   y[i] = x[i] c - x[i+nrot] s,   y[i+nrot] = x[i+nrot] c + x[i] s,
// each product and sum rounded separately; dims [2 nrot, hd) pass through (a
// partial rotation). inverse != 0 uses -s, which is the backward (dx =
// rope(dy, inverse = 1)). In place safe (y == x).
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
                                          i64 BS, int nh, int hd, int nrot, int long_from, float mscale, int inverse) {
    const int half = hd / 2;
    const i64 n = BS * half;
    if (maxpos && *maxpos + 1 > long_from) inv_freq += nrot;
    for (i64 t = ax_tid(); t < n; t += ax_nthreads()) {
        const i64 bs = t / half;
        const int i = (int)(t - bs * half);
        if (i >= nrot) { // passed-through dims 2i, 2i + 1 (in [2 nrot, hd))
            if (x != y)
                for (int h = 0; h < nh; h++) {
                    const i64 o = (bs * nh + h) * hd + 2 * i;
                    y[o] = x[o];
                    y[o + 1] = x[o + 1];
                }
            continue;
        }
        const float ang = __fmul_rn(inv_freq[i], (float)pos[bs]);
        double sd, cd;
        sincos((double)ang, &sd, &cd);
        const float c = __fmul_rn((float)cd, mscale), s0 = __fmul_rn((float)sd, mscale), s = inverse ? -s0 : s0;
        for (int h = 0; h < nh; h++) {
            const i64 o = (bs * nh + h) * hd + i;
            const float x1 = ax_ld(x + o), x2 = ax_ld(x + o + nrot);
            ax_st(y + o, __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
            ax_st(y + o + nrot, __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) axo_rope_f32(const float *x, const int *pos, const float *inv_freq,
                                                               const int *maxpos, float *y, i64 BS, int nh, int hd,
                                                               int nrot, int long_from, float mscale, int inverse) {
    rope_body(x, pos, inv_freq, maxpos, y, BS, nh, hd, nrot, long_from, mscale, inverse);
}
extern "C" __global__ void __launch_bounds__(256) axo_rope_bf16(const bf16 *x, const int *pos, const float *inv_freq,
                                                                const int *maxpos, bf16 *y, i64 BS, int nh, int hd,
                                                                int nrot, int long_from, float mscale, int inverse) {
    rope_body(x, pos, inv_freq, maxpos, y, BS, nh, hd, nrot, long_from, mscale, inverse);
}
