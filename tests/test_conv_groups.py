"""Conv2D(groups=G) and Conv1D(groups=G): each group a convolution of its own (a plain layer on its channels),
gradients over generated geometries, no fused path, saving, bad arguments.

Keras 3.15 itself was compared outside the suite (docs/keras.md)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import BatchNormalization, Conv1D, Conv2D, Dense, Flatten, MaxPooling2D, ReLU
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds

geometries = st.sampled_from([dict(kernel_size=3), dict(kernel_size=(2, 3), strides=2, padding="same"),
                              dict(kernel_size=2, dilation_rate=2), dict(kernel_size=1)])


@given(groups=st.integers(1, 3), per_group=st.integers(1, 2), filters_per_group=st.integers(1, 2),
       geometry=geometries, seed=rng_seeds())
def test_each_group_is_a_convolution_of_its_own_channels(groups, per_group, filters_per_group, geometry, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 7, groups * per_group))
    layer = Conv2D(groups * filters_per_group, groups=groups, **geometry)
    layer.build(x.shape[1:])
    assert layer.kernel.value.shape[2:] == (per_group, groups * filters_per_group)
    y = layer(x)
    for g in range(groups):
        plain = Conv2D(filters_per_group, **geometry)
        plain.build((6, 7, per_group))
        block = slice(g * filters_per_group, (g + 1) * filters_per_group)
        plain.set_weights([layer.kernel.value[..., block], layer.bias.value[block]])
        np.testing.assert_allclose(y[..., block], plain(x[..., g * per_group:(g + 1) * per_group]),
                                   rtol=1e-5, atol=1e-6)


@given(n=batch_sizes(), groups=st.integers(1, 3), geometry=geometries, seed=rng_seeds())
def test_gradients(n, groups, geometry, seed):
    with float64_floatx():
        layer = Conv2D(2 * groups, groups=groups, activation="tanh", **geometry)
    x = np.random.default_rng(seed).standard_normal((n, 6, 5, 2 * groups))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_a_grouped_layer_takes_no_fused_path_trains_and_saves(tmp_path):
    rng = np.random.default_rng(1)
    nnscratch.set_random_seed(2)
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 4)), Conv2D(8, 3, groups=2, activation="relu"),
                                  MaxPooling2D(), Conv2D(4, 3, groups=4), BatchNormalization(), ReLU(), Flatten(),
                                  Dense(3, activation="softmax")])
    assert model.batchnorms_after_convolutions() == {} and model.convolution_poolings() == {}
    x, y = rng.standard_normal((24, 8, 8, 4)).astype(np.float32), rng.integers(0, 3, 24)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0, seed=1).history
    assert history["loss"][-1] < history["loss"][0]
    by_layer = x
    for layer in model.layers:
        by_layer = layer.forward(by_layer)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_layer, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "groups.npz")
    loaded = load_model(tmp_path / "groups.npz")
    assert loaded.layers[0].groups == 2 and loaded.layers[2].get_config()["groups"] == 4
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match=r"the number of filters \(6\) must be evenly divisible by the number of "
                                         r"groups \(4\)"):
        Conv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match=r"the number of input channels \(5\) must be evenly divisible"):
        Conv2D(4, 3, groups=2).build((6, 6, 5))
    with pytest.raises(ValueError, match="Conv2D: groups must be a positive integer"):
        Conv2D(4, 3, groups=0)
    with pytest.raises(ValueError, match=r"Conv1D: the number of filters \(3\) must be evenly divisible"):
        Conv1D(3, 2, groups=2)
    with pytest.raises(ValueError, match=r"the number of input channels \(3\) must be evenly divisible"):
        Conv1D(4, 2, groups=2).build((5, 3))


@given(n=batch_sizes(), groups=st.integers(1, 3), padding=st.sampled_from(["valid", "same", "causal"]),
       dilation=st.integers(1, 2), seed=rng_seeds())
def test_conv1d_groups_are_convolutions_of_their_own_and_their_gradients_check_out(n, groups, padding, dilation, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 7, 2 * groups))
    with float64_floatx():
        layer = Conv1D(2 * groups, 3, padding=padding, dilation_rate=dilation, groups=groups)
        layer.build(x.shape[1:])
        y = layer(x)
        for g in range(groups):
            plain = Conv1D(2, 3, padding=padding, dilation_rate=dilation)
            plain.build((7, 2))
            plain.set_weights([layer.kernel.value[..., 2 * g:2 * g + 2], layer.bias.value[2 * g:2 * g + 2]])
            np.testing.assert_allclose(y[..., 2 * g:2 * g + 2], plain(x[..., 2 * g:2 * g + 2]), rtol=1e-12,
                                       atol=1e-12)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"
