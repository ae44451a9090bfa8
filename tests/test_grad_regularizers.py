"""Gradient checks of weight regularizers on Dense and Conv2D, in float64.

:func:`nnscratch.gradcheck.check_layer` and :func:`check_model` add every
layer's regularization penalty to the projected loss, and the layer's
``add_regularization_gradients`` to backward's gradients, so these checks
cover the penalty's gradient together with the layer's own. L1 has a kink at
0: the weights are kept away from 0 (``kernel_values``, ``away_from_zero``).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import regularizers
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import Conv2D, Dense, Flatten

try:
    from tests.grad_strategies import (STEP, TOLERANCE, away_from_zero, batch_sizes, feature_sizes, float64_floatx,
                                       kernel_values, layer_conv_geometry, penalties, rng_seeds)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (STEP, TOLERANCE, away_from_zero, batch_sizes, feature_sizes, float64_floatx,
                                 kernel_values, layer_conv_geometry, penalties, rng_seeds)


def penalty_gradient(regularizer, w):
    """``l1 * sign(w) + 2 * l2 * w`` from the regularizer's factors (0 for None)."""
    if regularizer is None:
        return np.zeros_like(w)
    config = regularizer.get_config()
    return config.get("l1", 0.0) * np.sign(w) + 2 * config.get("l2", 0.0) * w


def assert_gradients_match(report):
    assert report.max_error < TOLERANCE, f"\n{report}"


@settings(max_examples=15)
@given(n=batch_sizes(), features=feature_sizes(), units=st.integers(1, 5), kernel_reg=penalties(),
       bias_reg=st.none() | penalties(), activation=st.sampled_from(["linear", "tanh", "softmax"]), seed=rng_seeds())
def test_dense_with_regularizers(n, features, units, kernel_reg, bias_reg, activation, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation=activation, kernel_regularizer=kernel_reg, bias_regularizer=bias_reg)
        layer.build((features,))
    kernel, bias = kernel_values(rng, (features, units), features), away_from_zero(rng, units, 0.01)
    layer.set_weights([kernel, bias])
    x = rng.standard_normal((n, features))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert_gradients_match(report)
    # the checked gradients are backward's plus the penalty's: the unregularized layer's plus dR/dw
    with float64_floatx():
        plain = Dense(units, activation=activation)
        plain.build((features,))
    plain.set_weights([kernel, bias])
    check_layer(plain, x=x, seed=seed % 1000, h=STEP)
    np.testing.assert_allclose(layer.kernel.grad, plain.kernel.grad + penalty_gradient(kernel_reg, kernel),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, plain.bias.grad + penalty_gradient(bias_reg, bias),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=15)
@given(geom=layer_conv_geometry(), filters=st.integers(1, 3), kernel_reg=penalties(), bias_reg=penalties(),
       seed=rng_seeds())
def test_conv2d_with_regularizers(geom, filters, kernel_reg, bias_reg, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Conv2D(filters, (geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding,
                       activation="tanh", kernel_regularizer=kernel_reg, bias_regularizer=bias_reg)
        layer.build(geom.x_shape[1:])
    layer.set_weights([kernel_values(rng, (geom.kh, geom.kw, geom.c, filters), geom.kh * geom.kw * geom.c),
                       away_from_zero(rng, filters, 0.01)])
    report = check_layer(layer, x=rng.standard_normal(geom.x_shape), seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input", "kernel", "bias"]
    assert_gradients_match(report)


@settings(max_examples=10)
@given(seed=rng_seeds(), frozen=st.booleans())
def test_model_with_regularizers_and_a_frozen_layer(seed, frozen):
    """check_model sums every layer's penalty; a frozen layer's penalty is left out (as Keras) on both sides."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        model = nnscratch.Sequential([
            nnscratch.Input((5, 5, 2)),
            Conv2D(3, 3, activation="tanh", kernel_regularizer=regularizers.L1L2(0.3, 0.2), bias_regularizer="l1"),
            Flatten(),
            Dense(4, activation="softmax", kernel_regularizer=regularizers.L2(0.5), bias_regularizer="l2"),
        ])
    conv, dense = model.layers[0], model.layers[2]
    conv.set_weights([kernel_values(rng, (3, 3, 2, 3), 18), away_from_zero(rng, 3, 0.01)])
    dense.set_weights([kernel_values(rng, (27, 4), 27), away_from_zero(rng, 4, 0.01)])
    conv.trainable = not frozen
    report = check_model(model, rng.standard_normal((3, 5, 5, 2)), seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks][1:] == [f"{conv.name}/kernel", f"{conv.name}/bias",
                                                   f"{dense.name}/kernel", f"{dense.name}/bias"]
    assert_gradients_match(report)
    assert (conv.losses == []) == frozen


class _WrongL2(regularizers.Regularizer):
    """``R = l2 * sum(w**2)`` with a gradient off by a factor of 2 (``l2 * w``, the "1/2 w**2" mistake)."""

    def __call__(self, w):
        return 0.5 * float(np.sum(w ** 2))

    def gradient(self, w):
        return 0.5 * w

    def get_config(self):
        return {}


@pytest.mark.usefixtures("float64")
def test_gradcheck_flags_a_wrong_penalty_gradient():
    rng = np.random.default_rng(0)
    layer = Dense(3, kernel_regularizer=_WrongL2())
    layer.build((4,))
    layer.set_weights([kernel_values(rng, (4, 3), 4), np.zeros(3)])
    report = check_layer(layer, x=rng.standard_normal((2, 4)), h=STEP)
    kernel = report.checks[1]
    assert kernel.name == "kernel" and kernel.max_error > 1e-2
    assert report.checks[0].max_error < TOLERANCE and report.checks[2].max_error < TOLERANCE
