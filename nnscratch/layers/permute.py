"""Permute the axes of each sample."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Permute"]


class Permute(Layer):
    r"""Reorder the axes of each sample: ``y = x.transpose(0, *dims)``.

    ``dims`` numbers the axes of a sample from 1 (the batch axis, 0, stays
    first), as Keras: ``Permute((2, 1))`` turns (N, steps, features) into
    (N, features, steps).

    A permutation moves every number to a new place and changes none, so
    backward moves the gradient back with the inverse permutation:

    .. math:: y_{n, i_{d_1}, \dots, i_{d_k}} = x_{n, i_1, \dots, i_k}, \qquad
              \frac{\partial L}{\partial x} = g^{\,\text{transposed by } d^{-1}}

    Parameters
    ----------
    dims : tuple of ints
        A permutation of ``1, ..., k`` for samples of ``k`` axes.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dims, (tuple, list)) or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
            raise TypeError(f"dims must be a tuple of ints (a permutation of 1, ..., k), got {dims!r}")
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"dims must be a permutation of 1, ..., {len(dims)} (the axes of a sample, counted "
                             f"from 1 after the batch axis), got {tuple(dims)}")
        self.dims = tuple(int(d) for d in dims)
        self._inverse = (0, *(int(i) + 1 for i in np.argsort(self.dims)))

    def build(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"Permute layer {self.name!r} with dims {self.dims} expects samples of "
                             f"{len(self.dims)} axes, got inputs of shape {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, training=False):
        self.check_input(x)
        return np.ascontiguousarray(x.transpose(0, *self.dims))

    def backward(self, grad_output):
        return np.ascontiguousarray(grad_output.transpose(self._inverse))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}
