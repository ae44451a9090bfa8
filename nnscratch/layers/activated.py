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

``gelu``, ``silu``, ``mish``, ``hard_silu``, ``tanh_shrink`` and
``hard_tanh`` are the exceptions to "from the output"
(``activations.needs_preactivation``): their derivative needs ``z + b``
itself, so a training forward keeps it too (a copy made before the activation
overwrites it, or the input of an ``Activation`` layer, which stays
unchanged); an inference forward keeps nothing. The other activations keep
``y`` only, as before.
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
        self._alpha = None  # the activation's parameter (ELU's alpha, LeakyReLU's slope); None: Keras's default
        self._y = None
        self._z = None  # the pre-activation z + b, kept by a training forward where backward needs it (gelu, ...)

    def _activates_after_product(self, training) -> bool:
        """Whether ``f`` must be applied by :meth:`_activate` after the layer's product, not fused into its kernel.

        Softmax and log_softmax need whole rows; gelu, silu, ... (``needs_preactivation``) in
        training keep ``z + b`` for backward, which a kernel that applies ``f``
        as it stores would not leave.
        """
        row_wise = self.activation in activations.ROW_WISE
        return row_wise or (training and activations.needs_preactivation(self.activation))

    def _activate(self, z, bias, training, preactivation=None):
        """Return ``f(z + bias)``; keep ``y`` for backward when training (and ``z + bias`` for gelu, silu, ...).

        ``preactivation``: an array equal to ``z + bias`` that stays unchanged
        until backward (an ``Activation`` layer's input), kept instead of a copy.
        """
        logits = None
        keep_z = training and activations.needs_preactivation(self.activation)
        if (self.keep_logits and self.activation == "sigmoid") or (keep_z and preactivation is None):
            # the activation is applied in place: copy z + b first
            if bias is not None:
                z += bias
                bias = None
            logits = z.copy()
        y = activations.forward(z, bias, self.activation, self._alpha)  # softmax: z += bias, in place
        if keep_z:
            self._z, logits = (logits if preactivation is None else preactivation), None
        else:
            self._z = None
        self.logits = z if self.activation == "softmax" else logits
        self._y = y if training else None
        return y

    def _keep(self, y, training, logits=None):
        """Keep ``y``, already ``f(z + bias)`` (a kernel fused it), for backward when training; and softmax's logits."""
        self.logits = logits
        self._y = y if training else None
        self._z = None  # a fused kernel leaves no pre-activation: backward raises for gelu, silu, ...
        return y

    def backward(self, grad_output):
        if self._y is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        if self._z is None and activations.needs_preactivation(self.activation):
            raise RuntimeError(f"layer {self.name!r}: the derivative of {self.activation} needs the pre-activation, "
                               "which this layer's last training forward did not keep")
        grad_z = activations.backward(grad_output, self._y, self.activation, self._z, self._alpha)
        return self.backward_from_preactivation(grad_z)

    @abc.abstractmethod
    def backward_from_preactivation(self, grad_z):
        """Given dL/dz (z = pre-activation), set parameter gradients and return dL/dx."""

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}
