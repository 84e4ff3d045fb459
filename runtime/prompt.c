#include "runtime/prompt.h"

#include "runtime/data.h"
#include "runtime/jinja.h"

#include <stdlib.h>
#include <string.h>

/* ---- specs ----------------------------------------------------------------- */

static const char *const tpl_names[RT_TPL_COUNT] = {"chatml", "llama3", "qwen_25", "gemma", "phi_3", "qwen3", "gemma3"};
static const char *const eot_names[] = {"none", "turn", "all", "last"};
const char *const rt_fmt_names[RT_FMT_COUNT] = {"", "completion", "alpaca", "chat_template", "input_output", "dpo"};
const char *const rt_dpo_variant_names[RT_DPOV_COUNT] = {"default", "argilla_chat", "icr", "intel", "prompt_pairs", "ultra",
                                                         "nectar", "orpo_argilla"};
static const char *const dpo_family_names[] = {"passthrough", "chatml", "llama3", "user_defined", "chat_template", "zephyr"};
#define fmt_names rt_fmt_names

const char *rt_tpl_name(rt_tpl t) { return tpl_names[t]; }
int rt_tpl_from_name(const char *name) {
    for (int i = 0; i < RT_TPL_COUNT; i++)
        if (!strcmp(name, tpl_names[i])) return i;
    return -1;
}

void rt_ds_spec_defaults(rt_ds_spec *s, rt_fmt fmt) {
    memset(s, 0, sizeof *s);
    s->fmt = fmt;
    s->field = "text";
    s->field_messages = "messages";
    s->role_key = "role";
    s->content_key = "content";
    s->field_system = "system";
    s->thinking_key = "reasoning_content";
    s->tpl = RT_TPL_CHATML;
    s->train_roles[0] = "assistant";
    s->ntrain_roles = 1;
    s->train_on_eos = s->train_on_eot = RT_EOT_TURN;
}

/* A spec's chat template and message keys (chat_template datasets and dpo's chat_template.default) */
static void chat_keys_json(json_t *o, const rt_ds_spec *s) {
    json_object_set_new(o, "chat_template", json_string(s->jinja ? "jinja" : tpl_names[s->tpl]));
    if (s->jinja) json_object_set_new(o, "chat_template_jinja", json_string(s->jinja));
    if (s->tpl_kwargs) json_object_set_new(o, "chat_template_kwargs", json_loads(s->tpl_kwargs, 0, NULL));
    json_object_set_new(o, "field_messages", json_string(s->field_messages));
    json_object_set_new(o, "role", json_string(s->role_key));
    json_object_set_new(o, "content", json_string(s->content_key));
}

char *rt_ds_spec_json(const rt_ds_spec *s) {
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(fmt_names[s->fmt]));
    if (s->fmt == RT_FMT_COMPLETION) json_object_set_new(o, "field", json_string(s->field));
    if (s->fmt == RT_FMT_CHAT) {
        chat_keys_json(o, s);
        json_object_set_new(o, "field_system", json_string(s->field_system));
        json_object_set_new(o, "training", s->training_key ? json_string(s->training_key) : json_null());
        if (s->training_detail_key) json_object_set_new(o, "training_detail", json_string(s->training_detail_key));
        /* the later keys only when not the default, so that plans without them stay as they were */
        if (strcmp(s->thinking_key, "reasoning_content")) json_object_set_new(o, "thinking_key", json_string(s->thinking_key));
        if (s->split_thinking) json_object_set_new(o, "split_thinking", json_true());
        if (s->nprop) {
            json_t *pm = json_array();
            for (int i = 0; i < s->nprop; i++) json_array_append_new(pm, json_pack("[s,s]", s->prop_to[i], s->prop_from[i]));
            json_object_set_new(o, "property_mappings", pm);
        }
        json_object_set_new(o, "drop_system_message", json_boolean(s->drop_system_message));
        json_t *r = json_array();
        for (int i = 0; i < s->ntrain_roles; i++) json_array_append_new(r, json_string(s->train_roles[i]));
        json_object_set_new(o, "roles_to_train", r);
        json_t *m = json_array();
        for (int i = 0; i < s->nrole_map; i++) {
            json_t *pair = json_array();
            json_array_append_new(pair, json_string(s->role_from[i]));
            json_array_append_new(pair, json_string(s->role_to[i]));
            json_array_append_new(m, pair);
        }
        json_object_set_new(o, "roles", m);
        json_object_set_new(o, "train_on_eos", json_string(eot_names[s->train_on_eos]));
        json_object_set_new(o, "train_on_eot", json_string(eot_names[s->train_on_eot]));
    }
    if (s->fmt == RT_FMT_ALPACA && s->user_defined)
        json_object_set_new(o, "user_defined",
                            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "format", s->ud_format, "no_input_format",
                                      s->ud_no_input_format, "system_format", s->ud_system_format, "system_prompt",
                                      s->ud_system_prompt, "field_instruction", s->ud_field_instruction, "field_input",
                                      s->ud_field_input, "field_output", s->ud_field_output, "field_system",
                                      s->ud_field_system));
    if (s->fmt == RT_FMT_DPO) {
        json_object_set_new(o, "strategy", json_string(dpo_family_names[s->dpo_family]));
        if (s->dpo_cpo) json_object_set_new(o, "tokenize", json_string("cpo")); /* absent: DPOTrainer's (older plans) */
        if (s->dpo_family == RT_DPO_CHATML || s->dpo_family == RT_DPO_LLAMA3 || s->dpo_family == RT_DPO_ZEPHYR ||
            (s->dpo_family == RT_DPO_CHAT && s->dpo_variant != RT_DPOV_DEFAULT)) /* chat_template.default: none */
            json_object_set_new(o, "variant", json_string(rt_dpo_variant_names[s->dpo_variant]));
        if (s->dpo_family == RT_DPO_CHAT) {
            chat_keys_json(o, s);
            json_object_set_new(o, "field_chosen", json_string(s->ud_field_chosen));
            json_object_set_new(o, "field_rejected", json_string(s->ud_field_rejected));
            json_t *m = json_array();
            for (int i = 0; i < s->nrole_map; i++) json_array_append_new(m, json_pack("[s,s]", s->role_from[i], s->role_to[i]));
            json_object_set_new(o, "roles", m);
        }
        if (s->dpo_family == RT_DPO_USER)
            json_object_set_new(o, "user_defined",
                                json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "field_prompt", s->ud_field_prompt, "field_system",
                                          s->ud_field_system, "field_chosen", s->ud_field_chosen, "field_rejected",
                                          s->ud_field_rejected, "prompt_format", s->ud_format, "chosen_format",
                                          s->ud_chosen_format, "rejected_format", s->ud_rejected_format));
    }
    char *out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return out;
}

static const char *js_str(const json_t *o, const char *k, ax_arena *ar) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? ax_arena_strdup(ar, json_string_value(v)) : NULL;
}

static int eot_from(const char *s) {
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, eot_names[i])) return i;
    return -1;
}

/* chat_keys_json's keys back: the template's index (or 0 for Jinja text), -1 if the record names none */
static int chat_keys_from_json(const json_t *o, rt_ds_spec *s, ax_arena *ar) {
    const char *t = json_string_value(json_object_get(o, "chat_template"));
    int ti = t ? rt_tpl_from_name(t) : -1;
    s->tpl = (rt_tpl)(ti < 0 ? 0 : ti);
    if (t && !strcmp(t, "jinja")) s->jinja = js_str(o, "chat_template_jinja", ar), ti = s->jinja ? 0 : -1;
    const json_t *kw = json_object_get(o, "chat_template_kwargs");
    if (json_is_object(kw)) {
        char *k = json_dumps(kw, JSON_SORT_KEYS | JSON_COMPACT);
        s->tpl_kwargs = ax_arena_strdup(ar, k);
        free(k);
    }
    s->field_messages = js_str(o, "field_messages", ar);
    s->role_key = js_str(o, "role", ar);
    s->content_key = js_str(o, "content", ar);
    return ti;
}

int rt_ds_spec_from_json(const char *js, rt_ds_spec *s, ax_arena *ar, const char *where, ax_diag *d) {
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    const char *type = o ? json_string_value(json_object_get(o, "type")) : NULL;
    int fmt = -1;
    for (int i = 0; type && i < RT_FMT_COUNT; i++)
        if (!strcmp(type, fmt_names[i])) fmt = i;
    if (fmt < 0) {
        ax_error(d, where, "bad dataset format record in the plan");
        json_decref(o);
        return -1;
    }
    rt_ds_spec_defaults(s, (rt_fmt)fmt);
    int rc = 0;
    if (fmt == RT_FMT_COMPLETION) s->field = js_str(o, "field", ar);
    const json_t *ud = json_object_get(o, "user_defined");
    if (fmt == RT_FMT_ALPACA && json_is_object(ud)) {
        s->user_defined = 1;
        s->ud_format = js_str(ud, "format", ar), s->ud_no_input_format = js_str(ud, "no_input_format", ar);
        s->ud_system_format = js_str(ud, "system_format", ar), s->ud_system_prompt = js_str(ud, "system_prompt", ar);
        s->ud_field_instruction = js_str(ud, "field_instruction", ar), s->ud_field_input = js_str(ud, "field_input", ar);
        s->ud_field_output = js_str(ud, "field_output", ar), s->ud_field_system = js_str(ud, "field_system", ar);
        if (!s->ud_format || !s->ud_no_input_format || !s->ud_system_format || !s->ud_system_prompt ||
            !s->ud_field_instruction || !s->ud_field_input || !s->ud_field_output || !s->ud_field_system) {
            ax_error(d, where, "bad user_defined dataset record in the plan");
            json_decref(o);
            return -1;
        }
    }
    if (fmt == RT_FMT_DPO) {
        const char *fam = json_string_value(json_object_get(o, "strategy")), *var = json_string_value(json_object_get(o, "variant"));
        int f = -1, v = var ? -1 : 0;
        for (int i = 0; fam && i < (int)AX_ARRAY_LEN(dpo_family_names); i++)
            if (!strcmp(fam, dpo_family_names[i])) f = i;
        for (int i = 0; var && i < RT_DPOV_COUNT; i++)
            if (!strcmp(var, rt_dpo_variant_names[i])) v = i;
        s->dpo_family = (rt_dpo_family)(f < 0 ? 0 : f), s->dpo_variant = (rt_dpo_variant)(v < 0 ? 0 : v);
        const json_t *tk = json_object_get(o, "tokenize");
        s->dpo_cpo = json_is_string(tk) && !strcmp(json_string_value(tk), "cpo");
        if (tk && !s->dpo_cpo) f = -1; /* a tokenization this axorun does not know */
        const json_t *du = json_object_get(o, "user_defined");
        if (f == RT_DPO_USER && json_is_object(du)) {
            s->ud_field_prompt = js_str(du, "field_prompt", ar), s->ud_field_system = js_str(du, "field_system", ar);
            s->ud_field_chosen = js_str(du, "field_chosen", ar), s->ud_field_rejected = js_str(du, "field_rejected", ar);
            s->ud_format = js_str(du, "prompt_format", ar), s->ud_chosen_format = js_str(du, "chosen_format", ar);
            s->ud_rejected_format = js_str(du, "rejected_format", ar);
        }
        int bad_chat = 0;
        if (f == RT_DPO_CHAT) {
            const int ti = chat_keys_from_json(o, s, ar);
            s->ud_field_chosen = js_str(o, "field_chosen", ar);
            s->ud_field_rejected = js_str(o, "field_rejected", ar);
            size_t i;
            const json_t *x;
            json_array_foreach(json_object_get(o, "roles"), i, x) {
                const char *a = json_string_value(json_array_get(x, 0)), *b = json_string_value(json_array_get(x, 1));
                if (a && b && s->nrole_map < RT_MAX_ROLES * 2)
                    s->role_from[s->nrole_map] = ax_arena_strdup(ar, a), s->role_to[s->nrole_map++] = ax_arena_strdup(ar, b);
            }
            bad_chat = ti < 0 || !s->field_messages || !s->role_key || !s->content_key || !s->ud_field_chosen ||
                       !s->ud_field_rejected;
        }
        if (f < 0 || v < 0 || bad_chat ||
            (f == RT_DPO_USER && (!s->ud_field_prompt || !s->ud_field_system || !s->ud_field_chosen || !s->ud_field_rejected ||
                                  !s->ud_format || !s->ud_chosen_format || !s->ud_rejected_format))) {
            ax_error(d, where, "bad dpo dataset record in the plan");
            json_decref(o);
            return -1;
        }
    }
    if (fmt == RT_FMT_CHAT) {
        const int ti = chat_keys_from_json(o, s, ar);
        s->field_system = js_str(o, "field_system", ar);
        s->training_key = js_str(o, "training", ar);
        s->training_detail_key = js_str(o, "training_detail", ar);
        const char *tk = js_str(o, "thinking_key", ar);
        if (tk) s->thinking_key = tk;
        s->split_thinking = json_is_true(json_object_get(o, "split_thinking"));
        size_t pi;
        const json_t *pv;
        json_array_foreach(json_object_get(o, "property_mappings"), pi, pv) {
            const char *to = json_string_value(json_array_get(pv, 0)), *from = json_string_value(json_array_get(pv, 1));
            if (to && from && s->nprop < RT_MAX_ROLES)
                s->prop_to[s->nprop] = ax_arena_strdup(ar, to), s->prop_from[s->nprop++] = ax_arena_strdup(ar, from);
        }
        s->drop_system_message = json_is_true(json_object_get(o, "drop_system_message"));
        s->ntrain_roles = 0;
        size_t i;
        const json_t *x;
        json_array_foreach(json_object_get(o, "roles_to_train"), i, x) {
            if (s->ntrain_roles < RT_MAX_ROLES && json_is_string(x))
                s->train_roles[s->ntrain_roles++] = ax_arena_strdup(ar, json_string_value(x));
        }
        json_array_foreach(json_object_get(o, "roles"), i, x) {
            if (s->nrole_map < RT_MAX_ROLES * 2) {
                s->role_from[s->nrole_map] = ax_arena_strdup(ar, json_string_value(json_array_get(x, 0)));
                s->role_to[s->nrole_map++] = ax_arena_strdup(ar, json_string_value(json_array_get(x, 1)));
            }
        }
        int e1 = eot_from(json_string_value(json_object_get(o, "train_on_eos")));
        int e2 = eot_from(json_string_value(json_object_get(o, "train_on_eot")));
        if (ti < 0 || e1 < 0 || e2 < 0 || !s->field_messages || !s->role_key || !s->content_key || !s->field_system)
            rc = -1;
        s->train_on_eos = (rt_eot_mode)(e1 < 0 ? 0 : e1);
        s->train_on_eot = (rt_eot_mode)(e2 < 0 ? 0 : e2);
    }
    if (fmt == RT_FMT_COMPLETION && !s->field) rc = -1;
    if (rc) ax_error(d, where, "bad dataset format record in the plan");
    json_decref(o);
    return rc;
}

/* the setup's JSON names of the special tokens: bos, eos, then the others as
 * transformers names them */
static const char *const special_names[7] = {"bos", "eos", "unk_token", "sep_token", "pad_token", "cls_token",
                                             "mask_token"};

char *rt_tok_setup_json(const rt_tok_setup *s) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(s->path));
    json_object_set_new(o, "bos", s->bos ? json_string(s->bos) : json_null());
    json_object_set_new(o, "eos", s->eos ? json_string(s->eos) : json_null());
    const char *const more[5] = {s->unk, s->sep, s->pad, s->cls, s->mask};
    for (int i = 0; i < 5; i++)
        if (more[i]) json_object_set_new(o, special_names[i + 2], json_string(more[i]));
    json_t *e = json_array();
    for (int i = 0; i < s->neot; i++) json_array_append_new(e, json_string(s->eot[i]));
    json_object_set_new(o, "eot_tokens", e);
    json_object_set_new(o, "train_on_inputs", json_boolean(s->train_on_inputs));
    if (s->mistral_name) json_object_set_new(o, "mistral_name", json_true()); /* absent when false: plans unchanged */
    if (s->nedits) { /* absent without edits: older plans keep their bytes */
        json_t *ed = json_array();
        for (int k = 0; k < s->nedits; k++) {
            json_t *x = json_object();
            json_object_set_new(x, "content", json_string(s->edits[k].content));
            if (s->edits[k].override_id >= 0) json_object_set_new(x, "override", json_integer(s->edits[k].override_id));
            else json_object_set_new(x, "special", json_boolean(s->edits[k].special));
            json_array_append_new(ed, x);
        }
        json_object_set_new(o, "edits", ed);
    }
    if (s->nset) {
        json_t *st = json_object();
        for (int k = 0; k < s->nset; k++) json_object_set_new(st, s->set_special[k], json_string(s->set_value[k]));
        json_object_set_new(o, "set_special", st);
    }
    if (s->extra_special) {
        json_t *xs = json_array();
        for (int k = 0; k < s->nextra_special; k++) json_array_append_new(xs, json_string(s->extra_special[k]));
        json_object_set_new(o, "extra_special", xs);
    }
    char *out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return out;
}

int rt_tok_setup_from_json(const char *js, rt_tok_setup *s, ax_arena *ar, const char *where, ax_diag *d) {
    memset(s, 0, sizeof *s);
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    s->path = o ? js_str(o, "path", ar) : NULL;
    if (!s->path) {
        ax_error(d, where, "bad tokenizer record in the plan");
        json_decref(o);
        return -1;
    }
    s->bos = js_str(o, "bos", ar);
    s->eos = js_str(o, "eos", ar);
    const char **more[5] = {&s->unk, &s->sep, &s->pad, &s->cls, &s->mask};
    for (int i = 0; i < 5; i++) *more[i] = js_str(o, special_names[i + 2], ar);
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(o, "eot_tokens"), i, x) {
        if (s->neot < 8 && json_is_string(x)) s->eot[s->neot++] = ax_arena_strdup(ar, json_string_value(x));
    }
    s->train_on_inputs = json_is_true(json_object_get(o, "train_on_inputs"));
    s->mistral_name = json_is_true(json_object_get(o, "mistral_name"));
    const json_t *ed = json_object_get(o, "edits"), *st = json_object_get(o, "set_special"),
                 *xs = json_object_get(o, "extra_special");
    if (json_array_size(ed)) {
        rt_tok_edit *e = ax_arena_alloc(ar, sizeof *e * json_array_size(ed));
        json_array_foreach(ed, i, x) {
            const json_t *ov = json_object_get(x, "override");
            e[i].content = js_str(x, "content", ar);
            e[i].override_id = json_is_integer(ov) ? (int32_t)json_integer_value(ov) : -1;
            e[i].special = json_is_true(json_object_get(x, "special"));
            if (!e[i].content || (ov && !json_is_integer(ov))) {
                ax_error(d, where, "bad tokenizer edit %zu in the plan", i);
                json_decref(o);
                return -1;
            }
        }
        s->edits = e;
        s->nedits = (int)json_array_size(ed);
    }
    if (json_object_size(st)) {
        const char *k;
        const json_t *v;
        s->set_special = ax_arena_alloc(ar, sizeof *s->set_special * json_object_size(st));
        s->set_value = ax_arena_alloc(ar, sizeof *s->set_value * json_object_size(st));
        json_object_foreach((json_t *)st, k, v) {
            if (!json_is_string(v)) continue;
            s->set_special[s->nset] = ax_arena_strdup(ar, k);
            s->set_value[s->nset++] = ax_arena_strdup(ar, json_string_value(v));
        }
    }
    if (json_is_array(xs)) {
        s->extra_special = ax_arena_alloc(ar, sizeof *s->extra_special * (json_array_size(xs) + 1));
        json_array_foreach(xs, i, x) {
            if (json_is_string(x)) s->extra_special[s->nextra_special++] = ax_arena_strdup(ar, json_string_value(x));
        }
    }
    json_decref(o);
    return 0;
}

int rt_tok_setup_apply(rt_tokenizer *t, const rt_tok_setup *s, ax_diag *d) {
    for (int k = 0; k < s->nedits; k++) {
        const rt_tok_edit *e = &s->edits[k];
        if (e->override_id >= 0) {
            if (rt_tok_override(t, e->override_id, e->content) != 0) {
                ax_error(d, s->path, "added_tokens_overrides: token id %d is not an added token of this tokenizer "
                                     "(Axolotl renames only added tokens, e.g. Llama-3's reserved special tokens)",
                         (int)e->override_id);
                return -1;
            }
        } else {
            rt_tok_add(t, e->content, NULL);
        }
    }
    return 0;
}

/* ---- prompter ---------------------------------------------------------------- */

int rt_prompter_init(rt_prompter *p, const rt_tok_setup *s, int64_t seq_len, ax_diag *d) {
    memset(p, 0, sizeof *p);
    p->setup = s;
    p->seq_len = seq_len;
    p->tok = rt_tok_load(s->path, d);
    if (!p->tok) return -1;
    if (rt_tok_setup_apply(p->tok, s, d) != 0) {
        rt_prompter_free(p);
        return -1;
    }
    p->bos_id = p->eos_id = -1;
    int rc = 0;
    const char *names[2] = {s->bos, s->eos};
    int32_t *ids[2] = {&p->bos_id, &p->eos_id};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) continue;
        *ids[k] = rt_tok_id(p->tok, names[k]);
        if (*ids[k] < 0) {
            ax_error(d, s->path, "%s token \"%s\" is not a token of this tokenizer", k ? "eos" : "bos", names[k]);
            rc = -1;
        }
    }
    for (int i = 0; i < s->neot; i++) {
        ax_buf b = {0};
        if (rt_tok_encode(p->tok, s->eot[i], strlen(s->eot[i]), 0, &b, s->path, d) != 0 || b.len != sizeof(int32_t)) {
            ax_error(d, s->path, "eot_tokens: \"%s\" is not one token of this tokenizer", s->eot[i]);
            rc = -1;
        } else {
            p->eot_ids[p->neot++] = *(int32_t *)b.data;
        }
        ax_buf_free(&b);
    }
    if (rc) rt_prompter_free(p);
    return rc;
}

void rt_prompter_free(rt_prompter *p) {
    rt_tok_free(p->tok);
    p->tok = NULL;
    jinja_free(p->jinja);
    p->jinja = NULL;
    p->jinja_src = NULL;
}

/* Axolotl's PromptTokenizingStrategy._tokenize: the tokenizer's specials,
 * truncated to max_length (specials kept), EOS appended when asked and
 * there is room and it is not there yet, then a leading BOS stripped when
 * asked. Appends to out; returns the count, -1 on error. */
static int64_t tokenize(rt_prompter *p, const char *text, size_t len, int add_eos, int strip_bos, int64_t max_length,
                        ax_buf *out, const char *where, ax_diag *d) {
    if (!len) return 0;
    ax_buf b = {0};
    if (rt_tok_encode(p->tok, text, len, 0, &b, where, d)) {
        ax_buf_free(&b);
        return -1;
    }
    const int32_t *pre, *suf;
    int np = rt_tok_special_prefix(p->tok, &pre), ns = rt_tok_special_suffix(p->tok, &suf);
    int64_t n = (int64_t)(b.len / sizeof(int32_t)), keep = max_length - np - ns;
    if (keep < 0) keep = 0;
    if (n > keep) n = keep;
    ax_buf r = {0};
    ax_buf_append(&r, pre, sizeof(int32_t) * (size_t)np);
    ax_buf_append(&r, b.data, sizeof(int32_t) * (size_t)n);
    ax_buf_append(&r, suf, sizeof(int32_t) * (size_t)ns);
    ax_buf_free(&b);
    int32_t *ids = (int32_t *)r.data;
    int64_t m = (int64_t)(r.len / sizeof(int32_t));
    if (add_eos && p->eos_id >= 0 && (m == 0 || ids[m - 1] != p->eos_id) && m < max_length) {
        ax_buf_append(&r, &p->eos_id, sizeof p->eos_id);
        ids = (int32_t *)r.data;
        m++;
    }
    int64_t from = strip_bos && m > 0 && p->bos_id >= 0 && ids[0] == p->bos_id ? 1 : 0;
    ax_buf_append(out, ids + from, sizeof(int32_t) * (size_t)(m - from));
    ax_buf_free(&r);
    return m - from;
}

static void push_sample(const ax_buf *ids, size_t from, ax_buf *out_ids, ax_buf *labels, const ax_buf *lab,
                        ax_buf *lens) {
    int64_t n = (int64_t)((ids->len - from) / sizeof(int32_t));
    if (ids->len > from) ax_buf_append(out_ids, ids->data + from, ids->len - from); /* empty: data may be NULL */
    if (lab->len > from) ax_buf_append(labels, lab->data + from, lab->len - from);
    ax_buf_append(lens, &n, sizeof n);
}

static const char *get_text(const json_t *row, const char *key, int required, const char *where, ax_diag *d,
                            size_t *len) {
    const json_t *v = json_object_get(row, key);
    if (!v || json_is_null(v)) {
        if (required) ax_error(d, where, "\"%s\": missing (a string is expected)", key);
        *len = 0;
        return required ? NULL : "";
    }
    if (!json_is_string(v)) {
        ax_error(d, where, "\"%s\": expected a string", key);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* ---- completion, alpaca ---------------------------------------------------------- */

static int completion_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                          ax_buf *labels, ax_buf *lens, ax_diag *d) {
    size_t len;
    const char *text = get_text(row, s->field, 1, where, d, &len);
    if (!text) return -1;
    ax_buf b = {0};
    int64_t n = tokenize(p, text, len, 1, 0, p->seq_len * 64, &b, where, d);
    if (n < 0) {
        ax_buf_free(&b);
        return -1;
    }
    const int32_t *t = (const int32_t *)b.data;
    for (int64_t i = 0; i < n; i += p->seq_len) {
        int64_t c = n - i < p->seq_len ? n - i : p->seq_len;
        ax_buf_append(ids, t + i, sizeof(int32_t) * (size_t)c);
        ax_buf_append(labels, t + i, sizeof(int32_t) * (size_t)c);
        ax_buf_append(lens, &c, sizeof c);
    }
    ax_buf_free(&b);
    return 0;
}

#define ALPACA_SYS_INPUT                                                                                             \
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "    \
    "response that appropriately completes the request."
#define ALPACA_SYS "Below is an instruction that describes a task. Write a response that appropriately completes the request."

int rt_ud_format_check(const char *fmt, const char *const *names, char *err, size_t cap) {
    for (const char *c = fmt; *c; c++) {
        if ((c[0] == '{' && c[1] == '{') || (c[0] == '}' && c[1] == '}')) {
            c++;
            continue;
        }
        if (*c == '}') {
            snprintf(err, cap, "a single '}' (write }} for a brace)");
            return -1;
        }
        if (*c != '{') continue;
        const char *e = strchr(c, '}');
        if (!e) {
            snprintf(err, cap, "a '{' without its '}' (write {{ for a brace)");
            return -1;
        }
        int ok = 0;
        for (int i = 0; names[i] && !ok; i++) ok = (size_t)(e - c - 1) == strlen(names[i]) && !strncmp(c + 1, names[i], (size_t)(e - c - 1));
        if (!ok) {
            char allowed[128] = "";
            for (int i = 0; names[i]; i++)
                snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s{%s}", i ? ", " : "", names[i]);
            snprintf(err, cap, "\"{%.*s}\": this format fills only %s", (int)(e - c - 1), c + 1, allowed);
            return -1;
        }
        c = e;
    }
    return 0;
}

/* Python's fmt.format(**{names[i]: vals[i]}) for a format rt_ud_format_check passed. */
static void py_format(ax_buf *out, const char *fmt, const char *const *names, const char *const *vals, const size_t *lens) {
    for (const char *c = fmt; *c; c++) {
        if ((c[0] == '{' && c[1] == '{') || (c[0] == '}' && c[1] == '}')) {
            ax_buf_append(out, c, 1);
            c++;
            continue;
        }
        if (*c != '{') {
            ax_buf_append(out, c, 1);
            continue;
        }
        const char *e = strchr(c, '}');
        for (int i = 0; names[i]; i++)
            if ((size_t)(e - c - 1) == strlen(names[i]) && !strncmp(c + 1, names[i], (size_t)(e - c - 1)))
                ax_buf_append(out, vals[i], lens[i]);
        c = e;
    }
}

/* Axolotl's user_defined prompt: system_format.format(system) when the
 * system text is not empty, then format.format(instruction, input), or
 * no_input_format.format(instruction) when the input is empty. */
static void ud_prompt(const rt_ds_spec *s, const char *ins, size_t il, const char *inp, size_t nl, const char *sys,
                      size_t sl, ax_buf *prompt) {
    static const char *const sys_names[] = {"system", NULL}, *const turn_names[] = {"instruction", "input", NULL};
    if (sl && s->ud_system_format[0]) py_format(prompt, s->ud_system_format, sys_names, (const char *[]){sys}, (size_t[]){sl});
    if (nl) py_format(prompt, s->ud_format, turn_names, (const char *[]){ins, inp}, (size_t[]){il, nl});
    else py_format(prompt, s->ud_no_input_format, turn_names, (const char *[]){ins, ""}, (size_t[]){il, 0});
    ax_buf_puts(prompt, "");
}

static int alpaca_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                      ax_buf *labels, ax_buf *lens, ax_diag *d) {
    size_t il = 0, nl = 0, ol = 0, sl = 0;
    int ud = s->user_defined;
    const char *ins = get_text(row, ud ? s->ud_field_instruction : "instruction", 1, where, d, &il);
    const char *inp = get_text(row, ud ? s->ud_field_input : "input", 0, where, d, &nl);
    const char *out = get_text(row, ud ? s->ud_field_output : "output", !ud, where, d, &ol);
    const char *sys = "";
    if (ud) { /* the row's system text, else the dataset's system_prompt */
        const json_t *sv = json_object_get(row, s->ud_field_system);
        sys = sv ? get_text(row, s->ud_field_system, 0, where, d, &sl) : s->ud_system_prompt;
        if (!sv) sl = strlen(s->ud_system_prompt);
    }
    if (!ins || !inp || !out || !sys) return -1;
    ax_buf prompt = {0};
    if (ud)
        ud_prompt(s, ins, il, inp, nl, sys, sl, &prompt);
    else if (nl)
        ax_buf_printf(&prompt, "%s\n\n### Instruction:\n%.*s\n\n### Input:\n%.*s\n\n### Response:\n", ALPACA_SYS_INPUT,
                      (int)il, ins, (int)nl, inp);
    else
        ax_buf_printf(&prompt, "%s\n\n### Instruction:\n%.*s\n\n### Response:\n", ALPACA_SYS, (int)il, ins);
    ax_buf t = {0}, l = {0};
    int64_t np = tokenize(p, prompt.data, prompt.len, 0, 0, p->seq_len, &t, where, d);
    ax_buf_free(&prompt);
    int64_t nr = np < 0 ? -1 : tokenize(p, out, ol, 1, 1, p->seq_len, &t, where, d);
    if (np < 0 || nr < 0) {
        ax_buf_free(&t);
        return -1;
    }
    const int32_t *ti = (const int32_t *)t.data;
    for (int64_t i = 0; i < np + nr; i++) {
        int32_t v = i < np && !p->setup->train_on_inputs ? RT_IGNORE_INDEX : ti[i];
        ax_buf_append(&l, &v, sizeof v);
    }
    push_sample(&t, 0, ids, labels, &l, lens);
    ax_buf_free(&t);
    ax_buf_free(&l);
    return 0;
}

/* ---- dpo (rl: dpo): one preference pair a row ----------------------------------- */

/* A text the strategy formats with Python's f"{x}": axo takes strings (f"{None}" would be "None", and a list's
 * repr is no prompt anyone meant) */
static const char *dpo_str(const json_t *v, const char *what, const char *where, ax_diag *d, size_t *len) {
    if (!json_is_string(v)) {
        ax_error(d, where, "%s: expected a string, found %s", what,
                 !v ? "none" : json_is_null(v) ? "null" : json_is_array(v) ? "a list" : json_is_object(v) ? "a mapping" : "a number");
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* row[key][i]["content"]: argilla_chat's and ultra's conversations */
static const char *dpo_msg(const json_t *row, const char *key, size_t i, const char *where, ax_diag *d, size_t *len) {
    const json_t *c = json_object_get(row, key), *m = json_is_array(c) ? json_array_get(c, i) : NULL;
    char what[96];
    snprintf(what, sizeof what, "\"%s\"[%zu].content", key, i);
    if (!json_is_object(m)) {
        ax_error(d, where, "\"%s\": expected a list of at least %zu messages ({\"role\": ..., \"content\": ...})", key, i + 1);
        return NULL;
    }
    return dpo_str(json_object_get(m, "content"), what, where, d, len);
}

/* chat_template.default (after the chat renderers, below) */
static int dpo_chat_texts(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *pr,
                          ax_buf *ch, ax_buf *rj, ax_diag *d);

/* Axolotl 0.19's DPO strategies: the texts prompt, chosen, rejected of a row */
static int dpo_texts(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *pr, ax_buf *ch,
                     ax_buf *rj, ax_diag *d) {
    size_t pl = 0, cl = 0, rl = 0, sl = 0;
    const char *ptxt = NULL, *ctxt = NULL, *rtxt = NULL, *sys = NULL;
    char what[96];
    if (s->dpo_family == RT_DPO_CHAT) return dpo_chat_texts(p, s, row, where, pr, ch, rj, d);
    if (s->dpo_family == RT_DPO_PASSTHROUGH) { /* no type (or passthrough): the row's own texts */
        if (!(ptxt = dpo_str(json_object_get(row, "prompt"), "\"prompt\"", where, d, &pl)) ||
            !(ctxt = dpo_str(json_object_get(row, "chosen"), "\"chosen\"", where, d, &cl)) ||
            !(rtxt = dpo_str(json_object_get(row, "rejected"), "\"rejected\"", where, d, &rl)))
            return -1;
        ax_buf_append(pr, ptxt, pl), ax_buf_append(ch, ctxt, cl), ax_buf_append(rj, rtxt, rl);
        return 0;
    }
    if (s->dpo_family == RT_DPO_ZEPHYR) { /* zephyr.nectar: the answers sorted by rank (a stable sort), the last two */
        if (!(ptxt = dpo_str(json_object_get(row, "prompt"), "\"prompt\"", where, d, &pl))) return -1;
        const json_t *ans = json_object_get(row, "answers");
        const size_t na = json_is_array(ans) ? json_array_size(ans) : 0;
        if (na < 2) {
            ax_error(d, where, "\"answers\": expected a list of at least two {\"answer\": ..., \"rank\": ...} (zephyr.nectar "
                     "takes the two of largest rank)");
            return -1;
        }
        size_t top = 0, second = 0; /* Python's sorted(key=rank)[-1] and [-2]: the later of equal ranks sorts last */
        double rt = 0, rs = 0;
        for (size_t i = 0; i < na; i++) {
            const json_t *rk = json_object_get(json_array_get(ans, i), "rank");
            if (!json_is_number(rk)) {
                ax_error(d, where, "\"answers\"[%zu].rank: expected a number", i);
                return -1;
            }
            const double r = json_number_value(rk);
            if (i == 0 || r >= rt) second = top, rs = rt, top = i, rt = r;
            else if (i == 1 || r >= rs) second = i, rs = r;
        }
        snprintf(what, sizeof what, "\"answers\"[%zu].answer", top);
        if (!(ctxt = dpo_str(json_object_get(json_array_get(ans, top), "answer"), what, where, d, &cl))) return -1;
        snprintf(what, sizeof what, "\"answers\"[%zu].answer", second);
        if (!(rtxt = dpo_str(json_object_get(json_array_get(ans, second), "answer"), what, where, d, &rl))) return -1;
        ax_buf_puts(pr, "<|system|>\n</s>\n<|user|>\n"), ax_buf_append(pr, ptxt, pl), ax_buf_puts(pr, "</s>\n<|assistant|>\n");
        ax_buf_append(ch, ctxt, cl), ax_buf_append(rj, rtxt, rl);
        return 0;
    }
    if (s->dpo_family == RT_DPO_USER) { /* user_defined.default */
        static const char *const pn[] = {"prompt", "system", NULL}, *const cn[] = {"chosen", NULL}, *const rn[] = {"rejected", NULL};
        snprintf(what, sizeof what, "\"%s\"", s->ud_field_prompt);
        if (!(ptxt = dpo_str(json_object_get(row, s->ud_field_prompt), what, where, d, &pl))) return -1;
        snprintf(what, sizeof what, "\"%s\"", s->ud_field_chosen);
        if (!(ctxt = dpo_str(json_object_get(row, s->ud_field_chosen), what, where, d, &cl))) return -1;
        snprintf(what, sizeof what, "\"%s\"", s->ud_field_rejected);
        if (!(rtxt = dpo_str(json_object_get(row, s->ud_field_rejected), what, where, d, &rl))) return -1;
        /* sample.get(field_system) or "", read only when prompt_format has {system} */
        const json_t *sv = strstr(s->ud_format, "{system}") ? json_object_get(row, s->ud_field_system) : NULL;
        sys = "";
        if (sv && !json_is_null(sv)) {
            snprintf(what, sizeof what, "\"%s\"", s->ud_field_system);
            if (!(sys = dpo_str(sv, what, where, d, &sl))) return -1;
        }
        py_format(pr, s->ud_format, pn, (const char *[]){ptxt, sys}, (size_t[]){pl, sl});
        py_format(ch, s->ud_chosen_format, cn, (const char *[]){ctxt}, (size_t[]){cl});
        py_format(rj, s->ud_rejected_format, rn, (const char *[]){rtxt}, (size_t[]){rl});
        return 0;
    }
    /* chatml.* and llama3.*: the user turn, the assistant header, the completion closed by the end of turn */
    const int ml = s->dpo_family == RT_DPO_CHATML;
    const char *sys_a = ml ? "<|im_start|>system\n" : "<|start_header_id|>system<|end_header_id|>\n\n",
               *sys_b = ml ? "<|im_end|>\n" : "<|eot_id|>",
               *usr_a = ml ? "<|im_start|>user\n" : "<|start_header_id|>user<|end_header_id|>\n\n",
               *usr_b = ml ? "<|im_end|>\n<|im_start|>assistant\n" : "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
               *eot = ml ? "<|im_end|>" : "<|eot_id|>";
    const rt_dpo_variant v = s->dpo_variant;
    const char *pk = "prompt", *ck = "chosen", *rk = "rejected";
    if (v == RT_DPOV_DEFAULT) { /* the first of its names the row has */
        static const char *const pks[] = {"prompt", "input", "question", "instruction"};
        int pi = 0;
        while (pi < 3 && !json_object_get(row, pks[pi])) pi++;
        const int ci = !json_object_get(row, "chosen"), ri = !json_object_get(row, "rejected");
        pk = pks[pi], ck = ci ? "chosen_response" : "chosen", rk = ri ? "rejected_response" : "rejected";
        /* Axolotl asks which columns the dataset has (HF datasets gives every row all of a file's columns, null
         * where a row has none, which the f-string makes "None"): rows naming them otherwise are refused */
        const int keys = 1 + pi + 4 * ci + 8 * ri;
        if (p->dpo_keys && p->dpo_keys != keys) {
            const int k0 = p->dpo_keys - 1;
            ax_error(d, where, "the row names its fields %s/%s/%s, the file's first row %s/%s/%s: Axolotl's %s.default picks "
                     "the names from the dataset's columns, so a row without them would train on \"None\"; give every "
                     "row the same fields", pk, ck, rk, pks[k0 & 3], k0 & 4 ? "chosen_response" : "chosen",
                     k0 & 8 ? "rejected_response" : "rejected", s->dpo_family == RT_DPO_CHATML ? "chatml" : "llama3");
            return -1;
        }
        p->dpo_keys = keys;
    } else if (v == RT_DPOV_ICR) {
        pk = "input";
    } else if (v == RT_DPOV_INTEL) {
        pk = "question";
    }
    if (v == RT_DPOV_ARGILLA_CHAT) {
        ptxt = dpo_msg(row, "chosen", 0, where, d, &pl);
    } else {
        snprintf(what, sizeof what, "\"%s\"", pk);
        ptxt = dpo_str(json_object_get(row, pk), what, where, d, &pl);
    }
    if (!ptxt) return -1;
    if (v == RT_DPOV_ARGILLA_CHAT || v == RT_DPOV_ULTRA) {
        ctxt = dpo_msg(row, "chosen", 1, where, d, &cl);
        rtxt = ctxt ? dpo_msg(row, "rejected", 1, where, d, &rl) : NULL;
    } else {
        snprintf(what, sizeof what, "\"%s\"", ck);
        ctxt = dpo_str(json_object_get(row, ck), what, where, d, &cl);
        snprintf(what, sizeof what, "\"%s\"", rk);
        rtxt = ctxt ? dpo_str(json_object_get(row, rk), what, where, d, &rl) : NULL;
    }
    if (!rtxt) return -1;
    if (v != RT_DPOV_ARGILLA_CHAT) { /* "system" in sample and sample["system"]: a system turn when not empty */
        const json_t *sv = json_object_get(row, "system");
        if (sv && !json_is_null(sv) && !(json_is_string(sv) && json_string_length(sv) == 0)) {
            if (!(sys = dpo_str(sv, "\"system\"", where, d, &sl))) return -1;
            ax_buf_puts(pr, sys_a), ax_buf_append(pr, sys, sl), ax_buf_puts(pr, sys_b);
        }
    }
    ax_buf_puts(pr, usr_a), ax_buf_append(pr, ptxt, pl), ax_buf_puts(pr, usr_b);
    ax_buf_append(ch, ctxt, cl), ax_buf_puts(ch, eot);
    ax_buf_append(rj, rtxt, rl), ax_buf_puts(rj, eot);
    return 0;
}

static int64_t count_tokens(rt_prompter *p, const ax_buf *b, const char *where, ax_diag *d) {
    ax_buf t = {0};
    int rc = b->len ? rt_tok_encode(p->tok, (const char *)b->data, b->len, 0, &t, where, d) : 0;
    int64_t n = rc ? -1 : (int64_t)(t.len / sizeof(int32_t));
    ax_buf_free(&t);
    return n;
}

/* TRL's tokenize_fn for text: prompt + completion tokenized with the tokenizer's specials, the completion the ids
 * after the prompt's (which TRL takes as they are even when the two do not line up) */
static int dpo_sample(rt_prompter *p, const ax_buf *pids, const ax_buf *prompt, const ax_buf *comp, const char *eos,
                      const char *where, ax_buf *ids, ax_buf *labels, ax_buf *lens, ax_diag *d) {
    ax_buf text = {0}, all = {0}, lab = {0}, t = {0};
    ax_buf_append(&text, prompt->data, prompt->len);
    ax_buf_append(&text, comp->data, comp->len);
    size_t el = strlen(eos); /* TRL's add_eos: when the completion does not end with eos_token already */
    if (comp->len < el || memcmp(comp->data + comp->len - el, eos, el)) ax_buf_append(&text, eos, el);
    int rc = rt_tok_encode(p->tok, text.len ? (const char *)text.data : "", text.len, 1, &all, where, d);
    ax_buf_free(&text);
    if (rc) {
        ax_buf_free(&all);
        return -1;
    }
    size_t np = pids->len, na = all.len;
    ax_buf_append(&t, pids->data, np);
    if (na > np) ax_buf_append(&t, all.data + np, na - np);
    for (size_t i = 0; i < t.len / sizeof(int32_t); i++) {
        int32_t v = i < np / sizeof(int32_t) ? RT_IGNORE_INDEX : ((const int32_t *)t.data)[i];
        ax_buf_append(&lab, &v, sizeof v);
    }
    if (!t.len) { /* the loader would drop an empty sample and shift every later pair */
        ax_error(d, where, "rl: dpo: a prompt and completion that encode to no token");
        rc = -1;
    } else {
        push_sample(&t, 0, ids, labels, &lab, lens);
    }
    ax_buf_free(&all), ax_buf_free(&t), ax_buf_free(&lab);
    return rc;
}

/* rl: simpo: TRL's CPOTrainer.tokenize_row (trl.experimental.cpo, TRL 1.9) on the pair's texts, chosen then
 * rejected: the prompt alone and prompt + completion tokenized without specials; the completion is what follows
 * the prompt's ids in the joint encoding (one token earlier when the tokenizer merged across the boundary); the
 * two prompts may differ in their last token only (TRL raises otherwise); the bos is put before each prompt that
 * does not start with it (when the tokenizer has one), the eos after each completion that does not end with it;
 * when a prompt + the longer completion exceed max_length (sequence_len), each completion is cut to its first
 * max_length - longer tokens (Python's slice, so a negative count cuts from the end), as TRL cuts it. Labels
 * -100 on the prompt. */
static int cpo_pair(rt_prompter *p, const ax_buf *pr, const ax_buf *ch, const ax_buf *rj, const char *where, ax_buf *ids,
                    ax_buf *labels, ax_buf *lens, ax_diag *d) {
    ax_buf pids = {0}, full[2] = {{0}}, text = {0};
    int rc = rt_tok_encode(p->tok, (const char *)pr->data, pr->len, 0, &pids, where, d);
    const int32_t *pi = (const int32_t *)pids.data;
    const int64_t np = (int64_t)(pids.len / sizeof(int32_t));
    int64_t start[2] = {0, 0}, alen[2] = {0, 0};
    for (int h = 0; h < 2 && !rc; h++) {
        const ax_buf *c = h ? rj : ch;
        text.len = 0;
        ax_buf_append(&text, pr->data, pr->len);
        ax_buf_append(&text, c->data, c->len);
        rc = rt_tok_encode(p->tok, (const char *)text.data, text.len, 0, &full[h], where, d);
        const int64_t nf = (int64_t)(full[h].len / sizeof(int32_t));
        if (!rc && nf < np) { /* TRL's build_tokenized_answer raises */
            ax_error(d, where, "rl: %s: prompt + %s encodes to %lld tokens, fewer than the prompt alone (%lld): TRL's "
                     "tokenize_row raises (\"Prompt input ids and answer input ids should have the same length\")",
                     "simpo/orpo", h ? "rejected" : "chosen", (long long)nf, (long long)np);
            rc = -1;
        }
        start[h] = np;
        if (nf < np || (np && memcmp(full[h].data, pi, sizeof(int32_t) * (size_t)np))) start[h] = np - 1;
        if (start[h] < 0) start[h] = 0;
        if (start[h] > nf) start[h] = nf;
        alen[h] = nf - start[h];
    }
    if (!rc) {
        const int32_t *a = (const int32_t *)full[0].data, *b = (const int32_t *)full[1].data;
        int64_t ndiff = 0, nmin = start[0] < start[1] ? start[0] : start[1];
        for (int64_t i = 0; i < nmin; i++) ndiff += a[i] != b[i];
        if (ndiff > 1 || llabs(start[0] - start[1]) > 1) {
            ax_error(d, where, "rl: simpo: the chosen and the rejected prompt tokenize differently (TRL's CPOTrainer "
                     "raises: they may differ on the last token only, by a tokenizer merge)");
            rc = -1;
        }
    }
    /* the two samples: [bos] prompt, completion [eos], then TRL's cut */
    int32_t *seq[2] = {NULL, NULL};
    int64_t plen[2] = {0, 0}, clen[2] = {0, 0};
    for (int h = 0; h < 2 && !rc; h++) {
        const int32_t *f = (const int32_t *)full[h].data;
        seq[h] = malloc(sizeof(int32_t) * (size_t)(start[h] + alen[h] + 2));
        if (!seq[h]) abort();
        int64_t n = 0;
        if (p->bos_id >= 0 && (start[h] == 0 || f[0] != p->bos_id)) seq[h][n++] = p->bos_id;
        for (int64_t i = 0; i < start[h]; i++) seq[h][n++] = f[i];
        plen[h] = n;
        for (int64_t i = 0; i < alen[h]; i++) seq[h][n++] = f[start[h] + i];
        if (alen[h] == 0 || f[start[h] + alen[h] - 1] != p->eos_id) seq[h][n++] = p->eos_id;
        clen[h] = n - plen[h];
    }
    if (!rc) {
        const int64_t longer = clen[0] > clen[1] ? clen[0] : clen[1];
        for (int h = 0; h < 2; h++) {
            if (plen[h] + longer > p->seq_len) {
                int64_t k = p->seq_len - longer; /* answer[:k] */
                k = k >= 0 ? (k < clen[h] ? k : clen[h]) : (clen[h] + k > 0 ? clen[h] + k : 0);
                clen[h] = k;
            }
            ax_buf t = {0}, l = {0};
            ax_buf_append(&t, seq[h], sizeof(int32_t) * (size_t)(plen[h] + clen[h]));
            for (int64_t i = 0; i < plen[h] + clen[h]; i++) {
                int32_t v = i < plen[h] ? RT_IGNORE_INDEX : seq[h][i];
                ax_buf_append(&l, &v, sizeof v);
            }
            push_sample(&t, 0, ids, labels, &l, lens);
            ax_buf_free(&t), ax_buf_free(&l);
        }
    }
    free(seq[0]), free(seq[1]);
    ax_buf_free(&pids), ax_buf_free(&full[0]), ax_buf_free(&full[1]), ax_buf_free(&text);
    return rc;
}

static int dpo_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                   ax_buf *labels, ax_buf *lens, ax_diag *d) {
    if (p->eos_id < 0) {
        ax_error(d, where, "rl: dpo: the tokenizer has no eos_token, which TRL appends to each completion");
        return -1;
    }
    size_t el;
    const char *eos = rt_tok_str(p->tok, p->eos_id, &el);
    ax_buf pr = {0}, ch = {0}, rj = {0}, pids = {0};
    int rc = dpo_texts(p, s, row, where, &pr, &ch, &rj, d);
    if (!rc && (!pr.len || !ch.len || !rj.len)) { /* Axolotl's _drop_long_sequences raises first */
        ax_error(d, where, "rl: dpo: the pair's %s is empty (Axolotl: \"Prompt, chosen and rejected keys are required\")",
                 !pr.len ? "prompt" : !ch.len ? "chosen" : "rejected");
        rc = -1;
    }
    char *eosz = rc ? NULL : strndup(eos, el);
    if (!rc) {
        /* Axolotl's _drop_long_sequences: each text's tokens without specials, before TRL adds the eos */
        int64_t lp = count_tokens(p, &pr, where, d), lc = lp < 0 ? -1 : count_tokens(p, &ch, where, d),
                lr = lc < 0 ? -1 : count_tokens(p, &rj, where, d);
        if (lr < 0) {
            rc = -1;
        } else if (lp + lc > p->seq_len || lp + lr > p->seq_len) { /* dropped: two empty samples (the loader counts
                                                                       * them as empty; a kept sample never is) */
            int64_t z = 0;
            ax_buf_append(lens, &z, sizeof z), ax_buf_append(lens, &z, sizeof z);
        } else if (s->dpo_cpo) {
            rc = cpo_pair(p, &pr, &ch, &rj, where, ids, labels, lens, d);
        } else if (!(rc = rt_tok_encode(p->tok, pr.len ? (const char *)pr.data : "", pr.len, 1, &pids, where, d))) {
            rc = dpo_sample(p, &pids, &pr, &ch, eosz, where, ids, labels, lens, d);
            if (!rc) rc = dpo_sample(p, &pids, &pr, &rj, eosz, where, ids, labels, lens, d);
        }
    }
    free(eosz);
    ax_buf_free(&pr), ax_buf_free(&ch), ax_buf_free(&rj), ax_buf_free(&pids);
    return rc;
}

/* ---- input_output (template-free) ---------------------------------------------- */

static int io_row(rt_prompter *p, const json_t *row, const char *where, ax_buf *ids, ax_buf *labels, ax_buf *lens,
                  ax_diag *d) {
    const json_t *segs = json_object_get(row, "segments");
    if (!json_is_array(segs)) {
        ax_error(d, where, "\"segments\": expected a list of {\"label\": true|false, \"text\": \"...\"}");
        return -1;
    }
    ax_buf t = {0}, l = {0};
    int rc = 0;
    for (size_t i = 0; i < json_array_size(segs) && !rc; i++) {
        const json_t *sg = json_array_get(segs, i), *lab = json_object_get(sg, "label"), *txt = json_object_get(sg, "text");
        if (!json_is_boolean(lab) || !json_is_string(txt)) {
            ax_error(d, where, "segments[%zu]: expected {\"label\": true|false, \"text\": \"...\"}", i);
            rc = -1;
            break;
        }
        size_t at = t.len;
        rc = rt_tok_encode(p->tok, json_string_value(txt), json_string_length(txt), 0, &t, where, d);
        const int32_t *ti = (const int32_t *)(t.data + at);
        int32_t ign = RT_IGNORE_INDEX;
        for (size_t k = 0; !rc && k < (t.len - at) / sizeof(int32_t); k++)
            ax_buf_append(&l, json_is_true(lab) || p->setup->train_on_inputs ? &ti[k] : &ign, sizeof(int32_t));
    }
    if (!rc) push_sample(&t, 0, ids, labels, &l, lens);
    ax_buf_free(&t);
    ax_buf_free(&l);
    return rc;
}

/* ---- chat templates ----------------------------------------------------------------- */


int rt_tpl_needs_bos(rt_tpl t) { return t == RT_TPL_LLAMA3 || t == RT_TPL_GEMMA || t == RT_TPL_PHI3 || t == RT_TPL_GEMMA3; }

/* Jinja's `| trim`: Python's str.strip() of whitespace (Unicode's too) */
static void trimmed(const char *c, const char **start, int *len) {
    size_t a = 0, b = strlen(c);
    jinja_strip_space(c, &a, &b, 1, 1);
    *start = c + a;
    *len = (int)(b - a);
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && !memcmp(s + a - b, p, b);
}

/* qwen3's assistant turn: an explicit reasoning_content, or the text of a
 * <think>...</think> in the content taken out of it (the template's own
 * string splitting, on every assistant turn); the thinking block only on
 * turns after the last user query (`after`) that are the conversation's
 * real last or have reasoning. */
static void qwen3_assistant(const char *content, const char *reasoning, int after, int real_last, ax_buf *out) {
    ax_buf r = {0};
    const char *body = content;
    if (reasoning) {
        ax_buf_puts(&r, reasoning);
    } else if (strstr(content, "</think>")) {
        const char *first = strstr(content, "</think>"), *last = first;
        for (const char *q = first; (q = strstr(q + 1, "</think>"));) last = q;
        size_t a = 0, b = (size_t)(first - content); /* split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
        while (b > a && content[b - 1] == '\n') b--;
        for (size_t k = a; k + 7 <= b; k++)
            if (!memcmp(content + k, "<think>", 7)) a = k + 7;
        while (a < b && content[a] == '\n') a++;
        ax_buf_append(&r, content + a, b - a);
        body = last + 8; /* split('</think>')[-1].lstrip('\n') */
        while (*body == '\n') body++;
    }
    ax_buf_puts(&r, "");
    if (after && (real_last || r.len)) {
        const char *rs = r.data;
        size_t rl = r.len;
        while (rl && *rs == '\n') rs++, rl--;
        while (rl && rs[rl - 1] == '\n') rl--;
        while (*body == '\n') body++;
        ax_buf_printf(out, "<|im_start|>assistant\n<think>\n%.*s\n</think>\n\n%s<|im_end|>\n", (int)rl, rs, body);
    } else {
        ax_buf_printf(out, "<|im_start|>assistant\n%s<|im_end|>\n", body);
    }
    ax_buf_free(&r);
}

int rt_chat_render(rt_tpl tpl, const char *const *roles, const char *const *contents, const char *const *reasoning,
                   int n, int real_last, const char *bos, ax_buf *out, const char **err) {
    const char *c;
    int len;
    *err = NULL;
    if (real_last < 0) real_last = n - 1;
    switch (tpl) {
    case RT_TPL_QWEN3: {
        if (n > 0 && !strcmp(roles[0], "system")) ax_buf_printf(out, "<|im_start|>system\n%s<|im_end|>\n", contents[0]);
        int last_query = n - 1;
        for (int i = n - 1; i >= 0; i--)
            if (!strcmp(roles[i], "user") && !(starts(contents[i], "<tool_response>") && ends(contents[i], "</tool_response>"))) {
                last_query = i;
                break;
            }
        for (int i = 0; i < n; i++) {
            if (!strcmp(roles[i], "user") || (!strcmp(roles[i], "system") && i > 0))
                ax_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", roles[i], contents[i]);
            else if (!strcmp(roles[i], "assistant"))
                qwen3_assistant(contents[i], reasoning ? reasoning[i] : NULL, i > last_query, i == real_last, out);
        }
        return 0;
    }
    case RT_TPL_QWEN25: {
        int first_sys = n > 0 && !strcmp(roles[0], "system");
        if (first_sys)
            ax_buf_printf(out, "<|im_start|>system\n%s<|im_end|>\n", contents[0]);
        else
            ax_buf_puts(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                             "assistant.<|im_end|>\n");
        for (int i = first_sys; i < n; i++) ax_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", roles[i], contents[i]);
        return 0;
    }
    case RT_TPL_CHATML:
        for (int i = 0; i < n; i++) ax_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", roles[i], contents[i]);
        return 0;
    case RT_TPL_LLAMA3: /* the content trimmed, BOS before the first message */
        for (int i = 0; i < n; i++) {
            trimmed(contents[i], &c, &len);
            if (i == 0 && bos) ax_buf_puts(out, bos);
            ax_buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n%.*s<|eot_id|>", roles[i], len, c);
        }
        return 0;
    case RT_TPL_GEMMA: /* BOS; user/model turns strictly alternating, no system */
        if (bos) ax_buf_puts(out, bos);
        if (n > 0 && !strcmp(roles[0], "system")) {
            *err = "gemma: System role not supported";
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (!strcmp(roles[i], "user") != (i % 2 == 0)) {
                *err = "gemma: Conversation roles must alternate user/assistant/user/assistant/...";
                return -1;
            }
            trimmed(contents[i], &c, &len);
            ax_buf_printf(out, "<start_of_turn>%s\n%.*s<end_of_turn>\n", !strcmp(roles[i], "assistant") ? "model" : roles[i],
                          len, c);
        }
        return 0;
    case RT_TPL_GEMMA3: { /* gemma's turns; a leading system message opens the first turn, followed by a blank line */
        if (bos) ax_buf_puts(out, bos);
        const int sys = n > 0 && !strcmp(roles[0], "system");
        for (int i = sys; i < n; i++) {
            if (!strcmp(roles[i], "user") != ((i - sys) % 2 == 0)) {
                *err = "gemma3: Conversation roles must alternate user/assistant/user/assistant/...";
                return -1;
            }
            trimmed(contents[i], &c, &len);
            ax_buf_printf(out, "<start_of_turn>%s\n", !strcmp(roles[i], "assistant") ? "model" : roles[i]);
            if (sys && i == 1) ax_buf_printf(out, "%s\n\n", contents[0]);
            ax_buf_printf(out, "%.*s<end_of_turn>\n", len, c);
        }
        return 0;
    }
    case RT_TPL_PHI3: /* BOS; a user turn opens the assistant's; other roles render nothing */
        if (bos) ax_buf_puts(out, bos);
        for (int i = 0; i < n; i++) {
            if (!strcmp(roles[i], "system")) ax_buf_printf(out, "<|system|>\n%s<|end|>\n", contents[i]);
            else if (!strcmp(roles[i], "user")) ax_buf_printf(out, "<|user|>\n%s<|end|>\n<|assistant|>\n", contents[i]);
            else if (!strcmp(roles[i], "assistant")) ax_buf_printf(out, "%s<|end|>\n", contents[i]);
        }
        return 0;
    }
    return 0;
}

const char *rt_tpl_jinja(rt_tpl t) {
    switch (t) {
    case RT_TPL_CHATML:
        return "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";
    case RT_TPL_LLAMA3:
        return "{%- for message in messages %}{%- if loop.first %}{{ bos_token }}{%- endif %}{{ '<|start_header_id|>' + "
               "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
               "{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
    case RT_TPL_QWEN25:
        return "{%- if messages and messages[0]['role'] == 'system' %}{{ '<|im_start|>system\\n' + messages[0]['content'] + "
               "'<|im_end|>\\n' }}{%- else %}{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
               "helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if not (loop.first and "
               "message['role'] == 'system') %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{%- endif %}";
    case RT_TPL_GEMMA:
        return "{{ bos_token }}{%- if messages and messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
               "supported') }}{%- endif %}{%- for message in messages %}{%- if (message['role'] == 'user') != "
               "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
               "user/assistant/user/assistant/...') }}{%- endif %}{%- set role = 'model' if message['role'] == "
               "'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
               "'<end_of_turn>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{%- endif %}";
    case RT_TPL_GEMMA3:
        return "{{ bos_token }}{%- set ns = namespace(prefix='', skip=0) %}"
               "{%- if messages and messages[0]['role'] == 'system' %}{%- set ns.prefix = messages[0]['content'] + "
               "'\n\n' %}{%- set ns.skip = 1 %}{%- endif %}"
               "{%- for message in messages[ns.skip:] %}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
               "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}"
               "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
               "{{ '<start_of_turn>' + role + '\n' + (ns.prefix if loop.first else '') + message['content'] | trim + "
               "'<end_of_turn>\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{%- endif %}";
    case RT_TPL_PHI3:
        return "{{ bos_token }}{%- for message in messages %}{%- if message['role'] == 'system' %}{{ '<|system|>\\n' + "
               "message['content'] + '<|end|>\\n' }}{%- elif message['role'] == 'user' %}{{ '<|user|>\\n' + "
               "message['content'] + '<|end|>\\n<|assistant|>\\n' }}{%- elif message['role'] == 'assistant' %}{{ "
               "message['content'] + '<|end|>\\n' }}{%- endif %}{%- endfor %}";
    case RT_TPL_QWEN3:
        return "{%- if messages and messages[0]['role'] == 'system' %}{{ '<|im_start|>system\\n' + messages[0]['content'] + "
               "'<|im_end|>\\n' }}{%- endif %}"
               "{%- set ns = namespace(last_query=messages | length - 1, found=false) %}"
               "{%- for message in messages[::-1] %}{%- if not ns.found and message['role'] == 'user' and not "
               "(message['content'].startswith('<tool_response>') and message['content'].endswith('</tool_response>')) %}"
               "{%- set ns.found = true %}{%- set ns.last_query = messages | length - 1 - loop.index0 %}{%- endif %}"
               "{%- endfor %}"
               "{%- for message in messages %}"
               "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}"
               "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
               "{%- elif message['role'] == 'assistant' %}"
               "{%- set content = message['content'] %}{%- set reasoning = '' %}"
               "{%- if message['reasoning_content'] is string %}{%- set reasoning = message['reasoning_content'] %}"
               "{%- elif '</think>' in content %}"
               "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
               "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
               "{%- if loop.index0 > ns.last_query and (loop.last or reasoning) %}"
               "{{ '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') + "
               "'<|im_end|>\\n' }}"
               "{%- else %}{{ '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}"
               "{%- endif %}{%- endfor %}"
               "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n\\n' }}{%- endif %}";
    }
    return NULL;
}

/* add_generation_prompt's text (phi_3 has none: its user turn ends with it) */
static void gen_prompt(rt_tpl tpl, ax_buf *out) {
    static const char *const g[RT_TPL_COUNT] = {"<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n",
                                                "<|im_start|>assistant\n", "<start_of_turn>model\n", "",
                                                "<|im_start|>assistant\n<think>\n\n", "<start_of_turn>model\n"};
    ax_buf_puts(out, g[tpl]);
}

typedef struct {
    const char **role, **content, **reasoning; /* reasoning: what a built-in template renders (qwen3's), else NULL */
    const char **think;          /* the message's reasoning_content (any template), or NULL when it has none */
    const json_t **detail, **rdetail; /* its training_detail / reasoning_training_detail, or NULL for None */
    int *train;    /* -1 unset, 0/1 the message's own flag */
    json_t **msg;  /* Jinja templates: each message as the template sees it */
    json_t *tools; /* Jinja templates: row["tools"], or NULL */
    int n;
} convo;

/* find_turn's placeholder: message i rendered as {role, content} alone, with
 * reasoning_content too when reasoning is not NULL (Axolotl's
 * _build_dummy_turn). */
typedef struct {
    int i;
    const char *content, *reasoning;
} dummy_msg;

/* transformers' _alias_reasoning_fields on one message: the first non-null of
 * reasoning_content / thinking / reasoning, also as "thinking" (first) and
 * "reasoning_content" (last). Takes o, returns the message to use. */
static json_t *alias_reasoning(json_t *o) {
    const char *const aliases[3] = {"reasoning_content", "thinking", "reasoning"};
    json_t *r = NULL;
    for (int i = 0; i < 3 && !r; i++) {
        json_t *x = json_object_get(o, aliases[i]);
        if (x && !json_is_null(x)) r = x;
    }
    if (!r) return o;
    json_t *a = json_object();
    json_object_set(a, "thinking", r);
    json_object_update(a, o);
    json_object_set(a, "thinking", r);
    json_object_set(a, "reasoning_content", r);
    json_decref(o);
    return a;
}

/* A Jinja template's render of messages[0..n) (message dm->i replaced by the
 * placeholder dm), with the variables transformers' apply_chat_template
 * passes; real_last_index only where Axolotl passes it (the token-diff
 * fallback, and only when it is not 0). */
static int jinja_text(rt_prompter *p, const rt_ds_spec *s, const convo *c, int n, const dummy_msg *dm, int real_last,
                      int gen, ax_buf *text, const char *where, ax_diag *d) {
    jinja_err err;
    if (!p->jinja || (p->jinja_src != s->jinja && strcmp(p->jinja_src, s->jinja))) {
        jinja_free(p->jinja);
        p->jinja_src = s->jinja;
        p->jinja = jinja_parse(s->jinja, strlen(s->jinja), &err);
        if (!p->jinja) {
            ax_error(d, where, "the chat template (line %d): %s", err.line, err.msg);
            return -1;
        }
    }
    const rt_tok_setup *t = p->setup;
    json_t *vars = json_object();
    const char *const tok_names[7] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    const char *const toks[7] = {t->bos, t->eos, t->unk, t->sep, t->pad, t->cls, t->mask};
    for (int i = 0; i < 7; i++)
        if (toks[i]) json_object_set_new(vars, tok_names[i], json_string(toks[i]));
    if (s->tpl_kwargs) {
        json_t *kw = json_loads(s->tpl_kwargs, 0, NULL);
        if (kw) json_object_update(vars, kw);
        json_decref(kw);
    }
    json_t *msgs = json_array();
    for (int i = 0; i < n; i++) {
        if (!dm || i != dm->i) {
            json_array_append(msgs, c->msg[i]);
            continue;
        }
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string(c->role[i]));
        json_object_set_new(m, "content", json_string(dm->content));
        if (dm->reasoning) json_object_set_new(m, s->thinking_key, json_string(dm->reasoning));
        json_array_append_new(msgs, alias_reasoning(m));
    }
    json_object_set_new(vars, "messages", msgs);
    json_object_set(vars, "tools", c->tools ? c->tools : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(gen));
    if (real_last > 0) json_object_set_new(vars, "real_last_index", json_integer(real_last));
    int rc = jinja_render(p->jinja, vars, text, &err);
    json_decref(vars);
    if (rc) {
        if (err.raised) ax_error(d, where, "the chat template refused the conversation: %s (template line %d)", err.msg, err.line);
        else ax_error(d, where, "the chat template failed at its line %d: %s", err.line, err.msg);
    }
    return rc;
}

/* Whether a built-in template renders the reasoning under the message's
 * thinking key: qwen3's reads reasoning_content, which transformers also
 * fills from "thinking" or "reasoning". */
static int builtin_reads_reasoning(const rt_ds_spec *s) {
    const char *k = s->thinking_key;
    return s->tpl == RT_TPL_QWEN3 && (!strcmp(k, "reasoning_content") || !strcmp(k, "thinking") || !strcmp(k, "reasoning"));
}

/* messages[0..n) rendered; with dm, message dm->i replaced by that
 * placeholder (find_turn's); real_last as rt_chat_render's; gen:
 * add_generation_prompt. */
static int render_text(rt_prompter *p, const rt_ds_spec *s, const convo *c, int n, const dummy_msg *dm, int real_last,
                       int gen, ax_buf *text, const char *where, ax_diag *d) {
    text->len = 0;
    if (s->jinja) {
        if (jinja_text(p, s, c, n, dm, real_last, gen, text, where, d)) return -1;
        ax_buf_puts(text, "");
        return 0;
    }
    const int repl = dm ? dm->i : -1;
    const char *saved = repl >= 0 ? c->content[repl] : NULL, *saved_r = repl >= 0 ? c->reasoning[repl] : NULL;
    if (repl >= 0) c->content[repl] = dm->content, c->reasoning[repl] = builtin_reads_reasoning(s) ? dm->reasoning : NULL;
    const char *err;
    text->len = 0;
    int bad = rt_chat_render(s->tpl, c->role, c->content, c->reasoning, n, real_last, p->setup->bos, text, &err);
    if (repl >= 0) c->content[repl] = saved, c->reasoning[repl] = saved_r;
    if (bad) {
        ax_error(d, where, "%s", err);
        return -1;
    }
    if (gen) gen_prompt(s->tpl, text);
    ax_buf_puts(text, ""); /* data set and NUL-terminated (puts counts no NUL) */
    return 0;
}

static int render_tok(rt_prompter *p, const rt_ds_spec *s, const convo *c, int n, const dummy_msg *dm, int real_last,
                      int gen, ax_buf *out, const char *where, ax_diag *d) {
    ax_buf text = {0};
    int rc = render_text(p, s, c, n, dm, real_last, gen, &text, where, d);
    out->len = 0;
    if (!rc) rc = rt_tok_encode(p->tok, text.data, text.len, 0, out, where, d);
    ax_buf_free(&text);
    return rc;
}

/* What find_turn locates: the whole turn, its content alone (the reasoning
 * kept in the placeholder), or its reasoning alone. */
typedef enum { TURN_WHOLE, TURN_CONTENT, TURN_REASONING } turn_part;

static const char *const sentinels[2] = {"[[dummy_message]]", "zzdummymessagezz"};

static dummy_msg make_dummy(const convo *c, int i, turn_part part, const char *sentinel) {
    if (part == TURN_REASONING) return (dummy_msg){i, c->content[i], c->think[i] ? sentinel : NULL};
    return (dummy_msg){i, sentinel, part == TURN_CONTENT ? c->think[i] : NULL};
}

/* The token-diff way to find turn i (Axolotl's fallback): the ids of
 * turns[..i] with the real content and with a placeholder, compared from
 * both ends. */
static int find_turn_tokens(rt_prompter *p, const rt_ds_spec *s, const convo *c, int i, turn_part part, int64_t *start,
                            int64_t *end, const char *where, ax_diag *d) {
    ax_buf dummy = {0}, full = {0};
    *start = *end = -1;
    const dummy_msg dm = make_dummy(c, i, part, sentinels[0]);
    int rc = render_tok(p, s, c, i + 1, &dm, c->n - 1, 0, &dummy, where, d);
    if (!rc) rc = render_tok(p, s, c, i + 1, NULL, c->n - 1, 0, &full, where, d);
    if (!rc) {
        const int32_t *a = (const int32_t *)dummy.data, *b = (const int32_t *)full.data;
        int64_t na = (int64_t)(dummy.len / 4), nb = (int64_t)(full.len / 4), m = na < nb ? na : nb;
        int64_t st = -1, en = -1;
        for (int64_t k = 0; k < m; k++)
            if (a[k] != b[k]) {
                st = k;
                break;
            }
        for (int64_t k = 0; st >= 0 && k < m; k++)
            if (a[na - 1 - k] != b[nb - 1 - k]) {
                en = nb - k;
                break;
            }
        if (st >= 0 && en > st) *start = st, *end = en;
    }
    ax_buf_free(&dummy);
    ax_buf_free(&full);
    return rc;
}

/* Where each token of the rendered conversation lies in its text (byte
 * offsets), when the tokens spell the text back exactly (byte-level BPE
 * without a normalizer that changed it); else ntok = -1 and turns are
 * found by token diff. */
typedef struct {
    const char *text;
    size_t len;
    int64_t *starts, *ends, ntok;
} locator;

static void locator_build(const rt_tokenizer *t, const char *text, size_t len, const int32_t *ids, int64_t n,
                          locator *L) {
    L->text = text;
    L->len = len;
    L->ntok = -1;
    L->starts = malloc(sizeof(int64_t) * (size_t)(n + 1));
    L->ends = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!L->starts || !L->ends) abort();
    ax_buf b = {0};
    for (int64_t k = 0; k < n; k++) {
        L->starts[k] = (int64_t)b.len;
        rt_tok_piece(t, ids[k], &b);
        L->ends[k] = (int64_t)b.len;
    }
    if (b.len == len && (!len || !memcmp(b.data, text, len))) L->ntok = n;
    ax_buf_free(&b);
}

static size_t u8_back(const char *s, size_t i) { /* the start of the char before byte i */
    do i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

/* The char span of full that differs from dummy (Python's str semantics:
 * the common prefix, then a common suffix no longer than what is left of
 * the shorter string, counted in chars), as byte offsets into full. */
static void diff_span(const char *f, size_t nf, const char *dm, size_t nd, size_t *st, size_t *en) {
    size_t a = 0, lim = nf < nd ? nf : nd;
    while (a < lim && f[a] == dm[a]) a++;
    while (a > 0 && a < nf && ((unsigned char)f[a] & 0xC0) == 0x80) a--; /* back to the differing char's start */
    size_t cf = 0, cd = 0, ca = 0;
    for (size_t k = 0; k < nf; k++) cf += ((unsigned char)f[k] & 0xC0) != 0x80, ca += k < a && ((unsigned char)f[k] & 0xC0) != 0x80;
    for (size_t k = 0; k < nd; k++) cd += ((unsigned char)dm[k] & 0xC0) != 0x80;
    size_t room = (cf < cd ? cf : cd) - ca, i = nf, j = nd;
    while (room > 0 && i > a && j > 0) { /* one char at a time from both ends */
        size_t pi = u8_back(f, i), pj = u8_back(dm, j);
        if (i - pi != j - pj || memcmp(f + pi, dm + pj, i - pi)) break;
        i = pi, j = pj, room--;
    }
    *st = a;
    *en = i;
}

/* Axolotl's find_turn in char space: the whole conversation rendered with
 * turn i replaced by each of two placeholders whose first and last chars
 * differ, the union of the differing spans, mapped to tokens. 1 when
 * decided (start/end -1: nothing of the turn in the render), 0 to fall
 * back to the token diff, -1 on error. */
static int find_turn_text(rt_prompter *p, const rt_ds_spec *s, const convo *c, int i, turn_part part, const locator *L,
                          int64_t *start, int64_t *end, const char *where, ax_diag *d) {
    size_t cs = (size_t)-1, ce = 0;
    ax_buf dm = {0};
    for (int k = 0; k < 2; k++) {
        const dummy_msg dmk = make_dummy(c, i, part, sentinels[k]);
        if (render_text(p, s, c, c->n, &dmk, -1, 0, &dm, where, d)) {
            ax_buf_free(&dm);
            return -1;
        }
        size_t a, b;
        diff_span(L->text, L->len, dm.data, dm.len, &a, &b);
        if (a < cs) cs = a;
        if (b > ce) ce = b;
    }
    ax_buf_free(&dm);
    *start = *end = -1;
    if (ce <= cs) return 1;
    int64_t si = 0, ei = 0; /* bisect_right(ends, cs), bisect_left(starts, ce) */
    while (si < L->ntok && L->ends[si] <= (int64_t)cs) si++;
    while (ei < L->ntok && L->starts[ei] < (int64_t)ce) ei++;
    if (si >= L->ntok) return 0;
    *start = si;
    *end = ei;
    return 1;
}

static int find_turn(rt_prompter *p, const rt_ds_spec *s, const convo *c, int i, turn_part part, const locator *L,
                     int64_t *start, int64_t *end, const char *where, ax_diag *d) {
    if (i == 0 && p->setup->mistral_name && !strcmp(c->role[0], "system")) { /* Axolotl's rule for Mistral tokenizers */
        *start = *end = -1;
        return 0;
    }
    if (L->ntok >= 0) {
        int r = find_turn_text(p, s, c, i, part, L, start, end, where, d);
        if (r) return r < 0 ? -1 : 0;
    }
    return find_turn_tokens(p, s, c, i, part, start, end, where, d);
}

/* The first id of set in ids[from..n); Python's range(from, n) with from = -1 (a turn not located) looks at the
 * last id first, and finding it there means "not found" to its caller. */
static int64_t find_first(const int32_t *ids, int64_t n, int64_t from, const int32_t *set, int nset) {
    for (int k = 0; from < 0 && n > 0 && k < nset; k++)
        if (ids[n - 1] == set[k]) return -1;
    for (int64_t i = from < 0 ? 0 : from; i < n; i++)
        for (int k = 0; k < nset; k++)
            if (ids[i] == set[k]) return i;
    return -1;
}

static const char *map_role(const rt_ds_spec *s, const char *r) {
    static const char *const from[] = {"human", "user", "assistant", "gpt", "system", "tool"};
    static const char *const to[] = {"user", "user", "assistant", "assistant", "system", "tool"};
    if (s->nrole_map) {
        for (int i = 0; i < s->nrole_map; i++)
            if (!strcmp(s->role_from[i], r)) return s->role_to[i];
        return r;
    }
    for (int i = 0; i < 6; i++)
        if (!strcmp(from[i], r)) return to[i];
    return r;
}

/* A message field that message_property_mappings maps (role, content, others). */
static int is_mapped_source(const rt_ds_spec *s, const char *k) {
    if (!strcmp(k, s->role_key) || !strcmp(k, s->content_key)) return 1;
    for (int i = 0; i < s->nprop; i++)
        if (!strcmp(k, s->prop_from[i])) return 1;
    return 0;
}

/* A message as Axolotl 0.19 hands it to a Jinja template: role (mapped) and
 * content (content parts joined), reasoning_content (likewise), the
 * message's other non-null fields, its training flag as "training" and its
 * training details as "training_detail" / "reasoning_training_detail"; tool
 * calls' JSON-string arguments parsed; then transformers' aliasing of
 * reasoning. NULL on bad tool-call arguments. */
static json_t *jinja_message(const rt_ds_spec *s, const json_t *m, const char *role, const json_t *training,
                             const char *content, const char *think, const json_t *detail, const json_t *rdetail) {
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "content", json_string(content));
    for (int i = 0; i < s->nprop; i++) { /* message_property_mappings' other keys */
        const json_t *v = json_object_get(m, s->prop_from[i]);
        if (v && !json_is_null(v)) json_object_set(o, s->prop_to[i], (json_t *)v);
    }
    if (think) json_object_set_new(o, s->thinking_key, json_string(think));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (is_mapped_source(s, k) || json_is_null(v) || json_object_get(o, k)) continue;
        if (!strcmp(k, "tool_calls")) {
            json_t *tc = json_deep_copy(v);
            size_t i;
            json_t *call;
            json_array_foreach(tc, i, call) {
                json_t *fn = json_object_get(call, "function");
                json_t *args = json_object_get(fn, "arguments");
                if (!json_is_string(args)) continue;
                json_t *parsed = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
                if (!parsed) {
                    json_decref(tc);
                    json_decref(o);
                    return NULL;
                }
                json_object_set_new(fn, "arguments", parsed);
            }
            json_object_set_new(o, k, tc);
            continue;
        }
        json_object_set(o, k, v);
    }
    if (training && !json_is_null(training)) json_object_set(o, "training", (json_t *)training);
    if (detail) json_object_set(o, "training_detail", (json_t *)detail);
    if (rdetail) json_object_set(o, "reasoning_training_detail", (json_t *)rdetail);
    return alias_reasoning(o);
}

/* row["tools"] as Axolotl reads it: a list (or a JSON string of one), each
 * function's "parameters" string parsed. (Axolotl 0.19 never passes the
 * dataset's field_tools on: the field is always "tools".) */
static int jinja_tools(const json_t *row, json_t **out, const char *where, ax_diag *d) {
    const json_t *t = json_object_get(row, "tools");
    *out = NULL;
    if (!t || json_is_null(t)) return 0;
    json_t *tools = json_is_string(t) ? json_loads(json_string_value(t), JSON_DECODE_ANY, NULL) : json_deep_copy(t);
    if (!json_is_array(tools)) {
        ax_error(d, where, "\"tools\": expected a list of tool definitions (or a JSON string of one)");
        json_decref(tools);
        return -1;
    }
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        json_t *fn = json_object_get(tool, "function");
        json_t *params = json_object_get(fn, "parameters");
        if (!json_is_string(params)) continue;
        json_t *parsed = json_loads(json_string_value(params), JSON_DECODE_ANY, NULL);
        if (!parsed) {
            ax_error(d, where, "tools[%zu].function.parameters: not valid JSON", i);
            json_decref(tools);
            return -1;
        }
        json_object_set_new(fn, "parameters", parsed);
    }
    *out = tools;
    return 0;
}

/* Python's bool() of a JSON value. */
static int py_truthy(const json_t *v) {
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_real(v)) return json_real_value(v) != 0.0;
    if (json_is_string(v)) return json_string_length(v) > 0;
    if (json_is_array(v)) return json_array_size(v) > 0;
    if (json_is_object(v)) return json_object_size(v) > 0;
    return 1;
}

static int64_t u8_chars(const char *t, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)t[i] & 0xC0) != 0x80;
    return c;
}

/* Axolotl's _convert_content_parts: content given as a list of parts becomes
 * their texts joined (a part's "text", else "content", else "value", the
 * first that is not empty; parts that are not objects add nothing); a part
 * with "train" (or "weight": 0 is false) makes *detail the list of
 * {begin_offset, end_offset (inclusive), train} of every non-empty part, in
 * characters of the joined text; else *detail is NULL. 0, or -1 on a part
 * text that is not a string. */
static int content_parts(const json_t *parts, char **text, json_t **detail, const char *what, const char *where,
                         ax_diag *d) {
    ax_buf b = {0};
    json_t *det = json_array();
    int explicit = 0;
    int64_t off = 0;
    size_t i;
    const json_t *part;
    *text = NULL;
    *detail = NULL;
    json_array_foreach(parts, i, part) {
        if (!json_is_object(part)) continue;
        const json_t *t = NULL;
        const char *const keys[3] = {"text", "content", "value"};
        for (int k = 0; k < 3 && !py_truthy(t); k++) t = json_object_get(part, keys[k]);
        if (!py_truthy(t)) continue;
        if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t)) {
            ax_error(d, where, "%s[%zu]: expected the part's text as a string without NUL characters", what, i);
            ax_buf_free(&b);
            json_decref(det);
            return -1;
        }
        const json_t *tr = json_object_get(part, "train"), *w = json_object_get(part, "weight");
        json_t *train;
        if (tr && !json_is_null(tr)) explicit = 1, train = json_incref((json_t *)tr);
        else if (w && !json_is_null(w))
            explicit = 1, train = json_boolean(!(json_is_false(w) || (json_is_number(w) && json_number_value(w) == 0.0)));
        else train = json_true();
        const int64_t n = u8_chars(json_string_value(t), json_string_length(t));
        json_array_append_new(det, json_pack("{s:I,s:I,s:o}", "begin_offset", (json_int_t)off, "end_offset",
                                             (json_int_t)(off + n - 1), "train", train));
        off += n;
        ax_buf_append(&b, json_string_value(t), json_string_length(t));
    }
    ax_buf_puts(&b, "");
    *text = b.data ? b.data : strdup("");
    if (!*text) abort();
    if (explicit) *detail = det;
    else json_decref(det);
    return 0;
}

/* Where each token of text, tokenized alone without specials, starts, in
 * characters: the starts of the tokenizer's offset mapping as transformers
 * returns it (a token that begins inside a character starts at that
 * character; a space the pipeline put before the text belongs to the first
 * character; a ByteLevel post-processor with trim_offsets skips a token's
 * leading spaces). Known where the tokens spell the text back, with or
 * without that added space; -1 with an error otherwise (a normalizer that
 * rewrote the text). */
static int token_char_starts(rt_prompter *p, const char *text, ax_buf *ids, int64_t **starts, const char *what,
                             const char *where, ax_diag *d) {
    const size_t tl = strlen(text);
    ids->len = 0;
    *starts = NULL;
    if (rt_tok_encode(p->tok, text, tl, 0, ids, where, d)) return -1;
    const int32_t *id = (const int32_t *)ids->data;
    const int64_t n = (int64_t)(ids->len / sizeof(int32_t));
    int64_t *bs = malloc(sizeof(int64_t) * (size_t)(2 * n + 1)), *cnt = malloc(sizeof(int64_t) * (tl + 1));
    if (!bs || !cnt) abort();
    ax_buf pc = {0};
    for (int64_t k = 0; k < n; k++) {
        bs[k] = (int64_t)pc.len;
        rt_tok_piece(p->tok, id[k], &pc);
        bs[n + k] = (int64_t)pc.len;
    }
    int shift = -1;
    if (pc.len == tl && (!tl || !memcmp(pc.data, text, tl))) shift = 0;
    else if (pc.len == tl + 1 && pc.data[0] == ' ' && !memcmp(pc.data + 1, text, tl)) shift = 1;
    if (shift < 0) {
        ax_error(d, where, "%s: the tokenizer's tokens do not spell this text back (its normalizer rewrites it), so "
                           "the character offsets of a training detail cannot be placed on them",
                 what);
        ax_buf_free(&pc);
        free(bs);
        free(cnt);
        return -1;
    }
    cnt[0] = 0; /* cnt[b]: characters that start in text[0..b) */
    for (size_t b = 0; b < tl; b++) cnt[b + 1] = cnt[b] + (((unsigned char)text[b] & 0xC0) != 0x80);
    int aps = 0;
    const int trim = rt_tok_trims_offsets(p->tok, &aps);
    for (int64_t k = 0; k < n; k++) {
        int64_t st = bs[k] - shift, en = bs[n + k] - shift;
        if (st < 0) st = 0;
        if (en < st) en = st;
        if (trim) {
            int64_t lead = 0;
            while (bs[k] + lead < bs[n + k] && pc.data[bs[k] + lead] == ' ') lead++;
            if (lead == 1 && aps && (k == 0 || st == 0)) lead = 0;
            st = st + lead < en ? st + lead : en;
        }
        /* the character that holds byte st */
        bs[k] = st >= (int64_t)tl ? cnt[tl] : cnt[st + 1] - 1;
    }
    ax_buf_free(&pc);
    free(cnt);
    *starts = bs;
    return 0;
}

/* Axolotl's get_offsets_for_train_detail (with adjust_train_details) for a
 * turn whose text (content or reasoning) starts at token `at` of the
 * conversation: text is tokenized alone; token k spans from its start to
 * the next token's start - 1 (the last one to the text's end); each detail's
 * {begin_offset, end_offset} is widened to the tokens it touches; token k
 * is a label when a detail with a true "train" holds all of it, and it
 * labels token at + k of the conversation. */
static int apply_detail(rt_prompter *p, const char *text, const json_t *detail, int64_t at, const int32_t *in, int64_t n,
                        int32_t *L, const char *what, const char *where, ax_diag *d) {
    if (!json_is_array(detail)) {
        ax_error(d, where, "%s: expected a list of {begin_offset, end_offset, train}", what);
        return -1;
    }
    size_t nd = json_array_size(detail), i;
    const json_t *x;
    json_array_foreach(detail, i, x) {
        if (!json_is_object(x) || !json_is_number(json_object_get(x, "begin_offset")) ||
            !json_is_number(json_object_get(x, "end_offset")) || !json_object_get(x, "train")) {
            ax_error(d, where, "%s[%zu]: expected {\"begin_offset\": number, \"end_offset\": number, \"train\": bool}",
                     what, i);
            return -1;
        }
    }
    ax_buf ids = {0};
    int64_t *st;
    if (token_char_starts(p, text, &ids, &st, what, where, d)) {
        ax_buf_free(&ids);
        return -1;
    }
    const int64_t nt = (int64_t)(ids.len / sizeof(int32_t));
    ax_buf_free(&ids);
    if (nt == 0) {
        ax_error(d, where, "%s: the text has no tokens to place a training detail on", what);
        free(st);
        return -1;
    }
    int64_t *en = st + nt; /* ends, inclusive */
    const int64_t nchars = u8_chars(text, strlen(text));
    for (int64_t k = 0; k < nt; k++) en[k] = k + 1 < nt ? st[k + 1] - 1 : nchars - 1;
    double *adj = malloc(sizeof(double) * 2 * (nd + 1));
    int *adj_train = malloc(sizeof(int) * (nd + 1));
    if (!adj || !adj_train) abort();
    size_t na = 0;
    json_array_foreach(detail, i, x) {
        const double b = json_number_value(json_object_get(x, "begin_offset"));
        const double e = json_number_value(json_object_get(x, "end_offset"));
        int64_t bt = nt, et = -1;
        for (int64_t k = 0; k < nt; k++)
            if ((double)st[k] >= b) {
                bt = k;
                break;
            }
        if (bt > 0 && (double)en[bt - 1] > b) bt--;
        for (int64_t k = nt - 1; k >= 0; k--)
            if ((double)en[k] <= e) {
                et = k;
                break;
            }
        if (et < nt - 1 && (double)st[et + 1] < e) et++;
        if (bt > et) continue; /* Axolotl skips it (with a warning) */
        adj[2 * na] = (double)st[bt], adj[2 * na + 1] = (double)en[et];
        adj_train[na++] = py_truthy(json_object_get(x, "train"));
    }
    for (int64_t k = 0; k < nt && at + k < n; k++)
        for (size_t a = 0; a < na; a++)
            if (adj_train[a] && (double)st[k] >= adj[2 * a] && (double)en[k] <= adj[2 * a + 1]) {
                L[at + k] = in[at + k];
                break;
            }
    free(adj);
    free(adj_train);
    free(st);
    return 0;
}

static char *dup_range(const char *s, size_t a, size_t b) {
    char *o = malloc(b > a ? b - a + 1 : 1);
    if (!o) abort();
    if (b > a) memcpy(o, s + a, b - a);
    o[b > a ? b - a : 0] = 0;
    return o;
}

/* Axolotl's split_thinking (transform_message, assistant turns): the first
 * thinking pair whose both tags are in the content gives the reasoning
 * (between the first opening tag and the first closing one, stripped) and
 * the content (what follows that closing tag, left-stripped; or, where it
 * holds both solution tags, the text between them, stripped). 1 with both
 * new strings, 0 when the content holds no pair. */
static int split_thinking(const char *content, char **new_content, char **think) {
    static const char *const pairs[3][2] = {
        {"<think>", "</think>"}, {"<reasoning>", "</reasoning>"}, {"<|begin_of_thought|>", "<|end_of_thought|>"}};
    for (int k = 0; k < 3; k++) {
        const char *o = strstr(content, pairs[k][0]), *e = strstr(content, pairs[k][1]);
        if (!o || !e) continue;
        const size_t n = strlen(content);
        size_t a = (size_t)(o - content) + strlen(pairs[k][0]), b = (size_t)(e - content); /* Python: empty when b < a */
        if (b < a) b = a;
        jinja_strip_space(content, &a, &b, 1, 1);
        *think = dup_range(content, a, b);
        size_t ra = (size_t)(e - content) + strlen(pairs[k][1]), rb = n;
        jinja_strip_space(content, &ra, &rb, 1, 0);
        const char *rem = content + ra, *so = strstr(rem, "<|begin_of_solution|>"), *se = strstr(rem, "<|end_of_solution|>");
        if (so && se) {
            size_t ca = (size_t)(so - content) + strlen("<|begin_of_solution|>"), cb = (size_t)(se - content);
            if (cb < ca) cb = ca;
            jinja_strip_space(content, &ca, &cb, 1, 1);
            *new_content = dup_range(content, ca, cb);
        } else {
            *new_content = dup_range(content, ra, rb);
        }
        return 1;
    }
    return 0;
}

/* Whether Axolotl hands the message key to the template: the keys a
 * template reads (Axolotl's JinjaTemplateAnalyzer; here: the key appears in
 * the Jinja text), and for the built-in renderers those of Axolotl's Jinja
 * texts they stand for (qwen3's reasoning_content). */
static int template_reads(const rt_ds_spec *s, const char *key) {
    if (s->jinja) return strstr(s->jinja, key) != NULL;
    return s->tpl == RT_TPL_QWEN3 && !strcmp(key, "reasoning_content");
}

/* ---- dpo's chat_template.default ------------------------------------------------------ */

/* Axolotl's role_map[...]: the dataset's roles map (target: [sources]), else user, assistant, system and tool as
 * they are; any other role is its KeyError */
static const char *dpo_role(const rt_ds_spec *s, const char *r) {
    static const char *const same[] = {"user", "assistant", "system", "tool"};
    if (s->nrole_map) {
        for (int i = 0; i < s->nrole_map; i++)
            if (!strcmp(s->role_from[i], r)) return s->role_to[i];
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(same[i], r)) return same[i];
    return NULL;
}

/* Python's str.rstrip(): trailing whitespace code points (str.isspace) off a UTF-8 buffer */
static void py_rstrip(ax_buf *b) {
    const unsigned char *t = (const unsigned char *)b->data;
    size_t n = b->len;
    for (;;) {
        if (n && (t[n - 1] == ' ' || (t[n - 1] >= 0x09 && t[n - 1] <= 0x0d) || (t[n - 1] >= 0x1c && t[n - 1] <= 0x1f))) {
            n--;
            continue;
        }
        size_t k = n; /* the last code point */
        while (k && (t[k - 1] & 0xc0) == 0x80) k--;
        if (!k || n - k > 3) break;
        uint32_t c = 0;
        const size_t at = k - 1, len = n - at;
        if (len == 2 && (t[at] & 0xe0) == 0xc0) c = ((uint32_t)(t[at] & 0x1f) << 6) | (t[at + 1] & 0x3f);
        else if (len == 3 && (t[at] & 0xf0) == 0xe0)
            c = ((uint32_t)(t[at] & 0x0f) << 12) | ((uint32_t)(t[at + 1] & 0x3f) << 6) | (t[at + 2] & 0x3f);
        const int space = c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
                          c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
        if (!space) break;
        n = at;
    }
    b->len = n;
    if (b->data) b->data[n] = 0;
}

/* messages rendered as the template renders them (role and content each), with or without the generation prompt */
static int dpo_render(rt_prompter *p, const rt_ds_spec *s, const char **role, const char **content, int n, int gen,
                      ax_buf *out, const char *where, ax_diag *d) {
    const char *none[8] = {0};
    const char **reasoning = n <= 8 ? none : calloc((size_t)n, sizeof *reasoning);
    json_t **msg = calloc((size_t)n + 1, sizeof *msg);
    if (!reasoning || !msg) abort();
    for (int i = 0; i < n; i++) msg[i] = json_pack("{s:s,s:s}", "role", role[i], "content", content[i]);
    convo c = {.role = role, .content = content, .reasoning = reasoning, .msg = msg, .n = n};
    int rc = render_text(p, s, &c, n, NULL, -1, gen, out, where, d);
    for (int i = 0; i < n; i++) json_decref(msg[i]);
    free(msg);
    if (reasoning != none) free((void *)reasoning);
    return rc;
}

/* one of row[field]'s forms: a string (the assistant's content), a message, or a list whose last message counts */
static int dpo_chat_completion(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *field, const char *where,
                               ax_buf *out, ax_diag *d) {
    const json_t *v = json_object_get(row, field), *m = v;
    if (json_is_array(v)) m = json_array_get(v, json_array_size(v) ? json_array_size(v) - 1 : 0);
    const char *role = "assistant", *content = json_string_value(v);
    if (!json_is_string(v)) {
        const json_t *r = json_object_get(m, s->role_key), *t = json_object_get(m, s->content_key);
        if (!json_is_object(m) || !json_is_string(r) || !json_is_string(t)) {
            ax_error(d, where, "\"%s\": expected a string, a message {\"%s\": ..., \"%s\": ...} or a list of them", field,
                     s->role_key, s->content_key);
            return -1;
        }
        role = json_string_value(r), content = json_string_value(t);
    }
    const char *mapped = dpo_role(s, role);
    if (!mapped) {
        ax_error(d, where, "\"%s\": role \"%s\" is not in the dataset's roles (Axolotl's role_map raises KeyError)", field,
                 role);
        return -1;
    }
    const char *roles[2] = {"user", mapped}, *contents[2] = {"[[dummy_message]]", content};
    ax_buf text = {0};
    if (dpo_render(p, s, roles, contents, 2, 0, &text, where, d)) {
        ax_buf_free(&text);
        return -1;
    }
    /* Python: text[text.find(content):].rstrip(), -1 (not found) taking the last character */
    const char *hit = strstr(text.data, content);
    size_t from = hit ? (size_t)(hit - text.data) : text.len;
    if (!hit && text.len) {
        from = text.len - 1;
        while (from && ((unsigned char)text.data[from] & 0xc0) == 0x80) from--;
    }
    ax_buf_append(out, text.data + from, text.len - from);
    ax_buf_puts(out, "");
    py_rstrip(out);
    ax_buf_free(&text);
    return 0;
}

/* text[n:] of Python, n counting code points: the bytes after the first n UTF-8 characters of t */
static size_t utf8_skip(const char *t, size_t len, size_t n) {
    size_t i = 0;
    while (i < len && n > 0) {
        i++;
        while (i < len && ((unsigned char)t[i] & 0xC0) == 0x80) i++;
        n--;
    }
    return i;
}

static size_t utf8_count(const char *t, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)t[i] & 0xC0) != 0x80;
    return n;
}

/* rl: orpo's chat_template.argilla (Axolotl 0.19's prompt_strategies/orpo/chat_template.py): the row's "chosen" and
 * "rejected" conversations, user and assistant turns by turns; the prompt is a system turn (when "system" is
 * truthy), then for each turn pair the user's message ("prompt" for every one of them when the row has it) and,
 * but for the last, the chosen assistant's, rendered with the generation prompt; each completion is the rendering
 * of those messages plus the conversation's last message (as the assistant's) with the prompt's length in
 * characters cut off. */
static int orpo_argilla_texts(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *pr,
                              ax_buf *ch, ax_buf *rj, ax_diag *d) {
    const json_t *cv = json_object_get(row, "chosen"), *rv = json_object_get(row, "rejected");
    if (!json_is_array(cv) || !json_array_size(cv) || !json_is_array(rv) || !json_array_size(rv)) {
        ax_error(d, where, "\"chosen\", \"rejected\": expected conversations, lists of {\"role\", \"content\"} messages "
                 "(rl: orpo's chat_template.argilla)");
        return -1;
    }
    const size_t total = json_array_size(cv), turns = total / 2;
    if (total % 2) {
        ax_error(d, where, "\"chosen\": %zu messages, an odd count (Axolotl's ORPO argilla asserts user and assistant "
                 "turns in pairs: \"invalid number of turns\")", total);
        return -1;
    }
    const json_t *sys = json_object_get(row, "system"), *pv = json_object_get(row, "prompt");
    const char **role = calloc(2 * turns + 3, sizeof *role), **content = calloc(2 * turns + 3, sizeof *content);
    if (!role || !content) abort();
    int n = 0, rc = 0;
    char what[64];
    size_t len;
    if (sys && !json_is_null(sys) && !(json_is_string(sys) && !json_string_length(sys)) && !(json_is_false(sys))) {
        if (!(content[n] = dpo_str(sys, "\"system\"", where, d, &len))) rc = -1;
        role[n++] = "system";
    }
    for (size_t i = 0; i < turns && !rc; i++) {
        if (pv) {
            content[n] = dpo_str(pv, "\"prompt\"", where, d, &len);
        } else {
            snprintf(what, sizeof what, "\"chosen\"[%zu].content", 2 * i);
            content[n] = dpo_str(json_object_get(json_array_get(cv, 2 * i), "content"), what, where, d, &len);
        }
        if (!content[n]) rc = -1;
        role[n++] = "user";
        if (i + 1 < turns && !rc) {
            snprintf(what, sizeof what, "\"chosen\"[%zu].content", 2 * i + 1);
            if (!(content[n] = dpo_str(json_object_get(json_array_get(cv, 2 * i + 1), "content"), what, where, d, &len)))
                rc = -1;
            role[n++] = "assistant";
        }
    }
    if (!rc) rc = dpo_render(p, s, role, content, n, 1, pr, where, d);
    const size_t pchars = rc ? 0 : utf8_count((const char *)pr->data, pr->len);
    for (int h = 0; h < 2 && !rc; h++) {
        const json_t *conv = h ? rv : cv;
        snprintf(what, sizeof what, "\"%s\"[%zu].content", h ? "rejected" : "chosen", json_array_size(conv) - 1);
        if (!(content[n] = dpo_str(json_object_get(json_array_get(conv, json_array_size(conv) - 1), "content"), what, where,
                                   d, &len))) {
            rc = -1;
            break;
        }
        role[n] = "assistant";
        ax_buf full = {0};
        rc = dpo_render(p, s, role, content, n + 1, 0, &full, where, d);
        if (!rc) {
            const size_t at = utf8_skip((const char *)full.data, full.len, pchars);
            ax_buf_append(h ? rj : ch, full.data + at, full.len - at);
        }
        ax_buf_free(&full);
    }
    free(role), free(content);
    return rc;
}

static int dpo_chat_texts(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *pr,
                          ax_buf *ch, ax_buf *rj, ax_diag *d) {
    if (s->dpo_variant == RT_DPOV_ORPO_ARGILLA) return orpo_argilla_texts(p, s, row, where, pr, ch, rj, d);
    /* chat_template.argilla_chat: the prompt is the chosen conversation but its last message, the completions the
     * chosen's and the rejected's last messages */
    const int argilla = s->dpo_variant == RT_DPOV_ARGILLA_CHAT;
    const char *mf = argilla ? s->ud_field_chosen : s->field_messages;
    const json_t *msgs = json_object_get(row, mf);
    if (argilla) {
        const json_t *rv = json_object_get(row, s->ud_field_rejected);
        if (!json_is_array(msgs) || !json_array_size(msgs) || !json_is_array(rv) || !json_array_size(rv)) {
            ax_error(d, where, "\"%s\", \"%s\": expected conversations, lists of messages (chat_template.argilla_chat: the "
                     "chosen one but its last message is the prompt)", s->ud_field_chosen, s->ud_field_rejected);
            return -1;
        }
    }
    size_t nm = json_is_string(msgs) ? 1 : json_is_array(msgs) ? json_array_size(msgs) - (size_t)argilla : 0;
    if (!json_is_string(msgs) && !json_is_array(msgs)) {
        ax_error(d, where, "\"%s\": expected a list of messages or a string", s->field_messages);
        return -1;
    }
    const char **role = calloc(nm + 1, sizeof *role), **content = calloc(nm + 1, sizeof *content);
    if (!role || !content) abort();
    int rc = 0;
    for (size_t i = 0; i < nm && !rc; i++) {
        const char *r = "user", *t = json_string_value(msgs); /* a string: one user message */
        if (json_is_array(msgs)) {
            const json_t *m = json_array_get(msgs, i), *rv = json_object_get(m, s->role_key), *tv = json_object_get(m, s->content_key);
            if (!json_is_string(rv) || !json_is_string(tv)) {
                ax_error(d, where, "%s[%zu]: expected \"%s\" and \"%s\" strings (message_property_mappings)", mf, i,
                         s->role_key, s->content_key);
                rc = -1;
                break;
            }
            r = json_string_value(rv), t = json_string_value(tv);
        }
        if (!(role[i] = dpo_role(s, r))) {
            ax_error(d, where, "%s[%zu]: role \"%s\" is not in the dataset's roles (Axolotl's role_map raises KeyError)", mf,
                     i, r);
            rc = -1;
        }
        content[i] = t;
    }
    if (!rc) rc = dpo_render(p, s, role, content, (int)nm, 1, pr, where, d);
    free(role), free(content);
    if (!rc) rc = dpo_chat_completion(p, s, row, s->ud_field_chosen, where, ch, d);
    if (!rc) rc = dpo_chat_completion(p, s, row, s->ud_field_rejected, where, rj, d);
    return rc;
}

static int chat_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                    ax_buf *labels, ax_buf *lens, ax_diag *d) {
    const json_t *msgs = json_object_get(row, s->field_messages);
    if (!json_is_array(msgs) || !json_array_size(msgs)) {
        ax_error(d, where, "\"%s\": expected a non-empty list of messages", s->field_messages);
        return -1;
    }
    size_t nm = json_array_size(msgs);
    convo c = {calloc(nm + 1, sizeof(char *)), calloc(nm + 1, sizeof(char *)), calloc(nm + 1, sizeof(char *)),
               calloc(nm + 1, sizeof(char *)), calloc(nm + 1, sizeof(json_t *)), calloc(nm + 1, sizeof(json_t *)),
               calloc(nm + 1, sizeof(int)), calloc(nm + 1, sizeof(json_t *)), NULL, 0};
    /* what the messages own: joined content parts and training details made from them */
    char **own = calloc(3 * nm + 1, sizeof(char *));
    json_t **own_j = calloc(2 * nm + 1, sizeof(json_t *));
    int nown = 0, nown_j = 0;
    if (!c.role || !c.content || !c.reasoning || !c.think || !c.detail || !c.rdetail || !c.train || !c.msg || !own ||
        !own_j)
        abort();
    int rc = s->jinja ? jinja_tools(row, &c.tools, where, d) : 0;
    for (size_t i = 0; i < nm && !rc; i++) {
        const json_t *m = json_array_get(msgs, i);
        const json_t *r = json_object_get(m, s->role_key), *t = json_object_get(m, s->content_key);
        if (!json_is_string(r) || !(json_is_string(t) || json_is_array(t))) {
            ax_error(d, where, "%s[%zu]: expected \"%s\" a string and \"%s\" a string or a list of parts "
                     "(message_property_mappings)",
                     s->field_messages, i, s->role_key, s->content_key);
            rc = -1;
            break;
        }
        const char *role = map_role(s, json_string_value(r));
        if (i == 0 && strcmp(role, "system") && json_is_string(json_object_get(row, s->field_system))) {
            c.role[c.n] = "system";
            c.content[c.n] = json_string_value(json_object_get(row, s->field_system));
            if (s->jinja) {
                c.msg[c.n] = json_object();
                json_object_set_new(c.msg[c.n], "role", json_string("system"));
                json_object_set(c.msg[c.n], "content", json_object_get(row, s->field_system));
            }
            c.train[c.n++] = -1;
        }
        if ((!strcmp(role, "tool") && !s->jinja) ||
            (json_is_string(t) && strlen(json_string_value(t)) != json_string_length(t))) {
            ax_error(d, where, "%s[%zu]: %s", s->field_messages, i,
                     strcmp(role, "tool") ? "the content has a NUL character" : "tool messages are not supported");
            rc = -1;
            break;
        }
        c.role[c.n] = role;
        /* training_detail: the message's message_field_training_detail, or the one its content parts make */
        const json_t *td = s->training_detail_key ? json_object_get(m, s->training_detail_key) : NULL;
        c.detail[c.n] = td && !json_is_null(td) ? td : NULL;
        char what[96];
        /* the reasoning as Axolotl's transform_message leaves it under the thinking key: a mapped field, then
         * split_thinking's, then the message's own field of that name when the template reads it */
        const json_t *rs = NULL;
        const char *split_think = NULL;
        for (int k = 0; k < s->nprop; k++) {
            const json_t *v = json_object_get(m, s->prop_from[k]);
            if (!strcmp(s->prop_to[k], s->thinking_key) && v && !json_is_null(v)) rs = v;
        }
        c.content[c.n] = json_is_string(t) ? json_string_value(t) : NULL;
        if (s->split_thinking && json_is_string(t) && !strcmp(role, "assistant") &&
            split_thinking(c.content[c.n], &own[nown], &own[nown + 1]))
            c.content[c.n] = own[nown], split_think = own[nown + 1], nown += 2;
        if (!is_mapped_source(s, s->thinking_key) && template_reads(s, s->thinking_key)) {
            const json_t *v = json_object_get(m, s->thinking_key);
            if (v && !json_is_null(v)) rs = v, split_think = NULL;
        }
        if (json_is_array(t)) {
            json_t *det;
            snprintf(what, sizeof what, "%s[%zu].%s", s->field_messages, i, s->content_key);
            if ((rc = content_parts(t, &own[nown], &det, what, where, d))) break;
            c.content[c.n] = own[nown++];
            if (det) c.detail[c.n] = own_j[nown_j++] = det;
        }
        c.think[c.n] = split_think ? split_think : json_is_string(rs) ? json_string_value(rs) : NULL;
        if (!split_think && json_is_array(rs)) {
            json_t *det;
            snprintf(what, sizeof what, "%s[%zu].%s", s->field_messages, i, s->thinking_key);
            if ((rc = content_parts(rs, &own[nown], &det, what, where, d))) break;
            c.think[c.n] = own[nown++];
            if (det) c.rdetail[c.n] = own_j[nown_j++] = det;
        } else if (!split_think && rs && !json_is_string(rs)) {
            ax_error(d, where, "%s[%zu].%s: expected a string or a list of parts", s->field_messages, i, s->thinking_key);
            rc = -1;
            break;
        } else if (!split_think && json_is_string(rs) && strlen(json_string_value(rs)) != json_string_length(rs)) {
            ax_error(d, where, "%s[%zu].%s: the text has a NUL character", s->field_messages, i, s->thinking_key);
            rc = -1;
            break;
        }
        /* the one extra message field a built-in template reads (qwen3) */
        c.reasoning[c.n] = builtin_reads_reasoning(s) ? c.think[c.n] : NULL;
        const json_t *tr = s->training_key ? json_object_get(m, s->training_key) : NULL;
        if (s->jinja && !(c.msg[c.n] = jinja_message(s, m, role, tr, c.content[c.n], c.think[c.n], c.detail[c.n],
                                                     c.rdetail[c.n]))) {
            ax_error(d, where, "%s[%zu].tool_calls: a function's \"arguments\" string is not valid JSON", s->field_messages, i);
            rc = -1;
            break;
        }
        c.train[c.n++] = tr && !json_is_null(tr) ? py_truthy(tr) : -1;
    }
    if (!rc && s->drop_system_message && c.n && !strcmp(c.role[0], "system")) {
        memmove(c.role, c.role + 1, sizeof(char *) * (size_t)(c.n - 1));
        memmove(c.content, c.content + 1, sizeof(char *) * (size_t)(c.n - 1));
        memmove(c.reasoning, c.reasoning + 1, sizeof(char *) * (size_t)(c.n - 1));
        memmove(c.think, c.think + 1, sizeof(char *) * (size_t)(c.n - 1));
        memmove(c.detail, c.detail + 1, sizeof(json_t *) * (size_t)(c.n - 1));
        memmove(c.rdetail, c.rdetail + 1, sizeof(json_t *) * (size_t)(c.n - 1));
        memmove(c.train, c.train + 1, sizeof(int) * (size_t)(c.n - 1));
        json_decref(c.msg[0]);
        memmove(c.msg, c.msg + 1, sizeof(json_t *) * (size_t)(c.n - 1));
        c.msg[--c.n] = NULL;
    }
    ax_buf all = {0}, lab = {0}, full_text = {0};
    locator loc = {0};
    if (!rc) rc = render_text(p, s, &c, c.n, NULL, -1, 0, &full_text, where, d);
    if (!rc) rc = rt_tok_encode(p->tok, full_text.data, full_text.len, 0, &all, where, d);
    if (!rc) locator_build(p->tok, full_text.data, full_text.len, (const int32_t *)all.data,
                           (int64_t)(all.len / sizeof(int32_t)), &loc);
    if (!rc) {
        const int32_t *in = (const int32_t *)all.data;
        int64_t n = (int64_t)(all.len / sizeof(int32_t));
        int32_t ign = RT_IGNORE_INDEX;
        for (int64_t k = 0; k < n; k++) ax_buf_append(&lab, &ign, sizeof ign);
        int32_t *L = (int32_t *)lab.data;
        int legacy = !s->ntrain_roles && s->train_on_eos == RT_EOT_NONE && s->train_on_eot == RT_EOT_NONE &&
                     !s->training_key && !s->training_detail_key;
        if (legacy) { /* the last message after the generation prompt of the rest */
            ax_buf pr = {0};
            rc = render_tok(p, s, &c, c.n - 1, NULL, -1, 1, &pr, where, d);
            int64_t np = (int64_t)(pr.len / sizeof(int32_t));
            ax_buf_free(&pr);
            for (int64_t k = p->setup->train_on_inputs ? 0 : np; !rc && k < n; k++) L[k] = in[k];
        }
        int64_t last_eot = -1, last_eos = -1;
        for (int i = 0; !legacy && !rc && i < c.n; i++) {
            /* the message's training flag, else whether it has a (non-empty) training detail, else its role */
            const int dt = py_truthy(c.detail[i]), rdt = py_truthy(c.rdetail[i]);
            int train = c.train[i];
            if (train < 0 && (c.detail[i] || c.rdetail[i])) train = dt || rdt;
            if (train < 0) {
                train = p->setup->train_on_inputs;
                for (int k = 0; k < s->ntrain_roles && !train; k++) train = !strcmp(s->train_roles[k], c.role[i]);
            }
            if (!train && s->train_on_eos != RT_EOT_ALL && s->train_on_eot != RT_EOT_ALL) continue;
            int64_t st, en;
            /* with a detail and reasoning, the content's own span: the detail's offsets are the content's */
            const turn_part part = (dt || rdt) && c.think[i] ? TURN_CONTENT : TURN_WHOLE;
            if ((rc = find_turn(p, s, &c, i, part, &loc, &st, &en, where, d))) break;
            char what[96];
            snprintf(what, sizeof what, "%s[%d] training detail", s->field_messages, i);
            if (train && st >= 0 && dt) {
                if ((rc = apply_detail(p, c.content[i], c.detail[i], st, in, n, L, what, where, d))) break;
            } else if (train && st >= 0 && !rdt) {
                for (int64_t k = st; k < en && k < n; k++) L[k] = in[k];
            }
            if (train && rdt && c.think[i]) { /* the reasoning's detail, on the reasoning's own span */
                int64_t rs, re;
                if ((rc = find_turn(p, s, &c, i, TURN_REASONING, &loc, &rs, &re, where, d))) break;
                snprintf(what, sizeof what, "%s[%d] reasoning training detail", s->field_messages, i);
                if (rs >= 0 && (rc = apply_detail(p, c.think[i], c.rdetail[i], rs, in, n, L, what, where, d))) break;
            }
            for (int kind = 0; kind < 2; kind++) { /* EOT, then EOS */
                rt_eot_mode mode = kind ? s->train_on_eos : s->train_on_eot;
                int64_t idx = kind ? (p->eos_id >= 0 ? find_first(in, n, en, &p->eos_id, 1) : -1)
                                   : find_first(in, n, en, p->eot_ids, p->neot);
                if (idx < 0 || llabs(idx - en) > 3) continue;
                if (kind) last_eos = idx;
                else last_eot = idx;
                if (mode == RT_EOT_ALL || (mode == RT_EOT_TURN && train)) L[idx] = in[idx];
            }
        }
        if (!legacy && s->train_on_eot == RT_EOT_LAST && last_eot >= 0) L[last_eot] = in[last_eot];
        if (!legacy && s->train_on_eos == RT_EOT_LAST && last_eos >= 0) L[last_eos] = in[last_eos];
        if (!rc) push_sample(&all, 0, ids, labels, &lab, lens);
    }
    ax_buf_free(&all);
    ax_buf_free(&lab);
    ax_buf_free(&full_text);
    free(loc.starts);
    free(loc.ends);
    free(c.role);
    free(c.content);
    free(c.reasoning);
    free(c.think);
    free(c.detail);
    free(c.rdetail);
    for (int i = 0; i < nown; i++) free(own[i]);
    for (int i = 0; i < nown_j; i++) json_decref(own_j[i]);
    free(own);
    free(own_j);
    free(c.train);
    for (int i = 0; i < c.n; i++) json_decref(c.msg[i]);
    free(c.msg);
    json_decref(c.tools);
    return rc;
}

int rt_prompt_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                  ax_buf *labels, ax_buf *lens, ax_diag *d) {
    if (!json_is_object(row)) {
        ax_error(d, where, "expected a JSON object");
        return -1;
    }
    switch (s->fmt) {
    case RT_FMT_COMPLETION: return completion_row(p, s, row, where, ids, labels, lens, d);
    case RT_FMT_ALPACA: return alpaca_row(p, s, row, where, ids, labels, lens, d);
    case RT_FMT_CHAT: return chat_row(p, s, row, where, ids, labels, lens, d);
    case RT_FMT_INPUT_OUTPUT: return io_row(p, row, where, ids, labels, lens, d);
    case RT_FMT_DPO: return dpo_row(p, s, row, where, ids, labels, lens, d);
    default: ax_error(d, where, "pre-tokenized rows do not go through a prompt format"); return -1;
    }
}
