"""sample_weight and class_weight in fit, evaluate, train_on_batch and test_on_batch, as Keras 3.

Keras's semantics, checked here against NumPy formulas written in the test:

* a batch's loss is ``sum_i w_i l_i / N`` with ``N`` the batch size (the
  ``"sum_over_batch_size"`` reduction; not divided by the sum of the weights),
  and an epoch's loss the mean of the batches' losses weighted by their
  sizes, so ``sum_i w_i l_i / samples`` over the epoch;
* ``compile(metrics=...)`` stay unweighted; ``weighted_metrics`` are
  ``sum_i w_i m_i / sum_i w_i``;
* ``class_weight[c]`` is the weight of every sample of class ``c`` (arg-max of
  a one-hot or multi-label row, else the rounded target), 1 for classes
  without a key, and it does not weigh the validation.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import Dense, Dropout
from nnscratch.regularizers import L2

try:
    from tests.strategies import rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import rng_seeds


def data(n=30, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, classes, n),
            rng.uniform(0.0, 2.0, n).astype("float32"))


def classifier(loss="sparse_categorical_crossentropy", units=3, activation="softmax", lr=0.1, dropout=False,
               kernel_regularizer=None):
    nnscratch.set_random_seed(7)
    layers = [nnscratch.Input((4,)), Dense(6, activation="tanh", kernel_regularizer=kernel_regularizer)]
    layers += [Dropout(0.3)] if dropout else []
    model = nnscratch.Sequential(layers + [Dense(units, activation=activation)])
    model.compile(optimizer=optimizers.SGD(learning_rate=lr, momentum=0.5), loss=loss, metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    return model


def per_sample_ce(model, x, labels):
    """Cross-entropy of each sample from the model's predictions (NumPy, float64)."""
    p = model.predict(x).astype(np.float64)
    return -np.log(np.clip(p[np.arange(len(x)), labels], 1e-7, 1 - 1e-7)), (p.argmax(1) == labels).astype(float)


def assert_same_training(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------ the formulas
@settings(max_examples=15)
@given(n=st.integers(1, 20), batch_size=st.integers(1, 8), seed=rng_seeds(), zeros=st.booleans())
def test_evaluate_is_sum_of_weighted_losses_over_samples_and_weighted_metrics(n, batch_size, seed, zeros):
    x, labels, w = data(n, seed % 1000)
    if zeros:
        w[: n // 2] = 0.0
    model = classifier()
    loss, accuracy = per_sample_ce(model, x, labels)
    logs = model.evaluate(x, labels, sample_weight=w, batch_size=batch_size, return_dict=True)
    assert list(logs) == ["loss", "accuracy", "weighted_accuracy"]
    assert logs["loss"] == pytest.approx(np.sum(w * loss) / n, rel=1e-5, abs=1e-7)    # / N, not / sum(w)
    assert logs["accuracy"] == pytest.approx(accuracy.mean())                           # unweighted
    expected = np.sum(w * accuracy) / np.sum(w) if np.sum(w) > 0 else 0.0
    assert logs["weighted_accuracy"] == pytest.approx(expected, rel=1e-6)


def test_test_and_train_on_batch_weigh_the_batch():
    x, labels, w = data(12)
    model = classifier()
    loss, accuracy = per_sample_ce(model, x, labels)
    expected = [np.sum(w * loss) / 12, accuracy.mean(), np.sum(w * accuracy) / np.sum(w)]
    assert model.test_on_batch(x, labels, sample_weight=w) == pytest.approx(expected, rel=1e-5)
    assert model.train_on_batch(x, labels, sample_weight=w[:, None]) == pytest.approx(expected, rel=1e-5)


def test_all_zero_weights_give_a_zero_loss_and_weighted_metric():
    x, labels, _ = data(8)
    model = classifier()
    assert model.test_on_batch(x, labels, sample_weight=np.zeros(8))[::2] == [0.0, 0.0]


def test_fit_logs_the_epoch_means_keras_logs():
    """Learning rate 0: every batch sees the same weights, so the epoch's logs are the formulas over all samples."""
    x, labels, w = data(31)
    model = classifier(lr=0.0)
    loss, accuracy = per_sample_ce(model, x, labels)
    history = model.fit(x, labels, sample_weight=w, batch_size=8, epochs=2, verbose=0).history
    assert history["loss"] == pytest.approx([np.sum(w * loss) / 31] * 2, rel=1e-5)
    assert history["accuracy"] == pytest.approx([accuracy.mean()] * 2)
    assert history["weighted_accuracy"] == pytest.approx([np.sum(w * accuracy) / np.sum(w)] * 2, rel=1e-6)


def test_weighted_metric_names_follow_keras():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["acc"], weighted_metrics=["accuracy", "acc"])
    assert model._log_names() == ["loss", "acc", "accuracy", "weighted_acc"]
    model.compile(loss="sparse_categorical_crossentropy", weighted_metrics="accuracy")
    x, labels, _ = data(5)
    assert list(model.evaluate(x, labels, return_dict=True)) == ["loss", "accuracy"]


def test_regularization_penalty_is_added_to_the_weighted_loss():
    x, labels, w = data(10)
    model = classifier(kernel_regularizer=L2(0.1))
    loss, _ = per_sample_ce(model, x, labels)
    penalty = 0.1 * np.sum(model.get_weights()[0].astype(np.float64) ** 2)
    assert model.test_on_batch(x, labels, sample_weight=w)[0] == pytest.approx(np.sum(w * loss) / 10 + penalty,
                                                                                rel=1e-5)


# ---------------------------------------------------------- the gradients
@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("loss, units, activation", [("sparse_categorical_crossentropy", 3, "softmax"),
                                                      ("mse", 3, "linear"),            # unfused gradient
                                                      ("binary_crossentropy", 1, "sigmoid")])
def test_weight_two_on_a_sample_is_that_sample_twice(loss, units, activation):
    """sum_i w_i l_i / N with w_k = 2 is (N + 1) / N times the mean loss of the batch with sample k duplicated.

    So one SGD step (no momentum) moves the weights by ``-lr g`` with
    ``N g_weighted = (N + 1) g_duplicated``.
    """
    x, labels, _ = data(9, seed=3)
    y = {"sparse_categorical_crossentropy": labels, "mse": np.eye(3)[labels], "binary_crossentropy": labels % 2}[loss]
    w = np.ones(9)
    w[4] = 2.0
    weighted, duplicated = classifier(loss, units, activation), classifier(loss, units, activation)
    for model in (weighted, duplicated):
        model.optimizer = optimizers.SGD(learning_rate=1.0)
    duplicated.set_weights(weighted.get_weights())
    before = weighted.get_weights()
    weighted.train_on_batch(x, y, sample_weight=w)
    order = np.r_[0:9, 4]
    duplicated.train_on_batch(x[order], y[order])
    for w0, a, b in zip(before, weighted.get_weights(), duplicated.get_weights()):
        np.testing.assert_allclose(9 * (a - w0), 10 * (b - w0), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------ class_weight
CLASS_WEIGHT = {0: 3.0, 2: 0.25}   # class 1 has no key: weight 1


def _targets(kind, labels):
    """(model arguments, targets, each sample's class) for a kind of targets."""
    if kind == "integer":
        return ("sparse_categorical_crossentropy", 3, "softmax"), labels, labels
    if kind == "one-hot":
        return ("categorical_crossentropy", 3, "softmax"), np.eye(3)[labels], labels
    if kind.startswith("binary"):
        y = (labels == 2).astype(float)
        return ("binary_crossentropy", 1, "sigmoid"), (y[:, None] if kind == "binary (N, 1)" else y), y.astype(int)
    y = (np.random.default_rng(1).random((len(labels), 3)) > 0.5).astype(float)   # several sigmoid units:
    return ("binary_crossentropy", 3, "sigmoid"), y, y.argmax(1)                  # the row's arg-max, as Keras


@pytest.mark.parametrize("kind", ["integer", "one-hot", "binary (N,)", "binary (N, 1)", "multi-label"])
def test_class_weight_is_the_sample_weight_of_each_class(kind):
    x, labels, _ = data(25)
    arguments, y, classes = _targets(kind, labels)
    class_weight = {0: 3.0, 1: 0.5} if kind.startswith("binary") else CLASS_WEIGHT
    model, twin = classifier(*arguments), classifier(*arguments)
    twin.set_weights(model.get_weights())
    sample_weight = np.array([class_weight.get(int(c), 1.0) for c in classes])
    a = model.fit(x, y, class_weight=class_weight, batch_size=8, epochs=2, seed=1, verbose=0).history
    b = twin.fit(x, y, sample_weight=sample_weight, batch_size=8, epochs=2, seed=1, verbose=0).history
    assert a == b
    assert_same_training(model, twin)
    assert model.train_on_batch(x, y, class_weight=class_weight) == \
        twin.train_on_batch(x, y, sample_weight=sample_weight)


def test_soft_binary_targets_are_rounded_half_to_even_as_numpy():
    x, _, _ = data(4)
    y = np.array([0.5, 0.51, 1.5 / 3, 0.8])   # classes 0, 1, 0, 1
    a, b = classifier("binary_crossentropy", 1, "sigmoid"), classifier("binary_crossentropy", 1, "sigmoid")
    b.set_weights(a.get_weights())
    assert a.train_on_batch(x, y, class_weight={0: 2.0, 1: 0.0}) == \
        b.train_on_batch(x, y, sample_weight=[2.0, 0.0, 2.0, 0.0])


def test_class_weight_does_not_weigh_the_validation():
    x, labels, _ = data(20)
    model = classifier()
    history = model.fit(x, labels, class_weight=CLASS_WEIGHT, validation_data=(x[:6], labels[:6]), epochs=1,
                        verbose=0).history
    assert history["val_loss"] == pytest.approx([model.evaluate(x[:6], labels[:6])[0]], rel=1e-6)


# ------------------------------------------------------ all ones = no weights
@pytest.mark.parametrize("kind", ["sample_weight", "class_weight"])
def test_weights_of_one_train_bit_identically_to_no_weights(kind):
    x, labels, _ = data(29)
    plain, ones = classifier(dropout=True), classifier(dropout=True)
    weights = {"sample_weight": np.ones(29)} if kind == "sample_weight" else {"class_weight": {0: 1.0, 1: 1.0}}
    a = plain.fit(x, labels, batch_size=8, epochs=2, seed=3, verbose=0, validation_data=(x[:9], labels[:9])).history
    b = ones.fit(x, labels, batch_size=8, epochs=2, seed=3, verbose=0, validation_data=(x[:9], labels[:9], np.ones(9)),
                 **weights).history
    assert a == b
    assert_same_training(plain, ones)
    assert plain.evaluate(x, labels, batch_size=7) == ones.evaluate(x, labels, sample_weight=np.ones(29), batch_size=7)


# -------------------------------------------------------- validation weights
def test_validation_data_triple_weighs_the_validation():
    x, labels, w = data(20)
    model = classifier()
    history = model.fit(x, labels, validation_data=(x[:9], labels[:9], w[:9]), epochs=1, verbose=0).history
    logs = model.evaluate(x[:9], labels[:9], sample_weight=w[:9], return_dict=True)
    assert history["val_loss"] == [logs["loss"]]
    assert history["val_weighted_accuracy"] == [logs["weighted_accuracy"]]
    assert history["val_accuracy"] == [logs["accuracy"]]


def test_validation_split_splits_the_sample_weights_too():
    x, labels, w = data(20)
    split, held = classifier(), classifier()
    held.set_weights(split.get_weights())
    a = split.fit(x, labels, sample_weight=w, validation_split=0.25, epochs=2, shuffle=False, verbose=0).history
    b = held.fit(x[:15], labels[:15], sample_weight=w[:15], validation_data=(x[15:], labels[15:], w[15:]), epochs=2,
                 shuffle=False, verbose=0).history
    assert a == b


# -------------------------------------------------- Sequences and generators
class Batches:
    """A Sequence of (x, y) or (x, y, w) batches of 8."""

    def __init__(self, x, y, w=None):
        self.x, self.y, self.w = x, y, w

    def __len__(self):
        return -(-len(self.x) // 8)

    def __getitem__(self, i):
        s = slice(8 * i, 8 * i + 8)
        return (self.x[s], self.y[s]) if self.w is None else (self.x[s], self.y[s], self.w[s])


def test_a_sequence_or_generator_of_weighted_batches_is_the_weighted_arrays():
    x, labels, w = data(30)
    arrays, sequence, generator = classifier(), classifier(), classifier()
    for model in (sequence, generator):
        model.set_weights(arrays.get_weights())
    a = arrays.fit(x, labels, sample_weight=w, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    b = sequence.fit(Batches(x, labels, w), epochs=2, shuffle=False, verbose=0).history
    batches = Batches(x, labels, w)
    c = generator.fit((batches[i % 4] for i in range(8)), steps_per_epoch=4, epochs=2, verbose=0).history
    assert a == b == c
    assert_same_training(arrays, sequence)
    assert_same_training(arrays, generator)
    assert sequence.evaluate(Batches(x, labels, w)) == arrays.evaluate(x, labels, sample_weight=w, batch_size=8)


def test_class_weight_applies_to_each_batch_of_a_sequence():
    x, labels, _ = data(30)
    sequence, arrays = classifier(), classifier()
    arrays.set_weights(sequence.get_weights())
    a = sequence.fit(Batches(x, labels), class_weight=CLASS_WEIGHT, epochs=2, shuffle=False, verbose=0).history
    b = arrays.fit(x, labels, class_weight=CLASS_WEIGHT, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    assert a == b


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("weights, error, match", [
    (np.ones(9), ValueError, "9 weights but there are 10 samples"),
    (np.ones((10, 2)), ValueError, r"shape \(10,\) or \(10, 1\)"),
    (np.r_[np.ones(9), -1.0], ValueError, ">= 0"),
    (np.r_[np.ones(9), np.nan], ValueError, "NaN or infinite"),
    (np.r_[np.ones(9), np.inf], ValueError, "NaN or infinite"),
    (np.array(["a"] * 10), TypeError, "array of numbers"),
])
def test_bad_sample_weights_are_refused_at_once(weights, error, match):
    x, labels, _ = data(10)
    model = classifier()
    before = model.get_weights()
    with pytest.raises(error, match=match):
        model.fit(x, labels, sample_weight=weights, verbose=0)
    with pytest.raises(error, match=match):
        model.evaluate(x, labels, sample_weight=weights)
    with pytest.raises(error, match=match):
        model.train_on_batch(x, labels, sample_weight=weights)
    with pytest.raises(error, match=match):
        model.fit(x, labels, validation_data=(x, labels, weights), epochs=0, verbose=0)
    for u, v in zip(before, model.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("class_weight, error, match", [
    ([1.0, 2.0], TypeError, "must be a dict"),
    ({"0": 1.0}, ValueError, "class indices"),
    ({1.5: 1.0}, ValueError, "class indices"),
    ({-1: 1.0}, ValueError, "class indices"),
    ({3: 1.0}, ValueError, "class 3, but the model has 3 classes"),
    ({0: -2.0}, ValueError, "finite number >= 0"),
    ({0: float("nan")}, ValueError, "finite number >= 0"),
])
def test_bad_class_weights_are_refused(class_weight, error, match):
    x, labels, _ = data(10)
    model = classifier()
    with pytest.raises(error, match=match):
        model.fit(x, labels, class_weight=class_weight, verbose=0)
    with pytest.raises(error, match=match):
        model.train_on_batch(x, labels, class_weight=class_weight)


def test_class_weight_keys_may_be_integral_floats_and_numpy_integers():
    x, labels, _ = data(10)
    a, b = classifier(), classifier()
    b.set_weights(a.get_weights())
    assert a.train_on_batch(x, labels, class_weight={0.0: 2.0, np.int64(1): 3.0}) == \
        b.train_on_batch(x, labels, class_weight={0: 2.0, 1: 3.0})


def test_class_weight_and_sample_weight_together_are_refused():
    x, labels, w = data(10)
    model = classifier()
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, labels, sample_weight=w, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        model.train_on_batch(x, labels, sample_weight=w, class_weight={0: 2.0})
    with pytest.raises(ValueError, match="not both"):
        model.fit(Batches(x, labels, w), class_weight={0: 2.0}, verbose=0)


def test_sample_weight_with_a_sequence_is_refused():
    x, labels, w = data(10)
    with pytest.raises(ValueError, match=r"yield \(x, y, sample_weight\) batches"):
        classifier().fit(Batches(x, labels), sample_weight=w, verbose=0)
    with pytest.raises(ValueError, match=r"yield \(x, y, sample_weight\) batches"):
        classifier().evaluate(Batches(x, labels), sample_weight=w)


def test_a_bad_weight_in_a_sequence_batch_is_refused():
    x, labels, w = data(10)
    w[9] = -1.0
    with pytest.raises(ValueError, match="a batch's sample_weight must be >= 0"):
        classifier().fit(Batches(x, labels, w), verbose=0)


def test_test_on_batch_takes_no_class_weight_as_keras():
    x, labels, _ = data(5)
    with pytest.raises(TypeError):
        classifier().test_on_batch(x, labels, class_weight={0: 2.0})


def test_image_data_generator_flow_with_sample_weight_trains_as_the_arrays_do():
    from nnscratch.layers import Flatten
    from nnscratch.preprocessing import ImageDataGenerator

    x, labels, w = data(24)
    images = x.reshape(24, 2, 2, 1)

    def model():
        nnscratch.set_random_seed(7)
        m = nnscratch.Sequential([nnscratch.Input((2, 2, 1)), Flatten(), Dense(3, activation="softmax")])
        m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy",
                  weighted_metrics=["accuracy"])
        return m

    arrays, flowed = model(), model()
    a = arrays.fit(images, labels, sample_weight=w, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    flow = ImageDataGenerator().flow(images, labels, batch_size=8, shuffle=False, sample_weight=w)
    b = flowed.fit(flow, epochs=2, shuffle=False, verbose=0).history
    assert a == b
    assert_same_training(arrays, flowed)
