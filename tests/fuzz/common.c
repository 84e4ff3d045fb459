/* common.c — fuzz.h's helpers. */
#include "tests/fuzz/fuzz.h"

#include "codegen/compile.h"
#include "runtime/launch.h"

#include <ftw.h>
#include <jansson.h>
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
    fz_put(fz_tmpdir(), name, data, n);
    return g_files[slot].path;
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

void fz_put(const char *dir, const char *name, const void *data, size_t n) {
    char p[8192];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) abort();
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p);
        abort();
    }
}

static void die(const char *what, ax_diag *d) {
    fprintf(stderr, "fuzz: %s failed\n", what);
    ax_diag_print(d, stderr);
    abort();
}

const char *fz_train_tiny(const char *name, const char *base, const char *extra) {
    const char *t = fz_tmpdir();
    char p[4096], yml[8192], cpath[4096], plan[4096];
    static char out[4096];
    snprintf(p, sizeof p, "%s/tiny", t);
    if (mkdir(p, 0755) == 0) { /* the model and the data, once */
        const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8, "
                          "\"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                          "\"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 32, \"max_position_embeddings\": 64, "
                          "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", "
                          "\"tie_word_embeddings\": false, \"torch_dtype\": \"float32\"}";
        fz_put(p, "config.json", cfg, strlen(cfg));
        const char *data = "{\"input_ids\": [1, 5, 6, 7, 8, 9, 10, 2]}\n{\"input_ids\": [1, 11, 12, 13, 14, 2]}\n"
                           "{\"input_ids\": [1, 20, 21, 22, 23, 24, 25, 26, 2]}\n{\"input_ids\": [1, 3, 4, 2]}\n";
        fz_put(t, "d.jsonl", data, strlen(data));
    }
    int n = snprintf(yml, sizeof yml,
                     "base_model: %s\ndatasets:\n  - path: %s/d.jsonl\noutput_dir: %s/%s\n"
                     "sequence_len: 16\nmicro_batch_size: 2\nmax_steps: 1\nlearning_rate: 0.01\n"
                     "optimizer: adamw_torch\nseed: 3\nlogging_steps: 1\n%s",
                     base ? base : p, t, t, name, extra);
    if (n >= (int)sizeof yml) abort();
    fz_put(t, "c.yml", yml, (size_t)n);
    snprintf(cpath, sizeof cpath, "%s/c.yml", t);
    if (snprintf(plan, sizeof plan, "%s/%s.bin", t, name) >= (int)sizeof plan) abort();
    ax_diag d;
    ax_diag_init(&d);
    cg_options o = {.config_path = cpath, .target = "cpu", .world_size = 1, .use_cache = 0};
    cg_result r = {0};
    if (cg_compile(&o, &r, &d) != 0) die("compiling the tiny model's config", &d);
    fz_put(t, strrchr(plan, '/') + 1, r.plan.data, r.plan.len);
    cg_result_free(&r);
    rt_train_opts to = {.quiet = 1};
    if (rt_train_local(plan, 1, &to, &d) != 0) die("training the tiny model", &d);
    ax_diag_free(&d);
    if (snprintf(out, sizeof out, "%s/%s", t, name) >= (int)sizeof out) abort();
    return out;
}

/* With AXO_FUZZ_WRITE_SEEDS=DIR: DIR/seed-<basename of names[i]> holds the byte i then bytes[i] */
static void write_seeds(const char *const *names, uint8_t *const *bytes, const size_t *len, int n) {
    const char *dir = getenv("AXO_FUZZ_WRITE_SEEDS");
    for (int i = 0; dir && i < n; i++) {
        char p[8192];
        const char *base = strrchr(names[i], '/');
        snprintf(p, sizeof p, "%s/seed-%s", dir, base ? base + 1 : names[i]);
        FILE *f = fopen(p, "wb");
        if (!f || fputc(i, f) == EOF || fwrite(bytes[i], 1, len[i], f) != len[i] || fclose(f) != 0) abort();
    }
}

void fz_read_files(const char *dir, const char *const *names, int n, uint8_t **bytes, size_t *len) {
    ax_diag d;
    ax_diag_init(&d);
    for (int i = 0; i < n; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (!(bytes[i] = (uint8_t *)ax_read_file(p, &len[i], &d))) die("reading a file of the fuzzed set", &d);
    }
    ax_diag_free(&d);
    write_seeds(names, bytes, len, n);
}

void fz_put_files(const char *dir, const char *const *names, int n, uint8_t *const *bytes, const size_t *len,
                  const uint8_t *data, size_t size) {
    int pick = data[0] % n;
    for (int i = 0; i < n; i++)
        if (i == pick) fz_put(dir, names[i], data + 1, size - 1);
        else fz_put(dir, names[i], bytes[i], len[i]);
}

int fz_preprocess(const char *config) {
    ax_diag d;
    ax_diag_init(&d);
    int rc = cg_preprocess(config, NULL, 1, NULL, 0, &d);
    fz_check(rc, &d, "cg_preprocess");
    ax_diag_free(&d);
    return rc;
}

int fz_compile(const char *config, const char *deepspeed, int world_size, const char *what) {
    cg_options o = {.config_path = config, .deepspeed = deepspeed, .target = "cpu", .world_size = world_size};
    cg_result r = {0};
    ax_diag d;
    ax_diag_init(&d);
    int rc = cg_compile(&o, &r, &d);
    fz_check(rc, &d, what);
    cg_result_free(&r);
    ax_diag_free(&d);
    return rc;
}

void fz_check_rows(const char *out, size_t len, int text_rows) {
    for (size_t a = 0; a < len;) {
        const char *nl = memchr(out + a, '\n', len - a);
        if (!nl) {
            fprintf(stderr, "fuzz: the last row has no newline\n");
            abort();
        }
        json_error_t je;
        json_t *row = json_loadb(out + a, (size_t)(nl - out) - a, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(row) ||
            (text_rows && (json_object_size(row) != 1 || !json_is_string(json_object_get(row, "text"))))) {
            fprintf(stderr, "fuzz: a row is not the JSON object expected: %s\n", je.text);
            abort();
        }
        json_decref(row);
        a = (size_t)(nl - out) + 1;
    }
}
