"""Outputs with a step axis, (N, T, K): Dense on sequences, losses and metrics per position, as Keras 3.

Keras multiplies a Dense layer along the last axis of a sequence, takes
sparse labels of shape (N, T) for an (N, T, K) output, and averages losses
and metrics over the positions of each sample. (Against Keras 3.15, once,
outside the suite: Embedding -> GRU(return_sequences) -> Dense(softmax) with
sparse and one-hot targets: evaluate's loss and accuracy agree to 1e-7, the
weights after an SGD step to 7e-9.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import losses, metrics, optimizers
from nnscratch.gradcheck import check_layer, numerical_gradient
from nnscratch.layers import Dense, Embedding, SimpleRNN

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds


# ------------------------------------------------------------------ Dense on sequences
def test_dense_on_a_sequence_is_the_same_layer_at_every_step():
    layer = Dense(3, activation="softmax")
    layer.build((5, 4))
    assert layer.output_shape == (None, 5, 3) and layer.kernel.shape == (4, 3)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    y = layer.forward(x)
    step = Dense(3, activation="softmax")
    step.build((4,))
    step.set_weights(layer.get_weights())
    for t in range(5):
        np.testing.assert_allclose(y[:, t], step.forward(np.ascontiguousarray(x[:, t])), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), steps=st.integers(1, 4), features=st.integers(1, 4), units=st.integers(1, 4),
       activation=st.sampled_from(["tanh", "linear", "softmax", "sigmoid"]), seed=rng_seeds())
def test_dense_on_a_sequence_gradients(n, steps, features, units, activation, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Dense(units, activation=activation)
        layer.build((steps, features))
    layer.set_weights([rng.standard_normal((features, units)), rng.standard_normal(units)])
    report = check_layer(layer, x=rng.standard_normal((n, steps, features)), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_dense_on_images_still_asks_for_a_flatten():
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, features\) or sequences .* got "
                                         r"\(None, 6, 6, 2\); add a Flatten\(\) layer"):
        nnscratch.Sequential([nnscratch.Input((6, 6, 2)), Dense(3)])


# ------------------------------------------------------------------ sparse labels, one a position
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), steps=st.integers(1, 4), classes=st.integers(2, 4), from_logits=st.booleans(),
       seed=rng_seeds())
def test_sparse_crossentropy_per_position_value_and_gradient(n, steps, classes, from_logits, seed):
    rng = np.random.default_rng(seed)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    labels = rng.integers(0, classes, (n, steps))
    logits = rng.standard_normal((n, steps, classes))
    y_pred = logits if from_logits else np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    chosen = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(loss.per_sample(labels, y_pred), (-np.log(chosen)).mean(axis=1), rtol=1e-10)
    one_hot = losses.CategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(loss.per_sample(labels, y_pred), one_hot.per_sample(np.eye(classes)[labels], y_pred),
                               rtol=1e-10)

    def batch_loss():
        return float(loss.per_sample(labels, y_pred).mean())

    np.testing.assert_allclose(loss.gradient(labels, y_pred), numerical_gradient(batch_loss, y_pred, 1e-6),
                               rtol=1e-5, atol=1e-8)


def test_sparse_labels_take_a_trailing_axis_of_one_and_a_wrong_shape_is_named():
    loss = losses.get("sparse_categorical_crossentropy")
    labels = np.array([[0, 2, 1], [1, 1, 0]])
    np.testing.assert_array_equal(loss.prepare_targets(labels[..., None].astype(float), (3, 4)), labels)
    np.testing.assert_array_equal(loss.prepare_targets(labels, (3, 4)), labels)
    with pytest.raises(ValueError, match=r"integer labels of shape \(N, 3\), one a position of the output "
                                         r"\(None, 3, 4\), got shape \(2,\)"):
        loss.prepare_targets(np.array([0, 1]), (3, 4))
    with pytest.raises(ValueError, match=r"labels of shape \(N,\).*got shape \(2, 3\)"):
        loss.prepare_targets(labels, (4,))
    with pytest.raises(ValueError, match=r"must be in \[0, 4\)"):
        loss.prepare_targets(labels + 2, (3, 4))


# ------------------------------------------------------------------ metrics per position
def test_metrics_average_over_the_positions_of_each_sample():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, (4, 5))
    probabilities = rng.dirichlet(np.ones(3), (4, 5))
    one_hot = np.eye(3)[labels]
    hits = probabilities.argmax(axis=-1) == labels
    accuracy = metrics.get("accuracy")
    np.testing.assert_allclose(accuracy(labels, probabilities), hits.mean(axis=1))      # sparse, chosen by shape
    np.testing.assert_allclose(accuracy(one_hot, probabilities), hits.mean(axis=1))     # categorical
    np.testing.assert_allclose(metrics.get("sparse_categorical_accuracy")(labels[..., None], probabilities),
                               hits.mean(axis=1))
    np.testing.assert_allclose(metrics.get("mse")(one_hot, probabilities),
                               ((one_hot - probabilities) ** 2).mean(axis=(1, 2)))
    stateful = metrics.get("accuracy")
    stateful.update_state(labels, probabilities, sample_weight=np.array([1.0, 0.0, 0.0, 3.0]))
    assert stateful.result() == pytest.approx((hits[0].mean() + 3 * hits[3].mean()) / 4)


def test_a_tagger_learns_a_label_for_every_step():
    """Each step's tag is its word's class (word mod 3) where the previous word was even, else class 3."""
    rng = np.random.default_rng(2)
    words = rng.integers(0, 12, (800, 6))
    previous = np.concatenate([np.zeros((800, 1), dtype=int), words[:, :-1]], axis=1)
    tags = np.where(previous % 2 == 0, words % 3, 3)
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((6,)), Embedding(12, 8), SimpleRNN(16, return_sequences=True),
                                  Dense(4, activation="softmax")])
    model.compile(optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(words[:640], tags[:640], epochs=15, batch_size=32, verbose=0)
    result = model.evaluate(words[640:], tags[640:], verbose=0, return_dict=True)
    assert result["accuracy"] > 0.97
    predicted = model.predict(words[640:], verbose=0).argmax(axis=-1)
    assert predicted.shape == (160, 6) and np.mean(predicted == tags[640:]) == pytest.approx(result["accuracy"])


@pytest.mark.parametrize("product", ["panels", "blas"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_predict_of_a_long_pass_multiplies_each_step_as_training_does(product, backend):
    """A pass of 600 sequences packs the kernel in panels (``"panels"``): the same outputs, softmax included."""
    nnscratch.set_backend(backend)
    nnscratch.kernels.set_dense_product(product)
    try:
        nnscratch.set_random_seed(4)
        model = nnscratch.Sequential([nnscratch.Input((5, 20)), Dense(24, activation="relu"),
                                      Dense(3, activation="softmax")])
        x = np.random.default_rng(5).standard_normal((600, 5, 20)).astype(np.float32)
        predicted = model.predict(x, batch_size=600, verbose=0)
        np.testing.assert_allclose(predicted, model.forward(x, training=True), rtol=2e-5, atol=1e-6)
        assert predicted.shape == (600, 5, 3)
    finally:
        nnscratch.kernels.set_dense_product("auto")
