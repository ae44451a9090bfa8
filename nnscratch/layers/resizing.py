r"""Resize NHWC images to a fixed height and width (Keras's ``Resizing``), bilinear or nearest."""

import numpy as np

from nnscratch.layers.base import Layer, format_shape

__all__ = ["Resizing", "resize_matrix", "aspect_crop", "check_images"]

INTERPOLATIONS = ("bilinear", "nearest")


def check_images(layer, input_shape) -> tuple:
    """``input_shape`` as a tuple, after a ValueError unless it is one image's, (height, width, channels)."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} layer {layer.name!r} takes images (None, height, width, channels), "
                         f"got {format_shape(tuple(input_shape))}")
    return tuple(input_shape)


def resize_matrix(in_size, out_size, interpolation="bilinear") -> np.ndarray:
    """The (out_size, in_size) matrix ``A`` with ``resized = A @ column``, as TensorFlow's ``resize`` (half-pixel).

    Output pixel ``i`` sits at input coordinate ``u = (i + 1/2) s - 1/2``,
    ``s = in_size / out_size``. Bilinear: the two pixels around ``u``
    (clamped to the image), weighted ``1 - f`` and ``f`` with ``f = u -
    floor(u)``. Nearest: pixel ``min(floor((i + 1/2) s), in_size - 1)``.
    """
    scale = in_size / out_size
    rows = np.arange(out_size)
    matrix = np.zeros((out_size, in_size))
    if interpolation == "nearest":
        matrix[rows, np.minimum(np.floor((rows + 0.5) * scale).astype(int), in_size - 1)] = 1.0
        return matrix
    position = (rows + 0.5) * scale - 0.5
    below = np.floor(position)
    fraction = position - below
    lower = np.clip(below.astype(int), 0, in_size - 1)
    upper = np.clip(np.ceil(position).astype(int), 0, in_size - 1)
    np.add.at(matrix, (rows, lower), 1.0 - fraction)
    np.add.at(matrix, (rows, upper), fraction)
    return matrix


def aspect_crop(height, width, target_height, target_width):
    """``(top, left, rows, cols)``: the centred window of the target's aspect ratio (``crop_to_aspect_ratio``)."""
    rows = max(min(height, int(np.float32(width * target_height) / np.float32(target_width))), 1)
    cols = max(min(width, int(np.float32(height * target_width) / np.float32(target_height))), 1)
    return int(np.float32(height - rows) / 2), int(np.float32(width - cols) / 2), rows, cols


class Resizing(Layer):
    r"""Resize images (N, H, W, C) to (N, h, w, C), as Keras 3's ``Resizing`` (TensorFlow's ``resize``).

    Each image channel is resized along the rows and then the columns by
    fixed matrices :math:`A_h` (h, H) and :math:`A_w` (w, W)
    (:func:`resize_matrix`): forward :math:`Y = A_h X A_w^\top`, backward
    :math:`\partial L/\partial X = A_h^\top G A_w` (each pixel sends its
    gradient back to the pixels it was read from, with the same weights).
    ``crop_to_aspect_ratio=True`` first cuts the centred window of the
    target's aspect ratio (its gradient is 0 outside it);
    ``pad_to_aspect_ratio=True`` first pads the image with ``fill_value``
    rows or columns on both sides, as Keras does.

    Parameters
    ----------
    height, width : int
    interpolation : {"bilinear", "nearest"}
    crop_to_aspect_ratio, pad_to_aspect_ratio : bool
    fill_value : float
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Resizing: {name} must be a positive integer, got {value!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"Resizing: interpolation must be one of {INTERPOLATIONS} (nnscratch has no "
                             f"{interpolation!r}), got {interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: only one of pad_to_aspect_ratio and crop_to_aspect_ratio can be True")
        if fill_mode != "constant" or data_format not in (None, "channels_last"):
            raise ValueError(f"Resizing: only fill_mode='constant' and channels_last images, got fill_mode="
                             f"{fill_mode!r}, data_format={data_format!r}")
        self.height, self.width, self.interpolation = int(height), int(width), interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_value = float(fill_value)
        self._window = None

    def build(self, input_shape):
        input_shape = check_images(self, input_shape)
        rows, cols, channels = input_shape
        self._window = self._pad = None
        if self.crop_to_aspect_ratio:
            self._window = aspect_crop(rows, cols, self.height, self.width)
            rows, cols = self._window[2:]
        elif self.pad_to_aspect_ratio:
            pad_rows = max(rows, int(np.float32(cols * self.height) / np.float32(self.width)))
            pad_cols = max(cols, int(np.float32(rows * self.width) / np.float32(self.height)))
            self._pad = (int(np.float32(pad_rows - rows) / 2), int(np.float32(pad_cols - cols) / 2))
            rows, cols = rows + 2 * self._pad[0], cols + 2 * self._pad[1]
        self._rows = resize_matrix(rows, self.height, self.interpolation)
        self._cols = resize_matrix(cols, self.width, self.interpolation)
        self.input_shape, self._output_shape, self.built = tuple(input_shape), (self.height, self.width, channels), \
            True

    def forward(self, x, training=False):
        self.check_input(x)
        if self._window is not None:
            top, left, rows, cols = self._window
            x = x[:, top:top + rows, left:left + cols]
        elif self._pad is not None:
            (t, l) = self._pad
            x = np.pad(x, ((0, 0), (t, t), (l, l), (0, 0)), constant_values=self.fill_value)
        a_rows, a_cols = self._rows.astype(x.dtype), self._cols.astype(x.dtype)
        return np.einsum("pw,nhwc->nhpc", a_cols, np.einsum("oh,nhwc->nowc", a_rows, x, optimize=True),
                         optimize=True)

    def backward(self, grad_output):
        g = grad_output
        a_rows, a_cols = self._rows.astype(g.dtype), self._cols.astype(g.dtype)
        grad = np.einsum("oh,nowc->nhwc", a_rows, np.einsum("pw,nhpc->nhwc", a_cols, g, optimize=True),
                         optimize=True)
        if self._window is not None:
            top, left, rows, cols = self._window
            full = np.zeros((len(g), *self.input_shape), dtype=g.dtype)
            full[:, top:top + rows, left:left + cols] = grad
            return full
        if self._pad is not None:
            (t, l) = self._pad
            return grad[:, t:grad.shape[1] - t, l:grad.shape[2] - l]
        return grad

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_value": self.fill_value}
