/* test_lora.c — the LoRA / QLoRA pass (passes/lora.c) on the CPU executor:
 *  - adapter gradients vs central finite differences (fp32, dropout on,
 *    the mask held fixed by replaying the micro step's seed)
 *  - only adapters have gradients and optimizer state; base weights stay
 *    bit-identical through training
 *  - step 0 (B = 0) is the base model bit for bit, fp32 and bf16
 *  - merging s * B A into W gives the adapted model's loss
 *  - QLoRA == LoRA on the dequantized NF4 weights, bit for bit, through
 *    training steps
 *  - dropout draws a new mask every micro step; checkpointing recomputes
 *    the same one (bit-identical gradients)
 *  - target selection (PEFT suffix rule, defaults), and errors naming the key
 *  - memory: frozen params have no grads or Adam state, NF4 is 4 bits
 *  - LoRA+ (loraplus_lr_ratio): ratio 1 is the plan and the run without
 *    it, bit for bit; ratio k moves every lora_B k times as far on the first
 *    step (f32 and 8-bit AdamW state) and lora_A the same; PEFT's groups
 *    (1-d params at lr x k, decay unless a bias)
 *  - peft_layers_to_transform / peft_layers_pattern: adapters only in the
 *    listed layers (a full-name target wherever it is), errors naming the
 *    key; the saved adapter holds only those, adapter_config.json lists
 *    them as PEFT writes them, and lora_model_dir loads it back
 *  - DoRA (peft_use_dora): A, B and m gradients vs finite differences with
 *    the norm held constant (PEFT detaches it); step 0 is the base model;
 *    QLoRA magnitudes are the dequantized rows' norms; saved under PEFT's
 *    keys, continued bit for bit, merged as PEFT merges
 *  - trainable tokens (peft_trainable_token_indices): delta starts as its
 *    rows of the embedding (bf16 too) and step 0 is the base model bit for
 *    bit; its gradient is those rows of a full fine-tune's embedding
 *    gradient (untied: the lookup; tied: the lookup and the head, fused or
 *    not), and matches finite differences once delta differs from the rows;
 *    training moves delta and no base weight; ids outside the vocabulary and
 *    a clash with lora_modules_to_save are errors naming the key */
#include <jansson.h>
#include "runtime/safetensors.h"
#include "runtime/adapter.h"
#include "ir/quant.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/train_fixture.h"

#include <stdio.h>

static const char *const all_linear[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

static pass_lora_cfg lora(pass_adapter a, double dropout, int bf16) {
    return (pass_lora_cfg){.adapter = a, .r = 4, .alpha = 8, .dropout = dropout, .target_linear = 1, .bf16 = bf16};
}

static int count_globals(const rt_session *s, const char *suffix, ir_role role) {
    int n = 0;
    size_t k = strlen(suffix);
    for (int g = 0; g < s->m->nglobals; g++) {
        const char *nm = s->m->globals[g].name;
        size_t l = strlen(nm);
        n += s->m->globals[g].role == role && l >= k && !strcmp(nm + l - k, suffix);
    }
    return n;
}

/* Fills every lora_B with small random values (B = 0 at init would make
 * the gradients of A zero and the adapters invisible). The params only:
 * not their gradients or Adam moments (a negative v would be NaN). */
static void randomize_b(rt_session *s, uint32_t seed) {
    for (int g = 0; g < s->m->nglobals; g++) {
        const char *nm = s->m->globals[g].name;
        if (!strstr(nm, ".lora_B.") || s->m->globals[g].role != IR_ROLE_PARAM) continue;
        rt_buf *b = &s->st.globals[g];
        for (int64_t i = 0; i < b->numel; i++) {
            seed = seed * 1664525u + 1013904223u;
            rt_f(b)[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
        }
    }
}

static double loss_at(rt_session *s, const batch *b, int64_t micro, ax_diag *d) {
    s->micro_count = micro; /* the same dropout seed: the same masks */
    return loss_of(s, b, d);
}

/* Along a random +-1 direction r (drawn from seed) of param p: the gradient's dot with r less the central finite
 * difference of the loss at micro step `micro` (step 1e-3); p is restored. *g1: the sum of |g|. */
static double fd_minus_dot(rt_session *s, const batch *b, rt_buf *p, const float *g, uint32_t seed, int64_t micro,
                           double *g1, ax_diag *d) {
    double dot = 0, e = 1e-3;
    float *save = malloc(sizeof(float) * (size_t)p->numel);
    memcpy(save, p->data, sizeof(float) * (size_t)p->numel);
    *g1 = 0;
    for (int sign = 1; sign >= -1; sign -= 2) {
        uint32_t sd = seed;
        for (int64_t i = 0; i < p->numel; i++) {
            sd = sd * 1664525u + 1013904223u;
            float r = (sd >> 31) ? 1.0f : -1.0f;
            if (sign > 0) dot += (double)g[i] * r, *g1 += fabs(g[i]);
            rt_f(p)[i] = save[i] + (float)(sign * e) * r;
        }
        double l = loss_at(s, b, micro, d);
        dot = sign > 0 ? dot - l / (2 * e) : dot + l / (2 * e); /* dot - fd */
    }
    memcpy(p->data, save, sizeof(float) * (size_t)p->numel);
    free(save);
    return dot;
}

static void fd_adapters(void) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_QWEN2); /* biases: the adapter goes after bias_add */
    make_cfg(&c, 2, 16, 1, 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0.25, 0);
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    randomize_b(&s, 3);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 11);
    zero_grads(&s);
    loss_at(&s, &b, 5, &d);
    const char *names[] = {"model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight",
                           "model.layers.1.mlp.down_proj.lora_A.weight", "model.layers.1.mlp.gate_proj.lora_B.weight",
                           "model.layers.0.self_attn.v_proj.lora_B.weight"};
    float *gs[AX_ARRAY_LEN(names)];
    for (size_t k = 0; k < AX_ARRAY_LEN(names); k++) {
        char gname[256];
        snprintf(gname, sizeof gname, "grad/%s", names[k]);
        rt_buf *g = rt_session_global(&s, gname);
        CHECK_MSG(g != NULL, "no %s", gname);
        gs[k] = g ? malloc(sizeof(float) * (size_t)g->numel) : NULL;
        if (g) memcpy(gs[k], g->data, sizeof(float) * (size_t)g->numel);
    }
    for (size_t k = 0; k < AX_ARRAY_LEN(names); k++) {
        rt_buf *p = rt_session_global(&s, names[k]);
        if (!p || !gs[k]) continue;
        double g2;
        double dot = fd_minus_dot(&s, &b, p, gs[k], 99, 5, &g2, &d);
        CHECK_MSG(g2 > 0, "%s: zero gradient", names[k]);
        CHECK_MSG(fabs(dot) <= 0.02 * g2 / sqrt((double)p->numel) + 2e-4, "%s: autodiff - finite difference = %.3g",
                  names[k], dot);
        free(gs[k]);
    }
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* Runs `steps` optimizer steps of one micro step each on batch b. */
static void train_steps(rt_session *s, const batch *b, int steps, ax_diag *d) {
    for (int i = 0; i < steps; i++) {
        loss_of(s, b, d);
        CHECK(rt_session_opt_step(s, 1e-2f, i + 1, d) == 0);
    }
}

static void frozen_base_and_identity(int bf16, int flce) {
    g_flce = flce; /* the fused lm head: dw=0 for the frozen head */
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    c.bf16 = bf16;
    rt_session base, ad;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&base, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0.1, bf16);
    CHECK(build(&ad, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    /* grads and Adam state exist for the 2 x 7 x 2 adapters only */
    CHECK_EQ(count_globals(&ad, ".weight", IR_ROLE_GRAD), 28);
    CHECK_EQ(count_globals(&ad, ".lora_A.weight", IR_ROLE_GRAD), 14);
    CHECK_EQ(count_globals(&ad, ".weight", IR_ROLE_OPT), 56); /* m and v; f32 adapters need no master */
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 21);
    double l_base = loss_of(&base, &b, &d), l_ad = loss_of(&ad, &b, &d);
    CHECK_MSG(l_base == l_ad, "step 0: base %.9g vs adapted %.9g (B = 0 must add exactly nothing)", l_base, l_ad);
    float *snap = NULL;
    int64_t nsnap = 0;
    for (int g = 0; g < ad.m->nglobals; g++)
        if (ad.m->globals[g].role == IR_ROLE_PARAM && !strstr(ad.m->globals[g].name, ".lora_")) {
            snap = realloc(snap, sizeof(float) * (size_t)(nsnap + ad.st.globals[g].numel));
            memcpy(snap + nsnap, ad.st.globals[g].data, sizeof(float) * (size_t)ad.st.globals[g].numel);
            nsnap += ad.st.globals[g].numel;
        }
    train_steps(&ad, &b, 4, &d);
    int64_t off = 0;
    int same = 1;
    for (int g = 0; g < ad.m->nglobals; g++)
        if (ad.m->globals[g].role == IR_ROLE_PARAM && !strstr(ad.m->globals[g].name, ".lora_")) {
            same &= memcmp(snap + off, ad.st.globals[g].data, sizeof(float) * (size_t)ad.st.globals[g].numel) == 0;
            off += ad.st.globals[g].numel;
        }
    CHECK_MSG(same, "a frozen base weight changed during training");
    double l_after = loss_at(&ad, &b, 100, &d);
    CHECK_MSG(l_after < l_ad - 0.05, "bf16 %d: the adapters did not learn: %.4f -> %.4f", bf16, l_ad, l_after);
    if (flce) {
        int dw0 = 0;
        for (int i = 0; i < ad.micro.p->nnodes; i++) {
            const ir_node *n = &ad.micro.p->nodes[i];
            dw0 |= n->op == IR_OP_linear_cross_entropy && ir_attr_int(n->attrs, n->nattrs, "dw", 1) == 0;
        }
        CHECK_MSG(dw0, "the fused lm head of a LoRA plan still computes dW");
    }
    free(snap);
    free_batch(&b);
    rt_session_close(&base);
    rt_session_close(&ad);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
    g_flce = 0;
}

/* W' = W + s B A: the plain model with merged weights computes the adapted
 * model's loss (fp32, no dropout). */
static void merge_equivalence(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_QWEN3, 2, 16);
    rt_session base, ad;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&base, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0, 0);
    g_lora.rslora = 1;
    CHECK(build(&ad, &c, &m, &d) == 0);
    batch b, b2;
    make_batch(&b, 2, 16, m.vocab_size, 5);
    make_batch(&b2, 2, 16, m.vocab_size, 6);
    train_steps(&ad, &b, 3, &d);
    double scale = 8.0 / sqrt(4.0); /* rsLoRA */
    int merged = 0;
    for (int g = 0; g < base.m->nglobals; g++) {
        const ir_global *G = &base.m->globals[g];
        if (G->role != IR_ROLE_PARAM || G->type.rank != 2 || strncmp(G->name, "model.layers.", 13)) continue;
        char an[256], bn[256];
        snprintf(an, sizeof an, "%.*s.lora_A.weight", (int)(strlen(G->name) - 7), G->name);
        snprintf(bn, sizeof bn, "%.*s.lora_B.weight", (int)(strlen(G->name) - 7), G->name);
        rt_buf *A = rt_session_global(&ad, an), *B = rt_session_global(&ad, bn), *W = &base.st.globals[g];
        CHECK_MSG(A && B, "no adapter for %s", G->name);
        if (!A || !B) continue;
        int64_t out = G->type.dims[0], in = G->type.dims[1], r = A->type.dims[0];
        for (int64_t i = 0; i < out; i++)
            for (int64_t j = 0; j < in; j++) {
                double acc = 0;
                for (int64_t k = 0; k < r; k++) acc += (double)rt_f(B)[i * r + k] * rt_f(A)[k * in + j];
                rt_f(W)[i * in + j] = (float)((double)rt_f(W)[i * in + j] + scale * acc);
            }
        merged++;
    }
    CHECK_EQ(merged, 14);
    double l_ad = loss_at(&ad, &b2, 0, &d), l_m = loss_of(&base, &b2, &d);
    CHECK_MSG(fabs(l_ad - l_m) <= 1e-5 * fabs(l_m), "adapted %.9g vs merged %.9g", l_ad, l_m);
    free_batch(&b), free_batch(&b2);
    rt_session_close(&base);
    rt_session_close(&ad);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* QLoRA trains exactly what LoRA trains on a base whose linear weights are
 * the dequantized NF4 weights. */
static void qlora_equals_lora_on_dequantized(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    m.head_dim = 32;
    c.bf16 = 1;
    rt_session q, l;
    g_lora = lora(PASS_ADAPTER_QLORA, 0.1, 1);
    CHECK(build(&q, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0.1, 1);
    CHECK(build(&l, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    int nq = 0;
    for (int g = 0; g < q.m->nglobals; g++) {
        const ir_global *G = &q.m->globals[g];
        if (G->type.dtype != IR_NF4) continue;
        nq++;
        char nm[256];
        snprintf(nm, sizeof nm, "%s.absmax", G->name);
        rt_buf *a = rt_session_global(&q, nm);
        snprintf(nm, sizeof nm, "%s.rowmax", G->name);
        rt_buf *r = rt_session_global(&q, nm);
        rt_buf *w = rt_session_global(&l, G->name);
        CHECK(a && r && w && w->type.dtype == IR_BF16);
        if (!a || !r || !w) continue;
        /* the NF4 codes round-trip the loaded weights within half a code gap */
        int64_t N = G->type.dims[0], K = G->type.dims[1];
        float *deq = malloc(sizeof(float) * (size_t)(N * K));
        ck_dequant_nf4_f32(rt_f(&q.st.globals[g]), rt_f(a), rt_f(r), deq, N, K);
        double err = 0, mag = 0;
        for (int64_t i = 0; i < N * K; i++) {
            err += fabs((double)deq[i] - rt_f(w)[i]);
            mag += fabs((double)rt_f(w)[i]);
            rt_f(w)[i] = ax_round_bf16(deq[i]);
        }
        CHECK_MSG(err < 0.15 * mag, "%s: NF4 mean abs error %.3g of mean magnitude %.3g", G->name, err / (double)(N * K),
                  mag / (double)(N * K));
        free(deq);
    }
    CHECK_EQ(nq, 14);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 31);
    for (int step = 0; step < 3; step++) {
        double lq = loss_of(&q, &b, &d), ll = loss_of(&l, &b, &d);
        CHECK_MSG(lq == ll, "step %d: qlora %.9g vs lora on dequantized weights %.9g", step, lq, ll);
        CHECK(rt_session_opt_step(&q, 1e-2f, step + 1, &d) == 0);
        CHECK(rt_session_opt_step(&l, 1e-2f, step + 1, &d) == 0);
    }
    CHECK(rel_diff_role(&q, &l, IR_ROLE_OPT, 1) == 0);
    free_batch(&b);
    rt_session_close(&q);
    rt_session_close(&l);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

static void dropout_masks(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    rt_session s, ck;
    g_lora = lora(PASS_ADAPTER_LORA, 0.3, 0);
    CHECK(build(&s, &c, &m, &d) == 0);
    c.gradient_checkpointing = 1;
    CHECK(build(&ck, &c, &m, &d) == 0);
    randomize_b(&s, 9);
    copy_weights(&ck, &s);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 41);
    double l0 = loss_at(&s, &b, 0, &d), l1 = loss_at(&s, &b, 1, &d), l0again = loss_at(&s, &b, 0, &d);
    CHECK_MSG(l0 != l1, "two micro steps drew the same dropout masks");
    CHECK(l0 == l0again);
    zero_grads(&s);
    zero_grads(&ck);
    loss_at(&s, &b, 3, &d);
    loss_at(&ck, &b, 3, &d);
    CHECK_MSG(rel_diff_role(&s, &ck, IR_ROLE_GRAD, 0) == 0, "checkpointing changed the gradients (masks not recomputed alike)");
    free_batch(&b);
    rt_session_close(&s);
    rt_session_close(&ck);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

static int build_err_on(fe_arch arch, const pass_lora_cfg *l, const char *want) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, arch, 1, 8);
    g_lora = *l;
    rt_session s;
    int rc = build(&s, &c, &m, &d);
    if (!rc) rt_session_close(&s);
    int ok = want ? rc != 0 && d.nerrors && strstr(d.entries[d.n - 1].msg, want) : rc == 0;
    if (!ok) {
        fprintf(stderr, "wanted %s\n", want ? want : "success");
        ax_diag_print(&d, stderr);
    }
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
    return ok;
}

static int build_err(const pass_lora_cfg *l, const char *want) { return build_err_on(FE_ARCH_LLAMA, l, want); }

static void targets(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 1, 8);
    const char *const qv[] = {"q_proj", "model.layers.1.mlp.down_proj"};
    g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .targets = qv, .ntargets = 2};
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK_EQ(count_globals(&s, ".lora_A.weight", IR_ROLE_PARAM), 3); /* q_proj x 2 layers + one down_proj */
    CHECK(rt_session_global(&s, "model.layers.1.mlp.down_proj.lora_B.weight") != NULL);
    CHECK(rt_session_global(&s, "model.layers.0.mlp.down_proj.lora_B.weight") == NULL);
    rt_session_close(&s);
    g_lora.targets = all_linear;
    g_lora.ntargets = 7;
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK_EQ(count_globals(&s, ".lora_B.weight", IR_ROLE_PARAM), 14);
    rt_session_close(&s);
    ax_diag_free(&d);
    const char *const bad[] = {"qproj"}, *const head[] = {"lm_head"};
    CHECK(build_err(&(pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .targets = bad, .ntargets = 1},
                    "\"qproj\" matches no linear layer"));
    CHECK(build_err(&(pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .targets = head, .ntargets = 1},
                    "LoRA on the output layer is not implemented"));
    CHECK(build_err(&(pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 0, .alpha = 4, .target_linear = 1}, "positive rank"));
    CHECK(build_err(&(pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4}, "no linear layer is targeted"));
    g_lora = (pass_lora_cfg){0};
}

/* Memory: with QLoRA the base linear weights cost 4 bits + one u8 step per
 * 64 + one f32 per row; grads and Adam m/v exist for the adapters only. */
static void memory_accounting(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 1, 8);
    c.bf16 = 1;
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &m, 1, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss, .lora = lora(PASS_ADAPTER_QLORA, 0, 1), .opt = {.master_f32 = 1}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    const int64_t H = m.hidden_size, I = m.intermediate_size, L = m.num_hidden_layers, V = m.vocab_size;
    const int64_t qd = m.num_attention_heads * m.head_dim, kvd = m.num_key_value_heads * m.head_dim, r = 4;
    /* [out, in] of the 7 linear layers */
    const int64_t shp[7][2] = {{qd, H}, {kvd, H}, {kvd, H}, {H, qd}, {I, H}, {I, H}, {H, I}};
    int64_t quant = 0, adapters = 0;
    for (int k = 0; k < 7; k++) {
        int64_t o = shp[k][0], in = shp[k][1];
        quant += o * in / 2 + o * ((in + 63) / 64) + 4 * o;
        adapters += r * in + o * r;
    }
    int64_t dense = 2 * (V * H + V * H /* untied lm_head */ + (2 * L + 1) * H);
    CHECK_EQ(pc.mem.state_bytes[IR_ROLE_PARAM], dense + L * (quant + 4 * adapters));
    CHECK_EQ(pc.mem.state_bytes[IR_ROLE_GRAD], L * 4 * adapters);
    CHECK_EQ(pc.mem.state_bytes[IR_ROLE_OPT], L * 8 * adapters);
    /* no dequantized weight lives from the forward into the backward (the
     * backward dequantizes again): else QLoRA would hold a bf16 model */
    const ir_program *ms = ir_program_find(mod, "micro_step");
    int64_t bs = ir_attr_int(mod->attrs, mod->nattrs, "backward_start", -1);
    int ndq = 0, across = 0;
    CHECK(ms && bs > 0);
    for (int i = 0; ms && i < ms->nnodes; i++) {
        if (ms->nodes[i].op != IR_OP_dequant_nf4) continue;
        ndq++;
        for (int j = i + 1; j < ms->nnodes; j++)
            for (int k = 0; k < ms->nodes[j].nin; k++)
                across += ms->nodes[j].in[k] == ms->nodes[i].out[0] && i < bs && j >= bs;
    }
    /* the forward's 14, and the backward's for every weight whose input
     * gradient is needed (all but layer 0's q/k/v: the embedding is frozen) */
    CHECK_MSG(ndq == 2 * 7 * L - 3, "%d dequantizations: expected the forward's and the backward's", ndq);
    CHECK_MSG(across == 0, "%d dequantized weights are kept from the forward for the backward", across);
    ir_module_destroy(mod);
    ax_diag_free(&d);
}

/* With gradient checkpointing the recomputed layer dequantizes its weights
 * for its forward, and the backward again for itself: no layer holds all
 * its dequantized weights through its backward. Measured as memplan's
 * activation peak against LoRA's (whose bf16 weights are params): at most
 * two dequantized weights more. */
static int64_t plan_peak(pass_adapter a, int ckpt, double dropout) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_LLAMA);
    m.hidden_size = 128, m.head_dim = 32, m.intermediate_size = 384;
    make_cfg(&c, 1, 64, 1, ckpt);
    c.bf16 = 1;
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &m, 1, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss, .checkpoint = ckpt, .lora = lora(a, dropout, 1), .opt = {.master_f32 = 1}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ir_module_destroy(mod);
    ax_diag_free(&d);
    return pc.mem.micro_peak;
}

static void checkpointed_qlora_peak(void) {
    int64_t lp = plan_peak(PASS_ADAPTER_LORA, 1, 0), qp = plan_peak(PASS_ADAPTER_QLORA, 1, 0), w = 2 * 384 * 128; /* a bf16 MLP weight */
    CHECK_MSG(qp <= lp + 2 * w, "QLoRA + checkpointing activation peak %lld vs LoRA %lld: more than two dequantized weights",
              (long long)qp, (long long)lp);
}

/* lora_dropout costs no stored copies: the backward draws each adapter's
 * dropped input again, so the peak grows by at most one [tokens, hidden]
 * working copy (q, k, v would otherwise keep three per layer). */
static void dropout_peak(void) {
    int64_t p0 = plan_peak(PASS_ADAPTER_LORA, 0, 0), p1 = plan_peak(PASS_ADAPTER_LORA, 0, 0.1), x = 2 * 64 * 384;
    CHECK_MSG(p1 <= p0 + x, "LoRA activation peak with dropout %lld vs without %lld: dropped copies are stored", (long long)p1,
              (long long)p0);
}

/* lora_modules_to_save: the named modules train whole beside the adapters.
 * At step 0 (B = 0) their gradients are the full fine-tune's; after a few
 * steps they and the adapters moved and every other base weight did not;
 * the fused head computes dW again; they are saved as PEFT's keys. Errors:
 * a tied embedding, a module that is also a target or 4-bit, no match. */
static void modules_to_save(void) {
    static const char *const save[] = {"embed_tokens", "lm_head"};
    g_flce = 1;
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    rt_session full, ad;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&full, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0.0, 0);
    g_lora.save_modules = save;
    g_lora.nsave = 2;
    CHECK(build(&ad, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(count_globals(&ad, ".weight", IR_ROLE_GRAD), 30); /* 28 adapter matrices + the two modules */
    const char *names[] = {"lm_head.weight", "model.embed_tokens.weight"};
    const char *keys[] = {"base_model.model.lm_head.weight", "base_model.model.model.embed_tokens.weight"};
    for (int k = 0; k < 2; k++) {
        int g = ir_global_find(ad.m, names[k]);
        CHECK(g >= 0 && ir_attr_int(ad.m->globals[g].attrs, ad.m->globals[g].nattrs, "adapter", 0) == 2 &&
              !strcmp(ir_attr_str(ad.m->globals[g].attrs, ad.m->globals[g].nattrs, "saved_as", ""), keys[k]));
    }
    for (int i = 0; i < ad.micro.p->nnodes; i++) {
        const ir_node *n = &ad.micro.p->nodes[i];
        if (n->op == IR_OP_linear_cross_entropy) CHECK(ir_attr_int(n->attrs, n->nattrs, "dw", 1) == 1);
    }
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 41);
    loss_of(&full, &b, &d);
    loss_of(&ad, &b, &d);
    for (int k = 0; k < 2; k++) {
        char gn[128];
        snprintf(gn, sizeof gn, "grad/%s", names[k]);
        rt_buf *x = rt_session_global(&full, gn), *y = rt_session_global(&ad, gn);
        CHECK(x && y && x->numel == y->numel);
        double num = 0, den = 0;
        for (int64_t i = 0; x && y && i < x->numel; i++) {
            double dd = (double)rt_f(x)[i] - rt_f(y)[i];
            num += dd * dd, den += (double)rt_f(x)[i] * rt_f(x)[i];
        }
        CHECK_MSG(den > 0 && sqrt(num / den) <= 1e-6, "%s: gradient differs from the full fine-tune's by %.3g", names[k],
                  den > 0 ? sqrt(num / den) : -1.0);
    }
    zero_grads(&ad);
    rt_buf *norm = rt_session_global(&ad, "model.norm.weight"), *head = rt_session_global(&ad, "lm_head.weight");
    float n0 = rt_f(norm)[3], h0 = rt_f(head)[5];
    train_steps(&ad, &b, 3, &d);
    CHECK(rt_f(norm)[3] == n0 && rt_f(head)[5] != h0);
    free_batch(&b);
    rt_session_close(&full);
    rt_session_close(&ad);
    ax_diag_free(&d);
    g_flce = 0;
    pass_lora_cfg l = lora(PASS_ADAPTER_LORA, 0.0, 0);
    l.save_modules = save;
    l.nsave = 1;
    CHECK(build_err_on(FE_ARCH_QWEN2, &l, "ties lm_head to embed_tokens"));
    static const char *const lmh[] = {"lm_head"}, *const q[] = {"q_proj"}, *const none[] = {"mlp.gate"};
    l.save_modules = lmh;
    CHECK(build_err_on(FE_ARCH_QWEN2, &l, "matches no module of the model (its lm_head is tied to embed_tokens)"));
    l.save_modules = q;
    CHECK(build_err_on(FE_ARCH_LLAMA, &l, "is also a LoRA target"));
    static const char *const v[] = {"v_proj"};
    pass_lora_cfg ql = {.adapter = PASS_ADAPTER_QLORA, .r = 2, .alpha = 4, .targets = v, .ntargets = 1, .save_modules = q, .nsave = 1};
    CHECK(build_err_on(FE_ARCH_LLAMA, &ql, "a 4-bit (load_in_4bit) weight"));
    l.save_modules = none;
    CHECK(build_err_on(FE_ARCH_LLAMA, &l, "\"mlp.gate\" matches no module"));
}

/* The plan build() makes, as text (for comparing plans byte for byte). */
static char *plan_of(const fe_config *c, const fe_model *m) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(c, m, 1, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss, .checkpoint = c->gradient_checkpointing, .lora = g_lora,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 0,
                           .master_f32 = c->bf16 && !c->bf16_pure, .pure_bf16 = c->bf16_pure,
                           .state_8bit = c->optimizer_8bit, .loraplus_ratio = g_loraplus}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_buf t = {0};
    ir_print(mod, &t);
    ir_module_destroy(mod);
    ax_diag_free(&d);
    return ax_buf_steal(&t);
}

/* The adamw / adamw8 node of opt_step that updates param `name` (through
 * its master copy or itself), or NULL. */
static const ir_node *adamw_of(const rt_session *s, const char *name) {
    const ir_program *p = ir_program_find(s->m, "opt_step");
    for (int i = 0; p && i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op != IR_OP_adamw && n->op != IR_OP_adamw8) continue;
        const char *t = s->m->globals[IR_REF_GLOBAL(n->in[0])].name;
        if (!strcmp(t, name) || (!strncmp(t, "master/", 7) && !strcmp(t + 7, name))) return n;
    }
    return NULL;
}

/* Copies of every param whose name has `sub`, concatenated in global order. */
static float *snap_params(rt_session *s, const char *sub, int64_t *n) {
    float *v = NULL;
    *n = 0;
    for (int g = 0; g < s->m->nglobals; g++) {
        if (s->m->globals[g].role != IR_ROLE_PARAM || !strstr(s->m->globals[g].name, sub)) continue;
        rt_buf *b = &s->st.globals[g];
        v = realloc(v, sizeof(float) * (size_t)(*n + b->numel));
        memcpy(v + *n, b->data, sizeof(float) * (size_t)b->numel);
        *n += b->numel;
    }
    return v;
}

/* LoRA+ with ratio k against ratio 1 (and against no LoRA+), one build each
 * from the same init: the first AdamW step moves each lora_B k times as far
 * (from B = 0 weight decay adds nothing, and a power-of-two k scales
 * -lr/bc1 exactly: bit for bit; other k within rounding), lora_A the same
 * bits. rand_b: B starts random instead (A then has a gradient; B's decay
 * scales with k too). r: the rank (128 makes every lora_B of the 32-wide
 * model 4096 elements: 8-bit state with opt8). */
static void loraplus_first_step(double k, int rand_b, int64_t r, int opt8) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    c.optimizer_8bit = opt8;
    g_lora = lora(PASS_ADAPTER_LORA, 0.0, 0);
    g_lora.r = r;
    rt_session s[2];
    double ratio[2] = {1.0, k};
    for (int i = 0; i < 2; i++) {
        g_loraplus = ratio[i];
        CHECK(build(&s[i], &c, &m, &d) == 0);
        if (rand_b) randomize_b(&s[i], 17);
    }
    g_loraplus = 0;
    ax_diag_print(&d, stderr);
    const ir_node *nb = adamw_of(&s[1], "model.layers.1.mlp.down_proj.lora_B.weight"),
                  *na = adamw_of(&s[1], "model.layers.1.mlp.down_proj.lora_A.weight");
    CHECK(nb && na && nb->op == (opt8 ? IR_OP_adamw8 : IR_OP_adamw));
    CHECK(nb && ir_attr_float(nb->attrs, nb->nattrs, "lr_scale", 1.0) == k);
    CHECK(na && !ir_attr_find(na->attrs, na->nattrs, "lr_scale")); /* groupA: the lr as is */
    CHECK(nb && ir_attr_float(nb->attrs, nb->nattrs, "weight_decay", 0) == 0.01); /* PEFT's groupB decays */
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 23);
    int64_t nB, nA;
    float *B0 = snap_params(&s[0], ".lora_B.", &nB), *A0 = snap_params(&s[0], ".lora_A.", &nA);
    for (int i = 0; i < 2; i++) {
        loss_of(&s[i], &b, &d);
        CHECK(rt_session_opt_step(&s[i], 1e-2f, 1, &d) == 0);
    }
    int64_t n1, n2;
    float *B1 = snap_params(&s[0], ".lora_B.", &n1), *Bk = snap_params(&s[1], ".lora_B.", &n2);
    CHECK(n1 == nB && n2 == nB);
    double num = 0, den = 0, worst = 0;
    int exact = 1;
    for (int64_t i = 0; i < nB && n1 == nB && n2 == nB; i++) {
        double d1 = (double)B1[i] - B0[i], dk = (double)Bk[i] - B0[i];
        exact &= (float)(k * (double)(B1[i] - B0[i])) == Bk[i] - B0[i];
        num += (dk - k * d1) * (dk - k * d1), den += k * d1 * k * d1;
        worst = fmax(worst, fabs(dk - k * d1));
    }
    CHECK_MSG(den > 0, "the lora_B did not move");
    int pow2 = k == ldexp(1.0, (int)round(log2(k)));
    if (!rand_b && pow2)
        CHECK_MSG(exact, "ratio %g: a lora_B moved not exactly %g times as far (worst %.3g)", k, k, worst);
    CHECK_MSG(sqrt(num / (den > 0 ? den : 1)) <= 1e-5, "ratio %g: lora_B moved %.3g (relative) off %g times ratio 1's step", k,
              sqrt(num / (den > 0 ? den : 1)), k);
    int64_t a1n, akn;
    float *A1 = snap_params(&s[0], ".lora_A.", &a1n), *Ak = snap_params(&s[1], ".lora_A.", &akn);
    CHECK(a1n == nA && akn == nA && !memcmp(A1, Ak, sizeof(float) * (size_t)nA));
    int moved = 0;
    for (int64_t i = 0; i < nA; i++) moved |= A1[i] != A0[i];
    CHECK_MSG(moved, "lora_A did not move (weight decay or, with B random, its gradient)");
    free(B0), free(A0), free(B1), free(Bk), free(A1), free(Ak);
    free_batch(&b);
    rt_session_close(&s[0]);
    rt_session_close(&s[1]);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* loraplus_lr_ratio 1 is no LoRA+: the same plan bytes and the same bits
 * after a few steps (only adapters train: LoRA+'s groups change nothing). */
static void loraplus_ratio_one(int bf16) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_QWEN2, 2, 16);
    c.bf16 = bf16;
    g_lora = lora(PASS_ADAPTER_LORA, 0.1, bf16);
    g_loraplus = 0;
    char *p0 = plan_of(&c, &m);
    g_loraplus = 1;
    char *p1 = plan_of(&c, &m);
    CHECK_MSG(!strcmp(p0, p1), "bf16 %d: loraplus_lr_ratio 1 changed the plan", bf16);
    CHECK(!strstr(p1, "lr_scale"));
    free(p0), free(p1);
    rt_session s0, s1;
    g_loraplus = 0;
    CHECK(build(&s0, &c, &m, &d) == 0);
    g_loraplus = 1;
    CHECK(build(&s1, &c, &m, &d) == 0);
    g_loraplus = 0;
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 29);
    train_steps(&s0, &b, 3, &d);
    train_steps(&s1, &b, 3, &d);
    int64_t n0, n1;
    float *w0 = snap_params(&s0, ".", &n0), *w1 = snap_params(&s1, ".", &n1);
    CHECK(n0 == n1 && !memcmp(w0, w1, sizeof(float) * (size_t)n0));
    free(w0), free(w1);
    free_batch(&b);
    rt_session_close(&s0);
    rt_session_close(&s1);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* PEFT's groups beyond the adapters: a 1-d param (lora_modules_to_save:
 * norm; a full fine-tune's norms and biases) is in group B: lr x k, and
 * weight decay unless "bias" is in its name (PEFT keeps only nn.LayerNorm
 * params and biases from decay: RMSNorm weights decay); 2-d ones decay at
 * the lr as is (embeddings too). */
static void loraplus_groups(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_QWEN2, 1, 8);
    static const char *const norm[] = {"norm"};
    g_lora = lora(PASS_ADAPTER_LORA, 0.0, 0);
    g_lora.save_modules = norm;
    g_lora.nsave = 1;
    g_loraplus = 16;
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    const ir_node *n = adamw_of(&s, "model.norm.weight");
    CHECK(n && ir_attr_float(n->attrs, n->nattrs, "lr_scale", 1) == 16 && ir_attr_float(n->attrs, n->nattrs, "weight_decay", 0) == 0.01);
    rt_session_close(&s);
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&s, &c, &m, &d) == 0); /* a full fine-tune */
    ax_diag_print(&d, stderr);
    struct {
        const char *name;
        double lr_scale, wd;
    } want[] = {{"model.layers.0.input_layernorm.weight", 16, 0.01}, {"model.layers.0.self_attn.q_proj.bias", 16, 0},
                {"model.layers.1.self_attn.v_proj.weight", 1, 0.01}, {"model.embed_tokens.weight", 1, 0.01},
                {"model.norm.weight", 16, 0.01}};
    for (size_t i = 0; i < AX_ARRAY_LEN(want); i++) {
        n = adamw_of(&s, want[i].name);
        CHECK_MSG(n && ir_attr_float(n->attrs, n->nattrs, "lr_scale", 1) == want[i].lr_scale &&
                      ir_attr_float(n->attrs, n->nattrs, "weight_decay", -1) == want[i].wd,
                  "%s: expected lr x %g, weight decay %g", want[i].name, want[i].lr_scale, want[i].wd);
    }
    rt_session_close(&s);
    g_loraplus = 0;
    CHECK(build(&s, &c, &m, &d) == 0); /* without LoRA+: HF Trainer's rule (no decay for norms and biases) */
    n = adamw_of(&s, "model.layers.0.input_layernorm.weight");
    CHECK(n && ir_attr_float(n->attrs, n->nattrs, "weight_decay", -1) == 0 && !ir_attr_find(n->attrs, n->nattrs, "lr_scale"));
    rt_session_close(&s);
    ax_diag_free(&d);
}

static int count_prefix(const rt_session *s, const char *prefix, const char *suffix) {
    int n = 0;
    size_t k = strlen(suffix);
    for (int g = 0; g < s->m->nglobals; g++) {
        const char *nm = s->m->globals[g].name;
        size_t l = strlen(nm);
        n += s->m->globals[g].role == IR_ROLE_PARAM && !strncmp(nm, prefix, strlen(prefix)) && l >= k && !strcmp(nm + l - k, suffix);
    }
    return n;
}

static json_t *load_json(const char *dir, const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK_MSG(j != NULL, "%s: %s", path, je.text);
    return j;
}

/* peft_layers_to_transform and peft_layers_pattern (PEFT's layers_to_transform,
 * layers_pattern): adapters only in the listed layers; the saved adapter
 * holds them only, adapter_config.json says the layers as PEFT writes them,
 * and lora_model_dir loads it back. */
static void layers_to_transform(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 1, 8);
    m.num_hidden_layers = 3;
    static const int64_t one[] = {1}, two[] = {2, 0}, out[] = {0, 3};
    static const char *const layers[] = {"layers"}, *const h[] = {"h"}, *const hl[] = {"h", "layers"};
    rt_session s;
    /* a list, no pattern: every linear of layers 2 and 0 */
    g_lora = lora(PASS_ADAPTER_LORA, 0.0, 0);
    g_lora.layers = two, g_lora.nlayers = 2;
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK_EQ(count_globals(&s, ".lora_A.weight", IR_ROLE_PARAM), 14);
    CHECK_EQ(count_prefix(&s, "model.layers.1.", ".lora_B.weight"), 0);
    CHECK_EQ(count_prefix(&s, "model.layers.2.", ".lora_B.weight"), 7);
    CHECK_EQ(count_globals(&s, ".lora_A.weight", IR_ROLE_GRAD), 14);
    rt_session_close(&s);
    /* one integer with the pattern "layers" (a second pattern that is not in the names is skipped) */
    g_lora.layers = one, g_lora.nlayers = 1, g_lora.layers_int = 1;
    g_lora.pattern = hl, g_lora.npattern = 2;
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK_EQ(count_globals(&s, ".lora_A.weight", IR_ROLE_PARAM), 7);
    CHECK_EQ(count_prefix(&s, "model.layers.1.", ".lora_A.weight"), 7);
    rt_session_close(&s);
    /* a full-name target adapts its module whatever the layer (PEFT's exact match) */
    static const char *const mixed[] = {"q_proj", "model.layers.0.mlp.down_proj"};
    g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .targets = mixed, .ntargets = 2,
                             .layers = one, .nlayers = 1, .pattern = layers, .npattern = 1, .pattern_str = 1};
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK_EQ(count_globals(&s, ".lora_A.weight", IR_ROLE_PARAM), 2);
    CHECK(rt_session_global(&s, "model.layers.1.self_attn.q_proj.lora_A.weight") &&
          rt_session_global(&s, "model.layers.0.mlp.down_proj.lora_B.weight") &&
          !rt_session_global(&s, "model.layers.0.self_attn.q_proj.lora_A.weight"));
    /* saved so that PEFT adapts the same two: q_proj (in layer 1 only, by layers_to_transform), and down_proj of
     * layer 0 by its full name (its type's name would adapt layer 1's instead) */
    char tmp[] = "/tmp/axo_test_lora_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char dir[600], dir2[600], dir3[600], cmd[700];
    snprintf(dir, sizeof dir, "%s/ad", tmp);
    snprintf(dir2, sizeof dir2, "%s/ad2", tmp);
    snprintf(dir3, sizeof dir3, "%s/ad3", tmp);
    CHECK(rt_session_save(&s, dir3, 0, &d) == 0);
    json_t *j = load_json(dir3, "adapter_config.json"), *tm = json_object_get(j, "target_modules");
    CHECK(json_is_array(tm) && json_array_size(tm) == 2 &&
          !strcmp(json_string_value(json_array_get(tm, 0)), "model.layers.0.mlp.down_proj") &&
          !strcmp(json_string_value(json_array_get(tm, 1)), "q_proj"));
    CHECK(json_is_string(json_object_get(j, "layers_pattern")));
    json_decref(j);
    rt_session_close(&s);
    ax_diag_free(&d);
    /* errors name the key */
    pass_lora_cfg l = lora(PASS_ADAPTER_LORA, 0.0, 0);
    l.layers = out, l.nlayers = 2;
    CHECK(build_err(&l, "layer 3 is out of range: the model has 2 decoder layers (0 to 1)"));
    l.layers = one, l.nlayers = 1, l.pattern = h, l.npattern = 1;
    CHECK(build_err(&l, "no targeted linear layer is in the layers given with peft_layers_pattern"));
    /* the saved adapter: layer 1's only; adapter_config.json as PEFT writes it; lora_model_dir loads it */
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 1, 8);
    static const char *const qv[] = {"q_proj", "v_proj"};
    g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .targets = qv, .ntargets = 2,
                             .layers = one, .nlayers = 1};
    CHECK(build(&s, &c, &m, &d) == 0);
    batch b;
    make_batch(&b, 1, 8, m.vocab_size, 3);
    train_steps(&s, &b, 2, &d);
    CHECK(rt_session_save(&s, dir, 0, &d) == 0);
    ax_diag_print(&d, stderr);
    char path[700];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rt_st_file f;
    CHECK(rt_st_open(path, &f, &d) == 0);
    CHECK_EQ(f.ntensors, 4);
    for (int i = 0; i < f.ntensors; i++)
        CHECK_MSG(!strncmp(f.tensors[i].name, "base_model.model.model.layers.1.self_attn.", 42), "%s", f.tensors[i].name);
    rt_st_close(&f);
    j = load_json(dir, "adapter_config.json");
    json_t *lt = json_object_get(j, "layers_to_transform");
    tm = json_object_get(j, "target_modules");
    CHECK(json_is_array(lt) && json_array_size(lt) == 1 && json_integer_value(json_array_get(lt, 0)) == 1);
    CHECK(json_is_null(json_object_get(j, "layers_pattern")));
    CHECK(json_is_array(tm) && json_array_size(tm) == 2 && !strcmp(json_string_value(json_array_get(tm, 0)), "q_proj") &&
          !strcmp(json_string_value(json_array_get(tm, 1)), "v_proj"));
    json_decref(j);
    /* continue it: lora_model_dir loads layer 1's adapters (the same values) */
    rt_session s2;
    g_lora.model_dir = dir;
    CHECK(build(&s2, &c, &m, &d) == 0);
    rt_buf *x = rt_session_global(&s, "model.layers.1.self_attn.v_proj.lora_B.weight"),
           *y = rt_session_global(&s2, "model.layers.1.self_attn.v_proj.lora_B.weight");
    CHECK(x && y && !memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel));
    rt_session_close(&s2);
    /* a saved adapter of other layers than the config's is an error, not silently cut */
    g_lora.layers = NULL, g_lora.nlayers = 0;
    CHECK(build(&s2, &c, &m, &d) != 0 && strstr(d.entries[d.n - 1].msg, "has no \"base_model.model.model.layers.0."));
    rt_session_close(&s);
    /* the int form and a pattern string, as written */
    g_lora = (pass_lora_cfg){.adapter = PASS_ADAPTER_LORA, .r = 2, .alpha = 4, .target_linear = 1, .layers = one,
                             .nlayers = 1, .layers_int = 1, .pattern = layers, .npattern = 1, .pattern_str = 1};
    ax_diag_free(&d);
    ax_diag_init(&d);
    CHECK(build(&s, &c, &m, &d) == 0);
    CHECK(rt_session_save(&s, dir2, 0, &d) == 0);
    j = load_json(dir2, "adapter_config.json");
    lt = json_object_get(j, "layers_to_transform");
    tm = json_object_get(j, "target_modules");
    CHECK(json_is_integer(lt) && json_integer_value(lt) == 1);
    CHECK(json_is_string(json_object_get(j, "layers_pattern")) && !strcmp(json_string_value(json_object_get(j, "layers_pattern")), "layers"));
    CHECK(json_is_array(tm) && json_array_size(tm) == 7); /* every linear of the one layer: names, as PEFT matches them */
    json_decref(j);
    rt_session_close(&s);
    free_batch(&b);
    ax_diag_free(&d);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    g_lora = (pass_lora_cfg){0};
}

/* ---- DoRA (peft_use_dora) ------------------------------------------------ */
/* The site of module `mod`'s magnitude: base weight W, A, B, m (NULL if absent). */
typedef struct dsite {
    rt_buf *W, *A, *B, *M;
} dsite;

static dsite dora_site(rt_session *s, const char *mod) {
    char n[256];
    dsite x;
    snprintf(n, sizeof n, "%s.weight", mod);
    x.W = rt_session_global(s, n);
    snprintf(n, sizeof n, "%s.lora_A.weight", mod);
    x.A = rt_session_global(s, n);
    snprintf(n, sizeof n, "%s.lora_B.weight", mod);
    x.B = rt_session_global(s, n);
    snprintf(n, sizeof n, "%s.lora_magnitude_vector", mod);
    x.M = rt_session_global(s, n);
    return x;
}

/* ||W + s B A||_row as the dora_norm op computes it */
static void site_norm(const dsite *x, double scaling, float *out) {
    int64_t N = x->W->type.dims[0], K = x->W->type.dims[1], r = x->A->type.dims[0];
    ck_dora_norm_f32(rt_f(x->W), rt_f(x->B), rt_f(x->A), out, N, K, r, (float)scaling);
}

/* Makes every magnitude differ from its row norm (g != 1) */
static void randomize_m(rt_session *s, uint32_t seed) {
    for (int g = 0; g < s->m->nglobals; g++) {
        if (!strstr(s->m->globals[g].name, ".lora_magnitude_vector") || s->m->globals[g].role != IR_ROLE_PARAM) continue;
        rt_buf *b = &s->st.globals[g];
        for (int64_t i = 0; i < b->numel; i++) {
            seed = seed * 1664525u + 1013904223u;
            rt_f(b)[i] *= 1.0f + ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.4f;
        }
    }
}

/* Gradients of A, B and m against central differences with the norm held
 * constant (PEFT detaches it): perturbing A or B moves the site's norm, so
 * m is scaled by new norm / old norm for that evaluation, which leaves
 * m / norm (all the forward sees of either) at the frozen value. */
static void dora_fd(double dropout) {
    ax_diag d;
    ax_diag_init(&d);
    fe_config c;
    fe_model m;
    make_model(&m, FE_ARCH_QWEN2); /* biases: DoRA's base product excludes them */
    make_cfg(&c, 2, 16, 1, 0);
    g_lora = lora(PASS_ADAPTER_LORA, dropout, 0);
    g_lora.dora = 1;
    rt_session s;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(count_globals(&s, ".lora_magnitude_vector", IR_ROLE_PARAM), 14);
    CHECK_EQ(count_globals(&s, ".lora_magnitude_vector", IR_ROLE_GRAD), 14);
    randomize_b(&s, 3);
    randomize_m(&s, 4);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 11);
    zero_grads(&s);
    loss_at(&s, &b, 5, &d);
    const double scaling = 8.0 / 4.0;
    const char *mods[] = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "model.layers.0.self_attn.v_proj",
                          "model.layers.1.mlp.gate_proj"};
    const char *which[] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"};
    float *gsnap[AX_ARRAY_LEN(mods)][3]; /* the loss evaluations below accumulate into the grads */
    int ndiff = 0;
    for (size_t k = 0; k < AX_ARRAY_LEN(mods); k++)
        for (int w = 0; w < 3; w++) {
            char gn[300];
            snprintf(gn, sizeof gn, "grad/%s.%s", mods[k], which[w]);
            rt_buf *g = rt_session_global(&s, gn);
            gsnap[k][w] = g ? malloc(sizeof(float) * (size_t)g->numel) : NULL;
            if (g) memcpy(gsnap[k][w], g->data, sizeof(float) * (size_t)g->numel);
        }
    for (size_t k = 0; k < AX_ARRAY_LEN(mods); k++)
        for (int w = 0; w < 3; w++) {
            char pn[256];
            snprintf(pn, sizeof pn, "%s.%s", mods[k], which[w]);
            rt_buf *p = rt_session_global(&s, pn);
            const float *g = gsnap[k][w];
            CHECK_MSG(p && g, "no %s or its gradient", pn);
            if (!p || !g) continue;
            dsite x = dora_site(&s, mods[k]);
            int64_t N = x.W->type.dims[0];
            float *n0 = malloc(sizeof(float) * (size_t)N), *n1 = malloc(sizeof(float) * (size_t)N),
                  *m0 = malloc(sizeof(float) * (size_t)N), *save = malloc(sizeof(float) * (size_t)p->numel);
            site_norm(&x, scaling, n0);
            memcpy(m0, x.M->data, sizeof(float) * (size_t)N);
            memcpy(save, p->data, sizeof(float) * (size_t)p->numel);
            double dot = 0, dot_full = 0, e = 1e-3;
            for (int sign = 1; sign >= -1; sign -= 2) {
                uint32_t sd = 99;
                for (int64_t i = 0; i < p->numel; i++) {
                    sd = sd * 1664525u + 1013904223u;
                    float r = (sd >> 31) ? 1.0f : -1.0f;
                    if (sign > 0) dot += (double)g[i] * r;
                    rt_f(p)[i] = save[i] + (float)(sign * e) * r;
                }
                double lf = w < 2 ? loss_at(&s, &b, 5, &d) : 0; /* the norm moving too: not PEFT's gradient */
                if (w < 2) { /* freeze the norm: m / norm as before */
                    site_norm(&x, scaling, n1);
                    for (int64_t i = 0; i < N; i++) rt_f(x.M)[i] = (float)((double)m0[i] * n1[i] / n0[i]);
                }
                double l = loss_at(&s, &b, 5, &d);
                memcpy(x.M->data, m0, sizeof(float) * (size_t)N);
                dot = sign > 0 ? dot - l / (2 * e) : dot + l / (2 * e);
                dot_full = sign > 0 ? dot_full - lf / (2 * e) : dot_full + lf / (2 * e);
            }
            memcpy(p->data, save, sizeof(float) * (size_t)p->numel);
            double g1 = 0;
            for (int64_t i = 0; i < p->numel; i++) g1 += fabs(g[i]);
            CHECK_MSG(g1 > 0, "%s: zero gradient", pn);
            CHECK_MSG(fabs(dot) <= 0.02 * g1 / sqrt((double)p->numel) + 2e-4,
                      "%s: autodiff - finite difference (norm detached) = %.3g", pn, dot);
            /* and the norm's own gradient is left out: the full finite difference differs */
            ndiff += w < 2 && fabs(dot_full) > 0.1 * g1 / sqrt((double)p->numel);
            free(n0), free(n1), free(m0), free(save), free(gsnap[k][w]);
        }
    CHECK_MSG(ndiff >= 4, "only %d of 8 A/B gradients differ from the norm-tracking finite difference", ndiff);
    free_batch(&b);
    rt_session_close(&s);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* Step 0 (B = 0, m = ||W||_row): the base model's loss, fp32 and bf16;
 * then it trains and the magnitudes move. */
static void dora_identity(int bf16, double dropout) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_QWEN2, 2, 16);
    c.bf16 = bf16;
    rt_session base, ad;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&base, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, dropout, bf16);
    g_lora.dora = 1;
    CHECK(build(&ad, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 21);
    double l_ad = loss_at(&ad, &b, 0, &d), l_base = loss_of(&base, &b, &d);
    CHECK_MSG(fabs(l_base - l_ad) <= 1e-6 * fabs(l_base), "DoRA step 0: base %.9g vs adapted %.9g (bf16 %d)", l_base, l_ad,
              bf16);
    rt_session_close(&base);
    rt_buf *mv = rt_session_global(&ad, "model.layers.1.self_attn.o_proj.lora_magnitude_vector");
    CHECK(mv != NULL);
    float m0 = mv ? rt_f(mv)[3] : 0;
    train_steps(&ad, &b, 4, &d);
    double l_after = loss_at(&ad, &b, 100, &d);
    CHECK_MSG(l_after < l_ad - 0.05, "DoRA bf16 %d: did not learn: %.4f -> %.4f", bf16, l_ad, l_after);
    CHECK_MSG(mv && rt_f(mv)[3] != m0, "the magnitude did not train");
    free_batch(&b);
    rt_session_close(&ad);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* QLoRA + DoRA: m starts as the norms of the dequantized NF4 rows, and the
 * step-0 loss is that of QLoRA without DoRA (B = 0 in both) bit for bit. */
static void dora_qlora_identity(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    rt_session q, qd;
    g_lora = lora(PASS_ADAPTER_QLORA, 0, 0);
    CHECK(build(&q, &c, &m, &d) == 0);
    g_lora.dora = 1;
    CHECK(build(&qd, &c, &m, &d) == 0);
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 8);
    double l0 = loss_of(&q, &b, &d), l1 = loss_of(&qd, &b, &d);
    CHECK_MSG(fabs(l0 - l1) <= 1e-6 * fabs(l0), "QLoRA %.9g vs QLoRA + DoRA %.9g at step 0", l0, l1);
    rt_buf *W = rt_session_global(&qd, "model.layers.0.mlp.up_proj.weight"),
           *am = rt_session_global(&qd, "model.layers.0.mlp.up_proj.weight.absmax"),
           *rm = rt_session_global(&qd, "model.layers.0.mlp.up_proj.weight.rowmax"),
           *M = rt_session_global(&qd, "model.layers.0.mlp.up_proj.lora_magnitude_vector");
    CHECK(W && am && rm && M);
    if (W && am && rm && M) {
        int64_t N = W->type.dims[0], K = W->type.dims[1];
        float *w = malloc(sizeof(float) * (size_t)(N * K));
        ck_dequant_nf4_f32(rt_f(W), rt_f(am), rt_f(rm), w, N, K);
        int ok = 1;
        for (int64_t i = 0; i < N; i++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)w[i * K + k] * w[i * K + k];
            ok &= rt_f(M)[i] == (float)sqrt(acc);
        }
        CHECK_MSG(ok, "QLoRA magnitudes are not the dequantized rows' norms");
        free(w);
    }
    free_batch(&b);
    rt_session_close(&q);
    rt_session_close(&qd);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

/* Saved as PEFT saves DoRA (lora_magnitude_vector keys, use_dora true);
 * lora_model_dir continues it bit for bit; PEFT's merge (W' = m / ||W +
 * s B A|| (W + s B A)) through rt_merge_lora gives the adapted loss; a
 * DoRA adapter for a config without DoRA is an error naming the key. */
static void dora_save_load_merge(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_QWEN3, 2, 16);
    char tmp[] = "/tmp/axo_test_dora_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char dir[600], base_dir[600], merged[600], cmd[700], path[700];
    snprintf(dir, sizeof dir, "%s/ad", tmp);
    snprintf(base_dir, sizeof base_dir, "%s/base", tmp);
    snprintf(merged, sizeof merged, "%s/merged", tmp);
    rt_session base, ad, ad2;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&base, &c, &m, &d) == 0);
    CHECK(rt_session_save(&base, base_dir, 0, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0, 0);
    g_lora.dora = 1;
    CHECK(build(&ad, &c, &m, &d) == 0);
    batch b, b2;
    make_batch(&b, 2, 16, m.vocab_size, 5);
    make_batch(&b2, 2, 16, m.vocab_size, 6);
    train_steps(&ad, &b, 3, &d);
    CHECK(rt_session_save(&ad, dir, 0, &d) == 0);
    ax_diag_print(&d, stderr);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rt_st_file f;
    CHECK(rt_st_open(path, &f, &d) == 0);
    CHECK_EQ(f.ntensors, 3 * 14);
    const rt_st_tensor *t = rt_st_find(&f, "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector");
    CHECK(t && t->rank == 1 && t->shape[0] == m.num_attention_heads * (m.hidden_size / m.num_attention_heads));
    rt_st_close(&f);
    json_t *j = load_json(dir, "adapter_config.json");
    CHECK(json_is_true(json_object_get(j, "use_dora")));
    json_decref(j);
    /* lora_model_dir: the same adapter, magnitudes included, bit for bit */
    g_lora.model_dir = dir;
    CHECK(build(&ad2, &c, &m, &d) == 0);
    int same = 1;
    for (int g = 0; g < ad.m->nglobals; g++)
        if (ir_attr_int(ad.m->globals[g].attrs, ad.m->globals[g].nattrs, "adapter", 0)) {
            rt_buf *y = rt_session_global(&ad2, ad.m->globals[g].name);
            same &= y && !memcmp(y->data, ad.st.globals[g].data, sizeof(float) * (size_t)y->numel);
        }
    CHECK_MSG(same, "lora_model_dir did not load the DoRA adapter back bit for bit");
    double l_ad = loss_at(&ad, &b2, 0, &d), l_ad2 = loss_at(&ad2, &b2, 0, &d);
    CHECK_MSG(l_ad == l_ad2, "continued %.9g vs saved %.9g", l_ad2, l_ad);
    rt_session_close(&ad2);
    /* a DoRA adapter into a config without DoRA */
    g_lora.dora = 0;
    CHECK(build(&ad2, &c, &m, &d) != 0 && strstr(d.entries[d.n - 1].msg, "peft_use_dora"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    /* merge-lora: the merged model computes the adapted loss */
    int nm = 0;
    CHECK(rt_merge_lora(dir, base_dir, merged, 0, &nm, &d) == 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(nm, 14);
    rt_session mg;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&mg, &c, &m, &d) == 0);
    CHECK(rt_session_init_weights(&mg, merged, &d) == 0);
    double l_m = loss_of(&mg, &b2, &d);
    CHECK_MSG(fabs(l_ad - l_m) <= 1e-5 * fabs(l_m), "DoRA adapted %.9g vs merged %.9g", l_ad, l_m);
    rt_session_close(&mg);
    free_batch(&b), free_batch(&b2);
    rt_session_close(&base);
    rt_session_close(&ad);
    ax_diag_free(&d);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    g_lora = (pass_lora_cfg){0};
}

/* peft_init_lora_weights: gaussian (A ~ normal(0, 1/r), B zeros) and false
 * (A and B keep nn.Linear's kaiming-uniform: B in +-1/sqrt(r), so the
 * adapter moves the model from step 0); adapter_config.json says which. */
static void init_kinds(void) {
    char tmp[] = "/tmp/axo_test_init_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    for (int kind = PASS_LORA_INIT_GAUSSIAN; kind <= PASS_LORA_INIT_FALSE; kind++) {
        ax_diag d;
        fe_config c;
        fe_model m;
        fixture(&d, &c, &m, FE_ARCH_LLAMA, 1, 8);
        g_lora = lora(PASS_ADAPTER_LORA, 0.0, 0); /* r 4 on every linear layer */
        g_lora.init = kind;
        rt_session s;
        CHECK(build(&s, &c, &m, &d) == 0);
        double sa = 0, sb = 0, maxb = 0;
        int64_t na = 0, nb = 0, nz = 0;
        for (int g = 0; g < s.m->nglobals; g++) {
            const char *nm = s.m->globals[g].name;
            const rt_buf *b = &s.st.globals[g];
            if (s.m->globals[g].role != IR_ROLE_PARAM) continue; /* not the gradients or moments */
            int a = strstr(nm, ".lora_A.") != NULL, bb = strstr(nm, ".lora_B.") != NULL;
            for (int64_t i = 0; (a || bb) && i < b->numel; i++) {
                double x = rt_f(b)[i];
                if (a) sa += x * x, na++;
                if (bb) sb += x * x, nb++, nz += x != 0, maxb = fabs(x) > maxb ? fabs(x) : maxb;
            }
        }
        CHECK(na > 1000 && nb > 1000);
        if (kind == PASS_LORA_INIT_GAUSSIAN) {
            double sd = sqrt(sa / (double)na);
            CHECK_MSG(fabs(sd - 0.25) < 0.025, "gaussian A: std %g, want 1/r = 0.25", sd);
            CHECK_EQ(nz, 0);
        } else {
            double sd = sqrt(sb / (double)nb);
            CHECK_MSG(nz == nb && maxb <= 0.5 && fabs(sd - 0.5 / sqrt(3.0)) < 0.03, "false: B std %g max %g, want "
                      "uniform(-1/sqrt(r), 1/sqrt(r))", sd, maxb);
        }
        char dir[600];
        snprintf(dir, sizeof dir, "%s/ad%d", tmp, kind);
        CHECK(rt_session_save(&s, dir, 0, &d) == 0);
        json_t *j = load_json(dir, "adapter_config.json"), *iw = json_object_get(j, "init_lora_weights");
        CHECK(kind == PASS_LORA_INIT_GAUSSIAN ? json_is_string(iw) && !strcmp(json_string_value(iw), "gaussian")
                                              : json_is_false(iw));
        json_decref(j);
        rt_session_close(&s);
        ax_diag_free(&d);
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    g_lora = (pass_lora_cfg){0};
}

static const char *const TOK_DELTA = "model.embed_tokens.token_adapter.trainable_tokens_delta";

static void trainable_tokens(fe_arch arch, int bf16, int flce) {
    static const int64_t toks[] = {3, 10, 17, 40};
    g_flce = flce;
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, arch, 2, 16);
    c.bf16 = bf16;
    batch b;
    make_batch(&b, 2, 16, m.vocab_size, 5);
    for (int64_t i = 0; i < b.n; i++) b.ids[i] = b.ids[i] == 40 ? 41 : b.ids[i]; /* 40 only through a tied head */
    b.ids[1] = 3, b.ids[6] = 10, b.ids[20] = 17, b.ids[21] = 17;
    rt_session full, s;
    g_lora = (pass_lora_cfg){0};
    CHECK(build(&full, &c, &m, &d) == 0);
    g_lora = lora(PASS_ADAPTER_LORA, 0, bf16);
    g_lora.tokens = toks, g_lora.ntokens = 4;
    CHECK(build(&s, &c, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    const int64_t H = m.hidden_size;
    rt_buf *W = rt_session_global(&s, "model.embed_tokens.weight"), *D = rt_session_global(&s, TOK_DELTA);
    CHECK(W && D && D->numel == 4 * H);
    if (!W || !D) return;
    for (int i = 0; i < 4; i++) /* the rows as stored (bf16-rounded under bf16), as PEFT clones them */
        CHECK_MSG(!memcmp(rt_f(D) + i * H, rt_f(W) + toks[i] * H, sizeof(float) * (size_t)H), "delta row %d", i);
    zero_grads(&full), zero_grads(&s);
    double lf = loss_of(&full, &b, &d), lt = loss_of(&s, &b, &d);
    CHECK_MSG(lf == lt, "arch %d bf16 %d: step 0 %.9g vs the base model %.9g", (int)arch, bf16, lt, lf);
    if (!bf16) { /* delta's gradient: those rows of the full fine-tune's embedding gradient */
        rt_buf *gW = rt_session_global(&full, "grad/model.embed_tokens.weight");
        rt_buf *gD = rt_session_global(&s, "grad/model.embed_tokens.token_adapter.trainable_tokens_delta");
        CHECK(gW && gD);
        double worst = 0, scale = 0;
        for (int i = 0; gW && gD && i < 4; i++)
            for (int64_t j = 0; j < H; j++) {
                double x = rt_f(gD)[i * H + j], y = rt_f(gW)[toks[i] * H + j];
                worst = fmax(worst, fabs(x - y)), scale = fmax(scale, fabs(y));
            }
        CHECK_MSG(scale > 0 && worst <= 1e-6 * scale + 1e-9, "arch %d flce %d: delta's gradient differs from the "
                  "embedding's rows by %.3g (largest %.3g)", (int)arch, flce, worst, scale);
        /* tied head: every row has a gradient (the softmax's), 40 too; untied: 40 never occurs, so none */
        double g40 = 0;
        for (int64_t j = 0; gD && j < H; j++) g40 += fabs(rt_f(gD)[3 * H + j]);
        CHECK_MSG(m.tie_word_embeddings ? g40 > 0 : g40 == 0, "token 40's gradient %.3g with tie %d", g40,
                  m.tie_word_embeddings);
        /* finite differences, delta moved off the rows so that W' is not W */
        for (int64_t i = 0; i < D->numel; i++) rt_f(D)[i] += 0.05f * (float)((i * 7919) % 13 - 6) / 6.0f;
        zero_grads(&s);
        loss_of(&s, &b, &d);
        float *g = malloc(sizeof(float) * (size_t)D->numel);
        memcpy(g, gD->data, sizeof(float) * (size_t)D->numel);
        double g1, dot = fd_minus_dot(&s, &b, D, g, 17, s.micro_count, &g1, &d);
        CHECK_MSG(fabs(dot) <= 0.02 * g1 / sqrt((double)D->numel) + 2e-4, "arch %d: delta autodiff - finite difference = %.3g",
                  (int)arch, dot);
        free(g);
    }
    /* training moves delta and leaves every base weight as it was */
    float *w0 = malloc(sizeof(float) * (size_t)W->numel), *d0 = malloc(sizeof(float) * (size_t)D->numel);
    memcpy(w0, W->data, sizeof(float) * (size_t)W->numel);
    memcpy(d0, D->data, sizeof(float) * (size_t)D->numel);
    train_steps(&s, &b, 3, &d);
    CHECK(!memcmp(w0, W->data, sizeof(float) * (size_t)W->numel));
    CHECK_MSG(memcmp(d0, D->data, sizeof(float) * (size_t)D->numel) != 0, "delta did not train");
    free(w0), free(d0);
    rt_session_close(&full);
    rt_session_close(&s);
    free_batch(&b);
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
    g_flce = 0;
}

static void trainable_tokens_errors(void) {
    ax_diag d;
    fe_config c;
    fe_model m;
    fixture(&d, &c, &m, FE_ARCH_LLAMA, 2, 16);
    rt_session s;
    static const int64_t bad[] = {3, 64};
    g_lora = lora(PASS_ADAPTER_LORA, 0, 0);
    g_lora.tokens = bad, g_lora.ntokens = 2;
    CHECK(build(&s, &c, &m, &d) != 0);
    CHECK(ax_diag_contains(&d, "token id 64 is outside the vocabulary (64 rows of embed_tokens)"));
    ax_diag_free(&d);
    ax_diag_init(&d);
    static const int64_t ok[] = {3};
    static const char *const save[] = {"embed_tokens"};
    g_lora.tokens = ok, g_lora.ntokens = 1, g_lora.save_modules = save, g_lora.nsave = 1;
    CHECK(build(&s, &c, &m, &d) != 0);
    CHECK(ax_diag_contains(&d, "embed_tokens is in lora_modules_to_save too"));
    ax_diag_free(&d);
    g_lora = (pass_lora_cfg){0};
}

int main(void) {
    init_kinds();
    trainable_tokens(FE_ARCH_LLAMA, 0, 0);
    trainable_tokens(FE_ARCH_QWEN2, 0, 0);
    trainable_tokens(FE_ARCH_QWEN2, 0, 1);
    trainable_tokens(FE_ARCH_LLAMA, 1, 0);
    trainable_tokens(FE_ARCH_QWEN2, 1, 1);
    trainable_tokens_errors();
    dora_fd(0);
    dora_fd(0.25);
    dora_identity(0, 0);
    dora_identity(1, 0.1);
    dora_qlora_identity();
    dora_save_load_merge();
    loraplus_ratio_one(0);
    loraplus_ratio_one(1);
    loraplus_first_step(4, 0, 4, 0);
    loraplus_first_step(3, 0, 4, 0);
    loraplus_first_step(16, 1, 4, 0);
    loraplus_first_step(4, 0, 128, 1);
    loraplus_groups();
    layers_to_transform();
    fd_adapters();
    frozen_base_and_identity(0, 0);
    frozen_base_and_identity(1, 0);
    frozen_base_and_identity(1, 1);
    merge_equivalence();
    qlora_equals_lora_on_dequantized();
    dropout_masks();
    targets();
    memory_accounting();
    checkpointed_qlora_peak();
    dropout_peak();
    modules_to_save();
    return check_done();
}
