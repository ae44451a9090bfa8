"""Stop training when a monitored quantity has stopped improving."""

import numpy as np

from nnscratch.callbacks.monitor import MonitorCallback

__all__ = ["EarlyStopping"]


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras 3).

    At the end of each epoch ``e >= start_from_epoch`` whose logs hold the
    monitored value :math:`x`:

    1. ``wait += 1``;
    2. if :math:`x` improves on ``best`` (see
       :class:`~nnscratch.callbacks.monitor.MonitorCallback`; the first
       value always does): ``best = x``, ``best_epoch = e``, remember the
       weights, and reset ``wait = 0`` -- but only if :math:`x` also
       improves on ``baseline`` when one is given;
    3. otherwise, if ``wait >= patience`` and ``e > 0``: set
       ``model.stop_training = True`` and ``stopped_epoch = e``.

    With ``restore_best_weights=True`` the weights of ``best_epoch`` are put
    back in ``on_train_end``, whether or not this callback stopped training.

    Parameters
    ----------
    monitor : str, default "val_loss"
    min_delta : float, default 0
        Smallest change that counts as an improvement.
    patience : int, default 0
        Epochs without improvement after which training stops.
    verbose : int, default 0
        1 prints a message when stopping and when restoring weights.
    mode : {"auto", "min", "max"}, default "auto"
    baseline : float or None
        Training stops unless the model beats this value within ``patience``
        epochs of the start (or of its last improvement on it).
    restore_best_weights : bool, default False
    start_from_epoch : int, default 0
        Warm-up epochs during which nothing is watched.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # best = None
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._copy_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._copy_weights()
            # Restart the count only when both the baseline and the best are beaten.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _copy_weights(self) -> list:
        # Copies, in case get_weights hands out the arrays that training updates in place.
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
