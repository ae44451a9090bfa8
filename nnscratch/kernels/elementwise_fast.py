"""Elementwise kernels, Numba twin: bias + activation, their backward, bias gradient, dropout, softmax, finiteness.

Part of :mod:`nnscratch.kernels.fast` (which exports every public function
here; the split is for length): the same names, signatures and results as
their twins in :mod:`nnscratch.kernels.reference`. The row helpers
``_bias_activation_rows`` and ``_affine_rows`` are also what the convolution
kernels apply to each block of output rows while it is in cache.
"""

import math

import numpy as np
from numba import njit, prange

from nnscratch.kernels import simd, vector_math
from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.reference import (ALPHA_DEFAULTS, ELEMENTWISE_ACTIVATIONS, INV_SQRT_2PI, NEEDS_PREACTIVATION,
                                         SELU_SCALE, SELU_SCALE_ALPHA, SQRT_HALF, activation_alpha)
from nnscratch.kernels.workspace import channel_vector, for_size

__all__ = ["bias_activation", "activation_backward", "bias_gradient", "dropout_forward", "bias_softmax",
           "softmax_cross_entropy", "all_finite"]


def _float_dtype(*arrays):
    """The result dtype of ``arrays``; float64 when that is not a float type."""
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


# ---------------------------------------------------------------------------
# bias + elementwise activation
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _bias_linear(z, bias):
    m, c = z.shape
    for r in prange(m):
        for q in range(c):
            z[r, q] += bias[q]


@njit(parallel=True, cache=True)
def _bias_relu(z, bias):
    m, c = z.shape
    for r in prange(m):
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = 0 if v < 0 else v   # as np.maximum(v, 0): NaN stays NaN


@njit(parallel=True, cache=True)
def _bias_sigmoid(z, bias):
    m, c = z.shape
    for r in prange(m):
        for q in range(c):
            z[r, q] = vector_math.sigmoid(z[r, q] + bias[q])   # 1 / (1 + e^-v), vectorised for float32


@njit(parallel=True, cache=True)
def _bias_tanh(z, bias):
    m, c = z.shape
    for r in prange(m):
        for q in range(c):
            z[r, q] = vector_math.tanh(z[r, q] + bias[q])


# Codes of the elementwise activations in the compiled loops (_bias_activation_rows, which the convolutions
# call with them too): "linear", "relu", "sigmoid", "tanh" are 0-3 and have loops of their own; the others,
# FIRST_OTHER and up, share _other_rows.
_ACTIVATION_CODES = {name: code for code, name in enumerate(ELEMENTWISE_ACTIVATIONS)}
FIRST_OTHER = 4
ELU, SELU, SOFTPLUS, SOFTSIGN, LEAKY_RELU, GELU, SILU, HARD_SIGMOID, EXPONENTIAL, RELU6 = (
    _ACTIVATION_CODES[name] for name in ("elu", "selu", "softplus", "softsign", "leaky_relu", "gelu", "silu",
                                         "hard_sigmoid", "exponential", "relu6"))
(CELU, HARD_SILU, HARD_TANH, LOG_SIGMOID, MISH, SOFT_SHRINK, HARD_SHRINK, SPARSE_PLUS, SPARSE_SIGMOID, SQUAREPLUS,
 TANH_SHRINK) = (_ACTIVATION_CODES[name] for name in ("celu", "hard_silu", "hard_tanh", "log_sigmoid", "mish",
                                                      "soft_shrink", "hard_shrink", "sparse_plus", "sparse_sigmoid",
                                                      "squareplus", "tanh_shrink"))
ELU_ALPHA, LEAKY_RELU_ALPHA = ALPHA_DEFAULTS["elu"], ALPHA_DEFAULTS["leaky_relu"]


@njit(cache=True)
def _other_rows(z, first, last, bias, code, alpha):
    """Rows ``first:last`` of ``z`` become ``f(z + b)`` for an activation of code ``FIRST_OTHER`` or more.

    The arithmetic of :func:`nnscratch.kernels.reference.bias_activation`,
    every constant in ``z``'s dtype (``alpha`` too: the caller converts it).
    The comparisons keep NaN as NumPy's ``maximum``/``minimum`` do. One loop
    per activation, the choice outside it, so that LLVM can vectorise the
    loops without a transcendental function (about 8x faster than one loop
    that chooses for every number).
    """
    zero, one, half, three, six = (z.dtype.type(0), z.dtype.type(1), z.dtype.type(0.5), z.dtype.type(3),
                                   z.dtype.type(6))
    scale, scale_alpha, sqrt_half = z.dtype.type(SELU_SCALE), z.dtype.type(SELU_SCALE_ALPHA), z.dtype.type(SQRT_HALF)
    c = z.shape[1]
    for r in range(first, last):
        if code == ELU:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = v if v > 0 else alpha * vector_math.expm1(v)
        elif code == SELU:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = scale * v if v > 0 else scale_alpha * vector_math.expm1(v)
        elif code == SOFTPLUS:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = (zero if v < 0 else v) + np.log1p(np.exp(-np.abs(v)))
        elif code == SOFTSIGN:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = v / (one + np.abs(v))
        elif code == LEAKY_RELU:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = v if v > 0 else alpha * v
        elif code == GELU:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = half * v * math.erfc(-v * sqrt_half)
        elif code == SILU:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = v * vector_math.sigmoid(v)
        elif code == HARD_SIGMOID:
            for q in range(c):
                t = z[r, q] + bias[q] + three
                t = zero if t < 0 else t
                z[r, q] = (six if t > six else t) / six
        elif code == EXPONENTIAL:
            for q in range(c):
                z[r, q] = vector_math.exp(z[r, q] + bias[q])
        elif code >= CELU:
            _newer_row(z, r, bias, code)
        else:  # RELU6
            for q in range(c):
                v = z[r, q] + bias[q]
                v = zero if v < 0 else v
                z[r, q] = six if v > six else v


@njit(cache=True)  # called, not inlined: inlined into every convolution kernel it made their compile 50% longer
def _newer_row(z, r, bias, code):
    """Row ``r`` of ``z`` becomes ``f(z + b)`` for an activation of code ``CELU`` or more (for :func:`_other_rows`).

    The activations added after relu6, one loop each as in :func:`_other_rows`;
    their parameters are Keras's defaults (celu's alpha 1, the shrinks'
    threshold 0.5, squareplus's b 4). Every comparison is written so that
    NaN stays NaN (it fails all of them).
    """
    zero, one, half, quarter, two, three, six = (z.dtype.type(0), z.dtype.type(1), z.dtype.type(0.5),
                                                 z.dtype.type(0.25), z.dtype.type(2), z.dtype.type(3),
                                                 z.dtype.type(6))
    c = z.shape[1]
    if code == CELU:
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = v if v > 0 else vector_math.expm1(v)
    elif code == HARD_SILU:
        for q in range(c):
            v = z[r, q] + bias[q]
            t = v + three
            t = zero if t < 0 else t
            z[r, q] = v * ((six if t > six else t) / six)
    elif code == HARD_TANH:
        for q in range(c):
            v = z[r, q] + bias[q]
            v = -one if v < -one else v
            z[r, q] = one if v > one else v
    elif code == LOG_SIGMOID:
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = (v if v < 0 else zero) - np.log1p(np.exp(-np.abs(v)))
    elif code == MISH:
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = v * np.tanh((zero if v < 0 else v) + np.log1p(np.exp(-np.abs(v))))
    elif code == SOFT_SHRINK:
        for q in range(c):
            v = z[r, q] + bias[q]
            t = -half if v < -half else v
            z[r, q] = v - (half if t > half else t)
    elif code == HARD_SHRINK:
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = zero if np.abs(v) <= half else v
    elif code == SPARSE_PLUS:
        for q in range(c):
            v = z[r, q] + bias[q]
            t = v + one
            z[r, q] = zero if v <= -one else (v if v >= one else quarter * (t * t))
    elif code == SPARSE_SIGMOID:
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = zero if v <= -one else (one if v >= one else half * (v + one))
    elif code == SQUAREPLUS:
        for q in range(c):
            v = z[r, q] + bias[q]
            s = np.hypot(v, two)
            z[r, q] = half * v + half * s if v >= 0 else two / (s - v)
    else:  # TANH_SHRINK
        for q in range(c):
            v = z[r, q] + bias[q]
            z[r, q] = v - np.tanh(v)


@njit(parallel=True, cache=True)
def _bias_other(z, bias, code, alpha):
    """``z`` becomes ``f(z + b)`` for an activation of code ``FIRST_OTHER`` or more (:func:`_other_rows`), by rows."""
    for r in prange(z.shape[0]):
        _other_rows(z, r, r + 1, bias, code, alpha)


# name -> its kernel, for every elementwise activation (the convolutions check names against it)
_BIAS_ACTIVATIONS = {
    "linear": _bias_linear,
    "relu": _bias_relu,
    "sigmoid": _bias_sigmoid,
    "tanh": _bias_tanh,
    **{name: _bias_other for name in ELEMENTWISE_ACTIVATIONS[FIRST_OTHER:]},
}


def _bias_vector(bias, c, dtype):
    """``bias`` as a contiguous ``(c,)`` vector of ``dtype``; it may hold ``c`` numbers or broadcast one."""
    bias = np.asarray(bias)
    if bias.size not in (1, c) or any(s != 1 for s in bias.shape[:-1]):
        raise ValueError(f"bias of shape {bias.shape} does not broadcast along the last axis ({c})")
    return channel_vector(bias.reshape(-1), c, dtype)


def bias_activation(z, bias, activation, alpha=None):
    """Add a bias along the last axis, then apply an elementwise activation, in place.

    Twin of :func:`nnscratch.kernels.reference.bias_activation` (the same
    activations, the same ``alpha``): ``z`` is overwritten with
    ``f(z + bias)`` (one fused sweep) and returned; ``bias`` may be None.
    ``"linear"``, ``"relu"``, ``"sigmoid"`` and ``"tanh"`` have a loop of
    their own each, the others share :func:`_bias_other`.
    """
    if not isinstance(activation, str) or activation not in _ACTIVATION_CODES:
        raise ValueError(f"unknown elementwise activation {activation!r}; expected one of {ELEMENTWISE_ACTIVATIONS}")
    alpha = activation_alpha(activation, alpha)
    if not isinstance(z, np.ndarray) or z.ndim == 0:
        raise ValueError("z must be an array with at least one axis")
    c = z.shape[-1]
    if bias is None:
        if activation == "linear":
            return z
        bias = np.zeros(c, dtype=z.dtype)
    else:
        bias = _bias_vector(bias, c, z.dtype)
    if z.size == 0:
        return z
    # work on a 2-D contiguous view of z (a copy, written back, if z is strided)
    work = z if z.flags.c_contiguous else np.ascontiguousarray(z)
    kernel = _BIAS_ACTIVATIONS[activation]
    if kernel is not _bias_other:
        for_size(kernel, work.size)(work.reshape(-1, c), bias)
    else:
        alpha = z.dtype.type(0 if alpha is None else alpha)
        for_size(kernel, work.size)(work.reshape(-1, c), bias, _ACTIVATION_CODES[activation], alpha)
    if work is not z:
        z[...] = work
    return z


def _bias_and_code(bias, activation, c, dtype):
    """(bias as a writeable contiguous (c,) array, zeros if None; activation code) for :func:`_bias_activation_rows`."""
    if bias is None:
        return np.zeros(c, dtype=dtype), _ACTIVATION_CODES[activation]
    bias = np.asarray(bias)
    if bias.size not in (1, c):
        raise ValueError(f"bias of shape {bias.shape} does not broadcast along the last axis ({c})")
    return channel_vector(bias.reshape(-1), c, dtype), _ACTIVATION_CODES[activation]


def _affine_and_code(affine, c, dtype):
    """(scale, shift as writeable contiguous (c,) arrays, post code) for :func:`_affine_rows`: 0 none, 1 affine, 2 + ReLU."""
    if affine is None:
        empty = np.zeros(c, dtype=dtype)
        return empty, empty, 0
    scale, shift, relu = affine
    scale, shift = (channel_vector(np.asarray(v, dtype=dtype).reshape(-1), c, dtype) for v in (scale, shift))
    return scale, shift, 2 if relu else 1


@njit(cache=True, inline="always")
def _affine_rows(z, first, last, scale, shift, post):
    """Rows ``first:last`` of ``z`` become ``z * scale + shift`` (then the ReLU), with the arithmetic of
    ``batchnorm_inference``; nothing for ``post == 0``."""
    if post == 0:
        return
    for r in range(first, last):
        for q in range(z.shape[1]):
            v = z[r, q] * scale[q] + shift[q]
            if post == 2:  # as _bias_relu(v, 0)
                v = 0 if v <= 0 else v
            z[r, q] = v


@njit(parallel=True, cache=True)
def _bias_activation_affine(z, bias, activation, scale, shift, post):
    """``bias_activation`` and then :func:`_affine_rows` over all of ``z``, in one sweep of row chunks."""
    m = z.shape[0]
    chunk = 256
    for k in prange((m + chunk - 1) // chunk):
        first = k * chunk
        last = min(m, first + chunk)
        _bias_activation_rows(z, first, last, bias, activation)
        _affine_rows(z, first, last, scale, shift, post)


@njit(cache=True)
def _bias_activation_rows(z, first, last, bias, activation):
    """Rows ``first:last`` of ``z`` become ``f(z + b)``, serially, with the arithmetic of ``_bias_*``.

    ``activation`` is a code of ``_ACTIVATION_CODES``; from ``FIRST_OTHER`` on,
    :func:`_other_rows` with the activation's default ``alpha`` (what a layer's
    ``activation="elu"`` or ``"leaky_relu"`` means). A call, not inlined, as
    :func:`_other_rows`: once per block of rows it costs nothing, and the
    twenty-odd loops inlined into every convolution kernel made each of them
    take 2-4 s longer to compile (docs/kernels.md, rule 15).
    """
    if activation >= FIRST_OTHER:
        alpha = z.dtype.type(LEAKY_RELU_ALPHA if activation == LEAKY_RELU else ELU_ALPHA)
        _other_rows(z, first, last, bias, activation, alpha)
        return
    c = z.shape[1]
    for r in range(first, last):              # one loop per activation: each one vectorises
        if activation == 0:
            for q in range(c):
                z[r, q] += bias[q]
        elif activation == 1:
            for q in range(c):
                v = z[r, q] + bias[q]
                z[r, q] = 0 if v < 0 else v   # as np.maximum(v, 0): NaN stays NaN
        elif activation == 2:
            for q in range(c):
                z[r, q] = vector_math.sigmoid(z[r, q] + bias[q])
        else:                                 # 3
            for q in range(c):
                z[r, q] = vector_math.tanh(z[r, q] + bias[q])


@njit(parallel=True, cache=True)
def _relu_backward(grad_y, y, dz):
    for k in prange(dz.size):
        g = grad_y[k]
        dz[k] = g if y[k] > 0 else g * 0   # g * 0 as dy * False: NaN stays NaN


@njit(parallel=True, cache=True)
def _sigmoid_backward(grad_y, y, dz):
    one = dz.dtype.type(1)
    for k in prange(dz.size):
        s = y[k]
        dz[k] = grad_y[k] * s * (one - s)


@njit(parallel=True, cache=True)
def _tanh_backward(grad_y, y, dz):
    one = dz.dtype.type(1)
    for k in prange(dz.size):
        t = y[k]
        dz[k] = grad_y[k] * (one - t * t)


@njit(parallel=True, cache=True)
def _other_backward(grad_y, y, z, dz, code, alpha):
    """``dz = dy * f'`` for an activation of code ``FIRST_OTHER`` or more, flat arrays; the arithmetic of
    :func:`nnscratch.kernels.reference.activation_backward`. ``f'`` from the output ``y``, or for gelu and silu
    from the pre-activation ``z`` (then ``y`` is not read; else ``z`` is not). One loop per activation."""
    zero, one, half, six = dz.dtype.type(0), dz.dtype.type(1), dz.dtype.type(0.5), dz.dtype.type(6)
    scale, scale_alpha = dz.dtype.type(SELU_SCALE), dz.dtype.type(SELU_SCALE_ALPHA)
    sqrt_half, inv_sqrt_2pi = dz.dtype.type(SQRT_HALF), dz.dtype.type(INV_SQRT_2PI)
    n = dz.size
    if code == GELU:
        for k in prange(n):
            v = z[k]
            dz[k] = grad_y[k] * (half * math.erfc(-v * sqrt_half) + v * (inv_sqrt_2pi * np.exp(v * v * -half)))
    elif code == SILU:
        for k in prange(n):
            v = z[k]
            s = vector_math.sigmoid(v)
            dz[k] = grad_y[k] * (s * (one + v * (one - s)))
    elif code == ELU:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t > 0 else t + alpha)
    elif code == SELU:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (scale if t >= 0 else t + scale_alpha)
    elif code == SOFTPLUS:
        for k in prange(n):
            dz[k] = grad_y[k] * -vector_math.expm1(-y[k])
    elif code == SOFTSIGN:
        for k in prange(n):
            u = one - np.abs(y[k])
            dz[k] = grad_y[k] * (u * u)
    elif code == LEAKY_RELU:
        for k in prange(n):
            dz[k] = grad_y[k] * (one if y[k] > 0 else alpha)
    elif code == HARD_SIGMOID:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t > 0 and t < one else zero) / six
    elif code == EXPONENTIAL:
        for k in prange(n):
            dz[k] = grad_y[k] * y[k]
    else:  # RELU6
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t > 0 and t < six else zero)


@njit(parallel=True, cache=True)
def _newer_backward(grad_y, y, z, dz, code):
    """``dz = dy * f'`` for an activation of code ``CELU`` or more, as :func:`_other_backward` for the others
    (which it leaves as they were): mish, hard_silu, tanh_shrink and hard_tanh from ``z``, the others from ``y``.
    One loop per activation."""
    zero, one, half, two, three = (dz.dtype.type(0), dz.dtype.type(1), dz.dtype.type(0.5), dz.dtype.type(2),
                                   dz.dtype.type(3))
    n = dz.size
    if code == MISH:
        for k in prange(n):
            v = z[k]
            e = np.exp(-np.abs(v))
            t = np.tanh((zero if v < 0 else v) + np.log1p(e))
            s = one / (one + e) if v >= 0 else e / (one + e)
            dz[k] = grad_y[k] * (t + v * s * (one - t * t))
    elif code == HARD_SILU:
        for k in prange(n):
            v = z[k]
            dz[k] = grad_y[k] * (zero if v <= -three else (one if v >= three else v / three + half))
    elif code == TANH_SHRINK:
        for k in prange(n):
            t = np.tanh(z[k])
            dz[k] = grad_y[k] * (t * t)
    elif code == HARD_TANH:
        for k in prange(n):
            v = z[k]
            dz[k] = grad_y[k] * (one if v >= -one and v <= one else zero)
    elif code == CELU:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t > 0 else t + one)
    elif code == LOG_SIGMOID:
        for k in prange(n):
            dz[k] = grad_y[k] * -vector_math.expm1(y[k])
    elif code == SOFT_SHRINK or code == HARD_SHRINK:
        for k in prange(n):
            dz[k] = grad_y[k] * (zero if y[k] == 0 else one)
    elif code == SPARSE_PLUS:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t >= one else np.sqrt(t))
    elif code == SPARSE_SIGMOID:
        for k in prange(n):
            t = y[k]
            dz[k] = grad_y[k] * (one if t > 0 and t < one else zero) / two
    else:  # SQUAREPLUS
        for k in prange(n):
            t = y[k]
            if t > one:
                u = one / t
                dz[k] = grad_y[k] * (one / (one + u * u))
            else:
                dz[k] = grad_y[k] * (t * t / (one + t * t))


_ACTIVATION_BACKWARDS = {
    "relu": _relu_backward,
    "sigmoid": _sigmoid_backward,
    "tanh": _tanh_backward,
    **{name: _other_backward for name in ELEMENTWISE_ACTIVATIONS[FIRST_OTHER:CELU]},
    **{name: _newer_backward for name in ELEMENTWISE_ACTIVATIONS[CELU:]},
}
# dz = dy * mask (/ 6, / 2): in dy's dtype
_MASKED = ("relu", "relu6", "hard_sigmoid", "hard_tanh", "soft_shrink", "hard_shrink", "sparse_sigmoid")


def activation_backward(grad_y, y, activation, z=None, alpha=None):
    """Gradient through an elementwise activation: ``dz = dy * f'(z)``, from its output ``y`` (or from ``z``).

    Twin of :func:`nnscratch.kernels.reference.activation_backward`, the same
    arguments: those of ``NEEDS_PREACTIVATION`` (gelu, silu, mish, hard_silu,
    tanh_shrink, hard_tanh) read the pre-activation ``z`` (required) and not
    ``y``; the others read ``y`` and not ``z``. For ``"linear"`` the gradient
    is ``grad_y`` itself (returned, not copied, as in the reference);
    otherwise a new array. ``grad_y`` and the array read must have the same shape.
    """
    if activation == "linear":
        return grad_y
    kernel = _ACTIVATION_BACKWARDS.get(activation) if isinstance(activation, str) else None
    if kernel is None:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    alpha = activation_alpha(activation, alpha)
    from_z = activation in NEEDS_PREACTIVATION
    if from_z and z is None:
        raise ValueError(f"the derivative of {activation} needs the pre-activation z (it is not a function of y)")
    grad_y = np.asarray(grad_y)
    source = np.asarray(z if from_z else y)
    if grad_y.shape != source.shape:
        raise ValueError(f"grad_y shape {grad_y.shape} differs from {'z' if from_z else 'y'} shape {source.shape}")
    # dtypes as the reference: dy * [y > 0] keeps dy's (relu, relu6, hard_sigmoid); dy * y * (1 - y) promotes
    masked = activation in _MASKED
    dtype = grad_y.dtype if masked else np.result_type(grad_y, source)
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    g = np.ascontiguousarray(grad_y, dtype=dtype).reshape(-1)
    # a mask compares y in y's own dtype (a tiny float64 y > 0 stays > 0)
    read = np.ascontiguousarray(source, dtype=None if masked else dtype).reshape(-1)
    dz = np.empty(grad_y.shape, dtype=dtype)
    if dz.size:
        if kernel is _newer_backward:
            for_size(kernel, dz.size)(g, read, read, dz.reshape(-1), _ACTIVATION_CODES[activation])
        elif kernel is not _other_backward:
            for_size(kernel, dz.size)(g, read, dz.reshape(-1))
        else:
            alpha = dtype.type(0 if alpha is None else alpha)
            for_size(kernel, dz.size)(g, read, read, dz.reshape(-1), _ACTIVATION_CODES[activation], alpha)
    return dz


# ---------------------------------------------------------------------------
# bias gradient (column sums) and the dropout step
# ---------------------------------------------------------------------------

@njit(cache=True)
def _column_sums(z, out):
    """``out[q] = 0 + z[0, q] + z[1, q] + ...``, rows added in order, one vector sweep per row.

    Serial on purpose: the sweep is memory-bound and runs at about 4x
    ``np.sum(z, axis=0)`` on one thread; sharing the columns among threads
    measured slower (each thread's inner loop then starts at an offset that
    LLVM cannot prove non-negative, and the loop stops vectorising).
    """
    m, c = z.shape
    for q in range(c):
        out[q] = 0                    # start from +0, as NumPy does (so -0 + -0 gives +0)
    for r in range(m):
        for q in range(c):
            out[q] += z[r, q]


def bias_gradient(grad_z):
    """Gradient of a bias added along the last axis: the column sums of ``grad_z``.

    Twin of :func:`nnscratch.kernels.reference.bias_gradient`, bit for bit:
    each column is summed row after row, in row order, as NumPy does (one
    thread, so no thread count can change it). NumPy sums a single column
    pairwise instead, so C == 1 is left to NumPy.
    """
    grad_z = np.asarray(grad_z)
    if grad_z.ndim == 0:
        raise ValueError("grad_z must have at least one axis")
    z = np.ascontiguousarray(grad_z).reshape(-1, grad_z.shape[-1])
    if z.shape[1] == 1 or z.shape[0] == 0 or not np.issubdtype(z.dtype, np.floating):
        return z.sum(axis=0)
    out = np.empty(z.shape[1], dtype=z.dtype)
    _column_sums(z, out)
    return out


@njit(parallel=True, cache=True)
def _dropout_kernel(x, uniform, rate, keep_scale, y, mask):
    zero = keep_scale - keep_scale   # 0 in the dtype of the scale
    for k in prange(x.size):
        s = keep_scale if uniform[k] >= rate else zero
        mask[k] = s
        y[k] = x[k] * s


def dropout_forward(x, uniform, rate):
    """Inverted dropout from uniform draws, one pass. Twin of :func:`reference.dropout_forward`, bit for bit.

    ``mask = [u >= rate] / (1 - rate)``: the quotient is ``1 / (1 - rate)`` or
    ``0 / (1 - rate) = 0``, computed once in ``x``'s dtype; ``rate`` is compared
    in the draws' dtype, as NumPy compares an array with a Python float.
    """
    x, uniform = np.asarray(x), np.asarray(uniform)
    if uniform.shape != x.shape:
        raise ValueError(f"uniform draws of shape {uniform.shape} do not match x of shape {x.shape}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    if not np.issubdtype(x.dtype, np.floating) or not np.issubdtype(uniform.dtype, np.floating):
        raise TypeError(f"dropout_forward needs floating-point arrays, got {x.dtype} and {uniform.dtype}")
    keep_scale = x.dtype.type(1) / x.dtype.type(1.0 - rate)
    y = np.empty(x.shape, dtype=x.dtype)
    mask = np.empty(x.shape, dtype=x.dtype)
    if x.size:
        flat_x, flat_uniform = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(uniform).reshape(-1)
        for_size(_dropout_kernel, x.size)(flat_x, flat_uniform, uniform.dtype.type(rate), keep_scale,
                                          y.reshape(-1), mask.reshape(-1))
    return y, mask


# ---------------------------------------------------------------------------
# bias + softmax
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _bias_softmax_kernel(z, bias, logits, y):
    m, c = z.shape
    for r in prange(m):
        top = z[r, 0] + bias[0]
        for q in range(c):
            v = z[r, q] + bias[q]
            logits[r, q] = v                     # z itself, or y when there is no bias to add
            if v > top or v != v:
                top = v                          # NaN wins, as in np.max
        total = z.dtype.type(0)
        for q in range(c):
            y[r, q] = np.exp(logits[r, q] - top)
            total += y[r, q]
        for q in range(c):
            y[r, q] /= total


def bias_softmax(z, bias):
    """Add a bias along the last axis of ``z`` in place, then return the softmax of each row as a new array.

    Twin of :func:`nnscratch.kernels.reference.bias_softmax`: ``z`` becomes
    the logits ``z + b`` (kept by a softmax layer for the fused cross-entropy
    gradient) and ``y = exp(z - max z) / sum exp(z - max z)`` is returned,
    one row per thread chunk. ``bias`` may be None; ``z`` is then only read.
    """
    if not isinstance(z, np.ndarray) or z.ndim == 0 or z.dtype not in (np.float32, np.float64):
        raise ValueError("z must be a float32 or float64 array with at least one axis")
    c = z.shape[-1]
    has_bias = bias is not None
    if has_bias and not z.flags.writeable:
        raise ValueError("z is read-only: it cannot receive the logits z + bias")
    bias = _bias_vector(bias, c, z.dtype) if has_bias else np.zeros(c, z.dtype)
    y = np.empty(z.shape, z.dtype)
    if z.size == 0:
        return y
    work = z if z.flags.c_contiguous else np.ascontiguousarray(z)
    rows, out = work.reshape(-1, c), y.reshape(-1, c)
    for_size(_bias_softmax_kernel, work.size)(rows, bias, rows if has_bias else out, out)
    if has_bias and work is not z:
        z[...] = work
    return y


# ---------------------------------------------------------------------------
# softmax + cross-entropy
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _softmax_cross_entropy_kernel(z, t, losses, grad):
    n, k = z.shape
    for r in prange(n):
        top = z[r, 0]
        for q in range(1, k):
            if z[r, q] > top:
                top = z[r, q]
        total = 0.0
        for q in range(k):
            total += np.exp(z[r, q] - top)
        log_sum = np.log(total)
        loss = 0.0
        t_sum = 0.0
        for q in range(k):
            log_p = (z[r, q] - top) - log_sum    # <= 0: never overflows
            loss -= t[r, q] * log_p
            t_sum += t[r, q]
            grad[r, q] = log_p                   # kept to build the gradient
        losses[r] = loss
        for q in range(k):
            grad[r, q] = np.exp(grad[r, q]) * t_sum - t[r, q]


def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy, fused and numerically stable.

    Twin of :func:`nnscratch.kernels.reference.softmax_cross_entropy`:
    ``logits`` and ``labels`` (N, K) -> ``losses`` (N,) and ``grad = p - t``
    (N, K), one row per thread chunk. The dtype is that of ``logits * labels``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape:
        raise ValueError(f"logits and labels must be 2-D of one shape, got {logits.shape} and {labels.shape}")
    dtype = _float_dtype(logits, labels)
    z = np.ascontiguousarray(logits, dtype=dtype)
    t = np.ascontiguousarray(labels, dtype=dtype)
    n, k = z.shape
    losses = np.zeros(n, dtype=dtype)
    grad = np.empty((n, k), dtype=dtype)
    if n and k:
        for_size(_softmax_cross_entropy_kernel, z.size)(z, t, losses, grad)
    return losses, grad


# ---------------------------------------------------------------------------
# finiteness of the features (every fit, evaluate and predict checks them)
# ---------------------------------------------------------------------------

FINITE_PARTS = 8   # pieces of the array, shared by the threads


@njit(inline="always")
def _times_zero(x, lo, hi, lanes, zero):
    """``sum(x[lo:hi] * 0)``: 0 when every number is finite, NaN when one is not (``inf * 0`` is NaN).

    Four vectors of sums, so that the multiply-adds do not wait on each
    other; the numbers past the last whole block one at a time.
    """
    z = simd.broadcast(zero)
    s0 = s1 = s2 = s3 = z
    i = lo
    while i + 4 * lanes <= hi:
        s0 = simd.fma(simd.load(x, i), z, s0)
        s1 = simd.fma(simd.load(x, i + lanes), z, s1)
        s2 = simd.fma(simd.load(x, i + 2 * lanes), z, s2)
        s3 = simd.fma(simd.load(x, i + 3 * lanes), z, s3)
        i += 4 * lanes
    s = simd.add(simd.add(s0, s1), simd.add(s2, s3))
    total = zero
    for q in range(lanes):
        total += simd.lane(s, q)
    for j in range(i, hi):
        total += x[j] * zero
    return total


@njit(parallel=True, cache=True)
def _all_finite_kernel(x, lanes, zero, sums):
    n, parts = x.size, sums.size
    per_part = -(-n // parts)
    per_part += -per_part % (4 * lanes)          # whole blocks of four vectors
    for t in prange(parts):
        lo = min(n, t * per_part)
        sums[t] = _times_zero(x, lo, min(n, lo + per_part), lanes, zero)


def all_finite(x):
    """Whether no number of ``x`` is NaN or infinite: ``np.isfinite(x).all()``.

    Twin of :func:`nnscratch.kernels.reference.all_finite`. For a
    C-contiguous float32 or float64 array it adds up ``x * 0`` in vectors,
    which stays 0 unless a number is NaN or infinite, without NumPy's
    temporary array of booleans: 45 against 110-140 us for the 784,000
    numbers of 1,000 MNIST images on 2 threads (Zen 1, docs/performance.md,
    session 20). Other arrays go to NumPy.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
        return bool(np.isfinite(x).all())
    if x.size == 0:
        return True
    sums = np.empty(FINITE_PARTS, x.dtype)
    with np.errstate(invalid="ignore"):          # inf * 0 where the JIT is off (NumPy warns)
        for_size(_all_finite_kernel, x.size)(x.reshape(-1), simd.lanes(x.dtype), x.dtype.type(0), sums)
    return bool((sums == 0).all())


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
