/* tokenizer.h — Hugging Face `tokenizer.json` (the `tokenizers` library's
 * format) read and run in C, so that Axolotl configs with `datasets: -
 * type: alpaca | completion | chat_template` train without a Python
 * pre-tokenizing step.
 *
 * Pipeline, as `tokenizers` runs it for Tokenizer.encode(text):
 *  1. added tokens (`added_tokens`) are cut out of the raw text first,
 *     leftmost-longest, each becoming its own id;
 *  2. every text segment between them is normalized (`normalizer`: NFC, NFD,
 *     NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence);
 *  3. pre-tokenized into words (`pre_tokenizer`: Split with a regex or a
 *     string and any split behavior, ByteLevel with or without its GPT-2
 *     regex and add_prefix_space, Metaspace, Digits, Sequence). Regexes run
 *     on Oniguruma, the engine `tokenizers` itself uses, so \p{L}, \s and
 *     lookahead mean exactly what they mean there;
 *  4. each word goes through the BPE model (`model.type` "BPE": vocab,
 *     merges in either "a b" or ["a", "b"] form, ignore_merges,
 *     byte_fallback, unk_token, fuse_unk) — lowest merge rank first, the
 *     leftmost pair on ties;
 *  5. with add_special, the post-processor adds its tokens (TemplateProcessing
 *     "single", or a Sequence holding one; ByteLevel changes no ids).
 * Anything else in the file (another model type, a WordPiece post-processor,
 * BPE dropout, a Precompiled normalizer) is refused at load with an error that
 * names the file and the key. Checked against `tokenizers` itself on five
 * pipelines (Llama-3, Qwen2, GPT-2, Llama-2, Mistral) in test_tokenizer.
 *
 * An rt_tokenizer caches the BPE result of each word: use one per thread.
 */
#ifndef RT_TOKENIZER_H
#define RT_TOKENIZER_H

#include "ir/base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rt_tokenizer rt_tokenizer;

/* Loads `path` (a tokenizer.json). NULL after errors in d. */
rt_tokenizer *rt_tok_load(const char *path, ax_diag *d);
void rt_tok_free(rt_tokenizer *t);

/* Appends the ids of text[0..len) to out (int32 each). add_special: run the
 * post-processor (BOS for Llama). 0, or -1 with an error in d (text that is
 * not UTF-8; a word the model cannot encode and no unk_token). `where` names
 * the input in errors. */
int rt_tok_encode(rt_tokenizer *t, const char *text, size_t len, int add_special, ax_buf *out, const char *where,
                  ax_diag *d);

/* Adds `token` as an added token (cut out of raw text before the model
 * sees it, matched as written: AddedToken(normalized=False, lstrip=False,
 * rstrip=False), as Axolotl adds `tokens` and `special_tokens`), the way
 * `tokenizers`' AddedVocabulary.add_tokens does: an added token already
 * there keeps its id; a string of the model's vocab becomes an added token
 * with its vocab id; any other string gets the next id: the model vocab's
 * size, or one past the largest added id when that is already beyond it.
 * Returns the id (-1 for "", which is not added); *fresh (may be NULL) is
 * 1 when the string was not a token before. */
int32_t rt_tok_add(rt_tokenizer *t, const char *token, int *fresh);
/* added_tokens_overrides: the added token `id` becomes `token` (and so does
 * the vocab entry with that id, if any), as Axolotl rewrites tokenizer.json.
 * 0, or -1 when no added token has that id. */
int rt_tok_override(rt_tokenizer *t, int32_t id, const char *token);
/* len(tokenizer) as transformers counts it: distinct strings of the model
 * vocab and the added tokens (what Axolotl resizes the embeddings to). */
int64_t rt_tok_len(const rt_tokenizer *t);
/* The id of a token's string (added tokens first, then the vocab), or -1. */
int32_t rt_tok_id(const rt_tokenizer *t, const char *token);
/* One more than the largest id. */
int64_t rt_tok_vocab_size(const rt_tokenizer *t);
/* The ids the post-processor puts before / after a single sequence. */
int rt_tok_special_prefix(const rt_tokenizer *t, const int32_t **ids);
int rt_tok_special_suffix(const rt_tokenizer *t, const int32_t **ids);
/* Appends the text of one id as the decoder would write it (byte-level
 * and byte-fallback tokens back to bytes, the Metaspace mark back to a
 * space) to out; added tokens as they are. */
void rt_tok_piece(const rt_tokenizer *t, int32_t id, ax_buf *out);
/* The vocab's own string of an id (transformers' convert_ids_to_tokens: "Ġhello", "<|eot_id|>"), its length in
 * *len; NULL for an id the tokenizer does not have. */
const char *rt_tok_str(const rt_tokenizer *t, int64_t id, size_t *len);
/* Python's re.match(pattern, text): 1 when the pattern matches at the start
 * of text, 0 when not, -1 when it does not compile (why in err). The same
 * engine (Oniguruma, Python syntax) the pre-tokenizers use. */
int rt_re_match(const char *pattern, const char *text, char *err, size_t errcap);
/* 1 when a ByteLevel post-processor trims the spaces at either end of a
 * token from its offsets (trim_offsets); *add_prefix_space (may be NULL):
 * that processor's add_prefix_space, which spares a first token's one
 * leading space. */
int rt_tok_trims_offsets(const rt_tokenizer *t, int *add_prefix_space);
/* The path it was loaded from. */
const char *rt_tok_path(const rt_tokenizer *t);

#endif
