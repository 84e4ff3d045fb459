/* fuzz_adapter — a LoRA adapter dir for `axoc merge-lora` (and lora_model_dir).
 * At start-up a 1-layer Llama (hidden 8, vocab 32) is fine-tuned for a step to
 * give a base model with weights. A LoRA on that base (with lora_modules_to_save)
 * is then trained for a step, which gives a real adapter. The first byte of an
 * input picks adapter_config.json or adapter_model.safetensors, and the rest
 * replaces it in a copy of the adapter, which rt_merge_lora folds into the base.
 *
 * AXO_FUZZ_WRITE_SEEDS=DIR writes a seed per file into DIR. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"
#include "runtime/adapter.h"
#include "runtime/launch.h"
#include "runtime/train.h"

#include <sys/stat.h>

static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors"};
enum { NFILES = sizeof files / sizeof files[0] };

static struct {
    char base[4096], work[4096], out[4096];
    uint8_t *bytes[NFILES];
    size_t len[NFILES];
} G;

static void put(const char *dir, const char *name, const void *data, size_t n) {
    char p[8192];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) abort();
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p);
        abort();
    }
}

static void die(const char *what, ax_diag *d) {
    fprintf(stderr, "fuzz_adapter: %s failed\n", what);
    ax_diag_print(d, stderr);
    abort();
}

/* compiles t/NAME.yml (base_model, output_dir and `extra`) and trains it for a step on 1 rank */
static void train(const char *t, const char *name, const char *base, const char *extra) {
    char yml[4096], cpath[4096], plan[4096];
    int n = snprintf(yml, sizeof yml,
                     "base_model: %s\ndatasets:\n  - path: %s/d.jsonl\noutput_dir: %s/%s\n"
                     "sequence_len: 16\nmicro_batch_size: 2\nmax_steps: 1\nlearning_rate: 0.01\n"
                     "optimizer: adamw_torch\nseed: 3\n%s",
                     base, t, t, name, extra);
    put(t, "c.yml", yml, (size_t)n);
    snprintf(cpath, sizeof cpath, "%s/c.yml", t);
    snprintf(plan, sizeof plan, "%s/%s.bin", t, name);
    ax_diag d;
    ax_diag_init(&d);
    cg_options o = {.config_path = cpath, .target = "cpu", .world_size = 1, .use_cache = 0};
    cg_result r = {0};
    if (cg_compile(&o, &r, &d) != 0) die("compile", &d);
    put(t, strrchr(plan, '/') + 1, r.plan.data, r.plan.len);
    cg_result_free(&r);
    rt_train_opts to = {.quiet = 1};
    if (rt_train_local(plan, 1, &to, &d) != 0) die("training", &d);
    ax_diag_free(&d);
}

static void setup(void) {
    const char *t = fz_tmpdir();
    char p[4096];
    snprintf(p, sizeof p, "%s/m", t);
    if (mkdir(p, 0755) != 0) abort();
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8,"
                      " \"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                      " \"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 32, \"max_position_embeddings\": 64,"
                      " \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\","
                      " \"tie_word_embeddings\": false, \"torch_dtype\": \"float32\"}";
    put(p, "config.json", cfg, strlen(cfg));
    const char *data = "{\"input_ids\": [1, 5, 6, 7, 8, 9, 10, 2]}\n{\"input_ids\": [1, 11, 12, 13, 14, 2]}\n"
                       "{\"input_ids\": [1, 20, 21, 22, 23, 24, 25, 26, 2]}\n{\"input_ids\": [1, 3, 4, 2]}\n";
    put(t, "d.jsonl", data, strlen(data));
    train(t, "base", p, "");
    snprintf(G.base, sizeof G.base, "%s/base", t);
    train(t, "lora", G.base,
          "adapter: lora\nlora_r: 2\nlora_alpha: 4\nlora_target_linear: true\nlora_modules_to_save: [lm_head]\n");
    ax_diag d;
    ax_diag_init(&d);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/lora/%s", t, files[i]);
        G.bytes[i] = (uint8_t *)ax_read_file(p, &G.len[i], &d);
        if (!G.bytes[i]) die("reading the adapter", &d);
    }
    ax_diag_free(&d);
    snprintf(G.work, sizeof G.work, "%s/ad", t);
    snprintf(G.out, sizeof G.out, "%s/merged", t);
    if (mkdir(G.work, 0755) != 0) abort();
    const char *seeds = getenv("AXO_FUZZ_WRITE_SEEDS");
    for (int i = 0; seeds && i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/seed-%s", seeds, files[i]);
        FILE *f = fopen(p, "wb");
        if (!f || fputc(i, f) == EOF || fwrite(G.bytes[i], 1, G.len[i], f) != G.len[i] || fclose(f) != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!G.base[0]) setup();
    if (size == 0) return 0;
    int pick = data[0] % NFILES;
    for (int i = 0; i < NFILES; i++)
        if (i == pick) put(G.work, files[i], data + 1, size - 1);
        else put(G.work, files[i], G.bytes[i], G.len[i]);
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
