#!/usr/bin/env python3
"""Fixtures for tokens a config adds to the tokenizer (runtime/tokenizer.c
rt_tok_add / rt_tok_override, frontend/tokcfg.c, runtime/modeldir.c).

For each scenario below, does what Axolotl's load_tokenizer does with the
config keys, using transformers itself:
  added_tokens_overrides  rewrite the added token's content in tokenizer.json
                          (and model.vocab when it holds that id), then load
  special_tokens          add_special_tokens({key: AddedToken(v, rstrip=False,
                          lstrip=False, normalized=False)}) for bos, eos, pad,
                          unk in that order
  tokens                  add_tokens([AddedToken(t, rstrip=False, lstrip=False,
                          normalized=False)])
  additional_special_tokens  add_special_tokens({"additional_special_tokens": [...]})
and records len(tokenizer), the saved tokenizer.json's added_tokens (after
save_pretrained), and the ids of some texts, in tokenizers/added/<name>.json.
The "edits" list is the same changes in axo's plan form (rt_tok_setup).

Run from the repository root (needs transformers, tokenizers; no torch):
  python3 tests/reference/make_added_token_fixtures.py
Versions used: transformers 5.25.0, tokenizers 0.23.3.
"""
import json
import os
import shutil
import tempfile

from transformers import AddedToken, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "tokenizers", "added")

SCENARIOS = [
    {   # chatml on a Llama-3 style tokenizer: new eos, two new tokens, one of them already added as eos
        "name": "llama3-chatml",
        "dir": "tests/reference/tokenizers/llama3",
        "special_tokens": {"eos_token": "<|im_end|>"},
        "tokens": ["<|im_start|>", "<|im_end|>"],
    },
    {   # a reserved added token renamed, a new pad, a word of the vocab added (it becomes an added token
        # with its vocab id), and additional special tokens, one of them added by `tokens` before
        "name": "llama3-override",
        "dir": "tests/reference/tokenizers/llama3",
        "overrides": {703: "<|tool|>"},
        "special_tokens": {"pad_token": "<|pad|>", "bos_token": "<|begin_of_text|>"},
        "tokens": ["the", "<think>", "</think>"],
        "additional_special_tokens": ["<|extra_0|>", "<think>"],
    },
    {
        "name": "qwen2-think",
        "dir": "tests/reference/tokenizers/qwen2",
        "special_tokens": {"pad_token": "<|endoftext|>"},
        "tokens": ["<think>", "</think>", "<tool_call>"],
    },
    {
        "name": "llama2-tokens",
        "dir": "tests/reference/tokenizers/llama2",
        "special_tokens": {"eos_token": "</s>", "unk_token": "<unk>"},
        "tokens": ["<|im_start|>", "<|im_end|>", "▁the"],
    },
]

TEXTS = [
    "<|im_start|>user\nHi the there<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n",
    "other the theory <think>why?</think> answer<|pad|>",
    "<|tool|><|extra_0|> the<tool_call>{}</tool_call>",
    "no added tokens here at all",
    "<|begin_of_text|>the<|im_end|>the",
]


def axo_edits(sc):
    e = [{"content": v, "override": k} for k, v in sorted(sc.get("overrides", {}).items())]
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        if key in sc.get("special_tokens", {}):
            e.append({"content": sc["special_tokens"][key], "special": True})
    e += [{"content": t, "special": False} for t in sc.get("tokens", [])]
    e += [{"content": t, "special": True} for t in sc.get("additional_special_tokens", [])]
    return e


def run(sc, tmp):
    src = os.path.join(ROOT, sc["dir"])
    work = os.path.join(tmp, sc["name"])
    shutil.copytree(src, work)
    if sc.get("overrides"):  # Axolotl's modify_tokenizer_files
        p = os.path.join(work, "tokenizer.json")
        tj = json.load(open(p, encoding="utf-8"))
        for tid, new in sc["overrides"].items():
            hit = [a for a in tj["added_tokens"] if a["id"] == tid]
            assert hit, tid
            vocab = tj["model"]["vocab"]
            for k, v in list(vocab.items()):
                if v == tid:
                    del vocab[k]
                    vocab[new] = tid
            hit[0]["content"] = new
        json.dump(tj, open(p, "w", encoding="utf-8"), ensure_ascii=False)
    tok = AutoTokenizer.from_pretrained(work)
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        v = sc.get("special_tokens", {}).get(key)
        if v is not None:
            tok.add_special_tokens({key: AddedToken(v, rstrip=False, lstrip=False, normalized=False)})
    if sc.get("tokens"):
        tok.add_tokens([AddedToken(t, rstrip=False, lstrip=False, normalized=False) for t in sc["tokens"]])
    if sc.get("additional_special_tokens"):
        tok.add_special_tokens({"additional_special_tokens": sc["additional_special_tokens"]})
    saved = os.path.join(tmp, sc["name"] + "-saved")
    tok.save_pretrained(saved)
    tj = json.load(open(os.path.join(saved, "tokenizer.json"), encoding="utf-8"))
    cfg = json.load(open(os.path.join(saved, "tokenizer_config.json"), encoding="utf-8"))
    # the saved directory alone gives the same ids
    again = AutoTokenizer.from_pretrained(saved)
    cases = []
    for t in TEXTS:
        ids = tok.encode(t, add_special_tokens=False)
        assert again.encode(t, add_special_tokens=False) == ids
        cases.append({"text": t, "ids": ids})
    return {
        "name": sc["name"],
        "dir": sc["dir"],
        "edits": axo_edits(sc),
        "len": len(tok),
        "added_tokens": tj["added_tokens"],
        "special": {k: cfg.get(k) for k in ("bos_token", "eos_token", "pad_token", "unk_token") if cfg.get(k) is not None},
        "cases": cases,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for sc in SCENARIOS:
            fx = run(sc, tmp)
            with open(os.path.join(OUT, sc["name"] + ".json"), "w", encoding="utf-8") as f:
                json.dump(fx, f, ensure_ascii=False, indent=1, sort_keys=True)
                f.write("\n")
            print(sc["name"], "len", fx["len"], "added", [(a["id"], a["content"]) for a in fx["added_tokens"]][-4:])


if __name__ == "__main__":
    main()
