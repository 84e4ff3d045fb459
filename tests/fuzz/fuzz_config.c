/* fuzz_config — an Axolotl YAML config through `axoc compile` (cg_compile:
 * the YAML reader, the key tables, the DeepSpeed/FSDP readers, the model's
 * config.json, lowering, every pass, memory planning, the plan writer) for
 * 4 ranks, with no cache. models/, data/ and deepspeed/ are the bundled
 * ones (configs/), so the seeds, copies of the bundled configs, compile. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"

#include <sys/stat.h>

static void link_in(const char *name, const char *target) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/%s", fz_src(), target);
    snprintf(dst, sizeof dst, "%s/%s", fz_tmpdir(), name);
    if (symlink(src, dst) != 0) {
        perror(dst);
        abort();
    }
    snprintf(dst, sizeof dst, "%s/c/%s", fz_tmpdir(), name);
    if (symlink(src, dst) != 0) {
        perror(dst);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        /* the config is c/config.yml; models/, data/ and deepspeed/ are in c/ and next to it, so that the
         * bundled configs' paths (models/..., ../models/...) resolve */
        char c[1024];
        snprintf(c, sizeof c, "%s/c", fz_tmpdir());
        if (mkdir(c, 0755) != 0) abort();
        link_in("models", "configs/models");
        link_in("data", "configs/data");
        link_in("deepspeed", "configs/deepspeed");
        init = 1;
    }
    const char *path = fz_file("c/config.yml", data, size);
    cg_options o = {.config_path = path, .target = "cpu", .world_size = 4, .use_cache = 0};
    cg_result r = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc = cg_compile(&o, &r, &d);
    fz_check(rc, &d, "cg_compile");
    cg_result_free(&r);
    ax_diag_free(&d);
    return 0;
}
