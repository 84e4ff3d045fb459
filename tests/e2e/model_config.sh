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
finish
