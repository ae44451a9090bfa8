"""Embedding: a trainable vector for each integer index."""

import numpy as np

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.layers.base import Layer

__all__ = ["Embedding"]


class Embedding(Layer):
    r"""Look up row ``x`` of a table: ``y[n, ...] = E[x[n, ...]]``.

    Shapes: ``x`` (N, ...) of integer indices in ``[0, input_dim)`` (given as
    integers or as floats with integer values: a model casts its input to
    float32, as Keras); the table ``E`` (``input_dim``, ``output_dim``),
    Keras's ``embeddings``; ``y`` (N, ..., ``output_dim``).

    A lookup is a product by one-hot rows, :math:`y = \text{onehot}(x) E`, so
    backward is :math:`\partial L/\partial E = \text{onehot}(x)^T\,
    \partial L/\partial y`: each output row's gradient is added to the row of
    ``E`` it came from, and an index used twice collects both
    (``np.add.at``, which adds repeated indices, where ``E.grad[x] += g``
    would keep only one). Indices are not differentiable: the input gradient
    is zero.

    Parameters
    ----------
    input_dim : int
        The number of indices (the vocabulary's size).
    output_dim : int
        The length of each vector.
    embeddings_initializer : str
        Keras's default ``"uniform"``: uniform in [-0.05, 0.05].
    embeddings_regularizer, embeddings_constraint
        As Dense's kernel's.
    mask_zero : bool
        Index 0 is padding: the layer makes a mask ``x != 0`` (N, T) that
        the layers after it read (a recurrent layer skips those steps;
        :mod:`nnscratch.models.masking`). Row 0 of the table is still looked
        up, so ``input_dim`` counts it, as in Keras. Inputs are then
        sequences of indices, (None, T).
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, **kwargs):
        if not isinstance(mask_zero, bool):
            raise TypeError(f"mask_zero must be True or False, got {mask_zero!r}")
        super().__init__(**kwargs)
        self.mask_zero = self.makes_mask = self.supports_masking = mask_zero
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        initializers.get(embeddings_initializer)  # fail early
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)

    def build(self, input_shape):
        if self.mask_zero and len(input_shape) != 1:
            raise ValueError(f"Embedding {self.name!r} with mask_zero=True takes sequences of indices, (None, "
                             f"timesteps), got (None, {', '.join(map(str, input_shape))})")
        shape = (self.input_dim, self.output_dim)
        self.embeddings = self.new_parameter(
            "embeddings", initializers.get(self.embeddings_initializer)(shape, rng.new_generator()),
            constraint=self.embeddings_constraint)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def indices(self, x) -> np.ndarray:
        """``x`` as integer indices; a ValueError names the first that is not an integer in ``[0, input_dim)``."""
        x = np.asarray(x)
        index = x.astype(np.int64)
        bad = (index != x) | (index < 0) | (index >= self.input_dim)
        if bad.any():
            raise ValueError(f"Embedding {self.name!r} takes integer indices in [0, {self.input_dim}), got "
                             f"{x[bad].flat[0].item():g} (sample {int(np.argwhere(bad)[0, 0])})")
        return index

    def compute_mask(self, inputs, mask):
        """``inputs != 0`` (N, T) with ``mask_zero``, else None (an input mask is not passed on, as Keras)."""
        return np.asarray(inputs) != 0 if self.mask_zero else None

    def forward(self, x, training=False):
        self.check_input(x)
        index = self.indices(x)
        self._index = index if training else None
        return self.embeddings.value[index]

    def backward(self, grad_output):
        self.embeddings.grad[...] = 0
        np.add.at(self.embeddings.grad, self._index, grad_output)
        return None if self.skip_input_gradient else np.zeros(self._index.shape, dtype=grad_output.dtype)

    def weight_regularizers(self):
        return {} if self.embeddings_regularizer is None else {"embeddings": self.embeddings_regularizer}

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": self.embeddings_initializer,
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint), "mask_zero": self.mask_zero}
