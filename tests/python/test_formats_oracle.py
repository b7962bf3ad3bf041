"""Bit-exactness of kquant's reference converters against the Python gguf
package (the oracle).

Dequantize: random raw bytes (so fp16 scales come out negative, huge,
subnormal, infinite and NaN), plus blocks whose scales are forced to the
special fp16 values, decoded by kquant and by gguf.quants.dequantize; every
output must be NaN in both or carry the same float32 bits.

Quantize: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml's reference algorithms), F16
and BF16 against gguf.quants.quantize, byte for byte, on random normal data at several scales
with zero and constant blocks mixed in; F16 and BF16 also on random float32
bit patterns (NaN, inf, subnormals included).

MXFP4: kquant tries the exponent gguf picks and its two neighbours and keeps
the least squared error, so each block must equal gguf's byte for byte or
have a strictly smaller error (with another exponent).

Skips (77) only when numpy or gguf is missing."""
import ctypes
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kqlib  # noqa: E402

np, gguf = kqlib.need_oracle()
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants as gq  # noqa: E402

# inf and NaN scales are the point of the random blocks: no warnings about them
warnings.simplefilter("ignore", RuntimeWarning)
np.seterr(all="ignore")

lib = kqlib.load()
seed = kqlib.seed()
rng = np.random.default_rng(seed)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def row_size(qtype, n_cols):
    out = ctypes.c_size_t()
    kqlib.check(lib, lib.kq_row_size(int(qtype), n_cols, ctypes.byref(out)), "kq_row_size")
    return out.value


def ours_dequantize(qtype, raw, n_rows, n_cols):
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    out = np.empty((n_rows, n_cols), dtype=np.float32)
    st = lib.kq_dequantize(int(qtype), raw.ctypes.data, raw.nbytes, n_rows, n_cols, out.ctypes.data)
    kqlib.check(lib, st, "kq_dequantize(%s)" % qtype.name)
    return out


def ours_quantize(qtype, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_rows, n_cols = x.shape
    rs = row_size(qtype, n_cols)
    out = np.empty((n_rows, rs), dtype=np.uint8)
    st = lib.kq_quantize(int(qtype), x.ctypes.data, n_rows, n_cols, out.ctypes.data, out.nbytes)
    kqlib.check(lib, st, "kq_quantize(%s)" % qtype.name)
    return out


def same_floats(a, b):
    """NaN where the other is NaN, otherwise identical float32 bits.
    Returns the number of mismatching elements and the first one's index."""
    a = np.asarray(a, dtype=np.float32).ravel()
    b = np.asarray(b, dtype=np.float32).ravel()
    na, nb = np.isnan(a), np.isnan(b)
    bad = (na != nb) | (~na & ~nb & (a.view(np.uint32) != b.view(np.uint32)))
    idx = np.flatnonzero(bad)
    return len(idx), (int(idx[0]) if len(idx) else -1)


# fp16 patterns worth forcing into scale fields: zeros, smallest and largest
# subnormal, smallest normal, one, largest finite, infinities, NaNs.
SPECIAL_FP16 = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x3C00, 0xBC00,
                         0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00], dtype=np.uint16)

# type -> byte offsets of its fp16 scale fields inside a block
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q8_0: [0], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.IQ4_NL: [0], T.Q2_K: [80, 82],
    T.Q3_K: [108], T.IQ4_XS: [0],
}

# MXFP4's scale is one E8M0 byte: random bytes already cover all 256 values,
# but force the edges (subnormal results at 0 and 1, the largest at 254/255)
# into a third of the blocks as well.
SPECIAL_E8M0 = np.array([0, 1, 2, 126, 127, 128, 253, 254, 255], dtype=np.uint8)

# every quantized type the oracle decodes, old and new
QUANT_TYPES = (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.IQ4_NL, T.MXFP4, T.Q2_K, T.Q3_K,
               T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_XS)


def check_type_coverage():
    """Every quantized weight type the library loads (the rows of
    formats/type_list.h) must be decoded here: a new type that is not fails."""
    loaded = [i for i in range(64)
              if lib.kq_type_is_supported(i) and lib.kq_type_block_elems(i) > 1]
    decoded = [int(t) for t in QUANT_TYPES]
    missing = [lib.kq_type_name(i).decode() for i in loaded if i not in decoded]
    if missing:
        fail("weight types the library loads but this test does not decode against gguf: %s"
             % ", ".join(missing))
    # each with an fp16 scale must have its scale fields listed, or no special
    # scale is ever forced into its blocks
    for t in QUANT_TYPES:
        if t not in SCALE_FIELDS and t != T.MXFP4:
            fail("%s has no entry in SCALE_FIELDS" % t.name)


def check_dequantize(qtype, n_rows, n_cols):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    rs = row_size(qtype, n_cols)
    if rs != n_cols // block_elems * block_bytes:
        fail("%s: kq_row_size(%d) = %d, gguf says %d" % (qtype.name, n_cols, rs,
                                                         n_cols // block_elems * block_bytes))
        return
    raw = rng.integers(0, 256, size=(n_rows, rs), dtype=np.uint8)
    if qtype in SCALE_FIELDS:
        blocks = raw.reshape(-1, block_bytes)
        n_blocks = blocks.shape[0]
        # force special scales into a third of the blocks (each field its own draw)
        for off in SCALE_FIELDS[qtype]:
            pick = rng.random(n_blocks) < 1 / 3
            vals = SPECIAL_FP16[rng.integers(0, len(SPECIAL_FP16), size=int(pick.sum()))]
            blocks[pick, off:off + 2] = vals.view(np.uint8).reshape(-1, 2)
    if qtype == T.MXFP4:
        blocks = raw.reshape(-1, block_bytes)
        pick = rng.random(blocks.shape[0]) < 1 / 3
        blocks[pick, 0] = SPECIAL_E8M0[rng.integers(0, len(SPECIAL_E8M0), size=int(pick.sum()))]
    ours = ours_dequantize(qtype, raw, n_rows, n_cols)
    ref = gq.dequantize(raw, qtype).reshape(n_rows, n_cols)
    n_bad, first = same_floats(ours, ref)
    n_nan = int(np.isnan(ref).sum())
    print("dequantize %-6s %d x %d: %d mismatches (%d NaN outputs, %d inf outputs in the oracle)"
          % (qtype.name, n_rows, n_cols, n_bad, n_nan, int(np.isinf(ref).sum())))
    if n_bad:
        o, r = ours.ravel()[first], ref.ravel()[first]
        blk = first // block_elems
        fail("dequantize %s: %d elements differ; first at element %d (block %d): ours %r (0x%08x), "
             "gguf %r (0x%08x); block bytes %s" % (
                 qtype.name, n_bad, first, blk, o, np.float32(o).view(np.uint32), r,
                 np.float32(r).view(np.uint32),
                 raw.reshape(-1, block_bytes)[blk].tobytes().hex()))


def normal_data(n_rows, n_cols):
    x = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    # rows at different scales, some blocks zero, constant, or with one outlier
    scales = np.array([1.0, 1e-3, 30.0, 1e-6, 1000.0], dtype=np.float32)
    x *= scales[np.arange(n_rows) % len(scales)][:, None]
    flat = x.reshape(-1, 32)
    nb = flat.shape[0]
    flat[rng.random(nb) < 0.02] = 0.0
    const = rng.random(nb) < 0.02
    flat[const] = rng.standard_normal((int(const.sum()), 1)).astype(np.float32)
    out = np.flatnonzero(rng.random(nb) < 0.05)
    flat[out, rng.integers(0, 32, size=len(out))] *= 50.0
    return x


def check_quantize(qtype, x, what):
    ours = ours_quantize(qtype, x)
    ref = np.asarray(gq.quantize(x, qtype))
    ref = ref.view(np.uint8).reshape(ours.shape)
    if qtype in (T.F16,):
        # NaN payloads are not pinned down: compare as halves, NaN == NaN
        a = ours.view(np.uint16).ravel()
        b = ref.view(np.uint16).ravel()
        na, nb = (a & 0x7FFF) > 0x7C00, (b & 0x7FFF) > 0x7C00
        bad = np.flatnonzero((na != nb) | (~na & (a != b)))
    else:
        bad = np.flatnonzero(ours.ravel() != ref.ravel())
    n_sat = 0
    if qtype in (T.Q4_1, T.Q5_1):
        # a min or scale beyond fp16's range: gguf stores inf (the block
        # decodes to inf/NaN), kquant saturates at 65504; those blocks must
        # decode finite instead of matching
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        xb = x.reshape(-1, block_elems)
        mn, mx = xb.min(axis=1), xb.max(axis=1)
        d = (mx - mn) / np.float32(15 if qtype == T.Q4_1 else 31)
        sat = (np.abs(mn.astype(np.float16)) == np.inf) | (np.abs(d.astype(np.float16)) == np.inf)
        n_sat = int(sat.sum())
        if n_sat:
            y = gq.dequantize(ours.reshape(-1, block_bytes)[sat], qtype)
            if not np.isfinite(y).all():
                fail("quantize %s (%s): a block beyond fp16's range decodes non-finite"
                     % (qtype.name, what))
            bad = bad[~sat[bad // block_bytes]]
    print("quantize   %-5s %-22s %d x %d: %d differing bytes%s" % (
        qtype.name, what, x.shape[0], x.shape[1], len(bad),
        " (%d blocks beyond fp16 saturate instead)" % n_sat if n_sat else ""))
    if len(bad):
        i = int(bad[0])
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        blk = i // block_bytes
        xs = x.ravel()[blk * block_elems:(blk + 1) * block_elems]
        fail("quantize %s (%s): %d bytes differ; first at byte %d (block %d): ours %s, gguf %s; "
             "input %s" % (qtype.name, what, len(bad), i, blk,
                           ours.ravel()[blk * block_bytes:(blk + 1) * block_bytes].tobytes().hex(),
                           ref.ravel()[blk * block_bytes:(blk + 1) * block_bytes].tobytes().hex(),
                           xs[:8]))


def check_mxfp4(x, what):
    """Per block: gguf's bytes, or a strictly smaller squared error."""
    ours = ours_quantize(T.MXFP4, x).reshape(-1, 17)
    ref = np.asarray(gq.quantize(x, T.MXFP4)).view(np.uint8).reshape(-1, 17)
    xb = x.reshape(-1, 32).astype(np.float64)
    e_ours = ((gq.dequantize(ours, T.MXFP4).reshape(-1, 32) - xb) ** 2).sum(axis=1)
    e_ref = ((gq.dequantize(ref, T.MXFP4).reshape(-1, 32) - xb) ** 2).sum(axis=1)
    same = (ours == ref).all(axis=1)
    bad = np.flatnonzero(~same & ~(e_ours < e_ref))
    print("quantize   MXFP4 %-22s %d x %d: %d blocks as gguf, %d better, %d worse"
          % (what, x.shape[0], x.shape[1], int(same.sum()), int((~same).sum()) - len(bad), len(bad)))
    if len(bad):
        b = int(bad[0])
        fail("quantize MXFP4 (%s): %d blocks differ from gguf without a smaller error; first block "
             "%d: ours %s (sse %g), gguf %s (sse %g)" % (what, len(bad), b, ours[b].tobytes().hex(),
                                                         e_ours[b], ref[b].tobytes().hex(), e_ref[b]))


def main():
    check_type_coverage()
    # dequantization, bit for bit, on raw random bytes
    check_dequantize(T.F16, 64, 4096)
    check_dequantize(T.BF16, 64, 4096)
    for qt in QUANT_TYPES:
        check_dequantize(qt, 64, 4096)
    # odd shapes: one row, one block
    for qt in QUANT_TYPES + (T.F16, T.BF16):
        check_dequantize(qt, 1, gguf.GGML_QUANT_SIZES[qt][0] * (1 if qt not in (T.F16, T.BF16) else 7))

    # quantization, byte for byte, against gguf's reference-exact quantizers
    exact = (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F16, T.BF16)
    x = normal_data(64, 4096)
    for qt in exact:
        check_quantize(qt, x, "normal, mixed scales")
    check_mxfp4(x, "normal, mixed scales")
    u = rng.uniform(-1, 1, size=(16, 4096)).astype(np.float32)
    for qt in exact:
        check_quantize(qt, u, "uniform")
    check_mxfp4(u, "uniform")
    # all-positive and all-negative blocks exercise the min of Q4_1/Q5_1
    p = (np.abs(rng.standard_normal((16, 4096))) + 0.25).astype(np.float32)
    for qt in (T.Q4_1, T.Q5_1):
        check_quantize(qt, p, "positive")
        check_quantize(qt, -p, "negative")
    bits = rng.integers(0, 2**32, size=(16, 4096), dtype=np.uint64).astype(np.uint32).view(np.float32)
    for qt in (T.F16, T.BF16):
        check_quantize(qt, bits, "random float32 bits")
    # halves' neighbourhood: exact halves, midpoints, and one ulp either side
    h = rng.integers(0, 2**16, size=16 * 1024, dtype=np.uint32).astype(np.uint16)
    hf = h.view(np.float16).astype(np.float32)
    hf = hf[np.isfinite(hf)]
    nxt = np.nextafter(hf.astype(np.float16), np.float16(np.inf)).astype(np.float32)
    mid = ((hf.astype(np.float64) + nxt.astype(np.float64)) / 2).astype(np.float32)
    near = np.concatenate([hf, mid, np.nextafter(mid, np.float32(np.inf)),
                           np.nextafter(mid, np.float32(-np.inf))])
    near = near[np.isfinite(near)]
    near = near[: len(near) // 256 * 256].reshape(-1, 256)
    check_quantize(T.F16, near, "fp16 midpoints")

    if failures:
        print("%d check(s) failed; rerun with KQ_TEST_SEED=%d" % (len(failures), seed))
        return 1
    print("all oracle checks passed (seed %d)" % seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
