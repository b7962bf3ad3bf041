"""llama.cpp's side of `kq bench-model`, for the same run on the same machine:
prefill 512 and decode 128 tokens/s as `llama-bench -p 512 -n 128` measures
them (random tokens from an empty context; decode one token per call), through
llama-cpp-python (`pip install llama-cpp-python`, which builds llama.cpp from
source, CPU only).

Usage: python3 bench/llama_cpp_model.py MODEL.gguf [--threads N] [--reps R]
Prints the median of R repetitions of each test, with the spread."""
import argparse
import random
import statistics
import sys
import time

try:
    import llama_cpp
except ImportError as e:
    sys.exit("llama-cpp-python is not installed: %s" % e)


def quiet(level, text, user_data):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    a = ap.parse_args()
    cb = llama_cpp.llama_log_callback(quiet)
    llama_cpp.llama_log_set(cb, None)
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=a.prompt + a.gen + 16, n_batch=a.prompt,
                          n_ubatch=a.prompt, n_threads=a.threads, n_threads_batch=a.threads,
                          verbose=False)
    rng = random.Random(1)
    n_vocab = llm.n_vocab()
    pp, tg = [], []
    for rep in range(a.reps + 1):  # the first repetition warms up and is dropped
        toks = [rng.randrange(n_vocab) for _ in range(a.prompt)]
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(toks)
        t1 = time.perf_counter()
        llm.reset()
        t2 = time.perf_counter()
        for _ in range(a.gen):
            llm.eval([rng.randrange(n_vocab)])
        t3 = time.perf_counter()
        if rep:
            pp.append(a.prompt / (t1 - t0))
            tg.append(a.gen / (t3 - t2))
    print("llama.cpp %s (llama-cpp-python %s), %d threads" %
          (a.model, llama_cpp.__version__, a.threads))
    for name, v in (("pp%d" % a.prompt, pp), ("tg%d" % a.gen, tg)):
        print("  %-6s %8.1f tokens/s  (min %.1f, max %.1f over %d)" %
              (name, statistics.median(v), min(v), max(v), len(v)))


if __name__ == "__main__":
    main()
