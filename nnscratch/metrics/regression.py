r"""Regression metrics with state: ``RootMeanSquaredError`` and ``R2Score``, as ``keras.metrics``.

Neither is a mean of per-sample values, so both keep sums over the batches.

**Root mean squared error.** With :math:`e_i` the mean over sample
:math:`i`'s outputs of :math:`(p - t)^2` and :math:`w_i` its weight (1
without), summed over the batches since the last reset,

.. math:: \text{RMSE} = \sqrt{\frac{\sum_i w_i e_i}{\sum_i w_i}}

(a :class:`~nnscratch.metrics.reduction.Mean` of the squared errors, then the
square root; 0 while nothing is counted). The root of the mean of the
batches' squared errors, not the mean of the batches' roots.

**Coefficient of determination** :math:`R^2`, per output column :math:`k`,
from the weighted sums :math:`S_k = \sum_i w_i t_{ik}`,
:math:`Q_k = \sum_i w_i t_{ik}^2`, :math:`E_k = \sum_i w_i (t_{ik} - p_{ik})^2`
and :math:`W_k = \sum_i w_i`:

.. math::

    R^2_k = 1 - \frac{E_k}{Q_k - S_k^2 / W_k}

(the denominator is the weighted total sum of squares around the weighted
mean :math:`S_k / W_k`; a column whose targets are constant gives 0 where
:math:`E_k > 0`, NaN where also :math:`E_k = 0`, as Keras). The result is
their mean (``"uniform_average"``), their mean weighted by the total sums of
squares (``"variance_weighted_average"``) or the vector (None). With
``num_regressors`` :math:`p` and :math:`n` the number of target *values* seen
(Keras counts every value, not the rows), the adjusted
:math:`1 - (1 - R^2)(n - 1)/(n - p - 1)`.
"""

import warnings

import numpy as np

from nnscratch.metrics.base import StatefulMetric
from nnscratch.metrics.confusion import _same_rank
from nnscratch.metrics.reduction import reduce_to_samplewise

__all__ = ["RootMeanSquaredError", "R2Score"]

_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


def _pair(y_true, y_pred, dtype):
    """Targets and predictions as ``dtype`` arrays of the same rank (a last axis of 1 added or dropped)."""
    y_true = np.asarray(y_true).astype(dtype, copy=False)
    y_pred = np.asarray(y_pred).astype(dtype, copy=False)
    return _same_rank(y_true, y_pred)


class RootMeanSquaredError(StatefulMetric):
    r"""``keras.metrics.RootMeanSquaredError``: :math:`\sqrt{\sum_i w_i e_i / \sum_i w_i}`, ``e_i`` the sample's MSE.

    Keeps the weighted sum of the squared errors and of the weights; the
    square root is taken in :meth:`result`. ``sample_weight``: one weight a
    sample, or one a value (the targets' shape).
    """

    direction = "down"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _pair(y_true, y_pred, self.compute_dtype)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
        values, weights = reduce_to_samplewise(np.square(y_pred - y_true), sample_weight, np.mean)
        self.total += float(np.sum(values))
        self.count += float(np.sum(weights)) if weights is not None else (values.shape[0] if values.ndim else 1)

    def result(self) -> float:
        return float(np.sqrt(self.total / self.count)) if self.count else 0.0


class R2Score(StatefulMetric):
    """``keras.metrics.R2Score(class_aggregation="uniform_average", num_regressors=0)``: coefficient of determination.

    ``y_true`` and ``y_pred`` are ``(samples, outputs)`` (a target vector
    ``(samples,)`` meets a ``(samples, 1)`` output); the number of outputs is
    fixed by the first batch. ``sample_weight``: one weight a sample or one a
    value. See the module docstring for the formulas.
    """

    direction = "up"

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        super().__init__(name, dtype)
        if class_aggregation not in _AGGREGATIONS:
            raise ValueError(f"class_aggregation must be one of {_AGGREGATIONS}, got {class_aggregation!r}")
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, (int, np.integer)) or num_regressors < 0:
            raise ValueError(f"num_regressors must be a whole number >= 0, got {num_regressors!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self._outputs = None
        self.reset_state()

    def reset_state(self):
        shape = (self._outputs or 0,)
        self.sum, self.squared_sum = np.zeros(shape), np.zeros(shape)
        self.total_mse, self.count = np.zeros(shape), np.zeros(shape)
        self.num_samples = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _pair(y_true, y_pred, self.compute_dtype)
        if y_true.ndim != 2 or y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"R2Score expects 2D inputs with shape (batch_size, output_dim), the same for both, got "
                             f"y_true {y_true.shape} and y_pred {y_pred.shape}")
        if self._outputs is None:
            self._outputs = y_pred.shape[1]
            self.reset_state()
        elif y_pred.shape[1] != self._outputs:
            raise ValueError(f"R2Score was built for {self._outputs} outputs, got y_pred of shape {y_pred.shape}")
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
        weights = np.float64(1.0) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 1:
            weights = weights[:, None]
        try:
            weights = np.broadcast_to(weights, y_true.shape)
        except ValueError:
            raise ValueError(f"sample_weight must have one weight a sample, shape ({len(y_true)},), or the targets' "
                             f"shape {y_true.shape}, got {np.shape(sample_weight)}") from None
        self.sum += np.sum(weights * y_true, axis=0)
        self.squared_sum += np.sum(weights * y_true ** 2, axis=0)
        self.total_mse += np.sum(weights * (y_true - y_pred) ** 2, axis=0)
        self.count += np.sum(weights, axis=0)
        self.num_samples += y_true.size

    def result(self):
        if self._outputs is None:
            return 0.0 if self.class_aggregation is not None else np.zeros(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum / self.count
            total = self.squared_sum - self.sum * mean
            scores = 1 - self.total_mse / total
            scores = np.where(np.isinf(scores), 0.0, scores)
            if self.class_aggregation == "uniform_average":
                score = np.mean(scores)
            elif self.class_aggregation == "variance_weighted_average":
                score = np.sum(total * scores) / np.sum(total)
            else:
                score = scores
        if self.num_regressors:
            n, p = self.num_samples, self.num_regressors
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                              stacklevel=2)
            else:
                score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return float(score) if np.ndim(score) == 0 else np.array(score, dtype=np.float64)

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
