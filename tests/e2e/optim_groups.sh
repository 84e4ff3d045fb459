#!/usr/bin/env bash
# Axolotl's own optimizer groups (embedding_lr, embedding_lr_scale, lr_groups):
# every parameter's learning rate and weight decay in the compiled opt_step
# equal what Axolotl's create_optimizer_grouped_parameters makes
# (tests/reference/optimizer_groups.json, from Axolotl's own code);
# a group's lr trains its parameters as that learning_rate would, bit for bit;
# HF Trainer keeps the embedding table at 32-bit AdamW state under 8-bit
# optimizers, Axolotl's own groups do not; LoRA+ and a DeepSpeed optimizer
# section leave the groups out, as they do there.
# usage: optim_groups.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
FIX="$SRC/tests/reference/optimizer_groups.json"

cfg() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 1\n' \
    "$SRC/configs/models/tiny-llama" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nweight_decay: 0.1\nlr_scheduler: constant\nmax_grad_norm: 0\nseed: 3\noutput_dir: %s\n%s\n' "$1" "$2"
}
# each adamw node of an optimizer IR dump as: param lr weight_decay (lr = 0.01 x lr_scale)
groups_of() {
  python3 - "$1" <<'PYEOF'
import re, sys
for line in open(sys.argv[1]):
    m = re.search(r"adamw8?\(@([^,]+),.*\{(.*)\}", line)
    if not m: continue
    at = dict(re.findall(r"(\w+)=([-0-9.e]+)", m.group(2)))
    print(m.group(1), repr(0.01 * float(at.get("lr_scale", 1.0))), at["weight_decay"])
PYEOF
}
for c in $(python3 -c "import json,sys; print(' '.join(sorted(json.load(open(sys.argv[1]))['cases'])))" "$FIX"); do
  python3 - "$FIX" "$c" >keys-$c.yml <<'PYEOF'
import json, sys
case = json.load(open(sys.argv[1]))["cases"][sys.argv[2]]["config"]
for k, v in case.items():
    print(k + ": " + json.dumps(v))
PYEOF
  cfg "$T/$c" "$(cat keys-$c.yml)" >$c.yml
  check '"$AXOC" compile $c.yml -o $c.bin --dump-ir ir-$c >$c.out 2>&1 && grep -q "Axolotl.s optimizer groups" $c.out' "$c: compiles"
  groups_of ir-$c/*-optimizer.ir >$c.got
  check 'python3 - "$FIX" "$c" $c.got <<'"'"'PYEOF'"'"'
import json, sys
want = json.load(open(sys.argv[1]))["cases"][sys.argv[2]]["params"]
got = {l.split()[0]: (float(l.split()[1]), float(l.split()[2])) for l in open(sys.argv[3])}
bad = [(k, want[k], got.get(k)) for k in want if got.get(k) is None or abs(got[k][0] - want[k][0]) > 1e-15 * want[k][0] or got[k][1] != want[k][1]]
print(bad) if bad else None
sys.exit(len(bad) > 0 or len(got) != len(want))
PYEOF' "$c: every parameter's lr and weight decay = Axolotl's groups"
done

# lr_groups' lr trains its parameters as that learning_rate does: one step (constant schedule, no clipping), the
# mlp tensors at 0.02 equal a run at learning_rate 0.02 bit for bit, the others a run at 0.01
st_cmp() { # $1 $2 safetensors, $3 regex of tensor names: "same" if all those tensors are bit-identical
  python3 - "$1" "$2" "$3" <<'PYEOF'
import json, re, struct, sys
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    return {k: raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
ks = [k for k in a if re.search(sys.argv[3], k)]
print("same" if ks and all(a[k] == b[k] for k in ks) else "differ")
PYEOF
}
cfg "$T/g" 'lr_groups: [{name: mlp, modules: [mlp], lr: 0.02}]' >g.yml
cfg "$T/g2" '' | sed 's/^learning_rate: 0.01/learning_rate: 0.02/' >g2.yml
cfg "$T/g1" 'embedding_lr_scale: 1.0' >g1.yml
check '"$AXOC" compile g.yml -o g.bin 2>/dev/null && "$AXORUN" g.bin >/dev/null 2>&1 && "$AXOC" compile g2.yml -o g2.bin 2>/dev/null && "$AXORUN" g2.bin >/dev/null 2>&1' \
  "lr_groups: trained, and the same at learning_rate 0.02"
check 'test "$(st_cmp g/model.safetensors g2/model.safetensors "mlp")" = same && test "$(st_cmp g/model.safetensors g2/model.safetensors "self_attn")" = differ' \
  "the mlp group's tensors = learning_rate 0.02's, bit for bit; the others are not"
check '"$AXOC" compile g1.yml -o g1.bin 2>/dev/null && "$AXORUN" g1.bin >/dev/null 2>&1' "embedding_lr_scale 1.0 (the groups, without weight decay on the embeddings)"
cfg "$T/g0" '' >g0.yml
check '"$AXOC" compile g0.yml -o g0.bin 2>/dev/null && "$AXORUN" g0.bin >/dev/null 2>&1 && test "$(st_cmp g/model.safetensors g0/model.safetensors "self_attn|norm")" = same && test "$(st_cmp g1/model.safetensors g0/model.safetensors "embed_tokens|lm_head")" = differ && test "$(st_cmp g1/model.safetensors g0/model.safetensors "layers")" = same' \
  "outside the group, learning_rate 0.01 bit for bit; embedding_lr_scale 1.0 changes only the embeddings (no weight decay)"

# 8-bit AdamW: HF Trainer keeps the embedding table's state at 32 bits (bitsandbytes' module override); with
# Axolotl's own groups its check never matches, so the table's state is 8-bit there
cfg "$T/q" 'optimizer: adamw_bnb_8bit' >q.yml
cfg "$T/q2" 'optimizer: adamw_bnb_8bit
embedding_lr: 0.001' >q2.yml
check '"$AXOC" compile q.yml -o q.bin --dump-ir ir-q >/dev/null 2>&1 && grep -q "  adamw(@model.embed_tokens.weight," ir-q/*-optimizer.ir && grep -q "  adamw8(@lm_head.weight," ir-q/*-optimizer.ir' \
  "8-bit AdamW: the embedding table keeps 32-bit state, lm_head (a Linear) gets 8-bit"
check '"$AXOC" compile q2.yml -o q2.bin --dump-ir ir-q2 >/dev/null 2>&1 && grep -q "  adamw8(@model.embed_tokens.weight," ir-q2/*-optimizer.ir' \
  "with Axolotl's own groups: 8-bit state for the embedding table too"

# LoRA+ makes its own groups; a DeepSpeed "optimizer" section replaces every group; lr_groups with LoRA+ is an error
cfg "$T/e1" 'adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true
loraplus_lr_ratio: 4
embedding_lr_scale: 0.5' >e1.yml
check '"$AXOC" compile e1.yml -o e1.bin 2>e1.err && grep -q "embedding_lr_scale: ignored, as Axolotl ignores it, with loraplus_lr_ratio" e1.err' \
  "embedding_lr_scale with LoRA+: a warning, ignored"
cfg "$T/e2" 'adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true
loraplus_lr_ratio: 4
lr_groups: [{name: a, modules: [q_proj], lr: 0.1}]' >e2.yml
check '! "$AXOC" compile e2.yml -o e2.bin 2>e2.err && grep -q "lr_groups and loraplus_lr_ratio cannot be used together" e2.err' "lr_groups with LoRA+: an error"
cat >ds.json <<'EOF'
{"optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": "auto"}}, "zero_optimization": {"stage": 1},
 "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto"}
EOF
cfg "$T/e3" "lr_groups: [{name: a, modules: [q_proj], lr: 0.1}]
deepspeed: $T/ds.json" >e3.yml
check '"$AXOC" compile e3.yml -o e3.bin 2>e3.err && grep -q "lr_groups: ignored, as HF Trainer ignores it, with the DeepSpeed config" e3.err && ! grep -q "^axoc: Axolotl.s optimizer groups" e3.err' \
  "with a DeepSpeed optimizer section: a warning, no groups"
cfg "$T/e4" 'lr_groups: [{name: a, lr: 0.1}]' >e4.yml
check '! "$AXOC" compile e4.yml -o e4.bin 2>e4.err && grep -q "lr_groups\[0\]: expected name, modules and lr" e4.err' "an lr group without modules: an error"
finish
