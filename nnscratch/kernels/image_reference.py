"""Image-augmentation kernels, NumPy reference twin (written to be read).

:func:`affine_transform_batch` resamples a batch of NHWC images through one
affine map per image with bilinear interpolation (``ImageDataGenerator``).
The layers that move pixels (``RandomRotation``, ``RandomZoom``,
``RandomTranslation``) need a backward pass too, so they resample in two
steps: :func:`sampling_plan` says which input pixels each output pixel mixes
and with which weights, :func:`gather_pixels` mixes them (forward) and
:func:`scatter_pixels`, its adjoint, sends a gradient back along the same
weights (backward). The Numba twins with the same names and signatures live
in :mod:`nnscratch.kernels.image_fast`.

Conventions
-----------
``matrices[n]`` maps an *output* pixel ``(row, col)`` to the *input* position
it is read from, exactly like :func:`scipy.ndimage.affine_transform`::

    src_row = m[0, 0] * row + m[0, 1] * col + m[0, 2]
    src_col = m[1, 0] * row + m[1, 1] * col + m[1, 2]

Pixel centres sit at integer coordinates, ``0 .. H-1`` and ``0 .. W-1``.
Positions that fall outside the image are handled by the fill mode:

* ``FILL_NEAREST`` -- the position is clamped to the image, which repeats the
  edge pixels outwards (scipy's and Keras's ``"nearest"``).
* ``FILL_CONSTANT`` -- the output pixel is ``cval`` (scipy's ``"constant"``:
  no interpolation with the outside). A position within ``EDGE_TOLERANCE``
  of the edge still counts as inside, so that rounding in ``cos(90 deg)``
  does not blank a whole border row.

Coordinates and interpolation weights are computed in float64 and the result
is stored in the dtype of ``x`` (float32 or float64).
"""

import numpy as np

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

FILL_NEAREST = 0
FILL_CONSTANT = 1
FILL_MODES = {"nearest": FILL_NEAREST, "constant": FILL_CONSTANT}
EDGE_TOLERANCE = 1e-6


def check_affine_inputs(x, matrices, fill_mode_code):
    """Validate the arguments of ``affine_transform_batch`` (shared by both twins).

    Returns
    -------
    x : ndarray, shape (N, H, W, C), float32 or float64 (C-contiguous)
    matrices : ndarray, shape (N, 2, 3), float64 (C-contiguous)
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"x must be a 4-D NHWC array, got shape {shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] != x.shape[0] or m.shape[1:] not in ((2, 3), (3, 3)):
        raise ValueError(
            f"matrices must have shape ({x.shape[0]}, 2, 3) or ({x.shape[0]}, 3, 3) "
            f"for {x.shape[0]} images, got {m.shape}"
        )
    if fill_mode_code not in (FILL_NEAREST, FILL_CONSTANT):
        raise ValueError(
            f"fill_mode_code must be {FILL_NEAREST} (nearest) or "
            f"{FILL_CONSTANT} (constant), got {fill_mode_code!r}"
        )
    return np.ascontiguousarray(x), np.ascontiguousarray(m[:, :2, :])


def affine_transform_batch(x, matrices, fill_mode_code, cval):
    """Resample each image of ``x`` through its own affine map (bilinear).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64
        The images; not modified.
    matrices : array_like, shape (N, 2, 3) or (N, 3, 3)
        For each image, the map from output ``(row, col)`` to input
        ``(row, col)`` (see the module docstring); a 3x3 matrix's last row is ignored.
    fill_mode_code : int
        ``FILL_NEAREST`` or ``FILL_CONSTANT``.
    cval : float
        The value of output pixels read from outside the image in constant mode.

    Returns
    -------
    ndarray, same shape and dtype as ``x``
    """
    x, m = check_affine_inputs(x, matrices, fill_mode_code)
    n, h, w, _ = x.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64),
                             np.arange(w, dtype=np.float64), indexing="ij")

    # Where each output pixel reads from, shape (N, H, W).
    def coefficient(i, j):
        return m[:, i, j, None, None]

    src_r = coefficient(0, 0) * rows + coefficient(0, 1) * cols + coefficient(0, 2)
    src_c = coefficient(1, 0) * rows + coefficient(1, 1) * cols + coefficient(1, 2)

    outside = None
    if fill_mode_code == FILL_CONSTANT:
        tol = EDGE_TOLERANCE
        outside = ((src_r < -tol) | (src_r > h - 1 + tol)
                   | (src_c < -tol) | (src_c > w - 1 + tol))
    src_r = np.clip(src_r, 0.0, h - 1.0)
    src_c = np.clip(src_c, 0.0, w - 1.0)

    # The four neighbours and the bilinear weights.
    r0 = np.floor(src_r).astype(np.intp)
    c0 = np.floor(src_c).astype(np.intp)
    r1 = np.minimum(r0 + 1, h - 1)
    c1 = np.minimum(c0 + 1, w - 1)
    fr = (src_r - r0)[..., None]  # (N, H, W, 1), broadcasts over channels
    fc = (src_c - c0)[..., None]

    img = np.arange(n)[:, None, None]
    top = x[img, r0, c0] * (1.0 - fc) + x[img, r0, c1] * fc
    bottom = x[img, r1, c0] * (1.0 - fc) + x[img, r1, c1] * fc
    out = (top * (1.0 - fr) + bottom * fr).astype(x.dtype)
    if outside is not None:
        out[outside] = cval
    return out


# ---------------------------------------------------------------- sampling plans (the random image layers)

#: Keras 3's fill modes of the affine image layers, as codes for the kernels.
PLAN_FILL_MODES = {"constant": 0, "nearest": 1, "reflect": 2, "wrap": 3}
#: Keras 3's interpolations: how many neighbours along each axis (nearest 1, bilinear 2).
PLAN_INTERPOLATIONS = {"nearest": 1, "bilinear": 2}


def check_plan_inputs(matrices, height, width, fill_mode, interpolation):
    """Validate the arguments of ``sampling_plan`` (shared by both twins).

    Returns ``(matrices as (N, 2, 3) float64, fill code, neighbours per axis)``.
    """
    if fill_mode not in PLAN_FILL_MODES:
        raise ValueError(f"fill_mode must be one of {tuple(PLAN_FILL_MODES)}, got {fill_mode!r}")
    if interpolation not in PLAN_INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {tuple(PLAN_INTERPOLATIONS)}, got {interpolation!r}")
    if not all(isinstance(size, (int, np.integer)) and size > 0 for size in (height, width)):
        raise ValueError(f"height and width must be positive integers, got {height!r} and {width!r}")
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[1:] not in ((2, 3), (3, 3)):
        raise ValueError(f"matrices must have shape (N, 2, 3) or (N, 3, 3), got {m.shape}")
    return np.ascontiguousarray(m[:, :2, :]), PLAN_FILL_MODES[fill_mode], PLAN_INTERPOLATIONS[interpolation]


def _fix_index(index, size, fill_code):
    """Bring integer pixel indices that fall outside ``0 .. size-1`` back inside, as the fill mode says.

    ``constant`` and ``nearest`` clamp (the constant mode then ignores those
    pixels: :func:`sampling_plan` marks them), ``wrap`` takes the index modulo
    ``size`` (``a b c d | a b c d``), ``reflect`` mirrors about the edge of the
    last pixel (``d c b a | a b c d | d c b a``): modulo ``2 size``, then the
    second half read backwards.
    """
    if fill_code == PLAN_FILL_MODES["wrap"]:
        return index % size
    if fill_code == PLAN_FILL_MODES["reflect"]:
        index = index % (2 * size)
        return np.where(index >= size, 2 * size - 1 - index, index)
    return np.clip(index, 0, size - 1)


def _nodes(position, neighbours):
    """The neighbours of real ``position`` along one axis and their weights: ``[(index, weight), ...]``.

    Nearest: the rounded position (halves to even), weight 1. Bilinear:
    ``floor(position)`` with weight ``1 - f`` and the next pixel with weight
    ``f``, ``f = position - floor(position)``.
    """
    if neighbours == 1:
        return [(np.rint(position).astype(np.int64), np.ones_like(position))]
    lower = np.floor(position)
    upper_weight = position - lower
    lower = lower.astype(np.int64)
    return [(lower, 1.0 - upper_weight), (lower + 1, upper_weight)]


def sampling_plan(matrices, height, width, fill_mode, interpolation):
    """Which input pixels each output pixel of an affine resampling mixes, and with which weights.

    Output pixel ``p = (row, col)`` of image ``n`` reads the input at the real
    position ``(src_row, src_col) = matrices[n] @ (row, col, 1)`` (the module
    docstring's convention) and mixes its neighbours there (1 for nearest, 2 x
    2 for bilinear): ``y[n, p] = sum_k weight[n, p, k] x[n, index[n, p, k]]``,
    where an index is a flat pixel number ``row * width + col`` of the input.
    Each neighbour's index is brought inside the image by the fill mode, one
    integer index at a time (as Keras 3's NumPy, JAX and PyTorch backends):
    so ``reflect`` and ``wrap`` interpolate across the edge with the mirrored
    or wrapped pixels, ``nearest`` with the edge pixel, and ``constant`` marks
    a neighbour outside the image with index -1, which reads the fill value.

    Parameters
    ----------
    matrices : array_like, shape (N, 2, 3) or (N, 3, 3)
        Output ``(row, col)`` to input ``(row, col)``, one map an image.
    height, width : int
        The image size (output and input are the same size).
    fill_mode : {"constant", "nearest", "reflect", "wrap"}
    interpolation : {"nearest", "bilinear"}

    Returns
    -------
    index : ndarray, shape (N, height * width, K), int64
        Flat input pixels (-1: the fill value), ``K`` = 1 (nearest) or 4 (bilinear).
    weight : ndarray, shape (N, height * width, K), float64
        Their weights; they sum to 1 for every output pixel.
    """
    m, fill_code, neighbours = check_plan_inputs(matrices, height, width, fill_mode, interpolation)
    rows, cols = np.divmod(np.arange(height * width, dtype=np.float64), width)   # each output pixel, flat
    src_row = m[:, 0, 0, None] * rows + m[:, 0, 1, None] * cols + m[:, 0, 2, None]    # (N, H*W)
    src_col = m[:, 1, 0, None] * rows + m[:, 1, 1, None] * cols + m[:, 1, 2, None]
    indices, weights = [], []
    for row, row_weight in _nodes(src_row, neighbours):
        for col, col_weight in _nodes(src_col, neighbours):
            flat = _fix_index(row, height, fill_code) * width + _fix_index(col, width, fill_code)
            if fill_code == PLAN_FILL_MODES["constant"]:
                inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
                flat = np.where(inside, flat, -1)
            indices.append(flat)
            weights.append(row_weight * col_weight)
    return np.stack(indices, axis=-1), np.stack(weights, axis=-1)


def _check_plan(plan_index, plan_weight, images, pixels):
    if plan_index.shape != plan_weight.shape or plan_index.ndim != 3 or plan_index.shape[:2] != (images, pixels):
        raise ValueError(f"a sampling plan for {images} images of {pixels} pixels has index and weight of shape "
                         f"({images}, {pixels}, K), got {plan_index.shape} and {plan_weight.shape}")


def gather_pixels(x, plan_index, plan_weight, fill_value):
    r"""Resample images along a :func:`sampling_plan` (forward).

    .. math:: y_{n,p,c} = \sum_k w_{n,p,k}\, x_{n,\,i_{n,p,k},\,c}
       \quad (x_{n,-1,c} := \text{fill\_value}).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64
    plan_index, plan_weight : ndarray, shape (N, H * W, K)
        From :func:`sampling_plan`.
    fill_value : float
        What an index of -1 reads.

    Returns
    -------
    ndarray, shape (N, H, W, C), the dtype of ``x`` (summed in float64)
    """
    n, h, w, c = x.shape
    _check_plan(plan_index, plan_weight, n, h * w)
    pixels = x.reshape(n, h * w, c)
    values = pixels[np.arange(n)[:, None, None], np.maximum(plan_index, 0)]        # (N, H*W, K, C)
    values = np.where(plan_index[..., None] >= 0, values, fill_value)
    y = (plan_weight[..., None] * values).sum(axis=2)
    return y.reshape(x.shape).astype(x.dtype)


def scatter_pixels(grad, plan_index, plan_weight):
    r"""The adjoint of :func:`gather_pixels`: send a gradient back along a sampling plan (backward).

    Every input pixel collects the weighted gradients of the output pixels
    that read it:

    .. math:: \frac{\partial L}{\partial x_{n,q,c}} = \sum_{(p, k):\, i_{n,p,k} = q} w_{n,p,k}\, g_{n,p,c}.

    The fill value is a constant, so indices of -1 send nothing back.
    Returns an array of ``grad``'s shape and dtype (summed in float64).
    """
    n, h, w, c = grad.shape
    _check_plan(plan_index, plan_weight, n, h * w)
    contributions = plan_weight[..., None] * grad.reshape(n, h * w, 1, c)          # (N, H*W, K, C)
    keep = plan_index >= 0
    images = np.broadcast_to(np.arange(n)[:, None, None], plan_index.shape)
    dx = np.zeros((n, h * w, c))
    np.add.at(dx, (images[keep], plan_index[keep]), contributions[keep])
    return dx.reshape(grad.shape).astype(grad.dtype)
