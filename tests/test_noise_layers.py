"""The regularising layers besides Dropout: Dropout(noise_shape), SpatialDropout1D/2D, GaussianNoise,
GaussianDropout, ActivityRegularization; and Rescaling and Identity.

Gradient checks in float64 over generated shapes, in training mode: the
checker rewinds each layer's generator, so every evaluation draws the same
noise (as for Dropout). Then what the noise is (whole channels dropped, the
moments of the Gaussian draws), inference, seeds, configs and errors.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import (ActivityRegularization, Dense, Dropout, Flatten, GaussianDropout, GaussianNoise,
                              Identity, Rescaling, SpatialDropout1D, SpatialDropout2D)
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import LINEAR_STEP, STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import LINEAR_STEP, STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds

sides = st.integers(1, 4)


@given(n=batch_sizes(), h=sides, w=sides, c=sides, rate=st.sampled_from([0.2, 0.5]), seed=rng_seeds())
def test_spatial_dropout_gradients_and_whole_channels(n, h, w, c, rate, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    for layer, batch in ((SpatialDropout2D(rate, seed=seed), x), (SpatialDropout1D(rate, seed=seed), x[:, 0])):
        report = check_layer(layer, x=batch, training=True, seed=seed % 1000, h=LINEAR_STEP)
        assert report.max_error < TOLERANCE, f"\n{report}"
        y = layer.forward(batch, training=True)
        kept = y != 0
        channels = kept.reshape(n, -1, c)
        assert (channels.all(axis=1) | ~channels.any(axis=1)).all()      # a channel is kept or dropped whole
        np.testing.assert_allclose(y[kept], batch[kept] / (1 - rate))
        np.testing.assert_array_equal(layer.forward(batch, training=False), batch)


@given(n=batch_sizes(), h=sides, w=sides, noise=st.sampled_from([(None, 1, None), (1, None, 1), (None, None, None)]),
       seed=rng_seeds())
def test_dropout_with_a_noise_shape_draws_the_mask_in_that_shape(n, h, w, noise, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w))
    layer = Dropout(0.5, noise_shape=noise, seed=seed)
    assert check_layer(layer, x=x, training=True, seed=seed % 1000, h=LINEAR_STEP).max_error < TOLERANCE
    y = layer.forward(x, training=True)
    for axis, size in enumerate(noise):
        if size == 1:          # along a broadcast axis the mask is the same: a value is kept iff its neighbours are
            np.testing.assert_array_equal(y != 0, np.broadcast_to(np.take(y != 0, [0], axis=axis), y.shape))


@given(shape=st.tuples(batch_sizes(), sides, sides), seed=rng_seeds())
def test_gaussian_noise_and_dropout_gradients(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    for layer in (GaussianNoise(0.3, seed=seed), GaussianDropout(0.4, seed=seed)):
        report = check_layer(layer, x=x, training=True, seed=seed % 1000, h=STEP)
        assert report.max_error < TOLERANCE, f"\n{report}"
        np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_the_gaussian_draws_have_the_moments_keras_gives_them():
    x = np.ones((400, 500), dtype=np.float32)
    noise = GaussianNoise(0.3, seed=1)(x, training=True) - x
    assert abs(noise.mean()) < 0.01 and noise.std() == pytest.approx(0.3, rel=0.01)
    factor = GaussianDropout(0.4, seed=1)(x, training=True)
    assert factor.mean() == pytest.approx(1.0, abs=0.01) and factor.var() == pytest.approx(0.4 / 0.6, rel=0.02)
    assert factor.dtype == np.float32
    dropped = SpatialDropout2D(0.25, seed=1)(np.ones((2000, 2, 2, 5), np.float32), training=True)
    assert (dropped[:, 0, 0] == 0).mean() == pytest.approx(0.25, abs=0.02)


def test_a_seed_fixes_the_noise_and_fit_seed_makes_a_run_bit_identical():
    x = np.random.default_rng(0).standard_normal((32, 4, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((32, 2)).astype(np.float32)
    np.testing.assert_array_equal(GaussianNoise(1.0, seed=5)(x, training=True),
                                  GaussianNoise(1.0, seed=5)(x, training=True))
    runs = []
    for _ in range(2):
        nnscratch.set_random_seed(3)
        model = nnscratch.Sequential([nnscratch.Input((4, 3)), GaussianNoise(0.5), SpatialDropout1D(0.3),
                                      GaussianDropout(0.2), Flatten(), Dense(2)])
        model.compile("adam", "mse")
        runs.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=9).history["loss"])
    assert runs[0] == runs[1]


def test_activity_regularization_adds_its_penalty_and_its_gradient():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    with float64_floatx():
        model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3), ActivityRegularization(l1=0.1, l2=0.2)])
        report = check_model(model, x, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"
    model.compile("sgd", "mse")
    out = model.predict(x, verbose=0)
    penalty = (0.1 * np.abs(out).sum() + 0.2 * (out ** 2).sum()) / len(x)
    assert model.evaluate(x, y, batch_size=6, verbose=0) == pytest.approx(((out - y) ** 2).mean() + penalty)
    assert model.layers[1].get_config()["l1"] == 0.1 and "activity_regularizer" not in model.layers[1].get_config()


@given(shape=st.tuples(batch_sizes(), sides, sides), seed=rng_seeds())
def test_rescaling_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    layer = Rescaling(rng.uniform(-2, 2, shape[-1]).tolist(), offset=0.5)
    assert check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=STEP).max_error < TOLERANCE


def test_rescaling_maps_pixels_and_says_what_it_needs():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    y = Rescaling(1 / 127.5, offset=-1)(pixels)
    assert y.dtype == np.float32 and y.min() == -1.0 and y.max() == 1.0
    with pytest.raises(TypeError, match="scale must be a finite number"):
        Rescaling("1/255")
    with pytest.raises(ValueError, match="must broadcast against samples of shape"):
        Rescaling([1.0, 2.0]).build((4, 3))


def test_bad_arguments_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"SpatialDropout2D rate must be a number in \[0, 1\)"):
        SpatialDropout2D(1.0)
    with pytest.raises(ValueError, match="expects samples of 3 axes"):
        SpatialDropout2D(0.5).build((4, 3))
    with pytest.raises(ValueError, match="channels_last"):
        SpatialDropout2D(0.5, data_format="channels_first")
    with pytest.raises(ValueError, match="does not fit inputs of shape"):
        Dropout(0.5, noise_shape=(None, 2)).build((3,))
    with pytest.raises(TypeError, match="noise_shape must be None or a tuple"):
        Dropout(0.5, noise_shape=5)
    with pytest.raises(ValueError, match="stddev must be a number >= 0"):
        GaussianNoise(-1)
    with pytest.raises(TypeError, match="takes l1 and l2"):
        ActivityRegularization(activity_regularizer="l2")


def test_the_layers_save_and_load_with_their_arguments(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((4, 4, 2)), Rescaling([0.5, 2.0], offset=0.1),
                                  SpatialDropout2D(0.2, seed=1), GaussianNoise(0.1), Flatten(),
                                  Dropout(0.3, noise_shape=(None, 1)), GaussianDropout(0.2),
                                  ActivityRegularization(l2=0.01), Identity(), Dense(2)])
    model.save(tmp_path / "noise.npz")
    loaded = load_model(tmp_path / "noise.npz")
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    x = np.random.default_rng(0).standard_normal((3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_identity_passes_values_gradients_and_masks_on():
    x = np.random.default_rng(3).standard_normal((2, 3))
    layer = Identity()
    assert layer(x) is x and layer.backward(x) is x and layer.supports_masking
