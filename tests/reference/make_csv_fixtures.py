#!/usr/bin/env python3
"""CSV-loader fixtures: what HF datasets' csv loader (load_dataset("csv",
data_files=...): pandas.read_csv in chunks of 10,000 rows, each chunk cast to
the first one's Arrow types; what Axolotl uses for ds_type: csv and .csv
files) makes of tricky files. Writes csv/NAME.csv (or .tsv, read with
sep "\\t" as datasets reads .tsv) and, where datasets reads it,
csv/NAME.jsonl: its rows, one JSON object a line, with NaN and infinities as
null and integers above 2^63 - 1 as floats (as runtime/csv.h renders them).
Files datasets refuses get no .jsonl. test_data requires runtime/csv.c's
rt_csv_rows to give the same rows, and an error where datasets raises.
Needs datasets and pandas; run from the repository root:
  python3 tests/reference/make_csv_fixtures.py
"""
import json
import math
import os
import tempfile

import datasets
import pandas

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csv")
N = 10000  # datasets' CsvConfig.chunksize
CASES = {
    "ints": b"a,b\n1,2\n3,4\n",
    "int_na": b"a,b\n1,2\n,4\n",
    "floats": b"a\n1.5\n2\n.5\n5.\n1E5\n00.5\n1.5e+3\n-0.25\n 7.5 \n",
    "bools": b"a,b\nTrue,true\nFalse,FALSE\n",
    "bool_na": b"a,b\nTrue,1\nNA,2\n",
    "spaces": b"a,b\n 1, x\n2 ,y \n +3 ,z\n",
    "infinities": b"a,b\n1e3,x\ninf,y\n-Infinity,z\n1e400,w\n",
    "nas": b"a,b\nNA,1\nN/A,2\nnull,3\nNone,4\nnan,5\n-nan,6\n#N/A,7\n<NA>,8\nn/a,9\nNULL,10\nNaN,11\n#NA,12\n-NaN,13\n",
    "nas_str": b"a\nhello\nNA\nNone\n\n",
    "quoted": b'a,b\n"1","x,y"\n"2","say ""hi"""\n',
    "quoted_na": b'a\nx\n"NA"\n""\n',
    "newline_in_quote": b'a,b\n"line1\nline2",2\n"crlf\r\ninside",3\n',
    "big_int": b"a\n9223372036854775808\n1\n",
    "neg_big": b"a\n-9223372036854775809\n",
    "too_big": b"a\n18446744073709551616\n",
    "neg_and_big": b"a\n18446744073709551615\n-1\n",
    "hex_and_more": b"a\n0x10\n1_0\n1d5\n1e\n-\n.\n1.2.3\n",
    "dup_header": b"a,a,a.1,a.1,a\n1,2,3,4,5\n",
    "empty_header": b"a,,b,\n1,2,3,4\n",
    "fewer_fields": b"a,b,c\n1,2\n3\n",
    "more_fields": b"a,b\n1,2\n3,4,5\n",
    "blank_lines": b"\n\na,b\n\n1,2\n   \n\t\n3,4\n\n",
    "space_fields": b"a,b\n  ,x\n",
    "crlf": b"a,b\r\n1,x\r\n2,y\r\n",
    "cr": b"a,b\r1,x\r2,y\r",
    "bom": b"\xef\xbb\xbfa,b\n1,2\n",
    "no_final_newline": b"a,b\n1,2",
    "only_header": b"a,b\n",
    "empty": b"",
    "mixed": b"a,b\n1,True\nx,1\n",
    "quote_mid": b'a\nab"c\n"ab"c\n "x"\n',
    "eof_in_quote": b'a\n"abc\n',
    "unicode": "a,b\nh\u00e9llo,\u4f60\u597d \U0001f600\n".encode(),
    "bad_utf8": b"a\nok\n\xff\n",
    "header_spaces": b" a , b \n1,2\n",
    "alpaca": b'instruction,input,output\n"Add the numbers","2, 3","5"\nName a colour,,"Blue, like the sky."\n'
              b'"Multi\nline","",done\n',
    # chunks: pandas types each 10,000 rows on its own; datasets casts later ones to the first one's types
    "chunk_int_then_na": b"a\n" + b"1\n" * N + b"NA\n3\n",
    "chunk_int_then_float": b"a\n" + b"1\n" * N + b"2.5\n",
    "chunk_int_then_whole_float": b"a\n" + b"1\n" * N + b"2.0\n",
    "chunk_str_then_int": b"a\n" + b"x\n" * N + b"007\n",
    "chunk_str_then_bool": b"a\n" + b"x\n" * N + b"True\n",
    "chunk_float_then_int": b"a\n" + b"1.5\n" * N + b"2\n",
    "chunk_na_then_str": b"a,b\n" + b",1\n" * N + b"x,2\n",
    "chunk_int_then_str": b"a\n" + b"1\n" * N + b"x\n",
}
TSV = {"tabs": b"a\tb\n1\tx,y\n\"q\tq\"\t2\n"}


def render(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, int) and not isinstance(v, bool) and v > 2**63 - 1:
        return float(v)
    return v


def main():
    os.makedirs(HERE, exist_ok=True)
    for sep, cases, ext in ((",", CASES, ".csv"), ("\t", TSV, ".tsv")):
        for name, data in cases.items():
            path = os.path.join(HERE, name + ext)
            with open(path, "wb") as f:
                f.write(data)
            out = os.path.join(HERE, name + ".jsonl")
            try:
                with tempfile.TemporaryDirectory() as cache:
                    kw = {"sep": "\t"} if sep == "\t" else {}
                    rows = list(datasets.load_dataset("csv", data_files=path, split="train", cache_dir=cache, **kw))
            except Exception as e:  # noqa: BLE001 - datasets wraps pandas' and pyarrow's errors
                print(name, "refused:", str(e.__cause__ or e).splitlines()[0][:100])
                if os.path.exists(out):
                    os.remove(out)
                continue
            with open(out, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps({k: render(v) for k, v in r.items()}, ensure_ascii=False) + "\n")
            print(name, len(rows), "rows")
    print("datasets", datasets.__version__, "pandas", pandas.__version__)


if __name__ == "__main__":
    main()
