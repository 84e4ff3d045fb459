#!/usr/bin/env bash
# Gemma 3 (Gemma3ForCausalLM), then Gemma 2 (Gemma2ForCausalLM), end to end on the CPU executor: the lowering
# shows the architecture (scaled embeddings, (1 + w) norms around attention
# and MLP, GeGLU, a sliding window and the local RoPE base on layer 0 only);
# the example trains; its output dir is an HF Gemma 3 (tied head, Gemma's
# tensor names); LoRA trains; sequence parallelism (sp 2, ring attention
# with the window) and ZeRO-3 x 2 give the 1-rank run's losses; a resumed run
# gives the straight run's. Gemma 2: the soft caps on the scores (whole
# rows and ring blocks) and on the logits (fused head and unfused), sp 2 =
# 1 rank, the example. The numbers themselves are transformers' own
# (test_hf_fixtures, tiny-gemma3 and tiny-gemma2).
# usage: gemma.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
M="$SRC/configs/models/tiny-gemma3"

cfg() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 6\n' \
    "$M" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nlogging_steps: 1\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}

# -- the lowering --
cfg "$T/one" "" >one.yml
check '"$AXOC" compile one.yml -o one.bin --dump-ir ir 2>one.err' "compile a Gemma 3 config"
L=ir/00-lower.ir
check 'grep -q "scale(%4) {alpha=8.0}" $L' "embeddings times sqrt(hidden 64) = 8"
check '[ "$(grep -c "offset=1.0" $L)" = 13 ] && ! grep "= rmsnorm(" $L | grep -vq "offset=1.0"' "every norm is Gemma's (1 + w): 6 a layer (q/k included) and the final one"
check 'grep -q "pre_feedforward_layernorm" $L && grep -q "post_feedforward_layernorm" $L' "norms before and after the MLP"
check '[ "$(grep -c "= geglu(" $L)" = 2 ] && ! grep -q "swiglu(" $L' "the MLP is tanh-GELU GLU"
check '[ "$(grep -c "window=7" $L)" = 1 ] && grep "window=7" $L | grep -q "scale=0.2041241452319315"' "a window of 7 on the sliding layer only, scores scaled by 24^-0.5"
check 'grep "= rope(" $L | head -2 | grep -c "theta=10000.0, inverse=0, rope_type=\"default\"" | grep -q 2 && grep "= rope(" $L | tail -2 | grep -c "theta=1000000.0, inverse=0, rope_type=\"linear\", factor=2.0" | grep -q 2' \
  "layer 0 takes the local RoPE base, layer 1 the global one with its scaling"
check '! grep -q "lm_head" $L' "the lm head is the tied embedding"

# -- the example trains, and writes an HF Gemma 3 --
sed -e "s#\.\./models#$SRC/configs/models#" -e "s#\.\./data#$SRC/configs/data#" -e "s#^max_steps: .*#max_steps: 120#" \
    -e "s#^output_dir: .*#output_dir: $T/ex#" "$SRC/configs/examples/gemma3.yml" >ex.yml
check '"$AXOC" compile ex.yml -o ex.bin 2>/dev/null && "$AXORUN" ex.bin >ex.log 2>&1' "the gemma3 example trains (bf16, packed)"
check 'python3 -c "import json,sys; l=[json.loads(x)[\"loss\"] for x in open(sys.argv[1]) if \"loss\" in x]; sys.exit(not (l[0] > 4 and l[-1] < 2.5))" ex/train_log.jsonl' \
  "its loss falls from ~ln(256) below 2.5"
check 'python3 - ex/model.safetensors <<PYEOF
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
k = set(h) - {"__metadata__"}
need = {"model.layers.1.pre_feedforward_layernorm.weight", "model.layers.0.post_feedforward_layernorm.weight",
        "model.layers.0.self_attn.q_norm.weight", "model.norm.weight", "model.embed_tokens.weight"}
sys.exit(not (need <= k and "lm_head.weight" not in k and len(k) == 28 and all(h[x]["dtype"] == "BF16" for x in k)))
PYEOF' "the saved model: Gemma 3's 28 tensors, the head tied, bf16"
check 'cmp -s ex/config.json "$M/config.json"' "config.json is the base's"

# -- LoRA --
cfg "$T/lora" 'adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true' >lora.yml
check '"$AXOC" compile lora.yml -o lora.bin 2>/dev/null && "$AXORUN" lora.bin >/dev/null 2>&1 && [ -f lora/adapter_model.safetensors ]' "LoRA on every linear layer trains"

# -- ranks: sp 2 (ring attention through the window), ZeRO-3 x 2 --
"$AXORUN" one.bin >/dev/null 2>&1
cfg "$T/sp" 'sequence_parallel_degree: 2' >sp.yml
check '"$AXOC" compile sp.yml -o sp.bin --world-size 2 --dump-ir irsp 2>/dev/null && "$AXORUN" sp.bin --comm local >/dev/null 2>&1' "sp 2 trains"
check 'grep -q "attention_blk(.*window=7" irsp/*-seqpar.ir' "the ring-attention blocks keep the window"
check 'losses_agree one/train_log.jsonl sp/train_log.jsonl 1e-5' "sp 2 = 1 rank (every step's loss)"
# ZeRO-3 x 2: twice the rows a step, so the 1-rank reference accumulates 2 micro-batches
cfg "$T/one2" 'gradient_accumulation_steps: 2' >one2.yml
"$AXOC" compile one2.yml -o one2.bin 2>/dev/null && "$AXORUN" one2.bin >/dev/null 2>&1
"$AXOC" fetch deepspeed_configs >/dev/null 2>&1
cfg "$T/z3" 'deepspeed: '"$T"'/deepspeed_configs/zero3.json' >z3.yml
check '"$AXOC" compile z3.yml -o z3.bin --world-size 2 2>/dev/null && "$AXORUN" z3.bin --comm local >/dev/null 2>&1' "ZeRO-3 x 2 trains"
check 'losses_agree one2/train_log.jsonl z3/train_log.jsonl 1e-5' "ZeRO-3 x 2 = 1 rank accumulating 2"

# -- resume: a run resumed from checkpoint-3 = the straight run --
cfg "$T/r" 'save_steps: 3' >r.yml
check '"$AXOC" compile r.yml -o r.bin 2>/dev/null && "$AXORUN" r.bin >/dev/null 2>&1 && [ -d r/checkpoint-3 ]' "a run with checkpoints"
cfg "$T/r2" "save_steps: 3
resume_from_checkpoint: $T/r/checkpoint-3" >r2.yml
check '"$AXOC" compile r2.yml -o r2.bin 2>/dev/null && "$AXORUN" r2.bin >/dev/null 2>&1' "resume from checkpoint-3"
check 'cmp -s r/model.safetensors r2/model.safetensors' "the resumed run's model = the straight run's, bit for bit"

# -- Gemma 3 applies the caps its config gives (Gemma3ForCausalLM) --
mkdir -p cap && sed 's#"final_logit_softcapping": null#"final_logit_softcapping": 30.0#' "$M/config.json" >cap/config.json
sed "s#base_model: .*#base_model: $T/cap#" one.yml >cap.yml
check '"$AXOC" compile cap.yml -o cap.bin --dump-ir capir 2>cap.err && grep -q "linear_cross_entropy(.*softcap=30.0" capir/00-lower.ir && ! grep -q "attention(.*softcap" capir/00-lower.ir' \
  "Gemma 3 with final_logit_softcapping: the head's loss caps the logits, the scores stay uncapped"

# == Gemma 2 (Gemma2ForCausalLM): Gemma 3's layer without q/k norms, one RoPE, soft-capped scores and logits ==
M="$SRC/configs/models/tiny-gemma2"
cfg "$T/g2" "" >g2.yml
check '"$AXOC" compile g2.yml -o g2.bin --dump-ir g2ir 2>/dev/null' "compile a Gemma 2 config"
L=g2ir/00-lower.ir
check '[ "$(grep -c "= attention(.*softcap=1.0" $L)" = 2 ] && [ "$(grep -c "window=7" $L)" = 1 ]' "both layers cap their scores (1.0), layer 0 slides over 7"
check 'grep -q "linear_cross_entropy(.*softcap=0.2" $L' "the fused head caps the logits (0.2)"
check '! grep -q "q_norm\|k_norm" $L && [ "$(grep -c "offset=1.0" $L)" = 9 ]' "no q/k norms: 4 (1 + w) norms a layer and the final one"
check '[ "$(grep "= rope(" $L | grep -c "theta=10000.0, inverse=0, rope_type=\"default\"")" = 4 ]' "one RoPE (base 1e4) on every layer"
check '"$AXORUN" g2.bin >/dev/null 2>&1' "Gemma 2 trains"
cfg "$T/g2u" "liger_fused_linear_cross_entropy: false" >g2u.yml
check '"$AXOC" compile g2u.yml -o g2u.bin --dump-ir g2uir 2>/dev/null && grep -q "= cross_entropy(.*softcap=0.2" g2uir/00-lower.ir && "$AXORUN" g2u.bin >/dev/null 2>&1' \
  "the unfused head (liger_fused_linear_cross_entropy: false) caps the logits too"
check 'losses_agree g2/train_log.jsonl g2u/train_log.jsonl 1e-5' "fused head = logits + cross entropy, with the cap (every step's loss)"
cfg "$T/g2sp" 'sequence_parallel_degree: 2' >g2sp.yml
check '"$AXOC" compile g2sp.yml -o g2sp.bin --world-size 2 --dump-ir g2spir 2>/dev/null && "$AXORUN" g2sp.bin --comm local >/dev/null 2>&1' "Gemma 2 at sp 2 trains"
check 'grep -q "attention_blk(.*softcap=1.0" g2spir/*-seqpar.ir && grep -q "attention_blk_bwd(.*softcap=1.0" g2spir/*-seqpar.ir' "the ring-attention blocks keep the cap"
check 'losses_agree g2/train_log.jsonl g2sp/train_log.jsonl 1e-5' "Gemma 2: sp 2 = 1 rank (every step's loss)"
sed -e "s#\.\./models#$SRC/configs/models#" -e "s#\.\./data#$SRC/configs/data#" -e "s#^max_steps: .*#max_steps: 120#" \
    -e "s#^output_dir: .*#output_dir: $T/g2ex#" "$SRC/configs/examples/gemma2.yml" >g2ex.yml
check '"$AXOC" compile g2ex.yml -o g2ex.bin 2>/dev/null && "$AXORUN" g2ex.bin >g2ex.log 2>&1' "the gemma2 example trains (bf16, packed, Gemma 2's caps 50 / 30)"
check 'python3 -c "import json,sys; l=[json.loads(x)[\"loss\"] for x in open(sys.argv[1]) if \"loss\" in x]; sys.exit(not (l[0] > 4 and l[-1] < 2.5))" g2ex/train_log.jsonl' \
  "its loss falls from ~ln(256) below 2.5"
check 'python3 - g2ex/model.safetensors g2ex/config.json <<PYEOF
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
k = set(h) - {"__metadata__"}
need = {"model.layers.1.pre_feedforward_layernorm.weight", "model.layers.0.post_feedforward_layernorm.weight",
        "model.norm.weight", "model.embed_tokens.weight"}
c = json.load(open(sys.argv[2]))
sys.exit(not (need <= k and "lm_head.weight" not in k and not any("q_norm" in x for x in k) and len(k) == 24 and
              all(h[x]["dtype"] == "BF16" for x in k) and c["architectures"] == ["Gemma2ForCausalLM"] and
              c["attn_logit_softcapping"] == 50.0 and c["final_logit_softcapping"] == 30.0))
PYEOF' "the saved model: Gemma 2's 24 tensors, the head tied, bf16; its config.json with the overrides"
finish
