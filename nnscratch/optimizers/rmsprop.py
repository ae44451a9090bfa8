"""RMSprop: divide the gradient by a running root-mean-square of past gradients."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012) with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g`, learning rate :math:`\eta`,
    decay :math:`\rho` and a running mean square :math:`s` that starts at zero:

    .. math::

        s &\leftarrow \rho s + (1 - \rho) g^2 \\
        \Delta &= \frac{\eta \, g}{\sqrt{s + \epsilon}} \\
        w &\leftarrow w - \Delta

    ``centered=True`` also tracks the mean gradient :math:`\bar g
    \leftarrow \rho \bar g + (1 - \rho) g` and uses the variance instead:
    :math:`\Delta = \eta g / \sqrt{s - \bar g^2 + \epsilon}`.

    ``momentum`` :math:`\mu > 0` accumulates the steps first:
    :math:`m \leftarrow \mu m + \Delta`, :math:`w \leftarrow w - m`.

    Note that :math:`\epsilon` sits *inside* the square root (Keras), unlike Adam.
    State that decays below the smallest normal float (a weight whose gradient
    stays 0) is set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float, default 0.001
    rho : float in [0, 1], default 0.9
    momentum : float in [0, 1], default 0.0
    epsilon : float >= 0, default 1e-7
    centered : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer` (``learning_rate`` may
        also be a schedule, :mod:`nnscratch.optimizers.schedules`).
    """

    default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.rho = check_hyperparameter("rho", rho, 0.0, 1.0)
        self.momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon)
        self.centered = bool(centered)

    def slot_names(self) -> tuple:
        names = ("velocity",)
        if self.momentum > 0:
            names += ("momentum",)
        if self.centered:
            names += ("average_gradient",)
        return names

    def update_step(self, param, grad, state) -> None:
        rho = self.rho
        s = state["velocity"]
        tmp = np.empty_like(grad)          # the one scratch array of this step
        np.square(grad, out=tmp)
        tmp *= 1.0 - rho
        s *= rho
        s += tmp                           # s = rho s + (1 - rho) g^2
        flush_subnormals(s)                # no slow subnormal numbers in the state

        if self.centered:
            g_bar = state["average_gradient"]
            np.multiply(grad, 1.0 - rho, out=tmp)
            g_bar *= rho
            g_bar += tmp                   # g_bar = rho g_bar + (1 - rho) g
            flush_subnormals(g_bar)
            np.square(g_bar, out=tmp)
            np.subtract(s, tmp, out=tmp)   # s - g_bar^2
        else:
            np.copyto(tmp, s)
        tmp += self.epsilon
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= self.learning_rate          # tmp = Delta

        if self.momentum > 0:
            m = state["momentum"]
            m *= self.momentum
            m += tmp
            flush_subnormals(m)
            param.value -= m
        else:
            param.value -= tmp

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                      centered=self.centered)
        return config
