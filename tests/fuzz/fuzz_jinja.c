/* fuzz_jinja — a chat template (tokenizer_config.json's chat_template, or
 * the config's chat_template_jinja): jinja_parse, then jinja_render with a
 * conversation as Axolotl's chat_template strategy passes it (messages with
 * a system turn, tools, bos/eos, add_generation_prompt). */
#include "tests/fuzz/fuzz.h"

#include "runtime/jinja.h"

#include <jansson.h>

static const char vars_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"What is 2+2?\"},"
    " {\"role\": \"assistant\", \"content\": \"4\", \"reasoning_content\": \"adding\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"and 3+3?\"}]},"
    " {\"role\": \"assistant\", \"content\": \"6\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
    "   {\"name\": \"add\", \"arguments\": {\"a\": 3, \"b\": 3}}}]},"
    " {\"role\": \"tool\", \"content\": \"6\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"add\", \"parameters\": {}}}],"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": false,"
    " \"enable_thinking\": true}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *vars;
    if (!vars) {
        json_error_t je;
        vars = json_loads(vars_json, 0, &je);
        if (!vars) abort();
    }
    char *src = (char *)fz_copy(data, size);
    jinja_err err = {0};
    jinja_tpl *t = jinja_parse(src, size, &err);
    if (!t && !err.msg[0]) {
        fprintf(stderr, "fuzz: jinja_parse failed without a message\n");
        abort();
    }
    if (t) {
        ax_buf out = {0};
        jinja_err rerr = {0};
        if (jinja_render(t, vars, &out, &rerr) != 0 && !rerr.msg[0] && !rerr.raised) {
            fprintf(stderr, "fuzz: jinja_render failed without a message\n");
            abort();
        }
        ax_buf_free(&out);
        jinja_free(t);
    }
    free(src);
    return 0;
}
