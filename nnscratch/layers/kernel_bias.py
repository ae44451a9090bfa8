"""What Dense, Conv1D, Conv2D and Conv2DTranspose share: a kernel, an optional bias, and their options."""

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.layers.activated import ActivatedLayer

__all__ = ["KernelBiasLayer"]


class KernelBiasLayer(ActivatedLayer):
    """A layer ``y = f(x * kernel + bias)`` for some product ``*``: the two weights and Keras's options for them.

    ``use_bias``; ``kernel_initializer``, ``bias_initializer`` (Keras names);
    ``kernel_regularizer``, ``bias_regularizer`` (penalties added to the
    training loss, :mod:`nnscratch.regularizers`); ``kernel_constraint``,
    ``bias_constraint`` (maps applied after each optimizer step,
    :mod:`nnscratch.constraints`). The subclass defines the product and
    calls :meth:`build_kernel_and_bias` from its ``build``.
    """

    def __init__(self, activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # fail early
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build_kernel_and_bias(self, kernel_shape, bias_size) -> None:
        """Draw the kernel, then the bias (if any), from one new generator of the library's seed."""
        generator = rng.new_generator()
        self.kernel = self.new_parameter("kernel", initializers.get(self.kernel_initializer)(kernel_shape, generator),
                                         constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.new_parameter("bias", initializers.get(self.bias_initializer)((bias_size,), generator),
                                           constraint=self.bias_constraint)

    def weight_regularizers(self):
        if self.kernel_regularizer is None and self.bias_regularizer is None:  # every training step asks
            return {}
        pairs = (("kernel", self.kernel_regularizer), ("bias", self.bias_regularizer if self.use_bias else None))
        return {name: regularizer for name, regularizer in pairs if regularizer is not None}

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}
