/* test_config.c — the YAML frontend: every accepted key and its default,
 * YAML 1.1 scalars, every error path (file:line:col + expected + found),
 * path resolution, and the canonical text (determinism and sensitivity). */
#include "frontend/config.h"
#include "frontend/lower.h"
#include "runtime/prompt.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX AXO_SOURCE_DIR "/tests/data/config"

/* ---- helpers (each test file has its own copy) --------------------------- */
static char tmpd[256];
static void tmp_init(void) {
    snprintf(tmpd, sizeof tmpd, "/tmp/axo_test_config_XXXXXX");
    if (!mkdtemp(tmpd)) abort();
}
static void tmp_done(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpd);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpd);
}
static const char *tmp_write(const char *name, const char *text) {
    static char paths[8][512];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpd, name);
    FILE *f = fopen(p, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
    return p;
}
static const char *dump(const ax_diag *d) {
    static char buf[8192];
    buf[0] = 0;
    static const char *sev[] = {"note", "warning", "error"};
    for (int i = 0; i < d->n; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "  [%s] %s | %s\n", sev[d->entries[i].sev], d->entries[i].where, d->entries[i].msg);
    }
    return buf;
}
static int has(const ax_diag *d, ax_severity sev, const char *where, const char *msg) {
    for (int i = 0; i < d->n; i++) {
        const ax_diag_entry *e = &d->entries[i];
        if (e->sev == sev && (!where || strstr(e->where, where)) && (!msg || strstr(e->msg, msg))) return 1;
    }
    return 0;
}
#define EXPECT_DIAG(d, sev, where, msg)                                                                 \
    do {                                                                                                \
        const char *w_ = (where), *m_ = (msg);                                                          \
        CHECK_MSG(has(d, sev, w_, m_), "expected a diagnostic at \"%s\" containing \"%s\"; got:\n%s", \
                  w_ ? w_ : "*", m_ ? m_ : "*", dump(d));                                               \
    } while (0)

/* Every test config gets a model and a dataset appended (after the test's
 * own lines, so their line numbers are as written). */
static const char *TAIL = "\nbase_model: " FIX "/models/llama\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n";

typedef struct run {
    ax_arena *ar;
    ax_diag d;
    fe_config c;
    int rc;
} run;
static void run_raw(run *r, const char *text) {
    r->ar = ax_arena_create();
    ax_diag_init(&r->d);
    r->rc = fe_config_load(tmp_write("cfg.yml", text), NULL, &r->c, r->ar, &r->d);
}
static void run_y(run *r, const char *text) {
    char *t = malloc(strlen(text) + strlen(TAIL) + 1);
    strcpy(t, text);
    strcat(t, TAIL);
    run_raw(r, t);
    free(t);
}
static void run_free(run *r) {
    ax_diag_free(&r->d);
    ax_arena_destroy(r->ar);
}
/* The config must fail with an error at `where` containing `msg`. */
static void expect_error(const char *text, const char *where, const char *msg) {
    run r;
    run_y(&r, text);
    CHECK_MSG(r.rc == -1, "config unexpectedly loaded: %s", text);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, where, msg);
    run_free(&r);
}
/* The config must load, with one warning at `where` containing `msg`. */
static void expect_warning(const char *text, const char *where, const char *msg) {
    run r;
    run_y(&r, text);
    CHECK_MSG(r.rc == 0 && r.d.nwarnings == 1, "expected one warning: %s", text);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, where, msg);
    run_free(&r);
}
static char *canon(const fe_config *c) {
    ax_buf b = {0};
    fe_config_canonical(c, &b);
    return ax_buf_steal(&b);
}

/* ---- tests ----------------------------------------------------------------- */
static void test_defaults(void) {
    run r;
    run_y(&r, "# only the required keys\n");
    CHECK_EQ(r.rc, 0);
    CHECK_MSG(r.d.n == 0, "no diagnostics expected:\n%s", dump(&r.d));
    fe_config *c = &r.c;
    CHECK_CONTAINS(c->base_model, "/tests/data/config/models/llama");
    CHECK(c->base_model[0] == '/');
    CHECK_EQ(c->ndatasets, 1);
    CHECK_CONTAINS(c->datasets[0].path, "/tests/data/config/data/toy.jsonl");
    CHECK(c->datasets[0].type == NULL);
    CHECK_STREQ(c->output_dir, "./outputs");
    CHECK_EQ(c->sequence_len, 512); /* Axolotl's default */
    CHECK_EQ(c->micro_batch_size, 1);
    CHECK_EQ(c->eval_batch_size, 1);
    CHECK_EQ(c->gradient_accumulation_steps, 1);
    CHECK_EQ(c->num_epochs, 1);
    CHECK_EQ(c->max_steps, 0);
    CHECK(c->learning_rate == 5e-5);
    CHECK_EQ(c->lr_scheduler, FE_SCHED_COSINE);
    CHECK_STREQ(c->optimizer, "adamw_torch");
    CHECK(c->adam_beta1 == 0.9 && c->adam_beta2 == 0.999 && c->adam_epsilon == 1e-8);
    CHECK(c->max_grad_norm == 1.0);
    CHECK(c->weight_decay == 0.0);
    CHECK_EQ(c->bf16, 0);
    CHECK_EQ(c->adapter, FE_ADAPTER_NONE);
    CHECK_EQ(c->sequence_parallel_degree, 1);
    CHECK_EQ(c->heads_k_stride, 1);
    CHECK(c->ring_attn_func == NULL);
    CHECK_EQ(c->liger_rope, -1);
    CHECK_EQ(c->liger_fused_linear_cross_entropy, -1);
    CHECK_EQ(c->logging_steps, -1); /* unset: Axolotl's default, taken by the runtime */
    CHECK(c->warmup_steps == -1 && isnan(c->warmup_ratio));
    CHECK_EQ(c->save_steps, 0);
    CHECK_EQ(c->seed, 42);
    CHECK_EQ(c->ds.present, 0);
    CHECK_EQ(c->fsdp.enabled, 0);
    CHECK(c->ddp_bucket_cap_mb == 25.0); /* torch DDP's bucket_cap_mb default */
    CHECK_STREQ(c->path, tmp_write("cfg.yml", "")); /* path as given */
    run_free(&r);
}

/* ddp_bucket_cap_mb: MiB (fractions allowed), DDP only. */
static void test_ddp_bucket_cap(void) {
    run r;
    run_y(&r, "ddp_bucket_cap_mb: 0.5\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.ddp_bucket_cap_mb == 0.5);
    run_free(&r);
    expect_error("ddp_bucket_cap_mb: 0\n", "cfg.yml:1:20", "ddp_bucket_cap_mb: expected a positive number, found \"0\"");
    expect_error("ddp_bucket_cap_mb: big\n", "cfg.yml:1:20", "ddp_bucket_cap_mb: expected a positive number, found \"big\"");
    expect_error("ddp_bucket_cap_mb: [25]\n", "cfg.yml:1:20", "ddp_bucket_cap_mb: expected a positive number, found a list");
    expect_error("ddp_bucket_cap_mb: 1e9\n", "cfg.yml:1:20",
                 "ddp_bucket_cap_mb: expected a gradient bucket size in MiB of at most 1048576, found 1000000000");
    run_y(&r, "ddp_bucket_cap_mb: 10\ndeepspeed: " AXO_SOURCE_DIR "/configs/deepspeed/zero2.json\n");
    CHECK_EQ(r.rc, 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:1", "ddp_bucket_cap_mb: applies to DDP only; ignored with DeepSpeed");
    run_free(&r);
}

static void test_all_keys(void) {
    run r;
    run_y(&r,
          "base_model_config: " FIX "/models/llama\n"
          "model_type: LlamaForCausalLM\n"
          "tokenizer_type: AutoTokenizer\n"
          "dataset_prepared_path: last_run_prepared\n"
          "val_set_size: 0.05\n"
          "output_dir: ./out/run1\n"
          "sequence_len: 512\n"
          "sample_packing: yes\n"
          "pad_to_sequence_len: On\n"
          "micro_batch_size: 4\n"
          "eval_batch_size: 8\n"
          "gradient_accumulation_steps: 2\n"
          "num_epochs: 3\n"
          "max_steps: 1_000\n"
          "learning_rate: 2e-5\n"
          "lr_scheduler: linear\n"
          "warmup_steps: 10\n"
          "weight_decay: 0.01\n"
          "optimizer: adamw_torch_fused\n"
          "adam_beta1: 0.8\n"
          "adam_beta2: 0.95\n"
          "adam_epsilon: 1e-6\n"
          "max_grad_norm: 0.3\n"
          "bf16: TRUE\n"
          "fp16: false\n"
          "tf32: True\n"
          "gradient_checkpointing: y\n"
          "adapter: lora\n"
          "lora_r: 16\n"
          "lora_alpha: 32\n"
          "lora_dropout: 0.1\n"
          "lora_target_modules: [q_proj, k_proj]\n"
          "lora_target_linear: false\n"
          "load_in_4bit: false\n"
          "load_in_8bit: no\n"
          "sequence_parallel_degree: 2\n"
          "ring_attn_func: varlen_llama3\n"
          "heads_k_stride: 2\n"
          "liger_rope: true\n"
          "liger_rms_norm: false\n"
          "liger_glu_activation: true\n"
          "liger_layer_norm: off\n"
          "liger_cross_entropy: false\n"
          "liger_fused_linear_cross_entropy: true\n"
          "plugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
          "save_steps: 100\n"
          "logging_steps: 5\n"
          "eval_steps: 50\n"
          "seed: 7\n"
          "strict: false\n"
          "flash_attention: true\n"
          "sdp_attention: false\n"
          "xformers_attention:\n"
          "wandb_project:\nwandb_entity:\nwandb_watch: gradients\nwandb_name: n\nwandb_log_model:\n"
          "special_tokens:\n  pad_token: <pad>\n"
          "train_on_inputs: false\n"
          "group_by_length: false\n"
          "early_stopping_patience: 3\n"
          "resume_from_checkpoint:\n"
          "local_rank: 0\n"
          "debug: false\n");
    CHECK_EQ(r.rc, 0);
    CHECK_MSG(r.d.n == 0, "no diagnostics expected:\n%s", dump(&r.d));
    fe_config *c = &r.c;
    CHECK(c->val_set_size == 0.05);
    CHECK_STREQ(c->output_dir, "./out/run1");
    CHECK_EQ(c->sequence_len, 512);
    CHECK_EQ(c->sample_packing, 1);
    CHECK_EQ(c->pad_to_sequence_len, 1);
    CHECK_EQ(c->micro_batch_size, 4);
    CHECK_EQ(c->eval_batch_size, 8);
    CHECK_EQ(c->gradient_accumulation_steps, 2);
    CHECK_EQ(c->num_epochs, 3);
    CHECK_EQ(c->max_steps, 1000);
    CHECK(c->learning_rate == 2e-5);
    CHECK_EQ(c->lr_scheduler, FE_SCHED_LINEAR);
    CHECK_EQ(c->warmup_steps, 10);
    CHECK(c->weight_decay == 0.01);
    CHECK_STREQ(c->optimizer, "adamw_torch_fused");
    CHECK(c->adam_beta1 == 0.8 && c->adam_beta2 == 0.95 && c->adam_epsilon == 1e-6);
    CHECK(c->max_grad_norm == 0.3);
    CHECK_EQ(c->bf16, 1);
    CHECK_EQ(c->fp16, 0);
    CHECK_EQ(c->tf32, 1);
    CHECK_EQ(c->gradient_checkpointing, 1);
    CHECK_EQ(c->adapter, FE_ADAPTER_LORA);
    CHECK_EQ(c->lora_r, 16);
    CHECK(c->lora_alpha == 32 && c->lora_dropout == 0.1);
    CHECK_EQ(c->nlora_target_modules, 2);
    if (c->nlora_target_modules == 2) {
        CHECK_STREQ(c->lora_target_modules[0], "q_proj");
        CHECK_STREQ(c->lora_target_modules[1], "k_proj");
    }
    CHECK_EQ(c->load_in_4bit, 0);
    CHECK_EQ(c->load_in_8bit, 0);
    CHECK_EQ(c->sequence_parallel_degree, 2);
    CHECK_STREQ(c->ring_attn_func, "varlen_llama3");
    CHECK_EQ(c->heads_k_stride, 2);
    CHECK_EQ(c->liger_rope, 1);
    CHECK_EQ(c->liger_rms_norm, 0);
    CHECK_EQ(c->liger_glu_activation, 1);
    CHECK_EQ(c->liger_layer_norm, 0);
    CHECK_EQ(c->liger_cross_entropy, 0);
    CHECK_EQ(c->liger_fused_linear_cross_entropy, 1);
    CHECK_EQ(c->save_steps, 100);
    CHECK_EQ(c->logging_steps, 5);
    CHECK_EQ(c->eval_steps, 50);
    CHECK_EQ(c->seed, 7);
    CHECK_EQ(c->early_stopping_patience, 3);
    run_free(&r);
}

static void test_scalars(void) {
    static const struct {
        const char *text;
        int v;
    } bools[] = {{"true", 1}, {"True", 1}, {"TRUE", 1}, {"yes", 1}, {"Yes", 1}, {"on", 1}, {"ON", 1},
                 {"false", 0}, {"False", 0}, {"no", 0}, {"NO", 0}, {"off", 0}, {"Off", 0}, {"\"true\"", 1}};
    for (size_t i = 0; i < AX_ARRAY_LEN(bools); i++) {
        char y[128];
        snprintf(y, sizeof y, "sample_packing: %s\n", bools[i].text);
        run r;
        run_y(&r, y);
        CHECK_MSG(r.rc == 0 && r.c.sample_packing == bools[i].v, "%s", bools[i].text);
        run_free(&r);
    }
    static const struct {
        const char *text;
        double v;
    } nums[] = {{"2e-5", 2e-5}, {"0.0002", 0.0002}, {"2.0e-05", 2e-5}, {"1E-3", 1e-3}, {"3", 3}, {"+0.5", 0.5}};
    for (size_t i = 0; i < AX_ARRAY_LEN(nums); i++) {
        char y[128];
        snprintf(y, sizeof y, "learning_rate: %s\n", nums[i].text);
        run r;
        run_y(&r, y);
        CHECK_MSG(r.rc == 0 && r.c.learning_rate == nums[i].v, "%s -> %.17g", nums[i].text, r.c.learning_rate);
        run_free(&r);
    }
    run r;
    run_y(&r, "max_steps: 1e3\nbf16: auto\nmicro_batch_size: ~\nnum_epochs: null\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.max_steps, 1000);
    CHECK_EQ(r.c.bf16, 1);
    CHECK_EQ(r.c.micro_batch_size, 1); /* null = default */
    CHECK_EQ(r.c.num_epochs, 1);
    run_free(&r);
    /* anchors and aliases resolve */
    run_y(&r, "micro_batch_size: &mb 3\neval_batch_size: *mb\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.eval_batch_size, 3);
    run_free(&r);
    /* eval_sample_packing: Axolotl sets it to sample_packing when unset and
     * packs eval rows only with sample_packing on */
    static const struct { const char *y; int want; } esp[] = {
        {"sample_packing: true\n", 1},
        {"sample_packing: true\neval_sample_packing: false\n", 0},
        {"sample_packing: true\neval_sample_packing: ~\n", 1},
        {"sample_packing: false\neval_sample_packing: true\n", 0},
        {"eval_sample_packing: true\n", 0},
    };
    for (size_t i = 0; i < sizeof esp / sizeof esp[0]; i++) {
        run_y(&r, esp[i].y);
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.c.eval_sample_packing, esp[i].want);
        run_free(&r);
    }
}

/* How Axolotl batches packed rows follows its attention backend (attn_supports_packing): with one that reads packed
 * sequences a micro-batch is one bin of micro_batch_size x sequence_len tokens; without (sdpa, eager, none set),
 * multipack_real_batches; the config's own multipack_real_batches wins either way. */
static void test_packed_layout(void) {
    static const struct {
        const char *y;
        int real;         /* multipack_real_batches, Axolotl's default filled in */
        int64_t rows, len; /* the micro-batch's token shape */
    } cases[] = {
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\n", 1, 4, 64},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nflash_attention: true\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nflash_attention: false\n", 1, 4, 64},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: flash_attention_2\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: flash_attention_3\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: flex_attention\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nxformers_attention: true\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: sdpa\n", 1, 4, 64},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: eager\n", 1, 4, 64},
        /* Axolotl's priority among legacy flags: xformers, sage, flex, flash, sdp, eager */
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nsdp_attention: true\nflex_attention: true\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nsdp_attention: true\n", 1, 4, 64},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nmultipack_real_batches: false\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nmultipack_real_batches: ~\nflash_attention: true\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nmultipack_real_batches: true\nflash_attention: true\n", 1, 4, 64},
        {"sample_packing: true\nmicro_batch_size: 1\nsequence_len: 64\nflash_attention: true\n", 0, 1, 64},
        {"sample_packing: false\nmicro_batch_size: 4\nsequence_len: 64\nflash_attention: true\n", 0, 4, 64},
        {"sample_packing: false\nmicro_batch_size: 4\nsequence_len: 64\n", 0, 4, 64},
        /* a null attn_implementation is unset, as Axolotl reads it: the legacy flag decides */
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: ~\nflash_attention: true\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: ~\n", 1, 4, 64},
        /* the hub kernels Axolotl passes through (a revision or kernel name after @ or :): flash-attn2/3 read packed
         * sequences in Axolotl's list, vllm-flash-attn3 (gpt-oss's example, sinks) does not */
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: kernels-community/flash-attn3\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: kernels-community/flash-attn2@v2\n", 0, 1, 256},
        {"sample_packing: true\nmicro_batch_size: 4\nsequence_len: 64\nattn_implementation: kernels-community/vllm-flash-attn3\n", 1, 4, 64},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++) {
        run r;
        run_y(&r, cases[i].y);
        CHECK_MSG(r.rc == 0, "config failed: %s", cases[i].y);
        if (r.rc == 0) {
            int64_t rows = 0, len = 0;
            fe_token_shape(&r.c, &rows, &len);
            CHECK_MSG(rows == cases[i].rows && len == cases[i].len, "%s: shape [%lld, %lld]", cases[i].y, (long long)rows,
                      (long long)len);
            CHECK_MSG(r.c.multipack_real_batches == cases[i].real, "%s: multipack_real_batches %d", cases[i].y,
                      r.c.multipack_real_batches);
        }
        run_free(&r);
    }
    /* one bin by an explicit multipack_real_batches: false though the attention does not read packed sequences */
    run rs;
    run_y(&rs, "sample_packing: true\nmicro_batch_size: 2\nattn_implementation: sdpa\nmultipack_real_batches: false\n");
    CHECK(rs.rc == 0 && !rs.c.attn_packs && !rs.c.multipack_real_batches);
    run_free(&rs);
    run_y(&rs, "attn_implementation: flex_attention\n");
    CHECK(rs.rc == 0 && rs.c.attn_packs);
    run_free(&rs);
    expect_error("attn_implementation: someone/fancy-attn\n", "cfg.yml:1:22", "an attention kernel axo does not know");
    expect_error("attn_implementation: sdpa\nflash_attention: true\n", "cfg.yml:2:1",
                 "flash_attention: expected only one of attn_implementation and the legacy attention flags");
    run r;
    run_y(&r, "attn_implementation: sdpa\nflash_attention: false\n"); /* a false flag is not set */
    CHECK_EQ(r.rc, 0);
    run_free(&r);
}

static void test_type_errors(void) {
    expect_error("micro_batch_size: two\n", "cfg.yml:1:19", "micro_batch_size: expected a positive integer, found \"two\"");
    expect_error("sequence_len: 0\n", "cfg.yml:1:15", "sequence_len: expected a positive integer, found \"0\"");
    expect_error("\n\nwarmup_steps: -5\n", "cfg.yml:3:15", "warmup_steps: expected a non-negative integer, found \"-5\"");
    expect_error("gradient_accumulation_steps: 2.5\n", "cfg.yml:1:30", "expected a positive integer, found \"2.5\"");
    expect_error("learning_rate: -1e-4\n", "cfg.yml:1:16", "learning_rate: expected a positive number, found \"-1e-4\"");
    expect_error("learning_rate: fast\n", "cfg.yml:1:16", "expected a positive number, found \"fast\"");
    expect_error("learning_rate: .inf\n", "cfg.yml:1:16", "expected a positive number, found \".inf\"");
    expect_error("lora_dropout: 1.5\n", "cfg.yml:1:15", "lora_dropout: expected a number in [0, 1), found \"1.5\"");
    expect_error("weight_decay: -0.1\n", "cfg.yml:1:15", "weight_decay: expected a non-negative number");
    expect_error("sample_packing: maybe\n", "cfg.yml:1:17", "sample_packing: expected true or false, found \"maybe\"");
    expect_error("bf16: sometimes\n", "cfg.yml:1:7", "bf16: expected true, false or auto, found \"sometimes\"");
    expect_error("sequence_len: [1, 2]\n", "cfg.yml:1:15", "sequence_len: expected a positive integer, found a list");
    expect_error("output_dir:\n  a: 1\n", "cfg.yml:2:3", "output_dir: expected a string, found a mapping");
    expect_error("lora_target_modules: {a: 1}\n", "cfg.yml:1:22", "lora_target_modules: expected a list of names");
    expect_error("lora_target_modules: [q_proj, [x]]\n", "cfg.yml:1:31", "lora_target_modules[1]: expected a string, found a list");
    expect_error("seed: -1\n", "cfg.yml:1:7", "seed: expected a non-negative integer");
    expect_error("seed: 4294967296\n", "cfg.yml:1:7", "seed: expected an integer in [0, 4294967295] (HF Trainer's set_seed");
    {
        run r;
        run_y(&r, "seed: 4294967295\n");
        CHECK(r.rc == 0 && r.c.seed == 4294967295ull);
        run_free(&r);
    }
    expect_error("datasets: x\n", "cfg.yml:1:11", "datasets: expected a list of {path: FILE, type: ...}, found \"x\"");
    expect_error("lr_scheduler: cosine_with_min_lr\n", "cfg.yml", "cosine_with_min_lr needs lr_scheduler_kwargs.min_lr or min_lr_rate");
    expect_error("lr_scheduler: cosine\nlr_scheduler_kwargs:\n  warmup_steps: 3\n", "cfg.yml:3:3",
                 "lr_scheduler_kwargs.warmup_steps: not an argument of axo's schedules");
    expect_error("lr_scheduler: cosine\nlr_scheduler_kwargs:\n  warmup: 3\n", "cfg.yml:2:1",
                 "lr_scheduler_kwargs: warmup, max_lr, smooth, window_size and reset_start are greedy's; lr_scheduler is cosine");
    expect_error("lr_scheduler: linear\nlr_scheduler_kwargs:\n  num_cycles: 2\n", "cfg.yml:2:1",
                 "lr_scheduler_kwargs.num_cycles: linear takes no num_cycles");
    expect_error("cosine_min_lr_ratio: 1.5\n", "cfg.yml:1:22", "cosine_min_lr_ratio: expected a ratio in [0, 1], found 1.5");
    expect_error("test_datasets: x\n", "cfg.yml:1:16", "test_datasets: expected a list of {path: FILE, type: ...}, found \"x\"");
    expect_error("test_datasets:\n  - path: nope.jsonl\n", "cfg.yml:2:11", "test_datasets[0].path: expected an existing file");
}

static void test_enum_errors(void) {
    expect_error("lr_scheduler: cosine_annealing\n", "cfg.yml:1:15",
                 "lr_scheduler: expected one of constant, linear, cosine, constant_with_warmup, cosine_with_restarts, "
                 "polynomial, inverse_sqrt, cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay, rex, "
                 "reduce_lr_on_plateau, one_cycle, greedy, found \"cosine_annealing\"");
    expect_error("optimizer: sgd\n", "cfg.yml:1:12",
                 "optimizer: expected one of adamw_torch, adamw_torch_fused, adamw_hf, paged_adamw_32bit, adamw_bnb_8bit, "
                 "adamw_8bit, paged_adamw_8bit, adamw_torch_8bit, found \"sgd\"");
    expect_error("optimizer: lion_8bit\n", "cfg.yml:1:12",
                 "optimizer: \"lion_8bit\" is not implemented; low-bit state: adamw_bnb_8bit");
    expect_error("optimizer: adamw_torch_4bit\n", "cfg.yml:1:12", "optimizer: \"adamw_torch_4bit\" is not implemented");
    expect_error("adapter: ia3\n", "cfg.yml:1:10", "adapter: expected one of lora, qlora, found \"ia3\"");
    expect_error("ring_attn_func: zigzag\n", "cfg.yml:1:17", "ring_attn_func: expected one of varlen_llama3");
    static const char *const ok[] = {"adamw_torch",    "adamw_torch_fused", "adamw_hf",         "paged_adamw_32bit",
                                     "adamw_bnb_8bit", "adamw_8bit",        "paged_adamw_8bit", "adamw_torch_8bit"};
    char *canon8 = NULL;
    for (int i = 0; i < 8; i++) {
        char y[64];
        snprintf(y, sizeof y, "optimizer: %s\n", ok[i]);
        run r;
        run_y(&r, y);
        CHECK_EQ(r.rc, 0);
        CHECK_STREQ(r.c.optimizer, ok[i]);
        CHECK_EQ(r.c.optimizer_8bit, i >= 4);
        char *t = canon(&r.c); /* the three bitsandbytes names are one algorithm, the four f32 ones another; torchao's
                                * AdamW8bit keeps other tensors 32-bit (the embedding 8-bit): a third */
        if (i == 4) {
            canon8 = t;
        } else {
            CHECK(i == 7 ? strstr(t, "optimizer=adamw_torch_8bit\n") != NULL
                         : i > 4 ? !strcmp(t, canon8) : strstr(t, "optimizer=adamw\n") != NULL);
            free(t);
        }
        run_free(&r);
    }
    CHECK(canon8 && strstr(canon8, "optimizer=adamw_8bit") != NULL);
    free(canon8);
    /* a DeepSpeed "optimizer" section replaces the YAML's optimizer, as HF Trainer lets it */
    run rd;
    const char *dsj = tmp_write("dsopt.json", "{\"zero_optimization\": {\"stage\": 2}, \"optimizer\": {\"type\": \"AdamW\", "
                                             "\"params\": {\"lr\": \"auto\"}}}\n");
    char yml[512];
    snprintf(yml, sizeof yml, "optimizer: adamw_bnb_8bit\ndeepspeed: %s\n", dsj);
    run_y(&rd, yml);
    CHECK(rd.rc == 0 && rd.c.optimizer_8bit == 0);
    EXPECT_DIAG(&rd.d, AX_SEV_WARNING, "cfg.yml:1:12", "is replaced by the DeepSpeed config's own \"optimizer\" section");
    run_free(&rd);
    static const char *const sch[] = {"constant", "linear", "cosine"};
    for (int i = 0; i < 3; i++) {
        char y[64];
        snprintf(y, sizeof y, "lr_scheduler: %s\n", sch[i]);
        run r;
        run_y(&r, y);
        CHECK_EQ(r.rc, 0);
        CHECK_EQ((int)r.c.lr_scheduler, i);
        run_free(&r);
    }
}

/* The later schedules: their arguments as HF's get_scheduler and Axolotl's create_scheduler take or refuse them */
static void test_schedules(void) {
    run r;
    run_y(&r, "lr_scheduler: warmup_stable_decay\nlr_scheduler_kwargs:\n  num_decay_steps: 20\n  num_stable_steps: 5\n"
              "  min_lr_ratio: 0.1\n  warmup_type: 1-sqrt\n  decay_type: linear\n  num_cycles: 0.7\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.lr_scheduler == FE_SCHED_WARMUP_STABLE_DECAY && r.c.sched_num_decay_steps == 20 &&
          r.c.sched_num_stable_steps == 5 && r.c.sched_min_lr_ratio == 0.1 && r.c.sched_num_cycles == 0.7);
    CHECK(r.c.sched_warmup_type && !strcmp(r.c.sched_warmup_type, "1-sqrt") && r.c.sched_decay_type &&
          !strcmp(r.c.sched_decay_type, "linear"));
    char *t = canon(&r.c);
    CHECK(strstr(t, "lr_scheduler=warmup_stable_decay\n") && strstr(t, "lr_scheduler_kwargs.num_decay_steps=20\n") &&
          strstr(t, "lr_scheduler_kwargs.decay_type=linear\n"));
    free(t);
    run_free(&r);
    run_y(&r, "lr_scheduler: cosine\n"); /* the later arguments stay out of an older config's cache key */
    t = canon(&r.c);
    CHECK(!strstr(t, "num_decay_steps") && !strstr(t, "warmup_type") && !strstr(t, "warmup_lr_rate"));
    free(t);
    run_free(&r);
    run_y(&r, "lr_scheduler: cosine_warmup_with_min_lr\nlr_scheduler_kwargs:\n  min_lr: 1.0e-6\n  warmup_lr_rate: 0.1\n");
    CHECK(r.rc == 0 && r.c.lr_scheduler == FE_SCHED_COSINE_WARMUP_WITH_MIN_LR && r.c.sched_warmup_lr_rate == 0.1);
    run_free(&r);
    run_y(&r, "lr_scheduler: rex\ncosine_min_lr_ratio: 0.1\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.lr_scheduler == FE_SCHED_REX, "%s", dump(&r.d));
    run_free(&r);
    /* Axolotl 0.19's default_system_message replaces text its chatml template does not hold: no effect */
    expect_warning("chat_template: chatml\ndefault_system_message: You are a pirate.\n", "cfg.yml:2:1",
                   "default_system_message: has no effect, as in Axolotl 0.19");
    expect_warning("lr_scheduler: rex\nlr_scheduler_kwargs:\n  num_cycles: 2\n", "cfg.yml:2:1",
                   "lr_scheduler_kwargs: ignored with lr_scheduler: rex (Axolotl's RexLR takes none");
    expect_warning("lr_scheduler: rex\nlr_quadratic_warmup: true\n", "cfg.yml:2:1",
                   "lr_quadratic_warmup: ignored with lr_scheduler: rex");
    expect_error("lr_scheduler: rex\ncosine_min_lr_ratio: 0.1\nembedding_lr_scale: 0.5\n", "cfg.yml:2:22",
                 "with lr_scheduler: rex, RexLR ends every parameter group at the same absolute lr");
    expect_error("lr_scheduler: rex\ncosine_min_lr_ratio: 2\n", "cfg.yml:2:22", "cosine_min_lr_ratio: expected a ratio in [0, 1]");
    expect_error("lr_scheduler: warmup_stable_decay\n", "cfg.yml", "warmup_stable_decay needs lr_scheduler_kwargs.num_decay_steps");
    expect_error("lr_scheduler: warmup_stable_decay\nlr_scheduler_kwargs:\n  num_decay_steps: 3\n  decay_type: exp\n",
                 "cfg.yml:4:15", "lr_scheduler_kwargs.decay_type: expected linear, cosine or 1-sqrt (HF's get_wsd_schedule), found \"exp\"");
    /* what HF takes, axo takes: any min_lr_ratio, a negative num_stable_steps, null for HF's default; and rex, which
     * Axolotl builds without the kwargs, with any mapping (a OneCycleLR key, a bad type) */
    run_y(&r, "lr_scheduler: warmup_stable_decay\nlr_scheduler_kwargs:\n  num_decay_steps: 3\n  min_lr_ratio: 1.5\n"
              "  num_stable_steps: -2\n  warmup_type: null\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.sched_min_lr_ratio == 1.5 && r.c.sched_num_stable_steps == -2 &&
                  !r.c.sched_warmup_type,
              "%s", dump(&r.d));
    run_free(&r);
    expect_warning("lr_scheduler: rex\nlr_scheduler_kwargs:\n  pct_start: 0.3\n  warmup_type: exp\n", "cfg.yml:2:1",
                   "lr_scheduler_kwargs: ignored with lr_scheduler: rex");
    /* one_cycle: OneCycleLR's arguments, typed as PyYAML types them; torch's defaults where none is given */
    run_y(&r, "lr_scheduler: one_cycle\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.lr_scheduler == FE_SCHED_ONE_CYCLE && isnan(r.c.oc_pct_start) &&
                  r.c.oc_cycle_momentum == -1 && !r.c.oc_anneal,
              "%s", dump(&r.d));
    run_free(&r);
    run_y(&r, "lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  pct_start: 0.25\n  anneal_strategy: linear\n"
              "  div_factor: 10\n  final_div_factor: 1.0e+3\n  base_momentum: 0.8\n  max_momentum: 1\n"
              "  three_phase: true\n  cycle_momentum: false\n  last_epoch: -1\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.oc_pct_start == 0.25 && !strcmp(r.c.oc_anneal, "linear") &&
                  r.c.oc_div_factor == 10 && r.c.oc_final_div_factor == 1e3 && r.c.oc_base_momentum == 0.8 &&
                  r.c.oc_max_momentum == 1 && r.c.oc_three_phase == 1 && r.c.oc_cycle_momentum == 0,
              "%s", dump(&r.d));
    run_free(&r);
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  pct_start: 0\n", "cfg.yml:3:14",
                 "lr_scheduler_kwargs.pct_start: expected a float written with a decimal point");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  pct_start: -0.5\n", "cfg.yml:3:14",
                 "lr_scheduler_kwargs.pct_start: expected a float in [0, 1]");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  div_factor: 1e1\n", "cfg.yml:3:15",
                 "lr_scheduler_kwargs.div_factor: expected a number as YAML 1.1 writes one");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  div_factor: 0.0\n", "cfg.yml:3:15",
                 "lr_scheduler_kwargs.div_factor: expected a positive number");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  base_momentum: [0.8, 0.85]\n", "cfg.yml:3:18",
                 "a value per parameter group is not implemented");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  total_steps: 100\n", "cfg.yml:3:3",
                 "lr_scheduler_kwargs.total_steps: Axolotl passes total_steps (the run's steps) to OneCycleLR itself");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  last_epoch: 5\n", "cfg.yml:3:15",
                 "lr_scheduler_kwargs.last_epoch: expected -1");
    expect_error("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  num_cycles: 2\n", "cfg.yml:3:3",
                 "lr_scheduler_kwargs.num_cycles: not an argument of torch's OneCycleLR");
    expect_warning("lr_scheduler: one_cycle\nlr_scheduler_kwargs:\n  epochs: 3\n", "cfg.yml:3:3",
                   "lr_scheduler_kwargs.epochs: ignored, as OneCycleLR ignores it when given total_steps");
    expect_warning("lr_scheduler: one_cycle\nadam_beta1: 0.8\n", "cfg.yml:2:1",
                   "adam_beta1: replaced by one_cycle's momentum (from max_momentum 0.95 down to base_momentum 0.85");
    expect_warning("lr_scheduler: one_cycle\nwarmup_steps: 10\nlr_scheduler_kwargs: {pct_start: 0.1}\n", "cfg.yml:2:1",
                   "warmup_steps: unused with lr_scheduler_kwargs.pct_start");
    expect_warning("lr_scheduler: one_cycle\nembedding_lr_scale: 0.5\n", "cfg.yml:2:1",
                   "embedding_lr_scale: with lr_scheduler: one_cycle every parameter group trains at the schedule's lr");
    expect_warning("lr_div_factor: 10\n", "cfg.yml:1:1", "lr_div_factor: ignored, as Axolotl 0.19 ignores it");
    /* the collator keys NEFTune's width reads: pad_to_multiple_of (0: Axolotl's `or 64`), batch_flattening as
     * Axolotl's validator resolves and refuses it */
    run_y(&r, "pad_to_multiple_of: 8\nneftune_noise_alpha: 5\nsequence_len: 100\npad_to_sequence_len: true\n");
    CHECK_MSG(r.rc == 0 && r.c.pad_to_multiple_of == 8 && fe_neftune_multiple(&r.c) == 104, "%s", dump(&r.d));
    run_free(&r);
    run_y(&r, "sequence_len: 100\nsample_packing: true\n");
    CHECK(r.rc == 0 && fe_neftune_multiple(&r.c) == 128); /* packing turns pad_to_sequence_len on: 64 x 2 */
    run_free(&r);
    run_y(&r, "sequence_len: 100\n");
    CHECK(r.rc == 0 && fe_neftune_multiple(&r.c) == 64); /* unset, no packing */
    run_free(&r);
    run_y(&r, "sequence_len: 100\npad_to_sequence_len: false\nsample_packing: true\n");
    CHECK(r.rc == 0 && fe_neftune_multiple(&r.c) == 1);
    run_free(&r);
    run_y(&r, "batch_flattening: auto\nattn_implementation: flash_attention_2\nmicro_batch_size: 4\n");
    CHECK_MSG(r.rc == 0 && r.c.batch_flattening == 1 && fe_neftune_multiple(&r.c) == 1, "%s", dump(&r.d));
    run_free(&r);
    run_y(&r, "batch_flattening: auto\nattn_implementation: sdpa\nmicro_batch_size: 4\n");
    CHECK(r.rc == 0 && r.c.batch_flattening == 0);
    run_free(&r);
    run_y(&r, "batch_flattening: auto\nflash_attention: true\nmicro_batch_size: 1\n");
    CHECK(r.rc == 0 && r.c.batch_flattening == 0);
    run_free(&r);
    expect_error("batch_flattening: true\n", "cfg.yml:1:19", "batch_flattening: true requires an attention backend that "
                 "reads packed sequences");
    expect_error("batch_flattening: true\nflash_attention: true\nsample_packing: true\n", "cfg.yml:1:19",
                 "batch_flattening: true is not compatible with sample_packing");
    expect_error("batch_flattening: sometimes\n", "cfg.yml:1:19", "batch_flattening: expected true, false or auto");
    expect_error("pad_to_multiple_of: -8\n", "cfg.yml:1:21", "pad_to_multiple_of: expected a non-negative integer");
    expect_error("lr_div_factor: ten\n", "cfg.yml:1:16", "lr_div_factor: expected a number");
    run_y(&r, "lr_scheduler_kwargs:\n  min_lr_rate: 0.1\n  num_cycles: null\nlr_scheduler: cosine_with_min_lr\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && isnan(r.c.sched_num_cycles), "kwargs before lr_scheduler: %s", dump(&r.d));
    run_free(&r);
    expect_error("lr_scheduler: cosine\nlr_scheduler_kwargs:\n  num_decay_steps: 3\n", "cfg.yml:2:1",
                 "num_decay_steps, num_stable_steps, min_lr_ratio, warmup_type and decay_type are warmup_stable_decay's; "
                 "lr_scheduler is cosine");
    expect_error("lr_scheduler: cosine_with_min_lr\nlr_scheduler_kwargs:\n  min_lr_rate: 0.1\n  warmup_lr_rate: 0.5\n",
                 "cfg.yml:2:1", "lr_scheduler_kwargs.warmup_lr_rate: cosine_warmup_with_min_lr's; lr_scheduler is cosine_with_min_lr");
    expect_error("lr_scheduler: cosine_warmup_with_min_lr\n", "cfg.yml",
                 "lr_scheduler: cosine_warmup_with_min_lr needs lr_scheduler_kwargs.min_lr or min_lr_rate (HF)");
    /* greedy: GreedyLR's arguments (those it shares with ReduceLROnPlateau and its own), an evaluation to step it
     * with, one lr for all params */
    expect_error("lr_scheduler: greedy\n", "cfg.yml:1:15",
                 "lr_scheduler: greedy moves the lr as eval_loss improves or stalls, and HF requires an evaluation for "
                 "it: set val_set_size or test_datasets");
    run_y(&r, "lr_scheduler: greedy\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  factor: 0.5\n  patience: 3\n"
              "  warmup: 2\n  max_lr: 0.5\n  min_lr: 1.0e-6\n  smooth: true\n  window_size: 4\n  reset_start: 7\n"
              "  verbose: true\n  threshold_mode: rel\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.lr_scheduler == FE_SCHED_GREEDY && r.c.sched_factor == 0.5 &&
                  r.c.sched_patience == 3 && r.c.sched_greedy_warmup == 2 && r.c.sched_max_lr == 0.5 &&
                  r.c.sched_min_lr == 1e-6 && r.c.sched_smooth == 1 && r.c.sched_window == 4 && r.c.sched_reset_start == 7 &&
                  !strcmp(r.c.sched_threshold_mode, "rel"),
              "%s", dump(&r.d));
    run_free(&r);
    expect_error("lr_scheduler: greedy\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  factor: 0\n", "cfg.yml:4:11",
                 "lr_scheduler_kwargs.factor: expected in (0, 1), found 0 (GreedyLR refuses 1 and above, and divides by it)");
    expect_error("lr_scheduler: greedy\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  window_size: 0\n", "cfg.yml:4:16",
                 "lr_scheduler_kwargs.window_size: expected a whole number of evaluations (at least 1), at most 2^53, found 0");
    expect_error("lr_scheduler: greedy\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  window_size: 1.0e+30\n", "cfg.yml:4:16",
                 "lr_scheduler_kwargs.window_size: expected a whole number of evaluations (at least 1), at most 2^53, found 1e+30");
    expect_error("lr_scheduler: greedy\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  smooth: maybe\n", "cfg.yml:4:11",
                 "lr_scheduler_kwargs.smooth: expected true or false");
    expect_error("lr_scheduler: greedy\nval_set_size: 0.1\nlora_r: 8\nloraplus_lr_ratio: 4\nadapter: lora\n"
                 "lora_target_linear: true\n", "cfg.yml",
                 "lr_scheduler: greedy moves each parameter group's lr between min_lr and max_lr, each clamped on its own");
    expect_error("lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  reset_start: 3\n",
                 "cfg.yml:3:1", "are greedy's; lr_scheduler is reduce_lr_on_plateau");
    /* reduce_lr_on_plateau: ReduceLROnPlateau's arguments, an evaluation to step it with, one lr for all params */
    expect_error("lr_scheduler: reduce_lr_on_plateau\n", "cfg.yml:1:15",
                 "lr_scheduler: reduce_lr_on_plateau lowers the lr when eval_loss stops improving, and HF requires an "
                 "evaluation for it: set val_set_size or test_datasets");
    run_y(&r, "lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  mode: max\n  factor: 0.5\n"
              "  patience: 3\n  threshold: 0.01\n  threshold_mode: abs\n  cooldown: 1\n  eps: 1.0e-9\n  min_lr: 1.0e-6\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.lr_scheduler == FE_SCHED_REDUCE_ON_PLATEAU && r.c.sched_factor == 0.5 &&
                  r.c.sched_patience == 3 && r.c.sched_cooldown == 1 && r.c.sched_min_lr == 1e-6 && r.c.sched_mode &&
                  !strcmp(r.c.sched_mode, "max") && r.c.sched_threshold_mode && !strcmp(r.c.sched_threshold_mode, "abs"),
              "%s", dump(&r.d));
    run_free(&r);
    expect_error("lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  factor: 1.5\n", "cfg.yml:4:11",
                 "lr_scheduler_kwargs.factor: expected below 1, found 1.5");
    expect_error("lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  mode: lowest\n", "cfg.yml:4:9",
                 "lr_scheduler_kwargs.mode: expected min or max (ReduceLROnPlateau, GreedyLR)");
    expect_error("lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nlr_scheduler_kwargs:\n  patience: 2.5\n", "cfg.yml:4:13",
                 "lr_scheduler_kwargs.patience: expected a whole number of evaluations");
    expect_error("lr_scheduler: cosine\nlr_scheduler_kwargs:\n  patience: 2\n", "cfg.yml:2:1",
                 "are reduce_lr_on_plateau's and greedy's; lr_scheduler is cosine");
    expect_error("lr_scheduler: reduce_lr_on_plateau\nval_set_size: 0.1\nembedding_lr_scale: 0.5\n", "cfg.yml",
                 "reduce_lr_on_plateau lowers each parameter group's lr down to min_lr");
}

static void test_not_implemented(void) {
    expect_error("load_in_8bit: true\n", "cfg.yml:1:15", "load_in_8bit: true (8-bit base weights) is not implemented");
    expect_error("fp16: true\n", "cfg.yml:1:7", "fp16: true is not implemented");
    expect_error("float16: true\n", "cfg.yml:1:10", "float16: true is not implemented");
    expect_error("save_steps: 10\nsaves_per_epoch: 2\n", "cfg.yml:2:1",
                 "saves_per_epoch: expected only one of save_steps and saves_per_epoch, found both");
    expect_error("bfloat16: sometimes\n", "cfg.yml:1:11", "bfloat16: expected true or false");
}

/* bfloat16: true (Axolotl: the model in bf16, no AMP) is pure bf16: bf16
 * weights whatever bf16 says; under DeepSpeed, whose optimizer keeps f32
 * master state, it is bf16 with f32 master weights and a warning. */
static void test_bfloat16(void) {
    const char *ok[] = {"bfloat16: true\n", "bf16: false\nbfloat16: true\n", "bfloat16: true\nbf16: true\n"};
    for (size_t i = 0; i < AX_ARRAY_LEN(ok); i++) {
        run r;
        run_y(&r, ok[i]);
        CHECK_MSG(r.rc == 0 && r.c.bf16 == 1 && r.c.bf16_pure == 1, "%s: expected pure bf16", ok[i]);
        CHECK_EQ(r.d.nwarnings, 0);
        char *t = canon(&r.c);
        CHECK(strstr(t, "bfloat16=1") != NULL); /* in the plan cache's key */
        free(t);
        run_free(&r);
    }
    run r;
    run_y(&r, "bfloat16: false\nbf16: true\n");
    CHECK(r.rc == 0 && r.c.bf16 == 1 && r.c.bf16_pure == 0);
    run_free(&r);
    run_y(&r, "bfloat16: true\ndeepspeed: " AXO_SOURCE_DIR "/configs/deepspeed/zero3_bf16.json\n");
    CHECK(r.rc == 0 && r.c.bf16 == 1 && r.c.bf16_pure == 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:1", "bfloat16: true with DeepSpeed: its optimizer keeps f32 master weights");
    run_free(&r);
    expect_error("resume_from_checkpoint: ./outputs/checkpoint-10\n", "cfg.yml:1:25",
                 "resume_from_checkpoint: expected an existing directory");
    expect_error("resume_from_checkpoint: " FIX "/models\n", "cfg.yml:1:25",
                 "resume_from_checkpoint: expected a checkpoint dir axorun wrote (with trainer_state.json)");
    expect_error("gradient_checkpointing: offload\n", "cfg.yml:1:25", "gradient_checkpointing: \"offload\" is not implemented");
    expect_error("datasets:\n  - path: x.jsonl\n    type:\n      format: \"{instruction} {question}\"\n", "cfg.yml:4:15",
                 "datasets[0].type.format: \"{question}\": this format fills only {instruction}, {input}");
    expect_error("datasets:\n  - path: x.jsonl\n    type:\n      no_input_format: \"{instruction} {input}\"\n", "cfg.yml:4:24",
                 "datasets[0].type.no_input_format: \"{input}\": this format fills only {instruction}");
    expect_error("datasets:\n  - path: x.jsonl\n    type:\n      system_format: \"{system\"\n", "cfg.yml:4:22",
                 "datasets[0].type.system_format: a '{' without its '}'");
    expect_error("datasets:\n  - path: x.jsonl\n    type: oasst\n", "cfg.yml:3:11",
                 "dataset type \"oasst\" is not implemented; axo reads alpaca, completion, chat_template");
    expect_error("excess_length_strategy: cut\n", "cfg.yml:1:25", "excess_length_strategy: expected one of drop, truncate, raise");
    expect_error("datasets:\n  - path: x.jsonl\n    type: sharegpt\n", "cfg.yml:3:11",
                 "use type: chat_template with field_messages: conversations");
    expect_error("datasets:\n  - path: x.jsonl\n    type: chat_template\n    train_on_eos: sometimes\n", "cfg.yml:4:19",
                 "train_on_eos: expected one of none, turn, all, last");
}

static void test_structure_errors(void) {
    run r;
    /* duplicate key: reported at the second one, naming the first */
    run_y(&r, "micro_batch_size: 2\nseed: 1\nmicro_batch_size: 3\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:3:1", "micro_batch_size: duplicate key (first set at line 1:1)");
    run_free(&r);
    /* top level must be a mapping */
    run_raw(&r, "- a\n- b\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:1", "expected a mapping of settings at the top level, found a list");
    run_free(&r);
    run_raw(&r, "just a string\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml", "found \"just a string\"");
    run_free(&r);
    /* empty and comment-only files */
    run_raw(&r, "");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml", "expected a mapping of settings, found an empty file");
    run_free(&r);
    run_raw(&r, "# nothing\n\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml", "found an empty file");
    run_free(&r);
    /* malformed YAML: libyaml's problem and position */
    run_raw(&r, "seed: 1\nplugins: [a, b\nsequence_len: 3\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:3:", "invalid YAML: did not find expected ',' or ']'");
    run_free(&r);
    run_raw(&r, "seed: 1\n\tmicro_batch_size: 2\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:2:", "invalid YAML");
    run_free(&r);
    run_raw(&r, "a: b: c\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:5", "invalid YAML: mapping values are not allowed");
    run_free(&r);
    run_raw(&r, "seed: \"unterminated\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:", "invalid YAML: found unexpected end of stream");
    run_free(&r);
    /* a second document */
    run_raw(&r, "seed: 1\n---\nseed: 2\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:3:1", "expected a single YAML document, found a second one");
    run_free(&r);
    /* missing file */
    r.ar = ax_arena_create();
    ax_diag_init(&r.d);
    CHECK_EQ(fe_config_load("/nonexistent/cfg.yml", NULL, &r.c, r.ar, &r.d), -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "/nonexistent/cfg.yml", "cannot read");
    run_free(&r);
    /* a non-string key */
    run_y(&r, "[a, b]: 1\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:1", "expected a setting name, found a list");
    run_free(&r);
}

static void test_unknown_keys(void) {
    run r;
    run_y(&r, "seed: 1\nhub_model_idx: me/model\n  \nnot_an_axolotl_key: x\n");
    CHECK_EQ(r.rc, 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:2:1", "unknown key `hub_model_idx`");
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:4:1", "unknown key `not_an_axolotl_key`");
    CHECK_EQ(r.d.nwarnings, 2);
    CHECK_EQ(r.d.nerrors, 0);
    run_free(&r);
    run_y(&r, "datasets_extra: 1\n");
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:1", "unknown key `datasets_extra`");
    run_free(&r);
}

/* The value must load with no diagnostic at all. */
static void expect_silent(const char *text) {
    run r;
    run_y(&r, text);
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "expected to load silently: %s\n%s", text, dump(&r.d));
    run_free(&r);
}

/* Every key of the refused table: null and each harmless value load
 * silently; other values (a number, true, a list, a mapping) are errors at
 * the value, saying that the key changes training. */
static void test_refused_keys(void) {
    CHECK_MSG(fe_config_tables_overlap() == NULL, "a key in two tables: %s", fe_config_tables_overlap());
    CHECK(fe_nrefused_keys > 115); /* the table is whole (keys leave it as axo implements them) */
    for (int i = 0; i < fe_nrefused_keys; i++) {
        const fe_refused_key *k = &fe_refused_keys[i];
        char y[256], where[64], msg[160];
        CHECK_MSG(k->what && k->what[0] && strlen(k->what) < 100, "%s: a short meaning", k->name);
        snprintf(y, sizeof y, "%s: ~\n", k->name);
        expect_silent(y);
        snprintf(y, sizeof y, "%s:\n", k->name);
        expect_silent(y);
        int harmless_true = 0;
        for (const char *p = k->harmless; *p;) {
            const char *e = strstr(p, ", ");
            int n = e ? (int)(e - p) : (int)strlen(p);
            harmless_true |= n == 4 && !strncmp(p, "true", 4);
            snprintf(y, sizeof y, "%s: %.*s\n", k->name, n, p);
            expect_silent(y);
            p += e ? n + 2 : n;
        }
        static const char *const bad[] = {"7", "true", "[x]", "{a: 1}", "\"some text\""};
        static const char *const shown[] = {"7", "true", "a list", "a mapping", "\"some text\""};
        for (size_t j = 0; j < AX_ARRAY_LEN(bad); j++) {
            if (j == 1 && harmless_true) continue;
            snprintf(y, sizeof y, "%s: %s\n", k->name, bad[j]);
            snprintf(where, sizeof where, "cfg.yml:1:%d", (int)strlen(k->name) + 3);
            snprintf(msg, sizeof msg, "%s: %s changes training (%s) and is not implemented in axo", k->name, shown[j], k->what);
            expect_error(y, where, msg);
        }
    }
    expect_error("rl: kto\n", "cfg.yml:1:5", "rl: kto changes training (a preference or RL objective other than TRL's DPOTrainer");
    expect_error("peft_layer_replication:\n  - [0, 4]\n", "cfg.yml:2:3",
                 "peft_layer_replication: a list changes training");
    /* lora_target_modules as one string: all-linear, or a regex (codegen/compile.c expands it) */
    {
        run r;
        run_y(&r, "adapter: lora\nlora_target_modules: all-linear\n");
        CHECK_EQ(r.rc, 0);
        CHECK(r.c.lora_target_linear == 1 && r.c.lora_target_regex == NULL);
        run_free(&r);
        run_y(&r, "adapter: lora\nlora_target_modules: '.*(q|v)_proj'\n");
        CHECK_EQ(r.rc, 0);
        CHECK(r.c.lora_target_regex && !strcmp(r.c.lora_target_regex, ".*(q|v)_proj") && !r.c.lora_target_linear);
        run_free(&r);
        expect_error("adapter: lora\nlora_target_modules: 'a(b'\n", "cfg.yml:2:22", "lora_target_modules: \"a(b\" is not a regex");
    }
    /* peft_init_lora_weights: true, false, gaussian; PEFT's other inits are refused */
    {
        static const struct { const char *v; int want; } iv[] = {{"true", 0}, {"false", 2}, {"gaussian", 1}, {"\"gaussian\"", 1}};
        for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) {
            char y[160];
            snprintf(y, sizeof y, "adapter: lora\npeft_init_lora_weights: %s\n", iv[i].v);
            run r;
            run_y(&r, y);
            CHECK_EQ(r.rc, 0);
            CHECK_EQ(r.c.peft_init_lora_weights, iv[i].want);
            run_free(&r);
        }
        expect_error("adapter: lora\npeft_init_lora_weights: pissa\n", "cfg.yml:2:25",
                     "peft_init_lora_weights: expected true, false or gaussian, found \"pissa\"");
        expect_error("adapter: lora\npeft_use_dora: true\npeft_init_lora_weights: false\n", "cfg.yml:3:25",
                     "peft_init_lora_weights: false with peft_use_dora is not implemented");
    }
    /* unfrozen_parameters is read (frontend/lower.c); its errors */
    expect_error("unfrozen_parameters:\n  - ^model.embed_tokens.weight$[32000:100]\n", "cfg.yml:2:3",
                 "\"^model.embed_tokens.weight$[32000:100]\": a row range [start:end] needs end > start");
    expect_error("unfrozen_parameters: [\"a(b[1:2]\"]\n", "cfg.yml:1:22", "unfrozen_parameters: \"a(b\" is not a regex");
    /* LayerNamePattern's split: the regex, then [i], [a:b], [a:], [:b], [] or [:] */
    {
        const struct {
            const char *pat;
            int rc;
            size_t base;
            int64_t a, b;
        } u[] = {{"lm_head", 0, 7, 0, -1},          {"lm_head[3]", 1, 7, 3, 4},       {"x$[4:8]", 1, 2, 4, 8},
                 {"x[4:]", 1, 1, 4, -1},            {"x[:8]", 1, 1, 0, 8},            {"x[]", 1, 1, 0, -1},
                 {"x[:]", 1, 1, 0, -1},             {"x[8:4]", -1, 0, 0, 0},          {"x[4:4]", -1, 0, 0, 0},
                 {"[3]", 0, 3, 0, -1},              {"x[a]", 0, 4, 0, -1},            {"x[1:2:3]", 0, 8, 0, -1},
                 {"x[99999999999999999999]", -1, 0, 0, 0}, {"a[0-9]+[2]", 1, 7, 2, 3}};
        for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
            size_t bl;
            int64_t a, b;
            int rc = fe_unfrozen_parse(u[i].pat, &bl, &a, &b);
            CHECK_MSG(rc == u[i].rc, "%s: rc %d", u[i].pat, rc);
            if (rc >= 0) CHECK_MSG(bl == u[i].base && a == u[i].a && b == u[i].b, "%s: %zu %lld %lld", u[i].pat, bl,
                                   (long long)a, (long long)b);
        }
    }
    expect_error("unfrozen_parameters: \"a(b\"\n", "cfg.yml:1:22", "unfrozen_parameters: \"a(b\" is not a regex");
    expect_error("unfrozen_parameters: [lm_head]\nadapter: lora\n", "cfg.yml:1:1", "unfrozen_parameters: with adapter: lora");
    expect_silent("dpo_beta:\neaft_alpha: 1\nloraplus_lr_embedding: 0.000001\n"
                  "lisa_layers_attribute: model.layers\noptim_args: \"\"\ntrl: {}\nqgalore_proj_quant: yes\n");
    /* excluded here: the token keys axo reads (fe_resolve_tokenizer), NEFTune's (test_neftune), LoRA+ and PEFT's
     * layer selection (test_loraplus, test_peft_layers) */
    static const char *const elsewhere[] = {"peft_init_lora_weights", "tokens", "special_tokens", "added_tokens_overrides", "resize_token_embeddings_to_32x",
                                           "mean_resizing_embeddings", "shrink_embeddings", "neftune_noise_alpha",
                                           "noisy_embedding_alpha", "loraplus_lr_ratio", "loraplus_lr_embedding",
                                           "peft_layers_to_transform", "peft_layers_pattern"};
    for (size_t i = 0; i < AX_ARRAY_LEN(elsewhere); i++)
        for (int j = 0; j < fe_nrefused_keys; j++) CHECK_MSG(strcmp(fe_refused_keys[j].name, elsewhere[i]), "%s", elsewhere[i]);
}

/* rl: dpo (frontend/config.c check_rl): beta from trl.beta, else rl_beta,
 * else dpo_beta unless 0, else TRL's 0.1; the sigmoid loss and one weight;
 * TRL's dropout off; Axolotl's refusals and what axo lacks with it; the
 * DPO dataset types; the canonical config. */
static void test_rl(void) {
    run r;
    run_y(&r, "rl: dpo\n");
    CHECK(r.rc == 0 && r.c.rl == FE_RL_DPO && r.c.rl_beta == 0.1 && !strcmp(r.c.dpo_loss_types, "sigmoid") &&
          !r.c.dpo_loss_weights && !r.c.rl_ipo);
    CHECK(r.c.ndatasets == 1 && r.c.datasets[0].formatted && r.c.datasets[0].spec.fmt == RT_FMT_DPO &&
          r.c.datasets[0].spec.dpo_family == RT_DPO_PASSTHROUGH);
    char *c1 = canon(&r.c);
    CHECK(strstr(c1, "rl=dpo") && strstr(c1, "rl_beta=0.1"));
    run_free(&r);
    run_y(&r, "rl: dpo\nrl_beta: 0.3\ndpo_beta: 0.7\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 0.3);
    char *c2 = canon(&r.c);
    CHECK(strcmp(c1, c2) != 0); /* beta is in the plan's key */
    free(c1), free(c2);
    run_free(&r);
    run_y(&r, "rl: dpo\nrl_beta: 0.3\ntrl:\n  beta: 0.05\n  use_vllm: false\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 0.05);
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_beta: 0.7\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 0.7);
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_beta: 0\n"); /* Axolotl: "if self.dpo_beta and not self.rl_beta" */
    CHECK(r.rc == 0 && r.c.rl_beta == 0.1);
    run_free(&r);
    run_y(&r, "rl: dpo\nrl_beta: 0\ndpo_beta: 0.4\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 0.4);
    run_free(&r);
    run_y(&r, "rl: dpo\nrl_beta: 0\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 0);
    run_free(&r);
    expect_error("dpo_norm_loss: true\n", "cfg.yml:1:1", "dpo_norm_loss: no longer supported, due to breaking changes");
    expect_error("rl: dpo\ndpo_use_logits_to_keep: false\n", "cfg.yml:2:1", "dpo_use_logits_to_keep: no longer supported");
    expect_error("rl: dpo\npad_to_multiple_of: 8\n", "cfg.yml:2:21", "Axolotl swaps in its own DPO collator");
    expect_warning("rl: dpo\ndataloader_drop_last: true\n", "cfg.yml:2:1", "dataloader_drop_last: ignored with rl: dpo");
    run_y(&r, "rl: dpo\ndpo_loss_type: [sigmoid]\ndpo_loss_weights: [0.5]\n");
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_weights, "0.5"));
    run_free(&r);
    /* TRL's loss types: a weighted sum; rl: ipo; label smoothing where a loss reads it */
    run_y(&r, "rl: dpo\ndpo_loss_type: [sigmoid, bco_pair, ipo]\ndpo_loss_weights: [0.8, 0.2, 1]\n");
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_types, "sigmoid,bco_pair,ipo") && !strcmp(r.c.dpo_loss_weights, "0.80000000000000004,0.20000000000000001,1"));
    c1 = canon(&r.c);
    CHECK(strstr(c1, "dpo_loss_type=sigmoid,bco_pair,ipo") != NULL);
    free(c1);
    run_free(&r);
    run_y(&r, "rl: ipo\n");
    CHECK(r.rc == 0 && r.c.rl == FE_RL_DPO && r.c.rl_ipo && !strcmp(r.c.dpo_loss_types, "ipo"));
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:5", "rl: ipo: TRL's DPOTrainer with loss_type [ipo]");
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_loss_type: [robust]\ndpo_label_smoothing: 0.1\n");
    CHECK(r.rc == 0 && r.c.dpo_label_smoothing == 0.1 && r.d.n == 0);
    run_free(&r);
    expect_error("rl: dpo\ndpo_loss_type: [robust]\ndpo_label_smoothing: 0.5\n", "cfg.yml:3:22", "expected a number in [0, 0.5)");
    expect_error("rl: dpo\ndpo_loss_type: [exo_pair]\n", "cfg.yml:2:16", "exo_pair needs dpo_label_smoothing > 0");
    run_y(&r, "rl: ipo\ndpo_label_smoothing: 0.1\n");
    CHECK(r.rc == 0 && r.c.dpo_label_smoothing == 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:2:1", "ignored with rl: ipo");
    run_free(&r);
    expect_error("rl: ipo\ndpo_loss_type: [sigmoid]\n", "cfg.yml:2:1", "dpo_loss_type: for rl: dpo only");
    expect_error("rl: dpo\ndpo_loss_type: [a, b, c, d, e]\n", "cfg.yml:2:16", "a sum of 5 losses is not implemented");
    expect_error("rl: dpo\ndpo_loss_type: [sigmoid, nope]\n", "cfg.yml:2:26", "one of TRL 1.9's loss types");
    expect_error("rl: dpo\ndpo_loss_type: ipo\n", "cfg.yml:2:16", "a scalar is no list");
    run_y(&r, "rl: dpo\ndpo_loss_type: [sigmoid, hinge]\ndpo_loss_weights: [1.5, -0.5]\n"); /* any number, as TRL */
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_weights, "1.5,-0.5"));
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_loss_type: [exo_pair]\ndpo_label_smoothing: 0.6\n"); /* exo_pair: any eps in (0, 1) */
    CHECK(r.rc == 0 && r.c.dpo_label_smoothing == 0.6);
    run_free(&r);
    /* TRL's Liger path: sigmoid of weight 1 only (it has its own kernel, no weights or smoothing) */
    run_y(&r, "rl: dpo\ndpo_use_liger_kernel: true\n");
    CHECK(r.rc == 0 && r.d.n == 0);
    run_free(&r);
    expect_error("rl: dpo\ndpo_loss_type: [ipo]\ndpo_use_liger_kernel: true\n", "cfg.yml:3:1", "refuses it with the ipo loss");
    expect_error("rl: dpo\ndpo_loss_type: [sigmoid, hinge]\ndpo_use_liger_kernel: true\n", "cfg.yml:3:1",
                 "TRL raises with several loss types");
    expect_error("rl: dpo\ndpo_loss_type: [hinge]\ndpo_use_liger_kernel: true\n", "cfg.yml:3:23", "TRL's Liger DPO loss");
    run_y(&r, "rl: dpo\ndpo_loss_type: [sigmoid]\nprecompute_ref_log_probs: true\ndpo_padding_free: true\n"
              "dpo_use_liger_kernel: true\n");
    CHECK(r.rc == 0 && r.d.n == 0);
    run_free(&r);
    run_y(&r, "rl: \"\"\n"); /* Axolotl's falsy rl: the causal-LM loss */
    CHECK(r.rc == 0 && r.c.rl == FE_RL_NONE);
    run_free(&r);
    /* TRL's dropout off */
    run_y(&r, "rl: dpo\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nlora_dropout: 0.05\n");
    CHECK(r.rc == 0 && r.c.lora_dropout == 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:6:1", "lora_dropout: 0.05 is not applied, as TRL's DPOTrainer disables");
    run_free(&r);
    expect_warning("rl: dpo\ndpo_label_smoothing: 0.1\n", "cfg.yml:2:1", "ignored, as TRL 1.9's sigmoid loss ignores it");
    expect_warning("rl: dpo\nmax_prompt_len: 512\n", "cfg.yml:2:1", "Axolotl 0.19 passes it to no DPO trainer");
    expect_warning("rl_beta: 0.2\n", "cfg.yml:1:1", "rl_beta: ignored without rl");
    expect_error("dpo_loss_type: [sigmoid]\n", "cfg.yml:1:1", "dpo_loss_type: for rl: dpo only");
    expect_error("rl: dpo\ndpo_loss_weights: [1.0]\n", "cfg.yml:2:1", "requires dpo_loss_type to be set");
    expect_error("rl: dpo\ndpo_loss_type: [sigmoid]\ndpo_loss_weights: [1, 2]\n", "cfg.yml:3:19",
                 "expected a list of 1 weight, one a loss type");
    expect_error("rl: dpo\ndpo_loss_type: [aot]\n", "cfg.yml:2:17", "an aot loss (sorted over the micro-batch)");
    /* TRL's sft term (RPO as TRL >= 0.29 spells it): beside the pair losses, its weight on its own */
    run_y(&r, "rl: dpo\ndpo_loss_type: [sigmoid, sft]\n");
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_types, "sigmoid") && !r.c.dpo_loss_weights && r.c.dpo_sft_weight == 1);
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_loss_type: [sft, ipo]\ndpo_loss_weights: [0.5, 2]\n");
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_types, "ipo") && !strcmp(r.c.dpo_loss_weights, "2") && r.c.dpo_sft_weight == 0.5);
    run_free(&r);
    run_y(&r, "rl: dpo\ndpo_loss_type: [sft]\n"); /* the NLL alone: a sigmoid term of weight 0 keeps the op */
    CHECK(r.rc == 0 && !strcmp(r.c.dpo_loss_types, "sigmoid") && !strcmp(r.c.dpo_loss_weights, "0") && r.c.dpo_sft_weight == 1);
    run_free(&r);
    expect_error("rl: grpo\n", "cfg.yml:1:5", "not implemented in axo; axo accepts dpo, ipo, simpo and orpo");
    expect_error("rl: dpoo\n", "cfg.yml:1:5", "one of dpo, ipo, orpo");
    /* rl: simpo (CPOTrainer) and rl: orpo (ORPOTrainer): beta from trl.beta, rl_beta, then orpo_alpha */
    expect_error("rl: simpo\n", "cfg.yml", "simpo_gamma: rl: simpo needs it");
    run_y(&r, "rl: simpo\nsimpo_gamma: 0.5\n");
    CHECK(r.rc == 0 && r.c.rl_kind == FE_RL_SIMPO && r.c.cpo_alpha == 1.0 && r.c.simpo_gamma == 0.5 && r.c.rl_beta == 0.1);
    run_free(&r);
    run_y(&r, "rl: simpo\nsimpo_gamma: 1\ncpo_alpha: 0\norpo_alpha: 0.3\n");
    CHECK(r.rc == 0 && r.c.cpo_alpha == 0 && r.c.rl_beta == 0.3);
    run_free(&r);
    run_y(&r, "rl: simpo\nsimpo_gamma: 1\nrl_beta: 2.5\norpo_alpha: 0.3\n");
    CHECK(r.rc == 0 && r.c.rl_beta == 2.5);
    run_free(&r);
    run_y(&r, "rl: orpo\norpo_alpha: 0.2\n");
    CHECK(r.rc == 0 && r.c.rl_kind == FE_RL_ORPO && r.c.rl_beta == 0.2 && !strcmp(r.c.dpo_loss_types, "orpo"));
    run_free(&r);
    expect_error("rl: simpo\nsimpo_gamma: 0.5\nwarmup_ratio: 0.1\n", "cfg.yml:3:15", "warmup_ratio: not supported with the simpo trainer");
    expect_error("rl: orpo\ndpo_loss_type: [sigmoid]\n", "cfg.yml:2:1", "dpo_loss_type: for rl: dpo only");
    expect_warning("rl: orpo\ncpo_alpha: 0.5\n", "cfg.yml:2:1", "cpo_alpha: ignored with rl: orpo");
    expect_warning("rl: dpo\nsimpo_gamma: 0.5\n", "cfg.yml:2:1", "simpo_gamma: ignored with rl: dpo");
    expect_error("rl: dpo\ndpo_loss_type: [simpo]\n", "cfg.yml:2:17", "one of TRL 1.9's loss types");
    run_y(&r, "rl: simpo\nsimpo_gamma: -0.5\ncpo_alpha: -1\n"); /* any float, as Axolotl's schema */
    CHECK(r.rc == 0 && r.c.simpo_gamma == -0.5 && r.c.cpo_alpha == -1);
    run_free(&r);
    expect_error("rl: dpo\ntrl:\n  num_generations: 8\n", "cfg.yml:3:20", "trl.num_generations: 8 changes training");
    expect_error("rl: dpo\nsample_packing: true\n", "cfg.yml:2:17", "does not work with RLHF training");
    run_y(&r, "rl: dpo\nval_set_size: 0.1\neval_steps: 5\n"); /* evaluated with the DPO loss (runtime/dpo.c) */
    CHECK(r.rc == 0 && r.c.val_set_size == 0.1);
    run_free(&r);
    expect_warning("rl: dpo\nval_set_size: 0.1\nsave_steps: 10\neval_steps: 5\nearly_stopping_patience: 2\n", "cfg.yml:5:1",
                   "early_stopping_patience: ignored, as Axolotl's RL trainer builder does not pass it");
    expect_error("rl: dpo\nval_set_size: 5\n", "cfg.yml:2:15", "HF's train_test_split the float as it is");
    expect_error("rl: dpo\nneftune_noise_alpha: 5\n", "cfg.yml:2:22", "NEFTune with rl: dpo");
    expect_error("rl: dpo\nexcess_length_strategy: raise\n", "cfg.yml:2:25", "Axolotl's default, drop");
    expect_error("rl: dpo\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\npeft_init_lora_weights: false\n",
                 "cfg.yml:6:25", "adapters that do not start at zero");
    /* the DPO dataset types */
    static const struct { const char *type; int fam, var; } ty[] = {
        {"chatml", RT_DPO_CHATML, RT_DPOV_DEFAULT},          {"chatml.intel", RT_DPO_CHATML, RT_DPOV_INTEL},
        {"llama3.argilla_chat", RT_DPO_LLAMA3, RT_DPOV_ARGILLA_CHAT}, {"llama3.ultra", RT_DPO_LLAMA3, RT_DPOV_ULTRA},
        {"chatml.icr", RT_DPO_CHATML, RT_DPOV_ICR},          {"llama3.prompt_pairs", RT_DPO_LLAMA3, RT_DPOV_PROMPT_PAIRS},
        {"passthrough", RT_DPO_PASSTHROUGH, 0},              {"chat_template.default", RT_DPO_CHAT, 0}};
    for (size_t i = 0; i < AX_ARRAY_LEN(ty); i++) {
        char y[400];
        snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type: %s\n", FIX,
                 FIX, ty[i].type);
        run_raw(&r, y);
        CHECK_MSG(r.rc == 0 && r.c.datasets[0].spec.fmt == RT_FMT_DPO && (int)r.c.datasets[0].spec.dpo_family == ty[i].fam &&
                      (int)r.c.datasets[0].spec.dpo_variant == ty[i].var, "%s\n%s", ty[i].type, dump(&r.d));
        run_free(&r);
    }
    char y[600];
    snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type:\n"
             "      field_prompt: q\n      prompt_format: \"Q: {prompt}\"\n      chosen_format: \"{chosen}!\"\n", FIX, FIX);
    run_raw(&r, y);
    const rt_ds_spec *sp = &r.c.datasets[0].spec;
    CHECK(r.rc == 0 && sp->dpo_family == RT_DPO_USER && !strcmp(sp->ud_field_prompt, "q") &&
          !strcmp(sp->ud_format, "Q: {prompt}") && !strcmp(sp->ud_chosen_format, "{chosen}!") &&
          !strcmp(sp->ud_rejected_format, "{rejected}") && !strcmp(sp->ud_field_chosen, "chosen"));
    run_free(&r);
    snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type:\n"
             "      prompt_format: \"{question}\"\n", FIX, FIX);
    run_raw(&r, y);
    CHECK(r.rc == -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:6:22", "\"{question}\": this format fills only {prompt}, {system}");
    run_free(&r);
    static const char *const no[] = {"chatml.argilla", "zephyr.default", "chatml.nectar", "alpaca", "llama3.nope"};
    for (size_t i = 0; i < AX_ARRAY_LEN(no); i++) {
        snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type: %s\n", FIX,
                 FIX, no[i]);
        run_raw(&r, y);
        CHECK_MSG(r.rc == -1 && has(&r.d, AX_SEV_ERROR, "cfg.yml:5:11", "is not implemented; axo reads chat_template.default, "
                                                                      "chat_template.argilla_chat, zephyr.nectar, chatml or llama3"),
                  "%s\n%s", no[i], dump(&r.d));
        run_free(&r);
    }
    /* chat_template.argilla_chat and zephyr.nectar (warned: the chosen answer is the largest rank, as Axolotl has it) */
    snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type: "
             "chat_template.argilla_chat\n", FIX, FIX);
    run_raw(&r, y);
    CHECK(r.rc == 0 && r.c.datasets[0].spec.dpo_family == RT_DPO_CHAT && r.c.datasets[0].spec.dpo_variant == RT_DPOV_ARGILLA_CHAT);
    run_free(&r);
    snprintf(y, sizeof y, "rl: dpo\nbase_model: %s/models/llama\ndatasets:\n  - path: %s/data/toy.jsonl\n    type: zephyr.nectar\n",
             FIX, FIX);
    run_raw(&r, y);
    CHECK(r.rc == 0 && r.c.datasets[0].spec.dpo_family == RT_DPO_ZEPHYR && r.c.datasets[0].spec.dpo_variant == RT_DPOV_NECTAR);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:5:11", "the chosen answer is the one of largest \"rank\"");
    run_free(&r);
}

/* NEFTune: neftune_noise_alpha, and noisy_embedding_alpha, its old name,
 * taken as Axolotl's check_neftune takes it: when neftune_noise_alpha is
 * unset or 0; both nonzero is an error. 0 and null are off (no noise, the
 * canonical text and so the plan as without the key); a negative alpha or
 * a non-number is an error at the value. */
static void test_neftune(void) {
    static const struct {
        const char *y;
        double alpha;
    } ok[] = {
        {"neftune_noise_alpha: 5\n", 5},
        {"neftune_noise_alpha: 0.1\n", 0.1},
        {"noisy_embedding_alpha: 5\n", 5},
        {"noisy_embedding_alpha: 3\nneftune_noise_alpha: 0\n", 3},
        {"neftune_noise_alpha: ~\nnoisy_embedding_alpha: 3\n", 3},
        {"neftune_noise_alpha: 2\nnoisy_embedding_alpha: 0\n", 2},
        {"neftune_noise_alpha: 0\n", 0},
        {"neftune_noise_alpha: 0.0\nnoisy_embedding_alpha: 0\n", 0},
        {"neftune_noise_alpha: ~\nnoisy_embedding_alpha:\n", 0},
    };
    run base, r;
    run_y(&base, "# base\n");
    char *cbase = canon(&base.c), *c5 = NULL;
    CHECK(base.rc == 0 && base.c.neftune_noise_alpha == 0);
    for (size_t i = 0; i < AX_ARRAY_LEN(ok); i++) {
        run_y(&r, ok[i].y);
        CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s:\n%s", ok[i].y, dump(&r.d));
        CHECK_MSG(r.c.neftune_noise_alpha == ok[i].alpha, "%s: alpha %g, expected %g", ok[i].y, r.c.neftune_noise_alpha,
                  ok[i].alpha);
        char *cv = canon(&r.c);
        if (ok[i].alpha == 0) CHECK_MSG(!strcmp(cv, cbase), "%s: canonical text differs from no NEFTune", ok[i].y);
        else CHECK_MSG(strcmp(cv, cbase) != 0, "%s: canonical text as without NEFTune", ok[i].y);
        if (ok[i].alpha == 5) { /* the old name makes the same plan as the new one */
            if (!c5) c5 = cv, cv = NULL;
            else CHECK_MSG(!strcmp(cv, c5), "%s: canonical text differs from neftune_noise_alpha: 5", ok[i].y);
        }
        free(cv);
        run_free(&r);
    }
    CHECK(c5 && strstr(c5, "\nneftune_noise_alpha=5\n"));
    free(c5);
    free(cbase);
    run_free(&base);
    expect_error("neftune_noise_alpha: -1\n", "cfg.yml:1:22", "neftune_noise_alpha: expected a non-negative number, found \"-1\"");
    expect_error("noisy_embedding_alpha: -0.5\n", "cfg.yml:1:24",
                 "noisy_embedding_alpha: expected a non-negative number, found \"-0.5\"");
    expect_error("neftune_noise_alpha: lots\n", "cfg.yml:1:22", "neftune_noise_alpha: expected a non-negative number");
    expect_error("neftune_noise_alpha: [5]\n", "cfg.yml:1:22", "neftune_noise_alpha: expected a non-negative number");
    expect_error("neftune_noise_alpha: 5\nnoisy_embedding_alpha: 5\n", "cfg.yml:2:1",
                 "noisy_embedding_alpha: expected only one of noisy_embedding_alpha (the old name) and neftune_noise_alpha, "
                 "found both (as Axolotl)");
}

/* Infrastructure and logging keys: silent, whatever the value; except that one asking for something axo does
 * not do (an upload, a tracker, generations) gets one warning saying so when a value turns it on. */
static void test_infra_keys(void) {
    CHECK(fe_ninfra_keys > 150);
    static const char *const vals[] = {"x", "true", "3", "[1, 2]", "{a: 1}", "~"};
    int nunperformed = 0;
    for (int i = 0; i < fe_ninfra_keys; i++) {
        nunperformed += fe_unperformed_key(fe_infra_keys[i]) != NULL;
        for (size_t j = 0; j < AX_ARRAY_LEN(vals); j++) {
            char y[160];
            snprintf(y, sizeof y, "%s: %s\n", fe_infra_keys[i], vals[j]);
            if (!fe_unperformed_key(fe_infra_keys[i]) || j == AX_ARRAY_LEN(vals) - 1) {
                expect_silent(y);
                continue;
            }
            run r;
            run_y(&r, y);
            CHECK_MSG(r.rc == 0 && r.d.n == 1 && r.d.nwarnings == 1 && strstr(r.d.entries[0].msg, "accepted, but axo does not do"),
                      "%s", y);
            run_free(&r);
        }
        if (fe_unperformed_key(fe_infra_keys[i])) { /* off: silent */
            char y[160];
            snprintf(y, sizeof y, "%s: false\n", fe_infra_keys[i]);
            expect_silent(y);
        }
    }
    CHECK(nunperformed >= 12);
    expect_silent("swanlab_project: p\nwandb_mode: offline\nflex_attention: true\neager_attention: false\n");
    expect_silent("wandb_project:\nhub_model_id: \"\"\nuse_wandb: false\nmerge_lora: false\n");
    expect_warning("wandb_project: p\n", "cfg.yml:1:1",
                   "wandb_project: accepted, but axo does not do logging to Weights & Biases (axorun writes train_log.jsonl");
    expect_warning("hub_model_id: me/model\n", "cfg.yml:1:1", "hub_model_id: accepted, but axo does not do pushing the model");
}

/* The keys with their own rules: attention, plugins, model_type, batch_size,
 * group_by_length, shuffle_merged_datasets, trust_remote_code. */
static void test_training_keys(void) {
    static const char *const exact[] = {"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention", "xformers"};
    for (size_t i = 0; i < AX_ARRAY_LEN(exact); i++) {
        char y[96];
        snprintf(y, sizeof y, "attn_implementation: %s\n", exact[i]);
        expect_silent(y);
    }
    expect_silent("attn_implementation: ~\n");
    expect_error("attn_implementation: s2\n", "cfg.yml:1:22",
                 "attn_implementation: s2 changes training (shifted sparse attention, an approximation) and is not "
                 "implemented in axo; axo computes exact attention and accepts eager, sdpa");
    expect_error("attn_implementation: sage\n", "cfg.yml:1:22", "attn_implementation: sage changes training (SageAttention");
    expect_error("attn_implementation: fp8\n", "cfg.yml:1:22", "attn_implementation: fp8 changes training (FP8 attention");
    expect_error("attn_implementation: kernels-community/flash-attn\n", "cfg.yml:1:22",
                 "attn_implementation: kernels-community/flash-attn changes training (an attention kernel axo does not know)");
    expect_error("attn_implementation: [sdpa]\n", "cfg.yml:1:22", "attn_implementation: expected a string, found a list");
    expect_error("s2_attention: true\n", "cfg.yml:1:15", "s2_attention: true changes training (shifted sparse attention");
    expect_error("sage_attention: true\n", "cfg.yml:1:17", "sage_attention: true changes training (SageAttention");
    expect_silent("s2_attention: false\nsage_attention: false\n");

    /* shuffle_merged_datasets: HF's sampler shuffles every epoch either way */
    expect_silent("shuffle_merged_datasets: true\n");
    expect_silent("shuffle_merged_datasets: false\n");
    expect_error("shuffle_merged_datasets: sometimes\n", "cfg.yml:1:26", "shuffle_merged_datasets: expected true or false");

    /* batch_size: gradient_accumulation_steps = batch_size // micro_batch_size (Axolotl) */
    run r;
    run_y(&r, "batch_size: 8\nmicro_batch_size: 2\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK_EQ(r.c.gradient_accumulation_steps, 4);
    CHECK_EQ(r.c.micro_batch_size, 2);
    run_free(&r);
    run_y(&r, "micro_batch_size: 4\nbatch_size: 10\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.gradient_accumulation_steps, 2);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:2:13", "batch_size: 10 is not a multiple of micro_batch_size 4");
    run_free(&r);
    expect_silent("batch_size: ~\ngradient_accumulation_steps: 3\n");
    expect_error("batch_size: 8\ngradient_accumulation_steps: 2\n", "cfg.yml:1:1",
                 "batch_size: expected only one of gradient_accumulation_steps and batch_size, found both");
    expect_error("micro_batch_size: 4\nbatch_size: 2\n", "cfg.yml:2:13", "batch_size: expected at least micro_batch_size (4)");
    expect_error("batch_size: eight\n", "cfg.yml:1:13", "batch_size: expected a positive integer");
    /* a DeepSpeed gradient_accumulation_steps must agree with the derived one */
    char yml[700];
    snprintf(yml, sizeof yml, "batch_size: 4\ndeepspeed: %s\n",
             tmp_write("ds_gas2.json", "{\"zero_optimization\": {\"stage\": 1}, \"gradient_accumulation_steps\": 2}\n"));
    expect_error(yml, "ds_gas2.json", "2 disagrees with the YAML's gradient_accumulation_steps: 4");

    /* plugins: the two whose effect axo has */
    expect_silent("plugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
                  "  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\ncut_cross_entropy: true\n");
    expect_silent("plugins: []\n");
    expect_error("plugins:\n  - axolotl.integrations.liger.LigerPlugin\n  - axolotl.integrations.kd.KDPlugin\n", "cfg.yml:3:5",
                 "plugins[1]: axolotl.integrations.kd.KDPlugin changes training (the plugin's own training behaviour) and is "
                 "not implemented in axo");
    expect_error("plugins: [axolotl.integrations.spectrum.SpectrumPlugin]\n", "cfg.yml:1:11", "plugins[0]: axolotl.integrations.spectrum");
    expect_error("plugins: axolotl.integrations.liger.LigerPlugin\n", "cfg.yml:1:10", "plugins: expected a list of names");

    /* group_by_length: true is read (runtime/data.c groups the batches) */
    expect_silent("group_by_length: false\n");
    expect_silent("group_by_length: true\n");

    /* model_type: causal LM classes only */
    static const char *const lm[] = {"AutoModelForCausalLM", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                     "Qwen3ForCausalLM", "~"};
    for (size_t i = 0; i < AX_ARRAY_LEN(lm); i++) {
        char y[96];
        snprintf(y, sizeof y, "model_type: %s\n", lm[i]);
        expect_silent(y);
    }
    expect_error("model_type: AutoModelForSequenceClassification\n", "cfg.yml:1:13",
                 "model_type: AutoModelForSequenceClassification changes training (another model class and head than a "
                 "causal language model's) and is not implemented in axo; axo accepts AutoModelForCausalLM");
    expect_error("model_type: ForCausalLMx\n", "cfg.yml:1:13", "model_type: ForCausalLMx changes training");

    /* trust_remote_code: true is harmless without the checkpoint's own code */
    expect_silent("trust_remote_code: true\n");
    expect_silent("trust_remote_code: false\n");
    char dir[300];
    snprintf(dir, sizeof dir, "%s/remote", tmpd);
    if (mkdir(dir, 0755) != 0) abort();
    tmp_write("remote/config.json", "{\"model_type\": \"llama\", \"auto_map\": {\"AutoModelForCausalLM\": \"m.M\"}}\n");
    snprintf(yml, sizeof yml, "base_model: %s\ntrust_remote_code: true\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n", dir);
    run_raw(&r, yml);
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:2:20", "trust_remote_code: true changes training (");
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:2:20", "remote/config.json has \"auto_map\"");
    run_free(&r);
    snprintf(yml, sizeof yml, "base_model: %s\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n", dir);
    run_raw(&r, yml);
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    run_free(&r);
}

/* num_epochs: a positive number, fractions allowed (Axolotl's float) */
static void test_num_epochs(void) {
    static const struct { const char *y; double v; const char *canon; } ok[] = {
        {"num_epochs: 0.5\n", 0.5, "\nnum_epochs=0.5\n"}, {"num_epochs: 1.5\n", 1.5, "\nnum_epochs=1.5\n"},
        {"num_epochs: 3\n", 3, "\nnum_epochs=3\n"},       {"num_epochs: 2.0\n", 2, "\nnum_epochs=2\n"},
        {"# default\n", 1, "\nnum_epochs=1\n"},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(ok); i++) {
        run r;
        run_y(&r, ok[i].y);
        CHECK_MSG(r.rc == 0 && r.d.n == 0 && r.c.num_epochs == ok[i].v, "%s: %.17g\n%s", ok[i].y, r.c.num_epochs, dump(&r.d));
        char *t = canon(&r.c);
        CHECK_CONTAINS(t, ok[i].canon);
        free(t);
        run_free(&r);
    }
    expect_error("num_epochs: 0\n", "cfg.yml:1:13", "num_epochs: expected a positive number, found \"0\"");
    expect_error("num_epochs: -1.5\n", "cfg.yml:1:13", "num_epochs: expected a positive number");
    expect_error("num_epochs: many\n", "cfg.yml:1:13", "num_epochs: expected a positive number");
}

static void test_consistency(void) {
    expect_error("warmup_steps: 10\nwarmup_ratio: 0.1\n", "cfg.yml:2:1",
                 "warmup_ratio: expected only one of warmup_steps and warmup_ratio, found both");
    expect_error("val_set_size: 2.5\n", "cfg.yml:1:15", "val_set_size: expected a fraction in [0, 1) or a whole number");
    /* counts the runtime converts to int64 (found by fuzzing) */
    expect_error("val_set_size: 1e308\n", "cfg.yml:1:15", "val_set_size: expected at most 2^53 rows, found 1e+308");
    expect_error("num_epochs: 1e300\n", "cfg.yml:1:13", "num_epochs: expected at most 1000000");
    expect_error("noisy_embedding_alpha: 1e300\n", "cfg.yml:1:24", "noisy_embedding_alpha: expected at most 3.4e38");
    run r;
    run_y(&r, "val_set_size: 100\nwarmup_ratio: 0.1\n");
    CHECK_EQ(r.rc, 0);
    CHECK(r.c.val_set_size == 100 && r.c.warmup_ratio == 0.1);
    run_free(&r);
    /* ring_attn_func defaults as Axolotl's do */
    run_y(&r, "sequence_parallel_degree: 2\nsample_packing: true\n");
    CHECK_EQ(r.rc, 0);
    CHECK_STREQ(r.c.ring_attn_func, "varlen_llama3");
    run_free(&r);
    run_y(&r, "sequence_parallel_degree: 2\n");
    CHECK_STREQ(r.c.ring_attn_func, "batch_ring");
    run_free(&r);
    expect_error("sequence_parallel_degree: 2\nsample_packing: true\nring_attn_func: batch_zigzag\n", "cfg.yml:3:17",
                 "ring_attn_func: expected varlen_llama3 with sample_packing: true");
}

static void test_paths(void) {
    run r;
    /* relative to the YAML file's directory */
    r.ar = ax_arena_create();
    ax_diag_init(&r.d);
    r.rc = fe_config_load(FIX "/ref_fsdp_qlora.yml", NULL, &r.c, r.ar, &r.d);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.c.base_model, "tests/data/config/models/llama");
    CHECK(r.c.base_model[0] == '/');
    CHECK_EQ(r.c.ndatasets, 1);
    CHECK_CONTAINS(r.c.datasets[0].path, "tests/data/config/data/toy.jsonl");
    run_free(&r);
    /* as given (relative to the working directory) */
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) abort();
    if (chdir(AXO_SOURCE_DIR) != 0) abort();
    run_raw(&r, "base_model: tests/data/config/models/qwen2\ndatasets:\n  - path: tests/data/config/data/toy.jsonl\n");
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.c.base_model, "tests/data/config/models/qwen2");
    run_free(&r);
    if (chdir(cwd) != 0) abort();
    /* missing: the key and both paths tried */
    run_raw(&r, "base_model: no/such/model\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:13", "base_model: expected an existing directory, found none at \"no/such/model\" or \"");
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:13", "/no/such/model\"");
    run_free(&r);
    run_raw(&r, "base_model: /abs/missing\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n");
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:13", "base_model: expected an existing directory, found none at \"/abs/missing\"");
    run_free(&r);
    /* a file where a directory is needed */
    run_raw(&r, "base_model: " FIX "/data/toy.jsonl\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:1:13", "base_model: expected an existing directory");
    run_free(&r);
    run_raw(&r, "base_model: " FIX "/models/llama\ndatasets:\n  - path: missing.jsonl\n  - path: " FIX "/data/toy.jsonl\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:3:11", "datasets[0].path: expected an existing file, found none at \"missing.jsonl\" or");
    run_free(&r);
    run_raw(&r, "base_model: " FIX "/models/llama\ndatasets:\n  - type: \"\"\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:3:5", "datasets[0].path: expected a path to a local .jsonl or .json file, found none");
    run_free(&r);
    run_raw(&r, "base_model: " FIX "/models/llama\ndatasets: []\n");
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml:2:11", "datasets: expected at least one");
    run_free(&r);
    /* required keys */
    run_raw(&r, "seed: 1\n");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml", "base_model: expected a Hugging Face model directory or Hub repo id, found none");
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "cfg.yml", "datasets: expected a list of {path: FILE.jsonl}, found none");
    run_free(&r);
    /* empty type = pre-tokenized; several datasets keep their order */
    run_raw(&r, "base_model: " FIX "/models/llama\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n    type:\n  - path: " FIX
                "/data/../data/toy.jsonl\n    type: ''\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.ndatasets, 2);
    run_free(&r);
    /* base_model_config naming another directory */
    expect_error("base_model_config: " FIX "/models/qwen2\n", "cfg.yml:1:20",
                 "base_model_config: a config.json from a directory other than base_model is not implemented");
}

static void test_canonical(void) {
    run a, b;
    /* the same meaning spelled differently, in another order */
    run_y(&a, "learning_rate: 2e-5\nsample_packing: yes\noptimizer: adamw_torch\nmicro_batch_size: 2\nbf16: true\n"
              "lora_target_modules: [q_proj, v_proj]\nadapter: lora\nlora_r: 8\nmodel_type: AutoModelForCausalLM\nwandb_project: a\n");
    char *ca = canon(&a.c);
    run_y(&b, "adapter: lora\nlora_r: 8\nlora_target_modules: [v_proj, q_proj]\nbf16: auto\nmicro_batch_size: 2\n"
              "optimizer: adamw_hf\nsample_packing: On\nlearning_rate: 0.00002\ntokenizer_type: y\nwandb_project: b\n");
    char *cb = canon(&b.c);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(b.rc, 0);
    CHECK_STREQ(ca, cb);
    /* determinism: the same file twice */
    run a2;
    run_y(&a2, "learning_rate: 2e-5\nsample_packing: yes\noptimizer: adamw_torch\nmicro_batch_size: 2\nbf16: true\n"
               "lora_target_modules: [q_proj, v_proj]\nadapter: lora\nlora_r: 8\nmodel_type: AutoModelForCausalLM\nwandb_project: a\n");
    char *ca2 = canon(&a2.c);
    CHECK_STREQ(ca, ca2);
    /* format: key=value lines sorted by key, numbers exact */
    CHECK_CONTAINS(ca, "\nlearning_rate=2.0000000000000002e-05\n");
    CHECK_CONTAINS(ca, "\nlora_target_modules=q_proj,v_proj\n");
    CHECK_CONTAINS(ca, "\noptimizer=adamw\n");
    CHECK_CONTAINS(ca, "\nseed=42\n");
    CHECK_CONTAINS(ca, "\nnum_epochs=1\n"); /* a whole number of epochs: the same text (cache key) as before */
    int sorted = 1, lines = 0;
    const char *prev = NULL;
    for (char *p = ca; *p;) {
        char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        if (!nl) break;
        CHECK(memchr(p, '=', (size_t)(nl - p)) != NULL);
        if (prev) {
            size_t kp = strcspn(prev, "="), kc = strcspn(p, "=");
            char a1[128], b1[128];
            snprintf(a1, sizeof a1, "%.*s", (int)kp, prev);
            snprintf(b1, sizeof b1, "%.*s", (int)kc, p);
            if (strcmp(a1, b1) >= 0) sorted = 0;
        }
        prev = p;
        p = nl + 1;
        lines++;
    }
    CHECK(sorted);
    CHECK(lines > 40);
    free(ca);
    free(cb);
    free(ca2);
    run_free(&a);
    run_free(&b);
    run_free(&a2);

    /* sensitivity: every meaning-bearing change changes the text */
    static const char *const variants[] = {
        "sequence_len: 1024\n", "micro_batch_size: 3\n", "eval_batch_size: 5\n", "gradient_accumulation_steps: 2\n",
        "num_epochs: 2\n", "num_epochs: 1.5\n", "max_steps: 9\n", "val_set_size: 0.1\n", "learning_rate: 1e-4\n",
        "lr_scheduler: linear\n", "warmup_steps: 3\n", "warmup_ratio: 0.05\n", "weight_decay: 0.1\n",
        "adam_beta1: 0.85\n", "adam_beta2: 0.98\n", "adam_epsilon: 1e-7\n", "max_grad_norm: 0.5\n", "bf16: true\n",
        "tf32: true\n", "gradient_checkpointing: true\n", "sample_packing: true\n", "pad_to_sequence_len: true\n",
        "adapter: lora\nlora_r: 8\n", "sequence_parallel_degree: 2\n", "liger_rope: true\n", "liger_rms_norm: false\n",
        "liger_glu_activation: true\n", "liger_layer_norm: true\n", "liger_cross_entropy: true\n",
        "liger_fused_linear_cross_entropy: true\n", "save_steps: 10\n", "logging_steps: 10\n", "eval_steps: 10\n",
        "seed: 43\n", "output_dir: ./elsewhere\n", "neftune_noise_alpha: 5\n",
        "early_stopping_patience: 2\nval_set_size: 0.1\nsave_steps: 4\neval_steps: 2\n",
        "load_best_model_at_end: true\nval_set_size: 0.1\nsave_steps: 4\neval_steps: 2\n",
        "greater_is_better: true\n", "ddp_bucket_cap_mb: 1\n", "lr_scheduler: polynomial\n",
        "lr_scheduler_kwargs:\n  num_cycles: 2\n", "cosine_min_lr_ratio: 0.1\n", "lr_quadratic_warmup: true\n", "test_datasets:\n  - path: " FIX "/data/toy.jsonl\n",
        "fsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true\n",
        "deepspeed: " AXO_SOURCE_DIR "/configs/deepspeed/zero1.json\n",
    };
    run base;
    run_y(&base, "# base\n");
    char *cbase = canon(&base.c);
    char **all = calloc(AX_ARRAY_LEN(variants), sizeof *all);
    for (size_t i = 0; i < AX_ARRAY_LEN(variants); i++) {
        run v;
        run_y(&v, variants[i]);
        CHECK_MSG(v.rc == 0, "%s:\n%s", variants[i], dump(&v.d));
        all[i] = canon(&v.c);
        CHECK_MSG(strcmp(all[i], cbase) != 0, "canonical text did not change for: %s", variants[i]);
        for (size_t j = 0; j < i; j++) CHECK_MSG(strcmp(all[i], all[j]) != 0, "%s == %s", variants[i], variants[j]);
        run_free(&v);
    }
    /* a dataset path changes it too */
    run v;
    run_raw(&v, "base_model: " FIX "/models/llama\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n  - path: " FIX "/data/toy.jsonl\n");
    char *cv = canon(&v.c);
    CHECK(strcmp(cv, cbase) != 0);
    free(cv);
    run_free(&v);
    run_raw(&v, "base_model: " FIX "/models/qwen2\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n");
    cv = canon(&v.c);
    CHECK(strcmp(cv, cbase) != 0);
    free(cv);
    run_free(&v);
    for (size_t i = 0; i < AX_ARRAY_LEN(variants); i++) free(all[i]);
    free(all);
    free(cbase);
    run_free(&base);
}

/* chat_template_jinja: a file's text (as given, or beside the config), else
 * the template itself; chat_template_kwargs as JSON */
static void test_chat_template_jinja(void) {
    tmp_write("tpl.jinja", "{{ messages[0].content }}\n");
    run r;
    run_y(&r, "chat_template: jinja\nchat_template_jinja: tpl.jinja\nchat_template_kwargs:\n  enable_thinking: false\n"
              "  name: \"x\"\n  n: 3\n  r: 0.5\n");
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK_STREQ(r.c.chat_template_jinja.text, "{{ messages[0].content }}\n");
    CHECK_CONTAINS(r.c.chat_template_jinja.where, "tpl.jinja");
    CHECK_STREQ(r.c.chat_template_kwargs, "{\"enable_thinking\":false,\"n\":3,\"name\":\"x\",\"r\":0.5}");
    run_free(&r);
    run_raw(&r, "base_model: " FIX "/models/llama\ndatasets:\n  - path: " FIX "/data/toy.jsonl\n    type: chat_template\n"
                "    chat_template_jinja: \"{% for m in messages %}{{ m.content }}{% endfor %}\"\n");
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.c.ndatasets == 1 && r.c.datasets[0].chat_template_jinja.text &&
          !strcmp(r.c.datasets[0].chat_template_jinja.text, "{% for m in messages %}{{ m.content }}{% endfor %}"));
    CHECK_CONTAINS(r.c.datasets[0].chat_template_jinja.where, "cfg.yml:5:");
    run_free(&r);
    expect_error("chat_template_kwargs: [1, 2]\n", "cfg.yml:1", "chat_template_kwargs: expected a mapping");
    /* a path that is not there is the template text (Axolotl's rule), which is worth a warning */
    run_y(&r, "chat_template: jinja\nchat_template_jinja: templates/missing.jinja\n");
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK_STREQ(r.c.chat_template_jinja.text, "templates/missing.jinja");
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:2:22", "chat_template_jinja: \"templates/missing.jinja\" is not a file");
    run_free(&r);
}

/* tokens, special_tokens, added_tokens_overrides and the resize switches */
static void test_added_tokens(void) {
    run r;
    run_y(&r, "tokens: [\"<|im_start|>\", \"<|im_end|>\"]\nspecial_tokens:\n  pad_token: \"<|pad|>\"\n  unk_token: \"<unk>\"\n"
              "  additional_special_tokens: [\"<a>\", \"<b>\"]\nadded_tokens_overrides:\n  128002: \"<tool>\"\n"
              "resize_token_embeddings_to_32x: true\nmean_resizing_embeddings: true\nshrink_embeddings: true\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.ntokens, 2);
    CHECK(r.c.ntokens == 2 && !strcmp(r.c.tokens[1], "<|im_end|>"));
    CHECK(r.c.special_pad && !strcmp(r.c.special_pad, "<|pad|>"));
    CHECK(r.c.special_unk && !strcmp(r.c.special_unk, "<unk>"));
    CHECK(r.c.nextra_special == 2 && !strcmp(r.c.extra_special[0], "<a>"));
    CHECK(r.c.noverrides == 1 && r.c.override_ids[0] == 128002 && !strcmp(r.c.override_strs[0], "<tool>"));
    CHECK(r.c.resize_32x && r.c.mean_resizing && r.c.shrink_embeddings);
    CHECK(!ax_diag_contains(&r.d, "unknown key"));
    run_free(&r);
    expect_error("added_tokens_overrides:\n  abc: \"<x>\"\n", "cfg.yml:2:3",
                 "added_tokens_overrides: expected a token id (a whole number >= 0) as the key, found \"abc\"");
    expect_error("added_tokens_overrides:\n  7: \"\"\n", "cfg.yml:2:6",
                 "added_tokens_overrides.7: expected the token's new content, found an empty string");
    expect_error("added_tokens_overrides: [1, 2]\n", "cfg.yml:1:25", "added_tokens_overrides: expected a mapping");
    expect_error("special_tokens:\n  eos_token: \"\"\n", "cfg.yml:2:14", "special_tokens.eos_token: expected a token, found an empty string");
    run_y(&r, "special_tokens:\n  sep_token: \"<sep>\"\n");
    CHECK_EQ(r.rc, 0);
    CHECK(ax_diag_contains(&r.d, "special_tokens.sep_token: not a key of Axolotl's special_tokens"));
    run_free(&r);
}

/* LoRA+ (loraplus_lr_ratio, loraplus_lr_embedding): a positive ratio (on
 * a full fine-tune too: PEFT's groups apply to any model), Axolotl's
 * default embedding lr, the canonical text only when set, and no LoRA+
 * with DeepSpeed's own optimizer (HF Trainer never makes its groups). */
static void test_loraplus(void) {
    run r;
    run_y(&r, "adapter: lora\nlora_r: 8\nloraplus_lr_ratio: 16\nloraplus_lr_embedding: 1e-5\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.loraplus_lr_ratio == 16 && r.c.loraplus_lr_embedding == 1e-5);
    char *ca = canon(&r.c);
    CHECK_CONTAINS(ca, "\nloraplus_lr_ratio=16\n");
    CHECK(!strstr(ca, "loraplus_lr_embedding")); /* changes no plan: axo has no LoRA embedding adapter */
    free(ca);
    run_free(&r);
    run_y(&r, "adapter: lora\nlora_r: 8\n");
    CHECK(r.c.loraplus_lr_ratio == 0 && r.c.loraplus_lr_embedding == 1e-6);
    ca = canon(&r.c);
    CHECK(!strstr(ca, "loraplus")); /* older plans keep their cache keys */
    free(ca);
    run_free(&r);
    expect_silent("adapter: lora\nlora_r: 8\nloraplus_lr_embedding: 0\n");
    expect_error("loraplus_lr_ratio: 0\n", "cfg.yml:1:20", "loraplus_lr_ratio: expected a positive number, found \"0\"");
    expect_error("loraplus_lr_ratio: -16\n", "cfg.yml:1:20", "loraplus_lr_ratio: expected a positive number, found \"-16\"");
    expect_error("loraplus_lr_ratio: [16]\n", "cfg.yml:1:20", "loraplus_lr_ratio: expected a positive number, found a list");
    expect_error("loraplus_lr_embedding: -1e-6\n", "cfg.yml:1:24", "loraplus_lr_embedding: expected a non-negative number");
    run_y(&r, "loraplus_lr_ratio: 4\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.loraplus_lr_ratio == 4);
    run_free(&r);
    char y[1024];
    snprintf(y, sizeof y, "adapter: lora\nlora_r: 8\nloraplus_lr_ratio: 16\ndeepspeed: %s\n",
             tmp_write("ds_opt.json", "{\"zero_optimization\": {\"stage\": 2}, \"optimizer\": {\"type\": \"AdamW\", "
                                     "\"params\": {\"lr\": \"auto\"}}}\n"));
    run_y(&r, y);
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:3:1", "loraplus_lr_ratio: ignored, as HF Trainer ignores it, with the DeepSpeed");
    CHECK(r.c.loraplus_lr_ratio == 0);
    run_free(&r);
}

/* peft_trainable_token_indices: a list, or PEFT's mapping naming embed_tokens; in the canonical text only when set;
 * errors at the value (another module, a repeat, a negative id, not a list) */
static void test_trainable_tokens(void) {
    run r;
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_trainable_token_indices: [5, 2, 9]\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.ntrainable_tokens == 3 && r.c.trainable_tokens[0] == 5 && r.c.trainable_tokens[2] == 9);
    char *ca = canon(&r.c);
    CHECK_CONTAINS(ca, "\npeft_trainable_token_indices=[5,2,9]\n");
    free(ca);
    run_free(&r);
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_trainable_token_indices:\n  model.embed_tokens: [7]\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.ntrainable_tokens == 1 && r.c.trainable_tokens[0] == 7);
    run_free(&r);
    run_y(&r, "adapter: lora\nlora_r: 8\n");
    ca = canon(&r.c);
    CHECK(!strstr(ca, "trainable_token"));
    free(ca);
    run_free(&r);
    expect_error("adapter: lora\npeft_trainable_token_indices:\n  lm_head: [1]\n", "cfg.yml:3:3",
                 "peft_trainable_token_indices: \"lm_head\": expected embed_tokens");
    expect_error("adapter: lora\npeft_trainable_token_indices: [1, 4, 1]\n", "cfg.yml:2:38",
                 "peft_trainable_token_indices[2]: expected a token id not already in the list");
    expect_error("adapter: lora\npeft_trainable_token_indices: [-3]\n", "cfg.yml:2:32",
                 "peft_trainable_token_indices[0]: expected a non-negative integer");
    expect_error("adapter: lora\npeft_trainable_token_indices: 4\n", "cfg.yml:2:31",
                 "peft_trainable_token_indices: expected a list of token ids");
}

/* PEFT's layer selection (peft_layers_to_transform, peft_layers_pattern):
 * parsing as written (an int or a list, a string or a list), errors at the
 * value, Axolotl's rules (a pattern needs layers; no adapter: ignored),
 * the canonical text only when set, and layer indices against the model
 * (fe_check_config_model). */
static void test_peft_layers(void) {
    run r;
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_layers_to_transform: [1, 0]\npeft_layers_pattern: [layers]\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.npeft_layers == 2 && !r.c.peft_layers_int && r.c.peft_layers[0] == 1 && r.c.peft_layers[1] == 0);
    CHECK(r.c.npeft_layers_pattern == 1 && !r.c.peft_layers_pattern_str && !strcmp(r.c.peft_layers_pattern[0], "layers"));
    char *ca = canon(&r.c);
    CHECK_CONTAINS(ca, "\npeft_layers_to_transform=[1,0]\n");
    CHECK_CONTAINS(ca, "\npeft_layers_pattern=[layers]\n");
    fe_model m;
    ax_arena *mar = ax_arena_create();
    ax_diag md;
    ax_diag_init(&md);
    CHECK_EQ(fe_model_load(FIX "/models/llama", &m, mar, &md), 0);
    CHECK_EQ(fe_check_config_model(&r.c, &m, 1, &md), 0); /* 2 layers: 0 and 1 */
    free(ca);
    run_free(&r);
    /* one integer and one string, as PEFT takes them too */
    run_y(&r, "adapter: qlora\nload_in_4bit: true\nlora_r: 8\npeft_layers_to_transform: 1\npeft_layers_pattern: layers\n");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s", dump(&r.d));
    CHECK(r.c.npeft_layers == 1 && r.c.peft_layers_int && r.c.peft_layers[0] == 1);
    CHECK(r.c.npeft_layers_pattern == 1 && r.c.peft_layers_pattern_str);
    ca = canon(&r.c);
    CHECK_CONTAINS(ca, "\npeft_layers_to_transform=1\n");
    CHECK_CONTAINS(ca, "\npeft_layers_pattern=layers\n");
    free(ca);
    run_free(&r);
    /* out of range: an error naming the key, where the model is known */
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_layers_to_transform: [0, 2]\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(fe_check_config_model(&r.c, &m, 1, &md), -1);
    CHECK(ax_diag_contains(&md, "peft_layers_to_transform: layer 2 is out of range: the model has 2 decoder layers (0 to 1)"));
    run_free(&r);
    ax_diag_free(&md);
    ax_arena_destroy(mar);
    /* unset: absent from the canonical text (older plans keep their cache keys) */
    run_y(&r, "adapter: lora\nlora_r: 8\n");
    CHECK(r.c.npeft_layers == 0 && r.c.npeft_layers_pattern == 0);
    ca = canon(&r.c);
    CHECK(!strstr(ca, "peft_layers"));
    free(ca);
    run_free(&r);
    /* [] and "" are PEFT's "no restriction" */
    expect_silent("adapter: lora\nlora_r: 8\npeft_layers_to_transform: []\npeft_layers_pattern: \"\"\n");
    expect_error("adapter: lora\npeft_layers_to_transform: [0, -1]\n", "cfg.yml:2:31",
                 "peft_layers_to_transform[1]: expected a non-negative integer, found \"-1\"");
    expect_error("adapter: lora\npeft_layers_to_transform: [0.5]\n", "cfg.yml:2:28",
                 "peft_layers_to_transform[0]: expected a non-negative integer, found \"0.5\"");
    expect_error("adapter: lora\npeft_layers_to_transform: first\n", "cfg.yml:2:27",
                 "peft_layers_to_transform: expected a non-negative integer, found \"first\"");
    expect_error("adapter: lora\npeft_layers_to_transform:\n  a: 1\n", "cfg.yml:3:3",
                 "peft_layers_to_transform: expected a layer index or a list of layer indices, found a mapping");
    expect_error("adapter: lora\npeft_layers_to_transform: [0]\npeft_layers_pattern: model.layers\n", "cfg.yml:3:22",
                 "peft_layers_pattern: expected the name of the decoder layer list in module names (letters, digits, _; "
                 "\"layers\" for Llama, Qwen and Mistral), found \"model.layers\" (a regular expression is not implemented)");
    expect_error("adapter: lora\npeft_layers_to_transform: [0]\npeft_layers_pattern: [layers, \"\"]\n", "cfg.yml:3:31",
                 "found \"\"");
    expect_error("adapter: lora\npeft_layers_pattern: [layers]\n", "cfg.yml:2:1",
                 "peft_layers_pattern: requires peft_layers_to_transform to be set");
    expect_error("adapter: lora\npeft_layers_pattern:\n  a: 1\n", "cfg.yml:3:3",
                 "peft_layers_pattern: expected a name or a list of names (e.g. layers), found a mapping");
    /* without an adapter Axolotl builds no LoraConfig: ignored, with a warning */
    run_y(&r, "peft_layers_to_transform: [0]\n");
    CHECK_EQ(r.rc, 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:1", "peft_layers_to_transform: ignored without adapter: lora|qlora");
    CHECK(r.c.npeft_layers == 0);
    run_free(&r);
}

/* peft_use_dora: DoRA on the LoRA adapter (PEFT's use_dora); Axolotl hands
 * it to LoraConfig only, so without an adapter it is ignored, with a
 * warning; off leaves the canonical config (the plan cache key) unchanged */
static void test_dora(void) {
    run r;
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_use_dora: true\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.peft_use_dora, 1);
    char *ca = canon(&r.c);
    CHECK(strstr(ca, "peft_use_dora") != NULL);
    free(ca);
    run_free(&r);
    run_y(&r, "adapter: qlora\nload_in_4bit: true\npeft_use_dora: true\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.peft_use_dora, 1);
    run_free(&r);
    run_y(&r, "adapter: lora\nlora_r: 8\npeft_use_dora: false\n");
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.c.peft_use_dora, 0);
    ca = canon(&r.c);
    CHECK(strstr(ca, "peft_use_dora") == NULL);
    free(ca);
    run_free(&r);
    run_y(&r, "peft_use_dora: true\n");
    CHECK_EQ(r.rc, 0);
    EXPECT_DIAG(&r.d, AX_SEV_WARNING, "cfg.yml:1:1", "peft_use_dora: ignored without adapter: lora|qlora");
    CHECK_EQ(r.c.peft_use_dora, 0);
    run_free(&r);
    expect_error("adapter: lora\npeft_use_dora: maybe\n", "cfg.yml:2:16", "peft_use_dora");
}

int main(void) {
    tmp_init();
    test_dora();
    test_loraplus();
    test_peft_layers();
    test_trainable_tokens();
    test_added_tokens();
    test_chat_template_jinja();
    test_defaults();
    test_all_keys();
    test_scalars();
    test_packed_layout();
    test_type_errors();
    test_ddp_bucket_cap();
    test_enum_errors();
    test_schedules();
    test_not_implemented();
    test_bfloat16();
    test_structure_errors();
    test_unknown_keys();
    test_refused_keys();
    test_neftune();
    test_rl();
    test_infra_keys();
    test_training_keys();
    test_num_epochs();
    test_consistency();
    test_paths();
    test_canonical();
    tmp_done();
    return check_done();
}
