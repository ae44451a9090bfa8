"""Optimizer-update kernels, Numba twin (written to be fast).

Same names, signatures and results as :mod:`nnscratch.kernels.optimizer_reference`
-- bit for bit: the loop below does the reference's operations in the same
order, each rounded to the weights' dtype (the scalars are converted to that
dtype first, as NumPy does with Python floats), and Numba does not contract
``a * b + c`` into a fused multiply-add unless ``fastmath`` asks for it.

The reference makes nine passes over memory; this kernel reads ``grad``,
``m``, ``v`` and ``value`` once and writes three of them once. It runs on one
thread: a step is about a hundred microseconds of memory traffic for the
basic MLP's 400k weights, too little to pay for a thread barrier on a busy
2-core machine.

``error_model="numpy"`` lets a division by zero give ``inf`` (as NumPy does)
instead of raising Python's ``ZeroDivisionError``; without it Numba checks
every division, and that check keeps LLVM from vectorising the loop (one
square root and one division per weight then run one number at a time, 8x
slower).

Moments whose magnitude falls below the smallest normal float are set to 0,
as the reference's ``flush_subnormals`` does: subnormal numbers take a slow
path on Intel CPUs (docs/kernels.md, rule 14).
"""

import numpy as np
from numba import njit

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.optimizer_reference import check_adam_inputs

__all__ = ["check_adam_inputs", "adam_update"]


@njit(cache=True, error_model="numpy")
def _adam_kernel(w, g, m, v, alpha, one_minus_b1, one_minus_b2, eps, tiny):
    zero = tiny - tiny  # 0 in the weights' dtype: a literal 0.0 would turn mi and vi into float64
    for i in range(w.size):
        mi = m[i] + (g[i] - m[i]) * one_minus_b1
        vi = v[i] + (g[i] * g[i] - v[i]) * one_minus_b2
        if abs(mi) < tiny:  # flush subnormal moments to zero (see the reference)
            mi = zero
        if abs(vi) < tiny:
            vi = zero
        m[i] = mi
        v[i] = vi
        w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * alpha


@njit(cache=True, error_model="numpy")
def _amsgrad_kernel(w, g, m, v, v_hat, alpha, one_minus_b1, one_minus_b2, eps, tiny):
    zero = tiny - tiny
    for i in range(w.size):
        mi = m[i] + (g[i] - m[i]) * one_minus_b1
        vi = v[i] + (g[i] * g[i] - v[i]) * one_minus_b2
        if abs(mi) < tiny:
            mi = zero
        if abs(vi) < tiny:
            vi = zero
        m[i] = mi
        v[i] = vi
        h = v_hat[i]  # v_hat <- maximum(v_hat, v); as np.maximum, a NaN in either wins
        if h > vi or h != h:
            vi = h
        v_hat[i] = vi
        w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * alpha


def adam_update(value, grad, m, v, v_hat, alpha, beta_1, beta_2, epsilon):
    """One Adam step on one weight array, in place.

    See :func:`nnscratch.kernels.optimizer_reference.adam_update`; this twin
    gives bit-identical results in one pass.
    """
    check_adam_inputs(value, grad, m, v, v_hat)
    cast = value.dtype.type
    tiny = cast(np.finfo(value.dtype).tiny)
    scalars = (cast(alpha), cast(1.0 - beta_1), cast(1.0 - beta_2), cast(epsilon), tiny)
    flat = (value.reshape(-1), np.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1))
    if v_hat is None:
        _adam_kernel(*flat, *scalars)
    else:
        _amsgrad_kernel(*flat, v_hat.reshape(-1), *scalars)


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
