/* fuzz_checkpoint — a checkpoint-N/ directory that resume_from_checkpoint
 * reads back. A real checkpoint is trained at start-up (fz_train_tiny with
 * save_steps: 1). The first byte of an input picks one of the checkpoint's
 * files, and the rest replaces that file in a copy of the checkpoint. The
 * copy then goes through rt_resume_peek and rt_resume_load into a session of
 * the same plan. A refusal must say why, and nothing may crash.
 *
 * AXO_FUZZ_WRITE_SEEDS=DIR writes a seed per file (its selector byte and the
 * checkpoint's own bytes) into DIR. */
#include "tests/fuzz/fuzz.h"
#ifdef AXO_LIBFUZZER /* JSON-aware mutations after the selector byte */
#define JSON_MUTATOR_OFFSET 1
#include "tests/fuzz/json_mutator.h"
#endif

#include "runtime/resume.h"
#include "runtime/train.h"

#include <sys/stat.h>

/* the checkpoint's files that an input can replace */
static const char *const files[] = {"trainer_state.json", "model.safetensors", "optimizer/optimizer_state.json",
                                    "config.json", "optimizer/optimizer-rank00000-of-00001.safetensors"};
enum { NFILES = sizeof files / sizeof files[0] };

static struct {
    char work[4096];
    uint8_t *bytes[NFILES];
    size_t len[NFILES];
    rt_session s;
} G;

static void setup(void) {
    const char *out = fz_train_tiny("out", NULL, "save_steps: 1\n");
    char p[8192];
    snprintf(p, sizeof p, "%s/checkpoint-1", out);
    fz_read_files(p, files, NFILES, G.bytes, G.len);
    ax_diag d;
    ax_diag_init(&d);
    snprintf(p, sizeof p, "%s/out.bin", fz_tmpdir());
    if (rt_session_open(p, &G.s, &d) != 0) {
        ax_diag_print(&d, stderr);
        abort();
    }
    ax_diag_free(&d);
    snprintf(G.work, sizeof G.work, "%s/ck", fz_tmpdir());
    snprintf(p, sizeof p, "%s/optimizer", G.work);
    if (mkdir(G.work, 0755) != 0 || mkdir(p, 0755) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!G.work[0]) setup();
    if (size == 0) return 0;
    fz_put_files(G.work, files, NFILES, G.bytes, G.len, data, size);
    int64_t step = 0, max_steps = 0, gb = 0;
    ax_diag d;
    ax_diag_init(&d);
    int rc = rt_resume_peek(G.work, &step, &max_steps, &gb, &d);
    fz_check(rc, &d, "rt_resume_peek");
    ax_diag_free(&d);
    if (rc == 0) {
        char *log = NULL;
        ax_diag_init(&d);
        rc = rt_resume_load(&G.s, G.work, &step, &log, &d);
        fz_check(rc, &d, "rt_resume_load");
        free(log);
        ax_diag_free(&d);
    }
    return 0;
}
