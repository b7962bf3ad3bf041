#!/usr/bin/env python3
"""Copies a GGUF file, adding a generated SentencePiece-style vocabulary
(tokenizer.ggml.*), so that llama.cpp's loader accepts the random-weight
stand-ins of `kq sample --model` (which carry no tokenizer) and llama-bench
can time them beside `kq bench-model` (bench/cuda_check.sh's llamacpp step).
llama-bench feeds random token ids, so the strings do not matter: there are
as many as token_embd.weight has rows, <unk> <s> </s> and the 256 byte
tokens first. Only the header is rewritten; tensor data is copied as is
(the tensor offsets are relative to the data section, which stays aligned).

Usage: python3 bench/stand_in_vocab.py IN.gguf OUT.gguf"""
import struct, sys

def rd(f, fmt):
    return struct.unpack('<' + fmt, f.read(struct.calcsize('<' + fmt)))

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def skip_value(f, t):
    if t == 8:
        (n,) = rd(f, 'Q'); f.seek(n, 1)
    elif t == 9:
        et, n = rd(f, 'IQ')
        if et == 8:
            for _ in range(n):
                (m,) = rd(f, 'Q'); f.seek(m, 1)
        else:
            f.seek(SIZES[et] * n, 1)
    else:
        f.seek(SIZES[t], 1)

def s(x):
    b = x.encode(); return struct.pack('<Q', len(b)) + b

def kv_str(k, v): return s(k) + struct.pack('<I', 8) + s(v)
def kv_u32(k, v): return s(k) + struct.pack('<II', 4, v)
def kv_bool(k, v): return s(k) + struct.pack('<IB', 7, v)

def main(src, dst):
    with open(src, 'rb') as f:
        magic, ver, n_t, n_kv = rd(f, 'IIQQ')
        assert magic == 0x46554747, 'not GGUF'
        align = 32
        kv_start = f.tell()
        for _ in range(n_kv):
            (kl,) = rd(f, 'Q'); key = f.read(kl).decode(); (t,) = rd(f, 'I')
            if key == 'general.alignment':
                (align,) = rd(f, 'I')
            else:
                skip_value(f, t)
        kv_end = f.tell()
        n_vocab = None
        for _ in range(n_t):
            (nl,) = rd(f, 'Q'); name = f.read(nl).decode(); (nd,) = rd(f, 'I')
            dims = rd(f, 'Q' * nd); rd(f, 'IQ')
            if name == 'token_embd.weight':
                n_vocab = dims[1]
        ti_end = f.tell()
        data_start = (ti_end + align - 1) // align * align
        f.seek(kv_start)
        kvs = f.read(kv_end - kv_start)
        tinfo = f.read(ti_end - kv_end)
    assert n_vocab, 'no token_embd.weight'
    toks = ['<unk>', '<s>', '</s>'] + ['<0x%02X>' % i for i in range(256)]
    toks += ['\u2581t%d' % i for i in range(n_vocab - len(toks))]
    types = [2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259)
    arr = struct.pack('<IQ', 8, n_vocab) + b''.join(s(t) for t in toks)
    extra = [kv_str('tokenizer.ggml.model', 'llama'),
             s('tokenizer.ggml.tokens') + struct.pack('<I', 9) + arr,
             s('tokenizer.ggml.scores') + struct.pack('<IIQ', 9, 6, n_vocab) + struct.pack('<%df' % n_vocab, *([0.0] * n_vocab)),
             s('tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 5, n_vocab) + struct.pack('<%di' % n_vocab, *types),
             kv_u32('tokenizer.ggml.bos_token_id', 1), kv_u32('tokenizer.ggml.eos_token_id', 2),
             kv_u32('tokenizer.ggml.unknown_token_id', 0), kv_bool('tokenizer.ggml.add_bos_token', 1)]
    head = struct.pack('<IIQQ', magic, ver, n_t, n_kv + len(extra)) + kvs + b''.join(extra) + tinfo
    head += b'\0' * ((-len(head)) % align)
    with open(src, 'rb') as f, open(dst, 'wb') as o:
        o.write(head)
        f.seek(data_start)
        while True:
            b = f.read(1 << 24)
            if not b: break
            o.write(b)

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
