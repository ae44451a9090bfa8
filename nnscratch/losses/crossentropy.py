"""The cross-entropies: categorical, sparse categorical, binary, and Keras's ``"crossentropy"``/``"ce"``.

Cross-entropy after a softmax layer, and binary cross-entropy after a sigmoid
layer, take a shortcut (as Keras does): the model hands the loss the layer's
*logits* ``z`` (``fused_activation`` names the layer's activation) and gets
back ``dL/dz = (p - t) / N`` (divided by ``K`` too for the binary one, a mean
over ``K`` outputs), computed from ``log p = z - logsumexp(z)`` (softmax) or
``max(z, 0) - z t + log(1 + exp(-|z|))`` (sigmoid), which stay finite for any
logits: no clipping, and a saturated output still learns.
"""

import numpy as np

from nnscratch import kernels
from nnscratch.losses.base import (
    DEFAULT_REDUCTION, EPSILON, Loss, _check_finite, _check_from_logits, _check_label_smoothing, _numeric,
    _last_axis_mean, _per_sample_mean, _warn_output_activation,
)

__all__ = ["CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy", "AutoCrossentropy"]


class CategoricalCrossentropy(Loss):
    r"""``L = -(1/N) sum_n sum_k t_nk log q_nk`` for one-hot targets ``t``, ``q = p / sum_k p``.

    As Keras, the prediction is first scaled to sum to 1 over its last axis
    (a softmax output already does) and clipped to ``[1e-7, 1 - 1e-7]``.
    Gradient with respect to the prediction, with ``S = sum_k p_k`` and
    ``[q]`` 1 where ``q`` is inside the clipping range:

    .. math:: \frac{\partial L}{\partial p_j} = \frac{1}{N S}\Big(-\frac{t_j}{q_j}[q_j]
              + \sum_k t_k [q_k]\Big).

    After a softmax layer the model uses the fused gradient ``(p - t)/N``
    with respect to the logits instead.

    Parameters
    ----------
    from_logits : bool
        The prediction is the logits ``z`` (the last layer has no
        activation): ``log q = z - logsumexp(z)`` and
        ``dL/dz = (softmax(z) sum_k t_k - t) / N``, ``(softmax(z) - t) / N``
        for targets whose rows sum to 1. If the last layer is a softmax
        after all, the loss takes that layer's logits, as Keras with
        TensorFlow does, and warns.
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / K`` as targets (``K`` classes), as Keras.
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).

    An output of more than two axes, ``(N, ..., K)``, gets one cross-entropy
    per position over its last axis, averaged over the positions (Keras's
    mean over everything but the class axis).
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        self.from_logits = _check_from_logits(from_logits, type(self).__name__)
        self.label_smoothing = _check_label_smoothing(label_smoothing, type(self).__name__)

    def arguments(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and output_shape[-1] != 1):
            raise ValueError(
                f"categorical_crossentropy expects one-hot targets of shape (N, {output_shape[-1]}), got "
                f"integer labels of shape {y.shape}; use loss='sparse_categorical_crossentropy' or "
                f"nnscratch.utils.to_categorical(y, {output_shape[-1]})"
            )
        if y.ndim == 2 and y.shape[1] != output_shape[-1]:
            raise ValueError(
                f"categorical_crossentropy: one-hot targets have {y.shape[1]} columns but the model outputs "
                f"{output_shape[-1]} units"
            )
        return super().prepare_targets(y, output_shape)

    def targets(self, y_true, classes, dtype):
        """The targets the formulas use: ``t (1 - s) + s / K`` with label smoothing ``s``, else ``t``."""
        s = self.label_smoothing
        return y_true * (1 - s) + s / classes if s else y_true

    def per_position(self, y_true, y_pred):
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        if self.from_logits:
            return self._from_logits(t, y_pred)[0]
        q = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return -(t * np.log(q)).sum(axis=-1)

    def gradient(self, y_true, y_pred):
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        if self.from_logits:
            return self._from_logits(t, y_pred)[1]
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        inside = (q > EPSILON) & (q < 1 - EPSILON)
        d_q = -(t / np.clip(q, EPSILON, 1 - EPSILON)) * inside          # dL/dq of one distribution
        rows = y_pred.size // y_pred.shape[-1]                           # N, or N times the positions
        return (d_q - (d_q * q).sum(axis=-1, keepdims=True)) / (total * rows)

    @staticmethod
    def _from_logits(t, logits):
        """The losses of the positions (N, ...) and dL/dlogits of the batch mean, for logits of shape (N, ..., K)."""
        classes = logits.shape[-1]
        flat = logits.reshape(-1, classes)
        losses, grad = kernels.backend().softmax_cross_entropy(flat, t.reshape(-1, classes).astype(flat.dtype,
                                                                                                  copy=False))
        grad /= flat.shape[0]
        return losses.reshape(logits.shape[:-1]), grad.reshape(logits.shape)

    def fused(self, y_true, logits):
        if self.from_logits:
            _warn_output_activation(self.name, "softmax")
        return self.softmax_fused(y_true, logits)

    def softmax_fused(self, y_true, logits):
        """Return per-sample losses and dL/dlogits of the batch mean."""
        t = self.targets(y_true, logits.shape[-1], logits.dtype)
        losses, grad = kernels.backend().softmax_cross_entropy(logits, t.astype(logits.dtype, copy=False))
        grad /= logits.shape[0]
        return losses, grad


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy for integer labels ``y`` in ``[0, classes)``.

    From probabilities, as Keras, the prediction is clipped to ``[1e-7, 1 - 1e-7]``
    *first* and then rescaled to sum to 1 (the one-hot loss rescales, then
    clips): per sample ``log sum_k c_k - log c_label``, ``c`` the clipped ``p``.
    For a softmax output the two agree unless a probability is below 1e-7.

    ``from_logits`` and ``reduction`` as for :class:`CategoricalCrossentropy`. As in Keras 3
    there is no ``label_smoothing``: smooth one-hot targets with
    ``CategoricalCrossentropy(label_smoothing=...)`` instead. An output of
    more than two axes, ``(N, ..., K)`` (a sequence's steps, an image's
    pixels), takes a label a position, ``(N, ...)``, and averages over the
    positions, as Keras.

    ``ignore_class`` (an integer, such as 255 or -1 for the unlabelled
    pixels of a segmentation map), as Keras 3: a position with that label has
    loss 0 and no gradient, and is left out of the mean, which is over the
    positions that count (:meth:`target_mask`, combined with the output's
    mask, as a mask a position: ``Loss.position_weights``).
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, reduction=DEFAULT_REDUCTION, ignore_class=None, **kwargs):
        if "label_smoothing" in kwargs:
            raise TypeError("SparseCategoricalCrossentropy has no label_smoothing (neither has Keras 3's); use "
                            "CategoricalCrossentropy(label_smoothing=...) with one-hot targets "
                            "(nnscratch.utils.to_categorical)")
        if kwargs:
            raise TypeError(f"SparseCategoricalCrossentropy got unexpected arguments {sorted(kwargs)}; "
                            "it takes from_logits, reduction and ignore_class")
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class,
                                                                                          (int, np.integer))):
            raise TypeError(f"ignore_class must be an integer label (or None), got {ignore_class!r}")
        super().__init__(from_logits=from_logits, reduction=reduction)
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def arguments(self):
        return {"from_logits": self.from_logits,
                **({} if self.ignore_class is None else {"ignore_class": self.ignore_class})}

    def target_mask(self, y_true, positions):
        """Which positions count: those whose label is not ``ignore_class`` (None without one)."""
        if self.ignore_class is None:
            return None
        return np.asarray(y_true).reshape(positions) != self.ignore_class

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        positions, classes = tuple(output_shape[:-1]), output_shape[-1]
        if y.ndim == len(positions) + 2 and y.shape[-1] == 1:      # (N, ..., 1): Keras takes it too
            y = y[..., 0]
        if y.shape[1:] != positions:
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer labels of shape {format_labels(positions)}, "
                f"one a position of the output {(None, *output_shape)}, got shape {y.shape}; for one-hot "
                f"targets use loss='categorical_crossentropy'"
            )
        if not np.issubdtype(y.dtype, np.integer):
            _check_finite(y)
            if not np.all(y == np.round(y)):
                raise TypeError(f"sparse labels must be integers, got non-integer values of dtype {y.dtype}")
        outside = (y < 0) | (y >= classes)
        if self.ignore_class is not None:
            outside &= y != self.ignore_class
        if y.size and outside.any():
            bad = y[outside]
            also = "" if self.ignore_class is None else f" (or ignore_class={self.ignore_class})"
            raise ValueError(
                f"sparse labels must be in [0, {classes}){also} for a model with {classes} output units, "
                f"got {bad.size} labels outside, e.g. {bad[:5].tolist()}"
            )
        return y.astype(np.int64)

    def _labels(self, y_true, positions=None):
        """Integer labels (integers or whole floats, a direct call's (N, 1) too) as an array of ``positions``' shape.

        ``positions`` is the prediction's shape without its class axis, (N,) for a (N, K) output; None: (N,).
        The label ``ignore_class`` becomes 0 (its position's loss and gradient are then set to 0, as Keras).
        """
        y_true = np.asarray(y_true)
        labels = y_true.reshape(len(y_true) if positions is None else positions).astype(np.int64, copy=False)
        return labels if self.ignore_class is None else np.where(labels == self.ignore_class, 0, labels)

    def _zero_ignored(self, values, y_true, positions):
        """``values`` (a value or a row a position) set to 0 where the label is ``ignore_class``."""
        if self.ignore_class is None:
            return values
        keep = self.target_mask(y_true, positions)
        return values * keep.reshape(keep.shape + (1,) * (values.ndim - keep.ndim)).astype(values.dtype)

    @staticmethod
    def _one_hot(labels, classes, dtype):
        onehot = np.zeros((*labels.shape, classes), dtype=dtype)
        np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
        return onehot

    def targets(self, y_true, classes, dtype):
        """The one-hot rows of the integer labels (of an (N, K) output: the fused softmax path)."""
        return self._one_hot(self._labels(y_true), classes, dtype)

    def per_position(self, y_true, y_pred):
        """``log sum_k c_k - log c_label`` with ``c = clip(p, 1e-7, 1 - 1e-7)``: Keras clips, then rescales.

        An output (N, ..., K) has a label a position, and a loss a position.
        """
        labels = self._labels(y_true, y_pred.shape[:-1])
        if self.from_logits:
            values = self._from_logits(self._one_hot(labels, y_pred.shape[-1], y_pred.dtype), y_pred)[0]
        else:
            c = np.clip(y_pred, EPSILON, 1 - EPSILON)
            chosen = np.take_along_axis(c, labels[..., None], axis=-1)[..., 0]
            values = np.log(c.sum(axis=-1)) - np.log(chosen)
        return self._zero_ignored(values, y_true, y_pred.shape[:-1])

    def gradient(self, y_true, y_pred):
        """``(1/S - [k = label] / c_label) / R`` where ``p_k`` is inside the clipping range (else 0), ``S = sum c``.

        ``R`` is the number of rows: N, or N times the positions of an (N, ..., K) output.
        """
        labels = self._labels(y_true, y_pred.shape[:-1])
        if self.from_logits:
            grad = self._from_logits(self._one_hot(labels, y_pred.shape[-1], y_pred.dtype), y_pred)[1]
            return self._zero_ignored(grad, y_true, y_pred.shape[:-1])
        c = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        grad = np.repeat(1 / c.sum(axis=-1, keepdims=True), y_pred.shape[-1], axis=-1)
        at_label = labels[..., None]
        np.put_along_axis(grad, at_label, np.take_along_axis(grad, at_label, axis=-1)
                          - 1 / np.take_along_axis(c, at_label, axis=-1), axis=-1)
        return self._zero_ignored(grad * inside / labels.size, y_true, y_pred.shape[:-1])

    def softmax_fused(self, y_true, logits):
        losses, grad = super().softmax_fused(y_true, logits)
        positions = logits.shape[:-1]
        return self._zero_ignored(losses, y_true, positions), self._zero_ignored(grad, y_true, positions)


def format_labels(positions) -> str:
    """The shape of a batch of labels, ``(N,)`` or ``(N, 6)``, for error messages."""
    return str(("N", *positions)).replace("'", "")


class BinaryCrossentropy(Loss):
    r"""``L = -(1/N) sum_n mean_k [t log p + (1 - t) log(1 - p)]`` with ``p`` clipped to ``[1e-7, 1 - 1e-7]``.

    ``dL/dp = (p - t) / (p (1 - p)) / (N K)`` for the ``K`` outputs of a
    sample. After a sigmoid layer the model hands :meth:`fused` the logits
    ``z`` instead, as Keras does: per output
    ``max(z, 0) - z t + log(1 + exp(-|z|))``, exact for any ``z`` (a sigmoid
    output of 1 - 1e-9 is not clipped), and ``dL/dz = (p - t) / (N K)``.

    Parameters
    ----------
    from_logits : bool
        The prediction is the logits ``z`` (the last layer has no
        activation): the loss and gradient from ``z`` above. If the last
        layer is a sigmoid after all, the loss takes that layer's logits, as
        Keras with TensorFlow does, and warns.
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / 2`` as targets, as Keras.
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        self.from_logits = _check_from_logits(from_logits, type(self).__name__)
        self.label_smoothing = _check_label_smoothing(label_smoothing, type(self).__name__)

    def arguments(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"binary_crossentropy targets must be in [0, 1], got range [{y.min()}, {y.max()}]")
        return y

    def targets(self, y_true):
        """The targets the formulas use: ``t (1 - s) + s / 2`` with label smoothing ``s``, else ``t``."""
        s = self.label_smoothing
        return y_true * (1 - s) + 0.5 * s if s else y_true

    def per_position(self, y_true, y_pred):
        t = self.targets(y_true)
        if self.from_logits:
            return self._from_logits(t, y_pred)[0]
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return _last_axis_mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))

    def gradient(self, y_true, y_pred):
        t = self.targets(y_true)
        if self.from_logits:
            return self._from_logits(t, y_pred)[1]
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return (p - t) / (p * (1 - p)) * inside / y_pred.size

    @staticmethod
    def _from_logits(t, logits):
        """The losses of the positions (the mean over the last axis) and dL/dlogits of the batch mean, from logits
        ``z`` of any shape (N, ...)."""
        e = np.exp(-np.abs(logits))                                  # never overflows
        losses = np.maximum(logits, 0) - logits * t + np.log1p(e)
        p = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))          # sigmoid(z), stable both ways
        grad = (p - t) / logits.size
        return _last_axis_mean(losses), grad.astype(logits.dtype, copy=False)

    def fused(self, y_true, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from the sigmoid layer's logits ``z``."""
        if self.from_logits:
            _warn_output_activation(self.name, "sigmoid")
        losses, grad = self._from_logits(self.targets(y_true), logits)
        return _per_sample_mean(losses), grad


class AutoCrossentropy(Loss):
    """Keras's ``loss="crossentropy"`` (or ``"ce"``): the cross-entropy the shapes call for.

    As Keras's ``compile`` chooses it (``is_binary_or_sparse_categorical``),
    from the targets ``y`` and the prediction ``p`` (batch axis included):
    binary cross-entropy when ``p`` has one unit (last axis 1); sparse
    categorical when the targets are labels (one axis fewer than ``p``, or a
    last axis of 1 against several units); categorical otherwise. Each call
    chooses again from the arrays it gets, so the choice needs no state; the
    chosen loss has its default arguments (``from_logits=False``, no label
    smoothing), as in Keras.

    A softmax output layer gets the fused softmax gradient of the categorical
    losses. A sigmoid unit gets binary cross-entropy from its clipped output
    (``compile`` decides which sigmoid keeps its logits before any target is
    seen), which differs from Keras's logits formula only where the sigmoid is
    within 1e-7 of 0 or 1.
    """

    name = "crossentropy"
    fused_activation = "softmax"

    def __init__(self, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)

    def chosen(self, y_true_shape, y_pred_shape) -> Loss:
        """The loss Keras chooses for targets and prediction of these shapes (both with the batch axis)."""
        if y_pred_shape[-1] == 1:
            return BinaryCrossentropy(reduction=self.reduction)
        if len(y_true_shape) < len(y_pred_shape) or y_true_shape[-1] == 1:
            return SparseCategoricalCrossentropy(reduction=self.reduction)
        return CategoricalCrossentropy(reduction=self.reduction)

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        return self.chosen(y.shape, (len(y), *output_shape)).prepare_targets(y, output_shape)

    def per_position(self, y_true, y_pred):
        return self.chosen(np.shape(y_true), np.shape(y_pred)).per_position(y_true, y_pred)

    def gradient(self, y_true, y_pred):
        return self.chosen(np.shape(y_true), np.shape(y_pred)).gradient(y_true, y_pred)

    def fused(self, y_true, logits):
        """The fused softmax path of the categorical loss chosen.

        A softmax over a single unit (binary chosen) always outputs 1: its
        loss is binary cross-entropy of 1 and its gradient 0.
        """
        loss = self.chosen(np.shape(y_true), np.shape(logits))
        if isinstance(loss, BinaryCrossentropy):
            return loss.per_sample(y_true, np.ones_like(logits)), np.zeros_like(logits)
        return loss.fused(y_true, logits)
