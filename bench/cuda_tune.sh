#!/usr/bin/env bash
# Tuning the streaming kernels (stream_gemv.cu) in one device call: builds
# variants of chunk x stages (KQ_STREAM_CHUNK: blocks a stage for Q5_K/Q6_K,
# twice that for Q4_K; KQ_STREAM_STAGES: ring slots per warp) and times the
# m = 1 shapes with each. Keep chunk * 2 * 144 * 8 * stages + 22.5 KB under
# 99 KB (the sm_86/sm_89 block limit) for variants meant to ship.
# Usage: bash bench/cuda_tune.sh "8 4" "4 4" ...   (chunk stages pairs)
set -uo pipefail
export PATH="$PATH:/usr/local/cuda/bin"
shapes="--shape q4_K:14336x4096 --shape q4_K:4096x14336 --shape q4_K:4096x4096 --shape q6_K:4096x14336 --shape q4_K:256x4096"
for v in "$@"; do
  set -- $v
  d=build-t$1-$2
  cmake -S . -B $d -DKQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CUDA_FLAGS=-DKQ_STREAM_CHUNK=$1 -DKQ_STREAM_STAGES=$2" >/dev/null 2>&1 &&
    cmake --build $d -j16 --target kq >/dev/null 2>&1 || { echo "build $v failed"; continue; }
  echo "== chunk $1 stages $2"
  $d/kq bench --backend cuda --m 1 --min-time 0.15 --budget 0 $shapes 2>&1 | grep -E "^q|ceilings"
done
