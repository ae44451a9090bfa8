r"""Layer normalization: each sample normalised over its own features, then scaled and shifted."""

import numpy as np

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.layers.base import Layer, format_shape

__all__ = ["LayerNormalization", "normalized_axes", "normalization_arguments"]


def normalized_axes(axis, input_shape, name) -> tuple:
    """Keras's ``axis`` (an int or a list; the batch axis is 0, ``-1`` the last) as sorted axes of a batch, >= 1.

    ``input_shape`` is a sample's shape. The batch axis, an axis out of range
    or a repeated axis is a ValueError naming the layer.
    """
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not axes or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{name}: axis must be an integer or a list of integers, got {axis!r}")
    rank = len(input_shape) + 1
    if any(not -rank <= a < rank or a % rank == 0 for a in axes):
        raise ValueError(f"{name}: axis={axis!r} is not an axis of a sample of inputs of shape "
                         f"{format_shape(tuple(input_shape))} (1 to {rank - 1}, or -1 to {1 - rank}; not the batch "
                         "axis 0)")
    batch_axes = sorted(int(a) % rank for a in axes)
    if len(set(batch_axes)) != len(batch_axes):
        raise ValueError(f"{name}: axis={axis!r} names an axis twice")
    return tuple(batch_axes)


def normalization_arguments(axis, epsilon, name) -> tuple:
    """``(axis, epsilon)`` checked (the axis's form now, its range when built) and as the layer keeps them."""
    normalized_axes(axis, (1,) * 64, name)
    if isinstance(epsilon, bool) or not (isinstance(epsilon, (int, float, np.floating)) and epsilon > 0):
        raise ValueError(f"{name}: epsilon must be a positive number, got {epsilon!r}")
    return (list(axis) if isinstance(axis, (list, tuple)) else int(axis)), float(epsilon)


class LayerNormalization(Layer):
    r"""Normalise each sample over the axes ``axis`` (its features), then scale and shift.

    For one sample and the :math:`M` values :math:`x_i` along the normalised
    axes (the last axis by default; the statistics are the sample's own, in
    training and inference alike, so there is nothing to keep between steps):

    .. math::
        \mu = \frac{1}{M}\sum_i x_i, \quad \sigma^2 = \frac{1}{M}\sum_i (x_i - \mu)^2, \quad
        \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y_i = \gamma_i \hat x_i + \beta_i.

    Backward, with :math:`g = \partial L / \partial y` and
    :math:`\hat g_i = g_i \gamma_i` (every :math:`\hat x_j` depends on every
    :math:`x_i` through :math:`\mu` and :math:`\sigma^2`; docs/backprop.md derives it):

    .. math::
        \frac{\partial L}{\partial x_i} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}
            \Big(\hat g_i - \frac{1}{M}\sum_j \hat g_j - \hat x_i \frac{1}{M}\sum_j \hat g_j \hat x_j\Big),
        \quad \frac{\partial L}{\partial \gamma} = \sum g \hat x, \quad \frac{\partial L}{\partial \beta} = \sum g,

    the last two summed over the batch and the axes that are not normalised.
    Shapes: ``x`` (N, ...) -> ``y`` of the same shape; ``gamma`` and ``beta``
    have the sizes of the normalised axes (Keras's shapes). Training caches
    :math:`\hat x` and :math:`1/\sqrt{\sigma^2 + \epsilon}`.

    Parameters
    ----------
    axis : int or list of int
        As Keras counts them (0 is the batch axis, not allowed; ``-1`` the last).
    epsilon : float > 0
        Added to the variance; 1e-3 as Keras.
    center, scale : bool
        Without ``center`` there is no ``beta`` (0), without ``scale`` no ``gamma`` (1).
    beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint
        As for :class:`~nnscratch.layers.BatchNormalization`.

    Keras 3's deprecated ``rms_scaling=True`` (which scales by the variance,
    not the mean square) is refused: use :class:`~nnscratch.layers.RMSNormalization`.
    A mask passes through unchanged, as Keras.
    """

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if kwargs.pop("rms_scaling", False):
            raise TypeError("LayerNormalization(rms_scaling=True) is deprecated in Keras (it scales by the "
                            "variance, not the root mean square); use RMSNormalization instead")
        super().__init__(**kwargs)
        self.axis, self.epsilon = normalization_arguments(axis, epsilon, "LayerNormalization")
        self.center, self.scale = bool(center), bool(scale)
        for identifier in (beta_initializer, gamma_initializer):
            initializers.get(identifier)  # fail early
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self._xhat = self._inv_std = None

    def build(self, input_shape):
        self._axes = normalized_axes(self.axis, input_shape, f"LayerNormalization layer {self.name!r}")
        rank = len(input_shape) + 1
        self._other_axes = tuple(a for a in range(rank) if a not in self._axes)   # where dgamma, dbeta sum
        shape = tuple(input_shape[a - 1] for a in self._axes)
        self._broadcast = tuple(input_shape[a - 1] if a in self._axes else 1 for a in range(1, rank))
        generator = rng.new_generator()
        if self.scale:
            self.gamma = self.new_parameter("gamma", initializers.get(self.gamma_initializer)(shape, generator),
                                            constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.new_parameter("beta", initializers.get(self.beta_initializer)(shape, generator),
                                           constraint=self.beta_constraint)
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        centered = x - x.mean(axis=self._axes, keepdims=True)
        variance = (centered * centered).mean(axis=self._axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(variance + x.dtype.type(self.epsilon))
        xhat = centered * inv_std
        self._xhat, self._inv_std = (xhat, inv_std) if training else (None, None)
        y = xhat * self.gamma.value.reshape(self._broadcast) if self.scale else xhat
        return y + self.beta.value.reshape(self._broadcast) if self.center else y

    def backward(self, grad_output):
        if self._xhat is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        xhat, g = self._xhat, grad_output
        if self.scale:
            self.gamma.grad[...] = (g * xhat).sum(axis=self._other_axes)
            g = g * self.gamma.value.reshape(self._broadcast)
        if self.center:
            self.beta.grad[...] = grad_output.sum(axis=self._other_axes)
        mean_g = g.mean(axis=self._axes, keepdims=True)
        mean_gx = (g * xhat).mean(axis=self._axes, keepdims=True)
        return self._inv_std * (g - mean_g - xhat * mean_gx)

    def weight_regularizers(self):
        pairs = (("gamma", self.gamma_regularizer if self.scale else None),
                 ("beta", self.beta_regularizer if self.center else None))
        return {name: regularizer for name, regularizer in pairs if regularizer is not None}

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}
