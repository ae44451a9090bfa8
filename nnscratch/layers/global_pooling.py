"""Global average and global max pooling over NHWC images: one number per channel."""

from nnscratch import kernels
from nnscratch.layers.base import Layer, format_shape

__all__ = ["GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D"]


class _GlobalPooling2D(Layer):
    """What the two global poolings share: the image check, ``keepdims`` and the output shape."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, bool):
            raise TypeError(f"keepdims must be True or False, got {keepdims!r}")
        self.keepdims = keepdims
        self._x_shape = None

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects images of shape "
                             f"(None, height, width, channels), got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def _shaped(self, y):
        """The kernels' (N, C) result, as (N, 1, 1, C) with ``keepdims``."""
        return y.reshape(y.shape[0], 1, 1, y.shape[1]) if self.keepdims else y

    def _flat_gradient(self, grad_output):
        """``grad_output`` as (N, C), checked against the batch of the last training forward."""
        if self._x_shape is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        return grad_output.reshape(self._x_shape[0], self._x_shape[3])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    r"""Average over all pixels, per channel.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, C), or (N, 1, 1, C) with ``keepdims=True``.

    .. math:: y_{n,c} = \frac{1}{HW} \sum_{r,s} x_{n,r,s,c}, \qquad
              \frac{\partial L}{\partial x_{n,r,s,c}} = \frac{g_{n,c}}{HW}

    Every pixel has the same weight ``1/(HW)`` in the mean, so it receives
    the same share of the gradient.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape if training else None
        return self._shaped(kernels.pooling_backend().global_avgpool2d_forward(x))

    def backward(self, grad_output):
        grad = self._flat_gradient(grad_output)
        return kernels.pooling_backend().global_avgpool2d_backward(grad, self._x_shape)


class GlobalMaxPooling2D(_GlobalPooling2D):
    r"""Maximum over all pixels, per channel.

    Shapes: ``x`` (N, H, W, C) -> ``y`` (N, C), or (N, 1, 1, C) with ``keepdims=True``.

    Forward remembers which pixel won each (sample, channel); backward sends
    the gradient there and nothing elsewhere:

    .. math:: \frac{\partial L}{\partial x_{n,p,c}} = g_{n,c}\,[\,p = \arg\max_{p'} x_{n,p',c}\,]

    Tie rule, as :class:`~nnscratch.layers.MaxPooling2D`: the first maximum in
    row-major pixel order receives the whole gradient (TensorFlow's
    ``reduce_max`` splits it equally between the tied pixels; both are valid
    subgradients).
    """

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(keepdims=keepdims, **kwargs)
        self._argmax = None

    def forward(self, x, training=False):
        self.check_input(x)
        y, argmax = kernels.pooling_backend().global_maxpool2d_forward(x)
        self._x_shape, self._argmax = (x.shape, argmax) if training else (None, None)
        return self._shaped(y)

    def backward(self, grad_output):
        grad = self._flat_gradient(grad_output)
        return kernels.pooling_backend().global_maxpool2d_backward(grad, self._argmax, self._x_shape)


GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
