/* print.c — the IR's text form (grammar in docs/ir.md).
 *
 * Deterministic: everything is printed in stored order (attrs, mesh axes,
 * globals, programs, nodes), values as %<index in p->values>, floats with
 * %.17g so that parsing the text gives back the same bits. The printer is
 * also a debugging aid for broken modules, so it never trusts indices: an
 * out-of-range op, ref or value prints as a visible placeholder that the
 * parser rejects, instead of crashing.
 */
#include "ir/ir.h"

#include <math.h>
#include <string.h>

static void print_float(ax_buf *b, double v) {
    if (isnan(v)) {
        ax_buf_puts(b, "nan");
        return;
    }
    if (isinf(v)) {
        ax_buf_puts(b, v < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.17g", v);
    ax_buf_puts(b, tmp);
    /* "2" or "-0" would read back as an integer: keep it a float. */
    if (strspn(tmp, "-0123456789") == strlen(tmp)) ax_buf_puts(b, ".0");
}

static void print_string(ax_buf *b, const char *s) {
    ax_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': ax_buf_puts(b, "\\\""); break;
        case '\\': ax_buf_puts(b, "\\\\"); break;
        case '\n': ax_buf_puts(b, "\\n"); break;
        case '\t': ax_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                ax_buf_printf(b, "\\x%02x", *p);
            else
                ax_buf_append(b, p, 1);
        }
    }
    ax_buf_puts(b, "\"");
}

static void print_attr_value(ax_buf *b, const ir_attr *a) {
    switch (a->kind) {
    case IR_ATTR_INT: ax_buf_printf(b, "%lld", (long long)a->i); break;
    case IR_ATTR_FLOAT: print_float(b, a->f); break;
    case IR_ATTR_STR: print_string(b, a->s); break;
    case IR_ATTR_INTS:
        ax_buf_puts(b, "[");
        for (int i = 0; i < a->n && a->ints; i++) ax_buf_printf(b, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
        ax_buf_puts(b, "]");
        break;
    case IR_ATTR_FLOATS: /* each element in float form, so the list reads back as floats */
        ax_buf_puts(b, "[");
        for (int i = 0; i < a->n && a->floats; i++) {
            if (i) ax_buf_puts(b, ", ");
            print_float(b, a->floats[i]);
        }
        ax_buf_puts(b, "]");
        break;
    default: ax_buf_printf(b, "<bad attr kind %d>", (int)a->kind);
    }
}

/* " {k=v, k2=v2}" or nothing. */
static void print_attrs(ax_buf *b, const ir_attr *a, int n) {
    if (n <= 0 || !a) return;
    ax_buf_puts(b, " {");
    for (int i = 0; i < n; i++) {
        ax_buf_printf(b, "%s%s=", i ? ", " : "", a[i].key ? a[i].key : "?");
        print_attr_value(b, &a[i]);
    }
    ax_buf_puts(b, "}");
}

static void print_type(ax_buf *b, const ir_module *m, const ir_type *t) {
    ax_buf_printf(b, "%s[", ir_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && i < IR_MAX_RANK; i++) ax_buf_printf(b, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (t->rank > IR_MAX_RANK || t->rank < 0) ax_buf_printf(b, "<bad rank %d>", t->rank);
    ax_buf_puts(b, "]");
    if (t->shard.axis >= 0) {
        const char *ax = t->shard.axis < m->nmesh && m->mesh_names[t->shard.axis] ? m->mesh_names[t->shard.axis] : "?";
        ax_buf_printf(b, "<%s:%d>", ax, (int)t->shard.dim);
    }
}

static void print_ref(ax_buf *b, const ir_module *m, const ir_program *p, int32_t ref) {
    if (IR_REF_IS_GLOBAL(ref)) {
        int g = IR_REF_GLOBAL(ref);
        if (g < m->nglobals && m->globals[g].name)
            ax_buf_printf(b, "@%s", m->globals[g].name);
        else
            ax_buf_printf(b, "@<bad global %d>", g);
    } else {
        ax_buf_printf(b, "%%%d", (int)ref);
    }
}

static void print_node(ax_buf *b, const ir_module *m, const ir_program *p, const ir_node *n) {
    ax_buf_puts(b, "  ");
    for (int i = 0; i < n->nout; i++) ax_buf_printf(b, "%s%%%d", i ? ", " : "", n->out ? (int)n->out[i] : -1);
    if (n->nout > 0) ax_buf_puts(b, " = ");
    if (n->op >= 0 && n->op < IR_NOPS)
        ax_buf_puts(b, ir_ops[n->op].name);
    else
        ax_buf_printf(b, "<bad op %d>", (int)n->op);
    ax_buf_puts(b, "(");
    for (int i = 0; i < n->nin && n->in; i++) {
        if (i) ax_buf_puts(b, ", ");
        print_ref(b, m, p, n->in[i]);
    }
    ax_buf_puts(b, ")");
    print_attrs(b, n->attrs, n->nattrs);
    for (int i = 0; i < n->nout; i++) {
        ax_buf_puts(b, i ? ", " : " : ");
        int32_t v = n->out ? n->out[i] : -1;
        if (v < 0 || v >= p->nvalues) {
            ax_buf_printf(b, "<bad value %d>", (int)v);
            continue;
        }
        print_type(b, m, &p->values[v].type);
        ax_buf_printf(b, " %s", ir_role_name(p->values[v].role));
    }
    ax_buf_puts(b, "\n");
}

void ir_print_program(const ir_module *m, const ir_program *p, ax_buf *out) {
    ax_buf_printf(out, "program %s {\n", p->name ? p->name : "?");
    for (int i = 0; i < p->nnodes; i++) print_node(out, m, p, &p->nodes[i]);
    ax_buf_puts(out, "}\n");
}

void ir_print(const ir_module *m, ax_buf *out) {
    ax_buf_puts(out, "axo.ir 1\n");
    for (int i = 0; i < m->nattrs; i++) {
        ax_buf_printf(out, "attr %s = ", m->attrs[i].key ? m->attrs[i].key : "?");
        print_attr_value(out, &m->attrs[i]);
        ax_buf_puts(out, "\n");
    }
    if (m->nmesh > 0) {
        ax_buf_puts(out, "mesh");
        for (int i = 0; i < m->nmesh && i < IR_MAX_MESH; i++)
            ax_buf_printf(out, " %s=%lld", m->mesh_names[i] ? m->mesh_names[i] : "?", (long long)m->mesh_sizes[i]);
        ax_buf_puts(out, "\n");
    }
    for (int i = 0; i < m->nglobals; i++) {
        const ir_global *g = &m->globals[i];
        ax_buf_printf(out, "global @%s : ", g->name ? g->name : "?");
        print_type(out, m, &g->type);
        ax_buf_printf(out, " %s", ir_role_name(g->role));
        print_attrs(out, g->attrs, g->nattrs);
        ax_buf_puts(out, "\n");
    }
    for (int i = 0; i < m->nprograms; i++) {
        ax_buf_puts(out, "\n");
        ir_print_program(m, m->programs[i], out);
    }
}
