"""The two kinds of metric: per-sample means (:class:`Metric`) and metrics with state (:class:`StatefulMetric`).

A *per-sample* metric maps ``(y_true, y_pred)`` to one value per sample and
is logged as the mean over the samples, so the training loop can keep it as
a running sum (as Keras's ``MeanMetricWrapper`` does). Precision, recall, AUC
or F1 are not means of per-sample values: they are ratios of counts summed
over all the batches seen. Such a metric keeps its counts as *state* and has
Keras's API::

    metric.reset_state()                                # counts to 0 (fit: every epoch and validation)
    metric.update_state(y_true, y_pred, sample_weight)  # add one batch
    metric.result()                                     # the value from the counts so far

A per-sample :class:`Metric` has the same three methods (a weighted running
mean), so every metric object can be used on its own, as in Keras.
"""

import re

import numpy as np

__all__ = ["StatefulMetric", "Metric", "function_metric", "snake_case"]

_DTYPES = (None, "float32", "float64")


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``"MeanSquaredError"`` -> ``"mean_squared_error"``, ``"<lambda>"`` -> ``"lambda"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_dtype(dtype):
    if dtype not in _DTYPES:
        raise ValueError(f"a metric's dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return dtype


class StatefulMetric:
    """Base of the metrics with state, Keras's ``keras.metrics.Metric``.

    Subclasses keep their state in NumPy float64 arrays and implement
    :meth:`update_state`, :meth:`result` and :meth:`reset_state`.
    ``fit``, ``evaluate``, ``train_on_batch`` and ``test_on_batch`` reset a
    compiled metric at the start of each epoch and of each evaluation, update
    it with every batch (with the sample weights for ``weighted_metrics``)
    and log ``result()``.

    Parameters
    ----------
    name : str or None
        The name in the logs; by default the class name in snake case
        (``Precision()`` -> ``"precision"``). Unlike Keras, no process-wide
        counter is appended (Keras names a second ``Precision()``
        ``"precision_1"``); ``compile`` makes duplicate names unique.
    dtype : None, "float32" or "float64"
        The precision of the comparisons with thresholds (None: float32, as
        Keras's ``floatx``); the counts are float64 sums.

    Attributes
    ----------
    direction : {"up", "down", None}
        Whether a larger value is better (``EarlyStopping(mode="auto")``);
        None where Keras does not say (the raw counts).
    """

    direction = None

    def __init__(self, name=None, dtype=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a metric's name must be a string, got {type(name).__name__}")
        self.name = name or snake_case(type(self).__name__)
        self.dtype = _check_dtype(dtype)

    @property
    def compute_dtype(self):
        """The NumPy dtype of the comparisons: float32 unless ``dtype="float64"``."""
        return np.float64 if self.dtype == "float64" else np.float32

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch (NumPy arrays; ``sample_weight`` one weight a sample, or None)."""
        raise NotImplementedError

    def result(self):
        """The metric of everything added since the last reset: a float (or an array for vector results)."""
        raise NotImplementedError

    def reset_state(self):
        """Forget every batch added."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        """``update_state`` then ``result()``, as Keras's ``Metric.__call__``."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        """The constructor's arguments (JSON-safe), so that ``type(m).from_config(m.get_config())`` is ``m`` again."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _sample_weights(sample_weight, samples):
    """``sample_weight`` as ``samples`` float64 weights (one a sample), or None."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.shape != (samples,):
        raise ValueError(f"sample_weight must have one weight a sample, shape ({samples},), got {weights.shape}")
    return weights


class Metric(StatefulMetric):
    """A per-sample metric: ``fn(y_true, y_pred)`` gives one value a sample; it is logged as their mean.

    ``metric(y_true, y_pred)`` returns the per-sample values (what the
    training loop sums); :meth:`per_position` the values a position, which
    the training loop weighs by an output mask. As a :class:`StatefulMetric`
    it keeps the weighted running mean ``sum_i w_i m_i / sum_i w_i`` (Keras's
    ``MeanMetricWrapper``; 0 while nothing is counted).
    """

    def __init__(self, name: str, fn, dtype=None):
        super().__init__(name, dtype)
        self.fn = fn
        self.reset_state()

    def __call__(self, y_true, y_pred) -> np.ndarray:
        """One value a sample: ``fn``'s, averaged over any axes after the first (an output (N, T, K): its steps)."""
        values = self.fn(y_true, y_pred)
        return values if np.ndim(values) <= 1 else np.asarray(values).reshape(len(values), -1).mean(axis=-1)

    def per_position(self, y_true, y_pred) -> np.ndarray:
        """``fn``'s values, one a position of the output ``(N, ..., K)`` (values a output averaged over the last axis).

        A function that gives one value a sample only (a correlation) has no
        values a position: a mask then raises a ValueError in the training loop.
        """
        values = np.asarray(self.fn(y_true, y_pred), dtype=np.float64)
        return values.mean(axis=-1) if values.ndim > 1 and values.shape == np.shape(y_pred) else values

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self(np.asarray(y_true), np.asarray(y_pred)), dtype=np.float64)
        weights = _sample_weights(sample_weight, len(values))
        self.total += float(np.sum(values if weights is None else values * weights))
        self.count += len(values) if weights is None else float(np.sum(weights))

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0


def function_metric(fn, name=None) -> Metric:
    """A :class:`Metric` from a plain function ``fn(y_true, y_pred)``, as Keras's ``MeanMetricWrapper``.

    ``fn`` gets the batch's targets (as the loss prepared them) and the
    model's output, as NumPy arrays, and returns one value per sample, a
    value per position or output (averaged over all axes but the first, as
    Keras does) or a single number for the batch (counted for each of its
    samples). The
    metric is logged under ``name``, by default ``fn.__name__`` in snake case
    (Keras's rule: ``rmse`` -> ``"rmse"``, ``myMetric`` -> ``"my_metric"``).
    """
    if name is None:
        name = snake_case(getattr(fn, "__name__", None) or type(fn).__name__)

    def checked(y_true, y_pred):
        values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
        samples = len(y_pred)
        if values.ndim == 0:
            return np.full(samples, float(values))
        if values.shape[0] != samples:
            raise ValueError(f"metric {name!r} returned an array of shape {values.shape} for a batch of {samples} "
                             f"samples; expected one value per sample, shape ({samples}, ...), or a single number")
        return values

    return Metric(name, checked)
