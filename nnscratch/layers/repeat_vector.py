"""Repeat a vector ``n`` times."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["RepeatVector"]


class RepeatVector(Layer):
    r"""Repeat each sample's vector ``n`` times: (N, F) -> (N, n, F), ``y[:, t, :] = x``.

    Every copy's gradient flows back to the one vector, so backward sums over
    the copies:

    .. math:: \frac{\partial L}{\partial x_{b,f}} = \sum_{t < n} g_{b,t,f}

    Parameters
    ----------
    n : int
        How many copies (positive).
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"RepeatVector's n must be an int, got {n!r}")
        if n < 1:
            raise ValueError(f"RepeatVector's n must be a positive integer, got {n}")
        self.n = int(n)

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"RepeatVector layer {self.name!r} expects vectors of shape (None, features), "
                             f"got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (self.n, input_shape[0])

    def forward(self, x, training=False):
        self.check_input(x)
        return np.repeat(x[:, None, :], self.n, axis=1)

    def backward(self, grad_output):
        return grad_output.sum(axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}
