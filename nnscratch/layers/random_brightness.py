r"""Shift the brightness of each NHWC image by a random amount while training (Keras's ``RandomBrightness``)."""

from nnscratch.layers.random_image import RandomImageLayer

__all__ = ["RandomBrightness"]


class RandomBrightness(RandomImageLayer):
    r"""Add one random amount to every pixel of an image, then clip to ``value_range``, in training.

    Forward (training): :math:`y = \operatorname{clip}(x + \delta\,(b - a),\ a,\ b)` with
    :math:`\delta \sim U(f_0, f_1)` drawn once an image and :math:`[a, b]` =
    ``value_range`` (default ``(0, 255)``); ``factor`` ``f`` means
    :math:`[f_0, f_1] = [-f, f]`, a pair is the range itself (within
    :math:`[-1, 1]`). Inference is the identity. Backward: :math:`g` where
    the clip let the value through, 0 where it cut it. As Keras 3's
    ``RandomBrightness``.
    """

    def change(self, x, draws):
        low, high = self.value_range
        return x + draws * x.dtype.type(high - low)

    def change_gradient(self, grad, draws):
        return grad
