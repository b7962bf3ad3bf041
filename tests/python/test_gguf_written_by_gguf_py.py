"""Files written by another tool (the gguf package's GGUFWriter) go through
kquant end to end: `kq info` lists them, and linears and experts loaded
from them (in place) match numpy products with gguf's own dequantizers."""
import ctypes
import os
import subprocess
import sys

import kqlib

np, gguf = kqlib.need_oracle()
from gguf.constants import GGMLQuantizationType as QT  # noqa: E402

lib = kqlib.load()
SEED = kqlib.seed()
rng = np.random.default_rng(SEED)
tmp = os.environ.get("KQ_TEST_TMP", "/tmp")
path = os.path.join(tmp, "gguf_py_%d.gguf" % os.getpid())

TYPES = {  # kquant type id -> gguf enum
    0: QT.F32, 1: QT.F16, 30: QT.BF16, 2: QT.Q4_0, 8: QT.Q8_0, 12: QT.Q4_K, 13: QT.Q5_K, 14: QT.Q6_K,
}


def quantize_ours(type_id, w):
    """k-quants: gguf has no quantizer for them, so kquant's (checked elsewhere
    against the reference algorithm) makes the bytes; gguf then decodes them."""
    rows, cols = w.shape
    size = ctypes.c_size_t()
    kqlib.check(lib, lib.kq_row_size(type_id, cols, ctypes.byref(size)), "row size")
    out = np.zeros(rows * size.value, dtype=np.uint8)
    w = np.ascontiguousarray(w, dtype=np.float32)
    kqlib.check(lib, lib.kq_quantize(type_id, w.ctypes.data, rows, cols, out.ctypes.data, out.nbytes),
                "quantize")
    return out.reshape(rows, size.value)


def make_weight(type_id, rows, cols, stack=1):
    w = (rng.standard_normal((stack * rows, cols)) * 0.05).astype(np.float32)
    qt = TYPES[type_id]
    if qt in (QT.F32,):
        data = w
    elif qt in (QT.F16, QT.BF16, QT.Q4_0, QT.Q8_0):
        data = gguf.quants.quantize(w, qt)
    else:
        data = quantize_ours(type_id, w)
    deq = gguf.quants.dequantize(data, qt).reshape(stack * rows, cols).astype(np.float64)
    if stack > 1:
        data = data.reshape((stack, rows) + data.shape[1:])
    return data, deq


writer = gguf.GGUFWriter(path, "llama")
writer.add_name("written by gguf-py")
writer.add_uint32("llama.block_count", 1)
writer.add_float32("llama.rope.freq_base", 500000.0)
writer.add_bool("test.flag", True)
writer.add_array("test.ints", [1, -2, 3])
writer.add_array("test.strings", ["alpha", "beta"])
weights = {}
for i, (type_id, rows, cols) in enumerate([(12, 37, 512), (14, 29, 768), (13, 11, 256),
                                           (8, 23, 320), (2, 9, 96), (30, 7, 64), (1, 5, 64),
                                           (0, 3, 32)]):
    name = "blk.0.w%d_%s.weight" % (i, lib.kq_type_name(type_id).decode())
    data, deq = make_weight(type_id, rows, cols)
    writer.add_tensor(name, data, raw_dtype=None if TYPES[type_id] in (QT.F32,) else TYPES[type_id])
    weights[name] = (type_id, rows, cols, deq)
exp_data, exp_deq = make_weight(12, 19, 256, stack=4)
writer.add_tensor("blk.0.ffn_up_exps.weight", exp_data, raw_dtype=QT.Q4_K)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

checks = kqlib.Checks("test_gguf_written_by_gguf_py", SEED)
expect = checks.check


# kq info lists the file.
out = subprocess.run([os.environ["KQ_BIN"], "info", path], capture_output=True, text=True)
expect(out.returncode == 0, "kq info exit %d: %s" % (out.returncode, out.stderr))
expect('general.name' in out.stdout and '"written by gguf-py"' in out.stdout, "name shown")
expect("[i32 x 3] 1, -2, 3" in out.stdout or "[i64 x 3] 1, -2, 3" in out.stdout, "int array shown")
expect('[string x 2] "alpha", "beta"' in out.stdout, "string array shown")
for name, (type_id, rows, cols, _) in weights.items():
    line = [l for l in out.stdout.splitlines() if l.strip().startswith(name + " ")]
    expect(len(line) == 1 and lib.kq_type_name(type_id).decode() in line[0]
           and ("%d x %d" % (cols, rows)) in line[0], "tensor row for " + name)
expect("blk.0.ffn_up_exps.weight" in out.stdout and "256 x 19 x 4" in out.stdout, "experts row")

# Linears and experts from the file against numpy.
P = ctypes.c_void_p
lib.kq_backend_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(P)]
lib.kq_gguf_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(P)]
lib.kq_linear_from_gguf.argtypes = [P, P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.kq_linear_forward.argtypes = [P, P, P, P, ctypes.c_int64]
lib.kq_linear_is_zero_copy.argtypes = [P]
lib.kq_linear_free.argtypes = [P]
lib.kq_experts_from_gguf.argtypes = [P, P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.kq_experts_forward.argtypes = [P, P, P, ctypes.c_int64, ctypes.c_int64, P, ctypes.c_int64,
                                   ctypes.c_int64, P]
lib.kq_experts_free.argtypes = [P]
lib.kq_gguf_close.argtypes = [P]
lib.kq_backend_close.argtypes = [P]

b, g = P(), P()
kqlib.check(lib, lib.kq_backend_open(b"cpu-ref", ctypes.byref(b)), "backend")
kqlib.check(lib, lib.kq_gguf_open(path.encode(), ctypes.byref(g)), "gguf open")


def close_enough(y, ref, xs, w):
    # Reference backend: exact weights, double sums, one float rounding, so
    # float rounding of the result plus double-sum noise bounds the error.
    tol = 2.0 ** -23 * np.abs(ref) + 2.0 ** -36 * (np.abs(xs) @ np.abs(w).T) + 1e-30
    return np.all(np.abs(y - ref) <= tol)


for name, (type_id, rows, cols, deq) in weights.items():
    lin = P()
    kqlib.check(lib, lib.kq_linear_from_gguf(b, g, name.encode(), ctypes.byref(lin)), name)
    expect(lib.kq_linear_is_zero_copy(lin) == 1, name + " used in place")
    m = int(rng.integers(1, 9))
    x = rng.standard_normal((m, cols)).astype(np.float32)
    y = np.full((m, rows), np.nan, dtype=np.float32)
    kqlib.check(lib, lib.kq_linear_forward(b, lin, x.ctypes.data, y.ctypes.data, m), name)
    ref = x.astype(np.float64) @ deq.T
    expect(close_enough(y.astype(np.float64), ref, x.astype(np.float64), deq),
           "%s: max err %g" % (name, np.nanmax(np.abs(y - ref))))
    lib.kq_linear_free(lin)

ex = P()
kqlib.check(lib, lib.kq_experts_from_gguf(b, g, b"blk.0.ffn_up_exps.weight", ctypes.byref(ex)), "experts")
m, top_k, K, N = 5, 2, 256, 19
x = rng.standard_normal((m, K)).astype(np.float32)
ids = rng.integers(0, 4, size=(m, top_k)).astype(np.int32)
y = np.full((m * top_k, N), np.nan, dtype=np.float32)
kqlib.check(lib, lib.kq_experts_forward(b, ex, x.ctypes.data, K, 0, ids.ctypes.data, m, top_k,
                                        y.ctypes.data), "experts forward")
for i in range(m):
    for s in range(top_k):
        w = exp_deq[ids[i, s] * N:(ids[i, s] + 1) * N]
        ref = w @ x[i].astype(np.float64)
        expect(close_enough(y[i * top_k + s].astype(np.float64), ref, x[i:i + 1].astype(np.float64), w),
               "experts pair (%d, %d)" % (i, s))
lib.kq_experts_free(ex)
lib.kq_gguf_close(g)
lib.kq_backend_close(b)
os.unlink(path)
sys.exit(checks.finish())
