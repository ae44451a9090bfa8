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
