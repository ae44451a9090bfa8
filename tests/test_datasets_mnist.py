"""MNIST loader: the real files, the lookup order, verification and its error messages."""

import gzip

import numpy as np
import pytest

from nnscratch.datasets import CorruptFileError, DatasetUnavailableError, cache_dir, mnist

try:  # tests/ as a package, or as a plain folder on sys.path
    from tests import data_helpers as helpers
except ImportError:
    import data_helpers as helpers

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No shared data, an empty private cache: returns the cache root."""
    monkeypatch.delenv("NNSCRATCH_DATA", raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake(monkeypatch):
    """Tiny fake MNIST files registered in ``mnist.FILES``: ``(contents, arrays)``."""
    contents, arrays = helpers.fake_mnist_files()
    helpers.register_fake_mnist(monkeypatch, contents)
    return contents, arrays


def test_real_mnist_shapes_dtypes_counts(tmp_path, monkeypatch):
    root = helpers.require_shared("mnist").parent
    monkeypatch.setenv("NNSCRATCH_DATA", str(root))
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    (x_train, y_train), (x_test, y_test) = mnist.load_data(mirrors=[])
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).sum() == 10000
    assert x_train.max() == 255 and x_train.min() == 0
    assert helpers.files_in(tmp_path / "cache") == []  # found in NNSCRATCH_DATA: nothing cached


def test_real_mnist_from_explicit_path(isolated):
    folder = helpers.require_shared("mnist")
    (x_train, y_train), _ = mnist.load_data(path=folder, mirrors=[])
    assert x_train.shape == (60000, 28, 28) and y_train[:5].tolist() == [5, 0, 4, 1, 9]


@pytest.mark.parametrize("compress", [True, False])
def test_fake_files_from_path_gz_or_raw(isolated, fake, tmp_path, compress):
    contents, arrays = fake
    folder = helpers.write_files(tmp_path / "given", contents, compress=compress)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=folder, mirrors=[])
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(x_test, arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])


def test_lookup_order_path_then_data_then_cache(isolated, fake, tmp_path, monkeypatch):
    contents, arrays = fake
    names = list(contents)
    # path= has the train images only, NNSCRATCH_DATA the train labels, the cache the rest.
    helpers.write_files(tmp_path / "given", {names[0]: contents[names[0]]})
    helpers.write_files(tmp_path / "data" / "mnist", {names[1]: contents[names[1]]})
    helpers.write_files(isolated / "mnist", {n: contents[n] for n in names[2:]})
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "data"))
    (x_train, y_train), (x_test, _) = mnist.load_data(path=tmp_path / "given", mirrors=[])
    np.testing.assert_array_equal(x_train, arrays[names[0]])
    np.testing.assert_array_equal(y_train, arrays[names[1]])
    # A bad copy in a later folder is never read when an earlier folder has the file.
    (isolated / "mnist" / names[0]).write_bytes(b"garbage")
    mnist.load_data(path=tmp_path / "given", mirrors=[])


def test_cache_dir_from_environment(isolated):
    assert cache_dir("mnist") == isolated / "mnist"


def test_corrupted_file_hash_mismatch_names_file(isolated, fake, tmp_path):
    contents, _ = fake
    folder = helpers.write_files(tmp_path / "given", contents)
    name = "t10k-labels-idx1-ubyte.gz"
    bad = bytearray(contents[name])
    bad[-1] ^= 1  # still a valid IDX file, one label changed
    (folder / name).write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(CorruptFileError, match="SHA-256") as info:
        mnist.load_data(path=folder, mirrors=[])
    assert str(folder / name) in str(info.value)
    assert helpers.files_in(isolated) == []


def test_truncated_file_rejected(isolated, fake, tmp_path):
    contents, _ = fake
    folder = helpers.write_files(tmp_path / "given", contents, compress=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptFileError, match="truncated data") as info:
        mnist.load_data(path=folder, mirrors=[])
    assert str(path) in str(info.value)


def test_wrong_magic_rejected(isolated, fake, tmp_path):
    contents, _ = fake
    folder = helpers.write_files(tmp_path / "given", contents)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x07\x01" + contents[path.name][4:]))
    with pytest.raises(CorruptFileError, match="wrong magic number 0x00000701") as info:
        mnist.load_data(path=folder, mirrors=[])
    assert str(path) in str(info.value)
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(CorruptFileError, match="wrong magic number") as info:
        mnist.load_data(path=folder, mirrors=[])
    assert str(path) in str(info.value)


def test_corrupt_file_in_cache_is_reported(isolated, fake):
    contents, _ = fake
    folder = helpers.write_files(isolated / "mnist", contents)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(CorruptFileError, match="gzip") as info:
        mnist.load_data(mirrors=[])
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_missing_files_offline_says_which_and_where(isolated, fake, tmp_path):
    contents, _ = fake
    names = list(contents)
    folder = helpers.write_files(tmp_path / "given", {names[0]: contents[names[0]]})
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(path=folder, mirrors=[helpers.dead_url()])
    message = str(info.value)
    for name in names[1:]:
        assert name in message
    assert names[0] + "," not in message  # the file that was found is not listed as missing
    assert str(isolated / "mnist") in message and "NNSCRATCH_DATA" in message
    assert "ConnectionError" in message
    assert helpers.files_in(isolated) == []


def test_no_mirrors_means_no_download(isolated, fake):
    with pytest.raises(DatasetUnavailableError, match="no mirrors given"):
        mnist.load_data(mirrors=[])


def test_path_must_be_a_folder(isolated, tmp_path):
    with pytest.raises(ValueError, match="existing folder"):
        mnist.load_data(path=tmp_path / "nowhere", mirrors=[])
