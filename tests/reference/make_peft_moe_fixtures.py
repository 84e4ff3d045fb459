#!/usr/bin/env python3
"""PEFT reference fixtures for LoRA on mixture-of-experts models (tests/reference/peft/<name>/).

PEFT (>= 0.19) with transformers 5 moves the v4 target names of an MoE layer's router and experts (Qwen3-MoE's
gate / gate_proj / up_proj / down_proj, Mixtral's gate / w1 / w3 / w2) onto the router's weight and the experts'
stacked weights as target_parameters, and adapts each with a ParamWrapper: w + s * B_e A_e per expert, with
gate_up_proj fused from two names at rank 2r and alpha 2 alpha. For each base fixture below this script makes that
adapter with PEFT (every lora_B random, so the gradients of A are not zero), saves it (adapter_config.json +
adapter_model.safetensors, PEFT's own files) and writes expected.json: batch A's loss and every adapter's gradient
under axo's parameter names (norms, and a few whole), in train mode with lora_dropout 0.

Usage (from the repository root): python3 tests/reference/make_peft_moe_fixtures.py [NAME,NAME...]
Needs: torch, transformers (5.25), peft (0.21), safetensors. CPU only. Deterministic (one thread).
"""
import json
import os
import sys

import torch

import peft
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (the batches and the loss check)

ROOT = mf.ROOT
CASES = {
    # name: (base fixture, target_modules[, target_parameters])
    "tiny-qwen3moe-experts": ("tiny-qwen3moe-perturbed", ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj", "gate"]),
    "tiny-mixtral-experts": ("tiny-mixtral-perturbed", ["q_proj", "w1", "w3", "w2", "gate"]),
    # Qwen2-MoE: PEFT converts no name for model_type qwen2_moe (transformers maps other MoE types onto its pattern,
    # not itself), so gate_proj / up_proj / down_proj adapt the shared expert's nn.Linear modules only (and a
    # target "gate", the router, fails in PEFT); the experts and the router take target_parameters
    "tiny-qwen2moe-experts": ("tiny-qwen2moe-perturbed",
                              ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj", "shared_expert_gate"],
                              ["mlp.gate.weight", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"]),
    # gpt-oss: no name moves; target_parameters wraps the router's weight and the experts' transposed [E, In, Out]
    # weights (transformers' is_transposed: PEFT's delta is (B_e A_e)^T there)
    "tiny-gptoss-experts": ("tiny-gptoss-perturbed", ["q_proj", "v_proj"],
                            ["mlp.router.weight", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"]),
}
R, ALPHA, B_SEED = 4, 8, 777
FULL = ("model.layers.0.mlp.experts.gate_up_proj.lora_B.weight", "model.layers.0.mlp.experts.down_proj.lora_A.weight",
        "model.layers.0.mlp.gate.lora_B.weight", "model.layers.0.mlp.router.lora_B.weight")


def axo_name(peft_name):
    """PEFT's parameter name -> axo's global: the nested wrappers of the experts are gate_up_proj (inner, base_layer)
    and down_proj (outer)."""
    n = peft_name.replace("base_model.model.", "", 1).replace(".default", "")
    n = n.replace("experts.base_layer.lora_", "experts.gate_up_proj.lora_")
    if ".experts.lora_" in n:
        n = n.replace(".experts.lora_", ".experts.down_proj.lora_")
    return n


def case(name, base, targets, out_root, params=None):
    torch.manual_seed(0)
    base_dir = os.path.join(ROOT, "tests", "reference", "fixtures", base)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    cfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules=targets, lora_dropout=0.0, target_parameters=params)
    pm = get_peft_model(model, cfg)
    if params is None:
        assert set(pm.peft_config["default"].target_parameters) == {"gate.weight", "gate_up_proj", "down_proj"}
    g = torch.Generator().manual_seed(B_SEED)
    with torch.no_grad():
        for n, p in sorted(pm.named_parameters()):
            if "lora_B" in n:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    pm.train()
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    pm.save_pretrained(out_dir)
    cfg_path = os.path.join(out_dir, "adapter_config.json")
    ac = json.load(open(cfg_path))
    ac["base_model_name_or_path"] = base  # not this machine's path; the test passes the base directory itself
    json.dump(ac, open(cfg_path, "w"), indent=2, sort_keys=True)

    ids, labels = mf.make_batch(*mf.BATCHES["A"], mf.BATCH_A_MASKED_PREFIX)
    pm.zero_grad(set_to_none=True)
    out = pm(input_ids=ids, labels=labels)
    out.loss.backward()
    chk_sum, chk_n = mf.loss_f64(out.logits.detach(), labels)
    assert abs(chk_sum / chk_n - out.loss.item()) <= 1e-5 * abs(chk_sum / chk_n)
    norms, full = {}, {}
    for n, p in pm.named_parameters():
        if not p.requires_grad:
            continue
        an = axo_name(n)
        norms[an] = mf.f64_norm(p.grad)
        if an in FULL:
            full[an] = p.grad.detach().reshape(-1).tolist()
    assert len(full) == len(FULL) - 1, sorted(norms)  # the router is mlp.gate or mlp.router
    # the model with the adapter merged (PEFT's merge_and_unload) gives the same loss
    merged = pm.merge_and_unload()
    with torch.no_grad():
        ml = merged(input_ids=ids, labels=labels).loss.item()
    assert abs(ml - out.loss.item()) <= 1e-5 * out.loss.item(), (ml, out.loss.item())
    exp = {
        "base": base,
        "lora": {"r": R, "lora_alpha": ALPHA, "target_modules": targets, "lora_dropout": 0.0,
                 **({"target_parameters": params} if params else {})},
        "lora_B_init": f"every lora_B = 0.3 * torch.randn(shape, generator=torch.Generator().manual_seed({B_SEED})), "
                       "in sorted parameter-name order; lora_A PEFT's kaiming-uniform init after torch.manual_seed(0)",
        "batch": {"shape": list(ids.shape), "input_ids": ids.tolist(), "labels": labels.tolist(),
                  "n_tokens": mf.n_counted(labels), "loss": out.loss.item(), "merged_loss": ml,
                  "grad_norms": norms, "grads": full},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{name}: loss {out.loss.item():.8f}, {len(norms)} adapters")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_root = os.path.join(ROOT, "tests", "reference", "peft")
    only = sys.argv[1].split(",") if len(sys.argv) > 1 else None
    for name, spec in CASES.items():
        if not only or name in only:
            case(name, *spec[:2], out_root, *spec[2:])


if __name__ == "__main__":
    main()
