/* test_untrained: fix_untrained_tokens (runtime/untrained.c), Axolotl's
 * rules worked through by hand on small matrices. */
#include "ir/base.h"
#include "runtime/untrained.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

enum { V = 8, H = 3 };

static void load(const char *text, rt_dataset *ds) {
    ax_diag d;
    ax_diag_init(&d);
    memset(ds, 0, sizeof *ds);
    CHECK_EQ(rt_data_load_text(text, strlen(text), "t.jsonl", V, ds, &d), 0);
    ax_diag_free(&d);
}

/* rows: 0 (the pad token) and 2, 5, 6 have embed rows <= 1e-16 (row 2 small negative values); lm_head rows 2 and 5
 * round to the same 3 decimals (a repeat: untrained), row 6's lm_head row is its own and above eps (trained); the
 * config adds token 7 (trained). Tokens 2 and 7 occur (3 and 1 times), 5 never; token 1 is the most frequent (5). */
static void fill(float *e, float *o) {
    for (int i = 0; i < V * H; i++) e[i] = 0.01f * (float)(i + 1), o[i] = -0.02f * (float)(i + 3);
    for (int j = 0; j < H; j++) {
        e[0 * H + j] = 0, o[0 * H + j] = 0;
        e[2 * H + j] = -1e-3f * (float)(j + 1), o[2 * H + j] = 0.12341f + (float)j;
        e[5 * H + j] = 0, o[5 * H + j] = 0.12338f + (float)j; /* rounds to 0.123 + j as row 2's does */
        e[6 * H + j] = 1e-17f, o[6 * H + j] = 0.5f;
    }
}

static void test_rows(void) {
    float e[V * H], o[V * H];
    fill(e, o);
    rt_dataset ds;
    load("{\"input_ids\": [1, 2, 1, 3]}\n{\"input_ids\": [1, 2, 2, 7]}\n{\"input_ids\": [1, 1, 4]}\n", &ds);
    const int64_t ids[] = {7};
    rt_untrained_in in = {.embed = e, .lm_head = o, .V = V, .H = H, .pad_id = 0, .ids = ids, .nids = 1, .train = &ds};
    rt_untrained_fix fx;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
    CHECK_EQ(fx.nfound, 3); /* 2, 5 (untrained) and 7 (listed); 0 is the pad, 6 trained by its lm_head row */
    CHECK_EQ(fx.n, 2);      /* 5 does not occur */
    CHECK(fx.n == 2 && fx.ids[0] == 2 && fx.ids[1] == 7);
    /* mean: (sum of all rows - rows 2, 5, 7) / (8 - 2 untrained), in f32; scale: count / 5 */
    double worst = 0;
    for (int w = 0; w < 2 && fx.n == 2; w++) {
        const float *m = w ? o : e;
        for (int j = 0; j < H; j++) {
            double all = 0, sub = 0;
            for (int i = 0; i < V; i++) all += m[i * H + j];
            sub = (double)m[2 * H + j] + m[5 * H + j] + m[7 * H + j];
            float mean = ((float)all - (float)sub) / 6.0f;
            const double *got = w ? fx.lm_head : fx.embed;
            worst = fmax(worst, fabs(got[0 * H + j] - (double)mean * (3.0 / 5.0)));
            worst = fmax(worst, fabs(got[1 * H + j] - (double)mean * (1.0 / 5.0)));
        }
    }
    CHECK_MSG(worst == 0, "new rows differ from the hand computation by %g", worst);
    rt_untrained_free(&fx);

    /* without the repeat (row 5's lm_head row rounds elsewhere) row 2 is trained by its lm_head row: only 7 */
    for (int j = 0; j < H; j++) o[5 * H + j] = 0.1236f + (float)j;
    CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
    CHECK(fx.nfound == 1 && fx.n == 1 && fx.ids[0] == 7);
    rt_untrained_free(&fx);
    /* and with no id listed, nothing */
    in.nids = 0;
    CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
    CHECK(fx.nfound == 0 && fx.n == 0);
    rt_untrained_free(&fx);
    /* -0.0 and 0.0 are different bytes to Axolotl's row hash: lm_head rows of -0.0004 (rounding to -0.0) and of 0
     * are no repeat, but both are <= eps, so rows 2 and 5 are untrained all the same */
    fill(e, o);
    for (int j = 0; j < H; j++) o[2 * H + j] = -0.0004f, o[5 * H + j] = 0;
    CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
    CHECK(fx.nfound == 2 && fx.n == 1 && fx.ids[0] == 2);
    rt_untrained_free(&fx);
    rt_data_free(&ds);
    ax_diag_free(&d);
}

/* Axolotl looks for the tokens in the first and the last 250 samples only (and in the chat template): a token
 * seen only in the middle of 600 samples changes nothing; in sample 0 or 599 it is fixed */
static void test_where(void) {
    float e[V * H], o[V * H];
    fill(e, o);
    const int at[] = {300, 0, 249, 350, 599};
    const int64_t want[] = {0, 1, 1, 1, 1};
    for (int k = 0; k < 5; k++) {
        ax_buf t = {0};
        for (int s = 0; s < 600; s++) ax_buf_puts(&t, s == at[k] ? "{\"input_ids\": [1, 2]}\n" : "{\"input_ids\": [1, 3]}\n");
        rt_dataset ds;
        load(t.data, &ds);
        rt_untrained_in in = {.embed = e, .lm_head = o, .V = V, .H = H, .pad_id = 0, .train = &ds};
        rt_untrained_fix fx;
        ax_diag d;
        ax_diag_init(&d);
        CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
        CHECK_MSG(fx.n == want[k], "token 2 in sample %d of 600: %lld rows", at[k], (long long)fx.n);
        rt_untrained_free(&fx);
        rt_data_free(&ds);
        ax_diag_free(&d);
        ax_buf_free(&t);
    }
}

/* ... or in the tokenizer's chat template, as its vocab string: token 2 is "#" in the bundled chat tokenizer */
static void test_template(void) {
    float e[V * H], o[V * H];
    fill(e, o);
    ax_diag d;
    ax_diag_init(&d);
    rt_tokenizer *tok = rt_tok_load(AXO_SOURCE_DIR "/configs/models/tiny-llama-chat/tokenizer.json", &d);
    CHECK(tok != NULL);
    ax_buf t = {0};
    for (int s = 0; s < 600; s++) ax_buf_puts(&t, s == 300 ? "{\"input_ids\": [1, 2]}\n" : "{\"input_ids\": [1, 3]}\n");
    rt_dataset ds;
    load(t.data, &ds);
    const char *tpl[] = {"{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}", "{{ '#' + m.content }}"};
    for (int k = 0; k < 2 && tok; k++) {
        rt_untrained_in in = {.embed = e, .lm_head = o, .V = V, .H = H, .pad_id = 0, .train = &ds,
                              .chat_template = tpl[k], .tok = tok, .tok_len = rt_tok_len(tok)};
        rt_untrained_fix fx;
        CHECK_EQ(rt_untrained_compute(&in, &fx, &d), 0);
        CHECK_MSG(fx.n == k, "template %d: %lld rows", k, (long long)fx.n);
        rt_untrained_free(&fx);
    }
    if (tok) rt_tok_free(tok);
    rt_data_free(&ds);
    ax_buf_free(&t);
    ax_diag_free(&d);
}

int main(void) {
    test_rows();
    test_where();
    test_template();
    return check_done();
}
