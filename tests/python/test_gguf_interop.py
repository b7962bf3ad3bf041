"""GGUF interoperability with the reference Python package (gguf-py).

(a) A file written by kquant's writer reads back with gguf.GGUFReader: the
    same keys in order, value types, values (arrays, strings, nested arrays),
    tensor names, types, shapes, offsets and bytes.
(b) A file written by gguf.GGUFWriter reads back with kquant's reader: equal
    metadata and tensor bytes (f32, f16, bf16, q8_0, q4_0 from
    gguf.quants.quantize; q4_K, q5_K, q6_K as raw blocks of the right shape).

Skips (exit 77) only when numpy or gguf is missing."""
import ctypes
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kqlib  # noqa: E402

np, gguf = kqlib.need_oracle()
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

c_void_p, c_int, c_int64, c_uint64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_uint64
c_char_p, c_size_t, c_double, c_uint32 = ctypes.c_char_p, ctypes.c_size_t, ctypes.c_double, ctypes.c_uint32
P = ctypes.POINTER


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("type", c_int), ("n_dims", c_int), ("ne", c_int64 * 4),
                ("offset", c_uint64), ("nbytes", c_uint64), ("data", c_void_p)]


def bind(lib):
    def sig(name, res, *args):
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = list(args)
    sig("kq_gguf_open", c_int, c_char_p, P(c_void_p))
    sig("kq_gguf_close", None, c_void_p)
    sig("kq_gguf_version", c_uint32, c_void_p)
    sig("kq_gguf_alignment", c_uint64, c_void_p)
    sig("kq_gguf_data_offset", c_uint64, c_void_p)
    sig("kq_gguf_n_kv", c_int64, c_void_p)
    sig("kq_gguf_kv_key", c_char_p, c_void_p, c_int64)
    sig("kq_gguf_kv_value", c_void_p, c_void_p, c_int64)
    sig("kq_gguf_find_kv", c_int, c_void_p, c_char_p, P(c_void_p))
    sig("kq_gguf_value_type", c_int, c_void_p)
    sig("kq_gguf_value_array", c_int, c_void_p, P(c_int), P(c_int64))
    sig("kq_gguf_value_int", c_int, c_void_p, P(c_int64))
    sig("kq_gguf_value_uint", c_int, c_void_p, P(c_uint64))
    sig("kq_gguf_value_float", c_int, c_void_p, P(c_double))
    sig("kq_gguf_value_bool", c_int, c_void_p, P(c_int))
    sig("kq_gguf_value_string", c_int, c_void_p, P(c_void_p), P(c_size_t))
    sig("kq_gguf_array_int", c_int, c_void_p, c_int64, P(c_int64))
    sig("kq_gguf_array_uint", c_int, c_void_p, c_int64, P(c_uint64))
    sig("kq_gguf_array_float", c_int, c_void_p, c_int64, P(c_double))
    sig("kq_gguf_array_bool", c_int, c_void_p, c_int64, P(c_int))
    sig("kq_gguf_array_string", c_int, c_void_p, c_int64, P(c_void_p), P(c_size_t))
    sig("kq_gguf_array_item", c_int, c_void_p, c_int64, P(c_void_p))
    sig("kq_gguf_n_tensors", c_int64, c_void_p)
    sig("kq_gguf_tensor", c_int, c_void_p, c_int64, P(TensorInfo))
    sig("kq_gguf_writer_new", c_int, c_uint32, P(c_void_p))
    sig("kq_gguf_writer_free", None, c_void_p)
    sig("kq_gguf_writer_set", c_int, c_void_p, c_char_p, c_int, c_void_p)
    sig("kq_gguf_writer_set_string", c_int, c_void_p, c_char_p, c_char_p, c_size_t)
    sig("kq_gguf_writer_set_array", c_int, c_void_p, c_char_p, c_int, c_void_p, c_int64)
    sig("kq_gguf_writer_set_string_array", c_int, c_void_p, c_char_p, P(c_char_p), P(c_size_t),
        c_int64)
    sig("kq_gguf_writer_set_value", c_int, c_void_p, c_char_p, c_void_p)
    sig("kq_gguf_writer_add_tensor", c_int, c_void_p, c_char_p, c_int, c_int, P(c_int64),
        c_void_p, c_size_t)
    sig("kq_gguf_writer_save", c_int, c_void_p, c_char_p)


lib = kqlib.load()
bind(lib)
SEED = kqlib.seed()
rng = np.random.default_rng(SEED)
prng = random.Random(SEED)
TMP = os.environ.get("KQ_TEST_TMP") or "/tmp"
checks = kqlib.Checks("test_gguf_interop", SEED)
check = checks.check

# numpy dtype of each scalar value type
NP = {VT.UINT8: np.uint8, VT.INT8: np.int8, VT.UINT16: np.uint16, VT.INT16: np.int16,
      VT.UINT32: np.uint32, VT.INT32: np.int32, VT.FLOAT32: np.float32, VT.BOOL: np.uint8,
      VT.UINT64: np.uint64, VT.INT64: np.int64, VT.FLOAT64: np.float64}
INTS = {VT.UINT8, VT.INT8, VT.UINT16, VT.INT16, VT.UINT32, VT.INT32, VT.UINT64, VT.INT64}
UNSIGNED = {VT.UINT8, VT.UINT16, VT.UINT32, VT.UINT64}


def ok(status, what):
    kqlib.check(lib, status, what)


# ---------------------------------------------------------------- our reader as Python values

def read_scalar(t, getter, *idx):
    if t in UNSIGNED:
        out = c_uint64()
        ok(getattr(lib, "kq_gguf_%s_uint" % getter)(*idx, ctypes.byref(out)), "uint")
        return out.value
    if t in INTS:
        out = c_int64()
        ok(getattr(lib, "kq_gguf_%s_int" % getter)(*idx, ctypes.byref(out)), "int")
        return out.value
    if t in (VT.FLOAT32, VT.FLOAT64):
        out = c_double()
        ok(getattr(lib, "kq_gguf_%s_float" % getter)(*idx, ctypes.byref(out)), "float")
        return out.value
    if t == VT.BOOL:
        out = c_int()
        ok(getattr(lib, "kq_gguf_%s_bool" % getter)(*idx, ctypes.byref(out)), "bool")
        return bool(out.value)
    raise AssertionError("not a scalar type %d" % t)


def kq_value(v):
    """(type, value): scalars as int/float/bool, strings as bytes, arrays as
    ('array', elem_type, [values])."""
    t = VT(lib.kq_gguf_value_type(v))
    if t == VT.STRING:
        p, n = c_void_p(), c_size_t()
        ok(lib.kq_gguf_value_string(v, ctypes.byref(p), ctypes.byref(n)), "value_string")
        return t, ctypes.string_at(p, n.value) if n.value else b""
    if t != VT.ARRAY:
        return t, read_scalar(t, "value", v)
    et, cnt = c_int(), c_int64()
    ok(lib.kq_gguf_value_array(v, ctypes.byref(et), ctypes.byref(cnt)), "value_array")
    et = VT(et.value)
    items = []
    for i in range(cnt.value):
        if et == VT.STRING:
            p, n = c_void_p(), c_size_t()
            ok(lib.kq_gguf_array_string(v, i, ctypes.byref(p), ctypes.byref(n)), "array_string")
            items.append(ctypes.string_at(p, n.value) if n.value else b"")
        elif et == VT.ARRAY:
            it = c_void_p()
            ok(lib.kq_gguf_array_item(v, i, ctypes.byref(it)), "array_item")
            items.append(kq_value(it))
        else:
            items.append(read_scalar(et, "array", v, i))
    return t, (et, items)


class KQFile:
    def __init__(self, path):
        self.h = c_void_p()
        ok(lib.kq_gguf_open(path.encode(), ctypes.byref(self.h)), "kq_gguf_open(%s)" % path)

    def kvs(self):
        out = []
        for i in range(lib.kq_gguf_n_kv(self.h)):
            out.append((lib.kq_gguf_kv_key(self.h, i).decode(), kq_value(lib.kq_gguf_kv_value(self.h, i))))
        return out

    def tensors(self):
        out = []
        for i in range(lib.kq_gguf_n_tensors(self.h)):
            ti = TensorInfo()
            ok(lib.kq_gguf_tensor(self.h, i, ctypes.byref(ti)), "kq_gguf_tensor")
            out.append(dict(name=ti.name.decode(), type=ti.type, ne=list(ti.ne)[:ti.n_dims],
                            offset=ti.offset, data=ctypes.string_at(ti.data, ti.nbytes)))
        return out

    def close(self):
        lib.kq_gguf_close(self.h)
        self.h = None


def flatten(val):
    """Leaves of a kq_value array, as GGUFReader's contents() flattens them."""
    t, v = val
    if t != VT.ARRAY:
        return [v]
    out = []
    for x in v[1]:
        out.extend(flatten(x) if isinstance(x, tuple) else [x])
    return out


def leaf_type(val):
    t, v = val
    while t == VT.ARRAY:
        et, items = v
        if et != VT.ARRAY:
            return et
        if not items:
            return VT.ARRAY
        t, v = items[0]
    return t


def same_float(a, b, f32):
    if f32:
        a, b = float(np.float32(a)), float(np.float32(b))
    return (np.isnan(a) and np.isnan(b)) or a == b


def same_value(t, a, b):
    if t in (VT.FLOAT32, VT.FLOAT64):
        return same_float(a, b, t == VT.FLOAT32)
    if t == VT.STRING:
        a = a.encode() if isinstance(a, str) else bytes(a)
        b = b.encode() if isinstance(b, str) else bytes(b)
    return a == b


# ---------------------------------------------------------------- (b) gguf-py writes, we read

def rand_scalar(t):
    if t == VT.BOOL:
        return prng.random() < 0.5
    if t in (VT.FLOAT32, VT.FLOAT64):
        return float(rng.normal() * 1000)
    info = np.iinfo(NP[t])
    return int(rng.integers(int(info.min), int(info.max), endpoint=True, dtype=np.int64
                            if info.min < 0 or info.max < 2**63 else np.uint64))


def rand_text():
    alphabet = "abcxyz019 _.-\u00e9\u4e2d\u2581"
    return "".join(prng.choice(alphabet) for _ in range(prng.randint(1, 24)))


QUANTIZED = [("f32", QT.F32, (3, 64)), ("f16", QT.F16, (2, 32)), ("bf16", QT.BF16, (4, 16)),
             ("q8_0", QT.Q8_0, (3, 64)), ("q4_0", QT.Q4_0, (2, 32)),
             ("q4_K", QT.Q4_K, (2, 256)), ("q5_K", QT.Q5_K, (1, 512)), ("q6_K", QT.Q6_K, (3, 256)),
             ("q6_K_3d", QT.Q6_K, (2, 3, 256))]


def make_tensor(qt, shape):
    """(array for GGUFWriter.add_tensor, raw_dtype, the bytes the file holds)."""
    x = rng.normal(size=shape).astype(np.float32)
    if qt == QT.F32:
        return x, None, x.tobytes()
    if qt == QT.F16:
        h = x.astype(np.float16)
        return h, None, h.tobytes()
    if qt in (QT.BF16, QT.Q8_0, QT.Q4_0):
        q = gguf.quants.quantize(x, qt)
        return q, qt, q.tobytes()
    block, size = gguf.GGML_QUANT_SIZES[qt]
    byte_shape = shape[:-1] + (shape[-1] // block * size,)
    q = rng.integers(0, 256, size=byte_shape, dtype=np.uint8)
    return q, qt, q.tobytes()


def test_gguf_py_to_kquant(path, alignment):
    w = gguf.GGUFWriter(path, "llama")
    expect = [("general.architecture", VT.STRING, "llama", None)]
    if alignment:
        w.add_custom_alignment(alignment)
        expect.append(("general.alignment", VT.UINT32, alignment, None))
    for t in NP:
        key = "test.scalar.%s" % t.name.lower()
        val = rand_scalar(t)
        w.add_key_value(key, val, t)
        expect.append((key, t, val, None))
    for k in range(3):
        key = "test.string.%d" % k
        val = rand_text()
        w.add_string(key, val)
        expect.append((key, VT.STRING, val, None))
    for t in NP:
        key = "test.array.%s" % t.name.lower()
        val = [rand_scalar(t) for _ in range(prng.randint(1, 40))]
        w.add_key_value(key, val, VT.ARRAY, sub_type=t)
        expect.append((key, VT.ARRAY, val, t))
    toks = [rand_text() for _ in range(50)]
    w.add_token_list(toks)
    expect.append(("tokenizer.ggml.tokens", VT.ARRAY, toks, VT.STRING))
    nested = {"test.nested.i32": [[1, 2, 3], [4], [-5, 6]],
              "test.nested.str": [["a", "bc"], ["\u00e9"], ["x", "y", "z"]],
              "test.nested.deep": [[[1.5, 2.5]], [[3.5]]]}
    for key, val in nested.items():
        w.add_array(key, val)
        expect.append((key, VT.ARRAY, val, VT.ARRAY))
    tensors = []
    for i, (nm, qt, shape) in enumerate(QUANTIZED):
        arr, raw, data = make_tensor(qt, shape)
        name = "blk.%d.%s.weight" % (i, nm)
        w.add_tensor(name, arr, raw_dtype=raw)
        tensors.append((name, int(qt), list(reversed(shape)), data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    f = KQFile(path)
    check(lib.kq_gguf_version(f.h) == 3, "(b) version")
    check(lib.kq_gguf_alignment(f.h) == (alignment or 32), "(b) alignment")
    kvs = f.kvs()
    check([k for k, _ in kvs] == [e[0] for e in expect],
          "(b) keys in order: %s vs %s" % ([k for k, _ in kvs], [e[0] for e in expect]))
    got = dict(kvs)
    for key, t, val, sub in expect:
        if key not in got:
            check(False, "(b) key %s missing" % key)
            continue
        gt, gv = got[key]
        check(gt == t, "(b) %s: type %s want %s" % (key, gt, t))
        if t != VT.ARRAY:
            check(same_value(t, gv, val), "(b) %s: %r want %r" % (key, gv, val))
        elif sub == VT.ARRAY:
            def conv(x):
                if isinstance(x, list):
                    return [conv(y) for y in x]
                return x.encode() if isinstance(x, str) else x
            def ours(v):
                tt, vv = v
                if tt != VT.ARRAY:
                    return vv
                return [ours(x) if isinstance(x, tuple) else x for x in vv[1]]
            check(ours((gt, gv)) == conv(val), "(b) nested %s: %r want %r" % (key, ours((gt, gv)), val))
            check(leaf_type((gt, gv)) in (VT.INT32, VT.STRING, VT.FLOAT32), "(b) nested %s leaf type" % key)
        else:
            et, items = gv
            check(et == sub, "(b) %s: element type %s want %s" % (key, et, sub))
            check(len(items) == len(val) and all(same_value(sub, a, b) for a, b in zip(items, val)),
                  "(b) %s: array values differ" % key)
    ts = f.tensors()
    check([t["name"] for t in ts] == [t[0] for t in tensors], "(b) tensor names")
    for got_t, (name, qt, ne, data) in zip(ts, tensors):
        check(got_t["type"] == qt, "(b) %s type %d want %d" % (name, got_t["type"], qt))
        check(got_t["ne"] == ne, "(b) %s ne %s want %s" % (name, got_t["ne"], ne))
        check(got_t["data"] == data, "(b) %s bytes differ" % name)
    f.close()


# ---------------------------------------------------------------- (a) we write, gguf-py reads

def kq_set_scalar(w, key, t, val):
    arr = np.array([val], dtype=NP[t])
    ok(lib.kq_gguf_writer_set(w, key.encode(), int(t), arr.ctypes.data), "set %s" % key)


def test_kquant_to_gguf_py(path, version, alignment, nested_src):
    w = c_void_p()
    ok(lib.kq_gguf_writer_new(version, ctypes.byref(w)), "writer_new")
    expect = []
    if alignment:
        kq_set_scalar(w, "general.alignment", VT.UINT32, alignment)
        expect.append(("general.alignment", VT.UINT32, alignment, None))
    for t in NP:
        key = "test.scalar.%s" % t.name.lower()
        val = rand_scalar(t)
        kq_set_scalar(w, key, t, val)
        expect.append((key, t, val, None))
    for k in range(3):
        key = "test.string.%d" % k
        val = rand_text().encode()
        ok(lib.kq_gguf_writer_set_string(w, key.encode(), val, len(val)), "set_string")
        expect.append((key, VT.STRING, val, None))
    for t in NP:
        key = "test.array.%s" % t.name.lower()
        vals = [rand_scalar(t) for _ in range(prng.randint(1, 40))]
        arr = np.array(vals, dtype=NP[t])
        ok(lib.kq_gguf_writer_set_array(w, key.encode(), int(t), arr.ctypes.data, len(vals)),
           "set_array %s" % key)
        expect.append((key, VT.ARRAY, vals, t))
    toks = [rand_text().encode() for _ in range(30)]
    cs = (c_char_p * len(toks))(*toks)
    lens = (c_size_t * len(toks))(*[len(x) for x in toks])
    ok(lib.kq_gguf_writer_set_string_array(w, b"tokenizer.ggml.tokens", cs, lens, len(toks)),
       "set_string_array")
    expect.append(("tokenizer.ggml.tokens", VT.ARRAY, toks, VT.STRING))
    # nested arrays: copied from a file our reader opened
    for key, val in nested_src.kvs():
        if key.startswith("test.nested."):
            v = c_void_p()
            ok(lib.kq_gguf_find_kv(nested_src.h, key.encode(), ctypes.byref(v)), "find_kv")
            ok(lib.kq_gguf_writer_set_value(w, key.encode(), v), "set_value %s" % key)
            expect.append((key, VT.ARRAY, val, "nested"))
    tensors = []
    for i, (nm, qt, shape) in enumerate(QUANTIZED):
        _, _, data = make_tensor(qt, shape)
        ne = list(reversed(shape))
        name = "blk.%d.%s" % (i, nm)
        nea = (c_int64 * len(ne))(*ne)
        buf = ctypes.create_string_buffer(data, len(data))
        ok(lib.kq_gguf_writer_add_tensor(w, name.encode(), int(qt), len(ne), nea, buf, len(data)),
           "add_tensor %s" % name)
        tensors.append((name, qt, ne, data))
    ok(lib.kq_gguf_writer_save(w, path.encode()), "save")
    lib.kq_gguf_writer_free(w)

    r = gguf.GGUFReader(path)
    check(r.alignment == (alignment or 32), "(a) alignment %s" % r.alignment)
    version_field = r.fields["GGUF.version"]
    check(int(version_field.parts[0][0]) == version, "(a) version")
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    check(keys == [e[0] for e in expect], "(a) keys in order: %s" % keys)
    for key, t, val, sub in expect:
        field = r.fields.get(key)
        if field is None:
            check(False, "(a) key %s missing" % key)
            continue
        check(field.types[0] == t, "(a) %s: type %s want %s" % (key, field.types[0], t))
        if t == VT.STRING:
            check(bytes(field.parts[-1]) == val, "(a) %s: string differs" % key)
        elif t != VT.ARRAY:
            check(same_value(t, field.contents(), val), "(a) %s: %r want %r" % (key, field.contents(), val))
        elif sub == VT.STRING:
            check(field.types == [VT.ARRAY, VT.STRING], "(a) %s types" % key)
            got = [bytes(field.parts[i]) for i in field.data]
            check(got == val, "(a) %s: strings differ" % key)
        elif sub == "nested":
            check(field.types[1] == VT.ARRAY and field.types[-1] == leaf_type(val),
                  "(a) nested %s types %s" % (key, field.types))
            leaves = flatten(val)
            lt = field.types[-1]
            if lt == VT.STRING:
                got = [bytes(field.parts[i]) for i in field.data]
            else:
                got = [field.parts[i].tolist()[0] for i in field.data]
            check(len(got) == len(leaves) and all(same_value(lt, a, b) for a, b in zip(got, leaves)),
                  "(a) nested %s: %r want %r" % (key, got, leaves))
        else:
            check(field.types == [VT.ARRAY, sub], "(a) %s: types %s" % (key, field.types))
            got = field.contents()
            if sub == VT.BOOL:
                val = [bool(x) for x in val]
            check(len(got) == len(val) and all(same_value(sub, a, b) for a, b in zip(got, val)),
                  "(a) %s: array values differ" % key)
    check(len(r.tensors) == len(tensors), "(a) tensor count")
    for rt, (name, qt, ne, data) in zip(r.tensors, tensors):
        check(rt.name == name, "(a) tensor name %s want %s" % (rt.name, name))
        check(rt.tensor_type == qt, "(a) %s type %s want %s" % (name, rt.tensor_type, qt))
        check([int(x) for x in rt.shape] == ne, "(a) %s shape %s want %s" % (name, list(rt.shape), ne))
        check(rt.data_offset % r.alignment == 0, "(a) %s data offset %d" % (name, rt.data_offset))
        check(rt.data.tobytes() == data, "(a) %s bytes differ" % name)
    del r


def main():
    made = []
    for alignment in (None, 64):
        p = os.path.join(TMP, "gguf-interop-%d-py-a%s.gguf" % (os.getpid(), alignment))
        made.append(p)
        test_gguf_py_to_kquant(p, alignment)
    src = KQFile(made[0])
    for version, alignment in ((3, None), (2, 128), (3, 1)):
        p = os.path.join(TMP, "gguf-interop-%d-kq-v%d-a%s.gguf" % (os.getpid(), version, alignment))
        made.append(p)
        test_kquant_to_gguf_py(p, version, alignment, src)
    src.close()
    for p in made:
        os.unlink(p)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
