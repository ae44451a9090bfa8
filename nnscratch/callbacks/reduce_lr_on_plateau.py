"""Lower the learning rate when a monitored quantity has stopped improving."""

import numpy as np

from nnscratch.callbacks.monitor import MonitorCallback

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(MonitorCallback):
    r"""Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    At the end of each epoch (Keras 3 order), with monitored value :math:`x`:

    1. write the current learning rate into ``logs["learning_rate"]``;
    2. if in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1``, ``wait = 0``;
    3. if :math:`x` improves on ``best``: ``best = x``, ``wait = 0``;
    4. else, if no longer in cooldown: ``wait += 1``; once ``wait >= patience``
       and :math:`\eta > \text{min\_lr}` (compared in float32, as Keras
       compares with its float32 variable), set

       .. math:: \eta \leftarrow \max(\eta \cdot \text{factor}, \text{min\_lr})

       then ``cooldown_counter = cooldown`` and ``wait = 0``.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        Must be < 1.
    patience : int, default 10
    verbose : int, default 0
        1 prints a message at each reduction.
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 1e-4
    cooldown : int, default 0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default 0.0
        Lower bound on the learning rate.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # best = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self.get_monitor_value(logs)
        if current is None:
            return

        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0

        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce_lr(self, optimizer, epoch) -> bool:
        """Lower the learning rate; ``False`` if it already sits at ``min_lr``."""
        old_lr = float(optimizer.learning_rate)
        if np.float32(old_lr) <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
        return True
