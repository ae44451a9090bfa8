"""Functional models that branch and merge: tracing, layer order, forward/backward, training, saving, summary.

Expected values come from the layers applied one by one (or NumPy formulas),
never from the model under test.
"""

import json
import re
import weakref

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import (Activation, Add, BatchNormalization, Concatenate, Conv2D, Dense, Flatten, ReLU,
                              Softmax, Subtract)
from nnscratch.models.graph import INPUT


def _residual_cnn():
    """The brief's example: a residual block, then two branches (one from the input) joined by Concatenate."""
    inputs = nnscratch.Input((6, 6, 2), name="pixels")
    x = Conv2D(3, 3, padding="same", activation="relu", name="c1")(inputs)
    y = Conv2D(3, 3, padding="same", name="c2")(x)
    y = BatchNormalization(name="bn")(y)
    x = ReLU(name="relu")(Add(name="sum")([x, y]))
    a = Dense(4, name="da")(Flatten(name="fa")(x))
    b = Dense(3, activation="tanh", name="db")(Flatten(name="fb")(inputs))
    outputs = Dense(2, activation="softmax", name="head")(Concatenate(name="cat")([a, b]))
    return nnscratch.Model(inputs, outputs)


def _data(shape, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape[0])]


# ------------------------------------------------------------------ tracing

def test_layers_come_in_keras_order_and_each_knows_what_it_reads():
    """Keras orders by depth (longest path to the output), deepest first, ties by a depth-first walk from the output.

    fb (depth 3: fb -> db -> cat -> head) is as deep as relu and comes after it: the walk from
    the output reaches cat's first input (da's side) first.
    """
    model = _residual_cnn()
    names = [layer.name for layer in model.layers]
    assert names == ["c1", "c2", "bn", "sum", "relu", "fa", "fb", "da", "db", "cat", "head"]
    index = {name: i for i, name in enumerate(names)}
    reads = {names[i]: [names[s] if s != INPUT else "pixels" for s in sources]
             for i, sources in enumerate(model.graph.sources)}
    assert reads["sum"] == ["c1", "bn"] and reads["cat"] == ["da", "db"] and reads["fb"] == ["pixels"]
    assert all(s < i for i, sources in enumerate(model.graph.sources) for s in sources)  # topological
    assert model.layers[-1].name == "head" and index["c1"] == 0
    assert model.output_shape == (None, 2) and model.steps() == [(i, False) for i in range(len(names))]
    assert not model.poolings_through_relu() and not model.batchnorms_after_convolutions()


def test_a_chain_keeps_the_chain_path_with_its_fusions():
    inputs = nnscratch.Input((4, 4, 1))
    x = BatchNormalization()(Conv2D(2, 3)(inputs))
    model = nnscratch.Model(inputs, Dense(2)(Flatten()(ReLU()(x))))
    assert model.graph is None and (1, True) in model.steps()   # BN + ReLU fused, as before


def test_a_shared_layer_makes_one_node_a_call_and_disconnected_branches_are_errors():
    inputs = nnscratch.Input((4,))
    shared = Dense(4)
    a = shared(inputs)
    model = nnscratch.Model(inputs, Add()([a, shared(a)]))        # (tests/test_shared_layers.py: the rest)
    assert model.layers == [shared, model.layers[1]] and model.node_layers[:2] == [shared, shared]
    assert model.graph.sources == [(INPUT,), (0,), (0, 1)] and model.graph.shared == {0, 1}
    other = nnscratch.Input((4,), name="other")
    with pytest.raises(ValueError, match="not computed from the given inputs.*'other'"):
        nnscratch.Model(inputs, Add()([Dense(4)(inputs), other]))
    assert nnscratch.Model([inputs, other], Add()([Dense(4)(inputs), other])).input_layers[1].name == "other"


# -------------------------------------------------------- forward, backward

def test_forward_equals_the_layers_applied_one_by_one():
    model = _residual_cnn()
    x, _ = _data((5, 6, 6, 2))
    get = model.get_layer
    h = get("c1")(x)
    h = get("relu")(h + get("bn")(get("c2")(h)))
    joined = np.concatenate([get("da")(get("fa")(h)), get("db")(get("fb")(x))], axis=-1)
    np.testing.assert_allclose(model.predict(x, batch_size=2), get("head")(joined), rtol=1e-5, atol=1e-6)


def test_a_fan_out_sums_the_gradients_of_its_readers():
    """y = Dense(W1)(x) + Dense(W2)(x) - Dense(W3)(x): dL/dx = g (W1 + W2 - W3)^T."""
    inputs = nnscratch.Input((5,))
    dense = [Dense(3, use_bias=False) for _ in range(3)]
    model = nnscratch.Model(inputs, Subtract()([Add()([dense[0](inputs), dense[1](inputs)]), dense[2](inputs)]))
    x, _ = _data((4, 5))
    model.forward(x, training=True)
    grad = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    weights = [d.get_weights()[0] for d in dense]
    expected = grad @ (weights[0] + weights[1] - weights[2]).T
    np.testing.assert_allclose(model.backward(grad), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense[2].params["kernel"].grad, -(x.T @ grad), rtol=1e-5, atol=1e-5)


def test_training_backward_skips_only_what_no_trainable_layer_needs():
    """A frozen branch from the input runs no backward; a trainable layer with no trainable ancestor skips dL/dx."""
    inputs = nnscratch.Input((4,))
    frozen = Dense(4, trainable=False, name="frozen")
    trained = Dense(4, name="trained")
    merged = Add(name="sum")([frozen(inputs), trained(inputs)])
    model = nnscratch.Model(inputs, Dense(2, name="head")(Activation("tanh", name="act")(merged)))
    x, _ = _data((3, 4))
    grad = np.random.default_rng(2).standard_normal((3, 2)).astype(np.float32)
    model.forward(x, training=True)
    model.backward(grad)  # everything, input gradient included
    full = {name: model.get_layer(name).params["kernel"].grad.copy() for name in ("trained", "head")}
    for layer in model.layers:
        layer.params.get("kernel") is not None and layer.params["kernel"].grad.fill(np.nan)
    model.forward(x, training=True)
    assert model.backward(grad, input_gradient=False) is None
    assert model.get_layer("trained").skip_input_gradient and not model.get_layer("head").skip_input_gradient
    assert not model.get_layer("sum").skip_input_gradient
    assert np.isnan(model.get_layer("frozen").params["kernel"].grad).all()   # never ran
    for name, expected in full.items():
        np.testing.assert_array_equal(model.get_layer(name).params["kernel"].grad, expected)


def test_inference_drops_each_tensor_after_its_last_reader():
    inputs = nnscratch.Input((4,))
    a = Dense(4, name="a")(inputs)
    b = Dense(4, name="b")(a)
    model = nnscratch.Model(inputs, Dense(2, name="c")(Add(name="add")([a, b])))
    x, _ = _data((3, 4))
    refs, alive = {}, {}
    for index, y in model.forward_steps(x, training=False):
        refs[model.layers[index].name] = weakref.ref(y)
        del y
        alive[model.layers[index].name] = {name: ref() is not None for name, ref in refs.items()}
    assert alive["b"]["a"] and not alive["add"]["a"] and not alive["add"]["b"]


def test_a_batchnorm_read_only_by_a_relu_fuses_it_bit_identically():
    """As in a chain: bn.forward(x, relu=True) and the ReLU step passes values and gradients on."""
    inputs = nnscratch.Input((5, 5, 2))
    x = Conv2D(3, 3, padding="same")(inputs)
    y = ReLU(name="fused")(BatchNormalization(name="bn_a")(x))            # fused: bn_a has one reader
    z = BatchNormalization(name="bn_b")(x)
    model = nnscratch.Model(inputs, Dense(2)(Flatten()(Add()([y, ReLU(name="kept")(z), z]))))  # bn_b: two readers
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    assert model.graph.batchnorm_relus(model.layers) == {index["fused"]: index["bn_a"]}
    x_batch, _ = _data((4, 5, 5, 2))
    grad = np.random.default_rng(5).standard_normal((4, 2)).astype(np.float32)
    results, weights = [], model.get_weights()
    for fuse in (True, False):
        model.fuse_batchnorm_relu = fuse
        model.set_weights(weights)  # the same moving statistics (training forwards update them)
        for training in (True, False):
            results.append(model.forward(x_batch, training=training))
        model.forward(x_batch, training=True)
        results.append(model.backward(grad))
        results += [p.grad.copy() for p in model.parameters()]
    half = len(results) // 2
    for fused, separate in zip(results[:half], results[half:]):
        np.testing.assert_array_equal(fused, separate)


def test_backward_refuses_a_start_inside_the_graph():
    model = _residual_cnn()
    with pytest.raises(ValueError, match="from_layer"):
        model.backward(np.zeros((1, 2), np.float32), from_layer=3)


# ------------------------------------------------------------------ training

def test_one_sgd_step_matches_the_gradient_of_the_loss():
    """fit (softmax + cross-entropy fused, backward from the head's input) = w - lr * dL/dw from model.backward."""
    model = _residual_cnn()
    x, y = _data((6, 6, 6, 2), seed=3)
    before = model.get_weights()
    probabilities = model.forward(x, training=True)
    model.backward(-y / probabilities / len(x))   # d(mean cross-entropy)/d(probabilities)
    gradients = [p.grad.copy() for p in model.parameters()]
    model.set_weights(before)
    model.compile(nnscratch.optimizers.SGD(learning_rate=0.1), "categorical_crossentropy")
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    params = iter(gradients)
    for layer, start in zip(model.layers, np.cumsum([0] + [len(layer.get_weights()) for layer in model.layers])):
        for k, name in enumerate(layer.params):
            np.testing.assert_allclose(layer.params[name].value, before[start + k] - 0.1 * next(params),
                                       rtol=1e-4, atol=1e-5)


def test_fit_lowers_the_loss_and_evaluate_agrees_with_predict():
    model = _residual_cnn()
    x, y = _data((32, 6, 6, 2), seed=4)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    p = model.predict(x, batch_size=8)
    loss, _ = model.evaluate(x, y, batch_size=8)
    assert loss == pytest.approx(float(np.mean(-np.sum(y * np.log(p), axis=1))), rel=1e-4)


# -------------------------------------------------------------------- saving

def test_save_and_load_give_the_same_predictions(tmp_path):
    model = _residual_cnn()
    model.compile("adam", "categorical_crossentropy")
    x, y = _data((8, 6, 6, 2))
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "graph.npz"
    model.save(path)
    loaded = nnscratch.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.graph.sources == model.graph.sources and loaded.input_layer.name == "pixels"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    inbound = {entry["config"]["name"]: entry["inbound_layers"] for entry in model.get_config()["layers"]}
    assert inbound["sum"] == ["c1", "bn"] and inbound["fb"] == ["pixels"]


@pytest.mark.parametrize("corrupt", ["unknown", "later", "missing", "one_for_add", "two_for_dense", "unread"])
def test_a_corrupted_graph_description_raises_naming_the_file(tmp_path, corrupt):
    path = tmp_path / "graph.npz"
    _residual_cnn().save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(arrays["__config__"].tobytes().decode())
    entries = {entry["config"]["name"]: entry for entry in config["model"]["layers"]}
    if corrupt == "unknown":
        entries["sum"]["inbound_layers"] = ["c1", "nowhere"]
    elif corrupt == "later":
        entries["c2"]["inbound_layers"] = ["relu"]
    elif corrupt == "missing":
        del entries["cat"]["inbound_layers"][:]
    elif corrupt == "one_for_add":
        entries["sum"]["inbound_layers"] = ["bn"]
    elif corrupt == "two_for_dense":
        entries["da"]["inbound_layers"] = ["fa", "fb"]
    else:  # db reads fa, so fb is left unread: the graph has a dangling layer
        entries["db"]["inbound_layers"] = ["fa"]
        entries["db"]["config"]["input_shape"] = None
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        nnscratch.models.load_model(path)


# ------------------------------------------------------------- summary, nesting

def test_summary_has_a_connected_to_column_as_keras():
    lines = []
    _residual_cnn().summary(print_fn=lines.append)
    text = lines[0].splitlines()
    assert "Connected to" in text[2]
    row = next(i for i, line in enumerate(text) if line.startswith("sum (Add)"))
    assert text[row].endswith("c1[0][0],") and text[row + 1].strip() == "bn[0][0]"
    assert text[3 + 1].rstrip().endswith("-")   # the input row


def test_a_graph_model_called_on_a_tensor_shares_its_layers():
    inner = _residual_cnn()
    inputs = nnscratch.Input((6, 6, 2))
    outer = nnscratch.Model(inputs, Softmax()(inner(inputs)))
    assert outer.graph is not None and outer.layers[:-1] == inner.layers
    x, _ = _data((3, 6, 6, 2))
    np.testing.assert_allclose(outer.predict(x), outer.layers[-1](inner.predict(x)), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="branches or merges.*functional API"):
        nnscratch.Sequential([inner, Softmax()])
    with pytest.raises(TypeError, match="one input"):
        inner([inputs, inputs])
