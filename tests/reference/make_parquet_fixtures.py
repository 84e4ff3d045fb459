#!/usr/bin/env python3
"""make_parquet_fixtures.py [OUT_DIR]: small Parquet files as pyarrow writes
them, each with the rows HF datasets reads from it (pyarrow's to_pylist), for
test_parquet (runtime/parquet.c). Needs `pip install pyarrow datasets` (written
with pyarrow 26.0.1, datasets 5.2.0). OUT_DIR defaults to tests/reference/parquet/.

Each case is NAME.parquet and NAME.jsonl: one compact JSON object a row, as
axo renders a Parquet row (runtime/parquet.h): strings as strings, integers
and floats as numbers (NaN as null), binary without a string annotation as
null, dates and timestamps as their stored integer, maps as [key, value]
pairs. The files cover what Hub datasets are written with: pyarrow's
defaults (snappy, dictionary pages, data page v1, as datasets' to_parquet and
push_to_hub write), zstd and gzip, data page v2, several row groups and
pages, nested lists and structs (chat messages), nulls at every level, and
the non-dictionary encodings (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT)."""
import datetime
import json
import math
import os
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "parquet")

WORDS = ["the", "cat", "sat", "on", "a", "mat", "résumé", "naïve", "日本語", "emoji 🦙", "tab\there", "quote\"d",
         "new\nline", "", "long " * 30]


def words(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def render(v, t):
    """v (to_pylist's value of arrow type t) as axo writes it"""
    if v is None:
        return None
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [render(x, t.value_type) for x in v]
    if pa.types.is_map(t):
        return [[render(k, t.key_type), render(x, t.item_type)] for k, x in v]
    if pa.types.is_struct(t):
        return {f.name: render(v[f.name], f.type) for f in t}
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_large_binary(t):
        return None
    if pa.types.is_date32(t):
        return (v - datetime.date(1970, 1, 1)).days
    if pa.types.is_timestamp(t):
        return None  # replaced below from the raw integers
    if pa.types.is_decimal(t):
        return float(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def write(name, table, **kw):
    path = os.path.join(OUT, name + ".parquet")
    pq.write_table(table, path, **kw)
    back = pq.read_table(path)
    assert back.schema.equals(table.schema), name
    rows = back.to_pylist()
    ts = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            o = {fl.name: render(r[fl.name], fl.type) for fl in table.schema}
            for c in ts:
                raw = table.column(c).cast(pa.int64())[i].as_py()
                o[c] = raw
            f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{path}: {table.num_rows} rows, {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(7)

    # alpaca rows as datasets' to_parquet writes them: pyarrow's defaults; small row groups and pages so a file
    # has several of each
    n = 60
    alpaca = pa.table({
        "instruction": [words(rng, 1, 12) for _ in range(n)],
        "input": [words(rng, 0, 3) if rng.random() < 0.6 else "" for _ in range(n)],
        "output": [words(rng, 2, 40) for _ in range(n)],
    })
    write("alpaca_snappy", alpaca, row_group_size=25, data_page_size=512)

    # chat messages: list<struct<role, content>> with null content, empty and null lists; zstd; data page v2
    roles = ["system", "user", "assistant", "tool"]
    msgs = []
    for i in range(40):
        if i % 13 == 5:
            msgs.append(None)
            continue
        k = 0 if i % 11 == 3 else rng.randint(1, 6)
        m = []
        for j in range(k):
            m.append({"role": roles[j % 4] if j else "system", "content": None if rng.random() < 0.1 else words(rng, 0, 20)})
        msgs.append(m)
    chat = pa.table({
        "messages": pa.array(msgs, type=pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        "id": pa.array([f"conv-{i}" for i in range(40)]),
    })
    write("chat_zstd_v2", chat, compression="zstd", data_page_version="2.0", row_group_size=15, data_page_size=300)
    write("chat_snappy", chat)  # the same rows at pyarrow's defaults: one row group, one page a column

    # ShareGPT's shape (FineTome, SlimOrca): conversations of {from, value}, gzip
    conv = pa.table({
        "conversations": pa.array([[{"from": "human", "value": words(rng, 1, 10)}, {"from": "gpt", "value": words(rng, 1, 30)}]
                                   for _ in range(20)]),
        "source": pa.array(["infini-instruct-top-500k"] * 10 + ["WebInstructSub_axolotl"] * 10),
        "score": pa.array([rng.random() * 5 for _ in range(20)], type=pa.float64()),
    })
    write("sharegpt_gzip", conv, compression="gzip")

    # every scalar type, nested lists, structs in structs, maps
    m = 30
    types = pa.table({
        "b": pa.array([None if i % 7 == 0 else i % 3 == 0 for i in range(m)], type=pa.bool_()),
        "i8": pa.array([(-1) ** i * i * 4 for i in range(m)], type=pa.int8()),
        "i16": pa.array([(-1) ** i * i * 1000 for i in range(m)], type=pa.int16()),
        "i32": pa.array([None if i % 5 == 1 else (-1) ** i * i * 70000000 for i in range(m)], type=pa.int32()),
        "i64": pa.array([(-1) ** i * (2 ** 62 - i) for i in range(m)], type=pa.int64()),
        "u32": pa.array([4000000000 - i for i in range(m)], type=pa.uint32()),
        "u64": pa.array([2 ** 63 - 1 - i for i in range(m)], type=pa.uint64()),
        "f32": pa.array([float("nan") if i == 3 else (i - 15) / 7 for i in range(m)], type=pa.float32()),
        "f64": pa.array([-0.0 if i == 2 else 1e300 / (i + 1) if i % 2 else math.pi * i for i in range(m)]),
        "f16": pa.array([None] + [0.5 * i for i in range(1, m)], type=pa.float16()),
        "s": pa.array([None if i % 4 == 2 else words(rng, 0, 4) for i in range(m)]),
        "ls": pa.array([words(rng, 1, 3) for _ in range(m)], type=pa.large_string()),
        "bin": pa.array([bytes([i, 255 - i]) for i in range(m)], type=pa.binary()),
        "fsb": pa.array([bytes([i] * 4) for i in range(m)], type=pa.binary(4)),
        "d": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(m)]),
        "ts": pa.array([datetime.datetime(2024, 5, 1, 12, 0, i) for i in range(m)], type=pa.timestamp("us")),
        "dec": pa.array([None] + [__import__("decimal").Decimal(f"{i}.{i:02d}") for i in range(1, m)],
                        type=pa.decimal128(9, 2)),
        "li": pa.array([None if i % 9 == 4 else [j * i for j in range(i % 4)] for i in range(m)], type=pa.list_(pa.int64())),
        "lli": pa.array([[[words(rng, 1, 1) for _ in range(k)] for k in range(i % 3)] if i % 8 else [None, []]
                         for i in range(m)], type=pa.list_(pa.list_(pa.string()))),
        "st": pa.array([None if i % 6 == 5 else {"a": i, "inner": None if i % 4 == 0 else {"x": words(rng, 1, 2), "y": [i, None]}}
                        for i in range(m)]),
        "mp": pa.array([None if i % 10 == 9 else [(f"k{j}", j * i) for j in range(i % 3)] for i in range(m)],
                       type=pa.map_(pa.string(), pa.int64())),
    })
    write("types_gzip", types, compression="gzip", row_group_size=11)
    write("types_v2", types, compression="snappy", data_page_version="2.0", use_dictionary=False)

    # the non-dictionary encodings, uncompressed
    k = 200
    enc = pa.table({
        "id": pa.array([i * 3 - 250 + (i % 7) * 1000 for i in range(k)], type=pa.int64()),
        "n32": pa.array([None if i % 17 == 0 else (i * 7919) % 100003 - 50000 for i in range(k)], type=pa.int32()),
        "text": pa.array([words(rng, 0, 6) for _ in range(k)]),
        "url": pa.array([f"https://example.org/a/b/{i // 10}/{i}" for i in range(k)]),
        "x": pa.array([rng.uniform(-1, 1) for _ in range(k)], type=pa.float32()),
        "y": pa.array([rng.uniform(-1e6, 1e6) for _ in range(k)], type=pa.float64()),
    })
    write("encodings_plain", enc, compression="none", use_dictionary=False,
          column_encoding={"id": "DELTA_BINARY_PACKED", "n32": "DELTA_BINARY_PACKED", "text": "DELTA_LENGTH_BYTE_ARRAY",
                           "url": "DELTA_BYTE_ARRAY", "x": "BYTE_STREAM_SPLIT", "y": "BYTE_STREAM_SPLIT"},
          data_page_size=700)
    write("encodings_plain_v2", enc, compression="zstd", use_dictionary=False, data_page_version="2.0",
          column_encoding={"id": "DELTA_BINARY_PACKED", "n32": "DELTA_BINARY_PACKED", "text": "DELTA_LENGTH_BYTE_ARRAY",
                           "url": "DELTA_BYTE_ARRAY", "x": "BYTE_STREAM_SPLIT", "y": "BYTE_STREAM_SPLIT"})
    write("plain_none", enc, compression="none", use_dictionary=False)

    # DECIMAL values whose nearest double a rounding twice misses; LZ4_RAW (polars' and duckdb's lz4)
    import decimal
    drng = random.Random(11)
    decs = pa.table({
        "d18": pa.array([decimal.Decimal(drng.randrange(-10 ** 18 + 1, 10 ** 18)).scaleb(-3) for _ in range(40)],
                        type=pa.decimal128(18, 3)),
        "d38": pa.array([decimal.Decimal(drng.randrange(-10 ** 38 + 1, 10 ** 38)).scaleb(-10) for _ in range(40)],
                        type=pa.decimal128(38, 10)),
        "d9": pa.array([decimal.Decimal(drng.randrange(-10 ** 9 + 1, 10 ** 9)).scaleb(-7) for _ in range(40)],
                       type=pa.decimal128(9, 7)),
    })
    write("decimals", decs, store_decimal_as_integer=True)
    write("decimals_flba", decs)
    write("chat_lz4", chat, compression="lz4")

    # the bundled toy datasets as a user converts them, and as push_to_hub writes a Hub dataset: HF datasets'
    # from_json, then to_parquet (tests/e2e/parquet.sh trains on both and compares)
    import datasets
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs", "data")
    for name, rows in (("toy_alpaca", None), ("toy_chat", None), ("toy_count", 200)):
        ds = datasets.Dataset.from_json(os.path.join(src, name + ".jsonl"), cache_dir=os.path.join(OUT, ".cache"))
        if rows:
            ds = ds.select(range(rows))
        ds.to_parquet(os.path.join(OUT, name + ".parquet"))
        print(f"{name}.parquet: {len(ds)} rows, {os.path.getsize(os.path.join(OUT, name + '.parquet'))} bytes")
    __import__("shutil").rmtree(os.path.join(OUT, ".cache"), ignore_errors=True)

    # no rows; a column that is null in every row
    write("empty", alpaca.slice(0, 0))
    write("all_null", pa.table({"text": pa.array([None] * 5, type=pa.string()), "n": pa.array([1, 2, 3, 4, 5])}))


if __name__ == "__main__":
    main()
