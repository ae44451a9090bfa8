"""PReLU: Keras's weight (name, shape with shared axes, zeros by default), the formula and its gradients against
NumPy written out here, bad arguments, and a save/load round trip. (Gradient checks by finite differences are in
tests/test_grad_layers_extra.py.)"""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Dense, Input, PReLU


def prelu_by_cases(x, alpha):
    """x where x > 0, alpha * x elsewhere (alpha broadcast over the batch)."""
    return np.where(x > 0, x, alpha[None] * x)


@pytest.mark.parametrize("shared_axes, alpha_shape", [(None, (3, 4, 2)), ([1, 2], (1, 1, 2)), (1, (1, 4, 2)),
                                                      ((3,), (3, 4, 1)), ([1, 2, 3], (1, 1, 1))])
def test_alpha_has_keras_name_and_shape(shared_axes, alpha_shape):
    layer = PReLU(shared_axes=shared_axes)
    layer.build((3, 4, 2))
    assert layer.weight_names() == ["alpha"]
    assert layer.alpha.shape == alpha_shape
    np.testing.assert_array_equal(layer.alpha.value, 0)        # Keras's default: zeros, so it starts as a ReLU
    assert layer.count_params() == int(np.prod(alpha_shape))
    assert layer.output_shape == (None, 3, 4, 2)
    assert layer.name.startswith("p_re_lu")                     # Keras's snake case of "PReLU"


@pytest.mark.parametrize("shared_axes", [None, [1], [2], [1, 2]])
def test_forward_and_gradients_follow_the_formula(shared_axes):
    rng = np.random.default_rng(0)
    layer = PReLU(alpha_initializer="ones", shared_axes=shared_axes)
    layer.build((3, 2))
    alpha = rng.uniform(-0.5, 1.5, layer.alpha.shape)
    layer.set_weights([alpha])
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)
    x[0, 0, 0] = 0.0                                            # the kink: both derivatives are 0 there
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    full_alpha = np.broadcast_to(alpha, (3, 2))
    np.testing.assert_allclose(y, prelu_by_cases(x, full_alpha), rtol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, g * np.where(x > 0, 1.0, np.where(x < 0, full_alpha[None], 0.0)), rtol=1e-6)
    assert dx[0, 0, 0] == 0
    # dL/dalpha: sum of g * x over the negative inputs, over the batch and the shared axes
    expected = (g * np.minimum(x, 0)).sum(axis=0)
    for axis in shared_axes or ():
        expected = expected.sum(axis=axis - 1, keepdims=True)
    np.testing.assert_allclose(layer.alpha.grad, expected, rtol=1e-5, atol=1e-6)


def test_alpha_is_trained_by_the_optimizer():
    rng = np.random.default_rng(1)
    model = nnscratch.Sequential([Input((4,)), Dense(4, kernel_initializer="he_normal"), PReLU(), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((32, 4)).astype(np.float32)
    before = model.layers[1].get_weights()[0].copy()
    model.fit(x, x.sum(axis=1, keepdims=True), epochs=2, verbose=0)
    assert not np.array_equal(model.layers[1].get_weights()[0], before)


def test_config_round_trip(tmp_path):
    layer = PReLU(alpha_initializer="ones", shared_axes=2, name="slopes")
    assert layer.get_config() == {"name": "slopes", "trainable": True, "alpha_initializer": "ones",
                                  "alpha_regularizer": None, "alpha_constraint": None, "shared_axes": [2]}
    model = nnscratch.Sequential([Input((3, 4)), layer])
    model.layers[0].set_weights([np.arange(3.0).reshape(3, 1)])
    path = tmp_path / "prelu.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert loaded.layers[0].get_config() == layer.get_config()
    np.testing.assert_array_equal(loaded.layers[0].get_weights()[0], model.layers[0].get_weights()[0])
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown regularizer"):
        PReLU(alpha_regularizer="l3")
    with pytest.raises(ValueError, match="unknown constraint"):
        PReLU(alpha_constraint="positive")
    with pytest.raises(ValueError, match="unknown initializer"):
        PReLU(alpha_initializer="nope")
    with pytest.raises(ValueError, match="0 is the batch axis"):
        PReLU(shared_axes=[0])
    with pytest.raises(TypeError, match="shared_axes must be"):
        PReLU(shared_axes="1")
    with pytest.raises(ValueError, match="shared axis 3 does not exist"):
        PReLU(shared_axes=3).build((4, 5))
    layer = PReLU()
    layer.build((2,))
    with pytest.raises(RuntimeError, match="without forward"):
        layer.backward(np.zeros((1, 2), np.float32))
