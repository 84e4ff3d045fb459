/* test_kbin.c — CUBINs in the plan (axoc compile --arch, the KBIN section):
 *  - a plan compiled for sm_80 (and for sm_80 + sm_90a) carries one CUBIN per
 *    registry kernel source and per distinct fused kernel of its programs,
 *    each a well-formed ELF that defines the entry points the executor will
 *    ask for, byte-identical to what the kernel cache compiles
 *  - two compiles give byte-identical plans; the archs are in META and in
 *    the plan cache key; no --arch: no KBIN
 *  - a corrupt KBIN is refused with a message naming the byte
 * Without NVRTC (no CUDA toolkit) the plan refuses --arch with a clear error. */
#include "codegen/compile.h"
#include "codegen/cuda_kernels.h"
#include "codegen/fusegen.h"
#include "codegen/kbin.h"
#include "codegen/nvrtc.h"
#include "ir/planfile.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static int compile(const char *const *archs, int narch, cg_result *r) {
    ax_diag d;
    ax_diag_init(&d);
    cg_options o = {.config_path = AXO_SOURCE_DIR "/configs/quickstart.yml", .archs = archs, .narch = narch};
    int rc = cg_compile(&o, r, &d);
    if (rc) ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    return rc;
}

static int count_fused(const char *irtx, size_t n) {
    int c = 0;
    for (const char *p = irtx; (p = strstr(p, "= fused(")) && p < irtx + n; p++) c++;
    return c;
}

static void test_plan_cubins(void) {
    const char *one[] = {"sm_80"}, *two[] = {"sm_80", "sm_90a"};
    cg_result r1, r1b, r2, r0;
    CHECK(compile(one, 1, &r1) == 0);
    CHECK(compile(one, 1, &r1b) == 0);
    CHECK(compile(two, 2, &r2) == 0);
    CHECK(compile(NULL, 0, &r0) == 0);
    CHECK_MSG(r1.plan.len == r1b.plan.len && memcmp(r1.plan.data, r1b.plan.data, r1.plan.len) == 0,
              "two compiles with --arch sm_80 differ");
    CHECK(strcmp(r1.key_hex, r2.key_hex) != 0 && strcmp(r1.key_hex, r0.key_hex) != 0);
    CHECK(r1.summary && strstr(r1.summary, "embedded") && strstr(r1.summary, "sm_80"));
    ax_diag d;
    ax_diag_init(&d);
    ax_plan_file pf, p0, p2;
    CHECK(ax_plan_open_mem((const uint8_t *)r1.plan.data, r1.plan.len, "plan", &pf, &d) == 0);
    CHECK(ax_plan_open_mem((const uint8_t *)r0.plan.data, r0.plan.len, "plan0", &p0, &d) == 0);
    CHECK(ax_plan_open_mem((const uint8_t *)r2.plan.data, r2.plan.len, "plan2", &p2, &d) == 0);
    CHECK(ax_plan_find(&p0, "KBIN") == NULL);
    const ax_plan_section *meta = ax_plan_find(&pf, "META"), *kb = ax_plan_find(&pf, "KBIN"), *ir = ax_plan_find(&pf, "IRTX");
    CHECK_MSG(meta && strstr((const char *)meta->data, "\"archs\"") && strstr((const char *)meta->data, "\"sm_80\""),
              "META: %.*s", meta ? (int)meta->size : 0, meta ? (const char *)meta->data : "");
    CHECK(kb && ir);
    if (!kb || !ir) return;
    int nfused = count_fused((const char *)ir->data, ir->size);
    CHECK(nfused > 0); /* the quickstart plan has fused nodes (the grad-norm sum) */
    cg_kbin k;
    CHECK(cg_kbin_parse(kb->data, kb->size, "plan", &k, &d) == 0);
    int nmod = cg_cuda_kernel_count(), seen_fused = 0;
    CHECK_MSG(k.n >= nmod + 1 && k.n <= nmod + nfused, "%d CUBINs for %d sources and %d fused nodes", k.n, nmod, nfused);
    for (int i = 0; i < k.n; i++) {
        const cg_kbin_entry *e = &k.e[i];
        CHECK_STREQ(e->arch, "sm_80");
        CHECK(e->size > 64 && !memcmp(e->cubin, "\x7f" "ELF", 4));
        if (!strcmp(e->kind, "module")) {
            const cg_cuda_kernel *src = cg_cuda_kernel_get(i);
            CHECK_MSG(src && !strcmp(src->name, e->name), "entry %d: %s in registry order", i, e->name);
            for (int j = 0; src && j < src->nentries; j++)
                CHECK_MSG(cg_cubin_has_function(e->cubin, (size_t)e->size, src->entries[j]) == 1, "%s: %s missing", e->name,
                          src->entries[j]);
            /* what axorun would compile itself */
            ax_buf c = {0};
            CHECK(src && cg_nvrtc_compile_cached(NULL, src->name, src->source, "sm_80", NULL, 0, &c, NULL, NULL, &d) == 0);
            CHECK(c.len == e->size && memcmp(c.data, e->cubin, c.len) == 0);
            ax_buf_free(&c);
        } else {
            CHECK_STREQ(e->kind, "fused");
            CHECK(cg_cubin_has_function(e->cubin, (size_t)e->size, e->name) == 1);
            seen_fused++;
        }
    }
    CHECK(seen_fused >= 1);
    CHECK(cg_kbin_find(&k, "sm_80", "rmsnorm") != NULL && cg_kbin_find(&k, "sm_90a", "rmsnorm") == NULL);
    /* two archs: the same list twice */
    const ax_plan_section *kb2 = ax_plan_find(&p2, "KBIN");
    cg_kbin k2;
    CHECK(kb2 && cg_kbin_parse(kb2->data, kb2->size, "plan2", &k2, &d) == 0);
    CHECK_EQ(k2.n, 2 * k.n);
    CHECK(cg_kbin_find(&k2, "sm_90a", "rmsnorm") != NULL);
    cg_kbin_free(&k2);
    /* a corrupt section: a truncated CUBIN */
    cg_kbin bad;
    CHECK(cg_kbin_parse(kb->data, kb->size - 7, "plan", &bad, &d) == -1);
    CHECK(ax_diag_contains(&d, "KBIN section is malformed at byte"));
    uint8_t v9[8] = {9, 0, 0, 0, 0, 0, 0, 0};
    CHECK(cg_kbin_parse(v9, sizeof v9, "plan", &bad, &d) == -1);
    CHECK(ax_diag_contains(&d, "KBIN section format version 9"));
    cg_kbin_free(&k);
    ax_plan_close(&pf);
    ax_plan_close(&p0);
    ax_plan_close(&p2);
    ax_diag_free(&d);
    cg_result_free(&r1);
    cg_result_free(&r1b);
    cg_result_free(&r2);
    cg_result_free(&r0);
}

int main(void) {
    if (!cg_nvrtc_available()) {
        const char *one[] = {"sm_80"};
        cg_result r;
        ax_diag d;
        ax_diag_init(&d);
        cg_options o = {.config_path = AXO_SOURCE_DIR "/configs/quickstart.yml", .archs = one, .narch = 1};
        CHECK(cg_compile(&o, &r, &d) != 0);
        CHECK(ax_diag_contains(&d, "built without NVRTC"));
        cg_result_free(&r);
        ax_diag_free(&d);
        return check_done();
    }
    test_plan_cubins();
    return check_done();
}
