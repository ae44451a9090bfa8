"""Cropping2D, Permute and RepeatVector: Keras's argument forms, output shapes and names, forward and backward
against NumPy written out here, bad arguments, and save/load round trips. (Finite-difference gradient checks
are in tests/test_grad_layers_extra.py.)"""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Cropping2D, Dense, Flatten, Input, Permute, RepeatVector


def batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def round_trip(tmp_path, model):
    path = tmp_path / "model.npz"
    model.save(path)
    return nnscratch.load_model(path)


# -------------------------------------------------------------------------------------------- Cropping2D

@pytest.mark.parametrize("cropping, expected", [(((0, 0), (0, 0)), ((0, 0), (0, 0))), (1, ((1, 1), (1, 1))),
                                                ((2, 1), ((2, 2), (1, 1))), (((1, 2), (0, 3)), ((1, 2), (0, 3))),
                                                ([[1, 0], 2], ((1, 0), (2, 2)))])
def test_cropping_forms(cropping, expected):
    assert Cropping2D(cropping).cropping == expected


def test_cropping_default_cuts_nothing():
    layer = Cropping2D()
    x = batch((2, 3, 4, 2))
    np.testing.assert_array_equal(layer(x), x)
    assert layer.name.startswith("cropping2d")


def test_cropping_forward_and_backward():
    layer = Cropping2D(((1, 2), (0, 3)))
    x = batch((2, 6, 7, 3))
    y = layer(x, training=True)
    assert layer.output_shape == (None, 3, 4, 3) and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x[:, 1:4, 0:4, :])
    g = batch(y.shape, seed=1)
    dx = layer.backward(g)
    expected = np.zeros_like(x)
    expected[:, 1:4, 0:4, :] = g
    np.testing.assert_array_equal(dx, expected)


def test_cropping_errors():
    with pytest.raises(ValueError, match="must not be negative"):
        Cropping2D(-1)
    with pytest.raises(TypeError, match="cropping must be"):
        Cropping2D((1, 2, 3))
    with pytest.raises(TypeError, match="cropping of the columns"):
        Cropping2D(((1, 2), (3,)))
    with pytest.raises(ValueError, match="leaves nothing"):
        Cropping2D(((2, 2), (0, 0))).build((4, 5, 1))
    with pytest.raises(ValueError, match="expects images"):
        Cropping2D(1).build((4, 5))


# ----------------------------------------------------------------------------------------------- Permute

@pytest.mark.parametrize("dims", [(1,), (2, 1), (3, 1, 2), (2, 3, 1), (1, 3, 2)])
def test_permute_forward_and_backward(dims):
    shape = (2, 3, 4)[:len(dims)]
    x = batch((5, *shape))
    layer = Permute(dims)
    y = layer(x, training=True)
    assert layer.output_shape == (None, *(shape[d - 1] for d in dims))
    for index in np.ndindex(*shape):                   # y[n, i_{d1}, ..., i_{dk}] = x[n, i_1, ..., i_k]
        np.testing.assert_array_equal(y[(slice(None), *(index[d - 1] for d in dims))], x[(slice(None), *index)])
    g = batch(y.shape, seed=1)
    dx = layer.backward(g)
    assert dx.shape == x.shape
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, dx), rel=1e-6)   # a permutation's adjoint is its inverse
    np.testing.assert_array_equal(layer.backward(y), x)


def test_permute_errors():
    with pytest.raises(ValueError, match="permutation of 1, ..., 2"):
        Permute((0, 1))
    with pytest.raises(ValueError, match="permutation of 1, ..., 2"):
        Permute((1, 1))
    with pytest.raises(TypeError, match="dims must be a tuple of ints"):
        Permute(2)
    with pytest.raises(ValueError, match="expects samples of 2 axes"):
        Permute((2, 1)).build((3, 4, 5))


# ------------------------------------------------------------------------------------------ RepeatVector

def test_repeat_vector_forward_and_backward():
    layer = RepeatVector(3)
    x = batch((4, 5))
    y = layer(x, training=True)
    assert layer.output_shape == (None, 3, 5)
    for t in range(3):
        np.testing.assert_array_equal(y[:, t], x)
    g = batch(y.shape, seed=1)
    np.testing.assert_allclose(layer.backward(g), g[:, 0] + g[:, 1] + g[:, 2], rtol=1e-6)


def test_repeat_vector_errors():
    with pytest.raises(TypeError, match="must be an int"):
        RepeatVector(2.0)
    with pytest.raises(ValueError, match="positive"):
        RepeatVector(0)
    with pytest.raises(ValueError, match="expects vectors"):
        RepeatVector(2).build((3, 4))


# ------------------------------------------------------------------------------------------------ saving

def test_configs_round_trip(tmp_path):
    model = nnscratch.Sequential([Input((6, 5, 2)), Cropping2D(((1, 0), (2, 1))), Permute((3, 1, 2)), Flatten(),
                                  RepeatVector(2), Permute((2, 1)), Flatten(), Dense(3)])
    assert [layer.output_shape for layer in model.layers] == [(None, 5, 2, 2), (None, 2, 5, 2), (None, 20),
                                                              (None, 2, 20), (None, 20, 2), (None, 40), (None, 3)]
    loaded = round_trip(tmp_path, model)
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    assert loaded.layers[0].cropping == ((1, 0), (2, 1)) and loaded.layers[1].dims == (3, 1, 2)
    x = batch((4, 6, 5, 2))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
