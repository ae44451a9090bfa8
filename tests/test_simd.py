"""The vector operations of ``nnscratch.kernels.simd``: compiled, each does what its plain Python meaning does.

The compiled operations are LLVM instructions written by hand, so a wrong
index, lane order or comparison would not show as a type error: each is
checked against the NumPy function that states its meaning, in float32 and
float64, on generated numbers. Under ``NUMBA_DISABLE_JIT=1`` both sides are
the Python functions (the comparison is then trivial; the kernels' own
tests still run).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from nnscratch.kernels import simd

try:
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import float_dtypes, rng_seeds

PY = simd.PYTHON


@njit
def _compiled_ops(a, b, c, i, out):
    """Every operation once: loads at ``i``, arithmetic, and stores into the rows of ``out``."""
    x, y, z = simd.load(a, i), simd.load(b, i), simd.load(c, i)
    width = out.shape[1]
    simd.store(out, 0 * width, simd.fma(x, y, z))
    simd.store(out, 1 * width, simd.add(x, y))
    simd.store(out, 2 * width, simd.relu(x))
    simd.store(out, 3 * width, simd.broadcast(c[i]))
    for lane in range(width):
        out[4, lane] = simd.lane(y, lane)


def _python_ops(a, b, c, i, width):
    x, y, z = PY["load"](a, i), PY["load"](b, i), PY["load"](c, i)
    return np.stack([PY["fma"](x, y, z), PY["add"](x, y), PY["relu"](x), PY["broadcast"](c[i]),
                     np.array([PY["lane"](y, lane) for lane in range(width)])])


def numbers(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    x[rng.random(size) < 0.2] *= 0  # zeros (and -0.0)
    return x


@given(seed=rng_seeds(), dtype=float_dtypes(), start=st.integers(0, 9))
def test_each_operation_does_what_its_python_meaning_says(seed, dtype, start):
    rng = np.random.default_rng(seed)
    width = simd.lanes(dtype)
    a, b, c = (numbers(rng, 20, dtype) for _ in range(3))
    out = np.full((5, width), np.nan, dtype)
    _compiled_ops(a, b, c, start, out)
    expected = _python_ops(a, b, c, start, width)
    np.testing.assert_array_equal(out[1:], expected[1:])
    # fma rounds once, NumPy's x * y + z twice: the same up to roundings of the size of the terms
    x, y, z = (v[start:start + width].astype(np.float64) for v in (a, b, c))
    bound = 2 * np.finfo(dtype).eps * (np.abs(x * y) + np.abs(z))
    assert np.all(np.abs(out[0] - (x * y + z)) <= bound)
    assert np.all(np.abs(out[0] - expected[0]) <= bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_keeps_nan_and_maps_negative_zero_like_np_maximum(dtype):
    width = simd.lanes(dtype)
    a = np.array([np.nan, -1, -0.0, 0, 2, -np.inf, np.inf, 3] * 2, dtype)[:width]
    out = np.empty((5, width), dtype)
    with np.errstate(invalid="ignore"):     # inf - inf in the other operations
        _compiled_ops(a, a, a, 0, out)
    np.testing.assert_array_equal(out[2], np.maximum(a, 0))
    assert np.isnan(out[2, 0])


def test_lanes_fill_32_bytes():
    assert simd.lanes(np.float32) == 8 and simd.lanes(np.float64) == 4


def test_a_fused_multiply_add_rounds_once():
    """1 + 2^-23 squared minus its rounded square: only a fused multiply-add keeps the 2^-46 term."""
    x = np.full(8, 1 + 2.0 ** -23, np.float32)
    square = np.float32(x[0] * x[0])        # rounded: 1 + 2^-22
    out = np.empty((5, 8), np.float32)
    _compiled_ops(x, x, np.full(8, -square, np.float32), 0, out)
    if hasattr(_compiled_ops, "py_func"):    # compiled: one rounding
        np.testing.assert_array_equal(out[0], np.float32(2.0 ** -46))
    else:                                   # NUMBA_DISABLE_JIT: NumPy's two roundings
        np.testing.assert_array_equal(out[0], 0)
