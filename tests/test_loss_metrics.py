"""Losses as metrics (``metrics=["mape", "kl_divergence", ...]``), as Keras's keras.metrics.get resolves them."""

import numpy as np
import pytest

import nnscratch
from nnscratch import metrics
from nnscratch.layers import Dense

RNG = np.random.default_rng(7)
T = RNG.uniform(0.1, 1.0, (6, 3))
P = RNG.uniform(0.1, 1.0, (6, 3))

# independent NumPy formulas, one value per sample
EXPECTED = {
    "kl_divergence": (T * np.log(T / P)).sum(axis=1),
    "mape": 100 * (np.abs(T - P) / np.abs(T)).mean(axis=1),
    "msle": ((np.log1p(T) - np.log1p(P)) ** 2).mean(axis=1),
    "poisson": (P - T * np.log(P + 1e-7)).mean(axis=1),
    "squared_hinge": (np.maximum(1 - T * P, 0) ** 2).mean(axis=1),
    "cosine_similarity": (T * P).sum(axis=1) / np.linalg.norm(T, axis=1) / np.linalg.norm(P, axis=1),
    "log_cosh_error": np.log(np.cosh(P - T)).mean(axis=1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_values_are_the_losses_per_sample_values(name):
    np.testing.assert_allclose(metrics.get(name)(T, P), EXPECTED[name], rtol=1e-6)


@pytest.mark.parametrize("name, cls, logged", [
    ("KLDivergence", metrics.KLDivergence, "kl_divergence"), ("MAPE", metrics.MeanAbsolutePercentageError,
                                                              "mean_absolute_percentage_error"),
    ("msle", metrics.MeanSquaredLogarithmicError, "mean_squared_logarithmic_error"),
    ("poisson", metrics.Poisson, "poisson"), ("hinge", metrics.Hinge, "hinge"),
    ("squared_hinge", metrics.SquaredHinge, "squared_hinge"),
    ("categorical_hinge", metrics.CategoricalHinge, "categorical_hinge"),
    ("cosine_similarity", metrics.CosineSimilarity, "cosine_similarity"), ("LogCoshError", metrics.LogCoshError,
                                                                           "logcosh")])
def test_names_and_classes_agree(name, cls, logged):
    metric = cls()
    assert metric.name == logged
    np.testing.assert_array_equal(metric(T, P), metrics.get(name)(T, P))
    assert metric.direction == ("up" if cls is metrics.CosineSimilarity else "down")
    restored = metrics.get(metrics.serialize(metric))
    assert type(restored) is cls and restored.name == logged


def test_cosine_similarity_goes_up_as_the_prediction_nears_the_target():
    far, near = metrics.get("cosine_similarity")(T, -T), metrics.get("cosine_similarity")(T, T)
    np.testing.assert_allclose(far, -1.0)
    np.testing.assert_allclose(near, 1.0)


def test_hinge_metric_reads_zero_one_targets_as_signs():
    t = np.array([[0.0, 1.0]])
    p = np.array([[-0.5, 0.25]])
    np.testing.assert_allclose(metrics.get("hinge")(t, p), [(0.5 + 0.75) / 2])


def test_fit_logs_a_loss_metric_beside_the_trained_loss():
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(3, activation="softplus")])
    model.compile(optimizer="sgd", loss="mse", metrics=["msle", "poisson"])
    x = T.astype(np.float32)
    history = model.fit(x, T, epochs=1, batch_size=6, verbose=0, validation_data=(x, T))
    out = model.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(history.history["val_msle"][0],
                               ((np.log1p(T) - np.log1p(out)) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(history.history["val_poisson"][0], (out - T * np.log(out + 1e-7)).mean(), rtol=1e-5)
    assert {"msle", "poisson", "val_msle", "val_poisson"} <= set(history.history)


def test_a_loss_metric_by_name_keeps_its_direction_for_the_callbacks():
    """As Keras: EarlyStopping(mode="auto") maximises a cosine similarity given by name, minimises the others."""
    from nnscratch.callbacks import EarlyStopping

    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(3)])
    model.compile(loss="mse", metrics=["cosine_similarity", "msle"])
    modes = []
    for monitor in ("val_cosine_similarity", "val_msle"):
        callback = EarlyStopping(monitor=monitor)
        callback.set_model(model)
        callback.on_train_begin()
        modes.append(callback.mode)
    assert modes == ["max", "min"]
