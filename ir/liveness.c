/* liveness.c — lifetimes and first-fit arena offsets (see liveness.h). */
#include "ir/liveness.h"

#include <stdlib.h>
#include <string.h>

int64_t ir_local_bytes(const ir_module *m, const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i];
        if (t->shard.axis >= 0 && t->shard.dim == i) d = (d + m->mesh_sizes[t->shard.axis] - 1) / m->mesh_sizes[t->shard.axis];
        n *= d;
    }
    return (n * ir_dtype_bits(t->dtype) + 7) / 8;
}

void ir_last_uses(const ir_program *p, int32_t *last) {
    for (int v = 0; v < p->nvalues; v++) last[v] = p->values[v].node; /* dead values die where born */
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++)
            if (!IR_REF_IS_GLOBAL(p->nodes[i].in[k])) last[p->nodes[i].in[k]] = i;
}

typedef struct blk {
    int64_t off, size;
    int32_t v;
} blk;

/* ---- happens-before across streams ---------------------------------------
 * Node attr stream (0..IR_NSTREAMS-1, default 0) and wait (node indices)
 * are the schedule pass's. Vector clocks: hb[i*S + s] = the latest node of
 * stream s that happens before (or is) node i, -1 if none: node a happens
 * before node i iff hb[i*S + stream(a)] >= a. */
#define S_N IR_NSTREAMS

static int node_stream(const ir_node *n) {
    int64_t s = ir_attr_int(n->attrs, n->nattrs, "stream", 0);
    return s < 0 || s >= S_N ? 0 : (int)s;
}

static void hb_clocks(const ir_program *p, int32_t *hb) {
    int32_t lastof[S_N];
    for (int s = 0; s < S_N; s++) lastof[s] = -1;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int st = node_stream(n);
        int32_t *c = hb + (size_t)i * S_N;
        for (int s = 0; s < S_N; s++) c[s] = lastof[st] >= 0 ? hb[(size_t)lastof[st] * S_N + s] : -1;
        const ir_attr *w = NULL;
        for (int a = 0; a < n->nattrs; a++)
            if (!strcmp(n->attrs[a].key, "wait") && n->attrs[a].kind == IR_ATTR_INTS) w = &n->attrs[a];
        for (int k = 0; w && k < w->n; k++) {
            int64_t j = w->ints[k];
            if (j < 0 || j >= i) continue; /* the verifier refuses these; stay safe */
            for (int s = 0; s < S_N; s++)
                if (hb[(size_t)j * S_N + s] > c[s]) c[s] = hb[(size_t)j * S_N + s];
        }
        c[st] = i;
        lastof[st] = i;
    }
}

void ir_happens_before(const ir_program *p, int32_t *hb) { hb_clocks(p, hb); }

/* acc[v*S + s]: the last node of stream s that touches value v (its
 * producer or a reader), -1 if none. */
static void value_access(const ir_program *p, int32_t *acc) {
    for (size_t i = 0; i < (size_t)p->nvalues * S_N; i++) acc[i] = -1;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int st = node_stream(n);
        for (int r = 0; r < n->nout; r++) acc[(size_t)n->out[r] * S_N + st] = i;
        for (int k = 0; k < n->nin; k++)
            if (!IR_REF_IS_GLOBAL(n->in[k])) acc[(size_t)n->in[k] * S_N + st] = i;
    }
}

/* Has every access of v (acc row a) happened before the node with clock c? */
static int all_before(const int32_t *a, const int32_t *c) {
    for (int s = 0; s < S_N; s++)
        if (a[s] > c[s]) return 0;
    return 1;
}

int64_t ir_arena_plan(const ir_module *m, const ir_program *p, ir_arena_keep_fn keep, void *ctx, int64_t *offsets,
                      int64_t *role_peak) {
    size_t nv = (size_t)p->nvalues + 1, nn = (size_t)p->nnodes + 1;
    int32_t *last = malloc(sizeof(int32_t) * nv);
    blk *live = malloc(sizeof(blk) * nv), *pend = malloc(sizeof(blk) * nv), *obst = malloc(sizeof(blk) * 2 * nv);
    int32_t *hb = malloc(sizeof(int32_t) * nn * S_N), *acc = malloc(sizeof(int32_t) * nv * S_N);
    if (!last || !live || !pend || !obst || !hb || !acc) abort();
    ir_last_uses(p, last);
    hb_clocks(p, hb);
    value_access(p, acc);
    /* the streams the program uses: a freed block is free for good once
     * every one of them has synchronised with all its accesses */
    int used[S_N] = {0};
    int32_t lastof[S_N];
    for (int s = 0; s < S_N; s++) lastof[s] = -1;
    for (int i = 0; i < p->nnodes; i++) used[node_stream(&p->nodes[i])] = 1;
    int nlive = 0, npend = 0;
    int64_t peak = 0, cur_role[IR_NROLE] = {0};
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        const int32_t *ci = hb + (size_t)i * S_N;
        lastof[node_stream(n)] = i;
        /* obstacles: live blocks, and released blocks some access of whose
         * value may still be in flight on another stream when node i runs */
        int nob = 0;
        for (int j = 0, k = 0; j < nlive || k < npend;) {
            int take_pend = k < npend && (j >= nlive || pend[k].off < live[j].off);
            if (take_pend) {
                if (!all_before(acc + (size_t)pend[k].v * S_N, ci)) obst[nob++] = pend[k];
                k++;
            } else {
                obst[nob++] = live[j++];
            }
        }
        for (int r = 0; r < n->nout; r++) { /* allocate results (inputs of the node are still live) */
            int32_t v = n->out[r];
            if (keep && !keep(p, v, ctx)) continue;
            int64_t size = (ir_local_bytes(m, &p->values[v].type) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN;
            int64_t off = 0;
            int pos = 0;
            for (; pos < nob; pos++) { /* obstacles sorted by offset (they may overlap: take the furthest end) */
                if (obst[pos].off - off >= size) break;
                if (obst[pos].off + obst[pos].size > off) off = obst[pos].off + obst[pos].size;
            }
            memmove(&obst[pos + 1], &obst[pos], sizeof(blk) * (size_t)(nob - pos));
            obst[pos] = (blk){off, size, v};
            nob++;
            int lp = 0;
            while (lp < nlive && live[lp].off < off) lp++;
            memmove(&live[lp + 1], &live[lp], sizeof(blk) * (size_t)(nlive - lp));
            live[lp] = (blk){off, size, v};
            nlive++;
            offsets[v] = off;
            if (off + size > peak) peak = off + size;
            ir_role role = p->values[v].role;
            cur_role[role] += size;
            if (role_peak && cur_role[role] > role_peak[role]) role_peak[role] = cur_role[role];
        }
        for (int j = 0; j < nlive;) { /* release values whose last use was this node */
            if (last[live[j].v] <= i) {
                blk b = live[j];
                cur_role[p->values[b.v].role] -= b.size;
                memmove(&live[j], &live[j + 1], sizeof(blk) * (size_t)(nlive - j - 1));
                nlive--;
                int k = 0;
                while (k < npend && pend[k].off < b.off) k++;
                memmove(&pend[k + 1], &pend[k], sizeof(blk) * (size_t)(npend - k));
                pend[k] = b;
                npend++;
            } else {
                j++;
            }
        }
        for (int k = 0; k < npend;) { /* free for good: every stream in use is past all its accesses */
            int done = 1;
            for (int s = 0; s < S_N && done; s++)
                if (used[s]) done = lastof[s] >= 0 && all_before(acc + (size_t)pend[k].v * S_N, hb + (size_t)lastof[s] * S_N);
            if (done) {
                memmove(&pend[k], &pend[k + 1], sizeof(blk) * (size_t)(npend - k - 1));
                npend--;
            } else {
                k++;
            }
        }
    }
    free(acc);
    free(hb);
    free(obst);
    free(pend);
    free(live);
    free(last);
    return peak;
}
