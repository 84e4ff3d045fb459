#!/usr/bin/env python3
"""Local check (nothing committed as data): real chat templates, rendered by
jinja2 (transformers' environment) and by axo's engine, compared.

Templates: every .jinja Axolotl ships (axolotl/utils/chat_templates/templates)
plus the chat_template of every tokenizer_config.json given as an argument.
Each is rendered with the conversations of make_jinja_fixtures.py (system,
no system, generation prompt, tools, thinking, content parts, bad roles) by
jinja2 and by `build/test_jinja --render`; a conversation counts as equal
when both give the same text, or both fail (with the same message for
raise_exception). Prints one line per template and a summary.

  python3 tests/reference/check_jinja_templates.py [--bin build/test_jinja] [tokenizer_config.json ...]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import jinja2
from transformers.utils.chat_template_utils import _alias_reasoning_fields, _compile_jinja_template

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_jinja_fixtures import CONVERSATIONS, ctx  # noqa: E402


def jinja2_render(template, context):
    try:
        t = _compile_jinja_template(template)
    except jinja2.TemplateError as e:
        return ("error", None)
    try:
        return ("ok", t.render(**context))
    except jinja2.TemplateError as e:
        if type(e) is jinja2.TemplateError:
            return ("raise", e.message)
        return ("error", None)
    except Exception:  # noqa: BLE001
        return ("error", None)


def axo_render(binary, tpl_path, context):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(context, f, ensure_ascii=False)
        cpath = f.name
    try:
        p = subprocess.run([binary, "--render", tpl_path, cpath], capture_output=True, timeout=60)
    finally:
        os.unlink(cpath)
    if p.returncode == 0:
        return ("ok", p.stdout.decode("utf-8"))
    err = p.stderr.decode("utf-8", "replace").strip()
    if ": raised: " in err:
        return ("raise", err.split(": raised: ", 1)[1])
    return ("error", err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join("build", "test_jinja"))
    ap.add_argument("-v", action="store_true", help="show the first difference of each template")
    ap.add_argument("configs", nargs="*")
    a = ap.parse_args()
    import importlib.util  # the package itself imports torch; only its folder is needed
    spec = importlib.util.find_spec("axolotl")
    tdir = os.path.join(os.path.dirname(spec.origin), "utils", "chat_templates", "templates")
    templates = [(os.path.basename(p)[:-6], open(p, encoding="utf-8").read())
                 for p in sorted(glob.glob(os.path.join(tdir, "*.jinja")))]
    for c in a.configs:
        tpl = json.load(open(c, encoding="utf-8")).get("chat_template")
        if isinstance(tpl, list):
            tpl = {x["name"]: x["template"] for x in tpl}.get("default")
        if tpl:
            templates.append((c, tpl))
    same_all = 0
    kinds = {"ok": 0, "raise": 0, "error": 0}
    for name, template in templates:
        with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False, encoding="utf-8") as f:
            f.write(template)
            tpath = f.name
        same, first_diff = 0, None
        for cname, over in CONVERSATIONS:
            context = ctx(**over)
            context["messages"] = _alias_reasoning_fields(context["messages"])
            want = jinja2_render(template, context)
            got = axo_render(a.bin, tpath, context)
            ok = want == got or (want[0] == "error" and got[0] == "error")
            same += ok
            kinds[want[0]] += ok
            if not ok and first_diff is None:
                first_diff = (cname, want, got)
        os.unlink(tpath)
        same_all += same == len(CONVERSATIONS)
        print(f"{'SAME' if same == len(CONVERSATIONS) else 'DIFF'} {name}: {same}/{len(CONVERSATIONS)} conversations")
        if first_diff and a.v:
            cname, want, got = first_diff
            print(f"   {cname}:\n   jinja2: {want!r}\n   axo:    {got!r}")
    print(f"{same_all} of {len(templates)} templates render identically on every conversation "
          f"({kinds['ok']} equal texts, {kinds['raise']} equal raise_exception messages, {kinds['error']} both "
          "failing otherwise)")


if __name__ == "__main__":
    main()
