#!/usr/bin/env bash
# unfrozen_parameters (Axolotl's freeze_layers_except): only the parameters a
# pattern matches at the start of their name train; "." is a literal dot
# unless "+" follows it. The others leave the run bit for bit as they came,
# on 1 rank and on ZeRO-3 x 2 (the same model up to the order of sums).
# usage: freeze.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { # $1 base, $2 output dir, $3 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 2\n' \
    "$1" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nweight_decay: 0.1\nseed: 3\noutput_dir: %s\n%s\n' "$2" "$3"
}
# NAME: same (bit for bit) | close (within 1e-6) | changed, for each tensor of two safetensors files
diffst() {
  python3 - "$1" "$2" <<'PYEOF'
import json, struct, sys, array
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); o = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]; x = array.array("f"); x.frombytes(raw[8 + n + a:8 + n + b]); o[k] = x
    return o
a, b = load(sys.argv[1]), load(sys.argv[2])
for k in sorted(a):
    d = max(abs(x - y) for x, y in zip(a[k], b[k]))
    print(k, "same" if d == 0 else "close" if d < 1e-6 else "changed")
PYEOF
}
cfg "$SRC/configs/models/tiny-llama" "$T/base" "" >base.yml
check '"$AXOC" compile base.yml -o base.bin 2>/dev/null && "$AXORUN" base.bin >/dev/null 2>&1' "a base model with weights"

cfg "$T/base" "$T/u1" 'unfrozen_parameters:
  - ^model.layers.1.mlp.+
  - lm_head
gradient_accumulation_steps: 2' >u1.yml
check '"$AXOC" compile u1.yml -o u1.bin 2>u1.err && grep -q "trainable (.*: unfrozen_parameters; the rest is frozen)" u1.err && "$AXORUN" u1.bin >/dev/null 2>&1' \
  "compiled (the summary counts the trainable parameters) and trained"
diffst base/model.safetensors u1/model.safetensors >u1.diff
check 'test "$(grep -c changed u1.diff)" = 4 && grep -q "^lm_head.weight changed" u1.diff && grep -q "^model.layers.1.mlp.down_proj.weight changed" u1.diff && grep -q "^model.layers.1.self_attn.q_proj.weight same" u1.diff && grep -q "^model.layers.0.mlp.up_proj.weight same" u1.diff && grep -q "^model.embed_tokens.weight same" u1.diff' \
  "only lm_head and layer 1's MLP changed; every other tensor is bit for bit the base's (no weight decay on frozen ones)"
cfg "$T/base" "$T/u2" 'unfrozen_parameters: ["^model.layers.1.mlp.+", "lm_head"]
deepspeed: '"$SRC"'/configs/deepspeed/zero3.json' >u2.yml
check '"$AXOC" compile u2.yml --world-size 2 -o u2.bin 2>/dev/null && "$AXORUN" u2.bin >/dev/null 2>&1 && diffst u1/model.safetensors u2/model.safetensors >u2.diff && ! grep -q changed u2.diff && test "$(diffst base/model.safetensors u2/model.safetensors | grep -c changed)" = 4' \
  "ZeRO-3 on 2 ranks (the same global batch) trains the same tensors to the same values (within 1e-6: the sum order)"
# Axolotl's quirk: ".*" is a run of literal dots, so "^model.*" matches every model.* name (re.match anchors only
# the start) and not lm_head
cfg "$T/base" "$T/u3" 'unfrozen_parameters: "^model.*"' >u3.yml
check '"$AXOC" compile u3.yml -o u3.bin 2>/dev/null && "$AXORUN" u3.bin >/dev/null 2>&1 && diffst base/model.safetensors u3/model.safetensors >u3.diff && grep -q "^lm_head.weight same" u3.diff && ! grep -q "^model.* same" u3.diff' \
  "a single string; \"^model.*\" trains every model.* tensor and not lm_head, as Axolotl's pattern rewrite does"

# lora_target_modules as one string (PEFT): "all-linear", or a regex over whole module names
lora='adapter: lora
lora_r: 4
lora_alpha: 8'
cfg "$T/base" "$T/l1" "$lora
lora_target_modules: '.*\\.(q_proj|v_proj)'" >l1.yml
check '"$AXOC" compile l1.yml -o l1.bin 2>/dev/null && "$AXORUN" l1.bin >/dev/null 2>&1' "a regex of target modules: trained"
check 'python3 -c "import json,struct,sys; r=open(sys.argv[1],\"rb\").read(); h=json.loads(r[8:8+struct.unpack(\"<Q\",r[:8])[0]]); k=sorted(x for x in h if x!=\"__metadata__\"); sys.exit(len(k)!=8 or any(not (\".q_proj.\" in x or \".v_proj.\" in x) for x in k))" l1/adapter_model.safetensors' \
  "the adapter holds lora_A and lora_B of q_proj and v_proj in both layers, nothing else"
cfg "$T/base" "$T/l2" "$lora
lora_target_modules: all-linear" >l2.yml
cfg "$T/base" "$T/l3" "$lora
lora_target_linear: true" >l3.yml
check '"$AXOC" compile l2.yml -o l2.bin 2>/dev/null && "$AXORUN" l2.bin >/dev/null 2>&1 && "$AXOC" compile l3.yml -o l3.bin 2>/dev/null && "$AXORUN" l3.bin >/dev/null 2>&1 && cmp -s l2/adapter_model.safetensors l3/adapter_model.safetensors' \
  "all-linear trains what lora_target_linear trains"
cfg "$T/base" "$T/l4" "$lora
lora_target_modules: 'q_proj'" >l4.yml
check '! "$AXOC" compile l4.yml -o l4.bin 2>l4.err && grep -q "lora_target_modules: \"q_proj\" matches no module of the model" l4.err' \
  "a regex matches whole names: q_proj alone matches nothing"

# errors
cfg "$T/base" "$T/e1" 'unfrozen_parameters: ["^nothing"]' >e1.yml
check '! "$AXOC" compile e1.yml -o e1.bin 2>e1.err && grep -q "unfrozen_parameters: no parameter of the model matches" e1.err' "no match: an error"
# Row ranges (LayerNamePattern "name[start:end]", "[i]", "[start:]", "[:end]", "[]"): only those rows (dim 0) of a
# matched parameter get a gradient (Axolotl's hook zeroes the others). Without weight decay the other rows stay bit
# for bit; a 1-D parameter's "rows" are its elements.
rows_changed() { # $1 $2 safetensors, $3 tensor: the indices of dim 0 whose values differ
  python3 - "$1" "$2" "$3" <<'PYEOF'
import json, struct, sys, array
def load(p, name):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); v = h[name]
    a, b = v["data_offsets"]; x = array.array("f"); x.frombytes(raw[8 + n + a:8 + n + b]); return x, v["shape"]
(a, shape), (b, _) = load(sys.argv[1], sys.argv[3]), load(sys.argv[2], sys.argv[3])
row = len(a) // shape[0]
print(" ".join(str(r) for r in range(shape[0]) if a[r * row:(r + 1) * row] != b[r * row:(r + 1) * row]))
PYEOF
}
rr='weight_decay: 0.0
unfrozen_parameters:
  - ^lm_head.weight$[4:8]
  - lm_head.weight[20]
  - lm_head.weight[6:10]
  - model.norm.weight[60:]'
cfg "$T/base" "$T/r1" "$rr
gradient_accumulation_steps: 2" | grep -v "^weight_decay: 0.1" >r1.yml
check '"$AXOC" compile r1.yml -o r1.bin --dump-ir r1ir 2>r1.err && grep -q "mask_rows(.*{rows=\[4, 10, 20, 21\]}" r1ir/*autodiff*.ir && grep -q "{rows=\[60, 64\]}" r1ir/*autodiff*.ir && "$AXORUN" r1.bin >/dev/null 2>&1' \
  "row ranges: merged as Axolotl merges them ([4:8], [6:10], [20] -> 4-9 and 20), a mask_rows on each gradient; trained"
check 'test "$(rows_changed base/model.safetensors r1/model.safetensors lm_head.weight)" = "4 5 6 7 8 9 20" && test "$(rows_changed base/model.safetensors r1/model.safetensors model.norm.weight)" = "60 61 62 63" && test "$(diffst base/model.safetensors r1/model.safetensors | grep -c changed)" = 2' \
  "only those rows of lm_head and those elements of the final norm changed; every other value is the base's"
cfg "$T/base" "$T/r2" "$rr
deepspeed: $SRC/configs/deepspeed/zero3.json" | grep -v "^weight_decay: 0.1" >r2.yml
check '"$AXOC" compile r2.yml --world-size 2 -o r2.bin 2>/dev/null && "$AXORUN" r2.bin >/dev/null 2>&1 && test "$(rows_changed base/model.safetensors r2/model.safetensors lm_head.weight)" = "4 5 6 7 8 9 20" && diffst r1/model.safetensors r2/model.safetensors >r2.diff && ! grep -q changed r2.diff' \
  "ZeRO-3 x 2 (the same global batch): the same rows, the same values (within 1e-6)"
# one step without clipping: AdamW's first update is elementwise, so the rows that train equal a run that trains
# the whole tensor, bit for bit, and the step's loss is the same
one='max_steps: 1
max_grad_norm: 0
weight_decay: 0.0'
cfg "$T/base" "$T/r3" "$one
unfrozen_parameters: [\"lm_head.weight[4:8]\"]" | grep -v "^max_steps: 2\|^weight_decay: 0.1" >r3.yml
cfg "$T/base" "$T/r4" "$one
unfrozen_parameters: [lm_head]" | grep -v "^max_steps: 2\|^weight_decay: 0.1" >r4.yml
check '"$AXOC" compile r3.yml -o r3.bin 2>/dev/null && "$AXORUN" r3.bin >/dev/null 2>&1 && "$AXOC" compile r4.yml -o r4.bin 2>/dev/null && "$AXORUN" r4.bin >/dev/null 2>&1 && test "$(rows_changed r3/model.safetensors r4/model.safetensors lm_head.weight | wc -w)" = 252 && test -z "$(rows_changed r3/model.safetensors r4/model.safetensors lm_head.weight | tr " " "\n" | grep -x "[4-7]")" && cmp -s <(grep -o "\"loss\": [^,]*" r3/train_log.jsonl) <(grep -o "\"loss\": [^,]*" r4/train_log.jsonl)' \
  "one step: rows 4-7 = the whole tensor's training bit for bit, the other 252 rows differ, the same loss"
cfg "$T/base" "$T/r5" 'unfrozen_parameters: ["lm_head[]", "^model.norm.weight$[:]"]' >r5.yml
check '"$AXOC" compile r5.yml -o r5.bin --dump-ir r5ir 2>/dev/null && ! grep -q mask_rows r5ir/*autodiff*.ir' "\"[]\" and \"[:]\": every row, no mask"
cfg "$T/base" "$T/e2" 'unfrozen_parameters: ["^lm_head.weight$[8:4]"]' >e2.yml
check '! "$AXOC" compile e2.yml -o e2.bin 2>e2.err && grep -q "needs end > start" e2.err' "a range that ends before it starts: an error at the key"
cfg "$T/base" "$T/e5" 'unfrozen_parameters: ["lm_head.weight[250:300]"]' >e5.yml
check '! "$AXOC" compile e5.yml -o e5.bin 2>e5.err && grep -q "rows \[250, 300) of lm_head.weight, which has 256" e5.err' "rows past the parameter's: an error"
cfg "$T/base" "$T/e3" 'unfrozen_parameters: ["model.(layers"]' >e3.yml
check '! "$AXOC" compile e3.yml -o e3.bin 2>e3.err && grep -q "e3.yml:[0-9]*:[0-9]*: error: unfrozen_parameters: \"model.(layers\" is not a regex" e3.err' \
  "a pattern that does not compile: an error at the key"
cfg "$T/base" "$T/e4" 'unfrozen_parameters: ["lm_head"]
adapter: lora
lora_target_linear: true' >e4.yml
check '! "$AXOC" compile e4.yml -o e4.bin 2>e4.err && grep -q "unfrozen_parameters: with adapter: lora" e4.err' "with an adapter: an error"
finish
