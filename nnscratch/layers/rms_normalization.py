r"""RMS normalization: each sample divided by the root mean square of its features, then scaled."""

import numpy as np

from nnscratch.layers.base import Layer
from nnscratch.layers.layer_normalization import normalization_arguments, normalized_axes

__all__ = ["RMSNormalization"]


class RMSNormalization(Layer):
    r"""Divide each sample by the root mean square of its values along ``axis``, then scale (Keras 3's layer).

    For one sample and the :math:`M` values :math:`x_i` along the normalised axes:

    .. math::
        s = \Big(\frac{1}{M}\sum_i x_i^2 + \epsilon\Big)^{-1/2}, \quad \hat x_i = s\, x_i, \quad
        y_i = \gamma_i \hat x_i.

    No mean is subtracted (unlike :class:`~nnscratch.layers.LayerNormalization`).
    Backward, with :math:`\hat g_i = g_i \gamma_i`, since
    :math:`\partial s / \partial x_j = -s^3 x_j / M`:

    .. math::
        \frac{\partial L}{\partial x_i} = s\Big(\hat g_i - \hat x_i \frac{1}{M}\sum_j \hat g_j \hat x_j\Big),
        \qquad \frac{\partial L}{\partial \gamma} = \sum g \hat x

    (summed over the batch and the other axes). The weight is ``scale``
    (Keras's name), ones to start with, with the sizes of the normalised axes.
    Training caches :math:`\hat x` and :math:`s`.

    Parameters
    ----------
    axis : int or list of int
        As Keras counts them (0 is the batch axis, not allowed; ``-1`` the last).
    epsilon : float > 0
        Added to the mean square; 1e-6 as Keras.
    """

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon = normalization_arguments(axis, epsilon, "RMSNormalization")
        self._xhat = self._inv_rms = None

    def build(self, input_shape):
        self._axes = normalized_axes(self.axis, input_shape, f"RMSNormalization layer {self.name!r}")
        rank = len(input_shape) + 1
        self._other_axes = tuple(a for a in range(rank) if a not in self._axes)    # where dscale sums
        self._broadcast = tuple(input_shape[a - 1] if a in self._axes else 1 for a in range(1, rank))
        self.scale = self.new_parameter("scale", np.ones(tuple(input_shape[a - 1] for a in self._axes)))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        inv_rms = 1.0 / np.sqrt((x * x).mean(axis=self._axes, keepdims=True) + x.dtype.type(self.epsilon))
        xhat = x * inv_rms
        self._xhat, self._inv_rms = (xhat, inv_rms) if training else (None, None)
        return xhat * self.scale.value.reshape(self._broadcast)

    def backward(self, grad_output):
        if self._xhat is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        xhat = self._xhat
        self.scale.grad[...] = (grad_output * xhat).sum(axis=self._other_axes)
        g = grad_output * self.scale.value.reshape(self._broadcast)
        return self._inv_rms * (g - xhat * (g * xhat).mean(axis=self._axes, keepdims=True))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
