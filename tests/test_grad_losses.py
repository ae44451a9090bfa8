"""Gradient checks of the losses, in float64.

* ``loss.gradient(y_true, y_pred)`` against central differences of
  ``loss(y_true, y_pred)`` (the batch mean), predictions kept away from the
  clipping bounds 1e-7 and 1 - 1e-7;
* per-sample values against the textbook formulas;
* the fused softmax + cross-entropy path ``softmax_fused(y_true, logits)``
  (per-sample losses and ``(p - t) / N``) against central differences of the
  mean loss as a function of the logits, and its behaviour for huge logits;
* the model-level fused path (``Trainer._loss_and_backward``) against
  central differences of the mean loss with respect to the Dense weights.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import activations, kernels, losses
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Dense

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, rng_seeds

# Finite-difference steps. The cross-entropies are O(1) scalars whose third
# derivative grows like 1/p**3: with p >= 0.02 a step of 1e-6 keeps truncation
# (~h**2/p**3) and rounding (~1e-16/h) near 1e-10. The mean squared error is a
# quadratic, for which a central difference has no truncation error at all,
# so a large step (less rounding) is exact. Log-softmax has bounded derivatives.
H = 1e-6
H_QUADRATIC = 1e-3
H_LOGITS = 1e-5


def assert_close_gradients(analytic, numeric, tolerance=TOLERANCE):
    assert analytic.shape == numeric.shape
    error = relative_error(analytic, numeric)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    assert error.max(initial=0.0) < tolerance, (
        f"max relative error {error.max():.3e} at {worst}: analytic {analytic[worst]} vs numeric {numeric[worst]}")


def class_counts():
    return st.integers(2, 6)


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def probabilities(rng, shape):
    """Predictions in [0.02, 0.98]: far from the clipping bounds (h = 1e-6 never reaches them)."""
    return rng.uniform(0.02, 0.98, shape)


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def loss_shapes():
    """Batch shapes of rank 2 to 4 for element-wise losses."""
    side = st.integers(1, 4)
    return st.one_of(st.tuples(batch_sizes(), side), st.tuples(batch_sizes(), side, side),
                     st.tuples(batch_sizes(), side, side, side))


# ----------------------------------------------------------- loss.gradient vs numeric

@given(n=batch_sizes(), classes=class_counts(), soft=st.booleans(), seed=rng_seeds())
def test_categorical_crossentropy_gradient(n, classes, soft, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.dirichlet(np.ones(classes), n) if soft else one_hot(rng.integers(0, classes, n), classes)
    y_pred = probabilities(rng, (n, classes))
    loss = losses.categorical_crossentropy
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred, H)
    assert_close_gradients(loss.gradient(y_true, y_pred), numeric)


@given(n=batch_sizes(), classes=class_counts(), seed=rng_seeds())
def test_sparse_categorical_crossentropy_gradient(n, classes, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    y_pred = probabilities(rng, (n, classes))
    loss = losses.sparse_categorical_crossentropy
    numeric = numerical_gradient(lambda: loss(labels, y_pred), y_pred, H)
    grad = loss.gradient(labels, y_pred)
    assert_close_gradients(grad, numeric)
    # through q = p / S: the true class gets (1 - 1/q_label) / (N S), every other class 1 / (N S)
    total = y_pred.sum(axis=1)
    expected = np.repeat((1.0 / (n * total))[:, None], classes, axis=1)
    expected[np.arange(n), labels] = (1 - total / y_pred[np.arange(n), labels]) / (n * total)
    np.testing.assert_allclose(grad, expected, rtol=1e-10)


@given(shape=loss_shapes(), binary=st.booleans(), seed=rng_seeds())
def test_binary_crossentropy_gradient(shape, binary, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, shape).astype(np.float64) if binary else rng.uniform(0, 1, shape)
    y_pred = probabilities(rng, shape)
    loss = losses.binary_crossentropy
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred, H)
    assert_close_gradients(loss.gradient(y_true, y_pred), numeric)


@given(shape=loss_shapes(), seed=rng_seeds())
def test_mean_squared_error_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.standard_normal(shape)
    y_pred = rng.standard_normal(shape)
    loss = losses.mean_squared_error
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred, H_QUADRATIC)
    assert_close_gradients(loss.gradient(y_true, y_pred), numeric)


def test_clipped_predictions_have_zero_gradient():
    """Outside [1e-7, 1 - 1e-7] binary cross-entropy sees the clipped value, a constant: gradient 0 (as Keras)."""
    loss = losses.binary_crossentropy
    y_true = np.array([[1.0, 0.0, 1.0]])
    y_pred = np.array([[0.0, 1.0, 0.5]])
    grad = loss.gradient(y_true, y_pred)
    assert grad[0, 0] == 0.0 and grad[0, 1] == 0.0 and grad[0, 2] != 0.0
    assert np.isfinite(loss(y_true, y_pred))


def test_categorical_crossentropy_scales_predictions_to_sum_one_then_clips():
    """As Keras: q = p / sum(p), clipped; a clipped q_k's own log term is constant, but p_k still moves the sum."""
    loss = losses.categorical_crossentropy
    y_true = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y_pred = np.array([[0.0, 1.0, 0.5], [0.3, 0.3, 0.3]])
    np.testing.assert_allclose(loss.per_sample(y_true, y_pred), [-np.log(1e-7), np.log(3)])
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred, 1e-9)
    grad = loss.gradient(y_true, y_pred)
    assert_close_gradients(grad, numeric, tolerance=1e-5)
    np.testing.assert_array_equal(grad[0], [0, 0, 0])   # the target's q is clipped: the loss is a constant
    np.testing.assert_allclose(grad[1], np.array([1, 1, 1 - 3]) / (2 * 0.9))   # (-t/q + sum t) / (N S)


# ------------------------------------------------------------ per-sample formulas

@given(n=batch_sizes(), classes=class_counts(), seed=rng_seeds())
def test_crossentropy_per_sample_values(n, classes, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    y_pred = rng.dirichlet(np.ones(classes), n)
    y_pred[0, 0] = 0.0  # one clipped entry (and a row that no longer sums to 1)
    p = np.clip(y_pred / y_pred.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    expected = np.array([-np.log(p[i, labels[i]]) for i in range(n)])
    np.testing.assert_allclose(losses.categorical_crossentropy.per_sample(one_hot(labels, classes), y_pred),
                               expected, rtol=1e-12)
    assert losses.categorical_crossentropy(one_hot(labels, classes), y_pred) == pytest.approx(expected.mean())
    # the sparse loss clips first, then rescales (as Keras): the clipped 0 becomes 1e-7 in the row's sum
    c = np.clip(y_pred, 1e-7, 1 - 1e-7)
    sparse = np.array([np.log(c[i].sum()) - np.log(c[i, labels[i]]) for i in range(n)])
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy.per_sample(labels, y_pred), sparse, rtol=1e-12)


@given(shape=loss_shapes(), seed=rng_seeds())
def test_binary_crossentropy_and_mse_per_sample_values(shape, seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, shape)
    p = rng.uniform(0, 1, shape)
    n = shape[0]
    bce = [np.mean([-(ti * np.log(np.clip(pi, 1e-7, 1 - 1e-7))
                      + (1 - ti) * np.log(1 - np.clip(pi, 1e-7, 1 - 1e-7)))
                    for ti, pi in zip(t[i].ravel(), p[i].ravel())]) for i in range(n)]
    mse = [np.mean([(pi - ti) ** 2 for ti, pi in zip(t[i].ravel(), p[i].ravel())]) for i in range(n)]
    np.testing.assert_allclose(losses.binary_crossentropy.per_sample(t, p), bce, rtol=1e-12)
    np.testing.assert_allclose(losses.mean_squared_error.per_sample(t, p), mse, rtol=1e-12)
    assert losses.mean_squared_error(t, p) == pytest.approx(np.mean(mse))


def test_per_sample_values_on_a_worked_example():
    p = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(losses.categorical_crossentropy.per_sample(t, p), [-np.log(0.7), -np.log(0.5)])
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy.per_sample(np.array([0, 2]), p),
                               [-np.log(0.7), -np.log(0.5)])
    np.testing.assert_allclose(losses.mean_squared_error.per_sample(t, p),
                               [(0.09 + 0.04 + 0.01) / 3, (0.0625 + 0.0625 + 0.25) / 3])
    np.testing.assert_allclose(losses.binary_crossentropy.per_sample(np.array([[1.0, 0.0]]), np.array([[0.8, 0.4]])),
                               [-(np.log(0.8) + np.log(0.6)) / 2])


# ------------------------------------------------------- fused softmax + cross-entropy

@pytest.mark.parametrize("backend", kernels.BACKENDS)
@given(n=batch_sizes(), classes=class_counts(), sparse=st.booleans(), soft=st.booleans(), seed=rng_seeds())
def test_softmax_fused_gradient_and_losses(backend, n, classes, sparse, soft, seed):
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.standard_normal((n, classes))
    labels = rng.integers(0, classes, n)
    if sparse:
        loss, y_true, t = losses.sparse_categorical_crossentropy, labels, one_hot(labels, classes)
    else:
        loss = losses.categorical_crossentropy
        t = y_true = rng.dirichlet(np.ones(classes), n) if soft else one_hot(labels, classes)
    per_sample, grad = loss.softmax_fused(y_true, logits)
    assert per_sample.shape == (n,) and grad.shape == (n, classes)
    np.testing.assert_allclose(per_sample, -(t * log_softmax(logits)).sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, (activations.softmax(logits) - t) / n, rtol=1e-10, atol=1e-15)
    numeric = numerical_gradient(lambda: float(np.mean(loss.softmax_fused(y_true, logits)[0])), logits, H_LOGITS)
    assert_close_gradients(grad, numeric)


@given(n=batch_sizes(), classes=class_counts(), seed=rng_seeds())
def test_fused_gradient_equals_the_chain_through_softmax(n, classes, seed):
    """(p - t) / N is what backward through softmax of the plain cross-entropy gradient gives."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes))
    t = one_hot(rng.integers(0, classes, n), classes)
    p = activations.softmax(logits)
    chained = activations.backward(losses.categorical_crossentropy.gradient(t, p), p, "softmax")
    _, fused = losses.categorical_crossentropy.softmax_fused(t, logits)
    np.testing.assert_allclose(fused, chained, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_fused_with_extreme_logits(backend, dtype):
    nnscratch.set_backend(backend)
    z = 1e4
    logits = np.array([[z, -z, 0.0],     # confident and wrong (label 1): loss = z - (-z) = 2z
                       [z, -z, 0.0],     # confident and right (label 0): loss = 0
                       [z, z, -z]],      # two tied winners (label 0): loss = log 2
                      dtype=dtype)
    labels = np.array([1, 0, 0])
    per_sample, grad = losses.sparse_categorical_crossentropy.softmax_fused(labels, logits)
    assert np.all(np.isfinite(per_sample)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(per_sample, [2 * z, 0.0, np.log(2)], rtol=1e-6, atol=1e-6)
    expected = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-0.5, 0.5, 0.0]]) / 3
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    # the one-hot API gives the same
    per_sample_onehot, grad_onehot = losses.categorical_crossentropy.softmax_fused(one_hot(labels, 3), logits)
    np.testing.assert_allclose(per_sample_onehot, per_sample, rtol=1e-6)
    np.testing.assert_allclose(grad_onehot, grad, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=batch_sizes(), classes=class_counts(), seed=rng_seeds())
def test_softmax_fused_is_finite_and_bounded_for_huge_logits(dtype, n, classes, seed):
    """For any logits: max(z) - z_label <= loss <= max(z) - z_label + log K, |grad| <= 1/N, rows sum to 0."""
    rng = np.random.default_rng(seed)
    logits = (1e4 * rng.standard_normal((n, classes))).astype(dtype)
    labels = rng.integers(0, classes, n)
    per_sample, grad = losses.sparse_categorical_crossentropy.softmax_fused(labels, logits)
    assert np.all(np.isfinite(per_sample)) and np.all(np.isfinite(grad))
    gap = (logits.max(axis=1) - logits[np.arange(n), labels]).astype(np.float64)
    slack = 1e-6 * np.abs(logits).max()  # float32 rounding of the logits' magnitude
    assert np.all(per_sample >= gap - slack) and np.all(per_sample <= gap + np.log(classes) + slack)
    assert np.all(np.abs(grad) <= 1.0 / n + 1e-6)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)
    assert np.all(grad[np.arange(n), labels] <= 0)


# ------------------------------------------------------- fused sigmoid + binary cross-entropy

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@given(shape=loss_shapes(), soft=st.booleans(), seed=rng_seeds())
def test_sigmoid_fused_gradient_and_losses(shape, soft, seed):
    """From the logits: the clipped loss's values where sigmoid(z) is inside the clip range, (p - t) / (N K)."""
    rng = np.random.default_rng(seed)
    logits = 3.0 * rng.standard_normal(shape)
    t = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    loss = losses.binary_crossentropy
    per_sample, grad = loss.fused(t, logits)
    assert per_sample.shape == (shape[0],) and grad.shape == shape
    np.testing.assert_allclose(per_sample, loss.per_sample(t, _sigmoid(logits)), rtol=1e-9)
    np.testing.assert_allclose(grad, (_sigmoid(logits) - t) / logits.size, rtol=1e-10, atol=1e-15)
    numeric = numerical_gradient(lambda: float(np.mean(loss.fused(t, logits)[0])), logits, H_LOGITS)
    assert_close_gradients(grad, numeric)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_fused_is_exact_where_the_clipped_loss_saturates(dtype):
    """A sigmoid output of 1 - 2e-9 with target 0: the clipped loss reads -log(1e-7) and has gradient 0; Keras's
    loss from the logits reads 20 and still pulls the logit down."""
    logits = np.array([[20.0], [-20.0], [1e4], [-1e4]], dtype=dtype)
    t = np.array([[0.0], [1.0], [1.0], [1.0]], dtype=dtype)
    per_sample, grad = losses.binary_crossentropy.fused(t, logits)
    assert per_sample.dtype == grad.dtype == dtype
    np.testing.assert_allclose(per_sample, [20.0, 20.0, 0.0, 1e4], rtol=1e-6)
    np.testing.assert_allclose(grad[:, 0], np.array([1.0, -1.0, 0.0, -1.0]) / 4, rtol=1e-6)
    clipped = losses.binary_crossentropy.gradient(t[:1].astype(np.float64), _sigmoid(logits[:1].astype(np.float64)))
    assert clipped[0, 0] == 0.0


# --------------------------------------------------------- the model's fused path

def _mean_loss_model(seed, activation="softmax", loss="categorical_crossentropy", classes=3):
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([nnscratch.Input((5,)), Dense(4, activation="tanh"),
                                  Dense(classes, activation=activation)])
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss_name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_model_fused_path_gradients(float64, loss_name, seed):
    """_loss_and_backward with a softmax output: p - t at the logits, then backward below the softmax."""
    model = _mean_loss_model(seed, loss=loss_name)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5))
    labels = rng.integers(0, 3, 4)
    y = model.loss.prepare_targets(labels if loss_name.startswith("sparse") else one_hot(labels, 3), (3,))
    y_pred = model.forward(x, training=True)
    assert model._fused_output()
    per_sample = model._loss_and_backward(y, y_pred, backward=True)
    np.testing.assert_allclose(per_sample, model.loss.per_sample(y, y_pred), rtol=1e-10)
    analytic = {(layer.name, name): p.grad.copy() for layer in model.layers for name, p in layer.params.items()}

    def mean_loss():
        return model.loss(y, model.forward(x, training=True))

    for layer in model.layers:
        for name, p in layer.params.items():
            numeric = numerical_gradient(mean_loss, p.value, H)
            assert_close_gradients(analytic[(layer.name, name)], numeric)


def test_model_unfused_path_gradients(float64):
    """For contrast: sigmoid + mean squared error goes through loss.gradient and the full backward."""
    model = _mean_loss_model(0, activation="sigmoid", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5)), rng.uniform(0, 1, (4, 3))
    y_pred = model.forward(x, training=True)
    assert not model._fused_output()
    model._loss_and_backward(y, y_pred, backward=True)
    kernel = model.layers[0].kernel
    analytic = kernel.grad.copy()
    numeric = numerical_gradient(lambda: model.loss(y, model.forward(x, training=True)), kernel.value, H)
    assert_close_gradients(analytic, numeric)


@pytest.mark.parametrize("seed", [0, 1])
def test_model_fused_sigmoid_path_gradients(float64, seed):
    """A sigmoid output with binary cross-entropy: (p - t)/(N K) at the logits, then backward below the sigmoid."""
    model = _mean_loss_model(seed, activation="sigmoid", loss="binary_crossentropy")
    assert model.layers[-1].keep_logits and not model.layers[0].keep_logits
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


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_a_saturated_sigmoid_output_still_learns(backend):
    """sigmoid(20) = 1 - 2e-9 for a target 0: Keras reads a loss of 20 from the logits and moves the kernel down;
    the clipped loss would read 16.1 with a gradient of 0 and never move."""
    nnscratch.set_backend(backend)
    model = nnscratch.Sequential([nnscratch.Input((1,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.set_weights([np.array([[20.0]], np.float32), np.zeros(1, np.float32)])
    x, y = np.ones((200, 1), np.float32), np.zeros(200)
    assert model.evaluate(x, y, batch_size=100) == pytest.approx(20.0, rel=1e-6)
    assert model.test_on_batch(x, y) == pytest.approx(20.0, rel=1e-6)
    history = model.fit(x, y, batch_size=200, epochs=3, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(20.0, rel=1e-6)
    assert model.get_weights()[0][0, 0] == pytest.approx(20.0 - 3 * 0.01, rel=1e-5)   # SGD(0.01), gradient 1
    # recompiling with another loss drops the kept logits: mse reads the sigmoid's output
    model.compile(optimizer="sgd", loss="mse")
    assert not model.layers[-1].keep_logits and not model._fused_output()


# ------------------------------------------------ from_logits, label smoothing, MAE, Huber

H_LINEAR = 1e-3   # piecewise linear or quadratic losses: a central difference on one piece is exact


def smoothed(t, smoothing, classes):
    """Keras's label smoothing: t (1 - s) + s / K (categorical), or s / 2 with classes=2 (binary)."""
    return t * (1 - smoothing) + smoothing / classes


def smoothings():
    return st.sampled_from([0.0, 0.1, 0.35, 1.0])


def class_shapes():
    """(N, K) and (N, T, K) batch shapes for the categorical losses (K >= 2)."""
    return st.one_of(st.tuples(batch_sizes(), class_counts()),
                     st.tuples(batch_sizes(), st.integers(1, 3), class_counts()))


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@given(shape=class_shapes(), soft=st.booleans(), smoothing=smoothings(), seed=rng_seeds())
def test_categorical_crossentropy_from_logits(backend, shape, soft, smoothing, seed):
    """From logits z: per position -sum_k t_k log softmax(z)_k, with smoothed t; dL/dz = (softmax(z) - t) / rows."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    classes = shape[-1]
    logits = 2.0 * rng.standard_normal(shape)
    t = rng.dirichlet(np.ones(classes), shape[:-1]) if soft else one_hot(rng.integers(0, classes, shape[:-1]), classes)
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    target = smoothed(t, smoothing, classes)
    per_position = -(target * log_softmax(logits)).sum(axis=-1)
    np.testing.assert_allclose(loss.per_sample(t, logits), per_position.reshape(shape[0], -1).mean(axis=1),
                               rtol=1e-12, atol=1e-12)
    grad = loss.gradient(t, logits)
    rows = logits.size // classes
    np.testing.assert_allclose(grad, (activations.softmax(logits) - target) / rows, rtol=1e-10, atol=1e-15)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(t, logits), logits, H_LOGITS))


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@given(n=batch_sizes(), classes=class_counts(), seed=rng_seeds())
def test_sparse_categorical_crossentropy_from_logits(backend, n, classes, seed):
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.standard_normal((n, classes))
    labels = rng.integers(0, classes, n)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss.per_sample(labels, logits), -log_softmax(logits)[np.arange(n), labels],
                               rtol=1e-12, atol=1e-12)
    grad = loss.gradient(labels, logits)
    np.testing.assert_allclose(grad, (activations.softmax(logits) - one_hot(labels, classes)) / n,
                               rtol=1e-10, atol=1e-15)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(labels, logits), logits, H_LOGITS))


@given(shape=class_shapes(), soft=st.booleans(), smoothing=smoothings(), seed=rng_seeds())
def test_categorical_crossentropy_label_smoothing_on_probabilities(shape, soft, smoothing, seed):
    """The probability path with smoothed targets (rows rescaled to sum 1, then clipped), and (N, T, K) outputs."""
    rng = np.random.default_rng(seed)
    classes = shape[-1]
    t = rng.dirichlet(np.ones(classes), shape[:-1]) if soft else one_hot(rng.integers(0, classes, shape[:-1]), classes)
    y_pred = probabilities(rng, shape)
    loss = losses.CategoricalCrossentropy(label_smoothing=smoothing)
    q = y_pred / y_pred.sum(axis=-1, keepdims=True)
    per_position = -(smoothed(t, smoothing, classes) * np.log(q)).sum(axis=-1)
    np.testing.assert_allclose(loss.per_sample(t, y_pred), per_position.reshape(shape[0], -1).mean(axis=1),
                               rtol=1e-12)
    assert_close_gradients(loss.gradient(t, y_pred), numerical_gradient(lambda: loss(t, y_pred), y_pred, H))


@given(n=batch_sizes(), classes=class_counts(), smoothing=smoothings(), seed=rng_seeds())
def test_fused_softmax_with_label_smoothing(n, classes, smoothing, seed):
    """The model's fused path smooths the targets too: (softmax(z) - t_smoothed) / N, the loss from log-softmax."""
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.standard_normal((n, classes))
    t = one_hot(rng.integers(0, classes, n), classes)
    loss = losses.CategoricalCrossentropy(label_smoothing=smoothing)
    target = smoothed(t, smoothing, classes)
    per_sample, grad = loss.fused(t, logits)
    np.testing.assert_allclose(per_sample, -(target * log_softmax(logits)).sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, (activations.softmax(logits) - target) / n, rtol=1e-10, atol=1e-15)
    # the same numbers as the probability path on softmax(z), and as from_logits on z
    np.testing.assert_allclose(per_sample, loss.per_sample(t, activations.softmax(logits)), rtol=1e-9)
    from_logits = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    np.testing.assert_allclose(grad, from_logits.gradient(t, logits), rtol=1e-12, atol=1e-16)


@given(shape=loss_shapes(), soft=st.booleans(), smoothing=smoothings(), seed=rng_seeds())
def test_binary_crossentropy_from_logits_and_label_smoothing(shape, soft, smoothing, seed):
    """Per output max(z, 0) - z t + log(1 + e^-|z|) with t (1 - s) + s / 2; dL/dz = (sigmoid(z) - t) / (N K)."""
    rng = np.random.default_rng(seed)
    logits = 3.0 * rng.standard_normal(shape)
    t = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    target = smoothed(t, smoothing, 2)
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=smoothing)
    p = _sigmoid(logits)
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    np.testing.assert_allclose(loss.per_sample(t, logits), expected.reshape(shape[0], -1).mean(axis=1), rtol=1e-9)
    grad = loss.gradient(t, logits)
    np.testing.assert_allclose(grad, (p - target) / logits.size, rtol=1e-10, atol=1e-15)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(t, logits), logits, H_LOGITS))
    per_sample, fused_grad = losses.BinaryCrossentropy(label_smoothing=smoothing).fused(t, logits)  # sigmoid layer
    np.testing.assert_allclose(per_sample, loss.per_sample(t, logits), rtol=1e-12)
    np.testing.assert_array_equal(fused_grad, grad)


@given(shape=loss_shapes(), soft=st.booleans(), smoothing=smoothings(), seed=rng_seeds())
def test_binary_crossentropy_label_smoothing_on_probabilities(shape, soft, smoothing, seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    y_pred = probabilities(rng, shape)
    target = smoothed(t, smoothing, 2)
    loss = losses.BinaryCrossentropy(label_smoothing=smoothing)
    expected = -(target * np.log(y_pred) + (1 - target) * np.log(1 - y_pred))
    np.testing.assert_allclose(loss.per_sample(t, y_pred), expected.reshape(shape[0], -1).mean(axis=1), rtol=1e-12)
    grad = loss.gradient(t, y_pred)
    np.testing.assert_allclose(grad, (y_pred - target) / (y_pred * (1 - y_pred)) / y_pred.size, rtol=1e-10)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(t, y_pred), y_pred, H))


def apart_from(rng, y_true, kinks, margin=1e-2):
    """Predictions y_true + e, |e| at least ``margin`` from every kink in ``kinks``: a step of 1e-3 stays on a piece."""
    e = 2.0 * rng.standard_normal(y_true.shape)
    for kink in kinks:
        near = np.abs(np.abs(e) - kink) < margin
        e[near] = np.sign(e[near] + 0.5 * margin) * (kink + margin)
    return y_true + e


@given(shape=loss_shapes(), seed=rng_seeds())
def test_mean_absolute_error_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.standard_normal(shape)
    y_pred = apart_from(rng, y_true, kinks=[0.0])
    loss = losses.mean_absolute_error
    np.testing.assert_allclose(loss.per_sample(y_true, y_pred),
                               np.abs(y_pred - y_true).reshape(shape[0], -1).mean(axis=1), rtol=1e-12)
    grad = loss.gradient(y_true, y_pred)
    np.testing.assert_array_equal(grad, np.where(y_pred > y_true, 1.0, -1.0) / y_pred.size)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(y_true, y_pred), y_pred, H_LINEAR))


def test_mean_absolute_error_gradient_is_zero_where_prediction_equals_target():
    """|e| has no derivative at 0; as TensorFlow's gradient of abs (sign(0) = 0), the gradient there is 0."""
    y_true = np.array([[1.0, 0.0, -2.0]])
    y_pred = np.array([[1.0, 2.0, -3.0]])
    np.testing.assert_array_equal(losses.mean_absolute_error.gradient(y_true, y_pred), [[0.0, 1 / 3, -1 / 3]])


@given(shape=loss_shapes(), delta=st.sampled_from([0.25, 1.0, 2.5]), seed=rng_seeds())
def test_huber_gradient(shape, delta, seed):
    """e^2 / 2 for |e| <= delta, delta |e| - delta^2 / 2 beyond; dL/dp = clip(e, -delta, delta) / (N K)."""
    rng = np.random.default_rng(seed)
    y_true = rng.standard_normal(shape)
    y_pred = apart_from(rng, y_true, kinks=[delta])
    loss = losses.Huber(delta)
    e = y_pred - y_true
    per_value = np.where(np.abs(e) <= delta, e ** 2 / 2, delta * np.abs(e) - delta ** 2 / 2)
    np.testing.assert_allclose(loss.per_sample(y_true, y_pred), per_value.reshape(shape[0], -1).mean(axis=1),
                               rtol=1e-12)
    grad = loss.gradient(y_true, y_pred)
    np.testing.assert_allclose(grad, np.where(np.abs(e) <= delta, e, delta * np.sign(e)) / e.size, rtol=1e-12)
    assert_close_gradients(grad, numerical_gradient(lambda: loss(y_true, y_pred), y_pred, H_LINEAR))


def test_huber_at_the_joint_and_at_zero():
    """At |e| = delta both pieces give delta^2 / 2 and the slope +-delta; at e = 0 the gradient is 0."""
    loss = losses.Huber(delta=2.0)
    y_true = np.zeros((1, 4))
    y_pred = np.array([[2.0, -2.0, 0.0, 5.0]])
    np.testing.assert_allclose(loss.per_sample(y_true, y_pred), [(2.0 + 2.0 + 0.0 + (10.0 - 2.0)) / 4])
    np.testing.assert_allclose(loss.gradient(y_true, y_pred), [[0.5, -0.5, 0.0, 0.5]])


def test_sparse_categorical_crossentropy_clips_then_rescales():
    """As Keras: c = clip(p, 1e-7, 1 - 1e-7) first, then log(sum c) - log c_label (the one-hot loss rescales first)."""
    p = np.array([[0.0, 0.6, 0.3], [0.5, 1.5, 0.5], [0.2, 0.3, 0.5]])
    labels = np.array([0, 1, 2])
    c = np.array([[1e-7, 0.6, 0.3], [0.5, 1 - 1e-7, 0.5], [0.2, 0.3, 0.5]])
    loss = losses.sparse_categorical_crossentropy
    np.testing.assert_allclose(loss.per_sample(labels, p), np.log(c.sum(axis=1)) - np.log(c[np.arange(3), labels]),
                               rtol=1e-12)
    grad = loss.gradient(labels, p)
    # a clipped entry has gradient 0 (the label's in rows 0 and 1); the others 1 / (N S), the label -1/(N c) more
    expected = np.array([[0.0, 1 / c[0].sum(), 1 / c[0].sum()],
                         [1 / c[1].sum(), 0.0, 1 / c[1].sum()],
                         [1.0, 1.0, 1.0 - 1 / 0.5]]) / 3
    np.testing.assert_allclose(grad, expected, rtol=1e-12)
    numeric = numerical_gradient(lambda: loss(labels, p), p, 1e-9)
    assert_close_gradients(grad, numeric, tolerance=1e-5)


# -------------------------------------------------- models with from_logits and label smoothing

def _linear_output_model(seed, loss, units=3):
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([nnscratch.Input((5,)), Dense(4, activation="tanh"), Dense(units)])
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
                                  losses.SparseCategoricalCrossentropy(from_logits=True),
                                  losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
                                  losses.MeanAbsoluteError(), losses.Huber(delta=0.5)], ids=repr)
def test_model_gradients_with_a_loss_on_the_linear_output(float64, loss):
    """A Dense output without activation: the loss takes it as it is (never the fused path); whole-model check."""
    model = _linear_output_model(0, loss)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    labels = rng.integers(0, 3, 4)
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        y = labels
    elif isinstance(loss, (losses.MeanAbsoluteError, losses.Huber)):
        y = rng.standard_normal((4, 3))
    else:
        y = one_hot(labels, 3)
    y = model.loss.prepare_targets(y, (3,))
    y_pred = model.forward(x, training=True)
    assert not model._fused_output()
    model._loss_and_backward(y, y_pred, backward=True)
    for layer in model.layers:
        for name, p in layer.params.items():
            analytic = p.grad.copy()
            numeric = numerical_gradient(lambda: model.loss(y, model.forward(x, training=True)), p.value, H)
            assert_close_gradients(analytic, numeric)
