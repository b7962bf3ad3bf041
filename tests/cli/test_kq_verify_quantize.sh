#!/usr/bin/env bash
# kq quantize on a small float model, then kq verify on what it wrote; both
# on broken files and misuse. The float model is written by python3's
# standard library alone (struct), so this test needs no packages.
set -uo pipefail
kq="$KQ_BIN"
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 is needed to write the F32/F16 input model"
  exit 77
fi
dir=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/kqvq.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

# Two layers, hidden 256, ffn 512: F32 and F16 weights, a 1-D norm, an
# expert stack (3-D), a tensor with rows of 96 (Q8_0 under K types) and a
# IQ2_XXS tensor (a type kquant does not compute: copied, and skipped by verify).
python3 - "$dir/f32.gguf" <<'EOF'
import random, struct, sys
rng = random.Random(1234)
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
kvs = [("general.architecture", 8, s("llama")),
       ("general.alignment", 4, struct.pack("<I", 32)),
       ("llama.block_count", 4, struct.pack("<I", 2)),
       ("llama.expert_count", 4, struct.pack("<I", 4)),
       ("llama.expert_used_count", 4, struct.pack("<I", 2))]
def floats(n, fmt):
    return struct.pack("<%d%s" % (n, fmt), *[rng.gauss(0.0, 0.02) for _ in range(n)])
tensors = []  # name, ne, ggml type, bytes
def add(name, ne, t):
    n = 1
    for d in ne:
        n *= d
    data = floats(n, "f" if t == 0 else "e") if t in (0, 1) else bytes(n // 256 * 66)
    tensors.append((name, ne, t, data))
add("token_embd.weight", [256, 32], 1)
for i in range(2):
    add("blk.%d.attn_norm.weight" % i, [256], 0)
    add("blk.%d.attn_q.weight" % i, [256, 256], 0)
    add("blk.%d.attn_v.weight" % i, [256, 64], 1)
    add("blk.%d.ffn_down.weight" % i, [512, 256], 0)
add("blk.1.ffn_down_exps.weight", [512, 256, 4], 0)
add("blk.1.ffn_up_exps.weight", [256, 128, 4], 1)
add("blk.0.attn_kv_b.weight", [96, 64], 0)
add("blk.0.q2.weight", [256, 4], 16)
add("output.weight", [256, 32], 0)
out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
for k, t, v in kvs:
    out += s(k) + struct.pack("<I", t) + v
off = 0
for name, ne, t, data in tensors:
    out += s(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
    out += struct.pack("<IQ", t, off)
    off += (len(data) + 31) // 32 * 32
out += bytes(-len(out) % 32)
for name, ne, t, data in tensors:
    out += data + bytes(-len(data) % 32)
open(sys.argv[1], "wb").write(out)
EOF
check "python wrote the float model" test -s "$dir/f32.gguf"

# The float model itself verifies (f32 and f16 linears and experts).
"$kq" verify "$dir/f32.gguf" --seed 11 >"$dir/out" 2>"$dir/err"
check "verify of the float model exits 0" test $? -eq 0
check "seed printed" grep -q "seed 11" "$dir/out"
check "1-D norm listed as skipped" grep -Eq "blk.0.attn_norm.weight +f32 .* skip" "$dir/out"
check "iq2_xxs listed as skipped" grep -Eq "blk.0.q2.weight +iq2_xxs .*unsupported type +skip" "$dir/out"

for t in q4_k_m Q4_0 q8_0 q4_K Q5_K q6_k; do
  "$kq" quantize "$dir/f32.gguf" "$dir/$t.gguf" "$t" --threads 2 >"$dir/qout" 2>"$dir/qerr"
  check "quantize $t exits 0" test $? -eq 0
  check "quantize $t: summary with rate" grep -q "M weights/s" "$dir/qout"
  "$kq" verify "$dir/$t.gguf" --threads 2 >"$dir/out" 2>"$dir/err"
  check "verify $t exits 0" test $? -eq 0
  check "verify $t: no failure" grep -Eq "^summary: .* 0 FAIL, 0 ERROR" "$dir/out"
  check "verify $t: no stderr" test ! -s "$dir/err"
done
"$kq" info "$dir/q4_k_m.gguf" >"$dir/info"
# n = 2 layers: n/8 = 0 and 7n/8 = 1, so layer 1 gets more bits, layer 0 not.
# Value projections are counted in file order, attn_kv_b among them (as
# llama.cpp does): attn_v 0, attn_v 1, attn_kv_b = 0, 1, 2 of 3, and only the
# last is in the final eighth (its rows of 96 then take q8_0 for q6_K).
check "q4_k_m: attn_v of layer 1 is q4_K" grep -Eq "blk.1.attn_v.weight +q4_K " "$dir/info"
check "q4_k_m: attn_v of layer 0 is q4_K" grep -Eq "blk.0.attn_v.weight +q4_K " "$dir/info"
check "q4_k_m: ffn_down of layer 1 is q6_K" grep -Eq "blk.1.ffn_down.weight +q6_K " "$dir/info"
check "q4_k_m: q_proj is q4_K" grep -Eq "blk.0.attn_q.weight +q4_K " "$dir/info"
check "q4_k_m: rows of 96 fall back to q8_0" grep -Eq "blk.0.attn_kv_b.weight +q8_0 " "$dir/info"
check "q4_k_m: iq2_xxs copied" grep -Eq "blk.0.q2.weight +iq2_xxs " "$dir/info"
check "q4_k_m: file_type 15" grep -Eq "general.file_type +u32 +15$" "$dir/info"
"$kq" verify "$dir/q4_k_m.gguf" >"$dir/out" 2>&1
check "3-D experts verified" \
  grep -Eq "blk.1.ffn_down_exps.weight +q6_K +512 x 256 x 4 .* ok$" "$dir/out"

# A negative tolerance fails every checked tensor.
"$kq" verify "$dir/q4_K.gguf" --tolerance -1 >"$dir/out" 2>&1
check "--tolerance -1 exits non-zero" test $? -ne 0
check "--tolerance -1 reports FAIL" grep -Eq "blk.0.attn_q.weight .* FAIL$" "$dir/out"

# Broken files: a clear message naming the file and the byte offset.
head -c 700 "$dir/q4_K.gguf" >"$dir/trunc.gguf"
"$kq" verify "$dir/trunc.gguf" >/dev/null 2>"$dir/err"
check "truncated file fails" test $? -ne 0
check "truncated file: named, with an offset" grep -q "trunc.gguf.*offset" "$dir/err"
{ printf 'GGUX'; tail -c +5 "$dir/q4_K.gguf"; } >"$dir/magic.gguf"
"$kq" verify "$dir/magic.gguf" >/dev/null 2>"$dir/err"
check "bad magic fails" test $? -ne 0
check "bad magic says magic" grep -qi "magic" "$dir/err"
"$kq" verify "$dir/missing.gguf" >/dev/null 2>"$dir/err"
check "missing file fails, named" grep -q "missing.gguf" "$dir/err"

# Misuse of quantize: nothing written, an existing OUT left as it was.
"$kq" quantize "$dir/f32.gguf" "$dir/x.gguf" iq2_xxs >/dev/null 2>"$dir/err"
check "unknown type refused" test $? -ne 0
check "unknown type named" grep -q "unknown target type 'iq2_xxs'" "$dir/err"
check "unknown type: no output" test ! -e "$dir/x.gguf"
echo previous >"$dir/keep.gguf"
"$kq" quantize "$dir/trunc.gguf" "$dir/keep.gguf" q4_K >/dev/null 2>"$dir/err"
check "truncated input refused" test $? -ne 0
check "failed run leaves OUT as it was" grep -qx previous "$dir/keep.gguf"
check "no temporary file left" test "$(ls "$dir" | grep -c keep)" -eq 1
"$kq" quantize "$dir/f32.gguf" "$dir/x.gguf" >/dev/null 2>&1
check "missing argument: usage exit 2" test $? -eq 2
"$kq" verify "$dir/q4_K.gguf" --backend tpu >/dev/null 2>&1
check "unknown backend: exit 2" test $? -eq 2

echo "test_kq_verify_quantize: $pass passed, $fail failed"
test "$fail" -eq 0
