"""The type table and the public kq_type enum agree with the gguf package on
every ggml type id: block geometry, names, and the enum's numbers."""
import os
import re
import sys

import kqlib

np, gguf = kqlib.need_oracle()
lib = kqlib.load()
checks = kqlib.Checks("test_type_table")
expect = checks.check


def ggml_name(member):
    # ggml prints type names lower-case except the K of k-quants: "q4_K".
    n = member.name.lower()
    return n[:-2] + "_K" if n.endswith("_k") else n


header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "kquant.h")
enum = {m.group(1): int(m.group(2))
        for m in re.finditer(r"KQ_TYPE_(\w+) = (\d+)", open(header).read())}
seen = 0
for member in gguf.GGMLQuantizationType:
    elems, nbytes = gguf.GGML_QUANT_SIZES[member]
    tid = int(member)
    got_name = lib.kq_type_name(tid)
    expect(got_name is not None and got_name.decode() == ggml_name(member),
           "%s (%d): name %r" % (member.name, tid, got_name))
    expect(lib.kq_type_block_elems(tid) == elems and lib.kq_type_block_bytes(tid) == nbytes,
           "%s (%d): geometry %d/%d, gguf says %d/%d" % (member.name, tid,
                                                        lib.kq_type_block_elems(tid),
                                                        lib.kq_type_block_bytes(tid), elems, nbytes))
    expect(enum.get(member.name) == tid, "kquant.h has KQ_TYPE_%s = %s, gguf says %d"
           % (member.name, enum.get(member.name), tid))
    seen += 1
known = {int(m) for m in gguf.GGMLQuantizationType}
for tid in range(0, 64):
    if tid not in known:
        expect(lib.kq_type_name(tid) is None and lib.kq_type_block_bytes(tid) == 0,
               "id %d is not a ggml type, but kquant names it" % tid)
expect(set(enum.values()) <= known, "kquant.h enum ids not in gguf: %s" % (set(enum.values()) - known))
print("test_type_table: %d types compared" % seen)
sys.exit(checks.finish())
