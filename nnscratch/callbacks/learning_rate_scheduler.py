"""Set the learning rate at the start of every epoch from a function of the epoch."""

import inspect

import numpy as np

from nnscratch.callbacks.base import Callback

__all__ = ["LearningRateScheduler"]


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate to ``schedule(epoch)`` before each epoch (Keras 3).

    At ``on_epoch_begin(epoch)`` (``epoch`` counts from 0, and from
    ``initial_epoch`` in a resumed ``fit``) the rate becomes
    ``schedule(epoch, lr)``, with ``lr`` the current rate, or
    ``schedule(epoch)`` for a function of one argument; at ``on_epoch_end`` the
    rate is written into ``logs["learning_rate"]`` (``fit`` logs it anyway).

    >>> def schedule(epoch, lr):
    ...     return lr if epoch < 10 else lr * 0.9
    >>> callback = LearningRateScheduler(schedule)

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> float`` or ``schedule(epoch) -> float``;
        it must return a float (a Python ``float``, ``np.float32`` or
        ``np.float64``; an int is refused, as in Keras) >= 0.
    verbose : int, default 0
        1 prints ``"Epoch 3: LearningRateScheduler setting learning rate to
        0.01."`` at each epoch.

    Notes
    -----
    Keras calls ``schedule(epoch, lr)`` and falls back to ``schedule(epoch)``
    on *any* ``TypeError``, also one raised inside the function; here the
    number of arguments is read from the signature when Python can tell it,
    so a ``TypeError`` in the schedule itself is not hidden. An optimizer
    created with a learning-rate schedule object refuses the new rate with a
    ``TypeError``, as in Keras.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a function schedule(epoch) or schedule(epoch, lr), "
                            f"got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_arguments = _accepts(schedule, 2)
        if self._two_arguments is False and _accepts(schedule, 1) is False:
            raise TypeError(f"schedule must take (epoch) or (epoch, lr); {schedule!r} takes neither")

    def _new_rate(self, epoch, learning_rate):
        if self._two_arguments is None:  # signature unknown (a builtin): Keras's way
            try:
                return self.schedule(epoch, learning_rate)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, learning_rate) if self._two_arguments else self.schedule(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        learning_rate = self._new_rate(epoch, float(optimizer.learning_rate))
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {learning_rate!r}")
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _accepts(function, count):
    """Whether ``function`` can be called with ``count`` positional arguments (None if Python cannot tell)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True
