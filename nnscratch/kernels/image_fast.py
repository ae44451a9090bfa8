"""Image-augmentation kernels, Numba twin (written to be fast).

Same names, signatures and results as :mod:`nnscratch.kernels.image_reference`
(read that module for the conventions). The loop over images runs in parallel
with ``prange``; each image is a plain double loop over output pixels that
computes its source position, clamps or fills it, and mixes four neighbours.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.image_reference import (
    EDGE_TOLERANCE,
    FILL_CONSTANT,
    FILL_MODES,
    FILL_NEAREST,
    check_affine_inputs,
)

__all__ = [
    "FILL_NEAREST",
    "FILL_CONSTANT",
    "FILL_MODES",
    "EDGE_TOLERANCE",
    "check_affine_inputs",
    "affine_transform_batch",
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


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
