#!/usr/bin/env python3
"""make_dicts.py OUT_DIR: libFuzzer dictionaries (-dict=) for fuzz_config,
fuzz_deepspeed and fuzz_jinja, from the key strings in the readers' sources,
so that mutations try the names the readers know."""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def strings(*paths, pat=r'"([a-z][a-z0-9_]{2,40})"'):
    out = set()
    for p in paths:
        with open(os.path.join(SRC, p)) as f:
            out |= set(re.findall(pat, f.read()))
    return sorted(out)


def esc(s):
    body = ""
    for ch in s:
        if ch in '"\\' or not (32 <= ord(ch) < 127):
            body += "\\x%02x" % ord(ch)
        else:
            body += ch
    return '"' + body + '"'


def write(path, entries):
    with open(path, "w") as f:
        for e in entries:
            f.write(esc(e) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    yaml_vals = ["true", "false", "null", "~", "- ", "\n  ", "auto", "1e9", "-1", "0", "[]", "{}", '"', "'",
                 "&a", "*a", "!!str", "? "]
    write(os.path.join(out, "config.dict"),
          [k + ": " for k in strings("frontend/config.c", "frontend/fsdp.c")] + yaml_vals)
    json_vals = ["true", "false", "null", '"auto"', "1e30", "-1", "0", "[]", "{}"]
    write(os.path.join(out, "deepspeed.dict"),
          ['"%s": ' % k for k in strings("frontend/deepspeed.c")] + json_vals)
    syntax = ["{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "for ", " in ", "endfor", "if ", "endif", "elif",
              "else", "set ", "macro", "endmacro", "call", "namespace(", "loop.", "|", " is ", " not ", "~", "[", "]",
              "(", ")", ",", ":", ".", "messages", "range(", "recursive"]
    write(os.path.join(out, "jinja.dict"), strings("runtime/jinja.c", pat=r'"([a-z_]{2,30})"') + syntax)


if __name__ == "__main__":
    main()
