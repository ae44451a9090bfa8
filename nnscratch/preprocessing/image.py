"""Random affine augmentation of NHWC image batches, like Keras's ``ImageDataGenerator``.

Every image gets its own random rotation, zoom and shift, drawn in NumPy from
the generator's own :class:`numpy.random.Generator`, turned into one affine
matrix per image by :func:`affine_matrices`, and applied in one call to the
active image kernel (``nnscratch.kernels.image_backend().affine_transform_batch``),
with bilinear interpolation.

The matrices follow Keras's ``apply_affine_transform`` (the scipy version used
by ``keras.preprocessing.image`` and ``keras.src.legacy``): about the image
centre ``((H-1)/2, (W-1)/2)``, an output pixel ``p`` reads the input at
``centre + R(theta) @ (Z @ (p - centre) + t)``, with ``t = (tx, ty)`` in
pixels and ``Z = diag(zx, zy)`` in Keras's (x = column, y = row) frame.
A positive ``theta`` turns the picture counter-clockwise (``theta=90`` on a
square image is ``np.rot90``), and ``zx, zy > 1`` zoom *out*.
Two documented differences from Keras's own code, which only matter for
non-square images or unequal ranges: Keras centres columns at ``(H-1)/2``,
and its ``get_random_transform`` feeds ``height_shift_range`` into the
horizontal shift ``tx``; here the centre is ``((H-1)/2, (W-1)/2)``,
``width_shift_range`` moves images sideways and ``height_shift_range``
moves them up and down.
"""

import numbers

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx
from nnscratch.kernels.image_reference import FILL_MODES
from nnscratch.preprocessing.flow import NumpyArrayIterator
from nnscratch.rng import generator_from_seed

__all__ = ["ImageDataGenerator", "affine_matrices", "apply_affine_transform"]


def affine_matrices(height, width, theta=0.0, tx=0.0, ty=0.0, zx=1.0, zy=1.0):
    """Keras's rotation-shift-zoom matrices, in the kernels' (row, col) convention.

    Parameters
    ----------
    height, width : int
        Image size in pixels (rotation and zoom are about the image centre).
    theta : float or array_like, shape (N,)
        Rotation in degrees; positive is counter-clockwise on screen.
    tx, ty : float or array_like, shape (N,)
        Shift in pixels along columns (x) and rows (y). The output pixel
        ``(r, c)`` reads the input at ``(r + ty, c + tx)``, so the picture
        moves left by ``tx`` and up by ``ty``.
    zx, zy : float or array_like, shape (N,)
        Zoom factors along columns and rows (Keras's ``zx``, ``zy``).

    Returns
    -------
    ndarray, shape (N, 2, 3), float64
        Maps from output ``(row, col)`` to input ``(row, col)`` (N is 1 for scalars).
    """
    theta, tx, ty, zx, zy = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (theta, tx, ty, zx, zy)))
    cos, sin = np.cos(np.deg2rad(theta)), np.sin(np.deg2rad(theta))
    centre_r, centre_c = (height - 1) / 2.0, (width - 1) / 2.0
    m = np.empty(theta.shape + (2, 3))
    # Linear part: Keras's R @ Z, written in (row, col) instead of (x, y).
    m[:, 0, 0], m[:, 0, 1] = cos * zy, sin * zx
    m[:, 1, 0], m[:, 1, 1] = -sin * zy, cos * zx
    # Offset: keep the centre in place, then add the rotated shift.
    m[:, 0, 2] = centre_r - (m[:, 0, 0] * centre_r + m[:, 0, 1] * centre_c) + (cos * ty + sin * tx)
    m[:, 1, 2] = centre_c - (m[:, 1, 0] * centre_r + m[:, 1, 1] * centre_c) + (cos * tx - sin * ty)
    return m


def _check_images(x, where):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{where} expects a 4-D NHWC batch (N, H, W, C), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(floatx())
    return x


def _fill_code(fill_mode):
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {tuple(FILL_MODES)}, got {fill_mode!r}")
    return FILL_MODES[fill_mode]


def apply_affine_transform(x, theta=0.0, tx=0.0, ty=0.0, zx=1.0, zy=1.0,
                           fill_mode="nearest", cval=0.0):
    """Apply given rotations, shifts and zooms to a batch (see :func:`affine_matrices`).

    Parameters
    ----------
    x : array_like, shape (N, H, W, C)
        Images; integer images are converted to ``floatx()``.
    theta, tx, ty, zx, zy : float or array_like, shape (N,)
        Transform parameters, one value for all images or one per image.
    fill_mode : {"nearest", "constant"}
    cval : float
        Fill value for ``fill_mode="constant"``.

    Returns
    -------
    ndarray, shape (N, H, W, C), float32 or float64
    """
    x = _check_images(x, "apply_affine_transform")
    m = affine_matrices(x.shape[1], x.shape[2], theta, tx, ty, zx, zy)
    if m.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"transform parameters must be scalars or have one value per image "
                         f"({x.shape[0]}), got {m.shape[0]} values")
    m = np.broadcast_to(m, (x.shape[0], 2, 3))
    return kernels.image_backend().affine_transform_batch(x, m, _fill_code(fill_mode), float(cval))


def _non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _zoom_bounds(zoom_range):
    if isinstance(zoom_range, numbers.Real) and not isinstance(zoom_range, bool):
        z = _non_negative("zoom_range", zoom_range)
        return 1.0 - z, 1.0 + z
    try:
        lo, hi = (float(v) for v in zoom_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"zoom_range must be a number z >= 0 (meaning [1-z, 1+z]) or a pair "
            f"[lo, hi], got {zoom_range!r}") from None
    if not 0 <= lo <= hi:
        raise ValueError(f"zoom_range [lo, hi] must satisfy 0 <= lo <= hi, got {zoom_range!r}")
    return lo, hi


class ImageDataGenerator:
    """Random rotations, zooms and shifts of image batches (Keras's name and arguments).

    Parameters
    ----------
    rotation_range : float
        Degrees; each image turns by an angle uniform in ``[-r, r)``.
    zoom_range : float or [lo, hi]
        A float ``z`` means ``[1 - z, 1 + z]``; the x and y zoom factors are
        drawn independently and uniformly from the range (values > 1 zoom out).
    width_shift_range, height_shift_range : float
        Below 1: a fraction of the width (height); the shift is uniform in
        ``[-f * W, f * W)`` pixels. From 1 up: a number of pixels.
    fill_mode : {"nearest", "constant"}
        What fills pixels read from outside the image (Keras's default is "nearest").
    cval : float
        The fill value for ``fill_mode="constant"``.
    seed : int or None
        Seeds this generator's own random stream; ``None`` draws one from
        :func:`nnscratch.rng.new_generator` (reproducible after ``set_random_seed``).

    Notes
    -----
    All ranges zero gives the identity, exactly. See the module docstring for
    the geometry and the two places where it deliberately differs from Keras.
    """

    def __init__(self, rotation_range=0, zoom_range=0.0, width_shift_range=0.0,
                 height_shift_range=0.0, fill_mode="nearest", cval=0.0, seed=None):
        self.rotation_range = _non_negative("rotation_range", rotation_range)
        self.zoom_range = _zoom_bounds(zoom_range)
        self.width_shift_range = _non_negative("width_shift_range", width_shift_range)
        self.height_shift_range = _non_negative("height_shift_range", height_shift_range)
        self._fill_code = _fill_code(fill_mode)
        self.fill_mode = fill_mode
        if isinstance(cval, bool) or not isinstance(cval, numbers.Real):
            raise ValueError(f"cval must be a number, got {cval!r}")
        self.cval = float(cval)
        self.rng = generator_from_seed(seed)

    def random_matrices(self, n, height, width, rng=None):
        """Draw ``n`` random transforms for ``height x width`` images.

        Returns
        -------
        ndarray, shape (n, 2, 3)
            Matrices for the kernels (see :func:`affine_matrices`).
        """
        rng = self.rng if rng is None else rng

        def uniform(limit):
            return rng.uniform(-limit, limit, n) if limit else np.zeros(n)

        def shift(fraction, size):
            return uniform(fraction) * (size if fraction < 1 else 1)

        theta = uniform(self.rotation_range)
        tx = shift(self.width_shift_range, width)
        ty = shift(self.height_shift_range, height)
        lo, hi = self.zoom_range
        if lo == 1 and hi == 1:
            zx = zy = np.ones(n)
        else:
            zx, zy = rng.uniform(lo, hi, (2, n))
        return affine_matrices(height, width, theta, tx, ty, zx, zy)

    def transform(self, x, rng=None):
        """Return a randomly transformed copy of a batch, one transform per image.

        Parameters
        ----------
        x : array_like, shape (N, H, W, C)
            Images; float32/float64 keep their dtype, others become ``floatx()``.
        rng : numpy.random.Generator, optional
            Where to draw the transforms from (default: this generator's stream).

        Returns
        -------
        ndarray, shape (N, H, W, C)
        """
        x = _check_images(x, "ImageDataGenerator.transform")
        m = self.random_matrices(x.shape[0], x.shape[1], x.shape[2], rng)
        return kernels.image_backend().affine_transform_batch(x, m, self._fill_code, self.cval)

    def random_transform(self, x):
        """Transform one image of shape (H, W, C), as Keras's method of that name."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"random_transform expects one (H, W, C) image, got shape {x.shape}")
        return self.transform(x[None])[0]

    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None):
        """Return a Sequence of augmented batches ``(x_batch, y_batch)`` over ``x, y``.

        With ``sample_weight`` (one weight a sample) the batches are
        ``(x_batch, y_batch, w_batch)``, as Keras's. See
        :class:`nnscratch.preprocessing.flow.NumpyArrayIterator`.
        """
        return NumpyArrayIterator(self, x, y, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed)
