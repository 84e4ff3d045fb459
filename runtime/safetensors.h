/* safetensors.h — reading and writing HF safetensors files and model dirs.
 *
 * File format (https://github.com/huggingface/safetensors):
 *
 *   bytes [0, 8)        N, u64 little-endian: length of the JSON header
 *   bytes [8, 8+N)      JSON object, UTF-8:
 *                         { "<tensor name>": { "dtype": "BF16",
 *                                              "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end] },
 *                           ...,
 *                           "__metadata__": { "<key>": "<string>", ... } }
 *                       (may be padded at the end with spaces)
 *   bytes [8+N, EOF)    the data area; a tensor's bytes are
 *                       [8+N+begin, 8+N+end), row-major, little-endian.
 *
 * Promises:
 *  - rt_st_open validates everything before handing out a tensor: header
 *    length within the file (and <= 100 MB), the header is a JSON object,
 *    every entry has a known dtype, a shape of non-negative integers (rank
 *    <= RT_ST_MAX_RANK), data_offsets [begin, end] with begin <= end inside
 *    the data area, end - begin == numel * dtype size, and no two tensors'
 *    bytes overlap (gaps are tolerated). "__metadata__" must map strings
 *    to strings. Any violation is one error naming the file, the tensor
 *    (or key) and the byte offset in the file; never a crash.
 *  - The file is mmap'ed read-only; tensor bytes are read in place. Tensor
 *    data need not be aligned in the file: readers use memcpy-style loads.
 *  - rt_st_write produces deterministic bytes: tensors sorted by name
 *    (strcmp), data packed contiguously in that order, header JSON compact
 *    with sorted keys, "__metadata__": {"format": "pt"}, padded with spaces
 *    so the data area starts at a multiple of 8. Written atomically.
 *    The files load with Python's safetensors / transformers.
 *  - A model dir is either one model.safetensors or a sharded
 *    model.safetensors.index.json whose "weight_map" maps tensor names to
 *    shard files in the same dir; every mapped tensor must exist in its
 *    shard.
 */
#ifndef RT_SAFETENSORS_H
#define RT_SAFETENSORS_H

#include "ir/base.h"

#include <stddef.h>
#include <stdint.h>

#define RT_ST_MAX_RANK 8
#define RT_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef enum {
    RT_ST_BOOL,
    RT_ST_U8,
    RT_ST_I8,
    RT_ST_I16,
    RT_ST_U16,
    RT_ST_F16,
    RT_ST_BF16,
    RT_ST_I32,
    RT_ST_U32,
    RT_ST_F32,
    RT_ST_I64,
    RT_ST_U64,
    RT_ST_F64,
    RT_ST_F8_E4M3,
    RT_ST_F8_E5M2,
    RT_ST_NDTYPES
} rt_st_dtype;

/* "F32", "BF16", ... as spelled in the header; NULL for a bad value. */
const char *rt_st_dtype_name(rt_st_dtype t);
/* Parses a header spelling; -1 if unknown. */
int rt_st_dtype_parse(const char *s);
/* Bytes per element. */
size_t rt_st_dtype_size(rt_st_dtype t);

typedef struct rt_st_tensor {
    const char *name;
    rt_st_dtype dtype;
    int rank;
    int64_t shape[RT_ST_MAX_RANK];
    int64_t numel;        /* product of shape (1 for rank 0) */
    uint64_t begin, end;  /* byte range relative to the data area */
} rt_st_tensor;

typedef struct rt_st_file {
    char *path;
    const uint8_t *base;  /* whole file (mmap'ed or borrowed) */
    size_t size;
    const uint8_t *data;  /* data area = base + 8 + header length */
    size_t data_size;
    rt_st_tensor *tensors; /* sorted by name */
    int ntensors;
    const char **meta_keys, **meta_values; /* "__metadata__", sorted by key */
    int nmeta;
    ax_arena *arena;      /* owns names, tensors, metadata */
    int mapped;           /* 1: base is an mmap we unmap on close */
} rt_st_file;

/* Opens and validates `path`. On error returns -1, fills d, leaves f closed
 * (rt_st_close on it is harmless). */
int rt_st_open(const char *path, rt_st_file *f, ax_diag *d);
/* Same validation on bytes already in memory (borrowed: buf must outlive
 * f); `name` is used in diagnostics. For tests and fuzzing. */
int rt_st_open_buffer(const void *buf, size_t len, const char *name, rt_st_file *f, ax_diag *d);
void rt_st_close(rt_st_file *f);

/* Binary search by name; NULL if absent. */
const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name);
/* Metadata value for key, or NULL. */
const char *rt_st_meta(const rt_st_file *f, const char *key);
/* The tensor's raw bytes in the file (possibly unaligned), end-begin long. */
const void *rt_st_data(const rt_st_file *f, const rt_st_tensor *t);

/* n raw little-endian values of dtype dt (any alignment) as f32: F32,
 * BF16, F16 exactly, U8 as its value. 0, or -1 for any other dtype. */
int rt_st_widen(rt_st_dtype dt, const void *raw, int64_t n, float *out);

/* Reads the whole tensor into out[numel] as f32. F32 is copied, BF16 and
 * F16 are widened exactly; other dtypes are an error. */
int rt_st_read_f32(const rt_st_file *f, const rt_st_tensor *t, float *out, ax_diag *d);
/* Reads rows [row_begin, row_begin+row_count) of dim 0 into
 * out[row_count * numel/shape[0]]; the tensor must have rank >= 1. */
int rt_st_read_f32_rows(const rt_st_file *f, const rt_st_tensor *t, int64_t row_begin, int64_t row_count,
                        float *out, ax_diag *d);

/* ---- model directories ------------------------------------------------ */
typedef struct rt_st_entry {
    const char *name;
    int shard;                 /* index into rt_st_model.shards */
    const rt_st_tensor *tensor;
} rt_st_entry;

typedef struct rt_st_model {
    char *dir;
    rt_st_file *shards;        /* sorted by file name */
    int nshards;
    rt_st_entry *entries;      /* every tensor of the model, sorted by name */
    int nentries;
    ax_arena *arena;
} rt_st_model;

/* Opens dir/model.safetensors.index.json if present, else
 * dir/model.safetensors. With an index, entries are exactly its weight_map;
 * without, every tensor of the single file. */
int rt_st_model_open(const char *dir, rt_st_model *m, ax_diag *d);
void rt_st_model_close(rt_st_model *m);
/* Finds a tensor by name across shards; *file (if non-NULL) gets its shard.
 * NULL if absent. */
const rt_st_tensor *rt_st_model_find(const rt_st_model *m, const char *name, const rt_st_file **file);

/* gpt-oss's MXFP4 experts (transformers' convert_moe_packed_tensors): <name>_blocks u8 [E, R, C/32, 16] (two FP4
 * e2m1 codes a byte, the low nibble first) and <name>_scales u8 [E, R, C/32] (2^(s - 127)) are the experts [E, R,
 * C], which the model holds transposed, [E, C, R]. rt_st_mxfp4_find: both tensors of name in m (0), none of them
 * (1), or a bad pair (-1, an error naming the file); *E, *C, *R their shape. rt_st_mxfp4_dequant writes experts e0
 * .. e0 + ne - 1 of them, transposed, to dst [ne, C, R] (every value exact in f32 and bf16). */
int rt_st_mxfp4_find(const rt_st_model *m, const char *name, const rt_st_file **fb, const rt_st_tensor **blocks,
                     const rt_st_file **fs, const rt_st_tensor **scales, int64_t *E, int64_t *C, int64_t *R, ax_diag *d);
void rt_st_mxfp4_dequant(const rt_st_file *fb, const rt_st_tensor *blocks, const rt_st_file *fs,
                         const rt_st_tensor *scales, int64_t e0, int64_t ne, float *dst);

/* ---- writer ----------------------------------------------------------- */
typedef struct rt_st_out {
    const char *name;
    rt_st_dtype dtype;
    int rank;
    const int64_t *shape;      /* rank entries */
    const void *data;          /* numel * dtype size raw little-endian bytes */
} rt_st_out;

/* Writes n tensors to path (see the promises above). Names must be unique,
 * non-empty, valid UTF-8 and not "__metadata__". */
int rt_st_write(const char *path, const rt_st_out *tensors, int n, ax_diag *d);
/* The bytes rt_st_write would write, into b (appended). */
int rt_st_serialize(const rt_st_out *tensors, int n, ax_buf *b, ax_diag *d);

#endif
