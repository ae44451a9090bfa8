"""GRU: the gated recurrent unit, Keras 3's version (reset gate after the product) and Keras 2's (before it)."""

from nnscratch import initializers, kernels
from nnscratch.layers.recurrent import Recurrent, check_activation

__all__ = ["GRU"]


class GRU(Recurrent):
    r"""Gated recurrent unit (Cho et al., 2014), with Keras's block order z, r, h.

    With ``reset_after=True`` (Keras 3's default), the input part
    :math:`p_t = x_t W + b^{x}` and the state part
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

    With ``reset_after=False`` (Keras 2's default) the reset gate scales the
    state *before* its product, and there is one bias ``b`` (3 units,), all
    added to :math:`p_t = x_t W + b`:

    .. math::
        u_t = \sigma(p^z_t + h_{t-1} U_z), \quad r_t = \sigma(p^r_t + h_{t-1} U_r), \quad
        \tilde h_t = \phi(p^h_t + (r_t \odot h_{t-1}) U_h),

    and :math:`h_t` as above. Backward, with :math:`s_t = r_t \odot h_{t-1}`
    and :math:`a^h_t = p^h_t + s_t U_h`: :math:`\partial L/\partial s_t =
    \partial L/\partial a^h_t\, U_h^T`, so
    :math:`\partial L/\partial r_t = \partial L/\partial s_t \odot h_{t-1}`,
    :math:`h_{t-1}` also gets :math:`\partial L/\partial s_t \odot r_t`, and
    :math:`\partial L/\partial U_h = \sum_t s_t^T\, \partial L/\partial a^h_t`
    (:math:`U_z`, :math:`U_r` from :math:`h_{t-1}` as before).

    Parameters
    ----------
    units : int
    activation, recurrent_activation : str
        Elementwise activations, ``"tanh"`` and ``"sigmoid"`` by default.
    reset_after : bool
        True (Keras 3's default): the reset gate scales :math:`h_{t-1} U_h`
        and the bias is (2, 3 units). False (Keras 2's): it scales
        :math:`h_{t-1}` before the product, and the bias is (3 units,).
        Both have a compiled time loop (``kernels.recurrent_backend()``).
    use_bias, return_sequences, go_backwards, dropout, seed, initializers, regularizers, constraints
        As :class:`~nnscratch.layers.SimpleRNN`.
    """

    blocks = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = check_activation(recurrent_activation, "recurrent_activation")
        self.reset_after = reset_after

    def _bias_values(self, generator):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return initializers.get(self.bias_initializer)(shape, generator)

    def _input_bias(self):
        return self.bias.value[0] if self.reset_after else self.bias.value

    def _bias_gradient(self, rows, recurrent_rows):
        if not self.reset_after:                     # one bias, added to x_t W
            self.bias.grad[...] = rows.sum(axis=0)
            return
        self.bias.grad[0] = rows.sum(axis=0)
        self.bias.grad[1] = recurrent_rows.sum(axis=0)

    def _scan(self, projected, training):
        twin = kernels.recurrent_backend()
        if self.reset_after:
            states, *kept = twin.gru_forward(
                projected, self.recurrent_kernel.value, self.bias.value[1] if self.use_bias else None,
                self.activation, self.recurrent_activation, self._recurrent_masks, keep=training)
        else:
            states, *kept = twin.gru_reset_before_forward(projected, self.recurrent_kernel.value, self.activation,
                                                          self.recurrent_activation, self._recurrent_masks,
                                                          keep=training)
        self._kept, self._states = (kept, states) if training else (None, None)
        return states

    def _scan_backward(self, grad_states):
        twin = kernels.recurrent_backend()
        if self.reset_after:
            return twin.gru_backward(grad_states, self.recurrent_kernel.value, self._states, *self._kept,
                                     self.activation, self.recurrent_activation, self._recurrent_masks)
        update, reset, candidate, _ = self._kept
        grad_z = twin.gru_reset_before_backward(grad_states, self.recurrent_kernel.value, self._states, update, reset,
                                                candidate, self.activation, self.recurrent_activation,
                                                self._recurrent_masks)
        return grad_z, grad_z

    def _recurrent_inputs(self, previous):
        """With ``reset_after=False`` the last block of ``U`` multiplied ``r_t * h_{t-1}`` (kept), not ``h_{t-1}``."""
        blocks = super()._recurrent_inputs(previous)
        if self.reset_after:
            return blocks
        u = self.units
        gates = [(slice(0, 2 * u), previous)] if self._recurrent_masks is None else blocks[:2]
        return [*gates, (slice(2 * u, 3 * u), self._kept[3])]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}
