"""CallbackList, History, TerminateOnNaN, CSVLogger and ProgbarLogger (no training)."""

import math

import numpy as np
import pytest

from nnscratch.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    History,
    ProgbarLogger,
    TerminateOnNaN,
)
from nnscratch.optimizers import SGD


class FakeModel:
    def __init__(self):
        self.stop_training = False
        self.optimizer = SGD(learning_rate=0.01)


class Recorder(Callback):
    """Writes every hook call, tagged with its name, into a shared journal."""

    def __init__(self, tag, journal):
        super().__init__()
        self.tag, self.journal = tag, journal

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("on_") and callable(attr):
            def record(*args, **kwargs):
                self.journal.append((self.tag, name) + args[:-1])
                return attr(*args, **kwargs)
            return record
        return attr


EPOCH_LOGS = [
    {"loss": 0.9, "accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.65, "learning_rate": 0.01},
    {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75, "learning_rate": 0.01},
]


def fit(callbacks, epochs=2, steps=3, batch_loss=lambda epoch, batch: 1.0 / (batch + 1)):
    """Call the hooks exactly as the training loop does, with made-up logs."""
    model = callbacks.model
    callbacks.on_train_begin()
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        for batch in range(steps):
            callbacks.on_train_batch_begin(batch)
            callbacks.on_train_batch_end(batch, {"loss": batch_loss(epoch, batch),
                                                 "accuracy": 0.5})
        callbacks.on_epoch_end(epoch, dict(EPOCH_LOGS[epoch % 2]))
        if model.stop_training:
            break
    callbacks.on_train_end()
    return epoch


# ---------------------------------------------------------------- CallbackList

def test_dispatch_order():
    journal = []
    callbacks = CallbackList([Recorder("a", journal), Recorder("b", journal)],
                             model=FakeModel())
    fit(callbacks, epochs=1, steps=1)
    callbacks.on_test_begin()
    callbacks.on_predict_batch_end(0)
    assert journal == [
        ("a", "on_train_begin"), ("b", "on_train_begin"),
        ("a", "on_epoch_begin", 0), ("b", "on_epoch_begin", 0),
        ("a", "on_train_batch_begin", 0), ("a", "on_batch_begin", 0),
        ("b", "on_train_batch_begin", 0), ("b", "on_batch_begin", 0),
        ("a", "on_train_batch_end", 0), ("a", "on_batch_end", 0),
        ("b", "on_train_batch_end", 0), ("b", "on_batch_end", 0),
        ("a", "on_epoch_end", 0), ("b", "on_epoch_end", 0),
        ("a", "on_train_end"), ("b", "on_train_end"),
        ("a", "on_test_begin"), ("b", "on_test_begin"),
        ("a", "on_predict_batch_end", 0), ("b", "on_predict_batch_end", 0),
    ]


def test_adds_history_and_progbar_once():
    callbacks = CallbackList(None, add_history=True, add_progbar=True, model=FakeModel())
    assert [type(c) for c in callbacks] == [History, ProgbarLogger]
    assert callbacks.history is callbacks.callbacks[0]

    mine = History()
    callbacks = CallbackList([mine], add_history=True, add_progbar=False)
    assert callbacks.callbacks == [mine] and callbacks.history is mine
    assert CallbackList([]).history is None


def test_sets_model_and_params_on_every_callback():
    model = FakeModel()
    inner = Callback()
    callbacks = CallbackList([inner], add_history=True, model=model,
                             verbose=0, epochs=3, steps=10)
    assert all(c.model is model for c in callbacks)
    assert all(c.params == {"verbose": 0, "epochs": 3, "steps": 10} for c in callbacks)
    assert model.history is callbacks.history


def test_logs_are_copied_shared_and_pythonified():
    seen = []

    class Writer(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = 1.0

    class Reader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs)

    callbacks = CallbackList([Writer(), Reader()], model=FakeModel())
    original = {"loss": np.float32(0.5), "val_loss": np.array(0.25)}
    callbacks.on_epoch_end(0, original)
    assert seen == [{"loss": 0.5, "val_loss": 0.25, "extra": 1.0}]
    assert type(seen[0]["loss"]) is float and type(seen[0]["val_loss"]) is float
    assert "extra" not in original


# ---------------------------------------------------------------- History

def test_history_records_epoch_logs_and_resets():
    callbacks = CallbackList([], add_history=True, model=FakeModel())
    fit(callbacks)
    history = callbacks.history
    assert history.epoch == [0, 1]
    assert history.history == {key: [EPOCH_LOGS[0][key], EPOCH_LOGS[1][key]]
                               for key in EPOCH_LOGS[0]}
    fit(callbacks, epochs=1)
    assert history.epoch == [0] and history.history["loss"] == [0.9]


# ---------------------------------------------------------------- TerminateOnNaN

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_terminate_on_nan_stops_training(bad, capsys):
    model = FakeModel()
    callbacks = CallbackList([TerminateOnNaN()], model=model)
    last = fit(callbacks, epochs=5, batch_loss=lambda e, b: bad if (e, b) == (1, 2) else 0.5)
    assert model.stop_training and last == 1
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_ignores_finite_losses():
    model = FakeModel()
    assert fit(CallbackList([TerminateOnNaN()], model=model), epochs=3) == 2
    assert not model.stop_training


def test_terminate_on_nan_can_raise():
    callbacks = CallbackList([TerminateOnNaN(raise_error=True)], model=FakeModel())
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        fit(callbacks, batch_loss=lambda e, b: math.nan)


# ---------------------------------------------------------------- CSVLogger

def test_csv_logger_content(tmp_path):
    path = tmp_path / "log.csv"
    fit(CallbackList([CSVLogger(path)], model=FakeModel()))
    assert path.read_text().splitlines() == [
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss",
        "0,0.7,0.01,0.9,0.65,1.0",
        "1,0.8,0.01,0.5,0.75,0.6",
    ]


def test_csv_logger_append_and_separator(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, separator=";", append=True)
    fit(CallbackList([logger], model=FakeModel()), epochs=1)
    fit(CallbackList([logger], model=FakeModel()), epochs=1)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch;accuracy;learning_rate;loss;val_accuracy;val_loss"
    assert lines[1] == lines[2] == "0;0.7;0.01;0.9;0.65;1.0"
    assert len(lines) == 3  # the header once


def test_csv_logger_adds_val_columns_like_keras(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5})
    logger.on_train_end()
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,0.5,NA"]


def test_csv_logger_adds_no_val_learning_rate_column(tmp_path):
    """The learning rate is not measured on data: no ``val_learning_rate`` column full of NA."""
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75, "learning_rate": 0.01})
    logger.on_train_end()
    assert path.read_text().splitlines() == ["epoch,accuracy,learning_rate,loss,val_accuracy,val_loss",
                                             "0,0.75,0.01,0.5,NA,NA"]


# ---------------------------------------------------------------- ProgbarLogger

def test_progbar_verbose_1_draws_a_bar_per_epoch(capsys):
    callbacks = CallbackList([], add_progbar=True, model=FakeModel(),
                             verbose=1, epochs=2, steps=3)
    fit(callbacks)
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err
    assert "3/3" in err                       # the bar reached the end of the epoch
    assert "loss: 0.9000" in err and "val_loss: 1.0000" in err and "val_accuracy: 0.6500" in err


def test_progbar_verbose_2_prints_one_line_per_epoch(capsys):
    callbacks = CallbackList([], add_progbar=True, model=FakeModel(),
                             verbose=2, epochs=2, steps=3)
    fit(callbacks)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch + 1}/2 - ")
        assert "s/step" in line
        assert f"val_loss: {EPOCH_LOGS[epoch]['val_loss']:.4f}" in line
        assert "learning_rate: 0.0100" in line
        assert "\r" not in line


def test_progbar_verbose_0_is_silent(capsys):
    fit(CallbackList([ProgbarLogger()], model=FakeModel(), verbose=0, epochs=2, steps=3))
    assert capsys.readouterr() == ("", "")


def test_progbar_evaluate_outside_fit_and_silent_validation_inside(capsys):
    bar = ProgbarLogger()
    callbacks = CallbackList([bar], model=FakeModel(), verbose=1, epochs=1, steps=2)
    callbacks.on_test_begin()
    for batch in range(2):
        callbacks.on_test_batch_end(batch, {"loss": 0.25})
    callbacks.on_test_end({"loss": 0.25, "accuracy": 0.5})
    err = capsys.readouterr().err
    assert "Evaluate" in err and "2/2" in err and "accuracy: 0.5000" in err

    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    capsys.readouterr()
    callbacks.on_test_begin()
    callbacks.on_test_batch_end(0, {"loss": 0.25})
    callbacks.on_test_end({"loss": 0.25})
    assert "Evaluate" not in capsys.readouterr().err
    callbacks.on_epoch_end(0, {"loss": 0.5})
    callbacks.on_train_end()


def test_progbar_unknown_steps_and_tiny_values(capsys):
    callbacks = CallbackList([], add_progbar=True, model=FakeModel(),
                             verbose=2, epochs=1, steps=None)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_epoch_end(0, {"loss": 1e-5})
    callbacks.on_train_end()
    assert "loss: 1.0000e-05" in capsys.readouterr().err
