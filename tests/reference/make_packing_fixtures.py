#!/usr/bin/env python3
"""Packing fixtures: the bins Axolotl's multipack sampler makes of samples in
sampler order (its pack_parallel / pack_group, first-fit in groups, and
allocate_sequentially, next-fit, for sample_packing_sequentially).

Runs those functions from Axolotl's own source (axolotl/utils/samplers/
multipack.py, read with ast; numba's njit decorator dropped, so they run as
plain Python with numpy) on random lengths. test_data checks
rt_data_build_epoch's rows in dataset order (curriculum_sampling) against
them. Needs Axolotl's package files (pip install --no-deps axolotl==0.19.0)
and numpy. Run from the repository root:
  python3 tests/reference/make_packing_fixtures.py
"""
import ast
import importlib.metadata
import importlib.util
import json
import logging
import os
import random

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# (samples, seed of their lengths, shortest, longest, row capacity, group_size, bin_size, sequential)
CASES = [(60, 1, 2, 64, 64, 100000, 200, False), (60, 1, 2, 64, 64, 100000, 200, True),
         (500, 2, 2, 128, 128, 100000, 200, False), (50, 3, 2, 12, 64, 7, 3, False), (300, 4, 2, 40, 96, 64, 5, False),
         (200, 5, 30, 64, 64, 100000, 200, False), (40, 6, 2, 3, 64, 100000, 200, False)]


def multipack_functions():
    path = os.path.join(os.path.dirname(importlib.util.find_spec("axolotl").origin), "utils", "samplers",
                        "multipack.py")
    tree = ast.parse(open(path).read())
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in
           ("pack_group", "_process_group", "pack_parallel", "allocate_sequentially")]
    for f in fns:
        f.decorator_list = []
    env = {"np": np, "LOG": logging.getLogger("multipack"), "get_context": None, "cpu_count": os.cpu_count, "ProcessPoolExecutor": None}
    exec(compile(ast.Module(body=fns, type_ignores=[]), path, "exec"), env)
    return env


def main():
    mp = multipack_functions()
    out = []
    for n, seed, lo, hi, cap, group, bin_size, seq in CASES:
        rnd = random.Random(seed)
        lengths = np.array([rnd.randint(lo, hi) for _ in range(n)], dtype=np.int64)
        if seq:
            bins, _, _ = mp["allocate_sequentially"](lengths, rank=0, bin_capacity=cap, num_ranks=1)
        else:
            bins = mp["pack_parallel"](lengths, bin_capacity=cap, group_size=group, bin_size=bin_size,
                                       num_processes=1, safe_mode=True, mp_start_method=None)
        out.append({"lengths": [int(x) for x in lengths], "capacity": cap, "group_size": group, "bin_size": bin_size,
                    "sequential": seq, "bins": [[int(i) for i in b] for b in bins]})
    path = os.path.join(HERE, "packing.json")
    with open(path, "w") as f:
        json.dump({"axolotl": importlib.metadata.version("axolotl"), "cases": out}, f)
        f.write("\n")
    print(path, len(out), "cases")


if __name__ == "__main__":
    main()
