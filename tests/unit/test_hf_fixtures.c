/* test_hf_fixtures.c — axo vs Hugging Face transformers (PyTorch) on the
 * fixtures in tests/reference/fixtures/ (see tests/reference/README.md):
 * for each tiny Llama/Qwen2/Qwen3/Mistral model (and a perturbed-weights
 * variant of each), with HF's saved random weights and fixed token batches:
 *   - forward: loss (fp32 rel err < 1e-4), logits of the last position
 *   - backward: every parameter's gradient L2 norm (rel err < 1e-3) and two
 *     norm-weight gradients elementwise
 *   - accumulation: three micro-batches (A row 0, A row 1, B) normalised by
 *     the global token count equal HF's token-weighted accumulation
 *   - one AdamW step (HF Trainer decay grouping): loss after the step and
 *     each parameter's update norm
 *   - LongRoPE models: batch C's shorter rows (HF's short factors) in A's plan,
 *     which takes the long ones for A. */
#include "frontend/config.h"
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/train.h"
#include "runtime/cpu_kernels.h"
#include "runtime/adapter.h"
#include "tests/check.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void make_cfg(fe_config *c, int64_t B, int64_t S) {
    memset(c, 0, sizeof *c);
    c->micro_batch_size = B;
    c->sequence_len = S;
    c->gradient_accumulation_steps = 1;
    c->num_epochs = 1;
    c->learning_rate = 1e-3;
    c->sequence_parallel_degree = 1;
    c->output_dir = "/tmp";
}

/* >= 0: the model's config takes output_router_logits with this router_aux_loss_coef (run_aux_fixture) */
static double g_aux_coef = -1;

/* lora: a LoRA config (its model_dir the saved adapter to start from), or NULL for a full fine-tune */
static int open_session_lora(rt_session *s, const char *dir, int64_t B, int64_t S, const pass_lora_cfg *lora, ax_diag *d) {
    ax_arena *ar = ax_arena_create();
    fe_model m;
    fe_config c;
    make_cfg(&c, B, S);
    int rc = -1;
    ir_module *mod = ir_module_create();
    int32_t loss;
    int ok = fe_model_load(dir, &m, ar, d) == 0;
    if (ok && g_aux_coef >= 0) m.output_router_logits = 1, m.router_aux_loss_coef = g_aux_coef;
    if (ok && fe_lower(&c, &m, 1, mod, &loss, d) == 0) {
        pass_ctx pc = {.m = mod, .loss = loss,
                       .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 0}};
        if (lora) pc.lora = *lora;
        if (pass_pipeline(&pc, d) == 0 && rt_session_from_module(mod, s, d) == 0) {
            mod = NULL;
            rc = rt_session_init_weights(s, dir, d);
        }
    }
    ir_module_destroy(mod);
    ax_arena_destroy(ar);
    return rc;
}

static int open_session(rt_session *s, const char *dir, int64_t B, int64_t S, ax_diag *d) {
    return open_session_lora(s, dir, B, S, NULL, d);
}

/* Row r of batch (json) -> inputs with targets shifted as HF's loss does. */
static int64_t row_inputs(json_t *batch, int r, int64_t S, int32_t *ids, int32_t *tgt, int32_t *pos, int32_t *seg) {
    json_t *ii = json_array_get(json_object_get(batch, "input_ids"), (size_t)r);
    json_t *ll = json_array_get(json_object_get(batch, "labels"), (size_t)r);
    int64_t n = 0;
    for (int64_t t = 0; t < S; t++) {
        ids[t] = (int32_t)json_integer_value(json_array_get(ii, (size_t)t));
        tgt[t] = t + 1 < S ? (int32_t)json_integer_value(json_array_get(ll, (size_t)(t + 1))) : -100;
        pos[t] = (int32_t)t;
        seg[t] = 0;
        n += tgt[t] != -100;
    }
    return n;
}

/* Rows 0..B-1 of batch (json) as a micro-batch's inputs (allocated; rows_free); returns the counted targets */
typedef struct {
    int32_t *ids, *tgt, *pos, *seg;
} rows_in;
static int64_t rows_make(rows_in *in, json_t *batch, int64_t B, int64_t S) {
    const size_t n = (size_t)(B * S);
    in->ids = malloc(n * 4), in->tgt = malloc(n * 4), in->pos = malloc(n * 4), in->seg = malloc(n * 4);
    int64_t ntok = 0;
    for (int r = 0; r < B; r++)
        ntok += row_inputs(batch, r, S, in->ids + r * S, in->tgt + r * S, in->pos + r * S, in->seg + r * S);
    return ntok;
}
static void rows_free(rows_in *in) { free(in->ids), free(in->tgt), free(in->pos), free(in->seg); }

static double grad_norm(rt_session *s, const char *name) {
    char g[256];
    snprintf(g, sizeof g, "grad/%s", name);
    rt_buf *b = rt_session_global(s, g);
    if (!b) return -1;
    double ss = 0;
    for (int64_t i = 0; i < b->numel; i++) ss += (double)rt_f(b)[i] * rt_f(b)[i];
    return sqrt(ss);
}

static void zero_grads(rt_session *s) {
    for (int g = 0; g < s->m->nglobals; g++)
        if (s->m->globals[g].role == IR_ROLE_GRAD || s->m->globals[g].role == IR_ROLE_TEMP)
            memset(s->st.globals[g].data, 0, (size_t)s->st.globals[g].numel * 4);
}

static void check_grads(rt_session *s, json_t *norms, json_t *grads, const char *fx, const char *what) {
    const char *name;
    json_t *v;
    json_object_foreach(norms, name, v) {
        double mine = grad_norm(s, name), ref = json_number_value(v);
        CHECK_MSG(mine >= 0, "%s: no gradient for %s", fx, name);
        CHECK_MSG(fabs(mine - ref) <= 1e-3 * fabs(ref) + 1e-7, "%s %s: |grad %s| = %.8g, HF %.8g", fx, what, name, mine, ref);
    }
    json_object_foreach(grads, name, v) {
        char g[256];
        snprintf(g, sizeof g, "grad/%s", name);
        rt_buf *b = rt_session_global(s, g);
        CHECK_MSG(b && (size_t)b->numel == json_array_size(v), "%s: grad %s size", fx, name);
        if (!b) continue;
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < b->numel; i++) {
            double r = json_number_value(json_array_get(v, (size_t)i));
            worst = fmax(worst, fabs((double)rt_f(b)[i] - r));
            scale = fmax(scale, fabs(r));
        }
        CHECK_MSG(worst <= 1e-3 * scale + 1e-8, "%s %s: grad %s max abs err %.3g (max |ref| %.3g)", fx, what, name, worst, scale);
    }
}

static void run_fixture(const char *dir, const char *fx) {
    char path[4096];
    CHECK(ax_path_join(path, sizeof path, dir, "expected.json") == 0);
    json_error_t je;
    json_t *e = json_load_file(path, 0, &je);
    CHECK_MSG(e != NULL, "%s: %s", path, je.text);
    if (!e) return;
    json_t *A = json_object_get(json_object_get(e, "batches"), "A");
    json_t *Bb = json_object_get(json_object_get(e, "batches"), "B");
    int64_t BA = json_integer_value(json_array_get(json_object_get(A, "shape"), 0));
    int64_t S = json_integer_value(json_array_get(json_object_get(A, "shape"), 1));
    CHECK_MSG(BA > 0 && BA < 64 && S > 1 && S < 4096, "%s: batch A shape %lld x %lld", fx, (long long)BA, (long long)S);
    if (!(BA > 0 && BA < 64 && S > 1 && S < 4096)) {
        json_decref(e);
        return;
    }
    ax_diag d;
    ax_diag_init(&d);
    rt_session s;
    int ok = open_session(&s, dir, BA, S, &d) == 0;
    CHECK_MSG(ok, "%s: cannot build a session", fx);
    ax_diag_print(&d, stderr);
    if (!ok) {
        json_decref(e);
        ax_diag_free(&d);
        return;
    }
    size_t n = (size_t)(BA * S);
    int32_t *ids = malloc(n * 4), *tgt = malloc(n * 4), *pos = malloc(n * 4), *seg = malloc(n * 4);
    int64_t ntok = 0;
    for (int r = 0; r < BA; r++) ntok += row_inputs(A, r, S, ids + r * S, tgt + r * S, pos + r * S, seg + r * S);
    CHECK_EQ(ntok, json_integer_value(json_object_get(A, "n_tokens")));

    /* forward + backward on batch A */
    zero_grads(&s);
    CHECK(rt_session_micro_step(&s, ids, tgt, pos, seg, (float)(1.0 / (double)ntok), &d) == 0);
    double loss = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)ntok;
    double ref = json_number_value(json_object_get(A, "loss"));
    CHECK_MSG(fabs(loss - ref) <= 1e-4 * fabs(ref), "%s: loss %.8f, HF %.8f (rel %.2g)", fx, loss, ref, fabs(loss - ref) / ref);
    printf("%-24s loss %.8f  HF %.8f  rel err %.2e\n", fx, loss, ref, fabs(loss - ref) / ref);
    check_grads(&s, json_object_get(A, "grad_norms"), json_object_get(A, "grads"), fx, "batch A");

    /* LongRoPE's batch of shorter rows, padded to A's length in A's plan: its max position stays within
     * original_max, so HF takes the short factors where A took the long ones (the plan picks per micro-batch) */
    json_t *C = json_object_get(json_object_get(e, "batches"), "C");
    if (C) {
        const int64_t BC = json_integer_value(json_array_get(json_object_get(C, "shape"), 0));
        const int64_t SC = json_integer_value(json_array_get(json_object_get(C, "shape"), 1));
        CHECK_MSG(BC == BA && SC > 1 && SC < S, "%s: batch C shape %lld x %lld", fx, (long long)BC, (long long)SC);
        int64_t nc = 0;
        for (int r = 0; BC == BA && SC > 1 && SC < S && r < BC; r++) {
            nc += row_inputs(C, r, SC, ids + r * S, tgt + r * S, pos + r * S, seg + r * S);
            for (int64_t t = SC; t < S; t++) /* padding: its own sequence each, position 0, no target */
                ids[r * S + t] = 0, tgt[r * S + t] = -100, pos[r * S + t] = 0, seg[r * S + t] = (int32_t)(t - SC + 1);
        }
        CHECK_EQ(nc, json_integer_value(json_object_get(C, "n_tokens")));
        zero_grads(&s);
        CHECK(rt_session_micro_step(&s, ids, tgt, pos, seg, (float)(1.0 / (double)nc), &d) == 0);
        double lc = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)nc;
        double rc = json_number_value(json_object_get(C, "loss"));
        CHECK_MSG(fabs(lc - rc) <= 1e-4 * fabs(rc), "%s: batch C loss %.8f, HF %.8f", fx, lc, rc);
        printf("%-24s loss %.8f  HF %.8f  (batch C, short rows)\n", fx, lc, rc);
        check_grads(&s, json_object_get(C, "grad_norms"), json_object_get(C, "grads"), fx, "batch C");
        ntok = 0; /* batch A again, for the step below */
        for (int r = 0; r < BA; r++) ntok += row_inputs(A, r, S, ids + r * S, tgt + r * S, pos + r * S, seg + r * S);
        zero_grads(&s);
        CHECK(rt_session_micro_step(&s, ids, tgt, pos, seg, (float)(1.0 / (double)ntok), &d) == 0);
    }

    /* one AdamW step, HF Trainer grouping (no decay on norms/biases) */
    json_t *ad = json_object_get(json_object_get(json_object_get(e, "adamw_step"), "results"), "hf_trainer");
    size_t ng = (size_t)(s.m->nglobals > 0 ? s.m->nglobals : 1);
    float **before = calloc(ng, sizeof *before);
    for (int g = 0; g < s.m->nglobals; g++)
        if (s.m->globals[g].role == IR_ROLE_PARAM) {
            before[g] = malloc((size_t)s.st.globals[g].numel * 4);
            memcpy(before[g], s.st.globals[g].data, (size_t)s.st.globals[g].numel * 4);
        }
    CHECK(rt_session_opt_step(&s, 1e-3f, 1, &d) == 0);
    const char *pname;
    json_t *v;
    json_object_foreach(json_object_get(ad, "update_norms"), pname, v) {
        int g = ir_global_find(s.m, pname);
        CHECK_MSG(g >= 0 && before[g], "%s: no param %s", fx, pname);
        if (g < 0 || !before[g]) continue;
        double ss = 0;
        for (int64_t i = 0; i < s.st.globals[g].numel; i++) {
            double dd = (double)rt_f(&s.st.globals[g])[i] - before[g][i];
            ss += dd * dd;
        }
        double r = json_number_value(v);
        CHECK_MSG(fabs(sqrt(ss) - r) <= 2e-3 * r + 1e-9, "%s: AdamW update norm of %s %.8g, HF %.8g", fx, pname, sqrt(ss), r);
    }
    zero_grads(&s);
    CHECK(rt_session_micro_step(&s, ids, tgt, pos, seg, (float)(1.0 / (double)ntok), &d) == 0);
    double after = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)ntok;
    double ref_after = json_number_value(json_object_get(ad, "loss_after"));
    CHECK_MSG(fabs(after - ref_after) <= 1e-4 * ref_after, "%s: loss after one AdamW step %.8f, HF %.8f", fx, after, ref_after);
    for (int g = 0; g < s.m->nglobals; g++) free(before[g]);
    free(before);
    rt_session_close(&s);

    /* token-weighted accumulation over A row 0, A row 1, B: one-row plan */
    ok = open_session(&s, dir, 1, S, &d) == 0;
    CHECK(ok);
    if (ok) {
        json_t *tw = json_object_get(json_object_get(e, "accumulation"), "token_weighted");
        int64_t total = json_integer_value(json_object_get(tw, "num_items_in_batch"));
        zero_grads(&s);
        json_t *rows[3][2] = {{A, json_integer(0)}, {A, json_integer(1)}, {Bb, json_integer(0)}};
        int64_t counted = 0;
        for (int k = 0; k < 3; k++) {
            counted += row_inputs(rows[k][0], (int)json_integer_value(rows[k][1]), S, ids, tgt, pos, seg);
            CHECK(rt_session_micro_step(&s, ids, tgt, pos, seg, (float)(1.0 / (double)total), &d) == 0);
            json_decref(rows[k][1]);
        }
        CHECK_EQ(counted, total);
        double l = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)total;
        double lr = json_number_value(json_object_get(tw, "loss"));
        CHECK_MSG(fabs(l - lr) <= 1e-4 * lr, "%s: accumulated loss %.8f, HF %.8f", fx, l, lr);
        check_grads(&s, json_object_get(tw, "grad_norms"), json_object_get(tw, "grads"), fx, "accumulated");
        rt_session_close(&s);
    }
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    free(ids), free(tgt), free(pos), free(seg);
    json_decref(e);
}

/* PEFT's LoRA on an MoE model (tests/reference/peft/<name>: made by make_peft_moe_fixtures.py): the adapter PEFT
 * saved (the router's and experts' weights adapted as target_parameters, gate_up_proj fused at rank 2r) loaded by
 * lora_model_dir into axo's plan for the same targets; batch A's loss and every adapter's gradient = PEFT's; then
 * axoc merge-lora's model (the experts merged per expert into the checkpoint's tensors) gives PEFT's loss with no
 * adapter. */
static void run_peft_fixture(const char *dir, const char *fx) {
    char path[4096], base[4096];
    CHECK(ax_path_join(path, sizeof path, dir, "expected.json") == 0);
    json_error_t je;
    json_t *e = json_load_file(path, 0, &je);
    CHECK_MSG(e != NULL, "%s: %s", path, je.text);
    if (!e) return;
    snprintf(base, sizeof base, "%s/tests/reference/fixtures/%s", AXO_SOURCE_DIR, json_string_value(json_object_get(e, "base")));
    json_t *lj = json_object_get(e, "lora"), *tj = json_object_get(lj, "target_modules"), *A = json_object_get(e, "batch");
    const char *targets[16];
    int nt = 0;
    for (size_t i = 0; i < json_array_size(tj) && nt < 16; i++) targets[nt++] = json_string_value(json_array_get(tj, i));
    json_t *pj = json_object_get(lj, "target_parameters"); /* gpt-oss: the weights named directly */
    const char *params[16];
    int np = 0;
    for (size_t i = 0; i < json_array_size(pj) && np < 16; i++) params[np++] = json_string_value(json_array_get(pj, i));
    pass_lora_cfg lora = {.adapter = PASS_ADAPTER_LORA, .r = json_integer_value(json_object_get(lj, "r")),
                          .alpha = json_number_value(json_object_get(lj, "lora_alpha")), .targets = targets,
                          .ntargets = nt, .target_params = params, .ntarget_params = np, .model_dir = dir};
    const int64_t BA = json_integer_value(json_array_get(json_object_get(A, "shape"), 0));
    const int64_t S = json_integer_value(json_array_get(json_object_get(A, "shape"), 1));
    ax_diag d;
    ax_diag_init(&d);
    rt_session s;
    int ok = BA > 0 && BA < 64 && S > 1 && S < 4096 && open_session_lora(&s, base, BA, S, &lora, &d) == 0;
    CHECK_MSG(ok, "%s: cannot build a session", fx);
    ax_diag_print(&d, stderr);
    if (!ok) {
        ax_diag_free(&d);
        json_decref(e);
        return;
    }
    rows_in in;
    const int64_t ntok = rows_make(&in, A, BA, S);
    CHECK_EQ(ntok, json_integer_value(json_object_get(A, "n_tokens")));
    zero_grads(&s);
    CHECK(rt_session_micro_step(&s, in.ids, in.tgt, in.pos, in.seg, (float)(1.0 / (double)ntok), &d) == 0);
    const double loss = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)ntok;
    const double ref = json_number_value(json_object_get(A, "loss"));
    CHECK_MSG(fabs(loss - ref) <= 1e-4 * fabs(ref), "%s: loss %.8f, PEFT %.8f", fx, loss, ref);
    printf("%-24s loss %.8f  PEFT %.8f  rel err %.2e\n", fx, loss, ref, fabs(loss - ref) / ref);
    int nadapters = 0;
    for (int g = 0; g < s.m->nglobals; g++)
        nadapters += s.m->globals[g].role == IR_ROLE_PARAM && ir_attr_int(s.m->globals[g].attrs, s.m->globals[g].nattrs, "adapter", 0);
    CHECK_MSG((size_t)nadapters == json_object_size(json_object_get(A, "grad_norms")), "%s: %d adapters, PEFT %zu", fx,
              nadapters, json_object_size(json_object_get(A, "grad_norms")));
    check_grads(&s, json_object_get(A, "grad_norms"), json_object_get(A, "grads"), fx, "batch A");
    rt_session_close(&s);

    /* merged as PEFT's merge_and_unload: the same loss with no adapter */
    char out[4096];
    snprintf(out, sizeof out, "%s/axo-peft-merge-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ok = mkdtemp(out) != NULL;
    CHECK(ok);
    char md[4200];
    snprintf(md, sizeof md, "%s/merged", out);
    int merged = 0;
    ok = ok && rt_merge_lora(dir, base, md, 0, &merged, &d) == 0;
    CHECK_MSG(ok, "%s: merge-lora failed", fx);
    ax_diag_print(&d, stderr);
    if (ok && open_session(&s, md, BA, S, &d) == 0) {
        zero_grads(&s);
        CHECK(rt_session_micro_step(&s, in.ids, in.tgt, in.pos, in.seg, (float)(1.0 / (double)ntok), &d) == 0);
        const double lm = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)ntok;
        const double rm = json_number_value(json_object_get(A, "merged_loss"));
        CHECK_MSG(fabs(lm - rm) <= 1e-4 * fabs(rm), "%s: merged model's loss %.8f, PEFT's merge_and_unload %.8f", fx, lm, rm);
        printf("%-24s merged loss %.8f  PEFT %.8f\n", fx, lm, rm);
        rt_session_close(&s);
    } else {
        CHECK_MSG(0, "%s: the merged model does not open", fx);
    }
    ax_diag_print(&d, stderr);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    CHECK(system(cmd) == 0);
    rows_free(&in);
    ax_diag_free(&d);
    json_decref(e);
}

/* The routers' load-balancing loss (tests/reference/moe_aux/<name>.json, make_moe_aux_fixtures.py): batch A with
 * Axolotl's packed attention_mask as the tokens' weights (input aux_mask); loss = CE + coef x aux and every
 * parameter's gradient of it = transformers' */
static void run_aux_fixture(const char *path, const char *fx) {
    json_error_t je;
    json_t *e = json_load_file(path, 0, &je);
    CHECK_MSG(e != NULL, "%s: %s", path, je.text);
    if (!e) return;
    char base[4096];
    snprintf(base, sizeof base, "%s/tests/reference/fixtures/%s", AXO_SOURCE_DIR, json_string_value(json_object_get(e, "base")));
    json_t *A = json_object_get(e, "batch"), *W = json_object_get(e, "weights");
    const int64_t BA = json_integer_value(json_array_get(json_object_get(A, "shape"), 0));
    const int64_t S = json_integer_value(json_array_get(json_object_get(A, "shape"), 1));
    const double coef = json_number_value(json_object_get(e, "router_aux_loss_coef"));
    ax_diag d;
    ax_diag_init(&d);
    rt_session s;
    g_aux_coef = coef;
    int ok = BA > 0 && BA < 64 && S > 1 && S < 4096 && open_session(&s, base, BA, S, &d) == 0;
    g_aux_coef = -1;
    CHECK_MSG(ok, "%s: cannot build a session", fx);
    ax_diag_print(&d, stderr);
    if (!ok) {
        ax_diag_free(&d);
        json_decref(e);
        return;
    }
    rows_in in;
    const int64_t ntok = rows_make(&in, A, BA, S);
    float *mask = malloc(sizeof(float) * (size_t)(BA * S));
    for (int r = 0; r < BA; r++)
        for (int64_t t = 0; t < S; t++) mask[r * S + t] = (float)json_integer_value(json_array_get(json_array_get(W, (size_t)r), (size_t)t));
    CHECK(s.aux);
    s.aux_mask_rows = mask;
    rt_f(&s.in_aux_scale)[0] = (float)(coef * (double)ntok); /* coef / loss_scale: aux's adjoint is coef */
    zero_grads(&s);
    CHECK(rt_session_micro_step(&s, in.ids, in.tgt, in.pos, in.seg, (float)(1.0 / (double)ntok), &d) == 0);
    const double ce = rt_f(rt_session_global(&s, "stats/loss_sum"))[0] / (double)ntok;
    const double aux = rt_f(rt_session_global(&s, "stats/aux_sum"))[0];
    const double rce = json_number_value(json_object_get(A, "ce_loss")), raux = json_number_value(json_object_get(A, "aux_loss"));
    CHECK_MSG(fabs(ce - rce) <= 1e-4 * rce, "%s: CE %.8f, HF %.8f", fx, ce, rce);
    CHECK_MSG(fabs(aux - raux) <= 1e-5 * raux, "%s: aux %.8f, HF %.8f", fx, aux, raux);
    printf("%-24s ce %.8f aux %.8f  HF %.8f %.8f\n", fx, ce, aux, rce, raux);
    check_grads(&s, json_object_get(A, "grad_norms"), json_object_get(A, "grads"), fx, "CE + coef x aux");
    /* an eval batch that takes several calls (runtime/train.c run_eval): the routers' stats of each call
     * (@stats/lb_stats), here one row at a time (the other's weights 0), summed, give the whole batch's aux */
    rt_buf *lbst = rt_session_global(&s, "stats/lb_stats");
    CHECK(lbst != NULL);
    if (lbst) {
        double *sum = calloc((size_t)lbst->numel, sizeof(double));
        float *one = malloc(sizeof(float) * (size_t)(BA * S));
        if (!sum || !one) abort();
        for (int r = 0; r < BA; r++) {
            for (int64_t i = 0; i < BA * S; i++) one[i] = i / S == r ? mask[i] : 0.0f;
            s.aux_mask_rows = one;
            rt_f(&s.in_aux_scale)[0] = 0;
            CHECK(rt_session_micro_step(&s, in.ids, in.tgt, in.pos, in.seg, 0.0f, &d) == 0);
            for (int64_t i = 0; i < lbst->numel; i++) sum[i] += (double)rt_f(lbst)[i];
        }
        const double aux2 = ck_moe_lb_loss(sum, (lbst->numel - 1) / 2);
        CHECK_MSG(fabs(aux2 - raux) <= 1e-5 * raux, "%s: aux from per-row stats %.8f, HF %.8f", fx, aux2, raux);
        free(sum), free(one);
    }
    s.aux_mask_rows = NULL;
    rt_session_close(&s);
    rows_free(&in), free(mask);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    json_decref(e);
}

int main(void) {
    const char *root = AXO_SOURCE_DIR "/tests/reference/fixtures";
    DIR *dir = opendir(root);
    CHECK_MSG(dir != NULL, "%s missing", root);
    if (!dir) return check_done();
    char *names[128];
    int n = 0;
    struct dirent *de;
    int more = 0;
    while ((de = readdir(dir)))
        if (de->d_name[0] != '.') {
            if (n < 128) names[n++] = strdup(de->d_name);
            else more = 1;
        }
    closedir(dir);
    CHECK_MSG(!more, "more than 128 fixture dirs in %s: raise the bound, or some go unchecked", root);
    /* sorted: a stable order of output */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    int families = 0;
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        run_fixture(p, names[i]);
        families += strstr(names[i], "llama") || strstr(names[i], "qwen2") || strstr(names[i], "qwen3") || strstr(names[i], "mistral");
        free(names[i]);
    }
    CHECK_MSG(families >= 4, "expected fixtures for all four families, found %d", families);
    const char *auxs[] = {"tiny-qwen3moe-aux", "tiny-mixtral-aux"};
    for (size_t i = 0; i < sizeof auxs / sizeof *auxs; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/tests/reference/moe_aux/%s.json", AXO_SOURCE_DIR, auxs[i]);
        run_aux_fixture(p, auxs[i]);
    }
    const char *peft[] = {"tiny-qwen3moe-experts", "tiny-mixtral-experts", "tiny-gptoss-experts", "tiny-qwen2moe-experts"};
    for (size_t i = 0; i < sizeof peft / sizeof *peft; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/tests/reference/peft/%s", AXO_SOURCE_DIR, peft[i]);
        run_peft_fixture(p, peft[i]);
    }
    return check_done();
}
