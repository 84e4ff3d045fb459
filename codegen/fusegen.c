/* fusegen.c — CUDA C for `fused` nodes (see fusegen.h). */
#include "codegen/fusegen.h"

#include "codegen/cuda_kernels.h"
#include "codegen/nvrtc.h"

#include <string.h>

#define VEC_MAX_IN 8 /* more operands: the scalar loop only (8 floats per operand would spill) */

/* Helpers of every generated kernel (after common.cuh). */
static const char prelude[] =
    "\n#line 1 \"fused\"\n"
    "// 8 elements as fp32 from 16-byte aligned storage (f32: two float4, bf16: one uint4)\n"
    "__device__ __forceinline__ void axf_ld8(const float *p, float (&v)[8]) {\n"
    "    float a[4], b[4];\n"
    "    ax_ld16(p, a);\n"
    "    ax_ld16(p + 4, b);\n"
    "#pragma unroll\n"
    "    for (int e = 0; e < 4; e++) { v[e] = a[e]; v[e + 4] = b[e]; }\n"
    "}\n"
    "__device__ __forceinline__ void axf_ld8(const bf16 *p, float (&v)[8]) { ax_ld16(p, v); }\n"
    "__device__ __forceinline__ void axf_st8(float *p, const float (&v)[8]) {\n"
    "    const float a[4] = {v[0], v[1], v[2], v[3]}, b[4] = {v[4], v[5], v[6], v[7]};\n"
    "    ax_st16(p, a);\n"
    "    ax_st16(p + 4, b);\n"
    "}\n"
    "__device__ __forceinline__ void axf_st8(bf16 *p, const float (&v)[8]) { ax_st16(p, v); }\n"
    "// an instruction's value rounded to bf16 (nearest even), as the CPU executor stores it\n"
    "__device__ __forceinline__ float axf_bf(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }\n"
    "// SiLU as ck_swiglu_fwd: in double, then rounded to float\n"
    "__device__ __forceinline__ float axf_silu(float g) {\n"
    "    double x = (double)g;\n"
    "    return (float)(x / (1.0 + exp(-x)));\n"
    "}\n"
    "// GELU, tanh approximation, as ck_geglu_fwd: in double, then rounded to float\n"
    "__device__ __forceinline__ float axf_gelu_tanh(float g) {\n"
    "    double x = (double)g;\n"
    "    return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));\n"
    "}\n";

static const char *ctype(ir_dtype t) { return t == IR_BF16 ? "bf16" : "float"; }

static void arg_name(char *buf, size_t cap, int32_t a) {
    if (a >= 0) snprintf(buf, cap, "x%d", (int)a);
    else snprintf(buf, cap, "t%d", (int)(-a - 1));
}

/* 1 for operands some bias_add reads as its bias. */
static void bias_operands(const ir_fexpr *fx, int nin, char *bias) {
    memset(bias, 0, (size_t)nin);
    for (int i = 0; i < fx->n; i++)
        if (fx->ins[i].op == IR_OP_bias_add && fx->ins[i].arg[1] >= 0) bias[fx->ins[i].arg[1]] = 1;
}

/* __device__ float axf_eval(float x0, ...): the instructions, one line each. */
static void emit_eval(const ir_fexpr *fx, int nin, ax_buf *s) {
    ax_buf_puts(s, "__device__ __forceinline__ float axf_eval(");
    for (int k = 0; k < nin; k++) ax_buf_printf(s, "%sfloat x%d", k ? ", " : "", k);
    ax_buf_puts(s, ") {\n");
    for (int i = 0; i < fx->n; i++) {
        const ir_fx_ins *x = &fx->ins[i];
        char a[16], b[16] = "";
        arg_name(a, sizeof a, x->arg[0]);
        if (x->narg > 1) arg_name(b, sizeof b, x->arg[1]);
        ax_buf e = {0};
        switch (x->op) {
        case IR_OP_add:
        case IR_OP_bias_add: ax_buf_printf(&e, "__fadd_rn(%s, %s)", a, b); break;
        case IR_OP_mul: ax_buf_printf(&e, "__fmul_rn(%s, %s)", a, b); break;
        case IR_OP_swiglu: ax_buf_printf(&e, "__fmul_rn(axf_silu(%s), %s)", a, b); break;
        case IR_OP_geglu: ax_buf_printf(&e, "__fmul_rn(axf_gelu_tanh(%s), %s)", a, b); break;
        case IR_OP_convert: ax_buf_printf(&e, "%s", a); break;
        case IR_OP_scale: {
            float f = (float)x->alpha; /* (REAL)alpha, as ck_scale_f32; its exact bits */
            uint32_t bits;
            memcpy(&bits, &f, 4);
            ax_buf_printf(&e, "__fmul_rn(__int_as_float(0x%08x), %s)", (unsigned)bits, a);
            break;
        }
        default: ax_buf_puts(&e, "0.0f"); break; /* ir_fexpr_parse admits no other op */
        }
        if (x->dtype == IR_BF16) ax_buf_printf(s, "    const float t%d = axf_bf(%s);\n", i, e.data);
        else ax_buf_printf(s, "    const float t%d = %s;\n", i, e.data);
        ax_buf_free(&e);
    }
    ax_buf_printf(s, "    return t%d;\n}\n", fx->n - 1);
}

static void emit_kernel(const ir_fexpr *fx, const ir_dtype *in, int nin, const char *bias, const char *entry,
                        ax_buf *s) {
    ir_dtype rt = fx->ins[fx->n - 1].dtype;
    int any_bias = 0;
    for (int k = 0; k < nin; k++) any_bias |= bias[k];
    ax_buf_printf(s, "extern \"C\" __global__ void __launch_bounds__(256) %s(", entry);
    for (int k = 0; k < nin; k++) ax_buf_printf(s, "const %s *x%d, ", ctype(in[k]), k);
    ax_buf_printf(s, "%s *y, i64 n, i64 nb) {\n", ctype(rt));
    if (nin <= VEC_MAX_IN) {
        ax_buf_puts(s, "    const bool al = ax_al16(y)");
        for (int k = 0; k < nin; k++) ax_buf_printf(s, " && ax_al16(x%d)", k);
        ax_buf_printf(s, "%s;\n", any_bias ? " && nb % 8 == 0" : "");
        ax_buf_puts(s, "    const i64 nv = al ? n / 8 : 0;\n"
                       "    for (i64 v = ax_tid(); v < nv; v += ax_nthreads()) {\n"
                       "        const i64 i = v * 8;\n"
                       "        float r[8]");
        for (int k = 0; k < nin; k++) ax_buf_printf(s, ", a%d[8]", k);
        ax_buf_puts(s, ";\n");
        for (int k = 0; k < nin; k++)
            ax_buf_printf(s, "        axf_ld8(x%d + %s, a%d);\n", k, bias[k] ? "i % nb" : "i", k);
        ax_buf_puts(s, "#pragma unroll\n        for (int e = 0; e < 8; e++) r[e] = axf_eval(");
        for (int k = 0; k < nin; k++) ax_buf_printf(s, "%sa%d[e]", k ? ", " : "", k);
        ax_buf_puts(s, ");\n        axf_st8(y + i, r);\n    }\n");
        ax_buf_puts(s, "    for (i64 i = nv * 8 + ax_tid(); i < n; i += ax_nthreads())\n");
    } else {
        ax_buf_puts(s, "    for (i64 i = ax_tid(); i < n; i += ax_nthreads())\n");
    }
    ax_buf_puts(s, "        ax_st(y + i, axf_eval(");
    for (int k = 0; k < nin; k++)
        ax_buf_printf(s, "%sax_ld(x%d + %s)", k ? ", " : "", k, bias[k] ? "i % nb" : "i"); /* a bias: by column */
    ax_buf_puts(s, "));\n}\n");
}

int cg_fused_source(const char *expr, const ir_dtype *in, int nin, ax_buf *src, char *entry, size_t cap, ax_diag *d) {
    ir_fexpr fx;
    char err[400];
    if (nin < 1 || nin > IR_MAX_IN || ir_fexpr_parse(expr, nin, &fx, err, sizeof err) != 0) {
        ax_error(d, "fused kernel", "%s", nin < 1 || nin > IR_MAX_IN ? "bad operand count" : err);
        return -1;
    }
    for (int k = 0; k < nin; k++)
        if (in[k] != IR_F32 && in[k] != IR_BF16) {
            ax_error(d, "fused kernel", "operand x%d is %s (f32 and bf16 only)", k, ir_dtype_name(in[k]));
            ir_fexpr_free(&fx);
            return -1;
        }
    ir_fexpr_entry(expr, in, nin, entry, cap);
    char bias[IR_MAX_IN];
    bias_operands(&fx, nin, bias);
    ax_buf s = {0};
    ax_buf_puts(&s, cg_cuda_common_source());
    ax_buf_puts(&s, prelude);
    ax_buf_printf(&s, "// generated by axo (codegen/fusegen.c) for the fused expr\n//   %s\n// operands:", expr);
    for (int k = 0; k < nin; k++) ax_buf_printf(&s, " x%d %s%s", k, ir_dtype_name(in[k]), bias[k] ? " (bias)" : "");
    ax_buf_puts(&s, "\n");
    emit_eval(&fx, nin, &s);
    emit_kernel(&fx, in, nin, bias, entry, &s);
    ir_fexpr_free(&fx);
    ax_buf_free(src);
    *src = s;
    return 0;
}

int cg_fused_compile(void *ctx, const char *entry, const char *expr, const ir_dtype *in, int nin, const char *arch,
                     ax_buf *cubin, ax_diag *d) {
    (void)ctx;
    ax_buf src = {0};
    char name[64];
    if (cg_fused_source(expr, in, nin, &src, name, sizeof name, d) != 0) return -1;
    if (strcmp(name, entry) != 0) {
        ax_error(d, entry, "the generated kernel is named %s (the executor and codegen disagree)", name);
        ax_buf_free(&src);
        return -1;
    }
    int rc = cg_nvrtc_compile_cached(NULL, name, src.data, arch, NULL, 0, cubin, NULL, NULL, d);
    ax_buf_free(&src);
    return rc;
}
