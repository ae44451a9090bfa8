"""Gradient checks of the losses added with the package (KL divergence ... focal cross-entropies), in float64.

``loss.gradient(y_true, y_pred)`` (the gradient of the batch mean) against
central differences of ``loss(y_true, y_pred)`` over generated shapes, with
predictions kept away from every kink and clipping bound by more than the
step: hinge margins ``1 - t p`` and the categorical hinge's margin and
maximum away from 0 and from ties, probabilities inside [0.02, 0.98] (the
clipping bounds are 1e-7 and 1 - 1e-7), rates and ``log(1 + p)`` arguments
away from ``1e-7``. Then the fused path of binary focal cross-entropy after
a sigmoid layer, through a whole model, and the reductions' scales.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import losses
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Dense

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, rng_seeds

H = 1e-6          # losses with logarithms of probabilities (third derivatives up to ~1/p**3, p >= 0.02)
H_SMOOTH = 1e-4   # log-cosh, logits: bounded derivatives (cosine similarity takes H: 1/||p||**3 grows)
H_MSLE = 1e-5     # squared logs of up to 1.8: less rounding than with H, truncation still ~1e-11
H_LINEAR = 1e-3   # piecewise linear or quadratic losses, on inputs that keep each step on one piece
MARGIN = 1e-2     # distance of every input from a kink (> H_LINEAR)


def assert_close_gradients(analytic, numeric, tolerance=TOLERANCE):
    assert analytic.shape == numeric.shape
    error = relative_error(analytic, numeric)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    assert error.max(initial=0.0) < tolerance, (
        f"max relative error {error.max():.3e} at {worst}: analytic {analytic[worst]} vs numeric {numeric[worst]}")


def check_gradient(loss, y_true, y_pred, h):
    grad = loss.gradient(y_true, y_pred)
    assert grad.shape == y_pred.shape
    assert_close_gradients(grad, numerical_gradient(lambda: loss(y_true, y_pred), y_pred, h))
    return grad


def loss_shapes():
    """Batch shapes of rank 2 to 4 (the last axis is the one the losses reduce)."""
    side = st.integers(1, 4)
    return st.one_of(st.tuples(batch_sizes(), side), st.tuples(batch_sizes(), side, side),
                     st.tuples(batch_sizes(), side, side, side))


def class_shapes():
    """(N, K) and (N, T, K) shapes with K >= 2 classes."""
    classes = st.integers(2, 5)
    return st.one_of(st.tuples(batch_sizes(), classes), st.tuples(batch_sizes(), st.integers(1, 3), classes))


def probabilities(rng, shape):
    return rng.uniform(0.02, 0.98, shape)


def one_hot_or_soft(rng, shape, soft):
    classes = shape[-1]
    if soft:
        return rng.dirichlet(np.ones(classes), shape[:-1])
    return np.eye(classes)[rng.integers(0, classes, shape[:-1])]


def away_from(values, kink, margin=MARGIN):
    """``values`` moved to at least ``margin`` from ``kink``."""
    near = np.abs(values - kink) < margin
    return np.where(near, kink + np.where(values >= kink, margin, -margin), values)


# ------------------------------------------------------------------ probabilistic

@given(shape=loss_shapes(), soft=st.booleans(), seed=rng_seeds())
def test_kl_divergence_gradient(shape, soft, seed):
    """-clip(t) / (R p) inside the clipping range, R the number of distributions."""
    rng = np.random.default_rng(seed)
    t = one_hot_or_soft(rng, shape, soft)
    p = probabilities(rng, shape)
    grad = check_gradient(losses.KLDivergence(), t, p, H)
    np.testing.assert_allclose(grad, -np.clip(t, 1e-7, 1) / p / (p.size // shape[-1]), rtol=1e-12)


@given(shape=loss_shapes(), seed=rng_seeds())
def test_poisson_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    t = rng.poisson(2.0, shape).astype(np.float64)
    p = rng.uniform(0.1, 4.0, shape)
    grad = check_gradient(losses.Poisson(), t, p, H)
    np.testing.assert_allclose(grad, (1 - t / (p + 1e-7)) / p.size, rtol=1e-12)


# -------------------------------------------------------------------- regression

@given(shape=loss_shapes(), zeros=st.booleans(), seed=rng_seeds())
def test_mean_absolute_percentage_error_gradient(shape, zeros, seed):
    """100 sign(p - t) / (N K max(|t|, 1e-7)): linear between kinks, targets of 0 weigh 1e9 times."""
    rng = np.random.default_rng(seed)
    t = away_from(rng.standard_normal(shape), 0.0, 0.1)
    if zeros:
        t.flat[:: 3] = 0.0
    p = t + away_from(rng.standard_normal(shape), 0.0)
    grad = check_gradient(losses.MeanAbsolutePercentageError(), t, p, H_LINEAR)
    np.testing.assert_allclose(grad, 100 * np.sign(p - t) / np.maximum(np.abs(t), 1e-7) / p.size, rtol=1e-12)


@given(shape=loss_shapes(), seed=rng_seeds())
def test_mean_squared_logarithmic_error_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 5, shape)
    p = rng.uniform(0.01, 5, shape)
    grad = check_gradient(losses.MeanSquaredLogarithmicError(), t, p, H_MSLE)
    np.testing.assert_allclose(grad, 2 * (np.log1p(p) - np.log1p(np.maximum(t, 1e-7))) / (1 + p) / p.size,
                               rtol=1e-12)


def test_mean_squared_logarithmic_error_gradient_is_zero_below_epsilon():
    """A prediction below 1e-7 is replaced by 1e-7 (Keras's maximum): it has no gradient."""
    t = np.array([[1.0, 2.0, 0.5]])
    p = np.array([[-3.0, 0.0, 1.0]])
    grad = losses.mean_squared_logarithmic_error.gradient(t, p)
    assert grad[0, 0] == 0.0 and grad[0, 1] == 0.0 and grad[0, 2] != 0.0


@given(shape=loss_shapes(), scale=st.sampled_from([0.5, 3.0, 300.0]), seed=rng_seeds())
def test_log_cosh_gradient(shape, scale, seed):
    """tanh(p - t) / (N K), for small errors (quadratic) and huge ones (linear, no overflow)."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(shape)
    p = t + scale * rng.standard_normal(shape)
    grad = check_gradient(losses.LogCosh(), t, p, H_SMOOTH)
    np.testing.assert_allclose(grad, np.tanh(p - t) / p.size, rtol=1e-12)


@given(shape=loss_shapes(), last=st.booleans(), seed=rng_seeds())
def test_cosine_similarity_gradient(shape, last, seed):
    """-(v - u (u . v)) / ||p|| along the axis (the last, or axis 1 for outputs of three axes or more)."""
    rng = np.random.default_rng(seed)
    axis = -1 if last or len(shape) == 2 else 1
    shape = list(shape)
    shape[axis] += 1                   # vectors of 2 or more values (one value: u = sign(p), a gradient of 0)
    t, p = rng.standard_normal(shape), rng.standard_normal(shape)
    p = np.where(np.abs(p) < 0.1, 0.1, p)          # no vector near 0 (where the scale 1/||p|| is capped)
    grad = check_gradient(losses.CosineSimilarity(axis=axis), t, p, H)
    norm_p = np.linalg.norm(p, axis=axis, keepdims=True)
    u, v = p / norm_p, t / np.linalg.norm(t, axis=axis, keepdims=True)
    expected = -(v - u * np.sum(u * v, axis=axis, keepdims=True)) / norm_p / (p.size // shape[axis])
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-14)


def test_cosine_similarity_of_tiny_vectors_is_linear():
    """||p|| < 1e-7: Keras scales by 1e7 instead of 1 / ||p||, so the loss is -1e7 p . v and the gradient -1e7 v.

    (And a zero vector gives 0, not NaN.)
    """
    t = np.array([[3.0, 4.0]])
    p = np.array([[1e-9, -2e-9]])
    loss = losses.CosineSimilarity()
    np.testing.assert_allclose(loss.per_sample(t, p), [-1e7 * (1e-9 * 0.6 - 2e-9 * 0.8)], rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(t, p), [[-1e7 * 0.6, -1e7 * 0.8]], rtol=1e-12)
    assert loss.per_sample(t, np.zeros((1, 2)))[0] == 0.0
    assert_close_gradients(loss.gradient(t, p), numerical_gradient(lambda: loss(t, p), p, 1e-10))
    # vectors of one value: u = sign(p), constant where p != 0, so a gradient of 0 (to rounding)
    t1, p1 = np.array([[2.0], [-1.0]]), np.array([[0.3], [0.7]])
    np.testing.assert_allclose(loss.per_sample(t1, p1), [-1.0, 1.0])
    np.testing.assert_allclose(loss.gradient(t1, p1), 0.0, atol=1e-15)


# ------------------------------------------------------------------------- hinges

@given(shape=loss_shapes(), zero_one=st.booleans(), squared=st.booleans(), seed=rng_seeds())
def test_hinge_gradients(shape, zero_one, squared, seed):
    """-t [1 - t p >= 0] / (N K) (squared: -2 t max(1 - t p, 0) / (N K)), with 0/1 targets read as -1/1."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], shape)
    t = (signs + 1) / 2 if zero_one else signs
    p = signs * (1 - away_from(2 * rng.standard_normal(shape), 0.0))     # 1 - t p kept away from 0
    loss = losses.SquaredHinge() if squared else losses.Hinge()
    grad = check_gradient(loss, t, p, H_LINEAR)
    margin = 1 - signs * p
    expected = -2 * signs * np.maximum(margin, 0) if squared else -signs * (margin > 0)
    np.testing.assert_allclose(grad, expected / p.size, rtol=1e-12)


@given(shape=class_shapes(), seed=rng_seeds())
def test_categorical_hinge_gradient(shape, seed):
    """(1 - t_j)[j = best other class] - t_j, over R rows, where the margin is positive; 0 elsewhere."""
    rng = np.random.default_rng(seed)
    classes = shape[-1]
    labels = rng.integers(0, classes, shape[:-1])
    t = np.eye(classes)[labels]
    # the other classes' scores distinct, 0.1 apart, and 0.02 or more from 0 (the true class's (1 - t) p): no tie
    # for the maximum; the true class's score set so that the margin is at least MARGIN from 0 on either side
    p = away_from(np.argsort(rng.random(shape), axis=-1) * 0.1 + rng.uniform(-1, 1, shape[:-1] + (1,)), 0.0, 0.02)
    best_other = np.maximum(np.where(t == 1, -np.inf, p).max(axis=-1), 0.0)
    margin = away_from(rng.uniform(-0.5, 1.5, shape[:-1]), 0.0)
    np.put_along_axis(p, labels[..., None], (best_other + 1 - margin)[..., None], axis=-1)
    grad = check_gradient(losses.CategoricalHinge(), t, p, H_LINEAR)
    other = ((t == 0) & (p == best_other[..., None])).astype(float)      # none when every other score is < 0
    rows = p.size // classes
    np.testing.assert_allclose(grad, (other - t) * (margin > 0)[..., None] / rows, rtol=1e-12)


def test_categorical_hinge_shares_a_tie_and_takes_the_slope_at_zero_margin():
    """Two other classes tie for the maximum: each gets half (TensorFlow's reduce_max); a margin of exactly 0
    counts as positive (TensorFlow's maximum gives a tie to its first argument)."""
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    p = np.array([[0.5, 0.2, 0.2], [0.0, 2.0, 1.0]])      # row 2: neg - pos + 1 = 1 - 2 + 1 = 0
    np.testing.assert_allclose(losses.categorical_hinge.per_sample(t, p), [0.7, 0.0])
    np.testing.assert_allclose(losses.categorical_hinge.gradient(t, p), np.array([[-1.0, 0.5, 0.5], [0.0, -1.0, 1.0]]) / 2)


# ------------------------------------------------------------------------- focal

def alphas():
    return st.sampled_from([0.25, 1.0, "per class"])


@given(shape=class_shapes(), soft=st.booleans(), gamma=st.sampled_from([0.0, 0.5, 2.0, 3.5]), alpha=alphas(),
       smoothing=st.sampled_from([0.0, 0.2]), from_logits=st.booleans(), seed=rng_seeds())
def test_categorical_focal_crossentropy_gradient(shape, soft, gamma, alpha, smoothing, from_logits, seed):
    rng = np.random.default_rng(seed)
    if alpha == "per class":
        alpha = list(rng.uniform(0.1, 1.0, shape[-1]))
    t = one_hot_or_soft(rng, shape, soft)
    loss = losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma, from_logits=from_logits,
                                               label_smoothing=smoothing)
    p = 2 * rng.standard_normal(shape) if from_logits else probabilities(rng, shape)
    check_gradient(loss, t, p, H_SMOOTH if from_logits else H)


@given(shape=loss_shapes(), soft=st.booleans(), gamma=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
       balancing=st.booleans(), smoothing=st.sampled_from([0.0, 0.3]), from_logits=st.booleans(), seed=rng_seeds())
def test_binary_focal_crossentropy_gradient(shape, soft, gamma, balancing, smoothing, from_logits, seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    loss = losses.BinaryFocalCrossentropy(apply_class_balancing=balancing, alpha=0.3, gamma=gamma,
                                          from_logits=from_logits, label_smoothing=smoothing)
    p = 3 * rng.standard_normal(shape) if from_logits else probabilities(rng, shape)
    check_gradient(loss, t, p, H_SMOOTH if from_logits else H)


@settings(max_examples=10)
@given(n=batch_sizes(), units=st.integers(1, 4), gamma=st.sampled_from([0.0, 2.0]), seed=rng_seeds())
def test_binary_focal_crossentropy_fused_gradient_matches_from_logits(n, units, gamma, seed):
    """After a sigmoid layer the model hands over the logits: fused(t, z) is the from_logits loss and gradient."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, (n, units)).astype(np.float64)
    z = 3 * rng.standard_normal((n, units))
    fused = losses.BinaryFocalCrossentropy(gamma=gamma)
    from_logits = losses.BinaryFocalCrossentropy(gamma=gamma, from_logits=True)
    per_sample, grad = fused.fused(t, z)
    np.testing.assert_array_equal(per_sample, from_logits.per_sample(t, z))
    np.testing.assert_array_equal(grad, from_logits.gradient(t, z))
    assert_close_gradients(grad, numerical_gradient(lambda: from_logits(t, z), z, H_SMOOTH))


@pytest.mark.parametrize("seed", [0, 1])
def test_model_fused_binary_focal_path_gradients(float64, seed):
    """A sigmoid output with binary focal cross-entropy: the logits' gradient, then backward below the sigmoid."""
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([nnscratch.Input((5,)), Dense(4, activation="tanh"), Dense(3, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5))
    assert model.layers[-1].keep_logits
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 2, (4, 3)).astype(np.float64)
    y_pred = model.forward(x, training=True)
    assert model._fused_output()
    per_sample = model._loss_and_backward(y, y_pred, backward=True)
    np.testing.assert_allclose(per_sample, model.loss.per_sample(y, y_pred), rtol=1e-10)
    analytic = {(layer.name, name): p.grad.copy() for layer in model.layers for name, p in layer.params.items()}
    for layer in model.layers:
        for name, p in layer.params.items():
            numeric = numerical_gradient(lambda: model.loss(y, model.forward(x, training=True)), p.value, H)
            assert_close_gradients(analytic[(layer.name, name)], numeric)


# --------------------------------------------------------------------- reductions

@settings(max_examples=15)
@given(shape=loss_shapes(), reduction=st.sampled_from(["sum", "mean_with_sample_weight", "none", "mean"]),
       weighted=st.booleans(), seed=rng_seeds())
def test_reduction_scales_the_batch_mean_and_its_gradient(shape, reduction, weighted, seed):
    """loss(t, p, w) with a reduction is loss_scale times the weighted batch mean; the gradient Keras trains with
    (of that value, or of the sum of the values for "none") is gradient_scale times the gradient of the mean."""
    rng = np.random.default_rng(seed)
    t, p = rng.standard_normal(shape), rng.standard_normal(shape)
    w = rng.uniform(0.5, 2.0, shape[0]) if weighted else None
    loss = losses.LogCosh(reduction=reduction)
    plain = losses.LogCosh()
    loss_scale, gradient_scale = loss.reduction_scale(shape, w)
    values_per_sample = int(np.prod(shape[1:-1]))
    mean = plain(t, p, w)
    if reduction == "none":
        np.testing.assert_allclose(loss(t, p, w), plain.per_sample(t, p) * (1 if w is None else w), rtol=1e-12)
        reduced = lambda: float(np.sum(loss(t, p, w))) * values_per_sample   # noqa: E731  (Keras's sum of values)
    else:
        assert loss(t, p, w) == pytest.approx(loss_scale * mean, rel=1e-12)
        reduced = lambda: loss(t, p, w)                                      # noqa: E731
    weighted_grad = plain.gradient(t, p) * (1 if w is None else w.reshape(-1, *[1] * (len(shape) - 1)))
    assert_close_gradients(gradient_scale * weighted_grad, numerical_gradient(reduced, p, H_SMOOTH))
