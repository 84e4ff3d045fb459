/* rewrite.c — see rewrite.h. */
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

void rw_begin(rw *r, ir_module *m, ir_program *p, ax_diag *d) {
    memset(r, 0, sizeof *r);
    r->m = m;
    r->p = p;
    r->np.name = p->name;
    r->map = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    for (int i = 0; i < p->nvalues; i++) r->map[i] = -1;
    ir_builder_init(&r->b, m, &r->np, d);
}

int32_t rw_ref(rw *r, int32_t ref) { return IR_REF_IS_GLOBAL(ref) ? ref : r->map[ref]; }

void rw_emit(rw *r, const ir_node *n, const int32_t *in_over, const ir_attr *attrs, int nattrs, const ir_type *types) {
    if (r->b.failed) return;
    int32_t in[IR_MAX_IN], out[8];
    ir_type tys[8];
    ir_role roles[8];
    for (int k = 0; k < n->nin; k++) in[k] = in_over ? in_over[k] : rw_ref(r, n->in[k]);
    for (int k = 0; k < n->nout; k++) {
        tys[k] = types ? types[k] : r->p->values[n->out[k]].type;
        roles[k] = r->p->values[n->out[k]].role;
    }
    int typed = (ir_ops[n->op].flags & IR_F_TYPED) != 0;
    if (!attrs) attrs = n->attrs, nattrs = n->nattrs;
    if (ir_node_add(r->m, &r->np, n->op, in, n->nin, attrs, nattrs, typed ? tys : NULL, roles, out, r->b.d) < 0) {
        r->b.failed = 1;
        return;
    }
    for (int k = 0; k < n->nout; k++) r->map[n->out[k]] = out[k];
}

int rw_end(rw *r) {
    free(r->map);
    r->map = NULL;
    if (r->b.failed) {
        free(r->np.nodes);
        free(r->np.values);
        return -1;
    }
    free(r->p->nodes);
    free(r->p->values);
    r->p->nodes = r->np.nodes;
    r->p->nnodes = r->np.nnodes;
    r->p->capn = r->np.capn;
    r->p->values = r->np.values;
    r->p->nvalues = r->np.nvalues;
    r->p->capv = r->np.capv;
    return 0;
}
