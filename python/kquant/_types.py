"""Weight types: the ggml type ids, named as the library names them."""
from __future__ import annotations

import ctypes
import enum
from typing import List, Tuple, Union

from ._lib import check, cstr, lib

__all__ = ["Type", "TypeLike", "type_id", "type_name", "supported_types", "row_size",
           "block_size"]

# Ids the library knows are listed by the library itself (kq_type_name is
# non-NULL for them), so a type added in C appears here without an edit.
_MAX_ID = 256


def _members() -> dict:
    out = {}
    for i in range(_MAX_ID):
        name = lib.kq_type_name(i)
        if name:
            out[name.decode().upper()] = i
    return out


Type = enum.IntEnum("Type", _members(), module=__name__)  # type: ignore[misc]
Type.__doc__ = """The ggml type ids of GGUF files (``Type.Q4_K == 12``); ``str(t)``
gives the library's name ("q4_K")."""
Type.__str__ = lambda self: lib.kq_type_name(int(self)).decode()  # type: ignore

TypeLike = Union[int, str, "enum.IntEnum"]


def type_id(t: TypeLike) -> int:
    """The ggml id of a type given as a Type, an id, or a name ("q4_K",
    case-insensitive)."""
    if isinstance(t, str):
        out = ctypes.c_int()
        check(lib.kq_type_from_name(cstr(t, "type"), ctypes.byref(out)), "kq_type_from_name")
        return out.value
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError("a weight type is a kquant.Type, an id or a name, not %s"
                        % type(t).__name__)
    if lib.kq_type_name(int(t)) is None:
        raise ValueError("unknown ggml type id %d" % t)
    return int(t)


def type_name(t: TypeLike) -> str:
    """The library's name of a type ("q4_K")."""
    return lib.kq_type_name(type_id(t)).decode()


def supported_types() -> List["enum.IntEnum"]:
    """The types weights can be loaded in for compute (kq_type_is_supported)."""
    return [t for t in Type if lib.kq_type_is_supported(int(t))]


def row_size(t: TypeLike, n_cols: int) -> int:
    """Bytes of one row of `n_cols` elements of type `t`."""
    out = ctypes.c_size_t()
    check(lib.kq_row_size(type_id(t), int(n_cols), ctypes.byref(out)), "kq_row_size")
    return out.value


def block_size(t: TypeLike) -> Tuple[int, int]:
    """(elements, bytes) of one block of type `t` (1 and the element size
    for float types)."""
    i = type_id(t)
    return int(lib.kq_type_block_elems(i)), int(lib.kq_type_block_bytes(i))
