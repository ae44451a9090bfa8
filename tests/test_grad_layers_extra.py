"""Gradient checks, in float64, of Conv1D, the 1-D poolings, PReLU, Cropping2D, Permute, RepeatVector and
bilinear UpSampling2D, with :func:`nnscratch.gradcheck.check_layer` (and one :func:`check_model`).

Steps as in ``tests/grad_strategies.py``: ``STEP`` for Conv1D (smooth activations; ReLU with pre-activations
kept ``PREACTIVATION_MARGIN`` from 0), ``LINEAR_STEP`` for the linear and piecewise-linear layers. Max poolings
get values 1e-2 apart (no ties), PReLU inputs at least 2e-3 from its kink at 0: a step never crosses a kink.
PReLU is linear in ``alpha`` for fixed ``x``, so its ``alpha`` gradient is exact under a central difference too.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import (AveragePooling1D, Conv1D, Cropping2D, Dense, Flatten, GlobalAveragePooling1D,
                              GlobalMaxPooling1D, Input, MaxPooling1D, Permute, PReLU, RepeatVector, UpSampling2D)

try:
    from tests.grad_strategies import (LINEAR_STEP, PREACTIVATION_MARGIN, STEP, TOLERANCE, away_from_zero,
                                       batch_sizes, channel_counts, feature_sizes, float64_floatx, image_shapes,
                                       kernel_values, min_abs, rng_seeds, well_separated)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (LINEAR_STEP, PREACTIVATION_MARGIN, STEP, TOLERANCE, away_from_zero, batch_sizes,
                                 channel_counts, feature_sizes, float64_floatx, image_shapes, kernel_values,
                                 min_abs, rng_seeds, well_separated)


def assert_gradients_match(report):
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


both_backends = pytest.mark.parametrize("backend", kernels.BACKENDS)  # conftest restores the default after


@st.composite
def windows_1d(draw, paddings=("valid", "same", "causal"), dilations=(1,)):
    """``(batch shape (N, steps, C), window, stride, padding, dilation)``: windows up to 4, strides 1-3 (1 when
    dilated), steps up to 8 (or the dilated window's span)."""
    padding = draw(st.sampled_from(paddings))
    window, dilation = draw(st.integers(1, 4)), draw(st.sampled_from(dilations))
    stride = 1 if dilation > 1 else draw(st.integers(1, 3))
    span = (window - 1) * dilation + 1
    steps = draw(st.integers(span if padding == "valid" else 1, max(span, 8)))
    return (draw(batch_sizes()), steps, draw(channel_counts())), window, stride, padding, dilation


# ----------------------------------------------------------------------------------------------- Conv1D

@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax"])
@settings(max_examples=8)
@given(case=windows_1d(dilations=(1, 1, 2)), filters=st.integers(1, 3), use_bias=st.booleans(), seed=rng_seeds())
def test_conv1d_gradients(activation, case, filters, use_bias, seed):
    shape, window, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    args = dict(filters=filters, kernel_size=window, strides=stride, padding=padding, dilation_rate=dilation,
                use_bias=use_bias)
    with float64_floatx():
        layer, linear = Conv1D(activation=activation, **args), Conv1D(**args)
        layer.build(shape[1:]), linear.build(shape[1:])
    kernel = kernel_values(rng, (window, shape[2], filters), window * shape[2])
    weights = [kernel, 0.5 * rng.standard_normal(filters)] if use_bias else [kernel]
    layer.set_weights(weights), linear.set_weights(weights)
    x = rng.standard_normal(shape)
    if activation == "relu":
        assume(min_abs(linear.forward(x)) > PREACTIVATION_MARGIN)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input", "kernel"] + (["bias"] if use_bias else [])
    assert report.checks[1].shape == (window, shape[2], filters)
    assert_gradients_match(report)


# --------------------------------------------------------------------------------------------- poolings

@both_backends
@settings(max_examples=10)
@given(case=windows_1d(("valid", "same")), offset=st.sampled_from([0.0, -10.0]), seed=rng_seeds())
def test_max_pooling_1d_gradients(backend, case, offset, seed):
    """Values 1e-2 apart: a step of LINEAR_STEP never changes a winner; offset -10 would let padding win."""
    nnscratch.set_backend(backend)
    shape, window, stride, padding, _ = case
    x = well_separated(np.random.default_rng(seed), shape) + offset
    assert_gradients_match(check_layer(MaxPooling1D(window, stride, padding), x=x, seed=seed % 1000, h=LINEAR_STEP))


@both_backends
@settings(max_examples=10)
@given(case=windows_1d(("valid", "same")), seed=rng_seeds())
def test_average_pooling_1d_gradients(backend, case, seed):
    nnscratch.set_backend(backend)
    shape, window, stride, padding, _ = case
    x = np.random.default_rng(seed).standard_normal(shape)
    report = check_layer(AveragePooling1D(window, stride, padding), x=x, seed=seed % 1000, h=LINEAR_STEP)
    assert [c.name for c in report.checks] == ["input"]
    assert_gradients_match(report)


@settings(max_examples=15)
@given(shape=st.tuples(batch_sizes(), feature_sizes(), channel_counts()), keepdims=st.booleans(), seed=rng_seeds())
def test_global_poolings_1d_gradients(shape, keepdims, seed):
    rng = np.random.default_rng(seed)
    assert_gradients_match(check_layer(GlobalAveragePooling1D(keepdims=keepdims), x=rng.standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))
    assert_gradients_match(check_layer(GlobalMaxPooling1D(keepdims=keepdims), x=well_separated(rng, shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


# ------------------------------------------------------------------------------------------------ PReLU

@st.composite
def prelu_cases(draw):
    """A batch shape of rank 2 to 4 and shared axes among its sample axes (or None)."""
    shape = draw(st.one_of(st.tuples(batch_sizes(), feature_sizes()),
                           st.tuples(batch_sizes(), feature_sizes(), feature_sizes()), image_shapes()))
    axes = draw(st.lists(st.integers(1, len(shape) - 1), unique=True, max_size=len(shape) - 1))
    return shape, (axes or None)


@given(case=prelu_cases(), seed=rng_seeds())
def test_prelu_gradients(case, seed):
    shape, shared_axes = case
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = PReLU(shared_axes=shared_axes)
        layer.build(shape[1:])
    layer.set_weights([rng.uniform(-0.5, 1.5, layer.alpha.shape)])
    report = check_layer(layer, x=away_from_zero(rng, shape), seed=seed % 1000, h=LINEAR_STEP)
    assert [c.name for c in report.checks] == ["input", "alpha"]
    assert_gradients_match(report)


# ------------------------------------------------------------------------------------ reshaping layers

def croppings(shape):
    """Croppings that leave at least one row and one column of ``shape`` (N, H, W, C)."""
    _, h, w, _ = shape
    top = st.integers(0, h - 1).flatmap(lambda t: st.tuples(st.just(t), st.integers(0, h - 1 - t)))
    left = st.integers(0, w - 1).flatmap(lambda t: st.tuples(st.just(t), st.integers(0, w - 1 - t)))
    return st.tuples(top, left)


@settings(max_examples=15)
@given(data=st.data(), seed=rng_seeds())
def test_cropping_gradients(data, seed):
    shape = data.draw(image_shapes())
    layer = Cropping2D(data.draw(croppings(shape)))
    assert_gradients_match(check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


@settings(max_examples=15)
@given(shape=image_shapes(), data=st.data(), seed=rng_seeds())
def test_permute_gradients(shape, data, seed):
    dims = tuple(data.draw(st.permutations([1, 2, 3])))
    assert_gradients_match(check_layer(Permute(dims), x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


@settings(max_examples=15)
@given(n=batch_sizes(), features=feature_sizes(), copies=st.integers(1, 4), seed=rng_seeds())
def test_repeat_vector_gradients(n, features, copies, seed):
    x = np.random.default_rng(seed).standard_normal((n, features))
    assert_gradients_match(check_layer(RepeatVector(copies), x=x, seed=seed % 1000, h=LINEAR_STEP))


@both_backends
@settings(max_examples=10)
@given(shape=image_shapes(), size=st.tuples(st.integers(1, 3), st.integers(1, 3)), seed=rng_seeds())
def test_bilinear_up_sampling_gradients(backend, shape, size, seed):
    nnscratch.set_backend(backend)
    layer = UpSampling2D(size, interpolation="bilinear")
    assert_gradients_match(check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


# -------------------------------------------------------------------------------------------- a model

def test_a_model_of_the_new_layers(float64):
    """Every new layer in one chain, weights and input gradients through all of them (default kernel twin)."""
    rng = np.random.default_rng(0)
    model = nnscratch.Sequential([
        Input((4, 5, 1)), Cropping2D(((1, 0), (0, 2))), UpSampling2D(2, interpolation="bilinear"),
        Permute((2, 1, 3)), PReLU(alpha_initializer="ones", shared_axes=[1, 2]), Flatten(), RepeatVector(3),
        Conv1D(2, 2, padding="causal", activation="tanh"), AveragePooling1D(2, padding="same"),
        Conv1D(2, 2, padding="same"), GlobalAveragePooling1D(), Dense(2, activation="tanh")])
    prelu = model.layers[3]
    prelu.set_weights([rng.uniform(0.2, 0.8, prelu.alpha.shape)])
    x = rng.standard_normal((2, 4, 5, 1))
    prelu_input = model.layers[2].forward(model.layers[1].forward(model.layers[0].forward(x)))
    assert np.abs(prelu_input).min() > 10 * STEP  # no step of the check crosses PReLU's kink
    report = check_model(model, x, seed=1, h=STEP)
    names = [c.name for c in report.checks]
    assert names[0] == "input" and sum(name.endswith("/alpha") for name in names) == 1 and len(names) == 1 + 1 + 6
    assert_gradients_match(report)
