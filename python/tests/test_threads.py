"""Forwards from several Python threads: the GIL is released during the C
call (ctypes), and results are the same as from one thread."""
import threading
import time

import numpy as np

import kquant


def test_threads_same_results(rng):
    b = kquant.Backend("cpu")
    k, n = 1024, 96
    w = rng.standard_normal((n, k)).astype(np.float32)
    lin = kquant.Linear.load(b, "q4_K", kquant.quantize(w, "q4_K"), n, k)
    ex = kquant.Experts.load(b, "q8_0", kquant.quantize(
        rng.standard_normal((4 * n, k)).astype(np.float32), "q8_0"), 4, n, k)
    xs = [rng.standard_normal((int(rng.integers(1, 20)), k)).astype(np.float32) for _ in range(8)]
    ids = [rng.integers(0, 4, (x.shape[0], 2)).astype(np.int32) for x in xs]
    want = [(lin(x), ex(x, i)) for x, i in zip(xs, ids)]
    errors = []

    def work(t):
        try:
            for rep in range(10):
                j = (t + rep) % len(xs)
                if not np.array_equal(lin(xs[j]), want[j][0]) or \
                        not np.array_equal(ex(xs[j], ids[j]), want[j][1]):
                    errors.append("thread %d rep %d input %d differs" % (t, rep, j))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("thread %d: %r" % (t, e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_forward_releases_the_gil(rng):
    """A long forward (cpu-ref, one thread) runs in a worker while the main
    thread counts: with the GIL held for the call no Python code could run,
    so main-thread ticks in the middle half of the call prove it released."""
    b = kquant.Backend("cpu-ref:threads=1")
    k, n = 4096, 256
    lin = kquant.Linear.load(b, "q6_K", kquant.quantize(
        rng.standard_normal((n, k)).astype(np.float32), "q6_K"), n, k)
    x = rng.standard_normal((1, k)).astype(np.float32)
    t0 = time.perf_counter()
    lin(x)
    one = time.perf_counter() - t0
    m = max(1, int(0.4 / max(one, 1e-6)))  # a call of about 0.4 s
    x = rng.standard_normal((m, k)).astype(np.float32)
    span = {}

    def work():
        span["start"] = time.perf_counter()
        lin(x)
        span["end"] = time.perf_counter()

    ticks = []
    th = threading.Thread(target=work)
    th.start()
    while th.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    th.join()
    s, e = span["start"], span["end"]
    mid = [t for t in ticks if s + 0.25 * (e - s) <= t <= s + 0.75 * (e - s)]
    assert e - s > 0.05, "the call was too short to tell (%.3f s)" % (e - s)
    assert mid, "no main-thread tick during the middle of a %.3f s call" % (e - s)
