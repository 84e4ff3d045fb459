/* fuzz_dataset — a dataset file. The first byte picks how it is read (the
 * rest is the file): pre-tokenized jsonl, or rows of text through one of
 * Axolotl's types (completion, alpaca, input_output, chat_template with a
 * built-in template or the tokenizer's own Jinja one) with the bundled
 * Llama-3-style tokenizer (configs/models/tiny-llama-chat); then the rows
 * of an epoch, packed or not, with each excess_length_strategy. */
#include "tests/fuzz/fuzz.h"

#include "runtime/data.h"
#include "runtime/prompt.h"

enum { SEQ_LEN = 48, VOCAB = 768 }; /* tiny-llama-chat's vocab_size */

static const char llama3_jinja[] =
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rt_tok_setup setup;
    static rt_prompter p;
    static char tokpath[1024];
    if (!setup.path) {
        snprintf(tokpath, sizeof tokpath, "%s/configs/models/tiny-llama-chat/tokenizer.json", fz_src());
        setup.path = tokpath;
        setup.bos = "<|begin_of_text|>";
        setup.eos = "<|eot_id|>";
        setup.pad = "<|end_of_text|>";
        ax_diag d;
        ax_diag_init(&d);
        if (rt_prompter_init(&p, &setup, SEQ_LEN, &d) != 0) abort();
        ax_diag_free(&d);
    }
    if (size == 0) return 0;
    uint8_t sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *copy = (char *)fz_copy((const uint8_t *)text, len);

    rt_dataset ds = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc, kind = sel % 9;
    if (kind == 0) {
        rc = rt_data_load_text(copy, len, "f.jsonl", VOCAB, &ds, &d);
        fz_check(rc, &d, "rt_data_load_text");
    } else {
        static const rt_fmt fmts[] = {RT_FMT_COMPLETION, RT_FMT_ALPACA, RT_FMT_INPUT_OUTPUT, RT_FMT_CHAT,
                                      RT_FMT_CHAT,       RT_FMT_CHAT,   RT_FMT_CHAT,         RT_FMT_DPO};
        rt_ds_spec spec;
        rt_ds_spec_defaults(&spec, fmts[kind - 1]);
        if (kind == 5) spec.tpl = RT_TPL_QWEN3;
        if (kind == 6) spec.jinja = llama3_jinja;
        if (kind == 7) {
            spec.tpl = RT_TPL_CHATML;
            spec.train_on_eos = RT_EOT_ALL;
            spec.split_thinking = 1;
            spec.field_system = "system";
        }
        if (kind == 4) spec.tpl = RT_TPL_LLAMA3, spec.training_detail_key = "detail";
        if (kind == 8) { /* rl: dpo's strategies: every family and variant */
            static const rt_dpo_family fams[] = {RT_DPO_PASSTHROUGH, RT_DPO_CHATML, RT_DPO_LLAMA3, RT_DPO_USER, RT_DPO_ZEPHYR};
            spec.dpo_family = fams[(sel >> 3) % 5];
            spec.dpo_variant = (rt_dpo_variant)((sel >> 5) % RT_DPOV_COUNT);
            spec.ud_field_prompt = "prompt", spec.ud_field_system = "system", spec.ud_field_chosen = "chosen";
            spec.ud_field_rejected = "rejected", spec.ud_format = "[{system}] {prompt} {{x}}";
            spec.ud_chosen_format = "{chosen}!", spec.ud_rejected_format = "{rejected}?";
        }
        rc = rt_data_load_formatted_text(copy, len, "f.jsonl", &spec, &p, VOCAB, &ds, &d);
        fz_check(rc, &d, "rt_data_load_formatted_text");
    }
    if (rc == 0 && ds.nsamples > 0) {
        rt_data_opts o = {.seq_len = SEQ_LEN / 2, .sample_packing = (sel >> 3) & 1, .seed = sel, .pad_id = 0,
                          .excess = (sel >> 4) % 3, .sequential = (sel >> 7) & 1, .pack_next_fit = (sel >> 6) & 1,
                          .pack_group_size = 1 + (sel >> 2) % 9, .pack_bin_size = 1 + sel % 5};
        rt_rows rows = {0};
        ax_diag e;
        ax_diag_init(&e);
        int rrc = rt_data_build_epoch(&ds, &o, sel >> 6, &rows, &e);
        fz_check(rrc, &e, "rt_data_build_epoch");
        if (rrc == 0) { /* an epoch's steps over its rows: every row read is one the epoch built */
            const rt_batching b = {.B = 1 + sel % 3, .ga = 1 + (sel >> 2) % 3, .nranks = 1 + (sel >> 4) % 3,
                                   .drop_last = (sel >> 5) & 1};
            const rt_epoch_span sp = rt_epoch_span_of(&b, rows.nrows);
            if (rt_data_count_rows(&ds, &o, sel >> 6, &e) != rows.nrows) abort();
            for (int64_t st = 0; st < sp.nsteps; st++)
                for (int64_t i = 0; i < b.B * b.ga * b.nranks; i++) {
                    const int64_t r = rt_epoch_row(&b, &sp, st, i);
                    if (r < -1 || r >= rows.nrows || (r == -1 && st * b.B * b.ga * b.nranks + i < sp.len)) abort();
                }
        }
        rt_rows_free(&rows);
        ax_diag_free(&e);
    }
    if (rc == 0 && ds.nsamples > 1) { /* Axolotl's split: order, filters, deduplication, a shard */
        rt_split_opts so = {.seed = sel, .shuffle = !(sel >> 7), .seq_len = SEQ_LEN / 2, .excess = (sel >> 4) % 2,
                            .sample_packing = (sel >> 3) & 1, .dedup = (sel >> 5) & 1,
                            .shard_num = (sel >> 6) & 1 ? 2 : 0, .shard_idx = (sel >> 5) & 1};
        rt_dataset ev = {0};
        ax_diag e;
        ax_diag_init(&e);
        int src = rt_data_split(&ds, 0.3, &so, &ev, &e);
        fz_check(src, &e, "rt_data_split");
        if (src == 0) rt_data_axolotl_order(&ev, &so);
        rt_data_free(&ev);
        ax_diag_free(&e);
    }
    if (kind == 0 && (sel & 0x40)) { /* a file's shard of rows (JSON lines or a JSON array) */
        rt_data_source src = {.path = fz_file("s.jsonl", (const uint8_t *)text, len), .shards = 1 + sel % 3, .seed = sel};
        src.shards_idx = (sel >> 2) % src.shards;
        rt_dataset sd = {0};
        ax_diag e;
        ax_diag_init(&e);
        int r = rt_data_load_sources(&src, 1, NULL, SEQ_LEN, VOCAB, NULL, 0, NULL, &sd, &e);
        fz_check(r, &e, "rt_data_load_sources (shards)");
        rt_data_free(&sd);
        ax_diag_free(&e);
    }
    rt_data_free(&ds);
    ax_diag_free(&d);
    free(copy);
    return 0;
}
