"""The activation "log_softmax": the formula (SciPy's as the reference), gradient checks (float64), Dense and
Conv2D with it in training and inference (no product kernel and no batch-norm folding applies it)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax as scipy_log_softmax

import nnscratch
from nnscratch import activations
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, Input

try:
    from tests.grad_strategies import (ACTIVATION_STEP, STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx,
                                       image_shapes, rng_seeds)
    from tests.strategies import large_batch_predictions
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (ACTIVATION_STEP, STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx,
                                 image_shapes, rng_seeds)
    from strategies import large_batch_predictions


def any_shapes():
    """Batch shapes of rank 2 to 4 (small)."""
    return st.one_of(st.tuples(batch_sizes(), feature_sizes()),
                     st.tuples(batch_sizes(), feature_sizes(), feature_sizes()), image_shapes())


def test_the_formula_and_its_stability():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]], dtype=np.float32)
    y = activations.forward(z.copy(), None, "log_softmax")
    np.testing.assert_allclose(y, scipy_log_softmax(z.astype(np.float64), axis=-1), rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32 and np.isfinite(y[1, :2]).all()
    np.testing.assert_allclose(np.exp(y).sum(axis=-1), 1.0, rtol=1e-6)
    assert "log_softmax" in activations.NAMES and activations.get("log_softmax") == "log_softmax"


@settings(max_examples=15)
@given(shape=any_shapes(), seed=rng_seeds())
def test_activation_layer_gradients(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    report = check_layer(Activation("log_softmax"), x=x, seed=seed % 1000, h=ACTIVATION_STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


@settings(max_examples=10)
@given(features=feature_sizes(), units=feature_sizes(), seed=rng_seeds())
def test_dense_gradients(features, units, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation="log_softmax")
        layer.build((features,))
    report = check_layer(layer, x=rng.standard_normal((3, features)), seed=seed % 1000, h=STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


def test_dense_prediction_of_a_large_batch_uses_blas_and_agrees():
    """predict prepares the Dense layers' product kernel for large passes; it cannot apply log_softmax."""
    predicted, logits = large_batch_predictions("log_softmax")
    np.testing.assert_allclose(predicted, scipy_log_softmax(logits, axis=-1), rtol=1e-4, atol=1e-5)


def test_a_conv2d_with_it_keeps_the_batch_norm_after_it():
    rng = np.random.default_rng(2)
    model = nnscratch.Sequential([Input((6, 6, 2)), Conv2D(4, 3, activation="log_softmax"), BatchNormalization(),
                                  Flatten(), Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    assert model.batchnorms_after_convolutions() == {}
    x = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
    model.train_on_batch(x, rng.standard_normal((8, 3)).astype(np.float32))
    by_layer = x
    for layer in model.layers:
        by_layer = layer.forward(by_layer, training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_layer, rtol=1e-5, atol=1e-6)
    z = np.exp(model.layers[0].forward(x, training=False))
    np.testing.assert_allclose(z.sum(axis=-1), 1.0, rtol=1e-5)


def test_an_unknown_name_still_lists_it():
    with pytest.raises(ValueError, match="log_softmax"):
        Activation("log_softmaxx")
