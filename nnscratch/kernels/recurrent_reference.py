r"""Reference recurrent kernels: the time loops of SimpleRNN, LSTM and GRU, in plain NumPy.

Each function runs the steps of one layer over a whole batch of sequences,
forward (first step first) or backward through time (last step first). What
does not depend on the state is done by the layer, outside these loops, as
one product over all steps (:mod:`nnscratch.layers.recurrent`): the input
part ``projected = x_t W + b`` (N, T, G units) before the forward loop, and
the gradients of ``W``, ``U``, ``b`` and ``x`` after the backward one. Here
is only what must go step by step: the product by the recurrent kernel ``U``
(units, G units) and the gates.

The formulas and their derivations are in the layers' docstrings
(:class:`~nnscratch.layers.LSTM`, :class:`~nnscratch.layers.GRU`,
:class:`~nnscratch.layers.SimpleRNN`) and in docs/backprop.md. The
activations are any elementwise ones whose derivative comes from their
output (``"tanh"``, ``"sigmoid"``, ``"relu"``, ...), by name.

``recurrent_masks`` (N, G, units), or None: Keras's ``recurrent_dropout``
while training, a mask for each block of units (gate) on the state before
its product, so block ``g`` of ``h_{t-1} U`` becomes ``(h_{t-1} * m_g) U_g``
(``U_g`` the block's columns of ``U``), and ``dL/dh_{t-1}`` gets
``sum_g (dL/dz_g U_g^T) * m_g`` through it.

The twin with the same names and signatures is
:mod:`nnscratch.kernels.recurrent_fast`.
"""

import numpy as np

from nnscratch.kernels.reference import activation_backward, bias_activation

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
           "gru_backward", "gru_reset_before_forward", "gru_reset_before_backward"]


def activate(z, name):
    """``f(z)`` in a new array (``z`` is left as it is)."""
    return bias_activation(np.array(z, order="C"), None, name)


def derivative(grad_y, y, name):
    """``dL/dz = dL/dy * f'(z)``, from the output ``y = f(z)``."""
    return activation_backward(np.ascontiguousarray(grad_y), y, name)


def recurrent_product(state, recurrent, masks):
    """``h U`` (N, G units), or with ``masks`` (N, G, units): block ``g`` is ``(h * m_g) U_g``."""
    if masks is None:
        return state @ recurrent
    u = state.shape[1]
    return np.concatenate([(state * masks[:, g]) @ recurrent[:, g * u:(g + 1) * u] for g in range(masks.shape[1])],
                          axis=1)


def recurrent_product_backward(grad, recurrent, masks):
    """What ``h_{t-1}`` gets through the product from ``grad = dL/d(h U)``.

    That is ``grad U^T``, or with ``masks`` ``sum_g (grad_g U_g^T) * m_g``.
    """
    if masks is None:
        return grad @ recurrent.T
    u = recurrent.shape[0]
    return sum((grad[:, g * u:(g + 1) * u] @ recurrent[:, g * u:(g + 1) * u].T) * masks[:, g]
               for g in range(masks.shape[1]))


# ---------------------------------------------------------------------------
# SimpleRNN: h_t = f(z_t), z_t = x_t W + b + h_{t-1} U
# ---------------------------------------------------------------------------

def simple_rnn_forward(projected, recurrent, activation, recurrent_masks=None):
    """The states ``h_1 ... h_T`` (N, T, units) from ``projected`` (N, T, units) and ``U`` (units, units)."""
    n, steps, units = projected.shape
    states = np.empty((n, steps, units), dtype=projected.dtype)
    state = np.zeros((n, units), dtype=projected.dtype)
    for t in range(steps):
        state = activate(projected[:, t] + recurrent_product(state, recurrent, recurrent_masks), activation)
        states[:, t] = state
    return states


def simple_rnn_backward(grad_states, states, recurrent, activation, recurrent_masks=None):
    """``dL/dz_t`` (N, T, units) of every step from ``dL/dh_t`` at the outputs ``grad_states`` (N, T, units)."""
    n, steps, units = grad_states.shape
    grad_z = np.empty_like(grad_states)
    carried = np.zeros((n, units), dtype=grad_states.dtype)   # dL/dz_{t+1} U^T
    for t in reversed(range(steps)):
        grad_z[:, t] = derivative(grad_states[:, t] + carried, states[:, t], activation)
        carried = recurrent_product_backward(grad_z[:, t], recurrent, recurrent_masks)
    return grad_z


# ---------------------------------------------------------------------------
# LSTM: gates i, f, c~, o; c_t = f c_{t-1} + i c~; h_t = o phi(c_t)
# ---------------------------------------------------------------------------

def lstm_forward(projected, recurrent, activation, recurrent_activation, recurrent_masks=None, keep=True):
    """Run an LSTM over ``projected`` (N, T, 4 units) with ``U`` (units, 4 units).

    Returns ``(states, gates, cells, squashed)``: ``h_t`` (N, T, units); the
    gates ``i, f, c~, o`` after their activations (N, T, 4 units); ``c_t``
    and ``phi(c_t)`` (N, T, units each), what :func:`lstm_backward` needs.
    With ``keep=False`` (inference: no backward pass follows) the last three
    are None and are not stored.
    """
    n, steps, width = projected.shape
    u = width // 4
    if keep:
        gates = np.empty((n, steps, 4 * u), dtype=projected.dtype)
        cells = np.empty((n, steps, u), dtype=projected.dtype)
        squashed = np.empty((n, steps, u), dtype=projected.dtype)
    else:
        gates = cells = squashed = None
    states = np.empty((n, steps, u), dtype=projected.dtype)
    state = np.zeros((n, u), dtype=projected.dtype)
    cell = np.zeros((n, u), dtype=projected.dtype)
    for t in range(steps):
        z = projected[:, t] + recurrent_product(state, recurrent, recurrent_masks)
        i = activate(z[:, :u], recurrent_activation)
        f = activate(z[:, u:2 * u], recurrent_activation)
        candidate = activate(z[:, 2 * u:3 * u], activation)
        o = activate(z[:, 3 * u:], recurrent_activation)
        cell = f * cell + i * candidate
        squashed_cell = activate(cell, activation)
        state = o * squashed_cell
        states[:, t] = state
        if keep:
            gates[:, t], cells[:, t], squashed[:, t] = np.concatenate([i, f, candidate, o], axis=1), cell, squashed_cell
    return states, gates, cells, squashed


def lstm_backward(grad_states, recurrent, gates, cells, squashed, activation, recurrent_activation,
                  recurrent_masks=None):
    """``dL/dz_t`` (N, T, 4 units) of every step, from ``dL/dh_t`` at the outputs and :func:`lstm_forward`'s arrays."""
    n, steps, u = grad_states.shape
    grad_z = np.empty((n, steps, 4 * u), dtype=grad_states.dtype)
    carried = np.zeros((n, u), dtype=grad_states.dtype)          # dL/dz_{t+1} U^T
    grad_cell_next = np.zeros((n, u), dtype=grad_states.dtype)   # dL/dc_{t+1}
    forget_next = np.zeros((n, u), dtype=grad_states.dtype)      # f_{t+1}
    for t in reversed(range(steps)):
        i, f, candidate, o = np.split(gates[:, t], 4, axis=1)
        previous_cell = cells[:, t - 1] if t > 0 else np.zeros_like(cells[:, 0])
        grad_state = grad_states[:, t] + carried
        grad_cell = derivative(grad_state * o, squashed[:, t], activation) + grad_cell_next * forget_next
        grad_z[:, t, :u] = derivative(grad_cell * candidate, i, recurrent_activation)
        grad_z[:, t, u:2 * u] = derivative(grad_cell * previous_cell, f, recurrent_activation)
        grad_z[:, t, 2 * u:3 * u] = derivative(grad_cell * i, candidate, activation)
        grad_z[:, t, 3 * u:] = derivative(grad_state * squashed[:, t], o, recurrent_activation)
        carried = recurrent_product_backward(grad_z[:, t], recurrent, recurrent_masks)
        grad_cell_next, forget_next = grad_cell, f
    return grad_z


# ---------------------------------------------------------------------------
# GRU (reset_after=True): blocks z (update), r (reset), h
# ---------------------------------------------------------------------------

def gru_forward(projected, recurrent, recurrent_bias, activation, recurrent_activation, recurrent_masks=None,
                keep=True):
    """Run a GRU over ``projected = x_t W + b^x`` (N, T, 3 units) with ``U`` (units, 3 units) and ``b^h`` (3 units,).

    ``recurrent_bias`` may be None (no bias). Returns ``(states, update,
    reset, candidate, q_h)``, each (N, T, units): ``h_t``, the two gates,
    :math:`\\tilde h_t` and the h block of ``q_t = h_{t-1} U + b^h``, what
    :func:`gru_backward` needs. With ``keep=False`` (inference) the last four
    are None and are not stored.
    """
    n, steps, width = projected.shape
    u = width // 3
    kept = [np.empty((n, steps, u), dtype=projected.dtype) for _ in range(4)] if keep else [None] * 4
    states = np.empty((n, steps, u), dtype=projected.dtype)
    state = np.zeros((n, u), dtype=projected.dtype)
    for t in range(steps):
        p, q = projected[:, t], recurrent_product(state, recurrent, recurrent_masks)
        if recurrent_bias is not None:
            q = q + recurrent_bias
        update = activate(p[:, :u] + q[:, :u], recurrent_activation)
        reset = activate(p[:, u:2 * u] + q[:, u:2 * u], recurrent_activation)
        candidate = activate(p[:, 2 * u:] + reset * q[:, 2 * u:], activation)
        state = update * state + (1 - update) * candidate
        states[:, t] = state
        if keep:
            for array, value in zip(kept, (update, reset, candidate, q[:, 2 * u:])):
                array[:, t] = value
    return (states, *kept)


def gru_backward(grad_states, recurrent, states, update, reset, candidate, q_h, activation, recurrent_activation,
                 recurrent_masks=None):
    """``(dL/dp_t, dL/dq_t)`` (N, T, 3 units each) of every step, from ``dL/dh_t`` and :func:`gru_forward`'s arrays."""
    n, steps, u = grad_states.shape
    grad_p = np.empty((n, steps, 3 * u), dtype=grad_states.dtype)   # dL/d(x_t W + b^x)
    grad_q = np.empty((n, steps, 3 * u), dtype=grad_states.dtype)   # dL/d(h_{t-1} U + b^h)
    carried = np.zeros((n, u), dtype=grad_states.dtype)             # what h_t gets from step t + 1
    for t in reversed(range(steps)):
        z, r, h = update[:, t], reset[:, t], candidate[:, t]
        previous = states[:, t - 1] if t > 0 else np.zeros_like(z)
        grad_state = grad_states[:, t] + carried
        grad_a = derivative(grad_state * (1 - z), h, activation)    # dL/da^h_t
        grad_p[:, t, :u] = derivative(grad_state * (previous - h), z, recurrent_activation)
        grad_p[:, t, u:2 * u] = derivative(grad_a * q_h[:, t], r, recurrent_activation)
        grad_p[:, t, 2 * u:] = grad_a
        grad_q[:, t, :2 * u] = grad_p[:, t, :2 * u]
        grad_q[:, t, 2 * u:] = grad_a * r
        carried = recurrent_product_backward(grad_q[:, t], recurrent, recurrent_masks) + grad_state * z
    return grad_p, grad_q


# ---------------------------------------------------------------------------
# GRU (reset_after=False, Keras 2's default): the reset gate scales h_{t-1} before its product
# ---------------------------------------------------------------------------

def gru_reset_before_forward(projected, recurrent, activation, recurrent_activation, recurrent_masks=None,
                             keep=True):
    """Run a GRU with ``reset_after=False`` over ``projected = x_t W + b`` (N, T, 3 units), ``U`` (units, 3 units).

    Each step: ``u = s(p^z + h U_z)``, ``r = s(p^r + h U_r)``, then the
    candidate ``h~ = phi(p^h + (r * h) U_h)`` and ``h_t = u h + (1 - u) h~``
    (``h = h_{t-1}``; with ``recurrent_masks`` (N, 3, units) each block's
    product reads ``h * m_g``, and the candidate's ``r * h * m_h``, as
    Keras). Returns ``(states, update, reset, candidate, gated)``, each (N, T,
    units): ``h_t``, the two gates, ``h~`` and ``gated``, what ``U_h``
    multiplied (``r * h``, masked), what :func:`gru_reset_before_backward`
    and the gradient of ``U_h`` need. With ``keep=False`` the last four are
    None and are not stored.
    """
    n, steps, width = projected.shape
    u = width // 3
    kept = [np.empty((n, steps, u), dtype=projected.dtype) for _ in range(4)] if keep else [None] * 4
    states = np.empty((n, steps, u), dtype=projected.dtype)
    state = np.zeros((n, u), dtype=projected.dtype)
    gate_masks = None if recurrent_masks is None else recurrent_masks[:, :2]
    for t in range(steps):
        p = projected[:, t]
        q = recurrent_product(state, recurrent[:, :2 * u], gate_masks)
        update = activate(p[:, :u] + q[:, :u], recurrent_activation)
        reset = activate(p[:, u:2 * u] + q[:, u:], recurrent_activation)
        gated = reset * (state if recurrent_masks is None else state * recurrent_masks[:, 2])
        candidate = activate(p[:, 2 * u:] + gated @ recurrent[:, 2 * u:], activation)
        state = update * state + (1 - update) * candidate
        states[:, t] = state
        if keep:
            for array, value in zip(kept, (update, reset, candidate, gated)):
                array[:, t] = value
    return (states, *kept)


def gru_reset_before_backward(grad_states, recurrent, states, update, reset, candidate, activation,
                              recurrent_activation, recurrent_masks=None):
    """``dL/dz_t`` (N, T, 3 units) of every step's ``x_t W + b`` and products, from ``dL/dh_t``.

    With ``a^h = p^h + g U_h`` and ``g = r * h_{t-1}`` (times ``m_h``):
    ``dL/da^h = dL/dh_t (1 - u) phi'``, ``dL/dg = dL/da^h U_h^T``,
    ``dL/dr = dL/dg * h_{t-1}`` (times ``m_h``) and ``dL/du = dL/dh_t
    (h_{t-1} - h~)``; ``h_{t-1}`` gets ``dL/dh_t u + dL/dg r`` (times ``m_h``)
    and, through the gates' products, ``[dL/dz^u, dL/dz^r] U_{zr}^T``.
    The z and r blocks are the gradients of ``h_{t-1} U_{zr}`` too, block h
    that of ``g U_h``.
    """
    n, steps, u = grad_states.shape
    grad_z = np.empty((n, steps, 3 * u), dtype=grad_states.dtype)
    carried = np.zeros((n, u), dtype=grad_states.dtype)             # what h_t gets from step t + 1
    gate_masks = None if recurrent_masks is None else recurrent_masks[:, :2]
    for t in reversed(range(steps)):
        z, r, h = update[:, t], reset[:, t], candidate[:, t]
        previous = states[:, t - 1] if t > 0 else np.zeros_like(z)
        masked = previous if recurrent_masks is None else previous * recurrent_masks[:, 2]
        grad_state = grad_states[:, t] + carried
        grad_a = derivative(grad_state * (1 - z), h, activation)     # dL/da^h_t
        grad_gated = grad_a @ recurrent[:, 2 * u:].T                 # dL/dg_t
        grad_z[:, t, :u] = derivative(grad_state * (previous - h), z, recurrent_activation)
        grad_z[:, t, u:2 * u] = derivative(grad_gated * masked, r, recurrent_activation)
        grad_z[:, t, 2 * u:] = grad_a
        through_reset = grad_gated * r if recurrent_masks is None else grad_gated * r * recurrent_masks[:, 2]
        carried = (recurrent_product_backward(grad_z[:, t, :2 * u], recurrent[:, :2 * u], gate_masks)
                   + grad_state * z + through_reset)
    return grad_z
