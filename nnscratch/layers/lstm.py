"""LSTM: long short-term memory, a recurrent layer with a cell and three gates."""

import numpy as np

from nnscratch import initializers, kernels
from nnscratch.layers.recurrent import Recurrent, check_activation

__all__ = ["LSTM"]


class LSTM(Recurrent):
    r"""Long short-term memory (Hochreiter and Schmidhuber, 1997), with Keras's gate order i, f, c, o.

    Each step splits :math:`z_t = x_t W + h_{t-1} U + b` (N, 4 units) into four
    blocks and, with :math:`\sigma` the ``recurrent_activation`` (sigmoid) and
    :math:`\phi` the ``activation`` (tanh), from :math:`h_0 = c_0 = 0`:

    .. math::
        i_t = \sigma(z^i_t), \quad f_t = \sigma(z^f_t), \quad \tilde c_t = \phi(z^c_t), \quad
        o_t = \sigma(z^o_t), \qquad
        c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t, \qquad h_t = o_t \odot \phi(c_t).

    Shapes: ``x`` (N, T, F); kernel ``W`` (F, 4 units), recurrent kernel
    ``U`` (units, 4 units), bias ``b`` (4 units,); output ``h_T`` (N, units)
    or every ``h_t`` (N, T, units) with ``return_sequences=True``.

    Backward through time, last step first, with :math:`g_t` the gradient at
    the output :math:`h_t`: the state feeds the output and the next step's
    gates, the cell feeds :math:`h_t` and the next cell, so

    .. math::
        \frac{\partial L}{\partial h_t} &= g_t + \frac{\partial L}{\partial z_{t+1}} U^T, \qquad
        \frac{\partial L}{\partial c_t} = \frac{\partial L}{\partial h_t} \odot o_t \odot \phi'(c_t)
            + \frac{\partial L}{\partial c_{t+1}} \odot f_{t+1}, \\
        \frac{\partial L}{\partial o_t} &= \frac{\partial L}{\partial h_t} \odot \phi(c_t), \quad
        \frac{\partial L}{\partial i_t} = \frac{\partial L}{\partial c_t} \odot \tilde c_t, \quad
        \frac{\partial L}{\partial f_t} = \frac{\partial L}{\partial c_t} \odot c_{t-1}, \quad
        \frac{\partial L}{\partial \tilde c_t} = \frac{\partial L}{\partial c_t} \odot i_t,

    and each block of :math:`\partial L / \partial z_t` is its gate's gradient
    times the derivative of its activation (:math:`\sigma' = \sigma (1 - \sigma)`,
    :math:`\phi' = 1 - \phi^2`). The additive path through :math:`f_t` is why
    the cell remembers over many steps: its gradient is scaled by the forget
    gates, not by a matrix at every step.

    Parameters
    ----------
    units : int
    activation, recurrent_activation : str
        Elementwise activations, ``"tanh"`` and ``"sigmoid"`` by default.
    unit_forget_bias : bool
        Start the forget gate's bias at 1 (Keras's default): the cell keeps
        its memory at the start of training.
    use_bias, return_sequences, go_backwards, dropout, seed, initializers, regularizers, constraints
        As :class:`~nnscratch.layers.SimpleRNN`.
    """

    blocks = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = check_activation(recurrent_activation, "recurrent_activation")
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_values(self, generator):
        if not self.unit_forget_bias:
            return super()._bias_values(generator)
        initializer = initializers.get(self.bias_initializer)   # Keras: [init(units), ones(units), init(2 units)]
        return np.concatenate([initializer((self.units,), generator), np.ones(self.units),
                               initializer((2 * self.units,), generator)])

    def _scan(self, projected, training):
        states, *kept = kernels.recurrent_backend().lstm_forward(
            projected, self.recurrent_kernel.value, self.activation, self.recurrent_activation, self._recurrent_masks,
            keep=training)
        self._kept, self._states = (kept, states) if training else (None, None)   # inference keeps nothing
        return states

    def _scan_backward(self, grad_states):
        gates, cells, squashed = self._kept
        grad_z = kernels.recurrent_backend().lstm_backward(
            grad_states, self.recurrent_kernel.value, gates, cells, squashed, self.activation,
            self.recurrent_activation, self._recurrent_masks)
        return grad_z, grad_z

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}
