"""Bidirectional: a recurrent layer run over the sequence both ways, the two outputs merged."""

import numpy as np

from nnscratch.layers.base import Layer
from nnscratch.layers.recurrent import Recurrent

__all__ = ["Bidirectional"]

MERGE_MODES = ("concat", "sum", "ave", "mul")


def _copy(layer, name, go_backwards):
    """A new, unbuilt layer with ``layer``'s configuration, another name and direction (as Keras clones it)."""
    return type(layer).from_config({**layer.get_config(), "name": name, "go_backwards": go_backwards})


class Bidirectional(Layer):
    r"""Run a copy of ``layer`` forwards and another backwards in time; merge their outputs.

    Forward: :math:`y^f = \text{forward\_layer}(x)`, :math:`y^b =
    \text{backward\_layer}(x)` (it reads :math:`x_T, \dots, x_1`); with
    ``return_sequences`` the backward outputs are put back in time order,
    :math:`y^b_t \leftarrow y^b_{T+1-t}`, so that step ``t`` of both sees the
    same position. Then ``merge_mode``: ``"concat"`` (Keras's default,
    ``[y^f, y^b]`` along the last axis, 2 units), ``"sum"``, ``"ave"``
    (their mean) or ``"mul"`` (their product).

    Backward: the merge splits the gradient ``g`` into the two outputs'
    (``concat``: its two halves; ``sum``: ``g`` to both; ``ave``: ``g / 2``
    to both; ``mul``: :math:`g \odot y^b` to the forward output and
    :math:`g \odot y^f` to the backward one), the backward half is put back
    in the backward layer's order, each layer runs its own backward, and,
    as the input fans out to both (docs/backprop.md, 7b),
    :math:`\partial L/\partial x` is the sum of the two.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        Its configuration makes ``forward_layer`` (named ``forward_<name>``)
        and, unless ``backward_layer`` is given, ``backward_layer``
        (``backward_<name>``, ``go_backwards=True``). The wrapper's weights
        are the forward layer's, then the backward layer's (Keras's order).
    merge_mode : str
    backward_layer : SimpleRNN, LSTM or GRU, optional
        The same ``units`` and ``return_sequences`` as ``layer``, and the
        other ``go_backwards``.
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, Recurrent) or (backward_layer is not None and not isinstance(backward_layer,
                                                                                              Recurrent)):
            raise TypeError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer!r}"
                            + ("" if backward_layer is None else f" and {backward_layer!r}"))
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r} (None, two outputs, "
                             "is not supported: nnscratch layers have one output)")
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = _copy(layer, f"forward_{layer.name}", layer.go_backwards)
        self.backward_layer = (_copy(layer, f"backward_{layer.name}", True) if backward_layer is None
                               else backward_layer)
        self._given_backward = backward_layer is not None
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(f"the forward and backward layers need different go_backwards, both are "
                             f"{forward.go_backwards}")
        for attribute in ("units", "return_sequences"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ValueError(f"the forward and backward layers need the same {attribute}, got "
                                 f"{getattr(forward, attribute)!r} and {getattr(backward, attribute)!r}")
        self.return_sequences = forward.return_sequences
        # as Keras: with a mask, a masked step outputs zeros in both directions (the two then line up)
        forward.zero_output_for_mask = backward.zero_output_for_mask = self.return_sequences

    supports_masking = uses_mask = True

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def output_masked(self, input_masked: bool) -> bool:
        return input_masked and self.return_sequences

    def sublayers(self) -> list:
        return [self.forward_layer, self.backward_layer]

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the two layers' dropout masks from two streams spawned from ``generator`` (``fit(seed=...)``)."""
        forward, backward = generator.spawn(2)
        self.forward_layer.reseed(forward)
        self.backward_layer.reseed(backward)

    def build(self, input_shape):
        for prefix, layer in (("forward", self.forward_layer), ("backward", self.backward_layer)):
            layer.build(input_shape)
            for name, param in layer.params.items():
                self.params[f"{prefix}_{name}"] = param
        self.trainable = self.trainable     # the copies follow the wrapper's trainable
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        return (*shape[:-1], 2 * shape[-1]) if self.merge_mode == "concat" else shape

    def forward(self, x, training=False, mask=None):
        self.check_input(x)
        forward = self.forward_layer.forward(x, training, mask=mask)
        backward = self.backward_layer.forward(x, training, mask=mask)
        if self.return_sequences:
            backward = backward[:, ::-1]
        self._outputs = (forward, backward) if training and self.merge_mode == "mul" else None
        if self.merge_mode == "concat":
            return np.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "ave":
            return (forward + backward) / forward.dtype.type(2)
        return forward * backward

    def backward(self, grad_output):
        units = self.forward_layer.units
        if self.merge_mode == "concat":
            grad_forward, grad_backward = grad_output[..., :units], grad_output[..., units:]
        elif self.merge_mode == "sum":
            grad_forward = grad_backward = grad_output
        elif self.merge_mode == "ave":
            grad_forward = grad_backward = grad_output / grad_output.dtype.type(2)
        else:
            forward, backward = self._outputs
            grad_forward, grad_backward = grad_output * backward, grad_output * forward
        if self.return_sequences:
            grad_backward = grad_backward[:, ::-1]
        for layer in (self.forward_layer, self.backward_layer):
            layer.skip_input_gradient = self.skip_input_gradient
        grad_x = self.forward_layer.backward(np.ascontiguousarray(grad_forward))
        grad_x_backward = self.backward_layer.backward(np.ascontiguousarray(grad_backward))
        return None if self.skip_input_gradient else grad_x + grad_x_backward

    def weight_regularizers(self):
        return {f"{prefix}_{name}": regularizer
                for prefix, layer in (("forward", self.forward_layer), ("backward", self.backward_layer))
                for name, regularizer in layer.weight_regularizers().items()}

    def get_config(self):
        wrapped = {"class_name": type(self.forward_layer).__name__,
                   "config": {**self.forward_layer.get_config(),
                              "name": self.forward_layer.name.removeprefix("forward_")}}
        config = {**super().get_config(), "layer": wrapped, "merge_mode": self.merge_mode}
        if self._given_backward:
            config["backward_layer"] = {"class_name": type(self.backward_layer).__name__,
                                        "config": self.backward_layer.get_config()}
        return config

    @classmethod
    def from_config(cls, config):
        from nnscratch.layers import get  # the registry of layer classes (it imports this module)

        config = dict(config)
        layer = config.pop("layer")
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = get(backward["class_name"]).from_config(backward["config"])
        return cls(get(layer["class_name"]).from_config(layer["config"]), backward_layer=backward, **config)
