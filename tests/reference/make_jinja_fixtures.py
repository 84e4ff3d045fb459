#!/usr/bin/env python3
"""Jinja fixtures: what jinja2 renders, in transformers' chat-template environment.

Each case of CASES (templates written for these tests: feature probes and
whole chat templates in the style of the major model families) is rendered
with the environment transformers' apply_chat_template compiles templates in
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
its own tojson, raise_exception, strftime_now, namespace, dict, the
{% generation %} tag), taken from transformers itself, and written as one
JSON line to jinja/cases.jsonl:
  {"name", "template", "context", "expected"}             rendered text
  {"name", "template", "context", "error": "syntax", "line", "message"}
  {"name", "template", "context", "error": "raise", "message"}  raise_exception
  {"name", "template", "context", "error": "runtime", "message"}
test_jinja.c renders each with runtime/jinja.c and compares.

Needs: pip install transformers jinja2 (no torch). Run from the repository
root: python3 tests/reference/make_jinja_fixtures.py
"""
import json
import os

import jinja2
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "jinja", "cases.jsonl")

SYS = {"role": "system", "content": "You are a careful assistant."}
U1 = {"role": "user", "content": "What is 2+2?"}
A1 = {"role": "assistant", "content": "It is 4."}
U2 = {"role": "user", "content": "  And 3+3?\n"}
A2 = {"role": "assistant", "content": "6, café 日本 😀"}
CONV = [SYS, U1, A1, U2, A2]
CONV_NOSYS = [U1, A1, U2, A2]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string", "description": "The city"},
                                               "unit": {"type": "string", "enum": ["c", "f"]}},
                                               "required": ["city"]}}}]
TOOL_CONV = [SYS, {"role": "user", "content": "Weather in Paris?"},
             {"role": "assistant", "content": "", "tool_calls": [
                 {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
             {"role": "tool", "name": "get_weather", "content": "{\"temp\": 21.5}"},
             {"role": "assistant", "content": "It is 21.5 C in Paris."}]
THINK_CONV = [{"role": "user", "content": "2+2?"},
              {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
              {"role": "user", "content": "3+3?"},
              {"role": "assistant", "content": "6", "reasoning_content": "\nthree and three\n"}]

BASE = {"messages": CONV, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": False,
        "tools": None, "documents": None,
        "xs": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"b": 2, "a": 1, "C": 3}, "s": "Hello World",
        "n": None, "f": 2.5, "i": 7, "t": True, "e": "", "users": [
            {"name": "Bo", "age": 31, "tags": ["x"]}, {"name": "al", "age": 25, "tags": []},
            {"name": "Cy", "age": 31}]}


def ctx(**kw):
    c = dict(BASE)
    c.update(kw)
    return c


# (name, template[, context overrides])
CASES = [
    # ---- output and literals
    ("literal-text", "plain text only"),
    ("trailing-newline", "a\n"),
    ("two-trailing-newlines", "a\n\n"),
    ("crlf", "a\r\nb\rc{% if t %}\r\nx{% endif %}"),
    ("print-values", "{{ 1 }}|{{ -3 }}|{{ 2.5 }}|{{ 1.0 }}|{{ 0.1 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 123456789012345678.0 }}|{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ n }}|{{ 'x' }}"),
    ("print-containers", "{{ [1, 'a', none, true, 1.5, (1,), (1, 2), [], {}] }}|{{ {'k': [2], 'q': \"it's\"} }}|{{ ('a',) }}"),
    ("print-repr-escapes", "{{ ['a\\nb', 'tab\\t', 'q\"', \"both'\\\"\", 'back\\\\slash', 'é', '\\x01'] }}"),
    ("string-escapes", "{{ 'a\\tb\\\\c\\'d' }}|{{ \"x\\\"y\" }}|{{ '\\u00e9\\x41\\101' }}|{{ 'un\\known' }}|{{ 'adj' 'acent' }}"),
    ("numbers", "{{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1.5e3 }} {{ 2E-2 }}"),
    ("undefined-prints-empty", "[{{ missing }}][{{ d.missing }}][{{ xs[10] }}][{{ d['zz'] }}]"),
    ("comment", "a{# a comment #}b{#- trimmed -#}  c"),
    ("raw", "{% raw %}{{ not evaluated }}{% endraw %}|{%- raw -%}  {{ x }}  {%- endraw -%}  |"),
    # ---- whitespace control
    ("ws-trim-blocks", "{% if t %}\nyes\n{% endif %}\nafter"),
    ("ws-lstrip-blocks", "start\n    {% if t %}\n    indented\n    {% endif %}\nend"),
    ("ws-minus", "a   {{- 'b' -}}   c\n\n{%- if t -%}\n  d  \n{%- endif -%}\n  e"),
    ("ws-plus", "x\n    {%+ if t %}y{% endif +%}\nz"),
    ("ws-lstrip-not-vars", "line\n    {{ 'v' }}\n  {# c #}\nend"),
    ("ws-for-lines", "{% for x in xs %}\n  - {{ x }}\n{% endfor %}\ndone"),
    ("ws-inline-block", "a {% if t %}b{% endif %} c\n  {% set q = 1 %}  d"),
    ("ws-comment-line", "a\n  {# c #}\nb\n{#- c -#}\nc"),
    ("ws-nested", "{%- for m in messages %}\n    {%- if m.role == 'user' %}\n        {{- 'U:' + m.content }}\n    {%- else %}\n        {{- 'X:' + m.content }}\n    {%- endif %}\n{%- endfor %}\n"),
    ("ws-tabs", "a\n\t{% if t %}\n\tb\n\t{% endif %}\nc"),
    # ---- operators
    ("arith", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"),
    ("arith-mixed", "{{ 1 + 2.5 }} {{ true + 1 }} {{ 'ab' + 'cd' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 2 * 'x' }} {{ [0] * 3 }} {{ -i }} {{ +f }} {{ -(-2) }}"),
    ("concat", "{{ 'a' ~ 1 ~ none ~ missing ~ 2.0 ~ [1] ~ true }}"),
    ("compare", "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' != 'b' }} {{ none == none }} {{ 2 >= 2 }} {{ 'B' <= 'a' }} {{ (1, 2) == (1, 2) }} {{ [1] == (1,) }} {{ {'a': 1} == {'a': 1} }}"),
    ("in-notin", "{{ 'ell' in s }} {{ 2 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 5 not in xs }} {{ 'x' in missing }} {{ not 'a' in d }}"),
    ("and-or-not", "{{ 1 and 2 }} {{ 0 and 2 }} {{ 0 or 'x' }} {{ '' or none }} {{ not e }} {{ not 1 }} {{ none or [] or 'last' }} {{ t and 'yes' or 'no' }} {{ missing or 'dflt' }}"),
    ("truthiness", "{% for v in [0, 1, 0.0, '', 'a', [], [0], {}, none, true, false] %}{{ 'T' if v else 'F' }}{% endfor %}{{ 'T' if missing else 'F' }}"),
    ("cond-expr", "{{ 'a' if t else 'b' }}|{{ 'a' if not t else 'b' }}|{{ 'a' if false }}|{{ 1 if false else 2 if true else 3 }}"),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ~ 4 }} {{ (1 + 1) ~ 1 }} {{ 'a' ~ (1 + 1) }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ 'ab'|upper ~ 'c' }} {{ 10 - 2 - 3 }} {{ 2 ** 2 ** 3 }}"),
    ("unary-filter", "{{ -3|abs }} {{ - 3 | abs }}"),
    # ---- attribute, subscript, slices
    ("subscript", "{{ xs[0] }} {{ xs[-1] }} {{ s[0] }} {{ s[-1] }} {{ d['a'] }} {{ d.a }} {{ users[0].name }} {{ users[0]['tags'][0] }} {{ xs.0 }} {{ messages[1]['role'] }}"),
    ("slices", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[-3:] }} {{ xs[5:] }} {{ xs[-10:1] }} {{ s[:100] }} {{ 'héllo'[1:3] }} {{ xs[2:0:-1] }} {{ messages[1:][0].role }}"),
    ("dict-methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 0) }}"),
    ("dict-literal-access", "{% set m = {'role': 'user', 'content': 'hi', 'items': 5} %}{{ m.role }}/{{ m['content'] }}/{{ m['items'] }}/{{ m.other is defined }}"),
    # ---- statements
    ("if-elif-else", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}many{% endif %},{% endfor %}"),
    ("for-loop-vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}[{{ loop.previtem }}|{{ loop.nextitem }}]{{ loop.cycle('o', 'e') }};{% endfor %}"),
    ("for-unpack", "{% for k, v in [('a', 1), ('b', 2)] %}{{ k }}{{ v }}{% endfor %}|{% for (a, b) in [[1, 2]] %}{{ a + b }}{% endfor %}"),
    ("for-filter-else", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{{ loop.last }};{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in xs if x > 9 %}x{% else %}none{% endfor %}"),
    ("for-string-dict", "{% for c in 'héy' %}[{{ c }}]{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for x in missing %}never{% endfor %}"),
    ("break-continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("loop-scope", "{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }};{% endfor %}{{ x }}"),
    ("loop-scope-prev", "{% for i in range(3) %}{% if i > 0 %}[{{ y }}]{% endif %}{% set y = i %}{% endfor %}|{{ y }}"),
    ("if-scope", "{% if true %}{% set z = 5 %}{% endif %}{{ z }}"),
    ("nested-loops", "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}"),
    ("set-tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set (p, q) = ['x', 'y'] %}{{ p }}{{ q }}"),
    ("set-block", "{% set body %}\n  hello {{ s }}\n{% endset %}[{{ body }}]{% set up | upper %}abc{% endset %}{{ up }}"),
    ("namespace", "{% set ns = namespace(found=false, count=0, last=none) %}{% for x in xs %}{% if x > 1 %}{% set ns.found = true %}{% set ns.count = ns.count + 1 %}{% set ns.last = x %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.count }} {{ ns.last }} {{ ns.nothing is defined }}"),
    ("namespace-dict-arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}"),
    ("dict-global", "{% set m = dict(role='user', content='x') %}{{ m.role }}{{ m|length }}{{ dict(a=1) }}"),
    ("macro", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', 'Hi') }} {{ greet(punct='?', name='Cy') }}"),
    ("macro-varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}"),
    ("macro-recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
    ("macro-sees-globals", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ bos_token }}{% endmacro %}{{ m() }}"),
    ("call-block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ s }}{% endcall %}"),
    ("call-block-args", "{% macro each(items) %}{% for it in items %}{{ caller(it) }}{% endfor %}{% endmacro %}{% call(x) each(xs) %}<{{ x }}>{% endcall %}"),
    ("filter-block", "{% filter upper %}hello {{ s }}{% endfilter %}|{% filter trim | replace('a', 'b') %}  banana  {% endfilter %}"),
    ("with-block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}"),
    ("generation", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}"),
    ("range", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }} {{ range(3, 1)|list }}"),
    # ---- tests
    ("tests-types", "{% for v in [1, 1.5, 'a', none, true, [1], {'a': 1}, (1,)] %}{{ v is number }}{{ v is integer }}{{ v is float }}{{ v is string }}{{ v is none }}{{ v is boolean }}{{ v is mapping }}{{ v is iterable }}{{ v is sequence }}{{ v is defined }};{% endfor %}"),
    ("tests-undefined", "{{ missing is defined }}{{ missing is undefined }}{{ missing is not defined }}{{ missing is iterable }}{{ missing is sequence }}{{ missing is none }}{{ d.zz is defined }}"),
    ("tests-values", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 2 is eq 2 }}{{ 2 is equalto(3) }}{{ 2 is ne 3 }}{{ 2 is lt 3 }}{{ 2 is gt 3 }}{{ 2 is le 2 }}{{ 2 is ge 3 }}{{ 2 is in xs }}{{ 'Ab' is lower }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 2 is sameas 2 }}"),
    ("tests-callable", "{{ range is callable }}{{ s.upper is callable }}{{ s is callable }}{{ raise_exception is defined }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ none is sameas none }}"),
    # ---- filters
    ("f-trim-length", "[{{ '  x y \\n'|trim }}][{{ 'xxaxx'|trim('x') }}]{{ s|length }}{{ xs|count }}{{ d|length }}{{ 'héllo'|length }}{{ missing|length }}"),
    ("f-case", "{{ s|upper }} {{ s|lower }} {{ 'hELLO wORLD'|capitalize }} {{ \"it's a hello-world (x) [y]\"|title }} {{ 'ÉCOLE straße'|lower }} {{ 'éa'|upper }}"),
    ("f-replace", "{{ s|replace('o', '0') }} {{ s|replace('o', '0', 1) }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'ab'|replace('', '-') }}"),
    ("f-join", "{{ xs|join }} {{ xs|join(', ') }} {{ users|join('/', attribute='name') }} {{ [1, none, 'a']|join('-') }}"),
    ("f-first-last", "{{ xs|first }} {{ xs|last }} {{ s|first }} {{ s|last }} {{ []|first }}|{{ messages|last|attr('role') }}"),
    ("f-default", "{{ missing|default('dflt') }} {{ missing|d('d') }} {{ e|default('x') }} {{ e|default('x', true) }} {{ none|default('x') }} {{ none|default('x', boolean=true) }} {{ s|default('no') }} {{ missing|default }}|"),
    ("f-items-list", "{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}{{ d|items|list }}{{ missing|items|list }}{{ 'abc'|list }}{{ d|list }}{{ (1, 2)|list }}"),
    ("f-string-int-float", "{{ 3|string }}{{ none|string }}{{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ 3.9|int }} {{ '0x1A'|int(0, 16) }} {{ '12'|float }} {{ 'abc'|float }} {{ 2|float }} {{ true|int }} {{ '  7 '|int }}"),
    ("f-abs-round", "{{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ -2.5|round }} {{ 2.675|round(2) }} {{ 7|round }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 1234|round(-2) }} {{ 1.23456|round(3) }}"),
    ("f-safe-escape", "{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|escape }} {{ '<i>'|safe }} {{ none|e }}"),
    ("f-indent", "[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb'|indent(2, true) }}][{{ 'a\\n\\nb'|indent(width='> ', blank=true) }}][{{ 'one'|indent(first=true) }}]"),
    ("f-map", "{{ users|map(attribute='name')|list }} {{ users|map(attribute='tags.0', default='-')|list }} {{ words|map('upper')|list }} {{ [' a ', 'b ']|map('trim')|join(',') }} {{ users|map(attribute='missing')|list }}"),
    ("f-select", "{{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ xs|select('gt', 1)|list }} {{ xs|select('in', [1, 3])|list }} {{ users|selectattr('age', 'equalto', 31)|map(attribute='name')|list }} {{ users|rejectattr('tags')|map(attribute='name')|list }} {{ users|selectattr('tags', 'defined')|list|length }} {{ messages|selectattr('role', 'eq', 'user')|list|length }}"),
    ("f-unique", "{{ ['a', 'A', 'b', 'a']|unique|list }} {{ ['a', 'A']|unique(case_sensitive=true)|list }} {{ [1, 2, 1, true]|unique|list }} {{ users|unique(attribute='age')|map(attribute='name')|list }}"),
    ("f-sort", "{{ xs|sort }} {{ xs|sort(reverse=true) }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ users|sort(attribute='name')|map(attribute='name')|list }} {{ users|sort(attribute='age,name')|map(attribute='name')|list }} {{ users|sort(attribute='age', reverse=true)|map(attribute='name')|list }}"),
    ("f-dictsort", "{{ d|dictsort }} {{ d|dictsort(true) }} {{ d|dictsort(by='value') }} {{ d|dictsort(reverse=true) }}"),
    ("f-reverse", "{{ xs|reverse|list }} {{ s|reverse }} {{ (1, 2)|reverse|list }}"),
    ("f-sum-min-max", "{{ xs|sum }} {{ xs|sum(start=10) }} {{ users|sum(attribute='age') }} {{ [1.5, 2]|sum }} {{ xs|min }} {{ xs|max }} {{ words|min }} {{ words|max }} {{ words|max(case_sensitive=true) }} {{ users|max(attribute='age')|attr('name') }} {{ []|max }}|"),
    ("f-tojson", "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|tojson(sort_keys=true) }}|{{ 'é\\n\"<>&\\u0001'|tojson }}|{{ [1.0, none, true, 'x', (1, 2)]|tojson }}|{{ tools|tojson }}|{{ {'a': [], 'b': {}}|tojson(indent=4) }}|{{ d|tojson(separators=(',', ':')) }}|{{ 'é😀'|tojson(ensure_ascii=true) }}|{{ {1: 'i', 2.5: 'f', true: 'b', none: 'n'}|tojson }}|{{ d|tojson(indent='\\t') }}", {"tools": TOOLS}),
    ("f-batch-wordcount-center", "{{ range(5)|batch(2)|list }} {{ range(5)|batch(2, 'x')|list }} {{ 'one two, three_four 5'|wordcount }} [{{ 'ab'|center(7) }}] [{{ 'abc'|center(6) }}]"),
    ("f-striptags-format", "{{ '<p>Hello  <b>World</b></p>\\n <!-- c --> &amp; x'|striptags }} {{ '%s-%d'|format('a', 3) }} {{ '%05.1f|%x|%r'|format(3.14159, 255, 'q') }}"),
    ("f-chain", "{{ messages|map(attribute='role')|unique|list|join(',')|upper }}"),
    # ---- methods
    ("m-strip", "[{{ '  a  '.strip() }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\nthink\\n'.lstrip('\\n') }}][{{ 'ab\\n'.rstrip('\\n') }}][{{ '\\u00a0a\\u3000'.strip() }}]"),
    ("m-split", "{{ 'a,b,,c'.split(',') }} {{ '  a  b \\n c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'a b  c'.split(none, 1) }} {{ 'x</think>y</think>z'.split('</think>')[-1] }} {{ ''.split(',') }} {{ ''.split() }}"),
    ("m-startswith", "{{ s.startswith('Hell') }} {{ s.endswith('d') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith(('a', 'b')) }}"),
    ("m-misc", "{{ s.replace('l', 'L') }} {{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('z') }} {{ s.count('l') }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '-'.join(['a', 'b']) }} {{ 'x{}y{}'.format(1, 'b') }} {{ '{0}{name}'.format('p', name='n') }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'Ab'.isupper() }} {{ 'pre-x'.removeprefix('pre-') }} {{ s.index('W') }} {{ 'abc'.partition('b') }} {{ '7'.zfill(3) }} {{ 'ab'.ljust(4) }}|"),
    ("m-list", "{{ xs.index(1) }} {{ [1, 1, 2].count(1) }} {{ ('a', 'b').index('b') }}"),
    ("string-percent", "{{ '%s and %s' % ('a', 'b') }} {{ '%d%%' % 50 }} {{ 'x=%s' % none }} {{ '%(a)s!' % {'a': 1} }} {{ '%.2f' % 3.14159 }}"),
    ("strftime-len", "{{ strftime_now('%Y')|length }}{{ strftime_now('')|length }}"),
    ("reasoning-split", "{% set c = messages[1].content %}{% if '</think>' in c %}[{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}][{{ c.split('</think>')[-1].lstrip('\\n') }}]{% endif %}", {"messages": THINK_CONV}),
    ("message-attrs", "{% for m in messages %}{{ m.role }}:{{ m.tool_calls is defined }}:{{ m.name|default('-') }};{% endfor %}", {"messages": TOOL_CONV}),
    # ---- errors
    ("err-syntax-unclosed-if", "{% if t %}yes", None, "syntax"),
    ("err-syntax-unclosed-for", "line1\n{% for x in xs %}\n{{ x }}\n", None, "syntax"),
    ("err-syntax-bad-expr", "line1\n{{ 1 + }}", None, "syntax"),
    ("err-syntax-unknown-tag", "{% frobnicate %}", None, "syntax"),
    ("err-syntax-unknown-filter", "a\nb\n{{ x|nosuchfilter }}", None, "syntax"),
    ("err-syntax-unknown-test", "{{ x is nosuchtest }}", None, "syntax"),
    ("err-syntax-unclosed-var", "a {{ x ", None, "syntax"),
    ("err-syntax-endfor-mismatch", "{% if t %}{% endfor %}", None, "syntax"),
    ("err-syntax-bracket", "{{ (1 + 2 }}", None, "syntax"),
    ("err-syntax-comment", "{# not closed", None, "syntax"),
    ("err-extends", "{% extends 'base.html' %}", None, "runtime"),
    ("err-raise", "a\n{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}", None, "raise"),
    ("err-raise-in-macro", "{% macro check(m) %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('Bad role: ' ~ m.role) }}{% endif %}{% endmacro %}{% for m in messages %}{{ check(m) }}{% endfor %}", {"messages": TOOL_CONV}, "raise"),
    ("err-undefined-attr", "{{ missing.attr }}", None, "runtime"),
    ("err-undefined-add", "{{ missing + 1 }}", None, "runtime"),
    ("err-undefined-chain", "{{ d.c.e }}", None, "runtime"),
    ("err-list-append", "{{ xs.append(4) }}", None, "runtime"),
    ("err-dict-update", "{% set _ = d.update({'z': 1}) %}", None, "runtime"),
    ("err-type-add", "{{ 1 + 'a' }}", None, "runtime"),
    ("err-concat-precedence", "{{ 1 + 1 ~ 1 }}", None, "runtime"),
    ("err-unary-filter-precedence", "{{ -xs|length }}", None, "runtime"),
    ("err-div-zero", "{{ 1 / 0 }}", None, "runtime"),
    ("err-range-too-big", "{% for x in range(100001) %}{% endfor %}", None, "runtime"),
    ("err-tojson-undefined", "{{ missing|tojson }}", None, "runtime"),
    ("err-compare", "{{ 1 < 'a' }}", None, "runtime"),
    ("err-unpack", "{% for a, b in xs %}{% endfor %}", None, "runtime"),
    ("err-ns-underscore", "{% set ns = namespace(_x=1) %}", None, "runtime"),
    ("err-call-undefined", "{{ nosuchfunction() }}", None, "runtime"),
    ("err-recursion", "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", None, "runtime"),
    ("err-length-generator", "{{ xs|select('odd')|length }}", None, "runtime"),
]

# ---- whole chat templates in the style of the major families (written for these tests)

LLAMA3_STYLE = """{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{%- if system_message %}
{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}
{%- endif %}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

CHATML_STYLE = """{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""

MISTRAL_STYLE = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, roles must alternate user/assistant/user/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

GEMMA_STYLE = """{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"""

GEMMA3_STYLE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

TOOL_STYLE = """{%- set ns = namespace(system=none, has_tools=tools is not none and tools|length > 0) %}
{%- if messages[0].role == 'system' %}
    {%- set ns.system = messages[0].content %}
    {%- set messages = messages[1:] %}
{%- endif %}
{%- if ns.system or ns.has_tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if ns.system %}{{ ns.system }}{% endif %}
    {%- if ns.has_tools %}
        {{- '\\n\\n# Tools\\n\\nYou may call one or more functions.\\n<tools>' }}
        {%- for tool in tools %}
            {{- '\\n' }}{{- tool | tojson }}
        {%- endfor %}
        {{- '\\n</tools>' }}
    {%- endif %}
    {{- '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}{{ '\\n' + message.content }}{% endif %}
        {%- for tc in message.tool_calls %}
            {%- set call = tc.function if tc.function is defined else tc %}
            {{- '\\n<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
            {{- call.arguments if call.arguments is string else call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{ '<|im_start|>user' }}{% endif %}
        {{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{ '<|im_end|>\\n' }}{% endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
"""

QWEN3_STYLE = """{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == "user" or message.role == "system" %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""

MACRO_STYLE = """{%- macro render_content(content) -%}
    {%- if content is string -%}{{ content | trim }}
    {%- elif content is iterable -%}
        {%- for part in content if part.type == 'text' -%}{{ part.text | trim }}{% if not loop.last %} {% endif %}{%- endfor -%}
    {%- endif -%}
{%- endmacro -%}
{%- macro header(role, first=false) -%}
{{ '' if first else '\\n' }}### {{ role | capitalize }}:
{% endmacro -%}
{{ bos_token }}
{%- for message in messages -%}
{{ header(message.role, loop.first) }}{{ render_content(message.content) }}
{%- endfor -%}
{%- if add_generation_prompt %}{{ header('assistant') }}{% endif -%}
"""

PHI_STYLE = """{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"""

DEEPSEEK_STYLE = """{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"""

COMMAND_STYLE = """{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set system_message = 'Default preamble.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% if system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}"""

# gpt-oss's harmony format, the features its template leans on: macros with a default argument calling themselves
# over a JSON schema, type tests (iterable / string / mapping), "key" in message, a namespace holding none, a slice
# from loop.index, tojson of a dict, channels for thinking and the final answer, <|return|> on the last turn
HARMONY_STYLE = """{%- macro ts_type(spec, required, nullable=false) -%}
    {%- if spec.type == "array" -%}
        {{- (ts_type(spec['items'], required) if spec['items'] else "any") + "[]" }}
    {%- elif spec.type is defined and spec.type is iterable and spec.type is not string and spec.type is not mapping -%}
        {{- spec.type | join(" | ") }}
    {%- elif spec.type == "string" and spec.enum -%}
        {{- '"' + spec.enum | join('" | "') + '"' }}
    {%- elif spec.type == "object" and spec.properties -%}
        {{- "{ " }}
        {%- for name, sub in spec.properties.items() -%}
            {{- name }}{% if name not in (spec.required or []) %}?{% endif %}{{ ": " + ts_type(sub, spec.required or []) }}
            {%- if not loop.last %}, {% endif -%}
        {%- endfor -%}
        {{- " }" }}
    {%- else -%}
        {{- spec.type if spec.type is defined else "any" }}
    {%- endif -%}
    {%- if nullable %} | null{% endif -%}
{%- endmacro -%}
{{- "<|start|>system<|message|>Reasoning: " + (reasoning_effort if reasoning_effort is defined else "medium") + "<|end|>" }}
{%- if messages[0].role in ("system", "developer") %}
    {%- set developer = messages[0].content %}{%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set developer = "" %}{%- set loop_messages = messages %}
{%- endif %}
{%- if developer or tools %}
    {{- "<|start|>developer<|message|>" + developer }}
    {%- for tool in tools or [] %}
        {{- "\ntype " + tool.function.name + " = (_: " + ts_type(tool.function.parameters, []) + ") => any;" }}
    {%- endfor %}
    {{- "<|end|>" }}
{%- endif %}
{%- set last = namespace(tool=none) %}
{%- for message in loop_messages %}
    {%- if message.role == "assistant" and "tool_calls" in message and message.tool_calls %}
        {%- set later = namespace(final=false) %}
        {%- for m in loop_messages[loop.index:] %}
            {%- if m.role == "assistant" and "tool_calls" not in m %}{% set later.final = true %}{% endif %}
        {%- endfor %}
        {%- set call = message.tool_calls[0].function %}
        {%- if message.content and not later.final %}
            {{- "<|start|>assistant<|channel|>analysis<|message|>" + message.content + "<|end|>" }}
        {%- endif %}
        {{- "<|start|>assistant to=functions." + call.name + "<|channel|>commentary json<|message|>" + call.arguments | tojson + "<|call|>" }}
        {%- set last.tool = call.name %}
    {%- elif message.role == "assistant" %}
        {%- if loop.last and not add_generation_prompt and "reasoning_content" in message %}
            {{- "<|start|>assistant<|channel|>analysis<|message|>" + message.reasoning_content + "<|end|>" }}
        {%- endif %}
        {{- "<|start|>assistant<|channel|>final<|message|>" + message.content + ("<|return|>" if loop.last and not add_generation_prompt else "<|end|>") }}
        {%- set last.tool = none %}
    {%- elif message.role == "tool" %}
        {%- if last.tool is none %}{{ raise_exception("a tool message without a tool call before it") }}{% endif %}
        {{- "<|start|>functions." + last.tool + " to=assistant<|channel|>commentary<|message|>" + message.content | tojson + "<|end|>" }}
    {%- else %}
        {{- "<|start|>user<|message|>" + message.content + "<|end|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|start|>assistant{% endif %}"""

TEMPLATES = [("llama3", LLAMA3_STYLE), ("chatml", CHATML_STYLE), ("mistral", MISTRAL_STYLE), ("gemma", GEMMA_STYLE),
             ("gemma3", GEMMA3_STYLE), ("tools", TOOL_STYLE), ("qwen3", QWEN3_STYLE), ("macros", MACRO_STYLE),
             ("phi", PHI_STYLE), ("deepseek", DEEPSEEK_STYLE), ("command", COMMAND_STYLE), ("harmony", HARMONY_STYLE)]

CONVERSATIONS = [
    ("sys", {"messages": CONV}),
    ("nosys", {"messages": CONV_NOSYS}),
    ("gen", {"messages": CONV_NOSYS[:3], "add_generation_prompt": True}),
    ("tools", {"messages": TOOL_CONV, "tools": TOOLS}),
    ("think", {"messages": THINK_CONV}),
    ("think-gen", {"messages": THINK_CONV[:3], "add_generation_prompt": True, "enable_thinking": False}),
    ("parts", {"messages": [{"role": "user", "content": [{"type": "text", "text": " part one "},
                                                         {"type": "image"}, {"type": "text", "text": "two"}]},
                            {"role": "assistant", "content": "ok"}]}),
    ("bad-roles", {"messages": [U1, U1, A1]}),
]


def render(template, context):
    try:
        compiled = _compile_jinja_template(template)
    except jinja2.TemplateSyntaxError as e:
        return {"error": "syntax", "line": e.lineno, "message": e.message}
    except jinja2.TemplateError as e:  # e.g. TemplateAssertionError for an unknown filter
        return {"error": "syntax", "line": getattr(e, "lineno", None), "message": str(e)}
    try:
        return {"expected": compiled.render(**context)}
    except jinja2.TemplateError as e:
        if type(e) is jinja2.TemplateError:
            return {"error": "raise", "message": e.message}
        return {"error": "runtime", "message": str(e)}
    except Exception as e:  # noqa: BLE001 (Python errors inside the render)
        return {"error": "runtime", "message": f"{type(e).__name__}: {e}"}


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    rows = []
    for case in CASES:
        name, template = case[0], case[1]
        over = case[2] if len(case) > 2 and case[2] else {}
        want = case[3] if len(case) > 3 else None
        context = ctx(**over)
        res = render(template, context)
        got = res.get("error")
        if got != want:
            raise SystemExit(f"{name}: expected {want or 'a render'}, jinja2 gave {res}")
        rows.append({"name": name, "template": template, "context": context, **res})
    for tname, template in TEMPLATES:
        for cname, over in CONVERSATIONS:
            context = ctx(**over)
            res = render(template, context)
            rows.append({"name": f"tpl-{tname}-{cname}", "template": template, "context": context, **res})
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(len(rows), "cases,", sum("error" in r for r in rows), "of them errors ->", os.path.relpath(OUT))


if __name__ == "__main__":
    main()
