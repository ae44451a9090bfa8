r"""Dot: the dot product of two branches along one axis each, as ``keras.layers.Dot``."""

import numpy as np

from nnscratch.layers.base import format_shape
from nnscratch.layers.merge import Merge

__all__ = ["Dot", "dot"]

EPSILON = 1e-7   # Keras's backend.epsilon(): the smallest norm normalize divides by


class Dot(Merge):
    r"""Per sample, contract axis ``a`` of :math:`x_1` with axis ``b`` of :math:`x_2` (Keras's ``batch_dot``).

    With the contracted axes moved last in :math:`x_1` and first in :math:`x_2`,
    each sample is a matrix product :math:`Y = A B` of :math:`A` (P, K) and
    :math:`B` (K, Q), P and Q the other axes' sizes flattened; the output has
    :math:`x_1`'s other axes, then :math:`x_2`'s (two vectors give shape (1,),
    as Keras). So backward is the matrix product's:

    .. math:: \frac{\partial L}{\partial A} = G B^T, \qquad \frac{\partial L}{\partial B} = A^T G

    With ``normalize=True`` each input is first divided by its L2 norm along
    its axis (the output is then a cosine), :math:`u = x / \max(\lVert x\rVert, \epsilon)`,
    whose backward is :math:`\partial L/\partial x = (g_u - u\,(u \cdot g_u)) / \lVert x\rVert`
    (for norms above :math:`\epsilon`; below, :math:`g_u / \epsilon`).

    Parameters
    ----------
    axes : int or tuple of 2 ints
        As Keras counts them, the batch axis being 0: one axis for both inputs,
        or one each. Negative values count from the end. The batch axis is refused.
    normalize : bool
        L2-normalise both inputs along their axes first (default False).
    """

    min_inputs = max_inputs = 2

    def compute_mask(self, inputs, mask):
        """No mask: a dot product mixes the steps (Keras's ``Dot`` returns None too, without a warning)."""
        return None

    def output_masked(self, input_masked) -> bool:
        return False

    def __init__(self, axes, normalize=False, **kwargs):
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
                raise ValueError(f"Dot(axes=...) must be an int or a tuple of 2 ints, got {axes!r}")
            axes = tuple(int(a) for a in axes)
        elif isinstance(axes, bool) or not isinstance(axes, (int, np.integer)):
            raise TypeError(f"Dot(axes=...) must be an int or a tuple of 2 ints, got {axes!r}")
        else:
            axes = int(axes)
        super().__init__(**kwargs)
        self.axes, self.normalize = axes, bool(normalize)

    def _sample_axes(self, shapes) -> tuple:
        """The contracted axis of each input, counted in one sample (no batch axis)."""
        chosen = self.axes if isinstance(self.axes, tuple) else (self.axes, self.axes)
        axes = []
        for axis, shape in zip(chosen, shapes):
            rank = len(shape) + 1
            if not -rank <= axis < rank or axis % rank == 0:
                raise ValueError(f"Dot(axes={self.axes}): axis {axis} is not an axis of a sample of shape "
                                 f"{format_shape(shape)} (1 to {rank - 1}, or -1 to {1 - rank}; 0 is the batch axis)")
            axes.append(axis % rank - 1)
        return tuple(axes)

    def compute_output_shape(self, input_shape) -> tuple:
        (a, b), (s1, s2) = self._sample_axes(input_shape), input_shape
        if s1[a] != s2[b]:
            raise ValueError(f"Dot(axes={self.axes}): the contracted axes have sizes {s1[a]} and {s2[b]}, inputs of "
                             f"shapes {[format_shape(s) for s in input_shape]}")
        return (s1[:a] + s1[a + 1:] + s2[:b] + s2[b + 1:]) or (1,)

    def _matrices(self, x1, x2):
        """``A`` (N, P, K) and ``B`` (N, K, Q): the contracted axis moved last in ``x1``, first in ``x2``."""
        a, b = self._sample_axes(self.input_shape)
        n = len(x1)
        return (np.moveaxis(x1, a + 1, -1).reshape(n, -1, x1.shape[a + 1]),
                np.moveaxis(x2, b + 1, 1).reshape(n, x2.shape[b + 1], -1))

    def _from_matrix(self, grad, x, axis, last):
        """The inverse of :meth:`_matrices` for one input: its gradient as a matrix back to ``x``'s shape."""
        shape = list(x.shape)
        size = shape.pop(axis + 1)
        moved = shape + [size] if last else shape[:1] + [size] + shape[1:]
        return np.ascontiguousarray(np.moveaxis(grad.reshape(moved), -1 if last else 1, axis + 1))

    def _normalized(self, x, axis):
        """``x / max(norm, eps)`` along ``axis`` (of a sample) and the norms, kept for backward."""
        norm = np.sqrt(np.sum(np.square(x), axis=axis + 1, keepdims=True))
        return x / np.maximum(norm, x.dtype.type(EPSILON)), norm

    def merge(self, inputs, training):
        x1, x2 = inputs
        a, b = self._sample_axes(self.input_shape)
        self._norms = None
        if self.normalize:
            (x1, n1), (x2, n2) = self._normalized(x1, a), self._normalized(x2, b)
            self._norms = (n1, n2)
        self._x = (x1, x2) if training else None
        left, right = self._matrices(x1, x2)
        return (left @ right).reshape((len(x1),) + self._output_shape)

    def merge_gradients(self, grad_output):
        if self._x is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(inputs, training=True)")
        x1, x2 = self._x
        a, b = self._sample_axes(self.input_shape)
        left, right = self._matrices(x1, x2)
        g = grad_output.reshape(len(x1), left.shape[1], right.shape[2])
        grads = [self._from_matrix(g @ right.transpose(0, 2, 1), x1, a, last=True),
                 self._from_matrix(left.transpose(0, 2, 1) @ g, x2, b, last=False)]
        if self.normalize:   # through u = x / max(|x|, eps): (g - u (u . g)) / |x|, or g / eps for tiny norms
            for k, (u, norm, axis) in enumerate(zip(self._x, self._norms, (a, b))):
                along = np.sum(u * grads[k], axis=axis + 1, keepdims=True)
                tiny = norm <= EPSILON
                grads[k] = np.where(tiny, grads[k] / u.dtype.type(EPSILON),
                                    (grads[k] - u * along) / np.where(tiny, 1, norm))
        return grads

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes) if isinstance(self.axes, tuple) else self.axes,
                "normalize": self.normalize}


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Keras's functional form: ``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
