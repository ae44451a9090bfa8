"""2-D convolution over NHWC images, computed as im2col + one matrix product."""

import numpy as np

from nnscratch import activations, kernels
from nnscratch.layers.kernel_bias import KernelBiasLayer
from nnscratch.layers.conv_utils import (check_dilation, check_groups, dilated_span, gather_taps, grouped_conv_backward,
                                         grouped_conv_forward, normalize_padding, normalize_tuple, place_windows,
                                         spread_kernel)

__all__ = ["Conv2D"]

# An im2col matrix up to this size is kept from the forward pass for the kernel
# gradient (for a one-channel first layer it is small, 1.8 MB at batch 64, but slow
# to build: a copy of 9 numbers per row); larger ones are rebuilt block by block.
KEEP_COLS_BYTES = 4 << 20
# With this many input channels or fewer (grayscale, RGB) inference unfolds into
# a column-major matrix: each window cell's values for all output pixels in one
# contiguous row, which the fast kernel fills with whole image rows at a time.
COLUMN_MAJOR_CHANNELS = 3
# ... and training too when True: faster, but the first layer's results change by
# rounding, and the main job's seed-42 run then stopped early at 99.31% test
# accuracy (docs/performance-history.md, session 7), so training keeps the row-major
# blocks whose results docs/results.md reports.
COLUMN_MAJOR_IN_TRAINING = False


class Conv2D(KernelBiasLayer):
    r"""2-D convolution (cross-correlation, as Keras): ``y = f(conv(x, K) + b)``.

    Shapes: ``x`` (N, H, W, C), kernel ``K`` (kh, kw, C, filters) as Keras,
    ``b`` (filters,), ``y`` (N, H', W', filters).

    im2col unfolds every window of ``x`` into a row of ``X`` (N·H'·W', kh·kw·C);
    with ``K`` reshaped to a matrix (kh·kw·C, filters) the convolution is the
    Dense layer's product ``z = X K`` (kernel ``conv2d_forward``). So backward
    is Dense's, plus a fold (kernel ``conv2d_backward``):

    .. math::
        \frac{\partial L}{\partial K} = X^T g, \qquad
        \frac{\partial L}{\partial b} = \sum g, \qquad
        \frac{\partial L}{\partial x} = \mathrm{col2im}(g K^T)

    where col2im, the adjoint of im2col, adds each window's gradient back
    into the pixels it was copied from.

    3x3 stride-1 layers with at least 8 input channels and an output of at
    least 8x8 compute the same three products by Winograd F(2x2, 3x3)
    instead (2.25x fewer multiplications, equal up to rounding), or
    F(4x4, 3x3) with ``set_conv_algorithm("winograd4")`` (from 7x7 outputs;
    ``"winograd-mixed"`` only for outputs of 7x7 to 11x11); see
    ``kernels.set_conv_algorithm`` and docs/kernels.md.

    ``kernel_regularizer`` and ``bias_regularizer`` (a name such as ``"l2"``,
    a :mod:`nnscratch.regularizers` instance or None) add a penalty on the
    kernel or bias to the training loss, as Dense's do; ``kernel_constraint``
    and ``bias_constraint`` (:mod:`nnscratch.constraints`) map them after every
    optimizer step, as Dense's do.

    ``dilation_rate = (dh, dw)`` (default 1) spreads the kernel's taps
    ``dh`` rows and ``dw`` columns apart: :math:`z_{n,r,s,f} = \sum_{i,j,c}
    x_{n,\ r s_h - p_t + i d_h,\ s s_w - p_l + j d_w,\ c} K_{i,j,c,f} + b_f`.
    As :class:`~nnscratch.layers.Conv1D`, the layer convolves with the kernel
    spread out to ``((kh - 1) dh + 1, (kw - 1) dw + 1)`` taps, zeros between
    (up to ``dh dw`` times the work), and each tap's gradient is that of its
    place in the spread kernel. As in Keras, a dilation above 1 needs strides of 1.

    ``groups = G`` (default 1) splits the input channels and the filters into
    G groups, as Keras's: group ``g``'s filters see only its channels, the
    kernel is (kh, kw, C/G, filters), and each group is a convolution of its
    own, :math:`z_{\dots, g F_g + f} = \sum_{i,j,c} x_{\dots, g C_g + c}
    K_{i,j,c,g F_g + f}` (:math:`C_g = C/G`, :math:`F_g = F/G`). One im2col
    serves all groups; the product and its backward
    (:func:`~nnscratch.layers.conv_utils.grouped_conv_forward`) are the plain
    layer's, block by block. A grouped layer runs no fast
    fused path (Winograd, the batch-norm folding, the pooling fusion).
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
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        check_dilation("Conv2D", self.strides, self.dilation_rate)
        self.groups = check_groups("Conv2D", groups, self.filters)

    def build(self, input_shape):
        self._out_hw, self._pad_top, self._pad_left = place_windows(
            self, input_shape, self._span(), self.strides, "kernel")
        if input_shape[-1] % self.groups:
            raise ValueError(f"Conv2D layer {self.name!r}: the number of input channels ({input_shape[-1]}) must be "
                             f"evenly divisible by the number of groups ({self.groups})")
        self.build_kernel_and_bias((*self.kernel_size, input_shape[-1] // self.groups, self.filters), self.filters)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self._out_hw, self.filters)

    def _span(self) -> tuple:
        """Rows and columns one window covers: ``(k - 1) d + 1`` each (the kernel size without dilation)."""
        return dilated_span(self.kernel_size, self.dilation_rate)

    def _kernel_4d(self):
        """The kernel the window kernels use: ``K`` itself, or spread out with zeros between its taps if dilated."""
        return spread_kernel(self.kernel.value, self.dilation_rate)

    def _geometry(self):
        """Arguments the window kernels share: kh, kw, sh, sw, pad_top, pad_left, out_h, out_w (kh, kw spread)."""
        return (*self._span(), *self.strides, self._pad_top, self._pad_left, *self._out_hw)

    def forward(self, x, training=False, affine=None):
        """``f(conv(x, K) + b)``; ``affine = (scale, shift, relu)`` (inference only) also applies the
        inference-mode BatchNormalization after this layer in the same sweep (``Model`` passes
        ``bn.inference_affine()``)."""
        self.check_input(x)
        if affine is not None and (training or self.activation in activations.ROW_WISE or self.groups > 1):
            raise ValueError(f"layer {self.name!r}: affine= is for inference with an elementwise activation and one "
                             "group")
        self._x = x if training else None
        if self.groups > 1:
            z = grouped_conv_forward(x, self._kernel_4d(), self._geometry(), self.groups)
            return self._activate(z, self.bias.value if self.use_bias else None, training).reshape(
                x.shape[0], *self._out_hw, self.filters)
        self._cols = self._new_cols(x, training)
        bias = self.bias.value if self.use_bias else None
        if self._activates_after_product(training):  # softmax: whole rows; gelu, mish, ... keep z: after
            z = self._convolve(x)  # (N*H'*W', filters)
            y = self._activate(z, bias, training)
        else:  # the kernel adds the bias and applies f block by block, while in cache
            y = self._keep(self._convolve(x, bias, self.activation, affine), training)
        if not training:
            self._cols = None
        return y.reshape(x.shape[0], *self._out_hw, self.filters)

    def forward_pooled(self, x, window):
        """Training forward, then max pooling of ``relu(conv(x, K) + b)``, without keeping the full output.

        ``window`` is ``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``
        (``MaxPooling2D.window()``). Returns ``(pooled, argmax)``, bit for bit
        what ``forward(x, True)`` followed by the pooling gives. A ``Model``
        calls it for a ReLU layer whose output only a MaxPooling2D reads, when
        that pooling's backward also takes the ReLU's
        (``MaxPooling2D.backward(grad, relu=True)``): backward then continues
        from ``backward_from_preactivation`` and never needs this layer's
        output, so none is kept (``backward`` raises).
        """
        self.check_input(x)
        if self.activation != "relu" or self.groups > 1:
            raise ValueError(f"layer {self.name!r}: forward_pooled needs activation='relu' and one group, got "
                             f"{self.activation!r} and {self.groups}")
        self._x = x
        self._cols = self._new_cols(x, True)
        self._y = None  # the pooling keeps the window maxima, all the ReLU's backward needs
        bias = self.bias.value if self.use_bias else None
        if self._winograd():
            z = self._convolve(x, bias, "relu").reshape(x.shape[0], *self._out_hw, self.filters)
            return kernels.backend().maxpool2d_forward(z, *window)
        return kernels.backend().conv2d_maxpool_forward(x, self._kernel_4d(), *self._geometry(), window, bias=bias,
                                                        activation="relu", cols_out=self._cols)

    def _winograd(self) -> int:
        """The Winograd output tile this layer uses (2 or 4), or 0 for im2col (see ``kernels.set_conv_algorithm``)."""
        if self.dilation_rate != (1, 1) or self.groups > 1:   # a dilated kernel goes spread out through im2col
            return 0
        return kernels.winograd_backend().winograd_tile(self.kernel.value.shape, self.strides, self._out_hw,
                                                        kernels.get_conv_algorithm())

    def _new_cols(self, x, training):
        """An empty im2col matrix for the forward pass to fill, or None where the kernel unfolds block by block.

        Kept for backward when training (up to ``KEEP_COLS_BYTES``); with few
        channels (``COLUMN_MAJOR_CHANNELS``) it is column-major and used for
        inference too, where unfolding column by column is the faster way (in
        training only with ``COLUMN_MAJOR_IN_TRAINING``).
        """
        if self._winograd():
            return None
        shape = (x.shape[0] * self._out_hw[0] * self._out_hw[1], int(np.prod(self._span())) * x.shape[-1])
        column_major = x.shape[-1] <= COLUMN_MAJOR_CHANNELS and (COLUMN_MAJOR_IN_TRAINING or not training)
        if shape[0] * shape[1] * x.itemsize > KEEP_COLS_BYTES or not (training or column_major):
            return None
        return np.empty(shape, dtype=x.dtype, order="F" if column_major else "C")

    def _convolve(self, x, bias=None, activation="linear", affine=None):
        """``f(conv(x, K) + b)`` as (N*H'*W', filters), by im2col + GEMM or by Winograd."""
        tile = self._winograd()
        if tile:
            return kernels.winograd_backend().winograd_conv2d_forward(
                x, self.kernel.value, self._pad_top, self._pad_left, *self._out_hw, bias=bias, activation=activation,
                tile=tile, affine=affine)
        return kernels.backend().conv2d_forward(x, self._kernel_4d(), *self._geometry(), bias=bias,
                                                activation=activation, cols_out=self._cols, affine=affine)

    def backward(self, grad_output):
        return super().backward(grad_output.reshape(-1, self.filters))

    def backward_from_preactivation(self, grad_z):
        grad_z = grad_z.reshape(-1, self.filters)
        if self.use_bias:
            self.bias.grad[...] = kernels.backend().bias_gradient(grad_z)
        if self.groups > 1:
            grad_kernel, grad_x = grouped_conv_backward(self._x, grad_z, self._kernel_4d(), self._geometry(),
                                                        self.groups, input_gradient=not self.skip_input_gradient)
            self.kernel.grad[...] = gather_taps(grad_kernel, self.dilation_rate)
            return grad_x
        tile = self._winograd()
        if not tile:
            grad_kernel, grad_x = kernels.backend().conv2d_backward(
                self._x, grad_z, self._kernel_4d(), *self._geometry(), input_gradient=not self.skip_input_gradient,
                cols=self._cols)
            self.kernel.grad[...] = gather_taps(grad_kernel, self.dilation_rate)  # the taps' places
            return grad_x
        winograd = kernels.winograd_backend()
        self.kernel.grad[...] = winograd.winograd_conv2d_kernel_gradient(
            self._x, grad_z, self._pad_top, self._pad_left, *self._out_hw, tile=tile)
        if self.skip_input_gradient:
            return None
        # stride 1: dL/dx is the correlation of the gradient with the kernel turned
        # by 180 degrees (channels and filters swapped), padded by 2 - pad
        n, h, w, _ = self._x.shape
        turned = np.ascontiguousarray(self.kernel.value[::-1, ::-1].transpose(0, 1, 3, 2))
        return winograd.winograd_conv2d_forward(
            grad_z.reshape(n, *self._out_hw, self.filters), turned, 2 - self._pad_top, 2 - self._pad_left,
            h, w, tile=tile).reshape(self._x.shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "groups": self.groups}
