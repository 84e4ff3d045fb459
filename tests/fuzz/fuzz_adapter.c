/* fuzz_adapter — a LoRA adapter dir for `axoc merge-lora` (and lora_model_dir).
 * At start-up a tiny model is fine-tuned for a step to give a base with
 * weights, then a LoRA on it (with lora_modules_to_save) for a step to give a
 * real adapter (fz_train_tiny). The first byte of an input picks
 * adapter_config.json or adapter_model.safetensors, and the rest replaces it
 * in a copy of the adapter, which rt_merge_lora folds into the base.
 *
 * AXO_FUZZ_WRITE_SEEDS=DIR writes a seed per file into DIR. */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations after the selector byte */
#define JSON_MUTATOR_OFFSET 1
#include "tests/fuzz/json_mutator.h"
#endif

#include "runtime/adapter.h"

#include <sys/stat.h>

static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors"};
enum { NFILES = sizeof files / sizeof files[0] };

static struct {
    char base[4096], work[4096], out[4096];
    uint8_t *bytes[NFILES];
    size_t len[NFILES];
} G;

static void setup(void) {
    snprintf(G.base, sizeof G.base, "%s", fz_train_tiny("base", NULL, ""));
    const char *lora = fz_train_tiny(
        "lora", G.base, "adapter: lora\nlora_r: 2\nlora_alpha: 4\nlora_target_linear: true\nlora_modules_to_save: [lm_head]\n");
    fz_read_files(lora, files, NFILES, G.bytes, G.len);
    snprintf(G.work, sizeof G.work, "%s/ad", fz_tmpdir());
    snprintf(G.out, sizeof G.out, "%s/merged", fz_tmpdir());
    if (mkdir(G.work, 0755) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!G.base[0]) setup();
    if (size == 0) return 0;
    fz_put_files(G.work, files, NFILES, G.bytes, G.len, data, size);
    ax_diag d;
    ax_diag_init(&d);
    rt_adapter_cfg ac;
    fz_check(rt_adapter_config_read(G.work, &ac, &d), &d, "rt_adapter_config_read");
    ax_diag_free(&d);
    ax_diag_init(&d);
    int merged = 0;
    fz_check(rt_merge_lora(G.work, G.base, G.out, 1, &merged, &d), &d, "rt_merge_lora");
    ax_diag_free(&d);
    return 0;
}
