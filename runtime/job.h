/* job.h — one rank of a job of several processes: a process started by
 * torchrun, srun, mpirun or axorun's own spawner (runtime/spawn.h), which
 * trains its rank of the plan over a world communicator of another
 * process-spanning backend (NCCL, runtime/comm_nccl.h). The local backend's
 * counterpart, all ranks as threads of one process, is rt_train_local
 * (runtime/launch.h).
 */
#ifndef RT_JOB_H
#define RT_JOB_H

#include "runtime/launch.h"
#include "runtime/rendezvous.h"

/* Called once the rank's per-mesh-axis communicators exist, before the
 * weights are initialised and the device backend attached (axorun builds
 * the executor's device collectives over them here). */
typedef int (*rt_comm_ready_fn)(rt_rank_coll *rc, void *ctx, ax_diag *d);

/* Trains plan_path as rank rt_comm_rank(world) of a job whose world
 * communicator is `world`: as one rank of rt_train_local (open the plan,
 * attach the per-axis communicators, named "axis dp" etc. in errors,
 * initialise the weights, o->attach, train). On failure the rank aborts
 * the world, and the communicators' own messages (a timeout, NCCL's error)
 * are added to d after the failing step's. */
int rt_train_rank(const char *plan_path, rt_comm *world, const rt_train_opts *o, rt_comm_ready_fn ready,
                  void *ready_ctx, ax_diag *d);

/* For tests of the launcher on machines without a GPU (axorun with
 * AXO_TEST_FAKE_RANKS=1): does what a rank does before it touches CUDA —
 * the launch environment e, and the exchange of a unique-id-sized blob
 * over the rendezvous (rank 0 makes one up) — then writes "fake rank R of
 * N (LAUNCHER, local rank L): id HEX" (the first 8 bytes) into out. */
int rt_fake_rank(const rt_launch_env *e, double timeout_s, char *out, size_t cap, ax_diag *d);

#endif
