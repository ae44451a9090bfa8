"""Reproducibility: set_random_seed + fit(seed=...) give bit-identical runs; NumPy's global state is untouched."""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = (rng.random((n, 8, 8, 1)) * 0.3 + y[:, None, None, None] / 10.0).astype("float32")
    return x, y


def build():
    model = nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(4, 3, padding="same", activation="relu"), BatchNormalization(), MaxPooling2D(), Dropout(0.3),
        Flatten(), Dense(16, activation="relu"), Dropout(0.5), Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(library_seed, fit_seed, epochs=3, **fit_kwargs):
    nnscratch.set_random_seed(library_seed)
    model = build()
    x, y = data()
    history = model.fit(x, y, epochs=epochs, batch_size=16, shuffle=True, seed=fit_seed, verbose=0,
                        **fit_kwargs)
    return model.get_weights(), history.history


def same(weights_a, weights_b):
    return len(weights_a) == len(weights_b) and all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))


def test_same_seeds_give_bit_identical_weights_and_history():
    weights_a, history_a = run(42, 7)
    weights_b, history_b = run(42, 7)
    assert same(weights_a, weights_b)
    assert history_a == history_b


def test_same_library_seed_without_a_fit_seed_is_reproducible():
    weights_a, history_a = run(42, None)
    weights_b, history_b = run(42, None)
    assert same(weights_a, weights_b)
    assert history_a == history_b


def test_different_library_seed_gives_different_initial_and_final_weights():
    nnscratch.set_random_seed(1)
    first = build().get_weights()
    nnscratch.set_random_seed(2)
    second = build().get_weights()
    assert not np.array_equal(first[0], second[0])
    assert not same(run(1, 7)[0], run(2, 7)[0])


def test_different_fit_seed_gives_different_weights():
    """Same initial weights, but other shuffles and dropout masks."""
    weights_a, _ = run(42, 7)
    weights_b, _ = run(42, 8)
    assert not same(weights_a, weights_b)


def test_fit_seed_alone_changes_dropout_masks():
    """Without shuffling, the fit seed still reaches Dropout."""
    nnscratch.set_random_seed(3)
    model_a = build()
    nnscratch.set_random_seed(3)
    model_b = build()
    x, y = data()
    model_a.fit(x, y, epochs=1, batch_size=16, shuffle=False, seed=1, verbose=0)
    model_b.fit(x, y, epochs=1, batch_size=16, shuffle=False, seed=2, verbose=0)
    assert not same(model_a.get_weights(), model_b.get_weights())


def test_fit_seed_overrides_earlier_draws():
    """fit(seed=s) fixes shuffling and dropout whatever was drawn before it."""
    nnscratch.set_random_seed(5)
    model_a = build()
    nnscratch.set_random_seed(5)
    model_b = build()
    x, y = data()
    model_b.predict(x)
    model_b.layers[3].generator.random(10)             # disturb dropout's stream before fitting
    model_a.fit(x, y, epochs=2, batch_size=16, seed=11, verbose=0)
    model_b.fit(x, y, epochs=2, batch_size=16, seed=11, verbose=0)
    assert same(model_a.get_weights(), model_b.get_weights())


def test_reproducible_with_validation_split():
    weights_a, history_a = run(42, 3, validation_split=0.25)
    weights_b, history_b = run(42, 3, validation_split=0.25)
    assert same(weights_a, weights_b)
    assert history_a["val_loss"] == history_b["val_loss"]


def test_library_never_touches_numpy_global_random_state():
    np.random.seed(2024)
    state_before = np.random.get_state()
    nnscratch.set_random_seed(9)
    model = build()
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.2, shuffle=True, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, seed=4, verbose=0)
    model.evaluate(x, y)
    model.predict(x)
    nnscratch.utils.to_categorical(y, 10)
    state_after = np.random.get_state()
    assert state_before[0] == state_after[0]
    np.testing.assert_array_equal(state_before[1], state_after[1])
    assert state_before[2:] == state_after[2:]


def test_numpy_global_seed_does_not_affect_the_library():
    results = []
    for global_seed in (0, 1):
        np.random.seed(global_seed)
        results.append(run(42, 7, epochs=1)[0])
    assert same(*results)


@pytest.mark.parametrize("seed", [-1, 1.5, "1", True])
def test_set_random_seed_rejects_non_integers(seed):
    with pytest.raises(TypeError, match="seed"):
        nnscratch.set_random_seed(seed)


def test_fit_rejects_a_bad_seed():
    model = build()
    x, y = data(16)
    with pytest.raises(TypeError, match="seed"):
        model.fit(x, y, seed=-3, verbose=0)


def test_dropout_layer_seed_fixes_its_masks():
    x = np.ones((4, 50), dtype="float32")
    masks = []
    for _ in range(2):
        layer = Dropout(0.5, seed=123)
        layer.build((50,))
        masks.append(layer.forward(x, training=True))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert set(np.unique(masks[0])) == {0.0, 2.0}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_reproducible_on_each_backend(backend):
    nnscratch.set_backend(backend)
    weights_a, _ = run(42, 7, epochs=1)
    weights_b, _ = run(42, 7, epochs=1)
    assert same(weights_a, weights_b)
