/* axoc — the axo compiler driver: argument parsing only. */
#include "codegen/compile.h"
#include "frontend/config.h"
#include "frontend/hub.h"
#include "ir/ir.h"
#include "runtime/adapter.h"
#include "runtime/cuda_exec.h"
#include "runtime/sharded_ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "usage:\n"
    "  axoc compile CONFIG.yml [-o plan.bin] [--deepspeed FILE] [--dump-ir DIR]\n"
    "               [--world-size N] [--gpu-mem GiB] [--target cpu] [--no-cache] [--no-fuse]\n"
    "               [--arch sm_80,sm_90a|none]  CUBINs for these GPUs go into the plan (default:\n"
    "                                the GPU present, if any; none: no CUBINs, axorun compiles)\n"
    "  axoc preprocess CONFIG.yml [-n N] [-o OUT.jsonl] [--overwrite] [--deepspeed FILE]\n"
    "                                tokenize the datasets as axorun will; show N samples\n"
    "                                (default 3) as text(label, id); -o: write them pre-tokenized\n"
    "  axoc dump PLAN.bin            print a plan's summary, config and IR\n"
    "  axoc verify FILE.ir           parse and verify an IR text file\n"
    "  axoc fetch deepspeed_configs [--dest DIR] [--force]\n"
    "  axoc fetch model|adapter|dataset ORG/NAME [--revision R] [--split S]\n"
    "                                into the Hugging Face cache as compile fetches it; prints its path\n"
    "  axoc merge-sharded CHECKPOINT_DIR -o OUT_DIR [--overwrite]\n"
    "                                a SHARDED_STATE_DICT checkpoint -> HF model dir\n"
    "  axoc merge-lora ADAPTER_DIR [--base MODEL_DIR] -o OUT_DIR [--overwrite]\n"
    "                                a LoRA/QLoRA adapter + its base (default: the adapter's\n"
    "                                base_model_name_or_path) -> merged HF model dir\n"
    "  axoc --version\n";

static int finish(ax_diag *d, int rc) {
    ax_diag_print(d, stderr);
    ax_diag_free(d);
    return rc;
}

static int need_arg(int i, int argc, const char *flag) {
    if (i + 1 >= argc) {
        fprintf(stderr, "axoc: %s needs a value\n%s", flag, usage);
        return 0;
    }
    return 1;
}

/* --arch LIST: comma-separated sm_XX[a] names into archs (at most cap). */
static int parse_archs(const char *list, char archs[][16], int cap) {
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == cap || len < 4 || len >= 16 || strncmp(p, "sm_", 3) != 0) return -1;
        for (size_t i = 3; i < len; i++)
            if (!((p[i] >= '0' && p[i] <= '9') || (i + 1 == len && p[i] == 'a'))) return -1;
        memcpy(archs[n], p, len);
        archs[n++][len] = 0;
        p += len + (e ? 1 : 0);
    }
    return n;
}

static int cmd_compile(int argc, char **argv) {
    cg_options o = {.use_cache = 1};
    const char *out = "plan.bin";
    char archs[8][16];
    const char *arch_ptrs[8];
    int arch_given = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!need_arg(i, argc, a)) return 2;
            out = argv[++i];
        } else if (!strcmp(a, "--deepspeed")) {
            if (!need_arg(i, argc, a)) return 2;
            o.deepspeed = argv[++i];
        } else if (!strncmp(a, "--dump-ir=", 10)) {
            o.dump_ir = a + 10;
        } else if (!strcmp(a, "--dump-ir")) {
            if (!need_arg(i, argc, a)) return 2;
            o.dump_ir = argv[++i];
        } else if (!strcmp(a, "--world-size")) {
            if (!need_arg(i, argc, a)) return 2;
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 65536) {
                fprintf(stderr, "axoc: --world-size: expected a positive integer, found \"%s\"\n", argv[i]);
                return 2;
            }
            o.world_size = (int)v;
        } else if (!strcmp(a, "--gpu-mem")) {
            if (!need_arg(i, argc, a)) return 2;
            char *end;
            o.gpu_mem_gib = strtod(argv[++i], &end);
            if (*end || !(o.gpu_mem_gib > 0)) {
                fprintf(stderr, "axoc: --gpu-mem: expected a positive number of GiB, found \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--target")) {
            if (!need_arg(i, argc, a)) return 2;
            o.target = argv[++i];
            if (strcmp(o.target, "cpu") != 0) {
                fprintf(stderr, "axoc: --target %s: only \"cpu\" plans can be built yet (CUDA codegen pending)\n", o.target);
                return 2;
            }
        } else if (!strcmp(a, "--no-cache")) {
            o.use_cache = 0;
        } else if (!strcmp(a, "--no-fuse")) {
            o.no_fuse = 1;
        } else if (!strcmp(a, "--arch")) {
            if (!need_arg(i, argc, a)) return 2;
            arch_given = 1;
            const char *v = argv[++i];
            int n = strcmp(v, "none") ? parse_archs(v, archs, 8) : 0;
            if (n < 0 || (n == 0 && strcmp(v, "none"))) {
                fprintf(stderr, "axoc: --arch: expected GPU architectures like sm_80,sm_90a (or none), found \"%s\"\n", v);
                return 2;
            }
            o.narch = n;
        } else if (a[0] == '-') {
            fprintf(stderr, "axoc: unknown option %s\n%s", a, usage);
            return 2;
        } else if (!o.config_path) {
            o.config_path = a;
        } else {
            fprintf(stderr, "axoc: unexpected argument %s\n%s", a, usage);
            return 2;
        }
    }
    if (!o.config_path) {
        fprintf(stderr, "axoc compile: missing CONFIG.yml\n%s", usage);
        return 2;
    }
    /* no --arch: $AXO_GPU_ARCH (what axorun would build for), else the GPU of this machine, if there is one
     * (the plan then starts without compiling kernels) */
    const char *env_arch = getenv("AXO_GPU_ARCH");
    if (!arch_given && env_arch && env_arch[0]) {
        o.narch = parse_archs(env_arch, archs, 1);
        if (o.narch != 1) {
            fprintf(stderr, "axoc: AXO_GPU_ARCH: expected one GPU architecture like sm_90a, found \"%s\"\n", env_arch);
            return 2;
        }
    } else if (!arch_given && rt_cuda_device_count(NULL, 0) > 0 && rt_cuda_device_arch(0, archs[0], sizeof archs[0]) == 0) {
        o.narch = 1;
    }
    for (int k = 0; k < o.narch; k++) arch_ptrs[k] = archs[k];
    o.archs = arch_ptrs;
    ax_diag d;
    ax_diag_init(&d);
    cg_result r;
    if (cg_compile(&o, &r, &d) != 0) {
        cg_result_free(&r);
        return finish(&d, 1);
    }
    if (ax_write_file_atomic(out, r.plan.data, r.plan.len, &d) != 0) {
        cg_result_free(&r);
        return finish(&d, 1);
    }
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    if (r.from_cache) fprintf(stderr, "axoc: plan served from cache (key %s)\n", r.key_hex);
    if (r.summary) fprintf(stderr, "%s", r.summary);
    fprintf(stderr, "axoc: wrote %s (%zu bytes)\n", out, r.plan.len);
    cg_result_free(&r);
    return 0;
}

static int cmd_verify(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    ax_diag d;
    ax_diag_init(&d);
    size_t n;
    char *text = ax_read_file(argv[2], &n, &d);
    if (!text) return finish(&d, 1);
    ir_module *m = ir_parse(text, n, argv[2], &d);
    free(text);
    int rc = !m || ir_verify(m, &d) != 0;
    if (!rc) printf("%s: ok (%d globals, %d programs)\n", argv[2], m->nglobals, m->nprograms);
    ir_module_destroy(m);
    return finish(&d, rc);
}

/* axoc fetch model|adapter|dataset ORG/NAME [--revision R] [--split S]: into the Hugging Face cache, as compile
 * would fetch it (one machine downloads; the nodes of a job read the shared cache offline); prints the path */
static int cmd_fetch_hub(int argc, char **argv) {
    const char *kind = argv[2], *repo = argc > 3 ? argv[3] : NULL, *rev = NULL, *split = NULL;
    if (!repo || repo[0] == '-') {
        fprintf(stderr, "axoc fetch %s: needs a Hub repo id (org/name)\n%s", kind, usage);
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--revision") && need_arg(i, argc, argv[i])) {
            rev = argv[++i];
        } else if (!strcmp(argv[i], "--split") && !strcmp(kind, "dataset") && need_arg(i, argc, argv[i])) {
            split = argv[++i];
        } else {
            fprintf(stderr, "axoc fetch %s: unknown argument %s\n%s", kind, argv[i], usage);
            return 2;
        }
    }
    ax_diag d;
    ax_diag_init(&d);
    ax_arena *ar = ax_arena_create();
    const char *path = NULL;
    if (!fe_hub_is_repo_id(repo)) {
        ax_error(&d, repo, "expected a Hub repo id (org/name)");
    } else if (!strcmp(kind, "dataset")) {
        fe_hub_ds_sel sel = {.split = split};
        const char **files, *slice;
        char err[400];
        if (split && *split && fe_parse_split(ar, split, &sel.split, &slice, err, sizeof err)) { /* a slice: its files */
            ax_error(&d, "--split", "%s", err);
            ax_arena_destroy(ar);
            return finish(&d, 1);
        }
        int n = fe_hub_dataset(ar, repo, rev, &sel, repo, "dataset", &d, &files);
        for (int i = 0; i < n; i++) printf("%s\n", files[i]); /* the split's files, in order */
        ax_arena_destroy(ar);
        return finish(&d, n < 1);
    } else {
        path = fe_hub_model(ar, repo, rev, !strcmp(kind, "adapter") ? FE_HUB_ADAPTER : FE_HUB_CONFIG | FE_HUB_WEIGHTS, repo,
                            kind, &d);
    }
    if (path) printf("%s\n", path);
    ax_arena_destroy(ar);
    return finish(&d, path == NULL);
}

static int cmd_fetch(int argc, char **argv) {
    const char *dest = "deepspeed_configs";
    int force = 0;
    if (argc >= 3 && (!strcmp(argv[2], "model") || !strcmp(argv[2], "adapter") || !strcmp(argv[2], "dataset")))
        return cmd_fetch_hub(argc, argv);
    if (argc < 3 || strcmp(argv[2], "deepspeed_configs") != 0) {
        fprintf(stderr, "axoc fetch: expected deepspeed_configs, or model|adapter|dataset ORG/NAME\n%s", usage);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (!strcmp(argv[i], "--dest")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            dest = argv[++i];
        } else {
            fprintf(stderr, "axoc fetch: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    ax_diag d;
    ax_diag_init(&d);
    int rc = fe_fetch_deepspeed_configs(dest, force, &d) != 0;
    if (!rc) fprintf(stderr, "axoc: DeepSpeed configs are in %s/\n", dest);
    return finish(&d, rc);
}

static int cmd_preprocess(int argc, char **argv) {
    const char *cfg = NULL, *out = NULL, *ds = NULL;
    int n = 3, overwrite = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            out = argv[++i];
        } else if (!strcmp(argv[i], "-n")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000) {
                fprintf(stderr, "axoc preprocess: -n expects a count, found \"%s\"\n", argv[i]);
                return 2;
            }
            n = (int)v;
        } else if (!strcmp(argv[i], "--deepspeed")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            ds = argv[++i];
        } else if (!strcmp(argv[i], "--overwrite")) {
            overwrite = 1;
        } else if (argv[i][0] == '-' || cfg) {
            fprintf(stderr, "axoc preprocess: unexpected argument %s\n%s", argv[i], usage);
            return 2;
        } else {
            cfg = argv[i];
        }
    }
    if (!cfg) {
        fprintf(stderr, "axoc preprocess: missing CONFIG.yml\n%s", usage);
        return 2;
    }
    ax_diag d;
    ax_diag_init(&d);
    return finish(&d, cg_preprocess(cfg, ds, n, out, overwrite, &d) != 0);
}

/* The arguments of the merge commands: IN -o OUT [--overwrite], and
 * --base DIR where base is non-NULL. 0, or 2 after printing the usage. */
static int merge_args(int argc, char **argv, const char *what, const char **in, const char **out, int *overwrite,
                      const char **base) {
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            *out = argv[++i];
        } else if (base && !strcmp(argv[i], "--base")) {
            if (!need_arg(i, argc, argv[i])) return 2;
            *base = argv[++i];
        } else if (!strcmp(argv[i], "--overwrite")) {
            *overwrite = 1;
        } else if (argv[i][0] == '-' || *in) {
            fprintf(stderr, "axoc %s: unexpected argument %s\n%s", argv[1], argv[i], usage);
            return 2;
        } else {
            *in = argv[i];
        }
    }
    if (!*in || !*out) {
        fprintf(stderr, "axoc %s: needs %s and -o OUT_DIR\n%s", argv[1], what, usage);
        return 2;
    }
    return 0;
}

static int cmd_merge_sharded(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int overwrite = 0;
    if (merge_args(argc, argv, "CHECKPOINT_DIR", &in, &out, &overwrite, NULL)) return 2;
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_sharded_merge(in, out, overwrite, &d) != 0;
    if (!rc) fprintf(stderr, "axoc: merged %s into %s/model.safetensors\n", in, out);
    return finish(&d, rc);
}

/* `axolotl merge_lora`: fold a LoRA/QLoRA adapter into its base model */
static int cmd_merge_lora(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *base = NULL;
    int overwrite = 0;
    if (merge_args(argc, argv, "ADAPTER_DIR", &in, &out, &overwrite, &base)) return 2;
    ax_diag d;
    ax_diag_init(&d);
    /* the base named by --base or by adapter_config.json's base_model_name_or_path may be a Hub repo id (axorun
     * writes the one base_model came from): its snapshot in huggingface_hub's cache, downloaded if not there */
    rt_adapter_cfg acfg;
    ax_arena *ar = ax_arena_create();
    const char *key = "--base", *rev = NULL;
    if (!base && rt_adapter_config_read(in, &acfg, &d) == 0 && acfg.base[0]) {
        base = ax_arena_strdup(ar, acfg.base), key = "adapter_config.json's base_model_name_or_path";
        rev = acfg.revision[0] ? ax_arena_strdup(ar, acfg.revision) : NULL;
    }
    struct stat st;
    if (base && stat(base, &st) != 0 && fe_hub_is_repo_id(base))
        base = fe_hub_model(ar, base, rev, FE_HUB_CONFIG | FE_HUB_WEIGHTS, in, key, &d);
    int n = 0, rc = d.nerrors || rt_merge_lora(in, base, out, overwrite, &n, &d) != 0;
    ax_arena_destroy(ar);
    if (!rc) fprintf(stderr, "axoc: merged %d LoRA layers of %s into %s/model.safetensors\n", n, in, out);
    return finish(&d, rc);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("axoc %s\n", AXO_VERSION);
        return 0;
    }
    /* base_model: org/name and the like: a repo not in huggingface_hub's cache is downloaded into it */
    fe_hub_allow_download(1);
    if (!strcmp(argv[1], "compile")) return cmd_compile(argc, argv);
    if (!strcmp(argv[1], "dump")) {
        if (argc != 3) {
            fprintf(stderr, "%s", usage);
            return 2;
        }
        ax_diag d;
        ax_diag_init(&d);
        return finish(&d, cg_dump_plan(argv[2], stdout, &d) != 0);
    }
    if (!strcmp(argv[1], "verify")) return cmd_verify(argc, argv);
    if (!strcmp(argv[1], "preprocess")) return cmd_preprocess(argc, argv);
    if (!strcmp(argv[1], "fetch")) return cmd_fetch(argc, argv);
    if (!strcmp(argv[1], "merge-sharded")) return cmd_merge_sharded(argc, argv);
    if (!strcmp(argv[1], "merge-lora")) return cmd_merge_lora(argc, argv);
    fprintf(stderr, "axoc: unknown command \"%s\"\n%s", argv[1], usage);
    return 2;
}
