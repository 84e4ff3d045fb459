/* schedule.c — stream assignment, cross-stream events and prefetch.
 *
 * Every node gets attr stream: 0 device compute, 1 communication
 * (collectives, ring shifts, and a gradient's acc/store of a collective's
 * result, so the backward never waits for a reduction), 2 host<->device copies, 3 host compute (nodes
 * with on="host": the offloaded optimizer step). A node whose operand (value, or a global another stream
 * last wrote / still reads) comes from another stream gets attr wait = the
 * indices of the nodes it must wait for, at most one per other stream (the
 * latest: streams run in order). An executor with streams records an event
 * after each waited-on node and makes the waiting stream wait for it; an
 * executor without streams runs the nodes in program order, which the
 * schedule keeps a valid order.
 *
 * Prefetch: a run of consecutive parameter all_gathers (a ZeRO-3/FSDP unit,
 * of globals or of their to_device copies when parameters are offloaded,
 * the copies included) marks where its unit's compute starts; there the
 * gathers of the next `prefetch` units are issued too, so the next unit's
 * parameters travel while the current unit computes, and at most
 * prefetch + 1 layer units (and the root unit) are gathered at a time (the
 * bound FSDP's limit_all_gathers keeps). memplan runs after this pass, so the longer
 * lives of the prefetched parameters are in the reported peak. A gather is
 * never moved above a node that writes the global it reads.
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

enum { ST_COMPUTE, ST_COMM, ST_COPY, ST_HOST, ST_N };

static int stream_of(const ir_node *n) {
    if (n->op == IR_OP_to_host || n->op == IR_OP_to_device) return ST_COPY;
    if (ir_ops[n->op].flags & IR_F_COLLECTIVE) return ST_COMM;
    return ir_node_on_host(n) ? ST_HOST : ST_COMPUTE;
}

/* A gradient's acc/store of a collective's result (a DDP all-reduce or a
 * ZeRO reduce-scatter as backward produces it) runs on the communication
 * stream behind its collective: on the compute stream it would make the
 * backward wait for the collective, which is the overlap lost. */
static int stream_in(const ir_module *m, const ir_program *p, const ir_node *n) {
    int s = stream_of(n);
    if (s == ST_COMPUTE && (n->op == IR_OP_acc || n->op == IR_OP_store) && IR_REF_IS_GLOBAL(n->in[0]) &&
        m->globals[IR_REF_GLOBAL(n->in[0])].role == IR_ROLE_GRAD && !IR_REF_IS_GLOBAL(n->in[1]) &&
        (ir_ops[p->nodes[p->values[n->in[1]].node].op].flags & IR_F_COLLECTIVE))
        return ST_COMM;
    return s;
}

/* A parameter all_gather (of a global, or of a global's to_device copy:
 * offloaded parameters) or such a copy: needs nothing the program computes. */
static int prefetchable_in(const ir_program *p, const ir_node *n) {
    if (n->op != IR_OP_all_gather && n->op != IR_OP_to_device) return 0;
    for (int k = 0; k < n->nin; k++) {
        if (IR_REF_IS_GLOBAL(n->in[k])) continue;
        const ir_node *src = &p->nodes[p->values[n->in[k]].node];
        if (n->op != IR_OP_all_gather || src->op != IR_OP_to_device || !IR_REF_IS_GLOBAL(src->in[0])) return 0;
    }
    return 1;
}

/* Does node i write global g (an effect op's target)? */
static int writes(const ir_node *n, int32_t gref) {
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] == gref && ir_op_writes(n->op, k)) return 1;
    return 0;
}

/* New order of p's nodes with gather groups hoisted; returns the count. */
static int hoist_order(const ir_program *p, int prefetch, int *order) {
    int nn = p->nnodes;
    int *gstart = malloc(sizeof(int) * (size_t)(nn + 1)), *gend = malloc(sizeof(int) * (size_t)(nn + 1));
    int ng = 0;
    for (int i = 0; i < nn;) {
        if (!prefetchable_in(p, &p->nodes[i])) {
            i++;
            continue;
        }
        gstart[ng] = i;
        while (i < nn && prefetchable_in(p, &p->nodes[i])) i++;
        gend[ng++] = i;
    }
    char *done = calloc((size_t)nn + 1, 1);
    int no = 0, j = 0; /* j: the next group to reach in program order */
    for (int i = 0; i < nn; i++) {
        if (j < ng && i == gstart[j]) {
            /* unit j's compute starts here: its gathers (unless issued
             * already), then the next `prefetch` units' gathers */
            for (int h = j; h <= j + prefetch && h < ng; h++) {
                if (done[gstart[h]]) continue;
                int legal = 1;
                for (int t = gstart[h]; t < gend[h] && legal; t++)
                    for (int u = i; u < gstart[h] && legal; u++)
                        for (int k = 0; k < p->nodes[t].nin; k++)
                            if (writes(&p->nodes[u], p->nodes[t].in[k])) legal = 0;
                if (!legal) continue;
                for (int t = gstart[h]; t < gend[h]; t++) {
                    order[no++] = t;
                    done[t] = 1;
                }
            }
            j++;
        }
        if (!done[i]) {
            order[no++] = i;
            done[i] = 1;
        }
    }
    free(done);
    free(gstart);
    free(gend);
    return no;
}

static int reorder(ir_module *m, ir_program *p, int prefetch, ax_diag *d) {
    int *order = malloc(sizeof(int) * ((size_t)p->nnodes + 1));
    int no = hoist_order(p, prefetch, order);
    int same = no == p->nnodes;
    for (int i = 0; same && i < no; i++) same = order[i] == i;
    if (same) {
        free(order);
        return 0;
    }
    /* backward_start names a micro_step node index: keep it on the node */
    int64_t bs = ir_attr_int(m->attrs, m->nattrs, "backward_start", -1);
    int is_micro = !strcmp(p->name, "micro_step"), new_bs = -1;
    rw r;
    rw_begin(&r, m, p, d);
    for (int i = 0; i < no; i++) {
        /* the backward starts at its first node that is not a gather
         * (its first gathers may have been issued inside the forward) */
        if (is_micro && new_bs < 0 && order[i] >= bs && bs >= 0 && !prefetchable_in(p, &p->nodes[order[i]])) new_bs = i;
        rw_emit(&r, &p->nodes[order[i]], NULL, NULL, 0, NULL);
    }
    free(order);
    if (is_micro && new_bs >= 0) ir_module_set_attr(m, ir_ai("backward_start", new_bs));
    return rw_end(&r);
}

/* Sets attr key on node n (replacing it), copying into the module arena. */
static void node_set_attr(ir_module *m, ir_node *n, ir_attr a) {
    if (a.kind == IR_ATTR_INTS && a.n) { /* the list lives in the module */
        int64_t *v = ax_arena_alloc(m->arena, sizeof(int64_t) * (size_t)a.n);
        memcpy(v, a.ints, sizeof(int64_t) * (size_t)a.n);
        a.ints = v;
    }
    for (int i = 0; i < n->nattrs; i++)
        if (!strcmp(n->attrs[i].key, a.key)) {
            ir_attr *na = ax_arena_alloc(m->arena, sizeof(ir_attr) * (size_t)n->nattrs);
            memcpy(na, n->attrs, sizeof(ir_attr) * (size_t)n->nattrs);
            na[i] = a;
            n->attrs = na;
            return;
        }
    ir_attr *na = ax_arena_alloc(m->arena, sizeof(ir_attr) * (size_t)(n->nattrs + 1));
    if (n->nattrs) memcpy(na, n->attrs, sizeof(ir_attr) * (size_t)n->nattrs);
    na[n->nattrs++] = a;
    n->attrs = na;
}

static void assign_streams(ir_module *m, ir_program *p) {
    int nn = p->nnodes, ng = m->nglobals;
    /* per global, per stream: the latest node that wrote it / read it */
    int *gw = malloc(sizeof(int) * (size_t)(ng * ST_N + 1)), *gr = malloc(sizeof(int) * (size_t)(ng * ST_N + 1));
    int *st = malloc(sizeof(int) * (size_t)(nn + 1));
    for (int i = 0; i < ng * ST_N; i++) gw[i] = gr[i] = -1;
    for (int i = 0; i < nn; i++) st[i] = stream_in(m, p, &p->nodes[i]);
    for (int i = 0; i < nn; i++) {
        ir_node *n = &p->nodes[i];
        int s = st[i], need[ST_N];
        for (int t = 0; t < ST_N; t++) need[t] = -1;
#define NEED(node)                                                                   \
    do {                                                                             \
        int nd_ = (node);                                                            \
        if (nd_ >= 0) {                                                              \
            int ts_ = st[nd_];                                                       \
            if (ts_ != s && nd_ > need[ts_]) need[ts_] = nd_;                        \
        }                                                                            \
    } while (0)
        int effect = (ir_ops[n->op].flags & IR_F_EFFECT) != 0;
        for (int k = 0; k < n->nin; k++) {
            int32_t ref = n->in[k];
            if (!IR_REF_IS_GLOBAL(ref)) {
                NEED(p->values[ref].node);
                continue;
            }
            int g = IR_REF_GLOBAL(ref);
            for (int t = 0; t < ST_N; t++) {
                NEED(gw[g * ST_N + t]);                       /* read/write after write */
                if (effect && k == 0) NEED(gr[g * ST_N + t]); /* write after read */
            }
        }
#undef NEED
        for (int k = 0; k < n->nin; k++) {
            if (!IR_REF_IS_GLOBAL(n->in[k])) continue;
            int g = IR_REF_GLOBAL(n->in[k]);
            if (effect && k == 0) gw[g * ST_N + s] = i;
            else gr[g * ST_N + s] = i;
        }
        node_set_attr(m, n, ir_ai("stream", s));
        int64_t w[ST_N];
        int nw = 0;
        for (int t = 0; t < ST_N; t++)
            if (need[t] >= 0) w[nw++] = need[t];
        if (nw) node_set_attr(m, n, ir_aints("wait", nw, w));
    }
    free(st);
    free(gw);
    free(gr);
}

int pass_schedule(ir_module *m, const pass_sched_cfg *c, ax_diag *d) {
    for (int i = 0; i < m->nprograms; i++) {
        ir_program *p = m->programs[i];
        if (reorder(m, p, c->prefetch, d) != 0) {
            ax_error(d, "schedule", "reordering program %s failed", p->name);
            return -1;
        }
        assign_streams(m, p);
    }
    ir_module_set_attr(m, ir_ai("schedule.streams", ST_N));
    ir_module_set_attr(m, ir_ai("schedule.prefetch", c->prefetch));
    return 0;
}
