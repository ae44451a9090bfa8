"""End to end: a small CNN learns scikit-learn's 8x8 digits to >= 97% held-out accuracy, on each backend."""

import os

import numpy as np
import pytest

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D

sklearn_datasets = pytest.importorskip("sklearn.datasets")
model_selection = pytest.importorskip("sklearn.model_selection")

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(
        JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1 turns the numba backend into slow pure Python")),
]


@pytest.fixture(scope="module")
def digits():
    """(x_train, x_test, y_train, y_test): images scaled to [0, 1], shape (N, 8, 8, 1); a stratified 20% test set."""
    data = sklearn_datasets.load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    return model_selection.train_test_split(x, data.target, test_size=0.2, random_state=0, stratify=data.target)


def small_cnn():
    return nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(16, 3, padding="same", activation="relu"),
        MaxPooling2D(),
        Conv2D(32, 3, padding="same", activation="relu"),
        MaxPooling2D(),
        Flatten(),
        Dense(64, activation="relu"),
        Dense(10, activation="softmax"),
    ])


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_cnn_reaches_97_percent_on_held_out_digits(digits, backend):
    x_train, x_test, y_train, y_test = digits
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    nnscratch.set_backend(backend)
    nnscratch.set_random_seed(0)
    model = small_cnn()
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=12, batch_size=32, seed=0, verbose=0)
    # then a few epochs at a tenth of the learning rate
    model.optimizer.learning_rate = 3e-4
    history_fine = model.fit(x_train, y_train, epochs=4, batch_size=32, seed=100, verbose=0)

    losses = history.history["loss"] + history_fine.history["loss"]
    assert losses[-1] < 0.25 * losses[0]
    assert history_fine.history["learning_rate"] == [pytest.approx(3e-4)] * 4

    test_loss, test_accuracy = model.evaluate(x_test, y_test)
    assert test_accuracy >= 0.97
    # the metric agrees with the predictions
    predicted = np.argmax(model.predict(x_test), axis=1)
    assert np.mean(predicted == y_test) == pytest.approx(test_accuracy)
    # and every class is learned, not just the frequent ones
    per_class = [np.mean(predicted[y_test == k] == k) for k in range(10)]
    assert min(per_class) >= 0.85


def test_one_hot_targets_and_validation_split_on_digits(digits):
    """The categorical (one-hot) route with a held-out validation split also learns."""
    x_train, _, y_train, _ = digits
    model = small_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, nnscratch.utils.to_categorical(y_train, 10), epochs=3, batch_size=32,
                        validation_split=0.2, seed=0, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.8
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]


def test_backends_agree_on_one_epoch_of_digits(digits):
    """Same seed, same data: the numpy and numba kernels give the same trained weights (to rounding)."""
    x_train, x_test, y_train, _ = digits
    n = 64 if JIT_DISABLED else 512  # without the JIT the numba twin is slow pure Python
    results = {}
    for backend in ("numpy", "numba"):
        nnscratch.set_backend(backend)
        nnscratch.set_random_seed(0)
        model = small_cnn()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x_train[:n], y_train[:n], epochs=1, batch_size=32, seed=0, verbose=0)
        results[backend] = (model.get_weights(), model.predict(x_test))
    for a, b in zip(results["numpy"][0], results["numba"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(results["numpy"][1], results["numba"][1], rtol=1e-3, atol=1e-5)
