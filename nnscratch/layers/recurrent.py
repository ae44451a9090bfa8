"""What SimpleRNN and LSTM share: weights, the time axis, and the two products outside the time loop.

A recurrent layer (SimpleRNN, LSTM, GRU) reads a batch of sequences ``x`` of shape (N, T, F) and
carries a state ``h_t`` (N, units) from step to step, starting from
``h_0 = 0``. Each step needs the pre-activations

.. math:: z_t = x_t W + h_{t-1} U + b,

with the kernel ``W`` (F, G units), the recurrent kernel ``U`` (units, G
units) and the bias ``b`` (G units,), where ``G`` is the number of blocks of
units (1 for SimpleRNN, the 4 gates of an LSTM, the 3 blocks of a GRU). ``x_t W + b`` does not
depend on the state, so it is computed for all steps at once, one product of
(N T, F) by (F, G units) before the loop (:meth:`Recurrent.forward`); only
``h_{t-1} U`` stays inside it (the subclass's ``_scan``).

Backward (*backpropagation through time*) goes the other way: the
subclass's ``_scan_backward`` runs the loop from the last step to the first
and returns ``dL/dz_t`` for every step; then, again outside the loop,

.. math::
    \\frac{\\partial L}{\\partial W} = \\sum_t x_t^T \\frac{\\partial L}{\\partial z_t}, \\quad
    \\frac{\\partial L}{\\partial U} = \\sum_t h_{t-1}^T \\frac{\\partial L}{\\partial z_t}, \\quad
    \\frac{\\partial L}{\\partial b} = \\sum_{t, n} \\frac{\\partial L}{\\partial z_{t,n}}, \\quad
    \\frac{\\partial L}{\\partial x_t} = \\frac{\\partial L}{\\partial z_t} W^T,

each one product over all N T rows. ``go_backwards=True`` reads the sequence
from its last step to its first and, as Keras, returns the outputs in that
order. The output is the last state ``h_T`` (N, units), or every state (N, T,
units) with ``return_sequences=True``.

``dropout`` (while training) multiplies the input by a mask ``m`` (N,
features) of zeros and ``1 / (1 - rate)``, one draw per sequence used at
every step, as Keras: ``x_t`` becomes ``x_t * m``, so ``dL/dW`` is taken
from the masked input and ``dL/dx_t = (dL/dz_t W^T) * m``.
``recurrent_dropout`` masks the state before its product the same way,
with a mask for each block of units (Keras's ``implementation=1``, which it
switches to then): block ``g`` of ``h_{t-1} U`` is ``(h_{t-1} * r_g) U_g``.
With both, the input gets a mask for each block too, ``(x_t * m_g) W_g``,
again as Keras. ``dL/dU_g`` is then taken from the masked states, and
what flows back to ``h_{t-1}`` through the product is
``sum_g (dL/dz_g U_g^T) * r_g`` (the kernels' ``recurrent_masks``).

A *mask* (N, T) of booleans (from ``Embedding(mask_zero=True)`` or
``Masking``, :mod:`nnscratch.models.masking`) marks the steps that count.
At a masked step Keras leaves the state as it was, ``h_t = h_{t-1}`` (and
an LSTM's cell), and outputs it again (zeros with
``zero_output_for_mask``). So a masked step changes nothing, and a row's
states are those of the sequence of its unmasked steps alone:
:func:`compact_steps` moves each row's unmasked steps to its front, in
order, the loops run over that (the masked steps after them, whose states
nothing reads), and the states are then spread back to every step. Backward
is the same in reverse: the gradient of each step's output goes to the
compacted step whose state it repeats (summed where several repeat one),
the loops run, and ``dL/dx_t`` goes back to step ``t`` (zero at a masked
step, which nothing read). The kernels never see a mask.
"""

import numpy as np

from nnscratch import activations, constraints, initializers, kernels, regularizers, rng
from nnscratch.layers.base import Layer, format_shape

__all__ = ["Recurrent"]

#: Keras arguments that need what nnscratch models do not have (several outputs, state kept across batches).
_UNSUPPORTED = {"return_state": False, "stateful": False}


def compact_steps(mask):
    """``(order, position)`` for a mask (N, T): each row's unmasked steps first, and where each step's state is.

    ``order[n]`` lists row ``n``'s unmasked steps in time order, then its
    masked ones; ``position[n, t]`` is the place, in that order, of the last
    unmasked step at or before ``t`` (-1 before the first: the zero state).
    """
    return np.argsort(~mask, axis=1, kind="stable"), np.cumsum(mask, axis=1) - 1


def check_activation(name, argument) -> str:
    """An elementwise activation whose derivative comes from its output (tanh, sigmoid, relu, ...), by name."""
    name = activations.get(name)
    if name in activations.ROW_WISE or activations.needs_preactivation(name):
        raise ValueError(f"{argument}={name!r}: a recurrent layer takes an elementwise activation whose derivative "
                         "comes from its output (tanh, sigmoid, hard_sigmoid, relu, linear, ...)")
    return name


class Recurrent(Layer):
    """Base of the recurrent layers: ``G`` blocks of ``units`` in ``W``, ``U`` and ``b`` (see the module docstring)."""

    #: Blocks of units in the kernels (1: SimpleRNN; 4: the LSTM's gates i, f, c, o).
    blocks = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, go_backwards=False, unroll=False, seed=None, zero_output_for_mask=False,
                 **kwargs):
        for argument, default in _UNSUPPORTED.items():
            if kwargs.pop(argument, default) != default:
                raise ValueError(f"{argument}={default!r} is the only value nnscratch supports in a recurrent layer "
                                 "(a layer has one output, and batches are independent)")
        for argument, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ValueError(f"{argument} must be a number in [0, 1), got {rate!r}")
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = check_activation(activation, "activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.recurrent_initializer = kernel_initializer, recurrent_initializer
        self.bias_initializer = bias_initializer
        for name in (kernel_initializer, recurrent_initializer, bias_initializer):
            initializers.get(name)  # fail early
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.return_sequences, self.go_backwards = bool(return_sequences), bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)   # a masked step outputs zeros (Bidirectional's)
        self.unroll = bool(unroll)  # Keras's graph-building option: the same arithmetic either way
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = seed            # fixes the dropout masks (as Dropout's seed)
        if self.dropout > 0 or self.recurrent_dropout > 0:   # (only then: a generator drawn here would shift
            self.generator = rng.generator_from_seed(seed)   # later layers' initial weights)

    # ------------------------------------------------------------------ weights and shapes
    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects sequences of shape (None, timesteps, "
                             f"features), got {format_shape(input_shape)}")
        generator = rng.new_generator()
        width = self.blocks * self.units
        self.kernel = self.new_parameter(
            "kernel", initializers.get(self.kernel_initializer)((input_shape[1], width), generator),
            constraint=self.kernel_constraint)
        self.recurrent_kernel = self.new_parameter(
            "recurrent_kernel", self._recurrent_values(generator), constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.new_parameter("bias", self._bias_values(generator), constraint=self.bias_constraint)
        super().build(input_shape)

    def _recurrent_values(self, generator):
        """The recurrent kernel (units, G units), drawn as one matrix, as Keras draws it."""
        return initializers.get(self.recurrent_initializer)((self.units, self.blocks * self.units), generator)

    def _bias_values(self, generator):
        return initializers.get(self.bias_initializer)((self.blocks * self.units,), generator)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def weight_regularizers(self):
        pairs = (("kernel", self.kernel_regularizer), ("recurrent_kernel", self.recurrent_regularizer),
                 ("bias", self.bias_regularizer if self.use_bias else None))
        return {name: regularizer for name, regularizer in pairs if regularizer is not None}

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following dropout masks from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    # ------------------------------------------------------------------ masks
    supports_masking = uses_mask = True

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def output_masked(self, input_masked: bool) -> bool:
        return input_masked and self.return_sequences

    def _spread(self, states):
        """The compacted steps' states (N, T, units) back at every step (the module docstring)."""
        mask, _, position = self._steps
        spread = np.take_along_axis(states, np.maximum(position, 0)[:, :, None], axis=1)
        spread[position < 0] = 0                        # before the first unmasked step: the zero state
        if self.zero_output_for_mask:
            spread[~mask] = 0
        return spread

    def _gather(self, grad_states):
        """dL/dh of every step (N, T, units) summed onto the compacted step whose state each repeats."""
        mask, _, position = self._steps
        if self.zero_output_for_mask:
            grad_states[~mask] = 0
        rows = np.broadcast_to(np.arange(len(mask))[:, None], mask.shape)
        reached = position >= 0
        gathered = np.zeros_like(grad_states)
        np.add.at(gathered, (rows[reached], position[reached]), grad_states[reached])
        return gathered

    # ------------------------------------------------------------------ forward and backward
    def forward(self, x, training=False, mask=None):
        self.check_input(x)
        sequence = x[:, ::-1] if self.go_backwards else x
        self._steps = None
        if mask is not None:              # the unmasked steps of each row first (module docstring)
            mask = self.checked_mask(mask, x)
            mask = mask[:, ::-1] if self.go_backwards else mask
            self._steps = (mask, *compact_steps(mask))
            sequence = np.take_along_axis(sequence, self._steps[1][:, :, None], axis=1)
        n, steps, features = sequence.shape
        self._input_masks = self._recurrent_masks = None
        if training and self.dropout > 0:     # Keras: one mask, or one a block with recurrent dropout too
            blocks = self.blocks if self.recurrent_dropout > 0 else 1
            self._input_masks = self._draw_masks((n, blocks, features), self.dropout, sequence.dtype)
        if training and self.recurrent_dropout > 0:
            self._recurrent_masks = self._draw_masks((n, self.blocks, self.units), self.recurrent_dropout,
                                                     sequence.dtype)
        projected = np.concatenate([(self._masked(sequence, dropped).reshape(n * steps, features)
                                     @ self.kernel.value[:, columns]).reshape(n, steps, -1)
                                    for columns, dropped in self._blocks(self._input_masks)], axis=2)
        if self.use_bias:
            projected += self._input_bias()
        states = self._scan(projected, training)            # (N, T, units): h_1 ... h_T
        if mask is not None:
            states = self._spread(states)
        self._sequence = sequence if training else None
        return states if self.return_sequences else np.ascontiguousarray(states[:, -1])

    def backward(self, grad_output):
        n, steps, features = self._sequence.shape
        grad_states = np.zeros((n, steps, self.units), dtype=grad_output.dtype)
        if self.return_sequences:
            grad_states[...] = grad_output
        else:
            grad_states[:, -1] = grad_output
        if self._steps is not None:
            grad_states = self._gather(grad_states)
        grad_z, grad_recurrent = self._scan_backward(grad_states)   # (N, T, G units) each, every step
        rows, recurrent_rows = grad_z.reshape(n * steps, -1), grad_recurrent.reshape(n * steps, -1)
        for columns, mask in self._blocks(self._input_masks):
            masked = self._masked(self._sequence, mask).reshape(n * steps, features)
            self.kernel.grad[:, columns] = masked.T @ rows[:, columns]
        previous = np.concatenate([np.zeros_like(self._states[:, :1]), self._states[:, :-1]], axis=1)
        for columns, inputs in self._recurrent_inputs(previous):
            inputs = inputs.reshape(n * steps, self.units)
            self.recurrent_kernel.grad[:, columns] = inputs.T @ recurrent_rows[:, columns]
        if self.use_bias:
            self._bias_gradient(rows, recurrent_rows)
        if self.skip_input_gradient:
            return None
        grad_x = sum(self._masked((rows[:, columns] @ self.kernel.value[:, columns].T).reshape(n, steps, features),
                                  mask)
                     for columns, mask in self._blocks(self._input_masks))
        if self._steps is not None:                     # each compacted step's gradient back to its step
            compacted, grad_x = grad_x, np.empty_like(grad_x)
            np.put_along_axis(grad_x, self._steps[1][:, :, None], compacted, axis=1)
        return grad_x[:, ::-1] if self.go_backwards else grad_x

    # ------------------------------------------------------------------ dropout masks
    def _draw_masks(self, shape, rate, dtype):
        """Masks of zeros and ``1 / (1 - rate)``, ``shape`` (N, masks, width): one a sequence for all its steps."""
        uniform = self.generator.random((shape[0], shape[1] * shape[2]), dtype=np.float32)
        _, mask = kernels.backend().dropout_forward(np.ones(uniform.shape, dtype), uniform, rate)
        return mask.reshape(shape)

    def _blocks(self, masks):
        """``(columns, mask)`` of each block of the kernels that ``masks`` (N, blocks, width) covers (one: all)."""
        if masks is None or masks.shape[1] == 1:
            return [(slice(None), None if masks is None else masks[:, 0])]
        width = self.units
        return [(slice(b * width, (b + 1) * width), masks[:, b]) for b in range(masks.shape[1])]

    def _recurrent_inputs(self, previous):
        """``(columns, inputs)``: what each block of columns of ``U`` multiplied, (N, T, units), from ``h_{t-1}``.

        ``previous`` (N, T, units) holds ``h_{t-1}`` of every step (zeros at
        the first); with ``recurrent_dropout`` each block read it masked. (A
        GRU with ``reset_after=False`` multiplies ``r_t * h_{t-1}`` by its
        last block.)
        """
        return [(columns, self._masked(previous, mask)) for columns, mask in self._blocks(self._recurrent_masks)]

    @staticmethod
    def _masked(sequence, mask):
        """``sequence`` (N, T, width) times ``mask`` (N, width) at every step, or as it is for None."""
        return sequence if mask is None else sequence * mask[:, None, :]

    def _scan(self, projected, training):
        """Run the steps on ``projected = x_t W + b`` (N, T, G units); return the states (N, T, units).

        When training, keep what :meth:`_scan_backward` needs, and the states in ``self._states``.
        """
        raise NotImplementedError

    def _scan_backward(self, grad_states):
        """From dL/dh_t of every step's output (N, T, units), compute dL/dz_t (N, T, G units), last step first.

        Returns two arrays: the gradient of ``x_t W + b`` and that of
        ``h_{t-1} U``. They are the same array for SimpleRNN and LSTM, where
        both enter ``z_t`` as a plain sum; a GRU's reset gate scales part of
        the second.
        """
        raise NotImplementedError

    def _input_bias(self):
        """The bias added to ``x_t W`` (all of ``b``; a GRU's has a second row for ``h_{t-1} U``)."""
        return self.bias.value

    def _bias_gradient(self, rows, recurrent_rows):
        """Set ``bias.grad`` from the (N T, G units) gradients of ``x_t W + b`` and of ``h_{t-1} U``."""
        self.bias.grad[...] = rows.sum(axis=0)

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "return_sequences": self.return_sequences, "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "unroll": self.unroll,
                "seed": self.seed}
