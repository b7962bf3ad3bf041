#!/usr/bin/env bash
# kq info on the built-in sample file, on a broken file and on misuse.
set -uo pipefail
kq="$KQ_BIN"
dir=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/kqinfo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

check "kq sample writes a file" "$kq" sample "$dir/s.gguf"
"$kq" info "$dir/s.gguf" >"$dir/out" 2>"$dir/err"
check "kq info exits 0" test $? -eq 0
check "no stderr" test ! -s "$dir/err"
check "version line" grep -q "version 3" "$dir/out"
check "arch" grep -q "arch: *llama" "$dir/out"
check "metadata count" grep -q "^metadata: 11 keys" "$dir/out"
check "u32 metadata" grep -Eq "llama.embedding_length +u32 +512" "$dir/out"
check "long array shortened" grep -Eq 'tokenizer.ggml.tokens +array +\[string x 64\] "tok0", "tok1", "tok2", "tok3", \.\.\.' "$dir/out"
check "tensor count" grep -q "^tensors: 12" "$dir/out"
check "q4_K tensor row" grep -Eq "blk.0.attn_q.weight +q4_K +512 x 512 +147456 " "$dir/out"
check "3-D experts shape" grep -Eq "blk.0.ffn_up_exps.weight +q8_0 +512 x 256 x 8 " "$dir/out"
check "totals q6_K" grep -Eq "^  q6_K +2 " "$dir/out"
check "totals all" grep -Eq "^  all +12 " "$dir/out"

printf 'GGUF\x03\x00\x00\x00' >"$dir/trunc.gguf"
"$kq" info "$dir/trunc.gguf" >"$dir/out" 2>"$dir/err"
check "truncated file fails" test $? -ne 0
check "truncated file says where" grep -q "trunc.gguf" "$dir/err"
head -c 64 /dev/urandom >"$dir/junk.gguf"
"$kq" info "$dir/junk.gguf" >/dev/null 2>"$dir/err"
check "junk fails" test $? -ne 0
check "junk: magic named" grep -qi "magic" "$dir/err"
"$kq" info "$dir/missing.gguf" >/dev/null 2>"$dir/err"
check "missing file fails" test $? -ne 0
check "missing file named" grep -q "missing.gguf" "$dir/err"
"$kq" info >/dev/null 2>&1
check "no argument: usage exit 2" test $? -eq 2
"$kq" frobnicate >/dev/null 2>&1
check "unknown command: exit 2" test $? -eq 2

echo "test_kq_info: $pass passed, $fail failed"
test "$fail" -eq 0
