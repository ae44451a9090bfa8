"""Weight initialisers: Keras's fans, bounds and standard deviations, and Dense/Conv2D using them."""

import numpy as np
import pytest

import nnscratch
from nnscratch import initializers
from nnscratch.layers import Conv2D, Dense


@pytest.mark.parametrize("shape, fans", [
    ((7,), (7, 7)),                  # a bias
    ((300, 200), (300, 200)),        # a Dense kernel
    ((3, 3, 16, 32), (144, 288)),    # a Conv2D kernel: receptive field 9
    ((5, 2, 4), (10, 20)),           # a 1-D conv kernel (width 5)
])
def test_fans_follow_keras(shape, fans):
    assert initializers.compute_fans(shape) == fans


SHAPE = (400, 300)
FAN_IN, FAN_OUT = SHAPE


@pytest.mark.parametrize("name, limit", [
    ("glorot_uniform", np.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_uniform", np.sqrt(6 / FAN_IN)),
])
def test_uniform_initialisers_fill_their_interval(name, limit):
    values = initializers.get(name)(SHAPE, np.random.default_rng(0))
    assert values.shape == SHAPE
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit               # the whole interval is used
    assert values.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)   # std of U(-l, l)
    assert abs(values.mean()) < 0.01 * limit


@pytest.mark.parametrize("name, std", [
    ("glorot_normal", np.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_normal", np.sqrt(2 / FAN_IN)),
])
def test_truncated_normal_initialisers_have_the_target_std_and_no_tails(name, std):
    """Keras draws N(0, s / 0.8796) and redraws beyond 2 of those: the kept values have std ~ s."""
    values = initializers.get(name)(SHAPE, np.random.default_rng(1))
    drawn_std = std / 0.87962566103423978
    assert np.abs(values).max() <= 2 * drawn_std
    assert np.abs(values).max() > 1.9 * drawn_std
    assert values.std() == pytest.approx(std, rel=0.02)
    assert abs(values.mean()) < 0.01 * std


@pytest.mark.parametrize("shape", [(6, 6), (6, 24), (24, 6), (3, 2, 5)])
def test_orthogonal_gives_orthonormal_columns_or_rows_as_keras(shape):
    """Keras's Orthogonal: the flattened (prod(shape[:-1]), shape[-1]) matrix has orthonormal columns, or rows if wide."""
    values = initializers.get("orthogonal")(shape, np.random.default_rng(2))
    assert values.shape == shape
    flat = values.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-12)
    again = initializers.get("orthogonal")(shape, np.random.default_rng(2))
    np.testing.assert_array_equal(values, again)
    assert not np.allclose(values, initializers.get("orthogonal")(shape, np.random.default_rng(3)))


def test_random_uniform_and_random_normal_are_kerass_defaults():
    uniform = initializers.get("uniform")(SHAPE, np.random.default_rng(4))
    assert initializers.get("random_uniform") is initializers.random_uniform
    assert np.abs(uniform).max() <= 0.05 and np.abs(uniform).max() > 0.0499
    normal = initializers.get("random_normal")(SHAPE, np.random.default_rng(4))
    assert initializers.get("normal") is initializers.random_normal
    assert normal.std() == pytest.approx(0.05, rel=0.02) and np.abs(normal).max() > 3 * 0.05  # not truncated


def test_same_generator_state_same_values_and_constants():
    for name in ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal"):
        a = initializers.get(name)((20, 10), np.random.default_rng(5))
        b = initializers.get(name)((20, 10), np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
    assert np.all(initializers.get("zeros")((3, 2)) == 0) and np.all(initializers.get("ones")((3,)) == 1)
    assert initializers.get("He_Normal") is initializers.he_normal   # names are case-insensitive


def test_a_callable_is_used_as_is_and_unknown_names_are_refused():
    def custom(shape, rng):
        return np.full(shape, 0.5)

    assert initializers.get(custom) is custom
    layer = Dense(3, kernel_initializer=custom)
    layer.build((2,))
    np.testing.assert_array_equal(layer.kernel.value, np.full((2, 3), 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown initializer 'lecun_magic'"):
        initializers.get("lecun_magic")
    with pytest.raises(ValueError, match="unknown initializer"):
        Conv2D(4, 3, kernel_initializer="nope")   # refused when the layer is created, not built


def test_layers_draw_from_the_library_seed():
    def kernel(seed, init):
        nnscratch.set_random_seed(seed)
        layer = Conv2D(8, 3, kernel_initializer=init)
        layer.build((6, 6, 4))
        return layer.kernel.value

    for init in ("he_normal", "glorot_normal"):
        np.testing.assert_array_equal(kernel(3, init), kernel(3, init))
        assert not np.array_equal(kernel(3, init), kernel(4, init))
