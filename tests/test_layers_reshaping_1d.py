"""ZeroPadding1D, Cropping1D and UpSampling1D: Keras's argument forms, forward and backward, gradient checks
(float64, on both kernel twins for UpSampling1D), saving, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Conv1D, Cropping1D, Dense, Flatten, Input, UpSampling1D, ZeroPadding1D

try:
    from tests.grad_strategies import LINEAR_STEP, TOLERANCE, batch_sizes, channel_counts, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import LINEAR_STEP, TOLERANCE, batch_sizes, channel_counts, rng_seeds


def batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("layer, attribute, value, expected", [
    (ZeroPadding1D, "padding", 2, (2, 2)), (ZeroPadding1D, "padding", (0, 3), (0, 3)),
    (ZeroPadding1D, "padding", [1, np.int64(2)], (1, 2)),
    (Cropping1D, "cropping", 1, (1, 1)), (Cropping1D, "cropping", (2, 0), (2, 0)),
])
def test_argument_forms(layer, attribute, value, expected):
    assert getattr(layer(value), attribute) == expected


def test_the_defaults_are_keras_s():
    assert ZeroPadding1D().padding == (1, 1) and Cropping1D().cropping == (1, 1) and UpSampling1D().size == 2


def test_zero_padding_forward_and_backward():
    layer = ZeroPadding1D((1, 2))
    x = batch((2, 4, 3))
    y = layer(x, training=True)
    assert layer.output_shape == (None, 7, 3) and y.shape == (2, 7, 3)
    np.testing.assert_array_equal(y[:, 1:5], x)
    assert not y[:, 0].any() and not y[:, 5:].any()
    g = batch(y.shape, seed=1)
    np.testing.assert_array_equal(layer.backward(g), g[:, 1:5])


def test_cropping_forward_and_backward():
    layer = Cropping1D((2, 1))
    x = batch((3, 6, 2))
    y = layer(x, training=True)
    assert layer.output_shape == (None, 3, 2) and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x[:, 2:5])
    g = batch(y.shape, seed=1)
    expected = np.zeros_like(x)
    expected[:, 2:5] = g
    np.testing.assert_array_equal(layer.backward(g), expected)


@pytest.mark.parametrize("backend", kernels.BACKENDS)   # conftest restores the default after
def test_upsampling_forward_and_backward(backend):
    nnscratch.set_backend(backend)
    layer = UpSampling1D(3)
    x = batch((2, 4, 5))
    y = layer(x, training=True)
    assert layer.output_shape == (None, 12, 5)
    np.testing.assert_array_equal(y, np.repeat(x, 3, axis=1))
    g = batch(y.shape, seed=1)
    np.testing.assert_allclose(layer.backward(g), g.reshape(2, 4, 3, 5).sum(axis=2), rtol=1e-6)


@st.composite
def sequences_and_sides(draw):
    """A batch shape (N, steps, C) and two non-negative ends that leave at least one step."""
    steps = draw(st.integers(1, 7))
    start = draw(st.integers(0, steps - 1))
    return (draw(batch_sizes()), steps, draw(channel_counts())), (start, draw(st.integers(0, steps - 1 - start)))


@settings(max_examples=15)
@given(case=sequences_and_sides(), seed=rng_seeds())
def test_zero_padding_and_cropping_gradients(case, seed):
    shape, sides = case
    x = np.random.default_rng(seed).standard_normal(shape)
    for layer in (ZeroPadding1D(sides), Cropping1D(sides)):
        report = check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP)
        assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@settings(max_examples=10)
@given(n=batch_sizes(), steps=st.integers(1, 5), c=channel_counts(), size=st.integers(1, 4), seed=rng_seeds())
def test_upsampling_gradients(backend, n, steps, c, size, seed):
    nnscratch.set_backend(backend)
    x = np.random.default_rng(seed).standard_normal((n, steps, c))
    report = check_layer(UpSampling1D(size), x=x, seed=seed % 1000, h=LINEAR_STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


def test_a_model_with_the_three_saves_and_loads(tmp_path):
    model = nnscratch.Sequential([Input((8, 2)), ZeroPadding1D((2, 0)), Conv1D(3, 3, activation="relu"),
                                  UpSampling1D(2), Cropping1D((1, 3)), Flatten(), Dense(2)])
    assert [layer.output_shape for layer in model.layers] == [(None, 10, 2), (None, 8, 3), (None, 16, 3),
                                                              (None, 12, 3), (None, 36), (None, 2)]
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    x = batch((4, 8, 2))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_errors():
    with pytest.raises(ValueError, match="must not be negative"):
        ZeroPadding1D(-1)
    with pytest.raises(TypeError, match=r"cropping must be an int or a tuple of 2 ints \(start, end\)"):
        Cropping1D((1, 2, 3))
    with pytest.raises(TypeError, match="padding must be"):
        ZeroPadding1D(1.5)
    with pytest.raises(ValueError, match=r"cropping \(2, 2\) leaves no step"):
        Cropping1D(2).build((4, 3))
    with pytest.raises(ValueError, match="must be a positive integer"):
        UpSampling1D(0)
    with pytest.raises(TypeError, match="size must be an int"):
        UpSampling1D((2,))
    for layer in (ZeroPadding1D(), Cropping1D(), UpSampling1D()):
        with pytest.raises(ValueError, match=r"expects sequences of shape \(None, steps, channels\), "
                                             r"got \(None, 4, 4, 1\)"):
            layer.build((4, 4, 1))
