/* fexpr.c — the program of a `fused` node: parse, print, type (see ir.h and
 * the grammar in docs/ir.md). The parser reads a NUL-terminated string,
 * never recurses and bounds every count, so a bad `expr` in hand-written IR
 * is an error message, never a crash. */
#include "ir/ir.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define FAIL(...)                                \
    do {                                         \
        snprintf(err, errcap, __VA_ARGS__);      \
        return -1;                               \
    } while (0)

/* The ops an instruction may name, with their value-argument counts. */
static int fx_nargs(ir_op op) {
    switch (op) {
    case IR_OP_add:
    case IR_OP_mul:
    case IR_OP_bias_add:
    case IR_OP_swiglu:
    case IR_OP_geglu: return 2;
    case IR_OP_scale:
    case IR_OP_convert: return 1;
    default: return 0;
    }
}

typedef struct cur {
    const char *s;
    int ins; /* instruction being parsed (for messages) */
} cur;

static void skip_ws(cur *c) {
    while (*c->s == ' ' || *c->s == '\t') c->s++;
}

static int expect(cur *c, char ch, const char *what, char *err, size_t errcap) {
    skip_ws(c);
    if (*c->s != ch) FAIL("expr instruction %d: expected '%c' %s, found '%.12s'", c->ins, ch, what, *c->s ? c->s : "end");
    c->s++;
    return 0;
}

/* [A-Za-z_]+ into buf */
static int word(cur *c, char *buf, size_t cap) {
    skip_ws(c);
    size_t n = 0;
    while (isalnum((unsigned char)c->s[n]) || c->s[n] == '_') n++;
    if (n == 0 || n >= cap) return -1;
    memcpy(buf, c->s, n);
    buf[n] = 0;
    c->s += n;
    return 0;
}

/* x<k> (operand) or t<j> (earlier instruction) into *ref. */
static int value_arg(cur *c, int nin, int32_t *ref, char *err, size_t errcap) {
    skip_ws(c);
    char kind = *c->s;
    if (kind != 'x' && kind != 't')
        FAIL("expr instruction %d: expected an argument x<operand> or t<instruction>, found '%.12s'", c->ins,
             *c->s ? c->s : "end");
    c->s++;
    if (!isdigit((unsigned char)*c->s)) FAIL("expr instruction %d: expected a number after '%c'", c->ins, kind);
    long v = 0;
    while (isdigit((unsigned char)*c->s) && v <= IR_FX_MAX_INS + IR_MAX_IN) v = v * 10 + (*c->s++ - '0');
    if (kind == 'x') {
        if (v >= nin) FAIL("expr instruction %d: x%ld, but the node has %d operand%s", c->ins, v, nin, nin == 1 ? "" : "s");
        *ref = (int32_t)v;
    } else {
        if (v >= c->ins) FAIL("expr instruction %d: t%ld is not an earlier instruction", c->ins, v);
        *ref = -(int32_t)v - 1;
    }
    return 0;
}

static int float_arg(cur *c, double *out, char *err, size_t errcap) {
    skip_ws(c);
    char *end;
    errno = 0;
    double v = strtod(c->s, &end);
    if (end == c->s || errno == ERANGE) FAIL("expr instruction %d: expected scale's factor (a number), found '%.12s'", c->ins, c->s);
    *out = v;
    c->s = end;
    return 0;
}

static int parse_ins(cur *c, int nin, ir_fx_ins *in, char *err, size_t errcap) {
    char name[32];
    const char *at = c->s;
    if (word(c, name, sizeof name) != 0 || ir_op_parse(name, &in->op) != 0 || !fx_nargs(in->op))
        FAIL("expr instruction %d: expected add, mul, scale, convert, bias_add, swiglu or geglu, found '%.12s'", c->ins,
             *at ? at : "end");
    in->narg = fx_nargs(in->op);
    in->alpha = 0;
    if (expect(c, '(', "after the op", err, errcap)) return -1;
    for (int k = 0; k < in->narg; k++) {
        if (k && expect(c, ',', "between the arguments", err, errcap)) return -1;
        if (value_arg(c, nin, &in->arg[k], err, errcap)) return -1;
    }
    if (in->op == IR_OP_scale && (expect(c, ',', "before scale's factor", err, errcap) || float_arg(c, &in->alpha, err, errcap)))
        return -1;
    if (expect(c, ')', "after the arguments", err, errcap) || expect(c, ':', "before the dtype", err, errcap)) return -1;
    at = c->s;
    if (word(c, name, sizeof name) != 0 || ir_dtype_parse(name, &in->dtype) != 0 ||
        (in->dtype != IR_F32 && in->dtype != IR_BF16))
        FAIL("expr instruction %d: expected the dtype f32 or bf16, found '%.12s'", c->ins, *at ? at : "end");
    return 0;
}

int ir_fexpr_parse(const char *expr, int nin, ir_fexpr *out, char *err, size_t errcap) {
    memset(out, 0, sizeof *out);
    if (!expr) FAIL("expr is missing");
    int cap = 8;
    out->ins = malloc(sizeof *out->ins * (size_t)cap);
    if (!out->ins) abort();
    char *used = calloc((size_t)(nin > 0 ? nin : 1), 1);
    if (!used) abort();
    cur c = {expr, 0};
    int rc = 0;
    for (;;) {
        if (out->n == IR_FX_MAX_INS) {
            snprintf(err, errcap, "expr has more than %d instructions", IR_FX_MAX_INS);
            rc = -1;
            break;
        }
        if (out->n == cap) {
            cap *= 2;
            ir_fx_ins *g = realloc(out->ins, sizeof *g * (size_t)cap);
            if (!g) abort();
            out->ins = g;
        }
        c.ins = out->n;
        ir_fx_ins *in = &out->ins[out->n];
        if (parse_ins(&c, nin, in, err, errcap) != 0) {
            rc = -1;
            break;
        }
        for (int k = 0; k < in->narg; k++)
            if (in->arg[k] >= 0) used[in->arg[k]] = 1;
        out->n++;
        skip_ws(&c);
        if (!*c.s) break;
        if (*c.s != ';') {
            snprintf(err, errcap, "expr instruction %d: expected ';' or the end, found '%.12s'", out->n - 1, c.s);
            rc = -1;
            break;
        }
        c.s++;
    }
    for (int k = 0; rc == 0 && k < nin; k++)
        if (!used[k]) {
            snprintf(err, errcap, "expr does not use operand x%d", k);
            rc = -1;
        }
    free(used);
    if (rc) ir_fexpr_free(out);
    return rc;
}

void ir_fexpr_free(ir_fexpr *fx) {
    free(fx->ins);
    fx->ins = NULL;
    fx->n = 0;
}

static void put_arg(ax_buf *b, int32_t a) {
    if (a >= 0) ax_buf_printf(b, "x%d", (int)a);
    else ax_buf_printf(b, "t%d", (int)(-a - 1));
}

void ir_fexpr_print(const ir_fexpr *fx, ax_buf *b) {
    for (int i = 0; i < fx->n; i++) {
        const ir_fx_ins *in = &fx->ins[i];
        ax_buf_printf(b, "%s%s(", i ? "; " : "", ir_ops[in->op].name);
        for (int k = 0; k < in->narg; k++) {
            if (k) ax_buf_puts(b, ",");
            put_arg(b, in->arg[k]);
        }
        if (in->op == IR_OP_scale) ax_buf_printf(b, ",%.17g", in->alpha); /* reads back to the same double */
        ax_buf_printf(b, "):%s", ir_dtype_name(in->dtype));
    }
}

static int same_layout(const ir_type *a, const ir_type *b) {
    return ir_type_same_shape(a, b) && a->shard.axis == b->shard.axis && (a->shard.axis < 0 || a->shard.dim == b->shard.dim);
}

int ir_fexpr_infer(const ir_module *m, const ir_fexpr *fx, const ir_type *in, int nin, ir_type *out, char *err,
                   size_t errcap) {
    if (fx->n < 1) FAIL("expr has no instructions");
    ir_type *t = malloc(sizeof *t * (size_t)fx->n);
    if (!t) abort();
    char e2[400], b1[96], b2[96];
    int rc = 0;
    for (int i = 0; i < fx->n && !rc; i++) {
        const ir_fx_ins *x = &fx->ins[i];
        ir_type a[2];
        for (int k = 0; k < x->narg; k++) a[k] = x->arg[k] >= 0 ? in[x->arg[k]] : t[-x->arg[k] - 1];
        for (int k = 0; k < x->narg && !rc; k++)
            if (a[k].dtype != IR_F32 && a[k].dtype != IR_BF16) {
                snprintf(err, errcap, "expr instruction %d (%s): argument %d is %s (f32 and bf16 only)", i,
                         ir_ops[x->op].name, k, ir_type_str(m, &a[k], b1, sizeof b1));
                rc = -1;
            }
        if (rc) break;
        ir_attr at[1];
        int na = 0;
        if (x->op == IR_OP_scale) at[na++] = ir_af("alpha", x->alpha);
        if (x->op == IR_OP_convert) at[na++] = ir_as("to", ir_dtype_name(x->dtype));
        if (ir_infer(m, x->op, a, x->narg, at, na, &t[i], e2, sizeof e2) != 0) {
            snprintf(err, errcap, "expr instruction %d (%s): %s", i, ir_ops[x->op].name, e2);
            rc = -1;
        } else if (t[i].dtype != x->dtype) {
            snprintf(err, errcap, "expr instruction %d (%s): written :%s but its result is %s", i, ir_ops[x->op].name,
                     ir_dtype_name(x->dtype), ir_type_str(m, &t[i], b1, sizeof b1));
            rc = -1;
        }
    }
    /* one element count: every value but a bias is laid out like the result */
    const ir_type *r = rc ? NULL : &t[fx->n - 1];
    for (int i = 0; !rc && i < fx->n; i++) {
        const ir_fx_ins *x = &fx->ins[i];
        if (!same_layout(&t[i], r)) {
            snprintf(err, errcap, "expr instruction %d (%s): its value %s is not laid out like the result %s", i,
                     ir_ops[x->op].name, ir_type_str(m, &t[i], b1, sizeof b1), ir_type_str(m, r, b2, sizeof b2));
            rc = -1;
        }
        for (int k = 0; !rc && k < x->narg; k++) {
            if (x->arg[k] < 0 || (x->op == IR_OP_bias_add && k == 1)) continue;
            if (!same_layout(&in[x->arg[k]], r)) {
                snprintf(err, errcap, "expr instruction %d (%s): operand x%d %s is not laid out like the result %s", i,
                         ir_ops[x->op].name, (int)x->arg[k], ir_type_str(m, &in[x->arg[k]], b1, sizeof b1),
                         ir_type_str(m, r, b2, sizeof b2));
                rc = -1;
            }
        }
    }
    if (!rc) *out = *r;
    free(t);
    (void)nin;
    return rc;
}

const char *ir_fexpr_entry(const char *expr, const ir_dtype *in, int nin, char *buf, size_t cap) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, expr, strlen(expr) + 1); /* the NUL separates it from the dtypes */
    for (int k = 0; k < nin; k++) {
        const char *n = ir_dtype_name(in[k]);
        XXH3_64bits_update(st, n, strlen(n) + 1);
    }
    unsigned long long h = (unsigned long long)XXH3_64bits_digest(st);
    XXH3_freeState(st);
    snprintf(buf, cap, "axo_fused_%016llx", h);
    return buf;
}
