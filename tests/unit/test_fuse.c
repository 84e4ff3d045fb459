/* test_fuse.c — elementwise fusion (passes/fuse.c) and the `fused` op:
 *  - the pass on IR text: which chains fuse and which do not (a multi-use
 *    intermediate, a collective in the chain, host vs device, another
 *    element count, a global written between, backward_start), the arena
 *    limit (a chain that would raise the shared arena's peak stays unfused);
 *  - hand-written `fused` IR: print/parse round trip, and bad exprs are
 *    verifier/parser errors with a message, never a crash;
 *  - the CPU interpreter computes the unfused chain's bits (f32 and bf16
 *    intermediates, scale, convert, bias_add, swiglu, mul);
 *  - training a tiny model fused vs unfused (f32 and bf16; 1 rank and 2 local
 *    ranks with ZeRO-3): losses and final weights bit-identical; the plans
 *    have fewer nodes and the activation peak did not grow;
 *  - the quickstart config compiled with and without --no-fuse: fewer nodes,
 *    a different plan-cache key, same activation peak. */
#include "codegen/compile.h"
#include "frontend/lower.h"
#include "ir/planfile.h"
#include "passes/passes.h"
#include "runtime/launch.h"
#include "tests/check.h"
#include "tests/unit/ranks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ir_module *parse(const char *text, ax_diag *d) { return ir_parse(text, strlen(text), "t.ir", d); }

static int count_op(const ir_program *p, ir_op op) {
    int n = 0;
    for (int i = 0; i < p->nnodes; i++) n += p->nodes[i].op == op;
    return n;
}

static char *print_str(const ir_module *m) {
    ax_buf b = {0};
    ir_print(m, &b);
    return ax_buf_steal(&b);
}

/* ---- the pass on IR text ---------------------------------------------------------- */
static const char *chains =
    "axo.ir 1\n"
    "attr backward_start = 28\n"
    "mesh dp=2\n"
    "global @w : f32[4,8] param\n"
    "global @b : f32[8] param\n"
    "global @g : f32[4,8] grad\n"
    "global @hg : f32[4,8] grad {place=\"host\"}\n"
    "program micro_step {\n"
    "  %a = input() {name=\"a\"} : f32[4,8] input\n"
    "  %b = input() {name=\"b\"} : f32[4,8] input\n"
    "  %c = input() {name=\"c\"} : f32[4,8] input\n"
    "  # 3 nodes -> 1, with a bias read by column and a bf16 intermediate\n"
    "  %t0 = add(%a, %b) : f32[4,8] act\n"
    "  %t1 = convert(%t0) {to=\"bf16\"} : bf16[4,8] act\n"
    "  %t2 = convert(%t1) {to=\"f32\"} : f32[4,8] act\n"
    "  %t3 = bias_add(%t2, @b) : f32[4,8] act\n"
    "  acc(@g, %t3)\n"
    "  # %u0 has two uses: it stays, the rest fuses\n"
    "  %u0 = add(%a, %c) : f32[4,8] act\n"
    "  %u1 = scale(%u0) {alpha=2.0} : f32[4,8] act\n"
    "  %u2 = add(%u1, %u0) : f32[4,8] act\n"
    "  acc(@g, %u2)\n"
    "  # a collective in the chain: nothing fuses across it\n"
    "  %v0 = add(%a, %b) : f32[4,8] act\n"
    "  %v1 = all_reduce(%v0) {axis=\"dp\"} : f32[4,8] act\n"
    "  %v2 = mul(%v1, %c) : f32[4,8] act\n"
    "  acc(@g, %v2)\n"
    "  # another element count: the [8] chain does not join the [4,8] one\n"
    "  %e0 = scale(@b) {alpha=3.0} : f32[8] act\n"
    "  %e1 = bias_add(%a, %e0) : f32[4,8] act\n"
    "  acc(@g, %e1)\n"
    "  # @w is written between: its read may not move past the store\n"
    "  %k0 = add(@w, %a) : f32[4,8] act\n"
    "  store(@w, %c)\n"
    "  %k1 = mul(%k0, %b) : f32[4,8] act\n"
    "  acc(@g, %k1)\n"
    "  # host: fuses into a host node (on=\"host\")\n"
    "  %h = to_host(%a) : f32[4,8] act\n"
    "  %h0 = add(%h, %h) {on=\"host\"} : f32[4,8] act\n"
    "  %h1 = scale(%h0) {alpha=0.5, on=\"host\"} : f32[4,8] act\n"
    "  acc(@hg, %h1) {on=\"host\"}\n"
    "  # backward_start (node 28) is between: no fusion across it\n"
    "  %s0 = add(%a, %b) : f32[4,8] act\n"
    "  %s1 = mul(%s0, %c) : f32[4,8] act\n"
    "  acc(@g, %s1)\n"
    "}\n";

static void test_pass(void) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = parse(chains, &d);
    CHECK_MSG(m != NULL, "%s", d.n ? d.entries[0].msg : "");
    if (!m) return;
    ir_program *p = m->programs[0];
    CHECK_EQ(p->nodes[28].op, IR_OP_mul); /* %s1: backward_start names it */
    int before = p->nnodes;
    CHECK(pass_fuse(m, &(pass_fuse_cfg){0}, &d) == 0);
    CHECK_MSG(ir_verify(m, &d) == 0, "%s", d.n ? d.entries[0].msg : "");
    char *t = print_str(m);
    CHECK_CONTAINS(t, "fused(%0, %1, @b) {expr=\"add(x0,x1):f32; convert(t0):bf16; convert(t1):f32; bias_add(t2,x2):f32\"}");
    CHECK_CONTAINS(t, "= add(%0, %2) : f32[4,8] act");                                 /* %u0 stays */
    CHECK_CONTAINS(t, "{expr=\"scale(x0,2):f32; add(t0,x0):f32\"}");                    /* %u1 + %u2 */
    CHECK_CONTAINS(t, "all_reduce(");
    CHECK_CONTAINS(t, "= scale(@b) {alpha=3.0} : f32[8] act");                         /* %e0 stays */
    CHECK_CONTAINS(t, "= add(@w, %0) : f32[4,8] act");                                  /* %k0 stays */
    CHECK_CONTAINS(t, "{expr=\"add(x0,x0):f32; scale(t0,0.5):f32\", on=\"host\"}");    /* host chain */
    CHECK_EQ(count_op(p, IR_OP_fused), 3);
    CHECK_EQ(count_op(p, IR_OP_mul), 3); /* %v2, %k1, %s1 */
    CHECK_EQ(p->nnodes, before - 5); /* 8 nodes -> 3 */
    /* backward_start still names %s1 (mul(%s0, %c)) */
    int64_t bs = ir_module_attr(m, "backward_start")->i;
    CHECK(bs >= 0 && bs < p->nnodes && p->nodes[bs].op == IR_OP_mul && p->nodes[bs - 1].op == IR_OP_add);
    CHECK_EQ(ir_module_attr(m, "fuse.micro_step.groups")->i, 3);
    CHECK_EQ(ir_module_attr(m, "fuse.micro_step.nodes")->i, 8);
    /* print -> parse -> print is the identity with fused nodes */
    ir_module *m2 = parse(t, &d);
    CHECK(m2 != NULL);
    if (m2) {
        char *t2 = print_str(m2);
        CHECK_STREQ(t, t2);
        free(t2);
        ir_module_destroy(m2);
    }
    free(t);
    ir_module_destroy(m);
    /* off: nothing changes */
    m = parse(chains, &d);
    CHECK(pass_fuse(m, &(pass_fuse_cfg){.off = 1}, &d) == 0);
    CHECK_EQ(m->programs[0]->nnodes, before);
    ir_module_destroy(m);
    ax_diag_free(&d);
}

/* Values made late (fill has no operands): unfused, add(add(a,b),c) never
 * holds more than 3 buffers; fused it holds a, b, c and the result. */
static const char *late =
    "axo.ir 1\n"
    "global @g : f32[64] grad\n"
    "program p {\n"
    "  %a = fill() {value=1.0} : f32[64] temp\n"
    "  %b = fill() {value=2.0} : f32[64] temp\n"
    "  %t0 = add(%a, %b) : f32[64] act\n"
    "  %c = fill() {value=3.0} : f32[64] temp\n"
    "  %t1 = add(%t0, %c) : f32[64] act\n"
    "  acc(@g, %t1)\n"
    "}\n";

static void test_arena_limit(void) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = parse(late, &d);
    CHECK_MSG(m && pass_fuse(m, NULL, &d) == 0, "%s", d.n ? d.entries[0].msg : "");
    if (m) CHECK_EQ(count_op(m->programs[0], IR_OP_fused), 0); /* 4 buffers > the plan's 3 */
    ir_module_destroy(m);
    /* with another program whose peak is 4 buffers, the shared arena has room */
    ax_buf t = {0};
    ax_buf_puts(&t, late);
    ax_buf_puts(&t, "global @g2 : f32[256] grad\nprogram q {\n  %x = fill() {value=1.0} : f32[256] temp\n  acc(@g2, %x)\n}\n");
    m = ir_parse(t.data, t.len, "t.ir", &d);
    CHECK(m && pass_fuse(m, NULL, &d) == 0);
    if (m) CHECK_EQ(count_op(m->programs[0], IR_OP_fused), 1);
    ir_module_destroy(m);
    ax_buf_free(&t);
    ax_diag_free(&d);
}

/* ---- hand-written fused IR ---------------------------------------------------------- */
static void test_text(void) {
    const char *head = "axo.ir 1\nmesh dp=2\nglobal @b : bf16[8] param\nprogram p {\n"
                       "  %x = input() {name=\"x\"} : bf16[4,8] input\n"
                       "  %y = input() {name=\"y\"} : f32[4,8] input\n"
                       "  %s = input() {name=\"s\"} : f32[4,8]<dp:0> input\n";
    struct {
        const char *node, *err;
    } cs[] = {
        {"  %r = fused(%x, @b) {expr=\"bias_add(x0,x1):bf16; swiglu(t0,x0):bf16; convert(t1):f32\"} : f32[4,8] act\n", NULL},
        {"  %r = fused(%x, %y) {expr=\" convert( x0 ) : f32 ;mul(t0,x1):f32\"} : f32[4,8] act\n", NULL},
        {"  %r = fused(%x) {expr=\"scale(x0,1e-3):bf16\"} : bf16[4,8] act\n", NULL},
        {"  %r = fused(%x) : bf16[4,8] act\n", "missing attribute 'expr'"},
        {"  %r = fused() {expr=\"scale(x0,2):bf16\"} : bf16[4,8] act\n", "fused takes 1 to 256 operands, found 0"},
        {"  %r = fused(%x) {expr=\"\"} : bf16[4,8] act\n", "expected add, mul, scale, convert, bias_add, swiglu or geglu"},
        {"  %r = fused(%x) {expr=\"frob(x0):bf16\"} : bf16[4,8] act\n", "found 'frob(x0)"},
        {"  %r = fused(%x) {expr=\"add(x0,x1):bf16\"} : bf16[4,8] act\n", "x1, but the node has 1 operand"},
        {"  %r = fused(%x) {expr=\"add(x0,t0):bf16\"} : bf16[4,8] act\n", "t0 is not an earlier instruction"},
        {"  %r = fused(%x, %y) {expr=\"convert(x0):f32\"} : f32[4,8] act\n", "does not use operand x1"},
        {"  %r = fused(%x) {expr=\"scale(x0):bf16\"} : bf16[4,8] act\n", "expected ',' before scale's factor"},
        {"  %r = fused(%x) {expr=\"scale(x0,zz):bf16\"} : bf16[4,8] act\n", "expected scale's factor"},
        {"  %r = fused(%x) {expr=\"convert(x0):i32\"} : bf16[4,8] act\n", "expected the dtype f32 or bf16"},
        {"  %r = fused(%x) {expr=\"convert(x0):f32 junk\"} : f32[4,8] act\n", "expected ';' or the end"},
        {"  %r = fused(%x, %y) {expr=\"add(x0,x1):bf16\"} : bf16[4,8] act\n", "operands 0 and 1 must have the same type"},
        {"  %r = fused(%x) {expr=\"scale(x0,2):f32\"} : f32[4,8] act\n", "written :f32 but its result is bf16[4,8]"},
        {"  %r = fused(%x) {expr=\"convert(x0):f32\"} : bf16[4,8] act\n", "declared bf16[4,8] but the shape rule gives f32[4,8]"},
        {"  %r = fused(%y, %s) {expr=\"add(x0,x1):f32\"} : f32[4,8] act\n", "is not laid out like the result"},
        {"  %r = fused(%x, @b) {expr=\"bias_add(x1,x0):bf16\"} : bf16[4,8] act\n", "operand 1: expected a bias"},
        {"  %r = fused(%x) {expr=\"convert(x0):f32; ;\"} : f32[4,8] act\n", "instruction 1: expected add"},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cs); i++) {
        ax_buf t = {0};
        ax_buf_puts(&t, head);
        ax_buf_puts(&t, cs[i].node);
        ax_buf_puts(&t, "}\n");
        ax_diag d;
        ax_diag_init(&d);
        ir_module *m = ir_parse(t.data, t.len, "t.ir", &d);
        if (!cs[i].err) {
            CHECK_MSG(m && ir_verify(m, &d) == 0, "case %zu: %s", i, d.n ? d.entries[0].msg : "");
            if (m) { /* round trip */
                char *p1 = print_str(m);
                ir_module *m2 = ir_parse(p1, strlen(p1), "p1", &d);
                char *p2 = m2 ? print_str(m2) : NULL;
                CHECK_STREQ(p1, p2);
                free(p1), free(p2);
                ir_module_destroy(m2);
            }
        } else {
            CHECK_MSG(!m && d.n && strstr(d.entries[0].msg, cs[i].err), "case %zu: expected \"%s\", got \"%s\"", i, cs[i].err,
                      d.n ? d.entries[0].msg : "(no error)");
        }
        ir_module_destroy(m);
        ax_diag_free(&d);
        ax_buf_free(&t);
    }
    /* the verifier (not only the parser) rejects a bad expr built in memory */
    ax_diag d;
    ax_diag_init(&d);
    ax_buf t = {0};
    ax_buf_puts(&t, head);
    ax_buf_puts(&t, "  %r = fused(%x) {expr=\"scale(x0,2):bf16\"} : bf16[4,8] act\n}\n");
    ir_module *m = ir_parse(t.data, t.len, "t.ir", &d);
    CHECK(m != NULL);
    if (m) {
        ir_node *n = &m->programs[0]->nodes[3];
        n->attrs[0].s = "scale(x0,2):f32"; /* the arena owns the old string */
        CHECK(ir_verify(m, &d) == -1);
        CHECK_MSG(ax_diag_contains(&d, "expr instruction 0 (scale): written :f32"), "%s", d.n ? d.entries[d.n - 1].msg : "");
        n->nin = 0;
        CHECK(ir_verify(m, &d) == -1);
        CHECK(ax_diag_contains(&d, "has 0 operands, the op table says 1 to 256"));
    }
    ir_module_destroy(m);
    ax_buf_free(&t);
    ax_diag_free(&d);
}

/* ---- the interpreter computes the unfused bits ---------------------------------------- */
static rt_buf g_in[3];
static const rt_buf *in_fn(void *ctx, const char *name) {
    (void)ctx;
    return name[0] >= 'a' && name[0] <= 'c' ? &g_in[name[0] - 'a'] : NULL;
}

static void test_interpreter(void) {
    const char *text = "axo.ir 1\n"
                       "global @b : bf16[24] param\n"
                       "global @o : f32[5,24] act\n"
                       "program p {\n"
                       "  %a = input() {name=\"a\"} : bf16[5,24] input\n"
                       "  %b = input() {name=\"b\"} : bf16[5,24] input\n"
                       "  %c = input() {name=\"c\"} : f32[5,24] input\n"
                       "  %0 = mul(%a, %b) : bf16[5,24] act\n"
                       "  %1 = bias_add(%0, @b) : bf16[5,24] act\n"
                       "  %2 = swiglu(%1, %a) : bf16[5,24] act\n"
                       "  %3 = scale(%2) {alpha=0.3} : bf16[5,24] act\n"
                       "  %4 = convert(%3) {to=\"f32\"} : f32[5,24] act\n"
                       "  %5 = add(%4, %c) : f32[5,24] act\n"
                       "  %6 = mul(%5, %5) : f32[5,24] act\n"
                       "  store(@o, %6)\n"
                       "}\n";
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mu = parse(text, &d), *mf = parse(text, &d);
    CHECK(mu && mf && pass_fuse(mf, NULL, &d) == 0);
    if (!mu || !mf) return;
    CHECK_EQ(mf->programs[0]->nnodes, 3 + 1 + 1 + 1); /* inputs, %5 (two uses), fused %0-%4, fused %6, store */
    uint32_t s = 99;
    for (int k = 0; k < 3; k++) {
        rt_buf_alloc(&g_in[k], IR_TYPE(IR_F32, 5, 24));
        for (int64_t i = 0; i < g_in[k].numel; i++) {
            s = s * 1664525u + 1013904223u;
            float v = ((float)(s >> 8) / 16777216.0f - 0.5f) * 6.0f;
            rt_f(&g_in[k])[i] = k < 2 ? ax_round_bf16(v) : v;
        }
    }
    float out[2][120];
    ir_module *ms[2] = {mu, mf};
    for (int r = 0; r < 2; r++) {
        rt_state st = {0};
        rt_prog pr;
        CHECK(rt_state_init(&st, ms[r], &d) == 0);
        for (int i = 0; i < 24; i++) rt_f(&st.globals[0])[i] = ax_round_bf16(0.1f * (float)i - 1.0f);
        CHECK(rt_prog_init(&pr, ms[r], ms[r]->programs[0], &d) == 0);
        CHECK(rt_prog_run(&pr, &st, in_fn, NULL, &d) == 0);
        memcpy(out[r], st.globals[1].data, sizeof out[r]);
        rt_prog_free(&pr);
        rt_state_free(&st);
    }
    CHECK_MSG(!memcmp(out[0], out[1], sizeof out[0]), "fused %.9g vs unfused %.9g", out[1][7], out[0][7]);
    ax_diag_print(&d, stderr);
    for (int k = 0; k < 3; k++) rt_buf_free(&g_in[k]);
    ir_module_destroy(mu);
    ir_module_destroy(mf);
    ax_diag_free(&d);
}

/* ---- training: fused == unfused, bit for bit ---------------------------------------- */
enum { B = 2, S = 16, STEPS = 3 };

typedef struct run {
    const char *text;
    const int32_t *ids, *tgt, *pos, *seg;
    double losses[STEPS];
    float *params;
    int64_t nparams;
    int failed;
} run;

static int g_fuse_off, g_bf16;
static int64_t g_peak; /* micro_step activation peak of the last plan */
static int g_nodes;    /* micro_step + opt_step nodes of the last plan */

static char *plan_text(int world, pass_shard_cfg sh) {
    fe_config c;
    fe_model m;
    memset(&m, 0, sizeof m);
    m.arch = FE_ARCH_QWEN2; /* biases: bias_add in the plan */
    m.arch_name = "Qwen2ForCausalLM";
    m.dir = "/nonexistent";
    m.hidden_size = 24, m.intermediate_size = 40, m.num_hidden_layers = 2;
    m.num_attention_heads = 4, m.num_key_value_heads = 2, m.head_dim = 6, m.vocab_size = 50;
    m.rope_theta = 10000, m.rms_norm_eps = 1e-6, m.tie_word_embeddings = 1, m.attention_bias = 1;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = B, c.sequence_len = S, c.gradient_accumulation_steps = 1, c.num_epochs = 1;
    c.sequence_parallel_degree = 1, c.seed = 3, c.output_dir = "/tmp", c.bf16 = g_bf16;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &m, world, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .max_grad_norm = 1.0,
                           .master_f32 = g_bf16},
                   .shard = sh, .sched = {.prefetch = sh.stage >= 3}, .fuse = {.off = g_fuse_off}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    g_peak = pc.mem.micro_peak;
    g_nodes = ir_program_find(mod, "micro_step")->nnodes + ir_program_find(mod, "opt_step")->nnodes;
    char *t = print_str(mod);
    ir_module_destroy(mod);
    return t;
}

static int rank_fn(rt_comm *c, void *arg) {
    run *R = arg;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m;
    rt_session s;
    rt_rank_coll rc;
    int ok = rank_open(R->text, c, &m, &s, &rc, &d);
    int nr = rt_comm_size(c), r = rt_comm_rank(c);
    rt_buf *ls = ok ? rt_session_global(&s, "stats/loss_sum") : NULL;
    for (int step = 0; ok && step < STEPS; step++) {
        int64_t base = (int64_t)(step % 2) * B * nr, ntgt = 0; /* batches 0, 1, 0: the loss falls on batch 0 */
        for (int64_t i = base * S; i < (base + B * nr) * S; i++) ntgt += R->tgt[i] != -100;
        rt_f(ls)[0] = 0;
        size_t off = (size_t)((base + r * B) * S);
        ok = rt_session_micro_step(&s, R->ids + off, R->tgt + off, R->pos + off, R->seg + off, (float)(1.0 / (double)ntgt),
                                   &d) == 0 &&
             rt_session_opt_step(&s, 2e-2f, step + 1, &d) == 0;
        double l = ok ? rt_f(ls)[0] : 0;
        ok = ok && rt_comm_all_reduce_sum_f64(c, &l, 1) == 0;
        if (r == 0) R->losses[step] = l / (double)ntgt;
    }
    ok = ok && gather_params(&s, &rc, c, &R->params, &R->nparams);
    return rank_done(ok, &R->failed, &d, c, m != NULL, &rc, &s);
}

static void train(run *R, int world, pass_shard_cfg sh, const int32_t *data[4]) {
    memset(R, 0, sizeof *R);
    char *text = plan_text(world, sh);
    R->text = text;
    R->ids = data[0], R->tgt = data[1], R->pos = data[2], R->seg = data[3];
    CHECK(rt_local_run(world, rank_fn, R) == 0);
    free(text);
}

static void test_training(void) {
    enum { ROWS = B * 2 * STEPS };
    static int32_t ids[ROWS * S], tgt[ROWS * S], pos[ROWS * S], seg[ROWS * S];
    uint32_t sd = 777;
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < S; t++) {
            int i = r * S + t, cut = 5 + r % 7;
            sd = sd * 1664525u + 1013904223u;
            ids[i] = (int32_t)(1 + (sd >> 10) % 49);
            seg[i] = t < cut ? 0 : 1;
            pos[i] = t < cut ? t : t - cut;
        }
    for (int i = 0; i < ROWS * S; i++) tgt[i] = (i + 1) % S == 0 || seg[i + 1] != seg[i] || i % 5 == 0 ? -100 : ids[i + 1];
    const int32_t *data[4] = {ids, tgt, pos, seg};
    struct {
        int world, bf16;
        pass_shard_cfg sh;
        const char *name;
    } cs[] = {{1, 0, {0}, "f32, 1 rank"},
              {1, 1, {0}, "bf16, 1 rank"},
              {2, 0, {3, 1, 0, 0}, "f32, 2 ranks ZeRO-3"},
              {2, 1, {3, 1, 0, 0}, "bf16, 2 ranks ZeRO-3"}};
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        run U, F;
        g_bf16 = cs[k].bf16;
        g_fuse_off = 1;
        train(&U, cs[k].world, cs[k].sh, data);
        int64_t peak_u = g_peak;
        int nodes_u = g_nodes;
        g_fuse_off = 0;
        train(&F, cs[k].world, cs[k].sh, data);
        CHECK_MSG(!U.failed && !F.failed && U.nparams == F.nparams && U.nparams > 0, "%s: a run failed", cs[k].name);
        if (!U.failed && !F.failed && U.nparams == F.nparams) {
            for (int st = 0; st < STEPS; st++)
                CHECK_MSG(U.losses[st] == F.losses[st], "%s: step %d loss %.17g fused, %.17g unfused", cs[k].name, st + 1,
                          F.losses[st], U.losses[st]);
            CHECK_MSG(!memcmp(U.params, F.params, sizeof(float) * (size_t)U.nparams),
                      "%s: final weights differ between fused and unfused", cs[k].name);
        }
        CHECK_MSG(U.losses[STEPS - 1] < U.losses[0], "%s: did not train", cs[k].name);
        CHECK_MSG(g_nodes < nodes_u, "%s: %d nodes fused, %d unfused", cs[k].name, g_nodes, nodes_u);
        CHECK_MSG(g_peak <= peak_u, "%s: activation peak %lld fused > %lld unfused", cs[k].name, (long long)g_peak,
                  (long long)peak_u);
        printf("  %s: %d -> %d nodes (micro_step + opt_step), activation peak %lld -> %lld bytes, bit-identical\n",
               cs[k].name, nodes_u, g_nodes, (long long)peak_u, (long long)g_peak);
        free(U.params);
        free(F.params);
    }
    g_bf16 = 0;
}

/* ---- the quickstart config through axoc's driver ----------------------------------- */
static int plan_nodes(const cg_result *r, const char *prog, int64_t *peak) {
    ax_plan_file pf;
    ax_diag d;
    ax_diag_init(&d);
    int n = -1;
    if (ax_plan_open_mem((const uint8_t *)r->plan.data, r->plan.len, "plan", &pf, &d) == 0) {
        const ax_plan_section *s = ax_plan_find(&pf, "IRTX");
        ir_module *m = s ? ir_parse((const char *)s->data, s->size, "IRTX", &d) : NULL;
        const ir_program *p = m ? ir_program_find(m, prog) : NULL;
        if (p) n = p->nnodes;
        char key[96];
        snprintf(key, sizeof key, "memplan.%s.peak_bytes", prog);
        if (m && peak) *peak = ir_attr_int(m->attrs, m->nattrs, key, -1);
        ir_module_destroy(m);
        ax_plan_close(&pf);
    }
    ax_diag_free(&d);
    return n;
}

static void test_quickstart(void) {
    cg_result r[2];
    for (int f = 0; f < 2; f++) {
        ax_diag d;
        ax_diag_init(&d);
        cg_options o = {.config_path = AXO_SOURCE_DIR "/configs/quickstart.yml", .no_fuse = f};
        CHECK_MSG(cg_compile(&o, &r[f], &d) == 0, "%s", d.n ? d.entries[0].msg : "");
        ax_diag_free(&d);
    }
    int64_t pk[2] = {0, 0};
    int micro[2], opt[2];
    for (int f = 0; f < 2; f++) {
        micro[f] = plan_nodes(&r[f], "micro_step", &pk[f]);
        opt[f] = plan_nodes(&r[f], "opt_step", NULL);
    }
    printf("  quickstart: micro_step %d -> %d nodes, opt_step %d -> %d nodes, activation peak %lld -> %lld bytes\n",
           micro[1], micro[0], opt[1], opt[0], (long long)pk[1], (long long)pk[0]);
    CHECK(micro[0] > 0 && micro[0] < micro[1]);
    CHECK(opt[0] > 0 && opt[0] < opt[1] - 15); /* the grad-norm sum: one node */
    CHECK(pk[0] > 0 && pk[0] <= pk[1]);
    CHECK(strcmp(r[0].key_hex, r[1].key_hex) != 0); /* --no-fuse is part of the plan cache key */
    CHECK_CONTAINS(r[0].summary, "axoc: fused: micro_step");
    CHECK(!strstr(r[1].summary, "fused"));
    cg_result_free(&r[0]);
    cg_result_free(&r[1]);
}

int main(void) {
    test_pass();
    test_arena_limit();
    test_text();
    test_interpreter();
    test_training();
    test_quickstart();
    return check_done();
}
