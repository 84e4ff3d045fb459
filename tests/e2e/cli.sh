#!/usr/bin/env bash
# End-to-end checks of axoc/axorun from the command line.
# usage: cli.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"

cd "$T"
Q="$SRC/configs/quickstart.yml"
losses() { awk -F'"loss": ' '{split($2, a, ","); print a[1]}' "$1"; }

# -- compile, determinism, cache -------------------------------------------
check '"$AXOC" compile "$Q" -o p1.bin 2>c1.err' "compile quickstart"
check '"$AXOC" compile "$Q" -o p2.bin --no-cache 2>c2.err' "compile quickstart without cache"
check 'cmp -s p1.bin p2.bin' "two compiles of the same inputs are byte-identical"
check '"$AXOC" compile "$Q" -o p3.bin 2>c3.err && grep -q "served from cache" c3.err' "second compile is served from the cache"
check 'cmp -s p1.bin p3.bin' "cached plan is byte-identical"
check 'grep -q "per-rank memory" c1.err && grep -q "per-rank memory" c3.err' "compile prints the memory summary"
# corrupt cache entry: detected, rebuilt, never used
for f in "$AXO_CACHE_DIR"/*.plan; do printf 'XXXX' | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null; done
check '"$AXOC" compile "$Q" -o p4.bin 2>c4.err && grep -q "corrupt" c4.err && ! grep -q "served from cache" c4.err' "corrupt cache entry is detected"
check 'cmp -s p1.bin p4.bin' "rebuilt plan after cache corruption is identical"

# -- dump / dump-ir ----------------------------------------------------------
check '"$AXOC" dump p1.bin >dump.txt && grep -q "program micro_step" dump.txt && grep -q "program opt_step" dump.txt' "axoc dump shows the programs"
check '"$AXOC" compile "$Q" -o p5.bin --dump-ir irdump 2>/dev/null' "compile with --dump-ir"
check 'ls irdump | head -1 | grep -q "^00-lower.ir$"' "dumps are numbered in pipeline order"
check 'grep -q "attention(" irdump/00-lower.ir && grep -q "cross_entropy(" irdump/00-lower.ir && grep -q "model.layers.1.mlp.down_proj.weight" irdump/00-lower.ir' "lowered IR shows the forward graph"
check '! grep -q "attention_bwd" irdump/00-lower.ir && grep -q "attention_bwd" irdump/01-autodiff.ir' "autodiff adds the backward"
for f in irdump/*.ir; do check '"$AXOC" verify "$f" >/dev/null' "axoc verify $f"; done

# -- plan corruption is rejected by axorun -------------------------------------
head -c 100 p1.bin > trunc.bin
check '! "$AXORUN" trunc.bin 2>t.err && grep -qi "trunc\|short" t.err' "axorun rejects a truncated plan"
cp p1.bin flip.bin
size=$(stat -c %s flip.bin)
printf 'Z' | dd of=flip.bin bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
check '! "$AXORUN" flip.bin 2>f.err && grep -qi "checksum\|corrupt" f.err' "axorun rejects a corrupted plan"

# -- errors name the file and key ------------------------------------------------
printf 'base_model: %s/configs/models/tiny-llama\nmicro_batch_size: two\n' "$SRC" > badcfg.yml
check '! "$AXOC" compile badcfg.yml -o x.bin 2>b.err && grep -q "badcfg.yml:2" b.err && grep -q "micro_batch_size" b.err' "bad YAML value names file:line and key"
check '! "$AXOC" compile /nonexistent.yml 2>n.err && grep -q "/nonexistent.yml" n.err' "missing config names the file"

# -- training: the bundled default, a few steps ---------------------------------
check '"$AXORUN" p1.bin --max-steps 60 --output-dir out --quiet' "axorun trains"
check 'test -s out/model.safetensors && test -s out/config.json && test -s out/train_log.jsonl' "final model and log are written"
first=$(head -1 out/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
last=$(tail -1 out/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
check "awk 'BEGIN{exit !($last < $first * 0.6)}'" "loss falls over 60 steps ($first -> $last)"
# HF logs the mean loss of the steps since its last log: step 20's logged loss = the mean of steps 1-20 logged one by one
sed -e "s#^logging_steps: .*#logging_steps: 1#" -e "s#^base_model: #base_model: $SRC/configs/#" \
    -e "s#^  - path: #  - path: $SRC/configs/#" "$SRC/configs/quickstart.yml" >ls1.yml
check '"$AXOC" compile ls1.yml -o ls1.bin 2>ls1.err && "$AXORUN" ls1.bin --max-steps 60 --output-dir out1 --quiet && python3 - out/train_log.jsonl out1/train_log.jsonl <<'"'"'PYEOF'"'"'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
want = sum(x["loss"] for x in b[:20]) / 20
sys.exit(not (a[0]["step"] == 20 and len(b) == 60 and abs(a[0]["loss"] - want) <= 2e-6 * want))
PYEOF' "the logged loss is the mean over logging_steps (HF's)"
check '! "$AXORUN" p1.bin --max-steps 2 --output-dir out --quiet 2>o.err && grep -q "refusing to overwrite" o.err' "an existing trained model is not overwritten"
check '"$AXORUN" p1.bin --max-steps 2 --output-dir out --quiet --overwrite' "--overwrite replaces it"

# -- every DeepSpeed and FSDP example of the reference compiles; the dump shows the model
for ex in "$SRC"/configs/examples/deepspeed_*.yml "$SRC"/configs/examples/fsdp1.yml "$SRC"/configs/examples/fsdp2.yml \
          "$SRC"/configs/examples/fsdp_deprecated_list.yml "$SRC"/configs/examples/liger.yml \
          "$SRC"/configs/examples/lora.yml "$SRC"/configs/examples/fsdp_qlora.yml; do
  n=$(basename "$ex" .yml)
  check '"$AXOC" compile "$ex" -o "ex-$n.bin" --dump-ir "ir-$n" --world-size 2 2>"ex-$n.err"' "compile example $n"
  check 'grep -q "attention(" "ir-$n/00-lower.ir" && grep -q "lm_head\|embed_tokens" "ir-$n/00-lower.ir"' "example $n: forward graph in the dump"
done
check 'grep -q "mapped to FSDP2" ex-fsdp1.err' "FSDP1 keys warn with their FSDP2 names"

# -- FSDP + QLoRA (the reference's example): NF4 base, LoRA adapters, PEFT adapter dir --
sed -e "s#\.\./models#$SRC/configs/models#" -e "s#\.\./data#$SRC/configs/data#" -e "s#^max_steps: .*#max_steps: 4#" \
    -e "s#^logging_steps: .*#logging_steps: 1#" -e "s#^lora_dropout: .*#lora_dropout: 0.0#" "$SRC/configs/examples/fsdp_qlora.yml" > q2.yml
awk '/^fsdp_version|^fsdp_config/ {skip = 1; next} skip && /^  / {next} {skip = 0; print}' q2.yml > q1.yml
check '"$AXOC" compile q2.yml --world-size 2 -o q2.bin --dump-ir ir-q2 2>q2.err' "compile the FSDP + QLoRA example for 2 ranks"
check 'grep -q "trainable (.*the adapters; the base is frozen)" q2.err' "the summary counts the trainable (adapter) parameters"
check 'grep -q "nf4\[64,64\]" ir-q2/*-lora.ir && grep -q "= dequant_nf4(@model.layers.0.self_attn.q_proj.weight" ir-q2/*-lora.ir && grep -q "lora_B.weight" ir-q2/*-lora.ir' "the lora dump shows NF4 weights, their dequantization and the adapters"
check 'grep -q "= all_gather(@model.layers.1.mlp.down_proj.weight) .*: nf4" ir-q2/*-shard.ir' "FSDP gathers the NF4 codes (4 bits on the wire)"
check '"$AXORUN" q2.bin --output-dir q2out --quiet && "$AXOC" compile q1.yml -o q1.bin 2>/dev/null && "$AXORUN" q1.bin --output-dir q1out --quiet' "QLoRA trains on 2 FSDP ranks and on 1 rank"
check 'paste <(losses q1out/train_log.jsonl) <(losses q2out/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-2 * \$1 || (\$2 - \$1) > 1e-2 * \$1 {bad = 1} END {exit bad || NR != 4}"' "FSDP 2-rank QLoRA logs the losses of 1 rank (bf16 tolerance)"
check 'test -s q2out/adapter_model.safetensors && test -s q2out/adapter_config.json && ! test -e q2out/model.safetensors' "the output is a PEFT adapter dir, not a full model"
check '! "$AXORUN" q1.bin --output-dir q1out --quiet 2>q1again.err && grep -q "refusing to overwrite" q1again.err' "a second run never replaces a trained adapter without --overwrite"
check 'python3 - q2out <<"PYEOF"
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/adapter_model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = {k: v for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
cfg = json.load(open(d + "/adapter_config.json"))
mods = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16 and sorted(cfg["target_modules"]) == sorted(mods), cfg
assert len(hdr) == 2 * 7 * 2, sorted(hdr)
for k, v in hdr.items():
    assert k.startswith("base_model.model.model.layers.") and v["dtype"] == "F32", (k, v)
    assert (v["shape"][0] == 8) if ".lora_A." in k else (v["shape"][1] == 8), (k, v)
PYEOF' "adapter_model.safetensors holds the 28 adapters by PEFT name, f32, rank 8"
# lora_model_dir continues a saved adapter: with learning_rate 1e-30 it comes back unchanged, byte for byte
sed 's#^learning_rate: .*#learning_rate: 1e-30#' q1.yml > lmd.yml && printf 'lora_model_dir: q1out\n' >> lmd.yml
check '"$AXOC" compile lmd.yml -o lmd.bin 2>lmd.err && "$AXORUN" lmd.bin --output-dir lmdout --quiet && cmp -s q1out/adapter_model.safetensors lmdout/adapter_model.safetensors' "lora_model_dir loads the saved adapter (lr 1e-30: saved unchanged)"
# ... with no targets in the config: PEFT (PeftModel.from_pretrained) takes them from the adapter's adapter_config.json
grep -v '^lora_target_linear:' lmd.yml > lmdn.yml
check '"$AXOC" compile lmdn.yml -o lmdn.bin 2>lmdn.err && "$AXORUN" lmdn.bin --output-dir lmdnout --quiet && cmp -s q1out/adapter_model.safetensors lmdnout/adapter_model.safetensors' \
  "lora_model_dir with no targets in the config: the adapter's own target_modules (saved unchanged)"
sed 's#^lora_r: .*#lora_r: 4#' lmd.yml > lmd4.yml
check '"$AXOC" compile lmd4.yml -o lmd4.bin 2>/dev/null && ! "$AXORUN" lmd4.bin --output-dir lmd4out --quiet 2>lmd4.err && grep -q "lora_r must equal the saved adapter" lmd4.err' "a saved adapter of another rank is an error naming lora_r"
# axoc merge-lora (axolotl merge_lora): W + s B A into the base; the merged model computes the adapted model's loss
sed -e "s#^base_model: .*#base_model: $T/out#" -e "s#path: data/#path: $SRC/configs/data/#" -e "s#^max_steps: .*#max_steps: 6#" \
    -e "s#^logging_steps: .*#logging_steps: 1#" -e "s#^warmup_steps: .*#warmup_steps: 0#" "$Q" > lo.yml
printf 'adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.0\nlora_target_linear: true\n' >> lo.yml
check '"$AXOC" compile lo.yml -o lo.bin 2>/dev/null && "$AXORUN" lo.bin --output-dir loout --quiet' "LoRA on the trained quickstart model"
check '"$AXOC" merge-lora loout -o merged-lo/ 2>ml.err && grep -q "merged 14 LoRA layers" ml.err && test -s merged-lo/model.safetensors && cmp -s merged-lo/config.json out/config.json && ! ls -a | grep -q "axo-merge"' \
  "axoc merge-lora writes an HF model dir (given as merged-lo/; its scratch file of merged tensors left nowhere)"
check '! "$AXOC" merge-lora loout -o merged-lo 2>ml2.err && grep -q "refusing to replace" ml2.err' "merge-lora never replaces an existing dir without --overwrite"
cp -r loout loinf && sed -i 's/"lora_alpha": 8/"lora_alpha": 1e308/' loinf/adapter_config.json
check 'grep -q "1e308" loinf/adapter_config.json && ! "$AXOC" merge-lora loinf -o merged-inf 2>mi.err && grep -q "gives a non-finite weight" mi.err && ! test -e merged-inf' "merge-lora refuses to write inf weights (a lora_alpha whose scale overflows)"
sed -e "s#^learning_rate: .*#learning_rate: 1e-30#" -e "s#^max_steps: .*#max_steps: 2#" lo.yml > lo2.yml && printf 'lora_model_dir: loout\n' >> lo2.yml
sed -e "s#^base_model: .*#base_model: $T/merged-lo#" -e "/^adapter:/,\$d" lo2.yml > mg.yml
check '"$AXOC" compile lo2.yml -o lo2.bin 2>/dev/null && "$AXORUN" lo2.bin --output-dir lo2out --quiet && "$AXOC" compile mg.yml -o mg.bin 2>/dev/null && "$AXORUN" mg.bin --output-dir mgout --quiet' "the adapted and the merged model run"
check 'paste <(losses lo2out/train_log.jsonl) <(losses mgout/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-5 * \$1 || (\$2 - \$1) > 1e-5 * \$1 {bad = 1} END {exit bad || NR != 2}"' "the merged model's loss is the adapted model's (fp32, 1e-5)"
check '! "$AXOC" merge-lora loout --base "$SRC/configs/models/tiny-qwen3" -o mx 2>mx.err && grep -q "merge-lora\|adapter\|does not fit\|adapts no weight\|safetensors" mx.err' "merging into another model is an error"
# DoRA (peft_use_dora): PEFT's keys and use_dora; lora_model_dir continues it; merge-lora folds m / ||W + s B A|| in
sed 's#^adapter: .*#peft_use_dora: true\nadapter: lora#' lo.yml > lod.yml
check '"$AXOC" compile lod.yml -o lod.bin 2>/dev/null && "$AXORUN" lod.bin --output-dir lodout --quiet && python3 - lodout <<'"'"'PYEOF'"'"'
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/adapter_model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = {k: v for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
assert json.load(open(d + "/adapter_config.json"))["use_dora"] is True
mags = [k for k in hdr if k.endswith(".lora_magnitude_vector")]
assert len(hdr) == 3 * 14 and len(mags) == 14, sorted(hdr)
assert "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector" in mags
PYEOF' "a DoRA adapter holds PEFT's lora_magnitude_vector per layer and use_dora true"
sed -e "s#^learning_rate: .*#learning_rate: 1e-30#" -e "s#^max_steps: .*#max_steps: 2#" lod.yml > lod2.yml && printf 'lora_model_dir: lodout\n' >> lod2.yml
check '"$AXOC" merge-lora lodout -o merged-lod 2>mld.err && grep -q "merged 14 LoRA layers" mld.err' "merge-lora merges a DoRA adapter"
sed -e "s#^base_model: .*#base_model: $T/merged-lod#" -e "/^adapter:/,\$d" -e "/^peft_use_dora:/d" lod2.yml > mgd.yml
check '"$AXOC" compile lod2.yml -o lod2.bin 2>/dev/null && "$AXORUN" lod2.bin --output-dir lod2out --quiet && cmp -s lodout/adapter_model.safetensors lod2out/adapter_model.safetensors && "$AXOC" compile mgd.yml -o mgd.bin 2>/dev/null && "$AXORUN" mgd.bin --output-dir mgdout --quiet' "the DoRA adapter continues unchanged (lr 1e-30) and the merged model runs"
check 'paste <(losses lod2out/train_log.jsonl) <(losses mgdout/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-5 * \$1 || (\$2 - \$1) > 1e-5 * \$1 {bad = 1} END {exit bad || NR != 2}"' "the DoRA-merged model's loss is the adapted model's (fp32, 1e-5)"
sed 's#^lora_target_linear: .*#lora_target_modules: [q_proj]#' lmd.yml > lmdq.yml
check '"$AXOC" compile lmdq.yml -o lmdq.bin 2>/dev/null && ! "$AXORUN" lmdq.bin --output-dir lmdqout --quiet 2>lmdq.err && grep -q "adapts a module this config does not target" lmdq.err' "a saved adapter with modules the config drops is an error, not silently cut"
printf 'lora_model_dir: ./no-such-adapter\n' | cat q1.yml - > lmdx.yml
check '! "$AXOC" compile lmdx.yml -o x.bin 2>lmdx.err && grep -q "lora_model_dir" lmdx.err' "a missing lora_model_dir is an error naming the key"
# lora_modules_to_save: lm_head trained whole beside the adapters, saved under PEFT's key, merged, continued
sed -e "s#^max_steps: .*#max_steps: 4#" lo.yml > los.yml && printf 'lora_modules_to_save:\n  - lm_head\n' >> los.yml
check '"$AXOC" compile los.yml -o los.bin 2>los.err && grep -q "the adapters and lora_modules_to_save" los.err && "$AXORUN" los.bin --output-dir losout --quiet' "LoRA with lora_modules_to_save trains"
check 'python3 - losout "$T/out" <<PYEOF
import json, struct, sys
def st(p):
    f = open(p, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
    return {k: (v, base) for k, v in h.items() if k != "__metadata__"}, p
def data(t, k):
    (v, base), p = t[0][k], t[1]
    f = open(p, "rb"); f.seek(base + v["data_offsets"][0]); return f.read(v["data_offsets"][1] - v["data_offsets"][0])
a = st(sys.argv[1] + "/adapter_model.safetensors"); b = st(sys.argv[2] + "/model.safetensors")
cfg = json.load(open(sys.argv[1] + "/adapter_config.json"))
assert cfg["modules_to_save"] == ["lm_head"], cfg["modules_to_save"]
assert "base_model.model.lm_head.weight" in a[0], sorted(a[0])
assert data(a, "base_model.model.lm_head.weight") != data(b, "lm_head.weight"), "lm_head did not train"
assert not any("embed_tokens" in k for k in a[0])
PYEOF' "the adapter file holds lm_head under PEFT's key (trained), adapter_config.json lists it"
check '"$AXOC" merge-lora losout -o merged-los 2>mls.err && python3 -c "
import json, struct
def get(p, k):
    f = open(p, \"rb\"); n = struct.unpack(\"<Q\", f.read(8))[0]; h = json.loads(f.read(n)); v = h[k]
    f.seek(8 + n + v[\"data_offsets\"][0]); return f.read(v[\"data_offsets\"][1] - v[\"data_offsets\"][0])
assert get(\"merged-los/model.safetensors\", \"lm_head.weight\") == get(\"losout/adapter_model.safetensors\", \"base_model.model.lm_head.weight\")
"' "merge-lora puts the trained lm_head into the merged model"
sed -e "s#^learning_rate: .*#learning_rate: 1e-30#" -e "s#^max_steps: .*#max_steps: 2#" los.yml > los2.yml && printf 'lora_model_dir: losout\n' >> los2.yml
sed -e "s#^base_model: .*#base_model: $T/merged-los#" -e "/^adapter:/,\$d" los2.yml > mgs.yml
check '"$AXOC" compile los2.yml -o los2.bin 2>/dev/null && "$AXORUN" los2.bin --output-dir los2out --quiet && "$AXOC" compile mgs.yml -o mgs.bin 2>/dev/null && "$AXORUN" mgs.bin --output-dir mgsout --quiet' "continue the adapter (lora_model_dir) and run the merged model"
check 'paste <(losses los2out/train_log.jsonl) <(losses mgsout/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-5 * \$1 || (\$2 - \$1) > 1e-5 * \$1 {bad = 1} END {exit bad || NR != 2}"' "with lora_modules_to_save the merged model's loss is the adapted model's (fp32, 1e-5)"
check 'cmp -s losout/adapter_model.safetensors los2out/adapter_model.safetensors' "lora_model_dir loads the saved lm_head too (lr 1e-30: saved unchanged)"
sed -e "/^lora_modules_to_save:/,\$d" los2.yml > los3.yml && printf 'lora_model_dir: losout\n' >> los3.yml
check '"$AXOC" compile los3.yml -o los3.bin 2>/dev/null && ! "$AXORUN" los3.bin --output-dir los3out --quiet 2>los3.err && grep -q "lm_head.weight.*does not target" los3.err' "a saved lm_head the config does not list is an error, not silently dropped"
# LoRA+ and PEFT's layer selection: adapters in layer 1 only, lora_B at 16x the lr; PEFT's adapter_config.json; merge; continue
sed -e "s#^max_steps: .*#max_steps: 3#" lo.yml > lp.yml && printf 'loraplus_lr_ratio: 16\npeft_layers_to_transform: [1]\npeft_layers_pattern: layers\n' >> lp.yml
check '"$AXOC" compile lp.yml -o lp.bin 2>lp.err && grep -q "LoRA+: 7 of 14 tensors (lora_B and 1-d) train at learning_rate x 16" lp.err && "$AXORUN" lp.bin --output-dir lpout --quiet' "LoRA+ with adapters on layer 1 only compiles and trains"
check 'python3 - lpout <<"PYEOF"
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/adapter_model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = {k: v for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
cfg = json.load(open(d + "/adapter_config.json"))
assert cfg["layers_to_transform"] == [1] and cfg["layers_pattern"] == "layers", cfg
assert sorted(cfg["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]), cfg
assert len(hdr) == 14 and all(k.startswith("base_model.model.model.layers.1.") for k in hdr), sorted(hdr)
PYEOF' "the adapter holds layer 1 only; adapter_config.json says layers_to_transform [1] and layers_pattern as PEFT writes them"
check '"$AXOC" merge-lora lpout -o merged-lp 2>mlp.err && grep -q "merged 7 LoRA layers" mlp.err' "merge-lora merges the 7 adapted layers"
sed -e "s#^learning_rate: .*#learning_rate: 1e-30#" lp.yml > lp2.yml && printf 'lora_model_dir: lpout\n' >> lp2.yml
check '"$AXOC" compile lp2.yml -o lp2.bin 2>/dev/null && "$AXORUN" lp2.bin --output-dir lp2out --quiet && cmp -s lpout/adapter_model.safetensors lp2out/adapter_model.safetensors' "lora_model_dir continues the layer-1 adapter (lr 1e-30: saved unchanged)"
sed -e "s#^peft_layers_to_transform: .*#peft_layers_to_transform: [1, 5]#" lp.yml > lp5.yml
check '! "$AXOC" compile lp5.yml -o x.bin 2>lp5.err && grep -q "peft_layers_to_transform: layer 5 is out of range: the model has 2 decoder layers" lp5.err' "a layer index past the model's layers is a compile error naming the key"
sed 's#^lora_target_linear: .*#lora_target_modules: [q_proj, nope_proj]#' q1.yml > lbad.yml
check '"$AXOC" compile lbad.yml -o x.bin 2>lbad.err && grep -q "lora_target_modules: warning: \"nope_proj\" matches no linear layer .*ignored, as PEFT ignores it" lbad.err' \
  "a target module that matches nothing beside one that matches: a warning naming it (PEFT skips it)"
sed 's#^lora_target_linear: .*#lora_target_modules: [nope_proj]#' q1.yml > lbad1.yml
check '! "$AXOC" compile lbad1.yml -o x.bin 2>lbad1.err && grep -q "lora_target_modules: error: \"nope_proj\" matches no linear layer" lbad1.err' \
  "targets of which none matches: an error naming them (PEFT fails)"

# -- CPU offload: explicit copies, host-side optimizer step, PCIe figure ----------
for n in deepspeed_zero3_bf16_cpuoffload_params deepspeed_zero3_bf16_cpuoffload_all; do
  check '"$AXOC" dump "ex-$n.bin" >"dump-$n.txt" && grep -q "place=\"host\"" "dump-$n.txt" && grep -q "= to_device(@model.layers.0.self_attn.q_proj.weight)" "dump-$n.txt"' "example $n: params live on the host and are copied to the device before use"
  check 'grep -q "host<->device (PCIe) copies per step and rank: .*to the device, .*to the host" "dump-$n.txt" && grep -q "host<->device (PCIe) copies" "ex-$n.err"' "example $n: compile summary and dump show the PCIe traffic"
done
check 'grep -q "adamw(.*on=\"host\"" dump-deepspeed_zero3_bf16_cpuoffload_all.txt && grep -q "acc(@grad/.*on=\"host\"" dump-deepspeed_zero3_bf16_cpuoffload_all.txt' "offload_all: AdamW and gradient accumulation run on the host"
check '! grep -q "adamw(.*on=\"host\"" dump-deepspeed_zero3_bf16_cpuoffload_params.txt && grep -q "= to_host(%" dump-deepspeed_zero3_bf16_cpuoffload_params.txt' "offload_params only: AdamW on the device, updated blocks copied to the host"
check '"$AXORUN" ex-deepspeed_zero3_bf16_cpuoffload_all.bin --max-steps 3 --output-dir offout --quiet && test -s offout/model.safetensors' "2-rank ZeRO-3 CPU-offload training runs"
check 'grep -q "^attr offload.pin_memory_param = 1$" dump-deepspeed_zero3_bf16_cpuoffload_all.txt && grep -q "^attr offload.pin_memory_optimizer = 1$" dump-deepspeed_zero3_bf16_cpuoffload_all.txt' "offload_all: pin_memory true reaches the plan (module attrs the CUDA executor reads)"
printf '{"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu", "pin_memory": false}}}\n' > z3nopin.json
check '"$AXOC" compile "$Q" --deepspeed z3nopin.json --world-size 2 -o z3nopin.bin 2>z3nopin.err && "$AXOC" dump z3nopin.bin >z3nopin.txt && grep -q "^attr offload.pin_memory_param = 0$" z3nopin.txt' "offload_param.pin_memory false reaches the plan"
printf '{"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}\n' > z2p.json
check '! "$AXOC" compile "$Q" --deepspeed z2p.json -o x.bin 2>z2p.err && grep -q "z2p.json: zero_optimization.offload_param" z2p.err && grep -q "stage 3" z2p.err' "offload_param below ZeRO-3 is a compile error naming the key"

# -- save_steps writes checkpoint-N/ (an HF model dir) --------------------------
sed -e "s#^base_model: .*#base_model: $SRC/configs/models/tiny-llama#" -e "s#path: data/#path: $SRC/configs/data/#" \
    -e "s#^output_dir: .*#output_dir: $T/ckout#" -e "s#^max_steps: .*#max_steps: 10#" "$Q" > ck.yml
echo "save_steps: 4" >> ck.yml
check '"$AXOC" compile ck.yml -o ck.bin 2>ck.err && "$AXORUN" ck.bin --quiet' "train with save_steps"
check 'test -s ckout/checkpoint-4/model.safetensors && test -s ckout/checkpoint-8/config.json && test -s ckout/model.safetensors' "checkpoint-4/, checkpoint-8/ and the final model are written"
check '! ls ckout | grep -q "tmp"' "no temporary directories are left behind"

# -- multi-rank: a ZeRO-3 plan for 2 ranks runs as 2 local ranks ------------------
check '"$AXOC" compile "$Q" --deepspeed "$SRC/configs/deepspeed/zero3.json" --world-size 2 -o z3.bin 2>z3.err' "compile ZeRO-3 for 2 ranks"
check 'grep -q "2 ranks" z3.err && grep -q "collective volume" z3.err' "summary names the ranks and the collective volume"
check '"$AXOC" dump z3.bin >z3.txt && grep -q "all_gather(" z3.txt' "ZeRO-3 plan gathers parameters"
check 'grep -q "all_gather(@.*stream=1" z3.txt && grep -q "stream=0, wait=\[" z3.txt && grep -q "schedule.prefetch = 1" z3.txt' "the dump shows streams, waits and the prefetch depth"
check '"$AXORUN" z3.bin --max-steps 5 --output-dir z3out --quiet --trace z3.trace' "2-rank ZeRO-3 training runs (with --trace)"
# executed ops of a program: a bucket of collectives (bucket=K) is one call, one trace event
nodes() { awk -v p="program $2 {" '$0 == p {f = 1; next} f && /^}/ {f = 0} f && !/= input\(/ { if (match($0, /bucket=[0-9]+/)) { k = substr($0, RSTART, RLENGTH); if (k == last) next; last = k } else last = ""; n++ } END {print n}' "$1"; }
check 'test "$(grep -o "\"ph\":\"X\"" z3.trace | wc -l)" -eq $((2 * ($(nodes z3.txt micro_step) + $(nodes z3.txt opt_step))))' "the trace has one event per op of one step on each rank"
check 'grep -q "\"pid\":1" z3.trace && grep -q "stream 1: communication" z3.trace && grep -q "\"cat\":\"communication\",\"ph\":\"X\"" z3.trace' "the trace has a track per rank and stream"
check 'test -s z3out/model.safetensors' "2-rank run saves a full model"
check '! "$AXORUN" z3.bin --ranks 3 --max-steps 1 --output-dir z3x --quiet 2>r.err && grep -q "compiled for 2 ranks" r.err' "rank-count mismatch is refused"
check '"$AXOC" compile "$Q" --world-size 4 --gpu-mem 0.000001 -o g.bin 2>g.err && grep -q "zero1.json" g.err' "--gpu-mem suggests the next ZeRO stage"

# -- sequence parallelism: ring attention over sp ranks trains like one rank ----
sed -e "s#^base_model: .*#base_model: $SRC/configs/models/tiny-llama#" -e "s#path: data/#path: $SRC/configs/data/#" \
    -e "s#^max_steps: .*#max_steps: 4#" -e "s#^logging_steps: .*#logging_steps: 1#" "$Q" > sp1.yml
cp sp1.yml sp2.yml && echo "sequence_parallel_degree: 2" >> sp2.yml
check '"$AXOC" compile sp1.yml -o sp1.bin 2>/dev/null && "$AXORUN" sp1.bin --output-dir sp1out --quiet' "1-rank reference run"
check '"$AXOC" compile sp2.yml --world-size 2 -o sp2.bin --dump-ir ir-sp2 2>sp2.err' "compile sequence_parallel_degree 2 for 2 ranks"
check 'grep -q "sequence parallel: 1 dp x 2 sp ranks, ring attention (zigzag layout), 64 of 128 tokens" sp2.err && grep -q "ring traffic" sp2.err' "summary shows the sp split and the ring traffic"
check 'ls ir-sp2 | grep -q "seqpar.ir" && grep -q "ring_shift(" ir-sp2/*-seqpar.ir && grep -q "attention_blk_bwd(" ir-sp2/*-seqpar.ir && grep -q "token_idx" ir-sp2/*-seqpar.ir' "the seqpar dump shows the ring"
check '"$AXORUN" sp2.bin --output-dir sp2out --quiet' "2-rank sequence-parallel run"
check 'paste <(losses sp1out/train_log.jsonl) <(losses sp2out/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-4 * \$1 || (\$2 - \$1) > 1e-4 * \$1 {bad = 1} END {exit bad || NR != 4}"' "sp 2 logs the losses of 1 rank"
check '"$AXOC" compile sp2.yml --world-size 4 -o sp4.bin 2>sp4.err && grep -q "2 dp x 2 sp ranks" sp4.err' "dp 2 x sp 2 compiles"
check '! "$AXOC" compile "$SRC/configs/examples/sequence_parallel.yml" --world-size 2 -o bad.bin 2>bad.err && grep -q "sequence_parallel_degree" bad.err' "sp that does not divide the world size is refused"
sed -e "s#\.\./models#$SRC/configs/models#" -e "s#\.\./data#$SRC/configs/data#" -e "s#^max_steps: .*#max_steps: 3#" \
    -e "s#^logging_steps: .*#logging_steps: 1#" "$SRC/configs/examples/sequence_parallel.yml" > spx4.yml
grep -v "sequence_parallel_degree\|ring_attn_func\|heads_k_stride" spx4.yml > spx1.yml
check '"$AXOC" compile spx4.yml --world-size 4 -o spx4.bin 2>spx.err && "$AXORUN" spx4.bin --output-dir spx4out --quiet' "the sequence_parallel example (bf16, sp 4) trains on 4 ranks"
check '"$AXOC" compile spx1.yml -o spx1.bin 2>/dev/null && "$AXORUN" spx1.bin --output-dir spx1out --quiet' "... and on 1 rank without sp"
check 'paste <(losses spx1out/train_log.jsonl) <(losses spx4out/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-2 * \$1 || (\$2 - \$1) > 1e-2 * \$1 {bad = 1} END {exit bad || NR != 3}"' "bf16 sp 4 logs the losses of 1 rank (bf16 tolerance)"

# -- DDP gradient buckets: ddp_bucket_cap_mb groups the all-reduces, one call per bucket --
sed -e "s#^base_model: .*#base_model: $SRC/configs/models/tiny-llama#" -e "s#path: data/#path: $SRC/configs/data/#" "$Q" > ddp.yml
cp ddp.yml ddpb.yml
echo "ddp_bucket_cap_mb: 0.05" >> ddpb.yml
check '"$AXOC" compile ddp.yml --world-size 2 -o ddp.bin 2>ddp.err && grep -q "collective calls per step and rank: 1 " ddp.err' "DDP with the default 25 MiB cap: one all-reduce call per step"
check '"$AXOC" compile ddpb.yml --world-size 2 -o ddpb.bin 2>ddpb.err && grep -q "gradient buckets in micro_step (ddp_bucket_cap_mb: cap 51.2 KiB)" ddpb.err' "ddp_bucket_cap_mb: 0.05 reports its buckets (DDP reduces in micro_step as backward runs)"
check '"$AXOC" dump ddpb.bin >ddpb.txt && grep -q "all_reduce(%[0-9]*) {axis=\"dp\", bucket=0[,}]" ddpb.txt && grep -q "collective_calls_per_step" ddpb.txt' "dump shows the bucket of each all-reduce and the call count"
check '"$AXORUN" ddp.bin --ranks 2 --max-steps 2 --output-dir ddpout --quiet && "$AXORUN" ddpb.bin --ranks 2 --max-steps 2 --output-dir ddpbout --quiet' "2-rank DDP trains with one and with several buckets"
check 'cmp -s <(sed "s/, \"tokens_per_s.*//" ddpout/train_log.jsonl) <(sed "s/, \"tokens_per_s.*//" ddpbout/train_log.jsonl) && cmp -s ddpout/model.safetensors ddpbout/model.safetensors' "bucketed DDP: identical losses and weights"
printf 'ddp_bucket_cap_mb: none\n' >> ddp.yml
check '! "$AXOC" compile ddp.yml --world-size 2 -o x.bin 2>ddpx.err && grep -q "ddp.yml:[0-9]*:20: error: ddp_bucket_cap_mb: expected a positive number" ddpx.err' "bad ddp_bucket_cap_mb names file:line and key"

# -- FSDP1 end to end: the FSDP1 forms compile to the FSDP2 plan and train identically --
E="$SRC/configs/examples"
ir_of() { "$AXOC" dump "$1" > "$1.dump" && sed -n '/^## IR/,$p' "$1.dump" > "$1.ir"; }   # -> $1.dump, $1.ir
log_of() { sed 's/, "tokens_per_s.*//' "$1"; }   # the log without the timing
loss_col() { sed 's/.*"loss": \([^,]*\),.*/\1/' "$1"; }
# the deprecated fsdp: list form, translated to FSDP2 by hand (same settings)
sed -e '/^fsdp:/,$d' "$E/fsdp_deprecated_list.yml" > list2.yml
printf 'fsdp_version: 2\nfsdp_config:\n offload_params: true\n state_dict_type: FULL_STATE_DICT\n transformer_layer_cls_to_wrap: LlamaDecoderLayer\n reshard_after_forward: true\n' >> list2.yml
sed -i "s#\.\./#$E/../#" list2.yml
check '"$AXOC" compile "$E/fsdp1.yml" --world-size 2 -o f1.bin 2>f1.err && "$AXOC" compile "$E/fsdp2.yml" --world-size 2 -o f2.bin 2>f2.err' "compile the FSDP1 and FSDP2 examples for 2 ranks"
check 'ir_of f1.bin && ir_of f2.bin && ! grep -q "served from cache" f2.err && grep -q "\"fsdp\": 2" f2.bin.dump' "the FSDP2 form is not served the FSDP1 plan from the cache"
check 'cmp -s f1.bin.ir f2.bin.ir && grep -q "reduce_scatter(.*bucket=" f1.bin.ir && grep -q "all_gather(" f1.bin.ir' "FSDP1 and FSDP2 examples: identical sharded IR"
diff f1.bin.dump f2.bin.dump > f12.diff
check '[ "$(grep "^[<>]" f12.diff | grep -cv "\"cache_key\"\|\"fsdp\": [12]\|# plan f[12].bin")" = 0 ]' "FSDP1 vs FSDP2 plans differ only in META's fsdp version and cache key"
check '"$AXOC" compile "$E/fsdp_deprecated_list.yml" --world-size 2 -o fl.bin 2>fl.err && "$AXOC" compile list2.yml --world-size 2 -o fl2.bin 2>fl2.err' "compile the deprecated fsdp list form and its FSDP2 translation"
check 'ir_of fl.bin && ir_of fl2.bin && cmp -s fl.bin.ir fl2.bin.ir && grep -q "place=\"host\"" fl.bin.ir' "deprecated fsdp list and FSDP2: identical IR (offload placement included)"
check 'grep -q "^attr offload.pin_memory_param = 1$" fl.bin.ir && grep -q "^attr offload.pin_memory_optimizer = 1$" fl.bin.ir' "FSDP offload pins host memory, as torch does"
check '"$AXORUN" f1.bin --ranks 2 --max-steps 2 --output-dir f1out --quiet && "$AXORUN" f2.bin --ranks 2 --max-steps 2 --output-dir f2out --quiet' "train the FSDP1 and FSDP2 examples on 2 ranks"
check 'cmp -s <(log_of f1out/train_log.jsonl) <(log_of f2out/train_log.jsonl) && cmp -s f1out/model.safetensors f2out/model.safetensors' "FSDP1 vs FSDP2 (bf16 examples): identical losses and weights"
check '"$AXORUN" fl.bin --ranks 2 --max-steps 2 --output-dir flout --quiet && "$AXORUN" fl2.bin --ranks 2 --max-steps 2 --output-dir fl2out --quiet && cmp -s <(log_of flout/train_log.jsonl) <(log_of fl2out/train_log.jsonl)' "deprecated fsdp list vs FSDP2: identical losses"
# fp32 copies logging every step, so 2 ranks can be compared with 1 rank
# (gradient_accumulation_steps x2: the same global batch); in bf16 the
# rounding of the accumulated gradients legitimately differs between them
for v in 1 2; do
  sed -e "s#\.\./#$E/../#" -e "s#^bf16: .*#bf16: false#" -e "s#^logging_steps: .*#logging_steps: 1#" \
      -e "s#^warmup_steps: .*#warmup_steps: 0#" -e "s#^sequence_len: .*#sequence_len: 64#" "$E/fsdp$v.yml" > t$v.yml
done
sed -e "s#^gradient_accumulation_steps: .*#gradient_accumulation_steps: 4#" t2.yml > t1r.yml
check '"$AXOC" compile t1.yml --world-size 2 -o t1.bin 2>/dev/null && "$AXOC" compile t2.yml --world-size 2 -o t2.bin 2>/dev/null && "$AXOC" compile t1r.yml --world-size 1 -o t1r.bin 2>/dev/null' "compile fp32 FSDP1/FSDP2 copies (2 ranks) and a 1-rank reference"
check '"$AXORUN" t1.bin --ranks 2 --max-steps 3 --output-dir t1out --quiet && "$AXORUN" t2.bin --ranks 2 --max-steps 3 --output-dir t2out --quiet && "$AXORUN" t1r.bin --ranks 1 --max-steps 3 --output-dir t1rout --quiet' "train them"
check 'cmp -s <(log_of t1out/train_log.jsonl) <(log_of t2out/train_log.jsonl) && [ "$(wc -l < t2out/train_log.jsonl)" -eq 3 ]' "fp32 FSDP1 vs FSDP2 on 2 ranks: identical losses at every step"
check 'paste -d" " <(loss_col t2out/train_log.jsonl) <(loss_col t1rout/train_log.jsonl) | awk "{n++; d=\$1-\$2; if (d<0) d=-d; if (!(d <= 1e-5*\$2)) bad=1} END{exit (bad || n != 3)}"' "FSDP on 2 ranks vs 1 rank: losses agree to 1e-5 at every step"

# -- SHARDED_STATE_DICT: per-rank checkpoint files, merged = FULL_STATE_DICT bit for bit --
sed -e "s#state_dict_type: FULL_STATE_DICT#state_dict_type: SHARDED_STATE_DICT#" t2.yml > tsh.yml
echo "save_steps: 2" >> tsh.yml
sed -e "s#SHARDED_STATE_DICT#FULL_STATE_DICT#" tsh.yml > tfull.yml
check '"$AXOC" compile tsh.yml --world-size 2 -o tsh.bin 2>/dev/null && "$AXOC" compile tfull.yml --world-size 2 -o tfull.bin 2>/dev/null && ir_of tsh.bin && grep -q "attr train.state_dict_type = \"SHARDED_STATE_DICT\"" tsh.bin.ir' "state_dict_type reaches the plan"
check '"$AXORUN" tsh.bin --ranks 2 --max-steps 3 --output-dir shout --quiet && "$AXORUN" tfull.bin --ranks 2 --max-steps 3 --output-dir fullout --quiet' "train with SHARDED_STATE_DICT and FULL_STATE_DICT checkpoints"
check 'test -s shout/checkpoint-2/model-rank00000-of-00002.safetensors && test -s shout/checkpoint-2/model-rank00001-of-00002.safetensors && test -s shout/checkpoint-2/sharded_state_dict.json && test -s shout/checkpoint-2/config.json && ! test -e shout/checkpoint-2/model.safetensors' "the sharded checkpoint: one file per rank, the index, config.json"
check '[ -z "$(ls shout | grep tmp)" ]' "no temporary directories left by the sharded save"
check 'cmp -s shout/model.safetensors fullout/model.safetensors' "the final model is a FULL_STATE_DICT HF dir either way"
check '"$AXOC" merge-sharded shout/checkpoint-2 -o merged 2>m.err && cmp -s merged/model.safetensors fullout/checkpoint-2/model.safetensors && cmp -s merged/config.json fullout/checkpoint-2/config.json' "axoc merge-sharded == the FULL_STATE_DICT checkpoint, bit for bit"
check '! "$AXOC" merge-sharded shout/checkpoint-2 -o merged 2>m2.err && grep -q "refusing to replace" m2.err' "merge-sharded does not replace an existing dir"
cp -r shout/checkpoint-2 broken
rm broken/model-rank00001-of-00002.safetensors
check '! "$AXOC" merge-sharded broken -o m3 2>m3.err && grep -q "model-rank00001-of-00002.safetensors: error: cannot open" m3.err && ! test -e m3' "a missing rank file is a clear error"
cp shout/checkpoint-2/model-rank00001-of-00002.safetensors broken/
truncate -s 1000 broken/model-rank00000-of-00002.safetensors
check '! "$AXOC" merge-sharded broken -o m4 2>m4.err && grep -q "model-rank00000-of-00002.safetensors: error: " m4.err && ! test -e m4' "a truncated rank file is a clear error"

# -- pure bf16 (bfloat16: true, Axolotl's no-AMP bf16): bf16 AdamW state, no master copy --
sed -e "s#^bf16: .*#bfloat16: true#" -e "s#^base_model: #base_model: $SRC/configs/#" -e "s#  - path: data#  - path: $SRC/configs/data#" "$Q" > pb.yml
sed -e "s#^bfloat16: .*#bf16: true#" pb.yml > mb.yml
check '"$AXOC" compile pb.yml -o pb.bin --dump-ir ir-pb 2>pb.err && "$AXOC" compile mb.yml -o mb.bin 2>mb.err' "compile the quickstart with bfloat16: true and with bf16: true"
check 'grep -q "precision: pure bf16 (bfloat16: true)" pb.err && grep -q "precision: bf16 weights and gradients, f32 master" mb.err' "the summary names the precision recipe"
optb() { "$AXOC" dump "$1" | sed -n 's/^ *"optimizer_state": \([0-9]*\),*$/\1/p'; }
check '[ -n "$(optb pb.bin)" ] && [ "$(( $(optb pb.bin) * 3 ))" = "$(optb mb.bin)" ]' "pure bf16 optimizer state is a third of bf16 + f32 master ($(optb pb.bin) vs $(optb mb.bin) bytes)"
check '"$AXOC" dump pb.bin >pb.dump && grep -q "\"precision\": \"bf16_pure\"" pb.dump' "axoc dump records the precision recipe"
check 'grep -q "^global @adam_v/model.layers.0.mlp.up_proj.weight : bf16" ir-pb/03-optimizer.ir && ! grep -q "@master/" ir-pb/03-optimizer.ir && grep -q "salt=" ir-pb/03-optimizer.ir' "the plan keeps bf16 moments and no master copy"
check '"$AXORUN" pb.bin --max-steps 60 --output-dir pbout --quiet' "pure bf16 trains"
pf=$(head -1 pbout/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
pl=$(tail -1 pbout/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
check "awk 'BEGIN{exit !($pl < $pf * 0.6)}'" "pure bf16: loss falls over 60 steps ($pf -> $pl)"
check 'head -c 4096 pbout/model.safetensors | grep -aq "\"dtype\":\"BF16\"" && ! head -c 4096 pbout/model.safetensors | grep -aq "\"dtype\":\"F32\""' "pure bf16 saves a bf16 model"
# 2 ranks: DDP and FSDP (sharded params and state) round the same elements alike. Without clipping that is bit for
# bit; the clip coefficient comes from a squared norm summed per shard under FSDP and per tensor under DDP, so its
# last bit can differ, and stochastic rounding then takes a few elements the other way: losses stay within 1e-4.
printf 'fsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true\n' > fsdp_tail.yml
cat pb.yml fsdp_tail.yml > pbf.yml
sed -e "s#^max_grad_norm: .*#max_grad_norm: 0#" pb.yml > pb0.yml
sed -e "s#^max_grad_norm: .*#max_grad_norm: 0#" pbf.yml > pbf0.yml
check '"$AXOC" compile pb.yml --world-size 2 -o pb2.bin 2>/dev/null && "$AXOC" compile pbf.yml --world-size 2 -o pbf.bin 2>/dev/null && "$AXOC" compile pb0.yml --world-size 2 -o pb20.bin 2>/dev/null && "$AXOC" compile pbf0.yml --world-size 2 -o pbf0.bin 2>/dev/null' "compile pure bf16 for 2 DDP ranks and 2 FSDP ranks, with and without clipping"
check '"$AXORUN" pb2.bin --ranks 2 --max-steps 8 --output-dir pb2out --quiet && "$AXORUN" pbf.bin --ranks 2 --max-steps 8 --output-dir pbfout --quiet && "$AXORUN" pb20.bin --ranks 2 --max-steps 8 --output-dir pb20out --quiet && "$AXORUN" pbf0.bin --ranks 2 --max-steps 8 --output-dir pbf0out --quiet' "train them"
check 'cmp -s pb20out/model.safetensors pbf0out/model.safetensors' "pure bf16 without clipping: FSDP on 2 ranks ends with DDP's weights bit for bit"
check 'paste -d" " <(loss_col pb2out/train_log.jsonl) <(loss_col pbfout/train_log.jsonl) | awk "{n++; d=\$1-\$2; if (d<0) d=-d; if (!(d <= 1e-4*\$2)) bad=1} END{exit (bad || n < 1)}"' "pure bf16 with clipping: FSDP on 2 ranks logs DDP's losses to 1e-4"

# -- the later schedules reach the run: each step's lr = HF's get_wsd_schedule / Axolotl's RexLR (their formulas,
# transcribed here; test_train checks them against the libraries themselves) --------------------------------------
sched_run() { # $1 name, $2 the schedule's lines
  sed -e "s#^lr_scheduler: .*##" -e "s#^warmup_steps: .*#warmup_steps: 2#" -e "s#^max_steps: .*#max_steps: 9#" \
      -e "s#^logging_steps: .*#logging_steps: 1#" -e "s#^base_model: #base_model: $SRC/configs/#" \
      -e "s#  - path: data#  - path: $SRC/configs/data#" "$Q" > "$1.yml"
  printf '%s\n' "$2" >> "$1.yml"
  "$AXOC" compile "$1.yml" -o "$1.bin" 2>/dev/null && "$AXORUN" "$1.bin" --output-dir "$1out" --quiet
}
lr_are() { # $1 run, $2 python expression of t (0-based step) for lr / learning_rate
  python3 - "$1" "$2" <<'PYEOF'
import json, math, sys
got = [r["lr"] for r in map(json.loads, open(sys.argv[1] + "out/train_log.jsonl"))]
want = [0.01 * eval(sys.argv[2], {"math": math, "t": t}) for t in range(9)]
ok = len(got) == 9 and all(abs(a - b) <= 1e-5 * 0.01 for a, b in zip(got, want))
print("" if ok else "lr %s want %s" % (got, want), file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}
# W 2, stable 3, decay 3 (then the floor): cosine warmup and linear decay between 0.1 and 1
check 'sched_run wsd "lr_scheduler: warmup_stable_decay
lr_scheduler_kwargs:
  num_decay_steps: 3
  num_stable_steps: 3
  min_lr_ratio: 0.1
  warmup_type: cosine
  decay_type: linear" && lr_are wsd "(0.5 * (1 - math.cos(math.pi * t / 2)) * 0.9 + 0.1) if t < 2 else 1.0 if t < 5 else ((1 - (t - 5) / 3) * 0.9 + 0.1) if t < 8 else 0.1"' \
  "lr_scheduler: warmup_stable_decay with its kwargs: each step's lr is HF's"
# RexLR: step t uses its get_lr() at t + 1; warmup 2 of 9 steps, floor 0.2 (cosine_min_lr_ratio)
check 'sched_run rex "lr_scheduler: rex
cosine_min_lr_ratio: 0.2" && lr_are rex "((t + 1) / 2) if t + 1 <= 2 else 0.2 if t + 1 - 2 >= 7 else (lambda z: 0.2 + 0.8 * z / (0.1 + 0.9 * z))((7 - (t + 1 - 2)) / 7)"' \
  "lr_scheduler: rex with cosine_min_lr_ratio: each step's lr is Axolotl's RexLR"

# -- 8-bit AdamW state (optimizer: adamw_bnb_8bit) ------------------------------
sed -e "s#^optimizer: .*#optimizer: adamw_bnb_8bit#" pb.yml > q8.yml
check '"$AXOC" compile q8.yml -o q8.bin --dump-ir ir-q8 2>q8.err' "compile the quickstart with optimizer: adamw_bnb_8bit (pure bf16)"
check 'grep -q "AdamW moments 8-bit block-wise (adamw_bnb_8bit) for 11 of 21 tensors" q8.err' "the summary says which tensors keep 8-bit state"
check 'grep -q "^global @adam_m/model.layers.0.mlp.down_proj.weight : u8\[64,176\] opt" ir-q8/03-optimizer.ir && grep -q "^global @adam_v_absmax/model.layers.0.mlp.down_proj.weight : f32\[64,1\] opt" ir-q8/03-optimizer.ir && grep -q "  adamw8(@lm_head.weight" ir-q8/03-optimizer.ir && grep -q "  adamw(@model.embed_tokens.weight" ir-q8/03-optimizer.ir' "the plan keeps u8 moments and per-block maxima (adamw8); the embedding table keeps 16-bit AdamW state, as HF Trainer keeps nn.Embedding weights out of 8-bit"
# 2 bytes per element and 8 per block against pure bf16's 4 (rows of 64 here: one short block per row), the
# embedding table (a third of the tiny model) at pure bf16's 4
check '[ "$(( $(optb q8.bin) * 10 ))" -lt "$(( $(optb pb.bin) * 7 ))" ]' "8-bit state is under 70% of pure bf16's ($(optb q8.bin) vs $(optb pb.bin) bytes)"
check '"$AXORUN" q8.bin --max-steps 60 --output-dir q8out --quiet' "8-bit AdamW trains"
qf=$(head -1 q8out/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
ql=$(tail -1 q8out/train_log.jsonl | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
check "awk 'BEGIN{exit !($ql < $qf * 0.6 && $ql < $pl * 1.2)}'" "8-bit AdamW: loss falls over 60 steps ($qf -> $ql; pure bf16 with bf16 state: $pl)"
sed -e "s#^optimizer: .*#optimizer: adamw_torch_8bit#" pb.yml > q8t.yml
check '"$AXOC" compile q8t.yml -o q8t.bin --dump-ir ir-q8t 2>/dev/null && grep -q "  adamw8(@model.embed_tokens.weight" ir-q8t/03-optimizer.ir && grep -q "  adamw8(@lm_head.weight" ir-q8t/03-optimizer.ir' \
  "optimizer: adamw_torch_8bit (torchao's AdamW8bit, Axolotl's gpt-oss examples): the same 8-bit state, the embedding's too (no bitsandbytes override there)"
cat q8.yml fsdp_tail.yml > q8f.yml
check '"$AXOC" compile q8f.yml --world-size 2 -o q8f.bin 2>/dev/null && "$AXOC" compile q8.yml --world-size 2 -o q82.bin 2>/dev/null && "$AXORUN" q8f.bin --ranks 2 --max-steps 4 --output-dir q8fout --quiet && "$AXORUN" q82.bin --ranks 2 --max-steps 4 --output-dir q82out --quiet' "8-bit AdamW trains on 2 FSDP ranks and 2 DDP ranks"
check 'paste <(losses q82out/train_log.jsonl) <(losses q8fout/train_log.jsonl) | awk "NF != 2 || (\$1 - \$2) > 1e-5 * \$1 || (\$2 - \$1) > 1e-5 * \$1 {bad = 1} END {exit bad}"' "8-bit AdamW: FSDP logs DDP's losses"
printf 'optimizer: adamw_bnb_8bit\ndeepspeed: %s\n' "$SRC/configs/deepspeed/zero2.json" > q8ds_tail.yml
sed -e "/^optimizer:/d" q8.yml | cat - q8ds_tail.yml > q8ds.yml
check '"$AXOC" compile q8ds.yml --world-size 2 -o q8ds.bin 2>q8ds.err && grep -q "8-bit block-wise" q8ds.err && grep -q "f32 master weights" q8ds.err' "DeepSpeed ZeRO-2 + adamw_bnb_8bit: f32 master weights with 8-bit moments (DeepSpeed wraps the client optimizer)"

# -- resume_from_checkpoint: an interrupted run continues bit for bit ------------
sed -e "s#^base_model: #base_model: $SRC/configs/#" -e "s#  - path: data#  - path: $SRC/configs/data#" -e "s#^max_steps: .*#max_steps: 6#" \
    -e "s#^logging_steps: .*#logging_steps: 1#" -e "/^optimizer:/d" -e "/^bf16:/d" "$Q" > rsa.yml
echo "save_steps: 3" >> rsa.yml
rs_case() { # name, extra YAML (printf format), world: a straight run, then one resumed from its checkpoint-3
  { cat rsa.yml; printf "$2"; } > "rs-$1.yml"
  "$AXOC" compile "rs-$1.yml" -o "rs-$1.bin" --world-size "$3" 2>/dev/null &&
    "$AXORUN" "rs-$1.bin" --output-dir "rs-$1-A" --quiet && test -s "rs-$1-A/checkpoint-3/trainer_state.json" &&
    "$AXORUN" "rs-$1.bin" --output-dir "rs-$1-B" --resume-from "rs-$1-A/checkpoint-3" --quiet || return 1
  f=model.safetensors
  [ -e "rs-$1-A/$f" ] || f=adapter_model.safetensors
  cmp -s "rs-$1-A/$f" "rs-$1-B/$f" && cmp -s <(cut -d, -f1-5 "rs-$1-A/train_log.jsonl") <(cut -d, -f1-5 "rs-$1-B/train_log.jsonl")
}
check 'rs_case f32 "optimizer: adamw_torch\n" 1' "resume (f32): the resumed run ends with the straight run's weights and log, bit for bit"
check 'test -s rs-f32-A/checkpoint-3/optimizer/optimizer_state.json && test -s rs-f32-A/checkpoint-3/optimizer/optimizer-rank00000-of-00001.safetensors && grep -q "\"global_step\": 3" rs-f32-A/checkpoint-3/trainer_state.json && grep -q "\"log_history\"" rs-f32-A/checkpoint-3/trainer_state.json' "a checkpoint holds the optimizer state and trainer_state.json (global_step, log_history)"
check 'rs_case bf16z3 "bf16: true\ndeepspeed: $SRC/configs/deepspeed/zero3_bf16.json\n" 2' "resume: bf16 ZeRO-3 on 2 ranks (sharded moments and f32 master), bit for bit"
check 'rs_case offl "bf16: true\ndeepspeed: $SRC/configs/deepspeed/zero3_bf16_cpuoffload_all.json\n" 2' "resume: ZeRO-3 with CPU offload of params and optimizer, bit for bit"
check 'rs_case fsdpsh "bf16: true\nfsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  reshard_after_forward: true\n" 2' "resume from a SHARDED_STATE_DICT checkpoint (per-rank params), bit for bit"
check 'rs_case q8 "bfloat16: true\noptimizer: adamw_bnb_8bit\n" 2' "resume: pure bf16 with 8-bit AdamW state on 2 ranks, bit for bit"
check 'rs_case lora "optimizer: adamw_torch\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nlora_target_linear: true\nlora_modules_to_save: [lm_head]\n" 1' "resume: LoRA with dropout and lora_modules_to_save (the same masks after resuming), bit for bit"
# another world size: the 2-rank ZeRO-3 checkpoint on 1 rank with twice the accumulation (the same global batch)
sed 's/^gradient_accumulation_steps: 1/gradient_accumulation_steps: 2/' rs-bf16z3.yml > rs-z3g.yml
check '"$AXOC" compile rs-z3g.yml -o rs-z3g.bin --world-size 1 2>/dev/null && "$AXORUN" rs-z3g.bin --output-dir rs-z3g --resume-from rs-bf16z3-A/checkpoint-3 --quiet && cmp -s <(cut -d, -f1-4 rs-bf16z3-A/train_log.jsonl) <(cut -d, -f1-4 rs-z3g/train_log.jsonl)' "a 2-rank ZeRO-3 checkpoint resumes on 1 rank (each rank reads its rows; same losses here)"
# resume_from_checkpoint in the YAML, auto_resume_from_checkpoints after a crash
{ cat rs-f32.yml; printf 'resume_from_checkpoint: rs-f32-A/checkpoint-3\n'; } > rs-y.yml
check '"$AXOC" compile rs-y.yml -o rs-y.bin 2>/dev/null && "$AXORUN" rs-y.bin --output-dir rs-y --quiet && cmp -s rs-f32-A/model.safetensors rs-y/model.safetensors' "resume_from_checkpoint in the YAML"
cp -r rs-f32-A rs-crash && rm -r rs-crash/model.safetensors rs-crash/checkpoint-6 # a crash between steps 3 and 6
{ cat rs-f32.yml; printf 'auto_resume_from_checkpoints: true\n'; } > rs-auto.yml
check '"$AXOC" compile rs-auto.yml -o rs-auto.bin 2>/dev/null && "$AXORUN" rs-auto.bin --output-dir rs-crash 2>&1 | grep -q "resuming from rs-crash/checkpoint-3 at step 4" && cmp -s rs-f32-A/model.safetensors rs-crash/model.safetensors' "auto_resume_from_checkpoints continues from the newest checkpoint of output_dir"
# save_total_limit / saves_per_epoch; a resumed run replaces the abandoned run's later checkpoints cleanly
{ cat rs-f32.yml | sed '/^save_steps:/d'; printf 'save_steps: 1\nsave_total_limit: 2\n'; } > rs-lim.yml
check '"$AXOC" compile rs-lim.yml -o rs-lim.bin 2>/dev/null && "$AXORUN" rs-lim.bin --output-dir rs-lim --quiet && [ "$(ls -d rs-lim/checkpoint-* | tr "\n" " ")" = "rs-lim/checkpoint-5 rs-lim/checkpoint-6 " ]' "save_total_limit: 2 keeps the newest two checkpoints (HF saves the last step too)"
{ cat rs-f32.yml | sed '/^save_steps:/d'; printf 'saves_per_epoch: 3\n'; } > rs-spe.yml
check '"$AXOC" compile rs-spe.yml -o rs-spe.bin 2>/dev/null && "$AXORUN" rs-spe.bin --output-dir rs-spe --quiet && [ "$(ls -d rs-spe/checkpoint-* | tr "\n" " ")" = "rs-spe/checkpoint-2 rs-spe/checkpoint-4 rs-spe/checkpoint-6 " ]' "saves_per_epoch: 3 of a 6-step run saves every 2 steps"
cp -r rs-spe rs-re && rm -r rs-re/model.safetensors rs-re/checkpoint-6
check '"$AXORUN" rs-spe.bin --output-dir rs-re --resume-from rs-re/checkpoint-2 --quiet && cmp -s rs-spe/model.safetensors rs-re/model.safetensors && grep -q "\"global_step\": 4" rs-re/checkpoint-4/trainer_state.json && [ -z "$(ls rs-re | grep "\.old-\|\.tmp-")" ]' "resuming into the same output_dir replaces the later checkpoint-4 cleanly (no leftovers) and ends the same"
# num_epochs as a float (Axolotl): HF's max_steps = ceil(num_epochs x steps per epoch); 36 rows of 4 = 9 per epoch
head -36 "$SRC/configs/data/toy_count.jsonl" > ep36.jsonl
sed -e "/^max_steps:/d" -e "/^save_steps:/d" -e "s#^num_epochs: .*#num_epochs: 1.5#" -e "s#^sample_packing: .*#sample_packing: false#" \
    -e "s#  - path: .*#  - path: $T/ep36.jsonl#" rsa.yml > ep.yml
echo "saves_per_epoch: 2" >> ep.yml
check '"$AXOC" compile ep.yml -o ep.bin 2>/dev/null && "$AXORUN" ep.bin --output-dir epout > ep.out' "num_epochs: 1.5 compiles and trains"
check 'grep -q "axorun: 14 steps (9 per epoch)" ep.out && [ "$(grep -c "\"loss\"" epout/train_log.jsonl)" = 14 ]' "num_epochs: 1.5 of 9 steps per epoch trains ceil(13.5) = 14 steps"
check '[ "$(ls -d epout/checkpoint-* | sort -V | tr "\n" " ")" = "epout/checkpoint-5 epout/checkpoint-10 epout/checkpoint-14 " ]' "saves_per_epoch: 2 over 1.5 epochs saves every ceil(14 x 1/3) = 5 steps (Axolotl's ratio, HF's rounding), and at the last step"
# regressions: a padding rank (its block starts past a tensor's end) resumes from SHARDED files; DDP writes
# the optimizer state from rank 0 only; a checkpoint whose save a crash cut short is replaced, not fatal
check 'rs_case sh10 "fsdp_version: 2\nfsdp_config:\n  state_dict_type: SHARDED_STATE_DICT\n  reshard_after_forward: true\n" 10' "resume: FSDP SHARDED on 10 ranks (ranks past the end of 32-row tensors), bit for bit"
check 'rs_case ddp2 "optimizer: adamw_torch\n" 2 && ls rs-ddp2-A/checkpoint-3/optimizer | grep -qx "optimizer-rank00000-of-00002.safetensors" && ! ls rs-ddp2-A/checkpoint-3/optimizer | grep -q "rank00001" && grep -q "null" rs-ddp2-A/checkpoint-3/optimizer/optimizer_state.json' "DDP: the whole optimizer state comes from rank 0 (no empty files), and resumes bit for bit"
rm -rf rs-cut && cp -r rs-f32-A rs-cut && rm -r rs-cut/model.safetensors rs-cut/checkpoint-6 rs-cut/checkpoint-3/trainer_state.json
check '"$AXORUN" rs-auto.bin --output-dir rs-cut --quiet 2>rscut.err && test -s rs-cut/checkpoint-3/trainer_state.json && cmp -s rs-f32-A/model.safetensors rs-cut/model.safetensors' "auto_resume with only a cut-short checkpoint starts afresh and replaces it"
# errors
check '"$AXOC" compile rs-q8.yml -o rs-q81.bin --world-size 1 2>/dev/null && ! "$AXORUN" rs-q81.bin --output-dir rs-x1 --resume-from rs-f32-A/checkpoint-3 --quiet 2>rsx1.err && grep -q "optimizer state does not fit this plan\|another shape or dtype than the plan" rsx1.err' "a checkpoint of another optimizer/precision is an error"
check '! "$AXORUN" rs-q8.bin --output-dir rs-x4 --resume-from rs-f32-A/checkpoint-3 --quiet 2>rsx4.err && grep -q "was trained with a global batch of 4 rows per step, this plan takes 8" rsx4.err' "resuming with another global batch is an error (the data would not continue)"
rm -rf rs-part && cp -r rs-f32-A/checkpoint-3 rs-part && rm rs-part/trainer_state.json
check '! "$AXORUN" rs-f32.bin --output-dir rs-x2 --resume-from rs-part --quiet 2>rsx2.err && grep -q "has no trainer_state.json: not a resumable checkpoint" rsx2.err' "a checkpoint without trainer_state.json (an interrupted save) is refused"
check '! "$AXORUN" rs-f32.bin --output-dir rs-x3 --max-steps 3 --resume-from rs-f32-A/checkpoint-3 --quiet 2>rsx3.err && grep -q "nothing is left to train" rsx3.err' "resuming at the last step is an error"
printf 'resume_from_checkpoint: ./no-such-checkpoint\n' | cat rs-f32.yml - > rs-bad.yml
check '! "$AXOC" compile rs-bad.yml -o x.bin 2>rsb.err && grep -q "resume_from_checkpoint: expected an existing directory" rsb.err' "a missing resume_from_checkpoint is a compile error naming the key"

# -- a diverged run stops with an error, before the NaN step is saved ------------------
sed -e "s#^base_model: #base_model: $SRC/configs/#" -e "s#  - path: data#  - path: $SRC/configs/data#" \
    -e 's/^learning_rate:.*/learning_rate: 1e300/' "$Q" > div.yml
printf 'save_steps: 1\n' >> div.yml
"$AXOC" compile div.yml -o div.bin --no-cache 2>/dev/null
check '! "$AXORUN" div.bin --max-steps 5 --output-dir div --quiet 2>div.err && grep -q "training diverged" div.err' "a NaN loss stops training with an error"
n=$(grep -o 'step [0-9]*: loss' div.err | grep -o '[0-9]*' | head -1)
check "test -n '$n' && ! test -e div/checkpoint-$n && ! test -e div/model.safetensors && grep -q '\"step\": $n' div/train_log.jsonl" "the diverged step is logged but neither checkpointed nor saved as the model"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
