# Sourced by the end-to-end scripts (tests/e2e/*.sh): a scratch folder $T
# (removed at exit; KEEP=1 keeps it and says where), the plan cache inside
# it, and the check / finish pair that counts and reports.
#   check 'shell condition' "what it checks"     a failure prints FAIL: ...
#   finish                                       "N passed, N failed"; the exit status
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
