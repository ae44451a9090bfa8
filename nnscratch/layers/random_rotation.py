r"""Rotate each NHWC image by a random angle while training (Keras's ``RandomRotation``)."""

import numpy as np

from nnscratch.layers.random_affine import RandomAffineLayer, keras_to_row_col
from nnscratch.layers.random_image import factor_range

__all__ = ["RandomRotation"]


class RandomRotation(RandomAffineLayer):
    r"""Rotate each image about its centre by an angle drawn from ``factor`` (fractions of a full turn), in training.

    ``factor=f`` draws :math:`\theta \sim U(-2\pi f, 2\pi f)`, a pair
    ``(f_0, f_1)`` from :math:`U(2\pi f_0, 2\pi f_1)`; a positive angle turns
    the picture counter-clockwise (``factor=(0.25, 0.25)`` on a square image
    is ``np.rot90``). Output pixel :math:`(x, y)` reads the input at

    .. math:: \begin{pmatrix} x_{in} \\ y_{in} \end{pmatrix} = R(\theta)
       \begin{pmatrix} x - c_x \\ y - c_y \end{pmatrix} + \begin{pmatrix} c_x \\ c_y \end{pmatrix},
       \qquad R(\theta) = \begin{pmatrix} \cos\theta & -\sin\theta \\ \sin\theta & \cos\theta \end{pmatrix},

    :math:`c_x = (W - 1)/2`, :math:`c_y = (H - 1)/2`, with ``fill_mode`` for
    the parts that come from outside the image (``"reflect"`` by default) and
    ``interpolation`` ``"bilinear"`` or ``"nearest"``. Backward and the plan:
    :mod:`nnscratch.layers.random_affine`. Inference is the identity.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = factor_range("RandomRotation", factor, (-1.0, 1.0))

    def matrices(self, count, height, width):
        angle = np.deg2rad(self.generator.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=count))
        cos, sin = np.cos(angle), np.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        return keras_to_row_col(cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}
