"""FTRL-Proximal: "follow the regularized leader", with L1 and L2 penalties in closed form (McMahan et al., 2013)."""

import numpy as np

from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Ftrl"]


class Ftrl(Optimizer):
    r"""FTRL-Proximal with the Keras 3 update rule (``tf.raw_ops.ApplyFtrlV2``).

    For a weight :math:`w` with gradient :math:`g` and learning rate
    :math:`\eta`, with :math:`p` = ``learning_rate_power`` (:math:`-1/2`:
    Adagrad-like step sizes), an accumulator :math:`n` that starts at
    ``initial_accumulator_value`` and a linear term :math:`z` that starts at 0:

    .. math::

        n' &= n + g^2, \qquad
        \sigma = \frac{n'^{-p} - n^{-p}}{\eta} \\
        z &\leftarrow z + g + 2 \lambda_s w - \sigma w \\
        w &\leftarrow \frac{\operatorname{clip}(z, -\lambda_1, \lambda_1) - z}
                        {n'^{-p} / \eta + 2 \lambda_2}, \qquad n \leftarrow n'

    :math:`\lambda_1`, :math:`\lambda_2` and :math:`\lambda_s` are
    ``l1_regularization_strength``, ``l2_regularization_strength`` (plus
    ``beta`` :math:`/ 2\eta`) and ``l2_shrinkage_regularization_strength``.
    The weight is the minimiser of the linearised loss so far plus the
    penalties, in closed form: it is exactly 0 while :math:`|z| \le \lambda_1`,
    which is why FTRL gives sparse weights. FTRL is made for weights that
    start at 0: whatever a weight starts at, after the first step it is
    what :math:`z` says (a zero gradient then sets it to 0).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    learning_rate_power : float <= 0, default -0.5
    initial_accumulator_value : float >= 0, default 0.1
    l1_regularization_strength, l2_regularization_strength, l2_shrinkage_regularization_strength : float >= 0
    beta : float, default 0.0
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "ftrl"

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        power = float(learning_rate_power)
        if not np.isfinite(power) or power > 0:   # as Keras checks
            raise ValueError(f"`learning_rate_power` needs to be negative or zero, got {learning_rate_power!r}")
        self.learning_rate_power = power
        self.initial_accumulator_value = check_hyperparameter("initial_accumulator_value",
                                                              initial_accumulator_value)
        self.l1_regularization_strength = check_hyperparameter("l1_regularization_strength",
                                                               l1_regularization_strength)
        self.l2_regularization_strength = check_hyperparameter("l2_regularization_strength",
                                                               l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = check_hyperparameter(
            "l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def slot_names(self) -> tuple:
        return ("accumulator", "linear")

    def slot_initial_value(self, name) -> float:
        return self.initial_accumulator_value if name == "accumulator" else 0.0

    def update_step(self, param, grad, state) -> None:
        lr, power, w = self.learning_rate, -self.learning_rate_power, param.value
        n, z = state["accumulator"], state["linear"]
        new_n = n + np.square(grad)
        scaled_new, scaled_old = np.power(new_n, power), np.power(n, power)     # n'^{-p}, n^{-p}
        z += grad + 2 * self.l2_shrinkage_regularization_strength * w - (scaled_new - scaled_old) / lr * w
        l1 = self.l1_regularization_strength
        quadratic = scaled_new / lr + 2 * (self.l2_regularization_strength + self.beta / (2.0 * lr))
        w[...] = (np.clip(z, -l1, l1) - z) / quadratic
        n[...] = new_n

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(learning_rate_power=self.learning_rate_power,
                      initial_accumulator_value=self.initial_accumulator_value,
                      l1_regularization_strength=self.l1_regularization_strength,
                      l2_regularization_strength=self.l2_regularization_strength,
                      l2_shrinkage_regularization_strength=self.l2_shrinkage_regularization_strength,
                      beta=self.beta)
        return config
