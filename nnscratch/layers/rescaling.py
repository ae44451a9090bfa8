"""Rescaling: an affine map of the inputs, fixed (``Rescaling(1 / 255)`` turns pixel values into [0, 1])."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Rescaling"]


def _values(value, name):
    """A number or a nested list of numbers, as Keras takes ``scale`` and ``offset``; anything else a TypeError."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.dtype == np.bool_ or not np.isfinite(array).all():
        raise TypeError(f"Rescaling: {name} must be a finite number or a list of them, got {value!r}")
    return array.astype(np.float64)


class Rescaling(Layer):
    r"""``y = x * scale + offset``, fixed numbers (no weights): Keras's preprocessing layer.

    ``scale`` and ``offset`` are numbers or arrays that broadcast against a
    sample (one value a channel: a list of ``C`` numbers). Backward:
    :math:`\partial L/\partial x = g \cdot \text{scale}` (summed over nothing:
    each output reads one input). ``Rescaling(1 / 255)`` scales pixels to
    [0, 1], ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1].
    """

    supports_masking = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self._scale, self._offset = _values(scale, "scale"), _values(offset, "offset")
        self.scale, self.offset = scale, offset

    def build(self, input_shape):
        try:
            shape = np.broadcast_shapes(tuple(input_shape), self._scale.shape, self._offset.shape)
        except ValueError:
            shape = None
        if shape != tuple(input_shape):
            raise ValueError(f"Rescaling layer {self.name!r}: scale of shape {self._scale.shape} and offset of "
                             f"shape {self._offset.shape} must broadcast against samples of shape "
                             f"{format_shape(tuple(input_shape))} without changing it")
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32   # uint8 pixels come in too
        return x.astype(dtype, copy=False) * self._scale.astype(dtype) + self._offset.astype(dtype)

    def backward(self, grad_output):
        return grad_output * self._scale.astype(grad_output.dtype)

    def get_config(self):
        def plain(value):
            return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64).tolist()

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}
