/* test_spawn.c — the one-node launcher and the NCCL bootstrap between real
 * processes, without NCCL: this program starts copies of itself as ranks
 * (rt_spawn_ranks); each reads its launch environment as under torchrun
 * and shares a unique-id-sized blob from rank 0 over the TCP rendezvous
 * (rt_nccl_share_id with a fake NCCL that only makes ids). Then failure
 * propagation: a rank that exits with an error or dies by a signal fails
 * the job at once, naming it, and the other ranks (blocked in the
 * rendezvous, waiting for the dead one) are stopped, not waited for. */
#include "runtime/comm_nccl.h"
#include "runtime/spawn.h"
#include "tests/check.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- worker side --------------------------------------------------------------- */

/* A different id per job: rank 0's pid and the time. */
static int fake_id(void *ctx, unsigned char id[RT_NCCL_ID_BYTES]) {
    unsigned long long x = (unsigned long long)getpid() * 0x9e3779b97f4a7c15ull ^ (unsigned long long)time(NULL);
    for (int i = 0; i < RT_NCCL_ID_BYTES; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        id[i] = (unsigned char)(x >> 56);
    }
    return 0;
}

static int worker(void) {
    const char *mode = getenv("SPAWN_TEST_MODE"), *dir = getenv("SPAWN_TEST_DIR");
    ax_diag d;
    ax_diag_init(&d);
    rt_launch_env e;
    if (rt_launch_env_read(&e, &d) != 0 || !mode || !dir) {
        ax_diag_print(&d, stderr);
        return 2;
    }
    if (!strcmp(mode, "fail") && e.rank == 1) return 3;
    if (!strcmp(mode, "signal") && e.rank == 1) raise(SIGKILL);
    rt_nccl_api api = {.name = "fake", .get_unique_id = fake_id};
    unsigned char id[RT_NCCL_ID_BYTES] = {0};
    int rc = rt_nccl_share_id(&api, &e, id, 60.0, &d);
    if (rc) {
        ax_diag_print(&d, stderr);
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/rank-%d", dir, e.rank);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%s %d %d %d %d %s %d ", e.launcher, e.rank, e.world_size, e.local_rank, e.local_world_size,
            e.master_addr, e.master_port);
    for (int i = 0; i < RT_NCCL_ID_BYTES; i++) fprintf(f, "%02x", id[i]);
    fprintf(f, "\n");
    fclose(f);
    ax_diag_free(&d);
    return 0;
}

/* ---- parent side ---------------------------------------------------------------- */

static char *slurp(const char *path) {
    size_t len;
    ax_diag d;
    ax_diag_init(&d);
    char *s = ax_read_file(path, &len, &d);
    ax_diag_free(&d);
    return s;
}

static int run(int n, const char *mode, const char *dir, double *secs, ax_diag *d) {
    char m[64], dd[600];
    snprintf(m, sizeof m, "SPAWN_TEST_MODE=%s", mode);
    snprintf(dd, sizeof dd, "SPAWN_TEST_DIR=%s", dir);
    const char *extra[] = {m, dd, NULL};
    char *argv[] = {"test_spawn", "worker", NULL};
    rt_spawn_opts o = {.nranks = n, .argv = argv, .extra_env = extra, .grace_s = 2.0};
    double t0 = now_s();
    int rc = rt_spawn_ranks(&o, d);
    *secs = now_s() - t0;
    return rc;
}

/* Four ranks get their own RANK/LOCAL_RANK etc. (the parent's are
 * replaced) and the same blob from rank 0. */
static void test_exchange(const char *dir) {
    setenv("RANK", "7", 1); /* as if axorun itself ran under a stale environment */
    setenv("WORLD_SIZE", "99", 1);
    ax_diag d;
    ax_diag_init(&d);
    double secs;
    CHECK_EQ(run(4, "exchange", dir, &secs, &d), 0);
    ax_diag_print(&d, stderr);
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    char *first_id = NULL;
    for (int r = 0; r < 4; r++) {
        char path[600], want[64];
        snprintf(path, sizeof path, "%s/rank-%d", dir, r);
        char *s = slurp(path);
        CHECK_MSG(s != NULL, "rank %d wrote nothing", r);
        if (!s) continue;
        snprintf(want, sizeof want, "torchrun %d 4 %d 4 127.0.0.1 ", r, r);
        CHECK_MSG(strncmp(s, want, strlen(want)) == 0, "rank %d: %s", r, s);
        char *id = strrchr(s, ' ');
        CHECK(id && strlen(id + 1) == 2 * RT_NCCL_ID_BYTES + 1);
        if (id && !first_id) first_id = strdup(id + 1);
        else if (id) CHECK_MSG(!strcmp(first_id, id + 1), "rank %d got another blob", r);
        free(s);
        unlink(path);
    }
    CHECK(first_id && strspn(first_id, "0") < 2 * RT_NCCL_ID_BYTES); /* not all zero */
    free(first_id);
    ax_diag_free(&d);
}

/* Rank 1 exits with status 3 before the rendezvous: the job fails at once
 * (rank 0 would wait 60 s for it), naming rank 1 and its status. */
static void test_failure(const char *dir) {
    ax_diag d;
    ax_diag_init(&d);
    double secs;
    CHECK_EQ(run(3, "fail", dir, &secs, &d), -1);
    CHECK_MSG(secs < 10.0, "the job took %.1f s to end", secs);
    CHECK(ax_diag_contains(&d, "rank 1 (pid "));
    CHECK(ax_diag_contains(&d, ") exited with status 3; stopped the other ranks 0, 2"));
    CHECK_EQ(d.nerrors, 1);
    ax_diag_free(&d);
    ax_diag_init(&d);
    CHECK_EQ(run(2, "signal", dir, &secs, &d), -1);
    CHECK_MSG(secs < 10.0, "the job took %.1f s to end", secs);
    CHECK(ax_diag_contains(&d, "was killed by signal 9"));
    CHECK(ax_diag_contains(&d, "stopped the other rank 0"));
    ax_diag_free(&d);
    /* a program that cannot be started */
    ax_diag_init(&d);
    char *argv[] = {"nope", NULL};
    rt_spawn_opts o = {.nranks = 2, .exe = "/nonexistent/axorun", .argv = argv, .grace_s = 1.0};
    CHECK_EQ(rt_spawn_ranks(&o, &d), -1);
    CHECK(ax_diag_contains(&d, "exited with status 127"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    o.nranks = 0;
    CHECK_EQ(rt_spawn_ranks(&o, &d), -1);
    ax_diag_free(&d);
    CHECK(rt_free_port(NULL) > 0);
    CHECK_EQ(rt_free_port("not-an-address"), -1);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "worker")) return worker();
    char dir[] = "/tmp/axo-spawn-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_exchange(dir);
    test_failure(dir);
    rmdir(dir);
    return check_done();
}
