"""Nadam: Adam with Nesterov momentum (Dozat, 2016)."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Nadam"]


class Nadam(Optimizer):
    r"""Nadam with the Keras 3 update rule (Dozat's momentum schedule).

    Step :math:`t = 1, 2, \dots` (``t = iterations + 1``) uses a momentum
    coefficient that grows towards :math:`\beta_1` (the "momentum cache"),

    .. math::

        \mu_t = \beta_1 \left(1 - \tfrac12 \, 0.96^{t}\right), \qquad
        \Pi_t = \prod_{i=1}^{t} \mu_i ,

    and, for a weight :math:`w` with gradient :math:`g`, learning rate
    :math:`\eta` and moments :math:`m, v` that start at zero,

    .. math::

        m &\leftarrow m + (1 - \beta_1)(g - m) \\
        v &\leftarrow v + (1 - \beta_2)(g^2 - v) \\
        \hat m &= \frac{\mu_{t+1}}{1 - \Pi_{t+1}} \, m + \frac{1 - \mu_t}{1 - \Pi_t} \, g \\
        \hat v &= \frac{v}{1 - \beta_2^t} \\
        w &\leftarrow w - \frac{\eta \, \hat m}{\sqrt{\hat v} + \epsilon}

    :math:`\hat m` looks one step ahead: the bias-corrected momentum as it
    will be at the next step, plus the current gradient's share (Nesterov).
    Keras keeps :math:`\Pi_t` as a variable updated once per step; here it is
    recomputed from the step count when needed (so a loaded model resumes
    exactly) and cached. Moments that decay below the smallest normal float
    are set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "nadam"

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
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = check_hyperparameter("epsilon", epsilon)
        self._product_cache = (0, 1.0)  # (t, Pi_t)

    def slot_names(self) -> tuple:
        return ("momentum", "velocity")

    def momentum_cache(self, t) -> float:
        r""":math:`\mu_t = \beta_1 (1 - 0.5 \cdot 0.96^t)`."""
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def momentum_product(self, t) -> float:
        r""":math:`\Pi_t = \mu_1 \mu_2 \cdots \mu_t` (1 for ``t = 0``), extending the cached product."""
        n, product = self._product_cache
        if n > t:
            n, product = 0, 1.0
        while n < t:
            n += 1
            product *= self.momentum_cache(n)
        self._product_cache = (n, product)
        return product

    def update_step(self, param, grad, state) -> None:
        b1, b2 = self.beta_1, self.beta_2
        t = self.iterations + 1
        mu_t, mu_next = self.momentum_cache(t), self.momentum_cache(t + 1)
        product = self.momentum_product(t)
        coef_m = mu_next / (1.0 - product * mu_next)   # mu_{t+1} / (1 - Pi_{t+1})
        coef_g = (1.0 - mu_t) / (1.0 - product)        # (1 - mu_t) / (1 - Pi_t)

        m, v = state["momentum"], state["velocity"]
        tmp = np.subtract(grad, m)         # scratch
        tmp *= 1.0 - b1
        m += tmp                           # m = m + (1 - b1)(g - m)
        np.square(grad, out=tmp)
        tmp -= v
        tmp *= 1.0 - b2
        v += tmp                           # v = v + (1 - b2)(g^2 - v)
        flush_subnormals(m)
        flush_subnormals(v)

        m_hat = np.multiply(m, coef_m)
        np.multiply(grad, coef_g, out=tmp)
        m_hat += tmp                       # m_hat
        np.divide(v, 1.0 - b2**t, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.epsilon                # sqrt(v_hat) + eps
        m_hat /= tmp
        m_hat *= self.learning_rate
        param.value -= m_hat

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
