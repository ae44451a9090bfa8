"""ReLU with Keras's general arguments (a threshold, any max_value, max_value with negative_slope): the formula
against Keras's own algorithm restated, gradients away from the kinks, no fusion, saving."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import BatchNormalization, Dense, ReLU
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import LINEAR_STEP, TOLERANCE, batch_sizes, feature_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import LINEAR_STEP, TOLERANCE, batch_sizes, feature_sizes, rng_seeds

slopes = st.sampled_from([0.0, 0.1, 0.5])
maxima = st.sampled_from([None, 0.5, 2.0, 6.0])
thresholds = st.sampled_from([0.0, 0.3, 1.0])


def keras_relu(x, negative_slope, max_value, threshold):
    """``keras.activations.relu`` (Keras 3.15, ``ReLU.static_call``), step by step."""
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x > 0, x, negative_slope * x)
        negative_part = np.maximum(-x + threshold, 0)
    else:
        negative_part = 1
    clip_max = max_value is not None
    if threshold != 0:
        x = np.where(x > threshold, x, 0)
    elif max_value == 6:
        x, clip_max = np.clip(x, 0, 6), False
    else:
        x = np.maximum(x, 0)
    if clip_max:
        x = np.clip(x, 0, max_value)
    if negative_slope != 0.0:
        x = x - negative_slope * negative_part
    return x


@given(shape=st.tuples(batch_sizes(), feature_sizes()), slope=slopes, top=maxima, threshold=thresholds,
       seed=rng_seeds())
def test_every_combination_is_keras_formula(shape, slope, top, threshold, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    layer = ReLU(max_value=top, negative_slope=slope, threshold=threshold)
    np.testing.assert_allclose(layer(x), keras_relu(x, slope, top, threshold), rtol=1e-12, atol=1e-12)
    named = threshold == 0 and (top is None or (top == 6 and slope == 0))
    assert (layer.activation == "relu_with") != named


@given(shape=st.tuples(batch_sizes(), feature_sizes()), slope=slopes, top=maxima, threshold=thresholds,
       seed=rng_seeds())
def test_gradients_away_from_the_kinks(shape, slope, top, threshold, seed):
    """Piecewise linear: slope 1 above the threshold, 0 where clipped at max_value, negative_slope below."""
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    kinks = [threshold, 0.0] + ([] if top is None else [top])
    assume(min(np.abs(x - kink).min() for kink in kinks) > 10 * LINEAR_STEP)
    layer = ReLU(max_value=top, negative_slope=slope, threshold=threshold)
    report = check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP)
    slope_expected = np.where(x > threshold, 1.0, slope)
    if top is not None:
        slope_expected = np.where((x > threshold) & (keras_relu(x, 0.0, None, threshold) >= top), 0.0, slope_expected)
    assume(np.abs(slope_expected).max() > 0)           # (an all-zero gradient is no test of a relative error)
    assert report.max_error < TOLERANCE, f"\n{report}"
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), slope_expected, atol=1e-15)


def test_a_general_relu_is_not_fused_into_the_batch_norm_and_saves(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    relu = ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2)
    model = nnscratch.Sequential([nnscratch.Input((3,)), BatchNormalization(), relu, Dense(2)])
    assert model.steps()[:2] == [(0, False), (1, False)]
    model.compile("sgd", "mse")
    model.fit(x, rng.standard_normal((16, 2)).astype(np.float32), epochs=2, batch_size=8, verbose=0)
    by_layer = x
    for layer in model.layers:
        by_layer = layer.forward(by_layer)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_layer, rtol=1e-6)
    model.save(tmp_path / "relu.npz")
    loaded = load_model(tmp_path / "relu.npz")
    assert loaded.layers[1].get_config() == relu.get_config() and loaded.layers[1].activation == "relu_with"
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_negative_arguments_are_refused():
    for argument in ("max_value", "negative_slope", "threshold"):
        with pytest.raises(ValueError, match=f"ReLU's {argument} cannot be negative"):
            ReLU(**{argument: -1.0})
