/* launch.c — local multi-rank execution (see launch.h). */
#include "runtime/launch.h"

#include <string.h>

static int c_all_reduce(void *ctx, int axis, float *buf, int64_t n) {
    rt_rank_coll *rc = ctx;
    return rt_comm_all_reduce_sum_f32(rc->axis[axis], buf, n);
}
static int c_all_gather(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    rt_rank_coll *rc = ctx;
    return rt_comm_all_gather_f32(rc->axis[axis], send, recv, n);
}
static int c_reduce_scatter(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    rt_rank_coll *rc = ctx;
    return rt_comm_reduce_scatter_sum_f32(rc->axis[axis], send, recv, n);
}

/* Sends are buffered (comm.h), so every rank may send first. */
static int c_ring_shift(void *ctx, int axis, const float *send, float *recv, int64_t n) {
    rt_rank_coll *rc = ctx;
    rt_comm *c = rc->axis[axis];
    int r = rt_comm_rank(c), p = rt_comm_size(c);
    int e = rt_comm_send_f32(c, send, n, (r + 1) % p);
    return e ? e : rt_comm_recv_f32(c, recv, n, (r + p - 1) % p);
}

int rt_plan_world_size(const rt_session *s) {
    int64_t w = 1;
    for (int a = 0; a < s->m->nmesh; a++) w *= s->m->mesh_sizes[a];
    return (int)w;
}

int rt_attach_comm(rt_session *s, rt_comm *world, rt_rank_coll *rc, ax_diag *d) {
    memset(rc, 0, sizeof *rc);
    const ir_module *m = s->m;
    int dims[IR_MAX_MESH];
    for (int a = 0; a < m->nmesh; a++) dims[a] = (int)m->mesh_sizes[a];
    if (rt_comm_size(world) != rt_plan_world_size(s)) {
        ax_error(d, "axorun", "the plan is for %d ranks but %d ranks are running", rt_plan_world_size(s), rt_comm_size(world));
        return -1;
    }
    int r = rt_comm_rank(world);
    for (int a = m->nmesh - 1; a >= 0; a--) { /* row-major coordinates */
        s->st.coord[a] = r % dims[a];
        r /= dims[a];
    }
    for (int a = 0; a < m->nmesh; a++)
        if (rt_comm_split_axis(world, m->nmesh, dims, a, &rc->axis[a]) != 0) {
            ax_error(d, "axorun", "cannot build the communicator of mesh axis %s: %s", m->mesh_names[a], rt_comm_error(world));
            rt_detach_comm(rc);
            return -1;
        }
    rc->coll = (rt_collectives){.ctx = rc, .all_reduce = c_all_reduce, .all_gather = c_all_gather,
                                .reduce_scatter = c_reduce_scatter, .ring_shift = c_ring_shift};
    s->st.coll = &rc->coll;
    return 0;
}

void rt_detach_comm(rt_rank_coll *rc) {
    for (int a = 0; a < IR_MAX_MESH; a++) rt_comm_destroy(rc->axis[a]);
    memset(rc, 0, sizeof *rc);
}

typedef struct job {
    const char *plan;
    const rt_train_opts *o;
    ax_diag *diags; /* one per rank */
} job;

static int rank_main(rt_comm *c, void *arg) {
    job *j = arg;
    int r = rt_comm_rank(c);
    ax_diag *d = &j->diags[r];
    rt_session s;
    rt_rank_coll rc = {0};
    int rc_ = rt_session_open(j->plan, &s, d);
    /* every rank opens the same plan; if one cannot, all abort */
    if (!rc_) rc_ = rt_attach_comm(&s, c, &rc, d);
    if (!rc_) rc_ = rt_session_init_weights(&s, NULL, d);
    if (!rc_ && j->o->attach) rc_ = j->o->attach(&s, j->o->attach_ctx, d);
    if (!rc_) rc_ = rt_train(&s, j->o, d);
    if (rc_) rt_comm_abort(c, "a rank failed");
    rt_detach_comm(&rc);
    rt_session_close(&s);
    return rc_;
}

int rt_train_local(const char *plan_path, int nranks, const rt_train_opts *o, ax_diag *d) {
    job j = {.plan = plan_path, .o = o, .diags = calloc((size_t)nranks, sizeof(ax_diag))};
    for (int r = 0; r < nranks; r++) ax_diag_init(&j.diags[r]);
    int rc = rt_local_run(nranks, rank_main, &j);
    for (int r = 0; r < nranks; r++) {
        for (int i = 0; i < j.diags[r].n; i++) {
            const ax_diag_entry *e = &j.diags[r].entries[i];
            if (r > 0 && strstr(e->msg, "aborted")) continue; /* echoes of rank 0's failure */
            if (nranks > 1)
                ax_diag_add(d, e->sev, e->where, "rank %d: %s", r, e->msg);
            else
                ax_diag_add(d, e->sev, e->where, "%s", e->msg);
        }
        ax_diag_free(&j.diags[r]);
    }
    free(j.diags);
    return rc ? -1 : 0;
}
