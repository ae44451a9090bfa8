"""Normalization: adapt's statistics over the chosen axes, batches pooled, given statistics, invert, gradients, saving.

Keras 3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Dense, Normalization
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, rng_seeds


@given(axis=st.sampled_from([-1, None, 1, (1, 2), 2]), splits=st.lists(st.integers(1, 30), min_size=1, max_size=4),
       seed=rng_seeds())
def test_adapt_standardises_over_the_other_axes_and_batches_pool_to_the_whole(axis, splits, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 3, 4)) * rng.uniform(0.5, 3, (1, 3, 4)) + rng.uniform(-2, 2, (1, 3, 4))
    layer = Normalization(axis=axis)
    layer.adapt(x)
    keep = () if axis is None else (axis,) if isinstance(axis, int) else axis
    reduce = tuple(d for d in range(3) if d not in {a % 3 for a in keep})
    np.testing.assert_allclose(layer.buffers["mean"].reshape(-1), x.mean(axis=reduce).reshape(-1), rtol=1e-5,
                               atol=1e-6)
    y = layer(x.astype(np.float32))
    np.testing.assert_allclose(y.mean(axis=reduce), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=reduce), 1, rtol=1e-4)
    cuts = np.cumsum(splits)
    batches = [part for part in np.split(x, cuts[cuts < 40]) if len(part)]
    pooled = Normalization(axis=axis)
    pooled.adapt(iter(batches))
    for name in ("mean", "variance"):
        np.testing.assert_allclose(pooled.buffers[name], layer.buffers[name], rtol=1e-5, atol=1e-7)
    assert int(pooled.buffers["count"]) == int(layer.buffers["count"]) == x.size // layer.buffers["mean"].size


def test_given_statistics_invert_and_the_gradient():
    layer = Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 0.0])
    x = np.array([[2.0, 4.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(layer(x), [[1.0, 1.0, 0.0]])              # a variance of 0 divides by 1e-7
    inverse = Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0], invert=True)
    np.testing.assert_allclose(inverse(np.array([[1.0, 1.0, -1.0]], np.float32)), [[2.0, 4.0, 0.0]])
    for checked in (Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0]),
                    Normalization(mean=0.5, variance=2.0, invert=True)):
        assert check_layer(checked, input_shape=(4, 3), h=STEP).max_error < TOLERANCE
    assert Normalization(mean=1.0, variance=1.0).get_weights() == []


def test_an_adapted_normalization_trains_in_a_model_and_saves_its_statistics(tmp_path):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, 5)) * [1, 10, 100, 0.1, 5] + 50).astype(np.float32)
    y = (x[:, 1] > 50).astype(int)
    normalize = Normalization()
    normalize.adapt(x)
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([nnscratch.Input((5,)), normalize, Dense(2, activation="softmax")])
    model.compile(nnscratch.optimizers.Adam(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    mean = normalize.buffers["mean"].copy()
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0, seed=0).history
    assert history["accuracy"][-1] > 0.9 > history["accuracy"][0]       # (the raw features span 0.1 to 100)
    np.testing.assert_array_equal(normalize.buffers["mean"], mean)          # no optimizer touches the statistics
    assert [w.shape for w in normalize.get_weights()] == [(5,), (5,), ()]   # mean, variance, count: Keras's weights
    model.save(tmp_path / "normalized.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "normalized.npz").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="give both mean and variance"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="the same shape"):
        Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match=r"axis must be axes of the samples"):
        Normalization(axis=0).build((3,))
    with pytest.raises(ValueError, match="adapt does not apply"):
        Normalization(mean=1.0, variance=1.0).adapt(np.ones((2, 3)))
