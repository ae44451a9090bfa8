"""Shape arithmetic shared by the sliding-window layers (Conv2D, MaxPooling2D), and their dilation."""

import math

import numpy as np

from nnscratch import kernels
from nnscratch.layers.base import format_shape

__all__ = ["grouped_conv_forward", "grouped_conv_backward", "check_groups", "normalize_tuple", "normalize_padding",
           "window_geometry", "place_windows", "check_dilation",
           "dilated_span", "spread_kernel", "gather_taps"]


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


def check_dilation(kind, strides, dilation_rate):
    """A dilation above 1 needs strides of 1 (as in Keras and TensorFlow): a ValueError naming both otherwise."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(f"{kind}: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), got "
                         f"strides={tuple(strides)} and dilation_rate={tuple(dilation_rate)}")


def dilated_span(kernel_size, dilation_rate) -> tuple:
    """Rows and columns one dilated window covers: ``(k - 1) d + 1`` each."""
    return tuple((k - 1) * d + 1 for k, d in zip(kernel_size, dilation_rate))


def spread_kernel(kernel, dilation_rate):
    """``kernel`` (kh, kw, ...) with ``d - 1`` zeros between its taps along each axis: a dilated kernel as a plain one.

    A convolution by the spread kernel is the dilated convolution; ``kernel``
    itself when every rate is 1.
    """
    if all(d == 1 for d in dilation_rate):
        return kernel
    spread = np.zeros((*dilated_span(kernel.shape[:2], dilation_rate), *kernel.shape[2:]), dtype=kernel.dtype)
    spread[::dilation_rate[0], ::dilation_rate[1]] = kernel
    return spread


def gather_taps(grad_spread, dilation_rate):
    """The kernel's gradient from the spread kernel's: each tap's is that of its place (the zeros' are dropped)."""
    return grad_spread[::dilation_rate[0], ::dilation_rate[1]]


def check_groups(kind, groups, filters) -> int:
    """``groups`` as an int after a ValueError unless it is positive and divides ``filters`` (as Keras)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{kind}: groups must be a positive integer, got {groups!r}")
    if filters % groups:
        raise ValueError(f"{kind}: the number of filters ({filters}) must be evenly divisible by the number of groups "
                         f"({groups})")
    return int(groups)


def _grouped(image, kernel, geometry, groups):
    """im2col of ``image`` as (rows, taps, groups, C/groups) and the kernel as (taps, C/groups, groups, F/groups)."""
    cols = kernels.backend().im2col(image, *geometry)
    windows = cols.reshape(len(cols), -1, groups, image.shape[-1] // groups)
    return windows, kernel.reshape(-1, kernel.shape[2], groups, kernel.shape[3] // groups)


def grouped_conv_forward(image, kernel, geometry, groups):
    r"""A grouped convolution of NHWC ``image`` with the (spread) ``kernel`` (kh, kw, C/G, F) as (rows, F).

    One im2col; then each group's windows times its block of the kernel,
    :math:`z_{r,g,f} = \sum_{t,c} X_{r,t,g,c} K_{t,c,g,f}` (docs/backprop.md 3, grouped).
    """
    windows, taps = _grouped(image, kernel, geometry, groups)
    z = np.einsum("rtgc,tcgf->rgf", windows, taps)
    return z.reshape(len(z), -1)


def grouped_conv_backward(image, grad_z, kernel, geometry, groups, input_gradient=True):
    """``(dL/dK of the spread kernel, dL/dx or None)`` of :func:`grouped_conv_forward`, from ``grad_z`` (rows, F)."""
    windows, taps = _grouped(image, kernel, geometry, groups)
    g = grad_z.reshape(len(grad_z), groups, -1)
    grad_kernel = np.einsum("rtgc,rgf->tcgf", windows, g).reshape(kernel.shape)
    if not input_gradient:
        return grad_kernel, None
    grad_windows = np.einsum("rgf,tcgf->rtgc", g, taps).reshape(len(g), -1)
    return grad_kernel, kernels.backend().col2im(np.ascontiguousarray(grad_windows), image.shape, *geometry)
