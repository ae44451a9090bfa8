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

    A ``Model`` whose ReLU-activated image layer (``Conv2D(...,
    activation="relu")`` or ``Activation("relu")``) is directly followed by a
    MaxPooling2D with windows that do not overlap calls ``backward(grad,
    relu=True)``: the pooling then also takes the ReLU's backward, ``dz = dx
    \cdot [h > 0]`` with ``h`` the ReLU's output (this layer's input), in the
    same sweep, and the layer before continues from ``dz`` with
    ``backward_from_preactivation``. The mask needs no ``h``: a cell that won a
    window holds that window's maximum ``y``, and one that won none gets
    ``dx = 0`` anyway. The numbers are bit-identical to the two backward
    passes one after the other.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self._argmax = self._y = None

    def build(self, input_shape):
        self._out_hw, self._pad_top, self._pad_left = place_windows(
            self, input_shape, self.pool_size, self.strides, "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self._out_hw, input_shape[2])

    def forward(self, x, training=False):
        self.check_input(x)
        y, argmax = kernels.backend().maxpool2d_forward(x, *self.window())
        return self.keep_pooled(y, argmax, training)

    def window(self) -> tuple:
        """``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``, as the pooling kernels take them."""
        return (*self.pool_size, *self.strides, self._pad_top, self._pad_left, *self._out_hw)

    def keep_pooled(self, y, argmax, training=True):
        """Keep what backward needs of the pooled ``y`` and its ``argmax``; return ``y``.

        ``forward`` calls it; so does a ``Model`` that computed both inside the
        batch norm before this layer (``BatchNormalization.forward_pooled``).
        """
        self._argmax, self._n = (argmax if training else None), y.shape[0]
        self._y = y if training else None  # the window maxima, for backward(..., relu=True)
        return y

    @property
    def windows_overlap(self) -> bool:
        """Whether a cell can fall in two windows (a stride shorter than the pool)."""
        return self.strides[0] < self.pool_size[0] or self.strides[1] < self.pool_size[1]

    def backward(self, grad_output, relu=False):
        """``dL/dx``; with ``relu=True``, ``dL/dz`` of the ReLU before the pooling (``x = relu(z)``)."""
        if self._argmax is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        geometry = (*self.pool_size, *self.strides, self._pad_top, self._pad_left)
        x_shape = (self._n, *self.input_shape)
        return kernels.backend().maxpool2d_backward(grad_output, self._argmax, x_shape, *geometry,
                                                    relu_output=self._y if relu else None)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


MaxPool2D = MaxPooling2D
