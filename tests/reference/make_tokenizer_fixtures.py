#!/usr/bin/env python3
"""Tokenizer fixtures for axo's tokenizer.json reader (runtime/tokenizer.c).

Trains small tokenizers with Hugging Face `tokenizers` (pip install
tokenizers) using the pipelines of the real model families, saves each as
tokenizers/<name>/tokenizer.json, and records what
`tokenizers` itself encodes for a set of hand-picked and random strings in
tokenizers/<name>/cases.jsonl: {"text", "ids", "ids_plain"}
(ids_plain: add_special_tokens=False).

  llama3      byte-level BPE, Llama-3's Split regex, ignore_merges, BOS by
              TemplateProcessing, special tokens appended after the vocab
  qwen2       byte-level BPE, NFC normalizer, Qwen2's Split regex (one digit
              per piece), no BOS
  gpt2        byte-level BPE, ByteLevel pre-tokenizer with its own regex and
              add_prefix_space, merges in the older "a b" string form
  llama2      SentencePiece-style BPE: Prepend + Replace normalizer, byte
              fallback (<0x00>..<0xFF>), fuse_unk, BOS <s>
  mistral     the same model with the newer Metaspace pre-tokenizer
              (prepend_scheme "first") and no normalizer
  gemma       Gemma's (transformers' GemmaTokenizer): byte-fallback BPE,
              Replace(" ", "▁") normalizer without a prefix, Split(" ",
              merged_with_previous) pre-tokenizer, <pad> <eos> <bos> <unk>
              <start_of_turn> <end_of_turn> first, BOS <bos>

Run from the repository root:  python3 tests/reference/make_tokenizer_fixtures.py [NAME ...]
(names: only those sets; none: all)
"""
import json
import os
import random

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers")

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

WORDS = ("the of and to in is was for on that with as by it at from his an were are which this also be had or has "
         "first one their its new after who they two her she been other when time during there into school more "
         "may years over only year most would world city some where between later three state such then national "
         "used made known under many university united while part season team these american than film second born "
         "south became states war through being including both before north high however people family early "
         "history album area him them county did around well game league don't I'LL we've they're it's you'd "
         "instruction input response assistant user system Write a short poem about cats. Answer: 42 Hello world").split()
UNI = ["café", "naïve", "Ωmega", "Straße", "日本語", "中文字符", "😀", "🚀🔥", "e\u0301", "Å", "\u00a0", "\u3000", "ﬁ", "١٢٣",
       "Привет", "мир", "α+β=γ", "→", "…", "\t", "\r\n", "  ", "\n\n", "    ", "3.14159", "2026-12-05", "$100", "#tag",
       "@user", "<|im_start|>", "<s>", "</s>", "<|eot_id|>", "foo_bar", "x'y", "'S", "'ll", "''"]


def corpus():
    rng = random.Random(1234)
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 25)
        toks = []
        for _ in range(n):
            r = rng.random()
            if r < 0.8:
                toks.append(rng.choice(WORDS))
            elif r < 0.9:
                toks.append(str(rng.randint(0, 100000)))
            else:
                toks.append(rng.choice(UNI[:20]))
        sep = rng.choice([" ", " ", " ", "  ", "\n", ", ", ". "])
        lines.append(sep.join(toks))
    return lines


def cases():
    fixed = [
        "", " ", "  ", "\n", "Hello world", " Hello world", "Hello  world", "Hello world ", "Hello\nworld\n\n",
        "don't DON'T I'LL we've they'RE", "12345678901", "3.14159 and 2026-12-05", "café naïve Straße",
        "e\u0301 vs \u00e9", "日本語のテキスト", "😀🚀🔥 emoji!", "tabs\tand\ttabs", "a\r\nb\r\n", "    indented code():\n        return x",
        "<|im_start|>user\nHi<|im_end|>\n", "<s>[INST] hi [/INST]", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "<|endoftext|>", "x<|im_end|>y", "<|im_start|><|im_start|>", "no\u00a0break\u3000space", "ﬁne ligature",
        "Привет, мир!", "α+β=γ → ∞…", "  leading and trailing  ", "'s's's", "#!/bin/bash\necho $HOME", "zz" * 40,
        " " * 33, "1" * 20, "Ω" * 7,
    ]
    rng = random.Random(99)
    pool = WORDS + UNI + ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<unk>"]
    for _ in range(250):
        n = rng.randint(1, 12)
        s = ""
        for _ in range(n):
            s += rng.choice(pool) + rng.choice(["", " ", " ", "\n", "  ", "\t", ",", ""])
        fixed.append(s)
    return fixed


def bytelevel(name, regex, nfc, specials, bos, gpt2_style=False):
    tok = Tokenizer(models.BPE(ignore_merges=(name == "llama3")))
    if nfc:
        tok.normalizer = normalizers.NFC()
    if gpt2_style:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    tok.add_special_tokens(specials)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    js = json.loads(tok.to_str())
    if gpt2_style:  # the older merges form
        js["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in js["model"]["merges"]]
    return js


def sp_layout(js, nspecial):
    """SentencePiece's id layout in a trained tokenizer's JSON: its first nspecial tokens, then the 256 byte tokens
    <0x00>..<0xFF>, then the learnt pieces in their order; the added tokens' ids follow."""
    order = sorted(js["model"]["vocab"].items(), key=lambda kv: kv[1])
    newv = {}
    for t, _ in order[:nspecial]:
        newv[t] = len(newv)
    for b in range(256):
        newv["<0x%02X>" % b] = len(newv)
    for t, _ in order[nspecial:]:
        if t not in newv:
            newv[t] = len(newv)
    js["model"]["vocab"] = newv
    for a in js["added_tokens"]:
        a["id"] = newv[a["content"]]


def sentencepiece(metaspace):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60,
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    js = json.loads(tok.to_str())
    sp_layout(js, 3)  # <unk> <s> </s>
    if metaspace:
        js["normalizer"] = None
        js["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    js["post_processor"] = {"type": "TemplateProcessing",
                            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    js["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return js


def gemma():
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous", invert=False)
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials, limit_alphabet=60, show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    js = json.loads(tok.to_str())
    sp_layout(js, len(specials))
    js["post_processor"] = {"type": "TemplateProcessing",
                            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                     {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}}
    js["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}
    return js


SPECIALS = {  # tokenizer_config.json of each set: the BOS/EOS the model family uses
    "llama3": ("<|begin_of_text|>", "<|end_of_text|>"),
    "qwen2": (None, "<|im_end|>"),
    "gpt2": ("<|endoftext|>", "<|endoftext|>"),
    "llama2": ("<s>", "</s>"),
    "mistral": ("<s>", "</s>"),
    "gemma": ("<bos>", "<eos>"),
}


def main():
    import sys
    only = set(sys.argv[1:])
    makers = {
        "llama3": lambda: bytelevel("llama3", LLAMA3, False,
                                    ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                     "<|eot_id|>"], "<|begin_of_text|>"),
        "qwen2": lambda: bytelevel("qwen2", QWEN2, True, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None),
        "gpt2": lambda: bytelevel("gpt2", None, False, ["<|endoftext|>"], None, gpt2_style=True),
        "llama2": lambda: sentencepiece(False),
        "mistral": lambda: sentencepiece(True),
        "gemma": gemma,
    }
    sets = {name: make() for name, make in makers.items() if not only or name in only}
    for name, js in sets.items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        text = json.dumps(js, ensure_ascii=False, indent=1)
        tok = Tokenizer.from_str(text)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(d, "cases.jsonl"), "w", encoding="utf-8") as f:
            for s in cases():
                row = {"text": s, "ids": tok.encode(s).ids,
                       "ids_plain": tok.encode(s, add_special_tokens=False).ids}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        bos, eos = SPECIALS[name]
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
                       "model_max_length": 1000000}, f, indent=1)
            f.write("\n")
        print(name, tok.get_vocab_size(), "tokens")


if __name__ == "__main__":
    main()
