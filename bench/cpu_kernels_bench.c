/* cpu_kernels_bench.c — timings of the CPU reference kernels at tiny-model
 * sizes (informational). Build:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -I. bench/cpu_kernels_bench.c runtime/cpu_kernels.c ir/base.c -lm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/cpu_kernels.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static float *rnd(int64_t n, float amp) {
    float *x = malloc(sizeof(float) * (size_t)n);
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = amp * ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    return x;
}

#define TIME(label, reps, stmt)                                              \
    do {                                                                     \
        stmt;                                                                \
        double t0_ = now_ms();                                               \
        for (int r_ = 0; r_ < (reps); r_++) stmt;                            \
        printf("%-44s %9.3f ms\n", label, (now_ms() - t0_) / (reps));        \
    } while (0)

int main(void) {
    /* matmuls of a small Llama: T=512 tokens, H=256, I=688 */
    int64_t T = 512, H = 256, I = 688, V = 32000;
    float *x = rnd(T * H, 2), *w = rnd(I * H, 0.1f), *y = rnd(T * I, 1), *dw = rnd(I * H, 0);
    TIME("matmul 512x688x256 (x W^T)", 10, ck_matmul_f32(x, w, y, T, I, H, 0, 1, 0));
    TIME("matmul 688x256x512 (dW += dy^T x)", 10, ck_matmul_f32(y, x, dw, I, H, T, 1, 0, 1));
    TIME("matmul 512x256x688 (dx = dy W)", 10, ck_matmul_f32(y, w, x, T, H, I, 0, 0, 0));

    int64_t B = 2, S = 256, nh = 8, nkv = 2, hd = 32;
    float *q = rnd(B * S * nh * hd, 2), *k = rnd(B * S * nkv * hd, 2), *v = rnd(B * S * nkv * hd, 2);
    float *o = rnd(B * S * nh * hd, 0), *lse = rnd(B * nh * S, 0), *dq = rnd(B * S * nh * hd, 0);
    float *dk = rnd(B * S * nkv * hd, 0), *dv = rnd(B * S * nkv * hd, 0);
    TIME("attention fwd B2 S256 nh8 nkv2 hd32", 5,
         ck_attention_fwd_f32(q, k, v, NULL, o, lse, B, S, nh, nkv, hd, 0.17, 1, 0, 0.0));
    TIME("attention bwd B2 S256 nh8 nkv2 hd32", 5,
         ck_attention_bwd_f32(q, k, v, NULL, o, lse, q, dq, dk, dv, B, S, nh, nkv, hd, 0.17, 1, 0, 0.0));

    float *hs = rnd(T * H, 2), *W = rnd(V * H, 0.1f), *dh = rnd(T * H, 0), *dW = rnd(V * H, 0);
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)T);
    for (int64_t t = 0; t < T; t++) tg[t] = (int32_t)((t * 7919) % V);
    double loss;
    int64_t cnt;
    TIME("linear_cross_entropy T512 H256 V32000", 2,
         ck_linear_cross_entropy_f32(hs, W, tg, T, H, V, -100, 1.0 / T, 0, 0, &loss, &cnt, dh, dW));
    float *lg = rnd(T * V, 4);
    TIME("cross_entropy fwd T512 V32000", 2, ck_cross_entropy_fwd_f32(lg, tg, T, V, -100, 0.0, &loss, &cnt));
    TIME("cross_entropy bwd T512 V32000 (in place)", 2, ck_cross_entropy_bwd_f32(lg, tg, T, V, -100, 0.0, 1.0, lg));

    float *a = rnd(T * I, 4), *u = rnd(T * I, 1), *ys = rnd(T * I, 0), *g2 = rnd(T * I, 0);
    TIME("swiglu fwd 512x688", 10, ck_swiglu_fwd_f32(a, u, ys, T * I));
    TIME("swiglu bwd 512x688", 10, ck_swiglu_bwd_f32(a, u, ys, g2, ys, T * I));
    float *nw = rnd(H, 1), *ny = rnd(T * H, 0), *ndw = rnd(H, 0);
    TIME("rmsnorm fwd 512x256", 10, ck_rmsnorm_fwd_f32(x, nw, ny, T, H, 1e-6, 0));
    TIME("rmsnorm bwd 512x256", 10, ck_rmsnorm_bwd_f32(x, nw, ny, hs, ndw, T, H, 1e-6, 0));
    float *pp = rnd(V * H, 1), *mm = rnd(V * H, 0), *vv = rnd(V * H, 0);
    TIME("adamw 8.2M params", 2, ck_adamw_step_f32(pp, W, mm, vv, V * H, 1e-3, 0.9, 0.999, 1e-8, 0.1, 3, 1.0));
    printf("(loss %.4f over %lld)\n", loss / (double)cnt, (long long)cnt);
    return 0;
}
