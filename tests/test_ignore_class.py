"""SparseCategoricalCrossentropy(ignore_class=...): the mean over the positions that count, its gradient, training.

Keras 3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Conv2D, Dense
from nnscratch.losses import SparseCategoricalCrossentropy
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, float64_floatx, rng_seeds


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@given(n=batch_sizes(), positions=st.sampled_from([(), (3,), (2, 3)]), classes=st.integers(2, 4),
       ignore=st.sampled_from([-1, 255, 0]), from_logits=st.booleans(), seed=rng_seeds())
def test_the_loss_is_the_mean_over_the_positions_that_count_and_its_gradient_checks_out(n, positions, classes, ignore,
                                                                                       from_logits, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, *positions, classes))
    prediction = z if from_logits else softmax(z)
    labels = rng.integers(0, classes, (n, *positions))
    labels[rng.random(labels.shape) < 0.4] = ignore
    loss = SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore)
    plain = SparseCategoricalCrossentropy(from_logits=from_logits, reduction="none")
    valid = labels != ignore
    kept = np.where(valid, labels, 0)
    expected = plain(kept, prediction, mask=np.ones(labels.shape, bool))[valid].sum() / max(valid.sum(), 1)
    assert loss(labels, prediction) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    weights = loss.position_weights(loss.target_mask(labels, labels.shape), None, labels.shape)
    analytic = loss.weighted_gradient(labels, prediction, weights)
    numeric = numerical_gradient(lambda: loss(labels, prediction), prediction, h=1e-6)
    assert relative_error(analytic, numeric).max(initial=0) < TOLERANCE
    assert not analytic[~valid].any()                  # an ignored position gets no gradient


def test_training_on_a_segmentation_map_follows_the_gradient_of_the_mean_over_labelled_pixels():
    """One SGD step moves every weight by -lr * d(mean loss over the labelled pixels)/dw (numerical, float64)."""
    with float64_floatx():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 4, 4, 2))
        labels = rng.integers(0, 3, (3, 4, 4))
        labels[rng.random(labels.shape) < 0.3] = 255
        nnscratch.set_random_seed(0)
        inputs = nnscratch.Input((4, 4, 2))
        model = nnscratch.Model(inputs, Conv2D(3, 1, activation="softmax")(Conv2D(4, 3, padding="same",
                                                                                  activation="tanh")(inputs)))
        model.compile(nnscratch.optimizers.SGD(0.1), SparseCategoricalCrossentropy(ignore_class=255))

        def mean_over_labelled():
            p = model.predict(x, verbose=0)
            valid = labels != 255
            chosen = np.take_along_axis(p, np.where(valid, labels, 0)[..., None], axis=-1)[..., 0]
            return float(-np.log(chosen)[valid].mean())

        assert model.evaluate(x, labels, verbose=0) == pytest.approx(mean_over_labelled(), rel=1e-12)
        expected = [-0.1 * numerical_gradient(mean_over_labelled, p.value, h=1e-6) for p in model.parameters()]
        before = [p.value.copy() for p in model.parameters()]
        model.train_on_batch(x, labels)
    for moved, old, step in zip(model.parameters(), before, expected):
        np.testing.assert_allclose(moved.value - old, step, rtol=1e-6, atol=1e-10)


def test_the_ignored_label_is_accepted_other_labels_outside_the_classes_are_not(tmp_path):
    x = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, activation="softmax")])
    model.compile("sgd", SparseCategoricalCrossentropy(ignore_class=-1))
    model.fit(x, [0, 1, -1, 3, -1, 2], verbose=0)
    with pytest.raises(ValueError, match=r"sparse labels must be in \[0, 4\) \(or ignore_class=-1\).*\[5\]"):
        model.fit(x, [0, 1, -1, 5, -1, 2], verbose=0)
    model.save(tmp_path / "ignore.npz")
    assert load_model(tmp_path / "ignore.npz").loss.get_config() == {
        "name": "sparse_categorical_crossentropy", "from_logits": False, "ignore_class": -1}
    assert SparseCategoricalCrossentropy().get_config() == {"name": "sparse_categorical_crossentropy",
                                                            "from_logits": False}
    with pytest.raises(TypeError, match="ignore_class must be an integer label"):
        SparseCategoricalCrossentropy(ignore_class=2.5)


def test_with_every_label_ignored_the_loss_is_zero_as_keras_divide_no_nan():
    p = softmax(np.random.default_rng(2).standard_normal((4, 3)))
    assert SparseCategoricalCrossentropy(ignore_class=-1)([-1, -1, -1, -1], p) == 0.0
