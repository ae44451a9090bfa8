"""Stand-alone activation layers: Activation(name), ReLU(), LeakyReLU(), ELU() and Softmax()."""

import numbers
import warnings

import numpy as np

from nnscratch import activations
from nnscratch.layers.activated import ActivatedLayer
from nnscratch.layers.base import format_shape

__all__ = ["Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"]


def _number(value, name, layer):
    """``value`` as a float: a ValueError for None (as Keras), a TypeError for what is not a number."""
    if value is None:
        raise ValueError(f"{layer}'s {name} cannot be None; expected a number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer}'s {name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{layer}'s {name} must be finite, got {value!r}")
    return value


#: The ``activation`` of a ReLU layer with Keras's general formula (a threshold, another max_value, ...).
GENERAL_RELU = "relu_with"


def _non_negative(value, name, layer):
    value = _number(value, name, layer)
    if value < 0:
        raise ValueError(f"{layer}'s {name} cannot be negative, got {value!r}")
    return value


class Activation(ActivatedLayer):
    r"""Apply an activation function: ``y = f(x)``, any input shape.

    ``f`` is any name of :mod:`nnscratch.activations` (Keras's): ``"relu"``
    (:math:`\max(x, 0)`), ``"sigmoid"`` (:math:`1/(1+e^{-x})`), ``"tanh"``,
    ``"softmax"`` (over the last axis), ``"linear"``, ``"elu"``, ``"selu"``,
    ``"softplus"``, ``"softsign"``, ``"leaky_relu"`` (slope 0.2), ``"gelu"``,
    ``"silu"`` (or ``"swish"``), ``"hard_sigmoid"``, ``"exponential"``,
    ``"relu6"``, ``"celu"``, ``"hard_silu"`` (or ``"hard_swish"``),
    ``"hard_tanh"``, ``"log_sigmoid"``, ``"mish"``, ``"soft_shrink"``,
    ``"hard_shrink"``, ``"sparse_plus"``, ``"sparse_sigmoid"``,
    ``"squareplus"``, ``"tanh_shrink"``. Backward multiplies by the
    derivative, computed from the output: relu :math:`[y>0]`, sigmoid
    :math:`y(1-y)`, tanh :math:`1-y^2`, elu :math:`y + \alpha` where
    :math:`y \le 0`, ... (the kernel ``activation_backward`` lists them all);
    softmax :math:`y \odot (g - \langle g, y\rangle)`. gelu, silu, mish,
    hard_silu, tanh_shrink and hard_tanh need the input itself, which a
    training forward keeps (a reference, not a copy: the input is not changed
    before backward).
    """

    #: A mask passes through unchanged (as Keras; nnscratch.models.masking).
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)

    def forward(self, x, training=False):
        self.check_input(x)
        return self._activate(x.copy(), None, training, preactivation=x)

    def backward_from_preactivation(self, grad_z):
        return grad_z


class _ParametricActivation(Activation):
    """An Activation layer configured by its own Keras arguments: ``get_config`` gives them, not the name."""

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


class ReLU(_ParametricActivation):
    r"""Rectified linear unit, ``y = max(x, 0)``; the gradient at exactly 0 is taken as 0.

    Keras's arguments; the combinations nnscratch has a kernel for are named
    activations (so backward again needs only the output, and the layer may
    be fused into a batch norm or a pooling before it):

    * ``ReLU()``: ``"relu"``;
    * ``ReLU(negative_slope=a)``: ``"leaky_relu"`` with slope ``a``,
      :math:`y = x` for :math:`x > 0`, else :math:`a x` (as :class:`LeakyReLU`);
    * ``ReLU(max_value=6)``: ``"relu6"``, :math:`\min(\max(x, 0), 6)`.

    Any other ``max_value``, a ``threshold`` :math:`\theta > 0`, or ``max_value``
    with ``negative_slope`` is Keras's general formula
    (:func:`nnscratch.activations.relu_with`): :math:`\min(x, m)` above
    :math:`\theta`, :math:`a (x - \theta)` at or below, and backward
    multiplies by its slope read from the output (1, 0 where clipped at
    :math:`m`, :math:`a` below :math:`\theta`); such a layer takes part in no
    fusion (its ``activation`` is ``"relu_with"``). Negative values are refused, as in Keras.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        if max_value is not None:
            max_value = _non_negative(max_value, "max_value", "ReLU")
        negative_slope = _non_negative(negative_slope, "negative_slope", "ReLU")
        threshold = _non_negative(threshold, "threshold", "ReLU")
        named = threshold == 0 and (max_value is None or (max_value == 6 and negative_slope == 0))
        name = "relu6" if max_value is not None else "leaky_relu" if negative_slope else "relu"
        super().__init__(name if named else "linear", **kwargs)
        if not named:
            self.activation = GENERAL_RELU      # (not a name of nnscratch.activations: forward and backward below)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold
        self._alpha = negative_slope if self.activation == "leaky_relu" else None

    def forward(self, x, training=False):
        if self.activation != GENERAL_RELU:
            return super().forward(x, training)
        self.check_input(x)
        y = activations.relu_with(x, self.negative_slope, self.max_value, self.threshold)
        self._y = y if training else None
        return y

    def backward(self, grad_output):
        if self.activation != GENERAL_RELU:
            return super().backward(grad_output)
        if self._y is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        return grad_output * activations.relu_with_slope(self._y, self.negative_slope, self.max_value)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_ParametricActivation):
    r"""Leaky rectified linear unit: :math:`y = x` for :math:`x > 0`, else :math:`a x`.

    Backward, from the output: :math:`\partial L / \partial x = g` where
    :math:`y > 0`, else :math:`a g` (at exactly 0 the slope :math:`a`, as
    TensorFlow's gradient).

    Parameters
    ----------
    negative_slope : float
        :math:`a \ge 0`. Keras's layer default is 0.3 (the *function*
        ``activation="leaky_relu"`` uses 0.2). Keras 2's name ``alpha`` is
        accepted with a warning, as Keras 3 does.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        negative_slope = _non_negative(negative_slope, "negative_slope", "LeakyReLU")
        super().__init__("leaky_relu", **kwargs)
        self.negative_slope = self._alpha = negative_slope

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ParametricActivation):
    r"""Exponential linear unit: :math:`y = x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    Backward, from the output: :math:`g` where :math:`y > 0`, else
    :math:`g (y + \alpha)`, since :math:`\alpha e^x = y + \alpha`.

    Parameters
    ----------
    alpha : float
        :math:`\alpha \ge 0`, default 1.0 as Keras. Keras also takes a negative
        ``alpha``; nnscratch refuses it (ValueError): the output below 0 would
        then be positive, and the derivative could no longer be read from it.
    """

    def __init__(self, alpha=1.0, **kwargs):
        alpha = _number(alpha, "alpha", "ELU")
        if alpha < 0:
            raise ValueError(f"ELU's alpha must be >= 0 in nnscratch (backward reads the derivative from the "
                             f"output, which a negative alpha makes ambiguous), got {alpha!r}")
        super().__init__("elu", **kwargs)
        self.alpha = self._alpha = alpha

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_ParametricActivation):
    r"""Softmax along one axis: :math:`y_k = e^{x_k} / \sum_j e^{x_j}` over that axis.

    Backward: :math:`\partial L / \partial x = y \odot (g - \sum_k g_k y_k)`,
    the sum along the same axis. Along the last axis (the default) this is
    ``Activation("softmax")``, which a cross-entropy loss fuses with; along
    another axis the layer moves that axis last, applies the same kernel and
    moves it back.

    Parameters
    ----------
    axis : int
        Keras's convention, the batch axis counted: -1 (the default) is the
        last, 1 the first axis of a sample. The batch axis itself (0) is
        refused, and so are several axes (Keras's list of axes).
    """

    mask_refusal = ("Keras's Softmax layer leaves the masked entries out of its sums, which nnscratch does not "
                    "support (use Activation(\"softmax\"), which ignores the mask)")

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax's axis must be one integer, got {axis!r} (several axes are not supported)")
        super().__init__("softmax", **kwargs)
        self.axis = int(axis)
        self._axis = None  # the axis of a batch, >= 1, once built

    def build(self, input_shape):
        rank = len(input_shape) + 1  # with the batch axis
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"Softmax layer {self.name!r}: axis={self.axis} is not an axis of a sample of inputs of "
                             f"shape {format_shape(tuple(input_shape))} (1 to {rank - 1}, or -1 to {1 - rank}; the "
                             "batch axis 0 is not supported)")
        self._axis = self.axis % rank
        super().build(input_shape)

    def _last(self, x):
        return self._axis == x.ndim - 1

    def forward(self, x, training=False):
        if self._axis is None or self._last(x):
            return super().forward(x, training)
        self.check_input(x)
        moved = activations.forward(np.moveaxis(x, self._axis, -1), None, "softmax")   # a new array
        y = np.ascontiguousarray(np.moveaxis(moved, -1, self._axis))
        self.logits, self._z = None, None
        self._y = y if training else None
        return y

    def backward(self, grad_output):
        if self._y is None or self._last(self._y):
            return super().backward(grad_output)
        moved = activations.backward(np.moveaxis(grad_output, self._axis, -1), np.moveaxis(self._y, self._axis, -1),
                                     "softmax")
        return np.ascontiguousarray(np.moveaxis(moved, -1, self._axis))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
