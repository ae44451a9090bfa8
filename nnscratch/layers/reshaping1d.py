"""Along the steps of sequences (N, steps, C): ZeroPadding1D, Cropping1D, UpSampling1D."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.base import Layer, format_shape

__all__ = ["ZeroPadding1D", "Cropping1D", "UpSampling1D"]


def _sides(value, what):
    """``3`` -> ``(3, 3)``; ``(1, 2)`` stays: (at the start, at the end), neither negative."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{what} must be an int or a tuple of 2 ints (start, end), got {value!r}")
    if min(value) < 0:
        raise ValueError(f"{what} must not be negative, got {tuple(value)}")
    return tuple(int(v) for v in value)


class _StepsLayer(Layer):
    """A layer of (N, steps, C) sequences."""

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects sequences of shape "
                             f"(None, steps, channels), got {format_shape(input_shape)}")
        super().build(input_shape)


class ZeroPadding1D(_StepsLayer):
    r"""Add ``a`` zero steps before and ``b`` after every sequence: (N, T, C) -> (N, a + T + b, C).

    ``y`` copies ``x`` into its middle, so each input's gradient is that of its
    copy, and the zeros' gradients go nowhere:

    .. math:: \frac{\partial L}{\partial x_{n,t,c}} = g_{n,\ a + t,\ c}

    Parameters
    ----------
    padding : int or tuple of 2 ints
        ``1`` (default): one step at each end; ``(a, b)``: ``a`` at the start, ``b`` at the end.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _sides(padding, "padding")

    def compute_output_shape(self, input_shape):
        return (self.padding[0] + input_shape[0] + self.padding[1], input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        return np.pad(x, ((0, 0), self.padding, (0, 0)))

    def backward(self, grad_output):
        start, steps = self.padding[0], self.input_shape[0]
        return np.ascontiguousarray(grad_output[:, start:start + steps, :])

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding)}


class Cropping1D(_StepsLayer):
    r"""Cut ``a`` steps off the start and ``b`` off the end of every sequence: (N, T, C) -> (N, T - a - b, C).

    Backward puts each gradient back where its step came from, zeros where steps were cut:

    .. math:: \frac{\partial L}{\partial x_{n,t,c}} = g_{n,\ t - a,\ c} \ \text{for}\ a \le t < T - b, \ 0 \ \text{else}

    Parameters
    ----------
    cropping : int or tuple of 2 ints
        ``(1, 1)`` (default); ``a``: as many at each end; ``(a, b)``: at the start, at the end.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _sides(cropping, "cropping")

    def build(self, input_shape):
        if len(input_shape) == 2 and sum(self.cropping) >= input_shape[0]:
            raise ValueError(f"Cropping1D layer {self.name!r}: cropping {self.cropping} leaves no step of "
                             f"sequences of shape {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] - sum(self.cropping), input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        start, steps = self.cropping[0], x.shape[1] - sum(self.cropping)
        return np.ascontiguousarray(x[:, start:start + steps, :])

    def backward(self, grad_output):
        return np.pad(grad_output, ((0, 0), self.cropping, (0, 0)))

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


class UpSampling1D(_StepsLayer):
    r"""Repeat every step ``s`` times: (N, T, C) -> (N, s T, C), ``y[:, t, :] = x[:, t // s, :]``.

    Backward sums the gradients of each step's copies:

    .. math:: \frac{\partial L}{\partial x_{n,t,c}} = \sum_{k < s} g_{n,\ s t + k,\ c}

    Both run as :class:`UpSampling2D`'s nearest-neighbour kernels on (N, T, 1, C)
    with the size ``(s, 1)``.

    Parameters
    ----------
    size : int
        How many copies of each step (default 2).
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"UpSampling1D's size must be an int, got {size!r}")
        if size < 1:
            raise ValueError(f"UpSampling1D's size must be a positive integer, got {size}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] * self.size, input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        n, steps, c = x.shape
        y = kernels.pooling_backend().upsample_nearest2d_forward(x.reshape(n, steps, 1, c), self.size, 1)
        return y.reshape(n, steps * self.size, c)

    def backward(self, grad_output):
        n, steps, c = grad_output.shape
        dx = kernels.pooling_backend().upsample_nearest2d_backward(grad_output.reshape(n, steps, 1, c), self.size, 1)
        return dx.reshape(n, steps // self.size, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}
