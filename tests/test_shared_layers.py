"""Shared layers: one layer called at several places (a siamese tower), its gradient the sum over its calls.

Each test compares a model whose layers are shared with its *twin*: the same
graph with a layer of its own at every call, all copies holding the shared
layer's weights. The twin computes the same function, so the shared model's
outputs must equal the twin's, and its gradient for a shared weight must
equal the sum of the twin's gradients for the copies (docs/backprop.md 7b).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_model
from nnscratch.layers import (LSTM, BatchNormalization, Concatenate, Conv2D, Dense, Dropout, Embedding, Flatten,
                              Identity, MaxPooling2D, Subtract)
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds


def siamese(features=5, shared=True, seed=0):
    """Two inputs through Dense(4, tanh) -> BatchNormalization -> Dense(3), concatenated, -> Dense(2, softmax)."""
    nnscratch.set_random_seed(seed)
    a, b = nnscratch.Input((features,), name="a"), nnscratch.Input((features,), name="b")

    def tower(suffix):
        return [Dense(4, activation="tanh", name=f"d{suffix}"), BatchNormalization(name=f"bn{suffix}"),
                Dense(3, name=f"e{suffix}")]
    first = tower("")
    second = first if shared else tower("_twin")
    ends = []
    for x, layers in ((a, first), (b, second)):
        for layer in layers:
            x = layer(x)
        ends.append(x)
    return nnscratch.Model([a, b], Dense(2, activation="softmax", name="head")(Concatenate(name="join")(ends)))


def tie(twin, model):
    """Give every layer of the twin the weights of the shared layer it copies (``d_twin`` copies ``d``)."""
    for layer in twin.layers:
        if layer.get_weights():
            layer.set_weights(model.get_layer(layer.name.removesuffix("_twin")).get_weights())


def pairs(n, features=5, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, features)).astype(np.float32) for _ in range(2)], rng.integers(0, 2, n)


def test_a_shared_layer_is_listed_once_and_runs_at_each_call():
    model = siamese()
    assert [layer.name for layer in model.layers] == ["d", "bn", "e", "join", "head"]
    assert [layer.name for layer in model.node_layers] == ["d", "d", "bn", "bn", "e", "e", "join", "head"]
    assert model.count_params() == 5 * 4 + 4 + 4 * 4 + 4 * 3 + 3 + 6 * 2 + 2 and len(model.get_weights()) == 10
    assert len(model.parameters()) == 8                                      # each weight once for the optimizer
    twin = siamese(shared=False)
    tie(twin, model)
    x, _ = pairs(16)
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(model.forward(x, training=True), twin.forward(x, training=True), rtol=1e-5)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "a[0][0]" in text and "b[0][0]" in text and "d[1][0]" in text and "e[1][0]" in text


def test_the_calls_run_in_keras_order_which_decides_a_shared_batch_norms_moving_statistics():
    """Each call of a shared batch norm updates its moving mean, m <- 0.99 m + 0.01 mean(batch), in Keras's order.

    Keras 3 runs the calls of one depth in the order its walk back from the
    output first meets them: with the Dense after the batch norm that is b's
    call first (Keras 3.15 agrees, outside the suite); without it, a's.
    """
    x, _ = pairs(16)
    for with_e, first in ((True, 1), (False, 0)):
        nnscratch.set_random_seed(4)
        a, b = nnscratch.Input((5,), name="a"), nnscratch.Input((5,), name="b")
        d, bn, e = Dense(4, activation="tanh"), BatchNormalization(), Dense(3)
        ends = [e(bn(d(t))) if with_e else bn(d(t)) for t in (a, b)]
        model = nnscratch.Model([a, b], Concatenate()(ends))
        means = [np.tanh(batch @ d.kernel.value + d.bias.value).mean(axis=0) for batch in x]
        model.forward(x, training=True)
        expected = 0.99 * 0.01 * means[first] + 0.01 * means[1 - first]
        np.testing.assert_allclose(bn.buffers["moving_mean"], expected, rtol=1e-5, atol=1e-8)
        assert model.node_layers[0] is d and model.graph.sources[0] == (-2,)       # d runs on b first in both


@given(n=st.integers(3, 6), features=st.integers(1, 4), seed=rng_seeds())
def test_gradients_of_a_siamese_model(n, features, seed):
    """Batch norm needs 3 samples a call; the projection of the output keeps its gradient honest."""
    with float64_floatx():
        model = siamese(features, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((n, features)) for _ in range(2)]
    report = check_model(model, x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_training_step_moves_a_shared_weight_by_the_sum_of_its_calls_gradients(optimizer):
    """SGD: the shared step is the sum of the twin's two steps; Adam: the twin with summed gradients."""
    with float64_floatx():        # (float64: the weights' changes compare to rounding)
        model, twin = siamese(), siamese(shared=False)
    tie(twin, model)
    x, y = pairs(24)
    for m in (model, twin):
        m.compile(nnscratch.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    twin_before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in twin.layers}
    loss, twin_loss = model.train_on_batch(x, y), twin.train_on_batch(x, y)
    assert loss == pytest.approx(twin_loss, rel=1e-6)
    for layer in model.layers:
        copies = [name for name in twin_before if name.removesuffix("_twin") == layer.name]
        expected = [sum(twin.get_layer(c).params[p].value - twin_before[c][k] for c in copies)
                    for k, p in enumerate(layer.params)]
        moved = [layer.params[p].value - before[layer.name][k] for k, p in enumerate(layer.params)]
        for got, want in zip(moved, expected):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)
    if optimizer == "adam":          # several steps of a stateful optimizer, against its own history
        adam = siamese()
        adam.compile("adam", "sparse_categorical_crossentropy")
        again = siamese()
        again.compile("adam", "sparse_categorical_crossentropy")
        assert adam.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=1).history == \
            again.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=1).history


def test_a_layer_called_twice_in_a_row_and_as_the_output_with_a_fused_loss():
    """out = d(d(x)): one chain of two calls, the second the softmax output the trainer fuses with its loss."""
    with float64_floatx():
        nnscratch.set_random_seed(2)
        x_in = nnscratch.Input((4,))
        d = Dense(4, activation="softmax")
        model = nnscratch.Model(x_in, d(d(x_in)))
        twin_in = nnscratch.Input((4,))
        first, second = Dense(4, activation="softmax"), Dense(4, activation="softmax")
        twin = nnscratch.Model(twin_in, second(first(twin_in)))
    for layer in (first, second):
        layer.set_weights(d.get_weights())
    assert model.graph is not None and model.layers == [d] and model.node_layers == [d, d]
    x, y = pairs(10, features=4)[0][0], np.arange(10) % 4
    for m in (model, twin):
        m.compile(nnscratch.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    start = d.kernel.value.copy()
    assert model.train_on_batch(x, y) == pytest.approx(twin.train_on_batch(x, y), rel=1e-6)
    np.testing.assert_allclose(d.kernel.value - start, first.kernel.value + second.kernel.value - 2 * start,
                               rtol=1e-9, atol=1e-13)


def test_a_tower_model_called_on_two_inputs_shares_its_layers_and_draws_a_dropout_mask_a_call():
    with float64_floatx():
        nnscratch.set_random_seed(3)
        image = nnscratch.Input((6, 6, 1))
        h = Dropout(0.4, seed=1)(Flatten()(MaxPooling2D()(Conv2D(2, 3, activation="tanh")(image))))
        tower = nnscratch.Model(image, Dense(3)(h), name="tower")
        a, b = nnscratch.Input((6, 6, 1), name="a"), nnscratch.Input((6, 6, 1), name="b")
        model = nnscratch.Model([a, b], Subtract(name="difference")([tower(a), tower(b)]))
    assert [layer.name for layer in model.layers] == [layer.name for layer in tower.layers] + ["difference"]
    x = np.random.default_rng(4).standard_normal((5, 6, 6, 1))
    np.testing.assert_array_equal(model.predict([x, x], verbose=0), 0.0)        # the same tower, no dropout
    assert np.abs(model.forward([x, x], training=True)).max() > 0.1            # a mask of its own at each call
    report = check_model(model, [x, np.random.default_rng(5).standard_normal((5, 6, 6, 1))], h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@given(n=batch_sizes(), seed=rng_seeds())
def test_gradients_of_a_shared_lstm_over_two_sequences(n, seed):
    with float64_floatx():
        nnscratch.set_random_seed(seed % 1000)
        a, b = nnscratch.Input((4, 2), name="a"), nnscratch.Input((4, 2), name="b")
        lstm = LSTM(3)
        model = nnscratch.Model([a, b], Dense(2)(Concatenate()([lstm(a), lstm(b)])))
    rng = np.random.default_rng(seed)
    report = check_model(model, [rng.standard_normal((n, 4, 2)), rng.standard_normal((n, 4, 2))], h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_a_shared_embedding_and_lstm_over_masked_sentences_train_save_and_load(tmp_path):
    """Keras's functional-API guide: one Embedding(mask_zero=True) and one LSTM read both sentences."""
    def build(shared):
        nnscratch.set_random_seed(5)
        a, b = nnscratch.Input((6,), name="a"), nnscratch.Input((6,), name="b")
        emb, lstm = Embedding(12, 4, mask_zero=True, name="emb"), LSTM(3, name="lstm")
        emb_b, lstm_b = (emb, lstm) if shared else (Embedding(12, 4, mask_zero=True, name="emb_twin"),
                                                    LSTM(3, name="lstm_twin"))
        joined = Concatenate()([lstm(emb(a)), lstm_b(emb_b(b))])
        return nnscratch.Model([a, b], Dense(1, activation="sigmoid", name="head")(joined))
    with float64_floatx():
        model, twin = build(True), build(False)
    tie(twin, model)
    rng = np.random.default_rng(6)
    x = [rng.integers(1, 12, (16, 6)), rng.integers(1, 12, (16, 6))]
    x[1][:, 4:] = 0                                                            # padded second sentences
    y = rng.integers(0, 2, 16)
    for m in (model, twin):
        m.compile(nnscratch.optimizers.SGD(0.2), "binary_crossentropy")
    start = {name: layer.get_weights() for name, layer in (("emb", model.get_layer("emb")),
                                                           ("lstm", model.get_layer("lstm")))}
    assert model.train_on_batch(x, y) == pytest.approx(twin.train_on_batch(x, y), rel=1e-6)
    for name in ("emb", "lstm"):
        moved = [w - s for w, s in zip(model.get_layer(name).get_weights(), start[name])]
        summed = [u + v - 2 * s for u, v, s in zip(twin.get_layer(name).get_weights(),
                                                   twin.get_layer(name + "_twin").get_weights(), start[name])]
        for got, want in zip(moved, summed):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)
    model = build(True)                                                        # float32, to save and load
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "shared.npz")
    loaded = load_model(tmp_path / "shared.npz")
    assert [layer.name for layer in loaded.node_layers] == [layer.name for layer in model.node_layers]
    assert loaded.get_config()["nodes"] == model.get_config()["nodes"]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=3).history == \
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=3).history       # the optimizer's state came back


def test_an_activity_penalty_counts_at_every_call_and_a_weight_penalty_once():
    nnscratch.set_random_seed(7)
    a, b = nnscratch.Input((3,), name="a"), nnscratch.Input((3,), name="b")
    d = Dense(2, activity_regularizer="l2", kernel_regularizer="l1")
    model = nnscratch.Model([a, b], Concatenate()([d(a), d(b)]))
    x = [np.ones((4, 3), np.float32), 2 * np.ones((4, 3), np.float32)]
    model.forward(x, training=True)
    assert len(model.activity_losses) == 2 and len(model.losses) == 3
    assert model.activity_losses[0] != model.activity_losses[1]
    with float64_floatx():
        nnscratch.set_random_seed(7)
        a, b = nnscratch.Input((3,), name="a"), nnscratch.Input((3,), name="b")
        d = Dense(2, activation="tanh", activity_regularizer="l2", kernel_regularizer="l1")
        model = nnscratch.Model([a, b], Concatenate()([d(a), d(b)]))
    rng = np.random.default_rng(8)
    report = check_model(model, [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))], h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_outputs_of_a_shared_layer_train_as_separate_heads():
    """Two outputs from one shared layer, each with its own Identity so that the heads have names."""
    nnscratch.set_random_seed(9)
    a, b = nnscratch.Input((3,), name="a"), nnscratch.Input((3,), name="b")
    d = Dense(2, activation="softmax")
    model = nnscratch.Model([a, b], [Identity(name="left")(d(a)), Identity(name="right")(d(b))])
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(10)
    x, y = [rng.standard_normal((8, 3)) for _ in range(2)], [rng.integers(0, 2, 8) for _ in range(2)]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "left_loss", "right_loss"}
    assert logs["loss"] == pytest.approx(logs["left_loss"] + logs["right_loss"], rel=1e-6)
    with pytest.raises(ValueError, match=r"two outputs come from calls of the same shared layer \['dense"):
        nnscratch.Model([a, b], [d(a), d(b)])


def test_a_shared_layer_refuses_another_input_shape_and_a_bad_saved_node():
    d = Dense(2)
    d(nnscratch.Input((3,)))
    with pytest.raises(ValueError, match=r"was built for input shape \(None, 3\), got \(None, 4\)"):
        d(nnscratch.Input((4,)))
    model = siamese()
    config = model.get_config()
    assert config["outputs"] == [["head", 0]] and config["nodes"][:2] == [["d", [["b", 0]]], ["d", [["a", 0]]]]
    from nnscratch.models import saving
    bad = dict(config, nodes=[["d", [["a", 0]]], ["d", [["d", 3]]]] + config["nodes"][2:])
    inputs = [nnscratch.Input((5,), name="a"), nnscratch.Input((5,), name="b")]
    with pytest.raises(ValueError, match=r"\['d', 3\] is not \[name, call\] of an input or of a call made before"):
        saving._nodes_from_config(bad, inputs)
