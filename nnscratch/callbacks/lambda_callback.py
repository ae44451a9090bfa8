"""A callback made of plain functions, for quick one-off hooks."""

from nnscratch.callbacks.base import Callback

__all__ = ["LambdaCallback"]


def _hook_names():
    """Every hook a Callback has: on_train_begin, on_epoch_end, on_batch_begin, on_test_end, ..."""
    return sorted(name for name in dir(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """Build a callback from functions, one per hook (Keras 3).

    Each function is called with the hook's arguments:

    * ``on_epoch_begin(epoch, logs)`` and ``on_epoch_end(epoch, logs)``,
    * ``on_train_begin(logs)`` and ``on_train_end(logs)``,
    * ``on_train_batch_begin(batch, logs)`` and ``on_train_batch_end(batch, logs)``.

    Any other hook of :class:`~nnscratch.callbacks.Callback` may be given by
    its name too, as Keras's ``**kwargs`` allow: ``on_batch_begin`` /
    ``on_batch_end`` (the old names of the train-batch hooks, called right
    after them), ``on_test_end``, ``on_predict_batch_end``, ...

    >>> import json
    >>> log = open("log.jsonl", "w")
    >>> callback = LambdaCallback(
    ...     on_epoch_end=lambda epoch, logs: log.write(json.dumps({"epoch": epoch, **logs}) + "\\n"),
    ...     on_train_end=lambda logs: log.close())

    Raises
    ------
    TypeError
        A keyword that is not a hook's name (Keras would store it silently),
        or a value that is not callable.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_hook_names()))
        if unknown:
            raise TypeError(f"LambdaCallback got {unknown}, which are not callback hooks; "
                            f"the hooks are {_hook_names()}")
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin, "on_train_batch_end": on_train_batch_end,
                 **kwargs}
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback's {name} must be a function, got {type(function).__name__}")
            setattr(self, name, function)  # replaces the method of this instance only
