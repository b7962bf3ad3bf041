"""kquant.Model on a tiny random llama with a small SentencePiece-style
vocabulary, written with write_gguf. The model's arithmetic is checked by
tests/test_model.c against its own reference; here the binding: tokenizer
round trip, logits of a prompt in one batch equal to those of the same
tokens one at a time, and generate() equal to a greedy loop over forward()."""
import numpy as np
import pytest

import kquant

if not hasattr(kquant.model, "_AVAILABLE") or not kquant.model._AVAILABLE:
    pytest.skip("this libkquant has no model API", allow_module_level=True)

D, HEADS, KV, HD, FF, LAYERS = 64, 4, 2, 16, 128, 2
# SentencePiece merges grow a piece from pieces in the vocabulary, so every
# prefix of a word (and each character) is a token too.
_WHOLE = ["\u2581hello", "\u2581world", "\u2581a", "\u2581b"]
WORDS = sorted({w[:i] for w in _WHOLE for i in range(1, len(w) + 1)} |
               {c for w in _WHOLE for c in w}, key=lambda w: (len(w), w))


def _vocab():
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + WORDS
    types = [2, 3, 3] + [6] * 256 + [1] * len(WORDS)
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [float(len(w)) for w in WORDS]
    return tokens, types, scores


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    rng = np.random.default_rng(7)
    tokens, types, scores = _vocab()
    v = len(tokens)
    md = {"general.architecture": "llama", "general.name": "tiny",
          "llama.embedding_length": D, "llama.block_count": LAYERS,
          "llama.attention.head_count": HEADS, "llama.attention.head_count_kv": KV,
          "llama.attention.key_length": HD, "llama.attention.value_length": HD,
          "llama.context_length": 64, "llama.feed_forward_length": FF,
          "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000.0,
          "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
          "tokenizer.ggml.scores": np.array(scores, np.float32),
          "tokenizer.ggml.token_type": np.array(types, np.int32),
          "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
          "tokenizer.ggml.unknown_token_id": 0}

    def w(rows, cols, t="q8_0"):
        x = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        return (t, kquant.quantize(x, t), (rows, cols))

    t = {"token_embd.weight": w(v, D, "f32"), "output_norm.weight": np.ones(D, np.float32),
         "output.weight": w(v, D)}
    for i in range(LAYERS):
        p = "blk.%d." % i
        t[p + "attn_norm.weight"] = np.ones(D, np.float32)
        t[p + "ffn_norm.weight"] = np.ones(D, np.float32)
        t[p + "attn_q.weight"] = w(HEADS * HD, D)
        t[p + "attn_k.weight"] = w(KV * HD, D)
        t[p + "attn_v.weight"] = w(KV * HD, D)
        t[p + "attn_output.weight"] = w(D, HEADS * HD)
        t[p + "ffn_gate.weight"] = w(FF, D)
        t[p + "ffn_up.weight"] = w(FF, D)
        t[p + "ffn_down.weight"] = w(D, FF)
    path = str(tmp_path_factory.mktemp("model") / "tiny.gguf")
    kquant.write_gguf(path, t, md)
    return path


def test_model_binding(model_path):
    b = kquant.Backend("cpu-ref")
    m = kquant.Model(model_path, b)
    assert m.info["arch"] == "llama" and m.info["n_layer"] == LAYERS
    assert m.n_vocab == 3 + 256 + len(WORDS)
    ids = m.tokenize("hello world")
    assert ids[0] == 1 and len(ids) >= 3
    assert m.detokenize(ids[1:]).strip() == "hello world"
    m.reset()
    batch = m.forward(ids)
    m.reset()
    one = np.concatenate([m.forward([t]) for t in ids])
    np.testing.assert_allclose(one, batch, rtol=1e-4, atol=1e-4 * float(np.abs(batch).max()))
    assert m.seq_len(0) == len(ids)
    text = m.generate("hello world", 6, stop=False)
    # The same greedy loop by hand over forward().
    m.reset()
    logits = m.forward(ids, last_only=True)
    out = []
    for _ in range(6):
        tok = int(np.argmax(logits[0]))
        out.append(tok)
        logits = m.forward([tok], last_only=True)
    assert text == m.detokenize(out)
    assert m.graph_replays == 0  # host backends never capture


def test_model_outlives_backend_object(model_path):
    b = kquant.Backend("cpu")
    m = kquant.Model(model_path, b)
    b.close()
    del b
    assert isinstance(m.generate("a b", 3), str)
