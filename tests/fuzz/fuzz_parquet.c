/* fuzz_parquet — a Parquet dataset file (most Hub datasets): rt_parquet_rows, its footer (Thrift compact
 * protocol), pages, codecs, encodings and the rows assembled from the levels; every row it writes must then
 * parse as one JSON object. */
#include "tests/fuzz/fuzz.h"

#include "runtime/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_parquet_set_limits(4 << 20, 256 << 20); /* within the fuzzer's memory: a few bytes may claim the rest */
    uint8_t *copy = fz_copy(data, size);
    ax_buf out = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_parquet_rows(copy, size, "f.parquet", &out, &d);
    fz_check(rc, &d, "rt_parquet_rows");
    if (rc == 0) fz_check_rows(out.data, out.len, 0);
    ax_buf_free(&out);
    ax_diag_free(&d);
    free(copy);
    return 0;
}
