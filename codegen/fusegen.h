/* fusegen.h — CUDA C for `fused` nodes (passes/fuse.c, docs/ir.md).
 *
 * Promises:
 *  - cg_fused_source writes one self-contained NVRTC program (common.cuh,
 *    then one kernel) for a fused expr over operands of the given dtypes.
 *    Its entry point is ir_fexpr_entry(expr, in, nin): the name depends only
 *    on what the source depends on, so equal chains share one kernel (and
 *    one kernel-cache entry).
 *  - Kernel: extern "C" axo_fused_<hash>(const T0 *x0, ..., Tr *y, i64 n,
 *    i64 nb): y[i] for i < n, operand k read at i, or at column i % nb when
 *    it is a bias_add's bias; block 256, any grid (grid-stride). With at
 *    most 8 operands, all pointers 16-byte aligned and nb % 8 == 0, each
 *    thread moves 8 elements per step as 16-byte vectors. Math as the CPU
 *    executor's interpreter (runtime/cpu_exec.c): f32 per element, the
 *    unfused kernels' operations (__fadd_rn, __fmul_rn, SiLU in double),
 *    each instruction's value rounded to its dtype (bf16: nearest even).
 *  - The signature string (cuda_exec.c's kinds) is "p" x (nin + 1) + "ll".
 *  - Errors (a bad expr) are values in d; nothing is printed.
 */
#ifndef CG_FUSEGEN_H
#define CG_FUSEGEN_H

#include "ir/ir.h"

/* 0, the source replacing *src and the entry name in entry (cap >= 27); or
 * -1 with an error in d. */
int cg_fused_source(const char *expr, const ir_dtype *in, int nin, ax_buf *src, char *entry, size_t cap, ax_diag *d);

/* cg_fused_source, then NVRTC for arch through the on-disk kernel cache
 * (cg_nvrtc_compile_cached). The shape of rt_kernel_provider.compile_fused. */
int cg_fused_compile(void *ctx, const char *entry, const char *expr, const ir_dtype *in, int nin, const char *arch,
                     ax_buf *cubin, ax_diag *d);

#endif
