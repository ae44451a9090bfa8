"""Callbacks: code that ``fit`` runs at fixed points of training (Keras semantics).

>>> from nnscratch import callbacks
>>> early = callbacks.EarlyStopping(monitor="val_loss", patience=3,
...                                 restore_best_weights=True)
>>> plateau = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=1e-5)
>>> # model.fit(..., callbacks=[early, plateau])
>>> halve = callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 5 else lr / 2)
>>> shout = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

See :mod:`nnscratch.callbacks.base` for the order in which hooks are called.
"""

from nnscratch.callbacks.base import Callback, CallbackList
from nnscratch.callbacks.csv_logger import CSVLogger
from nnscratch.callbacks.early_stopping import EarlyStopping
from nnscratch.callbacks.history import History
from nnscratch.callbacks.lambda_callback import LambdaCallback
from nnscratch.callbacks.learning_rate_scheduler import LearningRateScheduler
from nnscratch.callbacks.model_checkpoint import ModelCheckpoint
from nnscratch.callbacks.monitor import MonitorCallback
from nnscratch.callbacks.progbar import ProgbarLogger
from nnscratch.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from nnscratch.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "MonitorCallback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "LambdaCallback",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "CSVLogger",
]
