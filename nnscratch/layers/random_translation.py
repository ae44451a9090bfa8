r"""Shift each NHWC image by a random offset while training (Keras's ``RandomTranslation``)."""

from nnscratch.layers.random_affine import RandomAffineLayer, keras_to_row_col
from nnscratch.layers.random_image import factor_range

__all__ = ["RandomTranslation"]


class RandomTranslation(RandomAffineLayer):
    r"""Move each image by a random fraction of its height and width, in training.

    ``height_factor=f`` draws :math:`u_y \sim U(-f, f)` (a pair ``(f_0, f_1)``:
    :math:`U(f_0, f_1)`), each in [-1, 1], and moves the picture down by
    :math:`d_y = u_y H` pixels (up when negative); ``width_factor`` moves it
    right by :math:`d_x = u_x W`. Output pixel :math:`(x, y)` reads the input
    at :math:`(x - d_x,\ y - d_y)`, with ``fill_mode`` for what comes in from
    outside and ``interpolation`` for fractional shifts, as
    :class:`~nnscratch.layers.RandomRotation`. Inference is the identity.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = factor_range("RandomTranslation: height_factor", height_factor, (-1.0, 1.0))
        self.width_factor = factor_range("RandomTranslation: width_factor", width_factor, (-1.0, 1.0))

    def matrices(self, count, height, width):
        shift_y = self.generator.uniform(*self.height_factor, size=count) * height
        shift_x = self.generator.uniform(*self.width_factor, size=count) * width
        return keras_to_row_col(1.0, 0.0, -shift_x, 0.0, 1.0, -shift_y)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}
