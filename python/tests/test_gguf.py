"""GGUF files through the package: write_gguf and GGUF read each other and
agree with gguf-py's own reader and writer; tensor data are read-only views
of the mapping; layers from a file use its bytes in place (by address)."""
import numpy as np
import pytest

import kquant
from conftest import SEED
from oracle import assert_close, gguf, make_weight, oracle_dequantize, product, tolerance

META = {
    "general.architecture": "llama",
    "general.alignment": (kquant.VType.U32, 64),
    "test.u8": np.uint8(200), "test.i8": np.int8(-5), "test.u16": np.uint16(60000),
    "test.i16": np.int16(-30000), "test.i32": np.int32(-(2 ** 31)), "test.u64": np.uint64(2 ** 63 + 5),
    "test.i64": -(2 ** 40), "test.big": 2 ** 40, "test.u32": 7, "test.f32": 0.5,
    "test.f64": np.float64(1.0 / 3.0), "test.bool": True, "test.unicode": "naïve → ✓",
    "test.strs": ["a", "", "βγ"], "test.ints": [1, 2, 3], "test.neg": [-1, 5],
    "test.floats": np.array([0.25, -1.5], np.float32), "test.bools": [True, False],
}
WANT_VTYPE = {"general.architecture": "STRING", "general.alignment": "U32", "test.u8": "U8",
              "test.i8": "I8", "test.u16": "U16", "test.i16": "I16", "test.i32": "I32",
              "test.u64": "U64", "test.i64": "I64", "test.big": "I64", "test.u32": "U32",
              "test.f32": "F32", "test.f64": "F64", "test.bool": "BOOL",
              "test.unicode": "STRING", "test.strs": "ARRAY", "test.ints": "ARRAY",
              "test.neg": "ARRAY", "test.floats": "ARRAY", "test.bools": "ARRAY"}


def _tensors(rng):
    q_raw, q_w = make_weight(rng, kquant.Type.Q4_K, 6, 512)
    e_raw, e_w = make_weight(rng, kquant.Type.Q8_0, 3 * 5, 256)
    f = rng.standard_normal((4, 64)).astype(np.float32)
    h = rng.standard_normal((2, 32)).astype(np.float16)
    tensors = {"w.q4": ("q4_K", q_raw, (6, 512)), "w.f32": f, "w.f16": h,
               "w.exps": ("q8_0", e_raw, (3, 5, 256))}
    return tensors, {"w.q4": q_w, "w.exps": e_w.reshape(3, 5, 256)}


def test_write_then_read(tmp_gguf, rng):
    tensors, _ = _tensors(rng)
    kquant.write_gguf(tmp_gguf, tensors, META)
    with kquant.GGUF(tmp_gguf) as f:
        assert f.version == 3 and f.alignment == 64
        md = f.metadata
        assert list(md) == list(META)
        for key, vt in WANT_VTYPE.items():
            assert md.vtype(key) == getattr(kquant.VType, vt), key
        assert md["general.architecture"] == "llama" and md["general.alignment"] == 64
        assert md["test.u64"] == 2 ** 63 + 5 and md["test.i64"] == -(2 ** 40)
        assert md["test.i32"] == -(2 ** 31) and md["test.u16"] == 60000
        assert md["test.f32"] == 0.5 and md["test.f64"] == 1.0 / 3.0
        assert md["test.bool"] is True and md["test.unicode"] == "naïve → ✓"
        assert md["test.strs"] == ["a", "", "βγ"] and md["test.bools"] == [True, False]
        assert list(md["test.ints"]) == [1, 2, 3] and list(md["test.neg"]) == [-1, 5]
        assert np.array_equal(md["test.floats"], np.array([0.25, -1.5], np.float32))
        assert list(f.tensors) == list(tensors)
        q = f.tensors["w.q4"]
        assert (q.type, q.shape, q.ne) == (kquant.Type.Q4_K, (6, 512), (512, 6))
        assert np.array_equal(q.data, tensors["w.q4"][1]) and q.data.shape == (6, 288)
        assert q.offset % 64 == 0
        assert np.array_equal(f.tensors["w.f32"].data, tensors["w.f32"])
        assert f.tensors["w.f16"].data.dtype == np.float16
        assert np.array_equal(f.tensors["w.f16"].data, tensors["w.f16"])
        ex = f.tensors["w.exps"]
        assert ex.shape == (3, 5, 256) and ex.ne == (256, 5, 3)
        np.testing.assert_array_equal(ex.dequantize(),
                                      kquant.dequantize(tensors["w.exps"][1], "q8_0", (3, 5, 256)))


def test_views_are_read_only(tmp_gguf, rng):
    tensors, _ = _tensors(rng)
    kquant.write_gguf(tmp_gguf, tensors)
    f = kquant.GGUF(tmp_gguf)
    for t in f.tensors.values():
        d = t.data
        assert not d.flags.writeable
        with pytest.raises(ValueError):
            d.flags.writeable = True
        with pytest.raises(ValueError):
            d.reshape(-1)[0] = 1


def test_gguf_py_reads_what_we_write(tmp_gguf, rng):
    tensors, _ = _tensors(rng)
    kquant.write_gguf(tmp_gguf, tensors, META)
    r = gguf.GGUFReader(tmp_gguf)
    assert r.fields["general.architecture"].contents() == "llama"
    assert r.fields["test.strs"].contents() == ["a", "", "βγ"]
    assert r.fields["test.u64"].contents() == 2 ** 63 + 5
    by_name = {t.name: t for t in r.tensors}
    for name, spec in tensors.items():
        t = by_name[name]
        raw = spec[1] if isinstance(spec, tuple) else spec
        assert bytes(np.ascontiguousarray(t.data).tobytes()) == bytes(np.ascontiguousarray(raw).tobytes())
    q = by_name["w.q4"]
    assert int(q.tensor_type) == int(kquant.Type.Q4_K) and list(q.shape) == [512, 6]


def test_we_read_what_gguf_py_writes(tmp_gguf, rng):
    w = gguf.GGUFWriter(tmp_gguf, "llama")
    w.add_uint32("llama.block_count", 32)
    w.add_float32("llama.rope.freq_base", 500000.0)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", ["<s>", "hello", "wörld"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.5, -2.25])
    raw, deq = make_weight(rng, kquant.Type.Q6_K, 5, 256)
    w.add_tensor("blk.0.ffn_down.weight", raw, raw_shape=raw.shape,
                 raw_dtype=gguf.GGMLQuantizationType.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    f = kquant.GGUF(tmp_gguf)
    md = f.metadata
    assert md["general.architecture"] == "llama" and md["llama.block_count"] == 32
    assert md["llama.rope.freq_base"] == 500000.0
    assert md["tokenizer.ggml.tokens"] == ["<s>", "hello", "wörld"]
    assert np.array_equal(md["tokenizer.ggml.scores"], np.array([0.0, -1.5, -2.25], np.float32))
    t = f.tensors["blk.0.ffn_down.weight"]
    assert t.shape == (5, 256) and t.type == kquant.Type.Q6_K
    np.testing.assert_array_equal(t.dequantize(), deq)


@pytest.mark.parametrize("spec", ["cpu", "cpu-ref"])
def test_from_gguf_is_zero_copy(tmp_gguf, rng, spec):
    """Layers from a file multiply the mapping's own bytes: their weight
    address is the tensor's address in the mapping (kq_linear_part)."""
    tensors, ws = _tensors(rng)
    tensors["w.q4b"] = tensors["w.q4"]
    kquant.write_gguf(tmp_gguf, tensors)
    b = kquant.Backend(spec)
    f = kquant.GGUF(tmp_gguf)
    addr = {n: t.data.ctypes.data for n, t in f.tensors.items()}
    lin = kquant.Linear.from_gguf(b, f, "w.q4")
    assert lin.is_zero_copy
    (p,) = lin.parts()
    assert (p.address, p.nbytes, p.rows) == (addr["w.q4"], f.tensors["w.q4"].nbytes, 6)
    fused = kquant.Linear.from_gguf(b, f, "w.q4", "w.q4b")
    assert fused.is_zero_copy and [q.address for q in fused.parts()] == [addr["w.q4"],
                                                                        addr["w.q4b"]]
    ex = kquant.Experts.from_gguf(b, f, "w.exps")
    assert ex.is_zero_copy and ex.weights().address == addr["w.exps"]
    # Bytes handed to load() that lie in the mapping are used in place too.
    t = f.tensors["w.q4"]
    again = kquant.Linear.load(b, t.type, t.data, 6, 512)
    assert again.is_zero_copy and again.parts()[0].address == addr["w.q4"]
    # And a copy is a copy: numpy bytes elsewhere.
    copied = kquant.Linear.load(b, t.type, np.array(t.data), 6, 512)
    assert not copied.is_zero_copy and copied.parts()[0].address != addr["w.q4"]
    x = rng.standard_normal((3, 512)).astype(np.float32)
    want, a = product(ws["w.q4"], x)
    assert_close(lin(x), want, tolerance(spec, kquant.Type.Q4_K, ws["w.q4"], x, want, a),
                 spec + " from_gguf", SEED)


def test_from_gguf_by_path(tmp_gguf, rng):
    tensors, ws = _tensors(rng)
    kquant.write_gguf(tmp_gguf, tensors)
    b = kquant.Backend("cpu-ref")
    lin = kquant.Linear.from_gguf(b, tmp_gguf, "w.q4")
    assert lin.is_zero_copy  # the mapping stays while the layer uses it
    x = rng.standard_normal((2, 512)).astype(np.float32)
    want, a = product(ws["w.q4"], x)
    assert_close(lin(x), want, tolerance("cpu-ref", kquant.Type.Q4_K, ws["w.q4"], x, want, a),
                 "from_gguf(path)", SEED)


def test_quantize_dequantize_against_gguf_py(rng):
    for t in kquant.supported_types():
        try:
            raw, deq = make_weight(rng, t, 3, 256)
        except pytest.skip.Exception:
            continue
        np.testing.assert_array_equal(kquant.dequantize(raw, t, (3, 256)), deq,
                                      err_msg=kquant.type_name(t))
        assert raw.shape == (3, kquant.row_size(t, 256))
        np.testing.assert_array_equal(oracle_dequantize(t, raw, 3, 256), deq)
