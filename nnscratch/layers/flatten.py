"""Flatten each sample into a vector."""

import math

from nnscratch.layers.base import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...), in C order.

    For NHWC images this is Keras's channels-last order, so a Dense kernel
    trained in Keras after Flatten loads unchanged. Backward reshapes the
    gradient back: reshaping moves no numbers, so nothing else changes.
    """

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        return grad_output.reshape(grad_output.shape[0], *self.input_shape)
