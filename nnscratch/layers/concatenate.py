r"""Concatenate: join branches along one axis, as ``keras.layers.Concatenate``."""

import numpy as np

from nnscratch.layers.base import format_shape
from nnscratch.layers.merge import Merge

__all__ = ["Concatenate", "concatenate"]


class Concatenate(Merge):
    r"""Join the inputs along ``axis``: :math:`y = [x_1, x_2, \dots, x_K]` along that axis.

    Parameters
    ----------
    axis : int
        As Keras counts it, with the batch axis as axis 0: ``-1`` (the
        default) is the last axis (channels for NHWC images, features for
        vectors), ``1`` the first axis of a sample. The batch axis itself
        (``0``, or ``-rank``) raises a ValueError, as does an axis out of range.

    The inputs must have the same rank and the same sizes on every other axis
    (no broadcasting); the output's size along ``axis`` is the sum of theirs,
    :math:`d = \sum_k d_k`.

    Backward cuts :math:`g = \partial L / \partial y` back into the pieces
    the inputs filled: :math:`\partial L / \partial x_k` is the slice
    :math:`g[\dots, o_k : o_k + d_k, \dots]` along ``axis``, with
    :math:`o_k = d_1 + \dots + d_{k-1}` (each output value is one input
    value, copied). The slices are returned as contiguous arrays.
    """

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concatenate(axis=...) must be an integer, got {axis!r}")
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _sample_axis(self, rank) -> int:
        """The axis of one sample (no batch axis) that Keras's ``axis`` names, for samples of ``rank`` axes."""
        batch_rank = rank + 1
        if not -batch_rank <= self.axis < batch_rank or self.axis % batch_rank == 0:
            raise ValueError(f"Concatenate(axis={self.axis}) for inputs of shape (None, ...) with {rank} sample "
                             f"axes: axis must be one of 1..{rank} or -1..-{rank} (0 is the batch axis)")
        return self.axis % batch_rank - 1

    def compute_mask(self, inputs, mask):
        """Keras's rule: None if no input carries a mask; else the masks (all True for an input without one)
        spread over their inputs' shapes, concatenated along ``axis``, and any() over the last axis.

        Along the features (``axis=-1``) that is the OR of the masks, an unmasked input counting everywhere;
        along the steps (``axis=1``) the masks follow each other.
        """
        if mask is None or all(m is None for m in mask):
            return None
        spread = [np.ones(x.shape, dtype=bool) if m is None
                  else np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape)
                  for x, m in zip(inputs, mask)]
        return np.concatenate(spread, axis=self.axis).any(axis=-1)

    def output_masked(self, input_masked) -> bool:
        """Whether the output carries a mask: some input does."""
        return any(input_masked)

    def compute_output_shape(self, input_shape) -> tuple:
        ranks = {len(shape) for shape in input_shape}
        shapes = [format_shape(shape) for shape in input_shape]
        if len(ranks) > 1:
            raise ValueError(f"Concatenate: the inputs must have the same rank, got shapes {shapes}")
        axis = self._sample_axis(ranks.pop())
        others = {shape[:axis] + shape[axis + 1:] for shape in input_shape}
        if len(others) > 1:
            raise ValueError(f"Concatenate(axis={self.axis}) needs inputs with matching shapes except along that "
                             f"axis, got shapes {shapes}")
        output = list(input_shape[0])
        output[axis] = sum(shape[axis] for shape in input_shape)
        return tuple(output)

    def merge(self, inputs, training):
        return np.concatenate(inputs, axis=self._sample_axis(len(self.input_shape[0])) + 1)

    def merge_gradients(self, grad_output):
        axis = self._sample_axis(len(self.input_shape[0]))
        ends = np.cumsum([shape[axis] for shape in self.input_shape])[:-1]
        return [np.ascontiguousarray(piece) for piece in np.split(grad_output, ends, axis=axis + 1)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def concatenate(inputs, axis=-1, **kwargs):
    """Keras's functional form: ``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
