"""Linear layers and mixtures of experts (kq_linear, kq_experts)."""
from __future__ import annotations

import ctypes
import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _arrays
from ._arrays import _A0, F32, np_ptr
from ._lib import Handle, KQError, check, cstr, error, has, kq_part, lib
from ._types import TypeLike, type_id
from .backend import Backend

GLU_GELU = 1  # kq_glu's KQ_GLU_GELU (include/kquant.h)
from .gguf import GGUF

__all__ = ["Linear", "Experts", "WeightPart"]

PathOrGGUF = Union[GGUF, str, "os.PathLike[str]"]


class WeightPart(NamedTuple):
    """Where one part of a layer's weights lies (kq_linear_part): its type,
    host address and size, and its rows. Zero-copy parts lie in the file
    mapping."""
    type: int
    address: int
    nbytes: int
    rows: int


def _buffer(data: Any, what: str) -> Tuple[Any, int, Any]:
    """(pointer, nbytes, keep-alive) of weight bytes given as any buffer:
    bytes, bytearray, memoryview, a numpy array (a GGUF tensor's data view
    included, which keeps the bytes in the mapping and so in place)."""
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            raise ValueError("%s: the weight bytes must be C-contiguous" % what)
        return np_ptr(data), data.nbytes, data
    try:
        arr = np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        raise TypeError("%s: weight bytes must be bytes, a buffer or a numpy array, got %s"
                        % (what, type(data).__name__)) from None
    return arr.ctypes.data, arr.nbytes, arr


def _open_file(file: PathOrGGUF) -> Tuple[GGUF, bool]:
    if isinstance(file, GGUF):
        return file, False
    if isinstance(file, (str, bytes, os.PathLike)):
        return GGUF(file), True
    raise TypeError("file must be a kquant.GGUF or a path, got %s" % type(file).__name__)


class _Layer:
    _free: Any = None

    def __init__(self, backend: Backend, ptr: Optional[int]) -> None:
        bh = backend._handle
        if bh is None:
            raise ValueError("backend is closed")
        # The layer holds the backend's handle, not the Backend object:
        # closing or dropping the Backend leaves the layer usable.
        self._handle: Optional[Handle] = Handle(ptr, self._free, bh)
        self._h: Optional[ctypes.c_void_p] = self._handle.ptr
        self._b = bh.ptr
        self.backend = backend
        self._host = not backend.is_cuda

    def close(self) -> None:
        """Frees the layer now (else when the object goes)."""
        if self._handle is not None:
            self._handle._finalizer()
            self._handle = None
            self._h = None

    def _run(self, fn: Any, name: str, c: "_arrays.Call", *args: Any) -> Any:
        if self._h is None:
            raise ValueError("%s: the layer is closed" % name)
        if c.m == 0:
            return c.result()
        if c.stream is not None:
            be = self.backend
            with be._lock:
                be._use_stream(c.stream)
                st = fn(*args)
        else:
            st = fn(*args)
        if st:
            raise error(st, name)
        return c.result()


class Linear(_Layer):
    """A linear layer: y = x W^T with W [rows, cols] in a GGUF quant type,
    possibly several parts of different types stacked by rows (q/k/v,
    gate/up). Call it on x of shape [..., cols]; y has shape [..., rows]."""

    _free = lib.kq_linear_free

    def __init__(self, backend: Backend, ptr: Optional[int]) -> None:
        super().__init__(backend, ptr)
        self.rows = int(lib.kq_linear_rows(self._h))
        self.cols = int(lib.kq_linear_cols(self._h))
        self.n_parts = int(lib.kq_linear_n_parts(self._h))
        self._fwd = lib.kq_linear_forward
        self._swiglu = lib.kq_linear_forward_swiglu

    @classmethod
    def from_gguf(cls, backend: Backend, file: PathOrGGUF, *names: str) -> "Linear":
        """The 2-D tensor `names[0]` of a GGUF file, or several tensors of the
        same row length fused by rows in the given order. On CPU backends the
        weights are used in place from the file's mapping (no copy), which
        stays mapped while the layer lives, after the GGUF is closed too."""
        if not names:
            raise TypeError("from_gguf needs at least one tensor name")
        g, opened = _open_file(file)
        try:
            out = ctypes.c_void_p()
            if len(names) == 1:
                check(lib.kq_linear_from_gguf(backend._live, g._h, cstr(names[0], "name"),
                                              ctypes.byref(out)), "kq_linear_from_gguf")
            else:
                arr = (ctypes.c_char_p * len(names))(*[cstr(n, "name") for n in names])
                check(lib.kq_linear_from_gguf_fused(backend._live, g._h, arr, len(names),
                                                    ctypes.byref(out)),
                      "kq_linear_from_gguf_fused")
        finally:
            if opened:
                g.close()
        return cls(backend, out.value)

    @classmethod
    def load(cls, backend: Backend, type: TypeLike, data: Any, rows: int, cols: int) -> "Linear":
        """Weights of `type` from a buffer of exactly rows * row_size(type,
        cols) bytes. Bytes inside an open GGUF mapping are used in place;
        others are copied (the buffer may be dropped after the call)."""
        ptr, nbytes, keep = _buffer(data, "Linear.load")
        out = ctypes.c_void_p()
        check(lib.kq_linear_load(backend._live, type_id(type), ptr, nbytes, int(rows),
                                 int(cols), ctypes.byref(out)), "kq_linear_load")
        del keep
        return cls(backend, out.value)

    @classmethod
    def load_fused(cls, backend: Backend, parts: Sequence[Tuple[TypeLike, Any, int]],
                   cols: int) -> "Linear":
        """Several parts, each (type, bytes, rows), stacked by rows in order."""
        n = len(parts)
        if n == 0:
            raise ValueError("load_fused needs at least one part")
        arr = (kq_part * n)()
        keep = []
        for i, (t, data, rows) in enumerate(parts):
            ptr, nbytes, k = _buffer(data, "Linear.load_fused part %d" % i)
            keep.append(k)
            addr = ptr if isinstance(ptr, int) else ctypes.addressof(ptr)
            arr[i] = kq_part(type_id(t), addr, nbytes, int(rows))
        out = ctypes.c_void_p()
        check(lib.kq_linear_load_fused(backend._live, arr, n, int(cols), ctypes.byref(out)),
              "kq_linear_load_fused")
        return cls(backend, out.value)

    @property
    def is_zero_copy(self) -> bool:
        """True when the weights are used in place from a file mapping."""
        return bool(lib.kq_linear_is_zero_copy(self._live))

    @property
    def _live(self) -> ctypes.c_void_p:
        if self._h is None:
            raise ValueError("the layer is closed")
        return self._h

    def parts(self) -> List[WeightPart]:
        """Where each part's weight bytes lie in host memory (introspection;
        needs a libkquant with kq_linear_part)."""
        if not has("kq_linear_part"):
            raise NotImplementedError("this libkquant has no kq_linear_part")
        res = []
        for i in range(self.n_parts):
            p = kq_part()
            check(lib.kq_linear_part(self._live, i, ctypes.byref(p)), "kq_linear_part")
            res.append(WeightPart(p.type, p.bytes or 0, p.nbytes, p.n_rows))
        return res

    def __call__(self, x: Any, out: Any = None) -> Any:
        """y = x W^T for x of shape [..., cols]: a float32 numpy array on CPU
        backends, a torch tensor (float32, float16 or bfloat16) on its
        backend's device, or a float32 CUDA array. Returns a new array or
        tensor of x's kind (and dtype), shape [..., rows], or fills `out`."""
        h = self._h
        if self._host and type(x) is np.ndarray and h is not None:
            # The common CPU case, kept short: this path is the per-call
            # overhead (bench/python_overhead.py). from_buffer() gives the
            # addresses fastest; it refuses read-only arrays, which take
            # the general path below.
            shape = x.shape
            if (x.dtype is F32 or x.dtype == F32) and x.flags.c_contiguous and shape \
                    and shape[-1] == self.cols and x.flags.writeable:
                if out is None:
                    y = np.empty(shape[:-1] + (self.rows,), F32)
                else:
                    y = _arrays._check_np_out(out, shape[:-1] + (self.rows,), "Linear")
                m = x.size // self.cols
                if m:
                    st = self._fwd(self._b, h, _A0.from_buffer(x),  # type: ignore[arg-type]
                                   _A0.from_buffer(y), m)  # type: ignore[arg-type]
                    if st:
                        raise error(st, "kq_linear_forward")
                return y
        c = _arrays.prepare(self.backend, x, self.cols, self.rows, out, "Linear")
        return self._run(self._fwd, "kq_linear_forward", c, self._b, self._live, c.x_ptr,
                         c.y_ptr, c.m)

    def swiglu(self, x: Any, out: Any = None) -> Any:
        """silu(gate) * up for a layer whose rows are gate rows then up rows
        (a fused gate/up, or one tensor of both): y has shape [..., rows / 2]."""
        if self.rows % 2:
            raise ValueError("Linear.swiglu: the layer has %d rows; gate and up halves need an "
                             "even count" % self.rows)
        c = _arrays.prepare(self.backend, x, self.cols, self.rows // 2, out, "Linear.swiglu")
        return self._run(self._swiglu, "kq_linear_forward_swiglu", c, self._b, self._live,
                         c.x_ptr, c.y_ptr, c.m)

    def geglu(self, x: Any, out: Any = None) -> Any:
        """gelu(gate) * up (Gemma's gated feed-forward, GELU in its tanh form)
        for a layer whose rows are gate rows then up rows: y has shape
        [..., rows / 2]."""
        if self.rows % 2:
            raise ValueError("Linear.geglu: the layer has %d rows; gate and up halves need an "
                             "even count" % self.rows)
        c = _arrays.prepare(self.backend, x, self.cols, self.rows // 2, out, "Linear.geglu")
        return self._run(lib.kq_linear_forward_glu, "kq_linear_forward_glu", c, self._b,
                         self._live, c.x_ptr, c.y_ptr, c.m, GLU_GELU)

    def __repr__(self) -> str:
        return "kquant.Linear(rows=%d, cols=%d, parts=%d, backend=%r)" % (
            self.rows, self.cols, self.n_parts, self.backend.spec)


class Experts(_Layer):
    """Expert weights [n_experts, rows, cols] picked per token by ids."""

    _free = lib.kq_experts_free

    def __init__(self, backend: Backend, ptr: Optional[int]) -> None:
        super().__init__(backend, ptr)
        self.n_experts = int(lib.kq_experts_count(self._h))
        self.rows = int(lib.kq_experts_rows(self._h))
        self.cols = int(lib.kq_experts_cols(self._h))

    @classmethod
    def from_gguf(cls, backend: Backend, file: PathOrGGUF, name: str) -> "Experts":
        """A 3-D tensor (GGUF ne = [cols, rows, n_experts]) of a file by name;
        in place from the mapping on CPU backends."""
        g, opened = _open_file(file)
        try:
            out = ctypes.c_void_p()
            check(lib.kq_experts_from_gguf(backend._live, g._h, cstr(name, "name"),
                                           ctypes.byref(out)), "kq_experts_from_gguf")
        finally:
            if opened:
                g.close()
        return cls(backend, out.value)

    @classmethod
    def load(cls, backend: Backend, type: TypeLike, data: Any, n_experts: int, rows: int,
             cols: int) -> "Experts":
        """n_experts contiguous slabs of [rows, cols] weights of `type`."""
        ptr, nbytes, keep = _buffer(data, "Experts.load")
        out = ctypes.c_void_p()
        check(lib.kq_experts_load(backend._live, type_id(type), ptr, nbytes, int(n_experts),
                                  int(rows), int(cols), ctypes.byref(out)), "kq_experts_load")
        del keep
        return cls(backend, out.value)

    @property
    def _live(self) -> ctypes.c_void_p:
        if self._h is None:
            raise ValueError("the experts are closed")
        return self._h

    @property
    def is_zero_copy(self) -> bool:
        """True when the weights are used in place from a file mapping."""
        return bool(lib.kq_experts_is_zero_copy(self._live))

    def weights(self) -> WeightPart:
        """Where all n_experts slabs lie in host memory (introspection)."""
        if not has("kq_experts_weights"):
            raise NotImplementedError("this libkquant has no kq_experts_weights")
        p = kq_part()
        check(lib.kq_experts_weights(self._live, ctypes.byref(p)), "kq_experts_weights")
        return WeightPart(p.type, p.bytes or 0, p.nbytes, p.n_rows)

    def _prepare(self, x: Any, ids: Any, slot_stride: Optional[int], out: Any,
                 what: str) -> Tuple["_arrays.Call", Any, int, int, int]:
        ids_ptr, ishape, ids_keep = _arrays.prepare_ids(self.backend, ids, what)
        if len(ishape) not in (1, 2):
            raise ValueError("%s: ids must be [tokens, top_k] or [tokens], got shape %s"
                             % (what, list(ishape)))
        m = int(ishape[0])
        top_k = int(ishape[1]) if len(ishape) == 2 else 1
        k = self.cols
        # x holds m token rows of token_stride floats each: [m, K] (one row
        # for all slots) or [m, top_k, K] (a row per slot).
        xshape = _shape_of(x)
        if not xshape or xshape[0] != m or xshape[-1] != k:
            raise ValueError("%s: x has shape %s; want [%d, %d] (one row per token) or "
                             "[%d, %d, %d] (one per slot) for ids of shape %s"
                             % (what, list(xshape), m, k, m, top_k, k, list(ishape)))
        token_stride = _arrays._prod(xshape) // m if m else k
        if slot_stride is None:
            slot_stride = 0 if token_stride == k else k
        slot_stride = int(slot_stride)
        if slot_stride < 0 or (top_k - 1) * slot_stride + k > token_stride:
            raise ValueError("%s: slot_stride %d with top_k %d reads past a token's %d floats"
                             % (what, slot_stride, top_k, token_stride))
        lead = tuple(ishape) if len(ishape) == 2 else (m,)
        c = _arrays.prepare(self.backend, x, k, self.rows, out, what,
                            lead_of=lambda s: lead, rows_of=lambda s: m)
        c.keep.append(ids_keep)
        return c, ids_ptr, token_stride, slot_stride, top_k

    def __call__(self, x: Any, ids: Any, slot_stride: Optional[int] = None,
                 out: Any = None) -> Any:
        """For token i and slot s, y[i, s] = W[ids[i, s]] x_(i, s), where
        x_(i, s) is x[i] ([tokens, cols]: one row broadcast to every slot,
        slot_stride 0) or x[i, s] ([tokens, top_k, cols]: slot_stride cols).
        slot_stride (in floats) defaults from x's shape. ids: [tokens, top_k]
        (or [tokens]) integers in [0, n_experts). y: [tokens, top_k, rows]
        (or [tokens, rows]). On CUDA an id out of range is reported by the
        next Backend.sync()."""
        c, ids_ptr, ts, ss, top_k = self._prepare(x, ids, slot_stride, out, "Experts")
        return self._run(lib.kq_experts_forward, "kq_experts_forward", c, self._b, self._live,
                         c.x_ptr, ts, ss, ids_ptr, c.m, top_k, c.y_ptr)

    def swiglu(self, up: "Experts", x: Any, ids: Any, slot_stride: Optional[int] = None,
               out: Any = None) -> Any:
        """silu(W_gate x) * (W_up x) per (token, slot), with these experts as
        the gate and `up` of the same shape; arguments as __call__."""
        if not isinstance(up, Experts):
            raise TypeError("Experts.swiglu: up must be Experts, got %s" % type(up).__name__)
        c, ids_ptr, ts, ss, top_k = self._prepare(x, ids, slot_stride, out, "Experts.swiglu")
        return self._run(lib.kq_experts_forward_swiglu, "kq_experts_forward_swiglu", c,
                         self._b, self._live, up._live, c.x_ptr, ts, ss, ids_ptr, c.m, top_k,
                         c.y_ptr)

    def __repr__(self) -> str:
        return "kquant.Experts(n_experts=%d, rows=%d, cols=%d, backend=%r)" % (
            self.n_experts, self.rows, self.cols, self.backend.spec)


def _shape_of(x: Any) -> Tuple[int, ...]:
    if hasattr(x, "shape"):
        return tuple(int(d) for d in x.shape)
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        return tuple(int(d) for d in cai["shape"])
    return ()
