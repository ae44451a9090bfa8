"""The optimizer base class: gradient clipping, slots and the step counter.

An optimizer turns the gradients that ``backward`` wrote into ``param.grad``
into an in-place change of ``param.value``. One call of
:meth:`Optimizer.apply_gradients` is one training step:

1. keep only the trainable parameters (``param.trainable`` is ``True``);
2. clip their gradients (at most one of the three Keras options);
3. call the subclass's :meth:`Optimizer.update_step` once per parameter;
4. add one to :attr:`Optimizer.iterations`.

Gradient clipping, as in Keras, for gradients :math:`g_1, \\dots, g_n`:

* ``clipnorm`` :math:`c` clips each gradient by its own L2 norm,
  :math:`g_i \\leftarrow g_i \\, c / \\max(\\lVert g_i \\rVert_2, c)`;
* ``global_clipnorm`` :math:`c` clips all of them by their joint norm
  :math:`N = \\sqrt{\\sum_i \\lVert g_i \\rVert_2^2}`,
  :math:`g_i \\leftarrow g_i \\, c / \\max(N, c)` (``tf.clip_by_global_norm``);
* ``clipvalue`` :math:`v` clips every entry, :math:`g \\leftarrow \\min(\\max(g, -v), v)`.
"""

import abc
import math

import numpy as np

from nnscratch.parameter import Parameter

__all__ = ["Optimizer"]

_CLIP_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm")


class Optimizer(abc.ABC):
    """Base class of all optimizers (Keras semantics).

    Subclasses implement :meth:`update_step` and list the per-parameter
    arrays they need in :meth:`slot_names`; this class creates those slots
    (zeros, lazily, one set per parameter) and does the clipping.

    Parameters
    ----------
    learning_rate : float
        Step size, >= 0 (0 leaves the weights as they are, as Keras allows).
        A plain attribute: callbacks such as ``ReduceLROnPlateau`` may change
        it between steps.
    clipnorm, clipvalue, global_clipnorm : float or None
        Gradient clipping (see the module docstring); at most one may be set.
    name : str or None
        Name stored in the config; defaults to the class's ``default_name``.

    Attributes
    ----------
    iterations : int
        Number of steps done so far.
    """

    default_name = "optimizer"

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        given = {"clipnorm": clipnorm, "clipvalue": clipvalue,
                 "global_clipnorm": global_clipnorm}
        if sum(value is not None for value in given.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        for key, value in given.items():
            if value is not None and not value > 0:
                raise ValueError(f"`{key}` must be > 0, got {value!r}")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.learning_rate = learning_rate
        self.name = self.default_name if name is None else str(name)
        self.iterations = 0
        self._slots = {}  # Parameter (hashed by identity) -> {slot name: ndarray}

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """The current learning rate, a Python float > 0 (settable)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        value = float(value)
        if not (value >= 0 and math.isfinite(value)):  # 0 is allowed, as Keras: the weights stay put
            raise ValueError(f"learning_rate must be a finite number >= 0, got {value!r}")
        self._learning_rate = value

    # ------------------------------------------------------------ the step
    def apply_gradients(self, params) -> None:
        """Do one optimisation step on ``params`` using their ``.grad``.

        Parameters
        ----------
        params : iterable of Parameter
            Frozen ones (``trainable=False``) are skipped: neither updated nor
            counted in the global norm.
        """
        params = list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"expected Parameter objects, got {type(p).__name__}")
        params = [p for p in params if p.trainable]
        grads = []
        for p in params:
            if p.grad.shape != p.value.shape:
                raise ValueError(f"{p!r}: gradient shape {p.grad.shape} != value shape")
            # The same array (no copy) when the dtypes already agree.
            grads.append(np.asarray(p.grad, dtype=p.value.dtype))
        grads = self.clip_gradients(grads)
        for p, g in zip(params, grads):
            self.update_step(p, g, self.get_slots(p))
        self.iterations += 1

    def clip_gradients(self, grads) -> list:
        """Return the gradients clipped by this optimizer's option (new arrays if clipped).

        The input arrays are never changed, so ``param.grad`` stays as backward wrote it.
        """
        if self.clipnorm is not None:
            c = self.clipnorm
            return [g * (c / max(_l2_norm(g), c)) for g in grads]
        if self.global_clipnorm is not None:
            c = self.global_clipnorm
            total = math.sqrt(sum(_l2_norm(g) ** 2 for g in grads))
            scale = c / max(total, c)  # NaN when total is NaN, as in TensorFlow
            return [g * scale for g in grads]
        if self.clipvalue is not None:
            v = self.clipvalue
            return [np.clip(g, -v, v) for g in grads]
        return grads

    def slot_names(self) -> tuple:
        """Names of the per-parameter arrays this optimizer keeps (none here)."""
        return ()

    def get_slots(self, param) -> dict:
        """The slot arrays of ``param``, created as zeros on first use."""
        slots = self._slots.get(param)
        if slots is None:
            slots = {name: np.zeros_like(param.value) for name in self.slot_names()}
            self._slots[param] = slots
        return slots

    def get_state(self, params) -> tuple:
        """The optimizer's state for saving: ``(meta, arrays)``.

        ``meta`` is JSON-ready: the step count, the slot names and the indices
        (into ``params``) of the parameters that have slots; ``arrays`` are those
        slots, parameter by parameter, in slot-name order. Parameters never
        updated yet have no slots and are left out.
        """
        names = list(self.slot_names())
        indices, arrays = [], []
        for index, param in enumerate(params):
            slots = self._slots.get(param)
            if slots is not None and names:
                indices.append(index)
                arrays += [slots[name] for name in names]
        return {"iterations": self.iterations, "slot_names": names, "params": indices}, arrays

    def set_state(self, params, meta, arrays) -> None:
        """Restore what :meth:`get_state` returned, for the same ``params`` in the same order."""
        params, names = list(params), list(self.slot_names())
        if list(meta.get("slot_names", [])) != names:
            raise ValueError(f"the saved optimizer state has slots {meta.get('slot_names')}, "
                             f"{type(self).__name__} expects {names}")
        indices = list(meta.get("params", []))
        if len(arrays) != len(indices) * len(names):
            raise ValueError(f"the saved optimizer state should have {len(indices) * len(names)} arrays, "
                             f"got {len(arrays)}")
        slots = {}
        for k, index in enumerate(indices):
            if not (isinstance(index, int) and 0 <= index < len(params)):
                raise ValueError(f"the saved optimizer state names parameter {index!r} of {len(params)}")
            param = params[index]
            group = arrays[k * len(names):(k + 1) * len(names)]
            for name, array in zip(names, group):
                if array.shape != param.value.shape or array.dtype != param.value.dtype:
                    raise ValueError(f"saved slot {name!r} of {param.name!r} is {array.dtype} {array.shape}, "
                                     f"the parameter is {param.value.dtype} {param.value.shape}")
            slots[param] = {name: np.array(array) for name, array in zip(names, group)}
        self._slots = slots
        self.iterations = int(meta.get("iterations", 0))

    @abc.abstractmethod
    def update_step(self, param, grad, state) -> None:
        """Change ``param.value`` in place using ``grad`` and the slots in ``state``.

        Parameters
        ----------
        param : Parameter
        grad : ndarray
            The clipped gradient, in ``param.value.dtype``.
        state : dict of str to ndarray
            This parameter's slots; update them in place.
        """

    # ------------------------------------------------------------ saving
    def get_config(self) -> dict:
        """Hyperparameters as a JSON-serialisable dict (no slots, no step count)."""
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        """Create a fresh optimizer (no slots) from :meth:`get_config`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate:g})"


def _l2_norm(g: np.ndarray) -> float:
    """L2 norm of all entries of ``g`` (whatever its shape), as a Python float."""
    return float(np.linalg.norm(g))
