r"""Losses between distributions and for counts: Kullback-Leibler divergence, Poisson."""

import numpy as np

from nnscratch.losses.base import EPSILON, Loss, _last_axis_mean

__all__ = ["KLDivergence", "Poisson"]


class KLDivergence(Loss):
    r"""``L = (1/N) sum_n sum_k t_k log(t_k / p_k)``, both clipped to ``[1e-7, 1]`` (Keras's ``"kld"``).

    A *sum* over the last axis (one divergence per distribution), then a mean
    over the other axes and the batch. With ``c = clip(p, 1e-7, 1)`` and
    ``s = clip(t, 1e-7, 1)``, for ``R`` distributions in the batch
    (``R = N`` for ``(N, K)`` outputs):

    .. math:: \frac{\partial L}{\partial p_k} = -\frac{s_k}{R\, c_k} [10^{-7} \le p_k \le 1],

    0 where the prediction is clipped. Targets must lie in [0, 1] (Keras
    clips them silently; nnscratch refuses others at fit time). The
    prediction is not rescaled to sum to 1, as in Keras.
    """

    name = "kl_divergence"

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name} targets must be probabilities in [0, 1], got range [{y.min()}, {y.max()}]")
        return y

    def per_position(self, y_true, y_pred):
        s = np.clip(y_true, EPSILON, 1)
        c = np.clip(y_pred, EPSILON, 1)
        return np.sum(s * np.log(s / c), axis=-1)

    def gradient(self, y_true, y_pred):
        s = np.clip(y_true, EPSILON, 1)
        c = np.clip(y_pred, EPSILON, 1)
        inside = (y_pred >= EPSILON) & (y_pred <= 1)
        return -s / c * inside / (y_pred.size // y_pred.shape[-1])


class Poisson(Loss):
    r"""``L = (1/N) sum_n mean_k (p - t log(p + 1e-7))``, the Poisson negative log-likelihood (Keras's ``"poisson"``).

    Up to terms in ``t`` alone, for counts ``t`` with predicted rate ``p > 0``
    (a softplus or exponential output):

    .. math:: \frac{\partial L}{\partial p} = \frac{1}{N K}\Big(1 - \frac{t}{p + 10^{-7}}\Big).

    Targets must be >= 0 (counts or rates; refused otherwise at fit time).
    A prediction ``p <= -1e-7`` has no logarithm: the loss is NaN, as in Keras.
    """

    name = "poisson"

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and y.min() < 0:
            raise ValueError(f"{self.name} targets must be counts or rates >= 0, got a minimum of {y.min()}")
        return y

    def per_position(self, y_true, y_pred):
        return _last_axis_mean(y_pred - y_true * np.log(y_pred + EPSILON))

    def gradient(self, y_true, y_pred):
        return (1 - y_true / (y_pred + EPSILON)) / y_pred.size
