/* eval.c — the forward-only evaluation program.
 *
 * val_set_size holds samples out; axorun computes their loss every
 * eval_steps. HF Trainer evaluates under model.eval() and torch.no_grad():
 * dropout is off and nothing is differentiated. eval_step is that program:
 * micro_step's forward as lowering (and the LoRA pass) left it, copied
 * before autodiff appends the backward, with every dropout and neftune node
 * replaced by its input (HF's NEFTune hook adds noise only in training
 * mode), and the fused lm head + loss computing the loss alone (dh=0,
 * dw=0: no gradient GEMMs). It keeps the forward's acc into @stats/loss_sum, so the runtime
 * reads the eval loss sum where it reads the training one. The later passes
 * treat it as another program: seqpar makes its attention ring attention,
 * shard gathers ZeRO-3 parameters unit by unit as in the forward, offload
 * copies host-resident parameters in, and fuse, schedule and memplan run on
 * it (the activation arena is the largest program's, so it costs no memory).
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <string.h>

int pass_eval_program(ir_module *m, ax_diag *d) {
    ir_program *ms = ir_program_find(m, "micro_step");
    if (!ms) {
        ax_error(d, "eval", "module has no micro_step program");
        return -1;
    }
    if (ir_program_find(m, "eval_step")) {
        ax_error(d, "eval", "module already has an eval_step program");
        return -1;
    }
    ir_program *ep = ir_program_add(m, "eval_step");
    rw r;
    rw_begin(&r, m, ms, d);
    for (int i = 0; i < ms->nnodes && !r.b.failed; i++) {
        const ir_node *n = &ms->nodes[i];
        if (n->op == IR_OP_acc && IR_REF_IS_GLOBAL(n->in[0]) &&
            !strcmp(m->globals[IR_REF_GLOBAL(n->in[0])].name, "stats/aux_sum"))
            continue; /* the routers' load-balancing loss is training's: its nodes go with DCE (eval_loss is the CE) */
        if (n->op == IR_OP_dropout || n->op == IR_OP_neftune) { /* eval mode: the identity */
            r.map[n->out[0]] = rw_ref(&r, n->in[0]);
            continue;
        }
        if (n->op == IR_OP_linear_cross_entropy) { /* the loss alone: no dh, no dW GEMMs */
            ir_attr at[32];
            int na = 0;
            for (int k = 0; k < n->nattrs && na < 30; k++)
                if (strcmp(n->attrs[k].key, "dh") && strcmp(n->attrs[k].key, "dw")) at[na++] = n->attrs[k];
            at[na++] = ir_ai("dh", 0);
            at[na++] = ir_ai("dw", 0);
            rw_emit(&r, n, NULL, at, na, NULL);
            continue;
        }
        rw_emit(&r, n, NULL, NULL, 0, NULL);
    }
    r.p = ep; /* the copy becomes eval_step; micro_step is untouched */
    if (rw_end(&r) != 0) {
        ax_error(d, "eval", "building eval_step from micro_step's forward failed");
        return -1;
    }
    pass_dce(m, ep); /* the dropout seed, NEFTune's keys and whatever fed only them */
    return 0;
}
