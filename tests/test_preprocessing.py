"""to_categorical, scale_images and train_val_split."""

import numpy as np
import pytest

from nnscratch.config import floatx, set_floatx
from nnscratch.preprocessing import scale_images, to_categorical, train_val_split
from nnscratch.rng import set_random_seed


@pytest.fixture
def f64():
    """Run with floatx() == "float64", restored afterwards."""
    before = floatx()
    set_floatx("float64")
    yield
    set_floatx(before)


# --- to_categorical ---------------------------------------------------------------

def test_to_categorical_basic():
    out = to_categorical([0, 2, 1, 2])
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])


def test_to_categorical_num_classes_dtype_and_floatx(f64):
    assert to_categorical([1], num_classes=10).shape == (1, 10)
    assert to_categorical([1]).dtype == np.float64  # floatx() by default
    assert to_categorical([1], dtype="uint8").dtype == np.uint8


def test_to_categorical_keras_shapes():
    assert to_categorical(np.array([[1], [0]]), 3).shape == (2, 3)  # trailing 1 dropped
    assert to_categorical(np.array([[1, 0], [2, 2]]), 3).shape == (2, 2, 3)
    assert to_categorical(np.array([], dtype=int), 4).shape == (0, 4)
    out = to_categorical(np.array([1.0, 0.0]))  # whole-number floats are fine
    np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


@pytest.mark.parametrize("labels, kwargs, message", [
    ([0, -1, 2, -3], {}, r"negative values \[-3 -1\]"),
    ([0.5, 1.0], {}, r"non-integer values \[0.5\]"),
    ([0, np.nan], {}, "non-integer"),
    ([0, 3, 5], {"num_classes": 3}, r"< num_classes=3, got \[3 5\]"),
    ([0], {"num_classes": 0}, "positive integer"),
    ([0], {"num_classes": 2.5}, "positive integer"),
    (np.array([], dtype=int), {}, "num_classes is needed"),
])
def test_to_categorical_rejects(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(labels, **kwargs)


def test_to_categorical_rejects_strings():
    with pytest.raises(TypeError, match="integers"):
        to_categorical(["a", "b"])


# --- scale_images ------------------------------------------------------------------

def test_scale_uint8_divides_by_255():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    out = scale_images(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32) / np.float32(255))


def test_scale_optdigits_by_16(f64):
    x = np.array([0, 8, 16], dtype=np.uint8)
    out = scale_images(x, max_value=16)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0, 0.5, 1])


@pytest.mark.parametrize("x, max_value, message", [
    (np.array([1, 2], dtype=np.int64), None, "max_value is required for images of dtype int64"),
    (np.array([1, 200], dtype=np.uint8), 16, "values up to 200"),
    (np.array([1], dtype=np.uint8), 0, "positive number"),
    (np.array([1], dtype=np.uint8), -1, "positive number"),
])
def test_scale_rejects(x, max_value, message):
    with pytest.raises(ValueError, match=message):
        scale_images(x, max_value=max_value)


# --- train_val_split ---------------------------------------------------------------

def _data(n=100, classes=4):
    x = np.arange(n * 3).reshape(n, 3)
    y = np.arange(n) % classes
    return x, y


def test_last_split_is_kerass_validation_split():
    x, y = _data(60000, 10)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.1, method="last")
    assert len(x_tr) == 54000 and len(x_val) == 6000
    np.testing.assert_array_equal(x_val, x[54000:])
    np.testing.assert_array_equal(y_tr, y[:54000])


def test_last_split_floor_rule():
    x, y = _data(10)
    (x_tr, _), (x_val, _) = train_val_split(x, y, 0.25)
    assert len(x_tr) == 7 and len(x_val) == 3  # floor(10 * 0.75) = 7 train samples


def test_stratified_keeps_proportions_and_partition():
    x, y = _data(200, 4)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.2, method="stratified", seed=0)
    assert len(x_val) == 40 and np.bincount(y_val).tolist() == [10, 10, 10, 10]
    rows = np.sort(np.concatenate([x_tr[:, 0], x_val[:, 0]]))
    np.testing.assert_array_equal(rows, x[:, 0])  # every sample exactly once
    np.testing.assert_array_equal(y_val, x_val[:, 0] // 3 % 4)  # pairs stay together


def test_stratified_matches_sklearn_and_is_seeded():
    from sklearn.model_selection import train_test_split

    x, y = _data(100, 5)
    (x_tr, _), (x_val, _) = train_val_split(x, y, 0.1, method="stratified", seed=42)
    ref_tr, ref_val = train_test_split(x, test_size=0.1, stratify=y, random_state=42)
    np.testing.assert_array_equal(x_tr, ref_tr)
    np.testing.assert_array_equal(x_val, ref_val)
    (_, _), (other, _) = train_val_split(x, y, 0.1, method="stratified", seed=43)
    assert not np.array_equal(other, x_val)


def test_stratified_without_seed_follows_library_seed():
    x, y = _data(100, 5)
    set_random_seed(7)
    first = train_val_split(x, y, 0.1, method="stratified")[1][0]
    set_random_seed(7)
    again = train_val_split(x, y, 0.1, method="stratified")[1][0]
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("kwargs, message", [
    ({"val_fraction": 0}, r"in \(0, 1\)"),
    ({"val_fraction": 1.0}, r"in \(0, 1\)"),
    ({"val_fraction": "0.1"}, r"in \(0, 1\)"),
    ({"method": "random"}, "method must be one of"),
])
def test_split_rejects(kwargs, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        train_val_split(x, y, **kwargs)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        train_val_split(np.zeros((5, 2)), np.zeros(4))
