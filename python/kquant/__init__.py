"""kquant: activations times GGUF-quantized weights, on CPUs and NVIDIA GPUs.

A binding of libkquant (the C library in this repository) through ctypes:

    import kquant
    cpu = kquant.Backend("cpu")
    with kquant.GGUF("model.gguf") as f:
        qkv = kquant.Linear.from_gguf(cpu, f, "blk.0.attn_q.weight",
                                      "blk.0.attn_k.weight", "blk.0.attn_v.weight")
    y = qkv(x)          # x: float32 [..., K] numpy array -> [..., N]

Layers take numpy float32 arrays on CPU backends and torch tensors
(float32, float16, bfloat16) on CPU or CUDA, used in place; CUDA work is
queued on torch's current stream. C failures raise KQError with the
library's status and message.
"""
from __future__ import annotations

from ._lib import KQError, lib_path
from ._types import Type, block_size, row_size, supported_types, type_id, type_name
from .backend import Backend
from .gguf import GGUF, Metadata, Tensor, VType, write_gguf
from .layers import Experts, Linear, WeightPart
from .model import Model
from .quant import dequantize, quantize

__all__ = ["Backend", "GGUF", "Metadata", "Tensor", "VType", "write_gguf", "Linear", "Experts",
           "WeightPart", "Model", "quantize", "dequantize", "Type", "type_id", "type_name",
           "row_size", "block_size", "supported_types", "KQError", "version", "lib_path", "__version__"]

__version__ = "0.1.0"


def version() -> str:
    """The version of the loaded libkquant ("MAJOR.MINOR.PATCH")."""
    from ._lib import lib
    return lib.kq_version().decode()
