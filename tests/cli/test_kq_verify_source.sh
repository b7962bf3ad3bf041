#!/usr/bin/env bash
# kq verify --source F.gguf (issue 17, defect 3): a quantized file compared
# with the float file it came from shows damage the backend checks cannot
# (they all compute on the same quantized bytes): a non-finite source weight,
# and a block quantized to garbage. The files are written by python3's
# standard library (struct): a float source, its q8_0 quantization done here
# (d = amax / 127, q = round(x / d)), and copies with one thing broken.
set -uo pipefail
kq="$KQ_BIN"
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 is needed to write the test files"
  exit 77
fi
dir=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/kqvsrc.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

python3 - "$dir" "${KQ_TEST_SEED:-$RANDOM}" <<'EOF'
import math, random, struct, sys
out, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
def gguf(path, tensors):  # tensors: (name, ne, ggml type, bytes)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1)
    head += s("general.architecture") + struct.pack("<I", 8) + s("llama")
    off, infos, blobs = 0, b"", b""
    for name, ne, t, data in tensors:
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", t, off)
        pad = (-len(data)) % 32
        blobs += data + bytes(pad)
        off += len(data) + pad
    body = head + infos
    body += bytes((-len(body)) % 32)
    open(path, "wb").write(body + blobs)
def q8_0(vals):
    blocks = b""
    for i in range(0, len(vals), 32):
        x = vals[i:i + 32]
        amax = max(abs(v) for v in x)
        d = amax / 127.0
        dh = struct.unpack("<e", struct.pack("<e", d))[0]  # the fp16 scale stored
        q = [0 if dh == 0 else max(-127, min(127, round(v / dh))) for v in x]
        blocks += struct.pack("<e", d) + struct.pack("<32b", *q)
    return blocks
K, N = 256, 8
w = [rng.gauss(0.0, 0.5) for _ in range(K * N)]
f32 = lambda v: struct.pack("<%df" % len(v), *v)
gguf(out + "/src.gguf", [("blk.0.attn_q.weight", [K, N], 0, f32(w))])
gguf(out + "/q.gguf", [("blk.0.attn_q.weight", [K, N], 8, q8_0(w))])
# The source with +Inf at row 3, column 17.
bad = list(w); bad[3 * K + 17] = math.inf
gguf(out + "/src_inf.gguf", [("blk.0.attn_q.weight", [K, N], 0, f32(bad))])
# One block (row 5, columns 64..95) quantized to garbage: every weight at -d * 127.
qb = bytearray(q8_0(w))
blk = (5 * K + 64) // 32
qb[blk * 34 + 2: blk * 34 + 34] = struct.pack("<32b", *([-127] * 32))
gguf(out + "/q_bad.gguf", [("blk.0.attn_q.weight", [K, N], 8, bytes(qb))])
# A source of another shape.
gguf(out + "/src_shape.gguf", [("blk.0.attn_q.weight", [K, N // 2], 0, f32(w[:K * N // 2]))])
EOF
check "test files written" test -s "$dir/q_bad.gguf"

"$kq" verify "$dir/q.gguf" --backend cpu --source "$dir/src.gguf" >"$dir/out" 2>"$dir/err"
check "faithful quantization: exit 0" test $? -eq 0
check "faithful quantization: tensor ok against its source" \
  grep -Eq "^blk.0.attn_q.weight +q8_0 +0\.0[0-9]+ +0\.[0-9]+ +ok$" "$dir/out"
check "faithful quantization: summary" grep -q "source summary: 1 ok, 0 DAMAGED, 0 not compared" "$dir/out"

"$kq" verify "$dir/q.gguf" --backend cpu --source "$dir/src_inf.gguf" >"$dir/out" 2>"$dir/err"
check "non-finite source weight: exit 1" test $? -eq 1
check "non-finite source weight: DAMAGED with row and column" \
  grep -q "DAMAGED (1 non-finite in the source, 0 in the quantized; first at row 3, column 17)" "$dir/out"

"$kq" verify "$dir/q_bad.gguf" --backend cpu --source "$dir/src.gguf" >"$dir/out" 2>"$dir/err"
check "garbage block: exit 1 (the backends agree on it, the source does not)" test $? -eq 1
check "garbage block: backends still agree" grep -Eq "^blk.0.attn_q.weight .* ok$" "$dir/out"
check "garbage block: DAMAGED at its row and columns" \
  grep -q "DAMAGED (block at row 5, columns 64..)" "$dir/out"
check "garbage block: the summary says the file differs" \
  grep -q "differs from its source beyond the bound" "$dir/out"

"$kq" verify "$dir/q.gguf" --backend cpu --source "$dir/src_shape.gguf" >"$dir/out" 2>"$dir/err"
check "source of another shape: not a failure" test $? -eq 0
check "source of another shape: said so" grep -q "another shape in the source" "$dir/out"

"$kq" verify "$dir/q.gguf" --backend cpu --source "$dir/missing.gguf" >"$dir/out" 2>"$dir/err"
check "missing source: exit 1" test $? -eq 1
check "missing source: named" grep -q "missing.gguf" "$dir/err"

echo "test_kq_verify_source: $pass passed, $fail failed"
test "$fail" -eq 0
