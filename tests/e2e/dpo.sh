#!/usr/bin/env bash
# rl: dpo end to end against TRL itself: tests/reference/dpo/tiny-llama-chat/dpo.json holds what TRL 1.9's
# DPOTrainer logs, step by step, run as Axolotl 0.19 runs it (tests/reference/make_dpo_fixtures.py) on the same
# weights and pairs; axo's train_log.jsonl must give the same loss, grad_norm, learning rate and metrics (the data
# order, the length filters, the tokenization, the reference model and the loss scaling all show in them). Then: 2
# ranks (DDP, ZeRO-3) = 1 rank with the same global batch; LoRA and QLoRA start at log 2 and write an adapter; the
# refusals. The simpo_* cases are rl: simpo against TRL's CPOTrainer (loss_type simpo, its own tokenization, the
# NLL term and its nll_loss metric), the orpo_* ones rl: orpo against TRL's ORPOTrainer on Axolotl's ORPO
# chat_template.argilla (its NLL over the chosen rows' every token, log_odds_ratio and log_odds_chosen).
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
print(c.replace("base_model: .", "base_model: " + fx).replace("path: toy_", "path: " + fx + "/toy_") + "output_dir: " + out)
PYEOF
}
cmp_trl() { # $1 case, $2 train_log.jsonl
  python3 - "$FX" "$1" "$2" <<'PYEOF'
import json, sys
case = json.load(open(sys.argv[1] + "/dpo.json"))["cases"][sys.argv[2]]
want = case["steps"]
lines = [json.loads(l) for l in open(sys.argv[3])]
got = {g["step"]: g for g in lines if "loss" in g}
evals = {g["step"]: g for g in lines if "eval_loss" in g}
bad = ["step %d: TRL logs it, axo does not" % w["step"] for w in want if w["step"] not in got]
for w in want:
    if w["step"] not in got:
        continue
    g = got[w["step"]]
    pairs = [("loss", "loss", 2e-5, 1e-6), ("grad_norm", "grad_norm", 1e-4, 1e-6), ("lr", "learning_rate", 1e-5, 0),
             ("rewards/chosen", "rewards/chosen", 1e-4, 2e-5), ("rewards/rejected", "rewards/rejected", 1e-4, 2e-5),
             ("rewards/margins", "rewards/margins", 1e-4, 2e-5), ("logps/chosen", "logps/chosen", 1e-5, 0),
             ("logps/rejected", "logps/rejected", 1e-5, 0)] + [(k, k, 1e-5, 1e-6) for k in ("nll_loss", "log_odds_ratio",
                                                                                       "log_odds_chosen") if k in w]
    for a, b, rtol, atol in pairs:
        if abs(g[a] - w[b]) > rtol * abs(w[b]) + atol:
            bad.append("step %d %s: axo %.8g, TRL %.8g" % (g["step"], a, g[a], w[b]))
    if abs(w["rewards/margins"]) > 1e-3 and abs(g["rewards/accuracies"] - w["rewards/accuracies"]) > 1e-6:
        bad.append("step %d rewards/accuracies: axo %g, TRL %g" % (g["step"], g["rewards/accuracies"], w["rewards/accuracies"]))
for w in case.get("evals", []):  # HF's evaluations (eval_on_start at step 0): eval_loss and TRL's eval metrics
    g = evals.get(w["step"])
    if g is None:
        bad.append("step %d: TRL evaluates, axo does not" % w["step"])
        continue
    for k, rtol, atol in (("eval_loss", 2e-5, 1e-6), ("eval_rewards/chosen", 1e-4, 2e-5), ("eval_rewards/rejected", 1e-4, 2e-5),
                          ("eval_rewards/margins", 1e-4, 2e-5), ("eval_logps/chosen", 1e-5, 0), ("eval_logps/rejected", 1e-5, 0)) + \
                         tuple((k, 1e-5, 1e-6) for k in ("eval_nll_loss", "eval_log_odds_ratio", "eval_log_odds_chosen") if k in w):
        if abs(g[k] - w[k]) > rtol * abs(w[k]) + atol:
            bad.append("eval at step %d %s: axo %.8g, TRL %.8g" % (w["step"], k, g[k], w[k]))
    if abs(w["eval_rewards/margins"]) > 1e-3 and abs(g["eval_rewards/accuracies"] - w["eval_rewards/accuracies"]) > 1e-6:
        bad.append("eval at step %d accuracies: axo %g, TRL %g" % (w["step"], g["eval_rewards/accuracies"], w["eval_rewards/accuracies"]))
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
  ws=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['cases'][sys.argv[2]].get('world', 1))" "$FX/dpo.json" "$c")
  check '"$AXOC" compile $c.yml -o $c.bin --world-size $ws >$c.cout 2>&1' "$c: compiles ($ws rank(s), as TRL ran it)"
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

# accelerate deals a step's micro-batches round-robin over the ranks: with accumulation, an epoch's last step (2 of
# its 4 micro-batches) is one each on 2 ranks, which HF divides by 1, as 1 rank divides its 2 by 2
case_cfg full_ga2 "$T/o-ga4" 's/^micro_batch_size: 2/micro_batch_size: 8/; s/^gradient_accumulation_steps: 2/gradient_accumulation_steps: 4/; s/^max_steps: 8/max_steps: 3/' >ga4.yml
case_cfg full_ga2 "$T/o-ga2x2" 's/^micro_batch_size: 2/micro_batch_size: 8/; s/^max_steps: 8/max_steps: 3/' >ga2x2.yml
check '"$AXOC" compile ga4.yml -o ga4.bin >ga4.cout 2>&1 && "$AXORUN" ga4.bin --quiet >ga4.out 2>&1 && "$AXOC" compile ga2x2.yml -o ga2x2.bin --world-size 2 >ga2x2.cout 2>&1 && "$AXORUN" ga2x2.bin --quiet >ga2x2.out 2>&1' \
  "1 rank x accumulation 4 and 2 ranks x 2 train (48 pairs, 8 a micro-batch)"
check 'same_losses o-ga2x2/train_log.jsonl o-ga4/train_log.jsonl' "2 ranks x accumulation 2 = 1 rank x 4, the epoch's short last step too"

# evaluation on 2 ranks: each evaluates a share (whole eval batches: 6 pairs, 3 a batch), the eval_loss is the mean
# over every pair = 1 rank's; with a short last batch accelerate tops it up with the first pairs (full_eval_2ranks,
# against TRL on 2 processes, above)
case_cfg full_eval "$T/o-ev1" 's/^micro_batch_size: 2/micro_batch_size: 1/; s/^gradient_accumulation_steps: 1/gradient_accumulation_steps: 2/; s/^val_set_size: 0.1/val_set_size: 0.125/' >ev1.yml
case_cfg full_eval "$T/o-ev2" 's/^micro_batch_size: 2/micro_batch_size: 1/; s/^val_set_size: 0.1/val_set_size: 0.125/' >ev2.yml
case_cfg full_eval "$T/o-ev3" 's/^micro_batch_size: 2/micro_batch_size: 1/' >ev3.yml
check '"$AXOC" compile ev3.yml -o ev3.bin --world-size 2 >/dev/null 2>&1 && "$AXORUN" ev3.bin --quiet >ev3.out 2>ev3.err && [ "$(grep -c eval_loss o-ev3/train_log.jsonl)" = 4 ]' \
  "2 ranks with a short last eval batch (5 pairs, 3 a batch) evaluate"
check '"$AXOC" compile ev1.yml -o ev1.bin >/dev/null 2>&1 && "$AXORUN" ev1.bin --quiet >/dev/null 2>&1 && "$AXOC" compile ev2.yml -o ev2.bin --world-size 2 >/dev/null 2>&1 && "$AXORUN" ev2.bin --quiet >/dev/null 2>&1 && python3 - o-ev1/train_log.jsonl o-ev2/train_log.jsonl <<'"'"'PYEOF'"'"'
import json, sys
a, b = ([json.loads(l)["eval_loss"] for l in open(p) if "eval_loss" in l] for p in sys.argv[1:3])
sys.exit(len(a) != 4 or len(a) != len(b) or any(abs(x - y) > 1e-5 * abs(x) for x, y in zip(a, b)))
PYEOF' "val_set_size on 2 ranks: the eval_loss of 1 rank at every evaluation"
# Axolotl's DPODataset keeps path, split, type, data_files, revision and field_*: the rest is ignored (warned), its
# loading keys refused; test_datasets[i] of chat_template.default read datasets[i]'s field_* keys
python3 - "$FX/toy_dpo_48.jsonl" conv >conv.jsonl <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(json.dumps({sys.argv[2]: [{"role": "user", "content": r["question"]}], "chosen": r["chosen"], "rejected": r["rejected"]}))
PYEOF
{ case_cfg full_ga2 "$T/o-cv" "s#path: .*toy_dpo_48.jsonl#path: $T/conv.jsonl#; s#type: llama3.intel#type: chat_template.default\n    field_messages: conv\n    roles: {user: [human]}#; s/^max_steps: 8/max_steps: 1/"
  printf 'chat_template: llama3\ntest_datasets:\n  - path: %s/conv.jsonl\n    type: chat_template.default\neval_steps: 1\n' "$T"; } >cv.yml
check '"$AXOC" compile cv.yml -o cv.bin >cv.cout 2>&1 && grep -q "datasets\[0\].roles: ignored, as Axolotl 0.19 ignores it under rl: dpo" cv.cout && "$AXORUN" cv.bin --quiet >cv.out 2>cv.err && test "$(grep -c eval_loss o-cv/train_log.jsonl)" = 2' \
  "chat_template.default: roles ignored (warned); test_datasets[0] reads datasets[0]'s field_messages"
sed "s#    type: llama3.intel#    type: llama3.intel\n    shards: 2#" full_ga2.yml >nm.yml
check '! "$AXOC" compile nm.yml -o nm.bin >nm.out 2>&1 && grep -q "datasets\[0\].shards: with rl: dpo Axolotl 0.19 rebuilds the entry as a DPODataset" nm.out' \
  "a loading key DPODataset drops (shards): refused"

# test_datasets: their own pairs, merged as the training ones
{ case_cfg full_ga2 "$T/o-td" 's/^max_steps: 8/max_steps: 2/'; printf 'test_datasets:\n  - path: %s/toy_dpo_30.jsonl\n    type: llama3.intel\neval_steps: 1\n' "$FX"; } >td.yml
check '"$AXOC" compile td.yml -o td.bin >td.cout 2>&1 && "$AXORUN" td.bin --quiet >td.out 2>td.err && test "$(grep -c eval_loss o-td/train_log.jsonl)" = 3' \
  "test_datasets: evaluated before the first step and at steps 1 and 2"

# the last step's checkpoint, as HF saves at max_steps
case_cfg full_ga2 "$T/o-ck" 's/^max_steps: 8/max_steps: 3/' >ck.yml
echo "save_steps: 2" >>ck.yml
check '"$AXOC" compile ck.yml -o ck.bin >ck.cout 2>&1 && "$AXORUN" ck.bin --quiet >ck.out 2>&1 && test -d o-ck/checkpoint-2 && test -d o-ck/checkpoint-3' \
  "save_steps 2 of 3 steps: checkpoint-2 and the last, checkpoint-3"

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

# rl: simpo (CPOTrainer) and rl: orpo (ORPOTrainer), each against TRL itself above: 2 ranks (DDP, ZeRO-3) = 1 rank;
# LoRA from step 1 at the full fine-tune's loss (no reference, and new adapters are zero); then each one's own checks
ref_free_ranks() { # $1 rl name, $2 its accumulation-2 case, $3 its max_steps, $4 file tag, $5 the LoRA targets line
  local rl=$1 c=$2 ms=$3 g=$4 n
  case_cfg $c "$T/o-${g}dp2" 's/^gradient_accumulation_steps: 2/gradient_accumulation_steps: 1/' >${g}dp2.yml
  { case_cfg $c "$T/o-${g}z3" 's/^gradient_accumulation_steps: 2/gradient_accumulation_steps: 1/'; \
    echo "deepspeed: $SRC/configs/deepspeed/zero3.json"; } >${g}z3.yml
  for n in ${g}dp2 ${g}z3; do
    check '"$AXOC" compile $n.yml -o $n.bin --world-size 2 >$n.cout 2>&1 && "$AXORUN" $n.bin --quiet >$n.out 2>$n.err' \
      "$rl $n: 2 ranks compile and train"
    check 'same_losses o-$n/train_log.jsonl o-$c/train_log.jsonl' "$rl $n: 2 ranks = 1 rank with gradient_accumulation_steps 2"
  done
  { case_cfg $c "$T/o-${g}lora" "s/^max_steps: $ms/max_steps: 2/"
    printf 'adapter: lora\nlora_r: 4\nlora_alpha: 8\n%s\n' "$5"; } >${g}lora.yml
  n=${g}lora
  check '"$AXOC" compile $n.yml -o $n.bin >$n.cout 2>&1 && "$AXORUN" $n.bin --quiet >$n.out 2>$n.err && test -s o-$n/adapter_model.safetensors && python3 -c "
import json, sys
a = json.loads(open(sys.argv[1]).readline()); b = json.loads(open(sys.argv[2]).readline())
sys.exit(abs(a[\"loss\"] - b[\"loss\"]) > 1e-5 * abs(b[\"loss\"]))" o-$n/train_log.jsonl o-$c/train_log.jsonl' \
    "$rl + LoRA: trains, saves the adapter; step 1's loss is the full fine-tune's"
}
ref_free_ranks simpo simpo_ga2 6 s 'lora_target_modules: [q_proj, v_proj, down_proj]'
ref_free_ranks orpo orpo_ga2 6 o 'lora_target_linear: true'
# simpo: rows whose two prompts tokenize one token apart (a prompt ending in a space merges with one completion), as
# TRL's tokenize_row allows; resuming needs no reference file; Axolotl's refusals
python3 -c "
import json
for i in range(8):
    print(json.dumps({'prompt': 'Say the year ', 'chosen': 'the' if i % 2 else 'city', 'rejected': '.'}))" >merge.jsonl
case_cfg simpo_ga2 "$T/o-smerge" "s#path: .*toy_dpo_48.jsonl#path: $T/merge.jsonl#; s#type: llama3.intel#type: passthrough#; s/^max_steps: 6/max_steps: 2/" >smerge.yml
check '"$AXOC" compile smerge.yml -o smerge.bin >smerge.cout 2>&1 && "$AXORUN" smerge.bin --quiet >smerge.out 2>smerge.err && test "$(grep -c nll_loss o-smerge/train_log.jsonl)" = 2' \
  "simpo: pairs whose prompts tokenize one token apart train, as TRL takes them"
{ case_cfg simpo_eval "$T/o-srs"; echo "save_steps: 2"; } >srs.yml
check '"$AXOC" compile srs.yml -o srs.bin >/dev/null 2>&1 && "$AXORUN" srs.bin --quiet >srs.out 2>&1 && test -d o-srs/checkpoint-2 && ! test -e o-srs/checkpoint-2/dpo_reference.bin && "$AXORUN" srs.bin --quiet --resume-from o-srs/checkpoint-2 --output-dir o-srs2 >srs2.out 2>srs2.err && cmp -s o-srs/model.safetensors o-srs2/model.safetensors' \
  "simpo: checkpoints need no reference file; resumed at step 2 = the straight run bit for bit"
{ case_cfg simpo_ga2 "$T/o-r" | grep -v '^simpo_gamma:'; } >r-nogamma.yml
check '! "$AXOC" compile r-nogamma.yml -o r.bin >r-nogamma.out 2>&1 && grep -q "simpo_gamma: rl: simpo needs it" r-nogamma.out' \
  "refused: rl: simpo without simpo_gamma (Axolotl hands TRL None)"
{ case_cfg simpo_ga2 "$T/o-r" | grep -v '^warmup_steps:'; echo "warmup_ratio: 0.1"; } >r-wr.yml
check '! "$AXOC" compile r-wr.yml -o r.bin >r-wr.out 2>&1 && grep -q "warmup_ratio: not supported with the simpo trainer" r-wr.out' \
  "refused: warmup_ratio with rl: simpo (Axolotl's check)"
{ case_cfg simpo_ga2 "$T/o-r"; echo "dpo_loss_type: [ipo]"; } >r-slt.yml
check '! "$AXOC" compile r-slt.yml -o r.bin >r-slt.out 2>&1 && grep -q "dpo_loss_type: for rl: dpo only" r-slt.out' \
  "refused: dpo_loss_type with rl: simpo"

# orpo: rows without a type (prompt / chosen / rejected texts); a resumed run = the straight one; refusals
python3 - "$FX/toy_dpo_48.jsonl" >otext.jsonl <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(json.dumps({"prompt": "Q: " + r["question"] + "\nA:", "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]}))
PYEOF
case_cfg orpo_ga2 "$T/o-otext" "s#path: .*toy_orpo_48.jsonl#path: $T/otext.jsonl#; /type: chat_template.argilla/d; s/^max_steps: 6/max_steps: 2/" >otext.yml
check '"$AXOC" compile otext.yml -o otext.bin >otext.cout 2>&1 && "$AXORUN" otext.bin --quiet >otext.out 2>otext.err && test "$(grep -c nll_loss o-otext/train_log.jsonl)" = 2' \
  "orpo: rows without a type (prompt / chosen / rejected texts, as Axolotl hands them to TRL) train"
{ case_cfg orpo_eval_short "$T/o-ors"; echo "save_steps: 2"; } >ors.yml
check '"$AXOC" compile ors.yml -o ors.bin >/dev/null 2>&1 && "$AXORUN" ors.bin --quiet >ors.out 2>&1 && "$AXORUN" ors.bin --quiet --resume-from o-ors/checkpoint-2 --output-dir o-ors2 >ors2.out 2>ors2.err && cmp -s o-ors/model.safetensors o-ors2/model.safetensors' \
  "orpo: resumed at step 2 = the straight run bit for bit"
case_cfg orpo_ga2 "$T/o-r" 's/type: chat_template.argilla/type: llama3.intel/' >r-otype.yml
check '! "$AXOC" compile r-otype.yml -o r.bin >r-otype.out 2>&1 && grep -q "with rl: orpo axo reads Axolotl 0.19.s ORPO dataset type chat_template.argilla" r-otype.out' \
  "refused: a DPO dataset type under rl: orpo"

# the bundled example
for ex in dpo simpo orpo; do
  check '"$AXOC" compile "$SRC/configs/examples/$ex.yml" -o ex-$ex.bin >ex-$ex.cout 2>&1 && "$AXORUN" ex-$ex.bin --max-steps 4 --output-dir "$T/o-ex-$ex" --quiet >ex-$ex.out 2>ex-$ex.err && test -s "$T/o-ex-$ex/model.safetensors"' \
    "configs/examples/$ex.yml trains"
done

# refusals: what Axolotl refuses, and what axo does not implement with rl: dpo
refused() { # $1 name, $2 a config line (replacing the key's own), $3 regex of the error
  local n=$1 rx=$3
  { case_cfg full_ga2 "$T/o-r" | grep -v "^${2%%:*}:"; printf '%s\n' "$2"; } >r-$n.yml
  check '! "$AXOC" compile r-$n.yml -o r-$n.bin >r-$n.out 2>&1 && grep -q "$rx" r-$n.out' "refused: $n"
}
refused kto 'rl: kto' 'rl: .*not implemented in axo'
refused packing 'sample_packing: true' 'does not work with RLHF training'
refused best 'save_strategy: best' 'save_strategy: best with rl: dpo is not implemented'
refused aot 'dpo_loss_type: [aot]' 'an aot loss (sorted over the micro-batch)'
refused exo0 'dpo_loss_type: [exo_pair]' 'exo_pair needs dpo_label_smoothing > 0'
refused ipo_liger 'rl: ipo
dpo_use_liger_kernel: true' 'dpo_use_liger_kernel: Axolotl refuses it with the ipo loss'
refused sp 'sequence_parallel_degree: 2' 'sequence parallelism with rl: dpo'
refused truncate 'excess_length_strategy: truncate' 'implements Axolotl.s default, drop'
case_cfg full_ga2 "$T/o-r" 's/type: llama3.intel/type: zephyr.default/' >r-type.yml
check '! "$AXOC" compile r-type.yml -o r-type.bin >r-type.out 2>&1 && grep -q "DPO dataset type \"zephyr.default\" is not implemented" r-type.out' \
  "refused: a DPO dataset type axo lacks"
# chat_template.default: conversations rendered with the config's chat template; trains, starts at log 2
python3 - "$FX/toy_dpo_48.jsonl" >chat.jsonl <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    msgs = ([{"role": "system", "content": r["system"]}] if r.get("system") else []) + [{"role": "user", "content": r["question"]}]
    print(json.dumps({"messages": msgs, "chosen": r["chosen"], "rejected": {"role": "assistant", "content": r["rejected"]}}))
PYEOF
{ case_cfg full_ga2 "$T/o-chat" "s#path: .*toy_dpo_48.jsonl#path: $T/chat.jsonl#; s#type: llama3.intel#type: chat_template.default#; s/^max_steps: 8/max_steps: 2/"
  echo "chat_template: llama3"; } >chat.yml
check '"$AXOC" compile chat.yml -o chat.bin >chat.cout 2>&1 && "$AXORUN" chat.bin --quiet >chat.out 2>chat.err && python3 -c "
import json, sys
s = json.loads(open(sys.argv[1]).readline())
sys.exit(not abs(s[\"loss\"] - 0.6931472) < 1e-6)" o-chat/train_log.jsonl' "chat_template.default with chat_template: llama3 trains"
# a row without the strategy's field: the file and line named
head -3 "$FX/toy_dpo_48.jsonl" >bad.jsonl
echo '{"question": "What is 1 plus 1?", "chosen": "2", "rejected": null}' >>bad.jsonl
case_cfg full_ga2 "$T/o-bad" "s#path: .*toy_dpo_48.jsonl#path: $T/bad.jsonl#" >bad.yml
check '"$AXOC" compile bad.yml -o bad.bin >bad.cout 2>&1 && ! "$AXORUN" bad.bin --quiet >bad.out 2>bad.err && grep -q "bad.jsonl:4.*\"rejected\": expected a string, found null" bad.err' \
  "a row's missing completion: file, line and field named"
# resuming: the checkpoint carries the reference log-probs; a resumed run = the straight run bit for bit (also its
# evaluations), and a checkpoint of other data is refused
{ case_cfg full_eval "$T/o-rs"; echo "save_steps: 3"; } >rs.yml
check '"$AXOC" compile rs.yml -o rs.bin >/dev/null 2>&1 && "$AXORUN" rs.bin --quiet >rs.out 2>&1 && test -s o-rs/checkpoint-3/dpo_reference.bin' \
  "checkpoints carry the reference log-probabilities"
check '"$AXORUN" rs.bin --quiet --resume-from o-rs/checkpoint-3 --output-dir o-rs2 >rs2.out 2>rs2.err && cmp -s o-rs/model.safetensors o-rs2/model.safetensors && diff <(grep -v tokens_per_s o-rs/train_log.jsonl | sed "s/, \"tokens_per_s.*//") <(grep -v tokens_per_s o-rs2/train_log.jsonl | sed "s/, \"tokens_per_s.*//") >/dev/null' \
  "resumed at step 3: the straight run's model bit for bit, and its log"
case_cfg full_eval "$T/o-rs3" "s#path: .*toy_dpo_48.jsonl#path: $FX/toy_dpo_30.jsonl#" >rs3.yml
check '"$AXOC" compile rs3.yml -o rs3.bin >/dev/null 2>&1 && ! "$AXORUN" rs3.bin --quiet --resume-from o-rs/checkpoint-3 >rs3.out 2>rs3.err && grep -q "dpo_reference.bin: error: holds the reference log-probabilities of 43 training and 5 eval pairs of other data" rs3.err' \
  "resuming on other data: refused"
# Axolotl raises on an empty prompt, chosen or rejected; chatml.default takes the field names of the dataset's columns
printf '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "", "chosen": "b", "rejected": "c"}\n' >empty.jsonl
printf '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"input": "a", "chosen": "b", "rejected": "c"}\n' >mixed.jsonl
case_cfg full_ga2 "$T/o-e" "s#path: .*toy_dpo_48.jsonl#path: $T/empty.jsonl#; s#type: llama3.intel#type: passthrough#" >empty.yml
case_cfg full_ga2 "$T/o-m" "s#path: .*toy_dpo_48.jsonl#path: $T/mixed.jsonl#; s#type: llama3.intel#type: chatml#" >mixed.yml
check '"$AXOC" compile empty.yml -o empty.bin >/dev/null 2>&1 && ! "$AXORUN" empty.bin --quiet >e.out 2>e.err && grep -q "empty.jsonl:2.*the pair.s prompt is empty" e.err' \
  "an empty prompt: refused at its line, as Axolotl raises"
check '"$AXOC" compile mixed.yml -o mixed.bin >/dev/null 2>&1 && ! "$AXORUN" mixed.bin --quiet >m.out 2>m.err && grep -q "mixed.jsonl:2.*the row names its fields input/chosen/rejected, the file.s first row prompt/chosen/rejected" m.err' \
  "chatml.default: rows that name their fields otherwise are refused"
# the schedule's refusals before any step (Axolotl's RexLR), and the warnings of what Axolotl ignores under rl
case_cfg full_ga2 "$T/o-rex" 's/^lr_scheduler: cosine/lr_scheduler: rex/; s/^warmup_steps: 2/warmup_steps: 9/' >rex.yml
check '"$AXOC" compile rex.yml -o rex.bin >/dev/null 2>&1 && ! "$AXORUN" rex.bin --quiet >rex.out 2>rex.err && grep -q "rex: 9 warmup steps exceed the run.s 8 steps" rex.err' \
  "rex with more warmup than steps: refused before training"
{ case_cfg full_ga2 "$T/o-dl"; echo "dataloader_drop_last: true"; } >dl.yml
check '"$AXOC" compile dl.yml -o dl.bin >dl.cout 2>&1 && grep -q "dataloader_drop_last: ignored with rl: dpo" dl.cout' "dataloader_drop_last: ignored, with a warning"
finish
