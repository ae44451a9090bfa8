r"""``AUC``: the area under the ROC or precision-recall curve, from confusion counts at fixed thresholds.

With ``num_thresholds`` :math:`T` the thresholds are Keras's
:math:`\theta_0 = -\epsilon,\ \theta_i = i/(T-1),\ \theta_{T-1} = 1 + \epsilon`
(:math:`\epsilon = 10^{-7}`), so the first counts every prediction positive
and the last none. At each threshold the counts :math:`TP_i, FP_i, TN_i,
FN_i` are summed over the batches (:func:`~nnscratch.metrics.confusion.confusion_counts`),
giving the points :math:`(x_i, y_i)` of the curve:

* ROC: :math:`x_i = FP_i / (FP_i + TN_i)` (false positive rate),
  :math:`y_i = TP_i / (TP_i + FN_i)` (recall);
* PR: :math:`x_i` the recall, :math:`y_i = TP_i / (TP_i + FP_i)` (precision);

(0 for a ratio with a denominator 0). The area is the Riemann sum
:math:`\sum_{i < T-1} (x_i - x_{i+1})\, h_i` with heights
:math:`h_i = (y_i + y_{i+1})/2` (``"interpolation"``), :math:`\min(y_i,
y_{i+1})` (``"minoring"``) or :math:`\max` (``"majoring"``).

The PR curve with ``"interpolation"`` interpolates the counts, not the
precision (Davis and Goadrich, 2006; Keras's ``interpolate_pr_auc``): between
thresholds :math:`i` and :math:`i+1`, with :math:`P = TP + FP`,
:math:`\Delta TP = TP_i - TP_{i+1}`, :math:`\Delta P = P_i - P_{i+1}`, the
slope :math:`s = \Delta TP / \Delta P` and intercept
:math:`c = TP_{i+1} - s P_{i+1}`, the piece's area is

.. math::

    \frac{s\,\big(\Delta TP + c \ln(P_i / P_{i+1})\big)}{TP_{i+1} + FN_{i+1}}

(the log ratio taken as 0 where a :math:`P` is 0, a division by 0 giving 0).

The precision-recall-gain curve (``curve="PRGAIN"``, Flach and Kull, 2015)
rescales both rates by the ratio :math:`\pi = (TP + FN)/(TN + FP)` of
positives to negatives: recall gain :math:`x_i = 1 - \pi\, FN_i / TP_i` and
precision gain :math:`y_i = 1 - \pi\, FP_i / TP_i`, with Keras's fixes
where :math:`TP_i = 0` (:math:`x_i = 0`, :math:`y_i = 1`) and for negative
recall gains (:math:`x_i = \max(x_i, 0)`); the area is the Riemann sum
above.
With ``multi_label`` each column gets its own curve and the result is the
mean of their areas (weighted by ``label_weights``).
"""

import numpy as np

from nnscratch.metrics.base import StatefulMetric
from nnscratch.metrics.confusion import EPSILON, confusion_counts, divide_no_nan, evenly_spaced

__all__ = ["AUC"]

_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(StatefulMetric):
    """``keras.metrics.AUC``: area under the ROC (default) or PR curve, approximated at ``num_thresholds`` thresholds.

    Parameters
    ----------
    num_thresholds : int
        Number of thresholds (> 1), evenly spaced on [0, 1] (see the module docstring).
    curve : {"ROC", "PR", "PRGAIN"}
        ``"PRGAIN"``: the precision-recall-gain curve (see the module docstring).
    summation_method : {"interpolation", "minoring", "majoring"}
    name, dtype
        As :class:`~nnscratch.metrics.base.StatefulMetric`.
    thresholds : list of float or None
        The inner thresholds (each in [0, 1]) instead of ``num_thresholds``;
        -eps and 1 + eps are added at the ends.
    multi_label : bool
        Each column of ``(samples, labels)`` outputs is its own binary
        problem, the result the mean of the areas; otherwise every value is
        one more sample of a single problem.
    num_labels : int or None
        The number of columns with ``multi_label`` (otherwise taken from the first batch).
    label_weights : list of float or None
        Weights of the columns: in the mean of the areas with ``multi_label``,
        else multiplying each value's weight.
    from_logits : bool
        Apply a sigmoid to ``y_pred`` first.
    """

    direction = "up"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        super().__init__(name, dtype)
        if not isinstance(curve, str) or curve.lower() not in _CURVES:
            raise ValueError(f"curve must be 'ROC', 'PR' or 'PRGAIN', got {curve!r}")
        if not isinstance(summation_method, str) or summation_method.lower() not in _SUMMATIONS:
            raise ValueError(f"summation_method must be one of {_SUMMATIONS}, got {summation_method!r}")
        for flag, value in (("multi_label", multi_label), ("from_logits", from_logits)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        self.curve = _CURVES[curve.lower()]
        self.summation_method = summation_method.lower()
        self.multi_label = bool(multi_label)
        self.from_logits = bool(from_logits)
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in np.ravel(thresholds))
            if any(not 0 <= t <= 1 for t in inner):
                raise ValueError(f"AUC thresholds must be in [0, 1], got {list(np.ravel(thresholds))}")
            self.num_thresholds = len(inner) + 2
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError(f"num_thresholds must be a whole number > 1, got {num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        self.thresholds = [0.0 - EPSILON, *inner, 1.0 + EPSILON]
        self._evenly = thresholds is None or evenly_spaced([0.0, *inner, 1.0])
        if num_labels is not None and not self.multi_label:
            raise ValueError("num_labels is needed only with multi_label=True")
        self.num_labels = None if num_labels is None else int(num_labels)
        self.label_weights = None if label_weights is None else np.asarray(label_weights, dtype=np.float64)
        if self.label_weights is not None and (self.label_weights.ndim != 1 or np.any(self.label_weights < 0)):
            raise ValueError(f"label_weights must be a list of weights >= 0, got {label_weights!r}")
        self._labels = self.num_labels
        self.reset_state()

    def reset_state(self):
        shape = (self.num_thresholds,) if not self.multi_label else (self.num_thresholds, self._labels or 0)
        self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
        self.true_negatives, self.false_negatives = np.zeros(shape), np.zeros(shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred).astype(self.compute_dtype, copy=False)
        if self.from_logits:             # a sigmoid that overflows nowhere
            e = np.exp(-np.abs(y_pred))
            y_pred = np.where(y_pred >= 0, 1 / (1 + e), e / (1 + e))
        if self.multi_label:
            if y_pred.ndim != 2:
                raise ValueError(f"AUC(multi_label=True) needs y_pred of rank 2 (samples, labels), got {y_pred.shape}")
            if self._labels is None:
                self._labels = y_pred.shape[1]
                self.reset_state()
            if y_pred.shape[1] != self._labels:
                raise ValueError(f"AUC(multi_label=True) was built for {self._labels} labels, got y_pred of shape "
                                 f"{y_pred.shape}")
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, multi_label=self.multi_label,
                                  label_weights=None if self.multi_label else self.label_weights,
                                  dtype=self.compute_dtype, evenly=self._evenly)
        for total, count in zip((self.true_positives, self.false_positives, self.true_negatives,
                                 self.false_negatives), counts):
            total += count

    def _mean_over_labels(self, areas):
        """The area (the sum of ``areas`` over the thresholds), averaged over the labels with ``multi_label``."""
        by_label = np.sum(areas, axis=0)
        if not self.multi_label:
            return float(by_label)
        if not by_label.size:            # multi_label before the first batch
            return 0.0
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights)))

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        log_ratio = np.log(np.where(both, ratio, 1.0))
        return self._mean_over_labels(divide_no_nan(slope * (dtp + intercept * log_ratio),
                                                    np.maximum(tp[1:] + fn[1:], 0)))

    def result(self) -> float:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:                            # PRGAIN (Flach and Kull, 2015), Keras's fixes for tp = 0 and gains < 0
            scale = divide_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1 - scale * divide_no_nan(fn, tp))
            x, y = np.maximum(recall_gain, 0.0), np.where(tp == 0, 1.0, 1 - scale * divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._mean_over_labels((x[:-1] - x[1:]) * heights)

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
