/* test_bucket.c — gradient buckets (passes/bucket.c, ir_bucket_run_end, the
 * CPU executor's packed calls):
 *  - the greedy assignment never passes the cap; a gradient larger than the
 *    cap is a bucket of its own; a new key (dtype, op, unit) opens a bucket;
 *  - on IR text: a chain dp reduction -> sp reduction -> store moves as a
 *    whole; a move that would change what a node reads is not made;
 *  - in a compiled plan (DDP by bytes, ZeRO-1/2 by elements, FSDP by unit)
 *    every gradient is reduced exactly once, in the order backward produces
 *    them, each bucket a run of consecutive collectives the executor makes
 *    one call of; the recorded plan equals memplan's figures; the IR text
 *    round-trips;
 *  - on 2 local ranks the executor makes exactly one communicator call per
 *    bucket, and the weights after two steps are bit-identical to one
 *    collective per gradient. */
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/launch.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 8 };

/* ---- the assignment rule --------------------------------------------------- */
static void test_assign(void) {
    int bk[16];
    const int64_t s1[] = {10, 20, 30, 100, 5, 5, 50};
    CHECK_EQ(pass_bucket_assign(s1, NULL, 7, 50, bk), 5);
    const int want1[] = {0, 0, 1, 2, 3, 3, 4}; /* 10+20 | 30 (60 > 50) | 100 alone | 5+5 | 50 */
    for (int i = 0; i < 7; i++) CHECK_MSG(bk[i] == want1[i], "item %d: bucket %d, expected %d", i, bk[i], want1[i]);
    const int64_t s2[] = {25, 25, 1};
    CHECK_EQ(pass_bucket_assign(s2, NULL, 3, 50, bk), 2); /* exactly the cap fits */
    CHECK(bk[0] == 0 && bk[1] == 0 && bk[2] == 1);
    const int64_t s3[] = {100, 200};
    CHECK_EQ(pass_bucket_assign(s3, NULL, 2, 50, bk), 2); /* two oversized: one each */
    CHECK_EQ(pass_bucket_assign(s1, NULL, 7, 0, bk), 1);  /* no cap */
    const int keys[] = {0, 0, 1, 1, 1, 0, 0};
    CHECK_EQ(pass_bucket_assign(s1, keys, 7, 0, bk), 3);
    CHECK(bk[1] == 0 && bk[2] == 1 && bk[4] == 1 && bk[5] == 2);
    CHECK_EQ(pass_bucket_assign(s1, NULL, 0, 50, bk), 0);
}

/* ---- the run rule on IR text ------------------------------------------------- */
static void test_runs(void) {
    const char *txt = "axo.ir 1\nmesh dp=2 sp=2\n"
                      "global @a : f32[4] grad\nglobal @b : f32[4] grad\nglobal @c : f32[4] grad\n"
                      "program p {\n"
                      "  %0 = all_reduce(@a) {axis=\"dp\", bucket=0} : f32[4] act\n"
                      "  %1 = all_reduce(@b) {axis=\"dp\", bucket=0} : f32[4] act\n"
                      "  %2 = all_reduce(%1) {axis=\"dp\", bucket=0} : f32[4] act\n"   /* reads %1: new run */
                      "  %3 = all_reduce(@c) {axis=\"sp\", bucket=0} : f32[4] act\n"   /* other axis */
                      "  %4 = all_reduce(@c) {axis=\"sp\", bucket=1} : f32[4] act\n"   /* other bucket */
                      "  %5 = reduce_scatter(@c) {axis=\"sp\", dim=0, bucket=1} : f32[4]<sp:0> act\n" /* other op */
                      "  %6 = all_reduce(@a) {axis=\"dp\"} : f32[4] act\n"
                      "  %7 = all_reduce(@b) {axis=\"dp\"} : f32[4] act\n"
                      "}\n";
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(txt, strlen(txt), "runs.ir", &d);
    CHECK(m && ir_verify(m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    if (!m) return;
    const ir_program *p = ir_program_find(m, "p");
    const int want[] = {2, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 8; i++) CHECK_MSG(ir_bucket_run_end(p, i) == want[i], "run from node %d ends at %d, expected %d", i,
                                          ir_bucket_run_end(p, i), want[i]);
    ir_module_destroy(m);
}

/* ---- the rewrite on IR text --------------------------------------------------------
 * micro_step produces the gradients in the order c, b, a; opt_step reduces
 * each over dp, then over sp (as the shard pass does with sequence
 * parallelism), then stores it. */
static const char *chain_head =
    "axo.ir 1\nmesh dp=2 sp=2\n"
    "global @grad/a : f32[4] grad\nglobal @grad/b : f32[4] grad\nglobal @grad/c : f32[4] grad\n"
    "program micro_step {\n"
    "  %0 = fill() {value=1.0} : f32[4] temp\n"
    "  acc(@grad/c, %0)\n  acc(@grad/b, %0)\n  acc(@grad/a, %0)\n"
    "}\n"
    "program opt_step {\n"
    "  %0 = all_reduce(@grad/a) {axis=\"dp\"} : f32[4] act\n"
    "  %1 = all_reduce(%0) {axis=\"sp\"} : f32[4] act\n"
    "  store(@grad/a, %1)\n";
static const char *chain_tail = /* after an optional node between the gradients */
    "  %2 = all_reduce(@grad/b) {axis=\"dp\"} : f32[4] act\n"
    "  %3 = all_reduce(%2) {axis=\"sp\"} : f32[4] act\n"
    "  store(@grad/b, %3)\n"
    "  %4 = all_reduce(@grad/c) {axis=\"dp\"} : f32[4] act\n"
    "  %5 = all_reduce(%4) {axis=\"sp\"} : f32[4] act\n"
    "  store(@grad/c, %5)\n"
    "}\n";

static ir_module *parse_chain(const char *between) {
    char txt[4096];
    snprintf(txt, sizeof txt, "%s%s%s", chain_head, between, chain_tail);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(txt, strlen(txt), "chain.ir", &d);
    CHECK(m && ir_verify(m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    return m;
}

static void test_rewrite_text(void) {
    /* cap 32 bytes: c + b (16 + 16) fill bucket 0, a is bucket 1 */
    ir_module *m = parse_chain("");
    if (!m) return;
    ax_diag d;
    ax_diag_init(&d);
    CHECK(pass_bucket_grads(m, &(pass_bucket_cfg){PASS_BUCKET_BYTES, 32}, &d) == 0);
    CHECK_MSG(d.n == 0, "unexpected diagnostics");
    CHECK(ir_verify(m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    const ir_program *p = ir_program_find(m, "opt_step");
    /* the dp reductions of c and b back to back (one call), then a's */
    const char *want[] = {"c", "b", "a"};
    int run0 = -1;
    for (int i = 0, k = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op != IR_OP_all_reduce || strcmp(ir_attr_str(n->attrs, n->nattrs, "axis", ""), "dp")) continue;
        const char *g = m->globals[IR_REF_GLOBAL(n->in[0])].name + 5;
        CHECK_MSG(k < 3 && !strcmp(g, want[k]), "dp reduction %d is of %s", k, g);
        CHECK_EQ(ir_attr_int(n->attrs, n->nattrs, "bucket", -1), k < 2 ? 0 : 1);
        if (k == 0) run0 = i;
        k++;
    }
    CHECK(run0 >= 0 && ir_bucket_run_end(p, run0) == run0 + 2);
    /* each gradient: dp reduction, then sp reduction, then its store */
    for (int g = 0; g < m->nglobals; g++) {
        int at_dp = -1, at_sp = -1, at_store = -1;
        for (int i = 0; i < p->nnodes; i++) {
            const ir_node *n = &p->nodes[i];
            if (n->op == IR_OP_all_reduce && n->in[0] == IR_GLOBAL_REF(g)) at_dp = i;
            if (n->op == IR_OP_store && n->in[0] == IR_GLOBAL_REF(g)) at_store = i;
            if (n->op == IR_OP_all_reduce && at_dp >= 0 && n->in[0] == p->nodes[at_dp].out[0]) at_sp = i;
        }
        CHECK_MSG(at_dp >= 0 && at_dp < at_sp && at_sp < at_store, "%s: dp %d, sp %d, store %d", m->globals[g].name, at_dp,
                  at_sp, at_store);
    }
    ir_module_destroy(m);

    /* a node that reads a's stored gradient before b is reduced: moving
     * a's store behind the bucket would change what it reads, so the
     * program stays as it is (with a warning) */
    m = parse_chain("  %9 = sumsq(@grad/a) : f32[] act\n");
    if (!m) return;
    ax_buf before = {0}, after = {0};
    ir_print_program(m, ir_program_find(m, "opt_step"), &before);
    ax_diag_init(&d);
    CHECK(pass_bucket_grads(m, &(pass_bucket_cfg){PASS_BUCKET_BYTES, 1000}, &d) == 0);
    CHECK(ax_diag_contains(&d, "left one collective per gradient"));
    ir_print_program(m, ir_program_find(m, "opt_step"), &after);
    CHECK_STREQ(before.data, after.data);
    CHECK(ir_verify(m, &d) == 0);
    ax_diag_free(&d);
    ax_buf_free(&before);
    ax_buf_free(&after);
    ir_module_destroy(m);
}

/* ---- compiled plans ------------------------------------------------------------ */
static void make(fe_config *c, fe_model *m, int tied) {
    memset(m, 0, sizeof *m);
    m->arch = FE_ARCH_LLAMA;
    m->arch_name = "LlamaForCausalLM";
    m->dir = "/nonexistent";
    m->hidden_size = 32;
    m->intermediate_size = 48;
    m->num_hidden_layers = 2;
    m->num_attention_heads = 4;
    m->num_key_value_heads = 2;
    m->head_dim = 8;
    m->vocab_size = 64;
    m->rope_theta = 10000;
    m->rms_norm_eps = 1e-6;
    m->tie_word_embeddings = tied;
    memset(c, 0, sizeof *c);
    c->micro_batch_size = B;
    c->sequence_len = S;
    c->gradient_accumulation_steps = 2;
    c->num_epochs = 1;
    c->sequence_parallel_degree = 1;
    c->seed = 5;
    c->output_dir = "/tmp";
}

static ir_module *compile(int world, pass_shard_cfg sh, pass_bucket_cfg bk, pass_mem_stats *st) {
    fe_config c;
    fe_model mm;
    make(&c, &mm, 0);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &mm, world, m, &loss, &d) == 0);
    pass_ctx pc = {.m = m, .loss = loss, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0},
                   .shard = sh, .bucket = bk};
    CHECK(pass_pipeline(&pc, &d) == 0);
    CHECK_MSG(d.nwarnings == 0, "unexpected warnings");
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    if (st) *st = pc.mem;
    return m;
}

typedef struct plan_case {
    const char *name;
    pass_shard_cfg sh;
    pass_bucket_cfg bk;
    const char *prog; /* where the gradient reductions are */
    ir_op op;
} plan_case;

static int64_t attr_list_eq(const ir_attr *a, const int64_t *v, int n) {
    if (!a || a->kind != IR_ATTR_INTS || a->n != n) return 0;
    for (int i = 0; i < n; i++)
        if (a->ints[i] != v[i]) return 0;
    return 1;
}

/* Checks the plan's buckets; returns the bucket count. */
static int check_plan(const plan_case *pc) {
    pass_mem_stats st;
    ir_module *m = compile(2, pc->sh, pc->bk, &st);
    const ir_program *p = ir_program_find(m, pc->prog), *ms = ir_program_find(m, "micro_step");
    /* backward's order of the gradients: their accs in micro_step */
    int ng = m->nglobals, nprod = 0;
    int *prod = malloc(sizeof(int) * (size_t)ng), *seen = calloc((size_t)ng, sizeof(int));
    for (int i = 0; i < ms->nnodes; i++) {
        const ir_node *n = &ms->nodes[i];
        if (n->op == IR_OP_acc && IR_REF_IS_GLOBAL(n->in[0]) && m->globals[IR_REF_GLOBAL(n->in[0])].role == IR_ROLE_GRAD)
            prod[nprod++] = IR_REF_GLOBAL(n->in[0]);
    }
    int ngrads = 0;
    for (int g = 0; g < ng; g++) ngrads += m->globals[g].role == IR_ROLE_GRAD;
    CHECK_EQ(nprod, ngrads);
    /* the reductions in execution order, with their bucket and size */
    int nred = 0, nb = 0, multi = 0, oversized_alone = 0;
    int64_t sizes[256], units[256], fill = 0;
    int64_t cap = pc->bk.cap;
    int cur = -1, members = 0, unit = -1, unit_ok = 1;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op != pc->op || !ir_attr_find(n->attrs, n->nattrs, "bucket")) continue;
        int b = (int)ir_attr_int(n->attrs, n->nattrs, "bucket", -1);
        /* which gradient: read directly (opt_step) or via its acc (micro_step) */
        int g = IR_REF_IS_GLOBAL(n->in[0]) ? IR_REF_GLOBAL(n->in[0]) : -1;
        for (int j = i + 1; g < 0 && j < p->nnodes; j++)
            if (p->nodes[j].op == IR_OP_acc && p->nodes[j].in[1] == n->out[0]) g = IR_REF_GLOBAL(p->nodes[j].in[0]);
        CHECK_MSG(g >= 0 && nred < nprod && g == prod[nred], "%s: reduction %d is not the gradient backward makes next",
                  pc->name, nred);
        if (g >= 0) seen[g]++;
        const ir_type *t = ir_ref_type(m, p, n->in[0]);
        int64_t sz = pc->bk.by == PASS_BUCKET_ELEMS ? ir_type_numel(t) : ir_type_bytes(t);
        const char *lay = g >= 0 ? strstr(m->globals[g].name, "layers.") : NULL;
        int u = lay ? atoi(lay + 7) + 1 : 0;
        if (b != cur) { /* a new bucket starts: the previous one was full */
            CHECK_MSG(b == cur + 1, "%s: bucket %d after %d", pc->name, b, cur);
            if (cur >= 0 && pc->bk.by != PASS_BUCKET_UNIT)
                CHECK_MSG(fill + sz > cap, "%s: bucket %d (%lld) had room for the next gradient (%lld, cap %lld)", pc->name,
                          cur, (long long)fill, (long long)sz, (long long)cap);
            if (cur >= 0 && pc->bk.by == PASS_BUCKET_UNIT) CHECK_MSG(u != unit, "%s: unit %d split", pc->name, u);
            if (members > 1) multi++;
            cur = b;
            fill = 0;
            members = 0;
            unit = u;
            /* the executor's run is exactly this bucket's collectives */
            int e = ir_bucket_run_end(p, i), cnt = 0;
            for (int j = i; j < p->nnodes; j++)
                cnt += p->nodes[j].op == pc->op && ir_attr_int(p->nodes[j].attrs, p->nodes[j].nattrs, "bucket", -1) == b;
            CHECK_MSG(e - i == cnt, "%s: bucket %d has %d members but a run of %d", pc->name, b, cnt, e - i);
            sizes[nb] = 0;
            units[nb] = 0;
            nb++;
        }
        if (pc->bk.by == PASS_BUCKET_UNIT) unit_ok &= u == unit;
        fill += sz;
        members++;
        sizes[nb - 1] += pc->bk.by == PASS_BUCKET_UNIT ? ir_type_bytes(t) : sz;
        units[nb - 1] += ir_type_bytes(t);
        if (pc->bk.by != PASS_BUCKET_UNIT) {
            CHECK_MSG(fill <= cap || members == 1, "%s: bucket %d holds %lld > cap %lld", pc->name, b, (long long)fill,
                      (long long)cap);
            if (sz > cap) oversized_alone++;
        }
        nred++;
    }
    if (members > 1) multi++;
    CHECK_EQ(nred, ngrads);
    for (int g = 0; g < ng; g++)
        if (m->globals[g].role == IR_ROLE_GRAD) CHECK_MSG(seen[g] == 1, "%s: %s reduced %d times", pc->name, m->globals[g].name, seen[g]);
    CHECK_MSG(unit_ok, "%s: a bucket mixes wrapped units", pc->name);
    CHECK_MSG(multi > 0, "%s: no bucket holds several gradients", pc->name);
    if (pc->bk.by != PASS_BUCKET_UNIT) CHECK_MSG(oversized_alone > 0, "%s: no gradient larger than the cap", pc->name);
    /* the recorded plan, memplan's figures and the call count agree */
    char key[96];
    snprintf(key, sizeof key, "grad_buckets.%s", pc->prog);
    CHECK_MSG(attr_list_eq(ir_module_attr(m, key), sizes, nb), "%s: %s differs from the IR", pc->name, key);
    snprintf(key, sizeof key, "memplan.%s.bucket_bytes", pc->prog);
    CHECK_MSG(attr_list_eq(ir_module_attr(m, key), units, nb), "%s: %s differs from the IR", pc->name, key);
    int64_t calls = !strcmp(pc->prog, "opt_step") ? st.calls_opt : st.calls_micro;
    int64_t others = 0; /* collectives that are not gradient reductions: one call each */
    for (int i = 0; i < p->nnodes; i++)
        others += (ir_ops[p->nodes[i].op].flags & IR_F_COLLECTIVE) && !ir_attr_find(p->nodes[i].attrs, p->nodes[i].nattrs, "bucket");
    CHECK_MSG(calls == nb + others, "%s: memplan counts %lld calls, expected %d buckets + %lld", pc->name, (long long)calls, nb,
              (long long)others);
    /* the text round-trips with the bucket attributes */
    ax_buf t1 = {0}, t2 = {0};
    ir_print(m, &t1);
    CHECK(strstr(t1.data, "bucket=0") != NULL);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *back = ir_parse(t1.data, t1.len, "plan", &d);
    CHECK(back && ir_verify(back, &d) == 0);
    if (back) ir_print(back, &t2);
    CHECK(t2.data && !strcmp(t1.data, t2.data));
    ir_module_destroy(back);
    ax_diag_free(&d);
    ax_buf_free(&t1);
    ax_buf_free(&t2);
    free(prod);
    free(seen);
    ir_module_destroy(m);
    return nb;
}

/* ---- running: call counts and exactness ------------------------------------------ */
typedef struct counter {
    const rt_collectives *inner;
    rt_collectives self;
    int calls[3]; /* all_reduce, all_gather, reduce_scatter */
} counter;
static int c_ar(void *ctx, int axis, float *buf, int64_t n) {
    counter *c = ctx;
    c->calls[0]++;
    return c->inner->all_reduce(c->inner->ctx, axis, buf, n);
}
static int c_ag(void *ctx, int axis, const float *s, float *r, int64_t n) {
    counter *c = ctx;
    c->calls[1]++;
    return c->inner->all_gather(c->inner->ctx, axis, s, r, n);
}
static int c_rs(void *ctx, int axis, const float *s, float *r, int64_t n) {
    counter *c = ctx;
    c->calls[2]++;
    return c->inner->reduce_scatter(c->inner->ctx, axis, s, r, n);
}

typedef struct job {
    char *text;
    int32_t *ids, *tgt, *pos, *seg;
    int micro_calls[2][3], opt_calls[2][3]; /* per rank: the last micro-batch's and optimizer step's */
    float *params;                          /* rank 0's blocks of every param, concatenated */
    int64_t nparams;
    int failed;
} job;

static int rank_fn(rt_comm *c, void *arg) {
    job *J = arg;
    int r = rt_comm_rank(c);
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_parse(J->text, strlen(J->text), "plan", &d);
    rt_session s;
    rt_rank_coll rc;
    int ok = m && rt_session_from_module(m, &s, &d) == 0 && rt_attach_comm(&s, c, &rc, &d) == 0 &&
             rt_session_init_weights(&s, NULL, &d) == 0;
    counter cnt = {0};
    if (ok) {
        cnt.inner = s.st.coll;
        cnt.self = (rt_collectives){.ctx = &cnt, .all_reduce = c_ar, .all_gather = c_ag, .reduce_scatter = c_rs};
        s.st.coll = &cnt.self;
    }
    for (int step = 0; ok && step < 2; step++) {
        for (int mb = 0; ok && mb < 2; mb++) {
            memset(cnt.calls, 0, sizeof cnt.calls);
            size_t off = (size_t)(((step * 2 + r) * 2 + mb) * B * S);
            ok = rt_session_micro_step(&s, J->ids + off, J->tgt + off, J->pos + off, J->seg + off, 0.01f, &d) == 0;
        }
        memcpy(J->micro_calls[r], cnt.calls, sizeof cnt.calls);
        memset(cnt.calls, 0, sizeof cnt.calls);
        ok = ok && rt_session_opt_step(&s, 1e-2f, step + 1, &d) == 0;
        memcpy(J->opt_calls[r], cnt.calls, sizeof cnt.calls);
    }
    if (ok && r == 0) {
        for (int g = 0; g < s.m->nglobals; g++) {
            if (s.m->globals[g].role != IR_ROLE_PARAM) continue;
            rt_buf *b = &s.st.globals[g];
            J->params = realloc(J->params, sizeof(float) * (size_t)(J->nparams + b->numel));
            memcpy(J->params + J->nparams, b->data, sizeof(float) * (size_t)b->numel);
            J->nparams += b->numel;
        }
    }
    if (!ok) {
        J->failed = 1;
        ax_diag_print(&d, stderr);
        rt_comm_abort(c, "rank failed");
    }
    if (m) {
        s.st.coll = cnt.inner;
        rt_detach_comm(&rc);
        rt_session_close(&s);
    }
    ax_diag_free(&d);
    return ok ? 0 : 1;
}

static void run_job(job *J, const plan_case *pc, int bucketed, const int32_t *const data[4]) {
    memset(J, 0, sizeof *J);
    ir_module *m = compile(2, pc->sh, bucketed ? pc->bk : (pass_bucket_cfg){0}, NULL);
    ax_buf t = {0};
    ir_print(m, &t);
    ir_module_destroy(m);
    J->text = ax_buf_steal(&t);
    J->ids = (int32_t *)data[0], J->tgt = (int32_t *)data[1], J->pos = (int32_t *)data[2], J->seg = (int32_t *)data[3];
    CHECK_MSG(rt_local_run(2, rank_fn, J) == 0 && !J->failed, "%s (%s) failed", pc->name, bucketed ? "bucketed" : "unbucketed");
    free(J->text);
}

int main(void) {
    test_assign();
    test_runs();
    test_rewrite_text();
    /* sizes of this model's gradients (f32): embed/lm_head 64x32 = 8 KiB,
     * q/o 32x32 = 4 KiB, k/v 16x32 = 2 KiB, mlp 48x32 = 6 KiB, norms 128 B */
    plan_case cases[] = {
        {"DDP, 5000-byte buckets", {0, 0, 0, 0}, {PASS_BUCKET_BYTES, 5000}, "opt_step", IR_OP_all_reduce},
        {"ZeRO-1, 1100-element buckets", {1, 0, 0, 0}, {PASS_BUCKET_ELEMS, 1100}, "opt_step", IR_OP_reduce_scatter},
        {"ZeRO-2, 1100-element buckets", {2, 0, 0, 0}, {PASS_BUCKET_ELEMS, 1100}, "micro_step", IR_OP_reduce_scatter},
        {"ZeRO-3, 1100-element buckets", {3, 1, 0, 0}, {PASS_BUCKET_ELEMS, 1100}, "micro_step", IR_OP_reduce_scatter},
        {"FSDP, one bucket per unit", {3, 0, 0, 0}, {PASS_BUCKET_UNIT, 0}, "micro_step", IR_OP_reduce_scatter},
    };
    /* data for 2 steps x 2 ranks x 2 micro-batches */
    int64_t rows = 2 * 2 * 2 * B;
    int32_t *buf[4];
    for (int k = 0; k < 4; k++) buf[k] = malloc(sizeof(int32_t) * (size_t)(rows * S));
    uint32_t sd = 99;
    for (int64_t i = 0; i < rows * S; i++) {
        sd = sd * 1664525u + 1013904223u;
        buf[0][i] = (int32_t)(1 + (sd >> 10) % 63);
        buf[2][i] = (int32_t)(i % S);
        buf[3][i] = 0;
    }
    for (int64_t i = 0; i < rows * S; i++) buf[1][i] = (i + 1) % S == 0 ? -100 : buf[0][i + 1];
    const int32_t *const data[4] = {buf[0], buf[1], buf[2], buf[3]};
    for (size_t k = 0; k < AX_ARRAY_LEN(cases); k++) {
        const plan_case *pc = &cases[k];
        int nb = check_plan(pc);
        job plain, bk;
        run_job(&plain, pc, 0, data);
        run_job(&bk, pc, 1, data);
        if (plain.failed || bk.failed) continue;
        int which = pc->op == IR_OP_all_reduce ? 0 : 2, micro = !strcmp(pc->prog, "micro_step");
        for (int r = 0; r < 2; r++) {
            int got = micro ? bk.micro_calls[r][which] : bk.opt_calls[r][which];
            int unb = micro ? plain.micro_calls[r][which] : plain.opt_calls[r][which];
            CHECK_MSG(got == nb, "%s, rank %d: %d %s calls, expected one per bucket (%d)", pc->name, r, got,
                      ir_ops[pc->op].name, nb);
            CHECK_MSG(unb > nb, "%s: unbucketed made %d calls, not more than %d buckets", pc->name, unb, nb);
        }
        CHECK_EQ(bk.nparams, plain.nparams);
        CHECK_MSG(bk.nparams == plain.nparams && !memcmp(bk.params, plain.params, sizeof(float) * (size_t)bk.nparams),
                  "%s: weights after 2 steps differ from one collective per gradient", pc->name);
        free(plain.params);
        free(bk.params);
    }
    for (int k = 0; k < 4; k++) free(buf[k]);
    return check_done();
}
