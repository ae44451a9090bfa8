"""BatchNormalization's Keras options: ``axis``, ``center``, ``scale``, the four initializers, the two regularizers.

The gradients of these variants are checked in ``test_grad_layers.py``; here:
what each option means, that the Models' fusions keep to the last axis, saving,
and the errors.
"""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Conv1D, Conv2D, Dense, Flatten, Input, MaxPooling2D, ReLU
from nnscratch.models import Sequential
from nnscratch.regularizers import L2


def _built(shape, **options):
    layer = BatchNormalization(**options)
    layer.build(shape)
    return layer


def test_axis_one_is_the_last_axis_moved_first():
    """Normalising axis 1 of (N, C, H, W) gives bit for bit the (N, H, W, C) result with the axes moved."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4, 6)).astype(np.float32)
    first, last = _built((3, 4, 6), axis=1), _built((4, 6, 3))
    weights = [rng.uniform(0.5, 2, 3), rng.uniform(-1, 1, 3), rng.standard_normal(3), rng.uniform(0.5, 2, 3)]
    first.set_weights(weights)
    last.set_weights(weights)
    moved = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    for training in (True, False):
        y = first.forward(x, training=training)
        assert y.shape == x.shape and y.flags.c_contiguous
        np.testing.assert_array_equal(np.moveaxis(y, 1, -1), last.forward(moved, training=training))
        g = rng.standard_normal(x.shape).astype(np.float32)
        dx = first.backward(g)
        g_last = np.ascontiguousarray(np.moveaxis(g, 1, -1))
        np.testing.assert_array_equal(np.moveaxis(dx, 1, -1), last.backward(g_last))
        np.testing.assert_array_equal(first.params["gamma"].grad, last.params["gamma"].grad)
    for a, b in zip(first.get_weights(), last.get_weights()):   # the same moving statistics
        np.testing.assert_array_equal(a, b)


def test_sequences_are_normalised_per_channel_over_batch_and_steps():
    rng = np.random.default_rng(1)
    x = (3 * rng.standard_normal((4, 7, 2)) + 5).astype(np.float32)
    y = _built((7, 2)).forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 1)), x.var(axis=(0, 1)) / (x.var(axis=(0, 1)) + 1e-3), rtol=1e-4)


@pytest.mark.parametrize("center, scale", [(False, True), (True, False), (False, False)])
def test_without_center_or_scale_beta_is_zero_and_gamma_one(center, scale):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    plain, layer = _built((3,)), _built((3,), center=center, scale=scale)
    assert list(layer.params) == ["gamma"] * scale + ["beta"] * center
    assert layer.weight_names() == ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]
    assert layer.count_params() == 3 * (2 + center + scale)
    for training in (True, False):
        np.testing.assert_array_equal(layer.forward(x, training), plain.forward(x, training))  # gamma 1, beta 0
        g = rng.standard_normal(x.shape).astype(np.float32)
        np.testing.assert_array_equal(layer.backward(g), plain.backward(g))
        for name in layer.params:
            np.testing.assert_array_equal(layer.params[name].grad, plain.params[name].grad)


def test_initializers_set_the_four_weights():
    layer = _built((2,), gamma_initializer="zeros", beta_initializer="ones", moving_mean_initializer="ones",
                   moving_variance_initializer="zeros")
    gamma, beta, mean, var = layer.get_weights()
    assert gamma.tolist() == [0, 0] and beta.tolist() == [1, 1] and mean.tolist() == [1, 1] and var.tolist() == [0, 0]
    assert all(w.dtype == np.float32 for w in layer.get_weights())
    drawn = _built((3,), gamma_initializer="he_normal").get_weights()[0]
    assert len(set(drawn.tolist())) == 3


def test_the_default_initializers_draw_nothing_from_the_seed():
    """A batch norm between two Dense layers leaves the second one's seeded kernel as it was without it."""
    kernels = []
    for middle in ([], [BatchNormalization()]):
        nnscratch.set_random_seed(7)
        model = Sequential([Input((4,)), Dense(3)] + middle + [Dense(2)])
        kernels.append(model.layers[-1].get_weights()[0])
    np.testing.assert_array_equal(*kernels)


def test_regularizers_add_their_penalty_and_gradient():
    layer = _built((3,), gamma_regularizer=L2(0.1), beta_regularizer="l1")
    layer.set_weights([np.array([1.0, 2.0, -1.0]), np.array([0.5, -0.5, 0.0]), np.zeros(3), np.ones(3)])
    assert layer.losses == pytest.approx([0.1 * 6.0, 0.01 * 1.0])
    layer.forward(np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32), training=True)
    layer.backward(np.zeros((5, 3), np.float32))
    layer.add_regularization_gradients()
    np.testing.assert_allclose(layer.params["gamma"].grad, [0.2, 0.4, -0.2], rtol=1e-6)
    np.testing.assert_allclose(layer.params["beta"].grad, [0.01, -0.01, 0.0], rtol=1e-6)
    assert _built((3,), scale=False, gamma_regularizer="l2").losses == []   # no gamma, no penalty


def test_a_model_with_the_options_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 10, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)]
    nnscratch.set_random_seed(0)
    model = Sequential([Input((10, 3)), Conv1D(4, 3), BatchNormalization(center=False, beta_regularizer="l2"),
                        ReLU(), BatchNormalization(axis=1, scale=False, gamma_regularizer=L2(0.5)), Flatten(),
                        Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "bn_options.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    second = [layer for layer in loaded.layers if isinstance(layer, BatchNormalization)][1]
    assert (second.axis, second.center, second.scale) == (1, True, False)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_the_models_fuse_only_a_batch_norm_over_the_last_axis():
    """Over axis 1 of NHWC images a batch norm is neither folded into the Conv2D before it (inference) nor
    computed with the MaxPooling2D after it (training): the model's output is that of the layers one by one."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    model = Sequential([Input((6, 6, 2)), Conv2D(3, 3, padding="same"), BatchNormalization(axis=1),
                        MaxPooling2D(2), Flatten(), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert model.batchnorms_after_convolutions() == {} and model.batchnorm_poolings() == {}
    model.train_on_batch(x, np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    by_layer = x
    for layer in model.layers:
        by_layer = layer.forward(by_layer, training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_layer, rtol=1e-6)


@pytest.mark.parametrize("axis", [0, 4, -5])
def test_an_axis_outside_a_sample_is_refused_at_build(axis):
    with pytest.raises(ValueError, match=rf"axis={axis} is not an axis of a sample.*\(None, 5, 5, 3\)"):
        _built((5, 5, 3), axis=axis)


@pytest.mark.parametrize("axis", [[1, 2], 1.0, "channels"])
def test_several_axes_or_a_non_integer_axis_are_refused(axis):
    with pytest.raises(TypeError, match="one integer"):
        BatchNormalization(axis=axis)


def test_an_unknown_initializer_is_refused_at_construction():
    with pytest.raises(ValueError, match="unknown initializer 'uniformish'"):
        BatchNormalization(gamma_initializer="uniformish")
