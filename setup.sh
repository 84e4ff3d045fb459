#!/usr/bin/env bash
# setup.sh — installs what axo needs on a fresh Debian/Ubuntu machine and
# builds it into ./build (Release). Safe to run again.
#   AXO_BUILD_TYPE=Debug bash setup.sh    another build type
#   AXO_BUILD_DIR=build-asan AXO_SANITIZE=ON bash setup.sh
set -euo pipefail
cd "$(dirname "$0")"

pkgs=(cmake make gcc g++ libc6-dev libyaml-dev libjansson-dev libxxhash-dev libonig-dev libutf8proc-dev libcurl4-openssl-dev zlib1g-dev libsnappy-dev libzstd-dev liblz4-dev python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The CUDA toolkit (NVRTC, cuBLAS, NCCL) is needed only for GPU plans; the
# CPU reference executor works without it.
cuda=""
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
  [ -n "$d" ] && [ -f "$d/include/nvrtc.h" ] && cuda="$d" && break
done
if [ -n "$cuda" ]; then
  echo "setup: CUDA toolkit found at $cuda ($("$cuda/bin/nvcc" --version 2>/dev/null | tail -1))"
  for h in cublasLt.h nccl.h; do [ -f "$cuda/include/$h" ] || echo "setup: warning: $cuda/include/$h is missing"; done
else
  echo "setup: no CUDA toolkit under \$CUDA_HOME or /usr/local/cuda: GPU codegen is disabled; the CPU executor still works"
fi

build="${AXO_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="${AXO_BUILD_TYPE:-Release}" -DAXO_SANITIZE="${AXO_SANITIZE:-OFF}" >/dev/null
cmake --build "$build" -j"$(nproc)" 2>&1 | grep -E "error|warning|Built target (axoc|axorun)" || true
test -x "$build/axoc" && test -x "$build/axorun" || { echo "setup: build failed" >&2; exit 1; }
echo "setup: built $build/axoc and $build/axorun"
