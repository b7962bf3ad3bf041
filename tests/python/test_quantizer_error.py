"""Quantization error of kquant's reference quantizers against an independent
numpy implementation of the reference algorithms of docs/formats.md (the widely
used ggml ones):

- Q4_K / Q5_K: per 32-element sub-block, weights sqrt(mean(x^2)) + |x|, the
  weighted least-squares search over (scale, min) of make_qkx2_quants
  (Q4_K: nmax 15, rmin -1, rdelta 0.1, nstep 20; Q5_K: nmax 31, rmin -0.5,
  rdelta 0.1, nstep 15), 6-bit codes for the scales and mins under fp16
  super-scales, re-quantization against the decoded scales.
- Q6_K: per 16-element sub-block, the symmetric make_qx_quants search with
  weights x^2 over iscale = -(32 + 0.1 i) / max, i = -9..9; int8 scales under
  d = max_scale / -128; re-quantization against the decoded scales.
- Q4_0 / Q8_0: the reference is gguf's own quantizer.
- Q4_1 / Q5_0 / Q5_1 / MXFP4: gguf's own quantizer too, and kquant must be no
  worse (RMS(ours) <= RMS(gguf), up to float64 summation noise).
- Q2_K / Q3_K / IQ4_NL / IQ4_XS, which gguf cannot quantize: simple
  max-based quantizers written here from the block definitions; kquant's
  searches must beat them: RMS(ours) <= 0.99 * RMS(simple).

Both outputs are decoded by gguf's dequantizer (the simple quantizers give
decoded values directly); the test asserts RMS(ours) <= 1.01 * RMS(reference)
for the other types, per type and distribution, and prints both. Skips (77) only when numpy or gguf is missing."""
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kqlib  # noqa: E402

np, gguf = kqlib.need_oracle()
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants as gq  # noqa: E402

warnings.simplefilter("ignore", RuntimeWarning)
np.seterr(all="ignore")

F32 = np.float32
QK_K = 256
TOLERANCE = 1.01


def rne(v):
    """ggml's nearest_int: round half to even."""
    return np.rint(v).astype(np.int64)


def seqsum(a):
    """Sum over the last axis in float32, left to right, as a C loop does
    (numpy's own reductions sum pairwise, which rounds differently)."""
    a = np.asarray(a, dtype=F32)
    s = np.zeros(a.shape[:-1], dtype=F32)
    for i in range(a.shape[-1]):
        s = (s + a[..., i]).astype(F32)
    return s


def to_fp16(v):
    return np.asarray(v, dtype=F32).astype(np.float16)


# ------------------------------------------------------------ reference searches

def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    """Vectorised make_qkx2_quants over rows of x (B, n) with weights w.
    Returns (scale[B], the_min[B] >= 0, L[B, n] in 0..nmax)."""
    x = x.astype(F32)
    w = w.astype(F32)
    mn = np.minimum(x.min(axis=1), F32(0))
    mx = x.max(axis=1)
    sum_w = seqsum(w)
    sum_x = seqsum(w * x)
    flat = mx == mn
    span = np.where(flat, F32(1), mx - mn).astype(F32)

    iscale = (F32(nmax) / span).astype(F32)
    scale = (F32(1) / iscale).astype(F32)
    L = np.clip(rne(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    diff = scale[:, None] * L.astype(F32) + mn[:, None] - x
    best = seqsum(w * (diff * diff))

    for step in range(nstep + 1):
        # as in ggml, a better (scale, min) found at one step moves the min
        # that the following steps' grids start from (max - min included)
        span = np.where(flat, F32(1), mx - mn).astype(F32)
        iscale = ((F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / span).astype(F32)
        l = np.clip(rne(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        lf = l.astype(F32)
        sum_l = seqsum(w * lf)
        sum_l2 = seqsum(w * lf * lf)
        sum_xl = seqsum(w * lf * x)
        D = sum_w * sum_l2 - sum_l * sum_l
        ok = D > 0
        Ds = np.where(ok, D, F32(1))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / Ds
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / Ds
        pos = this_min > 0
        this_min = np.where(pos, F32(0), this_min).astype(F32)
        this_scale = np.where(pos, sum_xl / np.where(sum_l2 > 0, sum_l2, F32(1)),
                              this_scale).astype(F32)
        diff = this_scale[:, None] * lf + this_min[:, None] - x
        cur = seqsum(w * (diff * diff))
        upd = ok & (cur < best)
        L[upd] = l[upd]
        best = np.where(upd, cur, best)
        scale = np.where(upd, this_scale, scale).astype(F32)
        mn = np.where(upd, this_min, mn).astype(F32)

    scale = np.where(flat, F32(0), scale).astype(F32)
    L[flat] = 0
    return scale, (-mn).astype(F32), L


def make_qx_quants(x, nmax):
    """Vectorised make_qx_quants (weights x^2) over rows of x (B, n).
    Returns (scale[B], L[B, n] in 0..2 nmax - 1)."""
    x = x.astype(F32)
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(x.shape[0]), idx]
    zero = np.abs(mx) < F32(1e-15)
    mxs = np.where(zero, F32(1), mx).astype(F32)
    w = x * x

    def attempt(iscale):
        l = np.clip(rne(iscale[:, None] * x), -nmax, nmax - 1)
        lf = l.astype(F32)
        return l, seqsum(w * x * lf), seqsum(w * lf * lf)

    iscale = (F32(-nmax) / mxs).astype(F32)
    l, sumlx, suml2 = attempt(iscale)
    L = l + nmax
    scale = np.where(suml2 != 0, sumlx / np.where(suml2 != 0, suml2, F32(1)), F32(0)).astype(F32)
    best = (scale * sumlx).astype(F32)
    for i in range(-9, 10):
        if i == 0:
            continue
        iscale = (-(F32(nmax) + F32(0.1) * F32(i)) / mxs).astype(F32)
        l, sumlx, suml2 = attempt(iscale)
        upd = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        L[upd] = l[upd] + nmax
        scale = np.where(upd, sumlx / np.where(suml2 > 0, suml2, F32(1)), scale).astype(F32)
        best = np.where(upd, scale * sumlx, best).astype(F32)
    scale = np.where(zero, F32(0), scale).astype(F32)
    L[zero] = 0
    return scale, L


# ------------------------------------------------------------ reference quantizers

def pack_k4_scales(ls, lm):
    """(nb, 8) 6-bit scales and mins -> (nb, 12) bytes."""
    s = np.zeros((ls.shape[0], 12), dtype=np.uint8)
    s[:, 0:4] = (ls[:, 0:4] & 63) | ((ls[:, 4:8] >> 4) << 6)
    s[:, 4:8] = (lm[:, 0:4] & 63) | ((lm[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    return s


def ref_k4(x, nmax, rmin, rdelta, nstep):
    """Reference Q4_K/Q5_K search: returns d, dmin (fp16), ls, lm (nb, 8), L (nb, 256)."""
    xb = x.reshape(-1, 8, 32).astype(F32)
    nb = xb.shape[0]
    sum_x2 = seqsum(xb * xb)
    av_x = np.sqrt(sum_x2 / F32(32)).astype(F32)
    w = av_x[:, :, None] + np.abs(xb)
    sc, mins, L = make_qkx2_quants(xb.reshape(-1, 32), w.reshape(-1, 32), nmax, rmin, rdelta, nstep)
    sc = sc.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, 8, 32)
    max_scale = np.maximum(sc.max(axis=1), F32(0))
    max_min = np.maximum(mins.max(axis=1), F32(0))
    inv_scale = np.where(max_scale > 0, F32(63) / np.where(max_scale > 0, max_scale, F32(1)), F32(0))
    inv_min = np.where(max_min > 0, F32(63) / np.where(max_min > 0, max_min, F32(1)), F32(0))
    # ggml stores nearest_int into a uint8_t and then takes MIN(63, .)
    ls = np.minimum(np.mod(rne(inv_scale[:, None].astype(F32) * sc), 256), 63).astype(np.uint8)
    lm = np.minimum(np.mod(rne(inv_min[:, None].astype(F32) * mins), 256), 63).astype(np.uint8)
    d = to_fp16(max_scale / F32(63))
    dmin = to_fp16(max_min / F32(63))
    dd = d.astype(F32)[:, None] * ls.astype(F32)
    dm = dmin.astype(F32)[:, None] * lm.astype(F32)
    ddz = np.where(dd != 0, dd, F32(1))
    Lr = np.clip(rne((xb + dm[:, :, None]) / ddz[:, :, None]), 0, nmax)
    L = np.where((dd != 0)[:, :, None], Lr, L).reshape(nb, 256)
    return d, dmin, ls, lm, L


def ref_q4_K(x):
    d, dmin, ls, lm, L = ref_k4(x, 15, -1.0, 0.1, 20)
    nb = L.shape[0]
    Lc = L.reshape(nb, 4, 2, 32).astype(np.uint8)
    qs = (Lc[:, :, 0, :] | (Lc[:, :, 1, :] << 4)).reshape(nb, 128)
    return np.concatenate([d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2),
                           pack_k4_scales(ls, lm), qs], axis=1)


def ref_q5_K(x):
    d, dmin, ls, lm, L = ref_k4(x, 31, -0.5, 0.1, 15)
    nb = L.shape[0]
    Lc = L.reshape(nb, 4, 2, 32).astype(np.uint8)
    qs = ((Lc[:, :, 0, :] & 0xF) | ((Lc[:, :, 1, :] & 0xF) << 4)).reshape(nb, 128)
    qh = np.zeros((nb, 32), dtype=np.uint8)
    for c in range(4):
        qh |= (Lc[:, c, 0, :] >> 4) << (2 * c)
        qh |= (Lc[:, c, 1, :] >> 4) << (2 * c + 1)
    return np.concatenate([d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2),
                           pack_k4_scales(ls, lm), qh, qs], axis=1)


def ref_q6_K(x):
    xb = x.reshape(-1, 16, 16).astype(F32)
    nb = xb.shape[0]
    sc, L = make_qx_quants(xb.reshape(-1, 16), 32)
    sc = sc.reshape(nb, 16)
    L = L.reshape(nb, 16, 16)
    idx = np.abs(sc).argmax(axis=1)
    max_scale = sc[np.arange(nb), idx]
    zero = np.abs(max_scale) < F32(1e-15)
    iscale = (F32(-128) / np.where(zero, F32(1), max_scale)).astype(F32)
    d = to_fp16(F32(1) / iscale)
    scales = np.minimum(127, rne(iscale[:, None] * sc)).astype(np.int8)
    dd = d.astype(F32)[:, None] * scales.astype(F32)
    ddz = np.where(dd != 0, dd, F32(1))
    Lr = np.clip(rne(xb / ddz[:, :, None]), -32, 31) + 32
    L = np.where((dd != 0)[:, :, None], Lr, L).reshape(nb, 256).astype(np.uint8)
    d = np.where(zero, np.float16(0), d)
    scales[zero] = 0
    L[zero] = 0
    Lh = L.reshape(nb, 2, 4, 32)  # half, quarter, l
    ql = np.concatenate([(Lh[:, :, 0] & 0xF) | ((Lh[:, :, 2] & 0xF) << 4),
                         (Lh[:, :, 1] & 0xF) | ((Lh[:, :, 3] & 0xF) << 4)], axis=2).reshape(nb, 128)
    qh = ((Lh[:, :, 0] >> 4) | ((Lh[:, :, 1] >> 4) << 2) | ((Lh[:, :, 2] >> 4) << 4)
          | ((Lh[:, :, 3] >> 4) << 6)).reshape(nb, 64)
    return np.concatenate([ql, qh, scales.view(np.uint8), d.view(np.uint8).reshape(nb, 2)], axis=1)


REFERENCE = {
    T.Q4_K: ref_q4_K,
    T.Q5_K: ref_q5_K,
    T.Q6_K: ref_q6_K,
    T.Q4_0: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.Q4_0)),
    T.Q8_0: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.Q8_0)),
    # gguf-py's own quantizers: kquant must be no worse (Q4_1/Q5_x match them
    # byte for byte; MXFP4 keeps gguf's exponent unless a neighbour is better)
    T.Q4_1: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.Q4_1)),
    T.Q5_0: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.Q5_0)),
    T.Q5_1: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.Q5_1)),
    T.MXFP4: lambda x: np.asarray(gq.quantize(x.reshape(-1, 32), T.MXFP4)),
}
# where the reference is gguf-py's quantizer itself, "no worse" is the bound
# (1e-9: float64 summation noise of an equal error)
GGUF_TOLERANCE = {T.Q4_1: 1 + 1e-9, T.Q5_0: 1 + 1e-9, T.Q5_1: 1 + 1e-9, T.MXFP4: 1 + 1e-9}


# ------------------------------------------------------------ simple quantizers
# For the types gguf-py cannot quantize (Q2_K, Q3_K, IQ4_NL, IQ4_XS): plain
# max-based quantizers, independent of kquant's searches, written here from
# the block definitions. They return the decoded values (fp16 scales rounded
# as a file would store them), not bytes.

IQ4_GRID = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                    dtype=F32)


def f16r(v):
    """v as fp16 stores it, saturating at 65504 as kquant does."""
    return np.clip(np.asarray(v, dtype=F32), -65504, 65504).astype(np.float16).astype(F32)


def signed_absmax(xb):
    idx = np.abs(xb).argmax(axis=-1)
    return np.take_along_axis(xb, idx[..., None], axis=-1)[..., 0]


def iq4_nearest(v):
    """Index of the nearest grid value (v in grid units)."""
    return np.abs(v[..., None] - IQ4_GRID).argmin(axis=-1)


def safe_div(a, b):
    return np.where(b != 0, a / np.where(b != 0, b, F32(1)), F32(0)).astype(F32)


def simple_iq4_nl(x):
    xb = x.reshape(-1, 32).astype(F32)
    d = f16r(signed_absmax(xb) / F32(-127))
    q = iq4_nearest(safe_div(xb, d[:, None]))
    return (d[:, None] * IQ4_GRID[q]).reshape(x.shape)


def simple_iq4_xs(x):
    xb = x.reshape(-1, 8, 32).astype(F32)
    s = signed_absmax(xb) / F32(-127)            # per sub-block
    d = f16r(signed_absmax(s) / F32(-32))        # per super-block
    ls = np.clip(np.rint(safe_div(s, d[:, None])), -32, 31).astype(F32)
    dl = d[:, None] * ls
    q = iq4_nearest(safe_div(xb, dl[:, :, None]))
    return (dl[:, :, None] * IQ4_GRID[q]).reshape(x.shape)


def simple_q2_K(x):
    xb = x.reshape(-1, 16, 16).astype(F32)
    mn = np.minimum(xb.min(axis=2), F32(0))
    sc = (xb.max(axis=2) - mn) / F32(3)
    d = f16r(sc.max(axis=1) / F32(15))
    dmin = f16r((-mn).max(axis=1) / F32(15))
    ls = np.clip(np.rint(safe_div(sc, d[:, None])), 0, 15).astype(F32)
    lm = np.clip(np.rint(safe_div(-mn, dmin[:, None])), 0, 15).astype(F32)
    dd, dm = d[:, None] * ls, dmin[:, None] * lm
    q = np.clip(np.rint(safe_div(xb + dm[:, :, None], dd[:, :, None])), 0, 3)
    return (dd[:, :, None] * q - dm[:, :, None]).reshape(x.shape)


def simple_q3_K(x):
    xb = x.reshape(-1, 16, 16).astype(F32)
    s = signed_absmax(xb) / F32(-4)
    d = f16r(signed_absmax(s) / F32(-32))
    ls = np.clip(np.rint(safe_div(s, d[:, None])), -32, 31).astype(F32)
    dl = d[:, None] * ls
    q = np.clip(np.rint(safe_div(xb, dl[:, :, None])), -4, 3)
    return (dl[:, :, None] * q).reshape(x.shape)


SIMPLE = {
    T.Q2_K: simple_q2_K,
    T.Q3_K: simple_q3_K,
    T.IQ4_NL: simple_iq4_nl,
    T.IQ4_XS: simple_iq4_xs,
}
# kquant's quantizers search where these take the max: the bound is that
# they do better, with a margin that shows the search does something (the
# factor is below what it gains: 0.68..0.97 measured on these data, the
# closest Q3_K on student-t(3)).
SIMPLE_TOLERANCE = 0.99


# ------------------------------------------------------------ data and driver

def distributions(rng, n_rows, n_cols):
    shape = (n_rows, n_cols)
    yield "normal", rng.standard_normal(shape)
    yield "uniform", rng.uniform(-1, 1, shape)
    yield "student-t(3)", rng.standard_t(3, shape)
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.005
    x[mask] *= rng.uniform(10, 100, int(mask.sum()))
    yield "normal+0.5% outliers", x
    x = rng.standard_normal(shape) * np.exp(rng.uniform(-8, 4, (n_rows, 1)))
    yield "normal, row scales e^-8..e^4", x
    x = np.abs(rng.standard_normal(shape)) + 0.5
    yield "positive (|normal|+0.5)", x
    # typical LLM weight magnitudes, and tiny ones: here the fp16 super-scales
    # of the k-quants become subnormal, where ours tries a better encoding
    yield "normal, std 0.02", rng.standard_normal(shape) * 0.02
    yield "normal, std 1e-5", rng.standard_normal(shape) * 1e-5


def main():
    lib = kqlib.load()
    seed = kqlib.seed()
    rng = np.random.default_rng(seed)
    import ctypes

    def ours(qtype, x):
        n_rows, n_cols = x.shape
        rs = ctypes.c_size_t()
        kqlib.check(lib, lib.kq_row_size(int(qtype), n_cols, ctypes.byref(rs)), "kq_row_size")
        out = np.empty((n_rows, rs.value), dtype=np.uint8)
        kqlib.check(lib, lib.kq_quantize(int(qtype), x.ctypes.data, n_rows, n_cols,
                                         out.ctypes.data, out.nbytes), "kq_quantize")
        return out

    n_rows, n_cols = 64, 4096
    failures = []
    # every quantized weight type the library loads (formats/type_list.h)
    # needs a reference or a simple quantizer here
    covered = [int(t) for t in list(REFERENCE) + list(SIMPLE)]
    for i in range(64):
        if lib.kq_type_is_supported(i) and lib.kq_type_block_elems(i) > 1 and i not in covered:
            failures.append("%s: no reference or simple quantizer to compare with"
                            % lib.kq_type_name(i).decode())
    print("%-6s %-30s %14s %14s %8s" % ("type", "data", "RMS ours", "RMS reference", "ratio"))
    for name, x in distributions(rng, n_rows, n_cols):
        x = np.ascontiguousarray(x, dtype=F32)
        xd = x.astype(np.float64)
        for qtype, ref_fn in REFERENCE.items():
            mine = ours(qtype, x)
            theirs = np.asarray(ref_fn(x)).reshape(mine.shape)
            y_mine = gq.dequantize(mine, qtype).reshape(x.shape).astype(np.float64)
            y_ref = gq.dequantize(theirs, qtype).reshape(x.shape).astype(np.float64)
            e_mine = float(np.sqrt(np.mean((y_mine - xd) ** 2)))
            e_ref = float(np.sqrt(np.mean((y_ref - xd) ** 2)))
            ratio = e_mine / e_ref if e_ref > 0 else (1.0 if e_mine == 0 else float("inf"))
            same = int(np.count_nonzero(mine != theirs))
            print("%-6s %-30s %14.7g %14.7g %8.5f  (%d bytes differ from the reference)"
                  % (qtype.name, name, e_mine, e_ref, ratio, same))
            tol = GGUF_TOLERANCE.get(qtype, TOLERANCE)
            if not (np.isfinite(e_mine) and e_mine <= tol * e_ref):
                failures.append("%s on %s: RMS %g > %.9g x reference %g"
                                % (qtype.name, name, e_mine, tol, e_ref))
        for qtype, simple_fn in SIMPLE.items():
            mine = ours(qtype, x)
            y_mine = gq.dequantize(mine, qtype).reshape(x.shape).astype(np.float64)
            y_ref = simple_fn(x).astype(np.float64)
            e_mine = float(np.sqrt(np.mean((y_mine - xd) ** 2)))
            e_ref = float(np.sqrt(np.mean((y_ref - xd) ** 2)))
            ratio = e_mine / e_ref if e_ref > 0 else (1.0 if e_mine == 0 else float("inf"))
            print("%-6s %-30s %14.7g %14.7g %8.5f  (simple max-based quantizer)"
                  % (qtype.name, name, e_mine, e_ref, ratio))
            if not (np.isfinite(e_mine) and e_mine <= SIMPLE_TOLERANCE * e_ref):
                failures.append("%s on %s: RMS %g > %.2f x simple quantizer %g"
                                % (qtype.name, name, e_mine, SIMPLE_TOLERANCE, e_ref))
    for f in failures:
        print("FAIL: " + f)
    if failures:
        print("rerun with KQ_TEST_SEED=%d" % seed)
        return 1
    print("quantizer error within the bounds for every type and distribution")
    return 0


if __name__ == "__main__":
    sys.exit(main())
