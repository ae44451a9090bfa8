"""Models with several outputs: a loss and metrics an output, loss weights, the logs, gradients, saving, errors.

Keras 3.15 itself was compared outside the suite (docs/keras.md): the same
log names, logs, predictions and weights after training.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_model, numerical_gradient
from nnscratch.layers import LSTM, BatchNormalization, Dense, Embedding, GlobalAveragePooling1D, ReLU
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
    from tests.strategies import padded_indices
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
    from strategies import padded_indices


def classify_and_regress(seed=0):
    """x -> Dense(8, tanh) -> cls: Dense(3, softmax), reg: Dense(1)."""
    nnscratch.set_random_seed(seed)
    inputs = nnscratch.Input((4,), name="x")
    hidden = Dense(8, activation="tanh")(inputs)
    return nnscratch.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden), Dense(1, name="reg")(hidden)])


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n), \
        rng.standard_normal((n, 1)).astype(np.float32)


def test_the_logs_are_the_weighted_loss_each_outputs_loss_and_metrics_named_as_keras():
    x, labels, values = data()
    model = classify_and_regress()
    model.compile("sgd", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": "accuracy", "reg": ["mae", "mse"]})
    history = model.fit(x, {"cls": labels, "reg": values}, epochs=1, batch_size=8, verbose=0, validation_split=0.25)
    assert list(history.history) == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae", "reg_mse", "val_loss",
                                     "val_cls_loss", "val_reg_loss", "val_cls_accuracy", "val_reg_mae",
                                     "val_reg_mse", "learning_rate"]
    logs = model.evaluate(x, [labels, values], return_dict=True)
    probabilities, predicted = model.predict(x, verbose=0)
    cross_entropy = np.mean(-np.log(probabilities[np.arange(40), labels]))
    squared = np.mean((predicted - values) ** 2)
    assert logs["cls_loss"] == pytest.approx(cross_entropy, rel=1e-5)
    assert logs["reg_loss"] == pytest.approx(squared, rel=1e-5) == pytest.approx(logs["reg_mse"], rel=1e-6)
    assert logs["loss"] == pytest.approx(cross_entropy + 0.5 * squared, rel=1e-5)
    assert logs["cls_accuracy"] == np.mean(probabilities.argmax(axis=1) == labels)
    assert model.evaluate(x, [labels, values]) == pytest.approx(list(logs.values()))


def test_a_training_step_follows_the_gradient_of_the_weighted_sum_of_the_losses():
    """One SGD step moves every weight by -lr * d(l1 * CE + l2 * MSE)/dw (numerical, float64), sample weights too."""
    with float64_floatx():
        x, labels, values = data(n=6)
        weights = np.linspace(0.5, 1.5, 6)
        model = classify_and_regress()
        model.compile(nnscratch.optimizers.SGD(0.1), ["sparse_categorical_crossentropy", "mse"],
                      loss_weights=[0.7, 2.0])

        def loss():
            probabilities, predicted = model.predict(x, verbose=0)
            cross_entropy = -np.log(probabilities[np.arange(6), labels])
            return float(np.mean(0.7 * cross_entropy * weights + 2.0 * ((predicted - values) ** 2)[:, 0] * weights))

        expected = [-0.1 * numerical_gradient(loss, p.value, h=1e-6) for p in model.parameters()]
        before = [p.value.copy() for p in model.parameters()]
        model.train_on_batch(x, [labels, values], sample_weight=weights)
    for moved, old, step in zip(model.parameters(), before, expected):
        np.testing.assert_allclose(moved.value - old, step, rtol=1e-6, atol=1e-9)


@given(n=batch_sizes(), features=st.integers(1, 4), chained=st.booleans(), seed=rng_seeds())
def test_backward_from_every_output_checks_out(n, features, chained, seed):
    """Two outputs; with ``chained`` the first output is also read by the layers of the second."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        nnscratch.set_random_seed(seed)
        inputs = nnscratch.Input((features,))
        first = Dense(3, activation="softmax")(Dense(4, activation="tanh")(inputs))
        second = Dense(2, activation="sigmoid")(Dense(3, activation="tanh")(first if chained else inputs))
        model = nnscratch.Model(inputs, [first, second])
        report = check_model(model, rng.standard_normal((n, features)), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_an_output_without_a_loss_is_predicted_but_not_trained():
    x, labels, values = data()
    model = classify_and_regress()
    model.compile("adam", ["sparse_categorical_crossentropy", None])
    reg_before = model.get_layer("reg").get_weights()
    history = model.fit(x, [labels, None], epochs=2, batch_size=8, verbose=0).history
    assert list(history) == ["loss", "learning_rate"]              # one loss: no per-output logs, as Keras
    for before, after in zip(reg_before, model.get_layer("reg").get_weights()):
        np.testing.assert_array_equal(before, after)
    assert [p.shape for p in model.predict(x, verbose=0)] == [(40, 3), (40, 1)]


def test_one_array_of_sample_weights_weighs_every_output_as_a_list_or_dict_of_them():
    x, labels, values = data()
    weights = np.random.default_rng(3).random(40)
    model = classify_and_regress()
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], weighted_metrics=[["accuracy"], ["mae"]])
    one = model.evaluate(x, [labels, values], sample_weight=weights)
    assert model.evaluate(x, [labels, values], sample_weight=[weights, weights]) == one
    assert model.evaluate(x, [labels, values], sample_weight={"cls": weights, "reg": weights}) == one
    only_cls = model.evaluate(x, [labels, values], sample_weight={"cls": weights}, return_dict=True)
    assert only_cls["reg_loss"] == model.evaluate(x, [labels, values], return_dict=True)["reg_loss"]
    assert only_cls["cls_loss"] == pytest.approx(one[1])


def test_a_masked_sequence_output_beside_a_label_counts_only_the_real_steps():
    rng = np.random.default_rng(4)
    words, tags, labels = padded_indices(rng, n=32), rng.integers(0, 3, (32, 6)), rng.integers(0, 2, 32)
    nnscratch.set_random_seed(0)
    inputs = nnscratch.Input((6,))
    steps = LSTM(5, return_sequences=True)(Embedding(9, 4, mask_zero=True)(inputs))
    tagged = Dense(3, activation="softmax", name="tags")(steps)
    model = nnscratch.Model(inputs, [tagged, Dense(2, activation="softmax", name="label")(GlobalAveragePooling1D()(
        steps))])
    assert model.output_masked == [True, False]
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[["accuracy"], ["accuracy"]])
    tagger = nnscratch.Model(inputs, tagged)
    tagger.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = model.evaluate(words, [tags, labels], return_dict=True)
    alone = tagger.evaluate(words, tags, return_dict=True)
    assert logs["tags_loss"] == pytest.approx(alone["loss"], rel=1e-6)
    assert logs["tags_accuracy"] == pytest.approx(alone["accuracy"])
    history = model.fit(words, [tags, labels], epochs=3, batch_size=8, verbose=0, seed=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_a_batch_norm_output_read_by_a_relu_keeps_its_values_before_the_relu():
    nnscratch.set_random_seed(0)
    inputs = nnscratch.Input((4,))
    normalized = BatchNormalization(name="bn")(Dense(6)(inputs))
    model = nnscratch.Model(inputs, [normalized, Dense(3, activation="softmax")(ReLU()(normalized))])
    x, labels, _ = data()
    model.compile("adam", ["mse", "sparse_categorical_crossentropy"])
    model.fit(x, [np.zeros((40, 6)), labels], epochs=1, verbose=0, seed=0)
    bn = model.get_layer("bn")
    expected = bn(model.layers[0](x))                           # the two layers by hand, inference
    np.testing.assert_allclose(model.predict(x, verbose=0)[0], expected, rtol=1e-5, atol=1e-6)
    assert (expected < 0).any()


def test_a_saved_model_keeps_its_outputs_and_compile_settings_and_resumes_training(tmp_path):
    x, labels, values = data()
    model = classify_and_regress()
    model.compile("adam", ["sparse_categorical_crossentropy", "huber"], loss_weights=[0.5, 2.0],
                  metrics=[["accuracy"], []], weighted_metrics=[[], ["mae"]])
    model.fit(x, [labels, values], epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "two.npz")
    loaded = load_model(tmp_path / "two.npz")
    assert loaded.output_names == ["cls", "reg"] and loaded.output_shape == [(None, 3), (None, 1)]
    assert [head.loss_weight for head in loaded.heads] == [0.5, 2.0]
    for mine, theirs in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(mine, theirs)
    assert loaded.fit(x, [labels, values], epochs=1, verbose=0, seed=1).history == \
        model.fit(x, [labels, values], epochs=1, verbose=0, seed=1).history


def test_one_output_with_loss_weights_scales_its_loss_and_keeps_its_log_names(tmp_path):
    x, labels, _ = data()
    inputs = nnscratch.Input((4,))
    nnscratch.set_random_seed(0)
    model = nnscratch.Model(inputs, Dense(3, activation="softmax")(inputs))
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    reference = model.evaluate(x, labels, return_dict=True)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"], loss_weights=[0.25])
    logs = model.evaluate(x, labels, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    assert logs["loss"] == pytest.approx(0.25 * reference["loss"]) and logs["accuracy"] == reference["accuracy"]
    model.save(tmp_path / "weighted.npz")
    assert load_model(tmp_path / "weighted.npz").evaluate(x, labels, return_dict=True) == logs


def test_bad_settings_and_targets_name_what_was_expected():
    model = classify_and_regress()
    x, labels, values = data()
    with pytest.raises(ValueError, match=r"metrics must give one entry an output \(2: \['cls', 'reg'\]\)"):
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"metrics of a model with outputs \['cls', 'reg'\] must be a list"):
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], metrics="accuracy")
    with pytest.raises(ValueError, match=r"loss names outputs \['box'\] that the model does not have"):
        model.compile("sgd", {"cls": "mse", "box": "mse"})
    with pytest.raises(ValueError, match=r"loss_weights must give one entry an output \(2.*got 1 entries"):
        model.compile("sgd", "mse", loss_weights=[1.0])
    with pytest.raises(ValueError, match="output 'reg' has metrics but no loss"):
        model.compile("sgd", ["sparse_categorical_crossentropy", None], metrics=[[], ["mae"]])
    with pytest.raises(ValueError, match="compile needs a loss for at least one of the outputs"):
        model.compile("sgd", [None, None])
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match=r"has 2 outputs \['cls', 'reg'\]: y must be a list of 2 arrays"):
        model.fit(x, labels, verbose=0)
    with pytest.raises(ValueError, match="x and y for output 'reg' must have the same number of samples"):
        model.fit(x, [labels, values[:5]], verbose=0)
    with pytest.raises(ValueError, match="targets y are required for output 'reg'"):
        model.fit(x, [labels, None], verbose=0)
    with pytest.raises(ValueError, match="class_weight is only supported for models with a single output"):
        model.fit(x, [labels, values], class_weight={0: 1.0, 1: 2.0}, verbose=0)
