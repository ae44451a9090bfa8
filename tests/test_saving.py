"""model.save / nnscratch.load_model, save_weights / load_weights, and refusing damaged files."""

import json
import re
import zipfile

import numpy as np
import pytest

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D


def digits_like(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = (rng.random((n, 8, 8, 1)) * 0.2 + y[:, None, None, None] / 10.0).astype("float32")
    return x, y


def cnn_layers():
    return [Conv2D(4, 3, padding="same", activation="relu", name="conv"), BatchNormalization(name="bn"),
            MaxPooling2D(name="pool"), Dropout(0.25, name="drop"), Flatten(name="flat"),
            Dense(16, activation="tanh", name="hidden", trainable=False), Dense(10, activation="softmax",
                                                                               name="out")]


def trained_cnn(optimizer=None):
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()], name="saved_cnn")
    model.compile(optimizer=optimizer or optimizers.Adam(learning_rate=0.005, beta_1=0.8),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = digits_like()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model


def layer_configs(model):
    return [(type(layer).__name__, layer.get_config()) for layer in model.layers]


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------ round trips
def test_uncompiled_model_round_trip_is_bit_identical(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()])
    # non-trivial BN statistics
    model.forward(digits_like()[0], training=True)
    path = tmp_path / "plain.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert type(loaded) is nnscratch.Sequential
    assert loaded.name == model.name
    assert layer_configs(loaded) == layer_configs(model)
    assert_same_weights(loaded, model)
    x, _ = digits_like(20, seed=1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.loss is None                       # nothing to restore


@pytest.mark.parametrize("filename", ["model.npz", "model", "model.weights.bin"])
def test_save_then_load_from_the_same_path(tmp_path, filename):
    model = trained_cnn()
    path = tmp_path / filename
    model.save(path)
    assert path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]     # exactly that file, no leftovers
    loaded = nnscratch.load_model(path)
    x, _ = digits_like(20, seed=1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert layer_configs(loaded) == layer_configs(model)
    # str paths work as well as Path objects
    np.testing.assert_array_equal(nnscratch.load_model(str(path)).predict(x), model.predict(x))


def test_load_model_restores_compile_settings(tmp_path):
    model = trained_cnn(optimizer=optimizers.Adam(learning_rate=0.005, beta_1=0.8, clipnorm=2.0))
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is optimizers.Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.learning_rate == pytest.approx(0.005)
    assert loaded.optimizer.clipnorm == pytest.approx(2.0)
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    x, y = digits_like(20, seed=1)
    assert loaded.evaluate(x, y) == pytest.approx(model.evaluate(x, y))
    loaded.fit(x, y, epochs=1, verbose=0)                 # ready to train


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_load_model_restores_an_optimizer_given_by_name(tmp_path, name):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2, activation="softmax")])
    model.compile(optimizer=name, loss="categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.loss.name == "categorical_crossentropy"


def test_load_model_without_compile(tmp_path):
    model = trained_cnn()
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz", compile=False)
    assert loaded.loss is None
    x, _ = digits_like(20, seed=1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_batchnorm_moving_statistics_and_frozen_flags_are_restored(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()])
    model.forward(digits_like()[0], training=True)
    bn = model.layers[1]
    assert not np.allclose(bn.buffers["moving_mean"], 0)        # the statistics did move
    model.save(tmp_path / "bn.npz")
    loaded = nnscratch.load_model(tmp_path / "bn.npz", compile=False)
    for key in ("moving_mean", "moving_variance"):
        np.testing.assert_array_equal(loaded.layers[1].buffers[key], bn.buffers[key])
    assert not loaded.layers[5].trainable
    assert all(not p.trainable for p in loaded.layers[5].params.values())
    assert loaded.layers[6].trainable


def test_functional_model_round_trip(tmp_path):
    inputs = nnscratch.Input((8, 8, 1))
    x = inputs
    for layer in cnn_layers():
        x = layer(x)
    model = nnscratch.Model(inputs=inputs, outputs=x, name="functional_cnn")
    model.save(tmp_path / "f.npz")
    loaded = nnscratch.load_model(tmp_path / "f.npz")
    assert type(loaded) is nnscratch.Model
    assert loaded.name == "functional_cnn"
    assert loaded.input_shape == (None, 8, 8, 1)
    assert layer_configs(loaded) == layer_configs(model)
    x, _ = digits_like(10)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_model_with_input_shape_on_first_layer_round_trip(tmp_path):
    model = nnscratch.Sequential([Dense(5, activation="relu", input_shape=(4,)), Dense(2)])
    model.save(tmp_path / "m")
    loaded = nnscratch.load_model(tmp_path / "m")
    assert loaded.input_shape == (None, 4)
    x = np.random.default_rng(0).normal(size=(6, 4))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_model_built_from_data_round_trip(tmp_path):
    model = nnscratch.Sequential([Flatten(), Dense(3)])
    x = np.random.default_rng(0).normal(size=(6, 2, 2, 1))
    expected = model.predict(x)
    model.save(tmp_path / "deferred.npz")
    loaded = nnscratch.load_model(tmp_path / "deferred.npz")
    assert loaded.built and loaded.input_shape == (None, 2, 2, 1)
    np.testing.assert_array_equal(loaded.predict(x), expected)


def test_float64_round_trip(tmp_path, float64):
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="sigmoid")])
    model.save(tmp_path / "m64.npz")
    loaded = nnscratch.load_model(tmp_path / "m64.npz")
    assert all(w.dtype == np.float64 for w in loaded.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_saving_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    first = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    second = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4), Dense(2)])
    first.save(path)
    second.save(path)
    assert len(nnscratch.load_model(path).layers) == 2


# ------------------------------------------------------------------ weights only
@pytest.mark.parametrize("filename", ["w.npz", "w"])
def test_save_weights_and_load_weights(tmp_path, filename):
    model = trained_cnn()
    model.save_weights(tmp_path / filename)
    nnscratch.set_random_seed(99)
    fresh = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()])
    x, _ = digits_like(12, seed=2)
    assert not np.array_equal(fresh.predict(x), model.predict(x))
    fresh.load_weights(tmp_path / filename)
    assert_same_weights(fresh, model)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))


def test_load_weights_into_another_architecture_raises(tmp_path):
    model = trained_cnn()
    model.save_weights(tmp_path / "w.npz")
    other = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Flatten(), Dense(10)])
    with pytest.raises(ValueError, match="weight arrays"):
        other.load_weights(tmp_path / "w.npz")


def test_model_and_weights_files_are_not_interchangeable(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    model.save(tmp_path / "model.npz")
    model.save_weights(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="weights.npz"):
        nnscratch.load_model(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="model.npz"):
        model.load_weights(tmp_path / "model.npz")


# ------------------------------------------------------------------ no pickle
def test_the_file_is_a_pickle_free_npz_with_a_json_config(tmp_path):
    model = trained_cnn()
    path = tmp_path / "m.npz"
    model.save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    assert all(a.dtype != object for a in arrays.values())
    config = json.loads(arrays.pop("__config__").tobytes().decode("utf-8"))
    weights = model.get_weights()
    assert len([k for k in arrays if k.startswith("w")]) == len(weights)
    trainable = [p for p in model.parameters() if p.trainable]
    assert len([k for k in arrays if k.startswith("o")]) == 2 * len(trainable)  # Adam's two moments
    assert len(arrays) == len(weights) + 2 * len(trainable)
    assert config["model"]["class_name"] == "Sequential"
    assert [entry["config"]["name"] for entry in config["model"]["layers"]] == [l.name for l in model.layers]
    stored = [arrays[f"w{i}"] for i in range(len(weights))]
    for s, w in zip(stored, weights):
        np.testing.assert_array_equal(s, w)


# ------------------------------------------------------------------ damaged files
def _saved(tmp_path, name="m.npz"):
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()])
    path = tmp_path / name
    model.save(path)
    return path


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_truncated_file_raises_value_error_naming_it(tmp_path, keep):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def test_an_empty_file_raises_value_error(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def test_a_tampered_weight_raises_value_error_naming_the_file(tmp_path):
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    arrays["w0"].flat[3] += 0.25                  # one kernel entry changed, config (and its SHA-256) unchanged
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def test_flipped_bytes_inside_a_weight_array_raise(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("w0.npy")
    # the stored (uncompressed) member's data begins after its local header; flip the last 8 bytes of w0
    end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
    for i in range(end - 8, end):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


@pytest.mark.parametrize("content", [b"this is not a model\n", b"PK\x03\x04 broken zip", bytes(range(256)) * 4])
def test_a_non_npz_file_raises_value_error_naming_it(tmp_path, content):
    path = tmp_path / "not_a_model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def test_an_npz_from_elsewhere_raises_value_error(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def test_a_plain_npy_file_raises_value_error(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(5.0))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.load_model(path)


def _keras_like_archive(path):
    """A zip with the members of a Keras 3 ``.keras`` file (their content does not matter here)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(100))


@pytest.mark.parametrize("name", ["model.keras", "model.npz"])
def test_a_keras_file_is_named_as_such_with_how_to_move_its_weights(tmp_path, name):
    path = tmp_path / name
    _keras_like_archive(path)
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *cnn_layers()])
    for load in (nnscratch.load_model, model.load_weights):
        with pytest.raises(ValueError, match=r"is a Keras model file") as error:
            load(path)
        assert str(path) in str(error.value)
        assert "set_weights(keras_model.get_weights())" in str(error.value)
        assert "truncated" not in str(error.value)


def test_an_hdf5_file_is_named_as_such(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"HDF5 file.*set_weights\(keras_model.get_weights\(\)\)"):
        nnscratch.load_model(path)


def test_another_zip_is_still_not_readable(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="not a readable nnscratch file"):
        nnscratch.load_model(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        nnscratch.load_model(tmp_path / "nowhere.npz")


def test_relu_layers_and_their_fusion_survive_a_round_trip(tmp_path):
    from nnscratch.layers import Activation, ReLU

    nnscratch.set_random_seed(2)
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(4, 3, padding="same"), BatchNormalization(),
                                  ReLU(name="relu_layer"), Flatten(), Dense(6), BatchNormalization(),
                                  Activation("relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = digits_like()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert type(loaded.layers[2]) is ReLU and loaded.layers[2].name == "relu_layer"
    assert loaded.steps() == model.steps() and (1, True) in loaded.steps() and (5, True) in loaded.steps()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
