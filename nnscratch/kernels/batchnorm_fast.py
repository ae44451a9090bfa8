"""Batch normalisation kernels, the Numba twins of those in :mod:`nnscratch.kernels.reference`.

Part of the fast twin, kept in a file of its own for length: :mod:`nnscratch.kernels.fast`
imports and exports these four functions under the same names as
``reference.py``. The same rules hold (docs/kernels.md): sums accumulate in
float64 in chunks cut from the shape alone and are merged in chunk order, so
the result does not depend on the number of threads; the fused ReLU is bit for
bit the unfused one.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.workspace import channel_vector, for_size

__all__ = ["batchnorm_forward_train", "batchnorm_backward", "batchnorm_backward_from_input", "batchnorm_inference"]

# Rows are cut into chunks of about this many numbers, so a chunk stays in
# cache between its two passes, and partial sums are combined in chunk order
# (the result does not depend on the number of threads).
_BN_CHUNK_ELEMENTS = 16384


def _bn_chunks(m, c):
    """``(rows per chunk, number of chunks)`` for an (m, c) array: from the shape only."""
    rows = max(1, _BN_CHUNK_ELEMENTS // max(c, 1))
    return rows, -(-m // rows)


@njit(parallel=True, cache=True)
def _bn_statistics(x, chunk_rows, part_mean, part_m2, mean, m2):
    """Per column: the mean and the sum of squared deviations M2, in float64.

    Each chunk of rows is summed twice while it is in cache (its mean, then
    the squares of the deviations from that mean -- the sound two-pass
    formula) into row ``k`` of the zeroed ``part_*`` arrays; the chunks are
    then merged in order with Chan's formula into the zeroed ``mean``, ``m2``.
    """
    m, c = x.shape
    nchunks = part_mean.shape[0]
    for k in prange(nchunks):
        r0 = k * chunk_rows
        r1 = min(m, r0 + chunk_rows)
        for r in range(r0, r1):
            for q in range(c):
                part_mean[k, q] += x[r, q]
        inv_rows = 1.0 / (r1 - r0)
        for q in range(c):
            part_mean[k, q] *= inv_rows
        for r in range(r0, r1):
            for q in range(c):
                d = x[r, q] - part_mean[k, q]
                part_m2[k, q] += d * d
    # merge chunk 0, 1, 2, ... in order (Chan, Golub & LeVeque)
    count = 0.0
    for k in range(nchunks):
        rows = min(m, (k + 1) * chunk_rows) - k * chunk_rows
        total = count + rows
        for q in range(c):
            delta = part_mean[k, q] - mean[q]
            mean[q] += delta * (rows / total)
            m2[q] += part_m2[k, q] + delta * delta * (count * rows / total)
        count = total


@njit(parallel=True, cache=True)
def _bn_normalize(x, mean, inv_std, gamma, beta, y, xhat, relu, keep_xhat):
    m, c = x.shape
    for r in prange(m):
        for q in range(c):
            h = (x[r, q] - mean[q]) * inv_std[q]
            if keep_xhat:
                xhat[r, q] = h
            v = gamma[q] * h + beta[q]
            if relu:  # as _bias_relu(v, 0): v + 0 turns -0.0 into 0.0, so <= here
                v = 0 if v <= 0 else v
            y[r, q] = v


def _columns(x, name):
    x = np.ascontiguousarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (M, C), got shape {x.shape}")
    return x


def _per_column(v, c, dtype):
    """``v`` as a writeable contiguous (c,) array of ``dtype`` (broadcast if needed; :func:`channel_vector`)."""
    v = np.asarray(v, dtype=dtype)
    if v.ndim > 1:
        raise ValueError(f"expected one number or a ({c},) vector, got shape {v.shape}")
    return channel_vector(v, c, dtype)


def batch_statistics(x, epsilon):
    """``mean, var, inv_std`` (biased variance, ``1 / sqrt(var + eps)``) per column of the 2-D float ``x``.

    One cache-friendly sweep per chunk of rows (two-pass per chunk, float64
    sums, merged with Chan's formula); the results in ``x``'s dtype.
    """
    m, c = x.shape
    mean64 = np.zeros(c, dtype=np.float64)
    m2 = np.zeros(c, dtype=np.float64)
    if m == 0:
        mean64[:] = np.nan
        m2[:] = np.nan
    elif c:
        rows, nchunks = _bn_chunks(m, c)
        part_mean = np.zeros((nchunks, c), dtype=np.float64)
        part_m2 = np.zeros((nchunks, c), dtype=np.float64)
        for_size(_bn_statistics, x.size)(x, rows, part_mean, part_m2, mean64, m2)
    var64 = m2 / max(m, 1)
    inv_std = (1.0 / np.sqrt(var64 + float(epsilon))).astype(x.dtype)
    return mean64.astype(x.dtype), var64.astype(x.dtype), inv_std


def batchnorm_forward_train(x, gamma, beta, epsilon, relu=False, keep_xhat=True):
    """Batch normalisation of a 2-D array ``(M, C)`` over its rows, per column.

    Twin of :func:`nnscratch.kernels.reference.batchnorm_forward_train`:
    returns ``y, xhat, mean, var, inv_std`` with the biased variance. The
    statistics come from one cache-friendly sweep per chunk of rows (two-pass
    per chunk, float64 sums, merged with Chan's formula); a second sweep writes
    ``xhat`` and ``y`` -- with ``relu=True``, ``y`` already through the ReLU,
    bit-identical to ``bias_activation(y, None, "relu")`` after it, which saves
    the ReLU's own pass. Everything is in the dtype of ``x``. With
    ``keep_xhat=False`` the second sweep writes ``y`` only and ``None`` comes
    back in ``xhat``'s place (for :func:`batchnorm_backward_from_input`).
    """
    x = _columns(x, "x")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    dtype = x.dtype
    c = x.shape[1]
    gamma = _per_column(gamma, c, dtype)
    beta = _per_column(beta, c, dtype)
    mean, var, inv_std = batch_statistics(x, epsilon)
    y = np.empty_like(x)
    xhat = np.empty_like(x) if keep_xhat else np.empty((1, 1), dtype=dtype)
    if x.size:
        for_size(_bn_normalize, x.size)(x, mean, inv_std, gamma, beta, y, xhat, bool(relu), bool(keep_xhat))
    return y, (xhat if keep_xhat else None), mean, var, inv_std


@njit(parallel=True, cache=True)
def _bn_gradient_sums(grad_y, src, mean, inv_std, from_input, gamma, beta, relu, chunk_rows, part_b, part_g,
                      dbeta, dgamma):
    """Per column: ``sum(dy)`` and ``sum(dy * xhat)`` in float64, chunk by chunk
    into the zeroed ``part_*`` arrays, then added up in chunk order. With
    ``relu``, ``dy`` is first masked by the recomputed ReLU mask. ``src`` is
    ``xhat``, or with ``from_input`` the layer's input ``x``, from which ``xhat
    = (x - mean) * inv_std`` is recomputed as the forward pass computed it."""
    m, c = grad_y.shape
    nchunks = part_b.shape[0]
    for k in prange(nchunks):
        r0 = k * chunk_rows
        r1 = min(m, r0 + chunk_rows)
        for r in range(r0, r1):
            for q in range(c):
                h = (src[r, q] - mean[q]) * inv_std[q] if from_input else src[r, q]
                g = np.float64(grad_y[r, q])
                if relu and not gamma[q] * h + beta[q] > 0:
                    g = g * 0.0   # as _relu_backward: NaN stays NaN
                part_b[k, q] += g
                part_g[k, q] += g * h
    for k in range(nchunks):
        for q in range(c):
            dbeta[q] += part_b[k, q]
            dgamma[q] += part_g[k, q]


@njit(parallel=True, cache=True)
def _bn_input_gradient(grad_y, src, mean, inv_std, from_input, gamma, beta, relu, zero, scale, m, dbeta, dgamma,
                       dx):
    rows, c = grad_y.shape
    for r in prange(rows):
        for q in range(c):
            h = (src[r, q] - mean[q]) * inv_std[q] if from_input else src[r, q]
            g = grad_y[r, q]
            if relu and not gamma[q] * h + beta[q] > 0:
                g = g * zero  # zero has g's dtype, so g stays float32 in float32
            dx[r, q] = scale[q] * (m * g - dbeta[q] - h * dgamma[q])


def batchnorm_backward(grad_y, xhat, gamma, inv_std, beta=None, relu=False):
    """Gradients of batch normalisation in training mode.

    Twin of :func:`nnscratch.kernels.reference.batchnorm_backward`: returns
    ``dx, dgamma, dbeta`` with ``dx = gamma * inv_std / M * (M * dy - dbeta -
    xhat * dgamma)``. The two column sums share one sweep (float64
    accumulation); a second sweep writes ``dx``. Everything in ``grad_y``'s dtype.
    With ``relu=True`` both sweeps mask ``dy`` by ``gamma * xhat + beta > 0``
    on the fly (the ReLU's backward, bit-identical, without its own pass).
    """
    return _backward(grad_y, xhat, None, gamma, inv_std, beta, relu, "xhat")


def batchnorm_backward_from_input(grad_y, x, mean, gamma, inv_std, beta=None, relu=False):
    """:func:`batchnorm_backward` given the layer's input ``x`` and the batch ``mean`` instead of ``xhat``.

    Twin of :func:`nnscratch.kernels.reference.batchnorm_backward_from_input`:
    both sweeps recompute ``xhat = (x - mean) * inv_std`` on the fly, the
    forward pass's own float operations, so the result is bit for bit that of
    :func:`batchnorm_backward` with the forward's ``xhat``; the forward pass
    then need not write ``xhat`` at all (``keep_xhat=False``).
    """
    return _backward(grad_y, x, mean, gamma, inv_std, beta, relu, "x")


def _backward(grad_y, src, mean, gamma, inv_std, beta, relu, name):
    """Both backward twins: ``src`` is ``xhat``, or the input ``x`` when ``mean`` is given."""
    grad_y = _columns(grad_y, "grad_y")
    if not np.issubdtype(grad_y.dtype, np.floating):
        grad_y = grad_y.astype(np.float64)
    dtype = grad_y.dtype
    src = np.ascontiguousarray(src, dtype=dtype)
    if src.shape != grad_y.shape:
        raise ValueError(f"{name} shape {src.shape} differs from grad_y shape {grad_y.shape}")
    if relu and beta is None:
        raise ValueError("batchnorm_backward with relu=True needs beta to recompute the ReLU's mask")
    m, c = grad_y.shape
    gamma = _per_column(gamma, c, dtype)
    inv_std = _per_column(inv_std, c, dtype)
    beta = _per_column(0.0 if beta is None else beta, c, dtype)
    from_input = mean is not None
    mean = _per_column(mean if from_input else 0.0, c, dtype)
    relu = bool(relu)
    dbeta64 = np.zeros(c, dtype=np.float64)
    dgamma64 = np.zeros(c, dtype=np.float64)
    if grad_y.size:
        rows, nchunks = _bn_chunks(m, c)
        part_b = np.zeros((nchunks, c), dtype=np.float64)
        part_g = np.zeros((nchunks, c), dtype=np.float64)
        for_size(_bn_gradient_sums, grad_y.size)(grad_y, src, mean, inv_std, from_input, gamma, beta, relu, rows,
                                                 part_b, part_g, dbeta64, dgamma64)
    dbeta = dbeta64.astype(dtype)
    dgamma = dgamma64.astype(dtype)
    scale = (gamma * inv_std / max(m, 1)).astype(dtype)
    dx = np.empty_like(grad_y)
    if grad_y.size:
        for_size(_bn_input_gradient, grad_y.size)(grad_y, src, mean, inv_std, from_input, gamma, beta, relu,
                                                  dtype.type(0), scale, dtype.type(m), dbeta, dgamma, dx)
    return dx, dgamma, dbeta


@njit(parallel=True, cache=True)
def _scale_shift(x, scale, shift, relu, y):
    m, c = x.shape
    for r in prange(m):
        for q in range(c):
            v = x[r, q] * scale[q] + shift[q]
            if relu:  # as _bias_relu(v, 0)
                v = 0 if v <= 0 else v
            y[r, q] = v


def batchnorm_inference(x, scale, shift, relu=False):
    """Batch normalisation with fixed statistics, ``y = x * scale + shift``, in one sweep.

    Twin of :func:`nnscratch.kernels.reference.batchnorm_inference`, with the
    same rounding (a product, then a sum); with ``relu=True`` the ReLU is
    applied in the same sweep. Returns a new array in ``x``'s dtype.
    """
    x = _columns(x, "x")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    c = x.shape[1]
    y = np.empty_like(x)
    if x.size:
        scale, shift = _per_column(scale, c, x.dtype), _per_column(shift, c, x.dtype)
        for_size(_scale_shift, x.size)(x, scale, shift, bool(relu), y)
    return y


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
