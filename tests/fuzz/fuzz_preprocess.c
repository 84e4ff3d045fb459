/* fuzz_preprocess — an Axolotl YAML config through `axoc preprocess`
 * (cg_preprocess: the datasets: entries, their types, field and role
 * mappings, chat templates and special tokens, then tokenizing the bundled
 * datasets as axorun will). Run it with -close_fd_mask=1: preprocess prints
 * samples on stdout. models/ and deepspeed/ are the bundled ones
 * (configs/), and data/ holds the first rows of the bundled datasets, so
 * the seeds, copies of the bundled configs, tokenize. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"

#include <sys/stat.h>

static void link_in(const char *name, const char *target) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/%s", fz_src(), target);
    snprintf(dst, sizeof dst, "%s/%s", fz_tmpdir(), name);
    if (symlink(src, dst) != 0) {
        perror(dst);
        abort();
    }
    snprintf(dst, sizeof dst, "%s/c/%s", fz_tmpdir(), name);
    if (symlink(src, dst) != 0) {
        perror(dst);
        abort();
    }
}

/* data/: the first 6 rows of each bundled dataset (a fuzzing run tokenizes them at every input) */
static void small_data(void) {
    static const char *const names[] = {"toy_alpaca.jsonl", "toy_chat.jsonl", "toy_count.jsonl", "toy_reverse.jsonl"};
    char dir[1024], p[2048];
    snprintf(dir, sizeof dir, "%s/data", fz_tmpdir());
    if (mkdir(dir, 0755) != 0) abort();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/configs/data/%s", fz_src(), names[i]);
        FILE *in = fopen(p, "rb");
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        FILE *out = fopen(p, "wb");
        if (!in || !out) abort();
        int ch, rows = 0;
        while (rows < 6 && (ch = fgetc(in)) != EOF) {
            fputc(ch, out);
            rows += ch == '\n';
        }
        fclose(in);
        if (fclose(out) != 0) abort();
    }
    snprintf(p, sizeof p, "%s/c/data", fz_tmpdir());
    if (symlink(dir, p) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        /* the config is c/config.yml; models/, data/ and deepspeed/ are in c/ and next to it, so that the
         * bundled configs' paths (models/..., ../models/...) resolve */
        char c[1024];
        snprintf(c, sizeof c, "%s/c", fz_tmpdir());
        if (mkdir(c, 0755) != 0) abort();
        link_in("models", "configs/models");
        small_data();
        link_in("deepspeed", "configs/deepspeed");
        init = 1;
    }
    const char *path = fz_file("c/config.yml", data, size);
    ax_diag d;
    ax_diag_init(&d);
    int rc = cg_preprocess(path, NULL, 1, NULL, 0, &d);
    fz_check(rc, &d, "cg_preprocess");
    ax_diag_free(&d);
    return 0;
}
