"""The metrics: names as given, and which accuracy ``"accuracy"`` means (from the shapes, as Keras 3)."""

import numpy as np
import pytest

import nnscratch
from nnscratch import metrics
from nnscratch.layers import Dense


def test_a_metric_keeps_the_name_it_was_given():
    for name in ("accuracy", "acc", "Accuracy", "mae", "MAE", "mean_absolute_error", "binary_accuracy"):
        assert metrics.get(name).name == name
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.get("f1")


def test_accuracy_of_one_output_unit_is_binary():
    y_true = np.array([[1.0], [0.0], [1.0], [0.0]])
    y_pred = np.array([[0.9], [0.6], [0.2], [0.1]])
    np.testing.assert_array_equal(metrics.accuracy(y_true, y_pred), [1, 0, 0, 1])
    # an argmax over one column would call every sample right
    np.testing.assert_array_equal(metrics.categorical_accuracy(y_true, y_pred), [1, 1, 1, 1])


def test_accuracy_of_integer_labels_is_sparse_and_of_one_hot_rows_categorical():
    y_pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    np.testing.assert_array_equal(metrics.accuracy(np.array([1, 2]), y_pred), [1, 0])          # (N,) labels
    np.testing.assert_array_equal(metrics.accuracy(np.array([[1], [0]]), y_pred), [1, 1])      # (N, 1) labels
    np.testing.assert_array_equal(metrics.accuracy(np.array([[0, 1, 0], [0, 0, 1.0]]), y_pred), [1, 0])


def test_accuracy_of_several_sigmoid_units_is_categorical_as_keras():
    """Keras 3 picks binary accuracy only for one output unit, whatever the loss."""
    y_true = np.array([[1.0, 0.0, 1.0]])
    y_pred = np.array([[0.9, 0.8, 0.1]])
    assert metrics.accuracy(y_true, y_pred)[0] == 1.0        # argmax 0 matches argmax 0
    assert metrics.binary_accuracy(y_true, y_pred)[0] == pytest.approx(1 / 3)


def test_fit_logs_the_metric_under_the_name_given():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), seed=0)
    assert {"loss", "acc", "val_loss", "val_acc"} <= set(history.history)
    assert "accuracy" not in history.history
    model.compile(optimizer="adam", loss="mse", metrics=["MAE"])
    assert model.evaluate(x, np.eye(3)[y], return_dict=True).keys() == {"loss", "MAE"}


def test_mse_regression_with_one_unit_reports_binary_accuracy():
    """Dense(1) + mse on 0/1 targets: Keras's "accuracy" is binary there (an argmax over one column is always 1)."""
    model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    model.set_weights([np.array([[1.0], [-1.0]]), np.array([0.4])])   # outputs 1.4, -0.6, 0.4, 0.4
    _, accuracy = model.evaluate(x, np.array([1, 0, 0, 1]), verbose=0)
    assert accuracy == pytest.approx(0.75)                             # right on samples 0, 1 and 2


def test_keras_regression_metric_names():
    """Keras 3's compile metrics "mse"/"mean_squared_error"/"mae"/"mean_absolute_error" (and class names)."""
    for name in ("mse", "MSE", "mean_squared_error", "MeanSquaredError"):
        assert metrics.get(name).fn is metrics.mean_squared_error and metrics.get(name).name == name
    for name in ("mae", "mean_absolute_error", "MeanAbsoluteError"):
        assert metrics.get(name).fn is metrics.mean_absolute_error
    assert metrics.get("BinaryAccuracy").fn is metrics.binary_accuracy
    assert metrics.get("SparseCategoricalAccuracy").fn is metrics.sparse_categorical_accuracy
    y_true = np.array([[1.0, 0.0], [0.0, 2.0]])
    y_pred = np.array([[0.5, 1.0], [0.0, -1.0]])
    np.testing.assert_allclose(metrics.mean_squared_error(y_true, y_pred), [(0.25 + 1.0) / 2, 9.0 / 2])
    np.testing.assert_allclose(metrics.mean_absolute_error(y_true, y_pred), [(0.5 + 1.0) / 2, 3.0 / 2])


def rmse(y_true, y_pred):
    return np.sqrt(np.mean((y_true - y_pred) ** 2, axis=-1))


def test_a_function_is_a_metric_logged_under_its_snake_case_name():
    def myMetric(y_true, y_pred):          # noqa: N802 - Keras logs it as "my_metric"
        return np.abs(y_true - y_pred)

    assert metrics.get(rmse).name == "rmse"
    assert metrics.get(myMetric).name == "my_metric"
    assert metrics.get(lambda y_true, y_pred: y_true).name == "lambda"
    y_true = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y_pred = np.array([[0.5, 1.0], [0.0, -1.0], [1.0, 1.0]])
    np.testing.assert_allclose(metrics.get(rmse)(y_true, y_pred), [np.sqrt(1.25 / 2), np.sqrt(4.5), 0.0])
    # values per output are averaged per sample, as Keras's MeanMetricWrapper does
    np.testing.assert_allclose(metrics.get(myMetric)(y_true, y_pred), [0.75, 1.5, 0.0])
    # a single number for the batch counts for each sample
    np.testing.assert_array_equal(metrics.get(lambda t, p: 0.25)(y_true, y_pred), [0.25, 0.25, 0.25])


def test_a_metric_function_with_the_wrong_shape_says_so():
    metric = metrics.get(lambda y_true, y_pred: np.zeros(5))
    with pytest.raises(ValueError, match=r"metric 'lambda' returned an array of shape \(5,\) for a batch of 3"):
        metric(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="a metric must be a name, a function"):
        metrics.get(3)
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        metrics.get("rmse")


def test_fit_and_evaluate_log_a_function_metric():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mse", rmse])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0, validation_data=(x, y), seed=0)
    assert {"loss", "mse", "rmse", "val_loss", "val_mse", "val_rmse"} <= set(history.history)
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    e = model.predict(x).astype(np.float64) - y
    assert logs["rmse"] == pytest.approx(np.mean(np.sqrt(np.mean(e ** 2, axis=1))), rel=1e-5)
    assert logs["mse"] == pytest.approx(logs["loss"], rel=1e-6)


def test_a_saved_model_with_a_function_metric_loads_with_custom_objects(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=[rmse], weighted_metrics=["mae"])
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="custom_objects"):
        nnscratch.load_model(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz", custom_objects={"rmse": rmse})
    assert [m.name for m in loaded.metrics] == ["rmse"]
    assert [m.name for m in loaded.weighted_metrics] == ["mae"]
    x = np.random.default_rng(1).standard_normal((6, 3))
    y = np.random.default_rng(2).standard_normal((6, 2))
    assert loaded.evaluate(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
