/* kbin.h — the KBIN plan section: CUBINs compiled by axoc for the plan's
 * target architectures, so that axorun loads kernels instead of compiling
 * them (and a plan moved to a machine without NVRTC still runs).
 *
 * Contents: for each architecture asked for ("sm_80", "sm_90a", ...), in
 * the order given: every hand-written kernel source of the registry
 * (codegen/cuda_kernels.h, registry order; kind "module", name = the file
 * stem), then every distinct fused kernel of the plan's programs (kind
 * "fused", name = its entry point, codegen/fusegen.h; in order of first
 * appearance). Each compiled by NVRTC through the on-disk kernel cache, so
 * the bytes are those axorun would compile itself.
 *
 * Layout (ax_wr_* framing, little endian): u32 format version (1), u32
 * entry count, then per entry: str arch, str kind, str name, blob CUBIN.
 * Same plan + same archs + same NVRTC -> same bytes.
 */
#ifndef CG_KBIN_H
#define CG_KBIN_H

#include "ir/ir.h"

#include <stdint.h>

/* 2: the kernels' argument lists changed (the attention kernels' causal int carries a sliding window, rmsnorm's
 * offset, axo_dpo_loss for axo_dpo_sigmoid): an older plan's CUBINs would be launched with the wrong arguments */
#define CG_KBIN_VERSION 2

typedef struct cg_kbin_entry {
    const char *arch, *kind, *name; /* point into the section bytes (not NUL-terminated there: copied) */
    const uint8_t *cubin;
    uint64_t size;
} cg_kbin_entry;

typedef struct cg_kbin {
    cg_kbin_entry *e;
    int n;
    ax_arena *strs; /* the entries' strings */
} cg_kbin;

/* Compiles the KBIN section of module m for archs into out (replacing its
 * contents); *bytes_cubin = the CUBINs' total size. 0, or -1 with an error
 * in d (NVRTC missing, a compile error). */
int cg_kbin_build(const ir_module *m, const char *const *archs, int narch, ax_buf *out, int *nentries,
                  uint64_t *bytes_cubin, ax_diag *d);

/* Parses a KBIN payload (entries point into data, which must outlive k).
 * 0, or -1 with an error naming the offset in d (where = what). */
int cg_kbin_parse(const void *data, size_t len, const char *what, cg_kbin *k, ax_diag *d);
void cg_kbin_free(cg_kbin *k);

/* The entry for (arch, name), or NULL. */
const cg_kbin_entry *cg_kbin_find(const cg_kbin *k, const char *arch, const char *name);

#endif
