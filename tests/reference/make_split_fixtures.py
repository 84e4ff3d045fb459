#!/usr/bin/env python3
"""make_split_fixtures.py OUT.json: which files HF datasets takes for a split
of a repo without a loading script (its split inference, or data_files), on
file lists written into a temporary folder, for test_hub (frontend/hub.c's
fe_hub_split_files). Needs `pip install datasets` (5.x); the split inference
of a Hub repo is the same as of a local folder (datasets' get_data_patterns
over the repo's paths). Each case: files, split, data_files (or null) ->
the sorted files of the split, or null when datasets raises."""
import json
import os
import sys
import tempfile

import datasets
from datasets.data_files import DataFilesDict, get_data_patterns, sanitize_patterns
from datasets.packaged_modules import _ALL_ALLOWED_EXTENSIONS

CASES = [
    (["train.jsonl"], "train", None),
    (["alpaca_data_cleaned.json"], "train", None),
    (["data/train.jsonl", "data/test.jsonl", "README.md"], "train", None),
    (["data/train.jsonl", "data/test.jsonl", "README.md"], "test", None),
    (["data/train-00000-of-00001.parquet", "dataset_infos.json"], "train", None),
    (["data.jsonl", "config.json"], "train", None),
    (["data.jsonl", ".github/meta.json"], "train", None),
    (["data.jsonl", "train.parquet"], "train", None),
    (["data.jsonl", "test.csv"], "train", None),
    (["data.jsonl", "test.csv"], "test", None),
    (["train.jsonl", "train_v2/data.jsonl"], "train", None),
    (["training_set/x.jsonl", "test.jsonl"], "train", None),
    (["data/train-00000-of-00001.jsonl", "train.jsonl"], "train", None),
    (["data/train_sft-00000-of-00001.jsonl", "data/test_sft-00000-of-00001.jsonl"], "train", None),
    (["data/train_sft-00000-of-00001.jsonl", "data/test_sft-00000-of-00001.jsonl"], "train_sft", None),
    (["dev.jsonl", "train.jsonl"], "validation", None),
    (["my_train_file.jsonl", "other.jsonl"], "train", None),
    (["trainer.jsonl", "x.jsonl"], "train", None),
    (["a/train/x.jsonl", "a/test/y.jsonl"], "train", None),
    (["__pycache__/x.jsonl", "y.jsonl"], "train", None),
    (["train-0.jsonl", "train-1.jsonl"], "train", None),
    (["train.jsonl", "sub/x.jsonl"], "train", ["**/*.jsonl"]),
    (["a/b/c.jsonl", "a/d.jsonl"], "train", ["a/**"]),
    (["train.jsonl", "extra.jsonl"], "train", ["extra.jsonl"]),
    (["train.jsonl", "extra.jsonl"], "test", ["extra.jsonl"]),
    (["data/x.jsonl", "data/y.json"], "train", ["data/*"]),
    (["train.jsonl", "config.json"], "train", ["config.json"]),
    (["x.JSONL"], "train", None),
    (["images/a.png", "train.jsonl"], "train", None),
    (["val.jsonl", "validation.jsonl", "train.jsonl"], "validation", None),
    (["data/TRAIN.jsonl"], "train", None),
    (["2023-train.jsonl", "2023-test.jsonl"], "train", None),
    (["test/a.jsonl", "test/train.jsonl"], "train", None),
    (["logs/run.eval", "train.jsonl"], "train", None),
]


def run(files, split, data_files):
    with tempfile.TemporaryDirectory() as d:
        for f in files:
            p = os.path.join(d, f)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").write("{}\n")
        try:
            pats = sanitize_patterns(data_files) if data_files is not None else get_data_patterns(d)
            dfd = DataFilesDict.from_patterns(pats, d, allowed_extensions=_ALL_ALLOWED_EXTENSIONS)
        except Exception as e:  # noqa: BLE001 - any refusal is "no split"
            return None, type(e).__name__
        if split not in dfd:
            return None, "no split %s (has %s)" % (split, sorted(dfd))
        return sorted(os.path.relpath(str(x), d) for x in dfd[split]), None


def main():
    out = []
    for files, split, data_files in CASES:
        got, why = run(files, split, data_files)
        out.append({"files": files, "split": split, "data_files": data_files, "expect": got, "why": why})
    with open(sys.argv[1], "w") as f:
        json.dump({"datasets": datasets.__version__, "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
