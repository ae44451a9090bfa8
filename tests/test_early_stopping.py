"""EarlyStopping on scripted metric sequences with a fake model (no training)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.callbacks import EarlyStopping


class FakeModel:
    """Just what EarlyStopping touches; its weights are the current epoch number."""

    def __init__(self):
        self.stop_training = False
        self.epoch = -1
        self.restored_from = None

    def get_weights(self):
        return [np.array([self.epoch]), np.full((2, 2), self.epoch)]

    def set_weights(self, weights):
        self.restored_from = int(weights[0][0])
        assert np.all(weights[1] == self.restored_from)


def fit(callback, values, monitor="val_loss", model=None):
    """Play ``values`` as the monitored quantity, one per epoch, as fit would.

    Returns the model and the last epoch run.
    """
    model = model or FakeModel()
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model, epoch


def test_patience_counts_epochs_without_improvement():
    es = EarlyStopping(patience=2)
    model, last = fit(es, [1.0, 0.9, 0.95, 0.93, 0.5])
    assert last == 3 and es.stopped_epoch == 3 and model.stop_training
    assert es.best == 0.9 and es.best_epoch == 1 and es.wait == 2


def test_patience_zero_stops_at_first_non_improvement():
    es = EarlyStopping()
    _, last = fit(es, [1.0, 0.5, 0.5, 0.1])
    assert last == 2  # equal is not better


def test_never_stops_while_improving():
    es = EarlyStopping(patience=0)
    model, last = fit(es, [5, 4, 3, 2, 1])
    assert last == 4 and not model.stop_training and es.stopped_epoch == 0


def test_min_delta_makes_small_gains_not_count():
    _, last = fit(EarlyStopping(patience=1), [1.0, 0.95, 0.92])
    assert last == 2
    es = EarlyStopping(patience=1, min_delta=0.1)
    _, last = fit(es, [1.0, 0.95, 0.92])
    assert last == 1 and es.best == 1.0
    # the sign of min_delta does not matter (Keras takes abs)
    _, last = fit(EarlyStopping(patience=1, min_delta=-0.1), [1.0, 0.95, 0.92])
    assert last == 1


def test_mode_auto_is_max_for_accuracy_and_min_for_loss():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="acc").mode == "max"
    assert EarlyStopping(monitor="val_auc").mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"
    _, last = fit(EarlyStopping(monitor="val_accuracy"), [0.5, 0.6, 0.7, 0.65], "val_accuracy")
    assert last == 3


def test_mode_auto_follows_the_compiled_metrics_direction():
    """As Keras's ``_direction``: precision and recall go up, mean squared error down, whatever their names say."""
    import nnscratch
    from nnscratch.layers import Dense

    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", metrics=["precision", nnscratch.metrics.Recall(name="rec"), "mse"])
    modes = {}
    for monitor in ("val_precision", "rec", "val_mse", "val_loss"):
        callback = EarlyStopping(monitor=monitor)
        callback.set_model(model)
        callback.on_train_begin()
        modes[monitor] = callback.mode
    assert modes == {"val_precision": "max", "rec": "max", "val_mse": "min", "val_loss": "min"}


def test_explicit_mode_overrides_name():
    _, last = fit(EarlyStopping(monitor="val_loss", mode="max"), [1.0, 2.0, 1.5])
    assert last == 2


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="biggest")


def test_baseline_not_reached_stops_after_patience():
    # Improving on the best but not on the baseline does not reset `wait`.
    es = EarlyStopping(patience=2, baseline=0.5)
    _, last = fit(es, [0.9, 0.8, 0.85, 0.7])
    assert last == 2 and es.best == 0.8
    # Without a baseline the same sequence runs on.
    _, last = fit(EarlyStopping(patience=2), [0.9, 0.8, 0.85, 0.7])
    assert last == 3


def test_baseline_beaten_resets_wait():
    es = EarlyStopping(patience=2, baseline=0.5)
    _, last = fit(es, [0.9, 0.4, 0.45, 0.46, 0.47])
    assert last == 3 and es.best_epoch == 1


def test_restore_best_weights_after_early_stop():
    es = EarlyStopping(patience=2, restore_best_weights=True)
    model, last = fit(es, [1.0, 0.7, 0.8, 0.9, 0.1])
    assert last == 3 and model.restored_from == 1


def test_restore_best_weights_also_without_early_stop():
    es = EarlyStopping(patience=10, restore_best_weights=True)
    model, last = fit(es, [1.0, 0.7, 0.2, 0.9, 0.8])
    assert last == 4 and not model.stop_training and model.restored_from == 2


def test_no_restore_unless_asked():
    model, _ = fit(EarlyStopping(patience=0), [1.0, 2.0])
    assert model.restored_from is None


def test_best_weights_are_copies():
    class SharedWeights(FakeModel):
        def __init__(self):
            super().__init__()
            self.w = np.zeros(1)

        def get_weights(self):  # hands out the live array, like a careless model
            self.w[0] = self.epoch
            return [self.w, np.full((2, 2), self.epoch)]

    es = EarlyStopping(patience=10, restore_best_weights=True)
    model, _ = fit(es, [0.1, 0.5, 0.9], model=SharedWeights())
    assert model.restored_from == 0


def test_start_from_epoch_ignores_warm_up():
    es = EarlyStopping(patience=0, start_from_epoch=2)
    _, last = fit(es, [1.0, 2.0, 3.0, 2.5, 2.6])
    assert last == 4 and es.best_epoch == 3


def test_verbose_messages(capsys):
    fit(EarlyStopping(patience=0, verbose=1, restore_best_weights=True), [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out


def test_missing_monitor_warns_and_does_nothing():
    es = EarlyStopping(monitor="val_loss")
    es.set_model(FakeModel())
    es.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss.*Available metrics are: loss"):
        es.on_epoch_end(0, {"loss": 1.0})
    assert es.best is None and es.wait == 0


def test_state_is_reset_between_fits():
    es = EarlyStopping(patience=1)
    fit(es, [1.0, 2.0, 3.0])
    model, last = fit(es, [5.0, 4.0, 3.0])
    assert last == 2 and es.best == 3.0 and es.stopped_epoch == 0


# ------------------------------------------------ against an independent reimplementation

def reference_stop_epoch(values, patience, min_delta, mode, baseline):
    """Epoch at which Keras 3 stops, by counting epochs since ``wait`` was last reset."""
    def better(x, ref):
        return ref is None or (x + min_delta < ref if mode == "min" else x - min_delta > ref)

    best, last_reset = None, -1
    for epoch, x in enumerate(values):
        if better(x, best):
            best = x
            if baseline is None or better(x, baseline):
                last_reset = epoch
        elif epoch - last_reset >= patience and epoch > 0:
            return epoch, best
    return None, best


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(0, 6), min_size=1, max_size=15),
       patience=st.integers(0, 4), min_delta=st.sampled_from([0, 1, 2]),
       mode=st.sampled_from(["min", "max"]),
       baseline=st.one_of(st.none(), st.integers(0, 6)))
def test_matches_reference_on_random_sequences(values, patience, min_delta, mode, baseline):
    es = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode, baseline=baseline)
    model, last = fit(es, values)
    expected_stop, expected_best = reference_stop_epoch(values, patience, min_delta, mode,
                                                        baseline)
    if expected_stop is None:
        assert not model.stop_training and last == len(values) - 1
    else:
        assert model.stop_training and es.stopped_epoch == last == expected_stop
    assert es.best == expected_best
