/* axorun — runs a plan: argument parsing only. */
#include "runtime/launch.h"
#include "runtime/trace.h"

#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: axorun PLAN.bin [--ranks N] [--output-dir DIR] [--max-steps N] [--overwrite] [--quiet]\n"
    "                       [--trace FILE [--trace-step N]]\n"
    "  trains as the plan says (CPU reference executor) and saves an HF model dir.\n"
    "  A plan for N ranks runs as N local ranks (threads); --ranks must match it.\n"
    "  --trace writes a Chrome-trace/Perfetto timeline of optimizer step N (default 2,\n"
    "  or 1 for a one-step run): one track per rank and stream, one event per op.\n";

int main(int argc, char **argv) {
    const char *plan = NULL;
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
    if (!rc) rt_session_close(&probe);
    if (!rc && ranks && ranks != world) {
        ax_error(&d, plan, "the plan was compiled for %d rank%s but --ranks %d was given (recompile with axoc --world-size %d)",
                 world, world > 1 ? "s" : "", ranks, ranks);
        rc = 1;
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
