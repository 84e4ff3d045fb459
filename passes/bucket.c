/* bucket.c — gradient buckets: the shard pass reduces each gradient over dp
 * with its own collective; this groups them so that each bucket is ONE
 * communicator call, as torch DDP (bucket_cap_mb), DeepSpeed ZeRO
 * (reduce_bucket_size) and FSDP (one reduce-scatter per wrapped unit) do.
 *
 * Candidates, in micro_step and opt_step: an all_reduce or reduce_scatter
 * (dim 0) over the dp axis that either reads a grad global (opt_step: DDP
 * all-reduce, ZeRO-1 reduce-scatter) or whose only use is an acc/store into
 * a grad global (micro_step: ZeRO-2/3 reduce-scatter as backward produces
 * the gradient).
 *
 * Order: the order backward produces the gradients, i.e. the position of
 * the gradient's acc in micro_step (reverse parameter order, as torch DDP's
 * buckets once rebuilt after the first iteration).
 *
 * Assignment (pass_bucket_assign): greedy in that order, never past the
 * cap (a gradient that does not fit opens the next bucket; one larger than
 * the cap is a bucket of its own — DeepSpeed's rule; torch closes a bucket
 * only once it reaches the cap, so its buckets can overshoot by one
 * gradient). A new dtype or op also opens a new bucket; with PASS_BUCKET_UNIT
 * the bucket is a run of gradients of one wrapped unit (decoder layer, or
 * the root unit: embeddings, final norm, lm_head).
 *
 * Rewrite: a bucket's collectives move down to the position of its last
 * member (or of the previous bucket, so buckets run in bucket order), back
 * to back, each tagged bucket=k; nodes that used their results before that
 * point (the acc/store into the gradient, an all_reduce over sp and its
 * store) follow them in their original order. The new order is checked
 * (every value defined before use; every pair of accesses to a global of
 * which one writes keeps its order); if the check fails the program keeps one
 * collective per gradient, with a warning. Sums are elementwise, so the
 * executor's packed call gives bit-identical results.
 *
 * Module attrs: grad_buckets.by ("bytes", "elements", "unit"),
 * grad_buckets.cap, grad_buckets.<program> = bucket sizes in the cap's unit
 * (bytes for "unit"), in execution order.
 */
#include "passes/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pass_bucket_assign(const int64_t *sizes, const int *keys, int n, int64_t cap, int *bucket) {
    int nb = 0;
    int64_t fill = 0;
    for (int i = 0; i < n; i++) {
        int fresh = i == 0 || (keys && keys[i] != keys[i - 1]) || (cap > 0 && fill + sizes[i] > cap);
        if (fresh) {
            nb++;
            fill = 0;
        }
        fill += sizes[i];
        bucket[i] = nb - 1;
    }
    return nb;
}

typedef struct cand {
    int node;      /* the collective */
    int grad;      /* the gradient global it reduces */
    int64_t order; /* when backward produces the gradient */
    int64_t size;  /* in the cap's unit */
    int64_t bytes;
    int key;
    int bucket;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return x->node - y->node;
}

/* Wrapped unit of a gradient global (same rule as shard.c's unit_of):
 * decoder layer l -> l+1, everything else (the root unit) 0. */
static int grad_unit(const char *name) {
    const char *p = strstr(name, "layers.");
    return p ? atoi(p + 7) + 1 : 0;
}

static int is_grad(const ir_module *m, int32_t ref) {
    return IR_REF_IS_GLOBAL(ref) && m->globals[IR_REF_GLOBAL(ref)].role == IR_ROLE_GRAD;
}

/* The gradient global node i reduces over axis `ax`, or -1. */
static int grad_reduced(const ir_module *m, const ir_program *p, int i, const char *ax) {
    const ir_node *n = &p->nodes[i];
    if (n->op != IR_OP_all_reduce && n->op != IR_OP_reduce_scatter) return -1;
    if (strcmp(ir_attr_str(n->attrs, n->nattrs, "axis", ""), ax) != 0) return -1;
    if (ir_attr_find(n->attrs, n->nattrs, "bucket")) return -1;
    if (n->op == IR_OP_reduce_scatter && ir_attr_int(n->attrs, n->nattrs, "dim", 0) != 0) return -1;
    if (is_grad(m, n->in[0])) return IR_REF_GLOBAL(n->in[0]);
    if (IR_REF_IS_GLOBAL(n->in[0])) return -1;
    int32_t r = n->out[0], user = -1, uses = 0;
    for (int j = i + 1; j < p->nnodes; j++)
        for (int k = 0; k < p->nodes[j].nin; k++)
            if (p->nodes[j].in[k] == r) uses++, user = j;
    if (uses != 1) return -1;
    const ir_node *u = &p->nodes[user];
    if ((u->op != IR_OP_acc && u->op != IR_OP_store) || u->in[1] != r || !is_grad(m, u->in[0])) return -1;
    return IR_REF_GLOBAL(u->in[0]);
}

/* Globals node n writes: effect ops their first operand, adamw also the
 * moments. */
static int writes_operand(const ir_node *n, int k) {
    return ir_op_writes(n->op, k);
}

/* The checks of the header comment on the order ord (new position -> old
 * node); pos is its inverse. moved[i] >= 0 for nodes that moved. */
static int order_ok(const ir_module *m, const ir_program *p, const int *pos, const int *moved) {
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++) {
            int32_t v = p->nodes[i].in[k];
            if (!IR_REF_IS_GLOBAL(v) && pos[p->values[v].node] >= pos[i]) return 0;
        }
    /* accesses per global, in original order */
    int ng = m->nglobals;
    int *start = calloc((size_t)ng + 2, sizeof *start);
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++)
            if (IR_REF_IS_GLOBAL(p->nodes[i].in[k])) start[IR_REF_GLOBAL(p->nodes[i].in[k]) + 1]++;
    for (int g = 0; g < ng; g++) start[g + 1] += start[g];
    int *fill = malloc(sizeof(int) * ((size_t)ng + 1)), *node = malloc(sizeof(int) * ((size_t)start[ng] + 1));
    char *wr = malloc((size_t)start[ng] + 1);
    memcpy(fill, start, sizeof(int) * (size_t)ng);
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++)
            if (IR_REF_IS_GLOBAL(p->nodes[i].in[k])) {
                int g = IR_REF_GLOBAL(p->nodes[i].in[k]), at = fill[g]++;
                node[at] = i;
                wr[at] = (char)writes_operand(&p->nodes[i], k);
            }
    int ok = 1;
    for (int g = 0; g < ng && ok; g++)
        for (int a = start[g]; a < start[g + 1] && ok; a++)
            for (int b = a + 1; b < start[g + 1] && ok; b++) {
                if (!(wr[a] || wr[b]) || node[a] == node[b]) continue;
                if (moved[node[a]] < 0 && moved[node[b]] < 0) continue; /* unmoved nodes keep their order */
                ok = pos[node[a]] < pos[node[b]];
            }
    free(start);
    free(fill);
    free(node);
    free(wr);
    return ok;
}

/* Value ids in definition order again (the printer names values by id). */
static void renumber_values(ir_program *p) {
    int32_t *newid = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    ir_value *vals = malloc(sizeof(ir_value) * ((size_t)p->nvalues + 1));
    int nv = 0;
    for (int i = 0; i < p->nnodes; i++) {
        ir_node *n = &p->nodes[i];
        for (int k = 0; k < n->nin; k++)
            if (!IR_REF_IS_GLOBAL(n->in[k])) n->in[k] = newid[n->in[k]];
        for (int r = 0; r < n->nout; r++) {
            vals[nv] = p->values[n->out[r]];
            vals[nv].node = i;
            newid[n->out[r]] = nv;
            n->out[r] = nv++;
        }
    }
    memcpy(p->values, vals, sizeof(ir_value) * (size_t)nv);
    free(vals);
    free(newid);
}

static void tag_bucket(ir_module *m, ir_node *n, int b) {
    ir_attr *a = ax_arena_alloc(m->arena, sizeof *a * (size_t)(n->nattrs + 1));
    if (n->nattrs) memcpy(a, n->attrs, sizeof *a * (size_t)n->nattrs);
    a[n->nattrs] = ir_ai(ax_arena_strdup(m->arena, "bucket"), b);
    n->attrs = a;
    n->nattrs++;
}

static int bucket_program(ir_module *m, ir_program *p, const pass_bucket_cfg *c, const char *ax, ax_diag *d) {
    const ir_program *ms = ir_program_find(m, "micro_step");
    int is_micro = p == ms;
    int n = p->nnodes, nc = 0;
    cand *cs = malloc(sizeof *cs * ((size_t)n + 1));
    int64_t *prod = malloc(sizeof(int64_t) * ((size_t)m->nglobals + 1)); /* backward position of each gradient */
    for (int g = 0; g < m->nglobals; g++) prod[g] = -1;
    for (int i = 0; ms && i < ms->nnodes; i++) {
        const ir_node *x = &ms->nodes[i];
        if ((x->op == IR_OP_acc || x->op == IR_OP_store) && is_grad(m, x->in[0])) prod[IR_REF_GLOBAL(x->in[0])] = i;
    }
    for (int i = 0; i < n; i++) {
        int g = grad_reduced(m, p, i, ax);
        if (g < 0) continue;
        const ir_node *x = &p->nodes[i];
        const ir_type *t = ir_ref_type(m, p, x->in[0]);
        cand *k = &cs[nc++];
        k->node = i;
        k->grad = g;
        k->order = is_micro ? i : prod[g] >= 0 ? prod[g] : ((int64_t)1 << 40) + i;
        k->bytes = ir_type_bytes(t);
        k->size = c->by == PASS_BUCKET_ELEMS ? ir_type_numel(t) : k->bytes;
        k->key = (int)t->dtype + IR_NDTYPE * (x->op == IR_OP_all_reduce) +
                 2 * IR_NDTYPE * (c->by == PASS_BUCKET_UNIT ? grad_unit(m->globals[g].name) : 0);
    }
    if (!nc) goto out;
    qsort(cs, (size_t)nc, sizeof *cs, cmp_cand);
    int64_t *sizes = malloc(sizeof(int64_t) * (size_t)nc);
    int *keys = malloc(sizeof(int) * (size_t)nc), *bk = malloc(sizeof(int) * (size_t)nc);
    for (int i = 0; i < nc; i++) sizes[i] = cs[i].size, keys[i] = cs[i].key;
    int nb = pass_bucket_assign(sizes, keys, nc, c->by == PASS_BUCKET_UNIT ? 0 : c->cap, bk);
    for (int i = 0; i < nc; i++) cs[i].bucket = bk[i];
    free(sizes);
    free(keys);
    free(bk);

    /* Bucket b runs after node run[b] = its last member, or later: buckets
     * run in bucket order (opt_step reads the gradients in global order but
     * reduces them in backward order). Uses of a member's result up to
     * there move behind the bucket. */
    int *run = malloc(sizeof(int) * (size_t)nb), *first = malloc(sizeof(int) * (size_t)nb);
    int64_t *bsize = calloc((size_t)nb, sizeof *bsize);
    for (int b = 0; b < nb; b++) run[b] = -1, first[b] = n;
    int *use = malloc(sizeof(int) * (size_t)n);
    int *moved = malloc(sizeof(int) * (size_t)n), *ord = malloc(sizeof(int) * (size_t)n), *pos = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) use[i] = moved[i] = -1;
    for (int i = 0; i < nc; i++) {
        int b = cs[i].bucket;
        if (cs[i].node > run[b]) run[b] = cs[i].node;
        if (cs[i].node < first[b]) first[b] = cs[i].node;
        moved[cs[i].node] = b;
        bsize[b] += c->by == PASS_BUCKET_UNIT ? cs[i].bytes : cs[i].size;
    }
    for (int b = 1; b < nb; b++)
        if (run[b] < run[b - 1]) run[b] = run[b - 1];
    /* nodes up to run[b] that read what moved (members' results, and so
     * on: e.g. an all_reduce over sp after the one over dp, then the store)
     * move with bucket b */
    int ok = 1;
    for (int b = 0; b < nb && ok; b++)
        for (int j = first[b] + 1; j <= run[b] && ok; j++)
            for (int k = 0; k < p->nodes[j].nin && ok; k++) {
                int32_t v = p->nodes[j].in[k];
                if (IR_REF_IS_GLOBAL(v) || moved[p->values[v].node] != b || (use[j] == b)) continue;
                if (moved[j] >= 0) ok = 0; /* a member, or a use of two buckets */
                use[j] = moved[j] = b;
            }
    int at = 0, nextb = 0;
    for (int i = 0; i < n && ok; i++) {
        if (moved[i] < 0) ord[at++] = i;
        for (; nextb < nb && run[nextb] == i; nextb++) {
            for (int k = 0; k < nc; k++)
                if (cs[k].bucket == nextb) ord[at++] = cs[k].node;
            for (int j = first[nextb]; j <= i; j++)
                if (use[j] == nextb) ord[at++] = j;
        }
    }
    if (ok && at == n) {
        for (int k = 0; k < n; k++) pos[ord[k]] = k;
        ok = order_ok(m, p, pos, moved);
    } else {
        ok = 0;
    }
    if (!ok) {
        ax_warn(d, "shard", "gradient buckets: %s: grouping its gradient reductions would reorder dependent nodes; "
                "left one collective per gradient", p->name);
    } else {
        ir_node *nn = malloc(sizeof *nn * ((size_t)n + 1));
        for (int k = 0; k < n; k++) nn[k] = p->nodes[ord[k]];
        memcpy(p->nodes, nn, sizeof *nn * (size_t)n);
        free(nn);
        for (int i = 0; i < nc; i++) tag_bucket(m, &p->nodes[pos[cs[i].node]], cs[i].bucket);
        renumber_values(p);
        char key[128];
        snprintf(key, sizeof key, "grad_buckets.%s", p->name);
        ir_module_set_attr(m, ir_aints(key, nb, bsize));
    }
    free(run);
    free(first);
    free(bsize);
    free(use);
    free(moved);
    free(ord);
    free(pos);
out:
    free(cs);
    free(prod);
    return 0;
}

int pass_bucket_grads(ir_module *m, const pass_bucket_cfg *c, ax_diag *d) {
    if (c->by == PASS_BUCKET_OFF || (c->by != PASS_BUCKET_UNIT && c->cap <= 0)) return 0;
    int dp = ir_mesh_find(m, "dp");
    if (dp < 0 || m->mesh_sizes[dp] == 1) return 0; /* nothing crosses ranks */
    static const char *const by[] = {"off", "bytes", "elements", "unit"};
    ir_module_set_attr(m, ir_as("grad_buckets.by", by[c->by]));
    if (c->by != PASS_BUCKET_UNIT) ir_module_set_attr(m, ir_ai("grad_buckets.cap", c->cap));
    static const char *const progs[] = {"micro_step", "opt_step"};
    for (size_t i = 0; i < AX_ARRAY_LEN(progs); i++) {
        ir_program *p = ir_program_find(m, progs[i]);
        if (p && bucket_program(m, p, c, m->mesh_names[dp], d) != 0) return -1;
    }
    return 0;
}
