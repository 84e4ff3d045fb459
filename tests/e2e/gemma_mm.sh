#!/usr/bin/env bash
# The multimodal Gemma 3 (Gemma3ForConditionalGeneration: gemma-3-4b and
# larger) trained on text, end to end on the CPU executor, from the fixture
# tests/reference/fixtures/tiny-gemma3-mm (the Hub's tensor names:
# language_model.model.*, vision_tower.vision_model.*, multi_modal_projector.*).
# Its language model trains (the numbers are transformers' own:
# test_hf_fixtures); parameters take their module names
# (model.language_model.*: PEFT's, unfrozen_parameters', a lora_target_modules
# regex's) and are saved under the checkpoint's; every saved model carries the
# vision tower and projector unchanged, bit for bit; a LoRA adapter has PEFT's
# names, keeps PEFT off the tower (exclude_modules) and merges back into a
# whole multimodal model; a sharded checkpoint merges into one too.
# usage: gemma_mm.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
M="$SRC/tests/reference/fixtures/tiny-gemma3-mm"

cfg() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 4\n' \
    "$M" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nlogging_steps: 1\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}
# tensors: names of a safetensors file, one a line (sorted); same_tensors A B PREFIX: the tensors of A named PREFIX*
# are in B with the same dtype, shape and bytes
cat >st.py <<'PYEOF'
import json, struct, sys
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
if sys.argv[1] == "names":
    print("\n".join(sorted(load(sys.argv[2]))))
elif sys.argv[1] == "same":
    a, b = load(sys.argv[2]), load(sys.argv[3])
    ks = [k for k in a if k.startswith(tuple(sys.argv[4].split(",")))]
    sys.exit(not (ks and all(k in b and a[k] == b[k] for k in ks)))
elif sys.argv[1] == "differ":  # every tensor named PREFIX* changed
    a, b = load(sys.argv[2]), load(sys.argv[3])
    ks = [k for k in a if k.startswith(sys.argv[4])]
    sys.exit(not (ks and all(k in b and a[k][2] != b[k][2] for k in ks if "norm" not in k)))
PYEOF
st() { python3 st.py "$@"; }
VIS="vision_tower.,multi_modal_projector."

# -- the lowering: module names, checkpoint names --
cfg "$T/full" "" >full.yml
check '"$AXOC" compile full.yml -o full.bin --dump-ir ir 2>full.err' "compile a Gemma3ForConditionalGeneration config"
L=ir/00-lower.ir
check 'grep -q "@model.language_model.layers.1.mlp.down_proj.weight : .*hf=\"language_model.model.layers.1.mlp.down_proj.weight\"" $L' \
  "a parameter takes its module's name, and the checkpoint's as hf"
check '! grep -q "vision" $L && [ "$(grep -c "= geglu(" $L)" = 2 ] && [ "$(grep -c "window=7" $L)" = 1 ]' "only the language model is lowered: tiny-gemma3's layers"
check 'grep -q "model.text_prefix = \"model.language_model.\"" $L' "the plan knows the text model's prefix"

cfg "$T/full" "freeze_mm_modules: true" >fmm.yml
check '"$AXOC" compile fmm.yml -o fmm.bin --dump-ir irf 2>/dev/null && cmp -s irf/00-lower.ir $L' "freeze_mm_modules: true is what axo does anyway (the same plan)"

# -- full fine-tune: the saved model is the whole multimodal model --
check '"$AXORUN" full.bin >full.log 2>&1' "full fine-tune trains"
st names "$M/model.safetensors" >base.names
check 'st names full/model.safetensors | cmp -s - base.names' "the saved model has the base's tensor names, all 51 of them (the Hub's layout, no lm_head)"
check 'st same "$M/model.safetensors" full/model.safetensors "$VIS"' "the vision tower and projector are the base's, bit for bit"
check 'st differ "$M/model.safetensors" full/model.safetensors language_model.model.layers.' "the language model's weights were trained"
check 'cmp -s full/config.json "$M/config.json"' "config.json is the base's"

# -- a checkpoint, and a run resumed from it --
cfg "$T/r" 'save_steps: 2' >r.yml
check '"$AXOC" compile r.yml -o r.bin 2>/dev/null && "$AXORUN" r.bin >/dev/null 2>&1 && st same "$M/model.safetensors" r/checkpoint-2/model.safetensors "$VIS"' \
  "checkpoint-2 is a whole model too"
cfg "$T/r2" "save_steps: 2
resume_from_checkpoint: $T/r/checkpoint-2" >r2.yml
check '"$AXOC" compile r2.yml -o r2.bin 2>/dev/null && "$AXORUN" r2.bin >/dev/null 2>&1 && cmp -s r/model.safetensors r2/model.safetensors' \
  "resumed from checkpoint-2 = the straight run, bit for bit"

# -- unfrozen_parameters match module names --
cfg "$T/fz" 'unfrozen_parameters:
  - model.language_model.layers.1.mlp.*' >fz.yml
check '"$AXOC" compile fz.yml -o fz.bin 2>/dev/null && "$AXORUN" fz.bin >/dev/null 2>&1' "unfrozen_parameters with module names trains"
check 'st same "$M/model.safetensors" fz/model.safetensors language_model.model.layers.0.,language_model.model.embed_tokens,$VIS && st differ "$M/model.safetensors" fz/model.safetensors language_model.model.layers.1.mlp.' \
  "only layer 1's MLP changed"

# -- LoRA: PEFT's names, the tower excluded, merged back whole --
cfg "$T/lora" 'adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj]' >lora.yml
check '"$AXOC" compile lora.yml -o lora.bin 2>/dev/null && "$AXORUN" lora.bin >/dev/null 2>&1' "LoRA on q_proj, v_proj trains"
check '[ "$(st names lora/adapter_model.safetensors | grep -c "^base_model.model.model.language_model.layers.[01].self_attn.[qv]_proj.lora_[AB].weight$")" = 8 ] && [ "$(st names lora/adapter_model.safetensors | wc -l)" = 8 ]' \
  "the adapter holds PEFT's 8 names (base_model.model.model.language_model.layers.N...)"
check 'python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not (c[\"target_modules\"] == [\"q_proj\", \"v_proj\"] and c[\"exclude_modules\"] == \"model\\\\.(vision_tower|multi_modal_projector)\\\\..*\"))" lora/adapter_config.json' \
  "adapter_config.json: the targets as given, the vision tower excluded"
check '"$AXOC" merge-lora lora --base "$M" -o merged 2>merge.err && st names merged/model.safetensors | cmp -s - base.names && st same "$M/model.safetensors" merged/model.safetensors "$VIS"' \
  "merge-lora gives the whole multimodal model, the tower unchanged"
check 'st differ "$M/model.safetensors" merged/model.safetensors language_model.model.layers.0.self_attn.q_proj && st same "$M/model.safetensors" merged/model.safetensors language_model.model.layers.0.self_attn.k_proj' \
  "the adapted projections changed, the others did not"
# Axolotl's example regex for Gemma 3 (the text model's projections only)
cfg "$T/rx" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: 'model.language_model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj'" >rx.yml
check '"$AXOC" compile rx.yml -o rx.bin 2>/dev/null && "$AXORUN" rx.bin >/dev/null 2>&1 && [ "$(st names rx/adapter_model.safetensors | grep -c lora_A)" = 14 ]' \
  "a lora_target_modules regex over module names adapts all 14 projections"

# -- ZeRO-3 x 2 with SHARDED_STATE_DICT-style checkpoints: merge-sharded gives the whole model --
cat >sh.yml <<EOF
$(cfg "$T/sh" 'save_steps: 2')
fsdp_version: 2
fsdp_config:
  state_dict_type: SHARDED_STATE_DICT
  transformer_layer_cls_to_wrap: Gemma3DecoderLayer
  reshard_after_forward: true
EOF
check '"$AXOC" compile sh.yml -o sh.bin --world-size 2 2>sh.err && "$AXORUN" sh.bin --comm local >/dev/null 2>&1' "FSDP2 x 2 with sharded checkpoints trains"
check 'test -s sh/checkpoint-2/model-carried.safetensors && "$AXOC" merge-sharded sh/checkpoint-2 -o shm 2>/dev/null && st names shm/model.safetensors | cmp -s - base.names && st same "$M/model.safetensors" shm/model.safetensors "$VIS"' \
  "the sharded checkpoint carries the tower: merge-sharded gives the whole model"

# -- refusals name the key --
mkdir -p bad && python3 - "$M/config.json" bad/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["text_config"]["final_logit_softcapping"] = 30.0
json.dump(c, open(sys.argv[2], "w"))
PYEOF
sed "s#base_model: .*#base_model: $T/bad#" full.yml >bad.yml
check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "config.json: text_config.final_logit_softcapping: .*not implemented" bad.err' "a text_config key is refused by its full name"
finish
