"""Multiplicative Gaussian noise of mean 1 while training (Gaussian dropout)."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import Layer

__all__ = ["GaussianDropout"]


class GaussianDropout(Layer):
    r"""Multiply each input by Gaussian noise of mean 1 and variance ``rate / (1 - rate)`` while training.

    That is the variance of dropout's :math:`m / (1 - r)`, without the zeros.
    Forward (training): :math:`y = x \odot \varepsilon`,
    :math:`\varepsilon \sim N(1, r / (1 - r))`; backward uses the same draws:
    :math:`\partial L/\partial x = \partial L/\partial y \odot \varepsilon`.
    Inference is the identity (the noise's mean is 1).

    Parameters
    ----------
    rate : float in [0, 1)
    seed : int, optional
        Fixes the noise sequence (else the library's generators, as :class:`Dropout`).
    """

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"GaussianDropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.generator = rng.generator_from_seed(seed)
        self._noise = None

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following noise from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0.0:
            self._noise = None
            return x
        stddev = np.sqrt(self.rate / (1.0 - self.rate))
        self._noise = (1.0 + stddev * self.generator.standard_normal(x.shape)).astype(x.dtype, copy=False)
        return x * self._noise

    def backward(self, grad_output):
        return grad_output if self._noise is None else grad_output * self._noise

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
