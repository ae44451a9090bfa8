"""Metrics that are losses: the mean of a loss's values (one a position, as Keras's ``call``), as Keras's.

``metrics=["mape"]`` or ``metrics=[KLDivergence()]`` logs the loss of that
name beside the one the model trains on (:mod:`nnscratch.losses` computes
them; the metric takes the targets as the trained loss prepared them, as
every metric here does). One exception to "the same as the loss":
:class:`CosineSimilarity` logs the cosine itself, ``+cos``, which goes up as
predictions improve, where the loss is ``-cos``, as in Keras.

The cross-entropy metrics (:class:`BinaryCrossentropy`,
:class:`CategoricalCrossentropy`, :class:`SparseCategoricalCrossentropy`)
take Keras's ``from_logits`` and ``label_smoothing`` and compute the loss of
the same arguments (:mod:`nnscratch.losses.crossentropy`): the probabilities
clipped to ``[1e-7, 1 - 1e-7]``, or the exact form from logits. A metric's
``from_logits`` is its own: a model trained with
``BinaryCrossentropy(from_logits=True)`` needs the metric
``BinaryCrossentropy(from_logits=True)`` too (the name
``"binary_crossentropy"`` gives ``from_logits=False``, as in Keras).
"""

import numpy as np

from nnscratch import losses
from nnscratch.metrics.base import Metric
from nnscratch.metrics.confusion import _same_rank

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "CategoricalHinge",
           "CosineSimilarity", "Hinge", "KLDivergence", "LogCoshError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "SquaredHinge",
           "categorical_hinge", "cosine_similarity", "hinge", "kl_divergence", "log_cosh_error",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson", "squared_hinge"]


def kl_divergence(y_true, y_pred):
    """A value a position: ``sum_k t log(t / p)`` (:class:`nnscratch.losses.KLDivergence`)."""
    return losses.kl_divergence.per_position(y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """A value a position: ``100 mean_k |t - p| / max(|t|, eps)`` (the loss ``MeanAbsolutePercentageError``)."""
    return losses.mean_absolute_percentage_error.per_position(y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    """A value a position: ``mean_k (log(1 + t) - log(1 + p))^2`` (the loss ``MeanSquaredLogarithmicError``)."""
    return losses.mean_squared_logarithmic_error.per_position(y_true, y_pred)


def poisson(y_true, y_pred):
    """A value a position: ``mean_k (p - t log(p + eps))`` (:class:`nnscratch.losses.Poisson`)."""
    return losses.poisson.per_position(y_true, y_pred)


def hinge(y_true, y_pred):
    """A value a position: ``mean_k max(1 - t p, 0)``, 0/1 targets read as -1/1 (:class:`nnscratch.losses.Hinge`)."""
    return losses.hinge.per_position(y_true, y_pred)


def squared_hinge(y_true, y_pred):
    """A value a position: ``mean_k max(1 - t p, 0)^2`` (:class:`nnscratch.losses.SquaredHinge`)."""
    return losses.squared_hinge.per_position(y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    """A value a position: ``max(max_k (1 - t) p - sum_k t p + 1, 0)`` (:class:`nnscratch.losses.CategoricalHinge`)."""
    return losses.categorical_hinge.per_position(y_true, y_pred)


def cosine_similarity(y_true, y_pred):
    """A value a position: the cosine of the angle between ``t`` and ``p``, ``+cos`` (the loss is ``-cos``)."""
    return -losses.cosine_similarity.per_position(y_true, y_pred)


def log_cosh_error(y_true, y_pred):
    """A value a position: ``mean_k log(cosh(p - t))`` (:class:`nnscratch.losses.LogCosh`)."""
    return losses.log_cosh.per_position(y_true, y_pred)


class KLDivergence(Metric):
    """``keras.metrics.KLDivergence``: the mean of :func:`kl_divergence`."""

    direction = "down"

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(name, kl_divergence, dtype)


class MeanAbsolutePercentageError(Metric):
    """``keras.metrics.MeanAbsolutePercentageError``: the mean of :func:`mean_absolute_percentage_error`."""

    direction = "down"

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(name, mean_absolute_percentage_error, dtype)


class MeanSquaredLogarithmicError(Metric):
    """``keras.metrics.MeanSquaredLogarithmicError``: the mean of :func:`mean_squared_logarithmic_error`."""

    direction = "down"

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(name, mean_squared_logarithmic_error, dtype)


class Poisson(Metric):
    """``keras.metrics.Poisson``: the mean of :func:`poisson`."""

    direction = "down"

    def __init__(self, name="poisson", dtype=None):
        super().__init__(name, poisson, dtype)


class Hinge(Metric):
    """``keras.metrics.Hinge``: the mean of :func:`hinge`."""

    direction = "down"

    def __init__(self, name="hinge", dtype=None):
        super().__init__(name, hinge, dtype)


class SquaredHinge(Metric):
    """``keras.metrics.SquaredHinge``: the mean of :func:`squared_hinge`."""

    direction = "down"

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(name, squared_hinge, dtype)


class CategoricalHinge(Metric):
    """``keras.metrics.CategoricalHinge``: the mean of :func:`categorical_hinge`."""

    direction = "down"

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(name, categorical_hinge, dtype)


class CosineSimilarity(Metric):
    """``keras.metrics.CosineSimilarity``: the mean of :func:`cosine_similarity`, ``+cos``."""

    direction = "up"

    def __init__(self, name="cosine_similarity", dtype=None):
        super().__init__(name, cosine_similarity, dtype)


class LogCoshError(Metric):
    """``keras.metrics.LogCoshError``: the mean of :func:`log_cosh_error`, logged as Keras's ``logcosh``."""

    direction = "down"

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(name, log_cosh_error, dtype)


def _crossentropy(loss):
    """The values a position of the cross-entropy ``loss`` (an nnscratch loss object), ranks matched first."""

    def per_position(y_true, y_pred):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(np.float64)
        if not isinstance(loss, losses.SparseCategoricalCrossentropy):
            y_true, y_pred = _same_rank(y_true.astype(y_pred.dtype, copy=False), y_pred)
            if y_true.shape != y_pred.shape:
                raise ValueError(f"{loss.name}: y_true and y_pred must have the same shape, got {y_true.shape} and "
                                 f"{y_pred.shape}")
        return loss.per_position(y_true, y_pred)

    return per_position


def _check_axis(axis, name):
    if axis != -1:
        raise ValueError(f"{name}: only axis=-1 (the classes on the last axis) is supported, got {axis!r}")


class BinaryCrossentropy(Metric):
    """``keras.metrics.BinaryCrossentropy(from_logits=False, label_smoothing=0)``: the mean binary cross-entropy.

    Per sample, the mean over its outputs of ``-(t log p + (1 - t) log(1 - p))``
    (:class:`nnscratch.losses.BinaryCrossentropy` of the same arguments).
    """

    direction = "down"

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        self.loss = losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing = self.loss.from_logits, self.loss.label_smoothing
        super().__init__(name, _crossentropy(self.loss), dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(Metric):
    """``keras.metrics.CategoricalCrossentropy(from_logits=False, label_smoothing=0, axis=-1)`` of one-hot targets.

    Per sample ``-sum_k t_k log q_k`` (:class:`nnscratch.losses.CategoricalCrossentropy`
    of the same arguments). Only ``axis=-1``.
    """

    direction = "down"

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        _check_axis(axis, type(self).__name__)
        self.loss = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing, self.axis = self.loss.from_logits, self.loss.label_smoothing, -1
        super().__init__(name, _crossentropy(self.loss), dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class SparseCategoricalCrossentropy(Metric):
    """``keras.metrics.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None, axis=-1)`` of integer labels.

    Per sample ``-log q_label`` (:class:`nnscratch.losses.SparseCategoricalCrossentropy`).
    Only ``ignore_class=None`` and ``axis=-1``.
    """

    direction = "down"

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, ignore_class=None,
                 axis=-1):
        _check_axis(axis, type(self).__name__)
        if ignore_class is not None:
            raise ValueError(f"SparseCategoricalCrossentropy: ignore_class is not supported (only None), got "
                             f"{ignore_class!r}")
        self.loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        self.from_logits, self.ignore_class, self.axis = self.loss.from_logits, None, -1
        super().__init__(name, _crossentropy(self.loss), dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class,
                "axis": self.axis}


#: The names ``keras.metrics.get`` resolves for these (besides the class names), and their classes.
NAMES = {
    "kl_divergence": KLDivergence,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "cosine_similarity": CosineSimilarity, "log_cosh_error": LogCoshError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
