"""The ctest entry of the package's unit tests (cmake/python_pkg.cmake):
runs pytest over python/tests against the build's libkquant (KQ_LIB).
Exits 77 ("skipped" to ctest) after saying why when pytest or numpy is
missing; tests that need gguf-py or torch skip one by one, with reasons
listed by -rs."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    for mod, why in (("pytest", "pip install pytest (tests/requirements.txt lists it)"),
                     ("numpy", "pip install numpy")):
        try:
            __import__(mod)
        except ImportError:
            print("SKIP: python package %s is not installed (%s)" % (mod, why))
            return 77
    if not os.environ.get("KQ_LIB"):
        print("KQ_LIB must name the built libkquant.so (ctest sets it)")
        return 1
    import pytest
    # No cache folder in the source tree; tmp files under the build's test-tmp.
    args = ["-q", "-rs", "-p", "no:cacheprovider", HERE]
    tmp = os.environ.get("KQ_TEST_TMP")
    if tmp:
        args += ["--basetemp", os.path.join(tmp, "pytest-%d" % os.getpid())]
    rc = pytest.main(args + sys.argv[1:])
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
