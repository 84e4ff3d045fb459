#!/usr/bin/env bash
# val_set_size: a held-out split evaluated during the run. Evaluating must not
# change training: a run that evaluates every 5 steps trains the same losses
# and saves the same model, byte for byte, as one that evaluates only at the
# end, and both report the same final eval_loss; on 1 rank, 2 DDP ranks,
# ZeRO-3 on 2 ranks, and LoRA with dropout. Eval lines survive a resume.
# usage: eval.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

base() { # $1 eval_steps, $2 extra lines
  cat <<EOF
base_model: $SRC/configs/models/tiny-llama
datasets:
  - path: $SRC/configs/data/toy_count.jsonl
sequence_len: 128
sample_packing: true
micro_batch_size: 2
gradient_accumulation_steps: 2
max_steps: 12
learning_rate: 0.01
warmup_steps: 2
logging_steps: 1
seed: 7
val_set_size: 0.02
eval_steps: $1
$2
EOF
}
train_losses() { grep -v eval_loss "$1/train_log.jsonl" | grep -o '"loss": [^,]*'; }
last_eval() { grep eval_loss "$1/train_log.jsonl" | tail -1 | grep -o '"eval_loss": [^,]*'; }

for v in "1:" "2:" "2:deepspeed: $SRC/configs/deepspeed/zero3.json" "1:adapter: lora
lora_r: 4
lora_alpha: 8
lora_dropout: 0.2
lora_target_linear: true"; do
  ws=${v%%:*} extra=${v#*:}
  name="ws$ws-$(echo "$extra" | head -1 | sed 's/[^a-z0-9]//g' | cut -c1-12)"
  base 5 "$extra" >$name-a.yml
  base 1000 "$extra" >$name-b.yml
  check '"$AXOC" compile $name-a.yml --world-size $ws -o $name-a.bin 2>$name.cerr && "$AXOC" compile $name-b.yml --world-size $ws -o $name-b.bin 2>>$name.cerr' \
    "$name: compile"
  check '"$AXORUN" $name-a.bin --output-dir $name-a >$name-a.out 2>&1 && "$AXORUN" $name-b.bin --output-dir $name-b >$name-b.out 2>&1' \
    "$name: train"
  check 'test "$(grep -c eval_loss $name-a/train_log.jsonl)" = 3 && test "$(grep -c eval_loss $name-b/train_log.jsonl)" = 1' \
    "$name: evaluations at steps 5, 10 and the end; or only at the end"
  check 'cmp -s <(train_losses $name-a) <(train_losses $name-b) && test -n "$(train_losses $name-a)"' "$name: evaluating leaves the losses alone"
  w=model.safetensors
  [ -f $name-a/adapter_model.safetensors ] && w=adapter_model.safetensors
  check 'cmp -s $name-a/$w $name-b/$w' "$name: and the saved model"
  check 'test "$(last_eval $name-a)" = "$(last_eval $name-b)" && test -n "$(last_eval $name-a)"' "$name: the same final eval_loss"
done
check 'grep -q "samples held out (val_set_size)" ws1--a.out' "the split is announced"
check 'grep -q "^eval step 5 | epoch 0 | eval_loss" ws1--a.out' "eval lines on stdout"

# eval lines are kept in a checkpoint's history and in the resumed log
base 5 "save_steps: 6" >r.yml
check '"$AXOC" compile r.yml -o r.bin 2>/dev/null && "$AXORUN" r.bin --output-dir r --max-steps 12 >/dev/null 2>&1' "train with checkpoints"
check 'grep -q "\"eval_loss\"" r/checkpoint-6/trainer_state.json' "the checkpoint's log_history has the eval"
check '"$AXORUN" r.bin --output-dir r2 --resume-from r/checkpoint-6 >/dev/null 2>&1' "resume"
check 'test "$(grep -c eval_loss r2/train_log.jsonl)" = 3 && cmp -s <(grep eval_loss r/train_log.jsonl) <(grep eval_loss r2/train_log.jsonl)' \
  "the resumed run's evals equal the straight run's"

# bad values
base 5 "" | sed 's/^val_set_size: .*/val_set_size: 100000/' >e1.yml
check '"$AXOC" compile e1.yml -o e1.bin 2>/dev/null && ! "$AXORUN" e1.bin --output-dir e1 >/dev/null 2>e1.err && grep -q "leaves no training sample" e1.err' \
  "a split that leaves nothing to train"
base 0.5x "" >e2.yml
check '! "$AXOC" compile e2.yml -o e2.bin 2>e2.err && grep -q "eval_steps" e2.err' "a bad eval_steps"

finish
