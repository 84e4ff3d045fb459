/* comm_local.c — the `local` communication backend: N ranks as threads of
 * one process, collectives through shared memory (see comm.h).
 *
 * Synchronisation. One mutex and one condition variable per world guard
 * everything shared (slots, mailboxes, the abort state). A group (the
 * world, or one split from it) has one slot per member. A member passes
 * barrier number k by setting its slot's tick to k and waiting until every
 * member's tick is >= k; a member cannot reach k+1 before all reached k,
 * so ticks never differ by more than one and "tick < k" names exactly the
 * members that have not arrived (for the timeout message).
 *
 * A collective is:
 *   1. deposit (op, count, root, buffer pointers) in the slot; barrier.
 *      The member arriving last checks that all slots describe the same
 *      call and records the verdict, which every member reads: on a
 *      mismatch all fail before touching any buffer.
 *   2. outside the lock, each member reads the others' buffers through
 *      their slots and writes only its own; barrier(s) in between where a
 *      member reads what another wrote in this call;
 *   3. a final barrier, so no member reuses its buffers (or its slot)
 *      while another still reads them.
 * Sums: member m owns elements [n*m/size, n*(m+1)/size) and accumulates
 * each of them over the members' buffers in member order 0..size-1; then
 * every member copies the owners' results. Hence bit-identical results on
 * every rank, independent of timing: all_reduce = reduce-scatter of the
 * owned slices + all-gather.
 *
 * Point-to-point: a send copies its data into the (sender, receiver)
 * mailbox, a FIFO, and returns; a recv waits for the head message.
 *
 * Any failure that leaves the group inconsistent (timeout, a mismatched
 * recv, a rank exiting while others wait for it) aborts the whole world,
 * so no rank waits for a partner that will never come.
 */
#include "runtime/comm.h"
#include "runtime/cpu_kernels.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

enum lop {
    OP_BARRIER,
    OP_ALL_REDUCE_F32,
    OP_ALL_REDUCE_F64,
    OP_ALL_GATHER_F32,
    OP_REDUCE_SCATTER_F32,
    OP_BROADCAST_F32,
    OP_SPLIT,
};
static const char *const op_name[] = {
    "barrier", "all_reduce_sum_f32", "all_reduce_sum_f64", "all_gather_f32",
    "reduce_scatter_sum_f32", "broadcast_f32", "split",
};

typedef struct lgroup lgroup;

typedef struct slot {
    uint64_t tick;
    int op;
    int64_t n;
    int root;
    const void *send;
    void *recv;
    int color, key; /* split */
    lgroup *made;   /* split: the group this member (its color's leader) created */
    char bad[128];  /* this member's argument error, "" if none */
} slot;

typedef struct msg {
    struct msg *next;
    int64_t n;
    float data[];
} msg;

struct lgroup {
    rt_local_world *w;
    int n;
    int *wrank; /* member -> world rank */
    slot *slots;
    msg **head, **tail; /* mailbox [src * n + dst] */
    /* verdict of the last completed first barrier of a collective */
    uint64_t verdict_tick;
    int verdict_rc;
    char verdict_msg[384];
    lgroup *next;
};

typedef struct lcomm {
    rt_comm base; /* first: the rt_comm handed out */
    lgroup *g;
    uint64_t tick; /* barriers this member has passed */
    int owned_by_world;
    struct lcomm *next;
} lcomm;

struct rt_local_world {
    int n;
    double timeout_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int aborted;
    char abort_msg[RT_COMM_ERR_CAP];
    int *exited;  /* world rank -> fn returned (rt_local_world_run) */
    lgroup *groups;
    lcomm *comms; /* every handle, freed with the world */
    lcomm **world_comms;
};

static const rt_comm_ops local_ops;

/* ---- small helpers ---------------------------------------------------- */

static struct timespec deadline_after(double s) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double whole = (double)(int64_t)s;
    t.tv_sec += (time_t)whole;
    t.tv_nsec += (long)((s - whole) * 1e9);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int wrank_of(const lcomm *c) { return c->g->wrank[c->base.rank]; }

/* "world (4 ranks)" or "group {1,3} (2 of 4 ranks)" (world ranks). */
static void group_desc(const lgroup *g, char *out, size_t cap) {
    if (g == g->w->world_comms[0]->g) {
        snprintf(out, cap, "world (%d rank%s)", g->n, g->n == 1 ? "" : "s");
        return;
    }
    size_t len = (size_t)snprintf(out, cap, "group {");
    for (int i = 0; i < g->n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%d", i ? "," : "", g->wrank[i]);
    if (len < cap) snprintf(out + len, cap - len, "} (%d of %d ranks)", g->n, g->w->n);
}

/* Member m named for messages: "rank 3" in the world, "rank 1 (world rank 3)" in a sub-group. */
static int member_desc(const lgroup *g, int m, char *out, size_t cap) {
    if (g == g->w->world_comms[0]->g) return snprintf(out, cap, "rank %d", m);
    return snprintf(out, cap, "rank %d (world rank %d)", m, g->wrank[m]);
}

/* c->err = "rank R: <what> on <group>: <fmt...>". Returns rc. */
static int failv(lcomm *c, int rc, const char *what, const char *fmt, va_list ap) {
    char gd[192];
    group_desc(c->g, gd, sizeof gd);
    int len = snprintf(c->base.err, sizeof c->base.err, "rank %d: %s on %s: ", wrank_of(c), what, gd);
    if (len >= 0 && (size_t)len < sizeof c->base.err) vsnprintf(c->base.err + len, sizeof c->base.err - (size_t)len, fmt, ap);
    return rc;
}

AX_PRINTF(4, 5) static int fail(lcomm *c, int rc, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    failv(c, rc, what, fmt, ap);
    va_end(ap);
    return rc;
}

/* With w->mu held. */
static void abort_locked(rt_local_world *w, const char *msg) {
    if (w->aborted) return;
    w->aborted = 1;
    snprintf(w->abort_msg, sizeof w->abort_msg, "%s", msg);
    pthread_cond_broadcast(&w->cv);
}

/* Fails c with the world's abort reason. With w->mu held. */
static int fail_aborted(lcomm *c, const char *what) {
    return fail(c, RT_COMM_ERR_ABORTED, what, "aborted: %s", c->g->w->abort_msg);
}

/* ---- the barrier ------------------------------------------------------ */

/* The last member to arrive at a collective's first barrier checks that
 * every slot describes the same call. With w->mu held; every member's
 * tick is exactly k here. */
static void judge(lgroup *g, uint64_t k) {
    g->verdict_tick = k;
    g->verdict_rc = 0;
    g->verdict_msg[0] = 0;
    char a[64], b[64];
    for (int m = 0; m < g->n; m++) {
        const slot *s = &g->slots[m];
        if (s->bad[0]) {
            member_desc(g, m, a, sizeof a);
            g->verdict_rc = RT_COMM_ERR_INVALID;
            snprintf(g->verdict_msg, sizeof g->verdict_msg, "invalid arguments on %s: %s", a, s->bad);
            return;
        }
    }
    const slot *s0 = &g->slots[0];
    for (int m = 1; m < g->n; m++) {
        const slot *s = &g->slots[m];
        if (s->op == s0->op && s->n == s0->n && s->root == s0->root) continue;
        member_desc(g, 0, a, sizeof a);
        member_desc(g, m, b, sizeof b);
        g->verdict_rc = RT_COMM_ERR_MISMATCH;
        snprintf(g->verdict_msg, sizeof g->verdict_msg,
                 "ranks disagree: %s called %s(n=%lld, root=%d) but %s called %s(n=%lld, root=%d)", a,
                 op_name[s0->op], (long long)s0->n, s0->root, b, op_name[s->op], (long long)s->n, s->root);
        return;
    }
}

/* Arrives at this member's next barrier and waits for the others. With
 * w->mu held. first: this is a collective's first barrier (judge it). */
static int arrive(lcomm *c, const char *what, int first) {
    lgroup *g = c->g;
    rt_local_world *w = g->w;
    uint64_t k = ++c->tick;
    g->slots[c->base.rank].tick = k;
    pthread_cond_broadcast(&w->cv);
    struct timespec dl = deadline_after(w->timeout_s);
    for (;;) {
        if (w->aborted) return fail_aborted(c, what);
        int missing = 0, gone = -1;
        for (int m = 0; m < g->n; m++)
            if (g->slots[m].tick < k) {
                missing++;
                if (gone < 0 && w->exited[g->wrank[m]]) gone = m;
            }
        if (!missing) {
            /* The first to see barrier k complete is the member whose
             * arrival completed it (same critical section), while every
             * slot still describes this call. */
            if (first && g->verdict_tick != k) judge(g, k);
            break;
        }
        if (gone >= 0) {
            char md[64];
            member_desc(g, gone, md, sizeof md);
            fail(c, RT_COMM_ERR_ABORTED, what, "%s returned without calling it", md);
            abort_locked(w, c->base.err);
            return RT_COMM_ERR_ABORTED;
        }
        int rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
        if (rc == ETIMEDOUT) {
            if (w->aborted) return fail_aborted(c, what);
            char list[256];
            size_t len = 0;
            list[0] = 0;
            missing = 0;
            for (int m = 0; m < g->n; m++) {
                if (g->slots[m].tick >= k) continue;
                char md[64];
                member_desc(g, m, md, sizeof md);
                if (len < sizeof list) len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", missing ? ", " : "", md);
                missing++;
            }
            if (!missing) continue; /* arrived just at the deadline */
            fail(c, RT_COMM_ERR_TIMEOUT, what, "timed out after %g s; not arrived: %s", w->timeout_s, list);
            abort_locked(w, c->base.err);
            return RT_COMM_ERR_TIMEOUT;
        }
    }
    if (first && g->verdict_rc) return fail(c, g->verdict_rc, what, "%s", g->verdict_msg);
    return 0;
}

static int arrive_locked(lcomm *c, const char *what) {
    pthread_mutex_lock(&c->g->w->mu);
    int rc = arrive(c, what, 0);
    pthread_mutex_unlock(&c->g->w->mu);
    return rc;
}

/* Step 1 of every collective: deposit the call in the slot, pass the first
 * barrier, read the verdict. bad: this member's argument error or NULL. */
static int enter(lcomm *c, int op, int64_t n, int root, const void *send, void *recv, const char *bad) {
    rt_local_world *w = c->g->w;
    pthread_mutex_lock(&w->mu);
    slot *s = &c->g->slots[c->base.rank];
    s->op = op;
    s->n = n;
    s->root = root;
    s->send = send;
    s->recv = recv;
    snprintf(s->bad, sizeof s->bad, "%s", bad ? bad : "");
    int rc = w->aborted ? fail_aborted(c, op_name[op]) : arrive(c, op_name[op], 1);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Checks a count and a buffer; writes a message into bad (size 128). */
static const char *check_buf(char *bad, int64_t n, const void *p, const char *name) {
    if (n < 0) snprintf(bad, 128, "negative count %lld", (long long)n);
    else if (n > 0 && !p) snprintf(bad, 128, "%s is NULL for %lld elements", name, (long long)n);
    else return NULL;
    return bad;
}

/* First element of member m's slice of n elements: balanced, the first
 * n % size members hold one more. */
static int64_t slice_lo(int64_t n, int m, int size) {
    int64_t r = n % size;
    return (int64_t)m * (n / size) + (m < r ? m : r);
}

/* ---- collectives ------------------------------------------------------ */

enum { CHUNK = 1024 };

/* dst[i] <- sum over members m, in order, of src_m[off + i], i < len, where
 * src_m = (const T *)slot[m].field. dst may alias this member's source. */
#define SUM_IN_RANK_ORDER(T, g, field, off, len, dst)                              \
    do {                                                                           \
        T acc_[CHUNK];                                                             \
        for (int64_t c0_ = 0; c0_ < (len); c0_ += CHUNK) {                         \
            int64_t nc_ = (len) - c0_ < CHUNK ? (len) - c0_ : CHUNK;               \
            const T *s0_ = (const T *)(g)->slots[0].field + (off) + c0_;           \
            for (int64_t i_ = 0; i_ < nc_; i_++) acc_[i_] = s0_[i_];               \
            for (int m_ = 1; m_ < (g)->n; m_++) {                                  \
                const T *sm_ = (const T *)(g)->slots[m_].field + (off) + c0_;      \
                for (int64_t i_ = 0; i_ < nc_; i_++) acc_[i_] += sm_[i_];          \
            }                                                                      \
            memcpy((dst) + c0_, acc_, (size_t)nc_ * sizeof(T));                    \
        }                                                                          \
    } while (0)

static int all_reduce(lcomm *c, void *buf, int64_t n, int op, size_t esz) {
    char bad[128];
    int rc = enter(c, op, n, 0, buf, buf, check_buf(bad, n, buf, "buf"));
    if (rc) return rc;
    lgroup *g = c->g;
    int me = c->base.rank, size = g->n;
    if (size > 1) {
        int64_t lo = slice_lo(n, me, size), len = slice_lo(n, me + 1, size) - lo;
        if (op == OP_ALL_REDUCE_F32) SUM_IN_RANK_ORDER(float, g, recv, lo, len, (float *)buf + lo);
        else SUM_IN_RANK_ORDER(double, g, recv, lo, len, (double *)buf + lo);
        if ((rc = arrive_locked(c, op_name[op]))) return rc;
        for (int m = 0; m < size; m++) {
            if (m == me) continue;
            int64_t mlo = slice_lo(n, m, size), mlen = slice_lo(n, m + 1, size) - mlo;
            if (mlen)
                memcpy((char *)buf + mlo * esz, (const char *)g->slots[m].recv + mlo * esz, (size_t)mlen * esz);
        }
    }
    return arrive_locked(c, op_name[op]);
}

static int l_all_reduce_sum_f32(rt_comm *rc, float *buf, int64_t n) {
    return all_reduce((lcomm *)rc, buf, n, OP_ALL_REDUCE_F32, sizeof(float));
}

static int l_all_reduce_sum_f64(rt_comm *rc, double *buf, int64_t n) {
    return all_reduce((lcomm *)rc, buf, n, OP_ALL_REDUCE_F64, sizeof(double));
}

static int l_all_gather_f32(rt_comm *base, const float *send, float *recv, int64_t npr) {
    lcomm *c = (lcomm *)base;
    char bad[128];
    const char *b = check_buf(bad, npr, send, "send");
    if (!b) b = check_buf(bad, npr, recv, "recv");
    int rc = enter(c, OP_ALL_GATHER_F32, npr, 0, send, recv, b);
    if (rc) return rc;
    lgroup *g = c->g;
    for (int m = 0; npr && m < g->n; m++) {
        const float *src = g->slots[m].send;
        float *dst = recv + (int64_t)m * npr;
        if (src != dst) memcpy(dst, src, (size_t)npr * sizeof(float));
    }
    return arrive_locked(c, op_name[OP_ALL_GATHER_F32]);
}

static int l_reduce_scatter_sum_f32(rt_comm *base, const float *send, float *recv, int64_t npr) {
    lcomm *c = (lcomm *)base;
    char bad[128];
    const char *b = check_buf(bad, npr, send, "send");
    if (!b) b = check_buf(bad, npr, recv, "recv");
    int rc = enter(c, OP_REDUCE_SCATTER_F32, npr, 0, send, recv, b);
    if (rc) return rc;
    lgroup *g = c->g;
    SUM_IN_RANK_ORDER(float, g, send, (int64_t)c->base.rank * npr, npr, recv);
    return arrive_locked(c, op_name[OP_REDUCE_SCATTER_F32]);
}

static int l_broadcast_f32(rt_comm *base, float *buf, int64_t n, int root) {
    lcomm *c = (lcomm *)base;
    char bad[128];
    const char *b = check_buf(bad, n, buf, "buf");
    if (!b && (root < 0 || root >= c->base.size)) {
        snprintf(bad, sizeof bad, "root %d out of range [0, %d)", root, c->base.size);
        b = bad;
    }
    int rc = enter(c, OP_BROADCAST_F32, n, root, buf, buf, b);
    if (rc) return rc;
    const float *src = c->g->slots[root].send;
    if (c->base.rank != root && n) memcpy(buf, src, (size_t)n * sizeof(float));
    return arrive_locked(c, op_name[OP_BROADCAST_F32]);
}

static int l_barrier(rt_comm *base) {
    /* One barrier suffices: no buffers are shared. */
    return enter((lcomm *)base, OP_BARRIER, 0, 0, NULL, NULL, NULL);
}

/* ---- point-to-point --------------------------------------------------- */

static int check_peer(lcomm *c, const char *what, int peer) {
    if (peer >= 0 && peer < c->base.size) return 0;
    return fail(c, RT_COMM_ERR_INVALID, what, "peer %d out of range [0, %d)", peer, c->base.size);
}

static int l_send_f32(rt_comm *base, const float *buf, int64_t n, int peer) {
    lcomm *c = (lcomm *)base;
    const char *what = "send_f32";
    char bad[128];
    if (check_peer(c, what, peer)) return RT_COMM_ERR_INVALID;
    if (check_buf(bad, n, buf, "buf")) return fail(c, RT_COMM_ERR_INVALID, what, "%s", bad);
    msg *mm = malloc(sizeof(msg) + (size_t)n * sizeof(float));
    if (!mm) return fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory for %lld floats", (long long)n);
    mm->next = NULL;
    mm->n = n;
    if (n) memcpy(mm->data, buf, (size_t)n * sizeof(float));
    lgroup *g = c->g;
    rt_local_world *w = g->w;
    pthread_mutex_lock(&w->mu);
    if (w->aborted) {
        int rc = fail_aborted(c, what);
        pthread_mutex_unlock(&w->mu);
        free(mm);
        return rc;
    }
    int box = c->base.rank * g->n + peer;
    if (g->tail[box]) g->tail[box]->next = mm;
    else g->head[box] = mm;
    g->tail[box] = mm;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int l_recv_f32(rt_comm *base, float *buf, int64_t n, int peer) {
    lcomm *c = (lcomm *)base;
    const char *what = "recv_f32";
    char bad[128], pd[64];
    if (check_peer(c, what, peer)) return RT_COMM_ERR_INVALID;
    if (check_buf(bad, n, buf, "buf")) return fail(c, RT_COMM_ERR_INVALID, what, "%s", bad);
    lgroup *g = c->g;
    rt_local_world *w = g->w;
    member_desc(g, peer, pd, sizeof pd);
    int box = peer * g->n + c->base.rank, rc = 0;
    msg *mm = NULL;
    pthread_mutex_lock(&w->mu);
    struct timespec dl = deadline_after(w->timeout_s);
    for (;;) {
        if (w->aborted) {
            rc = fail_aborted(c, what);
            break;
        }
        if ((mm = g->head[box])) {
            if (mm->n != n) {
                mm = NULL;
                rc = fail(c, RT_COMM_ERR_MISMATCH, what, "expected %lld floats from %s, its message has %lld",
                          (long long)n, pd, (long long)g->head[box]->n);
                abort_locked(w, c->base.err);
                break;
            }
            g->head[box] = mm->next;
            if (!g->head[box]) g->tail[box] = NULL;
            break;
        }
        if (w->exited[g->wrank[peer]]) {
            rc = fail(c, RT_COMM_ERR_ABORTED, what, "%s returned without sending", pd);
            abort_locked(w, c->base.err);
            break;
        }
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT && !g->head[box] && !w->aborted) {
            rc = fail(c, RT_COMM_ERR_TIMEOUT, what, "timed out after %g s; nothing sent by %s", w->timeout_s, pd);
            abort_locked(w, c->base.err);
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (mm) {
        if (n) memcpy(buf, mm->data, (size_t)n * sizeof(float));
        free(mm);
    }
    return rc;
}

/* ---- groups, handles, split ------------------------------------------- */

/* A group of n members with the given world ranks, registered in the world
 * (with w->mu held). NULL on out-of-memory. */
static lgroup *group_new(rt_local_world *w, int n, const int *wrank) {
    lgroup *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->w = w;
    g->n = n;
    g->wrank = malloc((size_t)n * sizeof(int));
    g->slots = calloc((size_t)n, sizeof(slot));
    g->head = calloc((size_t)n * (size_t)n, sizeof(msg *));
    g->tail = calloc((size_t)n * (size_t)n, sizeof(msg *));
    if (!g->wrank || !g->slots || !g->head || !g->tail) {
        free(g->wrank);
        free(g->slots);
        free(g->head);
        free(g->tail);
        free(g);
        return NULL;
    }
    memcpy(g->wrank, wrank, (size_t)n * sizeof(int));
    g->next = w->groups;
    w->groups = g;
    return g;
}

static void group_free(lgroup *g) {
    for (int i = 0; i < g->n * g->n; i++)
        for (msg *m = g->head[i], *nx; m; m = nx) {
            nx = m->next;
            free(m);
        }
    free(g->wrank);
    free(g->slots);
    free(g->head);
    free(g->tail);
    free(g);
}

/* Handle of member `rank` of g, registered in the world (w->mu held). */
static lcomm *comm_new(lgroup *g, int rank) {
    lcomm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base.ops = &local_ops;
    c->base.rank = rank;
    c->base.size = g->n;
    c->g = g;
    c->next = g->w->comms;
    g->w->comms = c;
    return c;
}

/* Member order in the new group: by (key, rank in the parent). */
static int split_before(const slot *s, int a, int b) {
    return s[a].key != s[b].key ? s[a].key < s[b].key : a < b;
}

static int l_split(rt_comm *base, int color, int key, rt_comm **out) {
    lcomm *c = (lcomm *)base;
    const char *what = op_name[OP_SPLIT];
    *out = NULL;
    lgroup *g = c->g;
    rt_local_world *w = g->w;
    pthread_mutex_lock(&w->mu);
    slot *s = &g->slots[c->base.rank];
    s->color = color < 0 ? RT_COMM_SPLIT_NONE : color;
    s->key = key;
    s->made = NULL;
    pthread_mutex_unlock(&w->mu);
    int rc = enter(c, OP_SPLIT, 0, 0, NULL, NULL, NULL);
    if (rc) return rc;

    /* The slots are stable until the final barrier. The color's leader
     * (its first member in parent order) creates the group. */
    const slot *sl = g->slots;
    int me = c->base.rank, leader = -1, n = 0, newrank = 0;
    int *members = malloc((size_t)g->n * sizeof(int));
    if (!members) {
        pthread_mutex_lock(&w->mu);
        fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
        abort_locked(w, c->base.err);
        pthread_mutex_unlock(&w->mu);
        return RT_COMM_ERR_SYSTEM;
    }
    if (s->color != RT_COMM_SPLIT_NONE) {
        for (int m = 0; m < g->n; m++) {
            if (sl[m].color != s->color) continue;
            if (leader < 0) leader = m;
            /* insertion sort by (key, parent rank) */
            int j = n++;
            while (j > 0 && split_before(sl, m, members[j - 1])) {
                members[j] = members[j - 1];
                j--;
            }
            members[j] = m;
        }
        for (int i = 0; i < n; i++) {
            if (members[i] == me) newrank = i;
            members[i] = g->wrank[members[i]]; /* now world ranks */
        }
    }
    rc = 0;
    if (leader == me) {
        pthread_mutex_lock(&w->mu);
        s->made = group_new(w, n, members);
        if (!s->made) {
            rc = fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
            abort_locked(w, c->base.err);
        }
        pthread_mutex_unlock(&w->mu);
    }
    free(members);
    if (rc) return rc;
    if ((rc = arrive_locked(c, what))) return rc;
    lcomm *nc = NULL;
    if (leader >= 0) {
        pthread_mutex_lock(&w->mu);
        nc = comm_new(sl[leader].made, newrank);
        if (!nc) {
            rc = fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
            abort_locked(w, c->base.err);
        }
        pthread_mutex_unlock(&w->mu);
        if (rc) return rc;
    }
    if ((rc = arrive_locked(c, what))) return rc;
    *out = nc ? &nc->base : NULL;
    return 0;
}

static void l_abort(rt_comm *base, const char *reason) {
    lcomm *c = (lcomm *)base;
    rt_local_world *w = c->g->w;
    char m[RT_COMM_ERR_CAP];
    snprintf(m, sizeof m, "rank %d: %s", wrank_of(c), reason ? reason : "aborted");
    pthread_mutex_lock(&w->mu);
    abort_locked(w, m);
    pthread_mutex_unlock(&w->mu);
}

/* Handles (and groups) live until the world is destroyed: a member may
 * still be reading a group's slots when another releases its handle. */
static void l_destroy(rt_comm *base) { (void)base; }

static const rt_comm_ops local_ops = {
    .backend = "local",
    .all_reduce_sum_f32 = l_all_reduce_sum_f32,
    .all_reduce_sum_f64 = l_all_reduce_sum_f64,
    .all_gather_f32 = l_all_gather_f32,
    .reduce_scatter_sum_f32 = l_reduce_scatter_sum_f32,
    .broadcast_f32 = l_broadcast_f32,
    .barrier = l_barrier,
    .send_f32 = l_send_f32,
    .recv_f32 = l_recv_f32,
    .split = l_split,
    .abort = l_abort,
    .destroy = l_destroy,
};

/* ---- the world -------------------------------------------------------- */

rt_local_world *rt_local_world_create(int n, double timeout_s) {
    if (n < 1) return NULL;
    if (!(timeout_s > 0) && rt_comm_env_timeout(&timeout_s, NULL)) return NULL;
    rt_local_world *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->n = n;
    w->timeout_s = timeout_s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->exited = calloc((size_t)n, sizeof(int));
    w->world_comms = calloc((size_t)n, sizeof(lcomm *));
    int *ranks = malloc((size_t)n * sizeof(int));
    lgroup *g = NULL;
    if (w->exited && w->world_comms && ranks) {
        for (int i = 0; i < n; i++) ranks[i] = i;
        g = group_new(w, n, ranks);
    }
    free(ranks);
    for (int i = 0; g && i < n; i++)
        if (!(w->world_comms[i] = comm_new(g, i))) g = NULL;
    if (!g) {
        rt_local_world_destroy(w);
        return NULL;
    }
    for (int i = 0; i < n; i++) w->world_comms[i]->owned_by_world = 1;
    return w;
}

rt_comm *rt_local_comm(rt_local_world *w, int rank) {
    if (!w || rank < 0 || rank >= w->n) return NULL;
    return &w->world_comms[rank]->base;
}

void rt_local_world_destroy(rt_local_world *w) {
    if (!w) return;
    for (lcomm *c = w->comms, *nx; c; c = nx) {
        nx = c->next;
        free(c);
    }
    for (lgroup *g = w->groups, *nx; g; g = nx) {
        nx = g->next;
        group_free(g);
    }
    free(w->exited);
    free(w->world_comms);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

typedef struct run_arg {
    rt_local_world *w;
    int rank, rc;
    int (*fn)(rt_comm *, void *);
    void *arg;
} run_arg;

static void *run_thread(void *p) {
    run_arg *a = p;
    rt_local_world *w = a->w;
    lcomm *c = w->world_comms[a->rank];
    /* ranks as threads share the cores: each its part for its kernels' threads */
    int share = ck_threads() / w->n;
    ck_set_threads(share > 0 ? share : 1);
    a->rc = a->fn(&c->base, a->arg);
    pthread_mutex_lock(&w->mu);
    w->exited[a->rank] = 1;
    if (a->rc && !w->aborted) {
        char m[RT_COMM_ERR_CAP];
        snprintf(m, sizeof m, "rank %d failed (rc %d)%s%.400s", a->rank, a->rc, c->base.err[0] ? ": " : "",
                 c->base.err);
        abort_locked(w, m);
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int rt_local_world_run(rt_local_world *w, int (*fn)(rt_comm *c, void *arg), void *arg) {
    run_arg *a = calloc((size_t)w->n, sizeof *a);
    pthread_t *t = calloc((size_t)w->n, sizeof *t);
    if (!a || !t) {
        free(a);
        free(t);
        return RT_COMM_ERR_SYSTEM;
    }
    pthread_mutex_lock(&w->mu);
    memset(w->exited, 0, (size_t)w->n * sizeof(int));
    pthread_mutex_unlock(&w->mu);
    int started = 0, rc = 0;
    for (; started < w->n; started++) {
        a[started] = (run_arg){w, started, 0, fn, arg};
        if (pthread_create(&t[started], NULL, run_thread, &a[started])) {
            pthread_mutex_lock(&w->mu);
            abort_locked(w, "rt_local_world_run: cannot create a thread");
            pthread_mutex_unlock(&w->mu);
            rc = RT_COMM_ERR_SYSTEM;
            break;
        }
    }
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < started && !rc; i++) rc = a[i].rc;
    free(a);
    free(t);
    return rc;
}

int rt_local_run(int n, int (*fn)(rt_comm *c, void *arg), void *arg) {
    double timeout;
    if (rt_comm_env_timeout(&timeout, NULL)) return RT_COMM_ERR_INVALID;
    rt_local_world *w = rt_local_world_create(n, timeout);
    if (!w) return n < 1 ? RT_COMM_ERR_INVALID : RT_COMM_ERR_SYSTEM;
    int rc = rt_local_world_run(w, fn, arg);
    rt_local_world_destroy(w);
    return rc;
}
