/* modeldir.h — publishing a model directory atomically.
 *
 * Every saver (the final model, checkpoint-N/, sharded checkpoints, merged
 * models) writes into DIR.tmp-PID and then publishes it: an existing DIR is
 * moved aside to DIR.old-PID, the new one renamed into place, the old one
 * removed, so one complete version exists at every moment and nothing a user
 * wrote is lost when a save fails half way.
 */
#ifndef RT_MODELDIR_H
#define RT_MODELDIR_H

#include "ir/base.h"

/* Checks DIR may be written (absent, or overwrite) and creates the temp dir
 * DIR.tmp-PID in tmp (cap bytes; pid is the process id, or rank 0's in a
 * multi-process save). *exists: DIR exists now. 0, or -1 with d filled. */
int rt_modeldir_begin(const char *dir, int overwrite, long pid, char *tmp, size_t cap, int *exists, ax_diag *d);

/* tmp -> dir as above. On failure tmp is removed and the previous dir kept. */
int rt_modeldir_publish(const char *tmp, const char *dir, int exists, ax_diag *d);

/* Removes the files a save writes into dir (and, for merged models, the
 * tokenizer and generation config files copied beside them) (model and adapter safetensors,
 * config.json, adapter_config.json, the sharded index and per-rank files,
 * a checkpoint's trainer_state.json and optimizer/ folder), then dir itself
 * if empty. Other files are left alone. */
void rt_modeldir_remove(const char *dir);

/* The files that make a saved model loadable with its tokenizer, as HF
 * Trainer leaves them beside the weights: from `from` (the tokenizer's dir)
 * into `to`, each that exists: tokenizer.json, tokenizer_config.json,
 * tokenizer.model, special_tokens_map.json, vocab.json, merges.txt,
 * added_tokens.json, chat_template.jinja, and with generation_config (a
 * full model, not an adapter) generation_config.json. chat_template not
 * NULL: written as chat_template.jinja (the template the config chose, as
 * Axolotl sets it on the tokenizer it saves; transformers reads that file
 * before tokenizer_config.json's). tok_setup not NULL: the plan's
 * tokenizer record (rt_tok_setup_json); the tokens its edits add or rename
 * go into tokenizer.json's added_tokens (and model.vocab for a rename) with
 * the ids rt_tok_add gives them, and the special tokens the config set into
 * tokenizer_config.json (and special_tokens_map.json, and
 * added_tokens_decoder, where the tokenizer has them), as transformers'
 * save_pretrained writes them after Axolotl's load_tokenizer. Each file
 * written atomically. */
int rt_modeldir_copy_tokenizer(const char *from, const char *to, int generation_config, const char *chat_template,
                               const char *tok_setup, ax_diag *d);

#endif
