#!/usr/bin/env python3
"""numpy permutation fixtures: np.random.default_rng(seed).permutation(n),
which is how Hugging Face datasets' Dataset.shuffle(seed) orders rows (and
so Axolotl's merged datasets before it splits off val_set_size).

Writes numpy_permutation.json: for each (seed, n), the whole
permutation when n <= 64, else its first and last 16 entries and
sum(i * p[i]) mod 2^64. test_data checks runtime/data.c's rt_np_permutation
against it. Run from the repository root with numpy installed:
  python3 tests/reference/make_numpy_perm_fixtures.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [(0, 1), (0, 2), (42, 10), (7, 5), (7, 64), (42, 1000), (1, 65537), (123456789, 3000),
         (2**32 + 5, 100), (2**64 - 1, 300), (3, 200000)]


def main():
    out = []
    for seed, n in CASES:
        p = np.random.default_rng(seed).permutation(n)
        rec = {"seed": str(seed), "n": n, "version": np.__version__}
        if n <= 64:
            rec["perm"] = [int(x) for x in p]
        else:
            rec["head"] = [int(x) for x in p[:16]]
            rec["tail"] = [int(x) for x in p[-16:]]
            rec["weighted_sum"] = str(int(sum(i * int(x) for i, x in enumerate(p)) % 2**64))
        out.append(rec)
    path = os.path.join(HERE, "numpy_permutation.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path, len(out), "cases")


if __name__ == "__main__":
    main()
