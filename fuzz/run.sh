#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang into BUILD_DIR and runs both at
# once for SECONDS each, from a copy of the seed corpus (the repository's
# corpus is left as it is). Exits 0 after printing SKIP where clang or its
# fuzzer runtime (Debian: libclang-rt-<version>-dev) is missing; fails on
# any crash, leak, timeout or broken harness invariant.
# Usage: fuzz/run.sh BUILD_DIR SECONDS
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS}
seconds=${2:-60}
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "test-fuzz: SKIP: $cc is not installed (Debian: apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1e9; }' \
  >"$probe/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" 2>"$probe/err"; then
  echo "test-fuzz: SKIP: $cc cannot link libFuzzer programs (the fuzzer runtime, Debian's" \
       "libclang-rt-<version>-dev, is missing?): $(head -n 1 "$probe/err")"
  exit 0
fi

flags="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
mkdir -p "$build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKQ_CUDA=OFF -DKQ_FUZZ=ON \
         -DCMAKE_C_COMPILER="$cc" "-DCMAKE_C_FLAGS=$flags" &&
       cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target fuzz_gguf fuzz_load
     } >"$build/build.log" 2>&1; then
  cat "$build/build.log"
  echo "test-fuzz: building the harnesses failed"
  exit 1
fi

pids=()
for h in gguf load; do
  rm -rf "$build/corpus-$h" "$build/artifacts-$h"
  mkdir -p "$build/corpus-$h" "$build/artifacts-$h"
  cp fuzz/corpus/$h/* "$build/corpus-$h/"
  # -timeout: no input may take 10 s; -rss_limit_mb: nor 2 GB; leaks are
  # checked after each input that allocated (ASan's LeakSanitizer).
  "$build/fuzz_$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -dict=fuzz/gguf.dict -print_final_stats=1 -artifact_prefix="$build/artifacts-$h/" \
    "$build/corpus-$h" >"$build/fuzz-$h.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in 0 1; do
  h=$([ $i -eq 0 ] && echo gguf || echo load)
  if wait "${pids[$i]}"; then
    echo "test-fuzz: fuzz_$h: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$build/fuzz-$h.log" | tail -n 1)"
  else
    rc=1
    echo "test-fuzz: fuzz_$h FAILED; its log ($build/fuzz-$h.log) ends:"
    tail -n 60 "$build/fuzz-$h.log"
    echo "reproducer(s): $(ls "$build/artifacts-$h/")"
  fi
done
exit $rc
