r"""Weight constraints: maps applied to a weight after each optimizer step, as Keras.

A layer given ``kernel_constraint=MaxNorm(3)`` hands the constraint to its
kernel's :class:`~nnscratch.parameter.Parameter`; after every update the
optimizer replaces the kernel ``w`` by ``c(w)`` (Keras's order: the step, then
the constraint; never in ``backward``, never on a frozen weight). With the
norms taken along ``axis`` (default 0, the kernel's input axis for Dense:
one norm per unit; for Conv2D's (kh, kw, C, F) kernel Keras's examples use
``axis=[0, 1, 2]``: one norm per filter) and :math:`\epsilon = 10^{-7}`:

.. math::
    \text{MaxNorm:}\quad w \cdot \frac{\min(\|w\|, m)}{\epsilon + \|w\|}, \qquad
    \text{UnitNorm:}\quad \frac{w}{\epsilon + \|w\|}, \qquad
    \text{NonNeg:}\quad w \cdot [w \ge 0],

    \text{MinMaxNorm:}\quad w \cdot \frac{r \operatorname{clip}(\|w\|, a, b) + (1 - r)\|w\|}{\epsilon + \|w\|}.

Names, as Keras 3 (``keras.constraints.get``): ``"max_norm"``, ``"non_neg"``,
``"unit_norm"``, ``"min_max_norm"`` and the class names, each with its defaults.
"""

import math
import numbers

import numpy as np

from nnscratch.serializable import Serializable, from_dict, to_dict

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "get", "serialize"]

EPSILON = 1e-7   # Keras's backend.epsilon()


def _axis(axis):
    """An int or a tuple of ints (Keras allows a list), as NumPy's ``axis`` takes it."""
    if isinstance(axis, (list, tuple)) and axis and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                                        for a in axis):
        return tuple(int(a) for a in axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"a constraint's axis must be an int or a list of ints, got {axis!r}")
    return int(axis)


def _number(value, name, low=0.0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low:g}, got {value!r}")
    return float(value)


class Constraint(Serializable):
    """Base class: ``c(w) -> w'``, an array of ``w``'s shape and dtype; ``get_config()`` gives the arguments."""

    def __call__(self, w) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(w)")


class _NormConstraint(Constraint):
    """A rescaling of ``w`` by its norms along ``axis``: ``w * desired(norms) / (eps + norms)``."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def desired(self, norms):
        raise NotImplementedError(f"{type(self).__name__} must define desired(norms)")

    def __call__(self, w):
        w = np.asarray(w)
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        scale = self.desired(norms) / (w.dtype.type(EPSILON) + norms)
        return (w * scale).astype(w.dtype, copy=False)

    def get_config(self) -> dict:
        return {"axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}


class MaxNorm(_NormConstraint):
    """Scale down every slice whose norm exceeds ``max_value`` to that norm (default 2, as Keras)."""

    def __init__(self, max_value=2, axis=0):
        super().__init__(axis)
        self.max_value = _number(max_value, "max_value")

    def desired(self, norms):
        return np.clip(norms, 0, norms.dtype.type(self.max_value))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, **super().get_config()}


class UnitNorm(_NormConstraint):
    """Scale every slice to norm 1 (up to ``epsilon``): ``w / (eps + norms)``, Keras's arithmetic."""

    def __call__(self, w):
        w = np.asarray(w)
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        return (w / (w.dtype.type(EPSILON) + norms)).astype(w.dtype, copy=False)


class MinMaxNorm(_NormConstraint):
    """Move every slice's norm into ``[min_value, max_value]``, by the fraction ``rate`` (1: all the way)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        super().__init__(axis)
        self.min_value, self.max_value = _number(min_value, "min_value"), _number(max_value, "max_value")
        if self.min_value > self.max_value:
            raise ValueError(f"min_value {min_value} must not exceed max_value {max_value}")
        self.rate = _number(rate, "rate")
        if self.rate > 1:
            raise ValueError(f"rate must be in [0, 1], got {rate!r}")

    def desired(self, norms):
        t = norms.dtype.type
        return t(self.rate) * np.clip(norms, t(self.min_value), t(self.max_value)) + t(1 - self.rate) * norms

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, **super().get_config()}


class NonNeg(Constraint):
    """Set every negative weight to 0."""

    def __call__(self, w):
        w = np.asarray(w)
        return w * (w >= 0).astype(w.dtype)


_CLASSES = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm, **_CLASSES}


def serialize(constraint) -> dict | None:
    """``{"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": 0}}`` (what saved models keep), or None."""
    if constraint is None:
        return None
    return to_dict(get(constraint))


def get(identifier) -> Constraint | None:
    """A Constraint from a name, an instance, None, or a dict from :func:`serialize` (as Keras)."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown constraint {identifier!r}; expected one of {sorted(_BY_NAME)}, a "
                             "Constraint instance or None")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return from_dict(identifier, _CLASSES, "constraint", "{'class_name': 'MaxNorm', 'config': {'max_value': 2}}")
    raise TypeError(f"a constraint must be a name, a Constraint instance, a dict or None, got "
                    f"{type(identifier).__name__}: {identifier!r}")
