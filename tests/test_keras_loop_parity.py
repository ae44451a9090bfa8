"""The training loop against Keras 3: steps, validation_data forms, evaluate/predict callbacks, Sequence shuffling.

Where a test quotes numbers "from Keras", they were produced by Keras 3.15.1
(TensorFlow backend) on the same data; no test here needs Keras.
"""

import math
import warnings

import numpy as np
import pytest

import nnscratch
from nnscratch import callbacks
from nnscratch.layers import Dense
from nnscratch.models import trainer as trainer_module


# ------------------------------------------------------------------ helpers
def constant_zero_regressor():
    """Predicts exactly 0 and never trains: the mse loss, mean(y**2), tells which samples were used."""
    model = nnscratch.Sequential([nnscratch.Input((1,)),
                                  Dense(1, kernel_initializer="zeros", bias_initializer="zeros", trainable=False)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def indexed(n=100):
    """x and y are the sample indices 0..n-1."""
    index = np.arange(n, dtype="float32")[:, None]
    return index, index.copy()


def mean_square(values):
    return float(np.mean(np.asarray(values, dtype=np.float64) ** 2))


def classifier():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def classification(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


class Journal(callbacks.Callback):
    """Records every hook call as (hook, args..., logs)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("on_") and callable(attr):
            def record(*args):
                self.calls.append((name, *args))
                return attr(*args)
            return record
        return attr

    def hooks(self, prefix="on_"):
        return [call for call in self.calls if call[0].startswith(prefix)]

    def batches_per_epoch(self):
        counts = []
        for call in self.calls:
            if call[0] == "on_epoch_begin":
                counts.append(0)
            elif call[0] == "on_train_batch_begin":
                counts[-1] += 1
        return counts


class OrderSequence:
    """A Sequence of 4 batches of 25 samples that records the batch indices asked for."""

    def __init__(self, x, y, batches=4):
        self.x, self.y, self.size = x, y, math.ceil(len(x) / batches)
        self.asked, self.ends = [], 0

    def __len__(self):
        return math.ceil(len(self.x) / self.size)

    def __getitem__(self, i):
        self.asked.append(i)
        part = slice(i * self.size, (i + 1) * self.size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.ends += 1


# ------------------------------------------------------------------ 1. steps with arrays
def test_steps_per_epoch_limits_each_epoch_of_arrays():
    x, y = classification()
    journal = Journal()
    classifier().fit(x, y, batch_size=10, epochs=3, steps_per_epoch=2, callbacks=[journal], verbose=0)
    assert journal.batches_per_epoch() == [2, 2, 2]      # Keras: 6 batches in all
    assert journal.params["steps"] == 2


@pytest.mark.parametrize("steps, batches, losses", [
    # from Keras (losses printed to 0.1): the next epoch goes on where the last stopped; a pass that runs
    # out ends the epoch early
    (2, [2, 2, 2, 2, 2, 2], [123.5, 903.5, 2483.5, 4863.5, 8043.5, 123.5]),
    (3, [3, 3, 3, 1, 3, 3], [285.2, 2055.2, 5625.2, 8938.5, 285.2, 2055.2]),
    (15, [10] * 6, [3283.5] * 6),
])
def test_steps_per_epoch_goes_on_where_the_last_epoch_stopped_as_keras(steps, batches, losses):
    model = constant_zero_regressor()
    x, y = indexed()
    journal = Journal()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=10, epochs=6, steps_per_epoch=steps, shuffle=False,
                            callbacks=[journal], verbose=0)
    assert journal.batches_per_epoch() == batches
    np.testing.assert_allclose(history.history["loss"], losses, atol=0.05)
    ran_out = [w for w in caught if "ran out" in str(w.message)]
    assert len(ran_out) == sum(count < steps for count in batches)   # Keras warns for each short epoch


def test_steps_per_epoch_keeps_one_shuffled_pass_over_several_epochs_and_the_seed_repeats_it():
    x, y = indexed()
    journal = Journal()
    runs = [constant_zero_regressor().fit(x, y, batch_size=10, epochs=5, steps_per_epoch=2, seed=7,
                                          callbacks=[journal], verbose=0).history["loss"] for _ in range(2)]
    assert journal.batches_per_epoch() == [2] * 10                    # 5 epochs of 2 batches, twice
    assert runs[0] == runs[1]                                         # fit(seed=...) is reproducible
    in_order = [mean_square(y[i * 20:(i + 1) * 20]) for i in range(5)]
    assert runs[0] != pytest.approx(in_order)                         # shuffled
    # the five epochs of 20 samples are one permutation of the 100: every sample once
    assert sum(loss * 20 for loss in runs[0]) == pytest.approx(float(np.sum(y.astype(np.float64) ** 2)), rel=1e-6)


def test_evaluate_and_predict_with_steps_use_the_first_batches():
    model = constant_zero_regressor()
    x, y = indexed()
    assert model.evaluate(x, y, batch_size=10, steps=2) == pytest.approx(123.5)      # Keras: mean(y[:20]**2)
    prediction = model.predict(x, batch_size=10, steps=2)
    assert prediction.shape == (20, 1)

    model = classifier()
    x, y = classification()
    np.testing.assert_allclose(model.predict(x, batch_size=10, steps=2), model.predict(x[:20]), rtol=1e-6)
    assert model.evaluate(x, y, batch_size=10, steps=2) == pytest.approx(model.evaluate(x[:20], y[:20]))


def test_steps_without_batch_size_cut_the_arrays_into_that_many_batches():
    model = constant_zero_regressor()
    x, y = indexed()
    # Keras: batch_size = ceil(100 / steps), so the steps cover all the data
    assert model.evaluate(x, y, steps=2) == pytest.approx(3283.5)
    assert model.predict(x, steps=3).shape == (100, 1)
    journal = Journal()
    model.fit(x, y, epochs=1, steps_per_epoch=3, callbacks=[journal], verbose=0)
    assert journal.batches_per_epoch() == [3]


def test_steps_beyond_the_data_stop_at_its_end_with_a_warning():
    model = constant_zero_regressor()
    x, y = indexed()
    with pytest.warns(UserWarning, match="ran out"):
        assert model.evaluate(x, y, batch_size=10, steps=15) == pytest.approx(3283.5)
    with pytest.warns(UserWarning, match="ran out"):
        assert model.predict(x, batch_size=10, steps=15).shape == (100, 1)


def test_validation_steps_limit_each_validation_to_the_first_batches():
    model = constant_zero_regressor()
    x, y = indexed()
    history = model.fit(x, y, batch_size=10, epochs=3, validation_data=(x, y), validation_steps=2, verbose=0)
    assert history.history["val_loss"] == [pytest.approx(123.5)] * 3   # from Keras: each validation restarts


@pytest.mark.parametrize("steps", [0, -1, 1.5, "2"])
def test_bad_steps_raise(steps):
    x, y = indexed(20)
    model = constant_zero_regressor()
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.fit(x, y, steps_per_epoch=steps, verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.evaluate(x, y, steps=steps)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.predict(x, steps=steps)


# ------------------------------------------------------------------ 2. validation_data forms
def test_validation_data_with_none_as_sample_weights_is_the_pair():
    x, y = classification()
    with_none = classifier()
    pair = classifier()
    pair.set_weights(with_none.get_weights())
    a = with_none.fit(x, y, validation_data=(x, y, None), shuffle=False, verbose=0).history["val_loss"]
    b = pair.fit(x, y, validation_data=(x, y), shuffle=False, verbose=0).history["val_loss"]
    assert a == b


@pytest.mark.parametrize("validation_data, error", [
    (np.zeros((10, 4)), TypeError),                  # x alone
    ({"x": np.zeros((10, 4))}, TypeError),
    ((np.zeros((10, 4)),), ValueError),               # a 1-tuple
    ((np.zeros((10, 4)), np.zeros(10), None, None), ValueError),
])
def test_validation_data_that_is_not_a_pair_or_a_source_raises(validation_data, error):
    x, y = classification()
    with pytest.raises(error, match="validation_data must be"):
        classifier().fit(x, y, validation_data=validation_data, verbose=0)


# ------------------------------------------------------------------ 3. callbacks of evaluate, predict, validation
def test_evaluate_calls_the_test_hooks_with_the_logs_keras_gives():
    model = constant_zero_regressor()
    x, y = indexed(25)
    journal = Journal()
    result = model.evaluate(x, y, batch_size=10, callbacks=[journal], return_dict=True)
    # from Keras: batch logs are the running means, the end logs the results
    assert journal.calls == [
        ("on_test_begin", {}),
        ("on_test_batch_begin", 0, {}), ("on_test_batch_end", 0, {"loss": pytest.approx(28.5)}),
        ("on_test_batch_begin", 1, {}), ("on_test_batch_end", 1, {"loss": pytest.approx(123.5)}),
        ("on_test_batch_begin", 2, {}), ("on_test_batch_end", 2, {"loss": pytest.approx(196.0)}),
        ("on_test_end", {"loss": pytest.approx(196.0)}),
    ]
    assert result == {"loss": pytest.approx(196.0)}
    assert journal.model is model
    assert journal.params == {"verbose": 0, "epochs": 1, "steps": 3}


def test_predict_calls_the_predict_hooks_with_the_outputs():
    model = classifier()
    x, _ = classification(25)
    journal = Journal()
    prediction = model.predict(x, batch_size=10, callbacks=journal)
    names = [call[0] for call in journal.calls]
    assert names == ["on_predict_begin"] + ["on_predict_batch_begin", "on_predict_batch_end"] * 3 + ["on_predict_end"]
    assert journal.calls[0] == ("on_predict_begin", {}) and journal.calls[-1] == ("on_predict_end", {})
    ends = [call for call in journal.calls if call[0] == "on_predict_batch_end"]
    assert [call[1] for call in ends] == [0, 1, 2]
    assert [call[2]["outputs"].shape for call in ends] == [(10, 3), (10, 3), (5, 3)]
    np.testing.assert_array_equal(np.concatenate([call[2]["outputs"] for call in ends]), prediction)


def test_fit_validation_calls_the_test_hooks_of_fits_callbacks():
    model = classifier()
    x, y = classification(40)
    journal = Journal()
    history = model.fit(x, y, batch_size=20, epochs=2, validation_split=0.5, callbacks=[journal], verbose=0)
    names = [call[0] for call in journal.calls if "batch_begin" not in call[0] and call[0] != "on_batch_end"]
    one_epoch = ["on_epoch_begin", "on_train_batch_end",
                 "on_test_begin", "on_test_batch_end", "on_test_end", "on_epoch_end"]
    assert names == ["on_train_begin"] + one_epoch * 2 + ["on_train_end"]
    test_ends = [call[1] for call in journal.calls if call[0] == "on_test_end"]
    assert [logs["loss"] for logs in test_ends] == history.history["val_loss"]
    assert [logs["accuracy"] for logs in test_ends] == history.history["val_accuracy"]


def test_a_callback_can_stop_evaluate_and_predict():
    class StopAtFirstBatch(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            self.model.stop_evaluating = True

        def on_predict_batch_end(self, batch, logs=None):
            self.model.stop_predicting = True

    model = constant_zero_regressor()
    x, y = indexed()
    assert model.evaluate(x, y, batch_size=10, callbacks=[StopAtFirstBatch()]) == pytest.approx(mean_square(y[:10]))
    assert model.predict(x, batch_size=10, callbacks=[StopAtFirstBatch()]).shape == (10, 1)
    assert model.evaluate(x, y, batch_size=10) == pytest.approx(3283.5)     # the next call runs in full


def test_without_callbacks_evaluate_and_predict_make_no_callback_list(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a CallbackList was made")

    monkeypatch.setattr(trainer_module, "CallbackList", refuse)
    model = constant_zero_regressor()
    x, y = indexed()
    model.predict(x)
    model.predict(x, callbacks=[])
    model.evaluate(x, y)


def test_callbacks_must_be_callbacks():
    model = constant_zero_regressor()
    x, y = indexed()
    with pytest.raises(TypeError, match="Callback instances"):
        model.predict(x, callbacks=[print])
    with pytest.raises(TypeError, match="Callback instances"):
        model.fit(x, y, callbacks=["early_stopping"], verbose=0)


# ------------------------------------------------------------------ 4. Sequence shuffling
def _epoch_orders(sequence, epochs):
    per_epoch = len(sequence)
    return [sequence.asked[i * per_epoch:(i + 1) * per_epoch] for i in range(epochs)]


def test_fit_shuffles_the_batch_order_of_a_sequence_every_epoch():
    x, y = classification()
    sequence = OrderSequence(x, y)
    classifier().fit(sequence, epochs=6, seed=3, verbose=0)
    orders = _epoch_orders(sequence, 6)
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)       # every batch once an epoch
    assert any(order != [0, 1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1                   # a new order each epoch
    assert sequence.ends == 6


def test_sequence_shuffling_follows_the_fit_seed_bit_for_bit():
    x, y = classification()
    runs = []
    for _ in range(2):
        nnscratch.set_random_seed(11)
        model = classifier()
        sequence = OrderSequence(x, y)
        model.fit(sequence, epochs=3, seed=5, verbose=0)
        runs.append((sequence.asked, model.get_weights()))
    assert runs[0][0] == runs[1][0] != [0, 1, 2, 3] * 3
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_shuffle_false_and_evaluation_keep_the_sequence_order():
    x, y = classification()
    sequence = OrderSequence(x, y)
    model = classifier()
    model.fit(sequence, epochs=3, shuffle=False, verbose=0)
    assert sequence.asked == [0, 1, 2, 3] * 3
    validation = OrderSequence(x, y)
    model.fit(x, y, epochs=2, validation_data=validation, seed=0, verbose=0)
    assert validation.asked == [0, 1, 2, 3] * 2
    sequence.asked.clear()
    model.evaluate(sequence)
    model.predict(sequence)
    assert sequence.asked == [0, 1, 2, 3] * 2


def test_steps_per_epoch_goes_on_through_a_sequence():
    x, y = classification()
    sequence = OrderSequence(x, y)
    classifier().fit(sequence, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    assert sequence.asked == [0, 1, 2, 3, 0, 1]
    assert sequence.ends == 3                                             # after every epoch, as Keras


# ------------------------------------------------------------------ 5. predict(batch_size=None)
def test_predict_batch_size_none_means_32():
    model = classifier()
    x, _ = classification(70)
    journal = Journal()
    prediction = model.predict(x, batch_size=None, callbacks=[journal])
    np.testing.assert_array_equal(prediction, model.predict(x, batch_size=32))
    assert journal.params["steps"] == 3


# ------------------------------------------------------------------ 9. CSVLogger and the progress bar in a real fit
def test_csv_logger_of_a_fit_without_validation_has_no_val_learning_rate(tmp_path):
    x, y = classification()
    path = tmp_path / "log.csv"
    classifier().fit(x, y, epochs=2, callbacks=[callbacks.CSVLogger(path)], verbose=0)
    header = path.read_text().splitlines()[0]
    assert header == "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"   # Keras's columns + learning_rate


def test_the_progress_bar_stays_silent_in_the_test_hooks_of_fits_validation(capsys):
    x, y = classification(40)
    classifier().fit(x, y, epochs=1, batch_size=10, validation_split=0.5, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "Evaluate" not in err
