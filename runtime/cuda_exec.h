/* cuda_exec.h — the CUDA executor: runs the same IR programs as the CPU
 * reference executor (exec.h) on one NVIDIA GPU, with the same shape of
 * interface: a state holding one device buffer per global, a prepared
 * program, run. See docs/cuda-runtime.md.
 *
 * Promises:
 *  - Storage is the IR's: f32 is 4 bytes, bf16 really 2 bytes on the device,
 *    i32 4 bytes, nf4 and u8 packed (see "packed storage" below); math inside
 *    each op is fp32 (double where the CPU reference uses double), rounding to
 *    bf16 where the CPU executor rounds.
 *  - Every op maps to a kernel of codegen/kernels/ (compiled by NVRTC for the
 *    device's architecture, loaded with cudaLibraryLoadData) or to cuBLASLt
 *    (matmul: f32 or bf16 operands, fp32 accumulation, the CPU's ta/tb rule),
 *    or to a copy/memset. An op, dtype or shape no kernel covers is refused
 *    when the program is prepared, naming the node, never half-run.
 *  - Memory is planned once: one buffer per global, one arena shared by the
 *    prepared programs (they never run at the same time) with every value at
 *    the offset ir/liveness.h assigns (the plan's own figure), one scratch
 *    buffer for per-op temporaries, a cuBLASLt workspace. rt_cuda_state_alloc
 *    compares the total, and the plan's per-rank figure, with the device's
 *    free memory and refuses with the numbers and advice before allocating.
 *  - CPU offload: globals with place="host" live in host memory as the CPU
 *    executor stores them (fp32, bf16 rounded), nodes with on="host" run the
 *    CPU executor's code for the op, and to_host / to_device are copies on
 *    the schedule's copy stream (bf16 converted on the host side). Host
 *    memory for offload is allocated once, page-locked (pinned) as the
 *    plan's module attrs offload.pin_memory_param / _optimizer ask (absent:
 *    pinned); copies from and to pinned memory are asynchronous, ordered by
 *    the schedule's events; a host node first waits for the events of the
 *    device nodes it depends on. Pageable memory (pin_memory false, or
 *    pinning refused: one warning) makes every copy synchronous. The rules
 *    are in docs/cuda-runtime.md ("CPU offload").
 *  - Everything runs in order on one stream; runtime inputs (token ids,
 *    targets, positions, segments, lr, ...) are uploaded per run through a
 *    pinned staging buffer. A run ends with a stream synchronisation.
 *  - Errors are values: every CUDA runtime and cuBLASLt call is checked and
 *    reported through ax_diag located at the node, e.g. "micro_step node 12
 *    (matmul): cublasLtMatmul failed: CUBLAS_STATUS_...". Nothing aborts.
 *    Invalid token ids / targets are reported after the run (the kernels
 *    skip them, never read out of bounds), naming the node and position.
 *    Kernels run asynchronously: a fault inside a kernel is seen at the
 *    run's final synchronisation; AXO_CUDA_SYNC=1 synchronises after every
 *    node so that the error names the node that faulted.
 *  - Without the CUDA toolkit at build time (no AXO_HAVE_CUDA) everything
 *    but the dry run fails with "axo was built without CUDA".
 *
 * Dry run (opts.dry_run): no CUDA call is made. Device memory is a fake
 * address space of opts.dry_mem_bytes; every kernel launch, copy, memset
 * and GEMM is validated instead of issued — argument kinds against the
 * kernel's signature, every pointer argument's extent inside one
 * allocation, grid and block limits — and counted. Tests use it to check
 * the whole host side of the executor on machines without a GPU.
 *
 * Emulated device (opts.emu with opts.dry_run): a dry run whose device
 * memory is real host memory (every allocation its own malloc, filled with
 * 0xff bytes as fresh device memory may hold anything), whose copies and
 * memsets are done, whose launches run the kernels on the host through
 * emu->launch (tests/unit/emu: the kernel sources compiled as host C++ on a
 * SIMT emulator) and whose GEMMs go to emu->gemm. Work is queued per
 * stream and done as late as CUDA allows: when the host synchronises with
 * the stream (or with an event on it, or copies to the host from it), and a
 * wait for an event first does the recorded stream's work up to that event;
 * a synchronisation of every stream takes them in an order that alternates
 * from call to call. So a missing event wait between streams makes a node
 * read what its producer has not written yet (or what a later node
 * overwrote), and the numbers differ from the CPU's (the test hook
 * AXO_TEST_EMU_DROP_WAITS=1 drops every wait, to show that it does);
 * AXO_EMU_EAGER=1 does everything when issued instead, in issue order. Host-to-device copies take
 * the host bytes when issued. The dry run's checks all stay on. So the
 * executor, its kernels' sources, its launch geometry and its stream
 * ordering are compared with the CPU executor on a machine without a GPU
 * (gpu_exec_check --emu); what it cannot show is the GPU's own behaviour:
 * concurrency inside a kernel and truly simultaneous streams, cuBLASLt,
 * NVRTC's code, speed.
 *
 * Environment: AXO_GPU_ARCH forces the NVRTC target (e.g. sm_90);
 * AXO_CUDA_SYNC=1 synchronises after every node; AXO_CUDA_POISON=1 fills
 * the arena with NaN bytes (0xff) before each run, so a value a kernel
 * leaves partly unwritten shows up as NaN; AXO_CUDA_ATTN=any forces the
 * head_dim-generic attention kernels; AXO_CUDA_SYNC_COPIES=1 makes every
 * offload copy synchronous even from pinned memory.
 */
#ifndef RT_CUDA_EXEC_H
#define RT_CUDA_EXEC_H

#include "ir/liveness.h"
#include "runtime/backend.h"
#include "runtime/exec.h"

struct rt_session;

/* Where kernels come from. The runtime does not include codegen/, so the
 * caller supplies the NVRTC layer (tools/axorun.c wires codegen/nvrtc.h and
 * its kernel cache): module_of names the kernel source that defines an
 * entry point (NULL if none); compile fills cubin with that source built
 * for arch ("sm_90a"), 0 or -1 with an error in d. */
typedef struct rt_kernel_provider {
    void *ctx;
    const char *(*module_of)(void *ctx, const char *entry);
    int (*compile)(void *ctx, const char *module, const char *arch, ax_buf *cubin, ax_diag *d);
    /* Generated kernels of `fused` nodes: fills cubin with the kernel `entry`
     * (ir_fexpr_entry of expr and the operand dtypes in[0..nin)) built for
     * arch (codegen/fusegen.h: cg_fused_compile). NULL: plans with fused
     * nodes fail when a kernel is loaded (dry runs need none). */
    int (*compile_fused)(void *ctx, const char *entry, const char *expr, const ir_dtype *in, int nin, const char *arch,
                         ax_buf *cubin, ax_diag *d);
} rt_kernel_provider;

/* Collectives over one mesh axis with device buffers (dt: IR_F32 or
 * IR_BF16; counts are elements; layouts as rt_collectives; all_gather also
 * takes IR_NF4 (n even) and IR_U8, packed, and moves their bits). stream is the
 * executor's cudaStream_t: work must be ordered after what is queued on it
 * and be complete or queued on it when the call returns. Axes of size 1
 * never reach these (the executor copies). */
typedef struct rt_dev_collectives {
    void *ctx;
    int (*all_reduce)(void *ctx, int axis, ir_dtype dt, void *buf, int64_t n, void *stream);
    int (*all_gather)(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n_per_rank,
                      void *stream);
    int (*reduce_scatter)(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n_per_rank,
                          void *stream);
    /* send -> the next rank of the axis ring, recv <- the previous rank's
     * send (n elements; dt may also be IR_I32: it moves bits). NULL: plans
     * with ring_shift (sequence parallelism) are refused at run time. */
    int (*ring_shift)(void *ctx, int axis, ir_dtype dt, const void *send, void *recv, int64_t n, void *stream);
    /* May be NULL. Collectives may complete after they return (NCCL's are
     * watched by a thread): after synchronising its streams at the end of a
     * program the executor calls drain, which reports (0, or an error with
     * the message in err) whether every one of them succeeded. */
    int (*drain)(void *ctx, char *err, size_t cap);
} rt_dev_collectives;

/* The host emulator's hooks (see "Emulated device" above). */
typedef struct rt_cuda_emu {
    void *ctx;
    /* Runs kernel `entry` to completion on host memory: a registered
     * source's entry, or with expr non-NULL the fused kernel of expr over
     * operands of dtypes in[0..nin) (codegen/fusegen.h). grid (x, y, z),
     * block (x, y), dynamic shared memory bytes, args as cudaLaunchKernel
     * takes them. 0, or -1 with a message in err. */
    int (*launch)(void *ctx, const char *entry, const char *expr, const ir_dtype *in, int nin, const unsigned grid[3],
                  const unsigned block[2], int64_t smem, void **args, char *err, size_t cap);
    /* Row-major C[M,N] = (or += with accumulate) op(A) op(B) by
     * cpu_kernels.h's ta/tb rule; A and B of dtype t, C of tc (IR_F32 or
     * IR_BF16), fp32 accumulation, C rounded once. 0, or -1 with err. */
    int (*gemm)(void *ctx, int64_t M, int64_t N, int64_t K, int ta, int tb, ir_dtype t, ir_dtype tc, const void *A,
                const void *B, void *C, int accumulate, char *err, size_t cap);
} rt_cuda_emu;

typedef struct rt_cuda_opts {
    int device;       /* CUDA device ordinal */
    const char *arch; /* NVRTC target; NULL: $AXO_GPU_ARCH, else from the device */
    rt_kernel_provider kernels;
    int dry_run;           /* see above */
    int64_t dry_mem_bytes; /* fake device memory of a dry run (0: 80 GiB) */
    int dry_sm_count;      /* multiprocessors a dry run assumes (0: 132) */
    int sync_each;         /* also set by AXO_CUDA_SYNC=1 */
    int poison;            /* also set by AXO_CUDA_POISON=1 */
    int one_stream;        /* run everything on one stream in program order; also AXO_CUDA_STREAMS=0 */
    int no_graphs;         /* never capture programs in CUDA graphs; also AXO_CUDA_GRAPHS=0 */
    int sync_copies;       /* offload copies synchronous even from pinned memory; also AXO_CUDA_SYNC_COPIES=1 */
    int64_t dry_pin_limit; /* dry run: host bytes it may pin (0: no limit; < 0: none, as a small RLIMIT_MEMLOCK) */
    const rt_cuda_emu *emu; /* with dry_run: the emulated device (see above); kept by pointer */
    char *info;            /* if set: one line about the device and memory (rank 0 of rt_cuda_attach) */
    size_t info_cap;
    /* rt_cuda_attach: the device collectives of a multi-process job (NCCL,
     * runtime/comm_nccl.h); NULL: stage through the session's host
     * collectives (the local backend's ranks on one GPU) */
    const rt_dev_collectives *coll;
} rt_cuda_opts;

/* Number of CUDA devices; 0 with the reason in why (no driver, no device,
 * or axo built without CUDA). Never fails loudly: for choosing a default. */
int rt_cuda_device_count(char *why, size_t cap);
/* The NVRTC target of CUDA device `device` ("sm_90a" for Hopper, else
 * "sm_<major><minor>"), as the executor picks it. 0, or -1. */
int rt_cuda_device_arch(int device, char *buf, size_t cap);

/* ---- device ------------------------------------------------------------- */
typedef struct rt_cuda_dev rt_cuda_dev;
int rt_cuda_dev_open(rt_cuda_dev **out, const rt_cuda_opts *o, ax_diag *d);
void rt_cuda_dev_close(rt_cuda_dev *dev);
/* "NVIDIA H200 (sm_90a, 132 SMs)" */
const char *rt_cuda_dev_name(const rt_cuda_dev *dev, char *buf, size_t cap);

/* What a device did (dry runs count without doing). */
typedef struct rt_cuda_counts {
    int64_t launches, gemms, copies, memsets, syncs;
    int64_t event_records, event_waits; /* cross-stream ordering (the schedule's waits) */
    int64_t graph_captures, graph_launches;
    int64_t max_smem; /* largest dynamic shared memory of a launch */
    int64_t kernels;  /* distinct entry points loaded (looked up, in a dry run) */
    /* CPU offload (to_host / to_device) */
    int64_t async_copies, sync_copies; /* issued without / with waiting for their stream */
    int64_t host_waits;          /* event synchronisations before host nodes */
    int64_t host_waits_unplanned; /* of which the schedule's wait lists did not ask for (0 for scheduled plans) */
    int64_t pin_fallbacks;       /* host blocks that were to be pinned but are pageable */
    int64_t copies_in_flight;    /* checking modes: async copies the host has not seen complete (0 after a run) */
} rt_cuda_counts;

/* Whether host address p lies in offload memory the executor allocated: 1
 * pinned, 0 pageable, -1 neither. For tests. */
int rt_cuda_host_pinned(const rt_cuda_dev *dev, const void *p);
rt_cuda_counts rt_cuda_dev_counts(const rt_cuda_dev *dev);

/* ---- state: the globals ---------------------------------------------------- */
typedef struct rt_cuda_state {
    const ir_module *m;
    rt_cuda_dev *dev;
    uint64_t *globals;        /* device address of each global (0 before rt_cuda_state_alloc) */
    int64_t *gbytes;          /* bytes of each (this rank's block, storage dtype) */
    int coord[IR_MAX_MESH];   /* this rank's index along each mesh axis */
    const rt_dev_collectives *coll; /* NULL: every axis has size 1 */
    uint64_t arena, scratch;  /* shared by the programs */
    /* non-NULL: the next program runs record one event per node (CUDA
     * events around each node on its stream, placed on the trace's clock at
     * the program's start; a dry run records issue times) */
    struct rt_trace *trace;
    int trace_pid;
    int64_t arena_bytes, scratch_bytes;
    int64_t total_bytes;      /* everything allocated on the device for this state */
    int allocated;
    /* CPU offload: the blocks of place="host" globals live here, in host
     * memory stored as the CPU executor stores them (fp32, bf16 values
     * rounded; i32), and the nodes with on="host" run on them with the CPU
     * reference kernels; other globals have no host buffer (data NULL) */
    rt_state host;
    int64_t host_bytes;
    /* Offload memory, allocated once (rt_cuda_state_init / _alloc), per
     * class (0: parameters, pinned as offload.pin_memory_param says; 1:
     * gradients and optimizer state, offload.pin_memory_optimizer): the
     * host globals' blocks; bf16 images of the bf16 host globals a
     * to_device reads (what crosses the bus; img_ok: it holds the global's
     * current values); the copy arena (rt_cuda_prog.copy_off) */
    void *host_blk[2], *img_blk[2], *copy_arena;
    void **img;
    uint8_t *img_ok;
    int64_t copy_arena_bytes;
    int64_t pinned_bytes, pageable_bytes; /* of all of these */
} rt_cuda_state;

/* Plans the globals (nothing is allocated yet). */
int rt_cuda_state_init(rt_cuda_state *st, rt_cuda_dev *dev, const ir_module *m, ax_diag *d);
void rt_cuda_state_free(rt_cuda_state *st);

/* ---- programs ------------------------------------------------------------------ */
typedef struct rt_cuda_prog {
    const ir_module *m;
    const ir_program *p;
    rt_cuda_dev *dev;
    int64_t *offsets;     /* arena offset of every value (ir_arena_plan) */
    int64_t arena_bytes;  /* this program's arena peak (== the plan's memplan figure) */
    int64_t scratch_bytes;  /* the sum of the streams' parts: */
    int64_t scratch_base[IR_NSTREAMS], scratch_need[IR_NSTREAMS]; /* each stream's own scratch (nodes of
                                                                  * different streams may run at once) */
    /* streams (node attr stream of the schedule pass; all 0 with one stream):
     * per node its stream, -1 for a host node; rec: some node of another
     * stream waits for it, so its completion is recorded in events[i] */
    int8_t *node_stream;
    uint8_t *rec;
    void **events;
    uint64_t *emu_ev; /* emulated device: per recorded node, its stream and queue position (stream << 56 | n) */
    /* CUDA graph (see rt_cuda_prog_run): -1 never (host nodes, collectives
     * over more than one rank, checking modes, dry runs), 0 the next run is
     * plain, 1 the next run is captured, 2 runs replay graph_exec */
    int graph_state;
    void *graph_exec;
    void *fork_ev[IR_NSTREAMS], *join_ev[IR_NSTREAMS];
    /* per node: staging offset (input), constants offset (rope), error slot
     * (index-validating ops); -1 where unused */
    int64_t *stage_off, *const_off;
    int32_t *flag_slot;
    int nflags;
    int64_t stage_bytes, const_bytes;
    ax_buf consts;        /* host copy of the constants (rope inverse frequencies) */
    void **gemm;          /* per node: cuBLASLt plan of a matmul, else NULL */
    uint64_t flags_dev, consts_dev;
    void *stage_host;     /* pinned */
    rt_prog host;         /* the host values and nodes (offload), when has_host */
    int has_host;
    /* offload copies: the copy-arena offset of each to_host result and of
     * each host value a to_device reads (its device bytes; -1 for other
     * values), planned by ir_arena_plan with the streams' ordering */
    int64_t *copy_off;
    int64_t copy_bytes;
    uint8_t *pending; /* per value: 1 a to_host result not yet widened (its copy may be in flight); 2 a host
                       * value whose slot holds its bytes for to_device */
    uint8_t *alias;   /* per value: its host buffer is its slot (f32/i32 to_host results) */
    /* per host node and device stream: the latest node it waits for (the
     * schedule's waits and its own operands' producers), -1 none; hwait_extra:
     * 1 where the schedule's waits did not cover it */
    int32_t *hwait;
    uint8_t *hwait_extra;
    int scheduled;    /* the schedule pass ran (else host nodes wait for the whole device) */
    uint32_t *evc;    /* checking: per node, the copy clock its event captured (IR_NSTREAMS entries) */
} rt_cuda_prog;

/* Prepares p: arena offsets, kernel selection and argument checks for every
 * node, scratch and staging needs, cuBLASLt plans; loads (compiles) the
 * kernels it uses. Refuses unsupported ops/dtypes/shapes, naming the node. */
int rt_cuda_prog_init(rt_cuda_prog *pr, rt_cuda_state *st, const ir_program *p, ax_diag *d);
void rt_cuda_prog_free(rt_cuda_prog *pr);
/* 1 if p can run as a CUDA graph: it never waits on the host (no host
 * nodes or values, no collective over an axis of more than one rank). */
int rt_cuda_graph_eligible(const ir_module *m, const ir_program *p);

/* Checks that the globals, the programs' arena and scratch and the workspace
 * fit in the device's free memory (with the plan's own per-rank figure in the
 * message), then allocates everything (globals zeroed). Call once, after
 * preparing every program that will run. */
int rt_cuda_state_alloc(rt_cuda_state *st, rt_cuda_prog *const *progs, int nprogs, ax_diag *d);

/* Runs the program; inputs as rt_prog_run. Returns after the device is done. */
int rt_cuda_prog_run(rt_cuda_prog *pr, rt_cuda_state *st, rt_input_fn inputs, void *ctx, ax_diag *d);

/* Global g between the host and the device. host holds this rank's block
 * as the CPU executor does (float for float dtypes, int32 for i32, one float
 * per nf4 code or u8 step); bf16 is rounded to nearest even on the way up and
 * widened on the way down; nf4 and u8 are packed on the way up (an element
 * that is not a code/step is an error naming it) and unpacked on the way
 * down. */
int rt_cuda_upload(rt_cuda_state *st, int g, const rt_buf *host, ax_diag *d);
int rt_cuda_download(rt_cuda_state *st, int g, rt_buf *host, ax_diag *d);

/* ---- packed storage ----------------------------------------------------------
 * nf4 and u8 tensors (QLoRA's frozen base weights: codes, per-block steps;
 * 8-bit AdamW state: adamw8's moment codes) are packed on the device, as
 * ir_type_bytes and the memory plan count them:
 *   nf4: two codes per byte, element 2i in the low nibble of byte i and
 *        2i + 1 in the high nibble (read as a little-endian 32-bit word,
 *        element 8v + j is bits 4j..4j+3 of word v); an odd count leaves the
 *        last high nibble 0;
 *   u8:  one byte per element.
 * The host (rt_buf, the CPU executor) holds one float per element: the code
 * 0..15, the step or code 0..255. rt_cuda_pack (t nf4 or u8) fails (-1, the first
 * offending index in *bad if bad is not NULL) on an element that is not such
 * a whole number; dst gets rt_cuda_packed_bytes(t, n) bytes, the device size
 * of n elements of any dtype. */
int rt_cuda_is_packed(ir_dtype t);
int64_t rt_cuda_packed_bytes(ir_dtype t, int64_t n);
int rt_cuda_pack(ir_dtype t, const float *src, int64_t n, uint8_t *dst, int64_t *bad);
void rt_cuda_unpack(ir_dtype t, const uint8_t *src, int64_t n, float *dst);

/* Device collectives that stage through the host collectives of a local
 * multi-rank run (device -> host, rt_collectives, host -> device). For the
 * one-GPU `local` backend; NCCL replaces it. ctx lives as long as the state. */
typedef struct rt_cuda_host_coll {
    rt_dev_collectives dc;
    rt_cuda_dev *dev;
    const rt_collectives *host;
    int64_t world[IR_MAX_MESH]; /* ranks along each mesh axis */
} rt_cuda_host_coll;
void rt_cuda_host_coll_init(rt_cuda_host_coll *c, rt_cuda_dev *dev, const rt_collectives *host, const ir_module *m);

/* 0 if the CUDA executor can run every program of m (each is prepared in a
 * dry run: ops, dtypes, shapes, launch limits), else -1 with the reasons in
 * d. Needs no GPU; axorun uses it to keep the CPU executor as the default
 * for plans the CUDA executor does not cover yet. */
int rt_cuda_plan_check(const ir_module *m, ax_diag *d);

/* Attaches a CUDA backend to a training session whose weights are
 * initialised: opens the device, prepares micro_step and opt_step, checks
 * memory, allocates, uploads every global. On failure the session is left
 * as it was (CPU) and -1 is returned with the reason. */
int rt_cuda_attach(struct rt_session *s, const rt_cuda_opts *o, ax_diag *d);

#endif
