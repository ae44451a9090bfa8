r"""Metrics from the confusion counts at thresholds: TruePositives ... FalseNegatives, Precision, Recall.

At a threshold :math:`\theta` a prediction :math:`p` counts as positive when
:math:`p > \theta` (strictly), and a target as positive when it is not 0.
Over all the values seen (every sample and output, flattened), with weights
:math:`w` (the sample's weight, 1 without),

.. math::

    TP(\theta) = \sum w\,[t \ne 0][p > \theta], \qquad
    FP(\theta) = \sum w\,[t = 0][p > \theta],

    FN(\theta) = \sum w\,[t \ne 0] - TP(\theta), \qquad
    TN(\theta) = \sum w\,[t = 0] - FP(\theta),

summed over the batches since the last reset; precision is
:math:`TP / (TP + FP)` and recall :math:`TP / (TP + FN)`, 0 where the
denominator is 0 (no predicted or no actual positives), as Keras.

How the counts are made for many thresholds at once, without a loop over
them (:func:`confusion_counts`): each value gets the number :math:`b` of
thresholds below it (``searchsorted`` on the sorted thresholds), so it is
positive at the first :math:`b` of them; the weights are summed per
:math:`b` (``bincount``) and a reversed cumulative sum gives every
threshold's count. Evenly spaced thresholds :math:`i/(T-1)` (AUC's) take
:math:`b = \lceil p (T-1) \rceil` from ``y_pred`` clipped to [0, 1], Keras's
"optimized" path, with the same float32 arithmetic.
"""

import numpy as np

from nnscratch.metrics.base import StatefulMetric

__all__ = ["confusion_counts", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
           "Precision", "Recall"]

NEG_INF = -1e10     # Keras's threshold with top_k: every kept value counts as positive
EPSILON = 1e-7      # Keras's backend.epsilon(): AUC's outer thresholds are -eps and 1 + eps


def _same_rank(a, b):
    """Keras's ``squeeze_or_expand_to_same_rank``: ranks one apart meet by a last axis of 1 (squeezed or added)."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def _keep_top_k(y_pred, k):
    """The ``k`` largest values of each row (last axis) kept, the others set to NEG_INF; ties: the first index."""
    order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(y_pred.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, y_pred, y_pred.dtype.type(NEG_INF))


def evenly_spaced(thresholds) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``: 3 or more thresholds ``i / (T - 1)`` (to 1e-7)."""
    count = len(thresholds)
    return count >= 3 and np.allclose(thresholds, np.arange(count, dtype=np.float32) / (count - 1), atol=EPSILON)


def _inputs(y_true, y_pred, sample_weight, dtype, top_k=None, class_id=None):
    """Targets (bool), predictions (``dtype``) and weights (float64, None) of the same shape, Keras's way."""
    y_pred = np.asarray(y_pred).astype(dtype, copy=False)
    y_true = np.asarray(y_true)
    if y_pred.ndim == 0 or len(y_pred) != len(y_true):
        raise ValueError(f"y_true and y_pred must have one row a sample, got shapes {y_true.shape} and {y_pred.shape}")
    y_pred, y_true = _same_rank(y_pred, y_true)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape (targets one-hot or 0/1 like the outputs), "
                         f"got {y_true.shape} and {y_pred.shape}")
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape == (len(y_pred),) or weights.shape == (len(y_pred), 1):
            weights = weights.reshape(len(y_pred), *(1,) * (y_pred.ndim - 1))
        try:
            weights = np.broadcast_to(weights, y_pred.shape)
        except ValueError:
            raise ValueError(f"sample_weight must have one weight a sample, shape ({len(y_pred)},), or the targets' "
                             f"shape {y_true.shape}, got {weights.shape}") from None
    if top_k is not None:
        y_pred = _keep_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim < 2 or not 0 <= class_id < y_pred.shape[-1]:
            raise ValueError(f"class_id={class_id} needs predictions of shape (samples, classes) with more than "
                             f"{class_id} classes, got {y_pred.shape}")
        y_true, y_pred = y_true[..., class_id:class_id + 1], y_pred[..., class_id:class_id + 1]
        weights = None if weights is None else weights[..., class_id:class_id + 1]
    return y_true != 0, y_pred, weights


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, top_k=None, class_id=None, multi_label=False,
                     label_weights=None, dtype=np.float32, evenly=None):
    r"""The weighted counts ``(tp, fp, tn, fn)`` of one batch at each threshold, as Keras's
    ``update_confusion_matrix_variables``.

    Parameters
    ----------
    y_true, y_pred : ndarray
        Targets (nonzero: positive) and predictions of the same shape (a
        last axis of 1 is added or squeezed to match ranks, as Keras).
    thresholds : sequence of float
        ``p > threshold`` is a positive prediction.
    sample_weight : ndarray or None
        One weight a sample (or one a value).
    top_k : int or None
        Only the ``k`` largest predictions of a row (last axis) may be positive.
    class_id : int or None
        Only column ``class_id`` counts.
    multi_label : bool
        Count each column (label) of a 2-D ``y_pred`` on its own.
    label_weights : ndarray or None
        Weights of the columns (``multi_label=False`` only).
    dtype : numpy dtype
        The precision of ``y_pred`` and the thresholds when compared (Keras: float32).
    evenly : bool or None
        Whether the thresholds are ``i / (T - 1)`` (AUC's, the outer ones
        moved by -eps and +eps): then ``y_pred`` is clipped to [0, 1] and
        bucketed, as Keras's optimized path. None: :func:`evenly_spaced`.

    Returns
    -------
    tuple of ndarray
        float64 counts of shape ``(T,)``, or ``(T, labels)`` with ``multi_label``.
    """
    y_true, y_pred, weights = _inputs(y_true, y_pred, sample_weight, dtype, top_k, class_id)
    if label_weights is not None:
        label_weights = np.broadcast_to(np.asarray(label_weights, dtype=np.float64), y_pred.shape)
        weights = label_weights if weights is None else weights * label_weights
    count = len(thresholds)
    if multi_label:
        if y_pred.ndim != 2:
            raise ValueError(f"multi_label needs y_pred of rank 2 (samples, labels), got shape {y_pred.shape}")
    else:
        y_true, y_pred = y_true.reshape(-1, 1), y_pred.reshape(-1, 1)
        weights = None if weights is None else weights.reshape(-1, 1)
    order = None                        # the thresholds' ranks, where they are not sorted already
    if evenly_spaced(thresholds) if evenly is None else evenly:
        # Keras's optimized path: b = ceil(p (T - 1)) on p clipped to [0, 1], in float32
        p = np.fmin(np.fmax(y_pred, 0), 1)                              # (NaN becomes 0)
        below = np.ceil(p * p.dtype.type(count - 1)).astype(np.int64)
        if thresholds[0] < 0:           # AUC: -eps is below every clipped p
            np.maximum(below, 1, out=below)
    else:
        ranked = np.asarray(thresholds, dtype=np.float64)
        if count > 1 and np.any(ranked[1:] < ranked[:-1]):
            order = np.argsort(ranked, kind="stable")
            ranked = ranked[order]
        below = np.searchsorted(ranked.astype(dtype), y_pred, side="left")   # thresholds < p (NaN: none)
        below[np.isnan(y_pred)] = 0
    # one bincount: bin (label, actual, b) for every value, weighted by its weight
    labels = y_pred.shape[1]
    slots = below + (count + 1) * (2 * np.arange(labels) + y_true)
    bins = np.bincount(slots.ravel(), weights=None if weights is None else weights.ravel(),
                       minlength=2 * labels * (count + 1)).reshape(labels, 2, count + 1)
    totals = bins.sum(axis=-1, keepdims=True)                           # (labels, [negatives, positives], 1)
    positive = np.cumsum(bins[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # predicted positive at rank j: b > j
    fp, tp = positive[:, 0].T, positive[:, 1].T                         # (T, labels)
    tn, fn = totals[:, 0, 0] - fp, totals[:, 1, 0] - tp
    if order is not None:
        unsort = np.argsort(order)
        tp, fp, tn, fn = tp[unsort], fp[unsort], tn[unsort], fn[unsort]
    if not multi_label:
        return tp[:, 0], fp[:, 0], tn[:, 0], fn[:, 0]
    return tp, fp, tn, fn


def divide_no_nan(a, b):
    """``a / b``, 0 where ``b`` is 0 (Keras's ``ops.divide_no_nan``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b != 0)


def _scalar_or_array(values):
    """A one-threshold result as a Python float, several as a float64 array (Keras logs the array)."""
    return float(values[0]) if len(values) == 1 else np.array(values, dtype=np.float64)


def _parse_thresholds(thresholds, default):
    """``thresholds`` (a number or a list, each in [0, 1]) as a list of floats; None gives ``[default]``."""
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    if not values:
        raise ValueError("thresholds must hold at least one value")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not 0 <= value <= 1:
            raise ValueError(f"threshold values must be numbers in [0, 1], got {value!r}")
    return [float(value) for value in values]


def _init_thresholds(thresholds, parsed):
    """The ``thresholds`` argument as ``get_config`` keeps it: None, a float or a list (JSON-safe)."""
    if thresholds is None:
        return None
    return parsed if isinstance(thresholds, (list, tuple, np.ndarray)) else parsed[0]


def _check_optional_index(value, name, low):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low):
        raise ValueError(f"{name} must be None or a whole number >= {low}, got {value!r}")
    return None if value is None else int(value)


class _ConfusionCount(StatefulMetric):
    """A count of the confusion matrix (``_COUNT``: 0 tp, 1 fp, 2 tn, 3 fn) at each of ``thresholds`` (default 0.5)."""

    _COUNT = 0

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name, dtype)
        self.thresholds = _parse_thresholds(thresholds, 0.5)
        self.init_thresholds = _init_thresholds(thresholds, self.thresholds)
        self._evenly = evenly_spaced(self.thresholds)
        self.reset_state()

    def reset_state(self):
        self.accumulator = np.zeros(len(self.thresholds))

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, dtype=self.compute_dtype,
                                  evenly=self._evenly)
        self.accumulator += counts[self._COUNT]

    def result(self):
        return _scalar_or_array(self.accumulator)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionCount):
    """``keras.metrics.TruePositives(thresholds=None)``: the weighted count of ``t != 0`` and ``p > threshold``."""

    _COUNT = 0


class FalsePositives(_ConfusionCount):
    """``keras.metrics.FalsePositives(thresholds=None)``: the weighted count of ``t == 0`` and ``p > threshold``."""

    _COUNT = 1


class TrueNegatives(_ConfusionCount):
    """``keras.metrics.TrueNegatives(thresholds=None)``: the weighted count of ``t == 0`` and ``p <= threshold``."""

    _COUNT = 2


class FalseNegatives(_ConfusionCount):
    """``keras.metrics.FalseNegatives(thresholds=None)``: the weighted count of ``t != 0`` and ``p <= threshold``."""

    _COUNT = 3


class _PrecisionRecall(StatefulMetric):
    """Precision or recall at each threshold, optionally of the top ``k`` predictions or of one class."""

    direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name, dtype)
        self.top_k = _check_optional_index(top_k, "top_k", 1)
        self.class_id = _check_optional_index(class_id, "class_id", 0)
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self.init_thresholds = _init_thresholds(thresholds, self.thresholds)
        self._evenly = evenly_spaced(self.thresholds)
        self.reset_state()

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds))
        self.false_positives = np.zeros(len(self.thresholds))
        self.false_negatives = np.zeros(len(self.thresholds))

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, top_k=self.top_k,
                                         class_id=self.class_id, dtype=self.compute_dtype, evenly=self._evenly)
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += fn

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    r"""``keras.metrics.Precision(thresholds=None, top_k=None, class_id=None)``: :math:`TP / (TP + FP)`.

    ``thresholds`` None means 0.5 (or, with ``top_k``, every one of the
    ``k`` largest predictions of a row is positive); a list gives one
    precision a threshold (an array in the logs). ``class_id`` restricts the
    counts to one column of ``(samples, classes)`` outputs. 0 while nothing
    was predicted positive.
    """

    def result(self):
        return _scalar_or_array(divide_no_nan(self.true_positives, self.true_positives + self.false_positives))


class Recall(_PrecisionRecall):
    r"""``keras.metrics.Recall(thresholds=None, top_k=None, class_id=None)``: :math:`TP / (TP + FN)`.

    Arguments as :class:`Precision`. 0 while no target was positive.
    """

    def result(self):
        return _scalar_or_array(divide_no_nan(self.true_positives, self.true_positives + self.false_negatives))
