"""Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution, Numba twin (written to be fast).

Same name, signature and result (up to rounding) as
:mod:`nnscratch.kernels.winograd_reference`; read that module for the maths.
Here the batch is cut into blocks of images, so that a block's transformed
input (16 x tiles x C) and its 16 products (16 x tiles x F) stay in cache,
and **each thread works a whole block at a time**, from input to output:

1. ``_pad_block`` copies the block into a zero-bordered buffer, so that every
   4x4 tile lies inside it;
2. ``_input_transform`` computes ``B^T d B`` of every tile, 16 loads and 32
   additions per channel in registers, the innermost loop running over the
   contiguous channels;
3. ``_products``: the 16 matrix products ``(tiles, C) @ (C, F)``, each one
   ``np.dot`` call, which Numba sends to BLAS (SciPy's) on this thread;
4. ``_output_transform``: ``A^T m A``, the 2x2 outputs of each tile, cropped at
   odd edges; then bias and activation on the block's rows while they are hot.

F(4x4, 3x3) (``tile=4``) runs the same four steps with 6x6 tiles and 36
products; its transforms are in :mod:`nnscratch.kernels.winograd_f4_fast`.

Why threads take whole blocks: with one parallel loop per step and two-thread
BLAS products, a block meant five thread wake-ups and barriers, and 16 small
products that two BLAS threads share badly. Whole blocks need one parallel
region per call; the products then run on one BLAS thread each
(``workspace.one_blas_thread``), as many side by side as Numba has threads.

Two rules keep the transforms vectorised (docs/kernels.md): the parallel body
indexes the work arrays with a worker number instead of taking views of them
(a view inside a ``prange`` body makes Numba drop the "no alias" promise that
lets LLVM use SIMD), and the transforms are inlined into it
(``inline="always"``); the products, which need views, sit in a function of
their own.

Each block is computed the same way whichever thread takes it, and the block
size depends only on the shapes, so the result does not depend on the number
of threads.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.elementwise_fast import (_ACTIVATION_CODES, _affine_and_code, _affine_rows,
                                                _bias_activation_rows, _bias_and_code)
from nnscratch.kernels.workspace import block_bounds, image_blocks, one_blas_thread, scratch
from nnscratch.kernels.winograd_f4_fast import gradient_transform4, input_transform4, output_transform4
from nnscratch.kernels.winograd_reference import (TILES, _matrices, check_winograd_args, check_winograd_gradient_args,
                                                  winograd_applies, winograd_tile)

__all__ = ["winograd_applies", "winograd_tile", "transform_kernel", "kernel_from_transformed_gradient",
           "winograd_conv2d_forward", "winograd_conv2d_kernel_gradient"]

_WINOGRAD_BLOCK_BYTES = 1 << 20


# ---------------------------------------------------------------------------
# the kernel's transforms, U = G g G^T and its adjoint dg = G^T dU G
#
# Each output sums its nine terms in float64 in the order of the reference's
# np.einsum (i, then j; each term (G[a, i] g[i, j]) G[b, j]), so both twins give
# the same bits; the einsum took 1.6 ms for a 3x3x128x128 kernel (4.7 for
# F(4x4, 3x3)), these loops 0.1-0.3 ms.
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _sandwich(left, g, right, out):
    """``out[a, b, c, f] = sum_i sum_j left[a, i] g[i, j, c, f] right[b, j]``, float64 sums.

    The innermost loop runs over the contiguous filters ``f``, so that it is
    vectorised; each ``out[a, b, c, :]`` still adds its terms in the order
    (i, j) = (0, 0), (0, 1), ... from 0.0, as the reference's einsum.
    """
    rows, cols = left.shape[0], right.shape[0]
    inner_a, inner_b = g.shape[0], g.shape[1]
    channels, filters = g.shape[2], g.shape[3]
    for c in prange(channels):
        for a in range(rows):
            for b in range(cols):
                for f in range(filters):
                    out[a, b, c, f] = 0.0
                for i in range(inner_a):
                    for j in range(inner_b):
                        la, rb = left[a, i], right[b, j]
                        for f in range(filters):
                            out[a, b, c, f] += la * g[i, j, c, f] * rb


def transform_kernel(kernel, tile=2):
    """``U = G g G^T``: (3, 3, C, F) -> ((tile + 2)^2, C, F) in float64, as the reference twin's."""
    _, g, _ = _matrices(tile)
    kernel = np.asarray(kernel)
    out = np.empty((tile + 2, tile + 2, *kernel.shape[2:]), dtype=np.float64)
    _sandwich(g, np.ascontiguousarray(kernel), g, out)
    return out.reshape((tile + 2) ** 2, *kernel.shape[2:])


def kernel_from_transformed_gradient(du, tile=2):
    """``dL/dg = G^T dU G``: ((tile + 2)^2, C, F) -> (3, 3, C, F) in float64, as the reference twin's."""
    _, g, _ = _matrices(tile)
    du = np.ascontiguousarray(du)
    out = np.empty((3, 3, *du.shape[1:]), dtype=np.float64)
    _sandwich(np.ascontiguousarray(g.T), du.reshape(tile + 2, tile + 2, *du.shape[1:]), np.ascontiguousarray(g.T), out)
    return out


@njit(cache=True)
def _pad_block(x, padded, w, start, stop, pad_top, pad_left):
    """Copy images ``start:stop`` of ``x`` into worker ``w``'s zero-bordered buffer.

    Not inlined, unlike the transforms: inlined into the parallel body, this copy made the
    input transform after it 2.5-10x slower (measured: a 28x28x32 forward's pad and input
    transform 1.42 against 0.54 ms, 7x7x128's 3.94 against 0.46), as a call of its own it
    costs nothing.
    """
    n, h, wd, c = x.shape
    hp, wp = padded.shape[2], padded.shape[3]
    for b in range(stop - start):
        for r in range(hp):
            inside_row = pad_top <= r < pad_top + h
            for col in range(wp):
                if inside_row and pad_left <= col < pad_left + wd:
                    for q in range(c):
                        padded[w, b, r, col, q] = x[start + b, r - pad_top, col - pad_left, q]
                else:
                    for q in range(c):
                        padded[w, b, r, col, q] = 0


@njit(cache=True, inline="always")
def _input_transform(padded, w, images, v, th, tw):
    """``v[w, k, tile, c]`` = entry ``k`` of ``B^T d B`` for every 4x4 tile ``d`` of worker ``w``'s block."""
    c = padded.shape[4]
    for t in range(images * th):
        b = t // th
        r = 2 * (t % th)
        for tx in range(tw):
            col = 2 * tx
            tile = t * tw + tx
            for q in range(c):
                d00, d01, d02, d03 = (padded[w, b, r, col, q], padded[w, b, r, col + 1, q],
                                      padded[w, b, r, col + 2, q], padded[w, b, r, col + 3, q])
                d10, d11, d12, d13 = (padded[w, b, r + 1, col, q], padded[w, b, r + 1, col + 1, q],
                                      padded[w, b, r + 1, col + 2, q], padded[w, b, r + 1, col + 3, q])
                d20, d21, d22, d23 = (padded[w, b, r + 2, col, q], padded[w, b, r + 2, col + 1, q],
                                      padded[w, b, r + 2, col + 2, q], padded[w, b, r + 2, col + 3, q])
                d30, d31, d32, d33 = (padded[w, b, r + 3, col, q], padded[w, b, r + 3, col + 1, q],
                                      padded[w, b, r + 3, col + 2, q], padded[w, b, r + 3, col + 3, q])
                # B^T d: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3
                a0, a1, a2, a3 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
                b0, b1, b2, b3 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
                c0, c1, c2, c3 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
                e0, e1, e2, e3 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
                # (B^T d) B: the same combinations of the columns
                v[w, 0, tile, q], v[w, 1, tile, q], v[w, 2, tile, q], v[w, 3, tile, q] = (
                    a0 - a2, a1 + a2, a2 - a1, a1 - a3)
                v[w, 4, tile, q], v[w, 5, tile, q], v[w, 6, tile, q], v[w, 7, tile, q] = (
                    b0 - b2, b1 + b2, b2 - b1, b1 - b3)
                v[w, 8, tile, q], v[w, 9, tile, q], v[w, 10, tile, q], v[w, 11, tile, q] = (
                    c0 - c2, c1 + c2, c2 - c1, c1 - c3)
                v[w, 12, tile, q], v[w, 13, tile, q], v[w, 14, tile, q], v[w, 15, tile, q] = (
                    e0 - e2, e1 + e2, e2 - e1, e1 - e3)


@njit(cache=True)
def _products(v, u, m, w, tiles):
    """``m[w, k] = v[w, k] @ u[k]`` for the 16 (or 36) entries ``k``: one BLAS product each (views live here)."""
    for k in range(u.shape[0]):
        np.dot(v[w, k, :tiles], u[k], m[w, k, :tiles])


@njit(cache=True, inline="always")
def _output_transform(m, w, z, start, stop, th, tw, out_h, out_w):
    """``A^T m A``: the 2x2 outputs of every tile of images ``start:stop``, into rows of ``z``."""
    f = m.shape[3]
    for t in range((stop - start) * th):
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
                s0 = m[w, 0, tile, q] + m[w, 4, tile, q] + m[w, 8, tile, q]
                s1 = m[w, 1, tile, q] + m[w, 5, tile, q] + m[w, 9, tile, q]
                s2 = m[w, 2, tile, q] + m[w, 6, tile, q] + m[w, 10, tile, q]
                s3 = m[w, 3, tile, q] + m[w, 7, tile, q] + m[w, 11, tile, q]
                u0 = m[w, 4, tile, q] - m[w, 8, tile, q] - m[w, 12, tile, q]
                u1 = m[w, 5, tile, q] - m[w, 9, tile, q] - m[w, 13, tile, q]
                u2 = m[w, 6, tile, q] - m[w, 10, tile, q] - m[w, 14, tile, q]
                u3 = m[w, 7, tile, q] - m[w, 11, tile, q] - m[w, 15, tile, q]
                # (A^T m) A: the same combinations of the columns, cropped at odd edges
                z[row0, q] = s0 + s1 + s2
                if has_right:
                    z[row0 + 1, q] = s1 - s2 - s3
                if has_below:
                    z[row0 + out_w, q] = u0 + u1 + u2
                    if has_right:
                        z[row0 + out_w + 1, q] = u1 - u2 - u3


@njit(parallel=True, cache=True)
def _winograd_blocks(x, u, z, padded, v, m, blocks, pad_top, pad_left, th, tw, out_h, out_w, bias, activation,
                     scale, shift, post):
    """Worker ``w`` computes blocks ``w, w + workers, ...`` (``workspace.block_bounds``), start to end."""
    n = x.shape[0]
    workers = padded.shape[0]
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            _pad_block(x, padded, w, start, stop, pad_top, pad_left)
            _input_transform(padded, w, stop - start, v, th, tw)
            _products(v, u, m, w, (stop - start) * th * tw)
            _output_transform(m, w, z, start, stop, th, tw, out_h, out_w)
            _bias_activation_rows(z, start * out_h * out_w, stop * out_h * out_w, bias, activation)
            _affine_rows(z, start * out_h * out_w, stop * out_h * out_w, scale, shift, post)


@njit(parallel=True, cache=True)
def _winograd4_blocks(x, u, z, padded, v, m, t, blocks, pad_top, pad_left, th, tw, out_h, out_w, bias, activation,
                      scale, shift, post):
    """``_winograd_blocks`` for F(4x4, 3x3): 6x6 tiles, 36 products, ``t`` the transforms' buffer."""
    n = x.shape[0]
    workers = padded.shape[0]
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            _pad_block(x, padded, w, start, stop, pad_top, pad_left)
            input_transform4(padded, w, stop - start, v, t, th, tw)
            _products(v, u, m, w, (stop - start) * th * tw)
            output_transform4(m, w, t, z, start, stop, th, tw, out_h, out_w)
            _bias_activation_rows(z, start * out_h * out_w, stop * out_h * out_w, bias, activation)
            _affine_rows(z, start * out_h * out_w, stop * out_h * out_w, scale, shift, post)


def _check_tile(tile):
    if tile not in TILES:
        raise ValueError(f"tile must be one of {TILES} (F(2x2, 3x3) or F(4x4, 3x3)), got {tile!r}")
    return int(tile)


def _odd(rows):
    """``rows`` rounded up to an odd number: the row count of the transforms' buffers.

    The transforms read or write all 16 (36) planes ``v[w, k]`` of a tile at
    once. When a plane's size is a multiple of 4 KB (128 tiles of 128 channels:
    64 KB), those 16 streams fall into the same set of the 8-way L1 cache and
    evict each other: the 7x7x128 layer's input transform ran 8x slower per
    number than the 14x14x64 layer's (measured on a Zen 4 EPYC). With an odd
    row count, planes start at addresses that differ in the low bits; the
    extra row is never read, and the results are the same bit for bit.
    """
    return rows | 1


def _work_arrays(n, c, f, th, tw, tile, dtype, itemsize):
    """Blocks, workers and the per-worker buffers of one call: ``blocks, workers, padded, v, m, t``."""
    entries = (tile + 2) ** 2
    per_image = entries * th * tw * max(c, f) * itemsize
    blocks, block, workers = image_blocks(n, per_image, _WINOGRAD_BLOCK_BYTES)  # block: the largest's images
    rows = _odd(block * th * tw)  # see _odd: the entries' planes must not lie a power of two apart
    v = scratch("winograd_v", (workers, entries, rows, c), dtype)
    m = scratch("winograd_m", (workers, entries, rows, f), dtype)
    padded = scratch("winograd_padded", (workers, block, tile * th + 2, tile * tw + 2, c), dtype)
    t = scratch("winograd_t", (workers, 6, 6, max(c, f)), dtype) if tile == 4 else None
    return blocks, workers, padded, v, m, t


def winograd_conv2d_forward(x, kernel, pad_top, pad_left, out_h, out_w, bias=None, activation="linear", tile=2,
                            affine=None):
    """3x3 stride-1 convolution by Winograd F(tile x tile, 3x3), a block of images per thread.

    Twin of :func:`nnscratch.kernels.winograd_reference.winograd_conv2d_forward`;
    ``affine = (scale, shift, relu)`` is applied to each block's rows after the
    bias and activation, as ``fast.conv2d_forward`` does.
    """
    if activation not in _ACTIVATION_CODES:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    tile = _check_tile(tile)
    x, kernel, pad_top, pad_left, out_h, out_w = check_winograd_args(x, kernel, pad_top, pad_left, out_h, out_w)
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    f = kernel.shape[3]
    bias, code = _bias_and_code(bias, activation, f, x.dtype)
    scale, shift, post = _affine_and_code(affine, f, x.dtype)
    th, tw = -(-out_h // tile), -(-out_w // tile)
    u = np.ascontiguousarray(transform_kernel(kernel, tile), dtype=x.dtype)     # ((tile + 2)^2, C, F)
    z = np.empty((n * out_h * out_w, f), dtype=x.dtype)
    if n == 0:
        return z
    blocks, workers, padded, v, m, t = _work_arrays(n, c, f, th, tw, tile, x.dtype, x.itemsize)
    with one_blas_thread():
        if tile == 2:
            _winograd_blocks(x, u, z, padded, v, m, blocks, pad_top, pad_left, th, tw, out_h, out_w, bias, code,
                             scale, shift, post)
        else:
            _winograd4_blocks(x, u, z, padded, v, m, t, blocks, pad_top, pad_left, th, tw, out_h, out_w, bias, code,
                              scale, shift, post)
    return z


# ---------------------------------------------------------------------------
# kernel gradient: dU = V^T dM per block, then dg = G^T dU G
# ---------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _gradient_transform(grad_z, start, stop, dm, w, th, tw, out_h, out_w):
    """``dm[w, k, tile, f]`` = entry ``k`` of ``A dY A^T`` for the 2x2 output gradient ``dY`` of every tile."""
    f = grad_z.shape[1]
    for t in range((stop - start) * th):
        b = start + t // th
        oy = 2 * (t % th)
        for tx in range(tw):
            tile = t * tw + tx
            ox = 2 * tx
            row0 = (b * out_h + oy) * out_w + ox
            has_right = ox + 1 < out_w
            has_below = oy + 1 < out_h
            for q in range(f):
                g00 = grad_z[row0, q]
                g01 = grad_z[row0 + 1, q] if has_right else 0.0
                g10 = grad_z[row0 + out_w, q] if has_below else 0.0
                g11 = grad_z[row0 + out_w + 1, q] if has_right and has_below else 0.0
                # A dY: rows g0, g0 + g1, g0 - g1, -g1; then (A dY) A^T: the same on the columns
                p0, q0 = g00, g01
                p1, q1 = g00 + g10, g01 + g11
                p2, q2 = g00 - g10, g01 - g11
                p3, q3 = -g10, -g11
                dm[w, 0, tile, q], dm[w, 1, tile, q], dm[w, 2, tile, q], dm[w, 3, tile, q] = (
                    p0, p0 + q0, p0 - q0, -q0)
                dm[w, 4, tile, q], dm[w, 5, tile, q], dm[w, 6, tile, q], dm[w, 7, tile, q] = (
                    p1, p1 + q1, p1 - q1, -q1)
                dm[w, 8, tile, q], dm[w, 9, tile, q], dm[w, 10, tile, q], dm[w, 11, tile, q] = (
                    p2, p2 + q2, p2 - q2, -q2)
                dm[w, 12, tile, q], dm[w, 13, tile, q], dm[w, 14, tile, q], dm[w, 15, tile, q] = (
                    p3, p3 + q3, p3 - q3, -q3)


@njit(cache=True)
def _gradient_products(v, dm, du_parts, w, blk, tiles):
    """``du_parts[blk, k] = v[w, k]^T @ dm[w, k]`` for the 16 (or 36) entries ``k`` (views live here)."""
    for k in range(du_parts.shape[1]):
        np.dot(v[w, k, :tiles].T, dm[w, k, :tiles], du_parts[blk, k])


@njit(parallel=True, cache=True)
def _winograd_gradient_blocks(x, grad_z, du_parts, padded, v, dm, blocks, pad_top, pad_left, th, tw, out_h, out_w):
    """Worker ``w`` takes blocks ``w, w + workers, ...``: each block's ``dU`` into a slot of its own."""
    n = x.shape[0]
    workers = padded.shape[0]
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            _pad_block(x, padded, w, start, stop, pad_top, pad_left)
            _input_transform(padded, w, stop - start, v, th, tw)
            _gradient_transform(grad_z, start, stop, dm, w, th, tw, out_h, out_w)
            _gradient_products(v, dm, du_parts, w, blk, (stop - start) * th * tw)


@njit(parallel=True, cache=True)
def _winograd4_gradient_blocks(x, grad_z, du_parts, padded, v, dm, t, blocks, pad_top, pad_left, th, tw,
                               out_h, out_w, zero):
    """``_winograd_gradient_blocks`` for F(4x4, 3x3)."""
    n = x.shape[0]
    workers = padded.shape[0]
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            _pad_block(x, padded, w, start, stop, pad_top, pad_left)
            input_transform4(padded, w, stop - start, v, t, th, tw)
            gradient_transform4(grad_z, start, stop, dm, w, t, th, tw, out_h, out_w, zero)
            _gradient_products(v, dm, du_parts, w, blk, (stop - start) * th * tw)


def winograd_conv2d_kernel_gradient(x, grad_z, pad_top, pad_left, out_h, out_w, tile=2):
    """Kernel gradient of the 3x3 stride-1 convolution by Winograd, a block of images per thread.

    Twin of :func:`nnscratch.kernels.winograd_reference.winograd_conv2d_kernel_gradient`.
    Each block's ``dU`` goes to a slot of its own; the slots are summed in
    block order, so the result does not depend on the number of threads.
    """
    tile = _check_tile(tile)
    x, grad_z, pad_top, pad_left, out_h, out_w = check_winograd_gradient_args(
        x, grad_z, pad_top, pad_left, out_h, out_w)
    x, grad_z = np.ascontiguousarray(x), np.ascontiguousarray(grad_z)
    n, f = x.shape[0], grad_z.shape[1]
    c = x.shape[3]
    if n == 0:
        return np.zeros((3, 3, c, f), dtype=x.dtype)
    th, tw = -(-out_h // tile), -(-out_w // tile)
    blocks, workers, padded, v, dm, t = _work_arrays(n, c, f, th, tw, tile, x.dtype, x.itemsize)
    du_parts = scratch("winograd_du", (blocks, (tile + 2) ** 2, c, f), x.dtype)
    with one_blas_thread():
        if tile == 2:
            _winograd_gradient_blocks(x, grad_z, du_parts, padded, v, dm, blocks, pad_top, pad_left, th, tw,
                                      out_h, out_w)
        else:
            _winograd4_gradient_blocks(x, grad_z, du_parts, padded, v, dm, t, blocks, pad_top, pad_left, th, tw,
                                       out_h, out_w, x.dtype.type(0))
    du = du_parts[0].copy()
    for part in du_parts[1:]:
        du += part
    return kernel_from_transformed_gradient(du, tile).astype(x.dtype)


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
