/* test_jinja.c — runtime/jinja.c against jinja2 itself: every case of
 * tests/reference/jinja/cases.jsonl (made by make_jinja_fixtures.py with
 * transformers' chat-template environment) renders the same text, or fails
 * where jinja2 fails (a syntax error at parse time on the same line; a
 * raise_exception with the same message); then the limits.
 *
 * `test_jinja --render TEMPLATE CONTEXT.json` renders one template (for
 * tests/reference/check_jinja_templates.py): the text on stdout, or
 * "ERROR line N: message" on stderr and exit status 2. */
#include "ir/base.h"
#include "runtime/jinja.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FIX AXO_SOURCE_DIR "/tests/reference/jinja/cases.jsonl"

static int render(const char *tpl, const json_t *ctx, ax_buf *out, jinja_err *err, int *parsed) {
    jinja_tpl *t = jinja_parse(tpl, strlen(tpl), err);
    *parsed = t != NULL;
    if (!t) return -1;
    int rc = jinja_render(t, ctx, out, err);
    jinja_free(t);
    return rc;
}

static void test_fixtures(void) {
    FILE *f = fopen(FIX, "r");
    CHECK(f != NULL);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, bad = 0, nerr = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        CHECK(c != NULL);
        if (!c) continue;
        n++;
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tpl = json_string_value(json_object_get(c, "template"));
        const char *kind = json_string_value(json_object_get(c, "error"));
        const json_t *exp = json_object_get(c, "expected");
        ax_buf out = {0};
        jinja_err err;
        int parsed;
        int rc = render(tpl, json_object_get(c, "context"), &out, &err, &parsed);
        ax_buf_u8(&out, 0);
        int ok;
        if (!kind) {
            ok = rc == 0 && out.len - 1 == json_string_length(exp) && !memcmp(out.data, json_string_value(exp), out.len - 1);
        } else if (!strcmp(kind, "syntax")) {
            nerr++;
            ok = !parsed && err.line == json_integer_value(json_object_get(c, "line"));
        } else if (!strcmp(kind, "raise")) {
            nerr++;
            ok = rc != 0 && err.raised && !strcmp(err.msg, json_string_value(json_object_get(c, "message")));
        } else {
            nerr++;
            ok = rc != 0 && !err.raised && err.msg[0];
        }
        if (!ok && bad++ < 40) {
            fprintf(stderr, "%s: differs from jinja2\n  template: %s\n", name, tpl);
            if (kind) fprintf(stderr, "  jinja2: %s error, line %lld: %s\n", kind,
                              (long long)json_integer_value(json_object_get(c, "line")),
                              json_string_value(json_object_get(c, "message")));
            else fprintf(stderr, "  jinja2: [%s]\n", json_string_value(exp));
            if (rc) fprintf(stderr, "  axo:    %s error, line %d: %s\n", parsed ? "render" : "parse", err.line, err.msg);
            else fprintf(stderr, "  axo:    [%s]\n", (const char *)out.data);
        }
        ax_buf_free(&out);
        json_decref(c);
    }
    free(line);
    fclose(f);
    printf("jinja fixtures: %d cases (%d errors), %d differ\n", n, nerr, bad);
    CHECK(n >= 150);
    CHECK_EQ(bad, 0);
}

static void expect_fail(const char *tpl, const char *ctx_js, const char *msg_part) {
    json_error_t je;
    json_t *ctx = json_loads(ctx_js, 0, &je);
    ax_buf out = {0};
    jinja_err err;
    int parsed;
    CHECK_MSG(render(tpl, ctx, &out, &err, &parsed) != 0, "%s rendered", tpl);
    CHECK_CONTAINS(err.msg, msg_part);
    ax_buf_free(&out);
    json_decref(ctx);
}

/* never crash, never hang: each limit is an error */
static void test_limits(void) {
    expect_fail("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}", "loop iterations");
    expect_fail("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "{}", "output is longer");
    expect_fail("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}", "{}", "recursion");
    expect_fail("{{ 'x' * 100000000000 }}", "{}", "too long");
    expect_fail("{{ 2 ** 70 }}", "{}", "integer overflow");
    expect_fail("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "{}",
                "memory");
    /* deep nesting is a syntax error, not a stack overflow */
    ax_buf deep = {0};
    ax_buf_puts(&deep, "{{ ");
    for (int i = 0; i < 5000; i++) ax_buf_puts(&deep, "(");
    ax_buf_puts(&deep, "1");
    for (int i = 0; i < 5000; i++) ax_buf_puts(&deep, ")");
    ax_buf_puts(&deep, " }}");
    ax_buf_u8(&deep, 0);
    jinja_err err;
    CHECK(jinja_parse(deep.data, deep.len - 1, &err) == NULL);
    CHECK_CONTAINS(err.msg, "nested too deeply");
    deep.len = 0;
    for (int i = 0; i < 3000; i++) ax_buf_puts(&deep, "{% if true %}");
    ax_buf_u8(&deep, 0);
    CHECK(jinja_parse(deep.data, deep.len - 1, &err) == NULL);
    ax_buf_free(&deep);
    /* a syntax error names the line and what was found */
    CHECK(jinja_parse("a\nb\n{% for x in %}", 18, &err) == NULL);
    CHECK_EQ(err.line, 3);
    CHECK(err.msg[0]);
}

static void expect_text(const char *tpl, const char *want) {
    json_t *ctx = json_object();
    ax_buf out = {0};
    jinja_err err;
    int parsed;
    CHECK_MSG(render(tpl, ctx, &out, &err, &parsed) == 0, "%s: %s", tpl, err.msg);
    CHECK_MSG(out.len == strlen(want) && !memcmp(out.data, want, out.len), "%s gave %.*s", tpl, (int)out.len,
              out.data ? out.data : "");
    ax_buf_free(&out);
    json_decref(ctx);
}

/* what tests/fuzz/fuzz_jinja found (its corpus replays each input; these check the results) */
static void test_fuzz_findings(void) {
    /* a filter called without an argument it needs: an error, not endless recursion in to_str */
    expect_fail("{{ 'aAb'|replace('x') }}", "{}", "replace() missing required argument 'new'");
    /* printf-style widths past INT_MAX made vsnprintf fail */
    expect_fail("{{ '%999999999999s' % 'a' }}", "{}", "format width above 256");
    expect_fail("{{ '%.1000f' % 1.5 }}", "{}", "format precision above 100");
    /* float -> int64 out of range was undefined; %c / %x of a float are Python's TypeErrors */
    expect_fail("{{ '%d' % 88888888888888888883.5 }}", "{}", "outside the 64-bit integer range");
    expect_fail("{{ '%c' % 2.5 }}", "{}", "%c requires int or char");
    expect_fail("{{ '%x' % 2.5 }}", "{}", "an integer is required, not float");
    expect_fail("{{ '%c' % 1114112 }}", "{}", "not in range(0x110000)");
    /* x[a:b, c] left a slice without its object in a tuple */
    expect_fail("{{ {'a': 1}['a':'b', 'c'] }}", "{}", "slice inside a tuple subscript");
    /* select/reject with no test name (no positional arguments at all), and repeated flags */
    const char *ok[][2] = {{"{{ [0, 1, '', 'a', none]|select|list }}", "[1, 'a']"},
                           {"{{ [0, 1, '']|reject|list }}", "[0, '']"},
                           {"{{ '%--5d|%005.1f|%+ d' % (7, 2.25, 3) }}", "7    |002.2|+3"},
                           {"{{ '%c%c|%d' % ('a', 233, -2.7) }}", "a\xc3\xa9|-2"},
                           /* i x step past int64 while every element fits; rounding away every digit */
                           {"{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904)|list }}",
                            "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]"},
                           {"{{ 1.5|round(-400) }} {{ 7|round(-400) }} {{ 1234|round(-2) }}", "0.0 0 1200"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) expect_text(ok[i][0], ok[i][1]);
}

static int render_files(const char *tpl_path, const char *ctx_path) {
    ax_diag d;
    ax_diag_init(&d);
    size_t n;
    char *src = ax_read_file(tpl_path, &n, &d);
    json_error_t je;
    json_t *ctx = json_load_file(ctx_path, 0, &je);
    if (!src || !ctx) {
        ax_diag_print(&d, stderr);
        fprintf(stderr, "cannot read %s or %s\n", tpl_path, ctx_path);
        return 1;
    }
    jinja_err err;
    ax_buf out = {0};
    jinja_tpl *t = jinja_parse(src, n, &err);
    int rc = t ? jinja_render(t, ctx, &out, &err) : -1;
    if (rc) fprintf(stderr, "ERROR line %d: %s%s\n", err.line, err.raised ? "raised: " : "", err.msg);
    else if (out.len) fwrite(out.data, 1, out.len, stdout);
    jinja_free(t);
    ax_buf_free(&out);
    json_decref(ctx);
    free(src);
    ax_diag_free(&d);
    return rc ? 2 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--render")) return render_files(argv[2], argv[3]);
    test_fixtures();
    test_limits();
    test_fuzz_findings();
    return check_done();
}
