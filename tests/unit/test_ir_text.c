/* test_ir_text.c — the IR's text form (ir_print / ir_parse) and ir_verify.
 *
 *  - a module using every op of ops.def prints, parses and prints back to
 *    the same bytes, and matches the golden tests/ir/all_ops.ir;
 *  - every .ir file under tests/ir parses, verifies, and print(parse(text)) is a
 *    fixed point after one round;
 *  - float attributes keep their exact bits;
 *  - malformed text fails with "name:line:col" and a message saying what
 *    was expected and found; every prefix of a sample and a few thousand
 *    byte-mutations of it fail cleanly or parse (never crash);
 *  - the verifier rejects hand-corrupted modules, naming program, node, op.
 */
#include "ir/ir.h"
#include "tests/check.h"

#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef AXO_SOURCE_DIR
#define AXO_SOURCE_DIR "."
#endif

/* ---- helpers ---------------------------------------------------------------- */
static char *print_str(const ir_module *m) {
    ax_buf b = {0};
    ir_print(m, &b);
    return ax_buf_steal(&b);
}

/* "where: msg" of the first diagnostic, for messages in failures. */
static const char *first_diag(const ax_diag *d) {
    static char s[2048];
    if (!d->n) return "(no diagnostic)";
    snprintf(s, sizeof s, "%s: %s", d->entries[0].where, d->entries[0].msg);
    return s;
}

/* Parses, checks it parses, verifies, and that printing is a fixed point. */
static ir_module *parse_ok(const char *text, const char *name) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(text, strlen(text), name, &d);
    CHECK_MSG(m != NULL, "%s", first_diag(&d));
    if (m) {
        CHECK_MSG(ir_verify(m, &d) == 0, "%s", first_diag(&d));
        char *p1 = print_str(m);
        ir_module *m2 = ir_parse(p1, strlen(p1), name, &d);
        CHECK_MSG(m2 != NULL, "%s", first_diag(&d));
        if (m2) {
            char *p2 = print_str(m2);
            CHECK_STREQ(p1, p2);
            free(p2);
            ir_module_destroy(m2);
        }
        free(p1);
    }
    ax_diag_free(&d);
    return m;
}

/* The parse must fail with exactly one error at `loc` whose message
 * contains every '|'-separated word of `words`. */
static void parse_err(int line, const char *text, const char *loc, const char *words) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(text, strlen(text), "t.ir", &d);
    CHECK_MSG(m == NULL, "test at line %d parsed but should fail", line);
    ir_module_destroy(m);
    CHECK_MSG(d.nerrors == 1, "test at line %d: %d errors", line, d.nerrors);
    if (d.n) {
        CHECK_MSG(strcmp(d.entries[0].where, loc) == 0, "test at line %d: at %s, want %s (%s)", line, d.entries[0].where, loc,
                  d.entries[0].msg);
        char w[256];
        snprintf(w, sizeof w, "%s", words);
        for (char *tok = strtok(w, "|"); tok; tok = strtok(NULL, "|"))
            CHECK_MSG(strstr(d.entries[0].msg, tok), "test at line %d: \"%s\" lacks \"%s\"", line, d.entries[0].msg, tok);
    }
    ax_diag_free(&d);
}

/* The verifier must reject m with a message containing where and words. */
static void verify_err(int line, const ir_module *m, const char *where, const char *words) {
    ax_diag d;
    ax_diag_init(&d);
    CHECK_MSG(ir_verify(m, &d) == -1, "test at line %d: verifier accepted a broken module", line);
    int hit = 0;
    for (int i = 0; i < d.n && !hit; i++) {
        int ok = strstr(d.entries[i].where, where) != NULL;
        char w[256];
        snprintf(w, sizeof w, "%s", words);
        for (char *tok = strtok(w, "|"); tok && ok; tok = strtok(NULL, "|")) ok = strstr(d.entries[i].msg, tok) != NULL;
        hit = ok;
    }
    CHECK_MSG(hit, "test at line %d: no error at \"%s\" with \"%s\"; first: %s", line, where, words, first_diag(&d));
    ax_diag_free(&d);
}

static char *read_src(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", AXO_SOURCE_DIR, rel);
    ax_diag d;
    ax_diag_init(&d);
    char *s = ax_read_file(path, NULL, &d);
    CHECK_MSG(s != NULL, "%s", first_diag(&d));
    ax_diag_free(&d);
    return s;
}

/* ---- a module using every op ------------------------------------------------ */
static ir_module *build_all_ops(void) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    ir_module_set_attr(m, ir_as("model", "LlamaForCausalLM"));
    ir_module_set_attr(m, ir_ai("hidden", 8));
    ir_module_set_attr(m, ir_af("rope_theta", 10000.0));
    ir_module_set_attr(m, ir_af("rms_eps", 1e-5));
    ir_module_set_attr(m, ir_aints("layers", 3, (int64_t[]){1, 2, 3}));
    ir_module_set_attr(m, ir_aints("none", 0, NULL));
    ir_module_set_attr(m, ir_ai("min", INT64_MIN));
    ir_module_set_attr(m, ir_as("note", "tab\there \"q\" back\\slash\nnewline \x01 \x7f caf\xc3\xa9"));
    ir_mesh_add(m, "dp", 2);
    int embed = ir_global_add(m, "model.embed_tokens.weight", IR_TYPE(IR_F32, 32, 8), IR_ROLE_PARAM,
                              (ir_attr[]){ir_as("hf", "model.embed_tokens.weight"), ir_as("init", "normal"), ir_af("std", 0.02)}, 3);
    int norm = ir_global_add(m, "model.norm.weight", IR_TYPE(IR_F32, 8), IR_ROLE_PARAM, (ir_attr[]){ir_as("init", "ones")}, 1);
    int wq = ir_global_add(m, "model.layers.0/q-proj.weight", IR_TYPE(IR_F32, 8, 8), IR_ROLE_PARAM, NULL, 0);
    int bias = ir_global_add(m, "model.q.bias", IR_TYPE(IR_F32, 8), IR_ROLE_PARAM, NULL, 0);
    ir_type gemb = IR_TYPE(IR_F32, 32, 8);
    gemb.shard = (ir_shard){0, 0};
    int gembed = ir_global_add(m, "grad.model.embed_tokens.weight", gemb, IR_ROLE_GRAD, NULL, 0);
    int gwq = ir_global_add(m, "grad.wq", IR_TYPE(IR_F32, 8, 8), IR_ROLE_GRAD, NULL, 0);
    int wq4 = ir_global_add(m, "model.layers.0.mlp.up_proj.weight", IR_TYPE(IR_NF4, 8, 64), IR_ROLE_PARAM,
                            (ir_attr[]){ir_ai("trainable", 0)}, 1);
    int wq4a = ir_global_add(m, "model.layers.0.mlp.up_proj.weight.absmax", IR_TYPE(IR_U8, 8, 1), IR_ROLE_PARAM, NULL, 0);
    int wq4r = ir_global_add(m, "model.layers.0.mlp.up_proj.weight.rowmax", IR_TYPE(IR_F32, 8), IR_ROLE_PARAM, NULL, 0);
    int mwq = ir_global_add(m, "opt.m.wq", IR_TYPE(IR_F32, 8, 8), IR_ROLE_OPT, NULL, 0);
    int vwq = ir_global_add(m, "opt.v.wq", IR_TYPE(IR_F32, 8, 8), IR_ROLE_OPT, NULL, 0);
#define G(i) IR_GLOBAL_REF(i)

    ir_program *p = ir_program_add(m, "micro_step");
    ir_builder b;
    ir_builder_init(&b, m, p, &d);
    int32_t ids = ir_b_input(&b, "input_ids", IR_TYPE(IR_I32, 2, 4));
    int32_t tg = ir_b_input(&b, "targets", IR_TYPE(IR_I32, 2, 4));
    int32_t pos = ir_b_input(&b, "position_ids", IR_TYPE(IR_I32, 2, 4));
    int32_t seg = ir_b_input(&b, "segment_ids", IR_TYPE(IR_I32, 2, 4));
    int32_t x = ir_b(&b, IR_OP_embedding, IR_IN(G(embed), ids), IR_NOAT);
    int32_t h = ir_b(&b, IR_OP_rmsnorm, IR_IN(x, G(norm)), IR_AT(ir_af("eps", 1e-5)));
    int32_t q = ir_b(&b, IR_OP_matmul, IR_IN(h, G(wq)), IR_NOAT);
    int32_t qb = ir_b(&b, IR_OP_bias_add, IR_IN(q, G(bias)), IR_NOAT);
    int32_t a = ir_b(&b, IR_OP_add, IR_IN(qb, x), IR_NOAT);
    int32_t mu = ir_b(&b, IR_OP_mul, IR_IN(a, x), IR_NOAT);
    int32_t s0 = ir_b(&b, IR_OP_scale, IR_IN(mu), IR_AT(ir_af("alpha", 0.5)));
    int32_t s = ir_b(&b, IR_OP_sigmoid, IR_IN(s0), IR_NOAT);
    ir_b(&b, IR_OP_sigmoid_bwd, IR_IN(s, s0), IR_NOAT);
    int32_t c = ir_b(&b, IR_OP_convert, IR_IN(s), IR_AT(ir_as("to", "bf16")));
    int32_t c2 = ir_b(&b, IR_OP_convert, IR_IN(c), IR_AT(ir_as("to", "f32")));
    int32_t r = ir_b(&b, IR_OP_reshape, IR_IN(c2), IR_AT(ir_aints("shape", 4, (int64_t[]){2, 4, 2, 4})));
    int32_t ro = ir_b(&b, IR_OP_rope, IR_IN(r, pos),
                      IR_AT(ir_af("theta", 10000.0), ir_as("rope_type", "llama3"), ir_af("factor", 8.0), ir_ai("original_max", 8192)));
    int32_t att[2];
    ir_bn(&b, IR_OP_attention, IR_IN(ro, ro, ro, seg), IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1)), att);
    ir_bn(&b, IR_OP_attention, IR_IN(ro, ro, ro, seg), IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1), ir_ai("window", 3)), att);
    int32_t o = ir_b(&b, IR_OP_reshape, IR_IN(att[0]), IR_AT(ir_aints("shape", 3, (int64_t[]){2, 4, 8})));
    int32_t sw = ir_b(&b, IR_OP_swiglu, IR_IN(o, x), IR_NOAT);
    ir_b(&b, IR_OP_geglu, IR_IN(o, x), IR_NOAT);
    int32_t sl = ir_b(&b, IR_OP_slice, IR_IN(o), IR_AT(ir_ai("begin", 2), ir_ai("len", 4)));
    ir_b(&b, IR_OP_slice_bwd, IR_IN(sl), IR_AT(ir_ai("begin", 2), ir_ai("width", 8)));
    int32_t seed = ir_b_input(&b, "dropout_seed", ir_type_scalar(IR_I32));
    ir_b(&b, IR_OP_dropout, IR_IN(sw, seed), IR_AT(ir_af("p", 0.05), ir_ai("salt", 7)));
    ir_b(&b, IR_OP_dequant_nf4, IR_IN(G(wq4), G(wq4a), G(wq4r)), IR_AT(ir_as("to", "bf16")));
    int32_t logits = ir_b(&b, IR_OP_matmul, IR_IN(sw, G(embed)), IR_AT(ir_ai("tb", 1)));
    ir_b(&b, IR_OP_cross_entropy, IR_IN(logits, tg), IR_AT(ir_ai("ignore_index", -100)));
    int32_t one = ir_b_fill(&b, 1.0, ir_type_scalar(IR_F32));
    int32_t dl = ir_b(&b, IR_OP_cross_entropy_bwd, IR_IN(logits, tg, one), IR_AT(ir_ai("ignore_index", -100)));
    int32_t lce[3];
    ir_bn(&b, IR_OP_linear_cross_entropy, IR_IN(sw, G(embed), tg, one), IR_AT(ir_ai("ignore_index", -100), ir_ai("chunk", 3)),
          lce);
    /* the per-sequence forms and DPO (one pair: the two rows of tg) */
    int32_t rl[3], dl2[3], dpo[2];
    ir_bn(&b, IR_OP_linear_cross_entropy, IR_IN(sw, G(embed), tg, one),
          IR_AT(ir_ai("ignore_index", -100), ir_ai("chunk", 3), ir_ai("rows", 2), ir_ai("dh", 0), ir_ai("dw", 0)), rl);
    int32_t sref = ir_b_input(&b, "dpo_ref", IR_TYPE(IR_F32, 2));
    int32_t psc = ir_b_input(&b, "dpo_pair_scale", IR_TYPE(IR_F32, 1));
    ir_bn(&b, IR_OP_dpo_loss, IR_IN(rl[0], sref, psc), IR_AT(ir_af("beta", 0.1), ir_as("loss_type", "sigmoid")), dpo);
    ir_bn(&b, IR_OP_linear_cross_entropy, IR_IN(sw, G(embed), tg, dpo[1]), IR_AT(ir_ai("ignore_index", -100), ir_ai("chunk", 3)),
          dl2);
    int32_t dsw = ir_b(&b, IR_OP_matmul, IR_IN(dl, G(embed)), IR_NOAT);
    int32_t demb = ir_b(&b, IR_OP_embedding_bwd, IR_IN(ids, dsw), IR_AT(ir_ai("vocab", 32)));
    int32_t rb[2];
    ir_bn(&b, IR_OP_rmsnorm_bwd, IR_IN(x, G(norm), dsw), IR_AT(ir_af("eps", 1e-5)), rb);
    int32_t db = ir_b(&b, IR_OP_bias_grad, IR_IN(dsw), IR_NOAT);
    int32_t ab[3];
    ir_bn(&b, IR_OP_attention_bwd, IR_IN(ro, ro, ro, seg, att[0], att[1], ro), IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1)), ab);
    int32_t idx = ir_b_input(&b, "token_idx", IR_TYPE(IR_I32, 2, 4));
    int32_t kb = ir_b(&b, IR_OP_ring_shift, IR_IN(ro), IR_AT(ir_as("axis", "dp")));
    int32_t blk[2], mg[2], bb[3];
    ir_bn(&b, IR_OP_attention_blk, IR_IN(ro, kb, kb, seg, seg, idx, idx), IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1)), blk);
    ir_bn(&b, IR_OP_attn_merge, IR_IN(blk[0], blk[1], blk[0], blk[1]), IR_NOAT, mg);
    ir_bn(&b, IR_OP_attention_blk_bwd, IR_IN(ro, kb, kb, seg, seg, idx, idx, mg[0], mg[1], ro),
          IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1)), bb);
    int32_t sb[2];
    ir_bn(&b, IR_OP_swiglu_bwd, IR_IN(o, x, dsw), IR_NOAT, sb);
    ir_bn(&b, IR_OP_geglu_bwd, IR_IN(o, x, dsw), IR_NOAT, sb);
    int32_t dwq = ir_b(&b, IR_OP_matmul, IR_IN(h, dsw), IR_AT(ir_ai("ta", 1)));
    int32_t rs = ir_b(&b, IR_OP_reduce_scatter, IR_IN(demb), IR_AT(ir_as("axis", "dp"), ir_ai("dim", 0)));
    ir_b(&b, IR_OP_all_gather, IR_IN(rs), IR_AT(ir_as("axis", "dp")));
    int32_t ar = ir_b(&b, IR_OP_all_reduce, IR_IN(db), IR_AT(ir_as("axis", "dp")));
    ir_b(&b, IR_OP_acc, IR_IN(G(gembed), rs), IR_NOAT);
    ir_b(&b, IR_OP_acc, IR_IN(G(gwq), dwq), IR_NOAT);
    ir_b(&b, IR_OP_store, IR_IN(G(bias), ar), IR_NOAT);
    int32_t keys = ir_b_input(&b, "neftune_keys", IR_TYPE(IR_I32, 2, 4));
    ir_b(&b, IR_OP_neftune, IR_IN(x, keys), IR_AT(ir_af("mag", 0.3125), ir_ai("salt", 0)));
    ir_b(&b, IR_OP_mask_rows, IR_IN(dwq), IR_AT(ir_aints("rows", 4, (int64_t[]){0, 1, 3, 4})));
    int32_t tk = ir_b(&b, IR_OP_take_rows, IR_IN(dwq), IR_AT(ir_aints("rows", 2, (int64_t[]){3, 0})));
    ir_b(&b, IR_OP_index_copy, IR_IN(dwq, tk), IR_AT(ir_aints("rows", 2, (int64_t[]){1, 2})));
    int32_t dn = ir_b(&b, IR_OP_dora_norm, IR_IN(G(wq), G(wq), G(wq)), IR_AT(ir_af("scaling", 2.0)));
    int32_t dsc = ir_b(&b, IR_OP_dora_scale, IR_IN(x, x, G(bias), dn), IR_AT(ir_af("scaling", 2.0)));
    int32_t dsb[3];
    ir_bn(&b, IR_OP_dora_scale_bwd, IR_IN(x, x, G(bias), dn, dsc), IR_AT(ir_af("scaling", 2.0)), dsb);
    { /* mixture of experts: 3 experts of 2 wide, top 2, over h's rows; the experts stacked (runtime/train.h) */
        int wr = ir_global_add(m, "model.layers.0.mlp.gate.weight", IR_TYPE(IR_F32, 3, 8), IR_ROLE_PARAM,
                               (ir_attr[]){ir_ai("linear", 0)}, 1);
        int wgu = ir_global_add(m, "model.layers.0.mlp.experts.gate_up_proj", IR_TYPE(IR_F32, 3, 4, 8), IR_ROLE_PARAM,
                                (ir_attr[]){ir_as("hf", "model.layers.0.mlp.experts.*.gate_proj.weight"),
                                            ir_as("hf2", "model.layers.0.mlp.experts.*.up_proj.weight"), ir_ai("stack", 3)},
                                3);
        int wdn = ir_global_add(m, "model.layers.0.mlp.experts.down_proj", IR_TYPE(IR_F32, 3, 8, 2), IR_ROLE_PARAM,
                                (ir_attr[]){ir_as("hf", "model.layers.0.mlp.experts.*.down_proj.weight"), ir_ai("stack", 3)}, 2);
        int32_t lg = ir_b(&b, IR_OP_matmul, IR_IN(h, G(wr)), IR_AT(ir_ai("ta", 0), ir_ai("tb", 1)));
        int32_t rt[2], ff[2], fb[4];
        ir_bn(&b, IR_OP_moe_route, IR_IN(lg), IR_AT(ir_ai("k", 2), ir_ai("norm", 1)), rt);
        ir_bn(&b, IR_OP_moe_ffn, IR_IN(h, rt[1], rt[0], G(wgu), G(wdn)), IR_NOAT, ff);
        ir_bn(&b, IR_OP_moe_ffn_bwd, IR_IN(h, rt[1], rt[0], G(wgu), G(wdn), ff[1], ff[0]), IR_NOAT, fb);
        ir_b(&b, IR_OP_moe_route_bwd, IR_IN(lg, rt[1], fb[1]), IR_AT(ir_ai("k", 2), ir_ai("norm", 1)));
        /* the routers' load-balancing loss over h's 2 x 4 tokens */
        int32_t lbm = ir_b_input(&b, "aux_mask", IR_TYPE(IR_F32, 2, 4));
        int32_t lst = ir_b(&b, IR_OP_moe_lb_stats, IR_IN(lg, rt[1], lbm), IR_NOAT);
        int32_t lbl = ir_b(&b, IR_OP_moe_lb_loss, IR_IN(lst), IR_NOAT);
        int32_t lbd = ir_b(&b, IR_OP_moe_lb_loss_bwd, IR_IN(lst, lbl), IR_NOAT);
        ir_b(&b, IR_OP_moe_lb_stats_bwd, IR_IN(lg, lbm, lbd), IR_NOAT);
        /* PEFT's ParamWrapper LoRA on the stacked gate_up: r 2 for each of the 3 experts */
        int la = ir_global_add(m, "model.layers.0.mlp.experts.gate_up_proj.lora_A.weight", IR_TYPE(IR_F32, 6, 8),
                               IR_ROLE_PARAM, (ir_attr[]){ir_as("param_target", "gate_up_proj")}, 1);
        int lb = ir_global_add(m, "model.layers.0.mlp.experts.gate_up_proj.lora_B.weight", IR_TYPE(IR_F32, 4, 6),
                               IR_ROLE_PARAM, (ir_attr[]){ir_as("param_target", "gate_up_proj")}, 1);
        int32_t ld = ir_b(&b, IR_OP_lora_delta, IR_IN(G(wgu), G(la), G(lb)), IR_AT(ir_af("scale", 2.0)));
        int32_t lbw[2];
        ir_bn(&b, IR_OP_lora_delta_bwd, IR_IN(G(la), G(lb), ld), IR_AT(ir_af("scale", 2.0)), lbw);
        /* gpt-oss's experts (transposed, biased, interleaved) and attention sinks */
        int ogu = ir_global_add(m, "model.layers.1.mlp.experts.gate_up_proj", IR_TYPE(IR_F32, 3, 8, 4), IR_ROLE_PARAM, NULL, 0);
        int obgu = ir_global_add(m, "model.layers.1.mlp.experts.gate_up_proj_bias", IR_TYPE(IR_F32, 3, 4), IR_ROLE_PARAM, NULL, 0);
        int odn = ir_global_add(m, "model.layers.1.mlp.experts.down_proj", IR_TYPE(IR_F32, 3, 2, 8), IR_ROLE_PARAM, NULL, 0);
        int obd = ir_global_add(m, "model.layers.1.mlp.experts.down_proj_bias", IR_TYPE(IR_F32, 3, 8), IR_ROLE_PARAM, NULL, 0);
        int32_t of[2], ob[6];
        const ir_attr oat[] = {ir_af("alpha", 1.702), ir_af("limit", 7.0)};
        ir_bn(&b, IR_OP_moe_ffn_oss, IR_IN(h, rt[1], rt[0], G(ogu), G(obgu), G(odn), G(obd)), 2, oat, of);
        ir_bn(&b, IR_OP_moe_ffn_oss_bwd, IR_IN(h, rt[1], rt[0], G(ogu), G(obgu), G(odn), G(obd), of[1], of[0]), 2, oat, ob);
        int sk = ir_global_add(m, "model.layers.1.self_attn.sinks", IR_TYPE(IR_F32, 2), IR_ROLE_PARAM, NULL, 0);
        int32_t sa[2], sa2[2];
        ir_bn(&b, IR_OP_attention, IR_IN(ro, ro, ro, seg, G(sk)), IR_AT(ir_af("scale", 0.5), ir_ai("causal", 1)), sa);
        ir_bn(&b, IR_OP_attn_sink, IR_IN(sa[0], sa[1], G(sk)), IR_NOAT, sa2);
        ir_b(&b, IR_OP_attn_sink_bwd, IR_IN(G(sk), sa2[0], sa2[1], ro), IR_NOAT);
    }

    p = ir_program_add(m, "opt_step");
    ir_builder_init(&b, m, p, &d);
    int32_t lr = ir_b_input(&b, "lr", ir_type_scalar(IR_F32));
    int32_t step = ir_b_input(&b, "step", ir_type_scalar(IR_F32));
    int32_t ss = ir_b(&b, IR_OP_sumsq, IR_IN(G(gwq)), IR_NOAT);
    int32_t cc = ir_b(&b, IR_OP_clip_coef, IR_IN(ss), IR_AT(ir_af("max_norm", 1.0)));
    ir_b(&b, IR_OP_adamw, IR_IN(G(wq), G(gwq), G(mwq), G(vwq), lr, step, cc),
         IR_AT(ir_af("beta1", 0.9), ir_af("beta2", 0.95), ir_af("eps", 1e-8), ir_af("weight_decay", 0.1)));
    { /* 8-bit state: u8 moments, one f32 maximum per block of 256 */
        int w8 = ir_global_add(m, "w8", IR_TYPE(IR_BF16, 2, 256), IR_ROLE_PARAM, NULL, 0);
        int g8 = ir_global_add(m, "grad.w8", IR_TYPE(IR_BF16, 2, 256), IR_ROLE_GRAD, NULL, 0);
        int m8 = ir_global_add(m, "opt.m.w8", IR_TYPE(IR_U8, 2, 256), IR_ROLE_OPT, NULL, 0);
        int v8 = ir_global_add(m, "opt.v.w8", IR_TYPE(IR_U8, 2, 256), IR_ROLE_OPT, NULL, 0);
        int am = ir_global_add(m, "opt.mmax.w8", IR_TYPE(IR_F32, 2, 1), IR_ROLE_OPT, NULL, 0);
        int av = ir_global_add(m, "opt.vmax.w8", IR_TYPE(IR_F32, 2, 1), IR_ROLE_OPT, NULL, 0);
        ir_b(&b, IR_OP_adamw8, IR_IN(G(w8), G(g8), G(m8), G(v8), G(am), G(av), lr, step, cc),
             IR_AT(ir_af("beta1", 0.9), ir_af("beta2", 0.999), ir_af("eps", 1e-8), ir_af("weight_decay", 0.0), ir_ai("salt", 3)));
    }
    int32_t hg = ir_b(&b, IR_OP_to_host, IR_IN(G(gwq)), IR_NOAT);
    int32_t hs = ir_b(&b, IR_OP_sumsq, IR_IN(hg), IR_AT(ir_as("on", "host")));
    int32_t ds = ir_b(&b, IR_OP_to_device, IR_IN(hs), IR_NOAT);
    /* every instruction kind but bias_add (its operand is a row vector: see test_fuse.c) */
    ir_b(&b, IR_OP_fused, IR_IN(ss, ds, cc),
         IR_AT(ir_as("expr", "add(x0,x1):f32; scale(t0,0.5):f32; convert(t1):bf16; mul(t2,t2):bf16; swiglu(t3,t3):bf16; "
                             "convert(t4):f32; mul(t5,x2):f32")));
    ir_b(&b, IR_OP_zero, IR_IN(G(gwq)), IR_NOAT);
    ir_b(&b, IR_OP_zero, IR_IN(G(gembed)), IR_NOAT);
    ir_program_add(m, "empty");
#undef G
    CHECK_MSG(!d.nerrors, "%s", first_diag(&d));
    ax_diag_free(&d);
    return m;
}

static void test_all_ops(void) {
    ir_module *m = build_all_ops();
    int seen[IR_NOPS] = {0};
    for (int i = 0; i < m->nprograms; i++)
        for (int j = 0; j < m->programs[i]->nnodes; j++) seen[m->programs[i]->nodes[j].op] = 1;
    for (int op = 0; op < IR_NOPS; op++) CHECK_MSG(seen[op], "op %s is not covered by build_all_ops", ir_ops[op].name);

    ax_diag d;
    ax_diag_init(&d);
    CHECK_MSG(ir_verify(m, &d) == 0, "%s", first_diag(&d));
    char *p1 = print_str(m);
    ir_module *m2 = ir_parse(p1, strlen(p1), "all_ops", &d);
    CHECK_MSG(m2 != NULL, "%s", first_diag(&d));
    if (m2) {
        CHECK_MSG(ir_verify(m2, &d) == 0, "%s", first_diag(&d));
        char *p2 = print_str(m2);
        CHECK_STREQ(p1, p2);
        /* the parsed module is structurally the built one */
        CHECK_EQ(m2->nprograms, m->nprograms);
        CHECK_EQ(m2->nglobals, m->nglobals);
        for (int i = 0; i < m->nprograms && i < m2->nprograms; i++) {
            CHECK_EQ(m2->programs[i]->nvalues, m->programs[i]->nvalues);
            for (int v = 0; v < m->programs[i]->nvalues && v < m2->programs[i]->nvalues; v++)
                CHECK(m2->programs[i]->values[v].role == m->programs[i]->values[v].role &&
                      ir_type_equal(&m2->programs[i]->values[v].type, &m->programs[i]->values[v].type));
        }
        CHECK_STREQ(ir_module_attr(m2, "note")->s, ir_module_attr(m, "note")->s);
        CHECK_EQ(ir_module_attr(m2, "min")->i, INT64_MIN);
        free(p2);
        ir_module_destroy(m2);
    }
    /* golden text: the format is a contract */
    char *golden = read_src("tests/ir/all_ops.ir");
    if (golden) CHECK_MSG(strcmp(golden, p1) == 0, "printed text differs from tests/ir/all_ops.ir:\n%s", p1);
    free(golden);
    /* ir_print_program prints one program as ir_print does */
    ax_buf b = {0};
    ir_print_program(m, m->programs[1], &b);
    CHECK(strstr(p1, b.data) != NULL);
    CHECK(strncmp(b.data, "program opt_step {\n", 19) == 0);
    ax_buf_free(&b);
    free(p1);
    ax_diag_free(&d);
    ir_module_destroy(m);
}

/* ---- sample files ------------------------------------------------------------- */
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_sample_files(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ir", AXO_SOURCE_DIR);
    DIR *dp = opendir(dir);
    CHECK_MSG(dp != NULL, "cannot open %s", dir);
    if (!dp) return;
    char *names[256];
    int n = 0;
    for (struct dirent *e; (e = readdir(dp)) && n < 256;)
        if (ends_with(e->d_name, ".ir")) names[n++] = strdup(e->d_name);
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    CHECK(n >= 3);
    for (int i = 0; i < n; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "tests/ir/%s", names[i]);
        char *text = read_src(rel);
        if (text) ir_module_destroy(parse_ok(text, names[i]));
        free(text);
        free(names[i]);
    }
}

/* ---- floats ------------------------------------------------------------------------ */
static void test_floats(void) {
    double vals[] = {0.1, 1e-6, 1e300, -0.0, 0.0, INFINITY, -INFINITY, NAN, 2.0, -3.0, 1e16, 1e17, 123456789012345678.0,
                     5e-324, DBL_MIN, DBL_MAX, -DBL_MAX, 1.0 / 3.0, 0.02, 6.02214076e23, -1e-300};
    int n = (int)AX_ARRAY_LEN(vals);
    ir_module *m = ir_module_create();
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "f%d", i);
        ir_module_set_attr(m, ir_af(k, vals[i]));
    }
    char *p1 = print_str(m);
    CHECK_CONTAINS(p1, "attr f3 = -0.0\n");
    CHECK_CONTAINS(p1, "attr f5 = inf\n");
    CHECK_CONTAINS(p1, "attr f6 = -inf\n");
    CHECK_CONTAINS(p1, "attr f7 = nan\n");
    CHECK_CONTAINS(p1, "attr f8 = 2.0\n");
    CHECK_CONTAINS(p1, "attr f10 = 10000000000000000.0\n");
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m2 = ir_parse(p1, strlen(p1), "floats", &d);
    CHECK_MSG(m2 != NULL, "%s", first_diag(&d));
    for (int i = 0; m2 && i < n; i++) {
        const ir_attr *a = &m2->attrs[i];
        CHECK_EQ(a->kind, IR_ATTR_FLOAT);
        if (isnan(vals[i]))
            CHECK(isnan(a->f));
        else
            CHECK_MSG(memcmp(&a->f, &vals[i], sizeof(double)) == 0, "f%d: %.17g read back as %.17g", i, vals[i], a->f);
    }
    if (m2) {
        char *p2 = print_str(m2);
        CHECK_STREQ(p1, p2);
        free(p2);
    }
    ir_module_destroy(m2);
    /* written forms the printer does not produce still read as floats */
    const char *t = "axo.ir 1\nattr a = 1.\nattr b = 1E3\nattr c = -2.5e+2\nattr d = 7\nattr e = 1e-400\n";
    m2 = ir_parse(t, strlen(t), "floats2", &d);
    CHECK_MSG(m2 != NULL, "%s", first_diag(&d));
    if (m2) {
        CHECK(m2->attrs[0].kind == IR_ATTR_FLOAT && m2->attrs[0].f == 1.0);
        CHECK(m2->attrs[1].kind == IR_ATTR_FLOAT && m2->attrs[1].f == 1000.0);
        CHECK(m2->attrs[2].kind == IR_ATTR_FLOAT && m2->attrs[2].f == -250.0);
        CHECK(m2->attrs[3].kind == IR_ATTR_INT && m2->attrs[3].i == 7);
        CHECK(m2->attrs[4].kind == IR_ATTR_FLOAT && m2->attrs[4].f == 0.0);
    }
    ir_module_destroy(m2);
    free(p1);
    /* a float list (longrope's factors): every value reads back bit for bit, the list stays floats even when its
     * values are whole numbers */
    ir_module *ml = ir_module_create();
    ir_module_set_attr(ml, ir_afloats("fl", n, vals));
    ir_module_set_attr(ml, ir_afloats("whole", 2, (double[]){1.0, 2.0}));
    p1 = print_str(ml);
    CHECK_CONTAINS(p1, "attr whole = [1.0, 2.0]\n");
    CHECK_CONTAINS(p1, "attr fl = [0.10000000000000001, 9.9999999999999995e-07, 1.0000000000000001e+300, -0.0, 0.0, inf, -inf, nan, 2.0,");
    m2 = ir_parse(p1, strlen(p1), "float list", &d);
    CHECK_MSG(m2 != NULL, "%s", first_diag(&d));
    if (m2) {
        const ir_attr *a = ir_module_attr(m2, "fl"), *w = ir_module_attr(m2, "whole");
        CHECK(a && a->kind == IR_ATTR_FLOATS && a->n == n && w && w->kind == IR_ATTR_FLOATS && w->n == 2);
        for (int i = 0; a && a->kind == IR_ATTR_FLOATS && i < n; i++)
            CHECK_MSG(isnan(vals[i]) ? isnan(a->floats[i]) : !memcmp(&a->floats[i], &vals[i], sizeof(double)),
                      "fl[%d]: %.17g read back as %.17g", i, vals[i], a->floats[i]);
        char *p2 = print_str(m2);
        CHECK_STREQ(p1, p2);
        free(p2);
    }
    ir_module_destroy(m2);
    free(p1);
    ir_module_destroy(ml);
    ax_diag_free(&d);
    ir_module_destroy(m);
}

/* ---- parse errors ------------------------------------------------------------------- */
#define PRE                                   \
    "axo.ir 1\n"                              \
    "mesh dp=2\n"                             \
    "global @w : f32[4,4] param\n"            \
    "global @g : f32[4,4]<dp:0> grad\n"       \
    "\n"                                      \
    "program p {\n"                           \
    "  %x = input() {name=\"x\"} : f32[2,4] input\n"
/* the line under test is line 8 */
#define BAD(line8) PRE line8 "\n}\n"

/* adamw / adamw8's optional last operand, the step's beta1 (lr_scheduler: one_cycle): f32[3], whole */
#define OPT_PRE                                                                                                  \
    "axo.ir 1\nmesh dp=2\nglobal @p : f32[8,256] param\nglobal @g : f32[8,256] grad\nglobal @m : f32[8,256] opt\n"  \
    "global @v : f32[8,256] opt\nglobal @qm : u8[8,256] opt\nglobal @qv : u8[8,256] opt\n"                          \
    "global @am : f32[8,1] opt\nglobal @av : f32[8,1] opt\nprogram opt_step {\n"                                   \
    "  %lr = input() {name=\"lr\"} : f32[] input\n  %st = input() {name=\"step\"} : f32[] input\n"                \
    "  %gs = input() {name=\"gs\"} : f32[] input\n"
#define AT "{beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.0, salt=0}"
static void test_beta1_operand(void) {
    ir_module_destroy(parse_ok(OPT_PRE "  %b = input() {name=\"beta1\"} : f32[3] input\n"
                                       "  adamw(@p, @g, @m, @v, %lr, %st, %gs, %b) " AT "\n"
                                       "  adamw8(@p, @g, @qm, @qv, @am, @av, %lr, %st, %gs, %b) " AT "\n}\n",
                               "beta1"));
    ir_module_destroy(parse_ok(OPT_PRE "  adamw(@p, @g, @m, @v, %lr, %st, %gs) " AT "\n}\n", "no beta1"));
    parse_err(__LINE__, OPT_PRE "  %b = input() {name=\"beta1\"} : f32[] input\n  adamw(@p, @g, @m, @v, %lr, %st, %gs, %b) " AT "\n}\n",
              "t.ir:16:3", "operand 7: expected the step's beta1 as f32[3] (three floats summing to it), found f32[]");
    parse_err(__LINE__, OPT_PRE "  %b = input() {name=\"beta1\"} : f32[3]<dp:0> input\n"
                                "  adamw8(@p, @g, @qm, @qv, @am, @av, %lr, %st, %gs, %b) " AT "\n}\n",
              "t.ir:16:3", "operand 9: expected the step's beta1 as f32[3]");
    parse_err(__LINE__, OPT_PRE "  adamw(@p, @g, @m, @v, %lr, %st, %gs, %lr, %lr) " AT "\n}\n", "t.ir:15:3",
              "adamw takes 7 or 8 operands, found 9");
    parse_err(__LINE__, OPT_PRE "  adamw(@p, @g, @m, @v, %lr, %st) " AT "\n}\n", "t.ir:15:3", "adamw takes 7 or 8 operands, found 6");
}
#undef AT

static void test_parse_errors(void) {
    /* the prelude itself is fine */
    ir_module_destroy(parse_ok(BAD("  %y = matmul(%x, @w) : f32[2,4] act"), "pre"));

    parse_err(__LINE__, BAD("  %y = add(%x, %z) : f32[2,4] act"), "t.ir:8:16", "undefined value|'%z'");
    parse_err(__LINE__, BAD("  %x = add(%x, %x) : f32[2,4] act"), "t.ir:8:3", "redefinition of %x|line 7");
    parse_err(__LINE__, BAD("  %y, %y = attention(%x, %x, %x, %x) {scale=1.0} : f32[2,4] act, f32[2] act"), "t.ir:8:7",
              "redefinition of %y");
    parse_err(__LINE__, BAD("  %y = frob(%x) : f32[2,4] act"), "t.ir:8:8", "unknown op|'frob'");
    /* attention's sliding window: a positive count of tokens, causal only */
    parse_err(__LINE__, BAD("  %y, %z = attention(%x, %x, %x, %x) {scale=1.0, window=-2} : f32[2,4] act, f32[2] act"),
              "t.ir:8:12", "window: expected 0 (none) or a positive token count, found -2");
    parse_err(__LINE__, BAD("  %y, %z = attention(%x, %x, %x, %x) {scale=1.0, causal=0, window=4} : f32[2,4] act, f32[2] act"),
              "t.ir:8:12", "sliding window needs causal attention");
    parse_err(__LINE__, BAD("  %y, %z = attention(%x, %x, %x, %x) {scale=1.0, window=4.5} : f32[2,4] act, f32[2] act"),
              "t.ir:8:12", "attribute 'window': expected int");
    /* lists: a float list's elements are all floats, an integer list's all integers */
    parse_err(__LINE__, BAD("  %y = scale(%x) {alpha=2.0, l=[1.0, 2]} : f32[2,4] act"), "t.ir:8:38", "expected a float in the list, found '2'");
    parse_err(__LINE__, BAD("  %y = scale(%x) {alpha=2.0, l=[1, 2.0]} : f32[2,4] act"), "t.ir:8:36", "expected an integer in the list");
    /* rope: an even rotary_dim within the head, longrope's two lists of rotary_dim / 2, the max position an i32
     * scalar */
#define ROPE_PRE PRE "  %q = input() {name=\"q\"} : f32[1,3,2,8] input\n  %p = input() {name=\"p\"} : i32[1,3] input\n"
    parse_err(__LINE__, ROPE_PRE "  %y = rope(%q, %p) {theta=1e4, rotary_dim=5} : f32[1,3,2,8] act\n}\n", "t.ir:10:8",
              "rotary_dim 5: expected an even count of dims, at most the head_dim 8");
    parse_err(__LINE__, ROPE_PRE "  %y = rope(%q, %p) {theta=1e4, rotary_dim=10} : f32[1,3,2,8] act\n}\n", "t.ir:10:8",
              "rotary_dim 10");
    parse_err(__LINE__, ROPE_PRE "  %y = rope(%q, %p) {theta=1e4, rope_type=\"longrope\", rotary_dim=4, short_factor=[1.0], "
                                 "long_factor=[1.0, 2.0]} : f32[1,3,2,8] act\n}\n",
              "t.ir:10:8", "longrope: expected short_factor and long_factor, 2 floats each");
    parse_err(__LINE__, ROPE_PRE "  %y = rope(%q, %p, %p) {theta=1e4} : f32[1,3,2,8] act\n}\n", "t.ir:10:8",
              "operand 2: expected the micro-batch's max position, an i32 scalar");
    ir_module_destroy(parse_ok(ROPE_PRE "  %m = input() {name=\"max_position\"} : i32[] input\n"
                                        "  %y = rope(%q, %p, %m) {theta=1e4, rope_type=\"longrope\", rotary_dim=4, "
                                        "short_factor=[1.0, 1.5], long_factor=[1.0, 2.0]} : f32[1,3,2,8] act\n}\n",
                               "longrope"));
#undef ROPE_PRE
    /* mask_rows: sorted, disjoint, non-empty [a, b) pairs within the rows */
    ir_module_destroy(parse_ok(BAD("  %y = mask_rows(%x) {rows=[0, 1]} : f32[2,4] act"), "mask_rows"));
    parse_err(__LINE__, BAD("  %y = mask_rows(%x) {rows=[0, 1, 1, 2]} : f32[2,4] act"), "t.ir:8:8", "pair 1 [1, 2) is not after");
    parse_err(__LINE__, BAD("  %y = mask_rows(%x) {rows=[1, 3]} : f32[2,4] act"), "t.ir:8:8", "past the 2 rows");
    parse_err(__LINE__, BAD("  %y = mask_rows(%x) {rows=[1, 1]} : f32[2,4] act"), "t.ir:8:8", "empty");
    parse_err(__LINE__, BAD("  %y = mask_rows(%x) {rows=[1]} : f32[2,4] act"), "t.ir:8:8", "expected [a, b) pairs");
    parse_err(__LINE__, BAD("  %y = mask_rows(%x) : f32[2,4] act"), "t.ir:8:8", "rows");
    /* index_copy / take_rows (trainable tokens): distinct rows in range, src one row per index in the table's dtype */
    ir_module_destroy(parse_ok(BAD("  %y = index_copy(%x, %x) {rows=[1, 0]} : f32[2,4] act"), "index_copy"));
    ir_module_destroy(parse_ok(BAD("  %y = take_rows(%x) {rows=[1]} : f32[1,4] act"), "take_rows"));
    parse_err(__LINE__, BAD("  %y = index_copy(%x, %x) {rows=[1]} : f32[2,4] act"), "t.ir:8:8", "one row per index");
    parse_err(__LINE__, BAD("  %y = index_copy(%x, %x) {rows=[1, 1]} : f32[2,4] act"), "t.ir:8:8", "rows[1]: 1 repeats rows[0]");
    parse_err(__LINE__, BAD("  %y = take_rows(%x) {rows=[2]} : f32[1,4] act"), "t.ir:8:8", "rows[0]: 2 is outside the 2 rows");
    parse_err(__LINE__, BAD("  %y = take_rows(%x) : f32[1,4] act"), "t.ir:8:8", "rows");
    parse_err(__LINE__, BAD("  %y = add(%x) : f32[2,4] act"), "t.ir:8:8", "add takes 2 operands, found 1");
    parse_err(__LINE__, BAD("  %y = add(%x, %x, %x) : f32[2,4] act"), "t.ir:8:8", "add takes 2 operands, found 3");
    parse_err(__LINE__, BAD("  %y, %z = add(%x, %x) : f32[2,4] act"), "t.ir:8:3", "add has 1 result, found 2");
    parse_err(__LINE__, BAD("  add(%x, %x)"), "t.ir:8:3", "add has 1 result, found 0");
    parse_err(__LINE__, BAD("  %y = matmul(%x, @nope) : f32[2,4] act"), "t.ir:8:19", "unknown global|'@nope'");
    parse_err(__LINE__, BAD("  %y = matmul(%x, @w) : f32[2,5] act"), "t.ir:8:25",
              "result 0 declared f32[2,5] but the shape rule gives f32[2,4]");
    parse_err(__LINE__, BAD("  %y = matmul(%x, @w) : f32[2,4] act, f32[2,4] act"), "t.ir:8:37", "matmul has 1 result type");
    parse_err(__LINE__, BAD("  %y = matmul(%x, %x) : f32[2,4] act"), "t.ir:8:8", "matmul:|contraction");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\"} : f32[2,4]<tp:0> input"), "t.ir:8:38", "mesh axis|dp|'tp'");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\"} : f32[2,4]<dp:2> input"), "t.ir:8:41", "split dimension|[0, 2)");
    parse_err(__LINE__, BAD("  %y = all_reduce(%x) {axis=\"tp\"} : f32[2,4] act"), "t.ir:8:8", "all_reduce:|\"tp\"|not a mesh axis");
    parse_err(__LINE__, BAD("  %y = all_reduce(%x) : f32[2,4] act"), "t.ir:8:8", "axis");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y} : f32[2,4] input"), "t.ir:8:22", "unterminated string");
    parse_err(__LINE__, PRE "  %y = input() {name=\"y", "t.ir:8:22", "unterminated string|end of the file");
    parse_err(__LINE__, BAD("  %y = input() {name=\"a\\qb\"} : f32[2,4] input"), "t.ir:8:24", "bad escape");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[2,4] act junk"), "t.ir:8:35", "expected end of line|'junk'");
    parse_err(__LINE__, BAD("  acc(@g, %x) junk"), "t.ir:8:15", "expected end of line|'junk'");
    parse_err(__LINE__, BAD("  acc(@g, %x) : f32[2,4] act"), "t.ir:8:15", "acc has no results");
    parse_err(__LINE__, BAD("  acc(%x, %x)"), "t.ir:8:7", "expected a global|operand 0");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[2,4] sideways"), "t.ir:8:31", "expected a role|'sideways'");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f64[2,4] act"), "t.ir:8:22", "expected a dtype|'f64'");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[2,4 act"), "t.ir:8:30", "expected ']'|'act'");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[1,1,1,1,1,1,1] act"), "t.ir:8:38", "rank exceeds 6");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[2,-4] act"), "t.ir:8:28", "dimension >= 0");
    parse_err(__LINE__, BAD("  %y = add(%x, %x) : f32[1048576,1048576,1048576] act"), "t.ir:8:22", "too large");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", n=99999999999999999999} : f32[2,4] input"), "t.ir:8:29",
              "out of range");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", n=-9223372036854775809} : f32[2,4] input"), "t.ir:8:29",
              "out of range");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", f=1e999} : f32[2,4] input"), "t.ir:8:29", "out of range");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", name=\"z\"} : f32[2,4] input"), "t.ir:8:27", "duplicate attribute");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", k=abc} : f32[2,4] input"), "t.ir:8:29", "attribute value|'abc'");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\", k=[1, x]} : f32[2,4] input"), "t.ir:8:33", "integer in the list");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\"} : f32[2,4] input $"), "t.ir:8:44", "unexpected character '$'");
    parse_err(__LINE__, BAD("  %y = input() {name=\"y\"} : f32[2,4] input \x01"), "t.ir:8:44", "unexpected byte 0x01");
    parse_err(__LINE__, BAD("  %y = reshape(%x) {shape=[1099511627776, 1099511627776]} : f32[2,4] act"), "t.ir:8:8", "reshape");
    parse_err(__LINE__, BAD("  % = add(%x, %x) : f32[2,4] act"), "t.ir:8:3", "value name after '%'");
    parse_err(__LINE__, PRE "  %y = add(%x, %x) : f32[2,4] act\n", "t.ir:9:1", "expected '}'|end of file");
    parse_err(__LINE__, PRE "}}\n", "t.ir:8:2", "expected end of line|'}'");
    /* top level */
    parse_err(__LINE__, "", "t.ir:1:1", "header 'axo.ir 1'|end of file");
    parse_err(__LINE__, "# just a comment\n\naxo.ir 2\n", "t.ir:3:8", "format version 1|found 2");
    parse_err(__LINE__, "axo.ir 1\nbogus\n", "t.ir:2:1", "expected 'attr', 'mesh', 'global' or 'program'|'bogus'");
    parse_err(__LINE__, "axo.ir 1\nmesh dp=2\nmesh sp=2\n", "t.ir:3:1", "duplicate 'mesh'|line 2");
    parse_err(__LINE__, "axo.ir 1\nmesh dp=2 dp=4\n", "t.ir:2:11", "duplicate mesh axis");
    parse_err(__LINE__, "axo.ir 1\nmesh dp=0\n", "t.ir:2:9", "size >= 1");
    parse_err(__LINE__, "axo.ir 1\nmesh a=1 b=1 c=1 d=1 e=1\n", "t.ir:2:22", "too many mesh axes");
    parse_err(__LINE__, "axo.ir 1\nattr a = 1\nattr a = 2\n", "t.ir:3:6", "duplicate module attribute");
    parse_err(__LINE__, "axo.ir 1\nattr a = \n", "t.ir:2:10", "attribute value|end of line");
    parse_err(__LINE__, "axo.ir 1\nglobal @a : f32[1] param\nglobal @a : f32[1] param\n", "t.ir:3:8",
              "redefinition of global|'@a'|line 2");
    parse_err(__LINE__, "axo.ir 1\nglobal @a : f32[1]<dp:0> param\n", "t.ir:2:20", "no mesh");
    parse_err(__LINE__, "axo.ir 1\nglobal @a : f32[1] param {x=1} extra\n", "t.ir:2:32", "end of line|'extra'");
    parse_err(__LINE__, "axo.ir 1\nprogram a {\n}\nprogram a {\n}\n", "t.ir:4:9", "duplicate program|line 2");
    parse_err(__LINE__, "axo.ir 1\nprogram a-b {\n}\n", "t.ir:2:9", "program name");
    parse_err(__LINE__, "axo.ir 1\nprogram a { %x = fill() {value=1.0} : f32[] temp\n}\n", "t.ir:2:13", "end of line");
}

/* Comments, blank lines, free indentation and non-numeric names parse; the
 * values are renumbered in order of definition. */
static void test_names_and_layout(void) {
    const char *t = "# leading comment\n"
                    "\n"
                    "axo.ir 1   # version\n"
                    "global @w : f32[4,4] param\n"
                    "program fwd {\n"
                    "\t%input_ids = input() {name = \"x\"} : f32[2,4] input\n"
                    "        %h   =   matmul( %input_ids ,@w )  :  f32[ 2 , 4 ]   act   # trailing\n"
                    "%9 = add(%h, %input_ids) {} : f32[2,4] act\n"
                    "}\n"
                    "program other {\n"
                    "  %h = input() {name=\"h\"} : f32[] input\n" /* names are per program */
                    "}";                                        /* no final newline */
    ir_module *m = parse_ok(t, "layout");
    if (m) {
        char *s = print_str(m);
        CHECK_STREQ(s, "axo.ir 1\n"
                       "global @w : f32[4,4] param\n"
                       "\n"
                       "program fwd {\n"
                       "  %0 = input() {name=\"x\"} : f32[2,4] input\n"
                       "  %1 = matmul(%0, @w) : f32[2,4] act\n"
                       "  %2 = add(%1, %0) : f32[2,4] act\n"
                       "}\n"
                       "\n"
                       "program other {\n"
                       "  %0 = input() {name=\"h\"} : f32[] input\n"
                       "}\n");
        free(s);
    }
    ir_module_destroy(m);
}

/* ---- robustness: every prefix, and byte mutations ----------------------------------------- */
static int parse_clean(const char *text, size_t len) {
    char *copy = malloc(len ? len : 1); /* exact size, no NUL: reading past len is caught by ASan */
    if (len) memcpy(copy, text, len);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(copy, len, "fuzz.ir", &d);
    int ok;
    if (m) {
        ok = d.nerrors == 0 && ir_verify(m, &d) == 0;
        /* whatever parsed prints and re-parses */
        char *s = print_str(m);
        ir_module *m2 = ir_parse(s, strlen(s), "fuzz2.ir", &d);
        ok = ok && m2 != NULL;
        ir_module_destroy(m2);
        free(s);
    } else {
        ok = d.nerrors == 1 && strncmp(d.entries[0].where, "fuzz.ir:", 8) == 0 && d.entries[0].msg[0];
    }
    if (!ok) fprintf(stderr, "unclean parse of %zu bytes: %s\n", len, first_diag(&d));
    ir_module_destroy(m);
    ax_diag_free(&d);
    free(copy);
    return ok;
}

static void test_robustness(void) {
    char *text = read_src("tests/ir/llama_block.ir");
    if (!text) return;
    size_t len = strlen(text);
    int bad = 0, parsed = 0;
    for (size_t n = 0; n <= len; n++) {
        bad += !parse_clean(text, n);
        /* a prefix parses only when it stops at the end of a complete item */
        ax_diag d;
        ax_diag_init(&d);
        ir_module *m = ir_parse(text, n, "x", &d);
        parsed += m != NULL;
        ir_module_destroy(m);
        ax_diag_free(&d);
    }
    CHECK_EQ(bad, 0);
    CHECK(parsed > 0);
    /* deterministic mutations: flip, insert, delete bytes */
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *buf = malloc(len + 64);
    static const char pool[] = "%@{}[]()<>,:=\"\\\n#-.0123456789e ax_\x01\xff";
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, text, len);
        size_t n = len;
        int k = 1 + it % 4;
        for (int j = 0; j < k; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(seed >> 33) % (n ? n : 1);
            char c = pool[(seed >> 20) % (sizeof pool - 1)];
            switch ((seed >> 10) % 3) {
            case 0: buf[at] = c; break;
            case 1:
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = c;
                n++;
                break;
            default:
                if (n) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
            }
        }
        bad += !parse_clean(buf, n);
    }
    CHECK_EQ(bad, 0);
    /* degenerate inputs */
    static const char *odd[] = {"axo.ir", "axo.ir 1\nprogram", "axo.ir 1\nprogram p {", "axo.ir 1\nprogram p {\n %",
                                "axo.ir 1\nattr k = [", "axo.ir 1\nattr k = [1,", "axo.ir 1\nattr k = \"\\",
                                "axo.ir 1\nattr k = \"\\x4", "axo.ir 1\nattr k = \"\\x00\"", "axo.ir 1\nglobal @",
                                "axo.ir 1\nglobal @a : f32[", "axo.ir 1\nglobal @a : f32[]<", "\xff\xfe\x00\x00",
                                "axo.ir 1\n@@@@@@@@", "axo.ir 1\nattr k = ------1", "axo.ir 1\nattr k = 1e", "axo.ir 1\nattr k = 1e+"};
    for (size_t i = 0; i < AX_ARRAY_LEN(odd); i++) {
        size_t n = strlen(odd[i]);
        if (i == 12) n = 4;
        CHECK_MSG(parse_clean(odd[i], n), "odd input %zu", i);
    }
    /* long garbage: deep brackets, a huge number, a long line */
    size_t big = 200000;
    char *g = malloc(big + 32);
    memcpy(g, "axo.ir 1\nattr k = ", 18);
    for (size_t i = 18; i < big; i++) g[i] = "[[[["[i % 4];
    CHECK(parse_clean(g, big));
    for (size_t i = 18; i < big; i++) g[i] = '9';
    CHECK(parse_clean(g, big));
    memcpy(g, "axo.ir 1\nattr k = 1.", 20);
    CHECK(parse_clean(g, big));
    free(g);
    free(buf);
    free(text);
}

/* ---- verifier ---------------------------------------------------------------------- */
static int find_node(const ir_program *p, ir_op op) {
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i].op == op) return i;
    return -1;
}

/* Adds (or replaces) attribute a of node n. */
static void set_node_attr(ir_module *m, ir_node *n, ir_attr a) {
    ir_attr *at = ax_arena_alloc(m->arena, sizeof(ir_attr) * (size_t)(n->nattrs + 1));
    int na = 0;
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].key, a.key) != 0) at[na++] = n->attrs[i];
    at[na++] = a;
    n->attrs = at;
    n->nattrs = na;
}

/* Placement: a node touches only the memory it runs in (docs/ir.md). */
static void test_verify_placement(void) {
    ir_module *m;
    ir_program *p;
    int ni;
    char where[128];
    ax_diag d;

    /* the module with its to_host -> host sumsq -> to_device chain verifies */
    m = build_all_ops();
    ax_diag_init(&d);
    CHECK_MSG(ir_verify(m, &d) == 0, "%s", first_diag(&d));
    ax_diag_free(&d);
    p = m->programs[1];
    ni = find_node(p, IR_OP_to_host);
    CHECK(ni >= 0 && ir_value_on_host(p, p->nodes[ni].out[0]) && ir_node_on_host(&p->nodes[ni + 1]) &&
          !ir_value_on_host(p, p->nodes[ni + 2].out[0]));
    ir_module_destroy(m);

    /* a device op reading a host global without to_device */
    m = build_all_ops();
    int wq = ir_global_find(m, "model.layers.0/q-proj.weight");
    ir_global_set_attr(m, wq, ir_as("place", "host"));
    p = m->programs[0];
    for (ni = 0; ni < p->nnodes && !(p->nodes[ni].op == IR_OP_matmul && p->nodes[ni].in[1] == IR_GLOBAL_REF(wq)); ni++) {
    }
    snprintf(where, sizeof where, "program micro_step, node %d (matmul)", ni);
    verify_err(__LINE__, m, where, "operand 1 reads @model.layers.0/q-proj.weight, placed on the host, from a device node|to_device");
    /* ... nor update it from the device (adamw writes it) */
    ni = find_node(m->programs[1], IR_OP_adamw);
    snprintf(where, sizeof where, "program opt_step, node %d (adamw)", ni);
    verify_err(__LINE__, m, where, "writes @model.layers.0/q-proj.weight from a device node");
    /* a copy makes the read legal */
    int32_t in[1] = {IR_GLOBAL_REF(wq)}, cp;
    ax_diag_init(&d);
    ir_program *q = ir_program_add(m, "copy_ok");
    CHECK(ir_node_add(m, q, IR_OP_to_device, in, 1, NULL, 0, NULL, NULL, &cp, &d) >= 0);
    ax_diag_free(&d);
    snprintf(where, sizeof where, "program copy_ok");
    ax_diag_init(&d);
    ir_verify(m, &d);
    for (int i = 0; i < d.n; i++) CHECK_MSG(!strstr(d.entries[i].where, "copy_ok"), "%s: %s", d.entries[i].where, d.entries[i].msg);
    ax_diag_free(&d);
    ir_module_destroy(m);

    /* a host node reading a device value, and a device node reading a host value */
    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_clip_coef);
    set_node_attr(m, &p->nodes[ni], ir_as("on", "host"));
    snprintf(where, sizeof where, "program opt_step, node %d (clip_coef)", ni);
    verify_err(__LINE__, m, where, "operand 0 reads %2, a device value, from a host (on=\"host\") node: copy it with to_host first");
    snprintf(where, sizeof where, "program opt_step, node %d (adamw)", find_node(p, IR_OP_adamw));
    verify_err(__LINE__, m, where, "operand 6 reads %3, a host value, from a device node: copy it with to_device first");
    ir_module_destroy(m);

    /* an effect op whose target is (wrongly) a value in the other memory:
     * both problems are reported, nothing is read out of bounds */
    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_zero);
    p->nodes[ni].in[0] = 5; /* %5: the host sumsq */
    snprintf(where, sizeof where, "program opt_step, node %d (zero)", ni);
    verify_err(__LINE__, m, where, "operand 0 must be a global");
    verify_err(__LINE__, m, where, "operand 0 reads %5, a host value, from a device node");
    ir_module_destroy(m);

    /* copies go one way: to_host of a host value */
    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_to_device);
    p->nodes[ni].op = IR_OP_to_host;
    snprintf(where, sizeof where, "program opt_step, node %d (to_host)", ni);
    verify_err(__LINE__, m, where, "a host value: to_host copies device memory to the host");
    p->nodes[ni].op = IR_OP_to_device;
    set_node_attr(m, &p->nodes[ni], ir_as("on", "host"));
    snprintf(where, sizeof where, "program opt_step, node %d (to_device)", ni);
    verify_err(__LINE__, m, where, "a copy takes no 'on' attribute");
    ir_module_destroy(m);

    /* collectives run on the device; `on` and `place` name a memory */
    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_all_reduce);
    set_node_attr(m, &p->nodes[ni], ir_as("on", "host"));
    snprintf(where, sizeof where, "program micro_step, node %d (all_reduce)", ni);
    verify_err(__LINE__, m, where, "collectives run on the device");
    set_node_attr(m, &p->nodes[ni], ir_as("on", "gpu"));
    verify_err(__LINE__, m, where, "attribute 'on' must be \"host\" or \"device\"");
    set_node_attr(m, &p->nodes[ni], ir_ai("on", 1));
    verify_err(__LINE__, m, where, "attribute 'on' must be");
    ir_global_set_attr(m, 0, ir_as("place", "cpu"));
    verify_err(__LINE__, m, "global @model.embed_tokens.weight", "attribute 'place' must be \"host\" or \"device\"");
    ir_module_destroy(m);

    /* the text form keeps placements: a printed host placement parses back */
    const char *t = "axo.ir 1\n"
                    "global @w : f32[4] param {place=\"host\"}\n"
                    "global @g : f32[4] grad\n"
                    "program opt_step {\n"
                    "  %g = to_host(@g) : f32[4] temp\n"
                    "  %s = sumsq(%g) {on=\"host\"} : f32[] act\n"
                    "  %w = to_device(@w) : f32[4] temp\n"
                    "  %n = sumsq(%w) : f32[] act\n"
                    "  store(@w, %g) {on=\"host\"}\n"
                    "}\n";
    ir_module_destroy(parse_ok(t, "placed"));
    /* and the same text with the store on the device fails to verify */
    char *bad = strdup(t);
    char *at = strstr(bad, "store(@w, %g) {on=\"host\"}");
    memset(at + 14, ' ', 11); /* blank out the attribute */
    ax_diag_init(&d);
    m = ir_parse(bad, strlen(bad), "placed", &d);
    CHECK(m != NULL);
    if (m) verify_err(__LINE__, m, "program opt_step, node 4 (store)", "writes @w from a device node");
    ir_module_destroy(m);
    ax_diag_free(&d);
    free(bad);
}

static void test_verify(void) {
    ir_module *m;
    ir_program *p;
    ir_node *n;
    int ni;

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_add);
    p->nodes[ni].in[1] = 999;
    char where[128];
    snprintf(where, sizeof where, "program micro_step, node %d (add)", ni);
    verify_err(__LINE__, m, where, "operand 1 refers to %999");
    p->nodes[ni].in[1] = IR_GLOBAL_REF(77);
    verify_err(__LINE__, m, where, "operand 1 refers to global #77");
    p->nodes[ni].in[1] = p->nvalues - 1; /* defined later */
    verify_err(__LINE__, m, where, "before its definition");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_sumsq);
    p->nodes[ni].nout = 0;
    snprintf(where, sizeof where, "program opt_step, node %d (sumsq)", ni);
    verify_err(__LINE__, m, where, "has 0 results, the op table says 1");
    verify_err(__LINE__, m, "program opt_step, value %", "no node defines it");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_zero);
    p->nodes[ni].nin = 2;
    snprintf(where, sizeof where, "program opt_step, node %d (zero)", ni);
    verify_err(__LINE__, m, where, "has 2 operands, the op table says 1");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_acc);
    n = &p->nodes[ni];
    n->in[0] = n->in[1]; /* a value, not a global */
    snprintf(where, sizeof where, "program micro_step, node %d (acc)", ni);
    verify_err(__LINE__, m, where, "operand 0 must be a global");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[1];
    ni = find_node(p, IR_OP_adamw);
    p->nodes[ni].in[3] = p->nodes[ni].in[4];
    snprintf(where, sizeof where, "program opt_step, node %d (adamw)", ni);
    verify_err(__LINE__, m, where, "operand 3 must be a global");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_bias_grad);
    p->values[p->nodes[ni].out[0]].type.dims[0] = 9;
    snprintf(where, sizeof where, "program micro_step, node %d (bias_grad)", ni);
    verify_err(__LINE__, m, where, "result 0 declared f32[9] but the shape rule gives f32[8]");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_embedding);
    p->values[p->nodes[ni].out[0]].type.dtype = IR_BF16;
    snprintf(where, sizeof where, "program micro_step, node %d (embedding)", ni);
    verify_err(__LINE__, m, where, "declared bf16[2,4,8] but the shape rule gives f32[2,4,8]");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_input);
    p->values[p->nodes[ni].out[0]].type.rank = 9;
    verify_err(__LINE__, m, "program micro_step, value %0", "invalid rank");
    ir_module_destroy(m);

    m = build_all_ops();
    m->globals[1].name = m->globals[0].name;
    verify_err(__LINE__, m, "global @model.embed_tokens.weight", "duplicate global name");
    m->globals[1].name = "bad name!";
    verify_err(__LINE__, m, "global @bad name!", "invalid global name");
    ir_module_destroy(m);

    m = build_all_ops();
    m->programs[1]->name = m->programs[0]->name;
    verify_err(__LINE__, m, "program micro_step", "duplicate program name");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_all_reduce);
    p->nodes[ni].nattrs = 0;
    snprintf(where, sizeof where, "program micro_step, node %d (all_reduce)", ni);
    verify_err(__LINE__, m, where, "without an 'axis'");
    p->nodes[ni].attrs = ax_arena_alloc(m->arena, sizeof(ir_attr));
    p->nodes[ni].attrs[0] = ir_as("axis", "tp");
    p->nodes[ni].nattrs = 1;
    verify_err(__LINE__, m, where, "\"tp\" is not a mesh axis");
    ir_module_destroy(m);

    m = build_all_ops();
    m->nmesh = 0; /* the dp axis disappears: collectives and split types fail */
    verify_err(__LINE__, m, "global @grad.model.embed_tokens.weight", "mesh axis that does not exist");
    verify_err(__LINE__, m, "(all_reduce)", "not a mesh axis");
    p = m->programs[0];
    snprintf(where, sizeof where, "program micro_step, value %%%d", p->nodes[find_node(p, IR_OP_reduce_scatter)].out[0]);
    verify_err(__LINE__, m, where, "mesh axis that does not exist");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_convert);
    p->nodes[ni].attrs[0].s = NULL; /* must not reach the shape rule */
    snprintf(where, sizeof where, "program micro_step, node %d (convert)", ni);
    verify_err(__LINE__, m, where, "attribute 'to' has an invalid value");
    p->nodes[ni].attrs[0].key = "bad key";
    verify_err(__LINE__, m, where, "invalid name \"bad key\"");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_matmul);
    p->values[p->nodes[ni].out[0]].node = 0;
    snprintf(where, sizeof where, "program micro_step, node %d (matmul)", ni);
    verify_err(__LINE__, m, where, "producer is recorded as node 0");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    ni = find_node(p, IR_OP_mul);
    p->nodes[ni].out[0] = p->nodes[ni - 1].out[0];
    snprintf(where, sizeof where, "program micro_step, node %d (mul)", ni);
    verify_err(__LINE__, m, where, "redefines");
    ir_module_destroy(m);

    m = build_all_ops();
    p = m->programs[0];
    p->nodes[3].op = (ir_op)1000;
    verify_err(__LINE__, m, "program micro_step, node 3 (?)", "unknown op id 1000");
    /* the printer does not crash on it either, and the parser rejects its text */
    char *s = print_str(m);
    CHECK_CONTAINS(s, "<bad op 1000>");
    ax_diag d;
    ax_diag_init(&d);
    CHECK(ir_parse(s, strlen(s), "bad", &d) == NULL);
    ax_diag_free(&d);
    free(s);
    ir_module_destroy(m);
}

int main(void) {
    test_all_ops();
    test_sample_files();
    test_floats();
    test_parse_errors();
    test_beta1_operand();
    test_names_and_layout();
    test_robustness();
    test_verify();
    test_verify_placement();
    return check_done();
}
