/* lora.c — LoRA and QLoRA adapters on the forward graph (PEFT semantics).
 *
 * Runs on micro_step's forward, before autodiff. Every parameter of the
 * base model becomes frozen (trainable=0). Each targeted linear layer
 * y = x W^T (+ b) becomes
 *
 *     y = x W^T (+ b) + s * (dropout(x) A^T) B^T,    s = alpha / r
 *                                                    (alpha / sqrt(r): rsLoRA)
 *
 * with A [r, in] (kaiming-uniform, bound 1/sqrt(in): PEFT's init) and
 * B [out, r] (zeros, so step 0 is the base model) trainable f32 params
 * named as PEFT saves them (base_model.model.<module>.lora_A.weight). With
 * bf16 the adapter weights are cast to bf16 for the matmuls, as torch
 * autocast does with PEFT's f32 adapters; the optimizer updates them in
 * f32 directly (no master copy needed).
 *
 * QLoRA additionally stores every linear weight of the decoder layers (all
 * of them, targeted or not; not the embedding or lm_head, as bitsandbytes)
 * as NF4 (ir/quant.h): the global W becomes nf4 with two companions
 * W.absmax (u8 [out, in/64]) and W.rowmax (f32 [out]), filled by the
 * runtime when it loads the weights (attr quant="nf4"), and every use reads
 * dequant_nf4(W, W.absmax, W.rowmax) in the compute dtype.
 *
 * The lm head is frozen too, so the fused linear cross entropy gets dw=0
 * and skips its dW GEMM (a third of its FLOPs) and the [V, H] result.
 *
 * lora_modules_to_save (PEFT's modules_to_save): the params of the named
 * modules (PEFT's suffix rule, e.g. embed_tokens, lm_head) stay trainable
 * and are saved whole in the adapter file as base_model.model.<param>
 * (attrs adapter=2, saved_as), as PEFT's ModulesToSaveWrapper saves them.
 * A module that is also a LoRA target or 4-bit, or the embedding of a model
 * that ties it to the lm head (PEFT would train untied copies), is an
 * error.
 *
 * peft_layers_to_transform (cfg->layers; PEFT's layers_to_transform): a
 * module matched by a target name's suffix (or by target_linear) is adapted
 * only when its layer index is one of them; a target equal to the module's
 * full name adapts it whatever its layer (PEFT's check_target_module_exists).
 * The index is the number after the last ".<name>." followed by
 * "<digits>." in the module name, <name> any segment, or one of
 * peft_layers_pattern's names (Llama/Qwen/Mistral: model.layers.<N>.).
 *
 * peft_trainable_token_indices (cfg->tokens; PEFT's TrainableTokensLayer):
 * a trainable f32 param delta [n, H] (PEFT's trainable_tokens_delta, saved
 * under base_model.model.model.embed_tokens.token_adapter.
 * trainable_tokens_delta) starts as those rows of embed_tokens (the runtime
 * copies them once the weights are loaded: init token_rows); every use of
 * the embedding in the forward reads index_copy(W, delta) instead, PEFT's
 * W.index_copy(0, indices, delta), in W's dtype. A tied lm head is the same
 * param, so it reads the same copy, as PEFT ties the two adapters.
 *
 * An MoE model's router and experts: PEFT (with transformers 5) moves their
 * target names onto their weights and adapts those as parameters
 * (ParamWrapper, lora_delta): see "PEFT's ParamWrapper" below.
 *
 * The dropout mask of each adapter is drawn from the runtime input
 * `dropout_seed` (one per micro step and rank) and the adapter's index as
 * salt; checkpointed layers recompute the same masks.
 */
#include "passes/passes.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lora_site {
    int w;        /* the base weight's global */
    int a, b;     /* adapter globals, -1 when the layer is not targeted */
    int mag;      /* DoRA's magnitude vector, -1 without */
    int absmax, rowmax; /* QLoRA companions, -1 without */
    int salt;
} lora_site;

/* "model.layers.3.self_attn.q_proj.weight" -> "model.layers.3.self_attn.q_proj" in buf (also for .bias) */
static const char *module_of(const char *pname, char *buf, size_t cap) {
    size_t n = strlen(pname);
    if (n > 7 && !strcmp(pname + n - 7, ".weight")) n -= 7;
    else if (n > 5 && !strcmp(pname + n - 5, ".bias")) n -= 5;
    if (n >= cap) n = cap - 1;
    memcpy(buf, pname, n);
    buf[n] = 0;
    return buf;
}

/* PEFT's rule for a list of target names: the module's full name, or its
 * name ending in "." + target. */
static int target_matches(const char *module, const char *t) {
    size_t n = strlen(module), k = strlen(t);
    if (!strcmp(module, t)) return 1;
    return n > k && module[n - k - 1] == '.' && !strcmp(module + n - k, t);
}

/* A decoder linear layer: operand 1 of a `matmul {tb=1}` that is a param
 * of a decoder layer. The embedding and the lm head (also when tied) are
 * not linear layers here, as neither PEFT's all-linear nor bitsandbytes
 * touch the output layer. */
/* The text model's module prefix: "model.", or the multimodal Gemma 3's "model.language_model." */
static const char *text_prefix(const ir_module *m) {
    const ir_attr *a = ir_module_attr(m, "model.text_prefix");
    return a && a->kind == IR_ATTR_STR ? a->s : "model.";
}

static int is_decoder_linear(const ir_module *m, const ir_node *n) {
    if (n->op != IR_OP_matmul || !IR_REF_IS_GLOBAL(n->in[1]) || !ir_attr_int(n->attrs, n->nattrs, "tb", 0) ||
        ir_attr_int(n->attrs, n->nattrs, "ta", 0))
        return 0;
    const ir_global *G = &m->globals[IR_REF_GLOBAL(n->in[1])];
    const char *tp = text_prefix(m);
    const size_t k = strlen(tp);
    /* linear=0: a weight used as a matmul that is no nn.Linear (an MoE router's nn.Parameter) */
    return G->role == IR_ROLE_PARAM && G->type.rank == 2 && !strncmp(G->name, tp, k) && !strncmp(G->name + k, "layers.", 7) &&
           ir_attr_int(G->attrs, G->nattrs, "linear", 1);
}

/* PEFT's layer index of a module name: the number N of the last
 * ".<seg>.<N>." in it (regex `.*\.<seg>\.(\d+)\.`), where <seg> is any
 * segment without pattern, else exactly the pattern; -1 when none. */
static int64_t layer_index_of(const char *module, const char *pattern) {
    int64_t found = -1;
    for (const char *d = strchr(module, '.'); d; d = strchr(d + 1, '.')) {
        const char *seg = d + 1, *e = strchr(seg, '.');
        if (!e) break;
        if (pattern && ((size_t)(e - seg) != strlen(pattern) || strncmp(seg, pattern, (size_t)(e - seg)))) continue;
        const char *num = e + 1, *ne = num;
        while (*ne >= '0' && *ne <= '9') ne++;
        if (ne == num || *ne != '.') continue;
        int64_t v = 0;
        for (const char *c = num; c < ne && v < INT64_MAX / 10 - 10; c++) v = v * 10 + (*c - '0');
        found = v; /* the last match: the regex's greedy .* */
    }
    return found;
}

/* Is the module in a layer of peft_layers_to_transform (always when none
 * are given)? With several patterns, the first that finds an index. */
static int in_layers(const char *module, const pass_lora_cfg *cfg) {
    if (cfg->nlayers <= 0) return 1;
    int64_t idx = -1;
    if (cfg->npattern <= 0) idx = layer_index_of(module, NULL);
    for (int k = 0; k < cfg->npattern && idx < 0; k++) idx = layer_index_of(module, cfg->pattern[k]);
    for (int k = 0; idx >= 0 && k < cfg->nlayers; k++)
        if (cfg->layers[k] == idx) return 1;
    return 0;
}

static int add_adapter(ir_module *m, const char *module, const char *which, int64_t rows, int64_t cols, const char *init,
                       double bound) {
    char name[512], hf[600];
    snprintf(name, sizeof name, "%s.%s.weight", module, which);
    snprintf(hf, sizeof hf, "base_model.model.%s.%s.weight", module, which);
    ir_attr at[] = {ir_as("hf", hf), ir_as("init", init), ir_af("bound", bound), ir_ai("decay", 1),
                    ir_ai("adapter", 1)};
    return ir_global_add(m, name, ir_type_make(IR_F32, 2, (int64_t[]){rows, cols}), IR_ROLE_PARAM, at, 5);
}

/* DoRA's magnitude m [out] (PEFT's lora_magnitude_vector): f32, trainable,
 * initialised by the runtime to the row norms of the base weight `w` (of
 * its dequantized values when w is NF4) once the weights are loaded. */
static int add_magnitude(ir_module *m, const char *module, int64_t out, int w) {
    char name[600], hf[640], wname[600];
    snprintf(name, sizeof name, "%s.lora_magnitude_vector", module);
    snprintf(hf, sizeof hf, "base_model.model.%s.lora_magnitude_vector", module);
    snprintf(wname, sizeof wname, "%s", m->globals[w].name);
    ir_attr at[] = {ir_as("hf", hf), ir_as("init", "dora_row_norm"), ir_as("norm_of", wname), ir_ai("decay", 1),
                    ir_ai("adapter", 1)};
    return ir_global_add(m, name, ir_type_make(IR_F32, 1, (int64_t[]){out}), IR_ROLE_PARAM, at, 5);
}

/* ---- PEFT's ParamWrapper: LoRA on a weight itself (MoE experts and routers) -------------------------------
 * PEFT (>= 0.19) with transformers 5 adapts an MoE layer's router and its experts' stacked weights as parameters
 * (target_parameters), each with a ParamWrapper: the weight is replaced, while the module runs, by w + s B_e A_e
 * for each expert e (IR op lora_delta), A [E*r, in] (rows e*r.. for expert e), B [out, r*E] (column j*E+e of it
 * for expert e), the router a plain [E, H] weight (one "expert"). The names: PEFT's v4 target names move there
 * (moe_convert); lora_target_parameters names the weights directly. Several wrapped weights of one module nest:
 * the experts' gate_up_proj (wrapped first) is then the base_layer of down_proj's wrapper, which its saved keys
 * say (model.layers.N.mlp.experts.base_layer.lora_A.weight). */
enum { PW_ROUTER, PW_GATE_UP, PW_DOWN };
static const char *const pw_param[3] = {"gate.weight", "gate_up_proj", "down_proj"};

typedef struct pw_site {
    int w, a, b, kind;
    int t; /* the weight is [E, In, Out] (gpt-oss's experts): lora_delta's t */
    double scale;
} pw_site;

/* the kind of weight a global is for a ParamWrapper (-1: not an MoE router's or experts') */
static int pw_kind(const ir_global *G) {
    if (G->role != IR_ROLE_PARAM) return -1;
    const char *dot = strrchr(G->name, '.');
    if ((ir_attr_int(G->attrs, G->nattrs, "stack", 0) || ir_attr_int(G->attrs, G->nattrs, "transposed", 0)) &&
        G->type.rank == 3 && dot)
        return !strcmp(dot + 1, "gate_up_proj") ? PW_GATE_UP : !strcmp(dot + 1, "down_proj") ? PW_DOWN : -1;
    return !ir_attr_int(G->attrs, G->nattrs, "linear", 1) && G->type.rank == 2 ? PW_ROUTER : -1;
}

/* PEFT's _convert_peft_config_moe for target_modules T over moe's names (router, gate part, up part, down part; the
 * first that a target equals or ends in after a '.' wins): hits[k] counts the targets moved onto name k's weight,
 * the rest stay module targets (*rest). The gate and up parts share gate_up_proj: PEFT refuses one alone. */
/* model.moe_targets' comma-separated names into names (at most 4); their count */
static int moe_names(const char *moe, char names[4][64]) {
    int nn = 0;
    for (const char *p = moe; *p && nn < 4;) {
        const char *e = strchr(p, ',');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(names[nn++], 64, "%.*s", (int)(n < 63 ? n : 63), p);
        p += n + (e != NULL);
    }
    return nn;
}

static int moe_convert(const char *moe, const char *const *T, int nT, const char **rest, int *nrest, int hits[4],
                       ax_diag *d) {
    char names[4][64];
    const int nn = moe_names(moe, names);
    *nrest = 0;
    for (int k = 0; k < 4; k++) hits[k] = 0;
    for (int t = 0; t < nT; t++) {
        int k = 0;
        while (k < nn && !target_matches(T[t], names[k])) k++;
        if (k < nn) hits[k]++;
        else rest[(*nrest)++] = T[t];
    }
    if (nn == 4 && !hits[1] != !hits[2]) {
        ax_error(d, "lora_target_modules", "\"%s\" without \"%s\": PEFT (with transformers 5) refuses one of the two, "
                 "which are fused into the experts' gate_up_proj; target both or neither", names[hits[1] ? 1 : 2],
                 names[hits[1] ? 2 : 1]);
        return -1;
    }
    return 0;
}

static int add_pw_adapter(ir_module *m, const char *wname, const char *hfmod, const char *which, int64_t rows,
                          int64_t cols, const char *init, double bound, int kind) {
    char name[600], hf[700];
    snprintf(name, sizeof name, "%s.%s.weight", wname, which);
    snprintf(hf, sizeof hf, "base_model.model.%s.%s.weight", hfmod, which);
    ir_attr at[] = {ir_as("hf", hf), ir_as("init", init), ir_af("bound", bound), ir_ai("decay", 1), ir_ai("adapter", 1),
                    ir_as("param_target", pw_param[kind])};
    return ir_global_add(m, name, ir_type_make(IR_F32, 2, (int64_t[]){rows, cols}), IR_ROLE_PARAM, at, 6);
}

static void quantize_global(ir_module *m, lora_site *s) {
    char name[600];
    ir_global *G = &m->globals[s->w];
    int64_t N = G->type.dims[0], K = G->type.dims[1];
    const char *wname = G->name;
    snprintf(name, sizeof name, "%s.absmax", wname);
    ir_attr part[] = {ir_ai("trainable", 0), ir_as("quant_part_of", wname)};
    s->absmax = ir_global_add(m, name, ir_type_make(IR_U8, 2, (int64_t[]){N, (K + 63) / 64}), IR_ROLE_PARAM, part, 2);
    snprintf(name, sizeof name, "%s.rowmax", m->globals[s->w].name);
    s->rowmax = ir_global_add(m, name, ir_type_make(IR_F32, 1, (int64_t[]){N}), IR_ROLE_PARAM, part, 2);
    G = &m->globals[s->w]; /* ir_global_add may have moved the array */
    G->type.dtype = IR_NF4;
    ir_global_set_attr(m, s->w, ir_as("quant", "nf4"));
}

/* quantize_moe_experts: an MoE layer's stacked experts [E, O, I] as NF4 rows of I (bitsandbytes quantizes the
 * flattened tensor in blocks of 64, which are those rows' blocks when I is a multiple of 64), the companions
 * [E, O, ceil(I/64)] and [E, O], split by experts with the codes. Returns the companions in *absmax, *rowmax. */
static void quantize_stacked(ir_module *m, int g, int *absmax, int *rowmax) {
    char name[600];
    const ir_global *G = &m->globals[g];
    const int64_t E = G->type.dims[0], O = G->type.dims[1], I = G->type.dims[2];
    char wname[512];
    snprintf(wname, sizeof wname, "%s", G->name);
    ir_attr part[] = {ir_ai("trainable", 0), ir_as("quant_part_of", wname)};
    snprintf(name, sizeof name, "%s.absmax", wname);
    *absmax = ir_global_add(m, name, ir_type_make(IR_U8, 3, (int64_t[]){E, O, (I + 63) / 64}), IR_ROLE_PARAM, part, 2);
    snprintf(name, sizeof name, "%s.rowmax", wname);
    *rowmax = ir_global_add(m, name, ir_type_make(IR_F32, 2, (int64_t[]){E, O}), IR_ROLE_PARAM, part, 2);
    m->globals[g].type.dtype = IR_NF4;
    ir_global_set_attr(m, g, ir_as("quant", "nf4"));
}

/* peft_trainable_token_indices: the delta param of embed_tokens' rows
 * cfg->tokens (see the top); returns embed_tokens' global and sets *delta. */
static int token_adapter(ir_module *m, const pass_lora_cfg *cfg, int ng0, int *delta, ax_diag *d) {
    int g = -1;
    char ename[300], dname[400], dhf[450];
    snprintf(ename, sizeof ename, "%sembed_tokens.weight", text_prefix(m));
    snprintf(dname, sizeof dname, "%sembed_tokens.token_adapter.trainable_tokens_delta", text_prefix(m));
    snprintf(dhf, sizeof dhf, "base_model.model.%s", dname);
    for (int i = 0; i < ng0 && g < 0; i++) {
        const ir_global *G = &m->globals[i];
        if (G->role == IR_ROLE_PARAM && G->type.rank == 2 && !strcmp(G->name, ename)) g = i;
    }
    if (g < 0) {
        ax_error(d, "peft_trainable_token_indices", "the model has no embed_tokens weight");
        return -1;
    }
    const ir_global *W = &m->globals[g];
    const int64_t V = W->type.dims[0], H = W->type.dims[1];
    if (ir_attr_int(W->attrs, W->nattrs, "adapter", 0) == 2) {
        ax_error(d, "peft_trainable_token_indices", "embed_tokens is in lora_modules_to_save too; PEFT refuses both "
                 "(train it whole, or these rows of it)");
        return -1;
    }
    for (int i = 0; i < cfg->ntokens; i++)
        if (cfg->tokens[i] >= V) {
            ax_error(d, "peft_trainable_token_indices", "token id %lld is outside the vocabulary (%lld rows of embed_tokens)",
                     (long long)cfg->tokens[i], (long long)V);
            return -1;
        }
    char wname[600];
    snprintf(wname, sizeof wname, "%s", W->name);
    ir_attr at[] = {ir_as("hf", dhf), ir_as("init", "token_rows"), ir_as("rows_of", wname),
                    ir_aints("rows", cfg->ntokens, cfg->tokens), ir_ai("decay", 1), ir_ai("adapter", 1)};
    *delta = ir_global_add(m, dname, ir_type_make(IR_F32, 2, (int64_t[]){cfg->ntokens, H}), IR_ROLE_PARAM, at, 6);
    ir_module_set_attr(m, ir_aints("lora.trainable_token_indices", cfg->ntokens, cfg->tokens));
    return *delta < 0 ? -1 : g;
}

/* lora_modules_to_save: the params of the named modules (among the first
 * ng0 globals, the base model's) are trainable and saved whole. */
static int save_modules(ir_module *m, const pass_lora_cfg *cfg, int ng0, const int *site_of, const lora_site *sites,
                        ax_diag *d) {
    char mod[512], as[600], emod[300];
    int tied = ir_attr_int(m->attrs, m->nattrs, "model.tie_word_embeddings", 0) != 0;
    snprintf(emod, sizeof emod, "%sembed_tokens", text_prefix(m));
    const char *moe = ir_attr_str(m->attrs, m->nattrs, "model.moe_targets", NULL);
    for (int t = 0; t < cfg->nsave; t++) {
        const char *x = cfg->save_modules[t];
        int hits = 0;
        /* PEFT saves an MoE layer's experts / router module whole under its own keys (modules_to_save wraps the
         * module); axo holds them as stacked parameters, and merge-lora could not place them: not implemented */
        if (moe && (target_matches(x, "experts") || target_matches(x, "gate") || target_matches(x, "gate_up_proj") ||
                    target_matches(x, "mlp") || target_matches(x, "block_sparse_moe"))) {
            ax_error(d, "lora_modules_to_save", "\"%s\": saving an MoE layer's experts or router whole is not implemented "
                     "(name modules such as embed_tokens, lm_head, norm)", x);
            return -1;
        }
        for (int g = 0; g < ng0; g++) {
            const ir_global *G = &m->globals[g];
            if (G->role != IR_ROLE_PARAM || ir_attr_str(G->attrs, G->nattrs, "quant_part_of", NULL)) continue;
            module_of(G->name, mod, sizeof mod);
            if (!target_matches(mod, x)) continue;
            hits++;
            if (tied && !strcmp(mod, emod)) {
                ax_error(d, "lora_modules_to_save", "\"%s\": this model ties lm_head to embed_tokens (tie_word_embeddings), "
                         "and PEFT would train untied copies of the two; training the tied embedding is not implemented", x);
                return -1;
            }
            if (site_of[g] >= 0 && (sites[site_of[g]].a >= 0 || sites[site_of[g]].absmax >= 0)) {
                ax_error(d, "lora_modules_to_save", "\"%s\": %s is %s; a module is either adapted or saved whole", x, G->name,
                         sites[site_of[g]].absmax >= 0 ? "a 4-bit (load_in_4bit) weight" : "also a LoRA target");
                return -1;
            }
            snprintf(as, sizeof as, "base_model.model.%s", G->name); /* PEFT's key: the module's name */
            ir_global_set_attr(m, g, ir_ai("trainable", 1));
            ir_global_set_attr(m, g, ir_ai("adapter", 2));
            ir_global_set_attr(m, g, ir_as("saved_as", as));
        }
        if (!hits) {
            ax_error(d, "lora_modules_to_save", "\"%s\" matches no module of the model%s (expected names such as "
                     "embed_tokens, lm_head, norm)", x,
                     tied && !strcmp(x, "lm_head") ? " (its lm_head is tied to embed_tokens)" : "");
            return -1;
        }
    }
    return 0;
}

int pass_lora(ir_module *m, const pass_lora_cfg *cfg, int32_t *loss, ax_diag *d) {
    if (!cfg->adapter) return 0;
    ir_program *p = ir_program_find(m, "micro_step");
    if (!p) {
        ax_error(d, "lora", "module has no micro_step program");
        return -1;
    }
    if (cfg->r <= 0) {
        ax_error(d, "lora_r", "expected a positive rank, found %lld", (long long)cfg->r);
        return -1;
    }
    int64_t nl = ir_attr_int(m->attrs, m->nattrs, "model.layers", -1);
    for (int k = 0; k < cfg->nlayers; k++)
        if (cfg->layers[k] < 0 || (nl >= 0 && cfg->layers[k] >= nl)) {
            ax_error(d, "peft_layers_to_transform", "layer %lld is out of range: the model has %lld decoder layers (0 to %lld)",
                     (long long)cfg->layers[k], (long long)nl, (long long)nl - 1);
            return -1;
        }
    /* An MoE model: PEFT (with transformers 5) first moves the v4 names of the router and the experts' linears
     * onto their weights as target_parameters (moe_convert), over Axolotl's list of target_modules: the names given,
     * lora_target_linear's linear layers (a dense layer's gate_proj too, so the experts get adapted and the dense
     * MLP not, as PEFT does), or PEFT's "all-linear", which it resolves to the linear layers and those names. The
     * remaining names then match modules as on any model. */
    const char *moe = ir_attr_str(m->attrs, m->nattrs, "model.moe_targets", NULL);
    /* gpt-oss: no name moves (PEFT converts none of its modules), but lora_target_parameters wraps its router's and
     * experts' weights (transposed: [E, In, Out]) */
    const int oss = !strcmp(ir_attr_str(m->attrs, m->nattrs, "model.arch", ""), "GptOssForCausalLM");
    /* The same for any MoE model whose names PEFT converts none of (gpt-oss, Qwen2-MoE: the frontend then writes
     * no model.moe_targets): router and expert weights are there, and only lora_target_parameters reaches them */
    int direct = 0;
    for (int g = 0; g < m->nglobals && !moe && !direct; g++) direct = pw_kind(&m->globals[g]) >= 0;
    const pass_lora_cfg *ocfg = cfg;
    pass_lora_cfg lc = *cfg;
    int hits[4] = {0, 0, 0, 0};
    const char **T = NULL, **rest = NULL;
    char (*leaf)[64] = NULL;
    if (moe) {
        const int cap = cfg->ntargets + p->nnodes + 8;
        T = malloc(sizeof *T * (size_t)cap), rest = malloc(sizeof *rest * (size_t)cap);
        leaf = malloc(sizeof *leaf * (size_t)cap);
        int nT = 0, nleaf = 0;
        for (int t = 0; t < cfg->ntargets; t++) T[nT++] = cfg->targets[t];
        char mn[512];
        for (int i = 0; cfg->target_linear && i < p->nnodes; i++) {
            if (!is_decoder_linear(m, &p->nodes[i])) continue;
            const char *mod = module_of(m->globals[IR_REF_GLOBAL(p->nodes[i].in[1])].name, mn, sizeof mn), *dot = strrchr(mod, '.');
            const char *ty = dot ? dot + 1 : mod;
            int dup = 0;
            for (int k = 0; k < nleaf && !dup; k++) dup = !strcmp(leaf[k], ty);
            if (dup) continue;
            snprintf(leaf[nleaf], sizeof leaf[0], "%.63s", ty);
            T[nT++] = leaf[nleaf++];
        }
        if (cfg->all_linear_string) { /* PEFT adds the v4 names of the router and experts (no nn.Linear any more) */
            char names[4][64];
            const int nn = moe_names(moe, names);
            for (int k = 0; k < nn && nleaf + 1 < cap; k++) {
                memcpy(leaf[nleaf], names[k], sizeof leaf[0]); /* both 64 bytes, NUL-terminated */
                T[nT++] = leaf[nleaf++];
            }
        }
        if (moe_convert(moe, T, nT, rest, &lc.ntargets, hits, d) != 0) {
            free(T), free(rest), free(leaf);
            return -1;
        }
        lc.targets = rest, lc.target_linear = 0, lc.all_linear_string = 0;
        cfg = &lc;
    }
    for (int g = 0; g < m->nglobals; g++)
        if (m->globals[g].role == IR_ROLE_PARAM) ir_global_set_attr(m, g, ir_ai("trainable", 0));

    /* the sites, in graph order (salts and names are deterministic) */
    int ng0 = m->nglobals;
    int *site_of = malloc(sizeof(int) * ((size_t)(ng0 > 0 ? ng0 : 0) + 1));
    for (int g = 0; g < ng0; g++) site_of[g] = -1;
    lora_site *sites = calloc((size_t)ng0 + 1, sizeof *sites);
    int nsites = 0, ntargeted = 0, nnamed = 0; /* nnamed: matched by name, before the layer filter */
    int *tmatched = calloc((size_t)(cfg->ntargets > 0 ? cfg->ntargets : 0) + 1, sizeof(int));
    pw_site *pws = NULL; /* the ParamWrapper sites (pw_of: a global's, or -1) */
    int *pw_of = NULL, npw = 0;
    int *qabs = NULL, *qrow = NULL, nquant = 0; /* quantize_moe_experts: a stacked global's NF4 companions, or -1 */
    char *ptmatched = NULL;
    char mod[512];
    for (int i = 0; i < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i];
        if (!is_decoder_linear(m, n)) continue;
        int g = IR_REF_GLOBAL(n->in[1]);
        if (site_of[g] >= 0) continue;
        lora_site *s = &sites[nsites];
        *s = (lora_site){.w = g, .a = -1, .b = -1, .mag = -1, .absmax = -1, .rowmax = -1, .salt = nsites};
        site_of[g] = nsites++;
        module_of(m->globals[g].name, mod, sizeof mod);
        /* a full name adapts its module whatever the layer; a suffix (and
         * target_linear) only in peft_layers_to_transform's layers */
        int exact = 0, suffix = cfg->target_linear;
        for (int t = 0; t < cfg->ntargets; t++)
            if (!strcmp(mod, cfg->targets[t])) exact = 1, tmatched[t] = 1;
            else if (target_matches(mod, cfg->targets[t])) suffix = 1, tmatched[t] = 1;
        nnamed += exact || suffix;
        int hit = exact || (suffix && in_layers(mod, cfg));
        int64_t out = m->globals[g].type.dims[0], in = m->globals[g].type.dims[1];
        if (cfg->adapter == PASS_ADAPTER_QLORA) {
            if (in % 2) {
                ax_error(d, "load_in_4bit", "%s has %lld inputs: NF4 rows need an even count (two codes a byte)",
                         m->globals[g].name, (long long)in);
                goto fail;
            }
            quantize_global(m, s);
        }
        if (hit) {
            s->a = add_adapter(m, mod, "lora_A", cfg->r, in, cfg->init == PASS_LORA_INIT_GAUSSIAN ? "normal" : "uniform",
                               1.0 / sqrt((double)in));
            if (cfg->init == PASS_LORA_INIT_GAUSSIAN) ir_global_set_attr(m, s->a, ir_af("std", 1.0 / (double)cfg->r));
            s->b = cfg->init == PASS_LORA_INIT_FALSE ? add_adapter(m, mod, "lora_B", out, cfg->r, "uniform", 1.0 / sqrt((double)cfg->r))
                                                     : add_adapter(m, mod, "lora_B", out, cfg->r, "zeros", 0);
            if (cfg->dora) s->mag = add_magnitude(m, mod, out, g);
            ntargeted++;
        }
    }
    /* the ParamWrapper sites: the weights PEFT's converted names adapt (hits), and those lora_target_parameters names */
    pws = calloc((size_t)ng0 + 1, sizeof *pws);
    pw_of = malloc(sizeof(int) * ((size_t)ng0 + 1));
    ptmatched = calloc((size_t)cfg->ntarget_params + 1, 1);
    for (int g = 0; g < ng0; g++) {
        const ir_global *G = &m->globals[g];
        const int kind = moe || direct ? pw_kind(G) : -1;
        pw_of[g] = -1;
        int hit = kind == PW_ROUTER ? hits[0] > 0 : kind == PW_GATE_UP ? hits[1] > 0 : kind == PW_DOWN ? hits[3] > 0 : 0;
        for (int t = 0; t < cfg->ntarget_params; t++) {
            if (G->role != IR_ROLE_PARAM || !target_matches(G->name, cfg->target_params[t])) continue;
            if (kind < 0) {
                ax_error(d, "lora_target_parameters", "\"%s\" matches %s: LoRA on a parameter itself is implemented for "
                         "an MoE model's router and experts' weights only (%s, mlp.experts.gate_up_proj, "
                         "mlp.experts.down_proj); adapt linear layers with lora_target_modules", cfg->target_params[t],
                         G->name, oss ? "mlp.router.weight" : "mlp.gate.weight");
                goto fail;
            }
            ptmatched[t] = 1, hit = 1;
        }
        if (hit) pws[npw] = (pw_site){.w = g, .a = -1, .b = -1, .kind = kind}, pw_of[g] = npw++;
    }
    for (int t = 0; t < cfg->ntarget_params; t++)
        if (!ptmatched[t]) {
            if (moe || direct)
                ax_error(d, "lora_target_parameters", "\"%s\" matches no parameter of the model (PEFT matches a "
                         "parameter's full name or its end after a '.': %s, experts.gate_up_proj, "
                         "experts.down_proj, e.g. %slayers.0.mlp.experts.gate_up_proj)", cfg->target_params[t],
                         oss ? "router.weight" : "gate.weight", text_prefix(m));
            else
                ax_error(d, "lora_target_parameters", "\"%s\": this model has no MoE layer, and LoRA on a parameter "
                         "itself is implemented for MoE routers' and experts' weights only; adapt linear layers with "
                         "lora_target_modules", cfg->target_params[t]);
            goto fail;
        }
    if (npw && cfg->dora) {
        ax_error(d, "peft_use_dora", "PEFT's ParamWrapper (LoRA on the MoE router's or experts' weights: %s) refuses "
                 "DoRA", cfg->ntarget_params ? "lora_target_parameters" : "the names PEFT moves there");
        goto fail;
    }
    if (npw && cfg->nlayers > 0) {
        ax_error(d, "peft_layers_to_transform", "PEFT adapts the MoE router's or experts' weights (target_parameters) in "
                 "every layer whatever layers_to_transform says; axo refuses the two together rather than train "
                 "otherwise than asked");
        goto fail;
    }
    if (npw && cfg->dropout > 0 && cfg->ntarget_params) {
        ax_error(d, "lora_dropout", "%g with lora_target_parameters: PEFT's ParamWrapper refuses lora_dropout != 0 (Axolotl "
                 "lets it through only for the names PEFT moves there itself); set lora_dropout: 0", cfg->dropout);
        goto fail;
    }
    if (npw && cfg->dropout > 0)
        ax_warn(d, "lora_dropout", "%g applies to the linear layers' adapters only: the MoE router's and experts' "
                "(PEFT's ParamWrapper) get none, as Axolotl patches PEFT to do", cfg->dropout);
    for (int k = 0; k < npw; k++) {
        pw_site *q = &pws[k];
        const ir_global *G = &m->globals[q->w];
        char wname[600], hfmod[600];
        snprintf(wname, sizeof wname, "%s", G->name);
        /* gpt-oss's experts are stored [E, In, Out] (transformers' is_transposed: PEFT keeps in and out as they are) */
        q->t = G->type.rank == 3 && ir_attr_int(G->attrs, G->nattrs, "transposed", 0);
        const int64_t E = G->type.rank == 3 ? G->type.dims[0] : 1, O = G->type.dims[G->type.rank - (q->t ? 1 : 2)],
                      I = G->type.dims[G->type.rank - (q->t ? 2 : 1)];
        /* gate_up_proj fused from both names: PEFT's rank_pattern / alpha_pattern double r and alpha there */
        const int fused = q->kind == PW_GATE_UP && hits[1] > 0;
        const int64_t r = cfg->r * (fused ? 2 : 1);
        const double alpha = cfg->alpha * (fused ? 2 : 1);
        q->scale = cfg->rslora ? alpha / sqrt((double)r) : alpha / (double)r;
        /* the module's name, and the wrapper's place in PEFT's nesting */
        if (q->kind == PW_ROUTER) {
            module_of(wname, hfmod, sizeof hfmod);
            snprintf(wname, sizeof wname, "%s", hfmod);
        } else {
            const char *dot = strrchr(G->name, '.');
            int nested = 0; /* gate_up_proj under a wrapped down_proj of the same experts */
            for (int j = 0; j < npw && q->kind == PW_GATE_UP; j++) {
                const char *o = m->globals[pws[j].w].name;
                nested |= pws[j].kind == PW_DOWN && !strncmp(o, G->name, (size_t)(dot - G->name)) &&
                          !strcmp(o + (dot - G->name), ".down_proj");
            }
            snprintf(hfmod, sizeof hfmod, "%.*s%s", (int)(dot - G->name), G->name, nested ? ".base_layer" : "");
        }
        const int gauss = cfg->init == PASS_LORA_INIT_GAUSSIAN;
        q->a = add_pw_adapter(m, wname, hfmod, "lora_A", E * r, I, gauss ? "normal" : "uniform", 1.0 / sqrt((double)I), q->kind);
        if (gauss) ir_global_set_attr(m, q->a, ir_af("std", 1.0 / (double)r));
        q->b = cfg->init == PASS_LORA_INIT_FALSE
                   ? add_pw_adapter(m, wname, hfmod, "lora_B", O, r * E, "uniform", 1.0 / sqrt((double)(r * E)), q->kind)
                   : add_pw_adapter(m, wname, hfmod, "lora_B", O, r * E, "zeros", 0, q->kind);
    }
    free(ptmatched);
    ptmatched = NULL;
    /* quantize_moe_experts (QLoRA): every MoE layer's stacked experts NF4, adapted or not */
    qabs = malloc(sizeof(int) * ((size_t)ng0 + 1)), qrow = malloc(sizeof(int) * ((size_t)ng0 + 1));
    for (int g = 0; g < ng0; g++) {
        qabs[g] = qrow[g] = -1;
        const int kind = moe ? pw_kind(&m->globals[g]) : -1;
        if (!cfg->quantize_moe || cfg->adapter != PASS_ADAPTER_QLORA || (kind != PW_GATE_UP && kind != PW_DOWN)) continue;
        if (m->globals[g].type.dims[2] % 2) {
            ax_error(d, "quantize_moe_experts", "%s has %lld inputs: NF4 rows need an even count (two codes a byte)",
                     m->globals[g].name, (long long)m->globals[g].type.dims[2]);
            goto fail;
        }
        quantize_stacked(m, g, &qabs[g], &qrow[g]);
        nquant++;
    }
    for (int t = 0; t < cfg->ntargets; t++) {
        if (tmatched[t]) continue;
        const char *x = cfg->targets[t];
        int f = -1;
        for (int k = 0; k < cfg->nforeign && f < 0; k++)
            if (target_matches(cfg->foreign[k], x)) f = k;
        if (f >= 0) {
            ax_warn(d, "lora_target_modules", "\"%s\" matches only modules outside the language model (%s, ...), which "
                    "axo does not train on text: left out (PEFT would adapt them, and text would never train them)", x,
                    cfg->foreign[f]);
            continue;
        }
        if (!strcmp(x, "lm_head") || !strcmp(x, "embed_tokens"))
            ax_error(d, "lora_target_modules", "\"%s\": LoRA on the %s is not implemented (decoder linear layers only)",
                     x, x[0] == 'l' ? "output layer" : "embedding");
        else {
            /* the model's own linear layers, by type: q_proj, ... (Phi-3: qkv_proj, gate_up_proj, ...) */
            char types[512] = "";
            size_t tl = 0;
            for (int k = 0; k < nsites; k++) {
                char mn[512];
                const char *mod_k = module_of(m->globals[sites[k].w].name, mn, sizeof mn), *dot = strrchr(mod_k, '.');
                const char *ty = dot ? dot + 1 : mod_k;
                const size_t n = strlen(ty);
                int dup = 0; /* ty already listed: a whole entry of types */
                for (const char *p = types; !dup && (p = strstr(p, ty)) != NULL; p += n)
                    dup = (p == types || p[-1] == ' ') && (p[n] == ',' || p[n] == 0);
                if (dup || tl + n + 3 >= sizeof types) continue;
                tl += (size_t)snprintf(types + tl, sizeof types - tl, "%s%s", tl ? ", " : "", ty);
            }
            /* PEFT skips a target name that matches nothing when another one matches (a Llama list's gate_proj on
             * GLM or Phi-3, whose MLP is one gate_up_proj): a warning then; none matching is PEFT's error (below) */
            /* ... but a name that matches a module which is no nn.Linear (Qwen2-MoE's router, mlp.gate, when PEFT
             * converts none of the model's names) is PEFT's error: it cannot wrap that module */
            const char *nl = NULL;
            for (int g = 0; g < ng0 && !nl; g++) {
                const ir_global *G = &m->globals[g];
                char mn[512];
                if (G->role == IR_ROLE_PARAM && !ir_attr_int(G->attrs, G->nattrs, "linear", 1) &&
                    target_matches(module_of(G->name, mn, sizeof mn), x))
                    nl = G->name;
            }
            if (nl) {
                ax_error(d, "lora_target_modules", "\"%s\" matches %s, which is no nn.Linear in transformers: PEFT "
                         "cannot wrap that module and fails (its layers: %s; lora_target_parameters adapts the weight "
                         "itself)", x, nl, types);
                goto fail;
            }
            if (ntargeted || npw) {
                ax_warn(d, "lora_target_modules", "\"%s\" matches no linear layer of the model (its layers: %s): "
                        "ignored, as PEFT ignores it when another target matches", x, types);
                continue;
            }
            ax_error(d, "lora_target_modules", "\"%s\" matches no linear layer of the model (its layers: %s)", x, types);
        }
        goto fail;
    }
    if (!ntargeted && nnamed && cfg->nlayers > 0) {
        ax_error(d, "peft_layers_to_transform", "no targeted linear layer is in the layers given%s%s%s",
                 cfg->npattern > 0 ? " with peft_layers_pattern (this model's modules are " : "",
                 cfg->npattern > 0 ? text_prefix(m) : "",
                 cfg->npattern > 0 ? "layers.<N>...: the pattern is \"layers\")" : "");
        goto fail;
    }
    if (!ntargeted && !npw) {
        ax_error(d, "lora_target_modules", "no linear layer is targeted: give lora_target_modules or lora_target_linear: true");
        goto fail;
    }
    if (save_modules(m, cfg, ng0, site_of, sites, d) != 0) goto fail;
    int tok_g = -1, delta_g = -1;
    if (cfg->ntokens && (tok_g = token_adapter(m, cfg, ng0, &delta_g, d)) < 0) goto fail;

    /* A bias_add right after a targeted matmul: the adapter is added after
     * it, where PEFT adds it (to the base layer's output). */
    char *after_bias = calloc((size_t)p->nnodes + 1, 1);
    for (int i = 0; i + 1 < p->nnodes; i++) {
        const ir_node *n = &p->nodes[i], *nb = &p->nodes[i + 1];
        after_bias[i] = is_decoder_linear(m, n) && nb->op == IR_OP_bias_add && nb->in[0] == n->out[0];
    }
    const ir_attr *ln = ir_module_attr(m, "layer_nodes");
    int32_t *newstart = malloc(sizeof(int32_t) * ((size_t)p->nnodes + 1));
    double scaling = cfg->rslora ? cfg->alpha / sqrt((double)cfg->r) : cfg->alpha / (double)cfg->r;
    const char *cdt = cfg->bf16 ? "bf16" : "f32";

    rw r;
    rw_begin(&r, m, p, d);
    ir_builder *b = &r.b;
    int32_t seed = cfg->dropout > 0 ? ir_b_input(b, "dropout_seed", ir_type_scalar(IR_I32)) : -1;
    int32_t pending_x = -1, pending_site = -1; /* adapter waiting for the bias_add */
    /* DoRA: the site's base matmul (its result before any bias: PEFT's
     * base_result - bias) and the weight operand it read */
    int32_t pending_base = -1, pending_w = -1, cur_w = -1, pending_mm = -1;
    int32_t wtok = -1; /* trainable tokens: index_copy(embed_tokens, delta), made at the first use */
    for (int i = 0; i < p->nnodes && !b->failed; i++) {
        const ir_node *n = &p->nodes[i];
        newstart[i] = r.np.nnodes;
        int site = is_decoder_linear(m, n) ? site_of[IR_REF_GLOBAL(n->in[1])] : -1;
        cur_w = site >= 0 ? IR_GLOBAL_REF(sites[site].w) : -1;
        int uses_pw = 0;
        for (int k = 0; (npw || nquant) && k < n->nin; k++) {
            const int g = IR_REF_IS_GLOBAL(n->in[k]) ? IR_REF_GLOBAL(n->in[k]) : -1;
            uses_pw |= g >= 0 && g < ng0 && (pw_of[g] >= 0 || qabs[g] >= 0);
        }
        if (uses_pw) { /* the router's matmul, the experts' moe_ffn: they read w + s B_e A_e (ParamWrapper), the
                        * experts dequantized first when NF4 (the delta goes onto the dequantized weight, as PEFT's
                        * parametrization onto bitsandbytes') */
            int32_t in[IR_MAX_IN];
            for (int k = 0; k < n->nin; k++) {
                const int g = IR_REF_IS_GLOBAL(n->in[k]) ? IR_REF_GLOBAL(n->in[k]) : -1;
                if (g < 0 || g >= ng0 || (pw_of[g] < 0 && qabs[g] < 0)) {
                    in[k] = rw_ref(&r, n->in[k]);
                    continue;
                }
                int32_t w = IR_GLOBAL_REF(g);
                ir_dtype wt = m->globals[g].type.dtype;
                if (qabs[g] >= 0) {
                    w = ir_b(b, IR_OP_dequant_nf4, IR_IN(w, IR_GLOBAL_REF(qabs[g]), IR_GLOBAL_REF(qrow[g])),
                             IR_AT(ir_as("to", cdt)));
                    wt = cfg->bf16 ? IR_BF16 : IR_F32;
                }
                if (pw_of[g] < 0) {
                    in[k] = w;
                    continue;
                }
                const pw_site *q = &pws[pw_of[g]];
                int32_t A = IR_GLOBAL_REF(q->a), B = IR_GLOBAL_REF(q->b);
                if (wt != IR_F32) { /* PEFT casts the factors to the weight's dtype */
                    A = ir_b(b, IR_OP_convert, IR_IN(A), IR_AT(ir_as("to", ir_dtype_name(wt))));
                    B = ir_b(b, IR_OP_convert, IR_IN(B), IR_AT(ir_as("to", ir_dtype_name(wt))));
                }
                in[k] = q->t ? ir_b(b, IR_OP_lora_delta, IR_IN(w, A, B), IR_AT(ir_af("scale", q->scale), ir_ai("t", 1)))
                             : ir_b(b, IR_OP_lora_delta, IR_IN(w, A, B), IR_AT(ir_af("scale", q->scale)));
            }
            rw_emit(&r, n, in, NULL, 0, NULL);
            continue;
        }
        int uses_tok = 0;
        for (int k = 0; tok_g >= 0 && k < n->nin; k++) uses_tok |= n->in[k] == IR_GLOBAL_REF(tok_g);
        if (uses_tok) {
            if (wtok < 0) {
                const ir_global *W = &m->globals[tok_g];
                int32_t src = IR_GLOBAL_REF(delta_g);
                if (W->type.dtype != IR_F32)
                    src = ir_b(b, IR_OP_convert, IR_IN(src), IR_AT(ir_as("to", ir_dtype_name(W->type.dtype))));
                wtok = ir_b(b, IR_OP_index_copy, IR_IN(IR_GLOBAL_REF(tok_g), src),
                            IR_AT(ir_aints("rows", cfg->ntokens, cfg->tokens)));
            }
            int32_t in[IR_MAX_IN];
            for (int k = 0; k < n->nin; k++) in[k] = n->in[k] == IR_GLOBAL_REF(tok_g) ? wtok : rw_ref(&r, n->in[k]);
            rw_emit(&r, n, in, NULL, 0, NULL);
            continue;
        }
        if (site >= 0 && sites[site].absmax >= 0) {
            const lora_site *s = &sites[site];
            int32_t w = ir_b(b, IR_OP_dequant_nf4, IR_IN(IR_GLOBAL_REF(s->w), IR_GLOBAL_REF(s->absmax), IR_GLOBAL_REF(s->rowmax)),
                             IR_AT(ir_as("to", cdt)));
            int32_t in[2] = {rw_ref(&r, n->in[0]), w};
            rw_emit(&r, n, in, NULL, 0, NULL);
            cur_w = w;
        } else if (n->op == IR_OP_linear_cross_entropy && n->nattrs < 15 && ir_attr_int(n->attrs, n->nattrs, "dw", 1) &&
                   IR_REF_IS_GLOBAL(n->in[1]) &&
                   !ir_attr_int(m->globals[IR_REF_GLOBAL(n->in[1])].attrs, m->globals[IR_REF_GLOBAL(n->in[1])].nattrs,
                                "trainable", 1)) {
            /* the lm head is frozen: the fused loss skips its dW GEMM */
            ir_attr at[16];
            memcpy(at, n->attrs, sizeof(ir_attr) * (size_t)n->nattrs);
            at[n->nattrs] = ir_ai("dw", 0);
            rw_emit(&r, n, NULL, at, n->nattrs + 1, NULL);
        } else {
            rw_emit(&r, n, NULL, NULL, 0, NULL);
        }
        int32_t x = -1, y = -1, base = -1, wv = -1, mm = -1;
        if (site >= 0 && sites[site].a >= 0) {
            if (after_bias[i]) {
                pending_x = rw_ref(&r, n->in[0]), pending_site = site;
                pending_base = r.map[n->out[0]], pending_w = cur_w, pending_mm = i;
                continue;
            }
            x = rw_ref(&r, n->in[0]), y = n->out[0];
            base = r.map[n->out[0]], wv = cur_w, mm = i;
        } else if (pending_site >= 0) {
            x = pending_x, y = n->out[0], site = pending_site;
            base = pending_base, wv = pending_w, mm = pending_mm;
            pending_site = -1;
        } else {
            continue;
        }
        const lora_site *s = &sites[site];
        int32_t xd = seed >= 0 ? ir_b(b, IR_OP_dropout, IR_IN(x, seed), IR_AT(ir_af("p", cfg->dropout), ir_ai("salt", s->salt)))
                               : x;
        int32_t A = IR_GLOBAL_REF(s->a), B = IR_GLOBAL_REF(s->b);
        if (cfg->bf16) {
            A = ir_b(b, IR_OP_convert, IR_IN(A), IR_AT(ir_as("to", cdt)));
            B = ir_b(b, IR_OP_convert, IR_IN(B), IR_AT(ir_as("to", cdt)));
        }
        int32_t t = ir_b(b, IR_OP_matmul, IR_IN(xd, A), IR_AT(ir_ai("tb", 1)));
        int32_t u = ir_b(b, IR_OP_matmul, IR_IN(t, B), IR_AT(ir_ai("tb", 1)));
        if (s->mag >= 0) {
            /* DoRA, PEFT's training path: with dropout the base product is
             * taken again of the dropped input (PEFT: F.linear(dropout(x),
             * W)); without, the layer's own (base_result minus the bias) */
            int32_t bd = base;
            if (seed >= 0) {
                const ir_node *bm = &p->nodes[mm];
                int32_t in[2] = {xd, wv};
                bd = ir_b(b, IR_OP_matmul, 2, in, bm->nattrs, bm->attrs);
            }
            /* after the adapter's matmuls, so autodiff meets it first */
            int32_t nrm = ir_b(b, IR_OP_dora_norm, IR_IN(wv, IR_GLOBAL_REF(s->b), IR_GLOBAL_REF(s->a)),
                               IR_AT(ir_af("scaling", scaling)));
            int32_t dd = ir_b(b, IR_OP_dora_scale, IR_IN(bd, u, IR_GLOBAL_REF(s->mag), nrm), IR_AT(ir_af("scaling", scaling)));
            r.map[y] = ir_b(b, IR_OP_add, IR_IN(r.map[y], dd), IR_NOAT);
            continue;
        }
        int32_t sc = ir_b(b, IR_OP_scale, IR_IN(u), IR_AT(ir_af("alpha", scaling)));
        r.map[y] = ir_b(b, IR_OP_add, IR_IN(r.map[y], sc), IR_NOAT);
    }
    newstart[p->nnodes] = r.np.nnodes;
    int32_t new_loss = r.map ? rw_ref(&r, *loss) : -1;
    int rc = rw_end(&r);
    if (!rc && ln) { /* checkpointing's layer ranges, in the new numbering */
        int64_t *rg = malloc(sizeof(int64_t) * (size_t)(ln->n ? ln->n : 1));
        for (int k = 0; k < ln->n; k++) rg[k] = newstart[ln->ints[k]];
        ir_module_set_attr(m, ir_aints("layer_nodes", ln->n, rg));
        free(rg);
    }
    if (!rc) *loss = new_loss;
    free(newstart);
    free(after_bias);

    /* what the runtime writes into adapter_config.json */
    ax_buf tm = {0};
    for (int t = 0; t < ocfg->ntargets; t++) ax_buf_printf(&tm, "%s%s", tm.len ? "," : "", ocfg->targets[t]);
    ir_module_set_attr(m, ir_as("lora.adapter", cfg->adapter == PASS_ADAPTER_QLORA ? "qlora" : "lora"));
    ir_module_set_attr(m, ir_ai("lora.r", cfg->r));
    ir_module_set_attr(m, ir_af("lora.alpha", cfg->alpha));
    ir_module_set_attr(m, ir_af("lora.dropout", cfg->dropout));
    ir_module_set_attr(m, ir_ai("lora.rslora", cfg->rslora));
    if (cfg->dora) ir_module_set_attr(m, ir_ai("lora.use_dora", 1)); /* absent without: other plans unchanged */
    if (cfg->init) ir_module_set_attr(m, ir_as("lora.init", cfg->init == PASS_LORA_INIT_GAUSSIAN ? "gaussian" : "false"));
    ir_module_set_attr(m, ir_ai("lora.target_linear", ocfg->target_linear));
    ir_module_set_attr(m, ir_as("lora.target_modules", tm.data ? tm.data : ""));
    if (npw) { /* PEFT's target_parameters as adapter_config.json lists them (the names given, and those PEFT moved
                * there, so that PeftModel.from_pretrained wraps the same weights), and its doubled rank of a fused
                * gate_up_proj */
        ax_buf tp = {0};
        for (int t = 0; t < cfg->ntarget_params; t++) {
            int dup = 0;
            for (int u = 0; u < t && !dup; u++) dup = !strcmp(cfg->target_params[u], cfg->target_params[t]);
            if (!dup) ax_buf_printf(&tp, "%s%s", tp.len ? "," : "", cfg->target_params[t]);
        }
        const int moved[3] = {hits[0] > 0, hits[1] > 0, hits[3] > 0};
        for (int k = 0; k < 3; k++) {
            int dup = 0;
            for (int t = 0; t < cfg->ntarget_params && !dup; t++) dup = !strcmp(cfg->target_params[t], pw_param[k]);
            if (moved[k] && !dup) ax_buf_printf(&tp, "%s%s", tp.len ? "," : "", pw_param[k]);
        }
        ir_module_set_attr(m, ir_as("lora.target_parameters", tp.data));
        if (hits[1]) ir_module_set_attr(m, ir_ai("lora.gate_up_fused", 1));
        ax_buf_free(&tp);
    }
    if (cfg->nsave) {
        ax_buf sv = {0};
        for (int t = 0; t < cfg->nsave; t++) ax_buf_printf(&sv, "%s%s", sv.len ? "," : "", cfg->save_modules[t]);
        ir_module_set_attr(m, ir_as("lora.modules_to_save", sv.data));
        ax_buf_free(&sv);
    }
    if (cfg->model_dir) ir_module_set_attr(m, ir_as("lora.model_dir", cfg->model_dir));
    if (cfg->nlayers > 0) { /* as written: an int or a list (adapter_config.json says it so) */
        ir_module_set_attr(m, ir_aints("lora.layers_to_transform", cfg->nlayers, cfg->layers));
        if (cfg->layers_int) ir_module_set_attr(m, ir_ai("lora.layers_to_transform_int", 1));
    }
    if (cfg->npattern > 0) { /* names (letters, digits, _): a comma joins them */
        ax_buf pt = {0};
        for (int t = 0; t < cfg->npattern; t++) ax_buf_printf(&pt, "%s%s", pt.len ? "," : "", cfg->pattern[t]);
        ir_module_set_attr(m, ir_as("lora.layers_pattern", pt.data));
        if (cfg->pattern_str) ir_module_set_attr(m, ir_ai("lora.layers_pattern_str", 1));
        ax_buf_free(&pt);
    }
    ax_buf_free(&tm);
    free(site_of), free(sites), free(tmatched), free(pws), free(pw_of), free(qabs), free(qrow), free(T), free(rest), free(leaf);
    return rc;
fail:
    free(site_of), free(sites), free(tmatched), free(pws), free(pw_of), free(ptmatched), free(qabs), free(qrow), free(T),
        free(rest), free(leaf);
    return -1;
}
