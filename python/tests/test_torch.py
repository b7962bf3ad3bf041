"""torch tensors: CPU tensors on CPU backends, CUDA tensors on the cuda
backend (used in place, on the current stream, fp16/bf16 converted on the
device). Skipped, with the reason, where torch (or a GPU) is missing."""
import ctypes

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")

import kquant  # noqa: E402
from conftest import SEED  # noqa: E402
from oracle import assert_close, make_weight, product  # noqa: E402
from test_errors import Recorder, _addr  # noqa: E402

K, N = 512, 24


@pytest.fixture
def weights(rng):
    return make_weight(rng, kquant.Type.Q4_K, N, K)


def test_cpu_tensors(weights, rng):
    raw, w = weights
    b = kquant.Backend("cpu")
    lin = kquant.Linear.load(b, "q4_K", raw, N, K)
    xn = rng.standard_normal((2, 3, K)).astype(np.float32)
    x = torch.from_numpy(xn)
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    y = lin(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (2, 3, N)
    assert _addr(rec.calls[-1][2]) == x.data_ptr() and rec.calls[-1][3] == y.data_ptr()
    np.testing.assert_array_equal(y.numpy(), lin(xn))
    for dt in (torch.float16, torch.bfloat16):
        xh = x.to(dt)
        yh = lin(xh)
        assert yh.dtype == dt
        torch.testing.assert_close(yh, lin(xh.float()).to(dt), rtol=0, atol=0)
        out = torch.full((2, 3, N), float("nan"), dtype=dt)
        assert lin(xh, out=out) is out
        torch.testing.assert_close(out, yh, rtol=0, atol=0)
    out32 = torch.full((2, 3, N), float("nan"))
    lin(x, out=out32)
    assert torch.equal(out32, y)
    with pytest.raises(TypeError):
        lin(x.double())
    with pytest.raises(ValueError, match="contiguous"):
        lin(torch.from_numpy(np.ones((K, 4), np.float32)).t())


def test_cpu_experts_with_int64_ids(rng):
    raw, w = make_weight(rng, kquant.Type.Q8_0, 3 * N, K)
    ex = kquant.Experts.load(kquant.Backend("cpu-ref"), "q8_0", raw, 3, N, K)
    x = torch.randn(4, K, generator=torch.Generator().manual_seed(SEED))
    ids = torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])  # int64, as topk gives
    y = ex(x, ids)
    assert y.shape == (4, 2, N)
    np.testing.assert_array_equal(y.numpy(), ex(x.numpy(), ids.numpy().astype(np.int32)))


def _cuda_backend():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    try:
        return kquant.Backend("cuda:0")
    except kquant.KQError as e:
        pytest.skip("the cuda backend does not open here: %s" % e)


def _cuda_tol(t, w, x, want, a):
    """The int8-x kernels (m <= 16, one quant type) quantize x in blocks of 32:
    tests/cuda_testutil.h bounds them statistically (kc_q8_tol); here the
    worst case of the same quantization (oracle.act8_tol at block 32), which
    is never smaller. Float weights: kc_sum_tol."""
    from oracle import act8_tol, act_block
    if act_block(t):
        return act8_tol(w, x, 32) + 2.0 ** -24 * np.abs(want)
    k = w.shape[1]
    return (k / 32.0 + 6.0) * 2.0 ** -24 * a + 2.0 ** -24 * np.abs(want) + 1e-30


def test_cuda_tensors_in_place_on_current_stream(weights, rng):
    b = _cuda_backend()
    raw, w = weights
    lin = kquant.Linear.load(b, "q4_K", raw, N, K)
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    s = torch.cuda.Stream()
    for m in (1, 4, 16):
        xn = rng.standard_normal((m, K)).astype(np.float32)
        x = torch.from_numpy(xn).cuda()
        with torch.cuda.stream(s):
            y = lin(x)
        # Device pointers straight into the call: no host copy of x or y.
        assert _addr(rec.calls[-1][2]) == x.data_ptr() and rec.calls[-1][3] == y.data_ptr()
        assert y.is_cuda and y.dtype == torch.float32
        assert b._stream == s.cuda_stream
        assert lib_stream(b) == s.cuda_stream
        s.synchronize()
        want, a = product(w, xn)
        assert_close(y.cpu().numpy(), want, _cuda_tol(kquant.Type.Q4_K, w, xn, want, a),
                     "cuda q4_K m=%d" % m, SEED)
        for dt in (torch.float16, torch.bfloat16):
            yh = lin(x.to(dt))  # default stream now: passed as cudaStreamLegacy
            assert yh.dtype == dt and yh.is_cuda
            torch.testing.assert_close(yh.float(), lin(x.to(dt).float()).to(dt).float(),
                                       rtol=0, atol=0)
    with pytest.raises(ValueError, match="CUDA"):
        lin(np.ones((1, K), np.float32))
    with pytest.raises(ValueError, match="cuda"):
        lin(torch.ones(1, K))


def lib_stream(b):
    from kquant._lib import lib
    return lib.kq_backend_stream(b._live) or 0


def test_cuda_experts_device_ids(rng):
    b = _cuda_backend()
    raw, w = make_weight(rng, kquant.Type.Q8_0, 4 * N, K)
    ex = kquant.Experts.load(b, "q8_0", raw, 4, N, K)
    xn = rng.standard_normal((3, K)).astype(np.float32)
    idn = rng.integers(0, 4, (3, 2))
    y = ex(torch.from_numpy(xn).cuda(), torch.from_numpy(idn).cuda())
    torch.cuda.synchronize()
    w = w.reshape(4, N, K)
    for i in range(3):
        for s in range(2):
            we = w[idn[i, s]]
            want, a = product(we, xn[i:i + 1])
            assert_close(y[i, s].cpu().numpy()[None, :], want,
                         _cuda_tol(kquant.Type.Q8_0, we, xn[i:i + 1], want, a),
                         "cuda experts pair (%d, %d)" % (i, s), SEED)
    bad = torch.tensor([[0, 9]], device="cuda")
    ex(torch.from_numpy(xn[:1]).cuda(), bad)
    with pytest.raises(kquant.KQError) as e:
        b.sync()
    assert e.value.status_name == "KQ_ERR_RANGE"


del ctypes
