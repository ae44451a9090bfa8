"""Training one model the study's way: its callbacks, its augmentation, :func:`fit_model`.

:func:`fit_model` returns a :class:`TrainingRun`: the history and what the
callbacks decided (epochs run, best epoch, early stop).
"""

import time
from dataclasses import dataclass

import numpy as np

from study.data import targets
from study.settings import AUGMENTATION

__all__ = ["TrainingRun", "augmenter", "fit_model", "study_callbacks"]


def study_callbacks():
    """The study's callbacks: EarlyStopping on val_accuracy (restoring the best weights) and ReduceLROnPlateau."""
    from nnscratch.callbacks import EarlyStopping, ReduceLROnPlateau

    return [EarlyStopping(monitor="val_accuracy", patience=5, restore_best_weights=True),
            ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=3, min_lr=1e-6)]


def augmenter(seed):
    """The study's ImageDataGenerator (rotation 10, zoom 0.1, shifts 0.1, fill "nearest"), seeded."""
    from nnscratch.preprocessing import ImageDataGenerator

    return ImageDataGenerator(**AUGMENTATION, seed=seed)


@dataclass
class TrainingRun:
    """What :func:`fit_model` learnt about a training run."""

    history: dict
    epochs_run: int
    best_epoch: int | None          # 1-based
    restored_best: bool             # the weights are those of best_epoch
    stopped_early: bool
    train_time_s: float

    def summary(self) -> dict:
        history = self.history
        out = {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
               "restored_best_weights": self.restored_best, "stopped_early": self.stopped_early,
               "train_time_s": self.train_time_s,
               "epoch_time_s": self.train_time_s / max(self.epochs_run, 1)}
        if history.get("val_accuracy"):
            out["best_val_accuracy"] = float(max(history["val_accuracy"]))
            out["final_val_accuracy"] = float(history["val_accuracy"][-1])
            out["final_val_loss"] = float(history["val_loss"][-1])
        if history.get("accuracy"):
            out["final_train_accuracy"] = float(history["accuracy"][-1])
            out["final_train_loss"] = float(history["loss"][-1])
        if history.get("learning_rate"):
            out["final_learning_rate"] = float(history["learning_rate"][-1])
        return out


def fit_model(model, train, val=None, *, epochs, batch_size, seed, augment=False, callbacks=None, verbose=1):
    """Train ``model`` on ``train`` (a :class:`Split`), validating on ``val`` after each epoch.

    With ``augment`` the training images come from one augmented stream
    (:func:`augmenter` seeded with ``seed``, reshuffled every epoch); the
    validation images are never augmented. ``fit(seed=seed)`` fixes the
    shuffles and the dropout masks.
    """
    from nnscratch.callbacks import EarlyStopping

    validation = None if val is None else (val.x, targets(model, val.y))
    y = targets(model, train.y)
    start = time.perf_counter()
    if augment:
        flow = augmenter(seed).flow(train.x, y, batch_size=batch_size, shuffle=True, seed=seed)
        # the flow draws a new order of the samples every epoch itself; fit's shuffle=True (Keras's default)
        # would also shuffle the order of its batches, which changes nothing but the bits of the study's runs
        history = model.fit(flow, epochs=epochs, validation_data=validation, validation_batch_size=batch_size,
                            callbacks=callbacks, verbose=verbose, seed=seed, shuffle=False)
    else:
        history = model.fit(train.x, y, batch_size=batch_size, epochs=epochs, validation_data=validation,
                            callbacks=callbacks, verbose=verbose, seed=seed, shuffle=True)
    elapsed = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    epochs_run = len(history.get("loss", []))
    early = next((c for c in callbacks or [] if isinstance(c, EarlyStopping)), None)
    if early is not None and early.best is not None:
        best_epoch, restored = early.best_epoch + 1, bool(early.restore_best_weights)
        stopped = early.stopped_epoch > 0
    elif history.get("val_accuracy"):
        best_epoch, restored, stopped = int(np.argmax(history["val_accuracy"])) + 1, False, False
    else:
        best_epoch, restored, stopped = None, False, False
    return TrainingRun(history, epochs_run, best_epoch, restored, stopped, elapsed)
