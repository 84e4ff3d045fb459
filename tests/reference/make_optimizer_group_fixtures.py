#!/usr/bin/env python3
"""Optimizer-group fixtures: the learning rate and weight decay Axolotl 0.19
gives each parameter with embedding_lr, embedding_lr_scale and lr_groups.

Runs Axolotl's own OptimizerMixin.create_optimizer_grouped_parameters (its
source, taken from the installed package with ast, so that neither torch nor
transformers' Trainer is imported) on the parameter names of the bundled
tiny-llama, whose decaying parameters are HF Trainer's (every weight but the
norms'). Writes optimizer_groups.json: for each case, the config
keys and {parameter: [lr, weight_decay]}. tests/e2e/optimizer_groups.sh
compiles each case and compares the opt_step's adamw nodes with it.

Needs Axolotl's Python package (pip install --no-deps axolotl==0.19.0).
Run from the repository root: python3 tests/reference/make_optimizer_group_fixtures.py
"""
import ast
import importlib.util
import json
import os
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(importlib.util.find_spec("axolotl").origin), "core", "trainers", "mixins",
                   "optimizer.py")

LR, WD = 0.01, 0.1
NAMES = (["model.embed_tokens.weight"]
         + [f"model.layers.{i}.{m}" for i in range(2) for m in (
             "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
             "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
             "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")]
         + ["model.norm.weight", "lm_head.weight"])

CASES = {
    "lr_groups": {"lr_groups": [{"name": "mlp", "modules": ["mlp"], "lr": 0.02},
                                {"name": "attn", "modules": ["self_attn.q_proj", "mlp.down"], "lr": 0.005}]},
    "lr_groups_repeat": {"lr_groups": [{"name": "a", "modules": ["layers.1", "q_proj"], "lr": 0.04},
                                       {"name": "b", "modules": ["q_proj", "norm"], "lr": 0.0025}]},
    "embedding_lr_scale": {"embedding_lr_scale": 0.5},
    "embedding_lr": {"embedding_lr": 0.001},
    "embedding_lr_scale_1": {"embedding_lr_scale": 1.0},
    "both": {"embedding_lr": 0.001, "embedding_lr_scale": 0.25,
             "lr_groups": [{"name": "up", "modules": ["up_proj"], "lr": 0.03}]},
}


def grouping_function():
    tree = ast.parse(open(SRC).read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "OptimizerMixin")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "create_optimizer_grouped_parameters")
    ns = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), SRC, "exec"), ns)
    return ns["create_optimizer_grouped_parameters"]


class Param:
    def __init__(self, name):
        self.name, self.requires_grad = name, True


def main():
    group_fn = grouping_function()
    model = types.SimpleNamespace(named_parameters=lambda: [(n, Param(n)) for n in NAMES])
    out = {}
    for case, keys in CASES.items():
        args = types.SimpleNamespace(weight_decay=WD, lr_groups=keys.get("lr_groups"),
                                     embedding_lr=keys.get("embedding_lr"),
                                     embedding_lr_scale=keys.get("embedding_lr_scale"))
        fake = types.SimpleNamespace(args=args,
                                     get_decay_parameter_names=lambda m: [n for n in NAMES if "norm" not in n])
        groups = group_fn(fake, model, {"lr": LR})
        per = {}
        for g in groups:
            for p in g["params"]:
                per[p.name] = [g["lr"], g["weight_decay"]]
        assert sorted(per) == sorted(NAMES), case
        out[case] = {"config": keys, "params": per}
    path = os.path.join(HERE, "optimizer_groups.json")
    with open(path, "w") as f:
        json.dump({"learning_rate": LR, "weight_decay": WD, "cases": out}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(path, len(out), "cases")


if __name__ == "__main__":
    main()
