"""1-D convolution over sequences (N, steps, channels), computed by the 2-D kernels on a height-1 image."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.kernel_bias import KernelBiasLayer
from nnscratch.layers.base import format_shape
from nnscratch.layers.conv_utils import (check_groups, dilated_span, gather_taps, grouped_conv_backward,
                                         grouped_conv_forward, normalize_tuple, spread_kernel, window_geometry)

__all__ = ["Conv1D", "normalize_padding_1d", "place_windows_1d"]

PADDINGS_1D = ("valid", "same", "causal")


def normalize_padding_1d(padding, allowed=PADDINGS_1D) -> str:
    """``padding`` in lower case, one of ``allowed``; anything else is a ValueError."""
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"padding must be one of {', '.join(repr(p) for p in allowed)}, got {padding!r}")
    return padding.lower()


def place_windows_1d(layer, input_shape, window, stride, what):
    """Check that ``input_shape`` is a sequence (steps, channels) and place windows on it.

    ``"valid"`` and ``"same"`` follow TensorFlow's rules (``window_geometry``);
    ``"causal"`` pads ``window - 1`` steps before the sequence and none after,
    so that output ``t`` sees inputs ``t - window + 1 .. t`` only (stride 1),
    with ``ceil(steps / stride)`` outputs. Returns ``(out_steps, pad_before)``.
    """
    kind = type(layer).__name__
    if len(input_shape) != 2:
        raise ValueError(f"{kind} layer {layer.name!r} expects sequences of shape (None, steps, channels), "
                         f"got {format_shape(input_shape)}")
    if layer.padding == "causal":
        out, pad = (input_shape[0] - 1) // stride + 1, window - 1
    else:
        out, pad = window_geometry(input_shape[0], window, stride, layer.padding)
    if out < 1:
        raise ValueError(f"{kind} layer {layer.name!r}: a {what} spanning {window} steps is longer than its "
                         f"valid-padded input {format_shape(input_shape)}; use padding='same' or a smaller {what}")
    return out, pad


class Conv1D(KernelBiasLayer):
    r"""1-D convolution (cross-correlation, as Keras): ``y = f(conv(x, K) + b)``.

    Shapes: ``x`` (N, steps, C), kernel ``K`` (k, C, filters) as Keras,
    ``b`` (filters,), ``y`` (N, steps', filters):

    .. math:: z_{n,t,f} = \sum_{i < k} \sum_c x_{n,\ t s - p + i d,\ c}\, K_{i,c,f} + b_f

    with stride ``s``, dilation ``d`` (default 1) and ``p`` padding steps
    before the sequence (zeros).

    A sequence is an image one row high: ``x`` viewed as (N, 1, steps, C)
    and ``K`` as (1, k, C, filters) (reshaped views, no copies; a dilated
    kernel is spread out, see ``dilation_rate``), the layer is
    :class:`~nnscratch.layers.Conv2D` with a ``1 x k`` kernel, and calls the
    same im2col kernels (``conv2d_forward``, ``conv2d_backward``). So
    backward is Conv2D's:

    .. math::
        \frac{\partial L}{\partial K} = X^T g, \qquad
        \frac{\partial L}{\partial b} = \sum g, \qquad
        \frac{\partial L}{\partial x} = \mathrm{col2im}(g K^T)

    Parameters
    ----------
    filters : int
    kernel_size : int or tuple of 1 int
    strides : int or tuple of 1 int
        Default 1.
    padding : {"valid", "same", "causal"}
        ``"causal"`` pads ``(k - 1) d`` zeros before the sequence only
        (output ``t`` never sees a later step), as Keras.
    dilation_rate : int or tuple of 1 int
        ``d``, default 1: the kernel's taps read every ``d``-th step. The
        layer convolves with the kernel spread out to ``(k - 1) d + 1`` taps,
        zeros between (so it multiplies by zeros: up to ``d`` times the work
        of an undilated kernel), and each tap's gradient is that of its place
        in the spread kernel. As in Keras, ``d > 1`` needs ``strides=1``.
    groups : int
        Default 1; channels and filters in ``groups`` blocks, as
        :class:`~nnscratch.layers.Conv2D`'s (the kernel (k, C/groups, filters)).
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, \
    kernel_constraint, bias_constraint
        As :class:`~nnscratch.layers.Conv2D`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, groups=1, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 1, "kernel_size")
        self.strides = normalize_tuple(strides, 1, "strides")
        self.padding = normalize_padding_1d(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, 1, "dilation_rate")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"Conv1D: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), got "
                             f"strides={self.strides[0]} and dilation_rate={self.dilation_rate[0]}")
        self.groups = check_groups("Conv1D", groups, self.filters)
        self._x = None

    def build(self, input_shape):
        self._out_steps, self._pad = place_windows_1d(self, input_shape, self._span(), self.strides[0], "kernel")
        if input_shape[-1] % self.groups:
            raise ValueError(f"Conv1D layer {self.name!r}: the number of input channels ({input_shape[-1]}) must be "
                             f"evenly divisible by the number of groups ({self.groups})")
        self.build_kernel_and_bias((self.kernel_size[0], input_shape[-1] // self.groups, self.filters), self.filters)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (self._out_steps, self.filters)

    def _span(self) -> int:
        """How many steps one window covers: ``(k - 1) d + 1`` (``k`` without dilation)."""
        return dilated_span(self.kernel_size, self.dilation_rate)[0]

    def _geometry(self):
        """The 2-D kernels' window arguments for a height-1 image: kh, kw, sh, sw, pad_top, pad_left, out_h, out_w."""
        return (1, self._span(), 1, self.strides[0], 0, self._pad, 1, self._out_steps)

    def _kernel_2d(self):
        """The kernel (k, C, filters) as a 2-D one (1, span, C, filters): a view, or spread with zeros if dilated."""
        kernel = self.kernel.value
        return spread_kernel(kernel.reshape(1, *kernel.shape), (1, self.dilation_rate[0]))

    def forward(self, x, training=False):
        self.check_input(x)
        image = x.reshape(x.shape[0], 1, *x.shape[1:])  # (N, 1, steps, C)
        self._x = image if training else None
        bias = self.bias.value if self.use_bias else None
        twin = kernels.backend()
        if self.groups > 1:
            z = grouped_conv_forward(image, self._kernel_2d(), self._geometry(), self.groups)
            return self._activate(z, bias, training).reshape(x.shape[0], self._out_steps, self.filters)
        if self._activates_after_product(training):  # softmax: whole rows; gelu, mish, ... keep z: after
            y = self._activate(twin.conv2d_forward(image, self._kernel_2d(), *self._geometry()), bias, training)
        else:  # the kernel adds the bias and applies f as it stores
            y = self._keep(twin.conv2d_forward(image, self._kernel_2d(), *self._geometry(), bias=bias,
                                               activation=self.activation), training)
        return y.reshape(x.shape[0], self._out_steps, self.filters)

    def backward(self, grad_output):
        return super().backward(grad_output.reshape(-1, self.filters))

    def backward_from_preactivation(self, grad_z):
        if self._x is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        grad_z = grad_z.reshape(-1, self.filters)
        if self.use_bias:
            self.bias.grad[...] = kernels.backend().bias_gradient(grad_z)
        if self.groups > 1:
            grad_kernel, grad_x = grouped_conv_backward(self._x, grad_z, self._kernel_2d(), self._geometry(),
                                                        self.groups, input_gradient=not self.skip_input_gradient)
        else:
            grad_kernel, grad_x = kernels.backend().conv2d_backward(
                self._x, grad_z, self._kernel_2d(), *self._geometry(), input_gradient=not self.skip_input_gradient)
        self.kernel.grad[...] = gather_taps(grad_kernel, (1, self.dilation_rate[0]))[0]  # the taps' places
        return None if grad_x is None else grad_x.reshape(grad_x.shape[0], *self.input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "groups": self.groups}
