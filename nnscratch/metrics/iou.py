r"""Intersection over union: ``IoU``, ``MeanIoU``, ``BinaryIoU``, ``OneHotIoU``, ``OneHotMeanIoU``, as Keras.

For segmentation and classification: every target value (every pixel of
every image) is a class id :math:`t \in [0, C)` and every prediction a
class id :math:`p`. The metric keeps the :math:`C \times C` confusion
matrix :math:`M_{tp}`, the weighted count of values of class :math:`t`
predicted as :math:`p`, summed over the batches since the last reset. For
class :math:`c`,

.. math::

    TP_c = M_{cc}, \qquad TP_c + FP_c + FN_c = \sum_p M_{cp} + \sum_t M_{tc} - M_{cc}, \qquad
    \text{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c + \epsilon}

(the overlap of the values that are :math:`c` and those predicted :math:`c`,
over their union; :math:`\epsilon = 10^{-7}`, Keras's), and the result is
the mean of :math:`\text{IoU}_c` over the ``target_class_ids`` that occur
(a class with an empty union, nowhere in the targets nor in the
predictions, is left out of the mean; 0 if none occurs).

The matrix is made without a loop: each value gets the index
:math:`C t + p`, and one weighted ``np.bincount`` of the indices, reshaped
to :math:`C \times C`, is the batch's matrix. Values whose target or
prediction is outside :math:`[0, C)`, or whose target is ``ignore_class``,
count 0 (Keras's mask).

The classes differ in how they read ``y_true`` and ``y_pred``:

* :class:`IoU`, :class:`MeanIoU`: class ids (``sparse_y_true``,
  ``sparse_y_pred``), or, when those are False, scores along ``axis`` whose
  arg-max is the id (a softmax output: ``MeanIoU(C, sparse_y_pred=False)``);
* :class:`OneHotIoU`, :class:`OneHotMeanIoU`: one-hot targets (their
  arg-max), predictions as scores unless ``sparse_y_pred``;
* :class:`BinaryIoU`: 0/1 targets, predictions ``p >= threshold`` (class 1) or
  below (class 0), :math:`C = 2`.
"""

import numpy as np

from nnscratch.metrics.base import StatefulMetric

__all__ = ["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU", "confusion_matrix"]

_EPSILON = 1e-7


def confusion_matrix(y_true, y_pred, num_classes, weights=None):
    r"""The weighted ``(num_classes, num_classes)`` matrix ``M[t, p]`` of two id arrays of one size (a ``bincount``).

    ``weights`` (one a value, or None for 1) are float64; values with an id
    outside ``[0, num_classes)`` must have been given weight 0 (and any id in range).
    """
    slots = y_true.ravel() * num_classes + y_pred.ravel()
    return np.bincount(slots, weights=None if weights is None else weights.ravel(),
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.float64)


def _check_whole(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _class_ids(values, what):
    """Class ids (integers, or floats with whole values) as int64; anything else is refused."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.integer):
        if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)) \
                or np.any(values != np.round(values)):
            raise ValueError(f"{what} must be class ids (whole numbers), got values such as "
                             f"{values.ravel()[:5].tolist()}; for scores or probabilities use sparse_y_pred=False "
                             "(one-hot targets: sparse_y_true=False, OneHotIoU), for 0/1 probabilities BinaryIoU")
    return values.astype(np.int64)


class _IoUBase(StatefulMetric):
    """The confusion matrix of class ids, and the mean IoU of ``target_class_ids`` from it."""

    direction = "up"

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name, dtype)
        self.num_classes = _check_whole(num_classes, "num_classes", 1)
        ids = list(target_class_ids) if isinstance(target_class_ids, (list, tuple, np.ndarray)) else None
        if not ids or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in ids):
            raise ValueError(f"target_class_ids must be a non-empty list of class ids >= 0, got {target_class_ids!r}")
        if max(ids) >= self.num_classes:
            raise ValueError(f"Target class id {max(ids)} is out of range, which is [0, {self.num_classes})")
        self.target_class_ids = [int(i) for i in ids]
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class,
                                                                                           (int, np.integer))):
            raise ValueError(f"ignore_class must be None or a class id (an integer), got {ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        for flag, value in (("sparse_y_true", sparse_y_true), ("sparse_y_pred", sparse_y_pred)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        self.sparse_y_true, self.sparse_y_pred = bool(sparse_y_true), bool(sparse_y_pred)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self.reset_state()

    def reset_state(self):
        self.total_cm = np.zeros((self.num_classes, self.num_classes))

    def _ids(self, y_true, y_pred):
        """Target and predicted class ids, as int64 arrays of the same size."""
        y_true = np.argmax(y_true, axis=self.axis) if not self.sparse_y_true else _class_ids(y_true, "y_true")
        y_pred = np.argmax(y_pred, axis=self.axis) if not self.sparse_y_pred else _class_ids(y_pred, "y_pred")
        return y_true, y_pred

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = self._ids(np.asarray(y_true), np.asarray(y_pred))
        if y_true.size != y_pred.size:
            raise ValueError(f"y_true and y_pred must hold one class id a value, got {y_true.size} targets (shape "
                             f"{y_true.shape}) and {y_pred.size} predictions (shape {y_pred.shape})")
        weights = np.ones(y_true.size)
        if sample_weight is not None:
            given = np.asarray(sample_weight, dtype=np.float64)
            if given.size == y_true.size:
                weights = given.ravel()
            elif y_true.ndim > 1 and given.size == len(y_true) and given.shape[0] == len(y_true):
                weights = np.repeat(given.ravel(), y_true.size // len(y_true))     # one weight a sample
            elif given.size == 1:
                weights = np.full(y_true.size, float(given.ravel()[0]))
            else:
                raise ValueError(f"sample_weight must have one weight a sample or one a target value (shape "
                                 f"{y_true.shape}), got shape {given.shape}")
        y_true, y_pred = y_true.ravel(), y_pred.ravel()
        keep = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            keep &= y_true != self.ignore_class
        self.total_cm += confusion_matrix(np.where(keep, y_true, 0), np.where(keep, y_pred, 0), self.num_classes,
                                          np.where(keep, weights, 0.0))

    def result(self) -> float:
        tp = np.diag(self.total_cm)
        union = self.total_cm.sum(axis=0) + self.total_cm.sum(axis=1) - tp
        tp, union = tp[self.target_class_ids], union[self.target_class_ids]
        valid = union > 1e-9
        iou = np.where(valid, tp / (union + _EPSILON), 0.0)
        return float(np.sum(iou) / (np.sum(valid) + _EPSILON))


class IoU(_IoUBase):
    """``keras.metrics.IoU(num_classes, target_class_ids, ignore_class=None, sparse_y_true=True, ...)``.

    Also ``sparse_y_pred=True``, ``axis=-1``.

    The mean IoU of the classes ``target_class_ids`` (``[c]`` for one
    class's). Class ids in ``y_true``/``y_pred`` must be whole numbers (Keras
    casts floats to integers, so probabilities would be truncated to 0):
    give scores with ``sparse_y_pred=False``. ``sample_weight``: one weight a
    sample, or one a target value.
    """

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class MeanIoU(IoU):
    """``keras.metrics.MeanIoU(num_classes, ...)``: :class:`IoU` of every class, ``range(num_classes)``."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        classes = _check_whole(num_classes, "num_classes", 1)
        super().__init__(classes, list(range(classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """``keras.metrics.OneHotIoU(num_classes, target_class_ids, ...)``: :class:`IoU` of one-hot targets (their arg-max).

    Predictions are scores (their arg-max) unless ``sparse_y_pred=True``.
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """``keras.metrics.OneHotMeanIoU(num_classes, ...)``: :class:`MeanIoU` of one-hot targets (their arg-max)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class BinaryIoU(IoU):
    """``keras.metrics.BinaryIoU(target_class_ids=(0, 1), threshold=0.5)``: IoU of 0/1 targets and ``p >= threshold``.

    A prediction at or above ``threshold`` is class 1, below it class 0
    (compared in ``dtype``, float32 by default); ``target_class_ids`` ``[0]``,
    ``[1]`` or ``[0, 1]`` (the mean of both).
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
            raise ValueError(f"threshold must be a number, got {threshold!r}")
        self.threshold = float(threshold)
        super().__init__(2, target_class_ids, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred).astype(self.compute_dtype, copy=False)
        super().update_state(y_true, (y_pred >= self.compute_dtype(self.threshold)).astype(np.int64), sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}
