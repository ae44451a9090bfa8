"""Real downloads from local HTTP servers (never a mocked network).

Each server is a ThreadingHTTPServer on 127.0.0.1 in a thread: one serves
copies of files, one serves garbage, one hangs up half-way through a file, and
a "dead" mirror is a port nobody listens on.
"""

import hashlib

import numpy as np
import pytest

from nnscratch.datasets import CorruptFileError, DatasetUnavailableError, mnist, optdigits
from nnscratch.datasets._fetch import RemoteFile, fetch
from nnscratch.datasets.idx import parse_idx

try:  # tests/ as a package, or as a plain folder on sys.path
    from tests import data_helpers as helpers
except ImportError:
    import data_helpers as helpers

LABELS = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty private cache and no shared data: returns the cache root."""
    monkeypatch.delenv("NNSCRATCH_DATA", raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_served(tmp_path, monkeypatch):
    """Tiny fake MNIST files, gzipped into a folder to serve, registered in ``mnist.FILES``."""
    contents, arrays = helpers.fake_mnist_files()
    helpers.register_fake_mnist(monkeypatch, contents)
    return helpers.write_files(tmp_path / "served", contents), arrays


def test_full_real_mnist_download_then_cached(cache, tmp_path):
    served = helpers.copy_shared("mnist", helpers.REQUIRED["mnist"], tmp_path / "served")
    with helpers.serve(helpers.StaticHandler, served) as url:
        (x_train, y_train), (x_test, y_test) = mnist.load_data(mirrors=[url])
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    assert helpers.files_in(cache / "mnist") == sorted(helpers.REQUIRED["mnist"])
    # The server is gone: the second load comes from the cache alone.
    (x2, _), _ = mnist.load_data(mirrors=[])
    assert np.array_equal(x2, x_train)


def test_real_label_file_via_fetch(cache, tmp_path):
    served = helpers.copy_shared("mnist", LABELS, tmp_path / "served")
    remotes = [RemoteFile(name, mnist.FILES[role].sha256)
               for role, name in zip(("y_train", "y_test"), LABELS)]
    with helpers.serve(helpers.StaticHandler, served) as url:
        found = fetch("mnist", remotes, parse_idx, mirrors=[url])
    assert found[LABELS[0]].shape == (60000,) and found[LABELS[1]].shape == (10000,)
    assert helpers.files_in(cache) == sorted(LABELS)


def test_dead_first_mirror_falls_back_to_second(cache, fake_served):
    served, arrays = fake_served
    with helpers.serve(helpers.StaticHandler, served) as url:
        (x_train, _), _ = mnist.load_data(mirrors=[helpers.dead_url(), url])
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    assert len(helpers.files_in(cache / "mnist")) == 4


def test_missing_on_first_mirror_404_falls_back(cache, fake_served, tmp_path):
    served, _ = fake_served
    (tmp_path / "empty").mkdir()
    with helpers.serve(helpers.StaticHandler, tmp_path / "empty") as empty, \
            helpers.serve(helpers.StaticHandler, served) as good:
        mnist.load_data(mirrors=[empty, good])
    assert len(helpers.files_in(cache / "mnist")) == 4


def test_garbage_server_hash_mismatch_nothing_cached(cache, fake_served):
    with helpers.serve(helpers.GarbageHandler) as url:
        with pytest.raises(CorruptFileError) as info:
            mnist.load_data(mirrors=[url])
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and url in message
    assert "nothing was written" in message
    assert helpers.files_in(cache) == [] and not (cache / "mnist").exists()


def test_garbage_with_right_format_fails_on_hash(cache, tmp_path):
    # A well-formed IDX file that is not the registered one: only the hash catches it.
    served = helpers.write_files(tmp_path / "served", {"labels.gz": helpers.idx_bytes(np.arange(5))})
    remote = RemoteFile("labels.gz", hashlib.sha256(b"something else").hexdigest())
    with helpers.serve(helpers.StaticHandler, served) as url:
        with pytest.raises(CorruptFileError, match="SHA-256 of the uncompressed bytes"):
            fetch("toy", [remote], parse_idx, mirrors=[url])
    assert helpers.files_in(cache) == []


def test_server_dying_mid_file_leaves_nothing(cache, tmp_path):
    served = helpers.copy_shared("mnist", LABELS[:1], tmp_path / "served")
    remote = RemoteFile(LABELS[0], mnist.FILES["y_train"].sha256)
    with helpers.serve(helpers.DyingHandler, served) as url:
        with pytest.raises((DatasetUnavailableError, CorruptFileError)) as info:
            fetch("mnist", [remote], parse_idx, mirrors=[url])
    assert LABELS[0] in str(info.value)
    assert helpers.files_in(cache) == []  # no partial file, no .part file


def test_dying_first_mirror_then_good_second(cache, fake_served):
    served, _ = fake_served
    with helpers.serve(helpers.DyingHandler, served) as dying, \
            helpers.serve(helpers.StaticHandler, served) as good:
        mnist.load_data(mirrors=[dying, good])
    assert sorted(helpers.files_in(cache / "mnist")) == sorted(mnist.FILES[r].name for r in mnist.FILES)


def test_optdigits_download_from_local_mirror(cache, tmp_path):
    served = helpers.copy_shared("optdigits", helpers.REQUIRED["optdigits"], tmp_path / "served")
    with helpers.serve(helpers.StaticHandler, served) as url:
        x, y = optdigits.load_data(mirrors=[url])
    assert x.shape == (5620, 8, 8) and y.shape == (5620,)
    assert helpers.files_in(cache / "optdigits") == ["optdigits.tes", "optdigits.tra"]
