"""Activation functions by name, forward and backward.

The elementwise ones (``linear``, ``relu``, ``sigmoid``, ``tanh``) run in a
fused kernel together with the bias add. ``softmax`` works on the last axis:

.. math:: y_k = e^{z_k} / \\sum_j e^{z_j}, \\qquad
          \\frac{\\partial L}{\\partial z} = y \\odot (g - \\sum_k g_k y_k)

where ``g = dL/dy``. When softmax feeds a cross-entropy loss the model skips
this Jacobian and uses the fused gradient ``(p - t) / N`` instead (``N`` samples).
"""

import numpy as np

from nnscratch import kernels

__all__ = ["NAMES", "get", "forward", "backward", "softmax"]

NAMES = ("linear", "relu", "sigmoid", "tanh", "softmax")


def get(name) -> str:
    """Validate an activation name (None means ``"linear"``) and return it."""
    if name is None:
        return "linear"
    if not isinstance(name, str) or name.lower() not in NAMES:
        raise ValueError(f"unknown activation {name!r}; expected one of {NAMES}")
    return name.lower()


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(z: np.ndarray, bias, name: str) -> np.ndarray:
    """Return ``f(z + bias)``; ``z`` may be overwritten (it is a fresh product)."""
    if name == "softmax":
        return kernels.backend().bias_softmax(z, bias)
    return kernels.backend().bias_activation(z, bias, name)


def backward(grad_y: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """Return dL/dz from dL/dy and the activation's output ``y``."""
    if name == "softmax":
        return y * (grad_y - (grad_y * y).sum(axis=-1, keepdims=True))
    return kernels.backend().activation_backward(grad_y, y, name)
