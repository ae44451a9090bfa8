"""Image-augmentation kernels, NumPy reference twin (written to be read).

One kernel, :func:`affine_transform_batch`, resamples a batch of NHWC images
through one affine map per image with bilinear interpolation. Its Numba twin
with the same name and signature lives in :mod:`nnscratch.kernels.image_fast`.

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
