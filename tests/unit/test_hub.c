/* test_hub: Hub repo ids and huggingface_hub's cache (frontend/hub.c)
 * without a network: the repo-id shapes, the cache root's environment
 * variables, and lookups in hand-made cache trees (refs, commits, shards,
 * what is missing). Downloads: tests/e2e/hub.sh. */
#include "frontend/hub.h"
#include "runtime/data.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* expected values: huggingface_hub 2.4's validate_repo_id on the same strings */
static void test_repo_ids(void) {
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"gpt2", 1}, {"meta-llama/Llama-3.2-1B", 1}, {"Qwen/Qwen2.5-0.5B-Instruct", 1}, {"a/b/c", 0}, {"./model", 0},
        {"../x", 0}, {"/abs/path", 0}, {"-a/b", 0}, {"a/b-", 0}, {"a--b/c", 0}, {"a..b", 0}, {"x.git", 0},
        {"_a/_b", 1}, {"a b", 0}, {"", 0}, {"org/", 0}, {"/name", 0}, {"configs/models/tiny-llama", 0},
        {"tiny-llama", 1}, {"model.v1", 1}, {"a/.b", 0}, {"a./b", 0}, {"NousResearch/Meta-Llama-3.1-8B", 1},
        {"caf\xc3\xa9/x", 0},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++)
        CHECK_MSG(fe_hub_is_repo_id(cases[i].s) == cases[i].ok, "\"%s\": expected %d", cases[i].s, cases[i].ok);
    char a96[97], a97[98], two[200];
    memset(a96, 'a', 96), a96[96] = 0;
    memset(a97, 'a', 97), a97[97] = 0;
    snprintf(two, sizeof two, "%s/%s", a96, a96);
    CHECK(fe_hub_is_repo_id(a96));
    CHECK(!fe_hub_is_repo_id(a97));
    CHECK(fe_hub_is_repo_id(two)); /* 96 a part, not in all */
}

static void test_cache_dir(void) {
    ax_arena *ar = ax_arena_create();
    unsetenv("HF_HUB_CACHE"), unsetenv("HUGGINGFACE_HUB_CACHE"), unsetenv("HF_HOME"), unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK_STREQ(fe_hub_cache_dir(ar), "/home/u/.cache/huggingface/hub");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK_STREQ(fe_hub_cache_dir(ar), "/xdg/huggingface/hub");
    setenv("HF_HOME", "/hf", 1);
    CHECK_STREQ(fe_hub_cache_dir(ar), "/hf/hub");
    setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
    CHECK_STREQ(fe_hub_cache_dir(ar), "/legacy");
    setenv("HF_HUB_CACHE", "/new", 1);
    CHECK_STREQ(fe_hub_cache_dir(ar), "/new");
    unsetenv("HUGGINGFACE_HUB_CACHE"), unsetenv("HF_HOME"), unsetenv("XDG_CACHE_HOME");
    ax_arena_destroy(ar);
}

static void put(const char *path, const char *text) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(ax_mkdir_p(dir, &d), 0);
    CHECK_EQ(ax_write_file_atomic(path, text, strlen(text), &d), 0);
    ax_diag_free(&d);
}

#define C1 "0123456789abcdef0123456789abcdef01234567"
#define C2 "89abcdef0123456789abcdef0123456789abcdef"

static void test_lookup(void) {
    char root[] = "/tmp/axo-test-hub-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    setenv("HF_HUB_CACHE", root, 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    ax_arena *ar = ax_arena_create();
    const char *snap1 = ax_arena_printf(ar, "%s/models--org--m/snapshots/" C1, root);
    const char *snap2 = ax_arena_printf(ar, "%s/models--org--m/snapshots/" C2, root);
    /* main -> C1: config, one file of weights; v2 -> C2 (with a trailing newline): an index naming two shards, one there */
    put(ax_arena_printf(ar, "%s/models--org--m/refs/main", root), C1);
    put(ax_arena_printf(ar, "%s/models--org--m/refs/v2", root), C2 "\n");
    put(ax_arena_printf(ar, "%s/config.json", snap1), "{}");
    put(ax_arena_printf(ar, "%s/model.safetensors", snap1), "x");
    put(ax_arena_printf(ar, "%s/config.json", snap2), "{}");
    put(ax_arena_printf(ar, "%s/model.safetensors.index.json", snap2),
        "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", \"c\": \"s1.safetensors\"}}");
    put(ax_arena_printf(ar, "%s/s1.safetensors", snap2), "x");

    ax_diag d;
    ax_diag_init(&d);
    const char *w = "cfg.yml:1:13";
    int want = FE_HUB_CONFIG | FE_HUB_WEIGHTS;
    CHECK_STREQ(fe_hub_model(ar, "org/m", NULL, want, w, "base_model", &d), snap1);
    CHECK_STREQ(fe_hub_model(ar, "org/m", "main", want, w, "base_model", &d), snap1);
    CHECK_STREQ(fe_hub_model(ar, "org/m", C1, want, w, "base_model", &d), snap1); /* a commit needs no ref */
    CHECK_EQ(d.nerrors, 0);

    /* v2 lacks the second shard: named, with why nothing was fetched */
    CHECK(fe_hub_model(ar, "org/m", "v2", want, w, "base_model", &d) == NULL);
    CHECK_EQ(d.nerrors, 1);
    CHECK_CONTAINS(d.entries[0].where, "cfg.yml:1:13");
    CHECK_CONTAINS(d.entries[0].msg, "lacks s2.safetensors");
    CHECK_CONTAINS(d.entries[0].msg, "HF_HUB_OFFLINE");
    /* the config alone is enough where weights are not wanted (base_model_config) */
    CHECK_STREQ(fe_hub_model(ar, "org/m", "v2", FE_HUB_CONFIG, w, "base_model_config", &d), snap2);
    put(ax_arena_printf(ar, "%s/s2.safetensors", snap2), "x");
    CHECK_STREQ(fe_hub_model(ar, "org/m", "v2", want, w, "base_model", &d), snap2);

    /* no tokenizer.json: a tokenizer_config use names it */
    CHECK(fe_hub_model(ar, "org/m", NULL, FE_HUB_TOKENIZER, w, "tokenizer_config", &d) == NULL);
    CHECK(ax_diag_contains(&d, "tokenizer_config: \"org/m\" is not a local directory, and its snapshot"));
    CHECK(ax_diag_contains(&d, "lacks tokenizer.json"));

    /* an unknown revision, an uppercase "hash" (not a commit: read as a ref), a repo not cached, a climbing revision */
    int n0 = d.nerrors;
    CHECK(fe_hub_model(ar, "org/m", "v3", want, w, "base_model", &d) == NULL);
    CHECK(ax_diag_contains(&d, "has no snapshot of it at revision \"v3\""));
    CHECK(fe_hub_model(ar, "org/m", "0123456789ABCDEF0123456789ABCDEF01234567", want, w, "base_model", &d) == NULL);
    CHECK(fe_hub_model(ar, "org/m", "ffffffffffffffffffffffffffffffffffffffff", want, w, "base_model", &d) == NULL);
    CHECK(ax_diag_contains(&d, "has no snapshot of it at revision \"ffffffffffffffffffffffffffffffffffffffff\""));
    CHECK(fe_hub_model(ar, "org/other", NULL, want, w, "base_model", &d) == NULL);
    CHECK(ax_diag_contains(&d, root));
    CHECK(fe_hub_model(ar, "org/m", "../../../etc", want, w, "base_model", &d) == NULL);
    CHECK(ax_diag_contains(&d, "is not a branch, a tag or a commit hash"));
    CHECK_EQ(d.nerrors, n0 + 5);

    /* a ref that is not a commit (a torn write, another tool's text) is not followed */
    put(ax_arena_printf(ar, "%s/models--org--m/refs/bad", root), "not-a-commit");
    CHECK(fe_hub_model(ar, "org/m", "bad", want, w, "base_model", &d) == NULL);

    /* an index that is not one */
    put(ax_arena_printf(ar, "%s/model.safetensors.index.json", snap2), "{\"weight_map\": [1]}");
    CHECK(fe_hub_model(ar, "org/m", "v2", want, w, "base_model", &d) == NULL);
    CHECK(ax_diag_contains(&d, "lacks a readable model.safetensors.index.json"));

    /* downloads on but offline set: still nothing fetched, and said so */
    fe_hub_allow_download(1);
    int n1 = d.nerrors;
    CHECK(fe_hub_model(ar, "org/other", NULL, want, w, "base_model", &d) == NULL);
    CHECK_EQ(d.nerrors, n1 + 1);
    CHECK(ax_diag_contains(&d, "downloads are off: HF_HUB_OFFLINE"));
    fe_hub_allow_download(0);

    ax_diag_free(&d);
    ax_arena_destroy(ar);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK_EQ(system(cmd), 0);
    unsetenv("HF_HUB_CACHE"), unsetenv("HF_HUB_OFFLINE");
}

/* the files HF datasets 5.2 takes for a split, on file lists (tests/reference/make_split_fixtures.py ran
 * datasets' own get_data_patterns / DataFilesDict on them: split_files.json) */
static void test_split_files(void) {
    json_error_t je;
    json_t *j = json_load_file(AXO_SOURCE_DIR "/tests/reference/split_files.json", 0, &je);
    CHECK_MSG(j != NULL, "split_files.json: %s", je.text);
    json_t *cases = json_object_get(j, "cases");
    CHECK(json_array_size(cases) >= 60);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *k = json_array_get(cases, c), *fj = json_object_get(k, "files"), *dj = json_object_get(k, "data_files");
        json_t *ej = json_object_get(k, "expect");
        ax_arena *ar = ax_arena_create();
        int n = (int)json_array_size(fj), nd = (int)json_array_size(dj);
        const char **files = ax_arena_alloc(ar, sizeof *files * (size_t)(n + 1));
        const char **df = ax_arena_alloc(ar, sizeof *df * (size_t)(nd + 1));
        for (int i = 0; i < n; i++) files[i] = json_string_value(json_array_get(fj, (size_t)i));
        for (int i = 0; i < nd; i++) df[i] = json_string_value(json_array_get(dj, (size_t)i));
        fe_hub_ds_sel sel = {.data_files = df, .ndata_files = nd, .split = json_string_value(json_object_get(k, "split")),
                             .name = json_string_value(json_object_get(k, "name")),
                             .readme = json_string_value(json_object_get(k, "readme")),
                             .hf_yaml = json_string_value(json_object_get(k, "hf_yaml"))};
        const char *says = json_string_value(json_object_get(k, "error_says"));
        const char **got = NULL;
        char err[512] = "";
        int ng = fe_hub_split_files(ar, files, n, &sel, &got, err, sizeof err);
        ax_buf want = {0}, have = {0};
        if (json_is_array(ej))
            for (size_t i = 0; i < json_array_size(ej); i++) ax_buf_printf(&want, "%s;", json_string_value(json_array_get(ej, i)));
        for (int i = 0; i < ng; i++) ax_buf_printf(&have, "%s;", got[i]);
        /* datasets' null (it raises) and [] (a split with no readable file) are both an error here */
        int want_err = !json_is_array(ej) || json_array_size(ej) == 0;
        CHECK_MSG(want_err ? ng < 0 : ng > 0 && !strcmp(want.data, have.data), "case %zu (split %s): expected %s, got %s%s",
                  c, sel.split, want_err ? "an error" : want.data, ng < 0 ? "an error: " : have.data ? have.data : "",
                  ng < 0 ? err : "");
        if (says && ng < 0) CHECK_MSG(strstr(err, says) != NULL, "case %zu: the error \"%s\" does not say \"%s\"", c, err, says);
        ax_buf_free(&want), ax_buf_free(&have);
        ax_arena_destroy(ar);
    }
    json_decref(j);
    /* split slices are refused by name */
    ax_arena *ar = ax_arena_create();
    const char *one[] = {"train.jsonl"}, **got;
    char err[512];
    fe_hub_ds_sel sl = {.split = "train[:10%]"};
    CHECK_EQ(fe_hub_split_files(ar, one, 1, &sl, &got, err, sizeof err), -1);
    CHECK(strstr(err, "a slice or a sum selects rows, not files") != NULL);
    ax_arena_destroy(ar);
}

/* HF's split spec: fe_parse_split (frontend) then rt_split_slice_range (runtime) give the rows datasets'
 * ReadInstruction gives, or an error where it raises (split_files.json "slices") */
static void test_split_slices(void) {
    json_error_t je;
    json_t *j = json_load_file(AXO_SOURCE_DIR "/tests/reference/split_files.json", 0, &je);
    json_t *cases = json_object_get(j, "slices");
    CHECK(json_array_size(cases) >= 100);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *k = json_array_get(cases, c), *ej = json_object_get(k, "expect");
        const char *spec = json_string_value(json_object_get(k, "spec"));
        const int64_t n = json_integer_value(json_object_get(k, "rows"));
        ax_arena *ar = ax_arena_create();
        const char *name = NULL, *slice = NULL;
        char err[512] = "";
        int64_t from = 0, to = n;
        int rc = fe_parse_split(ar, spec, &name, &slice, err, sizeof err);
        if (rc == 0 && slice) rc = rt_split_slice_range(slice, n, &from, &to, err, sizeof err);
        if (json_is_array(ej))
            CHECK_MSG(rc == 0 && from == json_integer_value(json_array_get(ej, 0)) && to == json_integer_value(json_array_get(ej, 1)),
                      "%s over %lld rows: expected [%lld, %lld), got %s [%lld, %lld) %s", spec, (long long)n,
                      (long long)json_integer_value(json_array_get(ej, 0)), (long long)json_integer_value(json_array_get(ej, 1)),
                      rc ? "an error" : "", (long long)from, (long long)to, err);
        else
            CHECK_MSG(rc == -1 && *err, "%s over %lld rows: expected an error (%s)", spec, (long long)n,
                      json_string_value(json_object_get(k, "why")));
        ax_arena_destroy(ar);
    }
    json_decref(j);
}

int main(void) {
    test_split_files();
    test_split_slices();
    test_repo_ids();
    test_cache_dir();
    test_lookup();
    return check_done();
}
