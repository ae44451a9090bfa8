"""Dense (fully connected) layer."""

import numpy as np

from nnscratch import kernels
from nnscratch.layers.kernel_bias import KernelBiasLayer
from nnscratch.layers.base import format_shape

__all__ = ["Dense"]

# Packing the kernel in panels costs about as much as multiplying 10-20
# samples by it, and saves 5-15% of each product after that (float32, Zen 1;
# docs/performance.md, session 19): short passes keep BLAS's product, which
# also spares the packed copy's memory.
PREPARE_FROM_SAMPLES = 512


class Dense(KernelBiasLayer):
    r"""Fully connected layer: ``y = f(x W + b)``.

    Shapes: ``x`` (N, in), kernel ``W`` (in, units) as Keras, ``b`` (units,), ``y`` (N, units).
    As in Keras, a sequence (N, T, in) is multiplied along its last axis:
    each of its N T rows is a sample of the formulas below, and ``y`` is
    (N, T, units) (every step gets the same layer). Images and inputs of more
    axes raise a ValueError at build (a Flatten is almost always missing;
    Keras would multiply along their last axis too).

    Backward, with :math:`g = \partial L / \partial z` (after undoing ``f``):

    .. math::
        \frac{\partial L}{\partial W} = x^T g, \qquad
        \frac{\partial L}{\partial b} = \sum_n g_n, \qquad
        \frac{\partial L}{\partial x} = g W^T

    Inference: during ``predict`` and ``evaluate`` (one pass over fixed
    weights, :meth:`begin_inference`) the product may be a
    ``kernels.backend().FixedProduct``, which keeps the kernel packed in
    panels of 16 columns, each a contiguous block (packed in the pass's
    first batch), and also adds the bias and applies the activation (a
    10-unit softmax too): faster than BLAS's product where
    ``fixed_product_pays`` says so (``kernels.set_dense_product`` or
    ``NNSCRATCH_DENSE_PRODUCT`` choose otherwise), and the same up to float
    rounding.
    Training always multiplies ``x @ W`` with BLAS.

    Parameters
    ----------
    units : int
    activation : str or None
        ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"linear"`` or None.
    use_bias : bool
    kernel_initializer, bias_initializer : str
        Keras names (``"glorot_uniform"``, ``"he_normal"``, ``"zeros"``, ...).
    kernel_regularizer, bias_regularizer : str, Regularizer or None
        A penalty on the kernel or the bias added to the training loss
        (``"l1"``, ``"l2"``, ``"l1_l2"`` or an instance such as
        ``nnscratch.regularizers.L2(1e-4)``; see :mod:`nnscratch.regularizers`).
        It changes no forward or backward pass: the training step adds its
        gradient to ``.grad`` after backward (:meth:`add_regularization_gradients`).
    kernel_constraint, bias_constraint : str, Constraint or None
        A map applied to the kernel or the bias after every optimizer step
        (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"`` or an
        instance such as ``nnscratch.constraints.MaxNorm(3)``; see :mod:`nnscratch.constraints`).
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self._product = None  # x -> f(x W + b) by W packed in panels, only during a pass of inference

    def build(self, input_shape):
        if len(input_shape) > 2:
            raise ValueError(
                f"Dense layer {self.name!r} expects inputs of shape (None, features) or sequences (None, steps, "
                f"features), got {format_shape(input_shape)}; add a Flatten() layer before it"
            )
        self.build_kernel_and_bias((input_shape[-1], self.units), self.units)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def begin_inference(self, samples=None):
        if not self.built or (samples is not None and samples < PREPARE_FROM_SAMPLES):
            return
        twin, kernel = kernels.backend(), self.kernel.value
        if self.keep_logits and self.activation == "sigmoid":  # the product would not give the logits
            return
        if self.activation in ("log_softmax", "sparsemax"):  # whole rows, which the product kernel does not apply
            return
        if kernels.use_fixed_product(*kernel.shape):
            bias = self.bias.value if self.use_bias else None
            self._product = twin.FixedProduct(kernel, bias, self.activation)  # packs W in the first batch

    def end_inference(self):
        self._product = None

    def forward(self, x, training=False):
        self.check_input(x)
        rows = x.reshape(-1, x.shape[-1])           # (N, in) itself, or the N ... rows of (N, ..., in)
        self._x = rows if training else None
        shape = (*x.shape[:-1], self.units)
        if self._product is None or training:
            z = (rows @ self.kernel.value).reshape(shape)
            return self._activate(z, self.bias.value if self.use_bias else None, training)
        y = self._product(rows).reshape(shape)      # (the product keeps a softmax's logits as it goes)
        return self._keep(y, training, self._product.logits)

    def backward_from_preactivation(self, grad_z):
        rows = grad_z.reshape(-1, self.units)
        np.matmul(self._x.T, rows, out=self.kernel.grad)
        if self.use_bias:
            self.bias.grad[...] = kernels.backend().bias_gradient(rows)
        if self.skip_input_gradient:
            return None
        return (rows @ self.kernel.value.T).reshape(*grad_z.shape[:-1], self._x.shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}
