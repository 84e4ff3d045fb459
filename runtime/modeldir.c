/* modeldir.c — see modeldir.h. */
#include "runtime/modeldir.h"
#include "runtime/prompt.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dir without its trailing slashes ("out/" is "out": the scratch and old names go beside it, not inside) */
static int trimmed_len(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    return (int)n;
}

int rt_modeldir_begin(const char *dir, int overwrite, long pid, char *tmp, size_t cap, int *exists, ax_diag *d) {
    struct stat st;
    *exists = stat(dir, &st) == 0;
    if (*exists && !overwrite) {
        ax_error(d, dir, "already exists; refusing to replace it (pass --overwrite)");
        return -1;
    }
    if (snprintf(tmp, cap, "%.*s.tmp-%ld", trimmed_len(dir), dir, pid) >= (int)cap) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    rt_modeldir_remove(tmp); /* a stale one of a crashed run with the same pid: never publish its leftovers */
    if (stat(tmp, &st) == 0) {
        ax_error(d, tmp, "a previous save left this directory with files axo did not write; remove it");
        return -1;
    }
    return ax_mkdir_p(tmp, d);
}

void rt_modeldir_remove(const char *dir) {
    /* trainer_state.json first: a removal cut short never leaves a dir
     * that still looks resumable */
    static const char *const known[] = {"trainer_state.json", "model.safetensors", "config.json", "adapter_model.safetensors",
                                        "adapter_config.json", "sharded_state_dict.json", "generation_config.json",
                                        "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                        "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json",
                                        "chat_template.jinja", "optimizer_state.json", "model-carried.safetensors"};
    char p[4096];
    for (size_t i = 0; i < AX_ARRAY_LEN(known); i++)
        if (ax_path_join(p, sizeof p, dir, known[i]) == 0) unlink(p);
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t len = strlen(e->d_name);
            int rankfile = !strncmp(e->d_name, "model-rank", 10) || !strncmp(e->d_name, "optimizer-rank", 14);
            if (rankfile && len > 12 && !strcmp(e->d_name + len - 12, ".safetensors") &&
                ax_path_join(p, sizeof p, dir, e->d_name) == 0)
                unlink(p);
        }
        closedir(dh);
    }
    if (ax_path_join(p, sizeof p, dir, "optimizer") == 0) { /* a resumable checkpoint's optimizer state */
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rt_modeldir_remove(p);
    }
    rmdir(dir);
}

int rt_modeldir_publish(const char *tmp, const char *dir, int exists, ax_diag *d) {
    if (exists) {
        char old[4096];
        if (snprintf(old, sizeof old, "%.*s.old-%ld", trimmed_len(dir), dir, (long)getpid()) >= (int)sizeof old) {
            ax_error(d, dir, "path too long");
            rt_modeldir_remove(tmp);
            return -1;
        }
        if (rename(dir, old) != 0) {
            ax_error(d, dir, "cannot move the previous version aside: %s", strerror(errno));
            rt_modeldir_remove(tmp);
            return -1;
        }
        if (rename(tmp, dir) != 0) {
            ax_error(d, dir, "cannot rename %s into place: %s", tmp, strerror(errno));
            rename(old, dir);
            rt_modeldir_remove(tmp);
            return -1;
        }
        rt_modeldir_remove(old);
        if (stat(old, &(struct stat){0}) == 0)
            ax_warn(d, old, "the previous %s held files axo did not write; they are kept here", dir);
        return 0;
    }
    if (rename(tmp, dir) != 0) {
        ax_error(d, dir, "cannot rename %s into place: %s", tmp, strerror(errno));
        rt_modeldir_remove(tmp);
        return -1;
    }
    return 0;
}

static json_t *added_entry(int64_t id, const char *content, int special) {
    json_t *x = json_object(); /* tokenizers' field order */
    json_object_set_new(x, "id", json_integer(id));
    json_object_set_new(x, "content", json_string(content));
    json_object_set_new(x, "single_word", json_false());
    json_object_set_new(x, "lstrip", json_false());
    json_object_set_new(x, "rstrip", json_false());
    json_object_set_new(x, "normalized", json_false());
    json_object_set_new(x, "special", json_boolean(special));
    return x;
}

static int cmp_added_id(const void *a, const void *b) {
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id")),
               y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return (x > y) - (x < y);
}

/* tokenizer.json with the edits applied (ids as rt_tok_add / rt_tok_override
 * give them); NULL after an error in d. cfg_dec: tokenizer_config.json's
 * added_tokens_decoder, updated alike when not NULL. */
static char *edit_tokenizer_json(const char *path, const rt_tok_setup *s, json_t *cfg_dec, ax_diag *d) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        char loc[600];
        ax_error(d, ax_loc(loc, sizeof loc, path, je.line, je.column), "cannot read the tokenizer: %s", je.text);
        return NULL;
    }
    json_t *added = json_object_get(root, "added_tokens"), *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    if (!json_is_array(added)) {
        added = json_array();
        json_object_set_new(root, "added_tokens", added);
    }
    const json_int_t model_n = (json_int_t)json_object_size(vocab);
    for (int k = 0; k < s->nedits; k++) {
        const rt_tok_edit *e = &s->edits[k];
        json_t *hit = NULL, *x;
        size_t i;
        json_int_t max_id = -1;
        json_array_foreach(added, i, x) {
            json_int_t id = json_integer_value(json_object_get(x, "id"));
            const char *c = json_string_value(json_object_get(x, "content"));
            if (id > max_id) max_id = id;
            if (e->override_id >= 0 ? id == e->override_id : (c && !strcmp(c, e->content))) hit = x;
        }
        char key[32];
        if (e->override_id >= 0) {
            if (!hit) {
                ax_error(d, path, "added_tokens_overrides: token id %d is not an added token", (int)e->override_id);
                json_decref(root);
                return NULL;
            }
            const char *old = json_string_value(json_object_get(hit, "content"));
            json_t *v = old && json_is_object(vocab) ? json_object_get(vocab, old) : NULL;
            if (v && json_integer_value(v) == e->override_id) {
                json_object_del(vocab, old);
                json_object_set_new(vocab, e->content, json_integer(e->override_id));
            }
            json_object_set_new(hit, "content", json_string(e->content));
            snprintf(key, sizeof key, "%d", (int)e->override_id);
            if (json_is_object(json_object_get(cfg_dec, key)))
                json_object_set_new(json_object_get(cfg_dec, key), "content", json_string(e->content));
            continue;
        }
        json_int_t id;
        if (hit) { /* tokenizers replaces the flags of a token added again */
            id = json_integer_value(json_object_get(hit, "id"));
            json_t *fresh = added_entry(id, e->content, e->special);
            json_object_update(hit, fresh);
            json_decref(fresh);
        } else {
            json_t *v = json_is_object(vocab) ? json_object_get(vocab, e->content) : NULL;
            id = json_is_integer(v) ? json_integer_value(v) : max_id >= model_n ? max_id + 1 : model_n;
            json_array_append_new(added, added_entry(id, e->content, e->special));
        }
        if (cfg_dec) {
            json_t *dec = json_object();
            json_object_set_new(dec, "content", json_string(e->content));
            json_object_set_new(dec, "lstrip", json_false());
            json_object_set_new(dec, "normalized", json_false());
            json_object_set_new(dec, "rstrip", json_false());
            json_object_set_new(dec, "single_word", json_false());
            json_object_set_new(dec, "special", json_boolean(e->special));
            snprintf(key, sizeof key, "%lld", (long long)id);
            json_object_set_new(cfg_dec, key, dec);
        }
    }
    /* sorted by id, as tokenizers writes them */
    size_t n = json_array_size(added);
    json_t **items = malloc(sizeof *items * (n + 1));
    if (!items) abort();
    for (size_t i = 0; i < n; i++) items[i] = json_incref(json_array_get(added, i));
    qsort(items, n, sizeof *items, cmp_added_id);
    json_array_clear(added);
    for (size_t i = 0; i < n; i++) json_array_append_new(added, items[i]);
    free(items);
    char *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return out;
}

/* tokenizer_config.json / special_tokens_map.json with the special tokens
 * the config set; NULL after an error in d. */
static json_t *load_json_or_null(const char *path, ax_diag *d, int *bad) {
    *bad = 0;
    if (!ax_file_exists(path)) return NULL;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j || !json_is_object(j)) {
        char loc[600];
        ax_error(d, ax_loc(loc, sizeof loc, path, je.line, je.column), "expected a JSON object: %s", j ? "" : je.text);
        json_decref(j);
        *bad = 1;
        return NULL;
    }
    return j;
}

static void set_specials(json_t *cfg, const rt_tok_setup *s, const char *list_key) {
    for (int k = 0; k < s->nset; k++) json_object_set_new(cfg, s->set_special[k], json_string(s->set_value[k]));
    if (s->extra_special) {
        json_t *xs = json_array();
        for (int k = 0; k < s->nextra_special; k++) json_array_append_new(xs, json_string(s->extra_special[k]));
        json_object_set_new(cfg, list_key, xs);
    }
}

static int write_json(const char *dir, const char *name, const char *text, ax_diag *d) {
    char dst[4096];
    if (ax_path_join(dst, sizeof dst, dir, name) != 0) {
        ax_error(d, dir, "path too long");
        return -1;
    }
    return ax_write_file_atomic(dst, text, strlen(text), d);
}

/* The three files the edits change, written into `to`. */
static int write_edited_tokenizer(const char *from, const char *to, const rt_tok_setup *s, ax_diag *d) {
    char src[4096], cfgp[4096], mapp[4096];
    if (ax_path_join(src, sizeof src, from, "tokenizer.json") != 0 ||
        ax_path_join(cfgp, sizeof cfgp, from, "tokenizer_config.json") != 0 ||
        ax_path_join(mapp, sizeof mapp, from, "special_tokens_map.json") != 0) {
        ax_error(d, from, "path too long");
        return -1;
    }
    int bad;
    json_t *cfg = load_json_or_null(cfgp, d, &bad);
    if (bad) return -1;
    json_t *map = load_json_or_null(mapp, d, &bad);
    if (bad) {
        json_decref(cfg);
        return -1;
    }
    char *tj = edit_tokenizer_json(src, s, cfg ? json_object_get(cfg, "added_tokens_decoder") : NULL, d);
    int rc = tj ? write_json(to, "tokenizer.json", tj, d) : -1;
    free(tj);
    if (!rc && cfg) { /* transformers 5 names the list extra_special_tokens; an older file keeps its key */
        set_specials(cfg, s, json_object_get(cfg, "additional_special_tokens") ? "additional_special_tokens"
                                                                              : "extra_special_tokens");
        char *t = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = write_json(to, "tokenizer_config.json", t, d);
        free(t);
    }
    if (!rc && map) {
        set_specials(map, s, "additional_special_tokens");
        char *t = json_dumps(map, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = write_json(to, "special_tokens_map.json", t, d);
        free(t);
    }
    json_decref(cfg);
    json_decref(map);
    return rc;
}

int rt_modeldir_copy_tokenizer(const char *from, const char *to, int generation_config, const char *chat_template,
                               const char *tok_setup, ax_diag *d) {
    static const char *const files[] = {"generation_config.json", "tokenizer.json",  "tokenizer_config.json",
                                        "tokenizer.model",        "special_tokens_map.json", "vocab.json",
                                        "merges.txt",             "added_tokens.json",       "chat_template.jinja"};
    char src[4096], dst[4096];
    ax_arena *ar = ax_arena_create();
    rt_tok_setup ts;
    int edited = 0;
    if (tok_setup && from) {
        if (rt_tok_setup_from_json(tok_setup, &ts, ar, "plan", d) != 0) {
            ax_arena_destroy(ar);
            return -1;
        }
        edited = ts.nedits > 0 || ts.nset > 0 || ts.extra_special != NULL;
    }
    if (edited && write_edited_tokenizer(from, to, &ts, d) != 0) {
        ax_arena_destroy(ar);
        return -1;
    }
    ax_arena_destroy(ar);
    for (size_t i = generation_config ? 0 : 1; i < AX_ARRAY_LEN(files); i++) {
        if (chat_template && !strcmp(files[i], "chat_template.jinja")) continue;
        if (edited && (!strcmp(files[i], "tokenizer.json") || !strcmp(files[i], "tokenizer_config.json") ||
                       !strcmp(files[i], "special_tokens_map.json")))
            continue;
        if (!from || ax_path_join(src, sizeof src, from, files[i]) != 0 || !ax_file_exists(src)) continue;
        size_t len;
        char *txt = ax_read_file(src, &len, d);
        int bad = !txt || ax_path_join(dst, sizeof dst, to, files[i]) != 0 || ax_write_file_atomic(dst, txt, len, d) != 0;
        free(txt);
        if (bad) return -1;
    }
    if (chat_template && (ax_path_join(dst, sizeof dst, to, "chat_template.jinja") != 0 ||
                          ax_write_file_atomic(dst, chat_template, strlen(chat_template), d) != 0))
        return -1;
    return 0;
}
