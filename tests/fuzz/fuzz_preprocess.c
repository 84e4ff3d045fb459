/* fuzz_preprocess — an Axolotl YAML config through `axoc preprocess`
 * (cg_preprocess: the datasets: entries, their types, field and role
 * mappings, chat templates and special tokens, then tokenizing the bundled
 * datasets as axorun will). Run it with -close_fd_mask=1: preprocess prints
 * samples on stdout. models/ and deepspeed/ are the bundled ones
 * (configs/), and data/ holds the first rows of the bundled datasets, so
 * the seeds, copies of the bundled configs, tokenize. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_bundled_config(6); /* tokenizing is per input: 6 rows of each dataset */
    fz_file("c/config.yml", data, size);
    fz_preprocess(path);
    return 0;
}
