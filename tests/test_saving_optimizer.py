"""model.save keeps the optimizer's state: a loaded model resumes training bit for bit."""

import json

import numpy as np
import pytest

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import BatchNormalization, Dense, Flatten


def _model(optimizer):
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((4, 4, 1)), Flatten(), Dense(8, activation="relu"),
                                  BatchNormalization(), Dense(8, activation="relu", trainable=False),
                                  Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((6, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 6)) for _ in range(n)]


@pytest.mark.parametrize("make_optimizer", [
    lambda: optimizers.Adam(learning_rate=0.01),
    lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    lambda: optimizers.RMSprop(learning_rate=0.01),
    lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, weight_decay=0.1),
    lambda: optimizers.AdamW(learning_rate=0.01),
    lambda: optimizers.AdamW(learning_rate=0.01, weight_decay=0.2, amsgrad=True),
    lambda: optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.5),
    lambda: optimizers.Adadelta(learning_rate=1.0, weight_decay=0.01),
    lambda: optimizers.Adamax(learning_rate=0.01),
    lambda: optimizers.Nadam(learning_rate=0.01, weight_decay=0.01),
    lambda: optimizers.Lion(learning_rate=0.003, weight_decay=0.1),
    lambda: optimizers.Lamb(learning_rate=0.01, weight_decay=0.01),
    lambda: optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.001),
    lambda: optimizers.Adafactor(learning_rate=0.05),
    lambda: optimizers.Muon(learning_rate=0.01),          # (Muon's kernels have an empty velocity slot)
    lambda: optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=3),   # saved between two updates
    lambda: optimizers.Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3),
], ids=["adam", "amsgrad", "rmsprop", "sgd-momentum", "sgd-decay", "adamw", "adamw-amsgrad", "adagrad",
        "adadelta", "adamax", "nadam", "lion", "lamb", "ftrl", "adafactor", "muon", "adam-accumulating",
        "adam-ema"])
def test_a_loaded_model_resumes_training_bit_for_bit(tmp_path, make_optimizer):
    batches = _batches()
    straight = _model(make_optimizer())
    for x, y in batches:
        straight.train_on_batch(x, y)

    stopped = _model(make_optimizer())
    for x, y in batches[:2]:
        stopped.train_on_batch(x, y)
    stopped.save(tmp_path / "m.npz")
    resumed = nnscratch.load_model(tmp_path / "m.npz")
    steps = stopped.optimizer.gradient_accumulation_steps or 1        # (accumulating: no update yet)
    assert resumed.optimizer.iterations == stopped.optimizer.iterations == 2 // steps
    for x, y in batches[2:]:
        resumed.train_on_batch(x, y)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_without_the_optimizer_state_training_restarts_the_moments(tmp_path):
    model = _model(optimizers.Adam(learning_rate=0.01))
    for x, y in _batches(2):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.npz", include_optimizer=False)
    with np.load(tmp_path / "m.npz") as archive:
        assert not [k for k in archive.files if k.startswith("o")]
        config = json.loads(archive["__config__"].tobytes())
    assert config["optimizer_state"] is None
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.iterations == 0 and loaded.optimizer.get_state(loaded.parameters())[1] == []
    uncompiled = nnscratch.load_model(tmp_path / "m.npz", compile=False)
    assert uncompiled.optimizer is None


def test_the_current_learning_rate_is_saved(tmp_path):
    """ReduceLROnPlateau changes the optimizer's learning rate: the saved file keeps the current one."""
    model = _model(optimizers.Adam(learning_rate=0.01))
    model.optimizer.learning_rate = 0.002
    model.save(tmp_path / "m.npz")
    assert nnscratch.load_model(tmp_path / "m.npz").optimizer.learning_rate == pytest.approx(0.002)


def test_a_tampered_optimizer_slot_is_refused(tmp_path):
    model = _model(optimizers.Adam(learning_rate=0.01))
    for x, y in _batches(1):
        model.train_on_batch(x, y)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["o0"] = arrays["o0"] + 1
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="optimizer state does not match its recorded SHA-256"):
        nnscratch.load_model(path)


def test_set_state_rejects_a_state_that_does_not_fit():
    model = _model(optimizers.Adam())
    for x, y in _batches(1):
        model.train_on_batch(x, y)
    meta, arrays = model.optimizer.get_state(model.parameters())
    assert meta["slot_names"] == ["momentum", "velocity"] and meta["iterations"] == 1
    assert len(arrays) == 2 * len(meta["params"])
    fresh = optimizers.Adam()
    with pytest.raises(ValueError, match="should have"):
        fresh.set_state(model.parameters(), meta, arrays[:-1])
    with pytest.raises(ValueError, match="expects"):
        optimizers.RMSprop().set_state(model.parameters(), meta, arrays)
    wrong = [a.astype(np.float64) for a in arrays]
    with pytest.raises(ValueError, match="the parameter is float32"):
        fresh.set_state(model.parameters(), meta, wrong)
    with pytest.raises(ValueError, match="names parameter"):
        fresh.set_state(model.parameters()[:1], meta, arrays)


def test_weights_left_out_of_weight_decay_stay_left_out_after_loading(tmp_path):
    """exclude_from_weight_decay is not in the config (as Keras), so the state keeps it: by name and by parameter."""
    def make():
        model = _model(optimizers.AdamW(learning_rate=0.01, weight_decay=0.5))
        model.optimizer.exclude_from_weight_decay(var_list=[model.layers[1].params["kernel"]],
                                                  var_names=["bias", "gamma"])
        return model

    batches = _batches()
    straight = make()
    for x, y in batches:
        straight.train_on_batch(x, y)
    stopped = make()
    for x, y in batches[:2]:
        stopped.train_on_batch(x, y)
    stopped.save(tmp_path / "m.npz")
    resumed = nnscratch.load_model(tmp_path / "m.npz")
    params = resumed.parameters()
    expected = {params.index(resumed.layers[1].params["kernel"])} | {
        i for i, p in enumerate(params) if p.name in ("bias", "gamma")}
    assert {i for i, p in enumerate(params) if not resumed.optimizer._use_weight_decay(p)} == expected
    assert len(expected) == 1 + 3 + 1  # the first kernel, three biases, gamma
    for x, y in batches[2:]:
        resumed.train_on_batch(x, y)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
