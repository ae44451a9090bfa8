"""Activation functions by name, forward and backward.

The names are Keras 3's (``keras.activations``). The elementwise ones run in a
fused kernel together with the bias add (``kernels.backend().bias_activation``,
whose docstring lists every formula); their derivative is computed from the
output ``y`` (``relu``: ``[y > 0]``, ``sigmoid``: ``y (1 - y)``, ``elu``:
``y + alpha`` below 0, ...), except for ``gelu``, ``silu``, ``mish``,
``hard_silu`` and ``tanh_shrink``, whose derivative is not a function of ``y``
(they are not one-to-one, or not invertible in closed form), and ``hard_tanh``
(whose slope at ``z = -1, 1`` is TensorFlow's, 1, while ``y`` is also -1 or 1
beyond): backward needs their pre-activation ``z``, which a layer keeps only
when training (see :func:`needs_preactivation`). ``"swish"`` is another name of
``"silu"`` and ``"hard_swish"`` of ``"hard_silu"``, as in Keras. ``celu``,
``soft_shrink``, ``hard_shrink`` and ``squareplus`` have Keras's default
parameters (1, 0.5, 0.5, 4): a name cannot give others. ``softmax`` works on
the last axis:

.. math:: y_k = e^{z_k} / \\sum_j e^{z_j}, \\qquad
          \\frac{\\partial L}{\\partial z} = y \\odot (g - \\sum_k g_k y_k)

where ``g = dL/dy``. When softmax feeds a cross-entropy loss the model skips
this Jacobian and uses the fused gradient ``(p - t) / N`` instead (``N`` samples).
``log_softmax``, its logarithm, also works on the last axis:

.. math:: y_k = z_k - \\log \\sum_j e^{z_j}, \\qquad
          \\frac{\\partial L}{\\partial z} = g - e^{y} \\sum_k g_k

(:math:`e^y` is the softmax); no loss fuses with it.

``elu`` and ``leaky_relu`` take a parameter, ``alpha`` here (elu's ``alpha``,
leaky_relu's ``negative_slope``): by name it is Keras's default (1.0 and 0.2);
the layers ``ELU(alpha)``, ``LeakyReLU(negative_slope)`` and
``ReLU(negative_slope=...)`` pass their own.
"""

import numpy as np

from nnscratch import kernels
from nnscratch.kernels.reference import ELEMENTWISE_ACTIVATIONS, NEEDS_PREACTIVATION

__all__ = ["NAMES", "ALIASES", "ROW_WISE", "get", "needs_preactivation", "forward", "backward", "softmax",
           "log_softmax"]

NAMES = ELEMENTWISE_ACTIVATIONS + ("softmax", "log_softmax")
#: The activations of whole rows (the last axis), not of each number alone: a layer applies them after its product.
ROW_WISE = ("softmax", "log_softmax")
#: Other names Keras accepts for the same function; ``get`` returns the name Keras saves in a config.
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def get(name) -> str:
    """Validate an activation name (None means ``"linear"``) and return it (``"swish"`` gives ``"silu"``)."""
    if name is None:
        return "linear"
    if isinstance(name, str) and name.lower() in ALIASES:
        return ALIASES[name.lower()]
    if not isinstance(name, str) or name.lower() not in NAMES:
        raise ValueError(f"unknown activation {name!r}; expected one of {NAMES + tuple(ALIASES)}")
    return name.lower()


def needs_preactivation(name: str) -> bool:
    """Whether backward through activation ``name`` needs its pre-activation ``z`` (gelu, silu, ...), not only ``y``."""
    return name in NEEDS_PREACTIVATION


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - log(sum(exp(z)))`` over the last axis, stably: the largest value is taken out first."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def forward(z: np.ndarray, bias, name: str, alpha=None) -> np.ndarray:
    """Return ``f(z + bias)``; ``z`` may be overwritten (it is a fresh product).

    ``alpha``: the parameter of ``elu`` or ``leaky_relu`` (None: Keras's default).
    """
    if name == "softmax":
        return kernels.backend().bias_softmax(z, bias)
    if name == "log_softmax":
        return log_softmax(z if bias is None else z + bias)
    return kernels.backend().bias_activation(z, bias, name, alpha)


def backward(grad_y: np.ndarray, y: np.ndarray, name: str, z=None, alpha=None) -> np.ndarray:
    """Return dL/dz from dL/dy and the activation's output ``y`` (gelu, silu, ...: from the pre-activation ``z``)."""
    if name == "softmax":
        return y * (grad_y - (grad_y * y).sum(axis=-1, keepdims=True))
    if name == "log_softmax":
        return grad_y - np.exp(y) * grad_y.sum(axis=-1, keepdims=True)
    return kernels.backend().activation_backward(grad_y, y, name, z, alpha)

