"""Winograd F(2x2, 3x3) convolution, Numba twin (written to be fast).

Same name, signature and result (up to rounding) as
:mod:`nnscratch.kernels.winograd_reference`; read that module for the maths.
Here the batch is cut into blocks of images, as in the im2col convolution,
so that the transformed input (16 x tiles x C) and the 16 products (16 x
tiles x F) of one block stay in cache:

1. ``_pad_block`` copies the block into a zero-bordered buffer, so that every
   4x4 tile lies inside it; ``_input_transform`` computes ``B^T d B`` of every
   tile, 16 loads and 32 additions per channel in registers, the innermost
   loop running over the contiguous channels;
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
def _pad_block(x, padded, start, stop, pad_top, pad_left):
    """Copy images ``start:stop`` of ``x`` into the zeroed borders of ``padded`` (every tile then lies inside)."""
    n, h, w, c = x.shape
    rows = min(h, padded.shape[1] - pad_top)
    cols = min(w, padded.shape[2] - pad_left)
    for t in prange((stop - start) * padded.shape[1]):
        b = t // padded.shape[1]
        r = t % padded.shape[1]
        out = padded[b, r]
        out[:, :] = 0
        if pad_top <= r < pad_top + rows:
            out[pad_left:pad_left + cols, :] = x[start + b, r - pad_top, :cols, :]


@njit(parallel=True, cache=True)
def _input_transform(padded, v, th, tw):
    """``v[k, tile, c]`` = entry ``k`` of ``B^T d B`` for every 4x4 tile ``d`` of the padded block.

    One tile row per parallel task; for each tile the 16 inputs of a channel
    are loaded and combined in registers, the innermost loop running over the
    contiguous channels.
    """
    nb = padded.shape[0]
    c = padded.shape[3]
    for t in prange(nb * th):
        b = t // th
        r = 2 * (t % th)
        for tx in range(tw):
            col = 2 * tx
            tile = t * tw + tx
            for q in range(c):
                d00, d01, d02, d03 = (
                    padded[b, r, col, q], padded[b, r, col + 1, q],
                    padded[b, r, col + 2, q], padded[b, r, col + 3, q])
                d10, d11, d12, d13 = (
                    padded[b, r + 1, col, q], padded[b, r + 1, col + 1, q],
                    padded[b, r + 1, col + 2, q], padded[b, r + 1, col + 3, q])
                d20, d21, d22, d23 = (
                    padded[b, r + 2, col, q], padded[b, r + 2, col + 1, q],
                    padded[b, r + 2, col + 2, q], padded[b, r + 2, col + 3, q])
                d30, d31, d32, d33 = (
                    padded[b, r + 3, col, q], padded[b, r + 3, col + 1, q],
                    padded[b, r + 3, col + 2, q], padded[b, r + 3, col + 3, q])
                # B^T d: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3
                a0, a1, a2, a3 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
                b0, b1, b2, b3 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
                c0, c1, c2, c3 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
                e0, e1, e2, e3 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
                # (B^T d) B: the same combinations of the columns
                v[0, tile, q], v[1, tile, q], v[2, tile, q], v[3, tile, q] = a0 - a2, a1 + a2, a2 - a1, a1 - a3
                v[4, tile, q], v[5, tile, q], v[6, tile, q], v[7, tile, q] = b0 - b2, b1 + b2, b2 - b1, b1 - b3
                v[8, tile, q], v[9, tile, q], v[10, tile, q], v[11, tile, q] = c0 - c2, c1 + c2, c2 - c1, c1 - c3
                v[12, tile, q], v[13, tile, q], v[14, tile, q], v[15, tile, q] = e0 - e2, e1 + e2, e2 - e1, e1 - e3


@njit(parallel=True, cache=True)
def _output_transform(m, z, start, stop, th, tw, out_h, out_w):
    """The 2x2 outputs ``A^T m A`` of every tile of images ``start:stop``, into ``z`` (pixels, F)."""
    f = m.shape[2]
    for t in prange((stop - start) * th):
        b = start + t // th
        oy = 2 * (t % th)
        for tx in range(tw):
            tile = t * tw + tx
            ox = 2 * tx
            row0 = (b * out_h + oy) * out_w + ox  # output (oy, ox); the others follow
            has_right = ox + 1 < out_w
            has_below = oy + 1 < out_h
            for q in range(f):
                # A^T m: rows 0 + 1 + 2 and 1 - 2 - 3 (m[4 i + j] is entry (i, j))
                s0 = m[0, tile, q] + m[4, tile, q] + m[8, tile, q]
                s1 = m[1, tile, q] + m[5, tile, q] + m[9, tile, q]
                s2 = m[2, tile, q] + m[6, tile, q] + m[10, tile, q]
                s3 = m[3, tile, q] + m[7, tile, q] + m[11, tile, q]
                u0 = m[4, tile, q] - m[8, tile, q] - m[12, tile, q]
                u1 = m[5, tile, q] - m[9, tile, q] - m[13, tile, q]
                u2 = m[6, tile, q] - m[10, tile, q] - m[14, tile, q]
                u3 = m[7, tile, q] - m[11, tile, q] - m[15, tile, q]
                # (A^T m) A: the same combinations of the columns, cropped at odd edges
                z[row0, q] = s0 + s1 + s2
                if has_right:
                    z[row0 + 1, q] = s1 - s2 - s3
                if has_below:
                    z[row0 + out_w, q] = u0 + u1 + u2
                    if has_right:
                        z[row0 + out_w + 1, q] = u1 - u2 - u3


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
    padded = _scratch("winograd_padded", (block, 2 * th + 2, 2 * tw + 2, c), x.dtype)
    pixels = out_h * out_w
    for start in range(0, n, block):
        stop = min(start + block, n)
        tiles = (stop - start) * th * tw
        _pad_block(x, padded, start, stop, pad_top, pad_left)
        _input_transform(padded[:stop - start], v, th, tw)
        np.matmul(v[:, :tiles], u, out=m[:, :tiles])
        _output_transform(m, z, start, stop, th, tw, out_h, out_w)
        bias_activation(z[start * pixels:stop * pixels], bias, activation)
    return z
