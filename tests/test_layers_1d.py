"""The 1-D layers (inputs (N, steps, channels)): Conv1D ("valid", "same", "causal"), MaxPooling1D,
AveragePooling1D and the global poolings, against NumPy written out here step by step, on both kernel twins;
Keras's weight shapes and names, bad arguments, and save/load round trips. (Finite-difference gradient checks
are in tests/test_grad_layers_extra.py.)"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.layers import (AveragePooling1D, AvgPool1D, Conv1D, Dense, GlobalAveragePooling1D, GlobalAvgPool1D,
                              GlobalMaxPool1D, GlobalMaxPooling1D, Input, MaxPool1D, MaxPooling1D)

try:
    from tests.strategies import float_arrays, rng_seeds, same_padding
except ImportError:  # tests/ itself is on sys.path
    from strategies import float_arrays, rng_seeds, same_padding

both_backends = pytest.mark.parametrize("backend", kernels.BACKENDS)  # conftest restores the default after


class Geometry1D:
    """Steps, window and stride, and the padding rule: the output length and the zeros before the sequence."""

    def __init__(self, n, steps, channels, window, stride, padding, dilation=1):
        self.n, self.steps, self.channels, self.window, self.stride, self.padding, self.dilation = (
            n, steps, channels, window, stride, padding, dilation)
        span = (window - 1) * dilation + 1                 # the steps a window covers
        if padding == "valid":
            self.out, self.before = (steps - span) // stride + 1, 0
        elif padding == "same":
            self.out, self.before = math.ceil(steps / stride), same_padding(steps, span, stride)[0]
        else:  # causal: span - 1 zeros before, none after
            self.out, self.before = math.ceil(steps / stride), span - 1

    @property
    def x_shape(self):
        return (self.n, self.steps, self.channels)

    def step(self, t, i):
        """The input step that tap ``i`` of window ``t`` reads (outside ``0 .. steps-1``: a padding zero)."""
        return t * self.stride - self.before + i * self.dilation

    def positions(self, t):
        """The input steps window ``t`` covers (padding left out)."""
        return [p for p in (self.step(t, i) for i in range(self.window)) if 0 <= p < self.steps]

    def __repr__(self):
        return (f"Geometry1D(n={self.n}, steps={self.steps}, c={self.channels}, window={self.window}, "
                f"stride={self.stride}, {self.padding!r}, dilation={self.dilation})")


@st.composite
def geometries(draw, paddings=("valid", "same", "causal"), dilations=(1,)):
    """Windows up to 4, strides 1-3, steps up to 9; a dilation from ``dilations`` (with stride 1 when above 1)."""
    padding = draw(st.sampled_from(paddings))
    window, dilation = draw(st.integers(1, 4)), draw(st.sampled_from(dilations))
    stride = 1 if dilation > 1 else draw(st.integers(1, 3))
    span = (window - 1) * dilation + 1
    steps = draw(st.integers(span if padding == "valid" else 1, max(span, 9)))
    return Geometry1D(draw(st.integers(1, 3)), steps, draw(st.integers(1, 3)), window, stride, padding, dilation)


def conv_by_steps(x, kernel, bias, geom):
    """z[n, t, f] = sum_i sum_c x[n, t*s - p + i*d, c] K[i, c, f] + b[f], zeros outside the sequence."""
    n = x.shape[0]
    z = np.zeros((n, geom.out, kernel.shape[2]))
    for t in range(geom.out):
        for i in range(geom.window):
            p = geom.step(t, i)
            if 0 <= p < geom.steps:
                z[:, t] += x[:, p].astype(np.float64) @ kernel[i]
    return z + bias


def conv_gradients_by_steps(x, kernel, g, geom):
    """dL/dK and dL/dx of ``conv_by_steps`` for dL/dz = g, term by term."""
    dk, dx = np.zeros(kernel.shape), np.zeros(x.shape)
    for t in range(geom.out):
        for i in range(geom.window):
            p = geom.step(t, i)
            if 0 <= p < geom.steps:
                dk[i] += x[:, p].T.astype(np.float64) @ g[:, t]
                dx[:, p] += g[:, t] @ kernel[i].T
    return dk, dx


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------- Conv1D

@both_backends
@settings(max_examples=10)
@given(geom=geometries(dilations=(1, 1, 2, 3)), filters=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=rng_seeds())
def test_conv1d_follows_the_formula(backend, geom, filters, dtype, seed):
    nnscratch.set_backend(backend)
    nnscratch.set_floatx(np.dtype(dtype).name)  # conftest restores float32 after
    rng = np.random.default_rng(seed)
    layer = Conv1D(filters, geom.window, strides=geom.stride, padding=geom.padding, dilation_rate=geom.dilation)
    layer.build(geom.x_shape[1:])
    assert layer.output_shape == (None, geom.out, filters)
    kernel, bias = rng.standard_normal((geom.window, geom.channels, filters)), rng.standard_normal(filters)
    layer.set_weights([kernel, bias])
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    y = layer.forward(x, training=True)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, conv_by_steps(x, kernel, bias, geom), **tol(dtype))
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(g)
    dk, dx_expected = conv_gradients_by_steps(x, kernel, g, geom)
    np.testing.assert_allclose(dx, dx_expected, **tol(dtype))
    np.testing.assert_allclose(layer.kernel.grad, dk, **tol(dtype))
    np.testing.assert_allclose(layer.bias.grad, g.astype(np.float64).sum(axis=(0, 1)), **tol(dtype))


@pytest.mark.parametrize("activation", ["relu", "tanh", "softmax", "gelu"])
def test_conv1d_activations(activation):
    rng = np.random.default_rng(0)
    layer = Conv1D(3, 2, padding="same", activation=activation)
    linear = Conv1D(3, 2, padding="same")
    for each in (layer, linear):
        each.build((5, 2))
    weights = [rng.standard_normal((2, 2, 3)), rng.standard_normal(3)]
    layer.set_weights(weights), linear.set_weights(weights)
    x = batch((4, 5, 2))
    z = linear(x).astype(np.float64)
    expected = {"relu": np.maximum(z, 0), "tanh": np.tanh(z),
                "softmax": np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True),
                "gelu": 0.5 * z * (1 + np.vectorize(math.erf)(z / np.sqrt(2)))}[activation]
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-5, atol=1e-6)


def batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@both_backends
@pytest.mark.parametrize("dilation", [1, 2])
def test_causal_outputs_never_see_later_steps(backend, dilation):
    nnscratch.set_backend(backend)
    layer = Conv1D(2, 4, padding="causal", dilation_rate=dilation)
    x = batch((2, 10, 3))
    y = layer(x)
    later = x.copy()
    later[:, 6:] += 1.0                                  # change steps 6..9
    y_later = layer(later)
    np.testing.assert_array_equal(y_later[:, :6], y[:, :6])
    assert np.abs(y_later[:, 6:] - y[:, 6:]).min() > 0


def test_conv1d_weights_are_keras_shaped_and_named():
    layer = Conv1D(8, 5, kernel_initializer="glorot_uniform")
    layer.build((20, 3))
    assert layer.weight_names() == ["kernel", "bias"]
    assert layer.kernel.shape == (5, 3, 8) and layer.bias.shape == (8,)
    limit = np.sqrt(6 / (5 * 3 + 5 * 8))                  # Keras's fans of a (k, in, filters) kernel
    assert np.abs(layer.kernel.value).max() <= limit and np.abs(layer.kernel.value).max() > 0.8 * limit
    assert layer.count_params() == 5 * 3 * 8 + 8
    assert layer.name.startswith("conv1d")
    assert Conv1D(2, 3, use_bias=False).get_config()["use_bias"] is False


def test_conv1d_regularizers_and_frozen_input_gradient():
    layer = Conv1D(2, 3, kernel_regularizer=nnscratch.regularizers.L2(0.1), bias_regularizer="l1")
    layer.build((6, 2))
    layer.set_weights([np.full((3, 2, 2), 0.5), np.array([1.0, -2.0])])
    assert layer.losses == pytest.approx([0.1 * 12 * 0.25, 0.01 * 3.0])
    layer.skip_input_gradient = True                     # a first layer: nobody needs dL/dx
    layer.forward(batch((2, 6, 2)), training=True)
    assert layer.backward(batch((2, 4, 2), seed=1)) is None


def test_conv1d_errors():
    with pytest.raises(ValueError, match="strides > 1 cannot be combined with dilation_rate > 1"):
        Conv1D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="dilation_rate must be positive"):
        Conv1D(2, 3, dilation_rate=0)
    with pytest.raises(ValueError, match="'valid', 'same', 'causal'"):
        Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        Conv1D(0, 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 1 ints"):
        Conv1D(2, (3, 3))
    with pytest.raises(ValueError, match="expects sequences"):
        Conv1D(2, 3).build((5, 5, 1))
    with pytest.raises(ValueError, match="spanning [0-9]+ steps is longer than its valid-padded input"):
        Conv1D(2, 6).build((5, 1))
    with pytest.raises(ValueError, match="spanning [0-9]+ steps is longer than its valid-padded input"):
        Conv1D(2, 3, dilation_rate=3).build((6, 1))     # spans 7 steps
    layer = Conv1D(2, 3)
    layer.build((5, 1))
    with pytest.raises(RuntimeError, match="without forward"):
        layer.backward(np.zeros((1, 3, 2), np.float32))


# ------------------------------------------------------------------------------------------------ pooling

@both_backends
@settings(max_examples=15)
@given(geom=geometries(("valid", "same")), x=st.data())
def test_max_pooling_follows_the_formula(backend, geom, x):
    """Distinct values (no ties); the padding never wins, even over all-negative inputs."""
    nnscratch.set_backend(backend)
    x = x.draw(float_arrays(geom.x_shape, dtype=np.float32)) - 100.0
    layer = MaxPooling1D(geom.window, geom.stride, geom.padding)
    y = layer(x, training=True)
    assert layer.output_shape == (None, geom.out, geom.channels)
    expected = np.stack([x[:, geom.positions(t)].max(axis=1) for t in range(geom.out)], axis=1)
    np.testing.assert_array_equal(y, expected)
    g = batch(y.shape, seed=1)
    dx = np.zeros(x.shape)
    for t in range(geom.out):                          # each output's gradient goes to its window's maximum
        cells = geom.positions(t)
        winner = np.array(cells)[x[:, cells].argmax(axis=1)]    # (n, c)
        for n_, c_ in np.ndindex(geom.n, geom.channels):
            dx[n_, winner[n_, c_], c_] += g[n_, t, c_]
    np.testing.assert_allclose(layer.backward(g), dx, rtol=1e-6, atol=1e-6)


@both_backends
@settings(max_examples=15)
@given(geom=geometries(("valid", "same")), seed=rng_seeds())
def test_average_pooling_follows_the_formula(backend, geom, seed):
    """A "same" window over an end averages only the steps it covers, as Keras."""
    nnscratch.set_backend(backend)
    x = np.random.default_rng(seed).standard_normal(geom.x_shape).astype(np.float32)
    layer = AveragePooling1D(geom.window, geom.stride, geom.padding)
    y = layer(x, training=True)
    expected = np.stack([x[:, geom.positions(t)].mean(axis=1) for t in range(geom.out)], axis=1)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    g = batch(y.shape, seed=1)
    dx = np.zeros(x.shape)
    for t in range(geom.out):
        cells = geom.positions(t)
        dx[:, cells] += g[:, t:t + 1] / len(cells)
    np.testing.assert_allclose(layer.backward(g), dx, rtol=1e-6, atol=1e-6)


def test_pooling_defaults_and_aliases():
    assert MaxPool1D is MaxPooling1D and AvgPool1D is AveragePooling1D
    assert GlobalMaxPool1D is GlobalMaxPooling1D and GlobalAvgPool1D is GlobalAveragePooling1D
    layer = MaxPooling1D()
    layer.build((9, 2))
    assert (layer.pool_size, layer.strides, layer.padding) == ((2,), (2,), "valid")
    assert layer.output_shape == (None, 4, 2)
    assert AveragePooling1D(3, padding="same").get_config()["strides"] == [3]
    assert layer.name.startswith("max_pooling1d")


def test_pooling_errors():
    with pytest.raises(ValueError, match="'valid', 'same'"):
        MaxPooling1D(2, padding="causal")
    with pytest.raises(ValueError, match="spanning [0-9]+ steps is longer than its valid-padded input"):
        AveragePooling1D(4).build((3, 1))
    with pytest.raises(ValueError, match="expects sequences"):
        MaxPooling1D().build((4, 4, 1))
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        GlobalMaxPooling1D(keepdims=1)
    with pytest.raises(ValueError, match="expects sequences"):
        GlobalAveragePooling1D().build((4,))


@both_backends
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_poolings(backend, keepdims):
    nnscratch.set_backend(backend)
    x = batch((3, 7, 4))
    x[0, 2, 1] = x[0, 5, 1] = 10.0                      # a tie: the first maximum gets the gradient
    g = batch((3, 1, 4) if keepdims else (3, 4), seed=1)
    flat_g = g.reshape(3, 4)
    average, maximum = GlobalAveragePooling1D(keepdims=keepdims), GlobalMaxPooling1D(keepdims=keepdims)
    y = average(x, training=True)
    assert average.output_shape == ((None, 1, 4) if keepdims else (None, 4))
    np.testing.assert_allclose(y.reshape(3, 4), x.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(average.backward(g), np.repeat(flat_g[:, None] / 7, 7, axis=1), rtol=1e-6)
    y = maximum(x, training=True)
    np.testing.assert_array_equal(y.reshape(3, 4), x.max(axis=1))
    dx = maximum.backward(g)
    expected = np.zeros_like(x)
    np.put_along_axis(expected, x.argmax(axis=1)[:, None], flat_g[:, None], axis=1)
    np.testing.assert_array_equal(dx, expected)
    assert dx[0, 2, 1] == flat_g[0, 1] and dx[0, 5, 1] == 0


# ------------------------------------------------------------------------------------------------- models

def test_a_1d_model_trains_and_round_trips(tmp_path):
    model = nnscratch.Sequential([
        Input((16, 2)), Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"), MaxPool1D(),
        Conv1D(4, 3, padding="same", activation="tanh"), AvgPool1D(2), GlobalMaxPooling1D(keepdims=True),
        GlobalAveragePooling1D(), Dense(2, activation="softmax")])
    assert [layer.output_shape for layer in model.layers] == [(None, 16, 4), (None, 8, 4), (None, 8, 4),
                                                              (None, 4, 4), (None, 1, 4), (None, 4), (None, 2)]
    assert model.count_params() == (3 * 2 * 4 + 4) + (3 * 4 * 4 + 4) + (4 * 2 + 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(int)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False).history["loss"]
    assert history[-1] < history[0]
    path = tmp_path / "sequence.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
