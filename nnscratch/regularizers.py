r"""Weight regularizers: penalties on a layer's weights added to the training loss, as Keras.

A regularizer maps a weight array ``w`` to a scalar penalty ``R(w)``:

.. math::
    R_{L1}(w) = \lambda_1 \sum_i |w_i|, \qquad
    R_{L2}(w) = \lambda_2 \sum_i w_i^2 \quad\text{(no factor 1/2, as Keras)},

and ``L1L2`` adds both. A layer given ``kernel_regularizer=L2(0.01)`` adds
``R(kernel)`` to the loss that ``fit``, ``evaluate``, ``train_on_batch`` and
``test_on_batch`` report, once per batch (not per sample), and adds its
gradient to the kernel's:

.. math::
    \frac{\partial R_{L1}}{\partial w} = \lambda_1 \operatorname{sign}(w), \qquad
    \frac{\partial R_{L2}}{\partial w} = 2 \lambda_2 w,

with ``sign(0) = 0`` (what TensorFlow's gradient of ``abs`` gives at 0, so
a weight at exactly 0 gets no push from L1). Only trainable weights are
penalised, as in Keras (a frozen layer adds nothing). The layer exposes its
penalties (``layer.losses``, ``layer.regularization_loss()``) and adds their
gradients to its parameters' ``.grad`` (``layer.add_regularization_gradients()``);
the training step calls that after backward and before the optimizer.

The classes have Keras's lower-case aliases, ``l1``, ``l2`` and ``l1_l2``
(``regularizers.l2(1e-4)``). Names, as Keras 3 (``keras.regularizers.get``):
``"l1"`` is ``L1(0.01)``, ``"l2"`` is ``L2(0.01)``; ``"L1L2"`` and ``"l1l2"``
are ``L1L2()``, whose factors are 0 (no penalty); ``"l1_l2"``, which Keras's
documentation promises as ``L1L2(l1=0.01, l2=0.01)`` but Keras 3.15 refuses,
is that here.
"""

import math
import numbers

import numpy as np

from nnscratch.serializable import Serializable, from_dict, to_dict

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2", "orthogonal_regularizer",
           "get", "serialize"]


def _factor(value, name) -> float:
    """A regularization factor as a float: a finite number >= 0 (Keras's rule; bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Regularizer(Serializable):
    """Base class: a penalty ``R(w)`` on a weight array and its gradient.

    Subclasses define ``__call__(w) -> float``, ``gradient(w) -> ndarray`` (the
    same shape and dtype as ``w``) and ``get_config() -> dict`` of constructor
    arguments. :meth:`add_gradient` adds the gradient to a parameter's
    ``.grad`` in place.
    """

    def __call__(self, w) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(w)")

    def gradient(self, w) -> np.ndarray:
        """dR/dw, an array like ``w``."""
        raise NotImplementedError(f"{type(self).__name__} must define gradient(w)")

    def add_gradient(self, w, grad) -> None:
        """``grad += dR/dw``, in place."""
        grad += self.gradient(w)

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define get_config()")


class L1L2(Regularizer):
    r"""``R(w) = l1 * sum(|w|) + l2 * sum(w**2)``; ``dR/dw = l1 * sign(w) + 2 * l2 * w``.

    Parameters
    ----------
    l1, l2 : float
        Factors, finite and >= 0. Both default to 0 (as Keras's ``L1L2``): a
        term whose factor is 0 is not computed at all.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, w) -> float:
        w = np.asarray(w)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.sum(np.abs(w)))
        if self.l2:
            penalty += self.l2 * float(np.sum(np.square(w)))
        return penalty

    def gradient(self, w) -> np.ndarray:
        w = np.asarray(w)
        grad = np.zeros_like(w)
        self.add_gradient(w, grad)
        return grad

    def add_gradient(self, w, grad) -> None:
        if self.l1:
            grad += np.sign(w) * w.dtype.type(self.l1)        # sign(0) = 0, as TensorFlow's gradient of |w|
        if self.l2:
            grad += w * w.dtype.type(2 * self.l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    r"""``R(w) = l1 * sum(|w|)``; ``dR/dw = l1 * sign(w)`` with ``sign(0) = 0``. Default ``l1=0.01``, as Keras."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    r"""``R(w) = l2 * sum(w**2)`` (no factor 1/2, as Keras); ``dR/dw = 2 * l2 * w``. Default ``l2=0.01``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    r"""Keras 3's penalty on a kernel's rows (or columns) that are not orthogonal: their mean absolute cosine.

    With :math:`u_i = w_i / \max(\lVert w_i \rVert, 10^{-7})` the normalised
    rows (``mode="rows"``; the columns with ``"columns"``) of a 2-D kernel,
    :math:`G = U U^\top` their cosines and :math:`P = n(n-1)/2` the pairs,

    .. math:: R = \frac{\lambda}{P} \sum_{i < j} |G_{ij}|, \qquad
              \frac{\partial R}{\partial u_i} = \frac{\lambda}{P} \sum_{j \ne i} \operatorname{sign}(G_{ij})\, u_j,

    and through the normalisation (which only turns a row, never stretches it)
    :math:`\partial R/\partial w_i = (g_i - u_i (u_i \cdot g_i)) / \lVert w_i \rVert`,
    :math:`g_i = \partial R/\partial u_i`: the part of :math:`g_i` along
    :math:`u_i` is removed. A kernel of one row (no pairs) has penalty 0
    (Keras 3.15 divides 0 by 0 there and gives nan).
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got {mode!r}")
        self.mode = mode

    def _rows(self, w):
        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer takes a 2-D kernel (a Dense layer's), got shape {w.shape}")
        return w if self.mode == "rows" else w.T

    @staticmethod
    def _normalised(rows):
        norms = np.maximum(np.sqrt(np.square(rows).sum(axis=1, keepdims=True)), 1e-7)
        return rows / norms, norms

    def __call__(self, w) -> float:
        rows = self._rows(w)
        if len(rows) < 2:
            return 0.0
        u, _ = self._normalised(rows)
        cosines = np.abs(u @ u.T)
        pairs = len(rows) * (len(rows) - 1) / 2
        return self.factor * float((cosines.sum() - np.trace(cosines)) / 2 / pairs)

    def gradient(self, w) -> np.ndarray:
        rows = self._rows(w)
        if len(rows) < 2:
            return np.zeros_like(np.asarray(w))
        u, norms = self._normalised(rows)
        signs = np.sign(u @ u.T)
        np.fill_diagonal(signs, 0)
        g = (self.factor / (len(rows) * (len(rows) - 1) / 2)) * (signs @ u)           # dR/du
        small = norms[:, 0] <= 1e-7                                                   # (u = w / 1e-7 there)
        grad = np.where(small[:, None], g, g - u * (u * g).sum(axis=1, keepdims=True)) / norms
        grad = grad.astype(np.asarray(w).dtype, copy=False)
        return grad if self.mode == "rows" else grad.T

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


#: Keras's lower-case aliases of the classes (``keras.regularizers.l2(1e-4)``); ``l1_l2()`` has factors 0, as Keras 3's.
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2, OrthogonalRegularizer)}
_BY_NAME = {
    "l1": L1, "L1": L1,
    "l2": L2, "L2": L2,
    "l1l2": L1L2, "L1L2": L1L2,                       # Keras: L1L2() with both factors 0
    "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),          # the Keras documentation's meaning
    "orthogonal_regularizer": OrthogonalRegularizer, "OrthogonalRegularizer": OrthogonalRegularizer,
}


def serialize(regularizer) -> dict | None:
    """``{"class_name": "L2", "config": {"l2": 0.01}}`` (the JSON that saved models keep), or None."""
    if regularizer is None:
        return None
    return to_dict(get(regularizer))


def get(identifier) -> Regularizer | None:
    """A Regularizer from a name, an instance, None, or a dict from :func:`serialize` (as Keras).

    Names: ``"l1"``, ``"l2"``, ``"l1_l2"`` (0.01 each), and the class names
    ``"L1"``, ``"L2"``, ``"L1L2"`` (their defaults). A dict is
    ``{"class_name": ..., "config": {...}}`` (Keras's serialized form, whose
    extra ``module`` and ``registered_name`` keys are ignored). None gives None.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown regularizer {identifier!r}; expected one of {sorted(_BY_NAME)}, a "
                             "Regularizer instance or None")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return from_dict(identifier, _CLASSES, "regularizer", "{'class_name': 'L2', 'config': {'l2': 0.01}}")
    if callable(identifier):
        raise TypeError(f"a regularizer must be a name, a Regularizer or a dict, got the function {identifier!r}: "
                        "nnscratch needs the penalty's gradient too, so subclass nnscratch.regularizers.Regularizer "
                        "and define __call__, gradient and get_config")
    raise TypeError(f"a regularizer must be a name, a Regularizer instance, a dict or None, got "
                    f"{type(identifier).__name__}: {identifier!r}")
