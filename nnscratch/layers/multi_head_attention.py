r"""MultiHeadAttention: several attention heads, each over its own learned projections (Keras's layer)."""

import numpy as np

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.layers.attention import refuse_symbolic_scores
from nnscratch.layers.base import format_shape
from nnscratch.layers.merge import Merge

__all__ = ["MultiHeadAttention"]

_LARGE = 1e9           # Keras's Softmax puts -1e9 in place of a masked score
_PROJECTIONS = ("query", "key", "value")


class MultiHeadAttention(Merge):
    r"""Multi-head scaled dot-product attention (Vaswani et al. 2017), as Keras 3's ``MultiHeadAttention``.

    Shapes: query :math:`x_q` (N, T, Cq), value :math:`x_v` (N, S, Cv), key
    :math:`x_k` (N, S, Ck), the value itself when not given; with ``h`` heads
    of size ``d`` (``key_dim``) and ``dv`` (``value_dim``). Forward, head by head:

    .. math::
        Q = x_q W_q + b_q, \ K = x_k W_k + b_k, \ V = x_v W_v + b_v
        \qquad (Q_h: T \times d, \ V_h: S \times d_v),

        S_h = \frac{Q_h K_h^\top}{\sqrt d}, \quad A_h = \mathrm{softmax}(S_h) \ \text{over the keys}, \quad
        O_h = A_h V_h, \quad y = [O_1, \dots, O_h]\, W_o + b_o .

    A masked (query, key) pair gets weight 0 (its score replaced by
    :math:`-10^9` before the softmax, its weight zeroed after it, as Keras's
    ``Softmax``); the pairs come from the query's and the value's masks, the
    causal mask (``use_causal_mask``: keys up to the query) and
    ``sliding_window`` (keys less than that many steps away). A query step with
    no key left gives :math:`y = b_o`. Optional dropout on :math:`A`.

    Backward, with :math:`G = \partial L/\partial y` and :math:`O` the
    concatenated heads:

    .. math::
        \frac{\partial L}{\partial W_o} = O^\top G, \quad \frac{\partial L}{\partial O} = G W_o^\top, \quad
        \frac{\partial L}{\partial V_h} = A_h^\top \frac{\partial L}{\partial O_h}, \quad
        \frac{\partial L}{\partial A_h} = \frac{\partial L}{\partial O_h} V_h^\top,

        \frac{\partial L}{\partial S_h} = A_h \odot \Big(\frac{\partial L}{\partial A_h}
            - \sum_j \Big(\frac{\partial L}{\partial A_h} \odot A_h\Big)_{:, j}\Big), \quad
        \frac{\partial L}{\partial Q_h} = \frac{\partial L}{\partial S_h} \frac{K_h}{\sqrt d}, \quad
        \frac{\partial L}{\partial K_h} = \frac{\partial L}{\partial S_h}^\top \frac{Q_h}{\sqrt d},

    With ``use_gate`` the heads are gated before the output projection,
    :math:`O \\leftarrow O \\odot \\sigma(x_q W_g + b_g)` (:math:`W_g`: (Cq, h, dv)),
    and backward goes through the product and the sigmoid
    (:math:`\\sigma' = \\sigma (1 - \\sigma)`) into :math:`W_g`, :math:`b_g` and
    :math:`x_q`. Then through each projection as through a Dense layer
    (:math:`\partial L/\partial W_q = x_q^\top \partial L/\partial Q`,
    :math:`\partial L/\partial x_q = \partial L/\partial Q\, W_q^\top`, ...;
    docs/backprop.md, section 7e). With ``[query, value]`` the key is the value
    and their gradients add up.

    Inputs of higher rank, ``(N, ..., C)``: attention runs jointly over
    ``attention_axes`` (default: every axis but the batch and the features);
    the other axes act as more batch axes. Masks and the causal or window mask
    need ``(N, steps, features)`` inputs.

    Parameters
    ----------
    num_heads, key_dim : int
        The heads, and the size of each one's query and key.
    value_dim : int, optional
        The size of each head's value (default ``key_dim``).
    dropout : float in [0, 1)
        Dropout on the attention weights while training (from the layer's generator, ``seed``).
    use_bias : bool
        Biases in the four projections.
    output_shape : int or tuple of int, optional
        The output's trailing shape (default: the query's features).
    attention_axes : int or tuple of int, optional
    sliding_window : int, optional
    kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint
        For the four projections' kernels and biases.
    seed : int, optional

    Weights, in Keras's order and shapes: ``query_kernel`` (Cq, h, d),
    ``query_bias`` (h, d), ``key_kernel`` (Ck, h, d), ``key_bias``,
    ``value_kernel`` (Cv, h, dv), ``value_bias``, ``attention_output_kernel``
    (h, dv, Cout), ``attention_output_bias`` (Cout,).

    Call it as Keras's, ``mha(query, value)`` or ``mha(query, value, key)``
    (``mha(x, x)`` for self-attention; or on a list), with ``use_causal_mask``
    in the call (kept in the config). The query's mask goes on with the
    output. ``attention_mask=`` in the call takes a tensor (N, T, S), another
    input of the model: a pair counts where it is not 0, joined with the
    other masks (it gets no gradient; the layer then reads it as its last
    input, ``attention_mask_input`` in its config). Called on arrays of
    shape (N, steps, features), ``return_attention_scores=True`` returns
    ``(output, scores)``, the softmax weights (N, h, T, S) before the
    dropout, as Keras's; in a model the layer has one output (the weights of
    the last forward are ``layer.attention_scores``). Not supported:
    ``activity_regularizer`` (Keras puts it on the projections' outputs).
    """

    uses_mask = True
    min_inputs, max_inputs = 2, 4

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, seed=None, use_causal_mask=False, flash_attention=None,
                 attention_mask_input=False, use_gate=False, **kwargs):
        if kwargs.get("activity_regularizer") is not None:
            raise ValueError("MultiHeadAttention: activity_regularizer is not supported (Keras applies it to the "
                             "outputs of the four projections inside the layer); put ActivityRegularization after it")
        if flash_attention:
            raise ValueError("MultiHeadAttention: flash_attention is a kernel of Keras's GPU backends; nnscratch "
                             "computes the same attention in NumPy, leave it None")
        super().__init__(**kwargs)
        for name, value, optional in (("num_heads", num_heads, False), ("key_dim", key_dim, False),
                                      ("value_dim", value_dim, True), ("sliding_window", sliding_window, True)):
            if not (optional and value is None) and (isinstance(value, bool) or not isinstance(value, int)
                                                     or value <= 0):
                raise ValueError(f"MultiHeadAttention: {name} must be a positive integer"
                                 f"{' or None' if optional else ''}, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be a number in [0, 1), got {dropout!r}")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self.sliding_window = float(dropout), bool(use_bias), sliding_window
        self.use_gate = bool(use_gate)
        self.output_shape_arg = _int_tuple("output_shape", output_shape)
        self.attention_axes = _int_tuple("attention_axes", attention_axes)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # fail early
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.use_causal_mask = bool(use_causal_mask)
        self.attention_mask_input = bool(attention_mask_input)   # whether the last input is an attention mask
        self.seed, self.generator = seed, rng.generator_from_seed(seed)
        self.attention_scores = None
        self._cache = None

    def __call__(self, query, value=None, key=None, training=False, use_causal_mask=None, attention_mask=None,
                 return_attention_scores=False):
        """``mha(query, value[, key], attention_mask=..., use_causal_mask=...)`` as Keras's call, or on a list."""
        if use_causal_mask is not None:
            self.use_causal_mask = bool(use_causal_mask)
        if value is None:       # a list: [query, value], [query, value, key] (and the attention mask, if it takes one)
            inputs = query
        else:
            if attention_mask is not None:
                self.attention_mask_input = True
            inputs = [query, value] + ([] if key is None else [key]) + ([] if attention_mask is None
                                                                        else [attention_mask])
        if not return_attention_scores:
            return super().__call__(inputs, training=training)
        refuse_symbolic_scores(self, inputs)
        if np.ndim(inputs[0]) != 3:
            raise ValueError(f"MultiHeadAttention: return_attention_scores=True takes inputs (N, steps, features), "
                             f"got a query of shape {np.shape(inputs[0])}")
        return super().__call__(inputs, training=training), self.attention_scores

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following dropout masks from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    # --------------------------------------------------------------- build
    def build(self, input_shape):
        every = self._check_shapes(input_shape)
        shapes = every[:-1] if self.attention_mask_input else every
        if len(shapes) not in (2, 3):
            raise ValueError(f"MultiHeadAttention layer {self.name!r} takes [query, value] or [query, value, key]"
                             f"{' and the attention mask' if self.attention_mask_input else ''}; got {len(every)} "
                             "inputs")
        query, value = shapes[:2]
        key = shapes[2] if len(shapes) == 3 else value
        self._separate_key = len(shapes) == 3
        named = f"query {format_shape(query)}, value {format_shape(value)}, key {format_shape(key)}"
        if min(map(len, shapes)) < 2 or len({len(shape) for shape in shapes}) > 1:
            raise ValueError(f"MultiHeadAttention layer {self.name!r} takes inputs (None, steps, features), or more "
                             f"axes before the features, all of one rank; got {named}")
        if value[:-1] != key[:-1]:
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: the key needs the value's shape but for its "
                             f"features; got {named}")
        rank = len(query) + 1
        axes = tuple(range(1, rank - 1)) if self.attention_axes is None else tuple(
            axis + rank if axis < 0 else axis for axis in self.attention_axes)
        if not axes or any(not 1 <= axis < rank - 1 for axis in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: attention_axes must be distinct axes between "
                             f"the batch and the features, 1 to {rank - 2}; got {self.attention_axes}")
        others = [axis for axis in range(1, rank - 1) if axis not in axes]
        if any(query[axis - 1] != value[axis - 1] for axis in others):
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: the query and the value must agree on the axes "
                             f"that are not attention_axes {axes}; got {named}")
        if rank > 3 and (self.use_causal_mask or self.sliding_window or self.attention_mask_input):
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: the causal mask, sliding_window and "
                             f"attention_mask need inputs (None, steps, features); got {named}")
        if self.attention_mask_input and tuple(every[-1]) != (query[0], value[0]):
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: the attention mask must be (None, query steps, "
                             f"value steps) = {format_shape((query[0], value[0]))}, got {format_shape(every[-1])}")
        self._order, self._batch_axes = (0, *others, *axes), 1 + len(others)   # batch-like axes, then attended
        generator = rng.new_generator()
        sizes = {"query": (query[-1], self.key_dim), "key": (key[-1], self.key_dim),    # Keras's order
                 **({"gate": (query[-1], self.value_dim)} if self.use_gate else {}),
                 "value": (value[-1], self.value_dim)}
        out = self.output_shape_arg or (query[-1],)
        for name, (features, size) in sizes.items():
            self._new_weights(name, (features, self.num_heads, size), (self.num_heads, size), generator)
        self._new_weights("attention_output", (self.num_heads, self.value_dim, *out), out, generator)
        self.input_shape, self._output_shape, self.built = every, (*query[:-1], *out), True

    def _new_weights(self, name, kernel_shape, bias_shape, generator):
        """A kernel drawn as the matrix (inputs, outputs) of its product (Keras 3.15's fans), then its bias."""
        inputs = int(np.prod(kernel_shape[:len(kernel_shape) - len(bias_shape)]))
        kernel = initializers.get(self.kernel_initializer)((inputs, int(np.prod(bias_shape))), generator)
        self.new_parameter(f"{name}_kernel", kernel.reshape(kernel_shape), constraint=self.kernel_constraint)
        if self.use_bias:
            self.new_parameter(f"{name}_bias", initializers.get(self.bias_initializer)(bias_shape, generator),
                               constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], *(self.output_shape_arg or input_shape[0][-1:]))

    def compute_mask(self, inputs, mask):
        """The query's mask goes on with the output (Keras)."""
        return None if mask is None else mask[0]

    def output_masked(self, input_masked) -> bool:
        return bool(input_masked[0])

    def weight_regularizers(self):
        names = (*_PROJECTIONS, "attention_output") + (("gate",) if self.use_gate else ())
        pairs = [(f"{name}_kernel", self.kernel_regularizer) for name in names]
        if self.use_bias:
            pairs += [(f"{name}_bias", self.bias_regularizer) for name in names]
        return {name: regularizer for name, regularizer in pairs if regularizer is not None}

    # ------------------------------------------------------------- forward
    def forward(self, inputs, training=False, mask=None):
        self.check_input(inputs)
        pairs = None
        if self.attention_mask_input:             # the last input: which (query, key) pairs may attend
            inputs, pairs = inputs[:-1], np.asarray(inputs[-1]) != 0
            mask = None if mask is None else mask[:-1]
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        flat = [self._fold(x) for x in (query, key, value)]            # (N', T, C): one attention per row
        q, k, v = (self._project(name, x) for name, x in zip(_PROJECTIONS, flat))   # (N', heads, steps, size)
        q = q * q.dtype.type(1.0 / np.sqrt(self.key_dim))
        scores = q @ np.swapaxes(k, -1, -2)                                  # (N', heads, T, S)
        keep = self._keep(mask, scores.shape[-2:], inputs)
        if pairs is not None:
            keep = pairs[:, None] if keep is None else keep & pairs[:, None]
        if keep is not None:
            scores = np.where(keep, scores, scores.dtype.type(-_LARGE))
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        if keep is not None:
            weights = np.where(keep, weights, weights.dtype.type(0))
        drop = None
        if training and self.dropout > 0:
            drop = (self.generator.random(weights.shape, dtype=np.float32) >= self.dropout) * q.dtype.type(
                1.0 / (1.0 - self.dropout))
        heads = (weights if drop is None else weights * drop) @ v            # (N', heads, T, dv)
        heads = np.swapaxes(heads, 1, 2).reshape(*heads.shape[:1], heads.shape[2], -1)   # (N', T, heads * dv)
        gate = None
        if self.use_gate:                                                    # sigmoid(x_q W_g + b_g), (N', T, h dv)
            pre = flat[0] @ self._matrix("gate").astype(q.dtype, copy=False) + self._bias_row("gate")
            gate = 0.5 * (1 + np.tanh(0.5 * pre))                            # the sigmoid, without overflow
        y = (heads if gate is None else heads * gate) @ self._matrix("attention_output") + \
            self._bias_row("attention_output")
        y = y.reshape(*y.shape[:2], *self.params["attention_output_kernel"].shape[2:])   # (N', T, *output_shape)
        self.attention_scores = weights
        self._cache = (flat, [x.shape[:-1] for x in (query, key, value)], q, k, v, weights, drop, heads, gate,
                       None if pairs is None else np.zeros(pairs.shape, dtype=q.dtype)) if training else None
        return self._unfold(y, query.shape[:-1])

    def _keep(self, mask, shape, inputs):
        """Which (query, key) pairs count, (N, 1, T, S) or (T, S), or None: masks, causal mask, window."""
        keep = None
        if mask is not None and any(m is not None for m in mask):
            if inputs[0].ndim != 3:
                raise ValueError(f"MultiHeadAttention layer {self.name!r}: masks need inputs (N, steps, features); "
                                 f"got a query of shape {inputs[0].shape}")
            for m, x, axis in zip(mask, inputs, (-1, -2, -2)):   # the query's mask a row, value's and key's a column
                if m is not None:
                    m = np.expand_dims(self.checked_mask(m, x), (1, axis))
                    keep = m if keep is None else keep & m
        steps = np.arange(shape[0])[:, None] - np.arange(shape[1])[None, :]    # query step minus key step
        for band in ([steps >= 0] if self.use_causal_mask else []) + (
                [np.abs(steps) < self.sliding_window] if self.sliding_window else []):
            keep = band if keep is None else keep & band
        return keep

    # ------------------------------------------------------------ backward
    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        flat, shapes, q, k, v, weights, drop, heads, gate, mask_gradient = self._cache
        g = self._fold(grad_output)
        g = g.reshape(*g.shape[:2], -1)                                      # (N', T, Cout)
        out_kernel = self.params["attention_output_kernel"]
        out_kernel.grad[...] = (_rows(heads if gate is None else heads * gate).T @ _rows(g)).reshape(out_kernel.shape)
        if self.use_bias:
            self.params["attention_output_bias"].grad[...] = _rows(g).sum(axis=0).reshape(out_kernel.shape[2:])
        d_heads = g @ self._matrix("attention_output").T                     # (N', T, heads * dv)
        d_gate = None
        if gate is not None:                     # through O * sigmoid(x_q W_g + b_g): the gate's pre-activation
            d_gate = d_heads * heads * gate * (1 - gate)
            d_heads = d_heads * gate
        d_heads = np.swapaxes(d_heads.reshape(*d_heads.shape[:2], self.num_heads, -1), 1, 2)
        used = weights if drop is None else weights * drop
        d_v = np.swapaxes(used, -1, -2) @ d_heads
        d_weights = d_heads @ np.swapaxes(v, -1, -2)
        if drop is not None:
            d_weights = d_weights * drop
        d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
        d_q = d_scores @ k * q.dtype.type(1.0 / np.sqrt(self.key_dim))
        d_k = np.swapaxes(d_scores, -1, -2) @ q                              # (q already carries 1/sqrt(d))
        d_query, d_key, d_value = (self._project_backward(name, x, d) for name, x, d in
                                   zip(_PROJECTIONS, flat, (d_q, d_k, d_v)))
        if d_gate is not None:                   # the gate reads the query too
            d_query = d_query + self._dense_backward("gate", flat[0], d_gate)
        d_query, d_key, d_value = (self._unfold(d, shape) for d, shape in zip((d_query, d_key, d_value), shapes))
        grads = [d_query, d_value, d_key] if self._separate_key else [d_query, d_value + d_key]
        return grads if mask_gradient is None else grads + [mask_gradient]      # (a mask has no gradient)

    # ------------------------------------------------------------- helpers
    def _matrix(self, name):
        """A kernel as the matrix (features in, features out) of its Dense-like product."""
        kernel = self.params[f"{name}_kernel"].value
        rows = kernel.shape[0] if name != "attention_output" else kernel.shape[0] * kernel.shape[1]
        return kernel.reshape(rows, -1)

    def _bias_row(self, name):
        return self.params[f"{name}_bias"].value.reshape(-1) if self.use_bias else 0

    def _project(self, name, x):
        """``x W + b`` split into heads: (N', steps, C) -> (N', heads, steps, size)."""
        projected = x @ self._matrix(name).astype(x.dtype, copy=False) + self._bias_row(name)
        return np.swapaxes(projected.reshape(*x.shape[:2], self.num_heads, -1), 1, 2)

    def _project_backward(self, name, x, d_heads):
        """The projection's weight gradients from dL/d(heads) (N', heads, steps, size); return dL/dx."""
        return self._dense_backward(name, x, np.swapaxes(d_heads, 1, 2).reshape(*x.shape[:2], -1))

    def _dense_backward(self, name, x, d):
        """``x W + b``'s weight gradients from dL/d(output) (N', steps, heads * size); return dL/dx."""
        kernel = self.params[f"{name}_kernel"]
        kernel.grad[...] = (_rows(x).T @ _rows(d)).reshape(kernel.shape)
        if self.use_bias:
            self.params[f"{name}_bias"].grad[...] = _rows(d).sum(axis=0).reshape(kernel.shape[1:])
        return d @ self._matrix(name).T

    def _fold(self, x):
        """(N, ..., C...) -> (N', steps, C...): the attended axes flattened into one, the other axes into the batch."""
        lead = len(self._order)
        moved = x.transpose(*self._order, *range(lead, x.ndim))
        return moved.reshape(int(np.prod(moved.shape[:self._batch_axes])), -1, *x.shape[lead:])

    def _unfold(self, y, lead_shape):
        """Undo :meth:`_fold`: ``lead_shape`` is the original array's shape before its feature axes."""
        moved = y.reshape(*(lead_shape[axis] for axis in self._order), *y.shape[2:])
        return moved.transpose(*np.argsort(self._order), *range(len(self._order), moved.ndim))

    def get_config(self):
        config = {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                  "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                  "output_shape": self.output_shape_arg, "attention_axes": self.attention_axes,
                  "sliding_window": self.sliding_window,
                  "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                  "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                  "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                  "kernel_constraint": constraints.serialize(self.kernel_constraint),
                  "bias_constraint": constraints.serialize(self.bias_constraint), "seed": self.seed}
        if self.attention_mask_input:
            config["attention_mask_input"] = True
        if self.use_gate:
            config["use_gate"] = True
        return {**config, "use_causal_mask": True} if self.use_causal_mask else config


def _rows(x):
    """All leading axes as rows: (..., C) -> (rows, C)."""
    return x.reshape(-1, x.shape[-1])


def _int_tuple(name, value):
    """None, or an int or a sequence of ints as a tuple (``output_shape``, ``attention_axes``)."""
    if value is None:
        return None
    items = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if not items or any(isinstance(item, bool) or not isinstance(item, (int, np.integer)) for item in items):
        raise ValueError(f"MultiHeadAttention: {name} must be an int or a tuple of ints, got {value!r}")
    return tuple(int(item) for item in items)
