#!/usr/bin/env python3
"""Training-order fixtures: the order in which HF Trainer (transformers
5.16, what Axolotl 0.19 runs) under accelerate 1.13 hands an unpacked
training set to the model, epoch by epoch, without curriculum_sampling.

Each case builds a real transformers.Trainer (seed, per-device batch) over
a datasets.Dataset whose row i holds the token id i, takes the Trainer's
own get_train_dataloader(), and for each epoch calls set_epoch(epoch) and
iterates it as Trainer's epoch loop does. Recorded: the row ids in the
order the batches yield them. test_data checks runtime/data.c's
rt_data_epoch_order(n, seed, epoch) against them, and rt_torch_randperm
against torch.randperm on a seeded CPU generator ("randperm" cases).

"multipack" cases: Axolotl 0.19's MultipackBatchSampler over a
RandomSampler, as its trainer builds it (len() called first), put through
accelerate's prepare_data_loader as HF Trainer does: the bins each epoch
yields. They are first-fit packs of the same seed + epoch permutation.

Long orders keep their first and last 16 entries and sum(i * p[i]) mod
2^64. Needs torch, transformers, accelerate and datasets; run from the
repository root:  python3 tests/reference/make_torch_order_fixtures.py
"""
import json
import os
import tempfile

import datasets
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
# (seed, n rows, per-device batch, epochs)
TRAINER_CASES = [(42, 10, 2, 3), (42, 1, 1, 2), (0, 7, 3, 2), (1234, 100, 4, 3), (2**32 - 1, 50, 5, 2),
                 (4000000000, 33, 1, 2), (7, 5000, 8, 2), (42, 70000, 16, 1)]
RANDPERM_CASES = [(0, 1), (5, 2), (42, 624), (42, 625), (3, 1000), (2**64 - 1, 300), (99, 200000)]


class Echo(torch.nn.Module):
    """The model Trainer wants; forward's signature keeps the input_ids column."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids=None, labels=None):
        return {"loss": self.w.sum()}


def record(perm, rec):
    perm = [int(x) for x in perm]
    if len(perm) <= 64:
        rec["order"] = perm
    else:
        rec["head"], rec["tail"] = perm[:16], perm[-16:]
        rec["weighted_sum"] = str(sum(i * x for i, x in enumerate(perm)) % 2**64)
    return rec


def trainer_order(seed, n, batch, epochs, tmp):
    ds = datasets.Dataset.from_dict({"input_ids": [[i] for i in range(n)]})
    args = transformers.TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, seed=seed,
                                          report_to=[], use_cpu=True, num_train_epochs=epochs)
    trainer = transformers.Trainer(model=Echo(), args=args, train_dataset=ds)
    dl = trainer.get_train_dataloader()
    out = []
    for epoch in range(epochs):
        dl.set_epoch(epoch)
        order = []
        for b in dl:
            order += b["input_ids"][:, 0].tolist()
        assert sorted(order) == list(range(n)), (seed, n, epoch)
        out.append(record(order, {"epoch": epoch}))
    return out


# (seed, lengths' rng seed, n samples, bin capacity, group size, bin size, epochs)
MULTIPACK_CASES = [(42, 0, 60, 128, 100000, 200, 2), (7, 1, 90, 100, 25, 3, 2)]


def multipack_bins(seed, lseed, n, cap, group, binsz, epochs):
    import numpy as np
    from accelerate.data_loader import prepare_data_loader
    from axolotl.utils.samplers.multipack import MultipackBatchSampler
    from torch.utils.data import DataLoader, RandomSampler

    transformers.set_seed(seed)
    lengths = np.random.default_rng(lseed).integers(2, cap // 2, size=n)

    class Rows:
        def __len__(self):
            return n

        def __getitem__(self, idx):
            return idx

    rows = Rows()
    sampler = MultipackBatchSampler(RandomSampler(rows), batch_size=1, batch_max_len=cap, lengths=lengths,
                                    bin_size=binsz, group_size=group, num_processes=1)
    len(sampler)
    dl = prepare_data_loader(DataLoader(rows, batch_sampler=sampler, collate_fn=lambda b: b),
                             use_seedable_sampler=True, put_on_device=False, even_batches=False)
    out = []
    for epoch in range(epochs):
        dl.set_epoch(epoch)
        out.append({"epoch": epoch, "bins": [[int(i) for i in b] for batch in dl for b in batch]})
    return {"seed": str(seed), "lengths": [int(x) for x in lengths], "capacity": cap, "group_size": group,
            "bin_size": binsz, "epochs": out}


def main():
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "accelerate": __import__("accelerate").__version__},
           "trainer": [], "randperm": [], "multipack": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed, n, batch, epochs in TRAINER_CASES:
            out["trainer"].append({"seed": str(seed), "n": n, "batch": batch,
                                   "epochs": trainer_order(seed, n, batch, epochs, tmp)})
    for case in MULTIPACK_CASES:
        out["multipack"].append(multipack_bins(*case))
    for seed, n in RANDPERM_CASES:
        g = torch.Generator()
        g.manual_seed(seed)
        out["randperm"].append(record(torch.randperm(n, generator=g).tolist(), {"seed": str(seed), "n": n}))
    path = os.path.join(HERE, "torch_order.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path, len(out["trainer"]), "trainer cases,", len(out["randperm"]), "randperm cases,",
          len(out["multipack"]), "multipack cases")


if __name__ == "__main__":
    main()
