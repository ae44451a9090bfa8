"""SimpleRNN, LSTM and GRU: step formulas written here in NumPy, gradient checks through time, Keras's options.

The forward passes are checked against plain per-step loops of the
formulas (Keras 3.15's equations: LSTM gates i, f, c, o; GRU blocks z, r, h
with the reset gate after the product, or before it with reset_after=False), the backward
passes by central differences in float64 over generated shapes and options.
(Against Keras 3.15 itself, once, outside the suite: outputs and one SGD
step agree to float32 rounding for every combination of return_sequences,
go_backwards and tanh/relu.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.gradcheck import check_layer
from nnscratch.layers import GRU, LSTM, Dense, SimpleRNN
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def simple_rnn_reference(x, kernel, recurrent, bias, activation=np.tanh):
    """All states h_1..h_T of h_t = f(x_t W + h_{t-1} U + b), one step at a time."""
    state, states = np.zeros((len(x), recurrent.shape[0])), []
    for t in range(x.shape[1]):
        state = activation(x[:, t] @ kernel + state @ recurrent + bias)
        states.append(state)
    return np.stack(states, axis=1)


def lstm_reference(x, kernel, recurrent, bias):
    """All states of Keras's LSTM (sigmoid gates, tanh), one step at a time."""
    units = recurrent.shape[0]
    state, cell, states = np.zeros((len(x), units)), np.zeros((len(x), units)), []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + state @ recurrent + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(g)
        state = sigmoid(o) * np.tanh(cell)
        states.append(state)
    return np.stack(states, axis=1)


def gru_reference(x, kernel, recurrent, bias):
    """All states of Keras 3's GRU (reset_after=True; bias row 0 for x W, row 1 for h U), one step at a time."""
    units = recurrent.shape[0]
    state, states = np.zeros((len(x), units)), []
    for t in range(x.shape[1]):
        p, q = x[:, t] @ kernel + bias[0], state @ recurrent + bias[1]
        update = sigmoid(p[:, :units] + q[:, :units])
        reset = sigmoid(p[:, units:2 * units] + q[:, units:2 * units])
        candidate = np.tanh(p[:, 2 * units:] + reset * q[:, 2 * units:])
        state = update * state + (1 - update) * candidate
        states.append(state)
    return np.stack(states, axis=1)


def gru_reset_before_reference(x, kernel, recurrent, bias):
    """All states of Keras's GRU with reset_after=False (r scales h_{t-1} before U_h; one bias), one step at a time."""
    units = recurrent.shape[0]
    state, states = np.zeros((len(x), units)), []
    for t in range(x.shape[1]):
        p = x[:, t] @ kernel + bias
        update = sigmoid(p[:, :units] + state @ recurrent[:, :units])
        reset = sigmoid(p[:, units:2 * units] + state @ recurrent[:, units:2 * units])
        candidate = np.tanh(p[:, 2 * units:] + (reset * state) @ recurrent[:, 2 * units:])
        state = update * state + (1 - update) * candidate
        states.append(state)
    return np.stack(states, axis=1)


def built(layer, features, rng):
    layer.build((5, features))
    layer.set_weights([0.6 * rng.standard_normal(p.shape) for p in layer.params.values()])
    return layer


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("make, reference", [(lambda **k: SimpleRNN(4, **k), simple_rnn_reference),
                                             (lambda **k: LSTM(4, **k), lstm_reference),
                                             (lambda **k: GRU(4, **k), gru_reference),
                                             (lambda **k: GRU(4, reset_after=False, **k), gru_reset_before_reference)])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_forward_is_the_step_formula_in_keras_order(float64, make, reference, return_sequences, go_backwards):
    rng = np.random.default_rng(0)
    layer = built(make(return_sequences=return_sequences, go_backwards=go_backwards), 3, rng)
    x = rng.standard_normal((2, 5, 3))
    states = reference(x[:, ::-1] if go_backwards else x, *layer.get_weights())
    expected = states if return_sequences else states[:, -1]   # go_backwards: in processing order, as Keras
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    assert layer.output_shape == ((None, 5, 4) if return_sequences else (None, 4))


def test_lstm_starts_with_an_open_forget_gate_and_orthogonal_recurrent_kernel():
    nnscratch.set_random_seed(1)
    layer = LSTM(3)
    layer.build((4, 2))
    np.testing.assert_array_equal(layer.bias.value, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    recurrent = layer.recurrent_kernel.value
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(3), atol=1e-6)     # (3, 12): orthonormal rows
    assert layer.kernel.shape == (2, 12) and layer.count_params() == 2 * 12 + 3 * 12 + 12
    plain = LSTM(3, unit_forget_bias=False)
    plain.build((4, 2))
    assert not plain.bias.value.any()


def test_a_relu_rnn_and_a_hard_sigmoid_lstm(float64):
    rng = np.random.default_rng(2)
    layer = built(SimpleRNN(3, activation="relu", return_sequences=True), 2, rng)
    x = rng.standard_normal((2, 5, 2))
    np.testing.assert_allclose(layer.forward(x), simple_rnn_reference(x, *layer.get_weights(),
                                                                      activation=lambda z: np.maximum(z, 0)))
    lstm = built(LSTM(3, recurrent_activation="hard_sigmoid"), 2, rng)
    assert lstm.forward(x).shape == (2, 3) and lstm.get_config()["recurrent_activation"] == "hard_sigmoid"


# ------------------------------------------------------------------ backward through time
@st.composite
def sequences(draw):
    """(N, T, F) shapes, units, the output options and a seed: what every recurrent layer's check varies."""
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 3)), label="shape")
    options = {"return_sequences": draw(st.booleans(), label="return_sequences"),
               "go_backwards": draw(st.booleans(), label="go_backwards")}
    return shape, draw(st.integers(1, 4), label="units"), options, draw(rng_seeds(), label="seed")


def check_through_time(make, shape, seed):
    """Build ``make()`` in float64 for ``shape``, give it random weights and gradient-check it by central differences."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = make()
        layer.build(shape[1:])
    layer.set_weights([0.7 * rng.standard_normal(p.shape) for p in layer.params.values()])
    report = check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"
    assert [c.name for c in report.checks] == ["input", "kernel", "recurrent_kernel"] + ["bias"] * layer.use_bias


smooth = st.sampled_from(["tanh", "sigmoid", "linear", "softsign"])


@settings(max_examples=25, deadline=None)
@given(case=sequences(), activation=smooth, use_bias=st.booleans())
def test_simple_rnn_gradients(case, activation, use_bias):
    shape, units, options, seed = case
    check_through_time(lambda: SimpleRNN(units, activation=activation, use_bias=use_bias, **options), shape, seed)


@settings(max_examples=25, deadline=None)
@given(case=sequences(), activation=st.sampled_from(["tanh", "linear", "softsign"]),
       recurrent_activation=st.sampled_from(["sigmoid", "tanh"]))
def test_lstm_gradients(case, activation, recurrent_activation):
    shape, units, options, seed = case
    check_through_time(lambda: LSTM(units, activation=activation, recurrent_activation=recurrent_activation,
                                    **options), shape, seed)


@settings(max_examples=25, deadline=None)
@given(case=sequences(), activation=st.sampled_from(["tanh", "linear", "softsign"]), use_bias=st.booleans(),
       reset_after=st.booleans())
def test_gru_gradients(case, activation, use_bias, reset_after):
    shape, units, options, seed = case
    check_through_time(lambda: GRU(units, activation=activation, use_bias=use_bias, reset_after=reset_after,
                                   **options), shape, seed)


def test_gru_bias_has_a_row_for_the_input_and_one_for_the_state():
    layer = GRU(3, bias_initializer="ones")
    layer.build((4, 2))
    assert layer.bias.shape == (2, 9) and layer.recurrent_kernel.shape == (3, 9) and layer.kernel.shape == (2, 9)
    assert layer.count_params() == 2 * 9 + 3 * 9 + 2 * 9 and np.all(layer.bias.value == 1)


def test_gru_reset_before_has_one_bias_added_to_the_input_part():
    layer = GRU(3, reset_after=False, bias_initializer="ones")
    layer.build((4, 2))
    assert layer.bias.shape == (9,) and layer.recurrent_kernel.shape == (3, 9) and layer.kernel.shape == (2, 9)
    assert layer.count_params() == 9 + 3 * 9 + 2 * 9 and np.all(layer.bias.value == 1)


def test_gru_reset_before_and_after_differ_once_the_state_is_not_zero(float64):
    """Same weights (the recurrent bias row zero): step 1 agrees (h_0 = 0), step 2 not (r h U against r (h U))."""
    rng = np.random.default_rng(8)
    after, before = GRU(3, return_sequences=True), GRU(3, return_sequences=True, reset_after=False)
    for layer in (after, before):
        layer.build((2, 2))
    kernel, recurrent = rng.standard_normal((2, 9)), rng.standard_normal((3, 9))
    bias = rng.standard_normal(9)
    after.set_weights([kernel, recurrent, np.stack([bias, np.zeros(9)])])
    before.set_weights([kernel, recurrent, bias])
    x = rng.standard_normal((4, 2, 2))
    a, b = after.forward(x), before.forward(x)
    np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-14)
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3


def test_the_first_layer_of_a_model_skips_its_input_gradient():
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), LSTM(3), Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(3)
    model.train_on_batch(rng.standard_normal((5, 4, 2)), rng.standard_normal((5, 1)))
    assert model.layers[0].skip_input_gradient and np.abs(model.layers[0].kernel.grad).sum() > 0


# ------------------------------------------------------------------ training, saving, errors
@pytest.mark.parametrize("recurrent", [LSTM, GRU])
def test_a_gated_layer_remembers_the_first_step_across_noise(recurrent):
    """The sign of x_1 decides the class; 11 steps of noise follow. A gated state learns to keep it."""
    rng = np.random.default_rng(4)
    x = 0.5 * rng.standard_normal((512, 12, 1)).astype(np.float32)
    x[:, 0, 0] = np.where(rng.random(512) < 0.5, -1.0, 1.0)
    y = (x[:, 0, 0] > 0).astype(np.float32)[:, None]
    nnscratch.set_random_seed(5)
    model = nnscratch.Sequential([nnscratch.Input((12, 1)), recurrent(8), Dense(1, activation="sigmoid")])
    model.compile(optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:384], y[:384], epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x[384:], y[384:], verbose=0, return_dict=True)["accuracy"] > 0.95


@pytest.mark.parametrize("make", [lambda: SimpleRNN(3, return_sequences=True, go_backwards=True,
                                                    kernel_regularizer="l2", recurrent_constraint="max_norm"),
                                  lambda: LSTM(3, recurrent_activation="hard_sigmoid", unit_forget_bias=False,
                                               recurrent_regularizer="l1", bias_initializer="ones"),
                                  lambda: GRU(3, go_backwards=True, bias_regularizer="l2", bias_initializer="ones"),
                                  lambda: GRU(3, reset_after=False, return_sequences=True, bias_initializer="ones")])
def test_configs_round_trip_and_a_saved_model_predicts_the_same(tmp_path, make):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == {**layer.get_config(), "name": clone.name}
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), layer, nnscratch.layers.Flatten(), Dense(2)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 4, 2)), rng.standard_normal((8, 2))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "rnn.npz")
    loaded = load_model(tmp_path / "rnn.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[0].get_config() == layer.get_config()


@pytest.mark.parametrize("make, match", [
    (lambda: SimpleRNN(3, return_state=True), "return_state=False is the only value"),
    (lambda: LSTM(3, dropout=1.0), r"dropout must be a number in \[0, 1\), got 1.0"),
    (lambda: GRU(3, dropout=-0.1), "dropout must be a number"),
    (lambda: LSTM(3, recurrent_dropout=1.5), r"recurrent_dropout must be a number in \[0, 1\), got 1.5"),
    (lambda: SimpleRNN(3, stateful=True), "stateful=False"),
    (lambda: SimpleRNN(0), "units must be a positive integer"),
    (lambda: SimpleRNN(3, activation="softmax"), "elementwise activation"),
    (lambda: LSTM(3, recurrent_activation="gelu"), "recurrent_activation='gelu'"),
    (lambda: LSTM(3, recurrent_initializer="eye"), "unknown initializer"),
    (lambda: GRU(3, return_state=True), "return_state=False"),
])
def test_unsupported_options_and_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reset_after_must_be_a_bool():
    with pytest.raises(TypeError, match="reset_after must be True or False, got 'no'"):
        GRU(3, reset_after="no")


def test_a_recurrent_layer_needs_sequences_at_build_time():
    with pytest.raises(ValueError, match=r"expects sequences of shape \(None, timesteps, features\), got "
                                         r"\(None, 8\)"):
        nnscratch.Sequential([nnscratch.Input((8,)), SimpleRNN(3)])
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), LSTM(3)])
    with pytest.raises(ValueError, match=r"expected input shape \(None, 4, 2\)"):
        model.predict(np.zeros((2, 5, 2)), verbose=0)
