#!/usr/bin/env python3
"""make_split_fixtures.py OUT.json: which files HF datasets reads for a split
of a repo without a loading script, on file lists written into a temporary
folder, for test_hub (frontend/hub.c's fe_hub_split_files). Needs `pip
install datasets` (5.x). Each case runs datasets' own load_dataset_builder
(folder, name=, data_files=): its split inference (get_data_patterns), the
dataset card's `configs` (README.md's YAML block, .huggingface.yaml) and the
format inference that leaves out files of another builder; a Hub repo goes
the same way (its module factory mirrors the local one). Each case: files,
split, data_files, name, readme, hf_yaml -> the split's files in datasets'
order, or null when datasets raises (error_says: what axo's error holds)."""
import json
import os
import sys
import tempfile

import datasets

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


# Dataset cards: README.md's YAML `configs` (and .huggingface.yaml's, which replace them) choose a named
# configuration's files; `name` (Axolotl's datasets[].name) picks one. Each: files, split, data_files, name,
# readme, hf_yaml, and the words axo's error must hold when datasets raises.
SMOL = """---
license: apache-2.0
configs:
- config_name: all
  data_files:
  - split: train
    path: data/all/train-*
  - split: test
    path: data/all/test-*
- config_name: magpie
  data_files:
  - split: train
    path: data/magpie/train-*
---
# a card
"""
SMOL_FILES = ["data/all/train-00000-of-00001.parquet", "data/all/test-00000-of-00001.parquet",
              "data/magpie/train-00000-of-00002.parquet", "data/magpie/train-00001-of-00002.parquet"]
ULTRA = """---
dataset_info:
  features:
  - name: prompt
    dtype: string
configs:
- config_name: default
  data_files:
  - split: train_sft
    path: data/train_sft-*
  - split: test_sft
    path: data/test_sft-*
---
"""
ULTRA_FILES = ["data/train_sft-00000-of-00003-a.parquet", "data/train_sft-00001-of-00003-b.parquet",
               "data/train_sft-00002-of-00003-c.parquet", "data/test_sft-00000-of-00001-d.parquet"]
CARD_CASES = [
    (SMOL_FILES, "train", None, None, SMOL, None, "pick one"),
    (SMOL_FILES, "train", None, "magpie", SMOL, None, None),
    (SMOL_FILES, "train", None, "all", SMOL, None, None),
    (SMOL_FILES, "test", None, "all", SMOL, None, None),
    (SMOL_FILES, "test", None, "magpie", SMOL, None, "no split"),
    (SMOL_FILES, "train", None, "nope", SMOL, None, "no configuration"),
    (SMOL_FILES, "train", None, None, SMOL.replace("- config_name: all\n", "- config_name: all\n  default: true\n"), None, None),
    (SMOL_FILES, "train", ["data/magpie/*.parquet"], None, SMOL, None, None),
    (SMOL_FILES, "train", ["data/magpie/*.parquet"], "all", SMOL, None, None),
    (ULTRA_FILES, "train_sft", None, None, ULTRA, None, None),
    (ULTRA_FILES, "train", None, None, ULTRA, None, "no split"),
    (ULTRA_FILES, "test_sft", None, "default", ULTRA, None, None),
    (["data.jsonl", "other.jsonl"], "train", None, None, "---\nconfigs:\n- config_name: default\n  data_files: data.jsonl\n---\n", None, None),
    (["a/x.jsonl", "b/y.jsonl", "c/z.jsonl"], "train", None, None,
     "---\nconfigs:\n- config_name: default\n  data_files:\n  - a/*.jsonl\n  - c/*.jsonl\n---\n", None, None),
    (["sub/train.jsonl", "sub/test.jsonl", "train.jsonl"], "test", None, "s", None,
     "configs:\n- config_name: s\n  data_dir: sub\n- config_name: t\n  data_files: train.jsonl\n", None),
    (["sub/train.jsonl", "sub/test.jsonl", "train.jsonl"], "train", None, "t", None,
     "configs:\n- config_name: s\n  data_dir: sub\n- config_name: t\n  data_files: train.jsonl\n", None),
    (["train.jsonl", "old.jsonl"], "train", None, None,
     "---\nconfigs:\n- config_name: default\n  data_files: old.jsonl\n---\n",
     "configs:\n- config_name: default\n  data_files: train.jsonl\n", None),
    (["train.jsonl"], "train", None, None, "---\nlicense: mit\ntags: [a, b]\n---\ntext\n", None, None),
    (["train.jsonl"], "train", None, None, "no card block here\n---\nconfigs: []\n---\n", None, None),
    (["train.jsonl"], "train", None, None, "---\r\nconfigs:\r\n- config_name: c\r\n  data_files: train.jsonl\r\n---\r\n", None, None),
    (["train.jsonl"], "train", None, "default", None, None, None),
    (["train.jsonl"], "train", None, "x", None, None, "no configuration"),
    (["a.jsonl", "b.jsonl"], "train", None, None,
     "---\nconfigs:\n- config_name: a\n  data_files: a.jsonl\n  default: true\n- config_name: b\n  data_files: b.jsonl\n  default: true\n---\n",
     None, "several default"),
    (["a.jsonl"], "train", None, None, "---\nconfigs:\n- data_files: a.jsonl\n---\n", None, "config_name"),
    (["a.jsonl"], "train", None, None, "---\nconfigs:\n- config_name: x\n  data_files: 3\n---\n", None, "data_files"),
    # module inference: the most common extension, parquet first in a tie; the others are left out
    (["data.jsonl", "train.parquet"], "train", None, None, None, None, None),
    (["a.jsonl", "b.jsonl", "c.parquet"], "train", None, None, None, None, None),
    (["train.parquet", "test.jsonl"], "train", None, None, None, None, "one format"),
]


# Cases a review of the first version found to differ from datasets (files read twice, missing literal paths,
# null configs, a BOM, dataset_info's default, duplicate config names, "./" and "**" in patterns, data_dir
# forms, PyYAML's scalar types, Unicode split names, many suffixes or splits, ...): (label, files, split,
# data_files, name, readme, hf_yaml), checked for the files or for an error.
def card(body):
    return "---\n" + body + "---\n"

AB = "configs:\n- config_name: a\n  data_files: a.jsonl\n- config_name: b\n  data_files: b.jsonl\n"
RSMOL = card("configs:\n- config_name: all\n  data_files:\n  - split: train\n    path: data/all/train-*\n"
            "- config_name: magpie\n  data_files:\n  - split: train\n    path: data/magpie/train-*\n")
RSMOL_FILES = ["data/all/train-00000-of-00001.jsonl", "data/magpie/train-00000-of-00001.jsonl"]
many = []
for i, c in enumerate("abcde"):
    many.append("%s.%s.md" % (c, ".".join("%s%02d" % (c, k) for k in range(60))))
many += ["f%d.jsonl" % k for k in range(8)]

REVIEW_CASES = [
    ("dup: two inferred patterns match one file", ["train_train.jsonl", "x.jsonl"], "train", None, None, None, None),
    ("dup: dir patterns", ["a_train/train/x.jsonl"], "train", None, None, None, None),
    ("dup: user data_files overlap", ["a.jsonl", "b.jsonl"], "train", ["a.jsonl", "*.jsonl"], None, None, None),
    ("dup: card data_files overlap", ["a.jsonl", "b.jsonl"], "train", None, None,
     card("configs:\n- config_name: default\n  data_files: [a.jsonl, '*.jsonl']\n"), None),
    ("missing literal in user data_files", ["train.jsonl"], "train", ["train.jsonl", "missing.jsonl"], None, None, None),
    ("missing literal in card data_files", ["a.jsonl"], "train", None, None,
     card("configs:\n- config_name: default\n  data_files: [a.jsonl, missing.jsonl]\n"), None),
    ("configs: null in README", ["train.jsonl"], "train", None, None, card("configs:\n"), None),
    ("configs: {} in README", ["train.jsonl"], "train", None, None, card("configs: {}\n"), None),
    (".huggingface.yaml configs: null overrides README", ["a.jsonl", "b.jsonl"], "train", None, None, card(AB), "configs:\n"),
    (".huggingface.yaml is a list", ["a.jsonl"], "train", None, None, None, "- x\n- y\n"),
    ("BOM before README's ---", ["a.jsonl", "b.jsonl"], "train", None, None,
     "\ufeff" + card("configs:\n- config_name: default\n  data_files: a.jsonl\n"), None),
    ("closing --- with trailing spaces", ["a.jsonl", "b.jsonl"], "train", None, None,
     "---\nconfigs:\n- config_name: default\n  data_files: a.jsonl\n---  \n# t\n", None),
    ("default from dataset_info's config_name", RSMOL_FILES, "train", None, None,
     SMOL.replace("configs:", "dataset_info:\n  config_name: magpie\nconfigs:"), None),
    ("numeric config_name elsewhere, name a", ["a.jsonl", "b.jsonl"], "train", None, "a", None,
     "configs:\n- config_name: a\n  data_files: a.jsonl\n- config_name: 2020\n  data_files: b.jsonl\n"),
    ("config_name: no (bool) elsewhere, name a", ["a.jsonl", "b.jsonl"], "train", None, "a", None,
     "configs:\n- config_name: a\n  data_files: a.jsonl\n- config_name: no\n  data_files: b.jsonl\n"),
    ("duplicate config_name", ["a.jsonl", "b.jsonl"], "train", None, None, None,
     "configs:\n- config_name: x\n  data_files: a.jsonl\n- config_name: x\n  data_files: b.jsonl\n"),
    ("./ in card data_files", ["a.jsonl", "b.jsonl"], "train", None, None,
     card("configs:\n- config_name: default\n  data_files: ./a.jsonl\n"), None),
    ("./ in user data_files", ["a.jsonl", "b.jsonl"], "train", ["./a.jsonl"], None, None, None),
    ("**.jsonl in user data_files", ["a.jsonl", "sub/b.jsonl"], "train", ["**.jsonl"], None, None, None),
    ("data/**.jsonl in user data_files", ["data/a.jsonl", "data/sub/b.jsonl"], "train", ["data/**.jsonl"], None, None, None),
    ("data_dir with trailing slash", ["sub/x.jsonl", "y.jsonl"], "train", None, None, None,
     "configs:\n- config_name: default\n  data_dir: sub/\n"),
    ("data_dir ./sub", ["sub/x.jsonl", "y.jsonl"], "train", None, None, None,
     "configs:\n- config_name: default\n  data_dir: ./sub\n"),
    ("data_dir + data_files", ["sub/x.jsonl", "y.jsonl"], "train", None, None, None,
     "configs:\n- config_name: default\n  data_dir: sub\n  data_files: '*.jsonl'\n"),
    ("explicit data_files: null in first config", ["a.jsonl"], "train", None, None, None,
     "configs:\n- config_name: default\n  data_files: null\n"),
    ("default: 0b0 (PyYAML int 0)", ["a.jsonl", "b.jsonl"], "train", None, None, None,
     "configs:\n- config_name: a\n  data_files: a.jsonl\n  default: 0b0\n- config_name: b\n  data_files: b.jsonl\n"),
    ("default: 0.5e3 (PyYAML str)", ["a.jsonl", "b.jsonl"], "train", None, None, None,
     "configs:\n- config_name: a\n  data_files: a.jsonl\n  default: 0.0e3\n- config_name: b\n  data_files: b.jsonl\n"),
    ("non-ASCII shard split name", ["data/tr\u00e9in-00000-of-00001.jsonl"], "tr\u00e9in", None, None, None, None),
    ("non-ASCII card split name", ["a.jsonl"], "tr\u00e9in", None, None, None,
     "configs:\n- config_name: default\n  data_files:\n  - split: tr\u00e9in\n    path: a.jsonl\n"),
    ("more than 256 distinct suffixes", many, "train", None, None, None, None),
    ("card config: module from whole repo, config reads another format", ["sub/a.jsonl", "b.parquet", "c.parquet"], "train",
     None, None, None, "configs:\n- config_name: s\n  data_dir: sub\n"),
    ("user data_files + card, local folder (name ignored?)", ["a.jsonl", "b.jsonl"], "train", ["b.jsonl"], "zzz", None, AB),
    ("65 shard splits", ["data/s%02d-00000-of-00001.jsonl" % i for i in range(65)], "s64", None, None, None, None),
    ("x.parquet.jsonl", ["x.parquet.jsonl"], "train", None, None, None, None),
    ("metadata.jsonl + data.parquet", ["metadata.jsonl", "a.parquet"], "train", None, None, None, None),
]


# Split slices (Axolotl keeps split: train[:500] as HF datasets reads it): (spec, rows of the split) -> the
# absolute [from, to) datasets' ReadInstruction makes of it, or null when it raises.
SLICES = [(s, n) for n in (0, 7, 100, 250, 1003) for s in (
    "train", "train[:]", "train[:5]", "train[5:]", "train[-3:]", "train[:-3]", "train[2:4]", "train[4:2]",
    "train[:10%]", "train[10%:20%]", "train[-10%:]", "train[:-5%]", "train[33%:67%]", "train[:50%]", "train[:1_0]",
    "train[:10%](pct1_dropremainder)", "train[-1%:](pct1_dropremainder)", "train[:15%](closest)", "train[:2000]",
    "train[:101%]", "train[:10](closest)", "train[1__0:]", "train[_1:]", "train[:5%", "train(closest)", "tr-ain[:5]",
    "validation.x[:3]")]


def slice_case(spec, n):
    from datasets.arrow_reader import ReadInstruction
    try:
        ri = ReadInstruction.from_spec(spec)
        split = str(spec).split("[")[0].split("(")[0]
        absi = ri.to_absolute({split: n})
        return [absi[0].from_, absi[0].to], None
    except Exception as e:  # noqa: BLE001 - any refusal
        return None, "%s: %s" % (type(e).__name__, str(e).splitlines()[0])


def write_tree(d, files, readme, hf_yaml):
    for f in files:
        p = os.path.join(d, f)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").write("{}\n")
    if readme is not None:
        open(os.path.join(d, "README.md"), "w", newline="").write(readme)
    if hf_yaml is not None:
        open(os.path.join(d, ".huggingface.yaml"), "w").write(hf_yaml)


def run(files, split, data_files, name=None, readme=None, hf_yaml=None):
    """the files load_dataset(folder, name=name, data_files=data_files, split=split) reads, as datasets' own
    module factory and builder choose them (its split inference, the card's configs, the format inference)"""
    with tempfile.TemporaryDirectory() as d:
        write_tree(d, files, readme, hf_yaml)
        try:
            b = datasets.load_dataset_builder(d, name=name, data_files=data_files)
        except Exception as e:  # noqa: BLE001 - any refusal is an error
            return None, "%s: %s" % (type(e).__name__, str(e).splitlines()[0])
        dfd = b.config.data_files
        if split not in dfd:
            return None, "no split %s (has %s)" % (split, sorted(str(s) for s in dfd))
        return [os.path.relpath(str(x), d) for x in dfd[split]], None  # datasets' order: the rows' order


def main():
    out = []
    for files, split, data_files in CASES:
        got, why = run(files, split, data_files)
        out.append({"files": files, "split": split, "data_files": data_files, "expect": got, "why": why})
    for files, split, data_files, name, readme, hf_yaml, must in CARD_CASES:
        got, why = run(files, split, data_files, name, readme, hf_yaml)
        listed = files + (["README.md"] if readme is not None else []) + ([".huggingface.yaml"] if hf_yaml is not None else [])
        assert (got is None) == (must is not None), (files, name, got, why)
        out.append({"files": sorted(listed), "split": split, "data_files": data_files, "name": name, "readme": readme,
                    "hf_yaml": hf_yaml, "expect": got, "why": why, "error_says": must})
    for label, files, split, data_files, name, readme, hf_yaml in REVIEW_CASES:
        got, why = run(files, split, data_files, name, readme, hf_yaml)
        listed = files + (["README.md"] if readme is not None else []) + ([".huggingface.yaml"] if hf_yaml is not None else [])
        out.append({"label": label, "files": sorted(listed), "split": split, "data_files": data_files, "name": name,
                    "readme": readme, "hf_yaml": hf_yaml, "expect": got, "why": why, "error_says": None})
    slices = []
    for spec, n in SLICES:
        got, why = slice_case(spec, n)
        slices.append({"spec": spec, "rows": n, "expect": got, "why": why})
    with open(sys.argv[1], "w") as f:
        json.dump({"datasets": datasets.__version__, "cases": out, "slices": slices}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
