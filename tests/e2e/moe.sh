#!/usr/bin/env bash
# Mixture-of-experts models end to end on the CPU executor: Qwen3-MoE
# (Qwen3MoeForCausalLM: tiny-qwen3moe, layer 0 sparse, layer 1 dense by
# mlp_only_layers, norm_topk_prob) and Mixtral (MixtralForCausalLM:
# tiny-mixtral, the checkpoint's block_sparse_moe / w1 w3 w2 names). The
# numbers themselves are transformers 5.25's (test_hf_fixtures). Here: the
# lowering (router, top-k, experts stacked as transformers 5 holds them), the
# saved model in the checkpoint's per-expert layout, checkpoints and resume
# (full and sharded), merge-sharded, sp 2 and ZeRO-3 x 2 = 1 rank, LoRA on the
# attention, and the refusals by name (among them the LoRA targets PEFT with
# transformers 5 moves onto the router's or experts' weights).
# usage: moe.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { model_cfg "$@"; }

for N in qwen3moe mixtral; do
  M="$SRC/tests/reference/fixtures/tiny-$N"
  B=mlp; P1=gate_proj
  [ $N = mixtral ] && B=block_sparse_moe P1=w1
  cfg "$M" "$T/$N-one" "save_steps: 2" >$N.yml
  check '"$AXOC" compile $N.yml -o $N.bin --dump-ir ir-$N 2>$N.err && "$AXORUN" $N.bin >$N.log 2>&1' "$N: compiles and trains"
  check 'grep -q "axoc: MoE layers: the CUDA executor also takes up to [0-9.]* KiB of scratch per rank" $N.err' \
    "$N: axoc reports the MoE layers' CUDA scratch beside the memory plan"
  L=ir-$N/00-lower.ir
  check 'grep -q "@model.layers.0.mlp.experts.gate_up_proj : f32\[4,[0-9]*,64\] param {hf=\"model.layers.0.$B.experts.\*.$P1.weight\".*stack=4" $L && grep -q "= moe_route(%[0-9]*) {k=2, norm=1} : f32\[2,64,2\] act, i32\[2,64,2\] act" $L && grep -q "= moe_ffn(" $L' \
    "$N: the router's top 2 of 4 (renormalised), the experts stacked [E, 2I, H] from the checkpoint's per-expert tensors"
  st names "$M/model.safetensors" >$N.names
  check 'st names $N-one/model.safetensors | cmp -s - $N.names' "$N: the saved model has the checkpoint's per-expert tensor names"
  check 'st differ "$M/model.safetensors" $N-one/model.safetensors model.layers.0.$B.experts. && st differ "$M/model.safetensors" $N-one/model.safetensors model.layers.0.$B.gate.weight' \
    "$N: every expert and the router were trained"
  cfg "$M" "$T/$N-r2" "save_steps: 2
resume_from_checkpoint: $T/$N-one/checkpoint-2" >$N-r2.yml
  check '"$AXOC" compile $N-r2.yml -o $N-r2.bin 2>/dev/null && "$AXORUN" $N-r2.bin >/dev/null 2>&1 && cmp -s $N-one/model.safetensors $N-r2/model.safetensors' \
    "$N: resumed from checkpoint-2 (the experts read back from their per-expert tensors) = the straight run, bit for bit"
  cfg "$M" "$T/$N-sp" "sequence_parallel_degree: 2
ring_attn_func: batch_zigzag" >$N-sp.yml
  check '"$AXOC" compile $N-sp.yml -o $N-sp.bin --world-size 2 2>/dev/null && "$AXORUN" $N-sp.bin --comm local >/dev/null 2>&1 && losses_agree $N-one/train_log.jsonl $N-sp/train_log.jsonl 1e-5' \
    "$N: sp 2 (zigzag) = 1 rank"
  cfg "$M" "$T/$N-ga2" "gradient_accumulation_steps: 2" >$N-ga2.yml
  cfg "$M" "$T/$N-z3" "deepspeed: $SRC/configs/deepspeed/zero3.json" >$N-z3.yml
  check '"$AXOC" compile $N-ga2.yml -o $N-ga2.bin 2>/dev/null && "$AXORUN" $N-ga2.bin >/dev/null 2>&1 && "$AXOC" compile $N-z3.yml -o $N-z3.bin --world-size 2 2>/dev/null && "$AXORUN" $N-z3.bin --comm local >/dev/null 2>&1 && losses_agree $N-ga2/train_log.jsonl $N-z3/train_log.jsonl 1e-5' \
    "$N: ZeRO-3 x 2 (whole experts per rank) = 1 rank accumulating 2"
  # FSDP2 x 2, SHARDED_STATE_DICT: the experts stay stacked under their module name, split by experts
  { cfg "$M" "$T/$N-sh" 'save_steps: 2'; printf 'fsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  reshard_after_forward: true\n'; } >$N-sh.yml
  check '"$AXOC" compile $N-sh.yml -o $N-sh.bin --world-size 2 2>$N-sh.err && "$AXORUN" $N-sh.bin --comm local >/dev/null 2>&1' "$N: FSDP2 x 2 with sharded checkpoints trains"
  { cfg "$M" "$T/$N-sh2" "save_steps: 2
resume_from_checkpoint: $T/$N-sh/checkpoint-2"; printf 'fsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  reshard_after_forward: true\n'; } >$N-sh2.yml
  check '"$AXOC" compile $N-sh2.yml -o $N-sh2.bin --world-size 2 2>/dev/null && "$AXORUN" $N-sh2.bin --comm local >/dev/null 2>&1 && "$AXOC" merge-sharded $N-sh/checkpoint-4 -o $N-shm 2>/dev/null && "$AXOC" merge-sharded $N-sh2/checkpoint-4 -o $N-shm2 2>/dev/null && cmp -s $N-shm/model.safetensors $N-shm2/model.safetensors' \
    "$N: resumed from a sharded checkpoint = the straight run (merged, bit for bit)"
  check '[ "$(st shape $N-shm/model.safetensors model.layers.0.$B.experts.gate_up_proj)" = "$(st shape $N-one/model.safetensors model.layers.0.$B.experts.0.$P1.weight | python3 -c "import sys,ast; s=ast.literal_eval(sys.stdin.read()); print([4, 2 * s[0], s[1]])")" ]' \
    "$N: merge-sharded writes the experts stacked, under the checkpoint's prefix (as transformers 5 re-saves them; it loads them)"
  cfg "$N-shm" "$T/$N-again" "max_steps: 1" | sed 's/^max_steps: 4$//' >$N-again.yml
  cp "$M/config.json" $N-shm/config.json 2>/dev/null
  check '"$AXOC" compile $N-again.yml -o $N-again.bin 2>/dev/null && "$AXORUN" $N-again.bin >/dev/null 2>&1' \
    "$N: that merged model trains again as a base (the stacked tensors read whole)"
  cfg "$M" "$T/$N-lora" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, k_proj, v_proj, o_proj]" >$N-lora.yml
  check '"$AXOC" compile $N-lora.yml -o $N-lora.bin 2>/dev/null && "$AXORUN" $N-lora.bin >/dev/null 2>&1 && st names $N-lora/adapter_model.safetensors >$N-lora.names && [ "$(grep -c "self_attn.[qkvo]_proj.lora_[AB].weight" $N-lora.names)" = 16 ] && [ "$(wc -l <$N-lora.names)" = 16 ]' \
    "$N: LoRA on the attention projections trains, PEFT's names"
  cfg "$M" "$T/$N-lexp" "adapter: lora
lora_r: 4
lora_target_modules: [q_proj, ${P1}]" >$N-lexp.yml
  check '! "$AXOC" compile $N-lexp.yml -o $N-lexp.bin 2>$N-lexp.err && grep -q "lora_target_modules: error: \"${P1}\": PEFT (with transformers 5) moves this target onto the MoE router" $N-lexp.err' \
    "$N: a target PEFT moves onto the experts (${P1}) is refused by name (LoRA on experts not implemented)"
  check '"$AXOC" merge-lora $N-lora --base "$M" -o $N-merged 2>/dev/null && st names $N-merged/model.safetensors | cmp -s - $N.names && st same "$M/model.safetensors" $N-merged/model.safetensors model.layers.0.$B.' \
    "$N: merge-lora keeps the experts and the router, per expert, unchanged"
done

M="$SRC/tests/reference/fixtures/tiny-qwen3moe"
cfg "$M" "$T/mts" "adapter: lora
lora_r: 4
lora_target_modules: [q_proj]
lora_modules_to_save: [experts]" >mts.yml
check '! "$AXOC" compile mts.yml -o mts.bin 2>mts.err && grep -q "lora_modules_to_save: error: \"experts\": saving an MoE layer" mts.err' \
  "qwen3moe: lora_modules_to_save of the experts is refused by name (not implemented)"
# a router logit gone NaN (a diverged run) gives a NaN loss, not a crash
mkdir -p nanm && cp "$M"/config.json nanm/ && python3 - "$M/model.safetensors" nanm/model.safetensors <<'PYEOF'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read()); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
o = h["model.layers.0.mlp.gate.weight"]["data_offsets"][0]
raw[8 + n + o:8 + n + o + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw)
PYEOF
cfg "$T/nanm" "$T/nano" "max_steps: 1" | sed 's/^max_steps: 4$//' >nan.yml
check '"$AXOC" compile nan.yml -o nan.bin 2>/dev/null && { "$AXORUN" nan.bin >nan.log 2>&1; grep -q "loss nan" nan.log; } && ! grep -qi "abort\|munmap\|corrupted\|double free\|segmentation" nan.log' \
  "qwen3moe: a NaN router weight reports a NaN loss instead of corrupting memory"
# Axolotl's lora_target_linear lists the dense layer's gate_proj / up_proj / down_proj, which PEFT then moves onto
# the experts; Mixtral has no dense layer: its linear layers are the attention's, as PEFT's
cfg "$M" "$T/lin" "adapter: lora
lora_r: 4
lora_target_linear: true" >lin.yml
check '! "$AXOC" compile lin.yml -o lin.bin 2>lin.err && grep -q "lora_target_linear: error: model.layers.1.mlp.gate_proj: Axolotl lists this MoE model" lin.err' \
  "qwen3moe: lora_target_linear over its dense layer's MLP is refused (PEFT would adapt the experts instead)"
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/mlin" "adapter: lora
lora_r: 4
lora_target_linear: true" >mlin.yml
check '"$AXOC" compile mlin.yml -o mlin.bin 2>/dev/null && "$AXORUN" mlin.bin >/dev/null 2>&1 && [ "$(st names mlin/adapter_model.safetensors | grep -c "self_attn.[qkvo]_proj.lora_A")" = 8 ]' \
  "mixtral: lora_target_linear adapts the attention projections only"
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/mal" "adapter: lora
lora_r: 4
lora_target_modules: all-linear" >mal.yml
check '! "$AXOC" compile mal.yml -o mal.bin 2>mal.err && grep -q "\"all-linear\": PEFT (with transformers 5) resolves it to this MoE model" mal.err' \
  "mixtral: lora_target_modules: all-linear (PEFT resolves it to the router and experts too) is refused"
for bad in "output_router_logits: true|output_router_logits|load-balancing loss" "use_sliding_window: true|use_sliding_window|sliding window on every layer" \
           "num_experts_per_tok: 9|num_experts_per_tok|at most the 4 experts"; do
  IFS='|' read -r kv key words <<<"$bad"
  cfg "$M" "$T/bad" "overrides_of_model_config:
  ${kv}" >bad.yml
  check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "config.json (with model_config): $key" bad.err && grep -q "$words" bad.err' "qwen3moe: $key refused by name ($kv)"
done
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/bad" "overrides_of_model_config:
  router_jitter_noise: 0.1" >bad.yml
check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "router_jitter_noise" bad.err' "mixtral: router_jitter_noise refused by name"
finish
