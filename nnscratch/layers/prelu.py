"""Parametric ReLU: a leaky ReLU whose slopes below zero are learned."""

import numpy as np

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.layers.base import Layer, format_shape

__all__ = ["PReLU"]


def _shared_axes(shared_axes):
    """Keras's forms: None, one axis, or a list of axes (1 = the first axis after the batch); as a list or None."""
    if shared_axes is None:
        return None
    axes = list(shared_axes) if isinstance(shared_axes, (tuple, list)) else [shared_axes]
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"shared_axes must be None, an int or a list of ints, got {shared_axes!r}")
    if any(a < 1 for a in axes):
        raise ValueError(f"shared_axes count the axes of a batch from 1 (0 is the batch axis, which alpha always "
                         f"shares), got {shared_axes!r}")
    return [int(a) for a in axes]


class PReLU(Layer):
    r"""Parametric ReLU: ``y = x`` where ``x > 0``, else ``alpha * x``, with ``alpha`` learned.

    Shapes: ``x`` (N, d1, ..., dk) -> ``y`` of the same shape. ``alpha`` has
    one slope per input cell of a sample, shape (d1, ..., dk), except along
    ``shared_axes``, where its size is 1 and one slope serves the whole axis
    (``shared_axes=[1, 2]`` on images: one slope per channel, shape (1, 1, C)).
    As Keras computes it, :math:`y = \max(x, 0) - \alpha \max(-x, 0)`.

    The layer is linear in ``x`` on each side of 0 and linear in ``alpha``, so
    with :math:`g = \partial L/\partial y`:

    .. math::
        \frac{\partial L}{\partial x} = g \cdot \begin{cases} 1 & x > 0 \\ \alpha & x < 0 \\ 0 & x = 0 \end{cases},
        \qquad
        \frac{\partial L}{\partial \alpha} = \sum_{\text{batch, shared axes}} g \cdot \min(x, 0)

    (the derivative at exactly 0 is TensorFlow's, from the two ReLUs: 0).
    ``alpha`` broadcasts over the batch and the shared axes, so its gradient
    sums over them.

    Parameters
    ----------
    alpha_initializer : str
        An initializer name; default ``"zeros"`` (Keras's: a plain ReLU to start with).
    alpha_regularizer : str, Regularizer or None
        A penalty on ``alpha`` (:mod:`nnscratch.regularizers`).
    alpha_constraint : str, Constraint or None
        A map applied to ``alpha`` after every optimizer step (:mod:`nnscratch.constraints`;
        ``"non_neg"`` keeps the slopes from turning negative).
    shared_axes : None, int or list of ints
        Axes (1 = the first after the batch axis) along which one slope is shared.
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        initializers.get(alpha_initializer)  # fail early
        self.alpha_initializer = alpha_initializer
        self.shared_axes = _shared_axes(shared_axes)
        self._x = None

    def build(self, input_shape):
        shape = list(input_shape)
        for axis in self.shared_axes or ():
            if axis > len(shape):
                raise ValueError(f"PReLU layer {self.name!r}: shared axis {axis} does not exist in inputs of shape "
                                 f"{format_shape(input_shape)} (axes 1 to {len(shape)})")
            shape[axis - 1] = 1
        self.alpha = self.new_parameter("alpha", initializers.get(self.alpha_initializer)(tuple(shape),
                                                                                         rng.new_generator()),
                                        constraint=self.alpha_constraint)
        # the axes alpha broadcasts over, batch included: where its gradient sums
        self._sum_axes = (0, *(axis for axis in self.shared_axes or ()))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x if training else None
        return np.maximum(x, 0) - self.alpha.value * np.maximum(-x, 0)

    def backward(self, grad_output):
        if self._x is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        x = self._x
        self.alpha.grad[...] = (grad_output * np.minimum(x, 0)).sum(axis=self._sum_axes, keepdims=True)[0]
        slope = np.where(x > 0, 1, np.where(x < 0, self.alpha.value, 0)).astype(grad_output.dtype, copy=False)
        return grad_output * slope

    def weight_regularizers(self):
        return {} if self.alpha_regularizer is None else {"alpha": self.alpha_regularizer}

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": self.alpha_initializer,
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint), "shared_axes": self.shared_axes}
