/* test_shard.c — the shard pass's accounting: per-rank model-state bytes
 * equal the ZeRO paper's formulas for Psi parameters and Nd ranks, with
 * mixed-precision Adam (K = 12: f32 master + m + v):
 *   baseline (2+2+K) Psi, ZeRO-1 4 Psi + K Psi/Nd, ZeRO-2 2 Psi + (2+K) Psi/Nd,
 *   ZeRO-3 (2+2+K) Psi/Nd
 * and the bytes each rank sends per step are 2 Psi (DDP, ZeRO-1, ZeRO-2) and
 * 3 Psi (ZeRO-3, less the embedding table the backward never reads; 2 Psi
 * without resharding) in bf16 units (+ the all-reduced grad-norm scalar),
 * and the IR contains the collectives each stage needs where it needs them.
 * CPU offload (ZeRO-1/2/3 + offload_optimizer, ZeRO-3 + offload_params, both,
 * FSDP offload without resharding): device and host state bytes per rank by
 * role and the host<->device copy bytes per step, exact, as formulas in Psi,
 * Nd and grad_accum; the copies and host nodes are where the design puts
 * them; wrong stage/offload combinations are refused. */
#include "frontend/lower.h"
#include "passes/passes.h"
#include "tests/check.h"

#include <string.h>

static int g_flce; /* liger_fused_linear_cross_entropy of make()'s config (0: matmul + cross_entropy) */

static void make(fe_config *c, fe_model *m, int64_t gas) {
    memset(m, 0, sizeof *m);
    m->arch = FE_ARCH_LLAMA;
    m->arch_name = "LlamaForCausalLM";
    m->dir = "/nonexistent";
    m->hidden_size = 64;
    m->intermediate_size = 128;
    m->num_hidden_layers = 2;
    m->num_attention_heads = 4;
    m->num_key_value_heads = 2;
    m->head_dim = 16;
    m->vocab_size = 256;
    m->rope_theta = 10000;
    m->rms_norm_eps = 1e-6;
    memset(c, 0, sizeof *c);
    c->micro_batch_size = 1;
    c->sequence_len = 32;
    c->gradient_accumulation_steps = gas;
    c->num_epochs = 1;
    c->sequence_parallel_degree = 1;
    c->bf16 = 1;
    c->output_dir = "/tmp";
    c->liger_fused_linear_cross_entropy = g_flce;
}

/* Lowers the model and runs the pipeline; returns the pipeline's status,
 * the module and its figures. */
static int run_pipeline(int world, int64_t gas, pass_shard_cfg sh, pass_mem_stats *st, ir_module **out, ax_diag *d) {
    fe_config c;
    fe_model mm;
    make(&c, &mm, gas);
    ir_module *m = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &mm, world, m, &loss, d) == 0);
    pass_ctx pc = {.m = m, .loss = loss, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0, .master_f32 = 1},
                   .shard = sh};
    int rc = pass_pipeline(&pc, d);
    *st = pc.mem;
    *out = m;
    return rc;
}

static ir_module *compile_gas(int world, int64_t gas, pass_shard_cfg sh, pass_mem_stats *st) {
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m;
    CHECK(run_pipeline(world, gas, sh, st, &m, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    return m;
}

static ir_module *compile(int world, pass_shard_cfg sh, pass_mem_stats *st) { return compile_gas(world, 1, sh, st); }

static int count_op(const ir_module *m, const char *prog, ir_op op) {
    const ir_program *p = ir_program_find(m, prog);
    int n = 0;
    for (int i = 0; p && i < p->nnodes; i++) n += p->nodes[i].op == op;
    return n;
}

/* Sequence parallelism: activations per rank fall ~1/sp; the ring moves
 * exactly K/V blocks (and the segment ids / token indices once per
 * micro-step) forward and K/V + f32 dK/dV in backward; gradients are
 * all-reduced over sp once per step. */
static ir_module *compile_sp(int world, int64_t sp, int64_t S, pass_mem_stats *st) {
    fe_config c;
    fe_model mm;
    make(&c, &mm, 1);
    c.sequence_len = S;
    c.sequence_parallel_degree = sp;
    ax_diag d;
    ax_diag_init(&d);
    ir_module *m = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &mm, world, m, &loss, &d) == 0);
    pass_ctx pc = {.m = m, .loss = loss, .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0, .master_f32 = 1}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    *st = pc.mem;
    return m;
}

static void test_seqpar_accounting(void) {
    const int64_t S = 512, L = 2, nkv = 2, hd = 16, B = 1;
    pass_mem_stats one, st;
    ir_module *m1 = compile_sp(1, 1, S, &one);
    for (int64_t P = 2; P <= 4; P += 2) {
        ir_module *m = compile_sp((int)P, P, S, &st);
        int64_t Sl = S / P;
        int64_t ring = 2 * (P - 1) * B * Sl * 4                      /* seg ids + token idx, once */
                       + L * (2 * (P - 1) * B * Sl * nkv * hd * 2      /* forward K, V (bf16) */
                              + 2 * (P - 1) * B * Sl * nkv * hd * 2    /* backward K, V */
                              + 2 * P * B * Sl * nkv * hd * 4);        /* dK, dV accumulators (f32) */
        CHECK_MSG(st.ring_micro == ring, "sp %lld: ring bytes %lld, expected %lld", (long long)P, (long long)st.ring_micro,
                  (long long)ring);
        CHECK_EQ(st.comm_micro, st.ring_micro); /* nothing else crosses ranks in micro_step */
        CHECK_EQ(count_op(m, "micro_step", IR_OP_attention), 0);
        CHECK_EQ(count_op(m, "micro_step", IR_OP_attention_blk), (int)(L * P));
        CHECK_EQ(count_op(m, "micro_step", IR_OP_attention_blk_bwd), (int)(L * P));
        CHECK_EQ(count_op(m, "micro_step", IR_OP_attn_merge), (int)(L * (P - 1)));
        /* model state is replicated over sp; each grad is all-reduced once per step */
        CHECK_EQ(st.state_bytes[IR_ROLE_PARAM], one.state_bytes[IR_ROLE_PARAM]);
        CHECK_EQ(st.comm_opt, 2 * one.state_bytes[IR_ROLE_GRAD]);
        double ratio = (double)st.micro_peak / (double)one.micro_peak;
        CHECK_MSG(ratio < 1.3 / (double)P && ratio > 0.7 / (double)P, "sp %lld: activation peak %lld vs %lld on one rank (%.3f)",
                  (long long)P, (long long)st.micro_peak, (long long)one.micro_peak, ratio);
        ir_module_destroy(m);
    }
    ir_module_destroy(m1);
}

static int has_attr(const ir_node *n, const char *k, const char *v) {
    const char *s = ir_attr_str(n->attrs, n->nattrs, k, NULL);
    return s && !strcmp(s, v);
}

/* CPU offload accounting. Per rank, bf16 params and grads (2 bytes on the
 * device; on the host 4, as the executors hold host tensors in f32), f32
 * master + Adam moments (12 bytes), Nd ranks, grad_accum ga; E = the
 * embedding table's V*H elements (not gathered again in backward). Copies:
 * the reduced gradient blocks go to the host (each micro step when the
 * grads live there, ZeRO-2/3; once in opt_step for ZeRO-1), the updated
 * bf16 blocks come back (unless the params live on the host); offloaded
 * params' blocks go to the device before each gather; the clip's sum of
 * squares crosses as two f32 scalars when the optimizer runs on the host. */
static void test_offload(int64_t psi, int Nd) {
    const int64_t ga = 2, E = 256 * 64, blk = 2 * psi / Nd; /* one bf16 copy of every param's block */
    struct {
        const char *name;
        pass_shard_cfg cfg;
        int64_t dev_param, dev_grad, dev_opt, host_param, host_grad, host_opt;
        int64_t to_device, to_host; /* per step */
    } cases[] = {
        {"ZeRO-1 + offload_optimizer", {1, 0, 0, 1}, 2 * psi, 2 * psi, 0, 0, 0, 12 * psi / Nd, blk + 4, blk + 4},
        {"ZeRO-2 + offload_optimizer", {2, 0, 0, 1}, 2 * psi, 0, 0, 0, 2 * blk, 12 * psi / Nd, blk + 4, ga * blk + 4},
        {"ZeRO-3 + offload_optimizer", {3, 1, 0, 1}, blk, 0, 0, 0, 2 * blk, 12 * psi / Nd, blk + 4, ga * blk + 4},
        {"ZeRO-3 + offload_param", {3, 1, 1, 0}, 0, blk, 12 * psi / Nd, 2 * blk, 0, 0, ga * (2 * blk - 2 * E / Nd), blk},
        {"ZeRO-3 + offload both", {3, 1, 1, 1}, 0, 0, 0, 2 * blk, 2 * blk, 12 * psi / Nd, ga * (2 * blk - 2 * E / Nd) + 4, ga * blk + 4},
        {"FSDP offload_params, no reshard", {3, 0, 1, 1}, 0, 0, 0, 2 * blk, 2 * blk, 12 * psi / Nd, ga * blk + 4, ga * blk + 4},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++) {
        pass_mem_stats st, ref;
        pass_shard_cfg plain = cases[i].cfg;
        plain.offload_params = plain.offload_optimizer = 0;
        ir_module_destroy(compile_gas(Nd, ga, plain, &ref));
        ir_module *m = compile_gas(Nd, ga, cases[i].cfg, &st);
        const char *nm = cases[i].name;
#define EQ(a, b) CHECK_MSG((a) == (b), "%s: %s = %lld, formula %lld", nm, #a, (long long)(a), (long long)(b))
        EQ(st.state_bytes[IR_ROLE_PARAM], cases[i].dev_param);
        EQ(st.state_bytes[IR_ROLE_GRAD], cases[i].dev_grad);
        EQ(st.state_bytes[IR_ROLE_OPT], cases[i].dev_opt);
        EQ(st.host_state_bytes[IR_ROLE_PARAM], cases[i].host_param);
        EQ(st.host_state_bytes[IR_ROLE_GRAD], cases[i].host_grad);
        EQ(st.host_state_bytes[IR_ROLE_OPT], cases[i].host_opt);
        EQ(st.host_bytes, cases[i].host_param + cases[i].host_grad + cases[i].host_opt);
        /* offload moves state, not the model: the whole state is the ZeRO stage's */
        for (int r = 0; r < IR_NROLE; r++) /* bf16 params and grads: twice their bytes on the host */
            EQ(st.state_bytes[r] + st.host_state_bytes[r] / (r == IR_ROLE_OPT ? 1 : 2), ref.state_bytes[r]);
        EQ(st.h2d_step, cases[i].to_device);
        EQ(st.d2h_step, cases[i].to_host);
        EQ(st.h2d_step, st.h2d_micro * ga + st.h2d_opt);
        EQ(st.comm_step, ref.comm_step); /* collectives are the same */
        CHECK_MSG(st.micro_host_peak + st.opt_host_peak > 0, "%s: no host temporaries", nm);
        /* where the work runs: the optimizer where its state is; each
         * gather of an offloaded param reads a fresh device copy; each
         * host gradient accumulation a copy of the reduced block */
        const ir_program *mp = ir_program_find(m, "micro_step"), *op = ir_program_find(m, "opt_step");
        int adamw = 0, adamw_host = 0, ag = 0, ag_copied = 0, acc_host = 0, acc_copied = 0;
        for (int k = 0; k < op->nnodes; k++)
            if (op->nodes[k].op == IR_OP_adamw) adamw++, adamw_host += has_attr(&op->nodes[k], "on", "host");
        for (int k = 0; k < mp->nnodes; k++) {
            const ir_node *n = &mp->nodes[k];
            if (n->op == IR_OP_all_gather) {
                ag++;
                ag_copied += !IR_REF_IS_GLOBAL(n->in[0]) && mp->nodes[mp->values[n->in[0]].node].op == IR_OP_to_device;
            }
            if (n->op == IR_OP_acc && has_attr(n, "on", "host")) {
                acc_host++;
                acc_copied += mp->nodes[mp->values[n->in[1]].node].op == IR_OP_to_host;
            }
        }
        CHECK_MSG(adamw > 0 && adamw_host == (cases[i].cfg.offload_optimizer ? adamw : 0), "%s: %d of %d adamw on the host", nm,
                  adamw_host, adamw);
        CHECK_MSG(ag_copied == (cases[i].cfg.offload_params ? ag : 0) && (ag > 0) == (cases[i].cfg.stage == 3),
                  "%s: %d of %d gathers read a to_device copy", nm, ag_copied, ag);
        CHECK_MSG(acc_copied == acc_host && (acc_host > 0) == (cases[i].host_grad > 0), "%s: %d host accumulations, %d copied",
                  nm, acc_host, acc_copied);
        /* the text form round-trips and verifies */
        ax_buf t = {0};
        ir_print(m, &t);
        CHECK(strstr(t.data, "place=\"host\"") && strstr(t.data, "to_host(") && strstr(t.data, "to_device("));
        ax_diag d;
        ax_diag_init(&d);
        ir_module *back = ir_parse(t.data, t.len, "offload", &d);
        CHECK_MSG(back && ir_verify(back, &d) == 0, "%s: %s", nm, d.n ? d.entries[0].msg : "");
        ir_module_destroy(back);
        ax_diag_free(&d);
        ax_buf_free(&t);
        ir_module_destroy(m);
#undef EQ
    }
    /* what DeepSpeed refuses, the pass refuses too */
    struct {
        pass_shard_cfg cfg;
        const char *msg;
    } bad[] = {
        {{2, 0, 1, 0}, "offload_param to cpu needs ZeRO stage 3"},
        {{1, 0, 1, 1}, "offload_param to cpu needs ZeRO stage 3"},
        {{0, 0, 0, 1}, "offload_optimizer to cpu needs ZeRO stage 1, 2 or 3"},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(bad); i++) {
        ax_diag d;
        ax_diag_init(&d);
        pass_mem_stats st;
        ir_module *m;
        CHECK(run_pipeline(Nd, 1, bad[i].cfg, &st, &m, &d) != 0);
        CHECK_MSG(d.n > 0 && strstr(d.entries[0].msg, bad[i].msg), "%s", d.n ? d.entries[0].msg : "(no error)");
        ir_module_destroy(m);
        ax_diag_free(&d);
    }
}

int main(void) {
    const int Nd = 4;
    pass_mem_stats base;
    ir_module *m0 = compile(1, (pass_shard_cfg){0}, &base);
    const int64_t psi = base.params;
    CHECK(psi > 0);
    CHECK_EQ(base.state_bytes[IR_ROLE_PARAM], 2 * psi);
    CHECK_EQ(base.state_bytes[IR_ROLE_GRAD], 2 * psi);
    CHECK_EQ(base.state_bytes[IR_ROLE_OPT], 12 * psi);
    CHECK_EQ(base.comm_step, 0);
    CHECK(base.micro_peak > 0);
    ir_module_destroy(m0);

    struct {
        int stage, reshard;
        int64_t model_state; /* bytes, exact (no padding: all dims divide by 4) */
        int64_t comm_psi;    /* in units of Psi bf16 elements */
    } cases[] = {
        {0, 0, (2 + 2 + 12) * psi, 2},
        {1, 0, 4 * psi + 12 * psi / Nd, 2},
        {2, 0, 2 * psi + (2 + 12) * psi / Nd, 2},
        {3, 1, (2 + 2 + 12) * psi / Nd, 3},
        {3, 0, (2 + 2 + 12) * psi / Nd, 2},
    };
    for (size_t i = 0; i < AX_ARRAY_LEN(cases); i++) {
        pass_mem_stats st;
        ir_module *m = compile(Nd, (pass_shard_cfg){cases[i].stage, cases[i].reshard, 0, 0}, &st);
        int64_t ms = st.state_bytes[IR_ROLE_PARAM] + st.state_bytes[IR_ROLE_GRAD] + st.state_bytes[IR_ROLE_OPT];
        CHECK_EQ(st.padding_elems, 0);
        CHECK_MSG(ms == cases[i].model_state, "stage %d: model state %lld bytes/rank, formula %lld", cases[i].stage,
                  (long long)ms, (long long)cases[i].model_state);
        int64_t want = cases[i].comm_psi * psi * 2; /* bf16 bytes */
        /* ZeRO-3 with resharding gathers again in backward only what the
         * backward reads: the (untied) embedding table's gradient needs the
         * token ids, not the table, so its gather is not repeated. */
        if (cases[i].stage == 3 && cases[i].reshard) want -= 256 * 64 * 2;
        /* + the all-reduced global grad-norm scalar (2 x 4 bytes) for ZeRO */
        CHECK_MSG(st.comm_step >= want && st.comm_step <= want + 8, "stage %d reshard %d: %lld bytes/step, expected %lld (+8)",
                  cases[i].stage, cases[i].reshard, (long long)st.comm_step, (long long)want);
        /* the collectives are where the stage puts them */
        int ag_micro = count_op(m, "micro_step", IR_OP_all_gather), rs_micro = count_op(m, "micro_step", IR_OP_reduce_scatter);
        int ar_opt = count_op(m, "opt_step", IR_OP_all_reduce), ag_opt = count_op(m, "opt_step", IR_OP_all_gather);
        switch (cases[i].stage) {
        case 0: /* grad_accum 1: reduced in micro_step as backward produces the gradients (overlap) */
            CHECK(ag_micro == 0 && rs_micro == 0 && count_op(m, "micro_step", IR_OP_all_reduce) > 0 && ar_opt == 0 && ag_opt == 0);
            break;
        case 1: CHECK(ag_micro == 0 && rs_micro == 0 && count_op(m, "opt_step", IR_OP_reduce_scatter) > 0 && ag_opt > 0); break;
        case 2: CHECK(ag_micro == 0 && rs_micro > 0 && ag_opt > 0); break;
        case 3: CHECK(ag_micro > 0 && rs_micro > 0 && ag_opt == 0); break;
        }
        /* the text form round-trips with the sharding annotations */
        ax_buf t = {0};
        ir_print(m, &t);
        CHECK(cases[i].stage == 0 || strstr(t.data, "<dp:0>") != NULL);
        ax_diag d;
        ax_diag_init(&d);
        ir_module *back = ir_parse(t.data, t.len, "shard", &d);
        CHECK(back && ir_verify(back, &d) == 0);
        ir_module_destroy(back);
        ax_diag_free(&d);
        ax_buf_free(&t);
        ir_module_destroy(m);
    }
    /* The fused lm head + loss computes the lm_head's gradient in the
     * forward: ZeRO-3 does not gather the (untied) lm_head again in
     * backward either, so a step moves 3 Psi - 2E; same model state. */
    g_flce = 1;
    {
        pass_mem_stats st;
        ir_module *m = compile(Nd, (pass_shard_cfg){3, 1, 0, 0}, &st);
        CHECK_EQ(count_op(m, "micro_step", IR_OP_linear_cross_entropy), 1);
        int64_t want = (3 * psi - 2 * 256 * 64) * 2;
        CHECK_MSG(st.comm_step >= want && st.comm_step <= want + 8, "fused lm head, ZeRO-3: %lld bytes/step, expected %lld (+8)",
                  (long long)st.comm_step, (long long)want);
        CHECK_EQ(st.state_bytes[IR_ROLE_PARAM] + st.state_bytes[IR_ROLE_GRAD] + st.state_bytes[IR_ROLE_OPT], 16 * psi / Nd);
        ir_module_destroy(m);
    }
    g_flce = 0;
    /* DDP with gradient accumulation reduces once per step, in opt_step (no_sync for the other micro-batches) */
    {
        pass_mem_stats st;
        ir_module *m = compile_gas(Nd, 2, (pass_shard_cfg){0, 0, 0, 0}, &st);
        CHECK(count_op(m, "micro_step", IR_OP_all_reduce) == 0 && count_op(m, "opt_step", IR_OP_all_reduce) > 0);
        CHECK_MSG(st.comm_step >= 2 * psi * 2 && st.comm_step <= 2 * psi * 2 + 8, "DDP gas 2: %lld bytes/step",
                  (long long)st.comm_step);
        ir_module_destroy(m);
    }
    test_offload(psi, Nd);
    test_seqpar_accounting();
    return check_done();
}
