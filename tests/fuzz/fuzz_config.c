/* fuzz_config — an Axolotl YAML config through `axoc compile` (cg_compile:
 * the YAML reader, the key tables, the DeepSpeed/FSDP readers, the model's
 * config.json, lowering, every pass, memory planning, the plan writer) for
 * 4 ranks, with no cache. models/, data/ and deepspeed/ are the bundled
 * ones (configs/), so the seeds, copies of the bundled configs, compile. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_bundled_config(0);
    fz_file("c/config.yml", data, size);
    fz_compile(path, NULL, 4, "cg_compile");
    return 0;
}
