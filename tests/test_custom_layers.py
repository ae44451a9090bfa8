"""A layer of your own (docs/custom_layers.md): gradient-checked, in a graph, shared, trained, saved and loaded
with custom_objects, and the errors when the class is missing."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import Add, Dense, Layer
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds


class FeatureScale(Layer):
    """``y = x * gain + shift``, one gain and one shift a feature (the last axis)."""

    def __init__(self, gain_initial=1.0, **kwargs):
        super().__init__(**kwargs)
        self.gain_initial = gain_initial
        self._x = None

    def build(self, input_shape):
        self.gain = self.new_parameter("gain", np.full(input_shape[-1:], self.gain_initial))
        self.shift = self.new_parameter("shift", np.zeros(input_shape[-1:]))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x if training else None
        return x * self.gain.value + self.shift.value

    def backward(self, grad_output):
        features = grad_output.shape[-1]
        self.gain.grad[...] = (grad_output * self._x).reshape(-1, features).sum(axis=0)
        self.shift.grad[...] = grad_output.reshape(-1, features).sum(axis=0)
        return grad_output * self.gain.value

    def get_config(self):
        return {**super().get_config(), "gain_initial": self.gain_initial}


@given(n=batch_sizes(), shape=st.sampled_from([(3,), (2, 4), (2, 2, 3)]), seed=rng_seeds())
def test_its_gradients_over_generated_shapes(n, shape, seed):
    with float64_floatx():
        layer = FeatureScale(gain_initial=0.5)
    report = check_layer(layer, x=np.random.default_rng(seed).standard_normal((n, *shape)), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def graph_model():
    """A residual branch through a FeatureScale, and the same FeatureScale called again after it (shared)."""
    nnscratch.set_random_seed(1)
    inputs = nnscratch.Input((4,), name="x")
    scale = FeatureScale(gain_initial=0.8, name="scale")
    hidden = Add()([Dense(4, activation="tanh")(scale(inputs)), inputs])
    return nnscratch.Model(inputs, Dense(2, activation="softmax", name="head")(scale(hidden)))


def test_in_a_graph_shared_trained_saved_and_loaded(tmp_path):
    with float64_floatx():
        model = graph_model()
    rng = np.random.default_rng(2)
    assert check_model(model, rng.standard_normal((5, 4)), h=STEP).max_error < TOLERANCE
    model = graph_model()
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 2, 32)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=3).history
    again = graph_model()
    again.compile("adam", "sparse_categorical_crossentropy")
    assert again.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=3).history == history      # seeded: identical
    model.save(tmp_path / "custom.npz")
    loaded = load_model(tmp_path / "custom.npz", custom_objects={"FeatureScale": FeatureScale})
    assert isinstance(loaded.get_layer("scale"), FeatureScale) and loaded.get_layer("scale").gain_initial == 0.8
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=4).history == \
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=4).history           # the optimizer's state too


def test_loading_without_the_class_or_with_something_else_says_so(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((3,)), FeatureScale(), Dense(1)])
    model.save(tmp_path / "sequential.npz")
    with pytest.raises(ValueError, match=r"unknown layer class 'FeatureScale': a layer of your own loads with "
                                         r"load_model\(path, custom_objects=\{'FeatureScale': FeatureScale\}\)"):
        load_model(tmp_path / "sequential.npz")
    with pytest.raises(ValueError, match=r"custom_objects\['FeatureScale'\] must be a Layer subclass"):
        load_model(tmp_path / "sequential.npz", custom_objects={"FeatureScale": len})
    loaded = load_model(tmp_path / "sequential.npz", custom_objects={"FeatureScale": FeatureScale})
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


class Gate(Layer):
    """Keras style: ``y = x * sigmoid(w)``, ``w`` from ``add_weight`` with an L2 penalty and a MaxNorm; a counter
    of training batches in a non-trainable weight the layer updates itself."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=input_shape[-1:], initializer="random_normal", regularizer="l2",
                                 constraint="max_norm", name="w")
        self.batches = self.add_weight(shape=(), initializer="zeros", trainable=False, name="batches")
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        self._gate = 1 / (1 + np.exp(-self.w.value))
        self._x = x
        if training:
            self.batches += 1
        return x * self._gate

    def backward(self, grad_output):
        self.w.grad[...] = (grad_output * self._x * self._gate * (1 - self._gate)).reshape(
            -1, self._x.shape[-1]).sum(axis=0)
        return grad_output * self._gate


def test_add_weight_makes_parameters_with_penalties_and_constraints_and_buffers(tmp_path):
    with float64_floatx():
        layer = Gate()
        report = check_layer(layer, x=np.random.default_rng(5).standard_normal((3, 4)), h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"               # the L2 penalty's gradient included
    assert list(layer.params) == ["w"] and list(layer.buffers) == ["batches"]
    assert layer.weight_regularizers()["w"].l2 == 0.01 and layer.w.constraint is not None
    nnscratch.set_random_seed(6)
    model = nnscratch.Sequential([nnscratch.Input((4,)), Gate(name="gate"), Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(7)
    model.fit(rng.standard_normal((20, 4)), rng.standard_normal((20, 1)), epochs=2, batch_size=5, verbose=0)
    assert model.get_layer("gate").batches == 8 and len(model.losses) == 1          # 2 epochs of 4 batches
    model.save(tmp_path / "gate.npz")
    assert load_model(tmp_path / "gate.npz", custom_objects={"Gate": Gate}).get_layer("gate").batches == 8
    with pytest.raises(ValueError, match="takes no regularizer or constraint"):
        Gate().add_weight((2,), trainable=False, regularizer="l2")
    with pytest.raises(ValueError, match="already has a weight named 'w'"):
        layer.add_weight((2,), name="w")


def test_the_walkthrough_in_docs_custom_layers_runs(tmp_path, monkeypatch, capsys):
    """docs/custom_layers.md's code blocks, run in order in one namespace (the layer, the check, the model)."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "custom_layers.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    walkthrough = [block for block in blocks if "class MeanPowerError" not in block]
    monkeypatch.chdir(tmp_path)                                        # (the example saves swish.npz)
    previous = nnscratch.floatx()
    namespace = {}
    try:
        for block in walkthrough:
            exec(compile(block, str(doc), "exec"), namespace)
    finally:
        nnscratch.set_floatx(previous)
    assert "max rel. error" in capsys.readouterr().out
    loaded = namespace["loaded"]
    np.testing.assert_array_equal(loaded.predict(namespace["x_train"], verbose=0),
                                  namespace["model"].predict(namespace["x_train"], verbose=0))
