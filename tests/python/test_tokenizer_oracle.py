"""kquant's tokenizers (src/model/tokenizer*.c, through the tok_cli program
built beside kq) against llama.cpp itself (llama-cpp-python 0.3.36), token
for token.

Vocabularies: Gemma 3 270M (SentencePiece-style, 262k tokens; from
tests/fetch_gemma.py) and llama.cpp's own vocab-only files llama-spm,
llama-bpe (Llama 3), qwen2 and gpt-2, taken from the llama-cpp-python sdist
(pip download, cached under the build folder; KQ_LLAMA_SDIST may name a copy).

Also three small synthetic vocabularies written here with gguf-py (SPM with
and without a space prefix, byte-level BPE) whose token texts exercise
llama.cpp's rules for end-of-generation, FIM and other special tokens, empty
texts and odd token types.

For each: fixed texts (ASCII, accents, CJK, emoji, code, runs of spaces and
newlines, special-token texts, the empty string, invalid UTF-8), llama.cpp's
own test texts for these vocabularies, and fresh seeded random texts mixing
all of those; each under add_special and parse_special on and off. Checks:
the ids equal llama.cpp's; every token's piece (special shown and hidden)
equals llama.cpp's llama_token_to_piece; BOS, EOS and the end-of-generation
set equal llama.cpp's. Exact equality everywhere: there is no tolerance in
tokenization.

Texts llama.cpp itself cannot tokenize (it throws on UTF-8 sequences past
U+10FFFF) are left out of the random texts."""
import ctypes
import os
import random
import subprocess
import sys
import tarfile

# The sanitizer run (make test-sanitize) preloads libasan into python3 for
# the tests that load libkquant in this process. This one reaches kquant only
# through the tok_cli program, which carries its own sanitizer runtime, while
# llama.cpp throws C++ exceptions (on invalid UTF-8, say) that the preloaded
# runtime's __cxa_throw interceptor cannot resolve in a python process: the
# python side runs without the preload.
if "libasan" in os.environ.get("LD_PRELOAD", ""):
    _env = dict(os.environ)
    del _env["LD_PRELOAD"]
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import kqlib  # noqa: E402

try:
    import llama_cpp  # noqa: E402
except ImportError as e:
    kqlib.skip("llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36): %s" % e)



@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):
    """llama.cpp's warnings (double BOS, ...) would drown the report."""


llama_cpp.llama_log_set(_quiet, ctypes.c_void_p())

SDIST_VERSION = "0.3.36"
VOCABS = ["llama-spm", "llama-bpe", "qwen2", "gpt-2"]
N_RANDOM = int(os.environ.get("KQ_TOK_N_RANDOM", "150"))  # random texts per vocabulary

SEED = kqlib.seed()
rng = random.Random(SEED)

kq_bin = os.environ.get("KQ_BIN")
if not kq_bin:
    print("KQ_BIN is not set (run through ctest)")
    sys.exit(1)
BUILD = os.path.dirname(kq_bin)
TOK_CLI = os.path.join(BUILD, "tok_cli")
if not os.path.exists(TOK_CLI):
    print("tok_cli is not built beside kq (%s)" % TOK_CLI)
    sys.exit(1)


# ---------------------------------------------------------------- files

def sdist_path():
    """The llama-cpp-python sdist: KQ_LLAMA_SDIST, the cache, or pip download."""
    given = os.environ.get("KQ_LLAMA_SDIST")
    if given and os.path.exists(given):
        return given, None
    cache = os.path.join(BUILD, "tokenizer-vocabs")
    os.makedirs(cache, exist_ok=True)
    name = "llama_cpp_python-%s.tar.gz" % SDIST_VERSION
    path = os.path.join(cache, name)
    if os.path.exists(path):
        return path, None
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-d", cache, "llama-cpp-python==" + SDIST_VERSION]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=1200)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "pip download failed: %s" % e
    if r.returncode != 0 or not os.path.exists(path):
        tail = (r.stdout.strip().splitlines() or [""])[-1]
        return None, "pip download of the llama-cpp-python sdist failed (offline?): " + tail
    return path, None


def vocab_files():
    """{name: (gguf path, llama.cpp's test texts)} for VOCABS, or a reason."""
    cache = os.path.join(BUILD, "tokenizer-vocabs")
    os.makedirs(cache, exist_ok=True)
    want = {v: os.path.join(cache, "ggml-vocab-%s.gguf" % v) for v in VOCABS}
    if not all(os.path.exists(p) and os.path.exists(p + ".inp") for p in want.values()):
        sdist, reason = sdist_path()
        if not sdist:
            return None, reason
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                base = os.path.basename(m.name)
                for v, p in want.items():
                    if base in (os.path.basename(p), os.path.basename(p) + ".inp"):
                        data = tar.extractfile(m).read()
                        with open(os.path.join(cache, base), "wb") as f:
                            f.write(data)
        if sdist.startswith(cache):
            os.remove(sdist)  # 76 MB; the few files taken from it stay
    out = {}
    for v, p in want.items():
        if not os.path.exists(p):
            return None, "the sdist has no %s" % os.path.basename(p)
        with open(p + ".inp", "rb") as f:
            texts = f.read().decode("utf-8").split("\n__ggml_vocab_test__\n")
        out[v] = (p, [t.encode("utf-8") for t in texts])
    return out, None


# ---------------------------------------------------------------- texts

FIXED = [
    "", " ", "  ", "   ", "\n", "\n\n\n", "\t", " \t\n \r\n", "\r\n\r\n",
    "Hello world", " Hello world", "Hello World!", "The capital of France is",
    "café naïve résumé Ångström façade", "Ünïcödé ÀÉÎÕÜ ß ø œ",
    "中文测试，你好世界。", "日本語のテキストです", "한국어 텍스트", "Привет, мир!", "مرحبا بالعالم",
    "Γειά σου Κόσμε", "हिन्दी पाठ", "ไทย ภาษา",
    "🦙🦙 llama 🚀✨👍🏽", "👨‍👩‍👧‍👦 family", "e\u0301 n\u0303 combining",
    "a\u200bb\u200dc zero width", "a\u00a0b\u3000c\u2009d odd spaces", "\u2581 lower one eighth block",
    "def f(x):\n    return x**2  # square\n\n\tif (a && b) { c++; }\n",
    'int main(void) { printf("%d\\n", 42); return 0; }',
    "for i in range(10):\n        print(i)\n", "<html><body><p class=\"x\">hi</p></body></html>",
    "3.14159 1234567890 12,345.67 0x1F 1e-9 007", "I'm you're we've they'll he'd She'S 'tis IT'LL",
    "a  b   c    d     e", "   leading and trailing   ", "line1\nline2\r\nline3\n\n\nline4",
    "\n\n  \n\t\t x", "word " * 60, "a" * 400, " " * 100, "\n" * 40, "!!!???...,,,;;;",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<s>text</s> <s> </s>", "<bos><eos><pad><unk><mask>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
    "<|endoftext|>hello<|endoftext|>", "<unused0><unused12>", "x<start_of_image>y",
    # Letters and digits assigned in Unicode 15 (CJK Extension H, Kawi) and
    # 15.1 (CJK Ext. I); the Kawi digits after a space tokenize differently
    # for llama-bpe with a Unicode 14 table.
    "a\U00031350b \U00031351\U00031352 x\U00011F04\U00011F05y \U0002EBF0z",
    " \U00011F50\U00011F51", "1\U00011F50\U00011F51\U00011F52 12\U00011F5034",
]
INVALID = [b"\xff\xfe abc \xc3\x28 \xe2\x82 \xf0\x9f\x98", b"\x80\x80", b"caf\xc3",
           b"\xed\xa0\x80 surrogate", b"\xc0\x80 overlong", b"\xfe\xff\xfe", b"ok\xe2\x96"]

ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            + list(" " * 12) + ["\n", "\n\n", "\t", "\r\n", "  ", "    "]
            + list(".,;:!?'\"()[]{}<>/\\|_-+=*&^%$#@~`")
            + ["é", "ü", "ñ", "ß", "Å", "ç", "中", "文", "日", "本", "語", "한", "я", "ж", "α", "ω",
               "🦙", "🚀", "✨", "👍🏽", "😀", "\u0301", "\u00a0", "\u3000", "\u2581", "٣", "Ⅳ",
               "'s", "'re", "'LL", "'T"])


def random_text(specials):
    parts = []
    for _ in range(rng.randint(0, 30)):
        r = rng.random()
        if r < 0.08 and specials:
            parts.append(rng.choice(specials))
        elif r < 0.12:
            # Bytes that need not be UTF-8; no lead byte 0xF4-0xF7, whose
            # sequences past U+10FFFF make llama.cpp throw.
            parts.append(bytes(b if not 0xF4 <= b <= 0xF7 else 0xFF
                               for b in rng.randbytes(rng.randint(1, 4))))
        elif r < 0.3:
            parts.append(rng.choice(["the", "quick", "brown", "fox", "Hello", "world", "llama",
                                     "tokenizer", "12345", "3.14"]).encode())
        else:
            parts.append(rng.choice(ALPHABET).encode("utf-8"))
    return b"".join(parts)


# ---------------------------------------------------------------- runs

def kq_tokenize(path, texts, add, parse):
    inp = "".join(t.hex() + "\n" for t in texts)
    r = subprocess.run([TOK_CLI, path, "tokenize", str(add), str(parse)], input=inp,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if r.returncode != 0:
        raise AssertionError("tok_cli tokenize failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    lines = r.stdout.split("\n")[:len(texts)]
    return [ln if ln.startswith("ERR") else [int(x) for x in ln.split()] for ln in lines]


def kq_pieces(path, show):
    r = subprocess.run([TOK_CLI, path, "pieces", str(show)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    if r.returncode != 0:
        raise AssertionError("tok_cli pieces failed: %s" % r.stderr[-500:])
    return [bytes.fromhex(x) for x in r.stdout.split("\n")[:-1]]


def kq_info(path):
    r = subprocess.run([TOK_CLI, path, "info"], stdout=subprocess.PIPE, text=True, timeout=600)
    info = {}
    for ln in r.stdout.splitlines():
        k, *v = ln.split()
        info[k] = [int(x) for x in v]
    return info


def llama_piece(vocab, tid, special, buf):
    n = llama_cpp.llama_token_to_piece(vocab, tid, buf, len(buf), 0, special)
    if n < 0:
        raise AssertionError("piece of %d longer than %d bytes" % (tid, len(buf)))
    return bytes(buf[:n])


failures = 0


def report(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def check_vocab(name, path, extra_texts):
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    buf = (ctypes.c_char * 4096)()

    # BOS, EOS, end of generation.
    info = kq_info(path)
    eog = [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    want = {"n_vocab": [n_vocab], "bos": [llama_cpp.llama_vocab_bos(vocab)],
            "eos": [llama_cpp.llama_vocab_eos(vocab)], "eog": eog}
    report(info == want, "%s: n_vocab, BOS, EOS and EOG ids (kquant %s, llama.cpp %s)"
           % (name, {k: v[:8] for k, v in info.items()}, {k: v[:8] for k, v in want.items()}))

    # Pieces of every token, special tokens hidden and shown.
    for show in (0, 1):
        ours = kq_pieces(path, show)
        bad = [i for i in range(n_vocab) if ours[i] != llama_piece(vocab, i, bool(show), buf)]
        report(len(ours) == n_vocab and not bad,
               "%s: pieces of all %d tokens, show_special %d: %d differ%s"
               % (name, n_vocab, show, len(bad),
                  "" if not bad else " (first %s: ours %r, llama.cpp %r)"
                  % (bad[0], ours[bad[0]], llama_piece(vocab, bad[0], bool(show), buf))))
        if show == 1:
            hidden = kq_pieces(path, 0)
            specials = [ours[i] for i in range(n_vocab) if ours[i] and not hidden[i]]

    texts = [t.encode("utf-8") for t in FIXED] + INVALID + extra_texts
    picks = rng.sample(specials, min(len(specials), 40)) if specials else []
    texts += [random_text(picks) for _ in range(N_RANDOM)]

    for add, parse in ((0, 0), (1, 0), (0, 1), (1, 1)):
        ours = kq_tokenize(path, texts, add, parse)
        bad = []
        for t, got in zip(texts, ours):
            try:
                want_ids = llm.tokenize(t, add_bos=bool(add), special=bool(parse))
            except Exception as e:  # noqa: BLE001 - llama.cpp's own failure
                want_ids = "llama.cpp raised %s" % e
            if got != want_ids:
                bad.append((t, got, want_ids))
        for t, got, want_ids in bad[:3]:
            print("  text %r\n    kquant    %s\n    llama.cpp %s" % (t[:120], got, want_ids))
        report(not bad, "%s: %d texts, add_special %d parse_special %d: %d differ"
               % (name, len(texts), add, parse, len(bad)))

    # Detokenizing: our pieces joined give llama.cpp's detokenization of the
    # same ids (llama-cpp-python's detokenize without its BOS-space rule).
    ours = kq_tokenize(path, texts, 0, 0)
    pieces = kq_pieces(path, 0)
    bad = 0
    roundtrip = 0
    for t, ids in zip(texts, ours):
        if isinstance(ids, str):
            continue
        mine = b"".join(pieces[i] for i in ids)
        theirs = b"".join(llama_piece(vocab, i, False, buf) for i in ids)
        bad += mine != theirs
        roundtrip += mine == t
    report(bad == 0, "%s: detokenized %d texts: %d differ from llama.cpp; %d give back their text"
           % (name, len(texts), bad, roundtrip))
    del llm


# ---------------------------------------------------------------- synthetic

def write_synthetic(path, kind, space_prefix):
    """A vocab-only file of `kind` ("llama" or "gpt2") whose token texts hit
    llama.cpp's detection rules: end-of-generation texts of normal type (made
    control), FIM texts, "<|end|>" beside "<|return|>" and "<|call|>" (made
    user-defined), "</s>" beside "<|tool_response>" (made normal), gpt-oss's
    "<|channel|>" (made user-defined), an empty text, undefined and unused
    token types; then letters and random words with random scores."""
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(8)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    toks, scores, types = [], [], []

    def add(t, ty=1, sc=0.0):
        if t not in toks or t == "":
            toks.append(t)
            scores.append(sc)
            types.append(ty)

    add("<unk>", 2)
    add("<s>", 3)
    add("</s>", 3)
    if kind == "llama":
        for b in range(256):
            add("<0x%02X>" % b, 6)
        letters = ["a", "b", "c", "d", " ", "\u2581"]
        sp = "\u2581"
    else:
        for b in range(256):
            add(gpt2_char(b))
        letters = ["a", "b", "c", "d", "\u0120"]
        sp = "\u0120"
    for t, ty in [("<|return|>", 3), ("<|call|>", 1), ("<|end|>", 3), ("<|tool_response>", 3),
                  ("<|eot_id|>", 1), ("<|im_end|>", 3), ("<|fim_prefix|>", 1), ("<PAD>", 1),
                  ("<|file_sep|>", 4), ("<|repo_name|>", 1), ("<|channel|>", 1),
                  ("<|message|>", 3), ("<ud>", 4), ("<weird>", 0), ("<gone>", 5), ("", 1),
                  ("<unused7>", 3)]:
        add(t, ty)
    for l in letters:
        add(l, 1, -5.0)
    while len(toks) < 600:
        word = "".join(rng.choice(letters[:4] + [sp]) for _ in range(rng.randint(2, 5)))
        add(word, 1, -float(rng.randint(0, 6)))
    w.add_tokenizer_model(kind)
    w.add_tokenizer_pre("qwen2" if kind == "gpt2" else "default")
    w.add_token_list(toks)
    if kind == "llama":
        w.add_token_scores(scores)
    else:
        # Merges of random adjacent letter pairs, each result a token.
        merges = []
        for t in toks[300:]:
            if len(t) >= 2 and all(ch in letters for ch in t):
                merges.append("%s %s" % (t[0], t[1:]) if t[1:] in toks else None)
        merges = [m for m in merges if m]
        w.add_token_merges(merges)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(kind == "llama")
    w.add_add_space_prefix(space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gpt2_char(b):
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in keep:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in keep].index(b))


def check_synthetic():
    tmp = os.environ.get("KQ_TEST_TMP", "/tmp")
    for kind, prefix in (("llama", True), ("llama", False), ("gpt2", False)):
        path = os.path.join(tmp, "tok_synth_%s_%d_%d.gguf" % (kind, prefix, os.getpid()))
        write_synthetic(path, kind, prefix)
        try:
            check_vocab("synthetic %s%s" % (kind, " (space prefix)" if prefix else ""), path, [])
        finally:
            os.remove(path)


files, reason = vocab_files()
checked = 0
if files is None:
    print("SKIP (llama.cpp vocabularies): " + reason)
else:
    for name in VOCABS:
        path, inp = files[name]
        check_vocab(name, path, inp)
        checked += 1

import fetch_gemma  # noqa: E402
gemma, why = fetch_gemma.fetch()
if gemma is None:
    print("SKIP (Gemma 3): " + why)
else:
    check_vocab("gemma3", gemma, [])
    checked += 1

try:
    import gguf  # noqa: F401
    check_synthetic()
    checked += 3
except ImportError:
    print("SKIP (synthetic vocabularies): python package gguf is not installed")

if checked == 0:
    kqlib.skip("no vocabulary could be obtained")
print("test_tokenizer_oracle: %d vocabularies, %d failed checks (seed %d)" % (checked, failures, SEED))
sys.exit(1 if failures else 0)
