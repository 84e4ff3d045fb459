/* nvrtc.h — CUDA C++ -> CUBIN through NVRTC, and the on-disk kernel cache.
 *
 * Promises:
 *  - cg_nvrtc_compile compiles one program for one real architecture
 *    ("sm_80", "sm_90", "sm_90a", ...) with, in this order:
 *      -std=c++17 --gpu-architecture=<arch> -default-device -lineinfo
 *      -I<CUDA include dir> <extra_opts...>
 *    and no --use_fast_math (exact expf/div/sqrt; kernels must match the CPU
 *    reference). The include dir is where cuda_bf16.h lives: NVRTC in CUDA 13
 *    has no built-in path for it. It is $AXO_CUDA_INCLUDE, else the toolkit
 *    found at build time (AXO_CUDA_INCLUDE_DIR), else $CUDA_HOME/include,
 *    $CUDA_PATH/include, /usr/local/cuda/include — the first that has
 *    cuda_bf16.h.
 *  - On success: 0, the CUBIN replaces *cubin_out's contents, and the NVRTC
 *    log (warnings; often empty) replaces *log_out's (log_out may be NULL).
 *  - On failure: -1 and an error in d whose `where` is "<name>.cu" and whose
 *    message names the kernel, the arch, and carries the whole NVRTC log;
 *    the log is also in *log_out. Nothing is printed.
 *  - Without AXO_HAVE_NVRTC (built with no CUDA toolkit) every compile fails
 *    with "NVRTC is not available" and cg_nvrtc_available() is 0.
 *
 * Kernel cache (cg_nvrtc_compile_cached):
 *  - Key: XXH3-128 over length-prefixed fields: a domain string and the
 *    entry format version, the program name, the source, every option in
 *    order (so the arch and include dir too), and the NVRTC version — exactly
 *    what determines the CUBIN, never time or mtime.
 *  - Dir: cache_dir if given, else $AXO_CACHE_DIR/kernels, else
 *    $XDG_CACHE_HOME/axo/kernels, else $HOME/.cache/axo/kernels.
 *    Entries are <dir>/<32 hex>.cubin, written atomically (temp + fsync +
 *    rename), each a 32-byte header (magic "AXOCUBIN", u32 format version,
 *    u32 header size, u64 payload length, u64 XXH64 of the payload; little
 *    endian) and the CUBIN.
 *  - An entry that fails any header check is deleted, a warning is added,
 *    and the kernel is recompiled and stored again (status CG_KCACHE_REBUILT).
 *    Cache I/O trouble is a warning, never an error: the compile goes on.
 */
#ifndef CG_NVRTC_H
#define CG_NVRTC_H

#include "ir/base.h"

#include <stddef.h>
#include <stdint.h>

/* 1 if axo was built with NVRTC. */
int cg_nvrtc_available(void);
/* NVRTC's version; 0, or -1 (and 0.0) without NVRTC. */
int cg_nvrtc_version(int *major, int *minor);

int cg_nvrtc_compile(const char *name, const char *source, const char *arch, const char *const *extra_opts,
                     int nextra, ax_buf *cubin_out, ax_buf *log_out, ax_diag *d);

/* PTX of one program for a virtual architecture ("compute_90a"), with the
 * options above (tests read the kernels' parameter lists from it). 0, or -1
 * with an error in d. */
int cg_nvrtc_ptx(const char *name, const char *source, const char *arch, ax_buf *ptx_out, ax_diag *d);

typedef enum {
    CG_KCACHE_MISS = 0,    /* compiled and stored */
    CG_KCACHE_HIT = 1,     /* served from the cache, no compile */
    CG_KCACHE_REBUILT = 2, /* a corrupt entry was deleted, compiled, stored */
    CG_KCACHE_OFF = 3      /* no usable cache dir: compiled only */
} cg_kcache_status;

/* As cg_nvrtc_compile, through the cache. On a hit *log_out is emptied.
 * status may be NULL. */
int cg_nvrtc_compile_cached(const char *cache_dir, const char *name, const char *source, const char *arch,
                            const char *const *extra_opts, int nextra, ax_buf *cubin_out, ax_buf *log_out,
                            cg_kcache_status *status, ax_diag *d);

/* The default kernel cache dir into buf (see above); NULL if no variable is
 * set or it does not fit. Not created here. */
const char *cg_kernel_cache_dir(char *buf, size_t cap);
/* The entry path "<dir>/<hex>.cubin" the cached compile would use; NULL
 * (and an error in d) without NVRTC or if it does not fit. */
const char *cg_kernel_cache_path(const char *dir, const char *name, const char *source, const char *arch,
                                 const char *const *extra_opts, int nextra, char *buf, size_t cap, ax_diag *d);

/* 1 if the CUBIN's ELF symbol table defines a global function `sym`, 0 if
 * not, -1 if cubin is not a well-formed 64-bit ELF. */
int cg_cubin_has_function(const void *cubin, size_t len, const char *sym);
/* Calls fn for every global function symbol of the CUBIN (the kernels), in
 * symbol-table order. Returns the count, or -1 for a malformed ELF. */
int cg_cubin_functions(const void *cubin, size_t len, void (*fn)(const char *sym, void *ctx), void *ctx);

#endif
