/* tokcfg.c — the tokenizer side of a config whose datasets have a `type`:
 * which tokenizer.json, which BOS/EOS/end-of-turn tokens, which chat
 * template, all checked at compile time so axorun only meets data errors. */
#include "frontend/config.h"
#include "runtime/jinja.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* tokenizer_config.json's "bos_token": a string, {"content": ...}, or null */
static const char *special_in(const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}
static const char *special_of(const json_t *cfg, const char *key, ax_arena *ar) {
    const char *s = special_in(cfg, key);
    return s ? ax_arena_strdup(ar, s) : NULL;
}

/* A chat template: Jinja text (parsed) or one of axo's C renderers. */
typedef struct tpl_choice {
    const char *text, *where; /* text: the Jinja source, where: what names it in errors */
    int tpl;                  /* rt_tpl when text is NULL; -1: none (a tokenizer without a template) */
} tpl_choice;

/* Axolotl's get_chat_template: `name` (jinja, tokenizer_default,
 * tokenizer_default_fallback_<x>, or a template name) against the
 * tokenizer's template `tok`. 0, or -1 with the error at `key`. */
static int resolve_choice(const char *name, const fe_jinja_src *src, const tpl_choice *tok_in, const char *key,
                          const char *cfg_path, const char *where, tpl_choice *out, ax_diag *d) {
    const tpl_choice tok_copy = *tok_in, *tok = &tok_copy; /* out may be tok_in (the top-level choice replaces it) */
    const char *fb = !strncmp(name, "tokenizer_default_fallback_", 27) ? name + 27 : NULL;
    int tok_has = tok->text || tok->tpl >= 0;
    *out = (tpl_choice){.tpl = -1};
    if (!strcmp(name, "jinja")) {
        if (!src->text) {
            ax_error(d, where, "%s: jinja, but there is no chat_template_jinja (the template, or the path of a .jinja file)",
                     key);
            return -1;
        }
        out->text = src->text, out->where = src->where;
    } else if (!strcmp(name, "tokenizer_default") || (fb && tok_has)) {
        if (!tok_has) {
            ax_error(d, where,
                     "%s: tokenizer_default, but %s has no chat_template; name one (chatml, llama3, qwen_25, qwen3, "
                     "gemma, gemma3, phi_3, tokenizer_default_fallback_<one of them>), or give chat_template: jinja with "
                     "chat_template_jinja",
                     key, cfg_path);
            return -1;
        }
        *out = *tok;
    } else {
        out->tpl = rt_tpl_from_name(fb ? fb : name);
        if (out->tpl < 0) {
            ax_error(d, where,
                     "%s: chat template \"%s\" is not implemented in axo's C renderers (chatml, llama3, qwen_25, "
                     "qwen3, gemma, gemma3, phi_3); give its Jinja text instead: chat_template: jinja with "
                     "chat_template_jinja (the template, or a .jinja file)",
                     key, fb ? fb : name);
            return -1;
        }
    }
    if (out->text) { /* parsed now: a syntax error is a compile-time error */
        jinja_err je;
        jinja_tpl *jt = jinja_parse(out->text, strlen(out->text), &je);
        if (!jt) {
            ax_error(d, out->where, "chat template line %d: %s", je.line, je.msg);
            return -1;
        }
        jinja_free(jt);
    }
    return 0;
}

/* The tokenizer changes the config asks for, in Axolotl's order
 * (load_tokenizer): added_tokens_overrides; special_tokens bos, eos, pad,
 * unk (added as special tokens); tokens; additional_special_tokens. */
static void collect_edits(fe_config *c, rt_tok_setup *t, ax_arena *ar) {
    const char *const keys[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    const char *const vals[4] = {c->special_bos, c->special_eos, c->special_pad, c->special_unk};
    int n = c->noverrides + 4 + c->ntokens + c->nextra_special;
    rt_tok_edit *e = ax_arena_alloc(ar, sizeof *e * (size_t)n);
    int k = 0;
    for (int i = 0; i < c->noverrides; i++) e[k++] = (rt_tok_edit){(int32_t)c->override_ids[i], c->override_strs[i], 0};
    t->set_special = ax_arena_alloc(ar, sizeof *t->set_special * 4);
    t->set_value = ax_arena_alloc(ar, sizeof *t->set_value * 4);
    for (int i = 0; i < 4; i++)
        if (vals[i]) {
            e[k++] = (rt_tok_edit){-1, vals[i], 1};
            t->set_special[t->nset] = keys[i];
            t->set_value[t->nset++] = vals[i];
        }
    for (int i = 0; i < c->ntokens; i++) e[k++] = (rt_tok_edit){-1, c->tokens[i], 0};
    for (int i = 0; i < c->nextra_special; i++) e[k++] = (rt_tok_edit){-1, c->extra_special[i], 1};
    t->edits = e;
    t->nedits = k;
    if (c->extra_special) t->extra_special = c->extra_special, t->nextra_special = c->nextra_special;
}

/* config.json with another vocab_size (the multimodal Gemma 3's in text_config; others' top-level one and text_config's
 * where there is one), as transformers saves it after
 * resize_token_embeddings */
static int set_config_vocab(fe_model *m, int64_t v, ax_arena *ar, ax_diag *d) {
    json_error_t je;
    json_t *j = json_loadb(m->config_json, m->config_json_len, 0, &je);
    if (!j) {
        ax_error(d, m->dir, "config.json: %s", je.text);
        return -1;
    }
    /* transformers sets config.get_text_config().vocab_size: the multimodal model's text_config only */
    json_t *tc = json_object_get(j, "text_config");
    if (m->multimodal && !json_is_object(tc)) json_object_set_new(j, "text_config", tc = json_object());
    if (!m->multimodal) json_object_set_new(j, "vocab_size", json_integer(v));
    if (json_is_object(tc) && (m->multimodal || json_object_get(tc, "vocab_size")))
        json_object_set_new(tc, "vocab_size", json_integer(v));
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));
    json_decref(j);
    size_t len = strlen(s);
    m->config_json = ax_arena_alloc(ar, len + 2);
    memcpy(m->config_json, s, len);
    m->config_json[len] = '\n';
    m->config_json_len = len + 1;
    free(s);
    return 0;
}

/* Axolotl's guard (load_tokenizer): with an adapter, a special token the
 * config changes to a string of more than two pieces needs embed_tokens and
 * lm_head in lora_modules_to_save (pad_token is exempt). */
static int lora_special_guard(const fe_config *c, const rt_tok_setup *t, const char *cfg_path, const json_t *tcfg,
                              const char *where, ax_diag *d) {
    if (c->adapter == FE_ADAPTER_NONE || !t->nset) return 0;
    int have_e = 0, have_h = 0;
    for (int i = 0; i < c->nlora_modules_to_save; i++) {
        have_e |= !strcmp(c->lora_modules_to_save[i], "embed_tokens");
        have_h |= !strcmp(c->lora_modules_to_save[i], "lm_head");
    }
    if (have_e && have_h) return 0;
    rt_tokenizer *raw = rt_tok_load(t->path, d);
    if (!raw) return -1;
    int rc = 0;
    for (int k = 0; k < t->nedits && rc == 0; k++) /* Axolotl renames before it adds */
        if (t->edits[k].override_id >= 0 && rt_tok_override(raw, t->edits[k].override_id, t->edits[k].content) != 0) rc = -1;
    for (int i = 0; i < t->nset && rc == 0; i++) {
        if (!strcmp(t->set_special[i], "pad_token")) continue;
        const char *cur = special_in(tcfg, t->set_special[i]);
        if (cur && !strcmp(cur, t->set_value[i])) continue;
        ax_buf b = {0};
        int bad = rt_tok_encode(raw, t->set_value[i], strlen(t->set_value[i]), 0, &b, t->path, d) != 0;
        if (!bad && b.len / sizeof(int32_t) > 2) {
            ax_error(d, where, "special_tokens.%s: \"%s\" is new to %s and the config trains an adapter: set "
                               "lora_modules_to_save to [embed_tokens, lm_head] so its embedding is trained (Axolotl's "
                               "rule)", t->set_special[i], t->set_value[i], cfg_path);
            bad = 1;
        }
        ax_buf_free(&b);
        if (bad) rc = -1;
    }
    rt_tok_free(raw);
    return rc;
}

int fe_resolve_tokenizer(fe_config *c, fe_model *m, ax_arena *ar, ax_diag *d) {
    int any = 0;
    for (int i = 0; i < c->ndatasets; i++) any |= c->datasets[i].formatted;
    for (int i = 0; i < c->ntest_datasets; i++) any |= c->test_datasets[i].formatted;
    const int adds = c->ntokens || c->nextra_special || c->noverrides || c->special_bos || c->special_eos ||
                     c->special_pad || c->special_unk;
    for (int i = 0; i < c->ntokens; i++)
        if (!*c->tokens[i]) {
            ax_error(d, c->path ? c->path : "config", "tokens[%d]: expected a token, found an empty string", i);
            return -1;
        }
    if (!any && !adds && !c->shrink_embeddings && !c->resize_32x) return 0;
    const char *dir = c->tokenizer_config ? c->tokenizer_config : c->base_model;
    const char *key = c->tokenizer_config ? "tokenizer_config" : "base_model";
    char where[600];
    snprintf(where, sizeof where, "%s: %s", c->path ? c->path : "config", key);
    const char *path = ax_arena_printf(ar, "%s/tokenizer.json", dir);
    if (!ax_file_exists(path)) {
        const char *spm = ax_arena_printf(ar, "%s/tokenizer.model", dir);
        ax_error(d, where,
                 "%s has no tokenizer.json, which axo needs to %s%s", dir,
                 any ? "tokenize datasets with a `type`" : "add tokens (tokens, special_tokens, added_tokens_overrides)",
                 ax_file_exists(spm) ? " (it has only the SentencePiece tokenizer.model: write tokenizer.json with "
                                       "transformers' AutoTokenizer.from_pretrained(dir).save_pretrained(dir))"
                                     : "");
        return -1;
    }
    const char *cfg_path = ax_arena_printf(ar, "%s/tokenizer_config.json", dir);
    json_t *tcfg = NULL;
    if (ax_file_exists(cfg_path)) {
        json_error_t je;
        tcfg = json_load_file(cfg_path, 0, &je);
        if (!tcfg) {
            char loc[700];
            ax_error(d, ax_loc(loc, sizeof loc, cfg_path, je.line, je.column), "invalid JSON: %s", je.text);
            return -1;
        }
    }
    rt_tok_setup *t = &c->tok;
    memset(t, 0, sizeof *t);
    t->path = path;
    /* Axolotl's find_turn never locates a leading system turn when "mistral" is in the tokenizer's name */
    for (const char *q = c->tokenizer_name_or_path; q && *q && !t->mistral_name; q++)
        t->mistral_name = !strncasecmp(q, "mistral", 7);
    t->bos = c->special_bos ? c->special_bos : special_of(tcfg, "bos_token", ar);
    t->eos = c->special_eos ? c->special_eos : special_of(tcfg, "eos_token", ar);
    t->train_on_inputs = c->train_on_inputs;
    if (c->eot_tokens) {
        for (int i = 0; i < c->neot_tokens; i++) t->eot[t->neot++] = c->eot_tokens[i];
    } else if (t->eos) {
        t->eot[t->neot++] = t->eos;
    }
    t->unk = special_of(tcfg, "unk_token", ar);
    t->sep = special_of(tcfg, "sep_token", ar);
    t->pad = c->special_pad ? c->special_pad : special_of(tcfg, "pad_token", ar);
    t->cls = special_of(tcfg, "cls_token", ar);
    t->mask = special_of(tcfg, "mask_token", ar);
    if (adds) {
        collect_edits(c, t, ar);
        if (lora_special_guard(c, t, cfg_path, tcfg, where, d) != 0) {
            json_decref(tcfg);
            return -1;
        }
    }
    /* the tokenizer's own template: a string, or [{name, template}] of which
     * transformers takes "default" */
    const char *tok_tpl = NULL;
    int rc = 0;
    const json_t *ct = json_object_get(tcfg, "chat_template");
    if (json_is_string(ct)) {
        tok_tpl = ax_arena_strdup(ar, json_string_value(ct));
    } else if (json_is_array(ct)) {
        size_t i;
        const json_t *x;
        json_array_foreach(ct, i, x) {
            if (json_is_string(json_object_get(x, "template")) &&
                !strcmp(json_string_value(json_object_get(x, "name")) ? json_string_value(json_object_get(x, "name")) : "", "default"))
                tok_tpl = ax_arena_strdup(ar, json_string_value(json_object_get(x, "template")));
        }
    }
    json_decref(tcfg);
    const char *tok_where = ax_arena_printf(ar, "%s: chat_template", cfg_path);
    /* recent transformers saves the template as chat_template.jinja beside the tokenizer, and reads that file
     * before tokenizer_config.json's */
    const char *jf = ax_arena_printf(ar, "%s/chat_template.jinja", dir);
    if (ax_file_exists(jf)) {
        size_t n;
        char *txt = ax_read_file(jf, &n, d);
        if (!txt) return -1;
        tok_tpl = ax_arena_strndup(ar, txt, n);
        tok_where = jf;
        free(txt);
    }
    /* Axolotl 0.19's order: a top-level chat_template is resolved first
     * (against the tokenizer's own) and written into the tokenizer; a
     * dataset's choice, tokenizer_default when it names none, then reads
     * that tokenizer. So tokenizer_default and tokenizer_default_fallback_*
     * in a dataset mean the top-level template when there is one. */
    tpl_choice tok = {.text = tok_tpl, .where = tok_where, .tpl = -1};
    int chat = 0; /* only chat_template datasets render one (the top-level key alone only names it for inference) */
    for (int i = 0; i < c->ndatasets + c->ntest_datasets; i++) {
        const fe_dataset *ds = i < c->ndatasets ? &c->datasets[i] : &c->test_datasets[i - c->ndatasets];
        chat |= ds->formatted && (ds->spec.fmt == RT_FMT_CHAT || (ds->spec.fmt == RT_FMT_DPO && ds->spec.dpo_family == RT_DPO_CHAT));
    }
    if (chat && c->chat_template && resolve_choice(c->chat_template, &c->chat_template_jinja, &tok, "chat_template", cfg_path,
                                           where, &tok, d) != 0)
        return -1;
    c->tok_chat_template = tok.text ? tok.text : tok.tpl >= 0 ? rt_tpl_jinja((rt_tpl)tok.tpl) : NULL;
    if (chat && c->chat_template) { /* what the saved tokenizer carries */
        c->out_chat_template = tok.text ? tok.text : tok.tpl >= 0 ? rt_tpl_jinja((rt_tpl)tok.tpl) : NULL;
        if (!c->out_chat_template)
            ax_warn(d, where, "chat_template: %s has no Jinja text in axo; the saved tokenizer keeps %s's own template",
                    c->chat_template, cfg_path);
    }
    for (int j = 0; j < c->ndatasets + c->ntest_datasets; j++) { /* datasets, then test_datasets */
        int test = j >= c->ndatasets, i = test ? j - c->ndatasets : j;
        const char *list = test ? "test_datasets" : "datasets";
        fe_dataset *ds = test ? &c->test_datasets[i] : &c->datasets[i];
        if (!ds->formatted) continue;
        if (ds->spec.fmt != RT_FMT_CHAT && !(ds->spec.fmt == RT_FMT_DPO && ds->spec.dpo_family == RT_DPO_CHAT)) {
            if (!t->eos && ds->spec.fmt != RT_FMT_INPUT_OUTPUT)
                ax_warn(d, where, "%s[%d]: the tokenizer has no eos_token (tokenizer_config.json or "
                                  "special_tokens.eos_token): samples end without one", list, i);
            continue;
        }
        char k[64];
        snprintf(k, sizeof k, "%s[%d].chat_template", list, i);
        const char *name = ds->chat_template;
        if (!name && ds->chat_template_jinja.text) {
            /* Axolotl 0.19 fills in tokenizer_default before it looks at chat_template_jinja, so it would not use it */
            ax_warn(d, where, "%s[%d].chat_template_jinja without %s[%d].chat_template: axo renders it "
                              "(chat_template: jinja), where Axolotl 0.19 would use the tokenizer's template", list, i,
                    list, i);
            name = "jinja";
        }
        tpl_choice got;
        if (resolve_choice(name ? name : "tokenizer_default", &ds->chat_template_jinja, &tok, k, cfg_path, where, &got, d) !=
            0) {
            rc = -1;
            continue;
        }
        /* Axolotl's _validate_eot_and_eos_tokens (chat_template datasets): a turn terminator the template never
         * writes is never trained, and the model does not learn to stop; Axolotl warns, and so does axo */
        const char *ttext = got.text ? got.text : rt_tpl_jinja((rt_tpl)got.tpl);
        if (ds->spec.fmt == RT_FMT_CHAT && ttext) {
            if (t->neot == 1 && t->eos && !strcmp(t->eot[0], t->eos)) {
                if (!strstr(ttext, t->eos) && !strstr(ttext, "eos_token"))
                    ax_warn(d, where, "%s[%d]: EOS token '%s' not found in the chat template; the turn terminator won't be "
                                      "trained (Axolotl warns alike): set eot_tokens to the template's turn-ending token",
                            list, i, t->eos);
            } else {
                for (int e = 0; e < t->neot; e++)
                    if (!strstr(ttext, t->eot[e]))
                        ax_warn(d, where, "%s[%d]: EOT token '%s' not found in the chat template (Axolotl warns alike)",
                                list, i, t->eot[e]);
            }
        }
        if (got.text) {
            ds->spec.jinja = got.text;
            /* Axolotl's DPO chat_template.default calls apply_chat_template without the kwargs */
            if (ds->spec.fmt == RT_FMT_CHAT) ds->spec.tpl_kwargs = c->chat_template_kwargs;
            continue;
        }
        ds->spec.tpl = (rt_tpl)got.tpl;
        if (rt_tpl_needs_bos((rt_tpl)got.tpl) && !t->bos) {
            ax_error(d, where, "%s: %s starts with the bos_token, and the tokenizer has none (set "
                               "special_tokens.bos_token)", k, rt_tpl_name((rt_tpl)got.tpl));
            rc = -1;
        }
    }
    if (rc) return -1;
    /* load it once: every token resolves, the ids fit the model */
    rt_prompter p;
    if (rt_prompter_init(&p, t, c->sequence_len, d) != 0) return -1;
    int64_t nv = rt_tok_vocab_size(p.tok), len = rt_tok_len(p.tok);
    rt_prompter_free(&p);
    /* Axolotl's _resize_token_embeddings: to len(tokenizer) (rounded up to
     * a multiple of 32 with resize_token_embeddings_to_32x) when the model
     * has fewer rows, or more rows and shrink_embeddings */
    const int64_t want = c->resize_32x ? (len + 31) / 32 * 32 : len;
    if (m->vocab_size < want || (m->vocab_size > want && c->shrink_embeddings)) {
        int have_e = 0, have_h = 0;
        for (int i = 0; i < c->nlora_modules_to_save; i++) {
            have_e |= !strcmp(c->lora_modules_to_save[i], "embed_tokens");
            have_h |= !strcmp(c->lora_modules_to_save[i], "lm_head");
        }
        if (m->vocab_size < want && c->adapter != FE_ADAPTER_NONE && !(have_e && (have_h || m->tie_word_embeddings))) {
            ax_error(d, where, "the tokenizer (%lld tokens) needs %lld more embedding rows than %s/config.json's vocab_size "
                               "%lld, and an adapter would leave them at their random init, frozen and unsaved: add "
                               "embed_tokens and lm_head to lora_modules_to_save",
                     (long long)len, (long long)(want - m->vocab_size), m->dir, (long long)m->vocab_size);
            return -1;
        }
        if (nv > want) {
            ax_error(d, path, "the tokenizer has ids up to %lld, but len(tokenizer) is %lld: the vocab cannot be resized to "
                              "%lld rows", (long long)nv - 1, (long long)len, (long long)want);
            return -1;
        }
        if (m->vocab_size < want)
            ax_diag_add(d, AX_SEV_NOTE, where,
                        "len(tokenizer) is %lld: the embeddings%s grow from %lld to %lld rows%s; the new rows are %s, as "
                        "Axolotl's resize_token_embeddings makes them", (long long)len,
                        m->tie_word_embeddings ? "" : " and lm_head", (long long)m->vocab_size, (long long)want,
                        c->resize_32x ? " (resize_token_embeddings_to_32x)" : "",
                        c->mean_resizing ? "the mean of the old rows (mean_resizing_embeddings)"
                                         : "drawn from normal(0, initializer_range)");
        else
            ax_diag_add(d, AX_SEV_NOTE, where, "shrink_embeddings: the embeddings shrink from %lld to len(tokenizer) = %lld rows",
                        (long long)m->vocab_size, (long long)want);
        if (!m->file_vocab_size) m->file_vocab_size = m->vocab_size;
        m->vocab_size = want;
        if (set_config_vocab(m, want, ar, d) != 0) return -1;
    } else if (nv > m->vocab_size) {
        ax_error(d, path, "the tokenizer has ids up to %lld, but the model's vocab_size (%s/config.json) is %lld",
                 (long long)nv - 1, m->dir, (long long)m->vocab_size);
        rc = -1;
    }
    return rc;
}
