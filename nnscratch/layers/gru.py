"""GRU: the gated recurrent unit, Keras 3's version (the reset gate after the product, ``reset_after=True``)."""

from nnscratch import initializers, kernels
from nnscratch.layers.recurrent import Recurrent, check_activation

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
    use_bias, return_sequences, go_backwards, dropout, seed, initializers, regularizers, constraints
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
        states, *kept = kernels.recurrent_backend().gru_forward(
            projected, self.recurrent_kernel.value, self.bias.value[1] if self.use_bias else None, self.activation,
            self.recurrent_activation, self._recurrent_masks, keep=training)
        self._kept, self._states = (kept, states) if training else (None, None)
        return states

    def _scan_backward(self, grad_states):
        return kernels.recurrent_backend().gru_backward(grad_states, self.recurrent_kernel.value, self._states,
                                                        *self._kept, self.activation, self.recurrent_activation,
                                                        self._recurrent_masks)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}
