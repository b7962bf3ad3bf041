"""The independent oracle: gguf-py's dequantizers and float64 products, and
the error bounds of the C tests (tests/testutil.c, tests/test_swiglu.c,
tests/test_cpu_backend.c), written here in numpy."""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="python package gguf is not installed (pip install gguf)")
from gguf import quants as gq  # noqa: E402

import kquant  # noqa: E402

FLOAT_TYPES = {int(kquant.Type.F32), int(kquant.Type.F16), int(kquant.Type.BF16)}


def oracle_dequantize(t, raw, rows, cols):
    """Float weights [rows, cols] from the type's bytes, by gguf-py (numpy
    for f32/f16): independent of kquant's own dequantizer."""
    t = int(t)
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows, -1)
    if t == int(kquant.Type.F32):
        return raw.view(np.float32).reshape(rows, cols).copy()
    if t == int(kquant.Type.F16):
        return raw.view(np.float16).reshape(rows, cols).astype(np.float32)
    qt = gguf.GGMLQuantizationType(t)
    return np.asarray(gq.dequantize(raw, qt), dtype=np.float32).reshape(rows, cols)


def has_oracle(t):
    t = int(t)
    if t in (int(kquant.Type.F32), int(kquant.Type.F16)):
        return True
    try:
        qt = gguf.GGMLQuantizationType(t)
    except ValueError:
        return False
    return qt in gq._type_traits


def make_weight(rng, t, rows, cols):
    """(bytes [rows, row_size], float weights [rows, cols]) of type t.

    Normal rows of different scales, as real layers have, quantized by
    kquant; where kquant has no quantizer for the type, random blocks whose
    dequantized values are finite and of layer size (blocks outside that are
    drawn again), as the C tests do. The floats are gguf-py's dequantization
    of the bytes."""
    src = (rng.standard_normal((rows, cols)) *
           (0.02 * (1 + 4 * rng.random((rows, 1))))).astype(np.float32)
    try:
        raw = kquant.quantize(src, t)
    except kquant.KQError as e:
        if e.status_name != "KQ_ERR_UNSUPPORTED":
            raise
        raw = _random_blocks(rng, t, rows, cols)
    return raw, oracle_dequantize(t, raw, rows, cols)


def _random_blocks(rng, t, rows, cols):
    be, bb = kquant.block_size(t)
    nb = rows * cols // be
    blocks = rng.integers(0, 256, (nb, bb), dtype=np.uint8)
    for _ in range(200):
        deq = oracle_dequantize(t, blocks, nb, be)
        bad = ~np.all(np.isfinite(deq) & (np.abs(deq) <= 1.0), axis=1)
        if not bad.any():
            return blocks.reshape(rows, -1)
        blocks[bad] = rng.integers(0, 256, (int(bad.sum()), bb), dtype=np.uint8)
    raise AssertionError("could not draw finite blocks of %s" % kquant.type_name(t))


def act_block(t):
    """The block the cpu backend quantizes activations in for weights of
    type t (their own block: 32 or 256); 0 for float weights, which it
    multiplies in double."""
    t = int(t)
    return 0 if t in FLOAT_TYPES else kquant.block_size(t)[0]


def product(w, x):
    """(x W^T in float64, sum |w x| per output)."""
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    return x64 @ w64.T, np.abs(x64) @ np.abs(w64).T


def tolerance(backend, t, w, x, want, abs_scale):
    """The per-output bound of tests/testutil.c (kt_close_on): float
    rounding of an exact double sum (2^-23 |want| + 2^-36 sum |w x|), or
    on `cpu` for quantized weights the int8-activation bound kt_act8_tol."""
    block = act_block(t)
    if backend.startswith("cpu") and not backend.startswith("cpu-ref") and block:
        return act8_tol(w, x, block)
    return 2.0 ** -23 * np.abs(want) + 2.0 ** -36 * abs_scale + 1e-30


def act8_tol(w, x, block):
    """kt_act8_tol for every (x row, w row): x_k is replaced by d q_k with
    d = amax / 127 of its block, so |x_k - d q_k| <= amax / 254 (widened by
    2^-15 for the roundings of d and x/d); plus (n_blocks + 8) * 3 * 2^-24
    * sum_blocks max|w| sum|x| for the kernels' float work (testutil.c)."""
    k = w.shape[1]
    nb = k // block
    wb = np.abs(w.astype(np.float64)).reshape(w.shape[0], nb, block)
    xb = np.abs(x.astype(np.float64)).reshape(x.shape[0], nb, block)
    quant = np.einsum("mb,nb->mn", xb.max(axis=2), wb.sum(axis=2)) / 254.0
    scale = np.einsum("mb,nb->mn", xb.sum(axis=2), wb.max(axis=2))
    return quant * (1.0 + 2.0 ** -15) + (nb + 8) * 3.0 * 2.0 ** -24 * scale + 1e-30


def silu(g):
    return g / (1.0 + np.exp(-g))


def gelu(g):
    """GELU in its tanh form (kq_glu's KQ_GLU_GELU), from the formula."""
    # 0.5 g (1 + tanh t) as g sigmoid(2t), which does not cancel for t << 0
    return g / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (g + 0.044715 * g ** 3)))


def geglu_tolerance(backend, g, u, eg, eu, ag, au):
    """As swiglu_tolerance with |gelu'| <= 1.13, and on the fast backends the
    AVX2 GELU's exp polynomial (2e-7 relative) and sigmoid blend (2^-18)."""
    want = gelu(g) * u
    if backend.startswith("cpu-ref"):
        return (2.0 ** -23 + 2.0 ** -40) * np.abs(want) + 2.0 ** -36 * (
            1.2 * np.abs(u) * ag + np.abs(gelu(g)) * au) + 1e-30
    return 1.13 * eg * (np.abs(u) + eu) + np.abs(gelu(g)) * eu + 2.0 ** -18 * np.abs(want) + 1e-30


def swiglu_tolerance(backend, g, u, eg, eu, ag, au):
    """cpu-ref: tests/test_swiglu.c (exact dots, one rounding); others:
    tests/test_cpu_backend.c, |d out| <= 1.1 eg (|u| + eu) + |silu(g)| eu
    plus a few float roundings of expf, the divide and the multiply."""
    want = silu(g) * u
    if backend.startswith("cpu-ref"):
        return 2.0 ** -23 * np.abs(want) + 2.0 ** -36 * (1.1 * np.abs(u) * ag +
                                                         np.abs(silu(g)) * au) + 1e-30
    return 1.1 * eg * (np.abs(u) + eu) + np.abs(silu(g)) * eu + 2.0 ** -20 * np.abs(want) + 1e-30


def assert_close(got, want, tol, what, seed):
    got64 = got.astype(np.float64)
    bad = ~(np.abs(got64 - want) <= tol)  # NaN (an unwritten output) fails too
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError("%s: %d of %d outputs wrong; first at %s: got %r, want %.9g "
                             "(bound %.3g) (KQ_TEST_SEED=%d)"
                             % (what, int(bad.sum()), bad.size, idx, float(got[idx]),
                                float(want[idx]), float(tol[idx]), seed))
