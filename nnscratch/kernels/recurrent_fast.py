"""Recurrent kernels, Numba twin: the whole time loop compiled, each thread on its own rows of the batch.

Twin of :mod:`nnscratch.kernels.recurrent_reference` (same names,
signatures and results up to float rounding). The rows of a batch are
independent sequences: row ``r``'s state at step ``t`` needs row ``r``'s
state at step ``t - 1`` and nothing of the other rows. So the batch is cut
into chunks of ``CHUNK_ROWS`` rows (a size that depends on the shapes only,
so the results do not depend on the number of threads), and each thread
runs a chunk through *all* the steps: at each one a product of the chunk's
state by ``U`` (``np.dot``, which Numba sends to BLAS, on this thread) and
one sweep over the chunk's rows for the gates. One parallel loop per pass,
where a loop over the steps in Python would wake the BLAS threads and
Numba's in turn at every step (50-100 us each time, on two cores).

The reference spends a step in a dozen NumPy calls over (N, units) arrays
plus four calls of the activation kernels; a sweep here reads the product
and the step's inputs once and writes every gate, cell and state. The
rows are 1-D views indexed by the loop counter and each gate has its own
loop, so LLVM makes them vector code (docs/kernels.md, rule 9), with the
``tanh`` and ``sigmoid`` of :mod:`nnscratch.kernels.vector_math`. The
arithmetic is the reference's, in the same order; only the float32
``tanh`` and ``sigmoid`` differ from NumPy's (within 2.5 ulps) and the
products are BLAS calls of other shapes.

The compiled loops are written for the Keras defaults: an LSTM or GRU
with ``activation="tanh"`` and ``recurrent_activation="sigmoid"``
(:func:`uses_fused_steps`), a SimpleRNN with ``"tanh"`` or ``"relu"``
(``SIMPLE_RNN_ACTIVATIONS``). Other activations run the reference loop.
A GRU with ``reset_after=False`` (``gru_reset_before_forward``) makes two
products a step, ``h U_zr`` for its gates and then ``(r * h) U_h``.
With ``recurrent_masks`` (Keras's ``recurrent_dropout``) a step's product
is made block by block, each block of ``U`` packed on its own
(:func:`_operands`, :func:`_step_product`).
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels import recurrent_reference as reference
from nnscratch.kernels import vector_math
from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.matmul_fast import fixed_product_pays, pack_panels, panel_width, panels_product
from nnscratch.kernels.workspace import one_blas_thread

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
           "gru_backward", "gru_reset_before_forward", "gru_reset_before_backward", "uses_fused_steps", "CHUNK_ROWS",
           "SIMPLE_RNN_ACTIVATIONS"]

CHUNK_ROWS = 16   # rows of the batch that one thread takes through every step
SIMPLE_RNN_ACTIVATIONS = ("tanh", "relu")   # a SimpleRNN's activations with a compiled loop (their codes: 0, 1)


def uses_fused_steps(activation, recurrent_activation, dtype):
    """Whether the LSTM and GRU functions take the compiled loops (else the reference loop)."""
    return (activation == "tanh" and recurrent_activation == "sigmoid"
            and np.dtype(dtype) in (np.float32, np.float64))


@njit(cache=True)
def _chunk(k, n):
    """Rows ``r0:r1`` of chunk ``k`` of a batch of ``n``."""
    r0 = k * CHUNK_ROWS
    return r0, min(n, r0 + CHUNK_ROWS)


@njit(cache=True)
def _product(state, matrix, packed, zero_bias, out):
    """``out = state @ matrix`` on this thread: by the packed panels when there are any, else by BLAS."""
    if packed.shape[0] > 0:
        panels_product(state, packed, out, zero_bias, zero_bias.dtype.type(0))
    else:
        np.dot(state, matrix, out)


def _packed(matrix):
    """``(matrix, its panels or an empty array)`` for :func:`_product`.

    The panels (matmul_fast, docs/kernels.md, section 4c) are packed once
    for all the steps where they pay (``fixed_product_pays``); BLAS would
    pack the matrix again at every step, which for the few rows of a chunk
    costs more than the product (16 x 128 by 128 x 512 on one thread: 60 us
    by OpenBLAS, 35 GFLOP/s).
    """
    matrix = np.ascontiguousarray(matrix)
    k, n = matrix.shape
    width = panel_width(matrix.dtype)
    if fixed_product_pays(k, n):
        packed = pack_panels(matrix)
    else:
        packed = np.empty((0, k, width), matrix.dtype)
    return matrix, packed


def _operands(recurrent, dtype, masks, transpose=False):
    """What a step multiplies by, as one tuple for the compiled loops (:func:`_step_product`).

    ``(matrix, panels, zero bias, masks, blocks, their panels)``: without
    ``masks``, ``U`` (or ``U^T`` with ``transpose``) whole and its panels;
    with ``masks`` (N, G, units, Keras's ``recurrent_dropout``), ``U`` cut
    into its G blocks of columns ``U_g`` (or their ``U_g^T``), each packed
    on its own. The unused members are empty arrays of the same kinds, so
    that each kernel compiles once.
    """
    recurrent = np.asarray(recurrent, dtype=dtype)
    k, n = recurrent.shape
    width = panel_width(dtype)
    zero_bias = np.zeros(-(-n // width) * width, dtype)          # zeros for the widest product of a step
    if masks is None:
        matrix, packed = _packed(recurrent.T if transpose else recurrent)
        return (matrix, packed, zero_bias, np.empty((0, 1, 1), dtype), np.empty((0, 1, 1), dtype),
                np.empty((0, 0, 1, width), dtype))
    blocks = masks.shape[1]
    parts = [recurrent[:, g * k:(g + 1) * k] for g in range(blocks)]
    parts = np.ascontiguousarray(np.stack([part.T for part in parts] if transpose else parts))   # (G, k, k)
    if fixed_product_pays(k, k):
        packed_parts = np.stack([pack_panels(part) for part in parts])
    else:
        packed_parts = np.empty((blocks, 0, k, width), dtype)
    return (np.empty((0, 0), dtype), np.empty((0, 1, width), dtype), zero_bias,
            np.ascontiguousarray(masks, dtype=dtype), parts, packed_parts)


@njit(cache=True)
def _step_product(state, operands, r0, out):
    """``out = h U`` for the chunk's rows from ``r0``: block ``g`` is ``(h * m_g) U_g`` with masks."""
    matrix, packed, zero_bias, masks, parts, packed_parts = operands
    if masks.shape[0] == 0:
        _product(state, matrix, packed, zero_bias, out)
        return
    m, u = state.shape
    masked = np.empty((m, u), state.dtype)
    block = np.empty((m, u), state.dtype)
    for g in range(parts.shape[0]):
        for j in range(m):
            for q in range(u):
                masked[j, q] = state[j, q] * masks[r0 + j, g, q]
        _product(masked, parts[g], packed_parts[g], zero_bias, block)
        for j in range(m):
            for q in range(u):
                out[j, g * u + q] = block[j, q]


@njit(cache=True)
def _step_product_backward(rows, operands, r0, out):
    """``out = dL/dh_{t-1}`` through the product from ``rows = dL/d(h U)``: ``rows U^T``, or with masks
    ``sum_g (rows_g U_g^T) * m_g``, the blocks added in order (as the reference)."""
    matrix, packed, zero_bias, masks, parts, packed_parts = operands
    if masks.shape[0] == 0:
        _product(rows, matrix, packed, zero_bias, out)
        return
    m, u = out.shape
    block_rows = np.empty((m, u), out.dtype)
    block = np.empty((m, u), out.dtype)
    out[:, :] = 0
    for g in range(parts.shape[0]):
        for j in range(m):
            for q in range(u):
                block_rows[j, q] = rows[j, g * u + q]
        _product(block_rows, parts[g], packed_parts[g], zero_bias, block)
        for j in range(m):
            for q in range(u):
                out[j, q] += block[j, q] * masks[r0 + j, g, q]


# ---------------------------------------------------------------------------
# SimpleRNN
# ---------------------------------------------------------------------------

@njit(cache=True)
def _simple_row(p, product, state, code):
    """One row of a step: ``h = f(p + product)``, ``f`` tanh (code 0) or ReLU (code 1)."""
    if code == 0:
        for q in range(state.size):
            state[q] = vector_math.tanh(p[q] + product[q])
    else:
        for q in range(state.size):
            v = p[q] + product[q]
            state[q] = 0 if v < 0 else v   # as np.maximum(v, 0): NaN stays NaN


@njit(cache=True)
def _simple_row_backward(grad_state_in, carried, state, code, grad_z):
    """One row of a backward step: ``dL/dz = (g + carried) f'``, from the output ``h``."""
    one = grad_z.dtype.type(1)
    if code == 0:
        for q in range(state.size):
            grad_z[q] = (grad_state_in[q] + carried[q]) * (one - state[q] * state[q])
    else:
        for q in range(state.size):
            g = grad_state_in[q] + carried[q]
            grad_z[q] = g if state[q] > 0 else g * 0   # as dy * (y > 0): NaN stays NaN


@njit(parallel=True, cache=True)
def _simple_forward_kernel(projected, operands, code, states):
    n, steps, u = states.shape
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        state = np.zeros((r1 - r0, u), states.dtype)
        product = np.zeros((r1 - r0, u), states.dtype)
        for t in range(steps):
            if t > 0:
                _step_product(state, operands, r0, product)
            for j in range(r1 - r0):
                r = r0 + j
                _simple_row(projected[r, t], product[j], states[r, t], code)
                state[j] = states[r, t]


@njit(parallel=True, cache=True)
def _simple_backward_kernel(grad_states, operands, code, states, grad_z):
    n, steps, u = states.shape
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        carried = np.zeros((r1 - r0, u), states.dtype)       # dL/dz_{t+1} U^T
        rows = np.empty((r1 - r0, u), states.dtype)          # dL/dz_t of the chunk
        for t in range(steps - 1, -1, -1):
            for j in range(r1 - r0):
                r = r0 + j
                _simple_row_backward(grad_states[r, t], carried[j], states[r, t], code, rows[j])
                grad_z[r, t] = rows[j]
            if t > 0:
                _step_product_backward(rows, operands, r0, carried)


def _simple_code(activation, dtype):
    """The compiled loop's code of ``activation`` (None: the reference loop)."""
    if activation not in SIMPLE_RNN_ACTIVATIONS or np.dtype(dtype) not in (np.float32, np.float64):
        return None
    return SIMPLE_RNN_ACTIVATIONS.index(activation)


def simple_rnn_forward(projected, recurrent, activation, recurrent_masks=None):
    """As :func:`nnscratch.kernels.recurrent_reference.simple_rnn_forward`."""
    code = _simple_code(activation, projected.dtype)
    if code is None:
        return reference.simple_rnn_forward(projected, recurrent, activation, recurrent_masks)
    projected = np.ascontiguousarray(projected)
    states = np.empty(projected.shape, projected.dtype)
    if states.size:
        with one_blas_thread():
            _simple_forward_kernel(projected, _operands(recurrent, projected.dtype, recurrent_masks), code, states)
    return states


def simple_rnn_backward(grad_states, states, recurrent, activation, recurrent_masks=None):
    """As :func:`nnscratch.kernels.recurrent_reference.simple_rnn_backward`."""
    code = _simple_code(activation, grad_states.dtype)
    if code is None:
        return reference.simple_rnn_backward(grad_states, states, recurrent, activation, recurrent_masks)
    dtype = grad_states.dtype
    grad_z = np.empty(grad_states.shape, dtype)
    if grad_z.size:
        grad_states, states = (np.ascontiguousarray(a, dtype=dtype) for a in (grad_states, states))
        with one_blas_thread():
            _simple_backward_kernel(grad_states, _operands(recurrent, dtype, recurrent_masks, transpose=True), code,
                                    states, grad_z)
    return grad_z


# ---------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------

@njit(cache=True)
def _lstm_row(p, z, previous, gates, cell, squashed, state):
    """One row of a step: the gates of ``p + z`` (4 units each), then ``c``, ``phi(c)`` and ``h``.

    Whole rows (1-D views, taken by the caller) indexed by the loop counter
    alone, a loop per gate: so LLVM makes each loop vector code. Indexed as
    ``gates[r, t, u + q]`` inside the parallel loop, the index that Numba
    cannot prove non-negative is checked at every number and the loop stays
    scalar: a step of 64 x 128 units took 218 us that way, 46 us this way
    (docs/kernels.md, rules 9 and 10).
    """
    u = cell.size
    i, f, candidate, o = gates[:u], gates[u:2 * u], gates[2 * u:3 * u], gates[3 * u:]
    _sigmoid_of_sum(p[:u], z[:u], i)
    _sigmoid_of_sum(p[u:2 * u], z[u:2 * u], f)
    _tanh_of_sum(p[2 * u:3 * u], z[2 * u:3 * u], candidate)
    _sigmoid_of_sum(p[3 * u:], z[3 * u:], o)
    for q in range(u):
        c = f[q] * previous[q] + i[q] * candidate[q]
        s = vector_math.tanh(c)
        cell[q], squashed[q], state[q] = c, s, o[q] * s


@njit(cache=True)
def _sigmoid_of_sum(a, b, out):
    for q in range(out.size):
        out[q] = vector_math.sigmoid(a[q] + b[q])


@njit(cache=True)
def _tanh_of_sum(a, b, out):
    for q in range(out.size):
        out[q] = vector_math.tanh(a[q] + b[q])


@njit(cache=True)
def _lstm_row_backward(grad_state_in, carried, gates, previous, forget_next, squashed, grad_cell_next, grad_z):
    """One row of a backward step (1-D views, as :func:`_lstm_row`); ``grad_cell_next`` becomes ``dL/dc_t``."""
    u = squashed.size
    one = grad_z.dtype.type(1)
    i, f, candidate, o = gates[:u], gates[u:2 * u], gates[2 * u:3 * u], gates[3 * u:]
    d_i, d_f, d_c, d_o = grad_z[:u], grad_z[u:2 * u], grad_z[2 * u:3 * u], grad_z[3 * u:]
    for q in range(u):
        s = squashed[q]
        grad_state = grad_state_in[q] + carried[q]
        grad_cell = grad_state * o[q] * (one - s * s) + grad_cell_next[q] * forget_next[q]
        d_i[q] = grad_cell * candidate[q] * i[q] * (one - i[q])
        d_f[q] = grad_cell * previous[q] * f[q] * (one - f[q])
        d_c[q] = grad_cell * i[q] * (one - candidate[q] * candidate[q])
        d_o[q] = grad_state * s * o[q] * (one - o[q])
        grad_cell_next[q] = grad_cell


@njit(parallel=True, cache=True)
def _lstm_forward_kernel(projected, operands, gates, cells, squashed, states):
    n, steps, u = states.shape
    kept = cells.shape[1] == steps          # else one step's room a row, written over (inference)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        state = np.zeros((r1 - r0, u), cells.dtype)          # h_{t-1} and c_{t-1} of the chunk's rows
        cell = np.zeros((r1 - r0, u), cells.dtype)
        product = np.zeros((r1 - r0, 4 * u), cells.dtype)    # h_{t-1} U (0 at the first step)
        for t in range(steps):
            if t > 0:
                _step_product(state, operands, r0, product)
            tk = t if kept else 0
            for j in range(r1 - r0):
                r = r0 + j
                _lstm_row(projected[r, t], product[j], cell[j], gates[r, tk], cells[r, tk], squashed[r, tk],
                          states[r, t])
                state[j] = states[r, t]
                cell[j] = cells[r, tk]


@njit(parallel=True, cache=True)
def _lstm_backward_kernel(grad_states, operands, gates, cells, squashed, grad_z):
    n, steps, u = cells.shape
    zero_row = np.zeros(u, cells.dtype)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        carried = np.zeros((r1 - r0, u), cells.dtype)          # dL/dz_{t+1} U^T
        grad_cell = np.zeros((r1 - r0, u), cells.dtype)        # dL/dc_{t+1}, then dL/dc_t
        rows = np.empty((r1 - r0, 4 * u), cells.dtype)         # dL/dz_t of the chunk
        for t in range(steps - 1, -1, -1):
            for j in range(r1 - r0):
                r = r0 + j
                previous = cells[r, t - 1] if t > 0 else zero_row
                forget_next = gates[r, t + 1, u:2 * u] if t + 1 < steps else zero_row
                _lstm_row_backward(grad_states[r, t], carried[j], gates[r, t], previous, forget_next,
                                   squashed[r, t], grad_cell[j], rows[j])
                grad_z[r, t] = rows[j]
            if t > 0:
                _step_product_backward(rows, operands, r0, carried)


def lstm_forward(projected, recurrent, activation, recurrent_activation, recurrent_masks=None, keep=True):
    """As :func:`nnscratch.kernels.recurrent_reference.lstm_forward`.

    With ``keep=False`` each row's gates and cells go to one step's room,
    written over at every step: a ``predict`` of an LSTM(128) over 64 x 50
    steps allocates 1.6 MB instead of 11.5 (the memory of a pass; its time
    did not change measurably on the Zen 3, where the gates' arithmetic
    and the products take it).
    """
    if not uses_fused_steps(activation, recurrent_activation, projected.dtype):
        return reference.lstm_forward(projected, recurrent, activation, recurrent_activation, recurrent_masks, keep)
    projected = np.ascontiguousarray(projected)
    dtype = projected.dtype
    n, steps, width = projected.shape
    u = width // 4
    kept_steps = steps if keep else 1
    gates = np.empty((n, kept_steps, 4 * u), dtype)
    cells, squashed = (np.empty((n, kept_steps, u), dtype) for _ in range(2))
    states = np.empty((n, steps, u), dtype)
    if states.size:
        with one_blas_thread():
            _lstm_forward_kernel(projected, _operands(recurrent, dtype, recurrent_masks), gates, cells, squashed,
                                 states)
    return (states, gates, cells, squashed) if keep else (states, None, None, None)


def lstm_backward(grad_states, recurrent, gates, cells, squashed, activation, recurrent_activation,
                  recurrent_masks=None):
    """As :func:`nnscratch.kernels.recurrent_reference.lstm_backward`."""
    if not uses_fused_steps(activation, recurrent_activation, grad_states.dtype):
        return reference.lstm_backward(grad_states, recurrent, gates, cells, squashed, activation,
                                       recurrent_activation, recurrent_masks)
    dtype = grad_states.dtype
    n, steps, u = grad_states.shape
    grad_z = np.empty((n, steps, 4 * u), dtype)
    if grad_z.size:
        arrays = (np.ascontiguousarray(a, dtype=dtype) for a in (grad_states, gates, cells, squashed))
        grad_states, gates, cells, squashed = arrays
        with one_blas_thread():
            _lstm_backward_kernel(grad_states, _operands(recurrent, dtype, recurrent_masks, transpose=True), gates,
                                  cells, squashed, grad_z)
    return grad_z


# ---------------------------------------------------------------------------
# GRU (reset_after=True)
# ---------------------------------------------------------------------------

@njit(cache=True)
def _gru_row(p, product, bias, previous, state, update, reset, candidate, q_h):
    """One row of a step (1-D views, a loop per block, as :func:`_lstm_row`): gates, candidate, ``h_t``."""
    u = state.size
    one = state.dtype.type(1)
    for q in range(u):
        update[q] = vector_math.sigmoid(p[q] + (product[q] + bias[q]))
    p_r, product_r, bias_r = p[u:2 * u], product[u:2 * u], bias[u:2 * u]
    for q in range(u):
        reset[q] = vector_math.sigmoid(p_r[q] + (product_r[q] + bias_r[q]))
    p_h, product_h, bias_h = p[2 * u:], product[2 * u:], bias[2 * u:]
    for q in range(u):
        qh = product_h[q] + bias_h[q]
        h = vector_math.tanh(p_h[q] + reset[q] * qh)
        candidate[q], q_h[q] = h, qh
        state[q] = update[q] * previous[q] + (one - update[q]) * h


@njit(cache=True)
def _gru_row_backward(grad_state_in, product, direct, previous, z, g, h, q_h, grad_p, grad_q):
    """One row of a backward step (1-D views); ``direct`` becomes ``dL/dh_t u_t``."""
    u = z.size
    one = grad_p.dtype.type(1)
    p_z, p_r, p_h = grad_p[:u], grad_p[u:2 * u], grad_p[2 * u:]
    q_z, q_r, q_hh = grad_q[:u], grad_q[u:2 * u], grad_q[2 * u:]
    for q in range(u):
        grad_state = grad_state_in[q] + (product[q] + direct[q])
        grad_a = grad_state * (one - z[q]) * (one - h[q] * h[q])
        grad_z = grad_state * (previous[q] - h[q]) * z[q] * (one - z[q])
        grad_r = grad_a * q_h[q] * g[q] * (one - g[q])
        p_z[q], p_r[q], p_h[q] = grad_z, grad_r, grad_a
        q_z[q], q_r[q], q_hh[q] = grad_z, grad_r, grad_a * g[q]
        direct[q] = grad_state * z[q]


@njit(parallel=True, cache=True)
def _gru_forward_kernel(projected, operands, bias, states, update, reset, candidate, q_h):
    n, steps, u = states.shape
    kept = update.shape[1] == steps         # else one step's room a row, written over (inference)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        state = np.zeros((r1 - r0, u), states.dtype)
        product = np.zeros((r1 - r0, 3 * u), states.dtype)
        for t in range(steps):
            if t > 0:
                _step_product(state, operands, r0, product)
            tk = t if kept else 0
            for j in range(r1 - r0):
                r = r0 + j
                _gru_row(projected[r, t], product[j], bias, state[j], states[r, t], update[r, tk], reset[r, tk],
                         candidate[r, tk], q_h[r, tk])
                state[j] = states[r, t]


@njit(parallel=True, cache=True)
def _gru_backward_kernel(grad_states, operands, states, update, reset, candidate, q_h, grad_p, grad_q):
    n, steps, u = states.shape
    zero_row = np.zeros(u, states.dtype)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        product = np.zeros((r1 - r0, u), states.dtype)        # dL/dq_{t+1} U^T
        direct = np.zeros((r1 - r0, u), states.dtype)         # dL/dh_{t+1} u_{t+1}
        rows = np.empty((r1 - r0, 3 * u), states.dtype)       # dL/dq_t of the chunk
        for t in range(steps - 1, -1, -1):
            for j in range(r1 - r0):
                r = r0 + j
                previous = states[r, t - 1] if t > 0 else zero_row
                _gru_row_backward(grad_states[r, t], product[j], direct[j], previous, update[r, t], reset[r, t],
                                  candidate[r, t], q_h[r, t], grad_p[r, t], rows[j])
                grad_q[r, t] = rows[j]
            if t > 0:
                _step_product_backward(rows, operands, r0, product)


def gru_forward(projected, recurrent, recurrent_bias, activation, recurrent_activation, recurrent_masks=None,
                keep=True):
    """As :func:`nnscratch.kernels.recurrent_reference.gru_forward` (``keep=False``: as :func:`lstm_forward`)."""
    if not uses_fused_steps(activation, recurrent_activation, projected.dtype):
        return reference.gru_forward(projected, recurrent, recurrent_bias, activation, recurrent_activation,
                                     recurrent_masks, keep)
    projected = np.ascontiguousarray(projected)
    dtype = projected.dtype
    n, steps, width = projected.shape
    u = width // 3
    bias = np.zeros(3 * u, dtype) if recurrent_bias is None else np.ascontiguousarray(recurrent_bias, dtype=dtype)
    states = np.empty((n, steps, u), dtype)
    update, reset, candidate, q_h = (np.empty((n, steps if keep else 1, u), dtype) for _ in range(4))
    if states.size:
        with one_blas_thread():
            _gru_forward_kernel(projected, _operands(recurrent, dtype, recurrent_masks), bias, states, update,
                                reset, candidate, q_h)
    return (states, update, reset, candidate, q_h) if keep else (states, None, None, None, None)


def gru_backward(grad_states, recurrent, states, update, reset, candidate, q_h, activation, recurrent_activation,
                 recurrent_masks=None):
    """As :func:`nnscratch.kernels.recurrent_reference.gru_backward`."""
    if not uses_fused_steps(activation, recurrent_activation, grad_states.dtype):
        return reference.gru_backward(grad_states, recurrent, states, update, reset, candidate, q_h, activation,
                                      recurrent_activation, recurrent_masks)
    dtype = grad_states.dtype
    n, steps, u = grad_states.shape
    grad_p, grad_q = np.empty((n, steps, 3 * u), dtype), np.empty((n, steps, 3 * u), dtype)
    if grad_p.size:
        arrays = (np.ascontiguousarray(a, dtype=dtype) for a in (grad_states, states, update, reset, candidate, q_h))
        grad_states, states, update, reset, candidate, q_h = arrays
        with one_blas_thread():
            _gru_backward_kernel(grad_states, _operands(recurrent, dtype, recurrent_masks, transpose=True), states,
                                 update, reset, candidate, q_h, grad_p, grad_q)
    return grad_p, grad_q


# ---------------------------------------------------------------------------
# GRU (reset_after=False): two products a step, h U_zr for the gates, then (r * h) U_h for the candidate
# ---------------------------------------------------------------------------

@njit(cache=True)
def _gru_before_gates(p, product, previous, mask_h, update, reset, gated):
    """The gates of one row, and ``gated = r * (h_{t-1} * m_h)``, what ``U_h`` multiplies (1-D views)."""
    u = previous.size
    for q in range(u):
        update[q] = vector_math.sigmoid(p[q] + product[q])
    p_r, product_r = p[u:2 * u], product[u:2 * u]
    for q in range(u):
        reset[q] = vector_math.sigmoid(p_r[q] + product_r[q])
    for q in range(u):
        gated[q] = reset[q] * (previous[q] * mask_h[q])       # (a mask of ones without recurrent dropout)


@njit(cache=True)
def _gru_before_state(p, product_h, previous, update, candidate, state):
    """``h~ = tanh(p^h + gated U_h)`` and ``h_t = u h_{t-1} + (1 - u) h~`` of one row."""
    one = state.dtype.type(1)
    u = state.size
    p_h = p[2 * u:]
    for q in range(u):
        h = vector_math.tanh(p_h[q] + product_h[q])
        candidate[q] = h
        state[q] = update[q] * previous[q] + (one - update[q]) * h


@njit(parallel=True, cache=True)
def _gru_before_forward_kernel(projected, gate_operands, candidate_operands, mask_h, states, update, reset,
                               candidate, gated):
    n, steps, u = states.shape
    kept = update.shape[1] == steps         # else one step's room a row, written over (inference)
    ones = np.ones(u, states.dtype)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        state = np.zeros((r1 - r0, u), states.dtype)
        product = np.zeros((r1 - r0, 2 * u), states.dtype)    # h_{t-1} U_zr
        gated_rows = np.zeros((r1 - r0, u), states.dtype)     # r_t * h_{t-1} (masked)
        product_h = np.zeros((r1 - r0, u), states.dtype)      # gated U_h (0 at the first step: h_0 = 0)
        for t in range(steps):
            tk = t if kept else 0
            if t > 0:
                _step_product(state, gate_operands, r0, product)
            for j in range(r1 - r0):
                r = r0 + j
                _gru_before_gates(projected[r, t], product[j], state[j], mask_h[r] if mask_h.shape[0] else ones,
                                  update[r, tk], reset[r, tk], gated_rows[j])
            if t > 0:
                _step_product(gated_rows, candidate_operands, r0, product_h)
            for j in range(r1 - r0):
                r = r0 + j
                _gru_before_state(projected[r, t], product_h[j], state[j], update[r, tk], candidate[r, tk],
                                  states[r, t])
                gated[r, tk] = gated_rows[j]
                state[j] = states[r, t]


@njit(cache=True)
def _gru_before_row_backward(grad_state_in, carried, previous, z, h, grad_z, direct):
    """Blocks z and h of ``dL/dz_t`` of one row; ``direct`` becomes ``dL/dh_t u_t``."""
    u = z.size
    one = grad_z.dtype.type(1)
    d_z, d_h = grad_z[:u], grad_z[2 * u:]
    for q in range(u):
        grad_state = grad_state_in[q] + carried[q]
        d_h[q] = grad_state * (one - z[q]) * (one - h[q] * h[q])
        d_z[q] = grad_state * (previous[q] - h[q]) * z[q] * (one - z[q])
        direct[q] = grad_state * z[q]


@njit(cache=True)
def _gru_before_reset_backward(grad_gated, previous, mask_h, r, grad_z, through):
    """Block r of ``dL/dz_t`` from ``dL/dgated``; ``through`` becomes what ``h_{t-1}`` gets through ``gated``."""
    u = r.size
    one = grad_z.dtype.type(1)
    d_r = grad_z[u:2 * u]
    for q in range(u):
        d_r[q] = grad_gated[q] * (previous[q] * mask_h[q]) * r[q] * (one - r[q])
        through[q] = grad_gated[q] * r[q] * mask_h[q]


@njit(parallel=True, cache=True)
def _gru_before_backward_kernel(grad_states, gate_operands, candidate_operands, mask_h, states, update, reset,
                                candidate, grad_z):
    n, steps, u = states.shape
    zero_row, ones = np.zeros(u, states.dtype), np.ones(u, states.dtype)
    for k in prange(-(-n // CHUNK_ROWS)):
        r0, r1 = _chunk(k, n)
        m = r1 - r0
        carried = np.zeros((m, u), states.dtype)          # what h_t gets from step t + 1
        direct = np.empty((m, u), states.dtype)           # dL/dh_t u_t
        through = np.empty((m, u), states.dtype)          # dL/dgated_t r_t m_h
        rows = np.empty((m, 3 * u), states.dtype)         # dL/dz_t of the chunk
        rows_zr = np.empty((m, 2 * u), states.dtype)      # its blocks z and r (contiguous, for the product)
        rows_h = np.empty((m, u), states.dtype)           # its block h, dL/da^h_t
        grad_gated = np.empty((m, u), states.dtype)       # dL/da^h_t U_h^T
        for t in range(steps - 1, -1, -1):
            for j in range(m):
                r = r0 + j
                previous = states[r, t - 1] if t > 0 else zero_row
                _gru_before_row_backward(grad_states[r, t], carried[j], previous, update[r, t], candidate[r, t],
                                         rows[j], direct[j])
                rows_h[j] = rows[j, 2 * u:]
            _step_product(rows_h, candidate_operands, r0, grad_gated)
            for j in range(m):
                r = r0 + j
                previous = states[r, t - 1] if t > 0 else zero_row
                _gru_before_reset_backward(grad_gated[j], previous, mask_h[r] if mask_h.shape[0] else ones,
                                           reset[r, t], rows[j], through[j])
                grad_z[r, t] = rows[j]
                rows_zr[j] = rows[j, :2 * u]
            if t > 0:
                _step_product_backward(rows_zr, gate_operands, r0, carried)
                for j in range(m):
                    for q in range(u):
                        carried[j, q] = (carried[j, q] + direct[j, q]) + through[j, q]


def _reset_before_operands(recurrent, dtype, recurrent_masks, transpose=False):
    """``(U_zr's operands, U_h's, m_h)``: the gates' products with their masks, the candidate's without (in
    ``gated``)."""
    recurrent = np.asarray(recurrent, dtype=dtype)
    u = recurrent.shape[0]
    gate_masks = None if recurrent_masks is None else recurrent_masks[:, :2]
    mask_h = (np.empty((0, u), dtype) if recurrent_masks is None
              else np.ascontiguousarray(recurrent_masks[:, 2], dtype=dtype))
    return (_operands(recurrent[:, :2 * u], dtype, gate_masks, transpose),
            _operands(recurrent[:, 2 * u:], dtype, None, transpose), mask_h)


def gru_reset_before_forward(projected, recurrent, activation, recurrent_activation, recurrent_masks=None,
                             keep=True):
    """As :func:`nnscratch.kernels.recurrent_reference.gru_reset_before_forward` (``keep=False``: as
    :func:`lstm_forward`)."""
    if not uses_fused_steps(activation, recurrent_activation, projected.dtype):
        return reference.gru_reset_before_forward(projected, recurrent, activation, recurrent_activation,
                                                  recurrent_masks, keep)
    projected = np.ascontiguousarray(projected)
    dtype = projected.dtype
    n, steps, width = projected.shape
    u = width // 3
    states = np.empty((n, steps, u), dtype)
    update, reset, candidate, gated = (np.empty((n, steps if keep else 1, u), dtype) for _ in range(4))
    if states.size:
        with one_blas_thread():
            _gru_before_forward_kernel(projected, *_reset_before_operands(recurrent, dtype, recurrent_masks), states,
                                       update, reset, candidate, gated)
    return (states, update, reset, candidate, gated) if keep else (states, None, None, None, None)


def gru_reset_before_backward(grad_states, recurrent, states, update, reset, candidate, activation,
                              recurrent_activation, recurrent_masks=None):
    """As :func:`nnscratch.kernels.recurrent_reference.gru_reset_before_backward`."""
    if not uses_fused_steps(activation, recurrent_activation, grad_states.dtype):
        return reference.gru_reset_before_backward(grad_states, recurrent, states, update, reset, candidate,
                                                   activation, recurrent_activation, recurrent_masks)
    dtype = grad_states.dtype
    n, steps, u = grad_states.shape
    grad_z = np.empty((n, steps, 3 * u), dtype)
    if grad_z.size:
        arrays = (np.ascontiguousarray(a, dtype=dtype) for a in (grad_states, states, update, reset, candidate))
        grad_states, states, update, reset, candidate = arrays
        with one_blas_thread():
            _gru_before_backward_kernel(grad_states, *_reset_before_operands(recurrent, dtype, recurrent_masks, True),
                                        states, update, reset, candidate, grad_z)
    return grad_z


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
