/* modeldir.c — see modeldir.h. */
#include "runtime/modeldir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rt_modeldir_begin(const char *dir, int overwrite, long pid, char *tmp, size_t cap, int *exists, ax_diag *d) {
    struct stat st;
    *exists = stat(dir, &st) == 0;
    if (*exists && !overwrite) {
        ax_error(d, dir, "already exists; refusing to replace it (pass --overwrite)");
        return -1;
    }
    if (snprintf(tmp, cap, "%s.tmp-%ld", dir, pid) >= (int)cap) {
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
                                        "chat_template.jinja", "optimizer_state.json"};
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
        if (snprintf(old, sizeof old, "%s.old-%ld", dir, (long)getpid()) >= (int)sizeof old) {
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

int rt_modeldir_copy_tokenizer(const char *from, const char *to, int generation_config, const char *chat_template,
                               ax_diag *d) {
    static const char *const files[] = {"generation_config.json", "tokenizer.json",  "tokenizer_config.json",
                                        "tokenizer.model",        "special_tokens_map.json", "vocab.json",
                                        "merges.txt",             "added_tokens.json",       "chat_template.jinja"};
    char src[4096], dst[4096];
    for (size_t i = generation_config ? 0 : 1; i < AX_ARRAY_LEN(files); i++) {
        if (chat_template && !strcmp(files[i], "chat_template.jinja")) continue;
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
