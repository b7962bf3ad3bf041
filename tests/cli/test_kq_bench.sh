#!/usr/bin/env bash
# kq bench on small --shape ops and on a file: the table, JSON (parses, every
# field), SVG (well-formed XML), the model summary, a caught mismatch, and
# clear errors for a corrupted file and for misuse. Small shapes and short
# timing (--min-time 0.02) keep it to seconds; the numbers are not checked.
set -uo pipefail
kq="$KQ_BIN"
dir=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/kqbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export TMPDIR="$dir"
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
not_grep() { ! grep -q "$@"; }
quick=(--min-time 0.02 --threads 2 --seed 7)

"$kq" bench --backend cpu --shape q4_0:64x256 --shape q6_K:40x512 \
  --shape q4_K:96x512:8/3 --m 1,3,17 "${quick[@]}" \
  --json "$dir/out.json" --svg "$dir/out.svg" >"$dir/out" 2>"$dir/err"
check "shapes: exit 0" test $? -eq 0
cat "$dir/err"
check "table header" grep -Eq "^op +type +shape +m +median us +GB/s +%bw +TFLOP/s +%pk +check" "$dir/out"
check "ceilings line" grep -Eq "ceilings: read [0-9.]+ GB/s; int8 dot" "$dir/out"
check "q4_0 row m=17 ok" grep -Eq "^q4_0:64x256 +q4_0 +64x256 +17 +[0-9.]+ .* ok$" "$dir/out"
check "experts row" grep -Eq "^q4_K:96x512:8/3 +q4_K +96x512 e8/3 +3 +[0-9.]+ .* ok$" "$dir/out"
check "lines fit 100 columns" test "$(awk '{ if (length($0) > 100) n++ } END { print n + 0 }' "$dir/out")" -eq 0
check "temporary file removed" test -z "$(ls "$dir"/kq-bench-* 2>/dev/null)"
check "no temporary file named in the leftovers" true

if command -v python3 >/dev/null 2>&1; then
  python3 - "$dir/out.json" "$dir/out.svg" <<'PY'
import json, sys, xml.dom.minidom
records = json.load(open(sys.argv[1]))
fields = ["backend", "device", "op", "type", "n", "k", "experts", "top_k", "m", "median_us",
          "gbs", "tflops", "ceiling_gbs", "ceiling_tflops", "verified"]
assert len(records) == 9, len(records)  # 3 ops x 3 m
for r in records:
    missing = [f for f in fields if f not in r]
    assert not missing, missing
    assert r["backend"] == "cpu" and r["verified"] is True, r
    assert r["median_us"] > 0 and r["gbs"] > 0 and r["tflops"] > 0, r
    assert r["ceiling_gbs"] > 0 and r["ceiling_tflops"] > 0, r
ex = [r for r in records if r["experts"]]
assert len(ex) == 3 and all(r["experts"] == 8 and r["top_k"] == 3 and r["n"] == 96 and r["k"] == 512 for r in ex)
assert sorted(r["m"] for r in records if r["type"] == "q6_K") == [1, 3, 17]
doc = xml.dom.minidom.parse(sys.argv[2])
assert doc.documentElement.tagName == "svg"
assert len(doc.getElementsByTagName("polyline")) == 6  # 3 ops x (GB/s, TFLOP/s)
PY
  check "JSON has every field, SVG is well-formed" test $? -eq 0
else
  echo "SKIP JSON/SVG parsing: python3 not found"
fi

# A file: kq sample's layer, grouped by shape, with the whole-file summary.
"$kq" sample "$dir/s.gguf" >/dev/null
"$kq" bench "$dir/s.gguf" --backend cpu --m 1,2 "${quick[@]}" >"$dir/out" 2>"$dir/err"
check "file: exit 0" test $? -eq 0
check "file: q4_K group" grep -Eq "^attn_q.* q4_K +512x512 +1 .* ok$" "$dir/out"
check "file: experts group" grep -Eq "^ffn_up_exps.* q8_0 +256x512 e8/2 +2 .* ok$" "$dir/out"
check "file: summary" grep -Eq "cpu +llama +decode [0-9.]+ ms/token" "$dir/out"

# A wrong output is reported and fails the run.
KQ_BENCH_INJECT_MISMATCH=1 "$kq" bench --backend cpu --shape q8_0:32x64 --m 2 "${quick[@]}" \
  >"$dir/out" 2>"$dir/err"
check "mismatch: non-zero exit" test $? -ne 0
check "mismatch: WRONG in the table" grep -q "WRONG" "$dir/out"
check "mismatch: note says what" grep -q "MISMATCH: outputs differ from cpu-ref" "$dir/out"

# Errors.
head -c 200 "$dir/s.gguf" >"$dir/cut.gguf"
"$kq" bench "$dir/cut.gguf" --backend cpu >/dev/null 2>"$dir/err"
check "corrupted file: non-zero exit" test $? -ne 0
check "corrupted file: named with the offset" grep -Eq "cut.gguf.*byte offset" "$dir/err"
"$kq" bench --shape q4_K:100x300 >/dev/null 2>"$dir/err"
check "bad shape: exit 2" test $? -eq 2
check "bad shape: says what is expected" grep -q "expected TYPE:NxK" "$dir/err"
"$kq" bench --m 0 >/dev/null 2>"$dir/err"
check "bad m: exit 2" test $? -eq 2
"$kq" bench --backend tpu >/dev/null 2>"$dir/err"
check "bad backend: exit 2" test $? -eq 2
# Issue 13 item 5: --shape takes every weight type the library supports (the
# list comes from the tool's own message, which asks kq_type_is_supported),
# each checked against cpu-ref.
types=$("$kq" bench --shape nosuch:1x1 2>&1 | sed -n 's/.*supported type (\([^)]*\)).*/\1/p' | tr -d ',')
check "the shape message lists the supported types" test -n "$types"
for t in q4_0 q8_0 q4_K q5_K q6_K f32 f16 bf16; do
  check "supported types include $t" grep -qw "$t" <<<"$types"
done
shape_args=()
for t in $types; do shape_args+=(--shape "$t:8x256"); done
"$kq" bench --backend cpu "${shape_args[@]}" --m 1,3 "${quick[@]}" --min-time 0.01 \
  >"$dir/out" 2>"$dir/err"
check "every supported type: exit 0" test $? -eq 0
for t in $types; do
  check "--shape $t: checked ok at m = 3" grep -Eq "^$t:8x256 +$t +8x256 +3 .* ok$" "$dir/out"
done

# Issue 17, defect 6: an output path that cannot be written is found before
# the run (no table is timed for nothing) and reported as a write error, not
# as failed checks.
for opt in --json --svg; do
  "$kq" bench --backend cpu --shape q8_0:32x64 --m 1 "${quick[@]}" $opt "$dir/no-such-dir/out" \
    >"$dir/out" 2>"$dir/err"
  check "$opt to a missing folder: exit 1" test $? -eq 1
  check "$opt to a missing folder: says it cannot write the path" \
    grep -q "cannot write $dir/no-such-dir/out" "$dir/err"
  check "$opt to a missing folder: no 'failed their check'" not_grep "failed their check" "$dir/err"
  check "$opt to a missing folder: nothing timed" not_grep "q8_0:32x64" "$dir/out"
done
mkdir "$dir/adir"
"$kq" bench --backend cpu --shape q8_0:32x64 --m 1 "${quick[@]}" --json "$dir/adir" \
  >"$dir/out" 2>"$dir/err"
check "--json to a directory: exit 1" test $? -eq 1
check "--json to a directory: says why" grep -q "cannot write $dir/adir" "$dir/err"
check "--json to a directory: it stays a directory" test -d "$dir/adir"

if ! "$kq" backends | grep -q "^cuda *ok"; then
  "$kq" bench --backend cuda --shape q8_0:32x64 >/dev/null 2>"$dir/err"
  check "cuda named but unavailable: non-zero exit" test $? -ne 0
  check "cuda named but unavailable: says why" grep -q "backend cuda: kq_backend_open" "$dir/err"
fi

echo "kq bench: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
