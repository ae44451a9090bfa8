r"""The correlation metrics of Keras 3: Pearson's and the concordance coefficient, per sample along ``axis``.

For one sample's targets ``t`` and predictions ``p`` (its values along ``axis``, by
default the last), with means :math:`\bar t, \bar p` and variances
:math:`\sigma_t^2, \sigma_p^2` (biased, as ``np.var``):

.. math::
    r = \operatorname{mean}\Big(\frac{t - \bar t}{\sigma_t} \cdot \frac{p - \bar p}{\sigma_p}\Big), \qquad
    \rho_c = \operatorname{mean}\Big(\frac{2 (t - \bar p)(p - \bar p)}
             {\sigma_t^2 + \sigma_p^2 + (\bar t - \bar p)^2 + \epsilon}\Big),

and the metric is their mean over the samples (a :class:`~nnscratch.metrics.Metric`,
like Keras's ``MeanMetricWrapper``); both go up as predictions improve. The
concordance numerator is Keras's, :math:`(t - \bar p)(p - \bar p)`, whose mean is the
covariance :math:`\operatorname{mean}((t - \bar t)(p - \bar p))` (the difference,
:math:`(\bar t - \bar p) \operatorname{mean}(p - \bar p)`, is 0), so this is Lin's
coefficient computed with Keras's rounding; :math:`\epsilon = 10^{-7}`. A sample whose
targets or predictions are all equal has no Pearson correlation: NaN, as in Keras.
"""

import numpy as np

from nnscratch.metrics.base import Metric

__all__ = ["pearson_correlation", "concordance_correlation", "PearsonCorrelation", "ConcordanceCorrelation"]

EPSILON = 1e-7


def _axes(axis, ndim):
    """``axis`` (an int or a tuple of ints, Keras's convention) as a tuple of non-negative sample axes."""
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else tuple(axis)
    if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim
                       for a in axes):
        raise ValueError(f"axis {axis!r} is not an axis of a batch of {ndim} dimensions")
    axes = tuple(sorted({int(a) % ndim for a in axes}))
    if 0 in axes:
        raise ValueError(f"axis {axis!r} includes the batch axis 0: a correlation is per sample here "
                         f"(give targets of shape (N, k), not (N,))")
    return axes


def _per_sample(values, axes):
    """One value a sample: the mean over the axes ``axis`` left (Keras's MeanMetricWrapper averages them all)."""
    return values.reshape(len(values), -1).mean(axis=1) if values.ndim > 1 else values


def _operands(y_true, y_pred, axis):
    y_pred = np.asarray(y_pred)
    y_pred = y_pred.astype(np.float32) if not np.issubdtype(y_pred.dtype, np.floating) else y_pred
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"targets of shape {y_true.shape} and predictions of shape {y_pred.shape} differ")
    return y_true, y_pred, _axes(axis, y_pred.ndim)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Per sample Pearson's ``r`` between ``y_true`` and ``y_pred`` along ``axis`` (Keras's arithmetic)."""
    t, p, axes = _operands(y_true, y_pred, axis)
    t = t - t.mean(axis=axes, keepdims=True)
    p = p - p.mean(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = t / t.std(axis=axes, keepdims=True)
        p = p / p.std(axis=axes, keepdims=True)
    return _per_sample((t * p).mean(axis=axes), axes)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Per sample Lin's concordance coefficient of ``y_true`` and ``y_pred`` along ``axis`` (Keras's arithmetic)."""
    t, p, axes = _operands(y_true, y_pred, axis)
    t_mean, p_mean = t.mean(axis=axes, keepdims=True), p.mean(axis=axes, keepdims=True)
    t_var, p_var = (t - t_mean).var(axis=axes, keepdims=True), (p - p_mean).var(axis=axes, keepdims=True)
    covariance = (t - p_mean) * (p - p_mean)
    norm = t_var + p_var + np.square(t_mean - p_mean)
    return _per_sample((2 * covariance / (norm + p.dtype.type(EPSILON))).mean(axis=axes), axes)


class _Correlation(Metric):
    direction = "up"

    def __init__(self, fn, name, dtype=None, axis=-1):
        _axes(axis, 64)   # an int or a tuple of ints, checked now; against the data's rank when it comes
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        super().__init__(name, lambda y_true, y_pred: fn(y_true, y_pred, self.axis), dtype)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PearsonCorrelation(_Correlation):
    """``keras.metrics.PearsonCorrelation``: the mean over the samples of :func:`pearson_correlation`."""

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(pearson_correlation, name, dtype, axis)


class ConcordanceCorrelation(_Correlation):
    """``keras.metrics.ConcordanceCorrelation``: the mean over the samples of :func:`concordance_correlation`."""

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(concordance_correlation, name, dtype, axis)
