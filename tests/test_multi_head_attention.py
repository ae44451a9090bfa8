"""MultiHeadAttention: gradients, the formula head by head, masks, attention axes, a model, errors.

Gradient checks in float64 over generated shapes: heads, key and value
sizes, a separate key, biases, the output shape, the causal and window masks,
query and value masks, dropout (the checker rewinds the layer's generator),
weight penalties, and inputs of rank 4 with their attention axes. Keras 3.15
itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Dense, Embedding, GlobalAveragePooling1D, MultiHeadAttention
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
    from tests.strategies import assert_predicts_as_each_sequence_alone, padded_indices
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
    from strategies import assert_predicts_as_each_sequence_alone, padded_indices

steps, sizes = st.integers(1, 4), st.integers(1, 3)


def names(separate_key, use_bias, use_gate=False):
    inputs = ["input_0", "input_1"] + ["input_2"] * separate_key
    weights = ("kernel", "bias") if use_bias else ("kernel",)
    projections = ("query", "key") + ("gate",) * use_gate + ("value", "attention_output")       # Keras's order
    return inputs + [f"{name}_{weight}" for name in projections for weight in weights]


@given(n=batch_sizes(), t=steps, s=steps, c=sizes, heads=st.integers(1, 3), key_dim=sizes,
       value_dim=st.none() | sizes, output_shape=st.sampled_from([None, 2, (2, 3)]), use_bias=st.booleans(),
       separate_key=st.booleans(), causal=st.booleans(), window=st.sampled_from([None, 1, 2]), masks=st.booleans(),
       dropout=st.sampled_from([0.0, 0.3]), use_gate=st.booleans(), seed=rng_seeds())
def test_multi_head_attention_gradients(n, t, s, c, heads, key_dim, value_dim, output_shape, use_bias, separate_key,
                                        causal, window, masks, dropout, use_gate, seed):
    rng = np.random.default_rng(seed)
    if causal or window:
        s = t                                   # (Keras's causal and window masks compare step numbers)
    inputs = [rng.standard_normal((n, t, c)), rng.standard_normal((n, s, c + 1))]
    if separate_key:
        inputs.append(rng.standard_normal((n, s, 2)))
    mask = None
    if masks:     # some query steps and some pairs lose every key: their weights are 0, y = the output bias
        mask = [rng.random((n, t)) < 0.7, rng.random((n, s)) < 0.7] + [None] * separate_key
    layer = MultiHeadAttention(heads, key_dim, value_dim=value_dim, output_shape=output_shape, use_bias=use_bias,
                               dropout=dropout, seed=seed, use_causal_mask=causal, sliding_window=window,
                               use_gate=use_gate)
    report = check_layer(layer, x=inputs, seed=seed % 1000, h=STEP, mask=mask)
    assert [check.name for check in report.checks] == names(separate_key, use_bias, use_gate)
    assert report.max_error < TOLERANCE, f"\n{report}"


@given(n=batch_sizes(), shape=st.tuples(st.integers(1, 3), st.integers(1, 3)), c=sizes,
       axes=st.sampled_from([None, 1, 2, (1, 2), (2, 1), -2]), heads=st.integers(1, 2), seed=rng_seeds())
def test_attention_over_chosen_axes_of_rank_4_inputs_has_gradients(n, shape, c, axes, heads, seed):
    rng = np.random.default_rng(seed)
    other = shape[0] if axes in (2, -2) else 2         # the value's size on the attended axis may differ
    value_shape = (n, shape[0], other, c) if axes in (2, -2) else (n, 2 if axes == 1 else shape[0], shape[1], c)
    if axes in (None, (1, 2), (2, 1)):
        value_shape = (n, 2, 3, c)
    inputs = [rng.standard_normal((n, *shape, c)), rng.standard_normal(value_shape)]
    layer = MultiHeadAttention(heads, 2, attention_axes=axes, kernel_regularizer="l2", bias_regularizer="l1")
    report = check_layer(layer, x=inputs, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def head_by_head(layer, query, value, key, keep=None):
    """Keras's formula with one loop a head: project, scale, softmax (masked pairs 0), average, project back."""
    w = {name: layer.params[name].value.astype(np.float64) for name in layer.params}
    outputs = []
    for h in range(layer.num_heads):
        q = query @ w["query_kernel"][:, h] + w["query_bias"][h]
        k = key @ w["key_kernel"][:, h] + w["key_bias"][h]
        v = value @ w["value_kernel"][:, h] + w["value_bias"][h]
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(layer.key_dim)
        weights = softmax(scores if keep is None else np.where(keep, scores, -1e9))
        weights = weights if keep is None else np.where(keep, weights, 0.0)
        outputs.append(weights @ v @ w["attention_output_kernel"][h])
    return sum(outputs) + w["attention_output_bias"]


def test_the_gate_multiplies_each_heads_output_by_a_sigmoid_of_the_query():
    rng = np.random.default_rng(8)
    query, value = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 2))
    gated = MultiHeadAttention(2, 3, use_gate=True, bias_initializer="random_normal")
    y = gated(query, value)
    w = {name: gated.params[name].value.astype(np.float64) for name in gated.params}
    outputs = []
    for h in range(2):
        q = query @ w["query_kernel"][:, h] + w["query_bias"][h]
        k = value @ w["key_kernel"][:, h] + w["key_bias"][h]
        v = value @ w["value_kernel"][:, h] + w["value_bias"][h]
        gate = 1 / (1 + np.exp(-(query @ w["gate_kernel"][:, h] + w["gate_bias"][h])))
        outputs.append(softmax(q @ k.transpose(0, 2, 1) / np.sqrt(3)) @ v * gate @ w["attention_output_kernel"][h])
    np.testing.assert_allclose(y, sum(outputs) + w["attention_output_bias"], rtol=1e-5, atol=1e-6)
    assert list(gated.params)[:6] == ["query_kernel", "query_bias", "key_kernel", "key_bias", "gate_kernel",
                                      "gate_bias"]


def test_multi_head_attention_is_the_sum_over_heads_of_their_attention_projected_back():
    rng = np.random.default_rng(1)
    query, value, key = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 6))
    layer = MultiHeadAttention(3, 2, value_dim=4, bias_initializer="random_normal")
    np.testing.assert_allclose(layer(query, value, key), head_by_head(layer, query, value, key), rtol=1e-5,
                               atol=1e-6)
    assert layer.attention_scores.shape == (2, 3, 3, 5)          # (N, heads, T, S)
    np.testing.assert_allclose(layer.attention_scores.sum(axis=-1), 1, rtol=1e-6)
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    v_mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 1]], bool)
    keep = q_mask[:, :, None] & v_mask[:, None, :]
    y = layer.forward([query, value, key], mask=[q_mask, v_mask, None])
    np.testing.assert_allclose(y, head_by_head(layer, query, value, key, keep), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y[0, 2], layer.params["attention_output_bias"].value, rtol=1e-6)  # no key left
    assert layer.compute_mask([query, value, key], [q_mask, v_mask, None]) is q_mask
    windowed = MultiHeadAttention(2, 2, sliding_window=2)
    x = rng.standard_normal((2, 5, 3))
    band = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :]) < 2
    np.testing.assert_allclose(windowed(x, x), head_by_head(windowed, x, x, x, band), rtol=1e-5, atol=1e-6)


def test_an_attention_mask_input_hides_the_pairs_where_it_is_zero_and_gets_no_gradient(tmp_path):
    rng = np.random.default_rng(7)
    query, value = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 6, 2))
    pairs = (rng.random((3, 4, 6)) < 0.6).astype(float)
    pairs[:, :, 0] = 1.0
    layer = MultiHeadAttention(2, 3, bias_initializer="random_normal", attention_mask_input=True)
    y = layer([query, value, pairs])                     # (on a list, the mask last)
    np.testing.assert_allclose(y, head_by_head(layer, query, value, value, pairs != 0), rtol=1e-5, atol=1e-6)
    checked = MultiHeadAttention(2, 3, bias_initializer="random_normal", attention_mask_input=True)
    report = check_layer(checked, x=[query, value, pairs], h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"
    assert [check.name for check in report.checks][:3] == ["input_0", "input_1", "input_2"]
    inputs, mask_input = nnscratch.Input((4, 5)), nnscratch.Input((4, 4))
    model = nnscratch.Model([inputs, mask_input], MultiHeadAttention(2, 3)(inputs, inputs, attention_mask=mask_input))
    x, m = rng.standard_normal((2, 4, 5)).astype(np.float32), np.tril(np.ones((2, 4, 4), np.float32))
    causal = nnscratch.Model(inputs, MultiHeadAttention(2, 3, name="twin")(inputs, inputs, use_causal_mask=True))
    causal.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict([x, m], verbose=0), causal.predict(x, verbose=0), rtol=1e-6)
    model.save(tmp_path / "masked.npz")
    loaded = load_model(tmp_path / "masked.npz")
    assert loaded.layers[-1].attention_mask_input
    np.testing.assert_array_equal(loaded.predict([x, m], verbose=0), model.predict([x, m], verbose=0))
    with pytest.raises(ValueError, match=r"the attention mask must be \(None, query steps, value steps\)"):
        MultiHeadAttention(2, 2)(inputs, inputs, attention_mask=nnscratch.Input((4, 3)))


def test_the_key_bias_gets_no_gradient_because_the_softmax_ignores_a_constant_in_each_row():
    """q . (k_j + b) = q . k_j + q . b: the same amount added to every score of a row, which softmax cancels."""
    rng = np.random.default_rng(2)
    layer = MultiHeadAttention(2, 3, bias_initializer="random_normal")
    inputs = [rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 6, 5))]
    report = check_layer(layer, x=inputs, h=STEP)
    assert report.max_error < TOLERANCE
    assert np.abs(layer.params["key_bias"].grad).max() < 1e-12
    assert np.abs(layer.params["query_bias"].grad).max() > 1e-3


def test_the_causal_mask_keeps_each_step_from_reading_later_steps_and_is_kept_by_a_saved_model(tmp_path):
    inputs = nnscratch.Input((5, 3))
    model = nnscratch.Model(inputs, MultiHeadAttention(2, 4)(inputs, inputs, use_causal_mask=True))
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype(np.float32)
    changed = x.copy()
    changed[:, 3:] += 1.0
    y = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(changed, verbose=0)[:, :3], y[:, :3])
    assert not np.allclose(model.predict(changed, verbose=0)[:, 3:], y[:, 3:])
    model.save(tmp_path / "causal.npz")
    loaded = load_model(tmp_path / "causal.npz")
    assert loaded.layers[-1].use_causal_mask
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), y)


def self_attention_tagger(steps, mask_zero=True, dropout=0.0):
    """Embedding -> MultiHeadAttention(e, e) -> Dense: each step attends to the whole sequence."""
    inputs = nnscratch.Input((steps,))
    embedded = Embedding(9, 4, mask_zero=mask_zero)(inputs)
    attended = MultiHeadAttention(2, 3, dropout=dropout, seed=5)(embedded, embedded)
    return nnscratch.Model(inputs, Dense(3, activation="softmax")(attended))


def test_self_attention_on_padded_sequences_predicts_as_on_each_sequence_alone_and_trains(tmp_path):
    rng = np.random.default_rng(4)
    x, y = padded_indices(rng, n=8), rng.integers(0, 3, (8, 6))
    model = self_attention_tagger(6, dropout=0.2)
    assert model.output_masked                         # the query's mask goes on: the loss counts real steps
    assert_predicts_as_each_sequence_alone(model, x, lambda steps: self_attention_tagger(steps, mask_zero=False))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.get_weights()
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=1).history
    assert all(np.isfinite(history["loss"]))
    assert all(not np.array_equal(a, b) for a, b in zip(before[1:], model.get_weights()[1:]))  # (but key_bias)
    again = self_attention_tagger(6, dropout=0.2)
    again.set_weights(before)
    again.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert again.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=1).history == history   # seeded dropout
    model.save(tmp_path / "mha.npz")
    loaded = load_model(tmp_path / "mha.npz")
    assert loaded.layers[2].get_config() == model.layers[2].get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_classifier_with_attention_learns_which_step_holds_the_answer():
    """The class is the sign of the feature at the step the first feature marks: attention must find it."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((512, 6, 2)).astype(np.float32)
    marked = rng.integers(0, 6, 512)
    x[:, :, 0] = 0.0
    x[np.arange(512), marked, 0] = 1.0
    y = (x[np.arange(512), marked, 1] > 0).astype(int)
    nnscratch.set_random_seed(0)
    inputs = nnscratch.Input((6, 2))
    attended = MultiHeadAttention(2, 4)(inputs, inputs)
    model = nnscratch.Model(inputs, Dense(2, activation="softmax")(GlobalAveragePooling1D()(attended)))
    model.compile(nnscratch.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0, seed=0).history
    assert history["accuracy"][-1] > 0.9 > history["accuracy"][0]


def test_kernels_are_drawn_with_the_fans_of_their_matrix_as_keras_3_15():
    nnscratch.set_random_seed(0)
    layer = MultiHeadAttention(4, 16)
    layer.build([(10, 64), (10, 64)])
    limit = np.sqrt(6 / (64 + 4 * 16))                 # (inputs, heads * size), not Keras 2's (64 * 4, 64 * 16)
    query = layer.params["query_kernel"].value
    assert query.shape == (64, 4, 16) and 0.95 * limit < np.abs(query).max() <= limit
    output = layer.params["attention_output_kernel"].value
    assert output.shape == (4, 16, 64) and 0.95 * limit < np.abs(output).max() <= limit
    assert [w.shape for w in layer.get_weights()] == [(64, 4, 16), (4, 16), (64, 4, 16), (4, 16), (64, 4, 16),
                                                      (4, 16), (4, 16, 64), (64,)]


def test_bad_arguments_and_inputs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        MultiHeadAttention(0, 2)
    with pytest.raises(ValueError, match="value_dim must be a positive integer or None"):
        MultiHeadAttention(2, 2, value_dim=1.5)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        MultiHeadAttention(2, 2, dropout=1.0)
    with pytest.raises(ValueError, match="output_shape must be an int or a tuple of ints"):
        MultiHeadAttention(2, 2, output_shape="wide")
    with pytest.raises(ValueError, match="activity_regularizer is not supported"):
        MultiHeadAttention(2, 2, activity_regularizer="l2")
    with pytest.raises(ValueError, match="the key needs the value's shape but for its features"):
        MultiHeadAttention(2, 2).build([(3, 4), (5, 2), (4, 2)])
    with pytest.raises(ValueError, match="all of one rank"):
        MultiHeadAttention(2, 2).build([(3, 4), (5, 2, 2)])
    with pytest.raises(ValueError, match="attention_axes must be distinct axes between the batch and the features"):
        MultiHeadAttention(2, 2, attention_axes=3).build([(3, 4, 2), (3, 4, 2)])
    with pytest.raises(ValueError, match="must agree on the axes that are not attention_axes"):
        MultiHeadAttention(2, 2, attention_axes=2).build([(3, 4, 2), (2, 4, 2)])
    with pytest.raises(ValueError, match="the causal mask, sliding_window and attention_mask need inputs"):
        MultiHeadAttention(2, 2, sliding_window=2).build([(3, 4, 2), (3, 4, 2)])
    inputs = nnscratch.Input((4, 3))
    with pytest.raises(ValueError, match="return_attention_scores=True works on arrays"):
        MultiHeadAttention(2, 2)(inputs, inputs, return_attention_scores=True)
    with pytest.raises(ValueError, match=r"return_attention_scores=True takes inputs \(N, steps, features\)"):
        MultiHeadAttention(2, 2, attention_axes=2)(np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 4, 2)),
                                                   return_attention_scores=True)
    x, layer = np.zeros((2, 3, 4, 2), np.float32), MultiHeadAttention(2, 2)
    layer.build([(3, 4, 2), (3, 4, 2)])
    with pytest.raises(ValueError, match=r"masks need inputs \(N, steps, features\)"):
        layer.forward([x, x], mask=[np.ones((2, 3, 4), bool), None])


def test_return_attention_scores_on_arrays_gives_each_heads_softmax_weights():
    """As Keras's: (output, scores), scores (N, heads, T, S), each row a softmax over the unmasked keys."""
    rng = np.random.default_rng(11)
    query, value = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 6, 5))
    layer = MultiHeadAttention(2, 3, use_causal_mask=False)
    output, scores = layer(query, value, return_attention_scores=True)
    np.testing.assert_array_equal(output, layer(query, value))
    assert scores.shape == (3, 2, 4, 6)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-6)
    _, causal = MultiHeadAttention(2, 3)(query, query, return_attention_scores=True, use_causal_mask=True)
    np.testing.assert_array_equal(causal[..., np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]], 0.0)
