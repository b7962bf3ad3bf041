"""Errors: C failures raise KQError with the status and the library's
message; wrong dtype, shape, device or layout raises before any C call."""
import numpy as np
import pytest

import kquant


@pytest.fixture
def lin():
    b = kquant.Backend("cpu")
    w = np.random.default_rng(1).standard_normal((6, 256)).astype(np.float32)
    return kquant.Linear.load(b, "q8_0", kquant.quantize(w, "q8_0"), 6, 256)


class Recorder:
    """Stands in for a C function: records the arguments of each call and
    forwards them to the real one."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.real(*args)


def _addr(p):
    import ctypes
    return p if isinstance(p, int) else ctypes.addressof(p)


def test_c_failures_carry_status_and_message(tmp_path):
    missing = str(tmp_path / "missing.gguf")
    with pytest.raises(kquant.KQError) as e:
        kquant.GGUF(missing)
    assert e.value.status == 2 and e.value.status_name == "KQ_ERR_IO"
    assert "missing.gguf" in e.value.message and e.value.call == "kq_gguf_open"
    bad = tmp_path / "bad.gguf"
    # Version 3, then tensor and key counts far past what the file holds.
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2 ** 40).to_bytes(8, "little") * 2)
    with pytest.raises(kquant.KQError) as e:
        kquant.GGUF(str(bad))
    assert e.value.status_name == "KQ_ERR_FORMAT" and e.value.message
    with pytest.raises(kquant.KQError) as e:
        kquant.Backend("no-such-backend")
    assert e.value.status_name in ("KQ_ERR_INVALID_ARG", "KQ_ERR_UNSUPPORTED")
    b = kquant.Backend("cpu")
    with pytest.raises(kquant.KQError) as e:
        kquant.Linear.load(b, "q4_K", b"\0" * 100, 1, 256)  # 144 bytes wanted
    assert e.value.status_name == "KQ_ERR_INVALID_ARG" and "100" in e.value.message
    with pytest.raises(ValueError):
        kquant.type_id(1000)
    with pytest.raises(kquant.KQError):
        kquant.type_id("q9_Z")


def test_missing_tensor(tmp_gguf):
    kquant.write_gguf(tmp_gguf, {"w": np.ones((2, 32), np.float32)})
    with pytest.raises(kquant.KQError) as e:
        kquant.Linear.from_gguf(kquant.Backend("cpu"), tmp_gguf, "nope")
    assert e.value.status_name == "KQ_ERR_NOT_FOUND" and "nope" in e.value.message


def test_expert_id_out_of_range():
    b = kquant.Backend("cpu")
    w = np.random.default_rng(2).standard_normal((4 * 3, 64)).astype(np.float32)
    ex = kquant.Experts.load(b, "q8_0", kquant.quantize(w, "q8_0"), 4, 3, 64)
    x = np.ones((2, 64), np.float32)
    with pytest.raises(kquant.KQError) as e:
        ex(x, np.array([[0, 1], [4, 2]], np.int32))
    assert e.value.status_name == "KQ_ERR_RANGE" and "4" in e.value.message


@pytest.mark.parametrize("bad, exc, match", [
    (lambda: np.ones((2, 256), np.float64), TypeError, "float32"),
    (lambda: np.ones((2, 255), np.float32), ValueError, "256"),
    (lambda: np.ones((256, 4), np.float32).T, ValueError, "contiguous"),
    (lambda: np.ones((2, 512), np.float32)[:, ::2], ValueError, "contiguous"),
    (lambda: np.float32(1.0), TypeError, "numpy"),
    (lambda: [[1.0] * 256], TypeError, "numpy"),
])
def test_bad_input_raises_before_the_call(lin, bad, exc, match):
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    with pytest.raises(exc, match=match):
        lin(bad())
    assert rec.calls == []


def test_bad_out_raises_before_the_call(lin):
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    x = np.ones((3, 256), np.float32)
    for out, exc in [(np.empty((3, 5), np.float32), ValueError),
                     (np.empty((3, 6), np.float64), ValueError),
                     (np.empty((6, 3), np.float32).T, ValueError),
                     ([0.0] * 18, TypeError)]:
        with pytest.raises(exc):
            lin(x, out=out)
    assert rec.calls == []
    with pytest.raises(ValueError, match="even"):
        kquant.Linear.load(kquant.Backend("cpu"), "f32", np.ones((3, 32), np.float32), 3,
                           32).swiglu(np.ones((1, 32), np.float32))


def test_inputs_are_not_copied(lin):
    """Contiguous float32 x and out are handed to the C call in place."""
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    x = np.random.default_rng(3).standard_normal((4, 256)).astype(np.float32)
    out = np.full((4, 6), np.nan, np.float32)
    y = lin(x, out=out)
    assert y is out and not np.isnan(out).any()
    (args,) = rec.calls
    assert _addr(args[2]) == x.ctypes.data and _addr(args[3]) == out.ctypes.data and args[4] == 4
    # A read-only x (e.g. over bytes) goes in place too.
    ro = np.frombuffer(x.tobytes(), np.float32).reshape(4, 256)
    np.testing.assert_array_equal(lin(ro), y)
    assert _addr(rec.calls[-1][2]) == ro.ctypes.data


def test_empty_batch_makes_no_call(lin):
    rec = Recorder(lin._fwd)
    lin._fwd = rec
    y = lin(np.ones((0, 256), np.float32))
    assert y.shape == (0, 6) and rec.calls == []


def test_experts_argument_checks():
    b = kquant.Backend("cpu")
    ex = kquant.Experts.load(b, "f32", np.ones((2 * 3, 32), np.float32), 2, 3, 32)
    ids = np.zeros((4, 2), np.int32)
    with pytest.raises(ValueError, match="shape"):
        ex(np.ones((3, 32), np.float32), ids)
    with pytest.raises(ValueError, match="slot_stride"):
        ex(np.ones((4, 32), np.float32), ids, slot_stride=32)
    with pytest.raises(TypeError, match="integers"):
        ex(np.ones((4, 32), np.float32), ids.astype(np.float32))
    y = ex(np.ones((4, 2, 32), np.float32), ids)
    assert y.shape == (4, 2, 3) and np.all(y == 32.0)
    y1 = ex(np.ones((4, 32), np.float32), np.zeros(4, np.int64))
    assert y1.shape == (4, 3)
