"""Whole models (include/kquant_model.h), where the library has them."""
from __future__ import annotations

from typing import Any

from ._lib import has
from .backend import Backend

__all__ = ["Model"]


class Model:
    """A language model from a GGUF file: ``Model(path, backend).generate(prompt, n)``."""

    def __init__(self, path: Any, backend: Backend) -> None:
        if not has("kq_model_open"):
            raise NotImplementedError(
                "kquant.Model needs the model API of include/kquant_model.h, which this "
                "libkquant does not export")
        raise NotImplementedError("kquant.Model is not bound yet")
