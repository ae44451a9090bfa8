"""Weight constraints (nnscratch.constraints): the four maps, names and configs, and where they act: after each
optimizer update, on trainable parameters only, for Dense, Conv1D, Conv2D, BatchNormalization and PReLU."""

import numpy as np
import pytest

import nnscratch
from nnscratch import constraints
from nnscratch.constraints import MaxNorm, MinMaxNorm, NonNeg, UnitNorm
from nnscratch.layers import BatchNormalization, Conv1D, Conv2D, Dense, Flatten, Input, PReLU
from nnscratch.optimizers import SGD
from nnscratch.parameter import Parameter

W = np.array([[3.0, 0.1, -1.0], [4.0, 0.2, 0.0]])   # column norms 5, ~0.224, 1


def test_max_norm_scales_down_only_the_slices_above_the_bound():
    got = MaxNorm(2.0)(W)
    norms = np.sqrt((W ** 2).sum(axis=0))
    np.testing.assert_allclose(got, W * np.minimum(norms, 2.0) / (1e-7 + norms))
    np.testing.assert_allclose(np.sqrt((got ** 2).sum(axis=0)), [2.0, norms[1], 1.0], rtol=1e-6)


def test_unit_norm_min_max_norm_and_non_neg():
    np.testing.assert_allclose(np.sqrt((UnitNorm(axis=1)(W) ** 2).sum(axis=1)), [1, 1], rtol=1e-6)
    got = MinMaxNorm(min_value=0.5, max_value=2.0, rate=0.5)(W)
    norms = np.sqrt((W ** 2).sum(axis=0))
    np.testing.assert_allclose(np.sqrt((got ** 2).sum(axis=0)), 0.5 * np.clip(norms, 0.5, 2.0) + 0.5 * norms, rtol=1e-6)
    np.testing.assert_array_equal(NonNeg()(W), np.maximum(W, 0))


def test_a_list_of_axes_takes_one_norm_per_filter_and_the_dtype_stays():
    kernel = np.random.default_rng(0).standard_normal((3, 3, 2, 4)).astype(np.float32)
    got = MaxNorm(1.0, axis=[0, 1, 2])(kernel)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.sqrt((got ** 2).sum(axis=(0, 1, 2))), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name, cls", [("max_norm", MaxNorm), ("non_neg", NonNeg), ("unit_norm", UnitNorm),
                                       ("min_max_norm", MinMaxNorm), ("MaxNorm", MaxNorm)])
def test_names_and_serialized_forms(name, cls):
    constraint = constraints.get(name)
    assert type(constraint) is cls
    assert constraints.get(constraints.serialize(constraint)) == constraint
    assert constraints.get(None) is None and constraints.serialize(None) is None


def test_bad_constraints_are_refused():
    with pytest.raises(ValueError, match="unknown constraint 'positive'"):
        constraints.get("positive")
    with pytest.raises(TypeError, match="a constraint must be"):
        constraints.get(3)
    with pytest.raises(ValueError, match="max_value must be a finite number >= 0"):
        MaxNorm(-1)
    with pytest.raises(ValueError, match="must not exceed"):
        MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        MinMaxNorm(rate=1.5)
    with pytest.raises(TypeError, match="axis must be an int or a list of ints"):
        MaxNorm(axis="rows")
    with pytest.raises(ValueError, match="unknown constraint class 'Positive'"):
        constraints.get({"class_name": "Positive"})
    with pytest.raises(ValueError, match="a constraint dict must be"):
        constraints.get({"name": "MaxNorm"})
    with pytest.raises(ValueError, match="invalid config for constraint MaxNorm"):
        constraints.get({"class_name": "MaxNorm", "config": {"maximum": 2}})


def test_the_optimizer_constrains_after_its_update_and_skips_frozen_weights():
    value = np.array([[3.0], [4.0]])
    param = Parameter(value.copy(), "kernel", constraint=MaxNorm(1.0))
    frozen = Parameter(value.copy(), "bias", trainable=False, constraint=MaxNorm(1.0))
    param.grad[...] = [[-1.0], [-1.0]]
    SGD(learning_rate=1.0).apply_gradients([param, frozen])
    stepped = value + 1.0                               # the update, then the constraint on its result
    np.testing.assert_allclose(param.value, stepped * 1.0 / (1e-7 + np.sqrt((stepped ** 2).sum())))
    np.testing.assert_array_equal(frozen.value, value)


def test_the_layers_hand_their_constraints_to_the_optimizer_and_save_them(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 6, 2)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)]
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([
        Input((6, 2)), Conv1D(3, 2, kernel_constraint=MaxNorm(0.3, axis=[0, 1]), bias_constraint="non_neg"),
        BatchNormalization(gamma_constraint=MinMaxNorm(0.9, 1.1), beta_constraint="non_neg"),
        PReLU(alpha_initializer="zeros", alpha_constraint="non_neg", alpha_regularizer="l2"), Flatten(),
        Dense(2, activation="softmax", kernel_constraint="unit_norm")])
    model.compile(optimizer=SGD(learning_rate=0.5), loss="categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    conv, norm, prelu, _, dense = model.layers
    assert np.sqrt((conv.kernel.value ** 2).sum(axis=(0, 1))).max() <= 0.3 + 1e-6
    assert conv.bias.value.min() >= 0 and norm.beta.value.min() >= 0 and prelu.alpha.value.min() >= 0
    assert 0.9 - 1e-6 <= np.sqrt((norm.gamma.value ** 2).sum()) <= 1.1 + 1e-6   # axis 0 of a vector: all of it
    np.testing.assert_allclose(np.sqrt((dense.kernel.value ** 2).sum(axis=0)), 1.0, rtol=1e-5)
    assert prelu.losses == [pytest.approx(0.01 * float((prelu.alpha.value.astype(np.float64) ** 2).sum()))]
    path = tmp_path / "constrained.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert loaded.layers[0].kernel_constraint == MaxNorm(0.3, axis=[0, 1])
    assert loaded.layers[0].kernel.constraint == MaxNorm(0.3, axis=[0, 1])
    assert loaded.layers[2].alpha_constraint == NonNeg() and loaded.layers[4].kernel_constraint == UnitNorm()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_conv2d_takes_them_too():
    layer = Conv2D(2, 3, kernel_constraint="max_norm", bias_constraint=NonNeg())
    layer.build((5, 5, 1))
    assert layer.kernel.constraint == MaxNorm() and layer.bias.constraint == NonNeg()
    assert layer.get_config()["kernel_constraint"] == {"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": 0}}
