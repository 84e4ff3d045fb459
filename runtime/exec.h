/* exec.h — executing IR programs (the CPU reference executor).
 *
 * A rank's state (rt_state) owns one buffer per global of the module
 * (params, grads, optimizer state, stats). rt_prog prepares a program once
 * (one buffer per value, allocated up front) and runs it any number of
 * times. Storage: every float dtype is held as fp32 in memory, and values of
 * dtype bf16 are rounded to bf16 (round-to-nearest-even, as the GPU's
 * __float2bfloat16_rn) whenever they are written, so a bf16 plan computes
 * what a GPU storing bf16 computes, with fp32 math inside each op. i32
 * values are int32_t.
 *
 * Collectives over a mesh axis of size 1 are copies; larger axes need a
 * communicator (rt_comm, set by the caller).
 */
#ifndef RT_EXEC_H
#define RT_EXEC_H

#include "ir/ir.h"

typedef struct rt_buf {
    ir_type type;
    int64_t numel;
    void *data; /* float* for float dtypes, int32_t* for i32 */
} rt_buf;

/* Collectives over one mesh axis, implemented by a communication backend
 * (runtime/comm.h). Sums are deterministic (rank order). n counts floats;
 * all_gather/reduce_scatter work on rank-major blocks of n_per_rank. */
typedef struct rt_collectives {
    void *ctx;
    int (*all_reduce)(void *ctx, int axis, float *buf, int64_t n);
    int (*all_gather)(void *ctx, int axis, const float *send, float *recv, int64_t n_per_rank);
    int (*reduce_scatter)(void *ctx, int axis, const float *send, float *recv, int64_t n_per_rank);
    /* send to the next rank on the axis ring, recv (n 4-byte elements,
     * bit-exact: also carries i32) from the previous one */
    int (*ring_shift)(void *ctx, int axis, const float *send, float *recv, int64_t n);
} rt_collectives;

typedef struct rt_state {
    const ir_module *m;
    rt_buf *globals; /* m->nglobals; sharded globals hold this rank's block */
    int coord[IR_MAX_MESH];    /* this rank's index along each mesh axis */
    const rt_collectives *coll; /* NULL: every axis has size 1 */
    struct rt_trace *trace;     /* non-NULL: record one event per node (runtime/trace.h) */
    int trace_pid;              /* this rank's process id in the trace */
} rt_state;

/* Runtime-bound inputs (by input op's `name`). */
typedef const rt_buf *(*rt_input_fn)(void *ctx, const char *name);

/* A prepared program. Value buffers live from their producing node to
 * their last use (the lifetimes memplan plans), so what is freed early, e.g.
 * activations under gradient checkpointing, is really freed. */
typedef struct rt_prog {
    const ir_module *m;
    const ir_program *p;
    rt_buf *vals;     /* p->nvalues; data NULL while not live */
    int32_t *last;    /* per value: index of its last use */
    int32_t *freeq;   /* per node: head of the list of values dying there */
    int32_t *freenext;
    float *inv_freq_scratch;
    ir_fexpr *fx;     /* per node: the parsed program of a `fused` node (n 0 for others) */
} rt_prog;

/* A rope node's frequencies, as both executors compute them: inv[rotary_dim / 2] (ck_rope_inv_freq) from the node's
 * attrs for head_dim, longrope's long factors when long_regime (else its short ones); *nrot = rotary_dim / 2 and
 * *mscale = attr attention_factor. Returns 0, or -1 with an error at where. */
int rt_rope_inv_freq(const ir_node *n, int64_t head_dim, int long_regime, float *inv, int64_t *nrot, float *mscale,
                     ax_diag *d, const char *where);
int rt_state_init(rt_state *st, const ir_module *m, ax_diag *d); /* zeroed buffers */
void rt_state_free(rt_state *st);
int rt_prog_init(rt_prog *pr, const ir_module *m, const ir_program *p, ax_diag *d);
void rt_prog_free(rt_prog *pr);
int rt_prog_run(rt_prog *pr, rt_state *st, rt_input_fn inputs, void *ctx, ax_diag *d);
/* One node at a time, for the CUDA executor's host nodes (on="host"):
 * rt_prog_node_run allocates node i's results and runs it (st: the globals
 * it touches; not a bucket); rt_prog_node_done frees the values whose last
 * use is node i (those that are live); rt_prog_release frees every live
 * value. A value made elsewhere (a copy to the host) is given pr->vals[v].data
 * from calloc, which these free. */
int rt_prog_node_run(rt_prog *pr, rt_state *st, int i, rt_input_fn inputs, void *ctx, ax_diag *d);
void rt_prog_node_done(rt_prog *pr, int i);
void rt_prog_release(rt_prog *pr);

/* Buffer helpers. rt_buf_alloc holds the whole tensor; rt_buf_alloc_local
 * this rank's block of a sharded type (ceil(d/N) along the split dim). */
int rt_buf_alloc(rt_buf *b, ir_type t);
int rt_buf_alloc_local(const ir_module *m, rt_buf *b, ir_type t);
/* Rows of dim 0 in each rank's block, and the block's first row, for a
 * type split on dim 0 over an axis of size n. */
int64_t rt_block_rows(const ir_type *t, int64_t n);
/* Offset, in elements of the whole tensor, of this rank's block of a global
 * of type t (0 when t is not split; blocks are split on dim 0). */
int64_t rt_block_first(const rt_state *st, const ir_type *t);
void rt_buf_free(rt_buf *b);
static inline float *rt_f(const rt_buf *b) { return (float *)b->data; }
static inline int32_t *rt_i(const rt_buf *b) { return (int32_t *)b->data; }
/* Per-rank element count of a (possibly sharded) type over mesh sizes. */
int64_t rt_local_numel(const ir_module *m, const ir_type *t);

#endif
