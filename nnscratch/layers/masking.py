"""Masking: mark the padding steps of a batch of sequences, and zero them."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Masking"]


class Masking(Layer):
    r"""Mask the steps whose features all equal ``mask_value``; set them to zero.

    Shapes: ``x`` (N, T, F) -> ``y`` (N, T, F), and the mask (N, T)

    .. math:: m_{n,t} = \exists f: x_{n,t,f} \neq v, \qquad y_{n,t,f} = m_{n,t}\, x_{n,t,f},

    as Keras (``v`` is ``mask_value``). The layers after it read the mask (a
    recurrent layer leaves its state as it was at a masked step;
    :mod:`nnscratch.models.masking`). Backward: :math:`\partial L/\partial
    x_{n,t,f} = m_{n,t}\, g_{n,t,f}`; the mask itself is a step function of
    ``x``, whose derivative is zero wherever it is defined.

    Parameters
    ----------
    mask_value : float
        The value of every feature of a padding step (Keras's default 0).
    """

    makes_mask = True
    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer, np.floating)):
            raise TypeError(f"mask_value must be a number, got {mask_value!r}")
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)
        self._mask = None

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Masking layer {self.name!r} expects sequences of shape (None, timesteps, features), "
                             f"got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_mask(self, inputs, mask):
        """``m`` (N, T): whether some feature of the step differs from ``mask_value``."""
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def forward(self, x, training=False):
        self.check_input(x)
        mask = self.compute_mask(x, None)
        self._mask = mask if training else None
        return x * mask[..., None].astype(x.dtype)

    def backward(self, grad_output):
        if self._mask is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        return None if self.skip_input_gradient else grad_output * self._mask[..., None].astype(grad_output.dtype)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
