/* fuzz_model — a Hugging Face config.json: fe_model_load, then `axoc
 * compile` of a fixed config whose base_model is that directory (no weights:
 * the model is initialised from the seed), for 1 rank. */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations */
#define JSON_MUTATOR_OFFSET 0
#include "tests/fuzz/json_mutator.h"
#endif

#include "frontend/config.h"

#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *cfg;
    static char mdir[700];
    if (!cfg) {
        snprintf(mdir, sizeof mdir, "%s/m", fz_tmpdir());
        if (mkdir(mdir, 0755) != 0) abort();
        char yml[2048];
        int n = snprintf(yml, sizeof yml,
                         "base_model: m\ndatasets:\n  - path: %s/configs/data/toy_count.jsonl\n"
                         "sequence_len: 32\nmicro_batch_size: 1\nnum_epochs: 1\nmax_steps: 2\n"
                         "learning_rate: 0.001\noptimizer: adamw_torch\n",
                         fz_src());
        cfg = fz_file("config.yml", (const uint8_t *)yml, (size_t)n);
    }
    fz_file("m/config.json", data, size);
    ax_arena *ar = ax_arena_create();
    fe_model m;
    ax_diag d;
    ax_diag_init(&d);
    int rc = fe_model_load(mdir, &m, ar, &d);
    fz_check(rc, &d, "fe_model_load");
    ax_diag_free(&d);
    ax_arena_destroy(ar);
    if (rc == 0) fz_compile(cfg, NULL, 1, "cg_compile");
    return 0;
}
