"""The callback base class and the list that dispatches hooks to many callbacks.

The training loop calls the hooks in this order (epochs and batches count from 0)::

    on_train_begin()
    for epoch in range(epochs):
        on_epoch_begin(epoch)
        for batch in range(steps):
            on_train_batch_begin(batch)
            on_train_batch_end(batch, logs)   # running means of loss/metrics so far
            if model.stop_training: break
        if validation:                        # the same hooks as evaluate, below
            on_test_begin() ... on_test_end(logs)
        on_epoch_end(epoch, logs)             # loss, metrics, val_*, learning_rate
        if model.stop_training: break
    on_train_end(logs)

``evaluate(..., callbacks=...)`` and fit's validation call::

    on_test_begin()
    for batch in range(steps):
        on_test_batch_begin(batch)
        on_test_batch_end(batch, logs)        # running means of loss/metrics so far
        if model.stop_evaluating: break
    on_test_end(logs)                         # the results: loss, metrics

and ``predict(..., callbacks=...)`` calls::

    on_predict_begin()
    for batch in range(steps):
        on_predict_batch_begin(batch)
        on_predict_batch_end(batch, {"outputs": the batch's predictions})
        if model.stop_predicting: break
    on_predict_end()

as Keras does. The progress bar (:class:`ProgbarLogger`) stays silent in
the ``on_test_*`` hooks of fit's validation.
"""

import numpy as np

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Base class of callbacks: every hook exists and does nothing.

    Attributes
    ----------
    model : object or None
        The model being trained, set by :meth:`set_model`.
    params : dict or None
        Training parameters (``verbose``, ``epochs``, ``steps``), set by :meth:`set_params`.
    """

    def __init__(self):
        self.model = None
        self.params = None

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    # ---------------------------------------------------------------- fit
    def on_train_begin(self, logs=None):
        """Called once at the start of ``fit``."""

    def on_train_end(self, logs=None):
        """Called once at the end of ``fit`` (also after an early stop)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after each epoch; ``logs`` holds loss, metrics, ``val_*``, ``learning_rate``."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch; calls :meth:`on_batch_begin` (Keras alias)."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch; ``logs`` are the epoch's running means so far."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        """Old Keras name of :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """Old Keras name of :meth:`on_train_batch_end`."""

    # ---------------------------------------------------------------- evaluate
    def on_test_begin(self, logs=None):
        """Called at the start of ``evaluate`` and of each validation in ``fit``."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` (or of a validation in ``fit``) with its results."""

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch; ``logs`` are the running means so far."""

    # ---------------------------------------------------------------- predict
    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each prediction batch; ``logs["outputs"]`` holds the batch's predictions."""


def _pythonify(logs) -> dict:
    """A fresh dict with NumPy scalars turned into Python numbers (as Keras does)."""
    out = {}
    for key, value in (logs or {}).items():
        if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
            value = value.item()
        out[key] = value
    return out


class CallbackList(Callback):
    """Calls each hook on every callback, in list order.

    Each hook hands all callbacks the *same* fresh copy of ``logs``, so a
    callback that writes into it (``ReduceLROnPlateau`` sets
    ``logs["learning_rate"]``) is seen by those after it, such as ``History``.

    Parameters
    ----------
    callbacks : list of Callback, a single Callback, or None
    add_history : bool
        Append a :class:`History` unless the list already holds one.
    add_progbar : bool
        Append a :class:`ProgbarLogger` unless the list already holds one.
    model : object or None
        Passed to every callback's ``set_model``; gets ``model.history`` too.
    **params
        Passed to every callback's ``set_params`` (``verbose``, ``epochs``, ``steps``).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False,
                 model=None, **params):
        # Imported here because these modules import Callback from this one.
        from nnscratch.callbacks.history import History
        from nnscratch.callbacks.progbar import ProgbarLogger

        super().__init__()
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.callbacks = list(callbacks) if callbacks else []
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback instances (nnscratch.callbacks), "
                                f"got {type(callback).__name__}")
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        has_progbar = any(isinstance(c, ProgbarLogger) for c in self.callbacks)
        if add_progbar and not has_progbar:
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    @property
    def history(self):
        """The :class:`History` callback of this list, or ``None``."""
        return self._history

    def set_model(self, model) -> None:
        super().set_model(model)
        if self._history is not None and model is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def _call(self, hook: str, *args, logs=None) -> None:
        logs = _pythonify(logs)
        for callback in self.callbacks:
            getattr(callback, hook)(*args, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)
