"""Metrics computed per batch during fit and evaluate.

A metric maps ``(y_true, y_pred)`` to one value per sample; the training loop
keeps a running mean weighted by batch size, as Keras does.
"""

import numpy as np

__all__ = ["Metric", "get"]


class Metric:
    """A named per-sample metric function."""

    def __init__(self, name: str, fn):
        self.name = name
        self.fn = fn

    def __call__(self, y_true, y_pred) -> np.ndarray:
        return self.fn(y_true, y_pred)


def categorical_accuracy(y_true, y_pred):
    """1 where the arg-max of the prediction matches the arg-max of the one-hot target."""
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the arg-max of the prediction equals the integer label."""
    return (np.argmax(y_pred, axis=-1) == y_true.reshape(-1)).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over outputs of ``[(p > threshold) == t]``."""
    hits = (y_pred > threshold) == (y_true > 0.5)
    return hits.reshape(len(hits), -1).mean(axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.abs(y_pred - y_true).reshape(len(y_pred), -1).mean(axis=-1)


_BY_NAME = {
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
}
# "accuracy" means the accuracy that fits the loss, as in Keras
_ACCURACY_FOR_LOSS = {
    "categorical_crossentropy": categorical_accuracy,
    "sparse_categorical_crossentropy": sparse_categorical_accuracy,
    "binary_crossentropy": binary_accuracy,
}


def get(identifier, loss_name: str) -> Metric:
    """Resolve a metric name; ``"accuracy"``/``"acc"`` follows the loss, as in Keras."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, got {type(identifier).__name__}")
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        return Metric("accuracy", _ACCURACY_FOR_LOSS.get(loss_name, categorical_accuracy))
    if key in _BY_NAME:
        return Metric(key, _BY_NAME[key])
    raise ValueError(f"unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_BY_NAME)}")
