/* optimizer.c — builds opt_step: global-norm gradient clipping and AdamW.
 *
 *   ss   = sum_p sumsq(@grad/p)            -> stored in @stats/grad_sumsq
 *   coef = min(1, max_norm / (sqrt(ss) + 1e-6))     (HF clip_grad_norm_)
 *   per param p:  adamw(@master/p or @p, @grad/p, @adam_m/p, @adam_v/p,
 *                       lr, step, coef)     (weight decay 0 for params
 *                                            with decay=0: norms, biases)
 *                 store(@p, @master/p)      (bf16 working copy, RNE)
 *                 zero(@grad/p)
 * Pure bf16 (`bfloat16: true`): no master; m and v are bf16 like p, and
 * adamw rounds p, m, v stochastically (salt = the param's ordinal).
 * 8-bit state (state_8bit): adamw8 over u8 m, v and their f32 block maxima
 * (@adam_m_absmax/p, @adam_v_absmax/p) for the params passes.h names.
 * lr and step are runtime inputs: the schedule is evaluated by axorun from
 * the step number (module attrs train.*), so one plan serves every step.
 * A param's lr_scale (attr; LoRA+ sets it) multiplies the scheduled lr for
 * its update: attr lr_scale of its adamw/adamw8 node, only when not 1, so
 * the executors compute (double)lr * lr_scale (exactly lr when absent).
 *
 * LoRA+ (cfg->loraplus_ratio > 0), as PEFT's create_loraplus_optimizer
 * groups the trainable params when Axolotl calls it (lr = learning_rate,
 * loraplus_weight_decay = weight_decay):
 *   "lora_B" in the name, or 1-d   lr x ratio; weight decay unless "bias" is
 *                                  in the name (groupB / groupB_no_decay:
 *                                  PEFT keeps only nn.LayerNorm and biases
 *                                  from decay, so RMSNorm weights decay)
 *   every other param               lr, weight decay (groupA)
 *   LoRA embedding adapters         loraplus_lr_embedding: axo has none
 * Otherwise Axolotl's own groups when embedding_lr, embedding_lr_scale or
 * lr_groups is set (cfg->groups; passes.h). 8-bit state: the embedding
 * table keeps 32-bit state unless one of these groupings is made (HF
 * Trainer's bitsandbytes override for nn.Embedding; Axolotl's own
 * create_optimizer tests a class name that never matches).
 */
#include "passes/passes.h"
#include "ir/quant.h"

#include <stdio.h>
#include <string.h>

/* The param whose gradient global g is, or -1 (not a gradient; one without
 * a param is reported by pass_optimizer). */
static int param_of_grad(ir_module *m, int g) {
    const ir_global *G = &m->globals[g];
    return G->role == IR_ROLE_GRAD ? ir_global_find(m, G->name + 5) : -1;
}

/* Sets the LoRA+ group of every trainable param: attrs lr_scale (only
 * when not 1) and decay. */
static void loraplus_groups(ir_module *m, double ratio) {
    for (int g = 0; g < m->nglobals; g++) {
        int pg = param_of_grad(m, g);
        if (pg < 0) continue;
        const ir_global *P = &m->globals[pg];
        int b = strstr(P->name, "lora_B") != NULL || P->type.rank == 1;
        if (b && ratio != 1.0) ir_global_set_attr(m, pg, ir_af("lr_scale", ratio));
        ir_global_set_attr(m, pg, ir_ai("decay", !b || !strstr(P->name, "bias")));
    }
}

/* Axolotl's create_optimizer_grouped_parameters (see passes.h): attrs
 * lr_scale (only when not 1) and decay of every trainable param. */
static int axolotl_groups(ir_module *m, const pass_opt_cfg *cfg, ax_diag *d) {
    if (!(cfg->base_lr > 0)) {
        ax_error(d, "optimizer", "embedding_lr / lr_groups need a learning_rate above 0 (found %g)", cfg->base_lr);
        return -1;
    }
    for (int g = 0; g < m->nglobals; g++) {
        int pg = param_of_grad(m, g);
        if (pg < 0) continue;
        const ir_global *P = &m->globals[pg];
        const char *hf = P->name; /* named_parameters()' name: the module's */
        double scale = 1.0;
        if (strstr(hf, "embed_tokens") || strstr(hf, "lm_head")) {
            scale = cfg->emb_scale > 0 ? cfg->emb_scale : cfg->emb_lr > 0 ? cfg->emb_lr / cfg->base_lr : 1.0;
            ir_global_set_attr(m, pg, ir_ai("decay", 0));
        } else if (ir_attr_int(P->attrs, P->nattrs, "decay", 1)) {
            for (int i = 0; i < cfg->nlrg; i++)
                if (strstr(hf, cfg->lrg_module[i])) {
                    scale = cfg->lrg_lr[i] / cfg->base_lr;
                    break;
                }
        }
        if (scale != 1.0 && !cfg->one_lr) ir_global_set_attr(m, pg, ir_af("lr_scale", scale));
    }
    return 0;
}

/* Whether global g is the table of an embedding lookup (an nn.Embedding's
 * weight, which HF Trainer keeps at 32-bit state under bitsandbytes). */
static int embedding_table(const ir_module *m, int g) {
    const ir_program *p = ir_program_find((ir_module *)m, "micro_step");
    for (int i = 0; p && i < p->nnodes; i++)
        if (p->nodes[i].op == IR_OP_embedding && IR_REF_IS_GLOBAL(p->nodes[i].in[0]) &&
            IR_REF_GLOBAL(p->nodes[i].in[0]) == g)
            return 1;
    return 0;
}

int pass_optimizer(ir_module *m, const pass_opt_cfg *cfg, ax_diag *d) {
    if (cfg->loraplus_ratio > 0) loraplus_groups(m, cfg->one_lr ? 1.0 : cfg->loraplus_ratio); /* one_lr: decay only */
    else if (cfg->groups && axolotl_groups(m, cfg, d) != 0) return -1;
    /* HF Trainer's create_optimizer keeps an nn.Embedding's weight at 32-bit state under bitsandbytes' 8-bit
     * optimizers; Axolotl's own create_optimizer (its groups, LoRA+) does not (its check never matches) */
    const int embed_f32 = cfg->state_8bit && cfg->loraplus_ratio <= 0 && !cfg->groups && !cfg->torchao_8bit;
    ir_program *p = ir_program_add(m, "opt_step");
    ir_builder b;
    ir_builder_init(&b, m, p, d);
    int ng = m->nglobals;
    int32_t lr = ir_b_input(&b, "lr", ir_type_scalar(IR_F32));
    int32_t step = ir_b_input(&b, "step", ir_type_scalar(IR_F32));
    int32_t beta1 = cfg->beta1_input ? ir_b_input(&b, "beta1", IR_TYPE(IR_F32, 3)) : -1;
    int32_t ss = -1;
    for (int g = 0; g < ng; g++) {
        if (m->globals[g].role != IR_ROLE_GRAD) continue;
        int32_t s = ir_b(&b, IR_OP_sumsq, IR_IN(IR_GLOBAL_REF(g)), IR_NOAT);
        ss = ss < 0 ? s : ir_b(&b, IR_OP_add, IR_IN(ss, s), IR_NOAT);
    }
    if (ss < 0) {
        ax_error(d, "optimizer", "no trainable parameters");
        return -1;
    }
    int stat = ir_global_add(m, "stats/grad_sumsq", ir_type_scalar(IR_F32), IR_ROLE_TEMP, NULL, 0);
    ir_bn(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(stat), ss), IR_NOAT, NULL);
    int32_t coef = cfg->max_grad_norm > 0
                       ? ir_b(&b, IR_OP_clip_coef, IR_IN(ss), IR_AT(ir_af("max_norm", cfg->max_grad_norm)))
                       : ir_b_fill(&b, 1.0, ir_type_scalar(IR_F32));
    char name[512];
    int nparam = 0, n8 = 0; /* the param's ordinal: the salt of its stochastic rounding */
    for (int g = 0; g < ng && !b.failed; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_GRAD) continue;
        const char *pname = G->name + 5; /* strip "grad/" */
        int pg = ir_global_find(m, pname);
        if (pg < 0) {
            ax_error(d, "optimizer", "gradient %s has no parameter", G->name);
            return -1;
        }
        const ir_global *P = &m->globals[pg];
        ir_type st = P->type; /* the state's type: f32 (bf16 under pure bf16) */
        st.dtype = IR_F32;
        int decay = (int)ir_attr_int(P->attrs, P->nattrs, "decay", 1);
        double lr_scale = ir_attr_float(P->attrs, P->nattrs, "lr_scale", 1.0);
        /* the node's attrs: lr_scale only when it is not 1 */
        ir_attr at[6] = {ir_af("beta1", cfg->beta1), ir_af("beta2", cfg->beta2), ir_af("eps", cfg->eps),
                         ir_af("weight_decay", decay ? cfg->weight_decay : 0.0), ir_ai("salt", nparam++),
                         ir_af("lr_scale", lr_scale)};
        int nat = lr_scale != 1.0 ? 6 : 5;
        int master = pg;
        if (P->type.dtype == IR_BF16 && cfg->pure_bf16 && !cfg->master_f32) {
            st.dtype = IR_BF16; /* moments in bf16 beside the bf16 param */
        } else if (P->type.dtype != IR_F32) {
            if (!cfg->master_f32) {
                ax_error(d, "optimizer", "%s is %s but neither f32 master weights nor pure bf16 were requested",
                         P->name, ir_dtype_name(P->type.dtype));
                return -1;
            }
            snprintf(name, sizeof name, "master/%s", pname);
            master = ir_global_add(m, name, st, IR_ROLE_OPT, (ir_attr[]){ir_as("init_from", pname)}, 1);
        }
        const ir_type *pt = &P->type;
        int q8 = cfg->state_8bit && pt->rank == 2 && ir_type_numel(pt) >= 4096 && !(embed_f32 && embedding_table(m, pg)) &&
                 !(cfg->torchao_8bit && ir_type_numel(pt) % AXO_Q8_BLOCK);
        if (q8) {
            n8++;
            st.dtype = IR_U8;
            ir_type mx = *pt; /* one f32 maximum per block of a row */
            mx.dtype = IR_F32;
            mx.dims[1] = (pt->dims[1] + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK;
            int gq[4];
            const char *pre[4] = {"adam_m", "adam_v", "adam_m_absmax", "adam_v_absmax"};
            for (int k = 0; k < 4; k++) {
                snprintf(name, sizeof name, "%s/%s", pre[k], pname);
                gq[k] = ir_global_add(m, name, k < 2 ? st : mx, IR_ROLE_OPT, NULL, 0);
            }
            int32_t in[10] = {IR_GLOBAL_REF(master), IR_GLOBAL_REF(g), IR_GLOBAL_REF(gq[0]), IR_GLOBAL_REF(gq[1]),
                              IR_GLOBAL_REF(gq[2]), IR_GLOBAL_REF(gq[3]), lr, step, coef, beta1};
            ir_bn(&b, IR_OP_adamw8, beta1 >= 0 ? 10 : 9, in, nat, at, NULL);
        } else {
            snprintf(name, sizeof name, "adam_m/%s", pname);
            int gm = ir_global_add(m, name, st, IR_ROLE_OPT, NULL, 0);
            snprintf(name, sizeof name, "adam_v/%s", pname);
            int gv = ir_global_add(m, name, st, IR_ROLE_OPT, NULL, 0);
            int32_t in[8] = {IR_GLOBAL_REF(master), IR_GLOBAL_REF(g), IR_GLOBAL_REF(gm), IR_GLOBAL_REF(gv), lr, step, coef, beta1};
            ir_bn(&b, IR_OP_adamw, beta1 >= 0 ? 8 : 7, in, nat, at, NULL);
        }
        if (master != pg) ir_bn(&b, IR_OP_store, IR_IN(IR_GLOBAL_REF(pg), IR_GLOBAL_REF(master)), IR_NOAT, NULL);
        ir_bn(&b, IR_OP_zero, IR_IN(IR_GLOBAL_REF(g)), IR_NOAT, NULL);
    }
    if (cfg->state_8bit && !n8 && !b.failed)
        ax_warn(d, "optimizer", "8-bit AdamW state: no trainable parameter qualifies (2-d, at least 4096 elements), "
                                "so every one keeps 32-bit state");
    return b.failed ? -1 : 0;
}
