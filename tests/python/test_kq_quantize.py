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
N_HEAD, N_HEAD_KV = 8, 2  # n_gqa 4: the q2_k and iq4_xs value-projection rules
FLOAT_TYPES = (QT.F32, QT.F16, QT.BF16)
BLOCK = {QT.Q2_K: 256, QT.Q3_K: 256, QT.Q4_K: 256, QT.Q5_K: 256, QT.Q6_K: 256, QT.IQ4_XS: 256}

# Relative RMS error bounds of a quantized tensor against its source, for
# Gaussian weights. A b-bit uniform quantizer over a block of range R has an
# error of rms R / (2^b - 1) / sqrt(12); measured on this data (worst tensor
# over seeds) the quantizers give about:
#   q8_0: symmetric 8-bit over 32 values: 0.54%
#   q6_K: symmetric 6-bit over 16 values, 8-bit sub-scales: 1.8%
#   q5_1 / q5_0: 5-bit over 32 values (with / without a min): 3.8% / 4.1%
#   q5_K: 5-bit with a min over 32 values, 6-bit sub-scales: 3.6%
#   q4_K: 4-bit with a min over 32 values, 6-bit sub-scales: 7.2%
#   iq4_nl / iq4_xs: 4-bit non-linear grid over 32 values: 7.4%
#   q4_1 / q4_0: 4-bit over 32 values (with / without a min): 7.9% / 8.7%
#   mxfp4: FP4 values under a power-of-two scale: 11%
#   q3_K: 3-bit symmetric over 16 values, 6-bit sub-scales: 14.8%
#   q2_K: 2-bit with a min over 16 values, 4-bit sub-scales: 27%
# The bounds sit 1.5x above, so they catch a lost bit (2x the error) or a
# wrong block (near 100%), never the spread of one seed.
BOUNDS = {QT.Q8_0: 0.008, QT.Q6_K: 0.027, QT.Q5_K: 0.055, QT.Q5_1: 0.057, QT.Q5_0: 0.062,
          QT.Q4_K: 0.11, QT.IQ4_NL: 0.11, QT.IQ4_XS: 0.11, QT.Q4_1: 0.12, QT.Q4_0: 0.13,
          QT.MXFP4: 0.17, QT.Q3_K: 0.22, QT.Q2_K: 0.41}

# llama.cpp's llama_ftype values (include/llama.h), and each target's base type.
FTYPE = {"q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q3_K": 11, "q4_K": 14,
         "q5_K": 16, "iq4_nl": 25, "mxfp4": 38,
         "q2_k": 10, "q3_k_m": 12, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18, "iq4_xs": 30}
TARGET = {"q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "q8_0": QT.Q8_0, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1,
          "q3_K": QT.Q3_K, "q4_K": QT.Q4_K, "q5_K": QT.Q5_K, "iq4_nl": QT.IQ4_NL,
          "mxfp4": QT.MXFP4, "q2_k": QT.Q2_K, "q3_k_m": QT.Q3_K, "q4_k_m": QT.Q4_K,
          "q5_k_m": QT.Q5_K, "q6_k": QT.Q6_K, "iq4_xs": QT.IQ4_XS}
MIXES = ("q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "iq4_xs")


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
    w.add_uint32("llama.attention.head_count", N_HEAD)
    w.add_uint32("llama.attention.head_count_kv", N_HEAD_KV)
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


def mix_type(name, ne, target, i_attn_v, n_attn_v):
    """llama.cpp's per-tensor choice in a mix (llama_tensor_get_type), for a
    model like this one: not Falcon, 4 experts (the 8-expert rules do not
    apply), n_gqa 4, an output.weight of its own."""
    base = TARGET[target]
    m = re.match(r"blk\.(\d+)\.", name)
    layer = int(m.group(1)) if m else -1
    n = N_LAYERS
    gqa = N_HEAD // N_HEAD_KV
    if name == "output.weight":
        return QT.Q8_0 if ne[0] % BLOCK.get(base, 32) else QT.Q6_K
    if name == "token_embd.weight":
        return base
    if any(k in name for k in ("attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight")):
        if target == "q2_k":
            return QT.Q4_K if gqa >= 4 else QT.Q3_K
        if target == "q3_k_m":
            return QT.Q5_K if i_attn_v < 2 else QT.Q4_K
        if target == "iq4_xs" and gqa >= 4:
            return QT.Q5_K
        if target in ("q4_k_m", "q5_k_m") and use_more_bits(i_attn_v, n_attn_v):
            return QT.Q6_K
        return base
    if "attn_k.weight" in name or "attn_q.weight" in name:
        return base
    if "attn_output.weight" in name:
        return {"q2_k": QT.Q3_K, "q3_k_m": QT.Q4_K}.get(target, base)
    if "ffn_up" in name or "ffn_gate" in name:
        return base
    if "ffn_down" in name:
        if target == "q2_k":
            return QT.Q3_K
        if target == "q3_k_m":
            return QT.Q5_K if layer < n // 16 else QT.Q4_K
        if target == "q4_k_m" and use_more_bits(layer, n):
            return QT.Q6_K
        if target == "iq4_xs" and layer < n // 8:
            return QT.Q5_K
        if target == "q5_k_m" and use_more_bits(layer, n):
            return QT.Q6_K
    return base


# llama.cpp's fallback when a row does not fill whole 256-element blocks
FALLBACK = {QT.Q2_K: QT.Q4_0, QT.Q3_K: QT.Q4_0, QT.Q4_K: QT.Q5_0, QT.Q5_K: QT.Q5_1,
            QT.Q6_K: QT.Q8_0, QT.IQ4_XS: QT.IQ4_NL}


def expected_type(name, qt, ne, target, i_attn_v, n_attn_v):
    """The rules, written out again apart from the tool."""
    if qt not in FLOAT_TYPES:
        return qt  # already quantized: copied
    if len(ne) < 2 or "_norm.weight" in name or "ffn_gate_inp.weight" in name:
        return qt
    t = mix_type(name, ne, target, i_attn_v, n_attn_v) if target in MIXES else TARGET[target]
    if ne[0] % BLOCK.get(t, 32):
        t = FALLBACK.get(t)
        if t is None or ne[0] % 32:
            return qt  # llama.cpp would write F16; kq keeps the float tensor
    return t


def ggml_name(qt):
    """As ggml prints a type: lower case but the K of the k-quants."""
    n = qt.name.lower()
    return n[:-2] + "_K" if n.endswith("_k") else n


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
attn_v_like = [n for n in tensors
               if any(k in n for k in ("attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight"))]
for target in ["q4_k_m", "Q4_0", "q8_0", "q4_K", "Q5_K", "q6_k", "Q2_K", "q3_K_M", "q5_k_m",
               "IQ4_XS", "q4_1", "q5_0", "Q5_1", "iq4_nl", "mxfp4", "q3_K"]:
    canon = {t.lower(): t for t in FTYPE}[target.lower()]
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

    # one RMSE line per quantized tensor: name, type, RMSE, % of the RMS
    printed = {}
    for line in r.stdout.splitlines():
        mm = re.match(r"^  (\S+) +(\S+) +RMSE (\S+) +(\S+)% of RMS$", line)
        if mm:
            printed[mm.group(1)] = (mm.group(2), float(mm.group(3)), float(mm.group(4)) / 100)

    names = [t.name for t in out.tensors]
    expect(names == list(tensors), "%s: tensors in the same order" % target)
    for t in out.tensors:
        if t.name not in tensors:
            continue
        qt, ne, vals, raw = tensors[t.name]
        i_attn_v = attn_v_like.index(t.name) if t.name in attn_v_like else -1
        want = expected_type(t.name, qt, ne, canon, i_attn_v, len(attn_v_like))
        got = QT(t.tensor_type)
        expect(got == want, "%s: %s is %s, expected %s" % (target, t.name, got.name, want.name))
        expect(tuple(int(x) for x in t.shape) == ne, "%s: %s keeps its shape" % (target, t.name))
        expect(t.data_offset % ALIGN == 0, "%s: %s aligned" % (target, t.name))
        data = np.asarray(t.data)
        if got == qt:
            expect(data.tobytes() == raw, "%s: %s unchanged, bit for bit" % (target, t.name))
            expect(t.name not in printed, "%s: no RMSE line for %s, not quantized" % (target, t.name))
            continue
        deq = gguf.quants.dequantize(data.reshape(-1, data.shape[-1]), got)
        deq = np.asarray(deq, dtype=np.float64).ravel()
        err = np.sqrt(np.sum((deq - vals) ** 2) / np.sum(vals ** 2))
        worst[got] = max(worst.get(got, 0.0), err)
        # the tool's own figures against these (printed with 4 significant
        # digits, and its source values are the same floats as vals)
        rmse = np.sqrt(np.mean((deq - vals) ** 2))
        line = printed.get(t.name)
        expect(line is not None and line[0] == ggml_name(got)
               and abs(line[1] - rmse) <= 1e-3 * rmse + 1e-12 and abs(line[2] - err) <= 1e-3 * err + 1e-5,
               "%s: %s printed as %r, want %s RMSE %.4g (%.3f%%)" % (target, t.name, line, got.name,
                                                                   rmse, 100 * err))
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
r = run(["quantize", src_path, bad, "iq2_xxs"])
expect(r.returncode != 0 and "unknown target type" in r.stderr and not os.path.exists(bad),
       "iq2_xxs refused: %d %s" % (r.returncode, r.stderr.strip()))

# Issue 17 defect 3: an inf or NaN weight is refused with the tensor, its row
# (over all rows of the tensor) and column, for every target; nothing written.
# The tool quantizes a tensor in chunks of 65536 elements (256 rows of 256
# here) and kq_quantize only knows the row inside its chunk, so the bad value
# goes past the first chunk: a message with the chunk's row fails the check.
nf_path = base + "_nonfinite.gguf"
wr = gguf.GGUFWriter(nf_path, "llama")
good = (rng.standard_normal((16, 256)) * 0.02).astype(np.float32)
wr.add_tensor("blk.0.attn_q.weight", good)
badv = (rng.standard_normal((3, 200, 256)) * 0.02).astype(np.float32)  # 600 rows
row, col = int(rng.integers(256, 600)), int(rng.integers(0, 256))
badv.reshape(-1, 256)[row, col] = [np.nan, np.inf, -np.inf][int(rng.integers(0, 3))]
wr.add_tensor("blk.0.ffn_down_exps.weight", badv)
wr.write_header_to_file()
wr.write_kv_data_to_file()
wr.write_tensors_to_file()
wr.close()
for target in ["q4_0", "q8_0", "q4_k_m", "q2_k", "iq4_xs", "mxfp4", "q6_k"]:
    r = run(["quantize", nf_path, bad, target, "--threads", "2"])
    expect(r.returncode != 0 and "blk.0.ffn_down_exps.weight" in r.stderr
           and "row %d, column %d" % (row, col) in r.stderr and not os.path.exists(bad),
           "%s: non-finite weight at row %d, column %d refused: %d %s"
           % (target, row, col, r.returncode, r.stderr.strip()))
os.remove(nf_path)

for p in [src_path, one] + list(outputs.values()):
    if os.path.exists(p):
        os.remove(p)
sys.exit(checks.finish())
