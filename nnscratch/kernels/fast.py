"""Fast kernels: the Numba twins of :mod:`nnscratch.kernels.reference`.

Every public function here has the same name, signature and result (up to
float rounding) as its twin in ``reference.py``; read that module first to see
*what* is computed. This one is about *how fast*:

* each public function is a thin Python wrapper (argument checks, dtype
  handling, output allocation) around a private ``@njit(cache=True)`` loop;
* the loops run ``prange`` over the batch or over rows, and their innermost
  loop walks the contiguous channel axis (NHWC: a window row of ``kw`` pixels
  is one contiguous run of ``kw * C`` numbers, copied in one sweep);
* the batch-norm kernels live in :mod:`nnscratch.kernels.batchnorm_fast`,
  the elementwise ones (bias + activation, dropout, softmax cross-entropy) in
  :mod:`nnscratch.kernels.elementwise_fast`, the Dense layers' inference
  product (a matrix packed in panels) in :mod:`nnscratch.kernels.matmul_fast`,
  and the reusable work buffers
  and the one-BLAS-thread switch in :mod:`nnscratch.kernels.workspace` (for
  length); this module exports their public functions;
* the dtype is preserved: float32 in, float32 out; float64 in, float64 out.
  Sums over many rows (batch-norm statistics and gradients) accumulate in
  float64 and are then rounded to the input dtype;
* results never depend on the number of threads: work is split into chunks
  whose size depends only on the shapes, and partial sums are combined in a
  fixed order.

Threads: the parallel loops use Numba's thread pool, whose size follows
``NUMBA_NUM_THREADS`` (or ``numba.set_num_threads``). This module sets no
thread count on import. The convolutions give each thread whole blocks of
images and make each block's matrix products on that thread, with every BLAS
set to one thread meanwhile (``workspace.one_blas_thread``); the other kernels
never run at the same time as a BLAS call. Idle threads that spin-wait do
compete for the cores: that is why ``import nnscratch`` asks OpenMP for a
short spin (``GOMP_SPINCOUNT=2000``, microseconds). Every
parallel loop ends in a barrier, so on a machine busy with other processes a
kernel can wait a whole scheduler tick for its slowest thread; there,
``NUMBA_NUM_THREADS=1`` may be faster.

With ``NUMBA_DISABLE_JIT=1`` the loops run as plain (slow) Python, and
``prange`` becomes ``range``; results are the same.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.batchnorm_fast import (batch_statistics, batchnorm_backward, batchnorm_backward_from_input,
                                              batchnorm_forward_train, batchnorm_inference)
from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.elementwise_fast import (_BIAS_ACTIVATIONS, _affine_and_code, _affine_rows,
                                                _bias_activation_affine, _bias_activation_rows, _bias_and_code,
                                                activation_backward, all_finite, bias_activation, bias_gradient,
                                                bias_softmax, dropout_forward, softmax_cross_entropy)
from nnscratch.kernels.matmul_fast import FixedProduct, fixed_product_pays, matmul_panels, pack_panels, panel_width
from nnscratch.kernels.workspace import block_bounds, channel_vector, for_size, image_blocks, one_blas_thread, scratch

__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "conv2d_maxpool_forward",
    "bias_activation",
    "activation_backward",
    "bias_gradient",
    "dropout_forward",
    "batchnorm_forward_train",
    "batchnorm_backward",
    "batchnorm_backward_from_input",
    "batchnorm_inference",
    "batchnorm_maxpool_forward_train",
    "bias_softmax",
    "softmax_cross_entropy",
    "pack_panels",
    "matmul_panels",
    "FixedProduct",
    "all_finite",
    "panel_width",
    "fixed_product_pays",
]



# ---------------------------------------------------------------------------
# argument checks shared by the wrappers
# ---------------------------------------------------------------------------

def _window_geometry(kh, kw, sh, sw, pad_top, pad_left):
    """Check window sizes, strides and paddings; return them as Python ints."""
    kh, kw, sh, sw, pad_top, pad_left = (int(v) for v in (kh, kw, sh, sw, pad_top, pad_left))
    if kh < 1 or kw < 1:
        raise ValueError(f"window size must be >= 1, got {(kh, kw)}")
    if sh < 1 or sw < 1:
        raise ValueError(f"strides must be >= 1, got {(sh, sw)}")
    if pad_top < 0 or pad_left < 0:
        raise ValueError(f"paddings must be >= 0, got {(pad_top, pad_left)}")
    return kh, kw, sh, sw, pad_top, pad_left


def _output_size(out_h, out_w):
    out_h, out_w = int(out_h), int(out_w)
    if out_h < 0 or out_w < 0:
        raise ValueError(f"output size must be >= 0, got {(out_h, out_w)}")
    return out_h, out_w


def _image_shape(shape):
    shape = tuple(int(v) for v in shape)
    if len(shape) != 4:
        raise ValueError(f"expected an NHWC shape (N, H, W, C), got {shape}")
    return shape


def _image(x):
    """Return ``x`` as a C-contiguous 4-D array (no copy when it already is)."""
    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"expected an NHWC array (N, H, W, C), got shape {x.shape}")
    return x


# ---------------------------------------------------------------------------
# contiguous runs
#
# Numba checks every signed index for negative (wrap-around) values, and such a
# check inside ``a[d + q] = b[s + q]`` keeps LLVM from vectorising the loop
# (4-5x slower). Slicing first and indexing the views with the loop counter
# alone (known to be >= 0) gives plain vector moves.
# ---------------------------------------------------------------------------

@njit(cache=True)
def _copy_run(dst, d, src, s, n):
    """``dst[d:d+n] = src[s:s+n]`` on flat arrays."""
    a = dst[d:d + n]
    b = src[s:s + n]
    for q in range(n):
        a[q] = b[q]


@njit(cache=True)
def _add_run(dst, d, src, s, n):
    """``dst[d:d+n] += src[s:s+n]`` on flat arrays."""
    a = dst[d:d + n]
    b = src[s:s + n]
    for q in range(n):
        a[q] += b[q]


@njit(cache=True)
def _zero_run(dst, d, n):
    """``dst[d:d+n] = 0`` on a flat array."""
    a = dst[d:d + n]
    for q in range(n):
        a[q] = 0


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------

@njit(cache=True)
def _im2col_image_3x3x1(x, b, cols, w, row0, sh, sw, pad_top, pad_left, out_h, out_w):
    """:func:`_im2col_image` for 3x3 windows of a one-channel image (a grayscale first layer).

    A window row is 3 numbers there, too short for a loop: a row of ``cols`` is
    written as nine scalar copies instead (0.075 against 0.31 ms for 64
    images of 28x28, two threads); windows that overlap the padding take
    the cell-by-cell branch. The same copies, so the same matrix.
    """
    n, h, wd, c = x.shape
    xf = x.reshape(x.size)
    cf = cols[w].reshape(cols[w].size)
    base = b * h * wd
    for oy in range(out_h):
        r0 = oy * sh - pad_top
        for ox in range(out_w):
            d = (row0 + oy * out_w + ox) * 9
            c0 = ox * sw - pad_left
            if r0 >= 0 and r0 + 3 <= h and c0 >= 0 and c0 + 3 <= wd:
                s = base + r0 * wd + c0
                cf[d], cf[d + 1], cf[d + 2] = xf[s], xf[s + 1], xf[s + 2]
                s += wd
                cf[d + 3], cf[d + 4], cf[d + 5] = xf[s], xf[s + 1], xf[s + 2]
                s += wd
                cf[d + 6], cf[d + 7], cf[d + 8] = xf[s], xf[s + 1], xf[s + 2]
            else:
                for i in range(3):
                    r = r0 + i
                    for j in range(3):
                        col = c0 + j
                        inside = 0 <= r < h and 0 <= col < wd
                        cf[d + i * 3 + j] = xf[base + r * wd + col] if inside else 0


@njit(cache=True)
def _im2col_image(x, b, cols, w, row0, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Unfold image ``b`` of ``x`` into rows ``row0, row0 + 1, ...`` of ``cols[w]`` (serial)."""
    n, h, wd, c = x.shape
    if c == 1 and kh == 3 and kw == 3:
        _im2col_image_3x3x1(x, b, cols, w, row0, sh, sw, pad_top, pad_left, out_h, out_w)
        return
    xf = x.reshape(x.size)
    cf = cols[w].reshape(cols[w].size)
    run = kw * c                     # one window row: kw pixels x c channels
    k = kh * run                     # one window = one row of cols
    for oy in range(out_h):
        for ox in range(out_w):
            dst0 = (row0 + oy * out_w + ox) * k
            c0 = ox * sw - pad_left  # first input column of the window
            for i in range(kh):
                r = oy * sh - pad_top + i
                dst = dst0 + i * run
                if r < 0 or r >= h:  # the whole window row is padding
                    _zero_run(cf, dst, run)
                elif c0 >= 0 and c0 + kw <= wd:  # inside: one contiguous run
                    _copy_run(cf, dst, xf, ((b * h + r) * wd + c0) * c, run)
                else:                # straddles the left/right padding
                    for j in range(kw):
                        col = c0 + j
                        if col < 0 or col >= wd:
                            _zero_run(cf, dst + j * c, c)
                        else:
                            _copy_run(cf, dst + j * c, xf, ((b * h + r) * wd + col) * c, c)


@njit(parallel=True, cache=True)
def _im2col_kernel(x, cols, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """``cols`` (1, N * out_h * out_w, K): every image unfolded, images shared among threads."""
    for image in prange(x.shape[0]):
        b = np.int64(image)              # as in the serial twin (rule 15)
        _im2col_image(x, b, cols, 0, b * out_h * out_w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)


def im2col(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Unfold every sliding window of ``x`` into one row of a matrix.

    Twin of :func:`nnscratch.kernels.reference.im2col` (same arguments and
    result): ``x`` (N, H, W, C) -> ``cols`` (N * out_h * out_w, kh * kw * C),
    each row ordered ``(i, j, c)``; padding cells are zeros.
    """
    x = _image(x)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    out_h, out_w = _output_size(out_h, out_w)
    n, _, _, c = x.shape
    cols = np.empty((1, n * out_h * out_w, kh * kw * c), dtype=x.dtype)
    if cols.size:
        _im2col_kernel(x, cols, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    return cols[0]


@njit(cache=True)
def _col2im_image(cols, w, row0, dx, b, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Add rows ``row0, ...`` of ``cols[w]`` back into the pixels of image ``b`` of ``dx`` (serial)."""
    n, h, wd, c = dx.shape
    cf = cols[w].reshape(cols[w].size)
    df = dx.reshape(dx.size)
    run = kw * c
    k = kh * run
    for oy in range(out_h):
        for ox in range(out_w):
            src0 = (row0 + oy * out_w + ox) * k
            c0 = ox * sw - pad_left
            for i in range(kh):
                r = oy * sh - pad_top + i
                if r < 0 or r >= h:
                    continue
                src = src0 + i * run
                if c0 >= 0 and c0 + kw <= wd:
                    _add_run(df, ((b * h + r) * wd + c0) * c, cf, src, run)
                else:
                    for j in range(kw):
                        col = c0 + j
                        if 0 <= col < wd:
                            _add_run(df, ((b * h + r) * wd + col) * c, cf, src + j * c, c)


@njit(parallel=True, cache=True)
def _col2im_kernel(cols, dx, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    # Windows of one image overlap, windows of different images do not:
    # the images are shared among threads, each is scattered serially.
    for image in prange(dx.shape[0]):
        b = np.int64(image)              # as in the serial twin (rule 15)
        _col2im_image(cols, 0, b * out_h * out_w, dx, b, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)


def col2im(cols, x_shape, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Fold window rows back into an image, summing where windows overlap.

    Twin of :func:`nnscratch.kernels.reference.col2im`, the adjoint of
    :func:`im2col`; a scatter-add with explicit loops, parallel over images.
    Returns ``dx`` of shape ``x_shape`` and the dtype of ``cols``.
    """
    n, h, w, c = _image_shape(x_shape)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    out_h, out_w = _output_size(out_h, out_w)
    cols = np.ascontiguousarray(cols)
    expected = (n * out_h * out_w, kh * kw * c)
    if cols.size != expected[0] * expected[1]:
        raise ValueError(f"cols must have shape {expected}, got {cols.shape}")
    cols = cols.reshape((1, *expected))
    dx = np.zeros((n, h, w, c), dtype=cols.dtype)
    if cols.size and dx.size:
        _col2im_kernel(cols, dx, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    return dx


# ---------------------------------------------------------------------------
# convolution, one cache-sized block of images at a time
#
# A whole-batch im2col matrix is large (58 MB for 64 images of 28x28x32), so
# building it and multiplying it would stream it through memory twice. Here
# the batch is cut into blocks whose im2col matrix is about _CONV_BLOCK_BYTES:
# each block is unfolded into one reused buffer and multiplied while it is
# still in cache. The matrix products stay with BLAS.
# ---------------------------------------------------------------------------

_CONV_BLOCK_BYTES = 1 << 20

def _conv_blocks(n, bytes_per_image):
    """``(blocks, largest, workers)``: blocks of at most _CONV_BLOCK_BYTES, shared out evenly.

    See :func:`workspace.image_blocks`.
    """
    return image_blocks(n, bytes_per_image, _CONV_BLOCK_BYTES)


# The three products of a block, each one BLAS call made by the worker's own
# thread (Numba sends np.dot to SciPy's BLAS). They take the arrays whole with
# indices, so that the parallel loops take no views (docs/kernels.md, rule 9).

@njit(cache=True)
def _block_forward_product(cols, w, c0, m, kernel_matrix, z, r0):
    """``z[r0:r0 + m] = cols[w, c0:c0 + m] @ K``."""
    np.dot(cols[w, c0:c0 + m], kernel_matrix, z[r0:r0 + m])


@njit(cache=True)
def _block_kernel_gradient(cols, w, c0, m, grad_z, r0, dkernel_parts, blk):
    """``dkernel_parts[blk] = cols[w, c0:c0 + m]^T @ dz[r0:r0 + m]``."""
    np.dot(cols[w, c0:c0 + m].T, grad_z[r0:r0 + m], dkernel_parts[blk])


@njit(cache=True)
def _block_unfolded_gradient(grad_z, r0, m, kernel_matrix_t, grad_cols, w):
    """``grad_cols[w, :m] = dz[r0:r0 + m] @ K^T``."""
    np.dot(grad_z[r0:r0 + m], kernel_matrix_t, grad_cols[w, :m])


@njit(parallel=True, cache=True)
def _conv_forward_blocks(x, kernel_matrix, z, cols, blocks, workers, kept, kh, kw, sh, sw, pad_top, pad_left,
                         out_h, out_w, bias, activation, scale, shift, post):
    """Worker ``w`` takes blocks ``w, w + workers, ...``: im2col, product, bias and activation
    (and with ``post`` the affine map of a batch norm after it, :func:`_affine_rows`).

    ``kept``: ``cols`` is the whole (1, N * rows, K) im2col matrix, kept for the
    backward pass, and each block is unfolded into its own rows of it; else
    ``cols`` holds one reused block buffer per worker.
    """
    n = x.shape[0]
    rows = out_h * out_w
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        cw = 0 if kept else w
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            c0 = start * rows if kept else 0
            for b in range(start, stop):
                _im2col_image(x, b, cols, cw, c0 + (b - start) * rows, kh, kw, sh, sw, pad_top, pad_left,
                              out_h, out_w)
            _block_forward_product(cols, cw, c0, (stop - start) * rows, kernel_matrix, z, start * rows)
            _bias_activation_rows(z, start * rows, stop * rows, bias, activation)
            _affine_rows(z, start * rows, stop * rows, scale, shift, post)


def conv2d_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, bias=None,
                   activation="linear", cols_out=None, affine=None):
    """``y = f(im2col(x) @ K + b)``, a block of images per thread. Twin of :func:`reference.conv2d_forward`.

    The bias and the activation are applied to each block's rows right after
    its product, while they are still in cache (the same arithmetic as one
    ``bias_activation`` over the whole output, without another pass over it).
    With ``cols_out`` (an (N * out_h * out_w, kh * kw * C) array) the blocks are
    unfolded into it rather than into reused buffers, so that the caller keeps
    ``im2col(x)`` for ``conv2d_backward(..., cols=...)``; the products see the
    same numbers in the same blocks, so ``z`` is the same bit for bit.
    A column-major (F-contiguous) ``cols_out`` is filled column by column
    (``_im2col_transposed_kernel``, fast for few channels) and multiplied in
    one product on BLAS's own threads, then ``bias_activation``: equal to the
    blocks' result up to rounding. ``affine = (scale, shift, relu)``: the
    output then goes through ``batchnorm_inference(y, scale, shift, relu)``
    in the same sweep (an inference-mode batch norm after the layer), bit for
    bit the two kernels one after the other.
    """
    if activation not in _BIAS_ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    x = _image(x)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    out_h, out_w = _output_size(out_h, out_w)
    n, _, _, c = x.shape
    f = kernel.shape[-1]
    kernel_matrix = np.ascontiguousarray(kernel.reshape(-1, f), dtype=x.dtype)
    rows, k = out_h * out_w, kh * kw * c
    z = np.empty((n * rows, f), dtype=x.dtype)
    kept = cols_out is not None
    if kept:
        _check_cols(cols_out, n * rows, k, x.dtype, "cols_out")
    if z.size == 0:
        return z
    scale, shift, post = _affine_and_code(affine, f, x.dtype)
    if _column_major(cols_out):  # few channels: unfold by columns, then one product on BLAS's threads
        _im2col_transposed_kernel(x, cols_out.T, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
        np.matmul(cols_out, kernel_matrix, out=z)
        if not post:
            return bias_activation(z, bias, activation)
        bias, code = _bias_and_code(bias, activation, f, x.dtype)
        for_size(_bias_activation_affine, z.size)(z, bias, code, scale, shift, post)
        return z
    blocks, largest, workers = _conv_blocks(n, rows * k * x.itemsize)
    cols = cols_out.reshape(1, n * rows, k) if kept else scratch("cols", (workers, largest * rows, k), x.dtype)
    bias, code = _bias_and_code(bias, activation, f, x.dtype)
    with one_blas_thread():
        _conv_forward_blocks(x, kernel_matrix, z, cols, blocks, workers, kept, kh, kw, sh, sw, pad_top, pad_left,
                             out_h, out_w, bias, code, scale, shift, post)
    return z


def _check_cols(cols, m, k, dtype, name):
    """``cols``: a C- or F-contiguous (m, k) array of ``dtype`` (it is written or read in place)."""
    if not isinstance(cols, np.ndarray) or cols.shape != (m, k) or cols.dtype != dtype \
            or not (cols.flags.c_contiguous or cols.flags.f_contiguous):
        got = f"{cols.dtype} {cols.shape}" if isinstance(cols, np.ndarray) else type(cols).__name__
        raise ValueError(f"{name} must be a C- or F-contiguous {np.dtype(dtype)} array of shape {(m, k)}, "
                         f"got {got}")


def _column_major(cols):
    """True for a kept im2col matrix stored by columns: each window position one contiguous run."""
    return cols is not None and cols.flags.f_contiguous and not cols.flags.c_contiguous


@njit(parallel=True, cache=True)
def _im2col_transposed_kernel(x, cols_t, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """``cols_t = im2col(x)^T`` (K, N * out_h * out_w): row ``(i, j, c)`` holds that window cell everywhere.

    For few channels this is the fast way to unfold: output row ``oy`` of
    image ``b`` needs, for window cell ``(i, j, c)``, the input pixels
    ``ox * sw + j - pad_left`` of input row ``oy * sh + i - pad_top``, which
    for one channel and stride 1 is one contiguous run of ``out_w`` numbers
    (28 for MNIST), where the row-major layout copies runs of ``kw * C``
    numbers (3). Images are shared among the threads.
    """
    n, h, wd, c = x.shape
    rows = out_h * out_w
    m = cols_t.shape[1]
    xf = x.reshape(x.size)
    cf = cols_t.reshape(cols_t.size)
    for b in prange(n):
        for i in range(kh):
            for j in range(kw):
                # the output columns whose input column ox * sw + j - pad_left lies in [0, wd)
                lo = min(max(0, (pad_left - j + sw - 1) // sw), out_w)
                hi = max(min(out_w, (wd - 1 + pad_left - j) // sw + 1), lo)
                for ch in range(c):
                    row0 = ((i * kw + j) * c + ch) * m + b * rows
                    for oy in range(out_h):
                        r = oy * sh + i - pad_top
                        d = row0 + oy * out_w
                        if r < 0 or r >= h:      # the whole run is padding
                            cf[d:d + out_w] = 0
                            continue
                        cf[d:d + lo] = 0
                        s = ((b * h + r) * wd + j - pad_left) * c + ch
                        if sw == 1 and c == 1:   # one contiguous copy
                            cf[d + lo:d + hi] = xf[s + lo:s + hi]
                        else:
                            for ox in range(lo, hi):
                                cf[d + ox] = xf[s + ox * sw * c]
                        cf[d + hi:d + out_w] = 0


@njit(parallel=True, cache=True)
def _conv_backward_blocks(x, grad_z, kernel_matrix_t, cols, grad_cols, dkernel_parts, dx, blocks, workers, kept,
                          kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, input_gradient):
    """Worker ``w`` takes blocks ``w, w + workers, ...``: the block's dK, and its dx if asked.

    ``kept``: ``cols`` is the whole im2col matrix the forward pass kept, read
    block by block; else each block is unfolded again into the worker's buffer.
    """
    n = x.shape[0]
    rows = out_h * out_w
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        cw = 0 if kept else w
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            m = (stop - start) * rows
            c0 = start * rows if kept else 0
            if not kept:
                for b in range(start, stop):
                    _im2col_image(x, b, cols, w, (b - start) * rows, kh, kw, sh, sw, pad_top, pad_left,
                                  out_h, out_w)
            _block_kernel_gradient(cols, cw, c0, m, grad_z, start * rows, dkernel_parts, blk)
            if input_gradient:
                _block_unfolded_gradient(grad_z, start * rows, m, kernel_matrix_t, grad_cols, w)
                for b in range(start, stop):
                    _col2im_image(grad_cols, w, (b - start) * rows, dx, b, kh, kw, sh, sw, pad_top, pad_left,
                                  out_h, out_w)


def conv2d_backward(x, grad_z, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, input_gradient=True,
                    cols=None):
    """``dK = im2col(x)^T dz``, ``dx = col2im(dz K^T)``, a block per thread. Twin of :func:`reference.conv2d_backward`.

    Each block's ``dK`` goes to a slot of its own; the slots are summed in
    block order afterwards, so the sum does not depend on the threads.
    ``cols``: ``im2col(x)`` as kept by ``conv2d_forward(..., cols_out=...)``;
    then no block is unfolded again (same blocks, same bits). A column-major
    ``cols`` gives ``dK = cols^T dz`` as one product on BLAS's threads (equal
    up to rounding), and ``dx`` by one ``col2im``.
    """
    x = _image(x)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    out_h, out_w = _output_size(out_h, out_w)
    n, _, _, c = x.shape
    f = kernel.shape[-1]
    kernel_matrix_t = np.ascontiguousarray(kernel.reshape(-1, f).T, dtype=x.dtype)
    grad_z = np.ascontiguousarray(grad_z, dtype=x.dtype).reshape(-1, f)
    rows, k = out_h * out_w, kh * kw * c
    dx = np.zeros(x.shape, dtype=x.dtype) if input_gradient else None
    if n == 0 or rows == 0:
        return np.zeros(kernel.shape, dtype=x.dtype), dx
    kept = cols is not None
    if kept:
        _check_cols(cols, n * rows, k, x.dtype, "cols")
    if _column_major(cols):  # as the forward pass: whole-batch products on BLAS's threads
        dkernel = np.matmul(cols.T, grad_z)
        if input_gradient:
            grad_cols = np.matmul(grad_z, kernel_matrix_t).reshape(1, n * rows, k)
            _col2im_kernel(grad_cols, dx, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
        return dkernel.reshape(kernel.shape), dx
    blocks, largest, workers = _conv_blocks(n, rows * k * x.itemsize)
    cols = cols.reshape(1, n * rows, k) if kept else scratch("cols", (workers, largest * rows, k), x.dtype)
    grad_cols = scratch("grad_cols", (workers, largest * rows, k) if input_gradient else (1, 1, 1), x.dtype)
    dkernel_parts = scratch("dkernel_parts", (blocks, k, f), x.dtype)
    with one_blas_thread():
        _conv_backward_blocks(x, grad_z, kernel_matrix_t, cols, grad_cols, dkernel_parts,
                              dx if input_gradient else np.zeros((1, 1, 1, 1), dtype=x.dtype), blocks, workers, kept,
                              kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, input_gradient)
    dkernel = dkernel_parts[0].copy()
    for part in dkernel_parts[1:]:
        dkernel += part
    return dkernel.reshape(kernel.shape), dx


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _pool_output_row(src, base, h, w, y, argmax, b, oy, kh, kw, sh, sw, pad_top, pad_left, out_w,
                     mean, inv_std, gamma, beta, prologue, zero):
    """Pool output row ``oy`` of image ``b`` into ``y`` and ``argmax``; the image's pixel ``(r, col)`` is
    row ``base + r * w + col`` of the 2-D ``src`` (pixels x channels).

    For each window cell, one sweep over the channels; the arrays are indexed
    whole, never sliced into views (docs/kernels.md, rule 9), which keeps the
    sweep vectorised. ``prologue`` 1 (2: then the ReLU) pools the batch norm
    of ``src`` instead of ``src``, each value computed as ``_bn_normalize``
    computes it (for :func:`batchnorm_maxpool_forward_train`); 0 pools
    ``src`` itself. ``zero`` is 0 in ``src``'s dtype: an integer 0 would turn
    ``v`` into a float64, and the normalisation's arithmetic with it.
    """
    c = src.shape[1]
    for ox in range(out_w):
        # start as if the window held only padding: -inf, index 0
        for q in range(c):
            y[b, oy, ox, q] = -np.inf
            argmax[b, oy, ox, q] = 0
        for i in range(kh):
            r = oy * sh - pad_top + i
            if r < 0 or r >= h:
                continue
            for j in range(kw):
                col = ox * sw - pad_left + j
                if col < 0 or col >= w:
                    continue
                cell = i * kw + j
                row = base + r * w + col
                for q in range(c):
                    v = src[row, q]
                    if prologue:
                        v = gamma[q] * ((v - mean[q]) * inv_std[q]) + beta[q]
                        if prologue == 2 and v <= zero:  # the ReLU, as _bn_normalize
                            v = zero
                    best = y[b, oy, ox, q]
                    # strictly greater: the first maximum wins ties;
                    # like np.argmax, the first NaN wins over numbers
                    take = v > best or (v != v and best == best)
                    y[b, oy, ox, q] = v if take else best
                    argmax[b, oy, ox, q] = cell if take else argmax[b, oy, ox, q]


@njit(parallel=True, cache=True)
def _maxpool_forward_kernel(src, h, w, y, argmax, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w,
                            mean, inv_std, gamma, beta, prologue, zero):
    """Max pooling of the images ``src`` ((N * H * W, C), NHWC flattened), one output row per task
    (:func:`_pool_output_row`)."""
    for t in prange(y.shape[0] * out_h):
        b = t // out_h
        oy = t - b * out_h
        _pool_output_row(src, b * h * w, h, w, y, argmax, b, oy, kh, kw, sh, sw, pad_top, pad_left, out_w,
                         mean, inv_std, gamma, beta, prologue, zero)


def maxpool2d_forward(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Max over each window; also return where the maximum was.

    Twin of :func:`nnscratch.kernels.reference.maxpool2d_forward`: returns
    ``y`` (N, out_h, out_w, C) and the int32 ``argmax`` index ``i * kw + j``
    of the winning cell. Padding cells count as ``-inf``; on ties the first
    cell in row-major window order wins.
    """
    x = _image(x)
    none = np.zeros(x.shape[-1], dtype=x.dtype)
    y, argmax = _pool(x, (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w), none, none, none, none, 0,
                      "maxpool2d_forward")
    return y, argmax


def _pool(x, window, mean, inv_std, gamma, beta, prologue, name):
    """Check ``x`` and the window geometry, then run the pooling kernel (with its batch-norm ``prologue``)."""
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} needs a floating-point array, got {x.dtype}")
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(*window[:6])
    out_h, out_w = _output_size(*window[6:])
    n, h, w, c = x.shape
    y = np.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = np.empty((n, out_h, out_w, c), dtype=np.int32)
    if y.size:
        for_size(_maxpool_forward_kernel, x.size)(x.reshape(-1, c), h, w, y, argmax, kh, kw, sh, sw, pad_top,
                                                  pad_left, out_h, out_w, mean, inv_std, gamma, beta, prologue,
                                                  x.dtype.type(0))
    return y, argmax


def batchnorm_maxpool_forward_train(x, gamma, beta, epsilon, relu, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Batch norm (training) of the (N, H, W, C) images ``x``, then max pooling, without storing the normalised images.

    Twin of :func:`nnscratch.kernels.reference.batchnorm_maxpool_forward_train`:
    returns ``y, argmax, mean, var, inv_std``: the pooled (N, out_h, out_w, C)
    output, its argmax as :func:`maxpool2d_forward` gives it, and the batch
    statistics. The statistics come from :func:`batch_statistics`; the
    pooling kernel then normalises each value it reads (and applies the ReLU
    with ``relu``) with the operations of the batch-norm kernel, so the result
    is bit for bit the two kernels one after the other, and the full-size
    normalised array is never written.
    """
    x = _image(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"batchnorm_maxpool_forward_train needs a floating-point array, got {x.dtype}")
    c = x.shape[-1]
    mean, var, inv_std = batch_statistics(x.reshape(-1, c), epsilon)
    gamma, beta = (channel_vector(np.asarray(v, dtype=x.dtype).reshape(-1), c, x.dtype) for v in (gamma, beta))
    y, argmax = _pool(x, (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w), mean, inv_std, gamma, beta,
                      2 if relu else 1, "batchnorm_maxpool_forward_train")
    return y, argmax, mean, var, inv_std


@njit(parallel=True, cache=True)
def _maxpool_backward_kernel(grad_y, argmax, dx, kh, kw, sh, sw, pad_top, pad_left):
    n, h, w, c = dx.shape
    out_h = grad_y.shape[1]
    out_w = grad_y.shape[2]
    gf = grad_y.reshape(grad_y.size)
    af = argmax.reshape(argmax.size)
    cells = kh * kw
    for b in prange(n):              # windows may overlap inside one image
        img = dx[b]
        for oy in range(out_h):
            for ox in range(out_w):
                o = ((b * out_h + oy) * out_w + ox) * c
                g_run = gf[o:o + c]
                a_run = af[o:o + c]
                for q in range(c):
                    a = a_run[q]
                    if a < 0 or a >= cells:
                        continue
                    i = a // kw
                    r = oy * sh - pad_top + i
                    col = ox * sw - pad_left + (a - i * kw)
                    if 0 <= r < h and 0 <= col < w:  # else the winner was padding
                        img[r, col, q] += g_run[q]


@njit(parallel=True, cache=True)
def _maxpool_backward_disjoint(grad_y, argmax, dx, kh, kw, sh, sw, pad_top, pad_left, y, relu):
    """Windows that do not overlap (strides >= pool size, the usual 2x2 / 2): each input
    cell has at most one window, so every cell of a window is *written* in one vector
    sweep over the channels (``0 + g`` where it won, 0 elsewhere) instead of scattered.
    With ``relu``, also the backward of a ReLU before the pooling, from the pooled ``y``
    (its output at the winner): ``g if y > 0 else g * 0``, as ``_relu_backward``.
    Whole-array indexing, no views, as in the forward kernel."""
    n, h, w, c = dx.shape
    out_h = grad_y.shape[1]
    out_w = grad_y.shape[2]
    zero = dx.dtype.type(0)
    for t in prange(n * out_h):
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
                    cell = i * kw + j
                    if relu:
                        for q in range(c):
                            g = zero + grad_y[b, oy, ox, q] if argmax[b, oy, ox, q] == cell else zero
                            dx[b, r, col, q] = g if y[b, oy, ox, q] > 0 else g * 0
                    else:
                        for q in range(c):   # as += into zeros: 0 + g where the cell won
                            dx[b, r, col, q] = zero + grad_y[b, oy, ox, q] if argmax[b, oy, ox, q] == cell else zero


def maxpool2d_backward(grad_y, argmax, x_shape, kh, kw, sh, sw, pad_top, pad_left, relu_output=None):
    """Route each output gradient to the input cell that won its window.

    Twin of :func:`nnscratch.kernels.reference.maxpool2d_backward`; overlapping
    windows add up. Returns ``dx`` of shape ``x_shape``, dtype of ``grad_y``.
    With ``relu_output`` (the pooled ``y`` of ReLU outputs) the gradient also
    goes back through that ReLU, in the same sweep where the windows do not
    overlap: bit for bit ``activation_backward(dx, h, "relu")``, one pass over
    the input-sized arrays instead of three.
    """
    n, h, w, c = _image_shape(x_shape)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    grad_y = _image(grad_y)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    if argmax.shape != grad_y.shape:
        raise ValueError(f"argmax shape {argmax.shape} differs from grad_y shape {grad_y.shape}")
    if grad_y.shape[0] != n or grad_y.shape[3] != c:
        raise ValueError(f"grad_y shape {grad_y.shape} does not match x_shape {(n, h, w, c)}")
    relu = relu_output is not None
    if relu:
        relu_output = np.ascontiguousarray(relu_output)
        if relu_output.shape != grad_y.shape:
            raise ValueError(f"relu_output shape {relu_output.shape} differs from grad_y shape {grad_y.shape}")
    disjoint = sh >= kh and sw >= kw
    # windows that tile the image from its corner (2x2 / 2, no padding before):
    # the disjoint kernel writes every cell they cover, so only the rows and
    # columns past the last window need zeros, not the whole of dx (a memset of
    # 5.5 MB for the simple CNN's first pooling, 0.1 ms of its 6 ms step)
    tiled = disjoint and (sh, sw) == (kh, kw) and pad_top == pad_left == 0 and grad_y.size > 0
    dx = np.empty((n, h, w, c), dtype=grad_y.dtype) if tiled else np.zeros((n, h, w, c), dtype=grad_y.dtype)
    if tiled:
        dx[:, grad_y.shape[1] * sh:] = 0
        dx[:, :, grad_y.shape[2] * sw:] = 0
    if grad_y.size and dx.size and disjoint:
        for_size(_maxpool_backward_disjoint, dx.size)(grad_y, argmax, dx, kh, kw, sh, sw, pad_top, pad_left,
                                                      relu_output if relu else grad_y, relu)
    elif grad_y.size and dx.size:
        for_size(_maxpool_backward_kernel, dx.size)(grad_y, argmax, dx, kh, kw, sh, sw, pad_top, pad_left)
        if relu:  # overlapping windows: the mask [h > 0] scattered as the reference does
            won = np.zeros((n, h, w, c), dtype=dx.dtype)
            positive = (relu_output > 0).astype(dx.dtype)
            for_size(_maxpool_backward_kernel, dx.size)(positive, argmax, won, kh, kw, sh, sw, pad_top, pad_left)
            dx = dx * (won > 0)
    return dx


# ---------------------------------------------------------------------------
# convolution + max pooling, fused (training: a ReLU conv layer and its pooling)
#
# The blocks of _conv_forward_blocks, each pooled right after its product,
# bias and activation, from a per-worker buffer that stays in cache; the
# full-size convolution output is never written. The simple CNN's first layer
# writes 5.5 MB less and the pooling reads 5.5 MB less per step.
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _conv_pool_blocks(x, kernel_matrix, zs, cols, blocks, workers, kept, kh, kw, sh, sw, pad_top, pad_left,
                      out_h, out_w, bias, activation, y, argmax, pool, none, zero):
    """``_conv_forward_blocks`` into worker ``w``'s rows of ``zs``, each block then pooled into ``y``
    (:func:`_pool_output_row` without a prologue: ``none`` stands for its unread arrays)."""
    n = x.shape[0]
    rows = out_h * out_w
    block_rows = zs.shape[0] // workers
    pkh, pkw, psh, psw, ppad_top, ppad_left, pout_h, pout_w = pool
    for worker in prange(workers):
        w = np.int64(worker)         # as in the serial twin (rule 15)
        cw = 0 if kept else w
        r0 = w * block_rows
        for blk in range(w, blocks, workers):
            start, stop = block_bounds(blk, blocks, n)
            c0 = start * rows if kept else 0
            for b in range(start, stop):
                _im2col_image(x, b, cols, cw, c0 + (b - start) * rows, kh, kw, sh, sw, pad_top, pad_left,
                              out_h, out_w)
            m = (stop - start) * rows
            _block_forward_product(cols, cw, c0, m, kernel_matrix, zs, r0)
            _bias_activation_rows(zs, r0, r0 + m, bias, activation)
            for b in range(start, stop):  # pool each image while its rows are in cache
                for oy in range(pout_h):
                    _pool_output_row(zs, r0 + (b - start) * rows, out_h, out_w, y, argmax, b, oy, pkh, pkw, psh,
                                     psw, ppad_top, ppad_left, pout_w, none, none, none, none, 0, zero)


def conv2d_maxpool_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, pool, bias=None,
                           activation="linear", cols_out=None):
    """``maxpool2d_forward(conv2d_forward(...), *pool)``, each block of images pooled while in cache.

    Twin of :func:`reference.conv2d_maxpool_forward`, and bit for bit the two
    fast kernels one after the other: the blocks, their products and the
    comparisons are theirs. A column-major ``cols_out`` (the one-product path
    of :func:`conv2d_forward`) is computed by the two kernels one after the other.
    """
    if activation not in _BIAS_ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    if len(pool) != 8:
        raise ValueError(f"pool must be (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w), got {pool!r}")
    x = _image(x)
    kh, kw, sh, sw, pad_top, pad_left = _window_geometry(kh, kw, sh, sw, pad_top, pad_left)
    out_h, out_w = _output_size(out_h, out_w)
    pool = (*_window_geometry(*pool[:6]), *_output_size(*pool[6:]))
    n, _, _, c = x.shape
    f = kernel.shape[-1]
    rows, k = out_h * out_w, kh * kw * c
    kept = cols_out is not None
    if kept:
        _check_cols(cols_out, n * rows, k, x.dtype, "cols_out")
    if _column_major(cols_out) or n * rows * f == 0:
        z = conv2d_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, bias=bias,
                           activation=activation, cols_out=cols_out)
        return maxpool2d_forward(z.reshape(n, out_h, out_w, f), *pool)
    kernel_matrix = np.ascontiguousarray(kernel.reshape(-1, f), dtype=x.dtype)
    y = np.empty((n, pool[6], pool[7], f), dtype=x.dtype)
    argmax = np.empty((n, pool[6], pool[7], f), dtype=np.int32)
    blocks, largest, workers = _conv_blocks(n, rows * k * x.itemsize)
    cols = cols_out.reshape(1, n * rows, k) if kept else scratch("cols", (workers, largest * rows, k), x.dtype)
    zs = scratch("conv_pool_rows", (workers * largest * rows, f), x.dtype)
    bias, code = _bias_and_code(bias, activation, f, x.dtype)
    with one_blas_thread():
        _conv_pool_blocks(x, kernel_matrix, zs, cols, blocks, workers, kept, kh, kw, sh, sw, pad_top, pad_left,
                          out_h, out_w, bias, code, y, argmax, pool, np.zeros(f, dtype=x.dtype), x.dtype.type(0))
    return y, argmax


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
