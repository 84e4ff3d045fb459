/* fuse.c — elementwise fusion: chains of elementwise nodes become one
 * `fused` node (one kernel, one pass over memory; its program in attr
 * `expr`, see docs/ir.md).
 *
 * Groups are grown greedily from a root, walking programs backwards: a
 * root is an elementwise node with one result (IR_F_ELEMWISE: add, mul,
 * scale, convert, bias_add, swiglu, geglu; swiglu_bwd has two results and stays
 * alone); the producer q of one of a member's operands joins when
 *  - q is such a node and its result has exactly one use (that member), so
 *    the value exists only inside the group and needs no buffer;
 *  - q runs where the root runs (`on` attribute: host or device);
 *  - q's result has the root result's shape and sharding, so the group
 *    computes one element count (a bias_add's bias [N] is the exception:
 *    an operand broadcast over rows);
 *  - q is on the root's side of micro_step's backward_start;
 *  - no node between q and the root writes a global q reads (the fused
 *    node reads it at the root's place);
 *  - the group stays within IR_MAX_IN distinct operands.
 * Collectives and effects are never elementwise, so they end a chain; a
 * group of one node is left as it is.
 *
 * Memory: the fused node reads all its operands at the root's place, so
 * operands of early members live longer than the intermediate they made.
 * The pass keeps each program's arena peak (device and host, ir/liveness.h)
 * within the largest one of the unfused plan — the arena every program
 * shares — checking the whole program after fusion and, when that is over,
 * adding the groups one at a time and leaving out those that would be.
 *
 * Module attributes fuse.<program>.groups and .nodes record, per program,
 * the fused nodes made and the nodes they replace (axoc prints them).
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include "ir/liveness.h"

#include <stdlib.h>
#include <string.h>

typedef struct group {
    int root;
    int n;         /* members, ascending node order (root last) */
    int *members;
} group;

typedef struct fctx {
    ir_module *m;
    ir_program *p;
    int *uses;     /* per value: operand references */
    int *grp;      /* per node: group or -1 */
    group *g;
    int ng;
    int bs;        /* backward_start (micro_step), else -1 */
} fctx;

static int same_layout(const ir_type *a, const ir_type *b) {
    return ir_type_same_shape(a, b) && a->shard.axis == b->shard.axis && (a->shard.axis < 0 || a->shard.dim == b->shard.dim);
}

static int float_dt(ir_dtype t) { return t == IR_F32 || t == IR_BF16; }

/* An elementwise node the fused program can express. */
static int fusible(const fctx *c, int i) {
    const ir_node *n = &c->p->nodes[i];
    if (!(ir_ops[n->op].flags & IR_F_ELEMWISE) || n->nout != 1) return 0;
    const ir_type *r = &c->p->values[n->out[0]].type;
    if (!float_dt(r->dtype)) return 0;
    for (int k = 0; k < n->nin; k++) {
        const ir_type *t = ir_ref_type(c->m, c->p, n->in[k]);
        if (!float_dt(t->dtype)) return 0;
        if (!(n->op == IR_OP_bias_add && k == 1) && !same_layout(t, r)) return 0;
    }
    return 1;
}

/* 1 if a node in (from, to) writes global ref g (effects write operand 0,
 * adamw also its moments). */
static int written_between(const ir_program *p, int32_t g, int from, int to) {
    for (int j = from + 1; j < to; j++) {
        const ir_node *n = &p->nodes[j];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == g && ir_op_writes(n->op, k)) return 1;
    }
    return 0;
}

static int has_ref(const int32_t *refs, int n, int32_t r) {
    for (int i = 0; i < n; i++)
        if (refs[i] == r) return 1;
    return 0;
}

/* Can the producer q of member operand v join root's group, whose distinct
 * operands are leaves[0..nleaves)? */
static int joinable(const fctx *c, int root, int q, int32_t v, const int32_t *leaves, int nleaves) {
    const ir_program *p = c->p;
    if (c->grp[q] >= 0 || c->uses[v] != 1 || !fusible(c, q)) return 0;
    const ir_node *nq = &p->nodes[q], *nr = &p->nodes[root];
    if (ir_node_on_host(nq) != ir_node_on_host(nr)) return 0;
    if (!same_layout(&p->values[v].type, &p->values[nr->out[0]].type)) return 0;
    if (c->bs >= 0 && (q < c->bs) != (root < c->bs)) return 0;
    int grow = -1; /* v stops being an operand */
    for (int k = 0; k < nq->nin; k++) {
        if (IR_REF_IS_GLOBAL(nq->in[k]) && written_between(p, nq->in[k], q, root)) return 0;
        if (!has_ref(leaves, nleaves, nq->in[k]) && !has_ref(nq->in, k, nq->in[k])) grow++;
    }
    return nleaves + grow <= IR_MAX_IN;
}

static void leaves_remove(int32_t *leaves, int *n, int32_t r) {
    for (int i = 0; i < *n; i++)
        if (leaves[i] == r) {
            memmove(&leaves[i], &leaves[i + 1], sizeof *leaves * (size_t)(*n - i - 1));
            (*n)--;
            return;
        }
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Grows the group of root; keeps it when it has two nodes or more. */
static void grow(fctx *c, int root, int *mem, int32_t *leaves) {
    const ir_program *p = c->p;
    int n = 0, nleaves = 0;
    mem[n++] = root;
    for (int k = 0; k < p->nodes[root].nin; k++)
        if (!has_ref(leaves, nleaves, p->nodes[root].in[k])) leaves[nleaves++] = p->nodes[root].in[k];
    for (int at = 0; at < n && n < IR_FX_MAX_INS; at++) { /* breadth first over the members' operands */
        const ir_node *nm = &p->nodes[mem[at]];
        for (int k = 0; k < nm->nin && n < IR_FX_MAX_INS; k++) {
            int32_t v = nm->in[k];
            if (IR_REF_IS_GLOBAL(v)) continue;
            int q = p->values[v].node;
            if (has_ref(mem, n, q) || !joinable(c, root, q, v, leaves, nleaves)) continue;
            mem[n++] = q;
            leaves_remove(leaves, &nleaves, v);
            for (int j = 0; j < p->nodes[q].nin; j++)
                if (!has_ref(leaves, nleaves, p->nodes[q].in[j])) leaves[nleaves++] = p->nodes[q].in[j];
        }
    }
    if (n < 2) return;
    qsort(mem, (size_t)n, sizeof *mem, cmp_int);
    group *g = &c->g[c->ng];
    g->root = root;
    g->n = n;
    g->members = malloc(sizeof(int) * (size_t)n);
    memcpy(g->members, mem, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) c->grp[mem[i]] = c->ng;
    c->ng++;
}

static void find_groups(fctx *c) {
    const ir_program *p = c->p;
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++)
            if (!IR_REF_IS_GLOBAL(p->nodes[i].in[k])) c->uses[p->nodes[i].in[k]]++;
    int *mem = malloc(sizeof(int) * IR_FX_MAX_INS);
    int32_t *leaves = malloc(sizeof(int32_t) * (IR_MAX_IN + 8));
    for (int r = p->nnodes - 1; r >= 0; r--)
        if (c->grp[r] < 0 && fusible(c, r)) grow(c, r, mem, leaves);
    free(mem);
    free(leaves);
}

/* The fused node's operands (distinct, in order of first use) and expr. */
static int group_expr(const fctx *c, const group *g, int32_t *leaves, ax_buf *expr) {
    const ir_program *p = c->p;
    int nl = 0;
    ir_fexpr fx = {g->n, calloc((size_t)g->n, sizeof(ir_fx_ins))};
    for (int i = 0; i < g->n; i++) {
        const ir_node *n = &p->nodes[g->members[i]];
        ir_fx_ins *x = &fx.ins[i];
        x->op = n->op;
        x->narg = n->nin;
        x->dtype = p->values[n->out[0]].type.dtype;
        x->alpha = n->op == IR_OP_scale ? ir_attr_float(n->attrs, n->nattrs, "alpha", 1) : 0;
        for (int k = 0; k < n->nin; k++) {
            int32_t r = n->in[k];
            int j = IR_REF_IS_GLOBAL(r) ? -1 : 0;
            while (j >= 0 && j < i && g->members[j] != p->values[r].node) j++;
            if (j >= 0 && j < i) { /* an earlier member's result */
                x->arg[k] = -j - 1;
                continue;
            }
            int l = 0;
            while (l < nl && leaves[l] != r) l++;
            if (l == nl) leaves[nl++] = r;
            x->arg[k] = l;
        }
    }
    ir_fexpr_print(&fx, expr);
    ir_fexpr_free(&fx);
    return nl;
}

static int keep_dev(const ir_program *p, int32_t v, void *ctx) {
    (void)ctx;
    return !ir_value_on_host(p, v);
}
static int keep_host(const ir_program *p, int32_t v, void *ctx) {
    (void)ctx;
    return ir_value_on_host(p, v);
}

/* Device and host arena peaks of p. */
static void peaks(const ir_module *m, const ir_program *p, int64_t pk[2]) {
    int64_t *off = malloc(sizeof(int64_t) * ((size_t)p->nvalues + 1));
    pk[0] = ir_arena_plan(m, p, keep_dev, NULL, off, NULL);
    pk[1] = ir_arena_plan(m, p, keep_host, NULL, off, NULL);
    free(off);
}

/* Rebuilds p with the accepted groups fused. Returns 1 when its peaks are
 * within limit (the new program replaces p if commit), 0 when over (p
 * unchanged), -1 on error. */
static int rebuild(fctx *c, const char *accepted, const int64_t limit[2], int commit, ax_diag *d) {
    ir_module *m = c->m;
    ir_program *p = c->p;
    rw r;
    rw_begin(&r, m, p, d);
    int32_t *leaves = malloc(sizeof(int32_t) * (IR_MAX_IN + 8)), *in = malloc(sizeof(int32_t) * (IR_MAX_IN + 8));
    int new_bs = -1;
    for (int i = 0; i < p->nnodes && !r.b.failed; i++) {
        if (i == c->bs) new_bs = r.np.nnodes; /* the first node kept from backward_start on */
        const ir_node *n = &p->nodes[i];
        int gi = c->grp[i];
        if (gi < 0 || !accepted[gi]) {
            rw_emit(&r, n, NULL, NULL, 0, NULL);
            continue;
        }
        if (c->g[gi].root != i) continue; /* its value is read only inside the group */
        ax_buf expr = {0};
        int nl = group_expr(c, &c->g[gi], leaves, &expr);
        for (int k = 0; k < nl; k++) in[k] = rw_ref(&r, leaves[k]);
        ir_attr at[2];
        int na = 0;
        at[na++] = ir_as("expr", expr.data);
        const ir_attr *on = ir_attr_find(n->attrs, n->nattrs, "on");
        if (on) at[na++] = *on;
        ir_role role = p->values[n->out[0]].role;
        int32_t out;
        if (ir_node_add(m, &r.np, IR_OP_fused, in, nl, at, na, NULL, &role, &out, d) < 0) r.b.failed = 1;
        else r.map[n->out[0]] = out;
        ax_buf_free(&expr);
    }
    free(leaves);
    free(in);
    if (r.b.failed) {
        rw_end(&r);
        ax_error(d, "fuse", "program %s: a fused node does not verify (a compiler bug)", p->name);
        return -1;
    }
    int64_t pk[2];
    peaks(m, &r.np, pk);
    int fits = pk[0] <= limit[0] && pk[1] <= limit[1];
    if (!fits || !commit) {
        r.b.failed = 1; /* not an error: rw_end drops the new program */
        rw_end(&r);
        return fits;
    }
    rw_end(&r);
    if (new_bs >= 0) ir_module_set_attr(m, ir_ai("backward_start", new_bs));
    return 1;
}

/* Fuses the groups of p within the arena limits: all of them, or else
 * those that fit when added one at a time in program order. Returns the
 * number of fused nodes made, or -1. */
static int fuse_program(ir_module *m, ir_program *p, const int64_t limit[2], ax_diag *d) {
    fctx c = {.m = m, .p = p, .bs = -1};
    if (!strcmp(p->name, "micro_step")) c.bs = (int)ir_attr_int(m->attrs, m->nattrs, "backward_start", -1);
    c.uses = calloc((size_t)p->nvalues + 1, sizeof *c.uses);
    c.grp = malloc(sizeof(int) * ((size_t)p->nnodes + 1));
    c.g = calloc((size_t)p->nnodes + 1, sizeof *c.g);
    for (int i = 0; i < p->nnodes; i++) c.grp[i] = -1;
    find_groups(&c);
    char *acc = malloc((size_t)c.ng + 1);
    memset(acc, 1, (size_t)c.ng + 1);
    int rc = c.ng ? rebuild(&c, acc, limit, 1, d) : 1;
    if (rc == 0) {
        memset(acc, 0, (size_t)c.ng + 1);
        for (int gi = c.ng - 1; gi >= 0 && rc >= 0; gi--) { /* groups were found from the end */
            acc[gi] = 1;
            rc = rebuild(&c, acc, limit, 0, d);
            if (rc == 0) acc[gi] = 0;
        }
        if (rc >= 0) rc = rebuild(&c, acc, limit, 1, d);
    }
    int groups = 0, nodes = 0;
    for (int gi = 0; gi < c.ng; gi++) {
        if (acc[gi]) groups++, nodes += c.g[gi].n;
        free(c.g[gi].members);
    }
    free(c.g);
    free(c.grp);
    free(c.uses);
    free(acc);
    if (rc < 0) return -1;
    if (groups) {
        char key[128];
        snprintf(key, sizeof key, "fuse.%s.groups", p->name);
        ir_module_set_attr(m, ir_ai(key, groups));
        snprintf(key, sizeof key, "fuse.%s.nodes", p->name);
        ir_module_set_attr(m, ir_ai(key, nodes));
    }
    return groups;
}

int pass_fuse(ir_module *m, const pass_fuse_cfg *cfg, ax_diag *d) {
    if (cfg && cfg->off) return 0;
    /* the arena every program shares: the largest unfused peak, per memory */
    int64_t limit[2] = {0, 0};
    for (int i = 0; i < m->nprograms; i++) {
        int64_t pk[2];
        peaks(m, m->programs[i], pk);
        for (int k = 0; k < 2; k++)
            if (pk[k] > limit[k]) limit[k] = pk[k];
    }
    for (int i = 0; i < m->nprograms; i++)
        if (fuse_program(m, m->programs[i], limit, d) < 0) return -1;
    return 0;
}
