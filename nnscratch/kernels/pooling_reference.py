"""Pooling and resampling kernels beyond max pooling, NumPy reference twin (written to be read).

Average pooling, the two global poolings (average and max over the whole
image), nearest-neighbour and bilinear upsampling, each a forward and a
backward kernel. Their Numba twins with the same names and signatures live in
:mod:`nnscratch.kernels.pooling_fast` (chosen with
:func:`nnscratch.kernels.pooling_backend`), and give the same bits: both add
the same numbers in the same order and divide by the same counts.

Images are NHWC, ``x[n, row, col, channel]``. The sliding-window arguments
are those of :mod:`nnscratch.kernels.reference`: window ``kh x kw``, strides
``sh, sw``, ``pad_top, pad_left`` padding cells before the image, output
``out_h x out_w``; output ``(oy, ox)`` looks at input rows ``oy*sh - pad_top
+ i`` (``i < kh``) and columns ``ox*sw - pad_left + j`` (``j < kw``).

Padding cells are not numbers of the average: a window that hangs over the
edge (``"same"`` padding) averages only the input cells it covers, as Keras
and TensorFlow do.
"""

import numpy as np

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
# argument checks, shared by both twins
# ---------------------------------------------------------------------------

def _image(x, name="x"):
    """``x`` as a C-contiguous float32 or float64 NHWC array (no copy when it already is)."""
    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must be an NHWC array (N, H, W, C), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    return x


def _image_shape(shape):
    shape = tuple(int(v) for v in shape)
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"x_shape must be an NHWC shape (N, H, W, C), got {shape}")
    return shape


def check_pool_window(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Check a window geometry on an ``h x w`` image; return it as 8 Python ints.

    Every window must hold at least one input cell, so that its average has
    something to divide by: the first window must reach row and column 0
    (``pad_top < kh``, ``pad_left < kw``), the last must start inside the image.
    The layers' ``"valid"`` and ``"same"`` rules always satisfy this.
    """
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w = (
        int(v) for v in (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w))
    if kh < 1 or kw < 1 or sh < 1 or sw < 1:
        raise ValueError(f"window size and strides must be >= 1, got {(kh, kw)} and {(sh, sw)}")
    if pad_top < 0 or pad_left < 0 or out_h < 0 or out_w < 0:
        raise ValueError(f"paddings and output size must be >= 0, got {(pad_top, pad_left)} and {(out_h, out_w)}")
    if out_h and out_w and (pad_top >= kh or pad_left >= kw or (out_h - 1) * sh - pad_top >= h
                            or (out_w - 1) * sw - pad_left >= w):
        raise ValueError(f"some {kh}x{kw} window (strides {(sh, sw)}, padding before {(pad_top, pad_left)}, "
                         f"output {out_h}x{out_w}) holds no cell of the {h}x{w} image")
    return kh, kw, sh, sw, pad_top, pad_left, out_h, out_w


def _check_global_grad(grad_y, argmax, x_shape):
    """``grad_y`` (and ``argmax`` unless None) as C-contiguous (N, C) arrays for an ``x_shape`` input."""
    n, h, w, c = x_shape
    grad_y = np.ascontiguousarray(grad_y)
    if grad_y.shape != (n, c) or grad_y.dtype not in (np.float32, np.float64):
        raise ValueError(f"grad_y must be a float32 or float64 (N, C) = {(n, c)} array, got "
                         f"{grad_y.dtype} {grad_y.shape}")
    if argmax is None:
        return grad_y
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    if argmax.shape != (n, c):
        raise ValueError(f"argmax must be an (N, C) = {(n, c)} array, got {argmax.shape}")
    if argmax.size and (argmax.min() < 0 or argmax.max() >= h * w):
        raise ValueError(f"argmax must index the {h * w} pixels, got values in [{argmax.min()}, {argmax.max()}]")
    return grad_y, argmax


def _check_grad(grad_y, x_shape, out_h, out_w):
    if grad_y.shape != (x_shape[0], out_h, out_w, x_shape[3]):
        raise ValueError(f"grad_y shape {grad_y.shape} does not match x_shape {x_shape} and output "
                         f"{out_h}x{out_w}")


# ---------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------

def _window_slices(i, j, sh, sw, out_h, out_w):
    """The cells at offset ``(i, j)`` of every window, in the padded image: rows ``i, i+sh, ...``."""
    return slice(i, i + sh * out_h, sh), slice(j, j + sw * out_w, sw)


def _pad_zeros(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """``x`` with zero rows and columns around it so that every window lies inside."""
    n, h, w, c = x.shape
    pad_bottom = max(0, (out_h - 1) * sh + kh - h - pad_top)
    pad_right = max(0, (out_w - 1) * sw + kw - w - pad_left)
    return np.pad(x, ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right), (0, 0)))


def avgpool2d_counts(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """How many input cells each window covers: ``(out_h, out_w)`` int64.

    ``count[oy, ox] = rows(oy) * cols(ox)`` with ``rows(oy)`` the number of
    rows ``oy*sh - pad_top + i`` (``i < kh``) inside ``0 .. h-1``: ``kh * kw``
    for a window inside the image, fewer for one over the ``"same"`` padding.
    """
    start = np.arange(out_h) * sh - pad_top
    rows = np.minimum(start + kh, h) - np.maximum(start, 0)
    start = np.arange(out_w) * sw - pad_left
    cols = np.minimum(start + kw, w) - np.maximum(start, 0)
    return rows[:, None] * cols[None, :]


def avgpool2d_forward(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    r"""Mean of each window over the input cells it covers, per channel.

    .. math:: y_{n,o_y,o_x,c} = \frac{1}{|W_{o_y o_x}|} \sum_{(r, s) \in W_{o_y o_x}} x_{n,r,s,c}

    where :math:`W_{o_y o_x}` is the set of *input* cells of the window
    (padding excluded), of size ``avgpool2d_counts(...)[oy, ox]``.

    Parameters
    ----------
    x : ndarray (N, H, W, C), float32 or float64
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w : int
        The window geometry (see the module docstring).

    Returns
    -------
    y : ndarray (N, out_h, out_w, C), dtype of ``x``
    """
    x = _image(x)
    n, h, w, c = x.shape
    geometry = check_pool_window(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w = geometry
    xp = _pad_zeros(x, *geometry)                      # padding adds 0 to the sums
    total = np.zeros((n, out_h, out_w, c), dtype=x.dtype)
    for i in range(kh):                                # window cells in row-major order
        for j in range(kw):
            rows, cols = _window_slices(i, j, sh, sw, out_h, out_w)
            total += xp[:, rows, cols, :]
    counts = avgpool2d_counts(h, w, *geometry).astype(x.dtype)
    return total / counts[None, :, :, None]


def avgpool2d_backward(grad_y, x_shape, kh, kw, sh, sw, pad_top, pad_left):
    r"""The adjoint of :func:`avgpool2d_forward`: spread each window's gradient evenly over its input cells.

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} = \sum_{\text{windows } (o_y, o_x) \ni (r, s)}
              \frac{g_{n,o_y,o_x,c}}{|W_{o_y o_x}|}

    Overlapping windows (strides smaller than the window) add up; padding
    cells receive nothing (they are cropped away).

    Parameters
    ----------
    grad_y : ndarray (N, out_h, out_w, C), float32 or float64
    x_shape : tuple (N, H, W, C), the forward input's shape

    Returns
    -------
    dx : ndarray of ``x_shape``, dtype of ``grad_y``
    """
    grad_y = _image(grad_y, "grad_y")
    n, h, w, c = x_shape = _image_shape(x_shape)
    out_h, out_w = grad_y.shape[1:3]
    _check_grad(grad_y, x_shape, out_h, out_w)
    geometry = check_pool_window(h, w, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    kh, kw, sh, sw, pad_top, pad_left, out_h, out_w = geometry
    counts = avgpool2d_counts(h, w, *geometry).astype(grad_y.dtype)
    share = grad_y / counts[None, :, :, None]          # what each covered cell receives from its window
    dxp = _pad_zeros(np.zeros(x_shape, dtype=grad_y.dtype), *geometry)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_slices(i, j, sh, sw, out_h, out_w)
            dxp[:, rows, cols, :] += share             # one window per (i, j): no collisions
    return dxp[:, pad_top:pad_top + h, pad_left:pad_left + w, :].copy()


# ---------------------------------------------------------------------------
# global pooling
# ---------------------------------------------------------------------------

def global_avgpool2d_forward(x):
    r"""Mean over all pixels, per sample and channel: :math:`y_{n,c} = \frac{1}{HW}\sum_{r,s} x_{n,r,s,c}`.

    The sum is accumulated in float64, pixel after pixel in row-major order,
    then divided by ``H * W`` and rounded to the dtype of ``x``.

    Returns
    -------
    y : ndarray (N, C), dtype of ``x``
    """
    x = _image(x)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"global average pooling needs at least one pixel, got shape {x.shape}")
    pixels = x.reshape(n, h * w, c)
    total = np.zeros((n, c), dtype=np.float64)
    for p in range(h * w):                           # one pixel at a time, as the Numba twin adds them
        total += pixels[:, p, :]
    return (total / (h * w)).astype(x.dtype)


def global_avgpool2d_backward(grad_y, x_shape):
    r""":math:`\partial L/\partial x_{n,r,s,c} = g_{n,c} / (HW)` at every pixel.

    Returns
    -------
    dx : ndarray of ``x_shape`` (N, H, W, C), dtype of ``grad_y``
    """
    n, h, w, c = x_shape = _image_shape(x_shape)
    grad_y = _check_global_grad(grad_y, None, x_shape)
    share = grad_y / grad_y.dtype.type(h * w)
    return np.broadcast_to(share[:, None, None, :], x_shape).copy()


def global_maxpool2d_forward(x):
    """Maximum over all pixels, per sample and channel; also where it is.

    Tie rule, as :func:`nnscratch.kernels.reference.maxpool2d_forward`: the
    first maximum in row-major pixel order wins (``np.argmax``; a NaN wins
    over numbers).

    Returns
    -------
    y : ndarray (N, C), dtype of ``x``
    argmax : ndarray (N, C) of int32
        The winning pixel's index ``row * W + col``.
    """
    x = _image(x)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"global max pooling needs at least one pixel, got shape {x.shape}")
    pixels = x.reshape(n, h * w, c)
    argmax = pixels.argmax(axis=1).astype(np.int32)
    y = np.take_along_axis(pixels, argmax[:, None, :].astype(np.intp), axis=1)[:, 0, :]
    return y, argmax


def global_maxpool2d_backward(grad_y, argmax, x_shape):
    r"""Send each ``g[n, c]`` to the pixel that won, ``argmax[n, c]``; every other pixel gets 0.

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} = g_{n,c}\,[\,rW + s = \text{argmax}_{n,c}\,]

    Returns
    -------
    dx : ndarray of ``x_shape`` (N, H, W, C), dtype of ``grad_y``
    """
    n, h, w, c = x_shape = _image_shape(x_shape)
    grad_y, argmax = _check_global_grad(grad_y, argmax, x_shape)
    dx = np.zeros((n, h * w, c), dtype=grad_y.dtype)
    np.put_along_axis(dx, argmax[:, None, :].astype(np.intp), grad_y[:, None, :], axis=1)
    return dx.reshape(x_shape)


# ---------------------------------------------------------------------------
# nearest-neighbour upsampling
# ---------------------------------------------------------------------------

def upsample_nearest2d_forward(x, size_h, size_w):
    """Repeat every pixel ``size_h`` times down and ``size_w`` times across.

    ``y[n, r, s, c] = x[n, r // size_h, s // size_w, c]``, shape ``(N, H*size_h, W*size_w, C)``.
    """
    x = _image(x)
    size_h, size_w = _sizes(size_h, size_w)
    return x.repeat(size_h, axis=1).repeat(size_w, axis=2)


def upsample_nearest2d_backward(grad_y, size_h, size_w):
    r"""The adjoint: each input pixel collects the gradient of its ``size_h x size_w`` copies.

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} = \sum_{i < a,\ j < b} g_{n,\ ra + i,\ sb + j,\ c}

    added in row-major ``(i, j)`` order. Returns ``(N, H, W, C)``, dtype of ``grad_y``.
    """
    grad_y = _image(grad_y, "grad_y")
    size_h, size_w = _sizes(size_h, size_w)
    n, hh, ww, c = grad_y.shape
    if hh % size_h or ww % size_w:
        raise ValueError(f"grad_y shape {grad_y.shape} is not a multiple of the size {(size_h, size_w)}")
    dx = np.zeros((n, hh // size_h, ww // size_w, c), dtype=grad_y.dtype)
    for i in range(size_h):
        for j in range(size_w):
            dx += grad_y[:, i::size_h, j::size_w, :]
    return dx


def _sizes(size_h, size_w):
    size_h, size_w = int(size_h), int(size_w)
    if size_h < 1 or size_w < 1:
        raise ValueError(f"upsampling sizes must be >= 1, got {(size_h, size_w)}")
    return size_h, size_w


# ---------------------------------------------------------------------------
# bilinear upsampling
# ---------------------------------------------------------------------------

def bilinear_source(in_size, size, dtype):
    r"""Where each output cell of an axis upsampled ``size`` times reads: ``(lower, upper, lerp, keep)``.

    Half-pixel centres, as Keras 3 upsamples bilinearly with TensorFlow
    (``tf.image.resize``): output cell ``r`` (of ``in_size * size``) sits at
    input coordinate

    .. math:: u_r = \frac{r + 1/2}{\text{size}} - \frac{1}{2}, \quad\text{clamped to } [0,\ \text{in\_size} - 1],

    between the cells ``lower = floor(u)`` and ``upper = min(lower + 1,
    in_size - 1)``, at the fraction ``lerp = u - lower`` from ``lower``
    (``keep = 1 - lerp``). At the ends ``u`` reaches the edge cell's centre or
    beyond: the first and the last ``(size + 1) // 2`` outputs equal the edge cells.

    Returns
    -------
    lower, upper : ndarray (in_size * size,) of int64
    lerp, keep : ndarray (in_size * size,) of ``dtype``
    """
    in_size, size = int(in_size), int(size)
    u = (np.arange(in_size * size) + 0.5) / size - 0.5
    u = np.clip(u, 0.0, in_size - 1)
    lower = np.floor(u).astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    lerp = (u - lower).astype(dtype)
    return lower, upper, lerp, (1 - lerp).astype(dtype)


def upsample_bilinear2d_forward(x, size_h, size_w):
    r"""Upsample ``size_h`` times down and ``size_w`` times across by bilinear interpolation.

    With the sources of :func:`bilinear_source` along the rows (``lo, hi,
    wy``) and the columns (``left, right, wx``), as TensorFlow computes it,
    columns first:

    .. math::
        t_{n,i,s,c} &= x_{n,i,\mathrm{left}_s,c} + (x_{n,i,\mathrm{right}_s,c} - x_{n,i,\mathrm{left}_s,c})\, w^x_s \\
        y_{n,r,s,c} &= t_{n,\mathrm{lo}_r,s,c} + (t_{n,\mathrm{hi}_r,s,c} - t_{n,\mathrm{lo}_r,s,c})\, w^y_r

    Returns ``(N, H*size_h, W*size_w, C)``, dtype of ``x``.
    """
    x = _image(x)
    size_h, size_w = _sizes(size_h, size_w)
    n, h, w, c = x.shape
    lo, hi, wy, _ = bilinear_source(h, size_h, x.dtype)
    left, right, wx, _ = bilinear_source(w, size_w, x.dtype)
    t = x[:, :, left] + (x[:, :, right] - x[:, :, left]) * wx[None, None, :, None]   # (N, H, bW, C)
    return t[:, lo] + (t[:, hi] - t[:, lo]) * wy[None, :, None, None]


def upsample_bilinear2d_backward(grad_y, size_h, size_w):
    r"""The adjoint of :func:`upsample_bilinear2d_forward`: each output sends its gradient back to its sources.

    Each step of the forward pass is ``keep * a + lerp * b``, so, rows first:

    .. math::
        \frac{\partial L}{\partial t_{n,\mathrm{lo}_r,s,c}} \mathrel{+}= (1 - w^y_r)\, g_{n,r,s,c}, \qquad
        \frac{\partial L}{\partial t_{n,\mathrm{hi}_r,s,c}} \mathrel{+}= w^y_r\, g_{n,r,s,c}

    and the same along the columns from ``dL/dt`` to ``dL/dx``. The shares
    are added in the order of the output rows (columns), all the ``lower``
    ones first, then the ``upper`` ones. Where ``lower == upper`` (the last
    cell of an axis) that cell receives both shares.

    Returns ``(N, H, W, C)`` with ``H = grad_y.shape[1] // size_h``, dtype of ``grad_y``.
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
    np.add.at(dt, (slice(None), lo), grad_y * keep_y[None, :, None, None])    # unbuffered: repeated rows add up
    np.add.at(dt, (slice(None), hi), grad_y * wy[None, :, None, None])
    dx = np.zeros((n, h, w, c), dtype=grad_y.dtype)
    np.add.at(dx, (slice(None), slice(None), left), dt * keep_x[None, None, :, None])
    np.add.at(dx, (slice(None), slice(None), right), dt * wx[None, None, :, None])
    return dx
