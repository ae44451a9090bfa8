"""Attention ([query, value] or [query, value, key]): gradients, the formula, masks, a model, errors.

Gradient checks in float64 over generated shapes, both score modes, with
and without the learned scale, a separate key, the causal mask, query and
value masks and dropout (the checker rewinds the layer's generator). Keras
3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Attention, Dense, Embedding
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
    from tests.strategies import assert_predicts_as_each_sequence_alone, padded_indices
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
    from strategies import assert_predicts_as_each_sequence_alone, padded_indices

steps, features = st.integers(1, 4), st.integers(1, 3)


@given(n=batch_sizes(), tq=steps, tv=steps, d=features, dv=features, score_mode=st.sampled_from(["dot", "concat"]),
       use_scale=st.booleans(), separate_key=st.booleans(), causal=st.booleans(), masks=st.booleans(),
       dropout=st.sampled_from([0.0, 0.3]), seed=rng_seeds())
def test_attention_gradients(n, tq, tv, d, dv, score_mode, use_scale, separate_key, causal, masks, dropout, seed):
    rng = np.random.default_rng(seed)
    q, v, k = rng.standard_normal((n, tq, d)), rng.standard_normal((n, tv, dv if separate_key else d)), \
        rng.standard_normal((n, tv, d))
    layer = Attention(use_scale=use_scale, score_mode=score_mode, dropout=dropout, seed=seed,
                      use_causal_mask=causal)
    inputs = [q, v, k] if separate_key else [q, v]
    mask = None
    if masks:      # each query keeps a key (Keras asks that of a mask: a row of scores all lowered by 1e9 is
        value_mask = rng.random((n, tv)) < 0.7      # softmax-ed as they were, at 1e-7 resolution in float64)
        value_mask[:, 0] = True
        mask = [rng.random((n, tq)) < 0.7, value_mask] + ([None] if separate_key else [])
    report = check_layer(layer, x=inputs, seed=seed % 1000, h=STEP, mask=mask)
    expected = ["input_0", "input_1"] + (["input_2"] if separate_key else []) + ["scale"] * use_scale \
        + ["concat_score_weight"] * (score_mode == "concat")
    assert [c.name for c in report.checks] == expected
    assert report.max_error < TOLERANCE, f"\n{report}"


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_is_the_softmax_of_the_scores_times_the_value_with_keras_masks():
    rng = np.random.default_rng(1)
    q, v, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 4))
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    v_mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    layer = Attention(use_causal_mask=True)
    y = layer([q, v, k])
    np.testing.assert_allclose(y, softmax(q @ k.transpose(0, 2, 1) - 1e9 * ~np.tril(np.ones((3, 5), bool))) @ v)
    y = layer.forward([q, v, k], mask=[q_mask, v_mask, None])
    keep = v_mask[:, None, :] & np.tril(np.ones((3, 5), bool))
    expected = softmax(np.where(keep, q @ k.transpose(0, 2, 1), -np.inf)) @ v * q_mask[..., None]
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)
    assert layer.compute_mask([q, v, k], [q_mask, v_mask, None]) is q_mask
    concat = Attention(score_mode="concat")([q, k])
    scores = np.tanh(q[:, :, None] + k[:, None]).sum(-1)
    np.testing.assert_allclose(concat, softmax(scores) @ k, rtol=1e-6)


def self_attention_tagger(steps, mask_zero=True):
    """Embedding -> Attention()([e, e]) -> Dense: each step attends to the whole sequence."""
    inputs = nnscratch.Input((steps,))
    embedded = Embedding(9, 4, mask_zero=mask_zero)(inputs)
    return nnscratch.Model(inputs, Dense(3, activation="softmax")(Attention(use_scale=True)([embedded, embedded])))


def test_self_attention_on_padded_sequences_predicts_as_on_each_sequence_alone_and_trains(tmp_path):
    rng = np.random.default_rng(2)
    x, y = padded_indices(rng, n=8), rng.integers(0, 3, (8, 6))
    model = self_attention_tagger(6)
    assert model.output_masked                         # the query's mask goes on: the loss counts real steps
    assert_predicts_as_each_sequence_alone(model, x, lambda steps: self_attention_tagger(steps, mask_zero=False))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=1)
    model.save(tmp_path / "attention.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "attention.npz").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_the_causal_mask_given_in_the_call_is_kept_by_a_saved_model(tmp_path):
    inputs = nnscratch.Input((5, 3))
    model = nnscratch.Model(inputs, Attention()([inputs, inputs], use_causal_mask=True))
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype(np.float32)
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y[:, 0], x[:, 0], rtol=1e-6)      # the first step sees only itself
    model.save(tmp_path / "causal.npz")
    loaded = load_model(tmp_path / "causal.npz")
    assert loaded.layers[-1].use_causal_mask
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), y)


def test_bad_arguments_and_inputs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="score_mode must be 'dot' or 'concat'"):
        Attention(score_mode="general")
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        Attention(dropout=1.0)
    with pytest.raises(ValueError, match="at least 2 tensors"):
        Attention().build([(3, 4)])
    with pytest.raises(ValueError, match="the key needs the value's steps and the query's features"):
        Attention().build([(3, 4), (5, 2)])
    with pytest.raises(ValueError, match=r"each \(None, steps, features\)"):
        Attention().build([(4,), (4,)])


def test_return_attention_scores_on_arrays_gives_the_weights_the_output_averaged_with():
    """As Keras's: (output, weights), the weights after the dropout in training, so that output = weights @ value."""
    rng = np.random.default_rng(12)
    query, value = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    for layer, training in ((Attention(use_scale=True), False), (Attention(dropout=0.4, seed=3), True)):
        output, weights = layer([query, value], training=training, return_attention_scores=True)
        assert weights.shape == (2, 3, 5)
        np.testing.assert_allclose(output, weights @ value, rtol=1e-12)
        if not training:
            np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
        else:
            assert (weights == 0).any() and not np.allclose(weights.sum(axis=-1), 1.0)
    with pytest.raises(ValueError, match="return_attention_scores=True works on arrays"):
        Attention()([nnscratch.Input((3, 4)), nnscratch.Input((5, 4))], return_attention_scores=True)
