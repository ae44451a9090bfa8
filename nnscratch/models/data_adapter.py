"""Turn what ``fit``/``evaluate``/``predict`` receive into batches.

Three kinds of input are accepted, as in Keras:

* arrays ``x`` (and ``y``, and per-sample weights ``sample_weight``): cut into
  batches of ``batch_size``, reshuffled each pass when asked;
* a batch Sequence: any object with ``len()`` and indexing that yields
  ``(x_batch, y_batch)`` or ``(x_batch, y_batch, sample_weight_batch)`` (such
  as ``ImageDataGenerator.flow``); one pass is ``len()`` batches, in a new
  random order each pass when asked (the batches themselves are not mixed),
  and ``on_epoch_end()`` is called after each epoch, if it exists;
* a generator (iterator) of such batches with ``steps_per_epoch``; it is read
  in the order it yields, never shuffled.

Every source yields ``(x, y, sample_weight)`` triples, with None for what is
missing. For a model with several inputs ``x`` is a list of arrays, one per
input (:func:`num_samples`, :func:`take`). :func:`check_sample_weight`, :func:`check_class_weight` and
:func:`class_weight_to_sample_weight` check and convert Keras's
``sample_weight`` and ``class_weight`` arguments.

``steps`` (``steps_per_epoch``, ``validation_steps``, ``steps``) limits an
epoch of arrays or of a Sequence as Keras does: an epoch is ``steps`` batches
and the next epoch goes on where the last one stopped (see
:class:`FiniteBatches`).
"""

import math
import numbers
import warnings

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx

__all__ = ["FiniteBatches", "ArrayBatches", "SequenceBatches", "GeneratorBatches", "adapt", "check_features",
           "is_batch_source", "num_samples", "take", "check_sample_weight", "check_class_weight",
           "class_weight_to_sample_weight"]

#: The batch size of arrays when neither ``batch_size`` nor ``steps`` is given (Keras's default).
DEFAULT_BATCH_SIZE = 32


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


def num_samples(x) -> int:
    """How many samples ``x`` holds: an array's length, or that of the first array of a list (several inputs)."""
    return len(x[0]) if isinstance(x, list) else len(x)


def take(x, index):
    """The samples ``index`` (a slice or an index array) of an array, or of each array of a list (None stays)."""
    return [None if array is None else array[index] for array in x] if isinstance(x, list) else x[index]


def is_batch_source(x) -> bool:
    """True for a Sequence or generator of batches rather than an array (or a dict, which is neither)."""
    if isinstance(x, (np.ndarray, list, tuple, dict)):
        return False
    return hasattr(x, "__getitem__") and hasattr(x, "__len__") or hasattr(x, "__next__")


def _check_count(value, what):
    """Raise unless ``value`` is None or a positive integer (``batch_size``, ``steps``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class FiniteBatches:
    """What arrays and Sequences share: passes over a fixed number of batches, cut into epochs as Keras does.

    Without ``steps`` an epoch is one whole pass. With ``steps`` an epoch is
    ``steps`` batches, and the next epoch goes on where the last one stopped;
    a new pass (with a new shuffle) begins once the last one is used up. An
    epoch that reaches the end of a pass stops there, with a warning, even if
    it had fewer than ``steps`` batches. With 10 batches a pass:

    * ``steps=2``: epochs 1-5 take batches 0-1, 2-3, ..., 8-9; epoch 6 starts a new pass;
    * ``steps=3``: epochs of 3, 3, 3 and 1 batches, then a new pass;
    * ``steps=15``: every epoch is the 10 batches of one pass.

    ``evaluate`` and ``predict`` make a fresh source, so they read the first
    ``steps`` batches; ``fit`` calls :meth:`restart` before each validation.

    Subclasses give ``num_batches`` (batches in a pass) and ``one_pass()``.
    """

    def __init__(self, steps=None):
        self.steps = _check_count(steps, "steps")
        self._pass = None   # the pass that an epoch with ``steps`` goes on reading
        self._taken = 0     # batches of that pass read so far

    def __len__(self):
        """Batches an epoch runs: ``steps`` if given (as Keras, even beyond one pass), else one pass."""
        return self.num_batches if self.steps is None else self.steps

    def one_pass(self):
        """Yield every batch once, as ``(x_batch, y_batch, sample_weight_batch)`` triples."""
        raise NotImplementedError

    def end_epoch(self):
        """Called after each epoch that ran to its end. Nothing by default."""

    def restart(self):
        """Let the next epoch begin a new pass (fit's validation reads from the start each time)."""
        self._pass = None

    def epoch(self):
        """Yield the ``(x_batch, y_batch, sample_weight_batch)`` triples of one epoch (None for what is missing)."""
        if self.steps is None:
            yield from self.one_pass()
        else:
            yield from self._next_steps()
        self.end_epoch()

    def _next_steps(self):
        """Up to ``steps`` batches, from where the last epoch stopped."""
        if self._pass is None:
            self._pass, self._taken = self.one_pass(), 0
        for _ in range(self.steps):
            if self._taken == self.num_batches:
                warnings.warn(f"the data ran out after {self.num_batches} batches, before steps={self.steps}: "
                              "this epoch stops early and the next one starts a new pass (as Keras)",
                              stacklevel=2)
                break
            self._taken += 1
            yield next(self._pass)
        if self._taken == self.num_batches:
            self._pass = None


class ArrayBatches(FiniteBatches):
    """Batches of arrays ``x``, optional ``y`` and optional ``sample_weight``; a fresh order each pass if shuffling.

    ``generator`` (a NumPy Generator) draws the orders; it is required with ``shuffle``.
    """

    def __init__(self, x, y, batch_size, shuffle=False, generator=None, steps=None, sample_weight=None):
        super().__init__(steps)
        if shuffle and generator is None:
            raise ValueError("shuffling needs a generator (numpy.random.Generator) to draw the order from")
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    @property
    def num_batches(self) -> int:
        return math.ceil(num_samples(self.x) / self.batch_size)

    @property
    def samples(self) -> int:
        """How many samples an epoch from the start of a pass yields (Sequences and generators do not say)."""
        if self.steps is None:
            return num_samples(self.x)
        return min(num_samples(self.x), self.steps * self.batch_size)

    def one_pass(self):
        count = num_samples(self.x)
        order = self.generator.permutation(count) if self.shuffle else None
        for start in range(0, count, self.batch_size):
            if order is None:
                index = slice(start, start + self.batch_size)
            else:
                index = np.sort(order[start:start + self.batch_size])  # sorted: faster gathers
            yield (take(self.x, index), None if self.y is None else take(self.y, index),
                   None if self.sample_weight is None else take(self.sample_weight, index))


class SequenceBatches(FiniteBatches):
    """Batches from a Keras-style Sequence: ``len()`` batches a pass.

    With ``shuffle`` each pass reads the batches in a new order drawn from
    ``generator``, as Keras 3 does for a PyDataset (the samples inside a batch
    stay as the Sequence gives them). ``on_epoch_end()`` of the Sequence, if
    it has one, is called after each epoch.
    """

    def __init__(self, sequence, steps=None, shuffle=False, generator=None):
        super().__init__(steps)
        if shuffle and generator is None:
            raise ValueError("shuffling needs a generator (numpy.random.Generator) to draw the order from")
        self.sequence = sequence
        self.shuffle = shuffle
        self.generator = generator
        if len(sequence) < 1:
            raise ValueError("the batch Sequence is empty (len() == 0)")

    @property
    def num_batches(self) -> int:
        return len(self.sequence)

    def one_pass(self):
        count = len(self.sequence)
        order = self.generator.permutation(count) if self.shuffle else range(count)
        for i in order:
            yield _split(self.sequence[int(i)])

    def end_epoch(self):
        if hasattr(self.sequence, "on_epoch_end"):
            self.sequence.on_epoch_end()


class GeneratorBatches:
    """Batches from an endless iterator: ``steps`` batches make an epoch; each epoch reads on."""

    def __init__(self, iterator, steps):
        if steps is None:
            raise ValueError("a generator of batches needs steps_per_epoch (or validation_steps / steps)")
        self.iterator = iterator
        self.steps = _check_count(steps, "steps")

    def __len__(self):
        return self.steps

    def restart(self):
        """Nothing: a generator cannot go back, so the next epoch reads on (as Keras)."""

    def epoch(self):
        for _ in range(self.steps):
            try:
                batch = next(self.iterator)
            except StopIteration:
                raise ValueError(f"the generator ran out of batches before {self.steps} steps") from None
            yield _split(batch)


def _split(batch):
    """``(x, y, w)``, ``(x, y)``, ``(x,)`` or ``x`` as an ``(x, y, w)`` triple (None for what is missing).

    Any other tuple is refused: a Sequence or generator must yield one of these.
    """
    if isinstance(batch, tuple):
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"a batch must be x, (x,), (x, y) or (x, y, sample_weight), got a tuple of "
                             f"{len(batch)} elements")
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


def adapt(x, y=None, batch_size=None, shuffle=False, generator=None, steps=None, sample_weight=None):
    """Return a batch source for arrays, a Sequence or a generator.

    ``batch_size`` None means 32 for arrays, or, with ``steps``,
    ``ceil(samples / steps)`` so that the ``steps`` batches cover the data
    once (both as Keras). ``shuffle`` (with ``generator``) shuffles arrays
    and the batch order of a Sequence; a generator is never shuffled.
    ``sample_weight`` (arrays only, one weight a sample, already checked by
    :func:`check_sample_weight`) is cut into batches with ``x``; a Sequence or
    generator yields its own.
    """
    batch_size = _check_count(batch_size, "batch_size")
    steps = _check_count(steps, "steps")
    if is_batch_source(x):
        if y is not None:
            raise ValueError("y must be None when x is a Sequence or generator that yields (x, y) batches")
        if sample_weight is not None:
            raise ValueError("sample_weight must be None when x is a Sequence or generator: let it yield "
                             "(x, y, sample_weight) batches instead")
        if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
            return SequenceBatches(x, steps, shuffle=shuffle, generator=generator)
        return GeneratorBatches(x, steps)
    if batch_size is None:
        batch_size = max(1, math.ceil(num_samples(x) / steps)) if steps else DEFAULT_BATCH_SIZE
    return ArrayBatches(x, y, batch_size, shuffle=shuffle, generator=generator, steps=steps,
                        sample_weight=sample_weight)


def check_sample_weight(sample_weight, samples, name="sample_weight", positions=()) -> np.ndarray:
    """``sample_weight`` as a float array of ``floatx()``, shape ``(samples,)`` or ``(samples, *positions)``.

    Keras's shapes are accepted, ``(N,)`` and ``(N, 1)``, and for an output
    ``(N, T, K)`` (``positions`` ``(T,)``) one weight a step, ``(N, T)``
    (Keras's temporal weights); every weight must be finite and >= 0 (Keras
    accepts negative and NaN weights, which only give a meaningless loss).
    Integer and boolean weights are converted.
    """
    try:
        weights = np.asarray(sample_weight)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers, got {type(sample_weight).__name__}: {error}") from None
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of numbers (one weight a sample), got dtype {weights.dtype}")
    positions = tuple(positions)
    if weights.ndim == 2 and weights.shape[1] == 1 and positions != (1,):
        weights = weights[:, 0]
    if weights.ndim != 1 and not (positions and weights.shape[1:] == positions):
        steps = f", or one a position of the output, ({samples}, {', '.join(map(str, positions))})" if positions else ""
        raise ValueError(f"{name} must have one weight a sample, shape ({samples},) or ({samples}, 1){steps}, got "
                         f"shape {weights.shape}")
    if len(weights) != samples:
        raise ValueError(f"{name} has {len(weights)} weights but there are {samples} samples")
    weights = weights.astype(floatx(), copy=False)
    if not np.isfinite(weights).all():
        raise ValueError(f"{name} contains NaN or infinite values (first at sample "
                         f"{int(np.argmax(~np.isfinite(weights)))})")
    if weights.size and weights.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {weights.min()} (at sample {int(np.argmin(weights))})")
    return weights


def check_class_weight(class_weight, classes=None) -> dict | None:
    """``class_weight`` as ``{class index: weight}`` with int keys and float values, or a clear error.

    Keys are class indices, integers >= 0 (below ``classes`` when given);
    weights are finite numbers >= 0. Classes without a key weigh 1, as in Keras.
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    checked = {}
    for key, value in class_weight.items():
        integral = isinstance(key, numbers.Integral) or (isinstance(key, float) and key.is_integer())
        if isinstance(key, (bool, np.bool_)) or not integral or key < 0:
            raise ValueError(f"class_weight keys must be class indices (integers >= 0), got {key!r}")
        if classes is not None and key >= classes:
            raise ValueError(f"class_weight has a weight for class {int(key)}, but the model has {classes} classes "
                             f"(0 to {classes - 1})")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or value < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got {value!r}")
        checked[int(key)] = float(value)
    return checked


def class_weight_to_sample_weight(y, class_weight, positions=()) -> np.ndarray:
    """One weight a sample (or a position): ``class_weight[c]`` (1 for a class without a key) for each class ``c``.

    As Keras: a sample's class is the arg-max of a target row of several
    columns (one-hot, but also multi-label rows), else the target itself
    rounded (integer labels, a binary model's 0/1 targets of shape ``(N,)``
    or ``(N, 1)``; ``np.round``, so 0.5 is class 0). For an output
    ``(N, T, K)`` (``positions`` ``(T,)``) each step has its class, and the
    weights are one a step, ``(N, T)``.
    """
    y = np.asarray(y)
    positions = tuple(positions)
    if y.ndim > 1 + len(positions):
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    if y.shape[1:] != positions:
        raise ValueError(f"class_weight needs one class a sample (or a position of the output), but the targets "
                         f"give classes of shape {y.shape}")
    classes = np.round(y).astype(np.int64)
    if classes.size and classes.min() < 0:
        raise ValueError(f"class_weight needs classes >= 0, got target {classes.min()}")
    size = max([int(classes.max(initial=-1)) + 1, *(key + 1 for key in class_weight)])
    table = np.ones(size, dtype=floatx())
    for key, value in class_weight.items():
        table[key] = value
    return table[classes]
