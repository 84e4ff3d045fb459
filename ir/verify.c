/* verify.c — structural and type checks of a module (ir_verify).
 *
 * Meant to run after every pass in debug builds, so it trusts nothing: it
 * checks indices before following them and types before handing them to
 * the shape rules. Errors are located as "program P, node N (op)" (or
 * "global @name", "mesh") and say what is wrong. Checks:
 *   - mesh axes named and unique, sizes >= 1;
 *   - globals: valid unique names, valid types and roles;
 *   - programs: valid unique names; for each node: a known op, the op
 *     table's operand/result counts, operands in range and defined by an
 *     earlier node, each value defined exactly once with a consistent
 *     (node, res) producer, result types equal to ir_infer's (for typed
 *     ops the recorded ones, checked by ir_infer), effect ops' first
 *     operand (and adamw's moments) globals, collectives' axis a mesh axis;
 *   - placement (ir/place.c): `place` / `on` are "host" or "device"; a node
 *     reads and writes only the memory it runs in, except to_host (device
 *     to host) and to_device (host to device); collectives and copies do
 *     not run on the host.
 */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 50

typedef struct vctx {
    const ir_module *m;
    ax_diag *d;
    int nerr;
} vctx;

AX_PRINTF(3, 4) static void verr(vctx *v, const char *where, const char *fmt, ...) {
    v->nerr++;
    if (v->nerr > MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    if (v->nerr == MAX_ERRORS)
        ax_error(v->d, where, "too many errors; stopping here");
    else
        ax_diag_vadd(v->d, AX_SEV_ERROR, where, fmt, ap);
    va_end(ap);
}

static int is_word_char(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

static int valid_global_name(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!is_word_char((unsigned char)*s) && *s != '.' && *s != '-' && *s != '/') return 0;
    return 1;
}

static int valid_word(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!is_word_char((unsigned char)*s)) return 0;
    return 1;
}

/* [A-Za-z_][A-Za-z0-9_]* (mesh axes), with dots too (attribute keys). */
static int valid_ident(const char *s, int dots) {
    if (!s || !*s || (*s >= '0' && *s <= '9')) return 0;
    for (; *s; s++)
        if (!is_word_char((unsigned char)*s) && !(dots && *s == '.')) return 0;
    return 1;
}

/* "" if the type is well formed, else what is wrong. */
static const char *type_problem(const ir_module *m, const ir_type *t) {
    if ((unsigned)t->dtype >= IR_NDTYPE) return "invalid dtype";
    if (t->rank < 0 || t->rank > IR_MAX_RANK) return "invalid rank";
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return "negative dimension";
    if (t->shard.axis >= 0) {
        if (t->shard.axis >= m->nmesh) return "split over a mesh axis that does not exist";
        if (t->shard.dim < 0 || t->shard.dim >= t->rank) return "split along a dimension it does not have";
    } else if (t->shard.axis != -1) {
        return "invalid sharding";
    }
    return "";
}

/* Returns the number of problems found. */
static int check_attrs(vctx *v, const char *where, const ir_attr *a, int n) {
    int before = v->nerr;
    if (n < 0 || (n > 0 && !a)) {
        verr(v, where, "invalid attribute list");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (!valid_ident(a[i].key, 1)) {
            verr(v, where, "attribute %d has an invalid name \"%s\"", i, a[i].key ? a[i].key : "(null)");
            continue;
        }
        for (int j = 0; j < i; j++)
            if (a[j].key && strcmp(a[j].key, a[i].key) == 0) verr(v, where, "duplicate attribute '%s'", a[i].key);
        int bad = 0;
        switch (a[i].kind) {
        case IR_ATTR_INT:
        case IR_ATTR_FLOAT: break;
        case IR_ATTR_STR: bad = !a[i].s; break;
        case IR_ATTR_INTS: bad = a[i].n < 0 || (a[i].n > 0 && !a[i].ints); break;
        case IR_ATTR_FLOATS: bad = a[i].n < 0 || (a[i].n > 0 && !a[i].floats); break;
        default: bad = 1;
        }
        if (bad) verr(v, where, "attribute '%s' has an invalid value", a[i].key);
    }
    return v->nerr - before;
}

/* Names must be unique: sort indices by name and compare neighbours. */
typedef struct named_idx {
    const char *name;
    int idx;
} named_idx;

static int cmp_named(const void *a, const void *b) {
    const named_idx *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static void check_unique(vctx *v, named_idx *ix, int n, const char *what, const char *sigil) {
    qsort(ix, (size_t)n, sizeof *ix, cmp_named);
    for (int i = 1; i < n; i++)
        if (strcmp(ix[i].name, ix[i - 1].name) == 0) {
            char where[256];
            snprintf(where, sizeof where, "%s %s%s", what, sigil, ix[i].name);
            verr(v, where, "duplicate %s name (%s %d and %d)", what, what, ix[i - 1].idx, ix[i].idx);
        }
}

/* Where node n runs (1 = host), checking its `on` attribute. */
static int node_place(vctx *v, const char *where, const ir_node *n) {
    const ir_attr *a = ir_attr_find(n->attrs, n->nattrs, "on");
    if (!a) return 0;
    if (a->kind != IR_ATTR_STR || (strcmp(a->s, "host") != 0 && strcmp(a->s, "device") != 0)) {
        verr(v, where, "attribute 'on' must be \"host\" or \"device\"");
        return 0;
    }
    if (n->op == IR_OP_to_host || n->op == IR_OP_to_device) {
        verr(v, where, "a copy takes no 'on' attribute: it moves data from one memory to the other");
        return 0;
    }
    int host = strcmp(a->s, "host") == 0;
    if (host && (ir_ops[n->op].flags & IR_F_COLLECTIVE)) {
        verr(v, where, "collectives run on the device, not on=\"host\": copy host data with to_device first");
        return 0;
    }
    return host;
}

/* A node touches only the memory it runs in; the copies cross. */
static void check_placement(vctx *v, const char *where, const ir_node *n, const char *vhost, int host) {
    const ir_module *m = v->m;
    for (int i = 0; i < n->nin; i++) {
        int32_t r = n->in[i];
        int g = IR_REF_IS_GLOBAL(r) ? IR_REF_GLOBAL(r) : -1;
        int h = g >= 0 ? ir_global_on_host(&m->globals[g]) : vhost[r];
        char what[300];
        if (g >= 0)
            snprintf(what, sizeof what, "@%s, %s", m->globals[g].name, h ? "placed on the host" : "in device memory");
        else
            snprintf(what, sizeof what, "%%%d, a %s value", (int)r, h ? "host" : "device");
        if (n->op == IR_OP_to_host || n->op == IR_OP_to_device) {
            int from_host = n->op == IR_OP_to_device;
            if (h != from_host)
                verr(v, where, "operand %d is %s: %s copies %s memory to the %s", i, what, ir_ops[n->op].name,
                     from_host ? "host" : "device", from_host ? "device" : "host");
            continue;
        }
        if (h == host) continue;
        int writes = g >= 0 && ir_op_writes(n->op, i);
        if (writes)
            verr(v, where, "writes @%s from a %s node: state in %s memory is updated by a node that runs there%s",
                 m->globals[g].name, host ? "host (on=\"host\")" : "device", h ? "host" : "device",
                 h ? " (on=\"host\")" : "");
        else
            verr(v, where, "operand %d reads %s, from a %s node: copy it with %s first", i, what,
                 host ? "host (on=\"host\")" : "device", h ? "to_device" : "to_host");
    }
}

static void verify_program(vctx *v, const ir_program *p) {
    const ir_module *m = v->m;
    const char *pname = p->name ? p->name : "?";
    char where[256], b1[128], b2[128], err[512];
    if (p->nvalues < 0 || p->nnodes < 0 || (p->nvalues && !p->values) || (p->nnodes && !p->nodes)) {
        snprintf(where, sizeof where, "program %s", pname);
        verr(v, where, "invalid node or value arrays");
        return;
    }
    /* defined[v]: 0 = not yet, else 1 + defining node */
    int *defined = calloc((size_t)p->nvalues + 1, sizeof *defined);
    char *vhost = calloc((size_t)p->nvalues + 1, 1); /* value lives in host memory */
    if (!defined || !vhost) abort();
    for (int vi = 0; vi < p->nvalues; vi++) {
        const char *tp = type_problem(m, &p->values[vi].type);
        if (*tp || (unsigned)p->values[vi].role >= IR_NROLE) {
            snprintf(where, sizeof where, "program %s, value %%%d", pname, vi);
            verr(v, where, "%s%s", *tp ? "type: " : "", *tp ? tp : "invalid role");
        }
    }
    for (int ni = 0; ni < p->nnodes; ni++) {
        const ir_node *n = &p->nodes[ni];
        int op_ok = n->op >= 0 && n->op < IR_NOPS;
        const ir_op_info *info = op_ok ? &ir_ops[n->op] : NULL;
        snprintf(where, sizeof where, "program %s, node %d (%s)", pname, ni, op_ok ? info->name : "?");
        if (!op_ok) {
            verr(v, where, "unknown op id %d", (int)n->op);
            continue;
        }
        int counts_ok = 1;
        if (!ir_op_nin_ok(n->op, n->nin)) {
            char nb[32];
            verr(v, where, "has %d operands, the op table says %s", n->nin, ir_op_nin_str(n->op, nb, sizeof nb));
            counts_ok = 0;
        }
        if (n->nout != info->nout) {
            verr(v, where, "has %d results, the op table says %d", n->nout, info->nout);
            counts_ok = 0;
        }
        if ((n->nin > 0 && !n->in) || (n->nout > 0 && !n->out) || n->nin < 0 || n->nout < 0) {
            verr(v, where, "invalid operand or result arrays");
            continue;
        }
        /* With a wrong count, the arrays' real length is unknown: only look
         * at what both the node and the table promise. */
        int tab_nin = ir_op_max_nin(n->op); /* variadic: at most IR_MAX_IN */
        int nin = n->nin < tab_nin ? n->nin : tab_nin, nout = n->nout < info->nout ? n->nout : info->nout;
        int ok = check_attrs(v, where, n->attrs, n->nattrs) == 0; /* operands, attrs and types fit for ir_infer */
        int host = ok ? node_place(v, where, n) : 0;
        ir_type tin[IR_MAX_IN], tout[8];
        for (int i = 0; i < nin; i++) {
            int32_t r = n->in[i];
            const ir_type *t = NULL;
            if (IR_REF_IS_GLOBAL(r)) {
                int g = IR_REF_GLOBAL(r);
                if (g >= m->nglobals)
                    verr(v, where, "operand %d refers to global #%d, but the module has %d globals", i, g, m->nglobals);
                else
                    t = &m->globals[g].type;
            } else if (r >= p->nvalues) {
                verr(v, where, "operand %d refers to %%%d, but the program has %d values", i, (int)r, p->nvalues);
            } else if (!defined[r]) {
                verr(v, where, "operand %d uses %%%d before its definition", i, (int)r);
            } else {
                t = &p->values[r].type;
            }
            if (!t || *type_problem(m, t))
                ok = 0;
            else
                tin[i] = *t;
        }
        if (info->flags & IR_F_EFFECT) {
            for (int i = 0; i < nin; i++) {
                int must = ir_op_writes(n->op, i);
                if (must && !IR_REF_IS_GLOBAL(n->in[i]))
                    verr(v, where, "operand %d must be a global (the state it updates), found %%%d", i, (int)n->in[i]);
            }
        }
        for (int i = 0; i < nout; i++) {
            int32_t id = n->out[i];
            if (id < 0 || id >= p->nvalues) {
                verr(v, where, "result %d is %%%d, but the program has %d values", i, (int)id, p->nvalues);
                ok = 0;
                continue;
            }
            if (defined[id]) {
                verr(v, where, "result %d redefines %%%d (already defined by node %d)", i, (int)id, defined[id] - 1);
                ok = 0;
                continue;
            }
            defined[id] = ni + 1;
            vhost[id] = (char)(n->op == IR_OP_to_host ? 1 : n->op == IR_OP_to_device ? 0 : host);
            if (p->values[id].node != ni || p->values[id].res != i)
                verr(v, where, "result %d is %%%d, whose producer is recorded as node %d result %d", i, (int)id,
                     (int)p->values[id].node, (int)p->values[id].res);
            if (*type_problem(m, &p->values[id].type)) ok = 0;
            tout[i] = p->values[id].type;
        }
        if (!ok || !counts_ok) continue;
        check_placement(v, where, n, vhost, host);
        ir_type inferred[8];
        memcpy(inferred, tout, sizeof inferred);
        if (ir_infer(m, n->op, tin, n->nin, n->attrs, n->nattrs, inferred, err, sizeof err) != 0) {
            verr(v, where, "%s", err);
            continue;
        }
        if (info->flags & IR_F_TYPED) continue;
        for (int i = 0; i < n->nout; i++)
            if (!ir_type_equal(&tout[i], &inferred[i]))
                verr(v, where, "result %d declared %s but the shape rule gives %s", i, ir_type_str(m, &tout[i], b1, sizeof b1),
                     ir_type_str(m, &inferred[i], b2, sizeof b2));
    }
    for (int vi = 0; vi < p->nvalues; vi++)
        if (!defined[vi]) {
            snprintf(where, sizeof where, "program %s, value %%%d", pname, vi);
            verr(v, where, "no node defines it (its producer is recorded as node %d)", (int)p->values[vi].node);
        }
    free(defined);
    free(vhost);
}

int ir_verify(const ir_module *m, ax_diag *d) {
    vctx v = {m, d, 0};
    char where[256];
    /* mesh */
    if (m->nmesh < 0 || m->nmesh > IR_MAX_MESH) {
        verr(&v, "mesh", "invalid number of mesh axes %d", m->nmesh);
        return -1;
    }
    for (int i = 0; i < m->nmesh; i++) {
        if (!valid_ident(m->mesh_names[i], 0)) verr(&v, "mesh", "axis %d has an invalid name", i);
        else
            for (int j = 0; j < i; j++)
                if (m->mesh_names[j] && strcmp(m->mesh_names[i], m->mesh_names[j]) == 0)
                    verr(&v, "mesh", "duplicate axis '%s'", m->mesh_names[i]);
        if (m->mesh_sizes[i] < 1) verr(&v, "mesh", "axis %d has size %lld", i, (long long)m->mesh_sizes[i]);
    }
    check_attrs(&v, "module attributes", m->attrs, m->nattrs);
    /* globals */
    named_idx *ix = malloc(sizeof *ix * (size_t)(m->nglobals + m->nprograms + 1));
    if (!ix) abort();
    int nix = 0;
    for (int i = 0; i < m->nglobals; i++) {
        const ir_global *g = &m->globals[i];
        snprintf(where, sizeof where, "global @%s", g->name ? g->name : "?");
        if (!valid_global_name(g->name)) {
            verr(&v, where, "invalid global name (global %d)", i);
        } else {
            ix[nix++] = (named_idx){g->name, i};
        }
        const char *tp = type_problem(m, &g->type);
        if (*tp) verr(&v, where, "type: %s", tp);
        if ((unsigned)g->role >= IR_NROLE) verr(&v, where, "invalid role %d", (int)g->role);
        if (check_attrs(&v, where, g->attrs, g->nattrs) == 0) {
            const ir_attr *pl = ir_attr_find(g->attrs, g->nattrs, "place");
            if (pl && (pl->kind != IR_ATTR_STR || (strcmp(pl->s, "host") != 0 && strcmp(pl->s, "device") != 0)))
                verr(&v, where, "attribute 'place' must be \"host\" or \"device\"");
        }
    }
    check_unique(&v, ix, nix, "global", "@");
    /* programs */
    nix = 0;
    for (int i = 0; i < m->nprograms; i++) {
        const ir_program *p = m->programs[i];
        if (!p) {
            verr(&v, "module", "program %d is missing", i);
            continue;
        }
        if (!valid_word(p->name)) {
            snprintf(where, sizeof where, "program %s", p->name ? p->name : "?");
            verr(&v, where, "invalid program name (program %d)", i);
        } else {
            ix[nix++] = (named_idx){p->name, i};
        }
        verify_program(&v, p);
    }
    check_unique(&v, ix, nix, "program", "");
    free(ix);
    return v.nerr ? -1 : 0;
}
