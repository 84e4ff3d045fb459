/* ranks.h — helpers shared by the multi-rank unit tests (test_ranks.c,
 * test_fuse.c): static functions, included by each test. */
#ifndef TESTS_RANKS_H
#define TESTS_RANKS_H

#include "runtime/launch.h"
#include "runtime/train.h"

#include <stdlib.h>
#include <string.h>

/* The start of a rank's thread: parse the plan text, open a session on
 * it, attach the rank's communicator, initialise the weights. *m is the
 * module (NULL if the text did not parse); 1 if all of it worked. */
static int rank_open(const char *text, rt_comm *c, ir_module **m, rt_session *s, rt_rank_coll *rc, ax_diag *d) {
    *m = ir_parse(text, strlen(text), "plan", d);
    return *m && rt_session_from_module(*m, s, d) == 0 && rt_attach_comm(s, c, rc, d) == 0 &&
           rt_session_init_weights(s, NULL, d) == 0;
}

/* Every param of s, whole (sharded blocks gathered over their axis), in
 * global order, into *params / *nparams on rank 0. Every rank must call it
 * (each joins every gather). 1 if all gathers succeeded. */
static int gather_params(rt_session *s, rt_rank_coll *rc, rt_comm *c, float **params, int64_t *nparams) {
    int nr = rt_comm_size(c), ok = 1;
    int64_t off = 0;
    for (int g = 0; ok && g < s->m->nglobals; g++) {
        const ir_global *G = &s->m->globals[g];
        if (G->role != IR_ROLE_PARAM) continue;
        rt_buf *b = &s->st.globals[g];
        int64_t full = ir_type_numel(&G->type);
        float *tmp = malloc(sizeof(float) * (size_t)(b->numel * nr));
        if (G->type.shard.axis >= 0 && nr > 1) ok = rt_comm_all_gather_f32(rc->axis[G->type.shard.axis], rt_f(b), tmp, b->numel) == 0;
        else memcpy(tmp, b->data, sizeof(float) * (size_t)full);
        if (rt_comm_rank(c) == 0 && ok) {
            *params = realloc(*params, sizeof(float) * (size_t)(off + full));
            memcpy(*params + off, tmp, sizeof(float) * (size_t)full);
        }
        off += full;
        free(tmp);
    }
    if (rt_comm_rank(c) == 0) *nparams = off;
    return ok;
}

/* The end of a rank's thread: on failure print why and abort the job (so
 * the other ranks do not wait), then close what was opened. 0 or 1. */
static int rank_done(int ok, int *failed, ax_diag *d, rt_comm *c, int opened, rt_rank_coll *rc, rt_session *s) {
    if (!ok) {
        *failed = 1;
        ax_diag_print(d, stderr);
        rt_comm_abort(c, "rank failed");
    }
    if (opened) {
        rt_detach_comm(rc);
        rt_session_close(s);
    }
    ax_diag_free(d);
    return ok ? 0 : 1;
}

#endif
