/* test_prompt.c — runtime/prompt.c against Axolotl itself: each case of
 * tests/reference/prompts/ (made by make_prompt_fixtures.py with
 * Axolotl 0.19's own prompt strategies) gives the same input_ids and labels
 * for every row; then the dataset loader over a JSON array and its errors. */
#include "ir/base.h"
#include "runtime/data.h"
#include "runtime/jinja.h"
#include "runtime/prompt.h"
#include "tests/check.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FIX AXO_SOURCE_DIR "/tests/reference/"

static int ids_equal(const int32_t *a, size_t n, const json_t *b) {
    if (n != json_array_size(b)) return 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != json_integer_value(json_array_get(b, i))) return 0;
    return 1;
}

static void dump(const char *what, const int32_t *a, size_t n, const json_t *b) {
    fprintf(stderr, "  %s axo:    ", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", a[i]);
    fprintf(stderr, "\n  %s axolotl:", what);
    for (size_t i = 0; i < json_array_size(b); i++) fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(b, i)));
    fprintf(stderr, "\n");
}

static int load_case(const char *name, rt_ds_spec *spec, rt_tok_setup *setup, int64_t *seq_len, ax_arena *ar) {
    char path[600];
    snprintf(path, sizeof path, FIX "prompts/%s/case.json", name);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) return -1;
    char *spec_js = json_dumps(json_object_get(c, "spec"), JSON_COMPACT);
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_ds_spec_from_json(spec_js, spec, ar, path, &d);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    free(spec_js);
    const json_t *s = json_object_get(c, "setup");
    memset(setup, 0, sizeof *setup);
    setup->path = ax_arena_printf(ar, FIX "tokenizers/%s/tokenizer.json", json_string_value(json_object_get(s, "tokenizer")));
    const json_t *bos = json_object_get(s, "bos"), *eos = json_object_get(s, "eos");
    setup->bos = json_is_string(bos) ? ax_arena_strdup(ar, json_string_value(bos)) : NULL;
    setup->eos = json_is_string(eos) ? ax_arena_strdup(ar, json_string_value(eos)) : NULL;
    const json_t *pad = json_object_get(s, "pad"), *unk = json_object_get(s, "unk");
    setup->pad = json_is_string(pad) ? ax_arena_strdup(ar, json_string_value(pad)) : NULL;
    setup->unk = json_is_string(unk) ? ax_arena_strdup(ar, json_string_value(unk)) : NULL;
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(s, "eot_tokens"), i, x) setup->eot[setup->neot++] = ax_arena_strdup(ar, json_string_value(x));
    setup->train_on_inputs = json_is_true(json_object_get(s, "train_on_inputs"));
    setup->mistral_name = json_is_true(json_object_get(s, "mistral_name"));
    *seq_len = json_integer_value(json_object_get(s, "sequence_len"));
    json_decref(c);
    return rc;
}

static void check_case(const char *name) {
    ax_arena *ar = ax_arena_create();
    rt_ds_spec spec;
    rt_tok_setup setup;
    int64_t seq_len;
    CHECK_MSG(load_case(name, &spec, &setup, &seq_len, ar) == 0, "%s", name);
    /* the spec survives its JSON round trip unchanged */
    char *js = rt_ds_spec_json(&spec);
    rt_ds_spec again;
    ax_diag d;
    ax_diag_init(&d);
    CHECK(rt_ds_spec_from_json(js, &again, ar, "x", &d) == 0);
    char *js2 = rt_ds_spec_json(&again);
    CHECK_STREQ(js, js2);
    free(js);
    free(js2);
    rt_prompter p;
    CHECK_MSG(rt_prompter_init(&p, &setup, seq_len, &d) == 0, "%s", name);
    ax_diag_print(&d, stderr);
    char path[600];
    snprintf(path, sizeof path, FIX "prompts/%s/rows.jsonl", name);
    FILE *rows = fopen(path, "r");
    snprintf(path, sizeof path, FIX "prompts/%s/expected.jsonl", name);
    FILE *exp = fopen(path, "r");
    CHECK(rows && exp);
    char *line = NULL, *eline = NULL;
    size_t cap = 0, ecap = 0;
    int nrow = 0, nsamples = 0, bad = 0;
    while (rows && exp && getline(&line, &cap, rows) > 0) {
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        ax_buf ids = {0}, labels = {0}, lens = {0};
        char where[64];
        snprintf(where, sizeof where, "%s:%d", name, ++nrow);
        CHECK_MSG(rt_prompt_row(&p, &spec, row, where, &ids, &labels, &lens, &d) == 0, "%s", where);
        const int64_t *ln = (const int64_t *)(void *)lens.data;
        size_t at = 0;
        for (size_t k = 0; k < lens.len / sizeof *ln; k++) {
            if (getline(&eline, &ecap, exp) <= 0) {
                bad++;
                break;
            }
            json_t *e = json_loads(eline, 0, &je);
            const int32_t *a = (const int32_t *)(void *)ids.data + at, *l = (const int32_t *)(void *)labels.data + at;
            int ok = ids_equal(a, (size_t)ln[k], json_object_get(e, "input_ids")) &&
                     ids_equal(l, (size_t)ln[k], json_object_get(e, "labels"));
            if (!ok && bad++ < 3) {
                fprintf(stderr, "%s sample %zu differs from Axolotl\n", where, k);
                dump("ids", a, (size_t)ln[k], json_object_get(e, "input_ids"));
                dump("labels", l, (size_t)ln[k], json_object_get(e, "labels"));
            }
            at += (size_t)ln[k];
            nsamples++;
            json_decref(e);
        }
        ax_buf_free(&ids);
        ax_buf_free(&labels);
        ax_buf_free(&lens);
        json_decref(row);
    }
    CHECK_MSG(exp && getline(&eline, &ecap, exp) <= 0, "%s: Axolotl made more samples", name);
    CHECK_MSG(bad == 0, "%s: %d samples differ", name, bad);
    CHECK_MSG(nsamples > 0, "%s: no samples", name);
    free(line);
    free(eline);
    if (rows) fclose(rows);
    if (exp) fclose(exp);
    rt_prompter_free(&p);
    ax_diag_free(&d);
    ax_arena_destroy(ar);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_fixtures(void) {
    DIR *dir = opendir(FIX "prompts");
    CHECK(dir != NULL);
    if (!dir) return;
    char *names[128];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && n < 128)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(dir);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    CHECK(n >= 15);
    for (int i = 0; i < n; i++) {
        check_case(names[i]);
        free(names[i]);
    }
}

/* the loader: a JSON array file, labels-free rows skipped, errors with the row */
static void test_loader(void) {
    ax_arena *ar = ax_arena_create();
    rt_ds_spec spec;
    rt_tok_setup setup;
    int64_t seq_len;
    CHECK(load_case("alpaca-llama3", &spec, &setup, &seq_len, ar) == 0);
    ax_diag d;
    ax_diag_init(&d);
    rt_prompter p;
    CHECK(rt_prompter_init(&p, &setup, seq_len, &d) == 0);
    const char *arr = "[{\"instruction\": \"a\", \"output\": \"b\"},\n {\"instruction\": \"c\", \"output\": \"\"},\n"
                      " {\"instruction\": \"d\", \"output\": \"e f\"}]";
    rt_dataset ds = {0};
    CHECK_EQ(rt_data_load_formatted_text(arr, strlen(arr), "a.json", &spec, &p, 1024, &ds, &d), 0);
    CHECK_EQ(ds.nsamples, 3); /* the empty output trains nothing, but stays, as in Axolotl's dataset */
    CHECK_EQ(ds.nempty, 0);
    {
        int64_t labelled = 0; /* ... and packing drops it, as Axolotl's process_datasets_for_packing does */
        for (int pack = 0; pack < 2; pack++) {
            rt_data_opts o = {.seq_len = 4096, .sample_packing = pack, .seed = 1};
            rt_rows r;
            CHECK_EQ(rt_data_build_epoch(&ds, &o, 0, &r, &d), 0);
            labelled = r.nseqs;
            CHECK_EQ(r.nnolabel, pack ? 1 : 0);
            rt_rows_free(&r);
        }
        CHECK_EQ(labelled, 2);
    }
    rt_data_free(&ds);
    /* token ids past the model's vocab */
    CHECK_EQ(rt_data_load_formatted_text(arr, strlen(arr), "a.json", &spec, &p, 300, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "a.json: row 0"));
    CHECK(ax_diag_contains(&d, "outside the model's vocab_size 300"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    const char *lines = "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"a\"}\n{\"output\": 3, "
                        "\"instruction\": \"x\"}\n{bad json\n";
    CHECK_EQ(rt_data_load_formatted_text(lines, strlen(lines), "t.jsonl", &spec, &p, 1024, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "t.jsonl:3"));
    CHECK(ax_diag_contains(&d, "\"output\": missing"));
    CHECK(ax_diag_contains(&d, "t.jsonl:4"));
    CHECK(ax_diag_contains(&d, "\"output\": expected a string"));
    CHECK(ax_diag_contains(&d, "t.jsonl:5:4"));
    CHECK(ax_diag_contains(&d, "invalid JSON"));
    ax_diag_free(&d);
    rt_prompter_free(&p);

    /* chat: a message without content, a tool message */
    CHECK(load_case("chat-chatml-qwen2", &spec, &setup, &seq_len, ar) == 0);
    ax_diag_init(&d);
    CHECK(rt_prompter_init(&p, &setup, seq_len, &d) == 0);
    const char *chat = "{\"messages\": [{\"role\": \"user\"}]}\n{\"messages\": []}\n"
                       "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}\n";
    CHECK_EQ(rt_data_load_formatted_text(chat, strlen(chat), "c.jsonl", &spec, &p, 1024, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "c.jsonl:1"));
    CHECK(ax_diag_contains(&d, "messages[0]: expected \"role\" a string and \"content\" a string or a list of parts"));
    CHECK(ax_diag_contains(&d, "c.jsonl:2"));
    CHECK(ax_diag_contains(&d, "\"messages\": expected a non-empty list"));
    CHECK(ax_diag_contains(&d, "c.jsonl:3"));
    CHECK(ax_diag_contains(&d, "messages[0]: tool messages are not supported"));
    ax_diag_free(&d);
    rt_prompter_free(&p);

    /* a Jinja template: tool messages are rendered; raise_exception and a
     * template error are data errors naming the row */
    spec.jinja = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system: ' ~ m.content) }}"
                 "{% endif %}{{ m.content }}{{ m.nosuch.attr if m.role == 'tool' }}{% endfor %}";
    ax_diag_init(&d);
    CHECK(rt_prompter_init(&p, &setup, seq_len, &d) == 0);
    const char *jrows = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n"
                        "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}]}\n"
                        "{\"messages\": [{\"role\": \"tool\", \"content\": \"t\"}]}\n";
    CHECK_EQ(rt_data_load_formatted_text(jrows, strlen(jrows), "j.jsonl", &spec, &p, 1024, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "j.jsonl:2"));
    CHECK(ax_diag_contains(&d, "the chat template refused the conversation: no system: S (template line 1)"));
    CHECK(ax_diag_contains(&d, "j.jsonl:3"));
    CHECK(ax_diag_contains(&d, "the chat template failed at its line 1: 'dict object' has no attribute 'nosuch'"));
    CHECK(!ax_diag_contains(&d, "j.jsonl:1"));
    ax_diag_free(&d);
    rt_prompter_free(&p);
    spec.jinja = NULL;

    /* content parts and training details that cannot be used: a part text
     * that is not a string, a detail that is not a list or misses a key, and
     * text the tokenizer's normalizer (qwen2's NFC) rewrites, whose character
     * offsets no token has; each error names the row and the message */
    CHECK(load_case("chat-detail-qwen2", &spec, &setup, &seq_len, ar) == 0);
    ax_diag_init(&d);
    CHECK(rt_prompter_init(&p, &setup, seq_len, &d) == 0);
    const char *drows =
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"text\": 5}]}]}\n"
        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"abc\", \"detail\": {\"begin_offset\": 0}}]}\n"
        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"abc\", \"detail\": [{\"begin_offset\": 0, \"train\": true}]}]}\n"
        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"cafe\\u0301 x\", \"detail\": [{\"begin_offset\": 0, "
        "\"end_offset\": 2, \"train\": true}]}]}\n"
        "{\"messages\": [{\"role\": \"assistant\", \"content\": [{\"text\": \"fine\", \"train\": true}]}]}\n";
    CHECK_EQ(rt_data_load_formatted_text(drows, strlen(drows), "p.jsonl", &spec, &p, 1024, &ds, &d), -1);
    CHECK(ax_diag_contains(&d, "p.jsonl:1"));
    CHECK(ax_diag_contains(&d, "messages[0].content[0]: expected the part's text as a string"));
    CHECK(ax_diag_contains(&d, "p.jsonl:2"));
    CHECK(ax_diag_contains(&d, "messages[0] training detail: expected a list of {begin_offset, end_offset, train}"));
    CHECK(ax_diag_contains(&d, "p.jsonl:3"));
    CHECK(ax_diag_contains(&d, "messages[0] training detail[0]: expected {\"begin_offset\": number, \"end_offset\""));
    CHECK(ax_diag_contains(&d, "p.jsonl:4"));
    CHECK(ax_diag_contains(&d, "the tokenizer's tokens do not spell this text back"));
    CHECK(!ax_diag_contains(&d, "p.jsonl:5"));
    ax_diag_free(&d);
    rt_prompter_free(&p);

    /* an eot token that is not one token */
    setup.eot[0] = "<|im_end|> and more";
    setup.neot = 1;
    ax_diag_init(&d);
    CHECK_EQ(rt_prompter_init(&p, &setup, seq_len, &d), -1);
    CHECK(ax_diag_contains(&d, "eot_tokens: \"<|im_end|> and more\" is not one token"));
    ax_diag_free(&d);
    ax_arena_destroy(ar);
}

static void test_render(void) {
    const char *roles[] = {"system", "user", "assistant"}, *contents[] = {"S", "U", " A "};
    ax_buf b = {0};
    const char *err;
    CHECK_EQ(rt_chat_render(RT_TPL_CHATML, roles + 1, contents + 1, NULL, 2, -1, NULL, &b, &err), 0);
    ax_buf_u8(&b, 0);
    CHECK_STREQ(b.data, "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n A <|im_end|>\n");
    b.len = 0;
    CHECK_EQ(rt_chat_render(RT_TPL_LLAMA3, roles, contents, NULL, 3, -1, "<|begin_of_text|>", &b, &err), 0);
    ax_buf_u8(&b, 0);
    CHECK_STREQ(b.data, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
    b.len = 0;
    CHECK_EQ(rt_chat_render(RT_TPL_QWEN25, roles + 1, contents + 1, NULL, 1, -1, NULL, &b, &err), 0);
    ax_buf_u8(&b, 0);
    CHECK_CONTAINS(b.data, "<|im_start|>system\nYou are Qwen");
    /* gemma refuses what its Jinja template raises on */
    b.len = 0;
    CHECK_EQ(rt_chat_render(RT_TPL_GEMMA, roles, contents, NULL, 3, -1, "<bos>", &b, &err), -1);
    CHECK_CONTAINS(err, "System role not supported");
    const char *bad_roles[] = {"user", "user"};
    CHECK_EQ(rt_chat_render(RT_TPL_GEMMA, bad_roles, contents, NULL, 2, -1, "<bos>", &b, &err), -1);
    CHECK_CONTAINS(err, "roles must alternate");
    ax_buf_free(&b);
}

/* rt_tpl_jinja: each C renderer's template as Jinja (what axorun saves as
 * chat_template.jinja) renders the same text through runtime/jinja.c, on
 * conversations with and without a system turn, untrimmed content, a
 * single turn, none, and with add_generation_prompt; gemma's refusals are
 * the template's raise_exception too. */
static void test_tpl_jinja(void) {
    static const char *const gen[RT_TPL_COUNT] = {"<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n",
                                                  "<|im_start|>assistant\n", "<start_of_turn>model\n", "",
                                                  "<|im_start|>assistant\n<think>\n\n", "<start_of_turn>model\n"};
    static const char *const R1[] = {"system", "user", "assistant", "user", "assistant"};
    static const char *const C1[] = {"Be brief.", "  hi there \n", "hello!\n\n", "2+2?", " 4 "};
    static const char *const R2[] = {"user", "assistant", "user"};
    static const char *const C2[] = {"a\tb", "c", "\n d"};
    static const char *const R3[] = {"user", "user"};
    static const char *const C3[] = {"x", "y"};
    /* qwen3: thinking in the content or in reasoning_content, tool responses, a system turn later on */
    static const char *const R4[] = {"system", "user", "assistant", "user", "assistant", "user", "system", "assistant"};
    static const char *const C4[] = {"sys", "q1", "<think>\nplan a\n</think>\n\nanswer a", "q2", "b <think>x</think> y</think>\nz",
                                     "<tool_response>r</tool_response>", "late", "\n<think>\n\n</think>final"};
    static const char *const Z4[] = {NULL, NULL, NULL, NULL, "given reasoning\n", NULL, NULL, NULL};
    static const char *const Z5[] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, ""};
    struct { const char *const *r, *const *c, *const *z; int n; } cv[] = {
        {R1, C1, NULL, 5}, {R1, C1, NULL, 1}, {R2, C2, NULL, 3}, {R2, C2, NULL, 2}, {R3, C3, NULL, 2}, {R1 + 1, C1 + 1, NULL, 4},
        {R1, C1, NULL, 0}, {R4, C4, NULL, 8}, {R4, C4, NULL, 5}, {R4, C4, Z4, 5}, {R4, C4, Z4, 8}, {R4, C4, Z5, 8}, {R4, C4, NULL, 6}};
    for (int t = 0; t < RT_TPL_COUNT; t++) {
        const char *src = rt_tpl_jinja((rt_tpl)t);
        jinja_err je;
        jinja_tpl *jt = src ? jinja_parse(src, strlen(src), &je) : NULL;
        CHECK_MSG(jt != NULL, "%s: its Jinja text does not parse: %s", rt_tpl_name((rt_tpl)t), src ? je.msg : "none");
        if (!jt) continue;
        for (size_t k = 0; k < AX_ARRAY_LEN(cv); k++)
            for (int g = 0; g < 2; g++) {
                ax_buf want = {0}, got = {0};
                const char *err = NULL;
                ax_buf_puts(&want, "");
                int bad = rt_chat_render((rt_tpl)t, cv[k].r, cv[k].c, cv[k].z, cv[k].n, -1, "<s>", &want, &err);
                if (!bad && g) ax_buf_puts(&want, gen[t]);
                json_t *msgs = json_array();
                for (int i = 0; i < cv[k].n; i++) {
                    json_t *mj = json_pack("{s:s,s:s}", "role", cv[k].r[i], "content", cv[k].c[i]);
                    if (cv[k].z && cv[k].z[i]) json_object_set_new(mj, "reasoning_content", json_string(cv[k].z[i]));
                    json_array_append_new(msgs, mj);
                }
                json_t *vars = json_pack("{s:o,s:s,s:b}", "messages", msgs, "bos_token", "<s>", "add_generation_prompt", g);
                ax_buf_puts(&got, "");
                int jbad = jinja_render(jt, vars, &got, &je);
                json_decref(vars);
                CHECK_MSG((bad != 0) == (jbad != 0), "%s, conversation %zu: C %s, Jinja %s (%s)", rt_tpl_name((rt_tpl)t), k,
                          bad ? "refuses" : "renders", jbad ? "refuses" : "renders", jbad ? je.msg : "");
                if (bad && jbad)
                    CHECK_MSG(strstr(err, je.msg) != NULL, "%s: C says \"%s\", the template raises \"%s\"", rt_tpl_name((rt_tpl)t),
                              err, je.msg);
                if (!bad && !jbad)
                    CHECK_MSG(want.len == got.len && !memcmp(want.data, got.data, want.len),
                              "%s, conversation %zu, generation prompt %d:\nC:     [%s]\nJinja: [%s]", rt_tpl_name((rt_tpl)t), k, g,
                              want.data, got.data);
                ax_buf_free(&want);
                ax_buf_free(&got);
            }
        jinja_free(jt);
    }
}

int main(void) {
    test_tpl_jinja();
    test_fixtures();
    test_loader();
    test_render();
    return check_done();
}
