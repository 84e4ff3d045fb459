/* autodiff.c — reverse-mode differentiation of a straight-line program.
 *
 * Walks the forward nodes backwards, keeping one adjoint per value (summed
 * with `add` when a value has several uses) and one per param global.
 * Each op's rule is a function grad_<op> instantiated from ir/ops.def, so
 * an op without a rule does not compile. A global's gradient is emitted
 * (acc into @grad/<name>) as soon as its last use in the forward has been
 * differentiated, i.e. as early as backward produces it.
 *
 * Gradient checkpointing: before differentiating decoder layer l, the
 * layer's forward nodes are cloned (recomputed) and the rules of that
 * layer read the recomputed values, so the layer's original activations
 * die at the end of the forward.
 */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

typedef struct ad {
    ir_builder b;
    ir_module *m;
    ir_program *p;
    int32_t *adj;    /* per value: adjoint value id or -1 */
    int32_t *remap;  /* per value: recomputed id (checkpointing) or itself */
    int32_t *gadj;   /* per global: summed adjoint or -1 */
    int *guses;      /* per global: forward uses not yet differentiated */
    int *gradg;      /* per global: index of @grad/<name> or -1 */
    int nfwd_values;
} ad;

static int32_t fwd(ad *c, int32_t ref) { return IR_REF_IS_GLOBAL(ref) ? ref : c->remap[ref]; }

static const ir_type *rtype(ad *c, int32_t ref) { return ir_ref_type(c->m, c->p, ref); }

/* Reshapes g to the shape of `like` when only the view differs. */
static int32_t match_shape(ad *c, int32_t g, int32_t like) {
    const ir_type *tg = rtype(c, g), *tl = rtype(c, like);
    if (c->b.failed || ir_type_same_shape(tg, tl)) return g;
    return ir_b(&c->b, IR_OP_reshape, IR_IN(g), IR_AT(ir_aints("shape", tl->rank, tl->dims)));
}

static void emit_grad_acc(ad *c, int gi) {
    if (c->gadj[gi] < 0 || c->gradg[gi] < 0) return;
    /* unfrozen_parameters with row ranges: only those rows of the gradient count (Axolotl's hook) */
    const ir_global *G = &c->m->globals[gi];
    const ir_attr *rows = ir_attr_find(G->attrs, G->nattrs, "train_rows");
    if (rows && rows->kind == IR_ATTR_INTS)
        c->gadj[gi] = ir_b(&c->b, IR_OP_mask_rows, IR_IN(c->gadj[gi]), IR_AT(ir_aints("rows", rows->n, rows->ints)));
    int32_t in[2] = {IR_GLOBAL_REF(c->gradg[gi]), c->gadj[gi]};
    ir_bn(&c->b, IR_OP_acc, 2, in, 0, NULL, NULL);
    c->gadj[gi] = -1;
}

/* Adds g to the adjoint of operand `ref`. */
static void acc(ad *c, int32_t ref, int32_t g) {
    if (c->b.failed) return;
    g = match_shape(c, g, fwd(c, ref));
    if (IR_REF_IS_GLOBAL(ref)) {
        int gi = IR_REF_GLOBAL(ref);
        if (c->gradg[gi] < 0) return; /* not trainable */
        c->gadj[gi] = c->gadj[gi] < 0 ? g : ir_b(&c->b, IR_OP_add, IR_IN(c->gadj[gi], g), IR_NOAT);
        if (--c->guses[gi] == 0) emit_grad_acc(c, gi);
        return;
    }
    c->adj[ref] = c->adj[ref] < 0 ? g : ir_b(&c->b, IR_OP_add, IR_IN(c->adj[ref], g), IR_NOAT);
}

static int wants(ad *c, int32_t ref) {
    if (IR_REF_IS_GLOBAL(ref)) return c->gradg[IR_REF_GLOBAL(ref)] >= 0;
    const ir_type *t = rtype(c, ref);
    return t->dtype == IR_F32 || t->dtype == IR_BF16 || t->dtype == IR_F16;
}

#define IN(i) fwd(c, n->in[i])
#define OUT(i) fwd(c, n->out[i])

/* ---- gradient rules: dy[i] is the adjoint of result i (-1: none) ------- */
#define NO_GRAD(op) \
    static void grad_##op(ad *c, const ir_node *n, const int32_t *dy) { (void)c, (void)n, (void)dy; }
NO_GRAD(input)
NO_GRAD(fill)
#define NOT_DIFFERENTIABLE(op)                                                                        \
    static void grad_##op(ad *c, const ir_node *n, const int32_t *dy) {                              \
        (void)n, (void)dy;                                                                            \
        ax_error(c->b.d, "autodiff", "op %s has no gradient rule (it should not appear in a forward)", \
                 #op);                                                                                \
        c->b.failed = 1;                                                                              \
    }
NOT_DIFFERENTIABLE(embedding_bwd)
NOT_DIFFERENTIABLE(slice_bwd)
NOT_DIFFERENTIABLE(sigmoid_bwd)
NOT_DIFFERENTIABLE(moe_route_bwd)
NOT_DIFFERENTIABLE(moe_ffn_bwd)
NOT_DIFFERENTIABLE(moe_ffn_oss_bwd)
NOT_DIFFERENTIABLE(attn_sink_bwd)
/* seqpar's (after autodiff): the ring's sinks; a forward's sinks are attention's operand */
NOT_DIFFERENTIABLE(attn_sink)
NOT_DIFFERENTIABLE(lora_delta_bwd)
NOT_DIFFERENTIABLE(moe_lb_stats_bwd)
NOT_DIFFERENTIABLE(moe_lb_loss_bwd)
NOT_DIFFERENTIABLE(rmsnorm_bwd)
NOT_DIFFERENTIABLE(bias_grad)
NOT_DIFFERENTIABLE(attention_bwd)
NOT_DIFFERENTIABLE(swiglu_bwd)
NOT_DIFFERENTIABLE(geglu_bwd)
NOT_DIFFERENTIABLE(dora_scale_bwd)
NOT_DIFFERENTIABLE(cross_entropy_bwd)
NOT_DIFFERENTIABLE(sumsq)
NOT_DIFFERENTIABLE(clip_coef)
NOT_DIFFERENTIABLE(adamw)
NOT_DIFFERENTIABLE(adamw8)
NOT_DIFFERENTIABLE(store)
NOT_DIFFERENTIABLE(acc)
NOT_DIFFERENTIABLE(zero)
NOT_DIFFERENTIABLE(all_reduce)
NOT_DIFFERENTIABLE(all_gather)
NOT_DIFFERENTIABLE(reduce_scatter)
NOT_DIFFERENTIABLE(ring_shift) /* seqpar runs after autodiff */
NOT_DIFFERENTIABLE(attention_blk)
NOT_DIFFERENTIABLE(attention_blk_bwd)
NOT_DIFFERENTIABLE(attn_merge)
NOT_DIFFERENTIABLE(to_host) /* copies are placed by the offload pass, after autodiff */
NOT_DIFFERENTIABLE(to_device)
NOT_DIFFERENTIABLE(fused) /* made by the fuse pass, after autodiff */

static void grad_embedding(ad *c, const ir_node *n, const int32_t *dy) {
    if (!wants(c, n->in[0])) return;
    int64_t V = rtype(c, IN(0))->dims[0];
    int32_t g = ir_b(&c->b, IR_OP_embedding_bwd, IR_IN(IN(1), dy[0]), IR_AT(ir_ai("vocab", V)));
    /* nn.Embedding's padding_idx: that row's gradient is zero (the lookups of it add nothing) */
    const int64_t pad = ir_attr_int(n->attrs, n->nattrs, "padding_idx", -1);
    if (pad >= 0 && pad < V && V > 1) {
        int64_t keep[4], nk = 0;
        if (pad > 0) keep[nk++] = 0, keep[nk++] = pad;
        if (pad + 1 < V) keep[nk++] = pad + 1, keep[nk++] = V;
        g = ir_b(&c->b, IR_OP_mask_rows, IR_IN(g), IR_AT(ir_aints("rows", (int)nk, keep)));
    }
    acc(c, n->in[0], g);
}

static void grad_rmsnorm(ad *c, const ir_node *n, const int32_t *dy) {
    int32_t r[2];
    ir_bn(&c->b, IR_OP_rmsnorm_bwd, IR_IN(IN(0), IN(1), dy[0]), n->nattrs, n->attrs, r);
    acc(c, n->in[0], r[0]);
    if (wants(c, n->in[1])) acc(c, n->in[1], r[1]);
}

static int32_t mm(ad *c, int32_t a, int32_t b, int ta, int tb) {
    return ir_b(&c->b, IR_OP_matmul, IR_IN(a, b), IR_AT(ir_ai("ta", ta), ir_ai("tb", tb)));
}

static void grad_matmul(ad *c, const ir_node *n, const int32_t *dy) {
    int ta = (int)ir_attr_int(n->attrs, n->nattrs, "ta", 0), tb = (int)ir_attr_int(n->attrs, n->nattrs, "tb", 0);
    int32_t a = IN(0), b = IN(1), g = dy[0];
    /* Y = op(A) op(B); dop(A) = dY op(B)^T, dop(B) = op(A)^T dY, then undo
     * the transposes: each case below is that identity written out. */
    int32_t da, db;
    if (!ta && !tb) {
        da = wants(c, n->in[0]) ? mm(c, g, b, 0, 1) : -1;
        db = wants(c, n->in[1]) ? mm(c, a, g, 1, 0) : -1;
    } else if (!ta && tb) {
        da = wants(c, n->in[0]) ? mm(c, g, b, 0, 0) : -1;
        db = wants(c, n->in[1]) ? mm(c, g, a, 1, 0) : -1;
    } else if (ta && !tb) {
        da = wants(c, n->in[0]) ? mm(c, b, g, 0, 1) : -1;
        db = wants(c, n->in[1]) ? mm(c, a, g, 0, 0) : -1;
    } else {
        da = wants(c, n->in[0]) ? mm(c, b, g, 1, 1) : -1;
        db = wants(c, n->in[1]) ? mm(c, g, a, 1, 1) : -1;
    }
    if (da >= 0) acc(c, n->in[0], da);
    if (db >= 0) acc(c, n->in[1], db);
}

static void grad_bias_add(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], dy[0]);
    if (wants(c, n->in[1])) acc(c, n->in[1], ir_b(&c->b, IR_OP_bias_grad, IR_IN(dy[0]), IR_NOAT));
}

static void grad_add(ad *c, const ir_node *n, const int32_t *dy) {
    if (wants(c, n->in[0])) acc(c, n->in[0], dy[0]);
    if (wants(c, n->in[1])) acc(c, n->in[1], dy[0]);
}

static void grad_mul(ad *c, const ir_node *n, const int32_t *dy) {
    if (wants(c, n->in[0])) acc(c, n->in[0], ir_b(&c->b, IR_OP_mul, IR_IN(dy[0], IN(1)), IR_NOAT));
    if (wants(c, n->in[1])) acc(c, n->in[1], ir_b(&c->b, IR_OP_mul, IR_IN(dy[0], IN(0)), IR_NOAT));
}

static void grad_scale(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], ir_b(&c->b, IR_OP_scale, IR_IN(dy[0]), n->nattrs, n->attrs));
}

/* y = sigmoid(x): dx = dy (1 - y) y, one op so that a bf16 gradient is rounded once, as torch's */
static void grad_sigmoid(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], ir_b(&c->b, IR_OP_sigmoid_bwd, IR_IN(OUT(0), dy[0]), IR_NOAT));
}

static void grad_convert(ad *c, const ir_node *n, const int32_t *dy) {
    const char *from = ir_dtype_name(rtype(c, IN(0))->dtype);
    acc(c, n->in[0], ir_b(&c->b, IR_OP_convert, IR_IN(dy[0]), IR_AT(ir_as("to", from))));
}

static void grad_reshape(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], dy[0]); /* acc reshapes back to the operand's shape */
}

/* A slice's adjoint is dy placed at its columns of a zero [..., W] (the parts of one projection sum back into
 * its whole adjoint) */
static void grad_slice(ad *c, const ir_node *n, const int32_t *dy) {
    const ir_type *t = rtype(c, IN(0));
    acc(c, n->in[0], ir_b(&c->b, IR_OP_slice_bwd, IR_IN(dy[0]),
                          IR_AT(ir_ai("begin", ir_attr_int(n->attrs, n->nattrs, "begin", 0)),
                                ir_ai("width", t->dims[t->rank - 1]))));
}

static void grad_rope(ad *c, const ir_node *n, const int32_t *dy) {
    /* The rotation is orthogonal: its transpose is the inverse rotation. */
    ir_attr at[16];
    int na = n->nattrs < 16 ? n->nattrs : 16;
    memcpy(at, n->attrs, sizeof(ir_attr) * (size_t)na);
    for (int i = 0; i < na; i++)
        if (strcmp(at[i].key, "inverse") == 0) at[i].i = !at[i].i;
    int32_t in[3] = {dy[0], IN(1), n->nin > 2 ? IN(2) : -1};
    acc(c, n->in[0], ir_b(&c->b, IR_OP_rope, n->nin, in, na, at));
}

static void grad_attention(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0) return; /* lse alone is never differentiated */
    int32_t r[3];
    /* with sinks, out and lse are the sinks' (attn_sink): the backward against them is q's, k's and v's */
    ir_bn(&c->b, IR_OP_attention_bwd, IR_IN(IN(0), IN(1), IN(2), IN(3), OUT(0), OUT(1), dy[0]), n->nattrs, n->attrs, r);
    acc(c, n->in[0], r[0]);
    acc(c, n->in[1], r[1]);
    acc(c, n->in[2], r[2]);
    if (n->nin == 5 && wants(c, n->in[4]))
        acc(c, n->in[4], ir_b(&c->b, IR_OP_attn_sink_bwd, IR_IN(IN(4), OUT(0), OUT(1), dy[0]), IR_NOAT));
}

static void grad_swiglu(ad *c, const ir_node *n, const int32_t *dy) {
    int32_t r[2];
    ir_bn(&c->b, IR_OP_swiglu_bwd, IR_IN(IN(0), IN(1), dy[0]), IR_NOAT, r);
    acc(c, n->in[0], r[0]);
    acc(c, n->in[1], r[1]);
}

/* the router's weights: back through the normalisation, the top-k selection and the softmax (the experts' ids
 * have none) */
static void grad_moe_route(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0) return;
    acc(c, n->in[0], ir_b(&c->b, IR_OP_moe_route_bwd, IR_IN(IN(0), OUT(1), dy[0]), n->nattrs, n->attrs));
}

/* the experts' MLPs: dx, the routing weights' gradient, the stacked weights' (gu is kept for this only) */
static void grad_moe_ffn(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0) return;
    int32_t r[4];
    ir_bn(&c->b, IR_OP_moe_ffn_bwd, IR_IN(IN(0), IN(1), IN(2), IN(3), IN(4), OUT(1), dy[0]), n->nattrs, n->attrs, r);
    acc(c, n->in[0], r[0]);
    if (wants(c, n->in[2])) acc(c, n->in[2], r[1]);
    if (wants(c, n->in[3])) acc(c, n->in[3], r[2]);
    if (wants(c, n->in[4])) acc(c, n->in[4], r[3]);
}

static void grad_moe_ffn_oss(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0) return;
    int32_t r[6];
    ir_bn(&c->b, IR_OP_moe_ffn_oss_bwd, IR_IN(IN(0), IN(1), IN(2), IN(3), IN(4), IN(5), IN(6), OUT(1), dy[0]), n->nattrs,
          n->attrs, r);
    acc(c, n->in[0], r[0]);
    for (int i = 2; i < 7; i++)
        if (wants(c, n->in[i])) acc(c, n->in[i], r[i - 1]);
}

/* the load-balancing loss: through the probability sums only (the top-k counts and the weights have none) */
static void grad_moe_lb_loss(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0 || !wants(c, n->in[0])) return;
    acc(c, n->in[0], ir_b(&c->b, IR_OP_moe_lb_loss_bwd, IR_IN(IN(0), dy[0]), IR_NOAT));
}
static void grad_moe_lb_stats(ad *c, const ir_node *n, const int32_t *dy) {
    if (dy[0] < 0 || !wants(c, n->in[0])) return;
    acc(c, n->in[0], ir_b(&c->b, IR_OP_moe_lb_stats_bwd, IR_IN(IN(0), IN(2), dy[0]), IR_NOAT));
}

/* w' = w + scale B_e A_e: w's adjoint is dy's; the factors' come from one op */
static void grad_lora_delta(ad *c, const ir_node *n, const int32_t *dy) {
    if (wants(c, n->in[0])) acc(c, n->in[0], dy[0]);
    if (!wants(c, n->in[1]) && !wants(c, n->in[2])) return;
    int32_t r[2];
    ir_bn(&c->b, IR_OP_lora_delta_bwd, IR_IN(IN(1), IN(2), dy[0]), n->nattrs, n->attrs, r);
    if (wants(c, n->in[1])) acc(c, n->in[1], r[0]);
    if (wants(c, n->in[2])) acc(c, n->in[2], r[1]);
}

static void grad_geglu(ad *c, const ir_node *n, const int32_t *dy) {
    int32_t r[2];
    ir_bn(&c->b, IR_OP_geglu_bwd, IR_IN(IN(0), IN(1), dy[0]), IR_NOAT, r);
    acc(c, n->in[0], r[0]);
    acc(c, n->in[1], r[1]);
}

/* The fused op already computed its gradients against the loss scale it
 * was given: valid only when that scale is the loss's whole adjoint (the
 * loss is the differentiated root and nothing else reads it). */
static void grad_linear_cross_entropy(ad *c, const ir_node *n, const int32_t *dy) {
    /* a per-row dscale (dpo_loss's coef) defines the gradient itself: the
     * loss is the root, its seed unused */
    int rowscale = rtype(c, n->in[3])->rank == 1 && dy[0] >= 0 && rtype(c, dy[0])->rank == 0;
    if ((dy[0] != n->in[3] && !rowscale) || dy[1] >= 0 || dy[2] >= 0) {
        ax_error(c->b.d, "autodiff",
                 "linear_cross_entropy computes its gradient in the forward pass with the loss_scale input: its loss "
                 "must be the differentiated root and its dh/dw must not be differentiated");
        c->b.failed = 1;
        return;
    }
    acc(c, n->in[0], OUT(1));
    if (wants(c, n->in[1])) acc(c, n->in[1], OUT(2));
}

NOT_DIFFERENTIABLE(mask_rows)
/* reached only through its coef, the dscale of the linear_cross_entropy
 * that computes the gradients (whose rule routes no adjoint to it); its
 * loss is a statistic */
NOT_DIFFERENTIABLE(dpo_loss)
NOT_DIFFERENTIABLE(take_rows)

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* y = table with rows replaced by src's: dsrc = those rows of dy (in the
 * order of `rows`), dtable = dy with them zeroed (mask_rows keeps the
 * complement's [a, b) ranges). */
static void grad_index_copy(ad *c, const ir_node *n, const int32_t *dy) {
    const ir_attr *r = ir_attr_find(n->attrs, n->nattrs, "rows");
    if (wants(c, n->in[1]))
        acc(c, n->in[1], ir_b(&c->b, IR_OP_take_rows, IR_IN(dy[0]), IR_AT(ir_aints("rows", r->n, r->ints))));
    if (!wants(c, n->in[0])) return;
    const int64_t V = rtype(c, IN(0))->dims[0];
    int64_t *sorted = malloc(sizeof *sorted * (size_t)r->n), *keep = malloc(sizeof *keep * (size_t)(2 * r->n + 2));
    memcpy(sorted, r->ints, sizeof *sorted * (size_t)r->n);
    qsort(sorted, (size_t)r->n, sizeof *sorted, cmp_i64);
    int nk = 0;
    int64_t from = 0;
    for (int i = 0; i <= r->n; i++) {
        int64_t to = i < r->n ? sorted[i] : V;
        if (to > from) keep[nk++] = from, keep[nk++] = to;
        if (i < r->n) from = sorted[i] + 1;
    }
    if (nk) acc(c, n->in[0], ir_b(&c->b, IR_OP_mask_rows, IR_IN(dy[0]), IR_AT(ir_aints("rows", nk, keep))));
    free(sorted), free(keep);
}

/* y = x * mask * k is linear in x: dx = dy * mask * k, the same op with
 * the same seed and salt (so the mask is drawn again, never stored). */

static void grad_dropout(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], ir_b(&c->b, IR_OP_dropout, IR_IN(dy[0], IN(1)), n->nattrs, n->attrs));
}

/* y = x + noise, the noise a function of the keys alone: dx = dy (HF's
 * NEFTune hook adds a tensor that does not require grad). */
static void grad_neftune(ad *c, const ir_node *n, const int32_t *dy) { acc(c, n->in[0], dy[0]); }

/* DoRA's weight norm is detached (PEFT: weight_norm.detach(), DoRA paper
 * section 4.3): no gradient reaches w, lora_B or lora_A through it, and
 * its uses are not counted as uses of those globals (pass_autodiff). */
static void grad_dora_norm(ad *c, const ir_node *n, const int32_t *dy) { (void)c, (void)n, (void)dy; }

/* y = (g - 1) base + g s lora, g = m / norm (norm a constant): dbase,
 * dlora elementwise, dm the column sums of dy (base + s lora) / norm. */
static void grad_dora_scale(ad *c, const ir_node *n, const int32_t *dy) {
    int32_t r[3];
    ir_bn(&c->b, IR_OP_dora_scale_bwd, IR_IN(IN(0), IN(1), IN(2), IN(3), dy[0]), n->nattrs, n->attrs, r);
    acc(c, n->in[0], r[0]);
    acc(c, n->in[1], r[1]);
    if (wants(c, n->in[2])) acc(c, n->in[2], r[2]);
}

/* Quantized base weights are frozen: codes and scales are not floats. */
static void grad_dequant_nf4(ad *c, const ir_node *n, const int32_t *dy) {
    (void)dy;
    if (wants(c, n->in[0]) || wants(c, n->in[1]) || wants(c, n->in[2])) {
        ax_error(c->b.d, "autodiff", "dequant_nf4: quantized weights are frozen (trainable=0)");
        c->b.failed = 1;
    }
}

static void grad_cross_entropy(ad *c, const ir_node *n, const int32_t *dy) {
    acc(c, n->in[0], ir_b(&c->b, IR_OP_cross_entropy_bwd, IR_IN(IN(0), IN(1), dy[0]), n->nattrs, n->attrs));
}

typedef void (*grad_fn)(ad *, const ir_node *, const int32_t *);
static const grad_fn grad_rules[IR_NOPS] = {
#define IR_OP(name, nin, nout, flags) grad_##name,
#include "ir/ops.def"
#undef IR_OP
};

/* Re-emits forward nodes [b, e) with fresh values (gradient checkpointing). */
/* see rederive_inputs */
static int rederivable(ir_op op) { return op == IR_OP_dequant_nf4 || op == IR_OP_dropout; }

static void recompute(ad *c, int b, int e) {
    for (int i = b; i < e && !c->b.failed; i++) {
        const ir_node *n = &c->p->nodes[i];
        /* a typed source (fill, input: a constant or the step's own input) reads nothing the recompute would change;
         * the forward's value is kept (Qwen2-MoE's row of ones is a layer's only one) */
        if (ir_ops[n->op].flags & IR_F_TYPED) continue;
        int32_t in[16], out[8];
        for (int k = 0; k < n->nin; k++) in[k] = fwd(c, n->in[k]);
        ir_node nn = *n; /* copy: nodes may move when the array grows */
        ir_bn(&c->b, nn.op, nn.nin, in, nn.nattrs, nn.attrs, out);
        for (int k = 0; k < nn.nout; k++) c->remap[nn.out[k]] = out[k];
    }
    /* the recomputed forward has read these: the backward derives them
     * again (rederive_inputs), so the recomputed copies die here */
    for (int i = b; i < e; i++)
        if (rederivable(c->p->nodes[i].op)) c->remap[c->p->nodes[i].out[0]] = c->p->nodes[i].out[0];
}

/* Values the backward derives again instead of keeping them from the
 * forward, because they are cheap and large:
 *  - dequant_nf4 (QLoRA): a pure function of frozen globals, as large as
 *    the bf16 weight; keeping the forward's copies for the backward would
 *    hold a whole bf16 model (bitsandbytes' Linear4bit dequantizes again in
 *    its backward too);
 *  - dropout (LoRA): each adapter's dropped copy of its input (q, k and v
 *    each have one of the same hidden states) is drawn again from the input
 *    and the same seed, so one copy of the input is kept instead of three.
 * A rederived value is made right before the first backward rule that reads
 * it; the forward's copy dies after its forward use. */

static void rederive_inputs(ad *c, const ir_node *n) {
    for (int k = 0; k < n->nin && !c->b.failed; k++) {
        int32_t v = n->in[k];
        if (IR_REF_IS_GLOBAL(v) || v >= c->nfwd_values || c->remap[v] != v) continue;
        const ir_node *src = &c->p->nodes[c->p->values[v].node];
        if (!rederivable(src->op)) continue;
        ir_node nn = *src; /* copy: nodes may move when the array grows */
        int32_t in[3];
        for (int i = 0; i < nn.nin && i < 3; i++) in[i] = fwd(c, nn.in[i]);
        c->remap[v] = ir_b(&c->b, nn.op, nn.nin, in, nn.nattrs, nn.attrs);
    }
}

int pass_autodiff(ir_module *m, ir_program *p, int32_t loss, int checkpoint, ax_diag *d) {
    ad c = {.m = m, .p = p};
    ir_builder_init(&c.b, m, p, d);
    const int nfwd = p->nnodes;
    c.nfwd_values = p->nvalues;
    /* values created during backward get ids beyond nfwd_values: adjoint
     * and remap are only indexed by forward ids. */
    c.adj = malloc(sizeof(int32_t) * (size_t)(p->nvalues + 1));
    c.remap = malloc(sizeof(int32_t) * (size_t)(p->nvalues + 1));
    for (int i = 0; i < p->nvalues; i++) c.adj[i] = -1, c.remap[i] = i;
    int ng0 = m->nglobals;
    c.gadj = malloc(sizeof(int32_t) * (size_t)(ng0 + 1));
    c.guses = calloc((size_t)ng0 + 1, sizeof(int));
    c.gradg = malloc(sizeof(int) * (size_t)(ng0 + 1));
    for (int g = 0; g < ng0; g++) {
        c.gadj[g] = -1;
        c.gradg[g] = -1;
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM || !ir_attr_int(G->attrs, G->nattrs, "trainable", 1)) continue;
        char name[512];
        snprintf(name, sizeof name, "grad/%s", G->name);
        ir_type t = G->type;
        c.gradg[g] = ir_global_add(m, name, t, IR_ROLE_GRAD, NULL, 0);
    }
    for (int i = 0; i < nfwd; i++)
        for (int k = 0; k < p->nodes[i].nin && p->nodes[i].op != IR_OP_dora_norm; k++)
            if (IR_REF_IS_GLOBAL(p->nodes[i].in[k])) c.guses[IR_REF_GLOBAL(p->nodes[i].in[k])]++;

    /* Nodes from here on are the backward: the shard pass re-gathers
     * parameters at this boundary when they are resharded after forward.
     * (Set before taking `ln`: setting an attribute may move the array.) */
    ir_module_set_attr(m, ir_ai("backward_start", p->nnodes));
    /* layer ranges for checkpointing */
    const ir_attr *ln = ir_module_attr(m, "layer_nodes");
    int nl = checkpoint && ln && ln->kind == IR_ATTR_INTS ? ln->n / 2 : 0;

    /* The seed: the runtime's loss scale. A fused loss op (lowering) may
     * already read the input; then it is the same value. */
    c.adj[loss] = -1;
    for (int i = 0; i < nfwd && c.adj[loss] < 0; i++) {
        const ir_node *n = &p->nodes[i];
        if (n->op == IR_OP_input && !strcmp(ir_attr_str(n->attrs, n->nattrs, "name", ""), "loss_scale")) c.adj[loss] = n->out[0];
    }
    if (c.adj[loss] < 0) c.adj[loss] = ir_b_input(&c.b, "loss_scale", ir_type_scalar(IR_F32));
    c.b.role = IR_ROLE_ACT;
    for (int i = nfwd - 1; i >= 0 && !c.b.failed; i--) {
        for (int l = 0; l < nl; l++)
            if (ln->ints[2 * l + 1] - 1 == i) recompute(&c, (int)ln->ints[2 * l], (int)ln->ints[2 * l + 1]);
        ir_node n = p->nodes[i];
        int32_t dy[8];
        int any = 0;
        for (int k = 0; k < n.nout; k++) {
            dy[k] = c.adj[n.out[k]];
            any |= dy[k] >= 0;
        }
        if (!any) continue;
        rederive_inputs(&c, &n);
        grad_rules[n.op](&c, &n, dy);
    }
    /* params whose every use did not yield a gradient contribution */
    for (int g = 0; g < ng0 && !c.b.failed; g++) emit_grad_acc(&c, g);
    int rc = c.b.failed ? -1 : 0;
    free(c.adj);
    free(c.remap);
    free(c.gadj);
    free(c.guses);
    free(c.gradg);
    return rc;
}
