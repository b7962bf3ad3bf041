import torch, kquant

dev = "cuda" if torch.cuda.is_available() else "cpu"
backend = kquant.Backend(dev)
with kquant.GGUF("model.gguf") as f:
    qkv = kquant.Linear.from_gguf(backend, f, "blk.0.attn_q.weight",
                                  "blk.0.attn_k.weight", "blk.0.attn_v.weight")
x = torch.randn(8, qkv.cols, device=dev, dtype=torch.bfloat16)
y = qkv(x)                     # [8, N_q + N_k + N_v], bfloat16, on x's device and stream
print(tuple(y.shape), y.dtype, y.device)
