"""Adafactor: Adam-like steps, a matrix's second moments kept as one row and one column (Shazeer & Stern, 2018)."""

import numpy as np

from nnscratch.optimizers.base import Optimizer, check_hyperparameter
from nnscratch.optimizers.schedules import LearningRateSchedule

__all__ = ["Adafactor"]


def _rms(x) -> float:
    """The root mean square of an array, in float64."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


class Adafactor(Optimizer):
    r"""Adafactor with the Keras 3 update rule.

    For a weight array :math:`w` with gradient :math:`g`, step :math:`t`
    (1 for the first), learning rate :math:`\eta` and :math:`G = g^2 + \epsilon_1`:

    .. math::

        \beta_t &= 1 - t^{d}, \qquad \rho_t = \min(\eta, 1/\sqrt t), \qquad
        \alpha_t = \max\big(\epsilon_2, \operatorname{RMS}(w)\big)\, \rho_t \\
        R &\leftarrow \beta_t R + (1 - \beta_t)\, \operatorname{mean}_{\text{last axis}} G, \qquad
        C \leftarrow \beta_t C + (1 - \beta_t)\, \operatorname{mean}_{\text{second-last axis}} G \\
        V &= \frac{R}{\operatorname{mean}(R)} \otimes C
            \quad (\text{arrays of 2 axes or more; else } V \leftarrow \beta_t V + (1 - \beta_t) G) \\
        u &= g / \sqrt V, \qquad
        w \leftarrow w - \alpha_t \, \frac{u}{\max\big(1, \operatorname{RMS}(u) / c\big)}

    with :math:`d` = ``beta_2_decay`` and :math:`c` = ``clip_threshold``. A
    matrix's second moments are the outer product of a row :math:`R` and a
    column :math:`C` (their rank-1 factorisation): memory :math:`n + m` for an
    :math:`n \times m` kernel instead of Adam's :math:`nm`. Steps are relative
    to the weights' size (:math:`\operatorname{RMS}(w)`), and with
    ``relative_step`` (and a constant learning rate) the rate is at most
    :math:`1/\sqrt t`. There is no first moment (no momentum).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    beta_2_decay : float <= 0, default -0.8
    epsilon_1 : float >= 0, default 1e-30
    epsilon_2 : float >= 0, default 1e-3
    clip_threshold : float > 0, default 1.0
    relative_step : bool, default True
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.

    Slots, as Keras's: ``r`` (the row, the weight's shape without its last
    axis), ``c`` (the column, without its second-last axis) and ``v``; for
    an array of fewer than 2 axes ``r`` and ``c`` are unused scalars.
    """

    default_name = "adafactor"

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                 relative_step=True, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        decay = float(beta_2_decay)
        if not np.isfinite(decay) or decay > 0:     # t ** decay must shrink: 1 - t ** decay is the moving average's
            raise ValueError(f"`beta_2_decay` must be a finite number <= 0, got {beta_2_decay!r}")
        self.beta_2_decay = decay
        self.epsilon_1 = check_hyperparameter("epsilon_1", epsilon_1)
        self.epsilon_2 = check_hyperparameter("epsilon_2", epsilon_2)
        self.clip_threshold = check_hyperparameter("clip_threshold", clip_threshold)
        if self.clip_threshold == 0:
            raise ValueError("`clip_threshold` must be > 0, got 0")
        self.relative_step = bool(relative_step)

    def slot_names(self) -> tuple:
        return ("r", "c", "v")

    def slot_shape(self, name, param) -> tuple:
        shape = param.value.shape
        if name == "v":
            return shape
        if len(shape) < 2:
            return ()
        return shape[:-1] if name == "r" else shape[:-2] + shape[-1:]

    def update_step(self, param, grad, state) -> None:
        t = self.iterations + 1
        rate = self.learning_rate
        if self.relative_step and not isinstance(self._learning_rate, LearningRateSchedule):
            rate = min(rate, 1.0 / np.sqrt(t))
        rho = min(rate, 1.0 / np.sqrt(t))
        alpha = max(self.epsilon_2, _rms(param.value)) * rho
        squared = np.square(grad) + grad.dtype.type(self.epsilon_1)               # G
        beta = 1.0 - float(t) ** self.beta_2_decay
        r, c, v = state["r"], state["c"], state["v"]
        if grad.ndim >= 2:
            r[...] = beta * r + (1.0 - beta) * squared.mean(axis=-1)
            c[...] = beta * c + (1.0 - beta) * squared.mean(axis=-2)
            v[...] = (r / r.mean(axis=-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v[...] = beta * v + (1.0 - beta) * squared
        step = grad / np.sqrt(v)                                                 # u
        step *= alpha / max(1.0, _rms(step) / self.clip_threshold)
        param.value -= step

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_2_decay=self.beta_2_decay, epsilon_1=self.epsilon_1, epsilon_2=self.epsilon_2,
                      clip_threshold=self.clip_threshold, relative_step=self.relative_step)
        return config
