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
finish
