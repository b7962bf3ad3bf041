import numpy as np, kquant

backend = kquant.Backend("cpu")
with kquant.GGUF("model.gguf") as f:
    print(f.metadata["general.architecture"], list(f.tensors))
    qkv = kquant.Linear.from_gguf(backend, f, "blk.0.attn_q.weight",
                                  "blk.0.attn_k.weight", "blk.0.attn_v.weight")
x = np.random.default_rng(0).standard_normal((8, qkv.cols), dtype=np.float32)
y = qkv(x)                     # [8, N_q + N_k + N_v] float32, weights used in place
print(y.shape, y.dtype, qkv.is_zero_copy)
