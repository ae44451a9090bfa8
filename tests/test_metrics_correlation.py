"""PearsonCorrelation and ConcordanceCorrelation: the textbook formulas per sample, their mean, names, configs,
use in compile, and the errors."""

import numpy as np
import pytest

import nnscratch
from nnscratch import metrics
from nnscratch.layers import Dense, Input
from nnscratch.metrics import ConcordanceCorrelation, PearsonCorrelation, concordance_correlation, pearson_correlation


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(shape)
    return t, t + 0.7 * rng.standard_normal(shape)


def test_pearson_is_numpy_s_corrcoef_per_sample():
    t, p = _pair((5, 8))
    expected = [np.corrcoef(a, b)[0, 1] for a, b in zip(t, p)]
    np.testing.assert_allclose(pearson_correlation(t, p), expected, rtol=1e-12)


def test_concordance_is_lin_s_coefficient_per_sample():
    t, p = _pair((5, 8), seed=1)
    cov = ((t - t.mean(1, keepdims=True)) * (p - p.mean(1, keepdims=True))).mean(1)
    lin = 2 * cov / (t.var(1) + p.var(1) + (t.mean(1) - p.mean(1)) ** 2)
    np.testing.assert_allclose(concordance_correlation(t, p), lin, rtol=1e-6)
    assert np.all(concordance_correlation(t, p + 3.0) < pearson_correlation(t, p + 3.0))   # a shift costs concordance
    np.testing.assert_allclose(concordance_correlation(t, t), 1.0, rtol=1e-6)


def test_axes_other_than_the_last():
    t, p = _pair((3, 4, 6), seed=2)
    whole = pearson_correlation(t, p, axis=(1, 2))
    np.testing.assert_allclose(whole, [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(t, p)], rtol=1e-12)
    along_rows = pearson_correlation(t, p, axis=1)   # one r per column, averaged per sample
    expected = [np.mean([np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(6)]) for a, b in zip(t, p)]
    np.testing.assert_allclose(along_rows, expected, rtol=1e-12)


def test_the_metrics_are_weighted_running_means_that_go_up():
    t, p = _pair((6, 5), seed=3)
    metric = PearsonCorrelation()
    metric.update_state(t[:4], p[:4])
    metric.update_state(t[4:], p[4:], sample_weight=[2.0, 0.0])
    values = pearson_correlation(t, p)
    assert metric.result() == pytest.approx((values[:4].sum() + 2 * values[4]) / 6)
    assert metric.direction == "up" and ConcordanceCorrelation().direction == "up"
    assert metrics.get("concordance_correlation").name == "concordance_correlation"
    config = metrics.serialize(ConcordanceCorrelation(axis=[1, 2], name="ccc"))
    again = metrics.deserialize(config)
    assert type(again) is ConcordanceCorrelation and again.axis == [1, 2] and again.name == "ccc"


def test_a_constant_sample_has_no_pearson_correlation():
    values = pearson_correlation(np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]), np.array([[0.0, 1.0, 2.0]] * 2))
    assert np.isnan(values[0]) and values[1] == pytest.approx(1.0)


def test_compiled_as_metrics_of_a_regression():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ rng.standard_normal((3, 4))).astype(np.float32)
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([Input((3,)), Dense(4)])
    model.compile(optimizer="adam", loss="mse", metrics=["pearson_correlation", ConcordanceCorrelation()])
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert set(history.history) >= {"pearson_correlation", "concordance_correlation"}
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    predicted = model.predict(x, verbose=0)
    assert logs["pearson_correlation"] == pytest.approx(float(np.mean(pearson_correlation(y, predicted))), rel=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="includes the batch axis 0"):
        PearsonCorrelation(axis=0)
    with pytest.raises(ValueError, match="includes the batch axis 0"):
        pearson_correlation(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match=r"targets of shape \(2, 3\) and predictions of shape \(2, 4\) differ"):
        concordance_correlation(np.zeros((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="is not an axis"):
        pearson_correlation(np.zeros((2, 3)), np.ones((2, 3)), axis=2)
