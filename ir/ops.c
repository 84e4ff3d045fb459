/* ops.c — the op table's info rows and shape rules. */
#include "ir/ir.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"

#include <string.h>

const ir_op_info ir_ops[IR_NOPS] = {
#define IR_OP(name, nin, nout, flags) {#name, nin, nout, flags},
#include "ir/ops.def"
#undef IR_OP
};

int ir_op_parse(const char *name, ir_op *out) {
    for (int i = 0; i < IR_NOPS; i++)
        if (strcmp(ir_ops[i].name, name) == 0) {
            *out = (ir_op)i;
            return 0;
        }
    return -1;
}

int ir_op_writes(ir_op op, int k) {
    if (!(ir_ops[op].flags & IR_F_EFFECT)) return 0;
    return k == 0 || (op == IR_OP_adamw && (k == 2 || k == 3)) || (op == IR_OP_adamw8 && k >= 2 && k <= 5);
}

/* adamw's and adamw8's optional last operand: the step's beta1; neftune's: the micro step's mag; dpo_loss's: the
 * rows' completion token counts; rope's: the micro-batch's max position (longrope's regime); attention's: the
 * heads' sinks (gpt-oss) */
static int nin_optional(ir_op op) {
    return op == IR_OP_adamw || op == IR_OP_adamw8 || op == IR_OP_neftune || op == IR_OP_dpo_loss || op == IR_OP_rope ||
           op == IR_OP_attention;
}

int ir_op_max_nin(ir_op op) {
    if (op < 0 || op >= IR_NOPS) return 0;
    return ir_ops[op].nin < 0 ? IR_MAX_IN : ir_ops[op].nin + nin_optional(op);
}

int ir_op_nin_ok(ir_op op, int nin) {
    if (op < 0 || op >= IR_NOPS) return 0;
    if (ir_ops[op].nin < 0) return nin >= 1 && nin <= IR_MAX_IN;
    return nin == ir_ops[op].nin || (nin_optional(op) && nin == ir_ops[op].nin + 1);
}

const char *ir_op_nin_str(ir_op op, char *buf, size_t cap) {
    if (op >= 0 && op < IR_NOPS && ir_ops[op].nin < 0) snprintf(buf, cap, "1 to %d", IR_MAX_IN);
    else if (op >= 0 && op < IR_NOPS && nin_optional(op)) snprintf(buf, cap, "%d or %d", ir_ops[op].nin, ir_ops[op].nin + 1);
    else snprintf(buf, cap, "%d", op >= 0 && op < IR_NOPS ? ir_ops[op].nin : 0);
    return buf;
}

/* ---- helpers for shape rules ------------------------------------------- */
#define FAIL(...)                                \
    do {                                         \
        snprintf(err, errcap, __VA_ARGS__);      \
        return -1;                               \
    } while (0)

static int is_float(ir_dtype t) { return t == IR_F32 || t == IR_BF16 || t == IR_F16; }

static int64_t lead_numel(const ir_type *t) { /* product of all dims but the last */
    int64_t n = 1;
    for (int i = 0; i + 1 < t->rank; i++) n *= t->dims[i];
    return n;
}

static int64_t last_dim(const ir_type *t) { return t->rank ? t->dims[t->rank - 1] : 1; }

static ir_type same_dims(const ir_type *t, ir_dtype dt) {
    ir_type o = *t;
    o.dtype = dt;
    o.shard.axis = -1;
    o.shard.dim = 0;
    return o;
}

static const char *tstr(const ir_module *m, const ir_type *t, char *buf) { return ir_type_str(m, t, buf, 96); }

static int same_shape(const ir_type *a, const ir_type *b) { /* dims only */
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

static int need_float(const ir_module *m, const ir_type *t, int idx, char *err, size_t errcap) {
    char b[96];
    if (!is_float(t->dtype)) FAIL("operand %d: expected a float tensor, found %s", idx, tstr(m, t, b));
    return 0;
}

static int need_i32(const ir_module *m, const ir_type *t, int idx, char *err, size_t errcap) {
    char b[96];
    if (t->dtype != IR_I32) FAIL("operand %d: expected an i32 tensor, found %s", idx, tstr(m, t, b));
    return 0;
}

static int need_scalar(const ir_module *m, const ir_type *t, int idx, char *err, size_t errcap) {
    char b[96];
    if (t->rank != 0 || t->dtype != IR_F32) FAIL("operand %d: expected f32[], found %s", idx, tstr(m, t, b));
    return 0;
}

/* adamw's optional beta1: f32[3], the step's beta1 as a double split in
 * three floats whose sum ((double)[0] + (double)[1]) + (double)[2] is it
 * exactly (ir/quant.h axo_beta1_split), whole on every rank */
static int need_beta1(const ir_module *m, const ir_type *t, int idx, char *err, size_t errcap) {
    char b[96];
    if (t->rank != 1 || t->dims[0] != 3 || t->dtype != IR_F32 || t->shard.axis >= 0)
        FAIL("operand %d: expected the step's beta1 as f32[3] (three floats summing to it), found %s", idx, tstr(m, t, b));
    return 0;
}

static int need_same(const ir_module *m, const ir_type *a, const ir_type *b, int ia, int ib, int dtype_too, char *err,
                     size_t errcap) {
    char s1[96], s2[96];
    if (!ir_type_same_shape(a, b) || (dtype_too && a->dtype != b->dtype))
        FAIL("operands %d and %d must have the same %s: %s vs %s", ia, ib, dtype_too ? "type" : "shape",
             tstr(m, a, s1), tstr(m, b, s2));
    return 0;
}

static int need_attr(const ir_attr *a, int n, const char *key, ir_attr_kind kind, char *err, size_t errcap) {
    const ir_attr *x = ir_attr_find(a, n, key);
    static const char *kn[] = {"int", "float", "string", "int list"};
    if (!x) FAIL("missing attribute '%s' (%s)", key, kn[kind]);
    if (x->kind != kind && !(kind == IR_ATTR_FLOAT && x->kind == IR_ATTR_INT))
        FAIL("attribute '%s': expected %s, found %s", key, kn[kind], kn[x->kind]);
    return 0;
}

#define TRY(x)                 \
    do {                       \
        if ((x) != 0) return -1; \
    } while (0)

static ir_type scalar_f32(void) { return ir_type_scalar(IR_F32); }

/* attention's sliding window: attr window = W > 0 lets query i see key j only
 * when i - j < W (positions in the row), as HF's sliding-window mask; absent
 * or 0: no window. Only with causal attention (a window reaches back only). */
static int check_window(const ir_attr *a, int n, char *err, size_t errcap) {
    const ir_attr *w = ir_attr_find(a, n, "window");
    if (!w) return 0;
    if (w->kind != IR_ATTR_INT) FAIL("attribute 'window': expected int");
    if (w->i < 0 || w->i > INT32_MAX) FAIL("window: expected 0 (none) or a positive token count, found %lld", (long long)w->i);
    if (w->i > 0 && !ir_attr_int(a, n, "causal", 1)) FAIL("window: a sliding window needs causal attention (causal = 1)");
    return 0;
}

/* Gemma 2's soft-capping: attr softcap = c > 0 replaces a score (attention's scaled q.k, cross entropy's logit)
 * x by c tanh(x / c); absent or 0: none. */
static int check_softcap(const ir_attr *a, int n, char *err, size_t errcap) {
    const ir_attr *c = ir_attr_find(a, n, "softcap");
    if (!c) return 0;
    if (c->kind != IR_ATTR_FLOAT) FAIL("attribute 'softcap': expected float");
    if (!(c->f >= 0 && c->f < 3.4e38)) FAIL("softcap: expected 0 (none) or a positive finite cap, found %g", c->f);
    return 0;
}

static int mesh_axis_attr(const ir_module *m, const ir_attr *at, int na, char *err, size_t errcap) {
    const char *ax = ir_attr_str(at, na, "axis", NULL);
    if (!ax) FAIL("collective without an 'axis' attribute naming a mesh axis");
    int i = m ? ir_mesh_find(m, ax) : -1;
    if (i < 0) FAIL("axis \"%s\" is not a mesh axis of this module", ax);
    return i;
}

static int dora_operands(const ir_module *m, const ir_type *in, const ir_attr *at, int na, char *err, size_t errcap) {
    char b1[96], b2[96];
    TRY(need_float(m, &in[0], 0, err, errcap));
    TRY(need_same(m, &in[0], &in[1], 0, 1, 1, err, errcap));
    const int64_t N = last_dim(&in[0]);
    if (in[0].rank < 1) FAIL("operand 0: expected rows [R..., N], found %s", tstr(m, &in[0], b1));
    for (int k = 2; k < 4; k++)
        if (in[k].dtype != IR_F32 || in[k].rank != 1 || in[k].dims[0] != N || in[k].shard.axis >= 0)
            FAIL("operand %d: expected a replicated f32[%lld] (one per column of %s), found %s", k, (long long)N,
                 tstr(m, &in[0], b1), tstr(m, &in[k], b2));
    TRY(need_attr(at, na, "scaling", IR_ATTR_FLOAT, err, errcap));
    double s = ir_attr_float(at, na, "scaling", 0);
    if (!(s > -3.4e38 && s < 3.4e38)) FAIL("scaling: expected a finite number, found %g", s);
    return 0;
}

/* moe_ffn's and moe_ffn_oss's slots: idx and w [..., k] over x's tokens; *gu, each slot's gate|up [..., k, I2] */
static int moe_slots(const ir_module *m, const ir_type *x, const ir_type *idx, const ir_type *w, int64_t I2, ir_type *gu,
                     char *err, size_t errcap) {
    char b1[96], b2[96];
    if (idx->rank != x->rank || !same_shape(idx, w) || w->rank != x->rank)
        FAIL("operands 1, 2: expected experts and weights [..., k] over x's tokens, found %s and %s", tstr(m, idx, b1),
             tstr(m, w, b2));
    for (int i = 0; i + 1 < x->rank; i++)
        if (idx->dims[i] != x->dims[i]) FAIL("operand 1 %s: not over x's tokens %s", tstr(m, idx, b1), tstr(m, x, b2));
    if (x->rank + 1 > IR_MAX_RANK) FAIL("x %s: rank too large", tstr(m, x, b1));
    *gu = same_dims(x, x->dtype);
    gu->rank = x->rank + 1;
    gu->dims[x->rank - 1] = last_dim(idx);
    gu->dims[x->rank] = I2;
    return 0;
}

int ir_infer(const ir_module *m, ir_op op, const ir_type *in, int nin, const ir_attr *at, int na, ir_type *out,
             char *err, size_t errcap) {
    char b1[96], b2[96], b3[96], b4[96], b5[96];
    if (op < 0 || op >= IR_NOPS) FAIL("unknown op %d", (int)op);
    if (!ir_op_nin_ok(op, nin)) FAIL("%s takes %s operands, found %d", ir_ops[op].name, ir_op_nin_str(op, b1, sizeof b1), nin);
    switch (op) {
    case IR_OP_input:
        TRY(need_attr(at, na, "name", IR_ATTR_STR, err, errcap));
        return 0;
    case IR_OP_fill:
        TRY(need_attr(at, na, "value", IR_ATTR_FLOAT, err, errcap));
        return 0;
    case IR_OP_embedding:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_i32(m, &in[1], 1, err, errcap));
        if (in[0].rank != 2) FAIL("operand 0: expected a [vocab, hidden] table, found %s", tstr(m, &in[0], b1));
        if (in[1].rank + 1 > IR_MAX_RANK) FAIL("operand 1: rank too large");
        out[0] = same_dims(&in[1], in[0].dtype);
        out[0].dims[out[0].rank++] = in[0].dims[1];
        return 0;
    case IR_OP_rmsnorm:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "eps", IR_ATTR_FLOAT, err, errcap));
        if (in[1].rank != 1 || in[1].dims[0] != last_dim(&in[0]))
            FAIL("operand 1: expected a weight [%lld] matching the last dim of %s, found %s",
                 (long long)last_dim(&in[0]), tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        out[0] = same_dims(&in[0], in[0].dtype);
        return 0;
    case IR_OP_matmul: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_float(m, &in[1], 1, err, errcap));
        if (in[0].dtype != in[1].dtype) FAIL("operands differ in dtype: %s vs %s", tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        if (in[0].rank < 2 || in[1].rank < 2) FAIL("operands must have rank >= 2: %s, %s", tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        int ta = (int)ir_attr_int(at, na, "ta", 0), tb = (int)ir_attr_int(at, na, "tb", 0);
        /* a is [M,K] (ta=0, leading dims flattened into M) or [K,M] (ta=1,
         * leading dims flattened into K); b likewise is [K,N] or [N,K]. */
        int64_t K = ta ? lead_numel(&in[0]) : last_dim(&in[0]);
        int64_t M = ta ? last_dim(&in[0]) : lead_numel(&in[0]);
        int64_t Kb = tb ? last_dim(&in[1]) : lead_numel(&in[1]);
        int64_t N = tb ? lead_numel(&in[1]) : last_dim(&in[1]);
        if (K != Kb)
            FAIL("contraction sizes differ: %lld vs %lld (a=%s ta=%d, b=%s tb=%d)", (long long)K, (long long)Kb,
                 tstr(m, &in[0], b1), ta, tstr(m, &in[1], b2), tb);
        if (!ta) {
            out[0] = same_dims(&in[0], in[0].dtype);
            out[0].dims[out[0].rank - 1] = N;
        } else {
            out[0] = ir_type_make(in[0].dtype, 2, (int64_t[]){M, N});
        }
        return 0;
    }
    case IR_OP_bias_add:
        TRY(need_float(m, &in[0], 0, err, errcap));
        if (in[1].rank != 1 || in[1].dims[0] != last_dim(&in[0]) || in[1].dtype != in[0].dtype)
            FAIL("operand 1: expected a bias [%lld] of %s's dtype, found %s", (long long)last_dim(&in[0]),
                 tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        out[0] = same_dims(&in[0], in[0].dtype);
        return 0;
    case IR_OP_add:
    case IR_OP_mul:
    case IR_OP_swiglu:
    case IR_OP_geglu:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_same(m, &in[0], &in[1], 0, 1, 1, err, errcap));
        out[0] = in[0];
        return 0;
    case IR_OP_scale:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "alpha", IR_ATTR_FLOAT, err, errcap));
        out[0] = in[0];
        return 0;
    case IR_OP_sigmoid:
        TRY(need_float(m, &in[0], 0, err, errcap));
        out[0] = in[0];
        return 0;
    case IR_OP_sigmoid_bwd:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_same(m, &in[0], &in[1], 0, 1, 1, err, errcap));
        out[0] = in[0];
        return 0;
    case IR_OP_convert: {
        TRY(need_attr(at, na, "to", IR_ATTR_STR, err, errcap));
        ir_dtype to;
        if (ir_dtype_parse(ir_attr_str(at, na, "to", ""), &to) != 0 || !is_float(to) || !is_float(in[0].dtype))
            FAIL("convert: float to float only (to=\"%s\", from %s)", ir_attr_str(at, na, "to", ""), tstr(m, &in[0], b1));
        out[0] = in[0];
        out[0].dtype = to;
        return 0;
    }
    case IR_OP_slice:
    case IR_OP_slice_bwd: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "begin", IR_ATTR_INT, err, errcap));
        const int fwd = op == IR_OP_slice;
        TRY(need_attr(at, na, fwd ? "len" : "width", IR_ATTR_INT, err, errcap));
        if (in[0].rank < 1) FAIL("operand 0: expected rank >= 1, found %s", tstr(m, &in[0], b1));
        const int64_t begin = ir_attr_int(at, na, "begin", 0), W = fwd ? last_dim(&in[0]) : ir_attr_int(at, na, "width", 0);
        const int64_t len = fwd ? ir_attr_int(at, na, "len", 0) : last_dim(&in[0]);
        if (begin < 0 || len < 1 || len > W || begin > W - len)
            FAIL("columns [%lld, %lld) are not inside a last dim of %lld", (long long)begin, (long long)(begin + len),
                 (long long)W);
        out[0] = same_dims(&in[0], in[0].dtype);
        out[0].dims[out[0].rank - 1] = fwd ? len : W;
        return 0;
    }
    case IR_OP_moe_route:
    case IR_OP_moe_route_bwd: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "k", IR_ATTR_INT, err, errcap));
        const int64_t k = ir_attr_int(at, na, "k", 0), E = in[0].rank ? last_dim(&in[0]) : 0;
        if (in[0].rank < 1 || k < 1 || k > E)
            FAIL("k %lld: expected 1 to the %lld experts of operand 0 %s", (long long)k, (long long)E, tstr(m, &in[0], b1));
        ir_type kt = same_dims(&in[0], in[0].dtype);
        kt.dims[kt.rank - 1] = k;
        if (op == IR_OP_moe_route) {
            out[0] = kt;
            out[1] = same_dims(&kt, IR_I32);
            return 0;
        }
        TRY(need_i32(m, &in[1], 1, err, errcap));
        TRY(need_float(m, &in[2], 2, err, errcap));
        if (!same_shape(&in[1], &kt) || !same_shape(&in[2], &kt))
            FAIL("operands 1, 2: expected the experts and weights %s, found %s and %s", tstr(m, &kt, b1), tstr(m, &in[1], b2),
                 tstr(m, &in[2], b3));
        out[0] = same_dims(&in[0], in[0].dtype);
        return 0;
    }
    case IR_OP_moe_ffn:
    case IR_OP_moe_ffn_bwd: {
        const ir_type *x = &in[0], *idx = &in[1], *w = &in[2], *wgu = &in[3], *wd = &in[4];
        TRY(need_float(m, x, 0, err, errcap));
        TRY(need_i32(m, idx, 1, err, errcap));
        TRY(need_float(m, w, 2, err, errcap));
        TRY(need_float(m, wgu, 3, err, errcap));
        TRY(need_float(m, wd, 4, err, errcap));
        if (x->rank < 1 || wgu->rank != 3 || wd->rank != 3)
            FAIL("expected x[..., H], experts' gate_up [E, 2I, H] and down [E, H, I], found %s, %s, %s", tstr(m, x, b1),
                 tstr(m, wgu, b2), tstr(m, wd, b3));
        const int64_t H = last_dim(x), E = wgu->dims[0], I2 = wgu->dims[1];
        if (wgu->dims[2] != H || I2 % 2 || wd->dims[0] != E || wd->dims[1] != H || wd->dims[2] != I2 / 2)
            FAIL("experts' gate_up %s and down %s do not fit x %s: expected [E, 2I, H] and [E, H, I]", tstr(m, wgu, b1),
                 tstr(m, wd, b2), tstr(m, x, b3));
        ir_type gu;
        TRY(moe_slots(m, x, idx, w, I2, &gu, err, errcap));
        if (op == IR_OP_moe_ffn) {
            out[0] = same_dims(x, x->dtype);
            out[1] = gu;
            return 0;
        }
        if (!same_shape(&in[5], &gu) || !same_shape(&in[6], x))
            FAIL("operands 5, 6: expected gu %s and dy %s, found %s and %s", tstr(m, &gu, b1), tstr(m, x, b2),
                 tstr(m, &in[5], b3), tstr(m, &in[6], b4));
        out[0] = same_dims(x, x->dtype);
        out[1] = same_dims(w, w->dtype);
        out[2] = same_dims(wgu, wgu->dtype);
        out[3] = same_dims(wd, wd->dtype);
        return 0;
    }
    case IR_OP_moe_ffn_oss:
    case IR_OP_moe_ffn_oss_bwd: {
        const ir_type *x = &in[0], *idx = &in[1], *w = &in[2], *wgu = &in[3], *bgu = &in[4], *wd = &in[5], *bd = &in[6];
        TRY(need_float(m, x, 0, err, errcap));
        TRY(need_i32(m, idx, 1, err, errcap));
        for (int i = 2; i < 7; i++) TRY(need_float(m, &in[i], i, err, errcap));
        TRY(need_attr(at, na, "alpha", IR_ATTR_FLOAT, err, errcap));
        TRY(need_attr(at, na, "limit", IR_ATTR_FLOAT, err, errcap));
        if (x->rank < 1 || wgu->rank != 3 || wd->rank != 3 || bgu->rank != 2 || bd->rank != 2)
            FAIL("expected x[..., H], experts' gate_up [E, H, 2I], its bias [E, 2I], down [E, I, H] and its bias [E, H], "
                 "found %s, %s, %s, %s, %s", tstr(m, x, b1), tstr(m, wgu, b2), tstr(m, bgu, b3), tstr(m, wd, b4),
                 tstr(m, bd, b5));
        const int64_t H = last_dim(x), E = wgu->dims[0], I2 = wgu->dims[2];
        if (wgu->dims[1] != H || I2 % 2 || wd->dims[0] != E || wd->dims[1] != I2 / 2 || wd->dims[2] != H ||
            bgu->dims[0] != E || bgu->dims[1] != I2 || bd->dims[0] != E || bd->dims[1] != H)
            FAIL("experts' gate_up %s (+ %s) and down %s (+ %s) do not fit x %s: expected [E, H, 2I] + [E, 2I] and "
                 "[E, I, H] + [E, H]", tstr(m, wgu, b1), tstr(m, bgu, b2), tstr(m, wd, b3), tstr(m, bd, b4), tstr(m, x, b5));
        ir_type gu;
        TRY(moe_slots(m, x, idx, w, I2, &gu, err, errcap));
        if (op == IR_OP_moe_ffn_oss) {
            out[0] = same_dims(x, x->dtype);
            out[1] = gu;
            return 0;
        }
        if (!same_shape(&in[7], &gu) || !same_shape(&in[8], x))
            FAIL("operands 7, 8: expected gu %s and dy %s, found %s and %s", tstr(m, &gu, b1), tstr(m, x, b2),
                 tstr(m, &in[7], b3), tstr(m, &in[8], b4));
        out[0] = same_dims(x, x->dtype);
        out[1] = same_dims(w, w->dtype);
        out[2] = same_dims(wgu, wgu->dtype);
        out[3] = same_dims(bgu, bgu->dtype);
        out[4] = same_dims(wd, wd->dtype);
        out[5] = same_dims(bd, bd->dtype);
        return 0;
    }
    case IR_OP_attn_sink:
    case IR_OP_attn_sink_bwd: {
        const int fwd = op == IR_OP_attn_sink;
        const ir_type *o = &in[fwd ? 0 : 1], *lse = &in[fwd ? 1 : 2], *sk = &in[fwd ? 2 : 0];
        TRY(need_float(m, o, fwd ? 0 : 1, err, errcap));
        TRY(need_float(m, sk, fwd ? 2 : 0, err, errcap));
        if (o->rank != 4) FAIL("expected out [batch, seq, heads, head_dim], found %s", tstr(m, o, b1));
        ir_type lt = ir_type_make(IR_F32, 3, (int64_t[]){o->dims[0], o->dims[2], o->dims[1]});
        if (!ir_type_equal(lse, &lt)) FAIL("expected lse %s, found %s", tstr(m, &lt, b1), tstr(m, lse, b2));
        if (sk->rank != 1 || sk->dims[0] != o->dims[2])
            FAIL("expected sinks [%lld] (one per head), found %s", (long long)o->dims[2], tstr(m, sk, b1));
        if (fwd) {
            out[0] = same_dims(o, o->dtype);
            out[1] = lt;
            return 0;
        }
        TRY(need_same(m, o, &in[3], 1, 3, 1, err, errcap));
        out[0] = same_dims(sk, sk->dtype);
        return 0;
    }
    case IR_OP_moe_lb_stats:
    case IR_OP_moe_lb_stats_bwd: {
        const int fwd = op == IR_OP_moe_lb_stats;
        const ir_type *l = &in[0], *mk = &in[fwd ? 2 : 1];
        TRY(need_float(m, l, 0, err, errcap));
        if (l->rank < 1) FAIL("operand 0: expected logits [..., E], found %s", tstr(m, l, b1));
        const int64_t E = last_dim(l);
        ir_type mt = same_dims(l, IR_F32);
        mt.rank = l->rank - 1;
        if (mk->dtype != IR_F32 || !same_shape(mk, &mt))
            FAIL("operand %d: expected the tokens' weights %s, found %s", fwd ? 2 : 1, tstr(m, &mt, b1), tstr(m, mk, b2));
        ir_type st = ir_type_make(IR_F32, 1, (int64_t[]){2 * E + 1});
        if (fwd) {
            TRY(need_i32(m, &in[1], 1, err, errcap));
            if (in[1].rank != l->rank) FAIL("operand 1: expected experts [..., k] over the logits' tokens, found %s", tstr(m, &in[1], b1));
            for (int i = 0; i + 1 < l->rank; i++)
                if (in[1].dims[i] != l->dims[i]) FAIL("operand 1 %s: not over the logits' tokens %s", tstr(m, &in[1], b1), tstr(m, l, b2));
            out[0] = st;
        } else {
            if (in[2].dtype != IR_F32 || !same_shape(&in[2], &st))
                FAIL("operand 2: expected dstats %s, found %s", tstr(m, &st, b1), tstr(m, &in[2], b2));
            out[0] = same_dims(l, l->dtype);
        }
        return 0;
    }
    case IR_OP_moe_lb_loss:
    case IR_OP_moe_lb_loss_bwd: {
        const ir_type *st = &in[0];
        if (st->dtype != IR_F32 || st->rank != 1 || st->dims[0] < 3 || st->dims[0] % 2 == 0)
            FAIL("operand 0: expected stats f32[2E+1], found %s", tstr(m, st, b1));
        if (op == IR_OP_moe_lb_loss) {
            out[0] = ir_type_scalar(IR_F32);
        } else {
            if (in[1].dtype != IR_F32 || in[1].rank != 0) FAIL("operand 1: expected dy f32[], found %s", tstr(m, &in[1], b1));
            out[0] = *st;
        }
        return 0;
    }
    case IR_OP_lora_delta:
    case IR_OP_lora_delta_bwd: {
        const int fwd = op == IR_OP_lora_delta;
        const ir_type *w = &in[fwd ? 0 : 2], *a = &in[fwd ? 1 : 0], *b = &in[fwd ? 2 : 1];
        TRY(need_float(m, w, fwd ? 0 : 2, err, errcap));
        TRY(need_float(m, a, fwd ? 1 : 0, err, errcap));
        TRY(need_float(m, b, fwd ? 2 : 1, err, errcap));
        TRY(need_attr(at, na, "scale", IR_ATTR_FLOAT, err, errcap));
        if ((w->rank != 2 && w->rank != 3) || a->rank != 2 || b->rank != 2)
            FAIL("expected w [E, O, I] or [O, I], a [E*r, I] and b [O, r*E], found %s, %s, %s", tstr(m, w, b1), tstr(m, a, b2),
                 tstr(m, b, b3));
        /* t: w [E, In, Out] (gpt-oss's experts), w' = w + scale (B_e A_e)^T with a [E*r, In], b [Out, r*E] */
        const int t = (int)ir_attr_int(at, na, "t", 0);
        if (t && w->rank != 3) FAIL("t=1: expected a stacked weight [E, In, Out], found %s", tstr(m, w, b1));
        const int64_t E = w->rank == 3 ? w->dims[0] : 1, O = w->dims[w->rank - (t ? 1 : 2)], I = w->dims[w->rank - (t ? 2 : 1)];
        if (a->dims[1] != I || b->dims[0] != O || a->dims[0] % E || a->dims[0] < E || b->dims[1] != a->dims[0])
            FAIL("a %s and b %s do not fit w %s: expected [E*r, %lld] and [%lld, r*E] with E = %lld", tstr(m, a, b1),
                 tstr(m, b, b2), tstr(m, w, b3), (long long)I, (long long)O, (long long)E);
        if (fwd) {
            out[0] = same_dims(w, w->dtype);
        } else {
            out[0] = same_dims(a, a->dtype);
            out[1] = same_dims(b, b->dtype);
        }
        return 0;
    }
    case IR_OP_reshape: {
        TRY(need_attr(at, na, "shape", IR_ATTR_INTS, err, errcap));
        const ir_attr *s = ir_attr_find(at, na, "shape");
        if (s->n > IR_MAX_RANK) FAIL("shape: rank %d exceeds %d", s->n, IR_MAX_RANK);
        int64_t numel = 1;
        for (int i = 0; i < s->n; i++) {
            if (s->ints[i] <= 0) FAIL("shape: dim %d is %lld", i, (long long)s->ints[i]);
            if (__builtin_mul_overflow(numel, s->ints[i], &numel)) FAIL("shape: element count overflows");
        }
        ir_type o = ir_type_make(in[0].dtype, s->n, s->ints);
        if (numel != ir_type_numel(&in[0]))
            FAIL("shape %s has a different element count than %s", tstr(m, &o, b1), tstr(m, &in[0], b2));
        out[0] = o;
        return 0;
    }
    case IR_OP_rope: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_i32(m, &in[1], 1, err, errcap));
        TRY(need_attr(at, na, "theta", IR_ATTR_FLOAT, err, errcap));
        if (in[0].rank != 4 || in[0].dims[3] % 2)
            FAIL("operand 0: expected [batch, seq, heads, head_dim] with an even head_dim, found %s", tstr(m, &in[0], b1));
        const int64_t rd = ir_attr_int(at, na, "rotary_dim", in[0].dims[3]);
        if (rd <= 0 || rd % 2 || rd > in[0].dims[3])
            FAIL("rotary_dim %lld: expected an even count of dims, at most the head_dim %lld", (long long)rd,
                 (long long)in[0].dims[3]);
        const ir_attr *sf = ir_attr_find(at, na, "short_factor"), *lf = ir_attr_find(at, na, "long_factor");
        if (!strcmp(ir_attr_str(at, na, "rope_type", "default"), "longrope") &&
            (!sf || !lf || sf->kind != IR_ATTR_FLOATS || lf->kind != IR_ATTR_FLOATS || sf->n != rd / 2 || lf->n != rd / 2))
            FAIL("longrope: expected short_factor and long_factor, %lld floats each (rotary_dim / 2)", (long long)(rd / 2));
        const int64_t il = ir_attr_int(at, na, "interleave", 0);
        if (il != 0 && il != 1) FAIL("interleave: expected 0 (pairs i, i + rotary_dim/2) or 1 (pairs 2i, 2i + 1), found %lld", (long long)il);
        const double qb = ir_attr_float(at, na, "qscale_beta", 0);
        if (!(qb > -1e6 && qb < 1e6)) FAIL("qscale_beta: expected a finite number, found %g", qb);
        if (qb != 0 && ir_attr_int(at, na, "qscale_max", 0) < 1)
            FAIL("qscale_beta needs qscale_max, a positive count of positions");
        if (nin == 3 && (in[2].dtype != IR_I32 || in[2].rank != 0))
            FAIL("operand 2: expected the micro-batch's max position, an i32 scalar, found %s", tstr(m, &in[2], b1));
        if (in[1].rank != 2 || in[1].dims[0] != in[0].dims[0] || in[1].dims[1] != in[0].dims[1])
            FAIL("operand 1: expected positions [%lld,%lld], found %s", (long long)in[0].dims[0],
                 (long long)in[0].dims[1], tstr(m, &in[1], b1));
        out[0] = same_dims(&in[0], in[0].dtype);
        return 0;
    }
    case IR_OP_attention:
    case IR_OP_attention_bwd: {
        const ir_type *q = &in[0], *k = &in[1], *v = &in[2], *seg = &in[3];
        TRY(need_float(m, q, 0, err, errcap));
        TRY(need_attr(at, na, "scale", IR_ATTR_FLOAT, err, errcap));
        TRY(check_window(at, na, err, errcap));
        TRY(check_softcap(at, na, err, errcap));
        if (q->rank != 4 || k->rank != 4) FAIL("q and k must be [batch, seq, heads, head_dim]: %s, %s", tstr(m, q, b1), tstr(m, k, b2));
        TRY(need_same(m, k, v, 1, 2, 1, err, errcap));
        if (k->dims[0] != q->dims[0] || k->dims[1] != q->dims[1] || k->dims[3] != q->dims[3] || k->dtype != q->dtype)
            FAIL("k %s does not match q %s in batch, seq, head_dim or dtype", tstr(m, k, b1), tstr(m, q, b2));
        if (k->dims[2] <= 0 || q->dims[2] % k->dims[2])
            FAIL("query heads (%lld) must be a multiple of kv heads (%lld)", (long long)q->dims[2], (long long)k->dims[2]);
        TRY(need_i32(m, seg, 3, err, errcap));
        if (seg->rank != 2 || seg->dims[0] != q->dims[0] || seg->dims[1] != q->dims[1])
            FAIL("operand 3: expected segment ids [%lld,%lld], found %s", (long long)q->dims[0], (long long)q->dims[1], tstr(m, seg, b1));
        ir_type lse = ir_type_make(IR_F32, 3, (int64_t[]){q->dims[0], q->dims[2], q->dims[1]});
        if (op == IR_OP_attention && nin == 5) {
            TRY(need_float(m, &in[4], 4, err, errcap));
            if (in[4].rank != 1 || in[4].dims[0] != q->dims[2])
                FAIL("operand 4: expected sinks [%lld] (one per query head), found %s", (long long)q->dims[2],
                     tstr(m, &in[4], b1));
        }
        if (op == IR_OP_attention) {
            out[0] = same_dims(q, q->dtype);
            out[1] = lse;
            return 0;
        }
        TRY(need_same(m, q, &in[4], 0, 4, 1, err, errcap));
        if (!ir_type_equal(&in[5], &lse)) FAIL("operand 5: expected lse %s, found %s", tstr(m, &lse, b1), tstr(m, &in[5], b2));
        TRY(need_same(m, q, &in[6], 0, 6, 1, err, errcap));
        out[0] = same_dims(q, q->dtype);
        out[1] = same_dims(k, k->dtype);
        out[2] = same_dims(v, v->dtype);
        return 0;
    }
    case IR_OP_dropout: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        if (in[1].rank != 0 || in[1].dtype != IR_I32) FAIL("operand 1: expected a seed i32[], found %s", tstr(m, &in[1], b1));
        TRY(need_attr(at, na, "p", IR_ATTR_FLOAT, err, errcap));
        TRY(need_attr(at, na, "salt", IR_ATTR_INT, err, errcap));
        double p = ir_attr_float(at, na, "p", 0);
        if (!(p >= 0 && p < 1)) FAIL("p: expected a probability in [0, 1), found %g", p);
        if (ir_type_numel(&in[0]) > UINT32_MAX) FAIL("operand 0: more than 2^32 elements");
        out[0] = in[0];
        return 0;
    }
    case IR_OP_mask_rows: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "rows", IR_ATTR_INTS, err, errcap));
        if (in[0].rank < 1 || in[0].shard.axis >= 0) FAIL("operand 0: expected a replicated tensor, found %s", tstr(m, &in[0], b1));
        const ir_attr *r = ir_attr_find(at, na, "rows");
        if (r->n < 2 || r->n % 2) FAIL("rows: expected [a, b) pairs, found %d numbers", r->n);
        for (int i = 0; i < r->n; i += 2)
            if (r->ints[i] < (i ? r->ints[i - 1] + 1 : 0) || r->ints[i + 1] <= r->ints[i] || r->ints[i + 1] > in[0].dims[0])
                FAIL("rows: pair %d [%lld, %lld) is not after the previous one, empty, or past the %lld rows of operand 0", i / 2,
                     (long long)r->ints[i], (long long)r->ints[i + 1], (long long)in[0].dims[0]);
        out[0] = in[0];
        return 0;
    }
    case IR_OP_index_copy:
    case IR_OP_take_rows: {
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "rows", IR_ATTR_INTS, err, errcap));
        if (in[0].rank != 2 || in[0].shard.axis >= 0)
            FAIL("operand 0: expected a replicated matrix, found %s", tstr(m, &in[0], b1));
        const ir_attr *r = ir_attr_find(at, na, "rows");
        if (r->n < 1) FAIL("rows: expected at least one row index");
        for (int i = 0; i < r->n; i++) {
            if (r->ints[i] < 0 || r->ints[i] >= in[0].dims[0])
                FAIL("rows[%d]: %lld is outside the %lld rows of operand 0", i, (long long)r->ints[i],
                     (long long)in[0].dims[0]);
            for (int j = 0; j < i; j++)
                if (r->ints[j] == r->ints[i]) FAIL("rows[%d]: %lld repeats rows[%d]", i, (long long)r->ints[i], j);
        }
        if (op == IR_OP_take_rows) {
            out[0] = in[0];
            out[0].dims[0] = r->n;
            return 0;
        }
        if (in[1].dtype != in[0].dtype || in[1].rank != 2 || in[1].dims[0] != r->n || in[1].dims[1] != in[0].dims[1] ||
            in[1].shard.axis >= 0)
            FAIL("operand 1: expected a replicated %s[%d,%lld] (one row per index, the table's dtype), found %s",
                 ir_dtype_name(in[0].dtype), r->n, (long long)in[0].dims[1], tstr(m, &in[1], b1));
        out[0] = in[0];
        return 0;
    }
    case IR_OP_neftune: {
        const ir_type *x = &in[0], *k = &in[1];
        TRY(need_float(m, x, 0, err, errcap));
        if (x->rank < 1 || k->dtype != IR_I32 || k->rank != x->rank - 1 ||
            memcmp(k->dims, x->dims, sizeof(int64_t) * (size_t)k->rank))
            FAIL("operand 1: expected one i32 key per row of %s, found %s", tstr(m, x, b1), tstr(m, k, b2));
        if (x->shard.axis != k->shard.axis || (x->shard.axis >= 0 && (x->shard.dim != k->shard.dim || x->shard.dim >= k->rank)))
            FAIL("x and its keys must be split alike over a leading dim, or both replicated");
        if (nin == 3) TRY(need_scalar(m, &in[2], 2, err, errcap)); /* the micro step's mag, replacing attr mag */;
        TRY(need_attr(at, na, "mag", IR_ATTR_FLOAT, err, errcap));
        TRY(need_attr(at, na, "salt", IR_ATTR_INT, err, errcap));
        double mag = ir_attr_float(at, na, "mag", 0);
        if (!(mag >= 0 && mag <= 3.4e38)) FAIL("mag: expected a finite magnitude >= 0, found %g", mag);
        if (last_dim(x) > UINT32_MAX) FAIL("operand 0: rows of more than 2^32 elements");
        out[0] = *x;
        return 0;
    }
    case IR_OP_dpo_loss: {
        const ir_type *s0 = &in[0], *sr = &in[1], *ps = &in[2];
        if (s0->dtype != IR_F32 || s0->rank != 1 || s0->dims[0] < 2 || s0->dims[0] % 2 || s0->shard.axis >= 0)
            FAIL("operand 0: expected the rows' summed losses as f32[2P], chosen then rejected, found %s", tstr(m, s0, b1));
        if (sr->dtype != IR_F32 || sr->rank != 1 || sr->dims[0] != s0->dims[0] || sr->shard.axis >= 0)
            FAIL("operand 1: expected the reference's f32[%lld], found %s", (long long)s0->dims[0], tstr(m, sr, b1));
        if (ps->dtype != IR_F32 || ps->rank != 1 || ps->dims[0] != s0->dims[0] / 2 || ps->shard.axis >= 0)
            FAIL("operand 2: expected a scale per pair, f32[%lld], found %s", (long long)s0->dims[0] / 2, tstr(m, ps, b1));
        TRY(need_attr(at, na, "beta", IR_ATTR_FLOAT, err, errcap));
        double beta = ir_attr_float(at, na, "beta", 0);
        if (!(beta > -3.4e38 && beta < 3.4e38)) FAIL("beta: expected a finite number, found %g", beta);
        int types[AXO_DPO_MAXTERMS];
        double w[AXO_DPO_MAXTERMS];
        const char *lt = ir_attr_str(at, na, "loss_type", "sigmoid"), *lw = ir_attr_str(at, na, "loss_weights", NULL);
        const int nt = axo_dpo_parse(lt, lw, types, w);
        if (nt < 0)
            FAIL("loss_type \"%s\"%s%s%s: expected up to %d of TRL's per-pair DPO losses (ir/dpo_loss.h), comma-separated, "
                 "and as many weights", lt, lw ? ", loss_weights \"" : "", lw ? lw : "", lw ? "\"" : "", AXO_DPO_MAXTERMS);
        int counts = 0;
        for (int k = 0; k < nt; k++) counts |= axo_dpo_needs_counts(types[k]);
        const double eps = ir_attr_float(at, na, "label_smoothing", 0), tau = ir_attr_float(at, na, "discopop_tau", 0.05);
        if (!(eps >= 0 && eps < 1)) FAIL("label_smoothing: expected a number in [0, 1), found %g", eps);
        if (!(tau > 0 && tau < 3.4e38)) FAIL("discopop_tau: expected a positive number, found %g", tau);
        const double gamma = ir_attr_float(at, na, "gamma", 0);
        if (!(gamma > -3.4e38 && gamma < 3.4e38)) FAIL("gamma: expected a finite number, found %g", gamma);
        if (counts != (nin == 4))
            FAIL("%s", counts ? "operand 3: ipo, sigmoid_norm, simpo and orpo need the rows' completion token counts, f32[2P]"
                              : "operand 3: only ipo, sigmoid_norm, simpo and orpo read token counts");
        if (nin == 4 && (in[3].dtype != IR_F32 || in[3].rank != 1 || in[3].dims[0] != s0->dims[0] || in[3].shard.axis >= 0))
            FAIL("operand 3: expected the rows' completion token counts, f32[%lld], found %s", (long long)s0->dims[0],
                 tstr(m, &in[3], b1));
        out[0] = ir_type_make(IR_F32, 1, (int64_t[]){s0->dims[0] / 2});
        out[1] = ir_type_make(IR_F32, 1, (int64_t[]){s0->dims[0]});
        return 0;
    }
    case IR_OP_dora_norm: {
        const ir_type *w = &in[0], *bt = &in[1], *a = &in[2];
        TRY(need_float(m, w, 0, err, errcap));
        if (w->rank != 2 || w->shard.axis >= 0) FAIL("operand 0: expected a replicated weight [N,K], found %s", tstr(m, w, b1));
        if (bt->dtype != IR_F32 || bt->rank != 2 || bt->dims[0] != w->dims[0] || bt->shard.axis >= 0)
            FAIL("operand 1: expected a replicated f32[%lld,r] (lora_B), found %s", (long long)w->dims[0], tstr(m, bt, b1));
        if (a->dtype != IR_F32 || a->rank != 2 || a->dims[0] != bt->dims[1] || a->dims[1] != w->dims[1] || a->shard.axis >= 0)
            FAIL("operand 2: expected a replicated f32[%lld,%lld] (lora_A), found %s", (long long)bt->dims[1],
                 (long long)w->dims[1], tstr(m, a, b2));
        TRY(need_attr(at, na, "scaling", IR_ATTR_FLOAT, err, errcap));
        double sc = ir_attr_float(at, na, "scaling", 0);
        if (!(sc > -3.4e38 && sc < 3.4e38)) FAIL("scaling: expected a finite number, found %g", sc);
        out[0] = ir_type_make(IR_F32, 1, (int64_t[]){w->dims[0]});
        return 0;
    }
    case IR_OP_dora_scale:
        TRY(dora_operands(m, in, at, na, err, errcap));
        out[0] = same_dims(&in[0], in[0].dtype);
        return 0;
    case IR_OP_dequant_nf4: {
        const ir_type *q = &in[0], *a = &in[1], *r = &in[2];
        TRY(need_attr(at, na, "to", IR_ATTR_STR, err, errcap));
        ir_dtype to;
        if (ir_dtype_parse(ir_attr_str(at, na, "to", ""), &to) != 0 || !is_float(to))
            FAIL("to: expected a float dtype, found \"%s\"", ir_attr_str(at, na, "to", ""));
        if (q->dtype != IR_NF4 || q->rank < 2 || q->dims[q->rank - 1] % 2)
            FAIL("operand 0: expected nf4[..., N, K] with K even (whole bytes per row), found %s", tstr(m, q, b1));
        ir_type wa = same_dims(q, IR_U8), wr = same_dims(q, IR_F32); /* [..., N, ceil(K/64)] and [..., N] */
        wa.dims[q->rank - 1] = (q->dims[q->rank - 1] + 63) / 64;
        wr.rank = q->rank - 1;
        if (a->dtype != IR_U8 || !ir_type_same_shape(a, &wa))
            FAIL("operand 1: expected absmax %s, found %s", tstr(m, &wa, b1), tstr(m, a, b2));
        if (r->dtype != IR_F32 || !ir_type_same_shape(r, &wr))
            FAIL("operand 2: expected rowmax %s, found %s", tstr(m, &wr, b1), tstr(m, r, b2));
        if (q->shard.axis != a->shard.axis || q->shard.axis != r->shard.axis ||
            (q->shard.axis >= 0 && (q->shard.dim != 0 || a->shard.dim != 0 || r->shard.dim != 0)))
            FAIL("codes, absmax and rowmax must be split alike (by rows) or all replicated");
        out[0] = *q;
        out[0].dtype = to;
        return 0;
    }
    case IR_OP_cross_entropy:
    case IR_OP_cross_entropy_bwd:
        TRY(check_softcap(at, na, err, errcap));
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_i32(m, &in[1], 1, err, errcap));
        if (in[0].rank < 2 || in[1].rank != in[0].rank - 1 || memcmp(in[1].dims, in[0].dims, sizeof(int64_t) * (size_t)in[1].rank))
            FAIL("targets %s must have the leading dims of logits %s", tstr(m, &in[1], b1), tstr(m, &in[0], b2));
        if (op == IR_OP_cross_entropy) {
            out[0] = scalar_f32();
        } else {
            TRY(need_scalar(m, &in[2], 2, err, errcap));
            out[0] = same_dims(&in[0], in[0].dtype);
        }
        return 0;
    case IR_OP_linear_cross_entropy: {
        TRY(check_softcap(at, na, err, errcap));
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_float(m, &in[1], 1, err, errcap));
        TRY(need_i32(m, &in[2], 2, err, errcap));
        TRY(need_attr(at, na, "chunk", IR_ATTR_INT, err, errcap));
        if (ir_attr_int(at, na, "chunk", 0) < 1) FAIL("attribute chunk must be >= 1 (rows per chunk)");
        if (in[1].rank != 2 || in[1].dims[1] != last_dim(&in[0]))
            FAIL("operand 1: expected an lm head [V,%lld] for hidden %s, found %s", (long long)last_dim(&in[0]),
                 tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        if (in[0].rank < 2 || in[2].rank != in[0].rank - 1 ||
            memcmp(in[2].dims, in[0].dims, sizeof(int64_t) * (size_t)in[2].rank))
            FAIL("targets %s must have the leading dims of hidden %s", tstr(m, &in[2], b1), tstr(m, &in[0], b2));
        if (in[1].dtype != in[0].dtype)
            FAIL("hidden %s and lm head %s must have one dtype", tstr(m, &in[0], b1), tstr(m, &in[1], b2));
        int64_t T = 1;
        for (int k = 0; k < in[2].rank; k++) T *= in[2].dims[k];
        if (in[3].dtype != IR_F32 || in[3].rank > 1 || in[3].shard.axis >= 0 ||
            (in[3].rank == 1 && (in[3].dims[0] < 1 || T % in[3].dims[0])))
            FAIL("operand 3: expected the gradient scale as f32[] or a replicated f32[n], n dividing the %lld tokens, "
                 "found %s", (long long)T, tstr(m, &in[3], b1));
        const ir_attr *rows = ir_attr_find(at, na, "rows");
        if (rows && (rows->kind != IR_ATTR_INT || rows->i < 1 || T % rows->i))
            FAIL("attribute rows: expected a count of rows dividing the %lld tokens", (long long)T);
        out[0] = rows ? ir_type_make(IR_F32, 1, (int64_t[]){rows->i}) : scalar_f32();
        /* dh=0: nothing differentiates (eval_step): a zero scalar instead */
        out[1] = ir_attr_int(at, na, "dh", 1) ? same_dims(&in[0], in[0].dtype) : ir_type_scalar(in[0].dtype);
        /* dw=0: a frozen lm head (LoRA) needs no dW: a zero scalar instead */
        out[2] = ir_attr_int(at, na, "dw", 1) ? same_dims(&in[1], in[1].dtype) : ir_type_scalar(in[1].dtype);
        return 0;
    }
    case IR_OP_embedding_bwd:
        TRY(need_i32(m, &in[0], 0, err, errcap));
        TRY(need_float(m, &in[1], 1, err, errcap));
        TRY(need_attr(at, na, "vocab", IR_ATTR_INT, err, errcap));
        if (in[1].rank != in[0].rank + 1 || memcmp(in[1].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank))
            FAIL("dy %s must be ids %s plus a hidden dim", tstr(m, &in[1], b1), tstr(m, &in[0], b2));
        out[0] = ir_type_make(in[1].dtype, 2, (int64_t[]){ir_attr_int(at, na, "vocab", 0), last_dim(&in[1])});
        return 0;
    case IR_OP_rmsnorm_bwd:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "eps", IR_ATTR_FLOAT, err, errcap));
        if (in[1].rank != 1 || in[1].dims[0] != last_dim(&in[0])) FAIL("operand 1: weight does not match %s", tstr(m, &in[0], b1));
        TRY(need_same(m, &in[0], &in[2], 0, 2, 1, err, errcap));
        out[0] = same_dims(&in[0], in[0].dtype);
        out[1] = same_dims(&in[1], in[1].dtype);
        return 0;
    case IR_OP_bias_grad:
        TRY(need_float(m, &in[0], 0, err, errcap));
        out[0] = ir_type_make(in[0].dtype, 1, (int64_t[]){last_dim(&in[0])});
        return 0;
    case IR_OP_dora_scale_bwd:
        TRY(dora_operands(m, in, at, na, err, errcap));
        TRY(need_same(m, &in[0], &in[4], 0, 4, 1, err, errcap));
        out[0] = same_dims(&in[0], in[0].dtype);
        out[1] = same_dims(&in[0], in[0].dtype);
        out[2] = ir_type_make(IR_F32, 1, (int64_t[]){last_dim(&in[0])});
        return 0;
    case IR_OP_swiglu_bwd:
    case IR_OP_geglu_bwd:
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_same(m, &in[0], &in[1], 0, 1, 1, err, errcap));
        TRY(need_same(m, &in[0], &in[2], 0, 2, 1, err, errcap));
        out[0] = same_dims(&in[0], in[0].dtype);
        out[1] = same_dims(&in[0], in[0].dtype);
        return 0;
    case IR_OP_sumsq:
        TRY(need_float(m, &in[0], 0, err, errcap));
        out[0] = scalar_f32();
        return 0;
    case IR_OP_clip_coef:
        TRY(need_scalar(m, &in[0], 0, err, errcap));
        TRY(need_attr(at, na, "max_norm", IR_ATTR_FLOAT, err, errcap));
        out[0] = scalar_f32();
        return 0;
    case IR_OP_adamw:
        for (int i = 0; i < 4; i++) TRY(need_float(m, &in[i], i, err, errcap));
        TRY(need_same(m, &in[0], &in[1], 0, 1, 0, err, errcap));
        TRY(need_same(m, &in[0], &in[2], 0, 2, 0, err, errcap));
        TRY(need_same(m, &in[0], &in[3], 0, 3, 0, err, errcap));
        for (int i = 4; i < 7; i++) TRY(need_scalar(m, &in[i], i, err, errcap));
        if (nin == 8) TRY(need_beta1(m, &in[7], 7, err, errcap));
        if (!((in[0].dtype == IR_F32 && in[2].dtype == IR_F32 && in[3].dtype == IR_F32) ||
              (in[0].dtype == IR_BF16 && in[2].dtype == IR_BF16 && in[3].dtype == IR_BF16)))
            FAIL("adamw updates f32 weights and moments, or bf16 ones (pure bf16, stochastically rounded); found %s, %s, %s",
                 ir_dtype_name(in[0].dtype), ir_dtype_name(in[2].dtype), ir_dtype_name(in[3].dtype));
        return 0;
    case IR_OP_adamw8: {
        char s1[96], s2[96];
        TRY(need_float(m, &in[0], 0, err, errcap));
        TRY(need_float(m, &in[1], 1, err, errcap));
        TRY(need_same(m, &in[0], &in[1], 0, 1, 0, err, errcap));
        TRY(need_same(m, &in[0], &in[2], 0, 2, 0, err, errcap));
        TRY(need_same(m, &in[0], &in[3], 0, 3, 0, err, errcap));
        for (int i = 6; i < 9; i++) TRY(need_scalar(m, &in[i], i, err, errcap));
        if (nin == 10) TRY(need_beta1(m, &in[9], 9, err, errcap));
        if (in[0].dtype != IR_F32 && in[0].dtype != IR_BF16) FAIL("adamw8 updates f32 or bf16 weights, found %s", tstr(m, &in[0], s1));
        if (in[2].dtype != IR_U8 || in[3].dtype != IR_U8)
            FAIL("adamw8 keeps u8 moments, found %s and %s", tstr(m, &in[2], s1), tstr(m, &in[3], s2));
        if (in[0].rank != 2) FAIL("adamw8 needs a 2-d weight, found %s", tstr(m, &in[0], s1));
        int64_t nb = (in[0].dims[1] + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK;
        for (int i = 4; i < 6; i++) {
            const ir_type *a = &in[i];
            if (a->dtype != IR_F32 || a->rank != 2 || a->dims[0] != in[0].dims[0] || a->dims[1] != nb ||
                a->shard.axis != in[0].shard.axis || a->shard.dim != in[0].shard.dim)
                FAIL("operand %d: expected the block maxima f32[%lld,%lld] split like operand 0, found %s", i,
                     (long long)in[0].dims[0], (long long)nb, tstr(m, a, s1));
        }
        return 0;
    }
    case IR_OP_store:
    case IR_OP_acc:
        TRY(need_same(m, &in[0], &in[1], 0, 1, 0, err, errcap));
        if (is_float(in[0].dtype) != is_float(in[1].dtype)) FAIL("cannot %s %s into %s", ir_ops[op].name, tstr(m, &in[1], b1), tstr(m, &in[0], b2));
        return 0;
    case IR_OP_zero:
        return 0;
    case IR_OP_all_reduce: {
        int ax = mesh_axis_attr(m, at, na, err, errcap);
        if (ax < 0) return -1;
        out[0] = in[0];
        return 0;
    }
    case IR_OP_all_gather: {
        int ax = mesh_axis_attr(m, at, na, err, errcap);
        if (ax < 0) return -1;
        if (in[0].shard.axis != ax) FAIL("all_gather over %s of a tensor not split over it: %s", m->mesh_names[ax], tstr(m, &in[0], b1));
        out[0] = in[0];
        out[0].shard.axis = -1;
        out[0].shard.dim = 0;
        return 0;
    }
    case IR_OP_reduce_scatter: {
        int ax = mesh_axis_attr(m, at, na, err, errcap);
        if (ax < 0) return -1;
        TRY(need_attr(at, na, "dim", IR_ATTR_INT, err, errcap));
        int64_t dim = ir_attr_int(at, na, "dim", 0);
        if (dim < 0 || dim >= in[0].rank) FAIL("dim %lld out of range for %s", (long long)dim, tstr(m, &in[0], b1));
        if (in[0].shard.axis >= 0) FAIL("reduce_scatter of an already split tensor %s", tstr(m, &in[0], b1));
        out[0] = in[0];
        out[0].shard.axis = (int8_t)ax;
        out[0].shard.dim = (int8_t)dim;
        return 0;
    }
    case IR_OP_ring_shift: {
        int ax = mesh_axis_attr(m, at, na, err, errcap);
        if (ax < 0) return -1;
        out[0] = in[0];
        return 0;
    }
    case IR_OP_attention_blk:
    case IR_OP_attention_blk_bwd: {
        const ir_type *q = &in[0], *k = &in[1], *v = &in[2];
        TRY(need_float(m, q, 0, err, errcap));
        TRY(need_attr(at, na, "scale", IR_ATTR_FLOAT, err, errcap));
        TRY(check_window(at, na, err, errcap));
        TRY(check_softcap(at, na, err, errcap));
        if (q->rank != 4 || k->rank != 4) FAIL("q and k must be [batch, seq, heads, head_dim]: %s, %s", tstr(m, q, b1), tstr(m, k, b2));
        TRY(need_same(m, k, v, 1, 2, 1, err, errcap));
        if (k->dims[0] != q->dims[0] || k->dims[3] != q->dims[3] || k->dtype != q->dtype)
            FAIL("k %s does not match q %s in batch, head_dim or dtype", tstr(m, k, b1), tstr(m, q, b2));
        if (k->dims[2] <= 0 || q->dims[2] % k->dims[2])
            FAIL("query heads (%lld) must be a multiple of kv heads (%lld)", (long long)q->dims[2], (long long)k->dims[2]);
        for (int i = 3; i < 7; i++) {
            const ir_type *t = i % 2 ? q : k; /* segq, segk, idxq, idxk */
            TRY(need_i32(m, &in[i], i, err, errcap));
            if (in[i].rank != 2 || in[i].dims[0] != t->dims[0] || in[i].dims[1] != t->dims[1])
                FAIL("operand %d: expected i32[%lld,%lld] (the %s tokens), found %s", i, (long long)t->dims[0],
                     (long long)t->dims[1], i % 2 ? "query" : "key", tstr(m, &in[i], b1));
        }
        ir_type o32 = same_dims(q, IR_F32);
        ir_type lse = ir_type_make(IR_F32, 3, (int64_t[]){q->dims[0], q->dims[2], q->dims[1]});
        if (op == IR_OP_attention_blk) {
            out[0] = o32;
            out[1] = lse;
            return 0;
        }
        TRY(need_same(m, q, &in[7], 0, 7, 0, err, errcap));
        if (!ir_type_equal(&in[8], &lse)) FAIL("operand 8: expected lse %s, found %s", tstr(m, &lse, b1), tstr(m, &in[8], b2));
        TRY(need_same(m, q, &in[9], 0, 9, 0, err, errcap));
        out[0] = o32;
        out[1] = same_dims(k, IR_F32);
        out[2] = same_dims(v, IR_F32);
        return 0;
    }
    case IR_OP_attn_merge:
        if (in[0].rank != 4 || in[0].dtype != IR_F32) FAIL("operand 0: expected f32[batch, seq, heads, head_dim], found %s", tstr(m, &in[0], b1));
        TRY(need_same(m, &in[0], &in[2], 0, 2, 1, err, errcap));
        TRY(need_same(m, &in[1], &in[3], 1, 3, 1, err, errcap));
        if (in[1].rank != 3 || in[1].dtype != IR_F32 || in[1].dims[0] != in[0].dims[0] || in[1].dims[1] != in[0].dims[2] ||
            in[1].dims[2] != in[0].dims[1])
            FAIL("operand 1: expected lse f32[%lld,%lld,%lld], found %s", (long long)in[0].dims[0], (long long)in[0].dims[2],
                 (long long)in[0].dims[1], tstr(m, &in[1], b1));
        out[0] = same_dims(&in[0], IR_F32);
        out[1] = same_dims(&in[1], IR_F32);
        return 0;
    case IR_OP_to_host:
    case IR_OP_to_device:
        /* a copy between memories: same dtype, shape and sharding (a rank
         * copies its block); the placement rules are ir_verify's */
        out[0] = in[0];
        return 0;
    case IR_OP_fused: {
        TRY(need_attr(at, na, "expr", IR_ATTR_STR, err, errcap));
        ir_fexpr fx;
        if (ir_fexpr_parse(ir_attr_str(at, na, "expr", ""), nin, &fx, err, errcap) != 0) return -1;
        int rc = ir_fexpr_infer(m, &fx, in, nin, &out[0], err, errcap);
        ir_fexpr_free(&fx);
        return rc;
    }
    case IR_NOPS:
        break;
    }
    FAIL("no shape rule for op %d", (int)op);
}
