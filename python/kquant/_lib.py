"""Loading libkquant and declaring its functions for ctypes.

Every function used is declared here once, with argtypes and restype, so a
call converts its arguments without guessing (and a wrong pointer type is a
TypeError rather than a crash). ctypes releases the GIL around every call
into a CDLL, so forwards from several Python threads run at once.
"""
from __future__ import annotations

import ctypes
import os
import weakref
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t
from ctypes import c_uint32, c_uint64, c_void_p
from typing import Any, Optional

__all__ = ["lib", "lib_path", "KQError", "Handle", "check", "has"]

LIB_ENV = "KQ_LIB"
LIB_NAME = "libkquant.so"


class KQError(RuntimeError):
    """A kquant C call failed.

    Attributes: ``status`` (the kq_status number), ``status_name`` (e.g.
    ``"KQ_ERR_FORMAT"``), ``message`` (kq_last_error(): what failed and where)
    and ``call`` (the C function's name).
    """

    def __init__(self, status: int, status_name: str, message: str, call: str) -> None:
        self.status = status
        self.status_name = status_name
        self.message = message
        self.call = call
        # The library's messages mostly start with the function's name already.
        text = message if message.startswith(call) else "%s: %s" % (call, message or "failed")
        super().__init__("%s (%s)" % (text, status_name))


class kq_tensor_info(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("type", c_int), ("n_dims", c_int), ("ne", c_int64 * 4),
                ("offset", c_uint64), ("nbytes", c_uint64), ("data", c_void_p)]


class kq_part(ctypes.Structure):
    _fields_ = [("type", c_int), ("bytes", c_void_p), ("nbytes", c_size_t), ("n_rows", c_int64)]


def _find() -> str:
    """KQ_LIB when set (the tests point it at a build tree), else the copy
    that `pip install .` put beside this file."""
    path = os.environ.get(LIB_ENV)
    if path:
        if not os.path.exists(path):
            raise ImportError("%s=%s: no such file" % (LIB_ENV, path))
        return path
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIB_NAME)
    if os.path.exists(here):
        return here
    raise ImportError("kquant: %s not found beside the package (%s); install the package with "
                      "`pip install .` from the repository root, or set %s to a built "
                      "libkquant.so" % (LIB_NAME, here, LIB_ENV))


lib_path = _find()
lib = ctypes.CDLL(lib_path)

P = c_void_p
_st = c_int  # kq_status
_SIGNATURES = {
    # name: (restype, argtypes)
    "kq_version": (c_char_p, []),
    "kq_status_name": (c_char_p, [c_int]),
    "kq_last_error": (c_char_p, []),
    "kq_type_name": (c_char_p, [c_int]),
    "kq_type_from_name": (_st, [c_char_p, POINTER(c_int)]),
    "kq_type_block_elems": (c_int64, [c_int]),
    "kq_type_block_bytes": (c_size_t, [c_int]),
    "kq_type_is_supported": (c_int, [c_int]),
    "kq_row_size": (_st, [c_int, c_int64, POINTER(c_size_t)]),
    "kq_quantize": (_st, [c_int, P, c_int64, c_int64, P, c_size_t]),
    "kq_dequantize": (_st, [c_int, P, c_size_t, c_int64, c_int64, P]),
    "kq_backend_open": (_st, [c_char_p, POINTER(P)]),
    "kq_backend_close": (None, [P]),
    "kq_backend_name": (c_char_p, [P]),
    "kq_backend_device": (c_char_p, [P]),
    "kq_backend_sync": (_st, [P]),
    "kq_backend_set_stream": (_st, [P, P]),
    "kq_backend_stream": (P, [P]),
    "kq_gguf_vtype_name": (c_char_p, [c_int]),
    "kq_gguf_open": (_st, [c_char_p, POINTER(P)]),
    "kq_gguf_close": (None, [P]),
    "kq_gguf_version": (c_uint32, [P]),
    "kq_gguf_file_size": (c_uint64, [P]),
    "kq_gguf_alignment": (c_uint64, [P]),
    "kq_gguf_data_offset": (c_uint64, [P]),
    "kq_gguf_n_kv": (c_int64, [P]),
    "kq_gguf_kv_key": (c_char_p, [P, c_int64]),
    "kq_gguf_kv_value": (P, [P, c_int64]),
    "kq_gguf_find_kv": (_st, [P, c_char_p, POINTER(P)]),
    "kq_gguf_value_type": (c_int, [P]),
    "kq_gguf_value_array": (_st, [P, POINTER(c_int), POINTER(c_int64)]),
    "kq_gguf_value_int": (_st, [P, POINTER(c_int64)]),
    "kq_gguf_value_uint": (_st, [P, POINTER(c_uint64)]),
    "kq_gguf_value_float": (_st, [P, POINTER(c_double)]),
    "kq_gguf_value_bool": (_st, [P, POINTER(c_int)]),
    "kq_gguf_value_string": (_st, [P, POINTER(P), POINTER(c_size_t)]),
    "kq_gguf_array_int": (_st, [P, c_int64, POINTER(c_int64)]),
    "kq_gguf_array_uint": (_st, [P, c_int64, POINTER(c_uint64)]),
    "kq_gguf_array_float": (_st, [P, c_int64, POINTER(c_double)]),
    "kq_gguf_array_bool": (_st, [P, c_int64, POINTER(c_int)]),
    "kq_gguf_array_string": (_st, [P, c_int64, POINTER(P), POINTER(c_size_t)]),
    "kq_gguf_array_item": (_st, [P, c_int64, POINTER(P)]),
    "kq_gguf_n_tensors": (c_int64, [P]),
    "kq_gguf_tensor": (_st, [P, c_int64, POINTER(kq_tensor_info)]),
    "kq_gguf_find_tensor": (_st, [P, c_char_p, POINTER(kq_tensor_info)]),
    "kq_gguf_writer_new": (_st, [c_uint32, POINTER(P)]),
    "kq_gguf_writer_free": (None, [P]),
    "kq_gguf_writer_set": (_st, [P, c_char_p, c_int, P]),
    "kq_gguf_writer_set_string": (_st, [P, c_char_p, c_char_p, c_size_t]),
    "kq_gguf_writer_set_array": (_st, [P, c_char_p, c_int, P, c_int64]),
    "kq_gguf_writer_set_string_array": (_st, [P, c_char_p, POINTER(c_char_p),
                                              POINTER(c_size_t), c_int64]),
    "kq_gguf_writer_set_value": (_st, [P, c_char_p, P]),
    "kq_gguf_writer_add_tensor": (_st, [P, c_char_p, c_int, c_int, POINTER(c_int64), P,
                                        c_size_t]),
    "kq_gguf_writer_save": (_st, [P, c_char_p]),
    "kq_linear_load": (_st, [P, c_int, P, c_size_t, c_int64, c_int64, POINTER(P)]),
    "kq_linear_load_fused": (_st, [P, POINTER(kq_part), c_int, c_int64, POINTER(P)]),
    "kq_linear_from_gguf": (_st, [P, P, c_char_p, POINTER(P)]),
    "kq_linear_from_gguf_fused": (_st, [P, P, POINTER(c_char_p), c_int, POINTER(P)]),
    "kq_linear_free": (None, [P]),
    "kq_linear_rows": (c_int64, [P]),
    "kq_linear_cols": (c_int64, [P]),
    "kq_linear_n_parts": (c_int, [P]),
    "kq_linear_is_zero_copy": (c_int, [P]),
    "kq_linear_forward": (_st, [P, P, P, P, c_int64]),
    "kq_linear_forward_swiglu": (_st, [P, P, P, P, c_int64]),
    "kq_linear_forward_glu": (_st, [P, P, P, P, c_int64, c_int]),
    "kq_experts_load": (_st, [P, c_int, P, c_size_t, c_int64, c_int64, c_int64, POINTER(P)]),
    "kq_experts_from_gguf": (_st, [P, P, c_char_p, POINTER(P)]),
    "kq_experts_free": (None, [P]),
    "kq_experts_count": (c_int64, [P]),
    "kq_experts_rows": (c_int64, [P]),
    "kq_experts_cols": (c_int64, [P]),
    "kq_experts_is_zero_copy": (c_int, [P]),
    "kq_experts_forward": (_st, [P, P, P, c_int64, c_int64, P, c_int64, c_int64, P]),
    "kq_experts_forward_swiglu": (_st, [P, P, P, P, c_int64, c_int64, P, c_int64, c_int64, P]),
    # Introspection (src/core/introspect.c): where a layer's weight bytes lie.
    "kq_linear_part": (_st, [P, c_int, POINTER(kq_part)]),
    "kq_experts_weights": (_st, [P, POINTER(kq_part)]),
}

_missing = []
for _name, (_res, _args) in _SIGNATURES.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        _missing.append(_name)
        continue
    _f.restype = _res
    _f.argtypes = _args

# The introspection getters are optional (an older libkquant lacks them);
# everything else is the library's core and must be there.
_OPTIONAL = {"kq_linear_part", "kq_experts_weights"}
_required_missing = [n for n in _missing if n not in _OPTIONAL]
if _required_missing:
    raise ImportError("kquant: %s lacks %s" % (lib_path, ", ".join(_required_missing)))


def has(name: str) -> bool:
    """Whether the loaded library exports `name` (optional parts of the API)."""
    return hasattr(lib, name) and name not in _missing


_status_name = lib.kq_status_name
_last_error = lib.kq_last_error


def error(status: int, call: str) -> KQError:
    """The exception for a failed call; read on the calling thread, whose
    kq_last_error() still holds the message."""
    msg = _last_error()
    name = _status_name(status)
    return KQError(status, name.decode() if name else "KQ_ERR_%d" % status,
                   msg.decode("utf-8", "replace") if msg else "", call)


def check(status: int, call: str) -> None:
    """Raises KQError when a C call returned a failing status."""
    if status:
        raise error(status, call)


def cstr(s: Any, what: str) -> bytes:
    """A str or bytes argument as NUL-free bytes for a char * parameter."""
    if isinstance(s, str):
        b = s.encode("utf-8")
    elif isinstance(s, (bytes, bytearray)):
        b = bytes(s)
    elif isinstance(s, os.PathLike):
        b = os.fsencode(s)
    else:
        raise TypeError("%s must be str, got %s" % (what, type(s).__name__))
    if b"\0" in b:
        raise ValueError("%s contains a NUL character" % what)
    return b


def decode(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


class Handle:
    """Owns one C object and frees it when the last Python holder goes.

    Wrappers (and the numpy views of a file's mapping) hold the handle, so an
    explicit close() only drops the wrapper's own reference and what was made
    from it stays valid. weakref.finalize frees it at the latest at interpreter
    exit, newest first, without needing module globals then. `keep` holds
    other handles until this one is freed (a layer keeps its backend's), so
    the C objects also go in a safe order.
    """

    __slots__ = ("ptr", "_finalizer", "__weakref__")

    def __init__(self, ptr: Optional[int], free: Any, *keep: Any) -> None:
        self.ptr = ctypes.c_void_p(ptr)
        self._finalizer = weakref.finalize(self, _free_handle, free, ptr, keep)


def _free_handle(free: Any, ptr: Optional[int], keep: tuple) -> None:
    free(ptr)
