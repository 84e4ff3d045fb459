#!/usr/bin/env python3
"""Generate the Hugging Face reference fixtures for axo's CPU executor tests.

For each tiny model in configs/models/<name>/config.json this script builds the
model with transformers (eager attention, float32, torch.manual_seed(1234),
transformers' own weight init), saves it to tests/reference/fixtures/<name>/
(config.json + model.safetensors) and writes expected.json with losses,
gradient norms, a few full gradients, logits, and the effect of one AdamW step.

Usage (from the repository root):   python3 tests/reference/make_fixtures.py
Options: --models tiny-llama,tiny-qwen2   --out DIR   (defaults: all four, tests/reference/fixtures)

Needs: torch, transformers, safetensors.  CPU only.  See tests/reference/README.md.
"""
import argparse
import copy
import inspect
import json
import math
import os
import platform
import shutil
import sys

import torch

import safetensors
import transformers
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def auto_class(model_type):
    """AutoModelForCausalLM, or for a multimodal model it does not map (Mistral 3) the class Axolotl loads it with."""
    return AutoModelForCausalLM if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else AutoModelForImageTextToText

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = ["tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-mistral", "tiny-mistral-swa", "tiny-qwen2-swa", "tiny-gemma3",
          "tiny-gemma3-mm", "tiny-mistral3", "tiny-granite", "tiny-smollm3", "tiny-olmo2", "tiny-olmo3",
          "tiny-phi3", "tiny-phi4mini", "tiny-phi35", "tiny-qwen3-yarn", "tiny-qwen3moe", "tiny-mixtral",
          "tiny-gptoss", "tiny-olmoe", "tiny-ministral3", "tiny-ministral3-mm", "tiny-gemma2", "tiny-qwen2moe", "tiny-glm", "tiny-glm4"]

INIT_SEED = 1234
BATCHES = {  # name -> (data seed, rows, tokens per row)
    "A": (1001, 2, 24),
    "B": (1002, 1, 24),
}
# LongRoPE models also get rows of 12 tokens: HF takes the short factors for a batch whose max(position_ids) + 1 is
# within original_max_position_embeddings and the long ones past it, so a model whose original max is between 12
# and 24 shows both regimes (test_hf_fixtures runs C padded to A's length, in A's plan)
BATCH_SHORT = {"C": (1003, 2, 12)}
TOKEN_LO, TOKEN_HI = 4, 256          # token ids drawn uniformly from [4, 256)
IGNORE_INDEX = -100
BATCH_A_MASKED_PREFIX = 5            # labels[1, :5] = -100 in batch A
FULL_GRADS = ["model.norm.weight", "model.layers.0.input_layernorm.weight"]
# OLMo has no input norms: its first post-attention norm instead
FULL_GRADS_POST_NORM = ["model.norm.weight", "model.layers.0.post_attention_layernorm.weight"]
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

LOSS_SEMANTICS = (
    "HF ForCausalLMLoss: labels are shifted inside the loss, position t's logits predict labels[t+1] "
    "(the last position of each row predicts nothing); positions whose shifted label is -100 are ignored; "
    "loss = mean cross-entropy (computed on float32 logits) over the non-ignored shifted tokens, i.e. "
    "sum / n_tokens with n_tokens = count(labels[:, 1:] != -100)."
)


def make_batch(seed, rows, cols, masked_prefix_row1=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(TOKEN_LO, TOKEN_HI, (rows, cols), generator=g, dtype=torch.long)
    labels = ids.clone()
    if masked_prefix_row1:
        labels[1, :masked_prefix_row1] = IGNORE_INDEX
    return ids, labels


def n_counted(labels):
    return int((labels[:, 1:] != IGNORE_INDEX).sum().item())


def f64_norm(t):
    return float(t.detach().double().norm().item())


def loss_f64(logits, labels):
    """Independent check of HF's loss: shifted CE accumulated in float64."""
    lg = logits[:, :-1, :].double().reshape(-1, logits.shape[-1])
    tg = labels[:, 1:].reshape(-1)
    keep = tg != IGNORE_INDEX
    lp = torch.log_softmax(lg[keep], dim=-1)
    return float(-lp.gather(1, tg[keep].unsqueeze(1)).sum().item()), int(keep.sum().item())


PERTURB_SEED = 4321
PERTURBATION = (
    f"after the HF init: g = torch.Generator().manual_seed({PERTURB_SEED}); for every parameter in sorted name "
    "order: 1-D tensors (RMSNorm weights incl. q_norm/k_norm, biases) += 0.2 * torch.randn(shape, generator=g); "
    "q_proj.weight and k_proj.weight *= 8. Makes norm weights != 1, biases != 0 and attention peaky, so forward "
    "bugs in those ops (and in RoPE / llama3 scaling) move the loss well beyond 1e-4.")


def perturb(model):
    g = torch.Generator().manual_seed(PERTURB_SEED)
    with torch.no_grad():
        for n, p in sorted(model.named_parameters()):
            if p.dim() == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif n.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(8.0)
            elif n.endswith(("mlp.gate.weight", "mlp.router.weight")):   # an MoE router: decisive routing
                p.mul_(20.0)
            elif n.endswith("_bias"):   # gpt-oss's experts' biases [E, n]
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def build(name, perturbed):
    cfg_path = os.path.join(ROOT, "configs", "models", name, "config.json")
    config = AutoConfig.from_pretrained(os.path.dirname(cfg_path))
    torch.manual_seed(INIT_SEED)
    model = auto_class(config.model_type).from_config(config, attn_implementation="eager", dtype=torch.float32)
    if perturbed:
        perturb(model)
    model.train()
    return model, cfg_path


def grads_record(model, names, full_names=FULL_GRADS):
    params = {n: model.get_parameter(n) for n in names}
    norms = {n: f64_norm(p.grad) for n, p in params.items()}
    total = math.sqrt(sum(v * v for v in norms.values()))
    full = {n: [float(x) for x in params[n].grad.detach().reshape(-1).tolist()] for n in full_names}
    return norms, total, full


def multimodal(model):
    """Gemma3ForConditionalGeneration: its language model is what is trained and checked."""
    return hasattr(model.model, "language_model")


def text_model(model):
    return model.model.language_model if multimodal(model) else model.model


def hub_key(key, model):
    """transformers 5 saves a new multimodal model as language_model.model.*, language_model.lm_head.*,
    vision_tower.* and multi_modal_projector.*, as the Hub's Mistral 3 checkpoints (Mistral-Small-3.1 ...) name
    them; the Hub's Gemma 3 ones (gemma-3-4b-it ...) name the SigLIP tower vision_tower.vision_model.*: the
    fixture takes the Hub's."""
    if model.config.model_type == "gemma3" and key.startswith("vision_tower."):
        return "vision_tower.vision_model." + key[len("vision_tower."):]
    return key


def module_of_key(key):
    """The module name (named_parameters) of a Hub checkpoint key."""
    for hub, mod in (("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
                     ("vision_tower.vision_model.", "model.vision_tower."), ("vision_tower.", "model.vision_tower."),
                     ("multi_modal_projector.", "model.multi_modal_projector.")):
        if key.startswith(hub):
            return mod + key[len(hub):]
    return key


def save_model(model, out_dir, cfg_path):
    os.makedirs(out_dir, exist_ok=True)
    kw = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kw["safe_serialization"] = True      # transformers 4.x; 5.x always writes safetensors
    model.save_pretrained(out_dir, **kw)
    hf_config = os.path.join(out_dir, "config.json")
    # Keep the fixture's config.json byte-identical to configs/models/<name>/config.json (the
    # classic rope_theta/rope_scaling/torch_dtype layout that the Hub's checkpoints use).
    # transformers >= 5 rewrites it as rope_parameters/dtype; both describe the same model
    # (checked by the reload below).
    shutil.copyfile(cfg_path, hf_config)
    for extra in ("generation_config.json",):
        p = os.path.join(out_dir, extra)
        if os.path.exists(p):
            os.remove(p)
    st = os.path.join(out_dir, "model.safetensors")
    if multimodal(model):
        from safetensors.torch import load_file, save_file
        sd = load_file(st)
        save_file({hub_key(k, model): v for k, v in sd.items()}, st, metadata={"format": "pt"})
    with safe_open(st, framework="pt") as f:
        keys = sorted(f.keys())
        dtypes = {k: str(f.get_slice(k).get_dtype()) for k in keys}
    bad = {k: d for k, d in dtypes.items() if d != "F32"}
    assert not bad, f"non-F32 tensors in {st}: {bad}"
    os.chmod(st, 0o644)
    return keys


def fixture(name, out_root, perturbed):
    model, cfg_path = build(name, perturbed)
    fixture_name = name + ("-perturbed" if perturbed else "")
    out_dir = os.path.join(out_root, fixture_name)
    st_keys = save_model(model, out_dir, cfg_path)

    # Parameters as they are named in model.safetensors; tied tensors appear once. The multimodal model's: its
    # language model's, by module name (the file holds them under the Hub's names, and the vision tower).
    named = dict(model.named_parameters())          # deduplicated by transformers/torch
    mm = multimodal(model)
    if any(n.endswith("experts.gate_up_proj") for n in named) and not any(k.endswith("experts.gate_up_proj") for k in st_keys):
        # MoE: the file holds each expert's tensors (experts.N.gate_proj / w1 ...), transformers 5 their stack
        # (mlp.experts.gate_up_proj [E, 2I, H], down_proj [E, H, I]); records use the parameters' names
        stacked = sorted(n for n in named if ".experts." in n)
        per_expert = [k for k in st_keys if ".experts." in k]
        assert len(per_expert) == sum(3 * named[n].shape[0] for n in stacked if n.endswith("gate_up_proj")), (name, per_expert)
        st_keys = sorted(named)
    assert sorted(named) == sorted(module_of_key(k) for k in st_keys), f"{name}: safetensors keys {st_keys} != parameters {sorted(named)}"
    if mm:
        st_keys = sorted(k for k in named if k.startswith("model.language_model.") or k == "lm_head.weight")
    embed_name = "model.language_model.embed_tokens.weight" if mm else "model.embed_tokens.weight"
    tied = {}
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight is text_model(model).embed_tokens.weight
        tied["lm_head.weight"] = embed_name
    params = {k: {"shape": list(named[k].shape), "numel": named[k].numel()} for k in st_keys}
    fg = FULL_GRADS if "model.layers.0.input_layernorm.weight" in named or mm else FULL_GRADS_POST_NORM
    full_grads = [n.replace("model.", "model.language_model.", 1) if mm else n for n in fg]

    batches = {}
    data = {}
    longrope = (getattr(model.config.get_text_config(), "rope_parameters", None) or {}).get("rope_type") == "longrope"
    for bname, (seed, rows, cols) in list(BATCHES.items()) + (list(BATCH_SHORT.items()) if longrope else []):
        ids, labels = make_batch(seed, rows, cols, BATCH_A_MASKED_PREFIX if bname == "A" else 0)
        data[bname] = (ids, labels)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        logits = out.logits.detach()
        chk_sum, chk_n = loss_f64(logits, labels)
        n = n_counted(labels)
        assert chk_n == n
        assert abs(chk_sum / n - out.loss.item()) <= 1e-5 * abs(chk_sum / n), (name, bname)
        norms, total, full = grads_record(model, st_keys, full_grads)
        batches[bname] = {
            "seed": seed,
            "shape": [rows, cols],
            "input_ids": ids.tolist(),
            "labels": labels.tolist(),
            "n_tokens": n,
            "loss": float(out.loss.item()),
            "loss_sum_f64": chk_sum,
            "logits_sum": float(logits.double().sum().item()),
            "logits_last_row0": [float(x) for x in logits[0, -1, :].tolist()],
            "grad_norms": norms,
            "grad_total_norm": total,
            "grads": full,
        }

    # Gradient accumulation over micro-batches A then B.
    accumulation = {"micro_batches": ["A", "B"]}
    n_all = sum(batches[b]["n_tokens"] for b in ("A", "B"))
    for mode in ("token_weighted", "mean_of_means"):
        model.zero_grad(set_to_none=True)
        total_loss = 0.0
        for b in ("A", "B"):
            ids, labels = data[b]
            if mode == "token_weighted":
                # transformers Trainer (>= 4.46) semantics: each micro-batch's loss is its summed CE
                # divided by num_items_in_batch = tokens counted over ALL micro-batches of the step.
                out = model(input_ids=ids, labels=labels, num_items_in_batch=torch.tensor(n_all))
                loss = out.loss
            else:
                out = model(input_ids=ids, labels=labels)
                loss = out.loss / 2.0
            loss.backward()
            total_loss += float(loss.item())
        norms, total, full = grads_record(model, st_keys, full_grads)
        accumulation[mode] = {
            "loss": total_loss,
            "grad_norms": norms,
            "grad_total_norm": total,
            "grads": full,
        }
        if mode == "token_weighted":
            accumulation[mode]["num_items_in_batch"] = n_all
    accumulation["token_weighted"]["definition"] = (
        "sum over micro-batches of (summed CE of that micro-batch) / num_items_in_batch, "
        "num_items_in_batch = n_tokens(A) + n_tokens(B); equals the token mean over A and B together")
    accumulation["mean_of_means"]["definition"] = "(loss(A) + loss(B)) / 2, backward of each term"

    # One AdamW step after batch A's backward, from the saved initial weights.
    init_state = copy.deepcopy(model.state_dict())
    ids_a, labels_a = data["A"]
    steps = {}
    from transformers.trainer_pt_utils import get_parameter_names
    no_decay_patterns = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    decay_names = set(get_parameter_names(model, [torch.nn.LayerNorm], no_decay_patterns))
    for gname in ("all", "hf_trainer"):
        model.load_state_dict(init_state)
        model.zero_grad(set_to_none=True)
        before = {k: named[k].detach().clone() for k in st_keys}
        if gname == "all":
            groups = [{"params": [named[k] for k in st_keys], "weight_decay": ADAMW["weight_decay"]}]
            no_decay = []
        else:
            no_decay = [k for k in st_keys if k not in decay_names]
            groups = [
                {"params": [named[k] for k in st_keys if k in decay_names], "weight_decay": ADAMW["weight_decay"]},
                {"params": [named[k] for k in no_decay], "weight_decay": 0.0},
            ]
        opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"], foreach=False)
        out = model(input_ids=ids_a, labels=labels_a)
        out.loss.backward()
        loss_before = float(out.loss.item())
        opt.step()
        with torch.no_grad():
            loss_after = float(model(input_ids=ids_a, labels=labels_a).loss.item())
        upd = {k: f64_norm(named[k].detach() - before[k]) for k in st_keys}
        steps[gname] = {
            "no_decay_params": no_decay,
            "loss_before": loss_before,
            "loss_after": loss_after,
            "update_norms": upd,
            "update_total_norm": math.sqrt(sum(v * v for v in upd.values())),
        }
    model.load_state_dict(init_state)

    # The saved directory alone must reproduce the numbers (non-persistent buffers such as
    # rotary inv_freq are recomputed from config.json).
    re = auto_class(model.config.model_type).from_pretrained(out_dir, attn_implementation="eager", dtype=torch.float32)
    re.train()
    with torch.no_grad():
        re_loss = re(input_ids=ids_a, labels=labels_a).loss.item()
    assert abs(re_loss - batches["A"]["loss"]) <= 1e-6 * batches["A"]["loss"], (name, re_loss, batches["A"]["loss"])

    cfg = model.config
    expected = {
        "schema_version": 1,
        "fixture": fixture_name,
        "model": name,
        "architecture": cfg.architectures[0] if cfg.architectures else type(model).__name__,
        "model_type": cfg.model_type,
        "source_config": f"configs/models/{name}/config.json",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "python": platform.python_version(),
        },
        "build": {
            "init_seed": INIT_SEED,
            "how": "torch.manual_seed(init_seed); AutoModelForCausalLM.from_config(config, "
                   "attn_implementation='eager', dtype=torch.float32) -- transformers' _init_weights: "
                   "Linear/Embedding ~ normal(0, initializer_range), biases 0, RMSNorm weights 1",
            "attn_implementation": "eager",
            "dtype": "float32",
            "mode": "train (dropout is 0)",
            "torch_num_threads": torch.get_num_threads(),
            "perturbation": PERTURBATION if perturbed else None,
        },
        # Gemma 3 keeps one inv_freq per layer type: the full-attention layers' is recorded
        "rope_inv_freq": [float(x) for x in getattr(text_model(model).rotary_emb, "inv_freq",
                                                    getattr(text_model(model).rotary_emb, "full_attention_inv_freq", None)).tolist()],
        "rope_attention_scaling": float(getattr(text_model(model).rotary_emb, "attention_scaling",
                                                getattr(text_model(model).rotary_emb, "full_attention_attention_scaling", 1.0))),
        "loss_semantics": LOSS_SEMANTICS,
        "ignore_index": IGNORE_INDEX,
        "token_range": [TOKEN_LO, TOKEN_HI],
        "params": params,
        "tied": tied,
        "batches": batches,
        "accumulation": accumulation,
        "adamw_step": {
            "after_batch": "A",
            "optimizer": "torch.optim.AdamW (foreach=False), one step from the initial weights",
            "lr": ADAMW["lr"], "betas": list(ADAMW["betas"]), "eps": ADAMW["eps"],
            "weight_decay": ADAMW["weight_decay"],
            "loss_after_semantics": "loss of batch A (train mode, no grad) with the updated weights",
            "update_norm_semantics": "float64 L2 norm of (param_after - param_before)",
            "groups": {
                "all": "one param group: weight decay on every parameter (norms, biases, embeddings too)",
                "hf_trainer": "transformers Trainer grouping: no weight decay for biases and *norm* weights",
            },
            "results": steps,
        },
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out_dir, x)) for x in os.listdir(out_dir))
    print(f"{fixture_name}: loss A {batches['A']['loss']:.6f} (n={batches['A']['n_tokens']}), "
          f"B {batches['B']['loss']:.6f} (n={batches['B']['n_tokens']}), "
          f"after AdamW {steps['all']['loss_after']:.6f}; ln(V)={math.log(cfg.get_text_config().vocab_size):.4f}; "
          f"{len(st_keys)} trained tensors, tied={bool(tied)}, dir {size/1024:.0f} KiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "reference", "fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)                     # bit-stable regeneration on any CPU count
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"safetensors {safetensors.__version__}", file=sys.stderr)
    for perturbed in (False, True):
        for name in args.models.split(","):
            fixture(name.strip(), args.out, perturbed)


if __name__ == "__main__":
    main()
