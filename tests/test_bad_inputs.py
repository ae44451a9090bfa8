"""Bad inputs fail early with a ValueError/TypeError that says what was expected and what came."""

import json
import re

import numpy as np
import pytest

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D


def images(n=20, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype("float32")


def cnn(loss="categorical_crossentropy", metrics=("accuracy",)):
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(4, 3, activation="relu"), MaxPooling2D(),
                                  Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
    return model


def one_hot(n=20, classes=10, seed=0):
    return np.eye(classes, dtype="float32")[np.random.default_rng(seed).integers(0, classes, n)]


# ------------------------------------------------------------------ shapes
def test_fit_with_the_wrong_input_shape():
    model = cnn()
    with pytest.raises(ValueError, match=re.escape("expected input shape (None, 8, 8, 1), got (20, 9, 9, 1)")):
        model.fit(images(20, (9, 9, 1)), one_hot(20), verbose=0)


def test_predict_and_evaluate_with_the_wrong_input_shape():
    model = cnn()
    with pytest.raises(ValueError, match=re.escape("expected input shape (None, 8, 8, 1), got (20, 9, 9, 1)")):
        model.predict(images(20, (9, 9, 1)))
    with pytest.raises(ValueError, match=re.escape("expected input shape (None, 8, 8, 1), got (5, 8, 8, 3)")):
        model.evaluate(images(5, (8, 8, 3)), one_hot(5))


def test_missing_channel_axis():
    model = cnn()
    with pytest.raises(ValueError, match=re.escape("expected input shape (None, 8, 8, 1), got (20, 8, 8)")):
        model.predict(images(20)[..., 0])


def test_validation_data_with_the_wrong_shape():
    model = cnn()
    with pytest.raises(ValueError, match=re.escape("expected input shape (None, 8, 8, 1), got (4, 7, 7, 1)")):
        model.fit(images(), one_hot(), validation_data=(images(4, (7, 7, 1)), one_hot(4)), verbose=0)


def test_x_and_y_of_different_lengths():
    model = cnn()
    with pytest.raises(ValueError, match="same number of samples, got 20 and 19"):
        model.fit(images(20), one_hot(19), verbose=0)
    with pytest.raises(ValueError, match="same number of samples, got 20 and 21"):
        model.evaluate(images(20), one_hot(21))


def test_missing_targets():
    model = cnn()
    with pytest.raises(ValueError, match="targets y are required"):
        model.fit(images(), verbose=0)


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_inputs(bad):
    model = cnn()
    x = images()
    x[7, 3, 4, 0] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite.*sample 7"):
        model.fit(x, one_hot(), verbose=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.evaluate(x, one_hot())


def test_nan_targets():
    model = cnn(loss="mse")
    y = one_hot()
    y[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(images(), y, verbose=0)


def test_non_numeric_inputs():
    model = cnn()
    with pytest.raises(TypeError, match="numeric"):
        model.predict(np.array([["a"] * 64]).reshape(1, 8, 8, 1))


# ------------------------------------------------------------------ targets vs loss
@pytest.mark.parametrize("labels", [np.arange(20) % 10, (np.arange(20) % 10)[:, None]])
def test_integer_labels_with_categorical_crossentropy_suggest_the_fix(labels):
    model = cnn()
    with pytest.raises(ValueError, match=r"one-hot.*\(N, 10\).*sparse_categorical_crossentropy.*to_categorical"):
        model.fit(images(), labels, verbose=0)


def test_one_hot_width_different_from_the_output_units():
    model = cnn()
    with pytest.raises(ValueError, match="8 columns but the model outputs 10 units"):
        model.fit(images(), one_hot(20, classes=8), verbose=0)
    with pytest.raises(ValueError, match="12 columns but the model outputs 10 units"):
        model.evaluate(images(), one_hot(20, classes=12))


@pytest.mark.parametrize("bad_label", [10, 11, -1])
def test_sparse_labels_outside_the_classes(bad_label):
    model = cnn(loss="sparse_categorical_crossentropy")
    y = np.arange(20) % 10
    y[5] = bad_label
    with pytest.raises(ValueError, match=rf"\[0, 10\).*{bad_label}"):
        model.fit(images(), y, verbose=0)


def test_non_integer_sparse_labels():
    model = cnn(loss="sparse_categorical_crossentropy")
    y = (np.arange(20) % 10).astype(float)
    y[3] = 2.5
    with pytest.raises(TypeError, match="integers"):
        model.fit(images(), y, verbose=0)


def test_one_hot_targets_with_the_sparse_loss():
    model = cnn(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        model.fit(images(), one_hot(), verbose=0)


def test_binary_targets_outside_zero_one():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(np.ones((4, 3)), np.array([0.0, 1.0, 2.0, 1.0]), verbose=0)


# ------------------------------------------------------------------ architecture (at assembly, not in fit)
def test_dense_after_conv_without_flatten_raises_when_assembled():
    with pytest.raises(ValueError, match=r"Dense.*\(None, 6, 6, 4\).*Flatten"):
        nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(4, 3), Dense(10)])


def test_dense_after_conv_without_flatten_with_input_shape_argument():
    with pytest.raises(ValueError, match="Flatten"):
        nnscratch.Sequential([Conv2D(4, 3, input_shape=(8, 8, 1)), Dense(10)])


def test_dense_after_conv_without_flatten_in_the_functional_api():
    x = Conv2D(4, 3)(nnscratch.Input((8, 8, 1)))
    with pytest.raises(ValueError, match="Flatten"):
        Dense(10)(x)


def test_dense_after_conv_without_flatten_in_a_model_built_from_data_raises_at_build():
    model = nnscratch.Sequential([Conv2D(4, 3), Dense(10)])
    with pytest.raises(ValueError, match="Flatten"):
        model.build((8, 8, 1))


@pytest.mark.parametrize("kernel, shape", [(9, (8, 8, 1)), ((3, 9), (8, 8, 1)), (5, (4, 4, 2))])
def test_kernel_larger_than_its_valid_padded_input_raises_at_build(kernel, shape):
    with pytest.raises(ValueError, match=r"kernel .* larger than its valid-padded input"):
        nnscratch.Sequential([nnscratch.Input(shape), Conv2D(2, kernel)])
    # 'same' padding accepts it
    nnscratch.Sequential([nnscratch.Input(shape), Conv2D(2, kernel, padding="same")])


def test_pool_larger_than_its_input_raises_at_build():
    with pytest.raises(ValueError, match="pool"):
        nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(2, 7), MaxPooling2D(3)])


def test_conv_on_flat_input_raises():
    with pytest.raises(ValueError, match=r"Conv2D.*\(None, height, width, channels\).*\(None, 64\)"):
        nnscratch.Sequential([nnscratch.Input((64,)), Conv2D(2, 3)])


@pytest.mark.parametrize("make, match", [
    (lambda: Dense(0), "units"),
    (lambda: Dense(2.5), "units"),
    (lambda: Conv2D(0, 3), "filters"),
    (lambda: Conv2D(2, 0), "kernel_size"),
    (lambda: Conv2D(2, (3, 3, 3)), "kernel_size"),
    (lambda: MaxPooling2D((2, 0)), "pool_size"),
    (lambda: nnscratch.Input((8, -1, 1)), "shape"),
    (lambda: Dense(2, name=3), "name"),
])
def test_bad_layer_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ------------------------------------------------------------------ fit arguments
@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "32"])
def test_batch_size_below_one_or_not_an_integer_in_fit(batch_size):
    model = cnn()
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer, got {re.escape(repr(batch_size))}"):
        model.fit(images(), one_hot(), batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_below_one_in_evaluate_and_predict(batch_size):
    model = cnn()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(images(), batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.evaluate(images(), one_hot(), batch_size=batch_size)


@pytest.mark.parametrize("epochs", [-1, 1.5, True])
def test_bad_epochs(epochs):
    model = cnn()
    with pytest.raises(ValueError, match="epochs must be a whole number >= 0"):
        model.fit(images(), one_hot(), epochs=epochs, verbose=0)


def test_zero_epochs_train_nothing_as_keras():
    model = cnn()
    before = model.get_weights()
    history = model.fit(images(), one_hot(), epochs=0, verbose=0)
    assert history.history == {}
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def test_validation_split_and_validation_data_together():
    model = cnn()
    with pytest.raises(ValueError, match="either validation_split or validation_data"):
        model.fit(images(), one_hot(), validation_split=0.2, validation_data=(images(4), one_hot(4)), verbose=0)


# ------------------------------------------------------------------ optimizers
@pytest.mark.parametrize("options", [
    {"clipnorm": 1.0, "clipvalue": 0.5},
    {"clipnorm": 1.0, "global_clipnorm": 1.0},
    {"clipvalue": 1.0, "global_clipnorm": 2.0},
])
@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.RMSprop])
def test_two_clipping_options_at_once(cls, options):
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        cls(**options)


# ------------------------------------------------------------------ unknown names
def test_unknown_loss():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    with pytest.raises(ValueError, match=r"unknown loss 'categorical_crossentropi'.*categorical_crossentropy"):
        model.compile(optimizer="adam", loss="categorical_crossentropi")


def test_missing_loss():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam")


def test_unknown_optimizer():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    with pytest.raises(ValueError, match=r"'lbfgs'.*adam"):
        model.compile(optimizer="lbfgs", loss="mse")


def test_unknown_metric():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    with pytest.raises(ValueError, match=r"unknown metric 'precission'.*accuracy"):
        model.compile(optimizer="adam", loss="mse", metrics=["precission"])


def test_metrics_must_be_a_list_or_one_name():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    with pytest.raises(TypeError, match="metrics must be a list"):
        model.compile(optimizer="adam", loss="mse", metrics={"accuracy"})
    model.compile(optimizer="adam", loss="mse", metrics="accuracy")   # one name, as Keras
    assert [m.name for m in model.metrics] == ["accuracy"]


@pytest.mark.parametrize("make", [lambda: Dense(3, activation="relu7"), lambda: Conv2D(3, 3, activation="sinusoid")])
def test_unknown_activation(make):
    with pytest.raises(ValueError, match=r"unknown activation '(relu7|sinusoid)'.*relu"):
        make()


@pytest.mark.parametrize("make", [lambda: Conv2D(3, 3, padding="full"), lambda: MaxPooling2D(padding="causal")])
def test_unknown_padding(make):
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same', got '(full|causal)'"):
        make()


def test_unknown_initializer():
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot'.*glorot_uniform"):
        Dense(3, kernel_initializer="glorot")


def test_unknown_backend_and_floatx():
    with pytest.raises(ValueError, match=r"backend must be one of .*numpy.*numba.*got 'cuda'"):
        nnscratch.set_backend("cuda")
    with pytest.raises(ValueError, match=r"floatx must be one of .*got 'float16'"):
        nnscratch.set_floatx("float16")


# ------------------------------------------------------------------ order of calls
def test_fit_before_compile():
    """Keras 3 raises a ValueError telling the user to call compile() first."""
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Flatten(), Dense(10, activation="softmax")])
    with pytest.raises((ValueError, TypeError), match="compile"):
        model.fit(images(), one_hot(), verbose=0)


def test_evaluating_or_training_on_a_batch_before_compile():
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Flatten(), Dense(10, activation="softmax")])
    for method in (model.evaluate, model.train_on_batch, model.test_on_batch):
        with pytest.raises((ValueError, TypeError), match="compile"):
            method(images(), one_hot())


# ------------------------------------------------------------------ model files
def _rewrite_config(path, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(arrays["__config__"].tobytes().decode("utf-8"))
    change(config)
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_unknown_layer_class_in_a_model_file(tmp_path):
    path = tmp_path / "model.npz"
    nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)]).save(path)

    def rename(config):
        config["model"]["layers"][0]["class_name"] = "ConvLSTM2D"

    _rewrite_config(path, rename)
    with pytest.raises(ValueError, match=r"unknown layer class 'ConvLSTM2D'.*Dense"):
        nnscratch.load_model(path)


def test_unknown_layer_argument_in_a_model_file(tmp_path):
    path = tmp_path / "model.npz"
    nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)]).save(path)

    def add_argument(config):
        config["model"]["layers"][0]["config"]["frobnicate"] = 1

    _rewrite_config(path, add_argument)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy", "mse",
                                  "binary_crossentropy"])
def test_string_labels_are_named(loss):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss=loss)
    with pytest.raises(TypeError, match=r"targets must be numbers.*dtype <U3.*LabelEncoder"):
        model.fit(np.ones((2, 3)), np.array(["cat", "dog"]), verbose=0)


@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy"])
def test_one_dimensional_targets_for_one_output_unit_are_accepted(loss):
    """Keras accepts y of shape (N,) for a (N, 1) output; so does every loss here."""
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=loss)
    x, y = np.ones((4, 3)), np.array([0.0, 1.0, 1.0, 0.0])
    assert model.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y[:, None], verbose=0))
    with pytest.raises(ValueError, match=r"targets of shape \(N, 1\) expected.*got \(4, 2\)"):
        model.fit(x, np.ones((4, 2)), verbose=0)
