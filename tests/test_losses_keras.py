"""The losses as a Keras notebook uses them: from_logits, label_smoothing, MAE and Huber, names, configs, saving.

Every expected number is an independent NumPy formula written here (checked
against Keras 3 side by side when the losses were written; Keras is not
imported by the tests).
"""

import json
import warnings

import numpy as np
import pytest

import nnscratch
from nnscratch import losses, metrics
from nnscratch.layers import Dense, Dropout, Flatten


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sigmoid_bce(z, t):
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))


# ----------------------------------------------------------- the TF beginner quickstart

def test_tensorflow_beginner_quickstart_line_by_line():
    """tensorflow.org/tutorials/quickstart/beginner: a logits model, SparseCategoricalCrossentropy(from_logits=True)."""
    rng = np.random.default_rng(0)
    x_train = rng.uniform(0, 1, (256, 28, 28)).astype(np.float32)
    y_train = (x_train[:, :14].mean(axis=(1, 2)) * 40).astype(np.int64) % 10   # a rule the model can learn
    model = nnscratch.Sequential([
        Flatten(input_shape=(28, 28)),
        Dense(128, activation="relu"),
        Dropout(0.2),
        Dense(10),
    ])
    predictions = model(x_train[:1])
    loss_fn = losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = -log_softmax(predictions.astype(np.float64))[0, y_train[0]]
    assert loss_fn(y_train[:1], predictions) == pytest.approx(expected, rel=1e-5)
    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    assert not model._fused_output()                   # the last layer has no softmax: the loss applies it
    before = model.evaluate(x_train, y_train, verbose=0)
    history = model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x_train, y_train, verbose=0)
    assert loss < before[0]
    logits = model.predict(x_train).astype(np.float64)
    assert loss == pytest.approx(np.mean(-log_softmax(logits)[np.arange(256), y_train]), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(logits.argmax(axis=1) == y_train))


@pytest.mark.parametrize("activation, loss, targets", [
    ("softmax", losses.CategoricalCrossentropy, lambda rng: np.eye(3)[rng.integers(0, 3, 8)]),
    ("softmax", losses.SparseCategoricalCrossentropy, lambda rng: rng.integers(0, 3, 8)),
    ("sigmoid", losses.BinaryCrossentropy, lambda rng: rng.integers(0, 2, (8, 3)).astype(np.float64)),
])
def test_from_logits_after_an_activation_uses_that_layers_logits_and_warns(activation, loss, targets):
    """As Keras with TensorFlow: from_logits=True on a softmax (sigmoid) output is computed from the layer's logits,
    the activation applied once, with a warning; the numbers are those of from_logits=False."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 5)).astype(np.float32), targets(rng)
    results = {}
    for from_logits in (False, True):
        nnscratch.set_random_seed(3)
        model = nnscratch.Sequential([nnscratch.Input((5,)), Dense(3, activation=activation)])
        model.compile(optimizer="sgd", loss=loss(from_logits=from_logits))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        assert any(f"produced by a {activation}" in message for message in said) == from_logits
        results[from_logits] = history.history["loss"], model.get_weights()
    assert results[True][0] == results[False][0]
    for with_logits, without in zip(results[True][1], results[False][1]):
        np.testing.assert_array_equal(with_logits, without)
    # and the loss is computed once from the logits (a second softmax/sigmoid would read another number)
    z = x.astype(np.float64) @ results[True][1][0].astype(np.float64) + results[True][1][1]
    with pytest.warns(UserWarning, match="from_logits=True"):
        loss_now = model.evaluate(x, y, verbose=0)
    if activation == "sigmoid":
        assert loss_now == pytest.approx(sigmoid_bce(z, y).mean(), rel=1e-5)
    else:
        t = y if y.ndim == 2 else np.eye(3)[y]
        assert loss_now == pytest.approx(-(t * log_softmax(z)).sum(axis=1).mean(), rel=1e-5)


def test_a_sparse_loss_called_directly_takes_labels_of_shape_n_or_n_1_as_keras():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    expected = -log_softmax(logits)[[0, 1], [1, 2]]
    for labels in (np.array([1, 2]), np.array([[1], [2]]), np.array([1.0, 2.0]), [1, 2]):
        loss = losses.SparseCategoricalCrossentropy(from_logits=True)
        assert loss(labels, logits) == pytest.approx(expected.mean())
        np.testing.assert_allclose(loss.per_sample(labels, logits), expected)
        probabilities = np.exp(log_softmax(logits))
        np.testing.assert_allclose(losses.sparse_categorical_crossentropy.per_sample(labels, probabilities), expected)
        assert losses.sparse_categorical_crossentropy.gradient(labels, probabilities).shape == (2, 3)


def test_binary_from_logits_model_and_its_accuracy_on_logits():
    """Dense(1) + BinaryCrossentropy(from_logits=True): the loss from the logits; Keras's "accuracy" thresholds the
    logit itself at 0.5 (not the sigmoid), and so does nnscratch's."""
    model = nnscratch.Sequential([nnscratch.Input((1,)), Dense(1)])
    model.compile(optimizer="sgd", loss=losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    model.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    z = np.array([[0.1], [0.3], [0.7], [-0.2], [2.0]], np.float32)
    y = np.array([1, 1, 1, 0, 0])
    loss, accuracy = model.evaluate(z, y, verbose=0)
    assert loss == pytest.approx(sigmoid_bce(z[:, 0].astype(np.float64), y).mean(), rel=1e-6)
    assert accuracy == pytest.approx(np.mean((z[:, 0] > 0.5) == (y == 1)))     # 0.4; the sigmoid's 0.5 would give 0.8
    assert accuracy == pytest.approx(0.4)


@pytest.mark.parametrize("smoothing", [0.1, 0.5])
def test_label_smoothing_in_a_softmax_model_smooths_the_loss_not_the_metrics(smoothing):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss=losses.CategoricalCrossentropy(label_smoothing=smoothing),
                  metrics=["accuracy", "mse"])
    assert model._fused_output()
    kernel, bias = model.get_weights()
    z = x.astype(np.float64) @ kernel + bias
    t = np.eye(3)[z.argmax(axis=1)]                     # targets the model gets right
    logs = model.evaluate(x, t, verbose=0, return_dict=True)
    target = t * (1 - smoothing) + smoothing / 3
    assert logs["loss"] == pytest.approx(-(target * log_softmax(z)).sum(axis=1).mean(), rel=1e-5)
    assert logs["accuracy"] == 1.0
    p = np.exp(log_softmax(z))
    assert logs["mse"] == pytest.approx(((p - t) ** 2).mean(), rel=1e-5)   # against t, not the smoothed targets


def test_binary_label_smoothing_with_a_sigmoid_output():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.integers(0, 2, (10, 2)).astype(np.float32)
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(2, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=losses.BinaryCrossentropy(label_smoothing=0.2))
    assert model._fused_output()
    kernel, bias = model.get_weights()
    z = x.astype(np.float64) @ kernel + bias
    assert model.evaluate(x, y, verbose=0) == pytest.approx(sigmoid_bce(z, y * 0.8 + 0.1).mean(), rel=1e-5)


@pytest.mark.parametrize("name, per_value", [
    ("mae", lambda e: np.abs(e)),
    ("huber", lambda e: np.where(np.abs(e) <= 1, e ** 2 / 2, np.abs(e) - 0.5)),
])
def test_regression_with_mae_and_huber(name, per_value):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 3.0
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss=name, metrics=["mae", "mse"])
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    e = model.predict(x).astype(np.float64) - y
    assert logs["loss"] == pytest.approx(per_value(e).mean(), rel=1e-5)
    assert logs["mae"] == pytest.approx(np.abs(e).mean(), rel=1e-5)
    assert logs["mse"] == pytest.approx((e ** 2).mean(), rel=1e-5)


# ------------------------------------------------------------------------ names

@pytest.mark.parametrize("name, cls", [
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("CategoricalCrossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy), ("BinaryCrossentropy", losses.BinaryCrossentropy),
    ("bce", losses.BinaryCrossentropy), ("BCE", losses.BinaryCrossentropy),
    ("mean_squared_error", losses.MeanSquaredError), ("MeanSquaredError", losses.MeanSquaredError),
    ("mse", losses.MeanSquaredError), ("MSE", losses.MeanSquaredError),
    ("mean_absolute_error", losses.MeanAbsoluteError), ("MeanAbsoluteError", losses.MeanAbsoluteError),
    ("mae", losses.MeanAbsoluteError), ("MAE", losses.MeanAbsoluteError),
    ("huber", losses.Huber), ("Huber", losses.Huber),
])
def test_keras_loss_names(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.get_config() == cls().get_config()      # default arguments


def test_get_takes_a_loss_class_and_config_dicts():
    assert type(losses.get(losses.MeanAbsoluteError)) is losses.MeanAbsoluteError
    loss = losses.get({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}})
    assert type(loss) is losses.CategoricalCrossentropy and loss.from_logits and loss.label_smoothing == 0.0
    huber = losses.get({"name": "huber_loss", "delta": 2.5})
    assert type(huber) is losses.Huber and huber.delta == 2.5


@pytest.mark.parametrize("identifier", ["kullback_leibler_divergence", "huber_loss", "circle", "mean_squared_eror"])
def test_unknown_loss_names_are_refused(identifier):
    with pytest.raises(ValueError, match=f"unknown loss '{identifier}'.*mean_squared_error"):
        losses.get(identifier)


def test_a_plain_loss_function_is_refused_with_what_to_do():
    def my_loss(y_true, y_pred):
        return np.mean((y_true - y_pred) ** 2)

    with pytest.raises(TypeError, match="'my_loss'.*gradient.*per_position"):
        losses.get(my_loss)
    with pytest.raises(ValueError, match="unknown loss config"):
        losses.get({"class_name": "Circle", "config": {}})


# ----------------------------------------------------------- configs and saving

ALL_LOSSES = [
    losses.CategoricalCrossentropy(), losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.SparseCategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(), losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.25),
    losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(), losses.Huber(delta=0.3),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=repr)
def test_config_round_trips(loss):
    config = json.loads(json.dumps(loss.get_config()))
    assert config["name"] == loss.name
    for rebuilt in (type(loss).from_config(config), losses.get(config),
                    losses.get(json.loads(json.dumps(losses.serialize(loss))))):
        assert type(rebuilt) is type(loss)
        assert rebuilt.get_config() == loss.get_config()
        assert vars(rebuilt) == vars(loss)


def test_config_holds_the_arguments():
    assert losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1).get_config() == {
        "name": "categorical_crossentropy", "from_logits": True, "label_smoothing": 0.1}
    assert losses.SparseCategoricalCrossentropy(from_logits=True).get_config() == {
        "name": "sparse_categorical_crossentropy", "from_logits": True}
    assert losses.BinaryCrossentropy(label_smoothing=0.2).get_config() == {
        "name": "binary_crossentropy", "from_logits": False, "label_smoothing": 0.2}
    assert losses.Huber(delta=2).get_config() == {"name": "huber_loss", "delta": 2.0}
    assert losses.MeanAbsoluteError().get_config() == {"name": "mean_absolute_error"}
    assert repr(losses.Huber(0.5)) == "Huber(delta=0.5)"


@pytest.mark.parametrize("loss", [losses.SparseCategoricalCrossentropy(from_logits=True),
                                  losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.15),
                                  losses.Huber(delta=0.4)], ids=repr)
def test_a_saved_model_keeps_its_loss_arguments(tmp_path, loss):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 16)
    y = {"sparse_categorical_crossentropy": labels, "categorical_crossentropy": np.eye(3)[labels]}.get(
        loss.name, rng.standard_normal((16, 3)))
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3)])
    model.compile(optimizer="adam", loss=loss, metrics=["acc" if loss.name.startswith("sparse") else "mae"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)


# ----------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("cls", [losses.CategoricalCrossentropy, losses.BinaryCrossentropy])
@pytest.mark.parametrize("value, error", [(1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
                                          ("0.1", TypeError), (True, TypeError), (None, TypeError)])
def test_label_smoothing_outside_zero_one_is_refused(cls, value, error):
    with pytest.raises(error, match="label_smoothing must be"):
        cls(label_smoothing=value)


@pytest.mark.parametrize("cls", [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy,
                                 losses.BinaryCrossentropy])
@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
def test_from_logits_must_be_a_bool(cls, value):
    with pytest.raises(TypeError, match=f"from_logits must be True or False, got {value!r}"):
        cls(from_logits=value)
    assert cls(from_logits=np.bool_(True)).from_logits is True


@pytest.mark.parametrize("value, error", [(0.0, ValueError), (-1.0, ValueError), (float("inf"), ValueError),
                                          (float("nan"), ValueError), ("1", TypeError), (True, TypeError)])
def test_huber_delta_must_be_positive(value, error):
    with pytest.raises(error, match="delta must be a positive"):
        losses.Huber(delta=value)


def test_sparse_categorical_crossentropy_has_no_label_smoothing_as_in_keras():
    with pytest.raises(TypeError, match="no label_smoothing.*CategoricalCrossentropy"):
        losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(TypeError, match=r"unexpected arguments \['axis'\]"):
        losses.SparseCategoricalCrossentropy(axis=-1)


def test_keras_metric_functions_and_loss_names_together():
    """A notebook's compile(loss="huber", metrics=["mse", "mae"]) logs the metrics under the names given."""
    model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(2)])
    model.compile(optimizer="sgd", loss="Huber", metrics=["mse", "MeanAbsoluteError"])
    logs = model.evaluate(np.ones((4, 2)), np.zeros((4, 2)), verbose=0, return_dict=True)
    assert list(logs) == ["loss", "mse", "MeanAbsoluteError"]
    assert [m.name for m in model.metrics] == ["mse", "MeanAbsoluteError"]
    assert metrics.get("MeanAbsoluteError").fn is metrics.mean_absolute_error
