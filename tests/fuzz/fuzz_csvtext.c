/* fuzz_csvtext — a CSV, TSV or text dataset file: rt_csv_rows (pandas' tokenizer, type inference, chunk casts)
 * and rt_text_rows (HF datasets' text loader). The first byte picks the reader (csv, tsv, text); every row
 * either one writes must then parse as one JSON object, and a text file's rows must be {"text": ...}. */
#include "tests/fuzz/fuzz.h"

#include "runtime/csv.h"
#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int which = data[0] % 3;
    uint8_t *copy = fz_copy(data + 1, size - 1);
    ax_buf out = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc = which == 2 ? rt_text_rows((const char *)copy, size - 1, "f.txt", &out, &d)
                        : rt_csv_rows((const char *)copy, size - 1, "f.csv", which ? '\t' : ',', &out, &d);
    fz_check(rc, &d, which == 2 ? "rt_text_rows" : "rt_csv_rows");
    if (rc == 0) fz_check_rows(out.data, out.len, which == 2);
    ax_buf_free(&out);
    ax_diag_free(&d);
    free(copy);
    return 0;
}
