"""Identity: the layer that changes nothing (Keras's ``Identity``), and the base of layers that pass ``x`` on."""

from nnscratch.layers.base import Layer

__all__ = ["Identity"]


class Identity(Layer):
    r"""``y = x``, so :math:`\partial L/\partial x = \partial L/\partial y`. A mask passes through."""

    supports_masking = True

    def forward(self, x, training=False):
        self.check_input(x)
        return x

    def backward(self, grad_output):
        return grad_output
