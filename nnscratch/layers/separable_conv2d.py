"""SeparableConv2D: a depthwise convolution followed by a 1x1 convolution across the channels."""

from nnscratch.layers.base import Layer
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.depthwise_conv2d import DepthwiseConv2D

__all__ = ["SeparableConv2D"]


class SeparableConv2D(Layer):
    r"""``y = f(pointwise(depthwise(x)) + b)``: Keras's depthwise-separable convolution.

    A :class:`~nnscratch.layers.DepthwiseConv2D` without bias (the
    ``depthwise_kernel``, (kh, kw, C, M)) filters each channel on its own;
    a 1x1 :class:`~nnscratch.layers.Conv2D` (the ``pointwise_kernel``, (1, 1,
    C M, filters), with the bias and the activation) then mixes the channels.
    Far fewer weights and multiply-adds than a Conv2D of the same size:
    kh kw C M + C M filters against kh kw C filters. Backward is the two
    layers' backward in reverse order (the chain rule through a composition);
    the wrapper holds no arithmetic of its own.

    Parameters
    ----------
    filters, kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias
        As Keras (``dilation_rate`` is the depthwise convolution's, as
        :class:`~nnscratch.layers.DepthwiseConv2D`).
    depthwise_*, pointwise_*, bias_* (initializer, regularizer, constraint)
        Each kernel's options, Keras's names.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1,
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.depthwise = DepthwiseConv2D(kernel_size, strides=strides, padding=padding,
                                         depth_multiplier=depth_multiplier, dilation_rate=dilation_rate,
                                         use_bias=False, depthwise_initializer=depthwise_initializer,
                                         depthwise_regularizer=depthwise_regularizer,
                                         depthwise_constraint=depthwise_constraint, name=f"{self.name}_depthwise")
        self.pointwise = Conv2D(filters, 1, activation=activation, use_bias=use_bias,
                                kernel_initializer=pointwise_initializer, bias_initializer=bias_initializer,
                                kernel_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
                                kernel_constraint=pointwise_constraint, bias_constraint=bias_constraint,
                                name=f"{self.name}_pointwise")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.pointwise.build(self.depthwise.output_shape[1:])
        self.params["depthwise_kernel"] = self.depthwise.kernel
        self.params["pointwise_kernel"] = self.pointwise.kernel
        if self.pointwise.use_bias:
            self.params["bias"] = self.pointwise.bias
        self.trainable = self.trainable     # the wrapper's switch freezes both kernels
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.pointwise.output_shape[1:]

    def forward(self, x, training=False):
        self.check_input(x)
        return self.pointwise.forward(self.depthwise.forward(x, training), training)

    def backward(self, grad_output):
        self.depthwise.skip_input_gradient = self.skip_input_gradient
        return self.depthwise.backward(self.pointwise.backward(grad_output))

    def weight_regularizers(self):
        names = {"kernel": "pointwise_kernel", "bias": "bias"}
        regularizers = {"depthwise_kernel": r for r in self.depthwise.weight_regularizers().values()}
        regularizers.update({names[name]: r for name, r in self.pointwise.weight_regularizers().items()})
        return regularizers

    def get_config(self):
        depthwise, pointwise = self.depthwise.get_config(), self.pointwise.get_config()
        return {**super().get_config(), "filters": pointwise["filters"], "kernel_size": depthwise["kernel_size"],
                "strides": depthwise["strides"], "padding": depthwise["padding"],
                "depth_multiplier": depthwise["depth_multiplier"], "dilation_rate": depthwise["dilation_rate"],
                "activation": pointwise["activation"], "use_bias": pointwise["use_bias"],
                **{f"depthwise_{name}": depthwise[f"depthwise_{name}"]
                   for name in ("initializer", "regularizer", "constraint")},
                **{f"pointwise_{name}": pointwise[f"kernel_{name}"]
                   for name in ("initializer", "regularizer", "constraint")},
                **{f"bias_{name}": pointwise[f"bias_{name}"] for name in ("initializer", "regularizer", "constraint")}}
