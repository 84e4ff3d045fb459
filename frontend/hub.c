/* hub.c — Hub repo ids resolved through huggingface_hub's cache, and
 * downloaded into it with libcurl (hub.h). */
#include "frontend/hub.h"
#include "frontend/internal.h"

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
#include <utf8proc.h>
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

/* A file's text in the arena, or NULL when it is not there or unreadable (nothing reported). */
static char *read_quiet(ax_arena *ar, const char *p, size_t *len) {
    ax_diag tmp;
    ax_diag_init(&tmp);
    char *t = is_file(p) ? ax_read_file(p, len, &tmp) : NULL;
    ax_diag_free(&tmp);
    char *r = t ? ax_arena_strndup(ar, t, *len) : NULL;
    free(t);
    return r;
}

/* refs/<revision> -> the commit it names, or NULL. */
static const char *read_ref(ax_arena *ar, const char *rdir, const char *revision) {
    if (is_hash(revision)) return revision;
    size_t len = 0;
    char *t = read_quiet(ar, ax_arena_printf(ar, "%s/refs/%s", rdir, revision), &len);
    if (!t) return NULL;
    while (len && isspace((unsigned char)t[len - 1])) t[--len] = 0;
    return is_hash(t) ? t : NULL;
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

/* ---- dataset repos: which files make the split ------------------------------
 * HF datasets' inference for a repo without a loading script (datasets 5.2
 * data_files.py), on the repo's paths: data/<split>-NNNNN-of-NNNNN*.* shards
 * first, then the first of these pattern sets that matches any file: *.eval
 * logs, task.toml/instruction.md, a split keyword as (part of) a folder
 * name, as part of a file name, and "**" (everything is train). data_files
 * replaces that with its own patterns, all of them train. Patterns are
 * fsspec globs ("**" a whole component: any folders); README.md,
 * config.json and dataset_info(s).json / dataset_dict.json are skipped
 * unless named; so are hidden paths and __special__ folders a pattern does
 * not spell out; a split's files must have an extension datasets reads. */
static const char *const ds_exts[] = {
    "3G2", "3GP", "3g2", "3gp", "AIFF", "APNG", "ASF", "AU", "AVI", "AVR", "BLP", "BMP", "BUFR", "BW", "CAF", "CUR",
    "DCX", "DDS", "DIB", "EMF", "ENT", "EPS", "F4V", "FIT", "FITS", "FLAC", "FLC", "FLI", "FLV", "FTC", "FTU", "GBR",
    "GIF", "GLB", "GLTF", "GRIB", "HTK", "ICB", "ICNS", "ICO", "IIM", "IM", "IRCAM", "J2C", "J2K", "JFIF", "JP2",
    "JPC", "JPE", "JPEG", "JPF", "JPG", "JPX", "M4V", "MAT4", "MAT5", "MKV", "MOV", "MP3", "MP4", "MPC2K", "MPEG",
    "MPG", "MSP", "MXF", "NII", "NIST", "NUT", "OGG", "OGM", "OPUS", "PAF", "PBM", "PCD", "PCX", "PDB", "PDF", "PGM",
    "PLY", "PNG", "PNM", "PPM", "PS", "PSD", "PVF", "PXR", "RAS", "RAW", "RF64", "RGB", "RGBA", "SD2", "SDS", "SGI",
    "STL", "SVX", "TGA", "TIF", "TIFF", "VDA", "VOC", "VST", "W64", "WAV", "WAVEX", "WEBM", "WEBP", "WMA", "WMF",
    "WMV", "WVE", "XBM", "XI", "XPM", "afa", "aiff", "apng", "arrow", "asf", "au", "avi", "avr", "blp", "bmp",
    "bufr", "bw", "caf", "cif", "conll", "conllu", "csv", "cur", "dcx", "dds", "dib", "emf", "ent", "eps", "eval",
    "f4v", "fa", "faa", "fasta", "fastq", "ffn", "fit", "fits", "flac", "flc", "fli", "flv", "fna", "fq", "frn",
    "ftc", "ftu", "gb", "gbk", "gbr", "genbank", "geoparquet", "gif", "glb", "gltf", "gpq", "grib", "h5", "hdf5",
    "htk", "icb", "icns", "ico", "idx", "iim", "im", "ircam", "j2c", "j2k", "jfif", "jp2", "jpc", "jpe", "jpeg",
    "jpf", "jpg", "jpx", "json", "jsonl", "lance", "m4v", "manifest", "mat4", "mat5", "md", "mkv", "mmcif", "mov",
    "mp3", "mp4", "mpc2k", "mpeg", "mpg", "msp", "mxf", "ndjson", "nii", "nist", "nut", "ogg", "ogm", "opus", "paf",
    "parquet", "pbm", "pcd", "pcx", "pdb", "pdf", "pgm", "ply", "png", "pnm", "ppm", "ps", "psd", "pvf", "pxr",
    "ras", "raw", "rf64", "rgb", "rgba", "sd2", "sds", "sgi", "stl", "svx", "tar", "tga", "tif", "tiff", "toml",
    "tsfile", "tsv", "txn", "txt", "vda", "voc", "vortex", "vst", "w64", "wav", "wavex", "webm", "webp", "wma",
    "wmf", "wmv", "wve", "xbm", "xi", "xml", "xpm", "zip",
};
static const char *const ds_ignored[] = {"README.md",         "config.json",     "dataset_info.json",
                                         "dataset_infos.json", "dummy_data.zip", "dataset_dict.json"};
#define DS_SEP "[-._ 0-9]"
static const char *const ds_kw_train[] = {"train", "training", NULL},
                         *const ds_kw_val[] = {"validation", "valid", "dev", "val", NULL},
                         *const ds_kw_test[] = {"test", "testing", "eval", "evaluation", NULL};

static const char *base_of(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* One path component against one pattern component (fnmatch: * ? [...]). */
static int glob_comp(const char *pat, size_t pl, const char *s, size_t sl) {
    char pb[512], sb[512];
    if (pl >= sizeof pb || sl >= sizeof sb) return 0;
    memcpy(pb, pat, pl), pb[pl] = 0;
    memcpy(sb, s, sl), sb[sl] = 0;
    return fnmatch(pb, sb, 0) == 0;
}

static int glob_at(const char *pat, const char *path) {
    const char *pe = strchr(pat, '/');
    size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
    const char *se = strchr(path, '/');
    size_t sl = se ? (size_t)(se - path) : strlen(path);
    if (pl == 2 && pat[0] == '*' && pat[1] == '*') { /* zero or more whole components */
        if (!pe) return 1;
        if (glob_at(pe + 1, path)) return 1;
        return se ? glob_at(pat, se + 1) : 0;
    }
    if (!glob_comp(pat, pl, path, sl)) return 0;
    if (!pe || !se) return !pe && !se;
    return glob_at(pe + 1, se + 1);
}

/* Its hidden parts (".x", not "." or "..") and, before the last part, its __special__ folders. */
static void hidden_special(const char *p, int *hidden, int *special) {
    *hidden = *special = 0;
    for (const char *c = p; c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        int dots = 1;
        for (size_t i = 0; i < n; i++) dots &= c[i] == '.';
        if (n && c[0] == '.' && !dots) ++*hidden;
        if (e && n >= 2 && c[0] == '_' && c[1] == '_') ++*special;
        c = e ? e + 1 : NULL;
    }
}

static int ds_ext_ok(const char *f) {
    for (const char *dot = strchr(base_of(f), '.'); dot; dot = strchr(dot + 1, '.')) {
        const char *e = strchr(dot + 1, '.');
        size_t n = e ? (size_t)(e - dot - 1) : strlen(dot + 1);
        for (size_t i = 0; i < AX_ARRAY_LEN(ds_exts); i++)
            if (strlen(ds_exts[i]) == n && !strncmp(ds_exts[i], dot + 1, n)) return 1;
    }
    return 0;
}

/* datasets' resolve_pattern: does file f count for pattern pat (with exts: only files of a readable extension)? */
static int ds_resolves(const char *pat, const char *f, int exts) {
    int depth = 0; /* glob_at recurses per component: a path of thousands is none a dataset has */
    for (const char *c = f; (c = strchr(c, '/')) && depth <= 256; c++) depth++;
    if (depth > 256 || !glob_at(pat, f)) return 0;
    const char *b = base_of(f);
    for (size_t i = 0; i < AX_ARRAY_LEN(ds_ignored); i++)
        if (!strcmp(b, ds_ignored[i]) && strcmp(base_of(pat), ds_ignored[i])) return 0;
    int hf, sf, hp, sp;
    hidden_special(f, &hf, &sf);
    hidden_special(pat, &hp, &sp);
    return hf == hp && sf == sp && (!exts || ds_ext_ok(f));
}

static int ds_any(const char *pat, const char *const *files, int n) {
    for (int i = 0; i < n; i++)
        if (ds_resolves(pat, files[i], 0)) return 1;
    return 0;
}

/* A split's patterns: a keyword set in folder or file names (which 0/1), or the shards of one split name. */
static void ds_split_patterns(ax_arena *ar, const char *const *kw, int dir, const char ***pats, int *np) {
    static const char *const in_dir[] = {"**/%s/**", "**/%s" DS_SEP "*/**", "**/*" DS_SEP "%s/**",
                                         "**/*" DS_SEP "%s" DS_SEP "*/**"},
                             *const in_file[] = {"**/%s" DS_SEP "*", "**/*" DS_SEP "%s" DS_SEP "*"};
    int k = 0;
    for (int i = 0; kw[i]; i++) k++;
    *pats = ax_arena_alloc(ar, sizeof **pats * (size_t)(k * 4 + 1));
    *np = 0;
    for (int i = 0; kw[i]; i++)
        for (int j = 0; j < (dir ? 4 : 2); j++) (*pats)[(*np)++] = ax_arena_printf(ar, dir ? in_dir[j] : in_file[j], kw[i]);
}

/* "name-00000-of-00002.jsonl" -> "name": the text before the last -NNNNN-of-NNNN (datasets' greedy match). */
static const char *shard_split(ax_arena *ar, const char *base) {
    size_t n = strlen(base);
    for (size_t i = n; i-- > 1;) {
        const char *p = base + i;
        int ok = p[0] == '-' && i + 14 <= n;
        for (int k = 1; ok && k <= 5; k++) ok = p[k] >= '0' && p[k] <= '9';
        ok = ok && !strncmp(p + 6, "-of-", 4);
        for (int k = 10; ok && k <= 13; k++) ok = p[k] >= '0' && p[k] <= '9';
        if (ok) return ax_arena_strndup(ar, base, i);
    }
    return NULL;
}

static int split_name_ok(const char *s) { /* datasets' ^\w+(\.\w+)*$, \w as Python's: letters, digits, _ */
    if (!*s || *s == '.') return 0;
    for (const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s; *p;) {
        if (*p == '.') {
            if (p[1] == '.' || !p[1]) return 0;
            p++;
            continue;
        }
        utf8proc_int32_t c;
        const utf8proc_ssize_t k = utf8proc_iterate(p, -1, &c);
        if (k <= 0) return 0;
        const utf8proc_category_t cat = utf8proc_category(c);
        const int word = c == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        if (!word) return 0;
        p += k;
    }
    return 1;
}

static int cmp_path(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
/* paths in byte order (strcmp: fsspec's sorted() of str, for UTF-8 names) */
static void sort_paths(const char **v, int n) {
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_path);
}

/* ---- which splits a file list has: {split name -> patterns} -------------------------------------------- */
typedef struct {
    int n, cap;
    const char **name;
    const char *const **pats;
    int *np;
    ax_arena *ar; /* where the arrays grow */
} ds_splits;

/* a split (once: a name already there keeps its patterns, as a dict keeps the first key's place) */
static int ds_add_split(ds_splits *sp, const char *name, const char *const *pats, int np) {
    for (int i = 0; i < sp->n; i++)
        if (!strcmp(sp->name[i], name)) return 0;
    if (sp->n == sp->cap) {
        const int cap = sp->cap ? 2 * sp->cap : 8;
        const char **nm = ax_arena_alloc(sp->ar, sizeof *nm * (size_t)cap);
        const char *const **pt = ax_arena_alloc(sp->ar, sizeof *pt * (size_t)cap);
        int *n = ax_arena_alloc(sp->ar, sizeof *n * (size_t)cap);
        if (sp->n) {
            memcpy(nm, sp->name, sizeof *nm * (size_t)sp->n);
            memcpy(pt, sp->pats, sizeof *pt * (size_t)sp->n);
            memcpy(n, sp->np, sizeof *n * (size_t)sp->n);
        }
        sp->name = nm, sp->pats = pt, sp->np = n, sp->cap = cap;
    }
    sp->name[sp->n] = name, sp->pats[sp->n] = pats, sp->np[sp->n++] = np;
    return 0;
}
/* a copy whose arrays are its own (so that res below may change them) */
static ds_splits ds_copy(const ds_splits *a) {
    ds_splits c = {.ar = a->ar};
    for (int i = 0; i < a->n; i++) ds_add_split(&c, a->name[i], a->pats[i], a->np[i]);
    return c;
}

/* datasets' get_data_patterns: the splits HF datasets infers from the files, with their patterns */
static int ds_infer_patterns(ax_arena *ar, const char *const *files, int n, ds_splits *sp, char *err, size_t errcap) {
    static const char *const shard = "data/*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*";
    *sp = (ds_splits){.ar = ar};
    if (ds_any(shard, files, n)) {
        for (int i = 0; i < n; i++) {
            if (!ds_resolves(shard, files[i], 0)) continue;
            const char *nm = shard_split(ar, base_of(files[i]));
            if (!nm || !split_name_ok(nm)) {
                snprintf(err, errcap, "%s: a shard's split name must be letters, digits and _ (and dots between)", files[i]);
                return -1;
            }
            const char **p = ax_arena_alloc(ar, sizeof *p);
            p[0] = ax_arena_printf(ar, "data/%s-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*", nm);
            ds_add_split(sp, nm, p, 1);
        }
        return 0;
    }
    static const char *const logs[] = {"**/*.eval"}, *const harbor[] = {"**/task.toml", "**/instruction.md"};
    static const char *const *const kws[] = {ds_kw_train, ds_kw_val, ds_kw_test};
    static const char *const names[] = {"train", "validation", "test"};
    for (int set = 0; set < 5 && !sp->n; set++) {
        for (int k3 = 0; k3 < 3; k3++) {
            const char **ps;
            int k;
            if (set == 0 || set == 1) {
                if (k3) break;
                ps = (const char **)(set ? harbor : logs), k = set ? 2 : 1;
            } else if (set == 4) {
                if (k3) break;
                ps = ax_arena_alloc(ar, sizeof *ps), ps[0] = "**", k = 1;
            } else {
                ds_split_patterns(ar, kws[k3], set == 2, &ps, &k);
            }
            int hit = 0;
            for (int j = 0; j < k && !hit; j++) hit = ds_any(ps[j], files, n);
            if (hit) ds_add_split(sp, set == 0 ? "logs" : set == 1 ? "test" : names[k3], ps, k);
        }
    }
    return 0;
}

/* The files of `files` under folder `base` ("" the root) that patterns pats (relative to base) resolve to, in
 * datasets' order: pattern after pattern, each one's matches sorted, each file once; with exts, only files of
 * an extension datasets reads. */
static int ds_resolve(ax_arena *ar, const char *const *files, int n, const char *base, const char *const *pats, int np,
                      int exts, const char ***out, char *err, size_t errcap) {
    const char **v = ax_arena_alloc(ar, sizeof *v * ((size_t)n * (size_t)(np ? np : 1) + 1));
    const size_t bl = strlen(base);
    int nv = 0;
    for (int j = 0; j < np; j++) {
        const int first = nv;
        for (int i = 0; i < n; i++) { /* a file two patterns match is read twice, as datasets reads it */
            const char *f = files[i];
            if (bl && (strncmp(f, base, bl) || f[bl] != '/')) continue;
            if (ds_resolves(pats[j], f + (bl ? bl + 1 : 0), exts)) v[nv++] = f;
        }
        if (nv == first && !strpbrk(pats[j], "*?[")) { /* datasets: a path without a wildcard must exist */
            snprintf(err, errcap, "its data file \"%s%s%s\" is not there%s", base, bl ? "/" : "", pats[j],
                     exts ? " (or not of a format HF datasets reads)" : "");
            return -1;
        }
        sort_paths(v + first, nv - first); /* as fsspec's glob lists them */
    }
    *out = v;
    return nv;
}

/* A data_files pattern or data_dir as datasets resolves it relative to its base: "./" parts and repeated or
 * trailing slashes dropped; NULL with err for "**" inside a path component (fsspec refuses it). */
static const char *ds_norm_pattern(ax_arena *ar, const char *pat, char *err, size_t errcap) {
    ax_buf b = {0};
    for (const char *c = pat; c;) {
        const char *e = strchr(c, '/');
        const size_t n = e ? (size_t)(e - c) : strlen(c);
        const char *dd = n >= 2 ? memmem(c, n, "**", 2) : NULL;
        if (dd && n != 2) {
            snprintf(err, errcap, "the data_files pattern \"%s\": '**' can only be a whole path component", pat);
            ax_buf_free(&b);
            return NULL;
        }
        if (n && !(n == 1 && c[0] == '.')) {
            if (b.len) ax_buf_append(&b, "/", 1);
            ax_buf_append(&b, c, n);
        }
        c = e ? e + 1 : NULL;
    }
    const char *r = ax_arena_strdup(ar, b.data ? b.data : "");
    ax_buf_free(&b);
    return r;
}

/* ---- the format (datasets' infer_module_for_data_files) ------------------------------------------------- */
/* the builder an extension (lower case, no dot) selects; NULL for one datasets does not read */
static const char *ds_module_of(ax_arena *ar, const char *ext) {
    static const char *const mods[][2] = {{"json", "json"},       {"jsonl", "json"},  {"ndjson", "json"},
                                          {"parquet", "parquet"}, {"geoparquet", "parquet"}, {"gpq", "parquet"},
                                          {"csv", "csv"},         {"tsv", "csv\tsep"}, {"txt", "text"},
                                          {"arrow", "arrow"}};
    for (size_t i = 0; i < AX_ARRAY_LEN(mods); i++)
        if (!strcmp(ext, mods[i][0])) return mods[i][1];
    if (!strcmp(ext, "zip") || !strcmp(ext, "idx") || !strcmp(ext, "txn") || !strcmp(ext, "manifest")) return NULL;
    for (size_t i = 0; i < AX_ARRAY_LEN(ds_exts); i++) /* a builder axo does not read: named by its extension */
        if (!strcmp(ext, ds_exts[i])) return ax_arena_printf(ar, "other\t%s", ext);
    return NULL;
}

/* the extensions a builder's files may have (its module's; datasets' filter is case-sensitive) */
static int ds_module_file(const char *module, const char *path) {
    static const char *const json[] = {".json", ".jsonl", ".ndjson", ".zip", NULL},
                             *const pq[] = {".parquet", ".geoparquet", ".gpq", ".zip", NULL},
                             *const csv[] = {".csv", ".tsv", ".zip", NULL}, *const txt[] = {".txt", ".zip", NULL},
                             *const arrow[] = {".arrow", ".zip", NULL};
    char dotted[64];
    const char *one[2] = {dotted, NULL};
    const char *tab = strchr(module, '\t');
    snprintf(dotted, sizeof dotted, ".%s", tab ? tab + 1 : module); /* other\t<ext>: ".<ext>" */
    const char *const *ex = !strcmp(module, "json")     ? json
                            : !strcmp(module, "parquet") ? pq
                            : !strncmp(module, "csv", 3) ? csv
                            : !strcmp(module, "text")    ? txt
                            : !strcmp(module, "arrow")   ? arrow
                                                          : one;
    for (int k = 0; ex[k]; k++) /* .*(ext)(\..+)?$ */
        for (const char *at = strstr(path, ex[k]); at; at = strstr(at + 1, ex[k])) {
            const char *rest = at + strlen(ex[k]);
            if (!*rest || (rest[0] == '.' && rest[1])) return 1;
        }
    return 0;
}

/* the builder for one split's files: the most common extension, ignoring metadata files, ".parquet" first in a
 * tie, then .lance .vortex .arrow .jsonl .json .csv, then the extension's name (descending) */
static const char *ds_infer_module(ax_arena *ar, const char *const *files, int n) {
    static const char *const meta[] = {"instruction.md", "latest_version_hint.json", "metadata.csv", "metadata.jsonl",
                                       "metadata.parquet", "task.toml"};
    static const char *const favour[] = {".parquet", ".lance", ".vortex", ".arrow", ".jsonl", ".json", ".csv"};
    size_t maxe = 1; /* a suffix per dot of a base name, at most */
    for (int i = 0; i < n; i++)
        for (const char *c = base_of(files[i]); (c = strchr(c, '.')); c++) maxe++;
    const char **ext = ax_arena_alloc(ar, sizeof *ext * maxe);
    int *meta_of = ax_arena_alloc(ar, sizeof(int) * maxe), *count = ax_arena_alloc(ar, sizeof(int) * maxe), ne = 0;
    for (int i = 0; i < n; i++) {
        const char *b = base_of(files[i]);
        int is_meta = 0;
        for (size_t k = 0; k < AX_ARRAY_LEN(meta); k++) is_meta |= !strcmp(b, meta[k]);
        for (const char *dot = strchr(b, '.'); dot; dot = strchr(dot + 1, '.')) {
            const char *e = strchr(dot + 1, '.');
            char *x = ax_arena_strndup(ar, dot, e ? (size_t)(e - dot) : strlen(dot));
            for (char *c = x; *c; c++) *c = (char)tolower((unsigned char)*c);
            int k = 0;
            while (k < ne && !(meta_of[k] == is_meta && !strcmp(ext[k], x))) k++;
            if (k == ne) ext[ne] = x, meta_of[ne] = is_meta, count[ne++] = 0;
            count[k]++;
        }
    }
    int *used = ax_arena_alloc(ar, sizeof(int) * maxe);
    for (int round = 0; round < ne; round++) {
        int best = -1;
        for (int k = 0; k < ne; k++) {
            if (used[k]) continue;
            if (best < 0) {
                best = k;
                continue;
            }
            int c = (!meta_of[k]) - (!meta_of[best]);
            if (!c) c = count[k] - count[best];
            for (size_t f = 0; !c && f < AX_ARRAY_LEN(favour); f++) c = !strcmp(ext[k], favour[f]) - !strcmp(ext[best], favour[f]);
            if (!c) c = strcmp(ext[k], ext[best]);
            if (c > 0) best = k;
        }
        used[best] = 1;
        const char *m = ds_module_of(ar, ext[best] + 1);
        if (m) return m;
        if (!strcmp(ext[best], ".zip")) return "zip";
    }
    return NULL;
}

/* ---- the dataset card: README.md's YAML block and .huggingface.yaml, their `configs` ------------------------ */
typedef struct {
    const char *name, *data_dir;
    int is_default, has_data_files, data_files_key; /* data_files_key: the key is there, null or not */
    ds_splits data_files;
} ds_config;

/* PyYAML's YAML 1.1 resolver, its int and float regexes spelled out (POSIX regex is not used: libonig, linked
 * for the tokenizer, exports regcomp/regexec of its own) */
static size_t span_of(const char *s, const char *set) { return strspn(s, set); }
static int sexagesimal(const char **p) { /* (:[0-5]?[0-9])+ */
    int k = 0;
    while (**p == ':') {
        const char *q = *p + 1;
        if (q[0] >= '0' && q[0] <= '5' && q[1] >= '0' && q[1] <= '9') q += 2;
        else if (q[0] >= '0' && q[0] <= '9') q += 1;
        else break;
        *p = q, k++;
    }
    return k;
}
int fe_yaml11_int(const char *s) {
    const char *p = s + (*s == '-' || *s == '+');
    if (p[0] == '0' && p[1] == 'b') return p[2] && !p[2 + span_of(p + 2, "01_")];
    if (p[0] == '0' && p[1] == 'x') return p[2] && !p[2 + span_of(p + 2, "0123456789abcdefABCDEF_")];
    if (p[0] == '0') return !p[1] || !p[1 + span_of(p + 1, "01234567_")];
    if (p[0] < '1' || p[0] > '9') return 0;
    p += 1 + span_of(p + 1, "0123456789_");
    if (!*p) return 1;
    return sexagesimal(&p) && !*p;
}
int fe_yaml11_float(const char *s) {
    static const char *const special[] = {".nan", ".NaN", ".NAN"}, *const inf[] = {".inf", ".Inf", ".INF"};
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(s, special[i])) return 1;
    const int sign = *s == '-' || *s == '+';
    const char *p = s + sign;
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(p, inf[i])) return 1;
    if (*p == '.') { /* \.[0-9][0-9_]*([eE][-+][0-9]+)?, unsigned */
        if (sign || p[1] < '0' || p[1] > '9') return 0;
        p += 2 + span_of(p + 2, "0123456789_");
    } else {
        if (*p < '0' || *p > '9') return 0;
        p += 1 + span_of(p + 1, "0123456789_");
        const int sx = sexagesimal(&p);
        if (*p != '.') return 0;
        p += 1 + span_of(p + 1, "0123456789_");
        if (sx) return !*p;
    }
    if (*p == 'e' || *p == 'E') {
        if (p[1] != '-' && p[1] != '+') return 0;
        if (p[2] < '0' || p[2] > '9') return 0;
        p += 2 + span_of(p + 2, "0123456789");
    }
    return !*p;
}

/* A plain YAML scalar as PyYAML's safe_load types it (its YAML 1.1 resolver's regexes): null, a boolean, an
 * integer (binary, octal, hex, sexagesimal too), a float, else a string. */
static json_t *yaml_scalar(const yaml_node_t *n) {
    const char *s = (const char *)n->data.scalar.value;
    const size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(s) != len || len > 200) return json_stringn(s, len);
    static const char *const nul[] = {"", "~", "null", "Null", "NULL"},
                             *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"},
                             *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    for (size_t i = 0; i < AX_ARRAY_LEN(nul); i++)
        if (!strcmp(s, nul[i])) return json_null();
    for (size_t i = 0; i < AX_ARRAY_LEN(yes); i++)
        if (!strcmp(s, yes[i])) return json_true();
    for (size_t i = 0; i < AX_ARRAY_LEN(no); i++)
        if (!strcmp(s, no[i])) return json_false();
    char t[256];
    size_t k = 0;
    for (const char *p = s; *p; p++)
        if (*p != '_') t[k++] = *p; /* PyYAML drops the underscores */
    t[k] = 0;
    if (fe_yaml11_int(s)) {
        const int neg = t[0] == '-';
        const char *d = t + (t[0] == '-' || t[0] == '+');
        long long v = 0;
        if (strchr(d, ':')) { /* base 60 */
            for (const char *c = d; c; c = strchr(c, ':') ? strchr(c, ':') + 1 : NULL) v = v * 60 + strtoll(c, NULL, 10);
        } else {
            v = d[0] == '0' && d[1] == 'b' ? strtoll(d + 2, NULL, 2) : strtoll(d, NULL, d[0] == '0' && d[1] != 'x' ? 8 : 0);
        }
        return json_integer(neg ? -v : v);
    }
    if (fe_yaml11_float(s)) {
        if (strstr(t, "inf") || strstr(t, "Inf") || strstr(t, "INF") || strstr(t, "nan") || strstr(t, "NaN") ||
            strstr(t, "NAN"))
            return json_real(1e308); /* JSON has no inf or nan; what is read of them here is only that they are true */
        if (strchr(t, ':')) return json_real(1); /* base-60 floats: only their truth is read, and a nonzero digit makes it */
        return json_real(strtod(t, NULL));
    }
    return json_stringn(s, len);
}

/* A YAML text as JSON, scalars typed as PyYAML's safe_load types them; NULL when it nests too deep or has a key
 * that is not a scalar. */
static json_t *yaml_json(yaml_document_t *doc, yaml_node_t *n, int depth, long *budget) {
    if (!n || depth > 64 || --*budget < 0) return NULL; /* aliases are copied here: bound what they expand to */
    if (n->type == YAML_SCALAR_NODE) return yaml_scalar(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            json_t *x = yaml_json(doc, yaml_document_get_node(doc, *it), depth + 1, budget);
            if (!x) return json_decref(a), NULL;
            json_array_append_new(a, x);
        }
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        json_t *v = yaml_json(doc, yaml_document_get_node(doc, pr->value), depth + 1, budget);
        if (!k || k->type != YAML_SCALAR_NODE || !v) return json_decref(v), json_decref(o), NULL;
        json_object_setn_new(o, (const char *)k->data.scalar.value, k->data.scalar.length, v);
    }
    return o;
}

static json_t *parse_yaml(const char *text, size_t len, char *why, size_t whycap) {
    /* libyaml's time grows with the square of flow nesting ([[[...): PyYAML gives up past ~1000 levels, so here */
    int depth = 0, deepest = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '[' || text[i] == '{') deepest = ++depth > deepest ? depth : deepest;
        else if ((text[i] == ']' || text[i] == '}') && depth) depth--;
    }
    if (len > ((size_t)16 << 20) || deepest > 1000) {
        snprintf(why, whycap, "too large or nested too deep (%zu bytes, %d levels of [ or {)", len, deepest);
        return NULL;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    json_t *j = NULL;
    if (!yaml_parser_load(&p, &doc)) {
        snprintf(why, whycap, "invalid YAML at line %zu: %s", p.problem_mark.line + 1, p.problem ? p.problem : "?");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        long budget = 2000000;
        j = root ? yaml_json(&doc, root, 0, &budget) : json_null();
        if (!j) snprintf(why, whycap, "YAML nested too deep, expanding to more than 2 million values, or with keys that are not text");
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return j;
}

/* huggingface_hub's RepoCard (read as utf-8-sig): the YAML of REGEX_YAML_BLOCK,
 * ^\s*---(\r\n|\r|\n)(.*?)(\r\n|\r|\n)---[ \t]*(\r\n|\n|$), or NULL (no block: no metadata) */
static const char *card_block(ax_arena *ar, const char *t, size_t *len) {
    const char *p = t;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f' || *p == '\v') p++;
    if (strncmp(p, "---", 3)) return NULL;
    p += 3;
    if (p[0] == '\r' && p[1] == '\n') p += 2;
    else if (p[0] == '\r' || p[0] == '\n') p++;
    else return NULL;
    for (const char *q = p; *q; q++) {
        if (*q != '\r' && *q != '\n') continue;
        const char *r = q + (q[0] == '\r' && q[1] == '\n' ? 2 : 1);
        if (strncmp(r, "---", 3)) continue;
        r += 3;
        while (*r == ' ' || *r == '\t') r++;
        if (!*r || *r == '\n' || (r[0] == '\r' && r[1] == '\n')) {
            *len = (size_t)(q - p);
            return ax_arena_strndup(ar, p, *len);
        }
    }
    return NULL;
}

/* Python's truth of a YAML value (datasets tests `metadata_config.get("default")`) */
static int py_truthy(const json_t *v) {
    return json_is_true(v) || (json_is_integer(v) && json_integer_value(v)) || (json_is_real(v) && json_real_value(v)) ||
           (json_is_string(v) && *json_string_value(v)) || (json_is_array(v) && json_array_size(v)) ||
           (json_is_object(v) && json_object_size(v));
}

/* datasets' sanitize_patterns of a card's data_files (a string, a list of strings, or a list of {split, path}) */
static int card_data_files(ax_arena *ar, const json_t *df, ds_splits *out, char *why, size_t whycap) {
    *out = (ds_splits){.ar = ar};
    if (json_is_string(df)) {
        const char **p = ax_arena_alloc(ar, sizeof *p);
        if (!(p[0] = ds_norm_pattern(ar, json_string_value(df), why, whycap))) return -1;
        return ds_add_split(out, "train", p, 1);
    }
    if (!json_is_array(df)) goto bad;
    size_t i;
    json_t *x;
    int dicts = 0;
    json_array_foreach(df, i, x) dicts |= json_is_object(x);
    if (!dicts) {
        const char **p = ax_arena_alloc(ar, sizeof *p * (json_array_size(df) + 1));
        json_array_foreach(df, i, x) {
            if (!json_is_string(x)) goto bad;
            if (!(p[i] = ds_norm_pattern(ar, json_string_value(x), why, whycap))) return -1;
        }
        return ds_add_split(out, "train", p, (int)json_array_size(df));
    }
    json_array_foreach(df, i, x) {
        const json_t *sp = json_object_get(x, "split"), *pa = json_object_get(x, "path");
        if (!json_is_object(x) || json_object_size(x) != 2 || !json_is_string(sp) ||
            !split_name_ok(json_string_value(sp)) || !(json_is_string(pa) || json_is_array(pa)))
            goto bad;
        for (int k = 0; k < out->n; k++)
            if (!strcmp(out->name[k], json_string_value(sp))) {
                snprintf(why, whycap, "its data_files name the split \"%s\" twice", json_string_value(sp));
                return -1;
            }
        int np = json_is_string(pa) ? 1 : (int)json_array_size(pa);
        const char **p = ax_arena_alloc(ar, sizeof *p * (size_t)(np + 1));
        for (int k = 0; k < np; k++) {
            const json_t *e = json_is_string(pa) ? pa : json_array_get(pa, (size_t)k);
            if (!json_is_string(e)) goto bad;
            if (!(p[k] = ds_norm_pattern(ar, json_string_value(e), why, whycap))) return -1;
        }
        if (ds_add_split(out, ax_arena_strdup(ar, json_string_value(sp)), p, np)) goto bad;
    }
    return 0;
bad:
    snprintf(why, whycap, "data_files: expected a path, a list of paths, or a list of {split, path}");
    return -1;
}

/* The card's configs (none: *ncfg 0), or -1 with err: datasets' MetadataConfigs of the card's data (README.md's
 * YAML block, updated by .huggingface.yaml), a dict by config_name (a later config of the same name replaces the
 * earlier in its place). *dflt: the name of the one config of the card's dataset_info, the default when no
 * config says it is (NULL: none). */
static int card_configs(ax_arena *ar, const char *readme, const char *hf_yaml, ds_config **cfgs, int *ncfg,
                        const char **dflt, char *err, size_t errcap) {
    *ncfg = 0, *dflt = NULL;
    char why[400] = "";
    json_t *card = NULL, *over = NULL;
    size_t bl;
    const char *block = readme ? card_block(ar, readme, &bl) : NULL;
    if (block && !(card = parse_yaml(block, bl, why, sizeof why))) {
        snprintf(err, errcap, "its dataset card (README.md's YAML block): %s", why);
        return -1;
    }
    if (card && !json_is_object(card) && !json_is_null(card)) {
        snprintf(err, errcap, "its dataset card (README.md's YAML block): expected a mapping");
        json_decref(card);
        return -1;
    }
    if (hf_yaml && !(over = parse_yaml(hf_yaml, strlen(hf_yaml), why, sizeof why))) {
        snprintf(err, errcap, "its .huggingface.yaml: %s", why);
        json_decref(card);
        return -1;
    }
    if (py_truthy(over) && !json_is_object(over)) {
        snprintf(err, errcap, "its .huggingface.yaml: expected a mapping");
        json_decref(card), json_decref(over);
        return -1;
    }
    if (!json_is_object(card)) json_decref(card), card = json_object();
    if (json_is_object(over)) json_object_update(card, over); /* top-level keys replace the card's */
    const json_t *cf = json_object_get(card, "configs"), *di = json_object_get(card, "dataset_info");
    if (json_is_object(di)) { /* DatasetInfosDict: one info, or a list of them, each named config_name or "default" */
        const json_t *nm = json_object_get(di, "config_name");
        *dflt = json_is_string(nm) ? ax_arena_strdup(ar, json_string_value(nm)) : "default";
    } else if (json_is_array(di)) {
        size_t i;
        json_t *x;
        const char *one = NULL;
        int several = 0;
        json_array_foreach(di, i, x) {
            const json_t *nm = json_is_object(x) ? json_object_get(x, "config_name") : NULL;
            const char *name = json_is_string(nm) ? json_string_value(nm) : "default";
            if (!one) one = name;
            else several |= strcmp(one, name) != 0;
        }
        if (one && !several) *dflt = ax_arena_strdup(ar, one);
    }
    int rc = 0;
    if (py_truthy(cf)) {
        if (!json_is_array(cf)) {
            snprintf(err, errcap, "its dataset card's configs: expected a list");
            rc = -1;
        } else {
            *cfgs = ax_arena_alloc(ar, sizeof **cfgs * json_array_size(cf));
            size_t i;
            json_t *c;
            json_array_foreach(cf, i, c) {
                const json_t *nm = json_object_get(c, "config_name"), *df = json_object_get(c, "data_files");
                if (!json_is_object(c) || !json_is_string(nm)) {
                    snprintf(err, errcap, "its dataset card's configs[%zu]: expected a config_name", i);
                    rc = -1;
                    break;
                }
                int at = 0;
                while (at < *ncfg && strcmp((*cfgs)[at].name, json_string_value(nm))) at++;
                ds_config *k = &(*cfgs)[at];
                memset(k, 0, sizeof *k);
                if (at == *ncfg) ++*ncfg;
                k->name = ax_arena_strdup(ar, json_string_value(nm));
                k->is_default = py_truthy(json_object_get(c, "default"));
                const json_t *dd = json_object_get(c, "data_dir");
                if (json_is_string(dd) && *json_string_value(dd) &&
                    !(k->data_dir = ds_norm_pattern(ar, json_string_value(dd), why, sizeof why))) {
                    snprintf(err, errcap, "its dataset card's config \"%s\": data_dir: %s", k->name, why);
                    rc = -1;
                    break;
                }
                if (k->data_dir && !*k->data_dir) k->data_dir = NULL;
                k->data_files_key = df != NULL;
                if (df && !json_is_null(df)) {
                    k->has_data_files = 1;
                    if (card_data_files(ar, df, &k->data_files, why, sizeof why)) {
                        snprintf(err, errcap, "its dataset card's config \"%s\": %s", k->name, why);
                        rc = -1;
                        break;
                    }
                }
            }
        }
    }
    json_decref(card);
    json_decref(over);
    return rc;
}

static const char *list_splits(ax_arena *ar, const ds_splits *sp) {
    ax_buf b = {0};
    for (int i = 0; i < sp->n; i++) ax_buf_printf(&b, "%s%s", i ? ", " : "", sp->name[i]);
    const char *s = ax_arena_strdup(ar, b.data ? b.data : "none");
    ax_buf_free(&b);
    return s;
}

/* ---- the split's files, as load_dataset(path, name=, data_files=, split=) reads them ---------------------- */
/* fe_hub_split_files, and in *module_out the builder HF datasets infers for the split (NULL when none) */
static int split_files(ax_arena *ar, const char *const *files, int n, const fe_hub_ds_sel *sel, const char ***out,
                       char *err, size_t errcap, const char **module_out) {
    *module_out = NULL;
    const char *split = sel && sel->split && *sel->split ? sel->split : "train";
    const char *name = sel && sel->name && *sel->name ? sel->name : NULL;
    if (strchr(split, '[') || strchr(split, '+')) {
        snprintf(err, errcap, "split \"%s\": a slice or a sum selects rows, not files: name one split", split);
        return -1;
    }
    for (int i = 0; sel && sel->script && i < n; i++)
        if (!strcmp(files[i], sel->script)) {
            snprintf(err, errcap, "it has a loading script (%s), which HF datasets no longer runs (since 4.0)", sel->script);
            return -1;
        }
    ds_config *cfgs = NULL;
    int ncfg = 0;
    const char *info_default;
    if (card_configs(ar, sel ? sel->readme : NULL, sel ? sel->hf_yaml : NULL, &cfgs, &ncfg, &info_default, err, errcap))
        return -1;
    if (ncfg && cfgs[0].data_files_key && !cfgs[0].has_data_files && !(sel && sel->ndata_files)) {
        snprintf(err, errcap, "its dataset card's first config \"%s\" has data_files: null (HF datasets fails on it)",
                 cfgs[0].name);
        return -1;
    }
    /* the files the format is inferred from: data_files, else the first config's, else the inferred splits' */
    ds_splits user = {.ar = ar}, mp = {.ar = ar};
    if (sel && sel->ndata_files) {
        const char **norm = ax_arena_alloc(ar, sizeof *norm * (size_t)sel->ndata_files);
        for (int i = 0; i < sel->ndata_files; i++)
            if (!(norm[i] = ds_norm_pattern(ar, sel->data_files[i], err, errcap))) return -1;
        ds_add_split(&user, "train", norm, sel->ndata_files);
    }
    if (user.n) mp = user;
    else if (ncfg && cfgs[0].has_data_files) mp = cfgs[0].data_files;
    else if (ds_infer_patterns(ar, files, n, &mp, err, errcap)) return -1;
    const char *module = NULL;
    ds_splits res = ds_copy(&mp); /* each split's resolved files, as patterns of literal names for the no-config case */
    for (int s = 0; s < mp.n; s++) {
        const char **v;
        int nv = ds_resolve(ar, files, n, "", mp.pats[s], mp.np[s], 1, &v, err, errcap);
        if (nv < 0) return -1;
        const char *m = ds_infer_module(ar, v, nv);
        if (s > 0 && (!m || !module || strcmp(m, module))) {
            snprintf(err, errcap, "its splits are not all of one format (%s: %s, %s: %s), and HF datasets reads a "
                                  "dataset with one builder", mp.name[0], module ? module : "none", mp.name[s],
                     m ? m : "none");
            return -1;
        }
        module = m;
        *module_out = m;
        res.pats[s] = v, res.np[s] = nv;
    }
    if (!module || !strcmp(module, "zip")) {
        snprintf(err, errcap, module ? "its data files are zip archives, which axo does not read"
                                     : "it has no data file HF datasets reads");
        return -1;
    }
    ds_splits fin;
    const char *base = "";
    int literal = 0; /* fin holds files already, not patterns */
    if (!ncfg) {
        if (name && strcmp(name, "default")) {
            snprintf(err, errcap, "name \"%s\": it has no configuration of that name (it has: default)", name);
            return -1;
        }
        if (user.n) {
            fin = user;
        } else { /* the module's files */
            fin = res, literal = 1;
            for (int s = 0; s < fin.n; s++) {
                const char **v = ax_arena_alloc(ar, sizeof *v * (size_t)(fin.np[s] + 1));
                int k = 0;
                for (int i = 0; i < fin.np[s]; i++)
                    if (ds_module_file(module, fin.pats[s][i])) v[k++] = fin.pats[s][i];
                fin.pats[s] = v, fin.np[s] = k;
            }
        }
    } else {
        const ds_config *c = NULL, *dflt = NULL;
        for (int i = 0; i < ncfg; i++) {
            if (ncfg == 1 || !strcmp(cfgs[i].name, "default") || cfgs[i].is_default) {
                if (dflt) {
                    snprintf(err, errcap, "its dataset card has several default configurations (\"%s\" and \"%s\")",
                             dflt->name, cfgs[i].name);
                    return -1;
                }
                dflt = &cfgs[i];
            }
            if (name && !strcmp(cfgs[i].name, name) && !c) c = &cfgs[i];
        }
        ax_buf have = {0};
        for (int i = 0; i < ncfg; i++) ax_buf_printf(&have, "%s%s", i ? ", " : "", cfgs[i].name);
        const char *names = ax_arena_strdup(ar, have.data);
        ax_buf_free(&have);
        if (name && !c) {
            snprintf(err, errcap, "name \"%s\": its dataset card has no configuration of that name (it has: %s)", name,
                     names);
            return -1;
        }
        if (!dflt && info_default) /* datasets: the one config its dataset_info describes */
            for (int i = 0; i < ncfg && !dflt; i++)
                if (!strcmp(cfgs[i].name, info_default)) dflt = &cfgs[i];
        if (!c) c = dflt;
        if (!c && !user.n) {
            snprintf(err, errcap, "its dataset card defines several configurations and none is the default: pick one "
                                  "with the entry's `name:` (%s)", names);
            return -1;
        }
        if (user.n) {
            fin = user; /* data_files replace the configuration's */
        } else if (c->has_data_files) {
            fin = c->data_files;
            base = c->data_dir ? c->data_dir : "";
        } else {
            base = c->data_dir ? c->data_dir : "";
            const size_t bl = strlen(base);
            const char **sub = ax_arena_alloc(ar, sizeof *sub * (size_t)(n + 1));
            int ns = 0;
            for (int i = 0; i < n; i++)
                if (!bl || (!strncmp(files[i], base, bl) && files[i][bl] == '/')) sub[ns++] = files[i] + (bl ? bl + 1 : 0);
            if (ds_infer_patterns(ar, sub, ns, &fin, err, errcap)) return -1;
        }
    }
    int s = 0;
    while (s < fin.n && strcmp(fin.name[s], split)) s++;
    if (s == fin.n) {
        snprintf(err, errcap, "it has no split \"%s\"%s (it has: %s)", split,
                 user.n ? " (data_files makes the one split \"train\")" : ncfg ? " in that configuration" : " as HF datasets infers splits",
                 list_splits(ar, &fin));
        return -1;
    }
    const char **v;
    int nv;
    if (literal) v = (const char **)fin.pats[s], nv = fin.np[s];
    else if ((nv = ds_resolve(ar, files, n, base, fin.pats[s], fin.np[s], !user.n, &v, err, errcap)) < 0) return -1;
    if (!nv) {
        snprintf(err, errcap, "no file of its split \"%s\" is one HF datasets reads", split);
        return -1;
    }
    *out = v;
    return nv;
}

/* a boundary of a split slice: -?[0-9_]+ (Python's int(): underscores only between digits) then an optional %;
 * *p moved past it; 0 when absent, 1 when read, -1 when malformed */
static int slice_bound(const char **p, long long *v, int *pct) {
    const char *q = *p;
    const int neg = *q == '-';
    q += neg;
    if (!isdigit((unsigned char)*q) && *q != '_') return neg ? -1 : 0;
    long long x = 0;
    int prev_digit = 0, bad = 0;
    for (; isdigit((unsigned char)*q) || *q == '_'; q++) {
        if (*q == '_') bad |= !prev_digit || !isdigit((unsigned char)q[1]), prev_digit = 0;
        else x = x > 1000000000000000LL ? x : x * 10 + (*q - '0'), prev_digit = 1;
    }
    if (bad) return -1;
    *pct = *q == '%';
    *p = q + *pct;
    *v = neg ? -x : x;
    return 1;
}

int fe_parse_split(ax_arena *ar, const char *spec, const char **name, const char **slice, char *err, size_t errcap) {
    *slice = NULL;
    if (strchr(spec, '+')) {
        snprintf(err, errcap, "split \"%s\": sums of splits are not implemented; name one split (with a slice if you "
                              "like: train[:10%%])", spec);
        return -1;
    }
    const char *b = spec + strcspn(spec, "[(");
    const char *nm = ax_arena_strndup(ar, spec, (size_t)(b - spec));
    long long f = 0, t = 0;
    int fp = 0, tp = 0, hf = 0, ht = 0;
    const char *round_ = NULL;
    const char *p = b;
    int ok = split_name_ok(nm);
    if (ok && *p == '[') {
        p++;
        ok = (hf = slice_bound(&p, &f, &fp)) >= 0 && *p == ':';
        if (ok) p++, ok = (ht = slice_bound(&p, &t, &tp)) >= 0 && *p == ']';
        if (ok) p++;
    }
    if (ok && *p == '(') {
        const char *e = strchr(p, ')');
        ok = e && !e[1];
        if (ok) round_ = ax_arena_strndup(ar, p + 1, (size_t)(e - p - 1)), p = e + 1;
    }
    ok = ok && !*p;
    const int pct = fp || tp;
    if (!ok) {
        snprintf(err, errcap, "split \"%s\": expected a split name, then an optional [from:to] slice (rows, or %% of "
                              "them) and an optional (rounding), as HF datasets reads it", spec);
        return -1;
    }
    if (round_ && (!pct || (strcmp(round_, "closest") && strcmp(round_, "pct1_dropremainder")))) {
        snprintf(err, errcap, "split \"%s\": a rounding is closest or pct1_dropremainder, and only for %% slices", spec);
        return -1;
    }
    if (pct && ((hf && (f > 100 || f < -100)) || (ht && (t > 100 || t < -100)))) {
        snprintf(err, errcap, "split \"%s\": percent slice boundaries must be between -100 and 100", spec);
        return -1;
    }
    *name = nm;
    if (*b) {
        json_t *j = json_object();
        json_object_set_new(j, "from", hf ? json_integer(f) : json_null());
        json_object_set_new(j, "to", ht ? json_integer(t) : json_null());
        json_object_set_new(j, "unit", json_string(pct ? "%" : "abs"));
        json_object_set_new(j, "rounding", pct ? json_string(round_ ? round_ : "closest") : json_null());
        char *js = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        *slice = ax_arena_strdup(ar, js);
        free(js);
        json_decref(j);
    }
    return 0;
}

int fe_hub_split_files(ax_arena *ar, const char *const *files, int n, const fe_hub_ds_sel *sel, const char ***out,
                       char *err, size_t errcap) {
    const char *module;
    return split_files(ar, files, n, sel, out, err, errcap, &module);
}

int fe_hub_data_format(const char *f) {
    static const char *const ext[][2] = {{".json", "1"}, {".jsonl", "1"}, {".ndjson", "1"},
                                         {".parquet", "2"}, {".geoparquet", "2"}, {".gpq", "2"}, {".txt", "3"},
                                         {".csv", "4"},  {".tsv", "5"}};
    const size_t n = strlen(f);
    for (size_t i = 0; i < AX_ARRAY_LEN(ext); i++) {
        const size_t e = strlen(ext[i][0]);
        if (n > e && !strcmp(f + n - e, ext[i][0])) return ext[i][1][0] - '0';
    }
    return 0;
}

/* sel with the dataset card of folder dir (README.md, .huggingface.yaml: the files HF datasets reads it from) */
static fe_hub_ds_sel with_card(ax_arena *ar, const fe_hub_ds_sel *sel, const char *dir) {
    fe_hub_ds_sel s = {0};
    if (sel) s = *sel;
    static const char *const names[] = {"README.md", ".huggingface.yaml"};
    for (int k = 0; k < 2; k++) {
        size_t len;
        char *t = read_quiet(ar, ax_arena_printf(ar, "%s/%s", dir, names[k]), &len);
        if (t) *(k ? &s.hf_yaml : &s.readme) = t;
    }
    return s;
}

/* The .json/.jsonl, .parquet, .txt or .csv/.tsv files of the split (sorted: HF datasets concatenates them in that order), or -1
 * with err. HF datasets reads a repo with one builder, so the split's files are of one format. */
static int ds_pick(ax_arena *ar, const char *const *files, int n, const fe_hub_ds_sel *sel, const char ***out, char *err,
                   size_t errcap) {
    const char *module;
    int nv = split_files(ar, files, n, sel, out, err, errcap, &module);
    if (nv < 0) return -1;
    const char *split = sel && sel->split && *sel->split ? sel->split : "train";
    /* the loader is the builder HF datasets infers for the whole split (every suffix of every name counts); axo
     * reads each file by its last suffix, so the two must agree (train.json.txt is json to datasets) */
    static const char *const by_loader[] = {"json", "parquet", "text", "csv", "csv\tsep"};
    int want = 0;
    for (int k = 0; module && k < (int)AX_ARRAY_LEN(by_loader); k++)
        if (!strcmp(module, by_loader[k])) want = k + 1;
    for (int i = 0; i < nv; i++) {
        const int f = fe_hub_data_format((*out)[i]);
        if (f && want && f != want) {
            snprintf(err, errcap, "its \"%s\" split holds %s, which HF datasets reads with its %s loader (the builder it "
                                  "infers from all the split's file names), not as its last suffix says: rename it",
                     split, (*out)[i], by_loader[want - 1][0] == 'c' ? "csv" : by_loader[want - 1]);
            return -1;
        }
        if (!f) {
            snprintf(err, errcap, "its \"%s\" split holds %s, and axo reads .json/.jsonl, .parquet, .txt and .csv/.tsv files only "
                                  "(convert it, e.g. with HF datasets' to_json, and give the file's path)", split, (*out)[i]);
            return -1;
        }
        if (f != fe_hub_data_format((*out)[0])) {
            snprintf(err, errcap, "its \"%s\" split holds both %s and %s, and HF datasets reads a split with one "
                                  "builder (name the files of one format with data_files)", split, (*out)[0], (*out)[i]);
            return -1;
        }
    }
    return nv;
}

#if AXO_HAVE_CURL
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
    int status;          /* of the response being read: only a 200 or 206 body goes into file */
    double last_note;  /* when the last progress line was printed */
} http_req;

static size_t on_body(char *p, size_t sz, size_t n, void *u) {
    http_req *r = u;
    size_t len = sz * n;
    if (r->file) {
        if (r->status != 200 && r->status != 206) return len; /* an error page: never into the partial file */
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
    if (len > 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after a redirect) */
        r->etag[0] = 0, r->length = -1;
        const char *sp = memchr(p, ' ', len);
        r->status = sp ? atoi(sp + 1) : 0;
    }
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
 * none when $HF_HUB_DISABLE_IMPLICIT_TOKEN is true. Line breaks and outer
 * white space are dropped, as its _clean_token does; another control
 * character inside is an error, never sent as a header. */
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
    char *w = s; /* huggingface_hub's _clean_token: every \r and \n dropped, then the outer white space */
    for (const char *q = s; *q; q++)
        if (*q != '\r' && *q != '\n') *w++ = *q;
    *w = 0;
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
    if (size > 0 && have == size) { /* whole already (stopped before the rename): nothing to ask for */
        if (rename(part, blob) != 0) {
            snprintf(err, errcap, "cannot move %s to %s: %s", part, blob, strerror(errno));
            goto out;
        }
        rc = link_blob(ar, snapdir, name, etag, err, errcap);
        goto out;
    }
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
        if ((code == CURLE_RANGE_ERROR || st == 416) && have > 0) { /* the server cannot resume there: from the start */
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
            /* what arrived stays in .incomplete for the next try to resume (an error page was never written
             * into it); never under the blob's name */
            if (file_size(part) == 0) unlink(part);
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

/* huggingface_hub's tree listing of a commit (trees/<commit>.json, format 1: each file's size and blob id, and
 * an LFS file's sha256 and size), from the API's siblings when each has them; kept if already there. A commit's
 * listing never changes, so a later offline run chooses a dataset's files from the repo's, as online. (With it,
 * huggingface_hub's offline snapshot_download calls the partial snapshot incomplete, as it is; its per-file
 * hf_hub_download still reads the files.) */
static void write_tree(ax_arena *ar, const char *rdir, const char *commit, json_t *sib) {
    const char *path = ax_arena_printf(ar, "%s/trees/%s.json", rdir, commit);
    if (is_file(path)) return;
    json_t *files = json_object();
    int ok = 1;
    for (size_t i = 0; ok && i < json_array_size(sib); i++) {
        json_t *e = json_array_get(sib, i), *lfs = json_object_get(e, "lfs");
        const char *f = json_string_value(json_object_get(e, "rfilename"));
        const char *blob = json_string_value(json_object_get(e, "blobId"));
        json_t *size = json_object_get(e, "size");
        ok = f && blob && json_is_integer(size);
        if (!ok) break;
        json_t *info = json_pack("{s:I, s:s}", "size", json_integer_value(size), "blob_id", blob);
        const char *sha = json_string_value(json_object_get(lfs, "sha256"));
        if (sha && json_is_integer(json_object_get(lfs, "size"))) {
            json_object_set_new(info, "lfs_sha256", json_string(sha));
            json_object_set_new(info, "lfs_size", json_integer(json_integer_value(json_object_get(lfs, "size"))));
        }
        json_object_set_new(files, f, info);
    }
    json_t *doc = json_pack("{s:i, s:o}", "format_version", 1, "files", files);
    char *txt = ok ? json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
    json_decref(doc);
    if (!txt) return;
    ax_diag tmp;
    ax_diag_init(&tmp);
    if (ax_mkdir_p(ax_arena_printf(ar, "%s/trees", rdir), &tmp) == 0) ax_write_file_atomic(path, txt, strlen(txt), &tmp);
    ax_diag_free(&tmp); /* a listing that cannot be written is only a cache */
    free(txt);
}

/* Resolves revision to its commit with the Hub's API (as huggingface_hub
 * does online, so a branch that moved is followed), writes refs/<revision>,
 * and fetches the wanted files the snapshot lacks. Returns the snapshot, or
 * NULL with err; *unreachable is set when no HTTP answer came at all. */
static const char *download(ax_arena *ar, const char *cache, const char *rdir, const char *repo_id,
                            const char *revision, int want, const fe_hub_ds_sel *sel, const char ***picked,
                            int *npicked, int *unreachable, char *err, size_t errcap) {
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
    const char *url = /* blobs: each file's size and blob id, for the tree listing written below */
        ax_arena_printf(ar, "%s/api/%s/%s/revision/%s?blobs=true", endpoint(), kind_of(want), repo_id, er ? er : revision);
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
    if (want & FE_HUB_DATASET) write_tree(ar, rdir, commit, sib); /* a dataset's split depends on every file */
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
    if (want & FE_HUB_DATASET) { /* the dataset card first (its configs choose the files), as datasets reads it */
        ax_diag tmp;
        ax_diag_init(&tmp);
        const int ok = ax_mkdir_p(ax_arena_printf(ar, "%s/snapshots/%s", rdir, commit), &tmp) == 0 &&
                       ax_mkdir_p(ax_arena_printf(ar, "%s/blobs", rdir), &tmp) == 0;
        if (!ok) snprintf(err, errcap, "%s", tmp.n ? tmp.entries[0].msg : "cannot create the cache folders");
        ax_diag_free(&tmp);
        if (!ok) return NULL;
        for (int i = 0; i < nwant; i++)
            if ((!strcmp(files[i], "README.md") || !strcmp(files[i], ".huggingface.yaml")) &&
                fetch_file(ar, cache, rdir, want, repo_id, commit, files[i], token, err, errcap) != 0)
                return NULL;
        const fe_hub_ds_sel cs = with_card(ar, sel, ax_arena_printf(ar, "%s/snapshots/%s", rdir, commit));
        if ((nwant = ds_pick(ar, files, nwant, &cs, picked, err, errcap)) < 0) return NULL;
        files = *picked, *npicked = nwant;
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
                            const char *revision, int want, const fe_hub_ds_sel *sel, const char ***picked,
                            int *npicked, int *unreachable, char *err, size_t errcap) {
    (void)ar, (void)cache, (void)rdir, (void)repo_id, (void)revision, (void)want, (void)sel, (void)picked, (void)npicked;
    *unreachable = 1;
    snprintf(err, errcap, "this axo was built without libcurl (install libcurl4-openssl-dev and rebuild)");
    return NULL;
}
#endif

/* huggingface_hub's tree listing of a commit (format 1): its file paths, or -1 when absent or unreadable. */
static int read_tree(ax_arena *ar, const char *rdir, const char *commit, const char ***out) {
    json_error_t je;
    json_t *j = json_load_file(ax_arena_printf(ar, "%s/trees/%s.json", rdir, commit), 0, &je);
    json_t *files = j ? json_object_get(j, "files") : NULL;
    if (!j || !json_is_integer(json_object_get(j, "format_version")) ||
        json_integer_value(json_object_get(j, "format_version")) != 1 || !json_is_object(files)) {
        json_decref(j);
        return -1;
    }
    const char **v = ax_arena_alloc(ar, sizeof *v * (json_object_size(files) + 1));
    int n = 0;
    const char *k;
    json_t *val;
    json_object_foreach(files, k, val) if (safe_rel(k)) v[n++] = ax_arena_strdup(ar, k);
    json_decref(j);
    *out = v;
    return n;
}

/* The files under dir (relative paths, in the arena), for ds_pick on a cached snapshot or a local folder:
 * links to files followed (a snapshot's point into blobs/), links to folders not (no cycles), 8 levels and
 * LIST_MAX files at most; returns -1 past that. */
enum { LIST_MAX = 20000 };

static int list_files(ax_arena *ar, const char *dir, const char *rel, const char ***v, int *n, int *cap) {
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    int depth = 0, rc = 0;
    for (const char *c = rel; c && *c; c++) depth += *c == '/';
    struct dirent *e;
    while (!rc && (e = readdir(dh))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        const char *p = ax_arena_printf(ar, "%s/%s", dir, e->d_name);
        const char *r = rel ? ax_arena_printf(ar, "%s/%s", rel, e->d_name) : ax_arena_strdup(ar, e->d_name);
        struct stat st, lst;
        if (stat(p, &st) != 0 || lstat(p, &lst) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (!S_ISLNK(lst.st_mode) && depth < 8) rc = list_files(ar, p, r, v, n, cap);
        } else if (S_ISREG(st.st_mode)) {
            if (*n >= LIST_MAX) {
                rc = -1;
                break;
            }
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
    return rc;
}

/* A model's snapshot directory, or a dataset's chosen file (sel). */
static const char *resolve_repo(ax_arena *ar, const char *repo_id, const char *revision, int want,
                                const fe_hub_ds_sel *sel, const char *where, const char *key, ax_diag *d,
                                const char ***picked, int *npicked) {
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
    if (g_download && !offline) { /* online, as from_pretrained: the revision as the Hub has it now */
        const char *got = download(ar, cache, rdir, repo_id, revision, want, sel, picked, npicked, &unreachable, err,
                                   sizeof err);
        if (got && (want & FE_HUB_DATASET)) return got;
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
    if (snap && !is_dir(snap)) snap = NULL; /* a commit hash never cached */
    const char *lack = snap ? missing(ar, snap, want) : "the revision";
    if (snap && (want & FE_HUB_DATASET)) {
        const char **v = NULL;
        int n = 0, cap = 0;
        if ((n = read_tree(ar, rdir, commit, &v)) < 0) { /* no listing: the files cached, which may be fewer */
            n = 0;
            if (list_files(ar, snap, NULL, &v, &n, &cap) != 0) n = 0;
            ax_warn(d, where, "%s: no file listing of \"%s\" at commit %s is cached (trees/%s.json): the split is "
                              "chosen among the %d file%s of the cached snapshot, which may be fewer than the repo's",
                    key, repo_id, commit, commit, n, n == 1 ? "" : "s");
        }
        for (int i = 0; i < n && !lack; i++) /* the card decides which files: it must be here if the repo has one */
            if ((!strcmp(v[i], "README.md") || !strcmp(v[i], ".huggingface.yaml")) &&
                !is_file(ax_arena_printf(ar, "%s/%s", snap, v[i])))
                lack = v[i];
        const fe_hub_ds_sel cs = with_card(ar, sel, snap);
        char why2[1024];
        *npicked = 0;
        if (!lack && (*npicked = ds_pick(ar, v, n, &cs, picked, why2, sizeof why2)) < 0) {
            ax_error(d, where, "%s: the cached snapshot %s of the Hub dataset \"%s\": %s", key, snap, repo_id, why2);
            return NULL;
        }
        for (int i = 0; i < *npicked && !lack; i++)
            if (!is_file(ax_arena_printf(ar, "%s/%s", snap, (*picked)[i]))) lack = (*picked)[i]; /* listed, not fetched */
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
        ax_error(d, where, "%s: \"%s\" is not a local %s, and its snapshot %s in the Hugging Face cache lacks %s%s%s",
                 key, repo_id, want & FE_HUB_DATASET ? "file" : "directory", snap, lack, why, reach);
    return NULL;
}

const char *fe_hub_model(ax_arena *ar, const char *repo_id, const char *revision, int want, const char *where,
                         const char *key, ax_diag *d) {
    return resolve_repo(ar, repo_id, revision, want & ~FE_HUB_DATASET, NULL, where, key, d, NULL, NULL);
}

int fe_hub_glob_files(ax_arena *ar, const char *const *pats, int np, const char *const *bases, int nbases,
                      const char ***paths, char *err, size_t errcap) {
    const char **all = NULL;
    int total = 0;
    for (int j = 0; j < np; j++) {
        const char *pat = pats[j], **found = NULL;
        int nf = 0;
        for (int b = 0; b < (pat[0] == '/' ? 1 : nbases) && !nf; b++) {
            /* the listing starts at the pattern's folders before its first wildcard */
            const char *full = pat[0] == '/' ? pat : ax_arena_printf(ar, "%s/%s", bases[b], pat);
            const char *w = strpbrk(full, "*?["), *cut = w ? full + (w - full) : full + strlen(full);
            while (cut > full && *cut != '/') cut--;
            const char *root = cut > full ? ax_arena_strndup(ar, full, (size_t)(cut - full)) : "/";
            const char *rest = cut > full || *full == '/' ? cut + 1 : full;
            if (!w) { /* a path without a wildcard: that file */
                if (is_file(full)) found = ax_arena_alloc(ar, sizeof *found), found[0] = full, nf = 1;
                continue;
            }
            const char **v = NULL;
            int n = 0, cap = 0;
            if (list_files(ar, root, NULL, &v, &n, &cap) != 0) {
                snprintf(err, errcap, "data_files \"%s\": %s holds more than %d files", pat, root, (int)LIST_MAX);
                return -1;
            }
            found = ax_arena_alloc(ar, sizeof *found * (size_t)(n + 1));
            for (int i = 0; i < n; i++)
                if (ds_resolves(rest, v[i], 0)) found[nf++] = ax_arena_printf(ar, "%s/%s", root, v[i]);
            sort_paths(found, nf); /* as fsspec's glob lists them */
        }
        if (!nf && !strpbrk(pat, "*?[")) {
            snprintf(err, errcap, "data_files \"%s\" is not there (as given, or beside the config)", pat);
            return -1;
        }
        const char **grown = ax_arena_alloc(ar, sizeof *grown * (size_t)(total + nf + 1));
        if (total) memcpy(grown, all, sizeof *grown * (size_t)total);
        for (int i = 0; i < nf; i++) grown[total + i] = found[i];
        all = grown, total += nf;
    }
    if (!total) {
        snprintf(err, errcap, "data_files match no file (as given, or beside the config)");
        return -1;
    }
    *paths = all;
    return total;
}

/* names relative to dir -> full paths, in place */
static void prefix_all(ax_arena *ar, const char *dir, const char **v, int n) {
    for (int i = 0; i < n; i++) v[i] = ax_arena_printf(ar, "%s/%s", dir, v[i]);
}

int fe_hub_dataset(ax_arena *ar, const char *repo_id, const char *revision, const fe_hub_ds_sel *sel, const char *where,
                   const char *key, ax_diag *d, const char ***paths) {
    const char **v = NULL;
    int n = 0;
    fe_hub_ds_sel s = {0};
    if (sel) s = *sel;
    s.script = ax_arena_printf(ar, "%s.py", base_of(repo_id)); /* datasets refuses <name>.py beside the data */
    const char *snap = resolve_repo(ar, repo_id, revision, FE_HUB_DATASET, &s, where, key, d, &v, &n);
    if (!snap || n < 1) return -1;
    prefix_all(ar, snap, v, n);
    *paths = v;
    return n;
}

int fe_hub_dataset_dir(ax_arena *ar, const char *dir, const fe_hub_ds_sel *sel, const char ***paths, char *err,
                       size_t errcap) {
    const char **v = NULL;
    int n = 0, cap = 0;
    if (list_files(ar, dir, NULL, &v, &n, &cap) != 0) {
        snprintf(err, errcap, "it holds more than %d files: name the data file itself", (int)LIST_MAX);
        return -1;
    }
    fe_hub_ds_sel cs = with_card(ar, sel, dir);
    cs.script = ax_arena_printf(ar, "%s.py", base_of(dir));
    if ((n = ds_pick(ar, v, n, &cs, paths, err, errcap)) < 0) return -1;
    prefix_all(ar, dir, *paths, n);
    return n;
}
