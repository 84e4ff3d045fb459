/* data.h — the training data pipeline: pre-tokenized jsonl -> fixed-length
 * rows of token ids, next-token targets, position ids and sequence ids.
 *
 * Input (Axolotl's pre-tokenized dataset format): one JSON object per line,
 *   {"input_ids": [int, ...],            required
 *    "labels": [int, ...],               optional, same length; -100 = ignored;
 *                                        defaults to input_ids
 *    "attention_mask": [0|1, ...]}       optional, same length; positions with
 *                                        0 are padding and are removed
 * Other keys are ignored. Blank lines are skipped. Token ids must be in
 * [0, vocab_size); labels must be -100 or in [0, vocab_size). Errors are
 * located "file:line" (":col" for JSON syntax) and name the key. A sample
 * that is empty after removing masked positions is skipped and counted in
 * rt_dataset.nempty. Several files concatenate in the order given.
 *
 * Epoch construction (rt_data_build_epoch) — deterministic, portable:
 *
 *  1. The samples kept, in the dataset's order: samples shorter than
 *     min_len (min_sample_len, 2 by default) are dropped (rt_rows.nshort);
 *     with packing, samples without a label (rt_rows.nnolabel); samples
 *     longer than seq_len are dropped (Axolotl's default
 *     excess_length_strategy), counted in rt_rows.ndropped, or cut to their
 *     first seq_len tokens (truncate, rt_rows.ntruncated), or refused
 *     (raise). Axolotl does all of this when it prepares the dataset, so the
 *     Trainer's sampler only ever sees the kept samples.
 *  2. Order: the kept samples in the order HF Trainer's RandomSampler
 *     yields them under accelerate (whose SeedableRandomSampler seeds a CPU
 *     torch.Generator with seed + epoch each epoch): torch.randperm(k) of
 *     that generator (rt_torch_randperm). With rt_data_opts.sequential the
 *     kept samples stay in the dataset's order (SequentialSampler).
 *  3. group_by_length (unpacked): HF's length groups over that order.
 *  4. Without packing: one sample per row, at positions [0, len), the rest
 *     of the row is padding.
 *     With packing, Axolotl's multipack bins, a row each: first-fit in
 *     shuffled order (a sample goes into the first row, in the order rows
 *     were opened, with room for it and fewer than pack_bin_size samples,
 *     else opens a row), in groups of pack_group_size samples; or, with
 *     pack_next_fit (Axolotl's sample_packing_sequentially), next-fit: into
 *     the current row if it fits, else a new row. A sample is never split;
 *     a row's samples keep their order.
 *
 * Row layout: four int32 arrays of nrows x seq_len, row-major:
 *   input_ids    token ids; pad_id on padding.
 *   targets      targets[t] = labels[t+1] when t+1 belongs to the same
 *                sequence, else -100 (last token of every sequence, and
 *                padding). The model never learns to predict across a
 *                packed boundary; labels[0] of a sample is never a target.
 *   position_ids 0, 1, ... restarting at 0 for every packed sequence; 0 on
 *                padding.
 *   seq_ids      the k sequences of a row get 0, 1, ..., k-1; each padding
 *                token then gets its own fresh id (k, k+1, ...), so with the
 *                rule "attend iff same seq_id and causal" a pad token attends
 *                only to itself (no empty softmax row, no leakage).
 * A token at t may attend to t' <= t iff seq_ids[t] == seq_ids[t'].
 */
#ifndef RT_DATA_H
#define RT_DATA_H

#include "ir/base.h"

#include <stdint.h>
#include <stdio.h>

#define RT_IGNORE_INDEX (-100)

typedef struct rt_dataset {
    int64_t nsamples;
    int64_t *offsets;     /* nsamples+1; sample i = tokens[offsets[i] .. offsets[i+1]) */
    int32_t *tokens;      /* input ids, masked positions removed */
    int32_t *labels;      /* same length as tokens */
    int64_t ntokens;      /* offsets[nsamples] */
    int64_t vocab_size;
    int64_t nempty;       /* samples skipped as empty after masking */
} rt_dataset;

/* Loads and concatenates the files. On error returns -1 with every error
 * (up to a limit) in d and ds empty. */
int rt_data_load(const char *const *paths, int npaths, int64_t vocab_size, rt_dataset *ds, ax_diag *d);
/* Same from one in-memory jsonl text; `name` is the file name in errors.
 * Appends to ds (ds must be zeroed or loaded with the same vocab_size). */
int rt_data_load_text(const char *text, size_t len, const char *name, int64_t vocab_size, rt_dataset *ds,
                      ax_diag *d);
/* Rows of text (JSON lines, or one JSON array of rows) through an Axolotl
 * dataset type (runtime/prompt.h), appended to ds (zeroed, or loaded with
 * the same vocab_size). A sample without any label is skipped and counted in
 * nempty. Errors are located "file:line" or "file: row N". */
struct rt_ds_spec;
struct rt_prompter;
int rt_data_load_formatted(const char *path, const struct rt_ds_spec *spec, struct rt_prompter *p, int64_t vocab_size,
                           rt_dataset *ds, ax_diag *d);
int rt_data_load_formatted_text(const char *text, size_t len, const char *name, const struct rt_ds_spec *spec,
                                struct rt_prompter *p, int64_t vocab_size, rt_dataset *ds, ax_diag *d);
/* One dataset of a config: its file and, for rows of text, its format. */
struct rt_tok_setup;
enum { RT_LOADER_JSON, RT_LOADER_PARQUET, RT_LOADER_TEXT, RT_LOADER_CSV, RT_LOADER_TSV };
typedef struct rt_data_source {
    const char *path;
    const struct rt_ds_spec *spec; /* NULL: pre-tokenized rows */
    /* shards > 0: only rows of shard shards_idx, as Axolotl's dataset.shuffle(seed).shard(shards, shards_idx)
     * takes them before it tokenizes: the file's rows (non-blank lines, or the elements of a JSON array) in
     * numpy's permutation of seed, HF datasets' contiguous shard of them, in that order */
    int64_t shards, shards_idx;
    uint64_t seed;
    int64_t *nloaded; /* or NULL: set to the samples this source added to the dataset */
    int loader;       /* RT_LOADER_*: JSON lines / a JSON array; a Parquet file, its rows (runtime/parquet.h) as
                       * JSON lines; a text file, each line a row {"text": line} (HF datasets' text loader); a CSV
                       * file (TSV: sep "\t"), its rows as HF datasets' csv loader reads them (runtime/csv.h) */
    /* HF's split slice ("train[:10%]"), as JSON {"from", "to", "unit", "rounding"} (frontend/hub.h
     * fe_parse_split), or NULL: rows [from, to) of the split, taken before shards. The split is this source and
     * the sources after it that continue it (a split of several files: their rows counted together). */
    const char *slice;
    int continues; /* this file continues the split of the source before it */
} rt_data_source;
/* A split slice (rt_data_source.slice) over a split of n rows as rows [*from, *to), as datasets'
 * ReadInstruction makes it absolute (percent boundaries rounded to the closest row, half to even, or
 * pct1_dropremainder; negative boundaries from the end; clamped). 0, or -1 with err. */
int rt_split_slice_range(const char *slice, int64_t n, int64_t *from, int64_t *to, char *err, size_t errcap);
/* Every source in order into ds (replaced); rows of text go through one
 * tokenizer (setup; NULL when every source is pre-tokenized) with
 * sequence_len seq_len. prep_dir (Axolotl's dataset_prepared_path, or
 * NULL): a text dataset's samples are read from prep_dir/<key>.axods when
 * an entry for the same file bytes, format, tokenizer, sequence_len and
 * vocab is there and whole, else tokenized and, with prep_write_ok, kept
 * there (written atomically). say: a line per text dataset there, or NULL. */
int rt_data_load_sources(const rt_data_source *src, int n, const struct rt_tok_setup *setup, int64_t seq_len,
                         int64_t vocab_size, const char *prep_dir, int prep_write_ok, FILE *say, rt_dataset *ds,
                         ax_diag *d);
/* val_set_size as Axolotl 0.19 splits (HF datasets underneath): the
 * samples in the order of numpy's default_rng(seed).permutation (its
 * merged-dataset shuffle; with shuffle 0, dataset order), less those it
 * drops first (under 2 tokens; longer than seq_len with the drop strategy;
 * with packing, no label), and of those the last n_eval go to eval, in that
 * order (HF evaluates in order); n_eval = int(val) when val > 1, else
 * ceil(val x that count) (train_test_split). ds keeps the others in dataset
 * order (the long and short ones too: the epoch drops or truncates them as
 * for any other sample). 0, or -1 when either side would be empty. */
typedef struct rt_split_opts {
    uint64_t seed;
    int shuffle;        /* shuffle_merged_datasets (default true) */
    int64_t seq_len;
    int excess;         /* RT_EXCESS_* */
    int sample_packing; /* samples without a label are dropped before the split */
    int dedup;          /* dataset_exact_deduplication: a sample equal to an earlier one (after truncation) dropped */
    int64_t min_len;    /* min_sample_len (0: 2) */
    int64_t shard_num, shard_idx; /* dataset_shard_num / _idx (0: none): HF's contiguous shard of what is left */
    /* shuffle_before_merging_datasets: with nparts > 1 datasets (parts[i] samples each, in order), each one in
     * numpy's permutation of seed before they are concatenated (and the merged shuffle, when o->shuffle) */
    int shuffle_each, nparts;
    const int64_t *parts;
    int train_in_order; /* rt_data_split: ds keeps the training samples in Axolotl's order, less those it drops */
} rt_split_opts;
int rt_data_split(rt_dataset *ds, double val, const rt_split_opts *o, rt_dataset *eval, ax_diag *d);
/* test_datasets as Axolotl prepares them for evaluation (and a training set
 * it shards): the order of numpy's permutation (when o->shuffle), less the
 * samples it drops, then o's shard (as rt_data_split's). */
void rt_data_axolotl_order(rt_dataset *ds, const rt_split_opts *o);
/* Every sample cut to its first len tokens (a shorter eval_sequence_len under the truncate strategy). */
void rt_data_truncate(rt_dataset *ds, int64_t len);
/* A training set in Axolotl's merged order (o's shuffles: HF datasets' shuffle(seed) of a lone dataset too, as
 * merge_datasets does unless shuffle_merged_datasets is false or curriculum_sampling is set; the sampler then
 * permutes that order), and with o->dedup (dataset_exact_deduplication) every sample equal (tokens and labels,
 * each cut to seq_len under the truncate strategy) to one before it in that order removed. Returns how many. */
int64_t rt_data_merge_order(rt_dataset *ds, const rt_split_opts *o);
void rt_data_free(rt_dataset *ds);
/* The length of the UTF-8 sequence at p (of n bytes) as Python's strict utf-8 codec takes it (no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
int rt_utf8_len(const unsigned char *p, size_t n);
/* buf[0..len) decodes as UTF-8 (rt_utf8_len) and holds no NUL: 0, or -1 with an error at name:line saying that
 * HF datasets' `loader` loader stops there. */
int rt_utf8_check(const char *buf, size_t len, const char *name, const char *loader, ax_diag *d);
/* s[0..n) (UTF-8) as a JSON string, quotes included, into out. */
void rt_json_str(ax_buf *out, const char *s, size_t n);
/* HF datasets' text loader (sample_by "line", what Axolotl's ds_type text and .txt files get): the rows of a
 * UTF-8 file buf[0..len), one per line, as JSON lines {"text": line} into out. Lines end at "\n", "\r\n" or
 * "\r" (Python's universal newlines) and keep no line break; an empty line is a row ""; a last line without a
 * break is a row; other separators (U+2028, form feed, ...) stay inside the line. A UTF-8 BOM is kept, as
 * Python's "utf-8" codec keeps it. Invalid UTF-8 (Python's strict codec) and NUL are errors naming name:line. */
int rt_text_rows(const char *buf, size_t len, const char *name, ax_buf *out, ax_diag *d);
static inline int64_t rt_data_sample_len(const rt_dataset *ds, int64_t i) {
    return ds->offsets[i + 1] - ds->offsets[i];
}

typedef struct rt_data_opts {
    int64_t seq_len;      /* sequence_len: a sample's most tokens, and the row length unless row_len says */
    int64_t row_len;      /* packed: a row's tokens (a bin of micro_batch_size x sequence_len: Axolotl's multipack
                           * layout); 0: seq_len */
    int sample_packing;   /* 0: one sample per row; 1: next-fit packing */
    int sequential;       /* 1: the dataset's order, not shuffled (HF evaluates in order) */
    uint64_t seed;
    int32_t pad_id;       /* in [0, vocab_size) */
    int excess;           /* a sample longer than seq_len (Axolotl's excess_length_strategy):
                           * RT_EXCESS_DROP (default), _TRUNCATE (its first seq_len tokens), _RAISE (an error) */
    int64_t min_len;      /* min_sample_len: shorter samples are dropped (0: Axolotl's default, 2) */
    /* packing: Axolotl's first-fit in groups of pack_group_size samples (sample_packing_group_size, 0: 100000),
     * at most pack_bin_size samples a row (sample_packing_bin_size, 0: 200); or, with pack_next_fit
     * (sample_packing_sequentially), next-fit */
    int pack_next_fit;
    int64_t pack_group_size, pack_bin_size;
    /* group_by_length (unpacked rows): HF's LengthGroupedSampler over the shuffled order, for batches of
     * group_batch samples: megabatches of min(n / (4 x group_batch), 50) (at least 1) x group_batch samples, each
     * sorted by length, longest first (stably), and the longest sample of all moved to the front; 0: off */
    int64_t group_batch;
} rt_data_opts;
enum { RT_EXCESS_DROP, RT_EXCESS_TRUNCATE, RT_EXCESS_RAISE };

/* One sequence placed in a row. */
typedef struct rt_row_seq {
    int64_t sample;       /* index into the dataset */
    int32_t start, len;   /* token range [start, start+len) of the row */
} rt_row_seq;

typedef struct rt_rows {
    int64_t nrows, seq_len;
    int32_t *input_ids, *targets, *position_ids, *seq_ids; /* nrows * seq_len each */
    int64_t *row_seq_off; /* nrows+1: row r's sequences are seqs[row_seq_off[r] .. row_seq_off[r+1]) */
    rt_row_seq *seqs;     /* nseqs, in row order (= shuffled sample order) */
    int64_t nseqs;
    int64_t ntargets;     /* targets != -100 over all rows */
    int64_t ndropped;     /* samples longer than seq_len, dropped */
    int64_t nshort;       /* samples shorter than min_len, dropped */
    int64_t nnolabel;     /* with packing: samples without a label, dropped (Axolotl's process_datasets_for_packing) */
    int64_t ntruncated;   /* samples longer than seq_len, truncated */
} rt_rows;

/* numpy's np.random.default_rng(seed).permutation(n) into out[n], exactly:
 * SeedSequence(seed) -> PCG64 (XSL-RR 128/64) -> Generator.shuffle of
 * arange(n) (Fisher-Yates from the back, j = random_interval(i): masked
 * rejection on 32-bit draws below 2^32). Hugging Face datasets'
 * Dataset.shuffle(seed) orders rows with it. */
void rt_np_permutation(uint64_t seed, int64_t n, int64_t *out);
/* torch.randperm(n, generator=g) into out[n], exactly, for a CPU generator
 * after g.manual_seed(seed): MT19937 seeded with the seed's low 32 bits
 * (init_genrand), then randperm_cpu's swaps from the front, element i with
 * i + random() % (n - i), random() being one 32-bit draw. */
void rt_torch_randperm(uint64_t seed, int64_t n, int64_t *out);
/* From n = UINT32_MAX / 20 on, randperm_cpu draws another way (64-bit draws): place_rows refuses that many. */
#define RT_TORCH_RANDPERM_MAX ((int64_t)(4294967295u / 20u))
/* SplitMix64 (state += 0x9E3779B97F4A7C15, then the published mix): the
 * deterministic stream of seeds for dropout, noise and new weights. */
uint64_t rt_splitmix64(uint64_t *state);
/* The sampler's order of an epoch's n kept samples (step 2), into order[n]:
 * rt_torch_randperm(seed + epoch, n), as accelerate's SeedableRandomSampler
 * draws it for HF Trainer's RandomSampler (epoch counted from 0). */
void rt_data_epoch_order(int64_t n, uint64_t seed, int64_t epoch, int64_t *order);
/* Builds all rows of one epoch into *out (freed with rt_rows_free). */
int rt_data_build_epoch(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, rt_rows *out, ax_diag *d);
/* The number of rows rt_data_build_epoch would build (-1 on its errors). */
int64_t rt_data_count_rows(const rt_dataset *ds, const rt_data_opts *o, int64_t epoch, ax_diag *d);

/* An epoch's rows batched as HF Trainer batches Axolotl's DataLoader under
 * accelerate (BatchSamplerShard, even_batches), for B rows per micro-batch,
 * ga micro-batches per step and nranks data-parallel ranks (Bg = B x nranks
 * rows per global micro-batch, G = Bg x ga per step):
 *  - the stream: the epoch's rows in order; with drop_last
 *    (dataloader_drop_last) cut to a multiple of Bg; else on more than one
 *    rank topped up to a multiple of Bg with rows from its start again (row
 *    k of the top-up is row k mod min(nrows, Bg)), as accelerate completes
 *    the last batches; on one rank (which accelerate does not shard) as it
 *    is, its last micro-batch short;
 *  - steps: ceil(len / G); step j takes stream rows [j G, j G + G), and past
 *    the stream's end its rows are empty (no target): HF's last update of an
 *    epoch accumulates fewer micro-batches, and its loss is normalised by the
 *    targets they hold, which an empty row does not change.
 * Which rank takes which micro-batch of a step does not change its sum. */
typedef struct rt_batching {
    int64_t B, ga, nranks;
    int drop_last;
} rt_batching;
typedef struct rt_epoch_span {
    int64_t nrows;  /* the rows the epoch built */
    int64_t len;    /* rows of its stream */
    int64_t nsteps; /* steps of the epoch (0: not one micro-batch) */
} rt_epoch_span;
rt_epoch_span rt_epoch_span_of(const rt_batching *b, int64_t nrows);
/* Row of step `step` (of the epoch), position i in [0, G): a row index in [0, nrows), or -1 for an empty row. */
int64_t rt_epoch_row(const rt_batching *b, const rt_epoch_span *e, int64_t step, int64_t i);
void rt_rows_free(rt_rows *r);
/* Targets != -100 in rows [row_begin, row_begin+row_count) (clamped to the
 * rows that exist). The loss is normalised by this count over the global
 * batch. */
int64_t rt_rows_count_targets(const rt_rows *r, int64_t row_begin, int64_t row_count);

#endif
