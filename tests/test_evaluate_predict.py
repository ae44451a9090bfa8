"""evaluate() and predict(): return forms, values against hand computation, data sources."""

import math

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D


def images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 10, size=n)


def cnn():
    return nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(4, 3, padding="same", activation="relu"), BatchNormalization(), MaxPooling2D(), Dropout(0.5),
        Flatten(), Dense(10, activation="softmax"),
    ])


def compiled_cnn(metrics=("accuracy",), loss="sparse_categorical_crossentropy"):
    model = cnn()
    model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
    return model


class XSequence:
    """A Sequence of input-only batches (what predict accepts)."""

    def __init__(self, x, batch_size, with_targets=False):
        self.x, self.batch_size, self.with_targets = x, batch_size, with_targets
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        batch = self.x[i * self.batch_size:(i + 1) * self.batch_size]
        return (batch, np.zeros(len(batch), dtype=int)) if self.with_targets else batch

    def on_epoch_end(self):
        self.epochs_ended += 1


# ------------------------------------------------------------------ evaluate
def test_evaluate_returns_loss_and_metrics_computed_from_the_predictions():
    model = compiled_cnn()
    x, y = images()
    result = model.evaluate(x, y)
    assert isinstance(result, list) and len(result) == 2
    loss, accuracy = result
    p = model.predict(x).astype(np.float64)
    assert loss == pytest.approx(float(np.mean(-np.log(p[np.arange(len(y)), y]))), rel=1e-5)
    assert accuracy == pytest.approx(float(np.mean(np.argmax(p, axis=1) == y)))


def test_evaluate_returns_every_metric_in_compile_order():
    model = compiled_cnn(metrics=("mae", "accuracy"), loss="categorical_crossentropy")
    x, y = images()
    one_hot = np.eye(10)[y]
    result = model.evaluate(x, one_hot)
    assert len(result) == 3
    loss, mae, accuracy = result
    p = model.predict(x).astype(np.float64)
    assert loss == pytest.approx(float(np.mean(-np.log(p[np.arange(len(y)), y]))), rel=1e-5)
    assert mae == pytest.approx(float(np.mean(np.abs(p - one_hot))), rel=1e-5)
    assert accuracy == pytest.approx(float(np.mean(np.argmax(p, axis=1) == y)))


def test_evaluate_without_metrics_returns_a_scalar():
    model = compiled_cnn(metrics=())
    x, y = images()
    loss = model.evaluate(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(model.evaluate(x, y, return_dict=True)["loss"])


def test_evaluate_return_dict():
    model = compiled_cnn()
    x, y = images()
    logs = model.evaluate(x, y, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    assert [logs["loss"], logs["accuracy"]] == pytest.approx(model.evaluate(x, y))


@pytest.mark.parametrize("batch_size", [1, 7, 16, 40, 100])
def test_evaluate_is_a_sample_weighted_mean_independent_of_batch_size(batch_size):
    model = compiled_cnn()
    x, y = images(40)
    reference = model.evaluate(x, y, batch_size=40)
    assert model.evaluate(x, y, batch_size=batch_size) == pytest.approx(reference, rel=1e-5)


def test_evaluate_does_not_train_or_change_statistics():
    model = compiled_cnn()
    x, y = images()
    before = model.get_weights()
    model.evaluate(x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)             # includes BN's moving statistics


def test_evaluate_accepts_a_sequence_of_x_y_batches():
    model = compiled_cnn()
    x, _ = images()
    sequence = XSequence(x, 16, with_targets=True)
    expected = model.evaluate(x, np.zeros(len(x), dtype=int))
    assert model.evaluate(sequence) == pytest.approx(expected, rel=1e-5)


def test_evaluate_with_one_hot_targets():
    model = compiled_cnn(loss="categorical_crossentropy")
    x, y = images()
    loss, accuracy = model.evaluate(x, nnscratch.utils.to_categorical(y, 10))
    p = model.predict(x).astype(np.float64)
    assert loss == pytest.approx(float(np.mean(-np.log(p[np.arange(len(y)), y]))), rel=1e-5)
    assert accuracy == pytest.approx(float(np.mean(np.argmax(p, 1) == y)))


# ------------------------------------------------------------------ predict
def test_predict_returns_one_probability_row_per_sample():
    model = cnn()
    x, _ = images(37)
    p = model.predict(x)
    assert p.shape == (37, 10)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(p >= 0)


@pytest.mark.parametrize("batch_size", [1, 5, 32, 100])
def test_predict_does_not_depend_on_batch_size(batch_size):
    model = cnn()
    x, _ = images(23)
    np.testing.assert_allclose(model.predict(x, batch_size=batch_size), model.predict(x, batch_size=23),
                               rtol=1e-5, atol=1e-7)


def test_predict_matches_calling_the_model_and_the_forward_pass():
    model = cnn()
    x, _ = images(8)
    np.testing.assert_allclose(model.predict(x), model(x), rtol=1e-6)
    np.testing.assert_allclose(model.predict(x), model.forward(x, training=False), rtol=1e-6)


def test_predict_runs_in_inference_mode():
    """Dropout is off and BN uses its moving statistics: predict is deterministic and leaves buffers alone."""
    model = cnn()
    x, _ = images(16)
    before = model.get_weights()
    first = model.predict(x)
    np.testing.assert_array_equal(model.predict(x), first)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(model.forward(x, training=True), first)    # training mode does differ


@pytest.mark.parametrize("with_targets", [False, True])
def test_predict_accepts_a_sequence(with_targets):
    model = cnn()
    x, _ = images(30)
    sequence = XSequence(x, 8, with_targets=with_targets)
    np.testing.assert_allclose(model.predict(sequence), model.predict(x), rtol=1e-6)
    assert sequence.epochs_ended == 1


def test_predict_accepts_a_generator_with_steps():
    model = cnn()
    x, _ = images(30)
    generator = (x[i:i + 10] for i in range(0, 30, 10))
    np.testing.assert_allclose(model.predict(generator, steps=3), model.predict(x), rtol=1e-6)


def test_predict_works_without_compile_and_accepts_lists():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    x = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(model.predict(x), np.array(x) @ kernel + bias, rtol=1e-6)


def test_predict_a_single_sample():
    model = cnn()
    x, _ = images(1)
    assert model.predict(x).shape == (1, 10)


@pytest.mark.parametrize("loss, targets", [("mse", lambda y: nnscratch.utils.to_categorical(y, 10)),
                                           ("sparse_categorical_crossentropy", lambda y: y)])
def test_evaluate_after_training_reflects_the_new_weights(loss, targets):
    model = compiled_cnn(metrics=(), loss=loss)
    x, y = images(60)
    before = model.evaluate(x, targets(y))
    model.fit(x, targets(y), epochs=15, batch_size=10, verbose=0)
    after = model.evaluate(x, targets(y))
    assert after < before


@pytest.mark.parametrize("method", ["predict", "evaluate"])
def test_a_progress_bar_only_when_verbose(method, capsys):
    model = compiled_cnn()
    x, y = images(30)
    args = (x,) if method == "predict" else (x, y)
    getattr(model, method)(*args, batch_size=10, verbose=1)
    err = capsys.readouterr().err
    assert method in err and "3/3" in err  # tqdm's bar, named after the call, reached its last batch
    getattr(model, method)(*args, batch_size=10, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_the_forward_plan_is_made_once_for_a_pass_and_dropped_after():
    model = compiled_cnn()
    x, y = images(30)
    plans = []
    make = model.forward_plan

    def counted(training=False):
        plans.append(training)
        return make(training)

    model.forward_plan = counted
    model.predict(x, batch_size=10)
    assert plans == [False]  # one plan for the 3 batches
    assert model._pass_plan is None
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert plans == [False] + [True] * 3  # training makes its plan each batch
