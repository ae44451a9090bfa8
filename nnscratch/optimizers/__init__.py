"""Optimizers: turn gradients into in-place weight updates (Keras semantics).

>>> from nnscratch import optimizers
>>> opt = optimizers.get("adam")                 # default hyperparameters
>>> opt = optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0)
>>> opt = optimizers.AdamW(learning_rate=1e-3, weight_decay=0.004)
>>> decay = optimizers.schedules.ExponentialDecay(0.01, decay_steps=1000, decay_rate=0.9)
>>> opt = optimizers.SGD(learning_rate=decay, momentum=0.9)
>>> same = optimizers.get(optimizers.serialize(opt))
"""

from nnscratch.optimizers import schedules
from nnscratch.optimizers.adadelta import Adadelta
from nnscratch.optimizers.adafactor import Adafactor
from nnscratch.optimizers.adagrad import Adagrad
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.adamax import Adamax
from nnscratch.optimizers.adamw import AdamW
from nnscratch.optimizers.base import Optimizer
from nnscratch.optimizers.ftrl import Ftrl
from nnscratch.optimizers.lamb import Lamb
from nnscratch.optimizers.lion import Lion
from nnscratch.optimizers.muon import Muon
from nnscratch.optimizers.nadam import Nadam
from nnscratch.optimizers.rmsprop import RMSprop
from nnscratch.optimizers.sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam",
           "Lion", "Lamb", "Ftrl", "Adafactor", "Muon", "schedules", "get",
           "serialize"]

# lower-case name -> class; strings and "class_name"s are looked up here.
_CLASSES = {cls.__name__.lower(): cls
            for cls in (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam, Lion, Lamb, Ftrl,
                        Adafactor, Muon)}


def serialize(optimizer: Optimizer) -> dict:
    """Return ``{"class_name": ..., "config": ...}``, the form :func:`get` accepts."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def _lookup(name: str) -> type:
    try:
        return _CLASSES[name.lower().replace("_", "")]  # Keras's default names: "adam_w" is AdamW
    except KeyError:
        raise ValueError(f"Unknown optimizer {name!r}; known optimizers: "
                         f"{sorted(_CLASSES)}") from None


def get(identifier) -> Optimizer:
    """Return an optimizer for ``identifier``.

    Parameters
    ----------
    identifier : Optimizer, str or dict
        An optimizer (returned as is); a name, case-insensitive
        (``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``, ``"adagrad"``,
        ``"adadelta"``, ``"adamax"``, ``"nadam"``, ``"lion"``, ``"lamb"``, ``"ftrl"``, ``"adafactor"``,
        ``"muon"``: default
        hyperparameters); or a config dict ``{"class_name": "Adam", "config":
        {...}}`` as written by :func:`serialize`. A bare
        :meth:`~Optimizer.get_config` dict is accepted too and looked up by
        its ``"name"``, which works for the default names.

    Raises
    ------
    ValueError
        Unknown name.
    TypeError
        Any other kind of identifier.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            cls = _lookup(identifier["class_name"])
            return cls.from_config(dict(identifier.get("config") or {}))
        if "name" in identifier:  # get_config() output
            return _lookup(identifier["name"]).from_config(dict(identifier))
        raise ValueError(f"optimizer config dict needs a 'class_name' key, got {identifier!r}")
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r} "
                    f"(expected an Optimizer, a name or a config dict)")
