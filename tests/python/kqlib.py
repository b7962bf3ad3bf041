"""ctypes access to the built libkquant for the Python oracle tests.

KQ_LIB names the shared library (ctest sets it). skip() exits with 77, which
ctest reports as skipped, after printing the reason."""
import ctypes
import os
import sys

SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def need_oracle():
    """Returns (numpy, gguf), or skips the test saying which is missing."""
    try:
        import numpy
    except ImportError:
        skip("python package numpy is not installed (pip install numpy)")
    try:
        import gguf
    except ImportError:
        skip("python package gguf is not installed (pip install gguf)")
    return numpy, gguf


def load():
    path = os.environ.get("KQ_LIB")
    if not path or not os.path.exists(path):
        print("KQ_LIB does not name the built libkquant (run through ctest)")
        sys.exit(1)
    lib = ctypes.CDLL(path)
    lib.kq_last_error.restype = ctypes.c_char_p
    lib.kq_version.restype = ctypes.c_char_p
    lib.kq_type_name.restype = ctypes.c_char_p
    lib.kq_type_block_elems.restype = ctypes.c_int64
    lib.kq_type_block_bytes.restype = ctypes.c_size_t
    lib.kq_row_size.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_size_t)]
    lib.kq_quantize.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                ctypes.c_void_p, ctypes.c_size_t]
    lib.kq_dequantize.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64,
                                  ctypes.c_int64, ctypes.c_void_p]
    lib.kq_fp16_to_f32.argtypes = [ctypes.c_uint16]
    lib.kq_fp16_to_f32.restype = ctypes.c_float
    lib.kq_f32_to_fp16.argtypes = [ctypes.c_float]
    lib.kq_f32_to_fp16.restype = ctypes.c_uint16
    return lib


def check(lib, status, what):
    if status != 0:
        raise AssertionError("%s failed (%d): %s" % (what, status, lib.kq_last_error().decode()))


def seed():
    """The test's seed: KQ_TEST_SEED or fresh; print it so a failure can be rerun."""
    s = os.environ.get("KQ_TEST_SEED")
    s = int(s, 0) if s else int.from_bytes(os.urandom(4), "little")
    print("seed KQ_TEST_SEED=%d" % s)
    return s


class Checks:
    """Counts checks; a failure prints its message with the seed to rerun.
    finish() prints 'NAME: N passed, N failed' and returns the exit status."""

    def __init__(self, name, seed_value=None):
        self.name, self.seed, self.passed, self.failed = name, seed_value, 0, 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            rerun = "" if self.seed is None else " (seed KQ_TEST_SEED=%d)" % self.seed
            print("FAIL%s: %s" % (rerun, what))
        return ok

    def finish(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        return 1 if self.failed else 0
