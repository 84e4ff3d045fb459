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

# lr_scheduler: one_cycle (torch's OneCycleLR as Axolotl builds it): the step's beta1 reaches every AdamW as an input
# (its three floats reconstruct the double: momentum 0.9 held fixed by the cycle trains the same bits as cycle_momentum:
# false with adam_beta1 0.9), the default cycle trains something else; every group trains at the schedule's lr;
# where torch raises, axo refuses
oc() { # $1 name, $2 extra lines: 4 steps, warmup 2
  cfg "$T/$1" "$2" | sed -e 's/^max_steps: 1/max_steps: 4\nwarmup_steps: 2/' -e 's/^lr_scheduler: constant/lr_scheduler: one_cycle/' >$1.yml
}
oc_run() { "$AXOC" compile $1.yml -o $1.bin --dump-ir ir-$1 ${2:+--world-size $2} 2>$1.err && "$AXORUN" $1.bin >$1.out 2>&1; }
oc oc0 'lr_scheduler_kwargs: {cycle_momentum: false}
adam_beta1: 0.9'
oc oc1 'lr_scheduler_kwargs: {base_momentum: 0.9, max_momentum: 0.9}'
oc oc2 ''
check 'oc_run oc0 && oc_run oc1 && oc_run oc2' "one_cycle: trains (fixed beta1, a flat momentum cycle, the default cycle)"
operands() { # $1 IR dump -> the operand counts of its adamw nodes, and whether input beta1 is there
  python3 - "$1" <<'PYEOF'
import re, sys
t = open(sys.argv[1]).read()
counts = sorted({len(m.group(1).split(",")) for m in re.finditer(r"  adamw\(([^)]*)\)", t)})
print(counts, 'name="beta1"' in t)
PYEOF
}
check 'test "$(operands ir-oc0/*-optimizer.ir)" = "[7] False" && test "$(operands ir-oc1/*-optimizer.ir)" = "[8] True"' \
  "cycle_momentum: every AdamW of the plan reads input beta1 as its 8th operand; without it, attr beta1 only"
check 'test "$(st_cmp oc0/model.safetensors oc1/model.safetensors .)" = same && test "$(st_cmp oc0/model.safetensors oc2/model.safetensors .)" = differ' \
  "a flat cycle at 0.9 = adam_beta1 0.9 bit for bit; the default cycle (0.95 -> 0.85 -> 0.95) trains other weights"
check 'python3 - oc2/train_log.jsonl <<'"'"'PYEOF'"'"'
import json, math, sys
lr = [json.loads(l)["lr"] for l in open(sys.argv[1]) if l.strip()]
# OneCycleLR(max_lr 0.01, total 4, pct_start 2/4): phase 1 ends at step 1, phase 2 at step 3 (cos annealing)
def cosa(a, b, p): return b + (a - b) / 2.0 * (math.cos(math.pi * p) + 1)
init, mx = 0.01 / 25, 0.01
want = [cosa(init, mx, 0.0), cosa(init, mx, 1.0), cosa(mx, init / 1e4, 1 / 2), cosa(mx, init / 1e4, 1.0)]
sys.exit(len(lr) != 4 or any(abs(a - b) > 1e-6 * b for a, b in zip(lr, want)))
PYEOF' "one_cycle: the logged lrs are OneCycleLR's"
oc oc3 'lr_scheduler_kwargs: {base_momentum: 0.9, max_momentum: 0.9}
lr_groups: [{name: mlp, modules: [mlp], lr: 0.05}]'
oc oc3b 'lr_scheduler_kwargs: {base_momentum: 0.9, max_momentum: 0.9}
lr_groups: [{name: mlp, modules: [mlp], lr: 0.01}]'
check 'oc_run oc3 && oc_run oc3b && grep -q "lr_groups: with lr_scheduler: one_cycle every parameter group trains at the schedule.s lr" oc3.err && ! grep -q lr_scale ir-oc3/*-optimizer.ir && test "$(st_cmp oc3/model.safetensors oc3b/model.safetensors .)" = same' \
  "one_cycle with lr_groups: a warning; the group trains at the schedule's lr, as OneCycleLR sets it (its lr 0.05 = 0.01 = learning_rate, bit for bit)"
oc oc4 'lr_scheduler_kwargs: {base_momentum: 0.9, max_momentum: 0.9}
deepspeed: '"$SRC"'/configs/deepspeed/zero2.json'
oc oc4r 'lr_scheduler_kwargs: {base_momentum: 0.9, max_momentum: 0.9}
gradient_accumulation_steps: 2'
check 'oc_run oc4 2 && oc_run oc4r && python3 - oc4r/train_log.jsonl oc4/train_log.jsonl <<'"'"'PYEOF'"'"'
import json, sys
a, b = ([json.loads(l) for l in open(p) if l.strip()] for p in sys.argv[1:3])
sys.exit(len(a) != len(b) or any(abs(x["loss"] - y["loss"]) > 1e-5 * abs(x["loss"]) or x["lr"] != y["lr"] for x, y in zip(a, b)))
PYEOF' "one_cycle with input beta1 under ZeRO-2 x 2 = 1 rank accumulating 2"
oc oc7 'lr_scheduler_kwargs: {max_momentum: 1.0}'
check '"$AXOC" compile oc7.yml -o oc7.bin 2>/dev/null && ! "$AXORUN" oc7.bin >oc7.out 2>&1 && grep -q "lr_scheduler: one_cycle: beta1 is 1 at step 1, so AdamW.s bias correction 1 - beta1^step is 0" oc7.out && test ! -e oc7/model.safetensors' \
  "one_cycle with max_momentum 1.0: refused before training, where torch's AdamW divides by zero (no non-finite model is saved)"
oc oc6 'save_steps: 2'
check 'oc_run oc6 && ! "$AXORUN" oc6.bin --output-dir oc6-r --resume-from oc6/checkpoint-2 --max-steps 6 >oc6r.out 2>&1 && grep -q "torch.s OneCycleLR keeps the checkpoint.s total_steps" oc6r.out && "$AXORUN" oc6.bin --output-dir oc6-s --resume-from oc6/checkpoint-2 >/dev/null 2>&1 && cmp -s oc6/model.safetensors oc6-s/model.safetensors' \
  "one_cycle resumed with other max_steps: refused (OneCycleLR keeps its total_steps); with the same: the straight run's model"
oc oc5 'lr_scheduler_kwargs: {pct_start: 0.25}'
check '"$AXOC" compile oc5.yml -o oc5.bin 2>/dev/null && ! "$AXORUN" oc5.bin >oc5.out 2>&1 && grep -q "lr_scheduler: one_cycle (warmup 2 of 4 steps): torch.s OneCycleLR divides by zero at step 0" oc5.out && test ! -e oc5/model.safetensors' \
  "one_cycle with a 1-step first phase (pct_start 0.25 of 4 steps): refused before training, as OneCycleLR raises ZeroDivisionError"
# Axolotl makes a warmup of 1 step 2 (its _configure_warmup_and_logging), which keeps one_cycle's first phase 2 long
oc oc8 ''
sed -i 's/^warmup_steps: 2/warmup_steps: 1/' oc8.yml
check 'oc_run oc8 && cmp -s oc8/model.safetensors oc2/model.safetensors' \
  "one_cycle with warmup_steps 1 trains as with 2 (Axolotl's rule)"
for bad in "max_lr: 0.1|Axolotl passes max_lr (learning_rate) to OneCycleLR itself" "pct_start: 1|expected a float written with a decimal point" \
  "final_div_factor: 1e4|expected a number as YAML 1.1 writes one" "anneal_strategy: cosine|expected cos or linear" \
  "verbose: true|not an argument of torch.s OneCycleLR" "pct_start: 1.5|expected a float in \[0, 1\]"; do
  oc ocb "lr_scheduler_kwargs: {${bad%%|*}}"
  check '! "$AXOC" compile ocb.yml -o ocb.bin 2>ocb.err && grep -q "lr_scheduler_kwargs.${bad%%:*}: ${bad#*|}" ocb.err' "one_cycle kwargs ${bad%%|*}: an error"
done
finish
