#!/usr/bin/env bash
# tests/gpu/run.sh — every GPU check in one script: builds, runs each check in
# its own process (a kernel fault in one must not hide the others), prints a
# summary table and exits non-zero if anything failed. Needs an NVIDIA GPU.
#
#   tests/gpu/run.sh              build, then run every check (the default)
#   tests/gpu/run.sh build        build only (works without a GPU)
#   tests/gpu/run.sh build-kernels   only test_cuda_kernels, as `build` makes it (CI)
#   tests/gpu/run.sh run          run the checks of an existing build
#   tests/gpu/run.sh fetch-deps   (on a machine with apt and a network) download
#                                 the .debs of libyaml, jansson, xxhash, oniguruma
#                                 and utf8proc (and the Parquet codecs, optional)
#                                 into .gpu-deps/, for a GPU machine that lacks them
#   tests/gpu/run.sh emu BUILD    no GPU needed (CI): the e2e and resume rows on
#                                 the emulated device (BUILD/axorun_emu with
#                                 AXO_CUDA_EMULATE=1, runtime/cuda_exec.h), the
#                                 cases matching $AXO_E2E_ONLY (a regex; default
#                                 all but *-graphs: no CUDA graphs there) for
#                                 $AXO_E2E_STEPS steps (default 4) of 2 rows
#
# Checks (each a row of the summary):
#   kernels:<group>   tests/gpu/test_cuda_kernels.c: every hand-written kernel
#                     against the CPU reference kernels, one process per group
#   exec              build/gpu_exec_check: the CUDA executor against the CPU
#                     executor, per op (NaN-poisoned arena, random inputs) and
#                     for a few training steps of tiny models (f32/bf16, head_dim
#                     16/64/128, checkpointing); AXO_CUDA_SYNC=1 so a fault names
#                     its node; resumed after a lost context (exit 3)
#   tc-attention      the gpu_exec_check cases of the tensor-core attention
#                     kernels (AXO_CUDA_ATTN=tc) on their own; also written to
#                     logs/tc-attention.txt and $OUT/tc-attention.txt, which
#                     bench/run.sh AXO_BENCH_ATTN=tc requires to say PASS
#   resume:<case>     a CUDA run resumed from its checkpoint-4 logs the straight
#                     run's steps (1e-6) and the note says whether the final
#                     weights are identical: pure bf16 + 8-bit AdamW on 1 rank,
#                     ZeRO-3 bf16 on 2 local ranks
#   e2e:<config>      axoc + axorun end to end, --executor cpu vs --executor cuda,
#                     per-step loss and grad norm from train_log.jsonl (bf16 1e-2
#                     relative, f32 1e-4), 1 rank and 2 local ranks on one GPU
#                     (DDP, ZeRO-3, FSDP2 via host-staged collectives); pure
#                     bf16 (bfloat16: true) on 1 rank and DDP 2; 8-bit AdamW
#                     state (optimizer: adamw_bnb_8bit) with pure bf16 on 1 rank
#   refuse-oom        a plan far larger than the GPU is refused before the first
#                     step, with the figures and advice
#   nccl:1rank        build/gpu_nccl_check: the NCCL backend with a world of 1
#                     (device and host collectives, splits) and a world of 2
#                     whose second rank never comes (init must time out, not hang)
#   nccl:2ranks       gpu_nccl_check --ranks 2 (needs 2 GPUs, else SKIP): exact
#                     collectives across processes, then a hung and a dead peer
#                     end the others within AXO_COMM_TIMEOUT
#   e2e-nccl:<config> (needs 2 GPUs, else SKIP) axorun spawning one process per
#                     GPU vs the CPU executor on 2 local ranks (DDP, ZeRO-3,
#                     FSDP2 on the CUDA executor; sp 2 on the CPU executor over
#                     host-staged NCCL); the same under torchrun if it is
#                     installed; a rank failing first ends the job at once
#
# Environment: CUDA_HOME (default /usr/local/cuda), AXO_GPU_BUILD (default
# build-gpu/), AXO_GPU_LOGS (default $AXO_GPU_BUILD/logs), AXO_GPU_ARCH (force
# e.g. sm_90), AXO_GPU_DEPS (default .gpu-deps/). When $OUT is set (the device
# machine's output folder) the summary and one tarball of every log are
# copied there at the end (it takes few files).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
out=${AXO_GPU_BUILD:-$root/build-gpu}
logs=${AXO_GPU_LOGS:-$out/logs}
debs=${AXO_GPU_DEPS:-$root/.gpu-deps}
mode=${1:-all}
# the tools the e2e rows run (emu mode: the emulated device's axorun), the steps of a run, which cases
axoc=$out/proj/axoc axorun=$out/proj/axorun
steps=${AXO_E2E_STEPS:-8} only=${AXO_E2E_ONLY:-.} skip='^$' mbs=4 gas=2
if [ "$mode" = emu ]; then
    bin=$(cd "${2:?usage: $0 emu BUILD_DIR}" && pwd)
    out=$(mktemp -d) logs=$out/logs
    trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT
    axoc=$bin/axoc axorun=$bin/axorun_emu steps=${AXO_E2E_STEPS:-4} skip=-graphs mbs=2 gas=1 # a quarter of the tokens
    export AXO_CUDA_EMULATE=1
fi
export AXO_CACHE_DIR=${AXO_CACHE_DIR:-$out/cache}
mkdir -p "$out" "$logs"

declare -a rows=()
record() { # status name detail
    rows+=("$(printf '%-5s %-34s %s' "$1" "$2" "$3")")
    echo "== $1 $2 $3"
}

# ---- dependencies ----------------------------------------------------------------
fetch_deps() {
    mkdir -p "$debs" && cd "$debs" &&
        apt-get download libyaml-0-2 libyaml-dev libjansson4 libjansson-dev libxxhash0 libxxhash-dev \
            libonig5 libonig-dev libutf8proc2 libutf8proc-dev libsnappy1v5 libsnappy-dev libzstd1 libzstd-dev liblz4-1 liblz4-dev \
            zlib1g-dev &&
        ls -l "$debs"
}

# The project needs yaml.h, jansson.h, xxhash.h. A GPU machine without them
# (and without a network) can use .debs carried in $debs: unpacked into a
# private prefix, never into /.
use_deps() {
    local have=1
    for h in yaml.h jansson.h xxhash.h oniguruma.h utf8proc.h; do [ -f "/usr/include/$h" ] || have=0; done
    [ "${AXO_GPU_FORCE_DEPS:-0}" = 1 ] && have=0 # test the carried .debs where the system has the headers
    [ "$have" = 1 ] && return 0
    if ! ls "$debs"/*.deb >/dev/null 2>&1; then
        echo "run.sh: yaml.h/jansson.h/xxhash.h/oniguruma.h/utf8proc.h are missing and $debs has no .debs (run 'tests/gpu/run.sh fetch-deps' where apt works)" >&2
        return 1
    fi
    local prefix=$out/deps
    mkdir -p "$prefix"
    for f in "$debs"/*.deb; do dpkg -x "$f" "$prefix" || return 1; done
    export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export CPATH="$prefix/usr/include${CPATH:+:$CPATH}"
    export LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "run.sh: using libyaml/jansson/xxhash/oniguruma/utf8proc unpacked from $debs into $prefix"
}

# NCCL: the toolkit's, else the one PyTorch's wheels bring (nvidia-nccl-cu*: header
# and library), so that a machine with torch but without NCCL packages still
# checks the NCCL backend (the build needs nccl.h; axorun dlopens the library).
find_nccl() {
    local d
    d=$(python3 -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null) || return 0
    if [ ! -f "$cuda/include/nccl.h" ] && [ ! -f /usr/include/nccl.h ] && [ -f "$d/include/nccl.h" ]; then
        export NCCL_HOME=$d
        echo "run.sh: nccl.h from the Python package at $d"
    fi
    if ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2 ' && [ -f "$d/lib/libnccl.so.2" ]; then
        export AXO_NCCL_LIB=${AXO_NCCL_LIB:-$d/lib/libnccl.so.2}
        echo "run.sh: libnccl.so.2 from the Python package at $d"
    fi
}

# ---- build -------------------------------------------------------------------------
build() {
    use_deps || return 1
    find_nccl
    echo "run.sh: building the project (Release) into $out/proj"
    cmake -S "$root" -B "$out/proj" -DCMAKE_BUILD_TYPE=Release >"$logs/cmake.log" 2>&1 ||
        { tail -20 "$logs/cmake.log"; return 1; }
    cmake --build "$out/proj" -j"$(nproc)" >"$logs/build.log" 2>&1 || { grep -E "error" -A3 "$logs/build.log" | head -40; return 1; }
    if [ ! -x "$out/proj/gpu_exec_check" ]; then
        echo "run.sh: the build has no CUDA executor (CMake found no CUDA runtime/cuBLASLt): see $logs/cmake.log" >&2
        return 1
    fi
    build_kernel_check || return 1
    echo "run.sh: built $out/proj (axoc, axorun, gpu_exec_check) and $out/test_cuda_kernels"
}

# the kernel check, compiled straight from the few sources it needs (CI builds it this way too:
# run.sh build-kernels, ctest gpu_run_build_kernels)
build_kernel_check() {
    mkdir -p "$out/gen/codegen"
    cmake -DAXO_EMBED_DIR="$root/codegen/kernels" -DAXO_EMBED_OUT="$out/gen/codegen/kernel_sources.inc" \
        -P "$root/codegen/embed_kernels.cmake" || return 1
    local xxh=-lxxhash
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib "$out/deps/usr/lib/x86_64-linux-gnu"; do
        if [ -f "$d/libxxhash.a" ]; then xxh="$d/libxxhash.a"; break; fi
    done
    # -L stubs only resolves symbols at link time; at run time the driver's
    # own libcuda.so.1 is loaded (the stub is never in the rpath).
    gcc -std=c11 -O2 -g -fopenmp -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
        -DAXO_HAVE_NVRTC=1 -DAXO_CUDA_INCLUDE_DIR="\"$cuda/include\"" \
        -I"$root" -I"$out/gen" -I"$cuda/include" \
        "$root/tests/gpu/test_cuda_kernels.c" "$root/ir/base.c" "$root/runtime/cpu_kernels.c" \
        "$root/codegen/nvrtc.c" "$root/codegen/cuda_kernels.c" \
        -L"$cuda/lib64" -L"$cuda/lib64/stubs" -Wl,-rpath,"$cuda/lib64" \
        -lcuda -lnvrtc "$xxh" -lpthread -lm -o "$out/test_cuda_kernels" || return 1
}

# ---- checks ----------------------------------------------------------------------------
check_kernels() {
    local groups="elementwise swiglu bias sumsq rmsnorm rope embedding cross_entropy adamw attention attention_blk entries"
    for g in $groups; do
        local log="$logs/kernels-$g.log"
        timeout 300 "$out/test_cuda_kernels" "$g" >"$log" 2>&1
        local rc=$? summary
        summary=$(grep -E "passed, [0-9]+ failed" "$log" | tail -1)
        if [ $rc -eq 0 ]; then record PASS "kernels:$g" "$summary"
        else record FAIL "kernels:$g" "exit $rc; $(grep -E '^FAIL|failed:|error' "$log" | head -3 | tr '\n' ' ')"; fi
    done
}

check_exec() {
    local from=0 round=0 npass=0 nfail=0 rc=0
    while :; do
        local log="$logs/exec-$round.log"
        AXO_CUDA_SYNC=1 timeout 900 "$out/proj/gpu_exec_check" --from "$from" >"$log" 2>&1
        rc=$?
        local p f
        p=$(grep -E "^[0-9]+ passed, [0-9]+ failed" "$log" | tail -1 | awk '{print $1}')
        f=$(grep -E "^[0-9]+ passed, [0-9]+ failed" "$log" | tail -1 | awk '{print $3}')
        npass=$((npass + ${p:-0})) nfail=$((nfail + ${f:-0}))
        grep -E "^FAIL" "$log" | head -20
        if [ $rc -eq 3 ]; then # context lost: go on after the faulting case
            from=$(grep -E "^RESUME" "$log" | tail -1 | awk '{print $2}')
            round=$((round + 1))
            [ -n "$from" ] && [ $round -lt 20 ] && continue
        fi
        break
    done
    if [ $rc -eq 0 ] && [ $nfail -eq 0 ]; then record PASS exec "$npass cases"
    elif [ $rc -eq 77 ]; then record SKIP exec "no CUDA device"
    else
        record FAIL exec "$npass passed, $nfail failed (exit $rc; $((round + 1)) process(es)); see $logs/exec-*.log"
        # one stream in program order: tells a stream-ordering bug from a kernel bug
        if [ $rc -ne 77 ] && [ "${AXO_CUDA_STREAMS:-}" != 0 ]; then
            AXO_CUDA_STREAMS=0 AXO_CUDA_SYNC=1 timeout 900 "$out/proj/gpu_exec_check" >"$logs/exec-one-stream.log" 2>&1
            local r1=$?
            record "$([ $r1 -eq 0 ] && echo PASS || echo FAIL)" exec-one-stream \
                "$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/exec-one-stream.log" | tail -1) (AXO_CUDA_STREAMS=0, exit $r1)"
        fi
    fi
    tc_note "$rc"
}

# The tensor-core attention kernels (codegen/kernels/attention_tc.cuh, AXO_CUDA_ATTN=tc: whole
# row and ring-attention blocks: op cases, soft-capped ones, and training runs; gpu_exec_check --list
# counts them) are
# not the default until a GPU has validated them: their gpu_exec_check cases (names with
# "tensor-core") get their own row and a note, $logs/tc-attention.txt (copied to
# $OUT/tc-attention.txt), whose first line is "tc-attention: PASS" only if every one of them
# ran and passed. bench/run.sh with AXO_BENCH_ATTN=tc refuses to run unless it says PASS.
tc_note() { # exit status of the last gpu_exec_check process
    local want note="$logs/tc-attention.txt" lines nok nbad status
    want=$("$out/proj/gpu_exec_check" --list 2>/dev/null | grep -c 'tensor-core')
    lines=$(cat "$logs"/exec-[0-9]*.log 2>/dev/null | grep -E '^(ok|FAIL) .*tensor-core')
    nok=$(printf '%s\n' "$lines" | grep -c '^ok ')
    nbad=$(printf '%s\n' "$lines" | grep -c '^FAIL')
    if [ "$1" -eq 77 ]; then status=SKIP
    elif [ "$nbad" -eq 0 ] && [ "$nok" -eq "$want" ]; then status=PASS
    else status=FAIL; fi
    {
        echo "tc-attention: $status ($nok of $want tensor-core cases passed, $nbad failed)"
        echo "AXO_CUDA_ATTN=tc (codegen/kernels/attention_tc.cuh) may be benchmarked only after PASS."
        printf '%s\n' "$lines"
    } >"$note"
    record "$status" tc-attention "$nok of $want tensor-core attention cases passed (AXO_CUDA_ATTN=tc; $note)"
}

# config file for the e2e runs: name dtype model extra-yaml
write_cfg() {
    cat >"$1" <<EOF
base_model: $root/configs/models/$3
datasets:
  - path: $root/configs/data/toy_count.jsonl
output_dir: ./out
sequence_len: 128
sample_packing: true
micro_batch_size: $mbs
gradient_accumulation_steps: $gas
max_steps: $steps
learning_rate: 0.003
lr_scheduler: cosine
warmup_steps: 2
max_grad_norm: 1.0
logging_steps: 1
seed: 42
bf16: $2
$4
EOF
}

# the extra YAML of the e2e sharding cases: $ds (DeepSpeed ZeRO-3 bf16), $fsdp (FSDP2 full shard).
# A case is one line (read splits it at '|'), so its extra YAML writes each newline as the two
# characters \n; case_yaml expands them (printf %b) after the read.
sharding_yaml() {
    ds="deepspeed: $root/configs/deepspeed/zero3_bf16.json"
    fsdp='fsdp_version: 2\nfsdp_config:\n  offload_params: false\n  auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  transformer_layer_cls_to_wrap: Qwen3DecoderLayer\n  state_dict_type: FULL_STATE_DICT\n  reshard_after_forward: true'
}
case_yaml() { printf '%b' "$1"; } # a case's extra YAML, its \n made newlines

compare_logs() { # cpu.jsonl cuda.jsonl tolerance
    python3 - "$1" "$2" "$3" <<'EOF'
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
tol = float(sys.argv[3])
if len(a) != len(b) or not a:
    print(f"step counts differ: cpu {len(a)}, cuda {len(b)}"); sys.exit(1)
worst, bad = 0.0, []
for x, y in zip(a, b):
    for k in ("loss", "grad_norm"):
        r = abs(x[k] - y[k]) / max(abs(x[k]), 1e-12)
        if not math.isfinite(y[k]) or r > tol: bad.append(f"step {x['step']} {k} cpu {x[k]:.6g} cuda {y[k]:.6g}")
        worst = max(worst, r if math.isfinite(r) else float("inf"))
print(f"{len(a)} steps, worst relative difference {worst:.2e} (tolerance {tol:g})" + ("; " + "; ".join(bad[:3]) if bad else ""))
sys.exit(1 if bad else 0)
EOF
}

check_e2e() {
    local t=$out/e2e
    rm -rf "$t" && mkdir -p "$t"
    local ds fsdp
    sharding_yaml
    # name world dtype model extra
    local cases=(
        "llama-f32|1|false|tiny-llama|"
        "llama-bf16|1|true|tiny-llama|"
        "qwen2-bf16-ckpt|1|true|tiny-qwen2|gradient_checkpointing: true"
        "qwen2-ddp2-f32|2|false|tiny-qwen2|"
        "llama-zero3x2-bf16|2|true|tiny-llama|$ds"
        "qwen3-fsdp2x2-bf16|2|true|tiny-qwen3|$fsdp"
        "llama-bf16-graphs|1|true|tiny-llama|"
        "llama-bfloat16|1|true|tiny-llama|bfloat16: true"
        "qwen2-ddp2-bfloat16|2|true|tiny-qwen2|bfloat16: true"
        "llama-bnb8bit-bfloat16|1|true|tiny-llama|optimizer: adamw_bnb_8bit\nbfloat16: true"
        "gemma3-bf16|1|true|tiny-gemma3|"
        "granite-bf16|1|true|tiny-granite|"
        "olmo3-bf16|1|true|tiny-olmo3|"
        "smollm3-bf16|1|true|tiny-smollm3|"
        "phi3-bf16|1|true|tiny-phi3|"
        "phi4mini-bf16|1|true|tiny-phi4mini|"
        "qwen3-yarn-bf16|1|true|tiny-qwen3-yarn|"
        "qwen3moe-bf16|1|true|tiny-qwen3moe|"
        "mixtral-zero3x2-bf16|2|true|tiny-mixtral|$ds"
    )
    for c in "${cases[@]}"; do
        IFS='|' read -r name world dtype model extra <<<"$c"
        [[ $name =~ $only && ! $name =~ $skip ]] || continue
        extra=$(case_yaml "$extra")
        local d=$t/$name
        mkdir -p "$d"
        write_cfg "$d/cfg.yml" "$dtype" "$model" "$extra"
        local tol=1e-4
        [ "$dtype" = true ] && tol=1e-2
        if ! (cd "$d" && "$axoc" compile cfg.yml -o plan.bin --world-size "$world" >compile.log 2>&1); then
            record FAIL "e2e:$name" "axoc compile failed: $(tail -2 "$d/compile.log" | tr '\n' ' ')"
            continue
        fi
        local ok=1 ex
        # the cuda run poisons its arena and names a faulting node (slower; tiny models), except the
        # *-graphs case: as users run it (several streams, CUDA graphs from the second step on)
        local checking="AXO_CUDA_POISON=1 AXO_CUDA_SYNC=1"
        case $name in *-graphs) checking="AXO_CUDA_POISON=0 AXO_CUDA_SYNC=0" ;; esac
        for ex in cpu cuda; do
            (cd "$d" && env $checking timeout 600 "$axorun" plan.bin --executor $ex \
                --comm local --output-dir "out-$ex" --overwrite >"run-$ex.log" 2>&1) || ok=0
        done
        if [ $ok = 1 ] && [[ $name == *-graphs ]] && ! grep -q "captured in a CUDA graph" "$d/run-cuda.log"; then
            record FAIL "e2e:$name" "no program was captured in a CUDA graph: $(grep -h 'CUDA graph' "$d/run-cuda.log" | head -2 | tr '\n' ' ')"
            continue
        fi
        if [ $ok = 0 ]; then
            record FAIL "e2e:$name" "axorun failed: $(grep -h error "$d"/run-*.log | head -2 | tr '\n' ' ')"
            continue
        fi
        if ! grep -q "cuda executor" "$d/run-cuda.log"; then
            record FAIL "e2e:$name" "the cuda run did not use the CUDA executor"
            continue
        fi
        local cmp
        if cmp=$(compare_logs "$d/out-cpu/train_log.jsonl" "$d/out-cuda/train_log.jsonl" "$tol"); then
            record PASS "e2e:$name" "$cmp"
        else
            record FAIL "e2e:$name" "$cmp"
        fi
    done
}

# resume_from_checkpoint on the CUDA executor: a run resumed from its checkpoint at half the steps
# (checkpoint-4 of 8) logs the straight run's later steps (the CPU executor is bit for bit, e2e cli.sh; here the weights are compared too and
# the note says whether they are identical): 1 rank pure bf16 with 8-bit AdamW state, and 2 local ranks
# ZeRO-3 bf16 (sharded moments and f32 master blocks come back from the device and go back to it)
check_resume() {
    local t=$out/resume ds fsdp
    rm -rf "$t" && mkdir -p "$t"
    sharding_yaml
    local cases=("pure8|1|optimizer: adamw_bnb_8bit\nbfloat16: true" "zero3x2|2|$ds")
    local half=$((steps / 2))
    for c in "${cases[@]}"; do
        IFS='|' read -r name world extra <<<"$c"
        local d=$t/$name
        mkdir -p "$d"
        write_cfg "$d/cfg.yml" true tiny-llama "$(case_yaml "$extra\nsave_steps: $half")"
        if ! (cd "$d" && "$axoc" compile cfg.yml -o plan.bin --world-size "$world" >compile.log 2>&1 &&
            timeout 600 "$axorun" plan.bin --executor cuda --comm local --output-dir A >run-A.log 2>&1 &&
            timeout 600 "$axorun" plan.bin --executor cuda --comm local --output-dir B \
                --resume-from "A/checkpoint-$half" >run-B.log 2>&1); then
            record FAIL "resume:$name" "$(grep -h error "$d"/*.log | head -2 | tr '\n' ' ')"
            continue
        fi
        local cmp same=differ
        cmp -s "$d/A/model.safetensors" "$d/B/model.safetensors" && same="identical"
        if cmp=$(compare_logs "$d/A/train_log.jsonl" "$d/B/train_log.jsonl" 1e-6); then
            record PASS "resume:$name" "$cmp; final weights $same"
        else
            record FAIL "resume:$name" "$cmp; final weights $same"
        fi
    done
}

check_oom() {
    local d=$out/oom
    rm -rf "$d" && mkdir -p "$d/model"
    cat >"$d/model/config.json" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
 "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 128256,
 "max_position_embeddings": 1048576, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
 "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 3, "pad_token_id": 0}
EOF
    cat >"$d/cfg.yml" <<EOF
base_model: $d/model
datasets:
  - path: $root/configs/data/toy_count.jsonl
sequence_len: 131072
sample_packing: true
micro_batch_size: 8
max_steps: 1
bf16: true
EOF
    if ! (cd "$d" && "$out/proj/axoc" compile cfg.yml -o plan.bin >compile.log 2>&1); then
        record FAIL refuse-oom "axoc compile failed: $(tail -2 "$d/compile.log" | tr '\n' ' ')"
        return
    fi
    (cd "$d" && timeout 300 "$out/proj/axorun" plan.bin --executor cuda --output-dir out >run.log 2>&1)
    local rc=$?
    if [ $rc -ne 0 ] && grep -q "does not fit" "$d/run.log" && [ ! -e "$d/out/model.safetensors" ]; then
        record PASS refuse-oom "$(grep -o 'a rank needs [^=]*' "$d/run.log" | head -1)"
    else
        record FAIL refuse-oom "exit $rc: $(tail -3 "$d/run.log" | tr '\n' ' ')"
    fi
}

# ---- NCCL ------------------------------------------------------------------------
ngpus() { nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true; }

check_nccl() {
    local n log rc
    for n in 1 2; do
        log="$logs/nccl-$n.log"
        if [ "$n" = 1 ]; then timeout 300 "$out/proj/gpu_nccl_check" >"$log" 2>&1
        else timeout 300 "$out/proj/gpu_nccl_check" --ranks "$n" >"$log" 2>&1; fi
        rc=$?
        grep -E "^(info|FAIL|ok)" "$log" | head -20
        local name="nccl:1rank"
        [ "$n" != 1 ] && name="nccl:${n}ranks"
        if [ $rc -eq 0 ]; then record PASS "$name" "$(grep -E "passed, [0-9]+ failed" "$log" | tail -1)"
        elif [ $rc -eq 77 ]; then record SKIP "$name" "$(grep -m1 '^SKIP' "$log")"
        else record FAIL "$name" "exit $rc; $(grep -E '^FAIL' "$log" | head -3 | tr '\n' ' ')"; fi
    done
}

check_e2e_nccl() {
    local g cmp=""
    g=$(ngpus)
    if [ "${g:-0}" -lt 2 ]; then
        record SKIP "e2e-nccl" "needs 2 GPUs, ${g:-0} visible"
        return
    fi
    local t=$out/e2e-nccl
    rm -rf "$t" && mkdir -p "$t"
    local ds fsdp
    sharding_yaml
    # name dtype model executor-expected extra
    local cases=(
        "qwen2-ddp2-f32|false|tiny-qwen2|cuda|"
        "llama-zero3x2-bf16|true|tiny-llama|cuda|$ds"
        "qwen3-fsdp2x2-bf16|true|tiny-qwen3|cuda|$fsdp"
        "llama-sp2-f32|false|tiny-llama|cpu|sequence_parallel_degree: 2"
    )
    for c in "${cases[@]}"; do
        IFS='|' read -r name dtype model exp extra <<<"$c"
        extra=$(case_yaml "$extra")
        local d=$t/$name
        mkdir -p "$d"
        write_cfg "$d/cfg.yml" "$dtype" "$model" "$extra"
        local tol=1e-4
        [ "$dtype" = true ] && tol=1e-2
        if ! (cd "$d" && "$out/proj/axoc" compile cfg.yml -o plan.bin --world-size 2 >compile.log 2>&1); then
            record FAIL "e2e-nccl:$name" "axoc compile failed: $(tail -2 "$d/compile.log" | tr '\n' ' ')"
            continue
        fi
        if ! (cd "$d" && timeout 600 "$out/proj/axorun" plan.bin --executor cpu --comm local --output-dir out-ref \
            --overwrite >run-ref.log 2>&1); then
            record FAIL "e2e-nccl:$name" "the CPU reference failed: $(grep -h error "$d/run-ref.log" | head -2 | tr '\n' ' ')"
            continue
        fi
        if ! (cd "$d" && AXO_COMM_TIMEOUT=120 timeout 600 "$out/proj/axorun" plan.bin --comm nccl --output-dir out-nccl \
            --overwrite >run-nccl.log 2>&1); then
            record FAIL "e2e-nccl:$name" "axorun failed: $(grep -h error "$d/run-nccl.log" | head -3 | tr '\n' ' ')"
            continue
        fi
        if ! grep -q "NCCL backend" "$d/run-nccl.log" || ! grep -q "$exp executor" "$d/run-nccl.log"; then
            record FAIL "e2e-nccl:$name" "the run did not use NCCL with the $exp executor (see $d/run-nccl.log)"
            continue
        fi
        if cmp=$(compare_logs "$d/out-ref/train_log.jsonl" "$d/out-nccl/train_log.jsonl" "$tol"); then
            record PASS "e2e-nccl:$name" "$cmp"
        else
            record FAIL "e2e-nccl:$name" "$cmp"
        fi
    done
    # torchrun starting axorun as its ranks (--no-python), if torchrun is here
    local d=$t/qwen2-ddp2-f32
    if command -v torchrun >/dev/null 2>&1 && [ -f "$d/plan.bin" ]; then
        if (cd "$d" && AXO_COMM_TIMEOUT=120 timeout 600 torchrun --standalone --nproc-per-node 2 --no-python \
            "$out/proj/axorun" plan.bin --output-dir out-torchrun --overwrite >run-torchrun.log 2>&1) &&
            cmp=$(compare_logs "$d/out-ref/train_log.jsonl" "$d/out-torchrun/train_log.jsonl" 1e-4); then
            record PASS "e2e-nccl:torchrun" "$cmp"
        else
            record FAIL "e2e-nccl:torchrun" "$(grep -h error "$d/run-torchrun.log" | head -2 | tr '\n' ' ') $cmp"
        fi
    else
        record SKIP "e2e-nccl:torchrun" "torchrun is not installed"
    fi
    # a rank failing first (before CUDA): the spawner ends the job at once, naming it
    if [ -f "$d/plan.bin" ]; then
        local t0=$SECONDS
        (cd "$d" && AXO_TEST_FAIL_RANK=1 AXO_COMM_TIMEOUT=120 timeout 300 "$out/proj/axorun" plan.bin --comm nccl \
            --output-dir out-fail >run-fail.log 2>&1)
        local rc=$? secs=$((SECONDS - t0))
        if [ $rc -ne 0 ] && [ $secs -lt 60 ] && grep -q "rank 1 (pid [0-9]*) exited with status 3" "$d/run-fail.log"; then
            record PASS "e2e-nccl:rank-fails" "ended in $secs s: $(grep -m1 'exited with status' "$d/run-fail.log")"
        else
            record FAIL "e2e-nccl:rank-fails" "exit $rc after $secs s: $(tail -2 "$d/run-fail.log" | tr '\n' ' ')"
        fi
    fi
}

run_checks() {
    # libraries unpacked from carried .debs by an earlier build (the binaries do not record their path)
    if [ -d "$out/deps/usr/lib/x86_64-linux-gnu" ]; then
        export LD_LIBRARY_PATH="$out/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    if [ ! -x "$out/proj/gpu_exec_check" ] || [ ! -x "$out/test_cuda_kernels" ]; then
        echo "run.sh: not built (tests/gpu/run.sh build)" >&2
        exit 2
    fi
    find_nccl
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader
    local t0=$SECONDS
    check_kernels
    check_exec
    check_e2e
    check_resume
    check_oom
    check_nccl
    check_e2e_nccl
    echo
    echo "GPU checks ($((SECONDS - t0)) s; logs in $logs):"
    printf '%s\n' "${rows[@]}" | tee "$logs/summary.txt"
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        cp "$logs/summary.txt" "$OUT/gpu-summary.txt"
        [ -f "$logs/tc-attention.txt" ] && cp "$logs/tc-attention.txt" "$OUT/tc-attention.txt"
        tar czf "$OUT/gpu-logs.tar.gz" -C "$out" --exclude='*.safetensors' --exclude='*.bin' --exclude='deps' \
            logs e2e resume oom e2e-nccl 2>/dev/null
    fi
    if printf '%s\n' "${rows[@]}" | grep -q '^FAIL'; then
        echo "RESULT: FAIL ($(printf '%s\n' "${rows[@]}" | grep -c '^FAIL') of ${#rows[@]} checks failed)"
        return 1
    fi
    echo "RESULT: PASS (${#rows[@]} checks)"
}

# emu mode: the rows that run whole training jobs, on the emulated device
run_emu() {
    [ -x "$axorun" ] || { echo "run.sh emu: $axorun is not built (it needs a C++ compiler)" >&2; exit 2; }
    check_e2e
    check_resume
    printf '%s\n' "${rows[@]}"
    if printf '%s\n' "${rows[@]}" | grep -q '^FAIL'; then
        [ -n "${KEEP:-}" ] || echo "(KEEP=1 keeps the runs' folders)"
        echo "RESULT: FAIL"
        return 1
    fi
    echo "RESULT: PASS (${#rows[@]} checks on the emulated device)"
}

case "$mode" in
all) build || { record FAIL build "see $logs/build.log"; exit 1; }; run_checks ;;
emu) run_emu ;;
build-kernels) use_deps && build_kernel_check && echo "run.sh: built $out/test_cuda_kernels" ;;
build) build ;;
run) run_checks ;;
fetch-deps) fetch_deps ;;
*) echo "usage: $0 [all|build|build-kernels|run|fetch-deps|emu BUILD_DIR]" >&2; exit 2 ;;
esac
