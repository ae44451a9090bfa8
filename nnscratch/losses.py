"""Loss functions: value, gradient with respect to the prediction, and target checks.

Every loss averages per-sample values over the batch, so its gradient carries
a factor ``1/N``. Cross-entropy after a softmax layer, and binary
cross-entropy after a sigmoid layer, take a shortcut (as Keras does): the
model hands the loss the layer's *logits* ``z`` (``fused_activation`` names
the layer's activation) and gets back

.. math:: \\frac{\\partial L}{\\partial z} = \\frac{1}{N}(p - t)
          \\quad\\text{(divided by } K \\text{ too for the binary one, a mean over } K \\text{ outputs)},

computed from ``log p = z - logsumexp(z)`` (softmax) or
``max(z, 0) - z t + log(1 + exp(-|z|))`` (sigmoid), which stay finite for
any logits: no clipping, and a saturated output still learns.
"""

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "binary_crossentropy", "mean_squared_error", "get",
]

EPSILON = 1e-7  # Keras's clipping of probabilities before log


def _check_finite(y, what="targets"):
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{what} contain NaN or infinite values")


def _numeric(y, name):
    """``y`` as an array of numbers (bool, integer or float); anything else is a TypeError."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: targets must be numbers (integer labels, one-hot rows or probabilities), got "
                        f"dtype {y.dtype}; encode labels as integers first (e.g. sklearn.preprocessing.LabelEncoder)")
    return y


class Loss:
    """Base class. Subclasses define ``per_sample`` and ``gradient``.

    ``prepare_targets(y, output_shape)`` checks and converts targets once, at
    fit time, and raises a ValueError/TypeError naming what was expected.
    """

    name = "loss"
    #: The output layer's activation whose logits this loss can take instead of its output (see ``fused``).
    fused_activation = None

    def __call__(self, y_true, y_pred) -> float:
        return float(np.mean(self.per_sample(y_true, y_pred)))

    def fused(self, y_true, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from the output layer's logits."""
        raise NotImplementedError(f"{self.name} takes the model's output, not logits")

    def prepare_targets(self, y, output_shape) -> np.ndarray:
        y = _numeric(y, self.name)
        output_shape = tuple(output_shape)
        if output_shape[-1:] == (1,) and y.shape[1:] == output_shape[:-1]:
            y = y.reshape(*y.shape, 1)       # (N,) targets for a (N, 1) output, as Keras accepts
        _check_finite(y)
        if y.shape[1:] != tuple(output_shape):
            raise ValueError(
                f"{self.name}: targets of shape (N, {', '.join(map(str, output_shape))}) expected to match "
                f"the model output {(None, *output_shape)}, got {y.shape}"
            )
        return y.astype(floatx(), copy=False)

    def get_config(self) -> str:
        return self.name


class CategoricalCrossentropy(Loss):
    r"""``L = -(1/N) sum_n sum_k t_nk log q_nk`` for one-hot targets ``t``, ``q = p / sum_k p``.

    As Keras, the prediction is first scaled to sum to 1 over its last axis
    (a softmax output already does) and clipped to ``[1e-7, 1 - 1e-7]``.
    Gradient with respect to the prediction, with ``S = sum_k p_k`` and
    ``[q]`` 1 where ``q`` is inside the clipping range:

    .. math:: \frac{\partial L}{\partial p_j} = \frac{1}{N S}\Big(-\frac{t_j}{q_j}[q_j]
              + \sum_k t_k [q_k]\Big).

    After a softmax layer the model uses the fused gradient ``(p - t)/N``
    with respect to the logits instead.
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and output_shape[-1] != 1):
            raise ValueError(
                f"categorical_crossentropy expects one-hot targets of shape (N, {output_shape[-1]}), got "
                f"integer labels of shape {y.shape}; use loss='sparse_categorical_crossentropy' or "
                f"nnscratch.utils.to_categorical(y, {output_shape[-1]})"
            )
        if y.ndim == 2 and y.shape[1] != output_shape[-1]:
            raise ValueError(
                f"categorical_crossentropy: one-hot targets have {y.shape[1]} columns but the model outputs "
                f"{output_shape[-1]} units"
            )
        return super().prepare_targets(y, output_shape)

    def per_sample(self, y_true, y_pred):
        q = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return -(y_true * np.log(q)).sum(axis=-1)

    def gradient(self, y_true, y_pred):
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        inside = (q > EPSILON) & (q < 1 - EPSILON)
        d_q = -(y_true / np.clip(q, EPSILON, 1 - EPSILON)) * inside          # dL/dq of one sample
        return (d_q - (d_q * q).sum(axis=-1, keepdims=True)) / (total * y_true.shape[0])

    def fused(self, y_true, logits):
        return self.softmax_fused(y_true, logits)

    def softmax_fused(self, y_true, logits):
        """Return per-sample losses and dL/dlogits of the batch mean."""
        losses, grad = kernels.backend().softmax_cross_entropy(logits, y_true.astype(logits.dtype, copy=False))
        grad /= logits.shape[0]
        return losses, grad


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy for integer labels ``y`` in ``[0, classes)``."""

    name = "sparse_categorical_crossentropy"

    def prepare_targets(self, y, output_shape):
        y = _numeric(y, self.name)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        classes = output_shape[-1]
        if y.ndim != 1:
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer labels of shape (N,), got shape {y.shape}; "
                f"for one-hot targets use loss='categorical_crossentropy'"
            )
        if not np.issubdtype(y.dtype, np.integer):
            _check_finite(y)
            if not np.all(y == np.round(y)):
                raise TypeError(f"sparse labels must be integers, got non-integer values of dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= classes):
            bad = y[(y < 0) | (y >= classes)]
            raise ValueError(
                f"sparse labels must be in [0, {classes}) for a model with {classes} output units, "
                f"got {bad.size} labels outside, e.g. {bad[:5].tolist()}"
            )
        return y.astype(np.int64)

    @staticmethod
    def _one_hot(labels, classes, dtype):
        onehot = np.zeros((labels.shape[0], classes), dtype=dtype)
        onehot[np.arange(labels.shape[0]), labels] = 1
        return onehot

    def per_sample(self, y_true, y_pred):
        return super().per_sample(self._one_hot(y_true, y_pred.shape[-1], y_pred.dtype), y_pred)

    def gradient(self, y_true, y_pred):
        return super().gradient(self._one_hot(y_true, y_pred.shape[-1], y_pred.dtype), y_pred)

    def softmax_fused(self, y_true, logits):
        return super().softmax_fused(self._one_hot(y_true, logits.shape[-1], logits.dtype), logits)


class BinaryCrossentropy(Loss):
    r"""``L = -(1/N) sum_n mean_k [t log p + (1 - t) log(1 - p)]`` with ``p`` clipped to ``[1e-7, 1 - 1e-7]``.

    ``dL/dp = (p - t) / (p (1 - p)) / (N K)`` for the ``K`` outputs of a
    sample. After a sigmoid layer the model hands :meth:`fused` the logits
    ``z`` instead, as Keras does: per output
    ``max(z, 0) - z t + log(1 + exp(-|z|))``, exact for any ``z`` (a sigmoid
    output of 1 - 1e-9 is not clipped), and ``dL/dz = (p - t) / (N K)``.
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"binary_crossentropy targets must be in [0, 1], got range [{y.min()}, {y.max()}]")
        return y

    def per_sample(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).reshape(len(p), -1).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        per_row = y_pred[0].size
        return (p - y_true) / (p * (1 - p)) * inside / (y_pred.shape[0] * per_row)

    def fused(self, y_true, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from the sigmoid layer's logits ``z``."""
        e = np.exp(-np.abs(logits))                                  # never overflows
        losses = np.maximum(logits, 0) - logits * y_true + np.log1p(e)
        p = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))          # sigmoid(z), stable both ways
        grad = (p - y_true) / logits.size
        return losses.reshape(len(logits), -1).mean(axis=-1), grad.astype(logits.dtype, copy=False)


class MeanSquaredError(Loss):
    """``L = (1/N) sum_n mean_k (p - t)^2``; ``dL/dp = 2 (p - t) / (N K)``."""

    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.size


categorical_crossentropy = CategoricalCrossentropy()
sparse_categorical_crossentropy = SparseCategoricalCrossentropy()
binary_crossentropy = BinaryCrossentropy()
mean_squared_error = MeanSquaredError()

_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    """Return a Loss for a name (``"categorical_crossentropy"``, ``"mse"``, ...) or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss instance")
