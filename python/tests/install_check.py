"""`pip install .` into a fresh virtual environment, then the README's
example (python/examples/), the way a user would: run by ctest
(cmake/python_pkg.cmake) as py_pkg_install.

The build is CPU-only (CMAKE_ARGS=-DKQ_CUDA=OFF): CI has nvcc but no GPU,
and compiling the CUDA backend for four architectures would take minutes;
the C build's own tests compile it. The wheel build's folder is kept under
KQ_INSTALL_DIR, so a second run rebuilds only what changed.

Exits 77 after saying why where venv, pip or PyPI (for scikit-build-core)
is unavailable. The torch example runs only where torch is installed for
this python (the venv sees the system's packages); else the numpy one alone.
"""
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def main():
    src = os.environ.get("KQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    work = os.environ.get("KQ_INSTALL_DIR") or tempfile.mkdtemp(prefix="kq-pip-")
    os.makedirs(work, exist_ok=True)
    venv = os.path.join(work, "venv")
    shutil.rmtree(venv, ignore_errors=True)  # fresh every run
    r = run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        print("SKIP: cannot create a virtual environment (Debian: apt-get install python3-venv)")
        return SKIP
    py = os.path.join(venv, "bin", "python")
    r = run([py, "-m", "pip", "--version"])
    if r.returncode != 0:
        print("SKIP: the virtual environment has no pip (%s)" % r.stderr.strip())
        return SKIP
    # PyPI reachable? pip fetches scikit-build-core into its isolated build env.
    probe = os.path.join(work, "probe")
    r = run([py, "-m", "pip", "download", "-q", "--no-deps", "-d", probe, "scikit-build-core"],
            timeout=300)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        print("SKIP: pip cannot fetch scikit-build-core from PyPI (offline?)")
        return SKIP
    env = dict(os.environ)
    env.pop("KQ_LIB", None)  # the installed package must find its own copy
    env.pop("PYTHONPATH", None)
    env["CMAKE_ARGS"] = "-DKQ_CUDA=OFF"
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = env.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    r = run([py, "-m", "pip", "install", "-q", src,
             "--config-settings=build-dir=" + os.path.join(work, "wheel-build")],
            env=env, timeout=1500)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        print("FAIL: pip install . failed")
        return 1
    # The README example, in an empty folder beside a small model file.
    cwd = tempfile.mkdtemp(prefix="kq-example-", dir=work)
    make = ("import numpy as np, kquant\n"
            "rng = np.random.default_rng(1)\n"
            "t = {}\n"
            "for name, n in (('q', 64), ('k', 16), ('v', 16)):\n"
            "    w = rng.standard_normal((n, 256)).astype(np.float32)\n"
            "    t['blk.0.attn_%s.weight' % name] = ('q4_K', kquant.quantize(w, 'q4_K'), (n, 256))\n"
            "kquant.write_gguf('model.gguf', t, {'general.architecture': 'llama'})\n"
            "import os; print(kquant.__file__); print(kquant.lib_path)\n")
    r = run([py, "-c", make], cwd=cwd, env=env)
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        print("FAIL: the installed package could not write the example's model file")
        return 1
    where = r.stdout.split()
    if not where[0].startswith(venv) or where[1] != os.path.join(os.path.dirname(where[0]),
                                                                  "libkquant.so"):
        print("FAIL: kquant came from %s with %s, not the venv's own copy" % tuple(where[:2]))
        return 1
    examples = os.path.join(src, "python", "examples")
    r = run([py, os.path.join(examples, "numpy_linear.py")], cwd=cwd, env=env)
    print(r.stdout + r.stderr)
    if r.returncode != 0 or "(8, 96) float32 True" not in r.stdout:
        print("FAIL: the numpy example did not print [8, 96] float32 zero-copy")
        return 1
    r = run([py, "-c", "import torch"], cwd=cwd, env=env)
    if r.returncode != 0:
        print("torch example: skipped, torch is not installed for %s (nor system-wide)" % py)
    else:
        r = run([py, os.path.join(examples, "torch_linear.py")], cwd=cwd, env=env)
        print(r.stdout + r.stderr)
        if r.returncode != 0 or "(8, 96) torch.bfloat16" not in r.stdout:
            print("FAIL: the torch example did not print (8, 96) torch.bfloat16")
            return 1
    print("py_pkg_install: pip install . and the README example passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
