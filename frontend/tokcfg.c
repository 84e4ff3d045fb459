/* tokcfg.c — the tokenizer side of a config whose datasets have a `type`:
 * which tokenizer.json, which BOS/EOS/end-of-turn tokens, which chat
 * template, all checked at compile time so axorun only meets data errors. */
#include "frontend/config.h"
#include "runtime/jinja.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* tokenizer_config.json's "bos_token": a string, {"content": ...}, or null */
static const char *special_of(const json_t *cfg, const char *key, ax_arena *ar) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? ax_arena_strdup(ar, json_string_value(v)) : NULL;
}

/* A chat template: Jinja text (parsed) or one of axo's C renderers. */
typedef struct tpl_choice {
    const char *text, *where; /* text: the Jinja source, where: what names it in errors */
    int tpl;                  /* rt_tpl when text is NULL; -1: none (a tokenizer without a template) */
} tpl_choice;

/* Axolotl's get_chat_template: `name` (jinja, tokenizer_default,
 * tokenizer_default_fallback_<x>, or a template name) against the
 * tokenizer's template `tok`. 0, or -1 with the error at `key`. */
static int resolve_choice(const char *name, const fe_jinja_src *src, const tpl_choice *tok, const char *key,
                          const char *cfg_path, const char *where, tpl_choice *out, ax_diag *d) {
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
                     "gemma, phi_3, tokenizer_default_fallback_<one of them>), or give chat_template: jinja with "
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
                     "qwen3, gemma, phi_3); give its Jinja text instead: chat_template: jinja with "
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

int fe_resolve_tokenizer(fe_config *c, const fe_model *m, ax_arena *ar, ax_diag *d) {
    int any = 0;
    for (int i = 0; i < c->ndatasets; i++) any |= c->datasets[i].formatted;
    for (int i = 0; i < c->ntest_datasets; i++) any |= c->test_datasets[i].formatted;
    if (!any) return 0;
    const char *dir = c->tokenizer_config ? c->tokenizer_config : c->base_model;
    const char *key = c->tokenizer_config ? "tokenizer_config" : "base_model";
    char where[600];
    snprintf(where, sizeof where, "%s: %s", c->path ? c->path : "config", key);
    const char *path = ax_arena_printf(ar, "%s/tokenizer.json", dir);
    if (!ax_file_exists(path)) {
        const char *spm = ax_arena_printf(ar, "%s/tokenizer.model", dir);
        ax_error(d, where,
                 "%s has no tokenizer.json, which axo needs to tokenize datasets with a `type`%s", dir,
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
        chat |= ds->formatted && ds->spec.fmt == RT_FMT_CHAT;
    }
    if (chat && c->chat_template && resolve_choice(c->chat_template, &c->chat_template_jinja, &tok, "chat_template", cfg_path,
                                           where, &tok, d) != 0)
        return -1;
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
        if (ds->spec.fmt != RT_FMT_CHAT) {
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
        if (got.text) {
            ds->spec.jinja = got.text;
            ds->spec.tpl_kwargs = c->chat_template_kwargs;
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
    int64_t nv = rt_tok_vocab_size(p.tok);
    if (nv > m->vocab_size) {
        ax_error(d, path, "the tokenizer has ids up to %lld, but the model's vocab_size (%s/config.json) is %lld",
                 (long long)nv - 1, m->dir, (long long)m->vocab_size);
        rc = -1;
    }
    if (c->special_pad && rt_tok_id(p.tok, c->special_pad) < 0) {
        ax_error(d, where, "special_tokens.pad_token: \"%s\" is not a token of %s (adding tokens is not implemented)",
                 c->special_pad, path);
        rc = -1;
    }
    rt_prompter_free(&p);
    return rc;
}
