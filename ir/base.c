#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena ------------------------------------------------------------ */
typedef struct ax_chunk {
    struct ax_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} ax_chunk;

struct ax_arena {
    ax_chunk *head;
};

ax_arena *ax_arena_create(void) {
    ax_arena *a = calloc(1, sizeof *a);
    if (!a) abort();
    return a;
}

void ax_arena_destroy(ax_arena *a) {
    if (!a) return;
    for (ax_chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *ax_arena_alloc(ax_arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        ax_chunk *c = malloc(sizeof *c + cap);
        if (!c) abort();
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

char *ax_arena_strndup(ax_arena *a, const char *s, size_t n) {
    if (!s) return NULL;
    char *p = ax_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *ax_arena_strdup(ax_arena *a, const char *s) { return s ? ax_arena_strndup(a, s, strlen(s)) : NULL; }

char *ax_arena_printf(ax_arena *a, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = ax_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

/* ---- buffer ----------------------------------------------------------- */
static void buf_reserve(ax_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) abort();
    b->data = p;
    b->cap = cap;
}

void ax_buf_append(ax_buf *b, const void *p, size_t n) {
    /* p may point into b itself (appending a copy of part of it): growing moves b->data, so keep the offset */
    uintptr_t c = (uintptr_t)p, lo = (uintptr_t)b->data;
    int inside = b->data && c >= lo && c < lo + b->len;
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, inside ? b->data + (c - lo) : p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ax_buf_puts(ax_buf *b, const char *s) { ax_buf_append(b, s, strlen(s)); }

void ax_buf_vprintf(ax_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) { /* a format this code wrote wrong, or output past INT_MAX: never a silent truncation */
        fprintf(stderr, "axo: internal error: vsnprintf(\"%s\") failed\n", fmt);
        abort();
    }
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void ax_buf_printf(ax_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ax_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void ax_buf_u8(ax_buf *b, uint8_t v) { ax_buf_append(b, &v, 1); }
void ax_buf_u32(ax_buf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    ax_buf_append(b, x, 4);
}
void ax_buf_u64(ax_buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    ax_buf_append(b, x, 8);
}
void ax_buf_free(ax_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
char *ax_buf_steal(ax_buf *b) {
    buf_reserve(b, 0);
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- diagnostics ------------------------------------------------------ */
void ax_diag_init(ax_diag *d) { memset(d, 0, sizeof *d); }

void ax_diag_free(ax_diag *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->entries[i].where);
        free(d->entries[i].msg);
    }
    free(d->entries);
    memset(d, 0, sizeof *d);
}

void ax_diag_vadd(ax_diag *d, ax_severity sev, const char *where, const char *fmt, va_list ap) {
    if (!d) return;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->entries = realloc(d->entries, (size_t)d->cap * sizeof *d->entries);
        if (!d->entries) abort();
    }
    ax_buf m = {0};
    ax_buf_vprintf(&m, fmt, ap);
    ax_diag_entry *e = &d->entries[d->n++];
    e->sev = sev;
    e->where = strdup(where ? where : "");
    e->msg = ax_buf_steal(&m);
    if (sev == AX_SEV_ERROR) d->nerrors++;
    if (sev == AX_SEV_WARNING) d->nwarnings++;
}

void ax_diag_add(ax_diag *d, ax_severity sev, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ax_diag_vadd(d, sev, where, fmt, ap);
    va_end(ap);
}

void ax_error(ax_diag *d, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ax_diag_vadd(d, AX_SEV_ERROR, where, fmt, ap);
    va_end(ap);
}

void ax_warn(ax_diag *d, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ax_diag_vadd(d, AX_SEV_WARNING, where, fmt, ap);
    va_end(ap);
}

const char *ax_loc(char *out, size_t cap, const char *file, int line, int col) {
    if (line > 0 && col > 0)
        snprintf(out, cap, "%s:%d:%d", file, line, col);
    else if (line > 0)
        snprintf(out, cap, "%s:%d", file, line);
    else
        snprintf(out, cap, "%s", file);
    return out;
}

void ax_diag_print(const ax_diag *d, FILE *f) {
    static const char *names[] = {"note", "warning", "error"};
    for (int i = 0; i < d->n; i++) {
        const ax_diag_entry *e = &d->entries[i];
        if (e->where[0])
            fprintf(f, "%s: %s: %s\n", e->where, names[e->sev], e->msg);
        else
            fprintf(f, "%s: %s\n", names[e->sev], e->msg);
    }
}

int ax_diag_contains(const ax_diag *d, const char *needle) {
    for (int i = 0; i < d->n; i++)
        if (strstr(d->entries[i].msg, needle) || strstr(d->entries[i].where, needle)) return 1;
    return 0;
}

/* ---- files ------------------------------------------------------------ */
char *ax_read_file(const char *path, size_t *len, ax_diag *d) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ax_error(d, path, "cannot read: %s", strerror(errno));
        return NULL;
    }
    ax_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) ax_buf_append(&b, tmp, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        ax_error(d, path, "read error");
        ax_buf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return ax_buf_steal(&b);
}

int ax_write_file_atomic(const char *path, const void *data, size_t len, ax_diag *d) {
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        ax_error(d, path, "cannot write: %s", strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            ax_error(d, path, "write failed: %s", strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        ax_error(d, path, "write failed: %s", strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        ax_error(d, path, "cannot rename temporary file into place: %s", strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int ax_mkdir_p(const char *path, ax_diag *d) {
    char *p = strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            ax_error(d, p, "cannot create directory: %s", strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        ax_error(d, p, "cannot create directory: %s", strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

int ax_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        if (cap) out[0] = 0;
        return -1;
    }
    return 0;
}

int ax_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- f16 -------------------------------------------------------------- */
float ax_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

uint16_t ax_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000u;
    uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x47800000u) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (a < 0x38800000u) { /* subnormal or zero in f16 */
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (112 - e) + ... */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a >> 13) - (112u << 10));
    uint32_t rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}
