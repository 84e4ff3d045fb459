/* offload.c — CPU offload as placement plus explicit copies (ZeRO-Offload,
 * ZeRO-Infinity's CPU tier, FSDP CPUOffload). Runs after shard, on the
 * sharded programs.
 *
 * Placement of the state (attr place="host" on the global; per rank, the
 * global's block):
 *   offload_optimizer   Adam moments and f32 master weights; at stage >= 2
 *                       also the gradients (already sharded: micro_step
 *                       copies each reduce-scattered block to the host and
 *                       accumulates it there, as DeepSpeed does); at stage 1
 *                       the gradients are whole and reduced only in opt_step,
 *                       so they stay on the device until then
 *   offload_params      the (sharded) parameters: stage 3 only
 * Placement of the work (attr on="host" on the node):
 *   - a node that writes a global runs where the global lives;
 *   - with offload_optimizer every other opt_step node (the lr/step inputs,
 *     the clip's partial sums of squares, clip_coef, AdamW, the conversion
 *     of the updated master block to the working dtype) runs on the host,
 *     except the collectives, which run on the device;
 *   - everything else runs on the device.
 * An AdamW whose parameter lives in the other memory than its moments (f32
 * params with no master copy) gets a master block beside the moments,
 * initialised from the parameter, and a store back into the parameter.
 * Copies: every operand in the other memory is copied by to_host or
 * to_device: a value once, right after the node that makes it (so the
 * device block of a gradient dies as soon as it is on the host); a global
 * at each use (a host parameter block is copied to the device before each
 * all_gather of its unit: again in backward when resharding). A store of
 * state into a global of a narrower dtype converts before the copy, on
 * the side that holds the data (bf16, not f32, crosses the bus).
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

static int writes_global(const ir_node *n, int k) {
    return ir_op_writes(n->op, k);
}

static void place_globals(ir_module *m, const pass_shard_cfg *c) {
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        int host = (G->role == IR_ROLE_OPT && c->offload_optimizer) || (G->role == IR_ROLE_PARAM && c->offload_params) ||
                   (G->role == IR_ROLE_GRAD && c->offload_optimizer && c->stage >= 2);
        if (host) ir_global_set_attr(m, g, ir_as("place", "host"));
    }
}

/* Re-emits node n with operands in, with on="host" when host (and no
 * `on` otherwise). */
static void emit_placed(rw *r, const ir_node *n, const int32_t *in, int host) {
    ir_attr *at = malloc(sizeof(ir_attr) * ((size_t)n->nattrs + 1));
    int na = 0;
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].key, "on") != 0) at[na++] = n->attrs[i];
    if (host) at[na++] = ir_as("on", "host");
    rw_emit(r, n, in, at, na, NULL);
    free(at);
}

/* A new node whose result is a temporary (copies, conversions for them). */
static int32_t emit_temp(rw *r, ir_op op, int32_t x, int na, const ir_attr *at) {
    r->b.role = IR_ROLE_TEMP;
    int32_t v = ir_b(&r->b, op, 1, &x, na, at);
    r->b.role = IR_ROLE_ACT;
    return v;
}

static int32_t copy_to(rw *r, int32_t ref, int to_host) {
    return emit_temp(r, to_host ? IR_OP_to_host : IR_OP_to_device, ref, 0, NULL);
}

/* AdamW over a parameter that lives in the other memory than its moments:
 * update a master block beside the moments, then store it into the
 * parameter (the copy is inserted by place_program). */
static int add_masters(ir_module *m, ax_diag *d) {
    ir_program *p = ir_program_find(m, "opt_step");
    int any = 0;
    for (int i = 0; p && i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        any |= (n->op == IR_OP_adamw || n->op == IR_OP_adamw8) && ir_global_on_host(&m->globals[IR_REF_GLOBAL(n->in[0])]) !=
                                           ir_global_on_host(&m->globals[IR_REF_GLOBAL(n->in[2])]);
    }
    if (!any) return 0;
    rw r;
    rw_begin(&r, m, p, d);
    for (int i = 0; i < p->nnodes && !r.b.failed; i++) {
        const ir_node *n = &p->nodes[i];
        int32_t in[16];
        for (int k = 0; k < n->nin; k++) in[k] = rw_ref(&r, n->in[k]);
        int pg = n->op == IR_OP_adamw || n->op == IR_OP_adamw8 ? IR_REF_GLOBAL(n->in[0]) : -1;
        if (pg < 0 || ir_global_on_host(&m->globals[pg]) == ir_global_on_host(&m->globals[IR_REF_GLOBAL(n->in[2])])) {
            rw_emit(&r, n, in, NULL, 0, NULL);
            continue;
        }
        char name[512];
        snprintf(name, sizeof name, "master/%s", m->globals[pg].name);
        if (ir_global_find(m, name) >= 0) {
            ax_error(d, "offload", "%s already exists but AdamW updates %s directly", name, m->globals[pg].name);
            r.b.failed = 1;
            break;
        }
        int host = ir_global_on_host(&m->globals[IR_REF_GLOBAL(n->in[2])]);
        ir_attr at[2] = {ir_as("init_from", m->globals[pg].name), ir_as("place", "host")};
        int mg = ir_global_add(m, name, m->globals[pg].type, IR_ROLE_OPT, at, host ? 2 : 1);
        in[0] = IR_GLOBAL_REF(mg);
        rw_emit(&r, n, in, NULL, 0, NULL);
        ir_bn(&r.b, IR_OP_store, IR_IN(IR_GLOBAL_REF(pg), IR_GLOBAL_REF(mg)), IR_NOAT, NULL);
    }
    return rw_end(&r);
}

/* Decides where each node of p runs, then rebuilds p with the copies. */
static int place_program(ir_module *m, ir_program *p, const pass_shard_cfg *c, ax_diag *d) {
    int host_default = c->offload_optimizer && !strcmp(p->name, "opt_step");
    char *host = calloc((size_t)p->nnodes + 1, 1);
    char *vhost = calloc((size_t)p->nvalues + 1, 1);
    char *cross = calloc((size_t)p->nvalues + 1, 1); /* some reader is in the other memory */
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int h = host_default && !(ir_ops[n->op].flags & IR_F_COLLECTIVE);
        for (int k = 0; k < n->nin; k++)
            if (writes_global(n, k)) h = ir_global_on_host(&m->globals[IR_REF_GLOBAL(n->in[k])]);
        host[i] = (char)h;
        for (int k = 0; k < n->nout; k++) vhost[n->out[k]] = (char)h;
        for (int k = 0; k < n->nin; k++)
            if (!IR_REF_IS_GLOBAL(n->in[k]) && vhost[n->in[k]] != h) cross[n->in[k]] = 1;
    }
    rw r;
    rw_begin(&r, m, p, d);
    int32_t *other = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1)); /* the value's copy in the other memory */
    for (int i = 0; i < p->nnodes && !r.b.failed; i++) {
        const ir_node *n = &p->nodes[i];
        int32_t in[16];
        for (int k = 0; k < n->nin; k++) {
            int32_t ref = n->in[k];
            if (!IR_REF_IS_GLOBAL(ref)) {
                in[k] = vhost[ref] == host[i] ? r.map[ref] : other[ref];
                continue;
            }
            const ir_global *G = &m->globals[IR_REF_GLOBAL(ref)];
            in[k] = ref;
            if (writes_global(n, k) || ir_global_on_host(G) == host[i]) continue;
            if (n->op == IR_OP_store && k == 1) { /* narrow first, where the data is */
                ir_dtype to = m->globals[IR_REF_GLOBAL(n->in[0])].type.dtype;
                if (to != G->type.dtype) {
                    ir_attr at[2] = {ir_as("to", ir_dtype_name(to)), ir_as("on", "host")};
                    in[k] = emit_temp(&r, IR_OP_convert, ref, ir_global_on_host(G) ? 2 : 1, at);
                }
            }
            in[k] = copy_to(&r, in[k], host[i]);
        }
        emit_placed(&r, n, in, host[i]);
        for (int k = 0; k < n->nout && !r.b.failed; k++)
            if (cross[n->out[k]]) other[n->out[k]] = copy_to(&r, r.map[n->out[k]], !host[i]);
    }
    free(other);
    free(cross);
    free(vhost);
    free(host);
    return rw_end(&r);
}

int pass_offload(ir_module *m, const pass_shard_cfg *c, ax_diag *d) {
    if (!c->offload_params && !c->offload_optimizer) return 0;
    int rc = 0;
    if (c->offload_params && c->stage != 3) {
        ax_error(d, "offload", "offload_param to cpu needs ZeRO stage 3 (parameters are offloaded only when sharded), found stage %d",
                 c->stage);
        rc = -1;
    }
    if (c->offload_optimizer && c->stage < 1) {
        ax_error(d, "offload", "offload_optimizer to cpu needs ZeRO stage 1, 2 or 3 (the optimizer state is offloaded "
                               "per rank's shard), found stage 0");
        rc = -1;
    }
    if (!ir_program_find(m, "opt_step")) {
        ax_error(d, "offload", "module has no opt_step program");
        rc = -1;
    }
    if (rc) return -1;
    place_globals(m, c);
    if (add_masters(m, d) != 0) return -1;
    for (int i = 0; i < m->nprograms; i++)
        if (place_program(m, m->programs[i], c, d) != 0) return -1;
    return 0;
}
