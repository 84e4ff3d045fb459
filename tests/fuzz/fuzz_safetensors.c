/* fuzz_safetensors — a .safetensors file (a model's weights, an adapter, a
 * checkpoint): rt_st_open_buffer's validation, then every tensor read as
 * f32 whole and by rows, and the metadata looked up. */
#include "tests/fuzz/fuzz.h"

#include "runtime/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = fz_copy(data, size);
    rt_st_file f;
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_st_open_buffer(copy, size, "f.safetensors", &f, &d);
    fz_check(rc, &d, "rt_st_open_buffer");
    if (rc == 0) {
        for (int i = 0; i < f.ntensors; i++) {
            const rt_st_tensor *t = &f.tensors[i];
            if (rt_st_find(&f, t->name) == NULL) {
                fprintf(stderr, "fuzz: tensor %s is not found by name\n", t->name);
                abort();
            }
            if (t->numel > (1 << 20)) continue; /* the reads are checked; the fuzzer's memory is not */
            float *out = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
            ax_diag e;
            ax_diag_init(&e);
            fz_check(rt_st_read_f32(&f, t, out, &e), &e, "rt_st_read_f32");
            ax_diag_free(&e);
            if (t->rank >= 1 && t->shape[0] > 0) {
                ax_diag_init(&e);
                int64_t half = t->shape[0] / 2;
                fz_check(rt_st_read_f32_rows(&f, t, half, t->shape[0] - half, out, &e), &e, "rt_st_read_f32_rows");
                ax_diag_free(&e);
            }
            free(out);
        }
        (void)rt_st_meta(&f, "format");
        rt_st_close(&f);
    }
    ax_diag_free(&d);
    free(copy);
    return 0;
}
