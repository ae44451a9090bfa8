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

``sparsemax`` (Martins and Astudillo, 2016), also on the last axis, is the
Euclidean projection of ``z`` onto the probability simplex: like softmax its
outputs are >= 0 and sum to 1, but most of them are exactly 0. With
:math:`\\tau` the threshold at which the kept values sum to 1 and
:math:`S = \\{k: y_k > 0\\}` the support,

.. math:: y_k = \\max(z_k - \\tau, 0), \\qquad
          \\frac{\\partial L}{\\partial z_k} = [k \\in S]\\,\\Big(g_k - \\frac{1}{|S|}\\sum_{j \\in S} g_j\\Big)

(docs/backprop.md, section 6, derives both); the support is read from ``y``.

``elu`` and ``leaky_relu`` take a parameter, ``alpha`` here (elu's ``alpha``,
leaky_relu's ``negative_slope``): by name it is Keras's default (1.0 and 0.2);
the layers ``ELU(alpha)``, ``LeakyReLU(negative_slope)`` and
``ReLU(negative_slope=...)`` pass their own.
"""

import numpy as np

from nnscratch import kernels
from nnscratch.kernels.reference import ELEMENTWISE_ACTIVATIONS, NEEDS_PREACTIVATION

__all__ = ["NAMES", "ALIASES", "ROW_WISE", "get", "needs_preactivation", "forward", "backward", "softmax",
           "log_softmax", "sparsemax", "relu_with", "relu_with_slope"]

NAMES = ELEMENTWISE_ACTIVATIONS + ("softmax", "log_softmax", "sparsemax")
#: The activations of whole rows (the last axis), not of each number alone: a layer applies them after its product.
ROW_WISE = ("softmax", "log_softmax", "sparsemax")
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


def sparsemax(z: np.ndarray) -> np.ndarray:
    r"""The projection of each row (the last axis) onto the probability simplex: ``max(z - tau, 0)``.

    Sorted in decreasing order, :math:`z_{(1)} \ge z_{(2)} \ge \dots`, the
    support is the first :math:`k` values with :math:`1 + k z_{(k)} > \sum_{j \le k} z_{(j)}`
    (the :math:`k`-th value still lies above the threshold the first :math:`k`
    would give), and :math:`\tau = (\sum_{j \le k} z_{(j)} - 1) / k`.
    """
    ordered = -np.sort(-z, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1)
    ranks = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    kept = 1 + ranks * ordered > cumulative                      # True for the first k, then False
    k = kept.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumulative, k - 1, axis=-1) - 1) / k.astype(z.dtype)
    return np.maximum(z - tau, 0)


def relu_with(x: np.ndarray, negative_slope=0.0, max_value=None, threshold=0.0) -> np.ndarray:
    r"""Keras's ReLU with all its arguments: :math:`\min(x, m)` above :math:`\theta`, else :math:`a (x - \theta)`.

    As ``keras.activations.relu``: the positive part :math:`x\,[x > \theta]`,
    clipped to :math:`[0, m]` (``max_value``), less :math:`a \max(\theta - x, 0)`
    (``negative_slope``). With :math:`\theta > 0` it jumps by :math:`\theta` at
    :math:`x = \theta`. ``ReLU()`` layers with the named cases (``relu``,
    ``relu6``, ``leaky_relu``) use the fused kernels instead.
    """
    y = np.where(x > threshold, x, 0).astype(x.dtype, copy=False)
    if max_value is not None:
        y = np.clip(y, 0, max_value)
    if negative_slope:
        y = y - x.dtype.type(negative_slope) * np.maximum(threshold - x, 0)
    return y


def relu_with_slope(y: np.ndarray, negative_slope=0.0, max_value=None) -> np.ndarray:
    r"""The derivative of :func:`relu_with`, read from its output :math:`y`: 0 where :math:`y \ge m`, 1 where
    :math:`y > 0`, else :math:`a`.

    Above the threshold :math:`y = \min(x, m) > 0` (slope 1, or 0 once
    clipped at :math:`m`); at or below it :math:`y = a (x - \theta) \le 0`
    (slope :math:`a`).
    """
    slope = np.where(y > 0, 1, negative_slope).astype(y.dtype)
    if max_value is not None:
        slope[y >= max_value] = 0
    return slope


def forward(z: np.ndarray, bias, name: str, alpha=None) -> np.ndarray:
    """Return ``f(z + bias)``; ``z`` may be overwritten (it is a fresh product).

    ``alpha``: the parameter of ``elu`` or ``leaky_relu`` (None: Keras's default).
    """
    if name == "softmax":
        return kernels.backend().bias_softmax(z, bias)
    if name == "log_softmax":
        return log_softmax(z if bias is None else z + bias)
    if name == "sparsemax":
        return sparsemax(z if bias is None else z + bias)
    return kernels.backend().bias_activation(z, bias, name, alpha)


def backward(grad_y: np.ndarray, y: np.ndarray, name: str, z=None, alpha=None) -> np.ndarray:
    """Return dL/dz from dL/dy and the activation's output ``y`` (gelu, silu, ...: from the pre-activation ``z``)."""
    if name == "softmax":
        return y * (grad_y - (grad_y * y).sum(axis=-1, keepdims=True))
    if name == "log_softmax":
        return grad_y - np.exp(y) * grad_y.sum(axis=-1, keepdims=True)
    if name == "sparsemax":
        support = y > 0
        count = support.sum(axis=-1, keepdims=True)
        mean = np.where(support, grad_y, 0).sum(axis=-1, keepdims=True) / count.astype(grad_y.dtype)
        return np.where(support, grad_y - mean, 0).astype(grad_y.dtype, copy=False)
    return kernels.backend().activation_backward(grad_y, y, name, z, alpha)

