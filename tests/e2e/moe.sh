#!/usr/bin/env bash
# Mixture-of-experts models end to end on the CPU executor: Qwen3-MoE
# (Qwen3MoeForCausalLM: tiny-qwen3moe, layer 0 sparse, layer 1 dense by
# mlp_only_layers, norm_topk_prob) and Mixtral (MixtralForCausalLM:
# tiny-mixtral, the checkpoint's block_sparse_moe / w1 w3 w2 names). The
# numbers themselves are transformers 5.25's (test_hf_fixtures). Here: the
# lowering (router, top-k, experts stacked as transformers 5 holds them), the
# saved model in the checkpoint's per-expert layout, checkpoints and resume
# (full and sharded), merge-sharded, sp 2 and ZeRO-3 x 2 = 1 rank, LoRA on the
# attention, LoRA on the experts and the router as PEFT (>= 0.19, with
# transformers 5) makes it (target_parameters: the adapter's layout against
# PEFT's own files, resume, lora_model_dir, ZeRO-3, sp, merge-lora, bf16), and
# the refusals by name. Then Qwen2-MoE (its shared expert): training, sp 2 and
# ZeRO-3 x 2 = 1 rank, LoRA as PEFT saves it.
# usage: moe.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { model_cfg "$@"; }

for N in qwen3moe mixtral; do
  M="$SRC/tests/reference/fixtures/tiny-$N"
  B=mlp; P1=gate_proj P3=up_proj KEEP=model.layers.0.self_attn.k_proj,model.layers.1.mlp. # (layer 1: dense)
  [ $N = mixtral ] && B=block_sparse_moe P1=w1 P3=w3 KEEP=model.layers.0.self_attn.k_proj
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
  check '! "$AXOC" compile $N-lexp.yml -o $N-lexp.bin 2>$N-lexp.err && grep -q "lora_target_modules: error: \"${P1}\" without \"${P3}\": PEFT (with transformers 5) refuses one of the two" $N-lexp.err' \
    "$N: ${P1} without ${P3} is refused as PEFT refuses it (both are fused into the experts' gate_up_proj)"
  check '"$AXOC" merge-lora $N-lora --base "$M" -o $N-merged 2>/dev/null && st names $N-merged/model.safetensors | cmp -s - $N.names && st same "$M/model.safetensors" $N-merged/model.safetensors model.layers.0.$B.' \
    "$N: merge-lora keeps the experts and the router, per expert, unchanged"

  # LoRA on the experts and the router: PEFT moves the names onto their weights (target_parameters); the adapter as
  # PEFT saves it (tests/reference/peft/tiny-$N-experts: the same targets, made by PEFT 0.21; its numbers are
  # test_hf_fixtures')
  PX="$SRC/tests/reference/peft/tiny-$N-experts"
  TGT=$(python3 -c "import json,sys; print(', '.join(json.load(open(sys.argv[1]))['lora']['target_modules']))" "$PX/expected.json")
  cfg "$M" "$T/$N-lx" "adapter: lora
lora_r: 4
lora_alpha: 8
save_steps: 2
lora_target_modules: [$TGT]" >$N-lx.yml
  check '"$AXOC" compile $N-lx.yml -o $N-lx.bin --dump-ir ir-$N-lx 2>/dev/null && "$AXORUN" $N-lx.bin >/dev/null 2>&1 && st layout $N-lx/adapter_model.safetensors >$N-lx.layout && st layout "$PX/adapter_model.safetensors" | cmp -s - $N-lx.layout' \
    "$N: LoRA on the experts, router and attention saves PEFT's tensors (names, shapes: gate_up_proj at rank 2r under base_layer)"
  check 'grep -q "= lora_delta(@model.layers.0.mlp.experts.gate_up_proj, " ir-$N-lx/*-lora.ir && grep -q "= lora_delta(@model.layers.0.mlp.gate.weight, " ir-$N-lx/*-lora.ir' \
    "$N: the experts' and the router's weights get their low-rank delta before use (lora_delta)"
  check 'python3 - $N-lx/adapter_config.json "$PX/adapter_config.json" <<PYEOF
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("r", "lora_alpha", "rank_pattern", "alpha_pattern", "use_rslora", "peft_type"):
    assert a[k] == b[k], (k, a[k], b[k])
for k in ("target_modules", "target_parameters"):
    assert sorted(a[k]) == sorted(b[k]), (k, a[k], b[k])
PYEOF' "$N: adapter_config.json says what PEFT's says (target_parameters, rank_pattern / alpha_pattern of gate_up_proj)"
  check 'st differ "$PX/adapter_model.safetensors" $N-lx/adapter_model.safetensors base_model.model.model.layers.0.mlp.' \
    "$N: every adapter of the experts and the router trained"
  cfg "$M" "$T/$N-lx2" "adapter: lora
lora_r: 4
lora_alpha: 8
save_steps: 2
resume_from_checkpoint: $T/$N-lx/checkpoint-2
lora_target_modules: [$TGT]" >$N-lx2.yml
  check '"$AXOC" compile $N-lx2.yml -o $N-lx2.bin 2>/dev/null && "$AXORUN" $N-lx2.bin >/dev/null 2>&1 && cmp -s $N-lx/adapter_model.safetensors $N-lx2/adapter_model.safetensors' \
    "$N: resumed from checkpoint-2 = the straight run, bit for bit (expert adapters)"
  cfg "$M" "$T/$N-lxp" "adapter: lora
lora_r: 4
lora_alpha: 8
max_steps: 1
lora_model_dir: $PX
lora_target_modules: [$TGT]" | sed 's/^max_steps: 4$//' >$N-lxp.yml
  check '"$AXOC" compile $N-lxp.yml -o $N-lxp.bin 2>/dev/null && "$AXORUN" $N-lxp.bin >/dev/null 2>&1 && st layout $N-lxp/adapter_model.safetensors | cmp -s - $N-lx.layout' \
    "$N: lora_model_dir continues PEFT's own adapter (its rank_pattern read)"
  cfg "$M" "$T/$N-lxga" "adapter: lora
lora_r: 4
lora_target_modules: [$TGT]
gradient_accumulation_steps: 2" >$N-lxga.yml
  cfg "$M" "$T/$N-lxz3" "adapter: lora
lora_r: 4
lora_target_modules: [$TGT]
deepspeed: $SRC/configs/deepspeed/zero3.json" >$N-lxz3.yml
  check '"$AXOC" compile $N-lxga.yml -o $N-lxga.bin 2>/dev/null && "$AXORUN" $N-lxga.bin >/dev/null 2>&1 && "$AXOC" compile $N-lxz3.yml -o $N-lxz3.bin --world-size 2 2>/dev/null && "$AXORUN" $N-lxz3.bin --comm local >/dev/null 2>&1 && losses_agree $N-lxga/train_log.jsonl $N-lxz3/train_log.jsonl 1e-5' \
    "$N: expert LoRA under ZeRO-3 x 2 = 1 rank accumulating 2"
  cfg "$M" "$T/$N-lxsp" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [$TGT]
sequence_parallel_degree: 2" >$N-lxsp.yml
  check '"$AXOC" compile $N-lxsp.yml -o $N-lxsp.bin --world-size 2 2>/dev/null && "$AXORUN" $N-lxsp.bin --comm local >/dev/null 2>&1 && losses_agree $N-lx/train_log.jsonl $N-lxsp/train_log.jsonl 1e-5' \
    "$N: expert LoRA under sp 2 = 1 rank"
  check '"$AXOC" merge-lora $N-lx --base "$M" -o $N-lxm 2>/dev/null && st names $N-lxm/model.safetensors | cmp -s - $N.names && st differ "$M/model.safetensors" $N-lxm/model.safetensors model.layers.0.$B.experts. && st differ "$M/model.safetensors" $N-lxm/model.safetensors model.layers.0.$B.gate.weight && st same "$M/model.safetensors" $N-lxm/model.safetensors $KEEP' \
    "$N: merge-lora merges the experts (per expert, the checkpoint's names) and the router, and nothing else"
  check '"$AXOC" merge-lora $N-lx --base $N-shm -o $N-lxms 2>/dev/null && st differ $N-shm/model.safetensors $N-lxms/model.safetensors model.layers.0.$B.experts.gate_up_proj && st differ $N-shm/model.safetensors $N-lxms/model.safetensors model.layers.0.$B.experts.down_proj' \
    "$N: merge-lora onto transformers 5's stacked experts merges them stacked"
  cfg "$M" "$T/$N-lxbf" "adapter: lora
lora_r: 4
lora_dropout: 0.05
bf16: true
lora_target_modules: [$TGT]" >$N-lxbf.yml
  check '"$AXOC" compile $N-lxbf.yml -o $N-lxbf.bin 2>$N-lxbf.err && "$AXORUN" $N-lxbf.bin >$N-lxbf.log 2>&1 && grep -q "lora_dropout: warning: 0.05 applies to the linear layers. adapters only" $N-lxbf.err && ! grep -q "loss nan" $N-lxbf.log' \
    "$N: bf16 with lora_dropout trains (the experts' and router's adapters without dropout, as Axolotl patches PEFT)"
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
# the experts (the dense layer's MLP stays unadapted); Mixtral has no dense layer: its linear layers are the
# attention's, as PEFT's
cfg "$M" "$T/lin" "adapter: lora
lora_r: 4
lora_target_linear: true" >lin.yml
check '"$AXOC" compile lin.yml -o lin.bin 2>/dev/null && "$AXORUN" lin.bin >/dev/null 2>&1 && st names lin/adapter_model.safetensors >lin.names && [ "$(grep -c "self_attn.[qkvo]_proj.lora_A" lin.names)" = 8 ] && grep -q "layers.0.mlp.experts.base_layer.lora_A.weight" lin.names && grep -q "layers.0.mlp.experts.lora_B.weight" lin.names && ! grep -q "layers.1.mlp\|mlp.gate.lora" lin.names' \
  "qwen3moe: lora_target_linear adapts the attention and the experts (PEFT's move of the dense layer's names), not the dense MLP or the router"
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/mlin" "adapter: lora
lora_r: 4
lora_target_linear: true" >mlin.yml
check '"$AXOC" compile mlin.yml -o mlin.bin 2>/dev/null && "$AXORUN" mlin.bin >/dev/null 2>&1 && [ "$(st names mlin/adapter_model.safetensors | grep -c "self_attn.[qkvo]_proj.lora_A")" = 8 ] && [ "$(st names mlin/adapter_model.safetensors | wc -l)" = 16 ]' \
  "mixtral: lora_target_linear adapts the attention projections only"
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/mal" "adapter: lora
lora_r: 4
lora_target_modules: all-linear" >mal.yml
check '"$AXOC" compile mal.yml -o mal.bin 2>/dev/null && "$AXORUN" mal.bin >/dev/null 2>&1 && st names mal/adapter_model.safetensors >mal.names && [ "$(grep -c "lora_A" mal.names)" = 14 ] && grep -q "layers.1.mlp.gate.lora_A" mal.names && grep -q "layers.1.mlp.experts.base_layer.lora_A" mal.names' \
  "mixtral: lora_target_modules: all-linear adapts the attention, the router and the experts (PEFT resolves the string so)"
# lora_target_parameters (PEFT's target_parameters, as Axolotl passes it): gate_up_proj alone at rank r, not nested
cfg "$M" "$T/ltp" "adapter: lora
lora_r: 4
lora_target_parameters: [mlp.experts.gate_up_proj]" >ltp.yml
check '"$AXOC" compile ltp.yml -o ltp.bin 2>/dev/null && "$AXORUN" ltp.bin >/dev/null 2>&1 && [ "$(st layout ltp/adapter_model.safetensors)" = "base_model.model.model.layers.0.mlp.experts.lora_A.weight [16, 64]
base_model.model.model.layers.0.mlp.experts.lora_B.weight [64, 16]" ] && python3 -c "import json,sys; c=json.load(open(sys.argv[1])); assert c[\"target_parameters\"] == [\"mlp.experts.gate_up_proj\"] and c[\"target_modules\"] == [] and c[\"rank_pattern\"] == {}" ltp/adapter_config.json' \
  "qwen3moe: lora_target_parameters [mlp.experts.gate_up_proj] adapts it alone at rank r (no target_modules: none)"
# one layer's experts by full name (a string, as Axolotl's schema allows): only those; adapter_config.json keeps the
# name, so that PEFT wraps the same weights when it loads the adapter
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/ltp1" "adapter: lora
lora_r: 4
lora_target_parameters: model.layers.0.mlp.experts.down_proj" >ltp1.yml
check '"$AXOC" compile ltp1.yml -o ltp1.bin 2>/dev/null && "$AXORUN" ltp1.bin >/dev/null 2>&1 && [ "$(st names ltp1/adapter_model.safetensors | tr "\n" " ")" = "base_model.model.model.layers.0.mlp.experts.lora_A.weight base_model.model.model.layers.0.mlp.experts.lora_B.weight " ] && python3 -c "import json,sys; c=json.load(open(sys.argv[1])); assert c[\"target_parameters\"] == [\"model.layers.0.mlp.experts.down_proj\"], c" ltp1/adapter_config.json' \
  "mixtral: lora_target_parameters naming layer 0's down_proj adapts it alone, and adapter_config.json names it so"
# a regex over an MoE model: PEFT resolves it to the last names it matches, so layer 0's q_proj adapts every layer's
cfg "$M" "$T/lrx" "adapter: lora
lora_r: 4
lora_target_modules: 'model\\.layers\\.0\\.self_attn\\.q_proj'" >lrx.yml
check '"$AXOC" compile lrx.yml -o lrx.bin 2>/dev/null && "$AXORUN" lrx.bin >/dev/null 2>&1 && [ "$(st names lrx/adapter_model.safetensors | grep -c "self_attn.q_proj.lora_A")" = 2 ] && [ "$(st names lrx/adapter_model.safetensors | wc -l)" = 4 ]' \
  "qwen3moe: a regex naming layer 0's q_proj adapts q_proj in every layer, as PEFT resolves regexes on MoE models"
# quantize_moe_experts (Axolotl's: QLoRA with the experts' stacked weights 4-bit too): NF4 rows of the [E, O, I]
# stacks, dequantized where they are used (under the delta of their LoRA)
QX="adapter: qlora
load_in_4bit: true
lora_r: 4
lora_target_modules: [q_proj, v_proj, gate_proj, up_proj, down_proj]"
cfg "$M" "$T/qx0" "$QX" >qx0.yml
cfg "$M" "$T/qx" "$QX
quantize_moe_experts: true" >qx.yml
check '"$AXOC" compile qx0.yml -o qx0.bin 2>qx0.err && "$AXOC" compile qx.yml -o qx.bin --dump-ir ir-qx 2>qx.err && "$AXORUN" qx0.bin >/dev/null 2>&1 && "$AXORUN" qx.bin >/dev/null 2>&1 && grep -q "@model.layers.0.mlp.experts.gate_up_proj : nf4\[4,64,64\] param" ir-qx/*-lora.ir && grep -q "@model.layers.0.mlp.experts.down_proj.absmax : u8\[4,64,1\] param" ir-qx/*-lora.ir && grep -q "= dequant_nf4(@model.layers.0.mlp.experts.gate_up_proj, " ir-qx/*-lora.ir' \
  "qwen3moe: quantize_moe_experts stores the experts NF4 ([E, O, I] codes, per-row block steps) and dequantizes them where used"
check 'python3 - qx0/train_log.jsonl qx/train_log.jsonl <<PYEOF
import json, sys
a, b = ([json.loads(l) for l in open(p) if "\"loss\"" in l] for p in sys.argv[1:3])
assert len(a) == len(b) == 4
assert a[0]["loss"] != b[0]["loss"] and abs(a[0]["loss"] - b[0]["loss"]) < 0.02 * a[0]["loss"], (a[0], b[0])
PYEOF' "qwen3moe: the NF4 experts' first loss is within 2% of the bf16 experts' (not equal: they are quantized)"
check 'p0=$(sed -n "s/.*per-rank memory .* = params \([0-9.]* [KMG]*i*B\) .*/\1/p" qx0.err) && p1=$(sed -n "s/.*per-rank memory .* = params \([0-9.]* [KMG]*i*B\) .*/\1/p" qx.err) && [ -n "$p0" ] && [ "$p0" != "$p1" ]' \
  "qwen3moe: axoc's parameter memory shrinks with the NF4 experts"
cfg "$M" "$T/qxga" "$QX
quantize_moe_experts: true
gradient_accumulation_steps: 2" >qxga.yml
cfg "$M" "$T/qxz3" "$QX
quantize_moe_experts: true
deepspeed: $SRC/configs/deepspeed/zero3.json" >qxz3.yml
check '"$AXOC" compile qxga.yml -o qxga.bin 2>/dev/null && "$AXORUN" qxga.bin >/dev/null 2>&1 && "$AXOC" compile qxz3.yml -o qxz3.bin --world-size 2 2>/dev/null && "$AXORUN" qxz3.bin --comm local >/dev/null 2>&1 && losses_agree qxga/train_log.jsonl qxz3/train_log.jsonl 1e-5' \
  "qwen3moe: NF4 experts under ZeRO-3 x 2 (split by experts with their block steps) = 1 rank accumulating 2"
for bad in "adapter: lora|lora_r: 4|quantize_moe_experts|requires adapter: qlora with load_in_4bit" \
           "adapter: qlora|load_in_4bit: true\nlora_target_linear: true|quantize_moe_experts|lora_target_linear is not compatible"; do
  IFS='|' read -r l1 l2 key words <<<"$bad"
  cfg "$M" "$T/bad" "$l1
$(printf "$l2")
lora_target_modules: [q_proj]
quantize_moe_experts: true" >bad.yml
  check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "$key.*$words" bad.err' "qwen3moe: $key refused by name ($l1)"
done
for bad in "lora_target_parameters: [mlp.experts.gate_up_proj]|lora_dropout: 0.1|lora_dropout|ParamWrapper refuses lora_dropout" \
           "lora_target_parameters: [q_proj.weight]|lora_target_modules: [q_proj]|lora_target_parameters|implemented for an MoE model's router and experts' weights only" \
           "lora_target_parameters: [experts.up_proj]|lora_target_modules: [q_proj]|lora_target_parameters|matches no parameter of the model" \
           "lora_target_modules: [gate_proj, up_proj]|peft_layers_to_transform: [0]|peft_layers_to_transform|whatever layers_to_transform says" \
           "lora_target_modules: [down_proj]|peft_use_dora: true|peft_use_dora|refuses DoRA"; do
  IFS='|' read -r l1 l2 key words <<<"$bad"
  cfg "$M" "$T/bad" "adapter: lora
lora_r: 4
$l1
$l2" >bad.yml
  check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "$key: error: .*$words" bad.err' "qwen3moe: $key refused by name ($l1, $l2)"
done
# output_router_logits (Axolotl: model_config / overrides_of_model_config): + router_aux_loss_coef x the routers'
# load-balancing loss over Axolotl's packed attention_mask weights (its numbers are test_hf_fixtures')
for N in qwen3moe mixtral; do
  M2="$SRC/tests/reference/fixtures/tiny-$N"
  AUX="overrides_of_model_config:
  output_router_logits: true
  router_aux_loss_coef: 0.1
sample_packing: true"
  cfg "$M2" "$T/$N-lb0" "sample_packing: true" >$N-lb0.yml
  cfg "$M2" "$T/$N-lb" "$AUX" >$N-lb.yml
  check '"$AXOC" compile $N-lb0.yml -o $N-lb0.bin 2>/dev/null && "$AXOC" compile $N-lb.yml -o $N-lb.bin --dump-ir ir-$N-lb 2>/dev/null && "$AXORUN" $N-lb0.bin >/dev/null 2>&1 && "$AXORUN" $N-lb.bin >/dev/null 2>&1 && [ "$(grep -c "= moe_lb_stats(" ir-$N-lb/00-lower.ir)" = "$(grep -c "= moe_route(" ir-$N-lb/00-lower.ir)" ] && python3 - $N-lb0/train_log.jsonl $N-lb/train_log.jsonl <<PYEOF
import json, sys
a, b = ([json.loads(l) for l in open(p) if "\"loss\"" in l] for p in sys.argv[1:3])
d = b[0]["loss"] - a[0]["loss"]  # step 1: the same weights, the same CE; + 0.1 x aux, aux >= k (2) and <= E (4)
assert 0.1 * 1.99 < d < 0.1 * 4.01, d
assert a[1]["loss"] != b[1]["loss"]  # and the step differed
PYEOF' "$N: output_router_logits adds router_aux_loss_coef x the load-balancing loss (every MoE layer's router) to the loss and the step"
  cfg "$M2" "$T/$N-lbga" "$AUX
gradient_accumulation_steps: 2" >$N-lbga.yml
  cfg "$M2" "$T/$N-lbz3" "$AUX
deepspeed: $SRC/configs/deepspeed/zero3.json" >$N-lbz3.yml
  check '"$AXOC" compile $N-lbga.yml -o $N-lbga.bin 2>/dev/null && "$AXORUN" $N-lbga.bin >/dev/null 2>&1 && "$AXOC" compile $N-lbz3.yml -o $N-lbz3.bin --world-size 2 2>/dev/null && "$AXORUN" $N-lbz3.bin --comm local >/dev/null 2>&1 && losses_agree $N-lbga/train_log.jsonl $N-lbz3/train_log.jsonl 1e-5' \
    "$N: with the load-balancing loss, ZeRO-3 x 2 = 1 rank accumulating 2 (each micro-batch's aux, averaged)"
done
# eval_loss adds router_aux_loss_coef x each eval batch's aux too (transformers' forward does): learning rate 1e-12, so
# the evaluation sees the initial weights in both runs; an eval batch of 4 rows in 4 calls (micro_batch_size 1) =
# in 1 call (the routers' stats summed over the calls, not their aux averaged)
M2="$SRC/tests/reference/fixtures/tiny-qwen3moe"
EV="val_set_size: 0.25
eval_steps: 1
eval_batch_size: 4"
LR0='s/^max_steps: 4/max_steps: 1/; s/^learning_rate: .*/learning_rate: 1.0e-12/'
cfg "$M2" "$T/ev0" "$EV" | sed "$LR0" >ev0.yml
cfg "$M2" "$T/ev1" "$EV
overrides_of_model_config:
  output_router_logits: true
  router_aux_loss_coef: 0.1" | sed "$LR0" >ev1.yml
sed 's/^micro_batch_size: 2/micro_batch_size: 4/' ev1.yml | sed "s#$T/ev1#$T/ev4#" >ev4.yml
sed 's/^micro_batch_size: 2/micro_batch_size: 1/' ev1.yml | sed "s#$T/ev1#$T/ev5#" >ev5.yml
check '(for n in ev0 ev4 ev5; do "$AXOC" compile $n.yml -o $n.bin >/dev/null 2>&1 && "$AXORUN" $n.bin >/dev/null 2>&1 || exit 1; done) && python3 - ev0/train_log.jsonl ev4/train_log.jsonl ev5/train_log.jsonl <<PYEOF
import json, sys
e0, e4, e5 = ([json.loads(l)["eval_loss"] for l in open(p) if "eval_loss" in l] for p in sys.argv[1:4])
assert abs(e4[0] - e5[0]) <= 1e-5 * e4[0], (e4, e5)   # 1 call = 4 calls
assert 0.1 * 1.99 < e4[0] - e0[0] < 0.1 * 4.01, (e0, e4)  # + 0.1 x aux, k <= aux <= E
PYEOF' "qwen3moe: eval_loss adds coef x the eval batch's load-balancing loss, its stats summed over the batch's calls"
# sp: each rank's aux over its own tokens (Axolotl's); axo's zigzag ring splits rows otherwise than Axolotl: a warning
M2="$SRC/tests/reference/fixtures/tiny-qwen3moe"
cfg "$M2" "$T/lbsp" "overrides_of_model_config:
  output_router_logits: true
sequence_parallel_degree: 2
ring_attn_func: batch_ring" >lbsp.yml
cfg "$M2" "$T/lbzz" "overrides_of_model_config:
  output_router_logits: true
sequence_parallel_degree: 2
sample_packing: true" >lbzz.yml
check '"$AXOC" compile lbsp.yml -o lbsp.bin --world-size 2 2>lbsp.err && ! grep -q "output_router_logits" lbsp.err && "$AXORUN" lbsp.bin --comm local >lbsp.log 2>&1 && grep -q "step 4/4" lbsp.log && "$AXOC" compile lbzz.yml -o lbzz.bin --world-size 2 2>lbzz.err && grep -q "warning: output_router_logits with sequence_parallel_degree 2: .*batch_ring splits as Axolotl does" lbzz.err' \
  "qwen3moe: the load-balancing loss under sp 2 (batch_ring as Axolotl splits; the zigzag ring warns)"
for bad in "use_sliding_window: true|use_sliding_window|sliding-window layers are not implemented" \
           "num_experts_per_tok: 9|num_experts_per_tok|at most the 4 experts"; do
  IFS='|' read -r kv key words <<<"$bad"
  cfg "$M" "$T/bad" "overrides_of_model_config:
  ${kv}" >bad.yml
  check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "config.json (with model_config): $key" bad.err && grep -q "$words" bad.err' "qwen3moe: $key refused by name ($kv)"
done
cfg "$SRC/tests/reference/fixtures/tiny-mixtral" "$T/bad" "overrides_of_model_config:
  router_jitter_noise: 0.1" >bad.yml
check '! "$AXOC" compile bad.yml -o bad.bin 2>bad.err && grep -q "router_jitter_noise" bad.err' "mixtral: router_jitter_noise refused by name"
# == Qwen2-MoE (Qwen2MoeForCausalLM: tiny-qwen2moe): Qwen3-MoE's routed experts plus a shared SwiGLU expert whose
# output is scaled by sigmoid(x . shared_expert_gate), Qwen2's q/k/v biases. Its numbers are transformers' and
# PEFT's (test_hf_fixtures: tiny-qwen2moe, tiny-qwen2moe-experts) ==
M="$SRC/tests/reference/fixtures/tiny-qwen2moe"
cfg "$M" "$T/q2" "" >q2.yml
check '"$AXOC" compile q2.yml -o q2.bin --dump-ir ir-q2 2>/dev/null && "$AXORUN" q2.bin >/dev/null 2>&1' "qwen2moe: compiles and trains"
check '[ "$(grep -c "= sigmoid(" ir-q2/00-lower.ir)" = 1 ] && grep -q "@model.layers.0.mlp.shared_expert_gate.weight : f32\[1,64\]" ir-q2/00-lower.ir && grep -q "@model.layers.0.mlp.shared_expert.down_proj.weight : f32\[64,48\]" ir-q2/00-lower.ir && grep -q "self_attn.q_proj.bias" ir-q2/00-lower.ir' \
  "qwen2moe: the sparse layer has the shared expert (48 wide) and its sigmoid gate; q/k/v take biases"
st names "$M/model.safetensors" >q2.names
check 'st names q2/model.safetensors | cmp -s - q2.names && st differ "$M/model.safetensors" q2/model.safetensors model.layers.0.mlp.shared_expert_gate.weight' \
  "qwen2moe: the saved model has the checkpoint's tensor names, the shared expert's gate trained"
cfg "$M" "$T/q2ck" "gradient_checkpointing: true" >q2ck.yml
check '"$AXOC" compile q2ck.yml -o q2ck.bin 2>/dev/null && "$AXORUN" q2ck.bin >/dev/null 2>&1 && losses_agree q2/train_log.jsonl q2ck/train_log.jsonl 1e-6' \
  "qwen2moe: gradient checkpointing (the recomputed layer keeps the gate's row of ones) = no checkpointing"
cfg "$M" "$T/q2sp" "sequence_parallel_degree: 2" >q2sp.yml
check '"$AXOC" compile q2sp.yml -o q2sp.bin --world-size 2 2>/dev/null && "$AXORUN" q2sp.bin --comm local >/dev/null 2>&1 && losses_agree q2/train_log.jsonl q2sp/train_log.jsonl 1e-5' \
  "qwen2moe: sp 2 = 1 rank"
cfg "$M" "$T/q2ga" "gradient_accumulation_steps: 2" >q2ga.yml
cfg "$M" "$T/q2z3" "deepspeed: $T/deepspeed_configs/zero3.json" >q2z3.yml
check '"$AXOC" fetch deepspeed_configs >/dev/null 2>&1; "$AXOC" compile q2ga.yml -o q2ga.bin 2>/dev/null && "$AXORUN" q2ga.bin >/dev/null 2>&1 && "$AXOC" compile q2z3.yml -o q2z3.bin --world-size 2 2>/dev/null && "$AXORUN" q2z3.bin --comm local >/dev/null 2>&1 && losses_agree q2ga/train_log.jsonl q2z3/train_log.jsonl 1e-5' \
  "qwen2moe: ZeRO-3 x 2 = 1 rank accumulating 2"
PX="$SRC/tests/reference/peft/tiny-qwen2moe-experts"
cfg "$M" "$T/q2lx" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj, gate_proj, up_proj, down_proj, shared_expert_gate]
lora_target_parameters: [mlp.gate.weight, mlp.experts.gate_up_proj, mlp.experts.down_proj]" >q2lx.yml
check '"$AXOC" compile q2lx.yml -o q2lx.bin 2>/dev/null && "$AXORUN" q2lx.bin >/dev/null 2>&1 && st layout q2lx/adapter_model.safetensors | cmp -s - <(st layout "$PX/adapter_model.safetensors")' \
  "qwen2moe: LoRA saves PEFT's tensors (gate_proj / up_proj / down_proj adapt the shared expert, as PEFT converts no qwen2_moe name; the experts and router by target_parameters)"
cfg "$M" "$T/q2g" "adapter: lora
lora_r: 4
lora_target_modules: [q_proj, gate]" >q2g.yml
check '! "$AXOC" compile q2g.yml -o q2g.bin 2>q2g.err && grep -q "\"gate\" matches model.layers.0.mlp.gate.weight, which is no nn.Linear in transformers: PEFT cannot wrap that module" q2g.err' \
  "qwen2moe: a target \"gate\" (the router, which PEFT cannot wrap as a module there) is refused by name"
finish
