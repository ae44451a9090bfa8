"""The bias-gradient (column sum) and dropout kernels: twins agree bit for bit, and both are right.

Both kernels replaced NumPy expressions inside the layers (``np.sum(dz, axis=0)``
and the five-pass dropout mask) without changing a trained model, so the
twins are compared with ``np.array_equal``, signed zeros and NaN included,
and against the plain NumPy expressions they replaced.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.kernels import fast, reference

try:
    from tests.strategies import rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
many = settings(max_examples=60, deadline=None)


def same_bits(a, b):
    """Equal dtype, shape and bytes (so -0.0 differs from 0.0 and NaNs must match)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------
# bias_gradient
# ---------------------------------------------------------------------------

@many
@given(rows=st.integers(1, 700), columns=st.integers(1, 70), lead=st.sampled_from([(), (3,), (2, 5)]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=rng_seeds())
def test_bias_gradient_twins_bit_identical_to_numpy_sum(rows, columns, lead, dtype, seed):
    rng = np.random.default_rng(seed)
    # wide dynamic range, so that the order of the additions shows in the last bits
    grad = (rng.standard_normal((*lead, rows, columns)) * 10.0 ** rng.integers(-3, 4, (rows, columns)))
    grad = grad.astype(dtype)
    expected = np.sum(grad.reshape(-1, columns), axis=0)   # what Conv2D and Dense computed before
    for twin in TWINS:
        assert same_bits(twin.bias_gradient(grad), expected), twin.__name__


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bias_gradient_is_the_column_sum(twin):
    grad = np.arange(24, dtype=np.float32).reshape(2, 3, 4)   # 6 rows of 4 columns
    np.testing.assert_array_equal(twin.bias_gradient(grad), [60, 66, 72, 78])
    assert twin.bias_gradient(grad).dtype == np.float32


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bias_gradient_signed_zeros_and_nan_as_numpy(twin):
    grad = np.array([[-0.0, 1.0, np.nan], [-0.0, -1.0, 2.0]], dtype=np.float32)
    db = twin.bias_gradient(grad)
    assert db[0] == 0 and db[1] == 0 and np.isnan(db[2])   # NumPy starts the sum from +0
    assert same_bits(db, np.sum(grad, axis=0))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bias_gradient_of_a_single_column_and_of_no_rows(twin):
    rng = np.random.default_rng(0)
    column = rng.standard_normal((5000, 1)).astype(np.float32)   # NumPy sums one column pairwise
    assert same_bits(twin.bias_gradient(column), np.sum(column, axis=0))
    assert same_bits(twin.bias_gradient(np.zeros((0, 3), np.float32)), np.zeros(3, np.float32))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bias_gradient_rejects_a_scalar(twin):
    with pytest.raises(ValueError, match="at least one axis"):
        twin.bias_gradient(np.float32(1.0))


def test_bias_gradient_ignores_the_thread_count():
    numba = pytest.importorskip("numba")
    grad = np.random.default_rng(1).standard_normal((3001, 37)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            results.append(fast.bias_gradient(grad))
    finally:
        numba.set_num_threads(before)
    assert all(same_bits(r, results[0]) for r in results)


# ---------------------------------------------------------------------------
# dropout_forward
# ---------------------------------------------------------------------------

def old_dropout(x, uniform, rate):
    """The Dropout layer's forward before the kernel existed."""
    keep = uniform >= rate
    mask = keep.astype(x.dtype) / x.dtype.type(1.0 - rate)
    return x * mask, mask


@many
@given(shape=st.lists(st.integers(0, 9), min_size=1, max_size=4).map(tuple),
       rate=st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.9, 0.999]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=rng_seeds())
def test_dropout_twins_bit_identical_to_the_old_expression(shape, rate, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    uniform = rng.random(shape, dtype=np.float32)
    want_y, want_mask = old_dropout(x, uniform, rate)
    for twin in TWINS:
        y, mask = twin.dropout_forward(x, uniform, rate)
        assert same_bits(y, want_y) and same_bits(mask, want_mask), twin.__name__


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_dropout_compares_the_rate_in_the_draws_dtype(twin):
    # 0.1 is not a float32; the float32 draw nearest to it must count as ">= rate"
    # (NumPy compares a float32 array with float32(0.1))
    uniform = np.array([np.float32(0.1), np.nextafter(np.float32(0.1), np.float32(0))], dtype=np.float32)
    x = np.ones(2, dtype=np.float32)
    y, mask = twin.dropout_forward(x, uniform, 0.1)
    np.testing.assert_array_equal(mask, [np.float32(1) / np.float32(0.9), 0])
    np.testing.assert_array_equal(y, mask)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_dropout_zeroes_and_scales(twin):
    x = np.array([[1.0, -2.0, np.nan, 4.0]], dtype=np.float32)
    uniform = np.array([[0.9, 0.1, 0.05, 0.5]], dtype=np.float32)
    y, mask = twin.dropout_forward(x, uniform, 0.5)
    np.testing.assert_array_equal(mask, [[2, 0, 0, 2]])
    assert y[0, 0] == 2 and y[0, 3] == 8
    assert y[0, 1] == 0 and np.signbit(y[0, 1])   # -2 * 0 = -0, as NumPy
    assert np.isnan(y[0, 2])                      # NaN * 0 stays NaN: nothing is hidden


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_dropout_rejects_bad_arguments(twin):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="do not match"):
        twin.dropout_forward(x, np.ones((3, 2), np.float32), 0.5)
    with pytest.raises(ValueError, match="rate"):
        twin.dropout_forward(x, np.ones((2, 3), np.float32), 1.0)
