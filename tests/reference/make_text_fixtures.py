#!/usr/bin/env python3
"""Text-loader fixtures: what HF datasets' text loader (load_dataset("text",
data_files=...), the loader Axolotl picks for ds_type: text and .txt files)
makes of tricky files. Writes text/NAME.txt and, where datasets reads it,
text/NAME.jsonl: its rows, one JSON object a line. Files it refuses get no
.jsonl. test_data requires runtime/data.c's rt_text_rows to give the same
rows (and an error where datasets raises).
Needs datasets; run from the repository root:
  python3 tests/reference/make_text_fixtures.py
"""
import json
import os
import tempfile

import datasets

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text")
CASES = {
    "plain": b"first line\nsecond line\nthird line\n",
    "no_final_newline": b"one\ntwo",
    "crlf": b"a\r\nb\r\n\r\nc\r\n",
    "lone_cr": b"a\rb\r\rc",
    "mixed_breaks": b"a\r\n\rb\n\r\nc\r",
    "blank_lines": b"\n\nx\n\n\ny\n\n",
    "only_newline": b"\n",
    "empty": b"",
    "bom": b"\xef\xbb\xbfhello\nworld\n",
    "other_separators": "a\u2028b\u0085c\x0cd\x0be\x1cf\x1dg\x1eh\u2029i\n".encode(),
    "escapes": b'say "hi"\\there\ttab\x01ctl\x1f\n{"text": "not json"}\n',
    "unicode": "h\u00e9llo w\u00f6rld \u4f60\u597d \U0001f600\n".encode(),
    "bad_utf8": b"fine\nbro\xffken\n",
    "overlong": b"ok\n\xc0\xafslash\n",
    "surrogate": b"ok\n\xed\xa0\x80x\n",
    "truncated_seq": b"ok\nend\xe2\x82",
}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, data in CASES.items():
        path = os.path.join(HERE, name + ".txt")
        with open(path, "wb") as f:
            f.write(data)
        out = os.path.join(HERE, name + ".jsonl")
        try:
            with tempfile.TemporaryDirectory() as cache:
                rows = list(datasets.load_dataset("text", data_files=path, split="train", cache_dir=cache))
        except Exception as e:  # noqa: BLE001 - datasets wraps the decode error
            print(name, "refused:", type(e).__name__)
            if os.path.exists(out):
                os.remove(out)
            continue
        with open(out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(name, len(rows), "rows")


if __name__ == "__main__":
    main()
