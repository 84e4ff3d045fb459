#!/usr/bin/env bash
# gpt-oss (GptOssForCausalLM: tiny-gptoss, one sliding and one full layer,
# 4 experts, top 2) end to end on the CPU executor. The numbers themselves
# are transformers 5.25's (test_hf_fixtures: loss and every gradient). Here:
# the lowering (attention sinks, the biased router, the transposed biased
# experts with the clamped GLU), the saved model's names, resume, sp 2 (the
# sinks on the ring's merged row) and ZeRO-3 x 2 = 1 rank, LoRA on the
# attention, the MXFP4 checkpoint format dequantized as transformers does it,
# and the refusals by name.
# usage: gptoss.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

M="$SRC/tests/reference/fixtures/tiny-gptoss-perturbed"
model_cfg "$M" "$T/one" "save_steps: 2" >one.yml
check '"$AXOC" compile one.yml -o one.bin --dump-ir ir 2>one.err && "$AXORUN" one.bin >one.log 2>&1' "compiles and trains"
L=ir/00-lower.ir
check 'grep -q "= attention(%[0-9]*, %[0-9]*, %[0-9]*, %[0-9]*, @model.layers.0.self_attn.sinks) {scale=0.25, causal=1, window=8}" $L && grep -q "= attention(%[0-9]*, %[0-9]*, %[0-9]*, %[0-9]*, @model.layers.1.self_attn.sinks) {scale=0.25, causal=1}" $L' \
  "layer 0 slides (window 8), layer 1 attends fully; both with their sinks"
check 'grep -q "= moe_route(%[0-9]*) {k=2, norm=1}" $L && grep -q "= moe_ffn_oss(%[0-9]*, %[0-9]*, %[0-9]*, @model.layers.0.mlp.experts.gate_up_proj, @model.layers.0.mlp.experts.gate_up_proj_bias, @model.layers.0.mlp.experts.down_proj, @model.layers.0.mlp.experts.down_proj_bias) {alpha=1.702, limit=0.1[0-9]*}" $L' \
  "the router's top 2 (softmax over them), the experts as stored with their biases and the config's clamp"
check 'grep -q "@model.layers.0.mlp.router.bias : f32\[4\] param {hf=\"model.layers.0.mlp.router.bias\", init=\"normal\", decay=0}" $L && grep -q "@model.layers.0.self_attn.sinks : f32\[4\] param {hf=\"model.layers.0.self_attn.sinks\", init=\"normal\", decay=1}" $L' \
  "biases take no weight decay, the sinks do (HF Trainer's rule)"
st names "$M/model.safetensors" >names
check 'st names one/model.safetensors | cmp -s - names' "the saved model has the checkpoint's tensor names"
check 'st differ "$M/model.safetensors" one/model.safetensors model.layers.0.mlp. && st differ "$M/model.safetensors" one/model.safetensors model.layers.0.self_attn.sinks' \
  "the router, the experts, their biases and the sinks were trained"
model_cfg "$M" "$T/r2" "save_steps: 2
resume_from_checkpoint: $T/one/checkpoint-2" >r2.yml
check '"$AXOC" compile r2.yml -o r2.bin 2>/dev/null && "$AXORUN" r2.bin >/dev/null 2>&1 && cmp -s one/model.safetensors r2/model.safetensors' \
  "resumed from checkpoint-2 = the straight run, bit for bit"
model_cfg "$M" "$T/sp" "sequence_parallel_degree: 2
ring_attn_func: batch_ring" >sp.yml
check '"$AXOC" compile sp.yml -o sp.bin --world-size 2 --dump-ir ir-sp 2>/dev/null && "$AXORUN" sp.bin --comm local >/dev/null 2>&1 && losses_agree one/train_log.jsonl sp/train_log.jsonl 1e-5' \
  "sp 2 = 1 rank"
check '[ "$(grep -c "= attn_sink(" ir-sp/*seqpar*.ir)" -ge 2 ]' "sp: the sinks join the ring's merged rows (attn_sink)"
model_cfg "$M" "$T/ga2" "gradient_accumulation_steps: 2" >ga2.yml
model_cfg "$M" "$T/z3" "deepspeed: $SRC/configs/deepspeed/zero3.json" >z3.yml
check '"$AXOC" compile ga2.yml -o ga2.bin 2>/dev/null && "$AXORUN" ga2.bin >/dev/null 2>&1 && "$AXOC" compile z3.yml -o z3.bin --world-size 2 2>/dev/null && "$AXORUN" z3.bin --comm local >/dev/null 2>&1 && losses_agree ga2/train_log.jsonl z3/train_log.jsonl 1e-5' \
  "ZeRO-3 x 2 (experts split by rank) = 1 rank accumulating 2"
# FSDP2 x 2 with sharded checkpoints: the stacked experts, their biases and the sinks split and merged back
{ model_cfg "$M" "$T/sh" "save_steps: 2"; printf 'fsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  reshard_after_forward: true\n'; } >sh.yml
check '"$AXOC" compile sh.yml -o sh.bin --world-size 2 2>/dev/null && "$AXORUN" sh.bin --comm local >/dev/null 2>&1 && losses_agree ga2/train_log.jsonl sh/train_log.jsonl 1e-5 && "$AXOC" merge-sharded sh/checkpoint-4 -o shm 2>/dev/null && st names shm/model.safetensors | cmp -s - names' \
  "FSDP2 x 2 = 1 rank accumulating 2; merge-sharded gives the checkpoint's names back"
model_cfg "$M" "$T/lora" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true" >lora.yml
check '"$AXOC" compile lora.yml -o lora.bin 2>/dev/null && "$AXORUN" lora.bin >/dev/null 2>&1 && st names lora/adapter_model.safetensors >lora.names && [ "$(grep -c "self_attn.[qkvo]_proj.lora_[AB].weight" lora.names)" = 16 ] && [ "$(wc -l <lora.names)" = 16 ]' \
  "lora_target_linear adapts the attention's projections only (the router and the experts are no nn.Linear)"
check '"$AXOC" merge-lora lora --base "$M" -o merged 2>/dev/null && st names merged/model.safetensors | cmp -s - names && st same "$M/model.safetensors" merged/model.safetensors model.layers.0.mlp.,model.layers.0.self_attn.sinks && st differ "$M/model.safetensors" merged/model.safetensors model.layers.0.self_attn.q_proj.weight' \
  "merge-lora merges the attention's adapters and keeps the experts, the router and the sinks"
check '"$AXOC" merge-lora lora --base "$SRC/tests/reference/mxfp4/tiny-gptoss-mxfp4" -o merged-mx 2>/dev/null && st same "$SRC/tests/reference/mxfp4/tiny-gptoss-mxfp4/model.safetensors" merged-mx/model.safetensors model.layers.0.mlp.experts.gate_up_proj_blocks,model.layers.1.mlp.experts.down_proj_scales && grep -q "\"quant_method\": \"mxfp4\"" merged-mx/config.json' \
  "merge-lora over an MXFP4 base keeps its experts packed (and its quantization_config): nothing re-rounded"
# LoRA on the router's and the experts' weights (PEFT's target_parameters; the numbers: test_hf_fixtures'
# tests/reference/peft/tiny-gptoss-experts, PEFT 0.21's own adapter)
model_cfg "$M" "$T/ltp" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj]
lora_target_parameters: [mlp.router.weight, mlp.experts.gate_up_proj, mlp.experts.down_proj]" >ltp.yml
check '"$AXOC" compile ltp.yml -o ltp.bin --dump-ir ir-ltp 2>/dev/null && "$AXORUN" ltp.bin >/dev/null 2>&1 && st layout ltp/adapter_model.safetensors >ltp.layout && st layout "$SRC/tests/reference/peft/tiny-gptoss-experts/adapter_model.safetensors" | cmp -s - ltp.layout' \
  "LoRA on the router and the transposed experts: the names and shapes of PEFT's own adapter (gate_up_proj nested under down_proj's wrapper)"
check 'grep -q "= lora_delta(@model.layers.0.mlp.experts.gate_up_proj, @model.layers.0.mlp.experts.base_layer.lora_A.weight\|= lora_delta(@model.layers.0.mlp.experts.gate_up_proj, @model.layers.0.mlp.experts.gate_up_proj.lora_A.weight" ir-ltp/*lora*.ir && grep -q "{scale=2.0, t=1}" ir-ltp/*lora*.ir' \
  "the experts' delta is the transposed one (lora_delta t=1)"
check '"$AXOC" merge-lora ltp --base "$M" -o merged-ltp 2>/dev/null && ! st same "$M/model.safetensors" merged-ltp/model.safetensors model.layers.0.mlp.experts.gate_up_proj && ! st same "$M/model.safetensors" merged-ltp/model.safetensors model.layers.1.mlp.experts.down_proj && st same "$M/model.safetensors" merged-ltp/model.safetensors model.layers.0.mlp.experts.gate_up_proj_bias,model.layers.1.mlp.experts.down_proj_bias' \
  "merge-lora merges the experts' adapters into the stacked [E, In, Out] weights"
# MXFP4: the experts as openai/gpt-oss's checkpoints hold them, against the same model with the experts as
# transformers dequantizes them (tests/reference/make_mxfp4_fixture.py)
X="$SRC/tests/reference/mxfp4"
model_cfg "$X/tiny-gptoss-mxfp4" "$T/mx" "save_steps: 2
model_quantization_config: Mxfp4Config
model_quantization_config_kwargs:
  dequantize: true" >mx.yml
model_cfg "$X/tiny-gptoss-dequant" "$T/dq" "save_steps: 2" >dq.yml
check '"$AXOC" compile mx.yml -o mx.bin 2>mx.err && "$AXORUN" mx.bin >mx.log 2>&1 && "$AXOC" compile dq.yml -o dq.bin 2>/dev/null && "$AXORUN" dq.bin >/dev/null 2>&1 && losses_agree mx/train_log.jsonl dq/train_log.jsonl 0 && cmp -s mx/model.safetensors dq/model.safetensors' \
  "MXFP4 experts (blocks and scales) train as transformers' dequantization of them, bit for bit"
check 'st names mx/model.safetensors | cmp -s - names' "the model saved from an MXFP4 checkpoint holds the experts dequantized, under their parameter names"
check '! grep -q quantization_config mx/config.json && ! grep -q quantization_config mx/checkpoint-2/config.json && grep -q "\"swiglu_limit\"" mx/config.json' \
  "its config.json (and a checkpoint's) drops quantization_config, as transformers' dequantizing load does"
model_cfg "$X/tiny-gptoss-mxfp4" "$T/mxw" "max_steps: 1" | sed '/^max_steps: 4$/d' >mxw.yml
check '"$AXOC" compile mxw.yml -o mxw.bin 2>mxw.err && grep -q "holds its experts in MXFP4: axo dequantizes and trains them" mxw.err' \
  "an MXFP4 checkpoint without model_quantization_config: axoc says it dequantizes the experts"
{ model_cfg "$X/tiny-gptoss-mxfp4" "$T/mxf" "model_quantization_config: Mxfp4Config
model_quantization_config_kwargs:
  dequantize: true"; printf 'fsdp_version: 2\nfsdp_config:\n  cpu_ram_efficient_loading: true\n'; } >mxf.yml
check '! "$AXOC" compile mxf.yml -o mxf.bin --world-size 2 2>mxf.err && grep -q "cpu_ram_efficient_loading: not supported with model_quantization_config: Mxfp4Config" mxf.err' \
  "FSDP's cpu_ram_efficient_loading with Mxfp4Config is refused (Axolotl's check)"
check '"$AXOC" merge-lora ltp --base "$X/tiny-gptoss-mxfp4" -o merged-mx2 2>/dev/null && "$AXOC" merge-lora ltp --base "$X/tiny-gptoss-dequant" -o merged-dq 2>/dev/null && st names merged-mx2/model.safetensors | cmp -s - names && ! grep -q quantization_config merged-mx2/config.json && st close merged-dq/model.safetensors merged-mx2/model.safetensors model.layers.0.mlp.experts. 0.004' \
  "merge-lora of expert adapters over an MXFP4 base: the experts dequantized (bf16), merged, quantization_config dropped (= the merge onto the dequantized base, to bf16 rounding)"
model_cfg "$X/tiny-gptoss-mxfp4" "$T/mx0" "model_quantization_config: Mxfp4Config" >mx0.yml
check '! "$AXOC" compile mx0.yml -o mx0.bin 2>mx0.err && grep -q "model_quantization_config_kwargs: expected dequantize: true with Mxfp4Config" mx0.err' \
  "Mxfp4Config without dequantize: true is refused (transformers would keep the experts packed and frozen)"
model_cfg "$SRC/tests/reference/fixtures/tiny-llama" "$T/mxl" "model_quantization_config: Mxfp4Config
model_quantization_config_kwargs:
  dequantize: true" >mxl.yml
check '! "$AXOC" compile mxl.yml -o mxl.bin 2>mxl.err && grep -q "model_quantization_config: Mxfp4Config is gpt-oss.s MXFP4 checkpoint format; LlamaForCausalLM has none" mxl.err' \
  "Mxfp4Config on another model is refused"
finish
