"""Bilinear upsampling (``UpSampling2D(interpolation="bilinear")``): the Numba twin gives the NumPy reference's
bits, both follow the half-pixel formula written out here pixel by pixel, and backward is the adjoint.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.kernels import pooling_fast as fast
from nnscratch.kernels import pooling_reference as reference
from nnscratch.kernels import workspace
from nnscratch.layers import UpSampling2D

try:
    from tests.grad_strategies import image_shapes
    from tests.kernel_helpers import module_value
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import image_shapes
    from kernel_helpers import module_value
    from strategies import float_dtypes, rng_seeds

TWINS = [reference, fast]


def source(out_index, size, in_size):
    """Half-pixel centres, one output cell at a time: the two input cells it reads and the weight of the second."""
    u = min(max((out_index + 0.5) / size - 0.5, 0.0), in_size - 1.0)
    first = int(np.floor(u))
    return first, min(first + 1, in_size - 1), u - first


def interpolation_matrix(in_size, size):
    """The (in_size * size, in_size) matrix of one axis: row ``r`` mixes two input cells."""
    a = np.zeros((in_size * size, in_size))
    for r in range(in_size * size):
        first, second, f = source(r, size, in_size)
        a[r, first] += 1 - f
        a[r, second] += f
    return a


def bilinear_by_pixels(x, size_h, size_w):
    """``y = A_h x A_w^T`` per image and channel, in float64."""
    a_h, a_w = interpolation_matrix(x.shape[1], size_h), interpolation_matrix(x.shape[2], size_w)
    return np.einsum("ri,nijc,sj->nrsc", a_h, x.astype(np.float64), a_w)


def tolerance(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def sizes():
    return st.integers(1, 4)


@settings(max_examples=15)
@given(shape=image_shapes(), size_h=sizes(), size_w=sizes(), dtype=float_dtypes(), seed=rng_seeds())
def test_twins_are_bit_identical_and_follow_the_formula(shape, size_h, size_w, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    n, h, w, c = shape
    g = rng.standard_normal((n, h * size_h, w * size_w, c)).astype(dtype)
    results = [(twin.upsample_bilinear2d_forward(x, size_h, size_w),
                twin.upsample_bilinear2d_backward(g, size_h, size_w)) for twin in TWINS]
    for ours, theirs in zip(*results):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)
    y, dx = results[0]
    np.testing.assert_allclose(y, bilinear_by_pixels(x, size_h, size_w), **tolerance(dtype))
    a_h, a_w = interpolation_matrix(h, size_h), interpolation_matrix(w, size_w)
    np.testing.assert_allclose(dx, np.einsum("ri,nrsc,sj->nijc", a_h, g.astype(np.float64), a_w), **tolerance(dtype))


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@given(shape=image_shapes(), size_h=sizes(), size_w=sizes(), seed=rng_seeds())
def test_backward_is_the_adjoint_of_forward(twin, shape, size_h, size_w, seed):
    """<A x, g> == <x, A^T g>: the backward of a linear map is its transpose."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    g = rng.standard_normal((shape[0], shape[1] * size_h, shape[2] * size_w, shape[3]))
    lhs = np.vdot(twin.upsample_bilinear2d_forward(x, size_h, size_w), g)
    rhs = np.vdot(x, twin.upsample_bilinear2d_backward(g, size_h, size_w))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_half_pixel_centres_by_hand(twin):
    """A row [0, 1] doubled: outputs sit at -0.25 (clamped to 0), 0.25, 0.75 and 1.25 (clamped to 1).

    (With the corners aligned instead, TensorFlow 1's default, it would be [0, 1/3, 2/3, 1].)
    """
    x = np.array([0.0, 1.0]).reshape(1, 1, 2, 1)
    np.testing.assert_array_equal(twin.upsample_bilinear2d_forward(x, 1, 2).ravel(), [0.0, 0.25, 0.75, 1.0])
    # tripled: -1/3 (clamped), 0, 1/3, 2/3, 1, 4/3 (clamped)
    np.testing.assert_allclose(twin.upsample_bilinear2d_forward(x, 1, 3).ravel(), [0, 0, 1 / 3, 2 / 3, 1, 1],
                               rtol=0, atol=1e-15)
    # every output's gradient reaches the input in full: the column sums of A are the size
    g = np.ones((1, 1, 4, 1))
    np.testing.assert_array_equal(twin.upsample_bilinear2d_backward(g, 1, 2).ravel(), [2.0, 2.0])


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_size_one_is_the_identity_and_constants_stay_constant(twin):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    np.testing.assert_array_equal(twin.upsample_bilinear2d_forward(x, 1, 1), x)
    np.testing.assert_array_equal(twin.upsample_bilinear2d_backward(x, 1, 1), x)
    np.testing.assert_array_equal(twin.upsample_bilinear2d_forward(np.full((1, 3, 5, 2), 0.75), 3, 2),
                                  np.full((1, 9, 10, 2), 0.75))


def test_parallel_compilation_gives_the_same_bits():
    """``SERIAL_BELOW = 0`` runs the prange loops on Numba's threads: still the reference's bits (float32)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 4, 3)).astype(np.float32)
    g = rng.standard_normal((3, 15, 8, 3)).astype(np.float32)
    with module_value(workspace, "SERIAL_BELOW", 0):
        ours = fast.upsample_bilinear2d_forward(x, 3, 2), fast.upsample_bilinear2d_backward(g, 3, 2)
    theirs = reference.upsample_bilinear2d_forward(x, 3, 2), reference.upsample_bilinear2d_backward(g, 3, 2)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_bad_arguments_are_refused(twin):
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        twin.upsample_bilinear2d_forward(np.zeros((1, 2, 2, 1)), 0, 2)
    with pytest.raises(ValueError, match="NHWC"):
        twin.upsample_bilinear2d_forward(np.zeros((2, 2, 1)), 2, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        twin.upsample_bilinear2d_forward(np.zeros((1, 2, 2, 1), dtype=np.int64), 2, 2)
    with pytest.raises(ValueError, match="not a multiple"):
        twin.upsample_bilinear2d_backward(np.zeros((1, 3, 4, 1)), 2, 2)


# ------------------------------------------------------------------------------------------------ the layer

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_layer_forward_and_backward(backend):
    nnscratch.set_backend(backend)  # conftest restores the default after
    layer = UpSampling2D((2, 3), interpolation="Bilinear")
    assert layer.interpolation == "bilinear"
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype(np.float32)
    y = layer(x)
    assert layer.output_shape == (None, 6, 12, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y, bilinear_by_pixels(x, 2, 3), rtol=2e-6, atol=2e-6)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    a_h, a_w = interpolation_matrix(3, 2), interpolation_matrix(4, 3)
    np.testing.assert_allclose(layer.backward(g), np.einsum("ri,nrsc,sj->nijc", a_h, g, a_w), rtol=2e-6, atol=2e-6)
    assert layer.get_config()["interpolation"] == "bilinear"


def test_other_keras_interpolations_are_refused():
    for name in ("bicubic", "lanczos3", "lanczos5"):
        with pytest.raises(ValueError, match=f"'{name}' is not supported by nnscratch; only 'nearest' and 'bilinear'"):
            UpSampling2D(2, interpolation=name)


def test_a_bilinear_model_round_trips(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((3, 4, 2)), UpSampling2D(2, interpolation="bilinear"),
                                  nnscratch.layers.Flatten(), nnscratch.layers.Dense(3)])
    path = tmp_path / "bilinear.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert loaded.layers[0].interpolation == "bilinear"
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
