"""SimpleRNN: the plain (Elman) recurrent layer."""

from nnscratch import kernels
from nnscratch.layers.recurrent import Recurrent

__all__ = ["SimpleRNN"]


class SimpleRNN(Recurrent):
    r"""A state updated at every step: :math:`h_t = f(x_t W + h_{t-1} U + b)`, from :math:`h_0 = 0`.

    Shapes: ``x`` (N, T, F); kernel ``W`` (F, units), recurrent kernel ``U``
    (units, units), bias ``b`` (units,); output ``h_T`` (N, units), or all of
    ``h_1 ... h_T`` (N, T, units) with ``return_sequences=True``. ``f`` is
    ``activation`` (tanh by default).

    Backward through time, with :math:`z_t = x_t W + h_{t-1} U + b` and
    :math:`g_t` the gradient arriving at the output :math:`h_t` (zero but for
    the last step unless ``return_sequences``): :math:`h_t` feeds both the
    output and the next step, so

    .. math::
        \frac{\partial L}{\partial h_t} = g_t + \frac{\partial L}{\partial z_{t+1}} U^T, \qquad
        \frac{\partial L}{\partial z_t} = \frac{\partial L}{\partial h_t} \odot f'(z_t),

    from :math:`t = T` (where the second term is 0) down to 1; the gradients
    of ``W``, ``U``, ``b`` and ``x`` then follow from all the
    :math:`\partial L / \partial z_t` at once (:mod:`nnscratch.layers.recurrent`).

    Parameters
    ----------
    units : int
    activation : str
        An elementwise activation (``"tanh"``, ``"relu"``, ``"sigmoid"``, ...).
    use_bias, return_sequences, go_backwards : bool
    dropout, recurrent_dropout : float in [0, 1)
        While training, each sequence's input features (``dropout``) and its
        state before the product by ``U`` (``recurrent_dropout``) are dropped
        with these probabilities (the rest scaled by ``1 / (1 - rate)``),
        one mask for all the steps of a sequence, as Keras; an LSTM or GRU
        with ``recurrent_dropout`` has a mask for each gate, as Keras's
        ``implementation=1``. ``seed`` fixes the masks.
    kernel_initializer, recurrent_initializer, bias_initializer : str
        Keras's defaults: ``"glorot_uniform"``, ``"orthogonal"``, ``"zeros"``.
    kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint, recurrent_constraint,
    bias_constraint
        As Dense's (:mod:`nnscratch.regularizers`, :mod:`nnscratch.constraints`).
    """

    def _scan(self, projected, training):
        states = kernels.recurrent_backend().simple_rnn_forward(projected, self.recurrent_kernel.value,
                                                                self.activation, self._recurrent_masks)
        self._states = states if training else None
        return states

    def _scan_backward(self, grad_states):
        grad_z = kernels.recurrent_backend().simple_rnn_backward(grad_states, self._states,
                                                                 self.recurrent_kernel.value, self.activation,
                                                                 self._recurrent_masks)
        return grad_z, grad_z
