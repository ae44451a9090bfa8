"""Turn what ``fit``/``evaluate``/``predict`` receive into batches.

Three kinds of input are accepted, as in Keras:

* arrays ``x`` (and ``y``): cut into batches of ``batch_size``, reshuffled each
  epoch when asked;
* a batch Sequence: any object with ``len()`` and indexing that yields
  ``(x_batch, y_batch)`` (such as ``ImageDataGenerator.flow``); one epoch is
  ``len()`` batches and ``on_epoch_end()`` is called after each, if it exists;
* a generator (iterator) of ``(x_batch, y_batch)`` with ``steps_per_epoch``.
"""

import math

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx

__all__ = ["ArrayBatches", "SequenceBatches", "GeneratorBatches", "adapt", "check_features", "is_batch_source"]


def check_features(x, name="x") -> np.ndarray:
    """Return ``x`` as a float array of ``floatx()``; reject NaN and infinity with a clear error."""
    try:
        x = np.asarray(x, dtype=floatx())
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}: {error}") from None
    if not kernels.backend().all_finite(x):
        bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0, 0] if x.ndim else 0
        raise ValueError(f"{name} contains NaN or infinite values (first in sample {bad})")
    return x


def is_batch_source(x) -> bool:
    """True for a Sequence or generator of batches rather than an array."""
    if isinstance(x, (np.ndarray, list, tuple)):
        return False
    return hasattr(x, "__getitem__") and hasattr(x, "__len__") or hasattr(x, "__next__")


class ArrayBatches:
    """Batches of arrays ``x`` and optional ``y``; a fresh order each epoch if shuffling."""

    def __init__(self, x, y, batch_size, shuffle=False, generator=None):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    @property
    def samples(self) -> int:
        """How many samples an epoch yields (Sequences and generators do not say)."""
        return len(self.x)

    def epoch(self):
        """Yield ``(x_batch, y_batch)`` pairs for one epoch (``y_batch`` None without targets)."""
        order = self.generator.permutation(len(self.x)) if self.shuffle else None
        for start in range(0, len(self.x), self.batch_size):
            if order is None:
                index = slice(start, start + self.batch_size)
            else:
                index = np.sort(order[start:start + self.batch_size])  # sorted: faster gathers
            yield self.x[index], (None if self.y is None else self.y[index])


class SequenceBatches:
    """Batches from a Keras-style Sequence: ``len()`` batches per epoch."""

    def __init__(self, sequence, steps=None):
        self.sequence = sequence
        self.steps = len(sequence) if steps is None else min(steps, len(sequence))
        if self.steps < 1:
            raise ValueError("the batch Sequence is empty (len() == 0)")

    def __len__(self):
        return self.steps

    def epoch(self):
        for i in range(self.steps):
            yield _split(self.sequence[i])
        if hasattr(self.sequence, "on_epoch_end"):
            self.sequence.on_epoch_end()


class GeneratorBatches:
    """Batches from an endless iterator: ``steps`` batches make an epoch."""

    def __init__(self, iterator, steps):
        if steps is None:
            raise ValueError("a generator of batches needs steps_per_epoch (or validation_steps / steps)")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.iterator = iterator
        self.steps = int(steps)

    def __len__(self):
        return self.steps

    def epoch(self):
        for _ in range(self.steps):
            try:
                batch = next(self.iterator)
            except StopIteration:
                raise ValueError(f"the generator ran out of batches before {self.steps} steps") from None
            yield _split(batch)


def _split(batch):
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch
    if isinstance(batch, tuple) and len(batch) == 1:
        return batch[0], None
    return batch, None


def adapt(x, y=None, batch_size=32, shuffle=False, generator=None, steps=None):
    """Return a batch source for arrays, a Sequence or a generator."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if is_batch_source(x):
        if y is not None:
            raise ValueError("y must be None when x is a Sequence or generator that yields (x, y) batches")
        if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
            return SequenceBatches(x, steps)
        return GeneratorBatches(x, steps)
    return ArrayBatches(x, y, int(batch_size), shuffle=shuffle, generator=generator)
