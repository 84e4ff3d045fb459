#!/usr/bin/env python3
"""Local check (not fixture data, not in CI): HF Trainer's eval_loss on several processes equals the rule
tests/e2e/eval.sh gives axo (each batch's token mean, averaged over rows; a short last batch topped up with the
first rows, as accelerate's even_batches does, its repeats counted in its mean but not as rows).

Run with 2 CPU processes (gloo):   torchrun --nproc_per_node 2 tests/reference/check_eval_topup.py
Needs: torch, transformers, datasets, accelerate. Axolotl's TrainingArguments have
average_tokens_across_devices=False (transformers' default True would scale each batch's loss by the
tokens of every rank's batch); the script sets the same.

Measured 2026-12-07, transformers 5.25, accelerate as pip resolves it: 2 processes, eval_batch_size 2 on five
rows: HF 5.5552516, the top-up rule 5.5552515, without the top-up 5.5559589; eval_batch_size 3: HF 5.5531301,
the rule 5.5531300."""
import os
import random
import sys

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, LlamaConfig, Trainer, TrainingArguments


def collate(b):
    n = max(len(r["input_ids"]) for r in b)
    return {"input_ids": torch.tensor([r["input_ids"] + [0] * (n - len(r["input_ids"])) for r in b]),
            "labels": torch.tensor([r["labels"] + [-100] * (n - len(r["labels"])) for r in b]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in b])}


def main():
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=256)
    model = AutoModelForCausalLM.from_config(cfg)
    rnd = random.Random(11)  # the rows of tests/e2e/eval.sh's hf_rows.jsonl
    rows = []
    for n, masked in ((9, 0), (31, 12), (14, 3), (40, 0), (6, 2)):
        ids = [1] + [rnd.randrange(4, 256) for _ in range(n - 1)]
        rows.append({"input_ids": ids, "labels": [-100] * masked + ids[masked:]})
    world = int(os.environ.get("WORLD_SIZE", "1"))
    for E in (2, 3):
        args = TrainingArguments(output_dir="/tmp/check_eval_topup", per_device_eval_batch_size=E, report_to=[],
                                 use_cpu=True, average_tokens_across_devices=False)
        hf = Trainer(model=model, args=args, eval_dataset=Dataset.from_list(rows), data_collator=collate).evaluate()
        model.eval()
        with torch.no_grad():  # each row alone: its loss sum and tokens
            per = []
            for r in rows:
                b = collate([r])
                k = int((b["labels"][:, 1:] != -100).sum())
                per.append((model(**b).loss.item() * k, k))
        # batches of E in order; on several ranks the short last one topped up from the first rows
        batches = [list(range(i, min(i + E, len(rows)))) for i in range(0, len(rows), E)]
        tot = cnt = 0.0
        for bi, b in enumerate(batches):
            mean_over = b + ([i % len(rows) for i in range(E - len(b))] if world > 1 and bi == len(batches) - 1 else [])
            tot += len(b) * sum(per[i][0] for i in mean_over) / sum(per[i][1] for i in mean_over)
            cnt += len(b)
        if int(os.environ.get("RANK", "0")) == 0:
            ok = abs(hf["eval_loss"] - tot / cnt) <= 1e-6 * abs(tot / cnt)
            print(f"world {world} eval_batch_size {E}: HF {hf['eval_loss']:.8f}, rule {tot / cnt:.8f}: "
                  f"{'same' if ok else 'DIFFERENT'}")
            if not ok:
                sys.exit(1)


if __name__ == "__main__":
    main()
