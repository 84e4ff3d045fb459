/* nccl_api.c — the real rt_nccl_api (comm_nccl.h): NCCL loaded with dlopen,
 * the CUDA runtime linked as the CUDA executor links it.
 *
 * dlopen rather than linking: axorun must start on machines without NCCL
 * (CI, CPU training) and say what is missing only when a job needs NCCL;
 * and a user may point AXO_NCCL_LIB at another build (e.g. the
 * libnccl.so.2 of a PyTorch install). Each symbol is typed from nccl.h
 * (__typeof__), so a signature change in the header is a compile error.
 * NCCL keeps its own CUDA runtime; device pointers and streams are shared
 * through the driver's primary context, as every framework using NCCL does.
 */
#include "runtime/comm_nccl.h"

#if defined(AXO_HAVE_NCCL) && defined(AXO_HAVE_CUDA)

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>
#include <pthread.h>
#include <string.h>

_Static_assert(sizeof(ncclUniqueId) == RT_NCCL_ID_BYTES, "ncclUniqueId size");

#define NCCL_MIN_VERSION 21800 /* 2.18: ncclCommSplit (non-blocking communicators since 2.14) */

typedef struct nccl_fns {
    __typeof__(&ncclGetVersion) GetVersion;
    __typeof__(&ncclGetUniqueId) GetUniqueId;
    __typeof__(&ncclCommInitRankConfig) CommInitRankConfig;
    __typeof__(&ncclCommSplit) CommSplit;
    __typeof__(&ncclCommGetAsyncError) CommGetAsyncError;
    __typeof__(&ncclCommUserRank) CommUserRank;
    __typeof__(&ncclCommCount) CommCount;
    __typeof__(&ncclCommFinalize) CommFinalize;
    __typeof__(&ncclCommDestroy) CommDestroy;
    __typeof__(&ncclCommAbort) CommAbort;
    __typeof__(&ncclGroupStart) GroupStart;
    __typeof__(&ncclGroupEnd) GroupEnd;
    __typeof__(&ncclAllReduce) AllReduce;
    __typeof__(&ncclAllGather) AllGather;
    __typeof__(&ncclReduceScatter) ReduceScatter;
    __typeof__(&ncclBroadcast) Broadcast;
    __typeof__(&ncclSend) Send;
    __typeof__(&ncclRecv) Recv;
    __typeof__(&ncclGetErrorString) GetErrorString;
    __typeof__(&ncclGetLastError) GetLastError;
} nccl_fns;

static nccl_fns F;
static rt_nccl_api API;
static char api_name[300];
static char load_error[600];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static int nres(ncclResult_t r) { return r == ncclSuccess ? 0 : r == ncclInProgress ? RT_NCCL_PENDING : (int)r; }
static int cres(cudaError_t e) {
    if (e == cudaSuccess) return 0;
    if (e == cudaErrorNotReady) return RT_NCCL_PENDING;
    cudaGetLastError(); /* not sticky errors must not leak into the executor's next check */
    return (int)e;
}

static ncclDataType_t ntype(rt_nccl_type t) {
    switch (t) {
    case RT_NCCL_F32: return ncclFloat32;
    case RT_NCCL_BF16: return ncclBfloat16;
    case RT_NCCL_F64: return ncclFloat64;
    case RT_NCCL_I32: return ncclInt32;
    case RT_NCCL_U8: return ncclUint8;
    }
    return ncclFloat32;
}

static ncclConfig_t nonblocking(void) {
    ncclConfig_t c = NCCL_CONFIG_INITIALIZER;
    c.blocking = 0;
    return c;
}

static int a_get_unique_id(void *ctx, unsigned char id[RT_NCCL_ID_BYTES]) {
    ncclUniqueId u;
    int r = nres(F.GetUniqueId(&u));
    if (!r) memcpy(id, u.internal, RT_NCCL_ID_BYTES);
    return r;
}
static int a_comm_init(void *ctx, void **comm, int nranks, const unsigned char id[RT_NCCL_ID_BYTES], int rank) {
    ncclUniqueId u;
    memcpy(u.internal, id, RT_NCCL_ID_BYTES);
    ncclConfig_t cfg = nonblocking();
    ncclComm_t c = NULL;
    int r = nres(F.CommInitRankConfig(&c, nranks, u, rank, &cfg));
    *comm = c;
    return r;
}
static int a_comm_split(void *ctx, void *comm, int color, int key, void **out) {
    ncclConfig_t cfg = nonblocking();
    ncclComm_t c = NULL;
    int r = nres(F.CommSplit((ncclComm_t)comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &c, &cfg));
    *out = c;
    return r;
}
static int a_comm_state(void *ctx, void *comm) {
    ncclResult_t st = ncclSuccess;
    int r = nres(F.CommGetAsyncError((ncclComm_t)comm, &st));
    return r > 0 ? r : nres(st);
}
static int a_comm_rank_size(void *ctx, void *comm, int *rank, int *size) {
    int r = nres(F.CommUserRank((ncclComm_t)comm, rank));
    return r ? r : nres(F.CommCount((ncclComm_t)comm, size));
}
static int a_comm_finalize(void *ctx, void *comm) { return nres(F.CommFinalize((ncclComm_t)comm)); }
static int a_comm_destroy(void *ctx, void *comm) { return nres(F.CommDestroy((ncclComm_t)comm)); }
static int a_comm_abort(void *ctx, void *comm) { return nres(F.CommAbort((ncclComm_t)comm)); }
static int a_group_start(void *ctx) { return nres(F.GroupStart()); }
static int a_group_end(void *ctx) { return nres(F.GroupEnd()); }
static int a_all_reduce(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, void *stream) {
    return nres(F.AllReduce(send, recv, n, ntype(t), ncclSum, (ncclComm_t)comm, (cudaStream_t)stream));
}
static int a_all_gather(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, void *stream) {
    return nres(F.AllGather(send, recv, n, ntype(t), (ncclComm_t)comm, (cudaStream_t)stream));
}
static int a_reduce_scatter(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n,
                            void *stream) {
    return nres(F.ReduceScatter(send, recv, n, ntype(t), ncclSum, (ncclComm_t)comm, (cudaStream_t)stream));
}
static int a_broadcast(void *ctx, void *comm, rt_nccl_type t, const void *send, void *recv, size_t n, int root,
                       void *stream) {
    return nres(F.Broadcast(send, recv, n, ntype(t), root, (ncclComm_t)comm, (cudaStream_t)stream));
}
static int a_send(void *ctx, void *comm, rt_nccl_type t, const void *buf, size_t n, int peer, void *stream) {
    return nres(F.Send(buf, n, ntype(t), peer, (ncclComm_t)comm, (cudaStream_t)stream));
}
static int a_recv(void *ctx, void *comm, rt_nccl_type t, void *buf, size_t n, int peer, void *stream) {
    return nres(F.Recv(buf, n, ntype(t), peer, (ncclComm_t)comm, (cudaStream_t)stream));
}

static int a_set_device(void *ctx, int device) { return cres(cudaSetDevice(device)); }
static int a_stream_create(void *ctx, void **stream) {
    cudaStream_t s = NULL;
    int r = cres(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *stream = s;
    return r;
}
static void a_stream_destroy(void *ctx, void *stream) { cudaStreamDestroy((cudaStream_t)stream); }
static int a_stream_query(void *ctx, void *stream) { return cres(cudaStreamQuery((cudaStream_t)stream)); }
static int a_event_create(void *ctx, void **ev) {
    cudaEvent_t e = NULL;
    int r = cres(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    *ev = e;
    return r;
}
static int a_event_record(void *ctx, void *ev, void *stream) {
    return cres(cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)stream));
}
static int a_event_query(void *ctx, void *ev) { return cres(cudaEventQuery((cudaEvent_t)ev)); }
static void a_event_destroy(void *ctx, void *ev) { cudaEventDestroy((cudaEvent_t)ev); }
static int a_dev_alloc(void *ctx, void **p, size_t bytes) { return cres(cudaMalloc(p, bytes)); }
static void a_dev_free(void *ctx, void *p) {
    if (p) cudaFree(p);
}
static int a_copy(void *ctx, void *dst, const void *src, size_t bytes, int to_device, void *stream) {
    if (!bytes) return 0;
    return cres(cudaMemcpyAsync(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                (cudaStream_t)stream));
}
static void a_describe(void *ctx, int cuda, int code, void *comm, char *out, size_t cap) {
    if (cuda) {
        snprintf(out, cap, "%s (%s)", cudaGetErrorString((cudaError_t)code), cudaGetErrorName((cudaError_t)code));
        return;
    }
    const char *last = F.GetLastError ? F.GetLastError((ncclComm_t)comm) : NULL;
    snprintf(out, cap, "%s%s%s", F.GetErrorString((ncclResult_t)code), last && *last ? ": " : "",
             last && *last ? last : "");
}

static void load(void) {
    const char *path = getenv("AXO_NCCL_LIB");
    if (!path || !*path) path = "libnccl.so.2";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error,
                 "cannot load NCCL (%s): %s; install NCCL >= 2.18 or point AXO_NCCL_LIB at a libnccl.so.2", path,
                 dlerror());
        return;
    }
    const char *missing = NULL;
#define SYM(field, name)                                      \
    do {                                                      \
        F.field = (__typeof__(F.field))dlsym(h, name);        \
        if (!F.field && !missing) missing = name;             \
    } while (0)
    SYM(GetVersion, "ncclGetVersion");
    SYM(GetUniqueId, "ncclGetUniqueId");
    SYM(CommInitRankConfig, "ncclCommInitRankConfig");
    SYM(CommSplit, "ncclCommSplit");
    SYM(CommGetAsyncError, "ncclCommGetAsyncError");
    SYM(CommUserRank, "ncclCommUserRank");
    SYM(CommCount, "ncclCommCount");
    SYM(CommFinalize, "ncclCommFinalize");
    SYM(CommDestroy, "ncclCommDestroy");
    SYM(CommAbort, "ncclCommAbort");
    SYM(GroupStart, "ncclGroupStart");
    SYM(GroupEnd, "ncclGroupEnd");
    SYM(AllReduce, "ncclAllReduce");
    SYM(AllGather, "ncclAllGather");
    SYM(ReduceScatter, "ncclReduceScatter");
    SYM(Broadcast, "ncclBroadcast");
    SYM(Send, "ncclSend");
    SYM(Recv, "ncclRecv");
    SYM(GetErrorString, "ncclGetErrorString");
    SYM(GetLastError, "ncclGetLastError");
#undef SYM
    int v = 0;
    if (missing) {
        snprintf(load_error, sizeof load_error, "%s has no %s: NCCL >= 2.18 is needed", path, missing);
    } else if (F.GetVersion(&v) != ncclSuccess || v < NCCL_MIN_VERSION) {
        snprintf(load_error, sizeof load_error, "%s is NCCL version code %d; axo needs >= %d (2.18)", path, v,
                 NCCL_MIN_VERSION);
    }
    if (load_error[0]) {
        dlclose(h);
        memset(&F, 0, sizeof F);
        return;
    }
    /* codes >= 10000 are major*10000 + minor*100 + patch; older ones major*1000 + minor*100 + patch */
    int major = v >= 10000 ? v / 10000 : v / 1000, minor = v >= 10000 ? v / 100 % 100 : v / 100 % 10,
        patch = v % 100;
    snprintf(api_name, sizeof api_name, "%s (NCCL %d.%d.%d)", path, major, minor, patch);
    API = (rt_nccl_api){
        .name = api_name,
        .get_unique_id = a_get_unique_id,
        .comm_init = a_comm_init,
        .comm_split = a_comm_split,
        .comm_state = a_comm_state,
        .comm_rank_size = a_comm_rank_size,
        .comm_finalize = a_comm_finalize,
        .comm_destroy = a_comm_destroy,
        .comm_abort = a_comm_abort,
        .group_start = a_group_start,
        .group_end = a_group_end,
        .all_reduce = a_all_reduce,
        .all_gather = a_all_gather,
        .reduce_scatter = a_reduce_scatter,
        .broadcast = a_broadcast,
        .send = a_send,
        .recv = a_recv,
        .set_device = a_set_device,
        .stream_create = a_stream_create,
        .stream_destroy = a_stream_destroy,
        .stream_query = a_stream_query,
        .event_create = a_event_create,
        .event_record = a_event_record,
        .event_query = a_event_query,
        .event_destroy = a_event_destroy,
        .dev_alloc = a_dev_alloc,
        .dev_free = a_dev_free,
        .copy = a_copy,
        .describe = a_describe,
    };
    /* the library stays loaded for the life of the process (NCCL's threads) */
}

const rt_nccl_api *rt_nccl_api_load(ax_diag *d) {
    pthread_once(&load_once, load);
    if (load_error[0]) {
        ax_error(d, "nccl", "%s", load_error);
        return NULL;
    }
    return &API;
}

#else

const rt_nccl_api *rt_nccl_api_load(ax_diag *d) {
#ifndef AXO_HAVE_CUDA
    ax_error(d, "nccl", "axo was built without the CUDA toolkit: the NCCL backend is not available");
#else
    ax_error(d, "nccl", "axo was built without NCCL (nccl.h was not found at build time): the NCCL backend is not "
                        "available; install NCCL's headers and rebuild");
#endif
    return NULL;
}

#endif
