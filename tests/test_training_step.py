"""One training step: the first layer skips dL/d(input), which nobody needs, without changing any gradient."""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D


def _model(first):
    layers = [nnscratch.Input((6, 6, 2)), first, MaxPooling2D(), Flatten(), Dense(3, activation="softmax")]
    if isinstance(first, Dense):
        layers = [nnscratch.Input((5,)), first, Dense(3, activation="softmax")]
    return nnscratch.Sequential(layers)


@pytest.mark.parametrize("first", [lambda: Conv2D(4, 3, padding="same", activation="relu"),
                                   lambda: Dense(4, activation="tanh")], ids=["conv2d", "dense"])
def test_skipping_the_input_gradient_changes_no_parameter_gradient(first):
    model = _model(first())
    x = np.random.default_rng(0).standard_normal((4, *model.input_shape[1:])).astype("float32")
    g = np.random.default_rng(1).standard_normal((4, 3)).astype("float32")
    model.forward(x, training=True)
    grad_x = model.backward(g)
    full = [p.grad.copy() for p in model.parameters()]
    model.forward(x, training=True)
    assert model.backward(g, input_gradient=False) is None
    for expected, param in zip(full, model.parameters()):
        np.testing.assert_array_equal(param.grad, expected)
    assert grad_x.shape == x.shape
    # the flag is per call: a later full backward gives the input gradient again
    model.forward(x, training=True)
    np.testing.assert_array_equal(model.backward(g), grad_x)


def test_train_on_batch_matches_a_hand_written_step():
    """train_on_batch = forward, fused loss gradient, backward, optimizer step (SGD makes it checkable)."""
    nnscratch.set_random_seed(3)
    model = _model(Conv2D(2, 3, activation="relu"))
    model.compile(optimizer=nnscratch.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((5, 6, 6, 2)).astype("float32")
    y = np.array([0, 1, 2, 1, 0])
    before = model.get_weights()
    probs = model.forward(x, training=True)
    onehot = np.eye(3, dtype="float32")[y]
    model.backward((-(onehot / probs) / len(x)).astype("float32"))  # unfused dL/dp of the mean loss
    grads = [p.grad.copy() for p in model.parameters()]
    model.train_on_batch(x, y)
    for w0, w1, g in zip(before, model.get_weights(), grads):
        np.testing.assert_allclose(w1, w0 - 0.1 * g, rtol=1e-4, atol=1e-6)


class _CountingFlatten(Flatten):
    """A Flatten that counts its backward calls."""

    calls = 0

    def backward(self, grad_output):
        self.calls += 1
        return super().backward(grad_output)


@pytest.mark.parametrize("freeze_first_dense", [False, True], ids=["flatten-only", "frozen-dense"])
def test_backward_stops_at_the_lowest_trainable_layer(freeze_first_dense):
    """Layers below the lowest trainable one get no backward call; the gradients are unchanged."""
    nnscratch.set_random_seed(0)
    bottom = Dense(6, activation="relu", trainable=not freeze_first_dense)
    flatten = _CountingFlatten()
    model = nnscratch.Sequential([nnscratch.Input((3, 3, 2)), flatten, bottom,
                                  Dense(5, activation="tanh"), Dense(3, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype("float32")
    g = np.random.default_rng(1).standard_normal((4, 3)).astype("float32")
    model.forward(x, training=True)
    assert model.backward(g).shape == x.shape
    assert flatten.calls == 1
    full = [p.grad.copy() for p in model.parameters()]
    model.forward(x, training=True)
    assert model.backward(g, input_gradient=False) is None
    assert flatten.calls == 1  # not called again
    for expected, param in zip(full, model.parameters()):
        np.testing.assert_array_equal(param.grad, expected)
    if freeze_first_dense:
        assert model.layers[2].skip_input_gradient  # the lowest trainable layer skips dL/d(input)


def test_a_model_with_nothing_to_train_needs_no_backward():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax", trainable=False)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    model.train_on_batch(np.ones((2, 4), "float32"), np.array([0, 1]))
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
