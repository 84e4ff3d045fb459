/* cuda_kernels.h — the registry of hand-written CUDA kernel sources.
 *
 * Promises:
 *  - Every codegen/kernels/<name>.cuh except common.cuh is one entry, in
 *    name order, its text embedded at build time (codegen/embed_kernels.cmake)
 *    with common.cuh prepended, so `source` is a complete NVRTC program.
 *    A .cuh without a table entry here, or an entry without a file, is a
 *    build error.
 *  - `entries` lists every extern "C" __global__ function the source
 *    defines (exact symbol names, axo_<kernel>_<dtype>), no more and no less;
 *    tests/unit/test_nvrtc.c checks that against the compiled CUBIN's symbol
 *    table for sm_80 and sm_90a.
 *  - Launch geometry, shared memory and argument order of each entry are
 *    documented at the top of its .cuh; the math is that of the matching
 *    runtime/cpu_kernels.h reference.
 *  - Static data: nothing to free, safe from any thread.
 */
#ifndef CG_CUDA_KERNELS_H
#define CG_CUDA_KERNELS_H

#include "ir/base.h"

typedef struct cg_cuda_kernel {
    const char *name;          /* file stem: "rmsnorm", "attention_fwd", ... */
    const char *source;        /* NUL-terminated CUDA C++ (common.cuh + the file) */
    const char *const *entries; /* entry-point names, NULL-terminated */
    int nentries;
} cg_cuda_kernel;

int cg_cuda_kernel_count(void);
/* NULL when i is out of range. */
const cg_cuda_kernel *cg_cuda_kernel_get(int i);
/* By file stem; NULL if unknown. */
const cg_cuda_kernel *cg_cuda_kernel_find(const char *name);
/* The kernel source that defines entry point `entry`; NULL if none. */
const cg_cuda_kernel *cg_cuda_kernel_for_entry(const char *entry);
/* common.cuh alone (NUL-terminated), which generated sources start with. */
const char *cg_cuda_common_source(void);

/* The registry as the CUDA executor's kernel provider (the shape of
 * rt_kernel_provider.module_of / .compile; ctx unused): the source that
 * defines an entry, and that source compiled by NVRTC for arch through the
 * on-disk kernel cache. */
const char *cg_cuda_kernel_module_of(void *ctx, const char *entry);
int cg_cuda_kernel_compile(void *ctx, const char *module, const char *arch, ax_buf *cubin, ax_diag *d);

#endif
