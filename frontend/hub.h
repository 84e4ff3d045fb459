/* hub.h — Hugging Face Hub repositories named as Axolotl names them
 * (`base_model: org/name`), found in the local Hub cache that
 * huggingface_hub keeps (the one Axolotl, transformers and `hf download`
 * fill), or downloaded into it.
 *
 * The cache is huggingface_hub's layout, so either side reads what the
 * other wrote:
 *   <cache>/models--org--name/refs/<revision>        the commit hash
 *   <cache>/models--org--name/snapshots/<hash>/<file> -> ../../blobs/<etag>
 *   <cache>/models--org--name/blobs/<etag>           the bytes
 * <cache> is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
 * else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 *
 * Downloads (libcurl) take $HF_ENDPOINT (default https://huggingface.co)
 * and the token of $HF_TOKEN, else of the file $HF_TOKEN_PATH or
 * $HF_HOME/token. They are off until fe_hub_allow_download(1) (axoc turns
 * them on) and whenever $HF_HUB_OFFLINE or $TRANSFORMERS_OFFLINE is true.
 * Each file is written to blobs/<etag>.incomplete and renamed when whole,
 * so an interrupted download never leaves a file that looks complete. */
#ifndef FE_HUB_H
#define FE_HUB_H

#include "ir/base.h"

/* 1 when s has the shape of a Hub repo id, as huggingface_hub's
 * validate_repo_id has it: "name" or "namespace/name", each part 1 to 96 of
 * [A-Za-z0-9._-], not starting or ending with '-' or '.', without "--" or
 * "..", not ending in ".git". */
int fe_hub_is_repo_id(const char *s);

/* The cache root (see above), in the arena. */
const char *fe_hub_cache_dir(ax_arena *ar);

void fe_hub_allow_download(int on);

/* What a snapshot must hold to be used: FE_HUB_CONFIG config.json;
 * FE_HUB_WEIGHTS model.safetensors, or model.safetensors.index.json and
 * every shard it names; FE_HUB_TOKENIZER tokenizer.json; FE_HUB_ADAPTER a
 * PEFT adapter's adapter_config.json and adapter_model.safetensors. */
enum { FE_HUB_CONFIG = 1, FE_HUB_WEIGHTS = 2, FE_HUB_TOKENIZER = 4, FE_HUB_ADAPTER = 8, FE_HUB_DATASET = 16 };

/* The snapshot directory of model (or adapter) repo_id at revision (NULL: "main"; a
 * branch, a tag or a 40-hex commit), from the cache, else downloaded when
 * downloads are on. Returns an arena path, or NULL with an error at
 * `where` that names `key`, the repo, the cache and what was missing. */
const char *fe_hub_model(ax_arena *ar, const char *repo_id, const char *revision, int want, const char *where,
                         const char *key, ax_diag *d);

/* Which file of a dataset repo (Axolotl's datasets[] keys): data_files
 * (fnmatch patterns over the repo's paths; none: HF datasets' split
 * inference) and split (NULL: "train"). */
typedef struct fe_hub_ds_sel {
    const char *const *data_files;
    int ndata_files;
    const char *split;
    const char *name; /* the entry's name: a configuration of the dataset card (NULL: its default) */
    /* The dataset card, when the repo or folder has one: README.md's text and .huggingface.yaml's (NULL:
     * none). Their `configs` choose the files as HF datasets' module factory does. Set by fe_hub_dataset and
     * fe_hub_dataset_dir themselves. */
    const char *readme, *hf_yaml;
    const char *script; /* <name>.py: a loading script, which datasets refuses (set by the same two) */
} fe_hub_ds_sel;

/* The files of `files` (a repo's or a folder's paths) that HF datasets
 * reads for sel's split, as load_dataset(path, name=, data_files=, split=)
 * chooses them without a loading script: the dataset card's configs
 * (sel->readme, sel->hf_yaml; `name` picks one, else its default), else
 * its split inference, and the format inference that keeps one builder's
 * files (see hub.c). In datasets' order (pattern after pattern, each one's
 * matches sorted); returns their count, or -1 with err. */
int fe_hub_split_files(ax_arena *ar, const char *const *files, int n, const fe_hub_ds_sel *sel, const char ***out,
                       char *err, size_t errcap);

/* HF datasets' split spec ("train", "train[:500]", "test[10%:-5%](pct1_dropremainder)", ReadInstruction's
 * grammar): *name the split, *slice NULL without brackets, else the JSON runtime/data.h's rt_data_source.slice
 * reads. Sums of splits ("train+test") are refused. 0, or -1 with err. */
int fe_parse_split(ax_arena *ar, const char *spec, const char **name, const char **slice, char *err, size_t errcap);

/* 1 for a .json/.jsonl/.ndjson file name, 2 for .parquet/.geoparquet/.gpq, 3 for .txt (HF datasets' text loader),
 * 4 for .csv, 5 for .tsv (the csv loader with sep "\t"), 0 for another: 1 + the FE_LOADER_* that reads it. */
int fe_hub_data_format(const char *file);

/* The local paths of the .json/.jsonl or .parquet files that make the
 * wanted split of dataset repo_id at revision (NULL: "main"), in the order
 * HF datasets concatenates them, from the cache or downloaded, as
 * fe_hub_model resolves a model. Returns their count, or -1 with an error at
 * `where` when there are none, one is of another format (csv, arrow, ...),
 * or the split mixes JSON and Parquet. */
int fe_hub_dataset(ax_arena *ar, const char *repo_id, const char *revision, const fe_hub_ds_sel *sel, const char *where,
                   const char *key, ax_diag *d, const char ***paths);

/* The files data_files patterns (fsspec globs, "**" a whole component) name on the local file system, each
 * pattern tried relative to bases[] in turn (as given, then beside the config) until it matches: in datasets'
 * order, a file two patterns match twice. A path without a wildcard that is not there is an error. Their count,
 * or -1 with err. (Axolotl hands a local folder's data_files to load_dataset(<format>, data_files=...), which
 * resolves them so, not in the folder.) */
int fe_hub_glob_files(ax_arena *ar, const char *const *pats, int np, const char *const *bases, int nbases,
                      const char ***paths, char *err, size_t errcap);

/* A local folder as HF datasets loads one (load_dataset("folder")): the
 * .json/.jsonl or .parquet files of sel's split among its files; their
 * count, or -1 with err. */
int fe_hub_dataset_dir(ax_arena *ar, const char *dir, const fe_hub_ds_sel *sel, const char ***paths, char *err,
                       size_t errcap);

#endif
