"""`kq quantize` on a small Llama-like model of F32, F16 and BF16 tensors,
written with gguf-py and read back with gguf-py: every tensor gets the type
the rules say (computed here independently of the tool's code), metadata is
copied with general.file_type set, quantized values are close to the source,
and tensors left alone are bit-identical."""
import os
import re
import subprocess
import sys

import kqlib

np, gguf = kqlib.need_oracle()
from gguf.constants import GGMLQuantizationType as QT  # noqa: E402

KQ = os.environ.get("KQ_BIN")
if not KQ or not os.path.exists(KQ):
    print("KQ_BIN does not name the built kq tool (run through ctest)")
    sys.exit(1)
SEED = kqlib.seed()
rng = np.random.default_rng(SEED)
tmp = os.environ.get("KQ_TEST_TMP", "/tmp")
base = os.path.join(tmp, "kq_quantize_%d" % os.getpid())

N_LAYERS, HIDDEN, FFN, N_EXPERTS, ALIGN = 8, 256, 512, 4, 64
FLOAT_TYPES = (QT.F32, QT.F16, QT.BF16)
K_TYPES = (QT.Q4_K, QT.Q5_K, QT.Q6_K)

# Relative RMS error bounds of a quantized tensor against its source, for
# Gaussian weights. A b-bit uniform quantizer over a block of range R has an
# error of rms R / (2^b - 1) / sqrt(12); measured on this data (worst tensor
# over seeds) the reference quantizers give about:
#   q8_0: symmetric 8-bit over 32 values: 0.54%
#   q6_K: symmetric 6-bit over 16 values, 8-bit sub-scales: 1.8%
#   q5_K: 5-bit with a min over 32 values, 6-bit sub-scales: 3.6%
#   q4_K: 4-bit with a min over 32 values, 6-bit sub-scales: 7.2%
#   q4_0: symmetric 4-bit over 32 values: 8.7%
# The bounds sit 1.5x above, so they catch a lost bit (2x the error) or a
# wrong block (near 100%), never the spread of one seed.
BOUNDS = {QT.Q8_0: 0.008, QT.Q6_K: 0.027, QT.Q5_K: 0.055, QT.Q4_K: 0.11, QT.Q4_0: 0.13}

# llama.cpp's llama_ftype values (include/llama.h).
FTYPE = {"q4_0": 2, "q8_0": 7, "q4_K": 14, "q5_K": 16, "q6_K": 18, "q4_k_m": 15}
TARGET = {"q4_0": QT.Q4_0, "q8_0": QT.Q8_0, "q4_K": QT.Q4_K, "q5_K": QT.Q5_K, "q6_K": QT.Q6_K,
          "q4_k_m": QT.Q4_K}


def make_model(path):
    """A model of 8 layers with every case of the rules: 1-D norms, attn_v and
    ffn_down on every layer (so the layer rule shows), expert stacks on a
    layer with and one without extra bits, a router, rows of 96 (a multiple of
    32, not of 256) and of 100 (neither), a tensor already Q8_0, and the three
    float source types. Returns {name: (ggml type, ne, float64 values, raw bytes)}."""
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(ALIGN)
    w.add_name("kq quantize test model")
    w.add_uint32("llama.block_count", N_LAYERS)
    w.add_uint32("llama.embedding_length", HIDDEN)
    w.add_uint32("llama.feed_forward_length", FFN)
    w.add_uint32("llama.expert_count", N_EXPERTS)
    w.add_uint32("llama.expert_used_count", 2)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_uint32("general.file_type", 0)  # ALL_F32; the tool must replace it
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    w.add_array("test.nested", [[1, 2], [3]])
    tensors = {}

    def add(name, shape, qt, scale=0.02):
        """shape is numpy order (ne reversed)."""
        v = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qt == QT.F32:
            data = v
        elif qt == QT.F16:
            data = v.astype(np.float16)
        else:  # BF16, Q8_0: gguf-py's own converters make the bytes
            data = gguf.quants.quantize(v.reshape(-1, shape[-1]), qt)
            data = data.reshape(tuple(shape[:-1]) + data.shape[-1:])
        w.add_tensor(name, data, raw_dtype=None if qt in (QT.F32, QT.F16) else qt)
        vals = v if qt == QT.F32 else gguf.quants.dequantize(np.asarray(data), qt)
        tensors[name] = (qt, tuple(reversed(shape)), np.asarray(vals, dtype=np.float64).ravel(),
                         np.ascontiguousarray(data).tobytes())

    ftypes = [QT.F32, QT.F16, QT.BF16]
    add("token_embd.weight", (64, HIDDEN), QT.F16)
    for i in range(N_LAYERS):
        f = ftypes[i % 3]
        add("blk.%d.attn_norm.weight" % i, (HIDDEN,), QT.F32, 1.0)
        add("blk.%d.attn_q.weight" % i, (HIDDEN, HIDDEN), f)
        add("blk.%d.attn_k.weight" % i, (64, HIDDEN), ftypes[(i + 1) % 3])
        add("blk.%d.attn_v.weight" % i, (64, HIDDEN), ftypes[(i + 2) % 3])
        add("blk.%d.attn_output.weight" % i, (HIDDEN, HIDDEN), f)
        add("blk.%d.ffn_norm.weight" % i, (HIDDEN,), QT.F32, 1.0)
        add("blk.%d.ffn_gate.weight" % i, (FFN, HIDDEN), QT.Q8_0 if i == 5 else f)
        add("blk.%d.ffn_up.weight" % i, (FFN, HIDDEN), ftypes[(i + 1) % 3])
        add("blk.%d.ffn_down.weight" % i, (HIDDEN, FFN), ftypes[(i + 2) % 3])
    for i in (2, 3):  # layer 3 gets more bits in q4_k_m, layer 2 does not
        add("blk.%d.ffn_gate_inp.weight" % i, (N_EXPERTS, HIDDEN), QT.F32)
        add("blk.%d.ffn_up_exps.weight" % i, (N_EXPERTS, FFN, HIDDEN), QT.F16)
        add("blk.%d.ffn_down_exps.weight" % i, (N_EXPERTS, HIDDEN, FFN), QT.F32)
    add("blk.0.attn_kv_b.weight", (128, 96), QT.BF16)  # rows of 96
    add("blk.6.ffn_down_shexp.weight", (HIDDEN, 96), QT.F32)  # rows of 96, a more-bits layer
    add("blk.1.odd.weight", (8, 100), QT.F32)  # rows of 100
    add("output_norm.weight", (HIDDEN,), QT.F32, 1.0)
    add("output.weight", (64, HIDDEN), QT.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(name, qt, ne, target):
    """The rules of the brief, written out again apart from the tool."""
    if qt not in FLOAT_TYPES:
        return qt  # already quantized: copied
    if len(ne) < 2 or "_norm.weight" in name or "ffn_gate_inp.weight" in name:
        return qt
    t = TARGET[target]
    if target == "q4_k_m":
        m = re.match(r"blk\.(\d+)\.(.*)$", name)
        if name == "output.weight":
            t = QT.Q6_K
        elif m and (m.group(2).startswith("attn_v.") or re.match(r"ffn_down[._]", m.group(2))) \
                and use_more_bits(int(m.group(1)), N_LAYERS):
            t = QT.Q6_K
    block = 256 if t in K_TYPES else 32
    if ne[0] % block:
        return QT.Q8_0 if block == 256 and ne[0] % 32 == 0 else qt
    return t


def field_value(f):
    return f.contents()


def run(args):
    return subprocess.run([KQ] + args, capture_output=True, text=True)


checks = kqlib.Checks("test_kq_quantize", SEED)
expect = checks.check
src_path = base + "_in.gguf"
tensors = make_model(src_path)
src = gguf.GGUFReader(src_path)
src_fields = [k for k in src.fields if not k.startswith("GGUF.")]

worst = {}
outputs = {}
for target in ["q4_k_m", "Q4_0", "q8_0", "q4_K", "Q5_K", "q6_k"]:
    canon = {"q4_k_m": "q4_k_m", "Q4_0": "q4_0", "q8_0": "q8_0", "q4_K": "q4_K", "Q5_K": "q5_K",
             "q6_k": "q6_K"}[target]
    out_path = "%s_%s.gguf" % (base, canon)
    r = run(["quantize", src_path, out_path, target, "--threads", "2"])
    if not expect(r.returncode == 0, "%s: kq quantize exits 0 (%s)" % (target, r.stderr.strip())):
        continue
    expect("M weights/s" in r.stdout and "general.file_type = %d" % FTYPE[canon] in r.stdout,
           "%s: summary printed: %s" % (target, r.stdout))
    outputs[canon] = out_path
    out = gguf.GGUFReader(out_path)

    # Metadata: every key copied in order with its value, file_type replaced,
    # quantization_version added (as llama.cpp's quantizer does).
    out_fields = [k for k in out.fields if not k.startswith("GGUF.")]
    expect(out_fields == src_fields + ["general.quantization_version"],
           "%s: keys in order: %s" % (target, out_fields))
    for k in src_fields:
        if k == "general.file_type" or k not in out.fields:
            continue
        expect(field_value(out.fields[k]) == field_value(src.fields[k]),
               "%s: metadata %s copied" % (target, k))
    ft = out.fields.get("general.file_type")
    expect(ft is not None and ft.types == [gguf.GGUFValueType.UINT32]
           and field_value(ft) == FTYPE[canon],
           "%s: general.file_type = u32 %d" % (target, FTYPE[canon]))
    expect(field_value(out.fields["general.alignment"]) == ALIGN and out.alignment == ALIGN,
           "%s: general.alignment %d kept" % (target, ALIGN))

    names = [t.name for t in out.tensors]
    expect(names == list(tensors), "%s: tensors in the same order" % target)
    for t in out.tensors:
        if t.name not in tensors:
            continue
        qt, ne, vals, raw = tensors[t.name]
        want = expected_type(t.name, qt, ne, canon)
        got = QT(t.tensor_type)
        expect(got == want, "%s: %s is %s, expected %s" % (target, t.name, got.name, want.name))
        expect(tuple(int(x) for x in t.shape) == ne, "%s: %s keeps its shape" % (target, t.name))
        expect(t.data_offset % ALIGN == 0, "%s: %s aligned" % (target, t.name))
        data = np.asarray(t.data)
        if got == qt:
            expect(data.tobytes() == raw, "%s: %s unchanged, bit for bit" % (target, t.name))
            continue
        deq = gguf.quants.dequantize(data.reshape(-1, data.shape[-1]), got)
        deq = np.asarray(deq, dtype=np.float64).ravel()
        err = np.sqrt(np.sum((deq - vals) ** 2) / np.sum(vals ** 2))
        worst[got] = max(worst.get(got, 0.0), err)
        expect(err < BOUNDS[got], "%s: %s as %s: relative RMS error %.4f above the bound %.3f"
               % (target, t.name, got.name, err, BOUNDS[got]))

for qt, e in sorted(worst.items()):
    print("worst relative RMS error %-5s %.4f (bound %.3f)" % (qt.name, e, BOUNDS[qt]))

# Threads split rows, never change them: one thread gives the same bytes.
one = base + "_q4_k_m_1t.gguf"
r = run(["quantize", src_path, one, "q4_K_M", "--threads", "1"])
ok = expect(r.returncode == 0, "q4_K_M with one thread: %s" % r.stderr.strip())
if ok and "q4_k_m" in outputs:
    with open(one, "rb") as a, open(outputs["q4_k_m"], "rb") as b:
        expect(a.read() == b.read(), "one thread and two threads write the same file")

# A type the tool does not make is refused before anything is written.
bad = base + "_bad.gguf"
r = run(["quantize", src_path, bad, "q2_K"])
expect(r.returncode != 0 and "unknown target type" in r.stderr and not os.path.exists(bad),
       "q2_K refused: %d %s" % (r.returncode, r.stderr.strip()))

for p in [src_path, one] + list(outputs.values()):
    if os.path.exists(p):
        os.remove(p)
sys.exit(checks.finish())
