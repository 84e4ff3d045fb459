#!/usr/bin/env bash
# rl: dpo end to end against TRL itself: tests/reference/dpo/tiny-llama-chat/dpo.json holds what TRL 1.9's
# DPOTrainer logs, step by step, run as Axolotl 0.19 runs it (tests/reference/make_dpo_fixtures.py) on the same
# weights and pairs; axo's train_log.jsonl must give the same loss, grad_norm, learning rate and metrics (the data
# order, the length filters, the tokenization, the reference model and the loss scaling all show in them). Then: 2
# ranks (DDP, ZeRO-3) = 1 rank with the same global batch; LoRA and QLoRA start at log 2 and write an adapter; the
# refusals.
# usage: dpo.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
FX="$SRC/tests/reference/dpo/tiny-llama-chat"

case_cfg() { # $1 case, $2 output dir, $3 sed script applied to the config -> stdout
  python3 - "$FX" "$1" "$2" <<'PYEOF' | sed -e "${3:-}"
import json, sys
fx, case, out = sys.argv[1:4]
c = json.load(open(fx + "/dpo.json"))["cases"][case]["config"]
print(c.replace("base_model: .", "base_model: " + fx).replace("path: toy_dpo", "path: " + fx + "/toy_dpo") + "output_dir: " + out)
PYEOF
}
cmp_trl() { # $1 case, $2 train_log.jsonl
  python3 - "$FX" "$1" "$2" <<'PYEOF'
import json, sys
want = json.load(open(sys.argv[1] + "/dpo.json"))["cases"][sys.argv[2]]["steps"]
got = [json.loads(l) for l in open(sys.argv[3])]
bad = [] if len(got) == len(want) else ["%d steps, TRL %d" % (len(got), len(want))]
for g, w in zip(got, want):
    pairs = [("loss", "loss", 2e-5, 1e-6), ("grad_norm", "grad_norm", 1e-4, 1e-6), ("lr", "learning_rate", 1e-5, 0),
             ("rewards/chosen", "rewards/chosen", 1e-4, 2e-5), ("rewards/rejected", "rewards/rejected", 1e-4, 2e-5),
             ("rewards/margins", "rewards/margins", 1e-4, 2e-5), ("logps/chosen", "logps/chosen", 1e-5, 0),
             ("logps/rejected", "logps/rejected", 1e-5, 0)]
    for a, b, rtol, atol in pairs:
        if abs(g[a] - w[b]) > rtol * abs(w[b]) + atol:
            bad.append("step %d %s: axo %.8g, TRL %.8g" % (g["step"], a, g[a], w[b]))
    if abs(w["rewards/margins"]) > 1e-3 and abs(g["rewards/accuracies"] - w["rewards/accuracies"]) > 1e-6:
        bad.append("step %d rewards/accuracies: axo %g, TRL %g" % (g["step"], g["rewards/accuracies"], w["rewards/accuracies"]))
print("\n".join(bad)) if bad else None
sys.exit(len(bad) > 0)
PYEOF
}
same_losses() { # $1 $2 train_log.jsonl: the same loss and grad_norm at every step (float sums in another order)
  python3 - "$1" "$2" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
bad = len(a) != len(b) or any(abs(x[k] - y[k]) > 1e-5 * abs(y[k]) + 1e-7 for x, y in zip(a, b) for k in ("loss", "grad_norm"))
print(a, b) if bad else None
sys.exit(bad)
PYEOF
}

for c in $(python3 -c "import json,sys; print(' '.join(sorted(json.load(open(sys.argv[1]))['cases'])))" "$FX/dpo.json"); do
  case_cfg "$c" "$T/o-$c" >"$c.yml"
  check '"$AXOC" compile $c.yml -o $c.bin >$c.cout 2>&1' "$c: compiles"
  check '"$AXORUN" $c.bin --quiet >$c.out 2>$c.err' "$c: trains"
  check 'cmp_trl $c o-$c/train_log.jsonl' "$c: every step's loss, grad_norm, lr and rewards = TRL's DPOTrainer"
  check 'test -s o-$c/model.safetensors && test -s o-$c/config.json' "$c: the model is saved"
done
check 'grep -q "pairs longer than sequence_len were dropped, as Axolotl drops them" full_beta05_short.err' \
  "Axolotl's drop of long pairs is reported"

# 2 ranks, the same global batch: DDP and ZeRO-3 (eval_step gathers the parameters for the reference too)
case_cfg full_ga2 "$T/o-dp2" 's/^gradient_accumulation_steps: 2/gradient_accumulation_steps: 1/' >dp2.yml
{ case_cfg full_ga2 "$T/o-z3" 's/^gradient_accumulation_steps: 2/gradient_accumulation_steps: 1/'; \
  echo "deepspeed: $SRC/configs/deepspeed/zero3.json"; } >z3.yml
for n in dp2 z3; do
  check '"$AXOC" compile $n.yml -o $n.bin --world-size 2 >$n.cout 2>&1 && "$AXORUN" $n.bin --quiet >$n.out 2>$n.err' \
    "$n: 2 ranks compile and train"
  check 'same_losses o-$n/train_log.jsonl o-full_ga2/train_log.jsonl' "$n: 2 ranks = 1 rank with gradient_accumulation_steps 2"
done

# adapters: the reference is the model without them, so the first step is at log 2 with zero rewards
for a in lora qlora; do
  { case_cfg full_ga2 "$T/o-$a" 's/^max_steps: 8/max_steps: 3/'
    printf 'adapter: %s\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nlora_target_modules: [q_proj, v_proj, down_proj]\n' $a
    [ $a = qlora ] && echo "load_in_4bit: true"; } >$a.yml
  check '"$AXOC" compile $a.yml -o $a.bin >$a.cout 2>&1' "$a: compiles"
  check 'grep -q "lora_dropout: 0.1 is not applied, as TRL" $a.cout' "$a: lora_dropout is off, as TRL turns dropout off"
  check '"$AXORUN" $a.bin --quiet >$a.out 2>$a.err && test -s o-$a/adapter_model.safetensors' "$a: trains, saves the adapter"
  check 'python3 -c "
import json, sys
s = json.loads(open(sys.argv[1]).readline())
sys.exit(not (abs(s[\"loss\"] - 0.6931472) < 1e-6 and s[\"rewards/chosen\"] == 0 and s[\"rewards/rejected\"] == 0))" o-$a/train_log.jsonl' \
    "$a: step 1 is log 2 with zero rewards"
done

# the bundled example
check '"$AXOC" compile "$SRC/configs/examples/dpo.yml" -o ex.bin >ex.cout 2>&1 && "$AXORUN" ex.bin --max-steps 4 --output-dir "$T/o-ex" --quiet >ex.out 2>ex.err' \
  "configs/examples/dpo.yml trains"

# refusals: what Axolotl refuses, and what axo does not implement with rl: dpo
refused() { # $1 name, $2 a config line (replacing the key's own), $3 regex of the error
  local n=$1 rx=$3
  { case_cfg full_ga2 "$T/o-r" | grep -v "^${2%%:*}:"; printf '%s\n' "$2"; } >r-$n.yml
  check '! "$AXOC" compile r-$n.yml -o r-$n.bin >r-$n.out 2>&1 && grep -q "$rx" r-$n.out' "refused: $n"
}
refused kto 'rl: kto' 'rl: .*not implemented in axo'
refused packing 'sample_packing: true' 'does not work with RLHF training'
refused val 'val_set_size: 0.1' 'evaluation with rl: dpo is not implemented'
refused ipo_loss 'dpo_loss_type: [ipo]' 'a DPO loss other than sigmoid'
refused sp 'sequence_parallel_degree: 2' 'sequence parallelism with rl: dpo'
refused truncate 'excess_length_strategy: truncate' 'implements Axolotl.s default, drop'
case_cfg full_ga2 "$T/o-r" 's/type: llama3.intel/type: chat_template.default/' >r-type.yml
check '! "$AXOC" compile r-type.yml -o r-type.bin >r-type.out 2>&1 && grep -q "DPO dataset type \"chat_template.default\" is not implemented" r-type.out' \
  "refused: a DPO dataset type axo lacks"
# a row without the strategy's field: the file and line named
head -3 "$FX/toy_dpo_48.jsonl" >bad.jsonl
echo '{"question": "What is 1 plus 1?", "chosen": "2", "rejected": null}' >>bad.jsonl
case_cfg full_ga2 "$T/o-bad" "s#path: .*toy_dpo_48.jsonl#path: $T/bad.jsonl#" >bad.yml
check '"$AXOC" compile bad.yml -o bad.bin >bad.cout 2>&1 && ! "$AXORUN" bad.bin --quiet >bad.out 2>bad.err && grep -q "bad.jsonl:4.*\"rejected\": expected a string, found null" bad.err' \
  "a row's missing completion: file, line and field named"
check '! "$AXORUN" full_ga2.bin --quiet --resume-from "$T/o-full_ga2" >res.out 2>res.err && grep -q "resuming rl: dpo is not implemented" res.err' \
  "--resume-from refused"
finish
