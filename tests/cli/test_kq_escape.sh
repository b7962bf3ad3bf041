#!/usr/bin/env bash
# Strings from a file reach the terminal bounded and escaped (issue 17,
# defect 1): a crafted key, tensor name or value, however long and whatever
# bytes it holds, must not pass control characters or escape sequences to the
# terminal through kq info, kq verify, kq bench or an error message, and a
# string longer than INT_MAX is shown as a prefix with its length. The long
# string's file is sparse: 2 GiB of length, a few bytes of disk.
set -uo pipefail
export LC_ALL=C
kq="$KQ_BIN"
dir=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/kqesc.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
# No byte of C0 control (tab and newline aside) or DEL in a file.
clean() { ! grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$1"; }

# Little-endian GGUF pieces.
u32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) \
  $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
u64() { u32 $(($1 & 0xffffffff)); u32 $(($1 >> 32)); }
str() { u64 ${#1}; printf '%s' "$1"; }        # a GGUF string (bytes: LC_ALL=C)
kv_str() { str "$1"; u32 8; str "$2"; }        # key, string value

esc=$'\x1b'
# 1. Hostile names and values, a q8_0 tensor whose name clears the screen.
{
  printf 'GGUF'; u32 3; u64 1; u64 3
  kv_str "general.architecture" "ll${esc}[31mama"
  kv_str "general.name" $'title\x1b]0;pwned\x07 \xe2\x80\xae reversed'
  kv_str $'evil.key\x1b[2J\r\x08' "v"
  str "blk.0.${esc}[2Jattn_q.weight"; u32 2; u64 32; u64 4; u32 8; u64 0
} >"$dir/names.gguf"
size=$(stat -c %s "$dir/names.gguf")
pad=$(( (32 - size % 32) % 32 ))
head -c $((pad + 4 * 34)) /dev/zero >>"$dir/names.gguf"

"$kq" info "$dir/names.gguf" >"$dir/out" 2>"$dir/err"
check "info on hostile names exits 0" test $? -eq 0
check "info: no raw control bytes on stdout" clean "$dir/out"
check "info: no raw control bytes on stderr" clean "$dir/err"
check "info: arch escaped" grep -q 'arch: *ll\\x1b\[31mama' "$dir/out"
check "info: name escaped (ESC, BEL, RLO)" grep -q 'title\\x1b\]0;pwned\\x07 \\u{202e} reversed' "$dir/out"
check "info: key escaped" grep -q 'evil.key\\x1b\[2J\\x0d\\x08' "$dir/out"
check "info: tensor name escaped" grep -q 'blk.0.\\x1b\[2Jattn_q.weight' "$dir/out"

"$kq" verify "$dir/names.gguf" --backend cpu >"$dir/out" 2>"$dir/err"
check "verify on hostile names exits 0" test $? -eq 0
check "verify: no raw control bytes on stdout" clean "$dir/out"
check "verify: no raw control bytes on stderr" clean "$dir/err"
check "verify: tensor name escaped" grep -q '\\x1b\[2Jattn_q' "$dir/out"

"$kq" bench "$dir/names.gguf" --backend cpu --m 1 --min-time 0.01 --budget 10 \
  >"$dir/out" 2>"$dir/err"
check "bench on hostile names exits 0" test $? -eq 0
check "bench: no raw control bytes on stdout" clean "$dir/out"
check "bench: no raw control bytes on stderr" clean "$dir/err"

# kq quantize prints each tensor's name with its error, and a progress line.
{
  printf 'GGUF'; u32 3; u64 1; u64 1
  kv_str "general.architecture" "llama"
  str "blk.0.${esc}[2Jattn_q.weight"; u32 2; u64 32; u64 4; u32 0; u64 0
} >"$dir/float.gguf"
size=$(stat -c %s "$dir/float.gguf")
head -c $(( (32 - size % 32) % 32 )) /dev/zero >>"$dir/float.gguf"
head -c $((4 * 32 * 4)) /dev/urandom | tr '\000-\377' '\100-\177\100-\177' >>"$dir/float.gguf"
"$kq" quantize "$dir/float.gguf" "$dir/q.gguf" q8_0 >"$dir/out" 2>"$dir/err"
check "quantize on a hostile name exits 0" test $? -eq 0
check "quantize: no raw control bytes on stdout" clean "$dir/out"
check "quantize: no raw control bytes on stderr" clean "$dir/err"
check "quantize: tensor name escaped" grep -q 'blk.0.\\x1b\[2Jattn_q' "$dir/out"

# 2. Library error messages that name a key or tensor: a duplicate key.
{
  printf 'GGUF'; u32 3; u64 0; u64 2
  kv_str $'dup\x1b[5m' "a"
  kv_str $'dup\x1b[5m' "b"
} >"$dir/dup.gguf"
"$kq" info "$dir/dup.gguf" >"$dir/out" 2>"$dir/err"
check "duplicate key fails" test $? -ne 0
check "duplicate key: message has no raw control bytes" clean "$dir/err"
check "duplicate key: message names the key, escaped" grep -q 'dup\\x1b\[5m' "$dir/err"

# A path with control characters in it comes back escaped too.
"$kq" info "$dir/no${esc}[2Jsuch.gguf" >"$dir/out" 2>"$dir/err"
check "missing file with ESC in its path fails" test $? -ne 0
check "missing file: message has no raw control bytes" clean "$dir/err"

# 3. general.architecture longer than INT_MAX (2^31 + 16 bytes), sparse:
# printf's "%.*s" with (int)len turns negative and reads to the first NUL
# (past the mapping when there is none); the tool must show a bounded prefix.
long=$(( (1 << 31) + 16 ))
{
  printf 'GGUF'; u32 3; u64 0; u64 1
  str "general.architecture"; u32 8; u64 $long; printf 'llama%s[2J' "$esc"
} >"$dir/long.gguf"
if truncate -s $(( $(stat -c %s "$dir/long.gguf") - 9 + long )) "$dir/long.gguf" 2>/dev/null; then
  "$kq" info "$dir/long.gguf" >"$dir/out" 2>"$dir/err"
  check "info on a 2 GiB string exits 0" test $? -eq 0
  check "info 2 GiB: no raw control bytes" clean "$dir/out"
  check "info 2 GiB: arch line is a bounded prefix with the length" \
    grep -q "^arch: *llama\\\\x1b\[2J.*\.\.\. ($long bytes)\$" "$dir/out"
  check "info 2 GiB: arch line is short" test "$(grep '^arch:' "$dir/out" | wc -c)" -lt 1000
  "$kq" bench "$dir/long.gguf" --backend cpu --m 1 >"$dir/out" 2>"$dir/err"
  check "bench on a 2 GiB string fails cleanly (no tensors)" test $? -eq 1
  check "bench 2 GiB: no raw control bytes" clean "$dir/err"
else
  echo "note: this file system cannot hold a sparse 2 GiB file; the INT_MAX case is not run"
fi

echo "test_kq_escape: $pass passed, $fail failed"
test "$fail" -eq 0
