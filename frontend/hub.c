/* hub.c — Hub repo ids resolved through huggingface_hub's cache, and
 * downloaded into it with libcurl (hub.h). */
#include "frontend/hub.h"

#if AXO_HAVE_CURL
#include <curl/curl.h>
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int g_download;

void fe_hub_allow_download(int on) { g_download = on; }

static int env_true(const char *name) {
    const char *v = getenv(name);
    if (!v) return 0;
    return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

static int id_part_ok(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.') return 0;
        if (i + 1 < n && ((c == '-' && s[i + 1] == '-') || (c == '.' && s[i + 1] == '.'))) return 0;
    }
    return 1;
}

int fe_hub_is_repo_id(const char *s) {
    size_t n = strlen(s);
    if (n >= 4 && !strcmp(s + n - 4, ".git")) return 0;
    const char *slash = strchr(s, '/');
    if (!slash) return id_part_ok(s, n);
    if (strchr(slash + 1, '/')) return 0;
    return id_part_ok(s, (size_t)(slash - s)) && id_part_ok(slash + 1, n - (size_t)(slash - s) - 1);
}

/* "~" and "~/..." as the user's home, as huggingface_hub's expanduser reads them. */
static const char *expand_home(ax_arena *ar, const char *p) {
    const char *home = getenv("HOME");
    if (p[0] == '~' && (p[1] == '/' || !p[1]) && home && *home) return ax_arena_printf(ar, "%s%s", home, p + 1);
    return p;
}

static const char *hf_home(ax_arena *ar) {
    const char *h = getenv("HF_HOME");
    if (h && *h) return expand_home(ar, h);
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) return ax_arena_printf(ar, "%s/huggingface", x);
    const char *home = getenv("HOME");
    return ax_arena_printf(ar, "%s/.cache/huggingface", home && *home ? home : ".");
}

const char *fe_hub_cache_dir(ax_arena *ar) {
    const char *c = getenv("HF_HUB_CACHE");
    if (c && *c) return expand_home(ar, c);
    c = getenv("HUGGINGFACE_HUB_CACHE");
    if (c && *c) return expand_home(ar, c);
    return ax_arena_printf(ar, "%s/hub", hf_home(ar));
}

static int is_hash(const char *s) {
    size_t n = strlen(s);
    if (n != 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode); /* follows the snapshot's links into blobs/ */
}

/* "models" or "datasets": the repo type, in the cache's folder names and the Hub's URLs. */
static const char *kind_of(int want) { return want & FE_HUB_DATASET ? "datasets" : "models"; }

/* The repo's folder in the cache: models--org--name (datasets--org--name). */
static const char *repo_dir(ax_arena *ar, const char *cache, int want, const char *repo_id) {
    ax_buf b = {0};
    ax_buf_printf(&b, "%s/%s--", cache, kind_of(want));
    for (const char *p = repo_id; *p; p++) {
        if (*p == '/') ax_buf_puts(&b, "--");
        else ax_buf_append(&b, p, 1);
    }
    const char *r = ax_arena_strdup(ar, b.data);
    ax_buf_free(&b);
    return r;
}

/* A file name of a repo listing that stays inside the snapshot: no leading
 * '/', no empty, "." or ".." component, no control character. */
static int safe_rel(const char *f) {
    if (!*f || *f == '/') return 0;
    for (const char *p = f; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\') return 0;
    for (const char *c = f; c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
        c = e ? e + 1 : NULL;
    }
    return 1;
}

/* refs/<revision> -> the commit it names, or NULL. */
static const char *read_ref(ax_arena *ar, const char *rdir, const char *revision) {
    if (is_hash(revision)) return revision;
    const char *p = ax_arena_printf(ar, "%s/refs/%s", rdir, revision);
    ax_diag tmp;
    ax_diag_init(&tmp);
    size_t len = 0;
    char *t = is_file(p) ? ax_read_file(p, &len, &tmp) : NULL;
    ax_diag_free(&tmp);
    if (!t) return NULL;
    while (len && isspace((unsigned char)t[len - 1])) t[--len] = 0;
    const char *r = is_hash(t) ? ax_arena_strdup(ar, t) : NULL;
    free(t);
    return r;
}

/* The shard file names of a model.safetensors.index.json (its weight_map's
 * values, each once), or -1 when it is not such an index. */
static int index_shards(const char *index_path, ax_arena *ar, const char ***out) {
    json_error_t je;
    json_t *j = json_load_file(index_path, 0, &je);
    json_t *wm = j ? json_object_get(j, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        json_decref(j);
        return -1;
    }
    size_t cap = json_object_size(wm) + 1;
    const char **v = ax_arena_alloc(ar, sizeof *v * cap);
    int n = 0, bad = 0;
    const char *k;
    json_t *val;
    json_object_foreach(wm, k, val) {
        const char *s = json_string_value(val);
        if (!s || !*s || strchr(s, '/') || !strcmp(s, "..")) {
            bad = 1;
            break;
        }
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(v[i], s);
        if (!seen) v[n++] = ax_arena_strdup(ar, s);
    }
    json_decref(j);
    if (bad) return -1;
    *out = v;
    return n;
}

/* What the snapshot lacks of `want`, or NULL when it holds it all. */
static const char *missing(ax_arena *ar, const char *snap, int want) {
    if ((want & FE_HUB_CONFIG) && !is_file(ax_arena_printf(ar, "%s/config.json", snap))) return "config.json";
    if ((want & FE_HUB_TOKENIZER) && !is_file(ax_arena_printf(ar, "%s/tokenizer.json", snap))) return "tokenizer.json";
    if ((want & FE_HUB_ADAPTER) && !is_file(ax_arena_printf(ar, "%s/adapter_config.json", snap)))
        return "adapter_config.json";
    if ((want & FE_HUB_ADAPTER) && !is_file(ax_arena_printf(ar, "%s/adapter_model.safetensors", snap)))
        return "adapter_model.safetensors";
    if (want & FE_HUB_WEIGHTS) {
        if (is_file(ax_arena_printf(ar, "%s/model.safetensors", snap))) return NULL;
        const char *ix = ax_arena_printf(ar, "%s/model.safetensors.index.json", snap);
        if (!is_file(ix)) return "model.safetensors (or model.safetensors.index.json)";
        const char **sh;
        int n = index_shards(ix, ar, &sh);
        if (n < 0) return "a readable model.safetensors.index.json";
        for (int i = 0; i < n; i++)
            if (!is_file(ax_arena_printf(ar, "%s/%s", snap, sh[i]))) return sh[i];
    }
    return NULL;
}

#if AXO_HAVE_CURL
/* ---- dataset repos: which file is the split ---------------------------------
 * As HF datasets infers a repo's splits without a loading script: a file
 * whose path names a split keyword (a folder of that name, or a file name
 * with the keyword between separators "-._ 0-9" or at its start) belongs to
 * that split; when no file names any split, every data file is "train".
 * data_files (patterns as fnmatch reads them) chooses instead. axo reads
 * one .json/.jsonl file; other data formats are named in the error. */
static int is_sep(char c) { return c == '-' || c == '.' || c == '_' || c == ' ' || (c >= '0' && c <= '9'); }

static int names_keyword(const char *path, const char *kw) {
    size_t k = strlen(kw);
    for (const char *c = path; c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (e && n == k && !strncmp(c, kw, k)) return 1; /* a folder named so */
        if (!e)
            for (size_t i = 0; i + k < n; i++) /* in the file name: a keyword then a separator, after start or one */
                if (!strncmp(c + i, kw, k) && is_sep(c[i + k]) && (i == 0 || is_sep(c[i - 1]))) return 1;
        c = e ? e + 1 : NULL;
    }
    return 0;
}

static const char *const *split_keywords(const char *split) {
    static const char *const train[] = {"train", "training", NULL}, *const val[] = {"validation", "valid", "dev", "val", NULL},
                             *const test[] = {"test", "testing", "eval", "evaluation", NULL};
    return !strcmp(split, "train") ? train : !strcmp(split, "validation") ? val : !strcmp(split, "test") ? test : NULL;
}

static int names_split(const char *path, const char *split) {
    const char *const *kw = split_keywords(split);
    if (!kw) return names_keyword(path, split);
    for (; *kw; kw++)
        if (names_keyword(path, *kw)) return 1;
    return 0;
}

static int has_ext(const char *f, const char *ext) {
    size_t n = strlen(f), e = strlen(ext);
    return n > e && !strcasecmp(f + n - e, ext);
}

static int json_file(const char *f) { return has_ext(f, ".json") || has_ext(f, ".jsonl"); }

static int other_data(const char *f) {
    static const char *const ext[] = {".parquet", ".arrow", ".csv", ".tsv", ".txt", ".json.gz", ".jsonl.gz",
                                      ".jsonl.zst", ".zip", ".tar", ".gz", ".zst", ".xz"};
    if (!strcasecmp(f, "README.md") || f[0] == '.') return 0;
    for (size_t i = 0; i < AX_ARRAY_LEN(ext); i++)
        if (has_ext(f, ext[i])) return 1;
    return 0;
}

/* The one file of `files` that is the wanted split, or NULL with err. */
static const char *ds_pick(ax_arena *ar, const char *const *files, int n, const fe_hub_ds_sel *sel, char *err,
                           size_t errcap) {
    const char *split = sel && sel->split && *sel->split ? sel->split : "train";
    const char **pick = ax_arena_alloc(ar, sizeof *pick * (size_t)(n + 1));
    int np = 0, named = 0;
    const char *other = NULL;
    for (int i = 0; i < n; i++) {
        const char *f = files[i];
        if (sel && sel->ndata_files) {
            int m = 0;
            for (int j = 0; j < sel->ndata_files && !m; j++)
                m = !strcmp(f, sel->data_files[j]) || fnmatch(sel->data_files[j], f, FNM_PATHNAME) == 0;
            if (m && json_file(f)) pick[np++] = f;
            else if (m && !other) other = f;
            continue;
        }
        if (!json_file(f)) {
            if (!other && other_data(f)) other = f;
            continue;
        }
        if (names_split(f, "train") || names_split(f, "validation") || names_split(f, "test")) named = 1;
    }
    if (!(sel && sel->ndata_files))
        for (int i = 0; i < n; i++)
            if (json_file(files[i]) && (named ? names_split(files[i], split) : !strcmp(split, "train"))) pick[np++] = files[i];
    if (np == 1) return pick[0];
    ax_buf b = {0};
    if (np > 1) {
        ax_buf_printf(&b, "%d .json/.jsonl files make its \"%s\" split (", np, split);
        for (int i = 0; i < np && i < 4; i++) ax_buf_printf(&b, "%s%s", i ? ", " : "", pick[i]);
        ax_buf_printf(&b, "%s); axo reads one: name it with data_files", np > 4 ? ", ..." : "");
    } else if (other) {
        ax_buf_printf(&b, "its data is %s, and axo reads .json/.jsonl files only (convert it, e.g. with HF datasets' "
                          "to_json, and give the file's path)", other);
    } else {
        ax_buf_printf(&b, "no .json/.jsonl file %s", sel && sel->ndata_files ? "matches data_files" : "makes its split");
        if (!(sel && sel->ndata_files)) ax_buf_printf(&b, " \"%s\"", split);
    }
    snprintf(err, errcap, "%s", b.data);
    ax_buf_free(&b);
    return NULL;
}

/* ---- downloads ------------------------------------------------------------ */
typedef struct http_req {
    ax_buf body;       /* the response body, when no file */
    FILE *file;        /* else written here */
    int64_t got;
    char etag[160];    /* ETag of the last response, X-Linked-Etag of any (the LFS sha256) */
    char linked[160];
    char commit[48];   /* X-Repo-Commit */
    int64_t linked_size, length; /* X-Linked-Size of any response; Content-Length of the last (-1: none) */
    const char *label; /* progress lines name this ("org/name/file"), for large files */
    char redirect[2048]; /* where a 3xx answer points, when redirects are not followed */
    double last_note;  /* when the last progress line was printed */
} http_req;

static size_t on_body(char *p, size_t sz, size_t n, void *u) {
    http_req *r = u;
    size_t len = sz * n;
    if (r->file) {
        if (fwrite(p, 1, len, r->file) != len) return 0;
    } else {
        if (r->body.len + len > ((size_t)64 << 20)) return 0; /* an API answer is small */
        ax_buf_append(&r->body, p, len);
    }
    r->got += (int64_t)len;
    return len;
}

/* Header "name: value" into dst (quotes and a weak "W/" dropped). */
static int header_value(const char *line, size_t len, const char *name, char *dst, size_t cap) {
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':') return 0;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && isspace((unsigned char)end[-1])) end--;
    if (end - v >= 2 && v[0] == 'W' && v[1] == '/') v += 2;
    if (end - v >= 2 && *v == '"' && end[-1] == '"') v++, end--;
    size_t n = (size_t)(end - v);
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
    return 1;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u) {
    http_req *r = u;
    size_t len = sz * n;
    char num[32];
    if (len > 5 && !strncmp(p, "HTTP/", 5)) r->etag[0] = 0, r->length = -1; /* a new response (after a redirect) */
    if (header_value(p, len, "Content-Length", num, sizeof num)) r->length = strtoll(num, NULL, 10);
    header_value(p, len, "ETag", r->etag, sizeof r->etag);
    header_value(p, len, "X-Linked-Etag", r->linked, sizeof r->linked);
    header_value(p, len, "X-Repo-Commit", r->commit, sizeof r->commit);
    if (header_value(p, len, "X-Linked-Size", num, sizeof num)) r->linked_size = strtoll(num, NULL, 10);
    return len;
}

static const char *endpoint(void) {
    const char *e = getenv("HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

/* The token huggingface_hub would send: $HF_TOKEN (or the older
 * $HUGGING_FACE_HUB_TOKEN), else the file $HF_TOKEN_PATH or $HF_HOME/token;
 * none when $HF_HUB_DISABLE_IMPLICIT_TOKEN is true. Outer white space
 * (a file's newline) is dropped, as its _clean_token does; a control
 * character left inside is an error, never sent as a header. */
static int read_token(ax_arena *ar, const char **out, char *err, size_t errcap) {
    *out = NULL;
    if (env_true("HF_HUB_DISABLE_IMPLICIT_TOKEN")) return 0;
    const char *t = getenv("HF_TOKEN"), *from = "HF_TOKEN";
    if (!t || !*t) t = getenv("HUGGING_FACE_HUB_TOKEN"), from = "HUGGING_FACE_HUB_TOKEN";
    char *s = NULL;
    if (!t || !*t) {
        const char *path = getenv("HF_TOKEN_PATH");
        path = path && *path ? expand_home(ar, path) : ax_arena_printf(ar, "%s/token", hf_home(ar));
        if (!is_file(path)) return 0;
        ax_diag tmp;
        ax_diag_init(&tmp);
        size_t len = 0;
        char *f = ax_read_file(path, &len, &tmp);
        ax_diag_free(&tmp);
        if (!f) return 0;
        s = ax_arena_strdup(ar, f), from = path;
        free(f);
    } else {
        s = ax_arena_strdup(ar, t);
    }
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (*s && isspace((unsigned char)*s)) s++;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(err, errcap, "the token in %s holds a control character", from);
            return -1;
        }
    if (*s) *out = s;
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A line every 10 s while a large file arrives, so a long download is not mistaken for a hang. */
static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal, (void)ulnow;
    http_req *r = u;
    double t = now_s();
    if (dltotal < ((curl_off_t)64 << 20) || t - r->last_note < 10) return 0;
    r->last_note = t;
    fprintf(stderr, "axoc: %s: %lld of %lld MiB\n", r->label, (long long)(dlnow >> 20), (long long)(dltotal >> 20));
    return 0;
}

/* GET url into r, redirects followed, from byte resume_from on when it is
 * > 0; or with head, one HEAD, its redirect (if any) left in r->redirect.
 * Returns the final HTTP status, or -1 with err set to libcurl's reason
 * and *code to its error. */
static long http_get(const char *url, const char *token, http_req *r, int head, int64_t resume_from, CURLcode *code,
                     char *err, size_t errcap) {
    CURL *h = curl_easy_init();
    if (code) *code = CURLE_OK;
    if (!h) {
        snprintf(err, errcap, "libcurl could not start");
        return -1;
    }
    char ebuf[CURL_ERROR_SIZE] = {0};
    struct curl_slist *hdr = NULL;
    char auth[1024];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth); /* libcurl drops it on a redirect to another host */
    }
    r->length = r->linked_size = -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "axo/" AXO_VERSION);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, head ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"); /* never file:// or another scheme */
#else
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer ends after 60 s */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (head) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (resume_from > 0) curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)resume_from);
    if (r->label) {
        r->last_note = now_s();
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(h);
    if (code) *code = rc;
    long status = -1;
    r->redirect[0] = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        char *loc = NULL;
        if (head && curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            snprintf(r->redirect, sizeof r->redirect, "%s", loc);
    } else {
        snprintf(err, errcap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

static const char *status_reason(long status, int token) {
    if (status == 401 || status == 403)
        return token ? "the token has no access to it (a gated repo needs its terms accepted on the Hub)"
                     : "no such repo, or it is private or gated: set HF_TOKEN (or log in with `hf auth login`)";
    if (status == 404) return "no such repo, revision or file";
    return "the Hub answered with an error";
}

/* Makes snapshots/<commit>/<name> a link to ../../blobs/<etag>. */
static int link_blob(ax_arena *ar, const char *snapdir, const char *name, const char *etag, char *err, size_t errcap) {
    const char *lnk = ax_arena_printf(ar, "%s/%s", snapdir, name);
    const char *tmp = ax_arena_printf(ar, "%s.link.%ld", lnk, (long)getpid());
    ax_buf up = {0}; /* ../../blobs/<etag>, one more .. for each folder of a nested name */
    ax_buf_puts(&up, "../../");
    for (const char *c = strchr(name, '/'); c; c = strchr(c + 1, '/')) ax_buf_puts(&up, "../");
    const char *target = ax_arena_printf(ar, "%sblobs/%s", up.data, etag);
    ax_buf_free(&up);
    const char *slash = strrchr(lnk, '/');
    ax_diag md;
    ax_diag_init(&md);
    ax_mkdir_p(ax_arena_strndup(ar, lnk, (size_t)(slash - lnk)), &md);
    ax_diag_free(&md);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, lnk) != 0) {
        int e = errno;
        unlink(tmp);
        ax_buf b = {0};
        ax_buf_printf(&b, "cannot link %s: %s", lnk, strerror(e));
        snprintf(err, errcap, "%s", b.data);
        ax_buf_free(&b);
        return -1;
    }
    return 0;
}

static int etag_ok(const char *e) {
    if (!*e || strlen(e) > 128) return 0;
    for (const char *p = e; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
    return 1;
}

static int64_t file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* Downloads one file of the commit into the cache, as huggingface_hub does:
 * a HEAD names its blob (the ETag) and size; a blob already there (another
 * revision's) is only linked; else the bytes go to blobs/<etag>.incomplete,
 * resumed from where an interrupted download stopped, under the lock
 * huggingface_hub takes for that blob (.locks/<repo>/<etag>.lock), and are
 * renamed to blobs/<etag> once the size is right. */
static int fetch_file(ax_arena *ar, const char *cache, const char *rdir, int want, const char *repo_id,
                      const char *commit, const char *name, const char *token, char *err, size_t errcap) {
    const char *snapdir = ax_arena_printf(ar, "%s/snapshots/%s", rdir, commit);
    if (is_file(ax_arena_printf(ar, "%s/%s", snapdir, name))) return 0;
    CURL *h = curl_easy_init();
    ax_buf eu = {0}; /* each path component escaped, the '/' between kept (huggingface_hub's hf_hub_url) */
    for (const char *c = name; c && h;) {
        const char *e = strchr(c, '/');
        char *x = curl_easy_escape(h, c, e ? (int)(e - c) : 0);
        ax_buf_printf(&eu, "%s%s", x ? x : "", e ? "/" : "");
        curl_free(x);
        c = e ? e + 1 : NULL;
    }
    const char *url = ax_arena_printf(ar, "%s/%s%s/resolve/%s/%s", endpoint(), want & FE_HUB_DATASET ? "datasets/" : "",
                                      repo_id, commit, eu.data ? eu.data : name);
    ax_buf_free(&eu);
    if (h) curl_easy_cleanup(h);

    /* HEAD: redirects within the endpoint are followed (a renamed repo); one to another host (the LFS
     * storage, whose signed URL may refuse HEAD) is not: the Hub's own answer holds X-Linked-Etag/-Size */
    http_req hr = {0};
    const char *at = url;
    long st = -1;
    for (int hop = 0; hop < 5; hop++) {
        st = http_get(at, token, &hr, 1, 0, NULL, err, errcap);
        if (st < 300 || st >= 400 || !hr.redirect[0]) break;
        if (hr.linked[0] || strncmp(hr.redirect, endpoint(), strlen(endpoint())) ||
            hr.redirect[strlen(endpoint())] != '/')
            break;
        at = ax_arena_strdup(ar, hr.redirect);
    }
    if (st != 200 && !(st >= 300 && st < 400 && hr.linked[0])) {
        if (st >= 0) snprintf(err, errcap, "HEAD %s: HTTP %ld: %s", url, st, status_reason(st, token != NULL));
        return -1;
    }
    const char *etag = ax_arena_strdup(ar, hr.linked[0] ? hr.linked : hr.etag);
    int64_t size = hr.linked_size >= 0 ? hr.linked_size : st == 200 ? hr.length : -1;
    if (!etag_ok(etag)) {
        snprintf(err, errcap, "HEAD %s: the answer has no usable ETag to store the file under", url);
        return -1;
    }
    const char *blob = ax_arena_printf(ar, "%s/blobs/%s", rdir, etag);
    const char *lockdir = ax_arena_printf(ar, "%s/.locks/%s", cache, strrchr(rdir, '/') + 1);
    ax_diag tmp;
    ax_diag_init(&tmp);
    int lk = ax_mkdir_p(lockdir, &tmp) == 0 ? open(ax_arena_printf(ar, "%s/%s.lock", lockdir, etag),
                                                   O_RDWR | O_CREAT | O_CLOEXEC, 0644)
                                            : -1;
    ax_diag_free(&tmp);
    if (lk < 0) {
        snprintf(err, errcap, "cannot create a lock file under %s: %s", lockdir, strerror(errno));
        return -1;
    }
    if (flock(lk, LOCK_EX | LOCK_NB) != 0) { /* another download of this blob (axoc or huggingface_hub) */
        fprintf(stderr, "axoc: waiting for another download of %s/%s\n", repo_id, name);
        flock(lk, LOCK_EX);
    }
    int rc = -1;
    if (file_size(blob) >= 0 && (size < 0 || file_size(blob) == size)) {
        rc = link_blob(ar, snapdir, name, etag, err, errcap); /* another revision's, or the other download's */
        goto out;
    }
    const char *part = ax_arena_printf(ar, "%s.incomplete", blob);
    int64_t have = file_size(part);
    if (have < 0 || (size >= 0 && have > size)) have = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        http_req r = {0};
        r.label = ax_arena_printf(ar, "%s/%s", repo_id, name);
        r.file = fopen(part, have > 0 ? "ab" : "wb");
        if (!r.file) {
            snprintf(err, errcap, "cannot write %s: %s", part, strerror(errno));
            goto out;
        }
        if (have > 0) fprintf(stderr, "axoc: resuming %s/%s at byte %lld\n", repo_id, name, (long long)have);
        else fprintf(stderr, "axoc: downloading %s/%s\n", repo_id, name);
        CURLcode code;
        st = http_get(url, token, &r, 0, have, &code, err, errcap);
        int werr = fclose(r.file) != 0;
        if (code == CURLE_RANGE_ERROR && have > 0) { /* the server cannot resume: from the start */
            have = 0;
            continue;
        }
        int64_t total = have + r.got;
        if ((st != 200 && st != 206) || werr || (size >= 0 && total != size)) {
            if (st >= 0 && st != 200 && st != 206)
                snprintf(err, errcap, "GET %s: HTTP %ld: %s", url, st, status_reason(st, token != NULL));
            else if (st >= 0 && werr)
                snprintf(err, errcap, "cannot write %s: %s", part, strerror(errno));
            else if (st >= 0)
                snprintf(err, errcap, "GET %s: %lld bytes arrived of %lld", url, (long long)total, (long long)size);
            /* what arrived stays in .incomplete for the next try to resume; never under the blob's name */
            if (st >= 0 && st != 200 && st != 206) unlink(part);
            goto out;
        }
        if (rename(part, blob) != 0) {
            snprintf(err, errcap, "cannot move %s to %s: %s", part, blob, strerror(errno));
            goto out;
        }
        rc = link_blob(ar, snapdir, name, etag, err, errcap);
        goto out;
    }
out:
    flock(lk, LOCK_UN);
    close(lk);
    return rc;
}

/* The files of a listing that axo reads, by what the caller wants (FE_HUB_*):
 * config and tokenizer files at the top level always (they are small),
 * the weights from_pretrained takes with FE_HUB_WEIGHTS (model.safetensors,
 * or the index's shards; never *.bin, nor a second copy such as
 * consolidated.safetensors), a PEFT adapter's two files with FE_HUB_ADAPTER. */
static int wanted_file(const char *f, int want) {
    static const char *const small[] = {"config.json",           "generation_config.json", "tokenizer.json",
                                        "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                                        "chat_template.jinja",   "tokenizer.model",        "vocab.json",
                                        "merges.txt"};
    for (size_t i = 0; i < AX_ARRAY_LEN(small); i++)
        if (!strcmp(f, small[i])) return 1;
    if ((want & FE_HUB_WEIGHTS) && (!strcmp(f, "model.safetensors") || !strcmp(f, "model.safetensors.index.json")))
        return 1;
    return (want & FE_HUB_ADAPTER) && (!strcmp(f, "adapter_config.json") || !strcmp(f, "adapter_model.safetensors"));
}

/* Resolves revision to its commit with the Hub's API (as huggingface_hub
 * does online, so a branch that moved is followed), writes refs/<revision>,
 * and fetches the wanted files the snapshot lacks. Returns the snapshot, or
 * NULL with err; *unreachable is set when no HTTP answer came at all. */
static const char *download(ax_arena *ar, const char *cache, const char *rdir, const char *repo_id,
                            const char *revision, int want, const fe_hub_ds_sel *sel, const char **picked,
                            int *unreachable, char *err, size_t errcap) {
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errcap, "libcurl could not start");
            return NULL;
        }
        curl_ready = 1;
    }
    const char *token;
    if (read_token(ar, &token, err, errcap) != 0) return NULL;
    CURL *h = curl_easy_init();
    char *er = h ? curl_easy_escape(h, revision, 0) : NULL;
    const char *url =
        ax_arena_printf(ar, "%s/api/%s/%s/revision/%s", endpoint(), kind_of(want), repo_id, er ? er : revision);
    curl_free(er);
    if (h) curl_easy_cleanup(h);
    http_req r = {0};
    long st = http_get(url, token, &r, 0, 0, NULL, err, errcap);
    if (st != 200) {
        if (st >= 0) snprintf(err, errcap, "GET %s: HTTP %ld: %s", url, st, status_reason(st, token != NULL));
        else *unreachable = 1;
        ax_buf_free(&r.body);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, &je);
    ax_buf_free(&r.body);
    json_t *sib = j ? json_object_get(j, "siblings") : NULL;
    const char *sha = j ? json_string_value(json_object_get(j, "sha")) : NULL;
    if (!sha || !is_hash(sha) || !json_is_array(sib)) {
        snprintf(err, errcap, "GET %s: expected a JSON object with \"sha\" (a commit) and \"siblings\", found %s", url,
                 j ? "another answer" : je.text);
        json_decref(j);
        return NULL;
    }
    const char *commit = ax_arena_strdup(ar, sha);
    int nf = (int)json_array_size(sib), have_index = 0, have_single = 0;
    const char **files = ax_arena_alloc(ar, sizeof *files * (size_t)(nf + 1));
    int nwant = 0;
    for (int i = 0; i < nf; i++) {
        const char *f = json_string_value(json_object_get(json_array_get(sib, (size_t)i), "rfilename"));
        if (f && (want & FE_HUB_DATASET) && safe_rel(f)) { /* every file: ds_pick chooses below */
            files[nwant++] = ax_arena_strdup(ar, f);
            continue;
        }
        if (!f || !wanted_file(f, want)) continue;
        if (!strcmp(f, "model.safetensors.index.json")) have_index = 1;
        if (!strcmp(f, "model.safetensors")) have_single = 1;
        files[nwant++] = ax_arena_strdup(ar, f);
    }
    json_decref(j);
    if (want & FE_HUB_DATASET) {
        const char *f = ds_pick(ar, files, nwant, sel, err, errcap);
        if (!f) return NULL;
        files[0] = *picked = f;
        nwant = 1;
    }
    ax_diag tmp;
    ax_diag_init(&tmp);
    const char *snapdir = ax_arena_printf(ar, "%s/snapshots/%s", rdir, commit);
    int ok = ax_mkdir_p(snapdir, &tmp) == 0 && ax_mkdir_p(ax_arena_printf(ar, "%s/blobs", rdir), &tmp) == 0 &&
             ax_mkdir_p(ax_arena_printf(ar, "%s/refs", rdir), &tmp) == 0;
    if (!ok) {
        snprintf(err, errcap, "%s", tmp.n ? tmp.entries[0].msg : "cannot create the cache folders");
        ax_diag_free(&tmp);
        return NULL;
    }
    for (int i = 0; i < nwant; i++) {
        if (have_single && have_index && !strcmp(files[i], "model.safetensors.index.json")) continue;
        if (fetch_file(ar, cache, rdir, want, repo_id, commit, files[i], token, err, errcap) != 0) {
            ax_diag_free(&tmp);
            return NULL;
        }
    }
    if (have_index && !have_single) {
        const char **sh;
        int n = index_shards(ax_arena_printf(ar, "%s/model.safetensors.index.json", snapdir), ar, &sh);
        if (n < 0) {
            snprintf(err, errcap, "%s/model.safetensors.index.json: expected a \"weight_map\" of shard file names",
                     snapdir);
            ax_diag_free(&tmp);
            return NULL;
        }
        for (int i = 0; i < n; i++)
            if (fetch_file(ar, cache, rdir, want, repo_id, commit, sh[i], token, err, errcap) != 0) {
                ax_diag_free(&tmp);
                return NULL;
            }
    }
    /* refs/<revision> last (huggingface_hub writes it even for a partial snapshot; here it follows the files
     * the repo has of what was wanted) */
    if (strcmp(revision, commit)) {
        const char *ref = ax_arena_printf(ar, "%s/refs/%s", rdir, revision);
        const char *slash = strrchr(ref, '/');
        if (ax_mkdir_p(ax_arena_strndup(ar, ref, (size_t)(slash - ref)), &tmp) != 0 ||
            ax_write_file_atomic(ref, commit, strlen(commit), &tmp) != 0) {
            snprintf(err, errcap, "%s", tmp.n ? tmp.entries[0].msg : "cannot write the ref");
            ax_diag_free(&tmp);
            return NULL;
        }
    }
    ax_diag_free(&tmp);
    return snapdir;
}

#else
static const char *download(ax_arena *ar, const char *cache, const char *rdir, const char *repo_id,
                            const char *revision, int want, const fe_hub_ds_sel *sel, const char **picked,
                            int *unreachable, char *err, size_t errcap) {
    (void)ar, (void)cache, (void)rdir, (void)repo_id, (void)revision, (void)want, (void)sel, (void)picked;
    *unreachable = 1;
    snprintf(err, errcap, "this axo was built without libcurl (install libcurl4-openssl-dev and rebuild)");
    return NULL;
}
#endif

/* The files under dir (relative paths, in the arena), for ds_pick on a cached snapshot. */
static void list_files(ax_arena *ar, const char *dir, const char *rel, const char ***v, int *n, int *cap) {
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        const char *p = ax_arena_printf(ar, "%s/%s", dir, e->d_name);
        const char *r = rel ? ax_arena_printf(ar, "%s/%s", rel, e->d_name) : ax_arena_strdup(ar, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (*n < 100000) list_files(ar, p, r, v, n, cap);
        } else if (S_ISREG(st.st_mode)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                const char **nv = ax_arena_alloc(ar, sizeof *nv * (size_t)*cap);
                if (*n) memcpy(nv, *v, sizeof *nv * (size_t)*n);
                *v = nv;
            }
            (*v)[(*n)++] = r;
        }
    }
    closedir(dh);
}

/* A model's snapshot directory, or a dataset's chosen file (sel). */
static const char *resolve_repo(ax_arena *ar, const char *repo_id, const char *revision, int want,
                                const fe_hub_ds_sel *sel, const char *where, const char *key, ax_diag *d) {
    if (!revision || !*revision) revision = "main";
    if (strstr(revision, "..") || revision[0] == '/' || strchr(revision, '\\')) {
        ax_error(d, where, "%s: the revision \"%s\" is not a branch, a tag or a commit hash", key, revision);
        return NULL;
    }
    const char *cache = fe_hub_cache_dir(ar);
    const char *rdir = repo_dir(ar, cache, want, repo_id);
    int offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    char err[1024] = {0};
    int unreachable = 0;
    const char *picked = NULL;
    if (g_download && !offline) { /* online, as from_pretrained: the revision as the Hub has it now */
        const char *got = download(ar, cache, rdir, repo_id, revision, want, sel, &picked, &unreachable, err, sizeof err);
        if (got && picked) return ax_arena_printf(ar, "%s/%s", got, picked);
        if (got) {
            const char *lack = missing(ar, got, want);
            if (!lack) return got;
            ax_error(d, where, "%s: the Hub repo \"%s\" (revision \"%s\") has no %s%s", key, repo_id, revision, lack,
                     !strncmp(lack, "model.safetensors", 17)   ? " (axo reads safetensors weights, not pytorch_model.bin)"
                     : !strcmp(lack, "adapter_model.safetensors") ? " (axo reads safetensors adapters, not adapter_model.bin)"
                                                                  : "");
            return NULL;
        }
        if (!unreachable) {
            ax_error(d, where, "%s: cannot download %s\"%s\" (revision \"%s\") into %s: %s", key,
                     want & FE_HUB_DATASET ? "the dataset " : "", repo_id, revision, cache, err);
            return NULL;
        }
    }
    /* offline, or the Hub out of reach: the cache as it is (transformers falls back the same way) */
    const char *commit = read_ref(ar, rdir, revision);
    const char *snap = commit ? ax_arena_printf(ar, "%s/snapshots/%s", rdir, commit) : NULL;
    const char *lack = snap ? missing(ar, snap, want) : "the revision";
    if (snap && (want & FE_HUB_DATASET)) {
        const char **v = NULL;
        int n = 0, cap = 0;
        list_files(ar, snap, NULL, &v, &n, &cap);
        char why2[1024];
        picked = ds_pick(ar, v, n, sel, why2, sizeof why2);
        if (!picked) {
            ax_error(d, where, "%s: the cached snapshot %s of the Hub dataset \"%s\": %s", key, snap, repo_id, why2);
            return NULL;
        }
        snap = ax_arena_printf(ar, "%s/%s", snap, picked);
    }
    if (!lack) {
        if (unreachable)
            ax_warn(d, where, "%s: the Hub is out of reach (%s); using the cached snapshot of \"%s\" at revision \"%s\"",
                    key, err, repo_id, revision);
        return snap;
    }
    const char *why = offline        ? " (downloads are off: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set)"
                      : unreachable && g_download ? ""
                                                  : " (downloads are off here)";
    char reach[1100] = "";
    if (unreachable && g_download) snprintf(reach, sizeof reach, "; the Hub is out of reach: %s", err);
    if (!snap)
        ax_error(d, where,
                 "%s: \"%s\" is not a local %s, and the Hugging Face cache %s has no snapshot of it at "
                 "revision \"%s\"%s%s",
                 key, repo_id, want & FE_HUB_DATASET ? "file" : "directory", cache, revision, why, reach);
    else
        ax_error(d, where, "%s: \"%s\" is not a local directory, and its snapshot %s in the Hugging Face cache lacks %s%s%s",
                 key, repo_id, snap, lack, why, reach);
    return NULL;
}

const char *fe_hub_model(ax_arena *ar, const char *repo_id, const char *revision, int want, const char *where,
                         const char *key, ax_diag *d) {
    return resolve_repo(ar, repo_id, revision, want & ~FE_HUB_DATASET, NULL, where, key, d);
}

const char *fe_hub_dataset(ax_arena *ar, const char *repo_id, const char *revision, const fe_hub_ds_sel *sel,
                           const char *where, const char *key, ax_diag *d) {
    return resolve_repo(ar, repo_id, revision, FE_HUB_DATASET, sel, where, key, d);
}
