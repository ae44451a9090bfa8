r"""What the random image layers that move pixels share (RandomRotation, RandomZoom, RandomTranslation).

In training, each image gets its own random affine map :math:`A_n` (a
rotation, a zoom, a shift), and output pixel :math:`p` reads the input at
the real position :math:`A_n p`, mixing the pixels around it (bilinear) or
taking the nearest. For fixed draws this is *linear* in the image: a sparse
matrix :math:`S_n` (a few weights a row) times the pixels, plus the fill
value where a neighbour falls outside the image in ``"constant"`` mode:

.. math:: y_n = S_n x_n + b_n, \qquad \frac{\partial L}{\partial x_n} = S_n^{\top} g_n.

So forward asks the image kernels for a *sampling plan* (the indices and
weights of :math:`S_n`, :func:`~nnscratch.kernels.image_reference.sampling_plan`),
keeps it, and gathers the pixels along it; backward scatters the gradient
back along the same plan (the adjoint, ``scatter_pixels``). Inference is the
identity, as Keras's.

The maps are Keras 3's (``BaseImagePreprocessingLayer._compute_affine_matrix``,
the zoom and translation matrices), written in Keras's ``(x, y) = (col,
row)`` frame as the eight numbers :math:`a_0, a_1, a_2, b_0, b_1, b_2` (and
:math:`c_0 = c_1 = 0`) with :math:`x_{in} = a_0 x + a_1 y + a_2`,
:math:`y_{in} = b_0 x + b_1 y + b_2`; :func:`keras_to_row_col` turns them into
the kernels' ``(row, col)`` matrices. Edges follow Keras 3's NumPy, JAX and
PyTorch backends, which fill neighbour by neighbour (TensorFlow's kernel
fills the position before interpolating: the two differ within a pixel of the edge).
"""

import numpy as np

from nnscratch import kernels, rng
from nnscratch.layers.base import Layer
from nnscratch.layers.resizing import check_images

__all__ = ["RandomAffineLayer", "keras_to_row_col", "FILL_MODES", "INTERPOLATIONS"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")


def keras_to_row_col(a0, a1, a2, b0, b1, b2) -> np.ndarray:
    """Keras's ``(x, y)`` transforms (arrays of shape (N,)) as the kernels' (N, 2, 3) ``(row, col)`` matrices.

    ``row_in = b1 row + b0 col + b2`` and ``col_in = a1 row + a0 col + a2``.
    """
    a0, a1, a2, b0, b1, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a0, a1, a2, b0, b1, b2)))
    return np.stack([np.stack([b1, b0, b2], axis=-1), np.stack([a1, a0, a2], axis=-1)], axis=-2)


def _check_choice(kind, what, value, choices):
    if value not in choices:
        raise ValueError(f"{kind}: {what} must be one of {choices}, got {value!r}")
    return value


class RandomAffineLayer(Layer):
    """An image layer that resamples each image through a random affine map in training (module docstring).

    Subclasses give :meth:`matrices`, the maps of a batch drawn from
    ``self.generator`` (``seed``; ``fit(seed=...)`` reseeds it), and their
    own constructor arguments in ``get_config``.
    """

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.fill_mode = _check_choice(kind, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = _check_choice(kind, "interpolation", interpolation, INTERPOLATIONS)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{kind}: only channels_last images (NHWC), got data_format={data_format!r}")
        if not isinstance(fill_value, (int, float, np.floating, np.integer)) or isinstance(fill_value, bool):
            raise TypeError(f"{kind}: fill_value must be a number, got {fill_value!r}")
        self.fill_value = float(fill_value)
        self.seed, self.generator = seed, rng.generator_from_seed(seed)
        self._plan = None

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following maps from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        super().build(check_images(self, input_shape))

    def matrices(self, count, height, width) -> np.ndarray:
        """``count`` random maps for images of ``height`` x ``width``, shape (count, 2, 3) (row, col)."""
        raise NotImplementedError

    def forward(self, x, training=False):
        self.check_input(x)
        self._plan = None
        if not training:
            return x
        count, height, width, _ = x.shape
        image_kernels = kernels.image_backend()
        self._plan = image_kernels.sampling_plan(self.matrices(count, height, width), height, width,
                                                 self.fill_mode, self.interpolation)
        return image_kernels.gather_pixels(x, *self._plan, self.fill_value)

    def backward(self, grad_output):
        if self._plan is None:       # inference: the identity
            return grad_output
        return kernels.image_backend().scatter_pixels(grad_output, *self._plan)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "seed": self.seed, "fill_value": self.fill_value}
