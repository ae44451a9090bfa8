"""optdigits loader: all 5,620 UCI rows in a fixed order, scikit-learn's 1,797 offline."""

import gzip

import numpy as np
import pytest

from nnscratch.datasets import CorruptFileError, DatasetUnavailableError, optdigits

try:  # tests/ as a package, or as a plain folder on sys.path
    from tests import data_helpers as helpers
except ImportError:
    import data_helpers as helpers


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("NNSCRATCH_DATA", raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _read_table(path):
    """An independent reading of one file: a list of 65 ints per line."""
    rows = [[int(v) for v in line.split(",")] for line in path.read_text().splitlines() if line]
    return np.array(rows)


def test_real_optdigits_rows_and_order(tmp_path, monkeypatch):
    folder = helpers.require_shared("optdigits")
    monkeypatch.setenv("NNSCRATCH_DATA", str(folder.parent))
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    x, y = optdigits.load_data(mirrors=[])
    assert x.shape == (5620, 8, 8) and x.dtype == np.uint8
    assert y.shape == (5620,) and y.dtype == np.uint8
    assert x.min() == 0 and x.max() == 16 and set(np.unique(y)) == set(range(10))
    tra, tes = _read_table(folder / "optdigits.tra"), _read_table(folder / "optdigits.tes")
    assert len(tra) == 3823 and len(tes) == 1797
    np.testing.assert_array_equal(x[:3823].reshape(3823, 64), tra[:, :64])
    np.testing.assert_array_equal(y[:3823], tra[:, 64])
    np.testing.assert_array_equal(x[3823:].reshape(1797, 64), tes[:, :64])
    np.testing.assert_array_equal(y[3823:], tes[:, 64])
    assert helpers.files_in(tmp_path / "cache") == []


def test_sklearn_source_is_the_uci_test_file(isolated):
    x, y = optdigits.load_data(source="sklearn")
    assert x.shape == (1797, 8, 8) and x.dtype == np.uint8 and y.dtype == np.uint8
    folder = helpers.require_shared("optdigits")
    x_all, y_all = optdigits.load_data(path=folder, mirrors=[])
    np.testing.assert_array_equal(x, x_all[3823:])
    np.testing.assert_array_equal(y, y_all[3823:])


@pytest.mark.parametrize("source", ["UCI", "openml", None, 3])
def test_bad_source(source):
    with pytest.raises(ValueError, match="source must be one of"):
        optdigits.load_data(source=source)


def test_sklearn_source_rejects_path(tmp_path):
    with pytest.raises(ValueError, match="sklearn"):
        optdigits.load_data(path=tmp_path, source="sklearn")


def test_gzipped_copy_accepted(isolated, tmp_path):
    source = helpers.require_shared("optdigits")
    folder = tmp_path / "given"
    folder.mkdir()
    for name in helpers.REQUIRED["optdigits"]:
        (folder / (name + ".gz")).write_bytes(gzip.compress((source / name).read_bytes()))
    x, _ = optdigits.load_data(path=folder, mirrors=[])
    assert x.shape == (5620, 8, 8)


def test_corrupted_file_named(isolated, tmp_path):
    folder = helpers.copy_shared("optdigits", helpers.REQUIRED["optdigits"], tmp_path / "given")
    path = folder / "optdigits.tes"
    text = path.read_text()
    path.write_text(text.replace("0,0,", "0,1,", 1))  # one pixel changed: format fine, hash not
    with pytest.raises(CorruptFileError, match="SHA-256") as info:
        optdigits.load_data(path=folder, mirrors=[])
    assert str(path) in str(info.value)


def test_truncated_file_named(isolated, tmp_path):
    folder = helpers.copy_shared("optdigits", helpers.REQUIRED["optdigits"], tmp_path / "given")
    path = folder / "optdigits.tra"
    path.write_bytes(path.read_bytes()[:1000])  # cut in the middle of a row
    with pytest.raises(CorruptFileError, match="optdigits") as info:
        optdigits.load_data(path=folder, mirrors=[])
    assert str(path) in str(info.value)
    assert "truncated" in str(info.value) and "usecols" not in str(info.value)   # NumPy's advice is not ours
    assert helpers.files_in(isolated) == []


def test_not_optdigits_format(isolated, tmp_path):
    folder = helpers.copy_shared("optdigits", ["optdigits.tes"], tmp_path / "given")
    (folder / "optdigits.tra").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(CorruptFileError, match="shape"):
        optdigits.load_data(path=folder, mirrors=[])


def test_missing_offline(isolated, tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        optdigits.load_data(mirrors=[helpers.dead_url()])
    message = str(info.value)
    assert "optdigits.tra" in message and "optdigits.tes" in message
    assert str(isolated / "optdigits") in message
