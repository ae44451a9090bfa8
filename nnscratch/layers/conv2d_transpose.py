"""Transposed 2-D convolution: the adjoint of Conv2D, which upsamples as it convolves."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.kernel_bias import KernelBiasLayer
from nnscratch.layers.base import format_shape
from nnscratch.layers.conv_utils import (check_dilation, dilated_span, gather_taps, normalize_padding, normalize_tuple,
                                         spread_kernel, window_geometry)

__all__ = ["Conv2DTranspose"]


def transposed_length(size, window, stride, padding, output_padding):
    """Keras's output length of a transposed convolution along one axis, and the padding before it.

    Without ``output_padding``: ``size * stride + max(window - stride, 0)``
    (valid) or ``size * stride`` (same). With it: ``(size - 1) * stride +
    window - 2 p + output_padding``, ``p`` 0 (valid) or ``window // 2``
    (same). The padding is the one a Conv2D from that length back to
    ``size`` would use (TensorFlow's rule).
    """
    if output_padding is None:
        length = size * stride + max(window - stride, 0) if padding == "valid" else size * stride
    else:
        pad = 0 if padding == "valid" else window // 2
        length = (size - 1) * stride + window - 2 * pad + output_padding
    before = 0 if padding == "valid" else max((size - 1) * stride + window - length, 0) // 2
    return length, before


class Conv2DTranspose(KernelBiasLayer):
    r"""Transposed convolution (Keras's ``Conv2DTranspose``): ``y = f(conv^T(x, K) + b)``.

    A Conv2D with kernel ``K`` (kh, kw, filters, C), these strides and this
    padding maps images (H', W', filters) to (H, W, C): im2col, then a
    product by ``K`` as a (kh kw filters, C) matrix. This layer maps the
    other way, (N, H, W, C) to (N, H', W', filters), by that map's transpose:

    .. math:: z = \mathrm{col2im}(x K^T), \qquad y = f(z + b),

    each input pixel's ``x K^T`` row is a (kh, kw, filters) patch added into
    ``z`` at its window (strides > 1: windows ``s`` apart, so the image
    grows by ``s``). The kernel is in Keras's layout, (kh, kw, filters, C).
    Backward is the forward of the Conv2D, with :math:`g = \partial L/\partial z`:

    .. math::
        G = \mathrm{im2col}(g), \qquad
        \frac{\partial L}{\partial x} = G K, \qquad
        \frac{\partial L}{\partial K} = G^T x, \qquad
        \frac{\partial L}{\partial b} = \sum g,

    (``x`` as an (N H W, C) matrix), since col2im is the adjoint of im2col
    (docs/backprop.md, section 3).

    Parameters
    ----------
    filters, kernel_size, strides, padding, activation, use_bias, initializers, regularizers, constraints
        As :class:`~nnscratch.layers.Conv2D`.
    output_padding : int, tuple or None
        Extra rows and columns at the end of the output (each below its
        stride), as Keras: see :func:`transposed_length`.
    dilation_rate : int or tuple
        Spreads the kernel's taps as Conv2D's: the layer is the transpose of
        the dilated Conv2D, so it works with the kernel spread out to
        ``((kh - 1) dh + 1, (kw - 1) dw + 1)`` taps, zeros between (in the
        output lengths too, as Keras), and each tap's gradient is that of its
        place in the spread kernel. A dilation above 1 needs strides of 1.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        check_dilation("Conv2DTranspose", self.strides, self.dilation_rate)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = tuple(int(p) for p in np.broadcast_to(output_padding, 2))
            if any(p < 0 or p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"output_padding {self.output_padding} must be >= 0 and below the strides "
                                 f"{self.strides}")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2DTranspose layer {self.name!r} expects images of shape (None, height, width, "
                             f"channels), got {format_shape(input_shape)}")
        self.build_kernel_and_bias((*self.kernel_size, self.filters, input_shape[2]), self.filters)
        super().build(input_shape)

    def _lengths(self, input_shape):
        """``((H', pad_top), (W', pad_left))`` of the output for an input (H, W, C)."""
        padding, span = self.output_padding or (None, None), self._span()
        return tuple(transposed_length(input_shape[axis], span[axis], self.strides[axis], self.padding, padding[axis])
                     for axis in (0, 1))

    def _span(self):
        """The window of the (spread) kernel: ``(k - 1) d + 1`` rows and columns."""
        return dilated_span(self.kernel_size, self.dilation_rate)

    def compute_output_shape(self, input_shape):
        (height, _), (width, _) = self._lengths(input_shape)
        for axis, length in ((0, height), (1, width)):
            back = window_geometry(length, self._span()[axis], self.strides[axis], self.padding)[0]
            if length < 1 or back != input_shape[axis]:
                raise ValueError(f"Conv2DTranspose layer {self.name!r}: kernel {self.kernel_size}, strides "
                                 f"{self.strides}, padding {self.padding!r} and output_padding {self.output_padding} "
                                 f"give an output length {length} from {input_shape[axis]}, from which the matching "
                                 f"Conv2D would give {back}, not {input_shape[axis]} (TensorFlow refuses it too)")
        return (height, width, self.filters)

    def _geometry(self):
        """The im2col/col2im geometry of the Conv2D from the output (H', W') back to the input (H, W)."""
        (_, top), (_, left) = self._lengths(self.input_shape)
        return (*self._span(), *self.strides, top, left, self.input_shape[0], self.input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        n = len(x)
        rows = x.reshape(-1, x.shape[-1])                                    # (N H W, C)
        kernel = spread_kernel(self.kernel.value, self.dilation_rate)
        patches = rows @ kernel.reshape(-1, x.shape[-1]).T                   # (N H W, kh kw filters)
        z = kernels.backend().col2im(patches, (n, *self._output_shape), *self._geometry())
        self._x = rows if training else None
        return self._activate(z, self.bias.value if self.use_bias else None, training)

    def backward_from_preactivation(self, grad_z):
        windows = kernels.backend().im2col(np.ascontiguousarray(grad_z), *self._geometry())   # (N H W, kh kw filters)
        spread = spread_kernel(self.kernel.value, self.dilation_rate)
        kernel = spread.reshape(-1, self.kernel.shape[-1])                  # (kh kw filters, C), kh kw spread
        self.kernel.grad[...] = gather_taps((windows.T @ self._x).reshape(spread.shape), self.dilation_rate)
        if self.use_bias:
            self.bias.grad[...] = kernels.backend().bias_gradient(grad_z.reshape(-1, self.filters))
        if self.skip_input_gradient:
            return None
        return (windows @ kernel).reshape(len(grad_z), *self.input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                "dilation_rate": list(self.dilation_rate)}
