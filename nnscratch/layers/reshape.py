"""Reshape each sample to a target shape."""

import math

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Reshape"]


class Reshape(Layer):
    """Reshape (N, d1, d2, ...) to (N, *target_shape), in C order.

    ``target_shape`` leaves out the batch axis, as in Keras; one of its
    entries may be ``-1``, which becomes whatever size keeps the number of
    values of a sample: ``Reshape((4, -1))`` turns (N, 3, 4, 2) into
    (N, 4, 6). The sizes must match, which is checked when the layer is built.

    Like :class:`~nnscratch.layers.Flatten`, reshaping moves no numbers, so
    backward reshapes the gradient back to the input's shape.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(target_shape, (tuple, list)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in target_shape):
            raise TypeError(f"target_shape must be a tuple of ints (without the batch axis), got {target_shape!r}")
        if any(d < 1 and d != -1 for d in target_shape) or list(target_shape).count(-1) > 1:
            raise ValueError(f"target_shape must hold positive sizes and at most one -1 (the size to infer), "
                             f"got {tuple(target_shape)}")
        self.target_shape = tuple(target_shape)

    def compute_output_shape(self, input_shape):
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape layer {self.name!r} cannot reshape {format_shape(input_shape)} "
                                 f"({size} values a sample) to {format_shape(self.target_shape)}: {size} is not "
                                 f"a multiple of {known}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if size != known:
            raise ValueError(f"Reshape layer {self.name!r} cannot reshape {format_shape(input_shape)} "
                             f"({size} values a sample) to {format_shape(self.target_shape)} ({known} values)")
        return self.target_shape

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(x.shape[0], *self._output_shape)

    def backward(self, grad_output):
        return grad_output.reshape(grad_output.shape[0], *self.input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
