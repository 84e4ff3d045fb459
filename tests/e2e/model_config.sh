#!/usr/bin/env bash
# model_config (overrides_of_model_config): each key replaces the base
# config.json's, as Axolotl sets it on the loaded config; the model is
# lowered from the result (here: linear RoPE scaling for a longer context)
# and the trained model's config.json says it. A bad value is an error that
# names the override.
# usage: model_config.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 2\n' \
    "$SRC/configs/models/tiny-llama" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}
get() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2], {"c": c})))' "$@"; }
cfg "$T/a" "" >a.yml
cfg "$T/b" 'model_config:
  rope_scaling:
    rope_type: linear
    factor: 4.0
  max_position_embeddings: 8192' >b.yml
check '"$AXOC" compile a.yml -o a.bin 2>/dev/null && "$AXOC" compile b.yml -o b.bin 2>/dev/null' "compile with and without model_config"
check '"$AXOC" dump b.bin >b.dump 2>&1 && "$AXOC" dump a.bin >a.dump 2>&1 && grep -q "rope_type=\"linear\", factor=4.0" b.dump && ! grep -q "rope_type=\"linear\"" a.dump' \
  "the plan's rope op uses the override's linear scaling"
check '"$AXORUN" a.bin >a.out 2>&1 && "$AXORUN" b.bin >b.out 2>&1' "both train"
check 'test "$(get b/config.json "c[\"rope_scaling\"]")" = "{\"factor\": 4.0, \"rope_type\": \"linear\"}" && test "$(get b/config.json "c[\"max_position_embeddings\"]")" = 8192 && test "$(get b/config.json "c[\"hidden_size\"]")" = 64' \
  "the trained model's config.json has the overrides and keeps the rest"
check '! cmp -s <(grep -o "\"loss\": [^,]*" a/train_log.jsonl) <(grep -o "\"loss\": [^,]*" b/train_log.jsonl)' \
  "RoPE scaling changes the losses"
cfg "$T/c" 'overrides_of_model_config:
  num_attention_heads: four' >c.yml
check '! "$AXOC" compile c.yml -o c.bin 2>c.err && grep -q "config.json (with model_config): num_attention_heads" c.err' \
  "a bad override is an error that names it (overrides_of_model_config is the same key)"

# reinit_weights: the weights are drawn as for a model directory without any (HF's from_config: normal with
# config.json's initializer_range, norms 1, biases 0, the Embedding's padding_idx row, pad_token_id 0 here, zeros),
# so a run on the HF fixture (which has weights) equals one on its config.json alone, and differs without the key
mkdir -p cfgonly && cp "$SRC/tests/reference/fixtures/tiny-llama/config.json" cfgonly/
ri() { # $1 output dir, $2 model dir, $3 extra lines
  printf 'base_model: %s
datasets:
  - path: %s
sequence_len: 64
micro_batch_size: 2
max_steps: 1
' \
    "$2" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 1.0e-30
seed: 3
output_dir: %s
%s
' "$1" "$3"
}
ri "$T/r1" "$SRC/tests/reference/fixtures/tiny-llama" "reinit_weights: true" >r1.yml
ri "$T/r2" "$T/cfgonly" "" >r2.yml
ri "$T/r3" "$SRC/tests/reference/fixtures/tiny-llama" "" >r3.yml
row0() { # $1 model.safetensors -> max |x| of embed_tokens row 0 and of row 1
  python3 - "$1" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["model.embed_tokens.weight"]
assert t["dtype"] == "F32"
cols, o = t["shape"][1], 8 + n + t["data_offsets"][0]
r = [struct.unpack("<%df" % cols, b[o + 4 * cols * i:o + 4 * cols * (i + 1)]) for i in (0, 1)]
print(max(map(abs, r[0])), max(map(abs, r[1])))
PYEOF
}
check 'for r in r1 r2 r3; do "$AXOC" compile $r.yml -o $r.bin 2>/dev/null && "$AXORUN" $r.bin >/dev/null 2>&1 || exit 1; done' \
  "reinit_weights: train on the fixture, on its config.json alone, and on the fixture without the key"
check 'cmp -s r1/model.safetensors r2/model.safetensors && ! cmp -s r1/model.safetensors r3/model.safetensors' \
  "reinit_weights draws the weights a directory without any gets, not the fixture's"
check 'read -r z o <<<"$(row0 r1/model.safetensors)" && test "$z" = 0.0 && python3 -c "import sys; sys.exit(not 0 < float(sys.argv[1]) < 1)" "$o"' \
  "the Embedding's padding_idx row is drawn as zeros (pad_token_id 0), the others not"

# fix_untrained_tokens (Axolotl's, from Unsloth): the HF fixture with the embed_tokens and lm_head rows of tokens 5,
# 9 and 200 zeroed; 5 and 200 occur in the data (3 times and once), 9 does not. Rows 5 and 200 become the mean of the
# 253 trained rows times count / the largest count (12, token 1's), in each matrix; row 9 stays zero. On 2 ranks
# with ZeRO-2 (whose f32 master rows are split between the ranks) and ZeRO-3 (the params too, gathered to find the
# rows) the same, the list form naming 9 as well (it does not occur: unchanged). With an adapter that does not save
# both matrices, it is an error.
mkdir -p untr
python3 - "$SRC/tests/reference/fixtures/tiny-llama" untr <<'PYEOF'
import json, shutil, struct, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copy(src + "/config.json", dst + "/config.json")
b = bytearray(open(src + "/model.safetensors", "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for name in ("model.embed_tokens.weight", "lm_head.weight"):
    t = h[name]
    cols, o = t["shape"][1], 8 + n + t["data_offsets"][0]
    for r in (5, 9, 200):
        b[o + 4 * cols * r:o + 4 * cols * (r + 1)] = bytes(4 * cols)
open(dst + "/model.safetensors", "wb").write(b)
rows = [[1, 5, 7, 5, 8, 2], [1, 11, 12, 13, 5], [1, 20, 21, 200, 23, 24, 25]] + [[1, 30 + i, 31 + i, 32 + i] for i in range(9)]
with open(dst + "/data.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps({"input_ids": r}) + "\n")
PYEOF
fu() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 16\nsample_packing: false\nmicro_batch_size: 2\n' \
    "$T/untr" "$T/untr/data.jsonl"
  printf 'max_steps: 1\nlearning_rate: 1.0e-30\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}
fu "$T/fu1" "fix_untrained_tokens: true" >fu1.yml
fu "$T/fu0" "" >fu0.yml
untr_ok() { # $1 trained dir with the fix, $2 without: row 5 = mean x 3/12, row 9 zero; the others untouched
  python3 - "$T/untr/model.safetensors" "$1/model.safetensors" "$2/model.safetensors" <<'PYEOF'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k in ("model.embed_tokens.weight", "lm_head.weight"):
        r, c = h[k]["shape"]
        o = 8 + n + h[k]["data_offsets"][0]
        v = struct.unpack("<%df" % (r * c), b[o:o + 4 * r * c])
        out[k] = [list(v[i * c:(i + 1) * c]) for i in range(r)]
    return out
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
base, fixed, plain = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
ok = True
for k in base:
    w = base[k]
    cols = len(w[0])
    mean = [f32(f32(sum(w[i][j] for i in range(256))) - f32(sum(w[i][j] for i in (5, 9, 200)))) / 253 for j in range(cols)]
    for t, c in ((5, 3), (200, 1)):
        want = [f32(f32(m) * (c / 12)) for m in mean]
        ok &= all(abs(a - b) <= 1e-6 * abs(b) + 1e-12 for a, b in zip(fixed[k][t], want))
    # (one step at lr 1e-30 moves a zero by 1e-30 at most, and nothing else)
    ok &= all(abs(x) < 1e-20 for x in fixed[k][9]) and all(abs(x) < 1e-20 for x in plain[k][5] + plain[k][200])
    ok &= all(abs(a - b) < 1e-20 for i in range(256) if i not in (5, 200) for a, b in zip(fixed[k][i], plain[k][i]))
sys.exit(0 if ok else 1)
PYEOF
}
check '"$AXOC" compile fu1.yml -o fu1.bin 2>/dev/null && "$AXORUN" fu1.bin >fu1.out 2>&1 && "$AXOC" compile fu0.yml -o fu0.bin 2>/dev/null && "$AXORUN" fu0.bin >/dev/null 2>&1 && grep -q "fix_untrained_tokens: the rows of 2 untrained tokens seen in the data set .* (ids 5 200)" fu1.out && untr_ok fu1 fu0' \
  "fix_untrained_tokens: the untrained rows seen in the data get the scaled mean, in embed_tokens and lm_head"
fu "$T/fu4" "fix_untrained_tokens: true
deepspeed: $SRC/configs/deepspeed/zero2.json" >fu4.yml
check '"$AXOC" compile fu4.yml --world-size 2 -o fu4.bin 2>/dev/null && "$AXORUN" fu4.bin >/dev/null 2>&1 && untr_ok fu4 fu0' \
  "the same on 2 ranks with ZeRO-2 (row 200 in rank 1's half of the master copy)"
fu "$T/fu2" "fix_untrained_tokens: true
adapter: lora
lora_target_linear: true" >fu2.yml
check '! "$AXOC" compile fu2.yml -o fu2.bin 2>fu2.err && grep -q "add lora_modules_to_save: \[embed_tokens, lm_head\]" fu2.err' \
  "fix_untrained_tokens with an adapter that does not save both matrices: an error that says what to add"
fu "$T/fu3" "fix_untrained_tokens: [9]
deepspeed: $SRC/configs/deepspeed/zero3.json" >fu3.yml
check '"$AXOC" compile fu3.yml --world-size 2 -o fu3.bin 2>/dev/null && "$AXORUN" fu3.bin >/dev/null 2>&1 && untr_ok fu3 fu0' \
  "the same with ZeRO-3 x 2 (sharded params, gathered) and fix_untrained_tokens: [9]"
finish
