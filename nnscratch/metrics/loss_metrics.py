"""Metrics that are losses: the mean over the samples of a loss's per-sample values, as Keras's.

``metrics=["mape"]`` or ``metrics=[KLDivergence()]`` logs the loss of that
name beside the one the model trains on (:mod:`nnscratch.losses` computes
them; the metric takes the targets as the trained loss prepared them, as
every metric here does). One exception to "the same as the loss":
:class:`CosineSimilarity` logs the cosine itself, ``+cos``, which goes up as
predictions improve, where the loss is ``-cos``, as in Keras.
"""

from nnscratch import losses
from nnscratch.metrics.base import Metric

__all__ = ["CategoricalHinge", "CosineSimilarity", "Hinge", "KLDivergence", "LogCoshError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "SquaredHinge",
           "categorical_hinge", "cosine_similarity", "hinge", "kl_divergence", "log_cosh_error",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson", "squared_hinge"]


def kl_divergence(y_true, y_pred):
    """Per sample ``sum_k t log(t / p)`` (:class:`nnscratch.losses.KLDivergence`)."""
    return losses.kl_divergence.per_sample(y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """Per sample ``100 mean_k |t - p| / max(|t|, eps)`` (:class:`nnscratch.losses.MeanAbsolutePercentageError`)."""
    return losses.mean_absolute_percentage_error.per_sample(y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Per sample ``mean_k (log(1 + t) - log(1 + p))^2`` (:class:`nnscratch.losses.MeanSquaredLogarithmicError`)."""
    return losses.mean_squared_logarithmic_error.per_sample(y_true, y_pred)


def poisson(y_true, y_pred):
    """Per sample ``mean_k (p - t log(p + eps))`` (:class:`nnscratch.losses.Poisson`)."""
    return losses.poisson.per_sample(y_true, y_pred)


def hinge(y_true, y_pred):
    """Per sample ``mean_k max(1 - t p, 0)``, 0/1 targets read as -1/1 (:class:`nnscratch.losses.Hinge`)."""
    return losses.hinge.per_sample(y_true, y_pred)


def squared_hinge(y_true, y_pred):
    """Per sample ``mean_k max(1 - t p, 0)^2`` (:class:`nnscratch.losses.SquaredHinge`)."""
    return losses.squared_hinge.per_sample(y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    """Per sample ``max(max_k (1 - t) p - sum_k t p + 1, 0)`` (:class:`nnscratch.losses.CategoricalHinge`)."""
    return losses.categorical_hinge.per_sample(y_true, y_pred)


def cosine_similarity(y_true, y_pred):
    """Per sample the cosine of the angle between ``t`` and ``p``, ``+cos`` (the loss is ``-cos``)."""
    return -losses.cosine_similarity.per_sample(y_true, y_pred)


def log_cosh_error(y_true, y_pred):
    """Per sample ``mean_k log(cosh(p - t))`` (:class:`nnscratch.losses.LogCosh`)."""
    return losses.log_cosh.per_sample(y_true, y_pred)


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


#: The names ``keras.metrics.get`` resolves for these (besides the class names), and their classes.
NAMES = {
    "kl_divergence": KLDivergence,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "cosine_similarity": CosineSimilarity, "log_cosh_error": LogCoshError,
}
