"""Stream the epoch logs to a CSV file, one row per epoch."""

import collections.abc
import csv
import os

import numpy as np

from nnscratch.callbacks.base import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Write ``epoch`` and the sorted log keys of every epoch to a CSV file (Keras format).

    The header is ``epoch,<keys sorted>``, fixed by the first epoch's logs;
    epochs count from 0. As in Keras, when the first logs hold no ``val_*``
    key, ``val_<key>`` columns are added anyway (after the others) and
    filled with ``NA``; but not ``val_learning_rate``: the learning rate is
    not measured on data, so it has no validation value (Keras only logs it
    when a callback sets it).

    Parameters
    ----------
    filename : str or os.PathLike
    separator : str, default ","
    append : bool, default False
        Append to an existing file (writing the header only if it is empty)
        instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None

    def on_train_begin(self, logs=None):
        append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                append_header = not f.readline()
        self._close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self._append_header = append_header
        self.keys = None
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = _columns(logs)
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep, lineterminator="\n")
            if self._append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _format(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()
        self.writer = None

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()


#: Log keys that are not measured on data: no ``val_`` column is added for them.
NOT_MEASURED = ("learning_rate",)


def _columns(logs) -> list:
    """The log keys sorted, then ``val_<key>`` for the measured keys when the logs have no ``val_*`` key (Keras)."""
    keys = sorted(logs)
    if keys and not any(key.startswith("val_") for key in keys):
        keys += [f"val_{key}" for key in keys if key not in NOT_MEASURED]
    return keys


def _format(value):
    """Lists and arrays become ``"[a, b]"``; numbers and strings stay as they are."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, collections.abc.Iterable):
        return f"[{', '.join(map(str, value))}]"
    return value
