/* kbin.c — the KBIN plan section (see kbin.h). */
#include "codegen/kbin.h"

#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/nvrtc.h"
#include "ir/planfile.h"

#include <stdlib.h>
#include <string.h>

static void put(ax_buf *out, const char *arch, const char *kind, const char *name, const ax_buf *cubin, int *n,
                uint64_t *bytes) {
    ax_wr_str(out, arch);
    ax_wr_str(out, kind);
    ax_wr_str(out, name);
    ax_wr_blob(out, cubin->data, cubin->len);
    (*n)++;
    *bytes += cubin->len;
}

/* Appends the distinct fused kernels of m for arch (first appearance order). */
static int fused_kernels(const ir_module *m, const char *arch, ax_buf *out, int *n, uint64_t *bytes, ax_diag *d) {
    char (*seen)[64] = NULL;
    int nseen = 0, cap = 0, rc = 0;
    for (int pi = 0; pi < m->nprograms && !rc; pi++) {
        const ir_program *p = m->programs[pi];
        for (int i = 0; i < p->nnodes && !rc; i++) {
            const ir_node *nd = &p->nodes[i];
            if (nd->op != IR_OP_fused) continue;
            const char *expr = ir_attr_str(nd->attrs, nd->nattrs, "expr", NULL);
            ir_dtype in[IR_MAX_IN];
            int nin = nd->nin < IR_MAX_IN ? nd->nin : IR_MAX_IN;
            for (int k = 0; k < nin; k++) in[k] = ir_ref_type(m, p, nd->in[k])->dtype;
            char entry[64];
            if (!expr || !ir_fexpr_entry(expr, in, nin, entry, sizeof entry)) continue; /* the verifier refuses these */
            int dup = 0;
            for (int k = 0; k < nseen && !dup; k++) dup = !strcmp(seen[k], entry);
            if (dup) continue;
            if (nseen == cap) {
                cap = cap ? 2 * cap : 16;
                char (*s)[64] = realloc(seen, sizeof *seen * (size_t)cap);
                if (!s) {
                    ax_error(d, "axoc", "out of memory");
                    rc = -1;
                    break;
                }
                seen = s;
            }
            snprintf(seen[nseen++], sizeof seen[0], "%s", entry);
            ax_buf cubin = {0};
            rc = cg_fused_compile(NULL, entry, expr, in, nin, arch, &cubin, d);
            if (!rc) put(out, arch, "fused", entry, &cubin, n, bytes);
            ax_buf_free(&cubin);
        }
    }
    free(seen);
    return rc;
}

int cg_kbin_build(const ir_module *m, const char *const *archs, int narch, ax_buf *out, int *nentries,
                  uint64_t *bytes_cubin, ax_diag *d) {
    out->len = 0;
    *nentries = 0;
    *bytes_cubin = 0;
    if (!cg_nvrtc_available()) {
        ax_error(d, "axoc", "--arch asks for CUBINs in the plan but axo was built without NVRTC (no CUDA toolkit); "
                            "compile without --arch (axorun then builds the kernels where it runs)");
        return -1;
    }
    ax_buf body = {0};
    int n = 0;
    uint64_t bytes = 0;
    for (int a = 0; a < narch; a++) {
        for (int i = 0; i < cg_cuda_kernel_count(); i++) {
            const cg_cuda_kernel *k = cg_cuda_kernel_get(i);
            ax_buf cubin = {0};
            if (cg_cuda_kernel_compile(NULL, k->name, archs[a], &cubin, d) != 0) { /* what axorun would build */
                ax_error(d, "axoc", "cannot build the kernel source '%s' for %s", k->name, archs[a]);
                ax_buf_free(&cubin);
                ax_buf_free(&body);
                return -1;
            }
            put(&body, archs[a], "module", k->name, &cubin, &n, &bytes);
            ax_buf_free(&cubin);
        }
        if (fused_kernels(m, archs[a], &body, &n, &bytes, d) != 0) {
            ax_buf_free(&body);
            return -1;
        }
    }
    ax_buf_u32(out, CG_KBIN_VERSION);
    ax_buf_u32(out, (uint32_t)n);
    ax_buf_append(out, body.data, body.len);
    ax_buf_free(&body);
    *nentries = n;
    *bytes_cubin = bytes;
    return 0;
}

int cg_kbin_parse(const void *data, size_t len, const char *what, cg_kbin *k, ax_diag *d) {
    memset(k, 0, sizeof *k);
    ax_rd r;
    ax_rd_init(&r, data, len);
    uint32_t ver = ax_rd_u32(&r);
    if (!r.err && ver != CG_KBIN_VERSION) {
        ax_error(d, what, "KBIN section format version %u, this axorun reads version %d: recompile with axoc", ver,
                 CG_KBIN_VERSION);
        return -1;
    }
    uint32_t n = ax_rd_count(&r, 4 + 4 + 4 + 8);
    k->strs = ax_arena_create();
    k->e = calloc((size_t)n + 1, sizeof *k->e);
    if (!k->strs || !k->e) {
        ax_error(d, what, "out of memory");
        cg_kbin_free(k);
        return -1;
    }
    for (uint32_t i = 0; i < n && !r.err; i++) {
        cg_kbin_entry *e = &k->e[i];
        e->arch = ax_rd_str(&r, k->strs);
        e->kind = ax_rd_str(&r, k->strs);
        e->name = ax_rd_str(&r, k->strs);
        e->cubin = ax_rd_blob(&r, &e->size);
        if (!r.err) k->n++;
    }
    if (r.err || !ax_rd_end(&r)) {
        ax_error(d, what, "KBIN section is malformed at byte %zu of %zu (after %d whole entries): the plan is corrupt, "
                          "recompile it with axoc",
                 r.pos, len, k->n);
        cg_kbin_free(k);
        return -1;
    }
    return 0;
}

void cg_kbin_free(cg_kbin *k) {
    free(k->e);
    if (k->strs) ax_arena_destroy(k->strs);
    memset(k, 0, sizeof *k);
}

const cg_kbin_entry *cg_kbin_find(const cg_kbin *k, const char *arch, const char *name) {
    for (int i = 0; k && i < k->n; i++)
        if (!strcmp(k->e[i].arch, arch) && !strcmp(k->e[i].name, name)) return &k->e[i];
    return NULL;
}
