/* shard.c — data parallelism as a graph rewrite (DDP, ZeRO-1/2/3, FSDP).
 *
 * Programs are SPMD: every rank runs the same program on its own
 * micro-batches; a value annotated <dp:0> holds, on each rank, the rank's
 * block of dim 0 (ceil(d0/N) rows, the last block zero-padded). Ops on such
 * values act on the local block; cross-rank sums are explicit collectives.
 *
 *   stage 0 (DDP, N>1)  all_reduce every gradient: in micro_step as backward
 *                       produces it when grad_accum is 1 (overlap), else
 *                       once in opt_step
 *   stage 1 (ZeRO-1)    Adam moments + master weights <dp:0> (f32; pure
 *                       bf16: a bf16 block of the param);
 *                       opt_step: reduce_scatter grads, update the local
 *                       block, all_gather the updated params
 *   stage 2 (ZeRO-2)    + gradients <dp:0>: micro_step reduce_scatters each
 *                       gradient as backward produces it
 *   stage 3 (ZeRO-3/    + params <dp:0>: micro_step all_gathers a decoder
 *    FSDP FULL_SHARD)   layer's params (the wrapped unit) before its first
 *                       use; with reshard_after_forward they are gathered
 *                       again in backward, else the forward's copy is kept
 * The global-norm clip sums local squared norms, then all_reduces the sum.
 * Sequence parallelism (mesh axis sp > 1): each rank's gradients are sums
 * over its own tokens; opt_step first all_reduces them over sp (after the
 * dp reduction), so every sp rank then holds the same gradients and runs
 * the same update (grad_sumsq is not summed over sp).
 * Offload (host placement, copies, the host-side optimizer step) is the
 * next pass, passes/offload.c.
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

static ir_attr ax_dp(void) { return ir_as("axis", "dp"); }

static int32_t all_gather(rw *r, int32_t x) { return ir_b(&r->b, IR_OP_all_gather, IR_IN(x), IR_AT(ax_dp())); }
static int32_t reduce_scatter(rw *r, int32_t x) {
    return ir_b(&r->b, IR_OP_reduce_scatter, IR_IN(x), IR_AT(ax_dp(), ir_ai("dim", 0)));
}

static void shard_global(ir_module *m, int g, int dp) {
    ir_global *G = &m->globals[g];
    if (G->type.rank == 0) return; /* scalars stay replicated */
    G->type.shard.axis = (int8_t)dp;
    G->type.shard.dim = 0;
}

/* Wrapped unit of a parameter: decoder layer l -> l+1, everything else 0. */
static int unit_of(const char *name) {
    const char *p = strstr(name, "layers.");
    return p ? atoi(p + 7) + 1 : 0;
}

/* DDP reduces in micro_step, bucket by bucket as backward produces the
 * gradients (torch DDP's overlap), when one micro-step is the whole step;
 * with gradient accumulation it reduces once, in opt_step (DDP's no_sync
 * for all but the last micro-batch: the same traffic, no overlap). */
static int ddp_in_micro(const ir_module *m, const pass_shard_cfg *c, int dp) {
    return c->stage == 0 && m->mesh_sizes[dp] > 1 && ir_attr_int(m->attrs, m->nattrs, "train.grad_accum", 1) == 1;
}

static int is_sharded(const ir_module *m, int32_t ref) {
    return IR_REF_IS_GLOBAL(ref) && m->globals[IR_REF_GLOBAL(ref)].type.shard.axis >= 0;
}

/* micro_step, or eval_step (a forward alone: no backward_start, no grads) */
static int rewrite_micro(ir_module *m, ir_program *p, const pass_shard_cfg *c, int dp, ax_diag *d) {
    rw r;
    rw_begin(&r, m, p, d);
    int is_micro = !strcmp(p->name, "micro_step");
    int bstart = is_micro ? (int)ir_attr_int(m->attrs, m->nattrs, "backward_start", p->nnodes) : p->nnodes;
    int32_t *gathered = malloc(sizeof(int32_t) * ((size_t)m->nglobals + 1));
    for (int g = 0; g < m->nglobals; g++) gathered[g] = -1;
    int ddp_micro = ddp_in_micro(m, c, dp);
    for (int i = 0; i < p->nnodes && !r.b.failed; i++) {
        const ir_node *n = &p->nodes[i];
        if (i == bstart) ir_module_set_attr(m, ir_ai("backward_start", r.np.nnodes)); /* in the new program */
        if (i == bstart && c->reshard_after_forward)
            for (int g = 0; g < m->nglobals; g++) gathered[g] = -1;
        int32_t in[16];
        for (int k = 0; k < n->nin; k++) in[k] = rw_ref(&r, n->in[k]);
        if (n->op == IR_OP_acc && is_sharded(m, n->in[0])) {
            /* gradient of a sharded global: reduce-scatter it as produced */
            in[1] = reduce_scatter(&r, in[1]);
        } else if (n->op == IR_OP_acc && ddp_micro && IR_REF_IS_GLOBAL(n->in[0]) &&
                   m->globals[IR_REF_GLOBAL(n->in[0])].role == IR_ROLE_GRAD) {
            in[1] = ir_b(&r.b, IR_OP_all_reduce, IR_IN(in[1]), IR_AT(ax_dp()));
        } else if (c->stage >= 3) {
            for (int k = 0; k < n->nin; k++) {
                if (!is_sharded(m, n->in[k]) || m->globals[IR_REF_GLOBAL(n->in[k])].role != IR_ROLE_PARAM) continue;
                int g = IR_REF_GLOBAL(n->in[k]);
                if (gathered[g] < 0) { /* gather the whole unit */
                    int u = unit_of(m->globals[g].name);
                    for (int h = 0; h < m->nglobals; h++)
                        if (m->globals[h].role == IR_ROLE_PARAM && gathered[h] < 0 && unit_of(m->globals[h].name) == u &&
                            m->globals[h].type.shard.axis >= 0)
                            gathered[h] = all_gather(&r, IR_GLOBAL_REF(h));
                }
                in[k] = gathered[g];
            }
        }
        rw_emit(&r, n, in, NULL, 0, NULL);
    }
    free(gathered);
    return rw_end(&r);
}

static int rewrite_opt(ir_module *m, const pass_shard_cfg *c, int dp, ax_diag *d) {
    ir_program *p = ir_program_find(m, "opt_step");
    rw r;
    rw_begin(&r, m, p, d);
    int ng = m->nglobals;
    int32_t *gs = malloc(sizeof(int32_t) * ((size_t)ng + 1)); /* per grad global: local block value */
    for (int g = 0; g < ng; g++) gs[g] = -1;
    int stat = ir_global_find(m, "stats/grad_sumsq");
    /* prologue: DDP all-reduce, ZeRO-1 reduce-scatter of the full grads;
     * then, with sequence parallelism, the sum over sp of what each rank's
     * tokens contributed (after it the grads are replicated over sp) */
    int spx = ir_mesh_find(m, "sp");
    int sp = spx >= 0 && m->mesh_sizes[spx] > 1, ndp = (int)m->mesh_sizes[dp];
    for (int g = 0; g < ng; g++) {
        if (m->globals[g].role != IR_ROLE_GRAD) continue;
        if (c->stage == 0) {
            int32_t s = IR_GLOBAL_REF(g);
            if (ndp > 1 && !ddp_in_micro(m, c, dp)) s = ir_b(&r.b, IR_OP_all_reduce, IR_IN(s), IR_AT(ax_dp()));
            if (sp) s = ir_b(&r.b, IR_OP_all_reduce, IR_IN(s), IR_AT(ir_as("axis", "sp")));
            if (s != IR_GLOBAL_REF(g)) ir_bn(&r.b, IR_OP_store, IR_IN(IR_GLOBAL_REF(g), s), IR_NOAT, NULL);
            continue;
        }
        if (c->stage == 1) gs[g] = reduce_scatter(&r, IR_GLOBAL_REF(g));
        if (sp) gs[g] = ir_b(&r.b, IR_OP_all_reduce, IR_IN(gs[g] >= 0 ? gs[g] : IR_GLOBAL_REF(g)), IR_AT(ir_as("axis", "sp")));
    }
    for (int i = 0; i < p->nnodes && !r.b.failed; i++) {
        const ir_node *n = &p->nodes[i];
        int32_t in[16];
        for (int k = 0; k < n->nin; k++) {
            in[k] = rw_ref(&r, n->in[k]);
            /* operands read as values (not the globals an effect op writes) */
            int target = ir_op_writes(n->op, k);
            if (!target && IR_REF_IS_GLOBAL(n->in[k]) && gs[IR_REF_GLOBAL(n->in[k])] >= 0) in[k] = gs[IR_REF_GLOBAL(n->in[k])];
        }
        if (c->stage >= 1 && n->op == IR_OP_store && IR_REF_IS_GLOBAL(n->in[0]) && IR_REF_GLOBAL(n->in[0]) == stat) {
            /* local partial sums of squares -> global */
            int32_t tot = ir_b(&r.b, IR_OP_all_reduce, IR_IN(in[1]), IR_AT(ax_dp()));
            r.map[n->in[1]] = tot;
            in[1] = tot;
        }
        if (c->stage >= 1 && c->stage < 3 && n->op == IR_OP_store && IR_REF_IS_GLOBAL(n->in[1]) &&
            is_sharded(m, n->in[1]) && !is_sharded(m, n->in[0])) {
            /* master block -> working dtype -> full working copy (gathering
             * bf16, not f32, is what moves Psi and not 2 Psi) */
            int32_t blk = in[1];
            ir_dtype to = m->globals[IR_REF_GLOBAL(n->in[0])].type.dtype;
            if (to != m->globals[IR_REF_GLOBAL(n->in[1])].type.dtype)
                blk = ir_b(&r.b, IR_OP_convert, IR_IN(blk), IR_AT(ir_as("to", ir_dtype_name(to))));
            in[1] = all_gather(&r, blk);
        }
        if (c->stage >= 1 && c->stage < 3 && (n->op == IR_OP_adamw || n->op == IR_OP_adamw8) && !is_sharded(m, n->in[0])) {
            /* params without a master copy (f32, or pure bf16): update a
             * sharded block of the param's dtype, then gather it into the
             * (replicated) params */
            int pg = IR_REF_GLOBAL(n->in[0]);
            char name[512];
            snprintf(name, sizeof name, "master/%s", m->globals[pg].name);
            ir_type t = m->globals[pg].type;
            t.shard.axis = (int8_t)dp;
            t.shard.dim = 0;
            int mg = ir_global_add(m, name, t, IR_ROLE_OPT, (ir_attr[]){ir_as("init_from", m->globals[pg].name)}, 1);
            in[0] = IR_GLOBAL_REF(mg);
            rw_emit(&r, n, in, NULL, 0, NULL);
            int32_t full = all_gather(&r, IR_GLOBAL_REF(mg));
            ir_bn(&r.b, IR_OP_store, IR_IN(IR_GLOBAL_REF(pg), full), IR_NOAT, NULL);
            continue;
        }
        rw_emit(&r, n, in, NULL, 0, NULL);
    }
    free(gs);
    return rw_end(&r);
}

int pass_shard(ir_module *m, const pass_shard_cfg *c, ax_diag *d) {
    int dp = ir_mesh_find(m, "dp");
    if (dp < 0) {
        ax_error(d, "shard", "module has no dp mesh axis");
        return -1;
    }
    int spx = ir_mesh_find(m, "sp");
    if (c->stage == 0 && m->mesh_sizes[dp] == 1 && (spx < 0 || m->mesh_sizes[spx] == 1))
        return 0; /* one rank, no ZeRO: nothing to do */
    ir_module_set_attr(m, ir_ai("train.zero_stage", c->stage));
    ir_module_set_attr(m, ir_ai("train.reshard_after_forward", c->reshard_after_forward));
    int ng = m->nglobals;
    for (int g = 0; g < ng; g++) {
        ir_global *G = &m->globals[g];
        int shard = (G->role == IR_ROLE_OPT && c->stage >= 1) || (G->role == IR_ROLE_GRAD && c->stage >= 2) ||
                    (G->role == IR_ROLE_PARAM && c->stage >= 3);
        if (shard) shard_global(m, g, dp);
    }
    if (rewrite_micro(m, ir_program_find(m, "micro_step"), c, dp, d) != 0) return -1;
    ir_program *ep = ir_program_find(m, "eval_step");
    if (ep && rewrite_micro(m, ep, c, dp, d) != 0) return -1;
    if (rewrite_opt(m, c, dp, d) != 0) return -1;
    return 0;
}
