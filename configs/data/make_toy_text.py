#!/usr/bin/env python3
"""Writes the bundled toy datasets of text (for the dataset types):

  toy_alpaca.jsonl  Alpaca rows {instruction, input, output}: add two numbers,
                    reverse a few words, repeat a word three times
  toy_chat.jsonl    chat rows {messages: [{role, content}]}: one or two
                    questions about sums, an optional system message
  toy_dpo.jsonl     preference pairs for rl: dpo (Axolotl's llama3.intel /
                    chatml.intel fields {system?, question, chosen,
                    rejected}): a sum asked, the right answer chosen, a wrong
                    one rejected
  toy_orpo.jsonl    the same pairs for rl: orpo (Axolotl's ORPO
                    chat_template.argilla: {system?, chosen: [user,
                    assistant], rejected: [user, assistant]})

Words come from the English list the bundled tokenizer
(configs/models/tiny-llama-chat, trained by
tests/reference/make_tokenizer_fixtures.py) has merges for. Deterministic:
random.Random(seed); python3 stdlib only.
Usage: make_toy_text.py [--seed N] [--n N]
"""
import argparse
import json
import os
import random

WORDS = ("the of and to in is was for on that with as by it at from his an were are which this also be had or has "
         "first one their its new after who they two her she been other when time during there into school more "
         "may years over only year most would world city some where between later three state such then").split()


def alpaca(rng):
    k = rng.randrange(3)
    if k == 0:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        return {"instruction": "Add the two numbers.", "input": "%d and %d" % (a, b), "output": str(a + b)}
    if k == 1:
        ws = rng.sample(WORDS, rng.randint(3, 6))
        return {"instruction": "Reverse the words.", "input": " ".join(ws), "output": " ".join(ws[::-1])}
    w = rng.choice(WORDS)
    return {"instruction": "Repeat the word three times: " + w, "input": "", "output": " ".join([w] * 3)}


def chat(rng):
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": "You answer with the sum."})
    for _ in range(rng.randint(1, 2)):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        msgs.append({"role": "user", "content": "What is %d plus %d?" % (a, b)})
        msgs.append({"role": "assistant", "content": "%d plus %d is %d." % (a, b, a + b)})
    return {"messages": msgs}


def dpo(rng):
    a, b = rng.randint(0, 49), rng.randint(0, 49)
    wrong = a + b + rng.choice([-1, 1]) * rng.randint(1, 9)
    row = {"question": "What is %d plus %d?" % (a, b), "chosen": "%d plus %d is %d." % (a, b, a + b),
           "rejected": "%d plus %d is %d." % (a, b, wrong)}
    if rng.random() < 0.5:
        row = {"system": "You answer with the sum.", **row}
    return row


def orpo(rng):
    r = dpo(rng)
    q = {"role": "user", "content": r["question"]}
    row = {"chosen": [q, {"role": "assistant", "content": r["chosen"]}],
           "rejected": [q, {"role": "assistant", "content": r["rejected"]}]}
    return {"system": r["system"], **row} if "system" in r else row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--n", type=int, default=600)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    for name, fn in (("toy_alpaca.jsonl", alpaca), ("toy_chat.jsonl", chat), ("toy_dpo.jsonl", dpo), ("toy_orpo.jsonl", orpo)):
        rng = random.Random(a.seed)
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            for _ in range(a.n):
                f.write(json.dumps(fn(rng)) + "\n")


if __name__ == "__main__":
    main()
