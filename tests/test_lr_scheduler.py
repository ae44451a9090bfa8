"""LearningRateScheduler and LambdaCallback: scripted hook calls (no training), then one small fit each."""

import numpy as np
import pytest

import nnscratch
from nnscratch.callbacks import CallbackList, LambdaCallback, LearningRateScheduler
from nnscratch.layers import Dense
from nnscratch.optimizers import SGD
from nnscratch.optimizers.schedules import ExponentialDecay


class FakeModel:
    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = SGD(learning_rate=learning_rate)


def play(callback, epochs, model=None, first_epoch=0):
    """Call the epoch hooks as fit does; return the rate used in each epoch and the logged ones."""
    model = model or FakeModel()
    callbacks = CallbackList([callback], model=model)
    callbacks.on_train_begin()
    used, logged = [], []
    for epoch in range(first_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        used.append(model.optimizer.learning_rate)
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
    callbacks.on_train_end()
    return used, logged


# ---------------------------------------------------------------- LearningRateScheduler

def test_schedule_of_the_epoch_alone():
    used, logged = play(LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)), 4)
    assert used == logged == [0.1, 0.05, 0.1 / 3, 0.025]


def test_schedule_of_the_epoch_and_the_current_rate():
    """schedule(epoch, lr) gets the rate the optimizer has now, so the halvings compound."""
    used, _ = play(LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5), 5)
    assert used == [0.1, 0.1, 0.05, 0.025, 0.0125]


def test_epochs_count_from_initial_epoch():
    used, _ = play(LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1)), 5, first_epoch=3)
    assert used == [0.04, 0.05]


def test_a_default_second_argument_still_gets_the_rate():
    """As Keras, which calls schedule(epoch, lr) first: a default for lr is not used."""
    used, _ = play(LearningRateScheduler(lambda epoch, lr=1.0: lr * 0.5), 2)
    assert used == [0.05, 0.025]


def test_verbose_prints_the_keras_message(capsys):
    play(LearningRateScheduler(lambda epoch: 0.5**epoch, verbose=1), 2)
    assert capsys.readouterr().out == ("\nEpoch 1: LearningRateScheduler setting learning rate to 1.0.\n"
                                       "\nEpoch 2: LearningRateScheduler setting learning rate to 0.5.\n")
    play(LearningRateScheduler(lambda epoch: 0.5**epoch), 2)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("output", [1, "0.1", None, np.array([0.1])])
def test_the_schedule_must_return_a_float(output):
    with pytest.raises(ValueError, match="should be a float. Got"):
        play(LearningRateScheduler(lambda epoch: output), 1)


def test_numpy_floats_are_accepted_and_negative_rates_refused():
    used, _ = play(LearningRateScheduler(lambda epoch: np.float32(0.5)), 1)
    assert used == [0.5]
    with pytest.raises(ValueError, match="finite number >= 0"):
        play(LearningRateScheduler(lambda epoch: -0.1), 1)


def test_bad_schedules_are_refused_when_the_callback_is_made():
    with pytest.raises(TypeError, match="function"):
        LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match="takes neither"):
        LearningRateScheduler(lambda epoch, lr, extra: 0.1)


def test_a_type_error_inside_the_schedule_is_not_hidden():
    def schedule(epoch, lr):
        return lr + "oops"  # a bug: must surface, not make the callback call schedule(epoch)

    with pytest.raises(TypeError, match="unsupported operand"):
        play(LearningRateScheduler(schedule), 1)


def test_an_optimizer_with_a_schedule_refuses_the_callback():
    model = FakeModel()
    model.optimizer = SGD(ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="not settable"):
        play(LearningRateScheduler(lambda epoch: 0.1), 1, model=model)


def _model(optimizer):
    nnscratch.set_random_seed(7)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, activation="tanh"), Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((30, 3)).astype(np.float32), rng.standard_normal((30, 1)).astype(np.float32)


def test_fit_with_a_scheduler_trains_as_if_the_rate_were_set_by_hand():
    x, y = _data()
    rates = [0.1, 0.05, 0.02]
    scheduled = _model(SGD(0.5))
    history = scheduled.fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0,
                            callbacks=[LearningRateScheduler(lambda epoch: rates[epoch])])
    assert history.history["learning_rate"] == rates
    by_hand = _model(SGD(0.5))
    for epoch, rate in enumerate(rates):
        by_hand.optimizer.learning_rate = rate
        by_hand.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(scheduled.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- LambdaCallback

def test_lambda_callback_calls_each_function_with_the_hooks_arguments():
    journal = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: journal.append(("train_begin",)),
        on_epoch_begin=lambda epoch, logs: journal.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: journal.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: journal.append(("batch_end", batch, logs["loss"])),
        on_epoch_end=lambda epoch, logs: journal.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: journal.append(("train_end",)))
    callbacks = CallbackList([callback], model=FakeModel())
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_train_batch_begin(0)
    callbacks.on_train_batch_end(0, {"loss": 0.5})
    callbacks.on_epoch_end(0, {"loss": 0.4})
    callbacks.on_test_begin()  # not given: the base class's hook, which does nothing
    callbacks.on_train_end()
    assert journal == [("train_begin",), ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, 0.5),
                       ("epoch_end", 0, 0.4), ("train_end",)]


def test_lambda_callback_takes_the_old_batch_names_and_other_hooks_by_keyword():
    journal = []
    callback = LambdaCallback(on_batch_begin=lambda batch, logs: journal.append(("batch_begin", batch)),
                              on_batch_end=lambda batch, logs: journal.append(("batch_end", batch)),
                              on_test_end=lambda logs: journal.append(("test_end", logs["loss"])))
    callbacks = CallbackList([callback], model=FakeModel())
    callbacks.on_train_batch_begin(3)  # the base class passes the train-batch hooks on to the old names
    callbacks.on_train_batch_end(3, {"loss": 1.0})
    callbacks.on_test_end({"loss": 2.0})
    assert journal == [("batch_begin", 3), ("batch_end", 3), ("test_end", 2.0)]


def test_lambda_callback_refuses_unknown_hooks_and_non_functions():
    with pytest.raises(TypeError, match=r"\['on_epoch_edn'\], which are not callback hooks"):
        LambdaCallback(on_epoch_edn=print)
    with pytest.raises(TypeError, match="on_epoch_end must be a function"):
        LambdaCallback(on_epoch_end="print")


def test_lambda_callback_in_fit():
    x, y = _data()
    seen = {"batches": 0, "epochs": [], "ended": False}

    def count_batch(batch, logs):
        seen["batches"] += 1

    def end_epoch(epoch, logs):
        seen["epochs"].append((epoch, sorted(logs)))

    def end_training(logs):
        seen["ended"] = True

    callback = LambdaCallback(on_train_batch_end=count_batch, on_epoch_end=end_epoch, on_train_end=end_training)
    _model(SGD(0.1)).fit(x, y, batch_size=10, epochs=2, verbose=0, validation_split=0.2, callbacks=[callback])
    assert seen == {"batches": 6, "epochs": [(0, ["learning_rate", "loss", "val_loss"]),
                                             (1, ["learning_rate", "loss", "val_loss"])], "ended": True}
