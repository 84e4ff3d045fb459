/* fuzz_config — an Axolotl YAML config through `axoc compile` (cg_compile:
 * the YAML reader, the key tables, the DeepSpeed/FSDP readers, the model's
 * config.json, lowering, every pass, memory planning, the plan writer) for
 * 4 ranks, with no cache. models/, data/ and deepspeed/ are the bundled
 * ones (configs/), so the seeds, copies of the bundled configs, compile. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_bundled_config(0);
    fz_file("c/config.yml", data, size);
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
