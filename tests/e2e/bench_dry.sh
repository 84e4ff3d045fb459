#!/usr/bin/env bash
# bench/run.sh --dry without a GPU: the YAML the GPU benchmark writes for each
# mode (full, pure, 8bit, lora, qlora) and length compiles with axoc, and axoc's
# parameter counts are bench/flops.py's (the MFU numerators of the table).
# usage: bench_dry.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 SRC=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
command -v python3 >/dev/null || { echo "SKIP: bench/run.sh needs python3"; exit 0; }

dry() { # modes -> bench/run.sh --dry's exit status, its output in $T/dry.out
    AXO_CACHE_DIR="$T/cache" AXO_BENCH_BUILD=$(dirname "$AXOC") AXO_BENCH_OUT="$T/bench" AXO_BENCH_MODES="$1" \
        bash "$SRC/bench/run.sh" --dry >"$T/dry.out" 2>&1
}
check 'dry "full pure 8bit lora qlora"' "bench/run.sh --dry compiles every mode and length: $(cat "$T/dry.out" 2>/dev/null)"
cat "$T/dry.out"
B=$T/bench
check '[ "$(grep -c "bench/flops.py agrees" "$T/dry.out")" = 10 ]' "five modes x two lengths checked"
check 'grep -qx "optimizer: adamw_bnb_8bit" "$B/axo-8bit-2048/cfg.yml" && grep -qx "bfloat16: true" "$B/axo-8bit-2048/cfg.yml" && grep -qx "optimizer: adamw_torch" "$B/axo-pure-2048/cfg.yml"' "8bit YAML: pure bf16 with adamw_bnb_8bit"
check 'grep -qx "bfloat16: true" "$B/axo-pure-2048/cfg.yml" && ! grep -q "^bf16:" "$B/axo-pure-2048/cfg.yml" && grep -qx "bf16: true" "$B/axo-2048/cfg.yml"' "pure YAML: bfloat16: true; full YAML: bf16: true"
optgib() { sed -n "s/.*optimizer state \([0-9.]*\) GiB.*/\1/p" "$1"; }
check 'awk -v p="$(optgib "$B/axo-pure-2048/compile.log")" -v f="$(optgib "$B/axo-2048/compile.log")" "BEGIN{exit !(p > 0 && p * 3 > f * 0.999 && p * 3 < f * 1.001)}"' "pure keeps a third of full's optimizer state ($(optgib "$B/axo-pure-2048/compile.log") vs $(optgib "$B/axo-2048/compile.log") GiB)"
check '! grep -q "^adapter:" "$B/axo-2048/cfg.yml"' "the full-FT YAML has no adapter"
check 'grep -qx "learning_rate: 1.0e-5" "$B/axo-2048/cfg.yml"' "the full-FT learning rate is unchanged"
check 'grep -qx "adapter: lora" "$B/axo-lora-2048/cfg.yml" && grep -qx "lora_target_linear: true" "$B/axo-lora-2048/cfg.yml" && ! grep -q load_in_4bit "$B/axo-lora-2048/cfg.yml"' "lora YAML: adapter keys, no 4-bit"
check 'grep -qx "adapter: qlora" "$B/axo-qlora-4096/cfg.yml" && grep -qx "load_in_4bit: true" "$B/axo-qlora-4096/cfg.yml"' "qlora YAML: 4-bit base"
check '! dry "full lorax" && grep -q "unknown mode .lorax." "$T/dry.out"' "an unknown mode is refused"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
