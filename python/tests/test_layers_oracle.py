"""Every layer kind on every supported weight type, through the package,
against a float64 product of gguf-py's dequantization of the same bytes,
under the bounds of the C tests (oracle.py says which and why).

Outputs are poisoned (NaN) and written through out= in one case of each
kind, so an element the library forgot fails."""
import numpy as np
import pytest

import kquant
from conftest import SEED
from oracle import (assert_close, geglu_tolerance, gelu, has_oracle, make_weight, product, silu,
                    swiglu_tolerance, tolerance)

BACKENDS = ["cpu-ref", "cpu", "cpu:threads=3"]
TYPES = [t for t in kquant.supported_types()]


def _k(rng, t):
    be = kquant.block_size(t)[0]
    base = 256 if be <= 256 else be
    return base * int(rng.integers(1, 5))


def _need_oracle(t):
    if not has_oracle(t):
        pytest.skip("gguf-py has no dequantizer for %s" % kquant.type_name(t))


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return kquant.Backend(request.param)


@pytest.mark.parametrize("t", TYPES, ids=[kquant.type_name(t) for t in TYPES])
def test_linear(backend, t, rng):
    _need_oracle(t)
    k = _k(rng, t)
    n = int(rng.integers(1, 40)) | 1  # odd: not a multiple of any tile
    raw, w = make_weight(rng, t, n, k)
    lin = kquant.Linear.load(backend, t, raw, n, k)
    assert (lin.rows, lin.cols, lin.n_parts) == (n, k, 1)
    assert not lin.is_zero_copy  # numpy bytes are copied
    for m in (1, 3, 17, int(rng.integers(4, 40))):
        x = rng.standard_normal((m, k)).astype(np.float32)
        want, a = product(w, x)
        tol = tolerance(backend.spec, t, w, x, want, a)
        what = "%s %s N=%d K=%d m=%d" % (backend.spec, kquant.type_name(t), n, k, m)
        assert_close(lin(x), want, tol, what, SEED)
        out = np.full((m, n), np.nan, np.float32)
        assert lin(x, out=out) is out
        assert_close(out, want, tol, what + " out=", SEED)
    # Leading dimensions: [2, 3, K] -> [2, 3, N], the same rows as [6, K].
    x = rng.standard_normal((2, 3, k)).astype(np.float32)
    want, a = product(w, x.reshape(6, k))
    got = lin(x)
    assert got.shape == (2, 3, n)
    assert_close(got.reshape(6, n), want, tolerance(backend.spec, t, w, x.reshape(6, k), want, a),
                 "%s %s [2, 3, K]" % (backend.spec, kquant.type_name(t)), SEED)


def test_fused_mixed_types(backend, rng):
    """Parts of different types stacked by rows; each block of columns
    against its own part's weights and bound."""
    types = [t for t in TYPES if has_oracle(t)]
    for rep in range(4):
        n_parts = int(rng.integers(2, 5))
        pick = [types[int(i)] for i in rng.integers(0, len(types), n_parts)]
        k = 256 * int(rng.integers(1, 5))
        parts, ws = [], []
        for t in pick:
            rows = int(rng.integers(1, 30))
            raw, w = make_weight(rng, t, rows, k)
            parts.append((t, raw, rows))
            ws.append(w)
        lin = kquant.Linear.load_fused(backend, parts, k)
        assert lin.n_parts == n_parts and lin.rows == sum(p[2] for p in parts)
        m = int(rng.integers(1, 30))
        x = rng.standard_normal((m, k)).astype(np.float32)
        y = lin(x)
        col = 0
        for p, (t, _, rows) in enumerate(parts):
            want, a = product(ws[p], x)
            assert_close(y[:, col:col + rows], want, tolerance(backend.spec, t, ws[p], x, want, a),
                         "%s fused %s part %d" % (backend.spec,
                                                  "+".join(kquant.type_name(q) for q in pick), p),
                         SEED)
            col += rows


def _glu_check(backend_spec, y, x, wg, wu, tg, tu, what, gate=silu,
               gate_tolerance=swiglu_tolerance):
    """y = gate(g) * u for the gate and up weights wg, wu (SwiGLU unless told)."""
    g, ag = product(wg, x)
    u, au = product(wu, x)
    eg = tolerance(backend_spec, tg, wg, x, g, ag)
    eu = tolerance(backend_spec, tu, wu, x, u, au)
    assert_close(y, gate(g) * u, gate_tolerance(backend_spec, g, u, eg, eu, ag, au), what, SEED)


@pytest.mark.parametrize("t", TYPES, ids=[kquant.type_name(t) for t in TYPES])
def test_linear_geglu(backend, t, rng):
    _need_oracle(t)
    k, h, m = _k(rng, t), int(rng.integers(1, 30)), int(rng.integers(1, 20))
    rg, wg = make_weight(rng, t, h, k)
    ru, wu = make_weight(rng, t, h, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    fused = kquant.Linear.load_fused(backend, [(t, rg, h), (t, ru, h)], k)
    out = np.full((m, h), np.nan, np.float32)
    fused.geglu(x, out=out)
    _glu_check(backend.spec, out, x, wg, wu, t, t,
               "%s geglu %s h=%d K=%d m=%d" % (backend.spec, kquant.type_name(t), h, k, m),
               gate=gelu, gate_tolerance=geglu_tolerance)


@pytest.mark.parametrize("t", TYPES, ids=[kquant.type_name(t) for t in TYPES])
def test_linear_swiglu(backend, t, rng):
    _need_oracle(t)
    others = [q for q in TYPES if has_oracle(q)]
    tu = others[int(rng.integers(0, len(others)))]
    k, h, m = _k(rng, t), int(rng.integers(1, 30)), int(rng.integers(1, 20))
    rg, wg = make_weight(rng, t, h, k)
    ru, wu = make_weight(rng, tu, h, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    fused = kquant.Linear.load_fused(backend, [(t, rg, h), (tu, ru, h)], k)
    out = np.full((m, h), np.nan, np.float32)
    fused.swiglu(x, out=out)
    _glu_check(backend.spec, out, x, wg, wu, t, tu, "%s swiglu %s+%s h=%d K=%d m=%d"
                  % (backend.spec, kquant.type_name(t), kquant.type_name(tu), h, k, m))
    # One tensor holding gate rows then up rows.
    raw, w = make_weight(rng, t, 2 * h, k)
    one = kquant.Linear.load(backend, t, raw, 2 * h, k)
    _glu_check(backend.spec, one.swiglu(x), x, w[:h], w[h:], t, t,
                  "%s swiglu one tensor %s" % (backend.spec, kquant.type_name(t)))


@pytest.mark.parametrize("t", TYPES, ids=[kquant.type_name(t) for t in TYPES])
def test_experts(backend, t, rng):
    _need_oracle(t)
    n_exp = int(rng.integers(2, 9))
    top_k = int(rng.integers(1, min(n_exp, 3) + 1))
    k, n, m = _k(rng, t), int(rng.integers(1, 24)), int(rng.integers(1, 12))
    raw, w = make_weight(rng, t, n_exp * n, k)
    ex = kquant.Experts.load(backend, t, raw, n_exp, n, k)
    assert (ex.n_experts, ex.rows, ex.cols) == (n_exp, n, k)
    w = w.reshape(n_exp, n, k)
    ids = rng.integers(0, n_exp, (m, top_k)).astype(np.int32)
    for per_slot in (False, True):
        x = rng.standard_normal((m, top_k, k) if per_slot else (m, k)).astype(np.float32)
        out = np.full((m, top_k, n), np.nan, np.float32)
        y = ex(x, ids, out=out)
        assert y is out
        for i in range(m):
            for s in range(top_k):
                xr = (x[i, s] if per_slot else x[i])[None, :]
                we = w[ids[i, s]]
                want, a = product(we, xr)
                assert_close(y[i, s][None, :], want, tolerance(backend.spec, t, we, xr, want, a),
                             "%s experts %s E=%d top_k=%d pair (%d, %d)%s"
                             % (backend.spec, kquant.type_name(t), n_exp, top_k, i, s,
                                " per-slot x" if per_slot else ""), SEED)


@pytest.mark.parametrize("t", TYPES, ids=[kquant.type_name(t) for t in TYPES])
def test_experts_swiglu(backend, t, rng):
    _need_oracle(t)
    others = [q for q in TYPES if has_oracle(q)]
    tu = others[int(rng.integers(0, len(others)))]
    n_exp = int(rng.integers(2, 6))
    top_k = int(rng.integers(1, min(n_exp, 3) + 1))
    k, n, m = _k(rng, t), int(rng.integers(1, 16)), int(rng.integers(1, 8))
    rg, wg = make_weight(rng, t, n_exp * n, k)
    ru, wu = make_weight(rng, tu, n_exp * n, k)
    gate = kquant.Experts.load(backend, t, rg, n_exp, n, k)
    up = kquant.Experts.load(backend, tu, ru, n_exp, n, k)
    wg, wu = wg.reshape(n_exp, n, k), wu.reshape(n_exp, n, k)
    ids = rng.integers(0, n_exp, (m, top_k)).astype(np.int64)  # converted to int32
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = gate.swiglu(up, x, ids)
    assert y.shape == (m, top_k, n)
    for i in range(m):
        for s in range(top_k):
            e = int(ids[i, s])
            _glu_check(backend.spec, y[i, s][None, :], x[i][None, :], wg[e], wu[e], t, tu,
                          "%s experts swiglu %s+%s pair (%d, %d)"
                          % (backend.spec, kquant.type_name(t), kquant.type_name(tu), i, s))


def test_every_supported_type_is_covered():
    """The list above is the library's own (kq_type_is_supported over the
    ids), so a type added in C is tested here without an edit."""
    ids = [t for t in range(256) if kquant.lib_supported(t)] if hasattr(kquant, "lib_supported") \
        else None
    names = {kquant.type_name(t) for t in TYPES}
    assert {"f32", "f16", "bf16", "q4_0", "q8_0", "q4_K", "q5_K", "q6_K"} <= names
    assert ids is None or len(ids) == len(TYPES)
