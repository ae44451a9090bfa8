"""Adamax: Adam with the infinity norm of past gradients in place of their RMS."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2014, section 7.1) with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g`, learning rate :math:`\eta`,
    a first moment :math:`m` and an exponentially weighted infinity norm
    :math:`u` that start at zero, step :math:`t = 1, 2, \dots`
    (``t = iterations + 1``) does

    .. math::

        m &\leftarrow m + (1 - \beta_1)(g - m) \\
        u &\leftarrow \max(\beta_2 u, |g|) \\
        w &\leftarrow w - \frac{\eta \, m}{(1 - \beta_1^t)(u + \epsilon)}

    Only :math:`m` needs a bias correction: :math:`u` is a maximum, not a
    mean, so it does not start biased towards zero. State that decays below
    the smallest normal float is set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1], default 0.999
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "adamax"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = check_hyperparameter("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon)

    def slot_names(self) -> tuple:
        return ("momentum", "norm")

    def update_step(self, param, grad, state) -> None:
        t = self.iterations + 1
        m, u = state["momentum"], state["norm"]
        tmp = np.subtract(grad, m)         # the one scratch array of this step
        tmp *= 1.0 - self.beta_1
        m += tmp                           # m = m + (1 - b1)(g - m)
        flush_subnormals(m)
        u *= self.beta_2
        np.abs(grad, out=tmp)
        np.maximum(u, tmp, out=u)          # u = max(b2 u, |g|)
        flush_subnormals(u)
        np.add(u, self.epsilon, out=tmp)
        tmp *= 1.0 - self.beta_1**t        # (1 - b1^t)(u + eps)
        np.divide(m, tmp, out=tmp)
        tmp *= self.learning_rate
        param.value -= tmp

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
