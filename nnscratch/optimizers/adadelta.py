"""Adadelta: steps scaled by the ratio of running RMS of past steps to past gradients."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012) with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g`, learning rate
    :math:`\eta` and decay :math:`\rho`, two running means start at zero:
    :math:`s` of the squared gradients and :math:`d` of the squared steps.

    .. math::

        s &\leftarrow \rho s + (1 - \rho) g^2 \\
        \Delta &= -\frac{\sqrt{d + \epsilon}}{\sqrt{s + \epsilon}} \, g \\
        d &\leftarrow \rho d + (1 - \rho) \Delta^2 \\
        w &\leftarrow w + \eta \Delta

    The ratio of the two root-mean-squares gives :math:`\Delta` the units of
    :math:`w`; the paper has no learning rate (:math:`\eta = 1`), Keras's
    default is 0.001, so pass ``learning_rate=1.0`` for the paper's method.
    State that decays below the smallest normal float is set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    rho : float in [0, 1], default 0.95
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "adadelta"

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.rho = check_hyperparameter("rho", rho, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon)

    def slot_names(self) -> tuple:
        return ("accumulated_grad", "accumulated_delta_var")

    def update_step(self, param, grad, state) -> None:
        rho, eps = self.rho, self.epsilon
        s, d = state["accumulated_grad"], state["accumulated_delta_var"]
        tmp = np.square(grad)              # scratch
        tmp *= 1.0 - rho
        s *= rho
        s += tmp                           # s = rho s + (1 - rho) g^2
        flush_subnormals(s)

        delta = np.add(d, eps)             # the step, built in place
        np.sqrt(delta, out=delta)
        delta *= grad                      # sqrt(d + eps) g
        np.add(s, eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        delta /= tmp
        np.negative(delta, out=delta)      # Delta = -sqrt(d + eps) g / sqrt(s + eps)

        np.square(delta, out=tmp)
        tmp *= 1.0 - rho
        d *= rho
        d += tmp                           # d = rho d + (1 - rho) Delta^2
        flush_subnormals(d)

        delta *= self.learning_rate
        param.value += delta               # w = w + eta Delta

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rho=self.rho, epsilon=self.epsilon)
        return config
