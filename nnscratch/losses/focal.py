r"""Focal cross-entropies (Lin et al., 2017): cross-entropy scaled down where the prediction is already good.

Both follow Keras 3 (TensorFlow backend) term by term: the categorical one
rescales and clips the probabilities as ``categorical_crossentropy`` does and
multiplies each class's term by ``alpha (1 - q)^gamma``; the binary one
multiplies binary cross-entropy by ``(1 - p_t)^gamma`` (and optionally a class
weight). ``gamma = 0`` and ``alpha = 1`` give back the plain cross-entropies.
"""

import numbers
import warnings

import numpy as np

from nnscratch.losses.base import (
    DEFAULT_REDUCTION, EPSILON, Loss, _check_from_logits, _check_label_smoothing, _check_real, _numeric,
    _last_axis_mean, _per_sample_mean,
)

__all__ = ["CategoricalFocalCrossentropy", "BinaryFocalCrossentropy"]


def _check_axis(axis, name):
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral) or axis != -1:
        raise ValueError(f"{name}: only axis=-1 (the last axis, Keras's default) is supported, got {axis!r}")


def _focal_derivative(base, gamma):
    """``d(base^gamma)/d(base) = gamma base^(gamma - 1)``, taken as its limit at ``base = 0`` (0, or 1 for gamma 1)."""
    if gamma == 0:
        return np.zeros_like(base)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, gamma * np.power(base, gamma - 1), float(gamma == 1))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z):
    e = np.exp(-np.abs(z))                                      # never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


class CategoricalFocalCrossentropy(Loss):
    r"""Categorical focal cross-entropy (Keras's ``CategoricalFocalCrossentropy``), one-hot targets.

    As Keras, the prediction ``p`` (``softmax(z)`` with ``from_logits``) is
    scaled to sum to 1 over the last axis, ``q = p / S``, and clipped,
    ``c = clip(q, 1e-7, 1 - 1e-7)``; with smoothed targets ``t`` each position
    loses

    .. math:: \ell = \sum_k \alpha_k (1 - c_k)^\gamma \,(-t_k \log c_k),

    averaged over the positions of a sample and the batch (``R`` rows in all).
    Its gradient with respect to ``c``, then ``q`` (0 where clipped), ``p``
    and, with ``from_logits``, ``z``:

    .. math:: g_k = \frac{\alpha_k t_k}{R}\Big(\gamma (1 - c_k)^{\gamma - 1} \log c_k
              - \frac{(1 - c_k)^\gamma}{c_k}\Big)[c_k = q_k], \quad
              \frac{\partial L}{\partial p_j} = \frac{g_j - \sum_k g_k q_k}{S}, \quad
              \frac{\partial L}{\partial z_j} = p_j\Big(\frac{\partial L}{\partial p_j}
              - \sum_k p_k \frac{\partial L}{\partial p_k}\Big).

    No fused softmax shortcut: after a softmax layer the gradient goes
    through the clipped probabilities and the softmax's backward, as Keras's
    does (its focal loss takes no logits from a softmax layer).

    Parameters
    ----------
    alpha : float >= 0 or sequence of K floats
        Weight of every class, or one weight per class. Default 0.25.
    gamma : float >= 0
        Focusing parameter; 0 is plain (weighted) cross-entropy. Default 2.
    from_logits : bool
        The prediction is logits; the softmax is applied inside.
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / K`` as targets.
    axis : -1
        Keras's argument; only the last axis is supported.
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).
    """

    name = "categorical_focal_crossentropy"

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        name = type(self).__name__
        if isinstance(alpha, (list, tuple, np.ndarray)):
            alpha = [_check_real(a, name, "alpha", low=0.0) for a in np.asarray(alpha, dtype=object).reshape(-1)]
            if not alpha:
                raise ValueError(f"{name}: alpha must be a number or one number per class, got an empty sequence")
        else:
            alpha = _check_real(alpha, name, "alpha", low=0.0)
        self.alpha = alpha
        self.gamma = _check_real(gamma, name, "gamma", low=0.0)
        self.from_logits = _check_from_logits(from_logits, name)
        self.label_smoothing = _check_label_smoothing(label_smoothing, name)
        _check_axis(axis, name)

    def arguments(self):
        return {"alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        classes = output_shape[-1]
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and classes != 1):
            raise ValueError(f"{self.name} expects one-hot targets of shape (N, {classes}), got integer labels of "
                             f"shape {y.shape}; use nnscratch.utils.to_categorical(y, {classes})")
        if isinstance(self.alpha, list) and len(self.alpha) != classes:
            raise ValueError(f"{self.name}: alpha has {len(self.alpha)} weights but the model outputs {classes} "
                             f"classes")
        if classes == 1:
            warnings.warn(f"{self.name} expects an output of (batch_size, num_classes) with num_classes > 1, got "
                          f"{(None, *output_shape)}: one class always has probability 1 and loss 0. Consider "
                          f"'binary_focal_crossentropy'", UserWarning, stacklevel=2)
        return super().prepare_targets(y, output_shape)

    def _parts(self, y_true, y_pred):
        """Smoothed targets, ``alpha``, ``p``, ``S``, ``q`` and clipped ``c``."""
        s, classes = self.label_smoothing, y_pred.shape[-1]
        t = y_true * (1 - s) + s / classes if s else y_true
        alpha = np.asarray(self.alpha, dtype=y_pred.dtype)
        p = _softmax(y_pred) if self.from_logits else y_pred
        total = p.sum(axis=-1, keepdims=True)
        q = p / total
        return t, alpha, p, total, q, np.clip(q, EPSILON, 1 - EPSILON)

    def per_position(self, y_true, y_pred):
        t, alpha, _, _, _, c = self._parts(y_true, y_pred)
        return np.sum(alpha * (1 - c) ** self.gamma * (-t * np.log(c)), axis=-1)

    def gradient(self, y_true, y_pred):
        t, alpha, p, total, q, c = self._parts(y_true, y_pred)
        gamma, rows = self.gamma, y_pred.size // y_pred.shape[-1]
        inside = (q >= EPSILON) & (q <= 1 - EPSILON)
        d_c = alpha * t * (_focal_derivative(1 - c, gamma) * np.log(c) - (1 - c) ** gamma / c)
        d_q = d_c * inside / rows
        d_p = (d_q - np.sum(d_q * q, axis=-1, keepdims=True)) / total
        if not self.from_logits:
            return d_p
        return p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))


class BinaryFocalCrossentropy(Loss):
    r"""Binary focal cross-entropy (Keras's ``BinaryFocalCrossentropy``), targets in [0, 1].

    Per output, with smoothed targets ``t``, ``p_t = t p + (1 - t)(1 - p)`` and
    ``b`` the binary cross-entropy,

    .. math:: \ell = w\,(1 - p_t)^\gamma\, b, \qquad
              w = \alpha t + (1 - \alpha)(1 - t) \text{ with apply\_class\_balancing, else } 1,

    averaged over the outputs of a sample and the batch (``M`` values in
    all). ``1 - p_t = t + p - 2 t p`` has derivative ``1 - 2t``. From
    probabilities, ``b`` uses ``c = clip(p, 1e-7, 1 - 1e-7)``:

    .. math:: \frac{\partial L}{\partial p} = \frac{w}{M}\Big(\gamma (1 - p_t)^{\gamma - 1}(1 - 2t)\, b
              + (1 - p_t)^\gamma \frac{c - t}{c (1 - c)} [c = p]\Big).

    From logits ``z`` (``from_logits``, or the logits of a sigmoid output
    layer, which Keras with TensorFlow also uses), ``p = sigmoid(z)``,
    ``b = max(z, 0) - z t + log(1 + exp(-|z|))`` exactly, and

    .. math:: \frac{\partial L}{\partial z} = \frac{w}{M}\Big(\gamma (1 - p_t)^{\gamma - 1}(1 - 2t)\, p (1 - p)\, b
              + (1 - p_t)^\gamma (p - t)\Big).

    Parameters
    ----------
    apply_class_balancing : bool
        Weigh class 1 by ``alpha`` and class 0 by ``1 - alpha``.
    alpha : float in [0, 1]
        Default 0.25 (used only with ``apply_class_balancing``).
    gamma : float >= 0
        Focusing parameter; 0 gives binary cross-entropy. Default 2.
    from_logits : bool
        The prediction is logits. (After a sigmoid layer Keras with TensorFlow
        applies a second sigmoid here, silently; so does nnscratch.)
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / 2`` as targets.
    axis : -1
        Keras's argument; only the last axis is supported.
    reduction : str or None
        Keras's ``reduction`` (see :class:`~nnscratch.losses.Loss`).
    """

    name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction)
        name = type(self).__name__
        if not isinstance(apply_class_balancing, (bool, np.bool_)):
            raise TypeError(f"{name}: apply_class_balancing must be True or False, got {apply_class_balancing!r}")
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha = _check_real(alpha, name, "alpha", low=0.0, high=1.0)
        self.gamma = _check_real(gamma, name, "gamma", low=0.0)
        self.from_logits = _check_from_logits(from_logits, name)
        self.label_smoothing = _check_label_smoothing(label_smoothing, name)
        _check_axis(axis, name)
        # a sigmoid output layer hands over its logits (Keras with TensorFlow computes b from them too)
        self.fused_activation = None if self.from_logits else "sigmoid"

    def arguments(self):
        return {"apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha, "gamma": self.gamma,
                "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name} targets must be in [0, 1], got range [{y.min()}, {y.max()}]")
        return y

    def _targets_and_weight(self, y_true):
        s = self.label_smoothing
        t = y_true * (1 - s) + 0.5 * s if s else y_true
        w = t * self.alpha + (1 - t) * (1 - self.alpha) if self.apply_class_balancing else 1.0
        return t, w

    def _from_probabilities(self, y_true, y_pred):
        """The losses of the positions and dL/dp of the batch mean, from probabilities (clipped in the loss)."""
        t, w = self._targets_and_weight(y_true)
        c = np.clip(y_pred, EPSILON, 1 - EPSILON)
        bce = -(t * np.log(c) + (1 - t) * np.log(1 - c))
        base = t + y_pred - 2 * t * y_pred                                # 1 - p_t
        focal = base ** self.gamma
        inside = (y_pred >= EPSILON) & (y_pred <= 1 - EPSILON)
        grad = w * (_focal_derivative(base, self.gamma) * (1 - 2 * t) * bce
                    + focal * (c - t) / (c * (1 - c)) * inside) / y_pred.size
        return _last_axis_mean(w * focal * bce), grad

    def _from_logits(self, y_true, logits):
        """The losses of the positions and dL/dz of the batch mean, from logits ``z`` (exact cross-entropy)."""
        t, w = self._targets_and_weight(y_true)
        p = _sigmoid(logits)
        bce = np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
        base = t + p - 2 * t * p
        focal = base ** self.gamma
        grad = w * (_focal_derivative(base, self.gamma) * (1 - 2 * t) * p * (1 - p) * bce
                    + focal * (p - t)) / logits.size
        return _last_axis_mean(w * focal * bce), grad.astype(logits.dtype, copy=False)

    def _loss_and_gradient(self, y_true, y_pred):
        return (self._from_logits if self.from_logits else self._from_probabilities)(y_true, y_pred)

    def per_position(self, y_true, y_pred):
        return self._loss_and_gradient(y_true, y_pred)[0]

    def gradient(self, y_true, y_pred):
        return self._loss_and_gradient(y_true, y_pred)[1]

    def fused(self, y_true, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from the sigmoid layer's logits ``z``."""
        losses, grad = self._from_logits(y_true, logits)
        return _per_sample_mean(losses), grad
