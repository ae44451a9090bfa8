r"""Overlap losses for segmentation masks: Dice and Tversky (Keras 3's), one value a sample.

With :math:`t` the target mask and :math:`p` the prediction of one sample
(every value of it), :math:`I = \sum t p` their overlap:

.. math:: \text{Dice} = 1 - \frac{2 I}{\sum t + \sum p + \epsilon}, \qquad
          \text{Tversky} = 1 - \frac{I}{I + \alpha \sum (1 - p)\, t + \beta \sum p\, (1 - t) + \epsilon}

(:math:`\epsilon = 10^{-7}`; the two sums of Tversky's denominator are the
target's pixels the prediction misses and the prediction's pixels outside
the target, weighted as Keras 3.15's code weighs them). Both are ratios of
sums, so each :math:`p_i` reaches the loss through the numerator and the
denominator: with :math:`D` the denominator and :math:`N` the numerator of
the ratio :math:`r = N/D`, :math:`\partial r/\partial p_i = (N'_i D - N D'_i)/D^2`.

Keras's default ``axis=None`` sums over the whole batch, one value a batch,
which a training loop that averages losses over samples cannot take apart
(nor weigh by sample); nnscratch takes ``axis`` over every axis but the
batch's, ``axis=(1, 2, 3)`` for (N, H, W, C) masks (as Keras's segmentation
examples write it), and refuses None with a message that says so.
"""

import numpy as np

from nnscratch.losses.base import DEFAULT_REDUCTION, Loss, _check_real

__all__ = ["Dice", "Tversky"]

EPSILON = 1e-7


def _sample_axes(kind, axis):
    """``axis`` as a sorted tuple of positive axes (checked against the output's rank at the first call)."""
    if axis is None:
        raise ValueError(f"{kind}: axis=None (Keras's default) sums over the whole batch, one loss a batch; give the "
                         f"sample's axes, e.g. {kind}(axis=(1, 2, 3)) for (N, H, W, C) masks, one loss a sample")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not axes or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise ValueError(f"{kind}: axis must be an axis or a tuple of axes, got {axis!r}")
    return tuple(int(a) for a in axes)


class _OverlapLoss(Loss):
    """One value a sample from sums over the sample's axes: :meth:`ratio` gives the ratio and its gradient."""

    def __init__(self, reduction, axis):
        super().__init__(reduction=reduction)
        self.axis = _sample_axes(type(self).__name__, axis)

    def _flat(self, y_true, y_pred):
        """Targets and predictions as (N, values of a sample), after checking that ``axis`` is all of a sample."""
        y_pred = np.asarray(y_pred)
        y_true = np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        axes = sorted(a % y_pred.ndim for a in self.axis)
        if axes != list(range(1, y_pred.ndim)):
            raise ValueError(f"{type(self).__name__}: axis must cover every axis of a sample, "
                             f"{tuple(range(1, y_pred.ndim))} for an output of shape {y_pred.shape}, got {self.axis}")
        return y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)

    def per_sample(self, y_true, y_pred):
        t, p = self._flat(y_true, y_pred)
        return 1.0 - self.ratio(t, p)[0]

    def gradient(self, y_true, y_pred):
        """``-dr/dp / N``: the gradient of the mean over the batch's samples."""
        t, p = self._flat(y_true, y_pred)
        return (-self.ratio(t, p)[1] / len(p)).reshape(np.shape(y_pred)).astype(np.asarray(y_pred).dtype)

    def arguments(self):
        return {"axis": list(self.axis)}


class Dice(_OverlapLoss):
    """``1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7)`` of each sample, as Keras 3's ``Dice`` (module docstring)."""

    name = "dice"

    def __init__(self, reduction=DEFAULT_REDUCTION, axis=None):
        super().__init__(reduction, axis)

    @staticmethod
    def ratio(t, p):
        """``(2 I / D, its gradient)`` with ``I = sum(t p)``, ``D = sum(t) + sum(p) + eps``, row by row."""
        overlap = (t * p).sum(axis=1, keepdims=True)
        denominator = t.sum(axis=1, keepdims=True) + p.sum(axis=1, keepdims=True) + EPSILON
        ratio = 2 * overlap / denominator
        return ratio[:, 0], (2 * t * denominator - 2 * overlap) / denominator ** 2


class Tversky(_OverlapLoss):
    """``1 - I / (I + alpha sum((1 - p) t) + beta sum(p (1 - t)) + 1e-7)`` of each sample, as Keras 3's ``Tversky``."""

    name = "tversky"

    def __init__(self, alpha=0.5, beta=0.5, reduction=DEFAULT_REDUCTION, axis=None):
        super().__init__(reduction, axis)
        self.alpha = _check_real(alpha, "Tversky", "alpha")
        self.beta = _check_real(beta, "Tversky", "beta")

    def ratio(self, t, p):
        """``(I / D, its gradient)``, ``D = I + alpha sum((1 - p) t) + beta sum(p (1 - t)) + eps``, row by row."""
        overlap = (t * p).sum(axis=1, keepdims=True)
        denominator = (overlap + self.alpha * ((1 - p) * t).sum(axis=1, keepdims=True)
                       + self.beta * (p * (1 - t)).sum(axis=1, keepdims=True) + EPSILON)
        slope = t - self.alpha * t + self.beta * (1 - t)                  # dD/dp
        return (overlap / denominator)[:, 0], (t * denominator - overlap * slope) / denominator ** 2

    def arguments(self):
        return {"alpha": self.alpha, "beta": self.beta, **super().arguments()}
