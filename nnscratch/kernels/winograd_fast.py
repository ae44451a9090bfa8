"""Winograd F(2x2, 3x3) convolution, Numba twin (written to be fast).

Same name, signature and result (up to rounding) as
:mod:`nnscratch.kernels.winograd_reference`; read that module for the maths.
Here the batch is cut into blocks of images, as in the im2col convolution,
so that the transformed input (16 x tiles x C) and the 16 products (16 x
tiles x F) of one block stay in cache:

1. ``_input_transform``: every 4x4 tile of the zero-padded input, ``B^T d B``,
   channel by channel (the innermost loops run over the contiguous channels);
2. 16 matrix products ``(tiles, C) @ (C, F)`` with BLAS (``np.matmul`` on the
   stacked arrays);
3. ``_output_transform``: ``A^T m A``, the 2x2 outputs of each tile, cropped at
   odd edges; then bias and activation on the block's rows while they are hot.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.fast import _BIAS_ACTIVATIONS, _scratch, bias_activation
from nnscratch.kernels.winograd_reference import check_winograd_args, transform_kernel, winograd_applies

__all__ = ["winograd_applies", "winograd_conv2d_forward"]

_WINOGRAD_BLOCK_BYTES = 4 << 20


@njit(parallel=True, cache=True)
def _input_transform(x, v, start, stop, pad_top, pad_left, th, tw):
    """``v[k, tile, c]`` = entry ``k`` of ``B^T d B`` for the tiles of images ``start:stop``."""
    n, h, w, c = x.shape
    for t in prange((stop - start) * th):
        b = start + t // th
        ty = t % th
        d = np.zeros((4, 4, c), dtype=x.dtype)
        rows = np.empty((4, 4, c), dtype=x.dtype)
        for tx in range(tw):
            for i in range(4):
                r = 2 * ty + i - pad_top
                for j in range(4):
                    col = 2 * tx + j - pad_left
                    if 0 <= r < h and 0 <= col < w:
                        for q in range(c):
                            d[i, j, q] = x[b, r, col, q]
                    else:
                        for q in range(c):
                            d[i, j, q] = 0
            for j in range(4):  # B^T d: combine rows
                for q in range(c):
                    rows[0, j, q] = d[0, j, q] - d[2, j, q]
                    rows[1, j, q] = d[1, j, q] + d[2, j, q]
                    rows[2, j, q] = d[2, j, q] - d[1, j, q]
                    rows[3, j, q] = d[1, j, q] - d[3, j, q]
            tile = t * tw + tx
            for a in range(4):  # (B^T d) B: combine columns
                for q in range(c):
                    v[4 * a + 0, tile, q] = rows[a, 0, q] - rows[a, 2, q]
                    v[4 * a + 1, tile, q] = rows[a, 1, q] + rows[a, 2, q]
                    v[4 * a + 2, tile, q] = rows[a, 2, q] - rows[a, 1, q]
                    v[4 * a + 3, tile, q] = rows[a, 1, q] - rows[a, 3, q]


@njit(parallel=True, cache=True)
def _output_transform(m, z, start, stop, th, tw, out_h, out_w):
    """The 2x2 outputs ``A^T m A`` of every tile of images ``start:stop``, into ``z`` (pixels, F)."""
    f = m.shape[2]
    for t in prange((stop - start) * th):
        b = start + t // th
        ty = t % th
        s = np.empty((2, 4, f), dtype=m.dtype)
        for tx in range(tw):
            tile = t * tw + tx
            for j in range(4):  # A^T m: combine rows
                for q in range(f):
                    m0, m1 = m[j, tile, q], m[4 + j, tile, q]
                    m2, m3 = m[8 + j, tile, q], m[12 + j, tile, q]
                    s[0, j, q] = m0 + m1 + m2
                    s[1, j, q] = m1 - m2 - m3
            for a in range(2):  # (A^T m) A: combine columns
                oy = 2 * ty + a
                if oy >= out_h:
                    continue
                for e in range(2):
                    ox = 2 * tx + e
                    if ox >= out_w:
                        continue
                    row = (b * out_h + oy) * out_w + ox
                    if e == 0:
                        for q in range(f):
                            z[row, q] = s[a, 0, q] + s[a, 1, q] + s[a, 2, q]
                    else:
                        for q in range(f):
                            z[row, q] = s[a, 1, q] - s[a, 2, q] - s[a, 3, q]


def winograd_conv2d_forward(x, kernel, pad_top, pad_left, out_h, out_w, bias=None, activation="linear"):
    """3x3 stride-1 convolution by Winograd F(2x2, 3x3), block by block.

    Twin of :func:`nnscratch.kernels.winograd_reference.winograd_conv2d_forward`.
    """
    if activation not in _BIAS_ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    x, kernel, pad_top, pad_left, out_h, out_w = check_winograd_args(x, kernel, pad_top, pad_left, out_h, out_w)
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    f = kernel.shape[3]
    th, tw = -(-out_h // 2), -(-out_w // 2)
    u = np.ascontiguousarray(transform_kernel(kernel), dtype=x.dtype)     # (16, C, F)
    z = np.empty((n * out_h * out_w, f), dtype=x.dtype)
    per_image = 16 * th * tw * max(c, f) * x.itemsize
    block = int(min(n, max(1, _WINOGRAD_BLOCK_BYTES // max(per_image, 1))))
    v = _scratch("winograd_v", (16, block * th * tw, c), x.dtype)
    m = _scratch("winograd_m", (16, block * th * tw, f), x.dtype)
    pixels = out_h * out_w
    for start in range(0, n, block):
        stop = min(start + block, n)
        tiles = (stop - start) * th * tw
        _input_transform(x, v, start, stop, pad_top, pad_left, th, tw)
        np.matmul(v[:, :tiles], u, out=m[:, :tiles])
        _output_transform(m, z, start, stop, th, tw, out_h, out_w)
        bias_activation(z[start * pixels:stop * pixels], bias, activation)
    return z
