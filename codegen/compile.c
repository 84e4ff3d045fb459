/* compile.c — the compile driver (see compile.h). */
#include "codegen/compile.h"
#include "runtime/tokenizer.h"

#include "codegen/cache.h"
#include "codegen/kbin.h"
#include "frontend/config.h"
#include "frontend/lower.h"
#include "ir/ir.h"
#include "ir/planfile.h"
#include "passes/passes.h"

#include <jansson.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static int world_from_env(int given) {
    if (given > 0) return given;
    const char *w = getenv("WORLD_SIZE");
    if (w && *w) {
        int v = atoi(w);
        if (v > 0) return v;
    }
    return 1;
}

static double gib(int64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* "1.234 GiB" / "5.6 MiB" / "7.8 KiB" / "12 B" into one of 4 rotating buffers */
static const char *human(int64_t b) {
    static char bufs[8][32];
    static int k;
    char *o = bufs[k++ & 7];
    double v = (double)b;
    if (v >= 1073741824.0) snprintf(o, 32, "%.3f GiB", v / 1073741824.0);
    else if (v >= 1048576.0) snprintf(o, 32, "%.2f MiB", v / 1048576.0);
    else if (v >= 1024.0) snprintf(o, 32, "%.1f KiB", v / 1024.0);
    else snprintf(o, 32, "%lld B", (long long)b);
    return o;
}

/* How ring attention splits each row over the sp ranks (passes/seqpar.c).
 * batch_ring / batch_stripe name their split; batch_zigzag and
 * varlen_llama3 (the default with sample packing) run as the zigzag ring:
 * the same attention, balanced causal work, and per rank the same K/V
 * volume ((sp-1)/sp of the row's K/V) as llama3's all-gather while holding
 * only two K/V blocks at a time. */
static const char *sp_layout(const fe_config *c) {
    const char *f = c->ring_attn_func ? c->ring_attn_func : "";
    return !strcmp(f, "batch_ring") ? "contiguous" : !strcmp(f, "batch_stripe") ? "stripe" : "zigzag";
}

/* Gradient buckets as the config's data-parallel engine makes them: DDP by
 * ddp_bucket_cap_mb (bytes), DeepSpeed by reduce_bucket_size (elements,
 * "auto" = hidden^2 as the HF Trainer resolves it), FSDP per wrapped unit. */
static void set_buckets(const fe_config *c, const fe_model *model, pass_bucket_cfg *b) {
    if (c->ds.present) {
        b->by = PASS_BUCKET_ELEMS;
        fe_deepspeed_model_autos(&c->ds, model->hidden_size, &b->cap, NULL, NULL);
    } else if (c->fsdp.enabled) {
        b->by = PASS_BUCKET_UNIT;
    } else {
        b->by = PASS_BUCKET_BYTES;
        b->cap = (int64_t)(c->ddp_bucket_cap_mb * 1048576.0);
        if (b->cap < 1) b->cap = 1;
    }
}

/* Communicator calls and gradient buckets (memplan's figures) into the
 * summary and the STAT json. */
static void stats_buckets(const ir_module *m, const pass_mem_stats *st, json_t *j, ax_buf *summary) {
    int64_t ga = 1;
    const ir_attr *a = ir_module_attr(m, "train.grad_accum");
    if (a && a->kind == IR_ATTR_INT) ga = a->i;
    json_object_set_new(j, "collective_calls_per_step", json_integer(st->calls_step));
    json_object_set_new(j, "collective_calls_per_micro_step", json_integer(st->calls_micro));
    json_object_set_new(j, "collective_calls_per_optimizer_step", json_integer(st->calls_opt));
    ax_buf_printf(summary, "axoc: collective calls per step and rank: %lld (micro_step %lld x %lld + opt_step %lld)\n",
                  (long long)st->calls_step, (long long)st->calls_micro, (long long)ga, (long long)st->calls_opt);
    const ir_attr *by = ir_module_attr(m, "grad_buckets.by"), *cap = ir_module_attr(m, "grad_buckets.cap");
    if (!by || by->kind != IR_ATTR_STR) return;
    json_t *jb = json_object();
    json_object_set_new(jb, "by", json_string(by->s));
    if (cap && cap->kind == IR_ATTR_INT) json_object_set_new(jb, "cap", json_integer(cap->i));
    static const char *const progs[] = {"micro_step", "opt_step"};
    for (size_t k = 0; k < AX_ARRAY_LEN(progs); k++) {
        char key[96];
        snprintf(key, sizeof key, "memplan.%s.bucket_bytes", progs[k]);
        const ir_attr *b = ir_module_attr(m, key);
        if (!b || b->kind != IR_ATTR_INTS) continue;
        json_t *arr = json_array();
        for (int i = 0; i < b->n; i++) json_array_append_new(arr, json_integer(b->ints[i]));
        json_object_set_new(jb, progs[k], arr);
        ax_buf_printf(summary, "axoc: gradient buckets in %s (", progs[k]);
        if (!strcmp(by->s, "bytes") && cap)
            ax_buf_printf(summary, "ddp_bucket_cap_mb: cap %s", human(cap->i));
        else if (!strcmp(by->s, "elements") && cap)
            ax_buf_printf(summary, "reduce_bucket_size: cap %lld elements", (long long)cap->i);
        else
            ax_buf_printf(summary, "one per wrapped unit");
        ax_buf_printf(summary, "): %d bucket%s, one call each:", b->n, b->n > 1 ? "s" : "");
        for (int i = 0; i < b->n && i < 8; i++) ax_buf_printf(summary, "%s %s", i ? "," : "", human(b->ints[i]));
        if (b->n > 8) ax_buf_printf(summary, ", ... (%d more)", b->n - 8);
        ax_buf_printf(summary, "\n");
    }
    json_object_set_new(j, "gradient_buckets_bytes", jb);
}

/* What passes/fuse.c fused, per program (its module attrs), into the
 * summary and the STAT json. Nothing when nothing was fused. */
static void stats_fusion(const ir_module *m, json_t *j, ax_buf *summary) {
    json_t *jf = json_object();
    int any = 0;
    for (int i = 0; i < m->nprograms; i++) {
        const char *pn = m->programs[i]->name;
        char kg[128], kn[128];
        snprintf(kg, sizeof kg, "fuse.%s.groups", pn);
        snprintf(kn, sizeof kn, "fuse.%s.nodes", pn);
        int64_t g = ir_attr_int(m->attrs, m->nattrs, kg, 0), n = ir_attr_int(m->attrs, m->nattrs, kn, 0);
        if (!g) continue;
        json_t *p = json_object();
        json_object_set_new(p, "fused_nodes", json_integer(g));
        json_object_set_new(p, "replaced_nodes", json_integer(n));
        json_object_set_new(jf, pn, p);
        ax_buf_printf(summary, "%s %s %lld elementwise ops -> %lld fused kernel%s", any ? "," : "axoc: fused:", pn,
                      (long long)n, (long long)g, g > 1 ? "s" : "");
        any = 1;
    }
    if (any) ax_buf_printf(summary, "\n");
    json_object_set_new(j, "fusion", jf);
}

/* The figures of memplan as JSON (plan STAT section) and as the summary
 * axoc prints before anything runs; with a memory target, the advice of
 * the reference's "Memory Issues" list, made exact. */
static json_t *stats_json(const ir_module *m, const pass_mem_stats *st, const fe_config *c, int world, double gpu_mem_gib,
                          ax_buf *summary, ax_diag *d) {
    int64_t state = st->state_bytes[IR_ROLE_PARAM] + st->state_bytes[IR_ROLE_GRAD] + st->state_bytes[IR_ROLE_OPT] +
                    st->state_bytes[IR_ROLE_TEMP];
    int64_t peak = state + st->arena_peak;
    json_t *j = json_object();
    json_object_set_new(j, "parameters", json_integer(st->params));
    json_object_set_new(j, "trainable_parameters", json_integer(st->trainable_params));
    json_object_set_new(j, "world_size", json_integer(world));
    json_t *mem = json_object();
    json_object_set_new(mem, "params", json_integer(st->state_bytes[IR_ROLE_PARAM]));
    json_object_set_new(mem, "grads", json_integer(st->state_bytes[IR_ROLE_GRAD]));
    json_object_set_new(mem, "optimizer_state", json_integer(st->state_bytes[IR_ROLE_OPT]));
    json_object_set_new(mem, "activations_peak", json_integer(st->micro_peak));
    json_object_set_new(mem, "optimizer_step_temporaries_peak", json_integer(st->opt_peak));
    if (st->eval_peak) json_object_set_new(mem, "eval_peak", json_integer(st->eval_peak));
    json_object_set_new(mem, "peak", json_integer(peak));
    json_object_set_new(mem, "host_offloaded", json_integer(st->host_bytes));
    json_object_set_new(mem, "host_params", json_integer(st->host_state_bytes[IR_ROLE_PARAM]));
    json_object_set_new(mem, "host_grads", json_integer(st->host_state_bytes[IR_ROLE_GRAD]));
    json_object_set_new(mem, "host_optimizer_state", json_integer(st->host_state_bytes[IR_ROLE_OPT]));
    json_object_set_new(mem, "host_temporaries_peak",
                        json_integer(st->micro_host_peak > st->opt_host_peak ? st->micro_host_peak : st->opt_host_peak));
    json_object_set_new(j, "bytes_per_rank", mem);
    json_object_set_new(j, "shard_padding_elements", json_integer(st->padding_elems));
    json_object_set_new(j, "collective_bytes_per_step", json_integer(st->comm_step));
    json_object_set_new(j, "collective_bytes_per_micro_step", json_integer(st->comm_micro));
    json_object_set_new(j, "ring_bytes_per_micro_step", json_integer(st->ring_micro));
    json_object_set_new(j, "collective_bytes_per_optimizer_step", json_integer(st->comm_opt));
    json_object_set_new(j, "host_to_device_bytes_per_step", json_integer(st->h2d_step));
    json_object_set_new(j, "device_to_host_bytes_per_step", json_integer(st->d2h_step));
    if (c->base_model_hub) /* which commit a moving branch named when this plan was made */
        ax_buf_printf(summary, "axoc: base_model %s at revision %s: commit %s (%s)\n", c->base_model_hub,
                      c->base_model_revision ? c->base_model_revision : "main", strrchr(c->base_model, '/') + 1,
                      c->base_model);
    if (st->trainable_params != st->params && c->nunfrozen)
        ax_buf_printf(summary, "axoc: %lld parameters, %lld trainable (%.2f%%: unfrozen_parameters; the rest is frozen), %d rank%s\n",
                      (long long)st->params, (long long)st->trainable_params,
                      100.0 * (double)st->trainable_params / (double)(st->params ? st->params : 1), world, world > 1 ? "s" : "");
    else if (st->trainable_params != st->params)
        ax_buf_printf(summary, "axoc: %lld parameters, %lld trainable (%.2f%%: the adapters%s; the base is frozen), %d rank%s\n",
                      (long long)st->params, (long long)st->trainable_params,
                      100.0 * (double)st->trainable_params / (double)(st->params ? st->params : 1),
                      c->nlora_modules_to_save ? " and lora_modules_to_save" : "", world, world > 1 ? "s" : "");
    else
        ax_buf_printf(summary, "axoc: %lld parameters, %d rank%s\n", (long long)st->params, world, world > 1 ? "s" : "");
    if (c->tok.path) { /* datasets of text: what axorun will tokenize them with */
        ax_buf_printf(summary, "axoc: datasets of text, tokenized by axorun with %s (bos %s, eos %s):", c->tok.path,
                      c->tok.bos ? c->tok.bos : "none", c->tok.eos ? c->tok.eos : "none");
        for (int i = 0; i < c->ndatasets; i++) {
            const fe_dataset *ds = &c->datasets[i];
            ax_buf_printf(summary, "%s %s", i ? "," : "", !ds->formatted ? "pre-tokenized" : ds->spec.user_defined ? "user_defined" : rt_fmt_names[ds->spec.fmt]);
            if (ds->formatted && ds->spec.fmt == RT_FMT_CHAT)
                ax_buf_printf(summary, " (%s)", ds->spec.jinja ? "jinja template" : rt_tpl_name(ds->spec.tpl));
        }
        ax_buf_printf(summary, "; train_on_inputs %s; `axoc preprocess` shows the samples\n",
                      c->train_on_inputs ? "true" : "false");
    }
    int64_t rows, row_len;
    fe_token_shape(c, &rows, &row_len);
    if (c->sample_packing) /* how Axolotl batches the packs for this attention backend (frontend/lower.h) */
        ax_buf_printf(summary, "axoc: packing: %s\n",
                      rows != c->micro_batch_size && !c->attn_packs
                          ? "a micro-batch is one bin of micro_batch_size x sequence_len tokens (multipack_real_batches: "
                            "false; Axolotl counts the steps as for real batches, its attention not reading packed "
                            "sequences)"
                      : rows != c->micro_batch_size
                          ? "a micro-batch is one bin of micro_batch_size x sequence_len tokens, as Axolotl packs for an "
                            "attention kernel that reads packed sequences"
                      : c->multipack_real_batches
                          ? "micro_batch_size bins of sequence_len tokens a micro-batch (multipack_real_batches: Axolotl's "
                            "batching for an attention that does not read packed sequences: sdpa, eager, "
                            "kernels-community/vllm-flash-attn3, none set)"
                          : "one bin of sequence_len tokens a micro-batch");
    if (c->sequence_parallel_degree > 1)
        ax_buf_printf(summary,
                      "axoc: sequence parallel: %d dp x %lld sp ranks, ring attention (%s layout), %lld of %lld tokens per "
                      "row on each rank; ring traffic per rank %s per micro-step, %s per step\n",
                      world / (int)c->sequence_parallel_degree, (long long)c->sequence_parallel_degree, sp_layout(c),
                      (long long)(row_len / c->sequence_parallel_degree), (long long)row_len,
                      human(st->ring_micro), human(st->ring_micro * c->gradient_accumulation_steps));
    const char *prec = !c->bf16      ? "f32 weights and gradients"
                       : c->bf16_pure ? "pure bf16 (bfloat16: true): bf16 weights and gradients, no master copy, updates "
                                        "stochastically rounded"
                                      : "bf16 weights and gradients, f32 master weights (bf16: true)";
    const char *moments = c->bf16_pure ? "bf16" : "f32";
    char m8[256];
    if (c->optimizer_8bit) { /* which params adamw8 updates */
        const ir_program *op = ir_program_find((ir_module *)m, "opt_step");
        int64_t nt = 0, n8 = 0, e8 = 0, et = 0;
        for (int i = 0; op && i < op->nnodes; i++) {
            const ir_node *n = &op->nodes[i];
            if (n->op != IR_OP_adamw && n->op != IR_OP_adamw8) continue;
            int64_t e = ir_type_numel(&m->globals[IR_REF_GLOBAL(n->in[0])].type);
            nt++, et += e;
            if (n->op == IR_OP_adamw8) n8++, e8 += e;
        }
        const int tao = c->optimizer && !strcmp(c->optimizer, "adamw_torch_8bit");
        snprintf(m8, sizeof m8, "8-bit block-wise (%s) for %lld of %lld tensors (%.1f%% of the elements; "
                                "the others %s: 1-d or under 4096 elements%s)",
                 tao ? "adamw_torch_8bit" : "adamw_bnb_8bit", (long long)n8, (long long)nt,
                 100.0 * (double)e8 / (double)(et ? et : 1), moments, tao ? " or no multiple of 256" : "");
        moments = m8;
    }
    json_object_set_new(j, "precision", json_string(!c->bf16 ? "f32" : c->bf16_pure ? "bf16_pure" : "bf16_master_f32"));
    json_object_set_new(j, "adam_moments", json_string(c->optimizer_8bit ? "8bit" : c->bf16_pure ? "bf16" : "f32"));
    if (c->rl == FE_RL_DPO) { /* which TRL trainer the plan is, and its loss */
        const int k = c->rl_kind;
        ax_buf_printf(summary, "axoc: rl: %s: TRL's %s, beta %g, loss %s", k == FE_RL_SIMPO ? "simpo" : k == FE_RL_ORPO ? "orpo"
                      : c->rl_ipo ? "ipo" : "dpo", k == FE_RL_SIMPO ? "CPOTrainer" : k == FE_RL_ORPO ? "ORPOTrainer" : "DPOTrainer",
                      c->rl_beta, c->dpo_loss_types ? c->dpo_loss_types : "sigmoid");
        if (k == FE_RL_SIMPO) ax_buf_printf(summary, " (simpo_gamma %g) + cpo_alpha %g x NLL", c->simpo_gamma, c->cpo_alpha);
        if (k == FE_RL_ORPO) ax_buf_puts(summary, " + NLL of the chosen rows' every token");
        if (k == FE_RL_DPO_TRAINER && c->dpo_sft_weight != 0) ax_buf_printf(summary, " + %g x sft", c->dpo_sft_weight);
        ax_buf_puts(summary, k == FE_RL_DPO_TRAINER ? "; the reference is the starting model, taken before the first step\n"
                                                    : "; no reference model\n");
    }
    ax_buf_printf(summary, "axoc: precision: %s; AdamW moments %s%s\n", prec, moments,
                  st->trainable_params != st->params && !c->nunfrozen ? " (LoRA adapters: f32 weights)" : "");
    const int axolotl_groups = c->loraplus_lr_ratio <= 0 && (c->lr_groups_set || !isnan(c->embedding_lr) ||
                                                             !isnan(c->embedding_lr_scale));
    if (c->loraplus_lr_ratio > 0 || axolotl_groups) { /* the optimizer groups, as the adamw nodes carry them */
        const ir_program *op = ir_program_find((ir_module *)m, "opt_step");
        int64_t nt = 0, ns = 0, nz = 0;
        for (int i = 0; op && i < op->nnodes; i++) {
            const ir_node *n = &op->nodes[i];
            if (n->op != IR_OP_adamw && n->op != IR_OP_adamw8) continue;
            nt++;
            ns += ir_attr_float(n->attrs, n->nattrs, "lr_scale", 1.0) != 1.0;
            nz += ir_attr_float(n->attrs, n->nattrs, "weight_decay", 0.0) == 0.0;
        }
        if (!axolotl_groups)
            ax_buf_printf(summary, "axoc: LoRA+: %lld of %lld tensors (lora_B and 1-d) train at learning_rate x %g, the "
                                   "others at learning_rate\n", (long long)ns, (long long)nt, c->loraplus_lr_ratio);
        else
            ax_buf_printf(summary, "axoc: Axolotl's optimizer groups (embedding_lr, embedding_lr_scale, lr_groups): %lld "
                                   "of %lld tensors train at another learning rate; %lld without weight decay (embeddings, "
                                   "norms, biases)\n", (long long)ns, (long long)nt, (long long)nz);
    }
    ax_buf_printf(summary, "axoc: per-rank memory %s = params %s + grads %s + optimizer state %s + activations %s\n",
                  human(peak), human(st->state_bytes[IR_ROLE_PARAM]), human(st->state_bytes[IR_ROLE_GRAD]),
                  human(st->state_bytes[IR_ROLE_OPT]), human(st->arena_peak));
    int64_t most = 0; /* MoE layers: the CUDA executor's per-node scratch (runtime/cuda_exec.c g_moe_ffn) is beyond the
                       * memory plan; --gpu-mem's check below counts it (axorun's fit check counts every scratch) */
    {
        const ir_program *mp = ir_program_find((ir_module *)m, "micro_step");
        for (int i = 0; mp && i < mp->nnodes; i++) {
            const ir_node *n = &mp->nodes[i];
            const int oss = n->op == IR_OP_moe_ffn_oss || n->op == IR_OP_moe_ffn_oss_bwd; /* gpt-oss: wgu [E, H, 2I] */
            const int fwd = n->op == IR_OP_moe_ffn || n->op == IR_OP_moe_ffn_oss;
            if (!fwd && n->op != IR_OP_moe_ffn_bwd && n->op != IR_OP_moe_ffn_oss_bwd) continue;
            const ir_type *x = ir_ref_type(m, mp, n->in[0]), *idx = ir_ref_type(m, mp, n->in[1]);
            const ir_type *wgu = ir_ref_type(m, mp, n->in[3]);
            const int64_t H = x->dims[x->rank - 1], E = wgu->dims[0], I = wgu->dims[oss ? 2 : 1] / 2;
            const int64_t np = ir_type_numel(idx);
            /* grouping, then f32 per-slot buffers: act, o, gu (forward); act, o, do, da, dgu (backward; gpt-oss's
             * x per slot reuses do's) */
            int64_t b = (3 * E + 2) * 4 + np * 4 + np * 4 * (fwd ? 3 * I + H : 4 * I + 2 * H);
            most = b > most ? b : most;
        }
        if (most) {
            ax_buf_printf(summary, "axoc: MoE layers: the CUDA executor also takes up to %s of scratch per rank for them "
                                   "(per-slot activations in f32)\n", human(most));
            json_object_set_new(j, "moe_scratch_bytes", json_integer(most));
        }
    }
    int64_t host_tmp = st->micro_host_peak > st->opt_host_peak ? st->micro_host_peak : st->opt_host_peak;
    if (st->host_bytes || host_tmp)
        ax_buf_printf(summary, "axoc: offloaded to host memory: %s per rank = params %s + grads %s + optimizer state %s "
                               "(+ host temporaries %s)\n",
                      human(st->host_bytes), human(st->host_state_bytes[IR_ROLE_PARAM]),
                      human(st->host_state_bytes[IR_ROLE_GRAD]), human(st->host_state_bytes[IR_ROLE_OPT]), human(host_tmp));
    if (c->save_steps > 0 || c->saves_per_epoch > 0) { /* what each checkpoint-N/ takes on disk */
        int64_t model = 0, opt = 0;
        for (int g = 0; g < m->nglobals; g++) {
            const ir_global *G = &m->globals[g];
            int adapter = st->trainable_params != st->params; /* an adapter dir holds the adapters only */
            if (G->role == IR_ROLE_PARAM && (!adapter || ir_attr_int(G->attrs, G->nattrs, "adapter", 0)))
                model += G->type.dtype == IR_BF16 ? 2 * ir_type_numel(&G->type)
                         : adapter                 ? 4 * ir_type_numel(&G->type)
                                                   : ir_type_bytes(&G->type);
            if (G->role == IR_ROLE_OPT) opt += ir_type_bytes(&G->type);
        }
        ax_buf_printf(summary, "axoc: each checkpoint-N/ takes %s (model %s + optimizer state %s, for resuming)%s\n",
                      human(model + opt), human(model), human(opt),
                      c->save_total_limit > 0 ? "; save_total_limit keeps the newest ones" : "");
        json_object_set_new(j, "checkpoint_bytes", json_integer(model + opt));
    }
    ax_buf_printf(summary, "axoc: collective volume per step and rank: %s (%lld bytes; shard padding %lld elements)\n",
                  human(st->comm_step), (long long)st->comm_step, (long long)st->padding_elems);
    if (st->h2d_step || st->d2h_step)
        ax_buf_printf(summary, "axoc: host<->device (PCIe) copies per step and rank: %s (%lld bytes: %s to the device, %s to the host)\n",
                      human(st->h2d_step + st->d2h_step), (long long)(st->h2d_step + st->d2h_step), human(st->h2d_step),
                      human(st->d2h_step));
    stats_buckets(m, st, j, summary);
    stats_fusion(m, j, summary);
    if (gpu_mem_gib > 0 && gib(peak + most) > gpu_mem_gib) {
        int stage = c->ds.present ? c->ds.zero_stage : c->fsdp.enabled ? 3 : 0;
        ax_buf advice = {0};
        if (world > 1 && stage < 3)
            ax_buf_printf(&advice, "a higher ZeRO stage (deepspeed_configs/zero%d.json) shards more state over the ranks", stage + 1);
        else if (!st->host_bytes)
            ax_buf_printf(&advice, "CPU offload (deepspeed_configs/zero3_bf16_cpuoffload_all.json or fsdp_config.offload_params)");
        else
            ax_buf_printf(&advice, "more ranks");
        if (c->bf16 && !c->bf16_pure && !c->ds.present && !c->optimizer_8bit && st->trainable_params == st->params)
            ax_buf_printf(&advice, "; bfloat16: true (pure bf16: bf16 AdamW moments and no f32 master copy, 8 instead "
                                   "of 16 bytes of state per parameter)");
        if (!c->optimizer_8bit && !c->ds.optimizer_section && st->trainable_params == st->params)
            ax_buf_printf(&advice, "; optimizer: adamw_bnb_8bit (8-bit AdamW moments)");
        if (c->micro_batch_size > 1)
            ax_buf_printf(&advice, "; micro_batch_size %lld -> %lld (about %s of activations instead of %s; "
                                   "gradient_accumulation_steps x2 keeps the global batch)",
                          (long long)c->micro_batch_size, (long long)(c->micro_batch_size / 2), human(st->micro_peak / 2),
                          human(st->micro_peak));
        if (!c->gradient_checkpointing)
            ax_buf_printf(&advice, "; gradient_checkpointing: true (keeps only each layer's input)");
        ax_warn(d, c->path, "a rank needs %s%s but --gpu-mem is %.3f GiB: try %s", human(peak + most),
                most ? " (with the MoE layers' CUDA scratch)" : "", gpu_mem_gib, advice.data);
        ax_buf_free(&advice);
    }
    (void)m;
    return j;
}

static char *json_text(json_t *j) { return json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1)); }

/* Refuses what the config asks for that this build does not implement
 * yet, rather than silently training something else. */
static int check_supported(const fe_config *c, int world, ax_diag *d) {
    (void)c, (void)world, (void)d;
    return 0;
}

/* lora_target_modules as a regex (PEFT: re.fullmatch over each module's
 * name): the names of the modules with a weight it matches, in the
 * module's order; NULL (and *n 0) after an error in d. */
static const char **regex_targets(const fe_config *c, const fe_model *mdl, const ir_module *m, int *n, ax_arena *ar,
                                  ax_diag *d) {
    const char *pat = ax_arena_printf(ar, "(?:%s)$", c->lora_target_regex);
    const char **out = ax_arena_alloc(ar, sizeof *out * (size_t)(3 * m->nglobals + 1)); /* experts: 2 names each */
    *n = 0;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        const char *hf = G->name; /* the module's name, which PEFT matches */
        size_t len = strlen(hf);
        if (G->role != IR_ROLE_PARAM || len < 8 || strcmp(hf + len - 7, ".weight")) continue;
        const char *mod = ax_arena_strndup(ar, hf, len - 7);
        char err[256];
        if (rt_re_match(pat, mod, err, sizeof err) > 0) out[(*n)++] = mod;
    }
    /* An MoE layer's experts, stacked as transformers 5 holds them: PEFT probes the regex with the experts' old
     * (per-expert) module names in their container, model.layers.N.mlp.experts.gate_proj, ..., and passes the names
     * it matches on to its MoE conversion (lora.c), which moves them onto the stacked weights */
    for (int g = 0; g < m->nglobals && mdl->layer_moe; g++) {
        const ir_global *G = &m->globals[g];
        const char *dot = strrchr(G->name, '.');
        if (G->role != IR_ROLE_PARAM || !ir_attr_int(G->attrs, G->nattrs, "stack", 0) || !dot) continue;
        const int gu = !strcmp(dot + 1, "gate_up_proj");
        for (int k = gu ? 0 : 2; k < (gu ? 2 : 3); k++) {
            const char *mod = ax_arena_printf(ar, "%.*s.%s", (int)(dot - G->name), G->name, mdl->moe_parts[k]);
            char err[256];
            if (rt_re_match(pat, mod, err, sizeof err) > 0) out[(*n)++] = mod;
        }
    }
    /* An MoE model: PEFT resolves the regex to the last names of what it matches (then moves the router's and
     * experts' onto their weights), so a name matched in one layer adapts that module in every layer */
    for (int i = 0; mdl->layer_moe && i < *n; i++) {
        const char *dot = strrchr(out[i], '.');
        if (dot) out[i] = dot + 1;
    }
    if (!*n) {
        ax_error(d, c->path ? c->path : "config", "lora_target_modules: \"%s\" matches no module of the model%s (PEFT "
                 "matches the whole name, e.g. %slayers.0.self_attn.q_proj)", c->lora_target_regex,
                 mdl->multimodal ? "'s language model, which is all axo trains" : "",
                 mdl->text_module ? mdl->text_module : "model.");
        return NULL;
    }
    return out;
}

/* lora_model_dir with no targets in the config: Axolotl's LoraConfig then has target_modules=[], but
 * PeftModel.from_pretrained reads the adapter's own adapter_config.json, so its target_modules (a list, or one
 * regex string) and target_parameters are the run's. Into c (arena copies); 0, or -1 after an error naming the
 * file. */
static int adapter_dir_targets(fe_config *c, ax_arena *ar, ax_diag *d) {
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_config.json", c->lora_model_dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        ax_error(d, path, "cannot read it (lora_model_dir names no targets in the config, so they come from the "
                 "adapter's config, as PEFT reads them): %s", je.text);
        return -1;
    }
    static const char *const keys[] = {"target_modules", "target_parameters"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(j, keys[k]);
        if (!v || json_is_null(v)) continue;
        if (k == 0 && json_is_string(v)) { /* PEFT's regex over whole module names */
            c->lora_target_regex = ax_arena_strdup(ar, json_string_value(v));
            continue;
        }
        size_t n = json_is_array(v) ? json_array_size(v) : 0;
        const char **out = ax_arena_alloc(ar, sizeof *out * (n + 1));
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            if (!json_is_string(e)) n = 0;
            else out[i] = ax_arena_strdup(ar, json_string_value(e));
        }
        if (!json_is_array(v) || (json_array_size(v) && !n)) {
            ax_error(d, path, "%s: expected a list of names%s", keys[k], k == 0 ? " or a regex string" : "");
            json_decref(j);
            return -1;
        }
        if (k == 0) c->lora_target_modules = out, c->nlora_target_modules = (int)n;
        else c->lora_target_parameters = out, c->nlora_target_parameters = (int)n;
    }
    json_decref(j);
    return 0;
}

static pass_lora_cfg lora_cfg(const fe_config *c, const fe_model *mdl, const char **rx, int nrx, ax_diag *d) {
    pass_lora_cfg l = {.adapter = c->adapter == FE_ADAPTER_LORA    ? PASS_ADAPTER_LORA
                                  : c->adapter == FE_ADAPTER_QLORA ? PASS_ADAPTER_QLORA
                                                                   : PASS_ADAPTER_NONE,
                       .r = c->lora_r,
                       .alpha = c->lora_alpha,
                       .dropout = c->lora_dropout,
                       .rslora = c->peft_use_rslora,
                       .dora = c->peft_use_dora,
                       .target_linear = c->lora_target_linear,
                       .all_linear_string = c->lora_all_linear_string,
                       .targets = c->lora_target_modules,
                       .ntargets = c->nlora_target_modules,
                       .target_params = c->lora_target_parameters,
                       .ntarget_params = c->nlora_target_parameters,
                       .bf16 = c->bf16,
                       .quantize_moe = c->quantize_moe_experts,
                       .model_dir = c->lora_model_dir,
                       .save_modules = c->lora_modules_to_save,
                       .nsave = c->nlora_modules_to_save,
                       .init = c->peft_init_lora_weights,
                       .layers = c->peft_layers,
                       .nlayers = c->npeft_layers,
                       .layers_int = c->peft_layers_int,
                       .pattern = c->peft_layers_pattern,
                       .npattern = c->npeft_layers_pattern,
                       .pattern_str = c->peft_layers_pattern_str,
                       .tokens = c->trainable_tokens,
                       .ntokens = c->ntrainable_tokens,
                       .foreign = mdl->foreign,
                       .nforeign = mdl->nforeign};
    if (rx) l.targets = rx, l.ntargets = nrx;
    if (l.adapter != PASS_ADAPTER_NONE && c->ntrainable_tokens && mdl->untied_by_weights)
        ax_error(d, c->path ? c->path : "config", "peft_trainable_token_indices: %s/config.json ties lm_head to the "
                 "embedding (tie_word_embeddings, or its default), but the weights hold an lm_head of its own; PEFT, "
                 "reading the config, then trains the token rows of both as one, which axo does not implement: write "
                 "tie_word_embeddings: false in config.json (PEFT then adapts the embedding only)", mdl->dir);
    if (l.adapter == PASS_ADAPTER_NONE && c->ntrainable_tokens)
        ax_warn(d, c->path, "peft_trainable_token_indices: ignored without adapter: lora|qlora (as Axolotl, which passes "
                            "it to PEFT's LoraConfig only)");
    if (l.adapter == PASS_ADAPTER_NONE && c->nlora_modules_to_save)
        ax_warn(d, c->path, "lora_modules_to_save: ignored without adapter: lora|qlora (a full fine-tune trains every module)");
    if (l.adapter != PASS_ADAPTER_NONE && !l.target_linear && !l.ntargets && l.ntarget_params) {
        /* Axolotl passes target_modules=[]: PEFT adapts the parameters alone */
    } else if (l.adapter != PASS_ADAPTER_NONE && !l.target_linear && !l.ntargets) {
        /* (lora_model_dir: the adapter's adapter_config.json has named them by now, adapter_dir_targets.)
         * Axolotl 0.19 hands PEFT target_modules=[] (cfg.lora_target_modules or []), which is not None, so PEFT
         * never looks up its per-family defaults, and with no target_parameters either get_peft_model fails ("No
         * `target_modules` passed but also no `target_parameters` found") */
        ax_error(d, c->path ? c->path : "config", "adapter: %s without lora_target_modules, lora_target_linear or "
                 "lora_target_parameters: Axolotl passes PEFT an empty target list, which PEFT refuses (it does not "
                 "fall back to its defaults for %s then); name the targets, e.g. lora_target_modules: [q_proj, v_proj] "
                 "or lora_target_linear: true",
                 c->adapter == FE_ADAPTER_LORA ? "lora" : "qlora", mdl->arch_name);
    }
    return l;
}

int cg_compile(const cg_options *o, cg_result *r, ax_diag *d) {
    memset(r, 0, sizeof *r);
    int world = world_from_env(o->world_size);
    const char *target = o->target ? o->target : "cpu";
    ax_arena *ar = ax_arena_create();
    fe_config cfg;
    fe_model model;
    ir_module *m = NULL;
    int rc = -1;
    ax_buf summary = {0};
    if (fe_config_load(o->config_path, o->deepspeed, &cfg, ar, d) != 0) goto out;
    if (fe_model_load_with(cfg.base_model, cfg.model_config, &model, ar, d) != 0) goto out;
    if (fe_check_config_model(&cfg, &model, world, d) != 0) goto out;
    if (fe_resolve_tokenizer(&cfg, &model, ar, d) != 0) goto out;
    if (check_supported(&cfg, world, d) != 0) goto out;

    size_t tok_len = 0;
    char *tok_bytes = cfg.tok.path ? ax_read_file(cfg.tok.path, &tok_len, d) : NULL;
    if (cfg.tok.path && !tok_bytes) goto out;
    ax_buf canon = {0};
    fe_config_canonical(&cfg, &canon);
    cg_keyb *kb = cg_key_begin();
    cg_key_add(kb, canon.data, canon.len);
    cg_key_add(kb, model.config_json, model.config_json_len);
    if (tok_bytes) cg_key_add(kb, tok_bytes, tok_len); /* its added tokens decide the ids and the vocab resize */
    free(tok_bytes);
    cg_key_add_str(kb, AXO_VERSION);
    cg_key_add_compiler(kb);
    cg_key_add_str(kb, target);
    char ws[32];
    snprintf(ws, sizeof ws, "world=%d", world);
    /* --gpu-mem changes only the advice printed, not the plan's bytes */
    cg_key_add_str(kb, ws);
    /* META records the FSDP version as written (fsdp_version 1 and 2 forms
     * share their canonical config but not their META) */
    char fv[32];
    snprintf(fv, sizeof fv, "fsdp_version=%d", cfg.fsdp.enabled ? cfg.fsdp.version : 0);
    cg_key_add_str(kb, fv);
    cg_key_add_str(kb, o->no_fuse ? "fuse=off" : "fuse=on"); /* --no-fuse changes the programs */
    for (int a = 0; a < o->narch; a++) cg_key_add_str(kb, o->archs[a]); /* --arch adds the KBIN section */
    cg_key_add_u64(kb, (uint64_t)o->narch);
    cg_cache_key key = cg_key_finish(kb);
    cg_cache_key_hex(&key, r->key_hex);
    char cdir[4096];
    const char *cache_dir = o->cache_dir ? o->cache_dir : cg_cache_dir(cdir, sizeof cdir);
    int cache = o->use_cache && !o->dump_ir && o->gpu_mem_gib <= 0 && cache_dir;
    if (cache && cg_cache_lookup(cache_dir, &key, &r->plan, d) == 1) {
        r->from_cache = 1;
        ax_buf_free(&canon);
        rc = 0;
        goto out;
    }

    m = ir_module_create();
    int32_t loss = 0;
    if (fe_lower(&cfg, &model, world, m, &loss, d) != 0) {
        ax_buf_free(&canon);
        goto out;
    }
    if (o->dump_ir && ax_mkdir_p(o->dump_ir, d) != 0) {
        ax_buf_free(&canon);
        goto out;
    }
    if (cfg.adapter != FE_ADAPTER_NONE && cfg.lora_model_dir && !cfg.lora_target_linear && !cfg.nlora_target_modules &&
        !cfg.lora_target_regex && !cfg.nlora_target_parameters && adapter_dir_targets(&cfg, ar, d) != 0) {
        ax_buf_free(&canon);
        goto out;
    }
    const char **rx = NULL;
    int nrx = 0;
    if (cfg.lora_target_regex && cfg.adapter != FE_ADAPTER_NONE && !cfg.lora_target_linear &&
        !(rx = regex_targets(&cfg, &model, m, &nrx, ar, d))) {
        ax_buf_free(&canon);
        goto out;
    }
    /* Axolotl's lr group lookup: module -> lr in first-seen order, a later group's lr replacing an earlier one's
     * for the same module (a Python dict) */
    int nlrg = 0;
    const char **lrg_module = NULL;
    double *lrg_lr = NULL;
    for (int i = 0; i < cfg.nlr_groups; i++) nlrg += cfg.lr_groups[i].nmodules;
    lrg_module = ax_arena_alloc(ar, sizeof *lrg_module * (size_t)(nlrg + 1));
    lrg_lr = ax_arena_alloc(ar, sizeof *lrg_lr * (size_t)(nlrg + 1));
    nlrg = 0;
    for (int i = 0; i < cfg.nlr_groups; i++)
        for (int k = 0; k < cfg.lr_groups[i].nmodules; k++) {
            int j = 0;
            while (j < nlrg && strcmp(lrg_module[j], cfg.lr_groups[i].modules[k])) j++;
            if (j == nlrg) lrg_module[nlrg++] = cfg.lr_groups[i].modules[k];
            lrg_lr[j] = cfg.lr_groups[i].lr;
        }
    const int opt_groups = cfg.lr_groups_set || !isnan(cfg.embedding_lr) || !isnan(cfg.embedding_lr_scale);
    const int errors_before_cfg = d->nerrors; /* lora_cfg's refusals */
    pass_ctx pc = {.m = m,
                   .loss = loss,
                   .checkpoint = cfg.gradient_checkpointing,
                   .opt = {.beta1 = cfg.adam_beta1,
                           .beta2 = cfg.adam_beta2,
                           .eps = cfg.adam_epsilon,
                           .weight_decay = cfg.weight_decay,
                           .max_grad_norm = cfg.ds.present ? cfg.ds.gradient_clipping : cfg.max_grad_norm,
                           .master_f32 = cfg.bf16 && !cfg.bf16_pure,
                           .pure_bf16 = cfg.bf16_pure,
                           .state_8bit = cfg.optimizer_8bit,
                           .torchao_8bit = cfg.optimizer && !strcmp(cfg.optimizer, "adamw_torch_8bit"),
                           .loraplus_ratio = cfg.loraplus_lr_ratio,
                           .groups = opt_groups,
                           .base_lr = cfg.learning_rate,
                           .emb_scale = isnan(cfg.embedding_lr_scale) ? 0 : cfg.embedding_lr_scale,
                           .emb_lr = isnan(cfg.embedding_lr) ? 0 : cfg.embedding_lr,
                           .lrg_module = lrg_module,
                           .lrg_lr = lrg_lr,
                           .nlrg = nlrg,
                           .one_lr = cfg.lr_scheduler == FE_SCHED_ONE_CYCLE,
                           .beta1_input = cfg.lr_scheduler == FE_SCHED_ONE_CYCLE && cfg.oc_cycle_momentum != 0},
                   .lora = lora_cfg(&cfg, &model, rx, nrx, d),
                   .sp_layout = sp_layout(&cfg),
                   .fuse = {.off = o->no_fuse},
                   .dump_dir = o->dump_ir};
    if (model.output_router_logits && cfg.sequence_parallel_degree > 1 && strcmp(pc.sp_layout, "contiguous"))
        /* each sp rank's aux is over its own tokens, as in Axolotl, whose ranks hold one contiguous chunk each */
        ax_warn(d, cfg.path ? cfg.path : "config", "output_router_logits with sequence_parallel_degree %lld: each rank's "
                "load-balancing loss is over its own tokens, as Axolotl's, but axo's %s ring gives a rank two chunks of "
                "each row where Axolotl's gives one (ring_attn_func: batch_ring splits as Axolotl does)",
                (long long)cfg.sequence_parallel_degree, pc.sp_layout);
    if (cfg.ds.present) {
        pc.shard.stage = cfg.ds.zero_stage;
        pc.shard.reshard_after_forward = 1;
        pc.shard.offload_params = cfg.ds.offload_param == FE_OFFLOAD_CPU;
        pc.shard.offload_optimizer = cfg.ds.offload_optimizer == FE_OFFLOAD_CPU;
    } else if (cfg.fsdp.enabled) {
        /* FSDP2 FULL_SHARD: params, grads and optimizer state sharded;
         * offload_params (CPUOffloadPolicy) keeps all three on the host */
        pc.shard.stage = 3;
        pc.shard.reshard_after_forward = cfg.fsdp.reshard_after_forward;
        pc.shard.offload_params = pc.shard.offload_optimizer = cfg.fsdp.offload_params;
    }
    /* Whether offloaded buffers are page-locked, which lets the CUDA
     * executor copy them asynchronously (docs/cuda-runtime.md): DeepSpeed's
     * pin_memory of each offload (default false), always for FSDP (torch's
     * CPU offload pins). The runtime knows only the plan: module attrs. */
    if (pc.shard.offload_params || pc.shard.offload_optimizer) {
        int pin_p = cfg.ds.present ? cfg.ds.offload_param_pin_memory : 1;
        int pin_o = cfg.ds.present ? cfg.ds.offload_optimizer_pin_memory : 1;
        ir_module_set_attr(m, ir_ai("offload.pin_memory_param", pin_p ? 1 : 0));
        ir_module_set_attr(m, ir_ai("offload.pin_memory_optimizer", pin_o ? 1 : 0));
    }
    /* ZeRO-3/FSDP: the next unit's parameters are gathered while the
     * current one computes (FSDP2's default prefetch of one unit) */
    pc.sched.prefetch = pc.shard.stage >= 3 ? 1 : 0;
    set_buckets(&cfg, &model, &pc.bucket);
    if (d->nerrors > errors_before_cfg || pass_checkpoint(&pc, "lower", d) != 0 || pass_pipeline(&pc, d) != 0) {
        ax_buf_free(&canon);
        goto out;
    }

    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("axo.plan"));
    json_object_set_new(meta, "compiler_version", json_string(AXO_VERSION));
    json_object_set_new(meta, "target", json_string(target));
    json_object_set_new(meta, "world_size", json_integer(world));
    json_object_set_new(meta, "cache_key", json_string(r->key_hex));
    json_object_set_new(meta, "zero_stage", json_integer(cfg.ds.present ? cfg.ds.zero_stage : 0));
    json_object_set_new(meta, "fsdp", json_integer(cfg.fsdp.enabled ? cfg.fsdp.version : 0));
    json_object_set_new(meta, "shard_stage", json_integer(pc.shard.stage));
    json_object_set_new(meta, "reshard_after_forward", json_integer(pc.shard.reshard_after_forward));
    json_t *ja = json_array();
    for (int a = 0; a < o->narch; a++) json_array_append_new(ja, json_string(o->archs[a]));
    json_object_set_new(meta, "archs", ja);
    json_t *stat = stats_json(m, &pc.mem, &cfg, world, o->gpu_mem_gib, &summary, d);
    char *meta_s = json_text(meta), *stat_s = json_text(stat);
    json_decref(meta);
    json_decref(stat);
    ax_buf irt = {0};
    ir_print(m, &irt);
    ax_planw *w = ax_planw_create();
    ax_planw_add(w, "META", meta_s, strlen(meta_s));
    ax_planw_add(w, "CONF", canon.data, canon.len);
    ax_planw_add(w, "HFCF", model.config_json, model.config_json_len);
    ax_planw_add(w, "IRTX", irt.data, irt.len);
    ax_planw_add(w, "STAT", stat_s, strlen(stat_s));
    ax_buf kbin = {0};
    int kbin_rc = 0;
    if (o->narch > 0) { /* the kernels, compiled now for the archs asked for */
        int nk = 0;
        uint64_t kbytes = 0;
        kbin_rc = cg_kbin_build(m, o->archs, o->narch, &kbin, &nk, &kbytes, d);
        ax_buf_printf(&summary, "axoc: embedded %d CUBINs (%.1f MiB) for", nk, (double)kbytes / (1024.0 * 1024.0));
        for (int a = 0; a < o->narch; a++) ax_buf_printf(&summary, " %s", o->archs[a]);
        ax_buf_printf(&summary, ": axorun loads them instead of compiling\n");
    }
    ax_planw_add(w, "SUMM", summary.data, summary.len);
    if (o->narch > 0) ax_planw_add(w, "KBIN", kbin.data, kbin.len);
    if (kbin_rc != 0) {
        /* the error is in d */
    } else if (ax_planw_finish(w, &r->plan) != 0) {
        ax_error(d, "plan", "cannot assemble plan: %s", ax_planw_error(w));
    } else {
        rc = 0;
        if (cache) cg_cache_store(cache_dir, &key, r->plan.data, r->plan.len, d);
    }
    ax_planw_destroy(w);
    free(meta_s);
    free(stat_s);
    ax_buf_free(&irt);
    ax_buf_free(&canon);
    ax_buf_free(&kbin);
out:
    if (rc == 0 && !summary.len) {
        ax_plan_file pf;
        ax_diag tmp;
        ax_diag_init(&tmp);
        if (ax_plan_open_mem((const uint8_t *)r->plan.data, r->plan.len, "cache", &pf, &tmp) == 0) {
            const ax_plan_section *s = ax_plan_find(&pf, "SUMM");
            if (s) ax_buf_append(&summary, s->data, s->size);
            ax_plan_close(&pf);
        }
        ax_diag_free(&tmp);
    }
    r->summary = summary.len ? ax_buf_steal(&summary) : NULL;
    ax_buf_free(&summary);
    ir_module_destroy(m);
    ax_arena_destroy(ar);
    return rc;
}

void cg_result_free(cg_result *r) {
    ax_buf_free(&r->plan);
    free(r->summary);
}

int cg_dump_plan(const char *path, FILE *out, ax_diag *d) {
    ax_plan_file pf;
    if (ax_plan_read(path, &pf, d) != 0) return -1;
    fprintf(out, "# plan %s: format version %u, %d sections\n", path, pf.version, pf.nsections);
    for (int i = 0; i < pf.nsections; i++)
        fprintf(out, "#   %s  offset %llu  %llu bytes\n", pf.sections[i].tag, (unsigned long long)pf.sections[i].offset,
                (unsigned long long)pf.sections[i].size);
    static const char *order[] = {"META", "SUMM", "STAT", "CONF", "IRTX"};
    static const char *titles[] = {"meta", "summary", "stats", "config (canonical)", "IR"};
    for (size_t k = 0; k < AX_ARRAY_LEN(order); k++) {
        const ax_plan_section *s = ax_plan_find(&pf, order[k]);
        if (!s) continue;
        fprintf(out, "\n## %s\n", titles[k]);
        fwrite(s->data, 1, s->size, out);
        if (s->size && s->data[s->size - 1] != '\n') fputc('\n', out);
    }
    const ax_plan_section *ks = ax_plan_find(&pf, "KBIN");
    int rc = 0;
    if (ks) { /* the embedded kernels: which, for which GPU, how big */
        cg_kbin k;
        rc = cg_kbin_parse(ks->data, ks->size, path, &k, d);
        if (!rc) {
            fprintf(out, "\n## kernels (CUBINs embedded by axoc --arch)\n");
            for (int i = 0; i < k.n; i++)
                fprintf(out, "%-7s %-6s %-40s %llu bytes\n", k.e[i].arch, k.e[i].kind, k.e[i].name,
                        (unsigned long long)k.e[i].size);
            cg_kbin_free(&k);
        }
    }
    ax_plan_close(&pf);
    return rc;
}
