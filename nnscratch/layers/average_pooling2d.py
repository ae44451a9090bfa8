"""Average pooling over NHWC images."""

from nnscratch import kernels
from nnscratch.layers.base import Layer
from nnscratch.layers.conv_utils import normalize_padding, normalize_tuple, place_windows

__all__ = ["AveragePooling2D", "AvgPool2D"]


class AveragePooling2D(Layer):
    r"""Average each ``pool_size`` window, per channel.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, H', W', C), with H', W' and the
    padding placed as in :class:`~nnscratch.layers.MaxPooling2D` (TensorFlow's
    rules; ``strides`` default to ``pool_size``).

    Each output is the mean of the input cells its window covers,
    :math:`W_o`. With ``padding="same"`` a window that hangs over the edge
    averages only the cells inside the image, as Keras: padding is *not*
    counted as zeros (a 3x3 window over a corner averages 4 cells, not 9):

    .. math:: y_{n,o,c} = \frac{1}{|W_o|} \sum_{p \in W_o} x_{n,p,c}

    The map is linear, so backward needs no cache but the batch size: each
    window sends its gradient, divided by its count, to every cell it covers,
    and overlapping windows (strides smaller than the pool) add up:

    .. math:: \frac{\partial L}{\partial x_{n,p,c}} = \sum_{o\,:\ p \in W_o} \frac{g_{n,o,c}}{|W_o|}

    Parameters
    ----------
    pool_size : int or tuple of 2 ints
        Window height and width. Default 2 (Keras 3 has no default; Keras 2 had 2).
    strides : int, tuple of 2 ints or None
        Default: ``pool_size`` (windows side by side).
    padding : {"valid", "same"}
        ``"valid"``: only windows inside the image; ``"same"``: ``ceil(H / stride)`` outputs.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self._n = None

    def build(self, input_shape):
        self._out_hw, self._pad_top, self._pad_left = place_windows(
            self, input_shape, self.pool_size, self.strides, "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self._out_hw, input_shape[2])

    def window(self) -> tuple:
        """``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``, as the pooling kernels take them."""
        return (*self.pool_size, *self.strides, self._pad_top, self._pad_left, *self._out_hw)

    def forward(self, x, training=False):
        self.check_input(x)
        self._n = x.shape[0] if training else None  # backward needs only the batch size
        return kernels.pooling_backend().avgpool2d_forward(x, *self.window())

    def backward(self, grad_output):
        if self._n is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        geometry = (*self.pool_size, *self.strides, self._pad_top, self._pad_left)
        return kernels.pooling_backend().avgpool2d_backward(grad_output, (self._n, *self.input_shape), *geometry)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


AvgPool2D = AveragePooling2D
