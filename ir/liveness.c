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

int64_t ir_arena_plan(const ir_module *m, const ir_program *p, ir_arena_keep_fn keep, void *ctx, int64_t *offsets,
                      int64_t *role_peak) {
    int32_t *last = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    blk *live = malloc(sizeof(blk) * ((size_t)p->nvalues + 1));
    if (!last || !live) abort();
    ir_last_uses(p, last);
    int nlive = 0;
    int64_t peak = 0, cur_role[IR_NROLE] = {0};
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        for (int r = 0; r < n->nout; r++) { /* allocate results (inputs of the node are still live) */
            int32_t v = n->out[r];
            if (keep && !keep(p, v, ctx)) continue;
            int64_t size = (ir_local_bytes(m, &p->values[v].type) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN;
            int64_t off = 0;
            int pos = 0;
            for (; pos < nlive; pos++) { /* live is sorted by offset */
                if (live[pos].off - off >= size) break;
                off = live[pos].off + live[pos].size;
            }
            memmove(&live[pos + 1], &live[pos], sizeof(blk) * (size_t)(nlive - pos));
            live[pos] = (blk){off, size, v};
            nlive++;
            offsets[v] = off;
            if (off + size > peak) peak = off + size;
            ir_role role = p->values[v].role;
            cur_role[role] += size;
            if (role_peak && cur_role[role] > role_peak[role]) role_peak[role] = cur_role[role];
        }
        for (int j = 0; j < nlive;) { /* release values whose last use was this node */
            if (last[live[j].v] <= i) {
                cur_role[p->values[live[j].v].role] -= live[j].size;
                memmove(&live[j], &live[j + 1], sizeof(blk) * (size_t)(nlive - j - 1));
                nlive--;
            } else {
                j++;
            }
        }
    }
    free(live);
    free(last);
    return peak;
}
