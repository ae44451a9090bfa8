"""A trainable tensor: its value and the gradient of the loss with respect to it."""

import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A trainable weight of a layer.

    ``backward`` writes ``grad``; only an optimizer changes ``value``.
    Buffers that no optimizer may touch (batch-norm moving statistics) are
    plain arrays kept elsewhere, never Parameters.

    Parameters
    ----------
    value : ndarray
        Initial value; the parameter keeps this array (updates happen in place).
    name : str
        The Keras weight name (``"kernel"``, ``"bias"``, ``"gamma"``, ``"beta"``).
    trainable : bool
        ``False`` freezes it: optimizers skip it (train/eval mode is a separate thing).
    constraint : callable or None
        ``c(value) -> value'``, which the optimizer applies after each of its
        updates (a :mod:`nnscratch.constraints` instance, given by the layer).
    path : str, optional
        Where it lives, ``"layer_name/weight_name"`` as Keras's ``variable.path``
        (a layer's ``new_parameter`` gives it; default: ``name``).
    """

    __slots__ = ("value", "grad", "name", "trainable", "constraint", "path")

    def __init__(self, value: np.ndarray, name: str, trainable: bool = True, constraint=None, path=None):
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name
        self.path = name if path is None else path
        self.trainable = trainable
        self.constraint = constraint

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def size(self) -> int:
        return self.value.size

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"
