/* json_mutator.h — a structure-aware libFuzzer mutator for targets whose
 * input is one JSON document (tokenizer.json, config.json, DeepSpeed JSON).
 * Byte mutations rarely keep such a file valid JSON, so they seldom get past
 * the parser. Included by such a target after defining JSON_MUTATOR_OFFSET:
 * how many leading bytes are not JSON (a selector byte), usually 0.
 *
 * Half of the calls parse the input with jansson and change one random value
 * of the document, then print it again. The change is one of:
 *   - a number becomes an extreme (0, -1, 2^31, 2^62, 1e308, ...);
 *   - a string is emptied, doubled, or becomes a number;
 *   - an array element or an object member is dropped or duplicated;
 *   - a value becomes null, [] or {}.
 * The other half, and any input that does not parse, get libFuzzer's own
 * byte mutations. Only the libFuzzer build uses this. */
#ifndef AXO_JSON_MUTATOR_H
#define AXO_JSON_MUTATOR_H

#include <jansson.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint64_t jm_rand(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* every value of the document, parents before children */
static void jm_collect(json_t *v, json_t ***all, size_t *n, size_t *cap) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *all = realloc(*all, sizeof **all * *cap);
        if (!*all) abort();
    }
    (*all)[(*n)++] = v;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) jm_collect(x, all, n, cap);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) jm_collect(x, all, n, cap);
    }
}

/* replaces `old` by `nv` (a new reference) wherever its parent holds it */
static void jm_replace(json_t *root, json_t *old, json_t *nv) {
    json_t **all = NULL;
    size_t n = 0, cap = 0;
    jm_collect(root, &all, &n, &cap);
    for (size_t i = 0; i < n; i++) {
        json_t *p = all[i];
        if (json_is_array(p)) {
            for (size_t k = 0; k < json_array_size(p); k++)
                if (json_array_get(p, k) == old) {
                    json_array_set(p, k, nv);
                    goto done;
                }
        } else if (json_is_object(p)) {
            const char *k;
            json_t *x;
            json_object_foreach(p, k, x) if (x == old) {
                json_object_set(p, k, nv);
                goto done;
            }
        }
    }
done:
    json_decref(nv);
    free(all);
}

static int jm_mutate_doc(json_t *root, uint64_t *rs) {
    json_t **all = NULL;
    size_t n = 0, cap = 0;
    jm_collect(root, &all, &n, &cap);
    json_t *v = all[jm_rand(rs) % n];
    free(all);
    static const double extremes[] = {0, -1, 1, 2147483647.0, 2147483648.0, 4294967296.0, 4611686018427387904.0,
                                      9.2e18, -9.2e18, 1e308, -1e308, 1e-320, 0.5};
    int r = (int)(jm_rand(rs) % 6);
    if (v == root && (r == 4 || r == 5)) r = 0;
    switch (r) {
    case 0: /* an extreme number */
    {
        double x = extremes[jm_rand(rs) % (sizeof extremes / sizeof extremes[0])];
        json_t *nv = x > -9.3e18 && x < 9.3e18 && x == (double)(json_int_t)x ? json_integer((json_int_t)x) : json_real(x);
        if (v == root) {
            json_decref(nv);
            return -1;
        }
        jm_replace(root, v, nv);
        return 0;
    }
    case 1: /* strings: empty, doubled */
        if (!json_is_string(v)) return -1;
        if (jm_rand(rs) & 1) json_string_set(v, "");
        else {
            size_t l = json_string_length(v);
            char *d = malloc(2 * l + 1);
            memcpy(d, json_string_value(v), l);
            memcpy(d + l, json_string_value(v), l);
            json_string_setn(v, d, 2 * l);
            free(d);
        }
        return 0;
    case 2: /* drop an element or member */
        if (json_is_array(v) && json_array_size(v)) return json_array_remove(v, jm_rand(rs) % json_array_size(v));
        if (json_is_object(v) && json_object_size(v)) {
            size_t k = jm_rand(rs) % json_object_size(v), i = 0;
            const char *key;
            json_t *x;
            json_object_foreach(v, key, x) if (i++ == k) return json_object_del(v, key);
        }
        return -1;
    case 3: /* duplicate an element */
        if (json_is_array(v) && json_array_size(v))
            return json_array_append(v, json_array_get(v, jm_rand(rs) % json_array_size(v)));
        return -1;
    case 4: /* null */
        jm_replace(root, v, json_null());
        return 0;
    default: /* an empty container of the other kind */
        jm_replace(root, v, json_is_array(v) ? json_object() : json_array());
        return 0;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t rs = seed * 0x9e3779b97f4a7c15ull + 1;
    if (size > JSON_MUTATOR_OFFSET && (jm_rand(&rs) & 1)) {
        json_error_t je;
        json_t *root = json_loadb((const char *)data + JSON_MUTATOR_OFFSET, size - JSON_MUTATOR_OFFSET, 0, &je);
        if (root) {
            int tries = 0;
            while (jm_mutate_doc(root, &rs) != 0 && ++tries < 8) {}
            char *s = json_dumps(root, JSON_COMPACT);
            json_decref(root);
            if (s) {
                size_t l = strlen(s);
                if (JSON_MUTATOR_OFFSET + l <= max_size) {
                    memcpy(data + JSON_MUTATOR_OFFSET, s, l);
                    free(s);
                    return JSON_MUTATOR_OFFSET + l;
                }
                free(s);
            }
        }
    }
    return LLVMFuzzerMutate(data, size, max_size);
}

#endif
