"""Conv2DTranspose: the adjoint of Conv2D, Keras's output shapes, gradient checks, errors.

(Against Keras 3.15, once, outside the suite: 48 geometries (kernels 1x1 to
5x5, strides 1 to 3, both paddings, with and without output_padding) on both
kernel twins, predictions to 2.4e-7 and the weights after an SGD step to
6e-8; a Conv2D + two Conv2DTranspose autoencoder after three steps to 1.5e-8;
the geometries TensorFlow refuses are refused here too.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Conv2D, Conv2DTranspose
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
    from tests.kernel_helpers import assert_twins_agree
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, rng_seeds
    from kernel_helpers import assert_twins_agree


@st.composite
def transposed_geometries(draw):
    """Input (N, H, W, C), filters, kernel, strides, padding and an output_padding below the strides (or None)."""
    shape = draw(st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)))
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    strides = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = draw(st.none() | st.tuples(*(st.integers(0, s - 1) for s in strides)))
    return shape, draw(st.integers(1, 3)), kernel, strides, padding, output_padding


def build_or_reject(shape, filters, kernel, strides, padding, output_padding, **kwargs):
    """The layer built for ``shape``, or None where Keras (TensorFlow) refuses the geometry too."""
    layer = Conv2DTranspose(filters, kernel, strides=strides, padding=padding, output_padding=output_padding, **kwargs)
    try:
        layer.build(shape[1:])
    except ValueError as error:
        assert "TensorFlow refuses it too" in str(error)
        return None
    return layer


@pytest.mark.parametrize("size, kernel, stride, padding, output_padding, expected", [
    (5, 3, 1, "valid", None, 7), (5, 3, 2, "valid", None, 11), (5, 2, 2, "valid", None, 10),
    (5, 1, 3, "valid", None, 15), (5, 3, 2, "same", None, 10), (5, 4, 3, "same", None, 15),
    (5, 3, 2, "valid", 1, 12), (5, 3, 2, "same", 1, 10), (5, 3, 2, "same", 0, 9), (4, 5, 3, "same", 2, 12),
])
def test_output_shapes_are_kerass(size, kernel, stride, padding, output_padding, expected):
    """Keras: size * stride + max(k - s, 0) (valid), size * stride (same); with output_padding p:
    (size - 1) * stride + k - 2 * (0 or k // 2) + p."""
    layer = Conv2DTranspose(2, kernel, strides=stride, padding=padding,
                            output_padding=None if output_padding is None else (output_padding, output_padding))
    layer.build((size, size, 3))
    assert layer.output_shape == (None, expected, expected, 2) and layer.kernel.shape == (kernel, kernel, 2, 3)


@settings(max_examples=40, deadline=None)
@given(geometry=transposed_geometries(), seed=rng_seeds())
def test_it_is_the_adjoint_of_the_convolution_with_the_same_kernel(geometry, seed):
    """<conv(y), x> = <y, conv^T(x)> for every x and y: the defining property of a transpose."""
    shape, filters, kernel, strides, padding, output_padding = geometry
    with float64_floatx():
        transposed = build_or_reject(shape, filters, kernel, strides, padding, output_padding, use_bias=False)
        if transposed is None:
            return
        conv = Conv2D(shape[-1], kernel, strides=strides, padding=padding, use_bias=False)
        conv.build(transposed.output_shape[1:])
    rng = np.random.default_rng(seed)
    transposed.set_weights([rng.standard_normal(transposed.kernel.shape)])
    conv.set_weights(transposed.get_weights())                       # (kh, kw, filters, C): the same array
    x = rng.standard_normal(shape)
    y = rng.standard_normal((shape[0], *transposed.output_shape[1:]))
    assert conv.output_shape[1:] == shape[1:]
    np.testing.assert_allclose(np.sum(conv.forward(y) * x), np.sum(y * transposed.forward(x)), rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(geometry=transposed_geometries(), activation=st.sampled_from(["linear", "tanh"]), seed=rng_seeds())
def test_gradients(geometry, activation, seed):
    shape, filters, kernel, strides, padding, output_padding = geometry
    with float64_floatx():
        layer = build_or_reject(shape, filters, kernel, strides, padding, output_padding, activation=activation)
    if layer is None:
        return
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(p.shape) for p in layer.params.values()])
    report = check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_both_kernel_twins_give_the_same_layer(backend):
    rng = np.random.default_rng(1)
    layer = Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu")
    layer.build((5, 4, 2))
    layer.set_weights([rng.standard_normal(p.shape).astype(np.float32) for p in layer.params.values()])
    assert_twins_agree(layer, rng.standard_normal((2, 5, 4, 2)).astype(np.float32), backend)


def test_an_autoencoder_learns_and_saves(tmp_path):
    """8x8 images of a bright square, encoded by a strided Conv2D and decoded by Conv2DTranspose."""
    rng = np.random.default_rng(2)
    images = np.zeros((256, 8, 8, 1), dtype=np.float32)
    for image, (r, c) in zip(images, rng.integers(0, 5, (256, 2))):
        image[r:r + 3, c:c + 3] = 1
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(8, 3, strides=2, padding="same",
                                                                     activation="relu"),
                                  Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
                                  Conv2DTranspose(1, 3, padding="same", activation="sigmoid")])
    model.compile(nnscratch.optimizers.Adam(0.01), "binary_crossentropy")
    history = model.fit(images, images, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    model.save(tmp_path / "ae.npz")
    loaded = load_model(tmp_path / "ae.npz")
    np.testing.assert_array_equal(loaded.predict(images[:8], verbose=0), model.predict(images[:8], verbose=0))
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


@pytest.mark.parametrize("make, error, match", [
    (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=2), ValueError, "below the strides"),
    (lambda: Conv2DTranspose(0, 3), ValueError, "filters must be a positive integer"),
    (lambda: Conv2DTranspose(2, 3, padding="full"), ValueError, "padding must be"),
])
def test_bad_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_geometries_and_inputs_are_refused_at_build():
    with pytest.raises(ValueError, match=r"output length 6 from 4, from which the matching Conv2D would give 3, "
                                         r"not 4 \(TensorFlow refuses it too\)"):
        nnscratch.Sequential([nnscratch.Input((5, 4, 3)), Conv2DTranspose(2, 2, strides=2, padding="same",
                                                                           output_padding=(1, 0))])
    with pytest.raises(ValueError, match=r"expects images of shape \(None, height, width, channels\), got \(None, 5\)"):
        nnscratch.Sequential([nnscratch.Input((5,)), Conv2DTranspose(2, 3)])
