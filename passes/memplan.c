/* memplan.c — liveness-based buffer assignment and the per-rank memory and
 * communication figures that `axoc compile` prints before anything runs.
 *
 * Persistent state: every global, at its per-rank size (its block when
 * split over a mesh axis), counted on the device unless place="host", by
 * role in either memory.
 * Transient: each program's values get offsets in one arena per memory
 * (device; host for values made on the host and to_host copies) by first
 * fit in definition order; a value's space is released after its last use,
 * so an arena's high-water mark is the program's peak in that memory.
 * Host<->device (PCIe) traffic: the bytes of each to_host / to_device, per
 * rank (the rank's block), per step like the collectives.
 * Communication, per rank per optimizer step, in the ZeRO paper's units:
 * all_reduce moves 2x the tensor, all_gather and reduce_scatter 1x the
 * whole (gathered) tensor, ring_shift 1x the block it sends; micro_step's
 * collectives count grad_accum times.
 * Calls: communicator calls per rank, a bucket of gradient reductions
 * (ir_bucket_run_end) being one call; each program's bucket sizes in bytes
 * go to attr memplan.<program>.bucket_bytes.
 */
#include "passes/passes.h"

#include "ir/liveness.h"

#include <stdlib.h>
#include <string.h>

/* The arena assignment itself lives in ir/liveness.c, shared with the CUDA
 * executor so that the figures reported here are the offsets it uses. */
int64_t pass_local_bytes(const ir_module *m, const ir_type *t) { return ir_local_bytes(m, t); }

static int in_memory(const ir_program *p, int32_t v, void *ctx) { return ir_value_on_host(p, v) == *(const int *)ctx; }

/* First-fit arena over the values of one program that live in one memory
 * (host: 1 or 0); returns the peak and writes their offsets. */
static int64_t plan_program(const ir_module *m, const ir_program *p, int host, int64_t *offsets, int64_t *role_peak) {
    return ir_arena_plan(m, p, in_memory, &host, offsets, role_peak);
}

static int64_t comm_bytes(const ir_module *m, const ir_program *p, int64_t *ring) {
    int64_t b = 0;
    *ring = 0;
    for (int i = 0; p && i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (!(ir_ops[n->op].flags & IR_F_COLLECTIVE)) continue;
        int ax = ir_mesh_find(m, ir_attr_str(n->attrs, n->nattrs, "axis", ""));
        if (ax < 0 || m->mesh_sizes[ax] == 1) continue; /* nothing crosses ranks */
        const ir_type *t = ir_ref_type(m, p, n->in[0]);
        int64_t full = ir_type_bytes(t);
        b += n->op == IR_OP_all_reduce ? 2 * full : full;
        if (n->op == IR_OP_ring_shift) *ring += full;
    }
    return b;
}

/* Bytes of the copies of one program run: to the device, to the host. */
static void copy_bytes(const ir_module *m, const ir_program *p, int64_t *h2d, int64_t *d2h) {
    *h2d = *d2h = 0;
    for (int i = 0; p && i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op != IR_OP_to_device && n->op != IR_OP_to_host) continue;
        *(n->op == IR_OP_to_device ? h2d : d2h) += pass_local_bytes(m, ir_ref_type(m, p, n->in[0]));
    }
}

/* Communicator calls of one run of p; records the bucket sizes. */
static int64_t comm_calls(ir_module *m, const ir_program *p) {
    int64_t calls = 0, *sizes = malloc(sizeof(int64_t) * ((size_t)p->nnodes + 1));
    int nb = 0;
    for (int i = 0; i < p->nnodes; i = ir_bucket_run_end(p, i)) {
        const ir_node *n = &p->nodes[i];
        if (!(ir_ops[n->op].flags & IR_F_COLLECTIVE)) continue;
        int ax = ir_mesh_find(m, ir_attr_str(n->attrs, n->nattrs, "axis", ""));
        if (ax < 0 || m->mesh_sizes[ax] == 1) continue;
        calls++;
        if (!ir_attr_find(n->attrs, n->nattrs, "bucket")) continue;
        int64_t b = 0;
        for (int j = i; j < ir_bucket_run_end(p, i); j++) b += ir_type_bytes(ir_ref_type(m, p, p->nodes[j].in[0]));
        sizes[nb++] = b;
    }
    if (nb) {
        char key[128];
        snprintf(key, sizeof key, "memplan.%s.bucket_bytes", p->name);
        ir_module_set_attr(m, ir_aints(key, nb, sizes));
    }
    free(sizes);
    return calls;
}

int pass_memplan(ir_module *m, pass_mem_stats *st) {
    memset(st, 0, sizeof *st);
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        int64_t b = pass_local_bytes(m, &G->type);
        if (ir_global_on_host(G)) {
            /* host copies are held as the CPU executor holds every tensor:
             * 4 bytes an element whatever the dtype (bf16 params, u8 codes) */
            ir_type f = G->type;
            f.dtype = IR_F32;
            b = pass_local_bytes(m, &f);
            st->host_bytes += b;
            st->host_state_bytes[G->role] += b;
        } else {
            st->state_bytes[G->role] += b;
        }
        if (G->role == IR_ROLE_PARAM) {
            /* QLoRA's scales are storage of their weight, not parameters */
            if (!ir_attr_str(G->attrs, G->nattrs, "quant_part_of", NULL)) st->params += ir_type_numel(&G->type);
            if (ir_attr_int(G->attrs, G->nattrs, "trainable", 1)) st->trainable_params += ir_type_numel(&G->type);
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
        int64_t role_peak[IR_NROLE] = {0}, host_role_peak[IR_NROLE] = {0};
        int64_t peak = plan_program(m, p, 0, off, role_peak);
        int64_t host_peak = plan_program(m, p, 1, off, host_role_peak);
        free(off);
        char key[128];
        snprintf(key, sizeof key, "memplan.%s.peak_bytes", p->name);
        ir_module_set_attr(m, ir_ai(key, peak));
        if (host_peak) {
            snprintf(key, sizeof key, "memplan.%s.host_peak_bytes", p->name);
            ir_module_set_attr(m, ir_ai(key, host_peak));
        }
        if (peak > st->arena_peak) st->arena_peak = peak;
        if (!strcmp(p->name, "eval_step")) st->eval_peak = peak;
        if (!strcmp(p->name, "micro_step")) {
            st->micro_peak = peak;
            st->micro_host_peak = host_peak;
            st->comm_micro = comm_bytes(m, p, &st->ring_micro);
            copy_bytes(m, p, &st->h2d_micro, &st->d2h_micro);
            st->calls_micro = comm_calls(m, p);
        } else if (!strcmp(p->name, "opt_step")) {
            st->opt_peak = peak;
            st->opt_host_peak = host_peak;
            int64_t ring_opt;
            st->comm_opt = comm_bytes(m, p, &ring_opt);
            copy_bytes(m, p, &st->h2d_opt, &st->d2h_opt);
            st->calls_opt = comm_calls(m, p);
        }
    }
    st->comm_step = st->comm_micro * ga + st->comm_opt;
    st->calls_step = st->calls_micro * ga + st->calls_opt;
    st->h2d_step = st->h2d_micro * ga + st->h2d_opt;
    st->d2h_step = st->d2h_micro * ga + st->d2h_opt;
    ir_module_set_attr(m, ir_ai("memplan.comm_bytes_per_step", st->comm_step));
    ir_module_set_attr(m, ir_ai("memplan.collective_calls_per_step", st->calls_step));
    if (st->h2d_step || st->d2h_step) {
        ir_module_set_attr(m, ir_ai("memplan.to_device_bytes_per_step", st->h2d_step));
        ir_module_set_attr(m, ir_ai("memplan.to_host_bytes_per_step", st->d2h_step));
    }
    ir_module_set_attr(m, ir_ai("memplan.state_bytes", st->state_bytes[IR_ROLE_PARAM] + st->state_bytes[IR_ROLE_GRAD] +
                                                           st->state_bytes[IR_ROLE_OPT] + st->state_bytes[IR_ROLE_TEMP]));
    ir_module_set_attr(m, ir_ai("memplan.host_bytes", st->host_bytes));
    return 0;
}
