"""Stop training as soon as the loss becomes NaN or infinite."""

import math

from nnscratch.callbacks.base import Callback

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Set ``model.stop_training = True`` when a batch's loss is NaN or ±inf (Keras 3).

    Training then stops after the current epoch's remaining work, and
    ``on_train_end`` still runs for every callback.

    Parameters
    ----------
    raise_error : bool, default False
        Raise a ``RuntimeError`` right away instead (skips ``on_train_end``).
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                               f"Loss value: {loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
