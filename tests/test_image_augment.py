"""Image augmentation: the two kernel twins, Keras's geometry, ImageDataGenerator and flow."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from nnscratch import kernels
from nnscratch.config import set_floatx
from nnscratch.kernels import image_fast, image_reference
from nnscratch.preprocessing import (
    ImageDataGenerator,
    affine_matrices,
    apply_affine_transform,
)

FEW = settings(max_examples=25, deadline=None)
TWINS = [image_reference, image_fast]


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once with each image kernel twin active."""
    before = kernels.get_backend()
    kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(before)


def random_images(seed, n=2, h=7, w=7, c=1, dtype=np.float32):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(dtype)


def keras_apply_affine_transform(x, theta=0.0, tx=0.0, ty=0.0, zx=1.0, zy=1.0,
                                 fill_mode="nearest", cval=0.0):
    """Keras's (legacy, scipy-based) apply_affine_transform for one HWC image, restated."""
    h, w = x.shape[0], x.shape[1]
    t = np.deg2rad(theta)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    m = rotation @ shift @ zoom
    o_x, o_y = h / 2 - 0.5, w / 2 - 0.5  # Keras's transform_matrix_offset_center(m, h, w)
    m = (np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]]) @ m
         @ np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]]))
    m[:, [0, 1]] = m[:, [1, 0]]  # Keras swaps x and y because col_axis > row_axis
    m[[0, 1]] = m[[1, 0]]
    return np.stack([ndimage.affine_transform(x[..., k], m[:2, :2], m[:2, 2], order=1,
                                              mode=fill_mode, cval=cval)
                     for k in range(x.shape[-1])], axis=-1)


# --- the kernels ---------------------------------------------------------------------

@FEW
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), c=st.integers(1, 3), fill=st.sampled_from([0, 1]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_twins_agree_on_random_matrices(seed, n, h, w, c, fill, dtype):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    m = rng.normal(scale=0.7, size=(n, 3, 3))
    m[:, :, 2] *= 4
    ref = image_reference.affine_transform_batch(x, m, fill, -0.5)
    fast = image_fast.affine_transform_batch(x, m, fill, -0.5)
    assert ref.dtype == fast.dtype == dtype and ref.shape == x.shape
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("fill", [0, 1])
def test_twins_match_scipy(twin, fill):
    rng = np.random.default_rng(3)
    x = rng.random((4, 10, 12, 2))
    m = np.zeros((4, 2, 3))
    m[:, :, :2] = np.eye(2) + rng.normal(scale=0.3, size=(4, 2, 2))
    m[:, :, 2] = rng.normal(scale=3, size=(4, 2))
    out = twin.affine_transform_batch(x, m, fill, 0.25)
    mode = "constant" if fill else "nearest"
    for i in range(4):
        for k in range(2):
            expected = ndimage.affine_transform(x[i, ..., k], m[i, :, :2], m[i, :, 2], order=1,
                                                mode=mode, cval=0.25)
            np.testing.assert_allclose(out[i, ..., k], expected, atol=1e-12)


@pytest.mark.parametrize("twin", TWINS)
def test_identity_matrix_is_exact(twin):
    x = random_images(0, n=3, h=5, w=6, c=2)
    m = np.tile(np.eye(3), (3, 1, 1))
    for fill in (0, 1):
        np.testing.assert_array_equal(twin.affine_transform_batch(x, m, fill, 9.0), x)


@pytest.mark.parametrize("twin", TWINS)
def test_kernel_input_checks(twin):
    x = random_images(0)
    with pytest.raises(ValueError, match="4-D NHWC"):
        twin.affine_transform_batch(x[0], np.zeros((2, 2, 3)), 0, 0.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        twin.affine_transform_batch(x.astype(np.uint8), np.zeros((2, 2, 3)), 0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(2, 2, 3\) or \(2, 3, 3\)"):
        twin.affine_transform_batch(x, np.zeros((3, 2, 3)), 0, 0.0)
    with pytest.raises(ValueError, match="fill_mode_code"):
        twin.affine_transform_batch(x, np.zeros((2, 2, 3)), 5, 0.0)


# --- Keras's geometry ----------------------------------------------------------------

def _near_edge(m, h, w, tol=1e-5):
    """Output pixels whose source lies within ``tol`` of the image border (scipy is strict there)."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    src_r = m[0, 0] * rows + m[0, 1] * cols + m[0, 2]
    src_c = m[1, 0] * rows + m[1, 1] * cols + m[1, 2]
    return ((np.abs(src_r) < tol) | (np.abs(src_r - (h - 1)) < tol)
            | (np.abs(src_c) < tol) | (np.abs(src_c - (w - 1)) < tol))


@FEW
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(2, 12),
       theta=st.floats(-180, 180), tx=st.floats(-4, 4), ty=st.floats(-4, 4),
       zx=st.floats(0.5, 1.5), zy=st.floats(0.5, 1.5),
       fill_mode=st.sampled_from(["nearest", "constant"]))
def test_matches_keras_apply_affine_transform(seed, size, theta, tx, ty, zx, zy, fill_mode):
    x = random_images(seed, n=1, h=size, w=size, c=2, dtype=np.float64)
    ours = apply_affine_transform(x, theta, tx, ty, zx, zy, fill_mode=fill_mode, cval=-1.0)[0]
    theirs = keras_apply_affine_transform(x[0], theta, tx, ty, zx, zy, fill_mode, -1.0)
    keep = ~_near_edge(affine_matrices(size, size, theta, tx, ty, zx, zy)[0], size, size)
    np.testing.assert_allclose(ours[keep], theirs[keep], atol=1e-9)


def test_rotation_by_90_is_rot90_counter_clockwise(backend):
    x = random_images(1, n=2, h=6, w=6, c=3)
    for fill_mode in ("nearest", "constant"):
        out = apply_affine_transform(x, theta=90, fill_mode=fill_mode, cval=-5)
        np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(1, 2)), atol=1e-6)
    out = apply_affine_transform(x, theta=-90)
    np.testing.assert_allclose(out, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-6)


def test_integer_shift_moves_pixels_exactly(backend):
    x = random_images(2, n=1, h=5, w=8, c=1)
    out = apply_affine_transform(x, tx=3, ty=-1)  # reads (r - 1, c + 3): moves left 3, down 1
    np.testing.assert_array_equal(out[:, 1:, :5], x[:, :4, 3:])
    np.testing.assert_array_equal(out[:, 1:, 5:], np.repeat(x[:, :4, 7:8], 3, axis=2))  # nearest
    np.testing.assert_array_equal(out[:, 0, :5], x[:, 0, 3:])


def test_constant_fill_shows_cval_at_borders(backend):
    x = random_images(3, n=2, h=6, w=6, c=2)
    out = apply_affine_transform(x, tx=-2, fill_mode="constant", cval=7.0)
    assert (out[:, :, :2] == 7.0).all()  # moved right by 2: two new columns on the left
    np.testing.assert_array_equal(out[:, :, 2:], x[:, :, :4])


def test_per_image_parameters():
    x = random_images(5, n=3, h=6, w=6, c=1)
    out = apply_affine_transform(x, theta=[0, 90, 180])
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_allclose(out[1], np.rot90(x[1]), atol=1e-6)
    np.testing.assert_allclose(out[2], np.rot90(x[2], 2), atol=1e-6)
    with pytest.raises(ValueError, match=r"one value per image \(3\), got 2"):
        apply_affine_transform(x, tx=[1, 2])


def test_zoom_below_one_magnifies_about_the_centre(backend):
    x = np.zeros((1, 5, 5, 1), np.float64)
    x[0, 1, 1] = 1.0
    out = apply_affine_transform(x, zx=0.5, zy=0.5)
    # Output p reads centre + 0.5 * (p - centre), the centre being (2, 2).
    assert out[0, 0, 0, 0] == 1.0  # reads (1, 1)
    assert out[0, 0, 1, 0] == 0.5  # reads (1, 1.5)
    assert out[0, 1, 1, 0] == 0.25  # reads (1.5, 1.5)
    assert out[0, 2, 2, 0] == 0.0


# --- ImageDataGenerator --------------------------------------------------------------

@FEW
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), h=st.integers(1, 9),
       c=st.integers(1, 3), fill_mode=st.sampled_from(["nearest", "constant"]),
       dtype=st.sampled_from([np.float32, np.float64]), numba=st.booleans())
def test_zero_ranges_give_identity_exactly(seed, n, h, c, fill_mode, dtype, numba):
    x = random_images(seed, n, h, h + 1, c, dtype)
    before = kernels.get_backend()
    kernels.set_backend("numba" if numba else "numpy")
    try:
        gen = ImageDataGenerator(fill_mode=fill_mode, cval=3.0, seed=seed)
        np.testing.assert_array_equal(gen.transform(x), x)
        np.testing.assert_array_equal(gen.flow(x, shuffle=False, batch_size=n)[0], x)
    finally:
        kernels.set_backend(before)


@FEW
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), h=st.integers(2, 8),
       c=st.integers(1, 3), dtype=st.sampled_from([np.float32, np.float64]))
def test_transform_keeps_shape_dtype_and_is_seeded(seed, n, h, c, dtype):
    x = random_images(seed, n, h, h, c, dtype)
    make = lambda s: ImageDataGenerator(rotation_range=30, zoom_range=0.2,  # noqa: E731
                                        width_shift_range=0.2, height_shift_range=0.1, seed=s)
    out = make(seed).transform(x)
    assert out.shape == x.shape and out.dtype == dtype
    np.testing.assert_array_equal(make(seed).transform(x), out)
    assert not np.shares_memory(out, x)


def test_integer_images_become_floatx():
    x = np.full((2, 4, 4, 1), 200, np.uint8)
    assert ImageDataGenerator(seed=0).transform(x).dtype == np.float32
    set_floatx("float64")
    try:
        assert ImageDataGenerator(seed=0).transform(x).dtype == np.float64
    finally:
        set_floatx("float32")


def test_random_parameters_stay_in_their_ranges():
    gen = ImageDataGenerator(rotation_range=10, zoom_range=[0.9, 1.2],
                             width_shift_range=0.1, height_shift_range=3, seed=5)
    m = gen.random_matrices(2000, 28, 20)
    zoom_y, zoom_x = np.hypot(m[:, 0, 0], m[:, 1, 0]), np.hypot(m[:, 0, 1], m[:, 1, 1])
    assert 0.9 <= zoom_x.min() and zoom_x.max() <= 1.2 and 0.9 <= zoom_y.min() and zoom_y.max() <= 1.2
    angle = np.degrees(np.arctan2(m[:, 0, 1], m[:, 1, 1]))
    assert np.abs(angle).max() <= 10 and np.abs(angle).max() > 9
    # The centre (13.5, 9.5) is read from centre + R @ t: |t| within the shift ranges.
    centre = np.array([13.5, 9.5])
    reads = m[:, :, :2] @ centre + m[:, :, 2] - centre
    shift = np.hypot(reads[:, 0], reads[:, 1])
    assert shift.max() <= math.hypot(3, 0.1 * 20) + 1e-9


def test_each_shifted_image_shows_cval():
    x = np.ones((50, 10, 10, 1), np.float32)
    gen = ImageDataGenerator(width_shift_range=0.3, fill_mode="constant", cval=-1.0, seed=0)
    out = gen.transform(x)
    # Any sideways shift reads one border column from outside: it is all cval.
    edges = np.minimum(out[:, :, 0, 0], out[:, :, -1, 0]).max(axis=1)
    assert (edges == -1.0).all()
    assert (out[:, :, 1:-1] != -1.0).any() and out.min() == -1.0 and out.max() == 1.0


def test_random_transform_single_image():
    gen = ImageDataGenerator(rotation_range=20, seed=0)
    assert gen.random_transform(np.zeros((5, 5, 1), np.float32)).shape == (5, 5, 1)
    with pytest.raises(ValueError, match=r"one \(H, W, C\) image"):
        gen.random_transform(np.zeros((5, 5)))


@pytest.mark.parametrize("kwargs, message", [
    ({"rotation_range": -1}, "rotation_range must be a non-negative number, got -1"),
    ({"zoom_range": -0.1}, "zoom_range must be a non-negative number"),
    ({"zoom_range": [1.2, 0.8]}, "lo <= hi"),
    ({"zoom_range": "big"}, "zoom_range must be a number"),
    ({"width_shift_range": -0.2}, "width_shift_range"),
    ({"height_shift_range": float("nan")}, "height_shift_range"),
    ({"fill_mode": "reflect"}, r"fill_mode must be one of \('nearest', 'constant'\), got 'reflect'"),
    ({"cval": "zero"}, "cval must be a number"),
])
def test_generator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageDataGenerator(**kwargs)


def test_transform_rejects_non_nhwc():
    with pytest.raises(ValueError, match=r"4-D NHWC batch .* got shape \(3, 5, 5\)"):
        ImageDataGenerator().transform(np.zeros((3, 5, 5)))


# --- flow ------------------------------------------------------------------------------

def _flow_data(n=23):
    x = random_images(4, n=n, h=6, w=6, c=1)
    y = np.arange(n) * 10
    return x, y


def test_flow_length_and_labels_untouched():
    x, y = _flow_data()
    seq = ImageDataGenerator(rotation_range=15, seed=0).flow(x, y, batch_size=5, seed=1)
    assert len(seq) == math.ceil(23 / 5)
    for _ in range(2):
        batches = [seq[i] for i in range(len(seq))]
        assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
        labels = np.concatenate([b[1] for b in batches])
        assert sorted(labels) == sorted(y)  # every sample once per epoch, labels intact
        for xb, yb in batches:  # each image sits next to its own label
            np.testing.assert_allclose(xb.mean(axis=(1, 2, 3)), x[yb // 10].mean(axis=(1, 2, 3)),
                                       atol=0.35)
        seq.on_epoch_end()


def test_flow_without_shuffle_keeps_order_and_batches_are_repeatable():
    x, y = _flow_data()
    seq = ImageDataGenerator(zoom_range=0.1, seed=0).flow(x, y, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in seq]), y)
    np.testing.assert_array_equal(seq[1][0], seq[1][0])


def test_flow_reshuffles_each_epoch_and_is_seeded():
    x, y = _flow_data(40)
    gen = ImageDataGenerator(width_shift_range=0.2, seed=0)
    a, b = gen.flow(x, y, batch_size=40, seed=7), gen.flow(x, y, batch_size=40, seed=7)
    first = a[0]
    np.testing.assert_array_equal(b[0][0], first[0])
    np.testing.assert_array_equal(b[0][1], first[1])
    a.on_epoch_end()
    assert not np.array_equal(a[0][1], first[1])
    assert not np.array_equal(gen.flow(x, y, batch_size=40, seed=8)[0][1], first[1])


def test_flow_seed_from_generator_seed():
    x, y = _flow_data()
    one = ImageDataGenerator(rotation_range=20, seed=3).flow(x, y)[0]
    two = ImageDataGenerator(rotation_range=20, seed=3).flow(x, y)[0]
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_flow_without_labels_and_bad_arguments():
    x, y = _flow_data()
    gen = ImageDataGenerator()
    assert gen.flow(x, batch_size=4)[0].shape == (4, 6, 6, 1)
    with pytest.raises(ValueError, match="same number of samples"):
        gen.flow(x, y[:-1])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        gen.flow(x, y, batch_size=0)
    with pytest.raises(ValueError, match="4-D NHWC"):
        gen.flow(x[..., 0], y)
    with pytest.raises(IndexError, match=r"\[0, 1\)"):
        gen.flow(x, y, batch_size=100)[1]


def test_flow_with_sample_weight_yields_triples():
    x, y = _flow_data(12)                                   # y = 10 * sample index
    w = np.arange(12, dtype=np.float64) % 3
    seq = ImageDataGenerator(width_shift_range=0.2, seed=0).flow(x, y, batch_size=5, sample_weight=w, seed=4)
    plain = ImageDataGenerator(width_shift_range=0.2, seed=0).flow(x, y, batch_size=5, seed=4)
    for index in range(len(seq)):
        xb, yb, wb = seq[index]
        np.testing.assert_array_equal(xb, plain[index][0])  # the weights change nothing else
        np.testing.assert_array_equal(yb, plain[index][1])
        np.testing.assert_array_equal(wb, w[yb // 10])      # each sample keeps its own weight
    seq.on_epoch_end()
    xb, yb, wb = seq[0]
    np.testing.assert_array_equal(wb, w[yb // 10])
    with pytest.raises(ValueError, match="sample_weight needs y"):
        ImageDataGenerator().flow(x, sample_weight=w)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        ImageDataGenerator().flow(x, y, sample_weight=w[:-1])
