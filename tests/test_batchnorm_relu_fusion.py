"""BatchNormalization + ReLU fused into one step: the same numbers, bit for bit, with fewer passes.

* the kernels: ``batchnorm_forward_train(..., relu=True)`` and
  ``batchnorm_backward(..., beta, relu=True)`` equal the two kernels one after
  the other (bit-identical, both twins), and the twins agree to rounding;
* the model: ``steps()`` finds the pairs; forward, backward, moving statistics
  and whole training runs are bit-identical with and without the fusion, in
  training and inference mode, on both backends;
* the fused step is gradient-checked in float64 like every layer.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_model
from nnscratch.kernels import fast, reference
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, ReLU

try:
    from tests.grad_strategies import STEP, TOLERANCE, bn_shapes, random_bn_weights, rng_seeds
    from tests.kernel_helpers import batchnorm_inputs
    from tests.strategies import float_dtypes
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, bn_shapes, random_bn_weights, rng_seeds
    from kernel_helpers import batchnorm_inputs
    from strategies import float_dtypes

TWINS = [reference, fast]


# ------------------------------------------------------------------ kernels

@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@given(data=st.data(), dtype=float_dtypes(), seed=rng_seeds())
def test_fused_kernels_equal_batchnorm_then_relu_bit_for_bit(twin, data, dtype, seed):
    shape = data.draw(bn_shapes(data.draw(st.sampled_from([2, 4]))), label="shape")
    rng = np.random.default_rng(seed)
    x, gamma, beta = batchnorm_inputs(rng, shape, dtype)
    x2d = x.reshape(-1, shape[-1])
    grad = rng.standard_normal(x2d.shape).astype(dtype)
    grad[rng.random(grad.shape) < 0.05] = 0.0

    y, xhat, mean, var, inv_std = twin.batchnorm_forward_train(x2d, gamma, beta, 1e-3)
    relu_y = twin.bias_activation(y.copy(), None, "relu")
    fused = twin.batchnorm_forward_train(x2d, gamma, beta, 1e-3, relu=True)
    for ours, theirs in zip(fused, (relu_y, xhat, mean, var, inv_std)):
        np.testing.assert_array_equal(ours, theirs)

    expected = twin.batchnorm_backward(twin.activation_backward(grad, relu_y, "relu"), xhat, gamma, inv_std)
    result = twin.batchnorm_backward(grad, xhat, gamma, inv_std, beta=beta, relu=True)
    for ours, theirs in zip(result, expected):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)


@given(data=st.data(), dtype=float_dtypes(), seed=rng_seeds())
def test_fused_twins_agree(data, dtype, seed):
    shape = data.draw(bn_shapes(4), label="shape")
    rng = np.random.default_rng(seed)
    x, gamma, beta = batchnorm_inputs(rng, shape, dtype)
    x2d = x.reshape(-1, shape[-1])
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    ours = fast.batchnorm_forward_train(x2d, gamma, beta, 1e-3, relu=True)
    theirs = reference.batchnorm_forward_train(x2d, gamma, beta, 1e-3, relu=True)
    # the twins' statistics differ in the last bits; keep away from the ReLU's kink
    assume(np.min(np.abs(gamma * theirs[1] + beta)) > 1e-3)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=rtol, atol=rtol)
    grad = rng.standard_normal(x2d.shape).astype(dtype)
    ours = fast.batchnorm_backward(grad, ours[1], gamma, ours[4], beta=beta, relu=True)
    theirs = reference.batchnorm_backward(grad, theirs[1], gamma, theirs[4], beta=beta, relu=True)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * x2d.shape[0])


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@given(data=st.data(), dtype=float_dtypes(), seed=rng_seeds(), relu=st.booleans())
def test_inference_kernel_is_the_numpy_expression_bit_for_bit(twin, data, dtype, seed, relu):
    """``x * scale + shift`` (a product, then a sum: no fused multiply-add), then the twin's ReLU."""
    shape = data.draw(bn_shapes(data.draw(st.sampled_from([2, 4]))), label="shape")
    rng = np.random.default_rng(seed)
    x, scale, shift = batchnorm_inputs(rng, shape, dtype)
    x2d = x.reshape(-1, shape[-1])
    expected = x2d * scale + shift
    if relu:
        twin.bias_activation(expected, None, "relu")
    result = twin.batchnorm_inference(x2d, scale, shift, relu=relu)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_fused_backward_needs_beta(twin):
    g = np.ones((4, 2))
    with pytest.raises(ValueError, match="needs beta"):
        twin.batchnorm_backward(g, g, np.ones(2), np.ones(2), relu=True)


def test_fused_relu_keeps_nan_and_zeroes_negative_zero():
    """As the ReLU layer: NaN stays NaN, and -0.0 (or any y <= 0) becomes +0.0."""
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [np.nan, 0.0]], np.float32)
    for twin in TWINS:
        y = twin.batchnorm_forward_train(x, np.ones(2, np.float32), np.zeros(2, np.float32), 1e-3, relu=True)[0]
        assert np.isnan(y[:, 0]).all()           # NaN in the batch -> NaN statistics -> NaN output
        assert not np.signbit(y[:, 1]).any() and (y[:, 1] == 0).all()


# -------------------------------------------------------------------- model

def _cnn(first_relu=ReLU, dtype="float32"):
    nnscratch.set_floatx(dtype)
    try:
        nnscratch.set_random_seed(5)
        return nnscratch.Sequential([
            nnscratch.Input((6, 6, 2)),
            Conv2D(4, 3, padding="same"), BatchNormalization(), first_relu(),
            MaxPooling2D(), Conv2D(3, 3, padding="same"), BatchNormalization(), Activation("relu"),
            Flatten(), Dense(5), BatchNormalization(), Activation("tanh"),
            Dense(3, activation="softmax"),
        ])
    finally:
        nnscratch.set_floatx("float32")


def test_steps_fuse_batchnorm_followed_by_relu_only():
    model = _cnn()
    assert model.steps() == [(0, False), (1, True), (3, False), (4, False), (5, True), (7, False), (8, False),
                             (9, False), (10, False), (11, False)]
    model.fuse_batchnorm_relu = False
    assert model.steps() == [(i, False) for i in range(len(model.layers))]
    tail = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2), BatchNormalization()])  # BN last: nothing to fuse
    assert tail.steps() == [(0, False), (1, False)]


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_model_is_bit_identical_to_layer_by_layer(backend, dtype):
    previous = kernels.get_backend()
    kernels.set_backend(backend)
    try:
        fused, plain = _cnn(dtype=dtype), _cnn(dtype=dtype)
        plain.fuse_batchnorm_relu = False
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 6, 6, 2)).astype(dtype)
        g = rng.standard_normal((4, 3)).astype(dtype)
        np.testing.assert_array_equal(fused.forward(x, training=True), plain.forward(x, training=True))
        np.testing.assert_array_equal(fused.backward(g), plain.backward(g))
        for a, b in zip(fused.parameters(), plain.parameters()):
            np.testing.assert_array_equal(a.grad, b.grad)
        np.testing.assert_array_equal(fused.forward(x), plain.forward(x))  # inference
        for a, b in zip(fused.get_weights(), plain.get_weights()):  # moving statistics included
            np.testing.assert_array_equal(a, b)
        # a few training steps: the same weights at the end
        for model in (fused, plain):
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x, np.array([0, 1, 2, 1]), epochs=3, batch_size=2, verbose=0, seed=1)
        for a, b in zip(fused.get_weights(), plain.get_weights()):
            np.testing.assert_array_equal(a, b)
    finally:
        kernels.set_backend(previous)


def test_backward_cannot_start_inside_a_fused_pair():
    model = _cnn()
    model.forward(np.zeros((2, 6, 6, 2), np.float32), training=True)
    with pytest.raises(ValueError, match="fused into it"):
        model.backward(np.zeros((2, 6, 6, 4), np.float32), from_layer=2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_fused_model_gradients(float64, seed, training):
    """Gradient check of a fused BN -> ReLU, away from the ReLU's kink.

    Training: Input -> Dense (no bias: BN cancels it, its gradient is 0) -> BN -> ReLU ->
    Dense(softmax). Inference (where
    only batch norm has a backward after a forward with ``training=False``):
    Input -> BN -> ReLU with trained moving statistics.
    """
    nnscratch.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    if training:
        model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(6, use_bias=False), BatchNormalization(), ReLU(),
                                      Dense(4, activation="softmax")])
        bn, x = model.layers[1], rng.standard_normal((5, 3))
        bn.set_weights(random_bn_weights(rng, 6))
        pre = bn.forward(model.layers[0].forward(x), training=True)  # the ReLU's input
    else:
        model = nnscratch.Sequential([nnscratch.Input((6,)), BatchNormalization(), ReLU()])
        bn, x = model.layers[0], rng.standard_normal((5, 6))
        bn.forward(rng.standard_normal((5, 6)), training=True)  # an earlier training step
        bn.set_weights(random_bn_weights(rng, 6))
        pre = bn.forward(x, training=False)
    assert model.steps()[-2 if training else 0] == (1 if training else 0, True)
    assert np.min(np.abs(pre)) > 1e-3, "pick another seed: a ReLU input is too close to its kink"
    assert np.any(pre < 0) and np.any(pre > 0)  # the ReLU does cut something
    report = check_model(model, x, training=training, seed=seed, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("rank", [2, 4])
@given(data=st.data(), seed=rng_seeds())
def test_fused_step_gradients_over_shapes(training, rank, data, seed):
    """Input -> BN -> ReLU (one fused step), gradient-checked in float64 over generated shapes."""
    shape = data.draw(bn_shapes(rank), label="shape")
    rng = np.random.default_rng(seed)
    previous = nnscratch.floatx()
    nnscratch.set_floatx("float64")
    try:
        model = nnscratch.Sequential([nnscratch.Input(shape[1:]), BatchNormalization(), ReLU()])
    finally:
        nnscratch.set_floatx(previous)
    assert model.steps() == [(0, True)]
    bn = model.layers[0]
    bn.forward(rng.standard_normal(shape), training=True)  # moving statistics of an earlier step
    bn.set_weights(random_bn_weights(rng, shape[-1]))
    x = rng.uniform(0.5, 2.0) * rng.standard_normal(shape) + rng.uniform(-1.0, 1.0)
    pre = bn.forward(x, training=training)
    assume(np.min(np.abs(pre)) > 1e-3)  # a step of h = 1e-5 never crosses the ReLU's kink
    report = check_model(model, x, training=training, seed=seed % 1000, h=STEP)
    assert [c.name.split("/")[-1] for c in report.checks] == ["input", "gamma", "beta"]
    assert report.max_error < TOLERANCE, f"\n{report}"
