"""The optimizer base class: gradient clipping, slots and the step counter.

An optimizer turns the gradients that ``backward`` wrote into ``param.grad``
into an in-place change of ``param.value``. One call of
:meth:`Optimizer.apply_gradients` is one training step:

1. keep only the trainable parameters (``param.trainable`` is ``True``);
2. clip their gradients (at most one of the three Keras options);
3. with ``weight_decay`` :math:`\\lambda`, shrink every trainable weight
   (:meth:`Optimizer.apply_weight_decay`);
4. call the subclass's :meth:`Optimizer.update_step` once per parameter;
5. add one to :attr:`Optimizer.iterations`.

Gradient clipping, as in Keras, for gradients :math:`g_1, \\dots, g_n`:

* ``clipnorm`` :math:`c` clips each gradient by its own L2 norm,
  :math:`g_i \\leftarrow g_i \\, c / \\max(\\lVert g_i \\rVert_2, c)`;
* ``global_clipnorm`` :math:`c` clips all of them by their joint norm
  :math:`N = \\sqrt{\\sum_i \\lVert g_i \\rVert_2^2}`,
  :math:`g_i \\leftarrow g_i \\, c / \\max(N, c)` (``tf.clip_by_global_norm``);
* ``clipvalue`` :math:`v` clips every entry, :math:`g \\leftarrow \\min(\\max(g, -v), v)`.

Weight decay, as in Keras 3, is *decoupled* (Loshchilov & Hutter, 2019): it
is not added to the gradient, but applied to the weights before the update,
with the step's learning rate :math:`\\eta`,

.. math:: w \\leftarrow w - \\eta \\lambda w,

on every trainable weight, biases and batch-norm scales included, unless
:meth:`Optimizer.exclude_from_weight_decay` names it. With plain SGD (no
momentum) this is the same as adding :math:`\\lambda w` to the gradient (L2
regularisation); with momentum or an adaptive optimizer it is not.

The learning rate is a float, or a schedule
(:mod:`nnscratch.optimizers.schedules`) evaluated at the step count:
:math:`\\eta = \\text{schedule}(\\text{iterations})`.

Gradient accumulation (``gradient_accumulation_steps`` :math:`k \\ge 2`), as
Keras 3: the weights change only every :math:`k`-th call of
:meth:`Optimizer.apply_gradients`, with the mean of the :math:`k` gradients
since the last change, :math:`\\bar g = (g_1 + \\dots + g_k) / k` (clipped and
with the weight decay then, as one step); the calls in between only add their
gradient to a ``gradient_accumulator`` slot. ``iterations`` counts the
updates (what Adam's bias correction sees); a schedule sees every call.

An exponential moving average of the weights (``use_ema``, as Keras 3): after
each call, every trained weight's ``average`` slot becomes
:math:`a \\leftarrow \\mu a + (1 - \\mu) w` (:math:`\\mu` = ``ema_momentum``; the
first call copies :math:`w`); every ``ema_overwrite_frequency`` steps the
weights are replaced by their averages, and :meth:`Optimizer.finalize_variable_values`
(which ``fit`` calls when it ends, as Keras's does) replaces them for good.
"""

import abc
import math
import re

import numpy as np

from nnscratch.optimizers.schedules import LearningRateSchedule, deserialize, serialize
from nnscratch.parameter import Parameter

__all__ = ["Optimizer", "check_hyperparameter"]

_ACCUMULATOR = "gradient_accumulator"      # the slot that sums the gradients between updates (Keras's name)
_AVERAGE = "average"                       # the moving average of a weight (use_ema; Keras's name)


class Optimizer(abc.ABC):
    """Base class of all optimizers (Keras semantics).

    Subclasses implement :meth:`update_step` and list the per-parameter
    arrays they need in :meth:`slot_names`; this class creates those slots
    (zeros, lazily, one set per parameter) and does the clipping.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule
        Step size, >= 0 (0 leaves the weights as they are, as Keras allows).
        Callbacks such as ``ReduceLROnPlateau`` may change a float between
        steps; a schedule (:mod:`nnscratch.optimizers.schedules`) gives the
        rate of each step itself, and then the rate cannot be set.
    weight_decay : float or None
        Decoupled weight decay :math:`\\lambda` >= 0 (see the module
        docstring); ``None`` (the default) for none.
    clipnorm, clipvalue, global_clipnorm : float or None
        Gradient clipping (see the module docstring); at most one may be set.
    use_ema, ema_momentum, ema_overwrite_frequency : bool, float in [0, 1], int >= 1 or None
        A moving average of the weights (the module docstring).
    gradient_accumulation_steps : int >= 2 or None
        Update every this many calls, with the mean gradient (the module docstring).
    name : str or None
        Name stored in the config; defaults to the class's ``default_name``.

    Attributes
    ----------
    iterations : int
        Number of updates done so far (with gradient accumulation, calls // k).
    """

    default_name = "optimizer"

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
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
        if weight_decay is not None:
            weight_decay = float(weight_decay)
            if not (weight_decay >= 0 and math.isfinite(weight_decay)):
                raise ValueError(f"`weight_decay` must be a finite number >= 0 or None, got {weight_decay!r}")
        self.weight_decay = weight_decay
        self.gradient_accumulation_steps = _count_or_none("gradient_accumulation_steps", gradient_accumulation_steps, 2)
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_hyperparameter("ema_momentum", ema_momentum, 0.0, 1.0)
        self.ema_overwrite_frequency = _count_or_none("ema_overwrite_frequency", ema_overwrite_frequency, 1)
        self._calls = 0      # calls of apply_gradients that counted (iterations, without accumulation)
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.name = self.default_name if name is None else str(name)
        self._slots = {}  # Parameter (hashed by identity) -> {slot name: ndarray}
        self._no_decay_params = set()  # Parameters left out of weight decay ...
        self._no_decay_names = []      # ... and regular expressions on their names
        self._no_decay_pattern = None

    @property
    def iterations(self) -> int:
        """The number of updates so far: the calls of :meth:`apply_gradients` (// k with gradient accumulation)."""
        return self._calls // (self.gradient_accumulation_steps or 1)

    @iterations.setter
    def iterations(self, value) -> None:
        self._calls = int(value) * (self.gradient_accumulation_steps or 1)

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step, a Python float >= 0.

        With a schedule, ``schedule(iterations)`` (every call counted, with
        gradient accumulation, as Keras). Settable (also to a
        schedule), except when the optimizer was given a schedule: then
        setting a float raises a ``TypeError``, as in Keras.
        """
        rate = self._learning_rate
        if not isinstance(rate, LearningRateSchedule):
            return rate
        value = float(rate(self._calls))
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"the learning rate schedule {rate!r} gave {value!r} at step {self._calls}; "
                             "a learning rate must be a finite number >= 0")
        return value

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                "constructor argument, hence its learning rate is not settable (by ReduceLROnPlateau or "
                "LearningRateScheduler, for example). If you need the learning rate to be settable, "
                "you should instantiate the optimizer with a float `learning_rate` argument.")
        if callable(value):
            raise TypeError("learning_rate must be a number or a LearningRateSchedule (nnscratch.optimizers."
                            f"schedules), got the callable {value!r}; subclass LearningRateSchedule instead")
        value = float(value)
        if not (value >= 0 and math.isfinite(value)):  # 0 is allowed, as Keras: the weights stay put
            raise ValueError(f"learning_rate must be a finite number >= 0, got {value!r}")
        self._learning_rate = value

    # ------------------------------------------------------------ weight decay
    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Leave some parameters out of weight decay (Keras 3).

        Replaces any earlier exclusion. Keras excludes nothing by default.

        Parameters
        ----------
        var_list : list of Parameter, optional
            These parameters (by identity), e.g. ``model.layers[0].params["bias"]``.
        var_names : list of str, optional
            A parameter is left out when one of these regular expressions is
            found in its name (``re.search``): ``["bias"]`` leaves out every
            bias, ``["bias", "gamma", "beta"]`` also batch norm's scale and shift.
        """
        params = list(var_list or [])
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"var_list must hold Parameter objects, got {type(p).__name__}")
        names = list(var_names or [])
        if not all(isinstance(n, str) for n in names):
            raise TypeError(f"var_names must be a list of strings, got {var_names!r}")
        self._no_decay_params = set(params)
        self._no_decay_names = sorted(set(names))
        self._no_decay_pattern = re.compile("|".join(self._no_decay_names)) if names else None

    def _use_weight_decay(self, param) -> bool:
        if param in self._no_decay_params:
            return False
        return self._no_decay_pattern is None or self._no_decay_pattern.search(param.name) is None

    def apply_weight_decay(self, params) -> None:
        r"""Shrink each parameter, in place: :math:`w \leftarrow w - w \, (\eta \lambda)`.

        Does nothing without ``weight_decay``; skips the parameters
        :meth:`exclude_from_weight_decay` names. Called by
        :meth:`apply_gradients` after clipping, before the update.
        """
        if self.weight_decay is None:
            return
        factor = self.learning_rate * self.weight_decay
        for p in params:
            if self._use_weight_decay(p):
                p.value -= p.value * factor

    # ------------------------------------------------------------ the step
    def apply_gradients(self, params) -> None:
        """Do one optimisation step on ``params`` using their ``.grad``.

        Parameters
        ----------
        params : iterable of Parameter
            Frozen ones (``trainable=False``) are skipped: neither updated nor
            counted in the global norm. With none left to train, nothing
            happens and no step is counted (``iterations`` stays), as Keras.
            A parameter with a ``constraint`` (``Dense(kernel_constraint=...)``)
            is replaced by ``constraint(value)`` right after its update.
        """
        params = list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"expected Parameter objects, got {type(p).__name__}")
        params = [p for p in params if p.trainable]
        if not params:
            return
        grads = []
        for p in params:
            if p.grad.shape != p.value.shape:
                raise ValueError(f"{p!r}: gradient shape {p.grad.shape} != value shape")
            # The same array (no copy) when the dtypes already agree.
            grads.append(np.asarray(p.grad, dtype=p.value.dtype))
        if self.gradient_accumulation_steps and not self._accumulate(params, grads):
            grads = None          # (only accumulated: no update this call)
        if grads is not None:
            grads = self.clip_gradients(grads)
            self.apply_weight_decay(params)
            for p, g in zip(params, grads):
                self.update_step(p, g, self.get_slots(p))
        if self.use_ema:
            self._update_averages(params)
        for p in params:
            if p.constraint is not None:   # a weight constraint, after every call (as Keras)
                p.value[...] = p.constraint(p.value)
        self._calls += 1

    def _update_averages(self, params) -> None:
        """The moving averages of the weights after this call (Keras: the first call copies them), and every
        ``ema_overwrite_frequency`` steps the weights replaced by their averages (before the constraints)."""
        momentum = self.ema_momentum if self.iterations != 0 else 0.0
        for p in params:
            average = self.get_slots(p)[_AVERAGE]
            average *= momentum
            average += (1.0 - momentum) * p.value
        if self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0:
            self.finalize_variable_values(params)

    def finalize_variable_values(self, params) -> None:
        """With ``use_ema``, set the weights of ``params`` to their moving averages (``fit`` calls it at its end)."""
        if not self.use_ema:
            return
        for p in params:
            slots = self._slots.get(p)
            if slots is not None:
                p.value[...] = slots[_AVERAGE]

    def _accumulate(self, params, grads) -> bool:
        """Gradient accumulation: add ``grads`` to the accumulators; on every k-th call turn ``grads`` (in place)
        into the mean of the last k and empty the accumulators. Whether this call updates the weights."""
        steps = self.gradient_accumulation_steps
        accumulators = [self.get_slots(p)[_ACCUMULATOR] for p in params]
        if (self._calls + 1) % steps:
            for accumulator, g in zip(accumulators, grads):
                accumulator += g
            return False
        for k, (accumulator, g) in enumerate(zip(accumulators, grads)):
            grads[k] = (g + accumulator) / g.dtype.type(steps)
            accumulator[...] = 0
        return True

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

    def slot_initial_value(self, name) -> float:
        """The value slot ``name`` starts at (0 here; Adagrad's accumulator starts at 0.1)."""
        return 0.0

    def slot_shape(self, name, param) -> tuple:
        """The shape of slot ``name`` of ``param``: the parameter's (Adafactor's factored slots differ)."""
        return param.value.shape

    def _all_slot_names(self) -> tuple:
        """:meth:`slot_names`, and the gradient accumulator's with gradient accumulation."""
        return self.slot_names() + ((_AVERAGE,) if self.use_ema else ()) + (
            (_ACCUMULATOR,) if self.gradient_accumulation_steps else ())

    def _slot_shape(self, name, param) -> tuple:
        return param.value.shape if name in (_ACCUMULATOR, _AVERAGE) else self.slot_shape(name, param)

    def get_slots(self, param) -> dict:
        """The slot arrays of ``param``, created on first use (filled with :meth:`slot_initial_value`)."""
        slots = self._slots.get(param)
        if slots is None:
            slots = {name: np.full(self._slot_shape(name, param),
                                   0.0 if name in (_ACCUMULATOR, _AVERAGE) else self.slot_initial_value(name),
                                   dtype=param.value.dtype) for name in self._all_slot_names()}
            self._slots[param] = slots
        return slots

    def get_state(self, params) -> tuple:
        """The optimizer's state for saving: ``(meta, arrays)``.

        ``meta`` is JSON-ready: the step count, the slot names and the indices
        (into ``params``) of the parameters that have slots; ``arrays`` are those
        slots, parameter by parameter, in slot-name order. Parameters never
        updated yet have no slots and are left out. What
        :meth:`exclude_from_weight_decay` set is kept too (as indices into
        ``params`` and the names), so a resumed training decays the same weights.
        """
        params, names = list(params), list(self._all_slot_names())
        indices, arrays = [], []
        for index, param in enumerate(params):
            slots = self._slots.get(param)
            if slots is not None and names:
                indices.append(index)
                arrays += [slots[name] for name in names]
        meta = {"iterations": self._calls, "slot_names": names, "params": indices}
        if self._no_decay_params or self._no_decay_pattern is not None:
            meta["exclude_from_weight_decay"] = {
                "params": [i for i, p in enumerate(params) if p in self._no_decay_params],
                "var_names": list(self._no_decay_names)}
        return meta, arrays

    def set_state(self, params, meta, arrays) -> None:
        """Restore what :meth:`get_state` returned, for the same ``params`` in the same order."""
        params, names = list(params), list(self._all_slot_names())
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
                shape = tuple(self._slot_shape(name, param))
                if array.shape != shape or array.dtype != param.value.dtype:
                    raise ValueError(f"saved slot {name!r} of {param.name!r} is {array.dtype} {array.shape}, "
                                     f"expected {param.value.dtype} {shape} (the parameter is "
                                     f"{param.value.dtype} {param.value.shape})")
            slots[param] = {name: np.array(array) for name, array in zip(names, group)}
        excluded = meta.get("exclude_from_weight_decay")
        if excluded is not None:
            for index in excluded.get("params", []):
                if not (isinstance(index, int) and 0 <= index < len(params)):
                    raise ValueError(f"the saved optimizer state names parameter {index!r} of {len(params)}")
            self.exclude_from_weight_decay([params[i] for i in excluded.get("params", [])],
                                           excluded.get("var_names", []))
        self._slots = slots
        self._calls = int(meta.get("iterations", 0))

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
        """Hyperparameters as a JSON-serialisable dict (no slots, no step count).

        A schedule is written as ``{"class_name": ..., "config": ...}``.
        """
        rate = self._learning_rate
        return {
            "name": self.name,
            "learning_rate": serialize(rate) if isinstance(rate, LearningRateSchedule) else rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        """Create a fresh optimizer (no slots) from :meth:`get_config`'s output.

        A ``learning_rate`` dict (a serialised schedule) becomes the schedule again.
        """
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        rate = self._learning_rate
        shown = rate if isinstance(rate, LearningRateSchedule) else format(rate, "g")
        return f"{type(self).__name__}(learning_rate={shown})"


def check_hyperparameter(name, value, low=0.0, high=math.inf, high_inclusive=True) -> float:
    """Return ``value`` as a float if it is finite and in ``[low, high]`` (``[low, high)``), else raise ValueError."""
    number = float(value)
    if not (math.isfinite(number) and low <= number and (number <= high if high_inclusive else number < high)):
        interval = f"[{low:g}, {high:g}{']' if high_inclusive else ')'}" if math.isfinite(high) else f">= {low:g}"
        raise ValueError(f"`{name}` must be a finite number {'in ' if math.isfinite(high) else ''}{interval}, "
                         f"got {value!r}")
    return number


def _count_or_none(name, value, low):
    """``value``: None, or an integer >= ``low`` (a ValueError otherwise)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ValueError(f"`{name}` must be an integer >= {low} or None, got {value!r}")
    return value


def _l2_norm(g: np.ndarray) -> float:
    """L2 norm of all entries of ``g`` (whatever its shape), as a Python float."""
    return float(np.linalg.norm(g))
