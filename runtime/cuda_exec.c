/* cuda_exec.c — the CUDA executor (see cuda_exec.h and docs/cuda-runtime.md).
 *
 * Layout of this file: the device layer (allocation, copies, launches, each
 * either issued through the CUDA runtime API or, in a dry run, validated and
 * counted); the kernel signature table; one function per IR op (g_<op>),
 * each used twice — once while a program is prepared (x->plan: no device
 * work, it records scratch/staging/constant needs and checks every launch's
 * arguments) and once per run; then state/program management and the
 * training-session backend.
 *
 * Launch geometry and argument lists follow the comment at the top of each
 * codegen/kernels/ source (.cuh); the argument kinds of every entry point are in
 * `ksigs` below, checked at every launch, against the CUBIN's parameter
 * sizes when a kernel is loaded (cudaFuncGetParamInfo), and against the
 * NVRTC PTX of every source by tests/unit/test_cuda_exec.c.
 */
#include "runtime/cuda_exec.h"

#include "ir/liveness.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"
#include "runtime/cpu_kernels.h"
#include "runtime/trace.h"
#include "runtime/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef AXO_HAVE_CUDA
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#endif

#define GIB (1024.0 * 1024.0 * 1024.0)
#define WORKSPACE_BYTES ((int64_t)32 << 20) /* cuBLASLt workspace (Hopper wants 32 MiB) */
#define EMB_SEG_BYTES ((int64_t)64 << 20)   /* fp32 scratch of a bf16 embedding gradient, per vocab segment */
#define FLAG_INIT 0x7f7f7f7f                /* error slots are memset to 0x7f bytes */
#define KMAX (IR_MAX_IN + 8)                /* most arguments of any kernel (a fused one: its operands + 3) */
#define ALIGN(x) (((x) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN)

/* ==== kernel signatures ======================================================
 * One character per parameter: p pointer, l int64, i int32 (int/unsigned),
 * f float, d double. Must equal the extern "C" definitions in
 * codegen/kernels/ sources (checked at load and by the unit test). */
#define TS(base, sig) {base "_f32", sig}, {base "_bf16", sig}
static const struct ksig {
    const char *entry, *sig;
} ksigs[] = {
    TS("axo_add", "pppl"),
    TS("axo_mul", "pppl"),
    TS("axo_scale", "pfpl"),
    TS("axo_sigmoid", "ppl"),
    TS("axo_sigmoid_bwd", "pppl"),
    TS("axo_acc", "ppl"),
    {"axo_convert_f32_bf16", "ppl"},
    {"axo_convert_bf16_f32", "ppl"},
    TS("axo_bias_add", "pppll"),
    TS("axo_bias_grad_partial", "ppll"),
    TS("axo_bias_grad_reduce", "pilpi"),
    TS("axo_sumsq_partial", "plp"),
    {"axo_sumsq_final", "pipi"},
    TS("axo_rmsnorm_fwd", "pppplff"),
    TS("axo_rmsnorm_bwd", "pppppllff"),
    TS("axo_rmsnorm_dw_reduce", "pilpi"),
    TS("axo_rope", "pppppliiiifidli"),
    TS("axo_embedding_fwd", "ppplllp"),
    TS("axo_embedding_bwd", "ppplllllip"),
    TS("axo_cross_entropy_fwd", "ppppllifp"),
    TS("axo_cross_entropy_bwd", "ppppllifp"),
    TS("axo_lce_chunk", "pppppllllifp"),
    {"axo_cross_entropy_reduce", "pplllipp"},
    {"axo_dpo_loss", "pppplddddiiddddpp"},
    {"axo_adamw_f32", "pppplppppddddd"},
    {"axo_adamw_bf16", "ppppplppppddddd"},
    {"axo_adamw_sr_bf16", "ppppllppppddddid"},
    TS("axo_adamw8", "pppppplllppppddddiid"),
    TS("axo_attn_fwd_hd64", "ppppppiiififpi"),
    TS("axo_attn_fwd_hd128", "ppppppiiififpi"),
    TS("axo_attn_bwd_preprocess", "pppliii"),
    TS("axo_attn_bwd_dkdv_hd64", "pppppppppiiifif"),
    TS("axo_attn_bwd_dkdv_hd128", "pppppppppiiifif"),
    TS("axo_attn_bwd_dq_hd64", "ppppppppiiifif"),
    TS("axo_attn_bwd_dq_hd128", "ppppppppiiifif"),
    TS("axo_swiglu_fwd", "pppl"),
    TS("axo_swiglu_bwd", "pppppl"),
    TS("axo_geglu_fwd", "pppl"),
    TS("axo_geglu_bwd", "pppppl"),
    TS("axo_dropout", "pppliif"),
    TS("axo_neftune", "pppllifp"),
    TS("axo_dora_norm", "pppplllf"),
    TS("axo_dora_scale", "pppppllf"),
    TS("axo_dora_scale_bwd", "ppppppppllf"),
    {"axo_dora_dm_reduce", "pilpp"},
    TS("axo_lora_delta", "pppplllldi"),
    TS("axo_lora_delta_da", "pppplllldi"),
    TS("axo_lora_delta_db", "pppplllldi"),
    TS("axo_dequant_nf4", "ppppll"),
    {"axo_fill_u32", "pil"},
    {"axo_fill_u16", "pil"},
    {"axo_acc_f32_bf16", "ppl"},
    {"axo_acc_bf16_f32", "ppl"},
    {"axo_clip_coef", "ppd"},
    TS("axo_slice", "ppllll"),
    TS("axo_slice_bwd", "ppllll"),
    TS("axo_moe_route", "pppliii"),
    TS("axo_moe_route_bwd", "ppppliii"),
    {"axo_moe_count", "plp"},
    {"axo_moe_fill", "plipppp"},
    TS("axo_moe_gemm", "pipippppiii"),
    {"axo_moe_gemm_af32_bf16", "pipippppiii"},
    TS("axo_moe_wgrad", "ppipppii"),
    {"axo_moe_wgrad_bf32_bf16", "ppipppii"},
    {"axo_moe_gemm_tc_bf16", "pipippppiii"},
    {"axo_moe_gemm_tc_af32_bf16", "pipippppiii"},
    {"axo_moe_wgrad_tc_bf16", "ppipppii"},
    {"axo_moe_wgrad_tc_bf32_bf16", "ppipppii"},
    TS("axo_moe_lb_rows", "pppplii"),
    TS("axo_moe_lb_stats_bwd", "ppppli"),
    {"axo_moe_lb_loss", "ppi"},
    {"axo_moe_lb_loss_bwd", "pppi"},
    TS("axo_moe_act", "ppli"),
    TS("axo_moe_act_bwd", "pppli"),
    TS("axo_moe_combine", "pppplii"),
    TS("axo_moe_dw", "ppplii"),
    TS("axo_moe_scale", "ppplii"),
    TS("axo_moe_bias", "pppli"),
    TS("axo_moe_oss_act", "pplidd"),
    TS("axo_moe_oss_act_bwd", "ppplidd"),
    TS("axo_moe_colsum", "ppppii"),
    TS("axo_moe_expand", "pplii"),
    TS("axo_attn_sink", "pppiliii"),
    TS("axo_attn_sink_bwd", "pippppliii"),
    TS("axo_attn_any_fwd", "ppppppliiiididpi"),
    TS("axo_attn_any_bwd_dq", "ppppppppliiiidid"),
    TS("axo_attn_any_bwd_dkdv", "pppppppppliiiidid"),
    TS("axo_attn_blk_fwd_hd64", "pppppppppiiiifif"),
    TS("axo_attn_blk_fwd_hd128", "pppppppppiiiifif"),
    TS("axo_attn_blk_bwd_preprocess", "pppliii"),
    TS("axo_attn_blk_bwd_dkdv_hd64", "ppppppppppppiiiifif"),
    TS("axo_attn_blk_bwd_dkdv_hd128", "ppppppppppppiiiifif"),
    TS("axo_attn_blk_bwd_dq_hd64", "pppppppppppiiiifif"),
    TS("axo_attn_blk_bwd_dq_hd128", "pppppppppppiiiifif"),
    {"axo_attn_merge_f32", "ppppppliii"},
    {"axo_attn_tc_fwd_hd64_bf16", "ppppppiiififpi"},
    {"axo_attn_tc_fwd_hd128_bf16", "ppppppiiififpi"},
    {"axo_attn_tc_bwd_dkdv_hd64_bf16", "pppppppppiiifif"},
    {"axo_attn_tc_bwd_dkdv_hd128_bf16", "pppppppppiiifif"},
    {"axo_attn_tc_bwd_dq_hd64_bf16", "ppppppppiiifif"},
    {"axo_attn_tc_bwd_dq_hd128_bf16", "ppppppppiiifif"},
    {"axo_attn_tc_blk_fwd_hd64_bf16", "pppppppppiiiifif"},
    {"axo_attn_tc_blk_fwd_hd128_bf16", "pppppppppiiiifif"},
    {"axo_attn_tc_blk_bwd_dkdv_hd64_bf16", "ppppppppppppiiiifif"},
    {"axo_attn_tc_blk_bwd_dkdv_hd128_bf16", "ppppppppppppiiiifif"},
    {"axo_attn_tc_blk_bwd_dq_hd64_bf16", "pppppppppppiiiifif"},
    {"axo_attn_tc_blk_bwd_dq_hd128_bf16", "pppppppppppiiiifif"},
};
#undef TS

/* Used by tests/unit/test_cuda_exec.c to compare with the kernels' PTX. */
int rt_cuda_kernel_sig_count(void);
const char *rt_cuda_kernel_sig(int i, const char **entry);
int rt_cuda_kernel_sig_count(void) { return (int)AX_ARRAY_LEN(ksigs); }
const char *rt_cuda_kernel_sig(int i, const char **entry) {
    if (i < 0 || i >= (int)AX_ARRAY_LEN(ksigs)) return NULL;
    *entry = ksigs[i].entry;
    return ksigs[i].sig;
}

/* Generated kernels (`fused` nodes, codegen/fusegen.h): each device keeps
 * one record per distinct entry point, made while a program is prepared;
 * the strings live as long as the device (kfn keeps pointers to them). */
typedef struct gsig {
    struct ksig ks;  /* entry "axo_fused_<hash>", sig "p" x (nin + 1) + "ll" */
    char *expr;
    ir_dtype *in;
    int nin;
} gsig;

/* ==== device ================================================================ */
typedef struct dalloc {
    uint64_t base;
    int64_t bytes;
} dalloc;

typedef struct kmod {
    const char *name;
#ifdef AXO_HAVE_CUDA
    cudaLibrary_t lib;
#endif
} kmod;

/* A block of host memory for CPU offload (hm_alloc). */
typedef struct hblock {
    const char *base;
    int64_t bytes;
    int pinned;
} hblock;

/* An asynchronous copy whose completion the host has not seen yet
 * (checking modes): [host, host + bytes) is being read (to the device) or
 * written (to the host) by the copy engine; done once hvc[stream] >= seq. */
typedef struct inflight {
    const char *host;
    int64_t bytes;
    int stream, to_host;
    uint32_t seq;
} inflight;

typedef struct kfn {
    const char *entry, *sig;
    int64_t smem_set; /* dynamic shared memory limit raised to this */
#ifdef AXO_HAVE_CUDA
    cudaKernel_t k;
#endif
} kfn;

struct rt_cuda_dev {
    int dry, device, sm_count, sync_each, poison;
    const rt_cuda_emu *emu; /* dry runs only: the emulated device (real host memory, kernels on the host) */
    int emu_eager;          /* AXO_EMU_EAGER=1: do the work when issued (else queued per stream, done lazily) */
    int emu_flip;           /* alternates the order dv_sync_all takes the streams in */
    int emu_drop_waits;     /* test hook AXO_TEST_EMU_DROP_WAITS=1: ignore the waits between streams (a race) */
    struct eop *eq[IR_NSTREAMS]; /* per stream: queued work [edone, eissued) at eq[k - ebase] */
    uint64_t ebase[IR_NSTREAMS], edone[IR_NSTREAMS], eissued[IR_NSTREAMS];
    int64_t ecap[IR_NSTREAMS];
    int64_t smem_optin; /* largest dynamic shared memory a block may opt in to */
    char name[128], arch[32];
    rt_kernel_provider kp;
    /* every live allocation, sorted by base (device bytes; the dry run's fake ones) */
    dalloc *allocs;
    int nallocs, capallocs;
    int64_t dry_total, dry_used;
    uint64_t dry_next;
    kmod mods[256]; /* hand-written sources + one per distinct fused kernel */
    int nmods;
    kfn *kfns;
    int nkfns, capkfns;
    gsig **gen; /* generated kernels' signatures */
    int ngen, capgen;
    rt_cuda_counts counts;
    int nstreams; /* streams created: 1, or 3 (compute, communication, copies) */
    int graphs;   /* programs may be captured in CUDA graphs */
    int cur;      /* index of the stream work is issued on now */
#ifdef AXO_HAVE_CUDA
    cudaStream_t stream; /* == streams[cur] */
    cudaStream_t streams[IR_NSTREAMS];
    cublasLtHandle_t lt;
#endif
    uint64_t ws; /* cuBLASLt workspace */
    int64_t ws_bytes;
    int sync_copies; /* AXO_CUDA_SYNC_COPIES: offload copies synchronous even from pinned memory */
    /* offload memory (sorted by base): a copy may be asynchronous only if
     * its host side lies in a pinned block */
    hblock *hblocks;
    int nhblocks, caphblocks;
    int64_t dry_pin_limit, dry_pinned;
    /* Checking modes (dry runs, AXO_CUDA_POISON): what the host knows of
     * the asynchronous copies, as vector clocks over the streams. Each async
     * copy on stream s takes seq ++svc[s][s]; svc[s][t] is the latest copy
     * of stream t ordered before the next work of stream s (its own, or
     * through the events it waited for); an event captures its stream's
     * clock; hvc[t] is the latest copy of stream t the host has seen
     * complete (an event or stream synchronisation joins that clock). */
    uint32_t svc[IR_NSTREAMS][IR_NSTREAMS], hvc[IR_NSTREAMS];
    inflight *fl;
    int nfl, capfl;
};

#ifdef AXO_HAVE_CUDA
/* 0, or -1 with "where: what failed: <CUDA's message>" in d. */
static int ck(ax_diag *d, const char *where, const char *what, cudaError_t e) {
    if (e == cudaSuccess) return 0;
    ax_error(d, where, "%s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return -1;
}
static int ckb(ax_diag *d, const char *where, const char *what, cublasStatus_t s) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    ax_error(d, where, "%s failed: %s (%s)", what, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
    return -1;
}
#endif

static const char *env_set(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

int rt_cuda_device_arch(int device, char *buf, size_t cap) {
#ifdef AXO_HAVE_CUDA
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    snprintf(buf, cap, "sm_%d%d%s", prop.major, prop.minor, prop.major == 9 && prop.minor == 0 ? "a" : "");
    return 0;
#else
    (void)device, (void)buf, (void)cap;
    return -1;
#endif
}

int rt_cuda_device_count(char *why, size_t cap) {
#ifdef AXO_HAVE_CUDA
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why && e == cudaErrorInsufficientDriver)
            snprintf(why, cap, "no usable NVIDIA driver (libcuda.so.1 is missing or older than this CUDA runtime)");
        else if (why && e == cudaErrorNoDevice)
            snprintf(why, cap, "no CUDA device is visible");
        else if (why)
            snprintf(why, cap, "cudaGetDeviceCount failed: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* not sticky: leave no error behind */
        return 0;
    }
    if (n < 1 && why) snprintf(why, cap, "no CUDA device is visible");
    return n < 0 ? 0 : n;
#else
    if (why) snprintf(why, cap, "axo was built without the CUDA toolkit");
    return 0;
#endif
}

static int track(rt_cuda_dev *dev, uint64_t base, int64_t bytes) {
    if (dev->nallocs == dev->capallocs) {
        int cap = dev->capallocs ? 2 * dev->capallocs : 64;
        dalloc *a = realloc(dev->allocs, sizeof *a * (size_t)cap);
        if (!a) return -1;
        dev->allocs = a;
        dev->capallocs = cap;
    }
    int i = dev->nallocs;
    while (i > 0 && dev->allocs[i - 1].base > base) {
        dev->allocs[i] = dev->allocs[i - 1];
        i--;
    }
    dev->allocs[i] = (dalloc){base, bytes};
    dev->nallocs++;
    return 0;
}

static int64_t untrack(rt_cuda_dev *dev, uint64_t base) {
    for (int i = 0; i < dev->nallocs; i++)
        if (dev->allocs[i].base == base) {
            int64_t b = dev->allocs[i].bytes;
            memmove(&dev->allocs[i], &dev->allocs[i + 1], sizeof(dalloc) * (size_t)(dev->nallocs - i - 1));
            dev->nallocs--;
            return b;
        }
    return -1;
}

/* 1 if [p, p + bytes) lies inside one allocation. */
static int inside(const rt_cuda_dev *dev, uint64_t p, int64_t bytes) {
    int lo = 0, hi = dev->nallocs - 1;
    while (lo <= hi) { /* last allocation with base <= p */
        int mid = (lo + hi) / 2;
        if (dev->allocs[mid].base <= p) lo = mid + 1;
        else hi = mid - 1;
    }
    if (hi < 0) return 0;
    const dalloc *a = &dev->allocs[hi];
    return p >= a->base && bytes >= 0 && p - a->base + (uint64_t)bytes <= (uint64_t)a->bytes;
}

static int dv_alloc(rt_cuda_dev *dev, int64_t bytes, uint64_t *out, const char *what, ax_diag *d) {
    int64_t b = bytes > 0 ? ALIGN(bytes) : IR_ARENA_ALIGN;
    if (dev->dry) {
        if (dev->dry_used + b > dev->dry_total) {
            ax_error(d, "cuda", "out of device memory allocating %s (%lld bytes; dry run of %.3f GiB)", what,
                     (long long)b, (double)dev->dry_total / GIB);
            return -1;
        }
        if (dev->emu) { /* its own block: an overrun is the host's to catch (AddressSanitizer) */
            void *p = aligned_alloc(IR_ARENA_ALIGN, (size_t)b);
            if (!p) {
                ax_error(d, "cuda", "out of host memory allocating %s (%lld bytes, emulated device)", what, (long long)b);
                return -1;
            }
            memset(p, 0xff, (size_t)b); /* fresh device memory holds anything: NaN here */
            *out = (uint64_t)(uintptr_t)p;
        } else {
            *out = dev->dry_next;
            dev->dry_next += (uint64_t)b + 4096; /* gaps: an overrun never lands in the next buffer */
        }
        dev->dry_used += b;
    } else {
#ifdef AXO_HAVE_CUDA
        void *p = NULL;
        cudaError_t e = cudaMalloc(&p, (size_t)b);
        if (e != cudaSuccess) {
            size_t fr = 0, tot = 0;
            cudaGetLastError();
            cudaMemGetInfo(&fr, &tot);
            ax_error(d, "cuda", "cudaMalloc of %lld bytes for %s failed: %s (%.3f GiB of %.3f GiB free)",
                     (long long)b, what, cudaGetErrorString(e), (double)fr / GIB, (double)tot / GIB);
            return -1;
        }
        *out = (uint64_t)(uintptr_t)p;
#else
        ax_error(d, "cuda", "axo was built without CUDA");
        return -1;
#endif
    }
    if (track(dev, *out, b) != 0) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    return 0;
}

static int eq_flush_all(rt_cuda_dev *dev, ax_diag *d);
static void dv_free(rt_cuda_dev *dev, uint64_t p) {
    if (!p) return;
    int64_t b = untrack(dev, p);
    if (dev->dry) {
        if (b > 0) dev->dry_used -= b;
        if (dev->emu) { /* cudaFree waits for the device */
            ax_diag tmp;
            ax_diag_init(&tmp);
            eq_flush_all(dev, &tmp);
            ax_diag_free(&tmp);
            free((void *)(uintptr_t)p);
        }
        return;
    }
#ifdef AXO_HAVE_CUDA
    cudaFree((void *)(uintptr_t)p);
#endif
}

static int bad_extent(rt_cuda_dev *dev, const char *where, const char *what, uint64_t p, int64_t bytes, ax_diag *d) {
    ax_error(d, where, "internal error: %s touches [0x%llx, +%lld bytes), which is not inside one device allocation",
             what, (unsigned long long)p, (long long)bytes);
    (void)dev;
    return -1;
}

/* Extent checks run in dry runs (always) and on the GPU with poisoning on
 * (a debugging mode; the per-launch cost is a binary search per pointer). */
static int checking(const rt_cuda_dev *dev) { return dev->dry || dev->poison; }

/* ---- the emulated device's streams ------------------------------------------------
 * Work is queued per stream and done as late as CUDA allows (cuda_exec.h,
 * "Emulated device"). An entry is a launch, a GEMM, a memset, a copy
 * (host bytes of an upload taken when issued) or a wait for another
 * stream's position. */
enum { EOP_LAUNCH, EOP_GEMM, EOP_MEMSET, EOP_COPY, EOP_WAIT };
typedef union eval {
    uint64_t p;
    int64_t l;
    int32_t i;
    float f;
    double d;
} eval;
typedef struct eop {
    int kind;
    char where[160]; /* gx.where's size */
    /* launch */
    const char *entry, *expr;
    const ir_dtype *in;
    int nin, nargs;
    unsigned g[3], b[2];
    int64_t smem;
    eval v[KMAX];
    /* gemm */
    int64_t M, N, K;
    int ta, tb, acc;
    ir_dtype t, tc;
    uint64_t A, B, C;
    /* memset, copy */
    void *dst, *snap; /* snap: owned copy of an upload's host bytes */
    const void *src;
    int byte;
    int64_t bytes;
    /* wait */
    int ws;
    uint64_t wpos;
} eop;

static int emu_lazy(const rt_cuda_dev *dev) { return dev->dry && dev->emu && !dev->emu_eager; }

static int eop_run(rt_cuda_dev *dev, eop *o, ax_diag *d);
/* Does stream s's work up to position upto (first the work its waits name). */
static int eq_flush(rt_cuda_dev *dev, int s, uint64_t upto, ax_diag *d) {
    int rc = 0;
    while (dev->edone[s] < upto && dev->edone[s] < dev->eissued[s]) {
        eop *o = &dev->eq[s][dev->edone[s] - dev->ebase[s]];
        dev->edone[s]++;
        int r = o->kind == EOP_WAIT ? eq_flush(dev, o->ws, o->wpos, d) : eop_run(dev, o, d);
        free(o->snap);
        o->snap = NULL;
        if (r && !rc) rc = -1;
    }
    if (dev->edone[s] == dev->eissued[s]) dev->ebase[s] = dev->edone[s]; /* empty: reuse the array from the start */
    return rc;
}
static int eq_flush_all(rt_cuda_dev *dev, ax_diag *d) {
    int rc = 0;
    for (int s = 0; s < IR_NSTREAMS; s++)
        if (eq_flush(dev, s, UINT64_MAX, d) && !rc) rc = -1;
    return rc;
}
/* Queues o on the current stream (the emulated device, lazy), or does it now. */
static int eq_push(rt_cuda_dev *dev, eop *o, ax_diag *d) {
    if (!emu_lazy(dev)) {
        int rc = o->kind == EOP_WAIT ? 0 : eop_run(dev, o, d);
        free(o->snap);
        return rc;
    }
    int s = dev->cur;
    int64_t n = (int64_t)(dev->eissued[s] - dev->ebase[s]);
    if (n == dev->ecap[s]) {
        int64_t cap = dev->ecap[s] ? 2 * dev->ecap[s] : 256;
        eop *q = realloc(dev->eq[s], sizeof *q * (size_t)cap);
        if (!q) {
            free(o->snap);
            ax_error(d, o->where, "out of host memory (emulated stream queue)");
            return -1;
        }
        dev->eq[s] = q;
        dev->ecap[s] = cap;
    }
    dev->eq[s][n] = *o;
    dev->eissued[s]++;
    return 0;
}

static int eop_run(rt_cuda_dev *dev, eop *o, ax_diag *d) {
    char err[512] = "";
    switch (o->kind) {
    case EOP_MEMSET: memset(o->dst, o->byte, (size_t)o->bytes); return 0;
    case EOP_COPY: memmove(o->dst, o->src, (size_t)o->bytes); return 0;
    case EOP_GEMM:
        if (dev->emu->gemm(dev->emu->ctx, o->M, o->N, o->K, o->ta, o->tb, o->t, o->tc, (const void *)(uintptr_t)o->A,
                           (const void *)(uintptr_t)o->B, (void *)(uintptr_t)o->C, o->acc, err, sizeof err) == 0)
            return 0;
        ax_error(d, o->where, "emulated GEMM failed: %s", err);
        return -1;
    case EOP_LAUNCH: {
        void *argv[KMAX];
        for (int i = 0; i < o->nargs; i++) argv[i] = &o->v[i];
        if (dev->emu->launch(dev->emu->ctx, o->entry, o->expr, o->in, o->nin, o->g, o->b, o->smem, argv, err,
                             sizeof err) == 0)
            return 0;
        ax_error(d, o->where, "emulated launch of %s failed: %s", o->entry, err);
        return -1;
    }
    default: return 0;
    }
}

static int dv_memset(rt_cuda_dev *dev, uint64_t p, int byte, int64_t bytes, const char *where, ax_diag *d) {
    if (bytes <= 0) return 0;
    if (checking(dev) && !inside(dev, p, bytes)) return bad_extent(dev, where, "memset", p, bytes, d);
    dev->counts.memsets++;
    if (dev->dry) {
        if (!dev->emu) return 0;
        eop o = {.kind = EOP_MEMSET, .dst = (void *)(uintptr_t)p, .byte = byte, .bytes = bytes};
        snprintf(o.where, sizeof o.where, "%s", where);
        return eq_push(dev, &o, d);
    }
#ifdef AXO_HAVE_CUDA
    return ck(d, where, "cudaMemsetAsync", cudaMemsetAsync((void *)(uintptr_t)p, byte, (size_t)bytes, dev->stream));
#else
    (void)byte;
    return -1;
#endif
}

static int dv_copy(rt_cuda_dev *dev, uint64_t dst, uint64_t src, int64_t bytes, const char *where, ax_diag *d) {
    if (bytes <= 0 || dst == src) return 0;
    if (checking(dev) && !inside(dev, dst, bytes)) return bad_extent(dev, where, "copy destination", dst, bytes, d);
    if (checking(dev) && !inside(dev, src, bytes)) return bad_extent(dev, where, "copy source", src, bytes, d);
    dev->counts.copies++;
    if (dev->dry) {
        if (!dev->emu) return 0;
        eop o = {.kind = EOP_COPY, .dst = (void *)(uintptr_t)dst, .src = (const void *)(uintptr_t)src, .bytes = bytes};
        snprintf(o.where, sizeof o.where, "%s", where);
        return eq_push(dev, &o, d);
    }
#ifdef AXO_HAVE_CUDA
    return ck(d, where, "cudaMemcpyAsync (device to device)",
              cudaMemcpyAsync((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)bytes,
                              cudaMemcpyDeviceToDevice, dev->stream));
#else
    return -1;
#endif
}

/* Host -> device on the stream; async when host is pinned. */
static int dv_h2d(rt_cuda_dev *dev, uint64_t dst, const void *host, int64_t bytes, const char *where, ax_diag *d) {
    if (bytes <= 0) return 0;
    if (checking(dev) && !inside(dev, dst, bytes)) return bad_extent(dev, where, "upload", dst, bytes, d);
    dev->counts.copies++;
    if (dev->dry) {
        if (!dev->emu) return 0;
        eop o = {.kind = EOP_COPY, .dst = (void *)(uintptr_t)dst, .bytes = bytes, .snap = malloc((size_t)bytes)};
        if (!o.snap) {
            ax_error(d, where, "out of host memory");
            return -1;
        }
        memcpy(o.snap, host, (size_t)bytes); /* the host bytes as they are now */
        o.src = o.snap;
        snprintf(o.where, sizeof o.where, "%s", where);
        return eq_push(dev, &o, d);
    }
#ifdef AXO_HAVE_CUDA
    return ck(d, where, "cudaMemcpyAsync (host to device)",
              cudaMemcpyAsync((void *)(uintptr_t)dst, host, (size_t)bytes, cudaMemcpyHostToDevice, dev->stream));
#else
    (void)host;
    return -1;
#endif
}

static void host_saw(rt_cuda_dev *dev, const uint32_t *vc);

static int dv_sync(rt_cuda_dev *dev, const char *where, ax_diag *d) {
    dev->counts.syncs++;
    if (checking(dev)) host_saw(dev, dev->svc[dev->cur]); /* what the stream waited for is done too */
    if (dev->dry) return dev->emu ? eq_flush(dev, dev->cur, UINT64_MAX, d) : 0;
#ifdef AXO_HAVE_CUDA
    return ck(d, where, "cudaStreamSynchronize", cudaStreamSynchronize(dev->stream));
#else
    return -1;
#endif
}

/* Issue work on stream s from now on. */
static void dv_use_stream(rt_cuda_dev *dev, int s) {
    if (s < 0 || s >= dev->nstreams) s = 0;
    dev->cur = s;
#ifdef AXO_HAVE_CUDA
    if (!dev->dry) dev->stream = dev->streams[s];
#endif
}

/* Waits for every stream; leaves stream 0 current. Reports the first error. */
static int dv_sync_all(rt_cuda_dev *dev, const char *where, ax_diag *d) {
    int rc = 0;
    dev->emu_flip ^= 1; /* the emulated device: a missing wait shows up in one order or the other */
    for (int k = 0; k < dev->nstreams; k++) {
        int s = dev->emu && dev->emu_flip ? k : dev->nstreams - 1 - k;
        dv_use_stream(dev, s);
        if (dv_sync(dev, where, d) != 0 && !rc) rc = -1;
    }
    dv_use_stream(dev, 0);
    return rc;
}

/* Device -> host, synchronous (waits for the stream). A dry run writes
 * nothing: fills host with zero bytes. */
static int dv_d2h(rt_cuda_dev *dev, void *host, uint64_t src, int64_t bytes, const char *where, ax_diag *d) {
    if (bytes <= 0) return 0;
    if (checking(dev) && !inside(dev, src, bytes)) return bad_extent(dev, where, "download", src, bytes, d);
    dev->counts.copies++;
    if (dev->dry) {
        if (!dev->emu) {
            memset(host, 0, (size_t)bytes);
            return 0;
        }
        if (eq_flush(dev, dev->cur, UINT64_MAX, d)) return -1; /* a synchronous copy: the stream's work first */
        memcpy(host, (const void *)(uintptr_t)src, (size_t)bytes);
        return 0;
    }
#ifdef AXO_HAVE_CUDA
    if (ck(d, where, "cudaMemcpyAsync (device to host)",
           cudaMemcpyAsync(host, (const void *)(uintptr_t)src, (size_t)bytes, cudaMemcpyDeviceToHost, dev->stream)))
        return -1;
    return dv_sync(dev, where, d);
#else
    return -1;
#endif
}

static int dv_host_alloc(rt_cuda_dev *dev, int64_t bytes, void **out, ax_diag *d) {
    size_t b = (size_t)(bytes > 0 ? bytes : 1);
    if (dev->dry) {
        *out = calloc(1, b);
        if (!*out) ax_error(d, "cuda", "out of host memory");
        return *out ? 0 : -1;
    }
#ifdef AXO_HAVE_CUDA
    return ck(d, "cuda", "cudaMallocHost (input staging)", cudaMallocHost(out, b));
#else
    return -1;
#endif
}

static void dv_host_free(rt_cuda_dev *dev, void *p) {
    if (!p) return;
    if (dev->dry) {
        free(p);
        return;
    }
#ifdef AXO_HAVE_CUDA
    cudaFreeHost(p);
#endif
}

/* ---- CPU offload: host memory and copies -------------------------------------------
 * Offload memory is allocated once per state in a few blocks, page-locked
 * where the plan asks for it. Only a copy whose host side is pinned can
 * run on the copy engine while the host goes on; from pageable memory the
 * driver stages the bytes through its own buffer, synchronously with the
 * host, so nothing overlaps anyway. So hm_copy decides by the block:
 * pinned, the copy is queued and returns; pageable (or
 * AXO_CUDA_SYNC_COPIES), it also waits for its stream, so that the host
 * buffer is free (or filled) on return, as before there was pinning. */
static hblock *hblock_of(const rt_cuda_dev *dev, const void *p, int64_t bytes) {
    const char *c = p;
    int lo = 0, hi = dev->nhblocks - 1;
    while (lo <= hi) { /* the last block with base <= p */
        int mid = (lo + hi) / 2;
        if (dev->hblocks[mid].base <= c) lo = mid + 1;
        else hi = mid - 1;
    }
    if (hi < 0 || bytes < 0) return NULL;
    hblock *b = &dev->hblocks[hi];
    return c - b->base + bytes <= b->bytes ? b : NULL;
}

int rt_cuda_host_pinned(const rt_cuda_dev *dev, const void *p) {
    const hblock *b = hblock_of(dev, p, 1);
    return b ? b->pinned : -1;
}

static int pin_warned; /* one warning per process, however many ranks and blocks */
static const char *human(int64_t b, char *buf, size_t cap);

/* Zeroed host memory for offload, pinned if pin and the driver (or the dry
 * run's limit) allows it, else pageable with one warning per process. */
static void *hm_alloc(rt_cuda_dev *dev, int64_t bytes, int pin, const char *what, ax_diag *d) {
    size_t b = (size_t)(bytes > 0 ? bytes : 1);
    void *p = NULL;
    int pinned = 0;
    char why[200] = "";
    if (pin && dev->dry) {
        if (dev->dry_pin_limit < 0 || (dev->dry_pin_limit > 0 && dev->dry_pinned + (int64_t)b > dev->dry_pin_limit))
            snprintf(why, sizeof why, "the dry run may pin %lld bytes",
                     (long long)(dev->dry_pin_limit > 0 ? dev->dry_pin_limit - dev->dry_pinned : 0));
        else if ((p = calloc(1, b)) != NULL)
            pinned = 1, dev->dry_pinned += (int64_t)b;
    } else if (pin) {
#ifdef AXO_HAVE_CUDA
        cudaError_t e = cudaHostAlloc(&p, b, cudaHostAllocPortable);
        if (e == cudaSuccess) {
            memset(p, 0, b);
            pinned = 1;
        } else {
            p = NULL;
            cudaGetLastError(); /* not sticky: the run goes on with pageable memory */
            snprintf(why, sizeof why, "cudaHostAlloc: %s", cudaGetErrorString(e));
        }
#endif
    }
    if (pin && !pinned) {
        char h[32];
        dev->counts.pin_fallbacks++;
        if (!__atomic_exchange_n(&pin_warned, 1, __ATOMIC_RELAXED))
            fprintf(stderr,
                    "axorun: warning: cannot pin %s of host memory for %s (%s): CPU offload uses pageable memory, so "
                    "its copies are synchronous (no overlap with compute). Raise the locked-memory limit (ulimit -l; "
                    "docker run --ulimit memlock=-1) or set the offload's pin_memory to false\n",
                    human((int64_t)b, h, sizeof h), what, why);
    }
    if (!p) p = calloc(1, b);
    if (p && dev->nhblocks == dev->caphblocks) {
        int cap = dev->caphblocks ? 2 * dev->caphblocks : 8;
        hblock *nb = realloc(dev->hblocks, sizeof *nb * (size_t)cap);
        if (nb) {
            dev->hblocks = nb;
            dev->caphblocks = cap;
        } else {
#ifdef AXO_HAVE_CUDA
            if (pinned && !dev->dry) cudaFreeHost(p);
            else free(p);
#else
            free(p);
#endif
            if (pinned && dev->dry) dev->dry_pinned -= (int64_t)b;
            p = NULL;
        }
    }
    if (!p) {
        ax_error(d, "cuda", "out of host memory allocating %s (%lld bytes)", what, (long long)b);
        return NULL;
    }
    int i = dev->nhblocks;
    while (i > 0 && dev->hblocks[i - 1].base > (const char *)p) {
        dev->hblocks[i] = dev->hblocks[i - 1];
        i--;
    }
    dev->hblocks[i] = (hblock){p, (int64_t)b, pinned};
    dev->nhblocks++;
    return p;
}

static void hm_free(rt_cuda_dev *dev, void *p) {
    if (!p) return;
    int pinned = 0;
    for (int i = 0; i < dev->nhblocks; i++)
        if (dev->hblocks[i].base == (const char *)p) {
            pinned = dev->hblocks[i].pinned;
            if (pinned && dev->dry) dev->dry_pinned -= dev->hblocks[i].bytes;
            memmove(&dev->hblocks[i], &dev->hblocks[i + 1], sizeof(hblock) * (size_t)(dev->nhblocks - i - 1));
            dev->nhblocks--;
            break;
        }
#ifdef AXO_HAVE_CUDA
    if (pinned && !dev->dry) {
        cudaFreeHost(p);
        return;
    }
#endif
    free(p);
}

static void vc_join(uint32_t *a, const uint32_t *b) {
    for (int s = 0; s < IR_NSTREAMS; s++)
        if (b[s] > a[s]) a[s] = b[s];
}

/* The host has seen the work behind clock vc complete: the copies it
 * covers are no longer in flight. */
static void host_saw(rt_cuda_dev *dev, const uint32_t *vc) {
    vc_join(dev->hvc, vc);
    int k = 0;
    for (int i = 0; i < dev->nfl; i++)
        if (dev->hvc[dev->fl[i].stream] < dev->fl[i].seq) dev->fl[k++] = dev->fl[i];
    dev->nfl = k;
}

/* Checking modes: may the host touch [p, p + bytes) now (write: write it)?
 * Not while an asynchronous copy it has not seen complete writes that
 * memory, nor, for a write, while one reads it. 0, or -1 naming the copy. */
static int host_touch(rt_cuda_dev *dev, const void *p, int64_t bytes, int write, const char *where, const char *what,
                      ax_diag *d) {
    if (!checking(dev) || bytes <= 0) return 0;
    const char *lo = p, *hi = lo + bytes;
    for (int i = 0; i < dev->nfl; i++) {
        const inflight *e = &dev->fl[i];
        if (lo < e->host + e->bytes && e->host < hi && (write || e->to_host)) {
            ax_error(d, where,
                     "internal error: the host %s %s while an asynchronous copy %s it (stream %d, copy %u) is not "
                     "known to be complete: a host node must wait for the copies it reads, and host memory must not "
                     "be rewritten before the copies that read it are done",
                     write ? "writes" : "reads", what, e->to_host ? "into" : "from", e->stream, e->seq);
            return -1;
        }
    }
    return 0;
}

/* An offload copy between offload host memory and the device, on the
 * current stream: asynchronous if the host block is pinned (and
 * AXO_CUDA_SYNC_COPIES is off), else the stream is synchronised after it.
 * 1 queued, 0 done, -1 error. A dry run writes zero bytes to the host. */
static int hm_copy(rt_cuda_dev *dev, int to_host, void *host, uint64_t dptr, int64_t bytes, const char *where,
                   ax_diag *d) {
    if (bytes <= 0) return 0;
    if (checking(dev) && !inside(dev, dptr, bytes))
        return bad_extent(dev, where, to_host ? "copy to the host" : "copy to the device", dptr, bytes, d);
    const hblock *hb = hblock_of(dev, host, bytes);
    if (!hb) {
        ax_error(d, where, "internal error: the host side of a copy (%lld bytes) is not inside one block of the "
                           "executor's offload memory", (long long)bytes);
        return -1;
    }
    int async = hb->pinned && !dev->sync_copies;
    const char *lo = host, *hi = lo + bytes;
    if (checking(dev)) /* another stream's copy that writes this host memory, or that it writes while the other reads */
        for (int i = 0; i < dev->nfl; i++) {
            const inflight *e = &dev->fl[i];
            if (lo < e->host + e->bytes && e->host < hi && e->stream != dev->cur && (to_host || e->to_host)) {
                ax_error(d, where, "internal error: a copy %s host memory that a copy on stream %d still %s",
                         to_host ? "writes" : "reads", e->stream, e->to_host ? "writes" : "reads");
                return -1;
            }
        }
    dev->counts.copies++;
    if (async) dev->counts.async_copies++;
    else dev->counts.sync_copies++;
    if (dev->dry && dev->emu) { /* queued: an asynchronous copy reads and writes the host when it runs */
        eop o = {.kind = EOP_COPY, .bytes = bytes};
        o.dst = to_host ? host : (void *)(uintptr_t)dptr;
        o.src = to_host ? (const void *)(uintptr_t)dptr : host;
        snprintf(o.where, sizeof o.where, "%s", where);
        if (eq_push(dev, &o, d)) return -1;
    } else if (dev->dry) {
        if (to_host) memset(host, 0, (size_t)bytes);
    } else {
#ifdef AXO_HAVE_CUDA
        void *dp = (void *)(uintptr_t)dptr;
        cudaError_t e = to_host ? cudaMemcpyAsync(host, dp, (size_t)bytes, cudaMemcpyDeviceToHost, dev->stream)
                                : cudaMemcpyAsync(dp, host, (size_t)bytes, cudaMemcpyHostToDevice, dev->stream);
        if (ck(d, where, to_host ? "cudaMemcpyAsync (device to host)" : "cudaMemcpyAsync (host to device)", e))
            return -1;
#else
        return -1;
#endif
    }
    if (!async) return dv_sync(dev, where, d);
    if (checking(dev)) {
        if (dev->nfl == dev->capfl) {
            int cap = dev->capfl ? 2 * dev->capfl : 64;
            inflight *f = realloc(dev->fl, sizeof *f * (size_t)cap);
            if (!f) {
                ax_error(d, where, "out of host memory");
                return -1;
            }
            dev->fl = f;
            dev->capfl = cap;
        }
        dev->fl[dev->nfl++] = (inflight){host, bytes, dev->cur, to_host, ++dev->svc[dev->cur][dev->cur]};
    }
    return 1;
}

const char *rt_cuda_dev_name(const rt_cuda_dev *dev, char *buf, size_t cap) {
    snprintf(buf, cap, "%s (%s, %d SMs)", dev->name, dev->arch, dev->sm_count);
    return buf;
}

rt_cuda_counts rt_cuda_dev_counts(const rt_cuda_dev *dev) {
    rt_cuda_counts c = dev->counts;
    c.kernels = dev->nkfns;
    c.copies_in_flight = dev->nfl;
    return c;
}

int rt_cuda_dev_open(rt_cuda_dev **out, const rt_cuda_opts *o, ax_diag *d) {
    *out = NULL;
    rt_cuda_dev *dev = calloc(1, sizeof *dev);
    if (!dev) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    dev->dry = o->dry_run;
    dev->emu = o->dry_run ? o->emu : NULL;
    dev->emu_eager = env_set("AXO_EMU_EAGER") && strcmp(getenv("AXO_EMU_EAGER"), "0");
    dev->emu_drop_waits = env_set("AXO_TEST_EMU_DROP_WAITS") && strcmp(getenv("AXO_TEST_EMU_DROP_WAITS"), "0");
    dev->device = o->device;
    dev->kp = o->kernels;
    dev->sync_each = o->sync_each || (env_set("AXO_CUDA_SYNC") && strcmp(getenv("AXO_CUDA_SYNC"), "0"));
    dev->poison = o->poison || (env_set("AXO_CUDA_POISON") && strcmp(getenv("AXO_CUDA_POISON"), "0"));
    /* the schedule's streams: compute, communication, host<->device copies
     * (host nodes run on the calling thread) */
    dev->nstreams = o->one_stream || (env_set("AXO_CUDA_STREAMS") && !strcmp(getenv("AXO_CUDA_STREAMS"), "0")) ? 1 : 3;
    dev->graphs = !o->no_graphs && !(env_set("AXO_CUDA_GRAPHS") && !strcmp(getenv("AXO_CUDA_GRAPHS"), "0"));
    dev->sync_copies =
        o->sync_copies || (env_set("AXO_CUDA_SYNC_COPIES") && strcmp(getenv("AXO_CUDA_SYNC_COPIES"), "0"));
    dev->dry_pin_limit = o->dry_pin_limit;
    const char *arch = o->arch && o->arch[0] ? o->arch : env_set("AXO_GPU_ARCH");
    if (dev->dry) {
        snprintf(dev->name, sizeof dev->name, dev->emu ? "host emulator" : "dry run");
        snprintf(dev->arch, sizeof dev->arch, "%s", arch ? arch : "sm_90a");
        dev->sm_count = o->dry_sm_count > 0 ? o->dry_sm_count : 132;
        dev->smem_optin = 227 * 1024;
        dev->dry_total = o->dry_mem_bytes > 0 ? o->dry_mem_bytes : (int64_t)80 << 30;
        dev->dry_next = (uint64_t)1 << 40;
        dev->ws_bytes = WORKSPACE_BYTES;
        if (dv_alloc(dev, dev->ws_bytes, &dev->ws, "the cuBLASLt workspace", d) != 0) {
            rt_cuda_dev_close(dev);
            return -1;
        }
        *out = dev;
        return 0;
    }
#ifdef AXO_HAVE_CUDA
    char why[256];
    int n = rt_cuda_device_count(why, sizeof why);
    if (n < 1) {
        ax_error(d, "cuda", "no CUDA device: %s", why);
        free(dev);
        return -1;
    }
    if (o->device < 0 || o->device >= n) {
        ax_error(d, "cuda", "CUDA device %d does not exist (%d visible)", o->device, n);
        free(dev);
        return -1;
    }
    struct cudaDeviceProp prop;
    int optin = 0;
    if (ck(d, "cuda", "cudaSetDevice", cudaSetDevice(o->device)) ||
        ck(d, "cuda", "cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, o->device)) ||
        ck(d, "cuda", "cudaDeviceGetAttribute",
           cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, o->device))) {
        free(dev);
        return -1;
    }
    snprintf(dev->name, sizeof dev->name, "%.127s", prop.name);
    dev->sm_count = prop.multiProcessorCount;
    dev->smem_optin = optin;
    if (arch) snprintf(dev->arch, sizeof dev->arch, "%s", arch);
    else /* sm_90a: Hopper's own instructions (wgmma) need the arch-specific target */
        snprintf(dev->arch, sizeof dev->arch, "sm_%d%d%s", prop.major, prop.minor,
                 prop.major == 9 && prop.minor == 0 ? "a" : "");
    if (!dev->kp.module_of || !dev->kp.compile) {
        ax_error(d, "cuda", "no kernel provider: the caller must supply the NVRTC layer (rt_cuda_opts.kernels)");
        free(dev);
        return -1;
    }
    for (int s = 0; s < dev->nstreams; s++)
        if (ck(d, "cuda", "cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&dev->streams[s], cudaStreamNonBlocking))) {
            for (int k = 0; k < s; k++) cudaStreamDestroy(dev->streams[k]);
            free(dev);
            return -1;
        }
    dev->stream = dev->streams[0];
    if (ckb(d, "cuda", "cublasLtCreate", cublasLtCreate(&dev->lt))) {
        for (int s = 0; s < dev->nstreams; s++) cudaStreamDestroy(dev->streams[s]);
        free(dev);
        return -1;
    }
    dev->ws_bytes = WORKSPACE_BYTES;
    if (dv_alloc(dev, dev->ws_bytes, &dev->ws, "the cuBLASLt workspace", d) != 0) {
        rt_cuda_dev_close(dev);
        return -1;
    }
    *out = dev;
    return 0;
#else
    ax_error(d, "cuda", "axo was built without the CUDA toolkit: the CUDA executor is not available (use --executor cpu)");
    free(dev);
    return -1;
#endif
}

void rt_cuda_dev_close(rt_cuda_dev *dev) {
    if (!dev) return;
    dv_free(dev, dev->ws);
#ifdef AXO_HAVE_CUDA
    if (!dev->dry) {
        for (int i = 0; i < dev->nmods; i++) cudaLibraryUnload(dev->mods[i].lib);
        if (dev->lt) cublasLtDestroy(dev->lt);
        for (int s = 0; s < dev->nstreams; s++)
            if (dev->streams[s]) cudaStreamDestroy(dev->streams[s]);
    }
#endif
    free(dev->kfns);
    for (int i = 0; i < dev->ngen; i++) {
        free((char *)dev->gen[i]->ks.entry);
        free((char *)dev->gen[i]->ks.sig);
        free(dev->gen[i]->expr);
        free(dev->gen[i]->in);
        free(dev->gen[i]);
    }
    free(dev->gen);
    for (int s = 0; s < IR_NSTREAMS; s++) free(dev->eq[s]); /* flushed by the workspace's dv_free */
    free(dev->allocs);
    free(dev->hblocks); /* the states' blocks are freed with them, before */
    free(dev->fl);
    free(dev);
}

/* The table row of an entry point: the hand-written table's (static
 * strings: callers build entry names in stack buffers), else a generated
 * kernel's record. */
static const struct ksig *ksig_of(const rt_cuda_dev *dev, const char *entry) {
    for (size_t i = 0; i < AX_ARRAY_LEN(ksigs); i++)
        if (!strcmp(ksigs[i].entry, entry)) return &ksigs[i];
    for (int i = 0; i < dev->ngen; i++)
        if (!strcmp(dev->gen[i]->ks.entry, entry)) return &dev->gen[i]->ks;
    return NULL;
}

#ifdef AXO_HAVE_CUDA /* only the real kernel loader asks */
static const gsig *gsig_of(const rt_cuda_dev *dev, const struct ksig *ks) {
    for (int i = 0; i < dev->ngen; i++)
        if (&dev->gen[i]->ks == ks) return dev->gen[i];
    return NULL;
}
#endif

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* Registers the generated kernel of a fused expr (once per entry). */
static const struct ksig *gsig_add(rt_cuda_dev *dev, const char *entry, const char *expr, const ir_dtype *in, int nin) {
    const struct ksig *old = ksig_of(dev, entry);
    if (old) return old;
    if (dev->ngen == dev->capgen) {
        int cap = dev->capgen ? 2 * dev->capgen : 16;
        gsig **g = realloc(dev->gen, sizeof *g * (size_t)cap);
        if (!g) return NULL;
        dev->gen = g;
        dev->capgen = cap;
    }
    gsig *g = calloc(1, sizeof *g);
    char *sig = malloc((size_t)nin + 4);
    if (!g || !sig) {
        free(g);
        free(sig);
        return NULL;
    }
    memset(sig, 'p', (size_t)nin + 1);
    memcpy(sig + nin + 1, "ll", 3);
    g->ks.entry = xstrdup(entry);
    g->ks.sig = sig;
    g->expr = xstrdup(expr);
    g->in = malloc(sizeof *g->in * (size_t)nin);
    g->nin = nin;
    if (!g->ks.entry || !g->expr || !g->in) {
        free((char *)g->ks.entry), free(sig), free(g->expr), free(g->in), free(g);
        return NULL;
    }
    memcpy(g->in, in, sizeof *g->in * (size_t)nin);
    dev->gen[dev->ngen++] = g;
    return &g->ks;
}

/* The loaded kernel of table row ks (compiling and loading its source on
 * first use). Checks the CUBIN's parameter sizes against the signature. */
static kfn *kernel_get(rt_cuda_dev *dev, const struct ksig *ks, const char *where, ax_diag *d) {
    const char *entry = ks->entry, *sig = ks->sig; /* static strings: kept in kfns */
    for (int i = 0; i < dev->nkfns; i++)
        if (dev->kfns[i].entry == entry) return &dev->kfns[i];
    if (dev->nkfns == dev->capkfns) {
        int cap = dev->capkfns ? 2 * dev->capkfns : 32;
        kfn *k = realloc(dev->kfns, sizeof *k * (size_t)cap);
        if (!k) {
            ax_error(d, where, "out of host memory");
            return NULL;
        }
        dev->kfns = k;
        dev->capkfns = cap;
    }
    kfn *k = &dev->kfns[dev->nkfns];
    memset(k, 0, sizeof *k);
    k->entry = entry;
    k->sig = sig;
    if (dev->dry) {
        dev->nkfns++;
        return k;
    }
#ifdef AXO_HAVE_CUDA
    const gsig *gen = gsig_of(dev, ks);
    const char *mod = gen ? entry : dev->kp.module_of(dev->kp.ctx, entry); /* a generated kernel is its own module */
    if (!mod) {
        ax_error(d, where, "no kernel source defines the entry point %s", entry);
        return NULL;
    }
    if (gen && !dev->kp.compile_fused) {
        ax_error(d, where, "no generator for fused kernels: the caller must supply rt_kernel_provider.compile_fused");
        return NULL;
    }
    kmod *km = NULL;
    for (int i = 0; i < dev->nmods; i++)
        if (!strcmp(dev->mods[i].name, mod)) km = &dev->mods[i];
    if (!km) {
        if (dev->nmods == (int)AX_ARRAY_LEN(dev->mods)) {
            ax_error(d, where, "too many kernel sources");
            return NULL;
        }
        ax_buf cubin = {0};
        int crc = gen ? dev->kp.compile_fused(dev->kp.ctx, entry, gen->expr, gen->in, gen->nin, dev->arch, &cubin, d)
                      : dev->kp.compile(dev->kp.ctx, mod, dev->arch, &cubin, d);
        if (crc != 0) {
            ax_error(d, where, "cannot build kernel source '%s' for %s", mod, dev->arch);
            ax_buf_free(&cubin);
            return NULL;
        }
        km = &dev->mods[dev->nmods];
        km->name = mod;
        cudaError_t e = cudaLibraryLoadData(&km->lib, cubin.data, NULL, NULL, 0, NULL, NULL, 0);
        ax_buf_free(&cubin);
        if (ck(d, where, "cudaLibraryLoadData", e)) {
            ax_error(d, where, "kernel source '%s' (built for %s) does not load on %s", mod, dev->arch, dev->name);
            return NULL;
        }
        dev->nmods++;
    }
    if (ck(d, where, "cudaLibraryGetKernel", cudaLibraryGetKernel(&k->k, km->lib, entry))) return NULL;
    /* the kernel's parameters, as compiled, against what the launches pass */
    int np = (int)strlen(sig);
    for (int i = 0; i <= np; i++) {
        size_t off = 0, size = 0;
        cudaError_t e = cudaFuncGetParamInfo((const void *)k->k, (size_t)i, &off, &size);
        if (i == np) {
            if (e == cudaSuccess) {
                ax_error(d, where, "kernel %s takes more than the %d parameters the executor passes (%s)", entry, np, sig);
                return NULL;
            }
            cudaGetLastError(); /* the expected "invalid value" for one past the end */
            break;
        }
        if (ck(d, where, "cudaFuncGetParamInfo", e)) return NULL;
        size_t want = strchr("pld", sig[i]) ? 8 : 4;
        if (size != want) {
            ax_error(d, where, "kernel %s: parameter %d is %zu bytes in the CUBIN but the executor passes '%c' (%zu bytes)",
                     entry, i, size, sig[i], want);
            return NULL;
        }
    }
#endif
    dev->nkfns++;
    return k;
}

/* ==== execution context ========================================================= */
/* While checking (dry runs, AXO_CUDA_POISON), every device pointer a node
 * hands to a kernel, copy or GEMM must lie inside one of the node's regions:
 * its operands' and results' buffers (the arena slot or the global, exact
 * bytes), the scratch it took, its error slot, its constants. */
typedef struct region {
    uint64_t p;
    int64_t bytes;
} region;
#define MAXREG (IR_MAX_IN + 32) /* a fused node: its operands, its result, scratch */

typedef struct gx {
    rt_cuda_prog *pr;
    rt_cuda_state *st;
    rt_cuda_dev *dev;
    const ir_node *n;
    int ni;
    int plan; /* 1 while preparing: no device work */
    rt_input_fn inputs;
    void *ctx;
    ax_diag *d;
    int64_t scr_off; /* scratch taken by this node so far */
    int stage_only;  /* input nodes only fill their host staging (a graph replays the copies) */
    uint32_t gemm_align; /* > 0: a GEMM plan serves operands at offsets with only this alignment (chunks) */
    region reg[MAXREG];
    int nreg;
    char where[160];
} gx;

static void reg_add(gx *x, uint64_t p, int64_t bytes) {
    if (!x->plan && checking(x->dev) && x->nreg < MAXREG) x->reg[x->nreg++] = (region){p, bytes};
}

/* 1 if [p, p + bytes) is inside one region of the node (always 1 when not checking). */
static int arg_ok(gx *x, uint64_t p, int64_t bytes) {
    if (x->plan || !checking(x->dev)) return 1;
    for (int i = 0; i < x->nreg; i++)
        if (p >= x->reg[i].p && bytes >= 0 && p - x->reg[i].p + (uint64_t)bytes <= (uint64_t)x->reg[i].bytes) return 1;
    return 0;
}

static int bad_arg(gx *x, const char *what, uint64_t p, int64_t bytes) {
    ax_error(x->d, x->where,
             "internal error: %s touches [0x%llx, +%lld bytes), which is not inside one of the node's operands, "
             "results or scratch",
             what, (unsigned long long)p, (long long)bytes);
    return -1;
}

/* Copies and memsets issued by a node, checked against its regions. */
static int x_copy(gx *x, uint64_t dst, uint64_t src, int64_t bytes) {
    if (x->plan || bytes <= 0) return 0;
    if (!arg_ok(x, dst, bytes)) return bad_arg(x, "copy destination", dst, bytes);
    if (!arg_ok(x, src, bytes)) return bad_arg(x, "copy source", src, bytes);
    return dv_copy(x->dev, dst, src, bytes, x->where, x->d);
}
static int x_memset(gx *x, uint64_t p, int byte, int64_t bytes) {
    if (x->plan || bytes <= 0) return 0;
    if (!arg_ok(x, p, bytes)) return bad_arg(x, "memset", p, bytes);
    return dv_memset(x->dev, p, byte, bytes, x->where, x->d);
}

typedef struct kargs {
    int n;
    char kind[KMAX + 1];
    union kv {
        uint64_t p;
        int64_t l;
        int32_t i;
        float f;
        double d;
    } v[KMAX];
    int64_t ext[KMAX]; /* bytes a pointer argument may touch (0: NULL allowed) */
} kargs;

static void ka_push(kargs *a, char kind) {
    if (a->n < KMAX) {
        a->kind[a->n] = kind;
        a->kind[a->n + 1] = 0;
        a->n++;
    } else {
        a->kind[KMAX] = '!'; /* overflow: reported by launch() as a signature mismatch */
    }
}
static void ka_p(kargs *a, uint64_t p, int64_t ext) {
    int i = a->n;
    ka_push(a, 'p');
    if (i < KMAX) a->v[i].p = p, a->ext[i] = ext;
}
static void ka_l(kargs *a, int64_t v) {
    int i = a->n;
    ka_push(a, 'l');
    if (i < KMAX) a->v[i].l = v, a->ext[i] = 0;
}
static void ka_i(kargs *a, int64_t v) {
    int i = a->n;
    ka_push(a, 'i');
    if (i < KMAX) a->v[i].i = (int32_t)v, a->ext[i] = 0;
}
static void ka_f(kargs *a, double v) {
    int i = a->n;
    ka_push(a, 'f');
    if (i < KMAX) a->v[i].f = (float)v, a->ext[i] = 0;
}
static void ka_d(kargs *a, double v) {
    int i = a->n;
    ka_push(a, 'd');
    if (i < KMAX) a->v[i].d = v, a->ext[i] = 0;
}

static int fits_int(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

/* Launches entry with grid (gx, gy, gz), block (bx, by) and smem bytes of
 * dynamic shared memory; checks everything it can first. */
static int launch(gx *x, const char *entry, int64_t gx_, int64_t gy, int64_t gz, int bx, int by, int64_t smem,
                  kargs *a) {
    rt_cuda_dev *dev = x->dev;
    const struct ksig *ks = ksig_of(dev, entry);
    if (!ks) {
        ax_error(x->d, x->where, "internal error: no signature recorded for kernel %s", entry);
        return -1;
    }
    const char *sig = ks->sig;
    if (strcmp(sig, a->kind) != 0) {
        ax_error(x->d, x->where, "internal error: launch of %s passes (%s) but the kernel takes (%s)", entry, a->kind,
                 sig);
        return -1;
    }
    if (gx_ < 1 || gx_ > 0x7fffffff || gy < 1 || gy > 65535 || gz < 1 || gz > 65535 || bx < 1 || by < 1 ||
        bx * by > 1024 || smem < 0 || smem > dev->smem_optin) {
        ax_error(x->d, x->where,
                 "cannot launch %s: grid (%lld, %lld, %lld), block (%d, %d), %lld bytes of shared memory are outside "
                 "the device's limits (grid.y/z <= 65535, 1024 threads, %lld bytes of shared memory)",
                 entry, (long long)gx_, (long long)gy, (long long)gz, bx, by, (long long)smem,
                 (long long)dev->smem_optin);
        return -1;
    }
    kfn *k = kernel_get(dev, ks, x->where, x->d);
    if (!k) return -1;
    if (x->plan) return 0;
    if (checking(dev))
        for (int i = 0; i < a->n; i++) {
            if (a->kind[i] != 'p') continue;
            if (a->v[i].p == 0 && a->ext[i] == 0) continue; /* NULL where the kernel allows it */
            if (!arg_ok(x, a->v[i].p, a->ext[i] > 0 ? a->ext[i] : 1)) {
                char what[96];
                snprintf(what, sizeof what, "%s argument %d", entry, i);
                return bad_arg(x, what, a->v[i].p, a->ext[i]);
            }
        }
    dev->counts.launches++;
    if (smem > dev->counts.max_smem) dev->counts.max_smem = smem;
    if (dev->dry && dev->emu) {
        const gsig *gen = gsig_of(dev, ks);
        eop o = {.kind = EOP_LAUNCH, .entry = ks->entry, .expr = gen ? gen->expr : NULL, .in = gen ? gen->in : NULL,
                 .nin = gen ? gen->nin : 0, .nargs = a->n, .g = {(unsigned)gx_, (unsigned)gy, (unsigned)gz},
                 .b = {(unsigned)bx, (unsigned)by}, .smem = smem};
        _Static_assert(sizeof(eval) == sizeof a->v[0], "kernel argument slots");
        memcpy(o.v, a->v, sizeof(eval) * (size_t)a->n);
        snprintf(o.where, sizeof o.where, "%s", x->where);
        if (eq_push(dev, &o, x->d)) return -1;
        return dev->sync_each ? eq_flush(dev, dev->cur, UINT64_MAX, x->d) : 0;
    }
    if (dev->dry) return 0;
#ifdef AXO_HAVE_CUDA
    if (smem > 48 * 1024 - 1024 && smem > k->smem_set) { /* static smem counts too: raise early */
        if (ck(x->d, x->where, "cudaFuncSetAttribute (max dynamic shared memory)",
               cudaFuncSetAttribute((const void *)k->k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)))
            return -1;
        k->smem_set = smem;
    }
    void *argv[KMAX];
    for (int i = 0; i < a->n; i++) argv[i] = &a->v[i];
    dim3 g = {(unsigned)gx_, (unsigned)gy, (unsigned)gz}, b = {(unsigned)bx, (unsigned)by, 1};
    char what[128];
    snprintf(what, sizeof what, "cudaLaunchKernel (%s)", entry);
    if (ck(x->d, x->where, what, cudaLaunchKernel((const void *)k->k, g, b, argv, (size_t)smem, dev->stream)))
        return -1;
    if (dev->sync_each) {
        snprintf(what, sizeof what, "kernel %s", entry);
        return ck(x->d, x->where, what, cudaStreamSynchronize(dev->stream));
    }
    return 0;
#else
    return -1;
#endif
}

/* ---- operand helpers ---------------------------------------------------------------- */
static const ir_type *ty(gx *x, int32_t r) { return ir_ref_type(x->pr->m, x->pr->p, r); }
static int64_t numel(gx *x, int32_t r) { return rt_local_numel(x->pr->m, ty(x, r)); }
static int64_t nbytes(gx *x, int32_t r) { return ir_local_bytes(x->pr->m, ty(x, r)); }
static ir_dtype dt(gx *x, int32_t r) { return ty(x, r)->dtype; }
static int64_t lastdim(gx *x, int32_t r) {
    const ir_type *t = ty(x, r);
    return t->rank ? t->dims[t->rank - 1] : 1;
}
static int64_t esz(ir_dtype t) { return t == IR_BF16 ? 2 : 4; }
/* Device bytes of n elements of any dtype (nf4 and u8 packed). */
static int64_t bytes_of(ir_dtype t, int64_t n) { return (n * ir_dtype_bits(t) + 7) / 8; }
static int on_host(gx *x, int32_t r) { return ir_ref_on_host(x->pr->m, x->pr->p, r); }
static uint64_t ptr(gx *x, int32_t r) {
    if (IR_REF_IS_GLOBAL(r)) return x->st->globals[IR_REF_GLOBAL(r)];
    return x->st->arena + (uint64_t)x->pr->offsets[r];
}
#define IN(i) (x->n->in[i])
#define OUT(i) (x->n->out[i])
#define AI(k, dflt) ir_attr_int(x->n->attrs, x->n->nattrs, k, dflt)
#define AF(k, dflt) ir_attr_float(x->n->attrs, x->n->nattrs, k, dflt)
#define AS(k, dflt) ir_attr_str(x->n->attrs, x->n->nattrs, k, dflt)

/* "axo_add" + dtype -> "axo_add_bf16" */
static const char *ename(char *buf, size_t cap, const char *base, ir_dtype t) {
    snprintf(buf, cap, "%s_%s", base, t == IR_BF16 ? "bf16" : "f32");
    return buf;
}

static int unsupported(gx *x, const char *fmt, ...) AX_PRINTF(2, 3);
static int unsupported(gx *x, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ax_error(x->d, x->where, "not supported by the CUDA executor: %s (use --executor cpu)", msg);
    return -1;
}

/* f32 or bf16 (what the float kernels are instantiated for). */
static int need_fp(gx *x, int32_t r, const char *what) {
    ir_dtype t = dt(x, r);
    if (t == IR_F32 || t == IR_BF16) return 0;
    return unsupported(x, "%s of dtype %s (f32 and bf16 only)", what, ir_dtype_name(t));
}

/* Grid for a grid-stride 1-D kernel over n items, per items per block. */
static int64_t blocks(gx *x, int64_t n, int64_t per) {
    int64_t b = (n + per - 1) / per, cap = 8 * (int64_t)x->dev->sm_count;
    if (b > cap) b = cap;
    return b < 1 ? 1 : b;
}
static int64_t vec(ir_dtype t) { return t == IR_BF16 ? 8 : 4; } /* elements per 16-byte vector */

/* Per-node scratch (reused by the next node). */
static uint64_t scratch(gx *x, int64_t bytes) {
    int64_t off = x->scr_off;
    int s = x->dev->cur;
    x->scr_off += ALIGN(bytes > 0 ? bytes : 1);
    if (x->plan) {
        if (x->scr_off > x->pr->scratch_need[s]) x->pr->scratch_need[s] = x->scr_off;
        return 0;
    }
    off += x->pr->scratch_base[s]; /* each stream its own part: their nodes may run at once */
    reg_add(x, x->st->scratch + (uint64_t)off, bytes);
    return x->st->scratch + (uint64_t)off;
}

static uint64_t flag_ptr(gx *x) {
    if (x->plan) {
        if (x->pr->flag_slot[x->ni] < 0) x->pr->flag_slot[x->ni] = x->pr->nflags++;
        return 0;
    }
    uint64_t p = x->pr->flags_dev + 4 * (uint64_t)x->pr->flag_slot[x->ni];
    reg_add(x, p, 4);
    return p;
}

/* ---- ops --------------------------------------------------------------------------------- */
static int g_input(gx *x) {
    const ir_type *t = ty(x, OUT(0));
    if (t->dtype != IR_F32 && t->dtype != IR_BF16 && t->dtype != IR_I32)
        return unsupported(x, "input of dtype %s", ir_dtype_name(t->dtype));
    int64_t bytes = nbytes(x, OUT(0));
    if (x->plan) {
        x->pr->stage_off[x->ni] = x->pr->stage_bytes;
        x->pr->stage_bytes += ALIGN(bytes);
        return 0;
    }
    const char *name = AS("name", "");
    const rt_buf *b = x->inputs ? x->inputs(x->ctx, name) : NULL;
    if (!b) {
        ax_error(x->d, x->where, "the runtime provides no input named \"%s\"", name);
        return -1;
    }
    int64_t n = numel(x, OUT(0));
    if (b->numel != ir_type_numel(t) || b->numel != n || (b->type.dtype == IR_I32) != (t->dtype == IR_I32)) {
        char s1[96], s2[96];
        ax_error(x->d, x->where, "input \"%s\": expected %s, the runtime gave %s", name, ir_type_str(x->pr->m, t, s1, sizeof s1),
                 ir_type_str(x->pr->m, &b->type, s2, sizeof s2));
        return -1;
    }
    char *stage = (char *)x->pr->stage_host + x->pr->stage_off[x->ni];
    if (t->dtype == IR_BF16) {
        uint16_t *h = (uint16_t *)stage;
        for (int64_t i = 0; i < n; i++) h[i] = ax_f32_to_bf16(rt_f(b)[i]);
    } else {
        memcpy(stage, b->data, (size_t)bytes);
    }
    if (x->stage_only) return 0;
    return dv_h2d(x->dev, ptr(x, OUT(0)), stage, bytes, x->where, x->d);
}

static int fill_bits(gx *x, uint64_t p, ir_dtype t, uint32_t bits, int64_t n) {
    kargs a = {0};
    ka_p(&a, p, n * esz(t));
    ka_i(&a, (int32_t)bits);
    ka_l(&a, n);
    return launch(x, t == IR_BF16 ? "axo_fill_u16" : "axo_fill_u32", blocks(x, n, 256), 1, 1, 256, 1, 0, &a);
}

static int g_fill(gx *x) {
    ir_dtype t = dt(x, OUT(0));
    if (t != IR_F32 && t != IR_BF16 && t != IR_I32) return unsupported(x, "fill of dtype %s", ir_dtype_name(t));
    float v = (float)AF("value", 0);
    uint32_t bits;
    if (t == IR_I32) {
        int32_t iv = (int32_t)v; /* as x_fill: (int32_t)(float)value */
        memcpy(&bits, &iv, 4);
    } else if (t == IR_BF16) {
        bits = ax_f32_to_bf16(v);
    } else {
        memcpy(&bits, &v, 4);
    }
    return fill_bits(x, ptr(x, OUT(0)), t, bits, numel(x, OUT(0)));
}

static int g_embedding(gx *x) {
    if (need_fp(x, IN(0), "embedding table")) return -1;
    ir_dtype t = dt(x, IN(0));
    const ir_type *tt = ty(x, IN(0));
    int64_t T = numel(x, IN(1)), V = tt->dims[0], H = tt->dims[1];
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), V * H * esz(t));
    ka_p(&a, ptr(x, IN(1)), T * 4);
    ka_p(&a, ptr(x, OUT(0)), T * H * esz(t));
    ka_l(&a, T);
    ka_l(&a, V);
    ka_l(&a, H);
    ka_p(&a, flag_ptr(x), 4);
    return launch(x, ename(e, sizeof e, "axo_embedding_fwd", t), blocks(x, T, 1), 1, 1, 256, 1, 0, &a);
}

static int convert_launch(gx *x, uint64_t src, ir_dtype from, uint64_t dst, ir_dtype to, int64_t n) {
    if (from == to) return x_copy(x, dst, src, n * esz(to));
    kargs a = {0};
    ka_p(&a, src, n * esz(from));
    ka_p(&a, dst, n * esz(to));
    ka_l(&a, n);
    return launch(x, from == IR_F32 ? "axo_convert_f32_bf16" : "axo_convert_bf16_f32", blocks(x, n, 256 * 8), 1, 1, 256,
                  1, 0, &a);
}

static int g_embedding_bwd(gx *x) {
    if (need_fp(x, IN(1), "embedding gradient")) return -1;
    ir_dtype t = dt(x, IN(1)), to = dt(x, OUT(0));
    const ir_type *ot = ty(x, OUT(0));
    int64_t T = numel(x, IN(0)), V = ot->dims[0], H = ot->dims[1];
    /* the kernel accumulates into an fp32 table: straight into an f32 result,
     * else segment by segment of vocabulary rows into a bounded fp32 scratch,
     * each rounded once into the result (as the CPU's float sums) */
    int64_t seg = V;
    if (to != IR_F32) {
        seg = EMB_SEG_BYTES / (H > 0 ? 4 * H : 4) / 64 * 64;
        if (seg < 64) seg = 64;
        if (seg > V) seg = V;
    }
    uint64_t dtab = to == IR_F32 ? ptr(x, OUT(0)) : scratch(x, seg * H * 4), flag = flag_ptr(x);
    char e[64];
    ename(e, sizeof e, "axo_embedding_bwd", t);
    for (int64_t vlo = 0; vlo < V || vlo == 0; vlo += seg) {
        int64_t vhi = vlo + seg < V ? vlo + seg : V;
        kargs a = {0};
        ka_p(&a, ptr(x, IN(0)), T * 4);
        ka_p(&a, ptr(x, IN(1)), T * H * esz(t));
        ka_p(&a, dtab, (vhi - vlo) * H * 4);
        ka_l(&a, T);
        ka_l(&a, vlo);
        ka_l(&a, vhi);
        ka_l(&a, V);
        ka_l(&a, H);
        ka_i(&a, 0);
        ka_p(&a, flag, 4);
        if (launch(x, e, (vhi - vlo + 63) / 64 > 0 ? (vhi - vlo + 63) / 64 : 1, 1, 1, 256, 1, 0, &a)) return -1;
        if (to != IR_F32 &&
            convert_launch(x, dtab, IR_F32, ptr(x, OUT(0)) + (uint64_t)(vlo * H * esz(to)), to, (vhi - vlo) * H))
            return -1;
        if (x->plan || vhi >= V) break; /* one segment plans them all */
    }
    return 0;
}

static int g_rmsnorm(gx *x) {
    if (need_fp(x, IN(0), "rmsnorm input")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(1)) != t) return unsupported(x, "rmsnorm with a %s weight on %s input", ir_dtype_name(dt(x, IN(1))), ir_dtype_name(t));
    int64_t H = lastdim(x, IN(0)), R = numel(x, IN(0)) / (H ? H : 1);
    if (R < 1 || H < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), R * H * esz(t));
    ka_p(&a, ptr(x, IN(1)), H * esz(t));
    ka_p(&a, ptr(x, OUT(0)), R * H * esz(t));
    ka_p(&a, 0, 0); /* rstd not kept */
    ka_l(&a, H);
    ka_f(&a, AF("eps", 1e-6));
    ka_f(&a, AF("offset", 0)); /* Gemma's 1 + w */
    return launch(x, ename(e, sizeof e, "axo_rmsnorm_fwd", t), R, 1, 1, 256, 1, 0, &a);
}

static int g_rmsnorm_bwd(gx *x) {
    if (need_fp(x, IN(0), "rmsnorm input")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(1)) != t || dt(x, IN(2)) != t)
        return unsupported(x, "rmsnorm_bwd with mixed dtypes (x %s, w %s, dy %s)", ir_dtype_name(t), ir_dtype_name(dt(x, IN(1))),
                           ir_dtype_name(dt(x, IN(2))));
    int64_t H = lastdim(x, IN(0)), R = numel(x, IN(0)) / (H ? H : 1);
    if (H < 1) return 0;
    int64_t P = R < 2 * (int64_t)x->dev->sm_count ? R : 2 * (int64_t)x->dev->sm_count;
    if (P < 1) P = 1;
    uint64_t part = scratch(x, P * H * 4);
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), R * H * esz(t));
    ka_p(&a, ptr(x, IN(1)), H * esz(t));
    ka_p(&a, ptr(x, IN(2)), R * H * esz(t));
    ka_p(&a, ptr(x, OUT(0)), R * H * esz(t));
    ka_p(&a, part, P * H * 4);
    ka_l(&a, R);
    ka_l(&a, H);
    ka_f(&a, AF("eps", 1e-6));
    ka_f(&a, AF("offset", 0));
    if (launch(x, ename(e, sizeof e, "axo_rmsnorm_bwd", t), P, 1, 1, 256, 1, H * 4, &a)) return -1;
    kargs b = {0};
    ka_p(&b, part, P * H * 4);
    ka_i(&b, P);
    ka_l(&b, H);
    ka_p(&b, ptr(x, OUT(1)), H * esz(t));
    ka_i(&b, 0);
    return launch(x, ename(e, sizeof e, "axo_rmsnorm_dw_reduce", t), (H + 255) / 256, 1, 1, 256, 1, 0, &b);
}

/* ---- matmul through cuBLASLt ------------------------------------------------------------ */
typedef struct gemm_plan {
    int64_t M, N, K;
    int ta, tb;
    ir_dtype t, tc;         /* operands' dtype, result's dtype (f32 logits of bf16 operands) */
    uint32_t align;         /* the operands' common pointer alignment (bytes, <= 256; 0: 256) */
    struct gemm_plan *next; /* a node with several GEMMs (linear_cross_entropy) */
#ifdef AXO_HAVE_CUDA
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
#endif
} gemm_plan;

static void gemm_free(gemm_plan *g) {
    if (!g) return;
    gemm_free(g->next);
#ifdef AXO_HAVE_CUDA
    if (g->lc) cublasLtMatrixLayoutDestroy(g->lc);
    if (g->lb) cublasLtMatrixLayoutDestroy(g->lb);
    if (g->la) cublasLtMatrixLayoutDestroy(g->la);
    if (g->op) cublasLtMatmulDescDestroy(g->op);
#endif
    free(g);
}

/* Row-major C[M,N] = op(A) op(B) (cpu_kernels.h's rule: A is [M,K] or, with
 * ta, [K,M]; B is [K,N] or, with tb, [N,K]) as cuBLASLt's column-major
 * product: a row-major X[r,c] is the column-major X^T, so C^T[N,M] =
 * op(B)^T op(A)^T with cuBLASLt's "A" = our B (stored N x K column-major,
 * ld N, when tb = 0: no transpose; stored K x N, ld K, when tb = 1:
 * transpose) and its "B" = our A (K x M, ld K, when ta = 0; M x K, ld M,
 * transposed, when ta = 1); D = C, N x M, ld N. fp32 compute, no TF32. */
static int gemm_prepare(gx *x, gemm_plan *g) {
#ifdef AXO_HAVE_CUDA
    if (x->dev->dry) return 0;
    const char *w = x->where;
    ax_diag *d = x->d;
    cudaDataType_t ct = g->t == IR_BF16 ? CUDA_R_16BF : CUDA_R_32F, cc = g->tc == IR_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasOperation_t opa = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint64_t M = (uint64_t)g->M, N = (uint64_t)g->N, K = (uint64_t)g->K;
    if (ckb(d, w, "cublasLtMatmulDescCreate", cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        ckb(d, w, "cublasLtMatmulDescSetAttribute (TRANSA)",
            cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa)) ||
        ckb(d, w, "cublasLtMatmulDescSetAttribute (TRANSB)",
            cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb)) ||
        ckb(d, w, "cublasLtMatrixLayoutCreate (B operand)",
            cublasLtMatrixLayoutCreate(&g->la, ct, g->tb ? K : N, g->tb ? N : K, (int64_t)(g->tb ? K : N))) ||
        ckb(d, w, "cublasLtMatrixLayoutCreate (A operand)",
            cublasLtMatrixLayoutCreate(&g->lb, ct, g->ta ? M : K, g->ta ? K : M, (int64_t)(g->ta ? M : K))) ||
        ckb(d, w, "cublasLtMatrixLayoutCreate (result)", cublasLtMatrixLayoutCreate(&g->lc, cc, N, M, (int64_t)N)))
        return -1;
    cublasLtMatmulPreference_t pref = NULL;
    uint64_t ws = (uint64_t)x->dev->ws_bytes;
    uint32_t al = g->align ? g->align : 256; /* an algorithm must not assume more than the pointers have */
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    memset(&res, 0, sizeof res);
    int rc = ckb(d, w, "cublasLtMatmulPreferenceCreate", cublasLtMatmulPreferenceCreate(&pref)) ||
             ckb(d, w, "cublasLtMatmulPreferenceSetAttribute",
                 cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)) ||
             ckb(d, w, "cublasLtMatmulPreferenceSetAttribute (alignment)",
                 cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al)) ||
             ckb(d, w, "cublasLtMatmulPreferenceSetAttribute (alignment)",
                 cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al)) ||
             ckb(d, w, "cublasLtMatmulPreferenceSetAttribute (alignment)",
                 cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al)) ||
             ckb(d, w, "cublasLtMatmulPreferenceSetAttribute (alignment)",
                 cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al)) ||
             ckb(d, w, "cublasLtMatmulAlgoGetHeuristic",
                 cublasLtMatmulAlgoGetHeuristic(x->dev->lt, g->op, g->la, g->lb, g->lc, g->lc, pref, 1, &res, &nres));
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (rc) return -1;
    if (nres < 1) {
        ax_error(d, w, "cuBLASLt has no algorithm for this %s matmul (M %lld, N %lld, K %lld, ta %d, tb %d)",
                 ir_dtype_name(g->t), (long long)g->M, (long long)g->N, (long long)g->K, g->ta, g->tb);
        return -1;
    }
    g->algo = res.algo;
#endif
    (void)x, (void)g;
    return 0;
}

static int gemm_k(gx *x, int k, int64_t M, int64_t N, int64_t K, int ta, int tb, ir_dtype t, ir_dtype tc, uint64_t A,
                  uint64_t B, uint64_t C, int accumulate);

static int g_matmul(gx *x) {
    if (need_fp(x, IN(0), "matmul operand")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(1)) != t || dt(x, OUT(0)) != t) return unsupported(x, "matmul with mixed dtypes");
    int ta = (int)AI("ta", 0), tb = (int)AI("tb", 0);
    int64_t na = numel(x, IN(0)), nb = numel(x, IN(1)), la = lastdim(x, IN(0)), lb = lastdim(x, IN(1));
    int64_t leada = la ? na / la : 0, leadb = lb ? nb / lb : 0;
    int64_t K = ta ? leada : la, M = ta ? la : leada, N = tb ? leadb : lb;
    uint64_t C = ptr(x, OUT(0));
    if (M < 1 || N < 1) return 0; /* nothing for cuBLASLt to do */
    if (K < 1) return x->plan ? 0 : x_memset(x, C, 0, M * N * esz(t));
    return gemm_k(x, 0, M, N, K, ta, tb, t, t, ptr(x, IN(0)), ptr(x, IN(1)), C, 0);
}

static int g_bias_add(gx *x) {
    if (need_fp(x, IN(0), "bias_add input")) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t N = lastdim(x, IN(0)), n = numel(x, IN(0)), R = N ? n / N : 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), N * esz(t));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, R);
    ka_l(&a, N);
    return launch(x, ename(e, sizeof e, "axo_bias_add", t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}

/* Column sums of an [R, N] tensor in two passes: blocks of 32 columns x P
 * row groups write partial sums, a second kernel adds them. P: enough row
 * groups to fill the SMs twice over, at most 65535 (the grid's y limit). */
static int64_t colsum_parts(const gx *x, int64_t R, int64_t cols) {
    int64_t P = (R + 7) / 8, lim = 2 * (int64_t)x->dev->sm_count * 8 / cols;
    if (lim < 1) lim = 1;
    if (P > lim) P = lim;
    if (P > 65535) P = 65535;
    return P < 1 ? 1 : P;
}

static int g_bias_grad(gx *x) {
    if (need_fp(x, IN(0), "bias_grad input")) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t N = lastdim(x, IN(0)), n = numel(x, IN(0)), R = N ? n / N : 0;
    if (N < 1) return 0;
    int64_t cols = (N + 31) / 32, P = colsum_parts(x, R, cols);
    uint64_t part = scratch(x, P * N * 4);
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, part, P * N * 4);
    ka_l(&a, R);
    ka_l(&a, N);
    if (launch(x, ename(e, sizeof e, "axo_bias_grad_partial", t), cols, P, 1, 32, 8, 0, &a)) return -1;
    kargs b = {0};
    ka_p(&b, part, P * N * 4);
    ka_i(&b, P);
    ka_l(&b, N);
    ka_p(&b, ptr(x, OUT(0)), N * esz(t));
    ka_i(&b, 0);
    return launch(x, ename(e, sizeof e, "axo_bias_grad_reduce", t), (N + 255) / 256, 1, 1, 256, 1, 0, &b);
}

/* y = f(a, b) for add, mul, swiglu (same dtype everywhere). */
static int binary(gx *x, const char *base) {
    if (need_fp(x, OUT(0), "result")) return -1;
    ir_dtype t = dt(x, OUT(0));
    if (dt(x, IN(0)) != t || dt(x, IN(1)) != t) return unsupported(x, "%s with mixed dtypes", ir_ops[x->n->op].name);
    int64_t n = numel(x, OUT(0));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), n * esz(t));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    return launch(x, ename(e, sizeof e, base, t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}
static int g_add(gx *x) { return binary(x, "axo_add"); }
static int g_mul(gx *x) { return binary(x, "axo_mul"); }
static int g_swiglu(gx *x) { return binary(x, "axo_swiglu_fwd"); }
static int g_geglu(gx *x) { return binary(x, "axo_geglu_fwd"); }
static int g_sigmoid_bwd(gx *x) { return binary(x, "axo_sigmoid_bwd"); } /* (y, dy) */

/* sigmoid: 1 / (1 + e^-x) in fp32, rounded once (the CPU's x_sigmoid) */
static int g_sigmoid(gx *x) {
    if (need_fp(x, OUT(0), "result")) return -1;
    ir_dtype t = dt(x, OUT(0));
    if (dt(x, IN(0)) != t) return unsupported(x, "sigmoid with mixed dtypes");
    int64_t n = numel(x, OUT(0));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    return launch(x, ename(e, sizeof e, "axo_sigmoid", t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}

static int g_scale(gx *x) {
    if (need_fp(x, OUT(0), "result")) return -1;
    ir_dtype t = dt(x, OUT(0));
    int64_t n = numel(x, OUT(0));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_f(&a, AF("alpha", 1)); /* (REAL)alpha, as ck_scale_f32 */
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    return launch(x, ename(e, sizeof e, "axo_scale", t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}

static int g_convert(gx *x) {
    if (need_fp(x, IN(0), "convert input") || need_fp(x, OUT(0), "convert result")) return -1;
    return convert_launch(x, ptr(x, IN(0)), dt(x, IN(0)), ptr(x, OUT(0)), dt(x, OUT(0)), numel(x, OUT(0)));
}

static int g_reshape(gx *x) {
    return x_copy(x, ptr(x, OUT(0)), ptr(x, IN(0)), nbytes(x, OUT(0)));
}

static int g_rope(gx *x) {
    if (need_fp(x, IN(0), "rope input")) return -1;
    ir_dtype t = dt(x, IN(0));
    const int64_t *dm = ty(x, IN(0))->dims;
    int64_t B = dm[0], S = dm[1], nh = dm[2], hd = dm[3], half = hd / 2;
    if (!fits_int(nh) || !fits_int(hd)) return unsupported(x, "rope of %lld heads x %lld", (long long)nh, (long long)hd);
    /* longrope with the micro-batch's max position: both tables, short then long (the kernel picks one) */
    const int sel = x->n->nin > 2;
    const int64_t long_from = AI("original_max", 8192);
    if (sel && !fits_int(long_from)) return unsupported(x, "rope original_max %lld", (long long)long_from);
    int64_t nrot = half;
    float mscale = 1;
    if (x->plan) { /* inverse frequencies: on the host, exactly as the CPU executor */
        float *inv = calloc((size_t)(2 * half + 1), sizeof(float));
        if (!inv) {
            ax_error(x->d, x->where, "out of host memory");
            return -1;
        }
        int rc = rt_rope_inv_freq(x->n, hd, 0, inv, &nrot, &mscale, x->d, x->where);
        if (rc == 0 && sel) rc = rt_rope_inv_freq(x->n, hd, 1, inv + nrot, &nrot, &mscale, x->d, x->where);
        if (rc != 0) {
            free(inv);
            return -1;
        }
        x->pr->const_off[x->ni] = (int64_t)x->pr->consts.len;
        ax_buf_append(&x->pr->consts, inv, sizeof(float) * (size_t)(nrot * (sel ? 2 : 1)));
        while (x->pr->consts.len % IR_ARENA_ALIGN) ax_buf_u8(&x->pr->consts, 0);
        free(inv);
    } else {
        nrot = AI("rotary_dim", hd) / 2;
        mscale = (float)AF("attention_factor", 1);
    }
    uint64_t inv = x->plan ? 0 : x->pr->consts_dev + (uint64_t)x->pr->const_off[x->ni];
    reg_add(x, inv, nrot * (sel ? 2 : 1) * 4);
    int64_t n = B * S * nh * hd;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), B * S * 4);
    ka_p(&a, inv, nrot * (sel ? 2 : 1) * 4);
    ka_p(&a, sel ? ptr(x, IN(2)) : 0, sel ? 4 : 0);
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, B * S);
    ka_i(&a, nh);
    ka_i(&a, hd);
    ka_i(&a, nrot);
    ka_i(&a, sel ? long_from : 0);
    ka_f(&a, mscale);
    ka_i(&a, AI("inverse", 0) != 0);
    ka_d(&a, AF("qscale_beta", 0));
    ka_l(&a, AI("qscale_max", 0));
    ka_i(&a, AI("interleave", 0) != 0); /* GLM's pairs (2i, 2i + 1) */
    return launch(x, ename(e, sizeof e, "axo_rope", t), blocks(x, B * S * half, 256), 1, 1, 256, 1, 0, &a);
}

/* ---- mixture of experts (codegen/kernels/moe.cuh; the math of ck_moe_*) ------------------------- */
static int g_moe_route(gx *x, int bwd) {
    if (need_fp(x, IN(0), "router logits")) return -1;
    const ir_dtype t = dt(x, IN(0));
    const int64_t E = lastdim(x, IN(0)), N = E ? numel(x, IN(0)) / E : 0, k = AI("k", 1);
    if (!fits_int(E) || k < 1 || k > 32 || k > E) return unsupported(x, "a router over %lld experts, top %lld", (long long)E, (long long)k);
    if ((bwd && dt(x, IN(2)) != t) || (!bwd && dt(x, OUT(0)) != t)) return unsupported(x, "router weights of another dtype");
    if (N < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), N * E * esz(t));
    if (bwd) {
        ka_p(&a, ptr(x, IN(1)), N * k * 4);
        ka_p(&a, ptr(x, IN(2)), N * k * esz(t));
        ka_p(&a, ptr(x, OUT(0)), N * E * esz(t));
    } else {
        ka_p(&a, ptr(x, OUT(0)), N * k * esz(t));
        ka_p(&a, ptr(x, OUT(1)), N * k * 4);
    }
    ka_l(&a, N);
    ka_i(&a, E);
    ka_i(&a, k);
    ka_i(&a, AI("norm", 0) != 0);
    return launch(x, ename(e, sizeof e, bwd ? "axo_moe_route_bwd" : "axo_moe_route", t), blocks(x, N, 256), 1, 1, 256, 1, 0, &a);
}

/* The pairs (token, slot) grouped by expert: off / poff [E + 1] and order [n] in the node's scratch. */
typedef struct moe_groups {
    uint64_t off, poff, order;
} moe_groups;
static int moe_group(gx *x, uint64_t idx, int64_t n, int64_t E, moe_groups *g) {
    uint64_t counts = scratch(x, E * 4);
    g->off = scratch(x, (E + 1) * 4);
    g->poff = scratch(x, (E + 1) * 4);
    g->order = scratch(x, n * 4);
    kargs a = {0};
    ka_p(&a, idx, n * 4);
    ka_l(&a, n);
    ka_p(&a, counts, E * 4);
    if (launch(x, "axo_moe_count", E, 1, 1, 256, 1, 0, &a) != 0) return -1;
    kargs b = {0};
    ka_p(&b, idx, n * 4);
    ka_l(&b, n);
    ka_i(&b, E);
    ka_p(&b, counts, E * 4);
    ka_p(&b, g->off, (E + 1) * 4);
    ka_p(&b, g->poff, (E + 1) * 4);
    ka_p(&b, g->order, n * 4);
    return launch(x, "axo_moe_fill", E, 1, 1, 256, 1, 0, &b);
}
static int tc_arch_ok(const rt_cuda_dev *dev);
/* The experts' GEMMs on tensor cores (moe.cuh's *_tc kernels): bf16 plans on sm_80+ when AXO_CUDA_MOE=tc (opt-in
 * until a GPU has validated them, as AXO_CUDA_ATTN=tc) */
static int moe_tc(gx *x, ir_dtype t) {
    const char *v = env_set("AXO_CUDA_MOE");
    return v && !strcmp(v, "tc") && t == IR_BF16 && tc_arch_ok(x->dev);
}
/* C[p, :Nc] (f32) = A[p / adiv] . op(B_e) for every pair p of expert e (bt: B_e is [Nc, K]) */
static int moe_gemm(gx *x, ir_dtype t, uint64_t A, int a_f32, int64_t a_rows, int adiv, uint64_t B, int bt, uint64_t C,
                    const moe_groups *g, int64_t n, int64_t E, int64_t Nc, int64_t K) {
    char e[64];
    kargs a = {0};
    ka_p(&a, A, a_rows * K * (a_f32 ? 4 : esz(t)));
    ka_i(&a, adiv);
    ka_p(&a, B, E * Nc * K * esz(t));
    ka_i(&a, bt);
    ka_p(&a, C, n * Nc * 4);
    ka_p(&a, g->order, n * 4);
    ka_p(&a, g->off, (E + 1) * 4);
    ka_p(&a, g->poff, (E + 1) * 4);
    ka_i(&a, E);
    ka_i(&a, Nc);
    ka_i(&a, K);
    if (moe_tc(x, t))
        return launch(x, a_f32 ? "axo_moe_gemm_tc_af32_bf16" : "axo_moe_gemm_tc_bf16", (n + 63) / 64 + E, (Nc + 63) / 64, 1,
                      128, 1, 0, &a);
    const char *entry = a_f32 && t == IR_BF16 ? "axo_moe_gemm_af32_bf16" : ename(e, sizeof e, "axo_moe_gemm", t);
    return launch(x, entry, (n + 63) / 64 + E, (Nc + 63) / 64, 1, 256, 1, 0, &a);
}
/* out[e] ([E, Ma, Nb], its dtype) = sum over e's pairs of A[p, :Ma]^T B[p / bdiv, :Nb] (A f32; B f32 or out's dtype),
 * each element stored once from its fp32 sum */
static int moe_wgrad(gx *x, uint64_t A, uint64_t B, ir_dtype bt, int64_t b_rows, int bdiv, int32_t out, const moe_groups *g,
                     int64_t n, int64_t E, int64_t Ma, int64_t Nb) {
    const ir_dtype ct = dt(x, out);
    char e[64];
    kargs a = {0};
    ka_p(&a, A, n * Ma * 4);
    ka_p(&a, B, b_rows * Nb * esz(bt));
    ka_i(&a, bdiv);
    ka_p(&a, ptr(x, out), E * Ma * Nb * esz(ct));
    ka_p(&a, g->order, n * 4);
    ka_p(&a, g->off, (E + 1) * 4);
    ka_i(&a, Ma);
    ka_i(&a, Nb);
    const char *entry = bt == IR_F32 && ct == IR_BF16 ? "axo_moe_wgrad_bf32_bf16" : ename(e, sizeof e, "axo_moe_wgrad", ct);
    if (bt != IR_F32 && bt != ct) return unsupported(x, "an expert weight gradient of another dtype than its inputs");
    if (moe_tc(x, ct))
        return launch(x, bt == IR_F32 ? "axo_moe_wgrad_tc_bf32_bf16" : "axo_moe_wgrad_tc_bf16", (Ma + 63) / 64,
                      (Nb + 63) / 64, E, 128, 1, 0, &a);
    return launch(x, entry, (Ma + 63) / 64, (Nb + 63) / 64, E, 256, 1, 0, &a);
}
/* each slot's activation (da 0) or its backward: SwiGLU, or with oss gpt-oss's clamped GLU (the node's alpha, limit) */
static int moe_act_any(gx *x, ir_dtype t, uint64_t gu, uint64_t da, uint64_t out, int64_t n, int64_t I, int oss) {
    char e[64];
    kargs a = {0};
    ka_p(&a, gu, n * 2 * I * esz(t));
    if (da) ka_p(&a, da, n * I * 4);
    ka_p(&a, out, n * (da ? 2 : 1) * I * 4);
    ka_l(&a, n);
    ka_i(&a, I);
    if (oss) {
        ka_d(&a, AF("alpha", 1.702));
        ka_d(&a, AF("limit", 7));
    }
    const char *base = oss ? (da ? "axo_moe_oss_act_bwd" : "axo_moe_oss_act") : (da ? "axo_moe_act_bwd" : "axo_moe_act");
    return launch(x, ename(e, sizeof e, base, t), blocks(x, n * I, 256), 1, 1, 256, 1, 0, &a);
}
static int moe_act(gx *x, ir_dtype t, uint64_t gu, uint64_t da, uint64_t out, int64_t n, int64_t I) {
    return moe_act_any(x, t, gu, da, out, n, I, 0);
}
/* y[t] (t's dtype) = the sum over t's slots in ascending expert order of o[p] (times w[p] when w) */
static int moe_combine(gx *x, ir_dtype t, uint64_t o, uint64_t w, uint64_t idx, uint64_t y, int64_t N, int64_t k, int64_t H) {
    char e[64];
    kargs a = {0};
    ka_p(&a, o, N * k * H * 4);
    ka_p(&a, w, w ? N * k * esz(t) : 0);
    ka_p(&a, idx, N * k * 4);
    ka_p(&a, y, N * H * esz(t));
    ka_l(&a, N);
    ka_i(&a, k);
    ka_i(&a, H);
    return launch(x, ename(e, sizeof e, "axo_moe_combine", t), blocks(x, N * H, 256), 1, 1, 256, 1, 0, &a);
}
/* The backward's per-slot pieces: dw[p] = dy[t] . o[p] and do[p] = dy[t] w[p] (f32 [n, H]) */
static int moe_dw_scale(gx *x, ir_dtype t, uint64_t dy, uint64_t o, uint64_t w, uint64_t dw, uint64_t dout, int64_t N,
                        int64_t k, int64_t H) {
    const int64_t n = N * k;
    char e[64];
    kargs a = {0};
    ka_p(&a, dy, N * H * esz(t));
    ka_p(&a, o, n * H * 4);
    ka_p(&a, dw, n * esz(t));
    ka_l(&a, N);
    ka_i(&a, k);
    ka_i(&a, H);
    if (launch(x, ename(e, sizeof e, "axo_moe_dw", t), blocks(x, n * 32, 256), 1, 1, 256, 1, 0, &a) != 0) return -1;
    kargs b = {0};
    ka_p(&b, dy, N * H * esz(t));
    ka_p(&b, w, n * esz(t));
    ka_p(&b, dout, n * H * 4);
    ka_l(&b, N);
    ka_i(&b, k);
    ka_i(&b, H);
    return launch(x, ename(e, sizeof e, "axo_moe_scale", t), blocks(x, n * H, 256), 1, 1, 256, 1, 0, &b);
}

static int g_moe_ffn(gx *x, int bwd) {
    const int32_t X = IN(0), IDX = IN(1), W = IN(2), WGU = IN(3), WD = IN(4);
    if (need_fp(x, X, "moe_ffn input")) return -1;
    const ir_dtype t = dt(x, X);
    for (int i = 2; i < (bwd ? 7 : 5); i++)
        if (i != 1 && dt(x, IN(i)) != t) return unsupported(x, "experts of mixed dtypes");
    if (ty(x, WGU)->shard.axis >= 0 || ty(x, WD)->shard.axis >= 0) return unsupported(x, "sharded experts (gather them first)");
    const int64_t H = lastdim(x, X), N = H ? numel(x, X) / H : 0, k = lastdim(x, IDX);
    const int64_t E = ty(x, WGU)->dims[0], I = ty(x, WGU)->dims[1] / 2, n = N * k;
    if (!fits_int(E) || !fits_int(H) || !fits_int(2 * I) || k < 1 || k > 32 || !fits_int(n))
        return unsupported(x, "experts of %lld x %lld x %lld over %lld tokens, top %lld", (long long)E, (long long)I,
                           (long long)H, (long long)N, (long long)k);
    if (N < 1) return 0;
    moe_groups g;
    if (moe_group(x, ptr(x, IDX), n, E, &g) != 0) return -1;
    uint64_t act = scratch(x, n * I * 4), o = scratch(x, n * H * 4);
    if (!bwd) { /* gu = x Wgu_e^T (kept), act = silu(g) u, o = act Wd_e^T, y = sum of o w */
        uint64_t gu = scratch(x, n * 2 * I * 4);
        if (moe_gemm(x, t, ptr(x, X), 0, N, (int)k, ptr(x, WGU), 1, gu, &g, n, E, 2 * I, H) != 0 ||
            convert_launch(x, gu, IR_F32, ptr(x, OUT(1)), t, n * 2 * I) != 0 || moe_act(x, IR_F32, gu, 0, act, n, I) != 0 ||
            moe_gemm(x, t, act, 1, n, 1, ptr(x, WD), 1, o, &g, n, E, H, I) != 0)
            return -1;
        return moe_combine(x, t, o, ptr(x, W), ptr(x, IDX), ptr(x, OUT(0)), N, k, H);
    }
    /* backward: act from the kept gu, o again (for dw), do = dy w, dWd = do^T act, da = do Wd, dgu, dWgu = dgu^T x,
     * dx = the sum of dgu Wgu over the token's slots */
    const int32_t GU = IN(5), DY = IN(6);
    uint64_t dout = scratch(x, n * H * 4), da = scratch(x, n * I * 4), dgu = scratch(x, n * 2 * I * 4);
    if (moe_act(x, t, ptr(x, GU), 0, act, n, I) != 0 || moe_gemm(x, t, act, 1, n, 1, ptr(x, WD), 1, o, &g, n, E, H, I) != 0)
        return -1;
    if (moe_dw_scale(x, t, ptr(x, DY), o, ptr(x, W), ptr(x, OUT(1)), dout, N, k, H) != 0 ||
        moe_wgrad(x, dout, act, IR_F32, n, 1, OUT(3), &g, n, E, H, I) != 0 ||
        moe_gemm(x, t, dout, 1, n, 1, ptr(x, WD), 0, da, &g, n, E, I, H) != 0 ||
        moe_act(x, t, ptr(x, GU), da, dgu, n, I) != 0 ||
        moe_wgrad(x, dgu, ptr(x, X), t, N, (int)k, OUT(2), &g, n, E, 2 * I, H) != 0 ||
        moe_gemm(x, t, dgu, 1, n, 1, ptr(x, WGU), 0, o, &g, n, E, H, 2 * I) != 0) /* o: dx's per-pair parts */
        return -1;
    return moe_combine(x, t, o, 0, ptr(x, IDX), ptr(x, OUT(0)), N, k, H);
}

/* gpt-oss's experts (moe.cuh; ck_moe_oss_*): the weights transposed relative to moe_ffn's (wgu [E, H, 2I], wd [E, I, H]:
 * x W, so moe_gemm's bt = 0 forward and 1 backward), biases added per pair, gate and up interleaved and clamped */
static int moe_bias(gx *x, ir_dtype t, uint64_t C, int32_t b, uint64_t idx, int64_t n, int64_t E, int64_t Nc) {
    char e[64];
    kargs a = {0};
    ka_p(&a, C, n * Nc * 4);
    ka_p(&a, ptr(x, b), E * Nc * esz(t));
    ka_p(&a, idx, n * 4);
    ka_l(&a, n);
    ka_i(&a, Nc);
    return launch(x, ename(e, sizeof e, "axo_moe_bias", t), blocks(x, n * Nc, 256), 1, 1, 256, 1, 0, &a);
}
static int moe_oss_act(gx *x, ir_dtype t, uint64_t gu, uint64_t da, uint64_t out, int64_t n, int64_t I) {
    return moe_act_any(x, t, gu, da, out, n, I, 1);
}
/* out[e] (its dtype) = the column sums of A [n, C] over e's pairs (ascending) */
static int moe_colsum(gx *x, uint64_t A, int32_t out, const moe_groups *g, int64_t n, int64_t E, int64_t C) {
    const ir_dtype ct = dt(x, out);
    char e[64];
    kargs a = {0};
    ka_p(&a, A, n * C * 4);
    ka_p(&a, g->order, n * 4);
    ka_p(&a, g->off, (E + 1) * 4);
    ka_p(&a, ptr(x, out), E * C * esz(ct));
    ka_i(&a, E);
    ka_i(&a, C);
    return launch(x, ename(e, sizeof e, "axo_moe_colsum", ct), blocks(x, E * C, 256), 1, 1, 256, 1, 0, &a);
}
static int g_moe_ffn_oss(gx *x, int bwd) {
    const int32_t X = IN(0), IDX = IN(1), W = IN(2), WGU = IN(3), BGU = IN(4), WD = IN(5), BD = IN(6);
    if (need_fp(x, X, "moe_ffn_oss input")) return -1;
    const ir_dtype t = dt(x, X);
    for (int i = 2; i < (bwd ? 9 : 7); i++)
        if (dt(x, IN(i)) != t) return unsupported(x, "experts of mixed dtypes");
    for (int i = 0; i < (bwd ? 6 : 1); i++)
        if (dt(x, OUT(i)) != t) return unsupported(x, "experts' results of another dtype");
    for (int i = 3; i < 7; i++)
        if (ty(x, IN(i))->shard.axis >= 0) return unsupported(x, "sharded experts (gather them first)");
    const int64_t H = lastdim(x, X), N = H ? numel(x, X) / H : 0, k = lastdim(x, IDX);
    const int64_t E = ty(x, WGU)->dims[0], I = ty(x, WGU)->dims[2] / 2, n = N * k;
    if (!fits_int(E) || !fits_int(H) || !fits_int(2 * I) || k < 1 || k > 32 || !fits_int(n) || ty(x, WGU)->dims[1] != H)
        return unsupported(x, "experts of %lld x %lld x %lld over %lld tokens, top %lld", (long long)E, (long long)I,
                           (long long)H, (long long)N, (long long)k);
    if (N < 1) {
        if (!bwd) return 0;
        for (int i = 2; i < 6; i++) /* the weights' gradients: zeros */
            if (x_memset(x, ptr(x, OUT(i)), 0, numel(x, OUT(i)) * esz(t))) return -1;
        return 0;
    }
    moe_groups g;
    if (moe_group(x, ptr(x, IDX), n, E, &g) != 0) return -1;
    const uint64_t idx = ptr(x, IDX);
    uint64_t act = scratch(x, n * I * 4), o = scratch(x, n * H * 4);
    if (!bwd) { /* gu = x Wgu_e + bgu_e (kept), act, o = act Wd_e + bd_e, y = the sum of o w */
        uint64_t gu = scratch(x, n * 2 * I * 4);
        if (moe_gemm(x, t, ptr(x, X), 0, N, (int)k, ptr(x, WGU), 0, gu, &g, n, E, 2 * I, H) != 0 ||
            moe_bias(x, t, gu, BGU, idx, n, E, 2 * I) != 0 ||
            convert_launch(x, gu, IR_F32, ptr(x, OUT(1)), t, n * 2 * I) != 0 ||
            moe_oss_act(x, IR_F32, gu, 0, act, n, I) != 0 ||
            moe_gemm(x, t, act, 1, n, 1, ptr(x, WD), 0, o, &g, n, E, H, I) != 0 || moe_bias(x, t, o, BD, idx, n, E, H) != 0)
            return -1;
        return moe_combine(x, t, o, ptr(x, W), idx, ptr(x, OUT(0)), N, k, H);
    }
    /* backward: act from the kept gu, o + bd again (for dw), do = dy w, dbd = do's sums, dWd = act^T do,
     * da = do Wd^T, dgu, dbgu = dgu's sums, dWgu = x^T dgu, dx = the sum of dgu Wgu^T over the token's slots */
    const int32_t GU = IN(7), DY = IN(8);
    uint64_t dout = scratch(x, n * H * 4), da = scratch(x, n * I * 4), dgu = scratch(x, n * 2 * I * 4);
    char e[64];
    if (moe_oss_act(x, t, ptr(x, GU), 0, act, n, I) != 0 ||
        moe_gemm(x, t, act, 1, n, 1, ptr(x, WD), 0, o, &g, n, E, H, I) != 0 || moe_bias(x, t, o, BD, idx, n, E, H) != 0)
        return -1;
    if (moe_dw_scale(x, t, ptr(x, DY), o, ptr(x, W), ptr(x, OUT(1)), dout, N, k, H) != 0 ||
        moe_colsum(x, dout, OUT(5), &g, n, E, H) != 0 ||
        moe_wgrad(x, act, dout, IR_F32, n, 1, OUT(4), &g, n, E, I, H) != 0 ||
        moe_gemm(x, t, dout, 1, n, 1, ptr(x, WD), 1, da, &g, n, E, I, H) != 0 ||
        moe_oss_act(x, t, ptr(x, GU), da, dgu, n, I) != 0 || moe_colsum(x, dgu, OUT(3), &g, n, E, 2 * I) != 0)
        return -1;
    kargs c = {0}; /* each pair's x as f32 (into do's scratch, done with): dWgu[e] = x_e^T dgu_e */
    ka_p(&c, ptr(x, X), N * H * esz(t));
    ka_p(&c, dout, n * H * 4);
    ka_l(&c, N);
    ka_i(&c, k);
    ka_i(&c, H);
    if (launch(x, ename(e, sizeof e, "axo_moe_expand", t), blocks(x, n * H, 256), 1, 1, 256, 1, 0, &c) != 0 ||
        moe_wgrad(x, dout, dgu, IR_F32, n, 1, OUT(2), &g, n, E, H, 2 * I) != 0 ||
        moe_gemm(x, t, dgu, 1, n, 1, ptr(x, WGU), 1, o, &g, n, E, H, 2 * I) != 0) /* o: dx's per-pair parts */
        return -1;
    return moe_combine(x, t, o, 0, idx, ptr(x, OUT(0)), N, k, H);
}

/* The routers' load-balancing loss (moe.cuh): each token's part of the stats, summed over the tokens by bias_grad's
 * column sums (deterministic); the loss and its gradient in one thread */
static int g_moe_lb(gx *x) {
    const int op = x->n->op;
    char e[64];
    if (op == IR_OP_moe_lb_loss || op == IR_OP_moe_lb_loss_bwd) {
        const int64_t E = (numel(x, IN(0)) - 1) / 2;
        kargs a = {0};
        ka_p(&a, ptr(x, IN(0)), (2 * E + 1) * 4);
        if (op == IR_OP_moe_lb_loss_bwd) ka_p(&a, ptr(x, IN(1)), 4);
        ka_p(&a, ptr(x, OUT(0)), (op == IR_OP_moe_lb_loss ? 1 : 2 * E + 1) * 4);
        ka_i(&a, (int)E);
        return launch(x, op == IR_OP_moe_lb_loss ? "axo_moe_lb_loss" : "axo_moe_lb_loss_bwd", 1, 1, 1, 32, 1, 0, &a);
    }
    if (need_fp(x, IN(0), "router logits")) return -1;
    const ir_dtype t = dt(x, IN(0));
    const int64_t E = lastdim(x, IN(0)), N = E ? numel(x, IN(0)) / E : 0;
    if (!fits_int(2 * E + 1)) return unsupported(x, "a router over %lld experts", (long long)E);
    if (N < 1) {
        if (op == IR_OP_moe_lb_stats) return x_memset(x, ptr(x, OUT(0)), 0, (2 * E + 1) * 4);
        return 0;
    }
    if (op == IR_OP_moe_lb_stats_bwd) {
        kargs a = {0};
        ka_p(&a, ptr(x, IN(0)), N * E * esz(t));
        ka_p(&a, ptr(x, IN(1)), N * 4);
        ka_p(&a, ptr(x, IN(2)), (2 * E + 1) * 4);
        ka_p(&a, ptr(x, OUT(0)), N * E * esz(t));
        ka_l(&a, N);
        ka_i(&a, (int)E);
        return launch(x, ename(e, sizeof e, "axo_moe_lb_stats_bwd", t), blocks(x, N, 256), 1, 1, 256, 1, 0, &a);
    }
    const int64_t W = 2 * E + 1, k = lastdim(x, IN(1));
    uint64_t rows = scratch(x, N * W * 4);
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), N * E * esz(t));
    ka_p(&a, ptr(x, IN(1)), N * k * 4);
    ka_p(&a, ptr(x, IN(2)), N * 4);
    ka_p(&a, rows, N * W * 4);
    ka_l(&a, N);
    ka_i(&a, (int)E);
    ka_i(&a, (int)k);
    if (launch(x, ename(e, sizeof e, "axo_moe_lb_rows", t), blocks(x, N, 256), 1, 1, 256, 1, 0, &a)) return -1;
    int64_t cols = (W + 31) / 32, P = colsum_parts(x, N, cols);
    uint64_t part = scratch(x, P * W * 4);
    kargs b = {0};
    ka_p(&b, rows, N * W * 4);
    ka_p(&b, part, P * W * 4);
    ka_l(&b, N);
    ka_l(&b, W);
    if (launch(x, "axo_bias_grad_partial_f32", cols, P, 1, 32, 8, 0, &b)) return -1;
    kargs c = {0};
    ka_p(&c, part, P * W * 4);
    ka_i(&c, (int)P);
    ka_l(&c, W);
    ka_p(&c, ptr(x, OUT(0)), W * 4);
    ka_i(&c, 0);
    return launch(x, "axo_bias_grad_reduce_f32", (W + 255) / 256, 1, 1, 256, 1, 0, &c);
}

/* Shared memory of the fast attention kernels (their .cuh). */
static int64_t att_smem_fwd(int64_t hd) { return (64 * (hd + 1) * 3 + 64 * 65) * 4 + 128 * 4; }
static int64_t att_smem_bwd(int64_t hd) { return (4 * 64 * (hd + 1) + 64 * 65) * 4 + 256 * 4; }

/* The tensor-core kernels (attention_tc.cuh, bf16 only): block and shared
 * memory of the forward, dK/dV and dQ kernels. */
static int att_tc_nt(int kind) { return kind == 1 ? 256 : 128; }
static int64_t att_tc_smem(int kind, int64_t hd) {
    int64_t tile = 64 * (hd + 8) * 2;
    return kind == 0 ? 5 * tile + 512 : kind == 1 ? 6 * tile + 2 * 64 * 72 * 2 + 1536 : 6 * tile + 512;
}

/* The tensor-core kernels need sm_80+ (bf16 mma.sync, cp.async); older
 * GPUs keep the CUDA-core kernels whatever AXO_CUDA_ATTN says. */
static int tc_arch_ok(const rt_cuda_dev *dev) { return !strncmp(dev->arch, "sm_", 3) && atoi(dev->arch + 3) >= 80; }

/* The kernels' causal argument: 0 not causal, else a key j is visible to
 * query i when 0 <= i - j < it: INT_MAX for plain causal attention, W for a
 * sliding window of W (codegen/kernels/common.cuh, ax_att_causal_arg). */
static int att_causal(gx *x) {
    int64_t w = AI("window", 0);
    return !AI("causal", 1) ? 0 : w > 0 && w < INT_MAX ? (int)w : INT_MAX;
}

typedef struct att_dims {
    int64_t B, S, nh, nkv, hd;
    int fast; /* the FlashAttention-style kernels (hd 64/128) */
    int tc;   /* ... their tensor-core versions (bf16; AXO_CUDA_ATTN=tc) */
} att_dims;

static int att_check(gx *x, att_dims *a, int bwd) {
    if (need_fp(x, IN(0), "attention q")) return -1;
    const int64_t *q = ty(x, IN(0))->dims, *k = ty(x, IN(1))->dims;
    *a = (att_dims){.B = q[0], .S = q[1], .nh = q[2], .nkv = k[2], .hd = q[3]};
    if (!fits_int(a->S) || !fits_int(a->nh) || !fits_int(a->nkv) || a->nkv < 1 || a->nh % a->nkv)
        return unsupported(x, "attention shape");
    const char *force = env_set("AXO_CUDA_ATTN");
    int64_t smem = bwd ? att_smem_bwd(a->hd) : att_smem_fwd(a->hd);
    a->fast = (a->hd == 64 || a->hd == 128) && smem <= x->dev->smem_optin && a->nh <= 65535 && a->nkv <= 65535 &&
              a->B <= 65535 && !(force && !strcmp(force, "any"));
    a->tc = a->fast && force && !strcmp(force, "tc") && dt(x, IN(0)) == IR_BF16 && tc_arch_ok(x->dev) &&
            att_tc_smem(bwd ? 1 : 0, a->hd) <= x->dev->smem_optin && att_tc_smem(2, a->hd) <= x->dev->smem_optin;
    if (!a->fast && (a->hd < 1 || a->hd > 256))
        return unsupported(x, "attention with head_dim %lld (the kernels cover 1..256)", (long long)a->hd);
    return 0;
}

/* Attention sinks (gpt-oss; attention_any.cuh's axo_attn_sink_T): in place on out (dtype t) and lse, the sinks
 * f32 or bf16 */
static int attn_sink_apply(gx *x, ir_dtype t, uint64_t out, uint64_t lse, int32_t sinks, int64_t B, int64_t S, int64_t nh,
                           int64_t hd) {
    if (need_fp(x, sinks, "attention sinks")) return -1;
    if (!fits_int(S) || !fits_int(nh) || !fits_int(hd) || numel(x, sinks) != nh)
        return unsupported(x, "attention sinks of %lld values for %lld heads", (long long)numel(x, sinks), (long long)nh);
    const int64_t nl = B * nh * S;
    if (nl < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, out, nl * hd * esz(t));
    ka_p(&a, lse, nl * 4);
    ka_p(&a, ptr(x, sinks), nh * esz(dt(x, sinks)));
    ka_i(&a, dt(x, sinks) == IR_BF16);
    ka_l(&a, B);
    ka_i(&a, S);
    ka_i(&a, nh);
    ka_i(&a, hd);
    return launch(x, ename(e, sizeof e, "axo_attn_sink", t), blocks(x, nl, 256), 1, 1, 256, 1, 0, &a);
}

static int g_attention_core(gx *x);
static int g_attention(gx *x) { return g_attention_core(x); }

/* attn_sink (seqpar's ring, after the merge): out', lse' = the sinks applied to copies of out, lse */
static int g_attn_sink(gx *x) {
    if (need_fp(x, IN(0), "attn_sink out")) return -1;
    const ir_dtype t = dt(x, IN(0));
    if (dt(x, OUT(0)) != t || dt(x, IN(1)) != IR_F32 || dt(x, OUT(1)) != IR_F32 || ty(x, IN(0))->rank != 4)
        return unsupported(x, "attn_sink with out of another dtype or a non-f32 lse");
    const int64_t *d = ty(x, IN(0))->dims, nl = d[0] * d[1] * d[2];
    if (x_copy(x, ptr(x, OUT(0)), ptr(x, IN(0)), nl * d[3] * esz(t)) || x_copy(x, ptr(x, OUT(1)), ptr(x, IN(1)), nl * 4))
        return -1;
    return attn_sink_apply(x, t, ptr(x, OUT(0)), ptr(x, OUT(1)), IN(2), d[0], d[1], d[2], d[3]);
}

/* attn_sink_bwd: dsinks[h] = -sum exp(sinks[h] - lse') (dout . out'), one block per head (deterministic) */
static int g_attn_sink_bwd(gx *x) {
    if (need_fp(x, IN(0), "attention sinks") || need_fp(x, IN(1), "attn_sink_bwd out")) return -1;
    const ir_dtype t = dt(x, IN(1)), st = dt(x, IN(0));
    if (dt(x, IN(3)) != t || dt(x, IN(2)) != IR_F32 || dt(x, OUT(0)) != st || ty(x, IN(1))->rank != 4)
        return unsupported(x, "attn_sink_bwd with mixed dtypes");
    const int64_t *d = ty(x, IN(1))->dims, B = d[0], S = d[1], nh = d[2], hd = d[3], nl = B * S * nh;
    if (!fits_int(S) || !fits_int(nh) || !fits_int(hd) || numel(x, IN(0)) != nh || nh > 65535)
        return unsupported(x, "attn_sink_bwd shape");
    if (nh < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), nh * esz(st));
    ka_i(&a, st == IR_BF16);
    ka_p(&a, ptr(x, IN(1)), nl * hd * esz(t));
    ka_p(&a, ptr(x, IN(2)), nl * 4);
    ka_p(&a, ptr(x, IN(3)), nl * hd * esz(t));
    ka_p(&a, ptr(x, OUT(0)), nh * esz(st));
    ka_l(&a, B);
    ka_i(&a, S);
    ka_i(&a, nh);
    ka_i(&a, hd);
    return launch(x, ename(e, sizeof e, "axo_attn_sink_bwd", t), nh, 1, 1, 256, 1, 0, &a);
}

/* the forward kernels' last arguments: gpt-oss's sinks (attention's 5th operand; none: NULL) and whether they are
 * bf16, folded into each row's softmax before out is rounded (ck_attn_sink_fwd's result) */
static void att_sinks_arg(gx *x, kargs *a) {
    const int has = x->n->nin == 5;
    ka_p(a, has ? ptr(x, IN(4)) : 0, has ? ty(x, IN(4))->dims[0] * esz(dt(x, IN(4))) : 0);
    ka_i(a, has && dt(x, IN(4)) == IR_BF16);
}

static int g_attention_core(gx *x) {
    att_dims A;
    if (att_check(x, &A, 0)) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t nq = A.B * A.S * A.nh * A.hd, nk = A.B * A.S * A.nkv * A.hd, nl = A.B * A.nh * A.S;
    double scale = AF("scale", 1), softcap = AF("softcap", 0); /* Gemma 2's cap of the scores (0: none) */
    int causal = att_causal(x);
    char e[64], base[48];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), nq * esz(t));
    ka_p(&a, ptr(x, IN(1)), nk * esz(t));
    ka_p(&a, ptr(x, IN(2)), nk * esz(t));
    ka_p(&a, ptr(x, IN(3)), A.B * A.S * 4);
    ka_p(&a, ptr(x, OUT(0)), nq * esz(t));
    ka_p(&a, ptr(x, OUT(1)), nl * 4);
    if (A.fast) {
        ka_i(&a, A.S);
        ka_i(&a, A.nh);
        ka_i(&a, A.nkv);
        ka_f(&a, scale);
        ka_i(&a, causal);
        ka_f(&a, softcap);
        att_sinks_arg(x, &a);
        if (A.tc) {
            snprintf(e, sizeof e, "axo_attn_tc_fwd_hd%lld_bf16", (long long)A.hd);
            return launch(x, e, (A.S + 63) / 64, A.nh, A.B, att_tc_nt(0), 1, att_tc_smem(0, A.hd), &a);
        }
        snprintf(base, sizeof base, "axo_attn_fwd_hd%lld", (long long)A.hd);
        return launch(x, ename(e, sizeof e, base, t), (A.S + 63) / 64, A.nh, A.B, 256, 1, att_smem_fwd(A.hd), &a);
    }
    ka_l(&a, A.B);
    ka_i(&a, A.S);
    ka_i(&a, A.nh);
    ka_i(&a, A.nkv);
    ka_i(&a, A.hd);
    ka_d(&a, scale);
    ka_i(&a, causal);
    ka_d(&a, softcap);
    att_sinks_arg(x, &a);
    return launch(x, ename(e, sizeof e, "axo_attn_any_fwd", t), (nl + 127) / 128, 1, 1, 128, 1, 0, &a);
}

/* D = rowsum(dout * out) per (b, head, query): the first kernel of both
 * attention backwards (whole row and ring block). */
static int bwd_preprocess(gx *x, const char *entry, ir_dtype t, uint64_t out, uint64_t dout, uint64_t D, int64_t nq,
                          int64_t nl, int64_t B, int64_t S, int64_t nh, int64_t hd) {
    char e[64];
    kargs p = {0};
    ka_p(&p, out, nq * esz(t));
    ka_p(&p, dout, nq * esz(t));
    ka_p(&p, D, nl * 4);
    ka_l(&p, B);
    ka_i(&p, S);
    ka_i(&p, nh);
    ka_i(&p, hd);
    return launch(x, ename(e, sizeof e, entry, t), blocks(x, nl * 32, 256), 1, 1, 256, 1, 0, &p);
}

static int g_attention_bwd(gx *x) {
    att_dims A;
    if (att_check(x, &A, 1)) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t nq = A.B * A.S * A.nh * A.hd, nk = A.B * A.S * A.nkv * A.hd, nl = A.B * A.nh * A.S;
    double scale = AF("scale", 1), softcap = AF("softcap", 0);
    int causal = att_causal(x);
    uint64_t q = ptr(x, IN(0)), k = ptr(x, IN(1)), v = ptr(x, IN(2)), seg = ptr(x, IN(3)), out = ptr(x, IN(4));
    uint64_t lse = ptr(x, IN(5)), dout = ptr(x, IN(6));
    char e[64], base[48];
    if (A.fast) {
        uint64_t D = scratch(x, nl * 4);
        if (bwd_preprocess(x, "axo_attn_bwd_preprocess", t, out, dout, D, nq, nl, A.B, A.S, A.nh, A.hd)) return -1;
        for (int pass = 0; pass < 2; pass++) { /* dK/dV over kv heads, then dQ over query heads */
            kargs a = {0};
            ka_p(&a, q, nq * esz(t));
            ka_p(&a, k, nk * esz(t));
            ka_p(&a, v, nk * esz(t));
            ka_p(&a, seg, A.B * A.S * 4);
            ka_p(&a, dout, nq * esz(t));
            ka_p(&a, lse, nl * 4);
            ka_p(&a, D, nl * 4);
            if (pass == 0) {
                ka_p(&a, ptr(x, OUT(1)), nk * esz(t));
                ka_p(&a, ptr(x, OUT(2)), nk * esz(t));
            } else {
                ka_p(&a, ptr(x, OUT(0)), nq * esz(t));
            }
            ka_i(&a, A.S);
            ka_i(&a, A.nh);
            ka_i(&a, A.nkv);
            ka_f(&a, scale);
            ka_i(&a, causal);
            ka_f(&a, softcap);
            if (A.tc) {
                snprintf(e, sizeof e, pass == 0 ? "axo_attn_tc_bwd_dkdv_hd%lld_bf16" : "axo_attn_tc_bwd_dq_hd%lld_bf16",
                         (long long)A.hd);
                if (launch(x, e, (A.S + 63) / 64, pass == 0 ? A.nkv : A.nh, A.B, att_tc_nt(pass == 0 ? 1 : 2), 1,
                           att_tc_smem(pass == 0 ? 1 : 2, A.hd), &a))
                    return -1;
                continue;
            }
            snprintf(base, sizeof base, pass == 0 ? "axo_attn_bwd_dkdv_hd%lld" : "axo_attn_bwd_dq_hd%lld", (long long)A.hd);
            if (launch(x, ename(e, sizeof e, base, t), (A.S + 63) / 64, pass == 0 ? A.nkv : A.nh, A.B, 256, 1,
                       att_smem_bwd(A.hd), &a))
                return -1;
        }
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        kargs a = {0};
        ka_p(&a, q, nq * esz(t));
        ka_p(&a, k, nk * esz(t));
        ka_p(&a, v, nk * esz(t));
        ka_p(&a, seg, A.B * A.S * 4);
        ka_p(&a, out, nq * esz(t));
        ka_p(&a, lse, nl * 4);
        ka_p(&a, dout, nq * esz(t));
        if (pass == 0) {
            ka_p(&a, ptr(x, OUT(0)), nq * esz(t));
        } else {
            ka_p(&a, ptr(x, OUT(1)), nk * esz(t));
            ka_p(&a, ptr(x, OUT(2)), nk * esz(t));
        }
        ka_l(&a, A.B);
        ka_i(&a, A.S);
        ka_i(&a, A.nh);
        ka_i(&a, A.nkv);
        ka_i(&a, A.hd);
        ka_d(&a, scale);
        ka_i(&a, causal);
        ka_d(&a, softcap);
        int64_t rows = pass == 0 ? nl : A.B * A.nkv * A.S;
        if (launch(x, ename(e, sizeof e, pass == 0 ? "axo_attn_any_bwd_dq" : "axo_attn_any_bwd_dkdv", t),
                   (rows + 127) / 128, 1, 1, 128, 1, 0, &a))
            return -1;
    }
    return 0;
}

/* ---- ring-attention blocks (codegen/kernels/attention_blk.cuh) ---------------------------- */
static int64_t blk_smem_fwd(int64_t hd) { return (3 * 64 * (hd + 1) + 64 * 65) * 4 + 256 * 4; }
static int64_t blk_smem_bwd(int64_t hd) { return (4 * 64 * (hd + 1) + 64 * 65) * 4 + 384 * 4; }

typedef struct blk_dims {
    int64_t B, Sq, Sk, nh, nkv, hd;
    int tc; /* the tensor-core versions (attention_tc.cuh; bf16, AXO_CUDA_ATTN=tc) */
} blk_dims;

/* q, k, v (and out, dout for the backward) one float dtype, seg/idx i32,
 * lse and every result f32; head_dim 64 or 128 (the only instantiations). */
static int blk_check(gx *x, blk_dims *a, int bwd) {
    if (need_fp(x, IN(0), "attention_blk q")) return -1;
    ir_dtype t = dt(x, IN(0));
    const int64_t *q = ty(x, IN(0))->dims, *k = ty(x, IN(1))->dims;
    *a = (blk_dims){.B = q[0], .Sq = q[1], .Sk = k[1], .nh = q[2], .nkv = k[2], .hd = q[3]};
    if (dt(x, IN(1)) != t || dt(x, IN(2)) != t || (bwd && (dt(x, IN(7)) != t || dt(x, IN(9)) != t)))
        return unsupported(x, "ring-attention block whose q, k, v%s differ in dtype", bwd ? ", out, dout" : "");
    for (int i = 3; i < 7; i++)
        if (dt(x, IN(i)) != IR_I32) return unsupported(x, "ring-attention block with non-i32 seg/idx (operand %d)", i);
    if ((bwd && dt(x, IN(8)) != IR_F32))
        return unsupported(x, "ring-attention block backward with lse of dtype %s (f32 only)", ir_dtype_name(dt(x, IN(8))));
    for (int i = 0; i < x->n->nout; i++)
        if (dt(x, OUT(i)) != IR_F32) return unsupported(x, "ring-attention block with a non-f32 result");
    if (a->hd != 64 && a->hd != 128)
        return unsupported(x, "ring-attention block (attention_blk) with head_dim %lld (the kernels cover 64 and 128)",
                           (long long)a->hd);
    if (!fits_int(a->Sq) || !fits_int(a->Sk) || a->nkv < 1 || a->nh % a->nkv || a->nh > 65535 || a->nkv > 65535 ||
        a->B > 65535)
        return unsupported(x, "ring-attention block shape");
    int64_t smem = bwd ? blk_smem_bwd(a->hd) : blk_smem_fwd(a->hd);
    if (smem > x->dev->smem_optin)
        return unsupported(x, "ring-attention block needs %lld bytes of shared memory, the device allows %lld",
                           (long long)smem, (long long)x->dev->smem_optin);
    /* same tiles and shared memory as the whole-row tensor-core kernels (att_tc_smem) */
    const char *force = env_set("AXO_CUDA_ATTN");
    a->tc = force && !strcmp(force, "tc") && t == IR_BF16 && tc_arch_ok(x->dev) && att_tc_smem(bwd ? 1 : 0, a->hd) <= x->dev->smem_optin &&
            att_tc_smem(2, a->hd) <= x->dev->smem_optin;
    return 0;
}

/* The 7 common operands q, k, v, segq, segk, idxq, idxk. */
static void blk_common_args(gx *x, kargs *a, const blk_dims *A, ir_dtype t) {
    int64_t nq = A->B * A->Sq * A->nh * A->hd, nk = A->B * A->Sk * A->nkv * A->hd;
    ka_p(a, ptr(x, IN(0)), nq * esz(t));
    ka_p(a, ptr(x, IN(1)), nk * esz(t));
    ka_p(a, ptr(x, IN(2)), nk * esz(t));
    ka_p(a, ptr(x, IN(3)), A->B * A->Sq * 4);
    ka_p(a, ptr(x, IN(4)), A->B * A->Sk * 4);
    ka_p(a, ptr(x, IN(5)), A->B * A->Sq * 4);
    ka_p(a, ptr(x, IN(6)), A->B * A->Sk * 4);
}
static void blk_tail_args(gx *x, kargs *a, const blk_dims *A) {
    ka_i(a, A->Sq);
    ka_i(a, A->Sk);
    ka_i(a, A->nh);
    ka_i(a, A->nkv);
    ka_f(a, AF("scale", 1));
    ka_i(a, att_causal(x));
    ka_f(a, AF("softcap", 0)); /* Gemma 2's cap of the scores (0: none) */
}

static int g_attention_blk(gx *x) {
    blk_dims A;
    if (blk_check(x, &A, 0)) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t nq = A.B * A.Sq * A.nh * A.hd;
    char e[64], base[48];
    kargs a = {0};
    blk_common_args(x, &a, &A, t);
    ka_p(&a, ptr(x, OUT(0)), nq * 4);
    ka_p(&a, ptr(x, OUT(1)), A.B * A.nh * A.Sq * 4);
    blk_tail_args(x, &a, &A);
    if (A.tc) {
        snprintf(e, sizeof e, "axo_attn_tc_blk_fwd_hd%lld_bf16", (long long)A.hd);
        return launch(x, e, (A.Sq + 63) / 64, A.nh, A.B, att_tc_nt(0), 1, att_tc_smem(0, A.hd), &a);
    }
    snprintf(base, sizeof base, "axo_attn_blk_fwd_hd%lld", (long long)A.hd);
    return launch(x, ename(e, sizeof e, base, t), (A.Sq + 63) / 64, A.nh, A.B, 256, 1, blk_smem_fwd(A.hd), &a);
}

static int g_attention_blk_bwd(gx *x) {
    blk_dims A;
    if (blk_check(x, &A, 1)) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t nq = A.B * A.Sq * A.nh * A.hd, nk = A.B * A.Sk * A.nkv * A.hd, nl = A.B * A.nh * A.Sq;
    uint64_t out = ptr(x, IN(7)), lse = ptr(x, IN(8)), dout = ptr(x, IN(9)), D = scratch(x, nl * 4);
    char e[64], base[48];
    if (bwd_preprocess(x, "axo_attn_blk_bwd_preprocess", t, out, dout, D, nq, nl, A.B, A.Sq, A.nh, A.hd)) return -1;
    for (int pass = 0; pass < 2; pass++) { /* dK/dV over kv heads, then dQ over query heads */
        kargs a = {0};
        blk_common_args(x, &a, &A, t);
        ka_p(&a, dout, nq * esz(t));
        ka_p(&a, lse, nl * 4);
        ka_p(&a, D, nl * 4);
        if (pass == 0) {
            ka_p(&a, ptr(x, OUT(1)), nk * 4);
            ka_p(&a, ptr(x, OUT(2)), nk * 4);
        } else {
            ka_p(&a, ptr(x, OUT(0)), nq * 4);
        }
        blk_tail_args(x, &a, &A);
        if (A.tc) {
            snprintf(e, sizeof e, pass == 0 ? "axo_attn_tc_blk_bwd_dkdv_hd%lld_bf16" : "axo_attn_tc_blk_bwd_dq_hd%lld_bf16",
                     (long long)A.hd);
            if (launch(x, e, ((pass == 0 ? A.Sk : A.Sq) + 63) / 64, pass == 0 ? A.nkv : A.nh, A.B,
                       att_tc_nt(pass == 0 ? 1 : 2), 1, att_tc_smem(pass == 0 ? 1 : 2, A.hd), &a))
                return -1;
            continue;
        }
        snprintf(base, sizeof base, pass == 0 ? "axo_attn_blk_bwd_dkdv_hd%lld" : "axo_attn_blk_bwd_dq_hd%lld",
                 (long long)A.hd);
        if (launch(x, ename(e, sizeof e, base, t), ((pass == 0 ? A.Sk : A.Sq) + 63) / 64, pass == 0 ? A.nkv : A.nh, A.B,
                   256, 1, blk_smem_bwd(A.hd), &a))
            return -1;
    }
    return 0;
}

static int g_attn_merge(gx *x) {
    for (int i = 0; i < 4; i++)
        if (dt(x, IN(i)) != IR_F32) return unsupported(x, "attn_merge of a non-f32 operand (%d)", i);
    const int64_t *dm = ty(x, IN(0))->dims;
    int64_t B = dm[0], S = dm[1], nh = dm[2], hd = dm[3], no = B * S * nh * hd, nl = B * nh * S;
    if (!fits_int(S) || !fits_int(nh) || !fits_int(hd)) return unsupported(x, "attn_merge shape");
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), no * 4);
    ka_p(&a, ptr(x, IN(1)), nl * 4);
    ka_p(&a, ptr(x, IN(2)), no * 4);
    ka_p(&a, ptr(x, IN(3)), nl * 4);
    ka_p(&a, ptr(x, OUT(0)), no * 4);
    ka_p(&a, ptr(x, OUT(1)), nl * 4);
    ka_l(&a, B);
    ka_i(&a, S);
    ka_i(&a, nh);
    ka_i(&a, hd);
    return launch(x, "axo_attn_merge_f32", blocks(x, B * S * nh * 32, 256), 1, 1, 256, 1, 0, &a);
}

/* swiglu_bwd and geglu_bwd (gate, up, dy) -> dgate, dup */
static int glu_bwd(gx *x, const char *base) {
    if (need_fp(x, IN(0), "GLU input")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(1)) != t || dt(x, IN(2)) != t) return unsupported(x, "%s with mixed dtypes", ir_ops[x->n->op].name);
    int64_t n = numel(x, OUT(0));
    char e[64];
    kargs a = {0};
    for (int i = 0; i < 3; i++) ka_p(&a, ptr(x, IN(i)), n * esz(t));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_p(&a, ptr(x, OUT(1)), n * esz(t));
    ka_l(&a, n);
    return launch(x, ename(e, sizeof e, base, t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}
static int g_swiglu_bwd(gx *x) { return glu_bwd(x, "axo_swiglu_bwd"); }
static int g_geglu_bwd(gx *x) { return glu_bwd(x, "axo_geglu_bwd"); }

static int64_t rows_grid(int64_t T) { return T < 1 ? 1 : T > (1 << 30) ? (1 << 30) : T; }

static int g_cross_entropy(gx *x) {
    if (need_fp(x, IN(0), "logits")) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t V = lastdim(x, IN(0)), T = numel(x, IN(1)), ign = AI("ignore_index", -100);
    uint64_t loss = scratch(x, T * 4);
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), T * V * esz(t));
    ka_p(&a, ptr(x, IN(1)), T * 4);
    ka_p(&a, loss, T * 4);
    ka_p(&a, 0, 0); /* per-row lse not kept */
    ka_l(&a, T);
    ka_l(&a, V);
    ka_i(&a, ign);
    ka_f(&a, AF("softcap", 0)); /* Gemma 2's final_logit_softcapping (0: none) */
    ka_p(&a, flag_ptr(x), 4);
    if (launch(x, ename(e, sizeof e, "axo_cross_entropy_fwd", t), rows_grid(T), 1, 1, 256, 1, 0, &a)) return -1;
    kargs b = {0};
    ka_p(&b, loss, T * 4);
    ka_p(&b, ptr(x, IN(1)), T * 4);
    ka_l(&b, T);
    ka_l(&b, T); /* one run: the total */
    ka_l(&b, V);
    ka_i(&b, ign);
    ka_p(&b, ptr(x, OUT(0)), 4);
    ka_p(&b, 0, 0); /* count not needed: the runtime scales by its own token count */
    return launch(x, "axo_cross_entropy_reduce", 1, 1, 1, 256, 1, 0, &b);
}

static int g_cross_entropy_bwd(gx *x) {
    if (need_fp(x, IN(0), "logits")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(2)) != IR_F32) return unsupported(x, "cross_entropy_bwd with a %s scale", ir_dtype_name(dt(x, IN(2))));
    int64_t V = lastdim(x, IN(0)), T = numel(x, IN(1));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), T * V * esz(t));
    ka_p(&a, ptr(x, IN(1)), T * 4);
    ka_p(&a, ptr(x, IN(2)), 4);
    ka_p(&a, ptr(x, OUT(0)), T * V * esz(t));
    ka_l(&a, T);
    ka_l(&a, V);
    ka_i(&a, AI("ignore_index", -100));
    ka_f(&a, AF("softcap", 0));
    ka_p(&a, flag_ptr(x), 4);
    return launch(x, ename(e, sizeof e, "axo_cross_entropy_bwd", t), rows_grid(T), 1, 1, 256, 1, 0, &a);
}

/* One GEMM of a multi-GEMM node: planned (x->plan) as plan k of the node's
 * chain, run otherwise: C = op(A) op(B) (+ C when accumulate). */
static int gemm_k(gx *x, int k, int64_t M, int64_t N, int64_t K, int ta, int tb, ir_dtype t, ir_dtype tc, uint64_t A,
                  uint64_t B, uint64_t C, int accumulate) {
    gemm_plan *g = x->pr->gemm[x->ni], *prev = NULL;
    for (int i = 0; i < k && g; i++) prev = g, g = g->next;
    if (x->plan) {
        if (g || (k > 0 && !prev)) {
            ax_error(x->d, x->where, "internal error: GEMM %d of this node planned out of order", k);
            return -1;
        }
        g = calloc(1, sizeof *g);
        if (!g) {
            ax_error(x->d, x->where, "out of host memory");
            return -1;
        }
        /* while planning, buffers sit at their offsets from 256-aligned bases: the low bits are the alignment */
        uint64_t lo = (A | B | C | x->gemm_align) & 255;
        *g = (gemm_plan){.M = M, .N = N, .K = K, .ta = ta, .tb = tb, .t = t, .tc = tc, .align = lo ? (uint32_t)(lo & -lo) : 256};
        if (prev) prev->next = g;
        else x->pr->gemm[x->ni] = g;
        return gemm_prepare(x, g);
    }
    if (!g || g->M != M || g->N != N || g->K != K) {
        ax_error(x->d, x->where, "internal error: GEMM %d of this node was not planned with this shape", k);
        return -1;
    }
    if (!arg_ok(x, A, M * K * esz(t))) return bad_arg(x, "GEMM operand a", A, M * K * esz(t));
    if (!arg_ok(x, B, K * N * esz(t))) return bad_arg(x, "GEMM operand b", B, K * N * esz(t));
    if (!arg_ok(x, C, M * N * esz(tc))) return bad_arg(x, "GEMM result", C, M * N * esz(tc));
    x->dev->counts.gemms++;
    if (x->dev->dry && x->dev->emu) {
        eop o = {.kind = EOP_GEMM, .M = M, .N = N, .K = K, .ta = ta, .tb = tb, .t = t, .tc = tc, .A = A, .B = B, .C = C,
                 .acc = accumulate};
        snprintf(o.where, sizeof o.where, "%s", x->where);
        return eq_push(x->dev, &o, x->d);
    }
    if (x->dev->dry) return 0;
#ifdef AXO_HAVE_CUDA
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    if (ckb(x->d, x->where, "cublasLtMatmul",
            cublasLtMatmul(x->dev->lt, g->op, &one, (const void *)(uintptr_t)B, g->la, (const void *)(uintptr_t)A, g->lb,
                           &beta, (const void *)(uintptr_t)C, g->lc, (void *)(uintptr_t)C, g->lc, &g->algo,
                           (void *)(uintptr_t)x->dev->ws, (size_t)x->dev->ws_bytes, x->dev->stream)))
        return -1;
    if (x->dev->sync_each) return ck(x->d, x->where, "cublasLtMatmul (kernel)", cudaStreamSynchronize(x->dev->stream));
    return 0;
#else
    return -1;
#endif
}

/* linear_cross_entropy, chunk by chunk (the CPU's ck_linear_cross_entropy
 * with bf16 rounding points): logits_c = h_c W^T in f32 (scratch), the
 * chunk kernel writes the rows' losses and dl_c (in place for f32, a bf16
 * scratch for bf16), dh_c = dl_c W, dW (+)= dl_c^T h_c (accumulating from
 * the second chunk on), then one fixed-order sum of the losses: the total,
 * or with {rows=n} one per run of T/n tokens. dscale f32[n] (per-sequence,
 * dpo_loss's coef) scales each run of T/n tokens by its own entry. Scratch:
 * chunk x V x (4 + 2 for bf16) + 4 T bytes, never [T,V]. */
static int g_linear_cross_entropy(gx *x) {
    if (need_fp(x, IN(0), "hidden states")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, IN(1)) != t || dt(x, OUT(1)) != t || dt(x, OUT(2)) != t) return unsupported(x, "linear_cross_entropy with mixed dtypes");
    int want_dw = (int)AI("dw", 1); /* 0: a frozen head; OUT(2) is a zero scalar */
    int want_dh = (int)AI("dh", 1); /* 0: eval_step; OUT(1) is a zero scalar */
    if (dt(x, IN(3)) != IR_F32) return unsupported(x, "linear_cross_entropy with a %s scale", ir_dtype_name(dt(x, IN(3))));
    int64_t H = lastdim(x, IN(0)), V = numel(x, IN(1)) / (H ? H : 1), T = numel(x, IN(2));
    int64_t C = AI("chunk", 1), ign = AI("ignore_index", -100);
    double softcap = AF("softcap", 0); /* Gemma 2's final_logit_softcapping (0: none): the chunk kernel's */
    /* the verifier's rules: both counts divide T (a scalar is a count of 1) */
    int64_t nscale = numel(x, IN(3)), nrows = numel(x, OUT(0));
    if (C > T) C = T;
    if (C < 1) C = 1;
    uint64_t h = ptr(x, IN(0)), w = ptr(x, IN(1)), tg = ptr(x, IN(2)), dh = ptr(x, OUT(1)), dw = ptr(x, OUT(2));
    uint64_t logits = scratch(x, C * V * 4), dl = t == IR_F32 ? logits : scratch(x, C * V * 2), loss = scratch(x, T * 4);
    if (T < 1 || H < 1 || V < 1) return unsupported(x, "an empty linear_cross_entropy");
    /* plans: the logits GEMM and the wanted dh/dW ones for a full chunk, as many more for a shorter last
     * one, numbered densely (gemm_k finds plan k by walking the chain) */
    int nshapes = T % C ? 2 : 1, ngemm = 1 + want_dh + want_dw;
    /* one plan serves every full chunk: its h/dh operands sit C*H*esz bytes apart */
    x->gemm_align = (uint32_t)((C * H * esz(t)) & 255);
    char e[64];
    ename(e, sizeof e, "axo_lce_chunk", t);
    for (int64_t t0 = 0; t0 < T; t0 += C) {
        int64_t c = T - t0 < C ? T - t0 : C;
        int base = c == C ? 0 : ngemm;
        if (x->plan && t0 > 0 && (nshapes == 1 || base == 0)) continue; /* shapes already planned */
        uint64_t hc = h + (uint64_t)(t0 * H * esz(t));
        if (gemm_k(x, base, c, V, H, 0, 1, t, IR_F32, hc, w, logits, 0)) return -1;
        kargs a = {0};
        ka_p(&a, logits, c * V * 4);
        ka_p(&a, tg + (uint64_t)(t0 * 4), c * 4);
        ka_p(&a, ptr(x, IN(3)), nscale * 4);
        ka_p(&a, dl, c * V * esz(t));
        ka_p(&a, loss + (uint64_t)(t0 * 4), c * 4);
        ka_l(&a, c);
        ka_l(&a, V);
        ka_l(&a, t0);
        ka_l(&a, T / nscale);
        ka_i(&a, ign);
        ka_f(&a, softcap);
        ka_p(&a, flag_ptr(x), 4);
        if (launch(x, e, rows_grid(c), 1, 1, 512, 1, 0, &a)) return -1;
        if (want_dh && gemm_k(x, base + 1, c, H, V, 0, 0, t, t, dl, w, dh + (uint64_t)(t0 * H * esz(t)), 0)) return -1;
        if (want_dw && gemm_k(x, base + want_dh + 1, V, H, c, 1, 0, t, t, dl, hc, dw, t0 > 0)) return -1;
    }
    if (!want_dw && x_memset(x, dw, 0, esz(t))) return -1;
    if (!want_dh && x_memset(x, dh, 0, esz(t))) return -1;
    kargs b = {0};
    ka_p(&b, loss, T * 4);
    ka_p(&b, tg, T * 4);
    ka_l(&b, T);
    ka_l(&b, T / nrows);
    ka_l(&b, V);
    ka_i(&b, ign);
    ka_p(&b, ptr(x, OUT(0)), nrows * 4);
    ka_p(&b, 0, 0);
    return launch(x, "axo_cross_entropy_reduce", rows_grid(nrows), 1, 1, 256, 1, 0, &b);
}

/* dpo_loss over P pairs (the CPU's ck_dpo_loss: ir/dpo_loss.h, in double): f32 in and out, one block */
static int g_dpo_loss(gx *x) {
    int64_t P = numel(x, OUT(0));
    int t[AXO_DPO_MAXTERMS] = {0};
    double w[AXO_DPO_MAXTERMS] = {0};
    int nt = axo_dpo_parse(AS("loss_type", "sigmoid"), AS("loss_weights", NULL), t, w);
    if (nt < 0) return unsupported(x, "dpo_loss with loss_type \"%s\"", AS("loss_type", "sigmoid"));
    int packed = 0;
    for (int k = 0; k < nt; k++) packed |= t[k] << (4 * k);
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), 2 * P * 4);
    ka_p(&a, ptr(x, IN(1)), 2 * P * 4);
    ka_p(&a, ptr(x, IN(2)), P * 4);
    ka_p(&a, x->n->nin > 3 ? ptr(x, IN(3)) : 0, x->n->nin > 3 ? 2 * P * 4 : 0);
    ka_l(&a, P);
    ka_d(&a, AF("beta", 0.1));
    ka_d(&a, AF("label_smoothing", 0));
    ka_d(&a, AF("discopop_tau", 0.05));
    ka_d(&a, AF("gamma", 0));
    ka_i(&a, packed);
    ka_i(&a, nt);
    for (int k = 0; k < AXO_DPO_MAXTERMS; k++) ka_d(&a, w[k]);
    ka_p(&a, ptr(x, OUT(0)), P * 4);
    ka_p(&a, ptr(x, OUT(1)), 2 * P * 4);
    return launch(x, "axo_dpo_loss", 1, 1, 1, 256, 1, 0, &a);
}

static int g_sumsq(gx *x) {
    if (need_fp(x, IN(0), "sumsq input")) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t n = numel(x, IN(0)), P = (n + 256 * vec(t) - 1) / (256 * vec(t)), cap = 4 * (int64_t)x->dev->sm_count;
    if (cap > 1024) cap = 1024;
    if (P > cap) P = cap;
    if (P < 1) P = 1;
    uint64_t part = scratch(x, P * 8);
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_l(&a, n);
    ka_p(&a, part, P * 8);
    if (launch(x, ename(e, sizeof e, "axo_sumsq_partial", t), P, 1, 1, 256, 1, 0, &a)) return -1;
    kargs b = {0};
    ka_p(&b, part, P * 8);
    ka_i(&b, P);
    ka_p(&b, ptr(x, OUT(0)), 4);
    ka_i(&b, 0);
    return launch(x, "axo_sumsq_final", 1, 1, 1, 256, 1, 0, &b);
}

static int g_clip_coef(gx *x) {
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), 4);
    ka_p(&a, ptr(x, OUT(0)), 4);
    ka_d(&a, AF("max_norm", 1.0));
    return launch(x, "axo_clip_coef", 1, 1, 1, 32, 1, 0, &a);
}

/* Offset, in elements of the whole tensor, of this rank's block of a global
 * of type t: rt_block_first on the device state's mesh coordinates. */
static int64_t block_first(gx *x, const ir_type *t) {
    rt_state s;
    memset(&s, 0, sizeof s);
    s.m = x->pr->m;
    memcpy(s.coord, x->st->coord, sizeof s.coord);
    return rt_block_first(&s, t);
}

/* Pure bf16 (`bfloat16: true`): p, g, m, v bf16, the update stochastically
 * rounded with bits keyed on (step, salt, the element's index in the whole
 * tensor), exactly as the CPU executor's ck_adamw_step_sr_bf16. */
static int adamw_sr(gx *x, int64_t n) {
    if (dt(x, IN(1)) != IR_BF16 || dt(x, IN(2)) != IR_BF16 || dt(x, IN(3)) != IR_BF16)
        return unsupported(x, "adamw of a bf16 parameter with gradient %s and moments %s/%s (pure bf16: all bf16)",
                           ir_dtype_name(dt(x, IN(1))), ir_dtype_name(dt(x, IN(2))), ir_dtype_name(dt(x, IN(3))));
    kargs a = {0};
    for (int i = 0; i < 4; i++) ka_p(&a, ptr(x, IN(i)), n * 2); /* p, g, m, v */
    ka_l(&a, n);
    ka_l(&a, block_first(x, ty(x, IN(0))));
    for (int i = 4; i < 7; i++) ka_p(&a, ptr(x, IN(i)), 4); /* lr, step, grad scale: device scalars */
    ka_p(&a, x->n->nin > 7 ? ptr(x, IN(7)) : 0, x->n->nin > 7 ? 12 : 0); /* the step's beta1 (3 floats), or the attr's */
    ka_d(&a, AF("beta1", 0.9));
    ka_d(&a, AF("beta2", 0.999));
    ka_d(&a, AF("eps", 1e-8));
    ka_d(&a, AF("weight_decay", 0));
    ka_i(&a, (int32_t)(uint32_t)AI("salt", 0)); /* the bits of (uint32_t)salt, as x_adamw */
    ka_d(&a, AF("lr_scale", 1.0));                 /* LoRA+: the lr is *lr x lr_scale, as x_adamw */
    return launch(x, "axo_adamw_sr_bf16", blocks(x, n, 256), 1, 1, 256, 1, 0, &a);
}

static int g_adamw(gx *x) {
    if (need_fp(x, IN(1), "adamw gradient")) return -1;
    ir_dtype gt = dt(x, IN(1));
    int64_t n = numel(x, IN(0));
    if (numel(x, IN(1)) != n || numel(x, IN(2)) != n || numel(x, IN(3)) != n)
        return unsupported(x, "adamw over blocks of different sizes");
    if (dt(x, IN(0)) == IR_BF16) return adamw_sr(x, n);
    if (dt(x, IN(0)) != IR_F32 || dt(x, IN(2)) != IR_F32 || dt(x, IN(3)) != IR_F32)
        return unsupported(x, "adamw of %s parameters with %s/%s moments (f32, or all bf16)", ir_dtype_name(dt(x, IN(0))),
                           ir_dtype_name(dt(x, IN(2))), ir_dtype_name(dt(x, IN(3))));
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * 4);
    ka_p(&a, ptr(x, IN(1)), n * esz(gt));
    ka_p(&a, ptr(x, IN(2)), n * 4);
    ka_p(&a, ptr(x, IN(3)), n * 4);
    if (gt == IR_BF16) ka_p(&a, 0, 0); /* p_bf16: the plan's own store writes the bf16 copy */
    ka_l(&a, n);
    for (int i = 4; i < 7; i++) ka_p(&a, ptr(x, IN(i)), 4); /* lr, step, grad scale: device scalars */
    ka_p(&a, x->n->nin > 7 ? ptr(x, IN(7)) : 0, x->n->nin > 7 ? 12 : 0); /* the step's beta1 (3 floats), or the attr's */
    ka_d(&a, AF("beta1", 0.9));
    ka_d(&a, AF("beta2", 0.999));
    ka_d(&a, AF("eps", 1e-8));
    ka_d(&a, AF("weight_decay", 0));
    ka_d(&a, AF("lr_scale", 1.0)); /* LoRA+: the lr is *lr x lr_scale, as x_adamw */
    return launch(x, gt == IR_BF16 ? "axo_adamw_bf16" : "axo_adamw_f32", blocks(x, n, 256), 1, 1, 256, 1, 0, &a);
}

/* 8-bit AdamW state (adamw8; ck_adamw8_step, codegen/kernels/adamw.cuh):
 * p [R,K] f32, or bf16 stochastically rounded at this rank's offset in the
 * whole tensor (as adamw_sr); g f32 or bf16; m, v u8 codes (one byte an
 * element on the device) and their f32 maxima [R, ceil(K / AXO_Q8_BLOCK)],
 * all split alike by rows (blocks never cross rows, so a rank's rows hold
 * whole blocks). */
static int g_adamw8(gx *x) {
    ir_dtype pt = dt(x, IN(0)), gt = dt(x, IN(1));
    if (pt != IR_F32 && pt != IR_BF16)
        return unsupported(x, "adamw8 of a %s parameter (f32, or bf16 with stochastic rounding)", ir_dtype_name(pt));
    if (need_fp(x, IN(1), "adamw8 gradient")) return -1;
    if (dt(x, IN(2)) != IR_U8 || dt(x, IN(3)) != IR_U8 || dt(x, IN(4)) != IR_F32 || dt(x, IN(5)) != IR_F32)
        return unsupported(x, "adamw8 with %s/%s moments and %s/%s block maxima (u8 codes, f32 maxima)",
                           ir_dtype_name(dt(x, IN(2))), ir_dtype_name(dt(x, IN(3))), ir_dtype_name(dt(x, IN(4))),
                           ir_dtype_name(dt(x, IN(5))));
    const ir_type *t = ty(x, IN(0));
    if (t->rank != 2 || t->dims[1] < 1)
        return unsupported(x, "adamw8 of a parameter of rank %d (a 2-d [R,K] weight)", t->rank);
    for (int k = 0; k < 6; k++) {
        const ir_type *tk = ty(x, IN(k));
        if (tk->shard.axis >= 0 && tk->shard.dim != 0)
            return unsupported(x, "adamw8 operand %d split on dim %d (rows only: blocks run along a row)", k,
                               tk->shard.dim);
    }
    int64_t K = t->dims[1], n = numel(x, IN(0)), R = n / K, nb = (K + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK;
    if (numel(x, IN(1)) != n || numel(x, IN(2)) != n || numel(x, IN(3)) != n || lastdim(x, IN(2)) != K ||
        lastdim(x, IN(3)) != K || numel(x, IN(4)) != R * nb || numel(x, IN(5)) != R * nb || lastdim(x, IN(4)) != nb ||
        lastdim(x, IN(5)) != nb)
        return unsupported(x,
                           "adamw8 whose gradient, moments or block maxima are not split as the parameter (this rank: "
                           "%lld rows of %lld, so maxima [%lld, %lld])",
                           (long long)R, (long long)K, (long long)R, (long long)nb);
    if (R < 1) return 0; /* no rows on this rank */
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(pt));
    ka_p(&a, ptr(x, IN(1)), n * esz(gt));
    ka_p(&a, ptr(x, IN(2)), bytes_of(IR_U8, n));
    ka_p(&a, ptr(x, IN(3)), bytes_of(IR_U8, n));
    ka_p(&a, ptr(x, IN(4)), R * nb * 4);
    ka_p(&a, ptr(x, IN(5)), R * nb * 4);
    ka_l(&a, R);
    ka_l(&a, K);
    ka_l(&a, block_first(x, t));
    for (int i = 6; i < 9; i++) ka_p(&a, ptr(x, IN(i)), 4); /* lr, step, grad scale: device scalars */
    ka_p(&a, x->n->nin > 9 ? ptr(x, IN(9)) : 0, x->n->nin > 9 ? 12 : 0); /* the step's beta1 (3 floats), or the attr's */
    ka_d(&a, AF("beta1", 0.9));
    ka_d(&a, AF("beta2", 0.999));
    ka_d(&a, AF("eps", 1e-8));
    ka_d(&a, AF("weight_decay", 0));
    ka_i(&a, (int32_t)(uint32_t)AI("salt", 0)); /* the bits of (uint32_t)salt, as x_adamw8 */
    ka_i(&a, gt == IR_BF16);
    ka_d(&a, AF("lr_scale", 1.0)); /* LoRA+: the lr is *lr x lr_scale, as x_adamw8 */
    /* one warp per block of AXO_Q8_BLOCK, 8 a CUDA block */
    return launch(x, pt == IR_BF16 ? "axo_adamw8_bf16" : "axo_adamw8_f32", blocks(x, R * nb, 8), 1, 1, 256, 1, 0, &a);
}

static int g_store(gx *x) {
    ir_dtype to = dt(x, IN(0)), from = dt(x, IN(1));
    int64_t n = numel(x, IN(0));
    if (numel(x, IN(1)) < n) return unsupported(x, "store of %lld elements into %lld", (long long)numel(x, IN(1)), (long long)n);
    if (from == to && to != IR_F16) /* bits, whatever the dtype (nf4 and u8 packed alike) */
        return x_copy(x, ptr(x, IN(0)), ptr(x, IN(1)), bytes_of(to, n));
    if (need_fp(x, IN(0), "store destination") || need_fp(x, IN(1), "stored value")) return -1;
    return convert_launch(x, ptr(x, IN(1)), from, ptr(x, IN(0)), to, n);
}

static int g_acc(gx *x) {
    if (need_fp(x, IN(0), "acc destination") || need_fp(x, IN(1), "accumulated value")) return -1;
    ir_dtype to = dt(x, IN(0)), from = dt(x, IN(1));
    int64_t n = numel(x, IN(0));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(to));
    ka_p(&a, ptr(x, IN(1)), n * esz(from));
    ka_l(&a, n);
    const char *k = from == to ? ename(e, sizeof e, "axo_acc", to) : to == IR_F32 ? "axo_acc_f32_bf16" : "axo_acc_bf16_f32";
    return launch(x, k, blocks(x, n, to == from ? 256 * vec(to) : 256), 1, 1, 256, 1, 0, &a);
}

static int g_zero(gx *x) {
    return x_memset(x, ptr(x, IN(0)), 0, nbytes(x, IN(0)));
}

/* ---- LoRA dropout, QLoRA weights (codegen/kernels/quant.cuh, ir/quant.h) ---------------- */
/* y = keep(seed, salt, i) ? x * k : 0; the threshold and k come from
 * ir/quant.h on the host, exactly as ck_dropout_f32 computes them. */
static int g_dropout(gx *x) {
    if (need_fp(x, IN(0), "dropout input")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, OUT(0)) != t) return unsupported(x, "dropout from %s to %s", ir_dtype_name(t), ir_dtype_name(dt(x, OUT(0))));
    if (dt(x, IN(1)) != IR_I32 || numel(x, IN(1)) != 1) return unsupported(x, "dropout whose seed is not an i32 scalar");
    double p = AF("p", 0);
    if (!(p >= 0 && p < 1)) return unsupported(x, "dropout with p = %g", p);
    int64_t n = numel(x, OUT(0));
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), 4);
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    ka_i(&a, (int32_t)(uint32_t)AI("salt", 0)); /* the bits of (uint32_t)salt, as x_dropout */
    ka_i(&a, (int32_t)axo_dropout_threshold(p));
    ka_f(&a, axo_dropout_scale(p));
    return launch(x, ename(e, sizeof e, "axo_dropout", t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}

/* NEFTune: y = x + mag * unit(keys[row], salt, h) over rows of H (the last
 * dim), exactly as ck_neftune_f32; keys are the runtime input, one per row. */
static int g_neftune(gx *x) {
    if (need_fp(x, IN(0), "neftune input")) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, OUT(0)) != t) return unsupported(x, "neftune from %s to %s", ir_dtype_name(t), ir_dtype_name(dt(x, OUT(0))));
    const ir_type *xt = ty(x, IN(0));
    int64_t n = numel(x, OUT(0)), H = xt->rank ? xt->dims[xt->rank - 1] : 1;
    if (dt(x, IN(1)) != IR_I32 || H < 1 || numel(x, IN(1)) * H != n)
        return unsupported(x, "neftune whose keys are not one i32 per row of its input");
    double mag = AF("mag", 0);
    if (!(mag >= 0 && mag <= 3.4e38)) return unsupported(x, "neftune with mag = %g", mag);
    if (n < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), (n / H) * 4);
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    ka_l(&a, H);
    ka_i(&a, (int32_t)(uint32_t)AI("salt", 0)); /* the bits of (uint32_t)salt, as x_neftune */
    ka_f(&a, (float)mag);
    ka_p(&a, x->n->nin > 2 ? ptr(x, IN(2)) : 0, x->n->nin > 2 ? 4 : 0); /* the micro step's mag, or the attr's */
    return launch(x, ename(e, sizeof e, "axo_neftune", t), blocks(x, n, 256 * vec(t)), 1, 1, 256, 1, 0, &a);
}

/* unfrozen_parameters' row ranges: a copy (unless in place), then the rows
 * outside `rows` set to zero bytes (0.0 in f32 and bf16 alike); no kernel. */
static int g_mask_rows(gx *x) {
    if (need_fp(x, IN(0), "mask_rows input")) return -1;
    if (dt(x, OUT(0)) != dt(x, IN(0))) return unsupported(x, "mask_rows changing the dtype");
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const ir_type *t = ty(x, OUT(0));
    const int64_t R = t->dims[0], rowb = R ? nbytes(x, OUT(0)) / R : 0;
    const uint64_t y = ptr(x, OUT(0)), src = ptr(x, IN(0));
    if (y != src && x_copy(x, y, src, nbytes(x, OUT(0))) != 0) return -1;
    int64_t from = 0;
    for (int i = 0; i <= r->n; i += 2) {
        const int64_t to = i < r->n ? r->ints[i] : R;
        if (to > from && x_memset(x, y + (uint64_t)(from * rowb), 0, (to - from) * rowb) != 0) return -1;
        if (i < r->n) from = r->ints[i + 1];
    }
    return 0;
}

/* Trainable tokens: index_copy is a copy of the table and one row copy from src per index (a handful of rows:
 * PEFT's trainable_token_indices); take_rows the copies the other way. Both operands have one dtype; no kernel. */
static int g_index_copy(gx *x) {
    if (need_fp(x, IN(0), "index_copy table")) return -1;
    if (dt(x, IN(1)) != dt(x, IN(0))) return unsupported(x, "index_copy with src in another dtype than the table");
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const ir_type *t = ty(x, OUT(0));
    const int64_t rowb = t->dims[0] ? nbytes(x, OUT(0)) / t->dims[0] : 0;
    const uint64_t y = ptr(x, OUT(0)), tab = ptr(x, IN(0)), src = ptr(x, IN(1));
    if (y != tab && x_copy(x, y, tab, nbytes(x, OUT(0))) != 0) return -1;
    for (int i = 0; i < r->n; i++)
        if (x_copy(x, y + (uint64_t)(r->ints[i] * rowb), src + (uint64_t)((int64_t)i * rowb), rowb) != 0) return -1;
    return 0;
}

/* slice / slice_bwd (codegen/kernels/misc.cuh): a strided copy of the rows' columns [begin, begin + len) */
static int g_slice(gx *x, int bwd) {
    if (need_fp(x, IN(0), bwd ? "slice_bwd input" : "slice input")) return -1;
    const ir_dtype t = dt(x, IN(0));
    if (dt(x, OUT(0)) != t) return unsupported(x, "slice changing the dtype");
    const int64_t W = lastdim(x, bwd ? OUT(0) : IN(0)), len = lastdim(x, bwd ? IN(0) : OUT(0));
    const int64_t rows = len ? numel(x, bwd ? IN(0) : OUT(0)) / len : 0;
    if (rows * W != numel(x, bwd ? OUT(0) : IN(0))) return unsupported(x, "slice of a sharded operand");
    if (rows < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), numel(x, IN(0)) * esz(t));
    ka_p(&a, ptr(x, OUT(0)), numel(x, OUT(0)) * esz(t));
    ka_l(&a, rows);
    ka_l(&a, W);
    ka_l(&a, ir_attr_int(x->n->attrs, x->n->nattrs, "begin", 0));
    ka_l(&a, len);
    return launch(x, ename(e, sizeof e, bwd ? "axo_slice_bwd" : "axo_slice", t), blocks(x, rows * (bwd ? W : len), 256), 1,
                  1, 256, 1, 0, &a);
}

static int g_take_rows(gx *x) {
    if (need_fp(x, IN(0), "take_rows input")) return -1;
    if (dt(x, OUT(0)) != dt(x, IN(0))) return unsupported(x, "take_rows changing the dtype");
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const ir_type *t = ty(x, IN(0));
    const int64_t rowb = t->dims[0] ? nbytes(x, IN(0)) / t->dims[0] : 0;
    const uint64_t y = ptr(x, OUT(0)), src = ptr(x, IN(0));
    for (int i = 0; i < r->n; i++)
        if (x_copy(x, y + (uint64_t)((int64_t)i * rowb), src + (uint64_t)(r->ints[i] * rowb), rowb) != 0) return -1;
    return 0;
}

/* DoRA (codegen/kernels/dora.cuh): the row norms of w + s b a, one block
 * per row; operands replicated (the shard pass gathers the params). */
static int g_dora_norm(gx *x) {
    if (need_fp(x, IN(0), "dora_norm weight")) return -1;
    ir_dtype t = dt(x, IN(0));
    const ir_type *wt = ty(x, IN(0)), *bt = ty(x, IN(1));
    if (dt(x, IN(1)) != IR_F32 || dt(x, IN(2)) != IR_F32 || wt->rank != 2 || bt->rank != 2)
        return unsupported(x, "dora_norm of a weight that is not [N,K] with f32 lora matrices");
    int64_t N = wt->dims[0], K = wt->dims[1], r = bt->dims[1];
    if (numel(x, IN(0)) != N * K || numel(x, IN(1)) != N * r || numel(x, IN(2)) != r * K)
        return unsupported(x, "dora_norm of sharded operands");
    if (N < 1) return 0;
    if (N > 2147483647) return unsupported(x, "dora_norm of more than 2^31 rows");
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), N * K * esz(t));
    ka_p(&a, ptr(x, IN(1)), N * r * 4);
    ka_p(&a, ptr(x, IN(2)), r * K * 4);
    ka_p(&a, ptr(x, OUT(0)), N * 4);
    ka_l(&a, N);
    ka_l(&a, K);
    ka_l(&a, r);
    ka_f(&a, (float)AF("scaling", 1));
    return launch(x, ename(e, sizeof e, "axo_dora_norm", t), (unsigned)N, 1, 1, 256, 1, 0, &a);
}

/* PEFT's ParamWrapper LoRA (codegen/kernels/dora.cuh): w' = w + s B_e A_e, and da, db from dw' */
static int g_lora_delta(gx *x, int bwd) {
    const int32_t w = bwd ? IN(2) : IN(0), av = bwd ? IN(0) : IN(1), bv = bwd ? IN(1) : IN(2);
    if (need_fp(x, w, "lora_delta weight")) return -1;
    const ir_dtype t = dt(x, w);
    const ir_type *wt = ty(x, w), *at = ty(x, av);
    const int rk = wt->rank, tr = (int)AI("t", 0); /* tr: w [E, I, O] (gpt-oss's experts) */
    const int64_t E = rk == 3 ? wt->dims[0] : 1, O = wt->dims[rk - (tr ? 1 : 2)], I = wt->dims[rk - (tr ? 2 : 1)],
                  r = E ? at->dims[0] / E : 0;
    if (dt(x, av) != t || dt(x, bv) != t || dt(x, OUT(0)) != t || (bwd && dt(x, OUT(1)) != t))
        return unsupported(x, "lora_delta with factors of another dtype than the weight's (%s)", ir_dtype_name(t));
    if (numel(x, w) != E * O * I || numel(x, av) != E * r * I || numel(x, bv) != O * r * E)
        return unsupported(x, "lora_delta of sharded operands");
    if (E * O * I < 1 || r < 1) return 0;
    char e[64];
    const double s = AF("scale", 1);
    kargs a = {0};
    ka_p(&a, ptr(x, av), E * r * I * esz(t));
    ka_p(&a, ptr(x, bv), O * r * E * esz(t));
    if (!bwd) {
        kargs f = {0};
        ka_p(&f, ptr(x, w), E * O * I * esz(t));
        ka_p(&f, ptr(x, av), E * r * I * esz(t));
        ka_p(&f, ptr(x, bv), O * r * E * esz(t));
        ka_p(&f, ptr(x, OUT(0)), E * O * I * esz(t));
        ka_l(&f, E), ka_l(&f, O), ka_l(&f, I), ka_l(&f, r);
        ka_d(&f, s);
        ka_i(&f, tr);
        return launch(x, ename(e, sizeof e, "axo_lora_delta", t), blocks(x, E * O * I, 256), 1, 1, 256, 1, 0, &f);
    }
    ka_p(&a, ptr(x, w), E * O * I * esz(t));
    kargs b2 = a;
    ka_p(&a, ptr(x, OUT(0)), E * r * I * esz(t));
    ka_p(&b2, ptr(x, OUT(1)), O * r * E * esz(t));
    for (int k = 0; k < 2; k++) {
        kargs *q = k ? &b2 : &a;
        ka_l(q, E), ka_l(q, O), ka_l(q, I), ka_l(q, r);
        ka_d(q, s);
        ka_i(q, tr);
    }
    const int64_t nj = (r + 15) / 16;
    if (E * O > 2147483647 || nj > 65535) return unsupported(x, "lora_delta over more than 2^31 weight rows");
    if (launch(x, ename(e, sizeof e, "axo_lora_delta_da", t), blocks(x, E * nj * I, 256), 1, 1, 256, 1, 0, &a)) return -1;
    return launch(x, ename(e, sizeof e, "axo_lora_delta_db", t), (unsigned)(E * O), (unsigned)nj, 1, 256, 1, 0, &b2);
}

static int dora_operands_ok(gx *x, int64_t *R, int64_t *N) {
    if (need_fp(x, IN(0), "dora_scale input")) return -1;
    ir_dtype t = dt(x, IN(0));
    *N = lastdim(x, IN(0));
    int64_t n = numel(x, IN(0));
    *R = *N ? n / *N : 0;
    if (dt(x, IN(1)) != t || numel(x, IN(1)) != n || dt(x, IN(2)) != IR_F32 || dt(x, IN(3)) != IR_F32 ||
        numel(x, IN(2)) != *N || numel(x, IN(3)) != *N)
        return unsupported(x, "dora_scale operands of other types or sizes than base [R,N], lora [R,N], m, norm f32[N]");
    return 0;
}

static int g_dora_scale(gx *x) {
    int64_t R, N;
    if (dora_operands_ok(x, &R, &N)) return -1;
    ir_dtype t = dt(x, IN(0));
    if (dt(x, OUT(0)) != t) return unsupported(x, "dora_scale from %s to %s", ir_dtype_name(t), ir_dtype_name(dt(x, OUT(0))));
    int64_t n = R * N;
    if (n < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), n * esz(t));
    ka_p(&a, ptr(x, IN(2)), N * 4);
    ka_p(&a, ptr(x, IN(3)), N * 4);
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, R);
    ka_l(&a, N);
    ka_f(&a, (float)AF("scaling", 1));
    return launch(x, ename(e, sizeof e, "axo_dora_scale", t), blocks(x, n, 256), 1, 1, 256, 1, 0, &a);
}

/* dbase, dlora and fp32 column partials of dy (base + s lora) in one pass
 * (bias_grad's grid), then dm = their sum / norm. */
static int g_dora_scale_bwd(gx *x) {
    int64_t R, N;
    if (dora_operands_ok(x, &R, &N)) return -1;
    ir_dtype t = dt(x, IN(0));
    int64_t n = R * N;
    if (dt(x, IN(4)) != t || numel(x, IN(4)) != n || dt(x, OUT(0)) != t || dt(x, OUT(1)) != t || dt(x, OUT(2)) != IR_F32)
        return unsupported(x, "dora_scale_bwd with dy or results of other types than its base");
    if (N < 1) return 0;
    int64_t cols = (N + 31) / 32, P = colsum_parts(x, R, cols);
    uint64_t part = scratch(x, P * N * 4);
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), n * esz(t));
    ka_p(&a, ptr(x, IN(1)), n * esz(t));
    ka_p(&a, ptr(x, IN(2)), N * 4);
    ka_p(&a, ptr(x, IN(3)), N * 4);
    ka_p(&a, ptr(x, IN(4)), n * esz(t));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_p(&a, ptr(x, OUT(1)), n * esz(t));
    ka_p(&a, part, P * N * 4);
    ka_l(&a, R);
    ka_l(&a, N);
    ka_f(&a, (float)AF("scaling", 1));
    if (launch(x, ename(e, sizeof e, "axo_dora_scale_bwd", t), cols, P, 1, 32, 8, 0, &a)) return -1;
    kargs b = {0};
    ka_p(&b, part, P * N * 4);
    ka_i(&b, (int32_t)P);
    ka_l(&b, N);
    ka_p(&b, ptr(x, IN(3)), N * 4);
    ka_p(&b, ptr(x, OUT(2)), N * 4);
    return launch(x, "axo_dora_dm_reduce", (N + 255) / 256, 1, 1, 256, 1, 0, &b);
}

/* w[N,K] = code[q] * scale(rowmax[row], absmax step) from the packed codes
 * and steps of this rank's rows (operands split alike by rows, or not at all). */
static int g_dequant_nf4(gx *x) {
    const ir_type *qt = ty(x, IN(0));
    ir_dtype to = dt(x, OUT(0));
    if (qt->dtype != IR_NF4 || dt(x, IN(1)) != IR_U8 || dt(x, IN(2)) != IR_F32)
        return unsupported(x, "dequant_nf4 of %s codes, %s steps and %s row maxima (nf4, u8, f32)",
                           ir_dtype_name(qt->dtype), ir_dtype_name(dt(x, IN(1))), ir_dtype_name(dt(x, IN(2))));
    if (need_fp(x, OUT(0), "dequant_nf4 result")) return -1;
    int64_t K = qt->rank >= 2 ? qt->dims[qt->rank - 1] : 0;
    if (K < 2 || K % 2 || (qt->shard.axis >= 0 && qt->shard.dim != 0))
        return unsupported(x, "dequant_nf4 of codes that are not [..., N, K] rows of whole bytes (K even)");
    int64_t N = numel(x, IN(0)) / K, nb = (K + AXO_NF4_BLOCK - 1) / AXO_NF4_BLOCK; /* the last block may be short */
    if (numel(x, IN(1)) != N * nb || numel(x, IN(2)) != N || numel(x, OUT(0)) != N * K)
        return unsupported(x, "dequant_nf4 whose codes, steps and row maxima hold different rows");
    if (N < 1) return 0;
    char e[64];
    kargs a = {0};
    ka_p(&a, ptr(x, IN(0)), bytes_of(IR_NF4, N * K));
    ka_p(&a, ptr(x, IN(1)), N * nb);
    ka_p(&a, ptr(x, IN(2)), N * 4);
    ka_p(&a, ptr(x, OUT(0)), N * K * esz(to));
    ka_l(&a, N);
    ka_l(&a, K);
    return launch(x, ename(e, sizeof e, "axo_dequant_nf4", to), blocks(x, (N * K + 7) / 8, 256), 1, 1, 256, 1, 0, &a);
}

/* ---- collectives ---------------------------------------------------------------------- */
static int coll_axis(gx *x, int64_t *n) {
    int ax = ir_mesh_find(x->pr->m, AS("axis", ""));
    *n = ax >= 0 ? x->pr->m->mesh_sizes[ax] : 0;
    if (ax < 0) {
        ax_error(x->d, x->where, "unknown mesh axis \"%s\"", AS("axis", ""));
        return -1;
    }
    if (*n > 1 && !x->plan && !x->st->coll) {
        ax_error(x->d, x->where, "mesh axis %s has %lld ranks but no device communicator is attached", AS("axis", ""),
                 (long long)*n);
        return -1;
    }
    return ax;
}

static int coll_fail(gx *x, int rc) {
    if (rc) ax_error(x->d, x->where, "collective failed (a peer rank failed or timed out)");
    return rc ? -1 : 0;
}

#ifdef AXO_HAVE_CUDA
#define STREAM_ARG(x) ((void *)(x)->dev->stream)
#else
#define STREAM_ARG(x) NULL
#endif

static int g_all_reduce(gx *x) {
    int64_t n;
    int ax = coll_axis(x, &n);
    if (ax < 0 || need_fp(x, OUT(0), "all_reduce value")) return -1;
    if (x->plan) return 0;
    if (x_copy(x, ptr(x, OUT(0)), ptr(x, IN(0)), nbytes(x, OUT(0)))) return -1;
    if (n == 1) return 0;
    return coll_fail(x, x->st->coll->all_reduce(x->st->coll->ctx, ax, dt(x, OUT(0)), (void *)(uintptr_t)ptr(x, OUT(0)),
                                                numel(x, OUT(0)), STREAM_ARG(x)));
}

/* all_gather moves bits: besides f32 and bf16 it gathers the frozen QLoRA
 * weights (nf4 codes, u8 steps), packed, as long as a rank's block is whole
 * bytes (whole rows of dequant_nf4's even K always are). */
static int gather_dtype_ok(gx *x, int64_t blk) {
    ir_dtype t = dt(x, OUT(0));
    if (t == IR_NF4 && blk % 2)
        return unsupported(x, "all_gather of nf4 blocks of an odd number of codes (%lld): a rank's block must be whole bytes",
                           (long long)blk);
    return t == IR_NF4 || t == IR_U8 ? 0 : need_fp(x, OUT(0), "all_gather value");
}

/* all_gather / reduce_scatter: the axis (its size in *n), a padded staging
 * buffer of `blk` elements per rank when the axis has several ranks. 1 when
 * the node is done (planning, or a copy over an axis of one rank), 0 to go
 * on, -1 on error. */
static int coll_padded(gx *x, const char *what, int64_t blk, int *ax, int64_t *n, uint64_t *tmp) {
    *ax = coll_axis(x, n);
    int gather = x->n->op == IR_OP_all_gather;
    if (*ax < 0 || (gather ? gather_dtype_ok(x, blk) : need_fp(x, OUT(0), what))) return -1;
    *tmp = *n > 1 ? scratch(x, bytes_of(dt(x, OUT(0)), blk * *n)) : 0;
    if (x->plan) return 1;
    if (*n == 1) return x_copy(x, ptr(x, OUT(0)), ptr(x, IN(0)), nbytes(x, OUT(0))) ? -1 : 1;
    return 0;
}

static int g_all_gather(gx *x) {
    int64_t n, nin = numel(x, IN(0));
    uint64_t tmp;
    int ax, rc = coll_padded(x, "all_gather value", nin, &ax, &n, &tmp);
    if (rc) return rc < 0 ? -1 : 0;
    if (coll_fail(x, x->st->coll->all_gather(x->st->coll->ctx, ax, dt(x, OUT(0)), (const void *)(uintptr_t)ptr(x, IN(0)),
                                             (void *)(uintptr_t)tmp, nin, STREAM_ARG(x))))
        return -1;
    return x_copy(x, ptr(x, OUT(0)), tmp, nbytes(x, OUT(0))); /* drop the padding rows */
}

static int g_reduce_scatter(gx *x) {
    int64_t n, nout = numel(x, OUT(0)), e = esz(dt(x, OUT(0)));
    uint64_t tmp;
    int ax, rc = coll_padded(x, "reduce_scatter value", nout, &ax, &n, &tmp);
    if (rc) return rc < 0 ? -1 : 0;
    if (x_memset(x, tmp, 0, nout * n * e) || /* zero padding rows */
        x_copy(x, tmp, ptr(x, IN(0)), nbytes(x, IN(0))))
        return -1;
    return coll_fail(x, x->st->coll->reduce_scatter(x->st->coll->ctx, ax, dt(x, OUT(0)), (const void *)(uintptr_t)tmp,
                                                    (void *)(uintptr_t)ptr(x, OUT(0)), nout, STREAM_ARG(x)));
}

/* A switch rather than an X-macro table: an op added to ir/ops.def that this
 * executor does not know yet is refused at prepare time, not a build error. */
/* ---- CPU offload: copies between device memory and the host side ----------------------
 * Host values keep the CPU executor's storage (fp32 for bf16; rt_prog's
 * buffers), but what crosses the bus is the device's bytes, and those live
 * in offload memory (pinned where the plan asks):
 *  - to_host writes into its result's slot of the copy arena; the host
 *    buffer of an f32/i32 result *is* the slot, a bf16 result is widened
 *    into its fp32 buffer once the copy is known complete (finish_value,
 *    before the first host node that reads it);
 *  - to_device sends an f32/i32 host global straight from its block, a bf16
 *    one from its bf16 image (converted again only after a host node or an
 *    upload wrote the global), a host value from its slot (filled here from
 *    the value's fp32 buffer, which may then die).
 * Why no host memory is rewritten while a copy still reads or writes it:
 * docs/cuda-runtime.md, "CPU offload". */
static rt_buf *host_buf(gx *x, int32_t r) {
    return IR_REF_IS_GLOBAL(r) ? &x->st->host.globals[IR_REF_GLOBAL(r)] : &x->pr->host.vals[r];
}

static char *copy_slot(const rt_cuda_prog *pr, const rt_cuda_state *st, int32_t v) {
    return st->copy_arena ? (char *)st->copy_arena + pr->copy_off[v] : NULL; /* none: every slot is empty */
}

/* To_host result v has arrived (the caller waited for its copy): widen a
 * bf16 result into its fp32 host buffer. */
static int finish_value(rt_cuda_prog *pr, rt_cuda_state *st, int32_t v, const char *where, ax_diag *d) {
    if (pr->pending[v] != 1) return 0;
    const ir_type *t = &pr->p->values[v].type;
    rt_buf *h = &pr->host.vals[v];
    const char *slot = copy_slot(pr, st, v);
    char what[96];
    snprintf(what, sizeof what, "the result of node %d (to_host)", pr->p->values[v].node);
    if (host_touch(pr->dev, slot, ir_local_bytes(pr->m, t), 0, where, what, d)) return -1;
    if (t->dtype == IR_BF16) {
        const uint16_t *b = (const uint16_t *)slot;
        for (int64_t i = 0; i < h->numel; i++) rt_f(h)[i] = ax_bf16_to_f32(b[i]); /* bf16 -> its fp32 value: exact */
    }
    pr->pending[v] = 0;
    return 0;
}

static int copy_dtype(gx *x, const char *op) {
    ir_dtype t = dt(x, OUT(0));
    if (t != IR_F32 && t != IR_BF16 && t != IR_I32)
        return unsupported(x, "%s of dtype %s (f32, bf16, i32 only)", op, ir_dtype_name(t));
    return 0;
}

static int g_to_host(gx *x) {
    if (copy_dtype(x, "to_host")) return -1;
    if (on_host(x, IN(0)) || !on_host(x, OUT(0))) return unsupported(x, "to_host whose operand is not in device memory");
    int32_t v = OUT(0);
    if (x->pr->copy_off[v] < 0) {
        ax_error(x->d, x->where, "internal error: the result of to_host has no slot in the copy arena");
        return -1;
    }
    if (x->plan) return 0;
    rt_buf *h = host_buf(x, v);
    int64_t n = numel(x, v), bytes = nbytes(x, v);
    char *slot = copy_slot(x->pr, x->st, v);
    if (h->numel != n) {
        ax_error(x->d, x->where, "internal error: the host result has %lld elements, not %lld", (long long)h->numel,
                 (long long)n);
        return -1;
    }
    if (!x->pr->alias[v]) free(h->data);
    h->data = NULL;
    x->pr->alias[v] = 0;
    if (dt(x, v) == IR_BF16) { /* widened into this when the copy is done */
        h->data = calloc((size_t)(n > 0 ? n : 1), 4);
        if (!h->data) {
            ax_error(x->d, x->where, "out of host memory (%lld elements)", (long long)n);
            return -1;
        }
    } else { /* f32 / i32: the slot holds the CPU executor's storage already */
        h->data = slot;
        x->pr->alias[v] = 1;
    }
    x->pr->pending[v] = 1;
    int rc = hm_copy(x->dev, 1, slot, ptr(x, IN(0)), bytes, x->where, x->d);
    if (rc < 0) return -1;
    return rc == 0 ? finish_value(x->pr, x->st, v, x->where, x->d) : 0; /* synchronous: arrived already */
}

static int g_to_device(gx *x) {
    if (copy_dtype(x, "to_device")) return -1;
    if (!on_host(x, IN(0)) || on_host(x, OUT(0))) return unsupported(x, "to_device whose operand is not in host memory");
    int32_t r = IN(0);
    ir_dtype t = dt(x, OUT(0));
    if (!IR_REF_IS_GLOBAL(r) && x->pr->copy_off[r] < 0) {
        ax_error(x->d, x->where, "internal error: the operand of to_device has no slot in the copy arena");
        return -1;
    }
    if (x->plan) return 0;
    const rt_buf *h = host_buf(x, r);
    int64_t n = numel(x, OUT(0)), bytes = nbytes(x, OUT(0));
    const rt_cuda_prog *pr = x->pr;
    int from_copy = !IR_REF_IS_GLOBAL(r) && pr->p->nodes[pr->p->values[r].node].op == IR_OP_to_host;
    if ((!h->data && !from_copy) || h->numel != n) {
        ax_error(x->d, x->where, "internal error: the host operand is not live (or has %lld elements, not %lld)",
                 (long long)h->numel, (long long)n);
        return -1;
    }
    char *src;
    if (IR_REF_IS_GLOBAL(r)) {
        int g = IR_REF_GLOBAL(r);
        src = t == IR_BF16 ? x->st->img ? x->st->img[g] : NULL : (char *)h->data;
        if (!src) {
            ax_error(x->d, x->where, "internal error: no bf16 image of host global %s", x->pr->m->globals[g].name);
            return -1;
        }
        if (t == IR_BF16 && !x->st->img_ok[g]) { /* the global changed since the image was made */
            if (host_touch(x->dev, src, bytes, 1, x->where, "the bf16 image of a host global", x->d)) return -1;
            uint16_t *b = (uint16_t *)src;
            for (int64_t i = 0; i < n; i++) b[i] = ax_f32_to_bf16(rt_f(h)[i]); /* already bf16-rounded: exact */
            x->st->img_ok[g] = 1;
        }
    } else if (from_copy) { /* a round trip: the slot holds the device's bytes */
        src = copy_slot(pr, x->st, r);
        if (x->pr->pending[r] == 1) { /* not ordered by any event: wait for that copy's stream */
            int cur = x->dev->cur;
            dv_use_stream(x->dev, pr->node_stream[pr->p->values[r].node]);
            int rc = dv_sync(x->dev, x->where, x->d);
            dv_use_stream(x->dev, cur);
            if (rc || finish_value(x->pr, x->st, r, x->where, x->d)) return -1;
        }
    } else { /* a value a host node made: its bytes into its slot, once (a second copy may read it meanwhile) */
        src = copy_slot(pr, x->st, r);
        if (x->pr->pending[r] != 2) {
            if (host_touch(x->dev, src, bytes, 1, x->where, "the slot of a to_device operand", x->d)) return -1;
            if (t == IR_BF16) {
                uint16_t *b = (uint16_t *)src;
                for (int64_t i = 0; i < n; i++) b[i] = ax_f32_to_bf16(rt_f(h)[i]); /* already bf16-rounded: exact */
            } else {
                memcpy(src, h->data, (size_t)bytes);
            }
            x->pr->pending[r] = 2;
        }
    }
    return hm_copy(x->dev, 0, src, ptr(x, OUT(0)), bytes, x->where, x->d) < 0 ? -1 : 0;
}

/* Rotates x one step along the axis ring (bits: f32, bf16 or i32). */
static int g_ring_shift(gx *x) {
    int64_t n;
    int ax = coll_axis(x, &n);
    if (ax < 0) return -1;
    ir_dtype t = dt(x, OUT(0));
    if (t != IR_F32 && t != IR_BF16 && t != IR_I32)
        return unsupported(x, "ring_shift of dtype %s (f32, bf16, i32 only)", ir_dtype_name(t));
    if (x->plan) return 0;
    if (n == 1) return x_copy(x, ptr(x, OUT(0)), ptr(x, IN(0)), nbytes(x, OUT(0)));
    if (!x->st->coll->ring_shift) {
        ax_error(x->d, x->where, "the attached device communicator has no ring_shift");
        return -1;
    }
    return coll_fail(x, x->st->coll->ring_shift(x->st->coll->ctx, ax, t, (const void *)(uintptr_t)ptr(x, IN(0)),
                                                (void *)(uintptr_t)ptr(x, OUT(0)), numel(x, OUT(0)), STREAM_ARG(x)));
}

/* A chain of elementwise ops in one generated kernel (codegen/fusegen.h):
 * operands and result in their own dtypes, a bias operand read by column
 * (nb = the result's last dim). The kernel is registered with the device
 * when the program is prepared and built (NVRTC) when first loaded. */
static int g_fused(gx *x) {
    const char *expr = AS("expr", NULL);
    ir_dtype in[IR_MAX_IN];
    for (int k = 0; k < x->n->nin; k++) {
        if (need_fp(x, IN(k), "fused operand")) return -1;
        in[k] = dt(x, IN(k));
    }
    if (!expr) return unsupported(x, "a fused node without its expr");
    if (need_fp(x, OUT(0), "fused result")) return -1;
    char entry[64];
    ir_fexpr_entry(expr, in, x->n->nin, entry, sizeof entry);
    if (x->plan && !gsig_add(x->dev, entry, expr, in, x->n->nin)) {
        ax_error(x->d, x->where, "out of host memory");
        return -1;
    }
    ir_dtype t = dt(x, OUT(0));
    int64_t n = numel(x, OUT(0)), nb = lastdim(x, OUT(0));
    kargs a = {0};
    for (int k = 0; k < x->n->nin; k++) ka_p(&a, ptr(x, IN(k)), nbytes(x, IN(k)));
    ka_p(&a, ptr(x, OUT(0)), n * esz(t));
    ka_l(&a, n);
    ka_l(&a, nb > 0 ? nb : 1);
    return launch(x, entry, blocks(x, n, 256 * 8), 1, 1, 256, 1, 0, &a);
}

static int exec_node(gx *x) {
    switch (x->n->op) {
    case IR_OP_input: return g_input(x);
    case IR_OP_fill: return g_fill(x);
    case IR_OP_embedding: return g_embedding(x);
    case IR_OP_rmsnorm: return g_rmsnorm(x);
    case IR_OP_matmul: return g_matmul(x);
    case IR_OP_bias_add: return g_bias_add(x);
    case IR_OP_add: return g_add(x);
    case IR_OP_mul: return g_mul(x);
    case IR_OP_scale: return g_scale(x);
    case IR_OP_sigmoid: return g_sigmoid(x);
    case IR_OP_sigmoid_bwd: return g_sigmoid_bwd(x);
    case IR_OP_convert: return g_convert(x);
    case IR_OP_reshape: return g_reshape(x);
    case IR_OP_rope: return g_rope(x);
    case IR_OP_attention: return g_attention(x);
    case IR_OP_swiglu: return g_swiglu(x);
    case IR_OP_geglu: return g_geglu(x);
    case IR_OP_cross_entropy: return g_cross_entropy(x);
    case IR_OP_embedding_bwd: return g_embedding_bwd(x);
    case IR_OP_rmsnorm_bwd: return g_rmsnorm_bwd(x);
    case IR_OP_bias_grad: return g_bias_grad(x);
    case IR_OP_attention_bwd: return g_attention_bwd(x);
    case IR_OP_swiglu_bwd: return g_swiglu_bwd(x);
    case IR_OP_geglu_bwd: return g_geglu_bwd(x);
    case IR_OP_cross_entropy_bwd: return g_cross_entropy_bwd(x);
    case IR_OP_linear_cross_entropy: return g_linear_cross_entropy(x);
    case IR_OP_dpo_loss: return g_dpo_loss(x);
    case IR_OP_sumsq: return g_sumsq(x);
    case IR_OP_clip_coef: return g_clip_coef(x);
    case IR_OP_adamw: return g_adamw(x);
    case IR_OP_adamw8: return g_adamw8(x);
    case IR_OP_store: return g_store(x);
    case IR_OP_acc: return g_acc(x);
    case IR_OP_zero: return g_zero(x);
    case IR_OP_all_reduce: return g_all_reduce(x);
    case IR_OP_all_gather: return g_all_gather(x);
    case IR_OP_reduce_scatter: return g_reduce_scatter(x);
    case IR_OP_ring_shift: return g_ring_shift(x);
    case IR_OP_attention_blk: return g_attention_blk(x);
    case IR_OP_attention_blk_bwd: return g_attention_blk_bwd(x);
    case IR_OP_attn_merge: return g_attn_merge(x);
    case IR_OP_to_host: return g_to_host(x);
    case IR_OP_to_device: return g_to_device(x);
    case IR_OP_fused: return g_fused(x);
    case IR_OP_dropout: return g_dropout(x);
    case IR_OP_neftune: return g_neftune(x);
    case IR_OP_dora_norm: return g_dora_norm(x);
    case IR_OP_lora_delta: return g_lora_delta(x, 0);
    case IR_OP_moe_lb_stats:
    case IR_OP_moe_lb_stats_bwd:
    case IR_OP_moe_lb_loss:
    case IR_OP_moe_lb_loss_bwd: return g_moe_lb(x);
    case IR_OP_lora_delta_bwd: return g_lora_delta(x, 1);
    case IR_OP_dora_scale: return g_dora_scale(x);
    case IR_OP_dora_scale_bwd: return g_dora_scale_bwd(x);
    case IR_OP_dequant_nf4: return g_dequant_nf4(x);
    case IR_OP_mask_rows: return g_mask_rows(x);
    case IR_OP_index_copy: return g_index_copy(x);
    case IR_OP_take_rows: return g_take_rows(x);
    case IR_OP_slice: return g_slice(x, 0);
    case IR_OP_slice_bwd: return g_slice(x, 1);
    case IR_OP_moe_route: return g_moe_route(x, 0);
    case IR_OP_moe_route_bwd: return g_moe_route(x, 1);
    case IR_OP_moe_ffn: return g_moe_ffn(x, 0);
    case IR_OP_moe_ffn_bwd: return g_moe_ffn(x, 1);
    case IR_OP_moe_ffn_oss: return g_moe_ffn_oss(x, 0);
    case IR_OP_moe_ffn_oss_bwd: return g_moe_ffn_oss(x, 1);
    case IR_OP_attn_sink: return g_attn_sink(x);
    case IR_OP_attn_sink_bwd: return g_attn_sink_bwd(x);
    default: return unsupported(x, "this op has no CUDA implementation yet");
    }
}

static void set_where(gx *x, int i) {
    x->ni = i;
    x->n = &x->pr->p->nodes[i];
    x->scr_off = 0;
    x->gemm_align = 0;
    x->nreg = 0;
    for (int k = 0; k < x->n->nin; k++)
        if (!on_host(x, x->n->in[k])) reg_add(x, ptr(x, x->n->in[k]), nbytes(x, x->n->in[k]));
    for (int k = 0; k < x->n->nout; k++)
        if (!on_host(x, x->n->out[k])) reg_add(x, ptr(x, x->n->out[k]), nbytes(x, x->n->out[k]));
    snprintf(x->where, sizeof x->where, "%s node %d (%s)", x->pr->p->name, i, ir_ops[x->n->op].name);
}

/* ==== state ======================================================================= */
/* Offload memory classes: 0 the parameters (DeepSpeed's offload_param), 1
 * gradients, master weights and moments (offload_optimizer). */
static int host_class(const ir_global *G) { return G->role == IR_ROLE_PARAM ? 0 : 1; }

/* Whether the plan wants class c pinned; a plan that does not say (older,
 * or written by hand) gets pinned memory, as FSDP does. */
static int pin_wanted(const ir_module *m, int c) {
    const ir_attr *a = ir_module_attr(m, c == 0 ? "offload.pin_memory_param" : "offload.pin_memory_optimizer");
    return !(a && a->kind == IR_ATTR_INT && a->i == 0);
}

static const char *class_what(int c) {
    return c == 0 ? "the offloaded parameters" : "the offloaded gradients and optimizer state";
}

/* Counts a block of offload memory as pinned or pageable. */
static void count_block(rt_cuda_state *st, const void *p, int64_t bytes) {
    if (!p) return;
    if (rt_cuda_host_pinned(st->dev, p) == 1) st->pinned_bytes += bytes;
    else st->pageable_bytes += bytes;
}

/* The host globals' blocks: one allocation per class, each global at an
 * aligned offset, zeroed. */
static int host_globals_init(rt_cuda_state *st, ax_diag *d) {
    const ir_module *m = st->m;
    int64_t sum[2] = {0, 0};
    for (int g = 0; g < m->nglobals; g++)
        if (ir_global_on_host(&m->globals[g]))
            sum[host_class(&m->globals[g])] += ALIGN(4 * rt_local_numel(m, &m->globals[g].type));
    if (!sum[0] && !sum[1]) return 0;
    st->host.m = m;
    st->host.globals = calloc((size_t)m->nglobals, sizeof *st->host.globals);
    if (!st->host.globals) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    int64_t off[2] = {0, 0};
    for (int c = 0; c < 2; c++) {
        if (!sum[c]) continue;
        if (!(st->host_blk[c] = hm_alloc(st->dev, sum[c], pin_wanted(m, c), class_what(c), d))) return -1;
        count_block(st, st->host_blk[c], sum[c]);
    }
    for (int g = 0; g < m->nglobals; g++) {
        if (!ir_global_on_host(&m->globals[g])) continue;
        int c = host_class(&m->globals[g]);
        rt_buf *b = &st->host.globals[g];
        b->type = m->globals[g].type;
        b->numel = rt_local_numel(m, &b->type);
        b->data = (char *)st->host_blk[c] + off[c]; /* float and int32 are 4 bytes, as the CPU executor stores them */
        off[c] += ALIGN(4 * b->numel);
        st->host_bytes += 4 * b->numel;
    }
    return 0;
}

int rt_cuda_state_init(rt_cuda_state *st, rt_cuda_dev *dev, const ir_module *m, ax_diag *d) {
    memset(st, 0, sizeof *st);
    st->m = m;
    st->dev = dev;
    st->globals = calloc((size_t)m->nglobals + 1, sizeof *st->globals);
    st->gbytes = calloc((size_t)m->nglobals + 1, sizeof *st->gbytes);
    if (!st->globals || !st->gbytes) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    for (int g = 0; g < m->nglobals; g++) {
        ir_dtype t = m->globals[g].type.dtype;
        if (t == IR_F16) {
            ax_error(d, m->globals[g].name,
                     "not supported by the CUDA executor: a global of dtype %s (f32, bf16, i32, u8, nf4 only)",
                     ir_dtype_name(t));
            return -1;
        }
        if (!ir_global_on_host(&m->globals[g])) st->gbytes[g] = ir_local_bytes(m, &m->globals[g].type);
    }
    return host_globals_init(st, d); /* offload: host blocks, no device buffers */
}

void rt_cuda_state_free(rt_cuda_state *st) {
    if (!st->m) return;
    if (st->globals)
        for (int g = 0; g < st->m->nglobals; g++) dv_free(st->dev, st->globals[g]);
    dv_free(st->dev, st->arena);
    dv_free(st->dev, st->scratch);
    for (int c = 0; c < 2; c++) { /* the host globals' data lie in these */
        hm_free(st->dev, st->host_blk[c]);
        hm_free(st->dev, st->img_blk[c]);
    }
    hm_free(st->dev, st->copy_arena);
    free(st->img);
    free(st->img_ok);
    free(st->host.globals);
    free(st->globals);
    free(st->gbytes);
    memset(st, 0, sizeof *st);
}

/* ==== programs ======================================================================= */
static int keep_device(const ir_program *p, int32_t v, void *ctx) {
    (void)ctx;
    return !ir_value_on_host(p, v);
}

static int keep_marked(const ir_program *p, int32_t v, void *ctx) {
    (void)p;
    return ((const uint8_t *)ctx)[v];
}

/* Does host node n write global operand k (an effect's target; AdamW's
 * moments too, and adamw8's block maxima)? */
static int host_writes(const ir_node *n, int k) { return ir_op_writes(n->op, k); }

/* Offload: the copy arena's slots, and what each host node waits for.
 * A host node waits, per device stream, for the latest of: the nodes its
 * `wait` list names, the producers of its operands (to_host copies), and
 * the device nodes that read a global it writes (to_device copies from
 * the global's block or image); so a plan whose waits miss one is still
 * run right, and counted (host_waits_unplanned). */
static int offload_prepare(rt_cuda_prog *pr, rt_cuda_state *st, ax_diag *d) {
    const ir_program *p = pr->p;
    const ir_module *m = st->m;
    size_t nv = (size_t)p->nvalues + 1, nn = (size_t)p->nnodes + 1, ng = (size_t)m->nglobals + 1;
    uint8_t *staged = calloc(nv, 1);
    int32_t *reader = malloc(sizeof(int32_t) * ng * IR_NSTREAMS); /* per global and stream: the last device reader */
    pr->copy_off = malloc(sizeof *pr->copy_off * nv);
    pr->pending = calloc(nv, 1);
    pr->alias = calloc(nv, 1);
    pr->hwait = malloc(sizeof *pr->hwait * nn * IR_NSTREAMS);
    pr->hwait_extra = calloc(nn * IR_NSTREAMS, 1);
    if (!staged || !reader || !pr->copy_off || !pr->pending || !pr->alias || !pr->hwait || !pr->hwait_extra) {
        free(staged);
        free(reader);
        ax_error(d, p->name, "out of host memory");
        return -1;
    }
    /* slots: to_host results (the copy writes there) and host values a
     * to_device sends (filled just before it), each of its device bytes,
     * planned with the streams' ordering like the device arena */
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op == IR_OP_to_host) staged[n->out[0]] = 1;
        if (n->op == IR_OP_to_device && !IR_REF_IS_GLOBAL(n->in[0])) staged[n->in[0]] = 1;
    }
    for (int v = 0; v < p->nvalues; v++) pr->copy_off[v] = -1;
    pr->copy_bytes = ir_arena_plan(m, p, keep_marked, staged, pr->copy_off, NULL);
    for (size_t i = 0; i < nn * IR_NSTREAMS; i++) pr->hwait[i] = -1;
    for (size_t i = 0; i < ng * IR_NSTREAMS; i++) reader[i] = -1;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int s = pr->node_stream[i];
        if (s >= 0) { /* a device node: remember what it reads */
            for (int k = 0; k < n->nin; k++)
                if (IR_REF_IS_GLOBAL(n->in[k])) reader[(size_t)IR_REF_GLOBAL(n->in[k]) * IR_NSTREAMS + s] = i;
            continue;
        }
        int32_t *hw = pr->hwait + (size_t)i * IR_NSTREAMS, need[IR_NSTREAMS];
        for (int t = 0; t < IR_NSTREAMS; t++) need[t] = -1;
        const ir_attr *w = ir_attr_find(n->attrs, n->nattrs, "wait");
        for (int k = 0; w && w->kind == IR_ATTR_INTS && k < w->n; k++) {
            int64_t j = w->ints[k]; /* checked by the caller: 0 <= j < i */
            int t = pr->node_stream[j];
            if (t >= 0 && j > hw[t]) hw[t] = (int32_t)j;
        }
        for (int k = 0; k < n->nin; k++) {
            int32_t r = n->in[k];
            if (!IR_REF_IS_GLOBAL(r)) {
                int j = p->values[r].node, t = pr->node_stream[j];
                if (t >= 0 && j > need[t]) need[t] = j;
            } else if (host_writes(n, k)) {
                for (int t = 0; t < IR_NSTREAMS; t++) {
                    int j = reader[(size_t)IR_REF_GLOBAL(r) * IR_NSTREAMS + t];
                    if (j > need[t]) need[t] = j;
                }
            }
        }
        for (int t = 0; t < IR_NSTREAMS; t++) {
            if (need[t] > hw[t]) hw[t] = need[t], pr->hwait_extra[(size_t)i * IR_NSTREAMS + t] = 1;
            if (hw[t] >= 0 && pr->scheduled) pr->rec[hw[t]] = 1; /* unscheduled: host nodes synchronise everything */
        }
    }
    free(staged);
    free(reader);
    return 0;
}

int rt_cuda_prog_init(rt_cuda_prog *pr, rt_cuda_state *st, const ir_program *p, ax_diag *d) {
    memset(pr, 0, sizeof *pr);
    pr->m = st->m;
    pr->p = p;
    pr->dev = st->dev;
    size_t nv = (size_t)p->nvalues + 1, nn = (size_t)p->nnodes + 1;
    pr->offsets = calloc(nv, sizeof *pr->offsets);
    pr->stage_off = malloc(nn * sizeof *pr->stage_off);
    pr->const_off = malloc(nn * sizeof *pr->const_off);
    pr->flag_slot = malloc(nn * sizeof *pr->flag_slot);
    pr->gemm = calloc(nn, sizeof *pr->gemm);
    pr->node_stream = calloc(nn, sizeof *pr->node_stream);
    pr->rec = calloc(nn, sizeof *pr->rec);
    pr->events = calloc(nn, sizeof *pr->events);
    if (st->dev->emu) pr->emu_ev = calloc(nn, sizeof *pr->emu_ev);
    if (!pr->offsets || !pr->stage_off || !pr->const_off || !pr->flag_slot || !pr->gemm || !pr->node_stream || !pr->rec ||
        !pr->events || (st->dev->emu && !pr->emu_ev)) {
        ax_error(d, p->name, "out of host memory");
        return -1;
    }
    /* streams: the schedule pass's, when the device has them; a node another
     * stream waits for records an event */
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int64_t s = ir_attr_int(n->attrs, n->nattrs, "stream", 0);
        pr->node_stream[i] = (int8_t)(ir_node_on_host(n) ? -1 : s > 0 && s < st->dev->nstreams ? s : 0);
    }
    for (int i = 0; i < p->nnodes; i++) {
        const ir_attr *w = ir_attr_find(p->nodes[i].attrs, p->nodes[i].nattrs, "wait");
        for (int k = 0; w && w->kind == IR_ATTR_INTS && k < w->n; k++) {
            int64_t j = w->ints[k];
            if (j < 0 || j >= i) {
                ax_error(d, p->name, "node %d waits for node %lld, which does not come before it", i, (long long)j);
                return -1;
            }
            if (pr->node_stream[j] >= 0 && pr->node_stream[j] != pr->node_stream[i]) pr->rec[j] = 1;
        }
    }
    for (int i = 0; i < p->nnodes && !pr->has_host; i++) pr->has_host = ir_node_on_host(&p->nodes[i]);
    for (int v = 0; v < p->nvalues && !pr->has_host; v++) pr->has_host = ir_value_on_host(p, v);
    /* without the schedule pass's streams and waits, host nodes wait for the whole device (see rt_cuda_prog_run) */
    pr->scheduled = ir_module_attr(st->m, "schedule.streams") != NULL;
    pr->evc = calloc(nn * IR_NSTREAMS, sizeof *pr->evc);
    if (!pr->evc || (pr->has_host && offload_prepare(pr, st, d) != 0)) {
        if (!pr->evc) ax_error(d, p->name, "out of host memory");
        return -1;
    }
#ifdef AXO_HAVE_CUDA
    if (!st->dev->dry)
        for (int i = 0; i < p->nnodes; i++) {
            if (!pr->rec[i]) continue;
            cudaEvent_t ev;
            if (ck(d, p->name, "cudaEventCreateWithFlags", cudaEventCreateWithFlags(&ev, cudaEventDisableTiming))) return -1;
            pr->events[i] = ev;
        }
#endif
    for (int i = 0; i < p->nnodes; i++) pr->stage_off[i] = pr->const_off[i] = -1, pr->flag_slot[i] = -1;
    /* device values in the device arena; host values (offload) in the host program's own buffers */
    pr->arena_bytes = ir_arena_plan(st->m, p, pr->has_host ? keep_device : NULL, NULL, pr->offsets, NULL);
    if (pr->has_host && rt_prog_init(&pr->host, st->m, p, d) != 0) return -1;
    gx x = {.pr = pr, .st = st, .dev = st->dev, .plan = 1, .d = d};
    int rc = 0;
    for (int i = 0; i < p->nnodes; i++) { /* every node, so that all problems are reported at once */
        if (ir_node_on_host(&p->nodes[i])) continue; /* the CPU reference runs every op */
        dv_use_stream(st->dev, pr->node_stream[i]);
        set_where(&x, i);
        if (exec_node(&x) != 0) rc = -1;
    }
    dv_use_stream(st->dev, 0);
    /* a CUDA graph needs a program that never waits on the host: no host
     * nodes or values, no collective that talks to another rank (host
     * staging, NCCL's watchdog), no per-launch checking */
    rt_cuda_dev *dv = st->dev;
    pr->graph_state = dv->graphs && !dv->dry && !dv->sync_each && !dv->poison && rt_cuda_graph_eligible(st->m, p) ? 0 : -1;
    for (int s = 0; s < IR_NSTREAMS; s++) { /* each stream's part of the scratch */
        pr->scratch_base[s] = pr->scratch_bytes;
        pr->scratch_bytes += pr->scratch_need[s] ? ALIGN(pr->scratch_need[s]) : 0;
    }
    pr->const_bytes = (int64_t)pr->consts.len;
    return rc;
}

void rt_cuda_prog_free(rt_cuda_prog *pr) {
    if (!pr->p) return;
    if (pr->gemm)
        for (int i = 0; i < pr->p->nnodes; i++) gemm_free(pr->gemm[i]);
    if (pr->dev) {
        dv_free(pr->dev, pr->flags_dev);
        dv_free(pr->dev, pr->consts_dev);
        dv_host_free(pr->dev, pr->stage_host);
    }
    if (pr->has_host) {
        for (int v = 0; pr->alias && v < pr->p->nvalues; v++) /* slots of the copy arena, not rt_prog's */
            if (pr->alias[v]) pr->host.vals[v].data = NULL;
        rt_prog_free(&pr->host);
    }
#ifdef AXO_HAVE_CUDA
    if (pr->events && pr->dev && !pr->dev->dry)
        for (int i = 0; i < pr->p->nnodes; i++)
            if (pr->events[i]) cudaEventDestroy((cudaEvent_t)pr->events[i]);
#endif
#ifdef AXO_HAVE_CUDA
    if (pr->graph_exec) cudaGraphExecDestroy((cudaGraphExec_t)pr->graph_exec);
    for (int s = 0; s < IR_NSTREAMS; s++) {
        if (pr->fork_ev[s]) cudaEventDestroy((cudaEvent_t)pr->fork_ev[s]);
        if (pr->join_ev[s]) cudaEventDestroy((cudaEvent_t)pr->join_ev[s]);
    }
#endif
    free(pr->events);
    free(pr->emu_ev);
    free(pr->rec);
    free(pr->node_stream);
    free(pr->copy_off);
    free(pr->pending);
    free(pr->alias);
    free(pr->hwait);
    free(pr->hwait_extra);
    free(pr->evc);
    free(pr->gemm);
    free(pr->offsets);
    free(pr->stage_off);
    free(pr->const_off);
    free(pr->flag_slot);
    ax_buf_free(&pr->consts);
    memset(pr, 0, sizeof *pr);
}

static const char *human(int64_t b, char *buf, size_t cap) {
    double v = (double)b;
    if (v >= GIB) snprintf(buf, cap, "%.2f GiB", v / GIB);
    else if (v >= 1024.0 * 1024.0) snprintf(buf, cap, "%.2f MiB", v / (1024.0 * 1024.0));
    else if (v >= 1024.0) snprintf(buf, cap, "%.1f KiB", v / 1024.0);
    else snprintf(buf, cap, "%lld B", (long long)b);
    return buf;
}

static int64_t mattr(const ir_module *m, const char *k) {
    const ir_attr *a = ir_module_attr(m, k);
    return a && a->kind == IR_ATTR_INT ? a->i : -1;
}

/* Offload memory the programs need besides the host globals: the bf16
 * images of the bf16 host globals some to_device sends (per class, like
 * their globals) and one copy arena, as large as the largest program's
 * (programs never run at once, and each ends with every stream drained).
 * The copy arena holds gradients and optimizer results when the optimizer
 * is offloaded (its pin flag), else the updated parameters. */
static int offload_alloc(rt_cuda_state *st, rt_cuda_prog *const *progs, int nprogs, ax_diag *d) {
    const ir_module *m = st->m;
    int64_t isum[2] = {0, 0}, cbytes = 0;
    int any_host = 0, opt_host = 0;
    uint8_t *need = calloc((size_t)m->nglobals + 1, 1);
    if (!need) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    for (int g = 0; g < m->nglobals; g++) {
        any_host |= ir_global_on_host(&m->globals[g]);
        opt_host |= ir_global_on_host(&m->globals[g]) && m->globals[g].role == IR_ROLE_OPT;
    }
    for (int i = 0; i < nprogs; i++) {
        const ir_program *p = progs[i]->p;
        any_host |= progs[i]->has_host;
        if (progs[i]->copy_bytes > cbytes) cbytes = progs[i]->copy_bytes;
        for (int k = 0; k < p->nnodes; k++) {
            const ir_node *n = &p->nodes[k];
            if (n->op != IR_OP_to_device || !IR_REF_IS_GLOBAL(n->in[0])) continue;
            int g = IR_REF_GLOBAL(n->in[0]);
            if (m->globals[g].type.dtype == IR_BF16 && ir_global_on_host(&m->globals[g])) need[g] = 1;
        }
    }
    if (!any_host) {
        free(need);
        return 0;
    }
    for (int g = 0; g < m->nglobals; g++)
        if (need[g]) isum[host_class(&m->globals[g])] += ALIGN(ir_local_bytes(m, &m->globals[g].type));
    st->img = calloc((size_t)m->nglobals + 1, sizeof *st->img);
    st->img_ok = calloc((size_t)m->nglobals + 1, 1);
    int rc = !st->img || !st->img_ok;
    if (rc) ax_error(d, "cuda", "out of host memory");
    int64_t off[2] = {0, 0};
    for (int c = 0; c < 2 && !rc; c++) {
        char what[96];
        snprintf(what, sizeof what, "the bf16 images of %s", class_what(c));
        if (!isum[c]) continue;
        rc = !(st->img_blk[c] = hm_alloc(st->dev, isum[c], pin_wanted(m, c), what, d));
        count_block(st, st->img_blk[c], isum[c]);
    }
    for (int g = 0; g < m->nglobals && !rc; g++) {
        if (!need[g]) continue;
        int c = host_class(&m->globals[g]);
        st->img[g] = (char *)st->img_blk[c] + off[c];
        off[c] += ALIGN(ir_local_bytes(m, &m->globals[g].type));
    }
    free(need);
    if (!rc && cbytes > 0) {
        int c = opt_host ? 1 : 0;
        char what[96];
        snprintf(what, sizeof what, "the copies of %s", class_what(c));
        rc = !(st->copy_arena = hm_alloc(st->dev, cbytes, pin_wanted(m, c), what, d));
        st->copy_arena_bytes = cbytes;
        count_block(st, st->copy_arena, cbytes);
    }
    return rc ? -1 : 0;
}

int rt_cuda_state_alloc(rt_cuda_state *st, rt_cuda_prog *const *progs, int nprogs, ax_diag *d) {
    rt_cuda_dev *dev = st->dev;
    const ir_module *m = st->m;
    if (st->allocated) {
        ax_error(d, "cuda", "internal error: rt_cuda_state_alloc called twice");
        return -1;
    }
    int64_t gsum = 0, arena = 0, scr = 0, per_prog = 0;
    for (int g = 0; g < m->nglobals; g++)
        if (!ir_global_on_host(&m->globals[g])) gsum += ALIGN(st->gbytes[g] > 0 ? st->gbytes[g] : 1);
    for (int i = 0; i < nprogs; i++) {
        if (progs[i]->arena_bytes > arena) arena = progs[i]->arena_bytes;
        if (progs[i]->scratch_bytes > scr) scr = progs[i]->scratch_bytes;
        per_prog += ALIGN(4 * (int64_t)progs[i]->nflags + 1) + ALIGN(progs[i]->const_bytes + 1);
    }
    int64_t need = gsum + ALIGN(arena + 1) + ALIGN(scr + 1) + per_prog;
    /* the plan's own figure, as axoc printed it: state + the larger arena */
    int64_t pstate = mattr(m, "memplan.state_bytes"), pmicro = mattr(m, "memplan.micro_step.peak_bytes"),
            popt = mattr(m, "memplan.opt_step.peak_bytes"), peval = mattr(m, "memplan.eval_step.peak_bytes");
    int64_t parena = pmicro > popt ? pmicro : popt > 0 ? popt : 0;
    if (peval > parena) parena = peval;
    int64_t plan_need = pstate >= 0 ? pstate + parena : -1;
    int64_t free_b = 0, total_b = 0;
    if (dev->dry) {
        free_b = dev->dry_total - dev->dry_used;
        total_b = dev->dry_total;
    } else {
#ifdef AXO_HAVE_CUDA
        size_t f = 0, t = 0;
        if (ck(d, "cuda", "cudaMemGetInfo", cudaMemGetInfo(&f, &t))) return -1;
        free_b = (int64_t)f;
        total_b = (int64_t)t;
#endif
    }
    if (need > free_b) {
        char h[8][32], name[200], planfig[96] = "";
        if (plan_need > 0) snprintf(planfig, sizeof planfig, " (axoc's per-rank figure: %s)", human(plan_need, h[0], 32));
        ax_error(d, "cuda",
                 "the plan does not fit on %s: a rank needs %s on the device%s = globals %s + activation arena %s + "
                 "scratch %s + per-program buffers %s, besides the %s cuBLASLt workspace already allocated, but only "
                 "%s of %s are free. Lower micro_batch_size or sequence_len, turn on gradient_checkpointing, or shard "
                 "the state with DeepSpeed ZeRO-3 / FSDP over more GPUs (axoc compile --world-size N; "
                 "axoc compile --gpu-mem GIB prints this advice at compile time).",
                 rt_cuda_dev_name(dev, name, sizeof name), human(need, h[1], 32), planfig, human(gsum, h[2], 32),
                 human(arena, h[3], 32), human(scr, h[4], 32), human(per_prog, h[5], 32), human(dev->ws_bytes, h[6], 32),
                 human(free_b, h[7], 32), human(total_b, h[0], 32));
        return -1;
    }
    for (int g = 0; g < m->nglobals; g++) {
        char what[300];
        if (ir_global_on_host(&m->globals[g])) continue; /* a host block (rt_cuda_state_init) */
        snprintf(what, sizeof what, "global %s", m->globals[g].name);
        if (dv_alloc(dev, st->gbytes[g], &st->globals[g], what, d) ||
            dv_memset(dev, st->globals[g], 0, st->gbytes[g], "cuda", d))
            return -1;
    }
    st->arena_bytes = arena;
    st->scratch_bytes = scr;
    if (dv_alloc(dev, arena, &st->arena, "the activation arena", d) || dv_alloc(dev, scr, &st->scratch, "scratch", d))
        return -1;
    for (int i = 0; i < nprogs; i++) {
        rt_cuda_prog *pr = progs[i];
        char what[160];
        snprintf(what, sizeof what, "%s's error flags", pr->p->name);
        if (dv_alloc(dev, 4 * (int64_t)pr->nflags, &pr->flags_dev, what, d)) return -1;
        snprintf(what, sizeof what, "%s's constants", pr->p->name);
        if (dv_alloc(dev, pr->const_bytes, &pr->consts_dev, what, d) ||
            dv_h2d(dev, pr->consts_dev, pr->consts.data, pr->const_bytes, "cuda", d) ||
            dv_host_alloc(dev, pr->stage_bytes, &pr->stage_host, d))
            return -1;
    }
    if (offload_alloc(st, progs, nprogs, d) != 0) return -1;
    st->total_bytes = need + dev->ws_bytes;
    st->allocated = 1;
    return dv_sync(dev, "cuda", d);
}

/* After a run: the first index-validating node that flagged a bad position. */
static int check_flags(rt_cuda_prog *pr, rt_cuda_state *st, rt_input_fn inputs, void *ctx, ax_diag *d) {
    if (!pr->nflags) return 0;
    int32_t *fl = malloc(sizeof(int32_t) * (size_t)pr->nflags);
    if (!fl) {
        ax_error(d, pr->p->name, "out of host memory");
        return -1;
    }
    if (dv_d2h(pr->dev, fl, pr->flags_dev, 4 * (int64_t)pr->nflags, pr->p->name, d)) {
        free(fl);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < pr->p->nnodes && !rc; i++) {
        if (pr->flag_slot[i] < 0 || (pr->dev->dry && !pr->dev->emu)) continue;
        int32_t t = fl[pr->flag_slot[i]];
        if (t == FLAG_INIT) continue;
        const ir_node *n = &pr->p->nodes[i];
        /* the index operand and its bound: embedding(table, ids), embedding_bwd(ids, dy),
         * cross_entropy[_bwd](logits, targets, ...), linear_cross_entropy(h, w[V,H], targets, ...) */
        int lce = n->op == IR_OP_linear_cross_entropy;
        int32_t ref = n->in[n->op == IR_OP_embedding_bwd ? 0 : lce ? 2 : 1];
        const char *what = n->op == IR_OP_embedding || n->op == IR_OP_embedding_bwd ? "token id" : "target";
        const ir_type *t0 = ir_ref_type(pr->m, pr->p, n->in[0]);
        int64_t limit = n->op == IR_OP_embedding       ? t0->dims[0]
                        : n->op == IR_OP_embedding_bwd ? ir_attr_int(n->attrs, n->nattrs, "vocab", 0)
                        : lce                          ? ir_ref_type(pr->m, pr->p, n->in[1])->dims[0]
                                                       : t0->dims[t0->rank - 1];
        char where[160], val[48] = "";
        snprintf(where, sizeof where, "%s node %d (%s)", pr->p->name, i, ir_ops[n->op].name);
        /* the value itself, when it came from a runtime input (the device copy is gone) */
        if (!IR_REF_IS_GLOBAL(ref) && pr->p->nodes[pr->p->values[ref].node].op == IR_OP_input && inputs) {
            const ir_node *in = &pr->p->nodes[pr->p->values[ref].node];
            const rt_buf *b = inputs(ctx, ir_attr_str(in->attrs, in->nattrs, "name", ""));
            if (b && t >= 0 && t < b->numel) snprintf(val, sizeof val, " = %d", rt_i(b)[t]);
        }
        ax_error(d, where, "%s[%d]%s is outside [0, %lld)", what, t, val, (long long)limit);
        rc = -1;
    }
    free(fl);
    (void)st;
    return rc;
}

/* ---- --trace: per-node CUDA events ----------------------------------------------- */
typedef struct ntrace {
    struct rt_trace *t;
    double t_base;   /* trace clock (us) when `base` completed */
    double *issue;   /* dry run: issue times [2 * nnodes] */
#ifdef AXO_HAVE_CUDA
    cudaEvent_t base, *ev; /* ev[2i], ev[2i+1]: around device node i */
#endif
} ntrace;

static int trace_begin(ntrace *tr, rt_cuda_prog *pr, rt_cuda_state *st, ax_diag *d) {
    memset(tr, 0, sizeof *tr);
    if (!st->trace) return 0;
    tr->t = st->trace;
    size_t n = 2 * (size_t)pr->p->nnodes + 1;
    tr->issue = calloc(n, sizeof *tr->issue);
    if (!tr->issue) {
        ax_error(d, pr->p->name, "out of host memory");
        return -1;
    }
    tr->t_base = rt_trace_now_us(tr->t);
#ifdef AXO_HAVE_CUDA
    if (pr->dev->dry) return 0;
    tr->ev = calloc(n, sizeof *tr->ev);
    if (!tr->ev) {
        ax_error(d, pr->p->name, "out of host memory");
        return -1;
    }
    for (int i = 0; i < pr->p->nnodes; i++)
        if (pr->node_stream[i] >= 0 && (ck(d, "trace", "cudaEventCreate", cudaEventCreate(&tr->ev[2 * i])) ||
                                        ck(d, "trace", "cudaEventCreate", cudaEventCreate(&tr->ev[2 * i + 1]))))
            return -1;
    /* the clock: a base event on the idle device, placed on the trace's time */
    dv_use_stream(pr->dev, 0);
    if (ck(d, "trace", "cudaEventCreate", cudaEventCreate(&tr->base)) ||
        ck(d, "trace", "cudaEventRecord", cudaEventRecord(tr->base, pr->dev->stream)) ||
        ck(d, "trace", "cudaEventSynchronize", cudaEventSynchronize(tr->base)))
        return -1;
    tr->t_base = rt_trace_now_us(tr->t);
#endif
    return 0;
}

/* Before (end = 0) or after (end = 1) device node i, on its stream. */
static void trace_mark(ntrace *tr, rt_cuda_prog *pr, int i, int end) {
    if (!tr->t) return;
    tr->issue[2 * i + end] = rt_trace_now_us(tr->t);
#ifdef AXO_HAVE_CUDA
    if (tr->ev && tr->ev[2 * i + end]) cudaEventRecord(tr->ev[2 * i + end], pr->dev->stream);
#else
    (void)pr;
#endif
}

/* After the program's final synchronisation: one trace event per node. */
static void trace_end(ntrace *tr, rt_cuda_prog *pr, int pid) {
    if (!tr->t) return;
    const ir_program *p = pr->p;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op == IR_OP_input || pr->node_stream[i] < 0) continue; /* host nodes were traced as they ran */
        double ts = tr->issue[2 * i], dur = tr->issue[2 * i + 1] - ts;
#ifdef AXO_HAVE_CUDA
        float a = 0, b = 0;
        if (tr->ev && cudaEventElapsedTime(&a, tr->base, tr->ev[2 * i]) == cudaSuccess &&
            cudaEventElapsedTime(&b, tr->base, tr->ev[2 * i + 1]) == cudaSuccess) {
            ts = tr->t_base + 1000.0 * a;
            dur = 1000.0 * (b - a);
        }
        cudaGetLastError();
#endif
        rt_trace_add(tr->t, ir_ops[n->op].name, pid, pr->node_stream[i], ts, dur, p->name, i);
    }
#ifdef AXO_HAVE_CUDA
    if (tr->ev) {
        for (int i = 0; i < 2 * p->nnodes; i++)
            if (tr->ev[i]) cudaEventDestroy(tr->ev[i]);
        cudaEventDestroy(tr->base);
    }
    free(tr->ev);
#endif
    free(tr->issue);
    memset(tr, 0, sizeof *tr);
}

/* Before device node i: issue on its stream, after the nodes of other
 * streams it waits for (their events). A waited-for host node has already
 * run on this thread. */
static int order_node(rt_cuda_prog *pr, int i, ax_diag *d) {
    rt_cuda_dev *dev = pr->dev;
    int s = pr->node_stream[i];
    dv_use_stream(dev, s);
    const ir_attr *w = ir_attr_find(pr->p->nodes[i].attrs, pr->p->nodes[i].nattrs, "wait");
    for (int k = 0; w && w->kind == IR_ATTR_INTS && k < w->n; k++) {
        int64_t j = w->ints[k];
        if (pr->node_stream[j] < 0 || pr->node_stream[j] == s) continue;
        if (!pr->rec[j]) {
            ax_error(d, pr->p->name, "internal error: node %d waits for node %lld, whose completion is not recorded", i,
                     (long long)j);
            return -1;
        }
        dev->counts.event_waits++;
        if (checking(dev)) vc_join(dev->svc[dev->cur], pr->evc + (size_t)j * IR_NSTREAMS);
        if (emu_lazy(dev) && !dev->emu_drop_waits) {
            eop o = {.kind = EOP_WAIT, .ws = (int)(pr->emu_ev[j] >> 56), .wpos = pr->emu_ev[j] & (((uint64_t)1 << 56) - 1)};
            snprintf(o.where, sizeof o.where, "%s node %d", pr->p->name, i);
            if (eq_push(dev, &o, d)) return -1;
        }
        if (dev->dry) continue;
#ifdef AXO_HAVE_CUDA
        if (ck(d, pr->p->name, "cudaStreamWaitEvent", cudaStreamWaitEvent(dev->stream, (cudaEvent_t)pr->events[j], 0)))
            return -1;
#endif
    }
    return 0;
}

static int record_node(rt_cuda_prog *pr, int i, ax_diag *d) {
    pr->dev->counts.event_records++;
    if (checking(pr->dev)) /* the copies this event will stand for */
        memcpy(pr->evc + (size_t)i * IR_NSTREAMS, pr->dev->svc[pr->dev->cur], sizeof(uint32_t) * IR_NSTREAMS);
    if (pr->emu_ev) pr->emu_ev[i] = (uint64_t)pr->dev->cur << 56 | pr->dev->eissued[pr->dev->cur];
    if (pr->dev->dry) return 0;
#ifdef AXO_HAVE_CUDA
    return ck(d, pr->p->name, "cudaEventRecord", cudaEventRecord((cudaEvent_t)pr->events[i], pr->dev->stream));
#else
    (void)i, (void)d;
    return -1;
#endif
}

/* Before host node i runs its CPU code: the device work it depends on is
 * complete (the events of offload_prepare's list; the whole device when
 * the program has no schedule: *synced says it is still idle), no
 * collective it may read failed, and the to_host results it reads are in
 * their host buffers. Then the globals it writes have stale images. */
static int host_wait(rt_cuda_prog *pr, rt_cuda_state *st, int i, int *synced, int *coll_pending, ax_diag *d) {
    rt_cuda_dev *dev = pr->dev;
    const ir_node *n = &pr->p->nodes[i];
    char where[160], what[96];
    snprintf(where, sizeof where, "%s node %d (%s, on the host)", pr->p->name, i, ir_ops[n->op].name);
    if (!pr->scheduled) {
        if (!*synced && dv_sync_all(dev, pr->p->name, d)) return -1;
        *synced = 1;
    } else {
        for (int t = 0; t < IR_NSTREAMS; t++) {
            int j = pr->hwait[(size_t)i * IR_NSTREAMS + t];
            if (j < 0) continue;
            dev->counts.host_waits++;
            dev->counts.host_waits_unplanned += pr->hwait_extra[(size_t)i * IR_NSTREAMS + t];
            if (checking(dev)) host_saw(dev, pr->evc + (size_t)j * IR_NSTREAMS);
            if (emu_lazy(dev) && eq_flush(dev, (int)(pr->emu_ev[j] >> 56), pr->emu_ev[j] & (((uint64_t)1 << 56) - 1), d))
                return -1;
            if (dev->dry) continue;
#ifdef AXO_HAVE_CUDA
            if (ck(d, where, "cudaEventSynchronize", cudaEventSynchronize((cudaEvent_t)pr->events[j]))) return -1;
#endif
        }
    }
    if (*coll_pending && st->coll && st->coll->drain) { /* no host step on the data of a failed collective */
        char err[512] = "";
        if (st->coll->drain(st->coll->ctx, err, sizeof err) != 0) {
            ax_error(d, pr->p->name, "%s", err[0] ? err : "a collective failed");
            return -1;
        }
    }
    *coll_pending = 0;
    for (int k = 0; k < n->nin; k++) {
        int32_t r = n->in[k];
        if (IR_REF_IS_GLOBAL(r)) {
            int g = IR_REF_GLOBAL(r);
            const rt_buf *b = &st->host.globals[g];
            snprintf(what, sizeof what, "global %s", st->m->globals[g].name);
            if (host_touch(dev, b->data, 4 * b->numel, host_writes(n, k), where, what, d)) return -1;
            if (host_writes(n, k) && st->img_ok) st->img_ok[g] = 0;
        } else if (finish_value(pr, st, r, where, d)) {
            return -1;
        }
    }
    return 0;
}

/* For tests/unit/test_cuda_exec.c: host nodes wait only for what the
 * schedule's wait lists name, so a plan missing a wait shows up in the dry
 * run's ordering check instead of being repaired. */
void rt_cuda_prog_planned_waits_only(rt_cuda_prog *pr);
void rt_cuda_prog_planned_waits_only(rt_cuda_prog *pr) {
    for (int i = 0; pr->hwait && i < pr->p->nnodes; i++) {
        const ir_node *n = &pr->p->nodes[i];
        if (pr->node_stream[i] >= 0) continue;
        int32_t *hw = pr->hwait + (size_t)i * IR_NSTREAMS;
        for (int t = 0; t < IR_NSTREAMS; t++) hw[t] = -1;
        const ir_attr *w = ir_attr_find(n->attrs, n->nattrs, "wait");
        for (int k = 0; w && w->kind == IR_ATTR_INTS && k < w->n; k++) {
            int t = pr->node_stream[w->ints[k]];
            if (t >= 0 && w->ints[k] > hw[t]) hw[t] = (int32_t)w->ints[k];
        }
        memset(pr->hwait_extra + (size_t)i * IR_NSTREAMS, 0, IR_NSTREAMS);
    }
}

/* After node i: the host values whose last use it was are released; the
 * ones living in copy-arena slots are only forgotten. */
static void host_done(rt_cuda_prog *pr, int i) {
    for (int v = pr->host.freeq[i]; v >= 0; v = pr->host.freenext[v]) {
        if (pr->alias[v]) pr->host.vals[v].data = NULL;
        pr->alias[v] = pr->pending[v] = 0;
    }
    rt_prog_node_done(&pr->host, i);
}

int rt_cuda_graph_eligible(const ir_module *m, const ir_program *p) {
    for (int v = 0; v < p->nvalues; v++)
        if (ir_value_on_host(p, v)) return 0;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (ir_node_on_host(n)) return 0;
        if (!(ir_ops[n->op].flags & IR_F_COLLECTIVE)) continue;
        int ax = ir_mesh_find(m, ir_attr_str(n->attrs, n->nattrs, "axis", ""));
        if (ax < 0 || m->mesh_sizes[ax] > 1) return 0;
    }
    return 1;
}

/* ---- CUDA graphs ---------------------------------------------------------------------
 * The first run of a program is plain (it loads the kernels and settles the
 * cuBLASLt plans); the second is captured: the node loop runs with stream 0
 * capturing (streams 1-2 forked from it and joined back by events, so the
 * schedule's cross-stream events become the graph's edges), and the graph
 * is instantiated and launched; later runs fill the input staging buffers
 * on the host (the graph's copies read them) and launch the graph. Any
 * failure while capturing makes the program plain for good (one line on
 * stderr says why); nothing ran meanwhile, so the plain run that follows
 * is the program's run. Returns 0 (the graph ran it), 1 (run it plainly),
 * -1 (an error, in d). */
static int graph_run(rt_cuda_prog *pr, gx *x, ax_diag *d) {
#ifdef AXO_HAVE_CUDA
    rt_cuda_dev *dev = pr->dev;
    cudaStream_t s0 = dev->streams[0];
    const ir_program *p = pr->p;
    if (pr->graph_state == 2) {
        x->stage_only = 1;
        int rc = 0;
        for (int i = 0; i < p->nnodes && !rc; i++) {
            if (p->nodes[i].op != IR_OP_input) continue;
            set_where(x, i);
            rc = exec_node(x);
        }
        x->stage_only = 0;
        if (rc) return -1;
        dv_use_stream(dev, 0);
        dev->counts.graph_launches++;
        return ck(d, p->name, "cudaGraphLaunch", cudaGraphLaunch((cudaGraphExec_t)pr->graph_exec, s0)) ? -1 : 0;
    }
    ax_diag tmp; /* a failed capture is not the run's error */
    ax_diag_init(&tmp);
    ax_diag *saved = x->d;
    x->d = &tmp;
    int rc = 0;
    for (int s = 1; s < dev->nstreams && !rc; s++)
        if (!pr->fork_ev[s]) {
            cudaEvent_t a = NULL, b = NULL;
            rc = ck(&tmp, "graph", "cudaEventCreate", cudaEventCreateWithFlags(&a, cudaEventDisableTiming)) ||
                 ck(&tmp, "graph", "cudaEventCreate", cudaEventCreateWithFlags(&b, cudaEventDisableTiming));
            pr->fork_ev[s] = a;
            pr->join_ev[s] = b;
        }
    dv_use_stream(dev, 0);
    if (!rc) rc = ck(&tmp, "graph", "cudaStreamBeginCapture", cudaStreamBeginCapture(s0, cudaStreamCaptureModeThreadLocal));
    int capturing = !rc;
    for (int s = 1; s < dev->nstreams && !rc; s++)
        rc = ck(&tmp, "graph", "cudaEventRecord (fork)", cudaEventRecord((cudaEvent_t)pr->fork_ev[s], s0)) ||
             ck(&tmp, "graph", "cudaStreamWaitEvent (fork)",
                cudaStreamWaitEvent(dev->streams[s], (cudaEvent_t)pr->fork_ev[s], 0));
    for (int i = 0; i < p->nnodes && !rc; i++) {
        rc = order_node(pr, i, &tmp);
        set_where(x, i);
        if (!rc) rc = exec_node(x);
        if (!rc && pr->rec[i]) rc = record_node(pr, i, &tmp);
    }
    for (int s = 1; s < dev->nstreams && capturing; s++) { /* join every stream, even after an error */
        cudaEventRecord((cudaEvent_t)pr->join_ev[s], dev->streams[s]);
        cudaStreamWaitEvent(s0, (cudaEvent_t)pr->join_ev[s], 0);
    }
    cudaGraph_t g = NULL;
    if (capturing && ck(&tmp, "graph", "cudaStreamEndCapture", cudaStreamEndCapture(s0, &g)) && !rc) rc = -1;
    dv_use_stream(dev, 0);
    cudaGraphExec_t ge = NULL;
    if (!rc && g) rc = ck(&tmp, "graph", "cudaGraphInstantiate", cudaGraphInstantiate(&ge, g, 0));
    if (g) cudaGraphDestroy(g);
    x->d = saved;
    if (rc || !ge) {
        cudaGetLastError();
        fprintf(stderr, "axorun: %s runs without a CUDA graph: its capture failed (%s)\n", p->name,
                tmp.n ? tmp.entries[0].msg : "no graph");
        ax_diag_free(&tmp);
        pr->graph_state = -1;
        return 1;
    }
    ax_diag_free(&tmp);
    pr->graph_exec = ge;
    pr->graph_state = 2;
    fprintf(stderr, "axorun: %s captured in a CUDA graph (%d nodes, %d streams); later steps replay it\n", p->name,
            p->nnodes, dev->nstreams);
    dev->counts.graph_captures++;
    dev->counts.graph_launches++;
    return ck(d, p->name, "cudaGraphLaunch", cudaGraphLaunch(ge, s0)) ? -1 : 0;
#else
    (void)x, (void)d;
    pr->graph_state = -1;
    return 1;
#endif
}

int rt_cuda_prog_run(rt_cuda_prog *pr, rt_cuda_state *st, rt_input_fn inputs, void *ctx, ax_diag *d) {
    if (!st->allocated) {
        ax_error(d, pr->p->name, "internal error: rt_cuda_state_alloc was not called before the first run");
        return -1;
    }
    rt_cuda_dev *dev = st->dev;
    gx x = {.pr = pr, .st = st, .dev = dev, .plan = 0, .inputs = inputs, .ctx = ctx, .d = d};
    int rc = 0;
    if (dev->poison) rc = dv_memset(dev, st->arena, 0xff, st->arena_bytes, pr->p->name, d);
    if (!rc && pr->nflags) rc = dv_memset(dev, pr->flags_dev, 0x7f, 4 * (int64_t)pr->nflags, pr->p->name, d);
    /* streams 1-2 start without waiting for stream 0: the memsets must be done first (a graph's streams fork
     * from stream 0 after them instead) */
    if (!rc && dev->nstreams > 1 && (dev->poison || pr->nflags) && !(pr->graph_state >= 1 && !st->trace))
        rc = dv_sync(dev, pr->p->name, d);
    memcpy(st->host.coord, st->coord, sizeof st->host.coord);
    int synced = 0, coll_pending = 0;
    ntrace tr;
    memset(&tr, 0, sizeof tr);
    int plain = 1; /* run node by node (else the graph ran it) */
    if (!rc && pr->graph_state >= 1 && !st->trace) {
        int g = graph_run(pr, &x, d);
        if (g < 0) rc = -1;
        plain = g == 1;
    }
    if (!rc && plain) rc = trace_begin(&tr, pr, st, d);
    for (int i = 0; i < pr->p->nnodes && !rc && plain; i++) {
        if (ir_node_on_host(&pr->p->nodes[i])) {
            /* offload: the CPU reference kernels on host memory, once the device work they
             * depend on is done; the streams go on meanwhile */
            rc = host_wait(pr, st, i, &synced, &coll_pending, d);
            double t0 = tr.t ? rt_trace_now_us(tr.t) : 0;
            if (!rc) rc = rt_prog_node_run(&pr->host, &st->host, i, inputs, ctx, d);
            if (tr.t)
                rt_trace_add(tr.t, ir_ops[pr->p->nodes[i].op].name, st->trace_pid, 3, t0, rt_trace_now_us(tr.t) - t0,
                             pr->p->name, i);
        } else {
            synced = 0;
            coll_pending |= (ir_ops[pr->p->nodes[i].op].flags & IR_F_COLLECTIVE) != 0;
            rc = order_node(pr, i, d);
            trace_mark(&tr, pr, i, 0);
            set_where(&x, i);
            if (!rc) rc = exec_node(&x);
            trace_mark(&tr, pr, i, 1);
            if (!rc && pr->rec[i]) rc = record_node(pr, i, d);
        }
        if (pr->has_host) host_done(pr, i);
    }
    if (pr->has_host) {
        for (int v = 0; v < pr->p->nvalues; v++) {
            if (pr->alias[v]) pr->host.vals[v].data = NULL;
            pr->alias[v] = pr->pending[v] = 0;
        }
        rt_prog_release(&pr->host);
    }
    /* drain the streams whatever happened: a kernel fault shows up here */
    ax_diag tmp;
    ax_diag_init(&tmp);
    int drained = dv_sync_all(dev, pr->p->name, &tmp);
    if (drained != 0) { /* a kernel fault first: a collective's failure may only be its echo */
        if (!rc)
            ax_error(d, pr->p->name, "a kernel of this program failed: %s%s", tmp.n ? tmp.entries[0].msg : "?",
                     dev->sync_each ? "" : " (rerun with AXO_CUDA_SYNC=1 to find the node)");
        rc = -1;
    }
    if (st->coll && st->coll->drain) { /* collectives that complete asynchronously: did they all succeed? */
        char err[512] = "";
        if (st->coll->drain(st->coll->ctx, err, sizeof err) != 0) {
            ax_error(d, pr->p->name, "%s", err[0] ? err : "a collective failed");
            rc = -1;
        }
    }
    ax_diag_free(&tmp);
    if (!rc) rc = check_flags(pr, st, inputs, ctx, d);
    trace_end(&tr, pr, st->trace_pid);
    if (!rc && plain && pr->graph_state == 0 && !st->trace) pr->graph_state = 1; /* kernels are loaded: capture next */
    return rc ? -1 : 0;
}

/* ==== packed storage: nf4, u8 ========================================================= */
int rt_cuda_is_packed(ir_dtype t) { return t == IR_NF4 || t == IR_U8; }

int64_t rt_cuda_packed_bytes(ir_dtype t, int64_t n) { return n > 0 ? bytes_of(t, n) : 0; }

int rt_cuda_pack(ir_dtype t, const float *src, int64_t n, uint8_t *dst, int64_t *bad) {
    float hi = t == IR_NF4 ? 15.0f : 255.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = src[i];
        if (!(v >= 0 && v <= hi && v == (float)(int)v)) { /* NaN fails too */
            if (bad) *bad = i;
            return -1;
        }
        uint8_t c = (uint8_t)v;
        if (t == IR_U8) dst[i] = c;
        else if (i % 2 == 0) dst[i / 2] = c; /* low nibble; clears the high one */
        else dst[i / 2] = (uint8_t)(dst[i / 2] | c << 4);
    }
    return 0;
}

void rt_cuda_unpack(ir_dtype t, const uint8_t *src, int64_t n, float *dst) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(t == IR_U8 ? src[i] : i % 2 == 0 ? src[i / 2] & 15u : src[i / 2] >> 4);
}

/* Packs n host floats into a new buffer of rt_cuda_packed_bytes; NULL with
 * the reason in d (out of memory, or an element that is no code/step). */
static uint8_t *pack_new(ir_dtype t, const float *src, int64_t n, const char *where, ax_diag *d) {
    int64_t b = rt_cuda_packed_bytes(t, n), bad = -1;
    uint8_t *h = malloc((size_t)(b > 0 ? b : 1));
    if (!h) {
        ax_error(d, where, "out of host memory");
        return NULL;
    }
    if (rt_cuda_pack(t, src, n, h, &bad) != 0) {
        ax_error(d, where, "element %lld is %g, which is not a%s (a whole number in [0, %d])", (long long)bad,
                 (double)src[bad], t == IR_NF4 ? "n nf4 code" : " u8 value", t == IR_NF4 ? 15 : 255);
        free(h);
        return NULL;
    }
    return h;
}

/* ==== host <-> device globals ======================================================== */
static int host_matches(rt_cuda_state *st, int g, const rt_buf *host, ax_diag *d) {
    const ir_global *G = &st->m->globals[g];
    int64_t n = rt_local_numel(st->m, &G->type);
    if (!host->data || host->numel != n) {
        ax_error(d, G->name, "host buffer of %lld elements for a device block of %lld", (long long)host->numel, (long long)n);
        return -1;
    }
    if (!st->allocated) {
        ax_error(d, G->name, "internal error: the device state is not allocated");
        return -1;
    }
    return 0;
}

int rt_cuda_upload(rt_cuda_state *st, int g, const rt_buf *host, ax_diag *d) {
    if (host_matches(st, g, host, d)) return -1;
    const ir_global *G = &st->m->globals[g];
    if (ir_global_on_host(G)) { /* same storage as the CPU executor's */
        memcpy(st->host.globals[g].data, host->data, (size_t)host->numel * 4);
        if (st->img_ok) st->img_ok[g] = 0; /* its bf16 image is made again before the next copy */
        return 0;
    }
    int64_t n = host->numel, bytes = st->gbytes[g];
    if (rt_cuda_is_packed(G->type.dtype)) { /* one float per element on the host, packed on the device */
        uint8_t *h = pack_new(G->type.dtype, rt_f(host), n, G->name, d);
        int rc = !h || dv_h2d(st->dev, st->globals[g], h, bytes, G->name, d) || dv_sync(st->dev, G->name, d);
        free(h);
        return rc ? -1 : 0;
    }
    if (G->type.dtype != IR_BF16) {
        if (dv_h2d(st->dev, st->globals[g], host->data, bytes, G->name, d)) return -1;
        return dv_sync(st->dev, G->name, d);
    }
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
    if (!h) {
        ax_error(d, G->name, "out of host memory");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) h[i] = ax_f32_to_bf16(rt_f(host)[i]);
    int rc = dv_h2d(st->dev, st->globals[g], h, bytes, G->name, d) || dv_sync(st->dev, G->name, d);
    free(h);
    return rc ? -1 : 0;
}

int rt_cuda_download(rt_cuda_state *st, int g, rt_buf *host, ax_diag *d) {
    if (host_matches(st, g, host, d)) return -1;
    const ir_global *G = &st->m->globals[g];
    if (ir_global_on_host(G)) {
        if (dv_sync(st->dev, G->name, d)) return -1; /* a run ends synchronised; cheap either way */
        memcpy(host->data, st->host.globals[g].data, (size_t)host->numel * 4);
        return 0;
    }
    int64_t n = host->numel, bytes = st->gbytes[g];
    if (rt_cuda_is_packed(G->type.dtype)) {
        uint8_t *h = malloc((size_t)(bytes > 0 ? bytes : 1));
        int rc = !h || dv_d2h(st->dev, h, st->globals[g], bytes, G->name, d);
        if (!rc) rt_cuda_unpack(G->type.dtype, h, n, rt_f(host));
        else if (!h) ax_error(d, G->name, "out of host memory");
        free(h);
        return rc ? -1 : 0;
    }
    if (G->type.dtype != IR_BF16) return dv_d2h(st->dev, host->data, st->globals[g], bytes, G->name, d);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
    if (!h) {
        ax_error(d, G->name, "out of host memory");
        return -1;
    }
    int rc = dv_d2h(st->dev, h, st->globals[g], bytes, G->name, d);
    if (!rc)
        for (int64_t i = 0; i < n; i++) rt_f(host)[i] = ax_bf16_to_f32(h[i]);
    free(h);
    return rc;
}

/* ==== host-staged device collectives ================================================ */
/* Device buffer of n elements of dt -> host floats (and back). */
/* i32 travels as its bits (ring_shift); nf4 and u8 as one float per code or
 * step, as the CPU executor holds them (all_gather of QLoRA weights). */
static int stage_down(rt_cuda_dev *dev, ir_dtype t, const void *src, float *host, int64_t n, ax_diag *d) {
    if (rt_cuda_is_packed(t)) {
        int64_t b = rt_cuda_packed_bytes(t, n);
        uint8_t *h = malloc((size_t)(b > 0 ? b : 1));
        int rc = !h || dv_d2h(dev, h, (uint64_t)(uintptr_t)src, b, "collective", d);
        if (!rc) rt_cuda_unpack(t, h, n, host);
        free(h);
        return rc ? -1 : 0;
    }
    if (t != IR_BF16) return dv_d2h(dev, host, (uint64_t)(uintptr_t)src, n * 4, "collective", d);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
    if (!h) return -1;
    int rc = dv_d2h(dev, h, (uint64_t)(uintptr_t)src, n * 2, "collective", d);
    for (int64_t i = 0; !rc && i < n; i++) host[i] = ax_bf16_to_f32(h[i]);
    free(h);
    return rc;
}
static int stage_up(rt_cuda_dev *dev, ir_dtype t, const float *host, void *dst, int64_t n, ax_diag *d) {
    if (rt_cuda_is_packed(t)) {
        uint8_t *h = pack_new(t, host, n, "collective", d);
        int rc = !h || dv_h2d(dev, (uint64_t)(uintptr_t)dst, h, rt_cuda_packed_bytes(t, n), "collective", d) ||
                 dv_sync(dev, "collective", d);
        free(h);
        return rc ? -1 : 0;
    }
    if (t != IR_BF16)
        return dv_h2d(dev, (uint64_t)(uintptr_t)dst, host, n * 4, "collective", d) || dv_sync(dev, "collective", d);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
    if (!h) return -1;
    for (int64_t i = 0; i < n; i++) h[i] = ax_f32_to_bf16(host[i]); /* the CPU rounds bf16 results too */
    int rc = dv_h2d(dev, (uint64_t)(uintptr_t)dst, h, n * 2, "collective", d) || dv_sync(dev, "collective", d);
    free(h);
    return rc;
}

static int hc_all_reduce(void *ctx, int axis, ir_dtype t, void *buf, int64_t n, void *stream) {
    rt_cuda_host_coll *c = ctx;
    ax_diag d;
    ax_diag_init(&d);
    float *h = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int rc = !h || stage_down(c->dev, t, buf, h, n, &d) || c->host->all_reduce(c->host->ctx, axis, h, n) ||
             stage_up(c->dev, t, h, buf, n, &d);
    free(h);
    ax_diag_free(&d);
    (void)stream;
    return rc ? -1 : 0;
}
static int hc_all_gather(void *ctx, int axis, ir_dtype t, const void *send, void *recv, int64_t n, void *stream) {
    rt_cuda_host_coll *c = ctx;
    int64_t world = c->world[axis];
    ax_diag d;
    ax_diag_init(&d);
    (void)stream;
    float *s = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)), *r = malloc(sizeof(float) * (size_t)(n * world + 1));
    int rc = !s || !r || stage_down(c->dev, t, send, s, n, &d) || c->host->all_gather(c->host->ctx, axis, s, r, n) ||
             stage_up(c->dev, t, r, recv, n * world, &d);
    free(s);
    free(r);
    ax_diag_free(&d);
    return rc ? -1 : 0;
}
static int hc_reduce_scatter(void *ctx, int axis, ir_dtype t, const void *send, void *recv, int64_t n, void *stream) {
    rt_cuda_host_coll *c = ctx;
    int64_t world = c->world[axis];
    ax_diag d;
    ax_diag_init(&d);
    (void)stream;
    float *s = malloc(sizeof(float) * (size_t)(n * world + 1)), *r = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int rc = !s || !r || stage_down(c->dev, t, send, s, n * world, &d) ||
             c->host->reduce_scatter(c->host->ctx, axis, s, r, n) || stage_up(c->dev, t, r, recv, n, &d);
    free(s);
    free(r);
    ax_diag_free(&d);
    return rc ? -1 : 0;
}

static int hc_ring_shift(void *ctx, int axis, ir_dtype t, const void *send, void *recv, int64_t n, void *stream) {
    rt_cuda_host_coll *c = ctx;
    ax_diag d;
    ax_diag_init(&d);
    (void)stream;
    float *s = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)), *r = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int rc = !s || !r || !c->host->ring_shift || stage_down(c->dev, t, send, s, n, &d) ||
             c->host->ring_shift(c->host->ctx, axis, s, r, n) || stage_up(c->dev, t, r, recv, n, &d);
    free(s);
    free(r);
    ax_diag_free(&d);
    return rc ? -1 : 0;
}

void rt_cuda_host_coll_init(rt_cuda_host_coll *c, rt_cuda_dev *dev, const rt_collectives *host,
                            const ir_module *m) {
    memset(c, 0, sizeof *c);
    c->dev = dev;
    c->host = host;
    for (int a = 0; a < IR_MAX_MESH; a++) c->world[a] = a < m->nmesh ? m->mesh_sizes[a] : 1;
    c->dc = (rt_dev_collectives){.ctx = c, .all_reduce = hc_all_reduce, .all_gather = hc_all_gather,
                                 .reduce_scatter = hc_reduce_scatter, .ring_shift = hc_ring_shift};
}

int rt_cuda_plan_check(const ir_module *m, ax_diag *d) {
    rt_cuda_opts o = {.dry_run = 1};
    rt_cuda_dev *dev = NULL;
    rt_cuda_state st;
    memset(&st, 0, sizeof st);
    int rc = rt_cuda_dev_open(&dev, &o, d) || rt_cuda_state_init(&st, dev, m, d);
    for (int i = 0; i < m->nprograms && !rc; i++) {
        rt_cuda_prog pr;
        rc = rt_cuda_prog_init(&pr, &st, m->programs[i], d);
        rt_cuda_prog_free(&pr);
    }
    rt_cuda_state_free(&st);
    rt_cuda_dev_close(dev);
    return rc ? -1 : 0;
}

/* ==== the training-session backend ===================================================== */
typedef struct cuda_backend {
    rt_backend b;
    const rt_state *host; /* the session's state: its trace settings */
    rt_cuda_dev *dev;
    rt_cuda_state st;
    rt_cuda_prog progs[3]; /* micro_step, opt_step, eval_step */
    int nprogs;
    rt_cuda_host_coll hc;
} cuda_backend;

static int cb_run(rt_backend *b, const ir_program *p, rt_input_fn inputs, void *ictx, ax_diag *d) {
    cuda_backend *c = (cuda_backend *)b;
    c->st.trace = c->host ? c->host->trace : NULL; /* the step --trace asked for */
    c->st.trace_pid = c->host ? c->host->trace_pid : 0;
    for (int i = 0; i < c->nprogs; i++)
        if (c->progs[i].p == p) return rt_cuda_prog_run(&c->progs[i], &c->st, inputs, ictx, d);
    ax_error(d, p->name, "the CUDA backend did not prepare this program");
    return -1;
}

static int cb_upload(rt_backend *b, const rt_state *st, int g, ax_diag *d) {
    cuda_backend *c = (cuda_backend *)b;
    for (int i = g < 0 ? 0 : g; i < (g < 0 ? st->m->nglobals : g + 1); i++)
        if (rt_cuda_upload(&c->st, i, &st->globals[i], d)) return -1;
    return 0;
}

static int cb_download(rt_backend *b, rt_state *st, int g, ax_diag *d) {
    cuda_backend *c = (cuda_backend *)b;
    for (int i = g < 0 ? 0 : g; i < (g < 0 ? st->m->nglobals : g + 1); i++)
        if (rt_cuda_download(&c->st, i, &st->globals[i], d)) return -1;
    return 0;
}

static void cb_destroy(rt_backend *b) {
    cuda_backend *c = (cuda_backend *)b;
    for (int i = 0; i < c->nprogs; i++) rt_cuda_prog_free(&c->progs[i]);
    rt_cuda_state_free(&c->st);
    rt_cuda_dev_close(c->dev);
    free(c);
}

int rt_cuda_attach(rt_session *s, const rt_cuda_opts *o, ax_diag *d) {
    cuda_backend *c = calloc(1, sizeof *c);
    if (!c) {
        ax_error(d, "cuda", "out of host memory");
        return -1;
    }
    c->b = (rt_backend){.name = "cuda", .ctx = c, .run = cb_run, .upload = cb_upload, .download = cb_download,
                        .destroy = cb_destroy};
    c->host = &s->st;
    int rc = rt_cuda_dev_open(&c->dev, o, d) || rt_cuda_state_init(&c->st, c->dev, s->m, d);
    const ir_program *ps[3] = {s->micro.p, s->has_opt ? s->opt.p : NULL, s->has_eval ? s->eval.p : NULL};
    for (int i = 0; i < 3 && !rc; i++) {
        if (!ps[i]) continue;
        rc = rt_cuda_prog_init(&c->progs[c->nprogs], &c->st, ps[i], d);
        c->nprogs++; /* counted even on failure so that destroy frees it */
    }
    if (!rc) {
        memcpy(c->st.coord, s->st.coord, sizeof c->st.coord);
        if (o->coll) {
            c->st.coll = o->coll;
        } else if (s->st.coll) {
            rt_cuda_host_coll_init(&c->hc, c->dev, s->st.coll, s->m);
            c->st.coll = &c->hc.dc;
        }
        rt_cuda_prog *pp[3] = {&c->progs[0], &c->progs[1], &c->progs[2]};
        rc = rt_cuda_state_alloc(&c->st, pp, c->nprogs, d) || cb_upload(&c->b, &s->st, -1, d);
    }
    if (rc) {
        if (c->dev) cb_destroy(&c->b);
        else free(c);
        return -1;
    }
    int rank0 = 1;
    for (int a = 0; a < s->m->nmesh; a++) rank0 &= s->st.coord[a] == 0;
    if (o->info && o->info_cap && rank0) {
        char name[200], h1[32], h2[32], h3[32], h4[32];
        int64_t gsum = 0;
        for (int g = 0; g < s->m->nglobals; g++) gsum += c->st.gbytes[g];
        snprintf(o->info, o->info_cap, "CUDA executor on %s: %s on the device (globals %s, activation arena %s, scratch %s)",
                 rt_cuda_dev_name(c->dev, name, sizeof name), human(c->st.total_bytes, h1, sizeof h1),
                 human(gsum, h2, sizeof h2), human(c->st.arena_bytes, h3, sizeof h3),
                 human(c->st.scratch_bytes, h4, sizeof h4));
        if (c->st.host_bytes > 0) { /* CPU offload */
            size_t l = strlen(o->info);
            int64_t pin = c->st.pinned_bytes, pag = c->st.pageable_bytes;
            snprintf(o->info + l, o->info_cap - l,
                     "; offloaded state in host memory: %s (with the copy buffers %s: %s)",
                     human(c->st.host_bytes, h1, sizeof h1), human(pin + pag, h2, sizeof h2),
                     !pag ? "pinned, asynchronous copies" : !pin ? "pageable, synchronous copies" : "partly pinned");
        }
    }
    s->backend = &c->b;
    return 0;
}
