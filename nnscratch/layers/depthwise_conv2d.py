"""Depthwise 2-D convolution: each input channel convolved with its own filters."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.conv_utils import (check_dilation, dilated_span, gather_taps, normalize_padding, normalize_tuple,
                                         place_windows, spread_kernel)
from nnscratch.layers.kernel_bias import KernelBiasLayer

__all__ = ["DepthwiseConv2D"]


class DepthwiseConv2D(KernelBiasLayer):
    r"""Convolve each of the ``C`` input channels on its own with ``depth_multiplier`` filters (Keras's layer).

    Shapes: ``x`` (N, H, W, C), kernel ``K`` (kh, kw, C, M) as Keras (``M`` the
    ``depth_multiplier``), bias (C M,), ``y`` (N, H', W', C M) with output
    channel ``c M + m`` from input channel ``c``. With the windows unfolded by
    im2col into ``X`` (rows, kh kw, C), ``t`` a window cell, as Conv2D but
    with no sum over the channels:

    .. math::
        z_{r, c, m} = \sum_t X_{r, t, c} K_{t, c, m}, \qquad
        \frac{\partial L}{\partial K_{t, c, m}} = \sum_r X_{r, t, c}\, g_{r, c, m}, \qquad
        \frac{\partial L}{\partial X_{r, t, c}} = \sum_m g_{r, c, m} K_{t, c, m},

    and :math:`\partial L/\partial x = \mathrm{col2im}(\partial L/\partial X)`
    (docs/backprop.md, section 3). Each sum is an ``np.einsum``: C small
    products instead of Conv2D's one large one, so it is the cheap half of a
    MobileNet-style separable block, not a fast path of its own.

    ``dilation_rate`` (default 1) spreads the taps as Conv2D's: the windows
    are those of the kernel spread out to ``((kh - 1) dh + 1, (kw - 1) dw +
    1)`` taps with zeros between, and each tap's gradient is that of its
    place in the spread kernel. As in Keras, a dilation above 1 needs strides of 1.

    Parameters
    ----------
    kernel_size, strides, padding, activation, use_bias, bias_initializer, bias_regularizer, bias_constraint
        As :class:`~nnscratch.layers.Conv2D`.
    depth_multiplier : int
        Filters per input channel.
    depthwise_initializer, depthwise_regularizer, depthwise_constraint
        The kernel's, Keras's names (the weight itself is called ``kernel``, as in Keras 3).
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1,
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, kernel_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) \
                or depth_multiplier < 1:
            raise ValueError(f"depth_multiplier must be a positive integer, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        check_dilation("DepthwiseConv2D", self.strides, self.dilation_rate)

    def build(self, input_shape):
        self._out_hw, self._pad_top, self._pad_left = place_windows(
            self, input_shape, dilated_span(self.kernel_size, self.dilation_rate), self.strides, "kernel")
        channels = input_shape[-1]
        self.build_kernel_and_bias((*self.kernel_size, channels, self.depth_multiplier),
                                   channels * self.depth_multiplier)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self._out_hw, input_shape[-1] * self.depth_multiplier)

    def _geometry(self):
        """kh, kw (spread), sh, sw, pad_top, pad_left, out_h, out_w: the window kernels' arguments."""
        return (*dilated_span(self.kernel_size, self.dilation_rate), *self.strides, self._pad_top, self._pad_left,
                *self._out_hw)

    def _taps(self, channels):
        """The (spread) kernel as (taps, C, M)."""
        return spread_kernel(self.kernel.value, self.dilation_rate).reshape(-1, channels, self.depth_multiplier)

    def _windows(self, x):
        """im2col of ``x`` as (rows, kh kw, C): row ``r`` is one output pixel's window, cell by cell."""
        cols = kernels.backend().im2col(x, *self._geometry())
        return cols.reshape(len(cols), -1, x.shape[-1])

    def forward(self, x, training=False):
        self.check_input(x)
        windows = self._windows(x)
        taps = self._taps(x.shape[-1])                                              # (kh kw, C, M)
        z = np.einsum("rtc,tcm->rcm", windows, taps).reshape(len(x), *self._output_shape)
        self._x = x if training else None
        return self._activate(z, self.bias.value if self.use_bias else None, training)

    def backward_from_preactivation(self, grad_z):
        channels = self.input_shape[-1]
        g = grad_z.reshape(-1, channels, self.depth_multiplier)                       # (rows, C, M)
        windows = self._windows(self._x)
        grad_taps = np.einsum("rtc,rcm->tcm", windows, g)
        spread_shape = (*dilated_span(self.kernel_size, self.dilation_rate), channels, self.depth_multiplier)
        self.kernel.grad[...] = gather_taps(grad_taps.reshape(spread_shape), self.dilation_rate)
        if self.use_bias:
            self.bias.grad[...] = kernels.backend().bias_gradient(g.reshape(len(g), -1))
        if self.skip_input_gradient:
            return None
        taps = self._taps(channels)
        grad_windows = np.einsum("rcm,tcm->rtc", g, taps).reshape(len(g), -1)
        return kernels.backend().col2im(np.ascontiguousarray(grad_windows), self._x.shape, *self._geometry())

    def get_config(self):
        config = super().get_config()
        for name in ("initializer", "regularizer", "constraint"):
            config[f"depthwise_{name}"] = config.pop(f"kernel_{name}")
        return {**config, "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "dilation_rate": list(self.dilation_rate)}
