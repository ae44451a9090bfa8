r"""Zoom each NHWC image in or out by a random factor while training (Keras's ``RandomZoom``)."""

from nnscratch.layers.random_affine import RandomAffineLayer, keras_to_row_col
from nnscratch.layers.random_image import factor_range

__all__ = ["RandomZoom"]


def zoom_range(name, factor) -> tuple:
    """Keras's zoom ``factor``: a number ``f`` is ``(-f, f)``, a pair is sorted; each in (-1, 1]."""
    low, high = factor_range(f"RandomZoom: {name}", factor, (-1.0, 1.0))
    if low <= -1.0:
        raise ValueError(f"RandomZoom: {name} must lie in (-1, 1] (-1 would zoom into a single point), got {factor!r}")
    return low, high


class RandomZoom(RandomAffineLayer):
    r"""Scale each image about its centre by factors drawn from ``height_factor`` and ``width_factor``, in training.

    ``height_factor=f`` draws a zoom :math:`z_y \sim U(1 - f, 1 + f)` (a pair
    ``(f_0, f_1)``: :math:`U(1 + f_0, 1 + f_1)`), each in (-1, 1]; ``width_factor``
    the same for :math:`z_x`, or, when None, :math:`z_x = z_y` (the aspect
    ratio kept). As Keras's, a *positive* factor zooms *out* (the picture
    shrinks and the fill comes in) and a negative one zooms in. Output pixel
    :math:`(x, y)` reads the input at

    .. math:: x_{in} = z_x (x - c_x) + c_x, \qquad y_{in} = z_y (y - c_y) + c_y,

    :math:`c_x = (W - 1)/2`, :math:`c_y = (H - 1)/2`, with ``fill_mode`` and
    ``interpolation`` as :class:`~nnscratch.layers.RandomRotation`. Inference
    is the identity.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = zoom_range("height_factor", height_factor)
        self.width_factor = None if width_factor is None else zoom_range("width_factor", width_factor)

    def matrices(self, count, height, width):
        zoom_y = 1.0 + self.generator.uniform(*self.height_factor, size=count)
        zoom_x = zoom_y if self.width_factor is None else 1.0 + self.generator.uniform(*self.width_factor, size=count)
        return keras_to_row_col(zoom_x, 0.0, (width - 1) / 2 * (1.0 - zoom_x),
                                0.0, zoom_y, (height - 1) / 2 * (1.0 - zoom_y))

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}
