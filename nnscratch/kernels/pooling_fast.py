"""Pooling and resampling kernels beyond max pooling, Numba twin (written to be fast).

Same names, signatures and results as :mod:`nnscratch.kernels.pooling_reference`
-- bit for bit: every output is the same sum of the same numbers in the same
order, divided by the same count, in the same dtype (read that module for the
formulas and conventions). As in :mod:`nnscratch.kernels.fast`, each public
function checks and allocates in Python and calls a private
``@njit(parallel=True, cache=True)`` loop that runs ``prange`` over images (or
rows of images), walks the contiguous channel axis innermost, and indexes the
4-D arrays whole instead of slicing views (docs/kernels.md, rules 2 and 9).
Below :data:`nnscratch.kernels.workspace.SERIAL_BELOW` numbers a loop runs
compiled serial on the calling thread (:func:`~nnscratch.kernels.workspace.for_size`).

* average pooling, forward: one output row of one image per task; each window
  sums its input cells in row-major order (the reference adds the padding's
  zeros too, which changes no bit) and divides by the count of those cells;
* average pooling, backward: a scatter-add, one image per task (windows may
  overlap inside an image, never across images). The windows are visited
  from the last to the first, so that each input cell receives its windows'
  shares in the order of the reference, which adds them window cell ``(i,
  j)`` after window cell;
* global average pooling sums in float64, pixel after pixel, as the reference;
* global max pooling keeps the first maximum, as ``np.argmax``;
* nearest upsampling copies pixels forward and sums each pixel's copies
  backward, in row-major order;
* bilinear upsampling computes each output from its four sources with the
  reference's three lerps; backward scatters rows then columns, one image per
  task, in the reference's order (all ``lower`` shares, then the ``upper`` ones).
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.pooling_reference import (_check_global_grad, _check_grad, _image, _image_shape, _sizes,
                                                 avgpool2d_counts, bilinear_source, check_pool_window)
from nnscratch.kernels.workspace import for_size

__all__ = [
    "check_pool_window",
    "avgpool2d_counts",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "global_avgpool2d_forward",
    "global_avgpool2d_backward",
    "global_maxpool2d_forward",
    "global_maxpool2d_backward",
    "upsample_nearest2d_forward",
    "upsample_nearest2d_backward",
    "bilinear_source",
    "upsample_bilinear2d_forward",
    "upsample_bilinear2d_backward",
]


# ---------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _avgpool_forward_kernel(x, y, counts, kh, kw, sh, sw, pad_top, pad_left):
    """``y`` (zeros on entry) <- the window means of ``x``, one output row of one image per task."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    out_h, out_w = y.shape[1], y.shape[2]
    for t in prange(y.shape[0] * out_h):
        b = t // out_h
        oy = t - b * out_h
        for ox in range(out_w):
            for i in range(kh):
                r = oy * sh - pad_top + i
                if r < 0 or r >= h:
                    continue
                for j in range(kw):
                    col = ox * sw - pad_left + j
                    if col < 0 or col >= w:
                        continue
                    for q in range(c):
                        y[b, oy, ox, q] += x[b, r, col, q]
            for q in range(c):
                y[b, oy, ox, q] = y[b, oy, ox, q] / counts[oy, ox]


def avgpool2d_forward(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Mean of each window over the input cells it covers, per channel.

    Twin of :func:`nnscratch.kernels.pooling_reference.avgpool2d_forward`
    (bit for bit): ``y`` (N, out_h, out_w, C) in the dtype of ``x``.
    """
    x = _image(x)
    n, h, w, c = x.shape
    geometry = check_pool_window(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w = geometry
    y = np.zeros((n, out_h, out_w, c), dtype=x.dtype)
    if y.size:
        counts = avgpool2d_counts(h, w, *geometry).astype(x.dtype)
        for_size(_avgpool_forward_kernel, x.size)(x, y, counts, kh, kw, sh, sw, pad_top, pad_left)
    return y


@njit(parallel=True, cache=True)
def _avgpool_backward_kernel(share, dx, kh, kw, sh, sw, pad_top, pad_left):
    """``dx`` (zeros on entry) += each window's ``share`` (its gradient / its count) at its input cells;
    one image per task."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    out_h, out_w = share.shape[1], share.shape[2]
    for b in prange(dx.shape[0]):               # windows may overlap inside one image
        for oy in range(out_h - 1, -1, -1):     # last window first: the reference's order of the adds
            for ox in range(out_w - 1, -1, -1):
                for i in range(kh):
                    r = oy * sh - pad_top + i
                    if r < 0 or r >= h:
                        continue
                    for j in range(kw):
                        col = ox * sw - pad_left + j
                        if col < 0 or col >= w:
                            continue
                        for q in range(c):
                            dx[b, r, col, q] += share[b, oy, ox, q]


def avgpool2d_backward(grad_y, x_shape, kh, kw, sh, sw, pad_top, pad_left):
    """Spread each window's gradient evenly over its input cells; overlapping windows add up.

    Twin of :func:`nnscratch.kernels.pooling_reference.avgpool2d_backward`
    (bit for bit): ``dx`` of ``x_shape`` in the dtype of ``grad_y``. A
    scatter-add, without ``np.add.at``.
    """
    grad_y = _image(grad_y, "grad_y")
    n, h, w, c = x_shape = _image_shape(x_shape)
    out_h, out_w = grad_y.shape[1:3]
    _check_grad(grad_y, x_shape, out_h, out_w)
    geometry = check_pool_window(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w = geometry
    dx = np.zeros(x_shape, dtype=grad_y.dtype)
    if grad_y.size and dx.size:
        counts = avgpool2d_counts(h, w, *geometry).astype(grad_y.dtype)
        share = grad_y / counts[None, :, :, None]   # as the reference: what each covered cell receives
        for_size(_avgpool_backward_kernel, dx.size)(share, dx, kh, kw, sh, sw, pad_top, pad_left)
    return dx


# ---------------------------------------------------------------------------
# global pooling
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _global_sum_kernel(x, total):
    """``total[b, q]`` (float64 zeros on entry) += every pixel of image ``b``, in row-major order."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for b in prange(x.shape[0]):
        for r in range(h):
            for s in range(w):
                for q in range(c):
                    total[b, q] += x[b, r, s, q]


def global_avgpool2d_forward(x):
    """Mean over all pixels, per sample and channel: ``y`` (N, C).

    Twin of :func:`nnscratch.kernels.pooling_reference.global_avgpool2d_forward`
    (bit for bit): summed in float64, divided by ``H * W``, rounded to the dtype of ``x``.
    """
    x = _image(x)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"global average pooling needs at least one pixel, got shape {x.shape}")
    total = np.zeros((n, c), dtype=np.float64)
    if total.size:
        for_size(_global_sum_kernel, x.size)(x, total)
    return (total / (h * w)).astype(x.dtype)


@njit(parallel=True, cache=True)
def _global_spread_kernel(share, dx):
    """``dx[b, r, s, q] = share[b, q]`` at every pixel."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for b in prange(dx.shape[0]):
        for r in range(h):
            for s in range(w):
                for q in range(c):
                    dx[b, r, s, q] = share[b, q]


def global_avgpool2d_backward(grad_y, x_shape):
    """``dx[n, r, s, c] = grad_y[n, c] / (H * W)`` at every pixel.

    Twin of :func:`nnscratch.kernels.pooling_reference.global_avgpool2d_backward` (bit for bit).
    """
    n, h, w, c = x_shape = _image_shape(x_shape)
    grad_y = _check_global_grad(grad_y, None, x_shape)
    share = grad_y / grad_y.dtype.type(h * w)
    dx = np.empty(x_shape, dtype=grad_y.dtype)
    if dx.size:
        for_size(_global_spread_kernel, dx.size)(share, dx)
    return dx


@njit(parallel=True, cache=True)
def _global_max_kernel(x, y, argmax):
    """Per image and channel, the first maximum over the pixels in row-major order and its index."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for b in prange(x.shape[0]):
        for q in range(c):
            y[b, q] = x[b, 0, 0, q]
            argmax[b, q] = 0
        for p in range(1, h * w):
            r = p // w
            s = p - r * w
            for q in range(c):
                v = x[b, r, s, q]
                best = y[b, q]
                # strictly greater: the first maximum wins ties; like np.argmax, the first NaN wins
                take = v > best or (v != v and best == best)
                y[b, q] = v if take else best
                argmax[b, q] = p if take else argmax[b, q]


def global_maxpool2d_forward(x):
    """Maximum over all pixels, per sample and channel, and the int32 index ``row * W + col`` of the winner.

    Twin of :func:`nnscratch.kernels.pooling_reference.global_maxpool2d_forward`;
    the first maximum in row-major order wins ties.
    """
    x = _image(x)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"global max pooling needs at least one pixel, got shape {x.shape}")
    y = np.empty((n, c), dtype=x.dtype)
    argmax = np.empty((n, c), dtype=np.int32)
    if y.size:
        for_size(_global_max_kernel, x.size)(x, y, argmax)
    return y, argmax


@njit(parallel=True, cache=True)
def _global_route_kernel(grad_y, argmax, dx):
    """``dx`` (zeros on entry): ``grad_y[b, q]`` at pixel ``argmax[b, q]`` of channel ``q``."""
    w, c = dx.shape[2], dx.shape[3]
    for b in prange(dx.shape[0]):
        for q in range(c):
            p = argmax[b, q]
            r = p // w
            dx[b, r, p - r * w, q] = grad_y[b, q]


def global_maxpool2d_backward(grad_y, argmax, x_shape):
    """Send each ``grad_y[n, c]`` to the pixel ``argmax[n, c]``; every other pixel gets 0.

    Twin of :func:`nnscratch.kernels.pooling_reference.global_maxpool2d_backward` (bit for bit).
    """
    x_shape = _image_shape(x_shape)
    grad_y, argmax = _check_global_grad(grad_y, argmax, x_shape)
    dx = np.zeros(x_shape, dtype=grad_y.dtype)
    if dx.size:
        for_size(_global_route_kernel, dx.size)(grad_y, argmax, dx)
    return dx


# ---------------------------------------------------------------------------
# nearest-neighbour upsampling
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _upsample_kernel(x, y, size_h, size_w):
    """``y[b, r, s, q] = x[b, r // size_h, s // size_w, q]``, one output row per task."""
    hh, ww, c = y.shape[1], y.shape[2], y.shape[3]
    for t in prange(y.shape[0] * hh):
        b = t // hh
        r = t - b * hh
        src = r // size_h
        for s in range(ww):
            col = s // size_w
            for q in range(c):
                y[b, r, s, q] = x[b, src, col, q]


def upsample_nearest2d_forward(x, size_h, size_w):
    """Repeat every pixel ``size_h`` times down and ``size_w`` times across.

    Twin of :func:`nnscratch.kernels.pooling_reference.upsample_nearest2d_forward` (the same copies).
    """
    x = _image(x)
    size_h, size_w = _sizes(size_h, size_w)
    n, h, w, c = x.shape
    y = np.empty((n, h * size_h, w * size_w, c), dtype=x.dtype)
    if y.size:
        for_size(_upsample_kernel, y.size)(x, y, size_h, size_w)
    return y


@njit(parallel=True, cache=True)
def _upsample_backward_kernel(grad_y, dx, size_h, size_w):
    """``dx`` (zeros on entry) += the ``size_h x size_w`` copies of each pixel, in row-major order; one input
    row per task."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for t in prange(dx.shape[0] * h):
        b = t // h
        r = t - b * h
        for s in range(w):
            for i in range(size_h):
                for j in range(size_w):
                    for q in range(c):
                        dx[b, r, s, q] += grad_y[b, r * size_h + i, s * size_w + j, q]


def upsample_nearest2d_backward(grad_y, size_h, size_w):
    """Each input pixel collects the gradient of its ``size_h x size_w`` copies.

    Twin of :func:`nnscratch.kernels.pooling_reference.upsample_nearest2d_backward` (bit for bit).
    """
    grad_y = _image(grad_y, "grad_y")
    size_h, size_w = _sizes(size_h, size_w)
    n, hh, ww, c = grad_y.shape
    if hh % size_h or ww % size_w:
        raise ValueError(f"grad_y shape {grad_y.shape} is not a multiple of the size {(size_h, size_w)}")
    dx = np.zeros((n, hh // size_h, ww // size_w, c), dtype=grad_y.dtype)
    if dx.size:
        for_size(_upsample_backward_kernel, grad_y.size)(grad_y, dx, size_h, size_w)
    return dx


# ---------------------------------------------------------------------------
# bilinear upsampling
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _bilinear_kernel(x, y, lo, hi, wy, left, right, wx):
    """``y`` <- the bilinear interpolation of ``x`` (columns first, then rows, as the reference); one output row
    per task."""
    hh, ww, c = y.shape[1], y.shape[2], y.shape[3]
    for t in prange(y.shape[0] * hh):
        b = t // hh
        r = t - b * hh
        i0, i1, fy = lo[r], hi[r], wy[r]
        for s in range(ww):
            j0, j1, fx = left[s], right[s], wx[s]
            for q in range(c):
                top = x[b, i0, j0, q] + (x[b, i0, j1, q] - x[b, i0, j0, q]) * fx
                bottom = x[b, i1, j0, q] + (x[b, i1, j1, q] - x[b, i1, j0, q]) * fx
                y[b, r, s, q] = top + (bottom - top) * fy


def upsample_bilinear2d_forward(x, size_h, size_w):
    """Upsample ``size_h`` times down and ``size_w`` times across by bilinear interpolation (half-pixel centres).

    Twin of :func:`nnscratch.kernels.pooling_reference.upsample_bilinear2d_forward` (bit for bit).
    """
    x = _image(x)
    size_h, size_w = _sizes(size_h, size_w)
    n, h, w, c = x.shape
    lo, hi, wy, _ = bilinear_source(h, size_h, x.dtype)
    left, right, wx, _ = bilinear_source(w, size_w, x.dtype)
    y = np.empty((n, h * size_h, w * size_w, c), dtype=x.dtype)
    if y.size:
        for_size(_bilinear_kernel, y.size)(x, y, lo, hi, wy, left, right, wx)
    return y


@njit(parallel=True, cache=True)
def _bilinear_backward_kernel(grad_y, dt, dx, lo, hi, wy, keep_y, left, right, wx, keep_x):
    """``dx`` (zeros on entry) <- the adjoint of the interpolation, through ``dt`` (zeros on entry, the gradient
    of the column-interpolated rows); one image per task."""
    hh, ww, c = grad_y.shape[1], grad_y.shape[2], grad_y.shape[3]
    h = dx.shape[1]
    for b in prange(grad_y.shape[0]):
        for r in range(hh):                            # rows: every lower share, then every upper share
            for s in range(ww):
                for q in range(c):
                    dt[b, lo[r], s, q] += grad_y[b, r, s, q] * keep_y[r]
        for r in range(hh):
            for s in range(ww):
                for q in range(c):
                    dt[b, hi[r], s, q] += grad_y[b, r, s, q] * wy[r]
        for i in range(h):                             # then the columns, likewise
            for s in range(ww):
                for q in range(c):
                    dx[b, i, left[s], q] += dt[b, i, s, q] * keep_x[s]
            for s in range(ww):
                for q in range(c):
                    dx[b, i, right[s], q] += dt[b, i, s, q] * wx[s]


def upsample_bilinear2d_backward(grad_y, size_h, size_w):
    """The adjoint of :func:`upsample_bilinear2d_forward`.

    Twin of :func:`nnscratch.kernels.pooling_reference.upsample_bilinear2d_backward` (bit for bit).
    """
    grad_y = _image(grad_y, "grad_y")
    size_h, size_w = _sizes(size_h, size_w)
    n, hh, ww, c = grad_y.shape
    if hh % size_h or ww % size_w:
        raise ValueError(f"grad_y shape {grad_y.shape} is not a multiple of the size {(size_h, size_w)}")
    h, w = hh // size_h, ww // size_w
    lo, hi, wy, keep_y = bilinear_source(h, size_h, grad_y.dtype)
    left, right, wx, keep_x = bilinear_source(w, size_w, grad_y.dtype)
    dt = np.zeros((n, h, ww, c), dtype=grad_y.dtype)
    dx = np.zeros((n, h, w, c), dtype=grad_y.dtype)
    if dx.size:
        for_size(_bilinear_backward_kernel, grad_y.size)(grad_y, dt, dx, lo, hi, wy, keep_y, left, right, wx, keep_x)
    return dx


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
