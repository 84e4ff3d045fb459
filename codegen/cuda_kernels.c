/* cuda_kernels.c — the kernel source registry (see cuda_kernels.h). */
#include "codegen/cuda_kernels.h"

#include "codegen/nvrtc.h"
#include "ir/base.h"

#include <string.h>

/* generated: cg_ksrc_<name>[], CG_KERNEL_SOURCE_LIST */
#include "codegen/kernel_sources.inc"

#define F32_BF16(e) e "_f32", e "_bf16"

static const char *const e_adamw[] = {"axo_adamw_f32", "axo_adamw_bf16", "axo_adamw_sr_bf16", F32_BF16("axo_adamw8"),
                                      NULL};
static const char *const e_attention_any[] = {F32_BF16("axo_attn_any_fwd"), F32_BF16("axo_attn_any_bwd_dq"),
                                              F32_BF16("axo_attn_any_bwd_dkdv"), F32_BF16("axo_attn_sink"),
                                              F32_BF16("axo_attn_sink_bwd"), NULL};
static const char *const e_attention_blk[] = {
    F32_BF16("axo_attn_blk_fwd_hd64"),      F32_BF16("axo_attn_blk_fwd_hd128"),
    F32_BF16("axo_attn_blk_bwd_preprocess"),
    F32_BF16("axo_attn_blk_bwd_dkdv_hd64"), F32_BF16("axo_attn_blk_bwd_dkdv_hd128"),
    F32_BF16("axo_attn_blk_bwd_dq_hd64"),   F32_BF16("axo_attn_blk_bwd_dq_hd128"),
    "axo_attn_merge_f32",                   NULL};
static const char *const e_attention_bwd[] = {
    F32_BF16("axo_attn_bwd_preprocess"), F32_BF16("axo_attn_bwd_dkdv_hd64"), F32_BF16("axo_attn_bwd_dkdv_hd128"),
    F32_BF16("axo_attn_bwd_dq_hd64"),    F32_BF16("axo_attn_bwd_dq_hd128"),  NULL};
static const char *const e_attention_fwd[] = {F32_BF16("axo_attn_fwd_hd64"), F32_BF16("axo_attn_fwd_hd128"), NULL};
static const char *const e_attention_tc[] = {
    "axo_attn_tc_fwd_hd64_bf16",          "axo_attn_tc_bwd_dkdv_hd64_bf16",      "axo_attn_tc_bwd_dq_hd64_bf16",
    "axo_attn_tc_fwd_hd128_bf16",         "axo_attn_tc_bwd_dkdv_hd128_bf16",     "axo_attn_tc_bwd_dq_hd128_bf16",
    "axo_attn_tc_blk_fwd_hd64_bf16",      "axo_attn_tc_blk_bwd_dkdv_hd64_bf16",  "axo_attn_tc_blk_bwd_dq_hd64_bf16",
    "axo_attn_tc_blk_fwd_hd128_bf16",     "axo_attn_tc_blk_bwd_dkdv_hd128_bf16", "axo_attn_tc_blk_bwd_dq_hd128_bf16",
    NULL};
static const char *const e_bias[] = {F32_BF16("axo_bias_add"), F32_BF16("axo_bias_grad_partial"),
                                     F32_BF16("axo_bias_grad_reduce"), NULL};
static const char *const e_cross_entropy[] = {F32_BF16("axo_cross_entropy_fwd"), F32_BF16("axo_cross_entropy_bwd"), F32_BF16("axo_lce_chunk"),
                                              "axo_cross_entropy_reduce", "axo_dpo_loss", NULL};
static const char *const e_dora[] = {F32_BF16("axo_dora_norm"), F32_BF16("axo_dora_scale"),
                                     F32_BF16("axo_dora_scale_bwd"), "axo_dora_dm_reduce",
                                     F32_BF16("axo_lora_delta"),       F32_BF16("axo_lora_delta_da"),
                                     F32_BF16("axo_lora_delta_db"),    NULL};
static const char *const e_elementwise[] = {F32_BF16("axo_add"),   F32_BF16("axo_mul"),
                                            F32_BF16("axo_scale"), F32_BF16("axo_sigmoid"), F32_BF16("axo_sigmoid_bwd"),
                                            F32_BF16("axo_acc"),
                                            "axo_convert_f32_bf16", "axo_convert_bf16_f32", NULL};
static const char *const e_embedding[] = {F32_BF16("axo_embedding_fwd"), F32_BF16("axo_embedding_bwd"), NULL};
static const char *const e_misc[] = {"axo_fill_u32",      "axo_fill_u16", "axo_acc_f32_bf16",       "axo_acc_bf16_f32",
                                     "axo_clip_coef",     F32_BF16("axo_slice"), F32_BF16("axo_slice_bwd"), NULL};
static const char *const e_moe[] = {F32_BF16("axo_moe_route"),  F32_BF16("axo_moe_route_bwd"), "axo_moe_count",
                                    "axo_moe_fill",               F32_BF16("axo_moe_gemm"),      "axo_moe_gemm_af32_bf16",
                                    F32_BF16("axo_moe_wgrad"),    "axo_moe_wgrad_bf32_bf16",     "axo_moe_gemm_tc_bf16", "axo_moe_gemm_tc_af32_bf16",
                                    "axo_moe_wgrad_tc_bf16",      "axo_moe_wgrad_tc_bf32_bf16",
                                    F32_BF16("axo_moe_lb_rows"),  F32_BF16("axo_moe_lb_stats_bwd"), "axo_moe_lb_loss",
                                    "axo_moe_lb_loss_bwd",     F32_BF16("axo_moe_act"),       F32_BF16("axo_moe_act_bwd"),
                                    F32_BF16("axo_moe_combine"),  F32_BF16("axo_moe_dw"),        F32_BF16("axo_moe_scale"),
                                    F32_BF16("axo_moe_bias"),     F32_BF16("axo_moe_oss_act"),   F32_BF16("axo_moe_oss_act_bwd"),
                                    F32_BF16("axo_moe_colsum"),   F32_BF16("axo_moe_expand"),
                                    NULL};
static const char *const e_quant[] = {F32_BF16("axo_dropout"), F32_BF16("axo_neftune"), F32_BF16("axo_dequant_nf4"),
                                      NULL};
static const char *const e_reduce[] = {F32_BF16("axo_sumsq_partial"), "axo_sumsq_final", NULL};
static const char *const e_rmsnorm[] = {F32_BF16("axo_rmsnorm_fwd"), F32_BF16("axo_rmsnorm_bwd"),
                                        F32_BF16("axo_rmsnorm_dw_reduce"), NULL};
static const char *const e_rope[] = {F32_BF16("axo_rope"), NULL};
static const char *const e_swiglu[] = {F32_BF16("axo_swiglu_fwd"), F32_BF16("axo_swiglu_bwd"), F32_BF16("axo_geglu_fwd"),
                                       F32_BF16("axo_geglu_bwd"), NULL};

#define K(n) {#n, cg_ksrc_##n, e_##n, (int)(AX_ARRAY_LEN(e_##n) - 1)}
/* Name order (the order embed_kernels.cmake lists the files in). */
static const cg_cuda_kernel kernels[] = {
    K(adamw),         K(attention_any), K(attention_blk), K(attention_bwd), K(attention_fwd), K(attention_tc),
    K(bias),          K(cross_entropy), K(dora),          K(elementwise),   K(embedding),     K(misc),
    K(moe),           K(quant),         K(reduce),        K(rmsnorm),       K(rope),          K(swiglu),
};
#undef K

/* Every generated source must be in the table and vice versa. */
#define CG_COUNT_ONE(n) +1
_Static_assert(AX_ARRAY_LEN(kernels) == 0 CG_KERNEL_SOURCE_LIST(CG_COUNT_ONE),
               "codegen/kernels/*.cuh and the table in cuda_kernels.c disagree");

const char *cg_cuda_common_source(void) { return cg_ksrc_common; }

int cg_cuda_kernel_count(void) { return (int)AX_ARRAY_LEN(kernels); }

const cg_cuda_kernel *cg_cuda_kernel_get(int i) {
    return i >= 0 && i < (int)AX_ARRAY_LEN(kernels) ? &kernels[i] : NULL;
}

const cg_cuda_kernel *cg_cuda_kernel_find(const char *name) {
    for (size_t i = 0; name && i < AX_ARRAY_LEN(kernels); i++)
        if (strcmp(kernels[i].name, name) == 0) return &kernels[i];
    return NULL;
}

const cg_cuda_kernel *cg_cuda_kernel_for_entry(const char *entry) {
    for (size_t i = 0; entry && i < AX_ARRAY_LEN(kernels); i++)
        for (int j = 0; j < kernels[i].nentries; j++)
            if (strcmp(kernels[i].entries[j], entry) == 0) return &kernels[i];
    return NULL;
}

const char *cg_cuda_kernel_module_of(void *ctx, const char *entry) {
    (void)ctx;
    const cg_cuda_kernel *k = cg_cuda_kernel_for_entry(entry);
    return k ? k->name : NULL;
}

int cg_cuda_kernel_compile(void *ctx, const char *module, const char *arch, ax_buf *cubin, ax_diag *d) {
    (void)ctx;
    const cg_cuda_kernel *k = cg_cuda_kernel_find(module);
    if (!k) {
        ax_error(d, module, "no such kernel source");
        return -1;
    }
    return cg_nvrtc_compile_cached(NULL, k->name, k->source, arch, NULL, 0, cubin, NULL, NULL, d);
}
