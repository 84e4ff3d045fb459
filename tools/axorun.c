/* axorun — runs a plan: argument parsing, and wiring the CUDA executor to
 * the NVRTC layer (the runtime does not include codegen/). */
#include "codegen/cuda_kernels.h"
#include "codegen/nvrtc.h"
#include "runtime/cuda_exec.h"
#include "runtime/launch.h"
#include "runtime/trace.h"

#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: axorun PLAN.bin [--executor cpu|cuda] [--ranks N] [--output-dir DIR] [--max-steps N] [--overwrite]\n"
    "              [--quiet] [--trace FILE [--trace-step N]]\n"
    "  trains as the plan says and saves an HF model dir.\n"
    "  --executor: cuda (the default when a CUDA GPU is present and the CUDA executor covers the\n"
    "  plan) or cpu (the reference executor; the default otherwise). A plan for N ranks runs as N\n"
    "  local ranks (threads); --ranks must match it.\n"
    "  --trace writes a Chrome-trace/Perfetto timeline of optimizer step N (default 2,\n"
    "  or 1 for a one-step run): one track per rank and stream, one event per op (CPU executor).\n";

/* Kernels for the CUDA executor: the registry's sources, compiled by NVRTC
 * through the on-disk kernel cache. */
static const char *kp_module_of(void *ctx, const char *entry) {
    const cg_cuda_kernel *k = cg_cuda_kernel_for_entry(entry);
    return k ? k->name : NULL;
}
static int kp_compile(void *ctx, const char *module, const char *arch, ax_buf *cubin, ax_diag *d) {
    const cg_cuda_kernel *k = cg_cuda_kernel_find(module);
    if (!k) {
        ax_error(d, module, "no such kernel source");
        return -1;
    }
    return cg_nvrtc_compile_cached(NULL, k->name, k->source, arch, NULL, 0, cubin, NULL, NULL, d);
}

typedef struct cuda_attach_ctx {
    rt_cuda_opts opts;
    char info[512];
    int quiet;
} cuda_attach_ctx;

static int attach_cuda(rt_session *s, void *ctx, ax_diag *d) {
    cuda_attach_ctx *c = ctx;
    if (rt_cuda_attach(s, &c->opts, d) != 0) return -1;
    int rank0 = 1;
    for (int a = 0; a < s->m->nmesh; a++) rank0 &= s->st.coord[a] == 0;
    if (rank0 && !c->quiet && c->info[0]) printf("axorun: %s\n", c->info); /* info: written by rank 0 only */
    return 0;
}

int main(int argc, char **argv) {
    const char *plan = NULL, *executor = NULL;
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
    ax_diag d;
    ax_diag_init(&d);
    /* the plan says how many ranks it is for */
    rt_session probe;
    int rc = rt_session_open(plan, &probe, &d) != 0;
    int world = rc ? 0 : rt_plan_world_size(&probe);
    /* the executor: cuda where a GPU is and the CUDA executor covers the plan,
     * else (silently, or with a note for a plan it does not cover) cpu; or as asked */
    char why[256] = "";
    int ndev = !rc && (!executor || !strcmp(executor, "cuda")) ? rt_cuda_device_count(why, sizeof why) : 0;
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
    static cuda_attach_ctx cuda; /* lives through the run; ranks share it read-only (info: rank 0) */
    if (!rc && executor && !strcmp(executor, "cuda") && ndev < 1) {
        ax_error(&d, "axorun", "--executor cuda: %s", why);
        rc = 1;
    }
    if (!rc && ndev > 0 && (!executor || !strcmp(executor, "cuda"))) {
        cuda.opts = (rt_cuda_opts){.kernels = {.module_of = kp_module_of, .compile = kp_compile},
                                   .info = cuda.info, .info_cap = sizeof cuda.info};
        cuda.quiet = o.quiet;
        o.attach = attach_cuda;
        o.attach_ctx = &cuda;
    }
    if (trace_path && o.attach)
        ax_warn(&d, trace_path, "--trace records the CPU executor's nodes only; with the CUDA executor it stays empty "
                "(pass --executor cpu to trace)");
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
