/* ir.h — axo's graph IR.
 *
 * A module holds a device mesh, global tensors (parameters, gradients,
 * optimizer state: they live across programs and steps) and a few
 * programs (init, micro_step, opt_step, eval_step). A program is a
 * straight-line SSA list of nodes; a node has an op from ir/ops.def,
 * operand refs, attributes and result values. A ref is an int32: >= 0 is a
 * value of the program, < 0 names global -(ref+1).
 *
 * Types are static: dtype, shape (global/logical dims) and a sharding
 * annotation (replicated, or one dim split over one mesh axis). Every value
 * also has a role (param, grad, opt, act, input, temp) used by memory
 * accounting.
 *
 * The text form (ir_print / ir_parse) is the contract for tests and users;
 * printing is deterministic and print -> parse -> print is the identity.
 */
#ifndef IR_IR_H
#define IR_IR_H

#include "ir/base.h"

/* ---- types ------------------------------------------------------------- */
typedef enum { IR_F32, IR_BF16, IR_F16, IR_I32, IR_U8, IR_NF4, IR_NDTYPE } ir_dtype;

#define IR_MAX_RANK 6
#define IR_MAX_MESH 4

typedef struct ir_shard {
    int8_t axis; /* mesh axis index, -1 = replicated */
    int8_t dim;  /* tensor dim split over that axis */
} ir_shard;

typedef struct ir_type {
    ir_dtype dtype;
    int rank;
    int64_t dims[IR_MAX_RANK];
    ir_shard shard;
} ir_type;

typedef enum { IR_ROLE_ACT, IR_ROLE_PARAM, IR_ROLE_GRAD, IR_ROLE_OPT, IR_ROLE_INPUT, IR_ROLE_TEMP, IR_NROLE } ir_role;

const char *ir_dtype_name(ir_dtype t);
int ir_dtype_parse(const char *s, ir_dtype *out); /* 0 ok */
int ir_dtype_bits(ir_dtype t);                    /* nf4 = 4 */
const char *ir_role_name(ir_role r);
int ir_role_parse(const char *s, ir_role *out);

ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims);
#define IR_TYPE(dt, ...) ir_type_make((dt), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
ir_type ir_type_scalar(ir_dtype dt);
int64_t ir_type_numel(const ir_type *t); /* of the global (logical) tensor */
int64_t ir_type_bytes(const ir_type *t); /* numel * bits / 8, rounded up */
int ir_type_same_shape(const ir_type *a, const ir_type *b);
int ir_type_equal(const ir_type *a, const ir_type *b); /* dtype, shape, shard */
/* "f32[2,128,64]<dp:0>" into buf (mesh axis names from m, may be NULL). */
struct ir_module;
const char *ir_type_str(const struct ir_module *m, const ir_type *t, char *buf, size_t cap);

/* ---- attributes -------------------------------------------------------- */
typedef enum { IR_ATTR_INT, IR_ATTR_FLOAT, IR_ATTR_STR, IR_ATTR_INTS, IR_ATTR_FLOATS } ir_attr_kind;

typedef struct ir_attr {
    const char *key;
    ir_attr_kind kind;
    int64_t i;
    double f;
    const char *s;
    int n;
    const int64_t *ints;  /* IR_ATTR_INTS: n of them */
    const double *floats; /* IR_ATTR_FLOATS: n of them */
} ir_attr;

ir_attr ir_ai(const char *key, int64_t v);
ir_attr ir_af(const char *key, double v);
ir_attr ir_as(const char *key, const char *v);
ir_attr ir_aints(const char *key, int n, const int64_t *v);
ir_attr ir_afloats(const char *key, int n, const double *v);
const ir_attr *ir_attr_find(const ir_attr *a, int n, const char *key);
int64_t ir_attr_int(const ir_attr *a, int n, const char *key, int64_t dflt);
double ir_attr_float(const ir_attr *a, int n, const char *key, double dflt); /* ints convert */
const char *ir_attr_str(const ir_attr *a, int n, const char *key, const char *dflt);

/* ---- ops ----------------------------------------------------------------- */
enum { IR_F_TYPED = 1, IR_F_ELEMWISE = 2, IR_F_EFFECT = 4, IR_F_COLLECTIVE = 8 };

/* An op whose table nin is -1 is variadic: 1 to IR_MAX_IN operands (`fused`).
 * adamw, adamw8 and neftune take one optional last operand (the step's
 * beta1 for a schedule that cycles it; the micro step's mag: ops.def). Every
 * other op has exactly its table's count. */
#define IR_MAX_IN 256

typedef enum {
#define IR_OP(name, nin, nout, flags) IR_OP_##name,
#include "ir/ops.def"
#undef IR_OP
    IR_NOPS
} ir_op;

typedef struct ir_op_info {
    const char *name;
    int nin, nout, flags;
} ir_op_info;
extern const ir_op_info ir_ops[IR_NOPS];
int ir_op_parse(const char *name, ir_op *out); /* 0 ok */
/* 1 if op may have nin operands (the table's count, the count + 1 for an
 * op with an optional last operand, or 1..IR_MAX_IN for a variadic op). */
int ir_op_nin_ok(ir_op op, int nin);
/* The most operands op may have. */
int ir_op_max_nin(ir_op op);
/* Whether operand k of an op is a global it updates (effect ops: operand 0;
 * adamw also the moments, 2 and 3; adamw8 operands 2 to 5). */
int ir_op_writes(ir_op op, int k);
/* "2", "7 or 8" (an optional last operand), or "1 to 256" for a variadic
 * op, into buf. */
const char *ir_op_nin_str(ir_op op, char *buf, size_t cap);

/* Shape rule: computes result types from operand types and attrs (for
 * IR_F_TYPED ops, checks the given out[] instead). Returns 0, or -1 with
 * a message in err. mesh sizes are needed by collectives. */
int ir_infer(const struct ir_module *m, ir_op op, const ir_type *in, int nin, const ir_attr *attrs, int nattrs,
             ir_type *out, char *err, size_t errcap);

/* ---- graph --------------------------------------------------------------- */
typedef struct ir_global {
    const char *name;
    ir_type type;
    ir_role role;
    ir_attr *attrs;
    int nattrs;
} ir_global;

typedef struct ir_value {
    ir_type type;
    ir_role role;
    int32_t node; /* producing node */
    int32_t res;  /* which result of it */
} ir_value;

typedef struct ir_node {
    ir_op op;
    int nin, nout;
    int32_t *in;  /* refs */
    int32_t *out; /* value ids */
    ir_attr *attrs;
    int nattrs;
} ir_node;

typedef struct ir_program {
    const char *name;
    ir_node *nodes;
    int nnodes, capn;
    ir_value *values;
    int nvalues, capv;
} ir_program;

typedef struct ir_module {
    ax_arena *arena;
    int nmesh;
    const char *mesh_names[IR_MAX_MESH];
    int64_t mesh_sizes[IR_MAX_MESH];
    ir_global *globals;
    int nglobals, capg;
    ir_program **programs;
    int nprograms, capp;
    ir_attr *attrs; /* module attributes: model, config facts for the runtime */
    int nattrs, capa;
} ir_module;

#define IR_GLOBAL_REF(g) (-(int32_t)(g)-1)
#define IR_REF_IS_GLOBAL(r) ((r) < 0)
#define IR_REF_GLOBAL(r) (-(r)-1)

ir_module *ir_module_create(void);
void ir_module_destroy(ir_module *m);
int ir_mesh_add(ir_module *m, const char *name, int64_t size); /* axis index */
int ir_mesh_find(const ir_module *m, const char *name);        /* -1 if none */
/* Module attribute (replaces an existing key). Strings are copied. */
void ir_module_set_attr(ir_module *m, ir_attr a);
const ir_attr *ir_module_attr(const ir_module *m, const char *key);

/* Adds a global; returns its index. Name and attr strings are copied. */
int ir_global_add(ir_module *m, const char *name, ir_type type, ir_role role, const ir_attr *attrs, int nattrs);
int ir_global_find(const ir_module *m, const char *name); /* -1 if none */
void ir_global_set_attr(ir_module *m, int g, ir_attr a);

ir_program *ir_program_add(ir_module *m, const char *name);
ir_program *ir_program_find(const ir_module *m, const char *name);

const ir_type *ir_ref_type(const ir_module *m, const ir_program *p, int32_t ref);

/* Appends a node. types: for IR_F_TYPED ops the declared result types,
 * else NULL (inferred). roles: result roles or NULL (act). Results' value
 * ids are written to out_ids (may be NULL). Returns the node index, or -1
 * with an error in d naming the op and the problem. */
int ir_node_add(ir_module *m, ir_program *p, ir_op op, const int32_t *in, int nin, const ir_attr *attrs, int nattrs,
                const ir_type *types, const ir_role *roles, int32_t *out_ids, ax_diag *d);

/* ---- gradient buckets ----------------------------------------------------
 * An all_reduce or reduce_scatter (dim 0) with an int attribute `bucket`
 * runs as ONE communicator call together with the nodes right after it
 * that are the same op over the same axis with the same `bucket` and read
 * no value produced inside the run: the executor packs their operands into
 * one buffer (docs/sharding.md). Returns the end (exclusive) of the run
 * that starts at node i; i + 1 for any other node. memplan counts calls
 * with the same rule. */
int ir_bucket_run_end(const ir_program *p, int i);

/* ---- builder: chains calls, remembers the first error --------------------- */
typedef struct ir_builder {
    ir_module *m;
    ir_program *p;
    ax_diag *d;
    int failed;
    ir_role role; /* role given to results (default act) */
} ir_builder;

void ir_builder_init(ir_builder *b, ir_module *m, ir_program *p, ax_diag *d);
/* Single-result op; returns the value id (or 0 after a failure). */
int32_t ir_b(ir_builder *b, ir_op op, int nin, const int32_t *in, int nattrs, const ir_attr *attrs);
/* Any op; writes nout result ids. */
void ir_bn(ir_builder *b, ir_op op, int nin, const int32_t *in, int nattrs, const ir_attr *attrs, int32_t *outs);
/* Typed source ops. */
int32_t ir_b_input(ir_builder *b, const char *name, ir_type t);
int32_t ir_b_fill(ir_builder *b, double v, ir_type t);
#define IR_IN(...) (int)(sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)), (int32_t[]){__VA_ARGS__}
#define IR_AT(...) (int)(sizeof((ir_attr[]){__VA_ARGS__}) / sizeof(ir_attr)), (ir_attr[]){__VA_ARGS__}
#define IR_NOAT 0, NULL

/* ---- text, verification ------------------------------------------------- */
/* Deterministic text of the whole module (see docs/ir.md for the grammar). */
void ir_print(const ir_module *m, ax_buf *out);
void ir_print_program(const ir_module *m, const ir_program *p, ax_buf *out);
/* Parses text (name is used in diagnostics as "name:line:col"). Returns a
 * module or NULL with errors in d. */
ir_module *ir_parse(const char *text, size_t len, const char *name, ax_diag *d);
/* Checks the module: SSA (defined before use, once), op arity, refs in
 * range, types equal to the shape rules' results, effect ops' first
 * operand a global, collectives naming a mesh axis, unique names.
 * Returns 0 or -1; errors name program, node index, op and problem. */
int ir_verify(const ir_module *m, ax_diag *d);

/* ---- fused elementwise programs (ir/fexpr.c) -------------------------------
 * A `fused` node (made by passes/fuse.c) computes one result from its
 * operands by a straight-line program over elementwise ops, held as text in
 * its attribute `expr` (grammar in docs/ir.md), e.g.
 *     add(x0,x1):bf16; scale(t0,0.5):bf16; add(t1,x2):f32
 * x<k> is operand k, t<j> the result of instruction j, and each instruction
 * names the dtype its value had before fusion: evaluation is f32 per
 * element and every instruction's value is rounded to its dtype (bf16:
 * nearest even), so a fused node computes exactly what the unfused nodes
 * did. The last instruction is the result. */
#define IR_FX_MAX_INS 1024

typedef struct ir_fx_ins {
    ir_op op;        /* add, mul, scale, convert, bias_add or swiglu */
    int narg;        /* value arguments: 1 (scale, convert) or 2 */
    int32_t arg[2];  /* >= 0: operand k; < 0: instruction -(a+1) */
    ir_dtype dtype;  /* f32 or bf16 */
    double alpha;    /* scale's factor */
} ir_fx_ins;

typedef struct ir_fexpr {
    int n;
    ir_fx_ins *ins; /* malloc'd; ir_fexpr_free */
} ir_fexpr;

/* Parses expr for a node of nin operands: syntax, known ops, argument
 * counts, references in range (an instruction only reads earlier ones),
 * every operand used. 0, or -1 with a message in err. */
int ir_fexpr_parse(const char *expr, int nin, ir_fexpr *out, char *err, size_t errcap);
void ir_fexpr_free(ir_fexpr *fx);
/* Appends the canonical text of fx to b. */
void ir_fexpr_print(const ir_fexpr *fx, ax_buf *b);
/* The shape rule of `fused`: types every instruction with its op's own
 * shape rule (scale's alpha, convert's `to` = its dtype), checks the written
 * dtypes, f32/bf16 only, and that every value but a bias_add's bias has the
 * result's dims and sharding. *out: the result type. */
int ir_fexpr_infer(const struct ir_module *m, const ir_fexpr *fx, const ir_type *in, int nin, ir_type *out, char *err,
                   size_t errcap);
/* The CUDA entry point of a fused kernel: "axo_fused_" + 16 hex digits of
 * XXH3-64 over the expr and the operands' dtypes (what the generated source
 * depends on). cap >= 27. */
const char *ir_fexpr_entry(const char *expr, const ir_dtype *in, int nin, char *buf, size_t cap);

/* ---- placement: host or device memory (ir/place.c) ---------------------- */
/* A global lives on the device unless it has place="host"; a node runs on
 * the device unless it has on="host"; a value lives where its node ran,
 * except to_host's result (host) and to_device's (device). Only the copies
 * cross: ir_verify rejects any other node touching the other memory. These
 * trust the module (call them on verified IR). */
int ir_global_on_host(const ir_global *g);
int ir_node_on_host(const ir_node *n);
int ir_value_on_host(const ir_program *p, int32_t v);
int ir_ref_on_host(const ir_module *m, const ir_program *p, int32_t ref);

#endif
