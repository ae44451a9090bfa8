"""ModelCheckpoint with a fake model whose save writes a small file."""

import os

import pytest

from nnscratch.callbacks import ModelCheckpoint


class FakeModel:
    def __init__(self):
        self.stop_training = False
        self.epoch = -1
        self.calls = []

    def save(self, filepath):
        self.calls.append(("save", os.path.basename(filepath)))
        with open(filepath, "w") as f:
            f.write(f"model after epoch {self.epoch}")

    def save_weights(self, filepath):
        self.calls.append(("save_weights", os.path.basename(filepath)))
        with open(filepath, "w") as f:
            f.write(f"weights after epoch {self.epoch}")


def fit(callback, logs_per_epoch):
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        model.epoch = epoch
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, logs)
    callback.on_train_end()
    return model


def test_save_best_only_writes_on_improvement_with_formatted_names(tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.txt")
    cb = ModelCheckpoint(pattern, save_best_only=True)
    fit(cb, [{"val_loss": v} for v in [0.5, 0.6, 0.4, 0.45, 0.4]])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01-0.50.txt", "ckpt-03-0.40.txt"]
    assert (tmp_path / "ckpt-03-0.40.txt").read_text() == "model after epoch 2"
    assert cb.best == 0.4


def test_saves_every_epoch_by_default(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m{epoch}.txt")
    model = fit(cb, [{"val_loss": 1.0}] * 3)
    assert model.calls == [("save", "m1.txt"), ("save", "m2.txt"), ("save", "m3.txt")]


def test_fixed_name_is_overwritten_by_better_models(tmp_path):
    cb = ModelCheckpoint(tmp_path / "best.txt", monitor="val_accuracy", save_best_only=True)
    fit(cb, [{"val_accuracy": a} for a in [0.8, 0.9, 0.85]])  # auto mode: max
    assert (tmp_path / "best.txt").read_text() == "model after epoch 1"


def test_save_weights_only_calls_save_weights(tmp_path):
    cb = ModelCheckpoint(tmp_path / "w.txt", save_weights_only=True)
    assert fit(cb, [{"val_loss": 1.0}]).calls == [("save_weights", "w.txt")]


def test_creates_missing_folders(tmp_path):
    fit(ModelCheckpoint(tmp_path / "a" / "b" / "{epoch}.txt"), [{}])
    assert (tmp_path / "a" / "b" / "1.txt").exists()


def test_unknown_field_in_filepath_raises(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.txt"))
    with pytest.raises(KeyError, match="val_acc"):
        fit(cb, [{"val_loss": 1.0}])


def test_initial_value_threshold_must_be_beaten(tmp_path):
    cb = ModelCheckpoint(tmp_path / "{epoch}.txt", save_best_only=True,
                         initial_value_threshold=0.5)
    model = fit(cb, [{"val_loss": v} for v in [0.7, 0.4, 0.45]])
    assert model.calls == [("save", "2.txt")]


def test_missing_monitor_warns_and_saves(tmp_path):
    cb = ModelCheckpoint(tmp_path / "x.txt", save_best_only=True)
    with pytest.warns(UserWarning, match="val_loss"):
        model = fit(cb, [{"loss": 1.0}])
    assert model.calls == [("save", "x.txt")]


def test_verbose_messages(tmp_path, capsys):
    cb = ModelCheckpoint(tmp_path / "x.txt", save_best_only=True, verbose=1)
    fit(cb, [{"val_loss": 0.5}, {"val_loss": 0.6}])
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from None to 0.50000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_best_is_reset_at_train_begin(tmp_path):
    cb = ModelCheckpoint(tmp_path / "{epoch}.txt", save_best_only=True)
    fit(cb, [{"val_loss": 0.1}])
    assert fit(cb, [{"val_loss": 0.5}]).calls == [("save", "1.txt")]
