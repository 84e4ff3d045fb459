/* trace.h — Chrome-trace / Perfetto timelines of a training step.
 *
 * Executors add one complete event ("ph": "X") per executed node: name =
 * op, pid = rank, tid = the node's stream (attr `stream` of the schedule
 * pass: 0 compute, 1 communication), ts/dur in microseconds from the
 * trace's creation, args = program and node index. Several ranks (threads
 * of the local backend) may add events to one trace concurrently.
 * rt_trace_write writes {"traceEvents": [...], "displayTimeUnit": "ms"}
 * atomically; chrome://tracing and ui.perfetto.dev open it.
 */
#ifndef RT_TRACE_H
#define RT_TRACE_H

#include "ir/base.h"

typedef struct rt_trace rt_trace;

rt_trace *rt_trace_create(void);
void rt_trace_destroy(rt_trace *t);
/* Microseconds since the trace was created (monotonic clock). */
double rt_trace_now_us(const rt_trace *t);
void rt_trace_add(rt_trace *t, const char *name, int pid, int tid, double ts_us, double dur_us, const char *program,
                  int node);
int64_t rt_trace_count(const rt_trace *t);
/* Event i's op name, node index and duration (bench/kernel_bench.c); 0, or -1 out of range. */
int rt_trace_get(rt_trace *t, int64_t i, const char **name, int *node, double *dur_us);
void rt_trace_clear(rt_trace *t);
int rt_trace_write(rt_trace *t, const char *path, ax_diag *d);

#endif
