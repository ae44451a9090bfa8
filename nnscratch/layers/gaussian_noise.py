"""Additive Gaussian noise while training: a regulariser, and data augmentation for real-valued inputs."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import Layer

__all__ = ["GaussianNoise"]


class GaussianNoise(Layer):
    r"""Add zero-mean Gaussian noise of standard deviation ``stddev`` while training; the identity in inference.

    Forward (training): :math:`y = x + \sigma \varepsilon`, :math:`\varepsilon \sim N(0, 1)`
    drawn anew each batch. The noise does not depend on ``x``, so backward
    passes the gradient on unchanged: :math:`\partial L/\partial x = \partial L/\partial y`.

    Parameters
    ----------
    stddev : float >= 0
    seed : int, optional
        Fixes the noise sequence (else the library's generators, as :class:`Dropout`).
    """

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.floating)) or not stddev >= 0:
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}")
        self.stddev = float(stddev)
        self.seed = seed
        self.generator = rng.generator_from_seed(seed)

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following noise from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.stddev == 0.0:
            return x
        return x + (self.stddev * self.generator.standard_normal(x.shape)).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        return grad_output

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}
