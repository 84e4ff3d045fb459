/* cache.h — the plan cache: finished plans stored by a hash of exactly what
 * determines them.
 *
 * Promises:
 *  - The key is XXH3-128 over a sequence of fields, each encoded as its u64
 *    little-endian length then its bytes, after a fixed domain prefix that
 *    includes AX_PLAN_VERSION. Field boundaries therefore cannot alias
 *    ("ab"+"c" and "a"+"bc" differ), and NULL differs from "". The caller
 *    adds, in a fixed order: canonical config text, model config.json bytes,
 *    compiler version, target arch, world size/mesh. Never time or paths.
 *  - Entries are <dir>/<32 hex digits>.plan, written atomically.
 *  - A lookup never returns bytes that fail ax_plan_open_mem: a corrupt,
 *    truncated or other-version entry is deleted, reported as a warning and
 *    treated as a miss.
 *  - Nothing here is an error: cache trouble is a warning and the compile
 *    goes on without the cache.
 */
#ifndef CG_CACHE_H
#define CG_CACHE_H

#include "ir/base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hi, lo;
} cg_cache_key;

typedef struct cg_keyb cg_keyb;

cg_keyb *cg_key_begin(void);
void cg_key_add(cg_keyb *kb, const void *data, size_t n);
void cg_key_add_str(cg_keyb *kb, const char *s); /* NULL is its own value */
void cg_key_add_u64(cg_keyb *kb, uint64_t v);    /* as an 8-byte LE field */
/* The running compiler's own bytes (XXH3 of /proc/self/exe, computed once
 * per process): a rebuilt compiler never serves plans an older build made
 * under the same version string. Where the file cannot be read, only the
 * version string keys the compiler. */
void cg_key_add_compiler(cg_keyb *kb);
/* Returns the key and frees kb. */
cg_cache_key cg_key_finish(cg_keyb *kb);

/* 32 lowercase hex digits (hi then lo) + NUL. */
void cg_cache_key_hex(const cg_cache_key *k, char out[33]);
int cg_cache_key_eq(const cg_cache_key *a, const cg_cache_key *b);

/* $AXO_CACHE_DIR, else $XDG_CACHE_HOME/axo, else $HOME/.cache/axo (empty
 * variables count as unset). Returns buf, or NULL if none is set or the
 * path does not fit in cap. The directory is not created here. */
const char *cg_cache_dir(char *buf, size_t cap);
/* "<dir>/<hex>.plan" into buf; NULL if it does not fit. */
const char *cg_cache_path(const char *dir, const cg_cache_key *k, char *buf, size_t cap);

/* 1 on a hit: the plan's bytes are appended to plan_out (which is taken
 * over without a copy if it is empty and unallocated). 0 on a miss, incl.
 * an unreadable or invalid entry (a warning in d; an invalid one is
 * deleted). */
int cg_cache_lookup(const char *dir, const cg_cache_key *k, ax_buf *plan_out, ax_diag *d);
/* Creates dir if needed and writes the entry atomically. 0 on success; on
 * failure -1 and a warning in d (never an error). */
int cg_cache_store(const char *dir, const cg_cache_key *k, const void *plan, size_t n, ax_diag *d);

#endif
