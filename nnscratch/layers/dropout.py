"""Inverted dropout."""

import numpy as np

from nnscratch import kernels, rng
from nnscratch.layers.base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    r"""Zero each input with probability ``rate`` while training; scale the rest by ``1/(1-rate)``.

    Forward (training): draw a mask :math:`m_i \sim \text{Bernoulli}(1 - r)` and
    return :math:`y = x \odot m / (1 - r)`, so the expected value of ``y`` is ``x``
    and inference needs no change (``y = x``). Backward uses the same mask:
    :math:`\partial L/\partial x = \partial L/\partial y \odot m / (1 - r)`.

    Parameters
    ----------
    rate : float in [0, 1)
    seed : int, optional
        Fixes the mask sequence. Without it, masks come from the library's
        generators (see :func:`nnscratch.set_random_seed` and ``fit(seed=...)``).
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.generator = rng.generator_from_seed(seed)

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following masks from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0.0:
            self._scaled_mask = None
            return x
        uniform = self.generator.random(x.shape, dtype=np.float32)
        y, self._scaled_mask = kernels.backend().dropout_forward(x, uniform, self.rate)  # keep where u >= rate
        return y

    def backward(self, grad_output):
        if self._scaled_mask is None:
            return grad_output
        return grad_output * self._scaled_mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
