r"""Margin losses: hinge, squared hinge, categorical hinge (Keras's maximum-margin losses).

``max(m, 0)`` has a kink at ``m = 0``; there the gradients below take the
slope of ``m`` (TensorFlow's gradient of ``maximum`` goes to its first
argument on a tie).
"""

import numpy as np

from nnscratch.losses.base import Loss, _last_axis_mean

__all__ = ["Hinge", "SquaredHinge", "CategoricalHinge"]


def hinge_targets(y_true):
    """0/1 targets as -1/1, as Keras: ``2 t - 1`` when *every* target of the array is 0 or 1, else ``t`` unchanged."""
    return 2.0 * y_true - 1.0 if np.all((y_true == 0) | (y_true == 1)) else y_true


class Hinge(Loss):
    r"""``L = (1/N) sum_n mean_k max(1 - t p, 0)`` for targets ``t`` of -1 or 1 (Keras's ``"hinge"``).

    0/1 targets are turned into -1/1 first, as Keras does: when every target
    of the batch is 0 or 1 (Keras decides batch by batch; so does nnscratch,
    and it refuses at fit time targets that mix 0 with values other than 1,
    whose meaning would change from batch to batch). Then

    .. math:: \frac{\partial L}{\partial p} = -\frac{t}{N K} [1 - t p \ge 0].
    """

    name = "hinge"

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if np.any(y == 0) and not np.all((y == 0) | (y == 1)):
            others = np.unique(y[(y != 0) & (y != 1)])
            raise ValueError(f"{self.name}: targets are -1/1 or 0/1 (turned into -1/1); these mix 0 with "
                             f"{others[:5].tolist()}, which Keras would read as -1/1 in some batches and not in others")
        return y

    def per_position(self, y_true, y_pred):
        return _last_axis_mean(np.maximum(1 - hinge_targets(y_true) * y_pred, 0))

    def gradient(self, y_true, y_pred):
        t = hinge_targets(y_true)
        return -t * (1 - t * y_pred >= 0) / y_pred.size


class SquaredHinge(Hinge):
    r"""``L = (1/N) sum_n mean_k max(1 - t p, 0)^2`` (Keras's ``"squared_hinge"``), targets as for :class:`Hinge`.

    .. math:: \frac{\partial L}{\partial p} = -\frac{2 t \max(1 - t p, 0)}{N K},

    continuous: no kink.
    """

    name = "squared_hinge"

    def per_position(self, y_true, y_pred):
        return _last_axis_mean(np.maximum(1 - hinge_targets(y_true) * y_pred, 0) ** 2)

    def gradient(self, y_true, y_pred):
        t = hinge_targets(y_true)
        return -2 * t * np.maximum(1 - t * y_pred, 0) / y_pred.size


class CategoricalHinge(Loss):
    r"""``L = (1/N) sum_n max(neg - pos + 1, 0)`` for one-hot targets (Keras's ``"categorical_hinge"``).

    Over the last axis, ``pos = sum_k t_k p_k`` (the true class's score) and
    ``neg = max_k (1 - t_k) p_k`` (the best other class's). Where the margin
    ``m = neg - pos + 1`` is ``>= 0``,

    .. math:: \frac{\partial L}{\partial p_j} = \frac{1}{R}\Big(\frac{(1 - t_j)[j \in J]}{|J|} - t_j\Big),

    ``J`` the indices reaching the maximum (a tie shares the gradient, as
    TensorFlow's ``reduce_max``) and ``R`` the number of rows; else 0.
    Targets are used as they are (no 0/1 conversion), as in Keras.
    """

    name = "categorical_hinge"

    @staticmethod
    def _margin(y_true, y_pred):
        scores = (1 - y_true) * y_pred
        neg = scores.max(axis=-1, keepdims=True)
        pos = np.sum(y_true * y_pred, axis=-1, keepdims=True)
        return neg - pos + 1, scores == neg

    def per_position(self, y_true, y_pred):
        margin, _ = self._margin(y_true, y_pred)
        return np.maximum(margin[..., 0], 0)

    def gradient(self, y_true, y_pred):
        margin, best = self._margin(y_true, y_pred)
        d_neg = (1 - y_true) * best / best.sum(axis=-1, keepdims=True)
        return (d_neg - y_true) * (margin >= 0) / (y_pred.size // y_pred.shape[-1])
