r"""Shear each NHWC image by random factors while training (Keras's ``RandomShear``)."""

from nnscratch.layers.random_affine import RandomAffineLayer, keras_to_row_col
from nnscratch.layers.random_image import factor_range

__all__ = ["RandomShear"]


class RandomShear(RandomAffineLayer):
    r"""Slant each image along x and y by random factors, in training.

    ``x_factor=f`` draws :math:`s_x \sim U(-f, f)` (a pair ``(f_0, f_1)`` in
    [0, 1]: :math:`U(f_0, f_1)`), ``y_factor`` :math:`s_y` the same way, and
    each image flips both signs with probability 1/2, as Keras 3.15's. Output
    pixel :math:`(x, y)` reads the input at

    .. math:: x_{in} = x + s_x\, y, \qquad y_{in} = s_y\, x + y,

    a shear about the top-left corner (Keras's matrix has no centring), with
    ``fill_mode`` and ``interpolation`` as :class:`~nnscratch.layers.RandomRotation`.
    Both factors 0 (the default) leave the images as they are. Inference is the identity.
    ``get_config`` keeps the factors as given (Keras 3.15 saves ``(-f, f)``,
    which its own constructor then refuses).
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 data_format=None, seed=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self._given = {"x_factor": list(x_factor) if isinstance(x_factor, (tuple, list)) else x_factor,
                       "y_factor": list(y_factor) if isinstance(y_factor, (tuple, list)) else y_factor}
        self.x_factor = factor_range("RandomShear: x_factor", x_factor, (-1.0, 1.0))
        self.y_factor = factor_range("RandomShear: y_factor", y_factor, (-1.0, 1.0))
        if isinstance(x_factor, (tuple, list)) and min(x_factor) < 0 or isinstance(y_factor, (tuple, list)) and \
                min(y_factor) < 0:
            raise ValueError(f"RandomShear: a pair of factors must lie in [0, 1] (a random sign is drawn for each "
                             f"image), got x_factor={x_factor!r}, y_factor={y_factor!r}")

    def matrices(self, count, height, width):
        sign = 1.0 - 2.0 * (self.generator.random(count) > 0.5)
        shear_x = sign * self.generator.uniform(*self.x_factor, size=count)
        shear_y = sign * self.generator.uniform(*self.y_factor, size=count)
        return keras_to_row_col(1.0, shear_x, 0.0, shear_y, 1.0, 0.0)

    def get_config(self):
        return {**super().get_config(), **self._given}      # (a number f stands for (-f, f), a pair for itself)
