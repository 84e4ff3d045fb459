/* fuzz_parquet — a Parquet dataset file (most Hub datasets): rt_parquet_rows, its footer (Thrift compact
 * protocol), pages, codecs, encodings and the rows assembled from the levels; every row it writes must then
 * parse as one JSON object. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>

#include "runtime/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_parquet_set_limits(4 << 20, 256 << 20); /* within the fuzzer's memory: a few bytes may claim the rest */
    uint8_t *copy = fz_copy(data, size);
    ax_buf out = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_parquet_rows(copy, size, "f.parquet", &out, &d);
    fz_check(rc, &d, "rt_parquet_rows");
    for (size_t a = 0; rc == 0 && a < out.len;) {
        const char *nl = memchr(out.data + a, '\n', out.len - a);
        if (!nl) {
            fprintf(stderr, "fuzz: the last row has no newline\n");
            abort();
        }
        json_error_t je;
        json_t *row = json_loadb(out.data + a, (size_t)(nl - out.data) - a, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(row)) {
            fprintf(stderr, "fuzz: a row is not a JSON object: %s\n", je.text);
            abort();
        }
        json_decref(row);
        a = (size_t)(nl - out.data) + 1;
    }
    ax_buf_free(&out);
    ax_diag_free(&d);
    free(copy);
    return 0;
}
