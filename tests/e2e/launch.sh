#!/usr/bin/env bash
# axorun as a multi-process launcher and as one rank of a job, without a GPU:
# AXO_TEST_FAKE_RANKS=1 makes each rank do what it does before touching CUDA
# (read the launcher's environment, share a unique-id-sized blob from rank 0
# over the TCP rendezvous) and print the id, so the spawner, the
# torchrun/Slurm/OpenMPI environments and the bootstrap are checked here;
# AXO_TEST_FAIL_RANK=r makes rank r fail first, so failure propagation is too.
# Also: a job/plan mismatch and a bad environment are refused at once, and
# the single-process paths are unchanged.
# usage: launch.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
export AXO_CACHE_DIR="$T/cache"
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT SLURM_PROCID SLURM_NTASKS \
  SLURM_STEP_NUM_TASKS SLURM_LOCALID OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_LOCAL_RANK \
  AXO_TEST_FAKE_RANKS AXO_TEST_FAIL_RANK AXO_COMM_TIMEOUT AXO_RDZV_PORT TORCHELASTIC_USE_AGENT_STORE
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# the ids printed by fake ranks: one distinct value expected
ids() { grep -h -o 'id [0-9a-f]*' "$@" | sort -u | wc -l; }

cd "$T" || exit 1
check '"$AXOC" compile "$SRC/configs/quickstart.yml" -o p2.bin --world-size 2 >c2.out 2>&1' "compile for 2 ranks"
check '"$AXOC" compile "$SRC/configs/quickstart.yml" -o p1.bin >c1.out 2>&1' "compile for 1 rank"

# ---- axorun spawns one process per rank -------------------------------------------------
check 'AXO_TEST_FAKE_RANKS=1 timeout 60 "$AXORUN" p2.bin --comm nccl >s.out 2>s.err' "spawned fake ranks succeed"
check 'grep -q "starting 2 ranks, one process per GPU" s.out' "the spawner says what it starts"
check 'grep -q "fake rank 0 of 2 (torchrun, local rank 0)" s.out && grep -q "fake rank 1 of 2 (torchrun, local rank 1)" s.out' \
  "each spawned rank sees its RANK/LOCAL_RANK/WORLD_SIZE"
check 'test "$(ids s.out)" = 1' "both ranks got rank 0's id over the rendezvous"

# a rank failing before the rendezvous: the job ends at once (not at the 60 s
# timeout of the peer waiting for it), naming the rank and its status
for r in 1 0; do
  t0=$SECONDS
  AXO_TEST_FAKE_RANKS=1 AXO_TEST_FAIL_RANK=$r AXO_COMM_TIMEOUT=60 timeout 60 "$AXORUN" p2.bin --comm nccl >f$r.out 2>f$r.err
  rc=$?
  check 'test $rc -ne 0 && test $((SECONDS - t0)) -lt 20' "a failing rank $r ends the job quickly (rc $rc, $((SECONDS - t0)) s)"
  check 'grep -q "rank $r: failing on purpose" f$r.err' "rank $r says why it failed"
  check 'grep -q "rank $r (pid [0-9]*) exited with status 3; stopped the other rank" f$r.err' "the spawner names rank $r"
done

# ---- axorun joins a job started by a launcher -------------------------------------------
two_ranks() { # name: runs rank 0 and rank 1 with the environments in $env0/$env1, fake
  local name=$1
  env $env0 AXO_TEST_FAKE_RANKS=1 AXO_COMM_TIMEOUT=30 timeout 60 "$AXORUN" p2.bin >"$name-0.out" 2>"$name-0.err" &
  local p0=$!
  env $env1 AXO_TEST_FAKE_RANKS=1 AXO_COMM_TIMEOUT=30 timeout 60 "$AXORUN" p2.bin >"$name-1.out" 2>"$name-1.err"
  local r1=$?
  wait $p0
  local r0=$?
  [ $r0 = 0 ] && [ $r1 = 0 ]
}
P=$(port)
env0="RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P"
env1="RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P"
check 'two_ranks torchrun' "two ranks under a torchrun environment"
check 'grep -q "fake rank 1 of 2 (torchrun, local rank 1)" torchrun-1.out && test "$(ids torchrun-0.out torchrun-1.out)" = 1' \
  "torchrun ranks share rank 0's id"
P=$(port)
env0="SLURM_PROCID=0 SLURM_NTASKS=2 SLURM_LOCALID=0 SLURM_JOB_NODELIST=localhost MASTER_PORT=$P"
env1="SLURM_PROCID=1 SLURM_NTASKS=2 SLURM_LOCALID=1 SLURM_JOB_NODELIST=localhost MASTER_PORT=$P"
check 'two_ranks slurm' "two ranks under a Slurm (srun) environment"
check 'grep -q "fake rank 1 of 2 (slurm, local rank 1)" slurm-1.out && test "$(ids slurm-0.out slurm-1.out)" = 1' \
  "Slurm ranks share rank 0's id (MASTER_ADDR from the node list)"
P=$(port)
env0="OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P"
env1="OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P"
check 'two_ranks ompi' "two ranks under an OpenMPI (mpirun) environment"
check 'grep -q "fake rank 0 of 2 (openmpi, local rank 0)" ompi-0.out && test "$(ids ompi-0.out ompi-1.out)" = 1' \
  "OpenMPI ranks share rank 0's id"

# torchrun >= 2.4 (c10d rendezvous): its agent serves a TCPStore on MASTER_PORT and
# says so; the ranks then meet on MASTER_PORT + 1. A listener stands in for the store.
listen_on() { python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)' "$1" & }
P=$(port)
listen_on "$P"
store=$!
# until the stand-in store listens (a fixed pause lost the race on a loaded machine: CI's ASan run)
python3 -c 'import socket, sys, time
for _ in range(400):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close(); break
    except OSError: time.sleep(0.05)' "$P"
env0="RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P TORCHELASTIC_USE_AGENT_STORE=True"
env1="RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P TORCHELASTIC_USE_AGENT_STORE=True"
check 'two_ranks agent && test "$(ids agent-0.out agent-1.out)" = 1' "next to torchrun's agent store, the ranks meet on MASTER_PORT + 1"
# ... and without that flag the taken port is reported with the way out
check '! RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P AXO_TEST_FAKE_RANKS=1 timeout 20 "$AXORUN" p2.bin 2>taken.err' \
  "rank 0 cannot listen on a taken port"
check 'grep -q "Address already in use" taken.err && grep -q "AXO_RDZV_PORT" taken.err' "the taken port is named with AXO_RDZV_PORT as the way out"
Q=$(port)
check 'RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P AXO_RDZV_PORT=$Q AXO_TEST_FAKE_RANKS=1 timeout 30 "$AXORUN" p2.bin >rp0.out 2>rp0.err &
  RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P AXO_RDZV_PORT=$Q AXO_TEST_FAKE_RANKS=1 timeout 30 "$AXORUN" p2.bin >rp1.out 2>rp1.err && wait $! && test "$(ids rp0.out rp1.out)" = 1' \
  "AXO_RDZV_PORT moves the exchange"
kill $store 2>/dev/null

# rank 0 never comes: rank 1 gives up at AXO_COMM_TIMEOUT, saying where it looked
P=$(port)
t0=$SECONDS
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P AXO_COMM_TIMEOUT=1 AXO_TEST_FAKE_RANKS=1 timeout 30 \
  "$AXORUN" p2.bin >lone.out 2>lone.err
rc=$?
check 'test $rc = 1 && test $((SECONDS - t0)) -lt 10' "a rank without rank 0 ends at the timeout (rc $rc)"
check 'grep -q "rank 1: could not reach rank 0 at 127.0.0.1:$P within 1 s" lone.err' "it names rank 0's address"

# the job and the plan disagree, or the environment is wrong: refused before any waiting
check '! RANK=0 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 timeout 20 "$AXORUN" p2.bin 2>w.err' "a 3-rank job with a 2-rank plan fails"
check 'grep -q "rank 0: .*compiled for 2 ranks but torchrun started 3 (recompile with axoc --world-size 3)" w.err' \
  "the size mismatch names both sizes"
check '! RANK=x WORLD_SIZE=2 timeout 20 "$AXORUN" p2.bin 2>e.err && grep -q "RANK=.x. is not a non-negative integer" e.err' \
  "a bad RANK is named"
check '! RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 timeout 20 "$AXORUN" p2.bin --comm local 2>l.err && grep -q "comm local: this process is rank 1 of 2" l.err' \
  "--comm local cannot join a job"
"$AXORUN" p2.bin --comm bogus >/dev/null 2>&1
check 'test $? -eq 2' "an unknown --comm is a usage error"

# without a GPU (this machine, CI): NCCL is refused with the reason
if ! "$AXORUN" p1.bin --executor cuda --max-steps 1 --quiet --output-dir g >/dev/null 2>&1; then
  check '! timeout 20 "$AXORUN" p2.bin --comm nccl 2>n.err && grep -q "comm nccl runs one process per GPU: the plan has 2 ranks but 0 GPUs" n.err' \
    "--comm nccl without GPUs says why"
  check '! RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 LOCAL_RANK=1 timeout 20 "$AXORUN" p2.bin 2>j.err && grep -q "rank 1 of 2 (torchrun): the NCCL backend needs a CUDA GPU per rank" j.err' \
    "a joined rank without a GPU says why"
fi

# unchanged: local ranks in one process, and a launcher's job of one rank
check '"$AXORUN" p2.bin --comm local --max-steps 1 --quiet --output-dir loc 2>loc.err && test -f loc/model.safetensors' \
  "--comm local trains a 2-rank plan as threads"
check 'RANK=0 WORLD_SIZE=1 "$AXORUN" p1.bin --executor cpu --max-steps 1 --quiet --output-dir one 2>one.err && test -f one/model.safetensors' \
  "a one-rank torchrun job trains in-process"

echo "launch.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
