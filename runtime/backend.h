/* backend.h — a device executor that runs a training session's programs in
 * place of the CPU reference executor (the CUDA executor, runtime/cuda_exec.h).
 *
 * The session keeps its host globals (rt_state) as the home of weights for
 * initialisation, logging and saving; a backend holds its own copy of every
 * global on its device and runs micro_step and opt_step there. The training
 * loop (runtime/train.c) moves globals across only where the host needs
 * them: all of them once when the backend is attached, the loss and
 * gradient-norm statistics every step, the parameters before a save.
 * A session without a backend (s->backend == NULL) runs on the CPU exactly
 * as before.
 */
#ifndef RT_BACKEND_H
#define RT_BACKEND_H

#include "runtime/exec.h"

typedef struct rt_backend {
    const char *name; /* "cuda": printed in the training banner */
    void *ctx;
    /* Runs program p (one of the module's) with runtime inputs, as rt_prog_run. */
    int (*run)(struct rt_backend *b, const ir_program *p, rt_input_fn inputs, void *ictx, ax_diag *d);
    /* Host global g of st -> device (g < 0: every global). */
    int (*upload)(struct rt_backend *b, const rt_state *st, int g, ax_diag *d);
    /* Device global g -> host global g of st (g < 0: every global). */
    int (*download)(struct rt_backend *b, rt_state *st, int g, ax_diag *d);
    /* Frees the device state and the struct itself. */
    void (*destroy)(struct rt_backend *b);
} rt_backend;

#endif
