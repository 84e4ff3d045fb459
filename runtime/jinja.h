/* jinja.h — the subset of Jinja2 that Hugging Face chat templates use, with
 * the semantics of transformers' apply_chat_template: an
 * ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the
 * loopcontrols extension, transformers' own `tojson` (json.dumps with
 * ensure_ascii=False, indent, separators, sort_keys), the globals
 * raise_exception(msg), strftime_now(fmt), namespace(...), dict(...),
 * range(...), and `{% generation %}` (renders its body).
 *
 * Values behave as Python's: None prints "None", floats as repr (1.0, 1e-05),
 * lists and dicts as repr; `and`/`or` return an operand; jinja2's default
 * Undefined (prints "", is falsy, iterates empty; an attribute of it is an
 * error; a missing dict key or list index is undefined). Lists and dicts
 * are immutable (append, update, pop... are the sandbox's errors); only a
 * namespace takes attribute assignment.
 *
 * Supported: {{ }}, {% %}, {# #} with - and + whitespace control, raw; if /
 * elif / else, for (loop.*, unpacking, `if` filter, else, break, continue),
 * set (tuple targets, namespace attributes, block set), macro (defaults,
 * varargs, kwargs, caller) and call blocks, filter blocks, with,
 * generation; the operators, tests, filters and str / dict / list methods
 * listed in jinja.c. Not supported (a syntax error): extends, block,
 * include, import, recursive loops.
 *
 * A render never crashes or hangs: output, memory, loop iterations
 * (range is capped at 100000 as the sandbox does) and macro recursion are
 * capped, each with an error. Values live in one arena per render.
 */
#ifndef RT_JINJA_H
#define RT_JINJA_H

#include "ir/base.h"

#include <jansson.h>

typedef struct jinja_tpl jinja_tpl;

typedef struct jinja_err {
    int line;      /* the template's line (1-based), 0 if none */
    int raised;    /* 1: raise_exception(msg) was called; msg is its text */
    char msg[512]; /* what was expected and found, or what went wrong */
} jinja_err;

/* Parses a template (source as in the template file / JSON string). NULL
 * with err filled on a syntax error. */
jinja_tpl *jinja_parse(const char *src, size_t len, jinja_err *err);
void jinja_free(jinja_tpl *t);

/* Renders with the keys of `vars` (a JSON object) as the template's
 * variables (JSON null is None); appends the text to out. 0, or -1 with
 * err filled (out then holds a partial render). */
int jinja_render(const jinja_tpl *t, const json_t *vars, ax_buf *out, jinja_err *err);

/* Python's str.strip() of whitespace (str.isspace(), Unicode's included) on
 * the UTF-8 bytes s[*a..*b), as the engine's strip/trim do: narrows the span
 * from the left and/or the right (lstrip, rstrip, strip). */
void jinja_strip_space(const char *s, size_t *a, size_t *b, int left, int right);

#endif
