"""``dropout`` of SimpleRNN, LSTM and GRU: Keras's mask on the inputs, one draw per sequence for all its steps.

The mask is checked against the layer run on the masked input by hand; the
gradients through it by central differences (the check restores the layer's
generator, so every forward draws the same mask), for the three layers, with
``go_backwards``, and inside Bidirectional; inference is untouched; ``seed``
and ``fit(seed=...)`` make runs repeat; configs and saved models keep it.
"""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import rng
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds

KINDS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


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


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), shape=st.tuples(st.integers(2, 4), st.integers(1, 4), st.integers(2, 4)),
       units=st.integers(1, 3), rate=st.sampled_from([0.2, 0.5]), go_backwards=st.booleans(),
       return_sequences=st.booleans(), seed=rng_seeds())
def test_gradients_through_the_mask(kind, shape, units, rate, go_backwards, return_sequences, seed):
    layer = built(KINDS[kind](units, dropout=rate, seed=seed % 997, go_backwards=go_backwards,
                              return_sequences=return_sequences), shape, seed)
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


def test_bidirectional_draws_two_masks_and_is_gradient_checked():
    layer = Bidirectional(GRU(2, dropout=0.5, return_sequences=True))
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
                                      LSTM(2, dropout=0.3, seed=4), Dense(2, activation="softmax")])
    report = check_model(model, np.random.default_rng(1).standard_normal((5, 4, 3)), h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_fit_with_a_seed_repeats_bit_for_bit_and_its_masks_depend_on_it():
    x = np.random.default_rng(0).standard_normal((32, 6, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(32) % 2]

    def train(fit_seed):
        nnscratch.set_random_seed(1)
        model = nnscratch.Sequential([nnscratch.Input((6, 3)), GRU(4, dropout=0.5), Dense(2, activation="softmax")])
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


def test_config_and_a_saved_model_keep_the_rate(tmp_path):
    layer = LSTM(3, dropout=0.25, seed=9)
    config = layer.get_config()
    assert config["dropout"] == 0.25 and config["recurrent_dropout"] == 0.0 and config["seed"] == 9
    assert LSTM.from_config(config).dropout == 0.25
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), layer, Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(3).standard_normal((6, 4, 2)).astype(np.float32)
    model.fit(x, np.zeros((6, 1), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.layers[0].dropout == 0.25
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
