/* cpu_kernels.h — the CPU reference kernels (forward and backward) that the
 * cpu executor runs for each IR op, as plain C over contiguous row-major
 * arrays.
 *
 * Promises:
 *  - Every kernel exists twice, with identical arithmetic structure:
 *    `_f32` (what the executor runs; float storage, fp32 math where torch
 *    does fp32 math, double accumulators for reductions) and `_f64` (the same
 *    in double, used by the finite-difference tests). Both are instantiated
 *    from one body, runtime/cpu_kernels_impl.h.
 *  - Shapes: "R" is the product of leading dims (rows). All arrays are
 *    contiguous, row-major, and must not overlap unless stated ("in place").
 *    Outputs are fully written unless the comment says "accumulate (+=)",
 *    in which case the caller zeroes them first when it wants a plain sum.
 *  - Determinism: every reduction has a fixed order that depends only on the
 *    shapes, never on the ISA path taken (the matmul's SIMD lanes each run
 *    the same sequential sum) or on timing. Same inputs -> same bits.
 *  - Float semantics follow Hugging Face transformers / PyTorch fp32:
 *    where torch rounds to float between operations we round at the same
 *    places (documented per kernel), so results agree to ~1 ulp per op.
 *  - Index inputs (ids, targets) are validated first: kernels taking them
 *    return -1 when all are valid, else the position of the first invalid
 *    one (>= 0), and then write nothing. Nothing is ever read out of bounds.
 *  - No kernel prints, exits, or keeps state; a few allocate scratch with
 *    malloc and abort() if that fails (as ax_arena does).
 */
#ifndef AX_CPU_KERNELS_H
#define AX_CPU_KERNELS_H

#include <math.h>
#include <stdint.h>

/* Threads (OpenMP). The float GEMM splits C over ck_threads() threads and
 * the executor splits elementwise optimizer work (runtime/cpu_exec.c); the
 * split changes no bit of any result. ck_threads: OpenMP's count for this
 * thread (OMP_NUM_THREADS, else every core; 1 inside a parallel region);
 * ck_set_threads sets it for the calling thread and the threads it starts
 * (a local rank thread takes its share of the cores). */
int ck_threads(void);
void ck_set_threads(int n);

/* ---- matmul ---------------------------------------------------------------
 * C[M,N] (=, or += when accumulate) op(A) . op(B), where
 *   A is [M,K] (ta=0) or [K,M] (ta=1, op(A) = A^T),
 *   B is [K,N] (tb=0) or [N,K] (tb=1, op(B) = B^T).
 * Every C element is the strictly sequential sum
 *   c = ((c0 + a_0 b_0) + a_1 b_1) + ... + a_{K-1} b_{K-1}
 * with c0 = old C (accumulate) or 0, products rounded separately (no FMA),
 * so the result is bit-identical on every x86-64 path (AVX2 or SSE2).
 * The f32 version packs panels and runs a register-blocked SIMD micro-kernel
 * (AVX2 chosen at run time when the CPU has it); large products are split
 * over ck_threads() threads by slices of C, which changes no bit.
 * K == 0 gives C = 0 (or C unchanged when accumulating). */
void ck_matmul_f32(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                   int accumulate);
void ck_matmul_f64(const double *A, const double *B, double *C, int64_t M, int64_t N, int64_t K, int ta, int tb,
                   int accumulate);

/* ---- RMSNorm (HF LlamaRMSNorm; Gemma's with offset 1) -----------------------
 * x[R,H], w[H] -> y[R,H]:  var = mean(x^2) over H (double accumulation,
 * rounded to REAL), r = 1/sqrt(var + (REAL)eps), y = w' * (x * r), the two
 * products rounded separately in that order, as torch does; w' = offset + w
 * rounded to REAL (Gemma3RMSNorm: 1 + w in float32; Llama: offset 0, w' = w).
 * The backward reads w' for w.
 * bwd: dx[R,H] fully written; dw[H] accumulate (+=) the sum over rows of
 * dy * x * r.  dx = r * (dy*w - xhat * mean(dy*w*xhat)), xhat = x*r. */
void ck_rmsnorm_fwd_f32(const float *x, const float *w, float *y, int64_t R, int64_t H, double eps, double offset);
void ck_rmsnorm_fwd_f64(const double *x, const double *w, double *y, int64_t R, int64_t H, double eps, double offset);
void ck_rmsnorm_bwd_f32(const float *x, const float *w, const float *dy, float *dx, float *dw, int64_t R, int64_t H,
                        double eps, double offset);
void ck_rmsnorm_bwd_f64(const double *x, const double *w, const double *dy, double *dx, double *dw, int64_t R,
                        int64_t H, double eps, double offset);

/* ---- rotary position embedding -------------------------------------------- */
enum { CK_ROPE_DEFAULT = 0, CK_ROPE_LINEAR = 1, CK_ROPE_LLAMA3 = 2, CK_ROPE_YARN = 3, CK_ROPE_LONGROPE = 4 };
/* "default" (also accepted: NULL, "", "none"), "linear", "llama3", "yarn", "longrope"; -1 for anything else
 * ("dynamic" never reaches a plan: the lowering writes it as "default" where it is exactly that, else refuses). */
int ck_rope_type_from_name(const char *name);
/* One rope op's frequencies: transformers 5's ROPE_INIT_FUNCTIONS (modeling_rope_utils.py) for the rotated dims. */
typedef struct ck_rope {
    int type;               /* CK_ROPE_* */
    int64_t dim;            /* int(head_dim * partial_rotary_factor), even: the rotated dims (dim / 2 frequencies),
                             * the exponent's denominator; the rest of the head passes through */
    double theta;
    double factor;          /* linear, llama3, yarn */
    double low_freq_factor, high_freq_factor, original_max; /* llama3; original_max also yarn's */
    double beta_fast, beta_slow; /* yarn */
    int truncate;           /* yarn: the correction range floored / ceiled (HF's default, true) */
    int n_ext;              /* longrope: dim / 2 factors of the regime in use (short or long) */
    const double *ext;
} ck_rope;
/* out[dim / 2] = HF's inv_freq, in float32 exactly as torch computes it:
 *   e_i = (float)(2i) / (float)dim; inv_i = 1 / ((float)theta ** e_i)
 * (pow evaluated in double and rounded once; bit-identical to torch 2.x for Llama-3 llama3, Qwen2 default and a
 * linear config, checked offline). linear: inv_i / (float)factor. llama3: HF _compute_llama3_parameters with its
 * float32 order of operations:
 *   wavelen = (float)(2 pi) * (1/inv); low_wl = orig/low_ff; high_wl = orig/high_ff;
 *   inv' = wavelen > low_wl ? inv/factor : inv;
 *   if !(wavelen < high_wl) && !(wavelen > low_wl):
 *     sf = (orig * (1/wavelen) - low_ff) / (high_ff - low_ff);
 *     inv' = (1-sf)*inv'/factor + sf*inv'.
 * yarn (_compute_yarn_parameters): low/high = the correction dims of beta_fast / beta_slow rotations over
 *   original_max, in double (floored / ceiled when truncate), clamped to [0, dim - 1]; ramp_i = clamp((i - low) /
 *   (high - low), 0, 1) in float32 (high += 0.001 when equal); with ef = 1 - ramp_i,
 *   inv' = (1 / (factor * theta^e)) * (1 - ef) + (1 / theta^e) * ef.
 * longrope (_compute_longrope_parameters): inv' = 1 / (ext_i * theta^e_i), ext the regime's factors (float32).
 * Returns 0, or -1 for an odd or non-positive dim, an unknown type, or unusable parameters (factor <= 0, high_ff ==
 * low_ff, longrope without dim / 2 positive factors). */
int ck_rope_inv_freq(const ck_rope *r, float *out);
/* x[B,S,nh,hd], pos[B,S] -> y[B,S,nh,hd], HF rotate_half convention over the first 2 nrot dims (nrot = the
 * frequencies' count; 2 nrot <= hd), the rest passed through (HF's partial rotation: q[..., :rotary_dim] rotated,
 * q[..., rotary_dim:] kept). For i < nrot the angle is the float32 product inv_freq[i] * (float)pos (in both versions,
 * as HF builds cos/sin in float32), c = cos, s = sin (evaluated in double, rounded to REAL), each multiplied by
 * mscale (HF's attention_scaling, 1 but for yarn and longrope) in REAL (float32 in the f32 version, as HF):
 *   y[i] = x[i]*c - x[i+nrot]*s,  y[i+nrot] = x[i+nrot]*c + x[i]*s.
 * interleave != 0 (GLM's rotate_half over pairs x[..., 0::2], x[..., 1::2]) rotates the pair (2i, 2i+1) instead of
 * (i, i+nrot), with the same angles.
 * inverse != 0 uses -s: the transpose of the map, i.e. rope's backward (dx = rope_fwd(dy, inverse=1)). In place
 * safe (y == x). */
/* Ministral 3's query scale at a position (transformers' get_llama_4_attn_scale, in float32 as torch computes it):
 * 1 + beta log(1 + floor(pos / qmax)); 1 when beta is 0 or qmax < 1. The rope op applies it to its output (attrs
 * qscale_beta, qscale_max: the queries' rope only), and to the gradient before the inverse rotation. The log is
 * correctly rounded; torch's CPU log is 1 ulp off at ln 7, ln 47 and ln 49, which moves the factor with beta >= 0.2
 * from floor(pos / qmax) = 6 on (past 98304 positions for Ministral 3's 16384); with its beta 0.1, not before 178. */
static inline float ck_rope_qscale(int32_t pos, double beta, int64_t qmax) {
    if (beta == 0 || qmax < 1) return 1.0f;
    const float fl = floorf((float)pos / (float)qmax);
    return 1.0f + (float)beta * (float)log(1.0 + (double)fl);
}
void ck_rope_fwd_f32(const float *x, const int32_t *pos, const float *inv_freq, float *y, int64_t B, int64_t S,
                     int64_t nh, int64_t hd, int64_t nrot, float mscale, int inverse, double qbeta, int64_t qmax, int interleave);
void ck_rope_fwd_f64(const double *x, const int32_t *pos, const float *inv_freq, double *y, int64_t B, int64_t S,
                     int64_t nh, int64_t hd, int64_t nrot, float mscale, int inverse, double qbeta, int64_t qmax, int interleave);

/* ---- attention (GQA, causal, segment-masked) -------------------------------
 * q[B,S,nh,hd], k,v[B,S,nkv,hd], seg[B,S] (NULL = one segment) ->
 * out[B,S,nh,hd], lse[B,nh,S].  Query head h reads kv head h/(nh/nkv)
 * (nh % nkv == 0). Query i attends key j iff (!causal || j <= i) and
 * seg[b,i] == seg[b,j], and, with a sliding window > 0 (causal only),
 * i - j < window (HF's sliding-window mask; 0: none); s_ij = scale * q_i.k_j, or with softcap c > 0
 * (Gemma 2's attn_logit_softcapping) c tanh(scale q_i.k_j / c), before the mask;  lse_i = log sum_j exp(s_ij)
 * (natural log); out_i = sum_j exp(s_ij - lse_i) v_j.  Streaming online
 * softmax over key blocks of 64 (no [S,S] buffer); running max/sum and the
 * output accumulator are double in both versions. Every query sees at least
 * itself, so no row is empty.
 * bwd (FlashAttention-2 math): D_i = dout_i.out_i; P_ij = exp(s_ij - lse_i);
 * dV_j += P_ij dout_i; dP_ij = dout_i.v_j; dS_ij = P_ij (dP_ij - D_i), times 1 - tanh^2 with a softcap;
 * dQ_i += scale dS_ij k_j; dK_j += scale dS_ij q_i. dq[B,S,nh,hd],
 * dk/dv[B,S,nkv,hd] fully written (dk/dv summed over the query heads that
 * share a kv head, in head order then query order). */
void ck_attention_fwd_f32(const float *q, const float *k, const float *v, const int32_t *seg, float *out, float *lse,
                          int64_t B, int64_t S, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);
void ck_attention_fwd_f64(const double *q, const double *k, const double *v, const int32_t *seg, double *out,
                          double *lse, int64_t B, int64_t S, int64_t nh, int64_t nkv, int64_t hd, double scale,
                          int causal, int64_t window, double softcap);
void ck_attention_bwd_f32(const float *q, const float *k, const float *v, const int32_t *seg, const float *out,
                          const float *lse, const float *dout, float *dq, float *dk, float *dv, int64_t B, int64_t S,
                          int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);
void ck_attention_bwd_f64(const double *q, const double *k, const double *v, const int32_t *seg, const double *out,
                          const double *lse, const double *dout, double *dq, double *dk, double *dv, int64_t B,
                          int64_t S, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);

/* ---- attention sinks (gpt-oss) -------------------------------------------------
 * ck_attn_sink_fwd, in place on a finished attention's out[B,S,nh,hd] and lse[B,nh,S]: each head's sink logit
 * joins every query's softmax with no value: lse' = logaddexp(lse, sinks[h]), out' = out exp(lse - lse') (double
 * inside). ck_attn_sink_bwd: dsinks[h] = -sum_{b,i} exp(sinks[h] - lse'_bhi) (dout_bih . out'_bih), from the
 * sinks' out' and lse' (the same out' and lse' give attention's backward its dq, dk, dv); sums in double. */
void ck_attn_sink_fwd_f32(float *out, float *lse, const float *sinks, int64_t B, int64_t S, int64_t nh, int64_t hd);
void ck_attn_sink_fwd_f64(double *out, double *lse, const double *sinks, int64_t B, int64_t S, int64_t nh, int64_t hd);
void ck_attn_sink_bwd_f32(const float *sinks, const float *out, const float *lse, const float *dout, float *dsinks,
                          int64_t B, int64_t S, int64_t nh, int64_t hd);
void ck_attn_sink_bwd_f64(const double *sinks, const double *out, const double *lse, const double *dout,
                          double *dsinks, int64_t B, int64_t S, int64_t nh, int64_t hd);

/* ---- ring attention blocks (sequence parallelism) ---------------------------
 * Attention of Sq local queries against one block of Sk keys, as ring
 * attention computes it block by block. Tokens carry their position in the
 * row: query i attends key j iff segq[b,i] == segk[b,j] and (!causal ||
 * 0 <= idxq[b,i] - idxk[b,j] < window, no upper bound for window 0), so any split of a row over ranks (contiguous,
 * zigzag, striped) masks exactly as the whole row does. A query that sees no
 * key of the block gets out = 0, lse = -inf. out/lse/dq/dk/dv here are
 * always REAL (f32 in the executor) whatever the working dtype. seg NULL
 * means one segment, idx NULL index = position (Sq == Sk): the whole-row
 * kernels above are exactly that case.
 * bwd: out/lse are those of the whole row (merged over all blocks); dq is
 * this block's contribution (the ring sums them), dk/dv the gradient of the
 * block's keys and values.
 * merge: o = (e^(l1-m) o1 + e^(l2-m) o2) / (e^(l1-m) + e^(l2-m)),
 * l = m + log(e^(l1-m) + e^(l2-m)), m = max(l1, l2) (in double). */
void ck_attention_blk_fwd_f32(const float *q, const float *k, const float *v, const int32_t *segq, const int32_t *segk,
                              const int32_t *idxq, const int32_t *idxk, float *out, float *lse, int64_t B, int64_t Sq,
                              int64_t Sk, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);
void ck_attention_blk_fwd_f64(const double *q, const double *k, const double *v, const int32_t *segq,
                              const int32_t *segk, const int32_t *idxq, const int32_t *idxk, double *out, double *lse,
                              int64_t B, int64_t Sq, int64_t Sk, int64_t nh, int64_t nkv, int64_t hd, double scale,
                              int causal, int64_t window, double softcap);
void ck_attention_blk_bwd_f32(const float *q, const float *k, const float *v, const int32_t *segq, const int32_t *segk,
                              const int32_t *idxq, const int32_t *idxk, const float *out, const float *lse,
                              const float *dout, float *dq, float *dk, float *dv, int64_t B, int64_t Sq, int64_t Sk,
                              int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);
void ck_attention_blk_bwd_f64(const double *q, const double *k, const double *v, const int32_t *segq,
                              const int32_t *segk, const int32_t *idxq, const int32_t *idxk, const double *out,
                              const double *lse, const double *dout, double *dq, double *dk, double *dv, int64_t B,
                              int64_t Sq, int64_t Sk, int64_t nh, int64_t nkv, int64_t hd, double scale, int causal, int64_t window, double softcap);
void ck_attn_merge_f32(const float *o1, const float *l1, const float *o2, const float *l2, float *o, float *l,
                       int64_t B, int64_t S, int64_t nh, int64_t hd);
void ck_attn_merge_f64(const double *o1, const double *l1, const double *o2, const double *l2, double *o, double *l,
                       int64_t B, int64_t S, int64_t nh, int64_t hd);

/* ---- SwiGLU ---------------------------------------------------------------
 * y[n] = silu(g) * u, silu(x) = x * sigmoid(x) = x / (1 + exp(-x)), silu
 * evaluated in double and rounded to REAL, then the product rounded.
 * bwd: dg = dy * u * sig * (1 + g (1 - sig)), du = dy * silu(g). */
void ck_swiglu_fwd_f32(const float *g, const float *u, float *y, int64_t n);
void ck_swiglu_fwd_f64(const double *g, const double *u, double *y, int64_t n);
void ck_swiglu_bwd_f32(const float *g, const float *u, const float *dy, float *dg, float *du, int64_t n);
void ck_swiglu_bwd_f64(const double *g, const double *u, const double *dy, double *dg, double *du, int64_t n);

/* ---- mixture of experts (transformers 5's Qwen3-MoE / Mixtral blocks) ----------
 * ck_moe_route: router logits[N,E] -> w[N,k], idx[N,k]: p = softmax(logits) (double, each rounded to REAL), the k
 * largest p in descending order, the lower expert first among equals (torch.topk's order among equal values is its
 * kernel's own: exact ties are rare in f32, a few percent of tokens with bf16 logits over 128 experts), a NaN first
 * (so a diverged run's loss is NaN, every slot an expert); with norm divided by their sum (norm_topk_prob; Mixtral
 * always). ck_moe_route_bwd: dlogits from dw through the normalisation, the selection and the softmax (double
 * inside).
 * ck_moe_ffn_fwd: y[N,H] = sum over t's slots j of w[t,j] * down_e(silu(g) * u), (g | u) = gu[t,j] = Wgu[e] x_t
 * (Wgu [E, 2I, H]: gate rows then up rows, Wd [E, H, I]; e = idx[t,j]); gu [N, k, 2I] is kept for the backward.
 * Tokens are grouped by expert (one GEMM each, ck_matmul) and the experts taken in ascending order, so each y_t is
 * summed in the order transformers' index_add_ loop adds. ck_moe_ffn_bwd: dx, dw [N,k], dWgu, dWd (overwritten)
 * from dy, recomputing each expert's output for dw. */
void ck_moe_route_f32(const float *logits, float *w, int32_t *idx, int64_t N, int64_t E, int64_t k, int norm);
void ck_moe_route_f64(const double *logits, double *w, int32_t *idx, int64_t N, int64_t E, int64_t k, int norm);
void ck_moe_route_bwd_f32(const float *logits, const int32_t *idx, const float *dw, float *dlogits, int64_t N, int64_t E,
                          int64_t k, int norm);
void ck_moe_route_bwd_f64(const double *logits, const int32_t *idx, const double *dw, double *dlogits, int64_t N,
                          int64_t E, int64_t k, int norm);
void ck_moe_ffn_fwd_f32(const float *x, const int32_t *idx, const float *w, const float *wgu, const float *wd, float *y,
                        float *gu, int64_t N, int64_t H, int64_t I, int64_t E, int64_t k);
void ck_moe_ffn_fwd_f64(const double *x, const int32_t *idx, const double *w, const double *wgu, const double *wd,
                        double *y, double *gu, int64_t N, int64_t H, int64_t I, int64_t E, int64_t k);
void ck_moe_ffn_bwd_f32(const float *x, const int32_t *idx, const float *w, const float *wgu, const float *wd,
                        const float *gu, const float *dy, float *dx, float *dw, float *dwgu, float *dwd, int64_t N,
                        int64_t H, int64_t I, int64_t E, int64_t k);
void ck_moe_ffn_bwd_f64(const double *x, const int32_t *idx, const double *w, const double *wgu, const double *wd,
                        const double *gu, const double *dy, double *dx, double *dw, double *dwgu, double *dwd, int64_t N,
                        int64_t H, int64_t I, int64_t E, int64_t k);

/* ---- gpt-oss's experts (transformers 5's GptOssExperts) -----------------------------
 * ck_moe_oss_fwd: as ck_moe_ffn_fwd with the weights as gpt-oss stores them and biases: gu = x Wgu[e] + bgu[e]
 * (Wgu [E, H, 2I], gate at even columns, up at odd), a_i = (u'_i + 1) g'_i sigmoid(alpha g'_i) with g' =
 * min(g, limit), u' = clamp(u, -limit, limit) (double inside, rounded once), o = a Wd[e] + bd[e] (Wd [E, I, H]),
 * y_t += w o. ck_moe_oss_bwd: dx, dw, dWgu, dbgu, dWd, dbd (overwritten); the clamps pass the gradient where the
 * value is inside them (bounds included), as torch.clamp's backward. */
void ck_moe_oss_fwd_f32(const float *x, const int32_t *idx, const float *w, const float *wgu, const float *bgu,
                        const float *wd, const float *bd, float *y, float *gu, int64_t N, int64_t H, int64_t I, int64_t E,
                        int64_t k, double alpha, double limit);
void ck_moe_oss_fwd_f64(const double *x, const int32_t *idx, const double *w, const double *wgu, const double *bgu,
                        const double *wd, const double *bd, double *y, double *gu, int64_t N, int64_t H, int64_t I,
                        int64_t E, int64_t k, double alpha, double limit);
void ck_moe_oss_bwd_f32(const float *x, const int32_t *idx, const float *w, const float *wgu, const float *bgu,
                        const float *wd, const float *bd, const float *gu, const float *dy, float *dx, float *dw,
                        float *dwgu, float *dbgu, float *dwd, float *dbd, int64_t N, int64_t H, int64_t I, int64_t E,
                        int64_t k, double alpha, double limit);
void ck_moe_oss_bwd_f64(const double *x, const int32_t *idx, const double *w, const double *wgu, const double *bgu,
                        const double *wd, const double *bd, const double *gu, const double *dy, double *dx, double *dw,
                        double *dwgu, double *dbgu, double *dwd, double *dbd, int64_t N, int64_t H, int64_t I,
                        int64_t E, int64_t k, double alpha, double limit);
/* the activation alone, on one slot's gu[2I] -> a[I] and its backward (da -> dgu[2I]) */
void ck_oss_act_f32(const float *gu, float *a, int64_t I, double alpha, double limit);
void ck_oss_act_f64(const double *gu, double *a, int64_t I, double alpha, double limit);
void ck_oss_act_bwd_f32(const float *gu, const float *da, float *dgu, int64_t I, double alpha, double limit);
void ck_oss_act_bwd_f64(const double *gu, const double *da, double *dgu, int64_t I, double alpha, double limit);

/* ---- the router's load-balancing loss (transformers' load_balancing_loss_func) ----------------
 * ck_moe_lb_stats: out[0, E) = sum_t mask_t * (slots of t on expert e), out[E, 2E) = sum_t mask_t * softmax(
 * logits_t)_e (double inside, each p rounded to REAL), out[2E] = sum_t mask_t. ck_moe_lb_stats_bwd: dlogits_t =
 * mask_t * p_t (g - p_t . g), g = dstats[E, 2E) (overwritten). ck_moe_lb_loss: E * sum_e (C_e/T) (P_e/T), 0 when
 * T = 0; ck_moe_lb_loss_bwd: dstats = dy * E * C_e / T^2 on [E, 2E), 0 elsewhere. */
void ck_moe_lb_stats_f32(const float *logits, const int32_t *idx, const float *mask, float *out, int64_t N, int64_t E,
                         int64_t k);
void ck_moe_lb_stats_f64(const double *logits, const int32_t *idx, const double *mask, double *out, int64_t N, int64_t E,
                         int64_t k);
void ck_moe_lb_stats_bwd_f32(const float *logits, const float *mask, const float *dstats, float *dlogits, int64_t N,
                             int64_t E);
void ck_moe_lb_stats_bwd_f64(const double *logits, const double *mask, const double *dstats, double *dlogits, int64_t N,
                             int64_t E);
double ck_moe_lb_loss(const double *stats, int64_t E);
void ck_moe_lb_loss_bwd(const double *stats, double dy, double *dstats, int64_t E);

/* ---- PEFT's ParamWrapper LoRA (a weight's own low-rank delta: MoE experts, routers) --------------
 * ck_lora_delta: out = w + scale * B_e A_e for each e < E (w, out [E, O, I]; a [E*r, I]: A_e its rows e*r..; b
 * [O, r*E]: B_e's column j is b's column j*E+e, PEFT's layout), sums over r in double. out may be w.
 * ck_lora_delta_bwd: da = scale B_e^T dw_e and db = scale dw_e A_e^T in that layout (overwritten; double sums). */
/* ck_lora_delta_t: the same for a weight stored [E, In, Out] (gpt-oss's experts; PEFT's ParamWrapper on a transposed
 * experts module): out_e = w_e + scale (B_e A_e)^T with a [E*r, In], b [Out, r*E]; ck_lora_delta_t_bwd its da, db. */
void ck_lora_delta_t_f32(const float *w, const float *a, const float *b, float *out, int64_t E, int64_t In, int64_t Out,
                         int64_t r, double scale);
void ck_lora_delta_t_f64(const double *w, const double *a, const double *b, double *out, int64_t E, int64_t In,
                         int64_t Out, int64_t r, double scale);
void ck_lora_delta_t_bwd_f32(const float *a, const float *b, const float *dw, float *da, float *db, int64_t E, int64_t In,
                             int64_t Out, int64_t r, double scale);
void ck_lora_delta_t_bwd_f64(const double *a, const double *b, const double *dw, double *da, double *db, int64_t E,
                             int64_t In, int64_t Out, int64_t r, double scale);
void ck_lora_delta_f32(const float *w, const float *a, const float *b, float *out, int64_t E, int64_t O, int64_t I,
                       int64_t r, double scale);
void ck_lora_delta_f64(const double *w, const double *a, const double *b, double *out, int64_t E, int64_t O, int64_t I,
                       int64_t r, double scale);
void ck_lora_delta_bwd_f32(const float *a, const float *b, const float *dw, float *da, float *db, int64_t E, int64_t O,
                           int64_t I, int64_t r, double scale);
void ck_lora_delta_bwd_f64(const double *a, const double *b, const double *dw, double *da, double *db, int64_t E,
                           int64_t O, int64_t I, int64_t r, double scale);

/* ---- GeGLU (Gemma's MLP: gelu_pytorch_tanh(gate) * up) ------------------------
 * fwd: s = 0.5 x (1 + tanh(k (x + c x^3))), k = sqrt(2/pi), c = 0.044715, in
 * double, rounded to REAL; y = s * u (as ck_swiglu_fwd). bwd, in double:
 * t = tanh(k (x + c x^3)), s' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2);
 * dg = dy u s', du = dy s. dg/du may alias the inputs. */
void ck_geglu_fwd_f32(const float *g, const float *u, float *y, int64_t n);
void ck_geglu_fwd_f64(const double *g, const double *u, double *y, int64_t n);
void ck_geglu_bwd_f32(const float *g, const float *u, const float *dy, float *dg, float *du, int64_t n);
void ck_geglu_bwd_f64(const double *g, const double *u, const double *dy, double *dg, double *du, int64_t n);

/* ---- embedding ------------------------------------------------------------
 * fwd: out[T,H] = table[ids[t], :]   (table[V,H]).
 * bwd: dtable[V,H] accumulate (+=) dy[t,:] into row ids[t], t ascending.
 * Both return -1, or the first t with ids[t] outside [0,V) (nothing written). */
int64_t ck_embedding_fwd_f32(const float *table, const int32_t *ids, float *out, int64_t T, int64_t V, int64_t H);
int64_t ck_embedding_fwd_f64(const double *table, const int32_t *ids, double *out, int64_t T, int64_t V, int64_t H);
int64_t ck_embedding_bwd_f32(const int32_t *ids, const float *dy, float *dtable, int64_t T, int64_t V, int64_t H);
int64_t ck_embedding_bwd_f64(const int32_t *ids, const double *dy, double *dtable, int64_t T, int64_t V, int64_t H);

/* ---- cross entropy --------------------------------------------------------
 * logits[T,V], targets[T]. A row with targets[t] == ignore_index is ignored;
 * any other target outside [0,V) is an error (return its t, nothing written).
 * fwd: *loss_sum = sum over kept rows of (logsumexp(row) - row[target])
 *      (double, rows in order), *count = number of kept rows. The caller
 *      divides (HF: reduction="sum" / num_items, or mean).
 * bwd: dlogits[T,V] = scale * (softmax(row) - onehot(target)) for kept rows,
 *      0 for ignored rows. dlogits may alias logits (in place).
 * Row max, sum of exp in double; exp evaluated in REAL precision.
 * softcap > 0 (Gemma 2's final_logit_softcapping c): the rows are c tanh(row / c) first (in REAL, as transformers),
 * and dlogits is the gradient through it (times 1 - tanh^2). */
int64_t ck_cross_entropy_fwd_f32(const float *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double *loss_sum, int64_t *count);
int64_t ck_cross_entropy_fwd_f64(const double *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double *loss_sum, int64_t *count);
int64_t ck_cross_entropy_bwd_f32(const float *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double scale, float *dlogits);
int64_t ck_cross_entropy_bwd_f64(const double *logits, const int32_t *targets, int64_t T, int64_t V,
                                 int32_t ignore_index, double softcap, double scale, double *dlogits);
/* Number of rows whose target != ignore_index (for a mean's scale = 1/count
 * before running the fused kernel). */
int64_t ck_count_targets(const int32_t *targets, int64_t T, int32_t ignore_index);
/* Fused lm head + cross entropy (forward and backward in one pass), never
 * materialising [T,V]: hidden[T,H], W[V,H] (logits = hidden . W^T).
 * Rows are processed in chunks of chunk_rows (<= 0: automatic, ~8 MiB of
 * logits scratch): logits_c = hidden_c W^T; loss as cross_entropy_fwd;
 * dlogits_c = scale (softmax - onehot); dhidden_c = dlogits_c W (fully
 * written); dW += dlogits_c^T hidden_c (accumulate, chunks in order).
 * dhidden and dW may both be NULL (loss only, e.g. eval). Same error rule as
 * cross_entropy (checked before anything is computed or written).
 * bf16 != 0 rounds where the CUDA executor's bf16 path rounds: dlogits_c
 * (a GEMM operand), dhidden_c, and dW after each chunk's accumulation; the
 * logits themselves stay unrounded (f32 GEMM output). */
int64_t ck_linear_cross_entropy_f32(const float *hidden, const float *W, const int32_t *targets, int64_t T, int64_t H,
                                    int64_t V, int32_t ignore_index, double scale, int64_t chunk_rows, int bf16,
                                    double *loss_sum, int64_t *count, float *dhidden, float *dW);
int64_t ck_linear_cross_entropy_f64(const double *hidden, const double *W, const int32_t *targets, int64_t T,
                                    int64_t H, int64_t V, int32_t ignore_index, double scale, int64_t chunk_rows, int bf16,
                                    double *loss_sum, int64_t *count, double *dhidden, double *dW);
/* The same with a gradient scale per run of T/nscale consecutive tokens
 * (scales[nscale], nscale dividing T; token t's is scales[t / (T/nscale)])
 * and, when row_loss is not NULL, each run of T/nrows tokens' summed loss
 * in row_loss[nrows] (the IR's linear_cross_entropy {rows} with a f32[n]
 * dscale: per-sequence losses of a preference batch), and softcap as
 * cross_entropy's. */
int64_t ck_linear_cross_entropy_rows_f32(const float *hidden, const float *W, const int32_t *targets, int64_t T,
                                         int64_t H, int64_t V, int32_t ignore_index, const double *scales, int64_t nscale,
                                         int64_t chunk_rows, int bf16, double *row_loss, int64_t nrows, double softcap, double *loss_sum,
                                         int64_t *count, float *dhidden, float *dW);
int64_t ck_linear_cross_entropy_rows_f64(const double *hidden, const double *W, const int32_t *targets, int64_t T,
                                         int64_t H, int64_t V, int32_t ignore_index, const double *scales, int64_t nscale,
                                         int64_t chunk_rows, int bf16, double *row_loss, int64_t nrows, double softcap, double *loss_sum,
                                         int64_t *count, double *dhidden, double *dW);

/* ---- DPO (TRL's DPOTrainer losses, ir/dpo_loss.h) ----------------------------
 * s[2P], sref[2P]: each row's summed token loss (-log p of its completion),
 * the P chosen rows then the P rejected; counts[2P] their completion token
 * counts (NULL: 1, for losses that do not read them). loss[p] = sum_k
 * weights[k] loss_types[k](pair p) (axo_dpo_pair, in double, rounded once);
 * coef[p] = pscale[p] d loss / d s_c, coef[P+p] = pscale[p] d loss / d s_r; gamma is
 * simpo's margin. */
void ck_dpo_loss_f32(const float *s, const float *sref, const float *pscale, const float *counts, int64_t P,
                     const int *types, const double *weights, int nterms, double beta, double eps, double tau, double gamma,
                     float *loss, float *coef);
void ck_dpo_loss_f64(const double *s, const double *sref, const double *pscale, const double *counts, int64_t P,
                     const int *types, const double *weights, int nterms, double beta, double eps, double tau, double gamma,
                     double *loss, double *coef);

/* ---- AdamW (torch.optim.AdamW, single-tensor path, non-capturable) --------
 * p, m, v [n] updated in place; g [n] read only; step is the 1-based step
 * count after its increment. Python-side scalars are computed in double and
 * rounded to float where torch hands them to a float32 kernel; per element,
 * in torch's order (float32 in _f32):
 *   g  = g * (float)grad_scale                      (clip/unscale: grad.mul_)
 *   p  = p * (float)(1 - lr*wd)                     (param.mul_; exact no-op when wd == 0)
 *   m  = fma(w, g - m, m), w = (float)(1-beta1)     (exp_avg.lerp_(g, 1-beta1); torch's
 *                                                    AVX2 lerp is fmadd; weight >= .5: fma(w-1, g-m, g))
 *   v  = v * (float)beta2;  v = fma((float)(1-beta2) * g, g, v)     (mul_, addcmul_: AVX2 fmadd)
 *   bc1 = 1 - beta1^step, bc2 = 1 - beta2^step, step_size = lr / bc1 (double)
 *   denom = sqrt(v) / (float)(bc2 ** 0.5) + (float)eps  (sqrt, div, add_)
 *   p  = p + ((float)(-step_size) * m) / denom       (addcdiv_)
 * Checked against torch 2.x AdamW(foreach=False, fused=False) on an AVX2
 * host: m and v bit-exact (torch's vectorised lerp_/addcmul_ use fmadd
 * there); p bit-exact except ~0.5% of elements 1 ulp off, because torch's
 * float sqrt on that build was not always correctly rounded and ours is.
 * _f64: the same in double. */
void ck_adamw_step_f32(float *p, const float *g, float *m, float *v, int64_t n, double lr, double beta1, double beta2,
                       double eps, double weight_decay, int64_t step, double grad_scale);
void ck_adamw_step_f64(double *p, const double *g, double *m, double *v, int64_t n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, int64_t step, double grad_scale);
/* Pure-bf16 AdamW (`bfloat16: true`): p, m, v hold bf16 values (as f32);
 * the f32 step above, then p, m and v stochastically rounded to bf16
 * (ir/quant.h axo_bf16_sr with axo_rng_u32(step, 3 salt + 0/1/2, first + i):
 * first = the block's offset in the whole tensor). */
void ck_adamw_step_sr_bf16(float *p, const float *g, float *m, float *v, int64_t n, double lr, double beta1,
                           double beta2, double eps, double weight_decay, int64_t step, double grad_scale,
                           uint32_t salt, int64_t first);
/* 8-bit AdamW (ir/quant.h, adamw8): rows x K elements, m and v as u8 codes
 * (held in floats, as the CPU executor holds every tensor) with one f32
 * maximum per block in am, av ([rows, ceil(K / AXO_Q8_BLOCK)]: a row's
 * blocks of AXO_Q8_BLOCK, the last one shorter when the block size does not
 * divide K). Per block:
 * decode m, v (code value * maximum), the f32 step of ck_adamw_step_f32,
 * the new maxima (max |m|, max v), encode. bf16_sr: p holds bf16 values and
 * is stochastically rounded as ck_adamw_step_sr_bf16 rounds p. */
void ck_adamw8_step(float *p, const float *g, float *qm, float *qv, float *am, float *av, int64_t rows, int64_t K, double lr,
                    double beta1, double beta2, double eps, double weight_decay, int64_t step, double grad_scale,
                    int bf16_sr, uint32_t salt, int64_t first);
/* x -> bf16 (as f32) stochastically, n elements, bits axo_rng_u32(seed, salt, first + i). */
void ck_round_bf16_sr_f32(float *x, int64_t n, uint32_t seed, uint32_t salt, int64_t first);

/* ---- reductions and elementwise helpers ------------------------------------ */
/* sum of x^2 in double (8 interleaved partial sums, fixed order). */
double ck_sumsq_f32(const float *x, int64_t n);
double ck_sumsq_f64(const double *x, int64_t n);
/* y = a + b; y = a * b; y = alpha * x ((REAL)alpha); y += x. Any of y, a, b,
 * x may alias each other (pure elementwise). */
void ck_add_f32(const float *a, const float *b, float *y, int64_t n);
void ck_add_f64(const double *a, const double *b, double *y, int64_t n);
void ck_mul_f32(const float *a, const float *b, float *y, int64_t n);
void ck_mul_f64(const double *a, const double *b, double *y, int64_t n);
void ck_scale_f32(const float *x, double alpha, float *y, int64_t n);
void ck_scale_f64(const double *x, double alpha, double *y, int64_t n);
void ck_acc_f32(float *y, const float *x, int64_t n);
void ck_acc_f64(double *y, const double *x, int64_t n);
/* x = bf16-rounded x (round to nearest even, NaN kept; ax_round_bf16). The
 * f64 version rounds through float. */
void ck_round_bf16_inplace_f32(float *x, int64_t n);
void ck_round_bf16_inplace_f64(double *x, int64_t n);

/* ---- bias ------------------------------------------------------------------
 * fwd: y[R,N] = x[R,N] + b[N] (in place safe).
 * bwd: db[N] accumulate (+=) the column sums of dy[R,N] (double, rows in order). */
void ck_bias_add_fwd_f32(const float *x, const float *b, float *y, int64_t R, int64_t N);
void ck_bias_add_fwd_f64(const double *x, const double *b, double *y, int64_t R, int64_t N);
void ck_bias_add_bwd_f32(const float *dy, float *db, int64_t R, int64_t N);
void ck_bias_add_bwd_f64(const double *dy, double *db, int64_t R, int64_t N);

/* ---- LoRA dropout, NEFTune and QLoRA weights (arithmetic in ir/quant.h) --
 * ck_dropout_f32: y[i] = keep(seed, salt, i) ? x[i] * 1/(1-p) : 0 (x may be y).
 * NF4 storage on the CPU executor: one float per code (0..15) and per
 * absmax step (0..255), so buffers and collectives stay float arrays; the
 * CUDA executor packs them (2 codes per byte, 1 step per byte).
 * ck_nf4_quantize: rows w[N,K] -> q[N,K], steps[N,ceil(K/64)],
 * rowmax[N], with each block scale rounded up (|w| <= scale) and each
 * weight to the nearest code of w / scale (ties to the lower code).
 * ck_dequant_nf4_f32: the inverse, w = code[q] * scale in f32 (the caller
 * rounds to the compute dtype). */
void ck_dropout_f32(const float *x, float *y, int64_t n, uint32_t seed, uint32_t salt, double p);
/* ck_neftune_f32: NEFTune's noise (ir/quant.h) on rows x H values, one key
 * per row: y[r, h] = x[r, h] + mag * axo_neftune_unit(keys[r], salt, h), the
 * product and the sum each one f32 rounding (x may be y; the caller rounds
 * to the storage dtype). */
void ck_neftune_f32(const float *x, float *y, const int32_t *keys, int64_t rows, int64_t H, uint32_t salt, float mag);
/* ---- DoRA (PEFT's use_dora; the CUDA side is codegen/kernels/dora.cuh) ---
 * ck_dora_norm_f32: norm[i] = ||w[i,:] + s * (b a)[i,:]||, b [N,r], a [r,K]:
 *   each element in f32 (b a summed over j in order, each product and sum
 *   rounded once), the squares summed in double.
 * ck_dora_scale_f32: g = m[c] / norm[c] (f32), y = (g - 1) * base + (g * s) *
 *   lora, each product and the sum rounded once (the caller rounds to the
 *   storage dtype).
 * ck_dora_scale_bwd_f32: dbase = (g - 1) * dy, dlora = (g * s) * dy, dm[c] =
 *   sum over rows of dy * (base + s * lora) in double, divided by norm[c]. */
void ck_dora_norm_f32(const float *w, const float *b, const float *a, float *norm, int64_t N, int64_t K, int64_t r,
                      float s);
void ck_dora_scale_f32(const float *base, const float *lora, const float *m, const float *norm, float *y, int64_t R,
                       int64_t N, float s);
void ck_dora_scale_bwd_f32(const float *base, const float *lora, const float *m, const float *norm, const float *dy,
                           float *dbase, float *dlora, float *dm, int64_t R, int64_t N, float s);
void ck_nf4_quantize(const float *w, int64_t N, int64_t K, float *q, float *steps, float *rowmax);
void ck_dequant_nf4_f32(const float *q, const float *steps, const float *rowmax, float *w, int64_t N, int64_t K);

#endif
