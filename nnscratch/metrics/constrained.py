r"""One rate at the best threshold that keeps another above a floor: ``SensitivityAtSpecificity`` and kin, as Keras.

With :math:`T` = ``num_thresholds`` the thresholds are Keras's
:math:`\theta_i = i/(T-1)`, :math:`i = 0 \dots T-1` (:math:`T = 1`: only 0.5),
and the confusion counts at each are summed over the batches
(:func:`~nnscratch.metrics.confusion.confusion_counts`, every threshold at
once; as Keras, the predictions are clipped to [0, 1] first, so one above
1 is not positive at the threshold 1). From them, at each threshold,

.. math::

    \text{sensitivity} = \text{recall} = \frac{TP}{TP + FN}, \qquad
    \text{specificity} = \frac{TN}{TN + FP}, \qquad
    \text{precision} = \frac{TP}{TP + FP}

(0 where a denominator is 0), and the result is the largest value of one
rate among the thresholds where the other reaches the given floor :math:`v`:

.. math:: \text{SensitivityAtSpecificity}(v) = \max_i \{\text{sensitivity}_i : \text{specificity}_i \ge v\}

(0 when no threshold reaches it); likewise ``SpecificityAtSensitivity``,
``PrecisionAtRecall`` and ``RecallAtPrecision``. ``class_id`` counts only
that column of ``(samples, classes)`` outputs.
"""

import numpy as np

from nnscratch.metrics.base import StatefulMetric
from nnscratch.metrics.confusion import _check_optional_index, confusion_counts, divide_no_nan

__all__ = ["SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision"]


class _AtValue(StatefulMetric):
    """The confusion counts at ``num_thresholds`` thresholds; ``_RATES`` names the (constrained, maximised) pair."""

    direction = "up"
    _VALUE = "value"        # the constructor argument holding the floor
    _RATES = ("specificity", "sensitivity")

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(name, dtype)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not 0 <= value <= 1:
            raise ValueError(f"Argument `{self._VALUE}` must be in the range [0, 1], got {value!r}")
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) or num_thresholds < 1:
            raise ValueError(f"num_thresholds must be a whole number > 0, got {num_thresholds!r}")
        self.value = float(value)
        self.num_thresholds = int(num_thresholds)
        self.class_id = _check_optional_index(class_id, "class_id", 0)
        if self.num_thresholds == 1:
            self.thresholds, self._evenly = [0.5], False
        else:
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self.thresholds, self._evenly = [0.0, *inner, 1.0], True
        self.reset_state()

    def reset_state(self):
        count = len(self.thresholds)
        self.true_positives, self.false_positives = np.zeros(count), np.zeros(count)
        self.true_negatives, self.false_negatives = np.zeros(count), np.zeros(count)

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, class_id=self.class_id,
                                  dtype=self.compute_dtype, evenly=self._evenly)
        for total, count in zip((self.true_positives, self.false_positives, self.true_negatives,
                                 self.false_negatives), counts):
            total += count

    def _rate(self, which):
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        if which in ("sensitivity", "recall"):
            return divide_no_nan(tp, tp + fn)
        if which == "specificity":
            return divide_no_nan(tn, tn + fp)
        return divide_no_nan(tp, tp + fp)

    def result(self) -> float:
        constrained, maximised = (self._rate(which) for which in self._RATES)
        return float(np.max(np.where(constrained >= self.value, maximised, 0.0), initial=0.0))

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id, "num_thresholds": self.num_thresholds,
                self._VALUE: self.value}


class SensitivityAtSpecificity(_AtValue):
    """``keras.metrics.SensitivityAtSpecificity(specificity, num_thresholds=200, class_id=None)``.

    The best sensitivity (recall) among the thresholds whose specificity is at least ``specificity``.
    """

    _VALUE = "specificity"
    _RATES = ("specificity", "sensitivity")

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)
        self.specificity = self.value


class SpecificityAtSensitivity(_AtValue):
    """``keras.metrics.SpecificityAtSensitivity(sensitivity, num_thresholds=200, class_id=None)``.

    The best specificity among the thresholds whose sensitivity is at least ``sensitivity``.
    """

    _VALUE = "sensitivity"
    _RATES = ("sensitivity", "specificity")

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)
        self.sensitivity = self.value


class PrecisionAtRecall(_AtValue):
    """``keras.metrics.PrecisionAtRecall(recall, num_thresholds=200, class_id=None)``.

    The best precision among the thresholds whose recall is at least ``recall``.
    """

    _VALUE = "recall"
    _RATES = ("recall", "precision")

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)
        self.recall = self.value


class RecallAtPrecision(_AtValue):
    """``keras.metrics.RecallAtPrecision(precision, num_thresholds=200, class_id=None)``.

    The best recall among the thresholds whose precision is at least ``precision``.
    """

    _VALUE = "precision"
    _RATES = ("precision", "recall")

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)
        self.precision = self.value
