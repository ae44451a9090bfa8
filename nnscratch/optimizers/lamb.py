"""Lamb: Adam's step, rescaled layer by layer to the size of the weights (You et al., 2020)."""

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Lamb"]


class Lamb(Optimizer):
    r"""Lamb ("Layer-wise Adaptive Moments for Batch training") with the Keras 3 update rule.

    For a weight array :math:`w` (one layer's kernel, say) with gradient
    :math:`g`, step number :math:`t` (1 for the first step), learning rate
    :math:`\eta` and moments :math:`m, v` that start at zero:

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        u &= \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}
            \quad \text{(Adam's step direction)} \\
        r &= \frac{\lVert w \rVert_2}{\lVert u \rVert_2}
            \quad (1 \text{ if either norm is } 0) \\
        w &\leftarrow w - \eta \, r \, u

    The trust ratio :math:`r` makes every array move by :math:`\eta` times
    its own norm, whatever the scale of its gradients, which is what lets
    Lamb train with very large batches. The norms are over the whole array.
    Moments that decay below the smallest normal float are set to 0
    (:func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer` (the decay is
        decoupled and comes before the step, as Keras's).
    """

    default_name = "lamb"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
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

    def slot_names(self) -> tuple:
        return ("momentum", "velocity")

    def update_step(self, param, grad, state) -> None:
        b1, b2, t = self.beta_1, self.beta_2, self.iterations + 1
        m, v = state["momentum"], state["velocity"]
        m += (grad - m) * (1.0 - b1)                   # m = b1 m + (1 - b1) g
        v += (np.square(grad) - v) * (1.0 - b2)        # v = b2 v + (1 - b2) g^2
        flush_subnormals(m)
        flush_subnormals(v)
        step = np.sqrt(v / (1.0 - b2 ** t))
        step += self.epsilon
        np.divide(m / (1.0 - b1 ** t), step, out=step)  # u, Adam's direction
        w_norm = float(np.sqrt(np.sum(np.square(param.value, dtype=np.float64))))
        u_norm = float(np.sqrt(np.sum(np.square(step, dtype=np.float64))))
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        step *= self.learning_rate * ratio
        param.value -= step

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
