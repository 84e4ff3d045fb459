/* test_tokenizer.c — runtime/tokenizer.c against Hugging Face `tokenizers`:
 * five tokenizer.json pipelines (tests/reference/make_tokenizer_fixtures.py)
 * and ~290 strings each (Unicode, whitespace runs, digits, contractions,
 * added tokens inside text, byte fallback), with and without the
 * post-processor's special tokens; then the load errors; then tokens a
 * config adds (tokens, special_tokens, added_tokens_overrides) against
 * transformers (tests/reference/make_added_token_fixtures.py): their ids,
 * len(tokenizer), texts with them, and the tokenizer files axo saves. */
#include "ir/base.h"
#include "runtime/modeldir.h"
#include "runtime/prompt.h"
#include "runtime/tokenizer.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TOKDIR AXO_SOURCE_DIR "/tests/reference/tokenizers/"

static int same_ids(const ax_buf *b, const json_t *ids) {
    size_t n = b->len / sizeof(int32_t);
    if (n != json_array_size(ids)) return 0;
    const int32_t *p = (const int32_t *)b->data;
    for (size_t i = 0; i < n; i++)
        if (p[i] != json_integer_value(json_array_get(ids, i))) return 0;
    return 1;
}

static void print_ids(const char *what, const ax_buf *b, const json_t *ids) {
    fprintf(stderr, "  %s axo:", what);
    for (size_t i = 0; i < b->len / sizeof(int32_t); i++) fprintf(stderr, " %d", ((const int32_t *)b->data)[i]);
    fprintf(stderr, "\n  %s hf: ", what);
    for (size_t i = 0; i < json_array_size(ids); i++)
        fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(ids, i)));
    fprintf(stderr, "\n");
}

static void check_set(const char *name, int twice) {
    char path[512];
    snprintf(path, sizeof path, TOKDIR "%s/tokenizer.json", name);
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *t = rt_tok_load(path, &d);
    ax_diag_print(&d, stderr);
    CHECK_MSG(t != NULL, "%s", name);
    if (!t) return;
    snprintf(path, sizeof path, TOKDIR "%s/cases.jsonl", name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, bad = 0;
    /* twice: the second pass is served from the word cache */
    for (int pass = 0; pass < (twice ? 2 : 1); pass++) {
        rewind(f);
        while (getline(&line, &cap, f) > 0) {
            json_error_t je;
            json_t *row = json_loads(line, 0, &je);
            if (!row) continue;
            const json_t *text = json_object_get(row, "text");
            ax_buf a = {0}, b = {0};
            int ra = rt_tok_encode(t, json_string_value(text), json_string_length(text), 1, &a, "case", &d);
            int rb = rt_tok_encode(t, json_string_value(text), json_string_length(text), 0, &b, "case", &d);
            int ok = ra == 0 && rb == 0 && same_ids(&a, json_object_get(row, "ids")) &&
                     same_ids(&b, json_object_get(row, "ids_plain"));
            if (!ok && bad++ < 5) {
                fprintf(stderr, "%s: \"%s\" differs from tokenizers\n", name, json_string_value(text));
                print_ids("special", &a, json_object_get(row, "ids"));
                print_ids("plain", &b, json_object_get(row, "ids_plain"));
            }
            n++;
            ax_buf_free(&a);
            ax_buf_free(&b);
            json_decref(row);
        }
    }
    free(line);
    fclose(f);
    CHECK_MSG(bad == 0, "%s: %d of %d strings differ", name, bad, n);
    CHECK_MSG(n > 250, "%s: only %d cases", name, n);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    rt_tok_free(t);
}

/* a tokenizer.json made from text, loaded, and the error it must give */
static void check_error(const char *json, const char *needle) {
    char path[] = "/tmp/axo-tok-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *t = rt_tok_load(path, &d);
    CHECK_MSG(t == NULL, "loaded: %s", json);
    CHECK_MSG(ax_diag_contains(&d, needle), "no \"%s\" for %s", needle, json);
    CHECK(ax_diag_contains(&d, path));
    if (!ax_diag_contains(&d, needle)) ax_diag_print(&d, stderr);
    rt_tok_free(t);
    ax_diag_free(&d);
    remove(path);
}

static void test_errors(void) {
    check_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model type \"WordPiece\" is not supported");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "model.merges[0]");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}",
                "model.dropout");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"normalizer\": {\"type\": \"Precompiled\"}}",
                "normalizer \"Precompiled\" is not supported");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
                "the regex does not compile");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
                " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}}}",
                "special token \"<s>\" is not in special_tokens");
    check_error("{\"model\": ", "cannot read the tokenizer");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2000000000}, \"merges\": []}}",
                "expected a token id in [0, 16777216)");

    /* a word with a char outside the vocab, no byte fallback, no unk: an error, not a silent drop */
    char path[] = "/tmp/axo-tok-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}", f);
    fclose(f);
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *t = rt_tok_load(path, &d);
    CHECK(t != NULL);
    ax_buf out = {0};
    CHECK_EQ(rt_tok_encode(t, "abab", 4, 1, &out, "x", &d), 0);
    CHECK_EQ(out.len, 2 * sizeof(int32_t));
    CHECK_EQ(((int32_t *)out.data)[0], 2);
    CHECK_EQ(rt_tok_encode(t, "abc", 3, 1, &out, "data.jsonl:3", &d), -1);
    CHECK(ax_diag_contains(&d, "data.jsonl:3"));
    CHECK(ax_diag_contains(&d, "not in the vocab"));
    CHECK_EQ(rt_tok_encode(t, "a\xff", 2, 1, &out, "data.jsonl:4", &d), -1);
    CHECK(ax_diag_contains(&d, "not valid UTF-8"));
    CHECK_EQ(rt_tok_vocab_size(t), 3);
    CHECK_EQ(rt_tok_id(t, "ab"), 2);
    CHECK_EQ(rt_tok_id(t, "zz"), -1);
    ax_buf_free(&out);
    rt_tok_free(t);
    ax_diag_free(&d);
    remove(path);
}

static void test_pieces(void) {
    ax_diag d;
    ax_diag_init(&d);
    const char *names[] = {"llama3", "llama2"};
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof path, TOKDIR "%s/tokenizer.json", names[k]);
        rt_tokenizer *t = rt_tok_load(path, &d);
        CHECK(t != NULL);
        if (!t) continue;
        const char *text = "Hello wörld 😀 42";
        ax_buf ids = {0}, back = {0};
        CHECK_EQ(rt_tok_encode(t, text, strlen(text), 0, &ids, "x", &d), 0);
        for (size_t i = 0; i < ids.len / 4; i++) rt_tok_piece(t, ((int32_t *)ids.data)[i], &back);
        ax_buf_u8(&back, 0);
        /* sentencepiece's leading mark comes back as a space */
        CHECK_STREQ(back.data + (k == 1), text);
        ax_buf_free(&ids);
        ax_buf_free(&back);
        rt_tok_free(t);
    }
    ax_diag_free(&d);
}

/* One added-token fixture: the edits applied by rt_tok_setup_apply give
 * transformers' ids and len; rt_modeldir_copy_tokenizer writes the
 * added_tokens and special tokens save_pretrained writes. */
static void check_added(const char *name) {
    char path[600];
    snprintf(path, sizeof path, TOKDIR "added/%s.json", name);
    json_error_t je;
    json_t *fx = json_load_file(path, 0, &je);
    CHECK_MSG(fx != NULL, "%s: %s", path, je.text);
    if (!fx) return;
    char dir[600], tokp[700];
    snprintf(dir, sizeof dir, AXO_SOURCE_DIR "/%s", json_string_value(json_object_get(fx, "dir")));
    snprintf(tokp, sizeof tokp, "%s/tokenizer.json", dir);
    /* the plan's tokenizer record, as fe_resolve_tokenizer writes it */
    json_t *rec = json_object();
    json_object_set_new(rec, "path", json_string(tokp));
    json_object_set(rec, "edits", json_object_get(fx, "edits"));
    json_t *set = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(fx, "special"), k, v) {
        /* the keys the scenario set: each is an edit with special true and that content */
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(fx, "edits"), i, e) {
            if (json_is_true(json_object_get(e, "special")) && json_equal(json_object_get(e, "content"), v))
                json_object_set(set, k, v);
        }
    }
    json_object_set_new(rec, "set_special", set);
    char *js = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    ax_diag d;
    ax_diag_init(&d);
    ax_arena *ar = ax_arena_create();
    rt_tok_setup s;
    CHECK(rt_tok_setup_from_json(js, &s, ar, "fixture", &d) == 0);
    CHECK_EQ(s.nedits, (int)json_array_size(json_object_get(fx, "edits")));
    rt_tokenizer *t = rt_tok_load(tokp, &d);
    CHECK(t != NULL);
    if (t) {
        CHECK(rt_tok_setup_apply(t, &s, &d) == 0);
        CHECK_MSG(rt_tok_len(t) == json_integer_value(json_object_get(fx, "len")), "%s: len %lld, transformers %lld", name,
                  (long long)rt_tok_len(t), (long long)json_integer_value(json_object_get(fx, "len")));
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(fx, "added_tokens"), i, a) {
            const char *c = json_string_value(json_object_get(a, "content"));
            CHECK_MSG(rt_tok_id(t, c) == json_integer_value(json_object_get(a, "id")), "%s: \"%s\" is %d, transformers %lld",
                      name, c, rt_tok_id(t, c), (long long)json_integer_value(json_object_get(a, "id")));
        }
        json_array_foreach(json_object_get(fx, "cases"), i, a) {
            const json_t *text = json_object_get(a, "text");
            ax_buf b = {0};
            int ok = rt_tok_encode(t, json_string_value(text), json_string_length(text), 0, &b, "case", &d) == 0 &&
                     same_ids(&b, json_object_get(a, "ids"));
            CHECK_MSG(ok, "%s: \"%s\" differs from transformers", name, json_string_value(text));
            if (!ok) print_ids("plain", &b, json_object_get(a, "ids"));
            ax_buf_free(&b);
        }
        rt_tok_free(t);
    }
    /* the files saved beside a trained model */
    char out[] = "/tmp/axo_added_XXXXXX";
    CHECK(mkdtemp(out) != NULL);
    CHECK(rt_modeldir_copy_tokenizer(dir, out, 0, NULL, js, &d) == 0);
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    json_t *saved = json_load_file(path, 0, &je);
    CHECK_MSG(saved && json_equal(json_object_get(saved, "added_tokens"), json_object_get(fx, "added_tokens")),
              "%s: the saved tokenizer.json's added_tokens differ from save_pretrained's", name);
    rt_tokenizer *t2 = rt_tok_load(path, &d); /* and it loads to the same ids */
    CHECK(t2 != NULL);
    if (t2) {
        CHECK_EQ(rt_tok_len(t2), json_integer_value(json_object_get(fx, "len")));
        rt_tok_free(t2);
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", out);
    json_t *cfg = json_load_file(path, 0, &je);
    CHECK(cfg != NULL);
    json_object_foreach(json_object_get(fx, "special"), k, v)
        CHECK_MSG(json_equal(json_object_get(cfg, k), v), "%s: saved tokenizer_config.json's %s", name, k);
    json_decref(cfg);
    json_decref(saved);
    rt_modeldir_remove(out);
    snprintf(path, sizeof path, "rm -rf '%s'", out);
    CHECK(system(path) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ax_arena_destroy(ar);
    free(js);
    json_decref(fx);
}

static void test_added_errors(void) {
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *t = rt_tok_load(TOKDIR "llama3/tokenizer.json", &d);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_EQ(rt_tok_override(t, 5, "<|x|>"), -1); /* id 5 is a vocab token, not an added one */
    CHECK_EQ(rt_tok_add(t, "", NULL), -1);        /* tokenizers skips "" */
    int fresh = -1;
    CHECK_EQ(rt_tok_add(t, "<|new|>", &fresh), 705);
    CHECK_EQ(fresh, 1);
    CHECK_EQ(rt_tok_add(t, "<|new|>", &fresh), 705);
    CHECK_EQ(fresh, 0);
    CHECK_EQ(rt_tok_vocab_size(t), 706);
    rt_tok_setup s = {.path = "llama3/tokenizer.json"};
    rt_tok_edit e = {.override_id = 12, .content = "<|y|>"};
    s.edits = &e, s.nedits = 1;
    CHECK(rt_tok_setup_apply(t, &s, &d) == -1);
    CHECK(ax_diag_contains(&d, "added_tokens_overrides: token id 12 is not an added token"));
    ax_diag_free(&d);
    rt_tok_free(t);
}

int main(void) {
    check_set("llama3", 1);
    check_set("qwen2", 0);
    check_set("gpt2", 0);
    check_set("llama2", 1);
    check_set("mistral", 0);
    check_set("gemma", 1); /* Gemma: Replace normalizer without a prefix, Split(" ") pre-tokenizer */
    test_errors();
    test_pieces();
    check_added("llama3-chatml");
    check_added("llama3-override");
    check_added("qwen2-think");
    check_added("llama2-tokens");
    test_added_errors();
    return check_done();
}
