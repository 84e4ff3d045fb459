/* adapter.c — see adapter.h. */
#include "runtime/adapter.h"

#include "runtime/modeldir.h"
#include "runtime/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PEFT_PREFIX "base_model.model."

/* A [vocab, hidden] weight: the embedding or the lm_head */
static int vocab_matrix(const char *name) {
    size_t l = strlen(name);
    return (l >= 19 && !strcmp(name + l - 19, "embed_tokens.weight")) || (l >= 14 && !strcmp(name + l - 14, "lm_head.weight"));
}

static int empty_pattern(const json_t *p) { return !p || json_is_null(p) || (json_is_object(p) && !json_object_size(p)); }

/* empty, or PEFT's one entry for a fused gate_up_proj: twice the base value v */
static int gate_up_pattern(const json_t *p, double v) {
    if (empty_pattern(p)) return 1;
    const json_t *x = json_is_object(p) && json_object_size(p) == 1 ? json_object_get(p, RT_GATE_UP_PATTERN) : NULL;
    return json_is_number(x) && json_number_value(x) == 2 * v;
}

int rt_adapter_config_read(const char *dir, rt_adapter_cfg *c, ax_diag *d) {
    char path[4096];
    if (ax_path_join(path, sizeof path, dir, "adapter_config.json") != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    if (!ax_file_exists(path)) {
        ax_error(d, dir, "no adapter_config.json (a PEFT adapter directory has one)");
        return -1;
    }
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        ax_error(d, path, "%s (line %d)", je.text, je.line);
        return -1;
    }
    int rc = -1;
    json_t *r = json_object_get(j, "r"), *a = json_object_get(j, "lora_alpha"), *b = json_object_get(j, "base_model_name_or_path");
    const char *pt = json_string_value(json_object_get(j, "peft_type"));
    if (pt && strcmp(pt, "LORA")) {
        ax_error(d, path, "peft_type: expected \"LORA\", found \"%s\"", pt);
    } else if (!json_is_integer(r) || json_integer_value(r) < 1) {
        ax_error(d, path, "r: expected a positive integer");
    } else if (!json_is_number(a)) {
        ax_error(d, path, "lora_alpha: expected a number");
    } else if (!gate_up_pattern(json_object_get(j, "rank_pattern"), (double)json_integer_value(r)) ||
               !gate_up_pattern(json_object_get(j, "alpha_pattern"), json_number_value(a))) {
        ax_error(d, path, "rank_pattern / alpha_pattern: per-module ranks or alphas are not supported (one r and "
                 "lora_alpha; or PEFT's own {\"%s\": 2r} and {\"%s\": 2 lora_alpha} for an MoE model's fused "
                 "gate_up_proj)", RT_GATE_UP_PATTERN, RT_GATE_UP_PATTERN);
    } else if (empty_pattern(json_object_get(j, "rank_pattern")) != empty_pattern(json_object_get(j, "alpha_pattern"))) {
        ax_error(d, path, "rank_pattern and alpha_pattern: PEFT doubles both for the fused gate_up_proj, this file only one");
    } else {
        c->gate_up_fused = !empty_pattern(json_object_get(j, "rank_pattern"));
        const json_t *tp = json_object_get(j, "target_parameters");
        c->target_params = json_is_array(tp) && json_array_size(tp) > 0;
        c->tp_gate_up = c->tp_down = 0;
        for (size_t i = 0; json_is_array(tp) && i < json_array_size(tp); i++) {
            const char *x = json_string_value(json_array_get(tp, i));
            const size_t n = x ? strlen(x) : 0;
            c->tp_gate_up |= n >= 12 && !strcmp(x + n - 12, "gate_up_proj");
            c->tp_down |= n >= 9 && !strcmp(x + n - 9, "down_proj");
        }
        c->r = json_integer_value(r);
        c->alpha = json_number_value(a);
        c->rslora = json_is_true(json_object_get(j, "use_rslora"));
        c->dora = json_is_true(json_object_get(j, "use_dora"));
        c->scale = c->alpha / (c->rslora ? sqrt((double)c->r) : (double)c->r);
        snprintf(c->base, sizeof c->base, "%s", json_is_string(b) ? json_string_value(b) : "");
        json_t *rv = json_object_get(j, "revision");
        snprintf(c->revision, sizeof c->revision, "%s", json_is_string(rv) ? json_string_value(rv) : "");
        rc = 0;
    }
    json_decref(j);
    return rc;
}


int rt_adapter_token_indices(const char *adapter_dir, int64_t **out, ax_diag *d) {
    char path[4096];
    if (ax_path_join(path, sizeof path, adapter_dir, "adapter_config.json") != 0) return -1;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je), *t = j ? json_object_get(j, "trainable_token_indices") : NULL;
    if (json_is_object(t) && json_object_size(t) == 1) {
        const char *k = json_object_iter_key(json_object_iter(t));
        size_t kl = strlen(k);
        t = kl >= 12 && !strcmp(k + kl - 12, "embed_tokens") ? json_object_iter_value(json_object_iter(t)) : NULL;
    }
    int n = json_is_array(t) ? (int)json_array_size(t) : 0;
    int64_t *v = malloc(sizeof *v * (size_t)(n + 1));
    for (int i = 0; i < n && v; i++) {
        json_t *e = json_array_get(t, (size_t)i);
        v[i] = json_is_integer(e) ? json_integer_value(e) : -1;
        if (v[i] < 0) n = -1;
    }
    json_decref(j);
    if (n <= 0) {
        ax_error(d, path, "trainable_token_indices: expected a list of token ids of embed_tokens, as the adapter holds "
                          "trainable_tokens_delta");
        free(v);
        return -1;
    }
    *out = v;
    return n;
}

/* PEFT's merge of trainable tokens: rows `idx` of the embedding (and of an lm_head tied to it) become delta's. */
static int merge_tokens(const rt_st_file *af, const rt_st_tensor *D, const char *adapter_dir, const char *name,
                        float *W, int64_t V, int64_t H, ax_diag *d) {
    int64_t *idx = NULL;
    int n = rt_adapter_token_indices(adapter_dir, &idx, d);
    if (n < 0) return -1;
    int rc = 0;
    if (D->rank != 2 || D->shape[0] != n || D->shape[1] != H) {
        ax_error(d, af->path, "trainable_tokens_delta is not [%d, %lld] (one row of %s per trainable token)", n,
                 (long long)H, name);
        rc = -1;
    }
    for (int i = 0; !rc && i < n; i++)
        if (idx[i] >= V) {
            ax_error(d, af->path, "trainable token %lld is outside the %lld rows of %s", (long long)idx[i], (long long)V, name);
            rc = -1;
        }
    float *rows = rc ? NULL : malloc(sizeof(float) * (size_t)(n * H));
    if (!rc && rt_st_read_f32(af, D, rows, d) != 0) rc = -1;
    for (int i = 0; !rc && i < n; i++) memcpy(W + idx[i] * H, rows + (int64_t)i * H, sizeof(float) * (size_t)H);
    free(rows);
    free(idx);
    return rc;
}

/* W [out,in] (f32, in place) += s * B [out,r] A [r,in], in double; with a
 * DoRA magnitude mag [out] (NULL: plain LoRA) each adapted row is then
 * scaled by mag[i] / its norm (PEFT's DoRA merge), still in double. */
static void merge_into(float *W, const float *A, const float *B, const float *mag, int64_t out, int64_t in, int64_t r,
                       double s) {
    double *row = malloc(sizeof(double) * (size_t)(in ? in : 1));
    for (int64_t i = 0; i < out; i++) {
        for (int64_t j = 0; j < in; j++) row[j] = 0;
        for (int64_t k = 0; k < r; k++) {
            double b = B[i * r + k];
            for (int64_t j = 0; j < in; j++) row[j] += b * A[k * in + j];
        }
        double g = 1, nn = 0;
        for (int64_t j = 0; j < in; j++) {
            row[j] = (double)W[i * in + j] + s * row[j];
            nn += row[j] * row[j];
        }
        if (mag) g = (double)mag[i] / sqrt(nn);
        for (int64_t j = 0; j < in; j++) W[i * in + j] = (float)(mag ? g * row[j] : row[j]);
    }
    free(row);
}

static void *encode(const float *w, int64_t n, rt_st_dtype dt) {
    size_t es = rt_st_dtype_size(dt);
    uint8_t *o = malloc(es * (size_t)(n ? n : 1));
    if (!o) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (dt == RT_ST_F32) {
            memcpy(o + 4 * i, &w[i], 4);
        } else {
            uint16_t h = dt == RT_ST_BF16 ? ax_f32_to_bf16(w[i]) : ax_f32_to_f16(w[i]);
            memcpy(o + 2 * i, &h, 2);
        }
    }
    return o;
}

const char *rt_adapter_module_name(const char *key, char *out, size_t cap) {
    static const char *const from[] = {"language_model.model.", "language_model.lm_head.", "vision_tower.vision_model.",
                                       "vision_tower.", "multi_modal_projector."};
    static const char *const to[] = {"model.language_model.", "lm_head.", "model.vision_tower.", "model.vision_tower.",
                                     "model.multi_modal_projector."};
    for (int i = 0; i < 5; i++) {
        size_t k = strlen(from[i]);
        if (!strncmp(key, from[i], k)) {
            snprintf(out, cap, "%s%s", to[i], key + k);
            return out;
        }
    }
    snprintf(out, cap, "%s", key);
    return out;
}

/* The adapter tensor of module `mod` ("model.layers.0.self_attn.q_proj"),
 * which = "lora_A" / "lora_B"; marks it used. */
static const rt_st_tensor *adapter_of(const rt_st_file *af, char *used, const char *mod, const char *which) {
    char name[1200];
    if (snprintf(name, sizeof name, PEFT_PREFIX "%s.%s.weight", mod, which) >= (int)sizeof name) return NULL;
    const rt_st_tensor *t = rt_st_find(af, name);
    if (t) used[t - af->tensors] = 1;
    return t;
}

/* 1 if the base tensor t (named name) can take a merge: F32, BF16 or F16 */
static int mergeable(const rt_st_file *f, const rt_st_tensor *t, const char *name, ax_diag *d) {
    if (t->dtype == RT_ST_F32 || t->dtype == RT_ST_BF16 || t->dtype == RT_ST_F16) return 1;
    ax_error(d, f->path, "%s is %s: merging needs an F32, BF16 or F16 weight", name, rt_st_dtype_name(t->dtype));
    return 0;
}

/* ---- an MoE layer's experts (PEFT's ParamWrapper on the stacked weights, see passes/lora.c) ----
 * The base holds each expert's tensors (<block>.experts.<e>.<part>.weight: Qwen3-MoE's gate_proj / up_proj /
 * down_proj, Mixtral's block_sparse_moe ... w1 / w3 / w2) or transformers 5's stacks (<block>.experts.gate_up_proj
 * [E, 2I, H], down_proj [E, H, I]); the adapter sits on the container model.layers.N.mlp.experts (transformers 5's
 * module name: Mixtral's block_sparse_moe is mlp there), gate_up_proj's under base_layer when down_proj's wraps it.
 * W (f32 [ne, no, in], experts e0.. and rows o0.. of each expert's delta) += s * B_e A_e in double. */
static void merge_experts(float *W, const float *A, const float *B, int64_t E, int64_t r, int64_t e0, int64_t ne,
                          int64_t o0, int64_t no, int64_t in, double s) {
    double *row = malloc(sizeof(double) * (size_t)(in ? in : 1));
    for (int64_t e = e0; e < e0 + ne; e++)
        for (int64_t o = o0; o < o0 + no; o++) {
            for (int64_t i = 0; i < in; i++) row[i] = 0;
            for (int64_t j = 0; j < r; j++) {
                const double b = B[o * r * E + j * E + e];
                for (int64_t i = 0; i < in; i++) row[i] += b * A[(e * r + j) * in + i];
            }
            float *w = W + ((e - e0) * no + (o - o0)) * in;
            for (int64_t i = 0; i < in; i++) w[i] = (float)((double)w[i] + s * row[i]);
        }
    free(row);
}

/* gpt-oss's stacks are [E, In, Out] (transformers' is_transposed): W_e += s (B_e A_e)^T, A [E r, In], B [Out, r E] */
static void merge_experts_t(float *W, const float *A, const float *B, int64_t E, int64_t r, int64_t In, int64_t Out,
                            double s) {
    for (int64_t e = 0; e < E; e++)
        for (int64_t p = 0; p < In; p++)
            for (int64_t q = 0; q < Out; q++) {
                double acc = 0;
                for (int64_t j = 0; j < r; j++) acc += (double)B[q * r * E + j * E + e] * (double)A[(e * r + j) * In + p];
                float *w = W + (e * In + p) * Out + q;
                *w = (float)((double)*w + s * acc);
            }
}

/* key (a base tensor's name, transformers 5's module names) -> its experts' container, the expert (-1: the stack)
 * and which weight it is (0 gate, 1 up, 2 down of one expert; 3 gate_up, 4 down stacked); 0 if it is none */
static int expert_tensor(const char *key, char *container, size_t cap, int64_t *e, int *part) {
    static const char *const parts[][2] = {{"gate_proj", "w1"}, {"up_proj", "w3"}, {"down_proj", "w2"}};
    const char *x = strstr(key, ".experts.");
    if (!x) return 0;
    const char *rest = x + 9;
    snprintf(container, cap, "%.*s", (int)(rest - 1 - key), key);
    if (!strcmp(rest, "gate_up_proj") || !strcmp(rest, "down_proj")) {
        *e = -1, *part = rest[0] == 'g' ? 3 : 4;
        return 1;
    }
    char *end;
    const long long v = strtoll(rest, &end, 10);
    if (end == rest || *end != '.' || v < 0) return 0;
    for (int k = 0; k < 3; k++)
        for (int m = 0; m < 2; m++) {
            const size_t n = strlen(parts[k][m]);
            if (!strncmp(end + 1, parts[k][m], n) && !strcmp(end + 1 + n, ".weight")) {
                *e = v, *part = k;
                return 1;
            }
        }
    return 0;
}

/* The merged tensors' bytes go to a scratch file beside the output as each is made (its buffer freed at once), so a
 * merge holds one tensor in memory at a time, not every merged weight of the model (a 70B model's, or gpt-oss's
 * dequantized experts: tens of GB); rt_st_write reads them back through a mapping. The file is unlinked as soon as
 * it is made: nothing is left behind, whatever happens. */
typedef struct spill {
    int fd;
    int64_t pos;
    char path[4096];
} spill;

/* *buf (o's bytes) to the scratch file at *off; *buf freed. 0, or -1 with an error (a NULL *buf is left for the
 * caller's out-of-memory check). */
static int spill_put(spill *sp, const char *out_dir, const rt_st_out *o, void **buf, int64_t *off, ax_diag *d) {
    if (!*buf) return 0;
    if (sp->fd < 0) { /* beside out_dir (which need not exist yet): "merged/" is "merged" */
        size_t n0 = strlen(out_dir);
        while (n0 > 1 && out_dir[n0 - 1] == '/') n0--;
        snprintf(sp->path, sizeof sp->path, "%.*s.axo-merge-XXXXXX", (int)(n0 ? n0 : 1), n0 ? out_dir : ".");
        sp->fd = mkstemp(sp->path);
        if (sp->fd < 0) {
            ax_error(d, sp->path, "cannot create the merge's scratch file: %s", strerror(errno));
            return -1;
        }
        unlink(sp->path);
    }
    int64_t n = (int64_t)rt_st_dtype_size(o->dtype);
    for (int i = 0; i < o->rank; i++) n *= o->shape[i];
    const uint8_t *p = *buf;
    for (int64_t done = 0; done < n;) {
        ssize_t w = pwrite(sp->fd, p + done, (size_t)(n - done), (off_t)(sp->pos + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            ax_error(d, sp->path, "writing the merge's scratch file (%lld bytes of %s): %s", (long long)n, o->name,
                     w < 0 ? strerror(errno) : "no space");
            return -1;
        }
        done += w;
    }
    *off = sp->pos;
    sp->pos += n + (-n & 63); /* each tensor 64-byte aligned in the mapping */
    free(*buf);
    *buf = NULL;
    return 0;
}

int rt_merge_lora(const char *adapter_dir, const char *base_dir, const char *out_dir, int overwrite, int *merged,
                  ax_diag *d) {
    rt_adapter_cfg cfg;
    if (rt_adapter_config_read(adapter_dir, &cfg, d) != 0) return -1;
    if (!base_dir) base_dir = cfg.base;
    if (!base_dir[0]) {
        ax_error(d, adapter_dir, "adapter_config.json names no base_model_name_or_path; pass --base DIR");
        return -1;
    }
    char path[4096], tmp[4096];
    if (ax_path_join(path, sizeof path, adapter_dir, "adapter_model.safetensors") != 0) {
        ax_error(d, adapter_dir, "path too long");
        return -1;
    }
    rt_st_file af;
    if (rt_st_open(path, &af, d) != 0) return -1;
    rt_st_model bm;
    if (rt_st_model_open(base_dir, &bm, d) != 0) {
        rt_st_close(&af);
        return -1;
    }
    char *used = calloc((size_t)af.ntensors + 1, 1);
    rt_st_out *outs = calloc((size_t)bm.nentries + 1, sizeof *outs);
    /* the base's config.json: tie_word_embeddings (an lm_head saved anyway takes the token rows too; Gemma 2's and 3's
     * configs tie by default); a multimodal model (its names, rt_adapter_module_name) */
    int tied = 0, mm = 0, oss = 0; /* oss: gpt-oss, its experts stacked [E, In, Out] */
    {
        char cp[4096];
        json_error_t je;
        json_t *cj = ax_path_join(cp, sizeof cp, base_dir, "config.json") == 0 ? json_load_file(cp, 0, &je) : NULL;
        const char *mt = json_string_value(json_object_get(cj, "model_type"));
        json_t *tw = json_object_get(cj, "tie_word_embeddings");
        tied = cj && (json_is_true(tw) ||
                      (!tw && mt && (!strcmp(mt, "gemma2") || !strcmp(mt, "gemma3") || !strcmp(mt, "gemma3_text") ||
                                     !strcmp(mt, "mistral3"))));
        const char *a0 = json_string_value(json_array_get(json_object_get(cj, "architectures"), 0));
        mm = a0 && (!strcmp(a0, "Gemma3ForConditionalGeneration") || !strcmp(a0, "Mistral3ForConditionalGeneration"));
        oss = a0 && !strcmp(a0, "GptOssForCausalLM");
        json_decref(cj);
    }
    char tokens_delta[200];
    snprintf(tokens_delta, sizeof tokens_delta, PEFT_PREFIX "%sembed_tokens.token_adapter.trainable_tokens_delta",
             mm ? "model.language_model." : "model.");
    void **bufs = calloc((size_t)bm.nentries + 1, sizeof *bufs);
    int64_t *soff = malloc(sizeof *soff * (size_t)(bm.nentries + 1)); /* a merged tensor's place in the scratch file */
    spill sp = {.fd = -1};
    void *smap = NULL;
    if (!bufs || !soff) abort();
    for (int i = 0; i <= bm.nentries; i++) soff[i] = -1;
    /* the experts' factors last read, gate_up_proj's [1] and down_proj's [0] (the base's per-expert tensors
     * alternate between the two) */
    const rt_st_tensor *xA[2] = {NULL, NULL}, *xB[2] = {NULL, NULL};
    float *xa[2] = {NULL, NULL}, *xb[2] = {NULL, NULL};
    int n = 0, nmerged = 0, nsaved = 0, rc = 0, exists = 0, begun = 0;
    int64_t vocab = 0; /* rows of an embedding / lm_head saved whole after tokens were added (0: as the base's) */
    /* gpt-oss over an MXFP4 base with its experts adapted: every experts' weight is dequantized (transformers'
     * convert_moe_packed_tensors), merged where adapted and saved as transformers' dequantized model holds it
     * (bf16 [E, C, R] under the parameter's name), and config.json loses quantization_config: Axolotl's merge of
     * the Mxfp4Config(dequantize=True) model. An adapter of the attention alone leaves the experts packed. */
    const int dq_oss = oss && cfg.target_params && (cfg.tp_gate_up || cfg.tp_down);
    char **xname = calloc((size_t)bm.nentries + 1, sizeof *xname);
    int64_t *xshape = calloc((size_t)(3 * bm.nentries + 3), sizeof *xshape);
    int dequantized = 0;
    for (int e = 0; e < bm.nentries && !rc; e++) {
        const rt_st_entry *E = &bm.entries[e];
        const rt_st_tensor *t = E->tensor;
        const rt_st_file *f = &bm.shards[E->shard];
        const size_t nl = strlen(E->name);
        if (dq_oss && nl > 7 && strstr(E->name, ".experts.") &&
            (!strcmp(E->name + nl - 7, "_blocks") || !strcmp(E->name + nl - 7, "_scales"))) {
            char stem[1024], ctr[1024];
            snprintf(stem, sizeof stem, "%.*s", (int)(nl - 7), E->name);
            int64_t xe = 0;
            int xpart = 0;
            if (!expert_tensor(stem, ctr, sizeof ctr, &xe, &xpart) || xe >= 0) goto not_mx;
            if (!strcmp(E->name + nl - 7, "_scales")) { /* dequantized with its blocks */
                char nb[1100];
                snprintf(nb, sizeof nb, "%s_blocks", stem);
                const rt_st_file *fb0;
                if (rt_st_model_find(&bm, nb, &fb0)) continue;
                ax_error(d, f->path, "\"%s\" has no \"%s\" beside it (MXFP4 experts are blocks and scales)", E->name, nb);
                rc = -1;
                break;
            }
            const rt_st_file *fb, *fs;
            const rt_st_tensor *tb, *ts;
            int64_t XE, C, R;
            if (rt_st_mxfp4_find(&bm, stem, &fb, &tb, &fs, &ts, &XE, &C, &R, d) != 0) {
                rc = -1;
                break;
            }
            const int gu = xpart == 3;
            char inner[1100];
            snprintf(inner, sizeof inner, "%s.base_layer", ctr);
            const int nested = gu && cfg.tp_gate_up && cfg.tp_down;
            const rt_st_tensor *A = NULL, *B = NULL;
            if (gu ? cfg.tp_gate_up : cfg.tp_down) {
                A = adapter_of(&af, used, nested ? inner : ctr, "lora_A");
                B = adapter_of(&af, used, nested ? inner : ctr, "lora_B");
            }
            const int64_t rr = cfg.r, EE = A && rr ? A->shape[0] / rr : 0;
            const double sc = cfg.rslora ? cfg.alpha / sqrt((double)rr) : cfg.alpha / (double)rr;
            if ((A || B) && (!A || !B || A->rank != 2 || B->rank != 2 || EE != XE || A->shape[0] != XE * rr ||
                             A->shape[1] != C || B->shape[0] != R || B->shape[1] != rr * XE)) {
                ax_error(d, path, "the adapter of %s's %s does not fit %s (expected lora_A [%lld, %lld] and lora_B [%lld, "
                         "%lld])", ctr, gu ? "gate_up_proj" : "down_proj", stem, (long long)(XE * rr), (long long)C,
                         (long long)R, (long long)(rr * XE));
                rc = -1;
                break;
            }
            const int64_t nw = XE * C * R;
            float *W = malloc(sizeof(float) * (size_t)(nw ? nw : 1)), *a = NULL, *b = NULL;
            if (A) a = malloc(sizeof(float) * (size_t)(XE * rr * C)), b = malloc(sizeof(float) * (size_t)(R * rr * XE));
            if (!W || (A && (!a || !b))) {
                ax_error(d, stem, "out of memory dequantizing the MXFP4 experts (%lld values; the merge holds every "
                         "merged tensor until it writes the file)", (long long)nw);
                rc = -1;
            }
            if (!rc) rt_st_mxfp4_dequant(fb, tb, fs, ts, 0, XE, W);
            if (!rc && A) {
                if (rt_st_read_f32(&af, A, a, d) || rt_st_read_f32(&af, B, b, d)) rc = -1;
                else merge_experts_t(W, a, b, XE, rr, C, R, sc), nmerged++;
            }
            if (!rc) {
                xname[n] = strdup(stem);
                int64_t *sh = xshape + 3 * n;
                sh[0] = XE, sh[1] = C, sh[2] = R;
                outs[n] = (rt_st_out){.name = xname[n], .dtype = RT_ST_BF16, .rank = 3, .shape = sh,
                                      .data = bufs[n] = encode(W, nw, RT_ST_BF16)};
                if (!bufs[n] || !xname[n]) {
                    ax_error(d, stem, "out of memory writing the dequantized experts (%lld values)", (long long)nw);
                    rc = -1;
                } else if (spill_put(&sp, out_dir, &outs[n], &bufs[n], &soff[n], d) != 0) {
                    rc = -1;
                }
                n++, dequantized = 1;
            }
            free(W), free(a), free(b);
            continue;
        }
    not_mx:
        outs[n] = (rt_st_out){.name = E->name, .dtype = t->dtype, .rank = t->rank, .shape = t->shape, .data = rt_st_data(f, t)};
        char key[1024], mod[1024];
        if (mm) rt_adapter_module_name(E->name, key, sizeof key);
        else snprintf(key, sizeof key, "%s", E->name);
        char *bsm = strstr(key, ".block_sparse_moe."); /* Mixtral's MoE block: transformers 5 names the module mlp */
        if (bsm) memmove(bsm + 5, bsm + 18, strlen(bsm + 18) + 1), memcpy(bsm, ".mlp.", 5);
        size_t len = strlen(key);
        const rt_st_tensor *A = NULL, *B = NULL, *M = NULL;
        char ctr[1024];
        int64_t xe = 0;
        int xpart = 0;
        if (cfg.target_params && expert_tensor(key, ctr, sizeof ctr, &xe, &xpart)) {
            const int gu = xpart == 0 || xpart == 1 || xpart == 3;
            char inner[1100];
            snprintf(inner, sizeof inner, "%s.base_layer", ctr);
            /* gate_up_proj's adapter: under base_layer when down_proj is adapted too, else on the container */
            const int nested = gu && cfg.tp_gate_up && cfg.tp_down;
            if (gu ? cfg.tp_gate_up : cfg.tp_down) {
                A = adapter_of(&af, used, nested ? inner : ctr, "lora_A");
                B = adapter_of(&af, used, nested ? inner : ctr, "lora_B");
            }
            if (!A && !B) {
                n++;
                continue; /* this weight not adapted: kept */
            }
            const int64_t rr = cfg.r * (gu && cfg.gate_up_fused ? 2 : 1);
            const double al = cfg.alpha * (gu && cfg.gate_up_fused ? 2 : 1), sc = cfg.rslora ? al / sqrt((double)rr) : al / (double)rr;
            const int tr = oss && xe < 0 && t->rank == 3; /* [E, In, Out] */
            const int64_t in = tr ? t->shape[1] : t->rank ? t->shape[t->rank - 1] : 0, EE = A && rr ? A->shape[0] / rr : 0;
            const int64_t no = tr ? t->shape[2] : t->rank == 3 ? t->shape[1] : t->rank == 2 ? t->shape[0] : 0;
            const int64_t O = xpart == 0 || xpart == 1 ? 2 * no : no, o0 = xpart == 1 ? no : 0;
            const int64_t ne = t->rank == 3 ? t->shape[0] : 1;
            if (!A || !B || t->rank != (xe < 0 ? 3 : 2) || A->rank != 2 || B->rank != 2 || EE < 1 || A->shape[0] != EE * rr ||
                A->shape[1] != in || B->shape[0] != O || B->shape[1] != rr * EE || (xe < 0 ? ne != EE : xe >= EE)) {
                ax_error(d, path, "the adapter of %s's %s does not fit %s (lora_A %s, lora_B %s: expected [E*%lld, %lld] "
                                  "and [%lld, %lld*E], E experts)",
                         ctr, gu ? "gate_up_proj" : "down_proj", E->name, A ? "present" : "missing", B ? "present" : "missing",
                         (long long)rr, (long long)in, (long long)O, (long long)rr);
                rc = -1;
                break;
            }
            if (!mergeable(f, t, E->name, d)) {
                rc = -1;
                break;
            }
            const int64_t nw = ne * no * in;
            float *W = malloc(sizeof(float) * (size_t)(nw ? nw : 1));
            rc = rt_st_read_f32(f, t, W, d) ? -1 : 0;
            if (!rc && (A != xA[gu] || B != xB[gu])) { /* the factors, read once for all the experts' tensors */
                free(xa[gu]), free(xb[gu]);
                xa[gu] = malloc(sizeof(float) * (size_t)(EE * rr * in)), xb[gu] = malloc(sizeof(float) * (size_t)(O * rr * EE));
                xA[gu] = A, xB[gu] = B;
                if (rt_st_read_f32(&af, A, xa[gu], d) || rt_st_read_f32(&af, B, xb[gu], d)) rc = -1, xA[gu] = xB[gu] = NULL;
            }
            if (!rc) {
                if (tr) merge_experts_t(W, xa[gu], xb[gu], EE, rr, in, no, sc);
                else merge_experts(W, xa[gu], xb[gu], EE, rr, xe < 0 ? 0 : xe, ne, o0, no, in, sc);
                int64_t bad = -1;
                for (int64_t k = 0; k < nw && bad < 0; k++)
                    if (!isfinite(W[k])) bad = k;
                if (bad >= 0) {
                    ax_error(d, path, "merging %s gives a non-finite weight at element %lld (NaN in the adapter or the "
                                      "base, or a huge lora_alpha)", E->name, (long long)bad);
                    rc = -1;
                } else {
                    outs[n].data = bufs[n] = encode(W, nw, t->dtype);
                    if (spill_put(&sp, out_dir, &outs[n], &bufs[n], &soff[n], d) != 0) rc = -1;
                    nmerged++;
                }
            }
            free(W);
            n++;
            continue;
        }
        if (len > 7 && len < sizeof mod && !strcmp(key + len - 7, ".weight")) {
            memcpy(mod, key, len - 7);
            mod[len - 7] = 0;
            A = adapter_of(&af, used, mod, "lora_A");
            B = adapter_of(&af, used, mod, "lora_B");
            char mname[1200]; /* DoRA: PEFT saves the magnitude without ".weight" */
            if (snprintf(mname, sizeof mname, PEFT_PREFIX "%s.lora_magnitude_vector", mod) < (int)sizeof mname &&
                (M = rt_st_find(&af, mname)) != NULL)
                used[M - af.tensors] = 1;
        }
        char whole[1200]; /* a module of modules_to_save: PEFT saves it whole under the base's name */
        const rt_st_tensor *W2 = snprintf(whole, sizeof whole, PEFT_PREFIX "%s", key) < (int)sizeof whole
                                     ? rt_st_find(&af, whole) : NULL;
        if (W2 && (A || B)) {
            ax_error(d, path, "holds both a LoRA adapter and a whole copy of %s", E->name);
            rc = -1;
            break;
        }
        if (W2) {
            used[W2 - af.tensors] = 1;
            int same = W2->rank == t->rank;
            for (int i = 0; same && i < t->rank; i++) same = W2->shape[i] == t->shape[i];
            /* tokens added to the tokenizer resized the vocab: the saved embedding / lm_head has other rows */
            if (!same && vocab_matrix(E->name) && W2->rank == 2 && t->rank == 2 && W2->shape[1] == t->shape[1] &&
                (!vocab || vocab == W2->shape[0])) {
                same = 1;
                vocab = W2->shape[0];
                outs[n].shape = W2->shape;
            }
            if (!same || (t->dtype != RT_ST_F32 && t->dtype != RT_ST_BF16 && t->dtype != RT_ST_F16)) {
                ax_error(d, path, "\"%s\" (modules_to_save) does not fit the base's %s (%s)", whole, E->name,
                         same ? "it is not F32, BF16 or F16" : "another shape");
                rc = -1;
                break;
            }
            int64_t ne = 1;
            for (int i = 0; i < W2->rank; i++) ne *= W2->shape[i];
            float *w = malloc(sizeof(float) * (size_t)(ne ? ne : 1));
            rc = rt_st_read_f32(&af, W2, w, d) ? -1 : 0;
            if (!rc) {
                outs[n].data = bufs[n] = encode(w, ne, t->dtype);
                if (spill_put(&sp, out_dir, &outs[n], &bufs[n], &soff[n], d) != 0) rc = -1;
                nsaved++;
            }
            free(w);
        }
        /* trainable tokens: the embedding's rows (a tied lm_head saved beside it reads the same, as PEFT ties them) */
        const rt_st_tensor *TD = rt_st_find(&af, tokens_delta);
        const int tokens_here = TD && !W2 && !A && !B && t->rank == 2 && vocab_matrix(key) &&
                                (!strncmp(tokens_delta + strlen(PEFT_PREFIX), key, len - 7) ||
                                 (tied && !strcmp(key, "lm_head.weight")));
        if (tokens_here) {
            used[TD - af.tensors] = 1;
            if (!mergeable(f, t, E->name, d)) {
                rc = -1;
                break;
            }
            float *W = malloc(sizeof(float) * (size_t)(t->shape[0] * t->shape[1]));
            rc = rt_st_read_f32(f, t, W, d) || merge_tokens(&af, TD, adapter_dir, E->name, W, t->shape[0], t->shape[1], d)
                     ? -1
                     : 0;
            if (!rc) {
                outs[n].data = bufs[n] = encode(W, t->shape[0] * t->shape[1], t->dtype);
                if (spill_put(&sp, out_dir, &outs[n], &bufs[n], &soff[n], d) != 0) rc = -1;
                nmerged++;
            }
            free(W);
        }
        if (A || B || M) {
            if (!A || !B || (cfg.dora && !M) || (!cfg.dora && M) || (M && (M->rank != 1 || M->shape[0] != t->shape[0])) || t->rank != 2 || A->rank != 2 || B->rank != 2 || A->shape[1] != t->shape[1] ||
                B->shape[0] != t->shape[0] || A->shape[0] != B->shape[1] || A->shape[0] != cfg.r) {
                ax_error(d, path, "the adapter of %s does not fit it (lora_A %s, lora_B %s, lora_magnitude_vector %s with "
                                  "use_dora %s, weight [%lld, %lld], r %lld)",
                         E->name, A ? "present" : "missing", B ? "present" : "missing", M ? "present" : "missing",
                         cfg.dora ? "true" : "false", (long long)t->shape[0], (long long)(t->rank > 1 ? t->shape[1] : 0),
                         (long long)cfg.r);
                rc = -1;
                break;
            }
            if (!mergeable(f, t, E->name, d)) {
                rc = -1;
                break;
            }
            int64_t out = t->shape[0], in = t->shape[1], r = A->shape[0];
            float *W = malloc(sizeof(float) * (size_t)(out * in)), *a = malloc(sizeof(float) * (size_t)(r * in)),
                  *b = malloc(sizeof(float) * (size_t)(out * r)), *mg = M ? malloc(sizeof(float) * (size_t)(out + 1)) : NULL;
            rc = rt_st_read_f32(f, t, W, d) || rt_st_read_f32(&af, A, a, d) || rt_st_read_f32(&af, B, b, d) ||
                         (M && rt_st_read_f32(&af, M, mg, d))
                     ? -1
                     : 0;
            if (!rc) {
                merge_into(W, a, b, mg, out, in, r, cfg.scale);
                int64_t bad = -1; /* a merged weight must be finite: no NaN or inf model is written */
                for (int64_t k = 0; k < out * in && bad < 0; k++)
                    if (!isfinite(W[k])) bad = k;
                if (bad >= 0) {
                    ax_error(d, path, "merging %s gives a non-finite weight at [%lld, %lld] (lora_alpha %g / r %lld%s: "
                                      "scale %g; or NaN in the adapter or the base)",
                             E->name, (long long)(bad / in), (long long)(bad % in), cfg.alpha, (long long)cfg.r,
                             cfg.rslora ? " with rsLoRA" : "", cfg.scale);
                    rc = -1;
                } else {
                    outs[n].data = bufs[n] = encode(W, out * in, t->dtype);
                    if (spill_put(&sp, out_dir, &outs[n], &bufs[n], &soff[n], d) != 0) rc = -1;
                    nmerged++;
                }
            }
            free(W), free(a), free(b), free(mg);
        }
        n++;
    }
    for (int i = 0; i < af.ntensors && !rc; i++)
        if (!used[i]) {
            ax_error(d, path, "\"%s\" adapts no weight of the base model %s", af.tensors[i].name, base_dir);
            rc = -1;
        }
    for (int i = 0; i < n && !rc && vocab; i++) { /* the embedding and an untied lm_head must agree */
        if (vocab_matrix(outs[i].name) && outs[i].shape[0] != vocab) {
            ax_error(d, path, "holds a %lld-row embedding or lm_head (tokens were added), but %s keeps the base's %lld rows: "
                              "save both embed_tokens and lm_head (lora_modules_to_save)",
                     (long long)vocab, outs[i].name, (long long)outs[i].shape[0]);
            rc = -1;
        }
    }
    if (!rc && !nmerged && !nsaved) {
        ax_error(d, path, "holds no LoRA adapter");
        rc = -1;
    }
    if (!rc && sp.fd >= 0 && sp.pos > 0) { /* the merged tensors, read back from the scratch file */
        smap = mmap(NULL, (size_t)sp.pos, PROT_READ, MAP_SHARED, sp.fd, 0);
        if (smap == MAP_FAILED) {
            smap = NULL;
            ax_error(d, sp.path, "cannot map the merge's scratch file (%lld bytes): %s", (long long)sp.pos, strerror(errno));
            rc = -1;
        }
        for (int i = 0; smap && i < n; i++)
            if (soff[i] >= 0) outs[i].data = (const uint8_t *)smap + soff[i];
    }
    for (int i = 0; !rc && i < n; i++)
        if (!outs[i].data) { /* a merged tensor's buffer could not be allocated (encode) */
            ax_error(d, outs[i].name, "out of memory encoding the merged tensor");
            rc = -1;
        }
    if (!rc) {
        rc = rt_modeldir_begin(out_dir, overwrite, (long)getpid(), tmp, sizeof tmp, &exists, d);
        begun = !rc;
    }
    if (!rc) {
        char cfgp[4096];
        rc = ax_path_join(path, sizeof path, tmp, "model.safetensors") != 0 || rt_st_write(path, outs, n, d) != 0;
        /* the files that make the merged dir loadable on its own, as
         * `axolotl merge_lora` leaves it: config and tokenizer */
        if (!rc && ax_path_join(cfgp, sizeof cfgp, base_dir, "config.json") == 0 && ax_file_exists(cfgp)) {
            size_t len;
            char *txt = ax_read_file(cfgp, &len, d);
            if (txt && vocab) { /* the resized vocab, as transformers' resize_token_embeddings leaves config.json */
                json_error_t je;
                json_t *j = json_loadb(txt, len, 0, &je);
                free(txt);
                txt = NULL;
                if (!j) ax_error(d, cfgp, "config.json: %s", je.text);
                if (j) { /* transformers sets get_text_config().vocab_size: a multimodal model's text_config */
                    json_t *tc = json_object_get(j, "text_config");
                    if (mm && !json_is_object(tc)) json_object_set_new(j, "text_config", tc = json_object());
                    if (!mm) json_object_set_new(j, "vocab_size", json_integer(vocab));
                    if (json_is_object(tc) && (mm || json_object_get(tc, "vocab_size")))
                        json_object_set_new(tc, "vocab_size", json_integer(vocab));
                    txt = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));
                    len = txt ? strlen(txt) : 0;
                    json_decref(j);
                }
            }
            if (txt && dequantized) { /* the experts are plain tensors now */
                json_error_t je;
                json_t *j = json_loadb(txt, len, 0, &je);
                free(txt);
                txt = NULL;
                if (!j) ax_error(d, cfgp, "config.json: %s", je.text);
                if (j) {
                    json_object_del(j, "quantization_config");
                    txt = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));
                    len = txt ? strlen(txt) : 0;
                    json_decref(j);
                }
            }
            rc = !txt || ax_path_join(path, sizeof path, tmp, "config.json") != 0 || ax_write_file_atomic(path, txt, len, d) != 0;
            free(txt);
        }
        /* the base model's tokenizer, then the adapter dir's (axorun saves the tokenizer, with the config's chat
         * template, beside an adapter): the adapter's wins */
        if (!rc) rc = rt_modeldir_copy_tokenizer(base_dir, tmp, 1, NULL, NULL, d);
        if (!rc) rc = rt_modeldir_copy_tokenizer(adapter_dir, tmp, 0, NULL, NULL, d);
        rc = rc ? -1 : rt_modeldir_publish(tmp, out_dir, exists, d);
        if (rc && begun) rt_modeldir_remove(tmp);
    }
    for (int i = 0; i < n; i++) free(bufs[i]), free(xname[i]);
    if (smap) munmap(smap, (size_t)sp.pos);
    if (sp.fd >= 0) close(sp.fd);
    free(soff);
    free(xname), free(xshape);
    free(bufs), free(outs), free(used), free(xa[0]), free(xa[1]), free(xb[0]), free(xb[1]);
    rt_st_model_close(&bm);
    rt_st_close(&af);
    if (!rc && merged) *merged = nmerged;
    return rc;
}
