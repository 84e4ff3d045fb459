/* NVRTC layer and kernel registry, no GPU needed: every registered kernel
 * source compiles for sm_80 and sm_90a, and each CUBIN's global functions
 * are exactly the registry's entry points; the kernel cache goes miss ->
 * hit -> corrupt (detected, deleted, rebuilt) -> hit; a broken source gives
 * an error naming the kernel and carrying NVRTC's log; the generated
 * kernels of a representative plan's fused nodes (codegen/fusegen.c) and
 * of chains using every instruction compile too, each defining exactly its
 * entry point with the executor's parameter count. Without NVRTC the
 * test only checks the "not available" error and passes. */
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/nvrtc.h"
#include "frontend/lower.h"
#include "passes/passes.h"
#include "tests/check.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void test_registry(void) {
    int n = cg_cuda_kernel_count();
    CHECK(n >= 14);
    CHECK(cg_cuda_kernel_get(-1) == NULL);
    CHECK(cg_cuda_kernel_get(n) == NULL);
    for (int i = 0; i < n; i++) {
        const cg_cuda_kernel *k = cg_cuda_kernel_get(i);
        CHECK(k && k->name && k->source && k->entries);
        if (!k) continue;
        CHECK(cg_cuda_kernel_find(k->name) == k);
        CHECK_MSG(strstr(k->source, "#line 1 \"common.cuh\"") == k->source, "%s: common.cuh not prepended", k->name);
        CHECK_MSG(k->nentries > 0 && k->entries[k->nentries] == NULL, "%s", k->name);
        if (i > 0) CHECK_MSG(strcmp(cg_cuda_kernel_get(i - 1)->name, k->name) < 0, "registry not in name order");
        for (int j = 0; j < k->nentries; j++) {
            CHECK_MSG(cg_cuda_kernel_for_entry(k->entries[j]) == k, "entry %s listed twice", k->entries[j]);
            CHECK_MSG(strstr(k->source, "extern \"C\"") != NULL, "%s", k->name);
        }
    }
    CHECK(cg_cuda_kernel_find("common") == NULL);
    CHECK(cg_cuda_kernel_find("nope") == NULL);
    CHECK(cg_cuda_kernel_for_entry("axo_rmsnorm_fwd_bf16") == cg_cuda_kernel_find("rmsnorm"));
    CHECK(cg_cuda_kernel_for_entry("axo_attn_bwd_dq_hd128_f32") == cg_cuda_kernel_find("attention_bwd"));
    CHECK(cg_cuda_kernel_for_entry("axo_attn_blk_bwd_dkdv_hd64_bf16") == cg_cuda_kernel_find("attention_blk"));
    CHECK(cg_cuda_kernel_for_entry("axo_attn_merge_f32") == cg_cuda_kernel_find("attention_blk"));
}

#ifdef AXO_HAVE_NVRTC
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- compile every registered source for both archs (2 worker threads) ---- */
static const char *const archs[] = {"sm_80", "sm_90a"};
enum { NARCH = 2 };

typedef struct {
    int kernel, arch;
    int rc;
    ax_buf cubin, log;
    ax_diag d;
    double seconds;
    cg_kcache_status status;
} job;

typedef struct {
    job *jobs;
    int njobs;
    const char *cache_dir;
    pthread_mutex_t mu;
    int next;
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->njobs) return NULL;
        job *j = &p->jobs[i];
        const cg_cuda_kernel *k = cg_cuda_kernel_get(j->kernel);
        double t0 = now_s();
        j->rc = cg_nvrtc_compile_cached(p->cache_dir, k->name, k->source, archs[j->arch], NULL, 0, &j->cubin, &j->log,
                                        &j->status, &j->d);
        j->seconds = now_s() - t0;
    }
}

typedef struct {
    const cg_cuda_kernel *k;
    int unlisted;
} sym_ctx;
static void sym_cb(const char *sym, void *ctx) {
    sym_ctx *s = ctx;
    for (int i = 0; i < s->k->nentries; i++)
        if (strcmp(s->k->entries[i], sym) == 0) return;
    s->unlisted++;
    fprintf(stderr, "%s: CUBIN defines kernel %s that the registry does not list\n", s->k->name, sym);
}

/* Compiles everything into cache_dir; returns wall seconds. expect: the cache
 * status every job must report. */
static double compile_all(const char *cache_dir, cg_kcache_status expect, int verbose) {
    int nk = cg_cuda_kernel_count(), nj = nk * NARCH;
    job *jobs = calloc((size_t)nj, sizeof *jobs);
    for (int i = 0; i < nj; i++) {
        jobs[i].kernel = i / NARCH;
        jobs[i].arch = i % NARCH;
        ax_diag_init(&jobs[i].d);
    }
    pool p = {jobs, nj, cache_dir, PTHREAD_MUTEX_INITIALIZER, 0};
    double t0 = now_s();
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, &p);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    for (int i = 0; i < nj; i++) {
        job *j = &jobs[i];
        const cg_cuda_kernel *k = cg_cuda_kernel_get(j->kernel);
        CHECK_MSG(j->rc == 0, "%s for %s failed", k->name, archs[j->arch]);
        if (j->rc != 0) ax_diag_print(&j->d, stderr);
        CHECK_MSG(j->d.nwarnings == 0, "%s: unexpected warnings", k->name);
        CHECK_MSG(j->status == expect, "%s %s: cache status %d, expected %d", k->name, archs[j->arch], j->status,
                  expect);
        CHECK_MSG(j->cubin.len > 1000 && memcmp(j->cubin.data, "\177ELF", 4) == 0, "%s %s: no CUBIN", k->name,
                  archs[j->arch]);
        for (int e = 0; e < k->nentries; e++)
            CHECK_MSG(cg_cubin_has_function(j->cubin.data, j->cubin.len, k->entries[e]) == 1,
                      "%s %s: entry point %s missing from the CUBIN", k->name, archs[j->arch], k->entries[e]);
        sym_ctx sc = {k, 0};
        int nf = cg_cubin_functions(j->cubin.data, j->cubin.len, sym_cb, &sc);
        CHECK_MSG(nf == k->nentries && sc.unlisted == 0, "%s %s: %d kernels in CUBIN, %d listed", k->name,
                  archs[j->arch], nf, k->nentries);
        if (verbose)
            printf("  %-14s %-6s %7.2f s  cubin %7zu B  %d entries%s%s\n", k->name, archs[j->arch], j->seconds,
                   j->cubin.len, k->nentries, j->log.len > 1 ? "  log: " : "", j->log.len > 1 ? j->log.data : "");
        ax_buf_free(&j->cubin);
        ax_buf_free(&j->log);
        ax_diag_free(&j->d);
    }
    free(jobs);
    return wall;
}

static const char *tiny_src = "extern \"C\" __global__ void axo_tiny(float *x) { x[threadIdx.x] *= 2.0f; }\n";

static int count_entries(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strstr(e->d_name, ".cubin")) n++;
    closedir(dp);
    return n;
}

/* Replaces the entry file with `data`. */
static void put_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_cache(const char *dir) {
    ax_buf c1 = {0}, c2 = {0}, log = {0};
    ax_diag d;
    ax_diag_init(&d);
    cg_kcache_status st;
    char path[4200];
    CHECK(cg_kernel_cache_path(dir, "tiny", tiny_src, "sm_80", NULL, 0, path, sizeof path, &d) != NULL);
    CHECK(access(path, F_OK) != 0);

    /* miss -> stored */
    CHECK_EQ(cg_nvrtc_compile_cached(dir, "tiny", tiny_src, "sm_80", NULL, 0, &c1, &log, &st, &d), 0);
    CHECK_EQ(st, CG_KCACHE_MISS);
    CHECK(access(path, F_OK) == 0);
    CHECK(cg_cubin_has_function(c1.data, c1.len, "axo_tiny") == 1);
    CHECK(cg_cubin_has_function(c1.data, c1.len, "axo_other") == 0);
    /* hit: same bytes, no compile */
    double t0 = now_s();
    CHECK_EQ(cg_nvrtc_compile_cached(dir, "tiny", tiny_src, "sm_80", NULL, 0, &c2, &log, &st, &d), 0);
    double thit = now_s() - t0;
    CHECK_EQ(st, CG_KCACHE_HIT);
    CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0);
    CHECK_EQ(d.nwarnings, 0);
    printf("  cache hit: %.4f s\n", thit);

    /* The key moves with everything that determines the CUBIN. */
    char p2[4200];
    const char *opt[] = {"-DAXO_X=1"};
    CHECK(cg_kernel_cache_path(dir, "tiny", tiny_src, "sm_90a", NULL, 0, p2, sizeof p2, &d) && strcmp(p2, path));
    CHECK(cg_kernel_cache_path(dir, "tiny", tiny_src, "sm_80", opt, 1, p2, sizeof p2, &d) && strcmp(p2, path));
    CHECK(cg_kernel_cache_path(dir, "tiny2", tiny_src, "sm_80", NULL, 0, p2, sizeof p2, &d) && strcmp(p2, path));
    CHECK(cg_kernel_cache_path(dir, "tiny", "//\n", "sm_80", NULL, 0, p2, sizeof p2, &d) && strcmp(p2, path));
    CHECK(cg_kernel_cache_path(dir, "tiny", tiny_src, "sm_80", NULL, 0, p2, sizeof p2, &d) && !strcmp(p2, path));

    /* Corruptions: a flipped payload byte, a truncated file, a bad magic, an
     * empty file. Each is detected, deleted, rebuilt, and the rebuilt entry
     * then hits. */
    size_t len = 0;
    char *good = ax_read_file(path, &len, &d);
    CHECK(good && len == c1.len + 32);
    for (int kind = 0; good && kind < 4; kind++) {
        char *bad = malloc(len);
        memcpy(bad, good, len);
        size_t n = len;
        if (kind == 0) bad[32 + c1.len / 2] ^= 0x20;
        if (kind == 1) n = len - 7;
        if (kind == 2) bad[0] = 'X';
        if (kind == 3) n = 0;
        put_file(path, bad, n);
        free(bad);
        ax_diag dd;
        ax_diag_init(&dd);
        CHECK_EQ(cg_nvrtc_compile_cached(dir, "tiny", tiny_src, "sm_80", NULL, 0, &c2, &log, &st, &dd), 0);
        CHECK_MSG(st == CG_KCACHE_REBUILT, "corruption %d not detected (status %d)", kind, st);
        CHECK_EQ(dd.nerrors, 0);
        CHECK(dd.nwarnings == 1 && ax_diag_contains(&dd, "corrupt kernel cache entry"));
        CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0);
        size_t len2 = 0;
        char *again = ax_read_file(path, &len2, &dd);
        CHECK(again && len2 == len && memcmp(again, good, len) == 0);
        free(again);
        CHECK_EQ(cg_nvrtc_compile_cached(dir, "tiny", tiny_src, "sm_80", NULL, 0, &c2, &log, &st, &dd), 0);
        CHECK_EQ(st, CG_KCACHE_HIT);
        ax_diag_free(&dd);
    }
    free(good);

    ax_buf_free(&c1);
    ax_buf_free(&c2);
    ax_buf_free(&log);
    ax_diag_free(&d);
}

static void test_errors(void) {
    const char *broken = "extern \"C\" __global__ void axo_broken(float *x) {\n"
                        "    x[threadIdx.x] = undeclared_thing + ;\n"
                        "}\n";
    ax_buf cubin = {0}, log = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(cg_nvrtc_compile("my_broken_kernel", broken, "sm_90a", NULL, 0, &cubin, &log, &d), -1);
    CHECK_EQ(d.nerrors, 1);
    CHECK(ax_diag_contains(&d, "my_broken_kernel"));
    CHECK(ax_diag_contains(&d, "sm_90a"));
    CHECK(ax_diag_contains(&d, "undeclared_thing")); /* NVRTC's own words */
    CHECK(ax_diag_contains(&d, "my_broken_kernel.cu(2)")); /* its file(line) */
    CHECK_CONTAINS(log.data, "error");
    CHECK(d.n && strcmp(d.entries[0].where, "my_broken_kernel.cu") == 0);
    CHECK_EQ(cubin.len, 0);
    if (d.n) printf("  diagnostic for a broken kernel:\n    %s: %.200s\n", d.entries[0].where, d.entries[0].msg);
    ax_diag_free(&d);

    /* through the cache: an error, nothing stored */
    char dir[] = "/tmp/axo_nvrtc_err_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    ax_diag_init(&d);
    cg_kcache_status st;
    CHECK_EQ(cg_nvrtc_compile_cached(dir, "my_broken_kernel", broken, "sm_80", NULL, 0, &cubin, &log, &st, &d), -1);
    CHECK(ax_diag_contains(&d, "my_broken_kernel") && ax_diag_contains(&d, "undeclared_thing"));
    CHECK_EQ(count_entries(dir), 0);
    ax_diag_free(&d);
    rm_rf(dir);

    /* bad arch, bad options */
    ax_diag_init(&d);
    CHECK_EQ(cg_nvrtc_compile("tiny", tiny_src, "compute_90", NULL, 0, &cubin, &log, &d), -1);
    CHECK(ax_diag_contains(&d, "invalid GPU architecture") && ax_diag_contains(&d, "tiny"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    const char *badopt[] = {"--no-such-option"};
    CHECK_EQ(cg_nvrtc_compile("tiny", tiny_src, "sm_80", badopt, 1, &cubin, &log, &d), -1);
    CHECK(ax_diag_contains(&d, "tiny"));
    ax_diag_free(&d);

    /* garbage is not a CUBIN */
    CHECK_EQ(cg_cubin_functions("not an elf at all", 17, NULL, NULL), -1);
    CHECK_EQ(cg_cubin_has_function(NULL, 0, "x"), -1);
    ax_buf_free(&cubin);
    ax_buf_free(&log);
}

static void test_cache_dir_env(void) {
    const char *names[] = {"AXO_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
    char *saved[3];
    for (int i = 0; i < 3; i++) saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
    char buf[4096];
    setenv("AXO_CACHE_DIR", "/x/y", 1);
    CHECK_STREQ(cg_kernel_cache_dir(buf, sizeof buf), "/x/y/kernels");
    setenv("AXO_CACHE_DIR", "", 1); /* empty counts as unset */
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK_STREQ(cg_kernel_cache_dir(buf, sizeof buf), "/xdg/axo/kernels");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK_STREQ(cg_kernel_cache_dir(buf, sizeof buf), "/home/u/.cache/axo/kernels");
    unsetenv("HOME");
    CHECK(cg_kernel_cache_dir(buf, sizeof buf) == NULL);
    for (int i = 0; i < 3; i++) {
        if (saved[i]) setenv(names[i], saved[i], 1);
        else unsetenv(names[i]);
        free(saved[i]);
    }
}

/* ---- generated kernels of fused nodes --------------------------------------------------- */
typedef struct fsrc {
    char *expr;
    ir_dtype in[IR_MAX_IN];
    int nin;
} fsrc;

/* The distinct (expr, operand dtypes) of the fused nodes of a tiny Qwen2 plan
 * (biases) in bf16 with f32 master weights, 2 ranks ZeRO-3. */
static int plan_fused(fsrc *out, int cap) {
    fe_config c;
    fe_model m;
    memset(&m, 0, sizeof m);
    m.arch = FE_ARCH_QWEN2, m.arch_name = "Qwen2ForCausalLM", m.dir = "/nonexistent";
    m.hidden_size = 32, m.intermediate_size = 48, m.num_hidden_layers = 2, m.num_attention_heads = 4;
    m.num_key_value_heads = 2, m.head_dim = 8, m.vocab_size = 64, m.rope_theta = 10000, m.rms_norm_eps = 1e-6;
    m.tie_word_embeddings = 1, m.attention_bias = 1;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = 2, c.sequence_len = 16, c.gradient_accumulation_steps = 1, c.num_epochs = 1;
    c.sequence_parallel_degree = 1, c.seed = 1, c.output_dir = "/tmp", c.bf16 = 1;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    pass_ctx pc = {.m = mod, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0, .master_f32 = 1},
                   .shard = {.stage = 3, .reshard_after_forward = 1}};
    int rc = fe_lower(&c, &m, 2, mod, &loss, &d);
    pc.loss = loss;
    CHECK(rc == 0 && pass_pipeline(&pc, &d) == 0);
    int n = 0;
    for (int i = 0; i < mod->nprograms; i++)
        for (int j = 0; j < mod->programs[i]->nnodes; j++) {
            const ir_node *nd = &mod->programs[i]->nodes[j];
            if (nd->op != IR_OP_fused || n == cap) continue;
            fsrc f = {.expr = strdup(ir_attr_str(nd->attrs, nd->nattrs, "expr", "")), .nin = nd->nin};
            for (int k = 0; k < nd->nin; k++) f.in[k] = ir_ref_type(mod, mod->programs[i], nd->in[k])->dtype;
            int dup = 0;
            for (int q = 0; q < n && !dup; q++)
                dup = !strcmp(out[q].expr, f.expr) && out[q].nin == f.nin && !memcmp(out[q].in, f.in, sizeof(ir_dtype) * (size_t)f.nin);
            if (dup) free(f.expr);
            else out[n++] = f;
        }
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ir_module_destroy(mod);
    return n;
}

/* Parameters declared by .entry `entry` in PTX (between its parentheses). */
static int ptx_nparams(const char *ptx, const char *entry) {
    char key[96];
    snprintf(key, sizeof key, ".entry %s(", entry);
    const char *p = strstr(ptx, key), *end = p ? strchr(p, ')') : NULL;
    int n = 0;
    for (p = p ? strstr(p, "_param_") : NULL; p && p < end; p = strstr(p + 1, "_param_")) n++;
    return end ? n : -1;
}

static void test_fused_kernels(void) {
    fsrc fs[16];
    int n = plan_fused(fs, 12);
    CHECK_MSG(n >= 2, "%d distinct fused nodes in the plan", n); /* the grad sums (bf16) and the grad-norm sum (f32) */
    /* chains with every instruction, mixed dtypes, and more operands than the vector path takes */
    fs[n++] = (fsrc){strdup("mul(x0,x1):bf16; bias_add(t0,x2):bf16; swiglu(t1,x0):bf16; scale(t2,0.3):bf16; "
                            "convert(t3):f32; add(t4,x3):f32"),
                     {IR_BF16, IR_BF16, IR_BF16, IR_F32}, 4};
    fsrc wide = {.expr = NULL, .nin = 12};
    ax_buf e = {0};
    ax_buf_puts(&e, "convert(x0):f32");
    for (int k = 1; k < 12; k++) {
        wide.in[k] = k % 2 ? IR_BF16 : IR_F32;
        ax_buf_printf(&e, "; add(t%d,x%d):f32", k - 1, k);
    }
    wide.in[0] = IR_BF16;
    wide.expr = ax_buf_steal(&e);
    fs[n++] = wide;
    for (int i = 0; i < n; i++) {
        ax_buf src = {0}, ptx = {0};
        char entry[64];
        ax_diag d;
        ax_diag_init(&d);
        CHECK(cg_fused_source(fs[i].expr, fs[i].in, fs[i].nin, &src, entry, sizeof entry, &d) == 0);
        for (int a = 0; a < NARCH; a++) {
            ax_buf cubin = {0};
            int rc = cg_nvrtc_compile(entry, src.data, archs[a], NULL, 0, &cubin, NULL, &d);
            CHECK_MSG(rc == 0, "fused kernel %s (%s) for %s does not compile", entry, fs[i].expr, archs[a]);
            CHECK(rc != 0 || (cg_cubin_has_function(cubin.data, cubin.len, entry) == 1 &&
                              cg_cubin_functions(cubin.data, cubin.len, NULL, NULL) == 1));
            ax_buf_free(&cubin);
        }
        CHECK(cg_nvrtc_ptx(entry, src.data, "compute_90a", &ptx, &d) == 0);
        CHECK_MSG(ptx.data && ptx_nparams(ptx.data, entry) == fs[i].nin + 3, "%s: %d parameters in the PTX, %d expected",
                  entry, ptx.data ? ptx_nparams(ptx.data, entry) : -1, fs[i].nin + 3);
        printf("  fused kernel %s (%d operands): %s\n", entry, fs[i].nin, fs[i].expr);
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        ax_buf_free(&src);
        ax_buf_free(&ptx);
        free(fs[i].expr);
    }
}

#endif /* AXO_HAVE_NVRTC */

int main(void) {
    test_registry();
#ifndef AXO_HAVE_NVRTC
    ax_buf cubin = {0};
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(cg_nvrtc_available(), 0);
    CHECK_EQ(cg_nvrtc_compile("k", "int x;", "sm_80", NULL, 0, &cubin, NULL, &d), -1);
    CHECK(ax_diag_contains(&d, "NVRTC is not available"));
    ax_diag_free(&d);
    printf("test_nvrtc: built without NVRTC (no CUDA toolkit): compile checks skipped\n");
#else
    int ma = 0, mi = 0;
    CHECK_EQ(cg_nvrtc_version(&ma, &mi), 0);
    CHECK(cg_nvrtc_available());
    printf("NVRTC %d.%d\n", ma, mi);

    char dir[] = "/tmp/axo_nvrtc_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    printf("compiling %d kernel sources for sm_80 and sm_90a (cold cache %s):\n", cg_cuda_kernel_count(), dir);
    double cold = compile_all(dir, CG_KCACHE_MISS, 1);
    CHECK_EQ(count_entries(dir), cg_cuda_kernel_count() * NARCH);
    double warm = compile_all(dir, CG_KCACHE_HIT, 0);
    printf("all kernels, 2 archs, 2 threads: cold %.2f s, warm (cache hits) %.3f s\n", cold, warm);
    CHECK(warm < cold);

    /* pre-Ampere GPUs: every module a plan may load whole compiles for sm_75 too (moe.cuh holds tensor-core kernels
     * the executor launches on sm_80+ only; attention_tc.cuh is loaded only for its own kernels) */
    for (int i = 0; i < cg_cuda_kernel_count(); i++) {
        const cg_cuda_kernel *k = cg_cuda_kernel_get(i);
        if (strcmp(k->name, "moe") && strcmp(k->name, "dora")) continue;
        ax_buf cub = {0}, lg = {0};
        ax_diag dd;
        ax_diag_init(&dd);
        CHECK_MSG(cg_nvrtc_compile(k->name, k->source, "sm_75", NULL, 0, &cub, &lg, &dd) == 0, "%s for sm_75: %.2000s",
                  k->name, lg.data ? lg.data : "");
        ax_buf_free(&lg);
        ax_buf_free(&cub);
        ax_diag_free(&dd);
    }
    test_cache(dir);
    test_fused_kernels();
    test_errors();
    test_cache_dir_env();
    rm_rf(dir);
#endif
    return check_done();
}
