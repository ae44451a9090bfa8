"""What the random image layers that change pixel values share (RandomContrast, RandomBrightness)."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import Layer
from nnscratch.layers.resizing import check_images

__all__ = ["RandomImageLayer", "factor_range", "value_range_pair"]


def factor_range(kind, factor, bounds) -> tuple:
    """Keras's ``factor``: a number ``f`` is ``(-f, f)`` cut to ``bounds``; a pair is sorted and must meet them."""
    if isinstance(factor, (tuple, list)) and len(factor) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in factor):
        low, high = sorted(float(v) for v in factor)
        if low >= bounds[0] and high <= bounds[1]:
            return low, high
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 <= abs(factor) <= bounds[1]:
        return max(-abs(float(factor)), bounds[0]), abs(float(factor))
    raise ValueError(f"{kind}: factor must be a number or a pair of numbers in [{bounds[0]}, {bounds[1]}], "
                     f"got {factor!r}")


def value_range_pair(kind, value_range) -> tuple:
    """``value_range`` as a sorted pair of numbers (the range of the pixel values)."""
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError(f"{kind}: value_range must be a pair (low, high), got {value_range!r}")
    return tuple(sorted(float(v) for v in value_range))


class RandomImageLayer(Layer):
    """A layer that draws one value an image in training (from its generator, ``seed``) and clips to ``value_range``.

    Forward (training): one draw :math:`d` an image from :meth:`draw_range`,
    :math:`y = \\operatorname{clip}(\\text{change}(x, d), a, b)`; the identity in
    inference. Backward: ``change_gradient`` of :math:`g` where the clip let
    the value through (0 where it cut it). Subclasses set ``factor_bounds``
    and give :meth:`change` and :meth:`change_gradient`.
    """

    factor_bounds = (-1.0, 1.0)

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor_range(type(self).__name__, factor, self.factor_bounds)
        self.value_range = value_range_pair(type(self).__name__, value_range)
        self.seed, self.generator = seed, rng.generator_from_seed(seed)
        self._cache = None

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following values from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        super().build(check_images(self, input_shape))

    def draw_range(self) -> tuple:
        """The interval of the draws (``factor`` here)."""
        return self.factor

    def change(self, x, draws):
        raise NotImplementedError

    def change_gradient(self, grad, draws):
        raise NotImplementedError

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = None
        if not training:
            return x
        low, high = self.value_range
        draws = self.generator.uniform(*self.draw_range(), size=(len(x), 1, 1, 1)).astype(x.dtype)
        changed = self.change(x, draws)
        self._cache = (draws, (changed >= low) & (changed <= high))
        return np.clip(changed, low, high)

    def backward(self, grad_output):
        if self._cache is None:
            return grad_output
        draws, inside = self._cache
        return self.change_gradient(grad_output * inside, draws)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range),
                "seed": self.seed}
