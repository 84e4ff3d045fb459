/* axorun — runs a plan: argument parsing, and wiring the CUDA executor to
 * the NVRTC layer (the runtime does not include codegen/). */
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/kbin.h"
#include "codegen/nvrtc.h"
#include "ir/planfile.h"
#include "runtime/comm_nccl.h"
#include "runtime/cuda_exec.h"
#include "runtime/cpu_kernels.h"
#include "runtime/job.h"
#include "runtime/launch.h"
#include "runtime/spawn.h"
#include "runtime/trace.h"

#ifdef AXO_HAVE_EMU
#include "emu/emu_device.h"
#endif

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *usage =
    "usage: axorun PLAN.bin [--executor cpu|cuda] [--ranks N] [--comm local|nccl] [--output-dir DIR]\n"
    "              [--max-steps N] [--resume-from CHECKPOINT] [--overwrite] [--quiet] [--trace FILE [--trace-step N]]\n"
    "  trains as the plan says and saves an HF model dir.\n"
    "  --resume-from: continue from a checkpoint-N dir axorun wrote (as resume_from_checkpoint):\n"
    "  weights, optimizer state, step, data position and log; any number of ranks.\n"
    "  --executor: cuda (the default when a CUDA GPU is present and the CUDA executor covers the\n"
    "  plan) or cpu (the reference executor; the default otherwise). A plan for N ranks runs as N\n"
    "  local ranks (threads); --ranks must match it.\n"
    "  --comm: how the ranks of a multi-rank plan talk. nccl: one process per GPU (axorun starts\n"
    "  them), the default when the CUDA executor runs and there are at least N GPUs; local: N\n"
    "  threads in this process, one GPU or the CPU (the default otherwise). Started by torchrun\n"
    "  --no-python, srun or mpirun (RANK/WORLD_SIZE, SLURM_PROCID, OMPI_COMM_WORLD_RANK), axorun\n"
    "  joins the job as one rank over NCCL; AXO_COMM_TIMEOUT (seconds, default 300) bounds every\n"
    "  wait for a peer.\n"
    "  --trace writes a Chrome-trace/Perfetto timeline of optimizer step N (default 2,\n"
    "  or 1 for a one-step run): one track per rank and stream, one event per op (CUDA executor:\n"
    "  CUDA-event times of each node on its stream).\n";

/* Kernels for the CUDA executor: the plan's own CUBINs (KBIN, axoc --arch)
 * where it has them for the device's arch, else the registry's sources and
 * the fused kernels compiled by NVRTC through the on-disk kernel cache. */
static struct {
    ax_plan_file pf;
    cg_kbin kb; /* entries point into pf */
} plan_kernels; /* loaded in main before any rank starts; read-only after */

static void load_plan_kernels(const char *plan) {
    ax_diag d;
    ax_diag_init(&d);
    if (ax_plan_read(plan, &plan_kernels.pf, &d) == 0) {
        const ax_plan_section *s = ax_plan_find(&plan_kernels.pf, "KBIN");
        if (s && cg_kbin_parse(s->data, s->size, plan, &plan_kernels.kb, &d) != 0) {
            ax_warn(&d, plan, "its embedded kernels are unusable: compiling them instead");
            ax_diag_print(&d, stderr);
        }
    } /* an unreadable plan is reported by the session, which reads it again */
    ax_diag_free(&d);
}

static int plan_cubin(const char *arch, const char *name, ax_buf *cubin) {
    const cg_kbin_entry *e = cg_kbin_find(&plan_kernels.kb, arch, name);
    if (!e) return 0;
    cubin->len = 0;
    ax_buf_append(cubin, e->cubin, (size_t)e->size);
    return 1;
}

static int kp_compile_fused(void *ctx, const char *entry, const char *expr, const ir_dtype *in, int nin, const char *arch,
                            ax_buf *cubin, ax_diag *d) {
    if (plan_cubin(arch, entry, cubin)) return 0;
    return cg_fused_compile(ctx, entry, expr, in, nin, arch, cubin, d);
}
static int kp_compile(void *ctx, const char *module, const char *arch, ax_buf *cubin, ax_diag *d) {
    if (plan_cubin(arch, module, cubin)) return 0;
    return cg_cuda_kernel_compile(ctx, module, arch, cubin, d);
}

typedef struct cuda_attach_ctx {
    rt_cuda_opts opts;
    char info[512];
    int quiet;
    rt_nccl_dev_coll nccl; /* a rank of a multi-process job: the executor's collectives */
} cuda_attach_ctx;

static int attach_cuda(rt_session *s, void *ctx, ax_diag *d) {
    cuda_attach_ctx *c = ctx;
    if (rt_cuda_attach(s, &c->opts, d) != 0) return -1;
    int rank0 = 1;
    for (int a = 0; a < s->m->nmesh; a++) rank0 &= s->st.coord[a] == 0;
    if (rank0 && !c->quiet && c->info[0]) printf("axorun: %s\n", c->info); /* info: written by rank 0 only */
    return 0;
}

/* ---- one rank of a multi-process job (torchrun, srun, mpirun, or our own spawn) ---- */

/* The executor's device collectives over the rank's NCCL axis communicators. */
static int nccl_ready(rt_rank_coll *rc, void *ctx, ax_diag *d) {
    cuda_attach_ctx *c = ctx;
    rt_nccl_dev_coll_init(&c->nccl, rc->axis, IR_MAX_MESH);
    c->opts.coll = &c->nccl.dc;
    return 0;
}

/* Prints d, each message prefixed with the rank (unless it names it already). */
static void print_rank_diag(const ax_diag *d, int rank) {
    ax_diag p;
    ax_diag_init(&p);
    for (int i = 0; i < d->n; i++) {
        const ax_diag_entry *e = &d->entries[i];
        if (!strncmp(e->msg, "rank ", 5)) ax_diag_add(&p, e->sev, e->where, "%s", e->msg);
        else ax_diag_add(&p, e->sev, e->where, "rank %d: %s", rank, e->msg);
    }
    ax_diag_print(&p, stderr);
    ax_diag_free(&p);
}

/* Once the rank's NCCL communicators are aborted the rank fails and cleans
 * up; if the cleanup itself is stuck (a kernel NCCL did not stop makes
 * cudaFree and stream synchronisation wait forever), this thread says why
 * and ends the process, so the launcher sees the failure and stops the
 * other ranks: no silent hang even then. */
#define ABORT_GRACE_S 30
typedef struct watchdog {
    rt_nccl_world *w;
    int rank, stop;
    pthread_t t;
} watchdog;

static void *watch(void *p) {
    watchdog *wd = p;
    struct timespec tick = {0, 100 * 1000 * 1000};
    int since = -1, ticks = 0;
    while (!__atomic_load_n(&wd->stop, __ATOMIC_ACQUIRE)) {
        const char *why = rt_nccl_world_aborted(wd->w);
        if (why && since < 0) since = ticks;
        if (since >= 0 && ticks - since > ABORT_GRACE_S * 10) {
            fprintf(stderr, "nccl: error: %s\naxorun: error: rank %d: still running %d s after its NCCL communicators "
                    "were aborted; exiting without cleanup\n", why, wd->rank, ABORT_GRACE_S);
            _exit(1);
        }
        nanosleep(&tick, NULL);
        ticks++;
    }
    return NULL;
}

/* This process is rank e->rank of a job of e->world_size processes: check the
 * plan against the job, pick the GPU, join the NCCL world, train. 0 or 1; an
 * exit status of 3 for the test hook AXO_TEST_FAIL_RANK. */
static int run_rank(const char *plan, const rt_launch_env *e, const char *executor, int ranks, const char *trace_path,
                    rt_train_opts *o, cuda_attach_ctx *cuda, ax_diag *d) {
    const char *fail = getenv("AXO_TEST_FAIL_RANK");
    if (fail && *fail && atoi(fail) == e->rank) { /* test hook: a rank that fails before touching CUDA */
        ax_error(d, "axorun", "rank %d: failing on purpose (AXO_TEST_FAIL_RANK=%s)", e->rank, fail);
        return 3;
    }
    rt_session probe;
    if (rt_session_open(plan, &probe, d) != 0) return 1;
    int world = rt_plan_world_size(&probe);
    if (world != e->world_size || (ranks && ranks != world)) {
        int n = world != e->world_size ? e->world_size : ranks;
        if (world != e->world_size)
            ax_error(d, plan, "the plan was compiled for %d rank%s but %s started %d (recompile with axoc --world-size %d)",
                     world, world > 1 ? "s" : "", e->launcher, n, n);
        else
            ax_error(d, plan, "the plan was compiled for %d rank%s but --ranks %d was given (recompile with axoc "
                     "--world-size %d)", world, world > 1 ? "s" : "", n, n);
        rt_session_close(&probe);
        return 1;
    }
    double timeout;
    if (rt_comm_env_timeout(&timeout, d) != 0) {
        rt_session_close(&probe);
        return 1;
    }
    const char *fake = getenv("AXO_TEST_FAKE_RANKS");
    if (fake && !strcmp(fake, "1")) { /* test hook: the launcher and the bootstrap without a GPU */
        rt_session_close(&probe);
        char line[256];
        if (rt_fake_rank(e, timeout, line, sizeof line, d) != 0) return 1;
        printf("axorun: %s\n", line);
        return 0;
    }
    char why[256] = "";
    int ndev = rt_cuda_device_count(why, sizeof why);
    if (ndev < 1) {
        ax_error(d, "axorun", "rank %d of %d (%s): the NCCL backend needs a CUDA GPU per rank: %s", e->rank,
                 e->world_size, e->launcher, why);
        rt_session_close(&probe);
        return 1;
    }
    int device = rt_nccl_pick_device(e, ndev, d);
    /* the executor: as in a single process (cuda where it covers the plan), or as asked */
    int use_cuda = !executor || !strcmp(executor, "cuda");
    if (!executor) {
        ax_diag pd;
        ax_diag_init(&pd);
        if (rt_cuda_plan_check(probe.m, &pd) != 0) {
            if (e->rank == 0)
                ax_diag_add(d, AX_SEV_NOTE, "axorun", "running on the cpu executor: the CUDA executor does not cover this plan yet (%s: %s)",
                            pd.n ? pd.entries[0].where : "", pd.n ? pd.entries[0].msg : "?");
            use_cuda = 0;
        }
        ax_diag_free(&pd);
    }
    rt_session_close(&probe);
    if (device < 0) return 1;
    rt_nccl_world *nw = rt_nccl_join(e, device, timeout, d);
    if (!nw) return 1;
    if (e->rank == 0 && !o->quiet) {
        ax_diag ld;
        ax_diag_init(&ld);
        const rt_nccl_api *api = rt_nccl_api_load(&ld);
        printf("axorun: rank 0 of %d (%s), NCCL backend: %s, GPU %d of %d\n", e->world_size, e->launcher,
               api ? api->name : "?", device, ndev);
        ax_diag_free(&ld);
    }
    cuda->opts = (rt_cuda_opts){.device = device, .kernels = {.module_of = cg_cuda_kernel_module_of, .compile = kp_compile, .compile_fused = kp_compile_fused},
                                .info = cuda->info, .info_cap = sizeof cuda->info};
    cuda->quiet = o->quiet;
    o->attach = use_cuda ? attach_cuda : NULL;
    o->attach_ctx = cuda;
    if (trace_path && e->rank == 0) { /* one file: rank 0's tracks */
        o->trace = rt_trace_create();
        if (!o->trace_step) o->trace_step = o->max_steps == 1 ? 1 : 2;
    }
    watchdog wd = {.w = nw, .rank = e->rank};
    int watching = pthread_create(&wd.t, NULL, watch, &wd) == 0;
    int rc = rt_train_rank(plan, rt_nccl_comm(nw), o, nccl_ready, cuda, d) != 0;
    if (watching) {
        __atomic_store_n(&wd.stop, 1, __ATOMIC_RELEASE);
        pthread_join(wd.t, NULL);
    }
    rt_nccl_world_destroy(nw); /* after an abort it touches no device memory */
    if (o->trace) {
        if (!rc && rt_trace_write(o->trace, trace_path, d) != 0) rc = 1;
        rt_trace_destroy(o->trace);
        o->trace = NULL;
    }
    return rc;
}

/* axorun_emu (a test build: tests/unit/emu linked in) with AXO_CUDA_EMULATE=1:
 * the CUDA executor on the emulated device of runtime/cuda_exec.h, so the
 * training loop around it (saves, resumes, ranks) runs without a GPU. */
static int emulated(void) {
#ifdef AXO_HAVE_EMU
    const char *e = getenv("AXO_CUDA_EMULATE");
    return e && !strcmp(e, "1");
#else
    return 0;
#endif
}

int main(int argc, char **argv) {
    const char *plan = NULL, *executor = NULL, *comm = NULL;
    int ranks = 0;
    const char *trace_path = NULL;
    rt_train_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("axorun %s\n", AXO_VERSION);
            return 0;
        } else if (!strcmp(a, "--output-dir") && i + 1 < argc) {
            o.output_dir = argv[++i];
        } else if (!strcmp(a, "--resume-from") && i + 1 < argc) {
            o.resume_from = argv[++i];
        } else if (!strcmp(a, "--max-steps") && i + 1 < argc) {
            char *end;
            o.max_steps = strtoll(argv[++i], &end, 10);
            if (*end || o.max_steps < 1) {
                fprintf(stderr, "axorun: --max-steps: expected a positive integer, found \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--ranks") && i + 1 < argc) {
            char *end;
            ranks = (int)strtol(argv[++i], &end, 10);
            if (*end || ranks < 1) {
                fprintf(stderr, "axorun: --ranks: expected a positive integer, found \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--trace") && i + 1 < argc) {
            trace_path = argv[++i];
        } else if (!strcmp(a, "--trace-step") && i + 1 < argc) {
            char *end;
            o.trace_step = strtoll(argv[++i], &end, 10);
            if (*end || o.trace_step < 1) {
                fprintf(stderr, "axorun: --trace-step: expected a positive integer, found \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--executor") && i + 1 < argc) {
            executor = argv[++i];
            if (strcmp(executor, "cpu") && strcmp(executor, "cuda")) {
                fprintf(stderr, "axorun: --executor: expected cpu or cuda, found \"%s\"\n", executor);
                return 2;
            }
        } else if (!strcmp(a, "--comm") && i + 1 < argc) {
            comm = argv[++i];
            if (strcmp(comm, "local") && strcmp(comm, "nccl")) {
                fprintf(stderr, "axorun: --comm: expected local or nccl, found \"%s\"\n", comm);
                return 2;
            }
        } else if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (a[0] == '-' || plan) {
            fprintf(stderr, "axorun: unexpected argument %s\n%s", a, usage);
            return 2;
        } else {
            plan = a;
        }
    }
    if (!plan) {
        fputs(usage, stderr);
        return 2;
    }
    load_plan_kernels(plan);
    ax_diag d;
    ax_diag_init(&d);
    static cuda_attach_ctx cuda; /* lives through the run; ranks share it read-only (info: rank 0) */
    /* started as one rank of a job (torchrun, srun, mpirun, or our own spawn below) */
    rt_launch_env env;
    if (rt_launch_env_read(&env, &d) != 0) {
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        return 1;
    }
    if (env.world_size > 1) {
        int rc = 1;
        /* the CPU work of this process (host-side optimizer under offload): its share of the node's cores, unless
         * OMP_NUM_THREADS says (torchrun sets 1 unless told otherwise) */
        if (!getenv("OMP_NUM_THREADS") && env.local_world_size > 1) {
            int t = ck_threads() / env.local_world_size;
            ck_set_threads(t > 0 ? t : 1);
        }
        if (comm && !strcmp(comm, "local"))
            ax_error(&d, "axorun", "--comm local: this process is rank %d of %d started by %s; ranks of a job of "
                     "several processes communicate over NCCL", env.rank, env.world_size, env.launcher);
        else
            rc = run_rank(plan, &env, executor, ranks, trace_path, &o, &cuda, &d);
        print_rank_diag(&d, env.rank);
        ax_diag_free(&d);
        return rc;
    }
    /* the plan says how many ranks it is for */
    rt_session probe;
    int rc = rt_session_open(plan, &probe, &d) != 0;
    int world = rc ? 0 : rt_plan_world_size(&probe);
    /* the executor: cuda where a GPU is and the CUDA executor covers the plan,
     * else (silently, or with a note for a plan it does not cover) cpu; or as asked */
    char why[256] = "";
    int want_nccl = comm && !strcmp(comm, "nccl");
    int ndev = !rc && (!executor || !strcmp(executor, "cuda") || want_nccl)
                   ? (emulated() && !want_nccl ? 1 : rt_cuda_device_count(why, sizeof why))
                   : 0;
    int ngpu = ndev; /* ndev drops to 0 below when the CUDA executor is not used */
    if (executor && !strcmp(executor, "cpu")) ndev = 0;
    if (!rc && !executor && ndev > 0) {
        ax_diag pd;
        ax_diag_init(&pd);
        if (rt_cuda_plan_check(probe.m, &pd) != 0) {
            ax_diag_add(&d, AX_SEV_NOTE, "axorun", "running on the cpu executor: the CUDA executor does not cover this plan yet (%s: %s)",
                        pd.n ? pd.entries[0].where : "", pd.n ? pd.entries[0].msg : "?");
            ndev = 0;
        }
        ax_diag_free(&pd);
    }
    if (!rc) rt_session_close(&probe);
    if (!rc && ranks && ranks != world) {
        ax_error(&d, plan, "the plan was compiled for %d rank%s but --ranks %d was given (recompile with axoc --world-size %d)",
                 world, world > 1 ? "s" : "", ranks, ranks);
        rc = 1;
    }
    /* a multi-rank plan on a machine with a GPU per rank: one process per GPU, over NCCL */
    const char *fake = getenv("AXO_TEST_FAKE_RANKS"); /* test hook: spawn without GPUs (see runtime/job.h) */
    if (fake && !strcmp(fake, "1") && ngpu < world) ngpu = world;
    if (!rc && world > 1 && !(comm && !strcmp(comm, "local")) && (want_nccl || (ndev > 0 && world <= ndev))) {
        if (ngpu < world) {
            ax_error(&d, "axorun", "--comm nccl runs one process per GPU: the plan has %d ranks but %d GPU%s visible%s%s%s",
                     world, ngpu, ngpu == 1 ? " is" : "s are", why[0] ? " (" : "", why, why[0] ? ")" : "");
            ax_diag_print(&d, stderr);
            ax_diag_free(&d);
            return 1;
        }
        ax_diag_free(&d); /* a note on the executor: rank 0 gives it again */
        ax_diag_init(&d);
        if (!o.quiet) printf("axorun: starting %d ranks, one process per GPU (NCCL)\n", world);
        fflush(stdout);
        rt_spawn_opts so = {.nranks = world, .argv = argv};
        rc = rt_spawn_ranks(&so, &d) != 0;
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        return rc;
    }
    if (!rc && executor && !strcmp(executor, "cuda") && ndev < 1) {
        ax_error(&d, "axorun", "--executor cuda: %s", why);
        rc = 1;
    }
    if (!rc && ndev > 0 && (!executor || !strcmp(executor, "cuda"))) {
        cuda.opts = (rt_cuda_opts){.kernels = {.module_of = cg_cuda_kernel_module_of, .compile = kp_compile, .compile_fused = kp_compile_fused},
                                   .info = cuda.info, .info_cap = sizeof cuda.info};
#ifdef AXO_HAVE_EMU
        if (emulated()) cuda.opts.dry_run = 1, cuda.opts.emu = axo_emu_device(), cuda.opts.dry_sm_count = 2;
#endif
        cuda.quiet = o.quiet;
        o.attach = attach_cuda;
        o.attach_ctx = &cuda;
    }
    if (trace_path) {
        o.trace = rt_trace_create();
        if (!o.trace_step) o.trace_step = o.max_steps == 1 ? 1 : 2;
    }
    if (!rc) rc = rt_train_local(plan, world, &o, &d) != 0;
    if (o.trace) {
        if (!rc && rt_trace_count(o.trace) == 0)
            ax_warn(&d, trace_path, "optimizer step %lld never ran: the trace is empty", (long long)o.trace_step);
        if (!rc && rt_trace_write(o.trace, trace_path, &d) != 0) rc = 1;
        rt_trace_destroy(o.trace);
    }
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    return rc;
}
