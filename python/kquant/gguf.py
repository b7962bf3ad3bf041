"""GGUF files: reading (kq_gguf_open) and writing (kq_gguf_writer)."""
from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from ctypes import byref, c_double, c_int, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ._lib import Handle, check, cstr, decode, kq_tensor_info, lib
from ._types import TypeLike, type_id, type_name, row_size

__all__ = ["GGUF", "Metadata", "Tensor", "write_gguf", "VType"]

PathLike = Union[str, bytes, "os.PathLike[str]"]


class VType:
    """Metadata value types, numbered as in the file (kq_gguf_vtype)."""
    U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)


_INT_VTYPES = {VType.U8, VType.I8, VType.U16, VType.I16, VType.U32, VType.I32, VType.I64}
_NP_OF_VTYPE = {VType.U8: np.uint8, VType.I8: np.int8, VType.U16: np.uint16,
                VType.I16: np.int16, VType.U32: np.uint32, VType.I32: np.int32,
                VType.U64: np.uint64, VType.I64: np.int64, VType.F32: np.float32,
                VType.F64: np.float64, VType.BOOL: np.uint8}
_VTYPE_OF_NP = {np.dtype(v): k for k, v in _NP_OF_VTYPE.items() if k != VType.BOOL}
_VTYPE_OF_NP[np.dtype(np.bool_)] = VType.BOOL

# Tensor data viewed with these numpy dtypes; the rest (bf16, quantized
# blocks) as uint8 rows of row_size bytes.
_NP_OF_TYPE = {0: np.float32, 1: np.float16, 24: np.int8, 25: np.int16, 26: np.int32,
               27: np.int64, 28: np.float64}


class Tensor:
    """One tensor of an open GGUF file: name, type, shape (numpy order,
    outermost first: ne reversed), ne (the file's order), nbytes, offset and
    `data`, a read-only numpy view of the bytes in the file mapping (typed
    for float and integer types; uint8 [..., row bytes] for quantized ones).
    The view keeps the mapping alive."""

    __slots__ = ("name", "type", "ne", "shape", "nbytes", "offset", "_address", "_owner")

    def __init__(self, info: kq_tensor_info, owner: Handle) -> None:
        self.name = decode(info.name)
        self.type = int(info.type)
        self.ne = tuple(int(info.ne[i]) for i in range(info.n_dims))
        self.shape = tuple(reversed(self.ne))
        self.nbytes = int(info.nbytes)
        self.offset = int(info.offset)
        self._address = int(info.data or 0)
        self._owner = owner

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    @property
    def data(self) -> np.ndarray:
        raw = _mapped_view(self._address, self.nbytes, self._owner)
        dt = _NP_OF_TYPE.get(self.type)
        if dt is not None:
            return raw.view(dt).reshape(self.shape)
        rs = row_size(self.type, self.ne[0]) if self.ne else 0
        if rs and self.nbytes % rs == 0:
            return raw.reshape(self.shape[:-1] + (rs,))
        return raw

    def dequantize(self) -> np.ndarray:
        """The tensor as float32, shape `shape` (kquant's dequantizer)."""
        from .quant import dequantize
        return dequantize(self.data, self.type, self.shape)

    def __repr__(self) -> str:
        return "kquant.Tensor(%r, %s, shape=%s)" % (self.name, self.type_name, list(self.shape))


def _mapped_view(address: int, nbytes: int, owner: Handle) -> np.ndarray:
    """A read-only uint8 array over mapped bytes that keeps `owner` (the file
    handle, so the mapping) alive as long as the array or any view of it."""
    if nbytes == 0:
        return np.zeros(0, np.uint8)
    carr = (ctypes.c_uint8 * nbytes).from_address(address)
    carr._kq_owner = owner  # type: ignore[attr-defined]
    # Through a read-only memoryview, numpy refuses to make it writable
    # (the pages are mapped read-only: a write would fault).
    return np.frombuffer(memoryview(carr).toreadonly(), dtype=np.uint8)


class Metadata(Mapping):
    """The file's key/value metadata, in file order, as a read-only dict-like
    view: values come back as int, float, bool, str or lists of them
    (numeric arrays as numpy arrays). vtype(key) gives a value's type."""

    def __init__(self, g: "GGUF") -> None:
        self._g = g
        n = lib.kq_gguf_n_kv(g._h)
        self._keys: Dict[str, int] = {}
        for i in range(n):
            self._keys[decode(lib.kq_gguf_kv_key(g._h, i))] = i

    def __getitem__(self, key: str) -> Any:
        i = self._keys[key]
        return _value(lib.kq_gguf_kv_value(self._g._h, i))

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def vtype(self, key: str) -> int:
        """The value's type (a VType number)."""
        return int(lib.kq_gguf_value_type(lib.kq_gguf_kv_value(self._g._h, self._keys[key])))

    def __repr__(self) -> str:
        return "kquant.Metadata(%d keys)" % len(self)


def _string(ptr: Optional[int], n: int) -> str:
    return ctypes.string_at(ptr, n).decode("utf-8", "surrogateescape") if n and ptr else ""


def _value(v: Any) -> Any:
    vt = lib.kq_gguf_value_type(v)
    if vt == VType.STRING:
        p, n = c_void_p(), c_size_t()
        check(lib.kq_gguf_value_string(v, byref(p), byref(n)), "kq_gguf_value_string")
        return _string(p.value, n.value)
    if vt == VType.BOOL:
        b = c_int()
        check(lib.kq_gguf_value_bool(v, byref(b)), "kq_gguf_value_bool")
        return bool(b.value)
    if vt in (VType.F32, VType.F64):
        f = c_double()
        check(lib.kq_gguf_value_float(v, byref(f)), "kq_gguf_value_float")
        return f.value
    if vt == VType.U64:
        u = c_uint64()
        check(lib.kq_gguf_value_uint(v, byref(u)), "kq_gguf_value_uint")
        return u.value
    if vt in _INT_VTYPES:
        i = c_int64()
        check(lib.kq_gguf_value_int(v, byref(i)), "kq_gguf_value_int")
        return i.value
    if vt == VType.ARRAY:
        return _array(v)
    raise ValueError("metadata value of unknown type %d" % vt)


def _array(v: Any) -> Any:
    et, n = c_int(), c_int64()
    check(lib.kq_gguf_value_array(v, byref(et), byref(n)), "kq_gguf_value_array")
    et_, count = et.value, n.value
    if et_ == VType.STRING:
        p, ln = c_void_p(), c_size_t()
        out = []
        for i in range(count):
            check(lib.kq_gguf_array_string(v, i, byref(p), byref(ln)), "kq_gguf_array_string")
            out.append(_string(p.value, ln.value))
        return out
    if et_ == VType.ARRAY:
        item = c_void_p()
        res = []
        for i in range(count):
            check(lib.kq_gguf_array_item(v, i, byref(item)), "kq_gguf_array_item")
            res.append(_array(item.value))
        return res
    if et_ == VType.BOOL:
        b = c_int()
        vals = []
        for i in range(count):
            check(lib.kq_gguf_array_bool(v, i, byref(b)), "kq_gguf_array_bool")
            vals.append(bool(b.value))
        return vals
    dt = _NP_OF_VTYPE.get(et_)
    if dt is None:
        raise ValueError("metadata array of unknown element type %d" % et_)
    arr = np.empty(count, dt)
    if et_ in (VType.F32, VType.F64):
        f = c_double()
        for i in range(count):
            check(lib.kq_gguf_array_float(v, i, byref(f)), "kq_gguf_array_float")
            arr[i] = f.value
    elif et_ == VType.U64:
        u = c_uint64()
        for i in range(count):
            check(lib.kq_gguf_array_uint(v, i, byref(u)), "kq_gguf_array_uint")
            arr[i] = u.value
    else:
        s = c_int64()
        for i in range(count):
            check(lib.kq_gguf_array_int(v, i, byref(s)), "kq_gguf_array_int")
            arr[i] = s.value
    return arr


class GGUF:
    """An open GGUF file (v2/v3), mapped read-only and validated.

    ``metadata`` is a dict-like view of its keys; ``tensors`` maps names to
    Tensor objects in file order. Layers loaded from it and the numpy views
    of its tensors keep the mapping alive: close() (or the end of a ``with``
    block) drops only this object's hold.
    """

    def __init__(self, path: PathLike) -> None:
        out = c_void_p()
        check(lib.kq_gguf_open(cstr(os.fspath(path), "path"), byref(out)), "kq_gguf_open")
        self._handle: Optional[Handle] = Handle(out.value, lib.kq_gguf_close)
        self.path = os.fspath(path)
        self.version = int(lib.kq_gguf_version(out))
        self.alignment = int(lib.kq_gguf_alignment(out))
        self.data_offset = int(lib.kq_gguf_data_offset(out))
        self.file_size = int(lib.kq_gguf_file_size(out))
        self.metadata = Metadata(self)
        info = kq_tensor_info()
        tensors: Dict[str, Tensor] = {}
        for i in range(lib.kq_gguf_n_tensors(out)):
            check(lib.kq_gguf_tensor(out, i, byref(info)), "kq_gguf_tensor")
            t = Tensor(info, self._handle)
            tensors[t.name] = t
        self.tensors: Dict[str, Tensor] = tensors

    @property
    def _h(self) -> c_void_p:
        if self._handle is None:
            raise ValueError("GGUF %r is closed" % self.path)
        return self._handle.ptr

    def close(self) -> None:
        """Drops this object's hold on the file; layers and data views made
        from it keep the mapping alive."""
        self._handle = None

    def __enter__(self) -> "GGUF":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "kquant.GGUF(%r)  # v%d, %d keys, %d tensors" % (
            self.path, self.version, len(self.metadata), len(self.tensors))


# ---------------------------------------------------------------- writing

TensorSpec = Union[np.ndarray, Tensor, Tuple[TypeLike, Any, Tuple[int, ...]]]


def write_gguf(path: PathLike, tensors: "Mapping[str, TensorSpec]",
               metadata: Optional["Mapping[str, Any]"] = None, version: int = 3) -> None:
    """Writes a GGUF file.

    tensors maps names, in order, to: a float32/float16 numpy array (written
    as f32/f16, its shape in numpy order), a Tensor of an open file, or a
    tuple (type, data, shape) with `data` the type's bytes (e.g. from
    kquant.quantize) and shape in numpy order ([rows, cols], [experts, rows,
    cols]). metadata maps keys to values: str, bool, int (u32 when it fits,
    else i64 or u64), float (f32), numpy scalars (their own type), lists of
    str, numpy arrays (their element type), lists of numbers (as a numpy
    array would hold them) or an explicit (VType, value) pair.
    """
    w = c_void_p()
    check(lib.kq_gguf_writer_new(int(version), byref(w)), "kq_gguf_writer_new")
    try:
        for key, value in (metadata or {}).items():
            _set_kv(w, cstr(key, "metadata key"), value)
        for name, spec in tensors.items():
            _add_tensor(w, cstr(name, "tensor name"), spec)
        check(lib.kq_gguf_writer_save(w, cstr(os.fspath(path), "path")), "kq_gguf_writer_save")
    finally:
        lib.kq_gguf_writer_free(w)


def _set_kv(w: c_void_p, key: bytes, value: Any) -> None:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int) \
            and not isinstance(value[0], bool):
        vt, v = value
        if vt == VType.STRING:
            return _set_kv(w, key, str(v))
        if vt == VType.ARRAY:
            return _set_kv(w, key, list(v))
        dt = _NP_OF_VTYPE.get(vt)
        if dt is None:
            raise ValueError("metadata %r: unknown value type %d" % (key, vt))
        return _set_scalar(w, key, vt, np.asarray(v, dtype=dt))
    if isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
        check(lib.kq_gguf_writer_set_string(w, key, b, len(b)), "kq_gguf_writer_set_string")
    elif isinstance(value, (bool, np.bool_)):
        _set_scalar(w, key, VType.BOOL, np.asarray(bool(value), dtype=np.uint8))
    elif isinstance(value, np.generic):
        vt = _VTYPE_OF_NP.get(value.dtype)
        if vt is None:
            raise TypeError("metadata %r: numpy %s has no GGUF type" % (key, value.dtype))
        _set_scalar(w, key, vt, np.asarray(value))
    elif isinstance(value, int):
        vt, dt = _int_vtype([value])
        _set_scalar(w, key, vt, np.asarray(value, dtype=dt))
    elif isinstance(value, float):
        _set_scalar(w, key, VType.F32, np.asarray(value, dtype=np.float32))
    elif isinstance(value, (list, tuple, np.ndarray)):
        _set_array(w, key, value)
    else:
        raise TypeError("metadata %r: cannot write a %s" % (key, type(value).__name__))


def _int_vtype(vals: List[int]) -> Tuple[int, Any]:
    lo, hi = min(vals), max(vals)
    if lo >= 0 and hi < 2 ** 32:
        return VType.U32, np.uint32
    if lo >= -2 ** 63 and hi < 2 ** 63:
        return VType.I64, np.int64
    if lo >= 0 and hi < 2 ** 64:
        return VType.U64, np.uint64
    raise OverflowError("integer out of the range of 64-bit metadata")


def _set_scalar(w: c_void_p, key: bytes, vt: int, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    check(lib.kq_gguf_writer_set(w, key, vt, arr.ctypes.data), "kq_gguf_writer_set")


def _set_array(w: c_void_p, key: bytes, value: Any) -> None:
    if isinstance(value, np.ndarray):
        arr = value.reshape(-1)
    elif all(isinstance(v, str) for v in value) and len(value) > 0:
        enc = [v.encode("utf-8", "surrogateescape") for v in value]
        strs = (ctypes.c_char_p * len(enc))(*enc)
        lens = (c_size_t * len(enc))(*[len(b) for b in enc])
        check(lib.kq_gguf_writer_set_string_array(w, key, strs, lens, len(enc)),
              "kq_gguf_writer_set_string_array")
        return
    elif all(isinstance(v, (bool, np.bool_)) for v in value) and len(value) > 0:
        arr = np.asarray(value, dtype=np.bool_)
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        arr = np.asarray(value, dtype=_int_vtype(list(value) or [0])[1])
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        arr = np.asarray(value, dtype=np.float32)
    else:
        raise TypeError("metadata %r: arrays hold str, bool, int or float elements of one kind"
                        % key)
    vt = _VTYPE_OF_NP.get(arr.dtype)
    if vt is None:
        raise TypeError("metadata %r: numpy %s has no GGUF type" % (key, arr.dtype))
    if vt == VType.BOOL:
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    check(lib.kq_gguf_writer_set_array(w, key, vt, arr.ctypes.data, arr.size),
          "kq_gguf_writer_set_array")


def _add_tensor(w: c_void_p, name: bytes, spec: Any) -> None:
    if isinstance(spec, Tensor):
        t, data, shape = spec.type, spec.data, spec.shape
    elif isinstance(spec, np.ndarray):
        if spec.dtype == np.float32:
            t = 0
        elif spec.dtype == np.float16:
            t = 1
        else:
            raise TypeError("tensor %r: arrays are written as f32 or f16; give (type, bytes, "
                            "shape) for %s" % (name.decode(), spec.dtype))
        data, shape = spec, spec.shape
    elif isinstance(spec, tuple) and len(spec) == 3:
        t, data, shape = type_id(spec[0]), spec[1], tuple(spec[2])
    else:
        raise TypeError("tensor %r: give an array, a Tensor or (type, bytes, shape)"
                        % name.decode())
    if not 1 <= len(shape) <= 4:
        raise ValueError("tensor %r: 1 to 4 dimensions, got %d" % (name.decode(), len(shape)))
    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    arr = np.ascontiguousarray(arr)
    ne = (c_int64 * len(shape))(*[int(d) for d in reversed(shape)])
    check(lib.kq_gguf_writer_add_tensor(w, name, int(t), len(shape), ne, arr.ctypes.data,
                                        arr.nbytes), "kq_gguf_writer_add_tensor")
