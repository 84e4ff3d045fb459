/* trace.c — see trace.h. */
#include "runtime/trace.h"

#include <jansson.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ev {
    const char *name;  /* op names: static strings */
    char program[32];  /* copied: the module may be gone when the trace is written */
    int pid, tid, node;
    double ts, dur;
} ev;

struct rt_trace {
    pthread_mutex_t mu;
    double t0;
    ev *evs;
    int64_t n, cap;
};

static double mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

rt_trace *rt_trace_create(void) {
    rt_trace *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->t0 = mono_us();
    return t;
}

void rt_trace_destroy(rt_trace *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t->evs);
    free(t);
}

double rt_trace_now_us(const rt_trace *t) { return mono_us() - t->t0; }

void rt_trace_add(rt_trace *t, const char *name, int pid, int tid, double ts_us, double dur_us, const char *program,
                  int node) {
    pthread_mutex_lock(&t->mu);
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 1024;
        ev *e = realloc(t->evs, sizeof(ev) * (size_t)cap);
        if (!e) {
            pthread_mutex_unlock(&t->mu);
            return; /* a trace is best effort: drop the event, never the run */
        }
        t->evs = e;
        t->cap = cap;
    }
    ev *e = &t->evs[t->n++];
    *e = (ev){.name = name, .pid = pid, .tid = tid, .node = node, .ts = ts_us, .dur = dur_us};
    snprintf(e->program, sizeof e->program, "%s", program ? program : "");
    pthread_mutex_unlock(&t->mu);
}

int64_t rt_trace_count(const rt_trace *t) { return t->n; }

int rt_trace_get(rt_trace *t, int64_t i, const char **name, int *node, double *dur_us) {
    pthread_mutex_lock(&t->mu);
    int ok = i >= 0 && i < t->n;
    if (ok) *name = t->evs[i].name, *node = t->evs[i].node, *dur_us = t->evs[i].dur;
    pthread_mutex_unlock(&t->mu);
    return ok ? 0 : -1;
}

void rt_trace_clear(rt_trace *t) {
    pthread_mutex_lock(&t->mu);
    t->n = 0;
    pthread_mutex_unlock(&t->mu);
}

int rt_trace_write(rt_trace *t, const char *path, ax_diag *d) {
    json_t *arr = json_array();
    int pids[64] = {0}, npids = 0;
    for (int64_t i = 0; i < t->n; i++) {
        const ev *e = &t->evs[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:{s:s, s:i}}", "name", e->name, "cat",
                              e->tid == 1 ? "communication" : e->tid == 2 ? "copy" : "compute", "ph", "X", "ts", e->ts, "dur", e->dur, "pid", e->pid,
                              "tid", e->tid, "args", "program", e->program, "node", e->node);
        json_array_append_new(arr, o);
        int seen = 0;
        for (int k = 0; k < npids; k++) seen |= pids[k] == e->pid;
        if (!seen && npids < 64) pids[npids++] = e->pid;
    }
    for (int k = 0; k < npids; k++) { /* name the tracks */
        char pn[32];
        snprintf(pn, sizeof pn, "rank %d", pids[k]);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:{s:s}}", "name", "process_name", "ph", "M", "pid", pids[k],
                                             "args", "name", pn));
        static const char *const tn[] = {"stream 0: compute", "stream 1: communication", "stream 2: host<->device copies",
                                         "stream 3: host compute"};
        for (int tid = 0; tid < 4; tid++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "thread_name", "ph", "M", "pid",
                                                 pids[k], "tid", tid, "args", "name", tn[tid]));
    }
    json_t *root = json_pack("{s:o, s:s}", "traceEvents", arr, "displayTimeUnit", "ms");
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) {
        ax_error(d, path, "cannot serialise the trace (out of memory)");
        return -1;
    }
    int rc = ax_write_file_atomic(path, text, strlen(text), d);
    free(text);
    return rc;
}
