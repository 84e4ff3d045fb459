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
 *    nearest double; FLOAT16 a number; a MAP is a list of [key, value] pairs.
 *  - Lists (LIST, and the legacy layouts of parquet-format's backward
 *    compatibility rules), structs, and nulls at every level of nesting are
 *    assembled from the repetition and definition levels, as Arrow does.
 *  - Read: data pages v1 and v2, dictionary pages; PLAIN, PLAIN_DICTIONARY /
 *    RLE_DICTIONARY, RLE (levels, booleans), DELTA_BINARY_PACKED,
 *    DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT; codecs
 *    UNCOMPRESSED, SNAPPY, GZIP, ZSTD (a build without libsnappy or libzstd
 *    says so). LZ4, BROTLI, LZO, encrypted files and column chunks in other
 *    files are refused by name.
 *  - Bad or truncated input is an error naming the file, the row group, the
 *    column and the byte offset where it can; nothing outside buf is read,
 *    and what a file may make it allocate is bounded by the file's size.
 * Returns 0, or -1 with d filled (out then holds a partial text to discard). */
#ifndef AX_RT_PARQUET_H
#define AX_RT_PARQUET_H

#include <stddef.h>

#include "ir/base.h"

/* buf starts and ends with Parquet's magic "PAR1" */
int rt_is_parquet(const void *buf, size_t len);
/* The file's rows (above) appended to out; name is the file in messages. */
int rt_parquet_rows(const void *buf, size_t len, const char *name, ax_buf *out, ax_diag *d);

#endif
