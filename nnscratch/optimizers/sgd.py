"""Stochastic gradient descent, optionally with (Nesterov) momentum."""

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent with optional momentum (Keras 3 rule).

    For a weight :math:`w` with gradient :math:`g`, learning rate
    :math:`\eta` and momentum :math:`\mu`:

    * ``momentum=0``: :math:`w \leftarrow w - \eta g`;
    * otherwise, with a velocity :math:`v` that starts at zero,

      .. math::

          v \leftarrow \mu v - \eta g, \qquad w \leftarrow w + v;

    * ``nesterov=True`` looks one step ahead along the new velocity:

      .. math::

          v \leftarrow \mu v - \eta g, \qquad w \leftarrow w + \mu v - \eta g.

    A velocity that decays below the smallest normal float (a weight whose
    gradient stays 0) is set to 0 (see
    :func:`~nnscratch.kernels.optimizer_reference.flush_subnormals`).

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1], default 0.0
    nesterov : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm, name
        See :class:`~nnscratch.optimizers.base.Optimizer` (``learning_rate`` may
        also be a schedule, :mod:`nnscratch.optimizers.schedules`).
    """

    default_name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        momentum = float(momentum)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"`momentum` must be a float between [0, 1], got {momentum}")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def slot_names(self) -> tuple:
        return ("velocity",) if self.momentum != 0 else ()

    def update_step(self, param, grad, state) -> None:
        w = param.value
        step = self.learning_rate * grad  # eta * g, the one temporary we need
        if self.momentum == 0:
            w -= step
            return
        v = state["velocity"]
        v *= self.momentum
        v -= step                          # v = mu v - eta g
        flush_subnormals(v)                # no slow subnormal numbers in the state
        if self.nesterov:
            w += self.momentum * v - step  # mu v - eta g, with the new v
        else:
            w += v

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config
