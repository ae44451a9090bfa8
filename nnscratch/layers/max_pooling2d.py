"""Max pooling over NHWC images."""

from nnscratch import kernels
from nnscratch.layers.base import Layer
from nnscratch.layers.conv_utils import normalize_padding, normalize_tuple, place_windows

__all__ = ["MaxPooling2D", "MaxPool2D"]


class MaxPooling2D(Layer):
    r"""Take the maximum of each ``pool_size`` window, per channel.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, H', W', C).

    Forward remembers which cell won each window (``argmax``). Backward sends
    each output gradient to that cell only; every other cell gets zero:

    .. math:: \frac{\partial L}{\partial x_{p}} = \sum_{\text{windows } w:\ \arg\max w = p}
              \frac{\partial L}{\partial y_w}

    Tie rule: if several cells share the maximum, the first in row-major order
    inside the window receives the whole gradient. With ``padding="same"`` the
    padding cells never win.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)

    def build(self, input_shape):
        self._out_hw, self._pad_top, self._pad_left = place_windows(
            self, input_shape, self.pool_size, self.strides, "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self._out_hw, input_shape[2])

    def forward(self, x, training=False):
        self.check_input(x)
        geometry = (*self.pool_size, *self.strides, self._pad_top, self._pad_left, *self._out_hw)
        y, argmax = kernels.backend().maxpool2d_forward(x, *geometry)
        self._argmax, self._n = (argmax if training else None), x.shape[0]
        return y

    def backward(self, grad_output):
        geometry = (*self.pool_size, *self.strides, self._pad_top, self._pad_left)
        x_shape = (self._n, *self.input_shape)
        return kernels.backend().maxpool2d_backward(grad_output, self._argmax, x_shape, *geometry)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


MaxPool2D = MaxPooling2D
