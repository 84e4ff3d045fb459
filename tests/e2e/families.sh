#!/usr/bin/env bash
# Granite (GraniteForCausalLM), SmolLM3 (SmolLM3ForCausalLM), OLMo 2 / 3
# (Olmo2ForCausalLM, Olmo3ForCausalLM), OLMoE (OlmoeForCausalLM) and Phi-3 (Phi3ForCausalLM) end to end on
# the CPU executor, from their transformers fixtures (the numbers themselves are
# transformers' own: test_hf_fixtures, tiny-granite, tiny-smollm3, tiny-olmo2,
# tiny-olmo3, tiny-phi3): the lowering shows Granite's four multipliers,
# SmolLM3's NoPE layer, OLMo's post norms and whole-projection q/k norms, OLMo
# 3's window and local RoPE base, Phi-3's fused projections sliced, Phi-4-mini's
# partial LongRoPE (tiny-phi4mini, tiny-phi35), Qwen3 with YaRN (tiny-qwen3-yarn) and Ministral 3
# (Ministral3ForCausalLM: YaRN and its queries' position scale, here past 16 positions: tiny-ministral3), GLM and
# GLM-4 (GlmForCausalLM, Glm4ForCausalLM: interleaved partial RoPE, fused gate_up_proj, GLM-4's extra norms);
# each trains, with LoRA too; sequence parallelism (sp 2) and ZeRO-3 x 2 give
# the 1-rank run's losses; the saved model has the checkpoint's tensors.
# usage: families.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { model_cfg "$@"; }
names() { python3 -c 'import json,struct,sys; raw=open(sys.argv[1],"rb").read(); h=json.loads(raw[8:8+struct.unpack("<Q",raw[:8])[0]]); print("\n".join(sorted(k for k in h if k != "__metadata__")))' "$1"; }

for N in granite smollm3 olmo2 olmo3 olmoe phi3 phi4mini qwen3-yarn ministral3 glm glm4; do
  M="$SRC/tests/reference/fixtures/tiny-$N"
  cfg "$M" "$T/$N-one" "" >$N.yml
  check '"$AXOC" compile $N.yml -o $N.bin --dump-ir ir-$N 2>$N.err && "$AXORUN" $N.bin >$N.log 2>&1' "$N: compiles and trains"
  check 'names $N-one/model.safetensors | cmp -s - <(names "$M/model.safetensors")' "$N: the saved model has the checkpoint's tensors"
  cfg "$M" "$T/$N-lora" "adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true" >$N-lora.yml
  check '"$AXOC" compile $N-lora.yml -o $N-lora.bin 2>/dev/null && "$AXORUN" $N-lora.bin >/dev/null 2>&1 && test -s $N-lora/adapter_model.safetensors' "$N: LoRA trains"
  cfg "$M" "$T/$N-sp" "sequence_parallel_degree: 2" >$N-sp.yml
  check '"$AXOC" compile $N-sp.yml -o $N-sp.bin --world-size 2 2>/dev/null && "$AXORUN" $N-sp.bin --comm local >/dev/null 2>&1 && losses_agree $N-one/train_log.jsonl $N-sp/train_log.jsonl 1e-5' \
    "$N: sp 2 (ring attention) = 1 rank"
  cfg "$M" "$T/$N-ga2" "gradient_accumulation_steps: 2" >$N-ga2.yml
  cfg "$M" "$T/$N-z3" "deepspeed: $SRC/configs/deepspeed/zero3.json" >$N-z3.yml
  check '"$AXOC" compile $N-ga2.yml -o $N-ga2.bin 2>/dev/null && "$AXORUN" $N-ga2.bin >/dev/null 2>&1 && "$AXOC" compile $N-z3.yml -o $N-z3.bin --world-size 2 2>/dev/null && "$AXORUN" $N-z3.bin --comm local >/dev/null 2>&1 && losses_agree $N-ga2/train_log.jsonl $N-z3/train_log.jsonl 1e-5' \
    "$N: ZeRO-3 x 2 = 1 rank accumulating 2"
done
L=ir-granite/00-lower.ir
check 'grep -q "scale(%4) {alpha=12.0}" $L && [ "$(grep -c "{alpha=0.22}" $L)" = 4 ] && grep -q "{alpha=0.125}" $L && [ "$(grep -c "scale=0.10000000000000001," $L)" = 2 ]' \
  "granite: embeddings x 12, each residual branch x 0.22, the head's input / 8, scores x attention_multiplier 0.1"
L=ir-glm4/00-lower.ir
check '[ "$(grep -c "= rope(.*rotary_dim=8, interleave=1" $L)" = 4 ] && [ "$(grep -c "gate_up_proj.weight) {ta=0, tb=1}" $L)" = 2 ] && grep -q "post_self_attn_layernorm" $L && grep -q "post_mlp_layernorm" $L && grep -q "self_attn.q_proj.bias" $L && ! grep -q "o_proj.bias" $L' \
  "glm4: RoPE on the interleaved pairs of half of each head (8 of 16 dims), one gate_up_proj, norms after attention and MLP, q/k/v biases only"
L=ir-smollm3/00-lower.ir
check '[ "$(grep -c "= rope(" $L)" = 2 ] && grep -q "theta=2000000.0" $L' "smollm3: RoPE (SmolLM3's default base 2e6) on layer 0's q and k only: layer 1 is NoPE"
L=ir-olmo2/00-lower.ir
check '! grep -q input_layernorm $L && [ "$(grep -c "= rmsnorm(" $L)" = 9 ] && grep -q "rmsnorm(%[0-9]*, @model.layers.0.self_attn.q_norm.weight) .* f32\[2,64,64\]" $L' \
  "olmo2: no norm before attention or MLP, norms after both, q_norm over the whole projection (4 heads x 16)"
# OLMoE is not in Axolotl's multipack model list: its packed batches come from BatchSamplerDataCollatorForSeq2Seq,
# whose attention_mask is 1 on every real token, so the load-balancing loss weighs them all 1 (Qwen3-MoE's count
# the sequences)
for N in olmoe qwen3moe; do
  cfg "$SRC/tests/reference/fixtures/tiny-$N" "$T/lbw-$N" "sample_packing: true
overrides_of_model_config:
  output_router_logits: true" >lbw-$N.yml
done
check '"$AXOC" compile lbw-olmoe.yml -o lbw-olmoe.bin --dump-ir ir-lbw-olmoe 2>/dev/null && grep -q "train.aux_mask_ones" ir-lbw-olmoe/00-lower.ir && "$AXORUN" lbw-olmoe.bin >/dev/null 2>&1 && "$AXOC" compile lbw-qwen3moe.yml -o lbw-q.bin --dump-ir ir-lbw-q 2>/dev/null && ! grep -q "train.aux_mask_ones" ir-lbw-q/00-lower.ir' \
  "olmoe: packed tokens weigh 1 in the load-balancing loss (Axolotl's collator for a model outside its multipack list)"
L=ir-ministral3/00-lower.ir
check '[ "$(grep -c "rope(.*qscale_beta=0.10000000000000001, qscale_max=16" $L)" = 2 ] && [ "$(grep -c "rope(" $L)" = 4 ] && grep -q "rope_type=\"yarn\"" $L' \
  "ministral3: yarn on q and k, the position scale on the queries only (2 layers)"
L=ir-olmoe/00-lower.ir
check 'grep -q input_layernorm $L && grep -q "rmsnorm(%[0-9]*, @model.layers.0.self_attn.q_norm.weight) .* f32\[2,64,64\]" $L && grep -q "rmsnorm(%[0-9]*, @model.layers.0.self_attn.k_norm.weight) .* f32\[2,64,32\]" $L && [ "$(grep -c "= moe_route(%[0-9]*) {k=2, norm=0}" $L)" = 2 ]' \
  "olmoe: Llama's pre-norm layer with OLMo's whole-projection q/k norms, every MLP sparse (top 2 of 4, not renormalised)"
L=ir-olmo3/00-lower.ir
check '[ "$(grep -c "window=7" $L)" = 1 ] && grep "= rope(" $L | head -1 | grep -q "theta=500000.0.*rope_type=\"default\"" && grep "= rope(" $L | tail -1 | grep -q "theta=123456.0.*rope_type=\"linear\", factor=2.0"' \
  "olmo3: layer 0 slides (window 7) with OLMo 3's default base 5e5, layer 1 takes rope_theta with its scaling"
L=ir-phi3/00-lower.ir
check '[ "$(grep -c "= slice(" $L)" = 10 ] && grep -q "matmul(%[0-9]*, @model.layers.0.self_attn.qkv_proj.weight) .* f32\[2,64,128\]" $L && [ "$(grep -c "window=7" $L)" = 2 ]' \
  "phi3: one qkv_proj matmul (4 + 2 + 2 heads of 16) and one gate_up_proj a layer, sliced; the window on every layer"
check 'python3 -c "import json,struct,sys; raw=open(sys.argv[1],\"rb\").read(); h=json.loads(raw[8:8+struct.unpack(\"<Q\",raw[:8])[0]]); sys.exit(not (h[\"base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight\"][\"shape\"] == [128, 4] and h[\"base_model.model.model.layers.1.mlp.gate_up_proj.lora_A.weight\"][\"shape\"] == [4, 64]))" phi3-lora/adapter_model.safetensors' \
  "phi3: LoRA adapts the fused modules as PEFT does (qkv_proj B [128, r], one A)"
L=ir-phi4mini/00-lower.ir
check '[ "$(grep -c "= input() {name=\"max_position\"}" $L)" = 1 ] && [ "$(grep "= rope(%[0-9]*, %[0-9]*, %[0-9]*) .*rope_type=\"longrope\".*rotary_dim=12, attention_factor=1.22474487.*short_factor=\[1.0, 1.05, 1.2, 1.5, 2.0, 2.5\], long_factor=\[1.0, 1.8, 3.10*1*, 5.5, 9.0, 14.0\]" $L | wc -l)" = 4 ]' \
  "phi4mini: LongRoPE on 12 of 16 dims (partial 0.75), its attention factor sqrt(1 + ln 4 / ln 16), both factor lists, and the micro-batch's max position (rows of 64 > original 16)"
check 'grep -q "rotary_dim=12" ir-phi4mini/01-autodiff.ir && [ "$(grep -c "= rope(" ir-phi4mini/01-autodiff.ir)" = 8 ]' "phi4mini: the backward rotates back with the same attrs and max position"
cfg "$SRC/tests/reference/fixtures/tiny-phi4mini" "$T/p4zz" "sequence_parallel_degree: 2
ring_attn_func: batch_zigzag" >p4zz.yml
check '"$AXOC" compile p4zz.yml -o p4zz.bin --world-size 2 2>/dev/null && "$AXORUN" p4zz.bin --comm local >/dev/null 2>&1 && losses_agree phi4mini-one/train_log.jsonl p4zz/train_log.jsonl 1e-5' \
  "phi4mini: zigzag sp 2 = 1 rank: LongRoPE's regime from the whole rows' max position (rank 0 alone sees only positions < 16 of a 20-token row)"
# unpacked rows: Axolotl passes no position_ids, so HF's positions run over the padded width (64 here, past the
# original 16) and every batch takes the long factors, even one whose rows are all shorter than 16 tokens; the same
# as a model whose original max is 1 (always long) with the same attention factor
P4="$SRC/tests/reference/fixtures/tiny-phi4mini"
cfg "$P4" "$T/p4w" "max_steps: 8" | sed 's/^max_steps: 4$//' >p4w.yml
cfg "$P4" "$T/p4l" "max_steps: 8
overrides_of_model_config:
  original_max_position_embeddings: 1
  rope_scaling: {type: longrope, attention_factor: 1.2247448713915889, short_factor: [1.0, 1.05, 1.2, 1.5, 2.0, 2.5], long_factor: [1.0, 1.8, 3.1, 5.5, 9.0, 14.0]}" | sed 's/^max_steps: 4$//' >p4l.yml
check '"$AXOC" compile p4w.yml -o p4w.bin 2>/dev/null && "$AXORUN" p4w.bin >/dev/null 2>&1 && "$AXOC" compile p4l.yml -o p4l.bin 2>/dev/null && "$AXORUN" p4l.bin >/dev/null 2>&1 && losses_agree p4w/train_log.jsonl p4l/train_log.jsonl 0' \
  "phi4mini: unpacked rows take LongRoPE's regime from the padded width (every batch long), as HF without position_ids"
L=ir-qwen3-yarn/00-lower.ir
check '[ "$(grep "= rope(%[0-9]*, %[0-9]*) .*rope_type=\"yarn\", factor=4.0.*original_max=16, attention_factor=1.138629436.*beta_fast=32.0, beta_slow=1.0, truncate=1" $L | wc -l)" = 4 ]' \
  "qwen3-yarn: YaRN with its attention factor 0.1 ln 4 + 1 and the betas"
cfg "$SRC/tests/reference/fixtures/tiny-phi35" "$T/p35" "sequence_len: 32" | sed 's/^sequence_len: 64$//' >p35.yml
check '"$AXOC" compile p35.yml -o p35.bin --dump-ir ir-p35 2>/dev/null && ! grep -q max_position ir-p35/00-lower.ir && grep -q "rope_type=\"longrope\"" ir-p35/00-lower.ir && "$AXORUN" p35.bin >/dev/null 2>&1' \
  "phi35: rows no longer than original_max (32) take the short factors, with no max position"
cfg "$SRC/tests/reference/fixtures/tiny-llama" "$T/dyn" "overrides_of_model_config:
  rope_scaling: {rope_type: dynamic, factor: 2.0}
  max_position_embeddings: 32" >dyn.yml
check '! "$AXOC" compile dyn.yml -o dyn.bin 2>dyn.err && grep -q "sequence_len: 64 is longer than max_position_embeddings 32 with .*dynamic RoPE scaling" dyn.err' \
  "dynamic RoPE past max_position_embeddings is refused (transformers rescales per batch, with state)"
cfg "$SRC/tests/reference/fixtures/tiny-phi3" "$T/p3nt" "adapter: lora
lora_r: 4" >p3nt.yml
check '! "$AXOC" compile p3nt.yml -o p3nt.bin 2>p3nt.err && grep -q "Axolotl passes PEFT an empty target list, which PEFT refuses (it does not fall back to its defaults for Phi3ForCausalLM" p3nt.err' "phi3: LoRA without targets is refused (Axolotl hands PEFT an empty list, which PEFT refuses)"
cfg "$SRC/tests/reference/fixtures/tiny-phi3" "$T/p3q" "adapter: lora
lora_r: 4
lora_target_modules: [q_proj]" >p3q.yml
check '! "$AXOC" compile p3q.yml -o p3q.bin 2>p3q.err && grep -q "\"q_proj\" matches no linear layer of the model (its layers: qkv_proj, o_proj, gate_up_proj, down_proj)" p3q.err' \
  "phi3: a target it does not have is an error naming the model's own layers"
# nn.Embedding(padding_idx=pad_token_id): the pad row takes no gradient from lookups of it (tiny-phi3's pad is 0;
# weight_decay 0, so AdamW leaves a row without gradient as it was)
python3 -c 'import json,random; r=random.Random(3); [print(json.dumps({"input_ids": [0 if i % 5 == 0 else r.randrange(4, 256) for i in range(40)]})) for _ in range(8)]' >pad_rows.jsonl
{ printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 2\n' "$SRC/tests/reference/fixtures/tiny-phi3" "$T/pad_rows.jsonl"
  printf 'learning_rate: 0.01\nweight_decay: 0.0\nseed: 3\noutput_dir: %s\n' "$T/padout"; } >pad.yml
check '"$AXOC" compile pad.yml -o pad.bin 2>/dev/null && "$AXORUN" pad.bin >/dev/null 2>&1 && python3 - "$SRC/tests/reference/fixtures/tiny-phi3/model.safetensors" padout/model.safetensors <<'"'"'PYEOF'"'"'
import json, struct, sys
def row(p, k, i):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])[k]
    b = raw[8 + n + h["data_offsets"][0]:8 + n + h["data_offsets"][1]]; w = len(b) // 4 // h["shape"][0]
    return struct.unpack("<%df" % w, b[4 * w * i:4 * w * (i + 1)])
k = "model.embed_tokens.weight"
sys.exit(not (row(sys.argv[1], k, 0) == row(sys.argv[2], k, 0) and row(sys.argv[1], k, 7) != row(sys.argv[2], k, 7)))
PYEOF' "the padding_idx row of the embedding takes no gradient (it is in the data), as nn.Embedding(padding_idx)"
mkdir -p sw && python3 - "$SRC/tests/reference/fixtures/tiny-smollm3/config.json" sw/config.json <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["use_sliding_window"] = True; c["sliding_window"] = 8
json.dump(c, open(sys.argv[2], "w"))
PYEOF
cfg "$T/sw" "$T/sw-out" "" >sw.yml
check '! "$AXOC" compile sw.yml -o sw.bin 2>sw.err && grep -q "use_sliding_window: error: expected false (SmolLM3.s sliding-window layers are not implemented)" sw.err' \
  "smollm3: use_sliding_window is refused by name"
finish
