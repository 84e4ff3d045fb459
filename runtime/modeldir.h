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

#endif
