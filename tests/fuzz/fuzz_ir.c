/* fuzz_ir — IR text (`axoc verify FILE.ir`, a plan's IRTX section): what
 * parses verifies or says why, and prints to text that parses again and
 * prints the same. */
#include "tests/fuzz/fuzz.h"

#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = (char *)fz_copy(data, size);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(copy, size, "f.ir", &d);
    fz_check(m ? 0 : -1, &d, "ir_parse");
    if (m) {
        ax_diag e;
        ax_diag_init(&e);
        fz_check(ir_verify(m, &e), &e, "ir_verify");
        ax_diag_free(&e);
        ax_buf a = {0}, b = {0};
        ir_print(m, &a);
        ax_diag_init(&e);
        ir_module *m2 = ir_parse(a.data, a.len, "printed.ir", &e);
        if (!m2) {
            fprintf(stderr, "fuzz: the printed module does not parse: %s\n%.*s\n",
                    e.n ? e.entries[0].msg : "?", (int)a.len, a.data);
            abort();
        }
        ir_print(m2, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            fprintf(stderr, "fuzz: printing is not stable:\n%.*s\n---\n%.*s\n", (int)a.len, a.data, (int)b.len,
                    b.data);
            abort();
        }
        ir_module_destroy(m2);
        ax_diag_free(&e);
        ax_buf_free(&a);
        ax_buf_free(&b);
        ir_module_destroy(m);
    }
    ax_diag_free(&d);
    free(copy);
    return 0;
}
