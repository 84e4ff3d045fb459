/* preprocess.c — `axoc preprocess`: Axolotl's `axolotl preprocess` for axo.
 * Tokenizes the config's datasets exactly as axorun will, shows the first
 * samples token by token with their labels, and can write the result as a
 * pre-tokenized jsonl dataset. */
#include "codegen/compile.h"
#include "frontend/config.h"
#include "runtime/data.h"
#include "runtime/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token's text, escaped so every sample stays on one line. */
static void show_piece(const rt_tokenizer *t, int32_t id, ax_buf *out) {
    ax_buf raw = {0};
    rt_tok_piece(t, id, &raw);
    for (size_t i = 0; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.data[i];
        if (c == '\n') ax_buf_puts(out, "\\n");
        else if (c == '\t') ax_buf_puts(out, "\\t");
        else if (c == '\\') ax_buf_puts(out, "\\\\");
        else if (c < 0x20) ax_buf_printf(out, "\\x%02x", c);
        else ax_buf_append(out, &raw.data[i], 1);
    }
    ax_buf_free(&raw);
}

int cg_preprocess(const char *config_path, const char *deepspeed, int nshow, const char *out_path, int overwrite,
                  ax_diag *d) {
    ax_arena *ar = ax_arena_create();
    fe_config cfg;
    fe_model model;
    int rc = -1;
    rt_dataset ds = {0};
    rt_prompter p = {0};
    if (fe_config_load(config_path, deepspeed, &cfg, ar, d) != 0) goto out;
    if (fe_model_load_with(cfg.base_model, cfg.model_config, &model, ar, d) != 0) goto out;
    if (fe_resolve_tokenizer(&cfg, &model, ar, d) != 0) goto out;
    if (out_path && !overwrite && ax_file_exists(out_path)) {
        ax_error(d, out_path, "exists; pass --overwrite to replace it");
        goto out;
    }
    rt_data_source *src = ax_arena_alloc(ar, sizeof *src * (size_t)(cfg.ndatasets ? cfg.ndatasets : 1));
    for (int i = 0; i < cfg.ndatasets; i++) {
        src[i].path = cfg.datasets[i].path;
        src[i].shards = cfg.datasets[i].shards, src[i].shards_idx = cfg.datasets[i].shards_idx, src[i].seed = cfg.seed;
        src[i].spec = cfg.datasets[i].formatted ? &cfg.datasets[i].spec : NULL;
        src[i].loader = cfg.datasets[i].loader; /* FE_LOADER_* = RT_LOADER_* */
        src[i].slice = cfg.datasets[i].slice;
        src[i].continues = cfg.datasets[i].continues;
    }
    if (rt_data_load_sources(src, cfg.ndatasets, cfg.tok.path ? &cfg.tok : NULL, cfg.sequence_len, model.vocab_size,
                             cfg.dataset_prepared_path, 1, stdout, &ds, d) != 0)
        goto out;
    int64_t nlong = 0;
    for (int64_t i = 0; i < ds.nsamples; i++) nlong += rt_data_sample_len(&ds, i) > cfg.sequence_len;
    static const char *const fate[] = {"axorun drops them", "axorun truncates them", "axorun refuses them"};
    printf("%lld samples, %lld tokens; %lld longer than sequence_len %lld (excess_length_strategy: %s)\n",
           (long long)ds.nsamples, (long long)ds.ntokens, (long long)nlong, (long long)cfg.sequence_len,
           fate[cfg.excess_length]);
    if (cfg.tok.path && rt_prompter_init(&p, &cfg.tok, cfg.sequence_len, d) != 0) goto out;
    /* Axolotl's --debug view: each token as text(label, id); label -100 = not trained */
    for (int64_t i = 0; i < ds.nsamples && i < nshow; i++) {
        ax_buf line = {0};
        ax_buf_printf(&line, "sample %lld:", (long long)i);
        for (int64_t k = ds.offsets[i]; k < ds.offsets[i + 1]; k++) {
            ax_buf_puts(&line, " ");
            if (p.tok) show_piece(p.tok, ds.tokens[k], &line);
            ax_buf_printf(&line, "(%d, %d)", ds.labels[k], ds.tokens[k]);
        }
        printf("%.*s\n", (int)line.len, line.data);
        ax_buf_free(&line);
    }
    if (out_path) {
        ax_buf o = {0};
        for (int64_t i = 0; i < ds.nsamples; i++) {
            ax_buf_puts(&o, "{\"input_ids\": [");
            for (int64_t k = ds.offsets[i]; k < ds.offsets[i + 1]; k++)
                ax_buf_printf(&o, "%s%d", k > ds.offsets[i] ? ", " : "", ds.tokens[k]);
            ax_buf_puts(&o, "], \"labels\": [");
            for (int64_t k = ds.offsets[i]; k < ds.offsets[i + 1]; k++)
                ax_buf_printf(&o, "%s%d", k > ds.offsets[i] ? ", " : "", ds.labels[k]);
            ax_buf_puts(&o, "]}\n");
        }
        int w = ax_write_file_atomic(out_path, o.data ? o.data : "", o.len, d);
        ax_buf_free(&o);
        if (w != 0) goto out;
        printf("wrote %s (pre-tokenized: use it as `- path: %s` with no type)\n", out_path, out_path);
    }
    rc = 0;
out:
    if (p.tok) rt_prompter_free(&p);
    rt_data_free(&ds);
    ax_arena_destroy(ar);
    return rc;
}
