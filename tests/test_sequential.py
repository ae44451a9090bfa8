"""Sequential: construction, add, input shapes, deferred build, names."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D,
                              MaxPooling2D, ReLU)

REPO = Path(__file__).resolve().parents[1]


def _images(n=5, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype("float32")


def _cnn_layers():
    return [Conv2D(4, 3, activation="relu"), MaxPooling2D(), Flatten(), Dense(3, activation="softmax")]


# ------------------------------------------------------------------ construction
def test_list_construction_with_input_first_builds_every_layer():
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *_cnn_layers()])
    assert model.built
    assert len(model.layers) == 4                         # Input is not one of the layers (as Keras)
    assert all(layer.built for layer in model.layers)
    assert model.input_shape == (None, 8, 8, 1)
    assert model.output_shape == (None, 3)
    assert [layer.output_shape for layer in model.layers] == [(None, 6, 6, 4), (None, 3, 3, 4), (None, 36),
                                                             (None, 3)]
    assert model.layers[3].params["kernel"].shape == (36, 3)
    assert model.predict(_images()).shape == (5, 3)


def test_add_one_by_one_equals_list_construction():
    nnscratch.set_random_seed(7)
    listed = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), *_cnn_layers()])
    nnscratch.set_random_seed(7)
    added = nnscratch.Sequential()
    added.add(nnscratch.Input((8, 8, 1)))
    assert added.built and added.layers == []
    for layer in _cnn_layers():
        added.add(layer)
        assert layer.built                                 # built as soon as it is added
    assert [type(layer) for layer in added.layers] == [type(layer) for layer in listed.layers]
    for a, b in zip(added.get_weights(), listed.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = _images()
    np.testing.assert_array_equal(added.predict(x), listed.predict(x))


def test_input_shape_on_first_layer():
    model = nnscratch.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2)])
    assert model.built
    assert model.input_shape == (None, 3)
    assert model.layers[0].params["kernel"].shape == (3, 4)
    assert model.layers[1].params["kernel"].shape == (4, 2)
    assert model.predict(np.ones((6, 3))).shape == (6, 2)


def test_input_shape_on_first_added_conv_layer():
    model = nnscratch.Sequential()
    model.add(Conv2D(2, 3, input_shape=(8, 8, 1)))
    model.add(Flatten())
    assert model.built and model.output_shape == (None, 72)


def test_input_must_be_first():
    model = nnscratch.Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="first"):
        model.add(nnscratch.Input((3,)))


def test_add_rejects_non_layers():
    model = nnscratch.Sequential()
    with pytest.raises(TypeError, match="Layer"):
        model.add("dense")


def test_adding_a_layer_built_for_another_shape_raises():
    dense = Dense(2)
    dense.build((5,))
    model = nnscratch.Sequential([nnscratch.Input((4,))])
    with pytest.raises(ValueError, match=r"\(None, 5\).*\(None, 4\)"):
        model.add(dense)


# ------------------------------------------------------------------ deferred build
def test_deferred_build_on_first_predict():
    model = nnscratch.Sequential(_cnn_layers())
    assert not model.built
    assert not any(layer.built for layer in model.layers)
    with pytest.raises(ValueError, match="not built"):
        model.summary()
    y = model.predict(_images(7))
    assert model.built and y.shape == (7, 3)
    assert model.input_shape == (None, 8, 8, 1)
    assert model.layers[0].params["kernel"].shape == (3, 3, 1, 4)
    assert model.layers[-1].params["kernel"].shape == (3 * 3 * 4, 3)
    with pytest.raises(ValueError, match=r"expected input shape \(None, 8, 8, 1\), got \(2, 10, 10, 1\)"):
        model.predict(_images(2, (10, 10, 1)))


def test_deferred_build_on_first_fit():
    model = nnscratch.Sequential([Flatten(), Dense(5, activation="relu"), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = _images(12, (4, 3, 2))
    y = np.arange(12) % 2
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert model.built
    assert model.input_shape == (None, 4, 3, 2)
    assert model.layers[1].params["kernel"].shape == (24, 5)
    # layers added after the build are built at once
    model.add(Activation("linear"))
    assert model.layers[-1].built and model.output_shape == (None, 2)


def test_explicit_build():
    model = nnscratch.Sequential([Dense(3)])
    model.build((6,))
    assert model.built and model.layers[0].params["kernel"].shape == (6, 3)


def test_build_accepts_the_keras_form_with_a_leading_none_for_the_batch_axis():
    model = nnscratch.Sequential([Dense(3)])
    model.build((None, 6))
    assert model.input_shape == (None, 6)
    assert model.layers[0].params["kernel"].shape == (6, 3)


def test_build_does_not_guess_that_a_leading_integer_is_the_batch_axis():
    model = nnscratch.Sequential([Flatten(), Dense(3)])
    model.build((32, 6))                                   # samples of 32x6, not batches of 32
    assert model.input_shape == (None, 32, 6)
    assert model.layers[1].params["kernel"].shape == (192, 3)


@pytest.mark.parametrize("shape, error", [((None, None), ValueError), ((6, None), ValueError), (6, TypeError)])
def test_build_refuses_other_unknown_axes(shape, error):
    with pytest.raises(error, match="input_shape"):
        nnscratch.Sequential([Dense(3)]).build(shape)


# ------------------------------------------------------------------ names
def test_name_argument_and_model_name():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, name="hidden"), Dense(2, name="head")],
                                 name="my_model")
    assert model.name == "my_model"
    assert [layer.name for layer in model.layers] == ["hidden", "head"]


def test_get_layer_by_name_or_index_as_keras():
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, name="hidden"), Dense(2, name="head")])
    hidden, head = model.layers
    assert model.get_layer("head") is head
    assert model.get_layer(name="hidden") is hidden
    assert model.get_layer(index=0) is hidden
    assert model.get_layer(index=-1) is head


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": "missing"}, ValueError, r"no layer named 'missing'.*\['hidden', 'head'\]"),
    ({"index": 2}, ValueError, r"no layer at index 2.*2 layers \['hidden', 'head'\]"),
    ({"index": -3}, ValueError, "no layer at index -3"),
    ({"index": 1.0}, TypeError, "integer"),
    ({"name": 0}, TypeError, "string"),
    ({"name": "head", "index": 1}, ValueError, "not both"),
    ({}, ValueError, "name or an index"),
])
def test_get_layer_errors_name_what_there_is(kwargs, error, match):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, name="hidden"), Dense(2, name="head")])
    with pytest.raises(error, match=match):
        model.get_layer(**kwargs)


def test_layer_names_must_be_unique():
    with pytest.raises(ValueError, match="'twin'.*unique"):
        nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, name="twin"), Dense(2, name="twin")])


def test_default_names_are_unique_and_count_up():
    a, b, c = Dense(1), Dense(1), Conv2D(1, 1)
    assert len({a.name, b.name, c.name}) == 3
    for layer, prefix in ((a, "dense"), (b, "dense"), (c, "conv2d")):
        assert layer.name == prefix or layer.name.startswith(prefix + "_")
    index = lambda name: 0 if "_" not in name else int(name.rsplit("_", 1)[1])  # noqa: E731
    assert index(b.name) == index(a.name) + 1
    assert nnscratch.Sequential().name != nnscratch.Sequential().name


def test_keras_layer_naming_in_a_fresh_process():
    """Keras's names: snake-case class name, then ``_1``, ``_2`` ... per prefix."""
    code = (
        "import json, nnscratch\n"
        "from nnscratch.layers import *\n"
        "m = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(4, 3), ReLU(), MaxPool2D(), Conv2D(4, 1),\n"
        "    MaxPooling2D(), BatchNormalization(), Flatten(), Dense(8), Dropout(0.5), Dense(2),\n"
        "    Activation('softmax')])\n"
        "print(json.dumps([l.name for l in m.layers]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "NNSCRATCH_BACKEND": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    names = json.loads(out.stdout.strip().splitlines()[-1])
    assert names == ["conv2d", "re_lu", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "batch_normalization",
                     "flatten", "dense", "dropout", "dense_1", "activation"]


def test_maxpool2d_is_an_alias_of_maxpooling2d():
    assert MaxPool2D is MaxPooling2D
    layer = MaxPool2D(pool_size=(2, 2))
    assert layer.name.startswith("max_pooling2d")
    assert type(layer).__name__ == "MaxPooling2D"


def test_tuple_kernel_and_pool_sizes_in_a_model():
    model = nnscratch.Sequential([
        nnscratch.Input((9, 8, 2)),
        Conv2D(3, (3, 2), activation="relu"),        # -> (7, 7, 3)
        MaxPool2D(pool_size=(2, 3)),                 # -> (3, 2, 3)
        Flatten(),
        Dense(2),
    ])
    assert model.layers[0].params["kernel"].shape == (3, 2, 2, 3)
    assert model.layers[0].output_shape == (None, 7, 7, 3)
    assert model.layers[1].output_shape == (None, 3, 2, 3)
    assert model.layers[3].params["kernel"].shape == (18, 2)
    assert model.predict(_images(4, (9, 8, 2))).shape == (4, 2)


def test_layers_stack_shapes_through_a_deeper_model():
    model = nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(4, 3, padding="same"), BatchNormalization(), ReLU(), MaxPool2D(), Dropout(0.25),
        Flatten(), Dense(5), BatchNormalization(), Dense(3, activation="softmax"),
    ])
    assert model.output_shape == (None, 3)
    probabilities = model.predict(_images(6))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_calling_a_model_casts_its_input_to_floatx_as_keras():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3)])
    x = np.random.default_rng(0).standard_normal((5, 4))            # float64, as x / 255.0 gives
    y = model(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, model.predict(x))
    assert model(np.arange(8, dtype=np.uint8).reshape(2, 4)).dtype == np.float32


def test_a_model_added_to_a_sequential_shares_its_layers_as_keras_nesting():
    from nnscratch.activations import softmax
    from nnscratch.layers import Softmax

    model = nnscratch.Sequential([Flatten(input_shape=(4, 3)), Dense(5, activation="relu"), Dense(3)])
    model.compile(optimizer="sgd", loss=nnscratch.losses.SparseCategoricalCrossentropy(from_logits=True))
    probability_model = nnscratch.Sequential([model, Softmax()])     # the TensorFlow quickstart's last step
    assert probability_model.layers[:3] == model.layers
    assert probability_model.input_shape == model.input_shape and probability_model.output_shape == (None, 3)
    x = np.random.default_rng(0).standard_normal((6, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(probability_model.predict(x), softmax(model.predict(x)), rtol=1e-6)
    before = probability_model.predict(x)
    model.fit(x, np.arange(6) % 3, epochs=2, verbose=0)                 # training the inner model ...
    assert not np.array_equal(probability_model.predict(x), before)     # ... moves the outer one: shared weights
    np.testing.assert_allclose(probability_model.predict(x), softmax(model.predict(x)), rtol=1e-6)


def test_adding_a_model_needs_it_built_once_and_matching_shapes():
    unbuilt = nnscratch.Sequential([Dense(3)])
    with pytest.raises(ValueError, match="must be built before it is added"):
        nnscratch.Sequential([unbuilt])
    inner = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, name="shared_dense")])
    with pytest.raises(ValueError, match="'shared_dense' is already in model"):
        nnscratch.Sequential([inner, inner])
    with pytest.raises(ValueError, match="built for input shape"):
        nnscratch.Sequential([nnscratch.Input((5,)), Dense(2), inner])
    outer = nnscratch.Sequential([nnscratch.Input((7,)), Dense(4), inner, Activation("softmax")])
    assert outer.output_shape == (None, 3) and outer.count_params() == 7 * 4 + 4 + inner.count_params()
    with pytest.raises(ValueError, match="cannot be added to itself"):
        outer.add(outer)
