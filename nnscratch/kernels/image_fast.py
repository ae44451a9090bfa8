"""Image-augmentation kernels, Numba twin (written to be fast).

Same names, signatures and results as :mod:`nnscratch.kernels.image_reference`
(read that module for the conventions). The loop over images runs in parallel
with ``prange``; each image is a plain double loop over output pixels that
computes its source position, clamps or fills it, and mixes four neighbours.
The sampling plans of the random image layers follow the same pattern: a
loop over images in parallel, and inside it the reference's formulas one
output pixel at a time.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.image_reference import (
    EDGE_TOLERANCE,
    FILL_CONSTANT,
    FILL_MODES,
    FILL_NEAREST,
    PLAN_FILL_MODES,
    PLAN_INTERPOLATIONS,
    _check_plan,
    check_affine_inputs,
    check_plan_inputs,
)

__all__ = [
    "FILL_NEAREST",
    "FILL_CONSTANT",
    "FILL_MODES",
    "EDGE_TOLERANCE",
    "check_affine_inputs",
    "affine_transform_batch",
    "PLAN_FILL_MODES",
    "PLAN_INTERPOLATIONS",
    "check_plan_inputs",
    "sampling_plan",
    "gather_pixels",
    "scatter_pixels",
]


@njit(cache=True, parallel=True)
def _affine_bilinear(x, m, constant, cval, tol, out):
    n, h, w, channels = x.shape
    for i in prange(n):
        a00, a01, a02 = m[i, 0, 0], m[i, 0, 1], m[i, 0, 2]
        a10, a11, a12 = m[i, 1, 0], m[i, 1, 1], m[i, 1, 2]
        for r in range(h):
            for q in range(w):
                sr = a00 * r + a01 * q + a02
                sc = a10 * r + a11 * q + a12
                if constant and (sr < -tol or sr > h - 1 + tol
                                 or sc < -tol or sc > w - 1 + tol):
                    for k in range(channels):
                        out[i, r, q, k] = cval
                    continue
                sr = min(max(sr, 0.0), h - 1.0)
                sc = min(max(sc, 0.0), w - 1.0)
                r0 = int(np.floor(sr))
                c0 = int(np.floor(sc))
                r1 = min(r0 + 1, h - 1)
                c1 = min(c0 + 1, w - 1)
                fr = sr - r0
                fc = sc - c0
                for k in range(channels):
                    top = x[i, r0, c0, k] * (1.0 - fc) + x[i, r0, c1, k] * fc
                    bottom = x[i, r1, c0, k] * (1.0 - fc) + x[i, r1, c1, k] * fc
                    out[i, r, q, k] = top * (1.0 - fr) + bottom * fr


def affine_transform_batch(x, matrices, fill_mode_code, cval):
    """Resample each image of ``x`` through its own affine map (bilinear).

    See :func:`nnscratch.kernels.image_reference.affine_transform_batch`;
    this twin returns the same values to rounding (~1e-7 relative).
    """
    x, m = check_affine_inputs(x, matrices, fill_mode_code)
    out = np.empty_like(x)
    _affine_bilinear(x, m, fill_mode_code == FILL_CONSTANT, float(cval),
                     EDGE_TOLERANCE, out)
    return out


_CONSTANT, _NEAREST, _REFLECT, _WRAP = (PLAN_FILL_MODES[name] for name in ("constant", "nearest", "reflect", "wrap"))


@njit(cache=True)
def _fix_index(index, size, fill_code):
    """One integer index brought inside ``0 .. size-1`` (the reference's ``_fix_index``)."""
    if fill_code == _WRAP:
        return index % size
    if fill_code == _REFLECT:
        index = index % (2 * size)
        return 2 * size - 1 - index if index >= size else index
    return min(max(index, 0), size - 1)


@njit(cache=True, parallel=True)
def _sampling_plan(m, height, width, fill_code, neighbours, index, weight):
    for n in prange(m.shape[0]):
        for p in range(height * width):
            row, col = float(p // width), float(p % width)
            src_row = m[n, 0, 0] * row + m[n, 0, 1] * col + m[n, 0, 2]
            src_col = m[n, 1, 0] * row + m[n, 1, 1] * col + m[n, 1, 2]
            if neighbours == 1:
                rows0, cols0 = int(np.rint(src_row)), int(np.rint(src_col))
                row_f = col_f = 0.0
            else:
                rows0, cols0 = int(np.floor(src_row)), int(np.floor(src_col))
                row_f, col_f = src_row - np.floor(src_row), src_col - np.floor(src_col)
            k = 0
            for i in range(neighbours):
                r = rows0 + i
                row_weight = 1.0 if neighbours == 1 else (row_f if i else 1.0 - row_f)
                for j in range(neighbours):
                    c = cols0 + j
                    col_weight = 1.0 if neighbours == 1 else (col_f if j else 1.0 - col_f)
                    if fill_code == _CONSTANT and not (0 <= r < height and 0 <= c < width):
                        index[n, p, k] = -1
                    else:
                        index[n, p, k] = _fix_index(r, height, fill_code) * width + _fix_index(c, width, fill_code)
                    weight[n, p, k] = row_weight * col_weight
                    k += 1


def sampling_plan(matrices, height, width, fill_mode, interpolation):
    """Which input pixels each output pixel of an affine resampling mixes, and with which weights.

    See :func:`nnscratch.kernels.image_reference.sampling_plan`; the same indices and weights.
    """
    m, fill_code, neighbours = check_plan_inputs(matrices, height, width, fill_mode, interpolation)
    shape = (m.shape[0], height * width, neighbours * neighbours)
    index, weight = np.empty(shape, dtype=np.int64), np.empty(shape)
    _sampling_plan(m, int(height), int(width), fill_code, neighbours, index, weight)
    return index, weight


@njit(cache=True, parallel=True)
def _gather_pixels(x, plan_index, plan_weight, fill_value, y):
    for n in prange(x.shape[0]):
        for p in range(x.shape[1]):
            for c in range(x.shape[2]):
                total = 0.0
                for k in range(plan_index.shape[2]):
                    q = plan_index[n, p, k]
                    total += plan_weight[n, p, k] * (x[n, q, c] if q >= 0 else fill_value)
                y[n, p, c] = total


def gather_pixels(x, plan_index, plan_weight, fill_value):
    """Resample images along a sampling plan (forward); see the reference's :func:`gather_pixels`."""
    n, h, w, c = x.shape
    _check_plan(plan_index, plan_weight, n, h * w)
    y = np.empty((n, h * w, c), dtype=x.dtype)
    _gather_pixels(np.ascontiguousarray(x).reshape(n, h * w, c), plan_index, plan_weight, float(fill_value), y)
    return y.reshape(x.shape)


@njit(cache=True, parallel=True)
def _scatter_pixels(grad, plan_index, plan_weight, dx):
    for n in prange(grad.shape[0]):
        total = np.zeros((dx.shape[1], dx.shape[2]))      # this image's sums, in float64
        for p in range(grad.shape[1]):
            for k in range(plan_index.shape[2]):
                q = plan_index[n, p, k]
                if q >= 0:
                    for c in range(grad.shape[2]):
                        total[q, c] += plan_weight[n, p, k] * grad[n, p, c]
        for q in range(dx.shape[1]):
            for c in range(dx.shape[2]):
                dx[n, q, c] = total[q, c]


def scatter_pixels(grad, plan_index, plan_weight):
    """The adjoint of :func:`gather_pixels` (backward); see the reference's :func:`scatter_pixels`."""
    n, h, w, c = grad.shape
    _check_plan(plan_index, plan_weight, n, h * w)
    dx = np.empty((n, h * w, c), dtype=grad.dtype)
    _scatter_pixels(np.ascontiguousarray(grad).reshape(n, h * w, c), plan_index, plan_weight, dx)
    return dx.reshape(grad.shape)


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
