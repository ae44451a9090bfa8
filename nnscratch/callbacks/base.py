"""The callback base class and the list that dispatches hooks to many callbacks.

The training loop calls the hooks in this order (epochs and batches count from 0)::

    on_train_begin()
    for epoch in range(epochs):
        on_epoch_begin(epoch)
        for batch in range(steps):
            on_train_batch_begin(batch)
            on_train_batch_end(batch, logs)   # running means of loss/metrics so far
        on_epoch_end(epoch, logs)             # loss, metrics, val_*, learning_rate
        if model.stop_training: break
    on_train_end(logs)

``evaluate`` and ``predict`` use the ``on_test_*`` and ``on_predict_*`` hooks.
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
        """Called at the start of ``evaluate``."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` with its results."""

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch."""

    # ---------------------------------------------------------------- predict
    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each prediction batch."""


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
