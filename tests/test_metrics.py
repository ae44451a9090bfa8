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
