/* fuzz_checkpoint — a checkpoint-N/ directory that resume_from_checkpoint
 * reads back. A real checkpoint is trained at start-up: a 1-layer Llama
 * (hidden 8, vocab 32) for 1 step on the CPU executor, saving every step.
 * The first byte of an input picks one of the checkpoint's files, and the
 * rest replaces that file in a copy of the checkpoint. The copy then goes
 * through rt_resume_peek and rt_resume_load into a session of the same
 * plan. A refusal must say why, and nothing may crash.
 *
 * AXO_FUZZ_WRITE_SEEDS=DIR writes a seed per file (its selector byte and
 * the checkpoint's own bytes) into DIR. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"
#include "runtime/launch.h"
#include "runtime/resume.h"
#include "runtime/train.h"

#include <sys/stat.h>

/* the checkpoint's files that an input can replace */
static const char *const files[] = {"trainer_state.json", "model.safetensors", "optimizer/optimizer_state.json",
                                    "config.json", "optimizer/optimizer-rank00000-of-00001.safetensors"};
enum { NFILES = sizeof files / sizeof files[0] };

static struct {
    char ck[900], work[900];
    uint8_t *bytes[NFILES];
    size_t len[NFILES];
    rt_session s;
} G;

static void put(const char *dir, const char *name, const void *data, size_t n) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) abort();
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p);
        abort();
    }
}

static void die(const char *what, ax_diag *d) {
    fprintf(stderr, "fuzz_checkpoint: %s failed\n", what);
    ax_diag_print(d, stderr);
    abort();
}

static void setup(void) {
    const char *t = fz_tmpdir();
    char p[4096];
    snprintf(p, sizeof p, "%s/m", t);
    if (mkdir(p, 0755) != 0) abort();
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
                      "\"hidden_size\": 8,"
                      " \"intermediate_size\": 16, \"num_hidden_layers\": 1, "
                      "\"num_attention_heads\": 2,"
                      " \"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 32, "
                      "\"max_position_embeddings\": 64,"
                      " \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": "
                      "\"silu\","
                      " \"tie_word_embeddings\": false, \"torch_dtype\": \"float32\"}";
    put(p, "config.json", cfg, strlen(cfg));
    const char *data = "{\"input_ids\": [1, 5, 6, 7, 8, 9, 10, "
                       "2]}\n{\"input_ids\": [1, 11, 12, 13, 14, 2]}\n"
                       "{\"input_ids\": [1, 20, 21, 22, 23, 24, 25, 26, "
                       "2]}\n{\"input_ids\": [1, 3, 4, 2]}\n";
    put(t, "d.jsonl", data, strlen(data));
    char yml[2048];
    int n = snprintf(yml, sizeof yml,
                     "base_model: %s/m\ndatasets:\n  - path: %s/d.jsonl\noutput_dir: %s/out\n"
                     "sequence_len: 16\nmicro_batch_size: 2\ngradient_accumulation_steps: "
                     "1\nmax_steps: 1\n"
                     "save_steps: 1\nlearning_rate: 0.01\noptimizer: adamw_torch\nseed: "
                     "3\nlogging_steps: 1\n",
                     t, t, t);
    put(t, "c.yml", yml, (size_t)n);
    ax_diag d;
    ax_diag_init(&d);
    char cpath[1200], plan[1200];
    snprintf(cpath, sizeof cpath, "%s/c.yml", t);
    snprintf(plan, sizeof plan, "%s/plan.bin", t);
    cg_options o = {.config_path = cpath, .target = "cpu", .world_size = 1, .use_cache = 0};
    cg_result r = {0};
    if (cg_compile(&o, &r, &d) != 0) die("compile", &d);
    put(t, "plan.bin", r.plan.data, r.plan.len);
    cg_result_free(&r);
    rt_train_opts to = {.quiet = 1};
    if (rt_train_local(plan, 1, &to, &d) != 0) die("training", &d);
    snprintf(G.ck, sizeof G.ck, "%s/out/checkpoint-1", t);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/%s", G.ck, files[i]);
        G.bytes[i] = (uint8_t *)ax_read_file(p, &G.len[i], &d);
        if (!G.bytes[i]) die("reading the checkpoint", &d);
    }
    if (rt_session_open(plan, &G.s, &d) != 0) die("opening the plan", &d);
    ax_diag_free(&d);
    snprintf(G.work, sizeof G.work, "%s/ck", t);
    snprintf(p, sizeof p, "%s/ck/optimizer", t);
    if (mkdir(G.work, 0755) != 0 || mkdir(p, 0755) != 0) abort();
    const char *seeds = getenv("AXO_FUZZ_WRITE_SEEDS");
    for (int i = 0; seeds && i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/seed-%d", seeds, i);
        FILE *f = fopen(p, "wb");
        if (!f || fputc(i, f) == EOF || fwrite(G.bytes[i], 1, G.len[i], f) != G.len[i] || fclose(f) != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!G.ck[0]) setup();
    if (size == 0) return 0;
    int pick = data[0] % NFILES;
    for (int i = 0; i < NFILES; i++)
        if (i == pick)
            put(G.work, files[i], data + 1, size - 1);
        else
            put(G.work, files[i], G.bytes[i], G.len[i]);
    int64_t step = 0, max_steps = 0, gb = 0;
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_resume_peek(G.work, &step, &max_steps, &gb, &d);
    fz_check(rc, &d, "rt_resume_peek");
    ax_diag_free(&d);
    if (rc == 0) {
        char *log = NULL;
        ax_diag_init(&d);
        rc = rt_resume_load(&G.s, G.work, &step, &log, &d);
        fz_check(rc, &d, "rt_resume_load");
        free(log);
        ax_diag_free(&d);
    }
    return 0;
}
