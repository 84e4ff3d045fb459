# Sourced by the end-to-end scripts (tests/e2e/*.sh): a scratch folder $T
# (removed at exit; KEEP=1 keeps it and says where), the plan cache inside
# it, and the check / finish pair that counts and reports.
#   check 'shell condition' "what it checks"     a failure prints FAIL: ...
#   finish                                       "N passed, N failed"; the exit status
#   losses_agree A B TOL                         two train_log.jsonl: the same losses, to a relative TOL
#   st names|shape|same|differ ...               safetensors checks (lib/st.py)
#   model_cfg MODEL OUT [EXTRA]                  a 4-step YAML on the bundled toy_count rows (needs $SRC)
T=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
[ -n "${KEEP:-}" ] && echo "keeping $T"
export AXO_CACHE_DIR="$T/cache"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
finish() {
  echo "$pass passed, $fail failed"
  test "$fail" -eq 0
}
losses_agree() {
  python3 - "$1" "$2" "$3" <<'PYEOF'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p) if '"loss"' in l] for p in sys.argv[1:3])
tol = float(sys.argv[3])
ok = len(a) == len(b) and len(a) > 0 and all(abs(x - y) <= tol * abs(x) for x, y in zip(a, b))
if not ok: print("losses differ:", a, b, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}
st() { python3 "$SRC/tests/e2e/lib/st.py" "$@"; }
model_cfg() { # $1 model dir, $2 output dir, $3 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 4\n' \
    "$1" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nlogging_steps: 1\nseed: 3\noutput_dir: %s\n%s\n' "$2" "${3:-}"
}
