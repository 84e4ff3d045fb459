/* rewrite.h — rebuilding a program node by node (passes-internal).
 *
 * A pass that inserts nodes walks the old program and re-emits each node
 * into a new one, mapping old value ids to new ones; rw_end swaps the new
 * program in. Result types are inferred again from the (possibly new)
 * operands, so a pass that changes an input's type gets every dependent
 * type recomputed and checked by the shape rules.
 */
#ifndef PASSES_REWRITE_H
#define PASSES_REWRITE_H

#include "ir/ir.h"

typedef struct rw {
    ir_module *m;
    ir_program *p;  /* the program being rewritten */
    ir_program np;  /* the new one */
    int32_t *map;   /* old value id -> new value id (-1: not emitted) */
    ir_builder b;   /* emits into np; b.failed after the first error */
} rw;

void rw_begin(rw *r, ir_module *m, ir_program *p, ax_diag *d);
/* The new ref for an old operand ref (globals are unchanged). */
int32_t rw_ref(rw *r, int32_t ref);
/* Re-emits old node n with operands in_over (NULL: the mapped originals),
 * attrs (NULL: n's) and, for typed ops, result types types (NULL: n's). */
void rw_emit(rw *r, const ir_node *n, const int32_t *in_over, const ir_attr *attrs, int nattrs, const ir_type *types);
/* Swaps the new program in (0), or drops it after an error (-1). */
int rw_end(rw *r);

#endif
