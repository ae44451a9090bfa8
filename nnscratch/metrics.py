"""Metrics computed per batch during fit and evaluate.

A metric maps ``(y_true, y_pred)`` to one value per sample; the training loop
keeps a running mean weighted by batch size, as Keras does.

``y_pred`` is the model's output as it is: with a loss ``from_logits=True``
the accuracies see the logits, as in Keras (an arg-max is the same on logits
and on probabilities, but binary accuracy's threshold 0.5 applies to the
logit, not to the sigmoid of it).
"""

import re

import numpy as np

__all__ = ["Metric", "get", "serialize", "accuracy", "binary_accuracy", "categorical_accuracy",
           "sparse_categorical_accuracy", "mean_absolute_error", "mean_squared_error"]


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
    """Mean over the values of a sample of ``|p - t|``."""
    return np.abs(y_pred - y_true).reshape(len(y_pred), -1).mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    """Mean over the values of a sample of ``(p - t)^2``."""
    return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).mean(axis=-1)


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
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
}


def _snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``"MeanSquaredError"`` -> ``"mean_squared_error"``, ``"<lambda>"`` -> ``"lambda"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def function_metric(fn, name=None) -> Metric:
    """A :class:`Metric` from a plain function ``fn(y_true, y_pred)``, as Keras's ``MeanMetricWrapper``.

    ``fn`` gets the batch's targets (as the loss prepared them) and the
    model's output, as NumPy arrays, and returns one value per sample, a
    value per output (averaged over all axes but the first, as Keras does) or
    a single number for the batch (counted for each of its samples). The
    metric is logged under ``name``, by default ``fn.__name__`` in snake case
    (Keras's rule: ``rmse`` -> ``"rmse"``, ``myMetric`` -> ``"my_metric"``).
    """
    if name is None:
        name = _snake_case(getattr(fn, "__name__", None) or type(fn).__name__)

    def per_sample(y_true, y_pred):
        values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
        samples = len(y_pred)
        if values.ndim == 0:
            return np.full(samples, float(values))
        if values.shape[0] != samples:
            raise ValueError(f"metric {name!r} returned an array of shape {values.shape} for a batch of {samples} "
                             f"samples; expected one value per sample, shape ({samples}, ...), or a single number")
        return values if values.ndim == 1 else values.reshape(samples, -1).mean(axis=-1)

    return Metric(name, per_sample)


def get(identifier) -> Metric:
    """Resolve a metric name (any case) or a function; the metric keeps the name as given, as in Keras.

    So ``metrics=["acc"]`` logs ``"acc"`` and ``"val_acc"``, ``["accuracy"]``
    logs ``"accuracy"``. ``"accuracy"``/``"acc"`` choose their kind from the
    shapes of targets and predictions (:func:`accuracy`). Class names as
    Keras spells them are accepted too (``"MeanSquaredError"``,
    ``"BinaryAccuracy"``). A plain function ``fn(y_true, y_pred)`` is
    wrapped by :func:`function_metric` and logged under its snake-case name.
    """
    if isinstance(identifier, Metric):
        return identifier
    if callable(identifier) and not isinstance(identifier, str):
        return function_metric(identifier)
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name, a function fn(y_true, y_pred) or a Metric, "
                        f"got {type(identifier).__name__}")
    for key in (identifier.lower(), _snake_case(identifier)):
        if key in _BY_NAME:
            return Metric(identifier, _BY_NAME[key])
    raise ValueError(f"unknown metric {identifier!r}; expected one of {sorted(_BY_NAME)} or a function "
                     "fn(y_true, y_pred)")


def serialize(metric: Metric):
    """What ``compile`` saves for ``metric``: its name (``load_model`` resolves it with :func:`get`)."""
    return metric.name
