"""Whole language models on kquant's layers (include/kquant_model.h):
tokenizer, forward pass with a KV cache, sampling."""
from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, Structure, byref, c_char_p, c_float, c_int, c_int32, c_int64
from ctypes import c_size_t, c_uint8, c_uint64, c_void_p
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ._arrays import np_ptr
from ._lib import Handle, check, cstr, decode, lib
from .backend import Backend

__all__ = ["Model"]


class kq_model_params(Structure):
    _fields_ = [("n_ctx", c_int32), ("n_seq", c_int32)]


class kq_model_info(Structure):
    _fields_ = [("arch", c_char_p), ("name", c_char_p), ("n_vocab", c_int32),
                ("n_embd", c_int32), ("n_layer", c_int32), ("n_head", c_int32),
                ("n_head_kv", c_int32), ("head_dim", c_int32), ("n_ff", c_int32),
                ("n_expert", c_int32), ("n_expert_used", c_int32), ("n_ctx", c_int32),
                ("n_seq", c_int32), ("bos", c_int32), ("eos", c_int32),
                ("weight_bytes", c_uint64)]


class kq_sampler_params(Structure):
    _fields_ = [("temp", c_float), ("top_k", c_int32), ("top_p", c_float), ("seed", c_uint64)]


_P = c_void_p
_SIGNATURES = {
    "kq_model_open": (c_int, [_P, c_char_p, POINTER(kq_model_params), POINTER(_P)]),
    "kq_model_free": (None, [_P]),
    "kq_model_get_info": (c_int, [_P, POINTER(kq_model_info)]),
    "kq_model_graph_replays": (c_uint64, [_P]),
    "kq_model_tokenize": (c_int, [_P, c_char_p, c_size_t, c_int, c_int, POINTER(_P),
                                  POINTER(c_size_t)]),
    "kq_model_token_to_piece": (c_int, [_P, c_int32, c_char_p, c_size_t, POINTER(c_size_t)]),
    "kq_model_is_eog": (c_int, [_P, c_int32]),
    "kq_model_forward": (c_int, [_P, _P, _P, _P, c_int64, _P, _P]),
    "kq_model_seq_reset": (c_int, [_P, c_int32]),
    "kq_model_seq_len": (c_int32, [_P, c_int32]),
    "kq_sampler_new": (c_int, [POINTER(kq_sampler_params), c_int32, POINTER(_P)]),
    "kq_sampler_free": (None, [_P]),
    "kq_sampler_sample": (c_int, [_P, _P, POINTER(c_int32)]),
}
_AVAILABLE = all(hasattr(lib, n) for n in _SIGNATURES)
if _AVAILABLE:
    for _n, (_r, _a) in _SIGNATURES.items():
        _f = getattr(lib, _n)
        _f.restype, _f.argtypes = _r, _a
    # kq_model_tokenize's array is malloc'd by the library; it goes back to
    # the same C library's free.
    _libc_free = ctypes.CDLL(None).free
    _libc_free.argtypes, _libc_free.restype = [c_void_p], None


class Model:
    """A language model from a GGUF file (llama, qwen2, qwen3, qwen3moe,
    gemma3), loaded on a backend with its own tokenizer and a KV cache.

    ``Model(path, backend).generate(prompt, n)`` returns the text of up to
    n new tokens (greedy unless temperature > 0). ``tokenize``,
    ``forward`` (logits of a batch of token ids) and ``reset`` give the
    steps. ``info`` holds the architecture's sizes (kq_model_info).
    """

    def __init__(self, path: Any, backend: Backend, n_ctx: int = 0, n_seq: int = 1) -> None:
        if not _AVAILABLE:
            raise NotImplementedError("kquant.Model needs the model API of include/kquant_model.h, "
                                      "which this libkquant does not export")
        params = kq_model_params(int(n_ctx), int(n_seq))
        out = c_void_p()
        check(lib.kq_model_open(backend._live, cstr(os.fspath(path), "path"), byref(params),
                                byref(out)), "kq_model_open")
        # The model's C object needs its backend alive: the handle keeps it.
        self._handle: Optional[Handle] = Handle(out.value, lib.kq_model_free, backend._handle)
        self._h = self._handle.ptr
        self.backend = backend
        info = kq_model_info()
        check(lib.kq_model_get_info(self._h, byref(info)), "kq_model_get_info")
        fields = [f[0] for f in kq_model_info._fields_]
        self.info: Dict[str, Any] = {f: (decode(getattr(info, f)) if f in ("arch", "name") else
                                         int(getattr(info, f))) for f in fields}
        self.n_vocab: int = int(info.n_vocab)
        self.n_ctx: int = int(info.n_ctx)

    @property
    def graph_replays(self) -> int:
        """Forward passes replayed from a captured CUDA graph so far (0 on
        CPU backends, MoE models, or with KQ_GRAPH=0)."""
        return int(lib.kq_model_graph_replays(self._h))

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> List[int]:
        """Token ids of `text` by the file's tokenizer (BOS etc. as its
        metadata says when add_special)."""
        b = text.encode("utf-8")
        arr, n = c_void_p(), c_size_t()
        check(lib.kq_model_tokenize(self._h, b, len(b), int(add_special), int(parse_special),
                                    byref(arr), byref(n)), "kq_model_tokenize")
        try:
            return list((c_int32 * n.value).from_address(arr.value)) if n.value and arr.value \
                else []
        finally:
            _libc_free(arr)

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token (pieces may split a UTF-8 character)."""
        buf = ctypes.create_string_buffer(64)
        n = c_size_t()
        st = lib.kq_model_token_to_piece(self._h, int(token), buf, len(buf), byref(n))
        if st and n.value > len(buf):
            buf = ctypes.create_string_buffer(n.value)
            st = lib.kq_model_token_to_piece(self._h, int(token), buf, len(buf), byref(n))
        check(st, "kq_model_token_to_piece")
        return buf.raw[:n.value]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.token_bytes(t) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(lib.kq_model_is_eog(self._h, int(token)))

    def reset(self, seq: int = -1) -> None:
        """Empties one sequence's cache (-1: all)."""
        check(lib.kq_model_seq_reset(self._h, int(seq)), "kq_model_seq_reset")

    def seq_len(self, seq: int = 0) -> int:
        return int(lib.kq_model_seq_len(self._h, int(seq)))

    def forward(self, tokens: Sequence[int], pos: Optional[Sequence[int]] = None,
                seq: Optional[Sequence[int]] = None, last_only: bool = False) -> np.ndarray:
        """Runs tokens through the model (continuing each sequence's cache)
        and returns float32 logits [n, n_vocab] (or [1, n_vocab] of the last
        token with last_only). pos defaults to the sequence's current length
        onward; seq to sequence 0 for all."""
        t = np.ascontiguousarray(tokens, dtype=np.int32).reshape(-1)
        n = t.size
        if n == 0:
            return np.empty((0, self.n_vocab), np.float32)
        s: Optional[np.ndarray] = None
        if seq is None:
            if pos is None:
                pos = list(range(max(self.seq_len(0), 0), max(self.seq_len(0), 0) + n))
        else:
            s = np.ascontiguousarray(seq, dtype=np.int32).reshape(-1)
            if s.size != n:
                raise ValueError("seq has %d entries for %d tokens" % (s.size, n))
            if pos is None:
                raise ValueError("give pos with seq")
        p = np.ascontiguousarray(pos, dtype=np.int32).reshape(-1)
        if p.size != n:
            raise ValueError("pos has %d entries for %d tokens" % (p.size, n))
        want = None
        rows = n
        if last_only:
            want = np.zeros(n, np.uint8)
            want[-1] = 1
            rows = 1
        logits = np.empty((rows, self.n_vocab), np.float32)
        check(lib.kq_model_forward(self._h, np_ptr(t), np_ptr(p),
                                   None if s is None else np_ptr(s), n,
                                   None if want is None else np_ptr(want), np_ptr(logits)),
              "kq_model_forward")
        return logits

    def generate(self, prompt: str, n: int, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0, stop: bool = True) -> str:
        """The text of up to `n` tokens after `prompt` (sequence 0, whose
        cache is reset first). Greedy at temperature 0; stops at an
        end-of-generation token when `stop`, or where the context is full."""
        sp = kq_sampler_params(float(temperature), int(top_k), float(top_p), int(seed))
        smp = c_void_p()
        check(lib.kq_sampler_new(byref(sp), self.n_vocab, byref(smp)), "kq_sampler_new")
        try:
            self.reset(0)
            tokens = self.tokenize(prompt)
            if not tokens:
                raise ValueError("the prompt gives no tokens")
            logits = self.forward(tokens, last_only=True)
            out: List[int] = []
            tok = c_int32()
            pos = len(tokens)
            for _ in range(int(n)):
                check(lib.kq_sampler_sample(smp, np_ptr(logits), byref(tok)), "kq_sampler_sample")
                if stop and self.is_eog(tok.value):
                    break
                out.append(tok.value)
                if pos >= self.n_ctx or len(out) == n:
                    break
                logits = self.forward([tok.value], pos=[pos], last_only=True)
                pos += 1
            return self.detokenize(out)
        finally:
            lib.kq_sampler_free(smp)

    def close(self) -> None:
        if self._handle is not None:
            self._handle._finalizer()
            self._handle = None

    def __repr__(self) -> str:
        return "kquant.Model(%s %r, %d layers, vocab %d)" % (
            self.info["arch"], self.info["name"], self.info["n_layer"], self.n_vocab)
