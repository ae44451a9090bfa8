r"""Scale the contrast of each NHWC image by a random factor while training (Keras's ``RandomContrast``)."""

from nnscratch.layers.random_image import RandomImageLayer

__all__ = ["RandomContrast"]


class RandomContrast(RandomImageLayer):
    r"""Scale each image's deviations from its mean by a random factor, then clip to ``value_range``, in training.

    Forward (training), image by image and channel by channel, with
    :math:`m` the mean over the pixels and :math:`c \sim U(1 - f, 1 + f)`
    drawn once an image: :math:`y = \operatorname{clip}((x - m)\,c + m,\ a,\ b)`.
    Inference is the identity. Backward, with :math:`g' = g` where the clip
    let the value through (0 elsewhere):
    :math:`\partial L/\partial x = c\, g' + (1 - c)\, \overline{g'}`, the bar
    the mean over the pixels (each pixel also moves the mean by
    :math:`1/(HW)`).

    ``factor`` ``f`` in [0, 1] (or a pair ``(f_0, f_1)``: :math:`c \sim U(1 - f_0, 1 + f_1)`),
    as Keras 3 documents it. (Keras 3.15 itself draws from :math:`[1, 1 + f]`
    for a single number: its ``_set_factor`` cuts :math:`-f` at 0.)
    """

    factor_bounds = (0.0, 1.0)

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        if isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 <= factor <= 1:
            factor = (factor, factor)          # [1 - f, 1 + f], as documented
        super().__init__(factor, value_range, seed, **kwargs)

    def draw_range(self) -> tuple:
        return 1.0 - self.factor[0], 1.0 + self.factor[1]

    def change(self, x, draws):
        mean = x.mean(axis=(1, 2), keepdims=True)
        return (x - mean) * draws + mean

    def change_gradient(self, grad, draws):
        return draws * grad + (1 - draws) * grad.mean(axis=(1, 2), keepdims=True)
