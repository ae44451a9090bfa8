"""Gradient checks, in float64, of every activation added for Keras 3's names, through Activation, Dense and
Conv2D, and of the layers LeakyReLU, ELU, ReLU(max_value / negative_slope) and Softmax(axis).

Conventions of ``tests/test_grad_layers.py`` (``tests/grad_strategies.py`` explains the steps). The inputs of
the activations stay off their kinks, where a central difference would straddle two pieces: 0 for elu, selu,
celu, leaky_relu and softsign (whose second derivative jumps there), -3 and 3 for hard_sigmoid and hard_silu, 0
and 6 for relu6, -1 and 1 for hard_tanh, sparse_plus and sparse_sigmoid, -0.5 and 0.5 for soft_shrink and
hard_shrink (which jumps there). Piecewise-linear ones (leaky_relu, relu6, hard_sigmoid, hard_tanh, the shrinks,
sparse_sigmoid) take the large LINEAR_STEP, the smooth ones ACTIVATION_STEP alone and STEP inside a layer with
weights.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, ReLU
from nnscratch.layers.activation import ELU, LeakyReLU, Softmax

try:
    from tests.grad_strategies import (ACTIVATION_STEP, LINEAR_STEP, PREACTIVATION_MARGIN, STEP, TOLERANCE,
                                       batch_sizes, feature_sizes, float64_floatx, image_shapes, kernel_values,
                                       layer_conv_geometry, rng_seeds)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (ACTIVATION_STEP, LINEAR_STEP, PREACTIVATION_MARGIN, STEP, TOLERANCE,
                                 batch_sizes, feature_sizes, float64_floatx, image_shapes, kernel_values,
                                 layer_conv_geometry, rng_seeds)

NEW = ["elu", "selu", "softplus", "softsign", "leaky_relu", "gelu", "silu", "hard_sigmoid", "exponential", "relu6"]
NEWER = ["celu", "hard_silu", "hard_tanh", "log_sigmoid", "mish", "soft_shrink", "hard_shrink", "sparse_plus",
         "sparse_sigmoid", "squareplus", "tanh_shrink"]
ALL = NEW + NEWER
KINKS = {"elu": (0.0,), "selu": (0.0,), "softsign": (0.0,), "leaky_relu": (0.0,), "hard_sigmoid": (-3.0, 3.0),
         "relu6": (0.0, 6.0), "celu": (0.0,), "hard_silu": (-3.0, 3.0), "hard_tanh": (-1.0, 1.0),
         "soft_shrink": (-0.5, 0.5), "hard_shrink": (-0.5, 0.5), "sparse_plus": (-1.0, 1.0),
         "sparse_sigmoid": (-1.0, 1.0)}
PIECEWISE_LINEAR = ("leaky_relu", "relu6", "hard_sigmoid", "hard_tanh", "soft_shrink", "hard_shrink", "sparse_sigmoid")
# spread of the inputs: hard_sigmoid, hard_silu and relu6 see their flat parts too
SPREAD = {"hard_sigmoid": 4.0, "hard_silu": 4.0, "relu6": 4.0, "exponential": 1.0}
KINK_MARGIN = 1e-3     # inputs of an activation alone: more than 2e-3 from a kink (a step never crosses one)
TANH_SHRINK_MARGIN = 0.25   # inputs of tanh_shrink alone: |x| >= this (see off_kinks)


def assert_gradients_match(report):
    assert report.max_error < TOLERANCE, f"\n{report}"


def kink_distance(name, z):
    """The smallest distance of ``z`` to a kink of ``name`` (inf for the smooth ones)."""
    kinks = KINKS.get(name, ())
    return min((float(np.abs(z - k).min()) for k in kinks), default=np.inf) if np.size(z) else np.inf


def off_kinks(rng, name, shape):
    """Normal inputs (spread by SPREAD, relu6 offset into [0, 6]) moved 2 * KINK_MARGIN away from the kinks."""
    x = SPREAD.get(name, 2.0) * rng.standard_normal(shape) + (2.0 if name == "relu6" else 0.0)
    for kink in KINKS.get(name, ()):
        near = np.abs(x - kink) < 2 * KINK_MARGIN
        x[near] = kink + np.where(x[near] < kink, -2, 2) * KINK_MARGIN
    assert kink_distance(name, x) >= 2 * KINK_MARGIN - 1e-12
    if name == "tanh_shrink":
        # f' = tanh(x)^2 vanishes to second order at 0, where the third derivative is -2: the central
        # difference's error h^2 f'''(x) / 6 would be judged against a derivative near 0
        x = np.where(np.abs(x) < TANH_SHRINK_MARGIN, np.where(x < 0, -TANH_SHRINK_MARGIN, TANH_SHRINK_MARGIN), x)
    return x


def any_shapes():
    """Batch shapes of rank 2 to 4 (small)."""
    return st.one_of(st.tuples(batch_sizes(), feature_sizes()),
                     st.tuples(batch_sizes(), feature_sizes(), feature_sizes()),
                     image_shapes())


def activation_step(name):
    return LINEAR_STEP if name in PIECEWISE_LINEAR else ACTIVATION_STEP


# ----------------------------------------------------------------- Activation

@pytest.mark.parametrize("name", ALL)
@settings(max_examples=12)
@given(shape=any_shapes(), seed=rng_seeds())
def test_activation_gradients(name, shape, seed):
    rng = np.random.default_rng(seed)
    x = off_kinks(rng, name, shape)
    assert_gradients_match(check_layer(Activation(name), x=x, seed=seed % 1000, h=activation_step(name)))


@settings(max_examples=10)
@given(shape=any_shapes(), seed=rng_seeds(), slope=st.sampled_from([0.0, 0.01, 0.3, 1.5]))
def test_leaky_relu_layer_gradients(shape, seed, slope):
    x = off_kinks(np.random.default_rng(seed), "leaky_relu", shape)
    for layer in (LeakyReLU(slope), ReLU(negative_slope=slope)):
        assert_gradients_match(check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP))


@settings(max_examples=10)
@given(shape=any_shapes(), seed=rng_seeds(), alpha=st.sampled_from([0.0, 0.2, 1.0, 2.5]))
def test_elu_layer_gradients(shape, seed, alpha):
    x = off_kinks(np.random.default_rng(seed), "elu", shape)
    assert_gradients_match(check_layer(ELU(alpha), x=x, seed=seed % 1000, h=ACTIVATION_STEP))


@settings(max_examples=10)
@given(shape=any_shapes(), seed=rng_seeds())
def test_relu6_layer_gradients(shape, seed):
    x = off_kinks(np.random.default_rng(seed), "relu6", shape)
    assert_gradients_match(check_layer(ReLU(max_value=6), x=x, seed=seed % 1000, h=LINEAR_STEP))


@settings(max_examples=15)
@given(data=st.data(), seed=rng_seeds())
def test_softmax_layer_gradients(data, seed):
    shape = data.draw(st.one_of(st.tuples(batch_sizes(), feature_sizes(), feature_sizes()), image_shapes()),
                      label="shape")
    axis = data.draw(st.sampled_from([a for a in range(-len(shape) + 1, len(shape)) if a % len(shape)]),
                     label="axis")
    x = 2.0 * np.random.default_rng(seed).standard_normal(shape)
    assert_gradients_match(check_layer(Softmax(axis=axis), x=x, seed=seed % 1000, h=ACTIVATION_STEP))


# ------------------------------------------------------------- Dense, Conv2D

@pytest.mark.parametrize("name", ALL)
@settings(max_examples=8)
@given(n=batch_sizes(), features=feature_sizes(), units=st.integers(1, 5), use_bias=st.booleans(),
       seed=rng_seeds())
def test_dense_gradients(name, n, features, units, use_bias, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation=name, use_bias=use_bias)
        layer.build((features,))
    kernel = kernel_values(rng, (features, units), features) * SPREAD.get(name, 1.0)
    bias = 0.5 * rng.standard_normal(units) + (2.0 if name == "relu6" else 0.0)
    layer.set_weights([kernel, bias] if use_bias else [kernel])
    x = rng.standard_normal((n, features))
    assume(kink_distance(name, x @ kernel + (bias if use_bias else 0)) > PREACTIVATION_MARGIN)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input", "kernel"] + (["bias"] if use_bias else [])
    assert_gradients_match(report)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=4)
@given(geom=layer_conv_geometry(), filters=st.integers(1, 3), use_bias=st.booleans(), seed=rng_seeds())
def test_conv2d_gradients(name, geom, filters, use_bias, seed):
    rng = np.random.default_rng(seed)
    args = dict(filters=filters, kernel_size=(geom.kh, geom.kw), strides=(geom.sh, geom.sw),
                padding=geom.padding, use_bias=use_bias)
    with float64_floatx():
        layer = Conv2D(activation=name, **args)
        linear = Conv2D(**args)
        layer.build(geom.x_shape[1:])
        linear.build(geom.x_shape[1:])
    kernel = kernel_values(rng, (geom.kh, geom.kw, geom.c, filters), geom.kh * geom.kw * geom.c)
    weights = [kernel * SPREAD.get(name, 1.0)]
    weights += [0.5 * rng.standard_normal(filters) + (2.0 if name == "relu6" else 0.0)] if use_bias else []
    layer.set_weights(weights)
    linear.set_weights(weights)
    x = rng.standard_normal(geom.x_shape)
    assume(kink_distance(name, linear.forward(x)) > PREACTIVATION_MARGIN)
    assert_gradients_match(check_layer(layer, x=x, seed=seed % 1000, h=STEP))


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("name", ALL)
def test_both_twins_through_winograd_and_im2col(float64, backend, name):
    """The other twin than the default run's, on fixed cases: a strided layer that im2col computes and, for
    gelu and mish (whose training forward, as silu's, keeps z: another path), a 3x3 layer that Winograd computes
    (8 channels, 8x8 output)."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(11)
    cases = [(Conv2D(3, 2, strides=2, activation=name), (2, 5, 5, 2))]
    if name in ("gelu", "mish"):
        cases.append((Conv2D(1, 3, padding="same", activation=name), (1, 8, 8, 8)))
    for layer, shape in cases:
        layer.build(shape[1:])
        assert bool(layer._winograd()) == (shape[-1] == 8)
        kernel = kernel_values(rng, layer.kernel.value.shape, int(np.prod(layer.kernel.value.shape[:3])))
        layer.set_weights([kernel * SPREAD.get(name, 1.0), 0.3 * rng.standard_normal(layer.filters) +
                           (2.0 if name == "relu6" else 0.0)])
        x = rng.standard_normal(shape)
        linear = Conv2D(layer.filters, layer.kernel_size, strides=layer.strides, padding=layer.padding)
        linear.build(shape[1:])
        linear.set_weights(layer.get_weights())
        assert kink_distance(name, linear.forward(x)) > PREACTIVATION_MARGIN
        assert_gradients_match(check_layer(layer, x=x, h=STEP))


# -------------------------------------------------------------------- models

@pytest.mark.parametrize("seed", [0, 1])
def test_model_gradients(float64, seed):
    """Conv2D(gelu) -> BatchNorm -> LeakyReLU -> MaxPool -> Conv2D(selu) -> ELU -> Flatten -> Dense(silu) ->
    Dense(mish) -> Activation(log_sigmoid) -> Dense(softplus) -> Softmax: every layer's backward in one chain."""
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([
        nnscratch.Input((6, 6, 2)),
        Conv2D(3, 3, padding="same", activation="gelu"), BatchNormalization(), LeakyReLU(0.1), MaxPooling2D(),
        Conv2D(3, 2, activation="selu"), ELU(0.7), Flatten(),
        Dense(5, activation="swish"), Dense(5, activation="mish"), Activation("log_sigmoid"),
        Dense(4, activation="softplus"), Softmax(),
    ])
    x = np.random.default_rng(seed).standard_normal((3, 6, 6, 2))
    assert_gradients_match(check_model(model, x, seed=seed, h=STEP))
