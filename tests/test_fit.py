"""fit(): History, validation, data sources, shuffling, batching, callbacks, one-batch steps, floatx."""

import math

import numpy as np
import pytest

import nnscratch
from nnscratch import callbacks, losses, optimizers
from nnscratch.layers import Dense, Dropout


# ------------------------------------------------------------------ helpers
def toy_data(n=120, features=6, classes=3, seed=0):
    """A linearly separable classification problem (labels = argmax of a random linear map)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(features, classes)), axis=1)
    return x, y


def mlp(features=6, classes=3, hidden=16):
    return nnscratch.Sequential([nnscratch.Input((features,)), Dense(hidden, activation="relu"),
                                 Dense(classes, activation="softmax")])


def compiled_mlp(loss="sparse_categorical_crossentropy", metrics=("accuracy",), optimizer="adam"):
    model = mlp()
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return model


def constant_zero_regressor():
    """Predicts exactly 0 whatever the input and never trains: mse loss = mean(y**2) reveals the samples used."""
    model = nnscratch.Sequential([nnscratch.Input((1,)),
                                  Dense(1, kernel_initializer="zeros", bias_initializer="zeros", trainable=False)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def indexed_regression(n):
    """x and y are the sample indices, so that the loss of a constant-0 model tells which samples were used."""
    index = np.arange(n, dtype="float32")
    return index[:, None], index[:, None]


class Recorder(callbacks.Callback):
    """Records every hook call with its logs."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.epoch_logs = []
        self.batch_logs = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_end(self, logs=None):
        self.calls.append("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch))
        self.epoch_logs.append(dict(logs))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.batch_logs.append((batch, dict(logs)))


class BatchSequence:
    """A Keras-style batch Sequence over arrays; counts what fit asks of it."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0
        self.items = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        self.items += 1
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


# ------------------------------------------------------------------ History
def test_history_has_one_entry_per_epoch_for_every_key():
    model = compiled_mlp()
    x, y = toy_data()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(values) == 3 for values in history.history.values())
    assert history.epoch == [0, 1, 2]
    assert model.history is history
    assert history.history["learning_rate"] == [pytest.approx(model.optimizer.learning_rate)] * 3
    for key in ("accuracy", "val_accuracy"):
        assert all(0.0 <= value <= 1.0 for value in history.history[key])


def test_history_without_validation_or_metrics():
    model = compiled_mlp(metrics=())
    x, y = toy_data()
    history = model.fit(x, y, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "learning_rate"}
    assert len(history.history["loss"]) == 2


def test_val_metrics_are_those_of_the_model_at_the_end_of_the_epoch():
    model = compiled_mlp()
    x, y = toy_data()
    history = model.fit(x[:90], y[:90], epochs=2, batch_size=16, validation_data=(x[90:], y[90:]), verbose=0)
    val_loss, val_accuracy = model.evaluate(x[90:], y[90:])
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(val_accuracy)


def test_training_loss_is_the_sample_weighted_mean_over_the_epoch():
    model = constant_zero_regressor()
    x, y = indexed_regression(50)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)   # batches of 16, 16, 16, 2
    assert history.history["loss"][0] == pytest.approx(float(np.mean(y.astype(np.float64) ** 2)), rel=1e-6)


# ------------------------------------------------------------------ validation_split
def test_validation_split_takes_the_last_fraction_before_shuffling():
    model = constant_zero_regressor()
    x, y = indexed_regression(50)
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.1, shuffle=True, verbose=0)
    y64 = y.astype(np.float64)
    assert history.history["val_loss"] == [pytest.approx(np.mean(y64[45:] ** 2), rel=1e-6)] * 2
    assert history.history["loss"] == [pytest.approx(np.mean(y64[:45] ** 2), rel=1e-6)] * 2


def test_validation_split_with_a_distinct_label_in_the_last_tenth():
    # every prediction is uniform, so argmax says class 0: accuracy 1 on class-0 samples, 0 on class-1 ones
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2, activation="softmax", trainable=False,
                                                                kernel_initializer="zeros")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(100, 3))
    y = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    history = model.fit(x, y, epochs=1, validation_split=0.1, verbose=0)
    assert history.history["accuracy"] == [1.0]
    assert history.history["val_accuracy"] == [0.0]


@pytest.mark.parametrize("split", [-0.5, 1.0, 1.5])
def test_validation_split_outside_zero_one_raises(split):
    model = compiled_mlp()
    x, y = toy_data(20)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=split, verbose=0)


# ------------------------------------------------------------------ validation_data forms
def test_validation_data_as_a_sequence_matches_the_tuple_and_calls_on_epoch_end():
    x, y = toy_data()
    x_val, y_val = toy_data(37, seed=1)
    results = []
    for as_sequence in (False, True):
        nnscratch.set_random_seed(5)
        model = compiled_mlp()
        sequence = BatchSequence(x_val, y_val, batch_size=10)
        validation = sequence if as_sequence else (x_val, y_val)
        history = model.fit(x, y, epochs=3, batch_size=16, seed=1, validation_data=validation, verbose=0)
        results.append(history.history)
        if as_sequence:
            assert sequence.epochs_ended == 3                 # once per epoch
            assert sequence.items == 3 * len(sequence)        # every batch, every epoch
    np.testing.assert_allclose(results[0]["val_loss"], results[1]["val_loss"], rtol=1e-5)
    assert results[0]["val_accuracy"] == results[1]["val_accuracy"]


def test_training_from_a_sequence():
    x, y = toy_data()
    sequence = BatchSequence(x, y, batch_size=16)
    model = compiled_mlp()
    recorder = Recorder()
    history = model.fit(sequence, epochs=3, callbacks=[recorder], verbose=0)
    assert len(history.history["loss"]) == 3
    assert sequence.epochs_ended == 3
    assert sum(1 for call in recorder.calls if call[0] == "batch_begin") == 3 * len(sequence)


def test_y_next_to_a_sequence_is_refused_not_ignored():
    x, y = toy_data()
    model = compiled_mlp()
    with pytest.raises(ValueError, match="y must be None"):
        model.fit(BatchSequence(x, y, batch_size=16), y, verbose=0)


def test_training_from_a_generator_with_steps_per_epoch():
    x, y = toy_data()
    drawn = []

    def batches():
        i = 0
        while True:
            drawn.append(i)
            part = slice((i * 10) % 120, (i * 10) % 120 + 10)
            yield x[part], y[part]
            i += 1

    model = compiled_mlp()
    history = model.fit(batches(), steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert len(drawn) == 12
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(batches(), epochs=1, verbose=0)


def test_a_generator_that_runs_dry_raises():
    x, y = toy_data(20)
    model = compiled_mlp()
    with pytest.raises(ValueError, match="ran out"):
        model.fit(iter([(x[:10], y[:10])]), steps_per_epoch=2, verbose=0)


def test_generator_as_validation_data_with_validation_steps():
    x, y = toy_data()

    def forever():
        while True:
            yield x[:20], y[:20]

    model = compiled_mlp()
    history = model.fit(x, y, epochs=2, validation_data=forever(), validation_steps=2, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[:20], y[:20])[0], rel=1e-5)


# ------------------------------------------------------------------ shuffle and batch_size
def _first_batch_losses(shuffle, epochs=4):
    model = constant_zero_regressor()
    x, y = indexed_regression(40)
    recorder = Recorder()
    history = model.fit(x, y, epochs=epochs, batch_size=8, shuffle=shuffle, callbacks=[recorder], verbose=0)
    firsts = [logs["loss"] for batch, logs in recorder.batch_logs if batch == 0]
    return firsts, history.history["loss"], y.astype(np.float64)


def test_without_shuffle_batches_come_in_order():
    firsts, epoch_losses, y = _first_batch_losses(shuffle=False)
    assert firsts == [pytest.approx(np.mean(y[:8] ** 2), rel=1e-6)] * 4


def test_shuffle_changes_the_order_every_epoch_but_keeps_every_sample():
    firsts, epoch_losses, y = _first_batch_losses(shuffle=True)
    in_order = np.mean(y[:8] ** 2)
    assert any(value != pytest.approx(in_order, rel=1e-6) for value in firsts)
    assert len(set(np.round(firsts, 3))) > 1                      # a new order each epoch
    assert epoch_losses == [pytest.approx(np.mean(y ** 2), rel=1e-6)] * 4   # still every sample once


@pytest.mark.parametrize("batch_size, steps", [(None, 4), (1, 100), (16, 7), (100, 1), (500, 1)])
def test_batch_size_sets_the_number_of_steps(batch_size, steps):
    x, y = toy_data(100)
    model = compiled_mlp()
    recorder = Recorder()
    model.fit(x, y, epochs=1, batch_size=batch_size, callbacks=[recorder], verbose=0)
    assert [call[1] for call in recorder.calls if call[0] == "batch_begin"] == list(range(steps))
    assert recorder.params["steps"] == steps


# ------------------------------------------------------------------ callbacks
def test_callbacks_see_hooks_in_order_and_the_epoch_logs():
    x, y = toy_data()
    model = compiled_mlp()
    recorder = Recorder()
    history = model.fit(x, y, epochs=2, batch_size=60, validation_split=0.5, callbacks=[recorder], verbose=0)
    assert recorder.model is model
    assert recorder.params["epochs"] == 2
    assert recorder.calls == ["train_begin",
                              ("epoch_begin", 0), ("batch_begin", 0), ("epoch_end", 0),
                              ("epoch_begin", 1), ("batch_begin", 0), ("epoch_end", 1),
                              "train_end"]
    assert len(recorder.epoch_logs) == 2
    for epoch, logs in enumerate(recorder.epoch_logs):
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
        for key, value in logs.items():
            assert value == history.history[key][epoch]


def test_a_single_callback_need_not_be_in_a_list():
    recorder = Recorder()
    x, y = toy_data(30)
    compiled_mlp().fit(x, y, epochs=2, callbacks=recorder, verbose=0)
    assert len(recorder.epoch_logs) == 2


def test_early_stopping_stops_a_real_fit():
    x, y = toy_data()
    model = compiled_mlp()
    # an improvement must beat the best loss by 10 nats: after the first epoch none can
    stopper = callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=2)
    history = model.fit(x, y, epochs=50, callbacks=[stopper], verbose=0)
    assert len(history.history["loss"]) == 3
    assert stopper.stopped_epoch == 2
    assert model.stop_training


def test_early_stopping_on_val_loss_with_restore_best_weights():
    x, y = toy_data(200)
    y_noise = np.random.default_rng(3).integers(0, 3, size=80)   # unlearnable validation labels
    model = compiled_mlp(optimizer=optimizers.Adam(learning_rate=0.05))
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(x, y, epochs=200, batch_size=20, validation_data=(x[:80] + 2.0, y_noise),
                        callbacks=[stopper], verbose=0)
    ran = len(history.history["val_loss"])
    assert ran < 200
    best = int(np.argmin(history.history["val_loss"]))
    assert ran == best + 1 + 3
    restored_val_loss = model.evaluate(x[:80] + 2.0, y_noise)[0]
    assert restored_val_loss == pytest.approx(history.history["val_loss"][best], rel=1e-5)


def test_initial_epoch():
    x, y = toy_data(30)
    model = compiled_mlp()
    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]


# ------------------------------------------------------------------ learning
def test_loss_decreases_on_a_learnable_problem():
    x, y = toy_data(300)
    model = compiled_mlp(optimizer=optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    losses_ = history.history["loss"]
    assert losses_[-1] < 0.5 * losses_[0]
    assert history.history["accuracy"][-1] > 0.9
    assert model.evaluate(x, y)[1] > 0.9


def test_dropout_model_trains():
    x, y = toy_data(300)
    model = nnscratch.Sequential([nnscratch.Input((6,)), Dense(32, activation="relu"), Dropout(0.3),
                                  Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert model.evaluate(x, y)[1] > 0.85


def test_binary_crossentropy_with_sigmoid_trains():
    x, y3 = toy_data(200)
    y = (y3 == 0).astype("float32")
    model = nnscratch.Sequential([nnscratch.Input((6,)), Dense(16, activation="tanh"),
                                  Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


# ------------------------------------------------------------------ losses and names
def test_sparse_and_categorical_crossentropy_agree():
    x, y = toy_data(50)
    sparse = compiled_mlp(loss="sparse_categorical_crossentropy")
    dense = compiled_mlp(loss="categorical_crossentropy")
    dense.set_weights(sparse.get_weights())
    one_hot = nnscratch.utils.to_categorical(y, 3)
    s_loss, s_acc = sparse.evaluate(x, y)
    d_loss, d_acc = dense.evaluate(x, one_hot)
    assert s_loss == pytest.approx(d_loss, rel=1e-6)
    assert s_acc == d_acc
    p = sparse.predict(x).astype(np.float64)
    assert s_loss == pytest.approx(float(np.mean(-np.log(p[np.arange(50), y]))), rel=1e-5)
    # and both train the same way
    sparse.fit(x, y, epochs=2, batch_size=10, seed=0, verbose=0)
    dense.fit(x, one_hot, epochs=2, batch_size=10, seed=0, verbose=0)
    for a, b in zip(sparse.get_weights(), dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("labels", [
    lambda y: y.astype(np.int32),
    lambda y: y.astype(np.int64)[:, None],
    lambda y: y.astype(np.float32),
    lambda y: list(y),
])
def test_sparse_labels_in_several_forms(labels):
    x, y = toy_data(40)
    model = compiled_mlp()
    reference = model.evaluate(x, y)
    assert model.evaluate(x, labels(y)) == pytest.approx(reference)
    model.fit(x, labels(y), epochs=1, verbose=0)


@pytest.mark.parametrize("optimizer, cls", [("sgd", optimizers.SGD), ("SGD", optimizers.SGD),
                                            ("rmsprop", optimizers.RMSprop), ("adam", optimizers.Adam),
                                            ("Adam", optimizers.Adam)])
def test_optimizers_by_string(optimizer, cls):
    model = compiled_mlp(optimizer=optimizer)
    assert type(model.optimizer) is cls
    x, y = toy_data(40)
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("name, cls", [("categorical_crossentropy", losses.CategoricalCrossentropy),
                                       ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                                       ("binary_crossentropy", losses.BinaryCrossentropy),
                                       ("mse", losses.MeanSquaredError),
                                       ("mean_squared_error", losses.MeanSquaredError)])
def test_losses_by_string(name, cls):
    model = mlp()
    model.compile(optimizer="sgd", loss=name)
    assert isinstance(model.loss, cls)


def test_metrics_by_string_and_accuracy_follows_the_loss():
    x, y = toy_data(40)
    model = compiled_mlp(loss="mse", metrics=("mae",))
    one_hot = nnscratch.utils.to_categorical(y, 3)
    history = model.fit(x, one_hot, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mae", "learning_rate"}
    p = model.predict(x)
    loss, mae = model.evaluate(x, one_hot)
    assert mae == pytest.approx(float(np.mean(np.abs(p - one_hot))), rel=1e-5)
    assert loss == pytest.approx(float(np.mean((p - one_hot) ** 2)), rel=1e-5)

    sparse = compiled_mlp(metrics=("accuracy",))
    assert sparse.evaluate(x, y)[1] == pytest.approx(float(np.mean(np.argmax(sparse.predict(x), 1) == y)))


def test_loss_and_optimizer_objects_are_accepted():
    model = mlp()
    optimizer = optimizers.SGD(learning_rate=0.2, momentum=0.5)
    model.compile(optimizer=optimizer, loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    assert model.optimizer is optimizer
    x, y = toy_data(40)
    model.fit(x, y, epochs=1, verbose=0)
    assert optimizer.iterations == 2


# ------------------------------------------------------------------ one batch at a time
def test_train_on_batch_and_test_on_batch_return_the_loss():
    x, y = toy_data(32)
    model = compiled_mlp(metrics=())
    before = model.get_weights()
    tested = model.test_on_batch(x, y)
    assert isinstance(tested, float)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))   # no training
    assert tested == pytest.approx(model.evaluate(x, y, batch_size=32), rel=1e-6)
    trained = model.train_on_batch(x, y)
    assert isinstance(trained, float)
    assert trained == pytest.approx(tested, rel=1e-6)          # the loss before the update
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.test_on_batch(x, y) < tested                   # one step downhill
    assert model.optimizer.iterations == 1


def test_train_on_batch_with_metrics_returns_loss_and_metrics():
    x, y = toy_data(32)
    model = compiled_mlp(metrics=("accuracy",))
    loss, accuracy = model.test_on_batch(x, y)
    assert accuracy == pytest.approx(float(np.mean(np.argmax(model.predict(x), 1) == y)))
    result = model.train_on_batch(x, y)
    assert isinstance(result, list) and len(result) == 2
    assert result == pytest.approx([loss, accuracy])
    as_dict = model.test_on_batch(x, y, return_dict=True)
    assert set(as_dict) == {"loss", "accuracy"}


# ------------------------------------------------------------------ float64
def test_float64_builds_float64_weights_and_trains(float64):
    model = compiled_mlp()
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    x, y = toy_data(100)
    history = model.fit(x, y, epochs=10, batch_size=20, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(w.dtype == np.float64 for w in model.get_weights())
    prediction = model.predict(x.astype(np.float32))
    assert prediction.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8])
def test_predict_dtype_follows_floatx_in_float32(dtype):
    model = mlp()
    x = (np.random.default_rng(0).random((5, 6)) * 10).astype(dtype)
    prediction = model.predict(x)
    assert prediction.dtype == np.float32
    assert all(w.dtype == np.float32 for w in model.get_weights())
