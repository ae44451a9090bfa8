"""Adagrad: per-weight step sizes that shrink with the sum of past squared gradients."""

import numpy as np

from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi, Hazan & Singer, 2011) with the Keras 3 update rule.

    For a weight :math:`w` with gradient :math:`g` and learning rate
    :math:`\eta`, an accumulator :math:`a` that starts at
    ``initial_accumulator_value`` :math:`a_0` sums the squared gradients:

    .. math::

        a &\leftarrow a + g^2 \\
        w &\leftarrow w - \frac{\eta \, g}{\sqrt{a + \epsilon}}

    Weights with large past gradients take ever smaller steps; since
    :math:`a` only grows, the steps of every weight shrink over training.
    As in RMSprop, :math:`\epsilon` sits *inside* the square root.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    initial_accumulator_value : float >= 0, default 0.1
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.initial_accumulator_value = check_hyperparameter("initial_accumulator_value",
                                                              initial_accumulator_value)
        self.epsilon = check_hyperparameter("epsilon", epsilon)

    def slot_names(self) -> tuple:
        return ("accumulator",)

    def slot_initial_value(self, name) -> float:
        return self.initial_accumulator_value

    def update_step(self, param, grad, state) -> None:
        a = state["accumulator"]
        tmp = np.square(grad)              # the one scratch array of this step
        a += tmp                           # a = a + g^2 (only grows: never subnormal)
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= self.learning_rate          # eta g / sqrt(a + eps)
        param.value -= tmp

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(initial_accumulator_value=self.initial_accumulator_value, epsilon=self.epsilon)
        return config
