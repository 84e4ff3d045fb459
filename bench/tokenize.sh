#!/usr/bin/env bash
# Tokenization throughput on the CPU, side by side on the same tokenizer.json
# and the same text: axo (`axoc preprocess` of a `type: completion` dataset:
# reading, tokenizing, EOS, chunking; one thread) against Hugging Face
# `tokenizers` (Rust) encoding the same texts one by one and as one batch
# (its thread pool). Needs `pip install tokenizers` for the reference; prints
# a Markdown row per side.
#   bash bench/tokenize.sh            N=20000 rows (~3M tokens with the bundled tokenizer)
#   AXOC=build/axoc N=5000 TOK=DIR bash bench/tokenize.sh   another tokenizer dir (tokenizer.json)
set -euo pipefail
cd "$(dirname "$0")/.."
AXOC=${AXOC:-build/axoc}
N=${N:-20000}
TOK=${TOK:-configs/models/tiny-llama-chat}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$T/rows.jsonl" "$N" <<'EOF'
import json, random, sys
rng = random.Random(7)
words = ("the of and to in is was for on that with as by it at from his an were are which this also be had or has "
         "first one their its new after who they two her she been other when time during there into school more "
         "café naïve 日本語 😀 don't I'LL 3.14159 2026-12-05 $100 #tag @user foo_bar").split()
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(int(sys.argv[2])):
        n = rng.randint(20, 400)
        text = " ".join(rng.choice(words) for _ in range(n))
        f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
EOF
mod=$(mktemp -d -p "$T")
cp configs/models/tiny-llama-chat/config.json "$mod/"
cp "$TOK"/tokenizer.json "$mod/"
[ -f "$TOK/tokenizer_config.json" ] && cp "$TOK/tokenizer_config.json" "$mod/"
python3 - "$mod" "$TOK/tokenizer.json" <<'EOF'
import json, sys
v = 1 + max(max(json.load(open(sys.argv[2]))["model"]["vocab"].values()),
            max([a["id"] for a in json.load(open(sys.argv[2])).get("added_tokens", [])] or [0]))
c = json.load(open(sys.argv[1] + "/config.json")); c["vocab_size"] = max(v, 8)
json.dump(c, open(sys.argv[1] + "/config.json", "w"))
EOF
cat >"$T/cfg.yml" <<EOF
base_model: $mod
datasets:
  - path: $T/rows.jsonl
    type: completion
sequence_len: 1000000
micro_batch_size: 1
EOF
start=$(date +%s.%N)
"$AXOC" preprocess "$T/cfg.yml" -n 0 >"$T/axo.out"
end=$(date +%s.%N)
tokens=$(sed -n 's/^dataset .*: [0-9]* samples, \([0-9]*\) tokens.*/\1/p' "$T/axo.out")
echo "| side | tokens | seconds | tokens/s |"
echo "|---|---|---|---|"
awk -v t="$tokens" -v a="$start" -v b="$end" 'BEGIN{printf "| axo (axoc preprocess, 1 thread, incl. reading + JSON) | %d | %.2f | %.0f |\n", t, b-a, t/(b-a)}'
python3 - "$T/rows.jsonl" "$TOK/tokenizer.json" <<'EOF' || echo "| Hugging Face tokenizers | not installed (pip install tokenizers) | | |"
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[2])
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
t0 = time.perf_counter()
n = sum(len(tok.encode(t).ids) for t in texts)
t1 = time.perf_counter()
m = sum(len(e.ids) for e in tok.encode_batch(texts))
t2 = time.perf_counter()
print("| Hugging Face tokenizers %s, encode one by one (1 thread) | %d | %.2f | %.0f |" % (__import__("tokenizers").__version__, n, t1 - t0, n / (t1 - t0)))
print("| Hugging Face tokenizers %s, encode_batch (thread pool) | %d | %.2f | %.0f |" % (__import__("tokenizers").__version__, m, t2 - t1, m / (t2 - t1)))
EOF
