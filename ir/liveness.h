/* liveness.h — value lifetimes and the first-fit arena assignment of one
 * program, shared by the memplan pass (passes/memplan.c: the per-rank
 * figures axoc prints and stores in the plan) and the CUDA executor
 * (runtime/cuda_exec.c: the offsets it really uses), so that what a plan
 * reports is what an executor allocates.
 *
 * Promises:
 *  - A value lives from its producing node to its last use (the node of its
 *    last operand use; a value nobody reads dies where it is born).
 *  - Arena assignment is first fit in definition order: a node's results are
 *    placed while the node's operands are still live (a kernel reads its
 *    inputs while it writes its outputs), then every value whose last use is
 *    that node is released. Offsets are multiples of IR_ARENA_ALIGN and each
 *    value's slot is its local bytes rounded up to IR_ARENA_ALIGN.
 *  - Streams (node attrs stream/wait, from the schedule pass): a released
 *    slot is reused by a node only if every access of its previous value
 *    (producer and readers, on any stream) happens before that node through
 *    stream order and waits, so an executor running the streams
 *    concurrently never overwrites memory still being read or written. A
 *    program on one stream plans exactly as program order alone.
 *  - Deterministic: the result depends only on the program and the mesh.
 */
#ifndef IR_LIVENESS_H
#define IR_LIVENESS_H

#include "ir/ir.h"

#define IR_ARENA_ALIGN 256
#define IR_NSTREAMS 4 /* compute, communication, copies, host (passes/schedule.c) */

/* Bytes of this rank's block of t (a split dim rounded up to ceil(d/N)). */
int64_t ir_local_bytes(const ir_module *m, const ir_type *t);

/* last[v] (p->nvalues entries) = index of the node of v's last use. */
void ir_last_uses(const ir_program *p, int32_t *last);

/* Vector clocks of p's nodes over IR_NSTREAMS streams (hb: nnodes *
 * IR_NSTREAMS entries): hb[i*IR_NSTREAMS + s] is the latest node of stream
 * s that happens before node i (or i itself), -1 if none. */
void ir_happens_before(const ir_program *p, int32_t *hb);

/* Which values an arena holds: keep(p, v, ctx) != 0 (keep NULL: every
 * value). E.g. one arena per memory when some values live on the host. */
typedef int (*ir_arena_keep_fn)(const ir_program *p, int32_t v, void *ctx);

/* Assigns every kept value of p an arena offset (offsets[v], bytes; others
 * untouched). role_peak (IR_NROLE entries, may be NULL) receives the peak
 * live bytes per role. Returns the arena's size (its high-water mark). */
int64_t ir_arena_plan(const ir_module *m, const ir_program *p, ir_arena_keep_fn keep, void *ctx, int64_t *offsets,
                      int64_t *role_peak);

#endif
