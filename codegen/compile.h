/* compile.h — the compile driver: config + model -> plan.bin bytes.
 *
 * Pipeline: fe_config_load -> fe_model_load -> fe_check_config_model ->
 * fe_lower -> pass_pipeline -> plan sections. Plan sections (see
 * docs/plan-format.md for the container):
 *   META  JSON: format, compiler version, target, world size, mesh
 *   CONF  canonical config text (fe_config_canonical)
 *   HFCF  the model's config.json bytes (written back with saved models)
 *   IRTX  the final IR module as text (the runtime parses it)
 *   STAT  JSON: parameter count, bytes per role per rank, collective volume
 *   SUMM  the summary text axoc prints (shown again on a cache hit)
 *   KBIN  (with --arch) the kernels' CUBINs for those archs (codegen/kbin.h)
 * Same inputs -> same bytes (no time, no pointers, sorted JSON keys).
 */
#ifndef CG_COMPILE_H
#define CG_COMPILE_H

#include "ir/base.h"

typedef struct cg_options {
    const char *config_path;
    const char *deepspeed;  /* --deepspeed override or NULL */
    const char *dump_ir;    /* --dump-ir DIR or NULL */
    const char *target;     /* "cpu" (default) */
    int world_size;         /* 0 = $WORLD_SIZE or 1 */
    int use_cache;          /* 1: serve from / store to the plan cache */
    const char *cache_dir;  /* NULL = cg_cache_dir() */
    double gpu_mem_gib;     /* > 0: warn with advice when a rank needs more */
    int no_fuse;            /* --no-fuse: no elementwise fusion (passes/fuse.c) */
    const char *const *archs; /* --arch: embed CUBINs for these (KBIN section, codegen/kbin.h) */
    int narch;
} cg_options;

typedef struct cg_result {
    ax_buf plan;     /* the plan bytes */
    int from_cache;  /* 1 if served from the cache */
    char key_hex[33];
    char *summary;   /* human summary (malloc'd): memory, comm, params */
} cg_result;

int cg_compile(const cg_options *o, cg_result *r, ax_diag *d);
void cg_result_free(cg_result *r);

/* `axoc preprocess`: tokenizes the config's datasets as axorun will, prints
 * a line per dataset and the first nshow samples token by token
 * (text(label, id)), and with out_path writes every sample as pre-tokenized
 * jsonl (atomically; an existing file only with overwrite). 0 or -1. */
int cg_preprocess(const char *config_path, const char *deepspeed, int nshow, const char *out_path, int overwrite,
                  ax_diag *d);

/* Readable dump of a plan file: summary, config, IR. */
int cg_dump_plan(const char *path, FILE *out, ax_diag *d);

#endif
