/* seqpar.c — sequence parallelism: ring attention over the `sp` mesh axis.
 *
 * Each of the P = |sp| ranks holds S/P tokens of every row of the
 * micro-batch. Which tokens is the layout (module attr sp.layout), chosen
 * by the config's ring_attn_func:
 *   zigzag      rank r holds chunks r and 2P-1-r of 2P equal chunks, so
 *               every rank does the same causal work (default)
 *   contiguous  rank r holds chunk r of P (batch_ring)
 *   stripe      rank r holds tokens t with t % P == r (batch_stripe)
 * The runtime feeds each rank its tokens and an input `token_idx` (each
 * local token's index in its row); positions (RoPE) and next-token targets
 * come from the whole row, so only attention needs to know about the split.
 *
 * The pass rewrites micro_step (after autodiff, so gradients of the ring
 * are rewritten too, including recomputed layers), and eval_step alike:
 *  - the [B,S] inputs become [B,S/P]; reshapes follow; every other type is
 *    inferred again, so every activation holds S/P tokens;
 *  - attention(q,k,v,seg) becomes P attention_blk steps: K/V (and, once
 *    per micro-step, the segment ids and token indices) move one rank along
 *    the ring with ring_shift while the block that arrived is computed; the
 *    partial results are merged by online softmax (attn_merge) in f32;
 *    gpt-oss's sinks (attention's 5th operand) then join by attn_sink;
 *  - attention_bwd becomes P attention_blk_bwd steps against the merged
 *    out/lse: dQ sums locally, dK/dV accumulators travel with their K/V
 *    block and one last shift brings them home.
 * Program order puts the shift of step s+1 before the block of step s, so
 * a scheduler can overlap the transfer with the compute.
 * Gradients of parameters are partial sums over the local tokens; the
 * shard pass reduces them over sp (and dp) once per optimizer step.
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

typedef struct sp {
    rw r;
    int axis, P;
    int64_t B, S, Sl;
    int32_t idx;        /* the token_idx input (new id) */
    int32_t seg_src;    /* new id of the segment ids the ring blocks below hold */
    int32_t *segb, *idxb; /* [P]: segment ids / token indices of the block from rank r-s */
} sp;

static int32_t shift(sp *c, int32_t x) {
    return ir_b(&c->r.b, IR_OP_ring_shift, IR_IN(x), IR_AT(ir_as("axis", "sp")));
}

/* Segment ids and token indices of every ring step: shifted once per
 * micro-step (they are inputs, the same in every layer). */
static void ring_meta(sp *c, int32_t seg) {
    if (c->seg_src == seg) return;
    c->seg_src = seg;
    c->segb[0] = seg;
    c->idxb[0] = c->idx;
    for (int s = 1; s < c->P; s++) {
        c->segb[s] = shift(c, c->segb[s - 1]);
        c->idxb[s] = shift(c, c->idxb[s - 1]);
    }
}

static int32_t to_dtype(sp *c, int32_t x, ir_dtype dt) {
    if (dt == IR_F32) return x;
    return ir_b(&c->r.b, IR_OP_convert, IR_IN(x), IR_AT(ir_as("to", ir_dtype_name(dt))));
}

static void ring_forward(sp *c, const ir_node *n) {
    ir_builder *b = &c->r.b;
    int32_t q = rw_ref(&c->r, n->in[0]), k = rw_ref(&c->r, n->in[1]), v = rw_ref(&c->r, n->in[2]);
    int32_t seg = rw_ref(&c->r, n->in[3]);
    ring_meta(c, seg);
    int32_t o = 0, l = 0;
    for (int s = 0; s < c->P && !b->failed; s++) {
        int32_t kn = 0, vn = 0;
        if (s + 1 < c->P) { /* the next block travels while this one computes */
            kn = shift(c, k);
            vn = shift(c, v);
        }
        int32_t blk[2];
        ir_bn(b, IR_OP_attention_blk, IR_IN(q, k, v, seg, c->segb[s], c->idx, c->idxb[s]), n->nattrs, n->attrs, blk);
        if (s == 0) {
            o = blk[0], l = blk[1];
        } else {
            int32_t mg[2];
            ir_bn(b, IR_OP_attn_merge, IR_IN(o, l, blk[0], blk[1]), IR_NOAT, mg);
            o = mg[0], l = mg[1];
        }
        k = kn, v = vn;
    }
    if (n->nin == 5 && !b->failed) { /* gpt-oss's sinks join each query's softmax once, on the merged row */
        int32_t sk[2];
        ir_bn(b, IR_OP_attn_sink, IR_IN(o, l, rw_ref(&c->r, n->in[4])), IR_NOAT, sk);
        o = sk[0], l = sk[1];
    }
    if (b->failed) return;
    c->r.map[n->out[0]] = to_dtype(c, o, c->r.p->values[n->out[0]].type.dtype);
    c->r.map[n->out[1]] = l;
}

static void ring_backward(sp *c, const ir_node *n) {
    ir_builder *b = &c->r.b;
    int32_t in[7];
    for (int i = 0; i < 7; i++) in[i] = rw_ref(&c->r, n->in[i]);
    int32_t q = in[0], k = in[1], v = in[2], seg = in[3], out = in[4], lse = in[5], dout = in[6];
    ring_meta(c, seg);
    int32_t dq = 0, dk = 0, dv = 0;
    for (int s = 0; s < c->P && !b->failed; s++) {
        int32_t kn = 0, vn = 0;
        if (s + 1 < c->P) {
            kn = shift(c, k);
            vn = shift(c, v);
        }
        int32_t g[3];
        ir_bn(b, IR_OP_attention_blk_bwd, IR_IN(q, k, v, seg, c->segb[s], c->idx, c->idxb[s], out, lse, dout), n->nattrs,
              n->attrs, g);
        if (s == 0) {
            dq = g[0], dk = g[1], dv = g[2];
        } else { /* dK/dV of block r-s arrived with it from rank r-1 */
            dk = shift(c, dk);
            dv = shift(c, dv);
            dq = ir_b(b, IR_OP_add, IR_IN(dq, g[0]), IR_NOAT);
            dk = ir_b(b, IR_OP_add, IR_IN(dk, g[1]), IR_NOAT);
            dv = ir_b(b, IR_OP_add, IR_IN(dv, g[2]), IR_NOAT);
        }
        k = kn, v = vn;
    }
    if (c->P > 1) { /* rank r holds the block of rank r+1: send it home */
        dk = shift(c, dk);
        dv = shift(c, dv);
    }
    if (b->failed) return;
    const ir_value *ov = c->r.p->values;
    c->r.map[n->out[0]] = to_dtype(c, dq, ov[n->out[0]].type.dtype);
    c->r.map[n->out[1]] = to_dtype(c, dk, ov[n->out[1]].type.dtype);
    c->r.map[n->out[2]] = to_dtype(c, dv, ov[n->out[2]].type.dtype);
}

static int is_row_input(const ir_node *n, const ir_type *t, int64_t B, int64_t S) {
    return n->op == IR_OP_input && t->rank == 2 && t->dims[0] == B && t->dims[1] == S;
}

/* One program: [B,S] inputs become [B,S/P], attention ring attention. */
static int seqpar_program(sp *c, ir_module *m, ir_program *p, ax_diag *d) {
    c->seg_src = -1;
    c->segb = calloc((size_t)c->P, sizeof(int32_t));
    c->idxb = calloc((size_t)c->P, sizeof(int32_t));
    rw_begin(&c->r, m, p, d);
    ir_type local = ir_type_make(IR_I32, 2, (int64_t[]){c->B, c->Sl});
    c->idx = ir_b_input(&c->r.b, "token_idx", local);
    int is_micro = !strcmp(p->name, "micro_step");
    int64_t bstart = is_micro ? ir_attr_int(m->attrs, m->nattrs, "backward_start", -1) : -1, new_bstart = -1;
    for (int i = 0; i < p->nnodes && !c->r.b.failed; i++) {
        const ir_node *n = &p->nodes[i];
        if (i == bstart) new_bstart = c->r.np.nnodes;
        const ir_type *t0 = n->nout ? &p->values[n->out[0]].type : NULL;
        if (is_row_input(n, t0, c->B, c->S)) {
            ir_type lt = local; /* the input's own dtype: i32 ids, positions, ...; f32 weights (aux_mask) */
            lt.dtype = t0->dtype;
            rw_emit(&c->r, n, NULL, NULL, 0, &lt);
        } else if (n->op == IR_OP_reshape) {
            const ir_attr *sh = ir_attr_find(n->attrs, n->nattrs, "shape");
            int64_t dims[IR_MAX_RANK];
            int nd = sh ? sh->n : 0;
            for (int k = 0; k < nd && k < IR_MAX_RANK; k++) dims[k] = sh->ints[k];
            if (nd >= 2 && dims[0] == c->B && dims[1] == c->S) dims[1] = c->Sl; /* activations are [B, S, ...] */
            ir_attr at = ir_aints("shape", nd, dims);
            rw_emit(&c->r, n, NULL, &at, 1, NULL);
        } else if (n->op == IR_OP_attention) {
            ring_forward(c, n);
        } else if (n->op == IR_OP_attention_bwd) {
            ring_backward(c, n);
        } else {
            rw_emit(&c->r, n, NULL, NULL, 0, NULL);
        }
    }
    free(c->segb);
    free(c->idxb);
    if (new_bstart >= 0) ir_module_set_attr(m, ir_ai("backward_start", new_bstart));
    if (rw_end(&c->r) != 0) {
        ax_error(d, "seqpar", "rewriting %s for %d sequence-parallel ranks failed", p->name, c->P);
        return -1;
    }
    return 0;
}

int pass_seqpar(ir_module *m, const char *layout, ax_diag *d) {
    int axis = ir_mesh_find(m, "sp");
    if (axis < 0 || m->mesh_sizes[axis] == 1) return 0;
    sp c = {.axis = axis, .P = (int)m->mesh_sizes[axis], .seg_src = -1};
    /* the rows the programs take: train.rows x train.row_len when a micro-batch is one packed bin */
    c.B = ir_attr_int(m->attrs, m->nattrs, "train.rows", ir_attr_int(m->attrs, m->nattrs, "train.micro_batch_size", 0));
    c.S = ir_attr_int(m->attrs, m->nattrs, "train.row_len", ir_attr_int(m->attrs, m->nattrs, "train.seq_len", 0));
    int zig = !strcmp(layout, "zigzag");
    if (!zig && strcmp(layout, "contiguous") && strcmp(layout, "stripe")) {
        ax_error(d, "seqpar", "unknown sequence layout \"%s\" (expected zigzag, contiguous or stripe)", layout);
        return -1;
    }
    if (c.S <= 0 || c.B <= 0 || c.S % (zig ? 2 * c.P : c.P)) {
        ax_error(d, "seqpar", "a row of %lld tokens cannot be split %s over %d ranks (needs a multiple of %d)", (long long)c.S,
                 layout, c.P, zig ? 2 * c.P : c.P);
        return -1;
    }
    c.Sl = c.S / c.P;
    ir_module_set_attr(m, ir_ai("sp.degree", c.P));
    ir_module_set_attr(m, ir_as("sp.layout", layout));
    ir_module_set_attr(m, ir_ai("sp.local_seq_len", c.Sl));
    if (!ir_program_find(m, "micro_step")) {
        ax_error(d, "seqpar", "module has no micro_step program");
        return -1;
    }
    static const char *const progs[] = {"micro_step", "eval_step"};
    for (size_t k = 0; k < sizeof progs / sizeof progs[0]; k++) {
        ir_program *p = ir_program_find(m, progs[k]);
        if (p && seqpar_program(&c, m, p, d) != 0) return -1;
    }
    return 0;
}
