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

With ``from_logits=True`` (as Keras) the model's output itself is the logits
``z`` (the last layer has no activation) and the loss applies the softmax or
sigmoid inside, with the same stable formulas. ``label_smoothing`` replaces
the targets by ``t (1 - s) + s / K`` (categorical, ``K`` classes) or
``t (1 - s) + s / 2`` (binary) inside the loss; the metrics still see ``t``.
"""

import numbers
import warnings

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "Huber", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_crossentropy", "mean_squared_error", "mean_absolute_error",
    "huber", "serialize", "get",
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


def _check_from_logits(from_logits, name) -> bool:
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"{name}: from_logits must be True or False, got {from_logits!r}")
    return bool(from_logits)


def _check_label_smoothing(label_smoothing, name) -> float:
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"{name}: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1] (0 = no smoothing), got {label_smoothing!r}")
    return float(label_smoothing)


def _per_sample_mean(values):
    """Mean over every axis but the first: one value per sample (Keras's mean over the last axis, then the batch)."""
    return values if values.ndim == 1 else values.reshape(len(values), -1).mean(axis=-1)


def _warn_output_activation(name, activation):
    """Keras (TensorFlow backend) says so when a ``from_logits`` loss gets an activation's output; so do we."""
    warnings.warn(f"{name} received from_logits=True, but the model's output is produced by a {activation} "
                  f"activation and thus does not represent logits. As Keras with TensorFlow does, the loss is "
                  f"computed from that layer's logits (the {activation} is applied once). Was this intended?",
                  UserWarning, stacklevel=3)


class Loss:
    """Base class. Subclasses define ``per_sample`` and ``gradient``.

    ``prepare_targets(y, output_shape)`` checks and converts targets once, at
    fit time, and raises a ValueError/TypeError naming what was expected.
    ``get_config()`` gives the name and the constructor's arguments (a dict of
    JSON values) and ``from_config(config)`` builds the same loss again.
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

    def arguments(self) -> dict:
        """The constructor's arguments (none here; the losses with options override this)."""
        return {}

    def get_config(self) -> dict:
        """``{"name": ..., **arguments}``, as Keras's ``get_config`` (without its reduction and dtype)."""
        return {"name": self.name, **self.arguments()}

    @classmethod
    def from_config(cls, config):
        """The loss of a :meth:`get_config` dict (its ``"name"`` is ignored)."""
        return cls(**{key: value for key, value in config.items() if key != "name"})

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.arguments().items())})"


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

    Parameters
    ----------
    from_logits : bool
        The prediction is the logits ``z`` (the last layer has no
        activation): ``log q = z - logsumexp(z)`` and
        ``dL/dz = (softmax(z) sum_k t_k - t) / N``, ``(softmax(z) - t) / N``
        for targets whose rows sum to 1. If the last layer is a softmax
        after all, the loss takes that layer's logits, as Keras with
        TensorFlow does, and warns.
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / K`` as targets (``K`` classes), as Keras.

    An output of more than two axes, ``(N, ..., K)``, gets one cross-entropy
    per position over its last axis, averaged over the positions (Keras's
    mean over everything but the class axis).
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits = _check_from_logits(from_logits, type(self).__name__)
        self.label_smoothing = _check_label_smoothing(label_smoothing, type(self).__name__)

    def arguments(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

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

    def targets(self, y_true, classes, dtype):
        """The targets the formulas use: ``t (1 - s) + s / K`` with label smoothing ``s``, else ``t``."""
        s = self.label_smoothing
        return y_true * (1 - s) + s / classes if s else y_true

    def per_sample(self, y_true, y_pred):
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        if self.from_logits:
            return self._from_logits(t, y_pred)[0]
        q = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return _per_sample_mean(-(t * np.log(q)).sum(axis=-1))

    def gradient(self, y_true, y_pred):
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        if self.from_logits:
            return self._from_logits(t, y_pred)[1]
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        inside = (q > EPSILON) & (q < 1 - EPSILON)
        d_q = -(t / np.clip(q, EPSILON, 1 - EPSILON)) * inside          # dL/dq of one distribution
        rows = y_pred.size // y_pred.shape[-1]                           # N, or N times the positions
        return (d_q - (d_q * q).sum(axis=-1, keepdims=True)) / (total * rows)

    @staticmethod
    def _from_logits(t, logits):
        """Per-sample losses and dL/dlogits of the batch mean, for logits of shape (N, ..., K)."""
        classes = logits.shape[-1]
        flat = logits.reshape(-1, classes)
        losses, grad = kernels.backend().softmax_cross_entropy(flat, t.reshape(-1, classes).astype(flat.dtype,
                                                                                                  copy=False))
        grad /= flat.shape[0]
        return _per_sample_mean(losses.reshape(logits.shape[:-1])), grad.reshape(logits.shape)

    def fused(self, y_true, logits):
        if self.from_logits:
            _warn_output_activation(self.name, "softmax")
        return self.softmax_fused(y_true, logits)

    def softmax_fused(self, y_true, logits):
        """Return per-sample losses and dL/dlogits of the batch mean."""
        t = self.targets(y_true, logits.shape[-1], logits.dtype)
        losses, grad = kernels.backend().softmax_cross_entropy(logits, t.astype(logits.dtype, copy=False))
        grad /= logits.shape[0]
        return losses, grad


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy for integer labels ``y`` in ``[0, classes)``.

    From probabilities, as Keras, the prediction is clipped to ``[1e-7, 1 - 1e-7]``
    *first* and then rescaled to sum to 1 (the one-hot loss rescales, then
    clips): per sample ``log sum_k c_k - log c_label``, ``c`` the clipped ``p``.
    For a softmax output the two agree unless a probability is below 1e-7.

    ``from_logits`` as for :class:`CategoricalCrossentropy`. As in Keras 3
    there is no ``label_smoothing``: smooth one-hot targets with
    ``CategoricalCrossentropy(label_smoothing=...)`` instead.
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, **kwargs):
        if "label_smoothing" in kwargs:
            raise TypeError("SparseCategoricalCrossentropy has no label_smoothing (neither has Keras 3's); use "
                            "CategoricalCrossentropy(label_smoothing=...) with one-hot targets "
                            "(nnscratch.utils.to_categorical)")
        if kwargs:
            raise TypeError(f"SparseCategoricalCrossentropy got unexpected arguments {sorted(kwargs)}; "
                            "it takes from_logits")
        super().__init__(from_logits=from_logits)

    def arguments(self):
        return {"from_logits": self.from_logits}

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
    def _labels(y_true):
        """Labels of shape (N,) or (N, 1), integers or whole floats (a direct call), as (N,) integers."""
        y_true = np.asarray(y_true)
        return y_true.reshape(len(y_true)).astype(np.int64, copy=False)

    @staticmethod
    def _one_hot(labels, classes, dtype):
        onehot = np.zeros((labels.shape[0], classes), dtype=dtype)
        onehot[np.arange(labels.shape[0]), labels] = 1
        return onehot

    def targets(self, y_true, classes, dtype):
        """The one-hot rows of the integer labels."""
        return self._one_hot(self._labels(y_true), classes, dtype)

    def per_sample(self, y_true, y_pred):
        """``log sum_k c_k - log c_label`` with ``c = clip(p, 1e-7, 1 - 1e-7)``: Keras clips, then rescales."""
        if self.from_logits:
            return super().per_sample(y_true, y_pred)
        c = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return np.log(c.sum(axis=-1)) - np.log(c[np.arange(len(y_true)), self._labels(y_true)])

    def gradient(self, y_true, y_pred):
        """``(1/S - [k = label] / c_label) / N`` where ``p_k`` is inside the clipping range (else 0), ``S = sum c``."""
        if self.from_logits:
            return super().gradient(y_true, y_pred)
        c = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        rows, y_true = np.arange(len(y_true)), self._labels(y_true)
        grad = np.repeat(1 / c.sum(axis=-1, keepdims=True), y_pred.shape[-1], axis=-1)
        grad[rows, y_true] -= 1 / c[rows, y_true]
        return grad * inside / len(y_true)


class BinaryCrossentropy(Loss):
    r"""``L = -(1/N) sum_n mean_k [t log p + (1 - t) log(1 - p)]`` with ``p`` clipped to ``[1e-7, 1 - 1e-7]``.

    ``dL/dp = (p - t) / (p (1 - p)) / (N K)`` for the ``K`` outputs of a
    sample. After a sigmoid layer the model hands :meth:`fused` the logits
    ``z`` instead, as Keras does: per output
    ``max(z, 0) - z t + log(1 + exp(-|z|))``, exact for any ``z`` (a sigmoid
    output of 1 - 1e-9 is not clipped), and ``dL/dz = (p - t) / (N K)``.

    Parameters
    ----------
    from_logits : bool
        The prediction is the logits ``z`` (the last layer has no
        activation): the loss and gradient from ``z`` above. If the last
        layer is a sigmoid after all, the loss takes that layer's logits, as
        Keras with TensorFlow does, and warns.
    label_smoothing : float in [0, 1]
        Use ``t (1 - s) + s / 2`` as targets, as Keras.
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits = _check_from_logits(from_logits, type(self).__name__)
        self.label_smoothing = _check_label_smoothing(label_smoothing, type(self).__name__)

    def arguments(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"binary_crossentropy targets must be in [0, 1], got range [{y.min()}, {y.max()}]")
        return y

    def targets(self, y_true):
        """The targets the formulas use: ``t (1 - s) + s / 2`` with label smoothing ``s``, else ``t``."""
        s = self.label_smoothing
        return y_true * (1 - s) + 0.5 * s if s else y_true

    def per_sample(self, y_true, y_pred):
        t = self.targets(y_true)
        if self.from_logits:
            return self._from_logits(t, y_pred)[0]
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return _per_sample_mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))

    def gradient(self, y_true, y_pred):
        t = self.targets(y_true)
        if self.from_logits:
            return self._from_logits(t, y_pred)[1]
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return (p - t) / (p * (1 - p)) * inside / y_pred.size

    @staticmethod
    def _from_logits(t, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from logits ``z`` of any shape (N, ...)."""
        e = np.exp(-np.abs(logits))                                  # never overflows
        losses = np.maximum(logits, 0) - logits * t + np.log1p(e)
        p = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))          # sigmoid(z), stable both ways
        grad = (p - t) / logits.size
        return _per_sample_mean(losses), grad.astype(logits.dtype, copy=False)

    def fused(self, y_true, logits):
        """Per-sample losses and dL/dlogits of the batch mean, from the sigmoid layer's logits ``z``."""
        if self.from_logits:
            _warn_output_activation(self.name, "sigmoid")
        return self._from_logits(self.targets(y_true), logits)


class MeanSquaredError(Loss):
    """``L = (1/N) sum_n mean_k (p - t)^2``; ``dL/dp = 2 (p - t) / (N K)``."""

    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        return _per_sample_mean((y_pred - y_true) ** 2)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.size


class MeanAbsoluteError(Loss):
    """``L = (1/N) sum_n mean_k |p - t|``; ``dL/dp = sign(p - t) / (N K)``.

    At ``p = t``, where ``|p - t|`` has no derivative, the gradient is 0
    (``sign(0) = 0``), as TensorFlow's gradient of ``abs`` gives.
    """

    name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        return _per_sample_mean(np.abs(y_pred - y_true))

    def gradient(self, y_true, y_pred):
        return np.sign(y_pred - y_true) / y_pred.size


class Huber(Loss):
    r"""Squared error for small errors, absolute error for large ones (Keras's ``Huber``).

    Per value, with ``e = p - t`` and ``delta`` the point where it changes:

    .. math:: h(e) = \begin{cases} e^2/2 & |e| \le \delta \\
              \delta |e| - \delta^2/2 & |e| > \delta \end{cases},
              \qquad h'(e) = \operatorname{clip}(e, -\delta, \delta),

    averaged over the values of a sample and the batch:
    ``dL/dp = clip(p - t, -delta, delta) / (N K)``. Both pieces meet with the
    same value and slope at ``|e| = delta``.

    Parameters
    ----------
    delta : float > 0
    """

    name = "huber_loss"

    def __init__(self, delta=1.0):
        if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, numbers.Real):
            raise TypeError(f"Huber: delta must be a positive number, got {delta!r}")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"Huber: delta must be a positive, finite number, got {delta!r}")
        self.delta = float(delta)

    def arguments(self):
        return {"delta": self.delta}

    def per_sample(self, y_true, y_pred):
        error = np.abs(y_pred - y_true)
        d = self.delta
        return _per_sample_mean(np.where(error <= d, 0.5 * error ** 2, d * error - 0.5 * d ** 2))

    def gradient(self, y_true, y_pred):
        return np.clip(y_pred - y_true, -self.delta, self.delta) / y_pred.size


categorical_crossentropy = CategoricalCrossentropy()
sparse_categorical_crossentropy = SparseCategoricalCrossentropy()
binary_crossentropy = BinaryCrossentropy()
mean_squared_error = MeanSquaredError()
mean_absolute_error = MeanAbsoluteError()
huber = Huber()

_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy, MeanSquaredError,
            MeanAbsoluteError, Huber)

#: The names ``get`` accepts, as Keras 3's ``keras.losses.get``: function names, class names, short aliases.
_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    **{cls.__name__: cls for cls in _CLASSES},
}
_BY_LOWER_NAME = {name.lower(): cls for name, cls in _BY_NAME.items()}
_BY_CONFIG_NAME = {cls.name: cls for cls in _CLASSES}   # the "name" of a get_config dict
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES}


def serialize(loss: Loss) -> dict:
    """Return ``{"class_name": ..., "config": ...}`` (Keras's form), which :func:`get` accepts."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _from_dict(identifier: dict) -> Loss:
    if "class_name" in identifier:
        cls = _BY_CLASS_NAME.get(identifier["class_name"])
        config = identifier.get("config") or {}
    else:
        cls, config = _BY_CONFIG_NAME.get(identifier.get("name")), identifier
    if cls is None:
        raise ValueError(f"unknown loss config {identifier!r}; expected {{'class_name': one of "
                         f"{sorted(_BY_CLASS_NAME)}, 'config': {{...}}}} or a get_config() dict whose 'name' is one "
                         f"of {sorted(_BY_CONFIG_NAME)}")
    return cls.from_config(config)


def get(identifier) -> Loss:
    """Return a Loss for a name, a Loss class or instance, or a config dict.

    Names are Keras 3's (any case): ``"categorical_crossentropy"``,
    ``"sparse_categorical_crossentropy"``, ``"binary_crossentropy"``,
    ``"mean_squared_error"``, ``"mean_absolute_error"``, ``"huber"``, the
    aliases ``"mse"``, ``"mae"``, ``"bce"`` and the class names
    (``"MeanSquaredError"``); each gives the loss with default arguments. A
    dict is ``{"class_name": "Huber", "config": {"delta": 2.0}}``
    (:func:`serialize`) or a :meth:`Loss.get_config` dict (what a saved model
    keeps). A plain function is refused: nnscratch needs the loss's gradient,
    so write a :class:`Loss` subclass with ``per_sample`` and ``gradient``.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()                                    # loss=MeanSquaredError, as Keras accepts
    if isinstance(identifier, str) and identifier.lower() in _BY_LOWER_NAME:
        return _BY_LOWER_NAME[identifier.lower()]()
    if isinstance(identifier, dict):
        return _from_dict(identifier)
    if callable(identifier) and not isinstance(identifier, str):
        raise TypeError(f"a loss function such as {getattr(identifier, '__name__', identifier)!r} cannot be used: "
                        "nnscratch needs its gradient too. Subclass nnscratch.losses.Loss and define "
                        "per_sample(y_true, y_pred) and gradient(y_true, y_pred)")
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss instance")
