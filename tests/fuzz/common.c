/* common.c — fuzz.h's helpers. */
#include "tests/fuzz/fuzz.h"

#include <ftw.h>
#include <sys/stat.h>

static char g_dir[512];
static struct {
    char name[64];
    char path[600];
} g_files[4];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path); /* links (models/ ...) are removed, not followed */
}

static void rm_tmpdir(void) { nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

const char *fz_tmpdir(void) {
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/axo-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(rm_tmpdir);
    }
    return g_dir;
}

const char *fz_file(const char *name, const uint8_t *data, size_t n) {
    int slot = -1;
    for (int i = 0; i < 4 && slot < 0; i++)
        if (!strcmp(g_files[i].name, name) || !g_files[i].name[0]) slot = i;
    if (slot < 0 || strlen(name) >= sizeof g_files[0].name) abort();
    snprintf(g_files[slot].name, sizeof g_files[slot].name, "%s", name);
    snprintf(g_files[slot].path, sizeof g_files[slot].path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(g_files[slot].path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(g_files[slot].path);
        abort();
    }
    return g_files[slot].path;
}

char *fz_str(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

void fz_check(int rc, const ax_diag *d, const char *what) {
    int said = 0;
    for (int i = 0; i < d->n; i++)
        if (d->entries[i].sev == AX_SEV_ERROR && d->entries[i].msg && d->entries[i].msg[0]) said++;
    if (getenv("AXO_FUZZ_SAY")) /* replaying: what each input came to */
        fprintf(stderr, "  %s: %s%s%s%s\n", what, rc == 0 ? "ok" : "refused: ", rc == 0 || !d->n ? "" : d->entries[0].where, rc == 0 || !d->n ? "" : ": ",
                rc == 0 || !d->n ? "" : d->entries[0].msg);
    if ((rc != 0 && said > 0) || (rc == 0 && d->nerrors == 0)) return;
    fprintf(stderr, "fuzz: %s returned %d with %d error(s) (%d with a message):\n", what, rc, d->nerrors, said);
    for (int i = 0; i < d->n; i++)
        fprintf(stderr, "  [%d] %s: %s\n", (int)d->entries[i].sev, d->entries[i].where ? d->entries[i].where : "",
                d->entries[i].msg ? d->entries[i].msg : "(null)");
    abort();
}

const char *fz_src(void) { return AXO_SOURCE_DIR; }

uint8_t *fz_copy(const uint8_t *data, size_t n) {
    uint8_t *c = malloc(n ? n : 1);
    if (!c) abort();
    if (n) memcpy(c, data, n);
    return c;
}

static void link_to(const char *src, const char *dst) {
    if (symlink(src, dst) != 0) {
        perror(dst);
        abort();
    }
}

/* data/: the first `rows` rows of each bundled dataset */
static void first_rows(const char *dir, int rows) {
    static const char *const names[] = {"toy_alpaca.jsonl", "toy_chat.jsonl", "toy_count.jsonl", "toy_reverse.jsonl"};
    char p[8192];
    if (mkdir(dir, 0755) != 0) abort();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/configs/data/%s", fz_src(), names[i]);
        FILE *in = fopen(p, "rb");
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        FILE *out = fopen(p, "wb");
        if (!in || !out) abort();
        int ch, n = 0;
        while (n < rows && (ch = fgetc(in)) != EOF) {
            fputc(ch, out);
            n += ch == '\n';
        }
        fclose(in);
        if (fclose(out) != 0) abort();
    }
}

const char *fz_bundled_config(int data_rows) {
    static char path[4096];
    if (path[0]) return path;
    const char *t = fz_tmpdir();
    char c[4096], src[4096], dst[4096];
    if (snprintf(c, sizeof c, "%s/c", t) >= (int)sizeof c || mkdir(c, 0755) != 0) abort();
    static const char *const dirs[] = {"models", "deepspeed", "data"};
    for (int i = 0; i < 3; i++) {
        if (snprintf(src, sizeof src, "%s/configs/%s", fz_src(), dirs[i]) >= (int)sizeof src ||
            snprintf(dst, sizeof dst, "%s/%s", t, dirs[i]) >= (int)sizeof dst)
            abort();
        if (i == 2 && data_rows > 0) {
            first_rows(dst, data_rows);
            memcpy(src, dst, sizeof src);
        } else {
            link_to(src, dst);
        }
        if (snprintf(dst, sizeof dst, "%s/%s", c, dirs[i]) >= (int)sizeof dst) abort();
        link_to(src, dst);
    }
    if (snprintf(path, sizeof path, "%s/config.yml", c) >= (int)sizeof path) abort();
    return path;
}
