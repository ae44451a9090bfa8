"""Save the model (or its weights) at the end of epochs."""

import os
import warnings

from nnscratch.callbacks.monitor import MonitorCallback

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(MonitorCallback):
    """Save the model after every epoch, or only when ``monitor`` improves (Keras 3).

    The file name is ``filepath.format(epoch=epoch + 1, **logs)``, so
    ``"ckpt-{epoch:02d}-{val_loss:.2f}.npz"`` gives ``ckpt-03-0.41.npz`` after
    the third epoch. Missing folders are created.

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save; may hold ``{epoch}`` and any log key as format fields.
    monitor : str, default "val_loss"
        Quantity that decides what is "best" when ``save_best_only``.
    verbose : int, default 0
        1 prints a message at each save (and each skipped save).
    save_best_only : bool, default False
        Save only when ``monitor`` improves on the best value seen so far
        (any change counts: there is no ``min_delta``).
    save_weights_only : bool, default False
        Call ``model.save_weights(path)`` instead of ``model.save(path)``.
    mode : {"auto", "min", "max"}, default "auto"
    initial_value_threshold : float or None
        Value the monitored quantity must beat for the first save.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        filepath = self._get_file_path(epoch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)

    def _get_file_path(self, epoch, logs) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as error:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {error}") from None

    def _should_save(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False
