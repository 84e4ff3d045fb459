// emu_device.cc — the CUDA executor's emulated device: every kernel of
// codegen/kernels/ as host C++ on the SIMT emulator of cuda_bf16.h, fused
// kernels compiled on first use, GEMMs on the host. See emu_device.h.
#include "emu/cuda_bf16.h"

#include "codegen/kernels/common.cuh"
// every source in one translation unit (their helpers do not clash; ir/quant.h's guard keeps one copy)
#include "codegen/kernels/adamw.cuh"
#include "codegen/kernels/attention_any.cuh"
#include "codegen/kernels/attention_blk.cuh"
#include "codegen/kernels/attention_bwd.cuh"
#include "codegen/kernels/attention_fwd.cuh"
#include "codegen/kernels/attention_tc.cuh"
#include "codegen/kernels/bias.cuh"
#include "codegen/kernels/cross_entropy.cuh"
#include "codegen/kernels/dora.cuh"
#include "codegen/kernels/elementwise.cuh"
#include "codegen/kernels/embedding.cuh"
#include "codegen/kernels/misc.cuh"
#include "codegen/kernels/moe.cuh"
#include "codegen/kernels/quant.cuh"
#include "codegen/kernels/reduce.cuh"
#include "codegen/kernels/rmsnorm.cuh"
#include "codegen/kernels/rope.cuh"
#include "codegen/kernels/swiglu.cuh"

extern "C" {
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "emu/emu_device.h"
#include "ir/base.h"
#include "runtime/cpu_kernels.h"
}

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <string>

#ifndef AXO_EMU_CXX
#define AXO_EMU_CXX "c++"
#endif
#ifndef AXO_EMU_INCLUDE
#define AXO_EMU_INCLUDE "."
#endif
#ifndef AXO_EMU_CACHE_DIR
#define AXO_EMU_CACHE_DIR "emu-kernels"
#endif

namespace {

struct kentry {
    const char *name;
    void (*call)(void **);
};
#define E(fn) kentry{#fn, &emu_invoker<decltype(&fn), &fn>::call}
#define E2(base) E(base##_f32), E(base##_bf16)
const kentry table[] = {
    // adamw
    E(axo_adamw_f32), E(axo_adamw_bf16), E(axo_adamw_sr_bf16), E2(axo_adamw8),
    // attention_any
    E2(axo_attn_any_fwd), E2(axo_attn_any_bwd_dq), E2(axo_attn_any_bwd_dkdv), E2(axo_attn_sink), E2(axo_attn_sink_bwd),
    // attention_blk
    E2(axo_attn_blk_fwd_hd64), E2(axo_attn_blk_fwd_hd128), E2(axo_attn_blk_bwd_preprocess),
    E2(axo_attn_blk_bwd_dkdv_hd64), E2(axo_attn_blk_bwd_dkdv_hd128), E2(axo_attn_blk_bwd_dq_hd64),
    E2(axo_attn_blk_bwd_dq_hd128), E(axo_attn_merge_f32),
    // attention_bwd
    E2(axo_attn_bwd_preprocess), E2(axo_attn_bwd_dkdv_hd64), E2(axo_attn_bwd_dkdv_hd128), E2(axo_attn_bwd_dq_hd64),
    E2(axo_attn_bwd_dq_hd128),
    // attention_fwd
    E2(axo_attn_fwd_hd64), E2(axo_attn_fwd_hd128),
    // attention_tc
    E(axo_attn_tc_fwd_hd64_bf16), E(axo_attn_tc_bwd_dkdv_hd64_bf16), E(axo_attn_tc_bwd_dq_hd64_bf16),
    E(axo_attn_tc_fwd_hd128_bf16), E(axo_attn_tc_bwd_dkdv_hd128_bf16), E(axo_attn_tc_bwd_dq_hd128_bf16),
    E(axo_attn_tc_blk_fwd_hd64_bf16), E(axo_attn_tc_blk_bwd_dkdv_hd64_bf16), E(axo_attn_tc_blk_bwd_dq_hd64_bf16),
    E(axo_attn_tc_blk_fwd_hd128_bf16), E(axo_attn_tc_blk_bwd_dkdv_hd128_bf16), E(axo_attn_tc_blk_bwd_dq_hd128_bf16),
    // bias
    E2(axo_bias_add), E2(axo_bias_grad_partial), E2(axo_bias_grad_reduce),
    // cross_entropy
    E2(axo_cross_entropy_fwd), E2(axo_cross_entropy_bwd), E2(axo_lce_chunk), E(axo_cross_entropy_reduce),
    E(axo_dpo_loss),
    // dora
    E2(axo_dora_norm), E2(axo_dora_scale), E2(axo_dora_scale_bwd), E(axo_dora_dm_reduce), E2(axo_lora_delta),
    E2(axo_lora_delta_da), E2(axo_lora_delta_db),
    // elementwise
    E2(axo_add), E2(axo_mul), E2(axo_scale), E2(axo_sigmoid), E2(axo_sigmoid_bwd), E2(axo_acc), E(axo_convert_f32_bf16), E(axo_convert_bf16_f32),
    // embedding
    E2(axo_embedding_fwd), E2(axo_embedding_bwd),
    // misc
    E(axo_fill_u32), E(axo_fill_u16), E(axo_acc_f32_bf16), E(axo_acc_bf16_f32), E(axo_clip_coef), E2(axo_slice),
    E2(axo_slice_bwd),
    // moe
    E2(axo_moe_route), E2(axo_moe_route_bwd), E(axo_moe_count), E(axo_moe_fill), E2(axo_moe_gemm), E(axo_moe_gemm_af32_bf16),
    E2(axo_moe_wgrad), E(axo_moe_wgrad_bf32_bf16), E(axo_moe_gemm_tc_bf16), E(axo_moe_gemm_tc_af32_bf16),
    E(axo_moe_wgrad_tc_bf16), E(axo_moe_wgrad_tc_bf32_bf16), E2(axo_moe_lb_rows), E2(axo_moe_lb_stats_bwd),
    E(axo_moe_lb_loss), E(axo_moe_lb_loss_bwd), E2(axo_moe_act), E2(axo_moe_act_bwd), E2(axo_moe_combine), E2(axo_moe_dw), E2(axo_moe_scale),
    E2(axo_moe_bias), E2(axo_moe_oss_act), E2(axo_moe_oss_act_bwd), E2(axo_moe_colsum), E2(axo_moe_expand),
    // quant
    E2(axo_dropout), E2(axo_neftune), E2(axo_dequant_nf4),
    // reduce
    E2(axo_sumsq_partial), E(axo_sumsq_final),
    // rmsnorm
    E2(axo_geglu_fwd), E2(axo_geglu_bwd), E2(axo_rmsnorm_fwd), E2(axo_rmsnorm_bwd), E2(axo_rmsnorm_dw_reduce),
    // rope
    E2(axo_rope),
    // swiglu
    E2(axo_swiglu_fwd), E2(axo_swiglu_bwd),
};
#undef E2
#undef E

constexpr size_t nentries = sizeof table / sizeof table[0];
std::atomic<long> launches[nentries]; // per table row, for axo_emu_unlaunched
std::atomic<long> fused_launches;

const kentry *find(const char *name) {
    for (const kentry &e : table)
        if (!strcmp(e.name, name)) return &e;
    return nullptr;
}

// ---- fused kernels: fusegen's source, the host compiler, dlopen --------------------------
typedef void (*fused_run_fn)(const unsigned *grid, const unsigned *block, void **args);
struct fused {
    std::string entry;
    fused_run_fn run;
};
pthread_mutex_t fused_mu = PTHREAD_MUTEX_INITIALIZER;
std::vector<fused> fused_loaded; // never unloaded: launches may be running on other threads

std::string cache_dir() {
    const char *e = getenv("AXO_EMU_CACHE");
    return e && e[0] ? e : AXO_EMU_CACHE_DIR;
}

void set_err(char *err, size_t cap, const std::string &msg) { snprintf(err, cap, "%s", msg.c_str()); }

// The runner of fused kernel `entry` (compiled and loaded on first use).
fused_run_fn fused_get(const char *entry, const char *expr, const ir_dtype *in, int nin, char *err, size_t cap) {
    pthread_mutex_lock(&fused_mu);
    for (const fused &f : fused_loaded)
        if (f.entry == entry) {
            fused_run_fn r = f.run;
            pthread_mutex_unlock(&fused_mu);
            return r;
        }
    fused_run_fn run = nullptr;
    ax_buf src = {};
    ax_diag d;
    ax_diag_init(&d);
    char name[64];
    if (cg_fused_source(expr, in, nin, &src, name, sizeof name, &d) != 0) {
        set_err(err, cap, std::string("fusegen: ") + (d.n > 0 ? d.entries[0].msg : "?"));
    } else if (strcmp(name, entry) != 0) {
        set_err(err, cap, std::string("fusegen names the kernel ") + name + ", the executor " + entry);
    } else {
        std::string text((const char *)src.data, src.len);
        text += "\nextern \"C\" __attribute__((visibility(\"default\"))) void emu_fused_run(const unsigned *g, const unsigned *b, void **args) {\n"
                "    emu_launch_b(emu_dim3{g[0], g[1], g[2]}, emu_dim3{b[0], b[1], 1}, nullptr, 0,\n"
                "                 [&] { emu_invoker<decltype(&" + std::string(entry) + "), &" + entry +
                ">::call(args); });\n}\n";
        const std::string dir = cache_dir();
        const std::string cmd_head = std::string(AXO_EMU_CXX) +
                                     " -std=c++17 -O1 -fPIC -shared -w -fno-strict-aliasing -ffp-contract=off"
                                     // its own emulator state: nothing bound to another object's copy
                                     " -fvisibility=hidden -fvisibility-inlines-hidden -fno-gnu-unique"
                                     " -I'" AXO_EMU_INCLUDE "'";
        const XXH64_hash_t h = XXH3_64bits_withSeed(text.data(), text.size(), XXH3_64bits(cmd_head.data(), cmd_head.size()));
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        const std::string base = dir + "/" + entry + "-" + hex, so = base + ".so";
        if (access(so.c_str(), R_OK) != 0) {
            char tag[64];
            snprintf(tag, sizeof tag, ".%ld.%lx", (long)getpid(), (unsigned long)pthread_self());
            const std::string cc = base + tag + ".cc", tmp = base + tag + ".so", log = base + tag + ".log";
            if (ax_mkdir_p(dir.c_str(), &d) != 0 || ax_write_file_atomic(cc.c_str(), text.data(), text.size(), &d) != 0) {
                set_err(err, cap, d.n > 0 ? std::string(d.entries[0].where) + ": " + d.entries[0].msg : "cannot write " + cc);
            } else {
                const std::string cmd = cmd_head + " '" + cc + "' -o '" + tmp + "' > '" + log + "' 2>&1";
                if (system(cmd.c_str()) != 0 || rename(tmp.c_str(), so.c_str()) != 0) {
                    std::string msg = "the host compiler failed on " + cc + " (" + cmd + ")";
                    if (FILE *l = fopen(log.c_str(), "r")) {
                        char line[400];
                        for (int k = 0; k < 6 && fgets(line, sizeof line, l); k++) msg += std::string("\n  ") + line;
                        fclose(l);
                    }
                    set_err(err, cap, msg);
                    unlink(tmp.c_str());
                } else {
                    unlink(cc.c_str());
                    unlink(log.c_str());
                }
            }
        }
        if (!err[0]) {
            void *lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
            run = lib ? (fused_run_fn)dlsym(lib, "emu_fused_run") : nullptr;
            if (!run) set_err(err, cap, std::string("cannot load ") + so + ": " + dlerror());
            else fused_loaded.push_back(fused{entry, run});
        }
    }
    ax_buf_free(&src);
    ax_diag_free(&d);
    pthread_mutex_unlock(&fused_mu);
    return run;
}

int launch(void *, const char *entry, const char *expr, const ir_dtype *in, int nin, const unsigned grid[3],
           const unsigned block[2], int64_t smem, void **args, char *err, size_t cap) {
    if (smem < 0 || (size_t)smem > emu_smem_bytes) {
        snprintf(err, cap, "%lld bytes of dynamic shared memory (the emulator has %zu)", (long long)smem, emu_smem_bytes);
        return -1;
    }
    if (block[0] * block[1] % 32 != 0) {
        snprintf(err, cap, "a block of %u x %u threads is not whole warps", block[0], block[1]);
        return -1;
    }
    if (expr) {
        fused_run_fn run = fused_get(entry, expr, in, nin, err, cap);
        if (!run) return -1;
        fused_launches++;
        run(grid, block, args);
        return 0;
    }
    const kentry *e = find(entry);
    if (!e) {
        snprintf(err, cap, "the emulator has no kernel %s (tests/unit/emu/emu_device.cc's table)", entry);
        return -1;
    }
    launches[(size_t)(e - table)]++;
    emu_launch_b(emu_dim3{grid[0], grid[1], grid[2]}, emu_dim3{block[0], block[1], 1}, emu_dyn_smem(), (size_t)smem,
                 [&] { e->call(args); });
    return 0;
}

float ld(const void *p, ir_dtype t, int64_t i) {
    return t == IR_BF16 ? ax_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

int gemm(void *, int64_t M, int64_t N, int64_t K, int ta, int tb, ir_dtype t, ir_dtype tc, const void *A,
         const void *B, void *C, int accumulate, char *err, size_t cap) {
    if ((t != IR_F32 && t != IR_BF16) || (tc != IR_F32 && tc != IR_BF16)) {
        snprintf(err, cap, "GEMM of %s into %s", ir_dtype_name(t), ir_dtype_name(tc));
        return -1;
    }
    // op(A) op(B) by the CPU executor's matmul (sequential fp32 sums in K order, no FMA), then cuBLASLt's
    // beta = 1 (the old C added to the product), rounded once to C's dtype
    std::vector<float> a, b, c((size_t)(M * N));
    const float *fa = (const float *)A, *fb = (const float *)B;
    if (t == IR_BF16) {
        a.resize((size_t)(M * K)), b.resize((size_t)(K * N));
        for (size_t i = 0; i < a.size(); i++) a[i] = ld(A, t, (int64_t)i);
        for (size_t i = 0; i < b.size(); i++) b[i] = ld(B, t, (int64_t)i);
        fa = a.data(), fb = b.data();
    }
    ck_matmul_f32(fa, fb, c.data(), M, N, K, ta, tb, 0);
    for (int64_t i = 0; i < M * N; i++) {
        float v = c[(size_t)i];
        if (accumulate) v += ld(C, tc, i);
        if (tc == IR_BF16) ((uint16_t *)C)[i] = ax_f32_to_bf16(v);
        else ((float *)C)[i] = v;
    }
    return 0;
}

const rt_cuda_emu hooks = {nullptr, launch, gemm};

} // namespace

extern "C" const rt_cuda_emu *axo_emu_device(void) { return &hooks; }

extern "C" int axo_emu_registry_mismatches(FILE *f) {
    int bad = 0, n = 0;
    for (int i = 0; i < cg_cuda_kernel_count(); i++) {
        const cg_cuda_kernel *k = cg_cuda_kernel_get(i);
        for (int j = 0; j < k->nentries; j++, n++)
            if (!find(k->entries[j])) fprintf(f, "the emulator lacks %s (%s.cuh)\n", k->entries[j], k->name), bad++;
    }
    for (const kentry &e : table)
        if (!cg_cuda_kernel_for_entry(e.name)) fprintf(f, "the emulator has %s, which no kernel source registers\n", e.name), bad++;
    if (n != (int)(sizeof table / sizeof table[0]) && !bad)
        fprintf(f, "the registry lists %d entries, the emulator %zu\n", n, sizeof table / sizeof table[0]), bad++;
    return bad;
}

extern "C" int axo_emu_unlaunched(FILE *f, long *fused) {
    int n = 0;
    for (size_t i = 0; i < nentries; i++)
        if (!launches[i]) fprintf(f, "%s%s", n++ ? ", " : "", table[i].name);
    if (n) fprintf(f, "\n");
    if (fused) *fused = fused_launches;
    return n;
}

extern "C" int axo_emu_entry_count(void) { return (int)nentries; }

extern "C" int axo_emu_has_kernel(const char *entry) { return find(entry) != nullptr; }
