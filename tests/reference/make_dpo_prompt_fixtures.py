#!/usr/bin/env python3
"""rl: dpo prompt fixtures: Axolotl 0.19's own DPO strategies, its length
filter's rule, then TRL 1.9's own tokenization, on crafted rows. The cpo-* and
orpo-* cases are rl: simpo and rl: orpo: TRL's CPOTrainer / ORPOTrainer
tokenize_row (trl.experimental; the two are the same) after Axolotl's DPO
passthrough and its ORPO chat_template.argilla.

Writes prompts/dpo-<case>/ in make_prompt_fixtures.py's layout (case.json,
rows.jsonl, expected.jsonl), which test_prompt.c runs through
runtime/prompt.c. A row gives two samples, prompt + chosen then prompt +
rejected, labels -100 on the prompt (TRL's prompt_ids, chosen_ids and
rejected_ids, as its collator joins them); a row Axolotl's
_drop_long_sequences drops gives two empty samples (axo's marker for it,
which its loader counts and skips).

Needs Axolotl 0.19 with transformers, trl 1.9 and torch importable (CPU).
Run from the repository root: python3 tests/reference/make_dpo_prompt_fixtures.py [CASE ...]
(cases named: only those are made again)
"""
import json
import os
import shutil
import sys

from axolotl.prompt_strategies.dpo import chat_template, chatml, llama3, passthrough, user_defined, zephyr
from transformers import PreTrainedTokenizerFast
from trl.data_utils import _tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "tokenizers")
OUT = os.path.join(HERE, "prompts")

BASE_ROWS = [
    {"system": "You are kind.", "question": "What is the city of the school?", "prompt": "Name two years.",
     "input": "Which state was first?", "chosen": "The first one.", "rejected": "It was later."},
    {"system": "", "question": "Who was there?", "prompt": "Say it.", "input": "and the other",
     "chosen": "She was there in the year.", "rejected": "no"},
    {"question": "Is this new?", "prompt": "x", "input": "y", "chosen": " leading space", "rejected": "trailing space "},
    {"system": None, "question": "Long " + "the school of the city " * 20, "prompt": "p " * 60, "input": "i " * 60,
     "chosen": "dropped", "rejected": "dropped"},
]
CONV_ROWS = [  # argilla_chat and ultra read chosen[i]["content"]
    {"system": "Be short.", "prompt": "Where is it?",
     "chosen": [{"role": "user", "content": "Where is it?"}, {"role": "assistant", "content": "In the city."}],
     "rejected": [{"role": "user", "content": "Where is it?"}, {"role": "assistant", "content": "No idea."}]},
    {"prompt": "Two?",
     "chosen": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Two years."}],
     "rejected": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Three<|eot_id|>"}]},
]
# default's key fallbacks: input / question / instruction, chosen_response / rejected_response. The keys are the
# dataset's columns (HF datasets gives every row all of them, None where it has none), so each case's rows share them.
DEFAULT_ROWS = [
    {"input": "What was first?", "chosen_response": "The school.", "rejected_response": "The city."},
    {"input": "Which one?", "chosen_response": "This one.", "rejected_response": "No."},
]
DEFAULT_ROWS_B = [
    {"instruction": "Name one.", "chosen": "One.", "rejected": "Two.", "system": "Count."},
    {"instruction": "Name two.", "chosen": "Two.", "rejected": "Three.", "system": ""},
]
UD_ROWS = [
    {"q": "What year?", "sys": "Answer.", "good": "That year.", "bad": "This year."},
    {"q": "Which city?", "good": "The first city.", "bad": "no city"},
]
PASS_ROWS = [  # (an empty prompt, chosen or rejected: Axolotl raises; tests/e2e/dpo.sh checks axo refuses it)
    {"prompt": "Question: which one?\nAnswer:", "chosen": " the first", "rejected": " the other"},
    {"prompt": "x", "chosen": "only completion", "rejected": "other"},
]

CPO_ROWS = PASS_ROWS + [  # a prompt ending in a space: its last token merges with one completion's, not the other's
    {"prompt": "Say hi ", "chosen": "there", "rejected": "!"},
]

CHAT_ROWS = [  # chat_template.default: messages a list or a string; a completion a string, a message, or a list
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which city?"}],
     "chosen": "The first city.", "rejected": {"role": "assistant", "content": "  No city.  \n"}},
    {"messages": "Name a year.",
     "chosen": [{"role": "user", "content": "Name a year."}, {"role": "assistant", "content": "This year."}],
     "rejected": [{"role": "assistant", "content": "the school"}]},
    {"messages": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Yes."},
                  {"role": "user", "content": "And three?"}],
     "chosen": "Three as well.", "rejected": "Only two."},
]
ARGILLA_ROWS = [  # chat_template.argilla_chat: the chosen conversation but its last message is the prompt
    {"chosen": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which city?"},
                {"role": "assistant", "content": "The first city."}],
     "rejected": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which city?"},
                  {"role": "assistant", "content": "  No city.  \n"}]},
    {"chosen": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "And three?"}, {"role": "assistant", "content": "Three as well."}],
     "rejected": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Only two."}]},
]
NECTAR_ROWS = [  # zephyr.nectar: answers sorted by rank (stable), the last two; Nectar's best is rank 1
    {"prompt": "Which year?", "answers": [{"answer": "This year.", "rank": 1.0}, {"answer": "Next year.", "rank": 3.0},
                                          {"answer": "Last year.", "rank": 2.0}]},
    {"prompt": "Name a city.", "answers": [{"answer": "The first.", "rank": 2}, {"answer": "The second.", "rank": 2},
                                           {"answer": "The third.", "rank": 1}, {"answer": "The fourth.", "rank": 2}]},
    {"prompt": "Two?", "answers": [{"answer": "Yes", "rank": 5}, {"answer": "no", "rank": 4}]},
]
ORPO_ROWS = [  # rl: orpo's chat_template.argilla: turns by pairs, "system" when truthy (a "prompt" column would be every
    # user turn, and HF's None in the rows without it fails Axolotl's Message)
    {"system": "Be brief.", "chosen": [{"role": "user", "content": "Which city?"},
                                       {"role": "assistant", "content": "The first city."}],
     "rejected": [{"role": "user", "content": "Which city?"}, {"role": "assistant", "content": "  No city.  \n"}]},
    {"chosen": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "And three?"}, {"role": "assistant", "content": "Three as well."}],
     "rejected": [{"role": "user", "content": "Two?"}, {"role": "assistant", "content": "Yes."},
                  {"role": "user", "content": "And three?"}, {"role": "assistant", "content": "Only two."}]},
    {"system": "", "chosen": [{"role": "user", "content": "Say the café’s name — naïve?"},
                              {"role": "assistant", "content": "Café Ümlaut ✓."}],
     "rejected": [{"role": "user", "content": "Say the café’s name — naïve?"}, {"role": "assistant", "content": "No."}]},
    {"chosen": [{"role": "user", "content": "Long " + "the school of the city " * 12},
                {"role": "assistant", "content": "dropped"}],
     "rejected": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "dropped"}]},
]
CHAT_SPEC = {"strategy": "chat_template", "field_messages": "messages", "role": "role", "content": "content",
             "field_chosen": "chosen", "field_rejected": "rejected", "roles": []}

CASES = [
    # name, module, function, rows, tokenizer, bos, eos, sequence_len, axo spec, ds_cfg
    ("chatml-intel-llama3", chatml, "intel", BASE_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "chatml", "variant": "intel"}, {}),
    ("chatml-icr-qwen2", chatml, "icr", BASE_ROWS, "qwen2", None, "<|im_end|>", 64,
     {"strategy": "chatml", "variant": "icr"}, {}),
    ("chatml-prompt_pairs-qwen2", chatml, "prompt_pairs", BASE_ROWS, "qwen2", None, "<|im_end|>", 48,
     {"strategy": "chatml", "variant": "prompt_pairs"}, {}),
    ("chatml-default-llama3", chatml, "default", BASE_ROWS, "llama3", "<|begin_of_text|>",
     "<|eot_id|>", 64, {"strategy": "chatml", "variant": "default"}, {}),
    ("chatml-default_b-qwen2", chatml, "default", DEFAULT_ROWS_B, "qwen2", None, "<|im_end|>", 64,
     {"strategy": "chatml", "variant": "default"}, {}),
    ("chatml-argilla_chat-qwen2", chatml, "argilla_chat", CONV_ROWS, "qwen2", None, "<|im_end|>", 64,
     {"strategy": "chatml", "variant": "argilla_chat"}, {}),
    ("chatml-ultra-llama3", chatml, "ultra", CONV_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "chatml", "variant": "ultra"}, {}),
    ("llama3-intel-llama3", llama3, "intel", BASE_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "llama3", "variant": "intel"}, {}),
    ("llama3-default-llama3", llama3, "default", DEFAULT_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "llama3", "variant": "default"}, {}),
    ("llama3-argilla_chat-llama3", llama3, "argilla_chat", CONV_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>",
     64, {"strategy": "llama3", "variant": "argilla_chat"}, {}),
    ("llama3-ultra-qwen2", llama3, "ultra", CONV_ROWS, "qwen2", None, "<|im_end|>", 160,
     {"strategy": "llama3", "variant": "ultra"}, {}),
    ("llama3-icr-llama3", llama3, "icr", BASE_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 32,
     {"strategy": "llama3", "variant": "icr"}, {}),
    ("llama3-prompt_pairs-qwen2", llama3, "prompt_pairs", BASE_ROWS, "qwen2", None, "<|im_end|>", 160,
     {"strategy": "llama3", "variant": "prompt_pairs"}, {}),
    ("user_defined-llama3", user_defined, "default", UD_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "user_defined", "user_defined": {"field_prompt": "q", "field_system": "sys", "field_chosen": "good",
                                                   "field_rejected": "bad",
                                                   "prompt_format": "[{system}] Q: {prompt} {{A}}:",
                                                   "chosen_format": " {chosen}!", "rejected_format": " {rejected}?"}},
     {"field_prompt": "q", "field_system": "sys", "field_chosen": "good", "field_rejected": "bad",
      "prompt_format": "[{system}] Q: {prompt} {{A}}:", "chosen_format": " {chosen}!", "rejected_format": " {rejected}?"}),
    ("chat_template-chatml-qwen2", chat_template, "default", CHAT_ROWS, "qwen2", None, "<|im_end|>", 64,
     dict(CHAT_SPEC, chat_template="chatml"), {"chat_template": "chatml"}),
    ("chat_template-llama3-llama3", chat_template, "default", CHAT_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 96,
     dict(CHAT_SPEC, chat_template="llama3"), {"chat_template": "llama3"}),
    ("chat_template-argilla_chat-llama3", chat_template, "argilla_chat", ARGILLA_ROWS, "llama3", "<|begin_of_text|>",
     "<|eot_id|>", 96, dict(CHAT_SPEC, chat_template="llama3", variant="argilla_chat"), {"chat_template": "llama3"}),
    ("chat_template-argilla_chat-qwen2", chat_template, "argilla_chat", ARGILLA_ROWS, "qwen2", None, "<|im_end|>", 40,
     dict(CHAT_SPEC, chat_template="chatml", variant="argilla_chat"), {"chat_template": "chatml"}),
    ("zephyr-nectar-llama3", zephyr, "nectar", NECTAR_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "zephyr", "variant": "nectar"}, {}),
    ("passthrough-llama3", passthrough, "default", PASS_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "passthrough"}, {}),
    ("passthrough-qwen2", passthrough, "default", PASS_ROWS, "qwen2", None, "<|im_end|>", 64,
     {"strategy": "passthrough"}, {}),
    # rl: simpo (CPOTrainer's tokenize_row): the bos added before the prompt, a short sequence_len cutting completions
    ("cpo-llama3-intel-llama3", llama3, "intel", BASE_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     {"strategy": "llama3", "variant": "intel", "tokenize": "cpo"}, {}),
    ("cpo-passthrough-qwen2", passthrough, "default", CPO_ROWS, "qwen2", None, "<|im_end|>", 9,
     {"strategy": "passthrough", "tokenize": "cpo"}, {}),
    # rl: orpo: Axolotl's ORPO chat_template.argilla, then ORPOTrainer's tokenize_row
    ("orpo-argilla-llama3", "orpo", "argilla", ORPO_ROWS, "llama3", "<|begin_of_text|>", "<|eot_id|>", 64,
     dict(CHAT_SPEC, chat_template="llama3", variant="orpo_argilla", tokenize="cpo", field_messages="chosen"),
     {"chat_template": "llama3"}),
    ("orpo-argilla-qwen2", "orpo", "argilla", ORPO_ROWS, "qwen2", None, "<|im_end|>", 48,
     dict(CHAT_SPEC, chat_template="chatml", variant="orpo_argilla", tokenize="cpo", field_messages="chosen"),
     {"chat_template": "chatml"}),
]


def cpo_tokenize(tok, ex, seq_len):
    """TRL 1.9's CPOTrainer.tokenize_row (ORPOTrainer's is the same code) on an object that has what it reads"""
    import types
    from trl.experimental.cpo import CPOTrainer
    me = types.SimpleNamespace(processing_class=tok, is_encoder_decoder=False, max_length=seq_len,
                               max_completion_length=None)
    me.build_tokenized_answer = types.MethodType(CPOTrainer.build_tokenized_answer, me)
    b = CPOTrainer.tokenize_row(me, ex)
    return [(b[k + "_input_ids"], b[k + "_labels"]) for k in ("chosen", "rejected")]


def drop_long_ok(s, tok, seq_len):
    """Axolotl 0.19's utils/data/rl.py _drop_long_sequences for DPO (its module imports Axolotl's telemetry and
    loaders; the rule is these lines): prompt + chosen and prompt + rejected, tokens without specials"""
    n = lambda t: len(tok(t, add_special_tokens=False)["input_ids"])
    return n(s["prompt"]) + n(s["chosen"]) <= seq_len and n(s["prompt"]) + n(s["rejected"]) <= seq_len


def trl_tokenize(tok, ex):
    """TRL 1.9 DPOTrainer._prepare_dataset for text: add_eos, then tokenize_fn"""
    eos = tok.eos_token
    ex = dict(ex)
    for k in ("chosen", "rejected"):
        if not ex[k].endswith(eos):
            ex[k] = ex[k] + eos
    p = _tokenize(tok, ex["prompt"])["input_ids"]
    pc = _tokenize(tok, ex["prompt"] + ex["chosen"])["input_ids"]
    pr = _tokenize(tok, ex["prompt"] + ex["rejected"])["input_ids"]
    return p, pc[len(p):], pr[len(p):]


def main():
    only = sys.argv[1:]
    for (name, mod, fn, rows, tname, bos, eos, seq_len, spec, ds_cfg) in CASES:
        if only and name not in only:
            continue
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOK, tname, "tokenizer.json"), bos_token=bos,
                                      eos_token=eos)
        if mod == "orpo":  # Axolotl's ORPO strategy: the config's chat_template
            from axolotl.prompt_strategies.orpo import chat_template as orpo_ct
            from axolotl.utils.dict import DictDefault
            transform = orpo_ct.argilla(DictDefault({"chat_template": ds_cfg["chat_template"]}))
        elif mod is chat_template:  # the top-level template (Axolotl's DPODataset keeps no chat_template of its own)
            cfg = {"datasets": [{"type": "chat_template.default"}], "chat_template": ds_cfg["chat_template"]}
            transform = getattr(mod, fn)(cfg, dataset_idx=0)
        else:
            cfg = {"datasets": [{"type": ds_cfg if ds_cfg else "x"}]}
            transform = getattr(mod, fn)(cfg, dataset_idx=0)
        if isinstance(transform, tuple):
            transform = transform[0]
        d = os.path.join(OUT, "dpo-" + name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        setup = {"bos": bos, "eos": eos, "eot_tokens": [eos], "pad": None, "sequence_len": seq_len, "tokenizer": tname,
                 "train_on_inputs": False, "unk": None}
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump({"spec": dict(spec, type="dpo"), "setup": setup}, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
        kept = 0
        with open(os.path.join(d, "rows.jsonl"), "w") as fr, open(os.path.join(d, "expected.jsonl"), "w") as fe:
            # rows as HF datasets hands them over: every column of the file, None where a row has none
            cols = []
            for r in rows:
                cols += [k for k in r if k not in cols]
            for r in rows:
                fr.write(json.dumps(r, ensure_ascii=False) + "\n")
                full = {k: json.loads(json.dumps(r.get(k))) for k in cols}
                s = transform(full, tokenizer=tok) if mod in (passthrough, chat_template, "orpo") else transform(full)
                assert s["prompt"] and s["chosen"] and s["rejected"]  # else Axolotl raises (_drop_long_sequences)
                if not drop_long_ok(s, tok, seq_len):
                    for _ in range(2):
                        fe.write(json.dumps({"input_ids": [], "labels": []}) + "\n")
                    continue
                kept += 1
                if spec.get("tokenize") == "cpo":
                    for ids, labels in cpo_tokenize(tok, s, seq_len):
                        fe.write(json.dumps({"input_ids": ids, "labels": labels}) + "\n")
                    continue
                p, c, rj = trl_tokenize(tok, s)
                for comp in (c, rj):
                    fe.write(json.dumps({"input_ids": p + comp, "labels": [-100] * len(p) + comp}) + "\n")
        print(name, kept, "of", len(rows), "pairs kept")


if __name__ == "__main__":
    main()
