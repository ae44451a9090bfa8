r"""Standardise features with a mean and variance learnt from data by ``adapt`` (Keras's ``Normalization``)."""

import numpy as np

from nnscratch.config import floatx
from nnscratch.layers.base import Layer, format_shape

__all__ = ["Normalization"]

EPSILON = 1e-7          # Keras's backend.epsilon(): the smallest standard deviation divided by


class Normalization(Layer):
    r"""``(x - mean) / max(sqrt(variance), 1e-7)``, the mean and variance from ``adapt(data)`` or given.

    ``axis`` (default -1, the features) are the axes that keep their own
    statistics; the others (the batch axis among them) are averaged over.
    ``adapt(data)`` computes them from an array, or from an iterable of
    batches (pooled batch by batch, as Keras: the count-weighted means, and
    the variances plus the squared distances of the batch means). Without
    ``adapt`` or ``mean``/``variance`` the layer is the identity (mean 0,
    variance 1). ``invert=True`` maps back, ``mean + x * max(sqrt(variance), 1e-7)``.

    Backward: a fixed affine map, so :math:`\partial L/\partial x = g / s`
    (:math:`g \cdot s` inverted), :math:`s = \max(\sqrt{\sigma^2}, 10^{-7})`.
    The statistics are buffers (``mean``, ``variance``, ``count``, Keras's
    weights when adapted), which no optimizer changes.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization: give both mean and variance, or neither; got mean={mean!r}, "
                             f"variance={variance!r}")
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(f"Normalization: mean and variance must have the same shape, got {np.shape(mean)} and "
                             f"{np.shape(variance)}")
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        self.input_mean, self.input_variance, self.invert = mean, variance, bool(invert)

    def build(self, input_shape):
        ndim = len(input_shape) + 1
        if any(not -ndim <= a < ndim or a % ndim == 0 for a in self.axis):
            raise ValueError(f"Normalization layer {self.name!r}: axis must be axes of the samples, in [1, {ndim}) or "
                             f"negative, for inputs {format_shape(tuple(input_shape))}; got {self.axis}")
        self._keep = tuple(sorted(a % ndim for a in self.axis))
        self._reduce = tuple(d for d in range(ndim) if d not in self._keep)
        self._broadcast = tuple(input_shape[d - 1] if d in self._keep else 1 for d in range(1, ndim))
        shape = tuple(input_shape[d - 1] for d in self._keep)
        if self.input_mean is None:
            self.buffers["mean"] = np.zeros(shape, dtype=floatx())
            self.buffers["variance"] = np.ones(shape, dtype=floatx())
            self.buffers["count"] = np.zeros((), dtype=np.int64)
        super().build(input_shape)

    def _statistics(self):
        """The mean and the divisor ``max(sqrt(variance), 1e-7)``, shaped to broadcast over a sample."""
        if self.input_mean is not None:
            mean = np.broadcast_to(_expand(self.input_mean, self._keep, len(self._broadcast)), self._broadcast)
            variance = np.broadcast_to(_expand(self.input_variance, self._keep, len(self._broadcast)),
                                       self._broadcast)
        else:
            mean = self.buffers["mean"].reshape(self._broadcast)
            variance = self.buffers["variance"].reshape(self._broadcast)
        return mean, np.maximum(np.sqrt(variance), EPSILON)

    def adapt(self, data) -> None:
        """Compute the mean and variance of ``data`` (an array, or an iterable of batches) over the reduced axes."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization layer {self.name!r} was given its mean and variance; adapt does not "
                             "apply")
        batches = [data] if isinstance(data, np.ndarray) or np.isscalar(data) else data
        count, mean, variance = 0, 0.0, 0.0
        for batch in batches:
            batch = np.asarray(batch, dtype=np.float64)
            if not self.built:
                self.build(batch.shape[1:])
            n = int(np.prod([batch.shape[d] for d in self._reduce]))
            batch_mean, batch_variance = batch.mean(axis=self._reduce), batch.var(axis=self._reduce)
            total = count + n
            new_mean = mean * (count / total) + batch_mean * (n / total)
            variance = ((variance + (mean - new_mean) ** 2) * (count / total)
                        + (batch_variance + (batch_mean - new_mean) ** 2) * (n / total))
            count, mean = total, new_mean
        if count == 0:
            raise ValueError(f"Normalization layer {self.name!r}: adapt got no data")
        self.buffers["mean"][...] = mean
        self.buffers["variance"][...] = variance
        self.buffers["count"][...] = count

    def forward(self, x, training=False):
        self.check_input(x)
        mean, scale = self._statistics()
        mean, scale = mean.astype(x.dtype, copy=False), scale.astype(x.dtype, copy=False)
        return mean + x * scale if self.invert else (x - mean) / scale

    def backward(self, grad_output):
        _, scale = self._statistics()
        scale = scale.astype(grad_output.dtype, copy=False)
        return grad_output * scale if self.invert else grad_output / scale

    def get_config(self):
        def listed(value):
            return None if value is None else np.asarray(value, dtype=np.float64).tolist()

        axis = None if self.axis == () else self.axis[0] if len(self.axis) == 1 else list(self.axis)
        return {**super().get_config(), "axis": axis, "mean": listed(self.input_mean),
                "variance": listed(self.input_variance), "invert": self.invert}


def _expand(values, keep, rank):
    """Given statistics (scalar, or the kept axes' trailing sizes) laid on the kept axes of a sample of ``rank``."""
    values = np.asarray(values, dtype=np.float64)
    shape = [1] * rank
    for i in range(1, values.ndim + 1):
        shape[keep[-i] - 1] = values.shape[-i]
    return values.reshape(shape)
