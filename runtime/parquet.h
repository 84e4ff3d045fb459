/* parquet.h — Apache Parquet files read as the rows HF datasets reads from them.
 *
 * Most datasets on the Hub are Parquet (datasets' push_to_hub and to_parquet
 * write it, and the Hub converts other formats to it). axo reads a Parquet
 * file into the same rows a JSON lines file gives, so every dataset type and
 * every later step (shards, val_set_size, dataset_prepared_path) treats both
 * alike.
 *
 * Promises (rt_parquet_rows):
 *  - The rows are the file's, in order (row group after row group), one
 *    compact JSON object a line, the top-level columns in schema order:
 *    what pyarrow's to_pylist and so HF datasets make of them, with these
 *    renderings where JSON has no such value: NaN and infinities are null;
 *    binary columns without a string annotation (HF's bytes) are null, with
 *    one warning naming the column; DATE, TIME and TIMESTAMP are their stored
 *    integers (INT96 timestamps as nanoseconds since 1970); DECIMAL is the
 *    nearest double; FLOAT16 a number; UUID its 36-character text; ENUM is
 *    binary (as Arrow reads it); UINT64 above 2^63 a double; a MAP is a list
 *    of [key, value] pairs (of keys, when it has no values).
 *  - Lists (LIST, and the legacy layouts of parquet-format's backward
 *    compatibility rules), structs, and nulls at every level of nesting are
 *    assembled from the repetition and definition levels, as Arrow does.
 *  - Read: data pages v1 and v2, dictionary pages; PLAIN, PLAIN_DICTIONARY /
 *    RLE_DICTIONARY, RLE (levels, booleans), DELTA_BINARY_PACKED,
 *    DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT; codecs
 *    UNCOMPRESSED, SNAPPY, GZIP, ZSTD, LZ4_RAW (a build without one of their
 *    libraries says so). LZ4 (Hadoop's framing), BROTLI, LZO, encrypted
 *    files, column chunks in other files and files without columns are
 *    refused by name. Nesting goes 100 levels deep, as Arrow's.
 *  - Bad or truncated input is an error naming the file, the row group, the
 *    column and the byte offset where it can; nothing outside buf is read.
 *    The counts a few bytes can claim (level entries: a run of any length
 *    costs a few bytes) are bounded by the file's size: 256 a byte, plus 64
 *    Mi a row group. Value bytes are real data and are not: a dictionary or
 *    a codec can expand a small file far, as it does for pyarrow.
 * Returns 0, or -1 with d filled (out then holds a partial text to discard). */
#ifndef AX_RT_PARQUET_H
#define AX_RT_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "ir/base.h"

/* buf starts and ends with Parquet's magic "PAR1" */
int rt_is_parquet(const void *buf, size_t len);
/* The file's rows (above) appended to out; name is the file in messages. */
int rt_parquet_rows(const void *buf, size_t len, const char *name, ax_buf *out, ax_diag *d);
/* The limits above, for every later call: level entries a row group may claim beyond 256 per byte of the file
 * (default 64 Mi), and value bytes a row group may expand to (default: none). The fuzz target lowers them. */
void rt_parquet_set_limits(int64_t entries, int64_t bytes);

#endif
