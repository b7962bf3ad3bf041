#!/usr/bin/env bash
# Builds llama.cpp's llama-bench with CUDA, on this machine, into .lcpp/
# (ignored), from the llama.cpp tree in the llama-cpp-python sdist (the same
# llama.cpp the CPU comparisons use), for carrying to the GPU machine, which
# has no network: run bench/cuda_check.sh there with `.lcpp` in carry, and
# its llamacpp step times llama-bench beside kq bench-model on the same
# stand-in files. One CUDA architecture (ARCH, default 90-real), flash
# attention kernels off (their template instances are most of the build),
# static ggml; the shared libraries it needs beyond the CUDA toolkit's are
# copied beside it. About 30 minutes on 2 cores.
# Usage: bash bench/llama_bench_cuda.sh [VERSION]
set -euo pipefail
ver=${1:-0.3.36}
arch=${ARCH:-90-real}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/llama-bench-cuda
mkdir -p "$work" "$root/.lcpp"
python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$ver" -d "$work"
tar xzf "$work/llama_cpp_python-$ver.tar.gz" -C "$work"
src="$work/llama_cpp_python-$ver/vendor/llama.cpp"
cmake -S "$src" -B "$work/build" -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log"
cmake --build "$work/build" -j"$(nproc)" --target llama-bench >"$work/build.log"
cp "$work/build/bin/llama-bench" "$root/.lcpp/" && strip "$root/.lcpp/llama-bench"
for lib in libssl.so.3 libcrypto.so.3 libgomp.so.1; do
  p=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [ -n "$p" ] && cp -L "$p" "$root/.lcpp/"
done
du -sh "$root/.lcpp"
