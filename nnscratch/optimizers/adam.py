"""Adam: adaptive moment estimation (Kingma & Ba, 2014)."""

import math

from nnscratch import kernels
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Adam"]


class Adam(Optimizer):
    r"""Adam with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g`, learning rate :math:`\eta`
    and moments :math:`m, v` that start at zero, step :math:`t = 1, 2, \dots`
    (``t = iterations + 1``) does

    .. math::

        \alpha_t &= \eta \, \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        w &\leftarrow w - \alpha_t \, \frac{m}{\sqrt{v} + \epsilon}

    The bias corrections of :math:`m` and :math:`v` are folded into
    :math:`\alpha_t`, so :math:`\epsilon` is the paper's "epsilon hat".
    With ``amsgrad=True`` the denominator uses :math:`\hat v \leftarrow
    \max(\hat v, v)` instead of :math:`v`.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
    amsgrad : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer` (``learning_rate`` may
        also be a schedule, :mod:`nnscratch.optimizers.schedules`).
    """

    default_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = check_hyperparameter("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = check_hyperparameter("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)

    def slot_names(self) -> tuple:
        names = ("momentum", "velocity")
        return names + ("velocity_hat",) if self.amsgrad else names

    def update_step(self, param, grad, state) -> None:
        b1, b2 = self.beta_1, self.beta_2
        t = self.iterations + 1
        alpha = self.learning_rate * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        # One pass over the arrays in the Numba twin, nine in the NumPy one
        # (read nnscratch/kernels/optimizer_reference.py); bit-identical results.
        kernels.optimizer_backend().adam_update(
            param.value, grad, state["momentum"], state["velocity"], state.get("velocity_hat"),
            alpha, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config
