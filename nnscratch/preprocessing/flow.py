"""A Sequence of augmented mini-batches, what ``ImageDataGenerator.flow`` returns.

Like Keras's ``NumpyArrayIterator`` it has ``len()`` batches per epoch,
``seq[i]`` gives batch ``i`` and ``on_epoch_end()`` moves to the next epoch
(a new shuffle). Unlike Keras, batch ``i`` of epoch ``e`` depends only on
``(seed, e, i)``: asking for it twice gives the same images, in any order.
"""

import math
import numbers

import numpy as np

from nnscratch.rng import generator_from_seed

__all__ = ["NumpyArrayIterator"]

# Stream keys under the flow's seed: one for the shuffles, one for augmentation.
_SHUFFLE, _AUGMENT = 0, 1


class NumpyArrayIterator:
    """Augmented batches over in-memory arrays.

    Parameters
    ----------
    generator : ImageDataGenerator
        Supplies the random transforms (``generator.transform``).
    x : array_like, shape (N, H, W, C)
        Images (kept as given; each batch is converted and augmented when asked for).
    y : array_like, shape (N, ...), optional
        Labels, returned untouched alongside the images; without ``y`` a batch
        is just the images (as in Keras).
    batch_size : int
        Images per batch; the last batch of an epoch may be smaller.
    shuffle : bool
        Draw a new order of the samples every epoch.
    sample_weight : array_like, shape (N,), optional
        One weight a sample (needs ``y``): batches are then
        ``(x_batch, y_batch, w_batch)``, which ``fit`` takes as sample weights (as Keras).
    seed : int or None
        Fixes the shuffles and the transforms. ``None`` takes a seed from the
        generator's own stream, so a seeded generator still gives reproducible flows.
    """

    def __init__(self, generator, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"flow expects x as a 4-D NHWC batch (N, H, W, C), got shape {x.shape}")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or len(y) != len(x):
                raise ValueError(
                    f"x and y must have the same number of samples, got {len(x)} images "
                    f"and y of shape {y.shape}")
        if sample_weight is not None:
            if y is None:
                raise ValueError("flow: sample_weight needs y (batches are (x, y, sample_weight))")
            sample_weight = np.asarray(sample_weight)
            if sample_weight.shape != (len(x),):
                raise ValueError(f"flow: sample_weight must have shape ({len(x)},), one weight a sample, "
                                 f"got {sample_weight.shape}")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.generator = generator
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        if seed is None:
            seed = int(generator.rng.integers(2**63))
        # Validates the seed (TypeError for bad ones) as a side effect.
        generator_from_seed(seed)
        self.seed = int(seed)
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self):
        n = len(self.x)
        if not self.shuffle:
            return np.arange(n)
        return generator_from_seed(self.seed, _SHUFFLE, self.epoch).permutation(n)

    def __len__(self):
        """Batches per epoch: ``ceil(N / batch_size)``."""
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        """Return batch ``index`` of the current epoch: ``(x_batch, y_batch)``, ``(x_batch, y_batch, w_batch)``
        with sample weights, or ``x_batch`` without ``y``."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"batch index must be an integer, got {index!r}")
        if not 0 <= index < len(self):
            raise IndexError(f"batch index must be in [0, {len(self)}), got {index}")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = generator_from_seed(self.seed, _AUGMENT, self.epoch, int(index))
        x_batch = self.generator.transform(self.x[rows], rng=rng)
        if self.y is None:
            return x_batch
        if self.sample_weight is None:
            return x_batch, self.y[rows]
        return x_batch, self.y[rows], self.sample_weight[rows]

    def __iter__(self):
        """Iterate over the batches of the current epoch."""
        for index in range(len(self)):
            yield self[index]

    def on_epoch_end(self):
        """Start the next epoch: new transforms and, with ``shuffle``, a new order."""
        self.epoch += 1
        self._order = self._epoch_order()
