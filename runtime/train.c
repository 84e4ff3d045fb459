/* train.c — sessions, weight loading/init, the training loop, saving. */
#include "runtime/train.h"
#include "runtime/train_internal.h"
#include "ir/quant.h"
#include "runtime/resume.h"

#include "ir/planfile.h"
#include "runtime/data.h"
#include "runtime/prompt.h"
#include "runtime/safetensors.h"
#include "runtime/adapter.h"
#include "runtime/cpu_kernels.h"
#include "runtime/sharded_ckpt.h"
#include "runtime/modeldir.h"
#include "runtime/untrained.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* a whole number of evaluations held as a double: clamped into int64_t (a cast past its range is undefined; Python's
 * comparisons with such a value behave as with the clamped one) */
static int64_t i64_of(double x) {
    return x >= 9.2e18 ? INT64_MAX : x <= -9.2e18 ? -INT64_MAX : isnan(x) ? 0 : (int64_t)x;
}


static int input_buf(rt_buf *b, ir_dtype dt, int rank, const int64_t *dims) { return rt_buf_alloc(b, ir_type_make(dt, rank, dims)); }

int rt_session_from_module(ir_module *m, rt_session *s, ax_diag *d) {
    memset(s, 0, sizeof *s);
    s->m = m;
    const ir_program *ms = ir_program_find(m, "micro_step"), *os = ir_program_find(m, "opt_step"),
                     *es = ir_program_find(m, "eval_step");
    if (!ms) {
        ax_error(d, "plan", "no micro_step program");
        return -1;
    }
    s->mbs = mattr_i(m, "train.micro_batch_size", 1);
    s->L = mattr_i(m, "train.seq_len", 1);
    s->B = mattr_i(m, "train.rows", s->mbs);
    s->S = mattr_i(m, "train.row_len", s->L);
    s->dpo = !strcmp(mattr_s(m, "train.rl", ""), "dpo"); /* a micro-batch of mbs pairs: 2 x mbs rows */
    /* rl: simpo's rows hold sequence_len + 2 tokens (frontend/lower.c fe_token_shape) */
    const int64_t Lr = s->L + (s->dpo && ir_module_attr(m, "train.rl_kind") ? 2 : 0);
    if (s->B < 1 || s->S < 1 || s->L < 1 || s->L > s->S || s->B * s->S != (s->dpo ? 2 : 1) * s->mbs * Lr) {
        ax_error(d, "plan", "micro-batch of %lld rows x %lld tokens does not hold micro_batch_size %lld x sequence_len %lld",
                 (long long)s->B, (long long)s->S, (long long)s->mbs, (long long)s->L);
        return -1;
    }
    s->V = mattr_i(m, "model.vocab", 1);
    s->grad_accum = mattr_i(m, "train.grad_accum", 1);
    s->layers = mattr_i(m, "model.layers", 0);
    s->sp_axis = ir_mesh_find(m, "sp");
    s->sp = s->sp_axis >= 0 ? m->mesh_sizes[s->sp_axis] : 1;
    s->Sl = s->S / (s->sp > 0 ? s->sp : 1);
    const char *lay = mattr_s(m, "sp.layout", "zigzag");
    s->sp_layout = !strcmp(lay, "contiguous") ? RT_SP_CONTIGUOUS : !strcmp(lay, "stripe") ? RT_SP_STRIPE : RT_SP_ZIGZAG;
    if (s->sp > 1 && (s->S % (2 * s->sp) != 0 && s->sp_layout == RT_SP_ZIGZAG)) {
        ax_error(d, "plan", "sequence length %lld cannot be split zigzag over %lld ranks", (long long)s->S, (long long)s->sp);
        return -1;
    }
    if (rt_state_init(&s->st, m, d) || rt_prog_init(&s->micro, m, ms, d)) return -1;
    if (os) {
        if (rt_prog_init(&s->opt, m, os, d)) return -1;
        s->has_opt = 1;
    }
    if (es) {
        if (rt_prog_init(&s->eval, m, es, d)) return -1;
        s->has_eval = 1;
    }
    int64_t bs[2] = {s->B, s->Sl};
    input_buf(&s->in_ids, IR_I32, 2, bs);
    input_buf(&s->in_tgt, IR_I32, 2, bs);
    input_buf(&s->in_pos, IR_I32, 2, bs);
    input_buf(&s->in_seg, IR_I32, 2, bs);
    input_buf(&s->in_idx, IR_I32, 2, bs);
    input_buf(&s->in_loss_scale, IR_F32, 0, NULL);
    input_buf(&s->in_lr, IR_F32, 0, NULL);
    input_buf(&s->in_step, IR_F32, 0, NULL);
    input_buf(&s->in_beta1, IR_F32, 1, (int64_t[]){3});
    for (int i = 0; i < 3; i++) rt_f(&s->in_beta1)[i] = NAN; /* rt_session_set_beta1 sets it */
    input_buf(&s->in_dropout_seed, IR_I32, 0, NULL);
    input_buf(&s->in_neftune_keys, IR_I32, 2, bs);
    input_buf(&s->in_neftune_mag, IR_F32, 0, NULL);
    input_buf(&s->in_max_position, IR_I32, 0, NULL);
    input_buf(&s->in_dpo_ref, IR_F32, 1, (int64_t[]){s->B});
    input_buf(&s->in_dpo_pair_scale, IR_F32, 1, (int64_t[]){s->B / 2 > 0 ? s->B / 2 : 1});
    input_buf(&s->in_dpo_counts, IR_F32, 1, (int64_t[]){s->B});
    input_buf(&s->in_dpo_nll, IR_F32, 1, (int64_t[]){s->B}); /* zeros until rt_session_set_dpo_nll */
    input_buf(&s->in_dpo_ptgt, IR_I32, 2, bs);
    input_buf(&s->in_dpo_atgt, IR_I32, 2, bs);
    input_buf(&s->in_dpo_cmask, IR_F32, 2, bs);
    input_buf(&s->in_dpo_tnll, IR_F32, 2, bs);
    for (int64_t i = 0; i < s->B * s->Sl; i++) rt_i(&s->in_dpo_ptgt)[i] = rt_i(&s->in_dpo_atgt)[i] = -100;
    for (int64_t i = 0; i < s->B; i++) rt_f(&s->in_dpo_ref)[i] = rt_f(&s->in_dpo_counts)[i] = NAN; /* rt_session_set_dpo sets them */
    input_buf(&s->in_aux_mask, IR_F32, 2, bs);
    input_buf(&s->in_aux_scale, IR_F32, 0, NULL);
    s->aux = ir_module_attr(m, "train.router_aux_loss_coef") != NULL;
    s->router_aux_coef = mattr_f(m, "train.router_aux_loss_coef", 0);
    s->aux_mask_ones = (int)mattr_i(m, "train.aux_mask_ones", 0);
    s->neftune = mattr_f(m, "train.neftune_noise_alpha", 0) > 0;
    s->adapter = ir_module_attr(m, "lora.adapter") != NULL;
    return 0;
}

int rt_session_open(const char *plan_path, rt_session *s, ax_diag *d) {
    memset(s, 0, sizeof *s);
    ax_plan_file pf;
    if (ax_plan_read(plan_path, &pf, d) != 0) return -1;
    const ax_plan_section *irs = ax_plan_require(&pf, "IRTX", d);
    if (!irs) {
        ax_plan_close(&pf);
        return -1;
    }
    ir_module *m = ir_parse((const char *)irs->data, irs->size, plan_path, d);
    if (!m || ir_verify(m, d) != 0) {
        ax_error(d, plan_path, "the plan's IR does not parse or verify");
        ir_module_destroy(m);
        ax_plan_close(&pf);
        return -1;
    }
    const ax_plan_section *hf = ax_plan_find(&pf, "HFCF");
    char *cfg = NULL;
    size_t cfg_len = 0;
    if (hf && hf->size) {
        cfg = malloc(hf->size);
        memcpy(cfg, hf->data, hf->size);
        cfg_len = hf->size;
    }
    ax_plan_close(&pf);
    if (rt_session_from_module(m, s, d) != 0) {
        free(cfg);
        return -1;
    }
    s->hf_config = cfg;
    s->hf_config_len = cfg_len;
    return 0;
}

void rt_session_close(rt_session *s) {
    if (!s->m) return;
    rt_plateau_free(&s->plateau);
    if (s->backend) s->backend->destroy(s->backend);
    rt_prog_free(&s->micro);
    if (s->has_opt) rt_prog_free(&s->opt);
    if (s->has_eval) rt_prog_free(&s->eval);
    rt_state_free(&s->st);
    rt_buf *bs[] = {&s->in_ids,        &s->in_tgt, &s->in_pos,  &s->in_seg,         &s->in_idx,
                    &s->in_loss_scale, &s->in_lr,  &s->in_step, &s->in_dropout_seed, &s->in_neftune_keys, &s->in_neftune_mag, &s->in_max_position,
                    &s->in_beta1,      &s->in_dpo_ref, &s->in_dpo_pair_scale, &s->in_dpo_counts, &s->in_aux_mask,
                    &s->in_aux_scale, &s->in_dpo_nll, &s->in_dpo_ptgt, &s->in_dpo_atgt, &s->in_dpo_cmask,
                    &s->in_dpo_tnll};
    for (size_t i = 0; i < AX_ARRAY_LEN(bs); i++) rt_buf_free(bs[i]);
    free(s->hf_config);
    ir_module_destroy(s->m);
    memset(s, 0, sizeof *s);
}

rt_buf *rt_session_global(rt_session *s, const char *name) {
    int g = ir_global_find(s->m, name);
    return g < 0 ? NULL : &s->st.globals[g];
}

/* ---- weights ---------------------------------------------------------------- */
void rt_init_param(const char *name, const char *init, double std, uint64_t seed, float *out, int64_t n) {
    if (!strcmp(init, "ones") || !strcmp(init, "zeros")) {
        float v = init[0] == 'o' ? 1.0f : 0.0f;
        for (int64_t i = 0; i < n; i++) out[i] = v;
        return;
    }
    uint64_t st = seed ^ XXH64(name, strlen(name), 0x61786f00ULL);
    if (!strcmp(init, "uniform")) {
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)(std * (2.0 * (double)(rt_splitmix64(&st) >> 11) / 9007199254740992.0 - 1.0));
        return;
    }
    for (int64_t i = 0; i < n; i += 2) {
        /* Box-Muller on two uniforms in (0,1] from the top 53 bits */
        double u1 = ((double)(rt_splitmix64(&st) >> 11) + 1.0) / 9007199254740992.0;
        double u2 = (double)(rt_splitmix64(&st) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
        out[i] = (float)(std * r * cos(t));
        if (i + 1 < n) out[i + 1] = (float)(std * r * sin(t));
    }
}

/* The input embedding: the text model's embed_tokens (model.embed_tokens.weight, or a multimodal model's
 * model.language_model.embed_tokens.weight) */
static int is_embedding(const ir_module *m, const ir_global *G) {
    const char *tp = mattr_s(m, "model.text_prefix", "model.");
    const size_t k = strlen(tp);
    return G->role == IR_ROLE_PARAM && !strncmp(G->name, tp, k) && !strcmp(G->name + k, "embed_tokens.weight");
}

/* A saved adapter tensor of a multimodal model's vision tower or projector (PEFT's name) */
static int tower_adapter(const char *name) {
    return !strncmp(name, "base_model.model.model.vision_tower.", 36) ||
           !strncmp(name, "base_model.model.model.multi_modal_projector.", 45);
}

static int has_weights(const char *dir) {
    char p[4096];
    if (ax_path_join(p, sizeof p, dir, "model.safetensors") == 0 && ax_file_exists(p)) return 1;
    return ax_path_join(p, sizeof p, dir, "model.safetensors.index.json") == 0 && ax_file_exists(p);
}

/* This rank's block of a global split on dim 0: first row and row count
 * (rows past the tensor's end are padding). Whole tensor when unsplit. */
static void block_of(const rt_session *s, const ir_type *t, int64_t *first, int64_t *rows, int64_t *cap);
void rt_session_block(const rt_session *s, const ir_type *t, int64_t *first, int64_t *rows) {
    int64_t cap;
    block_of(s, t, first, rows, &cap);
}
static void block_of(const rt_session *s, const ir_type *t, int64_t *first, int64_t *rows, int64_t *cap) {
    int64_t d0 = t->rank ? t->dims[0] : 1;
    if (t->shard.axis < 0) {
        *first = 0, *rows = d0, *cap = d0;
        return;
    }
    int64_t n = s->m->mesh_sizes[t->shard.axis], c = rt_block_rows(t, n), r = s->st.coord[t->shard.axis];
    *first = r * c;
    *cap = c;
    *rows = d0 - *first < c ? (d0 - *first > 0 ? d0 - *first : 0) : c;
}

/* Opens DIR/adapter_model.safetensors after checking that DIR's
 * adapter_config.json trained what the plan trains (alpha, rsLoRA; r and
 * the targets are checked tensor by tensor). */
static int open_saved_adapter(const ir_module *m, const char *dir, rt_st_file *f, ax_diag *d) {
    rt_adapter_cfg ac;
    if (rt_adapter_config_read(dir, &ac, d) != 0) return -1;
    double want = mattr_f(m, "lora.alpha", 16);
    int want_rs = (int)mattr_i(m, "lora.rslora", 0);
    if (ac.alpha != want || ac.rslora != want_rs) {
        ax_error(d, dir, "adapter_config.json: lora_alpha %g%s, but the config trains lora_alpha %g%s (lora_model_dir must "
                         "match lora_alpha and peft_use_rslora)", ac.alpha, ac.rslora ? " with rsLoRA" : "", want,
                 want_rs ? " with rsLoRA" : "");
        return -1;
    }
    const int want_fused = (int)mattr_i(m, "lora.gate_up_fused", 0);
    if (ac.gate_up_fused != want_fused) {
        ax_error(d, dir, "adapter_config.json: %s, but the config %s (lora_model_dir must adapt the MoE experts' "
                         "gate_up_proj as the config does)",
                 ac.gate_up_fused ? "rank_pattern doubles the experts' gate_up_proj (PEFT's fusion of gate_proj and "
                                    "up_proj targets)"
                                  : "rank_pattern is empty",
                 want_fused ? "targets gate_proj and up_proj, which PEFT fuses with 2r and 2 lora_alpha"
                            : "does not target gate_proj and up_proj (lora_target_parameters adapts gate_up_proj with r)");
        return -1;
    }
    int want_dora = (int)mattr_i(m, "lora.use_dora", 0);
    if (ac.dora != want_dora) {
        ax_error(d, dir, "adapter_config.json: use_dora %s, but the config has peft_use_dora: %s (lora_model_dir must match "
                         "peft_use_dora)", ac.dora ? "true" : "false", want_dora ? "true" : "false");
        return -1;
    }
    /* trainable tokens: the saved delta's rows are those tokens' (PEFT loads the adapter with its own indices) */
    const ir_attr *tt = ir_module_attr(m, "lora.trainable_token_indices");
    if (tt && tt->kind == IR_ATTR_INTS) {
        int64_t *saved = NULL;
        int n = rt_adapter_token_indices(dir, &saved, d);
        int same = n == tt->n;
        for (int i = 0; same && i < n; i++) same = saved[i] == tt->ints[i];
        free(saved);
        if (n < 0) return -1;
        if (!same) {
            ax_error(d, dir, "adapter_config.json: trainable_token_indices differ from the config's "
                             "peft_trainable_token_indices (lora_model_dir must list the same tokens in the same order)");
            return -1;
        }
    }
    char path[4096];
    if (ax_path_join(path, sizeof path, dir, "adapter_model.safetensors") != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    return rt_st_open(path, f, d);
}

/* This rank's rows of one adapter from a saved adapter file. */
static int load_saved_adapter(const rt_st_file *f, const char *dir, const ir_global *G, const char *hf, int64_t first,
                              int64_t rows, float *dst, char *used, ax_diag *d) {
    const rt_st_tensor *t = rt_st_find(f, hf);
    if (t) used[t - f->tensors] = 1;
    if (!t) {
        ax_error(d, f->path, "lora_model_dir %s has no \"%s\": %s", dir, hf,
                 strstr(hf, "trainable_tokens_delta")
                     ? "the saved adapter trained no tokens (peft_trainable_token_indices must match it)"
                     : "the config adapts a module the saved adapter does not (check lora_target_modules / "
                       "lora_target_linear)");
        return -1;
    }
    int same = t->rank == G->type.rank;
    for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == G->type.dims[i];
    if (!same && G->type.rank == 2 && ir_attr_int(G->attrs, G->nattrs, "adapter", 0) == 1) {
        ax_error(d, f->path, "\"%s\" is [%lld, %lld] but the config's adapter is [%lld, %lld] (%s)", hf, (long long)(t->rank > 0 ? t->shape[0] : 0), (long long)(t->rank > 1 ? t->shape[1] : 0),
                 (long long)G->type.dims[0], (long long)G->type.dims[1],
                 strstr(hf, "trainable_tokens_delta") ? "peft_trainable_token_indices must list as many tokens as the saved "
                                                        "adapter's trainable_token_indices"
                                                      : "lora_r must equal the saved adapter's r");
        return -1;
    }
    if (!same) {
        ax_error(d, f->path, "\"%s\" has another shape than the model's %s (a saved lora_modules_to_save module of another "
                             "model?)", hf, G->name);
        return -1;
    }
    return rows > 0 && rt_st_read_f32_rows(f, t, first, rows, dst, d) != 0 ? -1 : 0;
}

/* A [vocab, hidden] param whose vocab tokens added to the tokenizer resized
 * (frontend/tokcfg.c): this rank's rows [first, first + rows) are the
 * file's where it has them (`file_rows` of them), and past them what
 * transformers' resize_token_embeddings puts there as Axolotl calls it:
 * normal(0, initializer_range), drawn for the whole new block whatever the
 * sharding; or, with mean_resizing_embeddings, the mean of the file's rows
 * (transformers adds noise of covariance 1e-9 x theirs, which axo leaves
 * out). A vocab shrunk (shrink_embeddings) keeps the file's first rows. */
static int load_resized(const ir_global *G, const char *hf, const rt_st_file *f, const rt_st_tensor *t, int64_t frows,
                        int64_t first, int64_t rows, uint64_t seed, double std, float *dst, ax_diag *d) {
    const int64_t V = G->type.dims[0], H = G->type.dims[1];
    const int64_t nf = first >= frows ? 0 : first + rows <= frows ? rows : frows - first;
    if (nf > 0 && rt_st_read_f32_rows(f, t, first, nf, dst, d) != 0) return -1;
    if (nf == rows) return 0;
    float *out = dst + nf * H;
    const int64_t from = first + nf - frows, cnt = rows - nf, nnew = V - frows;
    if (!strcmp(ir_attr_str(G->attrs, G->nattrs, "new_rows", "normal"), "mean")) {
        double *acc = calloc((size_t)H, sizeof *acc);
        const int64_t chunk = 1024;
        float *buf = malloc(sizeof(float) * (size_t)(chunk * H));
        if (!acc || !buf) abort();
        int rc = 0;
        for (int64_t r0 = 0; r0 < frows && !rc; r0 += chunk) {
            int64_t n = frows - r0 < chunk ? frows - r0 : chunk;
            rc = rt_st_read_f32_rows(f, t, r0, n, buf, d);
            for (int64_t i = 0; i < n * H && !rc; i++) acc[i % H] += (double)buf[i];
        }
        for (int64_t i = 0; i < cnt && !rc; i++)
            for (int64_t j = 0; j < H; j++) out[i * H + j] = (float)(acc[j] / (double)frows);
        free(acc);
        free(buf);
        return rc;
    }
    char nm[600];
    snprintf(nm, sizeof nm, "%s#new_rows", hf);
    float *tmp = malloc(sizeof(float) * (size_t)(nnew * H));
    if (!tmp) abort();
    rt_init_param(nm, "normal", std, seed, tmp, nnew * H);
    memcpy(out, tmp + from * H, sizeof(float) * (size_t)(cnt * H));
    free(tmp);
    return 0;
}

/* DoRA: this rank's rows [first, first + rows) of a magnitude vector are
 * the row norms of its base weight (attr norm_of) as the model computes
 * with it: rounded to bf16 for a bf16 weight, dequantized for an NF4 one
 * (PEFT's dequantize_module_weight). The weight precedes the magnitude
 * among the globals, so its values (and codes) are already in place;
 * under ZeRO-3 both are split by rows alike, so the rank holds the rows. */
static int dora_row_norms(rt_session *s, const ir_global *G, int64_t first, int64_t rows, float *dst, ax_diag *d) {
    const ir_module *m = s->m;
    const char *wn = ir_attr_str(G->attrs, G->nattrs, "norm_of", "");
    int wg = ir_global_find(m, wn);
    const ir_global *W = wg >= 0 ? &m->globals[wg] : NULL;
    if (!W || W->type.rank != 2 || G->type.rank != 1 || W->type.dims[0] != G->type.dims[0]) {
        ax_error(d, G->name, "init dora_row_norm: norm_of \"%s\" is not a [%lld, K] weight", wn,
                 (long long)(G->type.rank ? G->type.dims[0] : 0));
        return -1;
    }
    int64_t wfirst, wrows, wcap, K = W->type.dims[1];
    block_of(s, &W->type, &wfirst, &wrows, &wcap);
    if (rows > 0 && (first < wfirst || first + rows > wfirst + wrows)) {
        ax_error(d, G->name, "init dora_row_norm: this rank holds rows %lld..%lld of the magnitude but not of %s",
                 (long long)first, (long long)(first + rows), W->name);
        return -1;
    }
    const float *w = rt_f(&s->st.globals[wg]) + (first - wfirst) * K;
    float *tmp = NULL;
    if (W->type.dtype == IR_NF4) {
        char nm[600];
        snprintf(nm, sizeof nm, "%s.absmax", W->name);
        int ga = ir_global_find(m, nm);
        snprintf(nm, sizeof nm, "%s.rowmax", W->name);
        int gr = ir_global_find(m, nm);
        if (ga < 0 || gr < 0) {
            ax_error(d, W->name, "an nf4 weight without its .absmax and .rowmax globals");
            return -1;
        }
        int64_t nb = (K + 63) / 64;
        tmp = malloc(sizeof(float) * (size_t)(rows * K + 1));
        if (!tmp) abort();
        ck_dequant_nf4_f32(w, rt_f(&s->st.globals[ga]) + (first - wfirst) * nb, rt_f(&s->st.globals[gr]) + (first - wfirst),
                           tmp, rows, K);
        w = tmp;
    }
    /* bf16 weights, and NF4 ones dequantized into bf16 (dequant_nf4 {to} is the compute dtype) */
    const int bf = W->type.dtype == IR_BF16 || (W->type.dtype == IR_NF4 && mattr_i(m, "train.bf16", 0));
    for (int64_t i = 0; i < rows; i++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
            double v = bf ? (double)ax_round_bf16(w[i * K + k]) : (double)w[i * K + k];
            acc += v * v;
        }
        dst[i] = (float)sqrt(acc);
    }
    free(tmp);
    return 0;
}

static int full_param(rt_session *s, int g, float *out, ax_diag *d);

/* init token_rows (peft_trainable_token_indices): this rank's block of delta g is rows `rows` of the param
 * `rows_of`, gathered whole first when it is sharded (every rank calls this, in the same order). */
static int token_rows(rt_session *s, int g, ax_diag *d) {
    const ir_module *m = s->m;
    const ir_global *G = &m->globals[g];
    const char *wn = ir_attr_str(G->attrs, G->nattrs, "rows_of", "");
    const ir_attr *r = ir_attr_find(G->attrs, G->nattrs, "rows");
    const int wg = ir_global_find(m, wn);
    const ir_global *W = wg >= 0 ? &m->globals[wg] : NULL;
    if (!W || !r || r->kind != IR_ATTR_INTS || W->type.rank != 2 || G->type.rank != 2 || G->type.dims[0] != r->n ||
        G->type.dims[1] != W->type.dims[1]) {
        ax_error(d, G->name, "init token_rows: rows_of \"%s\" and rows do not fit this [%lld, %lld] param", wn,
                 (long long)(G->type.rank == 2 ? G->type.dims[0] : 0), (long long)(G->type.rank == 2 ? G->type.dims[1] : 0));
        return -1;
    }
    const int64_t V = W->type.dims[0], H = W->type.dims[1];
    const int sharded = W->type.shard.axis >= 0 && m->mesh_sizes[W->type.shard.axis] > 1;
    float *whole = sharded ? malloc(sizeof(float) * (size_t)(V * H)) : rt_f(&s->st.globals[wg]);
    if (!whole) abort();
    if (sharded && full_param(s, wg, whole, d) != 0) {
        free(whole);
        return -1;
    }
    int64_t first, rows, cap;
    block_of(s, &G->type, &first, &rows, &cap);
    for (int64_t i = 0; i < rows; i++) {
        const int64_t t = r->ints[first + i];
        if (t < 0 || t >= V) {
            ax_error(d, G->name, "init token_rows: row %lld is outside the %lld rows of %s", (long long)t, (long long)V, wn);
            if (sharded) free(whole);
            return -1;
        }
        memcpy(rt_f(&s->st.globals[g]) + i * H, whole + t * H, sizeof(float) * (size_t)H);
    }
    if (sharded) free(whole);
    return 0;
}

/* A copy initialized from param pg (init_from: an f32 master copy) takes this rank's block of it, unrounded. */
static void copy_from_param(rt_session *s, int g, int pg) {
    const ir_type *pt = &s->m->globals[pg].type;
    int64_t first, rows, cap, row_elems = pt->rank && pt->dims[0] ? ir_type_numel(pt) / pt->dims[0] : 1;
    block_of(s, &s->m->globals[g].type, &first, &rows, &cap);
    const float *src = rt_f(&s->st.globals[pg]);
    if (pt->shard.axis < 0) src += first * row_elems; /* whole param: take the block */
    memcpy(s->st.globals[g].data, src, sizeof(float) * (size_t)(rows * row_elems));
}

/* gpt-oss's MXFP4 experts (rt_st_mxfp4_*: transformers' convert_moe_packed_tensors, which Axolotl's
 * Mxfp4Config(dequantize=True) runs): experts first .. first + rows - 1 of the param [E, C, R]. Returns 1 when the
 * checkpoint has no MXFP4 form of the tensor either. */
static int read_mxfp4(const rt_st_model *sm, const ir_global *G, const char *hf, int64_t first, int64_t rows, float *dst,
                      ax_diag *d) {
    const rt_st_file *fb, *fs;
    const rt_st_tensor *tb, *ts;
    int64_t E, C, R;
    const int rc = rt_st_mxfp4_find(sm, hf, &fb, &tb, &fs, &ts, &E, &C, &R, d);
    if (rc) return rc;
    if (E != G->type.dims[0] || C != G->type.dims[1] || R != G->type.dims[2]) {
        ax_error(d, fb->path, "\"%s_blocks\": MXFP4 experts [%lld, %lld, %lld] once dequantized and transposed, where the "
                 "model config expects [%lld, %lld, %lld]", hf, (long long)E, (long long)C, (long long)R,
                 (long long)G->type.dims[0], (long long)G->type.dims[1], (long long)G->type.dims[2]);
        return -1;
    }
    rt_st_mxfp4_dequant(fb, tb, fs, ts, first, rows, dst);
    return 0;
}

int rt_session_init_weights(rt_session *s, const char *model_dir, ax_diag *d) {
    const ir_module *m = s->m;
    if (!model_dir) model_dir = mattr_s(m, "model.dir", ".");
    /* reinit_weights: drawn as for a model without weights (HF's from_config), the files not read */
    int load = has_weights(model_dir) && !mattr_i(m, "model.reinit_weights", 0);
    const int64_t padding_idx = mattr_i(m, "model.padding_idx", -1);
    rt_st_model sm;
    if (load && rt_st_model_open(model_dir, &sm, d) != 0) return -1;
    uint64_t seed = (uint64_t)mattr_i(m, "train.seed", 42);
    double std = mattr_f(m, "model.initializer_range", 0.02);
    int rc = 0;
    /* lora_model_dir: continue a saved adapter instead of fresh ones */
    const char *lora_dir = mattr_s(m, "lora.model_dir", NULL);
    rt_st_file saved;
    int have_saved = 0;
    char *used = NULL;
    if (lora_dir) {
        if (open_saved_adapter(m, lora_dir, &saved, d) != 0) {
            if (load) rt_st_model_close(&sm);
            return -1;
        }
        have_saved = 1;
        used = calloc((size_t)saved.ntensors + 1, 1);
    }
    for (int g = 0; g < m->nglobals && !rc; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM || ir_attr_str(G->attrs, G->nattrs, "quant_part_of", NULL)) continue;
        rt_buf *b = &s->st.globals[g];
        const char *hf = ir_attr_str(G->attrs, G->nattrs, "hf", G->name);
        int64_t first, rows, cap, full = ir_type_numel(&G->type);
        block_of(s, &G->type, &first, &rows, &cap);
        int64_t row_elems = (G->type.rank && G->type.dims[0]) ? full / G->type.dims[0] : 1;
        /* QLoRA: this rank's rows are read (or drawn) in f32, then quantized
         * into the codes and their two scale globals */
        int nf4 = !strcmp(ir_attr_str(G->attrs, G->nattrs, "quant", ""), "nf4");
        float *dst = nf4 ? malloc(sizeof(float) * (size_t)(rows * row_elems + 1)) : rt_f(b);
        /* adapter 1: a LoRA matrix (fresh: drawn); 2: a module of
         * lora_modules_to_save (fresh: the base model's weights) */
        int adapter = (int)ir_attr_int(G->attrs, G->nattrs, "adapter", 0);
        if (adapter && have_saved) {
            rc = load_saved_adapter(&saved, lora_dir, G, ir_attr_str(G->attrs, G->nattrs, "saved_as", hf), first, rows, dst,
                                    used, d);
        } else if (adapter == 1 && !strcmp(ir_attr_str(G->attrs, G->nattrs, "init", ""), "dora_row_norm")) {
            rc = dora_row_norms(s, G, first, rows, dst, d);
        } else if (adapter == 1 && !strcmp(ir_attr_str(G->attrs, G->nattrs, "init", ""), "token_rows")) {
            memset(dst, 0, sizeof(float) * (size_t)(rows * row_elems)); /* set below, once the embedding is in place */
        } else if (!load || adapter == 1) {
            /* the same values whatever the sharding: draw all, keep the block */
            const char *init = ir_attr_str(G->attrs, G->nattrs, "init", "normal");
            float *tmp = malloc(sizeof(float) * (size_t)(full ? full : 1));
            rt_init_param(hf, init,
                          !strcmp(init, "uniform") ? ir_attr_float(G->attrs, G->nattrs, "bound", 0)
                                                   : ir_attr_float(G->attrs, G->nattrs, "std", std), /* gaussian LoRA A: 1/r */
                          seed, tmp, full);
            if (adapter != 1 && padding_idx >= 0 && is_embedding(m, G) && G->type.rank == 2 &&
                padding_idx < G->type.dims[0]) /* HF's init zeroes the Embedding's padding_idx row */
                memset(tmp + padding_idx * row_elems, 0, sizeof(float) * (size_t)row_elems);
            memcpy(dst, tmp + first * row_elems, sizeof(float) * (size_t)(rows * row_elems));
            free(tmp);
        } else if (rt_stacked(G)) { /* an MoE layer's experts: one checkpoint tensor (or two) each */
            rc = rt_stacked_read(&sm, G, first, rows, dst, model_dir, d);
        } else {
            const rt_st_file *f;
            const rt_st_tensor *t = rt_st_model_find(&sm, hf, &f);
            int same = t && t->rank == G->type.rank;
            for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == G->type.dims[i];
            const int64_t frows = ir_attr_int(G->attrs, G->nattrs, "file_rows", 0);
            const int resized = t && !same && frows > 0 && t->rank == 2 && G->type.rank == 2 && t->shape[0] == frows &&
                                t->shape[1] == G->type.dims[1];
            const int mx = !t && ir_attr_int(G->attrs, G->nattrs, "mxfp4", 0) && G->type.rank == 3
                               ? read_mxfp4(&sm, G, hf, first, rows, dst, d)
                               : 1;
            if (mx <= 0) {
                rc = mx;
            } else if (!t) {
                ax_error(d, model_dir, "tensor \"%s\" is missing from the model's safetensors%s", hf,
                         ir_attr_int(G->attrs, G->nattrs, "mxfp4", 0) ? " (nor are its MXFP4 _blocks and _scales)" : "");
                rc = -1;
            } else if (resized) {
                rc = load_resized(G, hf, f, t, frows, first, rows, seed, std, dst, d);
            } else if (!same) {
                char want[96];
                ir_type ft = G->type;
                ft.dtype = IR_F32;
                ax_error(d, f->path, "tensor \"%s\": shape does not match the model config (expected %s)", hf,
                         ir_type_str(m, &ft, want, sizeof want));
                rc = -1;
            } else if (G->type.rank == 0 ? rt_st_read_f32(f, t, dst, d) != 0
                                         : rows > 0 && rt_st_read_f32_rows(f, t, first, rows, dst, d) != 0) {
                rc = -1; /* each rank reads only its own rows (cpu_ram_efficient_loading) */
            }
        }
        if (nf4 && !rc) {
            char nm[600];
            snprintf(nm, sizeof nm, "%s.absmax", G->name);
            int ga = ir_global_find(m, nm);
            snprintf(nm, sizeof nm, "%s.rowmax", G->name);
            int gr = ir_global_find(m, nm);
            if (ga < 0 || gr < 0 || G->type.rank < 2) {
                ax_error(d, G->name, "an nf4 weight without its .absmax and .rowmax globals");
                rc = -1;
            } else { /* rows of K: a stacked expert weight [E, O, I] is E*O rows of I */
                const int64_t K = G->type.dims[G->type.rank - 1], nr = rows * (row_elems / K);
                int64_t bad = -1;
                for (int64_t i = 0; i < nr * K && bad < 0; i++)
                    if (!isfinite(dst[i])) bad = i;
                if (bad >= 0) {
                    ax_error(d, model_dir, "tensor \"%s\" row %lld holds %g: NF4 (load_in_4bit) needs finite weights", hf,
                             (long long)(first * (row_elems / K) + bad / K), (double)dst[bad]);
                    rc = -1;
                } else {
                    ck_nf4_quantize(dst, nr, K, rt_f(b), rt_f(&s->st.globals[ga]), rt_f(&s->st.globals[gr]));
                }
            }
        }
        if (nf4) free(dst);
    }
    if (load) rt_st_model_close(&sm);
    for (int i = 0; have_saved && !rc && i < saved.ntensors; i++)
        if (!used[i] && !(ir_module_attr(m, "model.text_prefix") && tower_adapter(saved.tensors[i].name))) {
            /* (a multimodal model's tower adapters are carried into the saved adapters: tower_adapters) */
            ax_error(d, saved.path, "\"%s\" of lora_model_dir %s adapts a module this config does not target "
                                    "(lora_target_modules / lora_target_linear must cover the saved adapter)",
                     saved.tensors[i].name, lora_dir);
            rc = -1;
        }
    free(used);
    if (have_saved) rt_st_close(&saved);
    if (rc) return -1;
    /* f32 master copies take the unrounded values (this rank's block of the
     * param, which may itself be whole); then working copies are rounded to
     * their storage dtype. */
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        const char *from = ir_attr_str(G->attrs, G->nattrs, "init_from", NULL);
        if (!from) continue;
        int pg = ir_global_find(m, from);
        if (pg < 0) {
            ax_error(d, G->name, "init_from names no global \"%s\"", from);
            return -1;
        }
        copy_from_param(s, g, pg);
    }
    for (int g = 0; g < m->nglobals; g++)
        if (m->globals[g].type.dtype == IR_BF16)
            for (int64_t i = 0; i < s->st.globals[g].numel; i++)
                rt_f(&s->st.globals[g])[i] = ax_round_bf16(rt_f(&s->st.globals[g])[i]);
    /* trainable tokens: a fresh delta is its rows of the embedding as stored (rounded above), PEFT's
     * weight[indices].clone(); a continued adapter's came from lora_model_dir */
    for (int g = 0; !lora_dir && g < m->nglobals; g++)
        if (!strcmp(ir_attr_str(m->globals[g].attrs, m->globals[g].nattrs, "init", ""), "token_rows") &&
            token_rows(s, g, d) != 0)
            return -1;
    /* and the f32 master copies taken from a delta above (ZeRO-1/2, offload_param) take its rows too */
    for (int g = 0; !lora_dir && g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        const char *from = ir_attr_str(G->attrs, G->nattrs, "init_from", NULL);
        int pg = from ? ir_global_find(m, from) : -1;
        if (pg >= 0 && !strcmp(ir_attr_str(m->globals[pg].attrs, m->globals[pg].nattrs, "init", ""), "token_rows"))
            copy_from_param(s, g, pg);
    }
    return 0;
}

/* ---- stacked parameters (runtime/train.h) ---------------------------------- */
int rt_stacked(const ir_global *G) {
    const int64_t E = ir_attr_int(G->attrs, G->nattrs, "stack", 0);
    return E > 0 && G->type.rank == 3 && G->type.dims[0] == E ? (int)E : 0;
}

int rt_stacked_parts(const ir_global *G) { return ir_attr_str(G->attrs, G->nattrs, "hf2", NULL) ? 2 : 1; }

int rt_stacked_part(const ir_global *G, int64_t e, int p, char *name, size_t cap, int64_t shape[2], int64_t *at) {
    const char *pat = ir_attr_str(G->attrs, G->nattrs, p ? "hf2" : "hf", "");
    const char *star = strchr(pat, '*');
    const int np = rt_stacked_parts(G);
    if (!rt_stacked(G) || !star || p < 0 || p >= np || G->type.dims[1] % np) return -1;
    snprintf(name, cap, "%.*s%lld%s", (int)(star - pat), pat, (long long)e, star + 1);
    shape[0] = G->type.dims[1] / np;
    shape[1] = G->type.dims[2];
    *at = e * G->type.dims[1] * G->type.dims[2] + p * shape[0] * shape[1];
    return 0;
}

int rt_stacked_match(const ir_global *G, const char *name) {
    if (!rt_stacked(G)) return 0;
    for (int p = 0; p < rt_stacked_parts(G); p++) {
        const char *pat = ir_attr_str(G->attrs, G->nattrs, p ? "hf2" : "hf", ""), *star = strchr(pat, '*');
        if (!star) continue;
        const size_t pre = (size_t)(star - pat), post = strlen(star + 1), len = strlen(name);
        if (len <= pre + post || strncmp(name, pat, pre) || strcmp(name + len - post, star + 1)) continue;
        const char *dg = name + pre, *end = name + len - post;
        int digits = dg < end;
        for (const char *c = dg; c < end; c++) digits &= *c >= '0' && *c <= '9';
        if (digits && strtoll(dg, NULL, 10) < rt_stacked(G)) return 1;
    }
    return 0;
}

int rt_stacked_read(const rt_st_model *sm, const ir_global *G, int64_t first, int64_t rows, float *dst, const char *where,
                    ax_diag *d) {
    const rt_st_file *f;
    const int64_t slab = G->type.dims[1] * G->type.dims[2];
    const rt_st_tensor *t = rt_st_model_find(sm, G->name, &f);
    /* transformers 5's own layout: the stacked tensor under its module name, or under the checkpoint's prefix (what
     * it re-saves a Mixtral as: block_sparse_moe.experts.gate_up_proj) */
    const char *whole = ir_attr_str(G->attrs, G->nattrs, "hf_stacked", NULL);
    if (!t && whole) t = rt_st_model_find(sm, whole, &f);
    if (t) {
        if (t->rank != 3 || t->shape[0] != G->type.dims[0] || t->shape[1] != G->type.dims[1] || t->shape[2] != G->type.dims[2]) {
            ax_error(d, f->path, "tensor \"%s\": expected [%lld, %lld, %lld] (the experts stacked)", t->name,
                     (long long)G->type.dims[0], (long long)G->type.dims[1], (long long)G->type.dims[2]);
            return -1;
        }
        return rows > 0 ? rt_st_read_f32_rows(f, t, first, rows, dst, d) : 0;
    }
    for (int64_t e = first; e < first + rows; e++)
        for (int p = 0; p < rt_stacked_parts(G); p++) {
            char name[512];
            int64_t shape[2], at;
            if (rt_stacked_part(G, e, p, name, sizeof name, shape, &at) != 0) {
                ax_error(d, G->name, "a stacked parameter without its checkpoint names (attrs stack, hf)");
                return -1;
            }
            t = rt_st_model_find(sm, name, &f);
            if (!t) {
                ax_error(d, where, "tensor \"%s\" is missing from the model's safetensors (nor is there \"%s\", the experts "
                         "stacked)", name, G->name);
                return -1;
            }
            if (t->rank != 2 || t->shape[0] != shape[0] || t->shape[1] != shape[1]) {
                ax_error(d, f->path, "tensor \"%s\": shape does not match the model config (expected [%lld, %lld])", name,
                         (long long)shape[0], (long long)shape[1]);
                return -1;
            }
            if (rt_st_read_f32(f, t, dst + (at - first * slab), d) != 0) return -1;
        }
    return 0;
}

/* ---- steps ------------------------------------------------------------------ */
static const rt_buf *session_input(void *ctx, const char *name) {
    rt_session *s = ctx;
    if (!strcmp(name, "input_ids")) return &s->in_ids;
    if (!strcmp(name, "targets")) return &s->in_tgt;
    if (!strcmp(name, "position_ids")) return &s->in_pos;
    if (!strcmp(name, "seq_ids")) return &s->in_seg;
    if (!strcmp(name, "token_idx")) return &s->in_idx;
    if (!strcmp(name, "loss_scale")) return &s->in_loss_scale;
    if (!strcmp(name, "lr")) return &s->in_lr;
    if (!strcmp(name, "step")) return &s->in_step;
    if (!strcmp(name, "beta1")) return &s->in_beta1;
    if (!strcmp(name, "dropout_seed")) return &s->in_dropout_seed;
    if (!strcmp(name, "neftune_keys")) return &s->in_neftune_keys;
    if (!strcmp(name, "neftune_mag")) return &s->in_neftune_mag;
    if (!strcmp(name, "max_position")) return &s->in_max_position;
    if (!strcmp(name, "dpo_ref")) return &s->in_dpo_ref;
    if (!strcmp(name, "dpo_pair_scale")) return &s->in_dpo_pair_scale;
    if (!strcmp(name, "dpo_row_tokens")) return &s->in_dpo_counts;
    if (!strcmp(name, "dpo_row_nll")) return &s->in_dpo_nll;
    if (!strcmp(name, "dpo_prompt_targets")) return &s->in_dpo_ptgt;
    if (!strcmp(name, "dpo_all_targets")) return &s->in_dpo_atgt;
    if (!strcmp(name, "dpo_completion_mask")) return &s->in_dpo_cmask;
    if (!strcmp(name, "dpo_token_nll")) return &s->in_dpo_tnll;
    if (!strcmp(name, "aux_mask")) return &s->in_aux_mask;
    if (!strcmp(name, "aux_scale")) return &s->in_aux_scale;
    return NULL;
}

int64_t rt_sp_token_index(int layout, int64_t S, int64_t sp, int64_t r, int64_t t) {
    if (sp <= 1) return t;
    int64_t n = S / sp, c = S / (2 * sp);
    switch (layout) {
    case RT_SP_CONTIGUOUS: return r * n + t;
    case RT_SP_STRIPE: return t * sp + r;
    default: return t < c ? r * c + t : (2 * sp - 1 - r) * c + (t - c);
    }
}

/* This rank's tokens of a [B, S] micro-batch into the [B, Sl] inputs. A row's sequence ids never decrease (its
 * packed sequences in order, each padding token its own): the attention kernels skip the key tiles before a
 * query tile's first sequence by it (runtime/cpu_kernels_impl.h, codegen/kernels/attention_*.cuh). */
static int feed_rows(rt_session *s, const int32_t *ids, const int32_t *targets, const int32_t *pos, const int32_t *seg,
                     ax_diag *d) {
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 1; t < s->S; t++)
            if (seg[b * s->S + t] < seg[b * s->S + t - 1]) {
                ax_error(d, "runtime", "sequence ids of row %lld decrease at token %lld (%d after %d): a row holds its "
                         "packed sequences in order", (long long)b, (long long)t, (int)seg[b * s->S + t],
                         (int)seg[b * s->S + t - 1]);
                return -1;
            }
    int64_t r = s->sp_axis >= 0 ? s->st.coord[s->sp_axis] : 0;
    int32_t maxp = 0; /* over the whole micro-batch, before sequence parallelism splits its rows */
    for (int64_t i = 0; i < s->B * s->S; i++) maxp = pos[i] > maxp ? pos[i] : maxp;
    rt_i(&s->in_max_position)[0] = s->max_position_set ? s->max_position_value : maxp;
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 0; t < s->Sl; t++) {
            int64_t j = rt_sp_token_index(s->sp_layout, s->S, s->sp, r, t), src = b * s->S + j, dst = b * s->Sl + t;
            rt_i(&s->in_ids)[dst] = ids[src];
            rt_i(&s->in_tgt)[dst] = targets[src];
            rt_i(&s->in_pos)[dst] = pos[src];
            rt_i(&s->in_seg)[dst] = seg[src];
            rt_i(&s->in_idx)[dst] = (int32_t)j;
            /* without the caller's weights: every row one sequence and its padding (each padding token its own
             * sequence id after the row's first), HF's 1 / 0 attention_mask of unpacked rows */
            if (s->aux) rt_f(&s->in_aux_mask)[dst] = s->aux_mask_rows ? s->aux_mask_rows[src] : seg[src] == seg[b * s->S] ? 1.0f : 0.0f;
        }
    return 0;
}

void rt_aux_mask(const rt_rows *rows, const int64_t *row_of, int64_t B, const int32_t *seg, int ones, float *mask) {
    const int64_t S = rows->seq_len;
    for (int64_t b = 0; b < B; b++) {
        const int64_t r = row_of[b], ns = r >= 0 ? rows->row_seq_off[r + 1] - rows->row_seq_off[r] : 0;
        for (int64_t t = 0; t < S; t++) {
            const int32_t sid = seg[b * S + t];
            mask[b * S + t] = sid >= 0 && sid < ns ? (ones ? 1.0f : (float)(sid + 1)) : 0.0f;
        }
    }
}

uint32_t rt_neftune_key(uint64_t seed, int64_t step, int64_t row, int64_t j) {
    uint64_t k = seed ^ 0x6e656674756e65ull; /* "neftune": apart from the other streams of the seed */
    k = rt_splitmix64(&k) + (uint64_t)step;
    k = rt_splitmix64(&k) + (uint64_t)row;
    k = rt_splitmix64(&k) + (uint64_t)j;
    return (uint32_t)(rt_splitmix64(&k) >> 32);
}

/* The keys of this micro step's local tokens (in_idx: each one's index in its row). */
float rt_neftune_mag(double alpha, int64_t width, int64_t hidden) {
    const float dims = (float)(width * hidden); /* torch.tensor(int) -> sqrt in the default float32 */
    return (1.0f / sqrtf(dims)) * (float)alpha; /* a Python float over a tensor: its reciprocal times the float. The
                                                 * sqrt correctly rounded: torch's where its MKL sqrt is (its AVX2
                                                 * path); its AVX-512 and SSE paths differ by 1 ulp at some sizes */
}

int64_t rt_neftune_width(const rt_rows *rows, const int64_t *r, int64_t n, int64_t multiple, int flatten) {
    int64_t longest = 0, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (r[i] < 0) continue;
        int64_t len = 0;
        for (int64_t q = rows->row_seq_off[r[i]]; q < rows->row_seq_off[r[i] + 1]; q++) len += rows->seqs[q].len;
        if (len > longest) longest = len;
        sum += len;
    }
    if (flatten) return sum; /* batch_flattening: the micro-batch's tokens as one row, no padding */
    if (multiple < 1) multiple = 1;
    return (longest + multiple - 1) / multiple * multiple;
}

static void neftune_keys(rt_session *s, int64_t micro) {
    int dpx = ir_mesh_find(s->m, "dp");
    int64_t ga = s->grad_accum > 0 ? s->grad_accum : 1, r = dpx >= 0 ? s->st.coord[dpx] : 0;
    int64_t step = micro / ga, row0 = (r * ga + micro % ga) * s->B;
    uint64_t seed = (uint64_t)mattr_i(s->m, "train.seed", 42);
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 0; t < s->Sl; t++)
            rt_i(&s->in_neftune_keys)[b * s->Sl + t] =
                (int32_t)rt_neftune_key(seed, step, row0 + b, rt_i(&s->in_idx)[b * s->Sl + t]);
}

int rt_session_micro_step(rt_session *s, const int32_t *ids, const int32_t *targets, const int32_t *pos,
                          const int32_t *seg, float loss_scale, ax_diag *d) {
    if (feed_rows(s, ids, targets, pos, seg, d) != 0) return -1;
    rt_f(&s->in_loss_scale)[0] = loss_scale;
    if (s->neftune) {
        neftune_keys(s, s->micro_count);
        rt_f(&s->in_neftune_mag)[0] = rt_neftune_mag(mattr_f(s->m, "train.neftune_noise_alpha", 0),
                                                     s->neftune_width > 0 ? s->neftune_width : s->S,
                                                     mattr_i(s->m, "model.hidden", 1));
    }
    /* LoRA dropout: a new mask every micro step, and another on every rank
     * (each holds other tokens), as torch's per-process RNG gives */
    uint64_t k = (uint64_t)mattr_i(s->m, "train.seed", 42) * 0x9e3779b97f4a7c15ull + (uint64_t)s->micro_count++;
    for (int a = 0; a < s->m->nmesh; a++) k = k * 1000003u + (uint64_t)s->st.coord[a];
    rt_i(&s->in_dropout_seed)[0] = (int32_t)(uint32_t)(rt_splitmix64(&k) >> 32);
    if (s->backend) return s->backend->run(s->backend, s->micro.p, session_input, s, d);
    return rt_prog_run(&s->micro, &s->st, session_input, s, d);
}

int rt_session_eval_step(rt_session *s, const int32_t *ids, const int32_t *targets, const int32_t *pos,
                         const int32_t *seg, ax_diag *d) {
    if (!s->has_eval) {
        ax_error(d, "plan", "no eval_step program (the plan was compiled without val_set_size)");
        return -1;
    }
    if (feed_rows(s, ids, targets, pos, seg, d) != 0) return -1;
    rt_f(&s->in_loss_scale)[0] = 0.0f; /* a fused loss's input gradient: unused here */
    if (s->backend) return s->backend->run(s->backend, s->eval.p, session_input, s, d);
    return rt_prog_run(&s->eval, &s->st, session_input, s, d);
}

void rt_session_set_dpo(rt_session *s, const float *ref, const float *pair_scale, const float *counts) {
    memcpy(rt_f(&s->in_dpo_ref), ref, sizeof(float) * (size_t)s->B);
    memcpy(rt_f(&s->in_dpo_pair_scale), pair_scale, sizeof(float) * (size_t)(s->B / 2));
    for (int64_t i = 0; i < s->B; i++) rt_f(&s->in_dpo_counts)[i] = counts ? counts[i] : 1.0f;
}

void rt_session_set_dpo_nll(rt_session *s, const float *nll) {
    memcpy(rt_f(&s->in_dpo_nll), nll, sizeof(float) * (size_t)s->B);
}

void rt_session_set_dpo_orpo(rt_session *s, const int32_t *prompt_targets, const int32_t *all_targets,
                             const float *completion_mask, const float *token_nll) {
    const size_t n = (size_t)(s->B * s->Sl);
    memcpy(rt_i(&s->in_dpo_ptgt), prompt_targets, sizeof(int32_t) * n);
    memcpy(rt_i(&s->in_dpo_atgt), all_targets, sizeof(int32_t) * n);
    memcpy(rt_f(&s->in_dpo_cmask), completion_mask, sizeof(float) * n);
    memcpy(rt_f(&s->in_dpo_tnll), token_nll, sizeof(float) * n);
}

int rt_session_opt_step(rt_session *s, float lr, int64_t step, ax_diag *d) {
    if (!s->has_opt) {
        ax_error(d, "plan", "no opt_step program");
        return -1;
    }
    rt_f(&s->in_lr)[0] = lr;
    rt_f(&s->in_step)[0] = (float)step;
    if (s->backend) return s->backend->run(s->backend, s->opt.p, session_input, s, d);
    return rt_prog_run(&s->opt, &s->st, session_input, s, d);
}

void rt_session_set_beta1(rt_session *s, double x) {
    axo_beta1_split(x, rt_f(&s->in_beta1));
}

static double dflt(double v, double d) { return isnan(v) ? d : v; }

/* OneCycleLR's _annealing_cos / _annealing_linear, in its order of operations */
static double oc_anneal(int linear, double start, double end, double pct) {
    if (linear) return (end - start) * pct + start;
    const double c = cos(3.141592653589793 * pct) + 1.0;
    return end + (start - end) / 2.0 * c;
}

int rt_one_cycle_at(const rt_lr_sched *s, double base_lr, int64_t step0, double *lr, double *beta1, char *why,
                    size_t cap) {
    const double N = (double)s->total;
    const double pct = isnan(s->oc_pct_start) ? (double)s->warmup / N : s->oc_pct_start;
    *lr = *beta1 = NAN;
    if (s->total <= 0) {
        snprintf(why, cap, "torch's OneCycleLR needs a positive total_steps, found %lld", (long long)s->total);
        return -1;
    }
    if (!(pct >= 0 && pct <= 1)) {
        snprintf(why, cap, "pct_start %.17g (%s) is outside [0, 1], which torch's OneCycleLR refuses", pct,
                 isnan(s->oc_pct_start) ? "the warmup steps over the run's steps" : "lr_scheduler_kwargs.pct_start");
        return -1;
    }
    if (step0 > s->total) {
        snprintf(why, cap, "step %lld is past the schedule's %lld steps", (long long)step0, (long long)s->total);
        return -1;
    }
    const double init = base_lr / s->oc_div_factor, min = init / s->oc_final_div_factor;
    const double hi_m = s->oc_max_momentum, lo_m = s->oc_base_momentum;
    /* the phases: end step, lr from -> to, momentum from -> to */
    double end[3], l0[3], l1[3], m0[3], m1[3];
    int np;
    if (s->oc_three_phase) {
        np = 3;
        end[0] = pct * N - 1.0, l0[0] = init, l1[0] = base_lr, m0[0] = hi_m, m1[0] = lo_m;
        end[1] = 2.0 * pct * N - 2.0, l0[1] = base_lr, l1[1] = init, m0[1] = lo_m, m1[1] = hi_m;
        end[2] = N - 1.0, l0[2] = init, l1[2] = min, m0[2] = hi_m, m1[2] = hi_m;
    } else {
        np = 2;
        end[0] = pct * N - 1.0, l0[0] = init, l1[0] = base_lr, m0[0] = hi_m, m1[0] = lo_m;
        end[1] = N - 1.0, l0[1] = base_lr, l1[1] = min, m0[1] = lo_m, m1[1] = hi_m;
    }
    const double t = (double)step0;
    double start = 0.0;
    for (int i = 0; i < np; i++) {
        if (t <= end[i] || i == np - 1) {
            if (end[i] - start == 0.0) {
                snprintf(why, cap, "torch's OneCycleLR divides by zero at step %lld: its phase %d runs from step %g to "
                         "step %g (pct_start %.17g of %lld steps)", (long long)step0, i + 1, start, end[i], pct,
                         (long long)s->total);
                return -1;
            }
            const double f = (t - start) / (end[i] - start);
            *lr = oc_anneal(s->oc_anneal_linear, l0[i], l1[i], f);
            if (s->oc_cycle_momentum) *beta1 = oc_anneal(s->oc_anneal_linear, m0[i], m1[i], f);
            return 0;
        }
        start = end[i];
    }
    return -1; /* not reached: the last phase takes every step */
}

double rt_lr_sched_at(const rt_lr_sched *s, double base_lr, int64_t step0) {
    const double pi = 3.141592653589793, t = (double)step0, W = (double)s->warmup, N = (double)s->total;
    const char *n = s->name;
    if (!strcmp(n, "constant")) return base_lr; /* HF's get_constant_schedule: the warmup is not used */
    if (!strcmp(n, "one_cycle")) {
        double lr, b1;
        char why[8];
        return rt_one_cycle_at(s, base_lr, step0, &lr, &b1, why, sizeof why) == 0 ? lr : NAN;
    }
    if (!strcmp(n, "reduce_lr_on_plateau")) return base_lr; /* until an evaluation lowers it (rt_plateau_step) */
    if (!strcmp(n, "rex")) { /* Axolotl's RexLR: its constructor's step makes step t's lr its get_lr() at t + 1 */
        const double u = t + 1.0, ratio = dflt(s->cosine_min_lr_ratio, 0.0), after = u - W, rem = N - W;
        if (u >= 1.0 && u <= W) return base_lr * u / W;
        if (after >= rem || after == -1.0 || rem <= 0) return base_lr * ratio;
        const double z = (rem - fmod(after, rem)) / rem;
        return base_lr * (ratio + (1.0 - ratio) * (z / (0.1 + 0.9 * z)));
    }
    if (!strcmp(n, "cosine_warmup_with_min_lr")) { /* HF: warmup from (t + 1) / W, the cosine one step ahead */
        const double mr = dflt(s->min_lr_rate, 0.0), wr = s->warmup_lr_rate;
        if (t < W) return base_lr * (isnan(wr) ? (t + 1.0) / fmax(1.0, W) : wr + (1.0 - wr) * t / fmax(1.0, W - 1.0));
        const double pr = (t - W + 1.0) / fmax(1.0, N - W), f = 0.5 * (1.0 + cos(pi * dflt(s->num_cycles, 0.5) * 2.0 * pr));
        return base_lr * fmax(0.0, f * (1.0 - mr) + mr);
    }
    if (!strcmp(n, "warmup_stable_decay")) { /* HF's get_wsd_schedule */
        const double mr = dflt(s->min_lr_ratio, 0.0), D = s->num_decay_steps;
        const double S = isnan(s->num_stable_steps) ? N - W - D : s->num_stable_steps;
        const char *wt = s->warmup_type ? s->warmup_type : "linear", *dt = s->decay_type ? s->decay_type : "cosine";
        if (t < W) {
            const double pr = t / fmax(1.0, W);
            const double f = !strcmp(wt, "linear") ? pr : !strcmp(wt, "cosine") ? 0.5 * (1.0 - cos(pi * pr)) : 1.0 - sqrt(1.0 - pr);
            return base_lr * fmax(0.0, f * (1.0 - mr) + mr);
        }
        if (t < W + S) return base_lr;
        if (t < W + S + D) {
            const double pr = (t - W - S) / fmax(1.0, D);
            const double f = !strcmp(dt, "linear") ? 1.0 - pr
                             : !strcmp(dt, "cosine") ? 0.5 * (1.0 + cos(pi * dflt(s->num_cycles, 0.5) * 2.0 * pr))
                                                     : 1.0 - sqrt(pr);
            return base_lr * fmax(0.0, f * (1.0 - mr) + mr);
        }
        return base_lr * mr;
    }
    double warm = t / fmax(1.0, W);              /* every other schedule's linear warmup */
    double progress = (t - W) / fmax(1.0, N - W);
    if (!strcmp(n, "cosine")) {
        double r = s->cosine_min_lr_ratio, c = s->cosine_constant_lr_ratio;
        if (s->quadratic_warmup) /* Axolotl: get_cosine_schedule_with_quadratic_warmup, before min lr */
            return base_lr * (t < W ? warm * warm : fmax(0.0, 0.5 * (1.0 + cos(pi * 0.5 * 2.0 * progress))));
        if (t < W) return base_lr * warm;
        if (!isnan(r) && r != 0 && !isnan(c) && c != 0) { /* Axolotl: warmup, cosine to r by c x total, then r */
            double nc = (double)(int64_t)(N * c), cur = fmin(t, nc), pr = (cur - W) / fmax(1.0, nc - W);
            return base_lr * (fmax(0.0, (1.0 - r) * 0.5 * (1.0 + cos(pi * 0.5 * 2.0 * pr))) + r);
        }
        if (!isnan(r) && r != 0) return base_lr * ((1.0 - r) * 0.5 * (1.0 + cos(pi * progress)) + r); /* Axolotl's min lr */
        return base_lr * fmax(0.0, 0.5 * (1.0 + cos(pi * dflt(s->num_cycles, 0.5) * 2.0 * progress)));
    }
    if (t < W) return base_lr * warm;
    if (!strcmp(n, "constant_with_warmup")) return base_lr;
    if (!strcmp(n, "linear")) return base_lr * fmax(0.0, (N - t) / fmax(1.0, N - W));
    if (!strcmp(n, "cosine_with_restarts")) {
        if (progress >= 1.0) return 0.0;
        return base_lr * fmax(0.0, 0.5 * (1.0 + cos(pi * fmod(dflt(s->num_cycles, 1.0) * progress, 1.0))));
    }
    if (!strcmp(n, "polynomial")) {
        double end = dflt(s->lr_end, 1e-7), power = dflt(s->power, 1.0);
        if (t > N) return end; /* lr_end / lr_init, times lr_init */
        return (base_lr - end) * pow(1.0 - (t - W) / (N - W), power) + end;
    }
    if (!strcmp(n, "inverse_sqrt")) {
        double ts = dflt(s->timescale, W > 0 ? W : 10000.0);
        return base_lr / sqrt((t + (ts - W)) / ts);
    }
    if (!strcmp(n, "cosine_with_min_lr")) {
        double f = 0.5 * (1.0 + cos(pi * dflt(s->num_cycles, 0.5) * 2.0 * progress)), mr = dflt(s->min_lr_rate, 0.0);
        return base_lr * fmax(0.0, f * (1.0 - mr) + mr);
    }
    return NAN; /* a name the frontend does not let through */
}

void rt_plateau_free(rt_plateau *p) {
    free(p->win);
    p->win = NULL;
    p->nwin = p->win_cap = p->win_head = 0;
    p->win_sum = 0;
}

void rt_plateau_init(rt_plateau *p, const rt_plateau_opts *o, double lr) {
    p->win = NULL, p->nwin = p->win_cap = p->win_head = 0, p->win_sum = 0;
    p->best = o->mode_max ? -INFINITY : INFINITY;
    p->lr = p->init_lr = lr;
    p->bad = p->cooldown_counter = 0;
    p->good = p->warmup_counter = 0;
    p->reset_left = o->reset_start;
}

/* greedy's smoothing window: append a metric as StreamingAverage.streamavg does (the oldest dropped past
 * o->window); returns the mean (NAN, the window unchanged, when it could not grow). */
static double window_push(rt_plateau *p, const rt_plateau_opts *o, double a) {
    if (p->nwin < o->window && p->nwin == p->win_cap) { /* grown as evaluations come, up to the window */
        int64_t nc = p->win_cap ? p->win_cap * 2 : 16;
        if (nc > o->window) nc = o->window;
        double *w = realloc(p->win, sizeof *w * (size_t)nc);
        if (!w) return NAN;
        p->win = w, p->win_cap = nc;
    }
    p->win_sum += a; /* values.append; sum += value; then, past the window, sum -= values.pop(0) */
    if (p->nwin < o->window) {
        p->win[p->nwin++] = a; /* win_head stays 0 until the window is full */
    } else {
        p->win_sum -= p->win[p->win_head];
        p->win[p->win_head] = a;
        p->win_head = (p->win_head + 1) % p->nwin;
    }
    return p->win_sum / (double)p->nwin;
}

/* GreedyLR.step(metric), in its order: the smoothed metric, cooldown then warmup, then better or not */
static int greedy_step(rt_plateau *p, const rt_plateau_opts *o, double a) {
    const double lr0 = p->lr;
    if (o->smooth) {
        const int64_t n0 = p->nwin;
        a = window_push(p, o, a);
        if (p->nwin == n0 && n0 < o->window) return -1; /* no memory for the window */
    }
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--, p->bad = 0, p->good = 0;
    } else if (p->warmup_counter > 0) {
        p->warmup_counter--, p->bad = 0, p->good = 0;
    } else {
        const double b = p->best;
        const int better = o->mode_max ? (o->thr_abs ? a > b + o->threshold : a > b * (1.0 + o->threshold))
                                       : (o->thr_abs ? a < b - o->threshold : a < b * (1.0 - o->threshold));
        if (better) p->best = a, p->bad = 0, p->good++;
        else p->bad++, p->good = 0;
        if (p->good > o->patience) { /* _increase_lr */
            const double nl = fmin(p->lr / o->factor, o->max_lr);
            if (nl - p->lr > o->eps) p->lr = nl;
            p->reset_left = o->reset_start;
            p->warmup_counter = o->warmup, p->good = 0;
        } else if (p->bad > o->patience) { /* _reduce_lr */
            const double nl = fmax(p->lr * o->factor, o->min_lr);
            if (p->lr - nl > o->eps) p->lr = nl;
            if (!(p->lr > o->min_lr) && --p->reset_left <= 0) { /* _reset */
                p->lr = p->init_lr;
                p->best = o->mode_max ? -INFINITY : INFINITY;
                p->bad = p->good = p->cooldown_counter = p->warmup_counter = 0;
                p->reset_left = o->reset_start;
                rt_plateau_free(p); /* a new StreamingAverage */
            }
            p->cooldown_counter = o->cooldown, p->bad = 0;
        }
    }
    return p->lr != lr0;
}

int rt_plateau_step(rt_plateau *p, const rt_plateau_opts *o, double a) {
    if (o->greedy) return greedy_step(p, o, a);
    const double b = p->best;
    const int better = o->mode_max ? (o->thr_abs ? a > b + o->threshold : a > b * (o->threshold + 1.0))
                                   : (o->thr_abs ? a < b - o->threshold : a < b * (1.0 - o->threshold));
    if (better) p->best = a, p->bad = 0;
    else p->bad++;
    if (p->cooldown_counter > 0) p->cooldown_counter--, p->bad = 0; /* bad evaluations in cooldown do not count */
    if (p->bad <= o->patience) return 0;
    p->cooldown_counter = o->cooldown, p->bad = 0;
    const double nl = fmax(p->lr * o->factor, o->min_lr);
    if (!(p->lr - nl > o->eps)) return 0;
    p->lr = nl;
    return 1;
}

double rt_lr_at(const char *sched, double base_lr, int64_t warmup, int64_t total, int64_t step) {
    rt_lr_sched s = {.name = sched, .warmup = warmup, .total = total, .num_cycles = NAN, .power = NAN, .lr_end = NAN,
                     .timescale = NAN, .min_lr_rate = NAN, .cosine_min_lr_ratio = NAN, .cosine_constant_lr_ratio = NAN,
                     .warmup_lr_rate = NAN, .num_decay_steps = NAN, .num_stable_steps = NAN, .min_lr_ratio = NAN,
                     .oc_pct_start = NAN, .oc_div_factor = 25.0, .oc_final_div_factor = 1e4, .oc_base_momentum = 0.85,
                     .oc_max_momentum = 0.95, .oc_cycle_momentum = 1};
    return rt_lr_sched_at(&s, base_lr, step);
}

/* With a device backend the device holds the current globals: copy one
 * (b, a global's host buffer) up or down. No-op without a backend. */
int rt_train_push(rt_session *s, const rt_buf *b, ax_diag *d) {
    return s->backend && b ? s->backend->upload(s->backend, &s->st, (int)(b - s->st.globals), d) : 0;
}
int rt_train_pull(rt_session *s, const rt_buf *b, ax_diag *d) {
    return s->backend && b ? s->backend->download(s->backend, &s->st, (int)(b - s->st.globals), d) : 0;
}

/* ---- saving ------------------------------------------------------------------ */
static int dp_axis(const rt_session *s) { return ir_mesh_find(s->m, "dp"); }
static int is_rank0(const rt_session *s) {
    for (int a = 0; a < s->m->nmesh; a++)
        if (s->st.coord[a]) return 0;
    return 1;
}
int rt_session_is_rank0(const rt_session *s) { return is_rank0(s); }

/* a JSON number, or null for NaN/inf (a diverged loss stays valid JSON) */
static const char *jnum(char *b, size_t cap, const char *fmt, double v) {
    if (!isfinite(v)) return "null";
    snprintf(b, cap, fmt, v);
    return b;
}

void rt_log_line(char *buf, size_t cap, int64_t step, int64_t epoch, double loss, double grad_norm, double lr,
                 double tokens_per_s) {
    char a[40], g[40], l[40], t[40];
    snprintf(buf, cap, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %s, \"grad_norm\": %s, \"lr\": %s, \"tokens_per_s\": %s}\n",
             (long long)step, (long long)epoch, jnum(a, sizeof a, "%.6g", loss), jnum(g, sizeof g, "%.6g", grad_norm),
             jnum(l, sizeof l, "%.6g", lr), jnum(t, sizeof t, "%.1f", tokens_per_s));
}

/* Whole value of param global g into out (numel floats): a copy, or an
 * all_gather of the blocks (every rank must call it, in the same order). */
static int full_param(rt_session *s, int g, float *out, ax_diag *d) {
    const ir_global *G = &s->m->globals[g];
    const rt_buf *b = &s->st.globals[g];
    int64_t full = ir_type_numel(&G->type);
    if (G->type.shard.axis < 0 || s->m->mesh_sizes[G->type.shard.axis] == 1) {
        memcpy(out, b->data, sizeof(float) * (size_t)full);
        return 0;
    }
    int64_t n = s->m->mesh_sizes[G->type.shard.axis];
    float *tmp = malloc(sizeof(float) * (size_t)(b->numel * n));
    int rc = s->st.coll->all_gather(s->st.coll->ctx, G->type.shard.axis, rt_f(b), tmp, b->numel);
    if (!rc) memcpy(out, tmp, sizeof(float) * (size_t)full);
    else ax_error(d, G->name, "gathering the parameter for saving failed");
    free(tmp);
    return rc ? -1 : 0;
}

/* What a save writes: every param, or only the adapters of a LoRA plan. */
static int saved_param(const rt_session *s, const ir_global *G) {
    return G->role == IR_ROLE_PARAM && (!s->adapter || ir_attr_int(G->attrs, G->nattrs, "adapter", 0));
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Is the module "model.layers.<N>...." (the text model's) in a layer of lora.layers_to_transform
 * (lt; always when there is none)? */
static int in_layers_given(const ir_module *m, const ir_attr *lt, const char *module) {
    if (!lt || lt->kind != IR_ATTR_INTS || lt->n <= 0) return 1;
    const char *tp = mattr_s(m, "model.text_prefix", "model.");
    const size_t k = strlen(tp);
    if (strncmp(module, tp, k) || strncmp(module + k, "layers.", 7)) return 0;
    char *end;
    long long n = strtoll(module + k + 7, &end, 10);
    if (end == module + k + 7 || *end != '.') return 0;
    for (int i = 0; i < lt->n; i++)
        if (lt->ints[i] == n) return 1;
    return 0;
}

/* PEFT's adapter_config.json for what the plan trained (module attrs lora.*),
 * so PeftModel.from_pretrained(base, dir) loads the adapter. */
/* lora_model_dir's adapters of a multimodal model's vision tower and projector (an Axolotl / PEFT adapter whose
 * targets matched the tower's linears too): axo does not train them (text never reaches the tower) and carries
 * them unchanged into every adapter it saves. The count (0: *f left closed), or -1 with d filled. */
static int tower_adapters(const ir_module *m, rt_st_file *f, rt_st_out **out, ax_diag *d) {
    memset(f, 0, sizeof *f);
    *out = NULL;
    const char *dir = mattr_s(m, "lora.model_dir", NULL);
    char path[4096];
    if (!dir || !ir_module_attr(m, "model.text_prefix")) return 0;
    if (ax_path_join(path, sizeof path, dir, "adapter_model.safetensors") != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (rt_st_open(path, f, d) != 0) return -1;
    rt_st_out *o = calloc((size_t)f->ntensors + 1, sizeof *o);
    int n = 0;
    for (int i = 0; i < f->ntensors; i++) {
        const rt_st_tensor *t = &f->tensors[i];
        if (tower_adapter(t->name))
            o[n++] = (rt_st_out){.name = t->name, .dtype = t->dtype, .rank = t->rank, .shape = t->shape,
                                 .data = rt_st_data(f, t)};
    }
    *out = o;
    return n;
}

/* names joined by commas (as module attrs hold them) -> a JSON list of them */
static json_t *json_names(const char *joined) {
    json_t *v = json_array();
    for (const char *p = joined, *e; *p; p = *e ? e + 1 : e) {
        e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        json_array_append_new(v, json_stringn(p, (size_t)(e - p)));
    }
    return v;
}

/* tower: the adapters carried from lora_model_dir (tower_adapters): target_modules then names every adapted module,
 * the tower's among them, so that PEFT wraps exactly those and loads them as the saved adapter had them */
static char *adapter_config_json(const rt_session *s, const rt_st_out *tower, int ntower) {
    const ir_module *m = s->m;
    json_t *o = json_object();
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    /* the Hub repo id when the base came from the Hub, as PEFT writes it, and the commit trained on as its
     * revision (axoc merge-lora resolves both again) */
    json_object_set_new(o, "base_model_name_or_path",
                        json_string(mattr_s(m, "model.hub_id", mattr_s(m, "model.dir", ""))));
    const char *rev = mattr_s(m, "model.hub_revision", NULL);
    json_object_set_new(o, "revision", rev ? json_string(rev) : json_null());
    json_object_set_new(o, "r", json_integer(mattr_i(m, "lora.r", 8)));
    double alpha = mattr_f(m, "lora.alpha", 16);
    json_object_set_new(o, "lora_alpha", alpha == floor(alpha) && fabs(alpha) < 1e15 ? json_integer((json_int_t)alpha)
                                                                                      : json_real(alpha));
    json_object_set_new(o, "lora_dropout", json_real(mattr_f(m, "lora.dropout", 0)));
    json_object_set_new(o, "use_rslora", json_boolean(mattr_i(m, "lora.rslora", 0)));
    json_object_set_new(o, "use_dora", json_boolean(mattr_i(m, "lora.use_dora", 0)));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "inference_mode", json_true());
    const char *init = mattr_s(m, "lora.init", NULL); /* peft_init_lora_weights */
    json_object_set_new(o, "init_lora_weights",
                        !init ? json_true() : !strcmp(init, "false") ? json_false() : json_string(init));
    /* target_modules as PEFT matches them: a layer type's name (q_proj)
     * where every decoder layer has that adapter (every layer of
     * layers_to_transform, when given: PEFT then adapts the name in those
     * only), else each full module name (model.layers.1.mlp.down_proj,
     * adapted whatever layers_to_transform says), so PEFT adapts exactly
     * these */
    int64_t layers = mattr_i(m, "model.layers", 0);
    const ir_attr *lt = ir_module_attr(m, "lora.layers_to_transform");
    if (lt && lt->kind == IR_ATTR_INTS && lt->n > 0) { /* the distinct layers given (all in range) */
        layers = 0;
        for (int i = 0; i < lt->n; i++) {
            int dup = 0;
            for (int j = 0; j < i; j++) dup |= lt->ints[j] == lt->ints[i];
            layers += !dup;
        }
        json_t *lv;
        if (mattr_i(m, "lora.layers_to_transform_int", 0)) {
            lv = json_integer((json_int_t)lt->ints[0]);
        } else {
            lv = json_array();
            for (int i = 0; i < lt->n; i++) json_array_append_new(lv, json_integer((json_int_t)lt->ints[i]));
        }
        json_object_set_new(o, "layers_to_transform", lv);
    } else {
        json_object_set_new(o, "layers_to_transform", json_null());
    }
    const char *lp = mattr_s(m, "lora.layers_pattern", NULL);
    if (lp && *lp && mattr_i(m, "lora.layers_pattern_str", 0)) {
        json_object_set_new(o, "layers_pattern", json_string(lp));
    } else if (lp && *lp) { /* names joined by commas */
        json_t *pv = json_names(lp);
        json_object_set_new(o, "layers_pattern", pv);
    } else {
        json_object_set_new(o, "layers_pattern", json_null());
    }
    const char **mods = calloc((size_t)m->nglobals + 1, sizeof *mods);
    int nm = 0;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        size_t n = strlen(G->name);
        if (ir_attr_int(G->attrs, G->nattrs, "adapter", 0) && n > 14 && !strcmp(G->name + n - 14, ".lora_A.weight") &&
            !ir_attr_str(G->attrs, G->nattrs, "param_target", NULL)) /* (ParamWrapper's: target_parameters below) */
            mods[nm++] = G->name;
    }
    char **names = calloc((size_t)nm + 1, sizeof *names);
    int nn = 0;
    char buf[1024];
    for (int i = 0; i < nm; i++) {
        size_t n = strlen(mods[i]) - 14;
        const char *e = mods[i] + n, *b = e;
        while (b > mods[i] && b[-1] != '.') b--;
        int same = 0, first = 1, outside = 0;
        for (int j = 0; j < nm; j++) { /* adapters of this layer type; is i the first of them? */
            size_t nj = strlen(mods[j]) - 14, k = (size_t)(e - b);
            if (nj >= k + 1 && mods[j][nj - k - 1] == '.' && !strncmp(mods[j] + nj - k, b, k)) {
                same++;
                if (j < i) first = 0;
                outside += !in_layers_given(m, lt, mods[j]);
            }
        }
        /* the type's name: one adapter in each layer (of those given), none elsewhere */
        int by_type = same == layers && !outside;
        if (by_type && first) snprintf(buf, sizeof buf, "%.*s", (int)(e - b), b);
        else if (!by_type) snprintf(buf, sizeof buf, "%.*s", (int)n, mods[i]);
        else continue;
        names[nn++] = strdup(buf);
    }
    qsort(names, (size_t)nn, sizeof *names, cmp_strp);
    json_t *tm = json_array();
    for (int i = 0; i < nn; i++) {
        json_array_append_new(tm, json_string(names[i]));
        free(names[i]);
    }
    free(names);
    if (ntower) {
        /* with the tower's adapters carried: exactly the adapted modules, as one regex PEFT fullmatches (the layer
         * types would also match the tower's modules without adapters, and exclude_modules the carried ones) */
        ax_buf rx = {0};
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < (pass ? ntower : nm); i++) {
                const char *t = pass ? tower[i].name + strlen("base_model.model.") : mods[i];
                size_t n = strlen(t);
                if (n < 15 || strcmp(t + n - 14, ".lora_A.weight")) continue;
                ax_buf_puts(&rx, rx.len ? "|" : "(?:");
                for (size_t c = 0; c < n - 14; c++) ax_buf_printf(&rx, "%s%c", t[c] == '.' ? "\\" : "", t[c]);
            }
        ax_buf_puts(&rx, ")");
        json_decref(tm);
        tm = json_string(rx.data);
        ax_buf_free(&rx);
    }
    free(mods);
    json_object_set_new(o, "target_modules", tm);
    /* the MoE routers' and experts' weights adapted as parameters (PEFT's ParamWrapper), and the rank and alpha PEFT
     * doubled where it fused gate_proj and up_proj into gate_up_proj */
    const char *tp = mattr_s(m, "lora.target_parameters", NULL);
    if (tp && *tp) {
        json_t *pv = json_names(tp);
        json_object_set_new(o, "target_parameters", pv);
    }
    json_t *rp = json_object(), *ap = json_object();
    if (mattr_i(m, "lora.gate_up_fused", 0)) {
        json_object_set_new(rp, RT_GATE_UP_PATTERN, json_integer(2 * mattr_i(m, "lora.r", 8)));
        json_object_set_new(ap, RT_GATE_UP_PATTERN, alpha == floor(alpha) && fabs(alpha) < 1e14
                                                        ? json_integer((json_int_t)(2 * alpha))
                                                        : json_real(2 * alpha));
    }
    json_object_set_new(o, "rank_pattern", rp);
    json_object_set_new(o, "alpha_pattern", ap);
    /* a multimodal model (Gemma 3, Mistral 3): axo adapts its language model only (the vision tower never runs on text), so PEFT
     * must not wrap the tower's own q_proj, v_proj, ... when it loads this adapter */
    if (ir_module_attr(m, "model.text_prefix") && !ntower)
        json_object_set_new(o, "exclude_modules", json_string("model\\.(vision_tower|multi_modal_projector)\\..*"));
    const char *save = mattr_s(m, "lora.modules_to_save", NULL);
    if (save && *save) { /* the names as the config gave them: PEFT matches them as it did when training */
        json_t *sv = json_names(save);
        json_object_set_new(o, "modules_to_save", sv);
    } else {
        json_object_set_new(o, "modules_to_save", json_null());
    }
    const ir_attr *tt = ir_module_attr(m, "lora.trainable_token_indices");
    if (tt && tt->kind == IR_ATTR_INTS) { /* a list: PEFT applies it to the input embedding (and a tied lm_head) */
        json_t *ta = json_array();
        for (int i = 0; i < tt->n; i++) json_array_append_new(ta, json_integer(tt->ints[i]));
        json_object_set_new(o, "trainable_token_indices", ta);
    }
    char *txt = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(o);
    return txt;
}

/* The adapter's two files go in together: both are written under temp
 * names, then renamed one right after the other, so a failed save never
 * leaves new weights beside an old adapter_config.json (another r or alpha). */
static int write_adapter_files(rt_session *s, const char *dir, const rt_st_out *outs, int k, ax_diag *d) {
    char w[4096], c[4096], wt[4200], ct[4200];
    if (ax_path_join(w, sizeof w, dir, "adapter_model.safetensors") != 0 ||
        ax_path_join(c, sizeof c, dir, "adapter_config.json") != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    snprintf(wt, sizeof wt, "%s.tmp-%ld", w, (long)getpid());
    snprintf(ct, sizeof ct, "%s.tmp-%ld", c, (long)getpid());
    rt_st_file tf;
    rt_st_out *tower = NULL, *all = NULL;
    int nt = tower_adapters(s->m, &tf, &tower, d);
    if (nt < 0) return -1;
    all = calloc((size_t)(k + nt) + 1, sizeof *all);
    if (!all) abort();
    memcpy(all, outs, sizeof *outs * (size_t)k);
    if (nt) memcpy(all + k, tower, sizeof *tower * (size_t)nt);
    char *js = adapter_config_json(s, tower, nt);
    int rc = rt_st_write(wt, all, k + nt, d) != 0 || ax_write_file_atomic(ct, js, strlen(js), d) != 0 ? -1 : 0;
    free(js);
    free(all);
    free(tower);
    rt_st_close(&tf);
    if (!rc && (rename(ct, c) != 0 || rename(wt, w) != 0)) {
        ax_error(d, dir, "cannot rename the adapter files into place: %s", strerror(errno));
        rc = -1;
    }
    unlink(wt);
    unlink(ct);
    return rc;
}

int rt_train_carried(const ir_module *m, rt_st_model *bm, rt_st_out **out, ax_diag *d) {
    memset(bm, 0, sizeof *bm);
    *out = NULL;
    const char *dir = mattr_s(m, "model.dir", NULL);
    if (!mattr_i(m, "model.carry", 0)) return 0; /* a multimodal model whose weights axoc found, not drawn anew */
    if (!dir || !has_weights(dir)) {
        ax_error(d, dir ? dir : "model.dir", "the base model's weights are gone: the vision tower and projector the saved "
                 "model must carry cannot be read (nothing is written)");
        return -1;
    }
    if (rt_st_model_open(dir, bm, d) != 0) return -1;
    const char **read = calloc((size_t)m->nglobals + 1, sizeof *read);
    int nread = 0, n = 0;
    for (int g = 0; g < m->nglobals; g++)
        if (m->globals[g].role == IR_ROLE_PARAM)
            read[nread++] = ir_attr_str(m->globals[g].attrs, m->globals[g].nattrs, "hf", m->globals[g].name);
    qsort(read, (size_t)nread, sizeof *read, cmp_strp);
    rt_st_out *o = calloc((size_t)bm->nentries + 1, sizeof *o);
    for (int e = 0; e < bm->nentries; e++) {
        const rt_st_entry *E = &bm->entries[e];
        size_t len = strlen(E->name);
        int stacked = 0;
        for (int g = 0; g < m->nglobals && !stacked; g++) stacked = rt_stacked_match(&m->globals[g], E->name);
        if (stacked || bsearch(&E->name, read, (size_t)nread, sizeof *read, cmp_strp) ||
            (len >= 14 && !strcmp(E->name + len - 14, "lm_head.weight")))
            continue;
        o[n++] = (rt_st_out){.name = E->name, .dtype = E->tensor->dtype, .rank = E->tensor->rank,
                             .shape = E->tensor->shape, .data = rt_st_data(&bm->shards[E->shard], E->tensor)};
    }
    free(read);
    *out = o;
    return n;
}

/* FULL_STATE_DICT: every rank joins the gathers, rank 0 writes into dir
 * (dir NULL: gather only, e.g. when rank 0 already knows it cannot write). */
int rt_train_write_model(rt_session *s, const char *dir, ax_diag *d) {
    const ir_module *m = s->m;
    int np = 0, nout = 0;
    for (int g = 0; g < m->nglobals; g++)
        if (m->globals[g].role == IR_ROLE_PARAM) {
            np++;
            nout += rt_stacked(&m->globals[g]) ? rt_stacked(&m->globals[g]) * rt_stacked_parts(&m->globals[g]) : 1;
        }
    const char *wfile = s->adapter ? "adapter_model.safetensors" : "model.safetensors";
    rt_st_out *outs = calloc((size_t)nout + 1, sizeof *outs);
    void **bufs = calloc((size_t)np + 1, sizeof *bufs);
    int64_t(*pshape)[2] = calloc((size_t)nout + 1, sizeof *pshape); /* the experts' parts' shapes */
    char **pname = calloc((size_t)nout + 1, sizeof *pname);
    int k = 0, nb = 0, rc = 0;
    for (int g = 0; g < m->nglobals && !rc; g++) /* a backend's parameters are the current ones */
        if (saved_param(s, &m->globals[g])) rc = rt_train_pull(s, &s->st.globals[g], d);
    for (int g = 0; g < m->nglobals && !rc; g++) {
        const ir_global *G = &m->globals[g];
        if (!saved_param(s, G)) continue;
        int64_t n = ir_type_numel(&G->type);
        float *full = malloc(sizeof(float) * (size_t)(n ? n : 1));
        rc = full_param(s, g, full, d);
        rt_st_out *o = &outs[k];
        o->name = ir_attr_str(G->attrs, G->nattrs, "hf", G->name);
        if (s->adapter) o->name = ir_attr_str(G->attrs, G->nattrs, "saved_as", o->name); /* modules_to_save: PEFT's key */
        o->rank = G->type.rank;
        o->shape = G->type.dims;
        if (G->type.dtype == IR_BF16) {
            uint16_t *h = malloc(sizeof *h * (size_t)(n ? n : 1));
            for (int64_t i = 0; i < n; i++) h[i] = ax_f32_to_bf16(full[i]);
            free(full);
            o->dtype = rt_st_dtype_parse("BF16");
            o->data = bufs[nb++] = h;
        } else {
            o->dtype = rt_st_dtype_parse("F32");
            o->data = bufs[nb++] = full;
        }
        if (rt_stacked(G) && !s->adapter) { /* each expert's parts under the checkpoint's names, pointing into the buffer */
            const rt_st_out whole = *o;
            const size_t es = G->type.dtype == IR_BF16 ? 2 : 4;
            for (int64_t e = 0; e < rt_stacked(G) && !rc; e++)
                for (int p = 0; p < rt_stacked_parts(G) && !rc; p++) {
                    char nm[512];
                    int64_t at;
                    rc = rt_stacked_part(G, e, p, nm, sizeof nm, pshape[k], &at);
                    outs[k] = whole;
                    outs[k].name = pname[k] = strdup(nm);
                    outs[k].rank = 2;
                    outs[k].shape = pshape[k];
                    outs[k].data = (const char *)whole.data + (size_t)at * es;
                    k++;
                }
            continue;
        }
        k++;
    }
    char path[4096];
    /* the tokenizer beside the weights (HF Trainer saves it too), with the config's chat template */
    if (!rc && dir && is_rank0(s))
        rc = rt_modeldir_copy_tokenizer(mattr_s(m, "io.tokenizer_dir", NULL), dir, !s->adapter,
                                        mattr_s(m, "io.chat_template", NULL), mattr_s(m, "io.tokenizer", NULL), d);
    if (!rc && dir && is_rank0(s) && s->adapter) {
        rc = write_adapter_files(s, dir, outs, k, d);
    } else if (!rc && dir && is_rank0(s)) {
        /* a multimodal model's vision tower and projector, unchanged from the base */
        rt_st_model bm;
        rt_st_out *carried = NULL;
        int nc = rt_train_carried(m, &bm, &carried, d);
        rt_st_out *all = nc > 0 ? realloc(outs, sizeof *outs * (size_t)(k + nc + 1)) : outs;
        if (all) outs = all;
        for (int i = 0; all && i < nc; i++) outs[k + i] = carried[i];
        if (nc < 0 || !all) {
            rc = -1;
        } else if (ax_path_join(path, sizeof path, dir, wfile) != 0) {
            ax_error(d, dir, "path too long");
            rc = -1;
        } else {
            rc = rt_st_write(path, outs, k + nc, d);
        }
        free(carried);
        rt_st_model_close(&bm);
        if (!rc && s->hf_config) {
            rc = ax_path_join(path, sizeof path, dir, "config.json") != 0 ||
                 ax_write_file_atomic(path, s->hf_config, s->hf_config_len, d) != 0;
        }
    }
    for (int i = 0; i < nb; i++) free(bufs[i]);
    for (int i = 0; i < k; i++) free(pname[i]);
    free(bufs);
    free(pname);
    free(pshape);
    free(outs);
    return rc;
}

int rt_session_save(rt_session *s, const char *dir, int overwrite, ax_diag *d) {
    if (!is_rank0(s)) return rt_train_write_model(s, dir, d); /* joins the gathers */
    int exists;
    char tmp[4096];
    if (rt_modeldir_begin(dir, overwrite, (long)getpid(), tmp, sizeof tmp, &exists, d) != 0) {
        rt_train_write_model(s, NULL, d); /* the other ranks still gather */
        return -1;
    }
    if (rt_train_write_model(s, tmp, d) != 0) {
        rt_modeldir_remove(tmp);
        return -1;
    }
    return rt_modeldir_publish(tmp, dir, exists, d);
}

/* ---- the training loop -------------------------------------------------------- */
double rt_train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int rank_in_world(const rt_session *s) {
    int r = 0;
    for (int a = 0; a < s->m->nmesh; a++) r = r * (int)s->m->mesh_sizes[a] + s->st.coord[a];
    return r;
}

/* All ranks agree: returns nonzero everywhere if any rank's `bad` is set. */
int rt_session_world_sum(rt_session *s, float *v, int n) {
    for (int a = 0; a < s->m->nmesh; a++) /* over every axis in turn: a sum over the product mesh */
        if (s->m->mesh_sizes[a] > 1 && (!s->st.coll || s->st.coll->all_reduce(s->st.coll->ctx, a, v, n) != 0)) return -1;
    return 0;
}

int rt_session_any_rank(rt_session *s, int bad) {
    float f = bad ? 1.0f : 0.0f;
    if (rt_session_world_sum(s, &f, 1) != 0) return 1;
    return f > 0;
}

void rt_eval_log_line(char *buf, size_t cap, int64_t step, int64_t epoch, double eval_loss, int64_t tokens) {
    char a[40];
    snprintf(buf, cap, "{\"step\": %lld, \"epoch\": %lld, \"eval_loss\": %s, \"eval_tokens\": %lld}\n",
             (long long)step, (long long)epoch, jnum(a, sizeof a, "%.6g", eval_loss), (long long)tokens);
}

/* One evaluation's line on stdout (out NULL: quiet; tty: clear the progress
 * bar first) and in train_log.jsonl and the checkpoints' log history. */
static void report_eval(FILE *out, int tty, FILE *log, ax_buf *hist, int64_t step, int64_t epoch, double el, int64_t etok) {
    if (out) {
        if (tty) fputs("\r\033[K", out);
        fprintf(out, "eval step %lld | epoch %lld | eval_loss %.4f | %lld tokens\n", (long long)step, (long long)epoch, el,
                (long long)etok);
    }
    if (log) {
        char line[256];
        rt_eval_log_line(line, sizeof line, step, epoch, el, etok);
        fputs(line, log);
        fflush(log);
        ax_buf_puts(hist, line);
    }
}

/* The held-out rows through eval_step (passes/eval.c): micro_step's forward
 * with dropout off, as torch's eval mode and no_grad give. It writes only
 * the loss sum, so training is untouched. A plan without eval_step
 * (compiled before it existed) falls back to micro_step with loss scale 0:
 * the backward adds exact zeros to gradients opt_step has just zeroed, the
 * dropout counter is put back, but dropout stays on.
 *
 * eval_loss is HF Trainer's: the rows go in order in batches of
 * eval_batch_size (E) rows, rank r taking batches r, r + nranks, ... as
 * accelerate shards them; each batch's loss is the token mean over that
 * batch (the model's loss without num_items_in_batch), and eval_loss is the
 * mean over rows of their batch's loss (HF repeats each batch loss
 * batch_size times, gathers, keeps the dataset's length of them and
 * averages). Packed, a batch is Axolotl's multipack batch (E = B rows).
 *
 * top_up (several ranks, accelerate's even_batches): accelerate fills a last
 * batch short of E rows with the rows the first rounds began with (row i of
 * the top-up is row i mod min(rows, nranks x E)), so its loss is the token
 * mean over those too, while it still counts as its own rows (the repeats
 * are what gather_for_metrics cuts); the rounds' other padding batches are
 * cut whole and not run. The top-up is run as the distinct rows it repeats,
 * times their count, so an eval_batch_size far past the eval set costs
 * only the set.
 *
 * A batch is ceil(rows / R) eval_step calls of R rows (B, or
 * micro_batch_size unpacked rows in a one-bin micro-batch), the last one
 * padded; its loss sum is read after them. Calls past a batch's last row
 * would be all padding, so a batch takes only the calls its rows need: E
 * may be far larger than the eval set. A batch without a token to predict is
 * left out (HF would report nan). Every rank runs the same number of calls
 * (those of its round's first batch, the fullest, and of the top-up), so
 * collectives stay matched. *ntok is the number of tokens predicted (the
 * rows', not the top-up's repeats). */
typedef struct eval_ctx {
    rt_session *s;
    const rt_rows *er;
    int64_t R, Lr;
    int32_t *ids, *tgt, *pos, *seg;
    rt_buf *loss_sum;
    rt_buf *lb_stats; /* output_router_logits: the routers' summed stats of a call (@stats/lb_stats), or NULL */
    float *auxm;      /* ... and its tokens' weights, HF's attention_mask (rt_aux_mask) */
} eval_ctx;

/* `calls` eval_step calls over rows [lo, lo + n) (fewer than the calls hold: padding rows after them); the loss
 * sum they add into *sum and their predicted tokens into *cnt; with the routers' load-balancing stats, their sums
 * into lb (2E + 1). */
static int eval_span(eval_ctx *x, int64_t lo, int64_t n, int64_t calls, double *sum, int64_t *cnt, double *lb,
                     ax_diag *d) {
    rt_session *s = x->s;
    const rt_rows *er = x->er;
    const int64_t R = x->R, Lr = x->Lr, S = s->S, BS = s->B * s->S;
    if (x->loss_sum) rt_f(x->loss_sum)[0] = 0;
    int rc = rt_train_push(s, x->loss_sum, d);
    const float *saved_mask = s->aux_mask_rows;
    for (int64_t c = 0; c < calls && rc == 0; c++) {
        if (x->auxm) { /* HF's attention_mask as the eval collator fills it: a packed row's n-th sequence n, padding 0 */
            for (int64_t b = 0; b < R; b++) {
                const int64_t k = c * R + b, r = k < n ? lo + k : -1;
                const int64_t ns = r >= 0 ? er->row_seq_off[r + 1] - er->row_seq_off[r] : 0;
                for (int64_t t = 0; t < Lr; t++) {
                    const int32_t sid = r >= 0 ? er->seq_ids[r * Lr + t] : -1;
                    x->auxm[b * Lr + t] = sid >= 0 && sid < ns ? (s->aux_mask_ones ? 1.0f : (float)(sid + 1)) : 0.0f;
                }
            }
            s->aux_mask_rows = x->auxm;
        }
        for (int64_t b = 0; b < R; b++) {
            const int64_t k = c * R + b, r = lo + k;
            const size_t o = (size_t)(b * Lr);
            const int32_t so = (int32_t)(o % (size_t)S); /* a row's sequence ids after those before it in the bin */
            if (k < n) {
                memcpy(x->ids + o, er->input_ids + r * Lr, sizeof(int32_t) * (size_t)Lr);
                memcpy(x->tgt + o, er->targets + r * Lr, sizeof(int32_t) * (size_t)Lr);
                memcpy(x->pos + o, er->position_ids + r * Lr, sizeof(int32_t) * (size_t)Lr);
                for (int64_t t = 0; t < Lr; t++) x->seg[o + t] = so + er->seq_ids[r * Lr + t];
            } else { /* a row of padding: every token its own sequence, nothing to predict */
                for (int64_t t = 0; t < Lr; t++)
                    x->ids[o + t] = 0, x->tgt[o + t] = RT_IGNORE_INDEX, x->pos[o + t] = 0, x->seg[o + t] = so + (int32_t)t;
            }
        }
        for (int64_t i = 0; i < BS; i++) *cnt += x->tgt[i] != RT_IGNORE_INDEX;
        rc = s->has_eval ? rt_session_eval_step(s, x->ids, x->tgt, x->pos, x->seg, d)
                         : rt_session_micro_step(s, x->ids, x->tgt, x->pos, x->seg, 0.0f, d);
        if (rc == 0 && lb && x->lb_stats) {
            rc = rt_train_pull(s, x->lb_stats, d);
            for (int64_t i = 0; rc == 0 && i < x->lb_stats->numel; i++) lb[i] += (double)rt_f(x->lb_stats)[i];
        }
    }
    s->aux_mask_rows = saved_mask;
    if (rc == 0 && rt_train_pull(s, x->loss_sum, d) != 0) rc = -1;
    if (rc == 0) *sum += x->loss_sum ? (double)rt_f(x->loss_sum)[0] : NAN;
    return rc;
}

/* longrope on unpacked eval rows (rope_mult > 0, the collator's pad multiple): HF's largest position over the whole
 * eval batch, rows [lo, lo + n) and [0, n2) (accelerate's top-up), is its padded width - 1, whatever calls axo
 * splits the batch into */
static void eval_max_position(rt_session *s, const rt_rows *er, int64_t lo, int64_t n, int64_t n2, int64_t rope_mult) {
    if (rope_mult <= 0) return;
    int64_t *r = malloc(sizeof(int64_t) * (size_t)(n + n2 + 1));
    if (!r) abort();
    for (int64_t i = 0; i < n; i++) r[i] = lo + i;
    for (int64_t i = 0; i < n2; i++) r[n + i] = i;
    const int64_t w = rt_neftune_width(er, r, n + n2, rope_mult, 0);
    free(r);
    s->max_position_set = 1;
    s->max_position_value = (int32_t)(w > 0 ? w - 1 : 0);
}

static int run_eval(rt_session *s, const rt_rows *er, int64_t E, int64_t nranks, int64_t rank, int dp, int top_up,
                    int64_t rope_mult, double *loss, int64_t *ntok, ax_diag *d) {
    /* R rows of Lr tokens an eval_step call: B rows of S, or, where a micro-batch is one bin and the eval rows are
     * unpacked rows of sequence_len, micro_batch_size of them side by side in the bin, each its own sequences */
    const int64_t B = s->B, S = s->S, Lr = er->seq_len, R = B * S / Lr;
    if (Lr < 1 || Lr > S || (B * S) % Lr) {
        ax_error(d, "eval", "evaluation rows of %lld tokens do not fit a micro-batch of %lld x %lld", (long long)Lr,
                 (long long)B, (long long)S);
        return -1;
    }
    if (E < 1) E = R;
    const int64_t nbatch = (er->nrows + E - 1) / E, per = (nbatch + nranks - 1) / nranks;
    /* accelerate's top-up of a short last batch (see above): its rank and round, and the rows it repeats: rows
     * [0, m) q times and rows [0, rr) once more */
    const int64_t last_rows = nbatch ? er->nrows - (nbatch - 1) * E : 0;
    const int up = top_up && nranks > 1 && nbatch > 0 && last_rows < E;
    const int64_t up_mb = up ? (nbatch - 1) / nranks : -1, up_rank = up ? (nbatch - 1) % nranks : -1;
    const int64_t need = up ? E - last_rows : 0, mrows = er->nrows < nranks * E ? er->nrows : nranks * E;
    const int64_t q = up ? need / mrows : 0, rr = up ? need % mrows : 0;
    const size_t BS = (size_t)(B * S);
    int32_t *buf = malloc(sizeof(int32_t) * BS * 4);
    double *part = calloc((size_t)per + 1, sizeof(double)); /* each of my batches' loss sum (this sp rank's share) */
    int64_t *cnt = calloc((size_t)per + 1, sizeof(int64_t)), *nrow = calloc((size_t)per + 1, sizeof(int64_t));
    if (!buf || !part || !cnt || !nrow) abort();
    eval_ctx x = {.s = s, .er = er, .R = R, .Lr = Lr, .ids = buf, .tgt = buf + BS, .pos = buf + 2 * BS,
                  .seg = buf + 3 * BS, .loss_sum = rt_session_global(s, "stats/loss_sum")};
    /* output_router_logits: transformers adds router_aux_loss_coef x the batch's load-balancing loss to eval_loss
     * too (over the whole batch's tokens: the stats of its calls summed); under sequence parallelism each rank
     * sees a share of the rows, so eval_loss stays the CE there */
    x.lb_stats = s->aux && s->sp == 1 ? rt_session_global(s, "stats/lb_stats") : NULL;
    const int64_t nst = x.lb_stats ? x.lb_stats->numel : 0;
    double *lbp = nst ? calloc((size_t)((per + 1) * nst), sizeof(double)) : NULL, *lbt = nst ? calloc((size_t)(2 * nst), sizeof(double)) : NULL;
    if (nst) {
        x.auxm = malloc(sizeof(float) * BS);
        if (!lbp || !lbt || !x.auxm) abort();
    }
    int64_t saved = s->micro_count, real_tok = 0;
    int rc = 0;
    for (int64_t mb = 0; mb < per && rc == 0; mb++) {
        const int64_t bi = mb * nranks + rank, first = bi * E;
        const int64_t lead_rows = er->nrows - mb * nranks * E; /* rows of this round's first batch: the most */
        const int64_t calls = ((lead_rows < E ? lead_rows : E) + R - 1) / R;
        int64_t mine = er->nrows - first; /* my rows in this batch */
        mine = mine < 0 ? 0 : mine > E ? E : mine;
        nrow[mb] = mine;
        const int me = rank == up_rank && mb == up_mb;
        eval_max_position(s, er, first, mine, me ? (need < mrows ? need : mrows) : 0, rope_mult);
        rc = eval_span(&x, first, mine, calls, &part[mb], &cnt[mb], lbp ? lbp + mb * nst : NULL, d);
        real_tok += cnt[mb];
        if (rc || mb != up_mb) continue;
        /* the top-up: rows [0, rr) q + 1 times, rows [rr, m) q times (padding calls on the other ranks) */
        double sa = 0, sb = 0;
        int64_t ca = 0, cb = 0;
        if (lbt) memset(lbt, 0, sizeof(double) * (size_t)(2 * nst));
        rc = eval_span(&x, 0, me ? rr : 0, (rr + R - 1) / R, &sa, &ca, lbt, d);
        if (rc == 0 && q > 0)
            rc = eval_span(&x, rr, me ? mrows - rr : 0, (mrows - rr + R - 1) / R, &sb, &cb, lbt ? lbt + nst : NULL, d);
        if (me) {
            part[mb] += (double)(q + 1) * sa + (double)q * sb;
            cnt[mb] += (q + 1) * ca + q * cb;
            for (int64_t i = 0; i < nst; i++) lbp[mb * nst + i] += (double)(q + 1) * lbt[i] + (double)q * lbt[nst + i];
        }
    }
    s->micro_count = saved;
    s->max_position_set = 0;
    free(buf);
    if (rc == 0 && s->sp > 1) { /* the loss sums of the sp ranks' shares of each batch */
        float *pf = malloc(sizeof(float) * ((size_t)per + 1));
        if (!pf) abort();
        for (int64_t mb = 0; mb < per; mb++) pf[mb] = (float)part[mb];
        if (s->st.coll->all_reduce(s->st.coll->ctx, s->sp_axis, pf, per) != 0) {
            ax_error(d, "eval", "reducing the eval loss across sequence-parallel ranks failed");
            rc = -1;
        }
        for (int64_t mb = 0; mb < per; mb++) part[mb] = pf[mb];
        free(pf);
    }
    double acc[3] = {0, 0, (double)real_tok}; /* sum over rows of their batch's loss, rows, tokens */
    for (int64_t mb = 0; mb < per && rc == 0; mb++)
        if (cnt[mb] > 0) {
            const double aux = nst ? s->router_aux_coef * ck_moe_lb_loss(lbp + mb * nst, (nst - 1) / 2) : 0.0;
            acc[0] += (double)nrow[mb] * (part[mb] / (double)cnt[mb] + aux), acc[1] += (double)nrow[mb];
        }
    free(lbp), free(lbt), free(x.auxm);
    free(part);
    free(cnt);
    free(nrow);
    if (rc) return -1;
    float l[3] = {(float)acc[0], (float)acc[1], (float)acc[2]};
    if (nranks > 1 && s->st.coll->all_reduce(s->st.coll->ctx, dp, l, 3) != 0) {
        ax_error(d, "eval", "reducing the eval loss across ranks failed");
        return -1;
    }
    if (nranks > 1) acc[0] = l[0], acc[1] = l[1], acc[2] = l[2];
    *ntok = (int64_t)acc[2];
    *loss = acc[1] > 0 ? acc[0] / acc[1] : NAN;
    return 0;
}

/* The plan's datasets, in order: pre-tokenized rows as they are, rows of
 * text (io.dataset.N.format) through the tokenizer (io.tokenizer), or from
 * io.dataset_prepared_path, which only the lead rank writes. */
int rt_train_load_datasets(const ir_module *m, const char *prefix, int nds, int64_t V, int64_t S, rt_dataset *ds,
                           int64_t *counts, int lead, int say, ax_diag *d) {
    ax_arena *ar = ax_arena_create();
    rt_data_source *src = ax_arena_alloc(ar, sizeof *src * (size_t)nds);
    rt_tok_setup setup;
    int rc = 0, any = 0;
    for (int i = 0; i < nds && rc == 0; i++) {
        char k[48];
        snprintf(k, sizeof k, "%s.%d", prefix, i);
        src[i].path = mattr_s(m, k, "");
        snprintf(k, sizeof k, "%s.%d.shards", prefix, i);
        src[i].shards = mattr_i(m, k, 0);
        snprintf(k, sizeof k, "%s.%d.shards_idx", prefix, i);
        src[i].shards_idx = mattr_i(m, k, 0);
        src[i].seed = (uint64_t)mattr_i(m, "train.seed", 42);
        src[i].nloaded = counts + i;
        snprintf(k, sizeof k, "%s.%d.parquet", prefix, i);
        src[i].loader = mattr_i(m, k, 0) ? RT_LOADER_PARQUET : RT_LOADER_JSON;
        snprintf(k, sizeof k, "%s.%d.loader", prefix, i);
        const char *ld = mattr_s(m, k, NULL);
        if (ld && !strcmp(ld, "text")) src[i].loader = RT_LOADER_TEXT;
        else if (ld && !strcmp(ld, "csv")) src[i].loader = RT_LOADER_CSV;
        else if (ld && !strcmp(ld, "tsv")) src[i].loader = RT_LOADER_TSV;
        else if (ld) {
            ax_error(d, "plan", "%s: \"%s\" is no loader this axorun reads (a newer axoc's plan?)", k, ld);
            rc = -1;
        }
        snprintf(k, sizeof k, "%s.%d.slice", prefix, i);
        src[i].slice = mattr_s(m, k, NULL);
        snprintf(k, sizeof k, "%s.%d.continues", prefix, i);
        src[i].continues = (int)mattr_i(m, k, 0);
        snprintf(k, sizeof k, "%s.%d.format", prefix, i);
        const char *fmt = mattr_s(m, k, NULL);
        if (!fmt) continue;
        rt_ds_spec *spec = ax_arena_alloc(ar, sizeof *spec);
        rc = rt_ds_spec_from_json(fmt, spec, ar, "plan", d);
        src[i].spec = spec;
        any = 1;
    }
    if (rc == 0 && any) rc = rt_tok_setup_from_json(mattr_s(m, "io.tokenizer", "{}"), &setup, ar, "plan", d);
    if (rc == 0)
        rc = rt_data_load_sources(src, nds, any ? &setup : NULL, S, V, mattr_s(m, "io.dataset_prepared_path", NULL), lead,
                                  say ? stdout : NULL, ds, d);
    ax_arena_destroy(ar);
    return rc;
}

/* An epoch's batching (rt_epoch_span_of); multipack_real_batches: Axolotl's batch sampler drops a last batch of
 * fewer than micro_batch_size packed rows. */
static rt_epoch_span epoch_span_of(const rt_batching *bt, int real_batches, int64_t nrows) {
    return rt_epoch_span_of(bt, real_batches ? nrows - nrows % bt->B : nrows);
}

/* From epoch *ep to the next: its first step and its span (packed rows differ in number from epoch to epoch); its
 * rows built into *rows, or (rows NULL: an epoch a resumed run skips) only counted. */
static int next_epoch(const rt_dataset *ds, const rt_data_opts *o, const rt_batching *bt, int real_batches, int64_t *ep,
                      int64_t *ep_first, rt_epoch_span *esp, rt_rows *rows, ax_diag *d) {
    if (rows) rt_rows_free(rows);
    const int64_t n = !rows ? rt_data_count_rows(ds, o, *ep + 1, d)
                            : rt_data_build_epoch(ds, o, *ep + 1, rows, d) == 0 ? rows->nrows : -1;
    if (n < 0) return -1;
    *ep_first += esp->nsteps;
    *esp = epoch_span_of(bt, real_batches, n);
    ++*ep;
    if (esp->nsteps < 1) {
        ax_error(d, "dataset", "epoch %lld packs into %lld rows, fewer than one micro-batch on every rank (%lld rows)",
                 (long long)*ep, (long long)n, (long long)(bt->B * bt->nranks));
        return -1;
    }
    return 0;
}

/* One micro-batch's B rows from position i0 of the step: in place when they are consecutive rows of the epoch, else
 * copied into stage (rows from the epoch's start that top it up, empty rows past its end). in[]: input ids,
 * targets, position ids, sequence ids. */
static void micro_rows(const rt_rows *rows, const rt_batching *bt, const rt_epoch_span *esp, int64_t estep, int64_t i0,
                       int32_t pad_id, int32_t *stage, const int32_t *in[4]) {
    const int64_t S = rows->seq_len, r0 = rt_epoch_row(bt, esp, estep, i0);
    int64_t b = 1;
    while (r0 >= 0 && b < bt->B && rt_epoch_row(bt, esp, estep, i0 + b) == r0 + b) b++;
    const int32_t *src[4] = {rows->input_ids, rows->targets, rows->position_ids, rows->seq_ids};
    if (r0 >= 0 && b == bt->B) {
        for (int k = 0; k < 4; k++) in[k] = src[k] + r0 * S;
        return;
    }
    const size_t BS = (size_t)(bt->B * S);
    for (int k = 0; k < 4; k++) in[k] = stage + (size_t)k * BS;
    for (b = 0; b < bt->B; b++) {
        const int64_t r = rt_epoch_row(bt, esp, estep, i0 + b);
        for (int k = 0; k < 4; k++) {
            int32_t *dst = stage + (size_t)k * BS + (size_t)(b * S);
            if (r >= 0) memcpy(dst, src[k] + r * S, sizeof *dst * (size_t)S);
            else
                for (int64_t t = 0; t < S; t++) /* an empty row: padding, each token its own sequence */
                    dst[t] = k == 0 ? pad_id : k == 1 ? RT_IGNORE_INDEX : k == 2 ? 0 : (int32_t)t;
        }
    }
}

/* fix_untrained_tokens (runtime/untrained.h) on the embed_tokens and lm_head params: every rank gathers them whole,
 * computes the same rows from the same data and sets those it holds in the param and its f32 master copy, rounded
 * to the param's dtype, as Axolotl casts them to the model's. */
static int fix_untrained(rt_session *s, const rt_dataset *train, int lead, int say, ax_diag *d) {
    const ir_module *m = s->m;
    int ge = -1, go = -1;
    for (int g = 0; g < m->nglobals; g++) {
        const ir_global *G = &m->globals[g];
        if (G->role != IR_ROLE_PARAM || G->type.rank != 2) continue;
        if (is_embedding(m, G)) ge = g;
        if (!strcmp(G->name, "lm_head.weight")) go = g;
    }
    if (go < 0 && mattr_i(m, "model.tie_word_embeddings", 0)) go = ge;
    if (ge < 0 || go < 0 || m->globals[ge].type.dims[1] != m->globals[go].type.dims[1] ||
        m->globals[ge].type.dims[0] != m->globals[go].type.dims[0]) {
        ax_error(d, "fix_untrained_tokens", "needs embed_tokens and lm_head params of one shape");
        return -1;
    }
    /* the whole matrices on every rank (ZeRO-3 / FSDP: gathered, as Axolotl gathers them under ZeRO-3) */
    const int64_t V = m->globals[ge].type.dims[0], H = m->globals[ge].type.dims[1];
    float *we = malloc(sizeof *we * (size_t)(V * H)), *wo = go == ge ? we : malloc(sizeof *wo * (size_t)(V * H));
    if (!we || !wo) abort();
    if (full_param(s, ge, we, d) != 0 || (go != ge && full_param(s, go, wo, d) != 0)) {
        free(we);
        if (wo != we) free(wo);
        return -1;
    }
    ax_arena *ar = ax_arena_create();
    rt_tok_setup setup;
    rt_tokenizer *tok = NULL;
    int rc = 0;
    const char *tj = mattr_s(m, "io.tokenizer", NULL);
    if (tj && rt_tok_setup_from_json(tj, &setup, ar, "plan", d) != 0) rc = -1;
    else if (tj && setup.path) {
        tok = rt_tok_load(setup.path, d);
        if (!tok || rt_tok_setup_apply(tok, &setup, d) != 0) rc = -1;
    }
    rt_untrained_fix fx = {0};
    if (!rc) {
        const char *list = mattr_s(m, "train.fix_untrained_ids", "");
        int nids = 0;
        int64_t *ids = ax_arena_alloc(ar, sizeof *ids * (strlen(list) / 2 + 1)); /* "a,b,c": at most (len + 1) / 2 */
        for (const char *p = list; *p;) {
            char *end;
            ids[nids++] = strtoll(p, &end, 10);
            p = *end == ',' ? end + 1 : end + strlen(end);
        }
        const rt_untrained_in in = {.embed = we,
                                    .lm_head = wo,
                                    .V = V,
                                    .H = H,
                                    .pad_id = tok && setup.pad ? rt_tok_id(tok, setup.pad) /* else config.json's */
                                                               : mattr_i(m, "model.padding_idx", -1),
                                    .ids = ids,
                                    .nids = nids,
                                    .chat_template = mattr_s(m, "train.fix_untrained_template", NULL),
                                    .tok = tok,
                                    .tok_len = tok ? rt_tok_len(tok) : 0,
                                    .train = train};
        rc = rt_untrained_compute(&in, &fx, d);
    }
    if (rt_session_any_rank(s, rc != 0)) rc = -1; /* the ranks agree before any of them changes a row */
    for (int w = 0; !rc && w < 2 && fx.n; w++) { /* embed_tokens, then lm_head (the same rows when tied) */
        const int gp = w ? go : ge;
        for (int g = 0; g < m->nglobals; g++) { /* the param and the copies initialized from it, each rank's rows */
            const char *from = ir_attr_str(m->globals[g].attrs, m->globals[g].nattrs, "init_from", NULL);
            if (g != gp && !(from && !strcmp(from, m->globals[gp].name))) continue;
            float *dst = rt_f(&s->st.globals[g]);
            int64_t first, rows, cap; /* this rank's rows: an f32 master copy is sharded under ZeRO-1/2 */
            block_of(s, &m->globals[g].type, &first, &rows, &cap);
            for (int64_t q = 0; q < fx.n; q++) {
                if (fx.ids[q] < first || fx.ids[q] >= first + rows) continue;
                for (int64_t j = 0; j < H; j++) {
                    float v = (float)(w ? fx.lm_head : fx.embed)[q * H + j];
                    dst[(fx.ids[q] - first) * H + j] = m->globals[gp].type.dtype == IR_BF16 ? ax_round_bf16(v) : v;
                }
            }
            if (rt_train_push(s, &s->st.globals[g], d) != 0) rc = -1;
        }
    }
    if (!rc && lead && say) {
        if (fx.n) {
            printf("axorun: fix_untrained_tokens: the rows of %lld untrained token%s seen in the data set to the mean "
                   "embedding scaled by frequency (ids", (long long)fx.n, fx.n == 1 ? "" : "s");
            for (int64_t q = 0; q < fx.n && q < 16; q++) printf(" %lld", (long long)fx.ids[q]);
            printf("%s)\n", fx.n > 16 ? " ..." : "");
        } else {
            printf("axorun: fix_untrained_tokens: %s; no row changed\n",
                   fx.nfound ? "no untrained token occurs in the training data" : "no untrained token");
        }
    }
    rt_untrained_free(&fx);
    free(we);
    if (wo != we) free(wo);
    if (tok) rt_tok_free(tok);
    ax_arena_destroy(ar);
    return rc;
}

void rt_train_eval_plan(const ir_module *m, int64_t total, int64_t steps_per_epoch, int64_t log_every, int64_t *every,
                        int *epochly, int *on_start) {
    const double epochs = mattr_f(m, "train.epochs", 1);
    int64_t es = mattr_i(m, "train.eval_steps", 0), epe = mattr_i(m, "train.evals_per_epoch", 0);
    double er = mattr_f(m, "train.eval_steps_ratio", 0);
    /* evals_per_epoch: Axolotl's eval_steps = 1 / (evals_per_epoch x num_epochs) of the run when < 1 (HF:
     * ceil(max_steps x eval_steps)); else, as without it, each epoch's end */
    double epe_r = epe > 0 ? 1.0 / ((double)epe * epochs) : 1.0;
    /* eval_strategy: no (none, but eval_on_start's), epoch, steps (eval_steps, or HF's logging_steps) */
    const char *estrat = mattr_s(m, "train.eval_strategy", "");
    if (es <= 0 && er <= 0 && epe_r >= 1.0 && !*estrat) { /* Axolotl passes no eval_strategy: HF's "no" */
        *every = 0, *epochly = 0, *on_start = 0;
        return;
    }
    *every = !strcmp(estrat, "no")      ? 0
             : !strcmp(estrat, "epoch") ? steps_per_epoch
             : es > 0                   ? es
             : er > 0                   ? (int64_t)ceil(er * (double)total)
             : epe_r < 1.0              ? (int64_t)ceil((double)total * epe_r)
             : !strcmp(estrat, "steps") ? log_every
                                        : steps_per_epoch;
    *epochly = *every && (!strcmp(estrat, "epoch") || (es <= 0 && er <= 0 && epe_r >= 1.0 && strcmp(estrat, "steps")));
    /* Axolotl 0.19 asks HF for eval_on_start with eval_steps or an eval_strategy */
    *on_start = es > 0 || er > 0 || epe_r < 1.0 || *estrat;
}

static int64_t patience_of(const ir_module *m) { return mattr_i(m, "train.early_stopping_patience", 0); }

int rt_train_open_output(const rt_session *s, const char *out_dir, int overwrite, FILE **log, ax_diag *d) {
    char path[4096];
    if (ax_mkdir_p(out_dir, d) != 0) return -1;
    if (ax_path_join(path, sizeof path, out_dir, s->adapter ? "adapter_model.safetensors" : "model.safetensors") != 0) {
        ax_error(d, out_dir, "path too long");
        return -1;
    }
    if (ax_file_exists(path) && !overwrite) {
        ax_error(d, out_dir, "holds a trained model from an earlier run; refusing to overwrite it (pass --overwrite, or "
                 "choose another output_dir)");
        return -1;
    }
    if (ax_path_join(path, sizeof path, out_dir, "train_log.jsonl") != 0 || !(*log = fopen(path, "w"))) {
        ax_error(d, path, "cannot write: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int rt_train_check_sched(const rt_lr_sched *lrs, double base_lr, ax_diag *d) {
    if (!strcmp(lrs->name, "rex") && lrs->warmup > lrs->total) {
        ax_error(d, "train", "lr_scheduler: rex: %lld warmup steps exceed the run's %lld steps (Axolotl's RexLR refuses "
                 "num_warmup_steps > total_steps)", (long long)lrs->warmup, (long long)lrs->total);
        return -1;
    }
    /* where torch's OneCycleLR would raise, before any step: HF Trainer also steps the scheduler after the last step */
    for (int64_t t = 0; !strcmp(lrs->name, "one_cycle") && t <= lrs->total; t++) {
        double lr, b1;
        char why[256];
        if (rt_one_cycle_at(lrs, base_lr, t, &lr, &b1, why, sizeof why) != 0) {
            ax_error(d, "train", "lr_scheduler: one_cycle (warmup %lld of %lld steps): %s", (long long)lrs->warmup,
                     (long long)lrs->total, why);
            return -1;
        }
        if (t < lrs->total && !isnan(b1) && 1.0 - pow(b1, (double)(t + 1)) == 0.0) { /* AdamW's lr / bias_correction1 */
            ax_error(d, "train", "lr_scheduler: one_cycle: beta1 is %g at step %lld, so AdamW's bias correction 1 - "
                     "beta1^step is 0 and torch's AdamW divides by it (ZeroDivisionError); keep base_momentum and "
                     "max_momentum below 1", b1, (long long)t + 1);
            return -1;
        }
    }
    return 0;
}

int64_t rt_axolotl_logging_steps(const ir_module *m, int64_t total_num_steps) {
    const int64_t ls = mattr_i(m, "train.logging_steps", -1);
    if (ls >= 1) return ls;
    int64_t x = (int64_t)(0.005 * (double)total_num_steps); /* max(min(int(0.005 x steps), 10), 1) */
    return x > 10 ? 10 : x < 1 ? 1 : x;
}

int64_t rt_axolotl_warmup(const ir_module *m, int64_t total_num_steps) {
    const int64_t ws = mattr_i(m, "train.warmup_steps", -1);
    const double wr = mattr_f(m, "train.warmup_ratio", NAN);
    int64_t w = ws >= 0 ? ws
                : !isnan(wr) ? (int64_t)(wr * (double)total_num_steps)              /* Python's int(): floor here */
                             : (int64_t)fmin((double)(int64_t)(0.03 * (double)total_num_steps), 100.0);
    if (w < 0) w = 0;
    return w == 1 ? 2 : w; /* Axolotl's own rule */
}

/* The plan's learning-rate schedule for a run of `total` steps with `warmup` of them warming up. */
rt_lr_sched rt_train_sched(const ir_module *m, int64_t warmup, int64_t total) {
    rt_lr_sched lrs = {.name = mattr_s(m, "train.scheduler", "cosine"), .warmup = warmup, .total = total,
                       .num_cycles = mattr_f(m, "train.sched.num_cycles", NAN), .power = mattr_f(m, "train.sched.power", NAN),
                       .lr_end = mattr_f(m, "train.sched.lr_end", NAN), .timescale = mattr_f(m, "train.sched.timescale", NAN),
                       .min_lr_rate = mattr_f(m, "train.sched.min_lr_rate", NAN),
                       .cosine_min_lr_ratio = mattr_f(m, "train.sched.cosine_min_lr_ratio", NAN),
                       .cosine_constant_lr_ratio = mattr_f(m, "train.sched.cosine_constant_lr_ratio", NAN),
                       .quadratic_warmup = (int)mattr_i(m, "train.sched.quadratic_warmup", 0),
                       .warmup_lr_rate = mattr_f(m, "train.sched.warmup_lr_rate", NAN),
                       .num_decay_steps = mattr_f(m, "train.sched.num_decay_steps", NAN),
                       .num_stable_steps = mattr_f(m, "train.sched.num_stable_steps", NAN),
                       .min_lr_ratio = mattr_f(m, "train.sched.min_lr_ratio", NAN),
                       .warmup_type = mattr_s(m, "train.sched.warmup_type", NULL),
                       .decay_type = mattr_s(m, "train.sched.decay_type", NULL),
                       .oc_pct_start = mattr_f(m, "train.sched.pct_start", NAN),
                       .oc_div_factor = mattr_f(m, "train.sched.div_factor", 25.0),
                       .oc_final_div_factor = mattr_f(m, "train.sched.final_div_factor", 1e4),
                       .oc_base_momentum = mattr_f(m, "train.sched.base_momentum", 0.85),
                       .oc_max_momentum = mattr_f(m, "train.sched.max_momentum", 0.95),
                       .oc_anneal_linear = !strcmp(mattr_s(m, "train.sched.anneal_strategy", "cos"), "linear"),
                       .oc_three_phase = (int)mattr_i(m, "train.sched.three_phase", 0),
                       .oc_cycle_momentum = (int)mattr_i(m, "train.sched.cycle_momentum", 1)};
    return lrs;
}

int rt_train(rt_session *s, const rt_train_opts *o, ax_diag *d) {
    if (s->dpo) return rt_train_dpo(s, o, d); /* runtime/dpo.c */
    const ir_module *m = s->m;
    const int dp = dp_axis(s);
    const int64_t nranks = dp >= 0 ? m->mesh_sizes[dp] : 1, rank = dp >= 0 ? s->st.coord[dp] : 0;
    const int lead = is_rank0(s), quiet = o->quiet || !lead;
    const char *out_dir = o->output_dir ? o->output_dir : mattr_s(m, "io.output_dir", "./outputs");
    int nds = (int)mattr_i(m, "io.ndatasets", 0);
    if (nds < 1) {
        ax_error(d, "plan", "the config names no dataset (datasets:)");
        return -1;
    }
    rt_dataset ds;
    int32_t *stage = NULL; /* a micro-batch's rows when they are not consecutive rows of the epoch */
    float *auxm = NULL;    /* output_router_logits: a micro-batch's token weights (rt_aux_mask) */
    int64_t *counts = calloc((size_t)nds, sizeof *counts); /* each dataset's samples (shuffle_before_merging_datasets) */
    if (!counts) abort();
    if (rt_train_load_datasets(m, "io.dataset", nds, s->V, s->L, &ds, counts, lead, lead && !quiet, d)) {
        free(counts);
        return -1;
    }

    rt_data_opts dopt = {.seq_len = s->L,
                         .sample_packing = (int)mattr_i(m, "train.sample_packing", 0),
                         .seed = (uint64_t)mattr_i(m, "train.seed", 42),
                         .pad_id = (int32_t)mattr_i(m, "model.pad_id", 0),
                         .excess = (int)mattr_i(m, "train.excess_length_strategy", RT_EXCESS_DROP),
                         .min_len = mattr_i(m, "train.min_sample_len", 0),
                         .pack_next_fit = (int)mattr_i(m, "train.pack_next_fit", 0),
                         .pack_group_size = mattr_i(m, "train.pack_group_size", 0),
                         .pack_bin_size = mattr_i(m, "train.pack_bin_size", 0)};
    if (dopt.sample_packing && s->S != s->L) dopt.row_len = s->S; /* a micro-batch is one bin (frontend/lower.h) */
    /* val_set_size: a held-out split; or test_datasets: evaluated as the run goes */
    rt_dataset eds = {0};
    rt_rows erows = {0};
    /* curriculum_sampling: HF's SequentialSampler, the prepared training set in its order; Axolotl then shuffles
     * merged datasets (shuffle_merged_datasets) but not a lone one */
    const int curriculum = (int)mattr_i(m, "train.curriculum_sampling", 0);
    const int fix_untr = (int)mattr_i(m, "train.fix_untrained", 0); /* needs the training set in Axolotl's order */
    dopt.sequential = curriculum;
    /* group_by_length: HF's LengthGroupedSampler for batches of micro_batch_size x grad_accum (a rank's step),
     * unless Axolotl's own sampler comes first (curriculum_sampling; packing ignores it) */
    const int by_length = (int)mattr_i(m, "train.group_by_length", 0);
    if (by_length && !curriculum) dopt.group_batch = s->B * s->grad_accum;
    rt_data_opts eopt = dopt; /* HF evaluates in order; Axolotl packs eval rows unless eval_sample_packing is false */
    eopt.sequential = 1;
    eopt.sample_packing = (int)mattr_i(m, "train.eval_sample_packing", dopt.sample_packing);
    if (!eopt.sample_packing) eopt.row_len = 0; /* rows of sequence_len, several to a bin-long eval call (run_eval) */
    /* packed, an eval batch is what Axolotl's multipack sampler makes it for training: micro_batch_size bins of
     * sequence_len, or one bin of micro_batch_size x sequence_len (eval_batch_size is not read) */
    const int64_t eval_bs = eopt.sample_packing ? s->B : mattr_i(m, "train.eval_batch_size", s->B);
    eopt.group_batch = 0;
    if (by_length && !eopt.sample_packing) /* HF groups the unpacked eval rows too (over its own seeded shuffle) */
        eopt.sequential = 0, eopt.group_batch = eval_bs;
    const int64_t eval_rope = eopt.sample_packing ? 0 : mattr_i(m, "rope.pad_multiple", 0); /* eval_max_position */
    const double val = mattr_f(m, "train.val_set_size", 0);
    const int ntest = (int)mattr_i(m, "io.ntest_datasets", 0);
    int has_eval = val > 0 || ntest > 0;
    /* Axolotl's data order before it splits or evaluates: its merged datasets shuffled by HF datasets (numpy's
     * permutation of the seed) unless shuffle_merged_datasets is false, less the samples it drops first (those
     * without a label when the training data packs) */
    const int merged_shuffle = (int)mattr_i(m, "train.shuffle_merged_datasets", 1);
    int nentries = 0; /* Axolotl's datasets: a split of several files is one (io.dataset.N.continues on the later ones) */
    for (int i = 0; i < nds; i++) {
        char k[64];
        snprintf(k, sizeof k, "io.dataset.%d.continues", i);
        nentries += !mattr_i(m, k, 0);
    }
    const rt_split_opts so = {.seed = dopt.seed,
                              .shuffle = merged_shuffle && !(curriculum && nentries == 1),
                              .shuffle_each = (int)mattr_i(m, "train.shuffle_before_merging_datasets", 0),
                              .nparts = nds,
                              .parts = counts,
                              .train_in_order = curriculum || fix_untr,
                              .seq_len = s->L,
                              .excess = dopt.excess,
                              .sample_packing = dopt.sample_packing,
                              .dedup = (int)mattr_i(m, "train.dataset_exact_deduplication", 0),
                              .min_len = dopt.min_len,
                              .shard_num = mattr_i(m, "train.dataset_shard_num", 0),
                              .shard_idx = mattr_i(m, "train.dataset_shard_idx", 0)};
    /* dataset_shard_num and dataset_exact_deduplication on the training data (with val_set_size, rt_data_split
     * applies both in Axolotl's order) */
    if (val <= 0) { /* the training set in Axolotl's order: the sampler permutes that */
        const int64_t n0 = ds.nsamples;
        if (so.shard_num > 0 || curriculum || fix_untr) rt_data_axolotl_order(&ds, &so); /* its order, its shard (deduplicated first) */
        else rt_data_merge_order(&ds, &so);
        if (lead && !quiet && so.shard_num > 0)
            printf("axorun: shard %lld of %lld (dataset_shard_num): %lld of %lld samples\n", (long long)so.shard_idx,
                   (long long)so.shard_num, (long long)ds.nsamples, (long long)n0);
        else if (lead && !quiet && so.dedup && !curriculum && !fix_untr)
            printf("axorun: %lld duplicate samples removed (dataset_exact_deduplication)\n", (long long)(n0 - ds.nsamples));
    }
    if (val > 0) {
        if (rt_data_split(&ds, val, &so, &eds, d) != 0 || rt_data_build_epoch(&eds, &eopt, 0, &erows, d) != 0) {
            rt_data_free(&eds);
            rt_data_free(&ds);
            free(counts);
            return -1;
        }
    } else if (ntest > 0) {
        int64_t *ecounts = calloc((size_t)ntest, sizeof *ecounts);
        if (!ecounts) abort();
        if (rt_train_load_datasets(m, "io.test_dataset", ntest, s->V, s->L, &eds, ecounts, lead, lead && !quiet, d) != 0) {
            free(ecounts);
            rt_data_free(&eds);
            rt_data_free(&ds);
            free(counts);
            return -1;
        }
        rt_split_opts se = so; /* the test data's own filters: eval packing, and eval_sequence_len when it is set */
        se.shuffle = merged_shuffle && !(curriculum && ntest == 1);
        se.nparts = ntest;
        se.parts = ecounts;
        const int64_t esl = mattr_i(m, "train.eval_sequence_len", 0);
        se.sample_packing = eopt.sample_packing;
        se.seq_len = esl > 0 ? esl : so.seq_len;
        rt_data_axolotl_order(&eds, &se);
        free(ecounts);
        if (se.seq_len < so.seq_len && se.excess == RT_EXCESS_TRUNCATE) rt_data_truncate(&eds, se.seq_len);
        if (rt_data_build_epoch(&eds, &eopt, 0, &erows, d) != 0) {
            rt_data_free(&eds);
            rt_data_free(&ds);
            free(counts);
            return -1;
        }
        if (erows.nrows < 1) {
            ax_error(d, mattr_s(m, "io.test_dataset.0", "test_datasets"), "test_datasets: no sample to evaluate");
            rt_rows_free(&erows);
            rt_data_free(&eds);
            rt_data_free(&ds);
            free(counts);
            return -1;
        }
    }
    free(counts);
    /* fix_untrained_tokens before any step (a resumed run then loads its checkpoint's weights over it, as Axolotl's
     * Trainer does) */
    if (fix_untr && fix_untrained(s, &ds, lead, !quiet, d) != 0) {
        rt_rows_free(&erows);
        rt_data_free(&eds);
        rt_data_free(&ds);
        return -1;
    }
    /* packed eval rows: Axolotl's multipack sampler drops a last batch of fewer than micro_batch_size bins (with
     * multipack_real_batches; a one-bin batch is never short), and on several ranks accelerate's BatchSamplerShard
     * (drop_last from that sampler, even_batches off) the last round of batches that does not reach every rank */
    if (has_eval && eopt.sample_packing) {
        const int64_t nb = erows.nrows / eval_bs;
        erows.nrows = nb / nranks * nranks * eval_bs;
        const char *sched = mattr_s(m, "train.scheduler", ""), *sstr = mattr_s(m, "train.save_strategy", "");
        const char *need = mattr_i(m, "train.early_stopping_patience", 0) > 0      ? "early_stopping_patience"
                           : mattr_i(m, "train.load_best_model_at_end", 0)          ? "load_best_model_at_end"
                           : !strcmp(sstr, "best")                                  ? "save_strategy: best"
                           : !strcmp(sched, "reduce_lr_on_plateau")                 ? "lr_scheduler: reduce_lr_on_plateau"
                           : !strcmp(sched, "greedy")                               ? "lr_scheduler: greedy"
                                                                                    : NULL;
        char why[256];
        snprintf(why, sizeof why, "the evaluation samples pack into %lld rows, fewer than one eval batch of %lld on each "
                 "of %lld ranks, which Axolotl's multipack sampler drops", (long long)(nb * eval_bs), (long long)eval_bs,
                 (long long)nranks);
        const char *key = val > 0 ? "val_set_size" : "test_datasets";
        if (erows.nrows < 1 && need) {
            ax_error(d, key, "%s; %s needs an eval_loss: hold out more, or set eval_sample_packing: false", why, need);
            rt_rows_free(&erows);
            rt_data_free(&eds);
            rt_data_free(&ds);
            return -1;
        }
        if (erows.nrows < 1) { /* HF evaluates an empty loader: no eval_loss, training goes on */
            if (lead) ax_warn(d, key, "%s: nothing is evaluated (hold out more, or set eval_sample_packing: false)", why);
            has_eval = 0;
        }
    }
    /* accelerate's even_batches (its default; Axolotl turns it off when it packs the training rows, before the eval
     * loaders exist): a last unpacked eval batch short of eval_batch_size rows is topped up (run_eval) */
    const int eval_top_up = !dopt.sample_packing && !eopt.sample_packing;
    /* dataloader_drop_last on unpacked eval rows: HF's last incomplete eval batch on every rank is dropped */
    const int drop_last = (int)mattr_i(m, "train.dataloader_drop_last", 0);
    if (has_eval && drop_last && !eopt.sample_packing) {
        const int64_t Eg = eval_bs * nranks;
        erows.nrows = erows.nrows / Eg * Eg;
        if (erows.nrows < 1) {
            ax_error(d, val > 0 ? "val_set_size" : "test_datasets", "%lld evaluation rows are fewer than one eval batch on "
                     "every rank (%lld rows = eval_batch_size %lld x %lld ranks), which dataloader_drop_last drops",
                     (long long)erows.nseqs, (long long)Eg, (long long)eval_bs, (long long)nranks);
            rt_rows_free(&erows);
            rt_data_free(&eds);
            rt_data_free(&ds);
            return -1;
        }
    }
    /* packed training rows and unpacked eval rows without dataloader_drop_last (Axolotl asks for it then; a config
     * can say false): accelerate's even_batches is off, so ranks with fewer eval batches than others leave HF's
     * gather of the eval losses waiting, and Axolotl's run fails there; axo evaluates every row */
    if (has_eval && lead && !eval_top_up && !eopt.sample_packing && !drop_last && nranks > 1 &&
        ((erows.nrows + eval_bs - 1) / eval_bs) % nranks)
        ax_warn(d, val > 0 ? "val_set_size" : "test_datasets", "%lld eval rows in batches of %lld do not give every one "
                "of %lld ranks the same number of batches, with sample_packing and dataloader_drop_last: false: "
                "Axolotl's evaluation fails there (HF's gather waits on the ranks with fewer); axo evaluates them all",
                (long long)erows.nrows, (long long)eval_bs, (long long)nranks);
    rt_rows rows;
    if (rt_data_build_epoch(&ds, &dopt, 0, &rows, d) != 0) {
        rt_rows_free(&erows);
        rt_data_free(&eds);
        rt_data_free(&ds);
        return -1;
    }
    /* A step's global batch: B x grad_accum rows on each of the dp ranks (B:
     * micro_batch_size rows, or one bin of micro_batch_size x sequence_len);
     * rank r takes micro-batches r*grad_accum .. +grad_accum-1
     * of it, so which rows form a step does not depend on the split. An
     * epoch's rows are batched as HF Trainer and accelerate batch them
     * (rt_epoch_span_of): its last step may hold fewer rows, unless
     * dataloader_drop_last drops them. */
    const int64_t G = s->B * s->grad_accum * nranks;
    /* packed, Axolotl's multipack sampler and accelerate's BatchSamplerShard (drop_last from that sampler, even_batches
     * off) drop the last round of batches that does not reach every rank; dataloader_drop_last is not read */
    const rt_batching bt = {.B = s->B, .ga = s->grad_accum, .nranks = nranks,
                            .drop_last = dopt.sample_packing ? nranks > 1 : drop_last};
    const int real_batches = dopt.sample_packing && mattr_i(m, "train.multipack_real_batches", 0);
    rt_epoch_span esp = epoch_span_of(&bt, real_batches, rows.nrows);
    const int64_t steps_per_epoch = esp.nsteps;
    if (steps_per_epoch < 1) {
        ax_error(d, "dataset", "%lld rows of %lld tokens are fewer than one micro-batch on every rank (%lld rows = "
                 "%lld %s x %lld ranks)%s",
                 (long long)rows.nrows, (long long)s->S, (long long)(s->B * nranks), (long long)s->B,
                 s->B != s->mbs ? "(one bin of micro_batch_size x sequence_len tokens)" : "(micro_batch_size)",
                 (long long)nranks,
                 !bt.drop_last                 ? ""
                 : dopt.sample_packing ? ", and the batches of the last round that do not reach every rank are dropped "
                                         "(Axolotl's multipack sampler under accelerate)"
                                       : ", and dataloader_drop_last drops them");
        rt_rows_free(&rows);
        rt_data_free(&ds);
        rt_rows_free(&erows);
        rt_data_free(&eds);
        return -1;
    }
    if (rows.ndropped && lead) ax_warn(d, "dataset", "%lld samples longer than sequence_len were dropped", (long long)rows.ndropped);
    if (rows.nnolabel && lead)
        ax_diag_add(d, AX_SEV_NOTE, "dataset", "%lld samples without a label were dropped before packing, as Axolotl drops them",
                    (long long)rows.nnolabel);
    if (rows.nshort && lead)
        ax_diag_add(d, AX_SEV_NOTE, "dataset", "%lld samples shorter than min_sample_len (%lld) were dropped, as Axolotl drops them",
                    (long long)rows.nshort, (long long)(dopt.min_len > 0 ? dopt.min_len : 2));
    if (rows.ntruncated && lead)
        ax_diag_add(d, AX_SEV_NOTE, "dataset", "%lld samples longer than sequence_len were truncated to it",
                    (long long)rows.ntruncated);
    /* num_epochs: a float in Axolotl */
    const double epochs = mattr_f(m, "train.epochs", 1);
    const int64_t max_steps = o->max_steps > 0 ? o->max_steps : mattr_i(m, "train.max_steps", 0);
    int64_t total = 0; /* Axolotl's calculate_total_num_steps first; max_steps replaces it below */
    /* Axolotl sets max_steps itself (its calculate_total_num_steps), so a fractional or uneven last epoch ends
     * where it says: ceil(samples x num_epochs / global batch) without packing; with packing floor(max(1, packs /
     * global batch) x num_epochs), less ceil(num_epochs) when the config sets dataloader_drop_last, where its packs
     * are its multipack bins and axo's its first epoch's rows. A count of 0 leaves HF's epochs. */
    const double eff = mattr_f(m, "train.sample_packing_eff_est", 0);
    if (total <= 0 && dopt.sample_packing && eff > 0) {
        /* the config's sample_packing_eff_est: int(floor(0.99 x tokens / eff / sequence_len // batch) - 1) x
         * num_epochs, tokens = total_num_tokens or the training set's */
        int64_t ntok = mattr_i(m, "train.total_num_tokens", 0);
        if (ntok <= 0)
            for (int64_t q = 0; q < rows.nseqs; q++) ntok += rows.seqs[q].len;
        const double Gc = (double)(s->mbs * s->grad_accum * nranks); /* the config's batch_size */
        const double a = 0.99 * (double)ntok / eff / (double)s->L, mod = fmod(a, Gc), div = (a - mod) / Gc;
        if (!(div < 9e15)) {
            ax_error(d, "sample_packing_eff_est", "%g gives %g steps per epoch; expected an efficiency near 1", eff, div);
            rt_rows_free(&rows);
            rt_data_free(&ds);
            rt_rows_free(&erows);
            rt_data_free(&eds);
            return -1;
        }
        double fl = floor(div); /* Python's float a // G */
        if (div - fl > 0.5) fl += 1;
        total = (int64_t)floor((fl - 1) * epochs);
    } else if (total <= 0 && dopt.sample_packing) {
        int64_t per = esp.nrows / G; /* its packs: all of them, before the ranks' last round is dropped */
        if (s->B != s->mbs && mattr_i(m, "train.steps_as_real_batches", 0)) {
            /* one bin a micro-batch by an explicit multipack_real_batches: false with an attention that does not
             * read packed sequences: Axolotl trains one-bin batches but counts steps as for real batches
             * (calculate_total_num_steps): packs of sequence_len, micro_batch_size of them a batch, the short one
             * dropped */
            rt_data_opts o = dopt;
            o.row_len = 0;
            const int64_t n = rt_data_count_rows(&ds, &o, 0, d);
            if (n < 0) {
                rt_rows_free(&rows);
                rt_data_free(&ds);
                rt_rows_free(&erows);
                rt_data_free(&eds);
                return -1;
            }
            per = n / s->mbs / (s->grad_accum * nranks);
        }
        if (per < 1) per = 1;
        total = (int64_t)floor((double)per * epochs);
        if (mattr_i(m, "train.dataloader_drop_last_cfg", 0)) total -= (int64_t)ceil(epochs);
    }
    if (total <= 0)
        total = dopt.sample_packing ? (int64_t)ceil(epochs * (double)steps_per_epoch)
                                    : (int64_t)ceil((double)rows.nrows * epochs / (double)G);
    /* Axolotl's total_num_steps: its own count, or max_steps when fewer; the warmup is taken of it */
    const int64_t axolotl_total = total;
    const int64_t warmup = rt_axolotl_warmup(m, max_steps > 0 && max_steps < total ? max_steps : total);
    if (max_steps > 0) total = max_steps;
    rt_lr_sched lrs = rt_train_sched(m, warmup, total);
    double base_lr = mattr_f(m, "train.lr", 1e-4);
    /* reduce_lr_on_plateau: torch's ReduceLROnPlateau defaults; greedy: GreedyLR's */
    const int greedy = !strcmp(lrs.name, "greedy");
    const char *pmode = mattr_s(m, "train.sched.mode", "min"),
               *ptm = mattr_s(m, "train.sched.threshold_mode", greedy ? "abs" : "rel");
    const rt_plateau_opts po = {.mode_max = !strcmp(pmode, "max"), .thr_abs = !strcmp(ptm, "abs"),
                                .factor = mattr_f(m, "train.sched.factor", greedy ? 0.95 : 0.1),
                                .threshold = mattr_f(m, "train.sched.threshold", greedy ? 1e-6 : 1e-4),
                                .min_lr = mattr_f(m, "train.sched.plateau_min_lr", greedy ? 1e-3 : 0.0),
                                .eps = mattr_f(m, "train.sched.eps", 1e-8),
                                .patience = i64_of(mattr_f(m, "train.sched.patience", 10)),
                                .cooldown = i64_of(mattr_f(m, "train.sched.cooldown", 0)),
                                .greedy = greedy,
                                .smooth = (int)mattr_i(m, "train.sched.smooth", 0),
                                .max_lr = mattr_f(m, "train.sched.max_lr", 1.0),
                                .warmup = i64_of(mattr_f(m, "train.sched.greedy_warmup", 0)),
                                .window = i64_of(mattr_f(m, "train.sched.window_size", 50)),
                                .reset_start = i64_of(mattr_f(m, "train.sched.reset_start", 500))};
    s->plateau_on = !strcmp(lrs.name, "reduce_lr_on_plateau") || greedy;
    s->plateau_opts = po;
    if (s->plateau_on && po.window < 1) { /* the frontend refuses it; a plan edited by hand */
        ax_error(d, "train", "lr_scheduler: greedy: window_size %lld: expected at least 1", (long long)po.window);
        return -1;
    }
    if (s->plateau_on) rt_plateau_init(&s->plateau, &po, base_lr); /* a resumed run's checkpoint replaces it */
    int64_t log_every = rt_axolotl_logging_steps(m, max_steps > 0 && max_steps < axolotl_total ? max_steps : axolotl_total),
            save_every = mattr_i(m, "train.save_steps", 0);
    int64_t per_epoch_saves = mattr_i(m, "train.saves_per_epoch", 0), keep = mattr_i(m, "train.save_total_limit", 0);
    if (keep <= 0) keep = 4; /* Axolotl 0.19: save_total_limit, or 4 */
    if (per_epoch_saves > 0) { /* Axolotl: save_steps = 1 / (saves_per_epoch x num_epochs) of the run when < 1, which HF
                                * makes ceil(max_steps x save_steps); else no save_steps (so: each epoch) */
        double r = 1.0 / ((double)per_epoch_saves * epochs);
        if (r < 1.0) save_every = (int64_t)ceil((double)total * r);
    }
    /* HF's save_strategy as Axolotl 0.19 sets it: steps when there are save_steps, else the one the config names,
     * else epoch. steps also saves at the last step, epoch at each epoch's end and at the last step (HF's
     * DefaultFlowCallback); best after an evaluation that improves eval_loss; no never. */
    const char *sstrat = mattr_s(m, "train.save_strategy", "");
    enum { SAVE_NO, SAVE_EPOCH, SAVE_STEPS, SAVE_BEST } save_mode = save_every > 0            ? SAVE_STEPS
                                                               : !strcmp(sstrat, "no")    ? SAVE_NO
                                                               : !strcmp(sstrat, "steps") ? SAVE_STEPS
                                                               : !strcmp(sstrat, "best")  ? SAVE_BEST
                                                                                          : SAVE_EPOCH;
    if (save_mode == SAVE_STEPS && save_every <= 0) save_every = 500; /* HF's default save_steps */

    int64_t eval_every = 0; /* eval_steps, or a fraction of the run, or evals_per_epoch, or each epoch's end */
    int eval_on_start = 0, eval_epochly = 0;
    if (has_eval) {
        rt_train_eval_plan(m, total, steps_per_epoch, log_every, &eval_every, &eval_epochly, &eval_on_start);
        if (!quiet && eval_every)
            printf("axorun: %lld samples %s, %lld rows; evaluated every %lld steps and at the end%s\n", (long long)eds.nsamples,
                   val > 0 ? "held out (val_set_size)" : "to evaluate (test_datasets)", (long long)erows.nrows,
                   (long long)eval_every, eval_on_start ? ", and before the first step (eval_on_start)" : "");
        else if (!quiet)
            printf("axorun: %lld samples %s; %s\n", (long long)eds.nsamples,
                   val > 0 ? "held out (val_set_size)" : "to evaluate (test_datasets)",
                   eval_on_start ? "eval_strategy: no (evaluated before the first step only, as HF's eval_on_start does)"
                                 : "never evaluated: no eval_steps, eval_strategy or evals_per_epoch below 1 (Axolotl then "
                                   "leaves HF's eval_strategy at no)");
    }
    /* early_stopping_patience and load_best_model_at_end (HF Trainer's
     * EarlyStoppingCallback and best-model tracking on eval_loss): only the
     * evaluations at multiples of eval_steps count, as HF evaluates there
     * and axo's extra one at the end is not HF's */
    const int64_t patience = mattr_i(m, "train.early_stopping_patience", 0);
    const int load_best = (int)mattr_i(m, "train.load_best_model_at_end", 0), gib = (int)mattr_i(m, "train.greater_is_better", 0);
    int stop_early = 0;
    char best_dir[4096] = ""; /* checkpoint-<best_ckpt_step>: in output_dir, or beside the checkpoint resumed from */

    FILE *log = NULL;
    char latest[4096];
    int bad = 0;
    ax_buf logbuf = {0}; /* train_log.jsonl's lines: a checkpoint's log_history */
    const int one_cycle = !strcmp(lrs.name, "one_cycle");
    if (rt_train_check_sched(&lrs, base_lr, d) != 0) goto fail;
    if ((s->plateau_on || patience_of(m) || mattr_i(m, "train.load_best_model_at_end", 0)) && !eval_every) {
        ax_error(d, "eval_strategy", "%s needs evaluations, and this run has none (HF refuses it with eval_strategy no): set "
                 "eval_steps, eval_strategy or evals_per_epoch, with val_set_size or test_datasets",
                 s->plateau_on ? "the lr_scheduler" : patience_of(m) ? "early_stopping_patience" : "load_best_model_at_end");
        goto fail;
    }
    /* resume_from_checkpoint (or --resume-from), or auto_resume_from_checkpoints: the newest resumable one */
    const char *resume = o->resume_from ? o->resume_from : mattr_s(m, "train.resume_from", NULL);
    if (resume && !*resume) resume = NULL;
    if (!resume && mattr_i(m, "train.auto_resume", 0) && rt_resume_latest(out_dir, latest, sizeof latest) == 0) resume = latest;
    int64_t start = 0, peek = 0, ck_max = 0, ck_batch = 0;
    char *hist = NULL;
    /* every rank must resume from the same step, or none may: rank 0's
     * choice against each rank's own (another view of output_dir, say) */
    bad = resume && rt_resume_peek(resume, &peek, &ck_max, &ck_batch, d) != 0;
    const int64_t ck_row = resume && !bad ? rt_resume_row_tokens(resume) : 0;
    if (!bad && resume && ck_row > 0 && ck_row != s->S) {
        ax_error(d, resume, "was trained on rows of %lld tokens, this plan's are %lld (%s): the data would not continue "
                 "where it stopped", (long long)ck_row, (long long)s->S,
                 s->B != s->mbs ? "one packed bin of micro_batch_size x sequence_len a micro-batch" : "sequence_len");
        bad = 1;
    } else if (!bad && resume && ck_batch > 0 && ck_batch != G && s->B != s->mbs && ck_batch == s->mbs * s->grad_accum * nranks &&
               rt_resume_batching(resume) < 4) {
        ax_error(d, resume, "was saved by an older axo, which packed micro_batch_size rows of sequence_len a micro-batch "
                 "whatever the attention backend; this one packs as Axolotl does for it (one bin of micro_batch_size x "
                 "sequence_len tokens): resume it with multipack_real_batches: true to continue its data where it "
                 "stopped");
        bad = 1;
    } else if (!bad && resume && ck_batch > 0 && ck_batch != G) {
        ax_error(d, resume, "was trained with a global batch of %lld rows per step, this plan takes %lld (%lld %s x "
                 "gradient_accumulation_steps %lld x %lld ranks): the data would not continue where it stopped; "
                 "change gradient_accumulation_steps so that the product stays %lld",
                 (long long)ck_batch, (long long)G, (long long)s->B,
                 s->B != s->mbs ? "packed bin" : "micro_batch_size", (long long)s->grad_accum, (long long)nranks,
                 (long long)ck_batch);
        bad = 1;
    }
    if (rt_session_any_rank(s, bad)) goto fail;
    float agree[3] = {0, 0, 0};
    if (lead) agree[0] = resume ? 1.0f : 0.0f, agree[1] = (float)(peek >> 12), agree[2] = (float)(peek & 4095);
    if (rt_session_world_sum(s, agree, 3) != 0) {
        ax_error(d, "train", "ranks could not agree on resuming (a collective failed)");
        goto fail;
    }
    int64_t peek0 = ((int64_t)agree[1] << 12) + (int64_t)agree[2];
    bad = (agree[0] > 0) != (resume != NULL) || (resume && peek != peek0);
    if (bad)
        ax_error(d, resume ? resume : out_dir, "this rank would %s but rank 0 would %s (do all ranks see the same output_dir "
                 "and checkpoints?)", resume ? "resume" : "start afresh", agree[0] > 0 ? "resume" : "start afresh");
    if (rt_session_any_rank(s, bad)) goto fail;
    if (resume) {
        if (rt_resume_load(s, resume, &start, &hist, d) != 0) goto fail;
        const int batching = lead ? rt_resume_batching(resume) : RT_BATCHING_VERSION;
        if (batching < 2)
            ax_warn(d, resume, "was saved by an older axo, whose epochs dropped their short last step and packed "
                    "next-fit; this one batches and packs as Axolotl does, so the data continues from another position");
        else if (batching < 3 && !dopt.sequential)
            ax_warn(d, resume, "was saved by an older axo, which shuffled each epoch its own way; this one shuffles as "
                    "HF Trainer does (torch.randperm seeded with seed + epoch), so the rest of the epoch comes in "
                    "another order");
        else if (batching < 4 && dopt.sample_packing && real_batches)
            ax_warn(d, resume, "was saved by an older axo, which (unless the config set multipack_real_batches) trained "
                    "an epoch's last short batch of packed rows; this one drops it, as Axolotl's multipack sampler does "
                    "with multipack_real_batches, so epochs may end a step earlier");
        if (ck_max > 0 && ck_max != total && one_cycle) {
            ax_error(d, resume, "was saved by a run of %lld steps, this one has %lld: torch's OneCycleLR keeps the "
                     "checkpoint's total_steps in its state, so HF would follow the old cycle (and raise past step %lld); "
                     "resume with max_steps: %lld", (long long)ck_max, (long long)total, (long long)ck_max,
                     (long long)ck_max);
            free(hist);
            goto fail;
        }
        if (lead && ck_max > 0 && ck_max != total)
            ax_warn(d, resume, "was saved by a run of %lld steps, this one has %lld: the learning-rate schedule continues "
                    "as this run's", (long long)ck_max, (long long)total);
        if (start >= total) {
            ax_error(d, resume, "is at step %lld and training ends at step %lld (max_steps): nothing is left to train",
                     (long long)start, (long long)total);
            free(hist);
            goto fail;
        }
        if (!quiet) printf("axorun: resuming from %s at step %lld of %lld\n", resume, (long long)start + 1, (long long)total);
        if (s->best_ckpt_step > 0) { /* as HF keeps best_model_checkpoint's path, if it is still there */
            const char *sl = strrchr(resume, '/');
            snprintf(best_dir, sizeof best_dir, "%.*s%scheckpoint-%lld", sl ? (int)(sl - resume) : 0, resume, sl ? "/" : "",
                     (long long)s->best_ckpt_step);
            if (!rt_ckpt_resumable(best_dir)) {
                if (lead) ax_warn(d, best_dir, "the best checkpoint the resumed state names is gone; the best is tracked afresh");
                s->best_ckpt_step = 0;
                best_dir[0] = 0;
            }
        }
    }
    if (lead) {
        bad = rt_train_open_output(s, out_dir, o->overwrite, &log, d) != 0;
        if (!bad && hist) { /* the resumed run's log starts with the checkpoint's history */
            fputs(hist, log);
            fflush(log);
            ax_buf_puts(&logbuf, hist);
        }
    }
    free(hist);
    if (rt_session_any_rank(s, bad)) goto fail;
    rt_buf *loss_sum = rt_session_global(s, "stats/loss_sum"), *gss = rt_session_global(s, "stats/grad_sumsq");
    rt_buf *aux_sum = rt_session_global(s, "stats/aux_sum"); /* output_router_logits */
    int tty = isatty(fileno(stdout));
    if (!quiet)
        printf("axorun: %lld steps (%lld per epoch), global batch %lld rows x %lld tokens%s on %lld rank%s%s, %s executor\n",
               (long long)total, (long long)steps_per_epoch, (long long)G, (long long)s->S,
               s->B != s->mbs ? " (a micro-batch is one packed bin of micro_batch_size x sequence_len)" : "",
               (long long)(nranks * s->sp), nranks * s->sp > 1 ? "s" : "", s->sp > 1 ? " (sequence parallel: each row split over sp ranks)" : "",
               s->backend ? s->backend->name : "cpu");
    double t0 = rt_train_now(), tlast = t0;
    int64_t tok_since = 0;
    /* HF logs the mean loss of the steps since its last log (tr_loss / (global_step - _globalstep_last_logged)) */
    double loss_acc = 0;
    int64_t last_logged = start;
    const size_t BS = (size_t)(s->B * s->S);
    /* the epoch a resumed run starts in (an epoch of packed rows has its own number of steps): the ones before it
     * counted, its rows built */
    int64_t ep = 0, ep_first = 0;
    while (start >= ep_first + esp.nsteps)
        if (next_epoch(&ds, &dopt, &bt, real_batches, &ep, &ep_first, &esp, NULL, d) != 0) goto fail;
    if (ep > 0) {
        rt_rows_free(&rows);
        if (rt_data_build_epoch(&ds, &dopt, ep, &rows, d) != 0) goto fail;
    }
    stage = malloc(4 * BS * sizeof *stage + sizeof(int64_t) * (size_t)s->B); /* + a micro-batch's row numbers */
    if (!stage) abort();
    int64_t *mrow = (int64_t *)(void *)(stage + 4 * BS); /* 16 BS bytes in: 8-byte aligned */
    const int64_t nmult = mattr_i(m, "train.neftune_multiple", 1);
    const int nflat = (int)mattr_i(m, "train.neftune_flatten", 0);
    /* longrope on unpacked rows: Axolotl passes no position_ids, so HF's positions run over the collator's padded
     * width and its regime follows that width, not the rows' lengths */
    const int64_t rmult = mattr_i(m, "rope.pad_multiple", 0);
    const int rope_width = rmult > 0 && !dopt.sample_packing;
    int64_t last = total; /* the step training ends at: total, or earlier when it stops early */
    /* HF's eval_on_start, before step 1: it sets no best and counts no patience (HF's best metric is unset then). HF
     * also evaluates at the start of a resumed run, where its patience check can count that evaluation; axo does
     * not, so that a resumed run stays the straight run. */
    if (eval_on_start && start == 0 && total > 0) {
        double el;
        int64_t etok;
        if (run_eval(s, &erows, eval_bs, nranks, rank, dp, eval_top_up, eval_rope, &el, &etok, d) != 0) goto fail;
        report_eval(quiet ? NULL : stdout, 0, log, &logbuf, start, ep, el, etok);
    }
    for (int64_t step = start; step < total; step++) {
        if (step >= ep_first + esp.nsteps && next_epoch(&ds, &dopt, &bt, real_batches, &ep, &ep_first, &esp, &rows, d) != 0)
            goto fail;
        const int64_t e = ep, estep = step - ep_first;
        const int epoch_end = estep + 1 == esp.nsteps;
        if (o->trace) { /* one step's timeline (rank = pid) */
            s->st.trace = step + 1 == o->trace_step ? o->trace : NULL;
            s->st.trace_pid = rank_in_world(s);
        }
        int64_t ntgt = 0;
        for (int64_t i = 0; i < G; i++) {
            const int64_t r = rt_epoch_row(&bt, &esp, estep, i);
            if (r >= 0) ntgt += rt_rows_count_targets(&rows, r, 1);
        }
        /* no target in the whole step: the CE and its gradient are 0 whatever the scale; with the load-balancing loss
         * the scale 1 keeps the aux's gradient (seeded through it) */
        float scale = ntgt > 0 ? (float)(1.0 / (double)ntgt) : s->aux ? 1.0f : 0.0f;
        /* the load-balancing loss's divisor: the step's micro-batches that hold a row, on every rank and sp rank
         * (HF divides by the accumulation steps it has, fewer at an epoch's short last step) */
        int64_t aux_div = 0;
        for (int64_t q = 0; s->aux && q < (int64_t)nranks * s->grad_accum; q++) {
            int any = 0;
            for (int64_t b = 0; b < s->B && !any; b++) any = rt_epoch_row(&bt, &esp, estep, q * s->B + b) >= 0;
            aux_div += any;
        }
        aux_div *= s->sp;
        if (loss_sum) rt_f(loss_sum)[0] = 0;
        if (aux_sum) rt_f(aux_sum)[0] = 0;
        if (rt_train_push(s, loss_sum, d) != 0 || (aux_sum && rt_train_push(s, aux_sum, d) != 0)) goto fail;
        for (int64_t mb = 0; mb < s->grad_accum; mb++) {
            const int32_t *in[4];
            micro_rows(&rows, &bt, &esp, estep, (rank * s->grad_accum + mb) * s->B, (int32_t)dopt.pad_id, stage, in);
            if (s->neftune || rope_width || s->aux)
                for (int64_t b = 0; b < s->B; b++) mrow[b] = rt_epoch_row(&bt, &esp, estep, (rank * s->grad_accum + mb) * s->B + b);
            if (s->aux) { /* the load-balancing loss: its token weights, and its gradient's share of the step (Axolotl
                           * 0.19: each micro-batch's aux / accumulation steps, averaged over the ranks) over loss_scale */
                if (!auxm) auxm = malloc(sizeof(float) * BS);
                rt_aux_mask(&rows, mrow, s->B, in[3], s->aux_mask_ones, auxm);
                s->aux_mask_rows = auxm;
                const double share = aux_div > 0 ? s->router_aux_coef / (double)aux_div : 0;
                rt_f(&s->in_aux_scale)[0] = scale > 0 ? (float)(share / (double)scale) : 0.0f;
            }
            if (s->neftune) /* NEFTune's mag takes the width HF's collator gives this rank's micro-batch */
                s->neftune_width = rt_neftune_width(&rows, mrow, s->B, nmult, nflat);
            if (rope_width) {
                const int64_t w = rt_neftune_width(&rows, mrow, s->B, rmult, 0);
                s->max_position_set = 1;
                s->max_position_value = (int32_t)(w > 0 ? w - 1 : 0);
            }
            if (rt_session_micro_step(s, in[0], in[1], in[2], in[3], scale, d) != 0) goto fail;
            for (size_t i = 0; i < BS; i++) tok_since += in[1][i] != -100;
        }
        double lr, b1;
        if (one_cycle) { /* the lr and beta1 at once */
            char why[256];
            if (rt_one_cycle_at(&lrs, base_lr, step, &lr, &b1, why, sizeof why) != 0) { /* checked above for [0, total] */
                ax_error(d, "train", "lr_scheduler: one_cycle: %s", why);
                goto fail;
            }
            if (!isnan(b1)) rt_session_set_beta1(s, b1); /* cycle_momentum: the plan reads input beta1 */
        } else {
            lr = s->plateau_on ? s->plateau.lr : rt_lr_sched_at(&lrs, base_lr, step);
        }
        if (rt_session_opt_step(s, (float)lr, step + 1, d) != 0) goto fail;
        if (rt_train_pull(s, loss_sum, d) != 0 || rt_train_pull(s, gss, d) != 0 || (aux_sum && rt_train_pull(s, aux_sum, d) != 0))
            goto fail;
        float lsum[3] = {loss_sum ? rt_f(loss_sum)[0] : NAN, (float)tok_since, aux_sum ? rt_f(aux_sum)[0] : 0.0f};
        /* sp ranks hold parts of the same rows: their losses add up, their
         * token counts (of whole rows) are the same */
        if (aux_sum) { /* each sp rank's aux is its own tokens' (Axolotl's sequence parallelism): summed as the loss */
            const float a = lsum[2];
            lsum[2] = lsum[1], lsum[1] = a; /* [loss, aux, tokens]: sp reduces the first two */
        }
        if (s->sp > 1 && s->st.coll->all_reduce(s->st.coll->ctx, s->sp_axis, lsum, aux_sum ? 2 : 1) != 0) {
            ax_error(d, "train", "reducing the loss across sequence-parallel ranks failed");
            goto fail;
        }
        if (nranks > 1 && s->st.coll->all_reduce(s->st.coll->ctx, dp, lsum, aux_sum ? 3 : 2) != 0) {
            ax_error(d, "train", "reducing the loss across ranks failed");
            goto fail;
        }
        if (aux_sum) { /* back to [loss, tokens]; the loss then takes router_aux_loss_coef x the mean aux, as HF's */
            const float a = lsum[1];
            lsum[1] = lsum[2], lsum[2] = a;
        }
        double loss = (double)lsum[0] * scale;
        if (aux_sum && aux_div > 0) loss += s->router_aux_coef * (double)lsum[2] / (double)aux_div;
        double gnorm = gss ? sqrt((double)rt_f(gss)[0]) : NAN;
        /* A non-finite loss or gradient norm: the weights are or will be NaN from here on (axo has no fp16 loss
         * scaling, whose skipped steps make an inf normal). HF Trainer trains on and saves NaN weights; axo logs
         * the step and stops before it is saved, so that the checkpoints and the model already written stay the
         * last good state. Every rank sees the same reduced values, so every rank stops here. */
        const int diverged = (loss_sum && !isfinite(loss)) || (gss && !isfinite(gnorm));
        loss_acc += loss;
        if ((step + 1) % log_every == 0 || step + 1 == total || diverged) {
            double t = rt_train_now(), tps = (double)lsum[1] / fmax(t - tlast, 1e-9);
            const double log_loss = loss_acc / (double)(step + 1 - last_logged);
            loss_acc = 0, last_logged = step + 1;
            if (!quiet) {
                if (tty) printf("\r\033[K");
                printf("step %lld/%lld | epoch %lld | loss %.4f | grad_norm %.4f | lr %.3e | %.0f tok/s\n", (long long)step + 1,
                       (long long)total, (long long)e, log_loss, gnorm, lr, tps);
            }
            if (log) {
                char line[512];
                rt_log_line(line, sizeof line, step + 1, e, log_loss, gnorm, lr, tps);
                fputs(line, log);
                fflush(log);
                ax_buf_puts(&logbuf, line);
            }
            tlast = t;
            tok_since = 0;
        } else if (tty && !quiet) {
            int w = 30, done = (int)((step + 1) * w / total);
            printf("\r[%.*s%*s] %lld/%lld", done, "##############################", w - done, "", (long long)step + 1,
                   (long long)total);
            fflush(stdout);
        }
        if (diverged) {
            ax_error(d, "train",
                     "step %lld: loss %g, grad_norm %g: training diverged, so it stopped without saving this step (what "
                     "%s already holds is the last good state); lower learning_rate (now %g at this step) or set "
                     "max_grad_norm",
                     (long long)step + 1, loss, gnorm, out_dir, lr);
            goto fail;
        }
        int new_best = 0; /* this step's evaluation improved eval_loss (save_strategy: best) */
        const int eval_point = eval_every && (eval_epochly ? epoch_end : (step + 1) % eval_every == 0);
        if (eval_every && (eval_point || step + 1 == total)) {
            double el;
            int64_t etok;
            if (run_eval(s, &erows, eval_bs, nranks, rank, dp, eval_top_up, eval_rope, &el, &etok, d) != 0) goto fail;
            report_eval(quiet ? NULL : stdout, tty, log, &logbuf, step + 1, e, el, etok);
            const double plr = s->plateau.lr; /* HF steps the plateau after the evaluation: the next step has its lr */
            const int changed = s->plateau_on && eval_point ? rt_plateau_step(&s->plateau, &po, el) : 0;
            if (changed < 0) {
                ax_error(d, "train", "lr_scheduler: greedy: no memory for the smoothing window");
                goto fail;
            }
            if (changed && !quiet) {
                if (greedy)
                    printf("axorun: step %lld: greedy: lr %.3e -> %.3e\n", (long long)step + 1, plr, s->plateau.lr);
                else
                    printf("axorun: step %lld: reduce_lr_on_plateau: eval_loss has not improved on %.4f for more than "
                           "%lld evaluations: lr %.3e -> %.3e\n", (long long)step + 1, s->plateau.best,
                           (long long)po.patience, plr, s->plateau.lr);
            }
            if ((patience || load_best || save_mode == SAVE_BEST) && eval_point) {
                int better = s->best_step == 0 || (gib ? el > s->best_metric : el < s->best_metric);
                new_best = better;
                if (patience) { /* against the best before this evaluation, threshold 0 */
                    s->patience_count = better ? 0 : s->patience_count + 1;
                    if (s->patience_count >= patience && step + 1 < total) {
                        stop_early = 1;
                        if (!quiet)
                            printf("axorun: early stopping at step %lld: eval_loss has not improved on %.4f (step %lld) for "
                                   "%lld evaluations (early_stopping_patience)\n",
                                   (long long)step + 1, s->best_metric, (long long)s->best_step, (long long)patience);
                    }
                }
                if (better) s->best_metric = el, s->best_step = step + 1;
            }
        }
        const int save_now = save_mode == SAVE_STEPS   ? (step + 1) % save_every == 0 || step + 1 == total
                             : save_mode == SAVE_EPOCH ? epoch_end || step + 1 == total
                             : save_mode == SAVE_BEST  ? new_best
                                                       : 0;
        /* HF: the best checkpoint is the newest save whose step gave the best eval_loss */
        if (load_best && save_now && s->best_step == step + 1) {
            s->best_ckpt_step = step + 1;
            snprintf(best_dir, sizeof best_dir, "%s/checkpoint-%lld", out_dir, (long long)step + 1);
        }
        if (save_now) {
            char ck[4096];
            char name[64];
            snprintf(name, sizeof name, "checkpoint-%lld", (long long)step + 1);
            if (ax_path_join(ck, sizeof ck, out_dir, name) != 0) {
                ax_error(d, out_dir, "path too long");
                goto fail;
            }
            /* fsdp_config.state_dict_type: SHARDED_STATE_DICT checkpoints are per-rank files (sharded_ckpt.h) */
            int sharded = !s->adapter && !strcmp(mattr_s(m, "train.state_dict_type", "FULL_STATE_DICT"), "SHARDED_STATE_DICT");
            /* a resumed run replaces the checkpoints after its start that the
             * abandoned run left; any run replaces one that is not resumable
             * (a save that a crash cut short) */
            int ow = o->overwrite || resume || (lead && !rt_ckpt_resumable(ck));
            int ck_bad = (sharded ? rt_session_save_sharded(s, ck, ow, d) : rt_session_save(s, ck, ow, d)) != 0;
            if (rt_session_any_rank(s, ck_bad)) { /* a FULL save's status is rank 0's alone */
                if (!ck_bad) ax_error(d, ck, "checkpoint not written: another rank failed");
                goto fail;
            }
            if (rt_ckpt_save_state(s, ck, step + 1, total, (double)e + (double)(estep + 1) / (double)esp.nsteps, G, logbuf.data, d) != 0)
                goto fail;
            if (lead) rt_ckpt_prune(out_dir, keep, step + 1, load_best ? s->best_ckpt_step : 0); /* save_total_limit */
        }
        if (stop_early) {
            last = step + 1;
            break;
        }
    }
    if (load_best && s->best_ckpt_step > 0 && s->best_ckpt_step != last) { /* load_best_model_at_end */
        const char *ck = best_dir;
        if (rt_ckpt_load_params(s, ck, d) != 0) goto fail;
        if (!quiet && s->best_step == s->best_ckpt_step)
            printf("axorun: load_best_model_at_end: the final model is %s's, the best eval_loss (%.4f)\n", ck, s->best_metric);
        else if (!quiet)
            printf("axorun: load_best_model_at_end: the final model is %s's, the newest checkpoint that held the best "
                   "eval_loss when it was saved (the best since, %.4f at step %lld, fell between save_steps)\n",
                   ck, s->best_metric, (long long)s->best_step);
    }
    if (load_best && keep == 1 && s->best_ckpt_step > 0 && lead) /* HF: with save_total_limit 1 only the best stays */
        rt_ckpt_keep_only(out_dir, s->best_ckpt_step, last);
    s->st.trace = NULL;
    if (log) fclose(log);
    log = NULL;
    /* final model: files written atomically straight into output_dir */
    if (rt_train_write_model(s, out_dir, d) != 0) goto fail;
    s->neftune_width = 0; /* a later micro step outside this loop takes the row's width again */
    if (!quiet) printf("axorun: done in %.1f s; model saved to %s/\n", rt_train_now() - t0, out_dir);
    ax_buf_free(&logbuf);
    rt_rows_free(&rows);
    rt_data_free(&ds);
    rt_rows_free(&erows);
    rt_data_free(&eds);
    free(stage);
    s->aux_mask_rows = NULL, free(auxm);
    return 0;
fail:
    s->neftune_width = 0;
    rt_rows_free(&rows);
    ax_buf_free(&logbuf);
    free(stage);
    s->aux_mask_rows = NULL, free(auxm);
    s->st.trace = NULL;
    if (log) fclose(log);
    rt_data_free(&ds);
    rt_rows_free(&erows);
    rt_data_free(&eds);
    return -1;
}
