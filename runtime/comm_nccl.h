/* comm_nccl.h — the `nccl` communication backend: one rank per process and
 * GPU, communicators from NCCL, bootstrapped over the TCP rendezvous
 * (runtime/rendezvous.h). It implements the rt_comm interface (comm.h, host
 * buffers, staged through the device) for the training loop, and device-
 * pointer collectives on a caller's stream for the CUDA executor
 * (rt_dev_collectives, runtime/cuda_exec.h).
 *
 * Promises (and where they differ from comm.h):
 *  - Communicators are non-blocking NCCL communicators (ncclConfig_t
 *    blocking = 0): no NCCL call blocks the calling thread. Every wait —
 *    communicator init and split, each collective until its stream has
 *    drained, finalize — polls ncclCommGetAsyncError and cudaStreamQuery and
 *    ends after the timeout (AXO_COMM_TIMEOUT seconds, default 300) with
 *    an error naming the rank, the operation and the communicator, e.g.
 *    "rank 1: all_reduce (bf16, 4096 elements) on axis dp (2 ranks): timed
 *    out after 300 s ...". An NCCL error (a peer that died, a network
 *    failure: ncclRemoteError, ncclSystemError) ends the wait at once with
 *    NCCL's own message. Either way every NCCL communicator of this process
 *    is aborted (ncclCommAbort), so no kernel is left waiting; later calls
 *    fail with RT_COMM_ERR_ABORTED and the first reason.
 *  - Host-buffer operations (rt_comm) return once their work is complete.
 *    Device collectives (rt_nccl_all_reduce, ...) return once NCCL has
 *    taken the call: a CUDA event is recorded after it on the caller's
 *    stream, and a watchdog thread (started on first use) polls the
 *    in-flight events and the communicators' async errors. At the deadline
 *    (AXO_COMM_TIMEOUT after the call) or on an error it aborts every
 *    communicator of the process, which also ends the collective's kernel,
 *    so a cudaStreamSynchronize stuck behind a dead peer returns;
 *    rt_nccl_world_drain then reports what failed. So the host queues the
 *    next kernels (on other streams: compute overlapping communication)
 *    while a collective runs, and a hang still ends with a message.
 *    AXO_NCCL_SYNC=1 (or an api table without events) makes device
 *    collectives wait for their stream to drain, as host operations do.
 *    All NCCL/CUDA calls of the backend, the watchdog's included, are
 *    serialised by one lock per world.
 *  - An abort is local to this process. Peers learn of it from NCCL (a
 *    broken connection shows up as an async error) or at their own
 *    timeout; the launcher (axorun's spawner, torchrun, srun) stops the
 *    other ranks as soon as one exits with an error.
 *  - Mismatched calls (a different operation or count on some rank) are not
 *    detected before buffers are touched, as comm.h asks of the local
 *    backend: NCCL cannot tell. They hang and end at the timeout.
 *  - Determinism: NCCL does not sum in rank order. For a fixed NCCL
 *    version, number of ranks, topology, algorithm and protocol, and buffer
 *    size, results repeat bit for bit from run to run, and every rank of an
 *    all_reduce receives the same bits (ring and tree reduce each element
 *    once, then broadcast it). The order of the additions depends on the
 *    algorithm NCCL picks per call size (ring, tree, NVLS, CollNet), so a
 *    bucketed call need not equal per-tensor calls bit for bit, and bf16 is
 *    summed in bf16 per step of the ring or tree (the local backend widens
 *    to f32 and rounds once). With 2 ranks every sum is a single addition,
 *    which is commutative: f32 results equal the local backend's exactly.
 *    NCCL_ALGO=Ring NCCL_PROTO=Simple pins the algorithm where repeatability
 *    across call sizes matters.
 *  - send/recv (host): comm.h promises buffered sends. NCCL's are not, so a
 *    send is deferred: its data is copied to the device and the send is
 *    issued together with this rank's next recv, as one NCCL group (a ring
 *    "send right, receive left" therefore works). Any other operation first
 *    issues the deferred sends as a group of their own; a peer that posts
 *    the matching recv only after an operation this rank is blocked in
 *    times out. The device form, rt_nccl_ring_shift, is one grouped
 *    ncclSend/ncclRecv to the next and from the previous rank.
 *  - Splits are ncclCommSplit (rt_comm_split_axis builds the per-mesh-axis
 *    communicators as with the local backend).
 *
 * The NCCL and CUDA runtime calls go through a table (rt_nccl_api): the real
 * one loads libnccl.so.2 with dlopen (so axo starts where NCCL is absent and
 * says so only when NCCL is needed; AXO_NCCL_LIB names another library file,
 * e.g. the one of a PyTorch install); tests substitute a fake to check the
 * waiting, timeout and abort logic without a GPU.
 */
#ifndef RT_COMM_NCCL_H
#define RT_COMM_NCCL_H

#include <stddef.h>

#include "runtime/comm.h"
#include "runtime/cuda_exec.h"
#include "runtime/rendezvous.h"

#define RT_NCCL_ID_BYTES 128 /* sizeof(ncclUniqueId) */

/* ---- the calls the backend makes ---------------------------------------------
 * Every int-returning call returns 0 on success, RT_NCCL_PENDING where NCCL
 * says ncclInProgress (or CUDA cudaErrorNotReady), else the library's
 * positive error code, which `describe` turns into text. Communicators and
 * streams are opaque pointers (ncclComm_t, cudaStream_t). */
#define RT_NCCL_PENDING (-1)

typedef enum rt_nccl_type { RT_NCCL_F32, RT_NCCL_BF16, RT_NCCL_F64, RT_NCCL_I32, RT_NCCL_U8 } rt_nccl_type;

typedef struct rt_nccl_api {
    const char *name; /* "libnccl.so.2 (NCCL 2.28.9)" */
    void *ctx;
    /* NCCL */
    int (*get_unique_id)(void *ctx, unsigned char id[RT_NCCL_ID_BYTES]);
    /* ncclCommInitRankConfig / ncclCommSplit with blocking = 0; split color
     * -1 (RT_COMM_SPLIT_NONE) gives *out = NULL */
    int (*comm_init)(void *ctx, void **comm, int nranks, const unsigned char id[RT_NCCL_ID_BYTES], int rank);
    int (*comm_split)(void *ctx, void *comm, int color, int key, void **out);
    int (*comm_state)(void *ctx, void *comm); /* ncclCommGetAsyncError: 0, RT_NCCL_PENDING or the error */
    int (*comm_rank_size)(void *ctx, void *comm, int *rank, int *size);
    int (*comm_finalize)(void *ctx, void *comm);
    int (*comm_destroy)(void *ctx, void *comm);
    int (*comm_abort)(void *ctx, void *comm);
    int (*group_start)(void *ctx);
    int (*group_end)(void *ctx);
    int (*all_reduce)(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, void *stream);
    int (*all_gather)(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n_per_rank,
                      void *stream);
    int (*reduce_scatter)(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n_per_rank,
                          void *stream);
    int (*broadcast)(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, int root,
                     void *stream);
    int (*send)(void *ctx, void *comm, rt_nccl_type t, const void *buf, size_t n, int peer, void *stream);
    int (*recv)(void *ctx, void *comm, rt_nccl_type t, void *buf, size_t n, int peer, void *stream);
    /* CUDA runtime */
    int (*set_device)(void *ctx, int device);
    int (*stream_create)(void *ctx, void **stream);
    void (*stream_destroy)(void *ctx, void *stream);
    int (*stream_query)(void *ctx, void *stream); /* 0 drained, RT_NCCL_PENDING, or the error */
    int (*dev_alloc)(void *ctx, void **p, size_t bytes);
    void (*dev_free)(void *ctx, void *p);
    /* cudaMemcpyAsync host->device (to_device) or device->host on stream */
    int (*copy)(void *ctx, void *dst, const void *src, size_t bytes, int to_device, void *stream);
    /* CUDA events (may be NULL: device collectives are then synchronous) */
    int (*event_create)(void *ctx, void **ev); /* cudaEventCreateWithFlags(cudaEventDisableTiming) */
    int (*event_record)(void *ctx, void *ev, void *stream);
    int (*event_query)(void *ctx, void *ev); /* 0 complete, RT_NCCL_PENDING, or the error */
    void (*event_destroy)(void *ctx, void *ev);
    /* text for an error code of NCCL (cuda = 0; comm may be NULL) or CUDA */
    void (*describe)(void *ctx, int cuda, int code, void *comm, char *out, size_t cap);
} rt_nccl_api;

/* The real NCCL (dlopen of $AXO_NCCL_LIB, else libnccl.so.2; NCCL >= 2.18)
 * and CUDA runtime. NULL with the reason in d: axo built without nccl.h or
 * without CUDA, the library missing or too old. Loaded once per process. */
const rt_nccl_api *rt_nccl_api_load(ax_diag *d);

/* ---- bootstrap -------------------------------------------------------------- */

/* The TCP port of the id exchange on MASTER_ADDR: MASTER_PORT, except under
 * torchrun when its agent already serves its own TCPStore there (PyTorch >=
 * 2.4 with the c10d rendezvous says so with TORCHELASTIC_USE_AGENT_STORE=True):
 * then MASTER_PORT + 1 (MASTER_PORT - 1 at 65535). AXO_RDZV_PORT, if set,
 * overrides both (every rank must see the same value). -1 with an error if
 * AXO_RDZV_PORT is not a port. */
int rt_nccl_rdzv_port(const rt_launch_env *e, ax_diag *d);

/* Rank 0 makes the NCCL unique id (api->get_unique_id) and hands it to the
 * other ranks of the job e over the TCP rendezvous (rt_rendezvous, at
 * rt_nccl_rdzv_port); they receive it into id. Needs only get_unique_id of
 * api (and only on rank 0). */
int rt_nccl_share_id(const rt_nccl_api *api, const rt_launch_env *e, unsigned char id[RT_NCCL_ID_BYTES],
                     double timeout_s, ax_diag *d);

/* The CUDA device of this process: with one visible device, 0 (the
 * launcher gave each process its own GPU, or there is one); else
 * LOCAL_RANK, which must be below the device count. -1 with an error. */
int rt_nccl_pick_device(const rt_launch_env *e, int ndevices, ax_diag *d);

/* ---- the world ---------------------------------------------------------------- */
typedef struct rt_nccl_world rt_nccl_world;

/* This process's rank of an NCCL world of `size` ranks on CUDA device
 * `device`, from an id every rank holds (rt_nccl_share_id). Waits for
 * every rank to join, at most timeout_s (<= 0: rt_comm_env_timeout). NULL
 * with an error in d. */
rt_nccl_world *rt_nccl_world_create(const rt_nccl_api *api, const unsigned char id[RT_NCCL_ID_BYTES], int rank,
                                    int size, int device, double timeout_s, ax_diag *d);
/* rt_nccl_api_load + rt_nccl_share_id + rt_nccl_world_create for the job e. */
rt_nccl_world *rt_nccl_join(const rt_launch_env *e, int device, double timeout_s, ax_diag *d);
/* The world communicator (owned by the world). */
rt_comm *rt_nccl_comm(rt_nccl_world *w);
/* Finalizes every communicator still open (splits first) within the timeout,
 * else aborts them; frees the world. After an abort it frees no device
 * memory and destroys no stream (that could wait for a kernel NCCL failed to
 * stop): the process's exit returns them. */
void rt_nccl_world_destroy(rt_nccl_world *w);
/* NULL, or the reason this rank's communicators were aborted. The one call
 * that may come from another thread (a watchdog: axorun gives a rank a
 * grace period after an abort, then exits the process, so that not even a
 * cleanup stuck on the device can hang the job). */
const char *rt_nccl_world_aborted(rt_nccl_world *w);

/* Device collectives asynchronous (the default where the api has events)
 * or not (AXO_NCCL_SYNC=1). */
void rt_nccl_world_set_async(rt_nccl_world *w, int on);
/* Waits until every in-flight device collective is complete (call it after
 * synchronising their streams: then it returns at once) or has failed: 0,
 * or an RT_COMM_ERR_* with the first failure's message in err (e.g. "rank
 * 1: all_reduce (bf16, 4096 elements) on axis dp (2 ranks): timed out after
 * 300 s ..."). */
int rt_nccl_world_drain(rt_nccl_world *w, char *err, size_t cap);

/* 1 if c is an NCCL communicator. */
int rt_comm_is_nccl(const rt_comm *c);
/* Names c in error messages ("axis dp"); no-op for other backends. */
void rt_nccl_set_label(rt_comm *c, const char *label);

/* ---- device collectives ---------------------------------------------------------
 * On an NCCL communicator (world or split), device buffers, enqueued on
 * stream (a cudaStream_t) after what is already there; each returns once
 * enqueued (or, synchronous, once the stream has drained: see above). dt: IR_F32 or IR_BF16; all_gather
 * and ring_shift move bits, so they also take IR_I32, and IR_U8 and IR_NF4
 * packed as runtime/cuda_exec.h stores them (sent as bytes: nf4 needs an
 * even n). Layouts as comm.h; in-place forms as NCCL allows them. n counts
 * elements of dt. */
int rt_nccl_all_reduce(rt_comm *c, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream);
int rt_nccl_all_gather(rt_comm *c, ir_dtype dt, const void *send, void *recv, int64_t n_per_rank, void *stream);
int rt_nccl_reduce_scatter(rt_comm *c, ir_dtype dt, const void *send, void *recv, int64_t n_per_rank, void *stream);
/* recv <- send of the previous rank; send -> the next rank (one group). */
int rt_nccl_ring_shift(rt_comm *c, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream);

/* rt_dev_collectives over the per-mesh-axis NCCL communicators of a rank
 * (rt_rank_coll.axis of runtime/launch.h), for rt_cuda_opts.coll.
 * dc.ring_shift (also kept as the ring_shift member) is the executor's ring
 * attention's. */
typedef struct rt_nccl_dev_coll {
    rt_dev_collectives dc;
    rt_comm *axis[IR_MAX_MESH];
    int (*ring_shift)(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream);
} rt_nccl_dev_coll;
void rt_nccl_dev_coll_init(rt_nccl_dev_coll *c, rt_comm *const *axis, int naxes);

#endif
