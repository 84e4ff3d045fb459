/* fuzz_tokcfg — a tokenizer_config.json beside the bundled Llama-3-style
 * tokenizer (configs/models/tiny-llama-chat): `axoc preprocess` of a config
 * whose chat_template dataset uses the tokenizer's own template
 * (tokenizer_default_fallback_chatml: its chat_template when there is one),
 * so the named special tokens, added_tokens_decoder entries and the Jinja
 * template it carries are read, rendered and tokenized on 4 rows of the
 * bundled chat data. Run it with -close_fd_mask=1 (preprocess prints). */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations */
#define JSON_MUTATOR_OFFSET 0
#include "tests/fuzz/json_mutator.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *cfg;
    if (!cfg) {
        char dir[700], src[1200];
        snprintf(dir, sizeof dir, "%s/m", fz_tmpdir());
        if (mkdir(dir, 0755) != 0) abort();
        const char *copy[] = {"config.json", "tokenizer.json"};
        for (int i = 0; i < 2; i++) { /* the model's own files, once */
            snprintf(src, sizeof src, "%s/configs/models/tiny-llama-chat/%s", fz_src(), copy[i]);
            size_t n;
            char *b = ax_read_file(src, &n, NULL), rel[64];
            if (!b) abort();
            snprintf(rel, sizeof rel, "m/%s", copy[i]);
            fz_put(fz_tmpdir(), rel, b, n);
            free(b);
        }
        char head[4096];
        FILE *in = NULL;
        snprintf(src, sizeof src, "%s/configs/data/toy_chat.jsonl", fz_src());
        in = fopen(src, "rb");
        if (!in) abort();
        ax_buf rows = {0};
        for (int k = 0; k < 4 && fgets(head, sizeof head, in); k++) ax_buf_puts(&rows, head);
        fclose(in);
        fz_put(fz_tmpdir(), "chat.jsonl", rows.data, rows.len);
        ax_buf_free(&rows);
        char yml[2048];
        int n = snprintf(yml, sizeof yml,
                         "base_model: m\ndatasets:\n  - path: chat.jsonl\n    type: chat_template\n"
                         "    chat_template: tokenizer_default_fallback_chatml\n    roles_to_train: [assistant]\n"
                         "sequence_len: 96\nmicro_batch_size: 1\n");
        cfg = fz_file("config.yml", (const uint8_t *)yml, (size_t)n);
    }
    fz_file("m/tokenizer_config.json", data, size);
    fz_preprocess(cfg);
    return 0;
}
