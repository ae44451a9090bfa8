"""GRU: the gated recurrent unit, Keras 3's version (the reset gate after the product, ``reset_after=True``)."""

import numpy as np

from nnscratch import initializers
from nnscratch.layers.recurrent import Recurrent, activate, check_activation, derivative

__all__ = ["GRU"]


class GRU(Recurrent):
    r"""Gated recurrent unit (Cho et al., 2014), with Keras's block order z, r, h and ``reset_after=True``.

    The input part :math:`p_t = x_t W + b^{x}` and the state part
    :math:`q_t = h_{t-1} U + b^{h}` (each N, 3 units) are split into blocks
    z, r, h; with :math:`\sigma` the ``recurrent_activation`` (sigmoid) and
    :math:`\phi` the ``activation`` (tanh), from :math:`h_0 = 0`:

    .. math::
        u_t = \sigma(p^z_t + q^z_t), \quad r_t = \sigma(p^r_t + q^r_t), \quad
        \tilde h_t = \phi(p^h_t + r_t \odot q^h_t), \qquad
        h_t = u_t \odot h_{t-1} + (1 - u_t) \odot \tilde h_t.

    (:math:`u_t`, the update gate, is Keras's ``z``.) Shapes: kernel ``W``
    (F, 3 units), recurrent kernel ``U`` (units, 3 units), bias (2, 3 units):
    row 0 is :math:`b^x`, row 1 :math:`b^h`.

    Backward, last step first, with :math:`g_t` the gradient at the output
    :math:`h_t`. :math:`h_{t-1}` reaches :math:`h_t` directly (times
    :math:`u_t`) and through :math:`q_t`, so

    .. math::
        \frac{\partial L}{\partial h_t} &= g_t + \frac{\partial L}{\partial q_{t+1}} U^T
            + \frac{\partial L}{\partial h_{t+1}} \odot u_{t+1}, \\
        \frac{\partial L}{\partial u_t} &= \frac{\partial L}{\partial h_t} \odot (h_{t-1} - \tilde h_t), \quad
        \frac{\partial L}{\partial \tilde h_t} = \frac{\partial L}{\partial h_t} \odot (1 - u_t), \quad
        \frac{\partial L}{\partial r_t} = \frac{\partial L}{\partial a^h_t} \odot q^h_t,

    where :math:`a^h_t = p^h_t + r_t \odot q^h_t` and each pre-activation's
    gradient is its gate's times the activation's derivative. The blocks z
    and r of :math:`\partial L/\partial p_t` and :math:`\partial L/\partial q_t`
    are equal; block h is :math:`\partial L/\partial a^h_t` for :math:`p` and
    :math:`r_t \odot \partial L/\partial a^h_t` for :math:`q`.

    Parameters
    ----------
    units : int
    activation, recurrent_activation : str
        Elementwise activations, ``"tanh"`` and ``"sigmoid"`` by default.
    reset_after : bool
        Only True (Keras 3's default) is supported: the reset gate scales
        :math:`h_{t-1} U`, not :math:`h_{t-1}`.
    use_bias, return_sequences, go_backwards, initializers, regularizers, constraints
        As :class:`~nnscratch.layers.SimpleRNN`.
    """

    blocks = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        if not reset_after:
            raise ValueError("reset_after=False (the reset gate before the product, Keras 2's default) is not "
                             "supported; Keras 3's default reset_after=True is")
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = check_activation(recurrent_activation, "recurrent_activation")
        self.reset_after = True

    def _bias_values(self, generator):
        return initializers.get(self.bias_initializer)((2, 3 * self.units), generator)

    def _input_bias(self):
        return self.bias.value[0]

    def _bias_gradient(self, rows, recurrent_rows):
        self.bias.grad[0] = rows.sum(axis=0)
        self.bias.grad[1] = recurrent_rows.sum(axis=0)

    def _scan(self, projected, training):
        n, steps, _ = projected.shape
        u, recurrent = self.units, self.recurrent_kernel.value
        recurrent_bias = self.bias.value[1] if self.use_bias else 0
        kept = {key: np.empty((n, steps, u), dtype=projected.dtype) for key in ("update", "reset", "candidate", "q_h")}
        states = np.empty((n, steps, u), dtype=projected.dtype)
        state = np.zeros((n, u), dtype=projected.dtype)
        for t in range(steps):
            p, q = projected[:, t], state @ recurrent + recurrent_bias
            update = activate(p[:, :u] + q[:, :u], self.recurrent_activation)
            reset = activate(p[:, u:2 * u] + q[:, u:2 * u], self.recurrent_activation)
            candidate = activate(p[:, 2 * u:] + reset * q[:, 2 * u:], self.activation)
            state = update * state + (1 - update) * candidate
            states[:, t] = state
            for key, value in (("update", update), ("reset", reset), ("candidate", candidate), ("q_h", q[:, 2 * u:])):
                kept[key][:, t] = value
        self._kept, self._states = (kept, states) if training else (None, None)
        return states

    def _scan_backward(self, grad_states):
        n, steps, u = grad_states.shape
        recurrent, kept = self.recurrent_kernel.value, self._kept
        grad_p = np.empty((n, steps, 3 * u), dtype=grad_states.dtype)   # dL/d(x_t W + b^x)
        grad_q = np.empty((n, steps, 3 * u), dtype=grad_states.dtype)   # dL/d(h_{t-1} U + b^h)
        carried = np.zeros((n, u), dtype=grad_states.dtype)             # what h_t gets from step t + 1
        for t in reversed(range(steps)):
            update, reset, candidate = kept["update"][:, t], kept["reset"][:, t], kept["candidate"][:, t]
            previous = self._states[:, t - 1] if t > 0 else np.zeros_like(update)
            grad_state = grad_states[:, t] + carried
            grad_a = derivative(grad_state * (1 - update), candidate, self.activation)    # dL/da^h_t
            grad_p[:, t, :u] = derivative(grad_state * (previous - candidate), update, self.recurrent_activation)
            grad_p[:, t, u:2 * u] = derivative(grad_a * kept["q_h"][:, t], reset, self.recurrent_activation)
            grad_p[:, t, 2 * u:] = grad_a
            grad_q[:, t, :2 * u] = grad_p[:, t, :2 * u]
            grad_q[:, t, 2 * u:] = grad_a * reset
            carried = grad_q[:, t] @ recurrent.T + grad_state * update
        return grad_p, grad_q

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}
