"""Shared fixtures of the kquant package tests.

The tests import kquant from this source tree (python/) against the
library that KQ_LIB names (ctest sets it to the build's libkquant.so). The
seed comes from KQ_TEST_SEED or is fresh; it is printed in the header and
in every failure message, so a failure can be rerun."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

_seed_env = os.environ.get("KQ_TEST_SEED")
SEED = int(_seed_env, 0) if _seed_env else int.from_bytes(os.urandom(4), "little")


def pytest_report_header(config):
    return "kquant tests: KQ_TEST_SEED=%d, KQ_LIB=%s" % (SEED, os.environ.get("KQ_LIB"))


@pytest.fixture
def rng(request):
    """A generator seeded from the run's seed and the test's name, so each
    test draws the same values whatever runs before it."""
    import numpy as np
    import zlib
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture
def tmp_gguf(tmp_path):
    return str(tmp_path / "t.gguf")
