#!/usr/bin/env python3
"""Reference for the routers' load-balancing loss (output_router_logits) on the MoE fixtures.

transformers adds router_aux_loss_coef * load_balancing_loss_func(router_logits, num_experts, top_k, attention_mask)
to the loss. Under Axolotl's multipack collator (V2BatchSamplerDataCollatorForSeq2Seq, the one for qwen3_moe and
mixtral) attention_mask holds each packed sequence's number (1, 2, ...) and 0 on padding, and the function weights
every token by it. Here: batch A of make_fixtures (full causal attention, no padding: the attention is not what this
checks) with such weights passed to load_balancing_loss_func, loss = the model's CE + coef * aux, and every
parameter's gradient of it; tests/unit/test_hf_fixtures.c compares axo's (input aux_mask set to the same weights).

Usage (from the repository root): python3 tests/reference/make_moe_aux_fixtures.py   (torch, transformers 5.25)
"""
import importlib
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

COEF = 0.3
CASES = {"tiny-qwen3moe-aux": "tiny-qwen3moe-perturbed", "tiny-mixtral-aux": "tiny-mixtral-perturbed"}


def weights(rows, cols):
    """Axolotl's packed attention_mask: row 0 three sequences (1, 2, 3), row 1 one and padding (0)."""
    w = torch.zeros(rows, cols, dtype=torch.long)
    w[0, :7], w[0, 7:16], w[0, 16:] = 1, 2, 3
    w[1, :19] = 1
    return w


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_root = os.path.join(mf.ROOT, "tests", "reference", "moe_aux")
    os.makedirs(out_root, exist_ok=True)
    for name, base in CASES.items():
        model = AutoModelForCausalLM.from_pretrained(os.path.join(mf.ROOT, "tests", "reference", "fixtures", base),
                                                     dtype=torch.float32, attn_implementation="eager")
        model.train()
        model.router_aux_loss_coef = 0.0  # out.loss the CE alone (the model keeps its own copy): the aux below takes the weights
        lbl = importlib.import_module(type(model).__module__).load_balancing_loss_func
        ids, labels = mf.make_batch(*mf.BATCHES["A"], mf.BATCH_A_MASKED_PREFIX)
        w = weights(*ids.shape)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=labels, output_router_logits=True)
        cfg = model.config
        aux = lbl(out.router_logits, cfg.num_experts if hasattr(cfg, "num_experts") else cfg.num_local_experts,
                  cfg.num_experts_per_tok, w)
        loss = out.loss + COEF * aux
        loss.backward()
        named = dict(model.named_parameters())
        norms = {k: mf.f64_norm(p.grad) for k, p in sorted(named.items())}
        gate = {k: p.grad.reshape(-1).tolist() for k, p in named.items() if k.endswith("mlp.gate.weight")}
        exp = {"base": base, "router_aux_loss_coef": COEF, "weights": w.tolist(),
               "batch": {"shape": list(ids.shape), "input_ids": ids.tolist(), "labels": labels.tolist(),
                         "n_tokens": mf.n_counted(labels), "ce_loss": out.loss.item(), "aux_loss": aux.item(),
                         "loss": loss.item(), "grad_norms": norms, "grads": gate},
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
        with open(os.path.join(out_root, name + ".json"), "w") as f:
            json.dump(exp, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{name}: ce {out.loss.item():.8f} aux {aux.item():.8f}")


if __name__ == "__main__":
    main()
