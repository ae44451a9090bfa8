"""Show training progress: a tqdm bar per epoch, or one line per epoch."""

import numbers
import sys
import time

from tqdm import tqdm

from nnscratch.callbacks.base import Callback

__all__ = ["ProgbarLogger"]


class ProgbarLogger(Callback):
    """Print progress of ``fit`` (and of ``evaluate``/``predict`` outside ``fit``).

    ``CallbackList(add_progbar=True)`` adds one when ``verbose != 0``; it
    reads ``verbose``, ``epochs`` and ``steps`` from the training params.

    * ``verbose=1``: one tqdm bar per epoch, ``Epoch i/N``, ``steps`` long,
      with the running means of the batch logs as postfix and tqdm's ETA;
      at the epoch's end the postfix shows the epoch logs, ``val_*`` included.
    * ``verbose=2``: one line per epoch, e.g.
      ``Epoch 3/10 - 2s - 41ms/step - loss: 0.1234 - val_loss: 0.2345``.
    * ``verbose=0``: nothing.

    Parameters
    ----------
    verbose : int, default 1
        Overridden by ``set_params`` when the params hold ``verbose``.
    file : file-like or None
        Where to write; ``None`` means ``sys.stderr`` at the time of writing.
    """

    def __init__(self, verbose=1, file=None):
        super().__init__()
        self.verbose = verbose
        self.file = file
        self.epochs = 1
        self.steps = None
        self._bar = None
        self._in_fit = False
        self._start = 0.0
        self._seen = 0

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", self.verbose)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", self.epochs)
        self.steps = params.get("steps", self.steps)

    def _stream(self):
        return self.file if self.file is not None else sys.stderr

    # ------------------------------------------------------------ bar helpers
    def _open(self, description):
        self._close()
        self._start = time.perf_counter()
        self._seen = 0
        if self.verbose == 1:
            self._bar = tqdm(total=self.steps, desc=description, unit="step",
                             file=self._stream(), leave=True, dynamic_ncols=True)

    def _advance(self, batch, logs):
        self._seen = batch + 1
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(_format_logs(logs), refresh=False)
            self._bar.update(self._seen - self._bar.n)  # tqdm redraws at most every 0.1 s

    def _close(self, logs=None):
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(_format_logs(logs), refresh=False)
            self._bar.close()  # draws the final state and keeps it on screen
            self._bar = None

    # ------------------------------------------------------------ fit
    def on_train_begin(self, logs=None):
        self._in_fit = True  # validation inside fit stays silent

    def on_train_end(self, logs=None):
        self._close()
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._open(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._advance(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._close(logs)
        if self.verbose == 2:
            seconds = time.perf_counter() - self._start
            parts = [f"Epoch {epoch + 1}/{self.epochs}", f"{seconds:.0f}s"]
            if self._seen:
                parts.append(_per_step(seconds / self._seen))
            if logs:
                parts.append(_format_logs(logs))
            print(" - ".join(parts), file=self._stream(), flush=True)

    # ------------------------------------------------------------ evaluate / predict
    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._open("Evaluate")

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._advance(batch, logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._close(logs)

    def on_predict_begin(self, logs=None):
        self._open("Predict")

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(batch, None)

    def on_predict_end(self, logs=None):
        self._close()


def _per_step(seconds: float) -> str:
    """``"1s/step"``, ``"25ms/step"`` or ``"80us/step"``, as Keras prints it."""
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_logs(logs) -> str:
    """``"loss: 0.1234 - accuracy: 0.9500"``; tiny values in scientific notation (Keras)."""
    parts = []
    for key, value in logs.items():
        if isinstance(value, numbers.Real):
            text = f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"
        else:
            text = str(value)
        parts.append(f"{key}: {text}")
    return " - ".join(parts)
