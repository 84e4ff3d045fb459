# Sourced by the end-to-end scripts (tests/e2e/*.sh): a scratch folder $T
# (removed at exit; KEEP=1 keeps it and says where), the plan cache inside
# it, and the check / finish pair that counts and reports.
#   check 'shell condition' "what it checks"     a failure prints FAIL: ...
#   finish                                       "N passed, N failed"; the exit status
#   losses_agree A B TOL                         two train_log.jsonl: the same losses, to a relative TOL
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
