r"""``Mean``, ``Sum`` and ``MeanMetricWrapper``: running means and sums of values, as ``keras.metrics``.

:class:`Mean` and :class:`Sum` take *values*, not targets and predictions:
``update_state(values, sample_weight=None)``, for use on their own (a running
mean of anything, e.g. a loss computed by hand in a training loop), as in
Keras. With weights of the values' first :math:`r` axes (``(N,)`` one a
sample, or the values' own shape), Keras's ``reduce_to_samplewise_values``
first reduces each value array to one value a sample:

.. math::

    v_i = \operatorname{mean}_{\text{axes} \ge r}(\text{values})_i, \qquad
    \text{Mean} = \frac{\sum_i w_i v_i}{\sum_i w_i}, \qquad \text{Sum} = \sum_i w_i v_i,

summed over the batches since the last reset (``Sum`` reduces by sums where
``Mean`` takes means; a weight array of several axes is averaged over its
axes after the first for the count). Without weights :math:`w_i = 1`: the
mean over the samples of the per-sample means, and a single number counts
as one sample. ``Mean`` is 0 while the weights sum to 0.

:class:`MeanMetricWrapper` ``(fn)`` is the :class:`Mean` of ``fn(y_true,
y_pred)``, a per-sample metric (:class:`~nnscratch.metrics.base.Metric`), as
Keras's: what ``compile`` makes of a metric function.
"""

import numpy as np

from nnscratch.metrics.base import Metric, StatefulMetric
from nnscratch.metrics.confusion import _same_rank, divide_no_nan

__all__ = ["Mean", "Sum", "MeanMetricWrapper", "reduce_to_samplewise"]


def reduce_to_samplewise(values, sample_weight, reduce):
    """Keras's ``reduce_to_samplewise_values``: ``(values, weights)`` with values one a sample, weighted.

    ``values`` (float64) is reduced by ``reduce`` (``np.mean`` or ``np.sum``)
    over the axes the weights do not have, multiplied by the weights, then
    reduced over every axis but the first; the weights are reduced likewise
    (None stays None).
    """
    values = np.asarray(values, dtype=np.float64)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        values, weights = _same_rank(values, weights)
        if values.ndim > weights.ndim:
            values = reduce(values, axis=tuple(range(weights.ndim, values.ndim)))
        try:
            weights = np.broadcast_to(weights, values.shape)
        except ValueError:
            raise ValueError(f"sample_weight of shape {np.shape(sample_weight)} does not fit values of shape "
                             f"{np.shape(values)}: give one weight a sample or one a value") from None
        values = values * weights
        if weights.ndim > 1:
            weights = reduce(weights, axis=tuple(range(1, weights.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, weights


class Sum(StatefulMetric):
    r"""``keras.metrics.Sum``: the weighted sum :math:`\sum_i w_i v_i` of all the values given.

    ``update_state(values, sample_weight=None)``; ``Sum()([1, 3, 5, 7])`` is
    16.0, with ``sample_weight=[1, 1, 0, 0]`` 4.0. For use on its own: a
    model's ``compile`` gives its metrics targets and predictions, which is
    not what ``Sum`` takes (:func:`nnscratch.metrics.get` refuses it).
    """

    def __init__(self, name="sum", dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0

    def update_state(self, values, sample_weight=None):
        values, _ = reduce_to_samplewise(values, sample_weight, np.sum)
        self.total += float(np.sum(values))

    def __call__(self, values, sample_weight=None):
        self.update_state(values, sample_weight)
        return self.result()

    def result(self) -> float:
        return self.total


class Mean(StatefulMetric):
    r"""``keras.metrics.Mean``: the weighted mean :math:`\sum_i w_i v_i / \sum_i w_i` of all the values given.

    ``update_state(values, sample_weight=None)``; ``Mean()([1, 3, 5, 7])`` is
    4.0, with ``sample_weight=[1, 1, 0, 0]`` 2.0 (see the module docstring for
    values of several axes). 0 while nothing is counted. For use on its own,
    as :class:`Sum`.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        values, weights = reduce_to_samplewise(values, sample_weight, np.mean)
        self.total += float(np.sum(values))
        if weights is not None:
            self.count += float(np.sum(weights))
        else:
            self.count += values.shape[0] if values.ndim else 1

    def __call__(self, values, sample_weight=None):
        self.update_state(values, sample_weight)
        return self.result()

    def result(self) -> float:
        return float(divide_no_nan(self.total, self.count))


def _loss_per_position(loss):
    """A loss object's values a position (calling the object gives the batch mean, a Keras loss *function* not)."""

    def per_position(y_true, y_pred):
        return loss.per_position(y_true, y_pred)

    return per_position


class MeanMetricWrapper(Metric):
    """``keras.metrics.MeanMetricWrapper(fn, name=None, dtype=None, **kwargs)``: the mean of ``fn(y_true, y_pred)``.

    ``fn(y_true, y_pred, **kwargs)`` returns one value a sample or a position
    (values over several outputs are averaged per sample; a single number
    counts for every sample of the batch). An :mod:`nnscratch.losses` object
    (``losses.mean_squared_error``, ``losses.Huber(delta=2.0)``) gives its
    values a position, as a Keras loss *function* does, and makes the direction ``"down"`` (Keras: a Keras loss).
    The name is ``"mean_metric_wrapper"`` unless given, as in Keras.

    ``get_config`` keeps ``fn`` by name (a metric function of
    :mod:`nnscratch.metrics` or a loss config); a wrapper of your own function
    is saved by its name, and ``load_model`` needs the wrapper in
    ``custom_objects``, as a plain metric function.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        from nnscratch.losses import Loss

        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper needs a function fn(y_true, y_pred), got {type(fn).__name__}")
        self.wrapped = fn
        self.fn_kwargs = dict(kwargs)
        if isinstance(fn, Loss):
            if kwargs:
                raise TypeError(f"MeanMetricWrapper of a loss object takes no keyword arguments, got {sorted(kwargs)}; "
                                "give them to the loss's constructor")
            self.direction = "down"
            inner = _loss_per_position(fn)
        else:
            def inner(y_true, y_pred):
                return fn(y_true, y_pred, **self.fn_kwargs)
        super().__init__(name or "mean_metric_wrapper", self._checked(inner), dtype)

    @staticmethod
    def _checked(fn):
        def values(y_true, y_pred):
            values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
            samples = len(y_pred)
            if values.ndim == 0:
                return np.full(samples, float(values))
            if values.shape[0] != samples:
                raise ValueError(f"MeanMetricWrapper: fn returned an array of shape {values.shape} for a batch of "
                                 f"{samples} samples; expected one value per sample, shape ({samples}, ...), or a "
                                 "single number")
            return values

        return values

    def serializable(self) -> bool:
        """Whether ``get_config`` can name ``fn`` (an nnscratch metric function or loss object)."""
        from nnscratch import metrics

        return metrics.function_config(self.wrapped) is not None

    def get_config(self):
        from nnscratch import metrics

        fn = metrics.function_config(self.wrapped)
        if fn is None:
            what = getattr(self.wrapped, "__name__", self.wrapped)
            raise ValueError(f"MeanMetricWrapper {self.name!r} wraps {what!r}"
                             ", which has no config: it is saved by its name (custom_objects when loading)")
        return {**super().get_config(), "fn": fn, **self.fn_kwargs}

    @classmethod
    def from_config(cls, config):
        from nnscratch import metrics

        config = dict(config)
        if "fn" not in config:
            raise TypeError("a MeanMetricWrapper config needs 'fn'")
        return cls(metrics.function_from_config(config.pop("fn")), **config)
