"""ReduceLROnPlateau on scripted metric sequences with a fake model (no training)."""

import pytest

from nnscratch.callbacks import CallbackList, ReduceLROnPlateau
from nnscratch.optimizers import SGD


class FakeModel:
    def __init__(self, learning_rate=1.0):
        self.stop_training = False
        self.optimizer = SGD(learning_rate=learning_rate)


def fit(callback, values, learning_rate=1.0, monitor="val_loss"):
    """Play ``values`` one per epoch; return the learning rate after each epoch."""
    model = FakeModel(learning_rate)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        rates.append(model.optimizer.learning_rate)
    callback.on_train_end()
    return rates


def test_patience_then_repeated_reductions():
    rates = fit(ReduceLROnPlateau(factor=0.5, patience=2), [1.0] * 6)
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_improvement_resets_wait():
    rates = fit(ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]


def test_min_delta_default_1e_4():
    # 1.0 -> 0.99995 is an improvement of less than 1e-4: it does not count.
    rates = fit(ReduceLROnPlateau(factor=0.5, patience=1), [1.0, 0.99995, 0.9])
    assert rates == [1.0, 0.5, 0.5]


def test_cooldown_pauses_counting():
    # patience 1, cooldown 2: reduce at 1, cooldown epochs 2 and 3 (the counter
    # reaches 0 during epoch 3, which may then count again), reduce at 3, ...
    rates = fit(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), [1.0] * 6)
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    rates = fit(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=0), [1.0] * 4)
    assert rates == [1.0, 0.5, 0.25, 0.125]


def test_min_lr_is_a_floor():
    cb = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05)
    rates = fit(cb, [1.0] * 5)
    assert rates == [1.0, pytest.approx(0.1), 0.05, 0.05, 0.05]
    assert cb.wait == 2  # at the floor nothing is reduced, so wait keeps growing


def test_no_message_at_the_floor(capsys):
    # min_lr=1e-4 is not exactly a float32; the float32 comparison (as in Keras)
    # must still see lr == min_lr and not "reduce" again.
    fit(ReduceLROnPlateau(factor=0.5, patience=1, min_lr=1e-4, verbose=1), [1.0] * 4,
        learning_rate=2e-4)
    out = capsys.readouterr().out
    assert out.count("ReduceLROnPlateau reducing learning rate to 0.0001.") == 1


def test_mode_max_for_accuracy():
    rates = fit(ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1),
                [0.5, 0.6, 0.7, 0.69], monitor="val_accuracy")
    assert rates == [1.0, 1.0, 1.0, 0.5]


def test_factor_must_be_below_one():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)


def test_writes_learning_rate_into_logs_seen_by_history():
    # History comes after the user's callbacks, so it records what ReduceLROnPlateau
    # wrote: the learning rate used during the epoch (before any reduction).
    model = FakeModel(1.0)
    callbacks = CallbackList([ReduceLROnPlateau(factor=0.5, patience=1)],
                             add_history=True, model=model)
    callbacks.on_train_begin()
    for epoch in range(3):
        callbacks.on_epoch_end(epoch, {"val_loss": 1.0})
    assert callbacks.history.history["learning_rate"] == [1.0, 1.0, 0.5]
    assert model.optimizer.learning_rate == 0.25


def test_missing_monitor_warns():
    cb = ReduceLROnPlateau()
    cb.set_model(FakeModel())
    cb.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss"):
        cb.on_epoch_end(0, {"loss": 1.0})


def test_state_reset_between_fits():
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=3)
    fit(cb, [1.0, 2.0, 3.0])
    assert cb.cooldown_counter == 3
    assert fit(cb, [5.0, 5.0]) == [1.0, 1.0]
    assert cb.best == 5.0 and cb.cooldown_counter == 0
