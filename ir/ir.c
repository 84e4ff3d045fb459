/* ir.c — IR types, attributes, module/program construction, builder. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

static const char *dtype_names[IR_NDTYPE] = {"f32", "bf16", "f16", "i32", "u8", "nf4"};
static const int dtype_bits[IR_NDTYPE] = {32, 16, 16, 32, 8, 4};
static const char *role_names[IR_NROLE] = {"act", "param", "grad", "opt", "input", "temp"};

const char *ir_dtype_name(ir_dtype t) { return t < IR_NDTYPE ? dtype_names[t] : "?"; }
int ir_dtype_bits(ir_dtype t) { return t < IR_NDTYPE ? dtype_bits[t] : 0; }
int ir_dtype_parse(const char *s, ir_dtype *out) {
    for (int i = 0; i < IR_NDTYPE; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (ir_dtype)i;
            return 0;
        }
    return -1;
}
const char *ir_role_name(ir_role r) { return r < IR_NROLE ? role_names[r] : "?"; }
int ir_role_parse(const char *s, ir_role *out) {
    for (int i = 0; i < IR_NROLE; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (ir_role)i;
            return 0;
        }
    return -1;
}

ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims) {
    ir_type t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank && i < IR_MAX_RANK; i++) t.dims[i] = dims[i];
    t.shard.axis = -1;
    return t;
}

ir_type ir_type_scalar(ir_dtype dt) { return ir_type_make(dt, 0, NULL); }

int64_t ir_type_numel(const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

int64_t ir_type_bytes(const ir_type *t) { return (ir_type_numel(t) * ir_dtype_bits(t->dtype) + 7) / 8; }

int ir_type_same_shape(const ir_type *a, const ir_type *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

int ir_type_equal(const ir_type *a, const ir_type *b) {
    return a->dtype == b->dtype && ir_type_same_shape(a, b) && a->shard.axis == b->shard.axis &&
           (a->shard.axis < 0 || a->shard.dim == b->shard.dim);
}

const char *ir_type_str(const ir_module *m, const ir_type *t, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "%s[", ir_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (o < cap) o += (size_t)snprintf(buf + o, cap - o, "]");
    if (t->shard.axis >= 0 && o < cap) {
        const char *ax = m && t->shard.axis < m->nmesh ? m->mesh_names[t->shard.axis] : "?";
        snprintf(buf + o, cap - o, "<%s:%d>", ax, t->shard.dim);
    }
    return buf;
}

/* ---- attributes -------------------------------------------------------- */
ir_attr ir_ai(const char *key, int64_t v) { return (ir_attr){.key = key, .kind = IR_ATTR_INT, .i = v}; }
ir_attr ir_af(const char *key, double v) { return (ir_attr){.key = key, .kind = IR_ATTR_FLOAT, .f = v}; }
ir_attr ir_as(const char *key, const char *v) { return (ir_attr){.key = key, .kind = IR_ATTR_STR, .s = v}; }
ir_attr ir_aints(const char *key, int n, const int64_t *v) { return (ir_attr){.key = key, .kind = IR_ATTR_INTS, .n = n, .ints = v}; }
ir_attr ir_afloats(const char *key, int n, const double *v) {
    return (ir_attr){.key = key, .kind = IR_ATTR_FLOATS, .n = n, .floats = v};
}

const ir_attr *ir_attr_find(const ir_attr *a, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0) return &a[i];
    return NULL;
}
int64_t ir_attr_int(const ir_attr *a, int n, const char *key, int64_t dflt) {
    const ir_attr *x = ir_attr_find(a, n, key);
    return x && x->kind == IR_ATTR_INT ? x->i : dflt;
}
double ir_attr_float(const ir_attr *a, int n, const char *key, double dflt) {
    const ir_attr *x = ir_attr_find(a, n, key);
    if (!x) return dflt;
    if (x->kind == IR_ATTR_FLOAT) return x->f;
    if (x->kind == IR_ATTR_INT) return (double)x->i;
    return dflt;
}
const char *ir_attr_str(const ir_attr *a, int n, const char *key, const char *dflt) {
    const ir_attr *x = ir_attr_find(a, n, key);
    return x && x->kind == IR_ATTR_STR ? x->s : dflt;
}

/* Deep-copies attrs into the module's arena. */
static ir_attr *copy_attrs(ax_arena *ar, const ir_attr *a, int n) {
    if (!n) return NULL;
    ir_attr *c = ax_arena_alloc(ar, sizeof *c * (size_t)n);
    for (int i = 0; i < n; i++) {
        c[i] = a[i];
        c[i].key = ax_arena_strdup(ar, a[i].key);
        if (a[i].kind == IR_ATTR_STR) c[i].s = ax_arena_strdup(ar, a[i].s ? a[i].s : "");
        if (a[i].kind == IR_ATTR_INTS) {
            int64_t *v = ax_arena_alloc(ar, sizeof *v * (size_t)(a[i].n ? a[i].n : 1));
            if (a[i].n) memcpy(v, a[i].ints, sizeof *v * (size_t)a[i].n);
            c[i].ints = v;
        }
        if (a[i].kind == IR_ATTR_FLOATS) {
            double *v = ax_arena_alloc(ar, sizeof *v * (size_t)(a[i].n ? a[i].n : 1));
            if (a[i].n) memcpy(v, a[i].floats, sizeof *v * (size_t)a[i].n);
            c[i].floats = v;
        }
    }
    return c;
}

/* ---- module -------------------------------------------------------------- */
#define GROW(arr, n, cap)                                            \
    do {                                                             \
        if ((n) == (cap)) {                                          \
            (cap) = (cap) ? (cap) * 2 : 16;                          \
            void *p_ = realloc((arr), sizeof *(arr) * (size_t)(cap)); \
            if (!p_) abort();                                        \
            (arr) = p_;                                              \
        }                                                            \
    } while (0)

ir_module *ir_module_create(void) {
    ir_module *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->arena = ax_arena_create();
    return m;
}

void ir_module_destroy(ir_module *m) {
    if (!m) return;
    for (int i = 0; i < m->nprograms; i++) {
        free(m->programs[i]->nodes);
        free(m->programs[i]->values);
        free(m->programs[i]);
    }
    free(m->programs);
    free(m->globals);
    free(m->attrs);
    ax_arena_destroy(m->arena);
    free(m);
}

int ir_mesh_add(ir_module *m, const char *name, int64_t size) {
    int i = ir_mesh_find(m, name);
    if (i >= 0) {
        m->mesh_sizes[i] = size;
        return i;
    }
    if (m->nmesh == IR_MAX_MESH) return -1;
    m->mesh_names[m->nmesh] = ax_arena_strdup(m->arena, name);
    m->mesh_sizes[m->nmesh] = size;
    return m->nmesh++;
}

int ir_mesh_find(const ir_module *m, const char *name) {
    for (int i = 0; i < m->nmesh; i++)
        if (strcmp(m->mesh_names[i], name) == 0) return i;
    return -1;
}

void ir_module_set_attr(ir_module *m, ir_attr a) {
    ir_attr *c = copy_attrs(m->arena, &a, 1);
    for (int i = 0; i < m->nattrs; i++)
        if (strcmp(m->attrs[i].key, a.key) == 0) {
            m->attrs[i] = *c;
            return;
        }
    GROW(m->attrs, m->nattrs, m->capa);
    m->attrs[m->nattrs++] = *c;
}

const ir_attr *ir_module_attr(const ir_module *m, const char *key) { return ir_attr_find(m->attrs, m->nattrs, key); }

int ir_global_add(ir_module *m, const char *name, ir_type type, ir_role role, const ir_attr *attrs, int nattrs) {
    GROW(m->globals, m->nglobals, m->capg);
    ir_global *g = &m->globals[m->nglobals];
    g->name = ax_arena_strdup(m->arena, name);
    g->type = type;
    g->role = role;
    g->attrs = copy_attrs(m->arena, attrs, nattrs);
    g->nattrs = nattrs;
    return m->nglobals++;
}

int ir_global_find(const ir_module *m, const char *name) {
    for (int i = 0; i < m->nglobals; i++)
        if (strcmp(m->globals[i].name, name) == 0) return i;
    return -1;
}

void ir_global_set_attr(ir_module *m, int gi, ir_attr a) {
    ir_global *g = &m->globals[gi];
    ir_attr *c = copy_attrs(m->arena, &a, 1);
    for (int i = 0; i < g->nattrs; i++)
        if (strcmp(g->attrs[i].key, a.key) == 0) {
            g->attrs[i] = *c;
            return;
        }
    ir_attr *n = ax_arena_alloc(m->arena, sizeof *n * (size_t)(g->nattrs + 1));
    if (g->nattrs) memcpy(n, g->attrs, sizeof *n * (size_t)g->nattrs);
    n[g->nattrs++] = *c;
    g->attrs = n;
}

ir_program *ir_program_add(ir_module *m, const char *name) {
    GROW(m->programs, m->nprograms, m->capp);
    ir_program *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->name = ax_arena_strdup(m->arena, name);
    m->programs[m->nprograms++] = p;
    return p;
}

ir_program *ir_program_find(const ir_module *m, const char *name) {
    for (int i = 0; i < m->nprograms; i++)
        if (strcmp(m->programs[i]->name, name) == 0) return m->programs[i];
    return NULL;
}

const ir_type *ir_ref_type(const ir_module *m, const ir_program *p, int32_t ref) {
    if (IR_REF_IS_GLOBAL(ref)) {
        int g = IR_REF_GLOBAL(ref);
        return g < m->nglobals ? &m->globals[g].type : NULL;
    }
    return ref < p->nvalues ? &p->values[ref].type : NULL;
}

int ir_node_add(ir_module *m, ir_program *p, ir_op op, const int32_t *in, int nin, const ir_attr *attrs, int nattrs,
                const ir_type *types, const ir_role *roles, int32_t *out_ids, ax_diag *d) {
    char err[512], where[128];
    snprintf(where, sizeof where, "program %s, node %d (%s)", p->name, p->nnodes,
             op >= 0 && op < IR_NOPS ? ir_ops[op].name : "?");
    if (op < 0 || op >= IR_NOPS) {
        ax_error(d, where, "unknown op");
        return -1;
    }
    const ir_op_info *info = &ir_ops[op];
    if (!ir_op_nin_ok(op, nin)) {
        char nb[32];
        ax_error(d, where, "takes %s operands, given %d", ir_op_nin_str(op, nb, sizeof nb), nin);
        return -1;
    }
    ir_type tin[IR_MAX_IN], tout[8];
    for (int i = 0; i < nin; i++) {
        const ir_type *t = ir_ref_type(m, p, in[i]);
        if (!t) {
            ax_error(d, where, "operand %d refers to an undefined %s", i, IR_REF_IS_GLOBAL(in[i]) ? "global" : "value");
            return -1;
        }
        tin[i] = *t;
    }
    if (info->flags & IR_F_TYPED) {
        if (!types) {
            ax_error(d, where, "result type must be given");
            return -1;
        }
        for (int i = 0; i < info->nout; i++) tout[i] = types[i];
    }
    if (ir_infer(m, op, tin, nin, attrs, nattrs, tout, err, sizeof err) != 0) {
        ax_error(d, where, "%s", err);
        return -1;
    }
    if (types && !(info->flags & IR_F_TYPED))
        for (int i = 0; i < info->nout; i++)
            if (!ir_type_equal(&types[i], &tout[i])) {
                char a[96], b[96];
                ax_error(d, where, "result %d declared %s but the shape rule gives %s", i, ir_type_str(m, &types[i], a, sizeof a),
                         ir_type_str(m, &tout[i], b, sizeof b));
                return -1;
            }
    GROW(p->nodes, p->nnodes, p->capn);
    ir_node *n = &p->nodes[p->nnodes];
    n->op = op;
    n->nin = nin;
    n->nout = info->nout;
    n->in = ax_arena_alloc(m->arena, sizeof(int32_t) * (size_t)(nin ? nin : 1));
    if (nin) memcpy(n->in, in, sizeof(int32_t) * (size_t)nin);
    n->out = ax_arena_alloc(m->arena, sizeof(int32_t) * (size_t)(info->nout ? info->nout : 1));
    n->attrs = copy_attrs(m->arena, attrs, nattrs);
    n->nattrs = nattrs;
    for (int i = 0; i < info->nout; i++) {
        GROW(p->values, p->nvalues, p->capv);
        ir_value *v = &p->values[p->nvalues];
        v->type = tout[i];
        v->role = roles ? roles[i] : IR_ROLE_ACT;
        v->node = p->nnodes;
        v->res = i;
        n->out[i] = p->nvalues;
        if (out_ids) out_ids[i] = p->nvalues;
        p->nvalues++;
    }
    return p->nnodes++;
}

/* ---- builder --------------------------------------------------------------- */
void ir_builder_init(ir_builder *b, ir_module *m, ir_program *p, ax_diag *d) {
    b->m = m;
    b->p = p;
    b->d = d;
    b->failed = 0;
    b->role = IR_ROLE_ACT;
}

void ir_bn(ir_builder *b, ir_op op, int nin, const int32_t *in, int nattrs, const ir_attr *attrs, int32_t *outs) {
    if (b->failed) {
        for (int i = 0; i < ir_ops[op].nout; i++) outs[i] = 0;
        return;
    }
    ir_role roles[8];
    for (int i = 0; i < 8; i++) roles[i] = b->role;
    if (ir_node_add(b->m, b->p, op, in, nin, attrs, nattrs, NULL, roles, outs, b->d) < 0) {
        b->failed = 1;
        for (int i = 0; i < ir_ops[op].nout; i++) outs[i] = 0;
    }
}

int32_t ir_b(ir_builder *b, ir_op op, int nin, const int32_t *in, int nattrs, const ir_attr *attrs) {
    int32_t outs[8] = {0};
    ir_bn(b, op, nin, in, nattrs, attrs, outs);
    return outs[0];
}

static int32_t typed_source(ir_builder *b, ir_op op, ir_attr a, ir_type t, ir_role role) {
    if (b->failed) return 0;
    int32_t id = 0;
    if (ir_node_add(b->m, b->p, op, NULL, 0, &a, 1, &t, &role, &id, b->d) < 0) b->failed = 1;
    return id;
}

int32_t ir_b_input(ir_builder *b, const char *name, ir_type t) {
    return typed_source(b, IR_OP_input, ir_as("name", name), t, IR_ROLE_INPUT);
}

int32_t ir_b_fill(ir_builder *b, double v, ir_type t) { return typed_source(b, IR_OP_fill, ir_af("value", v), t, IR_ROLE_TEMP); }

/* ---- gradient buckets ---------------------------------------------------- */
static int bucket_of(const ir_node *n, int64_t *bucket, const char **axis) {
    if (n->op != IR_OP_all_reduce && n->op != IR_OP_reduce_scatter) return 0;
    const ir_attr *a = ir_attr_find(n->attrs, n->nattrs, "bucket");
    if (!a || a->kind != IR_ATTR_INT) return 0;
    if (n->op == IR_OP_reduce_scatter && ir_attr_int(n->attrs, n->nattrs, "dim", 0) != 0) return 0;
    *bucket = a->i;
    *axis = ir_attr_str(n->attrs, n->nattrs, "axis", "");
    return 1;
}

int ir_bucket_run_end(const ir_program *p, int i) {
    int64_t b0, b;
    const char *ax0, *ax;
    if (i < 0 || i >= p->nnodes || !bucket_of(&p->nodes[i], &b0, &ax0)) return i + 1;
    int j = i + 1;
    for (; j < p->nnodes; j++) {
        const ir_node *n = &p->nodes[j];
        if (n->op != p->nodes[i].op || !bucket_of(n, &b, &ax) || b != b0 || strcmp(ax, ax0) != 0) break;
        int inner = 0; /* reads a value made inside the run: cannot be packed with it */
        for (int k = 0; k < n->nin && !inner; k++)
            inner = !IR_REF_IS_GLOBAL(n->in[k]) && n->in[k] < p->nvalues && p->values[n->in[k]].node >= i;
        if (inner) break;
    }
    return j;
}
