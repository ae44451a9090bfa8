"""Zero rows and columns around NHWC images."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["ZeroPadding2D"]


def _pair(value, what):
    """``3`` -> ``(3, 3)``; ``(1, 2)`` stays; anything else is a clear error."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{what} must be an int or a tuple of 2 ints, got {value!r}")
    if min(value) < 0:
        raise ValueError(f"{what} must not be negative, got {tuple(value)}")
    return tuple(value)


def normalize_zero_padding(padding) -> tuple:
    """Keras's three forms, as ``((top, bottom), (left, right))``.

    ``1`` -> ``((1, 1), (1, 1))``; ``(a, b)`` -> ``((a, a), (b, b))`` (``a``
    rows above and below, ``b`` columns left and right);
    ``((t, b), (l, r))`` stays (each inner entry may also be an int).
    """
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (_pair(padding, "padding"),) * 2
    if not isinstance(padding, (tuple, list)) or len(padding) != 2:
        raise TypeError(f"padding must be an int, a tuple of 2 ints (rows, columns) or a tuple of 2 tuples of "
                        f"2 ints ((top, bottom), (left, right)), got {padding!r}")
    return _pair(padding[0], "padding of the rows"), _pair(padding[1], "padding of the columns")


class ZeroPadding2D(Layer):
    r"""Add zero rows above and below, zero columns left and right of every image.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, t + H + b, l + W + r, C) for
    ``padding=((t, b), (l, r))``.

    ``y`` copies ``x`` into its middle, so the gradient of each input cell is
    the gradient of its copy, and the zeros' gradients go nowhere:

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} = g_{n,\ t + r,\ l + s,\ c}

    Parameters
    ----------
    padding : int, tuple of 2 ints or tuple of 2 tuples of 2 ints
        ``1`` (default): one cell on every side; ``(a, b)``: ``a`` rows above
        and below, ``b`` columns on each side; ``((t, b), (l, r))``: each side
        on its own.
    """

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_zero_padding(padding)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"ZeroPadding2D layer {self.name!r} expects images of shape "
                             f"(None, height, width, channels), got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        return (top + input_shape[0] + bottom, left + input_shape[1] + right, input_shape[2])

    def forward(self, x, training=False):
        self.check_input(x)
        return np.pad(x, ((0, 0), *self.padding, (0, 0)))

    def backward(self, grad_output):
        (top, _), (left, _) = self.padding
        h, w, _ = self.input_shape
        return np.ascontiguousarray(grad_output[:, top:top + h, left:left + w, :])

    def get_config(self):
        return {**super().get_config(), "padding": [list(side) for side in self.padding]}
