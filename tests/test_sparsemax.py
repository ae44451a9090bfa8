"""The activation "sparsemax": the projection onto the simplex (an independent bisection as the reference),
gradient checks (float64), Dense and Conv2D with it (no product kernel and no batch-norm folding applies it)."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import activations
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, Input

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx, rng_seeds
    from tests.strategies import large_batch_predictions
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx, rng_seeds
    from strategies import large_batch_predictions

MARGIN = 1e-3     # every value this far from the threshold: a step of STEP stays on one linear piece


def threshold_by_bisection(row):
    """The tau with sum(max(row - tau, 0)) = 1, by bisection: no sorting, another way than the library's."""
    low, high = row.min() - 1.0, row.max()
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if np.maximum(row - middle, 0).sum() > 1 else (low, middle)
    return (low + high) / 2


def thresholds(z):
    return np.apply_along_axis(threshold_by_bisection, -1, z)[..., None]


@settings(max_examples=50)
@given(shape=st.tuples(batch_sizes(), st.integers(1, 9)), scale=st.sampled_from([0.1, 1.0, 10.0]), seed=rng_seeds())
def test_it_projects_each_row_onto_the_simplex(shape, scale, seed):
    z = np.random.default_rng(seed).standard_normal(shape) * scale
    y = activations.forward(z.copy(), None, "sparsemax")
    np.testing.assert_allclose(y, np.maximum(z - thresholds(z), 0), atol=1e-10)
    assert (y >= 0).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    # the projection's optimality: z - y is the same number (tau) on the support, and z <= tau off it
    tau = thresholds(z)
    np.testing.assert_allclose(np.where(y > 0, z - y, tau), np.broadcast_to(tau, z.shape), atol=1e-9)
    assert (np.where(y > 0, -np.inf, z) <= tau + 1e-9).all()


def test_known_values_and_float32():
    z = np.array([[1.0, 2.0, 3.0], [0.1, 0.2, 0.15], [1.0, 0.8, -1.0]], dtype=np.float32)
    y = activations.forward(z.copy(), None, "sparsemax")
    expected = [[0, 0, 1], np.array([0.1, 0.2, 0.15]) + (1 - 0.45) / 3, [0.6, 0.4, 0]]   # all kept: z + (1 - sum) / 3
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)
    assert y.dtype == np.float32 and "sparsemax" in activations.NAMES and "sparsemax" in activations.ROW_WISE


def _away_from_the_kinks(z):
    """Every value MARGIN from the threshold, and some row keeps two values or more (else the output is constant,
    its gradient exactly 0, and a relative check sees only the rounding of the numerical one)."""
    tau = thresholds(z)
    return np.abs(z - tau).min() > MARGIN and (z > tau).sum(axis=-1).max() >= 2


@given(shape=st.tuples(batch_sizes(), st.integers(2, 8)), seed=rng_seeds())   # (one value: always 1)
def test_activation_layer_gradients(shape, seed):
    """dL/dz = [k in S] (g_k - mean of g over S): the support's gradients, less their mean."""
    x = np.random.default_rng(seed).standard_normal(shape)
    assume(_away_from_the_kinks(x))
    report = check_layer(Activation("sparsemax"), x=x, seed=seed % 1000, h=STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


@settings(max_examples=20)
@given(features=feature_sizes(), units=st.integers(2, 6), seed=rng_seeds())
def test_dense_gradients(features, units, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation="sparsemax", bias_initializer="random_normal")
        layer.build((features,))
    x = rng.standard_normal((3, features))
    assume(_away_from_the_kinks(x @ layer.kernel.value + layer.bias.value))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


def test_dense_prediction_of_a_large_batch_and_a_conv2d_with_a_batch_norm_after_it():
    """predict prepares the Dense product kernel for large passes; it cannot apply sparsemax, nor can a folding."""
    predicted, logits = large_batch_predictions("sparsemax")
    np.testing.assert_allclose(predicted, np.maximum(logits - thresholds(logits), 0), rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(1)
    conv = nnscratch.Sequential([Input((6, 6, 2)), Conv2D(4, 3, activation="sparsemax"), BatchNormalization(),
                                 Flatten(), Dense(3)])
    conv.compile(optimizer="sgd", loss="mse")
    assert conv.batchnorms_after_convolutions() == {}
    images = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
    conv.train_on_batch(images, rng.standard_normal((8, 3)).astype(np.float32))
    np.testing.assert_allclose(conv.layers[0].forward(images, training=False).sum(axis=-1), 1.0, rtol=1e-5)
