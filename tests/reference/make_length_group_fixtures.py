#!/usr/bin/env python3
"""group_by_length fixtures: transformers' get_length_grouped_indices (what
HF Trainer's LengthGroupedSampler yields) on samples whose shuffle is given.

Runs the function from transformers' own source (trainer_pt_utils.py, read
with ast) with torch stood in by a list type: torch.randperm returns the
identity, so the samples' order is the one the test gives (axo shuffles with
its own permutation, then groups as this does). test_data checks
rt_data_build_epoch with group_batch against it. Needs transformers' package
files (pip install --no-deps transformers). Run from the repository root:
  python3 tests/reference/make_length_group_fixtures.py
"""
import ast
import importlib.metadata
import importlib.util
import json
import os
import random
import types

HERE = os.path.dirname(os.path.abspath(__file__))
# (samples, seed of their lengths, shortest, longest, batch size)
CASES = [(10, 1, 2, 40, 2), (100, 2, 2, 60, 3), (1000, 3, 2, 64, 2), (5, 4, 2, 9, 4), (64, 5, 2, 4, 2), (301, 6, 2, 30, 1)]


class _T(list):
    def tolist(self):
        return list(self)

    def __getitem__(self, k):
        r = list.__getitem__(self, k)
        return _T(r) if isinstance(k, slice) else r


class _Item(int):
    def item(self):
        return int(self)


def grouped_indices():
    path = os.path.join(os.path.dirname(importlib.util.find_spec("transformers").origin), "trainer_pt_utils.py")
    tree = ast.parse(open(path).read())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_length_grouped_indices")
    torch = types.SimpleNamespace(randperm=lambda n, generator=None: _T(range(n)), tensor=lambda x: list(x),
                                  argmax=lambda t: _Item(t.index(max(t))))
    env = {"torch": torch}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), env)
    return env["get_length_grouped_indices"]


def main():
    f = grouped_indices()
    out = []
    for n, seed, lo, hi, bs in CASES:
        rnd = random.Random(seed)
        lengths = [rnd.randint(lo, hi) for _ in range(n)]
        out.append({"lengths": lengths, "batch_size": bs, "order": f(lengths, bs)})
    path = os.path.join(HERE, "length_groups.json")
    with open(path, "w") as fh:
        json.dump({"transformers": importlib.metadata.version("transformers"), "cases": out}, fh)
        fh.write("\n")
    print(path, len(out), "cases")


if __name__ == "__main__":
    main()
