"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

from nnscratch.optimizers.adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""Adam with decoupled weight decay, on by default (Keras 3).

    Exactly :class:`~nnscratch.optimizers.Adam` with ``weight_decay``
    :math:`\lambda` (default 0.004): before each Adam step, every trainable
    weight shrinks by :math:`w \leftarrow w - \eta \lambda w` (see
    :mod:`nnscratch.optimizers.base`). Unlike an L2 penalty added to the
    loss, the decay does not go through Adam's division by
    :math:`\sqrt{v}`, so every weight decays at the same relative rate.
    Keras excludes nothing by default (biases decay too);
    :meth:`~nnscratch.optimizers.base.Optimizer.exclude_from_weight_decay`
    leaves some weights out.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    weight_decay : float >= 0, default 0.004
        Must not be None.
    beta_1, beta_2, epsilon, amsgrad, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.Adam`.
    """

    default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
