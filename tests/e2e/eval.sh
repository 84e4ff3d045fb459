#!/usr/bin/env bash
# val_set_size: a held-out split evaluated during the run. Evaluating must not
# change training: a run that evaluates every 5 steps trains the same losses
# and saves the same model, byte for byte, as one that evaluates only at the
# end, and both report the same final eval_loss; on 1 rank, 2 DDP ranks,
# ZeRO-3 on 2 ranks, and LoRA with dropout. Eval lines survive a resume.
# early_stopping_patience / load_best_model_at_end follow HF Trainer's rules.
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
  check 'test "$(grep -c eval_loss $name-a/train_log.jsonl)" = 4 && test "$(grep -c eval_loss $name-b/train_log.jsonl)" = 2 && grep -q "\"step\": 0, \"epoch\": 0, \"eval_loss\"" $name-b/train_log.jsonl' \
    "$name: evaluations before the first step (eval_on_start, as Axolotl asks HF for it), at steps 5, 10 and the end; or at the start and the end"
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
check 'test "$(grep -c eval_loss r2/train_log.jsonl)" = 4 && cmp -s <(grep eval_loss r/train_log.jsonl) <(grep eval_loss r2/train_log.jsonl)' \
  "the resumed run's evals equal the straight run's"

# early_stopping_patience and load_best_model_at_end, as HF Trainer does them
# on eval_loss: the stop step and the best checkpoint follow from the eval
# history by HF's rules (hf_expect), the final model is that checkpoint's,
# save_total_limit keeps it, and a resumed run stops at the same step with
# the same model.
es() { # $1 extra lines
  base 2 "" | grep -v -E '^(max_steps|gradient_accumulation_steps|learning_rate|warmup_steps|sequence_len):'
  echo "sequence_len: 64"
  printf 'max_steps: 60\ngradient_accumulation_steps: 1\nlearning_rate: 0.2\nlr_scheduler: constant\nsave_steps: 2\n%s\n' "$1"
}
# HF's rules: best_metric / best_global_step at every eval (strictly better),
# best_model_checkpoint = the newest save at best_global_step, early stop when
# `patience` evals in a row are not better than the best before them.
hf_expect() { # $1 train_log.jsonl $2 patience $3 save_steps $4 last step -> "STOP BESTCKPT"
  python3 - "$@" <<'PYEOF'
import json, sys
log, patience, save, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
best = None; best_step = 0; best_ck = 0; count = 0; stop = 0
for line in open(log):
    r = json.loads(line)
    if "eval_loss" not in r or r["step"] == 0: continue  # eval_on_start sets no best and counts no patience
    st, v = r["step"], r["eval_loss"]
    better = best is None or v < best
    if patience:
        count = 0 if better else count + 1
        if count >= patience and not stop: stop = st
    if better: best, best_step = v, st
    if st % save == 0 and best_step == st: best_ck = st
    if stop: break
print(stop or last, best_ck)
PYEOF
}
es "early_stopping_patience: 2" >es.yml
check '"$AXOC" compile es.yml -o es.bin 2>es.cerr && "$AXORUN" es.bin --output-dir es >es.out 2>&1' "early stopping: train"
read -r es_stop es_best <<<"$(hf_expect es/train_log.jsonl 2 2 60 2>/dev/null)"
check 'test -n "$es_stop" && test "$es_stop" -lt 60 && grep -q "^axorun: early stopping at step $es_stop: eval_loss has not improved" es.out' \
  "stops at the step HF's EarlyStoppingCallback stops at ($es_stop)"
check 'test "$(grep -v eval_loss es/train_log.jsonl | tail -1 | grep -o "\"step\": [0-9]*")" = "\"step\": $es_stop"' "and trains no further"
check 'test "$es_best" -gt 0 && test "$es_best" != "$es_stop" && cmp -s es/model.safetensors es/checkpoint-$es_best/model.safetensors' \
  "the final model is the best checkpoint's (checkpoint-$es_best), as load_best_model_at_end loads it"
check 'grep -q "\"best_model_checkpoint\": \".*checkpoint-$es_best\"" es/checkpoint-$es_stop/trainer_state.json' \
  "trainer_state.json names the best checkpoint"
# resumed from the last checkpoint before the stop: the patience count and best carry over
r_from=$((es_stop - 2)) # its patience count is 1
check '"$AXORUN" es.bin --output-dir es-r --resume-from es/checkpoint-$r_from >es-r.out 2>&1 && grep -q "early stopping at step $es_stop:" es-r.out && cmp -s es/model.safetensors es-r/model.safetensors' \
  "resumed from checkpoint-$r_from: stops at the same step with the same final model"
# on 2 ranks with ZeRO-3: every rank stops at the same step and loads its rows of the best checkpoint
es "early_stopping_patience: 2
deepspeed: $SRC/configs/deepspeed/zero3.json" >es3.yml
check '"$AXOC" compile es3.yml --world-size 2 -o es3.bin 2>/dev/null && "$AXORUN" es3.bin --output-dir es3 >es3.out 2>&1' "ZeRO-3 x 2: train"
read -r z_stop z_best <<<"$(hf_expect es3/train_log.jsonl 2 2 60 2>/dev/null)"
check 'test -n "$z_stop" && test "$z_stop" -lt 60 && grep -q "early stopping at step $z_stop:" es3.out && test "$z_best" -gt 0 && cmp -s es3/model.safetensors es3/checkpoint-$z_best/model.safetensors' \
  "ZeRO-3 x 2: stops where HF would ($z_stop) with checkpoint-$z_best's model"
# save_total_limit 1: the best checkpoint is kept while later ones rotate, and it alone stays at the end
es "early_stopping_patience: 2
save_total_limit: 1" >es1.yml
check '"$AXOC" compile es1.yml -o es1.bin 2>/dev/null && "$AXORUN" es1.bin --output-dir es1 >/dev/null 2>&1 && test "$(ls -d es1/checkpoint-* | tr "\n" " ")" = "es1/checkpoint-$es_best " && cmp -s es/model.safetensors es1/model.safetensors' \
  "save_total_limit 1 keeps only the best checkpoint"
# load_best_model_at_end alone: 4 steps, evals at 2 and 4, saves every 2
es "load_best_model_at_end: true" | sed 's/^max_steps: .*/max_steps: 4/; s/^save_steps: .*/save_steps: 2/; s/^learning_rate: .*/learning_rate: 0.1/' >lb.yml
check '"$AXOC" compile lb.yml -o lb.bin 2>/dev/null && "$AXORUN" lb.bin --output-dir lb >lb.out 2>&1' "load_best_model_at_end: train"
read -r lb_stop lb_best <<<"$(hf_expect lb/train_log.jsonl 0 2 4 2>/dev/null)"
check 'test "$lb_stop" = 4 && test "$lb_best" = 2 && cmp -s lb/model.safetensors lb/checkpoint-2/model.safetensors && grep -q "final model is lb/checkpoint-2" lb.out' \
  "the final model is checkpoint-2's (its eval_loss is lower than step 4's)"
# lr_scheduler: reduce_lr_on_plateau: torch's ReduceLROnPlateau stepped with eval_loss after each evaluation (not
# eval_on_start's), as HF Trainer steps it; the lr of every step replayed from the run's own eval history
es "lr_scheduler_kwargs:
  patience: 0
  factor: 0.5" | sed 's/^lr_scheduler: constant/lr_scheduler: reduce_lr_on_plateau/; s/^max_steps: 60/max_steps: 24/' >pl.yml
plateau_ok() { # $1 train_log.jsonl: every step's lr follows from the evaluations before it; at least one reduction
  python3 - "$1" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lr, best, bad, cuts, ok = 0.2, float("inf"), 0, 0, True
for r in rows:
    if "eval_loss" in r:
        if r["step"] == 0: continue
        if r["eval_loss"] < best * (1 - 1e-4): best, bad = r["eval_loss"], 0
        else: bad += 1
        if bad > 0:
            bad = 0
            if lr - lr * 0.5 > 1e-8: lr, cuts = lr * 0.5, cuts + 1
    elif "lr" in r:
        ok &= abs(r["lr"] - lr) <= 1e-5 * lr
print("cuts", cuts, "ok", ok, file=sys.stderr)
sys.exit(0 if ok and cuts >= 1 else 1)
PYEOF
}
check '"$AXOC" compile pl.yml -o pl.bin 2>/dev/null && "$AXORUN" pl.bin --output-dir pl >pl.out 2>&1 && plateau_ok pl/train_log.jsonl && grep -q "reduce_lr_on_plateau: eval_loss has not improved" pl.out' \
  "reduce_lr_on_plateau: each step's lr is ReduceLROnPlateau's over the eval history (halved after an evaluation without improvement)"
check '"$AXORUN" pl.bin --output-dir pl-r --resume-from pl/checkpoint-18 >/dev/null 2>&1 && cmp -s pl/model.safetensors pl-r/model.safetensors && cmp -s <(sed "s/, .tokens_per_s.*//" pl/train_log.jsonl) <(sed "s/, .tokens_per_s.*//" pl-r/train_log.jsonl)' \
  "reduce_lr_on_plateau resumed at step 18 (after a cut): its state carries over (the same lrs and final model)"

# lr_scheduler: greedy: transformers' GreedyLR stepped with eval_loss after each evaluation as HF steps it (as
# reduce_lr_on_plateau); every step's lr replayed from the eval history by GreedyLR's rules (written out below:
# smoothing over a window of 2, doubling after an evaluation 3% better than the best, halving after one that is
# not, cooldown and warmup of 1 evaluation, lrs clamped to [0.002, 0.16]); a run resumed where the warmup counter
# is 1 and the window full carries them over (the same lrs and model; without them, another model)
es "lr_scheduler_kwargs: {patience: 0, factor: 0.5, min_lr: 0.002, max_lr: 0.16, smooth: true, window_size: 2, warmup: 1, cooldown: 1, threshold_mode: rel, threshold: 0.03}
save_total_limit: 30" | sed 's/^lr_scheduler: constant/lr_scheduler: greedy/; s/^max_steps: 60/max_steps: 24/; s/^learning_rate: 0.2/learning_rate: 0.02/' >gr.yml
greedy_ok() { # $1 train_log.jsonl: every step's lr follows from the evaluations before it; both moves happen
  python3 - "$1" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lr, best, bad, good, cool, warm, win, ups, downs, ok = 0.02, float("inf"), 0, 0, 0, 0, [], 0, 0, True
for r in rows:
    if "eval_loss" in r:
        if r["step"] == 0: continue
        win = (win + [r["eval_loss"]])[-2:]
        cur = sum(win) / len(win)
        if cool > 0: cool, bad, good = cool - 1, 0, 0
        elif warm > 0: warm, bad, good = warm - 1, 0, 0
        else:
            if cur < best * (1 - 0.03): best, bad, good = cur, 0, good + 1
            else: bad, good = bad + 1, 0
            if good > 0:
                new = min(lr / 0.5, 0.16)
                if new - lr > 1e-8: lr, ups = new, ups + 1
                warm, good = 1, 0
            elif bad > 0:
                new = max(lr * 0.5, 0.002)
                if lr - new > 1e-8: lr, downs = new, downs + 1
                cool, bad = 1, 0
    elif "lr" in r:
        ok &= abs(r["lr"] - lr) <= 1e-5 * lr
print("ups", ups, "downs", downs, "ok", ok, file=sys.stderr)
sys.exit(0 if ok and ups >= 2 and downs >= 2 else 1)
PYEOF
}
check '"$AXOC" compile gr.yml -o gr.bin 2>/dev/null && "$AXORUN" gr.bin --output-dir gr >gr.out 2>&1 && greedy_ok gr/train_log.jsonl && grep -q "greedy: lr" gr.out' \
  "greedy: each step's lr is GreedyLR's over the eval history (raised and lowered, smoothed, cooldown and warmup)"
check '"$AXORUN" gr.bin --output-dir gr-r --resume-from gr/checkpoint-14 >/dev/null 2>&1 && grep -q "\"warmup\": 1" gr/checkpoint-14/trainer_state.json && cmp -s gr/model.safetensors gr-r/model.safetensors && cmp -s <(sed "s/, .tokens_per_s.*//" gr/train_log.jsonl) <(sed "s/, .tokens_per_s.*//" gr-r/train_log.jsonl)' \
  "greedy resumed at step 14: its window and warmup counter carry over (the same lrs and final model)"
sed 's/threshold: 0.03}/threshold: 0.05}/' gr.yml >gr2.yml
check '"$AXOC" compile gr2.yml -o gr2.bin 2>/dev/null && ! "$AXORUN" gr2.bin --output-dir gr-x --resume-from gr/checkpoint-14 >gr2.out 2>&1 && grep -q "lr_scheduler_kwargs.threshold was 0.029999999999999999 when this checkpoint was saved and is 0.050000000000000003 now" gr2.out' \
  "greedy resumed under another threshold: refused (HF restores the scheduler's arguments from its checkpoint)"
es "" | sed 's/^lr_scheduler: constant/lr_scheduler: greedy/; /^val_set_size/d' >gr0.yml
check '! "$AXOC" compile gr0.yml -o gr0.bin 2>gr0.err && grep -q "lr_scheduler: greedy moves the lr as eval_loss improves or stalls, and HF requires an evaluation" gr0.err' \
  "greedy without an evaluation: an error"

# test_datasets: evaluated instead of a split. A dataset of text (alpaca)
# gives the same eval_loss as its rows pre-tokenized by axoc preprocess.
head -40 "$SRC/configs/data/toy_alpaca.jsonl" >test_alpaca.jsonl
td() { # $1 the test_datasets entry
  sed -e "s#\.\./#$SRC/configs/#g" -e 's/^max_steps: .*/max_steps: 4/' -e 's/^logging_steps: .*/logging_steps: 1/' \
    -e 's/^warmup_steps: .*/warmup_steps: 1/' "$SRC/configs/examples/alpaca.yml"
  printf 'eval_steps: 2\ntest_datasets:\n%s\n' "$1"
}
td "  - path: $T/test_alpaca.jsonl
    type: alpaca" >t1.yml
sed -e "s#path: .*toy_alpaca.jsonl#path: $T/test_alpaca.jsonl#" t1.yml | sed '/^test_datasets:/,$d' >tp.yml
check '"$AXOC" preprocess tp.yml -n 0 -o test_pre.jsonl >/dev/null 2>&1 && test -s test_pre.jsonl' "preprocess the test rows"
td "  - path: $T/test_pre.jsonl" >t2.yml
check '"$AXOC" compile t1.yml -o t1.bin 2>/dev/null && "$AXOC" compile t2.yml -o t2.bin 2>/dev/null' "compile with test_datasets"
check '"$AXORUN" t1.bin --output-dir t1 >t1.out 2>&1 && "$AXORUN" t2.bin --output-dir t2 >t2.out 2>&1' "train with test_datasets"
check 'grep -q "samples to evaluate (test_datasets)" t1.out && test "$(grep -c eval_loss t1/train_log.jsonl)" = 3' \
  "test_datasets evaluated at the start, at steps 2 and 4"
check 'cmp -s <(grep eval_loss t1/train_log.jsonl) <(grep eval_loss t2/train_log.jsonl) && cmp -s t1/model.safetensors t2/model.safetensors' \
  "text and pre-tokenized test rows: the same eval_loss, and training untouched"
{ td "  - path: $T/test_pre.jsonl"; echo "val_set_size: 0.1"; } >t3.yml
check '! "$AXOC" compile t3.yml -o t3.bin 2>t3.err && grep -q "val_set_size: expected 0 with test_datasets" t3.err' \
  "val_set_size and test_datasets together: an error, as Axolotl's"

# eval_loss as HF Trainer computes it: the rows in order, in batches of
# eval_batch_size; each batch's loss is its token mean; eval_loss is the mean
# over rows of their batch's loss. Five rows of different lengths, each
# evaluated alone (learning_rate 1e-30: the model stays the initial one) give
# their own loss L_i over n_i tokens; the runs on all five must equal what
# HF's rule makes of those, which is not the plain token mean.
python3 - <<'PYEOF'
import json, random
rnd = random.Random(11)
with open("hf_rows.jsonl", "w") as f:
    for n, masked in ((9, 0), (31, 12), (14, 3), (40, 0), (6, 2)):
        ids = [1] + [rnd.randrange(4, 256) for _ in range(n - 1)]
        f.write(json.dumps({"input_ids": ids, "labels": [-100] * masked + ids[masked:]}) + "\n")
PYEOF
hfe() { # $1 test rows, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\n' \
    "$SRC/configs/models/tiny-llama" "$SRC/configs/data/toy_count.jsonl"
  case "$2" in *sample_packing:*) ;; *) echo "sample_packing: false" ;; esac
  printf 'max_steps: 1\nlearning_rate: 1.0e-30\nseed: 7\neval_steps: 1\ntest_datasets:\n  - path: %s\n%s\n' "$1" "$2"
}
ev() { grep eval_loss "$1/train_log.jsonl" | tail -1 | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["eval_loss"], r["eval_tokens"])'; }
ok=1
for i in 0 1 2 3 4; do
  sed -n "$((i + 1))p" hf_rows.jsonl >hf_row$i.jsonl
  hfe "$T/hf_row$i.jsonl" "" >hf$i.yml
  { "$AXOC" compile hf$i.yml -o hf$i.bin 2>/dev/null && "$AXORUN" hf$i.bin --output-dir hf$i >/dev/null 2>&1 && ev hf$i >hf$i.ev; } || ok=0
done
check 'test $ok = 1' "each row evaluated alone"
# Axolotl evaluates the test rows in the order its merged-dataset shuffle leaves them (Hugging Face datasets'
# shuffle(seed): numpy's default_rng(7).permutation(5) = 2 0 4 1 3), or in file order with
# shuffle_merged_datasets: false
# A batch "1:0" is one row topped up with the rows at positions 0 (comma-separated) of the order: on several ranks
# accelerate (even_batches) fills a short last batch from the rows the first rounds began with; they count in that
# batch's token mean, not as rows of their own (gather_for_metrics cuts the repeats).
hf_rule() { # $1 batch sizes, e.g. "2 2 1", $2 the rows' order -> HF's eval_loss and the token mean
  python3 - "$@" <<'PYEOF'
import sys
order = [int(x) for x in sys.argv[2].split()]
L, n = zip(*[map(float, open("hf%d.ev" % i).read().split()) for i in order])
k, tot, rows = 0, 0.0, 0
for spec in sys.argv[1].split():
    b, _, extra = spec.partition(":")
    b = int(b)
    idx = list(range(k, k + b)) + [int(x) for x in extra.split(",") if x]; k += b
    tot += b * sum(L[i] * n[i] for i in idx) / sum(n[i] for i in idx); rows += b
print("%.9g %.9g" % (tot / rows, sum(l * c for l, c in zip(L, n)) / sum(n)))
PYEOF
}
close() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 2e-5 * abs(b))" "$1" "$2"; }
read -r hf2 tokmean <<<"$(hf_rule "2 2 1" "2 0 4 1 3")"
read -r hf3 _ <<<"$(hf_rule "3 2" "2 0 4 1 3")"
# 2 ranks: the last batch (row 3) topped up with the first row evaluated (row 2), as accelerate does
read -r hf2r2 _ <<<"$(hf_rule "2 2 1:0" "2 0 4 1 3")"
read -r hf2f _ <<<"$(hf_rule "2 2 1" "0 1 2 3 4")"
# dataloader_drop_last (Axolotl asks for it when sample_packing packs and eval_sample_packing is false): HF drops the
# last incomplete eval batch, row 3 here
read -r hf2d _ <<<"$(hf_rule "2 2" "2 0 4 1")"
check '! close "$hf2" "$tokmean" && ! close "$hf3" "$hf2" && ! close "$hf2f" "$hf2" && ! close "$hf2r2" "$hf2"' "HF's rule differs from the token mean here, the order matters, and so does accelerate's top-up on 2 ranks ($hf2, $hf3, $hf2f, $hf2r2 vs $tokmean)"
# eval_sequence_len: Axolotl drops test samples longer than it (rows 1 and 3, of 31 and 40 tokens, at 20), so the
# shuffled test rows are 2 0 4, in batches of 2 and 1
read -r want204 _ <<<"$(hf_rule "2 1" "2 0 4")"
hfe "$T/hf_rows.jsonl" "eval_sequence_len: 20" >esl.yml
check '"$AXOC" compile esl.yml -o esl.bin 2>/dev/null && "$AXORUN" esl.bin --output-dir esl >esl.out 2>&1 && grep -q "3 samples to evaluate" esl.out && close "$(ev esl | cut -d" " -f1)" "$want204"' \
  "eval_sequence_len 20: the longer test samples dropped, as Axolotl drops them ($want204)"
hfe "$T/hf_rows.jsonl" "eval_sequence_len: 100" >esl2.yml
check '! "$AXOC" compile esl2.yml -o esl2.bin 2>esl2.err && grep -q "eval_sequence_len: 100 is longer than sequence_len 64" esl2.err' \
  "an eval_sequence_len past sequence_len: an error (axo evaluates rows of sequence_len)"
# An eval_batch_size far past the eval set is one batch of all the rows (HF's
# rule is then the token mean), computed without the padding rows it names.
for v in "2:1:" "3:1:eval_batch_size: 3" "2:2:" "2:2:sequence_parallel_degree: 2" "drop:1:sample_packing: true
eval_sample_packing: false" "drop:1:dataloader_drop_last: true" "2:1:sample_packing: true
eval_sample_packing: false
dataloader_drop_last: false" "all:1:sample_packing: true" "file:1:shuffle_merged_datasets: false" "big:1:eval_batch_size: 30000000" "big:2:eval_batch_size: 30000000
deepspeed: $SRC/configs/deepspeed/zero3.json"; do
  E=${v%%:*} r=${v#*:} ws=${r%%:*} extra=${r#*:}
  want=$hf2
  [ "$E" = 2 ] && [ "$ws" = 2 ] && [ -z "$extra" ] && want=$hf2r2
  [ "$E" = 3 ] && want=$hf3
  [ "$E" = file ] && want=$hf2f
  [ "$E" = drop ] && want=$hf2d
  [ "$E" = all ] || [ "$E" = big ] && want=$tokmean # packed: rows of 9+31+14 and 40+6 tokens, one batch of both
  name=hfall-$E-$ws-$(echo "$extra" | tr -dc 'a-z' | cut -c1-20)
  hfe "$T/hf_rows.jsonl" "$extra" >$name.yml
  check '"$AXOC" compile $name.yml --world-size $ws -o $name.bin 2>/dev/null && "$AXORUN" $name.bin --output-dir $name >/dev/null 2>&1 && close "$(ev $name | cut -d" " -f1)" "$want"' \
    "eval_loss on ${ws} rank(s), $(echo "$extra" | tr '\n' ' ')= HF's ($want)"
done

# val_set_size holds out the samples Axolotl does: its merged data in the order of HF datasets' shuffle(seed)
# (numpy's default_rng(7).permutation(6) = 5 2 0 4 1 3), less the samples it drops first (row 5: 70 tokens,
# longer than sequence_len), and of those the last ceil(0.3 x 5) = 2, rows 1 and 3, evaluated in that order
python3 - <<'PYEOF'
import json
with open("hf_rows.jsonl") as f, open("split_rows.jsonl", "w") as g:
    g.write(f.read())
    g.write(json.dumps({"input_ids": [1] + [7] * 69}) + "\n")
PYEOF
printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nsample_packing: false\n' \
  "$SRC/configs/models/tiny-llama" "$T/split_rows.jsonl" >split.yml
printf 'max_steps: 1\nlearning_rate: 1.0e-30\nseed: 7\nval_set_size: 0.3\neval_steps: 1\n' >>split.yml
read -r want13 _ <<<"$(hf_rule "2" "1 3")"
read -r want24 _ <<<"$(hf_rule "2" "2 4")"
check '"$AXOC" compile split.yml -o split.bin 2>/dev/null && "$AXORUN" split.bin --output-dir split >split.out 2>&1 && grep -q "2 samples held out" split.out && close "$(ev split | cut -d" " -f1)" "$want13" && ! close "$want24" "$want13"' \
  "val_set_size: Axolotl's held-out rows (1 and 3 of the shuffled, filtered data: eval_loss $want13)"
sed 's/^val_set_size: 0.3/val_set_size: 2/' split.yml >split2.yml
check '"$AXOC" compile split2.yml -o split2.bin 2>/dev/null && "$AXORUN" split2.bin --output-dir split2 >/dev/null 2>&1 && close "$(ev split2 | cut -d" " -f1)" "$want13"' \
  "val_set_size: 2 (a count) holds out the same rows"

# dataset_exact_deduplication: rows 5 and 6 repeat rows 2 and 0; in the order default_rng(7).permutation(8) =
# 0 6 7 2 4 5 1 3, with row 7 too long, the copies go and ceil(0.4 x 5) = 2 rows, 1 and 3, are held out
# (without deduplication, ceil(0.4 x 7) = 3: rows 5, 1, 3)
python3 - <<'PYEOF'
import json
rows = open("hf_rows.jsonl").read().splitlines()
with open("dup_rows.jsonl", "w") as g:
    g.write("\n".join(rows + [rows[2], rows[0], json.dumps({"input_ids": [1] + [7] * 69})]) + "\n")
PYEOF
sed -e "s#split_rows.jsonl#dup_rows.jsonl#" -e 's/^val_set_size: 0.3/val_set_size: 0.4/' split.yml >dup.yml
echo "dataset_exact_deduplication: true" >>dup.yml
read -r want213 _ <<<"$(hf_rule "2 1" "2 1 3")"
check '"$AXOC" compile dup.yml -o dup.bin 2>/dev/null && "$AXORUN" dup.bin --output-dir dup >dup.out 2>&1 && grep -q "2 samples held out" dup.out && close "$(ev dup | cut -d" " -f1)" "$want13" && ! close "$want213" "$want13"' \
  "dataset_exact_deduplication: the copies go before the split, as Axolotl's rows 1 and 3 are held out"

# dataset_shard_num / dataset_shard_idx: HF datasets' contiguous shard of that shuffled, filtered order
# (2 0 4 | 1 3): shard 1 is rows 1 and 3, and val_set_size 0.5 holds out row 3 (1, a fraction to Axolotl, would leave
# nothing to train on); shard 0 trains on 3 rows
sed -e 's/^val_set_size: 0.3/val_set_size: 0.5/' -e 's/^micro_batch_size: 2/micro_batch_size: 1/' split.yml >shard.yml
printf 'dataset_shard_num: 2\ndataset_shard_idx: 1\n' >>shard.yml
read -r want3 _ <<<"$(hf_rule "1" "3")"
check '"$AXOC" compile shard.yml -o shard.bin 2>/dev/null && "$AXORUN" shard.bin --output-dir shard >shard.out 2>&1 && grep -q "axorun: 1 steps (1 per epoch)" shard.out && close "$(ev shard | cut -d" " -f1)" "$want3"' \
  "dataset_shard_num 2, idx 1: Axolotl's shard (rows 1, 3), row 3 held out, one training row"
grep -v "^val_set_size" shard.yml | sed 's/^dataset_shard_idx: 1/dataset_shard_idx: 0/' >shard0.yml
check '"$AXOC" compile shard0.yml -o shard0.bin 2>/dev/null && "$AXORUN" shard0.bin --output-dir shard0 >shard0.out 2>&1 && grep -q "shard 0 of 2 (dataset_shard_num): 3 of 6 samples" shard0.out' \
  "shard 0 without val_set_size: 3 of the 5 samples Axolotl keeps"
printf 'dataset_shard_idx: 2\n' | cat shard0.yml - | grep -v "^dataset_shard_idx: 0" >shard2.yml
check '! "$AXOC" compile shard2.yml -o shard2.bin 2>shard2.err && grep -q "dataset_shard_idx: expected an index below dataset_shard_num 2, found 2" shard2.err' \
  "an index past the shards: an error"

# The training order and batches, read from the per-step losses of a model that does not move (learning_rate 1e-30):
# each step's loss is the token mean of its rows' losses (hf<i>.ev). curriculum_sampling trains in Axolotl's
# prepared order (HF's SequentialSampler): a lone dataset unshuffled; merged datasets in HF datasets'
# concatenate_datasets(...).shuffle(7) order, 2 0 4 1 3, and with shuffle_before_merging_datasets each one shuffled
# first: concatenate_datasets([a.shuffle(7), b.shuffle(7)]).shuffle(7) = 1 0 4 2 3 (a = rows 0-2, b = rows 3-4;
# computed with datasets 5.2). An epoch's short last step is trained (5 rows in batches of 2: 3 steps, Axolotl's
# max_steps = ceil(5 / 2)); on 2 ranks accelerate tops the last batch up from the epoch's start (row 0 again); with
# dataloader_drop_last the epoch has 2 steps and Axolotl's 3rd step is the next epoch's first.
head -3 hf_rows.jsonl >cur_a.jsonl
tail -2 hf_rows.jsonl >cur_b.jsonl
cur() { # $1 name, $2 datasets (paths), $3 extra lines
  { printf 'base_model: %s
datasets:
' "$SRC/configs/models/tiny-llama"
    for f in $2; do printf '  - path: %s
' "$T/$f"; done
    printf 'sequence_len: 64
sample_packing: false
learning_rate: 1.0e-30
seed: 7
logging_steps: 1
'
    printf 'curriculum_sampling: true
%s
' "$3"; } >"$1.yml"
  "$AXOC" compile "$1.yml" -o "$1.bin" ${4:+--world-size $4} 2>/dev/null && "$AXORUN" "$1.bin" --output-dir "$1" >"$1.out" 2>&1
}
steps_are() { # $1 run, $2 the steps' rows, e.g. "0,1 2,3 4": its logged losses are their token means, and no more steps
  python3 - "$@" <<'PYEOF'
import json, sys
got = [r["loss"] for r in map(json.loads, open(sys.argv[1] + "/train_log.jsonl")) if "loss" in r and "eval_loss" not in r]
ev = [list(map(float, open("hf%d.ev" % i).read().split())) for i in range(5)]
want = []
for g in sys.argv[2].split():
    rows = [int(x) for x in g.split(",")]
    want.append(sum(ev[i][0] * ev[i][1] for i in rows) / sum(ev[i][1] for i in rows))
ok = len(got) == len(want) and all(abs(a - b) <= 2e-5 * abs(b) for a, b in zip(got, want))
if not ok:
    print("steps", got, "want", want, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}
check 'cur cur1 hf_rows.jsonl "micro_batch_size: 2" && grep -q "axorun: 3 steps (3 per epoch)" cur1.out && steps_are cur1 "0,1 2,3 4"' \
  "curriculum_sampling: a lone dataset in file order, its short last step trained (3 steps of 2, 2, 1 rows)"
check 'cur cur2 "cur_a.jsonl cur_b.jsonl" "micro_batch_size: 1" && steps_are cur2 "2 0 4 1 3"' \
  "curriculum_sampling over two datasets: HF datasets' merged shuffle order"
check 'cur cur3 "cur_a.jsonl cur_b.jsonl" "micro_batch_size: 1
shuffle_before_merging_datasets: true" && steps_are cur3 "1 0 4 2 3"' \
  "shuffle_before_merging_datasets: each dataset shuffled before the merge, as HF datasets orders them"
check 'cur cur4 hf_rows.jsonl "micro_batch_size: 1" 2 && grep -q "axorun: 3 steps (3 per epoch)" cur4.out && steps_are cur4 "0,1 2,3 4,0"' \
  "2 ranks: accelerate's top-up of the last batch from the epoch's start"
check 'cur cur5 hf_rows.jsonl "micro_batch_size: 2
dataloader_drop_last: true" && grep -q "axorun: 3 steps (2 per epoch)" cur5.out && steps_are cur5 "0,1 2,3 0,1"' \
  "dataloader_drop_last: the short batch dropped; Axolotl's max_steps (3) runs into the next epoch"
# group_by_length (HF's LengthGroupedSampler; runtime/data.c, checked against transformers in test_data): in
# batches of 1 every megabatch is one sample, so only the longest sample (row 3, 40 tokens) moves, to the front;
# curriculum_sampling's sequential order comes first in Axolotl, and group_by_length then changes nothing
check 'cur glen hf_rows.jsonl "micro_batch_size: 1
group_by_length: true" && sed -i "/^curriculum_sampling/d" glen.yml && "$AXOC" compile glen.yml -o glen.bin 2>/dev/null && "$AXORUN" glen.bin --output-dir glen --overwrite >/dev/null 2>&1 && python3 -c "import json,sys; r=[json.loads(l) for l in open(\"glen/train_log.jsonl\")]; r=[x for x in r if \"eval_loss\" not in x]; L=float(open(\"hf3.ev\").read().split()[0]); sys.exit(not (len(r) == 5 and abs(r[0][\"loss\"] - L) <= 2e-5 * L))"' \
  "group_by_length: the longest sample is the first batch"
check 'cur glen2 hf_rows.jsonl "micro_batch_size: 2
group_by_length: true" && steps_are glen2 "0,1 2,3 4"' \
  "group_by_length under curriculum_sampling: the sequential order stays"
check 'cur cur6 hf_rows.jsonl "micro_batch_size: 2
gradient_accumulation_steps: 2
num_epochs: 2" && grep -q "axorun: 3 steps (2 per epoch)" cur6.out && steps_are cur6 "0,1,2,3 4 0,1,2,3"' \
  "num_epochs 2 of 5 rows, global batch 4: Axolotl's ceil(10 / 4) = 3 steps; an epoch's last step holds 1 row"
# Without curriculum_sampling the order is HF Trainer's RandomSampler under accelerate over Axolotl's prepared set:
# merge_datasets shuffles a lone dataset too (HF datasets' shuffle(7): rows 2 0 4 1 3), and the sampler takes
# torch.randperm(5) of a CPU generator seeded with seed + epoch of that, 0 1 3 2 4 (seed 7) then 3 1 2 4 0 (seed 8),
# so rows 2 0 1 4 3 then 1 0 4 3 2 (what Axolotl 0.19's merge_datasets and transformers 5.16's own train dataloader
# give; test_data checks the permutations against that dataloader)
check 'cur shuf1 hf_rows.jsonl "micro_batch_size: 1
num_epochs: 2" && sed -i "/^curriculum_sampling/d" shuf1.yml && "$AXOC" compile shuf1.yml -o shuf1.bin 2>/dev/null && "$AXORUN" shuf1.bin --output-dir shuf1 --overwrite >/dev/null 2>&1 && steps_are shuf1 "2 0 1 4 3 1 0 4 3 2"' \
  "the shuffled order of each epoch is HF Trainer's (torch.randperm seeded with seed + epoch)"
check 'cur shuf2 hf_rows.jsonl "micro_batch_size: 1" 2 && sed -i "/^curriculum_sampling/d" shuf2.yml && "$AXOC" compile shuf2.yml --world-size 2 -o shuf2.bin 2>/dev/null && "$AXORUN" shuf2.bin --output-dir shuf2 --overwrite >/dev/null 2>&1 && steps_are shuf2 "2,0 1,4 3,2"' \
  "2 ranks: the same order, sharded by batch, the last batch topped up from the epoch's start"

# Packed rows: each epoch packs its own shuffle, so epochs differ in rows (here 22 to 24 of 40 samples): an epoch has
# its own steps, and a later epoch with fewer rows than the first is never read past its end (it was, before). The
# run has Axolotl's packed step count, floor(max(1, packs / global batch) x num_epochs), its packs being its bins
# (below).
python3 - <<'PYEOF'
import json, random
rnd = random.Random(1)
with open("pk_rows.jsonl", "w") as f:
    for _ in range(40):
        f.write(json.dumps({"input_ids": [rnd.randrange(3, 200) for _ in range(rnd.randint(20, 100))]}) + "\n")
with open("full_rows.jsonl", "w") as f:
    for _ in range(5):
        f.write(json.dumps({"input_ids": [rnd.randrange(3, 200) for _ in range(64)]}) + "\n")
PYEOF
printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 128\nsample_packing: true\nmicro_batch_size: 1\n' \
  "$SRC/configs/models/tiny-llama" "$T/pk_rows.jsonl" >pk.yml
printf 'num_epochs: 4\nlearning_rate: 1.0e-3\nlogging_steps: 1\nseed: 6\n' >>pk.yml
epochs_ok() { # $1 run: steps 1..total in order, epochs 0..3 each a run of consecutive steps, a later one shorter than the first
  python3 - "$1" <<'PYEOF'
import json, sys
r = [x for x in map(json.loads, open(sys.argv[1] + "/train_log.jsonl")) if "loss" in x]
steps, eps = [x["step"] for x in r], [x["epoch"] for x in r]
n = [eps.count(e) for e in range(max(eps) + 1)]
sys.exit(0 if steps == list(range(1, len(r) + 1)) and eps == sorted(eps) and max(eps) >= 3 and min(n) > 0 and min(n[1:3]) < n[0] else 1)
PYEOF
}
check '"$AXOC" compile pk.yml -o pk.bin 2>/dev/null && "$AXORUN" pk.bin --output-dir pk >pk.out 2>&1 && epochs_ok pk' \
  "packing over 4 epochs: each epoch its own rows and steps, none read past its end"
# resumed in the third epoch (after epochs of 24 and 22 steps, where a uniform epoch length would place it elsewhere):
# the same epochs and rows, the same final model
echo "save_steps: 50" >>pk.yml
check '"$AXOC" compile pk.yml -o pkr.bin 2>/dev/null && "$AXORUN" pkr.bin --output-dir pks >/dev/null 2>&1 && "$AXORUN" pkr.bin --output-dir pkr --resume-from pks/checkpoint-50 >pkr.out 2>&1 && cmp -s pks/model.safetensors pkr/model.safetensors && cmp -s pks/model.safetensors pk/model.safetensors && cmp -s <(sed "s/, .tokens_per_s.*//" pks/train_log.jsonl) <(sed "s/, .tokens_per_s.*//" pkr/train_log.jsonl)' \
  "packed, resumed from step 50 (the third epoch): the straight run's log and model"
cp -r pks/checkpoint-50 old-50
python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); del j["axo"]["batching"]; json.dump(j, open(p, "w"))' old-50/trainer_state.json
check '"$AXORUN" pkr.bin --output-dir pko --resume-from old-50 >pko.out 2>&1 && grep -q "was saved by an older axo, whose epochs dropped their short last step" pko.out && grep -q "resuming from" pkr.out && ! grep -q "older axo" pkr.out' \
  "a checkpoint of an axo that batched epochs the old way resumes with a warning that the data position moved"
cp -r pks/checkpoint-50 v2-50
python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); j["axo"]["batching"] = 2; json.dump(j, open(p, "w"))' v2-50/trainer_state.json
check '"$AXORUN" pkr.bin --output-dir pkv2 --resume-from v2-50 >pkv2.out 2>&1 && grep -q "was saved by an older axo, which shuffled each epoch its own way; this one shuffles as HF Trainer does" pkv2.out && ! grep -q "dropped their short last step" pkv2.out' \
  "a checkpoint of an axo with its own shuffle resumes with a warning that the epoch's order changed"
printf 'base_model: %s
datasets:
  - path: %s
sequence_len: 64
sample_packing: true
micro_batch_size: 2
learning_rate: 1.0e-3
' \
  "$SRC/configs/models/tiny-llama" "$T/full_rows.jsonl" >rb.yml
# Axolotl's batching follows its attention backend: flash attention takes one bin of micro_batch_size x
# sequence_len tokens a micro-batch (the 5 samples of 64 tokens make 3 bins of 128: 3 steps); sdpa, eager or none
# set, multipack_real_batches (batches of 2 packs of 64, the short last one dropped: 2 steps), as when it is set
sed 's/^micro_batch_size: 2/micro_batch_size: 2\nflash_attention: true/' rb.yml >rbf.yml
sed 's/^micro_batch_size: 2/micro_batch_size: 2\nmultipack_real_batches: true\nflash_attention: true/' rb.yml >rb2.yml
check '"$AXOC" compile rb.yml -o rb.bin 2>/dev/null && "$AXORUN" rb.bin --output-dir rb >rb.out 2>&1 && grep -q "axorun: 2 steps (2 per epoch)" rb.out && "$AXOC" compile rbf.yml -o rbf.bin 2>/dev/null && "$AXORUN" rbf.bin --output-dir rbf >rbf.out 2>&1 && grep -q "axorun: 3 steps (3 per epoch), global batch 1 rows x 128 tokens" rbf.out && "$AXOC" compile rb2.yml -o rb2.bin 2>/dev/null && "$AXORUN" rb2.bin --output-dir rb2 >rb2.out 2>&1 && grep -q "axorun: 2 steps (2 per epoch)" rb2.out' \
  "5 full packs, micro_batch_size 2: Axolotl's 3 one-bin steps with flash attention, 2 real batches without"
# A micro-batch of one bin is one row: micro_batch_size 2 x sequence_len 128 trains, packs and evaluates (packed)
# exactly as micro_batch_size 1 x sequence_len 256 does when no sample is longer than 128 tokens (the attention of
# each sample sees its own tokens only, wherever the bin puts it)
base='base_model: %s\ndatasets:\n  - path: %s\nsample_packing: true\nflash_attention: true\nval_set_size: 0.2\neval_strategy: epoch\nnum_epochs: 2\nlearning_rate: 1.0e-3\nlogging_steps: 1\nseed: 3\n'
printf "$base" "$SRC/configs/models/tiny-llama" "$T/pk_rows.jsonl" >bin2.yml
cp bin2.yml bin1.yml
printf 'micro_batch_size: 2\nsequence_len: 128\n' >>bin2.yml
printf 'micro_batch_size: 1\nsequence_len: 256\n' >>bin1.yml
check '"$AXOC" compile bin2.yml -o bin2.bin 2>/dev/null && "$AXORUN" bin2.bin --output-dir bin2 >bin2.out 2>&1 && "$AXOC" compile bin1.yml -o bin1.bin 2>/dev/null && "$AXORUN" bin1.bin --output-dir bin1 >/dev/null 2>&1 && grep -q "global batch 1 rows x 256 tokens (a micro-batch is one packed bin" bin2.out && grep -q eval_loss bin2/train_log.jsonl && cmp -s <(sed "s/, .tokens_per_s.*//" bin1/train_log.jsonl) <(sed "s/, .tokens_per_s.*//" bin2/train_log.jsonl) && cmp -s bin1/model.safetensors bin2/model.safetensors' \
  "one bin of 2 x 128 tokens a micro-batch = rows of 256: the same log and model, bit for bit"
# unpacked eval rows (eval_sample_packing: false) go micro_batch_size to a one-bin call, each its own sequences:
# the eval loss before the first step is the one of eval batches of micro_batch_size rows of sequence_len
printf 'micro_batch_size: 2\nsequence_len: 128\neval_sample_packing: false\nmax_steps: 1\n' >>bin1.yml
sed -i '/^sequence_len: 256/d; /^micro_batch_size: 1/d' bin1.yml
sed 's/^eval_sample_packing: false/eval_sample_packing: false\nmultipack_real_batches: true/' bin1.yml >binr.yml
eval0() { python3 -c 'import json, sys; print([r["eval_loss"] for r in map(json.loads, open(sys.argv[1])) if "eval_loss" in r and r["step"] == 0][0])' "$1/train_log.jsonl"; }
check '"$AXOC" compile bin1.yml -o binu.bin 2>/dev/null && "$AXORUN" binu.bin --output-dir binu >/dev/null 2>&1 && "$AXOC" compile binr.yml -o binr.bin 2>/dev/null && "$AXORUN" binr.bin --output-dir binr >/dev/null 2>&1 && "$AXOC" dump binu.bin >binu.dump && grep -q "attr train.row_len = 256" binu.dump && test -n "$(eval0 binu)" && test "$(eval0 binu)" = "$(eval0 binr)"' \
  "unpacked eval rows side by side in a one-bin call: the eval loss of rows of sequence_len"
# 27 samples of 64 tokens, 5 held out: bins of 2 x 64 hold two; 11 training bins and 3 eval bins. On 2 ranks the
# last round that does not reach both is dropped: 5 steps an epoch (the 11th bin dropped, as the count 11 // 2 says),
# and 2 eval bins (4 rows, 252 tokens predicted) where 1 rank evaluates 3 (315)
python3 -c 'import json, random; r = random.Random(5); print("\n".join(json.dumps({"input_ids": [r.randrange(3, 200) for _ in range(64)]}) for _ in range(27)))' >full27.jsonl
printf 'base_model: %s\ndatasets:\n  - path: %s\nsample_packing: true\nflash_attention: true\nval_set_size: 5\neval_steps: 100\nmicro_batch_size: 2\nsequence_len: 64\nlearning_rate: 1.0e-3\n' \
  "$SRC/configs/models/tiny-llama" "$T/full27.jsonl" >mrk.yml
etok() { python3 -c 'import json, sys; print([r["eval_tokens"] for r in map(json.loads, open(sys.argv[1])) if "eval_tokens" in r][-1])' "$1/train_log.jsonl"; }
check '"$AXOC" compile mrk.yml -o mrk1.bin 2>/dev/null && "$AXORUN" mrk1.bin --output-dir mrk1 >mrk1.out 2>&1 && "$AXOC" compile mrk.yml --world-size 2 -o mrk2.bin 2>/dev/null && "$AXORUN" mrk2.bin --output-dir mrk2 >mrk2.out 2>&1 && grep -q "axorun: 11 steps (11 per epoch)" mrk1.out && grep -q "axorun: 5 steps (5 per epoch)" mrk2.out && test "$(etok mrk1)" = 315 && test "$(etok mrk2)" = 252' \
  "2 ranks, packed: the last round of training and eval bins that does not reach both ranks is dropped"
# too few packed eval rows for one batch on every rank (2 samples, one bin, 2 ranks): nothing is evaluated (HF logs
# no eval_loss), unless something needs the eval loss
sed 's/^val_set_size: 5/val_set_size: 0.04/' mrk.yml >mre.yml
sed 's/^val_set_size: 5/val_set_size: 0.04\nlr_scheduler: reduce_lr_on_plateau/' mrk.yml >mre2.yml
check '"$AXOC" compile mre.yml --world-size 2 -o mre.bin 2>/dev/null && "$AXORUN" mre.bin --output-dir mre >mre.out 2>&1 && grep -q "nothing is evaluated" mre.out && ! grep -q eval_loss mre/train_log.jsonl && "$AXOC" compile mre2.yml --world-size 2 -o mre2.bin 2>/dev/null && ! "$AXORUN" mre2.bin --output-dir mre2 >mre2.out 2>&1 && grep -q "lr_scheduler: reduce_lr_on_plateau needs an eval_loss" mre2.out' \
  "packed eval rows fewer than a batch on every rank: a warning and no evaluation, an error where eval_loss is needed"
# ring attention over a bin: sequence_parallel_degree 2 logs the losses of 1 rank; 2 data-parallel ranks those of
# 1 rank accumulating 2 micro-batches
printf "$base" "$SRC/configs/models/tiny-llama" "$T/pk_rows.jsonl" | sed '/^val_set_size/d; /^eval_strategy/d' >bins.yml
printf 'micro_batch_size: 2\nsequence_len: 128\nmax_steps: 4\n' >>bins.yml
cp bins.yml binsp.yml && echo "sequence_parallel_degree: 2" >>binsp.yml
cp bins.yml binga.yml && echo "gradient_accumulation_steps: 2" >>binga.yml
lossesof() { grep -o '"loss": *[0-9.e+-]*' "$1/train_log.jsonl" | cut -d: -f2; }
close() { paste <(lossesof "$1") <(lossesof "$2") | awk -v t="$3" 'NF != 2 || ($1 - $2) > t * $1 || ($2 - $1) > t * $1 {bad = 1} END {exit bad || NR != 4}'; }
check '"$AXOC" compile bins.yml -o bins.bin 2>/dev/null && "$AXORUN" bins.bin --output-dir bins >/dev/null 2>&1 && "$AXOC" compile binsp.yml --world-size 2 -o binsp.bin 2>/dev/null && "$AXORUN" binsp.bin --output-dir binsp >/dev/null 2>&1 && close bins binsp 1e-5' \
  "one-bin micro-batches split over 2 sequence-parallel ranks (ring attention): the losses of 1 rank"
check '"$AXOC" compile binga.yml -o binga.bin 2>/dev/null && "$AXORUN" binga.bin --output-dir binga >/dev/null 2>&1 && "$AXOC" compile bins.yml --world-size 2 -o binsd.bin 2>/dev/null && "$AXORUN" binsd.bin --output-dir binsd >/dev/null 2>&1 && close binga binsd 1e-5' \
  "one-bin micro-batches on 2 data-parallel ranks: the losses of 1 rank accumulating 2"
# checkpoints of one-bin runs: a resume ends as the straight run
cp bins.yml binck.yml && printf 'save_steps: 2\n' >>binck.yml
check '"$AXOC" compile binck.yml -o binck.bin 2>/dev/null && "$AXORUN" binck.bin --output-dir binck >/dev/null 2>&1 && "$AXORUN" binck.bin --output-dir binckr --resume-from binck/checkpoint-2 >/dev/null 2>&1 && cmp -s binck/model.safetensors binckr/model.safetensors && cmp -s <(sed "s/, .tokens_per_s.*//" binck/train_log.jsonl) <(sed "s/, .tokens_per_s.*//" binckr/train_log.jsonl)' \
  "one-bin micro-batches resumed from step 2: the straight run's log and model"
# another micro_batch_size changes every bin: refused, not resumed at another data position
sed 's/^micro_batch_size: 2/micro_batch_size: 3/' binck.yml >binck3.yml
check '"$AXOC" compile binck3.yml -o binck3.bin 2>/dev/null && ! "$AXORUN" binck3.bin --output-dir binck3 --resume-from binck/checkpoint-2 >binck3.err 2>&1 && grep -q "was trained on rows of 256 tokens, this plan.s are 384" binck3.err' \
  "a one-bin checkpoint resumed with another micro_batch_size is refused"
# a checkpoint of an older axo, which took micro_batch_size rows of sequence_len where Axolotl packs one bin: refused
# with the way to continue it (multipack_real_batches: true), never resumed at another data position
cp -r binck/checkpoint-2 binck-old
check 'python3 -c "import json, sys; p = sys.argv[1]; j = json.load(open(p)); j[\"axo\"][\"batching\"] = 3; j[\"axo\"][\"global_batch_rows\"] = 2; json.dump(j, open(p, \"w\"))" binck-old/trainer_state.json && ! "$AXORUN" binck.bin --output-dir binck2 --resume-from binck-old >binck.err 2>&1 && grep -q "which packed micro_batch_size rows of sequence_len a micro-batch.*multipack_real_batches: true" binck.err' \
  "an older checkpoint of micro_batch_size rows is refused with the way to continue it"
# multipack_real_batches: false with no attention set: Axolotl's trainer packs one bin (3 an epoch) but counts the
# steps as for real batches (5 // 2 = 2)
sed 's/^micro_batch_size: 2/micro_batch_size: 2\nmultipack_real_batches: false/' rb.yml >rbx.yml
check '"$AXOC" compile rbx.yml -o rbx.bin 2>rbx.err && grep -q "counts the steps as for real batches" rbx.err && "$AXORUN" rbx.bin --output-dir rbx >rbx.out 2>&1 && grep -q "axorun: 2 steps (3 per epoch), global batch 1 rows x 128 tokens" rbx.out' \
  "one bin by multipack_real_batches: false without a packing attention: Axolotl's real-batch step count"
# on 2 ranks of 1 row each Axolotl's packed loader (even_batches off, its sampler's drop_last) drops the epoch's 5th
# pack that does not reach both ranks: 2 steps an epoch, and its count is 5 // 2 = 2
sed 's/^micro_batch_size: 2/micro_batch_size: 1/' rb.yml >rb3.yml
check '"$AXOC" compile rb3.yml --world-size 2 -o rb3.bin 2>/dev/null && "$AXORUN" rb3.bin --output-dir rb3 >rb3.out 2>&1 && grep -q "axorun: 2 steps (2 per epoch)" rb3.out' \
  "2 ranks: the packs of the last round that do not reach every rank are dropped, as Axolotl's loader drops them"
# sample_packing_eff_est: Axolotl's int(floor(0.99 x tokens / eff / sequence_len // batch) - 1) x num_epochs, tokens =
# total_num_tokens or the training set's: 0.99 x 320 / 0.25 / 64 // 2 = 9, so 8 steps; with 10000 tokens, 0.5: 153
sed 's/^micro_batch_size: 2/micro_batch_size: 2\nsample_packing_eff_est: 0.25/' rb.yml >eff.yml
sed 's/^micro_batch_size: 2/micro_batch_size: 2\nsample_packing_eff_est: 0.5\ntotal_num_tokens: 10000/' rb.yml >eff2.yml
check '"$AXOC" compile eff.yml -o eff.bin 2>/dev/null && "$AXORUN" eff.bin --output-dir eff >eff.out 2>&1 && grep -q "axorun: 8 steps (2 per epoch)" eff.out && "$AXOC" compile eff2.yml -o eff2.bin 2>/dev/null && "$AXORUN" eff2.bin --output-dir eff2 >eff2.out 2>&1 && grep -q "axorun: 153 steps (2 per epoch)" eff2.out' \
  "sample_packing_eff_est (and total_num_tokens): Axolotl's step count from them"

# save_strategy / eval_strategy / save_total_limit as Axolotl 0.19 hands them to HF Trainer: without
# save_steps a checkpoint at each epoch's end (and the last step), "no" none, "best" after each evaluation that
# improves eval_loss; save_total_limit 4 when unset; eval_strategy no / epoch / steps (every logging_steps)
head -24 "$SRC/configs/data/toy_count.jsonl" >small.jsonl
st() { # $1 output dir, $2 extra lines: 20 rows train (4 held out), 5 steps an epoch, 2 epochs
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nsample_packing: false\nmicro_batch_size: 2\n' \
    "$SRC/configs/models/tiny-llama" "$T/small.jsonl"
  printf 'gradient_accumulation_steps: 2\nnum_epochs: 2\nlearning_rate: 0.05\nseed: 5\nval_set_size: 4\noutput_dir: %s\n%s\n' "$1" "$2"
}
cks() { ls -d "$1"/checkpoint-* 2>/dev/null | sed 's#.*/##' | sort -V | tr '\n' ' '; }
st "$T/s0" "" >s0.yml
check '"$AXOC" compile s0.yml -o s0.bin 2>/dev/null && "$AXORUN" s0.bin >s0.out 2>&1 && grep -q "axorun: 10 steps (5 per epoch)" s0.out && test "$(cks s0)" = "checkpoint-5 checkpoint-10 "' \
  "no save_steps: a checkpoint at each epoch's end (save_strategy epoch, Axolotl's default)"
check 'test "$(grep -c eval_loss s0/train_log.jsonl)" = 0 && grep -q "never evaluated" s0.out' \
  "no eval_steps, eval_strategy or evals_per_epoch: never evaluated (Axolotl leaves HF's eval_strategy at no)"
st "$T/s0e" "eval_strategy: epoch" >s0e.yml
check '"$AXOC" compile s0e.yml -o s0e.bin 2>/dev/null && "$AXORUN" s0e.bin >/dev/null 2>&1 && test "$(grep -c eval_loss s0e/train_log.jsonl)" = 3 && grep -q "\"step\": 5, \"epoch\": 0, \"eval_loss\"" s0e/train_log.jsonl' \
  "eval_strategy: epoch: evaluated at each epoch's end, and before the first step (Axolotl's eval_on_start)"
st "$T/s1" "save_strategy: \"no\"" >s1.yml
check '"$AXOC" compile s1.yml -o s1.bin 2>/dev/null && "$AXORUN" s1.bin >/dev/null 2>&1 && test -z "$(cks s1)" && test -s s1/model.safetensors' \
  "save_strategy: no writes no checkpoint (the final model still)"
st "$T/s2" "save_steps: 1" >s2.yml
check '"$AXOC" compile s2.yml -o s2.bin 2>/dev/null && "$AXORUN" s2.bin >/dev/null 2>&1 && test "$(cks s2)" = "checkpoint-7 checkpoint-8 checkpoint-9 checkpoint-10 "' \
  "save_total_limit unset: the newest 4 checkpoints stay (Axolotl's default)"
st "$T/s3" "save_strategy: best
metric_for_best_model: eval_loss
eval_steps: 1
save_total_limit: 20" >s3.yml
check '"$AXOC" compile s3.yml -o s3.bin 2>/dev/null && "$AXORUN" s3.bin >/dev/null 2>&1' "save_strategy: best trains"
best_steps=$(python3 -c '
import json, sys
best = None; out = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "eval_loss" not in r or r["step"] == 0: continue
    if best is None or r["eval_loss"] < best: best = r["eval_loss"]; out.append("checkpoint-%d" % r["step"])
print(" ".join(out) + " ")' s3/train_log.jsonl)
check 'test -n "$best_steps" && test "$(cks s3)" = "$best_steps" && test "$(cks s3)" != "$(seq -f "checkpoint-%g" 1 10 | tr "\n" " ")"' "save_strategy: best saves exactly where eval_loss improved ($best_steps)"
st "$T/s4" "eval_strategy: \"no\"" >s4.yml
check '"$AXOC" compile s4.yml -o s4.bin 2>/dev/null && "$AXORUN" s4.bin >/dev/null 2>&1 && test "$(grep -c eval_loss s4/train_log.jsonl)" = 1 && grep -q "\"step\": 0, \"epoch\": 0, \"eval_loss\"" s4/train_log.jsonl' \
  "eval_strategy: no evaluates only before the first step (HF's eval_on_start, which Axolotl sets with any eval_strategy)"
st "$T/s5" "eval_strategy: steps
logging_steps: 3" >s5.yml
check '"$AXOC" compile s5.yml -o s5.bin 2>/dev/null && "$AXORUN" s5.bin >/dev/null 2>&1 && test "$(grep eval_loss s5/train_log.jsonl | grep -o "\"step\": [0-9]*" | tr "\n" " ")" = "\"step\": 0 \"step\": 3 \"step\": 6 \"step\": 9 \"step\": 10 "' \
  "eval_strategy: steps without eval_steps evaluates every logging_steps (HF), at the start and at the end"
st "$T/s6" "eval_strategy: epoch" >s6.yml
check '"$AXOC" compile s6.yml -o s6.bin 2>/dev/null && "$AXORUN" s6.bin >/dev/null 2>&1 && test "$(grep eval_loss s6/train_log.jsonl | grep -o "\"step\": [0-9]*" | tr "\n" " ")" = "\"step\": 0 \"step\": 5 \"step\": 10 "' \
  "eval_strategy: epoch evaluates at the start and each epoch's end"
st "$T/e7" "save_strategy: epoch
save_steps: 2" >e7.yml
check '! "$AXOC" compile e7.yml -o e7.bin 2>e7.err && grep -q "save_strategy: expected steps (or none) with save_steps, found epoch" e7.err' \
  "save_strategy other than steps with save_steps: an error (Axolotl's)"
st "$T/e8" "save_strategy: best" >e8.yml
check '! "$AXOC" compile e8.yml -o e8.bin 2>e8.err && grep -q "save_strategy: best requires metric_for_best_model" e8.err' "save_strategy: best without metric_for_best_model"
st "$T/e9" "eval_strategy: epoch" | sed '/^val_set_size/d' >e9.yml
check '! "$AXOC" compile e9.yml -o e9.bin 2>e9.err && grep -q "eval_strategy: epoch, but there is nothing to evaluate" e9.err' "eval_strategy without held-out data"
st "$T/e10" "evaluation_strategy: epoch
eval_steps: 2" >e10.yml
check '! "$AXOC" compile e10.yml -o e10.bin 2>e10.err && grep -q "evaluation_strategy: expected steps (or none) with eval_steps, found epoch" e10.err' \
  "evaluation_strategy (the old name) with eval_steps"

# bad values
base 5 "" | sed 's/^val_set_size: .*/val_set_size: 100000/' >e1.yml
check '"$AXOC" compile e1.yml -o e1.bin 2>/dev/null && ! "$AXORUN" e1.bin --output-dir e1 >/dev/null 2>e1.err && grep -q "leaves no training sample" e1.err' \
  "a split that leaves nothing to train"
base 0.5x "" >e2.yml
check '! "$AXOC" compile e2.yml -o e2.bin 2>e2.err && grep -q "eval_steps" e2.err' "a bad eval_steps"
es "early_stopping_patience: 2" | sed '/^save_steps/d' >e3.yml
check '! "$AXOC" compile e3.yml -o e3.bin 2>e3.err && grep -q "early_stopping_patience: requires save_steps and eval_steps" e3.err' \
  "early stopping without save_steps"
es "early_stopping_patience: 2" | sed 's/^save_steps: .*/save_steps: 5/' >e4.yml # eval_steps 2
check '! "$AXOC" compile e4.yml -o e4.bin 2>e4.err && grep -q "eval_steps (2) evenly divides save_steps (5)" e4.err' \
  "save_steps not a multiple of eval_steps"
es "metric_for_best_model: accuracy" >e5.yml
check '! "$AXOC" compile e5.yml -o e5.bin 2>e5.err && grep -q "metric_for_best_model: expected loss or eval_loss" e5.err' \
  "a metric axo does not evaluate"
es "load_best_model_at_end: true" | sed '/^save_steps/d' >e6.yml
check '"$AXOC" compile e6.yml -o e6.bin 2>e6.err && grep -q "load_best_model_at_end: ignored" e6.err' \
  "load_best_model_at_end without save_steps: ignored with a warning, as Axolotl ignores it"

# NEFTune's mag takes the width HF's collator gives each micro-batch (Axolotl pads the longest row up to a multiple of
# 64, or with pad_to_sequence_len of sequence_len rounded up to 64): samples of at most 32 tokens train the same at
# sequence_len 128 and 256 (HF's width 64 either way); with pad_to_sequence_len: true the widths are 128 and 256,
# and the two runs differ
nf() { # $1 name, $2 sequence_len, $3 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: %s\nmicro_batch_size: 2\nmax_steps: 5\nlearning_rate: 0.01\nlr_scheduler: constant\nneftune_noise_alpha: 40\nseed: 3\nlogging_steps: 1\noutput_dir: %s\n%s\n' \
    "$SRC/configs/models/tiny-llama" "$SRC/configs/data/toy_count.jsonl" "$2" "$T/$1" "$3" >$1.yml
  "$AXOC" compile $1.yml -o $1.bin 2>/dev/null && "$AXORUN" $1.bin >/dev/null 2>&1
}
nf_same() { # $1 $2 output dirs: "same" when every step's loss agrees within 1e-6 (relative)
  python3 - "$1/train_log.jsonl" "$2/train_log.jsonl" <<'PYEOF'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p) if l.strip()] for p in sys.argv[1:3])
print("same" if len(a) == len(b) == 5 and all(abs(x - y) <= 1e-6 * abs(x) for x, y in zip(a, b)) else "differ")
PYEOF
}
check 'nf nf1 128 "" && nf nf2 256 "" && test "$(nf_same nf1 nf2)" = same' \
  "NEFTune: short samples at sequence_len 128 and 256 get HF's noise scale (width 64 both): the same losses"
check 'nf nf3 128 "pad_to_sequence_len: true" && nf nf4 256 "pad_to_sequence_len: true" && test "$(nf_same nf3 nf4)" = differ && test "$(nf_same nf1 nf3)" = differ' \
  "NEFTune with pad_to_sequence_len: the width is sequence_len's (128 vs 256: other noise, other losses)"
finish
