r"""Crop NHWC images at a random place while training (Keras's ``RandomCrop``)."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import Layer
from nnscratch.layers.resizing import Resizing, aspect_crop, check_images

__all__ = ["RandomCrop"]


class RandomCrop(Layer):
    r"""A ``height`` x ``width`` window of the batch at a random place in training; a centred one in inference.

    Training, as Keras 3's ``RandomCrop``: when the images are larger than
    the window along both axes, one offset a batch,
    :math:`t \sim U\{0, \dots, H - h\}`, :math:`l \sim U\{0, \dots, W - w\}`,
    and :math:`y = x[t:t+h,\ l:l+w]`; otherwise the window starts at the
    centred window of the target's aspect ratio (resized to ``height`` x
    ``width`` when the image is too small for it). Inference, as Keras
    documents it: the centred window of the target's aspect ratio, resized
    (:class:`~nnscratch.layers.Resizing` with ``crop_to_aspect_ratio``).
    (Keras 3.15 itself returns the images uncropped in inference, another
    shape than its ``compute_output_shape``; nnscratch keeps the documented
    behaviour.) Backward puts the gradient back where the window was (through
    the resize's backward where there was one). Draws from the layer's
    generator (``seed``; ``fit(seed=...)`` reseeds it).
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._inference = Resizing(height, width, crop_to_aspect_ratio=True, data_format=data_format)
        self.height, self.width, self.seed = self._inference.height, self._inference.width, seed
        self.generator = rng.generator_from_seed(seed)
        self._cache = None

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following offsets from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        input_shape = check_images(self, input_shape)
        rows, cols, channels = input_shape
        self._inference.build(input_shape)
        self._random = rows > self.height and cols > self.width
        self._resize = None
        if not self._random:       # Keras: the aspect window's corner, then the target's size, resized if short
            top, left = aspect_crop(rows, cols, self.height, self.width)[:2]
            self._fixed = (top, left)
            window = (min(self.height, rows - top), min(self.width, cols - left), channels)
            if window[:2] != (self.height, self.width):
                self._resize = Resizing(self.height, self.width)
                self._resize.build(window)
        self.input_shape, self._output_shape, self.built = tuple(input_shape), (self.height, self.width, channels), \
            True

    def forward(self, x, training=False):
        self.check_input(x)
        if not training:
            self._cache = None
            return self._inference.forward(x)
        if self._random:
            top = int(self.generator.integers(0, x.shape[1] - self.height + 1))
            left = int(self.generator.integers(0, x.shape[2] - self.width + 1))
        else:
            top, left = self._fixed
        self._cache = (top, left)
        y = x[:, top:top + self.height, left:left + self.width]
        return y if self._resize is None else self._resize.forward(y)

    def backward(self, grad_output):
        if self._cache is None:
            return self._inference.backward(grad_output)
        top, left = self._cache
        grad = grad_output if self._resize is None else self._resize.backward(grad_output)
        full = np.zeros((len(grad_output), *self.input_shape), dtype=grad_output.dtype)
        full[:, top:top + grad.shape[1], left:left + grad.shape[2]] = grad
        return full

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "seed": self.seed}
