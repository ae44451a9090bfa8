"""Max and average pooling over sequences (N, steps, channels), by the 2-D kernels on a height-1 image."""

from nnscratch import kernels
from nnscratch.layers.base import Layer
from nnscratch.layers.conv1d import normalize_padding_1d, place_windows_1d
from nnscratch.layers.conv_utils import normalize_tuple

__all__ = ["MaxPooling1D", "MaxPool1D", "AveragePooling1D", "AvgPool1D"]


class _Pooling1D(Layer):
    """What the two poolings share: arguments, window placement, the height-1 view and the config."""

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 1, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 1, "strides")
        self.padding = normalize_padding_1d(padding, ("valid", "same"))
        self._n = None

    def build(self, input_shape):
        self._out_steps, self._pad = place_windows_1d(self, input_shape, self.pool_size[0], self.strides[0], "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (self._out_steps, input_shape[1])

    def window(self) -> tuple:
        """The 2-D kernels' window for a height-1 image: ``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``."""
        return (1, self.pool_size[0], 1, self.strides[0], 0, self._pad, 1, self._out_steps)

    @staticmethod
    def _image(x):
        """(N, steps, C) viewed as a height-1 image (N, 1, steps, C)."""
        return x.reshape(x.shape[0], 1, *x.shape[1:])

    def _x_shape(self):
        if self._n is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        return (self._n, 1, *self.input_shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


class MaxPooling1D(_Pooling1D):
    r"""Take the maximum of each window of ``pool_size`` steps, per channel.

    Shapes: ``x`` (N, steps, C) -> ``y`` (N, steps', C), with steps' and the
    padding as TensorFlow places them (``"valid"``: whole windows only;
    ``"same"``: ``ceil(steps / stride)`` outputs); ``strides`` default to
    ``pool_size``. The sequence is pooled as a height-1 image by
    :class:`~nnscratch.layers.MaxPooling2D`'s kernels, so backward is theirs:
    each output gradient goes to the step that won its window,

    .. math:: \frac{\partial L}{\partial x_{n,t,c}} = \sum_{\text{windows } w:\ \arg\max w = t}
              \frac{\partial L}{\partial y_{n,w,c}}

    with the same tie rule (the first maximum in the window wins) and padding
    that never wins.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, **kwargs)
        self._argmax = None

    def forward(self, x, training=False):
        self.check_input(x)
        y, argmax = kernels.backend().maxpool2d_forward(self._image(x), *self.window())
        self._n, self._argmax = (x.shape[0], argmax) if training else (None, None)
        return y.reshape(x.shape[0], self._out_steps, x.shape[2])

    def backward(self, grad_output):
        x_shape = self._x_shape()
        grad_x = kernels.backend().maxpool2d_backward(self._image(grad_output), self._argmax, x_shape,
                                                      *self.window()[:6])
        return grad_x.reshape(self._n, *self.input_shape)


class AveragePooling1D(_Pooling1D):
    r"""Average each window of ``pool_size`` steps, per channel.

    Shapes and window placement as :class:`MaxPooling1D`. As
    :class:`~nnscratch.layers.AveragePooling2D` (whose kernels it runs on the
    sequence viewed as a height-1 image), a ``"same"`` window that hangs over
    an end averages only the steps it covers, :math:`W_o`:

    .. math:: y_{n,o,c} = \frac{1}{|W_o|} \sum_{t \in W_o} x_{n,t,c}, \qquad
              \frac{\partial L}{\partial x_{n,t,c}} = \sum_{o\,:\ t \in W_o} \frac{g_{n,o,c}}{|W_o|}

    ``pool_size`` defaults to 2 (Keras 3 requires it), as ``AveragePooling2D``.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._n = x.shape[0] if training else None  # backward needs only the batch size
        y = kernels.pooling_backend().avgpool2d_forward(self._image(x), *self.window())
        return y.reshape(x.shape[0], self._out_steps, x.shape[2])

    def backward(self, grad_output):
        x_shape = self._x_shape()
        grad_x = kernels.pooling_backend().avgpool2d_backward(self._image(grad_output), x_shape, *self.window()[:6])
        return grad_x.reshape(self._n, *self.input_shape)


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
