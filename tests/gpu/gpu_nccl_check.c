/* gpu_nccl_check.c — the NCCL backend on real GPUs (runtime/comm_nccl.h).
 * Built with the project when CUDA is found; driven by tests/gpu/run.sh.
 *
 *   gpu_nccl_check            one rank (a world of 1) on GPU 0: the device
 *                             collectives (f32, bf16; in-place forms; the
 *                             executor's rt_dev_collectives adapter), every
 *                             host-staged rt_comm operation, a split; then a
 *                             world of 2 whose rank 1 never comes: the
 *                             non-blocking init must end at the timeout with
 *                             the message and an abort, not hang.
 *   gpu_nccl_check --ranks N  N processes, one per GPU, bootstrapped like
 *                             axorun's (rt_spawn_ranks + rt_nccl_join over
 *                             the TCP rendezvous): every collective with data
 *                             whose sums are exact in any order (so results
 *                             are compared exactly, f32 and bf16), the ring
 *                             shift, host ops, per-mesh-axis splits, the bus
 *                             bandwidth of a 64 MiB bf16 all_reduce
 *                             (informative); then a peer that hangs (skips a
 *                             collective) and a peer that dies: the others
 *                             must fail within AXO_COMM_TIMEOUT (+ slack).
 *
 * Exit: 0 passed; 1 failed; 77 skipped (no GPU, fewer GPUs than ranks, or
 * axo built without nccl.h / libnccl.so.2 missing), with the reason on the
 * "SKIP" line. */
#include "runtime/comm_nccl.h"
#include "runtime/spawn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef AXO_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#if defined(AXO_HAVE_CUDA) && defined(AXO_HAVE_NCCL)

static int n_pass, n_fail;
static int g_rank = 0;

#define CHECK(c, ...)                                                                          \
    do {                                                                                       \
        if (c) {                                                                               \
            n_pass++;                                                                          \
        } else {                                                                               \
            n_fail++;                                                                          \
            printf("FAIL rank %d (%s:%d): %s: ", g_rank, __FILE__, __LINE__, #c);              \
            printf(__VA_ARGS__);                                                               \
            printf("\n");                                                                      \
        }                                                                                      \
    } while (0)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static cudaStream_t g_stream;

static void *dalloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        printf("FAIL rank %d: cudaMalloc of %zu bytes\n", g_rank, bytes);
        exit(1);
    }
    return p;
}
static void up(void *d, const void *h, size_t bytes) { cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice); }
static void down(void *h, const void *d, size_t bytes) { cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost); }

/* Values whose sums over up to 8 ranks are small integers: exact in f32 and
 * bf16 in any order of addition. */
static float val(int rank, int64_t i) { return (float)((rank + 1) * (int)(i % 7 + 1)); }
static float rank_sum(int nranks, int64_t i) { return (float)(nranks * (nranks + 1) / 2 * (int)(i % 7 + 1)); }

/* Host floats <-> device buffer of dt (bf16 rounded; exact for our values). */
static void *dev_of(ir_dtype dt, const float *h, int64_t n) {
    size_t e = dt == IR_BF16 ? 2 : 4;
    void *d = dalloc((size_t)(n > 0 ? n : 1) * e);
    if (dt == IR_F32) {
        up(d, h, (size_t)n * 4);
    } else {
        uint16_t *b = malloc(sizeof *b * (size_t)(n > 0 ? n : 1));
        for (int64_t i = 0; i < n; i++) b[i] = ax_f32_to_bf16(h[i]);
        up(d, b, (size_t)n * 2);
        free(b);
    }
    return d;
}
static void host_of(ir_dtype dt, float *h, const void *d, int64_t n) {
    if (dt == IR_F32) {
        down(h, d, (size_t)n * 4);
        return;
    }
    uint16_t *b = malloc(sizeof *b * (size_t)(n > 0 ? n : 1));
    down(b, d, (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) h[i] = ax_bf16_to_f32(b[i]);
    free(b);
}

static int64_t mismatches(const float *got, const float *want, int64_t n, int64_t *first) {
    int64_t bad = 0;
    *first = -1;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            if (*first < 0) *first = i;
            bad++;
        }
    return bad;
}

/* Every device collective on communicator c (rank r of p), dtype dt. */
static void device_collectives(rt_comm *c, ir_dtype dt, const char *tag) {
    int r = rt_comm_rank(c), p = rt_comm_size(c);
    const int64_t n = 1000 + 37; /* not a multiple of anything NCCL likes */
    float *h = malloc(sizeof(float) * (size_t)(n * p)), *want = malloc(sizeof(float) * (size_t)(n * p)),
          *got = malloc(sizeof(float) * (size_t)(n * p));
    int64_t first;
    /* all_reduce, out of place and in place */
    for (int64_t i = 0; i < n; i++) h[i] = val(r, i), want[i] = rank_sum(p, i);
    void *s = dev_of(dt, h, n), *d = dalloc((size_t)n * 4);
    int rc = rt_nccl_all_reduce(c, dt, s, d, n, g_stream);
    CHECK(rc == 0, "%s all_reduce: %s", tag, rt_comm_error(c));
    host_of(dt, got, d, n);
    CHECK(mismatches(got, want, n, &first) == 0, "%s all_reduce: element %lld is %g, expected %g", tag,
          (long long)first, got[first < 0 ? 0 : first], want[first < 0 ? 0 : first]);
    rc = rt_nccl_all_reduce(c, dt, s, s, n, g_stream);
    host_of(dt, got, s, n);
    CHECK(rc == 0 && mismatches(got, want, n, &first) == 0, "%s all_reduce in place (element %lld)", tag,
          (long long)first);
    cudaFree(s);
    cudaFree(d);
    /* all_gather: block q is rank q's */
    for (int64_t i = 0; i < n; i++) h[i] = val(r, i);
    for (int q = 0; q < p; q++)
        for (int64_t i = 0; i < n; i++) want[q * n + i] = val(q, i);
    s = dev_of(dt, h, n);
    d = dalloc((size_t)(n * p) * 4);
    rc = rt_nccl_all_gather(c, dt, s, d, n, g_stream);
    host_of(dt, got, d, n * p);
    CHECK(rc == 0 && mismatches(got, want, n * p, &first) == 0, "%s all_gather (element %lld): %s", tag,
          (long long)first, rt_comm_error(c));
    cudaFree(s);
    cudaFree(d);
    /* reduce_scatter: rank r gets the sum of every rank's block r */
    for (int q = 0; q < p; q++)
        for (int64_t i = 0; i < n; i++) h[q * n + i] = val(r, i + q);
    for (int64_t i = 0; i < n; i++) want[i] = rank_sum(p, i + r);
    s = dev_of(dt, h, n * p);
    d = dalloc((size_t)n * 4);
    rc = rt_nccl_reduce_scatter(c, dt, s, d, n, g_stream);
    host_of(dt, got, d, n);
    CHECK(rc == 0 && mismatches(got, want, n, &first) == 0, "%s reduce_scatter (element %lld): %s", tag,
          (long long)first, rt_comm_error(c));
    cudaFree(s);
    cudaFree(d);
    /* ring shift: from the previous rank */
    for (int64_t i = 0; i < n; i++) h[i] = val(r, i), want[i] = val((r + p - 1) % p, i);
    s = dev_of(dt, h, n);
    d = dalloc((size_t)n * 4);
    rc = rt_nccl_ring_shift(c, dt, s, d, n, g_stream);
    host_of(dt, got, d, n);
    CHECK(rc == 0 && mismatches(got, want, n, &first) == 0, "%s ring_shift (element %lld): %s", tag, (long long)first,
          rt_comm_error(c));
    cudaFree(s);
    cudaFree(d);
    free(h);
    free(want);
    free(got);
}

/* Every rt_comm operation (host buffers, staged through the device). */
static void host_ops(rt_comm *c) {
    int r = rt_comm_rank(c), p = rt_comm_size(c);
    enum { N = 333 };
    float a[N], g[N * 8], want[N * 8];
    for (int i = 0; i < N; i++) a[i] = val(r, i);
    CHECK(rt_comm_all_reduce_sum_f32(c, a, N) == 0, "host all_reduce_sum_f32: %s", rt_comm_error(c));
    int bad = 0;
    for (int i = 0; i < N; i++) bad += a[i] != rank_sum(p, i);
    CHECK(bad == 0, "host all_reduce_sum_f32: %d wrong", bad);
    double x[3] = {1e-300 * (r + 1), 0.25 * (r + 1), -(double)(r + 1)};
    CHECK(rt_comm_all_reduce_sum_f64(c, x, 3) == 0 && x[1] == 0.25 * p * (p + 1) / 2 && x[2] == -(double)p * (p + 1) / 2,
          "host all_reduce_sum_f64: %s", rt_comm_error(c));
    for (int i = 0; i < N; i++) a[i] = val(r, i);
    for (int q = 0; q < p; q++)
        for (int i = 0; i < N; i++) want[q * N + i] = val(q, i);
    CHECK(rt_comm_all_gather_f32(c, a, g, N) == 0 && !memcmp(g, want, sizeof(float) * (size_t)(N * p)),
          "host all_gather_f32: %s", rt_comm_error(c));
    for (int q = 0; q < p; q++)
        for (int i = 0; i < N; i++) g[q * N + i] = val(r, i + q);
    CHECK(rt_comm_reduce_scatter_sum_f32(c, g, a, N) == 0, "host reduce_scatter_sum_f32: %s", rt_comm_error(c));
    bad = 0;
    for (int i = 0; i < N; i++) bad += a[i] != rank_sum(p, i + r);
    CHECK(bad == 0, "host reduce_scatter_sum_f32: %d wrong", bad);
    for (int i = 0; i < N; i++) a[i] = r == p - 1 ? (float)i : -1.0f;
    CHECK(rt_comm_broadcast_f32(c, a, N, p - 1) == 0 && a[N - 1] == (float)(N - 1) && a[0] == 0.0f,
          "host broadcast_f32: %s", rt_comm_error(c));
    CHECK(rt_comm_barrier(c) == 0, "host barrier: %s", rt_comm_error(c));
    /* a ring of buffered sends: send right, then receive left */
    for (int i = 0; i < N; i++) a[i] = val(r, i);
    CHECK(rt_comm_send_f32(c, a, N, (r + 1) % p) == 0 && rt_comm_recv_f32(c, g, N, (r + p - 1) % p) == 0,
          "host send/recv ring: %s", rt_comm_error(c));
    bad = 0;
    for (int i = 0; i < N; i++) bad += g[i] != val((r + p - 1) % p, i);
    CHECK(bad == 0, "host send/recv ring: %d wrong", bad);
}

/* The communicators of every axis of a row-major mesh (as axorun builds them). */
static void mesh_axes(rt_comm *w, int d0, int d1) {
    int dims[2] = {d0, d1};
    for (int a = 0; a < 2; a++) {
        rt_comm *ac = NULL;
        int rc = rt_comm_split_axis(w, 2, dims, a, &ac);
        CHECK(rc == 0 && ac && rt_comm_size(ac) == dims[a], "split_axis %d of %dx%d: %s", a, d0, d1, rt_comm_error(w));
        if (!ac) continue;
        rt_nccl_set_label(ac, a ? "axis sp" : "axis dp");
        int coord = a ? rt_comm_rank(w) % d1 : rt_comm_rank(w) / d1;
        CHECK(rt_comm_rank(ac) == coord, "split_axis %d: rank %d, expected %d", a, rt_comm_rank(ac), coord);
        if (rt_comm_size(ac) > 1) device_collectives(ac, IR_BF16, a ? "sp bf16" : "dp bf16");
        float f = 1;
        CHECK(rt_comm_all_reduce_sum_f32(ac, &f, 1) == 0 && f == (float)dims[a], "all_reduce over axis %d", a);
        rt_comm_destroy(ac);
    }
}

static void bandwidth(rt_comm *c) {
    const int64_t n = 32 << 20; /* 64 MiB of bf16 */
    void *b = dalloc((size_t)n * 2);
    cudaMemset(b, 0, (size_t)n * 2);
    int rc = rt_nccl_all_reduce(c, IR_BF16, b, b, n, g_stream); /* warm-up, connections */
    double t0 = now_s();
    const int iters = 10;
    for (int k = 0; k < iters && !rc; k++) rc = rt_nccl_all_reduce(c, IR_BF16, b, b, n, g_stream);
    double dt = (now_s() - t0) / iters;
    int p = rt_comm_size(c);
    CHECK(rc == 0, "bandwidth all_reduce: %s", rt_comm_error(c));
    if (g_rank == 0 && !rc)
        printf("info: all_reduce of 64 MiB bf16 on %d ranks: %.3f ms, bus bandwidth %.1f GB/s (with the per-call wait)\n",
               p, dt * 1e3, 2.0 * (p - 1) / p * (double)n * 2 / dt / 1e9);
    cudaFree(b);
}

static int one_rank(void) {
    ax_diag d;
    ax_diag_init(&d);
    const rt_nccl_api *api = rt_nccl_api_load(&d);
    if (!api) {
        printf("SKIP: %s\n", d.entries[0].msg);
        return 77;
    }
    printf("info: %s\n", api->name);
    cudaSetDevice(0);
    cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
    unsigned char id[RT_NCCL_ID_BYTES];
    CHECK(api->get_unique_id(api->ctx, id) == 0, "ncclGetUniqueId");
    double t0 = now_s();
    rt_nccl_world *w = rt_nccl_world_create(api, id, 0, 1, 0, 60.0, &d);
    CHECK(w != NULL, "world of 1: %s", d.n ? d.entries[0].msg : "?");
    if (!w) return 1;
    printf("info: world of 1 ready in %.2f s\n", now_s() - t0);
    rt_comm *c = rt_nccl_comm(w);
    device_collectives(c, IR_F32, "f32");
    device_collectives(c, IR_BF16, "bf16");
    host_ops(c);
    mesh_axes(c, 1, 1);
    /* the executor's adapter, axis 0 */
    rt_nccl_dev_coll dc;
    rt_nccl_dev_coll_init(&dc, &c, 1);
    float h[64], got[64];
    for (int i = 0; i < 64; i++) h[i] = (float)i;
    void *b = dev_of(IR_F32, h, 64);
    CHECK(dc.dc.all_reduce(dc.dc.ctx, 0, IR_F32, b, 64, g_stream) == 0, "adapter all_reduce: %s", rt_comm_error(c));
    host_of(IR_F32, got, b, 64);
    CHECK(!memcmp(h, got, sizeof h), "adapter all_reduce changed a 1-rank sum");
    CHECK(rt_nccl_all_reduce(c, IR_I32, b, b, 64, g_stream) == RT_COMM_ERR_INVALID, "an i32 sum is refused");
    cudaFree(b);
    bandwidth(c);
    rt_nccl_world_destroy(w);
    /* a world of 2 whose rank 1 never starts: init ends at the timeout, aborted */
    CHECK(api->get_unique_id(api->ctx, id) == 0, "ncclGetUniqueId");
    ax_diag_free(&d);
    ax_diag_init(&d);
    t0 = now_s();
    w = rt_nccl_world_create(api, id, 0, 2, 0, 3.0, &d);
    double dt = now_s() - t0;
    CHECK(w == NULL, "a world of 2 with one rank cannot be ready");
    CHECK(dt >= 3.0 && dt < 20.0, "init gave up after %.1f s (timeout 3 s)", dt);
    CHECK(ax_diag_contains(&d, "rank 0: init on the world (2 ranks): timed out after 3 s"), "message: %s",
          d.n ? d.entries[0].msg : "(none)");
    printf("info: lonely init ended after %.1f s: %s\n", dt, d.n ? d.entries[0].msg : "");
    rt_nccl_world_destroy(w);
    ax_diag_free(&d);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

/* ---- several processes ------------------------------------------------------------------ */

static int worker(const char *what) {
    ax_diag d;
    ax_diag_init(&d);
    rt_launch_env e;
    if (rt_launch_env_read(&e, &d) != 0) {
        ax_diag_print(&d, stderr);
        return 2;
    }
    g_rank = e.rank;
    double timeout = 0;
    rt_comm_env_timeout(&timeout, NULL);
    int ndev = rt_cuda_device_count(NULL, 0);
    int device = rt_nccl_pick_device(&e, ndev, &d);
    if (device < 0) {
        ax_diag_print(&d, stderr);
        return 1;
    }
    cudaSetDevice(device);
    cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
    double t0 = now_s();
    rt_nccl_world *w = rt_nccl_join(&e, device, timeout, &d);
    if (!w) {
        printf("FAIL rank %d: join: %s\n", e.rank, d.n ? d.entries[0].msg : "?");
        return 1;
    }
    if (e.rank == 0) printf("info: %d ranks joined in %.2f s\n", e.world_size, now_s() - t0);
    rt_comm *c = rt_nccl_comm(w);
    int p = e.world_size;
    if (!strcmp(what, "coll")) {
        device_collectives(c, IR_F32, "f32");
        device_collectives(c, IR_BF16, "bf16");
        host_ops(c);
        mesh_axes(c, p, 1);
        mesh_axes(c, 1, p);
        if (p % 2 == 0 && p > 2) mesh_axes(c, p / 2, 2);
        bandwidth(c);
        rt_nccl_world_destroy(w);
        if (e.rank == 0) printf("%d passed, %d failed (rank 0)\n", n_pass, n_fail);
        return n_fail ? 1 : 0;
    }
    /* hang / dead: rank 1 misbehaves, the others must end within the timeout */
    float f = 1;
    if (e.rank == 1) {
        if (!strcmp(what, "dead")) _exit(0); /* as a process that crashed: no NCCL teardown */
        sleep((unsigned)(timeout + 5));      /* never calls the all_reduce */
        _exit(0);
    }
    t0 = now_s();
    int rc = rt_comm_all_reduce_sum_f32(c, &f, 1);
    double dt = now_s() - t0;
    CHECK(rc != 0, "%s peer: the all_reduce cannot succeed", what);
    CHECK(dt < timeout + 15, "%s peer: the wait ended after %.1f s (timeout %g s)", what, dt, timeout);
    printf("info: rank %d, %s peer: ended after %.1f s with: %s\n", e.rank, what, dt, rt_comm_error(c));
    rt_nccl_world_destroy(w);
    return n_fail ? 1 : 0;
}

static int several(const char *self, int n) {
    char why[256] = "";
    int ndev = rt_cuda_device_count(why, sizeof why);
    if (ndev < n) {
        printf("SKIP: %d ranks need %d GPUs, %d visible%s%s\n", n, n, ndev, why[0] ? ": " : "", why);
        return 77;
    }
    ax_diag d;
    ax_diag_init(&d);
    if (!rt_nccl_api_load(&d)) {
        printf("SKIP: %s\n", d.entries[0].msg);
        return 77;
    }
    int failed = 0;
    const char *cases[] = {"coll", "hang", "dead"};
    for (int k = 0; k < 3; k++) {
        char *argv[] = {(char *)self, "--worker", (char *)cases[k], NULL};
        const char *env[] = {k ? "AXO_COMM_TIMEOUT=10" : "AXO_COMM_TIMEOUT=120", NULL};
        rt_spawn_opts o = {.nranks = n, .argv = argv, .extra_env = env, .grace_s = 5};
        double t0 = now_s();
        ax_diag_init(&d);
        int rc = rt_spawn_ranks(&o, &d);
        printf("%s %s: %d ranks, %.1f s%s%s\n", rc ? "FAIL" : "ok", cases[k], n, now_s() - t0, d.n ? ": " : "",
               d.n ? d.entries[0].msg : "");
        failed += rc != 0;
        ax_diag_free(&d);
    }
    printf("%d passed, %d failed\n", 3 - failed, failed);
    return failed ? 1 : 0;
}

#endif

int main(int argc, char **argv) {
#if !defined(AXO_HAVE_CUDA)
    printf("SKIP: axo was built without the CUDA toolkit\n");
    return 77;
#elif !defined(AXO_HAVE_NCCL)
    printf("SKIP: axo was built without NCCL (nccl.h was not found)\n");
    return 77;
#else
    if (argc == 3 && !strcmp(argv[1], "--worker")) return worker(argv[2]);
    int ranks = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ranks") && i + 1 < argc) ranks = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: gpu_nccl_check [--ranks N]\n");
            return 2;
        }
    }
    char why[256] = "";
    if (rt_cuda_device_count(why, sizeof why) < 1) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    if (ranks < 2) return one_rank();
    /* the children run this same file; /proc/self/exe is the path */
    return several("/proc/self/exe", ranks);
#endif
}
