/* test_schedule.c — the schedule pass: every node has a stream; every
 * cross-stream dependency (values, and globals written on one stream and
 * read or written on another) is covered by a wait on an earlier node of
 * that stream; ZeRO-3 parameter gathers are issued one unit early, which
 * bounds the gathered units alive at once and shows up in memplan's peak;
 * sequence-parallel ring shifts run on the communication stream; the arena
 * never hands a value's bytes to a node that may run before an access of
 * the previous occupant has finished on another stream. */
#include "frontend/lower.h"
#include "ir/liveness.h"
#include "passes/passes.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static ir_module *compile(int world, int64_t sp, pass_shard_cfg sh, int prefetch, pass_mem_stats *st) {
    fe_config c;
    fe_model mm;
    memset(&mm, 0, sizeof mm);
    mm.arch = FE_ARCH_LLAMA;
    mm.arch_name = "LlamaForCausalLM";
    mm.dir = "/nonexistent";
    mm.hidden_size = 32, mm.intermediate_size = 64, mm.num_hidden_layers = 4;
    mm.num_attention_heads = 4, mm.num_key_value_heads = 2, mm.head_dim = 8, mm.vocab_size = 64;
    mm.rope_theta = 10000, mm.rms_norm_eps = 1e-6;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = 1, c.sequence_len = 32, c.gradient_accumulation_steps = 1, c.num_epochs = 1;
    c.sequence_parallel_degree = sp, c.bf16 = 1, c.output_dir = "/tmp";
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &mm, world, m, &loss, &d) == 0);
    pass_ctx pc = {.m = m, .loss = loss, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0, .master_f32 = 1},
                   .shard = sh, .sched = {.prefetch = prefetch}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    *st = pc.mem;
    return m;
}

static int64_t stream(const ir_node *n) { return ir_attr_int(n->attrs, n->nattrs, "stream", -1); }

/* Is there a wait of node i on a node of stream s at index >= j? */
static int covered(const ir_program *p, int i, int j) {
    const ir_attr *w = ir_attr_find(p->nodes[i].attrs, p->nodes[i].nattrs, "wait");
    int64_t s = stream(&p->nodes[j]);
    for (int k = 0; w && k < w->n; k++)
        if (w->ints[k] >= j && w->ints[k] < i && stream(&p->nodes[w->ints[k]]) == s) return 1;
    return 0;
}

/* Arena safety under concurrent streams, checked independently of the
 * planner: for any two values whose slots overlap, the later one's producer
 * must happen after every access (producer, readers) of the earlier one.
 * Returns the number of violations. */
static int arena_races(const ir_module *m, const ir_program *p, const char *what) {
    int nv = p->nvalues, nn = p->nnodes, bad = 0;
    int64_t *off = calloc((size_t)nv + 1, sizeof(int64_t));
    int32_t *hb = malloc(sizeof(int32_t) * ((size_t)nn + 1) * IR_NSTREAMS);
    ir_arena_plan(m, p, NULL, NULL, off, NULL);
    ir_happens_before(p, hb);
    for (int u = 0; u < nv; u++) {
        int du = p->values[u].node;
        int64_t bu = (ir_local_bytes(m, &p->values[u].type) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN;
        for (int v = 0; v < nv; v++) {
            int dv = p->values[v].node;
            if (dv >= du || v == u) continue;
            int64_t bv = (ir_local_bytes(m, &p->values[v].type) + IR_ARENA_ALIGN - 1) / IR_ARENA_ALIGN * IR_ARENA_ALIGN;
            if (off[v] + bv <= off[u] || off[u] + bu <= off[v]) continue;
            /* every node touching v must happen before du */
            for (int i = dv; i < nn; i++) {
                const ir_node *n = &p->nodes[i];
                int touches = i == dv;
                for (int k = 0; k < n->nin && !touches; k++) touches = n->in[k] == v;
                if (!touches) continue;
                int st = (int)ir_attr_int(n->attrs, n->nattrs, "stream", 0);
                if (i >= du || hb[(size_t)du * IR_NSTREAMS + st] < i) {
                    if (bad++ < 3)
                        fprintf(stderr, "%s %s: %%%d (node %d) reuses the bytes of %%%d, which node %d (stream %d) may still access\n",
                                what, p->name, u, du, v, i, st);
                    break;
                }
            }
        }
    }
    free(off);
    free(hb);
    return bad;
}

static void check_program(const ir_module *m, const ir_program *p, const char *what) {
    CHECK_MSG(arena_races(m, p, what) == 0, "%s %s: arena slots reused across streams without a wait", what, p->name);
    int bad_stream = 0, bad_wait = 0, uncovered = 0;
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        int64_t s = stream(n);
        int coll = (ir_ops[n->op].flags & IR_F_COLLECTIVE) != 0, copy = n->op == IR_OP_to_host || n->op == IR_OP_to_device;
        int grad_of_coll = (n->op == IR_OP_acc || n->op == IR_OP_store) && IR_REF_IS_GLOBAL(n->in[0]) &&
                           m->globals[IR_REF_GLOBAL(n->in[0])].role == IR_ROLE_GRAD && !IR_REF_IS_GLOBAL(n->in[1]) &&
                           (ir_ops[p->nodes[p->values[n->in[1]].node].op].flags & IR_F_COLLECTIVE);
        bad_stream += s != (copy ? 2 : coll || grad_of_coll ? 1 : ir_node_on_host(n) ? 3 : 0);
        const ir_attr *w = ir_attr_find(n->attrs, n->nattrs, "wait");
        for (int k = 0; w && k < w->n; k++) bad_wait += w->ints[k] < 0 || w->ints[k] >= i || stream(&p->nodes[w->ints[k]]) == s;
        for (int k = 0; k < n->nin; k++) {
            if (IR_REF_IS_GLOBAL(n->in[k])) { /* every earlier cross-stream writer (and, for a write, reader) */
                int effect_target = (ir_ops[n->op].flags & IR_F_EFFECT) && k == 0;
                for (int j = 0; j < i; j++) {
                    const ir_node *o = &p->nodes[j];
                    if (stream(o) == s) continue;
                    int o_writes = (ir_ops[o->op].flags & IR_F_EFFECT) && o->in[0] == n->in[k], o_reads = 0;
                    for (int t = 0; t < o->nin; t++) o_reads |= o->in[t] == n->in[k];
                    if ((o_writes || (effect_target && o_reads)) && !covered(p, i, j)) uncovered++;
                }
            } else {
                int j = p->values[n->in[k]].node;
                if (stream(&p->nodes[j]) != s && !covered(p, i, j)) uncovered++;
            }
        }
    }
    CHECK_MSG(!bad_stream, "%s: %d nodes on the wrong stream", what, bad_stream);
    CHECK_MSG(!bad_wait, "%s: %d waits not on an earlier node of another stream", what, bad_wait);
    CHECK_MSG(!uncovered, "%s: %d cross-stream dependencies without a wait", what, uncovered);
    (void)m;
}

static int unit_of(const ir_module *m, int32_t gref) {
    const char *p = strstr(m->globals[IR_REF_GLOBAL(gref)].name, "layers.");
    return p ? atoi(p + 7) + 1 : 0;
}

/* forward only: first gather index and first use index of each layer unit;
 * the most gathered units alive at once */
static void gathers(const ir_module *m, int *first_gather, int *first_use, int *max_live) {
    const ir_program *p = ir_program_find(m, "micro_step");
    int64_t bs = ir_attr_int(m->attrs, m->nattrs, "backward_start", p->nnodes);
    int *unit_of_val = malloc(sizeof(int) * (size_t)(p->nvalues + 1)), *last = malloc(sizeof(int) * (size_t)(p->nvalues + 1));
    for (int v = 0; v < p->nvalues; v++) unit_of_val[v] = -1, last[v] = -1;
    for (int u = 0; u < 8; u++) first_gather[u] = first_use[u] = -1;
    for (int i = 0; i < bs; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op == IR_OP_to_device) continue;
        if (n->op == IR_OP_all_gather) {
            int32_t g = n->in[0]; /* the global, or its to_device copy's */
            if (!IR_REF_IS_GLOBAL(g)) g = p->nodes[p->values[g].node].in[0];
            int u = unit_of(m, g);
            unit_of_val[n->out[0]] = u;
            if (first_gather[u] < 0) first_gather[u] = i;
            continue;
        }
        for (int k = 0; k < n->nin; k++)
            if (!IR_REF_IS_GLOBAL(n->in[k]) && unit_of_val[n->in[k]] >= 0) {
                last[n->in[k]] = i;
                if (first_use[unit_of_val[n->in[k]]] < 0) first_use[unit_of_val[n->in[k]]] = i;
            }
    }
    *max_live = 0;
    for (int i = 0; i < bs; i++) {
        int live[8] = {0}, cnt = 0;
        for (int v = 0; v < p->nvalues; v++)
            if (unit_of_val[v] >= 0 && p->values[v].node <= i && last[v] >= i) live[unit_of_val[v]] = 1;
        for (int u = 0; u < 8; u++) cnt += live[u];
        if (cnt > *max_live) *max_live = cnt;
    }
    free(unit_of_val);
    free(last);
}

/* Hazards through globals: a collective reading a global written on the
 * compute stream (RAW), and a compute write after a collective's read (WAR). */
static void test_global_hazards(void) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    ir_mesh_add(m, "dp", 2);
    int x = ir_global_add(m, "x", IR_TYPE(IR_F32, 4), IR_ROLE_TEMP, NULL, 0);
    int y = ir_global_add(m, "y", IR_TYPE(IR_F32, 4), IR_ROLE_TEMP, NULL, 0);
    ir_program *p = ir_program_add(m, "step");
    ir_builder b;
    ir_builder_init(&b, m, p, &d);
    int32_t a = ir_b_input(&b, "a", IR_TYPE(IR_F32, 4));
    ir_bn(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(x), a), IR_NOAT, NULL);                        /* 1: write x */
    int32_t s = ir_b(&b, IR_OP_all_reduce, IR_IN(IR_GLOBAL_REF(x)), IR_AT(ir_as("axis", "dp"))); /* 2: read x */
    ir_bn(&b, IR_OP_zero, IR_IN(IR_GLOBAL_REF(x)), IR_NOAT, NULL);                            /* 3: write x */
    ir_bn(&b, IR_OP_acc, IR_IN(IR_GLOBAL_REF(y), s), IR_NOAT, NULL);                          /* 4: read s */
    CHECK(!b.failed);
    CHECK(pass_schedule(m, &(pass_sched_cfg){0}, &d) == 0);
    check_program(m, p, "hand-built hazards");
    const ir_attr *w2 = ir_attr_find(p->nodes[2].attrs, p->nodes[2].nattrs, "wait");
    const ir_attr *w3 = ir_attr_find(p->nodes[3].attrs, p->nodes[3].nattrs, "wait");
    const ir_attr *w4 = ir_attr_find(p->nodes[4].attrs, p->nodes[4].nattrs, "wait");
    CHECK_MSG(w2 && w2->n == 1 && w2->ints[0] == 1, "the all_reduce must wait for the store of x");
    CHECK_MSG(w3 && w3->n == 1 && w3->ints[0] == 2, "zeroing x must wait for the all_reduce reading it");
    CHECK_MSG(w4 && w4->n == 1 && w4->ints[0] == 2, "acc must wait for the all_reduce's result");
    CHECK(ir_verify(m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ir_module_destroy(m);
}

/* A value read only on the communication stream is not reused by compute
 * until compute has waited for that read. */
static void test_arena_streams(void) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    ir_mesh_add(m, "dp", 2);
    int y = ir_global_add(m, "y", IR_TYPE(IR_F32, 64), IR_ROLE_TEMP, NULL, 0);
    ir_program *p = ir_program_add(m, "step");
    ir_builder b;
    ir_builder_init(&b, m, p, &d);
    int32_t a = ir_b_input(&b, "a", IR_TYPE(IR_F32, 64));                                 /* 0 */
    int32_t t = ir_b(&b, IR_OP_scale, IR_IN(a), IR_AT(ir_af("alpha", 2.0)));               /* 1: t */
    int32_t r = ir_b(&b, IR_OP_all_reduce, IR_IN(t), IR_AT(ir_as("axis", "dp")));           /* 2: reads t (stream 1) */
    int32_t u = ir_b(&b, IR_OP_scale, IR_IN(a), IR_AT(ir_af("alpha", 3.0)));               /* 3: must not take t's bytes */
    int32_t w = ir_b(&b, IR_OP_add, IR_IN(r, u), IR_NOAT);                                  /* 4: waits for 2 */
    int32_t z = ir_b(&b, IR_OP_scale, IR_IN(w), IR_AT(ir_af("alpha", 0.5)));               /* 5: may take t's bytes */
    ir_bn(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(y), z), IR_NOAT, NULL);
    CHECK(!b.failed);
    CHECK(pass_schedule(m, &(pass_sched_cfg){0}, &d) == 0);
    CHECK_EQ(ir_attr_int(p->nodes[2].attrs, p->nodes[2].nattrs, "stream", 0), 1);
    int64_t off[16];
    ir_arena_plan(m, p, NULL, NULL, off, NULL);
    CHECK_MSG(off[u] != off[t], "compute took the slot of a value the communication stream may still read");
    CHECK_MSG(off[z] == off[t], "after the wait the slot is free again (t at %lld, z at %lld)", (long long)off[t],
              (long long)off[z]);
    CHECK_EQ(arena_races(m, p, "hand-built"), 0);
    /* program order alone (no stream attrs) reuses t's slot at once: the checker sees that as a race once streams are set */
    ir_module *m1 = ir_module_create();
    ir_mesh_add(m1, "dp", 2);
    ir_program *q = ir_program_add(m1, "step");
    ir_builder_init(&b, m1, q, &d);
    a = ir_b_input(&b, "a", IR_TYPE(IR_F32, 64));
    t = ir_b(&b, IR_OP_scale, IR_IN(a), IR_AT(ir_af("alpha", 2.0)));
    r = ir_b(&b, IR_OP_all_reduce, IR_IN(t), IR_AT(ir_as("axis", "dp")));
    u = ir_b(&b, IR_OP_scale, IR_IN(a), IR_AT(ir_af("alpha", 3.0)));
    CHECK(!b.failed);
    ir_arena_plan(m1, q, NULL, NULL, off, NULL);
    CHECK_MSG(off[u] == off[t], "one stream: the slot is reused as soon as its last reader ran");
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ir_module_destroy(m);
    ir_module_destroy(m1);
}

int main(void) {
    test_arena_streams();
    test_global_hazards();
    pass_mem_stats s0, s1, s3;
    pass_shard_cfg z3 = {3, 1, 0, 0};
    ir_module *m0 = compile(4, 1, z3, 0, &s0), *m1 = compile(4, 1, z3, 1, &s1);
    for (int i = 0; i < m1->nprograms; i++) {
        check_program(m0, m0->programs[i], "ZeRO-3, no prefetch");
        check_program(m1, m1->programs[i], "ZeRO-3, prefetch 1");
    }
    int fg0[8], fu0[8], live0, fg1[8], fu1[8], live1;
    gathers(m0, fg0, fu0, &live0);
    gathers(m1, fg1, fu1, &live1);
    for (int u = 1; u + 1 <= 4; u++) { /* layer units 1..4 */
        CHECK_MSG(fg0[u + 1] < 0 || fg0[u + 1] > fu0[u], "no prefetch: unit %d gathered before unit %d computes", u + 1, u);
        if (u + 1 <= 4)
            CHECK_MSG(fg1[u + 1] >= 0 && fg1[u + 1] < fu1[u], "prefetch: unit %d (gather at %d) not issued before unit %d computes (%d)",
                      u + 1, fg1[u + 1], u, fu1[u]);
    }
    /* root unit (embeddings, final norm) + the current layer (+ the next) */
    CHECK_MSG(live0 <= 2, "no prefetch: %d gathered units alive at once", live0);
    CHECK_MSG(live1 == 3, "prefetch 1: %d gathered units alive at once (expected root + 2)", live1);
    CHECK_MSG(s1.micro_peak > s0.micro_peak, "prefetched parameters must show in the activation peak (%lld vs %lld)",
              (long long)s1.micro_peak, (long long)s0.micro_peak);
    CHECK_EQ(s1.comm_step, s0.comm_step);
    ir_module_destroy(m0);
    ir_module_destroy(m1);

    /* offloaded parameters: the to_device copy travels with its gather;
     * the host optimizer step runs on the host stream */
    pass_shard_cfg z3o = {3, 1, 1, 1};
    ir_module *m2 = compile(4, 1, z3o, 0, &s0), *m3 = compile(4, 1, z3o, 1, &s1);
    for (int i = 0; i < m3->nprograms; i++) {
        check_program(m2, m2->programs[i], "ZeRO-3 + offload, no prefetch");
        check_program(m3, m3->programs[i], "ZeRO-3 + offload, prefetch 1");
    }
    gathers(m2, fg0, fu0, &live0);
    gathers(m3, fg1, fu1, &live1);
    for (int u = 1; u + 1 <= 4; u++) {
        CHECK_MSG(fg0[u + 1] > fu0[u], "offload, no prefetch: unit %d gathered before unit %d computes", u + 1, u);
        CHECK_MSG(fg1[u + 1] >= 0 && fg1[u + 1] < fu1[u], "offload, prefetch: unit %d not gathered before unit %d computes",
                  u + 1, u);
    }
    const ir_program *op = ir_program_find(m3, "opt_step");
    int host = 0, copies = 0;
    for (int i = 0; i < op->nnodes; i++) {
        host += op->nodes[i].op == IR_OP_adamw && stream(&op->nodes[i]) == 3;
        copies += op->nodes[i].op == IR_OP_to_device && stream(&op->nodes[i]) == 2;
    }
    CHECK_MSG(host > 0 && copies > 0, "offload: AdamW on the host stream (%d), copies on the copy stream (%d)", host, copies);
    ir_module_destroy(m2);
    ir_module_destroy(m3);

    /* ZeRO-2: the backward never waits for a gradient's reduce-scatter (its acc runs behind it on stream 1) */
    {
        ir_module *m = compile(4, 1, (pass_shard_cfg){2, 0, 0, 0}, 0, &s3);
        const ir_program *p = ir_program_find(m, "micro_step");
        int accs = 0, compute_waits_on_comm = 0;
        for (int i = 0; i < p->nnodes; i++) {
            const ir_node *n = &p->nodes[i];
            accs += n->op == IR_OP_acc && stream(n) == 1;
            const ir_attr *w = ir_attr_find(n->attrs, n->nattrs, "wait");
            for (int k = 0; w && stream(n) == 0 && k < w->n; k++) compute_waits_on_comm += stream(&p->nodes[w->ints[k]]) == 1;
        }
        CHECK_MSG(accs > 0, "ZeRO-2: no gradient acc on the communication stream");
        CHECK_MSG(compute_waits_on_comm == 0, "ZeRO-2: %d compute nodes wait for the communication stream", compute_waits_on_comm);
        check_program(m, p, "ZeRO-2");
        ir_module_destroy(m);
    }
    /* DDP and ZeRO-1/2 with sequence parallelism: ring shifts and reductions on stream 1 */
    pass_shard_cfg cs[] = {{0, 0, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0}};
    for (size_t k = 0; k < AX_ARRAY_LEN(cs); k++) {
        ir_module *m = compile(4, 2, cs[k], 1, &s3);
        char what[64];
        snprintf(what, sizeof what, "dp 2 x sp 2, stage %d", cs[k].stage);
        int rings = 0;
        const ir_program *p = ir_program_find(m, "micro_step");
        for (int i = 0; i < p->nnodes; i++) rings += p->nodes[i].op == IR_OP_ring_shift && stream(&p->nodes[i]) == 1;
        CHECK_MSG(rings > 0, "%s: no ring shift on the communication stream", what);
        for (int i = 0; i < m->nprograms; i++) check_program(m, m->programs[i], what);
        ir_module_destroy(m);
    }
    return check_done();
}
