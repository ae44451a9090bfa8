"""Resizing, CenterCrop and RandomFlip: the resize matrices, gradients, flips, a model, errors.

Keras 3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import (CenterCrop, Conv2D, Dense, Flatten, RandomBrightness, RandomContrast, RandomCrop,
                              RandomFlip, Resizing)
from nnscratch.layers.resizing import resize_matrix
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds

sizes = st.integers(1, 7)


@given(n=batch_sizes(), rows=sizes, cols=sizes, height=sizes, width=sizes,
       interpolation=st.sampled_from(["bilinear", "nearest"]), aspect=st.sampled_from([None, "crop", "pad"]),
       seed=rng_seeds())
def test_resizing_gradients(n, rows, cols, height, width, interpolation, aspect, seed):
    layer = Resizing(height, width, interpolation=interpolation, crop_to_aspect_ratio=aspect == "crop",
                     pad_to_aspect_ratio=aspect == "pad")
    x = np.random.default_rng(seed).standard_normal((n, rows, cols, 2))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"
    assert layer.output_shape == (None, height, width, 2)


@given(in_size=st.integers(1, 12), out_size=st.integers(1, 12))
def test_each_resized_pixel_is_a_weighted_mean_of_at_most_two_neighbours(in_size, out_size):
    bilinear, nearest = resize_matrix(in_size, out_size), resize_matrix(in_size, out_size, "nearest")
    np.testing.assert_allclose(bilinear.sum(axis=1), 1.0, rtol=1e-12)
    assert ((bilinear > 0).sum(axis=1) <= 2).all() and (bilinear >= 0).all()
    assert ((nearest == 1).sum(axis=1) == 1).all() and nearest.sum() == out_size


def test_doubling_reads_the_half_pixel_positions_as_tensorflow():
    """Output pixel i of 2x sits at input (i + 1/2) / 2 - 1/2: -1/4, 1/4, 3/4, 5/4, ... (clamped at the edges)."""
    np.testing.assert_allclose(resize_matrix(3, 6), [[1, 0, 0], [0.75, 0.25, 0], [0.25, 0.75, 0], [0, 0.75, 0.25],
                                                     [0, 0.25, 0.75], [0, 0, 1]])
    np.testing.assert_array_equal(resize_matrix(3, 6, "nearest").argmax(axis=1), [0, 0, 1, 1, 2, 2])
    image = np.arange(6.0).reshape(1, 2, 3, 1)
    np.testing.assert_array_equal(Resizing(2, 3)(image), image)            # same size: unchanged
    constant = np.full((1, 4, 5, 1), 3.0)
    np.testing.assert_allclose(Resizing(7, 2)(constant), 3.0)


def test_center_crop_cuts_the_middle_or_resizes_a_smaller_image():
    x = np.random.default_rng(1).standard_normal((2, 7, 8, 3))
    np.testing.assert_array_equal(CenterCrop(4, 5)(x), x[:, 1:5, 1:6])
    small = CenterCrop(9, 9)
    np.testing.assert_array_equal(small(x), Resizing(9, 9, crop_to_aspect_ratio=True)(x))
    for layer, shape in ((CenterCrop(3, 4), (2, 6, 7, 1)), (CenterCrop(6, 7), (2, 4, 5, 1))):
        assert check_layer(layer, input_shape=shape, h=STEP).max_error < TOLERANCE


def test_random_flip_flips_whole_images_while_training_only_and_its_gradient_follows():
    x = np.random.default_rng(2).standard_normal((64, 3, 4, 1))
    layer = RandomFlip("horizontal", seed=3)
    np.testing.assert_array_equal(layer(x), x)                              # inference: the identity
    y = layer.forward(x, training=True)
    flipped = np.array([np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x)])
    same = np.array([np.array_equal(a, b) for a, b in zip(y, x)])
    assert (flipped | same).all() and 16 < flipped.sum() < 48
    both_ways = RandomFlip(seed=4)
    both_ways.build(x.shape[1:])
    both = both_ways.forward(x, training=True)
    assert all(any(np.array_equal(a, f(b)) for f in (lambda v: v, lambda v: v[::-1], lambda v: v[:, ::-1],
                                                      lambda v: v[::-1, ::-1])) for a, b in zip(both, x))
    report = check_layer(RandomFlip(seed=5), input_shape=(6, 3, 4, 2), h=STEP)      # the checker rewinds the draws
    assert report.max_error < TOLERANCE


def test_random_crop_takes_one_random_window_a_batch_in_training_and_the_centre_in_inference():
    x = np.random.default_rng(4).standard_normal((3, 8, 10, 1))
    layer = RandomCrop(4, 6, seed=5)
    layer.build(x.shape[1:])
    corners = set()
    for _ in range(40):
        y = layer.forward(x, training=True)
        found = [(i, j) for i in range(5) for j in range(5) if np.array_equal(y, x[:, i:i + 4, j:j + 6])]
        assert len(found) == 1
        corners.add(found[0])
    assert len(corners) > 10                             # many places, each one window for the whole batch
    np.testing.assert_array_equal(layer(x), Resizing(4, 6, crop_to_aspect_ratio=True)(x))
    for shape, size, training in (((2, 8, 10, 1), (4, 6), True), ((2, 8, 10, 1), (4, 6), False),
                                  ((2, 8, 10, 1), (8, 6), True), ((2, 5, 6, 2), (7, 8), True)):
        report = check_layer(RandomCrop(*size, seed=2), input_shape=shape, training=training, h=STEP)
        assert report.max_error < TOLERANCE, f"\n{report}"


def test_random_contrast_and_brightness_change_each_image_by_one_draw_and_clip():
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 255, (32, 4, 5, 3))
    contrast = RandomContrast(0.5, seed=1)
    contrast.build(x.shape[1:])
    np.testing.assert_array_equal(contrast(x), x)                          # inference: the identity
    y = contrast.forward(x, training=True)
    mean = x.mean(axis=(1, 2), keepdims=True)
    inside = (y > 0) & (y < 255)
    factors = ((y - mean) / (x - mean))[inside].reshape(-1)                 # one factor an image, in [0.5, 1.5]
    assert 0.5 <= factors.min() and factors.max() <= 1.5 and y.min() >= 0 and y.max() <= 255
    for image, result, keep in zip(x, y, inside):
        ratios = ((result - image.mean(axis=(0, 1))) / (image - image.mean(axis=(0, 1))))[keep]
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    brightness = RandomBrightness((-0.2, 0.1), seed=2)
    brightness.build(x.shape[1:])
    z = brightness.forward(x, training=True)
    shifts = [(b - a)[(b > 0) & (b < 255)] for a, b in zip(x, z)]
    assert all(np.allclose(s, s[0]) and -51 <= s[0] <= 25.5 for s in shifts if s.size)
    for layer in (RandomContrast((0.2, 0.6), value_range=(-1, 1), seed=3), RandomBrightness(0.3, (-1, 1), seed=4)):
        report = check_layer(layer, x=rng.uniform(-0.8, 0.8, (3, 4, 5, 2)), h=STEP)
        assert report.max_error < TOLERANCE, f"\n{report}"
    with pytest.raises(ValueError, match=r"factor must be a number or a pair of numbers in \[0.0, 1.0\]"):
        RandomContrast(1.5)
    with pytest.raises(ValueError, match="value_range must be a pair"):
        RandomBrightness(0.2, value_range=255)


def test_an_augmenting_model_trains_seeded_and_saves(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.random((32, 10, 12, 1)).astype(np.float32), rng.integers(0, 2, 32)

    def model():
        nnscratch.set_random_seed(0)
        return nnscratch.Sequential([nnscratch.Input((10, 12, 1)), RandomFlip("horizontal", seed=1),
                                     RandomCrop(9, 11), RandomContrast(0.2, (0, 1), seed=1),
                                     RandomBrightness(0.1, (0, 1), seed=2), CenterCrop(8, 8), Resizing(6, 6),
                                     Conv2D(2, 3, activation="relu"), Flatten(), Dense(2, activation="softmax")])
    first, second = model(), model()
    for m in (first, second):
        m.compile("adam", "sparse_categorical_crossentropy")
    assert first.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=2).history == \
        second.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=2).history
    first.save(tmp_path / "augment.npz")
    loaded = load_model(tmp_path / "augment.npz")
    assert [layer.get_config() for layer in loaded.layers[:6]] == [layer.get_config() for layer in first.layers[:6]]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), first.predict(x, verbose=0))


def test_bad_arguments_and_inputs_are_refused():
    with pytest.raises(ValueError, match="height must be a positive integer"):
        Resizing(0, 3)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        Resizing(3, 3, interpolation="bicubic")
    with pytest.raises(ValueError, match="only one of pad_to_aspect_ratio and crop_to_aspect_ratio"):
        Resizing(3, 3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"takes images \(None, height, width, channels\)"):
        Resizing(3, 3).build((5, 5))
    with pytest.raises(ValueError, match=r"takes images \(None, height, width, channels\)"):
        CenterCrop(3, 3).build((5, 5))
