r"""Learning-rate schedules: the learning rate as a function of the step (Keras 3 names).

A schedule is passed as an optimizer's ``learning_rate``; the optimizer then
uses ``schedule(step)`` with ``step = optimizer.iterations``, the number of
steps done before this one (0 for the first step; with gradient accumulation,
every call of ``apply_gradients`` counts, as in Keras):

>>> from nnscratch import optimizers
>>> from nnscratch.optimizers import schedules
>>> lr = schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96, staircase=True)
>>> opt = optimizers.SGD(learning_rate=lr)
>>> opt.learning_rate                 # schedule(opt.iterations), a float
0.1

Reading ``optimizer.learning_rate`` gives the rate of the next step (this is
what ``fit`` logs every epoch); setting it raises a ``TypeError``, as in
Keras, so ``ReduceLROnPlateau`` and ``LearningRateScheduler`` cannot be
combined with a schedule.

Every schedule computes in Python floats (float64; Keras computes in
float32, a difference below 1e-7 relative). A schedule saves its arguments
with :meth:`~LearningRateSchedule.get_config`, and :func:`serialize` /
:func:`deserialize` turn it into ``{"class_name": ..., "config": ...}`` and
back, which is how a model compiled with one is saved.

To write your own, subclass :class:`LearningRateSchedule` and implement
``__call__(self, step)`` (``step`` is a Python int) and, to save it,
``get_config``. A saved model whose optimizer uses a schedule of your own
cannot be loaded compiled (its class is unknown here): load it with
``compile=False`` and compile it again.
"""

import math
import numbers

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay",
           "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize"]


def _number(name, value, low=0.0, low_inclusive=True):
    """``value`` as a finite float >= ``low`` (> ``low`` unless ``low_inclusive``), or a ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Argument `{name}` must be a number. Received: {name}={value!r}") from None
    if not math.isfinite(number) or number < low or (number == low and not low_inclusive):
        relation = ">=" if low_inclusive else ">"
        raise ValueError(f"Argument `{name}` must be a finite number {relation} {low:g}. "
                         f"Received: {name}={value!r}")
    return number


def _steps(name, value, low_inclusive=False):
    """A step count (``decay_steps`` > 0 as Keras checks, ``warmup_steps`` >= 0), kept an int if it is one."""
    number = _number(name, value, low_inclusive=low_inclusive)
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else number


class LearningRateSchedule:
    """Base class of learning-rate schedules.

    Subclasses implement ``__call__(step)``, returning the learning rate for
    the step count ``step`` (an int >= 0), and ``get_config`` to be saved.
    """

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override "
                                  "`__call__(self, step)`.")

    def get_config(self) -> dict:
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override "
                                  "`get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config: dict) -> "LearningRateSchedule":
        return cls(**config)

    def __repr__(self) -> str:
        try:
            arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        except NotImplementedError:
            arguments = ""
        return f"{type(self).__name__}({arguments})"


class ExponentialDecay(LearningRateSchedule):
    r"""Exponential decay: :math:`\eta(t) = \eta_0 \, r^{t / T}`.

    With ``staircase=True`` the exponent is :math:`\lfloor t / T \rfloor`: the
    rate drops by the factor :math:`r` every :math:`T` steps.

    Parameters
    ----------
    initial_learning_rate : float
        :math:`\eta_0`, >= 0.
    decay_steps : number
        :math:`T`, > 0.
    decay_rate : float
        :math:`r`, >= 0 (< 1 decays, > 1 grows).
    staircase : bool, default False
    name : str, default "ExponentialDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = _number("decay_rate", decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    r"""A constant rate between boundaries.

    For boundaries :math:`b_0 < b_1 < \dots < b_{n-1}` and values
    :math:`v_0, \dots, v_n`: :math:`v_0` while :math:`t \le b_0`,
    :math:`v_i` while :math:`b_{i-1} < t \le b_i`, and :math:`v_n` once
    :math:`t > b_{n-1}` (Keras: a boundary step still gets the value before it).

    Parameters
    ----------
    boundaries : list of numbers
        Strictly increasing.
    values : list of floats
        One more than ``boundaries``, each >= 0.
    name : str, default "PiecewiseConstant"
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the length of values. "
                             f"Received: boundaries={boundaries} of length {len(boundaries)}, "
                             f"and values={values} of length {len(values)}.")
        numbers = [_number("boundaries", b, low=-math.inf) for b in boundaries]
        if any(b >= c for b, c in zip(numbers, numbers[1:])):
            raise ValueError(f"Argument `boundaries` must be strictly increasing. Received: boundaries={boundaries}")
        self.boundaries = boundaries
        self.values = [_number("values", v) for v in values]
        self.name = name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    r"""Polynomial decay from :math:`\eta_0` to :math:`\eta_e` in :math:`T` steps.

    .. math::

        \eta(t) = (\eta_0 - \eta_e) \left(1 - \frac{\min(t, T)}{T}\right)^p + \eta_e

    so the rate stays at :math:`\eta_e` after step :math:`T`. With
    ``cycle=True`` it starts again instead, over a longer period: :math:`T`
    becomes :math:`T \lceil t / T \rceil` (:math:`T` itself at step 0) and
    :math:`t` is not capped.

    Parameters
    ----------
    initial_learning_rate : float
        :math:`\eta_0`, >= 0.
    decay_steps : number
        :math:`T`, > 0.
    end_learning_rate : float, default 0.0001
        :math:`\eta_e`, >= 0.
    power : float, default 1.0
        :math:`p`, >= 0 (1 is a straight line).
    cycle : bool, default False
    name : str, default "PolynomialDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.end_learning_rate = _number("end_learning_rate", end_learning_rate)
        self.power = _number("power", power)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step):
        decay_steps = self.decay_steps
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power + self.end_learning_rate

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    r"""Inverse-time decay: :math:`\eta(t) = \eta_0 / (1 + r \, t / T)`.

    With ``staircase=True``, :math:`t / T` is replaced by :math:`\lfloor t / T \rfloor`.

    Parameters
    ----------
    initial_learning_rate : float
        :math:`\eta_0`, >= 0.
    decay_steps : number
        :math:`T`, > 0.
    decay_rate : float
        :math:`r`, >= 0.
    staircase : bool, default False
    name : str, default "InverseTimeDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = _number("decay_rate", decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    r"""Cosine decay (Loshchilov & Hutter's SGDR without restarts), with an optional linear warmup.

    Without warmup (``warmup_target=None``), over :math:`T` decay steps:

    .. math::

        \eta(t) = \eta_0 \left((1 - \alpha) \, \tfrac12 \left(1 + \cos\frac{\pi \min(t, T)}{T}\right)
                  + \alpha\right)

    which goes from :math:`\eta_0` to :math:`\alpha \eta_0` and stays there.
    With a warmup target :math:`\eta_w` and :math:`W` warmup steps, the rate
    first rises in a straight line, :math:`\eta(t) = \eta_0 + (\eta_w - \eta_0)
    \, t / W` for :math:`t < W`, then decays as above from :math:`\eta_w`,
    with :math:`t - W` for :math:`t` (capped at :math:`T`).

    Parameters
    ----------
    initial_learning_rate : float
        :math:`\eta_0`, >= 0.
    decay_steps : number
        :math:`T`, > 0.
    alpha : float, default 0.0
        :math:`\alpha`, >= 0: the final rate as a fraction of the decay's start.
    name : str, default "CosineDecay"
    warmup_target : float or None, default None
        :math:`\eta_w`, >= 0.
    warmup_steps : number, default 0
        :math:`W`, >= 0 (only used with a ``warmup_target``).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.alpha = _number("alpha", alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else _number("warmup_target", warmup_target)
        self.warmup_steps = _steps("warmup_steps", warmup_steps, low_inclusive=True)

    def _decay(self, step, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (step / self.warmup_steps) + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    r"""Cosine decay with warm restarts (SGDR, Loshchilov & Hutter, 2017), as Keras's.

    The rate decays along a cosine for :math:`T_0` steps, then restarts;
    period :math:`i` (from 0) lasts :math:`T_0 m_t^i` steps and starts at
    :math:`\eta_0 m_m^i`. With :math:`f = t / T_0`, the period
    :math:`i = \lfloor \log(1 - f (1 - m_t)) / \log m_t 
floor` (:math:`\lfloor f 
floor`
    when :math:`m_t = 1`) and :math:`g` the fraction of period :math:`i` done,

    .. math::

        \eta(t) = \eta_0 \left((1 - lpha)\, m_m^i\, 	frac12 \left(1 + \cos \pi g
ight) + lpha
ight) .

    Parameters
    ----------
    initial_learning_rate : float
        :math:`\eta_0`, >= 0.
    first_decay_steps : number
        :math:`T_0`, > 0.
    t_mul : float, default 2.0
        :math:`m_t` > 0: each period is this many times longer than the last (below 1 the periods
        add up to :math:`T_0 / (1 - m_t)` steps, and a later step is an error).
    m_mul : float, default 1.0
        :math:`m_m` >= 0: each restart starts this many times lower.
    alpha : float, default 0.0
        :math:`lpha`, >= 0: the floor, as a fraction of :math:`\eta_0`.
    name : str, default "SGDRDecay"
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _steps("first_decay_steps", first_decay_steps)
        self.t_mul = _number("t_mul", t_mul, low_inclusive=False)
        self.m_mul = _number("m_mul", m_mul)
        self.alpha = _number("alpha", alpha)
        self.name = name

    def period(self, step) -> tuple:
        """``(i, g)``: the period that ``step`` falls in (from 0) and the fraction of it done."""
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            return restart, fraction - restart
        def done(periods):          # the length of the first ``periods`` periods, in units of T0
            return (1.0 - self.t_mul ** periods) / (1.0 - self.t_mul)

        if self.t_mul < 1.0 and fraction >= 1.0 / (1.0 - self.t_mul):
            raise ValueError(f"CosineDecayRestarts with t_mul={self.t_mul} < 1: the periods, ever shorter, add up "
                             f"to {self.first_decay_steps / (1.0 - self.t_mul):g} steps, and step {step} is past "
                             "them (Keras gives NaN there)")
        restart = math.floor(math.log(1.0 - fraction * (1.0 - self.t_mul)) / math.log(self.t_mul))
        while done(restart + 1) <= fraction:         # the logarithm's rounding, corrected: 363 steps with
            restart += 1                             # T0 = 3 and t_mul = 3 start period 5, not end period 4
        while restart > 0 and done(restart) > fraction:
            restart -= 1
        return restart, (fraction - done(restart)) / self.t_mul ** restart

    def __call__(self, step):
        restart, fraction = self.period(step)
        cosine = 0.5 * self.m_mul ** restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


# class name -> class; deserialize looks names up here.
_SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                            InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """Return ``{"class_name": ..., "config": ...}``, the form :func:`deserialize` accepts."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"expected a LearningRateSchedule, got {type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """Rebuild a built-in schedule from :func:`serialize`'s output (Keras's extra keys are ignored)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a learning rate schedule config needs a 'class_name' key, got {config!r}")
    cls = _SCHEDULES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown learning rate schedule {config['class_name']!r}; known schedules: "
                         f"{sorted(_SCHEDULES)}. A model saved with a schedule of your own loads with "
                         "load_model(..., compile=False); then compile it again with your schedule.")
    return cls.from_config(dict(config.get("config") or {}))
