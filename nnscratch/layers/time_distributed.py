"""TimeDistributed: the same layer applied to every step of a sequence."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["TimeDistributed"]


class TimeDistributed(Layer):
    r"""Apply ``layer`` to each of the ``T`` steps of an input (N, T, ...), with the same weights.

    The steps are independent samples for ``layer``: forward reshapes the
    input to (N T, ...), runs ``layer.forward`` once, and reshapes its
    output back to (N, T, ...); backward does the same with the gradient.
    Each weight's gradient is then the sum over the steps, as for any weight
    shared by several samples. (A BatchNormalization inside normalises over
    all N T samples, as in Keras.)

    Parameters
    ----------
    layer : Layer
        Any single-input layer; it is built for one step's shape. Its weights
        are the wrapper's (under their own names).
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer) or getattr(layer, "takes_list", False):
            raise TypeError(f"TimeDistributed wraps a single-input layer, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def sublayers(self) -> list:
        return [self.layer]

    def reseed(self, generator: np.random.Generator) -> None:
        """Pass ``generator`` on to the wrapped layer if it draws (a Dropout's masks; ``fit(seed=...)``)."""
        if hasattr(self.layer, "reseed"):
            self.layer.reseed(generator)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed layer {self.name!r} expects inputs (None, timesteps, ...) of at least "
                             f"3 axes, got {format_shape(input_shape)}")
        if not self.layer.built:
            self.layer.build(input_shape[1:])
        elif self.layer.input_shape != tuple(input_shape[1:]):
            raise ValueError(f"layer {self.layer.name!r} was built for {format_shape(self.layer.input_shape)}, "
                             f"but each step of {format_shape(input_shape)} is {format_shape(input_shape[1:])}")
        self.params, self.buffers = self.layer.params, self.layer.buffers
        self.trainable = self.trainable and self.layer.trainable    # the wrapper's switch freezes the layer's weights
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.layer.compute_output_shape(input_shape[1:]))

    def forward(self, x, training=False):
        self.check_input(x)
        n, steps = x.shape[:2]
        y = self.layer.forward(x.reshape(n * steps, *x.shape[2:]), training)
        return y.reshape(n, steps, *y.shape[1:])

    def backward(self, grad_output):
        n, steps = grad_output.shape[:2]
        self.layer.skip_input_gradient = self.skip_input_gradient
        grad = self.layer.backward(grad_output.reshape(n * steps, *grad_output.shape[2:]))
        return None if grad is None else grad.reshape(n, steps, *grad.shape[1:])

    def weight_regularizers(self):
        return self.layer.weight_regularizers()

    def get_config(self):
        return {**super().get_config(), "layer": {"class_name": type(self.layer).__name__,
                                                  "config": self.layer.get_config()}}

    @classmethod
    def from_config(cls, config):
        from nnscratch.layers import get  # the registry of layer classes (it imports this module)

        config = dict(config)
        layer = config.pop("layer")
        return cls(get(layer["class_name"]).from_config(layer["config"]), **config)
