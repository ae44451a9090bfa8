"""The loss base class, its reductions, and the checks every loss shares.

A loss object gives the training loop two things per batch: its values, and
the gradient of their *batch mean* with respect to the prediction
(``gradient``, which therefore carries a factor ``1/N``, ``1/(N T)`` for an
output ``(N, T, K)``). The values come one a position (``per_position``,
Keras's ``call``: the last axis reduced, ``(N,)`` for an output ``(N, K)``,
``(N, T)`` for ``(N, T, K)``) or one a sample (``per_sample``, their mean
over the positions). ``reduction`` (Keras's argument) only rescales both, by
:meth:`Loss.reduction_scale`; weights a position (a mask, or sample weights
``(N, T)``) multiply them, by :meth:`Loss.position_weights`.
"""

import numbers
import warnings

import numpy as np

from nnscratch.config import floatx

__all__ = ["Loss", "EPSILON", "REDUCTIONS", "DEFAULT_REDUCTION", "check_positions"]

EPSILON = 1e-7  # Keras's clipping of probabilities before log (keras.backend.epsilon())

DEFAULT_REDUCTION = "sum_over_batch_size"
#: Keras 3.15's accepted values of ``reduction`` (``keras.losses.Loss``), in its order.
REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")
#: The reductions that are the batch mean (what ``per_sample`` and ``gradient`` give): scale 1.
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


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


def _check_reduction(reduction, name):
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {list(REDUCTIONS)} (Keras 3's), got {reduction!r}")
    return reduction


def _check_real(value, name, what, low=None, low_open=False, high=None):
    """A finite real number (not a bool) within ``[low, high]`` (``(low, ...`` with ``low_open``), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a number, got {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    if not np.isfinite(value) or below or (high is not None and value > high):
        where = f"{'(' if low_open else '['}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name}: {what} must be a finite number in {where}, got {value!r}")
    return value


def _per_sample_mean(values):
    """Mean over every axis but the first: one value per sample (Keras's mean over the last axis, then the batch)."""
    return values if values.ndim == 1 else values.reshape(len(values), -1).mean(axis=-1)


def _last_axis_mean(values):
    """Keras's mean over the last axis: an elementwise loss's value a position (1-D values stay as they are)."""
    return values if values.ndim <= 1 else values.mean(axis=-1)


def check_positions(values, y_pred_shape, name):
    """``values`` (a loss's or metric's ``per_position``), or a ValueError if it has not one value a position."""
    values = np.asarray(values)
    if values.shape != tuple(y_pred_shape[:-1]):
        raise ValueError(f"{name}: weights a position (a mask or sample weights of shape "
                         f"{tuple(y_pred_shape[:-1])}) need one value a position, got values of shape {values.shape}")
    return values


def _warn_output_activation(name, activation):
    """Keras (TensorFlow backend) says so when a ``from_logits`` loss gets an activation's output; so do we."""
    warnings.warn(f"{name} received from_logits=True, but the model's output is produced by a {activation} "
                  f"activation and thus does not represent logits. As Keras with TensorFlow does, the loss is "
                  f"computed from that layer's logits (the {activation} is applied once). Was this intended?",
                  UserWarning, stacklevel=3)


class Loss:
    """Base class. Subclasses define ``per_position`` (or only ``per_sample``) and ``gradient``.

    A loss that defines only ``per_sample`` (as custom losses written for
    nnscratch before ``per_position`` did) trains as before, but not a model
    whose output carries a mask, nor with sample weights a position.

    ``prepare_targets(y, output_shape)`` checks and converts targets once, at
    fit time, and raises a ValueError/TypeError naming what was expected.
    ``get_config()`` gives the name and the constructor's arguments (a dict of
    JSON values) and ``from_config(config)`` builds the same loss again.

    Parameters
    ----------
    reduction : str or None
        Keras's reduction of the loss values of a batch:
        ``"sum_over_batch_size"`` (the default) and ``"mean"``, their mean;
        ``"sum"``, their sum; ``"mean_with_sample_weight"``, ``sum(w l) /
        sum(w)``; ``"none"`` or ``None``, no reduction (a direct call returns
        one value per sample). :meth:`reduction_scale` gives the factors by
        which the training loop scales the batch mean and its gradient.
    """

    name = "loss"
    #: The output layer's activation whose logits this loss can take instead of its output (see ``fused``).
    fused_activation = None
    reduction = DEFAULT_REDUCTION

    def __init__(self, reduction=DEFAULT_REDUCTION):
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def per_position(self, y_true, y_pred):
        """The loss of each position, Keras's ``call``: shape ``y_pred.shape[:-1]``."""
        raise NotImplementedError(f"{type(self).__name__} defines no per_position(y_true, y_pred) (one loss a "
                                  "position, the last axis reduced), which masks and sample weights a position need")

    def target_mask(self, y_true, positions):
        """Which positions the targets leave in (booleans of shape ``positions``), or None: all of them.

        A loss with ``ignore_class`` (``SparseCategoricalCrossentropy``)
        leaves out the positions with that label; the training loop and
        :meth:`__call__` join it with the output's mask, as Keras joins the
        loss's mask with the prediction's.
        """
        return None

    def per_sample(self, y_true, y_pred):
        """The loss of each sample: the mean of :meth:`per_position` over its positions, shape ``(N,)``."""
        return _per_sample_mean(self.per_position(y_true, y_pred))

    def position_weights(self, mask=None, sample_weight=None, positions=None) -> np.ndarray:
        """Each position's weight, float64 of shape ``positions`` (``(N, T)`` say), as Keras's ``apply_mask``.

        ``sample_weight`` has the shape ``positions`` or one weight a sample
        (broadcast over its positions); ``mask`` (booleans) is 0 at the
        positions that do not count. With the mean reductions
        (``"sum_over_batch_size"``, ``"mean"``) the mask is scaled by
        ``total / valid`` (0 when no position is valid), so that the mean over
        all positions of ``w l`` is ``sum(w l) / valid``, the mean over the
        positions that count; with the others it is 0 or 1.
        """
        positions = tuple(np.shape(mask) if positions is None else positions)
        weights = np.ones(positions)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != positions:
                sample_weight = sample_weight.reshape(-1)
                if sample_weight.shape != positions[:1]:
                    raise ValueError(f"{self.name}: sample_weight must hold one weight a sample ({positions[0]}) "
                                     f"or one a position {positions}, got shape {np.shape(sample_weight)}")
                sample_weight = sample_weight.reshape(-1, *(1,) * (len(positions) - 1))
            weights = weights * sample_weight
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != positions:
                raise ValueError(f"{self.name}: a mask of shape {positions} was expected, got {mask.shape}")
            valid = int(np.count_nonzero(mask))
            scale = (mask.size / valid if valid else 0.0) if self.reduction in _MEAN_REDUCTIONS else 1.0
            weights = weights * np.where(mask, scale, 0.0)
        return weights

    def weighted_gradient(self, y_true, y_pred, weights) -> np.ndarray:
        """dL/dy_pred of the batch's loss weighted a position: ``mean(w l)`` times the reduction's scale.

        ``weights`` are :meth:`position_weights`. The loss does not depend on
        them, so the gradient is that of the plain batch mean (``dl / (N T)``
        at each position) scaled position by position by ``w`` and by the
        reduction's gradient scale (:meth:`reduction_scale`).
        """
        _, gradient_scale = self.reduction_scale(np.shape(y_pred), weights)
        scale = (np.asarray(weights) * gradient_scale)[..., None].astype(np.asarray(y_pred).dtype)
        return np.asarray(self.gradient(y_true, y_pred)).astype(scale.dtype, copy=False) * scale

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        """The batch's loss, reduced as ``reduction`` says: a float (an array for ``"none"``/None).

        ``sample_weight`` (optional: one weight a sample, or one a position
        of an output ``(N, T, K)``) multiplies each loss first, as Keras.
        ``mask`` (booleans, one a position) leaves out the positions where it
        is False, as Keras does for a masked prediction: the mean reductions
        then average over the positions that count. Without either, the
        values of ``"none"`` are one a sample; with one a position or a mask,
        one a position.
        """
        y_pred_shape = np.shape(y_pred)
        target = self.target_mask(y_true, y_pred_shape[:-1])
        if target is not None:
            mask = target if mask is None else np.asarray(mask, dtype=bool) & target
        if mask is not None or (sample_weight is not None and np.ndim(sample_weight) > 1
                                and np.shape(sample_weight) == tuple(y_pred_shape[:-1])):
            weights = self.position_weights(mask, sample_weight, y_pred_shape[:-1])
            values = check_positions(self.per_position(y_true, y_pred), y_pred_shape, self.name) * weights
            if self.reduction in (None, "none"):
                return values
            loss_scale, _ = self.reduction_scale(y_pred_shape, weights)
            return float(np.mean(values) * loss_scale)
        values = self.per_sample(y_true, y_pred)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if sample_weight.shape != (len(values),):
                raise ValueError(f"{self.name}: sample_weight must hold one weight per sample ({len(values)}), "
                                 f"got shape {np.shape(sample_weight)}")
            values = values * sample_weight
        if self.reduction in (None, "none"):
            return values
        loss_scale, _ = self.reduction_scale(np.shape(y_pred), sample_weight)
        return float(np.mean(values) * loss_scale)

    def values_per_sample(self, y_pred_shape) -> int:
        """How many loss values Keras's ``call`` gives a sample (1 for ``(N, K)``; ``T`` for ``(N, T, K)``)."""
        return int(np.prod(y_pred_shape[1:-1], dtype=np.int64))

    def reduction_scale(self, y_pred_shape, sample_weight=None) -> tuple:
        """``(loss_scale, gradient_scale)``: what ``reduction`` makes of the batch mean and of its gradient.

        ``per_sample`` and ``gradient`` are those of the batch mean
        ``sum_i w_i l_i / N``; Keras's batch loss is that times
        ``loss_scale``, and the gradient it trains with that times
        ``gradient_scale``, with ``B = N * values_per_sample`` Keras's number
        of loss values: 1 and 1 for ``"sum_over_batch_size"`` and ``"mean"``;
        ``B`` and ``B`` for ``"sum"``; ``B / sum(w)`` for both with
        ``"mean_with_sample_weight"`` (1 without weights; 0 when the weights
        sum to 0, Keras's ``divide_no_nan``); 1 and ``B`` for ``"none"``
        (Keras's ``fit`` logs the mean of the unreduced values and
        differentiates their sum).
        """
        reduction = self.reduction
        if reduction in _MEAN_REDUCTIONS:
            return 1.0, 1.0
        values = y_pred_shape[0] * self.values_per_sample(y_pred_shape)
        if reduction == "sum":
            return float(values), float(values)
        if reduction == "mean_with_sample_weight":
            if sample_weight is None:
                return 1.0, 1.0
            total = float(np.sum(sample_weight))
            scale = values / total if total != 0 else 0.0
            return scale, scale
        return 1.0, float(values)                     # "none", None

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
        """The constructor's arguments (none here; the losses with options override this), without ``reduction``."""
        return {}

    def _reduction_argument(self) -> dict:
        """``{"reduction": ...}`` when it is not the default (so default configs stay as they were)."""
        return {} if self.reduction == DEFAULT_REDUCTION else {"reduction": self.reduction}

    def get_config(self) -> dict:
        """``{"name": ..., **arguments}``, as Keras's ``get_config`` (``reduction`` only when not the default)."""
        return {"name": self.name, **self.arguments(), **self._reduction_argument()}

    @classmethod
    def from_config(cls, config):
        """The loss of a :meth:`get_config` dict (its ``"name"`` is ignored)."""
        return cls(**{key: value for key, value in config.items() if key != "name"})

    def __repr__(self):
        arguments = {**self.arguments(), **self._reduction_argument()}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
