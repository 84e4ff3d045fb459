/* pipeline.c — the pass manager: the whole pipeline on one screen. */
#include "passes/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pass_dce(ir_module *m, ir_program *p) {
    char *live = calloc((size_t)p->nvalues + 1, 1);
    char *keep = calloc((size_t)p->nnodes + 1, 1);
    for (int i = p->nnodes - 1; i >= 0; i--) {
        const ir_node *n = &p->nodes[i];
        int k = (ir_ops[n->op].flags & IR_F_EFFECT) != 0;
        for (int r = 0; r < n->nout && !k; r++) k = live[n->out[r]];
        if (!k) continue;
        keep[i] = 1;
        for (int j = 0; j < n->nin; j++)
            if (!IR_REF_IS_GLOBAL(n->in[j])) live[n->in[j]] = 1;
    }
    /* Compact nodes and renumber values densely in definition order. */
    int32_t *newid = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    ir_value *vals = malloc(sizeof(ir_value) * ((size_t)p->nvalues + 1));
    int nn = 0, nv = 0, removed = 0;
    /* backward_start names a micro_step node: the first kept one from it on */
    int64_t bs = strcmp(p->name, "micro_step") ? -1 : ir_attr_int(m->attrs, m->nattrs, "backward_start", -1);
    for (int i = 0; i < p->nnodes; i++) {
        if (i == bs) ir_module_set_attr(m, ir_ai("backward_start", nn));
        if (!keep[i]) {
            removed++;
            continue;
        }
        ir_node n = p->nodes[i];
        for (int j = 0; j < n.nin; j++)
            if (!IR_REF_IS_GLOBAL(n.in[j])) n.in[j] = newid[n.in[j]];
        for (int r = 0; r < n.nout; r++) {
            vals[nv] = p->values[n.out[r]];
            vals[nv].node = nn;
            newid[n.out[r]] = nv;
            n.out[r] = nv++;
        }
        p->nodes[nn++] = n;
    }
    free(p->values);
    p->values = vals;
    p->nvalues = nv;
    p->capv = nv + 1;
    p->nnodes = nn;
    free(newid);
    free(live);
    free(keep);
    return removed;
}

int pass_checkpoint(pass_ctx *c, const char *name, ax_diag *d) {
    if (c->dump_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%02d-%s.ir", c->dump_dir, c->stage, name);
        ax_buf b = {0};
        ir_print(c->m, &b);
        int rc = ax_write_file_atomic(path, b.data, b.len, d);
        ax_buf_free(&b);
        if (rc) return -1;
    }
    c->stage++;
    if (ir_verify(c->m, d) != 0) {
        ax_error(d, name, "the IR after this pass does not verify (a compiler bug)");
        return -1;
    }
    return 0;
}

int pass_pipeline(pass_ctx *c, ax_diag *d) {
    ir_program *ms = ir_program_find(c->m, "micro_step");
    if (!ms) {
        ax_error(d, "pipeline", "module has no micro_step program");
        return -1;
    }
    if (c->lora.adapter != PASS_ADAPTER_NONE && (pass_lora(c->m, &c->lora, &c->loss, d) || pass_checkpoint(c, "lora", d)))
        return -1;
    /* eval_step: for evaluation, and under rl: dpo for the reference model's losses (runtime/train.h) */
    if ((ir_attr_int(c->m->attrs, c->m->nattrs, "train.eval", 0) ||
         ir_attr_float(c->m->attrs, c->m->nattrs, "train.val_set_size", 0) > 0 ||
         !strcmp(ir_attr_str(c->m->attrs, c->m->nattrs, "train.rl", ""), "dpo")) &&
        (pass_eval_program(c->m, d) || pass_checkpoint(c, "eval", d)))
        return -1;
    if (pass_autodiff(c->m, ms, c->loss, c->checkpoint, d) || pass_checkpoint(c, "autodiff", d)) return -1;
    if (pass_seqpar(c->m, c->sp_layout ? c->sp_layout : "zigzag", d) || pass_checkpoint(c, "seqpar", d)) return -1;
    if (pass_optimizer(c->m, &c->opt, d) || pass_checkpoint(c, "optimizer", d)) return -1;
    if (pass_shard(c->m, &c->shard, d) || pass_bucket_grads(c->m, &c->bucket, d) || pass_checkpoint(c, "shard", d))
        return -1;
    if (pass_offload(c->m, &c->shard, d) || pass_checkpoint(c, "offload", d)) return -1;
    for (int i = 0; i < c->m->nprograms; i++) pass_dce(c->m, c->m->programs[i]);
    if (pass_checkpoint(c, "dce", d)) return -1;
    if (pass_fuse(c->m, &c->fuse, d) || pass_checkpoint(c, "fuse", d)) return -1;
    if (pass_schedule(c->m, &c->sched, d) || pass_checkpoint(c, "schedule", d)) return -1;
    if (pass_memplan(c->m, &c->mem) || pass_checkpoint(c, "memplan", d)) return -1;
    return 0;
}
