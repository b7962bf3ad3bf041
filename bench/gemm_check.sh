#!/usr/bin/env bash
# The prefill GEMM on the GPU machine (issue 6): build for sm_90a, run its
# test (and compute-sanitizer on a slice with SAN=1), then time the GEMM
# beside the batched-decode kernels (cuda:gemm=off). Logs to $OUT.
# Usage: bash bench/gemm_check.sh [extra kq bench args]
set -uo pipefail
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv >"$out/machine.txt" 2>&1
git log -1 --format='commit %h %s' >>"$out/machine.txt" 2>/dev/null
cmake -S . -B build-dev -DKQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release \
  >"$out/build.log" 2>&1 && cmake --build build-dev -j16 --target kq test_cuda_gemm ${TARGETS:-} >>"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
cuobjdump -sass build-dev/CMakeFiles/kquant_obj.dir/src/cuda/qgemm_sm90.cu.o 2>/dev/null |
  grep -oE '(HGMMA|HMMA)[.A-Z0-9_]*' | sort | uniq -c >"$out/sass.txt"
cat "$out/sass.txt"
if [ "${TEST:-1}" = 1 ]; then
  timeout 300 build-dev/test_cuda_gemm >"$out/test.log" 2>&1
  echo "test_cuda_gemm exit $?"; grep -E "FAIL|fail|error" "$out/test.log" | head -20; tail -3 "$out/test.log"
fi
if [ "${SAN:-0}" = 1 ]; then
  timeout 400 compute-sanitizer --tool memcheck build-dev/test_cuda_gemm >"$out/memcheck.log" 2>&1
  echo "memcheck exit $?"; tail -5 "$out/memcheck.log"
fi
if [ "${BENCH:-1}" = 1 ]; then
  timeout 300 build-dev/kq bench --backend cuda --backend cuda:gemm=off --min-time 0.1 --budget 0 \
    "$@" >"$out/bench.txt" 2>&1
  echo "kq bench exit $?"; cat "$out/bench.txt" | tail -60
fi
