"""Per-sample metrics: the accuracies and the regression errors, as functions and as Keras's classes.

Each function maps ``(y_true, y_pred)`` to one value a position, as Keras's:
one a sample for an output ``(N, K)``, one a step for ``(N, T, K)`` (the
values over a position's several outputs averaged). A :class:`Metric`
averages them over each sample's positions, and the training loop logs
their mean (over the positions that count when the output carries a mask).
``y_pred`` is the model's output as it is: with a loss ``from_logits=True``
the accuracies see the logits, as in Keras (an arg-max is the same on logits
and on probabilities, but binary accuracy's threshold 0.5 applies to the
logit, not to the sigmoid of it).
"""

import functools

import numpy as np

from nnscratch.metrics.base import Metric

__all__ = ["accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "mean_absolute_error",
           "mean_squared_error", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError"]


def _last_axis_mean(values):
    """``values`` as float64, averaged over the last axis (a position's outputs) unless they are 1-D."""
    values = np.asarray(values, dtype=np.float64)
    return values if values.ndim <= 1 else values.mean(axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1 where the arg-max of the prediction matches the arg-max of the one-hot target (an output (N, ..., K):
    one a position)."""
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the arg-max of the prediction equals the integer label (an output (N, ..., K) with labels
    (N, ...): one a position)."""
    return (np.argmax(y_pred, axis=-1) == np.asarray(y_true).reshape(y_pred.shape[:-1])).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over a position's outputs (the last axis) of ``[(p > threshold) == t]``."""
    return _last_axis_mean((y_pred > threshold) == (y_true > 0.5))


def _in_top_k(labels, y_pred, k):
    r"""1 where the label's score is among the ``k`` largest of its row: fewer than ``k`` scores beat it.

    Ties at the boundary count as in (TensorFlow's ``in_top_k``):
    :math:`[\#\{j : p_j > p_{label}\} < k]`.
    """
    y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    labels = labels.reshape(-1).astype(np.int64)
    if labels.size != len(y_pred):
        raise ValueError(f"top-k accuracy needs one label a row of predictions, got {labels.size} labels for "
                         f"{len(y_pred)} rows")
    if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[-1]):
        raise ValueError(f"labels must be in [0, {y_pred.shape[-1]}), got values from {labels.min()} to {labels.max()}")
    own = np.take_along_axis(y_pred, labels[:, None], axis=-1)
    return (np.sum(y_pred > own, axis=-1) < k).astype(np.float64)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the arg-max of the one-hot target is among the ``k`` largest predictions (ties count as in)."""
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k).reshape(y_pred.shape[:-1])


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1 where the integer label is among the ``k`` largest predictions (ties count as in).

    ``from_sorted_ids``: each row of ``y_pred`` already holds category ids,
    from the highest score down (a retrieval model's output), and the label
    is looked for among its first ``k`` (counted once), as Keras 3's.
    """
    if not from_sorted_ids:
        return _in_top_k(np.asarray(y_true), y_pred, k).reshape(y_pred.shape[:-1])
    ids = y_pred.reshape(-1, y_pred.shape[-1])[:, :k]
    labels = np.asarray(y_true).reshape(-1)
    if labels.size != len(ids):
        raise ValueError(f"top-k accuracy needs one label a row of sorted ids, got {labels.size} labels for "
                         f"{len(ids)} rows")
    return (ids == labels[:, None]).any(axis=-1).astype(np.float64).reshape(y_pred.shape[:-1])


def mean_absolute_error(y_true, y_pred):
    """Mean over a position's values (the last axis) of ``|p - t|``."""
    return _last_axis_mean(np.abs(y_pred - y_true))


def mean_squared_error(y_true, y_pred):
    """Mean over a position's values (the last axis) of ``(p - t)^2``."""
    return _last_axis_mean((y_pred - y_true) ** 2)


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


def _equal(y_true, y_pred):
    """Keras's ``keras.metrics.Accuracy``: the fraction of a position's values where ``y_pred == y_true`` exactly."""
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    return _last_axis_mean(np.broadcast_to(y_true, y_pred.shape) == y_pred)


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    return int(k)


class Accuracy(Metric):
    """``keras.metrics.Accuracy``: how often ``y_pred`` *equals* ``y_true`` (not an arg-max: for labels).

    Not the string ``"accuracy"``, which picks binary, sparse or categorical
    accuracy from the shapes (:func:`accuracy`), as Keras's ``compile`` does.
    """

    direction = "up"

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name, _equal, dtype)


class BinaryAccuracy(Metric):
    """``keras.metrics.BinaryAccuracy``: mean of ``[(p > threshold) == t]``."""

    direction = "up"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        self.threshold = float(threshold)
        super().__init__(name, functools.partial(binary_accuracy, threshold=self.threshold), dtype)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """``keras.metrics.CategoricalAccuracy``: the arg-max of the prediction against that of the one-hot target."""

    direction = "up"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name, categorical_accuracy, dtype)


class SparseCategoricalAccuracy(Metric):
    """``keras.metrics.SparseCategoricalAccuracy``: the arg-max of the prediction against the integer label."""

    direction = "up"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name, sparse_categorical_accuracy, dtype)


class TopKCategoricalAccuracy(Metric):
    """``keras.metrics.TopKCategoricalAccuracy(k=5)``: the one-hot target among the ``k`` largest predictions."""

    direction = "up"

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        self.k = _check_k(k)
        super().__init__(name, functools.partial(top_k_categorical_accuracy, k=self.k), dtype)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(Metric):
    """``keras.metrics.SparseTopKCategoricalAccuracy(k=5, from_sorted_ids=False)``: the label among the top ``k``."""

    direction = "up"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        self.k, self.from_sorted_ids = _check_k(k), bool(from_sorted_ids)
        super().__init__(name, functools.partial(sparse_top_k_categorical_accuracy, k=self.k,
                                                 from_sorted_ids=self.from_sorted_ids), dtype)

    def get_config(self):
        return {**super().get_config(), "k": self.k, **({"from_sorted_ids": True} if self.from_sorted_ids else {})}


class MeanSquaredError(Metric):
    """``keras.metrics.MeanSquaredError``: the mean of ``(p - t)^2``."""

    direction = "down"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name, mean_squared_error, dtype)


class MeanAbsoluteError(Metric):
    """``keras.metrics.MeanAbsoluteError``: the mean of ``|p - t|``."""

    direction = "down"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name, mean_absolute_error, dtype)
