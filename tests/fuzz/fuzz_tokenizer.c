/* fuzz_tokenizer — a tokenizer.json: rt_tok_load, then encoding a fixed text
 * (ASCII, digits, accents, CJK, emoji, whitespace runs, a special-looking
 * token) with and without the post-processor, and 40 times over, adding
 * tokens, and the pieces of the ids that came out. */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations */
#define JSON_MUTATOR_OFFSET 0
#include "tests/fuzz/json_mutator.h"
#endif

#include "runtime/tokenizer.h"

static const char text[] = "Hello, world!  It's 2026-12-06: 12345 tokens\n\n\tcafé naïve 日本語 🙂 <|eot_id|> <s> x";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_file("tokenizer.json", data, size);
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *t = rt_tok_load(path, &d);
    fz_check(t ? 0 : -1, &d, "rt_tok_load");
    if (t) {
        static char longtext[40 * sizeof text]; /* buffers that grow while a text is encoded */
        if (!longtext[0])
            for (size_t k = 0; k < 40; k++) memcpy(longtext + k * (sizeof text - 1), text, sizeof text - 1);
        for (int run = 0; run < 3; run++) {
            const int special = run == 1;
            const char *in = run == 2 ? longtext : text;
            size_t inlen = run == 2 ? strlen(longtext) : sizeof text - 1;
            ax_buf ids = {0};
            ax_diag e;
            ax_diag_init(&e);
            int rc = rt_tok_encode(t, in, inlen, special, &ids, "text", &e);
            fz_check(rc, &e, "rt_tok_encode");
            int64_t n = rc == 0 ? (int64_t)(ids.len / sizeof(int32_t)) : 0;
            for (int64_t i = 0; i < n; i++) {
                int32_t id;
                memcpy(&id, ids.data + i * (int64_t)sizeof id, sizeof id);
                if (id < 0 || id >= rt_tok_vocab_size(t)) {
                    fprintf(stderr, "fuzz: rt_tok_encode gave id %d outside [0, %lld)\n", id,
                            (long long)rt_tok_vocab_size(t));
                    abort();
                }
                ax_buf piece = {0};
                rt_tok_piece(t, id, &piece);
                ax_buf_free(&piece);
            }
            ax_buf_free(&ids);
            ax_diag_free(&e);
        }
        int fresh;
        int32_t a = rt_tok_add(t, "<|fuzz_added|>", &fresh);
        if (a < 0 || rt_tok_id(t, "<|fuzz_added|>") != a) {
            fprintf(stderr, "fuzz: rt_tok_add gave %d, rt_tok_id %d\n", a, rt_tok_id(t, "<|fuzz_added|>"));
            abort();
        }
        rt_tok_free(t);
    }
    ax_diag_free(&d);
    return 0;
}
