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

    With ``noise_shape`` (Keras's argument: the shape of the mask, batch axis
    included, ``None`` for an axis of the input's size) the mask is drawn in
    that shape and broadcast: ``(None, 1, 1, C)`` on images drops whole
    channels of a sample, as :class:`~nnscratch.layers.SpatialDropout2D` does.

    Parameters
    ----------
    rate : float in [0, 1)
    noise_shape : tuple or None
        The mask's shape, batch axis first; each entry ``None``, 1 or the input's size.
    seed : int, optional
        Fixes the mask sequence. Without it, masks come from the library's
        generators (see :func:`nnscratch.set_random_seed` and ``fit(seed=...)``).
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"{type(self).__name__} rate must be a number in [0, 1), got {rate!r}")
        if noise_shape is not None and (not isinstance(noise_shape, (tuple, list)) or not all(
                d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1)
                for d in noise_shape)):
            raise TypeError(f"{type(self).__name__}: noise_shape must be None or a tuple of sizes (None for the "
                            f"input's size), batch axis first, got {noise_shape!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else [None if d is None else int(d) for d in noise_shape]
        self.seed = seed
        self.generator = rng.generator_from_seed(seed)

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following masks from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        if self.noise_shape is not None:
            sizes = (None, *input_shape)
            if len(self.noise_shape) != len(sizes) or any(
                    d not in (None, 1, size) for d, size in zip(self.noise_shape[1:], sizes[1:])):
                raise ValueError(f"{type(self).__name__} layer {self.name!r}: noise_shape {tuple(self.noise_shape)} "
                                 f"does not fit inputs of shape {sizes}: one entry an axis, each None, 1 or the "
                                 "axis's size")
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0.0:
            self._scaled_mask = None
            return x
        if self.noise_shape is not None:           # one draw for each cell of the mask, broadcast over the rest
            shape = tuple(size if d is None else d for d, size in zip(self.noise_shape, x.shape))
            keep = self.generator.random(shape, dtype=np.float32) >= self.rate
            self._scaled_mask = keep * x.dtype.type(1.0 / (1.0 - self.rate))
            return x * self._scaled_mask
        uniform = self.generator.random(x.shape, dtype=np.float32)
        y, self._scaled_mask = kernels.backend().dropout_forward(x, uniform, self.rate)  # keep where u >= rate
        return y

    def backward(self, grad_output):
        if self._scaled_mask is None:
            return grad_output
        return grad_output * self._scaled_mask

    def get_config(self):
        config = {**super().get_config(), "rate": self.rate, "seed": self.seed}
        return config if self.noise_shape is None else {**config, "noise_shape": self.noise_shape}
