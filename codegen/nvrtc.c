/* nvrtc.c — NVRTC compile, kernel cache, CUBIN symbol lookup (see nvrtc.h). */
#include "codegen/nvrtc.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#ifdef AXO_HAVE_NVRTC
#include <nvrtc.h>
#endif

enum { KC_FORMAT = 1, KC_HEADER = 32 };
static const char kc_magic[8] = {'A', 'X', 'O', 'C', 'U', 'B', 'I', 'N'};

/* ---- options ------------------------------------------------------------- */
static const char *env_set(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* 1 if <dir>/cuda_bf16.h exists. */
static int has_bf16_header(const char *dir) {
    char p[4096];
    int n = snprintf(p, sizeof p, "%s/cuda_bf16.h", dir);
    return n > 0 && (size_t)n < sizeof p && access(p, R_OK) == 0;
}

/* buf = s if s/cuda_bf16.h exists (and fits); else NULL. */
static const char *use_dir(char *buf, size_t cap, const char *s) {
    if (!s || !has_bf16_header(s)) return NULL;
    int n = snprintf(buf, cap, "%s", s);
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

/* Where cuda_bf16.h is (see nvrtc.h for the order), into buf; NULL if nowhere. */
static const char *cuda_include_dir(char *buf, size_t cap) {
    if (use_dir(buf, cap, env_set("AXO_CUDA_INCLUDE"))) return buf;
#ifdef AXO_CUDA_INCLUDE_DIR
    if (use_dir(buf, cap, AXO_CUDA_INCLUDE_DIR)) return buf;
#endif
    const char *homes[] = {"CUDA_HOME", "CUDA_PATH"};
    for (size_t i = 0; i < AX_ARRAY_LEN(homes); i++) {
        const char *v = env_set(homes[i]);
        char inc[4096];
        if (!v || snprintf(inc, sizeof inc, "%s/include", v) >= (int)sizeof inc) continue;
        if (use_dir(buf, cap, inc)) return buf;
    }
    return use_dir(buf, cap, "/usr/local/cuda/include");
}

/* "sm_" (or, for PTX, "compute_") then digits then at most one lower-case
 * letter ("sm_90a"). */
static int valid_arch_prefix(const char *arch, const char *prefix) {
    size_t np = strlen(prefix);
    if (!arch || strncmp(arch, prefix, np) != 0) return 0;
    const char *p = arch + np;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    if (*p >= 'a' && *p <= 'z') p++;
    return *p == '\0';
}
static int valid_arch(const char *arch) { return valid_arch_prefix(arch, "sm_"); }

typedef struct {
    char arch_opt[64];
    char inc_opt[4200];
    const char *v[64];
    int n;
} opt_list;

/* Builds the option list; -1 with an error in d. virt: arch is a virtual
 * architecture ("compute_90a", for PTX). */
static int build_opts_for(opt_list *o, const char *name, const char *arch, int virt, const char *const *extra,
                          int nextra, ax_diag *d) {
    char where[256];
    snprintf(where, sizeof where, "%s.cu", name ? name : "kernel");
    if (virt ? !valid_arch_prefix(arch, "compute_") : !valid_arch(arch)) {
        ax_error(d, where, "kernel '%s': invalid GPU architecture '%s' (expected e.g. sm_80, sm_90a)",
                 name ? name : "?", arch ? arch : "(null)");
        return -1;
    }
    if (nextra < 0 || nextra > 48 || (nextra > 0 && !extra)) {
        ax_error(d, where, "kernel '%s': bad extra option list (%d options)", name ? name : "?", nextra);
        return -1;
    }
    char inc[4096];
    if (!cuda_include_dir(inc, sizeof inc)) {
        ax_error(d, where,
                 "kernel '%s': cannot find the CUDA headers (cuda_bf16.h); set AXO_CUDA_INCLUDE or CUDA_HOME",
                 name ? name : "?");
        return -1;
    }
    snprintf(o->arch_opt, sizeof o->arch_opt, "--gpu-architecture=%s", arch);
    snprintf(o->inc_opt, sizeof o->inc_opt, "-I%s", inc);
    o->n = 0;
    o->v[o->n++] = "-std=c++17";
    o->v[o->n++] = o->arch_opt;
    o->v[o->n++] = "-default-device";
    o->v[o->n++] = "-lineinfo";
    o->v[o->n++] = o->inc_opt;
    for (int i = 0; i < nextra; i++) {
        if (!extra[i]) {
            ax_error(d, where, "kernel '%s': extra option %d is NULL", name ? name : "?", i);
            return -1;
        }
        o->v[o->n++] = extra[i];
    }
    return 0;
}
static int build_opts(opt_list *o, const char *name, const char *arch, const char *const *extra, int nextra,
                      ax_diag *d) {
    return build_opts_for(o, name, arch, 0, extra, nextra, d);
}

/* ---- compile --------------------------------------------------------------- */
#ifdef AXO_HAVE_NVRTC
int cg_nvrtc_available(void) { return 1; }

int cg_nvrtc_version(int *major, int *minor) {
    int ma = 0, mi = 0;
    if (nvrtcVersion(&ma, &mi) != NVRTC_SUCCESS) ma = mi = 0;
    if (major) *major = ma;
    if (minor) *minor = mi;
    return ma ? 0 : -1;
}

int cg_nvrtc_compile(const char *name, const char *source, const char *arch, const char *const *extra_opts,
                     int nextra, ax_buf *cubin_out, ax_buf *log_out, ax_diag *d) {
    if (!name) name = "kernel";
    char where[256];
    snprintf(where, sizeof where, "%s.cu", name);
    if (log_out) log_out->len = 0;
    if (!source) {
        ax_error(d, where, "kernel '%s': no source", name);
        return -1;
    }
    opt_list o;
    if (build_opts(&o, name, arch, extra_opts, nextra, d) != 0) return -1;

    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, source, where, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS) {
        ax_error(d, where, "kernel '%s': nvrtcCreateProgram failed: %s", name, nvrtcGetErrorString(r));
        return -1;
    }
    nvrtcResult cr = nvrtcCompileProgram(prog, o.n, o.v);
    size_t logn = 0;
    char *log = NULL;
    if (nvrtcGetProgramLogSize(prog, &logn) == NVRTC_SUCCESS && logn > 0) {
        log = calloc(1, logn + 1);
        if (!log) abort();
        if (nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = '\0';
    }
    int rc = 0;
    if (log_out) {
        ax_buf_puts(log_out, log ? log : "");
    }
    if (cr != NVRTC_SUCCESS) {
        ax_error(d, where, "NVRTC failed to compile kernel '%s' for %s (%s):\n%s", name, arch,
                 nvrtcGetErrorString(cr), log && log[0] ? log : "(empty log)");
        rc = -1;
    } else {
        size_t n = 0;
        r = nvrtcGetCUBINSize(prog, &n);
        if (r != NVRTC_SUCCESS || n == 0) {
            ax_error(d, where, "kernel '%s': NVRTC produced no CUBIN for %s (%s)", name, arch,
                     r != NVRTC_SUCCESS ? nvrtcGetErrorString(r) : "empty");
            rc = -1;
        } else {
            cubin_out->len = 0;
            if (cubin_out->cap < n + 1) {
                char *p = realloc(cubin_out->data, n + 1);
                if (!p) abort();
                cubin_out->data = p;
                cubin_out->cap = n + 1;
            }
            r = nvrtcGetCUBIN(prog, cubin_out->data);
            if (r != NVRTC_SUCCESS) {
                ax_error(d, where, "kernel '%s': nvrtcGetCUBIN failed: %s", name, nvrtcGetErrorString(r));
                rc = -1;
            } else {
                cubin_out->len = n;
                cubin_out->data[n] = '\0';
            }
        }
    }
    free(log);
    nvrtcDestroyProgram(&prog);
    return rc;
}

int cg_nvrtc_ptx(const char *name, const char *source, const char *arch, ax_buf *ptx_out, ax_diag *d) {
    if (!name) name = "kernel";
    char where[256];
    snprintf(where, sizeof where, "%s.cu", name);
    opt_list o;
    if (!source) {
        ax_error(d, where, "kernel '%s': no source", name);
        return -1;
    }
    if (build_opts_for(&o, name, arch, 1, NULL, 0, d) != 0) return -1;
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, source, where, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS) {
        ax_error(d, where, "kernel '%s': nvrtcCreateProgram failed: %s", name, nvrtcGetErrorString(r));
        return -1;
    }
    size_t n = 0;
    r = nvrtcCompileProgram(prog, o.n, o.v);
    if (r == NVRTC_SUCCESS) r = nvrtcGetPTXSize(prog, &n);
    if (r == NVRTC_SUCCESS) {
        ptx_out->len = 0;
        char *buf = malloc(n + 1);
        if (!buf) abort();
        r = nvrtcGetPTX(prog, buf);
        buf[n] = '\0';
        if (r == NVRTC_SUCCESS) ax_buf_puts(ptx_out, buf);
        free(buf);
    }
    if (r != NVRTC_SUCCESS) ax_error(d, where, "kernel '%s': no PTX for %s: %s", name, arch, nvrtcGetErrorString(r));
    nvrtcDestroyProgram(&prog);
    return r == NVRTC_SUCCESS ? 0 : -1;
}
#else
int cg_nvrtc_available(void) { return 0; }

int cg_nvrtc_version(int *major, int *minor) {
    if (major) *major = 0;
    if (minor) *minor = 0;
    return -1;
}

int cg_nvrtc_compile(const char *name, const char *source, const char *arch, const char *const *extra_opts,
                     int nextra, ax_buf *cubin_out, ax_buf *log_out, ax_diag *d) {
    char where[256];
    snprintf(where, sizeof where, "%s.cu", name ? name : "kernel");
    if (log_out) log_out->len = 0;
    ax_error(d, where,
             "cannot compile kernel '%s' for %s: NVRTC is not available (axo was built without the CUDA toolkit)",
             name ? name : "kernel", arch ? arch : "(null)");
    return -1;
}

int cg_nvrtc_ptx(const char *name, const char *source, const char *arch, ax_buf *ptx_out, ax_diag *d) {
    (void)source, (void)ptx_out;
    ax_error(d, NULL, "cannot make PTX of kernel '%s' for %s: NVRTC is not available", name ? name : "kernel",
             arch ? arch : "(null)");
    return -1;
}
#endif

/* ---- cache ------------------------------------------------------------------ */
const char *cg_kernel_cache_dir(char *buf, size_t cap) {
    const char *v;
    int n;
    if ((v = env_set("AXO_CACHE_DIR")))
        n = snprintf(buf, cap, "%s/kernels", v);
    else if ((v = env_set("XDG_CACHE_HOME")))
        n = snprintf(buf, cap, "%s/axo/kernels", v);
    else if ((v = env_set("HOME")))
        n = snprintf(buf, cap, "%s/.cache/axo/kernels", v);
    else
        return NULL;
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

static void key_field(XXH3_state_t *st, const void *p, size_t n) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)((uint64_t)n >> (8 * i));
    XXH3_128bits_update(st, x, 8);
    if (n) XXH3_128bits_update(st, p, n);
}
static void key_str(XXH3_state_t *st, const char *s) { key_field(st, s, strlen(s)); }
static void key_u64(XXH3_state_t *st, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    key_field(st, x, 8);
}

/* 32 hex digits of the key; -1 with an error in d (no NVRTC, bad options). */
static int cache_key_hex(const char *name, const char *source, const char *arch, const char *const *extra,
                         int nextra, char hex[33], ax_diag *d) {
    int ma, mi;
    if (cg_nvrtc_version(&ma, &mi) != 0) {
        ax_error(d, NULL, "NVRTC is not available (axo was built without the CUDA toolkit)");
        return -1;
    }
    opt_list o;
    if (build_opts(&o, name, arch, extra, nextra, d) != 0) return -1;
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort();
    XXH3_128bits_reset(st);
    key_str(st, "axo kernel cache");
    key_u64(st, KC_FORMAT);
    key_str(st, name);
    key_str(st, source);
    key_u64(st, (uint64_t)o.n);
    for (int i = 0; i < o.n; i++) key_str(st, o.v[i]);
    key_u64(st, (uint64_t)ma);
    key_u64(st, (uint64_t)mi);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return 0;
}

const char *cg_kernel_cache_path(const char *dir, const char *name, const char *source, const char *arch,
                                 const char *const *extra_opts, int nextra, char *buf, size_t cap, ax_diag *d) {
    char hex[33];
    if (!name) name = "kernel";
    if (!dir || !source || cache_key_hex(name, source, arch, extra_opts, nextra, hex, d) != 0) return NULL;
    int n = snprintf(buf, cap, "%s/%s.cubin", dir, hex);
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* NULL if the entry is valid (payload at data + KC_HEADER), else why not. */
static const char *entry_problem(const uint8_t *data, size_t len) {
    if (len < KC_HEADER) return "shorter than its header";
    if (memcmp(data, kc_magic, 8) != 0) return "bad magic";
    if (rd32(data + 8) != KC_FORMAT) return "unknown format version";
    if (rd32(data + 12) != KC_HEADER) return "bad header size";
    uint64_t n = rd64(data + 16);
    if (n != len - KC_HEADER) return "length does not match the file size";
    if (n == 0) return "empty payload";
    if (XXH64(data + KC_HEADER, (size_t)n, 0) != rd64(data + 24)) return "checksum mismatch";
    return NULL;
}

int cg_nvrtc_compile_cached(const char *cache_dir, const char *name, const char *source, const char *arch,
                            const char *const *extra_opts, int nextra, ax_buf *cubin_out, ax_buf *log_out,
                            cg_kcache_status *status, ax_diag *d) {
    cg_kcache_status st_local;
    if (!status) status = &st_local;
    *status = CG_KCACHE_OFF;
    if (!name) name = "kernel";
    char dirbuf[4096], path[4200];
    const char *dir = cache_dir && cache_dir[0] ? cache_dir : cg_kernel_cache_dir(dirbuf, sizeof dirbuf);
    if (!cg_nvrtc_available() || !source)
        return cg_nvrtc_compile(name, source, arch, extra_opts, nextra, cubin_out, log_out, d);
    {
        ax_diag tmp;
        ax_diag_init(&tmp);
        const char *p = dir ? cg_kernel_cache_path(dir, name, source, arch, extra_opts, nextra, path, sizeof path,
                                                   &tmp)
                            : NULL;
        int bad_opts = tmp.nerrors > 0;
        ax_diag_free(&tmp);
        if (bad_opts) /* the compile reports the same problem as an error */
            return cg_nvrtc_compile(name, source, arch, extra_opts, nextra, cubin_out, log_out, d);
        if (!p) {
            ax_warn(d, NULL, "no kernel cache directory (set AXO_CACHE_DIR or HOME); kernel '%s' not cached", name);
            return cg_nvrtc_compile(name, source, arch, extra_opts, nextra, cubin_out, log_out, d);
        }
    }

    int corrupt = 0;
    if (access(path, F_OK) == 0) {
        ax_diag tmp;
        ax_diag_init(&tmp);
        size_t len = 0;
        char *data = ax_read_file(path, &len, &tmp);
        ax_diag_free(&tmp);
        const char *why = data ? entry_problem((const uint8_t *)data, len) : "unreadable";
        if (!why) {
            uint64_t n = len - KC_HEADER;
            cubin_out->len = 0;
            ax_buf_append(cubin_out, data + KC_HEADER, (size_t)n);
            if (log_out) log_out->len = 0;
            free(data);
            *status = CG_KCACHE_HIT;
            return 0;
        }
        free(data);
        corrupt = 1;
        if (unlink(path) != 0 && errno != ENOENT)
            ax_warn(d, path, "corrupt kernel cache entry (%s); rebuilding (could not delete it: %s)", why,
                    strerror(errno));
        else
            ax_warn(d, path, "corrupt kernel cache entry (%s) deleted; rebuilding kernel '%s'", why, name);
    }

    if (cg_nvrtc_compile(name, source, arch, extra_opts, nextra, cubin_out, log_out, d) != 0) return -1;
    *status = corrupt ? CG_KCACHE_REBUILT : CG_KCACHE_MISS;

    ax_buf e = {0};
    ax_buf_append(&e, kc_magic, 8);
    ax_buf_u32(&e, KC_FORMAT);
    ax_buf_u32(&e, KC_HEADER);
    ax_buf_u64(&e, (uint64_t)cubin_out->len);
    ax_buf_u64(&e, XXH64(cubin_out->data, cubin_out->len, 0));
    ax_buf_append(&e, cubin_out->data, cubin_out->len);
    ax_diag tmp;
    ax_diag_init(&tmp);
    int rc = ax_mkdir_p(dir, &tmp);
    if (rc == 0) rc = ax_write_file_atomic(path, e.data, e.len, &tmp);
    if (rc != 0) {
        const ax_diag_entry *en = tmp.n ? &tmp.entries[0] : NULL;
        ax_warn(d, path, "cannot store kernel '%s' in the cache (%s); continuing without it", name,
                en ? en->msg : "unknown error");
    }
    ax_diag_free(&tmp);
    ax_buf_free(&e);
    return 0;
}

/* ---- CUBIN symbols ---------------------------------------------------------- */
int cg_cubin_functions(const void *cubin, size_t len, void (*fn)(const char *sym, void *ctx), void *ctx) {
    const uint8_t *b = cubin;
    if (!b || len < sizeof(Elf64_Ehdr)) return -1;
    Elf64_Ehdr eh;
    memcpy(&eh, b, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return -1;
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > len ||
        (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > len - eh.e_shoff)
        return -1;
    int count = 0, found_symtab = 0;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, b + eh.e_shoff + (size_t)i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_SYMTAB) continue;
        found_symtab = 1;
        if (sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_offset > len || sh.sh_size > len - sh.sh_offset ||
            sh.sh_link >= eh.e_shnum)
            return -1;
        Elf64_Shdr strh;
        memcpy(&strh, b + eh.e_shoff + (size_t)sh.sh_link * sizeof strh, sizeof strh);
        if (strh.sh_offset > len || strh.sh_size > len - strh.sh_offset) return -1;
        const char *strtab = (const char *)b + strh.sh_offset;
        size_t nsym = sh.sh_size / sizeof(Elf64_Sym);
        for (size_t k = 0; k < nsym; k++) {
            Elf64_Sym sym;
            memcpy(&sym, b + sh.sh_offset + k * sizeof sym, sizeof sym);
            if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || ELF64_ST_BIND(sym.st_info) != STB_GLOBAL) continue;
            if (sym.st_name >= strh.sh_size || !memchr(strtab + sym.st_name, '\0', strh.sh_size - sym.st_name))
                return -1;
            if (fn) fn(strtab + sym.st_name, ctx);
            count++;
        }
    }
    return found_symtab ? count : -1;
}

typedef struct {
    const char *want;
    int found;
} find_ctx;
static void find_cb(const char *sym, void *ctx) {
    find_ctx *f = ctx;
    if (strcmp(sym, f->want) == 0) f->found = 1;
}

int cg_cubin_has_function(const void *cubin, size_t len, const char *sym) {
    find_ctx f = {sym, 0};
    if (!sym || cg_cubin_functions(cubin, len, find_cb, &f) < 0) return -1;
    return f.found;
}
