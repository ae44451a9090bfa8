"""Nearest-neighbour and bilinear upsampling of NHWC images."""

from nnscratch import kernels
from nnscratch.layers.base import Layer, format_shape
from nnscratch.layers.conv_utils import normalize_tuple

__all__ = ["UpSampling2D"]

#: The interpolations nnscratch implements.
INTERPOLATIONS = ("nearest", "bilinear")
#: Keras's other interpolations, which nnscratch does not implement.
UNSUPPORTED_INTERPOLATIONS = ("bicubic", "lanczos3", "lanczos5")


class UpSampling2D(Layer):
    r"""Upsample ``size[0]`` times down and ``size[1]`` times across.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, a H, b W, C) for ``size=(a, b)``.

    ``"nearest"`` (the default) repeats every pixel:
    ``y[n, r, s, c] = x[n, r // a, s // b, c]``. Each input pixel is copied
    to an ``a x b`` block, so its gradient is the sum of the block's gradients:

    .. math:: \frac{\partial L}{\partial x_{n,r,s,c}} = \sum_{i < a,\ j < b} g_{n,\ ra + i,\ sb + j,\ c}

    ``"bilinear"`` interpolates between the four nearest pixels as Keras 3
    with TensorFlow (``tf.image.resize``, half-pixel centres): output row
    ``r`` sits at input row :math:`u = (r + 1/2)/a - 1/2`, clamped to
    ``[0, H - 1]``, and mixes rows ``floor(u)`` and ``min(floor(u) + 1, H - 1)`` with the
    weights :math:`1 - (u - \lfloor u \rfloor)` and :math:`u - \lfloor u
    \rfloor`; columns likewise (kernel ``upsample_bilinear2d_forward``). The
    map is linear, ``y = A x`` with fixed weights, so backward is its adjoint
    :math:`A^T g`: each output sends its gradient, times the same weights, to
    its four source pixels (``upsample_bilinear2d_backward``).

    Parameters
    ----------
    size : int or tuple of 2 ints
        Default 2.
    interpolation : str
        ``"nearest"`` or ``"bilinear"`` (any case, as Keras); ``"bicubic"``,
        ``"lanczos3"`` and ``"lanczos5"`` are not supported and raise a ValueError.
    """

    def __init__(self, size=(2, 2), interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 2, "size")
        if not isinstance(interpolation, str):
            raise TypeError(f"interpolation must be a string, got {interpolation!r}")
        if interpolation.lower() not in INTERPOLATIONS:
            other = ("is not supported by nnscratch" if interpolation.lower() in UNSUPPORTED_INTERPOLATIONS
                     else "is not an interpolation")
            raise ValueError(f"UpSampling2D interpolation {interpolation!r} {other}; only 'nearest' and 'bilinear' "
                             "are implemented")
        self.interpolation = interpolation.lower()

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"UpSampling2D layer {self.name!r} expects images of shape "
                             f"(None, height, width, channels), got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])

    def forward(self, x, training=False):
        self.check_input(x)
        if self.interpolation == "bilinear":
            return kernels.pooling_backend().upsample_bilinear2d_forward(x, *self.size)
        return kernels.pooling_backend().upsample_nearest2d_forward(x, *self.size)

    def backward(self, grad_output):
        if grad_output.shape[1:] != self._output_shape:
            raise ValueError(f"layer {self.name!r}: expected a gradient of shape {format_shape(self._output_shape)}, "
                             f"got {grad_output.shape}")
        if self.interpolation == "bilinear":
            return kernels.pooling_backend().upsample_bilinear2d_backward(grad_output, *self.size)
        return kernels.pooling_backend().upsample_nearest2d_backward(grad_output, *self.size)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "interpolation": self.interpolation}
