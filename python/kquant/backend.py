"""Backends: where layers live and run (kq_backend_open)."""
from __future__ import annotations

import ctypes
import re
import threading
from typing import Any, Optional

from ._lib import Handle, check, cstr, decode, lib

__all__ = ["Backend"]

# cudaStreamLegacy: the legacy default stream, which torch reports as 0. The
# C API reads NULL as "the backend's own stream" (a non-blocking one that
# does not order against the default stream), so 0 must travel as this.
CUDA_STREAM_LEGACY = 1


class Backend:
    """A compute backend: ``Backend("cpu")``, ``Backend("cpu:threads=8")``,
    ``Backend("cpu-ref")``, ``Backend("cuda")``, ``Backend("cuda:1,host_weights=1")``
    or ``Backend("auto")`` (the spec syntax of kq_backend_open).

    CPU backends take numpy float32 arrays (or CPU torch tensors); ``cuda``
    takes CUDA tensors on its device and queues work on the caller's current
    torch stream. Layers loaded on a backend keep it open: ``close()`` (or
    leaving a ``with`` block) releases this object's own hold only.
    """

    def __init__(self, spec: str = "cpu") -> None:
        out = ctypes.c_void_p()
        check(lib.kq_backend_open(cstr(spec, "spec"), ctypes.byref(out)), "kq_backend_open")
        self._handle: Optional[Handle] = Handle(out.value, lib.kq_backend_close)
        # For _use_stream, which layers call after a close() too (they hold
        # the handle, so the C backend is alive whenever they call).
        self._raw = self._handle.ptr
        self.spec = spec
        self.name = decode(lib.kq_backend_name(out))
        self.device = decode(lib.kq_backend_device(out))
        self.is_cuda = self.name == "cuda"
        self.device_index = _cuda_ordinal(spec) if self.is_cuda else -1
        # CUDA: the stream last handed to the C backend, and a lock that keeps
        # a thread's set-stream-then-queue pair from interleaving with another's.
        self._stream: Optional[int] = None
        self._lock = threading.Lock()

    @property
    def _live(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise ValueError("backend %r is closed" % self.spec)
        return self._handle.ptr

    def sync(self) -> None:
        """Waits for queued work; raises KQError for errors found on the
        device since the last sync (such as an expert id out of range)."""
        check(lib.kq_backend_sync(self._live), "kq_backend_sync")

    def close(self) -> None:
        """Drops this object's hold on the backend; layers made on it keep
        theirs and stay usable."""
        self._handle = None

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "kquant.Backend(%r)  # %s" % (self.spec, self.device)

    def _use_stream(self, stream: int) -> None:
        """Points the CUDA backend at `stream` (a cudaStream_t as int) when
        it is not already there. Caller holds self._lock."""
        if stream == 0:
            stream = CUDA_STREAM_LEGACY
        if stream != self._stream:
            check(lib.kq_backend_set_stream(self._raw, stream), "kq_backend_set_stream")
            self._stream = stream


def _cuda_ordinal(spec: str) -> int:
    """The device ordinal a "cuda..." spec names (0 when none)."""
    opts = spec.split(":", 1)[1] if ":" in spec else ""
    for opt in opts.split(","):
        opt = opt.strip()
        m = re.fullmatch(r"(?:device=)?(\d+)", opt)
        if m:
            return int(m.group(1))
    return 0
