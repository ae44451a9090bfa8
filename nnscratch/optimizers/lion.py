"""Lion: the sign of an interpolated momentum (Chen et al., 2023)."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion ("EvoLved Sign Momentum") with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g`, learning rate
    :math:`\eta` and a momentum :math:`m` that starts at zero:

    .. math::

        w &\leftarrow w - \eta \, \operatorname{sign}\big(\beta_1 m + (1 - \beta_1) g\big) \\
        m &\leftarrow \beta_2 m + (1 - \beta_2) g

    Every weight moves by exactly :math:`\eta` (or 0), so Lion wants a
    learning rate 3-10 times smaller than Adam's (and, with decoupled
    ``weight_decay``, a decay 3-10 times larger). A momentum that decays
    below the smallest normal float is set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    beta_1 : float in (0, 1], default 0.9
    beta_2 : float in [0, 1], default 0.99
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "lion"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        beta_1 = float(beta_1)
        if not 0.0 < beta_1 <= 1.0:  # as Keras checks
            raise ValueError("Argument `beta_1` must be in the (0, 1] range. Otherwise, the optimizer "
                             f"degenerates to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = beta_1
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0)

    def slot_names(self) -> tuple:
        return ("momentum",)

    def update_step(self, param, grad, state) -> None:
        b1, b2 = self.beta_1, self.beta_2
        m = state["momentum"]
        c = np.multiply(m, b1)             # scratch
        tmp = np.multiply(grad, 1.0 - b1)  # scratch
        c += tmp                           # b1 m + (1 - b1) g
        np.sign(c, out=c)
        c *= self.learning_rate
        param.value -= c
        np.multiply(grad, 1.0 - b2, out=tmp)
        m *= b2
        m += tmp                           # m = b2 m + (1 - b2) g
        flush_subnormals(m)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2)
        return config
