"""The wrapper layers Bidirectional and TimeDistributed: formulas written here, gradient checks, configs, errors.

(Against Keras 3.15, once, outside the suite: Bidirectional over SimpleRNN,
LSTM and GRU with every merge mode, with and without return_sequences, and
with a GRU as backward_layer; TimeDistributed(Conv2D) -> TimeDistributed(
Flatten) -> LSTM and TimeDistributed(Dense): predictions to 3e-7, the weights
after an SGD step to 9e-8, the same layer names.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import (GRU, LSTM, BatchNormalization, Bidirectional, Conv2D, Dense, Flatten, SimpleRNN,
                              TimeDistributed, add)
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds

RECURRENT = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


def randomise(layer, rng, scale=0.7):
    layer.set_weights([scale * rng.standard_normal(p.shape) for p in layer.params.values()])


# ------------------------------------------------------------------ Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_merges_a_forward_and_a_time_reversed_pass(float64, merge_mode, return_sequences):
    rng = np.random.default_rng(0)
    layer = Bidirectional(LSTM(3, return_sequences=return_sequences, name="memory"), merge_mode=merge_mode)
    layer.build((5, 2))
    randomise(layer, rng)
    assert layer.forward_layer.name == "forward_memory" and layer.backward_layer.name == "backward_memory"
    assert list(layer.params) == ["forward_kernel", "forward_recurrent_kernel", "forward_bias", "backward_kernel",
                                  "backward_recurrent_kernel", "backward_bias"]
    x = rng.standard_normal((2, 5, 2))
    forward = LSTM(3, return_sequences=True)
    forward.build((5, 2))
    forward.set_weights(layer.get_weights()[:3])
    backward = LSTM(3, return_sequences=True)
    backward.build((5, 2))
    backward.set_weights(layer.get_weights()[3:])
    f, b = forward.forward(x), backward.forward(x[:, ::-1])[:, ::-1]        # b_t: the state after reading x_T..x_t
    if not return_sequences:
        f, b = f[:, -1], b[:, 0]
    expected = {"concat": np.concatenate([f, b], axis=-1), "sum": f + b, "ave": (f + b) / 2, "mul": f * b}
    np.testing.assert_allclose(layer.forward(x), expected[merge_mode], rtol=1e-12, atol=1e-12)
    units = 6 if merge_mode == "concat" else 3
    assert layer.output_shape == ((None, 5, units) if return_sequences else (None, units))


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(sorted(RECURRENT)), merge_mode=st.sampled_from(["concat", "sum", "ave", "mul"]),
       return_sequences=st.booleans(), n=st.integers(1, 3), steps=st.integers(1, 4), features=st.integers(1, 3),
       units=st.integers(1, 3), seed=rng_seeds())
def test_bidirectional_gradients(kind, merge_mode, return_sequences, n, steps, features, units, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Bidirectional(RECURRENT[kind](units, return_sequences=return_sequences), merge_mode=merge_mode)
        layer.build((steps, features))
    randomise(layer, rng)
    report = check_layer(layer, x=rng.standard_normal((n, steps, features)), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_bidirectional_with_its_own_backward_layer_trains_saves_and_freezes(tmp_path):
    nnscratch.set_random_seed(1)
    wrapper = Bidirectional(LSTM(3, return_sequences=True, kernel_regularizer="l2"),
                            backward_layer=GRU(3, return_sequences=True, go_backwards=True))
    model = nnscratch.Sequential([nnscratch.Input((4, 2)), wrapper, Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 4, 2)), rng.standard_normal((16, 4, 1))
    model.fit(x, y, epochs=2, verbose=0)
    assert set(wrapper.weight_regularizers()) == {"forward_kernel"} and model.losses
    model.save(tmp_path / "bi.npz")
    loaded = load_model(tmp_path / "bi.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.layers[0].backward_layer, GRU) and loaded.layers[0].get_config() == wrapper.get_config()
    wrapper.trainable = False
    before = wrapper.get_weights()
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    for old, new in zip(before, wrapper.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("make, error, match", [
    (lambda: Bidirectional(Dense(3)), TypeError, "wraps a recurrent layer"),
    (lambda: Bidirectional(LSTM(3), merge_mode=None), ValueError, "merge_mode must be one of"),
    (lambda: Bidirectional(LSTM(3), backward_layer=LSTM(3)), ValueError, "different go_backwards"),
    (lambda: Bidirectional(LSTM(3), backward_layer=LSTM(4, go_backwards=True)), ValueError, "the same units"),
    (lambda: Bidirectional(LSTM(3, go_backwards=True)), ValueError, "different go_backwards"),
])
def test_bidirectional_refuses_what_it_cannot_merge(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------------ TimeDistributed
def test_time_distributed_applies_one_layer_to_every_step():
    rng = np.random.default_rng(3)
    inner = Conv2D(2, 3, activation="tanh")
    layer = TimeDistributed(inner)
    layer.build((4, 6, 6, 1))
    assert layer.output_shape == (None, 4, 4, 4, 2) and layer.params is inner.params
    x = rng.standard_normal((3, 4, 6, 6, 1)).astype(np.float32)
    y = layer.forward(x)
    for t in range(4):
        np.testing.assert_allclose(y[:, t], inner.forward(np.ascontiguousarray(x[:, t])), rtol=1e-5, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), steps=st.integers(1, 3), features=st.integers(1, 4), units=st.integers(1, 3),
       seed=rng_seeds())
def test_time_distributed_gradients_sum_over_the_steps(n, steps, features, units, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = TimeDistributed(Dense(units, activation="tanh"))
        layer.build((steps, 2, features))                    # each step is (2, features): a Dense on a sequence
    randomise(layer, rng)
    report = check_layer(layer, x=rng.standard_normal((n, steps, 2, features)), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_a_batch_norm_inside_normalises_over_all_steps_and_saving_keeps_the_wrapper(tmp_path):
    rng = np.random.default_rng(4)
    model = nnscratch.Sequential([nnscratch.Input((5, 3)), TimeDistributed(BatchNormalization()),
                                  TimeDistributed(Flatten()), Dense(2)])
    x = 3 + 2 * rng.standard_normal((8, 5, 3)).astype(np.float32)
    normalised = model.layers[0].forward(x, training=True)
    np.testing.assert_allclose(normalised.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.reshape(-1, 3).std(axis=0), 1, atol=1e-2)
    assert model.layers[0].weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    model.compile("adam", "mse")
    model.fit(x, rng.standard_normal((8, 5, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "td.npz")
    loaded = load_model(tmp_path / "td.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.layers[0].layer, BatchNormalization)


def test_time_distributed_refuses_a_merge_layer_and_inputs_without_steps():
    a = nnscratch.Input((3,))
    with pytest.raises(TypeError, match="single-input layer"):
        TimeDistributed(add)
    with pytest.raises(TypeError, match="single-input layer"):
        TimeDistributed(nnscratch.layers.Add())
    with pytest.raises(ValueError, match=r"expects inputs \(None, timesteps, \.\.\.\) of at least 3 axes"):
        TimeDistributed(Dense(2))(a)
