r"""Attention: each query step reads a softmax-weighted average of the value steps (Keras's ``Attention``)."""

import numpy as np

from nnscratch import rng
from nnscratch.layers.base import SymbolicTensor, format_shape
from nnscratch.layers.merge import Merge

__all__ = ["Attention", "refuse_symbolic_scores"]

_LARGE = 1e9        # Keras subtracts this from the scores of masked keys (65504 in float16, not used here)



def refuse_symbolic_scores(layer, inputs) -> None:
    """A ValueError for ``return_attention_scores=True`` on symbolic tensors (in a model a layer has one output)."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if any(isinstance(item, SymbolicTensor) for item in items):
        raise ValueError(f"{type(layer).__name__}: return_attention_scores=True works on arrays (layer(inputs, "
                         "return_attention_scores=True) returns (output, scores)), not in a model, where a layer "
                         "has one output; there, read layer.attention_scores after a forward")

class Attention(Merge):
    r"""Dot-product (Luong) or ``"concat"`` attention over ``[query, value]`` or ``[query, value, key]``.

    Shapes: query :math:`Q` (N, Tq, D), value :math:`V` (N, Tv, Dv), key
    :math:`K` (N, Tv, D), the value itself when not given. Forward:

    .. math::
        S = Q K^\top \cdot s \ \ (\text{"dot"}), \qquad
        S_{ij} = c \sum_d \tanh\big(s\,(q_{id} + k_{jd})\big) \ \ (\text{"concat"}),

    :math:`A = \mathrm{softmax}(S)` over the keys (a masked key's score
    lowered by :math:`10^9` first; ``use_causal_mask`` masks the keys after
    each query), optional dropout on :math:`A`, and :math:`Y = A V`, zero at
    a masked query step. :math:`s` (``use_scale``) and :math:`c` (``"concat"``)
    are learned scalars, 1 to start with; without ``use_scale``, :math:`s = 1`.

    Backward, with :math:`G = \partial L/\partial Y` (zeroed at masked query steps):

    .. math::
        \frac{\partial L}{\partial V} = A^\top G, \quad
        \frac{\partial L}{\partial A} = G V^\top, \quad
        \frac{\partial L}{\partial S} = A \odot \Big(\frac{\partial L}{\partial A}
            - \sum_j \frac{\partial L}{\partial A_{ij}} A_{ij}\Big),

    then for ``"dot"`` :math:`\partial L/\partial Q = s\,\frac{\partial L}{\partial S} K`,
    :math:`\partial L/\partial K = s\,\frac{\partial L}{\partial S}^\top Q` and
    :math:`\partial L/\partial s = \sum \frac{\partial L}{\partial S} \odot Q K^\top`;
    for ``"concat"`` through :math:`\tanh' = 1 - \tanh^2` (docs/backprop.md, section 7d).
    With ``[query, value]`` the key is the value, so its gradient joins the value's.

    Parameters
    ----------
    use_scale : bool
        Learn the scale :math:`s` of the scores.
    score_mode : {"dot", "concat"}
    dropout : float in [0, 1)
        Dropout on the attention weights while training (from the layer's generator, ``seed``).
    seed : int, optional

    Call it on a list, ``Attention()([query, value])``; ``use_causal_mask=True``
    may be given in that call, as in Keras (nnscratch keeps it in the layer's
    config, so a saved model keeps it). Masks: the value's mask hides keys, the
    query's zeroes output steps and goes on with the output. Called on arrays,
    ``layer([q, v], return_attention_scores=True)`` returns ``(output,
    weights)``, the weights :math:`A` (N, Tq, Tv) after the dropout in
    training, as Keras's; in a model the layer has one output (the weights
    of the last forward are ``layer.attention_scores``, before the dropout).
    """

    uses_mask = True
    min_inputs, max_inputs = 2, 3

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, use_causal_mask=False, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"Attention: score_mode must be 'dot' or 'concat', got {score_mode!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"Attention: dropout must be a number in [0, 1), got {dropout!r}")
        self.use_scale, self.score_mode, self.dropout = bool(use_scale), score_mode, float(dropout)
        self.use_causal_mask = bool(use_causal_mask)
        self.seed = seed
        self.generator = rng.generator_from_seed(seed)
        self.attention_scores = None
        self._cache = None

    def __call__(self, x, training=False, use_causal_mask=None, return_attention_scores=False):
        """``Attention()([query, value], use_causal_mask=True)``, as Keras's call."""
        if use_causal_mask is not None:
            self.use_causal_mask = bool(use_causal_mask)
        if not return_attention_scores:
            return super().__call__(x, training=training)
        refuse_symbolic_scores(self, x)
        y = super().__call__(x, training=training)
        drop = self._cache[5] if self._cache is not None else None
        return y, self.attention_scores if drop is None else self.attention_scores * drop

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw the following dropout masks from ``generator`` (used by ``fit(seed=...)``)."""
        self.generator = generator

    def build(self, input_shape):
        shapes = self._check_shapes(input_shape)
        if any(len(shape) != 2 for shape in shapes):
            raise ValueError(f"Attention layer {self.name!r} takes [query, value] or [query, value, key], each "
                             f"(None, steps, features); got {[format_shape(s) for s in shapes]}")
        query, value = shapes[:2]
        key = shapes[2] if len(shapes) == 3 else value
        if key[0] != value[0] or query[1] != key[1]:
            raise ValueError(f"Attention layer {self.name!r}: the key needs the value's steps and the query's "
                             f"features; got query {format_shape(query)}, value {format_shape(value)}, key "
                             f"{format_shape(key)}")
        if self.use_scale:
            self.scale = self.new_parameter("scale", np.ones(()))
        if self.score_mode == "concat":
            self.concat_score_weight = self.new_parameter("concat_score_weight", np.ones(()))
        self.input_shape, self._output_shape, self.built = shapes, (query[0], value[1]), True

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[1][1])

    def compute_mask(self, inputs, mask):
        """The query's mask goes on with the output (Keras)."""
        return None if mask is None else mask[0]

    def output_masked(self, input_masked) -> bool:
        return bool(input_masked[0])

    def forward(self, inputs, training=False, mask=None):
        self.check_input(inputs)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        q_mask, v_mask = (mask[0], mask[1]) if mask is not None else (None, None)
        s = self.scale.value.astype(q.dtype) if self.use_scale else q.dtype.type(1)
        if self.score_mode == "dot":
            raw = q @ np.swapaxes(k, -1, -2)                                 # Q K^T, (N, Tq, Tv)
            scores = raw * s if self.use_scale else raw
        else:
            raw = np.tanh(s * (q[:, :, None, :] + k[:, None, :, :]))         # (N, Tq, Tv, D)
            scores = self.concat_score_weight.value.astype(q.dtype) * raw.sum(axis=-1)
        keep = self._score_mask(v_mask, scores.shape)
        if keep is not None:
            scores = np.where(keep, scores, scores - q.dtype.type(_LARGE))
        shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = shifted / shifted.sum(axis=-1, keepdims=True)
        drop = None
        if training and self.dropout > 0:
            drop = (self.generator.random(weights.shape, dtype=np.float32) >= self.dropout) * q.dtype.type(
                1.0 / (1.0 - self.dropout))
        y = (weights if drop is None else weights * drop) @ v
        if q_mask is not None:
            y = y * self.checked_mask(q_mask, q)[..., None]
        self.attention_scores = weights
        self._cache = (q, k, v, raw, weights, drop, q_mask, s) if training else None
        return y

    def _score_mask(self, v_mask, shape):
        """Which (query, key) scores count: the value's mask and the causal mask (keys up to the query), or None."""
        keep = None if v_mask is None else np.asarray(v_mask, dtype=bool)[:, None, :]
        if self.use_causal_mask:
            causal = np.tril(np.ones(shape[-2:], dtype=bool))
            keep = causal if keep is None else keep & causal
        return keep

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without forward(x, training=True)")
        q, k, v, raw, weights, drop, q_mask, s = self._cache
        g = grad_output if q_mask is None else grad_output * q_mask[..., None]
        used = weights if drop is None else weights * drop
        d_value = np.swapaxes(used, -1, -2) @ g
        d_weights = g @ np.swapaxes(v, -1, -2)
        if drop is not None:
            d_weights = d_weights * drop
        d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
        if self.score_mode == "dot":
            if self.use_scale:
                self.scale.grad[...] = (d_scores * raw).sum()
            d_raw = d_scores * s
            d_query, d_key = d_raw @ k, np.swapaxes(d_raw, -1, -2) @ q
        else:
            c = self.concat_score_weight.value.astype(q.dtype)
            self.concat_score_weight.grad[...] = (d_scores * raw.sum(axis=-1)).sum()
            d_pre = (c * d_scores)[..., None] * (1 - raw * raw)               # through tanh, (N, Tq, Tv, D)
            if self.use_scale:
                self.scale.grad[...] = (d_pre * (q[:, :, None, :] + k[:, None, :, :])).sum()
                d_pre = d_pre * s
            d_query, d_key = d_pre.sum(axis=2), d_pre.sum(axis=1)
        if len(self.input_shape) == 3:
            return [d_query, d_value, d_key]
        return [d_query, d_value + d_key]

    def get_config(self):
        config = {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                  "dropout": self.dropout, "seed": self.seed}
        return {**config, "use_causal_mask": True} if self.use_causal_mask else config
