#!/usr/bin/env python3
"""Batching fixtures: which samples each optimizer step of an epoch takes
when HF Trainer runs Axolotl's unpacked DataLoader under accelerate.

accelerate's own BatchSamplerShard (its source, read with ast from the
installed package and run without torch) shards torch's BatchSampler
(reimplemented below: consecutive batches of batch_size, the last one short
unless drop_last) over num_processes ranks: the even_batches top-up from the
epoch's start, or drop_last's cut (accelerate's prepare_data_loader shards
only past one process, so one rank keeps a short last batch). HF Trainer's _inner_training_loop then
accumulates gradient_accumulation_steps batches per rank per update, and an
epoch's last update takes the remainder (its `remainder` /
`num_batches` logic). For each case the fixture holds every update's samples
over all ranks, sorted. test_data checks rt_epoch_span_of / rt_epoch_row
against it.

Needs accelerate's package files only (pip install --no-deps
accelerate==1.16.0). Run from the repository root:
  python3 tests/reference/make_batching_fixtures.py
"""
import ast
import importlib.metadata
import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
# (samples, micro_batch_size, gradient_accumulation_steps, ranks, drop_last)
CASES = [(10, 2, 2, 1, False), (10, 2, 2, 1, True), (40, 3, 2, 1, False), (40, 3, 2, 2, False), (5, 2, 1, 2, False),
         (3, 2, 1, 2, False), (6, 2, 1, 2, False), (1, 4, 3, 3, False), (7, 1, 1, 4, False), (29, 4, 3, 2, False),
         (29, 4, 3, 2, True), (12, 2, 3, 2, False), (100, 3, 4, 3, False), (100, 3, 4, 3, True), (2, 1, 8, 1, False),
         (17, 5, 1, 1, True)]


def batch_sampler_shard():
    path = os.path.join(os.path.dirname(importlib.util.find_spec("accelerate").origin), "data_loader.py")
    tree = ast.parse(open(path).read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BatchSamplerShard")
    env = {"BatchSampler": object}
    exec(compile(ast.Module(body=[cls], type_ignores=[]), path, "exec"), env)
    return env["BatchSamplerShard"]


class TorchBatchSampler:
    """torch.utils.data.BatchSampler over a SequentialSampler of n samples."""

    def __init__(self, n, batch_size, drop_last):
        self.n, self.batch_size, self.drop_last = n, batch_size, drop_last

    def __iter__(self):
        for i in range(0, self.n, self.batch_size):
            b = list(range(i, min(i + self.batch_size, self.n)))
            if len(b) == self.batch_size or not self.drop_last:
                yield b

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


def main():
    shard = batch_sampler_shard()
    out = []
    for n, mbs, ga, ranks, drop in CASES:
        per_rank = [list(TorchBatchSampler(n, mbs, drop))] if ranks == 1 else []  # prepare_data_loader shards only past 1
        for r in range(ranks if ranks > 1 else 0):
            bs = shard(TorchBatchSampler(n, mbs, drop), num_processes=ranks, process_index=r, split_batches=False,
                       even_batches=True)
            batches = list(bs)
            assert len(batches) == len(bs)
            per_rank.append(batches)
        steps_in_epoch = len(per_rank[0])
        updates = -(-steps_in_epoch // ga)
        remainder = steps_in_epoch % ga or ga
        steps, k = [], 0
        for u in range(updates):
            nb = ga if u != updates - 1 else remainder
            steps.append(sorted(i for rb in per_rank for b in rb[k:k + nb] for i in b))
            k += nb
        out.append({"n": n, "micro_batch_size": mbs, "gradient_accumulation_steps": ga, "ranks": ranks,
                    "drop_last": drop, "steps": steps})
    path = os.path.join(HERE, "batching.json")
    with open(path, "w") as f:
        json.dump({"accelerate": importlib.metadata.version("accelerate"), "cases": out}, f, indent=1)
        f.write("\n")
    print(path, len(out), "cases")


if __name__ == "__main__":
    main()
