/* emu_device.h — the host SIMT emulator (cuda_bf16.h) as the CUDA
 * executor's emulated device (rt_cuda_opts.emu, runtime/cuda_exec.h).
 *
 * Promises:
 *  - Every entry point of codegen/kernels/ is compiled into this library as
 *    host C++ from the very sources NVRTC compiles; a launch runs it on the
 *    emulator, one CTA after another, with the grid, block and dynamic
 *    shared memory the executor asked for (shared memory starts as NaN
 *    bytes each CTA).
 *  - A fused kernel (expr != NULL) is written by codegen/fusegen.c, as for
 *    NVRTC, compiled on first use by the host C++ compiler the project was
 *    built with into a shared object under AXO_EMU_CACHE (default
 *    <build dir>/emu-kernels), keyed by the XXH3 of its source and the
 *    compiler command, and loaded with dlopen. Safe from several threads.
 *  - GEMMs: fp32 accumulation in K order, C rounded once to its dtype.
 *  - Errors (an unknown entry, shared memory over the limit, a fused kernel
 *    that does not compile: the compiler's messages) are values.
 */
#ifndef AXO_EMU_DEVICE_H
#define AXO_EMU_DEVICE_H

#include "runtime/cuda_exec.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

const rt_cuda_emu *axo_emu_device(void);
/* Entry points of the kernel registry (codegen/cuda_kernels.h) this
 * library does not have, and ones it has that the registry does not:
 * each named on f; the count. */
int axo_emu_registry_mismatches(FILE *f);
/* Registered entry points never launched in this process, listed on f
 * (comma-separated, one line); the count. *fused (if non-NULL): launches of
 * fused kernels. For coverage reports. */
int axo_emu_unlaunched(FILE *f, long *fused);
int axo_emu_entry_count(void);
/* 1 if the emulator has kernel entry point `entry`. */
int axo_emu_has_kernel(const char *entry);

#ifdef __cplusplus
}
#endif
#endif
