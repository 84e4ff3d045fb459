#include "codegen/cache.h"

#include "ir/planfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- key ----------------------------------------------------------------
 * Each field is hashed as u64 LE length, then its bytes; NULL strings use
 * the length UINT64_MAX (no bytes), which no real field can have. The
 * sequence is prefix-free, so two different field lists never feed the
 * hash the same byte stream. */
struct cg_keyb {
    XXH3_state_t *st;
};

static void key_len(cg_keyb *kb, uint64_t n) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(n >> (8 * i));
    XXH3_128bits_update(kb->st, x, 8);
}

void cg_key_add(cg_keyb *kb, const void *data, size_t n) {
    key_len(kb, n);
    if (n) XXH3_128bits_update(kb->st, data, n);
}

void cg_key_add_str(cg_keyb *kb, const char *s) {
    if (!s)
        key_len(kb, UINT64_MAX);
    else
        cg_key_add(kb, s, strlen(s));
}

void cg_key_add_u64(cg_keyb *kb, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    cg_key_add(kb, x, 8);
}

void cg_key_add_compiler(cg_keyb *kb) {
    static XXH64_hash_t self;
    static int done;
    if (!done) { /* first use is on the compile path, single-threaded */
        FILE *f = fopen("/proc/self/exe", "rb");
        XXH3_state_t *st = f ? XXH3_createState() : NULL;
        if (st) {
            XXH3_64bits_reset(st);
            char buf[1 << 16];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, f)) > 0) XXH3_64bits_update(st, buf, n);
            if (!ferror(f)) self = XXH3_64bits_digest(st);
            XXH3_freeState(st);
        }
        if (f) fclose(f);
        done = 1;
    }
    cg_key_add_u64(kb, (uint64_t)self);
}

cg_keyb *cg_key_begin(void) {
    cg_keyb *kb = malloc(sizeof *kb);
    if (!kb) abort();
    kb->st = XXH3_createState();
    if (!kb->st) abort();
    XXH3_128bits_reset(kb->st);
    /* Domain and container version: a format change alone moves the key. */
    cg_key_add_str(kb, "axo plan cache");
    cg_key_add_u64(kb, AX_PLAN_VERSION);
    return kb;
}

cg_cache_key cg_key_finish(cg_keyb *kb) {
    XXH128_hash_t h = XXH3_128bits_digest(kb->st);
    XXH3_freeState(kb->st);
    free(kb);
    cg_cache_key k = {h.high64, h.low64};
    return k;
}

void cg_cache_key_hex(const cg_cache_key *k, char out[33]) {
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)k->hi, (unsigned long long)k->lo);
}

int cg_cache_key_eq(const cg_cache_key *a, const cg_cache_key *b) { return a->hi == b->hi && a->lo == b->lo; }

/* ---- directory ---------------------------------------------------------- */
static const char *env_set(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

const char *cg_cache_dir(char *buf, size_t cap) {
    const char *v;
    int n;
    if ((v = env_set("AXO_CACHE_DIR")))
        n = snprintf(buf, cap, "%s", v);
    else if ((v = env_set("XDG_CACHE_HOME")))
        n = snprintf(buf, cap, "%s/axo", v);
    else if ((v = env_set("HOME")))
        n = snprintf(buf, cap, "%s/.cache/axo", v);
    else
        return NULL;
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

const char *cg_cache_path(const char *dir, const cg_cache_key *k, char *buf, size_t cap) {
    char hex[33];
    cg_cache_key_hex(k, hex);
    int n = snprintf(buf, cap, "%s/%s.plan", dir, hex);
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

/* First error message of d, for "(why)" in a warning. */
static const char *first_error(const ax_diag *d) {
    for (int i = 0; i < d->n; i++)
        if (d->entries[i].sev == AX_SEV_ERROR) return d->entries[i].msg;
    return "unknown error";
}

/* ---- lookup / store ------------------------------------------------------ */
int cg_cache_lookup(const char *dir, const cg_cache_key *k, ax_buf *plan_out, ax_diag *d) {
    char path[4096];
    if (!dir || !cg_cache_path(dir, k, path, sizeof path)) return 0;
    if (access(path, F_OK) != 0) return 0; /* the ordinary miss */

    ax_diag tmp;
    ax_diag_init(&tmp);
    size_t len = 0;
    uint8_t *bytes = ax_plan_load(path, &len, &tmp);
    if (!bytes) {
        ax_warn(d, path, "cannot read cache entry (%s); rebuilding", first_error(&tmp));
        ax_diag_free(&tmp);
        return 0;
    }
    ax_plan_file pf;
    if (ax_plan_open_mem(bytes, len, path, &pf, &tmp) != 0) {
        const char *why = first_error(&tmp);
        if (unlink(path) != 0 && errno != ENOENT)
            ax_warn(d, NULL, "cache entry %s is corrupt (%s); rebuilding (could not delete it: %s)", path, why,
                    strerror(errno));
        else
            ax_warn(d, NULL, "cache entry %s is corrupt (%s); rebuilding", path, why);
        ax_diag_free(&tmp);
        free(bytes);
        return 0;
    }
    ax_plan_close(&pf);
    ax_diag_free(&tmp);

    if (!plan_out->data) {
        /* Taken over as is, so it keeps ax_plan_load's 64-byte alignment
         * (payloads usable in place) and its NUL (cap > len). */
        plan_out->data = (char *)bytes;
        plan_out->len = len;
        plan_out->cap = len + 1;
    } else {
        ax_buf_append(plan_out, bytes, len);
        free(bytes);
    }
    return 1;
}

int cg_cache_store(const char *dir, const cg_cache_key *k, const void *plan, size_t n, ax_diag *d) {
    char path[4096];
    if (!dir) {
        ax_warn(d, NULL, "no plan cache directory (set AXO_CACHE_DIR or HOME); plan not cached");
        return -1;
    }
    if (!cg_cache_path(dir, k, path, sizeof path)) {
        ax_warn(d, dir, "plan cache path too long; plan not cached");
        return -1;
    }
    ax_diag tmp;
    ax_diag_init(&tmp);
    int rc = ax_mkdir_p(dir, &tmp);
    if (rc == 0) rc = ax_write_file_atomic(path, plan, n, &tmp);
    if (rc != 0) {
        const ax_diag_entry *e = tmp.n ? &tmp.entries[0] : NULL;
        ax_warn(d, path, "cannot store plan in cache (%s%s%s); continuing without it", e && e->where[0] ? e->where : "",
                e && e->where[0] ? ": " : "", e ? e->msg : "unknown error");
        rc = -1;
    }
    ax_diag_free(&tmp);
    return rc;
}
