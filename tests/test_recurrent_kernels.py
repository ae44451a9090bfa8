"""The recurrent layers' time loops: ``recurrent_fast`` (fused steps) against ``recurrent_reference`` (NumPy).

Over generated batch sizes, lengths, widths, dtypes and biases, both twins
give the same states and kept arrays forward and the same gradients
backward, up to float rounding (the compiled loops' float32 ``tanh`` and
``sigmoid`` are ``vector_math``'s, within 2.5 ulps of NumPy's), with the
recurrent kernel multiplied by packed panels and by BLAS, and the same bits
on one thread or two. Activations without a compiled loop take the
reference loop, bit for bit. The
layers' own gradient checks (tests/test_recurrent.py) run through the
default twin; here the layers are also checked to give the same outputs and
gradients with either twin. Runs with ``NUMBA_DISABLE_JIT=1`` too.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.kernels import recurrent_fast as fast
from nnscratch.kernels import recurrent_reference as reference
from nnscratch.layers import GRU, LSTM, SimpleRNN

try:
    from tests.kernel_helpers import module_value
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import module_value
    from strategies import float_dtypes, rng_seeds

RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def assert_close(actual, desired):
    assert actual.dtype == desired.dtype and actual.shape == desired.shape
    rtol = RTOL[desired.dtype]
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * float(np.abs(desired).max(initial=1.0)))


def sizes():
    """Batch (several chunks of ``CHUNK_ROWS`` rows and a partial one), steps, units."""
    return st.tuples(st.sampled_from([1, 2, 5, fast.CHUNK_ROWS, fast.CHUNK_ROWS + 3, 2 * fast.CHUNK_ROWS + 7]),
                     st.integers(1, 6), st.integers(1, 9))


# Both ways a thread multiplies its rows by U: the packed panels and BLAS (np.dot)
PRODUCTS = pytest.mark.parametrize("panels", [True, False], ids=["panels", "blas"])


def products_by(panels):
    return module_value(fast, "fixed_product_pays", lambda k, n: panels)


def _inputs(seed, n, steps, units, blocks, dtype):
    rng = np.random.default_rng(seed)
    projected = (rng.standard_normal((n, steps, blocks * units)) * 1.5).astype(dtype)
    recurrent = (rng.standard_normal((units, blocks * units)) / np.sqrt(units)).astype(dtype)
    grad_states = rng.standard_normal((n, steps, units)).astype(dtype)
    bias = rng.standard_normal(blocks * units).astype(dtype)
    return projected, recurrent, grad_states, bias


@PRODUCTS
@given(size=sizes(), seed=rng_seeds(), dtype=float_dtypes())
def test_lstm_twins_agree(panels, size, seed, dtype):
    projected, recurrent, grad_states, _ = _inputs(seed, *size, 4, dtype)
    expected = reference.lstm_forward(projected, recurrent, "tanh", "sigmoid")
    kept = expected[1:]   # the same kept arrays for both: the backward loops alone are compared
    with products_by(panels):
        got = fast.lstm_forward(projected, recurrent, "tanh", "sigmoid")
        grad_z = fast.lstm_backward(grad_states, recurrent, *kept, "tanh", "sigmoid")
    for a, b in zip(got, expected):
        assert_close(a, b)
    assert_close(grad_z, reference.lstm_backward(grad_states, recurrent, *kept, "tanh", "sigmoid"))


@PRODUCTS
@given(size=sizes(), seed=rng_seeds(), dtype=float_dtypes(), with_bias=st.booleans())
def test_gru_twins_agree(panels, size, seed, dtype, with_bias):
    projected, recurrent, grad_states, bias = _inputs(seed, *size, 3, dtype)
    bias = bias if with_bias else None
    expected = reference.gru_forward(projected, recurrent, bias, "tanh", "sigmoid")
    with products_by(panels):
        got = fast.gru_forward(projected, recurrent, bias, "tanh", "sigmoid")
        grads = fast.gru_backward(grad_states, recurrent, *expected, "tanh", "sigmoid")
    for a, b in zip(got, expected):
        assert_close(a, b)
    for a, b in zip(grads, reference.gru_backward(grad_states, recurrent, *expected, "tanh", "sigmoid")):
        assert_close(a, b)


@PRODUCTS
@given(size=sizes(), seed=rng_seeds(), dtype=float_dtypes())
def test_gru_reset_before_twins_agree(panels, size, seed, dtype):
    """reset_after=False: two products a step (h U_zr, then (r h) U_h), forward and backward."""
    projected, recurrent, grad_states, _ = _inputs(seed, *size, 3, dtype)
    expected = reference.gru_reset_before_forward(projected, recurrent, "tanh", "sigmoid")
    with products_by(panels):
        got = fast.gru_reset_before_forward(projected, recurrent, "tanh", "sigmoid")
        grad_z = fast.gru_reset_before_backward(grad_states, recurrent, *expected[:4], "tanh", "sigmoid")
    for a, b in zip(got, expected):
        assert_close(a, b)
    assert_close(grad_z, reference.gru_reset_before_backward(grad_states, recurrent, *expected[:4], "tanh",
                                                             "sigmoid"))


@PRODUCTS
@given(size=sizes(), seed=rng_seeds(), dtype=float_dtypes(),
       activation=st.sampled_from(["tanh", "relu", "sigmoid", "elu"]))
def test_simple_rnn_twins_agree(panels, size, seed, dtype, activation):
    """tanh and relu by the compiled loop, the others by the reference loop (bit for bit)."""
    projected, recurrent, grad_states, _ = _inputs(seed, *size, 1, dtype)
    states = reference.simple_rnn_forward(projected, recurrent, activation)
    with products_by(panels):
        got = fast.simple_rnn_forward(projected, recurrent, activation)
        grad_z = fast.simple_rnn_backward(grad_states, states, recurrent, activation)
    expected = reference.simple_rnn_backward(grad_states, states, recurrent, activation)
    if activation in fast.SIMPLE_RNN_ACTIVATIONS:
        assert_close(got, states)
        assert_close(grad_z, expected)
    else:
        np.testing.assert_array_equal(got, states)
        np.testing.assert_array_equal(grad_z, expected)


@pytest.mark.parametrize("twin", [reference, fast], ids=["reference", "fast"])
@given(size=sizes(), seed=rng_seeds(), dtype=float_dtypes())
def test_inference_keeps_nothing_and_gives_the_same_states(twin, size, seed, dtype):
    """``keep=False`` (inference): the kept arrays are None, the states the bits of ``keep=True``."""
    projected, recurrent, _, bias = _inputs(seed, *size, 4, dtype)
    units = size[2]
    lstm = twin.lstm_forward(projected, recurrent, "tanh", "sigmoid", keep=False)
    assert lstm[1:] == (None, None, None)
    assert lstm[0].tobytes() == twin.lstm_forward(projected, recurrent, "tanh", "sigmoid")[0].tobytes()
    three = projected[..., :3 * units], recurrent[:, :3 * units], bias[:3 * units]
    gru = twin.gru_forward(*three, "tanh", "sigmoid", keep=False)
    assert gru[1:] == (None, None, None, None)
    assert gru[0].tobytes() == twin.gru_forward(*three, "tanh", "sigmoid")[0].tobytes()
    before = twin.gru_reset_before_forward(*three[:2], "tanh", "sigmoid", keep=False)
    assert before[1:] == (None, None, None, None)
    assert before[0].tobytes() == twin.gru_reset_before_forward(*three[:2], "tanh", "sigmoid")[0].tobytes()


def test_a_layer_keeps_its_arrays_only_when_training():
    x = np.random.default_rng(5).standard_normal((3, 6, 4)).astype(np.float32)
    for layer in (LSTM(5), GRU(4), GRU(3, reset_after=False)):
        layer.build((6, 4))
        inferred = layer.forward(x, training=False)
        assert layer._kept is None
        trained = layer.forward(x, training=True)
        assert all(array.shape[:2] == (3, 6) for array in layer._kept)
        np.testing.assert_array_equal(inferred, trained)


def test_the_same_bits_on_any_number_of_threads():
    """Chunks of rows whose size depends on the shapes only: one thread or two, the same numbers."""
    projected, recurrent, grad_states, bias = _inputs(9, 2 * fast.CHUNK_ROWS + 5, 7, 6, 4, np.float32)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            lstm = fast.lstm_forward(projected, recurrent, "tanh", "sigmoid")
            gru = fast.gru_forward(projected[..., :18], recurrent[:, :18], bias[:18], "tanh", "sigmoid")
            simple = fast.simple_rnn_forward(projected[..., :6], recurrent[:, :6], "tanh")
            before = fast.gru_reset_before_forward(projected[..., :18], recurrent[:, :18], "tanh", "sigmoid")
            results.append([*before, fast.gru_reset_before_backward(grad_states, recurrent[:, :18], *before[:4],
                                                                    "tanh", "sigmoid")])
            results[-1] += [*lstm, fast.lstm_backward(grad_states, recurrent, *lstm[1:], "tanh", "sigmoid"),
                            *gru, *fast.gru_backward(grad_states, recurrent[:, :18], *gru, "tanh", "sigmoid"),
                            simple, fast.simple_rnn_backward(grad_states, simple, recurrent[:, :6], "tanh")]
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_the_first_step_starts_from_zero_state_and_cell():
    """Step 1 is the gates of ``projected`` alone: ``c_1 = i c~``, ``h_1 = o tanh(c_1)``; GRU ``h_1 = (1 - u) h~``."""
    projected, recurrent, _, bias = _inputs(0, 3, 1, 4, 4, np.float64)
    states, gates, cells, _ = fast.lstm_forward(projected, recurrent, "tanh", "sigmoid")
    sigmoid = 1 / (1 + np.exp(-projected[:, 0]))
    i, o, candidate = sigmoid[:, :4], sigmoid[:, 12:], np.tanh(projected[:, 0, 8:12])
    np.testing.assert_allclose(cells[:, 0], i * candidate, rtol=1e-14)
    np.testing.assert_allclose(states[:, 0], o * np.tanh(i * candidate), rtol=1e-14)
    states, update, reset, candidate, q_h = fast.gru_forward(projected[..., :12], recurrent[:, :12], bias[:12],
                                                             "tanh", "sigmoid")
    np.testing.assert_array_equal(q_h[:, 0], np.broadcast_to(bias[8:12], (3, 4)))   # h_0 U = 0
    np.testing.assert_allclose(states[:, 0], (1 - update[:, 0]) * candidate[:, 0], rtol=1e-14)


@pytest.mark.parametrize("activation, recurrent_activation", [("relu", "sigmoid"), ("tanh", "hard_sigmoid"),
                                                              ("sigmoid", "sigmoid")])
def test_other_activations_take_the_reference_loop(activation, recurrent_activation):
    assert not fast.uses_fused_steps(activation, recurrent_activation, np.float32)
    projected, recurrent, grad_states, bias = _inputs(3, 2, 4, 3, 4, np.float32)
    forward = fast.lstm_forward(projected, recurrent, activation, recurrent_activation)
    for a, b in zip(forward, reference.lstm_forward(projected, recurrent, activation, recurrent_activation)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        fast.lstm_backward(grad_states, recurrent, *forward[1:], activation, recurrent_activation),
        reference.lstm_backward(grad_states, recurrent, *forward[1:], activation, recurrent_activation))
    gru = fast.gru_forward(projected[..., :9], recurrent[:, :9], bias[:9], activation, recurrent_activation)
    for a, b in zip(gru, reference.gru_forward(projected[..., :9], recurrent[:, :9], bias[:9], activation,
                                               recurrent_activation)):
        np.testing.assert_array_equal(a, b)
    three = projected[..., :9], recurrent[:, :9]
    before = fast.gru_reset_before_forward(*three, activation, recurrent_activation)
    for a, b in zip(before, reference.gru_reset_before_forward(*three, activation, recurrent_activation)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        fast.gru_reset_before_backward(grad_states, three[1], *before[:4], activation, recurrent_activation),
        reference.gru_reset_before_backward(grad_states, three[1], *before[:4], activation, recurrent_activation))


def test_the_fused_steps_are_for_tanh_and_sigmoid_in_float():
    assert fast.uses_fused_steps("tanh", "sigmoid", np.float32)
    assert fast.uses_fused_steps("tanh", "sigmoid", np.float64)
    assert not fast.uses_fused_steps("tanh", "sigmoid", np.float16)


def test_inputs_that_are_views_or_another_dtype():
    """A reversed sequence (go_backwards) and a float64 kernel with float32 inputs, as a layer may pass them."""
    projected, recurrent, grad_states, _ = _inputs(4, 3, 5, 4, 4, np.float32)
    view = projected[:, ::-1]
    expected = reference.lstm_forward(np.ascontiguousarray(view), recurrent, "tanh", "sigmoid")
    for a, b in zip(fast.lstm_forward(view, recurrent.astype(np.float64), "tanh", "sigmoid"), expected):
        assert a.dtype == np.float32
        assert_close(a, b)


@settings(max_examples=10)
@pytest.mark.parametrize("make", [lambda: LSTM(5, return_sequences=True), lambda: GRU(4, return_sequences=True),
                                  lambda: SimpleRNN(3, return_sequences=True), lambda: LSTM(3, go_backwards=True),
                                  lambda: GRU(3, use_bias=False), lambda: GRU(3, reset_after=False)])
@given(seed=rng_seeds(), dtype=float_dtypes())
def test_a_layer_gives_the_same_outputs_and_gradients_with_either_twin(make, seed, dtype):
    x = np.random.default_rng(seed).standard_normal((3, 6, 4)).astype(dtype)
    results = {}
    previous_backend, previous_floatx = kernels.get_backend(), nnscratch.floatx()
    try:
        nnscratch.set_floatx(np.dtype(dtype).name)
        for name in ("numpy", "numba"):
            kernels.set_backend(name)
            nnscratch.set_random_seed(seed % 1000)
            layer = make()
            layer.build((6, 4))
            y = layer.forward(x, training=True)
            grad_x = layer.backward(np.ones_like(y) * np.linspace(-1, 1, y.shape[-1], dtype=dtype))
            results[name] = [y, grad_x] + [p.grad.copy() for p in layer.params.values()]
    finally:
        kernels.set_backend(previous_backend)
        nnscratch.set_floatx(previous_floatx)
    for a, b in zip(results["numba"], results["numpy"]):
        assert_close(a, b)
