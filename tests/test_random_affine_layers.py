"""RandomRotation, RandomZoom, RandomTranslation, RandomShear: the sampling-plan kernels, geometry, gradients.

The kernels are checked against scipy's ``map_coordinates`` (an independent
implementation of the same fill modes), against each other, and for
adjointness; the layers against the formulas of Keras 3 for fixed draws.
Keras 3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.kernels import image_fast, image_reference
from nnscratch.layers import Conv2D, Dense, Flatten, RandomRotation, RandomShear, RandomTranslation, RandomZoom
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds

TWINS = [image_reference, image_fast]
FILL_MODES = ["reflect", "wrap", "constant", "nearest"]
INTERPOLATIONS = ["bilinear", "nearest"]
SCIPY_ORDERS = {"nearest": 0, "bilinear": 1}
SCIPY_MODES = {"reflect": "reflect", "wrap": "grid-wrap", "constant": "grid-constant", "nearest": "nearest"}
sizes = st.integers(1, 8)
fill_modes, interpolations = st.sampled_from(FILL_MODES), st.sampled_from(INTERPOLATIONS)


def random_matrices(rng, count):
    """Affine maps that reach well outside the image (and have no rounding ties, with probability 1)."""
    m = rng.normal(scale=0.8, size=(count, 2, 3))
    m[:, :, 2] *= 5
    return m


@given(seed=rng_seeds(), n=batch_sizes(), h=sizes, w=sizes, c=st.integers(1, 3), fill_mode=fill_modes,
       interpolation=interpolations, dtype=st.sampled_from([np.float32, np.float64]))
def test_the_twins_make_the_same_plan_and_resample_alike(seed, n, h, w, c, fill_mode, interpolation, dtype):
    rng = np.random.default_rng(seed)
    m = random_matrices(rng, n)
    index, weight = image_reference.sampling_plan(m, h, w, fill_mode, interpolation)
    fast_index, fast_weight = image_fast.sampling_plan(m, h, w, fill_mode, interpolation)
    np.testing.assert_array_equal(fast_index, index)
    np.testing.assert_allclose(fast_weight, weight, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(weight.sum(axis=-1), 1.0, rtol=1e-12)
    assert ((index >= -1) & (index < h * w)).all() and ((index == -1).any() <= (fill_mode == "constant"))
    x, g = rng.standard_normal((2, n, h, w, c)).astype(dtype)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    y, fast_y = (twin.gather_pixels(x, index, weight, -0.5) for twin in TWINS)
    assert y.dtype == fast_y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(fast_y, y, rtol=tolerance, atol=tolerance)
    dx, fast_dx = (twin.scatter_pixels(g, index, weight) for twin in TWINS)
    assert dx.dtype == fast_dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(fast_dx, dx, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_resampling_matches_scipy_map_coordinates(twin, fill_mode, interpolation):
    """scipy pads ``reflect`` as d c b a | a b c d, ``grid-wrap`` and ``grid-constant`` pixel by pixel, as Keras 3."""
    rng = np.random.default_rng(7)
    x, m = rng.standard_normal((3, 6, 9, 2)), random_matrices(rng, 3)
    y = twin.gather_pixels(x, *twin.sampling_plan(m, 6, 9, fill_mode, interpolation), 0.7)
    rows, cols = np.meshgrid(np.arange(6), np.arange(9), indexing="ij")
    for image, result, a in zip(x, y, m):
        position = [a[0, 0] * rows + a[0, 1] * cols + a[0, 2], a[1, 0] * rows + a[1, 1] * cols + a[1, 2]]
        for channel in range(2):
            expected = ndimage.map_coordinates(image[..., channel], position, order=SCIPY_ORDERS[interpolation],
                                               mode=SCIPY_MODES[fill_mode], cval=0.7)
            np.testing.assert_allclose(result[..., channel], expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40)
@given(seed=rng_seeds(), n=batch_sizes(), h=sizes, w=sizes, fill_mode=fill_modes, interpolation=interpolations)
def test_scatter_is_the_adjoint_of_gather(seed, n, h, w, fill_mode, interpolation):
    """<gather(x), g> = <x, scatter(g)> for a fill value of 0 (the fill is the affine part, without gradient)."""
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal((2, n, h, w, 2))
    for twin in TWINS:
        plan = twin.sampling_plan(random_matrices(rng, n), h, w, fill_mode, interpolation)
        assert np.isclose(np.vdot(twin.gather_pixels(x, *plan, 0.0), g), np.vdot(x, twin.scatter_pixels(g, *plan)),
                          rtol=1e-10, atol=1e-10)


def test_fill_modes_extend_the_image_as_keras_documents():
    """A row of a b c d shifted right by 3 pixels: what comes in from the left is each mode's extension."""
    row = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1)
    shift = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, -3.0]]])        # output column c reads input column c - 3
    expected = {"reflect": [3, 2, 1, 1], "wrap": [2, 3, 4, 1], "constant": [9, 9, 9, 1], "nearest": [1, 1, 1, 1]}
    for twin in TWINS:
        for mode, values in expected.items():
            y = twin.gather_pixels(row, *twin.sampling_plan(shift, 1, 4, mode, "bilinear"), 9.0)
            np.testing.assert_array_equal(y.ravel(), values, err_msg=mode)
    half = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, -0.5]]])          # half a pixel: the constant mode mixes in the fill
    y = image_reference.gather_pixels(row, *image_reference.sampling_plan(half, 1, 4, "constant", "bilinear"), 9.0)
    np.testing.assert_allclose(y.ravel(), [5.0, 1.5, 2.5, 3.5])


def trained(layer, x):
    """The layer's training-mode output for ``x`` (built for its shape)."""
    layer.build(x.shape[1:])
    return layer.forward(x, training=True)


def test_a_quarter_turn_is_rot90_and_inference_is_the_identity():
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 3))
    for interpolation in INTERPOLATIONS:
        np.testing.assert_allclose(trained(RandomRotation((0.25, 0.25), interpolation=interpolation), x),
                                   np.rot90(x, axes=(1, 2)), atol=1e-12)
        np.testing.assert_allclose(trained(RandomRotation((-0.5, -0.5), interpolation=interpolation), x),
                                   x[:, ::-1, ::-1], atol=1e-12)
    for layer in (RandomRotation(0.3), RandomZoom(0.2), RandomTranslation(0.2, 0.3)):
        layer.build(x.shape[1:])
        np.testing.assert_array_equal(layer(x), x)
        np.testing.assert_array_equal(layer.forward(x, training=False), x)
        np.testing.assert_array_equal(layer.backward(x), x)


def test_rotation_angles_follow_keras_formula_and_factor():
    """Output pixel (x, y) reads R(theta) (x - c) + c; the angles of a batch spread over +-factor turns."""
    layer = RandomRotation((0.05, 0.05), seed=2)
    layer.build((7, 9, 1))
    (m,) = layer.matrices(1, 7, 9)
    theta, centre = 0.05 * 2 * np.pi, np.array([3.0, 4.0])                     # (row, col) centre
    row_col = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])   # R in (row, col)
    np.testing.assert_allclose(m[:, :2], row_col, atol=1e-12)
    np.testing.assert_allclose(m[:, 2], centre - row_col @ centre, atol=1e-12)
    wide = RandomRotation(0.2, seed=3)
    m = wide.matrices(500, 7, 9)
    angles = np.arctan2(m[:, 0, 1], m[:, 0, 0])
    assert -0.2 * 2 * np.pi <= angles.min() < -0.35 * np.pi and 0.35 * np.pi < angles.max() <= 0.2 * 2 * np.pi


def test_zoom_scales_about_the_centre_and_keeps_the_aspect_ratio_without_a_width_factor():
    x = np.arange(35.0).reshape(1, 5, 7, 1)
    zoomed_in = trained(RandomZoom((-0.5, -0.5)), x)[0, ..., 0]                 # z = 0.5: the middle, twice as big
    rows, cols = np.meshgrid(0.5 * (np.arange(5) - 2) + 2, 0.5 * (np.arange(7) - 3) + 3, indexing="ij")
    np.testing.assert_allclose(zoomed_in, 7 * rows + cols)                       # x is linear in (row, col)
    same = RandomZoom((0.1, 0.4), seed=4)
    m = same.matrices(200, 5, 7)
    np.testing.assert_array_equal(m[:, 0, 0], m[:, 1, 1])
    assert 1.1 <= m[:, 0, 0].min() and m[:, 0, 0].max() <= 1.4
    apart = RandomZoom(0.2, width_factor=(-0.3, -0.3), seed=5).matrices(50, 5, 7)
    np.testing.assert_allclose(apart[:, 1, 1], 0.7)                          # the columns' zoom and offset
    np.testing.assert_allclose(apart[:, 1, 2], 3 * 0.3)
    assert not np.allclose(apart[:, 0, 0], 0.7)


def test_translation_moves_whole_images_by_fractions_of_their_size():
    x = np.random.default_rng(2).standard_normal((3, 8, 10, 2))
    down = trained(RandomTranslation((0.25, 0.25), 0, fill_mode="constant"), x)   # 2 rows down, zeros on top
    np.testing.assert_array_equal(down[:, 2:], x[:, :-2])
    np.testing.assert_array_equal(down[:, :2], 0.0)
    left = trained(RandomTranslation(0, (-0.3, -0.3), fill_mode="wrap", interpolation="nearest"), x)
    np.testing.assert_array_equal(left, np.roll(x, -3, axis=2))
    shifts = RandomTranslation(0.5, (0.1, 0.2), seed=6).matrices(300, 8, 10)
    assert -4 <= shifts[:, 0, 2].min() < -3 and 3 < shifts[:, 0, 2].max() <= 4            # -d_y in [-4, 4]
    assert -2 <= shifts[:, 1, 2].min() and shifts[:, 1, 2].max() <= -1                      # -d_x in [-2, -1]


def test_shear_slants_about_the_corner_with_one_random_sign_an_image():
    """Output pixel (x, y) reads (x + s_x y, s_y x + y), both factors times the same random sign, as Keras 3.15."""
    layer = RandomShear(x_factor=(0.2, 0.4), y_factor=(0.1, 0.1), seed=7)
    m = layer.matrices(400, 6, 8)
    shear_x, shear_y = m[:, 1, 0], m[:, 0, 1]                           # col_in = s_x row + col, row_in = row + s_y col
    np.testing.assert_array_equal(m[:, :, 2], 0.0)
    np.testing.assert_array_equal(m[:, 0, 0], 1.0)
    np.testing.assert_array_equal(m[:, 1, 1], 1.0)
    assert ((0.2 <= np.abs(shear_x)) & (np.abs(shear_x) <= 0.4)).all()
    np.testing.assert_allclose(np.abs(shear_y), 0.1)
    np.testing.assert_array_equal(np.sign(shear_x), np.sign(shear_y))   # one sign an image, for both
    assert 150 < (shear_x > 0).sum() < 250
    x = np.random.default_rng(8).standard_normal((2, 5, 6, 1))
    np.testing.assert_array_equal(trained(RandomShear(), x), x)          # factors 0: unchanged
    column = trained(RandomShear(x_factor=(1.0, 1.0), interpolation="nearest", fill_mode="wrap", seed=9), x)
    for image, result in zip(x, column):                                 # s_x = +-1: row r moves by r columns
        sign = 1 if np.array_equal(result[1], np.roll(image[1], -1, axis=0)) else -1
        for r in range(5):
            np.testing.assert_array_equal(result[r], np.roll(image[r], -sign * r, axis=0))


@given(n=batch_sizes(), h=sizes, w=sizes, fill_mode=fill_modes, interpolation=interpolations, seed=rng_seeds(),
       kind=st.sampled_from(["rotation", "zoom", "translation", "shear"]))
def test_gradients(n, h, w, fill_mode, interpolation, seed, kind):
    """Fixed draws make each layer linear in the image: backward (the scatter) is its exact transpose."""
    layer = {"rotation": lambda: RandomRotation(0.4, fill_mode, interpolation, seed=seed % 1000, fill_value=0.3),
             "zoom": lambda: RandomZoom(0.5, (-0.4, 0.6), fill_mode, interpolation, seed=seed % 1000),
             "translation": lambda: RandomTranslation(0.6, 0.6, fill_mode, interpolation, seed=seed % 1000),
             "shear": lambda: RandomShear(0.7, (0.2, 0.5), interpolation, fill_mode, seed=seed % 1000)}[kind]()
    x = np.random.default_rng(seed).standard_normal((n, h, w, 2))
    for training in (True, False):
        report = check_layer(layer, x=x, training=training, seed=seed % 1000, h=STEP)   # (the checker rewinds draws)
        assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_augmenting_model_trains_seeded_bit_identically_and_saves(tmp_path, backend):
    rng = np.random.default_rng(3)
    x, y = rng.random((32, 10, 12, 1)).astype(np.float32), rng.integers(0, 2, 32)

    def model():
        nnscratch.set_random_seed(0)
        return nnscratch.Sequential([nnscratch.Input((10, 12, 1)), RandomRotation(0.1, seed=1),
                                     RandomZoom(0.2, fill_mode="constant", seed=2),
                                     RandomTranslation(0.1, 0.1, interpolation="nearest", seed=3),
                                     RandomShear(0.2, 0.1, fill_mode="wrap", seed=4),
                                     Conv2D(2, 3, activation="relu"), Flatten(), Dense(2, activation="softmax")])
    before = nnscratch.kernels.get_backend()
    nnscratch.kernels.set_backend(backend)
    try:
        first, second = model(), model()
        for m in (first, second):
            m.compile("adam", "sparse_categorical_crossentropy")
        history = first.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=2).history
        assert history == second.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=2).history
        assert first.layers[0].forward(x[:4], training=True).dtype == np.float32
        first.save(tmp_path / "augment.npz")
        loaded = load_model(tmp_path / "augment.npz")
    finally:
        nnscratch.kernels.set_backend(before)
    assert [layer.get_config() for layer in loaded.layers[:4]] == [layer.get_config() for layer in first.layers[:4]]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), first.predict(x, verbose=0))


def test_bad_arguments_and_inputs_are_refused():
    with pytest.raises(ValueError, match=r"RandomRotation: fill_mode must be one of \('reflect', 'wrap'"):
        RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="RandomZoom: interpolation must be one of"):
        RandomZoom(0.1, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"RandomRotation: factor must be a number or a pair of numbers in \[-1.0, 1"):
        RandomRotation(1.5)
    with pytest.raises(ValueError, match=r"RandomZoom: height_factor must lie in \(-1, 1\]"):
        RandomZoom((-1.0, 0.2))
    with pytest.raises(ValueError, match="RandomTranslation: width_factor: factor must be a number or a pair"):
        RandomTranslation(0.1, (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="only channels_last images"):
        RandomTranslation(0.1, 0.1, data_format="channels_first")
    with pytest.raises(ValueError, match=r"RandomShear: a pair of factors must lie in \[0, 1\]"):
        RandomShear(x_factor=(-0.2, 0.3))
    with pytest.raises(TypeError, match="fill_value must be a number"):
        RandomZoom(0.1, fill_value="black")
    with pytest.raises(ValueError, match=r"takes images \(None, height, width, channels\)"):
        RandomRotation(0.1).build((5, 5))
    for twin in TWINS:
        with pytest.raises(ValueError, match=r"matrices must have shape \(N, 2, 3\)"):
            twin.sampling_plan(np.zeros((2, 3)), 4, 4, "reflect", "bilinear")
        with pytest.raises(ValueError, match="a sampling plan for 2 images of 16 pixels"):
            twin.gather_pixels(np.zeros((2, 4, 4, 1)), *twin.sampling_plan(np.zeros((3, 2, 3)), 4, 4, "wrap",
                                                                            "nearest"), 0.0)
