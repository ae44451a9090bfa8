"""Shape arithmetic shared by the sliding-window layers (Conv2D, MaxPooling2D)."""

import math

from nnscratch.layers.base import format_shape

__all__ = ["normalize_tuple", "normalize_padding", "window_geometry", "place_windows"]


def normalize_tuple(value, n: int, name: str) -> tuple:
    """Turn ``3`` or ``(3, 3)`` into ``(3, 3)``; anything else is a clear error."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int):
        value = (value,) * n
    if not isinstance(value, (tuple, list)) or len(value) != n or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < 1 for v in value):
        raise ValueError(f"{name} must be positive, got {tuple(value)}")
    return tuple(value)


def normalize_padding(padding) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def window_geometry(size: int, window: int, stride: int, padding: str) -> tuple[int, int]:
    """Output size and padding before, along one axis, with TensorFlow's rules.

    valid: ``out = floor((size - window) / stride) + 1``, no padding.
    same:  ``out = ceil(size / stride)``; total padding
    ``max((out - 1) * stride + window - size, 0)``, the smaller half before
    (the odd cell goes to the bottom/right, as TensorFlow).
    """
    if padding == "valid":
        return (size - window) // stride + 1, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2


def place_windows(layer, input_shape, window, strides, what):
    """Check that ``input_shape`` is an image and place ``window``-sized windows on it.

    Returns ``(out_h, out_w), pad_top, pad_left``. Raises a ValueError naming the
    layer when the input is not (height, width, channels) or a window does not fit.
    """
    kind = type(layer).__name__
    if len(input_shape) != 3:
        raise ValueError(f"{kind} layer {layer.name!r} expects images of shape (None, height, width, channels), "
                         f"got {format_shape(input_shape)}")
    out_h, pad_top = window_geometry(input_shape[0], window[0], strides[0], layer.padding)
    out_w, pad_left = window_geometry(input_shape[1], window[1], strides[1], layer.padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{kind} layer {layer.name!r}: {what} {tuple(window)} is larger than its valid-padded "
                         f"input {format_shape(input_shape)}; use padding='same' or a smaller {what}")
    return (out_h, out_w), pad_top, pad_left
