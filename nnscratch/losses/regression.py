"""Regression losses: squared, absolute, Huber, percentage, squared logarithmic, log-cosh errors, cosine similarity.

Each averages its per-value terms over the values of a sample (Keras's mean
over the last axis, then over the rest) and over the batch: for ``N`` samples
of ``K`` values ``dL/dp`` carries a factor ``1 / (N K)``.
"""

import numbers

import numpy as np

from nnscratch.losses.base import DEFAULT_REDUCTION, EPSILON, Loss, _last_axis_mean

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "Huber", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "LogCosh", "CosineSimilarity"]


class MeanSquaredError(Loss):
    """``L = (1/N) sum_n mean_k (p - t)^2``; ``dL/dp = 2 (p - t) / (N K)``."""

    name = "mean_squared_error"

    def per_position(self, y_true, y_pred):
        return _last_axis_mean((y_pred - y_true) ** 2)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.size


class MeanAbsoluteError(Loss):
    """``L = (1/N) sum_n mean_k |p - t|``; ``dL/dp = sign(p - t) / (N K)``.

    At ``p = t``, where ``|p - t|`` has no derivative, the gradient is 0
    (``sign(0) = 0``), as TensorFlow's gradient of ``abs`` gives.
    """

    name = "mean_absolute_error"

    def per_position(self, y_true, y_pred):
        return _last_axis_mean(np.abs(y_pred - y_true))

    def gradient(self, y_true, y_pred):
        return np.sign(y_pred - y_true) / y_pred.size


class Huber(Loss):
    r"""Squared error for small errors, absolute error for large ones (Keras's ``Huber``).

    Per value, with ``e = p - t`` and ``delta`` the point where it changes:

    .. math:: h(e) = \begin{cases} e^2/2 & |e| \le \delta \\
              \delta |e| - \delta^2/2 & |e| > \delta \end{cases},
              \qquad h'(e) = \operatorname{clip}(e, -\delta, \delta),

    averaged over the values of a sample and the batch:
    ``dL/dp = clip(p - t, -delta, delta) / (N K)``. Both pieces meet with the
    same value and slope at ``|e| = delta``.

    Parameters
    ----------
    delta : float > 0
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).
    """

    name = "huber_loss"

    def __init__(self, delta=1.0, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, numbers.Real):
            raise TypeError(f"Huber: delta must be a positive number, got {delta!r}")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"Huber: delta must be a positive, finite number, got {delta!r}")
        self.delta = float(delta)

    def arguments(self):
        return {"delta": self.delta}

    def per_position(self, y_true, y_pred):
        error = np.abs(y_pred - y_true)
        d = self.delta
        return _last_axis_mean(np.where(error <= d, 0.5 * error ** 2, d * error - 0.5 * d ** 2))

    def gradient(self, y_true, y_pred):
        return np.clip(y_pred - y_true, -self.delta, self.delta) / y_pred.size


class MeanAbsolutePercentageError(Loss):
    r"""``L = (1/N) sum_n mean_k 100 |p - t| / max(|t|, 1e-7)`` (Keras's ``"mape"``).

    .. math:: \frac{\partial L}{\partial p} = \frac{100\,\operatorname{sign}(p - t)}{N K \max(|t|, 10^{-7})},

    0 at ``p = t`` (``sign(0) = 0``, TensorFlow's gradient of ``abs``). A
    target of 0 divides by 1e-7, as in Keras: its error counts 1e9 times.
    """

    name = "mean_absolute_percentage_error"

    def per_position(self, y_true, y_pred):
        return _last_axis_mean(100.0 * np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON)))

    def gradient(self, y_true, y_pred):
        return 100.0 * np.sign(y_pred - y_true) / np.maximum(np.abs(y_true), EPSILON) / y_pred.size


class MeanSquaredLogarithmicError(Loss):
    r"""``L = (1/N) sum_n mean_k (log(1 + max(p, 1e-7)) - log(1 + max(t, 1e-7)))^2`` (Keras's ``"msle"``).

    With ``d = log(1 + max(p, eps)) - log(1 + max(t, eps))``:

    .. math:: \frac{\partial L}{\partial p} = \frac{2 d}{N K (1 + p)} [p \ge \epsilon],

    0 where the prediction is below ``eps = 1e-7`` (Keras replaces it by
    ``eps``). Targets must be non-negative (Keras silently replaces negative
    ones by 1e-7; nnscratch refuses them at fit time).
    """

    name = "mean_squared_logarithmic_error"

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and y.min() < 0:
            raise ValueError(f"{self.name} targets must be >= 0 (it compares log(1 + t)), got a minimum of {y.min()}")
        return y

    def per_position(self, y_true, y_pred):
        d = np.log1p(np.maximum(y_pred, EPSILON)) - np.log1p(np.maximum(y_true, EPSILON))
        return _last_axis_mean(d ** 2)

    def gradient(self, y_true, y_pred):
        p = np.maximum(y_pred, EPSILON)
        d = np.log1p(p) - np.log1p(np.maximum(y_true, EPSILON))
        return 2 * d / (1 + p) * (y_pred >= EPSILON) / y_pred.size


class LogCosh(Loss):
    r"""``L = (1/N) sum_n mean_k log(cosh(p - t))`` (Keras's ``"log_cosh"``).

    Computed, as Keras, as ``x + softplus(-2x) - log 2`` with ``x = p - t``,
    finite for any error. It is about ``x^2 / 2`` for small errors and
    ``|x| - log 2`` for large ones, and

    .. math:: \frac{\partial L}{\partial p} = \frac{\tanh(p - t)}{N K}.
    """

    name = "log_cosh"

    def per_position(self, y_true, y_pred):
        x = y_pred - y_true
        softplus = np.maximum(-2 * x, 0) + np.log1p(np.exp(-np.abs(2 * x)))     # softplus(-2x), never overflows
        return _last_axis_mean(x + softplus - np.log(2.0))

    def gradient(self, y_true, y_pred):
        return np.tanh(y_pred - y_true) / y_pred.size


class CosineSimilarity(Loss):
    r"""``L = -(1/N) sum_n cos(t_n, p_n)``: minus the cosine similarity along ``axis`` (Keras's ``"cosine_similarity"``).

    As Keras, each vector is scaled by ``r = min(1 / ||x||, 1e7)`` (so a zero
    vector gives 0, not NaN): with ``u = p r(p)`` and ``v = t r(t)`` the loss of
    one vector is ``-sum_k u_k v_k``. Where ``||p|| > 1e-7``,

    .. math:: \frac{\partial(-u \cdot v)}{\partial p} = -\frac{v - u (u \cdot v)}{\|p\|},

    (the part of ``v`` orthogonal to ``u``; a change of ``p``'s length changes
    nothing), else ``-1e7 v``. The values of a sample (one per vector, for
    outputs of more than two axes) are averaged, then the batch.

    Parameters
    ----------
    axis : int
        The axis of the vectors (not the batch axis 0). Default -1.
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).
    """

    name = "cosine_similarity"

    def __init__(self, axis=-1, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"CosineSimilarity: axis must be an integer (the vectors' axis), got {axis!r}")
        if axis == 0:
            raise ValueError("CosineSimilarity: axis=0 is the batch axis; give the vectors' axis, e.g. -1")
        self.axis = int(axis)

    def arguments(self):
        return {"axis": self.axis}

    def prepare_targets(self, y, output_shape):
        ndim = len(output_shape) + 1
        if not -ndim < self.axis < ndim:
            raise ValueError(f"{self.name}: axis={self.axis} is out of range for the model output "
                             f"{(None, *output_shape)}")
        return super().prepare_targets(y, output_shape)

    def values_per_sample(self, y_pred_shape):
        return int(np.prod(y_pred_shape[1:], dtype=np.int64)) // y_pred_shape[self.axis]

    def _unit(self, x):
        """``x r`` and ``r = min(1 / ||x||, 1e7)`` along the axis, as Keras's ``normalize``."""
        square_sum = np.sum(x * x, axis=self.axis, keepdims=True)
        with np.errstate(divide="ignore"):
            r = np.minimum(1 / np.sqrt(square_sum), 1 / EPSILON)
        return x * r, r

    def per_position(self, y_true, y_pred):
        u, _ = self._unit(y_pred)
        v, _ = self._unit(y_true)
        return -np.sum(u * v, axis=self.axis)

    def gradient(self, y_true, y_pred):
        u, r = self._unit(y_pred)
        v, _ = self._unit(y_true)
        inside = r < 1 / EPSILON                          # ||p|| > 1e-7: r = 1 / ||p|| depends on p
        grad = np.where(inside, -(v - u * np.sum(u * v, axis=self.axis, keepdims=True)) * r, -v * r)
        return grad / (y_pred.size // y_pred.shape[self.axis])
