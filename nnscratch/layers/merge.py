r"""Merge layers: join branches of a functional model elementwise, as Keras's ``Add``, ``Multiply``, ...

A merge layer is called on a *list* of tensors and returns one::

    x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = BatchNormalization()(Conv2D(16, 3, padding="same")(x))
    x = Add()([x, y])                   # or add([x, y]), Keras's functional form

``forward`` takes a list of arrays :math:`x_1, \dots, x_K` and returns one
array; ``backward`` takes :math:`g = \partial L / \partial y` and returns a
list of gradients :math:`\partial L / \partial x_k`, one per input, in the
order of the inputs. The layers have no weights.

Shapes, as Keras's ``Merge``: the inputs have the same rank and each sample
axis the same size or 1; an axis of size 1 is *broadcast* (repeated) to the
others' size, ``(1, 3)`` and ``(4, 1)`` give ``(4, 3)``. The gradient of a
broadcast input is summed over the axes it was repeated along (each of its
values was used that many times). Inputs of different ranks (which Keras
pads with axes after the batch axis) raise a ValueError.

Masks (sequences padded, ``Embedding(mask_zero=True)``): as Keras, the
output of an elementwise merge carries the OR of its inputs' masks when
every input carries one (a step counts if it counts in some input), and no
mask otherwise; :class:`~nnscratch.layers.Concatenate` has its own rule.

Ties in :class:`Maximum` / :class:`Minimum`: where several inputs hold the
largest (smallest) value, the whole gradient goes to the *first* of them, as
TensorFlow's ``maximum`` folded over the list (``max(max(x1, x2), x3)``,
each step sending a tie to its left side) does in Keras.
"""

import numpy as np

from nnscratch.layers.base import Layer, SymbolicTensor, format_shape

__all__ = ["Merge", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
           "add", "subtract", "multiply", "average", "maximum", "minimum"]


def _fold(operation, inputs):
    """``operation`` (``np.add``, ``np.multiply``) over the list, left to right, into the new result where it can."""
    y = operation(inputs[0], inputs[1])
    for x in inputs[2:]:
        y = operation(y, x, out=y if np.broadcast_shapes(y.shape, x.shape) == y.shape else None)
    return y


def _unbroadcast(grad, shape):
    """Sum ``grad`` (a batch) over the sample axes where ``shape`` (one sample's) has size 1 and ``grad`` has more."""
    axes = tuple(axis + 1 for axis, size in enumerate(shape) if size == 1 and grad.shape[axis + 1] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class Merge(Layer):
    """Base of the merge layers: called on a list of tensors, ``forward`` takes a list, ``backward`` returns one.

    ``input_shape`` is the list of the inputs' sample shapes. Subclasses give
    :meth:`merge` (forward on the broadcast-compatible list) and
    :meth:`merge_gradients` (one gradient per input, of the output's shape;
    the base sums broadcast axes away). ``min_inputs`` / ``max_inputs``
    bound the number of inputs.
    """

    takes_list = True
    supports_masking = True
    min_inputs = 2
    max_inputs = None

    def __init__(self, **kwargs):
        if kwargs.get("input_shape") is not None:
            raise ValueError(f"{type(self).__name__} takes no input_shape: it is called on a list of tensors")
        super().__init__(**kwargs)

    # ------------------------------------------------------------ shapes
    def _check_count(self, count) -> None:
        kind = type(self).__name__
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            exact = self.max_inputs == self.min_inputs
            expected = f"exactly {self.min_inputs}" if exact else f"at least {self.min_inputs}"
            raise ValueError(f"a {kind} layer must be called on a list of {expected} tensors, got {count}")

    def _check_shapes(self, input_shapes) -> list:
        if not isinstance(input_shapes, (list, tuple)) or not all(
                isinstance(shape, (list, tuple)) for shape in input_shapes):
            raise ValueError(f"a {type(self).__name__} layer is built for a list of input shapes, one per input, "
                             f"such as [(8,), (8,)]; got {input_shapes!r}")
        self._check_count(len(input_shapes))
        return [self._check_shape(shape) for shape in input_shapes]

    def build(self, input_shape) -> None:
        """Check the list of input shapes (one per input, no batch axis) and fix the output shape."""
        shapes = self._check_shapes(input_shape)
        self._output_shape = tuple(self.compute_output_shape(shapes))
        self.input_shape = shapes
        self.built = True

    def compute_output_shape(self, input_shape) -> tuple:
        """The broadcast shape of the inputs (see the module docstring); a ValueError if they do not fit."""
        ranks = {len(shape) for shape in input_shape}
        if len(ranks) > 1:
            raise ValueError(f"{type(self).__name__}: the inputs must have the same rank, got shapes "
                             f"{[format_shape(shape) for shape in input_shape]}")
        output = []
        for sizes in zip(*input_shape):
            larger = {size for size in sizes if size != 1}
            if len(larger) > 1:
                raise ValueError(f"{type(self).__name__}: inputs have incompatible shapes "
                                 f"{[format_shape(shape) for shape in input_shape]} (each axis must have the same "
                                 "size, or size 1 to be broadcast)")
            output.append(larger.pop() if larger else 1)
        return tuple(output)

    # --------------------------------------------------------------- calls
    def __call__(self, inputs, training=False):
        """Call on a list of SymbolicTensors (functional API) or run forward on a list of arrays."""
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"a merge layer ({type(self).__name__}) must be called on a list of tensors, "
                             f"e.g. {type(self).__name__}()([a, b]); got {type(inputs).__name__}")
        symbolic = [isinstance(tensor, SymbolicTensor) for tensor in inputs]
        if inputs and all(symbolic):
            shapes = [tensor.shape for tensor in inputs]
            if not self.built:
                self.build(shapes)
            elif shapes != self.input_shape:
                raise ValueError(f"layer {self.name!r} was built for input shapes "
                                 f"{[format_shape(shape) for shape in self.input_shape]}, got "
                                 f"{[format_shape(shape) for shape in shapes]}")
            return SymbolicTensor(self._output_shape, self, parents=tuple(inputs))
        if any(symbolic):
            raise TypeError(f"layer {self.name!r}: call it on symbolic tensors only or on arrays only, not a mix")
        arrays = [np.asarray(array) for array in inputs]
        if not self.built:
            self.build([array.shape[1:] for array in arrays])
        return self.forward(arrays, training=training)

    def check_input(self, inputs) -> None:
        """Raise a ValueError unless ``inputs`` is a list of batches of the shapes the layer was built for."""
        if not self.built:
            raise RuntimeError(f"layer {self.name!r} is not built: call build(input_shapes) or call the layer first")
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) takes a list of arrays, "
                             f"got {type(inputs).__name__}")
        if len(inputs) != len(self.input_shape):
            raise ValueError(f"layer {self.name!r} was built for {len(self.input_shape)} inputs, got {len(inputs)}")
        for x, shape in zip(inputs, self.input_shape):
            if x.ndim != len(shape) + 1 or x.shape[1:] != shape or x.shape[0] != inputs[0].shape[0]:
                raise ValueError(f"layer {self.name!r}: expected inputs of shapes "
                                 f"{[format_shape(s) for s in self.input_shape]} (one batch size), got "
                                 f"{[x.shape for x in inputs]}")

    def forward(self, inputs, training=False):
        """The merged batch; with ``training=True`` cache what :meth:`backward` needs."""
        self.check_input(inputs)
        y = self.merge(inputs, training)
        return y

    def backward(self, grad_output):
        """The list of dL/dx_k, one per input, each of its input's shape."""
        grads = self.merge_gradients(grad_output)
        return [_unbroadcast(grad, shape) for grad, shape in zip(grads, self.input_shape)]

    def compute_mask(self, inputs, mask):
        """Keras's rule for the elementwise merges: the OR of the inputs' masks if each carries one, else None.

        ``mask`` is the list of the inputs' masks (None for an input without one), or None.
        """
        if mask is None or any(m is None for m in mask):
            return None
        return np.logical_or.reduce(np.broadcast_arrays(*mask))

    def output_masked(self, input_masked) -> bool:
        """Whether the output carries a mask: every input does (``input_masked``, one flag an input)."""
        return all(input_masked)

    def merge(self, inputs, training):
        """Forward on the checked list of batches (subclasses)."""
        raise NotImplementedError

    def merge_gradients(self, grad_output):
        """One gradient per input, in the output's shape, before broadcast axes are summed (subclasses)."""
        raise NotImplementedError


class Add(Merge):
    r"""Elementwise sum of the inputs: :math:`y = \sum_k x_k`.

    Backward: :math:`\partial L / \partial x_k = g` for every input (the same
    array, not a copy: layers never write into the gradient they are given).
    """

    def merge(self, inputs, training):
        return _fold(np.add, inputs)

    def merge_gradients(self, grad_output):
        return [grad_output] * len(self.input_shape)


class Subtract(Merge):
    r"""Difference of exactly two inputs: :math:`y = x_1 - x_2`.

    Backward: :math:`\partial L / \partial x_1 = g`,
    :math:`\partial L / \partial x_2 = -g`.
    """

    min_inputs = max_inputs = 2

    def merge(self, inputs, training):
        return inputs[0] - inputs[1]

    def merge_gradients(self, grad_output):
        return [grad_output, -grad_output]


class Multiply(Merge):
    r"""Elementwise product of the inputs: :math:`y = \prod_k x_k`.

    Backward: :math:`\partial L / \partial x_k = g \prod_{j \ne k} x_j`, the
    product of the *other* inputs (computed as such, not as :math:`y / x_k`,
    which fails where :math:`x_k = 0`). Training caches the inputs.

    With masks, as Keras: an input's value at a step where it is masked is
    replaced by 1 (and gets no gradient); when every input carries a mask,
    the output is 0 at the steps where none is valid.
    """

    uses_mask = True

    def forward(self, inputs, training=False, mask=None):
        """The product; ``mask`` (a mask or None an input) replaces masked values by 1 first."""
        self.check_input(inputs)
        return self.merge(inputs, training, mask)

    def merge(self, inputs, training, mask=None):
        valid = output_valid = None
        if mask is not None and any(m is not None for m in mask):
            valid = [None if m is None else self.checked_mask(m, x)[..., None] for x, m in zip(inputs, mask)]
            inputs = [x if v is None else np.where(v, x, x.dtype.type(1)) for x, v in zip(inputs, valid)]
            if all(v is not None for v in valid):
                output_valid = np.logical_or.reduce(np.broadcast_arrays(*valid))
        self._inputs, self._valid, self._output_valid = (list(inputs), valid, output_valid) if training else (None,) * 3
        y = _fold(np.multiply, inputs)
        return y if output_valid is None else np.where(output_valid, y, y.dtype.type(0))

    def merge_gradients(self, grad_output):
        if getattr(self, "_inputs", None) is None:
            raise RuntimeError(f"layer {self.name!r}: backward needs a forward pass with training=True first")
        if self._output_valid is not None:
            grad_output = grad_output * self._output_valid
        grads = []
        for k in range(len(self._inputs)):
            grad = grad_output
            for j, x in enumerate(self._inputs):
                if j != k:
                    grad = grad * x
            if self._valid is not None and self._valid[k] is not None:
                grad = grad * self._valid[k]
            grads.append(grad)
        return grads


class Average(Merge):
    r"""Elementwise mean of the inputs: :math:`y = \frac{1}{K} \sum_k x_k`.

    Backward: :math:`\partial L / \partial x_k = g / K`.
    """

    def merge(self, inputs, training):
        y = _fold(np.add, inputs)
        y /= len(inputs)
        return y

    def merge_gradients(self, grad_output):
        grad = grad_output / len(self.input_shape)
        return [grad] * len(self.input_shape)


class _Extremum(Merge):
    """Maximum / Minimum: ``y`` is the winning input's value; its gradient goes to the winner only.

    With masks (as Keras's ``_apply_merge_op_and_or_mask``) only the inputs
    valid at a step compete there (an input without a mask is valid
    everywhere); where none is, the first input wins.
    """

    _pick = None  # np.argmax or np.argmin
    _worst = None  # the value that never wins: -inf for the maximum, +inf for the minimum
    uses_mask = True

    def forward(self, inputs, training=False, mask=None):
        """The merged batch; ``mask`` (a mask or None an input) leaves out the inputs masked at a step."""
        self.check_input(inputs)
        return self.merge(inputs, training, mask)

    def merge(self, inputs, training, mask=None):
        stacked = np.stack(np.broadcast_arrays(*inputs))
        if mask is None or all(m is None for m in mask):
            winner = type(self)._pick(stacked, axis=0)  # the first winner on ties (see the module docstring)
        else:
            valid = np.stack([np.ones(stacked.shape[1:], dtype=bool) if m is None
                              else np.broadcast_to(self.checked_mask(m, x)[..., None], stacked.shape[1:])
                              for x, m in zip(inputs, mask)])
            winner = type(self)._pick(np.where(valid, stacked, self._worst), axis=0)
            winner[~valid.any(axis=0)] = 0
        self._winner = winner if training else None
        return np.take_along_axis(stacked, winner[None], axis=0)[0]

    def merge_gradients(self, grad_output):
        if getattr(self, "_winner", None) is None:
            raise RuntimeError(f"layer {self.name!r}: backward needs a forward pass with training=True first")
        zero = np.zeros((), dtype=grad_output.dtype)
        return [np.where(self._winner == k, grad_output, zero) for k in range(len(self.input_shape))]


class Maximum(_Extremum):
    r"""Elementwise maximum of the inputs: :math:`y = \max_k x_k`.

    Backward: :math:`\partial L / \partial x_k = g \, [k = k^*]` where
    :math:`k^*` is the input holding the maximum, the *first* such input on
    ties (as Keras on TensorFlow). Training caches :math:`k^*` for each value.
    """

    _pick = staticmethod(np.argmax)
    _worst = -np.inf


class Minimum(_Extremum):
    r"""Elementwise minimum of the inputs: :math:`y = \min_k x_k`.

    Backward: :math:`\partial L / \partial x_k = g \, [k = k^*]` where
    :math:`k^*` is the input holding the minimum, the *first* such input on
    ties (as Keras on TensorFlow). Training caches :math:`k^*` for each value.
    """

    _pick = staticmethod(np.argmin)
    _worst = np.inf


def add(inputs, **kwargs):
    """Keras's functional form: ``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Keras's functional form: ``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Keras's functional form: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Keras's functional form: ``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Keras's functional form: ``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Keras's functional form: ``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)
