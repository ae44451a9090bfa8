"""Test-wide settings: the data folder, a fixed float type and library seed per test."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# The suite runs in several processes (pytest-xdist, ``-n`` in pyproject.toml). Numba's cache is
# not safe for processes that compile two signatures of one kernel at the same moment (both may
# claim the same data file), so each worker compiles into a cache folder of its own. This must
# happen before Numba is imported: it reads NUMBA_CACHE_DIR once, then.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(os.environ.get("NUMBA_CACHE_DIR", REPO / ".numba-cache"), _WORKER)

import nnscratch  # noqa: E402  (after the cache folder is chosen)
from nnscratch import kernels  # noqa: E402

# Numba compiles on first use; examples must not be timed.
settings.register_profile("nnscratch", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("nnscratch")

if "NNSCRATCH_DATA" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["NNSCRATCH_DATA"] = str(REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _library_defaults():
    """Every test starts in float32, with the default backend and a fixed library seed."""
    backend = kernels.get_backend()
    nnscratch.set_floatx("float32")
    nnscratch.set_random_seed(1234)
    yield
    nnscratch.set_floatx("float32")
    kernels.set_backend(backend)


@pytest.fixture
def float64():
    """Build layers and models in float64 (for gradient checks)."""
    nnscratch.set_floatx("float64")
    yield
    nnscratch.set_floatx("float32")
