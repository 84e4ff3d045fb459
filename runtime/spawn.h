/* spawn.h — starting the ranks of a one-node job as processes (what
 * `axorun plan.bin` does on a machine with a GPU per rank), the way torchrun
 * starts them: each rank is a copy of a program with RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, so it
 * joins the job exactly as under torchrun (runtime/rendezvous.h).
 *
 * Promises:
 *  - The parent waits for every rank. A rank that exits with a nonzero
 *    status or is killed by a signal fails the job at once: the others get
 *    SIGTERM, then SIGKILL after a grace period, so none is left waiting
 *    for a peer that is gone; the error names the rank, its pid and how it
 *    ended ("rank 1 (pid 4242) exited with status 3"). Ranks stopped that
 *    way are not reported as failures of their own.
 *  - The children die with the parent (PR_SET_PDEATHSIG), so a killed
 *    launcher leaves no orphan holding a GPU.
 *  - Only async-signal-safe calls happen between fork and exec (the
 *    environment is built before forking): the parent may have threads
 *    (the CUDA driver's).
 *  - Library code: nothing is printed; errors go into an ax_diag.
 */
#ifndef RT_SPAWN_H
#define RT_SPAWN_H

#include "ir/base.h"

typedef struct rt_spawn_opts {
    int nranks;
    const char *exe;          /* program to run; NULL: this program (/proc/self/exe) */
    char *const *argv;        /* its argv, argv[0] included, NULL-terminated */
    const char *master_addr;  /* NULL: 127.0.0.1 */
    int master_port;          /* 0: a free port on master_addr */
    double grace_s;           /* SIGTERM -> SIGKILL delay after a failure; <= 0: 5 s */
    const char *const *extra_env; /* "NAME=value" for every rank, NULL-terminated; may be NULL */
} rt_spawn_opts;

/* Runs o->nranks ranks and waits for them. 0 if every rank exited with
 * status 0; else -1 with the first failure in d. */
int rt_spawn_ranks(const rt_spawn_opts *o, ax_diag *d);

/* A TCP port on addr (NULL: 127.0.0.1) that was free a moment ago; -1 on
 * error. */
int rt_free_port(const char *addr);

#endif
