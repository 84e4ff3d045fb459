/* comm_nccl.c — the `nccl` backend's logic (see comm_nccl.h): communicators,
 * waits with a deadline, aborts, host staging, deferred sends. Every NCCL
 * and CUDA call goes through an rt_nccl_api table (runtime/nccl_api.c has
 * the real one), so this file compiles and is tested without NCCL or a GPU.
 *
 * One wait for everything. After an NCCL call a communicator is either
 * "in progress" (ncclCommGetAsyncError says ncclInProgress: the call is
 * still being processed on the host side, e.g. init, split, a group
 * launch), or fine, or failed. Device work then runs on a stream. wait()
 * polls both until the state is fine and the stream (if any) has drained,
 * checking the deadline between polls: the first polls spin, later ones
 * sleep with a backoff up to 1 ms.
 */
#include "runtime/comm_nccl.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define STAGE_ALIGN 256

typedef struct psend { /* a deferred send */
    int peer;
    int64_t n;
    void *dbuf; /* device copy of the data */
} psend;

typedef struct ncomm {
    rt_comm base; /* first: rt_comm* <-> ncomm* */
    rt_nccl_world *w;
    void *nc; /* ncclComm_t; NULL once aborted or destroyed */
    char label[64];
    psend *ps;
    int nps, capps;
} ncomm;

typedef struct inflight { /* a device collective enqueued and not yet seen complete */
    void *ev;                 /* recorded on its stream right after it */
    double deadline;
    ncomm *c;
    char what[96];
} inflight;

struct rt_nccl_world {
    const rt_nccl_api *api;
    int rank, size, device;
    double timeout_s;
    void *stream; /* for the host-staged operations */
    void *stage;  /* device staging buffer */
    size_t stage_bytes;
    ncomm **comms; /* every live communicator; [0] is the world */
    int ncomms, capcomms;
    int aborted;
    char reason[RT_COMM_ERR_CAP];
    /* Asynchronous device collectives (see comm_nccl.h): the watchdog
     * thread polls the in-flight ones' events and aborts at the deadline.
     * mu serialises every NCCL/CUDA call of the caller's thread (held for
     * a whole operation, released while a wait sleeps) with the watchdog's. */
    int async;
    pthread_mutex_t mu;
    pthread_t dog;
    int dog_running, dog_stop;
    inflight *fl;
    int nfl, capfl;
    void **evpool; /* completed events, for reuse */
    int nevpool, capevpool;
    uint64_t oldest_bits; /* the earliest in-flight deadline (a double's bits; +inf: none), read without mu */
    double stuck_grace_s; /* see watchdog() */
};

static void lock(rt_nccl_world *w) { pthread_mutex_lock(&w->mu); }
static void set_oldest(rt_nccl_world *w, double t) {
    uint64_t b;
    memcpy(&b, &t, sizeof b);
    __atomic_store_n(&w->oldest_bits, b, __ATOMIC_RELEASE);
}
static double get_oldest(rt_nccl_world *w) {
    uint64_t b = __atomic_load_n(&w->oldest_bits, __ATOMIC_ACQUIRE);
    double t;
    memcpy(&t, &b, sizeof t);
    return t;
}
static void unlock(rt_nccl_world *w) { pthread_mutex_unlock(&w->mu); }
static int is_aborted(rt_nccl_world *w) { return __atomic_load_n(&w->aborted, __ATOMIC_ACQUIRE); }

static const rt_comm_ops nccl_ops;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The i-th pause of a wait: spin (yield) first, then sleep 50 us doubling to 1 ms. */
static void pause_poll(int i) {
    if (i < 64) return;
    long ns = 50000L << (i - 64 < 5 ? i - 64 : 5);
    if (ns > 1000000L) ns = 1000000L;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static const char *type_name(rt_nccl_type t) {
    static const char *const names[] = {"f32", "bf16", "f64", "i32", "u8"};
    return names[t];
}
static size_t type_size(rt_nccl_type t) {
    return t == RT_NCCL_U8 ? 1 : t == RT_NCCL_BF16 ? 2 : t == RT_NCCL_F64 ? 8 : 4;
}

/* ---- errors and the abort ------------------------------------------------------ */

AX_PRINTF(4, 5) static int fail(ncomm *c, int rc, const char *what, const char *fmt, ...) {
    char *e = c->base.err;
    size_t cap = sizeof c->base.err;
    int len = snprintf(e, cap, "rank %d: %s on %s (%d rank%s): ", c->w->rank, what, c->label, c->base.size,
                       c->base.size == 1 ? "" : "s");
    if (len >= 0 && (size_t)len < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e + len, cap - (size_t)len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Aborts every NCCL communicator of this process (kernels waiting on a peer
 * end); the first reason is kept for later calls. */
static void world_abort(rt_nccl_world *w, const char *reason) {
    if (w->aborted) return;
    snprintf(w->reason, sizeof w->reason, "%s", reason);
    __atomic_store_n(&w->aborted, 1, __ATOMIC_RELEASE); /* rt_nccl_world_aborted may read it from another thread */
    for (int i = 0; i < w->ncomms; i++)
        if (w->comms[i]->nc) {
            w->api->comm_abort(w->api->ctx, w->comms[i]->nc);
            w->comms[i]->nc = NULL;
        }
}

/* Fails c with an NCCL (cuda = 0) or CUDA error code, then aborts. */
static int fail_lib(ncomm *c, const char *what, int cuda, int code, const char *doing) {
    if (is_aborted(c->w)) return fail(c, RT_COMM_ERR_ABORTED, what, "aborted: %s", c->w->reason);
    char msg[384] = "";
    c->w->api->describe(c->w->api->ctx, cuda, code, cuda ? NULL : c->nc, msg, sizeof msg);
    fail(c, RT_COMM_ERR_SYSTEM, what, "%s: %s; the NCCL communicators of this rank are aborted", doing, msg);
    world_abort(c->w, c->base.err);
    return RT_COMM_ERR_SYSTEM;
}

/* ---- waiting -------------------------------------------------------------------- */

/* Until nc (c's communicator, or one being created for it) is no longer in
 * progress and stream (if not NULL) has drained; or an error; or the
 * deadline, which aborts. */
static int wait_on(ncomm *c, void *nc, const char *what, void *stream) {
    rt_nccl_world *w = c->w;
    const rt_nccl_api *a = w->api;
    double deadline = now_s() + w->timeout_s;
    for (int i = 0;; i++) {
        if (w->aborted) return fail(c, RT_COMM_ERR_ABORTED, what, "aborted: %s", w->reason);
        int st = a->comm_state(a->ctx, nc);
        if (st > 0) return fail_lib(c, what, 0, st, "NCCL reported an error");
        if (st == 0) {
            int q = stream ? a->stream_query(a->ctx, stream) : 0;
            if (q > 0) return fail_lib(c, what, 1, q, "the CUDA stream failed");
            if (q == 0) { /* drained: an error raised meanwhile still counts */
                st = a->comm_state(a->ctx, nc);
                if (st > 0) return fail_lib(c, what, 0, st, "NCCL reported an error");
                if (st == 0) return 0;
            }
        }
        if (now_s() >= deadline) {
            fail(c, RT_COMM_ERR_TIMEOUT, what,
                 "timed out after %g s (AXO_COMM_TIMEOUT): a peer rank died, hangs, or called a different "
                 "operation; the NCCL communicators of this rank are aborted",
                 w->timeout_s);
            world_abort(w, c->base.err);
            return RT_COMM_ERR_TIMEOUT;
        }
        unlock(w); /* the watchdog may poll (and abort) meanwhile */
        pause_poll(i);
        lock(w);
    }
}
static int wait_done(ncomm *c, const char *what, void *stream) { return wait_on(c, c->nc, what, stream); }

/* The result of an enqueueing call: 0 and RT_NCCL_PENDING go on to the wait. */
static int issued(ncomm *c, const char *what, int r, void *stream) {
    if (r > 0) return fail_lib(c, what, 0, r, "the NCCL call failed");
    return wait_done(c, what, stream);
}

/* ---- asynchronous device collectives: the watchdog ------------------------------- */

/* With w->mu held: looks at every in-flight collective once; a completed
 * one's event goes back to the pool; a failed stream, an NCCL error or a
 * passed deadline fails it (and aborts the world). */
static void poll_inflight(rt_nccl_world *w) {
    const rt_nccl_api *a = w->api;
    double now = now_s();
    double oldest = INFINITY;
    for (int i = 0; i < w->nfl; i++)
        if (w->fl[i].deadline < oldest) oldest = w->fl[i].deadline;
    set_oldest(w, oldest); /* before the loop: what remains is a subset */
    for (int i = 0; i < w->nfl;) {
        inflight *f = &w->fl[i];
        if (is_aborted(w)) { /* the events stay: after an abort nothing on the device is released */
            w->nfl = 0;
            return;
        }
        int q = a->event_query(a->ctx, f->ev);
        int st = q == 0 || !f->c->nc ? 0 : a->comm_state(a->ctx, f->c->nc);
        if (q == 0) {
            if (w->nevpool < w->capevpool) w->evpool[w->nevpool++] = f->ev;
            else a->event_destroy(a->ctx, f->ev);
            w->fl[i] = w->fl[--w->nfl]; /* order does not matter */
            continue;
        }
        if (q > 0 || st > 0) {
            fail_lib(f->c, f->what, q > 0, q > 0 ? q : st, q > 0 ? "the CUDA stream failed" : "NCCL reported an error");
            w->nfl = 0;
            return;
        }
        if (now >= f->deadline) {
            fail(f->c, RT_COMM_ERR_TIMEOUT, f->what,
                 "timed out after %g s (AXO_COMM_TIMEOUT): a peer rank died, hangs, or called a different operation; "
                 "the NCCL communicators of this rank are aborted",
                 w->timeout_s);
            world_abort(w, f->c->base.err);
            w->nfl = 0;
            return;
        }
        i++;
    }
}

/* The caller's thread can be stuck inside a CUDA or NCCL call that holds mu
 * (a launch queue filled behind a collective that never completes): the
 * watchdog cannot take mu to abort. Past the deadline plus this grace it
 * says why and ends the process, so the launcher stops the job (30 s;
 * AXO_COMM_STUCK_GRACE_S for tests). */
#define STUCK_GRACE_S 30.0

static void *watchdog(void *arg) {
    rt_nccl_world *w = arg;
    /* its CUDA calls go to the rank's device (cudaSetDevice is per thread: no lock, which the caller may
     * already hold for good) */
    w->api->set_device(w->api->ctx, w->device);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200000000L; /* 0.2 s */
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        if (pthread_mutex_timedlock(&w->mu, &until) != 0) {
            if (now_s() > get_oldest(w) + w->stuck_grace_s) {
                fprintf(stderr,
                        "nccl: error: rank %d: a collective did not complete within AXO_COMM_TIMEOUT (%g s) and this "
                        "process is stuck inside a CUDA/NCCL call (a peer rank died or hangs); exiting without cleanup\n",
                        w->rank, w->timeout_s);
                _Exit(1);
            }
            continue;
        }
        if (w->dog_stop) {
            unlock(w);
            break;
        }
        poll_inflight(w);
        int busy = w->nfl > 0;
        unlock(w);
        struct timespec ts = {0, busy ? 200000L : 2000000L}; /* 0.2 ms while work is in flight, else 2 ms */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* With w->mu held: the collective just enqueued on stream becomes in
 * flight (an event recorded after it); the watchdog starts on first use. */
static int inflight_push(ncomm *c, const char *what, void *stream) {
    rt_nccl_world *w = c->w;
    const rt_nccl_api *a = w->api;
    if (w->nfl == w->capfl) {
        int cap = w->capfl ? 2 * w->capfl : 16;
        inflight *p = realloc(w->fl, sizeof *p * (size_t)cap);
        void **q = realloc(w->evpool, sizeof *q * (size_t)cap);
        if (p) w->fl = p;
        if (q) w->evpool = q;
        if (!p || !q) return fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
        w->capfl = w->capevpool = cap;
    }
    void *ev = w->nevpool ? w->evpool[--w->nevpool] : NULL;
    int r = ev ? 0 : a->event_create(a->ctx, &ev);
    if (!r) r = a->event_record(a->ctx, ev, stream);
    if (r > 0) return fail_lib(c, what, 1, r, "recording a CUDA event after the collective failed");
    inflight *f = &w->fl[w->nfl++];
    f->ev = ev;
    f->deadline = now_s() + w->timeout_s;
    if (f->deadline < get_oldest(w)) set_oldest(w, f->deadline);
    f->c = c;
    snprintf(f->what, sizeof f->what, "%s", what);
    if (!w->dog_running) {
        w->dog_stop = 0;
        if (pthread_create(&w->dog, NULL, watchdog, w) != 0) {
            w->nfl--;
            return fail(c, RT_COMM_ERR_SYSTEM, what, "cannot start the NCCL watchdog thread");
        }
        w->dog_running = 1;
    }
    return 0;
}

/* A device collective's enqueueing call returned r. Synchronous: wait until
 * stream has drained. Asynchronous: wait only until NCCL has taken the call
 * (the communicator is no longer "in progress"), then its completion is the
 * watchdog's to see. */
static int issued_dev(ncomm *c, const char *what, int r, void *stream) {
    if (!c->w->async) return issued(c, what, r, stream);
    if (r > 0) return fail_lib(c, what, 0, r, "the NCCL call failed");
    int rc = wait_on(c, c->nc, what, NULL);
    return rc ? rc : inflight_push(c, what, stream);
}

void rt_nccl_world_set_async(rt_nccl_world *w, int on) {
    const rt_nccl_api *a = w->api;
    lock(w);
    w->async = on && a->event_create && a->event_record && a->event_query && a->event_destroy;
    unlock(w);
}

int rt_nccl_world_drain(rt_nccl_world *w, char *err, size_t cap) {
    lock(w);
    int rc = 0;
    for (int i = 0;; i++) {
        poll_inflight(w);
        if (is_aborted(w)) {
            snprintf(err, cap, "%s", w->reason);
            rc = RT_COMM_ERR_ABORTED;
            break;
        }
        if (w->nfl == 0) break;
        unlock(w);
        pause_poll(i);
        lock(w);
    }
    unlock(w);
    return rc;
}

/* ---- communicators ------------------------------------------------------------- */

static ncomm *comm_new(rt_nccl_world *w, const char *label) {
    if (w->ncomms == w->capcomms) {
        int cap = w->capcomms ? 2 * w->capcomms : 8;
        ncomm **p = realloc(w->comms, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        w->comms = p;
        w->capcomms = cap;
    }
    ncomm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base.ops = &nccl_ops;
    c->w = w;
    snprintf(c->label, sizeof c->label, "%s", label);
    w->comms[w->ncomms++] = c;
    return c;
}

/* After an abort no device memory is freed (nor streams destroyed): cudaFree
 * waits for the device, and a kernel NCCL failed to stop would make the
 * cleanup hang. The process's exit returns it all. */
static void drop_sends(ncomm *c) {
    for (int i = 0; i < c->nps && !c->w->aborted; i++) c->w->api->dev_free(c->w->api->ctx, c->ps[i].dbuf);
    c->nps = 0;
}

static void poll_inflight(rt_nccl_world *w);

/* With w->mu held: until no in-flight collective is c's (or an abort). */
static void drain_comm(ncomm *c) {
    rt_nccl_world *w = c->w;
    for (int i = 0;; i++) {
        poll_inflight(w);
        int mine = 0;
        for (int k = 0; k < w->nfl; k++) mine |= w->fl[k].c == c;
        if (!mine || is_aborted(w)) return;
        unlock(w);
        pause_poll(i);
        lock(w);
    }
}

/* Finalizes (or, after an abort, just forgets) c's NCCL communicator and
 * frees c. */
static void comm_close(ncomm *c) {
    rt_nccl_world *w = c->w;
    const rt_nccl_api *a = w->api;
    drain_comm(c); /* the watchdog must not look at c once it is gone */
    if (c->nc && !w->aborted) {
        int r = a->comm_finalize(a->ctx, c->nc);
        if (r > 0) fail_lib(c, "finalize", 0, r, "ncclCommFinalize failed");
        else wait_done(c, "finalize", NULL); /* a timeout aborts */
    }
    if (c->nc) a->comm_destroy(a->ctx, c->nc);
    c->nc = NULL;
    drop_sends(c);
    free(c->ps);
    for (int i = 0; i < w->ncomms; i++)
        if (w->comms[i] == c) {
            memmove(&w->comms[i], &w->comms[i + 1], sizeof(ncomm *) * (size_t)(w->ncomms - i - 1));
            w->ncomms--;
            break;
        }
    free(c);
}

/* Common entry: the job must not be aborted; the count must be sane. */
static int enter(ncomm *c, const char *what, int64_t n) {
    if (c->w->aborted) return fail(c, RT_COMM_ERR_ABORTED, what, "aborted: %s", c->w->reason);
    if (!c->nc) return fail(c, RT_COMM_ERR_INVALID, what, "the communicator was destroyed");
    if (n < 0) return fail(c, RT_COMM_ERR_INVALID, what, "negative count %lld", (long long)n);
    return 0;
}

/* Issues the deferred sends (with the recv of `peer` into dbuf, if rn >= 0)
 * as one group on the world's stream, and waits. */
static int flush_sends(ncomm *c, const char *what, void *rbuf, int64_t rn, int rpeer) {
    if (!c->nps && rn < 0) return 0;
    const rt_nccl_api *a = c->w->api;
    void *s = c->w->stream;
    int r = a->group_start(a->ctx);
    for (int i = 0; i < c->nps && r <= 0; i++)
        r = a->send(a->ctx, c->nc, RT_NCCL_F32, c->ps[i].dbuf, (size_t)c->ps[i].n, c->ps[i].peer, s);
    if (r <= 0 && rn >= 0) r = a->recv(a->ctx, c->nc, RT_NCCL_F32, rbuf, (size_t)rn, rpeer, s);
    int e = a->group_end(a->ctx);
    int rc = issued(c, what, r > 0 ? r : e, s);
    drop_sends(c);
    return rc;
}

/* ---- host-staged operations (rt_comm_ops) ---------------------------------------- */

static int stage_reserve(ncomm *c, const char *what, size_t bytes) {
    rt_nccl_world *w = c->w;
    if (bytes <= w->stage_bytes) return 0;
    size_t want = w->stage_bytes ? w->stage_bytes : 1 << 20;
    while (want < bytes) want *= 2;
    if (w->stage) w->api->dev_free(w->api->ctx, w->stage);
    w->stage = NULL;
    w->stage_bytes = 0;
    int r = w->api->dev_alloc(w->api->ctx, &w->stage, want);
    if (r) {
        w->stage = NULL;
        char msg[256];
        w->api->describe(w->api->ctx, 1, r, NULL, msg, sizeof msg);
        return fail(c, RT_COMM_ERR_SYSTEM, what, "cannot allocate %zu bytes of device staging memory: %s", want, msg);
    }
    w->stage_bytes = want;
    return 0;
}

static size_t align_up(size_t x) { return (x + STAGE_ALIGN - 1) / STAGE_ALIGN * STAGE_ALIGN; }

enum hop { H_ALL_REDUCE, H_ALL_GATHER, H_REDUCE_SCATTER, H_BROADCAST };

/* One collective on host buffers: send -> device, the NCCL call on the
 * world's stream, wait, device -> recv. n: elements per rank block
 * (all_gather, reduce_scatter) or of the buffer. */
static int staged(ncomm *c, enum hop op, const char *what, rt_nccl_type t, const void *send, void *recv, int64_t n,
                  int root) {
    int rc = enter(c, what, n);
    if (rc) return rc;
    if ((n > 0 && (!send || !recv)))
        return fail(c, RT_COMM_ERR_INVALID, what, "NULL buffer");
    if ((rc = flush_sends(c, what, NULL, -1, 0))) return rc;
    if (n == 0) return 0;
    rt_nccl_world *w = c->w;
    const rt_nccl_api *a = w->api;
    size_t e = type_size(t), p = (size_t)c->base.size, un = (size_t)n;
    size_t in_bytes = un * e * (op == H_REDUCE_SCATTER ? p : 1);
    size_t out_bytes = un * e * (op == H_ALL_GATHER ? p : 1);
    int in_place = op == H_ALL_REDUCE || op == H_BROADCAST;
    size_t out_off = in_place ? 0 : align_up(in_bytes);
    if ((rc = stage_reserve(c, what, out_off + out_bytes))) return rc;
    char *dev = w->stage;
    void *s = w->stream;
    int r = a->copy(a->ctx, dev, send, in_bytes, 1, s);
    if (r > 0) return fail_lib(c, what, 1, r, "copying to the device failed");
    switch (op) {
    case H_ALL_REDUCE: r = a->all_reduce(a->ctx, c->nc, t, dev, dev, un, s); break;
    case H_ALL_GATHER: r = a->all_gather(a->ctx, c->nc, t, dev, dev + out_off, un, s); break;
    case H_REDUCE_SCATTER: r = a->reduce_scatter(a->ctx, c->nc, t, dev, dev + out_off, un, s); break;
    case H_BROADCAST: r = a->broadcast(a->ctx, c->nc, t, dev, dev, un, root, s); break;
    }
    if ((rc = issued(c, what, r, s))) return rc;
    r = a->copy(a->ctx, recv, dev + out_off, out_bytes, 0, s);
    if (r > 0) return fail_lib(c, what, 1, r, "copying from the device failed");
    return wait_done(c, what, s);
}

static int n_all_reduce_f32(rt_comm *c, float *buf, int64_t n) {
    return staged((ncomm *)c, H_ALL_REDUCE, "all_reduce_sum_f32", RT_NCCL_F32, buf, buf, n, 0);
}
static int n_all_reduce_f64(rt_comm *c, double *buf, int64_t n) {
    return staged((ncomm *)c, H_ALL_REDUCE, "all_reduce_sum_f64", RT_NCCL_F64, buf, buf, n, 0);
}
static int n_all_gather_f32(rt_comm *c, const float *send, float *recv, int64_t n) {
    return staged((ncomm *)c, H_ALL_GATHER, "all_gather_f32", RT_NCCL_F32, send, recv, n, 0);
}
static int n_reduce_scatter_f32(rt_comm *c, const float *send, float *recv, int64_t n) {
    return staged((ncomm *)c, H_REDUCE_SCATTER, "reduce_scatter_sum_f32", RT_NCCL_F32, send, recv, n, 0);
}
static int n_broadcast_f32(rt_comm *cc, float *buf, int64_t n, int root) {
    ncomm *c = (ncomm *)cc;
    if (root < 0 || root >= cc->size)
        return fail(c, RT_COMM_ERR_INVALID, "broadcast_f32", "root %d out of range [0, %d)", root, cc->size);
    return staged(c, H_BROADCAST, "broadcast_f32", RT_NCCL_F32, buf, buf, n, root);
}
static int n_barrier(rt_comm *c) {
    float one = 0.0f;
    return staged((ncomm *)c, H_ALL_REDUCE, "barrier", RT_NCCL_F32, &one, &one, 1, 0);
}

static int check_peer(ncomm *c, const char *what, int peer) {
    if (peer >= 0 && peer < c->base.size) return 0;
    return fail(c, RT_COMM_ERR_INVALID, what, "peer %d out of range [0, %d)", peer, c->base.size);
}

/* Deferred (see comm_nccl.h): the data goes to a device buffer of its own now. */
static int n_send_f32(rt_comm *cc, const float *buf, int64_t n, int peer) {
    ncomm *c = (ncomm *)cc;
    const char *what = "send_f32";
    int rc = enter(c, what, n);
    if (rc || (rc = check_peer(c, what, peer))) return rc;
    if (n > 0 && !buf) return fail(c, RT_COMM_ERR_INVALID, what, "NULL buffer");
    if (c->nps == c->capps) {
        int cap = c->capps ? 2 * c->capps : 4;
        psend *p = realloc(c->ps, sizeof *p * (size_t)cap);
        if (!p) return fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
        c->ps = p;
        c->capps = cap;
    }
    const rt_nccl_api *a = c->w->api;
    void *d = NULL;
    int r = a->dev_alloc(a->ctx, &d, (size_t)(n > 0 ? n : 1) * 4);
    if (r) {
        char msg[256];
        a->describe(a->ctx, 1, r, NULL, msg, sizeof msg);
        return fail(c, RT_COMM_ERR_SYSTEM, what, "cannot allocate device memory for %lld floats: %s", (long long)n, msg);
    }
    c->ps[c->nps++] = (psend){.peer = peer, .n = n, .dbuf = d};
    r = a->copy(a->ctx, d, buf, (size_t)n * 4, 1, c->w->stream);
    if (r > 0) return fail_lib(c, what, 1, r, "copying to the device failed");
    return wait_done(c, what, c->w->stream);
}

static int n_recv_f32(rt_comm *cc, float *buf, int64_t n, int peer) {
    ncomm *c = (ncomm *)cc;
    const char *what = "recv_f32";
    int rc = enter(c, what, n);
    if (rc || (rc = check_peer(c, what, peer))) return rc;
    if (n > 0 && !buf) return fail(c, RT_COMM_ERR_INVALID, what, "NULL buffer");
    if ((rc = stage_reserve(c, what, (size_t)(n > 0 ? n : 1) * 4))) return rc;
    if ((rc = flush_sends(c, what, c->w->stage, n, peer))) return rc;
    const rt_nccl_api *a = c->w->api;
    int r = a->copy(a->ctx, buf, c->w->stage, (size_t)n * 4, 0, c->w->stream);
    if (r > 0) return fail_lib(c, what, 1, r, "copying from the device failed");
    return wait_done(c, what, c->w->stream);
}

static int n_split(rt_comm *cc, int color, int key, rt_comm **out) {
    ncomm *c = (ncomm *)cc;
    const char *what = "split";
    *out = NULL;
    int rc = enter(c, what, 0);
    if (rc) return rc;
    if (color < 0 && color != RT_COMM_SPLIT_NONE)
        return fail(c, RT_COMM_ERR_INVALID, what, "color %d is negative (RT_COMM_SPLIT_NONE is %d)", color,
                    RT_COMM_SPLIT_NONE);
    if ((rc = flush_sends(c, what, NULL, -1, 0))) return rc;
    rt_nccl_world *w = c->w;
    const rt_nccl_api *a = w->api;
    char label[64];
    snprintf(label, sizeof label, "split group %d", color);
    ncomm *nw = color < 0 ? NULL : comm_new(w, label); /* registered first: an abort covers it */
    if (color >= 0 && !nw) return fail(c, RT_COMM_ERR_SYSTEM, what, "out of memory");
    void *nn = NULL;
    int r = a->comm_split(a->ctx, c->nc, color, key, &nn);
    if (nw) nw->nc = nn;
    else if (nn) a->comm_abort(a->ctx, nn); /* not expected: no color, no communicator */
    if (r > 0) rc = fail_lib(c, what, 0, r, "ncclCommSplit failed");
    else rc = wait_on(c, nw && nw->nc ? nw->nc : c->nc, what, NULL);
    if (!rc && nw && !nw->nc) rc = fail(c, RT_COMM_ERR_SYSTEM, what, "ncclCommSplit returned no communicator");
    if (!rc && nw) {
        r = a->comm_rank_size(a->ctx, nw->nc, &nw->base.rank, &nw->base.size);
        if (r > 0) rc = fail_lib(c, what, 0, r, "ncclCommUserRank/ncclCommCount failed");
    }
    if (rc) {
        if (nw) comm_close(nw);
        return rc;
    }
    *out = nw ? &nw->base : NULL;
    return 0;
}

static void n_abort(rt_comm *cc, const char *reason) {
    ncomm *c = (ncomm *)cc;
    char msg[RT_COMM_ERR_CAP];
    snprintf(msg, sizeof msg, "rank %d: %s", c->w->rank, reason ? reason : "aborted");
    world_abort(c->w, msg);
}

/* Split handles are closed here; the world's belongs to the world. */
static void n_destroy(rt_comm *cc) {
    ncomm *c = (ncomm *)cc;
    if (c->w->ncomms && c->w->comms[0] == c) return;
    comm_close(c);
}

/* Every entry point holds the world's lock for the whole operation (see
 * rt_nccl_world.mu). */
#define LOCKED(c, expr)                           \
    rt_nccl_world *w_ = ((ncomm *)(c))->w;        \
    lock(w_);                                     \
    int rc_ = (expr);                             \
    unlock(w_);                                   \
    return rc_
static int l_all_reduce_f32(rt_comm *c, float *b, int64_t n) { LOCKED(c, n_all_reduce_f32(c, b, n)); }
static int l_all_reduce_f64(rt_comm *c, double *b, int64_t n) { LOCKED(c, n_all_reduce_f64(c, b, n)); }
static int l_all_gather_f32(rt_comm *c, const float *s, float *r, int64_t n) { LOCKED(c, n_all_gather_f32(c, s, r, n)); }
static int l_reduce_scatter_f32(rt_comm *c, const float *s, float *r, int64_t n) {
    LOCKED(c, n_reduce_scatter_f32(c, s, r, n));
}
static int l_broadcast_f32(rt_comm *c, float *b, int64_t n, int root) { LOCKED(c, n_broadcast_f32(c, b, n, root)); }
static int l_barrier(rt_comm *c) { LOCKED(c, n_barrier(c)); }
static int l_send_f32(rt_comm *c, const float *b, int64_t n, int peer) { LOCKED(c, n_send_f32(c, b, n, peer)); }
static int l_recv_f32(rt_comm *c, float *b, int64_t n, int peer) { LOCKED(c, n_recv_f32(c, b, n, peer)); }
static int l_split(rt_comm *c, int color, int key, rt_comm **out) { LOCKED(c, n_split(c, color, key, out)); }
static void l_abort(rt_comm *c, const char *reason) {
    rt_nccl_world *w = ((ncomm *)c)->w;
    lock(w);
    n_abort(c, reason);
    unlock(w);
}
static void l_destroy(rt_comm *c) {
    rt_nccl_world *w = ((ncomm *)c)->w;
    lock(w);
    n_destroy(c);
    unlock(w);
}

static const rt_comm_ops nccl_ops = {
    .backend = "nccl",
    .all_reduce_sum_f32 = l_all_reduce_f32,
    .all_reduce_sum_f64 = l_all_reduce_f64,
    .all_gather_f32 = l_all_gather_f32,
    .reduce_scatter_sum_f32 = l_reduce_scatter_f32,
    .broadcast_f32 = l_broadcast_f32,
    .barrier = l_barrier,
    .send_f32 = l_send_f32,
    .recv_f32 = l_recv_f32,
    .split = l_split,
    .abort = l_abort,
    .destroy = l_destroy,
};

int rt_comm_is_nccl(const rt_comm *c) { return c && c->ops == &nccl_ops; }

void rt_nccl_set_label(rt_comm *c, const char *label) {
    if (rt_comm_is_nccl(c)) snprintf(((ncomm *)c)->label, sizeof ((ncomm *)c)->label, "%s", label);
}

/* ---- device operations ------------------------------------------------------------------ */

/* The NCCL type of dt, and *n (elements of dt) as a count of it. Operations
 * that only move bits (bits_only: all_gather, ring_shift) also take i32 and
 * the packed QLoRA dtypes as bytes: u8 one per element, nf4 two codes per
 * byte (so an even number of them). */
static int dev_type(ncomm *c, const char *what, ir_dtype dt, int bits_only, rt_nccl_type *t, int64_t *n) {
    if (dt == IR_F32) *t = RT_NCCL_F32;
    else if (dt == IR_BF16) *t = RT_NCCL_BF16;
    else if (dt == IR_I32 && bits_only) *t = RT_NCCL_I32;
    else if (dt == IR_U8 && bits_only) *t = RT_NCCL_U8;
    else if (dt == IR_NF4 && bits_only && *n % 2 == 0) *t = RT_NCCL_U8, *n /= 2;
    else if (dt == IR_NF4 && bits_only) return fail(c, RT_COMM_ERR_INVALID, what, "an odd number (%lld) of nf4 codes", (long long)*n);
    else return fail(c, RT_COMM_ERR_INVALID, what, "unsupported dtype %d", (int)dt);
    return 0;
}

/* *n: elements of dt in, the NCCL count of *t out. */
static int dev_enter(rt_comm *cc, const char *what, ir_dtype dt, int bits_only, int64_t *n, const void *send,
                     const void *recv, rt_nccl_type *t) {
    if (!rt_comm_is_nccl(cc)) {
        snprintf(cc->err, sizeof cc->err, "rank %d: %s: not an NCCL communicator (%s)", cc->rank, what,
                 rt_comm_backend(cc));
        return RT_COMM_ERR_INVALID;
    }
    ncomm *c = (ncomm *)cc;
    int rc = enter(c, what, *n);
    if (!rc) rc = dev_type(c, what, dt, bits_only, t, n);
    if (!rc && *n > 0 && (!send || !recv)) rc = fail(c, RT_COMM_ERR_INVALID, what, "NULL buffer");
    if (!rc) rc = flush_sends(c, what, NULL, -1, 0);
    return rc;
}

/* "all_reduce (bf16, 4096 elements)" */
static const char *dev_what(char *buf, size_t cap, const char *op, rt_nccl_type t, int64_t n) {
    snprintf(buf, cap, "%s (%s, %lld element%s)", op, type_name(t), (long long)n, n == 1 ? "" : "s");
    return buf;
}

typedef int (*nccl_coll_fn)(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, void *stream);

/* The three device collectives differ only in the NCCL call. */
static int dev_coll(rt_comm *cc, const char *op, int which, ir_dtype dt, const void *send, void *recv, int64_t n,
                    void *stream) {
    rt_nccl_type t = RT_NCCL_F32;
    int rc = dev_enter(cc, op, dt, which == 1, &n, send, recv, &t); /* all_gather moves bits */
    if (rc || n == 0) return rc;
    ncomm *c = (ncomm *)cc;
    char what[96];
    dev_what(what, sizeof what, op, t, n);
    const rt_nccl_api *a = c->w->api;
    nccl_coll_fn f = which == 0 ? a->all_reduce : which == 1 ? a->all_gather : a->reduce_scatter;
    return issued_dev(c, what, f(a->ctx, c->nc, t, send, recv, (size_t)n, stream), stream);
}

/* The device entry points: lock, unless cc is not ours (dev_enter says so). */
#define DEV_LOCKED(cc, expr)                \
    if (!rt_comm_is_nccl(cc)) return (expr); \
    LOCKED(cc, expr)

int rt_nccl_all_reduce(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    DEV_LOCKED(cc, dev_coll(cc, "all_reduce", 0, dt, send, recv, n, stream));
}

int rt_nccl_all_gather(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    DEV_LOCKED(cc, dev_coll(cc, "all_gather", 1, dt, send, recv, n, stream));
}

int rt_nccl_reduce_scatter(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    DEV_LOCKED(cc, dev_coll(cc, "reduce_scatter", 2, dt, send, recv, n, stream));
}

static int ring_shift(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream);
int rt_nccl_ring_shift(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    DEV_LOCKED(cc, ring_shift(cc, dt, send, recv, n, stream));
}

static int ring_shift(rt_comm *cc, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    rt_nccl_type t = RT_NCCL_F32;
    int rc = dev_enter(cc, "ring_shift", dt, 1, &n, send, recv, &t);
    if (rc || n == 0) return rc;
    ncomm *c = (ncomm *)cc;
    char what[96];
    dev_what(what, sizeof what, "ring_shift", t, n);
    const rt_nccl_api *a = c->w->api;
    int r0 = cc->rank, p = cc->size;
    int r = a->group_start(a->ctx);
    if (r <= 0) r = a->send(a->ctx, c->nc, t, send, (size_t)n, (r0 + 1) % p, stream);
    if (r <= 0) r = a->recv(a->ctx, c->nc, t, recv, (size_t)n, (r0 + p - 1) % p, stream);
    int e = a->group_end(a->ctx);
    return issued_dev(c, what, r > 0 ? r : e, stream);
}

static int dc_all_reduce(void *ctx, int axis, ir_dtype dt, void *buf, int64_t n, void *stream) {
    return rt_nccl_all_reduce(((rt_nccl_dev_coll *)ctx)->axis[axis], dt, buf, buf, n, stream);
}
static int dc_all_gather(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    return rt_nccl_all_gather(((rt_nccl_dev_coll *)ctx)->axis[axis], dt, send, recv, n, stream);
}
static int dc_reduce_scatter(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    return rt_nccl_reduce_scatter(((rt_nccl_dev_coll *)ctx)->axis[axis], dt, send, recv, n, stream);
}
static int dc_ring_shift(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream) {
    return rt_nccl_ring_shift(((rt_nccl_dev_coll *)ctx)->axis[axis], dt, send, recv, n, stream);
}

static int dc_drain(void *ctx, char *err, size_t cap) {
    rt_nccl_dev_coll *c = ctx;
    for (int a = 0; a < IR_MAX_MESH; a++)
        if (rt_comm_is_nccl(c->axis[a])) return rt_nccl_world_drain(((ncomm *)c->axis[a])->w, err, cap);
    return 0;
}

void rt_nccl_dev_coll_init(rt_nccl_dev_coll *c, rt_comm *const *axis, int naxes) {
    memset(c, 0, sizeof *c);
    for (int a = 0; a < naxes && a < IR_MAX_MESH; a++) c->axis[a] = axis[a];
    c->dc = (rt_dev_collectives){.ctx = c, .all_reduce = dc_all_reduce, .all_gather = dc_all_gather,
                                 .reduce_scatter = dc_reduce_scatter, .ring_shift = dc_ring_shift, .drain = dc_drain};
    c->ring_shift = dc_ring_shift;
}

/* ---- bootstrap and the world ------------------------------------------------------------- */

int rt_nccl_rdzv_port(const rt_launch_env *e, ax_diag *d) {
    const char *s = getenv("AXO_RDZV_PORT");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 1 || v > 65535) {
            ax_error(d, "environment", "AXO_RDZV_PORT='%s' is not a TCP port (1..65535)", s);
            return -1;
        }
        return (int)v;
    }
    const char *agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
    if (e->launcher && !strcmp(e->launcher, "torchrun") && agent && (!strcasecmp(agent, "true") || !strcmp(agent, "1")))
        return e->master_port < 65535 ? e->master_port + 1 : e->master_port - 1;
    return e->master_port;
}

int rt_nccl_share_id(const rt_nccl_api *api, const rt_launch_env *e, unsigned char id[RT_NCCL_ID_BYTES],
                     double timeout_s, ax_diag *d) {
    rt_launch_env at = *e;
    if ((at.master_port = rt_nccl_rdzv_port(e, d)) < 0) return -1;
    e = &at;
    if (e->rank == 0) {
        int r = api->get_unique_id(api->ctx, id);
        if (r) {
            char msg[256] = "";
            if (api->describe) api->describe(api->ctx, 0, r, NULL, msg, sizeof msg);
            ax_error(d, "nccl", "rank 0: ncclGetUniqueId failed: %s", msg);
            return -1;
        }
    }
    int rc = rt_rendezvous(e, id, RT_NCCL_ID_BYTES, timeout_s, d);
    if (rc && e->rank == 0 && ax_diag_contains(d, "Address already in use"))
        ax_diag_add(d, AX_SEV_NOTE, "rendezvous",
                    "another program listens on port %d of MASTER_ADDR; choose a free port for axo's id exchange with "
                    "AXO_RDZV_PORT (the same on every rank)",
                    e->master_port);
    return rc;
}

int rt_nccl_pick_device(const rt_launch_env *e, int ndev, ax_diag *d) {
    if (ndev < 1) {
        ax_error(d, "nccl", "rank %d: no CUDA device is visible (the NCCL backend needs one GPU per rank)", e->rank);
        return -1;
    }
    if (ndev == 1) return 0;
    if (e->local_rank < 0) {
        ax_error(d, "nccl",
                 "rank %d: %d CUDA devices are visible but the launcher did not say which is this process's "
                 "(LOCAL_RANK, SLURM_LOCALID or OMPI_COMM_WORLD_LOCAL_RANK); set it, or give each process one "
                 "device with CUDA_VISIBLE_DEVICES",
                 e->rank, ndev);
        return -1;
    }
    if (e->local_rank >= ndev) {
        ax_error(d, "nccl",
                 "rank %d: local rank %d but only %d CUDA devices are visible (one GPU per process: start at most "
                 "%d processes on this node)",
                 e->rank, e->local_rank, ndev, ndev);
        return -1;
    }
    return e->local_rank;
}

rt_comm *rt_nccl_comm(rt_nccl_world *w) { return &w->comms[0]->base; }

const char *rt_nccl_world_aborted(rt_nccl_world *w) {
    return __atomic_load_n(&w->aborted, __ATOMIC_ACQUIRE) ? w->reason : NULL;
}

void rt_nccl_world_destroy(rt_nccl_world *w) {
    if (!w) return;
    if (w->dog_running) {
        lock(w);
        w->dog_stop = 1;
        unlock(w);
        pthread_join(w->dog, NULL);
        w->dog_running = 0;
    }
    lock(w);
    poll_inflight(w); /* the last completions (or the deadline) */
    while (w->ncomms > 0) comm_close(w->comms[w->ncomms - 1]); /* splits first, the world last */
    if (!w->aborted) { /* see drop_sends */
        const rt_nccl_api *a = w->api;
        for (int i = 0; i < w->nevpool; i++) a->event_destroy(a->ctx, w->evpool[i]);
        if (w->stage) a->dev_free(a->ctx, w->stage);
        if (w->stream) a->stream_destroy(a->ctx, w->stream);
    }
    unlock(w);
    pthread_mutex_destroy(&w->mu);
    free(w->fl);
    free(w->evpool);
    free(w->comms);
    free(w);
}

rt_nccl_world *rt_nccl_world_create(const rt_nccl_api *api, const unsigned char id[RT_NCCL_ID_BYTES], int rank,
                                    int size, int device, double timeout_s, ax_diag *d) {
    if (size < 1 || rank < 0 || rank >= size) {
        ax_error(d, "nccl", "rank %d of %d: not a rank of the world", rank, size);
        return NULL;
    }
    if (timeout_s <= 0 && rt_comm_env_timeout(&timeout_s, d) != 0) return NULL;
    rt_nccl_world *w = calloc(1, sizeof *w);
    if (!w) {
        ax_error(d, "nccl", "out of memory");
        return NULL;
    }
    *w = (rt_nccl_world){.api = api, .rank = rank, .size = size, .device = device, .timeout_s = timeout_s};
    pthread_mutex_init(&w->mu, NULL);
    set_oldest(w, INFINITY);
    const char *grace = getenv("AXO_COMM_STUCK_GRACE_S");
    w->stuck_grace_s = grace && atof(grace) > 0 ? atof(grace) : STUCK_GRACE_S;
    /* device collectives return once enqueued, unless AXO_NCCL_SYNC=1 or the
     * table has no events */
    const char *sync = getenv("AXO_NCCL_SYNC");
    w->async = api->event_create && api->event_record && api->event_query && api->event_destroy &&
               !(sync && sync[0] && strcmp(sync, "0"));
    char msg[256];
    int r = api->set_device(api->ctx, device);
    if (!r) r = api->stream_create(api->ctx, &w->stream);
    if (r) {
        api->describe(api->ctx, 1, r, NULL, msg, sizeof msg);
        ax_error(d, "nccl", "rank %d: cannot use CUDA device %d: %s", rank, device, msg);
        rt_nccl_world_destroy(w);
        return NULL;
    }
    ncomm *c = comm_new(w, "the world");
    if (!c) {
        ax_error(d, "nccl", "out of memory");
        rt_nccl_world_destroy(w);
        return NULL;
    }
    c->base.rank = rank;
    c->base.size = size;
    lock(w);
    r = api->comm_init(api->ctx, &c->nc, size, id, rank);
    int rc = r > 0 ? fail_lib(c, "init", 0, r, "ncclCommInitRankConfig failed") : wait_done(c, "init", NULL);
    unlock(w);
    int nr = -1, ns = -1;
    if (!rc && (r = api->comm_rank_size(api->ctx, c->nc, &nr, &ns)) > 0)
        rc = fail_lib(c, "init", 0, r, "ncclCommUserRank/ncclCommCount failed");
    if (!rc && (nr != rank || ns != size))
        rc = fail(c, RT_COMM_ERR_SYSTEM, "init", "NCCL made this rank %d of %d", nr, ns);
    if (rc) {
        ax_error(d, "nccl", "%s", c->base.err);
        rt_nccl_world_destroy(w);
        return NULL;
    }
    return w;
}

rt_nccl_world *rt_nccl_join(const rt_launch_env *e, int device, double timeout_s, ax_diag *d) {
    if (timeout_s <= 0 && rt_comm_env_timeout(&timeout_s, d) != 0) return NULL;
    const rt_nccl_api *api = rt_nccl_api_load(d);
    if (!api) return NULL;
    unsigned char id[RT_NCCL_ID_BYTES] = {0};
    if (rt_nccl_share_id(api, e, id, timeout_s, d) != 0) return NULL;
    return rt_nccl_world_create(api, id, e->rank, e->world_size, device, timeout_s, d);
}
