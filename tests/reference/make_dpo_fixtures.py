#!/usr/bin/env python3
"""The rl: dpo reference: TRL 1.9's DPOTrainer itself, run as Axolotl 0.19 runs
it, on the bundled tiny chat model and toy preference pairs.

Writes tests/reference/dpo/tiny-llama-chat/: the model (config.json,
tokenizer files and model.safetensors of transformers' own init under
torch.manual_seed(1234), float32) and dpo.json: for each case, the config
axo compiles (a YAML text whose base_model and datasets paths are relative to
that directory) and TRL's log history, one entry a step: loss, grad_norm,
learning_rate, rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/chosen, logps/rejected.

What it reproduces of Axolotl (0.19, axolotl/utils/data/rl.py and
core/builders/rl.py), without importing it: the llama3.intel transform, the
drop of pairs whose prompt + completion (tokens without specials) exceed
sequence_len, the merged dataset's shuffle(seed), max_length = sequence_len,
max_steps = ceil(pairs x num_epochs / batch size) when the config sets none,
warmup_steps as given (else Axolotl's default rule), logging_first_step (its RL builder sets it),
optim adamw_torch, beta from rl_beta. TRL then adds
the eos, tokenizes, drops pairs whose prompt fills max_length, and trains with
its reference model loaded again from the same directory (full fine-tune).

TRL's other losses (dpo_loss_type, a weighted sum with dpo_loss_weights,
dpo_label_smoothing, rl: ipo) are cases too, passed to DPOConfig as Axolotl's
DPOStrategy passes them; and rl: simpo, run by TRL's CPOTrainer
(trl.experimental.cpo) with loss_type simpo, simpo_gamma and cpo_alpha as
Axolotl's RL builder passes them (its log adds nll_loss).

Usage (repository root):  python3 tests/reference/make_dpo_fixtures.py [CASE ...]
(cases named: only those are run again, into the existing dpo.json and model;
none: everything, the model included, but the cases of several processes,
which run as  torchrun --nproc_per_node 2 tests/reference/make_dpo_fixtures.py CASE)
Needs: torch, transformers 5, trl 1.9, datasets, accelerate (CPU).
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "dpo", "tiny-llama-chat")
DATA = os.path.join(ROOT, "configs", "data", "toy_dpo.jsonl")
SEED = 42

CASES = {
    # name: (sequence_len, micro_batch_size, gradient_accumulation_steps, steps, lr, beta, lr_scheduler,
    #        warmup_steps (None: unset), rows, logging_steps)
    "full_ga2": (64, 2, 2, 8, 5e-3, 0.1, "cosine", 2, 48, 1),
    "full_beta05_short": (40, 3, 1, 6, 2e-3, 0.5, "constant", 0, 30, 1),
    # Axolotl's default warmup (3% of its own step count, not of max_steps) and HF's mean loss over logging_steps
    "full_default_warmup_log3": (64, 2, 1, 9, 3e-3, 0.1, "cosine", None, 600, 3),
    # val_set_size: the last 10% of the merged pairs held out (train_test_split, shuffle=False); eval_steps 2 with
    # Axolotl's eval_on_start, eval batches of 3 pairs
    "full_eval": (64, 2, 1, 6, 5e-3, 0.1, "linear", 2, 48, 1, {"val_set_size": 0.1, "eval_steps": 2, "eval_batch_size": 3}),
    # the same on 2 processes (torchrun --nproc_per_node 2 ... full_eval_2ranks; world: the ranks it needs): 5 eval
    # pairs in batches of 2, so accelerate tops the last one (pair 4) up with pair 0 (even_batches)
    "full_eval_2ranks": (64, 1, 1, 6, 5e-3, 0.1, "linear", 2, 48, 1,
                         {"val_set_size": 0.1, "eval_steps": 2, "eval_batch_size": 2, "world": 2}),
    # TRL's other loss types (ir/dpo_loss.h): rl: ipo (its length-normalised loss), weighted sums, label smoothing
    "loss_ipo": (64, 2, 2, 4, 5e-3, 0.1, "cosine", 1, 48, 1, {"rl": "ipo"}),
    "loss_hinge_bco": (64, 2, 1, 4, 5e-3, 0.1, "linear", 1, 48, 1,
                       {"dpo_loss_type": ["hinge", "bco_pair"], "dpo_loss_weights": [0.6, 0.4]}),
    "loss_robust": (64, 3, 1, 4, 5e-3, 0.2, "constant", 0, 48, 1, {"dpo_loss_type": ["robust"], "dpo_label_smoothing": 0.1}),
    "loss_exo_nca": (64, 2, 1, 4, 5e-3, 0.1, "cosine", 1, 48, 1,
                     {"dpo_loss_type": ["exo_pair", "nca_pair"], "dpo_label_smoothing": 0.01}),
    "loss_sppo_apo": (64, 2, 1, 4, 2e-3, 0.5, "cosine", 1, 48, 1,
                      {"dpo_loss_type": ["sppo_hard", "apo_zero", "apo_down"], "dpo_loss_weights": [0.1, 1.0, 0.5]}),
    "loss_discopop_norm": (64, 2, 1, 4, 5e-3, 0.1, "cosine", 1, 48, 1,
                           {"dpo_loss_type": ["discopop", "sigmoid_norm"], "dpo_loss_weights": [1.0, 2.0]}),
    # TRL's sft term (the micro-batch's chosen completions' token mean; with sigmoid, RPO), with accumulation and an
    # evaluation (its batch's own NLL in eval_loss)
    "loss_sigmoid_sft": (64, 2, 2, 4, 5e-3, 0.1, "cosine", 1, 48, 1,
                         {"dpo_loss_type": ["sigmoid", "sft"], "dpo_loss_weights": [1.0, 0.5], "val_set_size": 0.1,
                          "eval_steps": 2, "eval_batch_size": 3}),
    # rl: simpo: TRL's CPOTrainer (trl.experimental.cpo) with loss_type simpo, as Axolotl's RL builder makes it:
    # simpo_gamma, cpo_alpha when set (CPOConfig's 1.0 otherwise), its own tokenize_row
    "simpo_ga2": (64, 2, 2, 6, 5e-3, 2.0, "cosine", 1, 48, 1, {"rl": "simpo", "simpo_gamma": 0.5}),
    "simpo_alpha0_short": (40, 3, 1, 5, 2e-3, 1.0, "constant", 0, 30, 1,
                           {"rl": "simpo", "simpo_gamma": 1.0, "cpo_alpha": 0.0}),
    "simpo_eval": (64, 2, 1, 4, 5e-3, 2.0, "linear", 2, 48, 1,
                   {"rl": "simpo", "simpo_gamma": 0.5, "cpo_alpha": 0.5, "val_set_size": 0.1, "eval_steps": 2,
                    "eval_batch_size": 3}),
    # rl: orpo: TRL's ORPOTrainer (trl.experimental.orpo) on Axolotl's ORPO chat_template.argilla texts (the toy pairs
    # as conversations, chat_template llama3), beta from rl_beta (Axolotl: trl.beta, rl_beta, then orpo_alpha)
    "orpo_ga2": (64, 2, 2, 6, 5e-3, 0.2, "cosine", 1, 48, 1, {"rl": "orpo"}),
    "orpo_eval_short": (44, 3, 1, 4, 5e-3, 0.1, "linear", 2, 48, 1,
                        {"rl": "orpo", "val_set_size": 0.1, "eval_steps": 2, "eval_batch_size": 2}),
    # both on 2 processes, 5 eval pairs in batches of 2: CPOTrainer and ORPOTrainer gather their metrics with
    # gather_for_metrics (accelerate's top-up pair cut), their NLL per batch (torchrun --nproc_per_node 2 ...)
    "simpo_eval_2ranks": (64, 1, 1, 4, 5e-3, 2.0, "linear", 2, 48, 1,
                          {"rl": "simpo", "simpo_gamma": 0.5, "val_set_size": 0.1, "eval_steps": 2, "eval_batch_size": 2,
                           "world": 2}),
    "orpo_eval_2ranks": (64, 1, 1, 4, 5e-3, 0.2, "linear", 2, 48, 1,
                         {"rl": "orpo", "val_set_size": 0.1, "eval_steps": 2, "eval_batch_size": 2, "world": 2}),
}


def orpo_rows(rows):
    """The toy pairs as Axolotl's ORPO argilla rows: user / assistant conversations, the system prompt beside"""
    out = []
    for r in rows:
        o = {"chosen": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["rejected"]}]}
        if r.get("system"):
            o["system"] = r["system"]
        out.append(o)
    return out


def llama3_intel(row):
    sys_ = row.get("system")
    p = ""
    if sys_:
        p = "<|start_header_id|>system<|end_header_id|>\n\n%s<|eot_id|>" % sys_
    p += ("<|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
          % row["question"])
    return {"prompt": p, "chosen": row["chosen"] + "<|eot_id|>", "rejected": row["rejected"] + "<|eot_id|>"}


def yaml_of(case):
    S, mbs, ga, steps, lr, beta, sched, warm, rows, log = case[:10]
    extra = dict(case[10] if len(case) > 10 else {})
    rl = extra.pop("rl", "dpo")
    extra.pop("world", None)
    if rl == "orpo":
        extra["chat_template"] = "llama3"
    data = ("toy_orpo_%d.jsonl\n    type: chat_template.argilla" if rl == "orpo" else "toy_dpo_%d.jsonl\n    type: llama3.intel") % rows
    return "".join("%s: %s\n" % (k, v if isinstance(v, str) else repr(v)) for k, v in extra.items()) + ("base_model: .\nrl: %s\nrl_beta: %r\ndatasets:\n  - path: %s\n"
            "sequence_len: %d\nmicro_batch_size: %d\ngradient_accumulation_steps: %d\nnum_epochs: 1\nmax_steps: %d\n"
            "learning_rate: %r\nlr_scheduler: %s\n%soptimizer: adamw_torch\nmax_grad_norm: 1.0\n"
            "weight_decay: 0.0\nlogging_steps: %d\nseed: %d\n"
            % (rl, beta, data, S, mbs, ga, steps, lr, sched, "" if warm is None else "warmup_steps: %d\n" % warm, log, SEED))


def axolotl_warmup(warm, total_num_steps):
    """core/builders/base.py _configure_warmup_and_logging (no warmup_ratio in these cases)"""
    w = warm if warm is not None else min(int(0.03 * total_num_steps), 100)
    return 2 if w == 1 else w


def main():
    import datasets
    import transformers
    import trl
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    only = sys.argv[1:]
    world, rank0 = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0
    if world > 1 and not only:
        sys.exit("several processes run only named cases (the model is made by one)")
    src = os.path.join(ROOT, "configs", "models", "tiny-llama-chat")
    os.makedirs(OUT, exist_ok=True)
    if not only:  # the model itself (named cases run again on the one already there)
        cfg = AutoConfig.from_pretrained(src)
        cfg._attn_implementation = "eager"
        torch.manual_seed(1234)
        model = LlamaForCausalLM(cfg).float()
        model.save_pretrained(OUT, safe_serialization=True)
        os.remove(os.path.join(OUT, "generation_config.json"))  # save_pretrained's; nothing here reads it
        for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):  # the originals, byte for byte
            shutil.copy(os.path.join(src, f), os.path.join(OUT, f))
    rows_all = [json.loads(l) for l in open(DATA, encoding="utf-8")]
    tok = AutoTokenizer.from_pretrained(OUT)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                "datasets": datasets.__version__}
    out = {"versions": versions, "cases": {}}
    if only:
        out = json.load(open(os.path.join(OUT, "dpo.json")))
        out.setdefault("case_versions", {})
    for name, case in CASES.items():
        if only and name not in only:
            continue
        if only:
            out["case_versions"][name] = versions
        S, mbs, ga, steps, lr, beta, sched, warm, nrows, log = case[:10]
        extra = case[10] if len(case) > 10 else {}
        if extra.get("world", 1) != world:
            print("%s: needs %d processes (torchrun --nproc_per_node %d %s %s); skipped" %
                  (name, extra.get("world", 1), extra.get("world", 1), sys.argv[0], name), file=sys.stderr)
            continue
        with open(os.path.join(OUT, "toy_dpo_%d.jsonl" % nrows), "w", encoding="utf-8") as f:
            for r in rows_all[:nrows]:
                f.write(json.dumps(r) + "\n")
        orpo = extra.get("rl") == "orpo"
        if orpo:  # Axolotl's own ORPO transform (prompt_strategies/orpo/chat_template.py argilla)
            from axolotl.prompt_strategies.orpo.chat_template import argilla
            from axolotl.utils.dict import DictDefault
            orows = orpo_rows(rows_all[:nrows])
            with open(os.path.join(OUT, "toy_orpo_%d.jsonl" % nrows), "w", encoding="utf-8") as f:
                for r in orows:
                    f.write(json.dumps(r) + "\n")
            fn = argilla(DictDefault({"chat_template": "llama3"}))
            pairs = [fn(r, tokenizer=tok) for r in orows]
        else:
            pairs = [llama3_intel(r) for r in rows_all[:nrows]]
        loss_kw = {}  # Axolotl's DPOStrategy.set_training_args_kwargs
        simpo = extra.get("rl") == "simpo"
        if simpo:  # Axolotl's RL builder for rl: simpo
            loss_kw["loss_type"] = "simpo"
            loss_kw["simpo_gamma"] = extra["simpo_gamma"]
            if extra.get("cpo_alpha") is not None:
                loss_kw["cpo_alpha"] = extra["cpo_alpha"]
        elif extra.get("rl") == "ipo":
            loss_kw["loss_type"] = ["ipo"]
        else:
            if extra.get("dpo_loss_type") is not None:
                loss_kw["loss_type"] = extra["dpo_loss_type"]
            if extra.get("dpo_loss_weights") is not None:
                loss_kw["loss_weights"] = extra["dpo_loss_weights"]
            if extra.get("dpo_label_smoothing"):
                loss_kw["label_smoothing"] = extra["dpo_label_smoothing"]

        def fits(s):
            n = lambda t: len(tok(t, add_special_tokens=False)["input_ids"])
            return n(s["prompt"]) + n(s["chosen"]) <= S and n(s["prompt"]) + n(s["rejected"]) <= S

        pairs = [p for p in pairs if fits(p)]
        ds = datasets.Dataset.from_list(pairs).shuffle(seed=SEED)
        eval_ds = None
        if extra.get("val_set_size"):  # Axolotl's create_train_validation_split
            sp = ds.train_test_split(test_size=extra["val_set_size"], shuffle=False, seed=SEED)
            ds, eval_ds = sp["train"], sp["test"]
        total_num_steps = math.ceil(len(ds) * 1 / (mbs * ga))  # Axolotl's for rl: pairs x num_epochs / batch size
        warmup = axolotl_warmup(warm, total_num_steps)
        torch.manual_seed(1234)
        policy = LlamaForCausalLM.from_pretrained(OUT, torch_dtype=torch.float32, attn_implementation="eager")
        with tempfile.TemporaryDirectory() as tmp:
            from trl.experimental.cpo import CPOConfig, CPOTrainer
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer
            Config, Trainer = ((CPOConfig, CPOTrainer) if simpo else (ORPOConfig, ORPOTrainer) if orpo
                               else (trl.DPOConfig, trl.DPOTrainer))
            args = Config(output_dir=tmp, per_device_train_batch_size=mbs, gradient_accumulation_steps=ga,
                                 learning_rate=lr, lr_scheduler_type=sched, warmup_steps=warmup, max_steps=steps,
                                 logging_steps=log, logging_first_step=True, beta=beta, max_length=S, seed=SEED, data_seed=SEED, optim="adamw_torch",
                                 weight_decay=0.0, max_grad_norm=1.0, report_to=[], save_strategy="no", use_cpu=True,
                                 remove_unused_columns=False, bf16=False, dataloader_num_workers=0, **loss_kw,
                                 **({"eval_strategy": "steps", "eval_steps": extra["eval_steps"], "eval_on_start": True,
                                     "per_device_eval_batch_size": extra["eval_batch_size"]} if eval_ds is not None else {}))
            tr = Trainer(model=policy, args=args, train_dataset=ds, eval_dataset=eval_ds, processing_class=tok)
            tr.train()
            hist = [h for h in tr.state.log_history if "loss" in h and "train_runtime" not in h]
            ehist = [h for h in tr.state.log_history if "eval_loss" in h]
        keys = ("loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                "rewards/margins", "logps/chosen", "logps/rejected") + (("nll_loss",) if simpo or orpo else ()) + \
               (("log_odds_ratio", "log_odds_chosen") if orpo else ())
        ekeys = ("eval_loss",) + tuple("eval_" + k for k in keys[3:])
        if world > 1:
            out["cases"][name] = {"world": world}
        else:
            out["cases"][name] = {}
        out["cases"][name] |= {"config": yaml_of(case), "pairs_after_axolotl_filter": len(pairs), "warmup": warmup,
                              "steps": [{k: float(h[k]) for k in keys} | {"step": int(h["step"])} for h in hist],
                              "evals": [{k: float(h[k]) for k in ekeys} | {"step": int(h["step"])} for h in ehist]}
        if rank0:
            print(name, len(pairs), "pairs;", " ".join("%.5f" % h["loss"] for h in hist))
    if not rank0:
        return 0
    with open(os.path.join(OUT, "dpo.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
