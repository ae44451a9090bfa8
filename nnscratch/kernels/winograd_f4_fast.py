"""The transforms of Winograd F(4x4, 3x3), Numba (a part of :mod:`nnscratch.kernels.winograd_fast`).

Each 4x4 block of outputs comes from a 6x6 input tile ``d``; the matrices
``B^T`` (6x6) and ``A^T`` (4x6) are ``winograd_reference.BT4`` and ``AT4``.
A 6x6 transform is done in two passes of the 1-D one, first down the
columns, then along the rows, through a small per-worker buffer ``t``
(6 x 6 x channels, in L1), each pass a loop over the contiguous channels that
LLVM vectorises. The 1-D transforms below are the rows of the matrices,
written out with their common terms:

* ``_bt6``: ``B^T d`` of 6 numbers (input tiles);
* ``_at6``: ``A^T m`` of 6 numbers -> 4 (outputs);
* ``_a6``:  ``A g`` of 4 numbers -> 6 (output gradients, the adjoint of ``_at6``).

The parallel bodies that call these are in ``winograd_fast``; like the
F(2x2, 3x3) transforms there, these index the work arrays with the worker
number ``w`` and are inlined (docs/kernels.md, rules 8 and 9).
"""

import numpy as np
from numba import njit

from nnscratch.kernels.cache_stamp import stamp_module

__all__ = ["input_transform4", "output_transform4", "gradient_transform4"]

# The transforms' coefficients as float32 constants: an integer literal times a float32 is a float64 in
# Numba (4 * d is float64 for a float32 d), a float32 constant keeps float32 sums float32 and float64
# ones float64 (2, 4, 5 and 8 are exact in either).
TWO, FOUR, FIVE, EIGHT = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(cache=True, inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    """``B^T d`` for F(4x4, 3x3): rows [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0], ..., [0 4 0 -5 0 1]."""
    p = d4 - FOUR * d2    # rows 1 and 2: d4 - 4 d2 -/+ (4 d1 - d3)
    q = FOUR * d1 - d3
    r = d4 - d2           # rows 3 and 4: d4 - d2 -/+ 2 (d1 - d3)
    s = TWO * (d1 - d3)
    return FOUR * d0 - FIVE * d2 + d4, p - q, p + q, r - s, r + s, FOUR * d1 - FIVE * d3 + d5


@njit(cache=True, inline="always")
def _at6(m0, m1, m2, m3, m4, m5):
    """``A^T m`` for F(4x4, 3x3): rows [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0], [0 1 -1 8 -8 1]."""
    a = m1 + m2
    b = m1 - m2
    c = m3 + m4
    d = m3 - m4
    return m0 + a + c, b + TWO * d, a + FOUR * c, b + EIGHT * d + m5


@njit(cache=True, inline="always")
def _a6(g0, g1, g2, g3):
    """``A g`` for F(4x4, 3x3): the columns of ``A^T`` as rows, 4 numbers -> 6."""
    e = g0 + g2
    o = g1 + g3
    e4 = g0 + FOUR * g2
    o4 = TWO * g1 + EIGHT * g3
    return g0, e + o, e - o, e4 + o4, e4 - o4, g3


@njit(cache=True, inline="always")
def input_transform4(padded, w, images, v, t, th, tw):
    """``v[w, k, tile, c]`` = entry ``k`` of ``B^T d B`` for every 6x6 tile ``d`` of worker ``w``'s block."""
    c = padded.shape[4]
    for tt in range(images * th):
        b = tt // th
        r = 4 * (tt % th)
        for tx in range(tw):
            col = 4 * tx
            tile = tt * tw + tx
            for j in range(6):  # B^T d: down column j
                for q in range(c):
                    t[w, 0, j, q], t[w, 1, j, q], t[w, 2, j, q], t[w, 3, j, q], t[w, 4, j, q], t[w, 5, j, q] = _bt6(
                        padded[w, b, r, col + j, q], padded[w, b, r + 1, col + j, q],
                        padded[w, b, r + 2, col + j, q], padded[w, b, r + 3, col + j, q],
                        padded[w, b, r + 4, col + j, q], padded[w, b, r + 5, col + j, q])
            for i in range(6):  # (B^T d) B: along row i
                k = 6 * i
                for q in range(c):
                    (v[w, k, tile, q], v[w, k + 1, tile, q], v[w, k + 2, tile, q], v[w, k + 3, tile, q],
                     v[w, k + 4, tile, q], v[w, k + 5, tile, q]) = _bt6(
                        t[w, i, 0, q], t[w, i, 1, q], t[w, i, 2, q], t[w, i, 3, q], t[w, i, 4, q], t[w, i, 5, q])


@njit(cache=True, inline="always")
def output_transform4(m, w, t, z, start, stop, th, tw, out_h, out_w):
    """``A^T m A``: the 4x4 outputs of every tile of images ``start:stop``, into rows of ``z``, cropped at the edges."""
    f = m.shape[3]
    for tt in range((stop - start) * th):
        b = start + tt // th
        oy = 4 * (tt % th)
        rows = min(4, out_h - oy)
        for tx in range(tw):
            tile = tt * tw + tx
            ox = 4 * tx
            cols = min(4, out_w - ox)
            for i in range(6):  # m A: along row i (m[6 i + j] is entry (i, j))
                k = 6 * i
                for q in range(f):
                    t[w, i, 0, q], t[w, i, 1, q], t[w, i, 2, q], t[w, i, 3, q] = _at6(
                        m[w, k, tile, q], m[w, k + 1, tile, q], m[w, k + 2, tile, q],
                        m[w, k + 3, tile, q], m[w, k + 4, tile, q], m[w, k + 5, tile, q])
            for j in range(cols):  # A^T (m A): down column j, the rows that exist
                row = (b * out_h + oy) * out_w + ox + j
                for q in range(f):
                    y0, y1, y2, y3 = _at6(t[w, 0, j, q], t[w, 1, j, q], t[w, 2, j, q],
                                          t[w, 3, j, q], t[w, 4, j, q], t[w, 5, j, q])
                    z[row, q] = y0
                    if rows > 1:
                        z[row + out_w, q] = y1
                    if rows > 2:
                        z[row + 2 * out_w, q] = y2
                    if rows > 3:
                        z[row + 3 * out_w, q] = y3


@njit(cache=True, inline="always")
def gradient_transform4(grad_z, start, stop, dm, w, t, th, tw, out_h, out_w, zero):
    """``dm[w, k, tile, f]`` = entry ``k`` of ``A dY A^T`` for the 4x4 output gradient ``dY`` of every tile.

    ``dY`` is zero beyond the cropped edges, as the output it is the gradient of; ``zero`` is a
    0 of ``grad_z``'s dtype, so that the sums stay in that precision.
    """
    f = grad_z.shape[1]
    for tt in range((stop - start) * th):
        b = start + tt // th
        oy = 4 * (tt % th)
        rows = min(4, out_h - oy)
        for tx in range(tw):
            tile = tt * tw + tx
            ox = 4 * tx
            cols = min(4, out_w - ox)
            for j in range(4):  # A dY: down column j (zero where cropped)
                row = (b * out_h + oy) * out_w + ox + j
                if j < cols:
                    for q in range(f):
                        g0 = grad_z[row, q]
                        g1 = grad_z[row + out_w, q] if rows > 1 else zero
                        g2 = grad_z[row + 2 * out_w, q] if rows > 2 else zero
                        g3 = grad_z[row + 3 * out_w, q] if rows > 3 else zero
                        t[w, 0, j, q], t[w, 1, j, q], t[w, 2, j, q], t[w, 3, j, q], t[w, 4, j, q], t[w, 5, j, q] = (
                            _a6(g0, g1, g2, g3))
                else:
                    for i in range(6):
                        for q in range(f):
                            t[w, i, j, q] = zero
            for i in range(6):  # (A dY) A^T: along row i
                k = 6 * i
                for q in range(f):
                    (dm[w, k, tile, q], dm[w, k + 1, tile, q], dm[w, k + 2, tile, q], dm[w, k + 3, tile, q],
                     dm[w, k + 4, tile, q], dm[w, k + 5, tile, q]) = _a6(
                        t[w, i, 0, q], t[w, i, 1, q], t[w, i, 2, q], t[w, i, 3, q])


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
