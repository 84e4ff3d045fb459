/* place.c — where globals live and nodes run (host or device memory).
 *
 * A global lives in device memory unless it has place="host"; a node runs
 * on the device unless it has on="host". A value lives where its node ran,
 * except the copies: to_host's result is in host memory, to_device's in
 * device memory (a copy is issued by the device's copy engine and has no
 * `on`). ir_verify enforces that a node touches only its own memory. */
#include "ir/ir.h"

#include <string.h>

static int is_host(const ir_attr *a, int n, const char *key) {
    const ir_attr *x = ir_attr_find(a, n, key);
    return x && x->kind == IR_ATTR_STR && x->s && !strcmp(x->s, "host");
}

int ir_global_on_host(const ir_global *g) { return is_host(g->attrs, g->nattrs, "place"); }

int ir_node_on_host(const ir_node *n) {
    if (n->op == IR_OP_to_host || n->op == IR_OP_to_device) return 0;
    return is_host(n->attrs, n->nattrs, "on");
}

int ir_value_on_host(const ir_program *p, int32_t v) {
    const ir_node *n = &p->nodes[p->values[v].node];
    if (n->op == IR_OP_to_host) return 1;
    if (n->op == IR_OP_to_device) return 0;
    return ir_node_on_host(n);
}

int ir_ref_on_host(const ir_module *m, const ir_program *p, int32_t ref) {
    return IR_REF_IS_GLOBAL(ref) ? ir_global_on_host(&m->globals[IR_REF_GLOBAL(ref)]) : ir_value_on_host(p, ref);
}
