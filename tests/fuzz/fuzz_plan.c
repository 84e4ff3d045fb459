/* fuzz_plan — a plan.bin: the container (header, section table, checksums)
 * and, when it opens, its kernel section (KBIN) and IR (IRTX). */
#include "tests/fuzz/fuzz.h"

#include "codegen/kbin.h"
#include "ir/ir.h"
#include "ir/planfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = fz_copy(data, size);
    ax_plan_file pf;
    ax_diag d;
    ax_diag_init(&d);
    int rc = ax_plan_open_mem(copy, size, "f.bin", &pf, &d);
    fz_check(rc, &d, "ax_plan_open_mem");
    if (rc == 0) {
        const ax_plan_section *k = ax_plan_find(&pf, "KBIN");
        if (k) {
            cg_kbin kb;
            ax_diag e;
            ax_diag_init(&e);
            int krc = cg_kbin_parse(k->data, k->size, "f.bin", &kb, &e);
            fz_check(krc, &e, "cg_kbin_parse");
            if (krc == 0) cg_kbin_free(&kb);
            ax_diag_free(&e);
        }
        const ax_plan_section *irs = ax_plan_find(&pf, "IRTX");
        if (irs) {
            ax_diag e;
            ax_diag_init(&e);
            ir_module *m = ir_parse((const char *)irs->data, irs->size, "f.bin", &e);
            fz_check(m ? 0 : -1, &e, "ir_parse");
            ir_module_destroy(m);
            ax_diag_free(&e);
        }
        ax_plan_close(&pf);
    }
    ax_diag_free(&d);
    free(copy);
    return 0;
}
