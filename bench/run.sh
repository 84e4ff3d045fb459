#!/usr/bin/env bash
# bench/run.sh — axo against PyTorch + transformers (what Axolotl runs), side
# by side in one run on the same GPU: full fine-tuning of a Llama-3.2-1B-
# shaped model (bench/models/llama-3.2-1b-shape: hidden 2048, 16 layers, 32
# heads, 8 kv heads, intermediate 8192, vocab 128256, tied embeddings; random
# init) in bf16, micro-batch 1, at sequence lengths 2048 and 4096.
#
# Per implementation and length: tokens/s (median over the timed steps, after
# warm-up), MFU (6N + 12 L d S FLOPs per token over the GEMM rate measured
# here), peak memory (the framework's own figure, and the GPU's used memory
# sampled by nvidia-smi, minus what was used before the run), last loss.
# Writes $out/bench.md (the table) and $out/bench.jsonl (everything), prints
# the table. Exits non-zero if a run failed (the table says which).
#
#   bench/run.sh                 all lengths
#   AXO_BENCH_SEQS="2048" AXO_BENCH_STEPS=5 bench/run.sh
#
# Needs: a GPU; python3 with torch and transformers (lora/qlora: and peft;
# qlora's torch row: bitsandbytes); axoc/axorun built with
# the CUDA executor (tests/gpu/run.sh build, which this script runs when
# $build has none). Environment: AXO_BENCH_BUILD (default build-gpu/proj),
# AXO_BENCH_OUT (default build-gpu/bench), AXO_BENCH_SEQS ("2048 4096"),
# AXO_BENCH_STEPS (10), AXO_BENCH_WARMUP (3), AXO_BENCH_ONLY (axo or torch),
# AXO_BENCH_ATTN=tc (axo with AXO_CUDA_ATTN=tc: the tensor-core attention
# kernels; refused unless tests/gpu/run.sh's note $build/../logs/tc-attention.txt
# says PASS, i.e. a GPU validated them; AXO_BENCH_ATTN_FORCE=1 skips that).
# When $OUT is set (the device machine's output folder) bench.md, bench.jsonl
# and a tarball of the logs are copied there.
#
# AXO_BENCH_MODES ("full pure"): which fine-tunings to run, in this order, each
# at every length, torch then axo; every row carries its mode (a `mode` field
# in bench.jsonl, a column in bench.md):
#   full   full fine-tuning, as above (learning rate 1e-5); axo with `bf16:
#          true`: f32 master weights and f32 AdamW moments (16 bytes of state
#          per parameter, DeepSpeed's bf16 recipe)
#   pure   the same fine-tuning with `bfloat16: true`: axo keeps bf16 weights
#          and bf16 AdamW moments with no master copy (8 bytes per parameter,
#          stochastically rounded updates), the footprint of the torch row,
#          whose AdamW runs on the bf16 parameters. The torch row is full's
#          (not run again when full is in the list; run, labelled pure, when
#          it is not)
#   8bit   pure bf16 with 8-bit AdamW state (`optimizer: adamw_bnb_8bit`);
#          torch side: bitsandbytes' AdamW(optim_bits=8) on the bf16 model
#          (a "skipped" row where bitsandbytes does not import)
#   lora   LoRA as Axolotl's `adapter: lora`: r 16, alpha 32, dropout 0.05 on
#          all 7 decoder projections (`lora_target_linear: true`), base frozen
#          in bf16, adapters f32, learning rate 2e-4; torch side: peft
#          (bench/torch_ref.py --adapter lora)
#   qlora  the same over a 4-bit NF4 base (`adapter: qlora`, `load_in_4bit:
#          true`); torch side: bitsandbytes' BitsAndBytesConfig (nf4, double
#          quantisation, bf16 compute), or, where bitsandbytes does not import,
#          a torch row saying so and no figure
# MFU of the lora/qlora rows counts tokens/s x (4N + 6 N_lora + 12 L d S):
# the frozen base's forward and its backward through the activations, the
# adapters' forward and backward in full (bench/flops.py, same for both sides).
#
#   AXO_BENCH_MODES="lora qlora" AXO_BENCH_SEQS=2048 AXO_BENCH_KERNELS=0 bench/run.sh
#   AXO_BENCH_HOST=0 skips the host optimizer table (axo's CPU-offload AdamW vs torch's CPU AdamW)
#   bench/run.sh --dry           no GPU, no torch: writes each mode's and
#       length's axo YAML exactly as a run does, compiles it (axoc compile
#       --world-size 1 --arch none, $build/axoc only), checks axoc's parameter
#       counts against bench/flops.py and prints its memory summary; exits
#       non-zero if one fails (ctest: tests/e2e/bench_dry.sh)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${AXO_BENCH_BUILD:-$root/build-gpu/proj}
out=${AXO_BENCH_OUT:-$root/build-gpu/bench}
seqs=${AXO_BENCH_SEQS:-"2048 4096"}
steps=${AXO_BENCH_STEPS:-10}
warm=${AXO_BENCH_WARMUP:-3}
only=${AXO_BENCH_ONLY:-}
model=$root/bench/models/llama-3.2-1b-shape
export AXO_CACHE_DIR=${AXO_CACHE_DIR:-$root/build-gpu/cache}
export PYTHONUNBUFFERED=1
attn=${AXO_BENCH_ATTN:-}
modes=${AXO_BENCH_MODES:-full pure}
dry=0
[ "${1:-}" = --dry ] && dry=1
for mode in $modes; do
    case $mode in
    full | pure | 8bit | lora | qlora) ;;
    *) echo "bench: AXO_BENCH_MODES: unknown mode '$mode' (full, pure, 8bit, lora or qlora)" >&2; exit 2 ;;
    esac
done
# the adapter settings, the same on both sides
lora_r=16 lora_alpha=32 lora_dropout=0.05 lora_lr=2.0e-4
mkdir -p "$out"
if [ -n "$attn" ]; then
    [ "$attn" = tc ] || { echo "bench: AXO_BENCH_ATTN must be tc or unset" >&2; exit 2; }
    note=$(dirname "$build")/logs/tc-attention.txt
    if [ "${AXO_BENCH_ATTN_FORCE:-}" != 1 ] && ! head -1 "$note" 2>/dev/null | grep -q '^tc-attention: PASS'; then
        echo "bench: AXO_BENCH_ATTN=tc needs the tensor-core attention kernels validated first: $note says" \
            "'$(head -1 "$note" 2>/dev/null || echo missing)' (run tests/gpu/run.sh; AXO_BENCH_ATTN_FORCE=1 overrides)" >&2
        exit 2
    fi
fi
# random token rows of exactly seq tokens: one sample per packed row
make_data() { # seq rows file
    python3 - "$1" "$2" "$3" <<'EOF'
import json, random, sys
seq, rows, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(seq)
with open(path, "w") as f:
    for _ in range(rows):
        f.write(json.dumps({"input_ids": [rnd.randrange(128256) for _ in range(seq)]}) + "\n")
EOF
}

run_dir() { # impl seq mode -> the run's folder (full: IMPL-SEQ, as before modes)
    if [ "$3" = full ]; then echo "$out/$1-$2"; else echo "$out/$1-$3-$2"; fi
}

axo_cfg() { # dir seq mode -> dir/cfg.yml, the config axoc compiles
    local d=$1 seq=$2 mode=$3 lr=1.0e-5
    local full=0
    case $mode in full | pure | 8bit) full=1 ;; esac
    [ "$full" = 1 ] || lr=$lora_lr
    local prec="bf16: true" optim=adamw_torch
    [ "$mode" = pure ] && prec="bfloat16: true"
    [ "$mode" = 8bit ] && prec="bfloat16: true" && optim=adamw_bnb_8bit
    cat >"$d/cfg.yml" <<EOF
base_model: $model
datasets:
  - path: $d/data.jsonl
output_dir: $d/out
save_strategy: "no"
sequence_len: $seq
sample_packing: true
micro_batch_size: 1
gradient_accumulation_steps: 1
max_steps: $((warm + steps))
learning_rate: $lr
lr_scheduler: constant
optimizer: $optim
max_grad_norm: 1.0
$prec
logging_steps: 1
seed: 42
EOF
    if [ "$full" = 1 ]; then :; else
        cat >>"$d/cfg.yml" <<EOF
adapter: $mode
lora_r: $lora_r
lora_alpha: $lora_alpha
lora_dropout: $lora_dropout
lora_target_linear: true
EOF
    fi
    if [ "$mode" = qlora ]; then
        echo "load_in_4bit: true" >>"$d/cfg.yml"
    fi
}

# --dry: each mode's and length's YAML through axoc, no GPU
if [ "$dry" = 1 ]; then
    [ -x "$build/axoc" ] || { echo "bench --dry: no $build/axoc (AXO_BENCH_BUILD names the folder)" >&2; exit 1; }
    status=0
    for mode in $modes; do
        for seq in $seqs; do
            d=$(run_dir axo "$seq" "$mode")
            rm -rf "$d" && mkdir -p "$d"
            make_data "$seq" $((warm + steps + 4)) "$d/data.jsonl"
            axo_cfg "$d" "$seq" "$mode"
            if ! (cd "$d" && "$build/axoc" compile cfg.yml -o plan.bin --world-size 1 --arch none >compile.log 2>&1); then
                echo "bench --dry: $mode seq $seq: axoc compile failed:" >&2
                cat "$d/compile.log" >&2
                status=1
            elif ! python3 - "$root/bench" "$model/config.json" "$d/compile.log" "$mode" "$seq" "$lora_r" <<'EOF'
import json, re, sys
sys.path.insert(0, sys.argv[1])
import flops
cfg, log, mode, seq, r = json.load(open(sys.argv[2])), open(sys.argv[3]).read(), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
m = re.search(r"(\d+) parameters(?:, (\d+) trainable)?", log)
mem = re.search(r"per-rank memory ([0-9.]+ [KMG]iB) = params ([0-9.]+) ([KMG]iB)", log)
if not m or not mem:
    sys.exit(f"bench --dry: {mode} seq {seq}: no parameter count or memory summary in axoc's output")
total = int(m.group(1))
trainable = int(m.group(2)) if m.group(2) else total
N = flops.base_params(cfg)
want = (N, N) if mode in ("full", "pure", "8bit") else (N + flops.lora_params(cfg, r), flops.lora_params(cfg, r))
if (total, trainable) != want:
    sys.exit(f"bench --dry: {mode} seq {seq}: axoc counts {total} parameters, {trainable} trainable; "
             f"bench/flops.py says {want[0]}, {want[1]}")
params = float(mem.group(2)) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[mem.group(3)]
if mode == "qlora" and params > N:  # bf16 would be 2N bytes; NF4 + the bf16 embedding stays well under N
    sys.exit(f"bench --dry: qlora seq {seq}: {mem.group(2)} {mem.group(3)} of parameters is not a 4-bit base")
print(f"bench --dry: {mode} seq {seq}: compiles; {total} parameters, {trainable} trainable "
      f"(bench/flops.py agrees; {flops.FORMULA[mode]} = {flops.flops_per_token(cfg, mode, seq, r)/1e9:.2f} GFLOP/token)")
print("  " + next(l for l in log.splitlines() if "per-rank memory" in l))
EOF
            then
                status=1
            fi
            rm -f "$d/data.jsonl" "$d/plan.bin"
        done
    done
    exit $status
fi

: >"$out/bench.jsonl"

if [ ! -x "$build/axorun" ] || [ ! -x "$build/gpu_exec_check" ]; then
    AXO_GPU_BUILD=$(dirname "$build") bash "$root/tests/gpu/run.sh" build || { echo "bench: build failed" >&2; exit 1; }
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# GPU memory used (MiB), sampled every 0.2 s into a file while a run lasts.
smi_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1; }
sample_start() {
    base=$(smi_used)
    base=${base:-0}
    ( while :; do smi_used; sleep 0.2; done ) >"$1" 2>/dev/null &
    sampler=$!
}
sample_stop() { # file -> peak MiB above the baseline
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    sort -n "$1" | tail -1 | awk -v b="$base" '{ if ($1 != "") print $1 - b; else print "n/a" }'
}

# the GEMM rate MFU is measured against
peak_json=$(python3 "$root/bench/torch_ref.py" --peak 2>"$out/peak.err")
echo "$peak_json" | tee -a "$out/bench.jsonl"
peak_tflops=$(echo "$peak_json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("tflops", 0))' 2>/dev/null)

run_axo() { # seq mode -> one JSON line
    local seq=$1 mode=$2 d
    d=$(run_dir axo "$seq" "$mode")
    rm -rf "$d" && mkdir -p "$d"
    make_data "$seq" $((warm + steps + 4)) "$d/data.jsonl"
    axo_cfg "$d" "$seq" "$mode"
    (cd "$d" && "$build/axoc" compile cfg.yml -o plan.bin >compile.log 2>&1) ||
        { echo "{\"impl\": \"axo\", \"mode\": \"$mode\", \"seq\": $seq, \"error\": \"axoc compile failed\"}"; return 1; }
    sample_start "$d/smi.txt"
    if [ -n "$attn" ]; then
        (cd "$d" && AXO_CUDA_ATTN=$attn timeout 900 "$build/axorun" plan.bin --executor cuda --overwrite >run.log 2>&1)
    else
        (cd "$d" && timeout 900 "$build/axorun" plan.bin --executor cuda --overwrite >run.log 2>&1)
    fi
    local rc=$?
    rm -f "$d/out/model.safetensors" "$d/data.jsonl" # 2.5 GB of random weights; the data are regenerated
    local smi
    smi=$(sample_stop "$d/smi.txt")
    python3 - "$d" "$seq" "$warm" "$rc" "$smi" "$attn" "$mode" "$lora_r" <<'EOF'
import json, re, statistics, sys
d, seq, warm, rc, smi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
mode = sys.argv[7]
r = {"impl": "axo", "mode": mode, "seq": seq, "batch": 1}
if sys.argv[6]:
    r["impl"], r["attn"] = "axo (AXO_CUDA_ATTN=" + sys.argv[6] + ")", sys.argv[6]
log = open(f"{d}/run.log").read()
m = re.search(r"CUDA executor on (.*?): ([0-9.]+ [KMG]iB) on the device", log)
if m:
    r["device"], r["executor_bytes"] = m.group(1), m.group(2)
clog = open(f"{d}/compile.log").read()
plan = re.search(r"per-rank memory ([0-9.]+ [KMG]iB)", clog)
if plan:
    r["plan_bytes"] = plan.group(1)
if mode not in ("full", "pure", "8bit"):
    r["lora_r"] = int(sys.argv[8])
    n = re.search(r"(\d+) parameters, (\d+) trainable", clog)
    if n:
        r["trainable_params"] = int(n.group(2))
r["smi_peak_mib"] = smi
try:
    rows = [json.loads(l) for l in open(f"{d}/out/train_log.jsonl") if l.strip()]
except OSError:
    rows = []
timed = rows[warm:]
if rc != 0 or not timed:
    r["error"] = f"axorun exit {rc}: " + " | ".join(l for l in log.splitlines() if "error" in l)[:400]
else:
    r["tokens_per_s"] = statistics.median(x["tokens_per_s"] for x in timed)
    r["loss_last"] = timed[-1]["loss"]
    r["steps"] = len(timed)
print(json.dumps(r))
sys.exit(0 if "error" not in r else 1)
EOF
}

run_torch() { # seq mode -> one JSON line
    local seq=$1 mode=$2 d
    d=$(run_dir torch "$seq" "$mode")
    mkdir -p "$d"
    sample_start "$d/smi.txt"
    if [ "$mode" = 8bit ]; then
        python3 "$root/bench/torch_ref.py" --seq "$seq" --warmup "$warm" --steps "$steps" --optim adamw8bit \
            >"$d/out.json" 2>"$d/err.log"
    elif [ "$mode" = full ] || [ "$mode" = pure ]; then
        python3 "$root/bench/torch_ref.py" --seq "$seq" --warmup "$warm" --steps "$steps" >"$d/out.json" 2>"$d/err.log"
    else
        python3 "$root/bench/torch_ref.py" --seq "$seq" --warmup "$warm" --steps "$steps" --adapter "$mode" --lr "$lora_lr" \
            --lora-r "$lora_r" --lora-alpha "$lora_alpha" --lora-dropout "$lora_dropout" >"$d/out.json" 2>"$d/err.log"
    fi
    local rc=$?
    local smi
    smi=$(sample_stop "$d/smi.txt")
    python3 - "$d/out.json" "$rc" "$smi" "$seq" "$d/err.log" "$mode" <<'EOF'
import json, sys
path, rc, smi, seq, err, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
try:
    r = json.loads(open(path).read().strip().splitlines()[-1])
except Exception:
    r = {"impl": "torch", "mode": mode, "seq": seq, "error": f"exit {rc}: " + open(err).read()[-400:]}
r["mode"] = mode  # a pure run alone: torch's full fine-tune, labelled pure
r["smi_peak_mib"] = smi
print(json.dumps(r))
sys.exit(0 if "error" not in r else 1)
EOF
}

status=0
for mode in $modes; do
    for seq in $seqs; do
        for impl in torch axo; do
            [ -n "$only" ] && [ "$only" != "$impl" ] && continue
            # pure's torch row is full's (torch's AdamW on bf16 params is pure bf16 already)
            [ "$mode" = pure ] && [ "$impl" = torch ] && [[ " $modes " == *" full "* ]] && continue
            if [ "$mode" = full ]; then echo "bench: $impl seq $seq ..."; else echo "bench: $impl $mode seq $seq ..."; fi
            if line=$(run_$impl "$seq" "$mode"); then :; else status=1; fi
            echo "$line" | tee -a "$out/bench.jsonl"
        done
    done
done

python3 - "$out/bench.jsonl" "$model/config.json" "$peak_tflops" "$root/bench" "$lora_r" "$lora_alpha" "$lora_dropout" "$lora_lr" \
    >"$out/bench.md" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[4])
import flops
lora_r, lora_alpha, lora_dropout, lora_lr = int(sys.argv[5]), sys.argv[6], sys.argv[7], float(sys.argv[8])
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cfg = json.load(open(sys.argv[2]))
peak = float(sys.argv[3] or 0)
N = flops.base_params(cfg)
runs = [r for r in rows if "impl" in r]
modes = list(dict.fromkeys(r.get("mode", "full") for r in runs))
adapters = [m for m in modes if m not in ("full", "pure", "8bit")]
dev = next((r.get("device") for r in rows if r.get("device")), "?")
print(f"Llama-3.2-1B shape ({N/1e9:.3f} B parameters), bf16, micro-batch 1, on {dev}.")
rate = f"Measured dense bf16 GEMM rate: {peak:.0f} TFLOP/s (8192^3, torch)."
print(rate + " MFU = tokens/s x (6N + 12 L d S) / that rate." if set(modes) & {"full", "pure", "8bit"} or not adapters else rate)
if "pure" in modes:
    print()
    print("full rows: axo with bf16: true (bf16 weights, f32 master weights and f32 AdamW moments: 16 bytes of state per "
          "parameter); pure rows: axo with bfloat16: true (bf16 weights and AdamW moments, no master copy, updates "
          "stochastically rounded: 8 bytes, as torch's AdamW on bf16 parameters keeps). torch's row serves both.")
if "8bit" in modes:
    print()
    print("8bit rows: axo with bfloat16: true and optimizer: adamw_bnb_8bit (8-bit block-wise AdamW moments, axo's code "
          "book); torch with bitsandbytes' AdamW(optim_bits=8) on the bf16 model: about 4 bytes of state per parameter "
          "each.")
if adapters:
    print()
    print(f"{' and '.join(adapters)} rows: r {lora_r}, alpha {lora_alpha}, dropout {lora_dropout} on all 7 decoder projections "
          f"(N_lora = {flops.lora_params(cfg, lora_r)/1e6:.2f} M trainable parameters, f32), base frozen, learning rate {lora_lr:g}; "
          "MFU = tokens/s x (4N + 6 N_lora + 12 L d S) / that rate: the base's forward and its backward through the "
          "activations (no weight gradients), the adapters' forward and backward in full; NF4 dequantisation is not counted.")
    if "qlora" in adapters:
        print("qlora: torch quantises with bitsandbytes (NF4, double quantisation of the block scales); axo with NF4 "
              "and its own 8-bit block scales (docs/architecture.md): the weights differ by either's quantisation error.")
print()
print("| impl | mode | seq | tokens/s | MFU | peak memory (own figure) | GPU memory used (nvidia-smi) | last loss |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
def gib(b): return f"{b/2**30:.1f} GiB"
for r in runs:
    S, mode = r["seq"], r.get("mode", "full")
    if "skipped" in r:
        print(f"| {r['impl']} | {mode} | {S} | not measured: {r['skipped'][:120]} | | | | |")
        continue
    if "error" in r:
        print(f"| {r['impl']} | {mode} | {S} | failed: {r['error'][:120]} | | | | |")
        continue
    fl = flops.flops_per_token(cfg, mode, S, lora_r) * r["tokens_per_s"]
    mfu = f"{100 * fl / (peak * 1e12):.1f}%" if peak > 0 else "n/a"
    if r["impl"] == "torch":
        own = f"{gib(r['peak_allocated'])} allocated, {gib(r['peak_reserved'])} reserved"
    else:
        own = f"{r.get('executor_bytes', '?')} allocated (plan: {r.get('plan_bytes', '?')})"
    smi = r.get("smi_peak_mib", "n/a")
    smi = f"{float(smi)/1024:.1f} GiB" if smi not in ("", "n/a") else "n/a"
    print(f"| {r['impl']} | {mode} | {S} | {r['tokens_per_s']:.0f} | {mfu} | {own} | {smi} | {r.get('loss_last', float('nan')):.3f} |")
if adapters:
    print()
    for m in adapters:
        got = [f"{r['impl']} {r['trainable_params']}" for r in runs if r.get("mode") == m and "trainable_params" in r]
        print(f"{m}: trainable parameters {', '.join(dict.fromkeys(got)) or 'n/a'} (bench/flops.py: {flops.lora_params(cfg, lora_r)}).")
EOF
echo
cat "$out/bench.md"

# the kernel table: axo's kernels on the executor (bench/kernel_bench.c), torch's SDPA beside them
if [ "${AXO_BENCH_KERNELS:-1}" != 0 ] && [ -x "$build/kernel_bench" ]; then
    echo "bench: kernel table ..."
    if timeout 600 "$build/kernel_bench" --json "$out/kernels.jsonl" >"$out/kernels.md" 2>"$out/kernels.err"; then :; else status=1; fi
    if tk=$(python3 "$root/bench/torch_ref.py" --kernels --seq 4096 2>>"$out/kernels.err"); then
        echo "$tk" >>"$out/kernels.jsonl"
        python3 - "$tk" >>"$out/kernels.md" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
print()
print(f"torch {r['torch']} scaled_dot_product_attention, same shape: forward {r['sdpa_fwd_us']:.1f} us "
      f"({r['sdpa_fwd_tflops']:.1f} TFLOP/s), backward {r['sdpa_bwd_us']:.1f} us ({r['sdpa_bwd_tflops']:.1f} TFLOP/s); "
      f"torch copy bandwidth {r['copy_gbps']:.0f} GB/s")
EOF
    fi
    echo
    cat "$out/kernels.md"
fi
# the host side of CPU offload: axo's optimizer step on 1 thread and every core (bench/host_optimizer_bench.c),
# torch's CPU AdamW (fused, else foreach) on the same 64M f32 elements beside it
if [ "${AXO_BENCH_HOST:-1}" != 0 ] && [ -x "$build/host_optimizer_bench" ]; then
    echo "bench: host optimizer step ..."
    {
        timeout 300 "$build/host_optimizer_bench" --elems 67108864 --reps 3 --kind adamw || echo "host_optimizer_bench failed"
        timeout 300 python3 - <<'EOF' || echo "torch CPU AdamW: failed"
import time, torch
n = 67108864
for threads in sorted({1, torch.get_num_threads()}):
    torch.set_num_threads(threads)
    for kind in ("fused", "foreach"):
        p = torch.nn.Parameter(torch.rand(n) - 0.5)
        p.grad = torch.rand(n) - 0.5
        try:
            opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, **{kind: True})
            opt.step()
        except Exception as e:
            print(f"torch {torch.__version__} AdamW({kind}=True) on the CPU: {e}")
            continue
        best = 1e30
        for _ in range(3):
            t0 = time.perf_counter(); opt.step(); best = min(best, time.perf_counter() - t0)
        print(f"torch {torch.__version__} AdamW({kind}=True), {threads:2d} threads: {best * 1e3:8.1f} ms ({28 * n / best / 1e9:5.1f} GB/s)")
EOF
    } >"$out/host_optimizer.md" 2>&1
    cat "$out/host_optimizer.md"
fi
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    [ -f "$out/host_optimizer.md" ] && cp "$out/host_optimizer.md" "$OUT/" 2>/dev/null
    [ -f "$out/kernels.md" ] && cp "$out/kernels.md" "$out/kernels.jsonl" "$OUT/" 2>/dev/null
    cp "$out/bench.md" "$out/bench.jsonl" "$OUT/"
    tar czf "$OUT/bench-logs.tar.gz" -C "$out" --exclude='*.safetensors' --exclude='*.bin' --exclude='data.jsonl' . 2>/dev/null
fi
exit $status
