#!/usr/bin/env python3
"""Prompt-format fixtures: what Axolotl itself makes of rows of text.

For each case below, runs Axolotl's own prompt strategy (alpaca, completion,
chat_template) with a tokenizer from tokenizers/ and writes
prompts/<case>/:
  case.json      axo's dataset spec (runtime/prompt.h) and tokenizer setup
  rows.jsonl     the input rows
  expected.jsonl {"input_ids": [...], "labels": [...]} per sample, in order
test_prompt.c feeds rows.jsonl through runtime/prompt.c and compares.

Needs Axolotl's Python package, which imports torch at module level although
tokenization never runs it; torch-free:
  pip install --no-deps axolotl==0.19.0 accelerate
  pip install transformers datasets pydantic colorama addict jinja2 tokenizers
The torch family is replaced by inert stand-ins below (only for import).
Run from the repository root: python3 tests/reference/make_prompt_fixtures.py
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inert_modules  # noqa: E402

inert_modules.install({"torch", "accelerate", "kernels", "peft", "bitsandbytes", "trl", "deepspeed", "flash_attn",
                       "liger_kernel", "triton", "torchao", "optimum", "xformers", "mistral_common"})
import transformers  # noqa: E402
import transformers.utils.versions as _versions  # noqa: E402

_versions.require_version = lambda *a, **k: None
_versions.require_version_core = lambda *a, **k: None
transformers.ProcessorMixin = type("ProcessorMixin", (), {})

from axolotl.prompt_strategies import chat_template, completion, input_output, user_defined  # noqa: E402
from axolotl.prompt_tokenizers import AlpacaPromptTokenizingStrategy  # noqa: E402
from axolotl.prompters import AlpacaPrompter  # noqa: E402
from axolotl.utils.dict import DictDefault  # noqa: E402
from axolotl.utils.schemas.utils import handle_legacy_message_fields_logic  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "tokenizers")
OUT = os.path.join(HERE, "prompts")

ALPACA_ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat well.\n2. Sleep.\n3. Move every day."},
    {"instruction": "Translate to French:", "input": "Hello world", "output": "Bonjour le monde"},
    {"instruction": "Add the numbers.", "input": "42 and 58", "output": "100"},
    {"instruction": "Say nothing.", "input": "", "output": ""},
    {"instruction": "Café naïve 日本語 😀", "output": "Straße → Ωmega"},
    {"instruction": "Repeat the word many times.", "input": "",
     "output": " ".join(["the"] * 80)},
    {"instruction": " ".join(["long"] * 70), "input": "x", "output": "short"},
]

UD_ROWS = [
    {"q": "Name a color.", "ctx": "", "a": "Blue."},
    {"q": "Sum these.", "ctx": "2 and 3", "a": "5", "sys": "Answer with digits."},
    {"q": "Translate: chat", "ctx": "to English", "a": "cat", "sys": ""},
    {"q": "Café?", "a": "Straße 😀"},
    {"q": " ".join(["long"] * 60), "ctx": "x", "a": "short"},
]

COMPLETION_ROWS = [
    {"text": "Hello world"},
    {"text": "The first season of the national league was played in the city. " * 3},
    {"text": ""},
    {"text": "日本語 text with 123456 and café"},
    {"text": " ".join(str(i) for i in range(700))},
]

CHAT_ROWS = [
    {"messages": [{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "4"}]},
    {"messages": [{"role": "user", "content": "Hi there"},
                  {"role": "assistant", "content": "Hello! How can I help?"},
                  {"role": "user", "content": "Tell me a joke."},
                  {"role": "assistant", "content": "  Why did the chicken cross the road?  "}]},
    {"messages": [{"role": "user", "content": "Café naïve 日本語 😀"},
                  {"role": "assistant", "content": "Straße\n\nΩmega"}]},
]

GEMMA3_ROWS = [
    {"messages": [{"role": "system", "content": "  Answer in French.\n"},
                  {"role": "user", "content": " Bonjour? "},
                  {"role": "assistant", "content": "Bonjour !"},
                  {"role": "user", "content": "Merci"},
                  {"role": "assistant", "content": "De rien."}]},
]

SHAREGPT_ROWS = [
    {"system": "Be kind.",
     "conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi, friend"},
                       {"from": "human", "value": "bye"}, {"from": "gpt", "value": "see you"}]},
    {"conversations": [{"from": "system", "value": "Sys"}, {"from": "human", "value": "q"},
                       {"from": "gpt", "value": "a"}]},
]

SEGMENT_ROWS = [
    {"segments": [{"label": False, "text": "<|begin_of_text|>Question: what is 2+2?\n"},
                  {"label": True, "text": "Answer: 4<|end_of_text|>"}]},
    {"segments": [{"label": True, "text": "all trained "}, {"label": False, "text": " hidden"},
                  {"label": True, "text": "\n\n  tail"}]},
]

THINKING_ROWS = [
    {"messages": [{"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "<think>greet</think>hello"},
                  {"role": "user", "content": "3+3?"},
                  {"role": "assistant", "content": "6", "reasoning_content": "\nthree and three\n"}]},
    {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                  {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"},
                  {"role": "assistant", "content": "e", "reasoning_content": ""}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x</think>y</think>z"}]},
]

TRAINING_ROWS = [
    {"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "first", "train": False},
                  {"role": "user", "content": "two"}, {"role": "assistant", "content": "second"},
                  {"role": "user", "content": "three", "train": True}, {"role": "assistant", "content": "third"}]},
]

# content as a list of parts (Axolotl's _convert_content_parts): texts joined;
# "train" or "weight" on a part makes a training detail of the parts' offsets
PARTS_ROWS = [
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "Let me think."},
                                                    {"type": "text", "text": " The answer is 4.", "train": True}]}]},
    {"messages": [{"role": "system", "content": [{"text": "Be terse."}]},
                  {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": [{"text": "Hello", "weight": 1}, {"text": " there, ", "weight": 0},
                                                    {"content": "friend"}, {"value": "!", "train": False},
                                                    "not a part", {"type": "image"}, {"text": ""}]},
                  {"role": "user", "content": [{"text": "Café 日本語 😀"}]},
                  {"role": "assistant", "content": [{"text": "Straße ", "train": False},
                                                    {"text": "Ωmega 😀 done", "train": True}]}]},
    {"messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": [{"text": "all of it"}, {"text": " untrained", "train": False}]},
                  {"role": "user", "content": "again"},
                  {"role": "assistant", "content": [{"text": "no flags"}, {"text": " anywhere"}]}]},
    {"messages": [{"role": "user", "content": "\u00a0 padded\u3000"},
                  {"role": "assistant", "content": [{"text": "\u2003spaced\u00a0", "train": True}, {"text": "\u205f"}]}]},
]

# message_field_training_detail: offsets (inclusive, in characters) of the
# content to train, some not on token boundaries
DETAIL_ROWS = [
    {"messages": [{"role": "user", "content": "Spell it."},
                  {"role": "assistant", "content": "The word is banana, and the answer is yes.",
                   "detail": [{"begin_offset": 0, "end_offset": 10, "train": False},
                              {"begin_offset": 12, "end_offset": 17, "train": True},
                              {"begin_offset": 27, "end_offset": 41, "train": True}]}]},
    {"messages": [{"role": "user", "content": "Again", "detail": [{"begin_offset": 0, "end_offset": 4, "train": True}]},
                  {"role": "assistant", "content": "Ωmega café 日本 tail",
                   "detail": [{"begin_offset": 3, "end_offset": 12, "train": True}]},
                  {"role": "user", "content": "more"},
                  {"role": "assistant", "content": "not trained at all", "detail": []},
                  {"role": "user", "content": "last"},
                  {"role": "assistant", "content": "flag wins", "train": True,
                   "detail": [{"begin_offset": 5, "end_offset": 8, "train": 1}]}]},
]

# reasoning_content as parts: a reasoning training detail, found on the
# reasoning's own span; the content's detail on the content's own span
THINK_PARTS_ROWS = [
    {"messages": [{"role": "user", "content": "3+3?"},
                  {"role": "assistant", "content": [{"text": "It is "}, {"text": "6.", "train": True}],
                   "reasoning_content": [{"text": "three and three", "train": False}, {"text": " make six", "train": True}]}]},
    {"messages": [{"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "hello",
                   "reasoning_content": [{"text": "greet them", "train": True}]}]},
    {"messages": [{"role": "user", "content": "a"},
                  {"role": "assistant", "content": [{"text": "b", "train": True}], "reasoning_content": "plain"}]},
]

# split_thinking: a thinking block taken out of an assistant's content
SPLIT_ROWS = [
    {"messages": [{"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "<think>\n add them \n</think>\n\n4"}]},
    {"messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "pre <reasoning>why\u00a0</reasoning>\u3000 after <think>"},
                  {"role": "user", "content": "<think>users are not split</think>x"},
                  {"role": "assistant", "content": "<|begin_of_thought|>hmm<|end_of_thought|> junk "
                                                   "<|begin_of_solution|>\n 42 \n<|end_of_solution|> tail"}]},
    {"messages": [{"role": "user", "content": "order"},
                  {"role": "assistant", "content": "a</think>b<think>c"}]},
    {"messages": [{"role": "user", "content": "both"},
                  {"role": "assistant", "content": "<think>split</think>kept", "reasoning_content": "own field wins"}]},
]

# reasoning under another name: message_property_mappings {reasoning_content: thoughts}
MAPPED_ROWS = [
    {"messages": [{"from": "user", "value": "3+3?"},
                  {"from": "assistant", "value": "6", "thoughts": [{"text": "add", "train": False},
                                                                   {"text": " three and three", "train": True}]}]},
    {"messages": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "hello", "thoughts": "greet"}]},
]

# the row's tools under another field (field_tools)
FUNC_ROWS = [{"functions": r["tools"], "messages": r["messages"]} for r in [
    {"tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
     "messages": [{"role": "user", "content": "2 + 3?"},
                  {"role": "assistant", "content": "",
                   "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2}"}}]},
                  {"role": "tool", "name": "add", "content": "5"}, {"role": "assistant", "content": "5."}]}]]


# Jinja templates written for these cases (not any model's own text).
JINJA_LLAMA_LIKE = """{{- bos_token }}
{%- for message in messages %}
    {%- if loop.first and message['role'] != 'system' %}
        {{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + (system_default | default('Be helpful.')) + '<|eot_id|>' }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}
"""

# the qwen2-chat tokenizer's own template (tokenizer_default): tools, tool
# calls, tool results and thinking blocks
JINJA_TOOLS_THINK = """{%- set ns = namespace(last_user=-1) %}
{%- for message in messages %}{% if message.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}{{ messages[0].content + '\\n\\n' }}{% endif %}
    {{- 'Tools:' }}
    {%- for tool in tools %}{{ '\\n' + tool.function | tojson }}{% endfor %}
    {{- '<|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {{- '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}
        {%- if message.reasoning_content is defined and loop.index0 > ns.last_user %}
            {{- '<think>\\n' + message.reasoning_content.strip() + '\\n</think>\\n\\n' }}
        {%- endif %}
        {{- message.content }}
        {%- if message.tool_calls %}
            {%- for call in message.tool_calls %}
                {{- '\\n<tool_call>\\n' + {'name': call.function.name, 'arguments': call.function.arguments} | tojson + '\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<|im_start|>user\\n<tool_response name="' + message.name | default('tool') + '">\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
"""

TOOL_ROWS = [
    {"tools": [{"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                                 "parameters": {"type": "object", "properties": {
                                                     "a": {"type": "number"}, "b": {"type": "number"}}}}}],
     "messages": [{"role": "system", "content": "You can add."},
                  {"role": "user", "content": "What is 2 + 3?"},
                  {"role": "assistant", "content": "",
                   "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
                  {"role": "tool", "name": "add", "content": "5"},
                  {"role": "assistant", "content": "2 + 3 = 5.", "reasoning_content": " the tool said 5 "}]},
    {"tools": "[{\"type\": \"function\", \"function\": {\"name\": \"now\", \"parameters\": \"{}\"}}]",
     "messages": [{"role": "user", "content": "Time?"},
                  {"role": "assistant", "content": "Let me check.",
                   "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}]},
                  {"role": "tool", "content": "12:00"},
                  {"role": "assistant", "content": "It is noon."}]},
]


def tokenizer(name, **kw):
    return PreTrainedTokenizerFast.from_pretrained(os.path.join(TOK, name), **kw)


def axo_spec(kind, ds, tok=None, kwargs=None):
    """axo's spec JSON (runtime/prompt.c rt_ds_spec_json) for an Axolotl ds_cfg."""
    if kind == "completion":
        return {"type": "completion", "field": ds.get("field", "text")}
    if kind in ("alpaca", "input_output"):
        return {"type": kind}
    if kind == "user_defined":  # every field, Axolotl's defaults filled in
        full = {f: getattr(user_defined.UserDefinedDatasetConfig(**ds), f) for f in (
            "system_prompt", "field_system", "field_instruction", "field_input", "field_output", "format",
            "no_input_format", "system_format")}
        return {"type": "alpaca", "user_defined": full}
    m = ds.get("message_property_mappings") or {}
    eos = ds.get("train_on_eos", "turn")
    eot = ds.get("train_on_eot", eos)
    roles = [[src, dst] for dst, srcs in (ds.get("roles") or {}).items() for src in srcs]
    spec = {"type": "chat_template", "chat_template": ds["chat_template"],
            "field_messages": ds.get("field_messages", "messages"), "role": m.get("role", "role"),
            "content": m.get("content", "content"), "field_system": "system",
            "training": ds.get("message_field_training"), "drop_system_message": False,
            "roles_to_train": ds.get("roles_to_train", ["assistant"]), "roles": roles,
            "train_on_eos": eos or "none", "train_on_eot": eot or "none"}
    if ds["chat_template"] in ("jinja", "tokenizer_default"):  # the text, as frontend/tokcfg.c resolves it
        spec["chat_template"] = "jinja"
        spec["chat_template_jinja"] = ds["chat_template_jinja"] if ds["chat_template"] == "jinja" else tok.chat_template
    if kwargs:
        spec["chat_template_kwargs"] = kwargs
    if ds.get("message_field_training_detail"):
        spec["training_detail"] = ds["message_field_training_detail"]
    extra = [[k, v] for k, v in m.items() if k not in ("role", "content")]
    if extra:
        spec["property_mappings"] = extra
    if ds.get("template_thinking_key", "reasoning_content") != "reasoning_content":
        spec["thinking_key"] = ds["template_thinking_key"]
    if ds.get("split_thinking"):
        spec["split_thinking"] = True
    return spec


ONLY = set(sys.argv[1:])  # case names to (re)make; none: all


def run_case(name, tok_name, kind, rows, seq_len, train_on_inputs=False, ds=None, tok_kw=None, eot_tokens=None,
             kwargs=None):
    if ONLY and name not in ONLY:
        return
    ds = dict(ds or {})
    tok = tokenizer(tok_name, **(tok_kw or {}))
    cfg = DictDefault({"sequence_len": seq_len, "train_on_inputs": train_on_inputs, "eot_tokens": eot_tokens,
                       "chat_template_kwargs": kwargs or {}})
    out = []
    if kind == "alpaca":
        strat = AlpacaPromptTokenizingStrategy(AlpacaPrompter("instruct"), tok, train_on_inputs, seq_len)
        for r in rows:
            res = strat.tokenize_prompt(r)
            out.append((res["input_ids"], res["labels"]))
    elif kind == "user_defined":
        strat = user_defined.load(tok, cfg, user_defined.UserDefinedDatasetConfig(**ds))
        for r in rows:
            res = strat.tokenize_prompt(r)
            out.append((res["input_ids"], res["labels"]))
    elif kind == "input_output":
        strat = input_output.load(tok, cfg)
        for r in rows:
            res = strat.tokenize_prompt(r)
            out.append((res["input_ids"], res["labels"]))
    elif kind == "completion":
        strat = completion.load(tok, cfg, ds)
        for r in rows:
            res = strat.tokenize_prompt({k: [v] for k, v in r.items()})
            out.extend(zip(res.get("input_ids", []), res.get("labels", [])))
    else:
        # as Axolotl's config validation leaves a dataset: message_property_mappings always holds role and content
        ax_ds = handle_legacy_message_fields_logic(dict(ds))
        ax_ds["chat_template"] = ds["chat_template"]
        if ax_ds.get("train_on_eos") == "none":
            ax_ds["train_on_eos"] = None
        strat = chat_template.load(tok, cfg, ax_ds)
        for r in rows:
            res = strat.tokenize_prompt(r)
            out.append((res["input_ids"], res["labels"]))
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    setup = {"tokenizer": tok_name, "bos": tok.bos_token, "eos": tok.eos_token, "pad": tok.pad_token,
             "unk": tok.unk_token,
             "eot_tokens": eot_tokens if eot_tokens is not None else ([tok.eos_token] if tok.eos_token else []),
             "train_on_inputs": train_on_inputs, "sequence_len": seq_len}
    if "mistral" in tok.name_or_path.lower():  # Axolotl's find_turn rule for a leading system turn
        setup["mistral_name"] = True
    with open(os.path.join(d, "case.json"), "w", encoding="utf-8") as f:
        json.dump({"spec": axo_spec(kind, ds, tok, kwargs), "setup": setup}, f, ensure_ascii=False, indent=1,
                  sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "rows.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(d, "expected.jsonl"), "w", encoding="utf-8") as f:
        for ids, labels in out:
            f.write(json.dumps({"input_ids": list(ids), "labels": list(labels)}) + "\n")
    print(name, len(out), "samples")


def main():
    run_case("alpaca-llama3", "llama3", "alpaca", ALPACA_ROWS, 64)
    run_case("alpaca-llama3-inputs", "llama3", "alpaca", ALPACA_ROWS, 64, train_on_inputs=True)
    run_case("alpaca-llama2", "llama2", "alpaca", ALPACA_ROWS, 96)
    run_case("alpaca-qwen2", "qwen2", "alpaca", ALPACA_ROWS, 64)
    # user-defined prompt formats (`type:` a mapping): Axolotl's defaults, and Mistral-style ones with a system
    # prompt, a per-row system field (present, empty, absent), renamed fields and literal braces
    run_case("user-defined-llama3", "llama3", "user_defined", ALPACA_ROWS, 64)
    run_case("user-defined-mistral", "mistral", "user_defined", UD_ROWS, 96,
             ds={"system_prompt": "You are terse.", "field_system": "sys", "field_instruction": "q",
                 "field_input": "ctx", "field_output": "a", "format": "[INST] {instruction}\n{input} [/INST]",
                 "no_input_format": "[INST] {instruction} [/INST]", "system_format": "<<SYS>>\n{system}\n<</SYS>> {{x}}\n"})
    run_case("user-defined-qwen2-inputs", "qwen2", "user_defined", UD_ROWS, 64, train_on_inputs=True,
             ds={"field_instruction": "q", "field_input": "ctx", "field_output": "a", "field_system": "sys",
                 "format": "Q: {instruction} ({input})\nA:", "no_input_format": "Q: {instruction}\nA:"})
    run_case("completion-qwen2", "qwen2", "completion", COMPLETION_ROWS, 16)
    run_case("completion-llama3", "llama3", "completion", [{"body": r["text"]} for r in COMPLETION_ROWS], 32,
             ds={"field": "body"})
    run_case("input-output-llama3", "llama3", "input_output", SEGMENT_ROWS, 64)
    run_case("input-output-llama3-inputs", "llama3", "input_output", SEGMENT_ROWS, 64, train_on_inputs=True)
    run_case("chat-chatml-qwen2", "qwen2", "chat", CHAT_ROWS, 256, ds={"chat_template": "chatml"})
    run_case("chat-qwen25-qwen2", "qwen2", "chat", CHAT_ROWS, 256, ds={"chat_template": "qwen_25"})
    run_case("chat-llama3", "llama3", "chat", CHAT_ROWS, 256, ds={"chat_template": "llama3"},
             tok_kw={"eos_token": "<|eot_id|>"})
    run_case("chat-sharegpt-qwen2", "qwen2", "chat", SHAREGPT_ROWS, 256,
             ds={"chat_template": "chatml", "field_messages": "conversations",
                 "message_property_mappings": {"role": "from", "content": "value"},
                 "roles_to_train": ["user", "assistant"], "train_on_eos": "all"})
    run_case("chat-roles-qwen2", "qwen2", "chat", SHAREGPT_ROWS, 256,
             ds={"chat_template": "chatml", "field_messages": "conversations",
                 "message_property_mappings": {"role": "from", "content": "value"},
                 "roles": {"user": ["human"], "assistant": ["gpt"], "system": ["system"]}, "train_on_eos": "last"})
    run_case("chat-legacy-qwen2", "qwen2", "chat", CHAT_ROWS, 256,
             ds={"chat_template": "chatml", "roles_to_train": [], "train_on_eos": "none"})
    run_case("chat-training-llama3", "llama3", "chat", TRAINING_ROWS, 256,
             ds={"chat_template": "llama3", "message_field_training": "train", "train_on_eos": "turn"},
             tok_kw={"eos_token": "<|eot_id|>"})
    run_case("chat-inputs-llama3", "llama3", "chat", CHAT_ROWS, 256, train_on_inputs=True,
             ds={"chat_template": "llama3", "train_on_eos": "all"}, eot_tokens=["<|eot_id|>"])
    run_case("chat-gemma-llama3", "llama3", "chat", [r for r in CHAT_ROWS if r["messages"][0]["role"] != "system"], 256,
             ds={"chat_template": "gemma"})
    run_case("chat-phi3-llama2", "llama2", "chat", CHAT_ROWS, 256, ds={"chat_template": "phi_3"})
    # gemma3: a leading system message opens the first user turn; Gemma's tokenizer pipeline
    run_case("chat-gemma3-gemma", "gemma", "chat", CHAT_ROWS + GEMMA3_ROWS, 256, ds={"chat_template": "gemma3"},
             eot_tokens=["<end_of_turn>"])
    run_case("chat-gemma3-all-gemma", "gemma", "chat", CHAT_ROWS + GEMMA3_ROWS, 256,
             ds={"chat_template": "gemma3", "roles_to_train": ["user", "assistant"], "train_on_eos": "all"})
    run_case("chat-qwen3-qwen2", "qwen2", "chat", CHAT_ROWS + THINKING_ROWS, 256, ds={"chat_template": "qwen3"})
    run_case("chat-qwen3-all-qwen2", "qwen2", "chat", THINKING_ROWS, 256,
             ds={"chat_template": "qwen3", "roles_to_train": ["user", "assistant"], "train_on_eos": "all"})
    run_case("chat-chatml-llama2", "llama2", "chat", CHAT_ROWS, 256, ds={"chat_template": "chatml"})
    # Jinja templates: chat_template: jinja with chat_template_jinja, and the
    # tokenizer's own (tokenizer_default, from tokenizers/qwen2-chat)
    run_case("jinja-llama3", "llama3", "chat", CHAT_ROWS + TRAINING_ROWS, 256,
             ds={"chat_template": "jinja", "chat_template_jinja": JINJA_LLAMA_LIKE}, tok_kw={"eos_token": "<|eot_id|>"})
    run_case("jinja-llama3-eot-kwargs", "llama3", "chat", CHAT_ROWS, 256,
             ds={"chat_template": "jinja", "chat_template_jinja": JINJA_LLAMA_LIKE, "roles_to_train": ["user", "assistant"],
                 "train_on_eos": "none", "train_on_eot": "last"},
             eot_tokens=["<|eot_id|>"], kwargs={"system_default": "Answer in French."})
    run_case("jinja-llama3-training", "llama3", "chat", TRAINING_ROWS, 256,
             ds={"chat_template": "jinja", "chat_template_jinja": JINJA_LLAMA_LIKE, "message_field_training": "train",
                 "train_on_eos": "all"}, tok_kw={"eos_token": "<|eot_id|>"})
    run_case("jinja-legacy-llama3", "llama3", "chat", CHAT_ROWS, 256,
             ds={"chat_template": "jinja", "chat_template_jinja": JINJA_LLAMA_LIKE, "roles_to_train": [],
                 "train_on_eos": "none"}, tok_kw={"eos_token": "<|eot_id|>"})
    chat_dir = os.path.join(TOK, "qwen2-chat")
    os.makedirs(chat_dir, exist_ok=True)
    shutil.copyfile(os.path.join(TOK, "qwen2", "tokenizer.json"), os.path.join(chat_dir, "tokenizer.json"))
    with open(os.path.join(TOK, "qwen2", "tokenizer_config.json"), encoding="utf-8") as f:
        tcfg = json.load(f)
    tcfg["chat_template"] = JINJA_TOOLS_THINK
    with open(os.path.join(chat_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tcfg, f, ensure_ascii=False, indent=1)
        f.write("\n")
    run_case("jinja-default-qwen2", "qwen2-chat", "chat", CHAT_ROWS + TOOL_ROWS + THINKING_ROWS[1:2], 256,
             ds={"chat_template": "tokenizer_default"})
    run_case("jinja-default-tools-qwen2", "qwen2-chat", "chat", TOOL_ROWS, 256,
             ds={"chat_template": "tokenizer_default", "roles_to_train": ["assistant", "tool"], "train_on_eos": "all"})
    run_case("jinja-default-sharegpt-qwen2", "qwen2-chat", "chat", SHAREGPT_ROWS, 256,
             ds={"chat_template": "tokenizer_default", "field_messages": "conversations",
                 "message_property_mappings": {"role": "from", "content": "value"}, "train_on_eos": "turn"})
    # content parts and training details (Axolotl's _convert_content_parts, message_field_training_detail,
    # get_offsets_for_train_detail): byte-level tokenizers, SentencePiece's added space (llama2), GPT-2's
    # add_prefix_space, reasoning parts with qwen3 and a Jinja template, and the legacy path (parts joined only)
    run_case("chat-parts-llama3", "llama3", "chat", PARTS_ROWS + CHAT_ROWS, 256, ds={"chat_template": "llama3"},
             tok_kw={"eos_token": "<|eot_id|>"})
    run_case("chat-parts-llama2", "llama2", "chat", PARTS_ROWS, 256, ds={"chat_template": "chatml"})
    run_case("chat-parts-gpt2", "gpt2", "chat", PARTS_ROWS, 256, ds={"chat_template": "chatml"})
    # GPT-2's own post-processor trims spaces off the offsets (trim_offsets), which moves where " word" starts
    trim_dir = os.path.join(TOK, "gpt2-trim")
    os.makedirs(trim_dir, exist_ok=True)
    with open(os.path.join(TOK, "gpt2", "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tj["pre_tokenizer"]["add_prefix_space"] = False
    with open(os.path.join(trim_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    shutil.copyfile(os.path.join(TOK, "gpt2", "tokenizer_config.json"), os.path.join(trim_dir, "tokenizer_config.json"))
    run_case("chat-detail-gpt2-trim", "gpt2-trim", "chat", DETAIL_ROWS + PARTS_ROWS, 256,
             ds={"chat_template": "chatml", "message_field_training_detail": "detail"})
    run_case("chat-legacy-parts-qwen2", "qwen2", "chat", PARTS_ROWS, 256,
             ds={"chat_template": "chatml", "roles_to_train": [], "train_on_eos": "none"})
    run_case("chat-detail-qwen2", "qwen2", "chat", DETAIL_ROWS + PARTS_ROWS, 256,
             ds={"chat_template": "chatml", "message_field_training_detail": "detail", "message_field_training": "train",
                 "train_on_eos": "turn"})
    run_case("chat-detail-llama2", "llama2", "chat", DETAIL_ROWS, 256,
             ds={"chat_template": "chatml", "message_field_training_detail": "detail", "message_field_training": "train"})
    run_case("chat-qwen3-parts-qwen2", "qwen2", "chat", THINK_PARTS_ROWS, 256, ds={"chat_template": "qwen3"})
    run_case("jinja-default-parts-qwen2", "qwen2-chat", "chat", THINK_PARTS_ROWS + PARTS_ROWS, 256,
             ds={"chat_template": "tokenizer_default", "train_on_eos": "last"})
    # split_thinking, reasoning from a mapped field, another thinking key, tools under another field
    run_case("chat-split-thinking-qwen2", "qwen2", "chat", SPLIT_ROWS, 256,
             ds={"chat_template": "chatml", "split_thinking": True})
    run_case("chat-qwen3-split-thinking-qwen2", "qwen2", "chat", SPLIT_ROWS, 256,
             ds={"chat_template": "qwen3", "split_thinking": True, "roles_to_train": ["assistant", "user"]})
    run_case("chat-qwen3-mapped-qwen2", "qwen2", "chat", MAPPED_ROWS, 256,
             ds={"chat_template": "qwen3", "field_messages": "messages",
                 "message_property_mappings": {"role": "from", "content": "value", "reasoning_content": "thoughts"}})
    run_case("jinja-thinking-key-qwen2", "qwen2-chat", "chat", THINK_PARTS_ROWS[:2] + SPLIT_ROWS[:1], 256,
             ds={"chat_template": "tokenizer_default", "template_thinking_key": "thinking", "split_thinking": True,
                 "message_property_mappings": {"role": "role", "content": "content", "thinking": "reasoning_content"}})
    # a tokenizer whose name holds "mistral": Axolotl never locates a leading system turn, so it is not trained
    run_case("chat-mistral-system", "mistral", "chat", CHAT_ROWS + SHAREGPT_ROWS[:0], 256,
             ds={"chat_template": "chatml", "roles_to_train": ["system", "user", "assistant"], "train_on_eos": "all"})
    run_case("chat-mistral-inputs", "mistral", "chat", CHAT_ROWS, 256, train_on_inputs=True,
             ds={"chat_template": "chatml", "train_on_eos": "turn"})
    # field_tools is never passed on by Axolotl 0.19: the tools under another field are not rendered
    run_case("jinja-field-tools-qwen2", "qwen2-chat", "chat", FUNC_ROWS, 256,
             ds={"chat_template": "tokenizer_default", "field_tools": "functions"})


if __name__ == "__main__":
    main()
