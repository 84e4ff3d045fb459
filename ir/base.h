/* base.h — the few utilities every module of axo shares.
 *
 * Promises:
 *  - ax_arena: a bump allocator; everything it hands out is freed by one
 *    ax_arena_destroy. Allocations are zeroed and 16-byte aligned.
 *  - ax_buf: a growable byte buffer (always NUL-terminated for text use).
 *  - ax_diag: a list of diagnostics (errors, warnings, notes), each with a
 *    location string ("file:line:col" or "file: key.path") and a message.
 *    Library code never prints or exits; it fills an ax_diag and returns a
 *    status. Tools print with ax_diag_print.
 *  - ax_write_file_atomic: temp file + fsync + rename, so a reader never sees
 *    a half-written file.
 */
#ifndef AX_BASE_H
#define AX_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define AX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AX_PRINTF(f, a)
#endif

#define AX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- arena ---------------------------------------------------------- */
typedef struct ax_arena ax_arena;
ax_arena *ax_arena_create(void);
void ax_arena_destroy(ax_arena *a);
void *ax_arena_alloc(ax_arena *a, size_t size);               /* zeroed */
char *ax_arena_strdup(ax_arena *a, const char *s);            /* NULL -> NULL */
char *ax_arena_strndup(ax_arena *a, const char *s, size_t n);
char *ax_arena_printf(ax_arena *a, const char *fmt, ...) AX_PRINTF(2, 3);

/* ---- growable buffer -------------------------------------------------- */
typedef struct ax_buf {
    char *data;
    size_t len, cap;
} ax_buf;
void ax_buf_append(ax_buf *b, const void *p, size_t n); /* p may point into b's own bytes */
void ax_buf_puts(ax_buf *b, const char *s);
void ax_buf_printf(ax_buf *b, const char *fmt, ...) AX_PRINTF(2, 3);
void ax_buf_vprintf(ax_buf *b, const char *fmt, va_list ap);
void ax_buf_u8(ax_buf *b, uint8_t v);
void ax_buf_u32(ax_buf *b, uint32_t v); /* little-endian */
void ax_buf_u64(ax_buf *b, uint64_t v); /* little-endian */
void ax_buf_free(ax_buf *b);
char *ax_buf_steal(ax_buf *b); /* caller frees with free() */

/* ---- diagnostics ------------------------------------------------------ */
typedef enum { AX_SEV_NOTE, AX_SEV_WARNING, AX_SEV_ERROR } ax_severity;

typedef struct ax_diag_entry {
    ax_severity sev;
    char *where; /* "cfg.yml:3:5", "zero3.json: zero_optimization.stage", or "" */
    char *msg;
} ax_diag_entry;

typedef struct ax_diag {
    ax_diag_entry *entries;
    int n, cap;
    int nerrors, nwarnings;
} ax_diag;

void ax_diag_init(ax_diag *d);
void ax_diag_free(ax_diag *d);
void ax_diag_add(ax_diag *d, ax_severity sev, const char *where, const char *fmt, ...) AX_PRINTF(4, 5);
void ax_diag_vadd(ax_diag *d, ax_severity sev, const char *where, const char *fmt, va_list ap);
/* Shorthands; `where` may be NULL. */
void ax_error(ax_diag *d, const char *where, const char *fmt, ...) AX_PRINTF(3, 4);
void ax_warn(ax_diag *d, const char *where, const char *fmt, ...) AX_PRINTF(3, 4);
/* "file:line:col" into a caller buffer (line/col 1-based; 0 = omit). */
const char *ax_loc(char *out, size_t cap, const char *file, int line, int col);
/* Prints every entry as "where: error: msg" to f. */
void ax_diag_print(const ax_diag *d, FILE *f);
/* True if any entry's message contains `needle` (for tests). */
int ax_diag_contains(const ax_diag *d, const char *needle);

/* ---- files ------------------------------------------------------------ */
/* Reads a whole file; returns malloc'd data (NUL-terminated) or NULL and
 * fills d with "path: cannot read: <strerror>". */
char *ax_read_file(const char *path, size_t *len, ax_diag *d);
/* Writes atomically (path.tmp.<pid> + fsync + rename). 0 on success. */
int ax_write_file_atomic(const char *path, const void *data, size_t len, ax_diag *d);
/* mkdir -p; 0 on success. */
int ax_mkdir_p(const char *path, ax_diag *d);
int ax_file_exists(const char *path);
/* out = dir + "/" + name; -1 (out = "") if it does not fit in cap. */
int ax_path_join(char *out, size_t cap, const char *dir, const char *name);

/* ---- bf16 ------------------------------------------------------------- */
/* Round-to-nearest-even float -> bf16 as the GPU's __float2bfloat16_rn does
 * (NaN stays NaN). */
static inline uint16_t ax_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    uint32_t lsb = (v.u >> 16) & 1u;
    v.u += 0x7fffu + lsb;
    return (uint16_t)(v.u >> 16);
}
static inline float ax_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
static inline float ax_round_bf16(float f) { return ax_bf16_to_f32(ax_f32_to_bf16(f)); }
float ax_f16_to_f32(uint16_t h);
uint16_t ax_f32_to_f16(float f); /* round-to-nearest-even */

#endif
