"""Models with several inputs: the graph, the data (a list or a dict by name), gradients, saving, errors.

Keras 3.15 itself was compared outside the suite (docs/keras.md): the same
layer order, predictions, fit and evaluate logs and weights.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_model
from nnscratch.layers import LSTM, Add, Concatenate, Dense, Embedding, Multiply
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
    from tests.strategies import padded_indices
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
    from strategies import padded_indices


def two_inputs(a_features=4, b_features=3, seed=0):
    """a -> Dense(5, tanh) and b -> Dense(2), concatenated, -> Dense(3, softmax)."""
    nnscratch.set_random_seed(seed)
    a, b = nnscratch.Input((a_features,), name="a"), nnscratch.Input((b_features,), name="b")
    joined = Concatenate()([Dense(5, activation="tanh", name="da")(a), Dense(2, name="db")(b)])
    return nnscratch.Model([a, b], Dense(3, activation="softmax", name="head")(joined))


def data(n=48, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, 4)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)], \
        rng.integers(0, 3, n)


def test_each_branch_reads_its_own_input_and_the_output_joins_them():
    model = two_inputs()
    (xa, xb), _ = data()
    assert model.input_shape == [(None, 4), (None, 3)] and [layer.name for layer in model.input_layers] == ["a", "b"]
    da, db, head = (model.get_layer(name) for name in ("da", "db", "head"))
    expected = head(np.concatenate([da(xa), db(xb)], axis=1))
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model([xa, xb]), expected, rtol=1e-6)


def test_the_data_may_be_a_list_a_tuple_or_a_dict_by_input_name_and_a_seeded_fit_is_bit_identical():
    x, y = data()
    histories, weights = [], []
    for given_x in (x, tuple(x), {"b": x[1], "a": x[0]}):
        model = two_inputs()
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        histories.append(model.fit(given_x, y, epochs=2, batch_size=8, verbose=0, seed=3).history)
        weights.append(model.get_weights())
        np.testing.assert_array_equal(model.predict(given_x, verbose=0), model.predict(x, verbose=0))
    assert histories[0] == histories[1] == histories[2]
    for other in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], other))


@given(n=batch_sizes(), a=st.integers(1, 4), b=st.integers(1, 4), reversed_order=st.booleans(), seed=rng_seeds())
def test_the_gradients_of_every_input_and_weight_check_out(n, a, b, reversed_order, seed):
    """Input a is read twice (a Dense and a Multiply): its gradient is the sum of both readers'."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        nnscratch.set_random_seed(seed)
        first, second = nnscratch.Input((a,)), nnscratch.Input((b,))
        mixed = Multiply()([Dense(a, activation="tanh")(second), first])
        joined = Add()([Dense(3)(first), Dense(3)(mixed)])
        inputs = [second, first] if reversed_order else [first, second]
        model = nnscratch.Model(inputs, Dense(2, activation="softmax")(joined))
        x = [rng.standard_normal((n, a)), rng.standard_normal((n, b))]
        report = check_model(model, x[::-1] if reversed_order else x, seed=seed % 1000, h=STEP)
    assert [check.name for check in report.checks][:2] == ["input_0", "input_1"]
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_validation_split_and_sample_weights_cut_every_input_alike():
    x, y = data(n=40)
    weights = np.random.default_rng(2).random(40)
    split = two_inputs()
    split.compile("sgd", "sparse_categorical_crossentropy")
    by_split = split.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False, validation_split=0.25,
                         sample_weight=weights).history
    given = two_inputs()
    given.compile("sgd", "sparse_categorical_crossentropy")
    by_hand = given.fit([part[:30] for part in x], y[:30], epochs=2, batch_size=8, verbose=0, shuffle=False,
                        sample_weight=weights[:30],
                        validation_data=([part[30:] for part in x], y[30:], weights[30:])).history
    assert by_split == by_hand
    unweighted = two_inputs()
    unweighted.compile("sgd", "sparse_categorical_crossentropy")
    assert unweighted.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False).history["loss"] != \
        by_split["loss"][:1]


class Batches:
    """A Keras-style Sequence that yields ``([a, b], y)`` batches."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return len(self.y) // self.size

    def __getitem__(self, i):
        part = slice(i * self.size, (i + 1) * self.size)
        return [self.x[0][part], self.x[1][part]], self.y[part]


def test_a_sequence_of_batches_may_yield_lists_of_inputs():
    x, y = data(n=32)
    histories = []
    for source in (dict(x=Batches(x, y, 8)), dict(x=x, y=y, batch_size=8)):
        model = two_inputs()
        model.compile("adam", "sparse_categorical_crossentropy")
        histories.append(model.fit(**source, epochs=2, verbose=0, shuffle=False).history)
        assert model.evaluate(Batches(x, y, 8), verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    assert histories[0] == histories[1]


def test_a_saved_model_keeps_its_inputs_names_and_order_and_the_summary_shows_them(tmp_path):
    x, y = data()
    model = two_inputs()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "two.npz")
    loaded = load_model(tmp_path / "two.npz")
    assert [layer.name for layer in loaded.input_layers] == ["a", "b"] and loaded.input_shape == model.input_shape
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.fit(x, y, epochs=1, verbose=0, seed=1).history == model.fit(x, y, epochs=1, verbose=0,
                                                                              seed=1).history
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "a (InputLayer)" in text and "b (InputLayer)" in text
    assert [line.split()[-1] for line in text.splitlines() if line.startswith(("da ", "db "))] == ["a[0][0]",
                                                                                                   "b[0][0]"]


def test_a_padded_text_input_beside_plain_features_trains():
    rng = np.random.default_rng(5)
    words, features = padded_indices(rng, n=64), rng.standard_normal((64, 2)).astype(np.float32)
    y = (features[:, 0] > 0).astype(int)
    nnscratch.set_random_seed(0)
    text, side = nnscratch.Input((6,), name="words"), nnscratch.Input((2,), name="features")
    joined = Concatenate()([LSTM(4)(Embedding(9, 3, mask_zero=True)(text)), Dense(4, activation="relu")(side)])
    model = nnscratch.Model([text, side], Dense(2, activation="softmax")(joined))
    model.compile(nnscratch.optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit({"words": words, "features": features}, y, epochs=20, batch_size=16, verbose=0,
                        seed=0).history
    assert history["accuracy"][-1] > 0.9 > history["accuracy"][0]


def test_a_model_with_two_inputs_is_called_on_two_tensors_inside_another_model():
    inner = two_inputs()
    a, b = nnscratch.Input((4,)), nnscratch.Input((3,))
    outer = nnscratch.Model([a, b], Dense(1, name="after")(inner([a, b])))
    assert outer.layers[:-1] == inner.layers
    x, _ = data()
    np.testing.assert_allclose(outer.predict(x, verbose=0), outer.get_layer("after")(inner.predict(x, verbose=0)),
                               rtol=1e-6)


def test_bad_inputs_name_what_was_expected():
    model = two_inputs()
    model.compile("adam", "sparse_categorical_crossentropy")
    (xa, xb), y = data()
    with pytest.raises(ValueError, match=r"has 2 inputs \['a', 'b'\]: x must be a list of 2 arrays .*got ndarray"):
        model.fit(xa, y, verbose=0)
    with pytest.raises(ValueError, match="got a list of 3"):
        model.predict([xa, xb, xb], verbose=0)
    with pytest.raises(ValueError, match=r"its keys must be the names of the model's inputs \['a', 'b'\]"):
        model.predict({"a": xa, "c": xb}, verbose=0)
    with pytest.raises(ValueError, match=r"expected input 'b' of shape \(None, 3\), got \(48, 4\)"):
        model.predict([xa, xa], verbose=0)
    with pytest.raises(ValueError, match="must have the same number of samples"):
        model.predict([xa, xb[:10]], verbose=0)
    with pytest.raises(ValueError, match="x and y must have the same number of samples, got 48 and 10"):
        model.fit([xa, xb], y[:10], verbose=0)
    bad = xb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="x for input 'b' contains NaN"):
        model.predict([xa, bad], verbose=0)
    a = nnscratch.Input((4,))
    with pytest.raises(TypeError, match="has 2 inputs: call it on a list of tensors"):
        model(a)
    with pytest.raises(ValueError, match=r"input 'b' of model .* has shape \(None, 3\), got .* \(None, 4\)"):
        model([a, a])
    with pytest.raises(ValueError, match="an input is given twice"):
        nnscratch.Model([a, a], Dense(2)(a))
    with pytest.raises(ValueError, match="branches or merges"):
        nnscratch.Sequential([model])
    with pytest.raises(ValueError, match=r"expected the input shapes \[\(None, 4\), \(None, 3\)\]"):
        model.build((4,))


def test_a_model_with_one_input_takes_a_dict_by_its_name_too():
    inputs = nnscratch.Input((3,), name="features")
    model = nnscratch.Model(inputs, Dense(2)(inputs))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict({"features": x}, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"its keys must be the names of the model's inputs \['features'\]"):
        model.predict({"other": x}, verbose=0)
