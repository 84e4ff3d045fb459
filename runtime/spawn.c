/* spawn.c — the one-node process launcher (see spawn.h). */
#include "runtime/spawn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The variables each rank gets from us; the parent's values are dropped. */
static const char *const job_vars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                       "MASTER_ADDR", "MASTER_PORT"};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int rt_free_port(const char *addr) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, addr ? addr : "127.0.0.1", &a.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t l = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static int is_job_var(const char *entry) {
    for (size_t i = 0; i < AX_ARRAY_LEN(job_vars); i++) {
        size_t n = strlen(job_vars[i]);
        if (!strncmp(entry, job_vars[i], n) && entry[n] == '=') return 1;
    }
    return 0;
}

/* environ without the job variables, then the rank's own, then extra. The
 * strings of the rank's own variables live in own (one block per rank). */
static char **rank_env(const rt_spawn_opts *o, int rank, const char *addr, int port, char own[6][300]) {
    size_t n = 0, k = 0, x = 0;
    while (environ[n]) n++;
    while (o->extra_env && o->extra_env[x]) x++;
    char **env = calloc(n + x + AX_ARRAY_LEN(job_vars) + 1, sizeof *env);
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!is_job_var(environ[i])) env[k++] = environ[i];
    snprintf(own[0], 300, "RANK=%d", rank);
    snprintf(own[1], 300, "WORLD_SIZE=%d", o->nranks);
    snprintf(own[2], 300, "LOCAL_RANK=%d", rank);
    snprintf(own[3], 300, "LOCAL_WORLD_SIZE=%d", o->nranks);
    snprintf(own[4], 300, "MASTER_ADDR=%s", addr);
    snprintf(own[5], 300, "MASTER_PORT=%d", port);
    for (int i = 0; i < 6; i++) env[k++] = own[i];
    for (size_t i = 0; i < x; i++) env[k++] = (char *)o->extra_env[i];
    env[k] = NULL;
    return env;
}

static void describe_end(char *out, size_t cap, int status) {
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "ended with wait status 0x%x", status);
}

int rt_spawn_ranks(const rt_spawn_opts *o, ax_diag *d) {
    int n = o->nranks;
    if (n < 1 || !o->argv || !o->argv[0]) {
        ax_error(d, "launch", "nothing to start (%d ranks)", n);
        return -1;
    }
    const char *exe = o->exe ? o->exe : "/proc/self/exe";
    const char *addr = o->master_addr ? o->master_addr : "127.0.0.1";
    int port = o->master_port > 0 ? o->master_port : rt_free_port(addr);
    if (port < 1) {
        ax_error(d, "launch", "cannot find a free TCP port on %s for the rendezvous: %s", addr, strerror(errno));
        return -1;
    }
    double grace = o->grace_s > 0 ? o->grace_s : 5.0;
    pid_t *pid = calloc((size_t)n, sizeof *pid);
    int *status = calloc((size_t)n, sizeof *status), *done = calloc((size_t)n, sizeof *done);
    char(*own)[6][300] = calloc((size_t)n, sizeof *own);
    char ***envs = calloc((size_t)n, sizeof *envs);
    int rc = 0, started = 0;
    if (!pid || !status || !done || !own || !envs) {
        ax_error(d, "launch", "out of memory");
        rc = -1;
    }
    for (int r = 0; r < n && !rc; r++)
        if (!(envs[r] = rank_env(o, r, addr, port, own[r]))) {
            ax_error(d, "launch", "out of memory");
            rc = -1;
        }
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    for (int r = 0; r < n && !rc; r++) {
        pid_t p = fork();
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(127); /* the parent died before prctl */
            execve(exe, o->argv, envs[r]);
            _exit(127);
        }
        if (p < 0) {
            ax_error(d, "launch", "cannot start rank %d: fork failed: %s", r, strerror(errno));
            rc = -1;
            break;
        }
        pid[r] = p;
        started++;
    }
    /* Wait for all; after the first failure (or a failed start) stop the rest. */
    int left = started, failed = -1;
    double stop_at = rc ? now_s() : -1, kill_at = rc ? now_s() + grace : -1;
    if (rc)
        for (int r = 0; r < started; r++) kill(pid[r], SIGTERM);
    while (left > 0) {
        int progressed = 0;
        for (int r = 0; r < started; r++) {
            if (done[r]) continue;
            int st = 0;
            pid_t w = waitpid(pid[r], &st, WNOHANG);
            if (w == 0 || (w < 0 && errno == EINTR)) continue;
            done[r] = 1;
            left--;
            progressed = 1;
            status[r] = w < 0 ? -1 : st;
            int ok = w > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (!ok && stop_at < 0) { /* the first failure */
                failed = r;
                stop_at = now_s();
                kill_at = stop_at + grace;
                for (int q = 0; q < started; q++)
                    if (!done[q]) kill(pid[q], SIGTERM);
            }
        }
        if (left > 0 && kill_at > 0 && now_s() >= kill_at) {
            for (int q = 0; q < started; q++)
                if (!done[q]) kill(pid[q], SIGKILL);
            kill_at = now_s() + 3600; /* once */
        }
        if (!progressed && left > 0) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (failed >= 0) {
        char how[160];
        if (status[failed] < 0) snprintf(how, sizeof how, "could not be waited for");
        else describe_end(how, sizeof how, status[failed]);
        ax_buf b = {0};
        for (int q = 0; q < started; q++)
            if (q != failed) ax_buf_printf(&b, "%s%d", b.len ? ", " : "", q);
        ax_error(d, "launch", "rank %d (pid %ld) %s%s%s%s", failed, (long)pid[failed], how,
                 b.len ? "; stopped the other rank" : "", b.len && started > 2 ? "s " : b.len ? " " : "",
                 b.len ? b.data : "");
        ax_buf_free(&b);
        rc = -1;
    }
    for (int r = 0; envs && r < n; r++) free(envs[r]);
    free(envs);
    free(own);
    free(done);
    free(status);
    free(pid);
    return rc;
}
