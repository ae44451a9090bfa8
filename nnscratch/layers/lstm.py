"""LSTM: long short-term memory, a recurrent layer with a cell and three gates."""

import numpy as np

from nnscratch import initializers
from nnscratch.layers.recurrent import Recurrent, activate, check_activation, derivative

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
    use_bias, return_sequences, go_backwards, initializers, regularizers, constraints
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
        n, steps, _ = projected.shape
        u, recurrent = self.units, self.recurrent_kernel.value
        gates = np.empty((n, steps, 4 * u), dtype=projected.dtype)      # i, f, c~, o after their activations
        cells = np.empty((n, steps, u), dtype=projected.dtype)          # c_t
        squashed = np.empty((n, steps, u), dtype=projected.dtype)       # phi(c_t)
        states = np.empty((n, steps, u), dtype=projected.dtype)         # h_t
        state = np.zeros((n, u), dtype=projected.dtype)
        cell = np.zeros((n, u), dtype=projected.dtype)
        for t in range(steps):
            z = projected[:, t] + state @ recurrent
            i = activate(z[:, :u], self.recurrent_activation)
            f = activate(z[:, u:2 * u], self.recurrent_activation)
            candidate = activate(z[:, 2 * u:3 * u], self.activation)
            o = activate(z[:, 3 * u:], self.recurrent_activation)
            cell = f * cell + i * candidate
            squashed[:, t] = activate(cell, self.activation)
            state = o * squashed[:, t]
            gates[:, t], cells[:, t], states[:, t] = np.concatenate([i, f, candidate, o], axis=1), cell, state
        if training:   # backward needs them all; inference keeps nothing
            self._gates, self._cells, self._squashed, self._states = gates, cells, squashed, states
        else:
            self._gates = self._cells = self._squashed = self._states = None
        return states

    def _scan_backward(self, grad_states):
        n, steps, u = grad_states.shape
        recurrent = self.recurrent_kernel.value
        grad_z = np.empty((n, steps, 4 * u), dtype=grad_states.dtype)
        carried = np.zeros((n, u), dtype=grad_states.dtype)          # dL/dz_{t+1} U^T
        grad_cell_next = np.zeros((n, u), dtype=grad_states.dtype)   # dL/dc_{t+1}
        forget_next = np.zeros((n, u), dtype=grad_states.dtype)      # f_{t+1}
        for t in reversed(range(steps)):
            i, f, candidate, o = np.split(self._gates[:, t], 4, axis=1)
            previous_cell = self._cells[:, t - 1] if t > 0 else np.zeros_like(self._cells[:, 0])
            grad_state = grad_states[:, t] + carried
            grad_cell = (derivative(grad_state * o, self._squashed[:, t], self.activation)
                         + grad_cell_next * forget_next)
            grad_z[:, t, :u] = derivative(grad_cell * candidate, i, self.recurrent_activation)
            grad_z[:, t, u:2 * u] = derivative(grad_cell * previous_cell, f, self.recurrent_activation)
            grad_z[:, t, 2 * u:3 * u] = derivative(grad_cell * i, candidate, self.activation)
            grad_z[:, t, 3 * u:] = derivative(grad_state * self._squashed[:, t], o, self.recurrent_activation)
            carried, grad_cell_next, forget_next = grad_z[:, t] @ recurrent.T, grad_cell, f
        return grad_z, grad_z

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}
