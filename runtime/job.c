/* job.c — one rank of a multi-process job (see job.h). */
#include "runtime/job.h"

#include "runtime/comm_nccl.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* The communicators' own failure messages, which the executors' "collective
 * failed" does not carry. */
static void comm_errors(rt_comm *world, const rt_rank_coll *rc, ax_diag *d) {
    rt_comm *cs[IR_MAX_MESH + 1] = {world};
    for (int a = 0; a < IR_MAX_MESH; a++) cs[a + 1] = rc->axis[a];
    for (int i = 0; i <= IR_MAX_MESH; i++) {
        if (!cs[i] || !rt_comm_error(cs[i])[0] || ax_diag_contains(d, rt_comm_error(cs[i]))) continue;
        ax_error(d, rt_comm_backend(cs[i]), "%s", rt_comm_error(cs[i]));
    }
}

int rt_train_rank(const char *plan_path, rt_comm *world, const rt_train_opts *o, rt_comm_ready_fn ready,
                  void *ready_ctx, ax_diag *d) {
    rt_session s;
    rt_rank_coll rc;
    memset(&rc, 0, sizeof rc);
    int r = rt_session_open(plan_path, &s, d);
    if (!r) r = rt_attach_comm(&s, world, &rc, d);
    for (int a = 0; !r && a < s.m->nmesh; a++) {
        char label[64];
        snprintf(label, sizeof label, "axis %s", s.m->mesh_names[a]);
        rt_nccl_set_label(rc.axis[a], label);
    }
    if (!r && ready) r = ready(&rc, ready_ctx, d);
    if (!r) r = rt_session_init_weights(&s, NULL, d);
    if (!r && o->attach) r = o->attach(&s, o->attach_ctx, d);
    if (!r) r = rt_train(&s, o, d);
    if (r) {
        comm_errors(world, &rc, d);
        rt_comm_abort(world, "this rank failed");
    }
    rt_detach_comm(&rc);
    rt_session_close(&s);
    return r ? -1 : 0;
}

static int made_up_id(void *ctx, unsigned char id[RT_NCCL_ID_BYTES]) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    unsigned long long x = (unsigned long long)t.tv_nsec ^ (unsigned long long)getpid() << 32;
    for (int i = 0; i < RT_NCCL_ID_BYTES; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        id[i] = (unsigned char)(x >> 56);
    }
    return 0;
}

int rt_fake_rank(const rt_launch_env *e, double timeout_s, char *out, size_t cap, ax_diag *d) {
    rt_nccl_api api = {.name = "fake", .get_unique_id = made_up_id};
    unsigned char id[RT_NCCL_ID_BYTES] = {0};
    if (rt_nccl_share_id(&api, e, id, timeout_s, d) != 0) return -1;
    snprintf(out, cap, "fake rank %d of %d (%s, local rank %d): id %02x%02x%02x%02x%02x%02x%02x%02x", e->rank,
             e->world_size, e->launcher, e->local_rank, id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]);
    return 0;
}
