/* test_train.c — lowering + autodiff + optimizer + CPU executor, end to end
 * on hand-built tiny models (no config files):
 *  - whole-model gradients vs central finite differences (directional)
 *  - k micro-batches accumulated == one batch k times larger
 *  - gradient checkpointing on == off (bit-identical gradients)
 *  - the fused linear cross entropy (loss and gradient in one chunked
 *    pass) == matmul + cross_entropy, and it lowers the activation peak
 *  - a few AdamW steps on a fixed batch lower the loss
 *  - NEFTune: no node at alpha 0; the gradient through the noise is the
 *    gradient of an add of the same noise; eval_step noise-free
 *  - the IR of the whole pipeline prints, parses back identically, verifies */
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/train.h"
#include "runtime/data.h"
#include "runtime/cpu_kernels.h"
#include "ir/quant.h"
#include "tests/check.h"
#include "tests/unit/train_fixture.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The directional derivative of f along r in {-1,+1}^n (r from an LCG of seed) at param p, by central
 * differences (f(p + e r) - f(p - e r)) / 2e; *dot gets <g, r> and *gabs the sum of |g| (p restored after). */
static double directional_fd(rt_buf *p, const float *g, uint32_t seed, double e, double (*f)(void *), void *ctx,
                             double *dot, double *gabs) {
    float *save = malloc(sizeof(float) * (size_t)p->numel);
    memcpy(save, p->data, sizeof(float) * (size_t)p->numel);
    double side[2];
    *dot = *gabs = 0;
    for (int k = 0; k < 2; k++) {
        uint32_t sd = seed;
        for (int64_t i = 0; i < p->numel; i++) {
            sd = sd * 1664525u + 1013904223u;
            float r = (sd >> 31) ? 1.0f : -1.0f;
            if (!k) *dot += (double)g[i] * r, *gabs += fabs((double)g[i]);
            rt_f(p)[i] = k ? save[i] - (float)e * r : save[i] + (float)e * r;
        }
        side[k] = f(ctx);
    }
    memcpy(p->data, save, sizeof(float) * (size_t)p->numel);
    free(save);
    return (side[0] - side[1]) / (2 * e);
}

typedef struct {
    rt_session *s;
    const batch *b;
    ax_diag *d;
    const float *scale; /* dpo_objective's pair scales (NULL: loss_of) */
} fd_ctx;
static double fd_loss(void *p) {
    fd_ctx *c = p;
    return loss_of(c->s, c->b, c->d);
}

static void fd_check(fe_arch arch) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, arch);
    make_cfg(&c, 2, 16, 1, 0);
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 11);
    zero_grads(&s);
    double l0 = loss_of(&s, &b, &d);
    CHECK(l0 > 3.0 && l0 < 5.0); /* ~ ln(64) = 4.16 at init */
    /* snapshot the gradients: every later forward also runs the backward */
    float *gsnap[IR_MAX_MESH * 64] = {0};
    for (int g = 0; g < s.m->nglobals && g < (int)AX_ARRAY_LEN(gsnap); g++)
        if (s.m->globals[g].role == IR_ROLE_GRAD) {
            gsnap[g] = malloc(sizeof(float) * (size_t)s.st.globals[g].numel);
            memcpy(gsnap[g], s.st.globals[g].data, sizeof(float) * (size_t)s.st.globals[g].numel);
        }
    const char *names[] = {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                           "model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight",
                           "model.layers.1.input_layernorm.weight", "model.norm.weight",
                           arch == FE_ARCH_QWEN3 ? "model.layers.0.self_attn.q_norm.weight" : "model.layers.0.self_attn.v_proj.weight",
                           arch == FE_ARCH_QWEN2 ? "model.layers.1.self_attn.k_proj.bias" : "model.layers.0.mlp.gate_proj.weight"};
    for (size_t k = 0; k < AX_ARRAY_LEN(names); k++) {
        rt_buf *p = rt_session_global(&s, names[k]);
        char gname[256];
        snprintf(gname, sizeof gname, "grad/%s", names[k]);
        int gi = ir_global_find(s.m, gname);
        CHECK_MSG(p && gi >= 0 && gi < (int)AX_ARRAY_LEN(gsnap) && gsnap[gi], "%s", names[k]);
        if (!p || gi < 0 || gi >= (int)AX_ARRAY_LEN(gsnap) || !gsnap[gi]) continue;
        /* directional derivative along r in {-1,+1}^n: <g, r> vs (L(p + e r) - L(p - e r)) / 2e */
        fd_ctx fc = {&s, &b, &d, NULL};
        double dot, gabs, fd = directional_fd(p, gsnap[gi], 99, 1e-3, fd_loss, &fc, &dot, &gabs);
        CHECK_MSG(fabs(fd - dot) <= 0.03 * fabs(dot) + 1e-4, "arch %d %s: autodiff %.6g vs finite difference %.6g", (int)arch,
                  names[k], dot, fd);
    }
    for (size_t g = 0; g < AX_ARRAY_LEN(gsnap); g++) free(gsnap[g]);
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
}

static double max_rel_grad_diff(rt_session *a, rt_session *b) { return rel_diff_role(a, b, IR_ROLE_GRAD, 0); }

static void accumulation_equivalence(void) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c1, c2;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    make_cfg(&c1, 4, 16, 1, 0); /* one batch of 4 rows */
    make_cfg(&c2, 2, 16, 2, 0); /* two micro-batches of 2 rows */
    rt_session big, small;
    CHECK(build(&big, &c1, &m, &d) == 0);
    CHECK(build(&small, &c2, &m, &d) == 0);
    copy_weights(&small, &big);
    batch b;
    make_batch(&b, 4, 16, m.vocab_size, 5);
    zero_grads(&big);
    zero_grads(&small);
    float scale = (float)(1.0 / (double)b.ntgt);
    CHECK(rt_session_micro_step(&big, b.ids, b.tgt, b.pos, b.seg, scale, &d) == 0);
    for (int k = 0; k < 2; k++) {
        size_t off = (size_t)k * 2 * 16;
        CHECK(rt_session_micro_step(&small, b.ids + off, b.tgt + off, b.pos + off, b.seg + off, scale, &d) == 0);
    }
    double rel = max_rel_grad_diff(&big, &small);
    CHECK_MSG(rel < 1e-5, "accumulated gradients differ from the big batch's: %.3g", rel);
    double lb = rt_f(rt_session_global(&big, "stats/loss_sum"))[0], ls = rt_f(rt_session_global(&small, "stats/loss_sum"))[0];
    CHECK_NEAR(ls, lb, 1e-6, 0);
    /* one optimizer step each: same weights after */
    CHECK(rt_session_opt_step(&big, 1e-3f, 1, &d) == 0);
    CHECK(rt_session_opt_step(&small, 1e-3f, 1, &d) == 0);
    rt_buf *wb = rt_session_global(&big, "model.layers.0.self_attn.q_proj.weight");
    rt_buf *ws = rt_session_global(&small, "model.layers.0.self_attn.q_proj.weight");
    double md = 0;
    for (int64_t i = 0; i < wb->numel; i++) md = fmax(md, fabs((double)rt_f(wb)[i] - rt_f(ws)[i]));
    CHECK_MSG(md < 1e-6, "weights differ by %.3g after one step", md);
    free_batch(&b);
    rt_session_close(&big);
    rt_session_close(&small);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
}

static void checkpointing_equivalence(fe_arch arch) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c1, c2;
    fe_model m;
    make_model(&m, arch);
    make_cfg(&c1, 2, 16, 1, 0);
    make_cfg(&c2, 2, 16, 1, 1);
    rt_session a, b;
    CHECK(build(&a, &c1, &m, &d) == 0);
    int64_t peak_keep = g_last_peak;
    CHECK(build(&b, &c2, &m, &d) == 0);
    /* the point of checkpointing: a lower activation peak */
    CHECK_MSG(g_last_peak < peak_keep, "checkpointing peak %lld >= %lld", (long long)g_last_peak, (long long)peak_keep);
    CHECK(b.micro.p->nnodes > a.micro.p->nnodes); /* the recomputation is really there */
    batch bt;
    make_batch(&bt, 2, 16, m.vocab_size, 3);
    zero_grads(&a);
    zero_grads(&b);
    loss_of(&a, &bt, &d);
    loss_of(&b, &bt, &d);
    CHECK_MSG(max_rel_grad_diff(&a, &b) == 0.0, "checkpointed gradients differ: %.3g", max_rel_grad_diff(&a, &b));
    free_batch(&bt);
    rt_session_close(&a);
    rt_session_close(&b);
    ax_diag_free(&d);
}

/* bf16: 0 f32, 1 bf16 with f32 master weights, 2 pure bf16 (bfloat16: true) */
static void loss_falls(int bf16) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    make_cfg(&c, 2, 16, 1, 0);
    c.bf16 = bf16 != 0;
    c.bf16_pure = bf16 == 2;
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 17);
    double first = 0, last = 0;
    for (int step = 0; step < 20; step++) {
        last = loss_of(&s, &b, &d);
        if (!step) first = last;
        CHECK(rt_session_opt_step(&s, 1e-2f, step + 1, &d) == 0);
    }
    CHECK_MSG(last < 0.5 * first, "bf16=%d: loss %.4f -> %.4f after 20 steps on one batch", bf16, first, last);
    if (bf16 == 2) { /* no master; weights and both moments hold bf16 values, and they moved */
        const char *names[] = {"model.layers.0.mlp.up_proj.weight", "adam_m/model.layers.0.mlp.up_proj.weight",
                               "adam_v/model.layers.0.mlp.up_proj.weight", "model.norm.weight"};
        CHECK(rt_session_global(&s, "master/model.layers.0.mlp.up_proj.weight") == NULL);
        for (size_t k = 0; k < AX_ARRAY_LEN(names); k++) {
            rt_buf *w = rt_session_global(&s, names[k]);
            CHECK_MSG(w && w->type.dtype == IR_BF16, "pure bf16: %s is not a bf16 global", names[k]);
            int all_bf16 = 1, nonzero = 0;
            for (int64_t i = 0; w && i < w->numel; i++) {
                all_bf16 &= ax_round_bf16(rt_f(w)[i]) == rt_f(w)[i];
                nonzero += rt_f(w)[i] != 0;
            }
            CHECK_MSG(all_bf16 && nonzero > 0, "pure bf16: %s holds non-bf16 values or only zeros", names[k]);
        }
        for (int g = 0; g < s.m->nglobals; g++)
            CHECK_MSG(s.m->globals[g].role != IR_ROLE_OPT || s.m->globals[g].type.dtype == IR_BF16,
                      "pure bf16: optimizer state %s is not bf16", s.m->globals[g].name);
    }
    if (bf16 == 1) { /* working copy is bf16-representable, master is not */
        rt_buf *w = rt_session_global(&s, "model.layers.0.mlp.up_proj.weight");
        rt_buf *mw = rt_session_global(&s, "master/model.layers.0.mlp.up_proj.weight");
        CHECK(w && mw);
        int all_bf16 = 1, master_differs = 0;
        for (int64_t i = 0; i < w->numel; i++) {
            all_bf16 &= ax_round_bf16(rt_f(w)[i]) == rt_f(w)[i];
            master_differs |= rt_f(mw)[i] != rt_f(w)[i];
            all_bf16 &= ax_round_bf16(rt_f(mw)[i]) == rt_f(w)[i];
        }
        CHECK(all_bf16);
        CHECK(master_differs);
    }
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
}

/* With one rank every ZeRO stage must train exactly like the unsharded
 * plan: the rewrite only adds collectives over an axis of size 1. */
static void zero_stages_single_rank(int bf16) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    make_cfg(&c, 2, 16, 1, 0);
    c.bf16 = bf16 != 0;
    c.bf16_pure = bf16 == 2;
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 23);
    rt_session base;
    g_shard = (pass_shard_cfg){0};
    CHECK(build(&base, &c, &m, &d) == 0);
    for (int k = 0; k < 3; k++) {
        loss_of(&base, &b, &d);
        CHECK(rt_session_opt_step(&base, 1e-2f, k + 1, &d) == 0);
    }
    pass_shard_cfg cases[] = {{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 1, 0, 0}, {3, 0, 0, 0}, {3, 1, 1, 1}};
    for (size_t ci = 0; ci < AX_ARRAY_LEN(cases); ci++) {
        g_shard = cases[ci];
        rt_session s;
        CHECK(build(&s, &c, &m, &d) == 0);
        ax_diag_print(&d, stderr);
        int ncoll = 0;
        for (int i = 0; i < s.micro.p->nnodes; i++) ncoll += (ir_ops[s.micro.p->nodes[i].op].flags & IR_F_COLLECTIVE) != 0;
        for (int i = 0; i < s.opt.p->nnodes; i++) ncoll += (ir_ops[s.opt.p->nodes[i].op].flags & IR_F_COLLECTIVE) != 0;
        CHECK_MSG(ncoll > 0, "stage %d inserted no collectives", cases[ci].stage);
        for (int k = 0; k < 3; k++) {
            loss_of(&s, &b, &d);
            CHECK(rt_session_opt_step(&s, 1e-2f, k + 1, &d) == 0);
        }
        double worst = 0;
        for (int g = 0; g < base.m->nglobals; g++) {
            if (base.m->globals[g].role != IR_ROLE_PARAM) continue;
            rt_buf *x = &base.st.globals[g], *y = rt_session_global(&s, base.m->globals[g].name);
            for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs((double)rt_f(x)[i] - rt_f(y)[i]));
        }
        CHECK_MSG(worst == 0.0, "bf16=%d stage %d reshard %d: weights differ from the unsharded run by %.3g", bf16,
                  cases[ci].stage, cases[ci].reshard_after_forward, worst);
        rt_session_close(&s);
    }
    g_shard = (pass_shard_cfg){0};
    rt_session_close(&base);
    free_batch(&b);
    ax_diag_free(&d);
}

static int has_op(const rt_session *s, ir_op op) {
    for (int i = 0; i < s->micro.p->nnodes; i++)
        if (s->micro.p->nodes[i].op == op) return 1;
    return 0;
}

static double rel_param_diff(rt_session *a, rt_session *b, int global) { return rel_diff_role(a, b, IR_ROLE_PARAM, global); }

static void build_lce(rt_session *s, const fe_model *m, int flce, int bf16, ax_diag *d) {
    fe_config c;
    g_flce = flce;
    make_cfg(&c, 2, 16, 2, 0);
    c.bf16 = bf16;
    CHECK(build(s, &c, m, d) == 0);
    g_flce = 0;
}

/* Fused vs unfused lm head + loss on the same weights and batches. f32:
 * equal to rounding (the chunked dW sums). bf16: the two round at
 * different points, so both are held against an f32 run from the same
 * weights, and the fused one must be as close to it as the unfused one.
 * No [R,V] value exists in the fused plan and its activation peak is lower. */
static void fused_lce_equivalence(fe_arch arch, int bf16) {
    ax_diag d;
    ax_diag_init(&d);
    fe_model m;
    make_model(&m, arch);
    m.vocab_size = 256; /* logits dominate, as in real models */
    rt_session ref, fu, f32;
    build_lce(&ref, &m, 0, bf16, &d);
    int64_t peak_ref = g_last_peak;
    build_lce(&fu, &m, 1, bf16, &d);
    int64_t peak_fu = g_last_peak;
    build_lce(&f32, &m, 0, 0, &d);
    ax_diag_print(&d, stderr);
    CHECK(has_op(&fu, IR_OP_linear_cross_entropy) && !has_op(&fu, IR_OP_cross_entropy) && !has_op(&fu, IR_OP_cross_entropy_bwd));
    CHECK(has_op(&ref, IR_OP_cross_entropy) && !has_op(&ref, IR_OP_linear_cross_entropy));
    for (int v = 0; v < fu.micro.p->nvalues; v++) {
        const ir_type *t = &fu.micro.p->values[v].type;
        CHECK_MSG(!(t->rank >= 2 && t->dims[t->rank - 1] == m.vocab_size && t->dims[0] != m.vocab_size),
                  "value %%%d of the fused plan has a vocab-wide last dim", v);
    }
    CHECK_MSG(peak_fu < peak_ref, "fused activation peak %lld >= unfused %lld", (long long)peak_fu,
              (long long)peak_ref);
    copy_weights(&fu, &ref);
    copy_weights(&f32, &ref); /* the bf16-representable start */
    for (int step = 0; step < 3; step++) {
        rt_session *ss[3] = {&ref, &fu, &f32};
        double loss[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) zero_grads(ss[i]);
        for (int k = 0; k < 2; k++) { /* two micro-batches, one loss scale */
            batch b;
            make_batch(&b, 2, 16, m.vocab_size, (uint32_t)(31 + 2 * step + k));
            for (int i = 0; i < 3; i++) {
                rt_f(rt_session_global(ss[i], "stats/loss_sum"))[0] = 0;
                CHECK(rt_session_micro_step(ss[i], b.ids, b.tgt, b.pos, b.seg, 0.01f, &d) == 0);
                loss[i] += rt_f(rt_session_global(ss[i], "stats/loss_sum"))[0];
            }
            free_batch(&b);
        }
        if (!bf16) {
            CHECK_MSG(fabs(loss[1] - loss[0]) <= 1e-6 * fabs(loss[0]), "arch %d step %d: fused loss %.9g vs %.9g", (int)arch,
                      step, loss[1], loss[0]);
            double g = max_rel_grad_diff(&ref, &fu);
            CHECK_MSG(g < 1e-5, "arch %d step %d: gradients differ by %.3g (relative)", (int)arch, step, g);
        } else if (step == 0) { /* later steps start from different weights */
            double el_ref = fabs(loss[0] - loss[2]), el_fu = fabs(loss[1] - loss[2]);
            double eg_ref = max_rel_grad_diff(&f32, &ref), eg_fu = max_rel_grad_diff(&f32, &fu);
            CHECK_MSG(el_fu <= 1.5 * el_ref + 1e-3 * fabs(loss[2]), "arch %d bf16: loss error fused %.3g vs unfused %.3g",
                      (int)arch, el_fu, el_ref);
            CHECK_MSG(eg_fu <= 1.5 * eg_ref, "arch %d bf16: gradient error (vs f32) fused %.3g vs unfused %.3g", (int)arch,
                      eg_fu, eg_ref);
        }
        for (int i = 0; i < 3; i++) CHECK(rt_session_opt_step(ss[i], 1e-2f, step + 1, &d) == 0);
    }
    double w = rel_param_diff(&ref, &fu, 0);
    if (!bf16) CHECK_MSG(w < 1e-5, "arch %d: weights differ by %.3g after 3 steps", (int)arch, w);
    else {
        double ew_ref = rel_param_diff(&f32, &ref, 1), ew_fu = rel_param_diff(&f32, &fu, 1);
        if (getenv("AXO_TEST_VERBOSE")) fprintf(stderr, "bf16 arch %d: weight error vs f32: fused %.3g unfused %.3g\n", (int)arch, ew_fu, ew_ref);
        CHECK_MSG(ew_fu <= 1.5 * ew_ref, "arch %d bf16: weight error (vs f32) after 3 steps fused %.3g vs unfused %.3g",
                  (int)arch, ew_fu, ew_ref);
    }
    rt_session_close(&ref);
    rt_session_close(&fu);
    rt_session_close(&f32);
    ax_diag_free(&d);
}

/* Pure bf16 against bf16 with f32 master weights, on one batch seen over
 * and over at a small learning rate (1e-5: every AdamW step moves a weight
 * ~1e-5, below half a bf16 step of any weight above ~0.003): the mixed run keeps
 * those steps in its f32 master; the pure run must keep them on average
 * through stochastic rounding, so its loss falls like the mixed run's. The
 * same pure run with its updates rounded to nearest instead loses most of
 * them (what torch's bf16 AdamW does); the test checks that it falls
 * clearly less, so the check has teeth. Measured over 60 steps: loss drop
 * 0.0548 mixed, 0.0550 pure, 0.0098 rounded to nearest. */
static double pure_run(int mode, int steps, double *first) { /* mode 0 mixed, 1 pure SR, 2 pure rounded to nearest */
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    make_cfg(&c, 2, 16, 1, 0);
    c.bf16 = 1;
    c.bf16_pure = mode != 0;
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 29);
    double last = 0;
    for (int step = 0; step < steps; step++) {
        last = loss_of(&s, &b, &d);
        if (!step) *first = last;
        if (mode == 2) { /* an f32 copy of the bf16 state, one f32 AdamW step, round to nearest */
            for (int g = 0; g < s.m->nglobals; g++) {
                const ir_global *G = &s.m->globals[g];
                if (G->role != IR_ROLE_GRAD) continue;
                rt_buf *p = rt_session_global(&s, G->name + 5), *gr = &s.st.globals[g];
                char nm[512];
                snprintf(nm, sizeof nm, "adam_m/%s", G->name + 5);
                rt_buf *mm = rt_session_global(&s, nm);
                snprintf(nm, sizeof nm, "adam_v/%s", G->name + 5);
                rt_buf *vv = rt_session_global(&s, nm);
                double wd = ir_attr_int(s.m->globals[ir_global_find(s.m, G->name + 5)].attrs,
                                        s.m->globals[ir_global_find(s.m, G->name + 5)].nattrs, "decay", 1) ? 0.01 : 0;
                ck_adamw_step_f32(rt_f(p), rt_f(gr), rt_f(mm), rt_f(vv), p->numel, (double)1e-5f, 0.9, 0.999, 1e-8, wd, step + 1, 1.0);
                ck_round_bf16_inplace_f32(rt_f(p), p->numel);
                ck_round_bf16_inplace_f32(rt_f(mm), p->numel);
                ck_round_bf16_inplace_f32(rt_f(vv), p->numel);
                memset(gr->data, 0, (size_t)gr->numel * 4);
            }
        } else {
            CHECK(rt_session_opt_step(&s, 1e-5f, step + 1, &d) == 0);
        }
    }
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
    return last;
}

static void pure_bf16_tracks_master(void) {
    enum { STEPS_ = 60 };
    double f0, f1, f2;
    double mixed = pure_run(0, STEPS_, &f0), sr = pure_run(1, STEPS_, &f1), rn = pure_run(2, STEPS_, &f2);
    CHECK(f0 == f1 && f1 == f2); /* the same bf16 model before any step */
    double dm = f0 - mixed, ds = f0 - sr, dr = f0 - rn;
    if (getenv("AXO_TEST_VERBOSE"))
        fprintf(stderr, "loss drop over %d steps at lr 1e-5: f32 master %.5f, pure bf16 SR %.5f, pure bf16 RNE %.5f\n",
                STEPS_, dm, ds, dr);
    CHECK_MSG(dm > 0 && fabs(ds - dm) <= 0.1 * dm, "pure bf16 (stochastic rounding) lost %.5f, the f32-master run %.5f",
              ds, dm);
    CHECK_MSG(dr < 0.5 * dm, "round-to-nearest pure bf16 lost %.5f, about as much as the f32-master run's %.5f: the test "
                             "does not tell stochastic rounding apart",
              dr, dm);
}

/* 8-bit AdamW state (optimizer: adamw_bnb_8bit) on a model whose
 * matrices all qualify (rows of 264 and 272: a full and a short block): the state is u8 codes plus f32 block
 * maxima for the matrices and f32 for the norms, and 20 steps on one batch
 * follow f32 AdamW's losses closely. */
static double opt8_run(int opt8, double *losses, int steps, rt_session *keep) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    m.hidden_size = 264, m.intermediate_size = 272, m.head_dim = 66; /* rows of 256 + 8 (16): a full and a short block */
    make_cfg(&c, 2, 16, 1, 0);
    c.optimizer_8bit = opt8;
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 31);
    for (int step = 0; step < steps; step++) {
        losses[step] = loss_of(&s, &b, &d);
        CHECK(rt_session_opt_step(&s, 1e-3f, step + 1, &d) == 0);
    }
    free_batch(&b);
    if (keep) *keep = s;
    else rt_session_close(&s);
    ax_diag_free(&d);
    return losses[steps - 1];
}

static void adamw8_tracks_adamw(void) {
    enum { N = 20 };
    double l32[N], l8[N], worst = 0;
    rt_session s8;
    opt8_run(0, l32, N, NULL);
    opt8_run(1, l8, N, &s8);
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(l8[i] - l32[i]) / l32[i]);
    if (getenv("AXO_TEST_VERBOSE"))
        fprintf(stderr, "adamw8 vs adamw: loss %.4f -> %.4f (f32 state %.4f), worst step %.3g relative\n", l8[0], l8[N - 1],
                l32[N - 1], worst);
    CHECK_MSG(l32[N - 1] < 0.5 * l32[0], "f32 AdamW did not train: %.4f -> %.4f", l32[0], l32[N - 1]);
    CHECK_MSG(worst < 2e-2, "adamw8: losses differ from f32 AdamW's by up to %.3g relative", worst);
    const struct { const char *name; ir_dtype dt; } want[] = {
        {"adam_m/model.layers.0.mlp.down_proj.weight", IR_U8},       {"adam_v/model.embed_tokens.weight", IR_F32},
        {"adam_v/lm_head.weight", IR_U8},
        {"adam_m_absmax/model.layers.1.self_attn.k_proj.weight", IR_F32}, {"adam_m/model.norm.weight", IR_F32},
    };
    for (size_t k = 0; k < AX_ARRAY_LEN(want); k++) {
        rt_buf *g = rt_session_global(&s8, want[k].name);
        CHECK_MSG(g && g->type.dtype == want[k].dt, "adamw8: %s missing or of another dtype", want[k].name);
    }
    rt_buf *mx = rt_session_global(&s8, "adam_m_absmax/model.layers.1.self_attn.k_proj.weight");
    CHECK(mx && mx->type.rank == 2 && mx->type.dims[0] == 132 && mx->type.dims[1] == 2 && rt_f(mx)[0] > 0 && rt_f(mx)[1] > 0);
    rt_session_close(&s8);
}

/* Every schedule against HF transformers' and Axolotl's own lr_lambda (RexLR: stepped as HF Trainer steps it)
 * (tests/reference/make_lr_fixtures.py) at every step and two past the end. */
static void lr_fixtures(void) {
    json_error_t je;
    FILE *f = fopen(AXO_SOURCE_DIR "/tests/reference/lr_schedules.jsonl", "r");
    CHECK_MSG(f != NULL, "tests/reference/lr_schedules.jsonl: cannot open");
    if (!f) return;
    char line[65536];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, &je), *c = json_object_get(j, "case");
        CHECK_MSG(j && c, "lr_schedules.jsonl: %s", je.text);
        if (!j || !c) continue;
        const json_t *v;
#define NUM(k) ((v = json_object_get(c, k)) && json_is_number(v) ? json_number_value(v) : NAN)
        rt_lr_sched s = {.name = json_string_value(json_object_get(c, "name")),
                         .warmup = json_integer_value(json_object_get(c, "warmup")),
                         .total = json_integer_value(json_object_get(c, "total")),
                         .num_cycles = NUM("num_cycles"), .power = NUM("power"), .lr_end = NUM("lr_end"),
                         .timescale = NUM("timescale"), .min_lr_rate = NUM("min_lr_rate"),
                         .cosine_min_lr_ratio = NUM("cosine_min_lr_ratio"),
                         .cosine_constant_lr_ratio = NUM("cosine_constant_lr_ratio"),
                         .quadratic_warmup = (int)json_integer_value(json_object_get(c, "quadratic_warmup")),
                         .warmup_lr_rate = NUM("warmup_lr_rate"), .num_decay_steps = NUM("num_decay_steps"),
                         .num_stable_steps = NUM("num_stable_steps"), .min_lr_ratio = NUM("min_lr_ratio"),
                         .warmup_type = json_string_value(json_object_get(c, "warmup_type")),
                         .decay_type = json_string_value(json_object_get(c, "decay_type"))};
#undef NUM
        double base = json_number_value(json_object_get(j, "base_lr"));
        size_t t;
        json_array_foreach(json_object_get(j, "lr"), t, v) {
            double want = json_number_value(v), got = rt_lr_sched_at(&s, base, (int64_t)t);
            CHECK_MSG(fabs(got - want) <= 1e-12 * base, "%s (warmup %lld, total %lld) step %zu: lr %.17g, HF/Axolotl %.17g",
                      s.name, (long long)s.warmup, (long long)s.total, t, got, want);
        }
        ncases++;
        json_decref(j);
    }
    fclose(f);
    CHECK_MSG(ncases == 34, "%d schedules in lr_schedules.jsonl, expected 34", ncases);
}

/* rt_one_cycle_at = torch's OneCycleLR as Axolotl builds it (tests/reference/make_lr_fixtures.py, one_cycle.json:
 * stepped with a real AdamW as HF Trainer steps it): every step's lr and beta1, including the scheduler's step
 * after the last optimizer step; a refusal exactly where torch raises; and an AdamW trajectory under the cycle
 * (ck_adamw_step_f32 with the step's lr and beta1) = torch's single-tensor AdamW bit for bit. */
static void one_cycle_fixtures(void) {
    json_error_t je;
    json_t *fx = json_load_file(AXO_SOURCE_DIR "/tests/reference/one_cycle.json", 0, &je);
    CHECK_MSG(fx != NULL, "one_cycle.json: %s", je.text);
    if (!fx) return;
    size_t i, t;
    json_t *c, *v;
    int ncases = 0;
    json_array_foreach(json_object_get(fx, "cases"), i, c) {
        const json_t *kw = json_object_get(c, "kwargs");
#define KW(k, d) (json_is_number(json_object_get(kw, k)) ? json_number_value(json_object_get(kw, k)) : (d))
#define KB(k, d) (json_object_get(kw, k) ? json_is_true(json_object_get(kw, k)) : (d))
        const char *an = json_string_value(json_object_get(kw, "anneal_strategy"));
        rt_lr_sched s = {.name = "one_cycle", .warmup = json_integer_value(json_object_get(c, "warmup")),
                         .total = json_integer_value(json_object_get(c, "total")), .oc_pct_start = KW("pct_start", NAN),
                         .oc_div_factor = KW("div_factor", 25.0), .oc_final_div_factor = KW("final_div_factor", 1e4),
                         .oc_base_momentum = KW("base_momentum", 0.85), .oc_max_momentum = KW("max_momentum", 0.95),
                         .oc_anneal_linear = an && !strcmp(an, "linear"), .oc_three_phase = KB("three_phase", 0),
                         .oc_cycle_momentum = KB("cycle_momentum", 1)};
#undef KW
#undef KB
        const double base = json_number_value(json_object_get(c, "base_lr"));
        const json_t *lrs = json_object_get(c, "lr"), *b1s = json_object_get(c, "beta1");
        const int err_at = json_object_get(c, "error") ? (int)json_integer_value(json_object_get(c, "error_at")) : -1;
        const size_t n = json_array_size(lrs);
        CHECK(err_at >= 0 ? n == (size_t)err_at : n == (size_t)s.total + 1);
        for (t = 0; t <= n && t <= (size_t)s.total; t++) {
            double lr, b1;
            char why[256] = "";
            const int rc = rt_one_cycle_at(&s, base, (int64_t)t, &lr, &b1, why, sizeof why);
            if ((int)t == err_at) {
                CHECK_MSG(rc != 0 && *why, "one_cycle (warmup %lld, total %lld) step %zu: torch raises %s, axo gives lr %g",
                          (long long)s.warmup, (long long)s.total, t, json_string_value(json_object_get(c, "error")), lr);
                break;
            }
            if (t == n) break;
            const double wl = json_number_value(json_array_get(lrs, t)), wb = json_number_value(json_array_get(b1s, t));
            CHECK_MSG(rc == 0 && fabs(lr - wl) <= 1e-15 * fabs(wl) &&
                          (s.oc_cycle_momentum ? fabs(b1 - wb) <= 1e-15 * wb : isnan(b1) && wb == 0.9),
                      "one_cycle (warmup %lld, total %lld) step %zu: lr %.17g beta1 %.17g, torch %.17g %.17g (%s)",
                      (long long)s.warmup, (long long)s.total, t, lr, b1, wl, wb, why);
        }
        ncases++;
    }
    CHECK_MSG(ncases == 14, "%d one_cycle cases, expected 14", ncases);
    /* the beta1 input's three floats give back the double exactly: every beta1 of the cases, and 10^6 doubles of
     * every exponent from 2^-30 to 2^2 with random mantissas */
    size_t inexact = 0;
    json_array_foreach(json_object_get(fx, "cases"), i, c) json_array_foreach(json_object_get(c, "beta1"), t, v) {
        float f[3];
        axo_beta1_split(json_number_value(v), f);
        inexact += axo_beta1_join(f) != json_number_value(v);
    }
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 1000000; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        const double x = ldexp(1.0 + (double)(r >> 11) * 0x1p-53, (int)(r % 33) - 30);
        float f[3];
        axo_beta1_split(x, f);
        inexact += axo_beta1_join(f) != x;
    }
    CHECK_MSG(inexact == 0, "%zu doubles not given back by axo_beta1_split / axo_beta1_join", inexact);
    /* the AdamW trajectory: 64 values, step t's lr and beta1 from the schedule, torch's order of operations */
    const json_t *a = json_object_get(fx, "adamw");
    rt_lr_sched s = {.name = "one_cycle", .warmup = json_integer_value(json_object_get(a, "warmup")),
                     .total = json_integer_value(json_object_get(a, "total")), .oc_pct_start = NAN, .oc_div_factor = 25.0,
                     .oc_final_div_factor = 1e4, .oc_base_momentum = 0.85, .oc_max_momentum = 0.95,
                     .oc_cycle_momentum = 1};
    float p[64], g[64], m[64] = {0}, vv[64] = {0};
    json_array_foreach(json_object_get(a, "p0"), i, v) p[i] = (float)json_number_value(v);
    size_t bad = 0;
    for (t = 0; t < (size_t)s.total; t++) {
        double lr, b1;
        char why[256];
        CHECK(rt_one_cycle_at(&s, json_number_value(json_object_get(a, "base_lr")), (int64_t)t, &lr, &b1, why, sizeof why) == 0);
        json_array_foreach(json_array_get(json_object_get(a, "grads"), t), i, v) g[i] = (float)json_number_value(v);
        ck_adamw_step_f32(p, g, m, vv, 64, lr, b1, 0.999, 1e-8, 0.01, (int64_t)t + 1, 1.0);
        json_array_foreach(json_array_get(json_object_get(a, "params"), t), i, v) bad += p[i] != (float)json_number_value(v);
    }
    CHECK_MSG(bad == 0, "one_cycle AdamW trajectory: %zu of %lld values differ from torch's", bad, 64 * (long long)s.total);
    json_decref(fx);
}

/* rt_plateau_step = torch's ReduceLROnPlateau (plateau.json) and, greedy, transformers' GreedyLR (greedy.json;
 * tests/reference/make_lr_fixtures.py: stepped with each metric), each with its own defaults: modes, thresholds,
 * patience, cooldown, the min_lr floor and eps; GreedyLR's raises, max_lr, warmup, smoothing window and reset
 * after reset_start cuts at min_lr; the lr after every step bit for bit (a resumed run: tests/e2e/eval.sh). */
static void metric_schedule_fixtures(const char *file, int greedy, int want) {
    char path[512];
    snprintf(path, sizeof path, AXO_SOURCE_DIR "/tests/reference/%s", file);
    json_error_t je;
    json_t *fx = json_load_file(path, 0, &je);
    CHECK_MSG(fx != NULL, "%s: %s", file, je.text);
    size_t i, k;
    json_t *c, *v;
    int ncases = 0;
    json_array_foreach(fx, i, c) {
        const json_t *kw = json_object_get(c, "kwargs");
#define KW(name, dflt) (json_object_get(kw, name) ? json_number_value(json_object_get(kw, name)) : (dflt))
        const char *mode = json_string_value(json_object_get(kw, "mode")), *tm = json_string_value(json_object_get(kw, "threshold_mode"));
        rt_plateau_opts o = {.mode_max = mode && !strcmp(mode, "max"), .thr_abs = tm ? !strcmp(tm, "abs") : greedy,
                             .factor = KW("factor", greedy ? 0.95 : 0.1), .threshold = KW("threshold", greedy ? 1e-6 : 1e-4),
                             .min_lr = KW("min_lr", greedy ? 1e-3 : 0), .eps = KW("eps", 1e-8),
                             .patience = (int64_t)KW("patience", 10), .cooldown = (int64_t)KW("cooldown", 0),
                             .greedy = greedy, .smooth = json_is_true(json_object_get(kw, "smooth")),
                             .max_lr = KW("max_lr", 1.0), .warmup = (int64_t)KW("warmup", 0),
                             .window = (int64_t)KW("window_size", 50), .reset_start = (int64_t)KW("reset_start", 500)};
#undef KW
        rt_plateau p;
        rt_plateau_init(&p, &o, json_number_value(json_object_get(c, "base_lr")));
        const json_t *lrs = json_object_get(c, "lr");
        int ok = 1;
        json_array_foreach(json_object_get(c, "metrics"), k, v) {
            ok &= rt_plateau_step(&p, &o, json_number_value(v)) >= 0;
            ok &= p.lr == json_number_value(json_array_get(lrs, k));
        }
        CHECK_MSG(ok, "%s case %zu: another lr than the reference's", file, i);
        rt_plateau_free(&p);
        ncases++;
    }
    CHECK_EQ(ncases, want);
    json_decref(fx);
}

/* ---- NEFTune ---------------------------------------------------------------------------- */
/* NEFTune's mag = torch's f32 alpha / torch.sqrt(tensor(width * hidden)) (values from torch 2.13 whose sqrt agrees
 * on all its MKL paths, dims past 2^24 rounded as torch rounds them), and the width HF's collator gives a micro-batch: its longest row's tokens up to a
 * multiple (Axolotl's pad_to_multiple_of), empty rows left out. */
static void neftune_scale_checks(void) {
    const struct { double alpha; int64_t w, h; double want; } mg[] = {
        {5.0, 320, 64, 0x1.1e377ap-5}, {5.0, 2048, 2048, 0x1.4p-9}, {15.0, 8191, 4097, 0x1.5363fap-9}, {0.1, 7, 3, 0x1.658736p-6}};
    for (size_t i = 0; i < sizeof mg / sizeof mg[0]; i++)
        CHECK_MSG((double)rt_neftune_mag(mg[i].alpha, mg[i].w, mg[i].h) == mg[i].want, "mag(%g, %lld, %lld) = %a, torch %a",
                  mg[i].alpha, (long long)mg[i].w, (long long)mg[i].h, (double)rt_neftune_mag(mg[i].alpha, mg[i].w, mg[i].h),
                  mg[i].want);
    /* rows of 3 packed sequences (lengths 5 + 7 + 9 = 21), of one (40), of none (an empty row: 0) */
    rt_row_seq seqs[4] = {{0, 0, 5}, {1, 5, 7}, {2, 12, 9}, {3, 0, 40}};
    int64_t off[4] = {0, 3, 4, 4};
    rt_rows rows = {.nrows = 3, .seq_len = 64, .row_seq_off = off, .seqs = seqs, .nseqs = 4};
    const int64_t a[] = {0, 1}, b[] = {0, -1}, c[] = {2, -1}, e[] = {2};
    CHECK_EQ(rt_neftune_width(&rows, a, 2, 1, 0), 40);  /* pad_to_sequence_len: false: the longest row */
    CHECK_EQ(rt_neftune_width(&rows, a, 2, 64, 0), 64); /* unset without packing: a multiple of 64 */
    CHECK_EQ(rt_neftune_width(&rows, b, 2, 8, 0), 24);  /* an empty row (a short epoch's padding) left out */
    CHECK_EQ(rt_neftune_width(&rows, c, 2, 64, 0), 0);  /* nothing: the caller keeps the row length */
    CHECK_EQ(rt_neftune_width(&rows, e, 1, 1, 0), 0);
    CHECK_EQ(rt_neftune_width(&rows, a, 2, 128, 0), 128); /* pad_to_sequence_len with sequence_len 100: 128 */
    CHECK_EQ(rt_neftune_width(&rows, a, 2, 1, 1), 61);    /* batch_flattening: one row of 21 + 40 tokens */
    CHECK_EQ(rt_neftune_width(&rows, b, 2, 1, 1), 21);
}

static void grads_of(rt_session *s, float **out) {
    for (int g = 0; g < s->m->nglobals; g++) {
        out[g] = NULL;
        if (s->m->globals[g].role != IR_ROLE_GRAD) continue;
        out[g] = malloc(sizeof(float) * (size_t)s->st.globals[g].numel);
        memcpy(out[g], s->st.globals[g].data, sizeof(float) * (size_t)s->st.globals[g].numel);
    }
}

/* build(), with the neftune node of the lowered forward made add(x,
 * @neftune_noise): the plan of a model whose noise comes from outside, as
 * a tensor that depends on no parameter. *mag: the node's magnitude. */
static int build_outside_noise(rt_session *s, const fe_config *c, const fe_model *m, double *mag, ax_diag *d) {
    ir_module *mod = ir_module_create();
    int32_t loss;
    int found = 0;
    if (fe_lower(c, m, 1, mod, &loss, d)) goto fail;
    ir_program *p = ir_program_find(mod, "micro_step");
    for (int i = 0; p && i < p->nnodes; i++) {
        if (p->nodes[i].op != IR_OP_neftune) continue;
        *mag = ir_attr_float(p->nodes[i].attrs, p->nodes[i].nattrs, "mag", 0);
        int g = ir_global_add(mod, "neftune_noise", p->values[p->nodes[i].out[0]].type, IR_ROLE_TEMP, NULL, 0);
        ir_node *n = &p->nodes[i];
        n->op = IR_OP_add;
        n->in[1] = IR_GLOBAL_REF(g);
        n->nin = 2; /* not the micro step's mag */
        n->nattrs = 0;
        found++;
    }
    CHECK_EQ(found, 1);
    if (found != 1 || ir_verify(mod, d) != 0) goto fail;
    pass_ctx pc = {.m = mod, .loss = loss, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01}};
    if (pass_pipeline(&pc, d) || rt_session_from_module(mod, s, d)) goto fail;
    return rt_session_init_weights(s, NULL, d);
fail:
    ir_module_destroy(mod);
    return -1;
}

static char *plan_text_of(const ir_module *m) {
    ax_buf b = {0};
    ir_print(m, &b);
    return ax_buf_steal(&b);
}

static char *plan_text(const rt_session *s) {
    ax_buf t = {0};
    ir_print(s->m, &t);
    return ax_buf_steal(&t);
}

/* The text of program `name` of a printed module ("" when absent). */
static char *program_text(const char *mod, const char *name) {
    char head[64];
    snprintf(head, sizeof head, "program %s {", name);
    const char *b = strstr(mod, head), *e = b ? strstr(b, "\n}\n") : NULL;
    return e ? strndup(b, (size_t)(e - b)) : strdup("");
}

/* NEFTune (neftune_noise_alpha) on one rank, in f32:
 *  - alpha 0 lowers nothing: no neftune node, no neftune_keys input, no
 *    module attr; the plan of a config without the key;
 *  - the noise's keys: another optimizer step, row or token, another key;
 *  - the gradient passes the noise unchanged: with the noise on, the loss
 *    and every gradient (the embedding's included) are bit for bit those of
 *    the same model whose identical noise is added from outside as a plain
 *    add of a global (ck_neftune_f32 of zeros with the session's keys), and
 *    both differ from the noise-free model's;
 *  - a second micro step on the same batch draws other noise;
 *  - eval_step (val_set_size) has no neftune node and no keys, and its loss
 *    is the noise-free forward's, while micro_step's forward is noisy. */
static void neftune_checks(fe_arch arch) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, arch, 2, 16);
    const int64_t B = 2, S = 16, H = m.hidden_size;
    rt_session off, on, out;
    CHECK(build(&off, &c, &m, &d) == 0);
    c.neftune_noise_alpha = 0; /* explicitly 0: no noise, the same plan */
    rt_session zero;
    CHECK(build(&zero, &c, &m, &d) == 0);
    char *toff = plan_text(&off), *tzero = plan_text(&zero);
    CHECK_STREQ(toff, tzero);
    CHECK_MSG(!strstr(toff, "neftune"), "a plan without NEFTune mentions it");
    rt_session_close(&zero);
    c.neftune_noise_alpha = 5;
    CHECK(build(&on, &c, &m, &d) == 0);
    double mag = 0;
    CHECK(build_outside_noise(&out, &c, &m, &mag, &d) == 0);
    ax_diag_print(&d, stderr);
    char *ton = plan_text(&on);
    CHECK_CONTAINS(ton, "neftune(");
    CHECK_CONTAINS(ton, "input() {name=\"neftune_keys\", stream=0} : i32[2,16] input");
    CHECK_CONTAINS(ton, "attr train.neftune_noise_alpha = 5.0\n");
    CHECK_NEAR(mag, 5.0 / sqrt((double)(S * H)), 1e-15, 0); /* alpha / sqrt(L d), L = sequence_len */

    /* keys: a function of (seed, step, row in the global batch, token in the row) */
    uint32_t k0 = rt_neftune_key(7, 0, 0, 0);
    CHECK(k0 == rt_neftune_key(7, 0, 0, 0));
    CHECK(k0 != rt_neftune_key(8, 0, 0, 0) && k0 != rt_neftune_key(7, 1, 0, 0) && k0 != rt_neftune_key(7, 0, 1, 0) &&
          k0 != rt_neftune_key(7, 0, 0, 1));
    CHECK(rt_neftune_key(7, 1, 0, 0) != rt_neftune_key(7, 0, 1, 0) && rt_neftune_key(7, 0, 1, 0) != rt_neftune_key(7, 0, 0, 1));

    batch b;
    make_batch(&b, B, S, m.vocab_size, 3);
    copy_weights(&on, &off);
    copy_weights(&out, &off);
    zero_grads(&off), zero_grads(&on), zero_grads(&out);
    double l_off = loss_of(&off, &b, &d), l_on = loss_of(&on, &b, &d);
    /* the keys `on` used (step 0, rows 0..B-1, tokens 0..S-1), the noise they make, from outside */
    int keys_ok = 1;
    for (int64_t r = 0; r < B; r++)
        for (int64_t t = 0; t < S; t++) keys_ok &= (uint32_t)rt_i(&on.in_neftune_keys)[r * S + t] == rt_neftune_key(7, 0, r, t);
    CHECK_MSG(keys_ok, "the session's keys are not rt_neftune_key(seed, step 0, row, token)");
    float *zeros = calloc((size_t)(B * S * H), sizeof(float));
    rt_buf *noise = rt_session_global(&out, "neftune_noise");
    CHECK(noise && noise->numel == B * S * H);
    /* the session's mag: a micro-batch outside rt_train has the row's width, S, in torch's f32 arithmetic */
    CHECK(rt_f(&on.in_neftune_mag)[0] == rt_neftune_mag(5.0, S, H));
    if (noise) ck_neftune_f32(zeros, rt_f(noise), rt_i(&on.in_neftune_keys), B * S, H, 0, rt_neftune_mag(5.0, S, H));
    double l_out = loss_of(&out, &b, &d);
    CHECK_MSG(l_on == l_out, "loss with NEFTune %.9g, with the same noise added outside %.9g", l_on, l_out);
    CHECK_MSG(l_on != l_off, "NEFTune did not change the loss (%.9g)", l_on);
    float *g_on[256], *g_out[256], *g_off[256];
    CHECK(on.m->nglobals <= 256);
    grads_of(&on, g_on), grads_of(&out, g_out), grads_of(&off, g_off);
    int ngrads = 0;
    for (int g = 0; g < on.m->nglobals && g < 256; g++) {
        if (!g_on[g]) continue;
        const char *name = on.m->globals[g].name;
        int go = ir_global_find(out.m, name), gf = ir_global_find(off.m, name);
        CHECK_MSG(go >= 0 && gf >= 0, "%s", name);
        if (go < 0 || gf < 0) continue;
        size_t bytes = sizeof(float) * (size_t)on.st.globals[g].numel;
        CHECK_MSG(!memcmp(g_on[g], g_out[go], bytes), "%s: the gradient with NEFTune is not the one through an add of the same noise",
                  name);
        ngrads++;
        if (!strcmp(name, "grad/model.embed_tokens.weight"))
            CHECK_MSG(memcmp(g_on[g], g_off[gf], bytes) != 0, "%s: NEFTune did not change it", name);
    }
    CHECK(ngrads >= 10);
    for (int g = 0; g < 256; g++) {
        if (g < on.m->nglobals) free(g_on[g]);
        if (g < out.m->nglobals) free(g_out[g]);
        if (g < off.m->nglobals) free(g_off[g]);
    }
    double l_on2 = loss_of(&on, &b, &d); /* micro step 2 = optimizer step 1 (no accumulation): new keys */
    CHECK_MSG(l_on2 != l_on, "the second micro step drew the same noise (loss %.9g)", l_on2);
    CHECK((uint32_t)rt_i(&on.in_neftune_keys)[0] == rt_neftune_key(7, 1, 0, 0));
    free(zeros);
    free(toff), free(tzero), free(ton);
    rt_session_close(&off), rt_session_close(&on), rt_session_close(&out);

    /* eval_step: the forward in eval mode */
    c.val_set_size = 0.1;
    rt_session ev, ev0;
    CHECK(build(&ev, &c, &m, &d) == 0);
    c.neftune_noise_alpha = 0;
    CHECK(build(&ev0, &c, &m, &d) == 0);
    copy_weights(&ev, &ev0);
    char *t = plan_text(&ev), *tev = program_text(t, "eval_step"), *tms = program_text(t, "micro_step");
    CHECK(ev.has_eval && ev0.has_eval && *tev && strstr(tms, "neftune("));
    CHECK_MSG(!strstr(tev, "neftune"), "eval_step has a neftune node or its keys:\n%s", tev);
    rt_buf *ls = rt_session_global(&ev, "stats/loss_sum"), *ls0 = rt_session_global(&ev0, "stats/loss_sum");
    rt_f(ls)[0] = rt_f(ls0)[0] = 0;
    CHECK(rt_session_eval_step(&ev, b.ids, b.tgt, b.pos, b.seg, &d) == 0);
    CHECK(rt_session_eval_step(&ev0, b.ids, b.tgt, b.pos, b.seg, &d) == 0);
    double le = rt_f(ls)[0], le0 = rt_f(ls0)[0];
    double lf0 = loss_of(&ev0, &b, &d) * (double)b.ntgt, lf = loss_of(&ev, &b, &d) * (double)b.ntgt;
    CHECK_MSG(le == le0, "eval_step loss with NEFTune %.9g, without %.9g", le, le0);
    CHECK_MSG(fabs(le - lf0) <= 1e-6 * fabs(lf0), "eval_step loss %.9g vs the noise-free forward's %.9g", le, lf0);
    CHECK_MSG(fabs(le - lf) > 1e-6 * fabs(lf), "eval_step loss %.9g equals the noisy forward's %.9g", le, lf);
    free(t), free(tev), free(tms);
    rt_session_close(&ev), rt_session_close(&ev0);
    free_batch(&b);
    ax_diag_free(&d);
}

/* Axolotl 0.19's warmup for its total_num_steps (core/builders/base.py), in Python's arithmetic: int() of the
 * float product, min(.., 100) of the 3% default, a 1 made 2; warmup_steps as given. */
static void axolotl_warmup(void) {
    static const struct { int64_t ws; double wr; int64_t total, want; } w[] = {
        {-1, NAN, 1000, 30},  {-1, NAN, 10, 0},     {-1, NAN, 50, 2},      {-1, NAN, 10000, 100}, {-1, NAN, 3400, 100},
        {-1, NAN, 100, 3},    {-1, NAN, 0, 0},      {-1, 0.1, 15, 2},      {-1, 0.05, 10, 0},     {-1, 0.1, 1000, 100},
        {-1, 0.0, 1000, 0},   {-1, 0.5, 7, 3},      {0, NAN, 1000, 0},     {1, NAN, 1000, 2},     {7, NAN, 3, 7}};
    for (size_t i = 0; i < AX_ARRAY_LEN(w); i++) {
        ir_module *m = ir_module_create();
        if (w[i].ws >= 0) ir_module_set_attr(m, ir_ai("train.warmup_steps", w[i].ws));
        if (!isnan(w[i].wr)) ir_module_set_attr(m, ir_af("train.warmup_ratio", w[i].wr));
        int64_t got = rt_axolotl_warmup(m, w[i].total);
        CHECK_MSG(got == w[i].want, "warmup_steps %lld, warmup_ratio %g, %lld steps: %lld, Axolotl %lld", (long long)w[i].ws,
                  w[i].wr, (long long)w[i].total, (long long)got, (long long)w[i].want);
        ir_module_destroy(m);
    }
}

/* rl: dpo end to end on the CPU executor: the gradients micro_step leaves
 * (two fused passes around dpo_loss, then the whole backward) against
 * central finite differences of sum_p scale_p loss_p, the pair losses
 * eval_step computes (the same forward, no backward); full fine-tuning and
 * LoRA. The reference losses are the model's own at init, shifted so that no
 * pair sits at z = 0. */
static double dpo_objective(rt_session *s, const batch *b, const float *scale, ax_diag *d) {
    CHECK(rt_session_eval_step(s, b->ids, b->tgt, b->pos, b->seg, d) == 0);
    const rt_buf *pl = rt_session_global(s, "stats/dpo_pair_loss");
    double f = 0;
    for (int64_t p = 0; p < pl->numel; p++) f += (double)scale[p] * (double)rt_f(pl)[p];
    return f;
}

static double fd_dpo(void *p) {
    fd_ctx *c = p;
    return dpo_objective(c->s, c->b, c->scale, c->d);
}

/* mix: TRL's loss_type [robust, ipo, apo_down] weighted [0.5, 0.3, 0.2], label_smoothing 0.1, the rows' token
 * counts 12, 9, 15, 11 (ipo divides by them) */
static void dpo_fd_check(int lora, int mix) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    make_cfg(&c, 2, 16, 1, 0); /* 2 pairs: 4 rows */
    c.rl = FE_RL_DPO;
    c.rl_beta = 0.5;
    if (mix) c.dpo_loss_types = "robust,ipo,apo_down", c.dpo_loss_weights = "0.5,0.3,0.2", c.dpo_label_smoothing = 0.1;
    const float counts[4] = {12, 9, 15, 11};
    const char *targets[] = {"q_proj", "v_proj", "down_proj"};
    if (lora) g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 4, .alpha = 8, .targets = targets, .ntargets = 3};
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    g_lora = (pass_lora_cfg){0};
    CHECK_EQ(s.B, 4);
    CHECK(has_op(&s, IR_OP_dpo_loss));
    batch b;
    make_batch(&b, 4, 16, m.vocab_size, 23);
    if (lora) { /* lora_B starts at zero: move it, so the adapters change the reference's losses */
        for (int g = 0; g < s.m->nglobals; g++)
            if (strstr(s.m->globals[g].name, "lora_B")) {
                rt_buf *p = &s.st.globals[g];
                for (int64_t i = 0; i < p->numel; i++) rt_f(p)[i] = 0.05f * (float)((i * 7919 % 13) - 6) / 6.0f;
            }
    }
    /* the reference: eval_step's row losses at these weights, shifted */
    float ref[4] = {0, 0, 0, 0}, scale[2] = {0.5f, 0.25f}, zeros[2] = {0, 0};
    rt_session_set_dpo(&s, ref, zeros, mix ? counts : NULL);
    CHECK(rt_session_eval_step(&s, b.ids, b.tgt, b.pos, b.seg, &d) == 0);
    const rt_buf *rows = rt_session_global(&s, "stats/dpo_rows");
    CHECK(rows && rows->numel == 4);
    for (int r = 0; r < 4; r++) {
        CHECK(rt_f(rows)[r] > 1.0f); /* summed token losses, ~ ln(64) a target */
        ref[r] = rt_f(rows)[r] + (r == 0 ? 0.3f : r == 3 ? -0.2f : 0.1f);
    }
    rt_session_set_dpo(&s, ref, scale, mix ? counts : NULL);
    zero_grads(&s);
    CHECK(rt_session_micro_step(&s, b.ids, b.tgt, b.pos, b.seg, 0.0f, &d) == 0);
    /* micro_step's forward is eval_step's: the same row losses */
    float rows_train[4];
    memcpy(rows_train, rt_f(rows), sizeof rows_train);
    double f0 = dpo_objective(&s, &b, scale, &d);
    for (int r = 0; r < 4; r++) CHECK_NEAR(rt_f(rows)[r], rows_train[r], 1e-6, 0);
    CHECK(f0 > 0);
    float *gsnap[256] = {0};
    grads_of(&s, gsnap);
    const char *full[] = {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "lm_head.weight",
                          "model.layers.1.mlp.down_proj.weight", "model.norm.weight"};
    const char *ad[] = {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                        "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
                        "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"};
    const char **names = lora ? ad : full;
    int nn = lora ? 3 : 5;
    for (int k = 0; k < nn; k++) {
        int pg = -1;
        for (int g = 0; g < s.m->nglobals; g++) {
            const ir_global *G = &s.m->globals[g];
            if (G->role == IR_ROLE_PARAM && (!strcmp(G->name, names[k]) || !strcmp(ir_attr_str(G->attrs, G->nattrs, "hf", ""), names[k])))
                pg = g;
        }
        CHECK_MSG(pg >= 0, "no param %s", names[k]);
        if (pg < 0) continue;
        char gname[600];
        snprintf(gname, sizeof gname, "grad/%s", s.m->globals[pg].name);
        int gi = ir_global_find(s.m, gname);
        CHECK_MSG(gi >= 0 && gi < 256 && gsnap[gi], "no gradient of %s", names[k]);
        if (gi < 0 || gi >= 256 || !gsnap[gi]) continue;
        fd_ctx fc = {&s, &b, &d, scale};
        double dot, gn, fd = directional_fd(&s.st.globals[pg], gsnap[gi], 5, 1e-3, fd_dpo, &fc, &dot, &gn);
        CHECK_MSG(gn > 0, "%s: a zero gradient", names[k]);
        CHECK_MSG(fabs(fd - dot) <= 0.03 * fabs(dot) + 2e-5, "dpo (lora %d) %s: autodiff %.6g vs finite difference %.6g",
                  lora, names[k], dot, fd);
    }
    for (size_t g = 0; g < AX_ARRAY_LEN(gsnap); g++) free(gsnap[g]);
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
}

/* LongRoPE in the lowering: the max position input only where a row can pass original_max, with the collator's
 * pad multiple for unpacked rows; rl: dpo past original_max refused by name */
static void longrope_lowering(void) {
    static double sf[4] = {1, 1.1, 1.2, 1.3}, lf[4] = {1, 2, 3, 4};
    for (int k = 0; k < 3; k++) {
        ax_diag d;
        ax_diag_init(&d);
        fe_config c;
        fe_model m;
        make_model(&m, FE_ARCH_LLAMA);
        m.rope_type = FE_ROPE_LONGROPE, m.rope_n_factors = (int)(m.head_dim / 2), m.rope_short_factor = sf,
        m.rope_long_factor = lf, m.rope_original_max_position_embeddings = 8, m.rope_attention_factor = 1.2;
        CHECK_EQ(m.head_dim, 8);
        make_cfg(&c, 2, k == 0 ? 8 : 16, 1, 0); /* rows of 8: never past the original 8 */
        if (k == 2) c.rl = FE_RL_DPO;
        ir_module *mod = ir_module_create();
        int32_t loss;
        const int rc = fe_lower(&c, &m, 1, mod, &loss, &d);
        if (k < 2) {
            CHECK_MSG(rc == 0, "longrope lowering %d", k);
            char *text = plan_text_of(mod);
            CHECK_MSG((strstr(text, "name=\"max_position\"") != NULL) == (k == 1), "max_position input (rows of %d)", k ? 16 : 8);
            CHECK((ir_module_attr(mod, "rope.pad_multiple") != NULL) == (k == 1));
            CHECK(strstr(text, "short_factor=[1.0, 1.1000000000000001, 1.2, 1.3], long_factor=[1.0, 2.0, 3.0, 4.0]") != NULL);
            free(text);
        } else {
            CHECK(rc != 0 && d.nerrors == 1 && strstr(d.entries[0].msg, "rl: dpo with LongRoPE rows past original_max_position_embeddings (8; sequence_len 16)"));
        }
        ir_module_destroy(mod);
        ax_diag_free(&d);
    }
}

int main(void) {
    fused_lce_equivalence(FE_ARCH_LLAMA, 0); /* untied lm_head */
    fused_lce_equivalence(FE_ARCH_QWEN2, 0); /* tied: dW joins the embedding's gradient */
    fused_lce_equivalence(FE_ARCH_LLAMA, 1);
    fused_lce_equivalence(FE_ARCH_QWEN2, 1);
    g_flce = 1; /* the fused loss under the whole-model checks too */
    axolotl_warmup();
    dpo_fd_check(0, 0);
    dpo_fd_check(1, 0);
    dpo_fd_check(0, 1); /* robust + ipo + apo_down, token counts */
    fd_check(FE_ARCH_LLAMA);
    fd_check(FE_ARCH_QWEN3);
    accumulation_equivalence();
    checkpointing_equivalence(FE_ARCH_LLAMA);
    zero_stages_single_rank(1);
    g_flce = 0;
    zero_stages_single_rank(0);
    zero_stages_single_rank(1);
    zero_stages_single_rank(2);
    fd_check(FE_ARCH_LLAMA);
    fd_check(FE_ARCH_QWEN2);
    fd_check(FE_ARCH_QWEN3);
    accumulation_equivalence();
    checkpointing_equivalence(FE_ARCH_LLAMA);
    checkpointing_equivalence(FE_ARCH_QWEN3);
    loss_falls(0);
    loss_falls(1);
    loss_falls(2);
    neftune_checks(FE_ARCH_LLAMA); /* untied: the embedding's gradient comes through the noise alone */
    neftune_checks(FE_ARCH_QWEN2);
    pure_bf16_tracks_master();
    adamw8_tracks_adamw();
    CHECK(fabs(rt_lr_at("cosine", 1.0, 10, 110, 0)) == 0.0);
    CHECK_NEAR(rt_lr_at("cosine", 1.0, 10, 110, 5), 0.5, 1e-12, 0);
    CHECK_NEAR(rt_lr_at("cosine", 1.0, 10, 110, 60), 0.5, 1e-12, 1e-12);
    CHECK_NEAR(rt_lr_at("linear", 2.0, 0, 100, 25), 1.5, 1e-12, 0);
    CHECK_NEAR(rt_lr_at("constant", 2.0, 4, 100, 50), 2.0, 1e-12, 0);
    CHECK(rt_lr_at("constant", 2.0, 4, 100, 0) == 2.0); /* HF's constant has no warmup */
    metric_schedule_fixtures("plateau.json", 0, 8);
    lr_fixtures();
    one_cycle_fixtures();
    metric_schedule_fixtures("greedy.json", 1, 8);
    neftune_scale_checks();
    longrope_lowering();
    return check_done();
}
