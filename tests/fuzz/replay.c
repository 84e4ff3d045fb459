/* replay.c — main() for a fuzz target outside libFuzzer: runs every file
 * named, and every file in every directory named (sorted, so a run is
 * reproducible), through LLVMFuzzerTestOneInput. Used by ctest on the
 * checked-in corpus (tests/fuzz/corpus/<target>/) and to replay one finding:
 *   build/fuzz_config tests/fuzz/corpus/fuzz_config/crash-...  */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <sys/stat.h>

static int run_file(const char *path) {
    ax_diag d;
    ax_diag_init(&d);
    size_t n;
    char *bytes = ax_read_file(path, &n, &d);
    if (!bytes) {
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        return -1;
    }
    ax_diag_free(&d);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    /* a copy of exactly the input's size, so ASan sees a read past its end */
    uint8_t *copy = fz_copy((const uint8_t *)bytes, n);
    free(bytes);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    int nrun = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]) != 0;
            nrun++;
            continue;
        }
        DIR *dp = opendir(argv[i]);
        if (!dp) {
            perror(argv[i]);
            return 1;
        }
        char **names = NULL;
        int nn = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (e->d_name[0] == '.') continue;
            if (nn == cap) names = realloc(names, sizeof *names * (size_t)(cap = cap ? cap * 2 : 64));
            names[nn++] = strdup(e->d_name);
        }
        closedir(dp);
        qsort(names, (size_t)nn, sizeof *names, cmp_str);
        for (int k = 0; k < nn; k++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], names[k]);
            bad |= run_file(p) != 0;
            nrun++;
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %d input(s) ran, none crashed\n", nrun);
    return bad || nrun == 0;
}
