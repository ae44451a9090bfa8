"""The softmax kernel (``bias_softmax``): twins agree, rows are probabilities, the logits are kept.

``bias_softmax(z, b)`` adds ``b`` to ``z`` in place (``z`` becomes the logits a
softmax layer keeps for the fused cross-entropy gradient) and returns the
softmax of each row of the last axis as a new array. Checked here:

* property-based agreement of the twins (float32 and float64, 2-D and 3-D,
  with and without a bias, the serial and the parallel compilation), against
  a float64 softmax computed another way;
* huge logits never overflow; NaN and infinity spread through their row
  only, as NumPy's ``max`` and ``exp`` make them;
* without a bias ``z`` is never written (a read-only array is fine); a
  strided ``z`` gets its logits; bad arguments are rejected.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnscratch.kernels import elementwise_fast, fast, reference, workspace

try:
    from tests.kernel_helpers import module_value
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import module_value
    from strategies import float_dtypes, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]


def exact_softmax(logits):
    """Softmax in float64 through log-sum-exp, a different route from the kernels'."""
    z = logits.astype(np.float64)
    top = z.max(axis=-1, keepdims=True)
    return np.exp(z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True)))


@given(shape=st.sampled_from([(1, 1), (5, 10), (3, 4, 7), (64, 3), (2, 1, 2)]), seed=rng_seeds(),
       dtype=float_dtypes(), scale=st.sampled_from([0.1, 5.0, 300.0]), with_bias=st.booleans(),
       serial_below=st.sampled_from([0, workspace.SERIAL_BELOW]))
def test_twins_agree_and_rows_are_probabilities(shape, seed, dtype, scale, with_bias, serial_below):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * scale).astype(dtype)
    bias = (rng.standard_normal(shape[-1]) * scale).astype(dtype) if with_bias else None
    logits = z + bias if with_bias else z.copy()
    outputs = []
    for twin in TWINS:
        work = z.copy()
        with module_value(workspace, "SERIAL_BELOW", serial_below):
            y = twin.bias_softmax(work, bias)
        np.testing.assert_array_equal(work, logits)  # z became the logits, the same bits in both twins
        assert y.shape == shape and y.dtype == dtype
        outputs.append(y)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    for y in outputs:
        np.testing.assert_allclose(y, exact_softmax(logits), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=tolerance)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_never_overflow(twin, dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e4, 3e4, -3e4]], dtype=dtype)
    y = twin.bias_softmax(z, None)
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_nan_and_infinity_spread_through_their_row_only(twin):
    z = np.array([[1, np.nan, 2], [np.inf, 1, 2], [0, 1, 2], [-np.inf, 0, 0]], np.float32)
    with np.errstate(invalid="ignore"):
        y = twin.bias_softmax(z, None)
    assert np.isnan(y[:2]).all()
    np.testing.assert_allclose(y[2], exact_softmax(z[2]), rtol=1e-6)
    np.testing.assert_allclose(y[3], [0, 0.5, 0.5], rtol=1e-6)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_without_a_bias_z_is_only_read(twin):
    z = np.arange(12, dtype=np.float32).reshape(3, 4)
    z.flags.writeable = False
    y = twin.bias_softmax(z, None)
    np.testing.assert_allclose(y, exact_softmax(z), rtol=1e-6)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_strided_z_gets_its_logits(twin):
    base = np.random.default_rng(3).standard_normal((6, 8))
    z = base.T[:, ::2]  # neither C- nor F-contiguous
    expected_logits = z + 1.5
    y = twin.bias_softmax(z, np.full(3, 1.5))
    np.testing.assert_array_equal(z, expected_logits)
    np.testing.assert_allclose(y, exact_softmax(expected_logits), rtol=1e-12)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="float32 or float64"):
        fast.bias_softmax(np.ones((2, 3), np.int64), None)
    with pytest.raises(ValueError, match="does not broadcast along the last axis"):
        fast.bias_softmax(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match="float32 or float64"):
        fast.bias_softmax(np.float64(1.0), None)
    frozen = np.ones((2, 3))
    frozen.flags.writeable = False
    for twin in TWINS:
        with pytest.raises(ValueError, match="read-only"):
            twin.bias_softmax(frozen, np.ones(3))


def test_the_kernel_is_the_one_the_twin_runs():
    assert fast.bias_softmax is elementwise_fast.bias_softmax
