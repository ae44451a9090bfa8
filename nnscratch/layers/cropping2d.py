"""Cut rows and columns off the edges of NHWC images."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Cropping2D"]


def _pair(value, what):
    """``3`` -> ``(3, 3)``; ``(1, 2)`` stays; anything else is a clear error."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{what} must be an int or a tuple of 2 ints, got {value!r}")
    if min(value) < 0:
        raise ValueError(f"{what} must not be negative, got {tuple(value)}")
    return tuple(int(v) for v in value)


def normalize_cropping(cropping) -> tuple:
    """Keras's three forms, as ``((top, bottom), (left, right))``.

    ``1`` -> ``((1, 1), (1, 1))``; ``(a, b)`` -> ``((a, a), (b, b))`` (``a``
    rows off the top and the bottom, ``b`` columns off each side);
    ``((t, b), (l, r))`` stays (each inner entry may also be an int).
    """
    if isinstance(cropping, (int, np.integer)) and not isinstance(cropping, bool):
        return (_pair(cropping, "cropping"),) * 2
    if not isinstance(cropping, (tuple, list)) or len(cropping) != 2:
        raise TypeError(f"cropping must be an int, a tuple of 2 ints (rows, columns) or a tuple of 2 tuples of "
                        f"2 ints ((top, bottom), (left, right)), got {cropping!r}")
    return _pair(cropping[0], "cropping of the rows"), _pair(cropping[1], "cropping of the columns")


class Cropping2D(Layer):
    r"""Cut ``t`` rows off the top, ``b`` off the bottom, ``l`` columns off the left and ``r`` off the right.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, H - t - b, W - l - r, C) for
    ``cropping=((t, b), (l, r))``; at least one row and one column must be
    left (checked at build, as Keras).

    ``y`` is the middle of ``x``; :class:`~nnscratch.layers.ZeroPadding2D`
    run backwards. Each kept cell's gradient is its copy's, and the cells
    cut off get zero:

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} =
              \begin{cases} g_{n,\ r - t,\ s - l,\ c} & \text{inside the kept window} \\ 0 & \text{otherwise}\end{cases}

    Parameters
    ----------
    cropping : int, tuple of 2 ints or tuple of 2 tuples of 2 ints
        Default ``((0, 0), (0, 0))`` (nothing cut, as Keras); ``a``: ``a``
        cells off every side; ``(a, b)``: ``a`` rows off the top and the
        bottom, ``b`` columns off each side; ``((t, b), (l, r))``: each side
        on its own.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.cropping = normalize_cropping(cropping)
        self._n = None

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Cropping2D layer {self.name!r} expects images of shape "
                             f"(None, height, width, channels), got {format_shape(input_shape)}")
        (top, bottom), (left, right) = self.cropping
        if top + bottom >= input_shape[0] or left + right >= input_shape[1]:
            raise ValueError(f"Cropping2D layer {self.name!r}: cropping {self.cropping} leaves nothing of images "
                             f"{format_shape(input_shape)}; each side's sum must be smaller than the height or width")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.cropping
        return (input_shape[0] - top - bottom, input_shape[1] - left - right, input_shape[2])

    def forward(self, x, training=False):
        self.check_input(x)
        (top, _), (left, _) = self.cropping
        h, w, _ = self._output_shape
        self._n = x.shape[0] if training else None
        return np.ascontiguousarray(x[:, top:top + h, left:left + w, :])

    def backward(self, grad_output):
        if self._n is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        (top, _), (left, _) = self.cropping
        h, w, _ = self._output_shape
        grad_x = np.zeros((grad_output.shape[0], *self.input_shape), dtype=grad_output.dtype)
        grad_x[:, top:top + h, left:left + w, :] = grad_output
        return grad_x

    def get_config(self):
        return {**super().get_config(), "cropping": [list(side) for side in self.cropping]}
