#!/usr/bin/env bash
# axorun's executor choice from the command line: --executor cpu|cuda, the
# default (cuda where a GPU is, else cpu, silently), and a clear refusal of
# --executor cuda where there is no GPU (CI, this machine).
# usage: executor.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"

cd "$T" || exit 1
check '"$AXOC" compile "$SRC/configs/quickstart.yml" -o p.bin 2>c.err' "compile quickstart"
check '! "$AXORUN" p.bin --executor gpu 2>e1.err && grep -q "expected cpu or cuda" e1.err' "an unknown executor is refused"
"$AXORUN" p.bin --executor gpu >/dev/null 2>&1
check 'test $? -eq 2' "an unknown executor is a usage error (exit 2)"
check '"$AXORUN" p.bin --executor cpu --max-steps 2 --output-dir cpu --quiet 2>cpu.err' "--executor cpu trains"
check 'test -f cpu/model.safetensors' "--executor cpu saves the model"

# --executor cuda: trains where a GPU is; elsewhere fails at once, saying why, writing nothing
if "$AXORUN" p.bin --executor cuda --max-steps 2 --output-dir gpu >gpu.out 2>gpu.err; then
  has_gpu=1
  check 'grep -q "cuda executor" gpu.out && test -f gpu/model.safetensors' "--executor cuda trains on the GPU"
else
  has_gpu=0
  check 'grep -q -- "--executor cuda: " gpu.err' "--executor cuda without a GPU names the reason"
  check 'test ! -e gpu' "--executor cuda without a GPU writes nothing"
fi
# the default follows the device
check '"$AXORUN" p.bin --max-steps 1 --output-dir dflt >dflt.out 2>dflt.err' "the default executor trains"
if [ "$has_gpu" = 1 ]; then
  check 'grep -q "cuda executor" dflt.out' "default is cuda where a GPU is"
else
  check 'grep -q "cpu executor" dflt.out && ! grep -qi "cuda" dflt.err' "default is cpu, silently, without a GPU"
fi

echo "executor.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
