/* fuzz_deepspeed — a DeepSpeed JSON (axoc compile --deepspeed FILE) with a
 * fixed config of the bundled tiny Llama, for 2 ranks. */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations */
#define JSON_MUTATOR_OFFSET 0
#include "tests/fuzz/json_mutator.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *cfg;
    if (!cfg) {
        char yml[2048];
        int n = snprintf(yml, sizeof yml,
                         "base_model: %s/configs/models/tiny-llama\n"
                         "datasets:\n  - path: %s/configs/data/toy_count.jsonl\n"
                         "sequence_len: 64\nmicro_batch_size: 2\ngradient_accumulation_steps: 2\n"
                         "num_epochs: 1\nlearning_rate: 0.001\noptimizer: adamw_torch\nbf16: auto\n",
                         fz_src(), fz_src());
        cfg = fz_file("config.yml", (const uint8_t *)yml, (size_t)n);
    }
    fz_compile(cfg, fz_file("ds.json", data, size), 2, "cg_compile --deepspeed");
    return 0;
}
