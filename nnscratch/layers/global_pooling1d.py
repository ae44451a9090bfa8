"""Global average and global max pooling over sequences: one number per channel."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.base import Layer, format_shape

__all__ = ["GlobalAveragePooling1D", "GlobalAvgPool1D", "GlobalMaxPooling1D", "GlobalMaxPool1D"]


class _GlobalPooling1D(Layer):
    """What the two share: the sequence check, ``keepdims``, and the view of (N, steps, C) as (N, 1, steps, C).

    The 2-D global-pooling kernels do the work on that height-1 image.
    """

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, bool):
            raise TypeError(f"keepdims must be True or False, got {keepdims!r}")
        self.keepdims = keepdims
        self._x_shape = None

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects sequences of shape "
                             f"(None, steps, channels), got {format_shape(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (1, input_shape[1]) if self.keepdims else (input_shape[1],)

    @staticmethod
    def _image(x):
        return x.reshape(x.shape[0], 1, *x.shape[1:])

    def _shaped(self, y):
        """The kernels' (N, C) result, as (N, 1, C) with ``keepdims``."""
        return y.reshape(y.shape[0], 1, y.shape[1]) if self.keepdims else y

    def _flat_gradient(self, grad_output):
        """``grad_output`` as (N, C), checked against the batch of the last training forward."""
        if self._x_shape is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        return grad_output.reshape(self._x_shape[0], self._x_shape[3])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    r"""Average over all steps, per channel.

    Shapes: ``x`` (N, T, C) -> ``y`` (N, C), or (N, 1, C) with ``keepdims=True``.

    .. math:: y_{n,c} = \frac{1}{T} \sum_t x_{n,t,c}, \qquad
              \frac{\partial L}{\partial x_{n,t,c}} = \frac{g_{n,c}}{T}

    With a mask ``m`` (N, T) from ``Embedding(mask_zero=True)`` or
    ``Masking`` (:mod:`nnscratch.models.masking`), as Keras, the average of
    the unmasked steps, with the weights :math:`w_{n,t} = m_{n,t} / \sum_{t'}
    m_{n,t'}`:

    .. math:: y_{n,c} = \sum_t w_{n,t}\, x_{n,t,c}, \qquad
              \frac{\partial L}{\partial x_{n,t,c}} = w_{n,t}\, g_{n,c}

    (a row with every step masked divides by zero: NaN, as in Keras). The
    output carries no mask.
    """

    supports_masking = uses_mask = True

    def compute_mask(self, inputs, mask):
        return None

    def output_masked(self, input_masked: bool) -> bool:
        return False

    def forward(self, x, training=False, mask=None):
        self.check_input(x)
        if mask is not None:
            mask = self.checked_mask(mask, x)
            with np.errstate(invalid="ignore", divide="ignore"):
                weights = (mask / mask.sum(axis=1, keepdims=True)).astype(x.dtype)   # w (N, T)
            self._x_shape, self._weights = (self._image(x).shape if training else None), weights
            return self._shaped(np.einsum("nt,ntc->nc", weights, x))
        image = self._image(x)
        self._x_shape, self._weights = (image.shape if training else None), None
        return self._shaped(kernels.pooling_backend().global_avgpool2d_forward(image))

    def backward(self, grad_output):
        grad = self._flat_gradient(grad_output)
        if self._weights is not None:
            return self._weights[:, :, None] * grad[:, None, :]
        grad_x = kernels.pooling_backend().global_avgpool2d_backward(grad, self._x_shape)
        return grad_x.reshape(grad.shape[0], *self.input_shape)


class GlobalMaxPooling1D(_GlobalPooling1D):
    r"""Maximum over all steps, per channel.

    Shapes: ``x`` (N, T, C) -> ``y`` (N, C), or (N, 1, C) with ``keepdims=True``.

    .. math:: \frac{\partial L}{\partial x_{n,t,c}} = g_{n,c}\,[\,t = \arg\max_{t'} x_{n,t',c}\,]

    Tie rule, as :class:`~nnscratch.layers.GlobalMaxPooling2D`: the first
    maximum receives the whole gradient (TensorFlow splits it equally).
    """

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(keepdims=keepdims, **kwargs)
        self._argmax = None

    def forward(self, x, training=False):
        self.check_input(x)
        image = self._image(x)
        y, argmax = kernels.pooling_backend().global_maxpool2d_forward(image)
        self._x_shape, self._argmax = (image.shape, argmax) if training else (None, None)
        return self._shaped(y)

    def backward(self, grad_output):
        grad = self._flat_gradient(grad_output)
        grad_x = kernels.pooling_backend().global_maxpool2d_backward(grad, self._argmax, self._x_shape)
        return grad_x.reshape(grad.shape[0], *self.input_shape)


GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
