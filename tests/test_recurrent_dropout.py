"""``dropout`` and ``recurrent_dropout`` of SimpleRNN, LSTM and GRU: Keras's masks, one draw per sequence.

The input mask is checked against the layer run on the masked input by
hand, and both masks (one for each gate, as Keras's ``implementation=1``)
against per-step formulas written here; the gradients through them by
central differences (the check restores the layer's generator, so every
forward draws the same masks), for the three layers, with ``go_backwards``,
and inside Bidirectional; the kernels' twins agree with masks; inference is
untouched; ``seed`` and ``fit(seed=...)`` make runs repeat; configs and
saved models keep the rates.
"""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import rng
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.kernels import recurrent_fast, recurrent_reference
from nnscratch.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
    from tests.kernel_helpers import module_value
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
    from kernel_helpers import module_value

KINDS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU,
         "GRU_reset_before": lambda *args, **options: GRU(*args, reset_after=False, **options)}


def built(layer, shape, seed):
    """``layer`` built in float64 for (N, T, F) ``shape`` with random weights."""
    with float64_floatx():
        layer.build(shape[1:])
    generator = np.random.default_rng(seed)
    layer.set_weights([0.7 * generator.standard_normal(w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_the_mask_is_one_draw_per_sequence_for_every_step(kind, go_backwards):
    shape, rate = (6, 5, 4), 0.4
    layer = built(KINDS[kind](3, dropout=rate, seed=11, return_sequences=True, go_backwards=go_backwards), shape, 1)
    x = np.random.default_rng(2).standard_normal(shape)
    draws = copy.deepcopy(layer.generator).random((6, 4), dtype=np.float32)   # what the forward will draw
    mask = (draws >= rate) / (1 - rate)
    assert 0 < (mask == 0).sum() < mask.size
    expected = layer.forward(x * mask[:, None, :], training=False)
    np.testing.assert_array_equal(layer.forward(x, training=True), expected)


@pytest.mark.parametrize("kind", list(KINDS))
def test_inference_ignores_dropout(kind):
    shape = (3, 4, 2)
    with_dropout = built(KINDS[kind](3, dropout=0.5, seed=1), shape, 4)
    plain = built(KINDS[kind](3), shape, 4)
    x = np.random.default_rng(5).standard_normal(shape)
    np.testing.assert_array_equal(with_dropout.forward(x, training=False), plain.forward(x, training=False))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def drawn_masks(layer, n, features):
    """The masks the layer's next training forward will draw, in its order: inputs (N, blocks, F), state (N, G, u)."""
    generator = copy.deepcopy(layer.generator)
    blocks = layer.blocks if layer.recurrent_dropout > 0 else 1
    masks = []
    for rate, count, width in ((layer.dropout, blocks, features), (layer.recurrent_dropout, layer.blocks, layer.units)):
        if rate == 0:
            masks.append(np.ones((n, count if count else 1, width)))
            continue
        uniform = generator.random((n, count * width), dtype=np.float32).reshape(n, count, width)
        masks.append((uniform >= rate) / (1 - rate))
    return masks


def stepped(kind, x, weights, d, r):
    """Keras's cell, written out, with input masks ``d`` (N, blocks, F) and state masks ``r`` (N, G, u)."""
    kernel, recurrent, bias = weights
    u = recurrent.shape[0]
    h, c, states = np.zeros((len(x), u)), np.zeros((len(x), u)), []

    def block(mask, g):
        return mask[:, g if mask.shape[1] > 1 else 0]

    for t in range(x.shape[1]):
        if kind == "SimpleRNN":
            h = np.tanh((x[:, t] * block(d, 0)) @ kernel + bias + (h * block(r, 0)) @ recurrent)
        elif kind == "LSTM":
            z = [(x[:, t] * block(d, g)) @ kernel[:, g * u:(g + 1) * u] + bias[g * u:(g + 1) * u]
                 + (h * block(r, g)) @ recurrent[:, g * u:(g + 1) * u] for g in range(4)]
            c = sigmoid(z[1]) * c + sigmoid(z[0]) * np.tanh(z[2])
            h = sigmoid(z[3]) * np.tanh(c)
        elif kind == "GRU_reset_before":     # Keras's reset_after=False: r scales the (masked) state, one bias
            p = [(x[:, t] * block(d, g)) @ kernel[:, g * u:(g + 1) * u] + bias[g * u:(g + 1) * u] for g in range(3)]
            update = sigmoid(p[0] + (h * block(r, 0)) @ recurrent[:, :u])
            reset = sigmoid(p[1] + (h * block(r, 1)) @ recurrent[:, u:2 * u])
            h = update * h + (1 - update) * np.tanh(p[2] + (reset * (h * block(r, 2))) @ recurrent[:, 2 * u:])
        else:
            p = [(x[:, t] * block(d, g)) @ kernel[:, g * u:(g + 1) * u] + bias[0, g * u:(g + 1) * u] for g in range(3)]
            q = [(h * block(r, g)) @ recurrent[:, g * u:(g + 1) * u] + bias[1, g * u:(g + 1) * u] for g in range(3)]
            update, reset = sigmoid(p[0] + q[0]), sigmoid(p[1] + q[1])
            h = update * h + (1 - update) * np.tanh(p[2] + reset * q[2])    # h_{t-1} itself, unmasked, here
        states.append(h)
    return np.stack(states, axis=1)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dropout, recurrent_dropout", [(0.0, 0.4), (0.3, 0.4)])
def test_recurrent_dropout_is_kerass_cell_with_a_mask_for_each_gate(kind, dropout, recurrent_dropout):
    shape = (7, 4, 3)
    layer = built(KINDS[kind](4, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=5, return_sequences=True),
                  shape, 2)
    x = np.random.default_rng(3).standard_normal(shape)
    d, r = drawn_masks(layer, 7, 3)
    assert r.shape == (7, layer.blocks, 4) and 0 < (r == 0).sum() < r.size
    expected = stepped(kind, x, layer.get_weights(), d, r)
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-12, atol=1e-14)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), shape=st.tuples(st.integers(2, 4), st.integers(1, 4), st.integers(2, 4)),
       units=st.integers(1, 3), rates=st.sampled_from([(0.2, 0.0), (0.5, 0.0), (0.0, 0.3), (0.4, 0.5)]),
       go_backwards=st.booleans(), return_sequences=st.booleans(), seed=rng_seeds())
def test_gradients_through_the_masks(kind, shape, units, rates, go_backwards, return_sequences, seed):
    layer = built(KINDS[kind](units, dropout=rates[0], recurrent_dropout=rates[1], seed=seed % 997,
                              go_backwards=go_backwards, return_sequences=return_sequences), shape, seed)
    report = check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_the_input_gradient_is_zero_where_a_feature_was_dropped():
    layer = built(LSTM(3, dropout=0.5, seed=3, return_sequences=True), (8, 3, 5), 6)
    x = np.random.default_rng(7).standard_normal((8, 3, 5))
    draws = copy.deepcopy(layer.generator).random((8, 5), dtype=np.float32)
    y = layer.forward(x, training=True)
    grad_x = layer.backward(np.ones_like(y))
    dropped = draws < 0.5
    assert dropped.any() and np.all(grad_x[np.broadcast_to(dropped[:, None, :], grad_x.shape)] == 0)
    assert np.all(grad_x[np.broadcast_to(~dropped[:, None, :], grad_x.shape)] != 0)


@pytest.mark.parametrize("panels", [True, False], ids=["panels", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_twins_agree_with_state_masks(kind, dtype, panels):
    """The compiled loops' product block by block with the masks: the reference's numbers, by panels and by BLAS."""
    rng_ = np.random.default_rng(4)
    blocks = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3, "GRU_reset_before": 3}[kind]
    n, steps, u = recurrent_fast.CHUNK_ROWS + 5, 4, 5         # two chunks, the second partial
    projected = rng_.standard_normal((n, steps, blocks * u)).astype(dtype)
    recurrent = (rng_.standard_normal((u, blocks * u)) / np.sqrt(u)).astype(dtype)
    masks = ((rng_.random((n, blocks, u)) > 0.3) / 0.7).astype(dtype)
    grad_states = rng_.standard_normal((n, steps, u)).astype(dtype)
    bias = rng_.standard_normal(3 * u).astype(dtype)
    results = []
    with module_value(recurrent_fast, "fixed_product_pays", lambda k, m: panels):
        for twin in (recurrent_fast, recurrent_reference):
            if kind == "SimpleRNN":
                states = twin.simple_rnn_forward(projected, recurrent, "tanh", masks)
                results.append((states, twin.simple_rnn_backward(grad_states, states, recurrent, "tanh", masks)))
            elif kind == "LSTM":
                forward = twin.lstm_forward(projected, recurrent, "tanh", "sigmoid", masks)
                results.append((*forward, twin.lstm_backward(grad_states, recurrent, *forward[1:], "tanh", "sigmoid",
                                                             masks)))
            elif kind == "GRU_reset_before":
                forward = twin.gru_reset_before_forward(projected, recurrent, "tanh", "sigmoid", masks)
                results.append((*forward, twin.gru_reset_before_backward(grad_states, recurrent, *forward[:4], "tanh",
                                                                         "sigmoid", masks)))
            else:
                forward = twin.gru_forward(projected, recurrent, bias, "tanh", "sigmoid", masks)
                results.append((*forward, *twin.gru_backward(grad_states, recurrent, *forward, "tanh", "sigmoid",
                                                             masks)))
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for got, expected in zip(*results):
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_bidirectional_draws_two_masks_and_is_gradient_checked():
    layer = Bidirectional(GRU(2, dropout=0.5, recurrent_dropout=0.3, return_sequences=True))
    layer = built(layer, (4, 3, 3), 8)
    x = np.random.default_rng(9).standard_normal((4, 3, 3))
    report = check_layer(layer, x=x, seed=3, h=STEP)    # the inner layers' generators are restored between passes
    assert report.max_error < TOLERANCE, f"\n{report}"
    layer.reseed(np.random.default_rng(1))
    a, b = (copy.deepcopy(l.generator).random(4) for l in (layer.forward_layer, layer.backward_layer))
    assert not np.array_equal(a, b)


def test_a_model_with_dropout_is_gradient_checked_whole():
    with float64_floatx():
        model = nnscratch.Sequential([nnscratch.Input((4, 3)), SimpleRNN(3, dropout=0.3, seed=2, return_sequences=True),
                                      LSTM(2, dropout=0.3, recurrent_dropout=0.4, seed=4),
                                      Dense(2, activation="softmax")])
    report = check_model(model, np.random.default_rng(1).standard_normal((5, 4, 3)), h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_fit_with_a_seed_repeats_bit_for_bit_and_its_masks_depend_on_it():
    x = np.random.default_rng(0).standard_normal((32, 6, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(32) % 2]

    def train(fit_seed):
        nnscratch.set_random_seed(1)
        model = nnscratch.Sequential([nnscratch.Input((6, 3)), GRU(4, dropout=0.5, recurrent_dropout=0.2),
                                      Dense(2, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, seed=fit_seed, shuffle=False, verbose=0)   # the seed: masks only
        return model.get_weights()

    first, again, other = train(5), train(5), train(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_without_dropout_a_layer_draws_nothing_at_construction():
    """Creating a layer with dropout=0 leaves the library's generators where they were (seeded programs repeat)."""
    nnscratch.set_random_seed(3)
    expected = rng.new_generator().random()
    nnscratch.set_random_seed(3)
    layer = LSTM(3)
    assert rng.new_generator().random() == expected and not hasattr(layer, "generator")


def test_config_and_a_saved_model_keep_the_rates(tmp_path):
    layer = LSTM(3, dropout=0.25, recurrent_dropout=0.125, seed=9)
    config = layer.get_config()
    assert config["dropout"] == 0.25 and config["recurrent_dropout"] == 0.125 and config["seed"] == 9
    clone = LSTM.from_config(config)
    assert clone.dropout == 0.25 and clone.recurrent_dropout == 0.125
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), layer, Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(3).standard_normal((6, 4, 2)).astype(np.float32)
    model.fit(x, np.zeros((6, 1), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.layers[0].dropout == 0.25 and loaded.layers[0].recurrent_dropout == 0.125
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
