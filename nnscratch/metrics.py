"""Metrics computed per batch during fit and evaluate.

A metric maps ``(y_true, y_pred)`` to one value per sample; the training loop
keeps a running mean weighted by batch size, as Keras does.
"""

import numpy as np

__all__ = ["Metric", "get", "accuracy", "binary_accuracy", "categorical_accuracy",
           "sparse_categorical_accuracy", "mean_absolute_error"]


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


def accuracy(y_true, y_pred):
    """``"accuracy"``: binary, sparse or categorical accuracy, chosen from the shapes as Keras 3 does.

    Binary when the model has one output unit; sparse when the targets are
    integer labels (one axis fewer than the prediction, or one column against
    several units); categorical otherwise. The loss plays no part: a
    ``Dense(1)`` trained with ``"mse"`` on 0/1 targets gets binary accuracy.
    """
    if y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


_BY_NAME = {
    "accuracy": accuracy,
    "acc": accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
}


def get(identifier) -> Metric:
    """Resolve a metric name (any case); the metric keeps the name as given, as in Keras.

    So ``metrics=["acc"]`` logs ``"acc"`` and ``"val_acc"``, ``["accuracy"]``
    logs ``"accuracy"``. ``"accuracy"``/``"acc"`` choose their kind from the
    shapes of targets and predictions (:func:`accuracy`).
    """
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, got {type(identifier).__name__}")
    key = identifier.lower()
    if key in _BY_NAME:
        return Metric(identifier, _BY_NAME[key])
    raise ValueError(f"unknown metric {identifier!r}; expected one of {sorted(_BY_NAME)}")
