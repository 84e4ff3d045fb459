/* sharded_ckpt.h — SHARDED_STATE_DICT checkpoints (fsdp_config.state_dict_type).
 *
 * With SHARDED_STATE_DICT each rank writes the rows of every parameter it
 * holds, without gathering, into its own safetensors file, and rank 0 a
 * small JSON index; the layout is in docs/sharding.md:
 *
 *   checkpoint-N/
 *     sharded_state_dict.json                  the index (written last)
 *     model-rank00000-of-00002.safetensors     dp rank 0's rows
 *     model-rank00001-of-00002.safetensors     dp rank 1's rows
 *     config.json                              the model's HF config
 *     model-carried.safetensors                a multimodal model's vision tower and
 *                                              projector, unchanged from the base (rank 0)
 *
 * The directory is complete or absent: everything is written into
 * DIR.tmp-PID (PID of rank 0, shared through a collective), and rank 0
 * renames it into place once every rank has written its file.
 * rt_sharded_load reassembles whole tensors from the files (bit for bit
 * what a FULL_STATE_DICT save writes); rt_sharded_merge writes them as an
 * HF model dir (`axoc merge-sharded`).
 */
#ifndef RT_SHARDED_CKPT_H
#define RT_SHARDED_CKPT_H

#include "runtime/safetensors.h"
#include "runtime/train.h"

#define RT_SHARDED_INDEX "sharded_state_dict.json"
#define RT_OPTIM_INDEX "optimizer_state.json"
#define RT_SHARDED_FORMAT "axo.sharded_state_dict"
#define RT_SHARDED_CARRIED "model-carried.safetensors"

/* Saves s's parameters as a sharded checkpoint into dir. Collective: every
 * rank of the session calls it (it all-reduces small status vectors over
 * each mesh axis); every rank returns the same status. Refuses to replace
 * an existing dir unless overwrite. */
int rt_session_save_sharded(rt_session *s, const char *dir, int overwrite, ax_diag *d);
/* The same for the optimizer state (role opt globals: Adam moments, master
 * weights, 8-bit codes and maxima, each under its global's name and in its
 * own dtype, F32, BF16 or U8): rank files optimizer-rank*.safetensors and
 * the index RT_OPTIM_INDEX, no config.json. A resumable checkpoint keeps
 * them in its optimizer/ folder (runtime/resume.c). */
int rt_session_save_optimizer(rt_session *s, const char *dir, int overwrite, ax_diag *d);
/* The dtype a sharded save writes a global of dtype t in: BF16, U8, else F32. */
rt_st_dtype rt_sharded_dtype(ir_dtype t);

typedef struct rt_sharded_tensor {
    const char *name;
    rt_st_dtype dtype;
    int rank;
    int64_t shape[RT_ST_MAX_RANK];
    void *data;    /* the whole tensor: raw little-endian bytes, row-major */
    size_t nbytes;
} rt_sharded_tensor;

typedef struct rt_sharded_ckpt {
    int world;                  /* rank files */
    rt_sharded_tensor *tensors; /* sorted by name */
    int ntensors;
    char *config_json;          /* dir/config.json, NULL if absent */
    size_t config_len;
    ax_arena *arena;            /* owns everything above */
} rt_sharded_ckpt;

/* A sharded dir opened for reading: its index checked, its rank files
 * mapped; tensors are read row range by row range, so a rank reads only
 * its own block whatever world size wrote the files. */
typedef struct rt_sharded_dir {
    char ipath[4096];
    int world, nopen, ntensors;
    void *files;   /* rt_st_file[world] */
    void *root, *tensors; /* the index (json_t) */
} rt_sharded_dir;
int rt_sharded_open(const char *dir, const char *index, rt_sharded_dir *x, ax_diag *d);
/* Tensor `name`'s dtype and shape (data NULL): 0, 1 when absent, -1 on a
 * malformed entry. */
int rt_sharded_find(const rt_sharded_dir *x, const char *name, rt_sharded_tensor *info, ax_diag *d);
/* The i-th tensor name of the index (0 <= i < ntensors). */
const char *rt_sharded_name(const rt_sharded_dir *x, int i);
/* Rows [rb, re) of dim 0 (a scalar: the value) as raw bytes into dst. */
int rt_sharded_read(const rt_sharded_dir *x, const char *name, int64_t rb, int64_t re, void *dst, ax_diag *d);
void rt_sharded_close(rt_sharded_dir *x);

/* Reads dir's index and rank files and reassembles every tensor. Errors
 * name the file and what is wrong (a missing or truncated rank file, a
 * tensor missing from the file the index names, rows that do not tile the
 * tensor, ...). */
int rt_sharded_load(const char *dir, rt_sharded_ckpt *c, ax_diag *d);
void rt_sharded_free(rt_sharded_ckpt *c);

/* Writes the reassembled tensors of checkpoint dir to out_dir as an HF
 * model dir (model.safetensors + config.json), atomically; refuses an
 * existing out_dir unless overwrite, and out_dir == dir. */
int rt_sharded_merge(const char *dir, const char *out_dir, int overwrite, ax_diag *d);

#endif
