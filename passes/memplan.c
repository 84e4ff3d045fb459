/* memplan.c — liveness-based buffer assignment and the per-rank memory and
 * communication figures that `axoc compile` prints before anything runs.
 *
 * Persistent state: every global, at its per-rank size (its block when
 * split over a mesh axis), counted on the device unless place="host".
 * Transient: each program's values get offsets in one arena by first fit
 * in definition order; a value's space is released after its last use, so
 * the arena's high-water mark is the program's activation peak.
 * Communication, per rank per optimizer step, in the ZeRO paper's units:
 * all_reduce moves 2x the tensor, all_gather and reduce_scatter 1x the
 * whole (gathered) tensor; micro_step's collectives count grad_accum times.
 */
#include "passes/passes.h"

#include "ir/liveness.h"

#include <stdlib.h>
#include <string.h>

/* The arena assignment itself lives in ir/liveness.c, shared with the CUDA
 * executor so that the figures reported here are the offsets it uses. */
int64_t pass_local_bytes(const ir_module *m, const ir_type *t) { return ir_local_bytes(m, t); }

static int64_t plan_program(const ir_module *m, const ir_program *p, int64_t *offsets, int64_t *role_peak) {
    return ir_arena_plan(m, p, NULL, NULL, offsets, role_peak);
}

static int64_t comm_bytes(const ir_module *m, const ir_program *p) {
    int64_t b = 0;
    for (int i = 0; p && i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (!(ir_ops[n->op].flags & IR_F_COLLECTIVE)) continue;
        int ax = ir_mesh_find(m, ir_attr_str(n->attrs, n->nattrs, "axis", ""));
        if (ax < 0 || m->mesh_sizes[ax] == 1) continue; /* nothing crosses ranks */
        const ir_type *t = ir_ref_type(m, p, n->in[0]);
        int64_t full = ir_type_bytes(t);
        b += n->op == IR_OP_all_reduce ? 2 * full : full;
    }
    return b;
}

int pass_memplan(ir_module *m, pass_mem_stats *st) {
    memset(st, 0, sizeof *st);
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        int64_t b = pass_local_bytes(m, &G->type);
        if (!strcmp(ir_attr_str(G->attrs, G->nattrs, "place", "device"), "host"))
            st->host_bytes += b;
        else
            st->state_bytes[G->role] += b;
        if (G->role == IR_ROLE_PARAM) {
            st->params += ir_type_numel(&G->type);
            if (G->type.shard.axis >= 0) {
                int64_t n = m->mesh_sizes[G->type.shard.axis], d0 = G->type.dims[0];
                st->padding_elems += ((d0 + n - 1) / n * n - d0) * (ir_type_numel(&G->type) / d0);
            }
        }
    }
    int64_t ga = ir_attr_int(m->attrs, m->nattrs, "train.grad_accum", 1);
    for (int i = 0; i < m->nprograms; i++) {
        ir_program *p = m->programs[i];
        int64_t *off = malloc(sizeof(int64_t) * ((size_t)p->nvalues + 1));
        int64_t role_peak[IR_NROLE] = {0};
        int64_t peak = plan_program(m, p, off, role_peak);
        free(off);
        char key[128];
        snprintf(key, sizeof key, "memplan.%s.peak_bytes", p->name);
        ir_module_set_attr(m, ir_ai(key, peak));
        if (!strcmp(p->name, "micro_step")) {
            st->micro_peak = peak;
            st->comm_micro = comm_bytes(m, p);
        } else if (!strcmp(p->name, "opt_step")) {
            st->opt_peak = peak;
            st->comm_opt = comm_bytes(m, p);
        }
    }
    st->comm_step = st->comm_micro * ga + st->comm_opt;
    ir_module_set_attr(m, ir_ai("memplan.comm_bytes_per_step", st->comm_step));
    ir_module_set_attr(m, ir_ai("memplan.state_bytes", st->state_bytes[IR_ROLE_PARAM] + st->state_bytes[IR_ROLE_GRAD] +
                                                           st->state_bytes[IR_ROLE_OPT] + st->state_bytes[IR_ROLE_TEMP]));
    ir_module_set_attr(m, ir_ai("memplan.host_bytes", st->host_bytes));
    return 0;
}
