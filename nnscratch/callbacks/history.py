"""Record the epoch logs of a training run: what ``fit`` returns."""

from nnscratch.callbacks.base import Callback

__all__ = ["History"]


class History(Callback):
    """Collect every epoch's logs into lists.

    Attributes
    ----------
    history : dict of str to list
        ``history["val_loss"][i]`` is the validation loss after the i-th
        epoch recorded (keys as in the logs: ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``learning_rate``, ...).
    epoch : list of int
        The (0-based) epoch numbers recorded.

    Both are emptied at the start of each training run.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
