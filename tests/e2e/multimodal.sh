#!/usr/bin/env bash
# Multimodal models trained on text, end to end on the CPU executor: the
# multimodal Gemma 3 (Gemma3ForConditionalGeneration: gemma-3-4b and larger)
# and Mistral 3 (Mistral3ForConditionalGeneration: Mistral-Small-3.1/3.2),
# from the fixtures tests/reference/fixtures/tiny-gemma3-mm and tiny-mistral3
# (the Hub's tensor names: language_model.model.*, language_model.lm_head.*,
# vision_tower.*, multi_modal_projector.*). Their language model trains (the
# numbers are transformers' own: test_hf_fixtures); parameters take their
# module names (model.language_model.*: PEFT's, unfrozen_parameters', a
# lora_target_modules regex's) and are saved under the checkpoint's; every
# saved model carries the vision tower and projector unchanged, bit for bit;
# a LoRA adapter has PEFT's names, keeps PEFT off the tower (exclude_modules)
# and merges back into a whole multimodal model; a sharded checkpoint merges
# into one too.
# usage: multimodal.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 4\n' \
    "$M" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nlogging_steps: 1\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}
# tensors: names of a safetensors file, one a line (sorted); same_tensors A B PREFIX: the tensors of A named PREFIX*
# are in B with the same dtype, shape and bytes
VIS="vision_tower.,multi_modal_projector."


# The checks every model gets, in $T/$N: $M the fixture, $N its name, $ARCH its class, $LAYER its decoder layer
# class, $NT the tensors of its checkpoint
model_checks() {
  mkdir -p "$T/$N" && cd "$T/$N" || return
  local D="$T/$N"
  # -- the lowering: module names, checkpoint names --
  cfg "$D/full" "" >full.yml
  check '"$AXOC" compile full.yml -o full.bin --dump-ir ir 2>full.err' "$N: compile a $ARCH config"
  L=ir/00-lower.ir
  check 'grep -q "@model.language_model.layers.1.mlp.down_proj.weight : .*hf=\"language_model.model.layers.1.mlp.down_proj.weight\"" $L' \
    "$N: a parameter takes its module's name, and the checkpoint's as hf"
  check '! grep -q "vision\|projector" $L && grep -q "model.text_prefix = \"model.language_model.\"" $L' "$N: only the language model is lowered"
  cfg "$D/full" "freeze_mm_modules: true" >fmm.yml
  check '"$AXOC" compile fmm.yml -o fmm.bin --dump-ir irf 2>/dev/null && cmp -s irf/00-lower.ir $L' "$N: freeze_mm_modules: true is what axo does anyway (the same plan)"

  # -- full fine-tune: the saved model is the whole multimodal model --
  check '"$AXORUN" full.bin >full.log 2>&1' "$N: full fine-tune trains"
  st names "$M/model.safetensors" >base.names
  check 'st names full/model.safetensors | cmp -s - base.names && [ "$(wc -l <base.names)" = $NT ]' "$N: the saved model has the base's $NT tensor names (the Hub's layout)"
  check 'st same "$M/model.safetensors" full/model.safetensors "$VIS"' "$N: the vision tower and projector are the base's, bit for bit"
  check 'st differ "$M/model.safetensors" full/model.safetensors language_model.model.layers.' "$N: the language model's weights were trained"
  check 'cmp -s full/config.json "$M/config.json"' "$N: config.json is the base's"

  # -- a checkpoint, and a run resumed from it --
  cfg "$D/r" 'save_steps: 2' >r.yml
  check '"$AXOC" compile r.yml -o r.bin 2>/dev/null && "$AXORUN" r.bin >/dev/null 2>&1 && st same "$M/model.safetensors" r/checkpoint-2/model.safetensors "$VIS"' \
    "$N: checkpoint-2 is a whole model too"
  cfg "$D/r2" "save_steps: 2
resume_from_checkpoint: $D/r/checkpoint-2" >r2.yml
  check '"$AXOC" compile r2.yml -o r2.bin 2>/dev/null && "$AXORUN" r2.bin >/dev/null 2>&1 && cmp -s r/model.safetensors r2/model.safetensors' \
    "$N: resumed from checkpoint-2 = the straight run, bit for bit"

  # -- unfrozen_parameters match module names --
  cfg "$D/fz" 'unfrozen_parameters:
  - model.language_model.layers.1.mlp.*' >fz.yml
  check '"$AXOC" compile fz.yml -o fz.bin 2>/dev/null && "$AXORUN" fz.bin >/dev/null 2>&1' "$N: unfrozen_parameters with module names trains"
  check 'st same "$M/model.safetensors" fz/model.safetensors language_model.model.layers.0.,language_model.model.embed_tokens,$VIS && st differ "$M/model.safetensors" fz/model.safetensors language_model.model.layers.1.mlp.' \
    "$N: only layer 1's MLP changed"

  # -- LoRA: PEFT's names, the tower excluded, merged back whole --
  cfg "$D/lora" 'adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj]' >lora.yml
  check '"$AXOC" compile lora.yml -o lora.bin 2>/dev/null && "$AXORUN" lora.bin >/dev/null 2>&1' "$N: LoRA on q_proj, v_proj trains"
  check '[ "$(st names lora/adapter_model.safetensors | grep -c "^base_model.model.model.language_model.layers.[01].self_attn.[qv]_proj.lora_[AB].weight$")" = 8 ] && [ "$(st names lora/adapter_model.safetensors | wc -l)" = 8 ]' \
    "$N: the adapter holds PEFT's 8 names (base_model.model.model.language_model.layers.N...)"
  check 'python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not (c[\"target_modules\"] == [\"q_proj\", \"v_proj\"] and c[\"exclude_modules\"] == \"model\\\\.(vision_tower|multi_modal_projector)\\\\..*\"))" lora/adapter_config.json' \
    "$N: adapter_config.json: the targets as given, the vision tower excluded"
  check '"$AXOC" merge-lora lora --base "$M" -o merged 2>merge.err && st names merged/model.safetensors | cmp -s - base.names && st same "$M/model.safetensors" merged/model.safetensors "$VIS"' \
    "$N: merge-lora gives the whole multimodal model, the tower unchanged"
  check 'st differ "$M/model.safetensors" merged/model.safetensors language_model.model.layers.0.self_attn.q_proj && st same "$M/model.safetensors" merged/model.safetensors language_model.model.layers.0.self_attn.k_proj' \
    "$N: the adapted projections changed, the others did not"
  # Axolotl's example regex for its multimodal models (the text model's projections only)
  cfg "$D/rx" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: 'model.language_model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj'" >rx.yml
  check '"$AXOC" compile rx.yml -o rx.bin 2>/dev/null && "$AXORUN" rx.bin >/dev/null 2>&1 && [ "$(st names rx/adapter_model.safetensors | grep -c lora_A)" = 14 ]' \
    "$N: a lora_target_modules regex over module names adapts all 14 projections"

  # -- FSDP2 x 2 with SHARDED_STATE_DICT checkpoints: merge-sharded gives the whole model --
  { cfg "$D/sh" 'save_steps: 2'; printf 'fsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  transformer_layer_cls_to_wrap: %s\n  reshard_after_forward: true\n' "$LAYER"; } >sh.yml
  check '"$AXOC" compile sh.yml -o sh.bin --world-size 2 2>sh.err && "$AXORUN" sh.bin --comm local >/dev/null 2>&1' "$N: FSDP2 x 2 with sharded checkpoints trains"
  check 'test -s sh/checkpoint-2/model-carried.safetensors && "$AXOC" merge-sharded sh/checkpoint-2 -o shm 2>/dev/null && st names shm/model.safetensors | cmp -s - base.names && st same "$M/model.safetensors" shm/model.safetensors "$VIS"' \
    "$N: the sharded checkpoint carries the tower: merge-sharded gives the whole model"
  cd "$T" || return
}

M="$SRC/tests/reference/fixtures/tiny-gemma3-mm" N=gemma3 ARCH=Gemma3ForConditionalGeneration LAYER=Gemma3DecoderLayer NT=51
model_checks
check '[ "$(grep -c "= geglu(" gemma3/ir/00-lower.ir)" = 2 ] && [ "$(grep -c "window=7" gemma3/ir/00-lower.ir)" = 1 ] && ! grep -q lm_head gemma3/ir/00-lower.ir' \
  "gemma3: tiny-gemma3's layers, the head tied (no lm_head in the checkpoint or the saved model)"
# lora_model_dir: an adapter (PEFT's, Axolotl's) whose targets also matched the tower's fc1: axo trains the text
# adapters on, and carries the tower's into every adapter it saves, as they were
mkdir -p "$T/towerad" && cp "$T/gemma3/lora/adapter_config.json" "$T/towerad/" && python3 - "$T/gemma3/lora/adapter_model.safetensors" "$T/towerad/adapter_model.safetensors" <<'PYEOF'
import json, struct, sys, random
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
t = {k: (v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
rnd = random.Random(5)
for w, shape in (("lora_A", [4, 16]), ("lora_B", [32, 4])):
    t["base_model.model.model.vision_tower.encoder.layers.0.mlp.fc1.%s.weight" % w] = (
        shape, struct.pack("<%df" % (shape[0] * shape[1]), *[rnd.uniform(-1, 1) for _ in range(shape[0] * shape[1])]))
hdr, off = {}, 0
for k in sorted(t):
    hdr[k] = {"dtype": "F32", "shape": t[k][0], "data_offsets": [off, off + len(t[k][1])]}; off += len(t[k][1])
js = json.dumps(hdr).encode(); js += b" " * (-len(js) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(js)) + js + b"".join(t[k][1] for k in sorted(t)))
PYEOF
M="$SRC/tests/reference/fixtures/tiny-gemma3-mm"
cfg "$T/towerout" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj]
lora_model_dir: $T/towerad" >towerad.yml
check '"$AXOC" compile towerad.yml -o towerad.bin 2>/dev/null && "$AXORUN" towerad.bin >towerad.log 2>&1 && st same towerad/adapter_model.safetensors towerout/adapter_model.safetensors base_model.model.model.vision_tower. && st differ towerad/adapter_model.safetensors towerout/adapter_model.safetensors base_model.model.model.language_model.' \
  "lora_model_dir with tower adapters: the text ones train on, the tower's are saved as they were"
check 'python3 -c "import json,sys,re; c=json.load(open(sys.argv[1])); t=c[\"target_modules\"]; m=lambda k: re.fullmatch(t, k) is not None; sys.exit(not (\"exclude_modules\" not in c and m(\"model.vision_tower.encoder.layers.0.mlp.fc1\") and m(\"model.language_model.layers.1.self_attn.v_proj\") and not m(\"model.vision_tower.encoder.layers.0.self_attn.q_proj\") and not m(\"model.language_model.layers.1.self_attn.k_proj\")))" towerout/adapter_config.json' \
  "its adapter_config.json targets exactly the adapted modules (one regex: the text q/v and the tower's fc1)"
M="$SRC/tests/reference/fixtures/tiny-mistral3" N=mistral3 ARCH=Mistral3ForConditionalGeneration LAYER=MistralDecoderLayer NT=36
model_checks
check 'grep -q "@lm_head.weight : .*hf=\"language_model.lm_head.weight\"" mistral3/ir/00-lower.ir && [ "$(grep -c "= swiglu(" mistral3/ir/00-lower.ir)" = 2 ]' \
  "mistral3: the untied head is module lm_head, saved as the Hub's language_model.lm_head.weight"
# Ministral 3 (Ministral-3-*-2512: Mistral 3 with a "ministral3" text model, its queries scaled past 12 positions here)
M="$SRC/tests/reference/fixtures/tiny-ministral3-mm" N=ministral3 ARCH=Mistral3ForConditionalGeneration LAYER=MistralDecoderLayer NT=36
model_checks
check '[ "$(grep -c "qscale_beta=0.10000000000000001, qscale_max=12" ministral3/ir/00-lower.ir)" = 2 ]' \
  "ministral3: its text model's queries carry the position scale"
mkdir -p fp8 && ln -sf "$M/model.safetensors" fp8/ && python3 - "$M/config.json" fp8/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["quantization_config"] = {"quant_method": "fp8", "weight_block_size": None}
json.dump(c, open(sys.argv[2], "w"))
PYEOF
cfg "$T/fp8out" "" | sed "s#base_model: .*#base_model: $T/fp8#" >fp8.yml
check '! "$AXOC" compile fp8.yml -o fp8.bin 2>fp8.err && grep -q "config.json: quantization_config: error: expected none: a pre-quantized checkpoint .* found \"fp8\"" fp8.err' \
  "an FP8 checkpoint (the Hub's Ministral-3 instruct releases) is refused, never read as plain floats"

# -- refusals name the key --
M="$SRC/tests/reference/fixtures/tiny-gemma3-mm"
mkdir -p bad && python3 - "$M/config.json" bad/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["text_config"]["use_bidirectional_attention"] = True
json.dump(c, open(sys.argv[2], "w"))
PYEOF
cfg "$T/badout" "" | sed "s#base_model: .*#base_model: $T/bad#" >bad.yml
check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "config.json: text_config.use_bidirectional_attention: .*not implemented" bad.err' "a text_config key is refused by its full name"
cfg "$T/nt" "adapter: lora
lora_r: 4" >nt.yml
check '! "$AXOC" compile nt.yml -o nt.bin 2>nt.err && grep -q "Axolotl passes PEFT an empty target list, which PEFT refuses (it does not fall back to its defaults for Gemma3ForConditionalGeneration" nt.err' \
  "LoRA without targets: refused (Axolotl hands PEFT an empty list, which PEFT refuses)"
cfg "$T/tw" "adapter: lora
lora_r: 4
lora_target_modules: [q_proj, fc1]" >tw.yml
check '"$AXOC" compile tw.yml -o tw.bin 2>tw.err && grep -q "\"fc1\" matches only modules outside the language model (model.vision_tower.encoder.layers.0.mlp.fc1" tw.err' \
  "a target only the vision tower has (fc1) is left out with a warning"
# the Hub's Mistral-Small configs have no top-level tie_word_embeddings (true by default) but an lm_head of their
# own: untied, as transformers loads them; trainable tokens are then refused (PEFT would tie their head rows)
mkdir -p notie && ln -sf "$SRC/tests/reference/fixtures/tiny-mistral3/model.safetensors" notie/ && python3 - "$SRC/tests/reference/fixtures/tiny-mistral3/config.json" notie/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); del c["tie_word_embeddings"]
json.dump(c, open(sys.argv[2], "w"))
PYEOF
M="$T/notie"
cfg "$T/notie-out" "" >notie.yml
cfg "$T/notie-tok" "adapter: lora
lora_r: 4
lora_target_linear: true
peft_trainable_token_indices: [5, 6]" >notie-tok.yml
check '"$AXOC" compile notie.yml -o notie.bin --dump-ir irn 2>notie.err && grep -q "differs from the embedding: untied, as transformers loads it" notie.err && grep -q "@lm_head.weight" irn/00-lower.ir' \
  "no top-level tie and an lm_head of its own: untied, with a warning"
check '! "$AXOC" compile notie-tok.yml -o notie-tok.bin 2>notie-tok.err && grep -q "peft_trainable_token_indices: .*ties lm_head to the embedding" notie-tok.err' \
  "then trainable tokens are refused (PEFT would train the head's rows with the embedding's)"
mkdir -p bad3 && python3 - "$SRC/tests/reference/fixtures/tiny-mistral3/config.json" bad3/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["text_config"]["model_type"] = "qwen2"
json.dump(c, open(sys.argv[2], "w"))
PYEOF
cfg "$T/badout3" "" | sed "s#base_model: .*#base_model: $T/bad3#" >bad3.yml
check '! "$AXOC" compile bad3.yml -o bad3.bin 2>bad3.err && grep -q "text_config.model_type: error: expected \"mistral\" or \"ministral3\" (the language models axo implements for Mistral3ForConditionalGeneration), found \"qwen2\"" bad3.err' \
  "Mistral 3 with another language model is refused by name"
finish
