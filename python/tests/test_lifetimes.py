"""Lifetimes: layers, views and files outlive the Python objects that made
them, in any order of deletion, and an interpreter that exits with live
objects exits cleanly."""
import gc
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kquant

K, N = 512, 7


@pytest.fixture
def model_file(tmp_gguf, rng):
    w = rng.standard_normal((N, K)).astype(np.float32)
    kquant.write_gguf(tmp_gguf, {"w": ("q8_0", kquant.quantize(w, "q8_0"), (N, K)),
                                 "e": ("q4_0", kquant.quantize(
                                     rng.standard_normal((2 * N, K)).astype(np.float32), "q4_0"),
                                     (2, N, K))})
    return tmp_gguf


def _make(path):
    objs = {}
    objs["backend"] = kquant.Backend("cpu-ref")
    objs["file"] = kquant.GGUF(path)
    objs["linear"] = kquant.Linear.from_gguf(objs["backend"], objs["file"], "w")
    objs["experts"] = kquant.Experts.from_gguf(objs["backend"], objs["file"], "e")
    objs["view"] = objs["file"].tensors["w"].data
    return objs


def _use(name, obj, x, want):
    """Each object still does its job (compared with its results made while
    everything was alive)."""
    if name == "linear":
        np.testing.assert_array_equal(obj(x), want["linear"])
    elif name == "experts":
        np.testing.assert_array_equal(obj(x, want["ids"]), want["experts"])
    elif name == "view":
        assert obj.tobytes() == want["view"]
    elif name == "file":
        assert obj.tensors["w"].shape == (N, K)
    elif name == "backend":
        assert obj.name == "cpu-ref"


def test_any_deletion_order(model_file, rng):
    x = rng.standard_normal((3, K)).astype(np.float32)
    names = ["backend", "file", "linear", "experts", "view"]
    for order in itertools.permutations(names):
        objs = _make(model_file)
        want = {"ids": np.array([[0, 1], [1, 1], [0, 0]], np.int32)}
        want["linear"] = objs["linear"](x)
        want["experts"] = objs["experts"](x, want["ids"])
        want["view"] = objs["view"].tobytes()
        for name in order:
            obj = objs.pop(name)
            if name in ("backend", "file"):
                obj.close()  # an explicit close first: it drops only its own hold
            del obj
            gc.collect()
            for left, o in objs.items():
                _use(left, o, x, want)


def test_closed_objects_refuse_calls(model_file, rng):
    b = kquant.Backend("cpu")
    lin = kquant.Linear.from_gguf(b, model_file, "w")
    x = rng.standard_normal((1, K)).astype(np.float32)
    lin.close()
    with pytest.raises(ValueError, match="closed"):
        lin(x)
    f = kquant.GGUF(model_file)
    f.close()
    with pytest.raises(ValueError, match="closed"):
        kquant.Linear.from_gguf(b, f, "w")
    b.close()
    with pytest.raises(ValueError, match="closed"):
        b.sync()


def test_backend_close_keeps_layers(model_file, rng):
    b = kquant.Backend("cpu")
    lin = kquant.Linear.from_gguf(b, model_file, "w")
    x = rng.standard_normal((2, K)).astype(np.float32)
    before = lin(x)
    with b:
        pass  # leaving the block closes the backend object's hold
    del b
    gc.collect()
    np.testing.assert_array_equal(lin(x), before)


EXIT_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, kquant
    path, how = sys.argv[1], sys.argv[2]
    b = kquant.Backend("cpu")
    f = kquant.GGUF(path)
    lin = kquant.Linear.from_gguf(b, f, "w")
    ex = kquant.Experts.from_gguf(b, f, "e")
    view = f.tensors["w"].data
    y = lin(np.ones((2, lin.cols), np.float32))
    if how == "closed":
        b.close(); f.close()
    elif how == "cycle":
        # Objects held in a reference cycle, freed only by the collector or at exit.
        class Holder: pass
        h = Holder(); h.me = h; h.objs = [b, f, lin, ex, view]
        del b, f, lin, ex, view
    print("ok", float(y.sum()))
""")


@pytest.mark.parametrize("how", ["live", "closed", "cycle"])
def test_exit_with_live_objects(model_file, how):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(kquant.__file__))] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, model_file, how], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok"), r.stdout
    assert r.stderr == "", r.stderr
