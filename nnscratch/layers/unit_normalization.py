"""UnitNormalization: each sample scaled to length 1 along ``axis`` (Keras's layer)."""

import numpy as np

from nnscratch.layers.identity import Identity
from nnscratch.layers.layer_normalization import normalized_axes

__all__ = ["UnitNormalization"]

_MAX_INVERSE_NORM = 1e12    # Keras's 1 / epsilon: a vector shorter than 1e-12 is scaled by 1e12, not by 1/|x|


class UnitNormalization(Identity):
    r"""``y = x / |x|`` along the axes ``axis`` (the last by default), as Keras: :math:`r = \min(|x|^{-1}, 10^{12})`.

    Backward: where :math:`r = 1/|x|`, the Jacobian is
    :math:`\partial y/\partial x = r\,(I - y y^\top)` (scaling ``x`` changes
    nothing, so the direction of ``x`` itself gets no gradient):

    .. math:: \frac{\partial L}{\partial x} = r\,\big(g - y\,(g \cdot y)\big);

    where the bound holds (:math:`|x| < 10^{-12}`), :math:`r` is a constant and
    :math:`\partial L/\partial x = r g`. No weights; a mask passes through.
    Training keeps ``y`` and ``r``.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        normalized_axes(axis, (1,) * 64, "UnitNormalization")      # its form now, its range when built
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self._cache = None

    def build(self, input_shape):
        self._axes = normalized_axes(self.axis, input_shape, f"UnitNormalization layer {self.name!r}")
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        inverse = np.minimum(1.0 / np.sqrt((x * x).sum(axis=self._axes, keepdims=True)),
                             x.dtype.type(_MAX_INVERSE_NORM))
        y = x * inverse
        self._cache = (y, inverse) if training else None
        return y

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        y, inverse = self._cache
        projected = (grad_output * y).sum(axis=self._axes, keepdims=True)
        clipped = inverse >= _MAX_INVERSE_NORM               # the bound: r is a constant there
        return inverse * (grad_output - np.where(clipped, 0, y * projected))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
