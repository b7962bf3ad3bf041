#!/usr/bin/env python3
"""Write a GGUF file holding a subset of another's tensors, byte for byte.

Why: the GPU machine receives at most 64 MiB with each call, and a real
model file (Gemma 3 270M Q4_K_M is 253 MB) does not fit.  `kq verify` checks
each matrix on its own, so verifying the file in parts, each part carrying
some of the tensors unchanged, checks the same matrices with the same bytes.
A tensor too large for any part can be cut to its first rows (--rows
NAME=N): the rows keep their bytes; only the row count shrinks.

Usage:
  split_gguf.py IN.gguf OUT.gguf [--match REGEX]... [--rows NAME=N]...
Every tensor whose name matches one of the regexes (all of them when none is
given) is copied.  Metadata other than general.architecture/name is dropped:
kq verify does not read it.
"""
import argparse
import re
import sys

import numpy as np
import gguf


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--match", action="append", default=[])
    ap.add_argument("--rows", action="append", default=[],
                    help="NAME=N keeps the first N rows of tensor NAME")
    a = ap.parse_args()
    rows = {}
    for r in a.rows:
        name, _, n = r.partition("=")
        rows[name] = int(n)
    pats = [re.compile(p) for p in a.match]

    rd = gguf.GGUFReader(a.src)
    arch = "llama"
    f = rd.fields.get("general.architecture")
    if f is not None:
        arch = bytes(f.parts[f.data[0]]).decode()
    wr = gguf.GGUFWriter(a.dst, arch)
    total = 0
    for t in rd.tensors:
        if pats and not any(p.search(t.name) for p in pats):
            continue
        # data's first axis is rows (for quantized types the second is the
        # row's bytes, which the writer turns back into a weight count).
        data = np.asarray(t.data)
        if t.name in rows and data.ndim >= 2:
            data = data[:min(rows[t.name], data.shape[0])]
        wr.add_tensor(t.name, np.ascontiguousarray(data), raw_dtype=t.tensor_type)
        total += data.nbytes
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    print(f"{a.dst}: {total / 1e6:.1f} MB of tensors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
