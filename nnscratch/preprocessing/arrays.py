"""Array preparation: one-hot labels, scaling to [0, 1], train/validation splits."""

import math
import numbers

import numpy as np

from nnscratch.config import floatx
from nnscratch.rng import new_generator

__all__ = ["to_categorical", "scale_images", "train_val_split", "SPLIT_METHODS"]

SPLIT_METHODS = ("last", "stratified")


def _integer_labels(y):
    """Return ``y`` as an int64 array, or raise naming the labels that are not integers >= 0."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels must be integers, got an array of dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = y[~np.isfinite(y) | (y != np.round(y))]
        if bad.size:
            raise ValueError(f"labels must be integers, got non-integer values {np.unique(bad)[:10]}")
    labels = y.astype(np.int64)
    if (labels < 0).any():
        raise ValueError(f"labels must be >= 0, got negative values {np.unique(labels[labels < 0])[:10]}")
    return labels


def to_categorical(y, num_classes=None, dtype=None):
    """One-hot encode integer class labels (Keras's ``to_categorical``).

    Parameters
    ----------
    y : array_like of int
        Class labels in ``0 .. num_classes - 1``. A trailing axis of size 1
        (shape ``(N, 1)``) is dropped, as Keras does.
    num_classes : int, optional
        Number of classes; default ``max(y) + 1``.
    dtype : str or dtype, optional
        Default ``floatx()``.

    Returns
    -------
    ndarray, shape ``y.shape + (num_classes,)``

    Raises
    ------
    ValueError
        For negative or non-integer labels, or labels >= ``num_classes``.
    """
    labels = _integer_labels(y)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if num_classes is None:
        if labels.size == 0:
            raise ValueError("num_classes is needed when y is empty")
        num_classes = int(labels.max()) + 1
    elif (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
          or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    too_big = labels[labels >= num_classes]
    if too_big.size:
        raise ValueError(
            f"labels must be < num_classes={num_classes}, got {np.unique(too_big)[:10]}")
    out = np.zeros(labels.shape + (int(num_classes),), dtype=dtype or floatx())
    np.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


def scale_images(x, max_value=None):
    """Scale pixel values from ``[0, max_value]`` to ``[0, 1]``, as ``floatx()``.

    Parameters
    ----------
    x : array_like
        Images, e.g. uint8 MNIST (0..255) or optdigits (0..16).
    max_value : float, optional
        The brightest possible pixel. Default: 255 for uint8 images; other
        dtypes must say (optdigits: ``max_value=16``).

    Returns
    -------
    ndarray of ``floatx()``, same shape: ``x / max_value``.

    Raises
    ------
    ValueError
        If ``max_value`` is missing or not positive, or ``x`` holds larger values.
    """
    x = np.asarray(x)
    if max_value is None:
        if x.dtype != np.uint8:
            raise ValueError(
                f"max_value is required for images of dtype {x.dtype} "
                "(only uint8 defaults to 255); optdigits images need max_value=16")
        max_value = 255
    if isinstance(max_value, bool) or not isinstance(max_value, numbers.Real) or not max_value > 0:
        raise ValueError(f"max_value must be a positive number, got {max_value!r}")
    if x.size and x.max() > max_value:
        raise ValueError(f"images hold values up to {x.max()}, more than max_value={max_value}")
    return x.astype(floatx()) / np.asarray(max_value, dtype=floatx())


def train_val_split(x, y, val_fraction=0.1, method="last", seed=None):
    """Split off a validation set.

    Parameters
    ----------
    x, y : array_like
        Samples and labels, same length.
    val_fraction : float
        In (0, 1).
    method : {"last", "stratified"}
        ``"last"``: the last ``val_fraction`` of the samples, unshuffled, as
        Keras's ``validation_split`` (the first ``floor(N * (1 - val_fraction))``
        samples train; the published 54,000/6,000 MNIST split).
        ``"stratified"``: a shuffled split that keeps the class proportions,
        :func:`sklearn.model_selection.train_test_split` with ``stratify=y``
        (``ceil(N * val_fraction)`` validation samples).
    seed : int, optional
        For ``"stratified"``: the ``random_state`` passed to scikit-learn;
        ``None`` draws one from the library's generators.

    Returns
    -------
    (x_train, y_train), (x_val, y_val)
        With ``"last"`` these are views of ``x`` and ``y``.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got shapes {x.shape} and {y.shape}")
    if (isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real)
            or not 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    if method == "last":
        split_at = int(math.floor(len(x) * (1.0 - val_fraction)))
        return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])
    if method == "stratified":
        from sklearn.model_selection import train_test_split

        if seed is None:
            seed = int(new_generator().integers(2**32))
        x_tr, x_val, y_tr, y_val = train_test_split(
            x, y, test_size=val_fraction, stratify=y, random_state=seed, shuffle=True)
        return (x_tr, y_tr), (x_val, y_val)
    raise ValueError(f"method must be one of {SPLIT_METHODS}, got {method!r}")
