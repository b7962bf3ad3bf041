#!/usr/bin/env bash
# One call's work on the GPU machine (the `device` tool): build with CUDA for
# the card, run the test suite, measure the ceilings, look at the SASS of the
# peak kernels and run `kq bench` on the host CPU. Logs go to $OUT (or
# ./device-out when run elsewhere). Usage: bash bench/device.sh [BENCH_ARGS...]
set -uo pipefail
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site
fi
export PATH="$PATH:/usr/local/cuda/bin"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  git log -1 --format='commit %h %s' 2>/dev/null
  lscpu | grep -E 'Model name|^CPU\(s\)|L3'
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"
cmake -S . -B build-dev -DKQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release \
  >"$out/build.log" 2>&1 && cmake --build build-dev -j16 >>"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
cuobjdump -sass build-dev/CMakeFiles/kquant_obj.dir/src/cuda/ceilings.cu.o 2>/dev/null |
  grep -oE '(HGMMA|IGMMA|HMMA|IMMA)[.A-Z0-9_]*' | sort | uniq -c >"$out/sass.txt"
echo "matrix instructions in the ceilings kernels:"; cat "$out/sass.txt"
ctest --test-dir build-dev -j8 --output-on-failure >"$out/ctest.log" 2>&1
tail -5 "$out/ctest.log"
build-dev/test_ceilings 2>&1 | tee "$out/ceilings.txt"
build-dev/kq backends 2>&1 | tee "$out/backends.txt"
if [ $# -gt 0 ]; then
  build-dev/kq bench "$@" --json "$out/bench.json" --svg "$out/bench.svg" >"$out/bench.txt" 2>&1
  echo "kq bench exit $?"; tail -30 "$out/bench.txt"
fi
