r"""Cut the centre of NHWC images to a fixed size (Keras's ``CenterCrop``)."""

import numpy as np

from nnscratch.layers.base import Layer
from nnscratch.layers.resizing import Resizing, check_images

__all__ = ["CenterCrop"]


class CenterCrop(Layer):
    r"""The centred ``height`` x ``width`` window of each image, as Keras 3's ``CenterCrop``.

    Forward :math:`y = x[t:t+h,\ l:l+w]` with :math:`t = \lfloor (H - h)/2 \rfloor`,
    :math:`l = \lfloor (W - w)/2 \rfloor`; backward puts the gradient back in
    that window, 0 elsewhere. An image smaller than the target along either
    axis is resized instead, as Keras's: the centred window of the target's
    aspect ratio, resized bilinearly (:class:`~nnscratch.layers.Resizing`
    with ``crop_to_aspect_ratio``).
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._resize = Resizing(height, width, crop_to_aspect_ratio=True, data_format=data_format)
        self.height, self.width = self._resize.height, self._resize.width

    def build(self, input_shape):
        input_shape = check_images(self, input_shape)
        rows, cols, channels = input_shape
        self._crops = rows >= self.height and cols >= self.width
        if not self._crops:
            self._resize.build(input_shape)
        self._top, self._left = (rows - self.height) // 2, (cols - self.width) // 2
        self.input_shape, self._output_shape, self.built = tuple(input_shape), (self.height, self.width, channels), \
            True

    def forward(self, x, training=False):
        self.check_input(x)
        if not self._crops:
            return self._resize.forward(x)
        return x[:, self._top:self._top + self.height, self._left:self._left + self.width]

    def backward(self, grad_output):
        if not self._crops:
            return self._resize.backward(grad_output)
        grad = np.zeros((len(grad_output), *self.input_shape), dtype=grad_output.dtype)
        grad[:, self._top:self._top + self.height, self._left:self._left + self.width] = grad_output
        return grad

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
