"""Shared forward/backward plumbing for layers that end in an activation.

``Dense``, ``Conv2D`` and ``Activation`` compute a pre-activation ``z`` and
return ``y = f(z + b)``. Backward first undoes ``f`` (``dz = f'(z) dy``, from
the cached output ``y``), then the layer's own linear part in
:meth:`backward_from_preactivation`. A model whose last layer is softmax and
whose loss is cross-entropy calls :meth:`backward_from_preactivation`
directly with the fused gradient ``(p - t) / N`` (mean over the batch of ``N``), reading
``self.logits``; likewise a last sigmoid layer with binary cross-entropy,
whose logits the layer keeps only when ``keep_logits`` is set (``compile``
sets it on such a layer).
"""

import abc

from nnscratch import activations
from nnscratch.layers.base import Layer

__all__ = ["ActivatedLayer"]


class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z + bias)``."""

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.logits = None  # pre-activation values, kept for softmax layers (and sigmoid ones with keep_logits)
        self.keep_logits = False  # a sigmoid output layer's logits are wanted (fused binary cross-entropy)
        self._y = None

    def _activate(self, z, bias, training):
        """Return ``f(z + bias)``; keep ``y`` for backward when training."""
        logits = None
        if self.keep_logits and self.activation == "sigmoid":  # the sigmoid is applied in place: copy z first
            if bias is not None:
                z += bias
                bias = None
            logits = z.copy()
        y = activations.forward(z, bias, self.activation)  # softmax: z += bias, in place
        self.logits = z if self.activation == "softmax" else logits
        self._y = y if training else None
        return y

    def _keep(self, y, training, logits=None):
        """Keep ``y``, already ``f(z + bias)`` (a kernel fused it), for backward when training; and a softmax's logits."""
        self.logits = logits
        self._y = y if training else None
        return y

    def backward(self, grad_output):
        if self._y is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        grad_z = activations.backward(grad_output, self._y, self.activation)
        return self.backward_from_preactivation(grad_z)

    @abc.abstractmethod
    def backward_from_preactivation(self, grad_z):
        """Given dL/dz (z = pre-activation), set parameter gradients and return dL/dx."""

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}
