"""Shared logic of callbacks that watch one logged quantity for improvement."""

import warnings

from nnscratch.callbacks.base import Callback

__all__ = ["MonitorCallback"]

_MODES = ("auto", "min", "max")


class MonitorCallback(Callback):
    r"""Base of ``EarlyStopping``, ``ReduceLROnPlateau`` and ``ModelCheckpoint``.

    A new value :math:`x` of the monitored quantity improves on a reference
    :math:`r` (the best value so far, or a baseline) when, with
    :math:`\delta = |\text{min\_delta}|`,

    .. math::

        \text{mode "min"}: \; x + \delta < r, \qquad
        \text{mode "max"}: \; x - \delta > r,

    and always when there is no reference yet (Keras 3 ``_is_improvement``).

    Parameters
    ----------
    monitor : str
        Key of the quantity in the epoch logs, e.g. ``"val_loss"``.
    mode : {"auto", "min", "max"}
        ``"auto"`` takes the direction of the compiled metric logged under
        the monitored name (``"max"`` for ``Precision``, ``Recall``, ``AUC``,
        ``F1Score``, the accuracies; ``"min"`` for ``MeanSquaredError``...,
        as Keras's ``_direction``), decided at ``on_train_begin``; for other
        names ``"max"`` for accuracy-like names (containing ``"acc"``,
        starting with ``"fmeasure"`` or ending with ``"auc"``) and ``"min"``
        otherwise.
    min_delta : float
        Smallest change that counts as an improvement.
    baseline : float or None
        Reference value that :attr:`best` starts from at each ``on_train_begin``.
    """

    def __init__(self, monitor="val_loss", mode="auto", min_delta=0.0, baseline=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"{type(self).__name__}: unknown mode {mode!r}; "
                             f"expected one of {_MODES}")
        self.monitor = monitor
        self._auto = mode == "auto"
        self.mode = mode if mode != "auto" else _infer_mode(monitor)
        self.min_delta = abs(min_delta)
        self.initial_best = baseline
        self.best = baseline

    def on_train_begin(self, logs=None):
        self.best = self.initial_best
        if self._auto:
            self.mode = _infer_mode(self.monitor, getattr(self, "model", None))

    def _is_improvement(self, current, reference) -> bool:
        """Whether ``current`` beats ``reference`` by more than ``min_delta``."""
        if reference is None:
            return True
        if self.mode == "max":
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def get_monitor_value(self, logs):
        """The monitored value in ``logs``, or ``None`` (with a warning) if absent."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} is conditioned on metric `{self.monitor}` "
                f"which is not available. Available metrics are: {','.join(logs)}",
                stacklevel=3)
        return value


def _infer_mode(monitor: str, model=None) -> str:
    name = monitor.removeprefix("val_")
    if model is not None and name != "loss" and hasattr(model, "_log_names"):
        compiled = [*getattr(model, "metrics", []), *getattr(model, "weighted_metrics", [])]
        for log_name, metric in zip(model._log_names()[1:], compiled):
            direction = getattr(metric, "direction", None)
            if log_name == name and direction is not None:
                return "max" if direction == "up" else "min"
    if "acc" in name or name.startswith("fmeasure") or name.endswith("auc"):
        return "max"
    return "min"
