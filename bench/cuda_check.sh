#!/usr/bin/env bash
# The CUDA backend's checks in one device call: build for the card (sm_90a),
# then the steps named: tests (the CUDA tests), torch (the Python package's
# torch tests), sanitize (the same under
# compute-sanitizer memcheck and racecheck), bench (kq bench --backend cuda
# on the issue's shapes), types (every weight type beside q4_K at m = 1, 8, 512,
# issue 13's bars), models (kq bench-model on random-weight Gemma 3 270M and
# Llama 3 8B stand-ins), llamacpp (llama.cpp's llama-bench on the same
# stand-ins: build it here first with bench/llama_bench_cuda.sh and carry
# .lcpp), ab (the eighth session's switches on the Gemma stand-in and the
# direct 32-value kernel's shapes: KQ_LOGITS_DIRECT=0|1, KQ_CUDA_D32_MAX_M=1|8),
# ncu (a profile of the m = 1 q4_K kernel). Logs go to
# $OUT (or ./device-out): few files, since the device tool returns at most 8.
# BENCH_M overrides the bench's m list (default 1,8,16).
# Usage: bash bench/cuda_check.sh tests sanitize bench
set -uo pipefail
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
export PATH="$PATH:/usr/local/cuda/bin"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  git log -1 --format='commit %h %s' 2>/dev/null; } | tee "$out/machine.txt"
t0=$(date +%s)
cmake -S . -B build-dev -DKQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release \
  >"$out/build.log" 2>&1 &&
  cmake --build build-dev -j16 --target kq kquant_shared test_backend_cuda test_cuda_linear test_cuda_experts \
    test_cuda_runtime test_cuda_gemm test_cuda_dispatch test_extreme_x test_model test_cuda_attention >>"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
echo "build: $(($(date +%s) - t0)) s"
tests="test_backend_cuda test_cuda_linear test_cuda_experts test_cuda_runtime test_cuda_gemm test_cuda_dispatch test_extreme_x test_model test_cuda_attention"
for step in "$@"; do
  case $step in
  tests)
    for t in $tests; do
      s=$(date +%s)
      build-dev/$t >>"$out/tests.log" 2>&1
      echo "$t: exit $? in $(($(date +%s) - s)) s: $(grep -E 'passed|SKIP' "$out/tests.log" | tail -1)"
    done
    grep -m 20 FAIL "$out/tests.log" ;;
  sanitize)
    for tool in memcheck racecheck; do
      for t in $tests; do
        (timeout 280 compute-sanitizer --tool $tool --error-exitcode 9 build-dev/$t \
          >"$out/san-$tool-$t.tmp" 2>&1; echo "exit $?" >>"$out/san-$tool-$t.tmp") &
      done
      wait
      for t in $tests; do
        echo "== $tool $t" >>"$out/sanitize.log"; cat "$out/san-$tool-$t.tmp" >>"$out/sanitize.log"
        echo "$tool $t: $(grep -E 'ERROR SUMMARY|passed' "$out/san-$tool-$t.tmp" | tr '\n' ' ') $(tail -1 "$out/san-$tool-$t.tmp")"
        rm -f "$out/san-$tool-$t.tmp"
      done
    done ;;
  torch)
    # The Python package on torch CUDA tensors (python/tests/test_torch.py).
    # The device's python3 has torch and numpy; pytest and gguf travel as
    # wheels in .whl (carry it), installed into /tmp/site. Fetch them here,
    # once, for the device's Python 3.12:
    #   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    #     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    #     -d .whl pytest iniconfig pluggy packaging gguf pyyaml tqdm pygments requests \
    #     urllib3 idna certifi charset-normalizer
    [ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:python KQ_LIB=$PWD/build-dev/libkquant.so \
      python3 -m pytest -q -p no:cacheprovider python/tests/test_torch.py >"$out/torch.log" 2>&1
    echo "torch tests exit $?"; tail -5 "$out/torch.log" ;;
  bench)
    build-dev/kq bench --backend cuda --m ${BENCH_M:-1,8,16} --min-time 0.3 --budget 0 \
      --shape q4_K:14336x4096 --shape q4_K:4096x14336 --shape q4_K:4096x4096 \
      --shape q6_K:14336x4096 --shape q6_K:4096x14336 --shape q6_K:4096x4096 \
      --shape q4_K:768x2048:128/8 --json "$out/bench.json" >"$out/bench.txt" 2>&1
    echo "kq bench exit $?"; cat "$out/bench.txt" ;;
  types)
    # 32-value types at 4096x4096, the 256-value ones at 14336x4096 (issue
    # 13): m = 1 within 1.25x of q4_K's time per byte, m = 512 within 1.3x
    # of its TFLOP/s. No KQ_PROFILE here: its syncs would time the host.
    sh=(--shape q4_K:4096x4096 --shape q4_K:14336x4096)
    for t in q4_0 q4_1 q5_0 q5_1 q8_0 iq4_nl mxfp4; do sh+=(--shape $t:4096x4096); done
    for t in q2_K q3_K iq4_xs mxfp4 q5_K q6_K; do sh+=(--shape $t:14336x4096); done
    build-dev/kq bench --backend cuda --m ${BENCH_M:-1,8,512} --min-time 0.2 --budget 0 "${sh[@]}" \
      --json "$out/types.json" >"$out/types.txt" 2>&1
    echo "kq bench exit $?"; grep -E '^[a-z0-9_]+:|ceilings' "$out/types.txt" ;;
  models)
    # Whole models on random-weight stand-ins (kq sample --model: the real
    # architectures' shapes and Q4_K_M type mix), as llama-bench -p 512 -n 128
    # times them, then where Gemma's step goes (KQ_PROFILE synchronizes every
    # op, so each small op carries a host round trip of ~20 us).
    for model in gemma3-270m llama3-8b; do
      build-dev/kq sample /tmp/$model.gguf --model $model >/dev/null &&
        build-dev/kq bench-model /tmp/$model.gguf --backend cuda -r 3 >"$out/$model.txt" 2>&1
      echo "$model: exit $?"; tail -6 "$out/$model.txt"
    done
    KQ_PROFILE=1 build-dev/kq bench-model /tmp/gemma3-270m.gguf --backend cuda -p 512 -n 32 -r 1 \
      >"$out/gemma3-270m-profile.txt" 2>&1
    rm -f /tmp/gemma3-270m.gguf /tmp/llama3-8b.gguf ;;
  llamacpp)
    # llama.cpp on the same card and files: each stand-in with a generated
    # vocabulary (bench/stand_in_vocab.py), llama-bench -p 512 -n 128 beside
    # kq bench-model -r 3 (flash attention off, as built).
    [ -x .lcpp/llama-bench ] || { echo "no .lcpp/llama-bench: bench/llama_bench_cuda.sh, then carry .lcpp"; continue; }
    for model in gemma3-270m llama3-8b; do
      build-dev/kq sample /tmp/$model.gguf --model $model >/dev/null &&
        build-dev/kq bench-model /tmp/$model.gguf --backend cuda -r 3 >"$out/$model.txt" 2>&1
      echo "kquant $model: exit $?"; grep -E "pp512|tg128" "$out/$model.txt"
      python3 bench/stand_in_vocab.py /tmp/$model.gguf /tmp/$model-v.gguf && rm -f /tmp/$model.gguf &&
        LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:$PWD/.lcpp .lcpp/llama-bench -m /tmp/$model-v.gguf \
          -p 512 -n 128 -ngl 99 -r 3 -fa 0 >"$out/llama-cpp-$model.txt" 2>&1
      echo "llama.cpp $model: exit $?"; grep -E "pp512|tg128|build" "$out/llama-cpp-$model.txt"
      rm -f /tmp/$model.gguf /tmp/$model-v.gguf
    done ;;
  ab)
    # The head's direct logits (3fe1e38) and the direct 32-value kernel's
    # batched decode (0d6801d), each against its switch, in one run.
    build-dev/kq sample /tmp/gemma3-270m.gguf --model gemma3-270m >/dev/null
    for v in "" KQ_LOGITS_DIRECT=0 KQ_CUDA_D32_MAX_M=1 ""; do
      env $v build-dev/kq bench-model /tmp/gemma3-270m.gguf --backend cuda -r 3 --parallel 8 \
        >"$out/ab.txt" 2>&1
      echo "gemma3-270m ${v:-default}: $(grep -E 'pp512|tg128' "$out/ab.txt" | tr '\n' ' ')"
    done
    for v in 8 1; do
      KQ_CUDA_D32_MAX_M=$v build-dev/kq bench --backend cuda --m 1,2,4,8 --min-time 0.1 --budget 0 \
        --shape q8_0:262144x640 --shape q5_0:4096x640 --shape q5_0:1536x640 >"$out/ab-d32-$v.txt" 2>&1
      echo "KQ_CUDA_D32_MAX_M=$v"; grep -E '^[a-z0-9_]+:' "$out/ab-d32-$v.txt"
    done
    rm -f /tmp/gemma3-270m.gguf ;;
  ncu)
    ncu --target-processes all -k regex:dense_plain --launch-count 3 --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats build-dev/kq bench --backend cuda --m 1 \
      --min-time 0.05 --budget 0 --shape q4_K:4096x14336 >"$out/ncu.txt" 2>&1
    grep -E "Throughput|Duration|Occupancy|Bandwidth|dense_plain|Stall|Issued|Eligible|Active Warps|Cycles Per" "$out/ncu.txt" | head -40 ;;
  esac
done
