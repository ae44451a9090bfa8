r"""``FBetaScore`` and ``F1Score``: the F-score from per-class counts summed over the batches.

A prediction is positive where ``p > threshold``, or, with ``threshold``
None, where it is its row's largest value (and not 0 to 1e-9: one class
per sample). Per class :math:`c`, over all samples (weights :math:`w`),

.. math::

    TP_c = \sum w\, t_c \hat p_c, \quad FP_c = \sum w\, (1 - t_c) \hat p_c, \quad
    FN_c = \sum w\, t_c (1 - \hat p_c), \quad S_c = \sum w\, t_c,

    P_c = \frac{TP_c}{TP_c + FP_c + \epsilon}, \quad R_c = \frac{TP_c}{TP_c + FN_c + \epsilon}, \quad
    F_c = (1 + \beta^2) \frac{P_c R_c}{\beta^2 P_c + R_c + \epsilon}

(:math:`\epsilon = 10^{-7}`, Keras's). ``average=None`` gives the vector
:math:`F` (logged as an array), ``"macro"`` its mean, ``"weighted"``
:math:`\sum_c F_c S_c / (\sum_c S_c + \epsilon)`, and ``"micro"`` sums the
counts over the classes first (one :math:`F`).
"""

import numpy as np

from nnscratch.metrics.base import StatefulMetric

__all__ = ["FBetaScore", "F1Score"]

_AVERAGES = (None, "micro", "macro", "weighted")
_EPSILON = 1e-7


class FBetaScore(StatefulMetric):
    """``keras.metrics.FBetaScore(average=None, beta=1.0, threshold=None)`` for one-hot or multi-label targets.

    ``y_true`` and ``y_pred`` are ``(samples, classes)``: one-hot rows (or
    0/1 multi-label rows, with a ``threshold``). Integer labels are refused,
    as in Keras (use one-hot targets and ``categorical_crossentropy``).
    """

    direction = "up"

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name, dtype)
        if average not in _AVERAGES:
            raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
        if not isinstance(beta, float) or not beta > 0:
            raise ValueError(f"beta must be a Python float > 0, got {beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or not 0 < threshold <= 1):
            raise ValueError(f"threshold must be None or a Python float with 0 < threshold <= 1, got {threshold!r}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self._classes = None
        self.reset_state()

    def reset_state(self):
        shape = () if self.average == "micro" or self._classes is None else (self._classes,)
        self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
        self.false_negatives, self.intermediate_weights = np.zeros(shape), np.zeros(shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true).astype(np.float64)
        y_pred = np.asarray(y_pred).astype(self.compute_dtype, copy=False)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim): one-hot "
                             f"or 0/1 targets like the outputs, got y_true {y_true.shape} and y_pred {y_pred.shape}")
        if self._classes is None:
            self._classes = y_pred.shape[1]
            self.reset_state()
        elif y_pred.shape[1] != self._classes:
            raise ValueError(f"{type(self).__name__} was built for {self._classes} classes, got y_pred of shape "
                             f"{y_pred.shape}")
        if self.threshold is None:
            positive = (y_pred >= y_pred.max(axis=-1, keepdims=True)) & (np.abs(y_pred) > 1e-9)
        else:
            positive = y_pred > self.threshold
        predicted = positive.astype(np.float64)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1, 1)
            if len(weights) != len(y_pred):
                raise ValueError(f"sample_weight must have one weight a sample, {len(y_pred)}, got {len(weights)}")
        axis = None if self.average == "micro" else 0

        def weighted_sum(values):
            return np.sum(values if sample_weight is None else values * weights, axis=axis)

        self.true_positives += weighted_sum(predicted * y_true)
        self.false_positives += weighted_sum(predicted * (1 - y_true))
        self.false_negatives += weighted_sum((1 - predicted) * y_true)
        self.intermediate_weights += weighted_sum(y_true)

    def result(self):
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + _EPSILON)
        recall = tp / (tp + self.false_negatives + _EPSILON)
        f_score = precision * recall / (self.beta ** 2 * precision + recall + _EPSILON) * (1 + self.beta ** 2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (np.sum(self.intermediate_weights) + _EPSILON)
            return float(np.sum(f_score * weights))
        if self.average is not None:
            return float(np.mean(f_score))
        return np.array(f_score, dtype=np.float64)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """``keras.metrics.F1Score(average=None, threshold=None)``: :class:`FBetaScore` with ``beta=1.0``."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config
