"""Activations, outputs and ids: numpy arrays, torch tensors (CPU and CUDA)
and other CUDA arrays (__cuda_array_interface__), checked before any C call
and passed to the library in place.

torch is never imported here: a tensor can only exist if its caller
imported torch, so it is looked up in sys.modules.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

F32 = np.dtype(np.float32)
I32 = np.dtype(np.int32)
# A zero-length ctypes array type: from_buffer() on an array gives an object
# that a c_void_p parameter takes as the array's address, several times
# faster than ndarray.ctypes.data. It needs a writable buffer; read-only
# arrays take the slower way.
_A0 = ctypes.c_char * 0


def np_ptr(a: np.ndarray) -> Any:
    """The address of a C-contiguous array, as a c_void_p argument accepts it."""
    try:
        return _A0.from_buffer(a)  # type: ignore[arg-type]
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


def _torch() -> Any:
    return sys.modules.get("torch")


def is_torch(x: Any) -> bool:
    t = _torch()
    return t is not None and isinstance(x, t.Tensor)


def _shape_str(shape: Tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class Call:
    """One forward's operands, adapted: x_ptr, the output's pointer, and what
    to return. Built by `prepare`, finished by `result` after the C call."""

    __slots__ = ("x_ptr", "y_ptr", "m", "_ret", "_post", "keep", "stream")
    x_ptr: Any
    y_ptr: Any
    m: int
    _ret: Any

    def __init__(self) -> None:
        self.keep: List[Any] = []
        self._post: Optional[Callable[[], None]] = None
        self.stream: Optional[int] = None

    def result(self) -> Any:
        if self._post is not None:
            self._post()
        return self._ret


def prepare(backend: Any, x: Any, k: int, n: int, out: Any, what: str,
            lead_of: Optional[Callable[[Tuple[int, ...]], Tuple[int, ...]]] = None,
            rows_of: Optional[Callable[[Tuple[int, ...]], int]] = None) -> Call:
    """Checks x ([..., k] float) and out (lead + [n]) for `backend` and
    returns the pointers. lead_of maps x's shape to the output's leading dims
    (default: x's own); rows_of to the m of the C call (default: their product)."""
    c = Call()
    if isinstance(x, np.ndarray):
        _check_host(backend, what, "a numpy array")
        if x.dtype != F32:
            raise TypeError("%s: x must be float32, got %s (convert with x.astype(np.float32))"
                            % (what, x.dtype))
        if not x.flags.c_contiguous:
            raise ValueError("%s: x must be C-contiguous (np.ascontiguousarray(x))" % what)
        shape = x.shape
        _check_k(shape, k, what)
        lead = lead_of(shape) if lead_of else shape[:-1]
        c.m = rows_of(shape) if rows_of else _prod(lead)
        c.x_ptr = np_ptr(x)
        c.keep.append(x)
        if out is None:
            y = np.empty(lead + (n,), F32)
        else:
            y = _check_np_out(out, lead + (n,), what)
        c.y_ptr = np_ptr(y)
        c._ret = y
        return c
    if is_torch(x):
        return _prepare_torch(c, backend, x, k, n, out, what, lead_of, rows_of)
    if hasattr(x, "__cuda_array_interface__"):
        return _prepare_cai(c, backend, x, k, n, out, what, lead_of, rows_of)
    raise TypeError("%s: x must be a numpy array, a torch tensor or a CUDA array "
                    "(__cuda_array_interface__), got %s" % (what, type(x).__name__))


def _prod(shape: Tuple[int, ...]) -> int:
    m = 1
    for d in shape:
        m *= int(d)
    return m


def _check_k(shape: Tuple[int, ...], k: int, what: str) -> None:
    if len(shape) == 0 or shape[-1] != k:
        raise ValueError("%s: x has shape %s; its last dimension must be the layer's %d "
                         "input features" % (what, _shape_str(shape), k))


def _check_host(backend: Any, what: str, kind: str) -> None:
    if backend.is_cuda:
        raise ValueError("%s: the cuda backend takes CUDA tensors or arrays; got %s in host "
                         "memory (move it to the GPU first, e.g. torch.from_numpy(x).cuda())"
                         % (what, kind))


def _check_np_out(out: Any, shape: Tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError("%s: out must be a numpy array like x, got %s" % (what, type(out).__name__))
    if out.dtype != F32 or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("%s: out must be a writable C-contiguous float32 array" % what)
    if out.shape != shape:
        raise ValueError("%s: out has shape %s, want %s" % (what, _shape_str(out.shape),
                                                            _shape_str(shape)))
    return out


def _torch_device_check(backend: Any, t: Any, what: str, name: str) -> None:
    dev = t.device
    if backend.is_cuda:
        if dev.type != "cuda":
            raise ValueError("%s: the cuda backend takes CUDA tensors; %s is on %s"
                             % (what, name, dev))
        idx = dev.index if dev.index is not None else 0
        if idx != backend.device_index:
            raise ValueError("%s: %s is on %s but the backend runs on cuda:%d"
                             % (what, name, dev, backend.device_index))
    elif dev.type != "cpu":
        raise ValueError("%s: backend %r takes host memory; %s is on %s"
                         % (what, backend.spec, name, dev))


def _prepare_torch(c: Call, backend: Any, x: Any, k: int, n: int, out: Any, what: str,
                   lead_of: Any, rows_of: Any) -> Call:
    """Torch tensors: float32 used in place; float16/bfloat16 converted to a
    float32 copy on x's device (the library computes in float32) and the
    output converted back, so y has x's dtype (or out's)."""
    torch = _torch()
    _torch_device_check(backend, x, what, "x")
    in_dtype = x.dtype
    if in_dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError("%s: x must be float32, float16 or bfloat16, got %s" % (what, in_dtype))
    if not x.is_contiguous():
        raise ValueError("%s: x must be contiguous (x.contiguous())" % what)
    shape = tuple(x.shape)
    _check_k(shape, k, what)
    lead = lead_of(shape) if lead_of else shape[:-1]
    c.m = rows_of(shape) if rows_of else _prod(lead)
    want = lead + (n,)
    if out is not None:
        if not is_torch(out):
            raise TypeError("%s: out must be a torch tensor like x, got %s"
                            % (what, type(out).__name__))
        _torch_device_check(backend, out, what, "out")
        if tuple(out.shape) != want:
            raise ValueError("%s: out has shape %s, want %s"
                             % (what, _shape_str(tuple(out.shape)), _shape_str(want)))
        if not out.is_contiguous():
            raise ValueError("%s: out must be contiguous" % what)
        if out.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError("%s: out must be float32, float16 or bfloat16, got %s"
                            % (what, out.dtype))
    if x.device.type == "cuda":
        c.stream = torch.cuda.current_stream(x.device).cuda_stream
    x = x.detach()
    if in_dtype != torch.float32:
        # Queued on x's device and current stream, like the C call after it,
        # so the call reads the finished copy with no host round trip.
        x = x.float()
    c.keep.append(x)
    c.x_ptr = x.data_ptr()
    if out is not None and out.dtype == torch.float32:
        y = out
    else:
        y = torch.empty(want, dtype=torch.float32, device=x.device)
    c.keep.append(y)
    c.y_ptr = y.data_ptr()
    if out is None:
        if in_dtype == torch.float32:
            c._ret = y
        else:
            c._ret = None
            c._post = lambda: setattr(c, "_ret", y.to(in_dtype))
    else:
        c._ret = out
        if y is not out:
            c._post = lambda: out.copy_(y)
    return c


def _prepare_cai(c: Call, backend: Any, x: Any, k: int, n: int, out: Any, what: str,
                 lead_of: Any, rows_of: Any) -> Call:
    """Other CUDA arrays (CuPy, Numba...) through __cuda_array_interface__:
    float32, C-contiguous. The output is a CuPy array for CuPy input; other
    kinds must pass out= (an array of the same kind)."""
    if not backend.is_cuda:
        raise ValueError("%s: backend %r takes host memory; x is a CUDA array" % (what, backend.spec))
    shape, ptr, stream = _cai(x, "x", what)
    _check_k(shape, k, what)
    lead = lead_of(shape) if lead_of else shape[:-1]
    c.m = rows_of(shape) if rows_of else _prod(lead)
    want = lead + (n,)
    c.x_ptr = ptr
    c.stream = stream
    c.keep.append(x)
    if out is None:
        cupy = sys.modules.get("cupy")
        if cupy is None or not isinstance(x, cupy.ndarray):
            raise TypeError("%s: pass out= (a float32 CUDA array of shape %s) for %s input"
                            % (what, _shape_str(want), type(x).__name__))
        out = cupy.empty(want, dtype=cupy.float32)
    oshape, optr, _ = _cai(out, "out", what)
    if oshape != want:
        raise ValueError("%s: out has shape %s, want %s" % (what, _shape_str(oshape),
                                                            _shape_str(want)))
    c.y_ptr = optr
    c.keep.append(out)
    c._ret = out
    return c


def _cai(a: Any, name: str, what: str) -> Tuple[Tuple[int, ...], int, Optional[int]]:
    cai = a.__cuda_array_interface__
    if np.dtype(cai["typestr"]) != F32:
        raise TypeError("%s: %s must be float32, got %s" % (what, name, cai["typestr"]))
    shape = tuple(int(d) for d in cai["shape"])
    strides = cai.get("strides")
    if strides is not None and tuple(strides) != _c_strides(shape, 4):
        raise ValueError("%s: %s must be C-contiguous" % (what, name))
    return shape, int(cai["data"][0]), cai.get("stream")


def _c_strides(shape: Tuple[int, ...], item: int) -> Tuple[int, ...]:
    out, s = [], item
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


def prepare_ids(backend: Any, ids: Any, what: str) -> Tuple[Any, Tuple[int, ...], Any]:
    """Expert ids ([m, top_k] or [m]) as int32 in the backend's memory:
    (pointer, shape, object to keep alive). Other integer dtypes are
    converted (on the device for tensors); int32 is used in place."""
    if isinstance(ids, np.ndarray):
        _check_host(backend, what, "numpy ids")
        if ids.dtype.kind not in "iu":
            raise TypeError("%s: ids must be integers, got %s" % (what, ids.dtype))
        if ids.dtype != I32 or not ids.flags.c_contiguous:
            ids = np.ascontiguousarray(ids, dtype=I32)
        return np_ptr(ids), ids.shape, ids
    if is_torch(ids):
        torch = _torch()
        _torch_device_check(backend, ids, what, "ids")
        if ids.dtype not in (torch.int32, torch.int64, torch.int16, torch.uint8, torch.int8):
            raise TypeError("%s: ids must be an integer tensor, got %s" % (what, ids.dtype))
        ids = ids.detach()
        if ids.dtype != torch.int32 or not ids.is_contiguous():
            ids = ids.to(torch.int32).contiguous()
        return ids.data_ptr(), tuple(ids.shape), ids
    if hasattr(ids, "__cuda_array_interface__"):
        cai = ids.__cuda_array_interface__
        if np.dtype(cai["typestr"]) != I32:
            raise TypeError("%s: CUDA array ids must be int32, got %s" % (what, cai["typestr"]))
        shape = tuple(int(d) for d in cai["shape"])
        if cai.get("strides") is not None and tuple(cai["strides"]) != _c_strides(shape, 4):
            raise ValueError("%s: ids must be C-contiguous" % what)
        return int(cai["data"][0]), shape, ids
    if isinstance(ids, (list, tuple)):
        return prepare_ids(backend, np.asarray(ids), what)
    raise TypeError("%s: ids must be a numpy array, torch tensor or CUDA array, got %s"
                    % (what, type(ids).__name__))
