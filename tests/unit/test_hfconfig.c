/* test_hfconfig.c — HF config.json: the four families and their
 * architectural defaults, rope scaling variants, sliding windows, the
 * transformers >= 5 layout, every error (file + key + expected/found), and
 * fe_check_config_model's cross-checks. */
#include "frontend/config.h"
#include "runtime/safetensors.h"
#include "tests/check.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX AXO_SOURCE_DIR "/tests/data/config"

/* ---- helpers (each test file has its own copy) --------------------------- */
static char tmpd[256];
static void tmp_init(void) {
    snprintf(tmpd, sizeof tmpd, "/tmp/axo_test_hf_XXXXXX");
    if (!mkdtemp(tmpd)) abort();
}
static void tmp_done(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpd);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpd);
}
static const char *tmp_write(const char *name, const char *text) {
    static char paths[8][1024];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 1024, "%s/%s", tmpd, name);
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
static inline void expect_error(const char *text, const char *where, const char *msg) {
    run r;
    run_y(&r, text);
    CHECK_MSG(r.rc == -1, "config unexpectedly loaded: %s", text);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, where, msg);
    run_free(&r);
}
static inline char *canon(const fe_config *c) {
    ax_buf b = {0};
    fe_config_canonical(c, &b);
    return ax_buf_steal(&b);
}

/* A model dir in the temp dir whose config.json is the llama fixture's
 * fields with `extra` spliced in (later keys of a JSON object are not
 * allowed to repeat, so `extra` only adds keys the base lacks). */
static const char *BASE =
    "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
    " \"vocab_size\": 256, \"max_position_embeddings\": 2048";
static const char *model_dir(const char *arch, const char *base, const char *extra) {
    static char dirs[4][512];
    static int k;
    char *dir = dirs[k++ % 4];
    snprintf(dir, 512, "%s/m%d", tmpd, k);
    mkdir(dir, 0755);
    char name[600];
    snprintf(name, sizeof name, "m%d/config.json", k);
    char *text = malloc(strlen(base) + strlen(extra) + 256);
    sprintf(text, "{\"architectures\": [\"%s\"], %s%s%s}\n", arch, base, extra[0] ? ", " : "", extra);
    tmp_write(name, text);
    free(text);
    return dir;
}
typedef struct mrun {
    ax_arena *ar;
    ax_diag d;
    fe_model m;
    int rc;
} mrun;
static void mload(mrun *r, const char *dir) {
    r->ar = ax_arena_create();
    ax_diag_init(&r->d);
    r->rc = fe_model_load(dir, &r->m, r->ar, &r->d);
}
static void mfree(mrun *r) {
    ax_diag_free(&r->d);
    ax_arena_destroy(r->ar);
}
static void expect_model_error(const char *arch, const char *base, const char *extra, const char *where, const char *msg) {
    mrun r;
    mload(&r, model_dir(arch, base, extra));
    CHECK_MSG(r.rc == -1, "loaded: %s", extra);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, where, msg);
    mfree(&r);
}

/* ---- tests ----------------------------------------------------------------- */
static void test_families(void) {
    static const struct {
        const char *dir, *arch, *layer;
        fe_arch a;
        int bias, qk, tie;
        double eps, theta;
        fe_rope_type rope;
    } fam[] = {
        {"llama", "LlamaForCausalLM", "LlamaDecoderLayer", FE_ARCH_LLAMA, 0, 0, 0, 1e-5, 10000, FE_ROPE_LLAMA3},
        {"qwen2", "Qwen2ForCausalLM", "Qwen2DecoderLayer", FE_ARCH_QWEN2, 1, 0, 1, 1e-6, 10000, FE_ROPE_DEFAULT},
        {"qwen3", "Qwen3ForCausalLM", "Qwen3DecoderLayer", FE_ARCH_QWEN3, 0, 1, 1, 1e-6, 10000, FE_ROPE_DEFAULT},
        {"mistral", "MistralForCausalLM", "MistralDecoderLayer", FE_ARCH_MISTRAL, 0, 0, 0, 1e-6, 1e6, FE_ROPE_DEFAULT},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(fam); i++) {
        char dir[512], file[600];
        snprintf(dir, sizeof dir, "%s/models/%s", FIX, fam[i].dir);
        snprintf(file, sizeof file, "%s/config.json", dir);
        mrun r;
        mload(&r, dir);
        CHECK_MSG(r.rc == 0 && r.d.n == 0, "%s:\n%s", dir, dump(&r.d));
        fe_model *m = &r.m;
        const char *dirp = dir;
        CHECK_STREQ(m->dir, dirp);
        CHECK_EQ(m->arch, fam[i].a);
        CHECK_STREQ(m->arch_name, fam[i].arch);
        CHECK_STREQ(m->decoder_layer_cls, fam[i].layer);
        CHECK_EQ(m->hidden_size, 64);
        CHECK_EQ(m->intermediate_size, 176);
        CHECK_EQ(m->num_hidden_layers, 2);
        CHECK_EQ(m->num_attention_heads, 4);
        CHECK_EQ(m->num_key_value_heads, 2);
        CHECK_EQ(m->head_dim, 16);
        CHECK_EQ(m->vocab_size, 256);
        CHECK_EQ(m->max_position_embeddings, 2048);
        CHECK(m->rms_norm_eps == fam[i].eps);
        CHECK(m->rope_theta == fam[i].theta);
        CHECK_EQ(m->rope_type, fam[i].rope);
        CHECK_EQ(m->attention_bias, fam[i].bias);
        CHECK_EQ(m->qk_norm, fam[i].qk);
        CHECK_EQ(m->tie_word_embeddings, fam[i].tie);
        CHECK_EQ(m->sliding_window, 0);
        CHECK_STREQ(m->hidden_act, "silu");
        CHECK_STREQ(m->torch_dtype, "float32");
        CHECK_EQ(m->bos_token_id, 1);
        CHECK_EQ(m->eos_token_id, 3);
        CHECK_EQ(m->pad_token_id, 0);
        size_t len;
        char *bytes = ax_read_file(file, &len, NULL);
        CHECK(bytes && m->config_json_len == len && memcmp(m->config_json, bytes, len) == 0);
        free(bytes);
        if (fam[i].rope == FE_ROPE_LLAMA3) {
            CHECK(m->rope_factor == 8 && m->rope_low_freq_factor == 1 && m->rope_high_freq_factor == 4);
            CHECK_EQ(m->rope_original_max_position_embeddings, 64);
        }
        mfree(&r);
    }
}

static void test_defaults_and_variants(void) {
    mrun r;
    /* head_dim = hidden / heads, kv heads = heads, ids absent = -1 */
    mload(&r, model_dir("LlamaForCausalLM", BASE, ""));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.m.head_dim, 16);
    CHECK_EQ(r.m.head_dim_explicit, 0);
    CHECK_EQ(r.m.num_key_value_heads, 4);
    CHECK_EQ(r.m.bos_token_id, -1);
    CHECK_EQ(r.m.pad_token_id, -1);
    CHECK_EQ(r.m.rope_type, FE_ROPE_DEFAULT);
    CHECK(r.m.rope_theta == 10000);
    CHECK_EQ(r.m.attention_bias, 0);
    mfree(&r);
    /* explicit head_dim, eos as a list, llama attention_bias */
    mload(&r, model_dir("LlamaForCausalLM", BASE, "\"head_dim\": 32, \"eos_token_id\": [7, 8], \"attention_bias\": true, \"pad_token_id\": null"));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.m.head_dim, 32);
    CHECK_EQ(r.m.eos_token_id, 7);
    CHECK_EQ(r.m.pad_token_id, -1);
    CHECK_EQ(r.m.attention_bias, 1);
    mfree(&r);
    /* Mistral never has a bias; Qwen2 always does */
    mload(&r, model_dir("MistralForCausalLM", BASE, "\"attention_bias\": true"));
    CHECK_EQ(r.m.attention_bias, 0);
    mfree(&r);
    mload(&r, model_dir("Qwen2ForCausalLM", BASE, "\"attention_bias\": false"));
    CHECK_EQ(r.m.attention_bias, 1);
    mfree(&r);
    /* rope scaling variants */
    mload(&r, model_dir("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.m.rope_type, FE_ROPE_LINEAR);
    CHECK(r.m.rope_factor == 2.0);
    mfree(&r);
    mload(&r, model_dir("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 4}"));
    CHECK_EQ(r.m.rope_type, FE_ROPE_DYNAMIC);
    CHECK(r.m.rope_factor == 4.0);
    CHECK_EQ(r.m.rope_original_max_position_embeddings, 2048);
    mfree(&r);
    mload(&r, model_dir("Qwen2ForCausalLM", BASE,
                        "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 512, \"beta_fast\": 16}"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK_EQ(r.m.rope_type, FE_ROPE_YARN);
    CHECK_EQ(r.m.rope_original_max_position_embeddings, 512);
    CHECK(r.m.rope_beta_fast == 16 && r.m.rope_beta_slow == 1 && r.m.rope_truncate == 1);
    CHECK_NEAR(r.m.rope_attention_factor, 0.1 * log(4.0) + 1, 1e-15, 0); /* yarn_get_mscale(4) */
    mfree(&r);
    /* yarn: mscale / mscale_all_dim (DeepSeek's form), truncate false, beta_fast null (HF's `or 32`) */
    mload(&r, model_dir("Qwen2ForCausalLM", BASE,
                        "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 8, \"original_max_position_embeddings\": 256,"
                        " \"mscale\": 2, \"mscale_all_dim\": 1, \"truncate\": false, \"beta_fast\": null}"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.rope_factor == 8.0 && r.m.rope_truncate == 0 && r.m.rope_beta_fast == 32);
    CHECK_NEAR(r.m.rope_attention_factor, (0.2 * log(8.0) + 1) / (0.1 * log(8.0) + 1), 1e-15, 0);
    mfree(&r);
    /* truncate: null is HF's falsy value (no truncation) */
    mload(&r, model_dir("Qwen2ForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"truncate\": null}"));
    CHECK_MSG(r.rc == 0 && r.m.rope_truncate == 0 && r.m.rope_original_max_position_embeddings == 2048, "%s", dump(&r.d));
    mfree(&r);
    expect_model_error("Qwen2ForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"original_max_position_embeddings\": 256}",
                       "config.json: rope_scaling.factor", "expected a number, found nothing");
    expect_model_error("Qwen2ForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"beta_slow\": -2}",
                       "config.json: rope_scaling.beta_slow", "a positive number of rotations, or null, found -2");
    expect_model_error("Qwen2ForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"truncate\": 1}",
                       "config.json: rope_scaling.truncate", "true, false or null");
    expect_model_error("Qwen2ForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"attention_factor\": 0}",
                       "config.json: rope_scaling.attention_factor", "a positive number or null");
    /* Gemma 3 / OLMo 3 nest their RoPE dicts: the top-level original max is not read there, nor any truncate */
    mload(&r, model_dir("Olmo3ForCausalLM", BASE,
                        "\"original_max_position_embeddings\": 8, \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"yarn\", "
                        "\"factor\": 4, \"original_max_position_embeddings\": 16, \"truncate\": false}}"));
    CHECK_MSG(r.rc == 0 && r.m.rope_original_max_position_embeddings == 16 && r.m.rope_truncate == 1, "%s", dump(&r.d));
    mfree(&r);
    expect_model_error("Olmo3ForCausalLM", BASE, "\"partial_rotary_factor\": 0.5", "config.json: partial_rotary_factor",
                       "implemented for Phi-3 and GLM only");
    /* longrope (any model may name it): the attention factor sqrt(1 + ln(factor) / ln(original)) */
    mload(&r, model_dir("LlamaForCausalLM", BASE,
                        "\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 4, \"original_max_position_embeddings\": 512,"
                        " \"short_factor\": [1, 1, 1, 1, 1, 1, 1, 1.5], \"long_factor\": [1, 2, 3, 4, 5, 6, 7, 8]}"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.rope_type == FE_ROPE_LONGROPE && r.m.rope_n_factors == 8 && r.m.rope_short_factor[7] == 1.5 &&
          r.m.rope_long_factor[7] == 8 && r.m.rope_original_max_position_embeddings == 512);
    CHECK_NEAR(r.m.rope_attention_factor, sqrt(1 + log(4.0) / log(512.0)), 1e-15, 0);
    mfree(&r);
    mload(&r, model_dir("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"default\"}, \"rope_theta\": 500000.0"));
    CHECK_EQ(r.m.rope_type, FE_ROPE_DEFAULT);
    CHECK(r.m.rope_theta == 500000.0);
    mfree(&r);
    /* transformers >= 5 layout */
    mload(&r, model_dir("LlamaForCausalLM", BASE,
                        "\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                        " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}, \"dtype\": \"bfloat16\""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK_EQ(r.m.rope_type, FE_ROPE_LLAMA3);
    CHECK(r.m.rope_theta == 500000.0);
    CHECK_EQ(r.m.rope_original_max_position_embeddings, 8192);
    CHECK_STREQ(r.m.torch_dtype, "bfloat16");
    mfree(&r);
    /* sliding windows */
    mload(&r, model_dir("Qwen2ForCausalLM", BASE, "\"sliding_window\": 4096, \"use_sliding_window\": false"));
    CHECK_EQ(r.m.sliding_window, 0);
    mfree(&r);
    mload(&r, model_dir("Qwen3ForCausalLM", BASE, "\"sliding_window\": 64, \"use_sliding_window\": true"));
    CHECK_EQ(r.m.sliding_window, 64);
    CHECK_EQ(r.m.qk_norm, 1);
    mfree(&r);
    mload(&r, model_dir("MistralForCausalLM", BASE, "\"sliding_window\": 4096"));
    CHECK_EQ(r.m.sliding_window, 4096);
    for (int64_t l = 0; l < r.m.num_hidden_layers; l++) CHECK_EQ(r.m.layer_window[l], 4096); /* every layer */
    mfree(&r);
    /* which layers slide: transformers 5's layer_types (Qwen2/3), else the layers from max_window_layers on */
    mload(&r, model_dir("Qwen2ForCausalLM", BASE, "\"sliding_window\": 32, \"use_sliding_window\": true, \"max_window_layers\": 1"));
    CHECK(r.m.num_hidden_layers >= 2);
    CHECK_EQ(r.m.layer_window[0], 0);
    for (int64_t l = 1; l < r.m.num_hidden_layers; l++) CHECK_EQ(r.m.layer_window[l], 32);
    mfree(&r);
    mload(&r, model_dir("Qwen3ForCausalLM", BASE, "\"sliding_window\": 32, \"use_sliding_window\": true"));
    for (int64_t l = 0; l < r.m.num_hidden_layers; l++) CHECK_EQ(r.m.layer_window[l], 0); /* max_window_layers 28 */
    mfree(&r);
    mload(&r, model_dir("Qwen3ForCausalLM", BASE, "\"sliding_window\": 32, \"use_sliding_window\": true, \"max_window_layers\": 0, "
                        "\"layer_types\": [\"sliding_attention\", \"full_attention\"]"));
    CHECK_EQ(r.m.layer_window[0], 32);
    CHECK_EQ(r.m.layer_window[1], 0);
    mfree(&r);
    /* sliding layers without a window: transformers fails on the config, and so does axo */
    expect_model_error("Qwen2ForCausalLM", BASE, "\"sliding_window\": 32, \"use_sliding_window\": false, "
                       "\"layer_types\": [\"sliding_attention\", \"sliding_attention\"]", "config.json: sliding_window",
                       "a window with use_sliding_window: true");
    /* no sliding_window key: the configs' default, 4096 */
    mload(&r, model_dir("MistralForCausalLM", BASE, ""));
    CHECK(r.rc == 0 && r.m.sliding_window == 4096 && r.m.layer_window[0] == 4096 && r.m.layer_window[1] == 4096);
    mfree(&r);
    mload(&r, model_dir("Qwen2ForCausalLM", BASE, "\"use_sliding_window\": true, \"max_window_layers\": 0"));
    CHECK(r.rc == 0 && r.m.sliding_window == 4096 && r.m.layer_window[0] == 4096);
    mfree(&r);
    mload(&r, model_dir("LlamaForCausalLM", BASE, "\"sliding_window\": 4096, \"use_sliding_window\": true"));
    CHECK_EQ(r.m.sliding_window, 0); /* Llama has no sliding window */
    mfree(&r);
}

static void test_errors(void) {
    expect_model_error("GPT2LMHeadModel", BASE, "", "config.json: architectures[0]",
                       "expected one of LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, Gemma3ForCausalLM, GraniteForCausalLM, SmolLM3ForCausalLM, Olmo2ForCausalLM, Olmo3ForCausalLM, Phi3ForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM, GptOssForCausalLM, OlmoeForCausalLM, Ministral3ForCausalLM, Gemma2ForCausalLM, Qwen2MoeForCausalLM, GlmForCausalLM, Glm4ForCausalLM, Gemma3ForConditionalGeneration, Mistral3ForConditionalGeneration, found \"GPT2LMHeadModel\"");
    expect_model_error("Qwen2ForCausalLM", BASE, "\"sliding_window\": 8, \"use_sliding_window\": true, \"layer_types\": [\"full_attention\"]",
                       "config.json: layer_types", "expected a list of num_hidden_layers entries, found [\"full_attention\"]");
    expect_model_error("Qwen3ForCausalLM", BASE,
                       "\"sliding_window\": 8, \"use_sliding_window\": true, \"layer_types\": [\"full_attention\", \"chunked\"]",
                       "config.json: layer_types", "expected \"sliding_attention\" or \"full_attention\" in every entry, found \"chunked\"");
    expect_model_error("LlamaForCausalLM", BASE, "\"hidden_act\": \"gelu\"", "config.json: hidden_act",
                       "expected \"silu\" (the only activation axo implements), found \"gelu\"");
    expect_model_error("LlamaForCausalLM", "\"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256", "",
                       "config.json: hidden_size", "expected a positive integer, found nothing");
    expect_model_error("LlamaForCausalLM", BASE, "\"num_key_value_heads\": \"two\"", "config.json: num_key_value_heads",
                       "expected a positive integer, found \"two\"");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2}",
                       "config.json: rope_scaling.short_factor", "expected a list of positive numbers, one per rotated pair of dims, found nothing");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"longrope\", \"short_factor\": [1, 2], \"long_factor\": [1, 2]}",
                       "config.json: rope_scaling.short_factor", "expected 8 factors (half of the 16 rotated dims of each head), found [1,2]");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"longrope\", \"short_factor\": [1, 2], \"long_factor\": [1, 0]}",
                       "config.json: rope_scaling.long_factor", "expected a list of positive numbers");
    expect_model_error("Phi3ForCausalLM", BASE, "\"original_max_position_embeddings\": null, \"rope_scaling\": {\"type\": \"longrope\", "
                       "\"short_factor\": [1, 1, 1, 1, 1, 1, 1, 1], \"long_factor\": [1, 1, 1, 1, 1, 1, 1, 1]}",
                       "config.json: original_max_position_embeddings", "a positive integer, found null");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"ntk\", \"factor\": 2}",
                       "config.json: rope_scaling.rope_type", "expected one of default, linear, llama3, dynamic, yarn, longrope, found \"ntk\"");
    expect_model_error("LlamaForCausalLM", BASE, "\"partial_rotary_factor\": 0.5", "config.json: partial_rotary_factor",
                       "expected 1.0 (a partial rotation is implemented for Phi-3 and GLM only), found 0.5");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}",
                       "config.json: rope_scaling.low_freq_factor", "expected a number");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": \"x\"}",
                       "config.json: rope_scaling.factor", "expected a positive number, found \"x\"");
    expect_model_error("LlamaForCausalLM", BASE, "\"rope_scaling\": 3", "config.json: rope_scaling", "expected null or an object, found 3");
    expect_model_error("LlamaForCausalLM", BASE, "\"tie_word_embeddings\": \"no\"", "config.json: tie_word_embeddings",
                       "expected true or false, found \"no\"");
    expect_model_error("LlamaForCausalLM", BASE, "\"mlp_bias\": true", "config.json: mlp_bias", "not implemented");
    /* sizes past any real model's overflowed int64 shape products (found by fuzzing) */
    expect_model_error("LlamaForCausalLM", "\"hidden_size\": 4611686018427387904, \"intermediate_size\": 176, \"num_hidden_layers\": 2, "
                       "\"num_attention_heads\": 4, \"vocab_size\": 256", "", "config.json: hidden_size",
                       "expected an integer of at most 1048576, found 4611686018427387904");
    expect_model_error("LlamaForCausalLM", BASE, "\"head_dim\": 5000", "config.json: head_dim", "expected an integer of at most 4096");
    expect_model_error("LlamaForCausalLM", "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2, "
                       "\"num_attention_heads\": 4, \"vocab_size\": 2147483648", "", "config.json: vocab_size",
                       "expected an integer of at most 2147483647, found 2147483648");
    mrun r;
    /* malformed JSON: line and column */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad", tmpd);
    mkdir(dir, 0755);
    tmp_write("bad/config.json", "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_size\": ,\n}\n");
    mload(&r, dir);
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "bad/config.json:3:", "invalid JSON");
    mfree(&r);
    tmp_write("bad/config.json", "[1]");
    mload(&r, dir);
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "bad/config.json", "expected an object");
    mfree(&r);
    mload(&r, "/no/such/model");
    CHECK_EQ(r.rc, -1);
    EXPECT_DIAG(&r.d, AX_SEV_ERROR, "/no/such/model/config.json", "cannot read");
    mfree(&r);
}

/* Cross-checks on a loaded config and model. */
static void cfg_for(fe_config *c, ax_arena *ar, const char *yaml_extra) {
    ax_diag d;
    ax_diag_init(&d);
    char *t = malloc(strlen(yaml_extra) + strlen(TAIL) + 1);
    strcpy(t, yaml_extra);
    strcat(t, TAIL);
    int rc = fe_config_load(tmp_write("cfg.yml", t), NULL, c, ar, &d);
    CHECK_MSG(rc == 0, "%s:\n%s", yaml_extra, dump(&d));
    free(t);
    ax_diag_free(&d);
}
static void expect_check(const char *yaml, const char *model_dir_, int world, int ok, ax_severity sev, const char *msg) {
    ax_arena *ar = ax_arena_create();
    fe_config c;
    fe_model m;
    ax_diag d;
    ax_diag_init(&d);
    cfg_for(&c, ar, yaml);
    CHECK_EQ(fe_model_load(model_dir_, &m, ar, &d), 0);
    int rc = fe_check_config_model(&c, &m, world, &d);
    CHECK_MSG(rc == (ok ? 0 : -1), "%s: rc %d\n%s", yaml, rc, dump(&d));
    if (msg) {
        EXPECT_DIAG(&d, sev, "cfg.yml", msg);
    } else {
        CHECK_MSG(d.n == 0, "%s:\n%s", yaml, dump(&d));
    }
    ax_diag_free(&d);
    ax_arena_destroy(ar);
}

static void test_check_config_model(void) {
    const char *llama = FIX "/models/llama";
    expect_check("sequence_len: 256\n", llama, 1, 1, AX_SEV_ERROR, NULL);
    /* sequence parallelism */
    expect_check("sequence_len: 256\nsequence_parallel_degree: 4\n", llama, 8, 1, AX_SEV_ERROR, NULL);
    /* a soft-capped model (tiny-gemma2) where Axolotl cannot cap: sdpa refused (transformers), the varlen ring
     * refused (Axolotl asserts), xformers and the batch rings warned (Axolotl drops the cap) */
    const char *g2 = AXO_SOURCE_DIR "/configs/models/tiny-gemma2";
    expect_check("sequence_len: 256\nflash_attention: true\n", g2, 1, 1, AX_SEV_ERROR, NULL);
    expect_check("sequence_len: 256\nsdp_attention: true\n", g2, 1, 0, AX_SEV_ERROR, "transformers refuses it");
    expect_check("sequence_len: 256\nattn_implementation: sdpa\n", g2, 1, 0, AX_SEV_ERROR, "sdpa attention");
    expect_check("sequence_len: 256\nxformers_attention: true\n", g2, 1, 1, AX_SEV_WARNING,
                 "Axolotl 0.19's xformers patch drops the cap");
    expect_check("sequence_len: 256\nsequence_parallel_degree: 2\nsample_packing: true\nflash_attention: true\n", g2, 2, 0,
                 AX_SEV_ERROR, "Axolotl 0.19's varlen ring attention refuses a soft cap");
    expect_check("sequence_len: 256\nsequence_parallel_degree: 2\nring_attn_func: batch_zigzag\n", g2, 2, 1, AX_SEV_WARNING,
                 "batch_zigzag ring adapter drops the cap");
    expect_check("sequence_len: 100\nsequence_parallel_degree: 4\n", llama, 4, 0, AX_SEV_ERROR,
                 "sequence_len: expected a multiple of 2 * sequence_parallel_degree = 8");
    expect_check("sequence_len: 256\nsequence_parallel_degree: 4\n", llama, 6, 0, AX_SEV_ERROR,
                 "sequence_parallel_degree: expected a divisor of the world size 6, found 4");
    expect_check("sequence_len: 256\nsequence_parallel_degree: 2\nheads_k_stride: 4\n", llama, 2, 0, AX_SEV_ERROR,
                 "heads_k_stride: expected a divisor of num_key_value_heads 2, found 4");
    /* lengths */
    expect_check("sequence_len: 4096\n", llama, 1, 1, AX_SEV_WARNING, "sequence_len: 4096 is longer than the model's max_position_embeddings 2048");
    /* a sequence longer than the sliding window: the window masks it (no longer refused) */
    expect_check("sequence_len: 128\n", model_dir("MistralForCausalLM", BASE, "\"sliding_window\": 64"), 1, 1, AX_SEV_ERROR, NULL);
    expect_check("sequence_len: 64\n", model_dir("MistralForCausalLM", BASE, "\"sliding_window\": 64"), 1, 1, AX_SEV_ERROR, NULL);
    /* adapters */
    expect_check("adapter: lora\nsequence_len: 64\n", llama, 1, 0, AX_SEV_ERROR, "lora_r: expected a positive integer with adapter: lora, found 0");
    expect_check("adapter: lora\nlora_r: 4611686018427387904\nsequence_len: 64\n", llama, 1, 0, AX_SEV_ERROR,
                 "lora_r: expected at most 1048576, found 4611686018427387904");
    expect_check("adapter: qlora\nlora_r: 8\nsequence_len: 64\n", llama, 1, 0, AX_SEV_ERROR,
                 "load_in_4bit: expected true with adapter: qlora, found false");
    expect_check("load_in_4bit: true\nsequence_len: 64\n", llama, 1, 0, AX_SEV_ERROR, "adapter: expected qlora with load_in_4bit: true, found none");
    expect_check("adapter: qlora\nlora_r: 8\nload_in_4bit: true\nsequence_len: 64\n", llama, 1, 1, AX_SEV_ERROR, NULL);
    /* gpt-oss's MXFP4 experts: Mxfp4Config with dequantize: true, on gpt-oss only */
    const char *oss = model_dir("GptOssForCausalLM", BASE, "\"num_local_experts\": 4, \"num_key_value_heads\": 2");
    expect_check("sequence_len: 64\nmodel_quantization_config: Mxfp4Config\nmodel_quantization_config_kwargs:\n  dequantize: true\n",
                 oss, 1, 1, AX_SEV_ERROR, NULL);
    expect_check("sequence_len: 64\nmodel_quantization_config: Mxfp4Config\n", oss, 1, 0, AX_SEV_ERROR,
                 "model_quantization_config_kwargs: expected dequantize: true with Mxfp4Config");
    expect_check("sequence_len: 64\nmodel_quantization_config: Mxfp4Config\nmodel_quantization_config_kwargs:\n  dequantize: true\n",
                 llama, 1, 0, AX_SEV_ERROR, "model_quantization_config: Mxfp4Config is gpt-oss's MXFP4 checkpoint format");
    expect_check("sequence_len: 64\nadapter: qlora\nlora_r: 8\nload_in_4bit: true\nquantize_moe_experts: true\n", oss, 1, 0,
                 AX_SEV_ERROR, "quantize_moe_experts: not implemented for gpt-oss");
    /* FSDP wrap class */
    expect_check("sequence_len: 64\nfsdp_version: 2\nfsdp_config:\n  transformer_layer_cls_to_wrap: Qwen3DecoderLayer\n", llama, 2, 0,
                 AX_SEV_ERROR, "fsdp_config.transformer_layer_cls_to_wrap: expected LlamaDecoderLayer (the decoder layer of LlamaForCausalLM), found Qwen3DecoderLayer");
    expect_check("sequence_len: 64\nfsdp_version: 2\nfsdp_config:\n  transformer_layer_cls_to_wrap: LlamaDecoderLayer\n", llama, 2, 1,
                 AX_SEV_ERROR, NULL);
    /* heads: the key and the values are named */
    ax_arena *ar = ax_arena_create();
    fe_config c;
    fe_model m;
    ax_diag d;
    ax_diag_init(&d);
    cfg_for(&c, ar, "sequence_len: 64\n");
    CHECK_EQ(fe_model_load(model_dir("LlamaForCausalLM", "\"hidden_size\": 60, \"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 7, \"vocab_size\": 256", ""), &m, ar, &d), 0);
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "config.json", "num_attention_heads: expected a divisor of hidden_size 60 (config.json has no head_dim), found 7");
    ax_diag_free(&d);
    ax_diag_init(&d);
    CHECK_EQ(fe_model_load(model_dir("LlamaForCausalLM", BASE, "\"num_key_value_heads\": 3"), &m, ar, &d), 0);
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "config.json", "num_key_value_heads: expected a divisor of num_attention_heads 4, found 3");
    ax_diag_free(&d);
    /* a hand-built config: micro_batch_size */
    ax_diag_init(&d);
    CHECK_EQ(fe_model_load(FIX "/models/llama", &m, ar, &d), 0);
    c.micro_batch_size = 0;
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "cfg.yml", "micro_batch_size: expected a positive integer, found 0");
    ax_diag_free(&d);
    /* a batch's tokens are indexed with int32, and the whole plan is bounded (found by fuzzing) */
    ax_diag_init(&d);
    c.micro_batch_size = INT64_C(1) << 62;
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "cfg.yml", "micro_batch_size x sequence_len: expected at most 2147483647 tokens in a batch");
    ax_diag_free(&d);
    ax_diag_init(&d);
    c.micro_batch_size = 4;
    c.gradient_accumulation_steps = INT64_C(1) << 62;
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "cfg.yml", "expected at most 2^40 rows in a global batch, found 4 x 4611686018427387904 x 1");
    ax_diag_free(&d);
    c.gradient_accumulation_steps = 1;
    ax_diag_init(&d);
    c.micro_batch_size = 1;
    CHECK_EQ(fe_model_load(model_dir("LlamaForCausalLM", "\"hidden_size\": 1048576, \"intermediate_size\": 1048576, "
                                     "\"num_hidden_layers\": 4096, \"num_attention_heads\": 256, \"head_dim\": 4096, "
                                     "\"vocab_size\": 2000000000", ""), &m, ar, &d), 0);
    CHECK_EQ(fe_check_config_model(&c, &m, 1, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "cfg.yml", "axo plans at most 1 PiB");
    ax_diag_free(&d);
    ax_arena_destroy(ar);
}

/* model_config: its keys replace config.json's, and the result is what the
 * trained model's config.json will say */
static void test_overrides(void) {
    ax_arena *ar = ax_arena_create();
    ax_diag d;
    ax_diag_init(&d);
    fe_model m;
    CHECK_EQ(fe_model_load_with(FIX "/models/llama",
                                "{\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, \"max_position_embeddings\": 8192}",
                                &m, ar, &d), 0);
    CHECK_EQ(m.rope_type, FE_ROPE_LINEAR);
    CHECK(m.rope_factor == 2.0);
    CHECK_EQ(m.max_position_embeddings, 8192);
    json_error_t je;
    json_t *j = json_loadb(m.config_json, m.config_json_len, 0, &je);
    CHECK(j && json_integer_value(json_object_get(j, "max_position_embeddings")) == 8192 &&
          json_real_value(json_object_get(json_object_get(j, "rope_scaling"), "factor")) == 2.0 &&
          json_object_get(j, "hidden_size") != NULL);
    json_decref(j);
    /* a bad value is an error that names the override */
    CHECK_EQ(fe_model_load_with(FIX "/models/llama", "{\"num_attention_heads\": \"four\"}", &m, ar, &d), -1);
    EXPECT_DIAG(&d, AX_SEV_ERROR, "config.json (with model_config): num_attention_heads", "expected a positive integer, found \"four\"");
    ax_diag_free(&d);
    ax_arena_destroy(ar);
}

/* Gemma 3 (Gemma3ForCausalLM): its facts and defaults, both RoPE layouts, which layers slide, and its refusals. */
static void test_gemma3(void) {
    mrun r;
    mload(&r, AXO_SOURCE_DIR "/configs/models/tiny-gemma3");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-gemma3:\n%s", dump(&r.d));
    CHECK_EQ(r.m.arch, FE_ARCH_GEMMA3);
    CHECK_STREQ(r.m.arch_name, "Gemma3ForCausalLM");
    CHECK_STREQ(r.m.decoder_layer_cls, "Gemma3DecoderLayer");
    CHECK(r.m.gemma && r.m.norm_offset == 1 && r.m.qk_norm && r.m.tie_word_embeddings);
    CHECK(r.m.query_pre_attn_scalar == 24);
    CHECK_STREQ(r.m.hidden_act, "gelu_pytorch_tanh");
    CHECK(r.m.rope_theta == 1e6 && r.m.rope_local_theta == 1e4);
    CHECK_EQ(r.m.rope_type, FE_ROPE_LINEAR);
    CHECK(r.m.rope_factor == 2);
    CHECK_EQ(r.m.sliding_window, 7);
    CHECK_EQ(r.m.layer_window[0], 7); /* layer_types: sliding, full */
    CHECK_EQ(r.m.layer_window[1], 0);
    mfree(&r);
    /* defaults: Gemma3TextConfig's (window 4096 on 5 of every 6 layers, theta 1e6 / 1e4, scalar 256, tied,
     * bos 2 / eos 1 / pad 0) */
    static const char *G = "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 7, "
                           "\"num_attention_heads\": 4, \"vocab_size\": 256, \"head_dim\": 16";
    mload(&r, model_dir("Gemma3ForCausalLM", G, ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.rope_theta == 1e6 && r.m.rope_local_theta == 1e4 && r.m.query_pre_attn_scalar == 256);
    CHECK(r.m.tie_word_embeddings && r.m.bos_token_id == 2 && r.m.eos_token_id == 1 && r.m.pad_token_id == 0);
    for (int l = 0; l < 7; l++) CHECK_EQ(r.m.layer_window[l], l == 5 ? 0 : 4096);
    mfree(&r);
    mload(&r, model_dir("Gemma3ForCausalLM", G, "\"sliding_window\": 512, \"sliding_window_pattern\": 2"));
    for (int l = 0; l < 7; l++) CHECK_EQ(r.m.layer_window[l], l % 2 ? 0 : 512);
    mfree(&r);
    expect_model_error("Gemma3ForCausalLM", G, "\"sliding_window\": null", "config.json: sliding_window",
                       "expected a window for the sliding_attention layers (transformers fails on null)");
    mload(&r, model_dir("Gemma3ForCausalLM", G, "\"sliding_window\": null, \"sliding_window_pattern\": 1"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d)); /* every layer full: no window needed */
    for (int l = 0; l < 7; l++) CHECK_EQ(r.m.layer_window[l], 0);
    mfree(&r);
    /* Gemma 2 (Gemma2Config): Gemma 3's layer without q/k norms, one RoPE (theta 1e4, no local base), a window
     * of 4096 on every other layer from the first, caps 30 (logits) and 50 (scores), its sizes by default */
    mload(&r, model_dir("Gemma2ForCausalLM", G, ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.gemma && r.m.gemma2 && !r.m.qk_norm && !r.m.local_rope && r.m.rope_theta == 1e4 && r.m.norm_offset == 1);
    CHECK(r.m.final_softcap == 30 && r.m.attn_softcap == 50 && r.m.query_pre_attn_scalar == 256);
    CHECK(r.m.tie_word_embeddings && r.m.bos_token_id == 2 && r.m.eos_token_id == 1 && r.m.pad_token_id == 0);
    CHECK_STREQ(r.m.decoder_layer_cls, "Gemma2DecoderLayer");
    for (int l = 0; l < 7; l++) CHECK_EQ(r.m.layer_window[l], l % 2 ? 0 : 4096);
    mfree(&r);
    mload(&r, model_dir("Gemma2ForCausalLM", "\"hidden_size\": 64", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.head_dim == 256 && r.m.num_attention_heads == 8 && r.m.num_key_value_heads == 4 && r.m.vocab_size == 256000 &&
          r.m.num_hidden_layers == 26 && r.m.intermediate_size == 9216 && r.m.max_position_embeddings == 8192);
    mfree(&r);
    /* null caps: none; sliding_window_pattern is Gemma 3's key, not read; layer_types and rope_theta as given */
    mload(&r, model_dir("Gemma2ForCausalLM", G,
                        "\"final_logit_softcapping\": null, \"attn_logit_softcapping\": 25.5, \"sliding_window_pattern\": 3, "
                        "\"rope_theta\": 20000.0, \"sliding_window\": 64, \"layer_types\": [\"full_attention\", "
                        "\"sliding_attention\", \"full_attention\", \"full_attention\", \"sliding_attention\", "
                        "\"full_attention\", \"full_attention\"]"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.final_softcap == 0 && r.m.attn_softcap == 25.5 && r.m.rope_theta == 2e4);
    for (int l = 0; l < 7; l++) CHECK_EQ(r.m.layer_window[l], l == 1 || l == 4 ? 64 : 0);
    mfree(&r);
    expect_model_error("Gemma2ForCausalLM", G, "\"attn_logit_softcapping\": 0.0", "config.json: attn_logit_softcapping",
                       "expected a positive number");
    expect_model_error("Gemma2ForCausalLM", G, "\"use_bidirectional_attention\": true",
                       "config.json: use_bidirectional_attention", "bidirectional Gemma attention is not implemented");
    expect_model_error("Gemma2ForCausalLM", G, "\"hidden_activation\": \"gelu\"", "config.json: hidden_activation",
                       "expected \"gelu_pytorch_tanh\"");
    /* GLM (GlmConfig / Glm4Config): head_dim 128 and half of it rotated, interleaved, q/k/v biases, one fused
     * gate_up_proj, eps 1.5625e-7, eos the first of its list, pad 151329; GLM-4's norms after attention and MLP */
    mload(&r, model_dir("Glm4ForCausalLM", BASE, ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_GLM && r.m.glm4 && r.m.head_dim == 128 && r.m.head_dim_explicit && r.m.rope_partial_factor == 0.5 &&
          r.m.rope_interleave && r.m.fused_mlp && !r.m.fused_proj && r.m.attention_bias && r.m.rms_norm_eps == 1.5625e-07 &&
          r.m.eos_token_id == 151329 && r.m.pad_token_id == 151329 && r.m.bos_token_id == -1 && !r.m.tie_word_embeddings &&
          r.m.num_key_value_heads == 2 && /* GlmConfig's, not the query heads' */
          !strcmp(r.m.decoder_layer_cls, "Glm4DecoderLayer"));
    mfree(&r);
    mload(&r, model_dir("GlmForCausalLM", BASE, "\"head_dim\": 16, \"partial_rotary_factor\": 1.0, \"attention_bias\": false, "
                                                "\"eos_token_id\": null"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(!r.m.glm4 && r.m.head_dim == 16 && r.m.rope_partial_factor == 1.0 && !r.m.attention_bias && r.m.eos_token_id == 151329);
    mfree(&r);
    /* every family's attention drops its probabilities by attention_dropout in training: refused when not 0 */
    expect_model_error("LlamaForCausalLM", BASE, "\"attention_dropout\": 0.1", "config.json: attention_dropout",
                       "0 (dropout on the attention probabilities is not implemented)");
    expect_model_error("GlmForCausalLM", BASE, "\"attention_dropout\": 0.05", "config.json: attention_dropout",
                       "0 (dropout on the attention probabilities is not implemented)");
    expect_model_error("Glm4ForCausalLM", BASE, "\"partial_rotary_factor\": 0.0390625", "config.json: partial_rotary_factor",
                       "a factor that rotates an even, positive count of each head's dims");
    /* Gemma3TextConfig's sizes where the file has none (gemma-3-4b's text_config leaves most out) */
    mload(&r, model_dir("Gemma3ForCausalLM", "\"hidden_size\": 64", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.head_dim == 256 && r.m.num_attention_heads == 8 && r.m.num_key_value_heads == 4 && r.m.vocab_size == 262208 &&
          r.m.num_hidden_layers == 26 && r.m.intermediate_size == 9216 && r.m.max_position_embeddings == 131072);
    mfree(&r);
    /* rope_parameters without rope_theta: the top-level keys; a top-level rope_scaling updates full_attention */
    mload(&r, model_dir("Gemma3ForCausalLM", G,
                        "\"rope_theta\": 5000.0, \"rope_local_base_freq\": 700.0, \"rope_scaling\": {\"rope_type\": \"linear\", "
                        "\"factor\": 4.0}, \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.rope_theta == 5000 && r.m.rope_local_theta == 700 && r.m.rope_type == FE_ROPE_LINEAR && r.m.rope_factor == 4);
    mfree(&r);
    /* transformers >= 5: rope_parameters per layer type */
    mload(&r, model_dir("Gemma3ForCausalLM", G,
                        "\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 8.0, "
                        "\"rope_theta\": 500000.0}, \"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 20000.0}}"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.rope_theta == 5e5 && r.m.rope_local_theta == 2e4 && r.m.rope_type == FE_ROPE_LINEAR && r.m.rope_factor == 8);
    mfree(&r);
    /* refusals */
    /* soft-capping: none by default (Gemma3TextConfig's None); Gemma3ForCausalLM applies both when given */
    mload(&r, model_dir("Gemma3ForCausalLM", G, ""));
    CHECK(r.m.final_softcap == 0 && r.m.attn_softcap == 0 && !r.m.gemma2 && r.m.qk_norm);
    mfree(&r);
    mload(&r, model_dir("Gemma3ForCausalLM", G, "\"final_logit_softcapping\": 30.0, \"attn_logit_softcapping\": 50.0"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.final_softcap == 30 && r.m.attn_softcap == 50);
    mfree(&r);
    expect_model_error("Gemma3ForCausalLM", G, "\"attn_logit_softcapping\": -1.0", "config.json: attn_logit_softcapping",
                       "expected a positive number, found -1.0");
    expect_model_error("Gemma3ForCausalLM", G, "\"final_logit_softcapping\": \"30\"", "config.json: final_logit_softcapping",
                       "expected a positive number");
    expect_model_error("Gemma3ForCausalLM", G, "\"use_bidirectional_attention\": true",
                       "config.json: use_bidirectional_attention", "bidirectional Gemma attention is not implemented");
    expect_model_error("Gemma3ForCausalLM", G, "\"hidden_activation\": \"gelu\"", "config.json: hidden_activation",
                       "expected \"gelu_pytorch_tanh\"");
    expect_model_error("Gemma3ForCausalLM", G,
                       "\"rope_parameters\": {\"sliding_attention\": {\"rope_type\": \"linear\", \"factor\": 2.0}}",
                       "config.json: rope_parameters.sliding_attention.rope_type", "expected \"default\"");
}

/* The multimodal Gemma 3 (Gemma3ForConditionalGeneration): its text_config read as Gemma3ForCausalLM's (with
 * Gemma3TextConfig's defaults, errors naming text_config.<key>), the top level's tie, dtype, init and tokens,
 * and where its text weights are in the checkpoint. */
static void test_gemma3_multimodal(void) {
    mrun r;
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-gemma3-mm"); /* the Hub's layout */
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-gemma3-mm:\n%s", dump(&r.d));
    CHECK(r.m.multimodal && r.m.gemma && r.m.arch == FE_ARCH_GEMMA3 && r.m.tie_word_embeddings);
    CHECK_STREQ(r.m.arch_name, "Gemma3ForConditionalGeneration");
    CHECK_STREQ(r.m.decoder_layer_cls, "Gemma3DecoderLayer");
    CHECK(r.m.hidden_size == 64 && r.m.num_hidden_layers == 2 && r.m.query_pre_attn_scalar == 24 && r.m.vocab_size == 256);
    CHECK(r.m.layer_window[0] == 7 && r.m.layer_window[1] == 0 && r.m.rope_type == FE_ROPE_LINEAR);
    CHECK(r.m.eos_token_id == 1 && r.m.bos_token_id == 2 && r.m.pad_token_id == 0); /* eos_token_id [1, 106]: the first */
    CHECK_STREQ(r.m.text_module, "model.language_model.");
    CHECK_STREQ(r.m.text_ckpt, "language_model.model.");
    CHECK_STREQ(r.m.torch_dtype, "float32");
    mfree(&r);
    /* no weights, no text_config: every Gemma3TextConfig default; saved as transformers saves a new model */
    mload(&r, model_dir("Gemma3ForConditionalGeneration", "\"tie_word_embeddings\": false", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.hidden_size == 2304 && r.m.num_hidden_layers == 26 && r.m.head_dim == 256 && r.m.vocab_size == 262208);
    CHECK(!r.m.tie_word_embeddings && r.m.layer_window[0] == 4096 && r.m.layer_window[5] == 0);
    CHECK_STREQ(r.m.text_ckpt, "language_model.model.");
    CHECK_STREQ(r.m.head_ckpt, "lm_head.weight");
    mfree(&r);
    /* the top level ties (text_config's tie_word_embeddings is not what transformers reads); null unties */
    mload(&r, model_dir("Gemma3ForConditionalGeneration", "\"text_config\": {\"tie_word_embeddings\": false}", ""));
    CHECK(r.rc == 0 && r.m.tie_word_embeddings);
    mfree(&r);
    mload(&r, model_dir("Gemma3ForConditionalGeneration", "\"tie_word_embeddings\": null", ""));
    CHECK(r.rc == 0 && !r.m.tie_word_embeddings);
    mfree(&r);
    /* padding_idx from text_config's pad_token_id, bos/eos from the top level; the text weights' init std is
     * text_config's, the top level's for an untied head and resized rows; dtype before torch_dtype */
    mload(&r, model_dir("Gemma3ForConditionalGeneration",
                        "\"pad_token_id\": 5, \"eos_token_id\": [7, 106], \"initializer_range\": 0.5, \"dtype\": \"bfloat16\", "
                        "\"torch_dtype\": \"float32\", \"text_config\": {\"pad_token_id\": 3, \"eos_token_id\": 9, "
                        "\"initializer_range\": 0.01}",
                        ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.pad_token_id == 3 && r.m.eos_token_id == 7 && r.m.initializer_range == 0.5 &&
          r.m.text_initializer_range == 0.01);
    CHECK_STREQ(r.m.torch_dtype, "bfloat16");
    mfree(&r);
    /* Gemma3ForConditionalGeneration caps the scores (Gemma3Attention) but never the logits (transformers reads
     * final_logit_softcapping in Gemma3ForCausalLM only) */
    mload(&r, model_dir("Gemma3ForConditionalGeneration",
                        "\"text_config\": {\"final_logit_softcapping\": 30.0, \"attn_logit_softcapping\": 20.0}", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.final_softcap == 0 && r.m.attn_softcap == 20);
    mfree(&r);
    expect_model_error("Gemma3ForConditionalGeneration", "\"text_config\": {\"final_logit_softcapping\": 0}", "",
                       "config.json: text_config.final_logit_softcapping", "expected a positive number");
    expect_model_error("Gemma3ForConditionalGeneration", "\"text_config\": {\"hidden_size\": -4}", "",
                       "config.json: text_config.hidden_size", "expected a positive integer");
    expect_model_error("Gemma3ForConditionalGeneration", "\"text_config\": [1]", "", "config.json: text_config",
                       "expected an object (Gemma3TextConfig's keys)");
    expect_model_error("Gemma3ForConditionalGeneration", "\"text_config\": {\"rope_parameters\": 3}", "",
                       "config.json: text_config.rope_parameters", "expected an object of full_attention");
    /* transformers 5's layout (model.language_model.*); weights that are not Gemma 3's text model */
    const char *dir = model_dir("Gemma3ForConditionalGeneration", "\"text_config\": {\"hidden_size\": 8, \"vocab_size\": 4}", "");
    for (int k = 0; k < 2; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        const int64_t shp[2] = {4, 8};
        float z[32] = {0};
        rt_st_out o = {.name = k ? "model.embed_tokens.weight" : "model.language_model.embed_tokens.weight",
                       .dtype = RT_ST_F32, .rank = 2, .shape = shp, .data = z};
        ax_diag d;
        ax_diag_init(&d);
        CHECK(rt_st_write(p, &o, 1, &d) == 0);
        ax_diag_free(&d);
        mload(&r, dir);
        if (!k) {
            CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
            CHECK_STREQ(r.m.text_ckpt, "model.language_model.");
        } else {
            CHECK(r.rc == -1);
            EXPECT_DIAG(&r.d, AX_SEV_ERROR, dir, "the weights hold neither language_model.model.embed_tokens.weight nor");
        }
        mfree(&r);
    }
}

/* dir/model.safetensors: a [4, 8] embedding and lm_head, equal or not */
static void write_embed_head(const char *dir, const char *embed, const char *head, int differ) {
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    const int64_t shp[2] = {4, 8};
    float e[32], h[32];
    for (int i = 0; i < 32; i++) e[i] = (float)i, h[i] = differ ? (float)-i - 1 : (float)i;
    rt_st_out o[2] = {{.name = embed, .dtype = RT_ST_F32, .rank = 2, .shape = shp, .data = e},
                      {.name = head, .dtype = RT_ST_F32, .rank = 2, .shape = shp, .data = h}};
    ax_diag d;
    ax_diag_init(&d);
    CHECK(rt_st_write(p, o, 2, &d) == 0);
    ax_diag_free(&d);
}

/* Mistral3ForConditionalGeneration: its text_config is MistralForCausalLM's; the untied head is the Hub's
 * language_model.lm_head.weight. A config that ties (the top-level default) while the weights hold an lm_head of
 * other values is untied, as transformers loads it. */
static void test_mistral3(void) {
    mrun r;
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-mistral3");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-mistral3:\n%s", dump(&r.d));
    CHECK(r.m.multimodal && r.m.arch == FE_ARCH_MISTRAL && !r.m.gemma && !r.m.tie_word_embeddings);
    CHECK_STREQ(r.m.decoder_layer_cls, "MistralDecoderLayer");
    CHECK_STREQ(r.m.head_ckpt, "language_model.lm_head.weight");
    CHECK(r.m.rope_theta == 1e9 && r.m.sliding_window == 0 && r.m.hidden_size == 64);
    mfree(&r);
    expect_model_error("Mistral3ForConditionalGeneration", "\"image_token_index\": 10", "", "config.json: text_config",
                       "expected an object (the language model's config)");
    expect_model_error("Mistral3ForConditionalGeneration", "\"text_config\": {\"model_type\": \"qwen2\"}", "",
                       "config.json: text_config.model_type",
                       "expected \"mistral\" or \"ministral3\" (the language models axo implements for "
                       "Mistral3ForConditionalGeneration)");
    /* Ministral3Config's defaults where the config leaves keys out: no window, pad 11, head_dim 128 (null: hidden /
     * heads), its YaRN dict with the queries' scale over 16384 positions */
    mload(&r, model_dir("Ministral3ForCausalLM", BASE, ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.ministral3 && r.m.sliding_window == 0 && r.m.pad_token_id == 11 && r.m.bos_token_id == 1 &&
          r.m.head_dim == 128 && r.m.rope_type == FE_ROPE_YARN && r.m.llama4_beta == 0.1 && r.m.llama4_max == 16384 &&
          r.m.rms_norm_eps == 1e-5);
    mfree(&r);
    mload(&r, model_dir("Ministral3ForCausalLM", BASE, "\"head_dim\": null"));
    CHECK(r.rc == 0 && r.m.head_dim == r.m.hidden_size / r.m.num_attention_heads);
    mfree(&r);
    /* Ministral 3 (Ministral-3-*-2512): Ministral3Config's defaults, its YaRN and its queries' scale */
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-ministral3-mm");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-ministral3-mm:\n%s", dump(&r.d));
    CHECK(r.m.ministral3 && r.m.llama4_beta == 0.1 && r.m.llama4_max == 12 && r.m.rope_type == FE_ROPE_YARN &&
          r.m.rms_norm_eps == 1e-5);
    mfree(&r);
    expect_model_error("Mistral3ForConditionalGeneration", "\"text_config\": {\"model_type\": \"mistral\"}", "",
                       "config.json: text_config.hidden_size", "expected a positive integer, found nothing");
    /* the untie rule: an lm_head equal to the embedding stays tied, another one unties (a warning); for a causal
     * LM too */
    static const char *const M3 = "\"text_config\": {\"model_type\": \"mistral\", \"hidden_size\": 8, \"intermediate_size\": 8, "
                                  "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 4}";
    static const char *const Q2 = "\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
                                  "\"num_attention_heads\": 2, \"vocab_size\": 4, \"tie_word_embeddings\": true";
    for (int k = 0; k < 4; k++) {
        const int differ = k & 1, mm = k < 2;
        const char *dir = model_dir(mm ? "Mistral3ForConditionalGeneration" : "Qwen2ForCausalLM", mm ? M3 : Q2, "");
        write_embed_head(dir, mm ? "language_model.model.embed_tokens.weight" : "model.embed_tokens.weight",
                         mm ? "language_model.lm_head.weight" : "lm_head.weight", differ);
        mload(&r, dir);
        CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
        CHECK_EQ(r.m.tie_word_embeddings, !differ);
        if (differ) EXPECT_DIAG(&r.d, AX_SEV_WARNING, "config.json", "differs from the embedding: untied, as transformers loads it");
        CHECK_EQ(r.m.untied_by_weights, differ);
        mfree(&r);
    }
    /* a null tie is Mistral3Config's error */
    expect_model_error("Mistral3ForConditionalGeneration",
                       "\"tie_word_embeddings\": null, \"text_config\": {\"model_type\": \"mistral\", \"hidden_size\": 8, "
                       "\"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 4}",
                       "", "config.json: tie_word_embeddings", "expected true or false, found null");
}

/* Granite's multipliers (GraniteConfig's default 1 each, untied) and SmolLM3's NoPE layers (every 4th by default,
 * RoPE base 2e6, tied). */
/* Qwen3-MoE and Mixtral: experts, top-k, which layers are sparse, the checkpoint's names */
static void test_moe(void) {
    mrun r;
    mload(&r, model_dir("Qwen3MoeForCausalLM", BASE, "\"num_experts\": 8, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 24, "
                                                     "\"mlp_only_layers\": [0], \"norm_topk_prob\": true"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_QWEN3 && r.m.qk_norm && r.m.num_experts == 8 && r.m.num_experts_per_tok == 2 &&
          r.m.moe_intermediate_size == 24 && r.m.norm_topk_prob && !strcmp(r.m.moe_block, "mlp") &&
          !strcmp(r.m.moe_parts[0], "gate_proj") && !strcmp(r.m.decoder_layer_cls, "Qwen3MoeDecoderLayer"));
    CHECK(r.m.layer_moe && !r.m.layer_moe[0] && r.m.layer_moe[1]);
    mfree(&r);
    /* decoder_sparse_step 2: layers 1, 3, ... sparse; defaults: 128 experts, top 8, no renormalisation */
    mload(&r, model_dir("Qwen3MoeForCausalLM",
                        "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 4, \"num_attention_heads\": 4, "
                        "\"vocab_size\": 256",
                        "\"decoder_sparse_step\": 2"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.num_experts == 128 && r.m.num_experts_per_tok == 8 && r.m.moe_intermediate_size == 768 && !r.m.norm_topk_prob);
    CHECK(!r.m.layer_moe[0] && r.m.layer_moe[1] && !r.m.layer_moe[2] && r.m.layer_moe[3]);
    mfree(&r);
    /* Qwen2-MoE: Qwen2MoeConfig's defaults (60 experts, top 4, 1408 wide, a 5632-wide shared expert, q/k/v biases by
     * qkv_bias, 16 kv heads, 32768 positions), Qwen2's attention, no sliding-window layers */
    mload(&r, model_dir("Qwen2MoeForCausalLM",
                        "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 16, "
                        "\"vocab_size\": 256", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_QWEN2 && !r.m.qk_norm && r.m.attention_bias && r.m.num_experts == 60 &&
          r.m.num_experts_per_tok == 4 && r.m.moe_intermediate_size == 1408 && r.m.shared_expert_intermediate_size == 5632 &&
          !r.m.norm_topk_prob && r.m.num_key_value_heads == 16 && r.m.max_position_embeddings == 32768 &&
          r.m.layer_moe[0] && r.m.layer_moe[1] && !strcmp(r.m.decoder_layer_cls, "Qwen2MoeDecoderLayer"));
    mfree(&r);
    mload(&r, model_dir("Qwen2MoeForCausalLM", BASE, "\"qkv_bias\": false, \"shared_expert_intermediate_size\": 40"));
    CHECK_MSG(r.rc == 0 && !r.m.attention_bias && r.m.shared_expert_intermediate_size == 40, "%s", dump(&r.d));
    mfree(&r);
    mload(&r, model_dir("Qwen3MoeForCausalLM", BASE, ""));
    CHECK_MSG(r.rc == 0 && r.m.shared_expert_intermediate_size == 0, "%s", dump(&r.d)); /* no shared expert */
    mfree(&r);
    expect_model_error("Qwen2MoeForCausalLM", BASE, "\"use_sliding_window\": true", "config.json: use_sliding_window",
                       "sliding-window layers are not implemented");
    expect_model_error("Qwen2MoeForCausalLM", BASE, "\"shared_expert_intermediate_size\": 0",
                       "config.json: shared_expert_intermediate_size", "expected a positive integer");
    /* num_experts 0: every layer dense */
    mload(&r, model_dir("Qwen3MoeForCausalLM", BASE, "\"num_experts\": 0"));
    CHECK_MSG(r.rc == 0 && !r.m.layer_moe[0] && !r.m.layer_moe[1], "%s", dump(&r.d));
    mfree(&r);
    mload(&r, model_dir("MixtralForCausalLM", BASE, "\"num_local_experts\": 8, \"num_experts_per_tok\": 2"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_MISTRAL && r.m.num_experts == 8 && r.m.norm_topk_prob && r.m.moe_intermediate_size == 176 &&
          !strcmp(r.m.moe_block, "block_sparse_moe") && !strcmp(r.m.moe_parts[0], "w1") && !strcmp(r.m.moe_parts[1], "w3") &&
          !strcmp(r.m.moe_parts[2], "w2") && r.m.layer_moe[0] && r.m.layer_moe[1] && r.m.rms_norm_eps == 1e-5 &&
          r.m.rope_theta == 1e6);
    CHECK_EQ(r.m.sliding_window, 0); /* MixtralConfig's default window is None, Mistral's 4096 */
    mfree(&r);
    expect_model_error("MixtralForCausalLM", BASE, "\"num_local_experts\": 4, \"num_experts_per_tok\": 5",
                       "config.json: num_experts_per_tok", "at most the 4 experts");
    expect_model_error("Qwen3MoeForCausalLM", BASE, "\"mlp_only_layers\": [\"a\"]", "config.json: mlp_only_layers", "a list of layer indices");
    /* the load-balancing loss: read with its coefficient (0.001 when absent, as both configs default) */
    mload(&r, model_dir("Qwen3MoeForCausalLM", BASE, "\"output_router_logits\": true, \"router_aux_loss_coef\": 0.02"));
    CHECK_MSG(r.rc == 0 && r.m.output_router_logits && r.m.router_aux_loss_coef == 0.02, "%s", dump(&r.d));
    mfree(&r);
    mload(&r, model_dir("MixtralForCausalLM", BASE, "\"num_local_experts\": 4, \"output_router_logits\": true"));
    CHECK_MSG(r.rc == 0 && r.m.output_router_logits && r.m.router_aux_loss_coef == 0.001, "%s", dump(&r.d));
    mfree(&r);
    expect_model_error("Qwen3MoeForCausalLM", BASE, "\"output_router_logits\": true, \"router_aux_loss_coef\": \"x\"",
                       "config.json: router_aux_loss_coef", "a finite number");
    expect_model_error("MixtralForCausalLM", BASE, "\"router_jitter_noise\": 0.01", "config.json: router_jitter_noise",
                       "jitter");
    /* gpt-oss: GptOssConfig's defaults (kv heads 8, head_dim 64, 128 experts top 4, every layer sparse and renormalised,
     * the clamped GLU 1.702 / 7, q/k/v/o biases, sinks, layers sliding by turns with a window of 128, theta 150000
     * and yarn over 4096 positions when the config has no RoPE dict) */
    mload(&r, model_dir("GptOssForCausalLM",
                        "\"hidden_size\": 64, \"intermediate_size\": 32, \"num_hidden_layers\": 4, \"num_attention_heads\": 8, "
                        "\"vocab_size\": 256",
                        "\"num_local_experts\": 4"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_GPTOSS && r.m.num_key_value_heads == 8 && r.m.head_dim == 64 && r.m.num_experts == 4 &&
          r.m.num_experts_per_tok == 4 && r.m.norm_topk_prob && r.m.moe_intermediate_size == 32 && r.m.attn_sinks &&
          r.m.swiglu_alpha == 1.702 && r.m.swiglu_limit == 7.0 && r.m.attention_bias && r.m.rms_norm_eps == 1e-5 &&
          r.m.max_position_embeddings == 131072 &&
          !strcmp(r.m.decoder_layer_cls, "GptOssDecoderLayer"));
    CHECK(r.m.layer_moe[0] && r.m.layer_moe[3] && r.m.layer_window[0] == 128 && r.m.layer_window[1] == 0 &&
          r.m.layer_window[2] == 128 && r.m.layer_window[3] == 0);
    CHECK(r.m.rope_theta == 150000.0 && r.m.rope_type == FE_ROPE_YARN && r.m.rope_factor == 32.0 &&
          r.m.rope_original_max_position_embeddings == 4096 && !r.m.rope_truncate && r.m.rope_beta_fast == 32.0 &&
          r.m.rope_beta_slow == 1.0);
    mfree(&r);
    /* OLMoE: OlmoeConfig's defaults (64 experts of intermediate_size, top 8, no renormalisation, aux coef 0.01,
     * 4096 positions, eps 1e-5, pad 1, eos 50279), OLMo's whole-projection q/k norms in a pre-norm layer */
    mload(&r, model_dir("OlmoeForCausalLM", BASE, "\"num_key_value_heads\": 2"));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_OLMOE && r.m.num_experts == 64 && r.m.num_experts_per_tok == 8 && !r.m.norm_topk_prob &&
          r.m.moe_intermediate_size == 176 && r.m.router_aux_loss_coef == 0.01 && r.m.qk_norm && r.m.qk_norm_full &&
          !r.m.post_norm_only && r.m.rms_norm_eps == 1e-5 && r.m.pad_token_id == 1 && r.m.eos_token_id == 50279 &&
          r.m.layer_moe[0] && r.m.layer_moe[1] && !strcmp(r.m.moe_parts[0], "gate_proj") &&
          !strcmp(r.m.decoder_layer_cls, "OlmoeDecoderLayer"));
    mfree(&r);
    expect_model_error("OlmoeForCausalLM", BASE, "\"clip_qkv\": 8.0", "config.json: clip_qkv", "clamping q, k and v is not implemented");
    expect_model_error("GptOssForCausalLM", BASE, "\"num_local_experts\": 4, \"attention_dropout\": 0.1",
                       "config.json: attention_dropout", "dropout on the attention probabilities is not implemented");
    expect_model_error("GptOssForCausalLM", BASE, "\"num_local_experts\": 4, \"swiglu_limit\": 0",
                       "config.json: swiglu_limit", "a positive number");
}

static void test_granite_smollm3(void) {
    mrun r;
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-granite");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-granite:\n%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_GRANITE && r.m.embedding_multiplier == 12 && r.m.attention_multiplier == 0.1 &&
          r.m.residual_multiplier == 0.22 && r.m.logits_scaling == 8 && r.m.tie_word_embeddings && r.m.head_dim == 16);
    CHECK_STREQ(r.m.decoder_layer_cls, "GraniteDecoderLayer");
    mfree(&r);
    mload(&r, model_dir("GraniteForCausalLM", BASE, ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.embedding_multiplier == 1 && r.m.attention_multiplier == 1 && r.m.residual_multiplier == 1 &&
          r.m.logits_scaling == 1 && !r.m.tie_word_embeddings && r.m.sliding_window == 0);
    mfree(&r);
    expect_model_error("GraniteForCausalLM", BASE, "\"logits_scaling\": 0", "config.json: logits_scaling", "expected a positive number");
    expect_model_error("GraniteForCausalLM", BASE, "\"mlp_bias\": true", "config.json: mlp_bias", "is not implemented");
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-smollm3");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-smollm3:\n%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_SMOLLM3 && r.m.layer_rope && r.m.layer_rope[0] == 1 && r.m.layer_rope[1] == 0);
    CHECK(r.m.rope_theta == 2e6 && r.m.tie_word_embeddings);
    mfree(&r);
    mload(&r, model_dir("SmolLM3ForCausalLM", "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 9, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 256, \"rope_theta\": 5000000.0", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    for (int l = 0; l < 9 && r.m.layer_rope; l++) CHECK_EQ(r.m.layer_rope[l], (l + 1) % 4 != 0);
    CHECK(r.m.rope_theta == 5e6);
    mfree(&r);
    mload(&r, model_dir("SmolLM3ForCausalLM", BASE, "\"no_rope_layer_interval\": 2"));
    CHECK(r.rc == 0 && r.m.layer_rope && r.m.layer_rope[0] == 1 && r.m.layer_rope[1] == 0);
    mfree(&r);
    expect_model_error("SmolLM3ForCausalLM", BASE, "\"no_rope_layers\": [1]", "config.json: no_rope_layers",
                       "a list of num_hidden_layers entries");
    expect_model_error("SmolLM3ForCausalLM", BASE, "\"use_sliding_window\": true, \"sliding_window\": 8",
                       "config.json: use_sliding_window", "SmolLM3's sliding-window layers are not implemented");
    /* OLMo 2: post norms only, whole-projection q/k norms; OLMo 3: every 4th layer full, window 4096, the sliding
     * layers' RoPE base 5e5 whatever rope_theta says (Olmo3Config pops it for the full layers first) */
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-olmo2");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-olmo2:\n%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_OLMO2 && r.m.post_norm_only && r.m.qk_norm && !r.m.local_rope && r.m.rope_theta == 5e5 &&
          !r.m.tie_word_embeddings && r.m.sliding_window == 0);
    mfree(&r);
    mload(&r, model_dir("Olmo3ForCausalLM", "\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 8, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 256, \"rope_theta\": 1000.0", ""));
    CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
    CHECK(r.m.post_norm_only && r.m.local_rope && r.m.rope_theta == 1000 && r.m.rope_local_theta == 5e5);
    for (int l = 0; l < 8; l++) CHECK_EQ(r.m.layer_window[l], (l + 1) % 4 ? 4096 : 0);
    mfree(&r);
    /* Phi-3: fused projections, the window on every layer, no window when absent; residual dropout refused by
     * name */
    mload(&r, AXO_SOURCE_DIR "/tests/reference/fixtures/tiny-phi3");
    CHECK_MSG(r.rc == 0 && r.d.n == 0, "tiny-phi3:\n%s", dump(&r.d));
    CHECK(r.m.arch == FE_ARCH_PHI3 && r.m.fused_proj && !r.m.attention_bias && r.m.layer_window[0] == 7 &&
          r.m.layer_window[1] == 7 && !r.m.tie_word_embeddings && r.m.head_dim == 16);
    mfree(&r);
    mload(&r, model_dir("Phi3ForCausalLM", BASE, "\"attention_bias\": true"));
    CHECK(r.rc == 0 && r.m.sliding_window == 0 && !r.m.attention_bias);
    mfree(&r);
    /* Phi-4-mini's partial rotation; Phi-3.5's LongRoPE under its older names (su, yarn), original_max from the top
     * level (Phi3Config's, default 4096) whatever the dict says, the factor max / original (2048 / 512) */
    mload(&r, model_dir("Phi3ForCausalLM", BASE, "\"partial_rotary_factor\": 0.75"));
    CHECK_MSG(r.rc == 0 && r.m.rope_partial_factor == 0.75, "%s", dump(&r.d));
    mfree(&r);
    expect_model_error("Phi3ForCausalLM", BASE, "\"partial_rotary_factor\": 0.7", "config.json: partial_rotary_factor",
                       "a factor that rotates an even, positive count of each head's dims");
    for (int y = 0; y < 2; y++) {
        char extra[512];
        snprintf(extra, sizeof extra,
                 "\"rope_scaling\": {\"type\": \"%s\", \"original_max_position_embeddings\": 64, \"short_factor\": [1, 1, 1, 1, 1, 1, 1, 1],"
                 " \"long_factor\": [2, 2, 2, 2, 2, 2, 2, 2]}, \"original_max_position_embeddings\": 512",
                 y ? "yarn" : "su");
        mload(&r, model_dir("Phi3ForCausalLM", BASE, extra));
        CHECK_MSG(r.rc == 0, "%s", dump(&r.d));
        CHECK(r.m.rope_type == FE_ROPE_LONGROPE && r.m.rope_original_max_position_embeddings == 512 && r.m.rope_factor == 4);
        CHECK_NEAR(r.m.rope_attention_factor, sqrt(1 + log(4.0) / log(512.0)), 1e-15, 0);
        mfree(&r);
    }
    expect_model_error("Phi3ForCausalLM", BASE, "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}",
                       "config.json: rope_scaling.rope_type", "default, longrope, su or yarn");
    expect_model_error("Phi3ForCausalLM", BASE, "\"resid_pdrop\": 0.1", "config.json: resid_pdrop",
                       "residual dropout is not implemented");
    expect_model_error("Phi3ForCausalLM", BASE, "\"attention_dropout\": 0.3", "config.json: attention_dropout",
                       "dropout on the attention probabilities is not implemented");
    /* transformers 5 writes the partial rotation into rope_parameters; that one is what Phi3Config reads */
    mload(&r, model_dir("Phi3ForCausalLM", BASE,
                        "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.75}"));
    CHECK_MSG(r.rc == 0 && r.m.rope_partial_factor == 0.75, "%s", dump(&r.d));
    mfree(&r);
    mload(&r, model_dir("Phi3ForCausalLM", BASE,
                        "\"partial_rotary_factor\": 0.75, \"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 1.0}"));
    CHECK_MSG(r.rc == 0 && r.m.rope_partial_factor == 1.0, "%s", dump(&r.d)); /* rope_parameters' 1.0 wins */
    CHECK(r.m.rms_norm_eps == 1e-5 && r.m.max_position_embeddings == 2048 && r.m.pad_token_id == 32000 && r.m.eos_token_id == 32000);
    mfree(&r);
}

int main(void) {
    tmp_init();
    test_granite_smollm3();
    test_moe();
    test_mistral3();
    test_gemma3();
    test_gemma3_multimodal();
    test_overrides();
    test_families();
    test_defaults_and_variants();
    test_errors();
    test_check_config_model();
    tmp_done();
    return check_done();
}
