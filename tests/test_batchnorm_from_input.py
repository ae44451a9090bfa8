"""BatchNormalization keeps its input, not ``xhat``: the same numbers, bit for bit, with one array less.

* ``batchnorm_forward_train(..., keep_xhat=False)`` returns ``None`` for
  ``xhat`` and otherwise what ``keep_xhat=True`` returns;
* ``batchnorm_backward_from_input(grad, x, mean, ...)`` equals
  ``batchnorm_backward(grad, xhat, ...)`` with the forward's ``xhat``, bit for
  bit, with and without the fused ReLU, in both twins, and the twins agree;
* the layer no longer stores an ``xhat``, and its gradients are still those of
  the formula (the layer's gradient checks live in the layer tests).

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnscratch.kernels import fast, reference
from nnscratch.layers import BatchNormalization

try:
    from tests.grad_strategies import bn_shapes, rng_seeds
    from tests.kernel_helpers import batchnorm_inputs
    from tests.strategies import float_dtypes
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import bn_shapes, rng_seeds
    from kernel_helpers import batchnorm_inputs
    from strategies import float_dtypes

TWINS = [reference, fast]


def _inputs(rng, shape, dtype):
    x, gamma, beta = batchnorm_inputs(rng, shape, dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    return x.reshape(-1, shape[-1]), gamma, beta, grad.reshape(-1, shape[-1])


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@given(data=st.data(), dtype=float_dtypes(), seed=rng_seeds(), relu=st.booleans())
def test_backward_from_input_equals_backward_from_xhat_bit_for_bit(twin, data, dtype, seed, relu):
    shape = data.draw(bn_shapes(data.draw(st.sampled_from([2, 4]))), label="shape")
    x, gamma, beta, grad = _inputs(np.random.default_rng(seed), shape, dtype)

    y, xhat, mean, var, inv_std = twin.batchnorm_forward_train(x, gamma, beta, 1e-3, relu=relu)
    lean = twin.batchnorm_forward_train(x, gamma, beta, 1e-3, relu=relu, keep_xhat=False)
    assert lean[1] is None
    for ours, theirs in zip(lean[:1] + lean[2:], (y, mean, var, inv_std)):
        np.testing.assert_array_equal(ours, theirs)

    expected = twin.batchnorm_backward(grad, xhat, gamma, inv_std, beta=beta, relu=relu)
    result = twin.batchnorm_backward_from_input(grad, x, mean, gamma, inv_std, beta=beta, relu=relu)
    for ours, theirs in zip(result, expected):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)


@given(data=st.data(), dtype=float_dtypes(), seed=rng_seeds(), relu=st.booleans())
def test_backward_from_input_twins_agree(data, dtype, seed, relu):
    shape = data.draw(bn_shapes(data.draw(st.sampled_from([2, 4]))), label="shape")
    x, gamma, beta, grad = _inputs(np.random.default_rng(seed), shape, dtype)
    _, _, mean, _, inv_std = reference.batchnorm_forward_train(x, gamma, beta, 1e-3)
    expected = reference.batchnorm_backward_from_input(grad, x, mean, gamma, inv_std, beta=beta, relu=relu)
    result = fast.batchnorm_backward_from_input(grad, x, mean, gamma, inv_std, beta=beta, relu=relu)
    m = x.shape[0]
    xhat = np.abs((x - mean) * inv_std).max()
    g = np.abs(grad).max()
    scales = [np.abs(gamma * inv_std).max() * g * (2 + xhat ** 2), m * g * xhat, m * g]
    rtol = 1e-9 if dtype == np.float64 else 4e-4
    for got, want, scale in zip(result, expected, scales):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_backward_from_input_rejects_a_mismatched_input(twin):
    with pytest.raises(ValueError, match="shape"):
        twin.batchnorm_backward_from_input(np.ones((6, 3)), np.ones((5, 3)), np.zeros(3), np.ones(3), np.ones(3))


def test_the_layer_keeps_its_input_not_xhat():
    rng = np.random.default_rng(0)
    layer = BatchNormalization()
    layer.build((4, 4, 3))
    x = rng.standard_normal((5, 4, 4, 3)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert not hasattr(layer, "_xhat")
    assert np.shares_memory(layer._x2d, x)  # a view of the input, no new array
    grad = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(grad)
    # the formula, written out in float64
    x2 = x.reshape(-1, 3).astype(np.float64)
    g2 = grad.reshape(-1, 3).astype(np.float64)
    xhat = (x2 - x2.mean(0)) / np.sqrt(x2.var(0) + layer.epsilon)
    m = x2.shape[0]
    want = (m * g2 - g2.sum(0) - xhat * (g2 * xhat).sum(0)) / (m * np.sqrt(x2.var(0) + layer.epsilon))
    np.testing.assert_allclose(dx.reshape(-1, 3), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.gamma.grad, (g2 * xhat).sum(0), rtol=1e-4, atol=1e-5)
