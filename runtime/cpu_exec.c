/* cpu_exec.c — the CPU reference executor: one kernel call per IR node. */
#include "runtime/exec.h"
#include "runtime/cpu_kernels.h"
#include "ir/quant.h"
#include "ir/dpo_loss.h"
#include "runtime/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t rt_local_numel(const ir_module *m, const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i];
        if (t->shard.axis >= 0 && t->shard.dim == i) {
            int64_t k = m->mesh_sizes[t->shard.axis];
            d = (d + k - 1) / k;
        }
        n *= d;
    }
    return n;
}

int rt_buf_alloc(rt_buf *b, ir_type t) {
    b->type = t;
    b->numel = ir_type_numel(&t);
    b->data = calloc((size_t)(b->numel ? b->numel : 1), 4); /* float and int32 are 4 bytes */
    return b->data ? 0 : -1;
}

int rt_buf_alloc_local(const ir_module *m, rt_buf *b, ir_type t) {
    b->type = t;
    b->numel = rt_local_numel(m, &t);
    b->data = calloc((size_t)(b->numel ? b->numel : 1), 4);
    return b->data ? 0 : -1;
}

int64_t rt_block_rows(const ir_type *t, int64_t n) { return t->rank ? (t->dims[0] + n - 1) / n : 1; }

int64_t rt_block_first(const rt_state *st, const ir_type *t) {
    if (t->shard.axis < 0 || !t->rank || !t->dims[0]) return 0;
    int64_t rows = rt_block_rows(t, st->m->mesh_sizes[t->shard.axis]);
    return st->coord[t->shard.axis] * rows * (ir_type_numel(t) / t->dims[0]);
}

void rt_buf_free(rt_buf *b) {
    free(b->data);
    b->data = NULL;
}

int rt_state_init(rt_state *st, const ir_module *m, ax_diag *d) {
    memset(st, 0, sizeof *st); /* no trace, no collectives, coordinates 0 until set */
    st->m = m;
    st->globals = calloc((size_t)m->nglobals + 1, sizeof(rt_buf));
    for (int g = 0; g < m->nglobals; g++) {
        ir_type t = m->globals[g].type;
        if (rt_buf_alloc_local(m, &st->globals[g], t)) {
            ax_error(d, m->globals[g].name, "out of memory (%lld elements)", (long long)ir_type_numel(&t));
            return -1;
        }
    }
    return 0;
}

void rt_state_free(rt_state *st) {
    if (!st->globals) return;
    for (int g = 0; g < st->m->nglobals; g++) rt_buf_free(&st->globals[g]);
    free(st->globals);
    st->globals = NULL;
}

int rt_prog_init(rt_prog *pr, const ir_module *m, const ir_program *p, ax_diag *d) {
    pr->m = m;
    pr->p = p;
    pr->vals = calloc((size_t)p->nvalues + 1, sizeof(rt_buf));
    pr->last = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    pr->freeq = malloc(sizeof(int32_t) * ((size_t)p->nnodes + 1));
    pr->freenext = malloc(sizeof(int32_t) * ((size_t)p->nvalues + 1));
    int64_t maxhd = 2;
    for (int i = 0; i < p->nnodes; i++) pr->freeq[i] = -1;
    for (int i = 0; i < p->nvalues; i++) {
        pr->vals[i].type = p->values[i].type;
        pr->vals[i].numel = rt_local_numel(m, &p->values[i].type);
        pr->last[i] = p->values[i].node; /* unused values die where they are born */
        if (p->nodes[p->values[i].node].op == IR_OP_rope && p->values[i].type.dims[3] > maxhd)
            maxhd = p->values[i].type.dims[3];
    }
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].nin; k++)
            if (!IR_REF_IS_GLOBAL(p->nodes[i].in[k])) pr->last[p->nodes[i].in[k]] = i;
    for (int v = 0; v < p->nvalues; v++) {
        pr->freenext[v] = pr->freeq[pr->last[v]];
        pr->freeq[pr->last[v]] = v;
    }
    pr->inv_freq_scratch = malloc(sizeof(float) * (size_t)maxhd);
    /* fused nodes: their expr parsed once here, not per run or element */
    pr->fx = calloc((size_t)p->nnodes + 1, sizeof *pr->fx);
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        char err[400];
        if (n->op != IR_OP_fused) continue;
        if (ir_fexpr_parse(ir_attr_str(n->attrs, n->nattrs, "expr", NULL), n->nin, &pr->fx[i], err, sizeof err) != 0) {
            char where[96];
            snprintf(where, sizeof where, "%s node %d (fused)", p->name, i);
            ax_error(d, where, "%s", err);
            return -1;
        }
    }
    return 0;
}

static int is_input(const rt_prog *pr, int v) { return pr->p->nodes[pr->p->values[v].node].op == IR_OP_input; }

static void release(rt_prog *pr, int v) {
    if (!is_input(pr, v)) free(pr->vals[v].data);
    pr->vals[v].data = NULL;
}

void rt_prog_free(rt_prog *pr) {
    if (!pr->vals) return;
    for (int i = 0; i < pr->p->nvalues; i++)
        if (pr->vals[i].data) release(pr, i);
    free(pr->vals);
    free(pr->last);
    free(pr->freeq);
    free(pr->freenext);
    free(pr->inv_freq_scratch);
    for (int i = 0; pr->fx && i < pr->p->nnodes; i++) ir_fexpr_free(&pr->fx[i]);
    free(pr->fx);
    pr->vals = NULL;
}

/* ---- per-op execution ------------------------------------------------------ */
typedef struct xc {
    rt_prog *pr;
    rt_state *st;
    const ir_node *n;
    rt_input_fn inputs;
    void *ctx;
    ax_diag *d;
    char where[160];
} xc;

static rt_buf *ref(xc *x, int32_t r) {
    return IR_REF_IS_GLOBAL(r) ? &x->st->globals[IR_REF_GLOBAL(r)] : &x->pr->vals[r];
}
#define IN(i) ref(x, x->n->in[i])
#define OUT(i) (&x->pr->vals[x->n->out[i]])
#define AI(k, dflt) ir_attr_int(x->n->attrs, x->n->nattrs, k, dflt)
#define AF(k, dflt) ir_attr_float(x->n->attrs, x->n->nattrs, k, dflt)
#define AS(k, dflt) ir_attr_str(x->n->attrs, x->n->nattrs, k, dflt)

static int64_t lead(const rt_buf *b) { return b->type.rank ? b->numel / b->type.dims[b->type.rank - 1] : 1; }
static int64_t last(const rt_buf *b) { return b->type.rank ? b->type.dims[b->type.rank - 1] : 1; }

static void round_if_bf16(rt_buf *b) {
    if (b->type.dtype == IR_BF16) ck_round_bf16_inplace_f32(rt_f(b), b->numel);
}

static int bad_index(xc *x, const char *what, int64_t t, const rt_buf *ids, int64_t limit) {
    ax_error(x->d, x->where, "%s[%lld] = %d is outside [0, %lld)", what, (long long)t, rt_i(ids)[t], (long long)limit);
    return -1;
}

static int x_input(xc *x) {
    const char *name = AS("name", "");
    const rt_buf *b = x->inputs ? x->inputs(x->ctx, name) : NULL;
    rt_buf *o = OUT(0);
    if (!b) {
        ax_error(x->d, x->where, "the runtime provides no input named \"%s\"", name);
        return -1;
    }
    if (b->numel != ir_type_numel(&o->type) || (b->type.dtype == IR_I32) != (o->type.dtype == IR_I32)) {
        char s1[96], s2[96];
        ax_error(x->d, x->where, "input \"%s\": expected %s, the runtime gave %s", name,
                 ir_type_str(x->pr->m, &o->type, s1, sizeof s1), ir_type_str(x->pr->m, &b->type, s2, sizeof s2));
        return -1;
    }
    ir_type t = o->type;
    *o = *b;
    o->type = t;
    return 0;
}

static int x_fill(xc *x) {
    rt_buf *o = OUT(0);
    float v = (float)AF("value", 0);
    if (o->type.dtype == IR_I32)
        for (int64_t i = 0; i < o->numel; i++) rt_i(o)[i] = (int32_t)v;
    else
        for (int64_t i = 0; i < o->numel; i++) rt_f(o)[i] = v;
    round_if_bf16(o);
    return 0;
}

static int x_embedding(xc *x) {
    rt_buf *t = IN(0), *ids = IN(1), *o = OUT(0);
    int64_t bad = ck_embedding_fwd_f32(rt_f(t), rt_i(ids), rt_f(o), ids->numel, t->type.dims[0], t->type.dims[1]);
    return bad >= 0 ? bad_index(x, "token id", bad, ids, t->type.dims[0]) : 0;
}

static int x_embedding_bwd(xc *x) {
    rt_buf *ids = IN(0), *dy = IN(1), *o = OUT(0);
    memset(o->data, 0, (size_t)o->numel * 4);
    int64_t bad = ck_embedding_bwd_f32(rt_i(ids), rt_f(dy), rt_f(o), ids->numel, o->type.dims[0], o->type.dims[1]);
    if (bad >= 0) return bad_index(x, "token id", bad, ids, o->type.dims[0]);
    round_if_bf16(o);
    return 0;
}

static int x_rmsnorm(xc *x) {
    rt_buf *a = IN(0), *o = OUT(0);
    ck_rmsnorm_fwd_f32(rt_f(a), rt_f(IN(1)), rt_f(o), lead(a), last(a), AF("eps", 1e-6), AF("offset", 0));
    round_if_bf16(o);
    return 0;
}

static int x_rmsnorm_bwd(xc *x) {
    rt_buf *a = IN(0), *dw = OUT(1);
    memset(dw->data, 0, (size_t)dw->numel * 4);
    ck_rmsnorm_bwd_f32(rt_f(a), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), rt_f(dw), lead(a), last(a), AF("eps", 1e-6),
                       AF("offset", 0));
    round_if_bf16(OUT(0));
    round_if_bf16(dw);
    return 0;
}

static int x_matmul(xc *x) {
    rt_buf *a = IN(0), *b = IN(1), *o = OUT(0);
    int ta = (int)AI("ta", 0), tb = (int)AI("tb", 0);
    int64_t K = ta ? lead(a) : last(a), M = ta ? last(a) : lead(a), N = tb ? lead(b) : last(b);
    ck_matmul_f32(rt_f(a), rt_f(b), rt_f(o), M, N, K, ta, tb, 0);
    round_if_bf16(o);
    return 0;
}

static int x_bias_add(xc *x) {
    rt_buf *a = IN(0), *o = OUT(0);
    ck_bias_add_fwd_f32(rt_f(a), rt_f(IN(1)), rt_f(o), lead(a), last(a));
    round_if_bf16(o);
    return 0;
}

static int x_bias_grad(xc *x) {
    rt_buf *a = IN(0), *o = OUT(0);
    memset(o->data, 0, (size_t)o->numel * 4);
    ck_bias_add_bwd_f32(rt_f(a), rt_f(o), lead(a), last(a));
    round_if_bf16(o);
    return 0;
}

static int x_add(xc *x) {
    ck_add_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(OUT(0)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    return 0;
}

static int x_mul(xc *x) {
    ck_mul_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(OUT(0)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    return 0;
}

static int x_scale(xc *x) {
    ck_scale_f32(rt_f(IN(0)), AF("alpha", 1), rt_f(OUT(0)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    return 0;
}

/* torch's sigmoid: 1 / (1 + exp(-x)) in float (a bf16 input widened, the result rounded once) */
static int x_sigmoid(xc *x) {
    const float *in = rt_f(IN(0));
    float *y = rt_f(OUT(0));
    for (int64_t i = 0; i < OUT(0)->numel; i++) y[i] = 1.0f / (1.0f + expf(-in[i]));
    round_if_bf16(OUT(0));
    return 0;
}

/* torch's sigmoid_backward: (dy (1 - y)) y in float, rounded once */
static int x_sigmoid_bwd(xc *x) {
    const float *yv = rt_f(IN(0)), *dy = rt_f(IN(1));
    float *dx = rt_f(OUT(0));
    for (int64_t i = 0; i < OUT(0)->numel; i++) dx[i] = (dy[i] * (1.0f - yv[i])) * yv[i];
    round_if_bf16(OUT(0));
    return 0;
}

static int x_convert(xc *x) {
    memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
    round_if_bf16(OUT(0));
    return 0;
}

static int x_dropout(xc *x) {
    ck_dropout_f32(rt_f(IN(0)), rt_f(OUT(0)), OUT(0)->numel, (uint32_t)rt_i(IN(1))[0], (uint32_t)AI("salt", 0),
                   AF("p", 0));
    round_if_bf16(OUT(0));
    return 0;
}

/* unfrozen_parameters' row ranges: the rows outside `rows` zeroed (values
 * are f32 here whatever their dtype, so zero rows are exact). */
static int x_mask_rows(xc *x) {
    rt_buf *in = IN(0), *o = OUT(0);
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const int64_t R = o->type.dims[0], row = R ? o->numel / R : 0;
    float *y = rt_f(o);
    if (y != rt_f(in)) memmove(y, rt_f(in), (size_t)o->numel * 4);
    int64_t from = 0; /* the rows before each kept pair, then those after the last */
    for (int i = 0; i <= r->n; i += 2) {
        const int64_t to = i < r->n ? r->ints[i] : R;
        if (to > from) memset(y + from * row, 0, (size_t)((to - from) * row) * 4);
        if (i < r->n) from = r->ints[i + 1];
    }
    return 0;
}

/* trainable tokens: the table's copy with rows `rows` from src (values are f32 here, src already in the table's
 * dtype); take_rows: those rows of x, in that order */
static int x_index_copy(xc *x) {
    rt_buf *t = IN(0), *src = IN(1), *o = OUT(0);
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const int64_t H = o->type.dims[1];
    float *y = rt_f(o);
    if (y != rt_f(t)) memmove(y, rt_f(t), (size_t)o->numel * 4);
    for (int i = 0; i < r->n; i++) memcpy(y + r->ints[i] * H, rt_f(src) + (int64_t)i * H, (size_t)H * 4);
    return 0;
}

static int x_take_rows(xc *x) {
    rt_buf *in = IN(0), *o = OUT(0);
    const ir_attr *r = ir_attr_find(x->n->attrs, x->n->nattrs, "rows");
    const int64_t H = o->type.dims[1];
    for (int i = 0; i < r->n; i++) memcpy(rt_f(o) + (int64_t)i * H, rt_f(in) + r->ints[i] * H, (size_t)H * 4);
    return 0;
}

static int x_neftune(xc *x) {
    rt_buf *in = IN(0), *o = OUT(0);
    int64_t H = in->type.rank ? in->type.dims[in->type.rank - 1] : 1, rows = H ? o->numel / H : 0;
    const float mag = x->n->nin > 2 ? rt_f(IN(2))[0] : (float)AF("mag", 0); /* the micro step's, else the attr's */
    ck_neftune_f32(rt_f(in), rt_f(o), rt_i(IN(1)), rows, H, (uint32_t)AI("salt", 0), mag);
    round_if_bf16(o);
    return 0;
}

static int x_dora_norm(xc *x) {
    rt_buf *w = IN(0), *b = IN(1), *o = OUT(0);
    int64_t N = w->type.dims[0], K = w->type.dims[1], r = b->type.dims[1];
    ck_dora_norm_f32(rt_f(w), rt_f(b), rt_f(IN(2)), rt_f(o), N, K, r, (float)AF("scaling", 1));
    return 0;
}

static int x_dora_scale(xc *x) {
    rt_buf *base = IN(0), *o = OUT(0);
    ck_dora_scale_f32(rt_f(base), rt_f(IN(1)), rt_f(IN(2)), rt_f(IN(3)), rt_f(o), lead(base), last(base),
                      (float)AF("scaling", 1));
    round_if_bf16(o);
    return 0;
}

static int x_dora_scale_bwd(xc *x) {
    rt_buf *base = IN(0);
    ck_dora_scale_bwd_f32(rt_f(base), rt_f(IN(1)), rt_f(IN(2)), rt_f(IN(3)), rt_f(IN(4)), rt_f(OUT(0)), rt_f(OUT(1)),
                          rt_f(OUT(2)), lead(base), last(base), (float)AF("scaling", 1));
    round_if_bf16(OUT(0));
    round_if_bf16(OUT(1));
    return 0;
}

static int x_dequant_nf4(xc *x) {
    rt_buf *q = IN(0), *o = OUT(0);
    int64_t K = q->type.dims[q->type.rank - 1], N = K ? q->numel / K : 0;
    ck_dequant_nf4_f32(rt_f(q), rt_f(IN(1)), rt_f(IN(2)), rt_f(o), N, K);
    round_if_bf16(o);
    return 0;
}

static int x_reshape(xc *x) {
    memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
    return 0;
}

/* slice: columns [begin, begin + len) of each row of x; slice_bwd: dy back at those columns of a zero row of
 * width (values are copied, so a bf16 tensor stays bf16-exact) */
static int x_slice(xc *x) {
    rt_buf *in = IN(0), *o = OUT(0);
    const int64_t W = in->type.dims[in->type.rank - 1], len = o->type.dims[o->type.rank - 1], b = AI("begin", 0);
    const int64_t rows = len ? o->numel / len : 0;
    for (int64_t r = 0; r < rows; r++) memcpy(rt_f(o) + r * len, rt_f(in) + r * W + b, sizeof(float) * (size_t)len);
    return 0;
}

static int x_slice_bwd(xc *x) {
    rt_buf *dy = IN(0), *o = OUT(0);
    const int64_t len = dy->type.dims[dy->type.rank - 1], W = o->type.dims[o->type.rank - 1], b = AI("begin", 0);
    const int64_t rows = len ? dy->numel / len : 0;
    memset(rt_f(o), 0, sizeof(float) * (size_t)o->numel);
    for (int64_t r = 0; r < rows; r++) memcpy(rt_f(o) + r * W + b, rt_f(dy) + r * len, sizeof(float) * (size_t)len);
    return 0;
}

int rt_rope_inv_freq(const ir_node *n, int64_t head_dim, int long_regime, float *inv, int64_t *nrot, float *mscale,
                     ax_diag *d, const char *where) {
    const ir_attr *at = n->attrs;
    const int na = n->nattrs;
    const char *name = ir_attr_str(at, na, "rope_type", "default");
    const ir_attr *ext = ir_attr_find(at, na, long_regime ? "long_factor" : "short_factor");
    ck_rope r = {.type = ck_rope_type_from_name(name),
                 .dim = ir_attr_int(at, na, "rotary_dim", head_dim),
                 .theta = ir_attr_float(at, na, "theta", 10000),
                 .factor = ir_attr_float(at, na, "factor", 1),
                 .low_freq_factor = ir_attr_float(at, na, "low_freq_factor", 1),
                 .high_freq_factor = ir_attr_float(at, na, "high_freq_factor", 4),
                 .original_max = (double)ir_attr_int(at, na, "original_max", 8192),
                 .beta_fast = ir_attr_float(at, na, "beta_fast", 32),
                 .beta_slow = ir_attr_float(at, na, "beta_slow", 1),
                 .truncate = (int)ir_attr_int(at, na, "truncate", 1),
                 .n_ext = ext && ext->kind == IR_ATTR_FLOATS ? ext->n : 0,
                 .ext = ext && ext->kind == IR_ATTR_FLOATS ? ext->floats : NULL};
    if (r.dim <= 0 || r.dim % 2 || r.dim > head_dim || ck_rope_inv_freq(&r, inv) != 0) {
        ax_error(d, where, "unsupported rope scaling \"%s\" or parameters", name);
        return -1;
    }
    *nrot = r.dim / 2;
    *mscale = (float)ir_attr_float(at, na, "attention_factor", 1);
    return 0;
}

static int x_rope(xc *x) {
    rt_buf *a = IN(0), *pos = IN(1), *o = OUT(0);
    const int64_t *dm = a->type.dims;
    /* longrope's regime: the long factors when the micro-batch reaches beyond original_max (HF's
     * longrope_frequency_update: max(position_ids) + 1 > original_max_position_embeddings) */
    const int lng = x->n->nin > 2 && (int64_t)rt_i(IN(2))[0] + 1 > AI("original_max", 8192);
    int64_t nrot;
    float mscale;
    if (rt_rope_inv_freq(x->n, dm[3], lng, x->pr->inv_freq_scratch, &nrot, &mscale, x->d, x->where) != 0) return -1;
    ck_rope_fwd_f32(rt_f(a), rt_i(pos), x->pr->inv_freq_scratch, rt_f(o), dm[0], dm[1], dm[2], dm[3], nrot, mscale,
                    (int)AI("inverse", 0), AF("qscale_beta", 0), AI("qscale_max", 0), (int)AI("interleave", 0));
    round_if_bf16(o);
    return 0;
}

static int x_attention(xc *x) {
    rt_buf *q = IN(0), *k = IN(1);
    const int64_t *dm = q->type.dims;
    ck_attention_fwd_f32(rt_f(q), rt_f(k), rt_f(IN(2)), rt_i(IN(3)), rt_f(OUT(0)), rt_f(OUT(1)), dm[0], dm[1], dm[2],
                         k->type.dims[2], dm[3], AF("scale", 1), (int)AI("causal", 1), AI("window", 0), AF("softcap", 0));
    if (x->n->nin == 5) ck_attn_sink_fwd_f32(rt_f(OUT(0)), rt_f(OUT(1)), rt_f(IN(4)), dm[0], dm[1], dm[2], dm[3]);
    round_if_bf16(OUT(0));
    return 0;
}

/* attention sinks (gpt-oss): seqpar's ring applies them to the merged blocks; their gradient */
static int x_attn_sink(xc *x) {
    rt_buf *o = IN(0);
    const int64_t *dm = o->type.dims;
    memcpy(rt_f(OUT(0)), rt_f(o), sizeof(float) * (size_t)o->numel);
    memcpy(rt_f(OUT(1)), rt_f(IN(1)), sizeof(float) * (size_t)(dm[0] * dm[1] * dm[2]));
    ck_attn_sink_fwd_f32(rt_f(OUT(0)), rt_f(OUT(1)), rt_f(IN(2)), dm[0], dm[1], dm[2], dm[3]);
    round_if_bf16(OUT(0));
    return 0;
}
static int x_attn_sink_bwd(xc *x) {
    const int64_t *dm = IN(1)->type.dims;
    ck_attn_sink_bwd_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(IN(3)), rt_f(OUT(0)), dm[0], dm[1], dm[2], dm[3]);
    round_if_bf16(OUT(0));
    return 0;
}

static int x_attention_bwd(xc *x) {
    rt_buf *q = IN(0), *k = IN(1);
    const int64_t *dm = q->type.dims;
    ck_attention_bwd_f32(rt_f(q), rt_f(k), rt_f(IN(2)), rt_i(IN(3)), rt_f(IN(4)), rt_f(IN(5)), rt_f(IN(6)),
                         rt_f(OUT(0)), rt_f(OUT(1)), rt_f(OUT(2)), dm[0], dm[1], dm[2], k->type.dims[2], dm[3],
                         AF("scale", 1), (int)AI("causal", 1), AI("window", 0), AF("softcap", 0));
    for (int i = 0; i < 3; i++) round_if_bf16(OUT(i));
    return 0;
}

/* mixture of experts: the kernels' f32 results rounded to the values' dtypes */
static int x_moe_route(xc *x) {
    rt_buf *l = IN(0);
    const int64_t E = last(l), k = AI("k", 1);
    ck_moe_route_f32(rt_f(l), rt_f(OUT(0)), rt_i(OUT(1)), lead(l), E, k, (int)AI("norm", 0));
    round_if_bf16(OUT(0));
    return 0;
}
static int x_moe_route_bwd(xc *x) {
    rt_buf *l = IN(0);
    ck_moe_route_bwd_f32(rt_f(l), rt_i(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), lead(l), last(l), AI("k", 1), (int)AI("norm", 0));
    round_if_bf16(OUT(0));
    return 0;
}
static int x_moe_ffn(xc *x) {
    rt_buf *xx = IN(0), *wgu = IN(3);
    const int64_t H = last(xx), E = wgu->type.dims[0], I = wgu->type.dims[1] / 2, k = last(IN(1));
    ck_moe_ffn_fwd_f32(rt_f(xx), rt_i(IN(1)), rt_f(IN(2)), rt_f(wgu), rt_f(IN(4)), rt_f(OUT(0)), rt_f(OUT(1)), lead(xx), H, I,
                       E, k);
    round_if_bf16(OUT(0));
    round_if_bf16(OUT(1));
    return 0;
}
static int x_moe_ffn_bwd(xc *x) {
    rt_buf *xx = IN(0), *wgu = IN(3);
    const int64_t H = last(xx), E = wgu->type.dims[0], I = wgu->type.dims[1] / 2, k = last(IN(1));
    ck_moe_ffn_bwd_f32(rt_f(xx), rt_i(IN(1)), rt_f(IN(2)), rt_f(wgu), rt_f(IN(4)), rt_f(IN(5)), rt_f(IN(6)), rt_f(OUT(0)),
                       rt_f(OUT(1)), rt_f(OUT(2)), rt_f(OUT(3)), lead(xx), H, I, E, k);
    for (int i = 0; i < 4; i++) round_if_bf16(OUT(i));
    return 0;
}

/* gpt-oss's experts */
static int x_moe_ffn_oss(xc *x) {
    rt_buf *xx = IN(0), *wgu = IN(3);
    const int64_t H = last(xx), E = wgu->type.dims[0], I = wgu->type.dims[2] / 2, k = last(IN(1));
    ck_moe_oss_fwd_f32(rt_f(xx), rt_i(IN(1)), rt_f(IN(2)), rt_f(wgu), rt_f(IN(4)), rt_f(IN(5)), rt_f(IN(6)), rt_f(OUT(0)),
                       rt_f(OUT(1)), lead(xx), H, I, E, k, AF("alpha", 1.702), AF("limit", 7));
    round_if_bf16(OUT(0));
    round_if_bf16(OUT(1));
    return 0;
}
static int x_moe_ffn_oss_bwd(xc *x) {
    rt_buf *xx = IN(0), *wgu = IN(3);
    const int64_t H = last(xx), E = wgu->type.dims[0], I = wgu->type.dims[2] / 2, k = last(IN(1));
    ck_moe_oss_bwd_f32(rt_f(xx), rt_i(IN(1)), rt_f(IN(2)), rt_f(wgu), rt_f(IN(4)), rt_f(IN(5)), rt_f(IN(6)), rt_f(IN(7)),
                       rt_f(IN(8)), rt_f(OUT(0)), rt_f(OUT(1)), rt_f(OUT(2)), rt_f(OUT(3)), rt_f(OUT(4)), rt_f(OUT(5)),
                       lead(xx), H, I, E, k, AF("alpha", 1.702), AF("limit", 7));
    for (int i = 0; i < 6; i++) round_if_bf16(OUT(i));
    return 0;
}

/* the router's load-balancing loss */
static int x_moe_lb_stats(xc *x) {
    rt_buf *l = IN(0);
    ck_moe_lb_stats_f32(rt_f(l), rt_i(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), lead(l), last(l), last(IN(1)));
    return 0;
}
static int x_moe_lb_stats_bwd(xc *x) {
    rt_buf *l = IN(0);
    ck_moe_lb_stats_bwd_f32(rt_f(l), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), lead(l), last(l));
    round_if_bf16(OUT(0));
    return 0;
}
static int x_moe_lb_loss(xc *x) {
    const int64_t n = IN(0)->numel, E = (n - 1) / 2;
    double *st = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) st[i] = rt_f(IN(0))[i];
    rt_f(OUT(0))[0] = (float)ck_moe_lb_loss(st, E);
    free(st);
    return 0;
}
static int x_moe_lb_loss_bwd(xc *x) {
    const int64_t n = IN(0)->numel, E = (n - 1) / 2;
    double *st = malloc(sizeof(double) * (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) st[i] = rt_f(IN(0))[i];
    ck_moe_lb_loss_bwd(st, rt_f(IN(1))[0], st + n, E);
    for (int64_t i = 0; i < n; i++) rt_f(OUT(0))[i] = (float)st[n + i];
    free(st);
    return 0;
}

/* PEFT's ParamWrapper LoRA: w + scale B_e A_e, E experts when w is [E, O, I] */
static void lora_dims(const rt_buf *w, const rt_buf *a, int64_t *E, int64_t *O, int64_t *I, int64_t *r) {
    const int rk = w->type.rank;
    *E = rk == 3 ? w->type.dims[0] : 1, *O = w->type.dims[rk - 2], *I = w->type.dims[rk - 1];
    *r = a->type.dims[0] / *E;
}
static int x_lora_delta(xc *x) {
    int64_t E, O, I, r;
    lora_dims(IN(0), IN(1), &E, &O, &I, &r);
    if (AI("t", 0)) /* [E, In, Out]: O is In, I is Out here */
        ck_lora_delta_t_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), E, O, I, r, AF("scale", 1));
    else
        ck_lora_delta_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), E, O, I, r, AF("scale", 1));
    round_if_bf16(OUT(0));
    return 0;
}
static int x_lora_delta_bwd(xc *x) {
    int64_t E, O, I, r;
    lora_dims(IN(2), IN(0), &E, &O, &I, &r);
    if (AI("t", 0))
        ck_lora_delta_t_bwd_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), rt_f(OUT(1)), E, O, I, r, AF("scale", 1));
    else
        ck_lora_delta_bwd_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), rt_f(OUT(1)), E, O, I, r, AF("scale", 1));
    round_if_bf16(OUT(0));
    round_if_bf16(OUT(1));
    return 0;
}

/* swiglu and geglu, forward and backward: the kernel's f32 result rounded to the values' dtype */
static int glu_fwd(xc *x, void (*k)(const float *, const float *, float *, int64_t)) {
    k(rt_f(IN(0)), rt_f(IN(1)), rt_f(OUT(0)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    return 0;
}
static int glu_bwd(xc *x, void (*k)(const float *, const float *, const float *, float *, float *, int64_t)) {
    k(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(OUT(0)), rt_f(OUT(1)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    round_if_bf16(OUT(1));
    return 0;
}
static int x_swiglu(xc *x) { return glu_fwd(x, ck_swiglu_fwd_f32); }
static int x_swiglu_bwd(xc *x) { return glu_bwd(x, ck_swiglu_bwd_f32); }
static int x_geglu(xc *x) { return glu_fwd(x, ck_geglu_fwd_f32); }
static int x_geglu_bwd(xc *x) { return glu_bwd(x, ck_geglu_bwd_f32); }

static int x_cross_entropy(xc *x) {
    rt_buf *l = IN(0), *t = IN(1);
    double sum = 0;
    int64_t cnt = 0;
    int64_t bad = ck_cross_entropy_fwd_f32(rt_f(l), rt_i(t), lead(l), last(l), (int32_t)AI("ignore_index", -100),
                                           AF("softcap", 0), &sum, &cnt);
    if (bad >= 0) return bad_index(x, "target", bad, t, last(l));
    rt_f(OUT(0))[0] = (float)sum;
    return 0;
}

static int x_cross_entropy_bwd(xc *x) {
    rt_buf *l = IN(0), *t = IN(1);
    int64_t bad = ck_cross_entropy_bwd_f32(rt_f(l), rt_i(t), lead(l), last(l), (int32_t)AI("ignore_index", -100),
                                           AF("softcap", 0), (double)rt_f(IN(2))[0], rt_f(OUT(0)));
    if (bad >= 0) return bad_index(x, "target", bad, t, last(l));
    round_if_bf16(OUT(0));
    return 0;
}

static int x_linear_cross_entropy(xc *x) {
    rt_buf *h = IN(0), *w = IN(1), *t = IN(2), *ds = IN(3), *dh = OUT(1), *dw = OUT(2), *lo = OUT(0);
    double sum = 0;
    int64_t cnt = 0;
    memset(rt_f(dw), 0, sizeof(float) * (size_t)dw->numel); /* the kernel accumulates dW */
    memset(rt_f(dh), 0, sizeof(float) * (size_t)dh->numel);
    /* a scalar scale, or one per run of tokens (per-row: dpo_loss's coef); the loss whole or per row */
    double *scales = malloc(sizeof(double) * (size_t)ds->numel);
    double *rows = lo->type.rank ? malloc(sizeof(double) * (size_t)lo->numel) : NULL;
    if (!scales || (lo->type.rank && !rows)) abort();
    for (int64_t k = 0; k < ds->numel; k++) scales[k] = (double)rt_f(ds)[k];
    int64_t bad = ck_linear_cross_entropy_rows_f32(rt_f(h), rt_f(w), rt_i(t), lead(h), last(h), lead(w),
                                                   (int32_t)AI("ignore_index", -100), scales, ds->numel, AI("chunk", 0),
                                                   h->type.dtype == IR_BF16, rows, lo->numel, AF("softcap", 0), &sum, &cnt,
                                                   AI("dh", 1) ? rt_f(dh) : NULL, AI("dw", 1) ? rt_f(dw) : NULL);
    free(scales);
    if (bad >= 0) {
        free(rows);
        return bad_index(x, "target", bad, t, lead(w));
    }
    if (rows)
        for (int64_t k = 0; k < lo->numel; k++) rt_f(lo)[k] = (float)rows[k];
    else
        rt_f(lo)[0] = (float)sum;
    free(rows);
    return 0;
}

static int x_dpo_loss(xc *x) {
    rt_buf *s = IN(0);
    int t[AXO_DPO_MAXTERMS];
    double w[AXO_DPO_MAXTERMS];
    int nt = axo_dpo_parse(AS("loss_type", "sigmoid"), AS("loss_weights", NULL), t, w);
    if (nt < 0) { /* the verifier refuses it: a plan that skipped it */
        ax_error(x->d, x->where, "dpo_loss: bad loss_type \"%s\"", AS("loss_type", "sigmoid"));
        return -1;
    }
    ck_dpo_loss_f32(rt_f(s), rt_f(IN(1)), rt_f(IN(2)), x->n->nin > 3 ? rt_f(IN(3)) : NULL, s->numel / 2, t, w, nt,
                    AF("beta", 0.1), AF("label_smoothing", 0), AF("discopop_tau", 0.05), AF("gamma", 0), rt_f(OUT(0)),
                    rt_f(OUT(1)));
    return 0;
}

static int x_sumsq(xc *x) {
    rt_f(OUT(0))[0] = (float)ck_sumsq_f32(rt_f(IN(0)), IN(0)->numel);
    return 0;
}

static int x_clip_coef(xc *x) {
    double norm = sqrt((double)rt_f(IN(0))[0]), mx = AF("max_norm", 1.0);
    double c = mx / (norm + 1e-6);
    rt_f(OUT(0))[0] = (float)(c < 1.0 ? c : 1.0);
    return 0;
}

/* The optimizer's elementwise work (AdamW is ~28 bytes of memory traffic
 * per element: on the host under CPU offload it is the step's critical
 * path) in chunks over the threads (cpu_kernels.h "Threads"). Every element
 * is updated by itself (AdamW; the stochastic rounding keyed on the
 * element's index), and adamw8's quantization blocks never cross a row, so
 * chunks of whole rows give the same bits as one call. */
enum { PAR_CHUNK = 1 << 16 };

static int64_t par_chunks(int64_t n, int64_t unit) { /* chunks of >= PAR_CHUNK elements, whole units */
    int64_t per = (PAR_CHUNK + unit - 1) / unit * unit;
    return n <= per || ck_threads() <= 1 ? 1 : (n + per - 1) / per;
}

/* The step's beta1: the optional last operand (three floats whose sum is
 * exactly the double torch holds, ir/quant.h axo_beta1_split; a
 * schedule that cycles it, one_cycle), else attr beta1. */
static double adam_beta1(xc *x, int k) {
    if (x->n->nin <= k) return AF("beta1", 0.9);
    return axo_beta1_join(rt_f(IN(k)));
}

/* lr: the scheduled lr (a f32 input) times the node's lr_scale (LoRA+;
 * absent: 1, and x * 1.0 is x), in double as a torch param group's lr */
static int x_adamw(xc *x) {
    rt_buf *p = IN(0);
    double lr = (double)rt_f(IN(4))[0] * AF("lr_scale", 1.0), gs = (double)rt_f(IN(6))[0];
    int64_t step = (int64_t)rt_f(IN(5))[0], n = p->numel, nc = par_chunks(n, 1);
    double b1 = adam_beta1(x, 7), b2 = AF("beta2", 0.999), eps = AF("eps", 1e-8), wd = AF("weight_decay", 0);
    int sr = p->type.dtype == IR_BF16; /* pure bf16: stochastic rounding keyed on the whole tensor's index */
    uint32_t salt = (uint32_t)AI("salt", 0);
    int64_t first = sr ? rt_block_first(x->st, &p->type) : 0;
    float *pp = rt_f(p), *g = rt_f(IN(1)), *m = rt_f(IN(2)), *v = rt_f(IN(3));
#pragma omp parallel for schedule(static) if (nc > 1)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = n * c / nc, hi = n * (c + 1) / nc;
        if (sr)
            ck_adamw_step_sr_bf16(pp + lo, g + lo, m + lo, v + lo, hi - lo, lr, b1, b2, eps, wd, step, gs, salt, first + lo);
        else
            ck_adamw_step_f32(pp + lo, g + lo, m + lo, v + lo, hi - lo, lr, b1, b2, eps, wd, step, gs);
    }
    return 0;
}

static int x_adamw8(xc *x) {
    rt_buf *p = IN(0);
    int64_t rows = lead(p), K = last(p), nc = par_chunks(rows * K, K), nb = (K + AXO_Q8_BLOCK - 1) / AXO_Q8_BLOCK;
    double lr = (double)rt_f(IN(6))[0] * AF("lr_scale", 1.0), gs = (double)rt_f(IN(8))[0];
    double b1 = adam_beta1(x, 9), b2 = AF("beta2", 0.999), eps = AF("eps", 1e-8), wd = AF("weight_decay", 0);
    int64_t step = (int64_t)rt_f(IN(7))[0], first = rt_block_first(x->st, &p->type);
    int sr = p->type.dtype == IR_BF16;
    uint32_t salt = (uint32_t)AI("salt", 0);
    float *pp = rt_f(p), *g = rt_f(IN(1)), *qm = rt_f(IN(2)), *qv = rt_f(IN(3)), *am = rt_f(IN(4)), *av = rt_f(IN(5));
#pragma omp parallel for schedule(static) if (nc > 1)
    for (int64_t c = 0; c < nc; c++) {
        int64_t r0 = rows * c / nc, r1 = rows * (c + 1) / nc, o = r0 * K;
        ck_adamw8_step(pp + o, g + o, qm + o, qv + o, am + r0 * nb, av + r0 * nb, r1 - r0, K, lr, b1, b2, eps, wd, step, gs,
                       sr, salt, first + o);
    }
    return 0;
}

static int x_store(xc *x) {
    rt_buf *dst = IN(0);
    memcpy(dst->data, IN(1)->data, (size_t)dst->numel * 4);
    round_if_bf16(dst);
    return 0;
}

static int x_acc(xc *x) {
    rt_buf *dst = IN(0);
    ck_acc_f32(rt_f(dst), rt_f(IN(1)), dst->numel);
    round_if_bf16(dst);
    return 0;
}

static int x_zero(xc *x) {
    memset(IN(0)->data, 0, (size_t)IN(0)->numel * 4);
    return 0;
}

/* Collectives. A block is ceil(d0/N) rows of the tensor's dim 0; the
 * last rank's block is zero-padded past d0. */
static int axis_of(xc *x, int64_t *n) {
    int ax = ir_mesh_find(x->pr->m, AS("axis", ""));
    *n = ax >= 0 ? x->pr->m->mesh_sizes[ax] : 0;
    if (ax < 0) ax_error(x->d, x->where, "unknown mesh axis \"%s\"", AS("axis", ""));
    else if (*n > 1 && !x->st->coll) ax_error(x->d, x->where, "mesh axis %s has %lld ranks but no communicator is attached",
                                          AS("axis", ""), (long long)*n);
    return ax < 0 || (*n > 1 && !x->st->coll) ? -1 : ax;
}

static int coll_fail(xc *x, int rc) {
    if (rc) ax_error(x->d, x->where, "collective failed (a peer rank failed or timed out)");
    return rc ? -1 : 0;
}

static int x_all_reduce(xc *x) {
    int64_t n;
    int ax = axis_of(x, &n);
    if (ax < 0) return -1;
    memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
    if (n == 1) return 0;
    int rc = x->st->coll->all_reduce(x->st->coll->ctx, ax, rt_f(OUT(0)), OUT(0)->numel);
    round_if_bf16(OUT(0));
    return coll_fail(x, rc);
}

static int x_all_gather(xc *x) {
    int64_t n;
    int ax = axis_of(x, &n);
    if (ax < 0) return -1;
    rt_buf *in = IN(0), *out = OUT(0);
    if (n == 1) {
        memcpy(out->data, in->data, (size_t)out->numel * 4);
        return 0;
    }
    float *tmp = malloc((size_t)(in->numel * n) * 4);
    int rc = x->st->coll->all_gather(x->st->coll->ctx, ax, rt_f(in), tmp, in->numel);
    if (!rc) memcpy(out->data, tmp, (size_t)out->numel * 4); /* drop the padding rows */
    free(tmp);
    return coll_fail(x, rc);
}

static int x_reduce_scatter(xc *x) {
    int64_t n;
    int ax = axis_of(x, &n);
    if (ax < 0) return -1;
    rt_buf *in = IN(0), *out = OUT(0);
    if (n == 1) {
        memcpy(out->data, in->data, (size_t)out->numel * 4);
        round_if_bf16(out);
        return 0;
    }
    float *tmp = calloc((size_t)(out->numel * n), 4); /* zero padding rows */
    memcpy(tmp, in->data, (size_t)in->numel * 4);
    int rc = x->st->coll->reduce_scatter(x->st->coll->ctx, ax, tmp, rt_f(out), out->numel);
    free(tmp);
    round_if_bf16(out);
    return coll_fail(x, rc);
}

static int x_ring_shift(xc *x) {
    int64_t n;
    int ax = axis_of(x, &n);
    if (ax < 0) return -1;
    if (n == 1) {
        memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
        return 0;
    }
    return coll_fail(x, x->st->coll->ring_shift(x->st->coll->ctx, ax, rt_f(IN(0)), rt_f(OUT(0)), OUT(0)->numel));
}

/* Local dims of a value: after seqpar its type holds this rank's sequence. */
static int x_attention_blk(xc *x) {
    rt_buf *q = IN(0), *k = IN(1);
    const int64_t *dq = q->type.dims, *dk = k->type.dims;
    ck_attention_blk_fwd_f32(rt_f(q), rt_f(k), rt_f(IN(2)), rt_i(IN(3)), rt_i(IN(4)), rt_i(IN(5)), rt_i(IN(6)),
                             rt_f(OUT(0)), rt_f(OUT(1)), dq[0], dq[1], dk[1], dq[2], dk[2], dq[3], AF("scale", 1),
                             (int)AI("causal", 1), AI("window", 0), AF("softcap", 0));
    return 0;
}

static int x_attention_blk_bwd(xc *x) {
    rt_buf *q = IN(0), *k = IN(1);
    const int64_t *dq = q->type.dims, *dk = k->type.dims;
    ck_attention_blk_bwd_f32(rt_f(q), rt_f(k), rt_f(IN(2)), rt_i(IN(3)), rt_i(IN(4)), rt_i(IN(5)), rt_i(IN(6)),
                             rt_f(IN(7)), rt_f(IN(8)), rt_f(IN(9)), rt_f(OUT(0)), rt_f(OUT(1)), rt_f(OUT(2)), dq[0],
                             dq[1], dk[1], dq[2], dk[2], dq[3], AF("scale", 1), (int)AI("causal", 1), AI("window", 0), AF("softcap", 0));
    return 0;
}

static int x_attn_merge(xc *x) {
    const int64_t *dm = IN(0)->type.dims;
    ck_attn_merge_f32(rt_f(IN(0)), rt_f(IN(1)), rt_f(IN(2)), rt_f(IN(3)), rt_f(OUT(0)), rt_f(OUT(1)), dm[0], dm[1], dm[2],
                      dm[3]);
    return 0;
}

/* Host <-> device copies. The CPU executor has one memory, so a copy is a
 * copy of the rank's block; the op's value is what makes the traffic
 * visible (memplan) and ordered (the CUDA executor's copy stream). */
static int x_to_host(xc *x) {
    memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
    return 0;
}

static int x_to_device(xc *x) {
    memcpy(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->numel * 4);
    return 0;
}

/* A fused chain (ir.h, docs/ir.md), element block by element block: each
 * instruction over the block, in f32 with the arithmetic of the unfused
 * op's kernel (cpu_kernels_impl.h), its value rounded to its dtype. So the
 * result has the bits the unfused nodes would have produced. */
enum { FX_BLK = 64 };

static float fx_silu(float g) { /* as ck_swiglu_fwd: in double, then rounded */
    double x = (double)g;
    return (float)(x / (1.0 + exp(-x)));
}

static float fx_gelu_tanh(float g) { /* as ck_geglu_fwd: in double, then rounded */
    double x = (double)g;
    return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
}

static void fx_block(const ir_fexpr *fx, rt_buf *const *in, float *reg, int64_t i0, int64_t nb) {
    for (int j = 0; j < fx->n; j++) {
        const ir_fx_ins *x = &fx->ins[j];
        const float *a[2] = {NULL, NULL};
        for (int k = 0; k < x->narg; k++) {
            if (x->op == IR_OP_bias_add && k == 1 && x->arg[k] >= 0) continue; /* indexed by column below */
            a[k] = x->arg[k] >= 0 ? rt_f(in[x->arg[k]]) + i0 : reg + (int64_t)(-x->arg[k] - 1) * FX_BLK;
        }
        float *y = reg + (int64_t)j * FX_BLK, alpha = (float)x->alpha;
        switch (x->op) {
        case IR_OP_add: for (int64_t e = 0; e < nb; e++) y[e] = a[0][e] + a[1][e]; break;
        case IR_OP_mul: for (int64_t e = 0; e < nb; e++) y[e] = a[0][e] * a[1][e]; break;
        case IR_OP_scale: for (int64_t e = 0; e < nb; e++) y[e] = alpha * a[0][e]; break;
        case IR_OP_convert: for (int64_t e = 0; e < nb; e++) y[e] = a[0][e]; break;
        case IR_OP_swiglu: for (int64_t e = 0; e < nb; e++) y[e] = fx_silu(a[0][e]) * a[1][e]; break;
        case IR_OP_geglu: for (int64_t e = 0; e < nb; e++) y[e] = fx_gelu_tanh(a[0][e]) * a[1][e]; break;
        case IR_OP_bias_add: {
            /* an operand bias [N] is read at column (i % N); a bias made by an
             * earlier instruction has the result's layout (then rank 1) */
            const rt_buf *b = x->arg[1] >= 0 ? in[x->arg[1]] : NULL;
            int64_t N = b ? b->numel : 1;
            for (int64_t e = 0; e < nb; e++) y[e] = a[0][e] + (b ? rt_f(b)[(i0 + e) % N] : a[1][e]);
            break;
        }
        default: break; /* ir_fexpr_parse admits no other op */
        }
        if (x->dtype == IR_BF16) ck_round_bf16_inplace_f32(y, nb);
    }
}

static int x_fused(xc *x) {
    const ir_fexpr *fx = &x->pr->fx[x->n - x->pr->p->nodes];
    rt_buf *in[IR_MAX_IN], *o = OUT(0);
    for (int k = 0; k < x->n->nin; k++) in[k] = IN(k);
    int64_t n = o->numel, nc = par_chunks(n, FX_BLK);
    int oom = 0;
#pragma omp parallel for schedule(static) if (nc > 1) reduction(| : oom)
    for (int64_t c = 0; c < nc; c++) { /* chunks of whole blocks: each element computed alone */
        int64_t nblk = (n + FX_BLK - 1) / FX_BLK, lo = nblk * c / nc * FX_BLK, hi = nblk * (c + 1) / nc * FX_BLK;
        float *reg = malloc(sizeof(float) * (size_t)fx->n * FX_BLK);
        if (!reg) {
            oom = 1;
            continue;
        }
        for (int64_t i0 = lo; i0 < hi && i0 < n; i0 += FX_BLK) {
            int64_t nb = n - i0 < FX_BLK ? n - i0 : FX_BLK;
            fx_block(fx, in, reg, i0, nb);
            memcpy(rt_f(o) + i0, reg + (int64_t)(fx->n - 1) * FX_BLK, sizeof(float) * (size_t)nb);
        }
        free(reg);
    }
    if (oom) {
        ax_error(x->d, x->where, "out of memory");
        return -1;
    }
    return 0;
}

typedef int (*exec_fn)(xc *);
static const exec_fn exec_table[IR_NOPS] = {
#define IR_OP(name, nin, nout, flags) x_##name,
#include "ir/ops.def"
#undef IR_OP
};

/* A gradient bucket: nodes [i, e) (ir_bucket_run_end) are the same
 * collective over one axis and make ONE communicator call on a packed
 * buffer. all_reduce: the operands back to back. reduce_scatter: rank-major,
 * rank q's part being block q of every operand in turn (zero-padded rows as
 * in x_reduce_scatter), so each rank receives its blocks back to back. The
 * sums are elementwise in rank order, so every result is bit-identical to
 * one call per node. */
static int x_bucket(xc *x, int i, int e) {
    const ir_program *p = x->pr->p;
    int64_t n;
    int ax = axis_of(x, &n);
    if (ax < 0) return -1;
    if (n == 1) { /* copies */
        int rc = 0;
        for (int k = i; k < e && !rc; k++) {
            x->n = &p->nodes[k];
            rc = exec_table[x->n->op](x);
        }
        x->n = &p->nodes[i];
        return rc;
    }
    int rs = p->nodes[i].op == IR_OP_reduce_scatter;
    int64_t per = 0; /* floats per rank in the packed buffer */
    for (int k = i; k < e; k++) per += x->pr->vals[p->nodes[k].out[0]].numel;
    float *buf = calloc((size_t)(rs ? per * n : per) + 1, 4), *recv = rs ? malloc((size_t)per * 4 + 4) : buf;
    if (!buf || !recv) {
        free(buf);
        if (rs) free(recv);
        ax_error(x->d, x->where, "out of memory (%lld elements)", (long long)(rs ? per * n : per));
        return -1;
    }
    int64_t off = 0;
    for (int k = i; k < e; k++) {
        const rt_buf *in = ref(x, p->nodes[k].in[0]);
        int64_t blk = x->pr->vals[p->nodes[k].out[0]].numel;
        if (!rs) {
            memcpy(buf + off, in->data, (size_t)blk * 4);
        } else {
            for (int64_t q = 0; q < n; q++) {
                int64_t from = q * blk, cnt = in->numel - from < blk ? in->numel - from : blk;
                if (cnt > 0) memcpy(buf + q * per + off, rt_f(in) + from, (size_t)cnt * 4);
            }
        }
        off += blk;
    }
    int rc = rs ? x->st->coll->reduce_scatter(x->st->coll->ctx, ax, buf, recv, per)
                : x->st->coll->all_reduce(x->st->coll->ctx, ax, buf, per);
    off = 0;
    for (int k = i; k < e && !rc; k++) {
        rt_buf *o = &x->pr->vals[p->nodes[k].out[0]];
        memcpy(o->data, recv + off, (size_t)o->numel * 4);
        round_if_bf16(o);
        off += o->numel;
    }
    free(buf);
    if (rs) free(recv);
    return coll_fail(x, rc);
}

int rt_prog_node_run(rt_prog *pr, rt_state *st, int i, rt_input_fn inputs, void *ctx, ax_diag *d) {
    xc x = {.pr = pr, .st = st, .inputs = inputs, .ctx = ctx, .d = d, .n = &pr->p->nodes[i]};
    snprintf(x.where, sizeof x.where, "%s node %d (%s, on the host)", pr->p->name, i, ir_ops[x.n->op].name);
    for (int r = 0; r < x.n->nout; r++) {
        rt_buf *b = &pr->vals[x.n->out[r]];
        if (x.n->op == IR_OP_input) continue;
        if (b->data && !is_input(pr, x.n->out[r])) free(b->data);
        b->data = calloc((size_t)(b->numel ? b->numel : 1), 4);
        if (!b->data) {
            ax_error(d, x.where, "out of memory (%lld elements)", (long long)b->numel);
            return -1;
        }
    }
    return exec_table[x.n->op](&x);
}

void rt_prog_node_done(rt_prog *pr, int i) {
    for (int v = pr->freeq[i]; v >= 0; v = pr->freenext[v])
        if (pr->vals[v].data) release(pr, v);
}

void rt_prog_release(rt_prog *pr) {
    for (int v = 0; v < pr->p->nvalues; v++)
        if (pr->vals[v].data) release(pr, v);
}

int rt_prog_run(rt_prog *pr, rt_state *st, rt_input_fn inputs, void *ctx, ax_diag *d) {
    xc x = {.pr = pr, .st = st, .inputs = inputs, .ctx = ctx, .d = d};
    int rc = 0;
    for (int i = 0; i < pr->p->nnodes && !rc; i++) {
        int e = ir_bucket_run_end(pr->p, i); /* > i + 1: a bucket of collectives, one call */
        x.n = &pr->p->nodes[i];
        if (e > i + 1)
            snprintf(x.where, sizeof x.where, "%s nodes %d-%d (%s bucket %lld)", pr->p->name, i, e - 1,
                     ir_ops[x.n->op].name, (long long)ir_attr_int(x.n->attrs, x.n->nattrs, "bucket", 0));
        else
            snprintf(x.where, sizeof x.where, "%s node %d (%s)", pr->p->name, i, ir_ops[x.n->op].name);
        for (int k = i; k < e && !rc; k++) {
            const ir_node *nk = &pr->p->nodes[k];
            for (int r = 0; r < nk->nout && !rc; r++) { /* results come alive */
                rt_buf *b = &pr->vals[nk->out[r]];
                if (nk->op == IR_OP_input) continue;
                b->data = calloc((size_t)(b->numel ? b->numel : 1), 4);
                if (!b->data) {
                    ax_error(d, x.where, "out of memory (%lld elements)", (long long)b->numel);
                    rc = -1;
                }
            }
        }
        double t0 = st->trace ? rt_trace_now_us(st->trace) : 0;
        if (!rc) rc = e > i + 1 ? x_bucket(&x, i, e) : exec_table[x.n->op](&x);
        if (st->trace && x.n->op != IR_OP_input) /* a bucket is one event, like its one call */
            rt_trace_add(st->trace, ir_ops[x.n->op].name, st->trace_pid,
                         (int)ir_attr_int(x.n->attrs, x.n->nattrs, "stream", 0), t0, rt_trace_now_us(st->trace) - t0,
                         pr->p->name, i);
        for (int k = i; k < e; k++)
            for (int v = pr->freeq[k]; v >= 0; v = pr->freenext[v]) release(pr, v); /* last uses */
        i = e - 1;
    }
    for (int v = 0; v < pr->p->nvalues; v++) /* after an error */
        if (pr->vals[v].data) release(pr, v);
    return rc ? -1 : 0;
}
