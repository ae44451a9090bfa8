"""Property-based gradient checks of every layer, in float64.

Each test builds a layer for generated shapes, sets random weights, and asks
:func:`nnscratch.gradcheck.check_layer` to compare its backward pass (input
and parameter gradients) with central differences of a random projection of
its output. A correct backward agrees to a relative error far below 1e-6.
Inputs are chosen so that finite differences are valid: no ties in max
pooling, no values at the ReLU kink, at least 3 values per batch-norm channel
(see ``tests/grad_strategies.py``).

The end of the file checks a whole small CNN with :func:`check_model`, and
documents the max-pooling tie rule.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D,
                              ReLU)

try:
    from tests.grad_strategies import (ACTIVATION_STEP, ACTIVATIONS, LINEAR_STEP, PREACTIVATION_MARGIN, RELU_MARGIN,
                                       STEP, TOLERANCE, away_from_zero, batch_sizes, bn_shapes, feature_sizes,
                                       float64_floatx, image_shapes, kernel_values, layer_conv_geometry, min_abs,
                                       pool_geometry, random_bn_weights, rng_seeds, well_separated)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (ACTIVATION_STEP, ACTIVATIONS, LINEAR_STEP, PREACTIVATION_MARGIN, RELU_MARGIN,
                                 STEP, TOLERANCE, away_from_zero, batch_sizes, bn_shapes, feature_sizes,
                                 float64_floatx, image_shapes, kernel_values, layer_conv_geometry, min_abs,
                                 pool_geometry, random_bn_weights, rng_seeds, well_separated)


def assert_gradients_match(report):
    assert report.max_error < TOLERANCE, f"\n{report}"


def any_shapes():
    """Batch shapes of rank 2 to 4 (small)."""
    return st.one_of(st.tuples(batch_sizes(), feature_sizes()),
                     st.tuples(batch_sizes(), feature_sizes(), feature_sizes()),
                     image_shapes())


# ---------------------------------------------------------------------- Dense

@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@given(n=batch_sizes(), features=feature_sizes(), units=st.integers(1, 5), seed=rng_seeds())
def test_dense_gradients(activation, use_bias, n, features, units, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation=activation, use_bias=use_bias)
        layer.build((features,))
    kernel = kernel_values(rng, (features, units), features)
    bias = 0.5 * rng.standard_normal(units)
    layer.set_weights([kernel, bias] if use_bias else [kernel])
    x = rng.standard_normal((n, features))
    if activation == "relu":
        assume(min_abs(x @ kernel + (bias if use_bias else 0)) > PREACTIVATION_MARGIN)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input", "kernel"] + (["bias"] if use_bias else [])
    assert_gradients_match(report)


# --------------------------------------------------------------------- Conv2D

@pytest.mark.parametrize("activation", ACTIVATIONS)
@given(geom=layer_conv_geometry(), filters=st.integers(1, 3), use_bias=st.booleans(), seed=rng_seeds())
def test_conv2d_gradients(activation, geom, filters, use_bias, seed):
    rng = np.random.default_rng(seed)
    args = dict(filters=filters, kernel_size=(geom.kh, geom.kw), strides=(geom.sh, geom.sw),
                padding=geom.padding, use_bias=use_bias)
    with float64_floatx():
        layer = Conv2D(activation=activation, **args)
        layer.build(geom.x_shape[1:])
    assert layer.output_shape == (None, geom.out_h, geom.out_w, filters)
    kernel = kernel_values(rng, (geom.kh, geom.kw, geom.c, filters), geom.kh * geom.kw * geom.c)
    weights = [kernel, 0.5 * rng.standard_normal(filters)] if use_bias else [kernel]
    layer.set_weights(weights)
    x = rng.standard_normal(geom.x_shape)
    if activation == "relu":
        with float64_floatx():
            linear = Conv2D(activation="linear", **args)
            linear.build(geom.x_shape[1:])
        linear.set_weights(weights)
        assume(min_abs(linear.forward(x)) > PREACTIVATION_MARGIN)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.checks[1].shape == (geom.kh, geom.kw, geom.c, filters)
    assert_gradients_match(report)


# --------------------------------------------------------------- MaxPooling2D

@given(geom=pool_geometry(), seed=rng_seeds(), offset=st.sampled_from([0.0, -10.0]))
def test_max_pooling_gradients(geom, seed, offset):
    """Distinct inputs, 1e-2 apart: a step of LINEAR_STEP = 1e-3 never changes a window's winner.

    Max pooling is piecewise linear, so a central difference that stays on one
    piece is exact whatever the step; the large step keeps rounding small.
    ``offset=-10`` makes every input negative, so with ``"same"`` padding a
    zero-padded window would be won by the padding if it were not ``-inf``.
    """
    rng = np.random.default_rng(seed)
    layer = MaxPooling2D(pool_size=(geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding)
    x = well_separated(rng, geom.x_shape) + offset
    layer.build(geom.x_shape[1:])
    assert layer.output_shape == (None, geom.out_h, geom.out_w, geom.c)
    assert_gradients_match(check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP))


# --------------------------------------------------------- BatchNormalization

@pytest.mark.parametrize("rank", [2, 3, 4])
@given(data=st.data(), seed=rng_seeds())
def test_batch_normalization_training_gradients(rank, data, seed):
    shape = data.draw(bn_shapes(rank), label="shape")
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = BatchNormalization()
        layer.build(shape[1:])
    layer.set_weights(random_bn_weights(rng, shape[-1]))
    x = rng.uniform(0.5, 2.0) * rng.standard_normal(shape) + rng.uniform(-1.0, 1.0)
    report = check_layer(layer, x=x, training=True, seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input", "gamma", "beta"]
    assert_gradients_match(report)


@pytest.mark.parametrize("rank", [2, 3, 4])
@given(data=st.data(), seed=rng_seeds())
def test_batch_normalization_inference_gradients(rank, data, seed):
    """Inference mode uses the moving statistics: y = gamma (x - mean) / sqrt(var + eps) + beta.

    The layer has been trained on one batch before (the usual situation:
    fine-tuning or inspecting a trained model), then its four weights are set
    to random values.
    """
    shape = data.draw(bn_shapes(rank), label="shape")
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = BatchNormalization()
        layer.build(shape[1:])
    layer.forward(rng.standard_normal(shape), training=True)   # an earlier training step
    layer.set_weights(random_bn_weights(rng, shape[-1]))
    x = rng.uniform(0.5, 2.0) * rng.standard_normal(shape) + rng.uniform(-1.0, 1.0)
    assert_gradients_match(check_layer(layer, x=x, training=False, seed=seed % 1000, h=STEP))


@pytest.mark.parametrize("training", [True, False])
@given(data=st.data(), center=st.booleans(), scale=st.booleans(), channels_first=st.booleans(), seed=rng_seeds())
def test_batch_normalization_options_gradients(training, data, center, scale, channels_first, seed):
    """``center``/``scale`` off (beta = 0, gamma = 1, no such weights) and the channel axis 1 instead of -1.

    With ``axis=1`` the layer moves that axis last for the kernels and back; the
    channel axis of the drawn shape is put first so that it is the one normalised.
    """
    shape = data.draw(bn_shapes(data.draw(st.sampled_from([3, 4]), label="rank")), label="shape")
    rng = np.random.default_rng(seed)
    channels = shape[-1]
    if channels_first:
        shape = (shape[0], channels) + shape[1:-1]
    with float64_floatx():
        layer = BatchNormalization(axis=1 if channels_first else -1, center=center, scale=scale)
        layer.build(shape[1:])
    x = rng.uniform(0.5, 2.0) * rng.standard_normal(shape) + rng.uniform(-1.0, 1.0)
    layer.forward(x, training=True)   # moving statistics of an earlier step
    gamma, beta, mean, var = random_bn_weights(rng, channels)
    layer.set_weights(([gamma] if scale else []) + ([beta] if center else []) + [mean, var])
    report = check_layer(layer, x=x, training=training, seed=seed % 1000, h=STEP)
    assert [c.name for c in report.checks] == ["input"] + ["gamma"] * scale + ["beta"] * center
    assert_gradients_match(report)


def test_batch_normalization_inference_gradient_of_a_fresh_layer(float64):
    """Backward after an inference forward, on a layer never run in training mode."""
    rng = np.random.default_rng(0)
    layer = BatchNormalization()
    layer.build((3,))
    layer.set_weights(random_bn_weights(rng, 3))
    report = check_layer(layer, x=rng.standard_normal((4, 3)), training=False, h=STEP)
    assert_gradients_match(report)
    # the closed form: dx = dy * gamma / sqrt(moving_variance + eps)


# ------------------------------------------------------------------- Dropout

@given(shape=any_shapes(), rate=st.sampled_from([0.0, 0.1, 0.5, 0.9]), dropout_seed=st.integers(0, 2**16),
       seed=rng_seeds())
def test_dropout_training_gradients(shape, rate, dropout_seed, seed):
    """The checker rewinds the layer's generator, so every evaluation draws the same mask."""
    layer = Dropout(rate, seed=dropout_seed)
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradients_match(check_layer(layer, x=x, training=True, seed=seed % 1000, h=LINEAR_STEP))
    if rate > 0:  # the mask seen by backward is the one of the last forward
        y = layer.forward(x, training=True)
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)) * x, y)


@given(shape=any_shapes(), rate=st.sampled_from([0.1, 0.5, 0.9]), seed=rng_seeds())
def test_dropout_inference_is_the_identity(shape, rate, seed):
    layer = Dropout(rate, seed=1)
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradients_match(check_layer(layer, x=x, training=False, seed=seed % 1000, h=LINEAR_STEP))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    g = np.random.default_rng(seed + 1).standard_normal(shape)
    np.testing.assert_array_equal(layer.backward(g), g)


# ------------------------------------------------------------------- Flatten

@given(shape=any_shapes(), seed=rng_seeds())
def test_flatten_gradients(shape, seed):
    layer = Flatten()
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_gradients_match(check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP))
    assert layer.output_shape == (None, int(np.prod(shape[1:])))


# ---------------------------------------------------------- Activation, ReLU

@pytest.mark.parametrize("name", ACTIVATIONS)
@given(shape=any_shapes(), seed=rng_seeds())
def test_activation_gradients(name, shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape, RELU_MARGIN) if name == "relu" else 2.0 * rng.standard_normal(shape)
    h = LINEAR_STEP if name in ("relu", "linear") else ACTIVATION_STEP
    assert_gradients_match(check_layer(Activation(name), x=x, seed=seed % 1000, h=h))


@given(shape=any_shapes(), seed=rng_seeds())
def test_relu_gradients(shape, seed):
    x = away_from_zero(np.random.default_rng(seed), shape, RELU_MARGIN)
    assert min_abs(x) > RELU_MARGIN
    assert_gradients_match(check_layer(ReLU(), x=x, seed=seed % 1000, h=LINEAR_STEP))


def test_relu_gradient_at_zero_is_zero():
    layer = ReLU()
    x = np.array([[-1.0, 0.0, 2.0]])
    layer(x)  # build
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


# ------------------------------------------------- both kernel twins, fixed cases

@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("make_layer", [
    lambda: Conv2D(2, (3, 2), strides=(2, 1), padding="same", activation="tanh"),
    lambda: Conv2D(3, 2, strides=3, padding="valid", activation="softmax"),
    lambda: MaxPooling2D(3, strides=2, padding="same"),
    lambda: MaxPooling2D((2, 3), strides=(1, 2), padding="valid"),
    lambda: BatchNormalization(),
    lambda: Activation("sigmoid"),
], ids=["conv_same", "conv_valid", "pool_same", "pool_valid", "batchnorm", "sigmoid"])
def test_both_kernel_backends_give_correct_gradients(float64, backend, make_layer):
    """The default run uses one twin; this checks the other one's gradients on fixed cases."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(3)
    layer = make_layer()
    layer.build((5, 6, 2))
    params = [0.5 * rng.standard_normal(p.shape) for p in layer.params.values()]
    layer.set_weights(params + list(layer.buffers.values()))
    x = well_separated(rng, (2, 5, 6, 2), spacing=0.05)
    assert_gradients_match(check_layer(layer, x=x, h=STEP))


# --------------------------------------------------------------- a whole CNN

@pytest.mark.parametrize("seed", [0, 1])
def test_small_cnn_model_gradients(float64, seed):
    """Input -> Conv2D(same, relu) -> BatchNorm -> MaxPool -> Dropout(seed) -> Flatten -> Dense(softmax)."""
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([
        nnscratch.Input((6, 6, 2)),
        Conv2D(3, 3, padding="same", activation="relu"),
        BatchNormalization(),
        MaxPooling2D(),
        Dropout(0.3, seed=7),
        Flatten(),
        Dense(4, activation="softmax"),
    ])
    x = np.random.default_rng(seed).standard_normal((3, 6, 6, 2))
    report = check_model(model, x, seed=seed, h=STEP)
    names = [c.name for c in report.checks]
    assert names[0] == "input" and len(names) == 1 + 2 + 2 + 2
    assert any(n.endswith("/gamma") for n in names) and names[-2].endswith("/kernel")
    assert all(layer.params[name].value.dtype == np.float64 for layer in model.layers for name in layer.params)
    assert_gradients_match(report)
    # the dropout layer did drop something, so its mask was exercised
    dropout = model.layers[3]
    model.forward(x, training=True)
    assert 0 < np.count_nonzero(dropout._scaled_mask == 0) < dropout._scaled_mask.size


# ------------------------------------------------------- the max-pooling tie rule

def _first_max_routing(x, dy, geom):
    """dL/dx by the tie rule: each window's gradient goes to its first maximum in row-major order."""
    n, h, w, c = x.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for oy in range(geom.out_h):
            for ox in range(geom.out_w):
                for q in range(c):
                    best, where = -np.inf, None
                    for i in range(geom.kh):
                        for j in range(geom.kw):
                            r, col = oy * geom.sh - geom.pad_top + i, ox * geom.sw - geom.pad_left + j
                            if 0 <= r < h and 0 <= col < w and x[b, r, col, q] > best:
                                best, where = x[b, r, col, q], (r, col)
                    dx[b, where[0], where[1], q] += dy[b, oy, ox, q]
    return dx


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_max_pooling_tie_goes_to_the_first_cell_in_row_major_order(backend):
    nnscratch.set_backend(backend)
    layer = MaxPooling2D(2)
    x = np.array([[[5.0, 7.0], [7.0, 7.0]],      # tie of three: (0, 1) is first
                  [[3.0, 3.0], [3.0, 3.0]]])     # all equal: (0, 0) is first
    x = x[..., None]                             # (2, 2, 2, 1)
    layer.build((2, 2, 1))
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y[:, 0, 0, 0], [7.0, 3.0])
    dx = layer.backward(np.full((2, 1, 1, 1), 2.5))
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 2.5
    expected[1, 0, 0, 0] = 2.5
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@given(geom=pool_geometry(), seed=rng_seeds())
def test_max_pooling_routes_ties_by_the_rule(backend, geom, seed):
    """Small integer inputs (many ties), overlapping windows included."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=geom.x_shape).astype(np.float64)
    dy = rng.standard_normal(geom.y_shape)
    layer = MaxPooling2D(pool_size=(geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding)
    layer.build(geom.x_shape[1:])
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, _first_max_routing(x, dy, geom), rtol=1e-12, atol=1e-12)
    # every window has a real cell, so no gradient is lost to the padding
    assert dx.sum() == pytest.approx(dy.sum(), abs=1e-9)
