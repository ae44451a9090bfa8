r"""Flip NHWC images left-right and/or upside down at random while training (Keras's ``RandomFlip``)."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import Layer
from nnscratch.layers.resizing import check_images

__all__ = ["RandomFlip"]

MODES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (2, 1)}


class RandomFlip(Layer):
    r"""Each image is mirrored with probability 1/2 along each axis of ``mode``, in training; inference is the identity.

    ``"horizontal"`` reverses the columns (left-right), ``"vertical"`` the
    rows, ``"horizontal_and_vertical"`` draws both, independently, as Keras
    3's ``RandomFlip``. A flip is a permutation of the pixels, so backward
    applies the same flips to the gradient. The draws come from the layer's
    generator (``seed``; ``fit(seed=...)`` reseeds it), so a seeded run is
    bit-identical.
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"RandomFlip: mode must be one of {tuple(MODES)}, got {mode!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"RandomFlip: only channels_last images (NHWC), got data_format={data_format!r}")
        self.mode, self.seed = mode, seed
        self.generator = rng.generator_from_seed(seed)
        self._flips = None

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following flips from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        input_shape = check_images(self, input_shape)
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training:
            self._flips = None
            return x
        self._flips = [(axis, self.generator.random(len(x)) < 0.5) for axis in MODES[self.mode]]
        return self._flip(x)

    def _flip(self, x):
        """``x`` with each image flipped along the axes its draws chose."""
        for axis, chosen in self._flips:
            x = np.where(chosen.reshape(-1, 1, 1, 1), np.flip(x, axis=axis), x)
        return x

    def backward(self, grad_output):
        if self._flips is None:
            return grad_output
        for axis, chosen in reversed(self._flips):
            grad_output = np.where(chosen.reshape(-1, 1, 1, 1), np.flip(grad_output, axis=axis), grad_output)
        return grad_output

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}
