"""The functional API: Input -> layer calls -> Model(inputs, outputs)."""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, SymbolicTensor


def _images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8, 1)).astype("float32")


def _functional_cnn(name="digits_cnn"):
    inputs = nnscratch.Input((8, 8, 1))
    x = Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = BatchNormalization()(x)
    x = MaxPooling2D()(x)
    x = Dropout(0.5)(x)
    x = Flatten()(x)
    outputs = Dense(10, activation="softmax")(x)
    return nnscratch.Model(inputs=inputs, outputs=outputs, name=name)


def _sequential_cnn():
    return nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(4, 3, padding="same", activation="relu"), BatchNormalization(), MaxPooling2D(), Dropout(0.5),
        Flatten(), Dense(10, activation="softmax"),
    ])


def test_symbolic_tensors_carry_shapes():
    inputs = nnscratch.Input((8, 8, 1))
    assert isinstance(inputs, SymbolicTensor)
    assert inputs.shape == (8, 8, 1)
    conv = Conv2D(4, 3)
    x = conv(inputs)
    assert x.shape == (6, 6, 4)
    assert x.layer is conv and x.parent is inputs
    assert conv.built and conv.input_shape == (8, 8, 1)


def test_functional_model_structure():
    model = _functional_cnn(name="digits_cnn")
    assert model.name == "digits_cnn"
    assert model.built
    assert model.input_shape == (None, 8, 8, 1)
    assert model.output_shape == (None, 10)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "BatchNormalization", "MaxPooling2D", "Dropout", "Flatten", "Dense"]


def test_functional_equals_sequential_with_the_same_weights():
    functional = _functional_cnn()
    sequential = _sequential_cnn()
    # make BN's moving statistics non-trivial so that inference uses them
    weights = functional.get_weights()
    rng = np.random.default_rng(1)
    weights[2:6] = [rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)]
    functional.set_weights(weights)
    sequential.set_weights(functional.get_weights())
    x = _images(9)
    expected = sequential.predict(x)
    got = functional.predict(x)
    assert got.shape == (9, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # ... and it is not the trivial answer: other weights give other predictions
    sequential.layers[-1].params["kernel"].value[:, 0] += 0.5
    assert not np.allclose(sequential.predict(x), got)


def test_functional_and_sequential_train_identically():
    functional, sequential = _functional_cnn(), _sequential_cnn()
    sequential.set_weights(functional.get_weights())
    x, y = _images(32), np.arange(32) % 10
    for model in (functional, sequential):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, seed=3, verbose=0)
    for a, b in zip(functional.get_weights(), sequential.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_functional_model_fits():
    model = _functional_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=60)
    x = (rng.random((60, 8, 8, 1)) * 0.1 + (y / 10.0)[:, None, None, None]).astype("float32")
    history = model.fit(x, y, epochs=8, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_outputs_must_be_computed_by_layers_each_given_once():
    inputs = nnscratch.Input((4,))
    a = Dense(3)(inputs)
    with pytest.raises(ValueError, match="at least one output, each given once"):
        nnscratch.Model(inputs=inputs, outputs=[a, a])
    with pytest.raises(ValueError, match="an output must be computed by a layer"):
        nnscratch.Model(inputs=inputs, outputs=[a, inputs])


def test_an_input_that_does_not_lead_to_the_output_raises_a_clear_error():
    first, second = nnscratch.Input((4,)), nnscratch.Input((4,), name="unused")
    y = Dense(2)(first)
    with pytest.raises(ValueError, match=r"the inputs \['unused'\] are not read on the way to the outputs"):
        nnscratch.Model(inputs=[first, second], outputs=y)


def test_outputs_not_computed_from_inputs_raise():
    first, second = nnscratch.Input((4,)), nnscratch.Input((4,))
    y = Dense(2)(second)
    with pytest.raises(ValueError, match="not computed from the given inputs"):
        nnscratch.Model(inputs=first, outputs=y)


def test_inputs_must_come_from_input():
    inputs = nnscratch.Input((4,))
    hidden = Dense(3)(inputs)
    outputs = Dense(2)(hidden)
    with pytest.raises(ValueError, match="Input"):
        nnscratch.Model(inputs=hidden, outputs=outputs)
    with pytest.raises(TypeError, match="outputs"):
        nnscratch.Model(inputs=inputs, outputs=np.zeros((1, 2)))


def test_single_element_lists_are_accepted():
    inputs = nnscratch.Input((4,))
    outputs = Dense(2)(inputs)
    model = nnscratch.Model(inputs=[inputs], outputs=[outputs])
    assert model.predict(np.ones((3, 4))).shape == (3, 2)


def test_side_branches_that_are_not_used_are_left_out():
    inputs = nnscratch.Input((4,))
    trunk = Dense(5, name="trunk")(inputs)
    Dense(7, name="unused_branch")(trunk)
    outputs = Dense(2, name="head")(trunk)
    model = nnscratch.Model(inputs=inputs, outputs=outputs)
    assert [layer.name for layer in model.layers] == ["trunk", "head"]


def test_calling_a_built_layer_on_a_tensor_of_another_shape_raises():
    dense = Dense(3)
    dense(nnscratch.Input((4,)))
    with pytest.raises(ValueError, match=r"built for input shape \(None, 4\), got \(None, 5\)"):
        dense(nnscratch.Input((5,)))
    conv = Conv2D(2, 3)
    conv(nnscratch.Input((8, 8, 1)))
    with pytest.raises(ValueError, match=r"\(None, 8, 8, 1\).*\(None, 8, 8, 3\)"):
        conv(nnscratch.Input((8, 8, 3)))


def test_functional_model_rejects_wrong_input_shape():
    model = _functional_cnn()
    with pytest.raises(ValueError, match=r"expected input shape \(None, 8, 8, 1\), got \(2, 8, 8, 2\)"):
        model.predict(np.zeros((2, 8, 8, 2), dtype="float32"))


def test_functional_build_accepts_a_leading_none_and_checks_the_shape():
    model = _functional_cnn()
    model.build((None, 8, 8, 1))
    model.build((8, 8, 1))
    with pytest.raises(ValueError, match=r"expected input shape \(None, 8, 8, 1\), got \(None, 8, 8, 2\)"):
        model.build((None, 8, 8, 2))


def test_get_layer_of_a_functional_model_finds_the_input_layer_by_name():
    inputs = nnscratch.Input((4,), name="pixels")
    outputs = Dense(2, name="head")(Dense(3, name="hidden")(inputs))
    model = nnscratch.Model(inputs=inputs, outputs=outputs)
    assert model.get_layer("pixels") is model.input_layer
    assert model.get_layer(index=0).name == "hidden"          # layers leaves out the input layer
    assert model.get_layer("head") is model.layers[1]
    with pytest.raises(ValueError, match=r"\['pixels', 'hidden', 'head'\]"):
        model.get_layer("dense")


def test_duplicate_layer_names_in_a_functional_model_raise():
    """Keras refuses a model with two layers of the same name; so must nnscratch (Sequential already does)."""
    inputs = nnscratch.Input((4,))
    x = Dense(4, name="same")(inputs)
    outputs = Dense(2, name="same")(x)
    with pytest.raises(ValueError, match="same"):
        nnscratch.Model(inputs=inputs, outputs=outputs)


def test_a_layer_used_twice_is_rejected_or_shares_its_weights():
    """Sharing a layer twice in the chain must either be refused or count its weights once (as Keras).

    Silently treating the two calls as two layers double-counts the weights and
    gives wrong gradients (the second call's cache overwrites the first's).
    """
    inputs = nnscratch.Input((4,))
    shared = Dense(4)
    outputs = shared(shared(inputs))
    try:
        model = nnscratch.Model(inputs=inputs, outputs=outputs)
    except ValueError:
        return
    assert model.count_params() == shared.count_params()
    assert len(model.get_weights()) == 2


def test_a_model_called_on_a_tensor_adds_its_layers_shared():
    inner = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="relu")])
    inputs = nnscratch.Input((6,))
    outputs = Dense(2)(inner(Dense(4)(inputs)))
    outer = nnscratch.Model(inputs=inputs, outputs=outputs)
    assert outer.layers[1] is inner.layers[0] and outer.output_shape == (None, 2)
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    h = outer.layers[0](x)
    np.testing.assert_array_equal(outer.layers[2](inner.predict(h)), outer.predict(x))
    with pytest.raises(ValueError, match="must be built before"):
        nnscratch.Sequential([Dense(3)])(nnscratch.Input((4,)))


def test_a_layers_output_tensor_makes_a_feature_extractor_that_shares_the_weights(tmp_path):
    """Keras's idiom: Model(model.inputs, model.get_layer(name).output), for a functional or a Sequential model."""
    from nnscratch.layers import Conv2D, Flatten, MaxPooling2D
    from nnscratch.models.saving import load_model

    rng = np.random.default_rng(0)
    inputs = nnscratch.Input((4,))
    hidden = Dense(8, activation="relu", name="hidden")(inputs)
    model = nnscratch.Model(inputs, Dense(3, activation="softmax", name="head")(hidden))
    assert model.input is inputs and model.inputs == [inputs] and model.output.layer.name == "head"
    assert model.get_layer("head").input is hidden and model.get_layer("hidden").output is hidden
    features = nnscratch.Model(model.inputs, model.get_layer("hidden").output)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    np.testing.assert_array_equal(features.predict(x, verbose=0), model.get_layer("hidden")(x))
    before = features.predict(x, verbose=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    assert not np.allclose(features.predict(x, verbose=0), before)        # the same layers, trained
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnscratch.Model(loaded.inputs, loaded.get_layer("hidden").output).predict(
        x, verbose=0), features.predict(x, verbose=0))

    stack = nnscratch.Sequential([nnscratch.Input((6, 6, 1)), Conv2D(2, 3, activation="relu", name="maps"),
                                  MaxPooling2D(), Flatten(), Dense(2)])
    images = rng.standard_normal((3, 6, 6, 1)).astype(np.float32)
    maps = nnscratch.Model(stack.inputs, [stack.get_layer("maps").output, stack.output])
    first, last = maps.predict(images, verbose=0)
    np.testing.assert_array_equal(first, stack.get_layer("maps")(images))
    np.testing.assert_allclose(last, stack.predict(images, verbose=0), rtol=1e-6)
    with pytest.raises(AttributeError, match="has not been called on a tensor yet"):
        Dense(2).output
    with pytest.raises(ValueError, match="is not built yet"):
        nnscratch.Sequential([Dense(2)]).inputs
