/* tokcfg.c — the tokenizer side of a config whose datasets have a `type`:
 * which tokenizer.json, which BOS/EOS/end-of-turn tokens, which chat
 * template, all checked at compile time so axorun only meets data errors. */
#include "frontend/config.h"

#include <jansson.h>
#include <string.h>

/* tokenizer_config.json's "bos_token": a string, {"content": ...}, or null */
static const char *special_of(const json_t *cfg, const char *key, ax_arena *ar) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? ax_arena_strdup(ar, json_string_value(v)) : NULL;
}

int fe_resolve_tokenizer(fe_config *c, const fe_model *m, ax_arena *ar, ax_diag *d) {
    int any = 0;
    for (int i = 0; i < c->ndatasets; i++) any |= c->datasets[i].formatted;
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
    int has_jinja = tcfg && json_object_get(tcfg, "chat_template") && !json_is_null(json_object_get(tcfg, "chat_template"));
    json_decref(tcfg);
    int rc = 0;
    for (int i = 0; i < c->ndatasets; i++) {
        fe_dataset *ds = &c->datasets[i];
        if (!ds->formatted) continue;
        if (ds->spec.fmt != RT_FMT_CHAT) {
            if (!t->eos && ds->spec.fmt != RT_FMT_INPUT_OUTPUT)
                ax_warn(d, where, "datasets[%d]: the tokenizer has no eos_token (tokenizer_config.json or "
                                  "special_tokens.eos_token): samples end without one", i);
            continue;
        }
        const char *name = ds->chat_template ? ds->chat_template : c->chat_template ? c->chat_template : "tokenizer_default";
        char k[64];
        snprintf(k, sizeof k, ds->chat_template ? "datasets[%d].chat_template" : "chat_template", i);
        const char *fb = !strncmp(name, "tokenizer_default_fallback_", 27) ? name + 27 : NULL;
        int tpl = rt_tpl_from_name(fb ? fb : name);
        if (fb && has_jinja) tpl = -2;
        if (tpl == -1 && !strcmp(name, "tokenizer_default") && !has_jinja) {
            ax_error(d, where, "%s: tokenizer_default, but %s has no chat_template; name one: chatml, llama3, qwen_25, qwen3, gemma, phi_3",
                     k, cfg_path);
            rc = -1;
        } else if (tpl < 0 && (!strcmp(name, "tokenizer_default") || !strcmp(name, "jinja") || fb)) {
            ax_error(d, where,
                     "%s: \"%s\" means running the tokenizer's own Jinja chat template, which axo cannot (it has no "
                     "Jinja engine); name the built-in template that matches it: chatml, llama3, qwen_25, qwen3, gemma or phi_3",
                     k, name);
            rc = -1;
        } else if (tpl < 0) {
            ax_error(d, where, "%s: chat template \"%s\" is not implemented; axo has chatml, llama3, qwen_25, qwen3, gemma and phi_3", k,
                     name);
            rc = -1;
        } else {
            ds->spec.tpl = (rt_tpl)tpl;
            if (rt_tpl_needs_bos((rt_tpl)tpl) && !t->bos) {
                ax_error(d, where, "%s: %s starts with the bos_token, and the tokenizer has none (set "
                                   "special_tokens.bos_token)", k, rt_tpl_name((rt_tpl)tpl));
                rc = -1;
            }
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
