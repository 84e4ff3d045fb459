#!/usr/bin/env python3
"""Local check (not fixture data, not in CI): how Axolotl 0.19.0's AxolotlTrainer normalises an accumulated step's
loss on transformers 5, next to the token mean axo trains (README, "the training loss of a step").

AxolotlTrainer.__init__ sets model_accepts_loss_kwargs False when the inner model's forward has no parameter named
num_items_in_batch; transformers 5's take it through **kwargs, so HF Trainer then passes no num_items_in_batch and
divides each micro-batch's own token mean by the accumulation steps: the mean of micro-batch means.

Run:  python3 tests/reference/check_axolotl_accumulation.py
Needs: axolotl 0.19 (with numba, pillow), torch, transformers 5, datasets.

Measured 2026-12-07 (axolotl 0.19.0, transformers 5.25): two rows of 5 and 40 tokens, accumulation 2: token mean
4.17626053, mean of means 4.16947031; AxolotlTrainer logs 4.16947031, and 4.17626047 with model_accepts_loss_kwargs
forced True."""
import random

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, LlamaConfig

from axolotl.core.trainers.base import AxolotlTrainer
from axolotl.core.training_args import AxolotlTrainingArguments


def collate(b):
    return {k: torch.tensor([r[k] for r in b]) for k in ("input_ids", "labels", "attention_mask")}


def main():
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
    rnd = random.Random(1)
    rows = []
    for n in (5, 40):
        ids = [rnd.randrange(1, 64) for _ in range(n)]
        rows.append({"input_ids": ids, "labels": ids, "attention_mask": [1] * n})
    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        sums = [m(**collate([r])).loss.item() * (len(r["input_ids"]) - 1) for r in rows]
    counts = [len(r["input_ids"]) - 1 for r in rows]
    token_mean = sum(sums) / sum(counts)
    mean_of_means = sum(s / n for s, n in zip(sums, counts)) / len(rows)
    print(f"token mean {token_mean:.8f}, mean of micro-batch means {mean_of_means:.8f}")
    for forced in (False, True):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(cfg)
        args = AxolotlTrainingArguments(output_dir="/tmp/check_axolotl_accumulation", report_to=[], use_cpu=True,
                                        per_device_train_batch_size=1, gradient_accumulation_steps=2, max_steps=1,
                                        learning_rate=1e-12, logging_steps=1, average_tokens_across_devices=False,
                                        remove_unused_columns=False)
        t = AxolotlTrainer(model=m, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate)
        print("model_accepts_loss_kwargs after AxolotlTrainer.__init__:", t.model_accepts_loss_kwargs)
        if forced:
            t.model_accepts_loss_kwargs = True
        t.train()
        logged = [h["loss"] for h in t.state.log_history if "loss" in h][0]
        print(f"AxolotlTrainer{' (forced True)' if forced else ''} logs {logged:.8f}")


if __name__ == "__main__":
    main()
