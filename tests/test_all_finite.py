"""``all_finite``: the check that every ``fit``, ``evaluate`` and ``predict`` makes of its features.

The Numba twin adds up ``x * 0`` in vectors, split in pieces between the
threads; it must say what ``np.isfinite(x).all()`` says wherever the NaN or
infinity sits: in any piece, in the last numbers past the whole blocks, at
either end; for float32 and float64, and for arrays it hands to NumPy
(other dtypes, non-contiguous views). Runs with ``NUMBA_DISABLE_JIT=1`` too.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnscratch.kernels import elementwise_fast, fast, reference

try:
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import float_dtypes, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
BAD = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(size=st.integers(0, 700), seed=rng_seeds(), dtype=float_dtypes(), data=st.data())
def test_a_single_bad_number_anywhere_is_found(twin, size, seed, dtype, data):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(size) * 1e30).astype(dtype)  # large finite numbers: x * 0 is still 0
    assert twin.all_finite(x) is True
    if size:
        where = data.draw(st.integers(0, size - 1), label="where")
        x[where] = data.draw(st.sampled_from(BAD), label="bad")
        assert twin.all_finite(x) is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_position_of_a_piece_and_of_the_tail(dtype):
    """Sizes around the pieces and the 4-vector blocks: each position once."""
    for size in (1, 31, 32, 33, 8 * 32 - 1, 8 * 32, 8 * 32 + 1, 8 * 32 + 17):
        x = np.ones(size, dtype)
        assert fast.all_finite(x)
        for where in range(size):
            x[where] = BAD[where % 3]
            assert not fast.all_finite(x), (size, where)
            x[where] = 1


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_images_and_what_goes_to_numpy(twin):
    images = np.random.default_rng(0).random((300, 28, 28, 1), dtype=np.float32)  # the parallel compilation
    assert twin.all_finite(images)
    images[299, 27, 27, 0] = np.inf
    assert not twin.all_finite(images)
    assert not twin.all_finite(images[1::2][-2:])  # a view that is not contiguous
    assert twin.all_finite(images[1::2][:-1])
    assert twin.all_finite(np.arange(10))  # integers are finite
    assert twin.all_finite(np.ones((0, 3), np.float32))
    assert not twin.all_finite(np.array([1.0, np.nan], np.float16))


def test_pieces_of_odd_sizes(monkeypatch):
    monkeypatch.setattr(elementwise_fast, "FINITE_PARTS", 3)
    x = np.ones(1000, np.float32)
    x[999] = np.nan
    assert not fast.all_finite(x)
    x[999] = 0
    assert fast.all_finite(x)
