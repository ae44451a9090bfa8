"""LayerNormalization, RMSNormalization and UnitNormalization: gradient checks, the formulas, Keras's axes and
arguments, masks.

The gradient checks (float64, generated shapes and axes) use
:func:`nnscratch.gradcheck.check_layer`'s random projection of the output as
the loss: a plain sum would hide most of the backward pass, since the
normalised values of a sample sum to zero. Keras 3.15 itself was compared
outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import LSTM, Dense, Embedding, LayerNormalization, RMSNormalization, UnitNormalization
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, float64_floatx, rng_seeds

#: The step of the central differences, and the epsilon of the layers checked. A sample's few values are
#: normalised to a fixed spread, so truncation (h^2) is small and rounding (1e-16 |L| / h) dominates: 1e-4 beats
#: 1e-5 (400 random cases: worst 4e-7 against 2e-5). With epsilon 0.5 rather than 1e-3, a sample of two values
#: (whose normalised values are +-1 whatever they were) keeps a gradient well above the rounding noise.
NORM_STEP, NORM_EPSILON = 1e-4, 0.5


@st.composite
def shapes_and_axes(draw):
    """A batch shape of rank 2 to 4 and a non-empty set of its sample axes, as an int or a list (Keras's forms)."""
    sample = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    rank = len(sample) + 1
    axes = draw(st.lists(st.integers(1, rank - 1), min_size=1, max_size=rank - 1, unique=True))
    negative = draw(st.booleans())
    axes = [a - rank if negative else a for a in axes]
    return (draw(batch_sizes()), *sample), (axes[0] if len(axes) == 1 and draw(st.booleans()) else axes)


def spread_inputs(rng, shape, axis, mean_square=False):
    """Random inputs whose values along the normalised axes have a spread of 2 in every sample.

    Central differences are accurate to ``h^2`` times the third derivative,
    which grows as ``1/spread^3``: a sample whose few values happen to lie
    close together would be judged against the step, not the backward pass.
    """
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, list) else [axis]))
    x = rng.standard_normal(shape)
    x -= x.mean(axis=axes, keepdims=True)
    size = np.sqrt((x * x).mean(axis=axes, keepdims=True))
    x = 2.0 * x / np.where(size > 0, size, 1.0)
    if mean_square:                     # RMS: the mean square, not the variance, must stay away from 0
        return x + 1.0
    return x + rng.standard_normal(x.shape[:1] + (1,) * (len(shape) - 1))


@given(case=shapes_and_axes(), center=st.booleans(), scale=st.booleans(), seed=rng_seeds())
def test_layer_normalization_gradients(case, center, scale, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = LayerNormalization(axis=axis, center=center, scale=scale, epsilon=NORM_EPSILON)
        layer.build(shape[1:])
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if w is layer.get_weights()[0] and scale
                       else rng.standard_normal(w.shape) for w in layer.get_weights()])
    report = check_layer(layer, x=spread_inputs(rng, shape, axis), seed=seed % 1000, h=NORM_STEP)
    assert [c.name for c in report.checks] == ["input"] + ["gamma"] * scale + ["beta"] * center
    assert report.max_error < TOLERANCE, f"\n{report}"


@given(case=shapes_and_axes(), seed=rng_seeds())
def test_rms_normalization_gradients(case, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = RMSNormalization(axis=axis, epsilon=NORM_EPSILON)
        layer.build(shape[1:])
    layer.set_weights([rng.uniform(0.5, 1.5, layer.scale.value.shape)])
    report = check_layer(layer, x=spread_inputs(rng, shape, axis, mean_square=True), seed=seed % 1000, h=NORM_STEP)
    assert [c.name for c in report.checks] == ["input", "scale"]
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_layer_normalization_gives_each_sample_mean_zero_and_variance_one_over_its_axes_then_scales():
    rng = np.random.default_rng(1)
    x = (3.0 * rng.standard_normal((4, 5, 6)) + 2.0).astype(np.float32)
    layer = LayerNormalization(axis=[1, 2], epsilon=1e-6)
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, rtol=1e-4)
    assert layer.gamma.value.shape == layer.beta.value.shape == (5, 6) and y.dtype == np.float32
    gamma, beta = rng.standard_normal((2, 5, 6)).astype(np.float32)
    layer.set_weights([gamma, beta])
    xhat = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-6)
    np.testing.assert_allclose(layer(x), xhat * gamma + beta, rtol=1e-4, atol=1e-5)
    last = LayerNormalization()                           # the last axis by default: each row alone
    np.testing.assert_allclose(last(x), (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3),
                               rtol=1e-4, atol=1e-5)


def test_rms_normalization_divides_by_the_root_mean_square_without_centering():
    x = np.array([[3.0, 4.0], [1.0, -1.0]], dtype=np.float32)
    layer = RMSNormalization(epsilon=0.0 + 1e-12)
    np.testing.assert_allclose(layer(x), x / np.sqrt([[12.5], [1.0]]), rtol=1e-6)
    assert [w.shape for w in layer.get_weights()] == [(2,)]


def test_bad_axes_and_arguments_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="not the batch axis 0"):
        LayerNormalization(axis=0).build((3,))
    with pytest.raises(ValueError, match="axis=3 is not an axis"):
        LayerNormalization(axis=3).build((3, 4))
    with pytest.raises(ValueError, match="names an axis twice"):
        RMSNormalization(axis=[1, -2]).build((3, 4))
    with pytest.raises(TypeError, match="integer or a list of integers"):
        LayerNormalization(axis="last")
    with pytest.raises(TypeError, match="use RMSNormalization"):
        LayerNormalization(rms_scaling=True)
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        RMSNormalization(epsilon=0)


def test_a_masked_sequence_model_with_layer_normalization_keeps_its_mask_and_saves(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((5,)), Embedding(7, 4, mask_zero=True),
                                  LSTM(6, return_sequences=True), LayerNormalization(gamma_regularizer="l2"),
                                  RMSNormalization(), Dense(3, activation="softmax")])
    assert model.output_masked
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 2]])
    y = np.array([[0, 1, 2, 0, 0], [1, 1, 1, 2, 2]])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "normalized.npz")
    loaded = load_model(tmp_path / "normalized.npz")
    assert loaded.layers[2].get_config() == model.layers[2].get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@given(case=shapes_and_axes(), seed=rng_seeds())
def test_unit_normalization_gradients(case, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    layer = UnitNormalization(axis=axis)
    x = spread_inputs(rng, shape, axis, mean_square=True)
    report = check_layer(layer, x=x, seed=seed % 1000, h=NORM_STEP)
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, list) else [axis]))
    if np.prod([shape[a] for a in axes]) == 1:      # y = x / |x| = sign(x): a constant, gradient exactly 0
        layer.forward(x, training=True)
        assert not layer.backward(np.ones(shape)).any()
        return
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_unit_normalization_gives_unit_vectors_and_keeps_keras_bound_for_tiny_ones():
    x = np.array([[3.0, 4.0], [1e-14, 0.0]])
    layer = UnitNormalization()
    layer.build((2,))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, [[0.6, 0.8], [1e-2, 0.0]])        # a tiny vector is scaled by 1e12 (Keras)
    g = np.array([[1.0, 0.0], [1.0, 2.0]])
    # r (g - y (g . y)) = 0.2 ((1, 0) - 0.6 (0.6, 0.8)); at the bound r = 1e12 is a constant: r g
    np.testing.assert_allclose(layer.backward(g), [[0.128, -0.096], [1e12, 2e12]], rtol=1e-12)
    assert UnitNormalization(axis=[1, 2]).get_config()["axis"] == [1, 2]
