"""Quantizing and dequantizing rows (kq_quantize, kq_dequantize)."""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np

from ._arrays import F32
from ._lib import check, lib
from ._types import TypeLike, row_size, type_id

__all__ = ["quantize", "dequantize"]


def quantize(array: Any, type: TypeLike) -> np.ndarray:
    """Converts floats of shape [..., cols] to `type` with kquant's reference
    quantizer (f32/f16/bf16 convert; quant types quantize). Returns uint8 of
    shape [..., row_size(type, cols)]: the rows as a GGUF file stores them.
    Input of another float dtype is converted to float32 first."""
    a = np.asarray(array)
    if a.dtype.kind != "f":
        raise TypeError("quantize: array must hold floats, got %s" % a.dtype)
    a = np.ascontiguousarray(a, dtype=F32)
    if a.ndim == 0:
        raise ValueError("quantize: array must have at least one dimension")
    t = type_id(type)
    cols = a.shape[-1]
    rows = a.size // cols if cols else 0
    rs = row_size(t, cols)
    out = np.empty(a.shape[:-1] + (rs,), np.uint8)
    if rows:
        check(lib.kq_quantize(t, a.ctypes.data, rows, cols, out.ctypes.data, out.nbytes),
              "kq_quantize")
    return out


def dequantize(data: Any, type: TypeLike, shape: Union[int, Sequence[int]]) -> np.ndarray:
    """Expands bytes of `type` to float32 of `shape` (numpy order, last
    dimension the row length; an int is one row), bit-exact with the GGUF
    definition. data: bytes, a buffer or a numpy array holding exactly the
    rows' bytes (a Tensor's .data, or what quantize returned)."""
    t = type_id(type)
    shp = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if not shp or any(d < 0 for d in shp):
        raise ValueError("dequantize: bad shape %r" % (shape,))
    cols = shp[-1]
    rows = int(np.prod(shp[:-1], dtype=np.int64)) if len(shp) > 1 else 1
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    raw = np.ascontiguousarray(raw)
    out = np.empty(shp, F32)
    if out.size:
        check(lib.kq_dequantize(t, raw.ctypes.data, raw.nbytes, rows, cols, out.ctypes.data),
              "kq_dequantize")
    return out
